/*
 * test_core_minisign.c - minisign verification (crypto/minisign.h)
 * against files made by Debian's minisign 0.11 (`minisign -G -W`, then
 * `minisign -S -m msg -t "..."`, and with -l for the legacy form): the
 * signature verifies; a changed byte of the file, of the trusted
 * comment, of either signature, another key, the legacy form and every
 * malformed file are each refused with their own code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "crypto/minisign.h"

#include "banned.h"

static const char pub[] =
	"untrusted comment: minisign public key 7C0317402E773AD7\n"
	"RWTXOncuQBcDfFzNaFID3fVz0eDwBmJkI9AsxcUz5DHW+to+bt12LulX\n";
static const char msg[] = "tpwallet minisign test vector\n";
static const char sig[] =
	"untrusted comment: signature from minisign secret key\n"
	"RUTXOncuQBcDfMLNyjvasEtCE1+OL+xUOAdN2b54XM1FQDBAtHSO5r0IZBYNh4vfwGPh"
	"VdkKTfvgPAncGwWqppu9QRdVhwlwTAU=\n"
	"trusted comment: vector for tests/unit/test_core_minisign.c\n"
	"XUrmB86rxj6nY5KDLoVskYus34x/J97TcSut9APjxXe53V9NV32kqkP0gfE/3SHF4i0K"
	"ZxuSK74W5yzCGSn+CA==\n";
/* The same file signed with -l (the whole file, not its hash). */
static const char legacy_line[] =
	"RWTXOncuQBcDfCNe/jRrDfzSo9ewebsLONQn6LiRkDSpDBCwRW/w6weBgq9cPwWB0PBF"
	"i+oFN30CAPEkXENS0Lg+D2wwKtoxAQU=";

static void hash_of(const char *m, size_t n, uint8_t out[64])
{
	crypto_generichash(out, 64, (const uint8_t *)m, n, NULL, 0);
}

static int verify_texts(const char *p, const char *s, const char *m)
{
	struct minisign_pubkey k;
	struct minisign_sig g;
	uint8_t h[64];
	int r = minisign_parse_pubkey(p, strlen(p), &k);

	if (r)
		return r;
	r = minisign_parse_sig(s, strlen(s), &g);
	if (r)
		return r;
	hash_of(m, strlen(m), h);
	return minisign_verify(&k, &g, h);
}

/* s with the first occurrence of from replaced by to (same length). */
static char *edited(const char *s, const char *from, const char *to)
{
	char *out = strdup(s);
	char *at = strstr(out, from);
	assert_non_null(at);
	assert_int_equal(strlen(from), strlen(to));
	memcpy(at, to, strlen(to));
	return out;
}

static void minisigns_own_signature_verifies(void **state)
{
	(void)state;
	struct minisign_pubkey k;
	struct minisign_sig g;
	char id[17];

	assert_int_equal(verify_texts(pub, sig, msg), MINISIGN_OK);
	assert_int_equal(minisign_parse_pubkey(pub, strlen(pub), &k), 0);
	minisign_key_id_hex(k.key_id, id);
	assert_string_equal(id, "7C0317402E773AD7"); /* as minisign says */
	assert_int_equal(minisign_parse_sig(sig, strlen(sig), &g), 0);
	assert_string_equal(g.trusted,
			    "vector for tests/unit/test_core_minisign.c");
	/* The key alone, without its comment line, and CRLF lines. */
	assert_int_equal(verify_texts(strchr(pub, '\n') + 1, sig, msg), 0);
	char crlf[1024];
	size_t n = 0;
	for (const char *c = sig; *c; c++) {
		if (*c == '\n')
			crlf[n++] = '\r';
		crlf[n++] = *c;
	}
	crlf[n] = '\0';
	assert_int_equal(verify_texts(pub, crlf, msg), 0);
}

