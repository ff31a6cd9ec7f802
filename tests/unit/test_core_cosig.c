/*
 * test_core_cosig.c - tlog-cosignature/v1 lines and the tlog-witness
 * add-checkpoint body.  No published vector gives a cosigner's key with a
 * cosignature, so the format is checked independently here: the key id
 * is recomputed from SHA-256(name || "\n" || 0x04 || key), the signature
 * is verified by libsodium over a message built here from the spec's
 * text, and every mutation (name, key id, timestamp, signature, body,
 * base64 spelling) is refused.  The request parser is fed the spec's
 * example and every malformed shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "crypto/cosig.h"

#include "banned.h"

static const char body[] = "example.com/behind-the-sofa\n"
			   "20852163\n"
			   "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
static const char wname[] = "witness.example.com/w1";
static struct note_signer signer;

static int setup(void **state)
{
	u8 seed[32];

	(void)state;
	if (sodium_init() < 0)
		return -1;
	for (int i = 0; i < 32; i++)
		seed[i] = (u8)(i * 7 + 1);
	return note_signer_from_seed(wname, strlen(wname), seed, &signer);
}

static int teardown(void **state)
{
	(void)state;
	note_signer_clear(&signer);
	return 0;
}

static size_t sign_at(u64 ts, char *line, size_t cap)
{
	size_t n = 0;
	assert_int_equal(
		cosig_sign(&signer, ts, body, strlen(body), line, cap, &n), 0);
	assert_int_equal(strlen(line), n);
	return n;
}

static void decode_blob(const char *line, u8 blob[COSIG_BLOB_BYTES])
{
	const char *b64 = strrchr(line, ' ') + 1;
	size_t n = 0;
	assert_int_equal(sodium_base642bin(blob, COSIG_BLOB_BYTES, b64,
					   strlen(b64) - 1, NULL, &n, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	assert_int_equal(n, COSIG_BLOB_BYTES);
}

static void
test_cosignature_has_the_spec_shape_and_verifies_independently(void **state)
{
	char line[COSIG_LINE_BYTES_MAX + 1], prefix[64], msg[512];
	u8 blob[COSIG_BLOB_BYTES], h[32], pre[64];
	const u64 ts = 1679315147;
	size_t n = sign_at(ts, line, sizeof(line));
	int pn;

	(void)state;
	pn = snprintf(prefix, sizeof(prefix), "\xe2\x80\x94 %s ", wname);
	assert_memory_equal(line, prefix, (size_t)pn);
	assert_int_equal(line[n - 1], '\n');
	assert_int_equal(n - (size_t)pn - 1, 104); /* base64 of 76 bytes */
	decode_blob(line, blob);

	/* key id: SHA-256(name || "\n" || 0x04 || public key)[:4] */
	size_t pl = strlen(wname);
	memcpy(pre, wname, pl);
	pre[pl] = '\n';
	pre[pl + 1] = 0x04;
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, pre, pl + 2);
	crypto_hash_sha256_update(&st, signer.pub.public_key, 32);
	crypto_hash_sha256_final(&st, h);
	assert_memory_equal(blob, h, 4);
	assert_int_equal(cosig_key_id(wname, pl, signer.pub.public_key),
			 (u32)h[0] << 24 | (u32)h[1] << 16 | (u32)h[2] << 8 |
				 h[3]);
	/* ...which is not the signed-note (0x01) id of the same key. */
	assert_int_not_equal(cosig_key_id(wname, pl, signer.pub.public_key),
			     signer.pub.key_id);

	/* timestamp, 8 bytes big-endian */
	u64 got = 0;
	for (int i = 0; i < 8; i++)
		got = got << 8 | blob[4 + i];
	assert_int_equal(got, ts);

	/* the signed message, as the spec writes it */
	int mn = snprintf(msg, sizeof(msg), "cosignature/v1\ntime %llu\n%s",
			  (unsigned long long)ts, body);
	assert_int_equal(crypto_sign_verify_detached(blob + 12, (u8 *)msg,
						     (size_t)mn,
						     signer.pub.public_key),
			 0);

	u64 ts_out = 0;
	assert_int_equal(
		cosig_verify(&signer.pub, body, strlen(body), line, n, &ts_out),
		0);
	assert_int_equal(ts_out, ts);
	/* without the final newline too */
	assert_int_equal(cosig_verify(&signer.pub, body, strlen(body), line,
				      n - 1, NULL),
			 0);
}

