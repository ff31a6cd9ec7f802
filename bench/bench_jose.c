/*
 * bench_jose.c - verifications per second of a typical compact JWS (a
 * delegation link: EdDSA header with kid and typ, about 400 bytes of
 * claims) on one core, and what that means for issue 4's target of a
 * 3-link chain plus a DPoP proof (4 verifications) per request.
 *
 * Three figures, each the median of RUNS runs:
 *   - jose_jwt_verify: the whole path (split, base64url, header JSON and
 *     checks, key lookup, Ed25519, payload JSON);
 *   - crypto_sign_verify_detached alone on the same signing input, to show
 *     how much of the cost is the signature;
 *   - jose_jwt_sign, for reference (the server signs far less).
 * A figure, never a test: nothing here passes or fails on time.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_jose [iterations]
 */
#include "crypto/b64url.h"
#include "crypto/jose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "banned.h"

#define RUNS	      7
#define ITERS_DEFAULT 20000

static struct jose_pubkey the_key;

static int lookup(void *ctx, const char *kid, struct jose_pubkey *out)
{
	(void)ctx;
	if (!kid || strcmp(kid, the_key.kid) != 0)
		return -JOSE_unknown_kid;
	*out = the_key;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof(double), cmp_double);
	return v[RUNS / 2];
}

int main(int argc, char **argv)
{
	struct jose_sign_opts so = {.alg = JOSE_ALG_EDDSA,
				    .typ = "tpw-delegation+jwt",
				    .with_kid = true};
	struct jose_verify_opts vo = {.lookup = lookup,
				      .typ = "tpw-delegation+jwt",
				      .require_kid = true};
	static char tok[JOSE_TOKEN_BYTES_MAX + 1];
	unsigned char sig[64];
	struct jose_seckey *k;
	struct jose_jws jws;
	double full[RUNS], raw[RUNS], sign[RUNS];
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : ITERS_DEFAULT;
	size_t n, dot;
	json_t *claims;

	if (iters <= 0 || jose_init() != 0 ||
	    jose_seckey_generate("srv-2025-06", &k) != 0)
		return 1;
	jose_seckey_public(k, &the_key);
	claims = json_pack(
		"{s:s, s:s, s:[s], s:I, s:I, s:I, s:s, s:s, s:{s:[s,s], "
		"s:[s], s:s, s:s, s:[i], s:[s,s], s:i}}",
		"iss", "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "sub",
		"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "aud",
		"tpwallet", "iat", (json_int_t)1750000000, "nbf",
		(json_int_t)1750000000, "exp", (json_int_t)1750604800, "jti",
		"01J0M6V5K2Q8T3Y7Z9A1B2C3D4", "parent",
		"b3QxNzUwMDAwMDAwLXBhcmVudC1saW5r", "right", "ops",
		"transfers.create", "accounts.read", "accounts",
		"1234567890123456789", "cap_per_transfer", "5000", "cap_total",
		"20000", "ledgers", 700, "counterparties", "1111111111",
		"2222222222", "uses", 100);
	if (!claims || jose_jwt_sign(k, &so, claims, tok, sizeof(tok), &n) != 0)
		return 1;
	dot = (size_t)(strrchr(tok, '.') - tok);
	{
		size_t m;
		if (b64url_decode(sig, sizeof(sig), tok + dot + 1, n - dot - 1,
				  &m) != 0)
			return 1;
	}
	if (jose_jwt_verify(tok, n, &vo, &jws) != 0)
		return 1;
	jose_jws_clear(&jws);

	for (int r = 0; r < RUNS; r++) {
		double t0 = now_s();
		for (long i = 0; i < iters; i++) {
			if (jose_jwt_verify(tok, n, &vo, &jws) != 0)
				return 1;
			jose_jws_clear(&jws);
		}
		double t1 = now_s();
		for (long i = 0; i < iters; i++)
			if (crypto_sign_verify_detached(
				    sig, (const unsigned char *)tok, dot,
				    the_key.x) != 0)
				return 1;
		double t2 = now_s();
		for (long i = 0; i < iters / 4; i++) {
			size_t m;
			if (jose_jwt_sign(k, &so, claims, tok, sizeof(tok),
					  &m) != 0)
				return 1;
		}
		double t3 = now_s();
		full[r] = (double)iters / (t1 - t0);
		raw[r] = (double)iters / (t2 - t1);
		sign[r] = (double)(iters / 4) / (t3 - t2);
	}
	double f = median(full), w = median(raw), s = median(sign);
	printf("token: %zu bytes (header+payload+signature)\n", n);
	printf("jose_jwt_verify:             %8.0f verifications/s  "
	       "(%5.1f us)\n",
	       f, 1e6 / f);
	printf("crypto_sign_verify_detached: %8.0f verifications/s  "
	       "(%5.1f us)\n",
	       w, 1e6 / w);
	printf("jose_jwt_sign:               %8.0f signatures/s     "
	       "(%5.1f us)\n",
	       s, 1e6 / s);
	printf("3-link chain + DPoP, cold (4 verifications): %.0f "
	       "requests/s per core (target 10000)\n",
	       f / 4);
	json_decref(claims);
	jose_seckey_free(k);
	return 0;
}
