/*
 * test_core_jose.c - base64url, Ed25519 JWKs, thumbprints, compact JWS
 * and JWT claims: the published vectors of RFC 8037 Appendix A, every
 * refusal of the verifier with its own error code, tampering, round trips
 * with random keys and the claim checks at their boundaries.
 *
 * RFC 7638 section 3.1's example is an RSA key; this module knows only OKP
 * Ed25519 keys, so the thumbprint vector used is RFC 8037 A.3, which is
 * the same computation over an OKP key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "crypto/b64url.h"
#include "crypto/jose.h"

#include "banned.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* RFC 8037 Appendix A.1 and A.2. */
static const char rfc_private_jwk[] =
	"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	"\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
	"\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char rfc_public_jwk[] =
	"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	"\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char rfc_x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const char rfc_d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const unsigned char rfc_d_bytes[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
	0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
	0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const unsigned char rfc_x_bytes[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
	0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
	0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
/* A.3 */
static const char rfc_thumbprint[] =
	"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
/* A.4 */
static const char rfc_payload[] = "Example of Ed25519 signing";
static const char rfc_jws[] =
	"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
	"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt"
	"9g7sVvpAr_MuM0KAg";
/* The same payload and key with "alg":"Ed25519" (RFC 9864), as produced
 * independently by OpenSSL (published in another project's tests). */
static const char rfc9864_jws[] =
	"eyJhbGciOiJFZDI1NTE5In0.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
	"UxhIYLHGg39NVCLpQAVD_UcfOmnGSCzLFZoXYkLiIbFccmOb_qObsgjzLKsfJw-4Nlcc"
	"UgvYrEHrRbNV0HcZAQ";

/* ---- helpers ---------------------------------------------------------- */

struct keyring {
	struct jose_pubkey keys[4];
	size_t n;
	bool kidless_ok; /* a token without kid gets keys[0] */
};

static int ring_lookup(void *ctx, const char *kid, struct jose_pubkey *out)
{
	const struct keyring *r = ctx;

	if (!kid)
		return r->kidless_ok && r->n ? (*out = r->keys[0], 0)
					     : -JOSE_unknown_kid;
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->keys[i].kid, kid) == 0) {
			*out = r->keys[i];
			return 0;
		}
	}
	return -JOSE_unknown_kid;
}

static struct jose_pubkey rfc_pub(void)
{
	struct jose_pubkey k;
	assert_int_equal(jose_pubkey_parse_jwk(rfc_public_jwk,
					       strlen(rfc_public_jwk), &k),
			 0);
	return k;
}

static struct keyring rfc_ring(const char *kid)
{
	struct keyring r = {.n = 1, .kidless_ok = true};
	r.keys[0] = rfc_pub();
	snprintf(r.keys[0].kid, sizeof(r.keys[0].kid), "%s", kid);
	return r;
}

static int verify_with(const char *token, struct keyring *r, const char *typ,
		       bool require_kid)
{
	struct jose_verify_opts o = {.lookup = ring_lookup,
				     .lookup_ctx = r,
				     .typ = typ,
				     .require_kid = require_kid};
	struct jose_jws jws;
	int ret = jose_jwt_verify(token, strlen(token), &o, &jws);
	if (ret == 0) {
		assert_non_null(jws.claims);
		assert_true(json_is_object(jws.claims));
	} else {
		assert_null(jws.header);
		assert_null(jws.payload);
	}
	jose_jws_clear(&jws);
	return ret;
}

/* A JWT under the RFC key (kid "k1") with this exact header and payload
 * text, validly signed: a refusal is then the header's fault, not the
 * signature's. */
static void forge(const char *header, const char *payload, char *out,
		  size_t out_size)
{
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sig[crypto_sign_BYTES];
	size_t o;

	assert_int_equal(crypto_sign_seed_keypair(pk, sk, rfc_d_bytes), 0);
	assert_int_equal(b64url_encode(out, out_size, header, strlen(header)),
			 0);
	o = strlen(out);
	out[o++] = '.';
	assert_int_equal(
		b64url_encode(out + o, out_size - o, payload, strlen(payload)),
		0);
	o = strlen(out);
	crypto_sign_detached(sig, NULL, (unsigned char *)out, o, sk);
	out[o++] = '.';
	assert_int_equal(b64url_encode(out + o, out_size - o, sig, sizeof(sig)),
			 0);
	sodium_memzero(sk, sizeof(sk));
}

static const char ok_claims[] = "{\"iss\":\"a\",\"sub\":\"b\",\"exp\":2000}";

static int forged_verdict(const char *header, const char *payload,
			  const char *typ, bool require_kid)
{
	static char token[4 * JOSE_TOKEN_BYTES_MAX];
	struct keyring r = rfc_ring("k1");

	forge(header, payload, token, sizeof(token));
	return verify_with(token, &r, typ, require_kid);
}

static int setup(void **state)
{
	(void)state;
	return jose_init();
}

/* ---- base64url -------------------------------------------------------- */

static void b64url_matches_rfc4648_vectors(void **state)
{
	(void)state;
	static const char *const bin[] = {"",	  "f",	   "fo",    "foo",
					  "foob", "fooba", "foobar"};
	static const char *const txt[] = {
		"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char out[16];
	unsigned char back[16];
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(bin); i++) {
		assert_int_equal(
			b64url_encode(out, sizeof(out), bin[i], strlen(bin[i])),
			0);
		assert_string_equal(out, txt[i]);
		assert_int_equal(b64url_decode(back, sizeof(back), txt[i],
					       strlen(txt[i]), &n),
				 0);
		assert_int_equal(n, strlen(bin[i]));
		assert_memory_equal(back, bin[i], n);
	}
	/* The two characters that differ from RFC 4648 section 4. */
	unsigned char ff[3] = {0xfb, 0xff, 0xbf};
	assert_int_equal(b64url_encode(out, sizeof(out), ff, 3), 0);
	assert_string_equal(out, "-_-_");
}

