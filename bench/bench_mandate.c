/*
 * bench_mandate.c - requests per second, on one core, of what the server
 * does to authenticate a mandate request (docs/authz.md): a 3-link chain
 * admin -> merchant -> shop -> device (rights with accounts, ledgers,
 * counterparties and caps) plus a DPoP proof signed by the device key.
 * Issue 4's targets: (A) cold, >= 10,000 requests/s per core; (B) a
 * repeated chain costs one signature check (the DPoP proof).
 *
 * Figures, each the median of RUNS runs of `iterations` requests:
 *   (a) cold: mandate_chain_verify with no cache (3 Ed25519 verifications,
 *       3 claim sets parsed) + mandate_dpop_verify + mandate_dpop_check_key;
 *   (b) warm: the same with a mandate_cache warmed before the clock
 *       starts: the links are hits (hash, time, revocation, narrowing
 *       still checked), only the proof's signature is verified;
 *   (b') warm + mandate_replay_check_and_add, which is what the server
 *       does per request (a new replay cache per run);
 *   (c) crypto_sign_verify_detached alone on a link's signing input;
 *   (d) crypto_core_ed25519_is_valid_point alone: jose runs it on every
 *       JWK it parses (each link's cnf.jwk on a miss, the proof's header
 *       jwk always), and it costs about as much as a verification (a
 *       scalar multiplication by the group order), which is why (a) and
 *       (b) are worth more signatures than they verify.
 * Every iteration verifies a different proof (unique jti, pre-signed
 * before any clock starts); the proofs are reused from one run to the
 * next (no replay cache but in (b'), which gets a fresh one per run).
 * The root callbacks are trivial and in memory (the administrator's key
 * is known, nothing is revoked); revoked() calls are counted to show that
 * a cache hit still asks.  A figure, never a test: nothing here passes or
 * fails on time.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_mandate [iterations]
 */
#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "crypto/mandate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "banned.h"

#define RUNS	      7
#define ITERS_DEFAULT 4000
#define ITERS_MAX     200000
#define TARGET	      10000.0
#define HOST	      "127.0.0.1:8080"
#define PATH	      "/v1/transfers"
#define NOW	      INT64_C(1790000000)

enum { ADMIN, MERCHANT, SHOP, DEVICE, NKEYS };

static struct jose_seckey *sk[NKEYS];
static struct jose_pubkey pk[NKEYS];
static uint8_t admin_id[32];
static unsigned long revoked_calls;

static int root_principal(void *ctx, const uint8_t iss[32], uint8_t pub[32],
			  bool *is_admin)
{
	(void)ctx;
	if (memcmp(iss, admin_id, 32) != 0)
		return -1;
	memcpy(pub, pk[ADMIN].x, 32);
	*is_admin = true;
	return 0;
}

static bool root_owns(void *ctx, const uint8_t iss[32], u128 account)
{
	(void)ctx;
	(void)account;
	return memcmp(iss, admin_id, 32) == 0;
}

