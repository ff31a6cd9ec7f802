/*
 * bench_merkle.c - figures for the transparency log's tree: how many
 * 160-byte entries per second the append-only tree state (merkle_tree,
 * the compact range) absorbs while keeping its root, with libsodium's
 * SHA-256 (what the product uses) and, when built with -DHAVE_NETTLE,
 * with nettle's (which uses the CPU's SHA extensions when present) for
 * comparison.  Also the raw SHA-256 speed of both, the cost of the
 * merkle_store (every leaf and even-level hash kept) and of generating
 * proofs from it.  Prints numbers; never fails on time.
 *
 * Each run checks that both hash back ends give the same root.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_merkle [leaves]        (default 2,000,000)
 */
#include "core/merkle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#ifdef HAVE_NETTLE
#include <nettle/sha2.h>
#endif

#include "banned.h"

#define ENTRY_BYTES 160
#define GROUP	    8190 /* root once per engine group of this many */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(u8 *e, u64 i)
{
	memset(e, 0x5a, ENTRY_BYTES);
	memcpy(e, &i, sizeof(i));
}

/* The product's tree (libsodium).  every: compute the root after this
 * many appends (1 = after each). */
static double run_product(u64 n, u64 every, u8 root[32])
{
	struct merkle_tree t;
	u8 e[ENTRY_BYTES];
	double t0 = now_s();

	merkle_tree_init(&t);
	for (u64 i = 0; i < n; i++) {
		fill(e, i);
		merkle_tree_append(&t, e, sizeof(e));
		if ((i + 1) % every == 0)
			merkle_tree_root(&t, root);
	}
	merkle_tree_root(&t, root);
	return (double)n / (now_s() - t0);
}

#ifdef HAVE_NETTLE
/* The same compact range, with nettle's SHA-256. */
struct ntree {
	u64 size;
	unsigned npeaks;
	u8 peaks[64][32];
};

static void n_leaf(const u8 *d, size_t len, u8 out[32])
{
	struct sha256_ctx c;
	static const u8 z = 0;
	sha256_init(&c);
	sha256_update(&c, 1, &z);
	sha256_update(&c, len, d);
	sha256_digest(&c, 32, out);
}

static void n_node(const u8 *l, const u8 *r, u8 out[32])
{
	struct sha256_ctx c;
	u8 buf[65];
	buf[0] = 1;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	sha256_init(&c);
	sha256_update(&c, sizeof(buf), buf);
	sha256_digest(&c, 32, out);
}

static void n_append(struct ntree *t, const u8 *e, size_t len)
{
	u8 h[32];
	n_leaf(e, len, h);
	for (u64 n = t->size; n & 1; n >>= 1) {
		t->npeaks--;
		n_node(t->peaks[t->npeaks], h, h);
	}
	memcpy(t->peaks[t->npeaks++], h, 32);
	t->size++;
}

static void n_root(const struct ntree *t, u8 out[32])
{
	memcpy(out, t->peaks[t->npeaks - 1], 32);
	for (unsigned i = t->npeaks - 1; i-- > 0;)
		n_node(t->peaks[i], out, out);
}

static double run_nettle(u64 n, u64 every, u8 root[32])
{
	struct ntree t = {0};
	u8 e[ENTRY_BYTES];
	double t0 = now_s();

	for (u64 i = 0; i < n; i++) {
		fill(e, i);
		n_append(&t, e, sizeof(e));
		if ((i + 1) % every == 0)
			n_root(&t, root);
	}
	n_root(&t, root);
	return (double)n / (now_s() - t0);
}
#endif

static void raw_sha(void)
{
	enum { BYTES = 1 << 20, ROUNDS = 256 };
	u8 *buf = calloc(1, BYTES), out[32];
	double t0 = now_s();
	for (int i = 0; i < ROUNDS; i++)
		crypto_hash_sha256(out, buf, BYTES);
	printf("raw SHA-256 libsodium %s:  %7.0f MB/s\n",
	       sodium_version_string(),
	       (double)BYTES * ROUNDS / (now_s() - t0) / 1e6);
#ifdef HAVE_NETTLE
	t0 = now_s();
	for (int i = 0; i < ROUNDS; i++) {
		struct sha256_ctx c;
		sha256_init(&c);
		sha256_update(&c, BYTES, buf);
		sha256_digest(&c, 32, out);
	}
	printf("raw SHA-256 nettle:            %7.0f MB/s\n",
	       (double)BYTES * ROUNDS / (now_s() - t0) / 1e6);
#endif
	free(buf);
}

static void store_and_proofs(u64 n)
{
	struct merkle_store *s = merkle_store_new();
	u8 e[ENTRY_BYTES], h[32], p[MERKLE_PROOF_HASHES_MAX][32];
	size_t np;
	double t0 = now_s();

	if (!s)
		return;
	for (u64 i = 0; i < n; i++) {
		fill(e, i);
		merkle_hash_leaf(e, sizeof(e), h);
		if (merkle_store_append_hash(s, h) != 0)
			break;
	}
	printf("store append (leaf hash + keep nodes): %9.0f leaves/s\n",
	       (double)n / (now_s() - t0));
	enum { PROOFS = 200000 };
	u64 x = 88172645463325252ull;
	t0 = now_s();
	for (int i = 0; i < PROOFS; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		u64 size = n - (x % 1000), idx = x % size;
		merkle_store_inclusion_proof(s, idx, size, p, &np);
	}
	printf("inclusion proofs at size ~%llu:    %9.0f proofs/s\n",
	       (unsigned long long)n, PROOFS / (now_s() - t0));
	t0 = now_s();
	for (int i = 0; i < PROOFS; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		u64 size = n - (x % 1000), first = 1 + x % (size - 1);
		merkle_store_consistency_proof(s, first, size, p, &np);
	}
	printf("consistency proofs at size ~%llu:  %9.0f proofs/s\n",
	       (unsigned long long)n, PROOFS / (now_s() - t0));
	merkle_store_free(s);
}

int main(int argc, char **argv)
{
	u64 n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	u8 r1[32], r2[32];

	if (n < 2000)
		n = 2000;
	raw_sha();
	printf("appending %llu entries of %d bytes\n", (unsigned long long)n,
	       ENTRY_BYTES);
	printf("libsodium, root per %d:    %9.0f leaves/s\n", GROUP,
	       run_product(n, GROUP, r1));
	printf("libsodium, root per leaf:  %9.0f leaves/s\n",
	       run_product(n, 1, r1));
#ifdef HAVE_NETTLE
	printf("nettle,    root per %d:    %9.0f leaves/s\n", GROUP,
	       run_nettle(n, GROUP, r2));
	printf("nettle,    root per leaf:  %9.0f leaves/s\n",
	       run_nettle(n, 1, r2));
	if (memcmp(r1, r2, 32) != 0) {
		printf("ROOTS DIFFER between libsodium and nettle\n");
		return 1;
	}
#else
	memcpy(r2, r1, 32);
	printf("nettle: not built (add -DHAVE_NETTLE -lnettle)\n");
#endif
	store_and_proofs(n);
	return 0;
}