static void b64url_round_trips_every_byte_and_length(void **state)
{
	(void)state;
	unsigned char bin[300], back[300];
	char txt[420];
	size_t n;

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(bin); len++) {
		assert_int_equal(b64url_encode(txt, sizeof(txt), bin, len), 0);
		assert_int_equal(strlen(txt), b64url_encoded_len(len));
		assert_int_equal(b64url_decoded_len(strlen(txt)), len);
		assert_int_equal(
			b64url_decode(back, sizeof(back), txt, strlen(txt), &n),
			0);
		assert_int_equal(n, len);
		assert_memory_equal(back, bin, len);
	}
}

static void b64url_rejects_padding_foreign_chars_and_loose_bits(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"Zg==",	  "Zg=",     "Zm8=", "Z",     "Zm9vY",	 "Zm+v",
		"Zm/v",	  "Zm9 ",    " Zm9", "Zm9\n", "Zh",	 "Zm9",
		"Zm9vYh", "Zm9vYmF", "Z===", "====",  "Zm9v\x80"};
	unsigned char out[16];
	size_t n = 99;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(b64url_decode(out, sizeof(out), bad[i],
					       strlen(bad[i]), &n),
				 -EINVAL);
		assert_int_equal(n, 0);
	}
	/* A NUL inside the stated length is a foreign character too. */
	assert_int_equal(b64url_decode(out, sizeof(out), "Zm\0v", 4, &n),
			 -EINVAL);
	/* Nothing half-decoded is left behind. */
	assert_int_equal(b64url_decode(out, sizeof(out), "Zm9vYmF!", 8, &n),
			 -EINVAL);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(out[i], 0);
}

static void b64url_enforces_buffer_and_length_limits(void **state)
{
	(void)state;
	unsigned char out[2];
	char txt[4];
	size_t n;

	assert_int_equal(b64url_decode(out, sizeof(out), "Zm9v", 4, &n),
			 -ENOSPC);
	assert_int_equal(b64url_encode(txt, sizeof(txt), "foo", 3), -ENOSPC);
	assert_int_equal(b64url_encode(txt, sizeof(txt), "fo", 2), 0);
	assert_int_equal(b64url_decode(out, sizeof(out), "Zm9v",
				       B64URL_TEXT_BYTES_MAX + 1, &n),
			 -E2BIG);
	assert_int_equal(
		b64url_encode(txt, sizeof(txt), "", B64URL_BIN_BYTES_MAX + 1),
		-E2BIG);
}

/* libsodium's decoder, for the record: why b64url.c exists. */
static void libsodium_base64_would_accept_padding(void **state)
{
	(void)state;
	unsigned char out[4];
	const char *end;
	size_t n;

	assert_int_equal(
		sodium_base642bin(out, sizeof(out), "AA==", 4, NULL, &n, &end,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING),
		0);
	assert_int_equal(b64url_decode(out, sizeof(out), "AA==", 4, &n),
			 -EINVAL);
}

/* ---- RFC 8037 Appendix A ---------------------------------------------- */

static void rfc8037_a1_private_key_parses_and_serialises(void **state)
{
	(void)state;
	struct jose_seckey *k;
	struct jose_pubkey pub;
	char jwk[JOSE_JWK_BYTES_MAX];

	assert_int_equal(jose_seckey_parse_jwk(rfc_private_jwk,
					       strlen(rfc_private_jwk), &k),
			 0);
	jose_seckey_public(k, &pub);
	assert_memory_equal(pub.x, rfc_x_bytes, 32);
	assert_int_equal(jose_seckey_to_jwk(k, jwk, sizeof(jwk)), 0);
	char want[256];
	snprintf(want, sizeof(want),
		 "{\"crv\":\"Ed25519\",\"d\":\"%s\",\"kty\":\"OKP\","
		 "\"x\":\"%s\"}",
		 rfc_d, rfc_x);
	assert_string_equal(jwk, want);
	sodium_memzero(jwk, sizeof(jwk));
	jose_seckey_free(k);

	/* The seed gives the same key. */
	assert_int_equal(jose_seckey_from_seed(rfc_d_bytes, "k1", &k), 0);
	jose_seckey_public(k, &pub);
	assert_memory_equal(pub.x, rfc_x_bytes, 32);
	assert_string_equal(pub.kid, "k1");
	jose_seckey_free(k);
}

static void rfc8037_a2_public_key_parses_and_serialises(void **state)
{
	(void)state;
	struct jose_pubkey k = rfc_pub();
	char jwk[JOSE_JWK_BYTES_MAX], want[128];

	assert_memory_equal(k.x, rfc_x_bytes, 32);
	assert_string_equal(k.kid, "");
	assert_int_equal(jose_pubkey_to_jwk(&k, jwk, sizeof(jwk)), 0);
	snprintf(want, sizeof(want),
		 "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", rfc_x);
	assert_string_equal(jwk, want);
	/* and back, with a kid, members in lexicographic order */
	snprintf(k.kid, sizeof(k.kid), "2025-01");
	assert_int_equal(jose_pubkey_to_jwk(&k, jwk, sizeof(jwk)), 0);
	snprintf(want, sizeof(want),
		 "{\"crv\":\"Ed25519\",\"kid\":\"2025-01\",\"kty\":\"OKP\","
		 "\"x\":\"%s\"}",
		 rfc_x);
	assert_string_equal(jwk, want);
	struct jose_pubkey again;
	assert_int_equal(jose_pubkey_parse_jwk(jwk, strlen(jwk), &again), 0);
	assert_memory_equal(&again, &k, sizeof(k));
	assert_int_equal(jose_pubkey_to_jwk(&k, jwk, 20),
			 -JOSE_buffer_too_small);
	assert_string_equal(jwk, "");
}

static void rfc8037_a3_thumbprint(void **state)
{
	(void)state;
	struct jose_pubkey k = rfc_pub();
	char tp[JOSE_B64_32_BYTES];

	assert_int_equal(jose_thumbprint(&k, tp), 0);
	assert_string_equal(tp, rfc_thumbprint);
	/* The kid is not part of the thumbprint. */
	snprintf(k.kid, sizeof(k.kid), "anything");
	assert_int_equal(jose_thumbprint(&k, tp), 0);
	assert_string_equal(tp, rfc_thumbprint);
}