static void every_change_is_refused_with_its_code(void **state)
{
	(void)state;
	/* The file. */
	assert_int_equal(verify_texts(pub, sig,
				      "tpwallet minisign test "
				      "vector!"),
			 MINISIGN_BAD_SIGNATURE);
	/* The trusted comment (the global signature covers it). */
	char *s = edited(sig, "vector for", "Vector for");
	assert_int_equal(verify_texts(pub, s, msg), MINISIGN_BAD_COMMENT);
	free(s);
	/* A byte of the signature (still base64, still 74 bytes). */
	s = edited(sig, "MLNyjv", "MLNyjw");
	assert_int_equal(verify_texts(pub, s, msg), MINISIGN_BAD_SIGNATURE);
	free(s);
	/* A byte of the global signature. */
	s = edited(sig, "XUrmB8", "XUrmB9");
	assert_int_equal(verify_texts(pub, s, msg), MINISIGN_BAD_COMMENT);
	free(s);
	/* Another key: its id differs. */
	uint8_t pk[32], sk[64], raw[42];
	char other[200], line[100];
	crypto_sign_keypair(pk, sk);
	raw[0] = 'E';
	raw[1] = 'd';
	memset(raw + 2, 0x11, 8);
	memcpy(raw + 10, pk, 32);
	sodium_bin2base64(line, sizeof(line), raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(other, sizeof(other), "untrusted comment: x\n%s\n", line);
	assert_int_equal(verify_texts(other, sig, msg), MINISIGN_OTHER_KEY);
	/* The same id with another key: the signature fails. */
	memcpy(raw + 2, "\xd7\x3a\x77\x2e\x40\x17\x03\x7c", 8);
	sodium_bin2base64(line, sizeof(line), raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(other, sizeof(other), "%s\n", line);
	assert_int_equal(verify_texts(other, sig, msg), MINISIGN_BAD_SIGNATURE);
	/* The legacy form is named as such. */
	char legacy[1024];
	snprintf(legacy, sizeof(legacy),
		 "untrusted comment: signature from minisign secret key\n"
		 "%s\ntrusted comment: legacy\nAAAA\n",
		 legacy_line);
	assert_int_equal(verify_texts(pub, legacy, msg), MINISIGN_LEGACY);
}

static void malformed_files_are_refused(void **state)
{
	(void)state;
	struct minisign_pubkey k;
	struct minisign_sig g;
	static const char *keys[] = {
		"",
		"untrusted comment: only a comment\n",
		"RWTXOncuQBcDfFzNaFID3fVz0eDwBmJkI9AsxcUz5DHW+to+bt12Lul\n",
		"RWTXOncuQBcDfFzNaFID3fVz0eDwBmJkI9AsxcUz5DHW+to+bt12LulXAA=="
		"\n",
		/* "ED" is a signature's algorithm, not a key's */
		"RUTXOncuQBcDfFzNaFID3fVz0eDwBmJkI9AsxcUz5DHW+to+bt12LulX\n",
		"RWTXOncuQBcDfFzNaFID3fVz0eDwBmJkI9AsxcUz5DHW+to+bt12LulX\n"
		"more\n",
		"RWTXOncuQBcDfFzNaFID3fVz0eDwBmJkI9AsxcUz5DHW+to+bt12Lul_\n",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(
			minisign_parse_pubkey(keys[i], strlen(keys[i]), &k),
			MINISIGN_MALFORMED_KEY);
	/* A signature with each line missing or mangled. */
	const char *lines[4];
	char buf[1024];
	const char *p = sig;
	for (int i = 0; i < 4; i++) {
		lines[i] = p;
		p = strchr(p, '\n') + 1;
	}
	for (int skip = 0; skip < 4; skip++) {
		size_t n = 0;
		for (int i = 0; i < 4; i++) {
			if (i == skip)
				continue;
			size_t len =
				(size_t)(strchr(lines[i], '\n') - lines[i]) + 1;
			memcpy(buf + n, lines[i], len);
			n += len;
		}
		buf[n] = '\0';
		assert_int_equal(minisign_parse_sig(buf, n, &g),
				 MINISIGN_MALFORMED_SIG);
	}
	char *s = edited(sig, "trusted comment: vector",
			 "trusted_comment:_vector");
	assert_int_equal(minisign_parse_sig(s, strlen(s), &g),
			 MINISIGN_MALFORMED_SIG);
	free(s);
	s = edited(sig, "untrusted comment: sig", "Untrusted comment: sig");
	assert_int_equal(minisign_parse_sig(s, strlen(s), &g),
			 MINISIGN_MALFORMED_SIG);
	free(s);
	/* A NUL inside the trusted comment. */
	char nul[1024];
	memcpy(nul, sig, sizeof(sig));
	*strstr(nul, "for tests") = '\0';
	nul[strlen(nul)] = '\0';
	assert_int_not_equal(minisign_parse_sig(nul, sizeof(sig) - 1, &g), 0);
	/* Past the size limit. */
	char *big = malloc(MINISIGN_FILE_BYTES_MAX + 2);
	memset(big, 'A', MINISIGN_FILE_BYTES_MAX + 1);
	big[MINISIGN_FILE_BYTES_MAX + 1] = '\0';
	assert_int_equal(
		minisign_parse_sig(big, MINISIGN_FILE_BYTES_MAX + 1, &g),
		MINISIGN_MALFORMED_SIG);
	assert_int_equal(
		minisign_parse_pubkey(big, MINISIGN_FILE_BYTES_MAX + 1, &k),
		MINISIGN_MALFORMED_KEY);
	free(big);
}

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minisigns_own_signature_verifies),
		cmocka_unit_test(every_change_is_refused_with_its_code),
		cmocka_unit_test(malformed_files_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
