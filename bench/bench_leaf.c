/*
 * bench_leaf.c - what the audit tree's leaf rules cost per event
 * (log/leaf.h): rule 1 hashes the record whole, rule 2 hashes every
 * event, a chunk hash per 32 events and a small tree over the chunks.
 * For batches of 1, 3, 100 and 8190 transfers (the engine's groups are
 * batches of up to 8190), prints ns per event for each rule and their
 * ratio; also what building one event's proof costs (a receipt).
 * Prints numbers; never fails on time.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_leaf [events to hash per case]     (default 20,000,000)
 */
#include "log/journal.h"
#include "log/leaf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A create_transfers record of n events at version v. */
static u8 *record(u32 n, u16 v, size_t *len)
{
	u32 size = JOURNAL_HEADER_BYTES + n * 128u;
	u32 magic = JOURNAL_MAGIC;
	u16 type = JOURNAL_CREATE_TRANSFERS;
	u8 *r = malloc(size);

	if (!r)
		exit(1);
	memset(r, 0, JOURNAL_HEADER_BYTES);
	memcpy(r, &magic, 4);
	memcpy(r + 8, &size, 4);
	memcpy(r + 12, &type, 2);
	memcpy(r + 14, &v, 2);
	for (u32 i = 0; i < n * 128u; i++)
		r[JOURNAL_HEADER_BYTES + i] = (u8)(i * 31 + 7);
	*len = size;
	return r;
}

static double per_event(u32 n, u16 v, u64 total)
{
	size_t len;
	u8 *r = record(n, v, &len);
	u8 h[32], acc = 0;
	u64 rounds = total / n ? total / n : 1;
	double t0 = now_ns();

	for (u64 i = 0; i < rounds; i++) {
		r[40] = (u8)i; /* no hashing of the same bytes twice */
		if (leaf_hash_record(r, len, h) != 0)
			exit(1);
		acc ^= h[0];
	}
	double ns = (now_ns() - t0) / (double)(rounds * n);
	free(r);
	if (acc == 0x5a)
		fputc(' ', stderr); /* keep the loop */
	return ns;
}

int main(int argc, char **argv)
{
	static const u32 sizes[] = {1, 3, 100, 8190};
	u64 total = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000ull;

	printf("events/batch  rule1 ns/event  rule2 ns/event  rule2/rule1\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double r1 = per_event(sizes[i], 1, total);
		double r2 = per_event(sizes[i], 2, total);
		printf("%12u  %14.1f  %14.1f  %11.2f\n", sizes[i], r1, r2,
		       r2 / r1);
	}
	/* A receipt: the proof of one event of a full batch. */
	size_t len;
	u8 *r = record(8190, 2, &len);
	static struct leaf_event_proof pr;
	double t0 = now_ns();
	for (u32 k = 0; k < 200; k++)
		if (leaf_event_prove(r + JOURNAL_HEADER_BYTES, 8190, k * 40,
				     &pr) != 0)
			return 1;
	printf("event proof in a batch of 8190: %.0f us\n",
	       (now_ns() - t0) / 200 / 1e3);
	free(r);
	return 0;
}