static void rfc8037_a4_signature_is_byte_exact(void **state)
{
	(void)state;
	struct jose_seckey *k;
	struct jose_sign_opts o = {.alg = JOSE_ALG_EDDSA};
	char tok[JOSE_TOKEN_BYTES_MAX + 1];
	size_t n;

	assert_int_equal(jose_seckey_parse_jwk(rfc_private_jwk,
					       strlen(rfc_private_jwk), &k),
			 0);
	assert_int_equal(jose_jws_sign(k, &o, rfc_payload, strlen(rfc_payload),
				       tok, sizeof(tok), &n),
			 0);
	assert_string_equal(tok, rfc_jws);
	assert_int_equal(n, strlen(rfc_jws));
	/* RFC 9864's fully specified name, same key and payload. */
	o.alg = JOSE_ALG_ED25519;
	assert_int_equal(jose_jws_sign(k, &o, rfc_payload, strlen(rfc_payload),
				       tok, sizeof(tok), &n),
			 0);
	assert_string_equal(tok, rfc9864_jws);
	/* Too small a buffer: nothing written. */
	assert_int_equal(jose_jws_sign(k, &o, rfc_payload, strlen(rfc_payload),
				       tok, 100, &n),
			 -JOSE_buffer_too_small);
	assert_int_equal(n, 0);
	jose_seckey_free(k);
}

static void rfc8037_a5_verifies_with_both_alg_names(void **state)
{
	(void)state;
	struct keyring r = rfc_ring("");
	struct jose_verify_opts o = {.lookup = ring_lookup, .lookup_ctx = &r};
	struct jose_jws jws;

	assert_int_equal(jose_jws_verify(rfc_jws, strlen(rfc_jws), &o, &jws),
			 0);
	assert_int_equal(jws.payload_len, strlen(rfc_payload));
	assert_string_equal((char *)jws.payload, rfc_payload);
	assert_int_equal(jws.alg, JOSE_ALG_EDDSA);
	assert_null(jws.kid);
	assert_null(jws.claims);
	jose_jws_clear(&jws);
	jose_jws_clear(&jws); /* idempotent */

	assert_int_equal(
		jose_jws_verify(rfc9864_jws, strlen(rfc9864_jws), &o, &jws), 0);
	assert_int_equal(jws.alg, JOSE_ALG_ED25519);
	jose_jws_clear(&jws);

	/* Not a JWT: the JWT layer refuses the same token. */
	assert_int_equal(jose_jwt_verify(rfc_jws, strlen(rfc_jws), &o, &jws),
			 -JOSE_bad_payload);
	assert_null(jws.payload);
}

/* ---- JWK refusals ----------------------------------------------------- */

static void jwk_refusals_have_precise_codes(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		int want;
	} cases[] = {
		{"{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"x\":\"%X\"}",
		 -JOSE_key_bad_kty},
		{"{\"kty\":\"RSA\",\"crv\":\"Ed25519\",\"x\":\"%X\"}",
		 -JOSE_key_bad_kty},
		{"{\"crv\":\"Ed25519\",\"x\":\"%X\"}", -JOSE_key_bad_kty},
		{"{\"kty\":1,\"crv\":\"Ed25519\",\"x\":\"%X\"}",
		 -JOSE_key_bad_kty},
		{"{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"%X\"}",
		 -JOSE_key_bad_crv},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"%X\"}",
		 -JOSE_key_bad_crv},
		{"{\"kty\":\"OKP\",\"crv\":\"P-256\",\"x\":\"%X\"}",
		 -JOSE_key_bad_crv},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}", -JOSE_key_bad_x},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":7}",
		 -JOSE_key_bad_x},
		/* 31 and 33 bytes */
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		 "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUQ\"}",
		 -JOSE_key_bad_x},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		 "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoA\"}",
		 -JOSE_key_bad_x},
		/* padded, non-canonical last character */
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X=\"}",
		 -JOSE_key_bad_x},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		 "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp\"}",
		 -JOSE_key_bad_x},
		/* the identity point: small order */
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		 "\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
		 -JOSE_key_bad_x},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\","
		 "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\"}",
		 -JOSE_key_private_member},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\",\"k\":"
		 "\"AA\"}",
		 -JOSE_key_private_member},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\",\"p\":"
		 "\"AA\"}",
		 -JOSE_key_private_member},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\",\"y\":"
		 "\"AA\"}",
		 -JOSE_key_foreign_member},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\",\"n\":"
		 "\"AA\"}",
		 -JOSE_key_foreign_member},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\","
		 "\"use\":\"enc\"}",
		 -JOSE_key_not_for_signing},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\","
		 "\"alg\":\"RS256\"}",
		 -JOSE_key_not_for_signing},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\","
		 "\"kid\":\"a b\"}",
		 -JOSE_bad_kid},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\",\"kid\":"
		 "\"\"}",
		 -JOSE_bad_kid},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\",\"kid\":5}",
		 -JOSE_bad_kid},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\","
		 "\"x\":\"%X\"}",
		 -JOSE_duplicate_key},
		{"[]", -JOSE_key_bad_json},
		{"{", -JOSE_key_bad_json},
		{"", -JOSE_key_bad_json},
		{"\"OKP\"", -JOSE_key_bad_json},
		{"{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}",
		 -JOSE_too_deep},
		/* unknown public members are ignored (RFC 7517 4) */
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%X\","
		 "\"use\":\"sig\",\"alg\":\"EdDSA\",\"kid\":\"k\",\"ext\":"
		 "true}",
		 0},
	};
	char json[512], *p;
	struct jose_pubkey k;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		/* %X stands for the RFC's x */
		const char *s = cases[i].json;
		size_t o = 0;
		while (*s) {
			if (s[0] == '%' && s[1] == 'X') {
				memcpy(json + o, rfc_x, strlen(rfc_x));
				o += strlen(rfc_x);
				s += 2;
			} else {
				json[o++] = *s++;
			}
		}
		json[o] = '\0';
		int ret = jose_pubkey_parse_jwk(json, o, &k);
		if (ret != cases[i].want)
			print_error("case %zu: %s: got %s\n", i, json,
				    jose_err_name(ret));
		assert_int_equal(ret, cases[i].want);
	}
	/* oversized */
	p = malloc(JOSE_JWK_BYTES_MAX + 2);
	assert_non_null(p);
	memset(p, ' ', JOSE_JWK_BYTES_MAX + 1);
	assert_int_equal(jose_pubkey_parse_jwk(p, JOSE_JWK_BYTES_MAX + 1, &k),
			 -JOSE_too_large);
	free(p);
	/* a 65-character kid */
	snprintf(json, sizeof(json),
		 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
		 "\"kid\":\"%065d\"}",
		 rfc_x, 0);
	assert_int_equal(jose_pubkey_parse_jwk(json, strlen(json), &k),
			 -JOSE_bad_kid);
}

