/*
 * bench_tiles.c - figures for the audit tree's hashes on disk
 * (log/tilestore.h) against the in-memory merkle_store they replaced:
 *
 *   memory   RssAnon (/proc/self/status) grown by appending N leaf
 *            hashes, per leaf: the merkle_store (all in memory), then
 *            the tile store in DIR with its default cache;
 *   proofs   the time of one inclusion proof of a random leaf in the
 *            tree of N leaves from the tile store: with the tile cache
 *            cold (a store opened for the proof, the files in the page
 *            cache), with the page cache dropped as well (every level
 *            file posix_fadvise'd DONTNEED before the proof: the reads
 *            go to the disk), and warm (the same store, a cache of the
 *            default size); p50 and p99 in microseconds.
 *
 * Each proof is checked against the merkle_store's before it counts.
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_tiles DIR [leaves] [proofs]
 * (DIR a scratch directory on the disk to measure, emptied of the
 * store's files first; defaults 1,000,000 leaves and 200 proofs).
 * Prints numbers; never fails on time.
 */
#include "core/merkle.h"
#include "log/tilestore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long rss_anon_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "RssAnon:", 8) == 0) {
			const char *p = line + 8;
			while (*p == ' ' || *p == '\t')
				p++;
			kib = 0;
			while (*p >= '0' && *p <= '9')
				kib = kib * 10 + (*p++ - '0');
		}
	fclose(f);
	return kib;
}

static void leaf_of(u64 i, u8 out[MERKLE_HASH_BYTES])
{
	merkle_hash_leaf(&i, sizeof(i), out);
}

static void level_path(char *out, size_t cap, const char *dir, unsigned l)
{
	if (l == 0)
		snprintf(out, cap, "%s/leaves", dir);
	else
		snprintf(out, cap, "%s/tiles-%u", dir, l);
}

static void drop_page_cache(const char *dir)
{
	char path[4096];
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++) {
		level_path(path, sizeof(path), dir, l);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, unsigned n)
{
	qsort(t, n, sizeof(*t), cmp_double);
	printf("inclusion proof, %-34s p50 %8.1f us  p99 %8.1f us\n", what,
	       t[n / 2], t[n * 99 / 100]);
}

static u64 rnd_next(u64 *r)
{
	*r = *r * 6364136223846793005ull + 1442695040888963407ull;
	return *r >> 11;
}

/* One proof from ts, checked against ms; its time in microseconds. */
static double timed_proof(struct tilestore *ts, struct merkle_store *ms,
			  u64 index, u64 size)
{
	u8 a[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 b[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	size_t na, nb;
	double t0 = now_us();
	int ret = tilestore_inclusion_proof(ts, index, size, a, &na);
	double t = now_us() - t0;
	if (ret != 0 ||
	    merkle_store_inclusion_proof(ms, index, size, b, &nb) != 0 ||
	    na != nb || memcmp(a, b, na * MERKLE_HASH_BYTES) != 0) {
		fprintf(stderr, "bench_tiles: proof of %llu differs (%d)\n",
			(unsigned long long)index, ret);
		exit(1);
	}
	return t;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_tiles DIR [leaves] [proofs]\n");
		return 2;
	}
	const char *dir = argv[1];
	u64 n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
	unsigned proofs = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 200;
	char path[4096];
	u8 h[MERKLE_HASH_BYTES];
	struct tilestore_report rep;
	struct tilestore *ts = NULL;

	if (n == 0 || proofs == 0 || proofs > 100000)
		return 2;
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++) {
		level_path(path, sizeof(path), dir, l);
		unlink(path);
	}

	long before = rss_anon_kib();
	struct merkle_store *ms = merkle_store_new();
	if (!ms)
		return 1;
	for (u64 i = 0; i < n; i++) {
		leaf_of(i, h);
		if (merkle_store_append_hash(ms, h) != 0)
			return 1;
	}
	long with_store = rss_anon_kib();
	printf("leaves %llu\n", (unsigned long long)n);
	printf("memory, merkle_store (before):  %7.1f bytes a leaf "
	       "(RssAnon +%ld KiB)\n",
	       (double)(with_store - before) * 1024.0 / (double)n,
	       with_store - before);

	double t0 = now_us();
	if (tilestore_open(&ts, dir, TILESTORE_CACHE_BYTES_DEFAULT, NULL, NULL,
			   &rep) != 0) {
		fprintf(stderr, "bench_tiles: cannot open the store in %s\n",
			dir);
		return 1;
	}
	long opened = rss_anon_kib();
	for (u64 i = 0; i < n; i++) {
		leaf_of(i, h);
		if (tilestore_append(ts, h) != 0)
			return 1;
	}
	if (tilestore_sync(ts) != 0)
		return 1;
	double append_s = (now_us() - t0) / 1e6;
	long appended = rss_anon_kib();
	printf("memory, tile store (after):     %7.1f bytes a leaf "
	       "(RssAnon +%ld KiB, of it the cache: reserved %llu KiB, "
	       "touched as used)\n",
	       (double)(appended - opened) * 1024.0 / (double)n,
	       appended - opened,
	       (unsigned long long)(TILESTORE_CACHE_BYTES_DEFAULT / 1024));
	printf("appends with sync: %.2f s (%.0f leaves/s)\n", append_s,
	       (double)n / append_s);

	double *t = calloc(proofs, sizeof(*t));
	u64 r = 12345;
	if (!t)
		return 1;
	/* Warm: the same store, its cache filling as proofs go. */
	for (unsigned k = 0; k < proofs; k++)
		t[k] = timed_proof(ts, ms, rnd_next(&r) % n, n);
	report("warm cache (after the first):", t, proofs);
	tilestore_close(ts);

	/* Cold tile cache: a store opened for each proof (not timed). */
	for (unsigned k = 0; k < proofs; k++) {
		if (tilestore_open(&ts, dir, TILESTORE_CACHE_BYTES_DEFAULT,
				   NULL, NULL, &rep) != 0)
			return 1;
		t[k] = timed_proof(ts, ms, rnd_next(&r) % n, n);
		tilestore_close(ts);
	}
	report("cold tile cache, page cache warm:", t, proofs);
	for (unsigned k = 0; k < proofs; k++) {
		if (tilestore_open(&ts, dir, TILESTORE_CACHE_BYTES_DEFAULT,
				   NULL, NULL, &rep) != 0)
			return 1;
		drop_page_cache(dir);
		t[k] = timed_proof(ts, ms, rnd_next(&r) % n, n);
		tilestore_close(ts);
	}
	report("cold tile cache and page cache:", t, proofs);
	t0 = now_us();
	if (tilestore_open(&ts, dir, TILESTORE_CACHE_BYTES_DEFAULT, NULL, NULL,
			   &rep) != 0)
		return 1;
	printf("reopen: %.1f ms, hashes rebuilt %llu, checked %llu\n",
	       (now_us() - t0) / 1e3,
	       (unsigned long long)(rep.rebuilt[1] + rep.rebuilt[2] +
				    rep.rebuilt[3] + rep.rebuilt[4]),
	       (unsigned long long)(rep.checked[1] + rep.checked[2] +
				    rep.checked[3] + rep.checked[4]));
	tilestore_close(ts);
	merkle_store_free(ms);
	free(t);
	return 0;
}
