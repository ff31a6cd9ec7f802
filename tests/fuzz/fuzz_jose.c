/*
 * fuzz_jose.c - libFuzzer driver for the JOSE layer: compact JWS/JWT
 * verification, JWK parsing, base64url.
 *
 * A token is the most hostile input the server reads: it arrives before
 * any authentication.  The first input byte picks a mode (modulo 4):
 *   0  verify the rest as a compact JWS and as a JWT against one fixed key
 *      (RFC 8037 A.1; any kid or none maps to it).  Never accept a forgery:
 *      when it verifies, its signature must be exactly the one the harness
 *      would make over the same signing input (Ed25519 is deterministic and
 *      the verifier must not be malleable), so only what the seeds carry
 *      can pass;
 *   1  the rest is "header<NUL>payload" (or a payload under a fixed EdDSA
 *      header), which the harness signs with the fixed key: this reaches
 *      everything behind the signature check, the payload parser and the
 *      claim helpers;
 *   2  parse the rest as a public and as a private JWK; whatever is
 *      accepted must serialise canonically and parse back to the same key;
 *   3  base64url-decode the rest; whatever is accepted must encode back to
 *      the very same text (one text per byte string).
 * Every refusal must be a code of the table (a name exists).
 *
 * Build by hand (flags as the Makefile's FUZZ rules) and run:
 *   mkdir -p build/jose-fuzz && clang -D_GNU_SOURCE -Isrc -std=c17 \
 *     -O1 -g -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
 *     tests/fuzz/fuzz_jose.c src/crypto/jose.c src/crypto/b64url.c \
 *     $(pkg-config --cflags --libs jansson libsodium) \
 *     -o build/jose-fuzz/fuzz_jose
 *   build/jose-fuzz/fuzz_jose -dict=tests/fuzz/jose.dict \
 *     build/jose-fuzz/corpus tests/fuzz/corpus/jose
 *
 * Seed corpus: compiled with -DJOSE_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DJOSE_CORPUS_MAIN -Isrc \
 *     tests/fuzz/fuzz_jose.c src/crypto/jose.c src/crypto/b64url.c \
 *     $(pkg-config --cflags --libs jansson libsodium) -o gen && \
 *   ./gen tests/fuzz/corpus/jose
 */
#include "crypto/b64url.h"
#include "crypto/jose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_jose: %s:%d: %s\n", __FILE__,    \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static const unsigned char seed_bytes[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
	0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
	0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};

static unsigned char sk[crypto_sign_SECRETKEYBYTES];
static struct jose_pubkey pub;

static void init_once(void)
{
	static int done;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	if (done)
		return;
	CHECK(jose_init() == 0);
	CHECK(crypto_sign_seed_keypair(pk, sk, seed_bytes) == 0);
	memcpy(pub.x, pk, sizeof(pk));
	done = 1;
}

static int any_kid(void *ctx, const char *kid, struct jose_pubkey *out)
{
	(void)ctx;
	(void)kid;
	*out = pub;
	return 0;
}

static void check_code(int ret)
{
	CHECK(ret <= 0);
	CHECK(jose_err_name(ret) != NULL);
}

static void check_accepted(const struct jose_jws *jws)
{
	CHECK(json_is_object(jws->header));
	CHECK(jws->payload != NULL && jws->payload_len > 0);
	CHECK(jws->payload_len <= JOSE_PAYLOAD_BYTES_MAX);
	CHECK(jws->payload[jws->payload_len] == '\0');
	CHECK(jws->kid == NULL || strlen(jws->kid) <= JOSE_KID_BYTES_MAX);
}

static void exercise_claims(const json_t *claims)
{
	struct jose_claims c;
	int ret = jose_claims_extract(claims, 0, &c);

	check_code(ret);
	if (ret == 0) {
		check_code(jose_claims_check_time(&c, 1700000000, 60));
		if (c.exp)
			CHECK(c.exp >= 0 && c.exp <= JOSE_NUMERIC_DATE_MAX);
	}
	check_code(jose_claims_check_aud(claims, "tpwallet"));
	check_code(jose_claims_check_iss(claims, "issuer"));
}