static void private_jwk_refusals(void **state)
{
	(void)state;
	struct jose_seckey *k = (struct jose_seckey *)1;
	char json[512];

	/* d missing, short, not matching x */
	assert_int_equal(jose_seckey_parse_jwk(rfc_public_jwk,
					       strlen(rfc_public_jwk), &k),
			 -JOSE_key_bad_d);
	assert_null(k);
	snprintf(json, sizeof(json),
		 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
		 "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2\"}",
		 rfc_x);
	assert_int_equal(jose_seckey_parse_jwk(json, strlen(json), &k),
			 -JOSE_key_bad_d);
	snprintf(json, sizeof(json),
		 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
		 "\"d\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
		 rfc_x);
	assert_int_equal(jose_seckey_parse_jwk(json, strlen(json), &k),
			 -JOSE_key_mismatch);
	snprintf(json, sizeof(json),
		 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
		 "\"d\":\"%s\",\"p\":\"AA\"}",
		 rfc_x, rfc_d);
	assert_int_equal(jose_seckey_parse_jwk(json, strlen(json), &k),
			 -JOSE_key_foreign_member);
	assert_null(k);
	assert_int_equal(jose_seckey_generate("bad kid", &k), -JOSE_bad_kid);
}

/* ---- JWS refusals ----------------------------------------------------- */

static void refuses_every_other_alg(void **state)
{
	(void)state;
	static const char *const algs[] = {
		"none",	   "None",  "NONE",  "HS256",  "HS384",	   "HS512",
		"RS256",   "RS384", "RS512", "ES256",  "ES384",	   "ES512",
		"ES256K",  "PS256", "PS384", "PS512",  "eddsa",	   "EDDSA",
		"ed25519", "Ed448", "",	     "EdDSA ", "RSA-OAEP", "dir"};
	char header[128];

	for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
		snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", algs[i]);
		assert_int_equal(forged_verdict(header, ok_claims, NULL, false),
				 -JOSE_alg_not_allowed);
	}
	assert_int_equal(
		forged_verdict("{\"typ\":\"JWT\"}", ok_claims, NULL, false),
		-JOSE_bad_header);
	assert_int_equal(
		forged_verdict("{\"alg\":null}", ok_claims, NULL, false),
		-JOSE_bad_header);
	assert_int_equal(
		forged_verdict("{\"alg\":[\"EdDSA\"]}", ok_claims, NULL, false),
		-JOSE_bad_header);
	/* The classic unsigned token: empty signature segment. */
	struct keyring r = rfc_ring("");
	assert_int_equal(
		verify_with("eyJhbGciOiJub25lIn0.e30.", &r, NULL, false),
		-JOSE_bad_format);
	assert_int_equal(
		forged_verdict("{\"alg\":\"EdDSA\"}", ok_claims, NULL, false),
		0);
	assert_int_equal(
		forged_verdict("{\"alg\":\"Ed25519\"}", ok_claims, NULL, false),
		0);
}

static void refuses_crit_embedded_keys_and_b64(void **state)
{
	(void)state;
	static const struct {
		const char *header;
		int want;
	} cases[] = {
		{"{\"alg\":\"EdDSA\",\"crit\":[\"exp\"],\"exp\":1}",
		 -JOSE_crit_header},
		{"{\"alg\":\"EdDSA\",\"crit\":[]}", -JOSE_crit_header},
		{"{\"alg\":\"EdDSA\",\"jwk\":{\"kty\":\"OKP\"}}",
		 -JOSE_embedded_key},
		{"{\"alg\":\"EdDSA\",\"jku\":\"https://evil/\"}",
		 -JOSE_embedded_key},
		{"{\"alg\":\"EdDSA\",\"x5u\":\"https://evil/\"}",
		 -JOSE_embedded_key},
		{"{\"alg\":\"EdDSA\",\"x5c\":[\"AA\"]}", -JOSE_embedded_key},
		{"{\"alg\":\"EdDSA\",\"b64\":false}", -JOSE_bad_header},
		{"{\"alg\":\"EdDSA\",\"alg\":\"none\"}", -JOSE_duplicate_key},
		{"{\"alg\":\"none\",\"alg\":\"EdDSA\"}", -JOSE_duplicate_key},
		{"[\"alg\",\"EdDSA\"]", -JOSE_bad_header},
		{"\"EdDSA\"", -JOSE_bad_header},
		{"{\"alg\":\"EdDSA\"", -JOSE_bad_header},
		{"{\"alg\":\"EdDSA\"} ", 0},
		{"{\"alg\":\"EdDSA\"}x", -JOSE_bad_header},
		{"{\"alg\":\"EdDSA\",\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}",
		 -JOSE_too_deep},
		{"{\"alg\":\"EdDSA\",\"x\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}",
		 0},
		{"{\"alg\":\"EdDSA\",\"x\":\"[[[[[[[[[[[[[[[[[[[[[\\\"\"}", 0},
		{"{\"alg\":\"EdDSA\",\"x\":\"\\u0000\"}", -JOSE_bad_header},
		{"{\"alg\":\"Ed\xff\"}", -JOSE_bad_header},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int ret =
			forged_verdict(cases[i].header, ok_claims, NULL, false);
		if (ret != cases[i].want)
			print_error("case %zu: %s: got %s\n", i,
				    cases[i].header, jose_err_name(ret));
		assert_int_equal(ret, cases[i].want);
	}
}

