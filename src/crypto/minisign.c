/*
 * minisign.c - minisign signature verification (minisign.h).
 */
#include "crypto/minisign.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

const char *minisign_strerror(int r)
{
	switch (r) {
#define MINISIGN_CASE_(name, code, text)                                       \
	case code: return text;
		MINISIGN_ERRORS(MINISIGN_CASE_)
#undef MINISIGN_CASE_
	}
	return "unknown";
}

void minisign_key_id_hex(const uint8_t id[8], char out[17])
{
	static const char hex[] = "0123456789ABCDEF";

	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[id[7 - i] >> 4];
		out[2 * i + 1] = hex[id[7 - i] & 15];
	}
	out[16] = '\0';
}

/* The next line of [*p, end): its start and length without "\r\n";
 * false at the end. */
static bool next_line(const char **p, const char *end, const char **line,
		      size_t *n)
{
	if (*p >= end)
		return false;
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *stop = nl ? nl : end;
	*line = *p;
	*n = (size_t)(stop - *p);
	if (*n && (*line)[*n - 1] == '\r')
		(*n)--;
	*p = nl ? nl + 1 : end;
	return true;
}

static bool starts(const char *line, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && memcmp(line, prefix, k) == 0;
}

/* Exactly want bytes of standard base64 in line[0..n). */
static bool b64(const char *line, size_t n, uint8_t *out, size_t want)
{
	size_t got = 0;
	const char *end = NULL;

	if (n == 0 || n > 256)
		return false;
	if (sodium_base642bin(out, want, line, n, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != want || end != line + n)
		return false;
	return true;
}

int minisign_parse_pubkey(const char *text, size_t len,
			  struct minisign_pubkey *out)
{
	const char *p, *end, *line;
	size_t n;
	uint8_t raw[42];

	memset(out, 0, sizeof(*out));
	if (!text || len > MINISIGN_FILE_BYTES_MAX)
		return MINISIGN_MALFORMED_KEY;
	p = text;
	end = text + len;
	if (!next_line(&p, end, &line, &n))
		return MINISIGN_MALFORMED_KEY;
	if (starts(line, n, "untrusted comment: ") &&
	    !next_line(&p, end, &line, &n))
		return MINISIGN_MALFORMED_KEY;
	if (!b64(line, n, raw, sizeof(raw)) || raw[0] != 'E' || raw[1] != 'd')
		return MINISIGN_MALFORMED_KEY;
	/* Nothing but an empty line may follow. */
	while (next_line(&p, end, &line, &n))
		if (n)
			return MINISIGN_MALFORMED_KEY;
	memcpy(out->key_id, raw + 2, 8);
	memcpy(out->pk, raw + 10, 32);
	return MINISIGN_OK;
}

static int parse_sig(const char *text, size_t len, struct minisign_sig *out)
{
	const char *p, *end, *line;
	size_t n;
	uint8_t raw[74];
	static const char trusted[] = "trusted comment: ";

	if (!text || len > MINISIGN_FILE_BYTES_MAX)
		return MINISIGN_MALFORMED_SIG;
	p = text;
	end = text + len;
	if (!next_line(&p, end, &line, &n) ||
	    !starts(line, n, "untrusted comment: ") ||
	    !next_line(&p, end, &line, &n) || !b64(line, n, raw, sizeof(raw)))
		return MINISIGN_MALFORMED_SIG;
	if (raw[0] == 'E' && raw[1] == 'd')
		return MINISIGN_LEGACY;
	if (raw[0] != 'E' || raw[1] != 'D')
		return MINISIGN_MALFORMED_SIG;
	memcpy(out->key_id, raw + 2, 8);
	memcpy(out->sig, raw + 10, 64);
	if (!next_line(&p, end, &line, &n) || !starts(line, n, trusted) ||
	    n - (sizeof(trusted) - 1) > MINISIGN_COMMENT_BYTES)
		return MINISIGN_MALFORMED_SIG;
	memcpy(out->trusted, line + sizeof(trusted) - 1,
	       n - (sizeof(trusted) - 1));
	out->trusted[n - (sizeof(trusted) - 1)] = '\0';
	if (strlen(out->trusted) != n - (sizeof(trusted) - 1) ||
	    !next_line(&p, end, &line, &n) ||
	    !b64(line, n, out->global_sig, sizeof(out->global_sig)))
		return MINISIGN_MALFORMED_SIG;
	while (next_line(&p, end, &line, &n))
		if (n)
			return MINISIGN_MALFORMED_SIG;
	return MINISIGN_OK;
}

int minisign_parse_sig(const char *text, size_t len, struct minisign_sig *out)
{
	memset(out, 0, sizeof(*out));
	int r = parse_sig(text, len, out);
	if (r != MINISIGN_OK) /* nothing half-read is left behind */
		sodium_memzero(out, sizeof(*out));
	return r;
}

int minisign_verify(const struct minisign_pubkey *pk,
		    const struct minisign_sig *sig,
		    const uint8_t hash[MINISIGN_HASH_BYTES])
{
	uint8_t global[64 + MINISIGN_COMMENT_BYTES];
	size_t tn = strlen(sig->trusted);

	if (sodium_memcmp(pk->key_id, sig->key_id, 8) != 0)
		return MINISIGN_OTHER_KEY;
	if (crypto_sign_verify_detached(sig->sig, hash, MINISIGN_HASH_BYTES,
					pk->pk) != 0)
		return MINISIGN_BAD_SIGNATURE;
	memcpy(global, sig->sig, 64);
	memcpy(global + 64, sig->trusted, tn);
	if (crypto_sign_verify_detached(sig->global_sig, global, 64 + tn,
					pk->pk) != 0)
		return MINISIGN_BAD_COMMENT;
	return MINISIGN_OK;
}