static void mode_verify(const char *tok, size_t len)
{
	struct jose_verify_opts o = {.lookup = any_kid};
	unsigned char sig[crypto_sign_BYTES], want[crypto_sign_BYTES];
	struct jose_jws jws;
	const char *dot;
	size_t n;
	int ret;

	ret = jose_jws_verify(tok, len, &o, &jws);
	check_code(ret);
	if (ret == 0) {
		check_accepted(&jws);
		/* Only a signature the key holder made can pass. */
		dot = memrchr(tok, '.', len);
		CHECK(dot != NULL);
		CHECK(b64url_decode(sig, sizeof(sig), dot + 1,
				    len - (size_t)(dot - tok) - 1, &n) == 0);
		CHECK(n == sizeof(sig));
		crypto_sign_detached(want, NULL, (const unsigned char *)tok,
				     (size_t)(dot - tok), sk);
		CHECK(memcmp(sig, want, sizeof(sig)) == 0);
		jose_jws_clear(&jws);
	} else {
		CHECK(jws.header == NULL && jws.payload == NULL);
	}
	o.require_kid = true;
	o.typ = "JWT";
	ret = jose_jwt_verify(tok, len, &o, &jws);
	check_code(ret);
	if (ret == 0) {
		check_accepted(&jws);
		CHECK(json_is_object(jws.claims));
		exercise_claims(jws.claims);
	}
	jose_jws_clear(&jws);
}

static void mode_sign_then_verify(const unsigned char *data, size_t size)
{
	static const char fixed[] = "{\"alg\":\"EdDSA\",\"kid\":\"k\"}";
	static char tok[3 * JOSE_TOKEN_BYTES_MAX];
	struct jose_verify_opts o = {.lookup = any_kid};
	unsigned char sig[crypto_sign_BYTES];
	const unsigned char *nul = memchr(data, 0, size);
	const unsigned char *h = (const unsigned char *)fixed, *p = data;
	size_t hlen = sizeof(fixed) - 1, plen = size, t;
	struct jose_jws jws;
	int ret;

	if (nul) {
		h = data;
		hlen = (size_t)(nul - data);
		p = nul + 1;
		plen = size - hlen - 1;
	}
	if (b64url_encode(tok, sizeof(tok), h, hlen) < 0)
		return;
	t = strlen(tok);
	tok[t++] = '.';
	if (b64url_encode(tok + t, sizeof(tok) - t, p, plen) < 0)
		return;
	t += strlen(tok + t);
	crypto_sign_detached(sig, NULL, (unsigned char *)tok, t, sk);
	tok[t++] = '.';
	if (b64url_encode(tok + t, sizeof(tok) - t, sig, sizeof(sig)) < 0)
		return;
	t += strlen(tok + t);

	ret = jose_jwt_verify(tok, t, &o, &jws);
	check_code(ret);
	if (ret == 0) {
		check_accepted(&jws);
		CHECK(jws.payload_len == plen &&
		      memcmp(jws.payload, p, plen) == 0);
		CHECK(json_is_object(jws.claims));
		exercise_claims(jws.claims);
	}
	jose_jws_clear(&jws);
}

static void mode_jwk(const char *json, size_t len)
{
	struct jose_pubkey k, again;
	struct jose_seckey *s;
	char out[JOSE_JWK_BYTES_MAX], tp[JOSE_B64_32_BYTES];
	int ret;

	ret = jose_pubkey_parse_jwk(json, len, &k);
	check_code(ret);
	if (ret == 0) {
		CHECK(jose_pubkey_to_jwk(&k, out, sizeof(out)) == 0);
		CHECK(jose_pubkey_parse_jwk(out, strlen(out), &again) == 0);
		CHECK(memcmp(&k, &again, sizeof(k)) == 0);
		CHECK(jose_thumbprint(&k, tp) == 0 && strlen(tp) == 43);
	}
	ret = jose_seckey_parse_jwk(json, len, &s);
	check_code(ret);
	if (ret == 0) {
		CHECK(s != NULL);
		CHECK(jose_seckey_to_jwk(s, out, sizeof(out)) == 0);
		jose_seckey_free(s);
		ret = jose_seckey_parse_jwk(out, strlen(out), &s);
		sodium_memzero(out, sizeof(out));
		CHECK(ret == 0);
		jose_seckey_free(s);
	} else {
		CHECK(s == NULL);
	}
}