static void typ_is_checked_when_required(void **state)
{
	(void)state;
	const char *want = "dpop+jwt";

	assert_int_equal(
		forged_verdict("{\"alg\":\"EdDSA\"}", ok_claims, want, false),
		-JOSE_bad_typ);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}",
					ok_claims, want, false),
			 -JOSE_bad_typ);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"typ\":\"dpop+"
					"jwtx\"}",
					ok_claims, want, false),
			 -JOSE_bad_typ);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"typ\":\"dpop+"
					"jwt\"}",
					ok_claims, want, false),
			 0);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"typ\":"
					"\"Application/DPoP+JWT\"}",
					ok_claims, want, false),
			 0);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"typ\":7}",
					ok_claims, NULL, false),
			 -JOSE_bad_header);
	/* not required: any string typ passes */
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}",
					ok_claims, NULL, false),
			 0);
}

static void kid_is_checked_and_looked_up(void **state)
{
	(void)state;
	assert_int_equal(
		forged_verdict("{\"alg\":\"EdDSA\"}", ok_claims, NULL, true),
		-JOSE_bad_kid);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"kid\":5}",
					ok_claims, NULL, false),
			 -JOSE_bad_kid);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"kid\":\"k 1\"}",
					ok_claims, NULL, false),
			 -JOSE_bad_kid);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"kid\":\"\"}",
					ok_claims, NULL, false),
			 -JOSE_bad_kid);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"kid\":\"k2\"}",
					ok_claims, NULL, true),
			 -JOSE_unknown_kid);
	assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\",\"kid\":\"k1\"}",
					ok_claims, NULL, true),
			 0);
}