static bool root_revoked(void *ctx, const uint8_t iss[32],
			 const uint8_t jti_hash[32])
{
	(void)ctx;
	(void)iss;
	(void)jti_hash;
	revoked_calls++;
	return false;
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

static struct mandate_right right_of(unsigned ops, const u128 *acc,
				     unsigned nacc, const u128 *cp,
				     unsigned ncp, u128 per, u128 total,
				     uint64_t uses)
{
	struct mandate_right r;

	memset(&r, 0, sizeof(r));
	r.ops = ops;
	r.n_accounts = (uint8_t)nacc;
	for (unsigned i = 0; i < nacc; i++)
		r.accounts[i] = acc[i];
	r.n_ledgers = 1;
	r.ledgers[0] = 1;
	r.n_counterparties = (uint8_t)ncp;
	for (unsigned i = 0; i < ncp; i++)
		r.counterparties[i] = cp[i];
	r.has_per_transfer_cap = r.has_total_cap = r.has_uses = true;
	r.per_transfer_cap = per;
	r.total_cap = total;
	r.uses = uses;
	return r;
}

/* The chain text: link 1 ~ link 2 ~ link 3, NUL-terminated. */
static char chain[MANDATE_AUTHZ_BYTES_MAX + 1];
static size_t chain_len;

static int build_chain(void)
{
	static const u128 a1[] = {1, 2, 3, 4}, a2[] = {1, 2}, a3[] = {1};
	static const u128 c1[] = {5, 6, 7, 8}, c2[] = {5, 6}, c3[] = {5};
	struct mandate_right r[3] = {
		right_of(MANDATE_OP_TRANSFERS_CREATE |
				 MANDATE_OP_ACCOUNTS_READ |
				 MANDATE_OP_TRANSFERS_READ,
			 a1, 4, c1, 4, 1000000, (u128)1000000000000000ull,
			 UINT64_C(1000000000000)),
		right_of(MANDATE_OP_TRANSFERS_CREATE | MANDATE_OP_ACCOUNTS_READ,
			 a2, 2, c2, 2, 10000, (u128)1000000000000ull,
			 UINT64_C(1000000000)),
		right_of(MANDATE_OP_TRANSFERS_CREATE, a3, 1, c3, 1, 1000,
			 (u128)1000000000ull, UINT64_C(100000000)),
	};
	static const char *const jti[3] = {"bench-root-1", "bench-shop-2",
					   "bench-device-3"};
	static char tok[3][JOSE_TOKEN_BYTES_MAX + 1];
	size_t len[3];

	for (int i = 0; i < 3; i++) {
		struct mandate_issue in = {.jti = jti[i],
					   .iat = NOW - 60,
					   .exp = NOW + 86400 - i,
					   .delegate = &pk[i + 1],
					   .right = &r[i]};
		if (i > 0) {
			in.parent_compact = tok[i - 1];
			in.parent_len = len[i - 1];
		}
		if (mandate_link_sign(sk[i], &in, tok[i], sizeof(tok[i]),
				      &len[i]) != 0)
			return -1;
	}
	chain_len = (size_t)snprintf(chain, sizeof(chain), "%s~%s~%s", tok[0],
				     tok[1], tok[2]);
	return chain_len < sizeof(chain) ? 0 : -1;
}

struct proof {
	char text[1024];
	size_t len;
};

/* One request: chain (with or without cache), proof, key, [replay]. */
static int one(const struct mandate_verify_opts *vo, const struct proof *p,
	       struct mandate_replay *replay, struct mandate_chain *c)
{
	static const struct mandate_dpop_opts dopts = {
		.now = NOW,
		.method = "POST",
		.host = HOST,
		.path = PATH,
		.access_token = chain,
	};
	struct mandate_dpop_opts o = dopts;
	struct mandate_dpop d;
	struct mandate_error err;

	o.access_token_len = chain_len;
	if (mandate_chain_verify(chain, chain_len, vo, c, &err) != 0 ||
	    mandate_dpop_verify(p->text, p->len, &o, &d, &err) != 0 ||
	    mandate_dpop_check_key(&d, c, &err) != 0 ||
	    (replay && mandate_replay_check_and_add(replay, &d, NOW, &err))) {
		fprintf(stderr, "refused: %s (link %d, claim %s)\n",
			mandate_err_name(err.code), err.link, err.claim);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct mandate_chain c;
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : ITERS_DEFAULT;
	struct mandate_root_ops root = {.principal = root_principal,
					.owns = root_owns,
					.revoked = root_revoked};
	struct mandate_verify_opts cold = {
		.now = NOW, .leeway_s = 30, .root = &root};
	struct mandate_verify_opts warm = cold;
	double rc[RUNS], rw[RUNS], rr[RUNS], rs[RUNS], rp[RUNS];
	struct proof *proofs;
	unsigned char sig[64];
	size_t dot, n;
	char tp[JOSE_B64_32_BYTES];

	if (iters <= 0 || iters > ITERS_MAX || jose_init() != 0)
		return 2;
	for (int i = 0; i < NKEYS; i++) {
		if (jose_seckey_generate(NULL, &sk[i]) != 0)
			return 1;
		jose_seckey_public(sk[i], &pk[i]);
	}
	if (jose_thumbprint(&pk[ADMIN], tp) != 0 ||
	    b64url_decode(admin_id, 32, tp, strlen(tp), &n) != 0 || n != 32 ||
	    build_chain() != 0)
		return 1;
	warm.cache = mandate_cache_new(1024);
	proofs = calloc((size_t)iters, sizeof(*proofs));
	if (!warm.cache || !proofs)
		return 1;

	/* Pre-sign one proof per iteration, outside any clock. */
	double p0 = now_s();
	for (long i = 0; i < iters; i++) {
		char jti[32];
		snprintf(jti, sizeof(jti), "p-%ld", i);
		if (mandate_dpop_sign(
			    sk[DEVICE], jti, "POST", "http://" HOST PATH, NOW,
			    chain, chain_len, proofs[i].text,
			    sizeof(proofs[i].text), &proofs[i].len) != 0)
			return 1;
	}
	double p1 = now_s();

	/* The last link's signature and signing input, for (c). */
	{
		const char *last = strrchr(chain, '~') + 1;
		const char *sdot = strrchr(last, '.');
		size_t m;
		dot = (size_t)(sdot - last);
		if (b64url_decode(sig, sizeof(sig), sdot + 1,
				  chain_len - (size_t)(sdot + 1 - chain),
				  &m) != 0 ||
		    m != 64 ||
		    crypto_sign_verify_detached(sig,
						(const unsigned char *)last,
						dot, pk[SHOP].x) != 0)
			return 1;
	}

	/* Check every path once and warm the cache. */
	if (one(&cold, &proofs[0], NULL, &c) != 0 ||
	    one(&warm, &proofs[0], NULL, &c) != 0 || c.n != 3)
		return 1;

	unsigned long rev_cold = 0, rev_warm = 0;
	uint64_t h0, m0, h1, m1;
	mandate_cache_stats(warm.cache, &h0, &m0);
	for (int r = 0; r < RUNS; r++) {
		struct mandate_replay *replay =
			mandate_replay_new((unsigned)iters);
		const char *last = strrchr(chain, '~') + 1;
		if (!replay)
			return 1;
		double t0 = now_s();
		revoked_calls = 0;
		for (long i = 0; i < iters; i++)
			if (one(&cold, &proofs[i], NULL, &c) != 0)
				return 1;
		rev_cold = revoked_calls;
		double t1 = now_s();
		revoked_calls = 0;
		for (long i = 0; i < iters; i++)
			if (one(&warm, &proofs[i], NULL, &c) != 0)
				return 1;
		rev_warm = revoked_calls;
		double t2 = now_s();
		for (long i = 0; i < iters; i++)
			if (one(&warm, &proofs[i], replay, &c) != 0)
				return 1;
		double t3 = now_s();
		for (long i = 0; i < iters; i++)
			if (crypto_sign_verify_detached(
				    sig, (const unsigned char *)last, dot,
				    pk[SHOP].x) != 0)
				return 1;
		double t4 = now_s();
		for (long i = 0; i < iters; i++)
			if (crypto_core_ed25519_is_valid_point(pk[DEVICE].x) !=
			    1)
				return 1;
		double t5 = now_s();
		mandate_replay_free(replay);
		rc[r] = (double)iters / (t1 - t0);
		rw[r] = (double)iters / (t2 - t1);
		rr[r] = (double)iters / (t3 - t2);
		rs[r] = (double)iters / (t4 - t3);
		rp[r] = (double)iters / (t5 - t4);
	}
	mandate_cache_stats(warm.cache, &h1, &m1);

	double a = median(rc), b = median(rw), bb = median(rr), s = median(rs),
	       v = median(rp);
	printf("chain: 3 links, %zu bytes; proof: %zu bytes; %ld requests per "
	       "run, median of %d runs, one core\n",
	       chain_len, proofs[0].len, iters, RUNS);
	printf("DPoP proofs pre-signed: %.0f/s (%.1f us each)\n",
	       (double)iters / (p1 - p0), 1e6 * (p1 - p0) / (double)iters);
	printf("(a) cold (chain, no cache + DPoP):   %8.0f requests/s (%6.1f "
	       "us)  = %.2f x target 10000\n",
	       a, 1e6 / a, a / TARGET);
	printf("(b) warm (cached chain + DPoP):      %8.0f requests/s (%6.1f "
	       "us)  = %.2f x target 10000\n",
	       b, 1e6 / b, b / TARGET);
	printf("(b') warm + replay cache (server):   %8.0f requests/s (%6.1f "
	       "us)\n",
	       bb, 1e6 / bb);
	printf("(c) crypto_sign_verify_detached:     %8.0f verifications/s "
	       "(%5.1f us)\n",
	       s, 1e6 / s);
	printf("(d) crypto_core_ed25519_is_valid_point: %5.0f checks/s "
	       "(%5.1f us)\n",
	       v, 1e6 / v);
	/* jose.c remembers the public keys it has found valid points, so
	 * after the first iteration the 4 JWK point checks (each ~ one
	 * verification, (d)) are skipped even "cold": a chain of keys the
	 * server has never seen costs about (d) x 4 more than (a). */
	printf("in units of (c): cold = %.2f verifications (4 signatures; "
	       "JWK point checks cached by key), warm = %.2f (1 signature)\n",
	       s / a, s / b);
	printf("warm cache: %llu hits, %llu misses in the timed runs; "
	       "revocation checks per request: cold %.1f, warm %.1f\n",
	       (unsigned long long)(h1 - h0), (unsigned long long)(m1 - m0),
	       (double)rev_cold / (double)iters,
	       (double)rev_warm / (double)iters);
	printf("target (A) cold >= 10000/s per core: %s\n",
	       a >= TARGET ? "met" : "NOT met");
	mandate_cache_free(warm.cache);
	free(proofs);
	for (int i = 0; i < NKEYS; i++)
		jose_seckey_free(sk[i]);
	return 0;
}