static void mode_b64(const char *text, size_t len)
{
	static unsigned char bin[JOSE_TOKEN_BYTES_MAX];
	static char again[2 * JOSE_TOKEN_BYTES_MAX];
	size_t n;

	if (b64url_decode(bin, sizeof(bin), text, len, &n) != 0)
		return;
	CHECK(n == b64url_decoded_len(len));
	CHECK(b64url_encode(again, sizeof(again), bin, n) == 0);
	CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *rest = (const char *)data + 1;

	if (size == 0)
		return 0;
	init_once();
	switch (data[0] & 3) {
	case 0: mode_verify(rest, size - 1); break;
	case 1: mode_sign_then_verify(data + 1, size - 1); break;
	case 2: mode_jwk(rest, size - 1); break;
	default: mode_b64(rest, size - 1); break;
	}
	return 0;
}

#ifdef JOSE_CORPUS_MAIN
static void put(const char *dir, const char *name, unsigned char mode,
		const char *body, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fputc(mode, f) != EOF);
	CHECK(fwrite(body, 1, len, f) == len);
	CHECK(fclose(f) == 0);
	/* every seed must run clean through the harness */
	{
		unsigned char *buf = malloc(len + 1);
		CHECK(buf != NULL);
		buf[0] = mode;
		memcpy(buf + 1, body, len);
		LLVMFuzzerTestOneInput(buf, len + 1);
		free(buf);
	}
}

static void put_str(const char *dir, const char *name, unsigned char mode,
		    const char *s)
{
	put(dir, name, mode, s, strlen(s));
}

int main(int argc, char **argv)
{
	static const char claims[] =
		"{\"aud\":[\"tpwallet\"],\"exp\":1700003600,\"iat\":1700000000,"
		"\"iss\":\"issuer\",\"jti\":\"j-1\",\"nbf\":1699999990,"
		"\"right\":{\"accounts\":[\"1\"],\"cap\":\"5000\"},"
		"\"sub\":\"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k\"}";
	struct jose_sign_opts so = {
		.alg = JOSE_ALG_EDDSA, .typ = "JWT", .with_kid = true};
	struct jose_seckey *k;
	char tok[JOSE_TOKEN_BYTES_MAX + 1];
	char hp[1024];
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	init_once();
	CHECK(jose_seckey_from_seed(seed_bytes, "k1", &k) == 0);

	put_str(argv[1], "v_rfc8037_a4", 0,
		"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
		"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg"
		"5BhVsPt9g7sVvpAr_MuM0KAg");
	CHECK(jose_jws_sign(k, &so, claims, strlen(claims), tok, sizeof(tok),
			    &n) == 0);
	put(argv[1], "v_jwt", 0, tok, n);
	so.alg = JOSE_ALG_ED25519;
	so.typ = "dpop+jwt";
	CHECK(jose_jws_sign(k, &so, "{\"htm\":\"POST\"}", 14, tok, sizeof(tok),
			    &n) == 0);
	put(argv[1], "v_dpop", 0, tok, n);
	put_str(argv[1], "v_none", 0, "eyJhbGciOiJub25lIn0.e30.");
	put_str(argv[1], "v_hs256", 0,
		"eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_"
		"a9IV7pAx_"
		"Zmeo");

	n = (size_t)snprintf(hp, sizeof(hp), "%s",
			     "{\"alg\":\"EdDSA\",\"kid\":"
			     "\"k1\",\"typ\":\"JWT\"}");
	hp[n++] = '\0';
	memcpy(hp + n, claims, sizeof(claims) - 1);
	put(argv[1], "s_jwt", 1, hp, n + sizeof(claims) - 1);
	n = (size_t)snprintf(hp, sizeof(hp), "%s",
			     "{\"alg\":\"EdDSA\",\"crit\":[\"b64\"]}");
	hp[n++] = '\0';
	memcpy(hp + n, "{}", 2);
	put(argv[1], "s_crit", 1, hp, n + 2);
	put_str(argv[1], "s_claims", 1, "{\"exp\":1.5,\"aud\":[1]}");

	put_str(argv[1], "k_public", 2,
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		"\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}");
	put_str(argv[1], "k_private", 2,
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		"\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
		"\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\","
		"\"kid\":\"k1\",\"use\":\"sig\",\"alg\":\"EdDSA\"}");
	put_str(argv[1], "k_ec", 2,
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}");

	put_str(argv[1], "b_text", 3, "Zm9vYmFy");
	put_str(argv[1], "b_loose", 3, "Zm9vYh");
	jose_seckey_free(k);
	return 0;
}
#endif