static void refuses_payloads_that_are_not_objects(void **state)
{
	(void)state;
	static const struct {
		const char *payload;
		int want;
	} cases[] = {
		{"[1]", -JOSE_bad_payload},
		{"\"s\"", -JOSE_bad_payload},
		{"1", -JOSE_bad_payload},
		{"null", -JOSE_bad_payload},
		{"Example of Ed25519 signing", -JOSE_bad_payload},
		{"{\"exp\":1,\"exp\":2}", -JOSE_duplicate_key},
		{"{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", -JOSE_too_deep},
		{"{}", 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_int_equal(forged_verdict("{\"alg\":\"EdDSA\"}",
						cases[i].payload, NULL, false),
				 cases[i].want);
}

static void refuses_bad_shapes_and_encodings(void **state)
{
	(void)state;
	static const struct {
		const char *token;
		int want;
	} cases[] = {
		{"", -JOSE_bad_format},
		{"abc", -JOSE_bad_format},
		{"a.b", -JOSE_bad_format},
		{"a.b.c.d", -JOSE_bad_format},
		{"a..c", -JOSE_bad_format},
		{".b.c", -JOSE_bad_format},
		{"a.b.", -JOSE_bad_format},
		{"..", -JOSE_bad_format},
		{"...", -JOSE_bad_format},
		{"eyJhbGciOiJFZERTQSJ9=.e30.AA", -JOSE_bad_base64},
		{"eyJhbGciOiJFZERTQSJ9 .e30.AA", -JOSE_bad_base64},
		{"eyJhbGciOiJFZERTQSJ8.e30.AA", -JOSE_bad_header},
		{"eyJhbGciOiJFZERTQSJ9.e3+.AA", -JOSE_bad_base64},
		{"eyJhbGciOiJFZERTQSJ9.e31.AA", -JOSE_bad_base64},
		{"eyJhbGciOiJFZERTQSJ9.e30.A", -JOSE_bad_base64},
		{"eyJhbGciOiJFZERTQSJ9.e30.AA", -JOSE_bad_signature},
		{"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
		 "hgyY0il_MGCjP0JzlnLWG1PPOt7-"
		 "09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5"
		 "BhVsPt9g7sVvpAr_MuM0KAh",
		 -JOSE_bad_base64},
		{"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
		 "hgyY0il_MGCjP0JzlnLWG1PPOt7-"
		 "09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5"
		 "BhVsPt9g7sVvpAr_MuM0KAgAA",
		 -JOSE_bad_signature},
		{"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
		 "hgyY0il_MGCjP0JzlnLWG1PPOt7-"
		 "09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5"
		 "BhVsPt9g7sVvpAr_MuM0K",
		 -JOSE_bad_signature},
		{"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
		 "hgyY0il_MGCjP0JzlnLWG1PPOt7-"
		 "09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5"
		 "BhVsPt9g7sVvpAr_MuM0KAg\n",
		 -JOSE_bad_signature},
		{"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
		 "hgyY0il_MGCjP0JzlnLWG1PPOt7-"
		 "09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5"
		 "BhVsPt9g7sVvpAr_MuM0KA\n",
		 -JOSE_bad_base64},
	};
	struct keyring r = rfc_ring("");
	struct jose_verify_opts o = {.lookup = ring_lookup, .lookup_ctx = &r};
	struct jose_jws jws;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int ret = jose_jws_verify(cases[i].token,
					  strlen(cases[i].token), &o, &jws);
		if (ret != cases[i].want)
			print_error("case %zu: got %s\n", i,
				    jose_err_name(ret));
		assert_int_equal(ret, cases[i].want);
	}
	/* A NUL inside the stated length. */
	char t[sizeof(rfc_jws)];
	memcpy(t, rfc_jws, sizeof(t));
	t[5] = '\0';
	assert_int_equal(jose_jws_verify(t, sizeof(t) - 1, &o, &jws),
			 -JOSE_bad_base64);
	/* no lookup callback */
	o.lookup = NULL;
	assert_int_equal(jose_jws_verify(rfc_jws, strlen(rfc_jws), &o, &jws),
			 -JOSE_invalid_argument);
}

static void refuses_oversized_tokens_headers_and_payloads(void **state)
{
	(void)state;
	static char big[JOSE_TOKEN_BYTES_MAX * 2],
		tok[JOSE_TOKEN_BYTES_MAX * 3];
	struct keyring r = rfc_ring("");
	struct jose_verify_opts o = {.lookup = ring_lookup, .lookup_ctx = &r};
	struct jose_jws jws;
	size_t n;

	/* token */
	memset(big, 'A', JOSE_TOKEN_BYTES_MAX + 1);
	big[10] = '.';
	big[20] = '.';
	assert_int_equal(
		jose_jws_verify(big, JOSE_TOKEN_BYTES_MAX + 1, &o, &jws),
		-JOSE_too_large);
	/* header: 1025 bytes decoded */
	n = (size_t)snprintf(big, sizeof(big), "{\"alg\":\"EdDSA\",\"p\":\"");
	memset(big + n, 'p', JOSE_HEADER_BYTES_MAX + 1 - n - 2);
	memcpy(big + JOSE_HEADER_BYTES_MAX + 1 - 2, "\"}", 3);
	assert_int_equal(strlen(big), JOSE_HEADER_BYTES_MAX + 1);
	forge(big, "{}", tok, sizeof(tok));
	assert_int_equal(jose_jws_verify(tok, strlen(tok), &o, &jws),
			 -JOSE_too_large);
	big[JOSE_HEADER_BYTES_MAX - 2] = '"';
	big[JOSE_HEADER_BYTES_MAX - 1] = '}';
	big[JOSE_HEADER_BYTES_MAX] = '\0';
	forge(big, "{}", tok, sizeof(tok));
	assert_int_equal(jose_jws_verify(tok, strlen(tok), &o, &jws), 0);
	jose_jws_clear(&jws);
	/* payload: one byte over */
	n = (size_t)snprintf(big, sizeof(big), "{\"p\":\"");
	memset(big + n, 'q', JOSE_PAYLOAD_BYTES_MAX + 1 - n - 2);
	memcpy(big + JOSE_PAYLOAD_BYTES_MAX + 1 - 2, "\"}", 3);
	forge("{\"alg\":\"EdDSA\"}", big, tok, sizeof(tok));
	assert_int_equal(jose_jws_verify(tok, strlen(tok), &o, &jws),
			 -JOSE_too_large);
	big[JOSE_PAYLOAD_BYTES_MAX - 2] = '"';
	big[JOSE_PAYLOAD_BYTES_MAX - 1] = '}';
	big[JOSE_PAYLOAD_BYTES_MAX] = '\0';
	forge("{\"alg\":\"EdDSA\"}", big, tok, sizeof(tok));
	assert_int_equal(jose_jwt_verify(tok, strlen(tok), &o, &jws), 0);
	jose_jws_clear(&jws);

	/* The signer keeps the same limits. */
	struct jose_seckey *k;
	struct jose_sign_opts so = {.alg = JOSE_ALG_EDDSA};
	assert_int_equal(jose_seckey_generate(NULL, &k), 0);
	assert_int_equal(jose_jws_sign(k, &so, big, JOSE_PAYLOAD_BYTES_MAX + 1,
				       tok, sizeof(tok), &n),
			 -JOSE_too_large);
	assert_int_equal(jose_jws_sign(k, &so, big, 0, tok, sizeof(tok), &n),
			 -JOSE_invalid_argument);
	jose_seckey_free(k);
}

static void signature_by_another_key_fails(void **state)
{
	(void)state;
	struct jose_seckey *k;
	struct jose_sign_opts so = {.alg = JOSE_ALG_EDDSA};
	struct keyring r = rfc_ring("");
	char tok[JOSE_TOKEN_BYTES_MAX + 1];
	size_t n;

	assert_int_equal(jose_seckey_generate(NULL, &k), 0);
	assert_int_equal(jose_jws_sign(k, &so, ok_claims, strlen(ok_claims),
				       tok, sizeof(tok), &n),
			 0);
	assert_int_equal(verify_with(tok, &r, NULL, false),
			 -JOSE_bad_signature);
	jose_seckey_free(k);
}

/* Each byte of header, payload and signature, replaced by three other
 * characters (alphabet neighbours and a dot): never accepted. */
static void tampering_any_byte_fails(void **state)
{
	(void)state;
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
				       "nopqrstuvwxyz0123456789-_";
	struct keyring r = rfc_ring("k1");
	struct jose_verify_opts o = {.lookup = ring_lookup, .lookup_ctx = &r};
	struct jose_jws jws;
	char tok[512];
	size_t len, rejected = 0;

	forge("{\"alg\":\"EdDSA\",\"kid\":\"k1\"}", ok_claims, tok,
	      sizeof(tok));
	len = strlen(tok);
	assert_int_equal(jose_jws_verify(tok, len, &o, &jws), 0);
	jose_jws_clear(&jws);
	for (size_t i = 0; i < len; i++) {
		char orig = tok[i];
		const char *at = strchr(alphabet, orig);
		size_t pos = at ? (size_t)(at - alphabet) : 0;
		char subs[3] = {alphabet[(pos + 1) % 64],
				alphabet[(pos + 33) % 64], '.'};
		for (size_t s = 0; s < 3; s++) {
			if (subs[s] == orig)
				continue;
			tok[i] = subs[s];
			int ret = jose_jws_verify(tok, len, &o, &jws);
			assert_true(ret < 0);
			rejected++;
		}
		tok[i] = orig;
	}
	assert_true(rejected >= 3 * len - len / 8);
	/* truncation at every length */
	for (size_t l = 0; l < len; l++)
		assert_true(jose_jws_verify(tok, l, &o, &jws) < 0);
}

static void random_keys_round_trip_with_rotation_overlap(void **state)
{
	(void)state;
	struct jose_seckey *old, *cur;
	struct keyring r = {.n = 2};
	struct jose_sign_opts so = {
		.alg = JOSE_ALG_EDDSA, .typ = "JWT", .with_kid = true};
	char tok[JOSE_TOKEN_BYTES_MAX + 1];
	size_t n;

	for (int round = 0; round < 20; round++) {
		char kid_old[16], kid_cur[16];
		snprintf(kid_old, sizeof(kid_old), "k%d", 2 * round);
		snprintf(kid_cur, sizeof(kid_cur), "k%d", 2 * round + 1);
		assert_int_equal(jose_seckey_generate(kid_old, &old), 0);
		assert_int_equal(jose_seckey_generate(kid_cur, &cur), 0);
		jose_seckey_public(old, &r.keys[0]);
		jose_seckey_public(cur, &r.keys[1]);

		json_t *claims = json_pack("{s:s, s:s, s:I, s:I, s:s, s:{s:i}}",
					   "iss", kid_old, "sub", "merchant",
					   "iat", (json_int_t)1700000000, "exp",
					   (json_int_t)(1700000000 + round),
					   "jti", "abc", "right", "cap", round);
		assert_non_null(claims);
		for (int which = 0; which < 2; which++) {
			struct jose_jws jws;
			assert_int_equal(jose_jwt_sign(which ? cur : old, &so,
						       claims, tok, sizeof(tok),
						       &n),
					 0);
			assert_int_equal(verify_with(tok, &r, "jwt", true), 0);
			struct jose_verify_opts o = {.lookup = ring_lookup,
						     .lookup_ctx = &r};
			assert_int_equal(jose_jwt_verify(tok, n, &o, &jws), 0);
			assert_true(json_equal(jws.claims, claims));
			assert_string_equal(jws.kid, which ? kid_cur : kid_old);
			jose_jws_clear(&jws);
		}
		/* retire the old key: its tokens stop verifying */
		assert_int_equal(
			jose_jwt_sign(old, &so, claims, tok, sizeof(tok), &n),
			0);
		r.n = 1;
		r.keys[0] = r.keys[1];
		assert_int_equal(verify_with(tok, &r, NULL, true),
				 -JOSE_unknown_kid);
		/* a key under the wrong kid */
		snprintf(r.keys[0].kid, sizeof(r.keys[0].kid), "%s", kid_old);
		assert_int_equal(verify_with(tok, &r, NULL, true),
				 -JOSE_bad_signature);
		r.n = 2;
		json_decref(claims);
		jose_seckey_free(old);
		jose_seckey_free(cur);
	}
	/* JWT signing wants an object */
	json_t *arr = json_array();
	assert_int_equal(jose_jwt_sign(NULL, &so, arr, tok, sizeof(tok), &n),
			 -JOSE_invalid_argument);
	json_decref(arr);
}

/* ---- claims ----------------------------------------------------------- */

static json_t *parse(const char *s)
{
	json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(v);
	return v;
}

static void claims_are_typed_and_bounded(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		unsigned required;
		int want;
	} cases[] = {
		{"{}", 0, 0},
		{"{}", JOSE_CLAIM_EXP, -JOSE_claim_missing},
		{"{\"iss\":5}", 0, -JOSE_claim_type},
		{"{\"sub\":null}", 0, -JOSE_claim_type},
		{"{\"jti\":\"\"}", 0, -JOSE_claim_range},
		{"{\"exp\":1.5}", 0, -JOSE_claim_type},
		{"{\"exp\":1e9}", 0, -JOSE_claim_type},
		{"{\"exp\":1.0}", 0, -JOSE_claim_type},
		{"{\"exp\":\"1700000000\"}", 0, -JOSE_claim_type},
		{"{\"exp\":true}", 0, -JOSE_claim_type},
		{"{\"iat\":-1}", 0, -JOSE_claim_range},
		{"{\"nbf\":253402300800}", 0, -JOSE_claim_range},
		{"{\"exp\":253402300799}", JOSE_CLAIM_EXP, 0},
		{"{\"exp\":0}", JOSE_CLAIM_EXP, 0},
		{"{\"nbf\":10,\"exp\":10}", 0, -JOSE_claim_range},
		{"{\"nbf\":10,\"exp\":11}", 0, 0},
		{"{\"aud\":\"x\"}", JOSE_CLAIM_AUD, 0},
		{"{\"iss\":\"i\",\"sub\":\"s\",\"jti\":\"j\",\"iat\":1,"
		 "\"nbf\":2,\"exp\":3,\"aud\":[\"a\"]}",
		 0x7f, 0},
	};
	struct jose_claims c;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *v = parse(cases[i].json);
		int ret = jose_claims_extract(v, cases[i].required, &c);
		if (ret != cases[i].want)
			print_error("case %zu: %s: got %s\n", i, cases[i].json,
				    jose_err_name(ret));
		assert_int_equal(ret, cases[i].want);
		json_decref(v);
	}
	json_t *v = parse(cases[ARRAY_SIZE(cases) - 1].json);
	assert_int_equal(jose_claims_extract(v, 0, &c), 0);
	assert_string_equal(c.iss, "i");
	assert_string_equal(c.sub, "s");
	assert_string_equal(c.jti, "j");
	assert_true(c.iat == 1 && c.nbf == 2 && c.exp == 3);
	assert_int_equal(c.present, 0x7f);
	json_decref(v);

	/* string length: 256 is fine, 257 is not */
	char buf[300];
	snprintf(buf, sizeof(buf), "{\"sub\":\"%0256d\"}", 0);
	v = parse(buf);
	assert_int_equal(jose_claims_extract(v, 0, &c), 0);
	json_decref(v);
	snprintf(buf, sizeof(buf), "{\"sub\":\"%0257d\"}", 0);
	v = parse(buf);
	assert_int_equal(jose_claims_extract(v, 0, &c), -JOSE_claim_range);
	json_decref(v);
}