static void test_cosigner_verifier_key_uses_type_0x04(void **state)
{
	char k[COSIG_VERIFIER_KEY_BYTES_MAX + 1], want[16];
	u8 raw[33];
	size_t n = 0, rn = 0;
	const char *b64;

	(void)state;
	assert_int_equal(cosig_verifier_format(&signer.pub, k, sizeof(k), &n),
			 0);
	assert_int_equal(strncmp(k, wname, strlen(wname)), 0);
	snprintf(want, sizeof(want), "+%08x+",
		 (unsigned)cosig_key_id(wname, strlen(wname),
					signer.pub.public_key));
	assert_memory_equal(k + strlen(wname), want, 10);
	b64 = k + strlen(wname) + 10;
	assert_int_equal(sodium_base642bin(raw, sizeof(raw), b64, strlen(b64),
					   NULL, &rn, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	assert_int_equal(rn, 33);
	assert_int_equal(raw[0], 0x04);
	assert_memory_equal(raw + 1, signer.pub.public_key, 32);
	assert_int_equal(cosig_verifier_format(&signer.pub, k, 10, NULL),
			 COSIG_E_NO_SPACE);
}

static void reencode(char *line, const u8 blob[COSIG_BLOB_BYTES])
{
	char *b64 = strrchr(line, ' ') + 1;
	sodium_bin2base64(b64, 106, blob, COSIG_BLOB_BYTES,
			  sodium_base64_VARIANT_ORIGINAL);
	memcpy(b64 + 104, "\n", 2); /* 104 digits, then "\n" and NUL */
}

static void test_every_mutation_of_a_cosignature_is_refused(void **state)
{
	char line[COSIG_LINE_BYTES_MAX + 1], bad[COSIG_LINE_BYTES_MAX + 8];
	u8 blob[COSIG_BLOB_BYTES], mut[COSIG_BLOB_BYTES];
	size_t n = sign_at(1700000000, line, sizeof(line));
	struct note_verifier other = signer.pub;
	char body2[sizeof(body)];

	(void)state;
	decode_blob(line, blob);

	/* each byte of the blob: key id, timestamp, signature */
	for (size_t i = 0; i < COSIG_BLOB_BYTES; i++) {
		memcpy(bad, line, n + 1);
		memcpy(mut, blob, sizeof(mut));
		mut[i] ^= 0x01;
		reencode(bad, mut);
		int r = cosig_verify(&signer.pub, body, strlen(body), bad,
				     strlen(bad), NULL);
		if (i < 4)
			assert_int_equal(r, COSIG_E_KEY_ID_MISMATCH);
		else
			assert_int_equal(r, COSIG_E_BAD_SIGNATURE);
	}
	/* a timestamp above 2^63 - 1 */
	memcpy(bad, line, n + 1);
	memcpy(mut, blob, sizeof(mut));
	mut[4] |= 0x80;
	reencode(bad, mut);
	assert_int_equal(cosig_verify(&signer.pub, body, strlen(body), bad,
				      strlen(bad), NULL),
			 COSIG_E_BAD_TIMESTAMP);
	/* another body */
	memcpy(body2, body, sizeof(body));
	body2[30] = '4';
	assert_int_equal(
		cosig_verify(&signer.pub, body2, strlen(body2), line, n, NULL),
		COSIG_E_BAD_SIGNATURE);
	/* another name */
	other.name[0] = 'W';
	assert_int_equal(
		cosig_verify(&other, body, strlen(body), line, n, NULL),
		COSIG_E_NAME_MISMATCH);
	/* another key */
	other = signer.pub;
	other.public_key[0] ^= 1;
	assert_int_equal(
		cosig_verify(&other, body, strlen(body), line, n, NULL),
		COSIG_E_KEY_ID_MISMATCH);
	/* shapes */
	static const char *const shapes[] = {
		"",
		"\xe2\x80\x94",
		"- witness.example.com/w1 AAAA\n",
		"\xe2\x80\x94witness.example.com/w1 AAAA\n",
		"\xe2\x80\x94 witness.example.com/w1\n",
		"\xe2\x80\x94 witness.example.com/w1 AAAA\n",
		"\xe2\x80\x94 witness.example.com/w1  \n",
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		int r = cosig_verify(&signer.pub, body, strlen(body), shapes[i],
				     strlen(shapes[i]), NULL);
		/* each is not a cosignature line at all (no em dash and
		 * space, no name, no key, or a signature too short to hold
		 * a key id and a timestamped signature): the line is bad
		 * before any name is compared */
		assert_int_equal(r, COSIG_E_BAD_LINE);
	}
	/* base64 with a trailing space, or missing padding */
	memcpy(bad, line, n - 1);
	memcpy(bad + n - 1, " \n", 3);
	assert_int_equal(cosig_verify(&signer.pub, body, strlen(body), bad,
				      strlen(bad), NULL),
			 COSIG_E_BAD_LINE);
	memcpy(bad, line, n + 1);
	bad[n - 2] = '\n';
	bad[n - 1] = '\0';
	assert_int_equal(cosig_verify(&signer.pub, body, strlen(body), bad,
				      strlen(bad), NULL),
			 COSIG_E_BAD_LINE);
}

static void test_sign_refuses_bad_arguments(void **state)
{
	char line[COSIG_LINE_BYTES_MAX + 1];

	(void)state;
	assert_int_equal(cosig_sign(&signer, COSIG_TIMESTAMP_MAX + 1, body,
				    strlen(body), line, sizeof(line), NULL),
			 COSIG_E_BAD_TIMESTAMP);
	assert_int_equal(
		cosig_sign(&signer, 1, body, 0, line, sizeof(line), NULL),
		COSIG_E_TOO_LARGE);
	assert_int_equal(
		cosig_sign(&signer, 1, body, strlen(body), line, 20, NULL),
		COSIG_E_NO_SPACE);
	assert_int_equal(cosig_sign(&signer, COSIG_TIMESTAMP_MAX, body,
				    strlen(body), line, sizeof(line), NULL),
			 0);
	assert_string_equal(cosig_strerror(COSIG_E_BAD_SIGNATURE),
			    "invalid_cosignature");
	assert_string_equal(cosig_strerror(-1), "unknown");
}

static const char spec_request[] =
	"old 20852014\n"
	"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
	"jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
	"5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
	"/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
	"\n"
	"example.com/behind-the-sofa\n"
	"20852163\n"
	"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
	"\n"
	"\xe2\x80\x94 example.com/behind-the-sofa "
	"Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
	"Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

static void test_request_parser_reads_the_spec_example(void **state)
{
	static struct cosig_request rq;

	(void)state;
	assert_int_equal(
		cosig_request_parse(spec_request, strlen(spec_request), &rq),
		0);
	assert_int_equal(rq.old_size, 20852014);
	assert_int_equal(rq.nproof, 4);
	assert_int_equal(rq.proof[0][0], 0x3e); /* "PlRN" */
	assert_int_equal(rq.proof[3][0], 0xff); /* "/6WV" */
	assert_ptr_equal(rq.note, strstr(spec_request, "example.com/"));
	assert_int_equal(rq.note_len, strlen(rq.note));

	static const char zero[] = "old 0\n\nx\n";
	assert_int_equal(cosig_request_parse(zero, strlen(zero), &rq), 0);
	assert_int_equal(rq.old_size, 0);
	assert_int_equal(rq.nproof, 0);
	assert_int_equal(rq.note_len, 2);
}

static void test_request_parser_refuses_every_malformed_body(void **state)
{
	static struct cosig_request rq;
	static const struct {
		const char *s;
		int want;
	} cases[] = {
		{"", COSIG_E_BAD_OLD_LINE},
		{"old 1", COSIG_E_BAD_OLD_LINE},
		{"old\n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"old \n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"old 01\n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"old -1\n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"old +1\n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"old 1 \n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"Old 1\n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"old 18446744073709551616\n\nx\n", COSIG_E_BAD_OLD_LINE},
		{"old 1\n", COSIG_E_NO_CHECKPOINT},
		{"old 1\n\n", COSIG_E_NO_CHECKPOINT},
		{"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n",
		 COSIG_E_NO_CHECKPOINT},
		{"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw\n\nx\n",
		 COSIG_E_BAD_PROOF_LINE},
		{"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=\n\nx\n",
		 COSIG_E_BAD_PROOF_LINE},
		{"old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw= \n\nx\n",
		 COSIG_E_BAD_PROOF_LINE},
		{"old 1\nAAAA\n\nx\n", COSIG_E_BAD_PROOF_LINE},
		{"old 1\n \n\nx\n", COSIG_E_BAD_PROOF_LINE},
	};

	(void)state;
	assert_int_equal(
		cosig_request_parse("old 18446744073709551615\n\nx", 29, &rq),
		0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = cosig_request_parse(cases[i].s, strlen(cases[i].s),
					    &rq);
		if (r != cases[i].want)
			fail_msg("case %zu (%s): %d, want %d", i, cases[i].s, r,
				 cases[i].want);
	}

	/* 63 proof lines are allowed, 64 are not */
	static char big[COSIG_REQUEST_BYTES_MAX + 1];
	size_t at = (size_t)snprintf(big, sizeof(big), "old 5\n");
	for (int i = 0; i < 63; i++)
		at += (size_t)snprintf(
			big + at, sizeof(big) - at, "%s\n",
			"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=");
	at += (size_t)snprintf(big + at, sizeof(big) - at, "\nx\n");
	assert_int_equal(cosig_request_parse(big, at, &rq), 0);
	assert_int_equal(rq.nproof, 63);
	at = (size_t)snprintf(big, sizeof(big), "old 5\n");
	for (int i = 0; i < 64; i++)
		at += (size_t)snprintf(
			big + at, sizeof(big) - at, "%s\n",
			"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=");
	at += (size_t)snprintf(big + at, sizeof(big) - at, "\nx\n");
	assert_int_equal(cosig_request_parse(big, at, &rq),
			 COSIG_E_TOO_MANY_PROOF_LINES);
	assert_int_equal(
		cosig_request_parse(big, COSIG_REQUEST_BYTES_MAX + 1, &rq),
		COSIG_E_REQUEST_TOO_LARGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_cosignature_has_the_spec_shape_and_verifies_independently),
		cmocka_unit_test(test_cosigner_verifier_key_uses_type_0x04),
		cmocka_unit_test(
			test_every_mutation_of_a_cosignature_is_refused),
		cmocka_unit_test(test_sign_refuses_bad_arguments),
		cmocka_unit_test(test_request_parser_reads_the_spec_example),
		cmocka_unit_test(
			test_request_parser_refuses_every_malformed_body),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