static void time_checks_at_the_boundaries(void **state)
{
	(void)state;
	const int64_t now = 1700000000;
	struct jose_claims c = {.present = JOSE_CLAIM_EXP};

	c.exp = now;
	assert_int_equal(jose_claims_check_time(&c, now, 0), -JOSE_expired);
	c.exp = now + 1;
	assert_int_equal(jose_claims_check_time(&c, now, 0), 0);
	c.exp = now - 4;
	assert_int_equal(jose_claims_check_time(&c, now, 5), 0);
	c.exp = now - 5;
	assert_int_equal(jose_claims_check_time(&c, now, 5), -JOSE_expired);

	c = (struct jose_claims){.present = JOSE_CLAIM_NBF, .nbf = now};
	assert_int_equal(jose_claims_check_time(&c, now, 0), 0);
	c.nbf = now + 1;
	assert_int_equal(jose_claims_check_time(&c, now, 0),
			 -JOSE_not_yet_valid);
	c.nbf = now + 5;
	assert_int_equal(jose_claims_check_time(&c, now, 5), 0);
	c.nbf = now + 6;
	assert_int_equal(jose_claims_check_time(&c, now, 5),
			 -JOSE_not_yet_valid);

	c = (struct jose_claims){.present = JOSE_CLAIM_IAT, .iat = now};
	assert_int_equal(jose_claims_check_time(&c, now, 0), 0);
	c.iat = now + 1;
	assert_int_equal(jose_claims_check_time(&c, now, 0),
			 -JOSE_issued_in_future);
	assert_int_equal(jose_claims_check_time(&c, now, 1), 0);

	/* expired wins over not yet valid; absent claims are not checked */
	c = (struct jose_claims){.present = JOSE_CLAIM_EXP | JOSE_CLAIM_NBF,
				 .nbf = now + 10,
				 .exp = now};
	assert_int_equal(jose_claims_check_time(&c, now, 0), -JOSE_expired);
	c.present = 0;
	assert_int_equal(jose_claims_check_time(&c, now, 0), 0);

	/* the arguments */
	assert_int_equal(jose_claims_check_time(&c, now, JOSE_LEEWAY_MAX_S), 0);
	assert_int_equal(jose_claims_check_time(&c, now, JOSE_LEEWAY_MAX_S + 1),
			 -JOSE_invalid_argument);
	assert_int_equal(jose_claims_check_time(&c, now, -1),
			 -JOSE_invalid_argument);
	assert_int_equal(jose_claims_check_time(&c, -1, 0),
			 -JOSE_invalid_argument);
	assert_int_equal(
		jose_claims_check_time(&c, JOSE_NUMERIC_DATE_MAX + 1, 0),
		-JOSE_invalid_argument);
	c = (struct jose_claims){.present = JOSE_CLAIM_EXP,
				 .exp = JOSE_NUMERIC_DATE_MAX};
	assert_int_equal(jose_claims_check_time(&c, JOSE_NUMERIC_DATE_MAX,
						JOSE_LEEWAY_MAX_S),
			 0);
}

static void audience_and_issuer(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		int want;
	} cases[] = {
		{"{\"aud\":\"tpw\"}", 0},
		{"{\"aud\":\"tpwx\"}", -JOSE_wrong_audience},
		{"{\"aud\":[\"a\",\"tpw\"]}", 0},
		{"{\"aud\":[\"a\",\"b\"]}", -JOSE_wrong_audience},
		{"{\"aud\":[]}", -JOSE_claim_range},
		{"{\"aud\":[\"tpw\",1]}", -JOSE_claim_type},
		{"{\"aud\":[\"tpw\",\"\"]}", -JOSE_claim_range},
		{"{\"aud\":5}", -JOSE_claim_type},
		{"{\"aud\":{\"tpw\":1}}", -JOSE_claim_type},
		{"{}", -JOSE_claim_missing},
		{"{\"aud\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
		 "\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\","
		 "\"tpw\"]}",
		 -JOSE_claim_range},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *v = parse(cases[i].json);
		assert_int_equal(jose_claims_check_aud(v, "tpw"),
				 cases[i].want);
		json_decref(v);
	}
	json_t *v = parse("{\"iss\":\"owner\"}");
	assert_int_equal(jose_claims_check_iss(v, "owner"), 0);
	assert_int_equal(jose_claims_check_iss(v, "own"), -JOSE_wrong_issuer);
	json_decref(v);
	v = parse("{\"iss\":[\"owner\"]}");
	assert_int_equal(jose_claims_check_iss(v, "owner"), -JOSE_claim_type);
	json_decref(v);
}

/* ---- the error table -------------------------------------------------- */

static void every_error_has_a_stable_unique_name(void **state)
{
	(void)state;
	assert_string_equal(jose_err_name(0), "ok");
	assert_string_equal(jose_err_name(-JOSE_bad_signature),
			    "bad_signature");
	assert_string_equal(jose_err_name(-JOSE_alg_not_allowed),
			    "alg_not_allowed");
	assert_null(jose_err_name(1));
	assert_null(jose_err_name(-JOSE_ERR_COUNT));
	assert_null(jose_err_desc(-JOSE_ERR_COUNT));
	for (int i = 0; i < JOSE_ERR_COUNT; i++) {
		const char *n = jose_err_name(-i);
		assert_non_null(n);
		assert_non_null(jose_err_desc(-i));
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') ||
				    (*p >= '0' && *p <= '9') || *p == '_');
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n, jose_err_name(-j));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b64url_matches_rfc4648_vectors),
		cmocka_unit_test(b64url_round_trips_every_byte_and_length),
		cmocka_unit_test(
			b64url_rejects_padding_foreign_chars_and_loose_bits),
		cmocka_unit_test(b64url_enforces_buffer_and_length_limits),
		cmocka_unit_test(libsodium_base64_would_accept_padding),
		cmocka_unit_test(rfc8037_a1_private_key_parses_and_serialises),
		cmocka_unit_test(rfc8037_a2_public_key_parses_and_serialises),
		cmocka_unit_test(rfc8037_a3_thumbprint),
		cmocka_unit_test(rfc8037_a4_signature_is_byte_exact),
		cmocka_unit_test(rfc8037_a5_verifies_with_both_alg_names),
		cmocka_unit_test(jwk_refusals_have_precise_codes),
		cmocka_unit_test(private_jwk_refusals),
		cmocka_unit_test(refuses_every_other_alg),
		cmocka_unit_test(refuses_crit_embedded_keys_and_b64),
		cmocka_unit_test(typ_is_checked_when_required),
		cmocka_unit_test(kid_is_checked_and_looked_up),
		cmocka_unit_test(refuses_payloads_that_are_not_objects),
		cmocka_unit_test(refuses_bad_shapes_and_encodings),
		cmocka_unit_test(refuses_oversized_tokens_headers_and_payloads),
		cmocka_unit_test(signature_by_another_key_fails),
		cmocka_unit_test(tampering_any_byte_fails),
		cmocka_unit_test(random_keys_round_trip_with_rotation_overlap),
		cmocka_unit_test(claims_are_typed_and_bounded),
		cmocka_unit_test(time_checks_at_the_boundaries),
		cmocka_unit_test(audience_and_issuer),
		cmocka_unit_test(every_error_has_a_stable_unique_name),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
