/*
 * bench_ff1.c - FF1 encryptions per second (src/crypto/ff1.h), radix 10,
 * for the lengths the card vault uses: the 10 digits of NIST's sample 1
 * and the 9 middle digits of a 16-digit PAN the vault's format-preserving
 * tokens encrypt (docs/vault.md), with AES-128 and AES-256.  Prints the
 * median of RUNS runs.  A figure, never a test.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_ff1 [runs]
 */
#include "crypto/ff1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "banned.h"

#define RUNS_DEFAULT 7
#define ROUNDS	     200000u

static volatile unsigned sink;

static double per_second(const struct ff1 *f, size_t n, int runs)
{
	double rate[64];
	u8 x[FF1_NUMERALS_MAX];
	const u8 tweak[8] = {'t', 'p', 'w', 'v', 'a', 'u', 'l', 't'};

	for (size_t i = 0; i < n; i++)
		x[i] = (u8)(i % 10);
	for (int r = 0; r < runs; r++) {
		double t0 = now_ns();
		for (unsigned i = 0; i < ROUNDS; i++) {
			if (ff1_encrypt(f, tweak, sizeof(tweak), x, n, x))
				abort();
		}
		rate[r] = ROUNDS / ((now_ns() - t0) / 1e9);
		sink += x[0];
	}
	qsort(rate, (size_t)runs, sizeof(rate[0]), cmp_double);
	return rate[runs / 2];
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : RUNS_DEFAULT;
	u8 key[32];
	static const size_t lens[] = {10, 9, 16};

	if (runs < 1 || runs > 64)
		runs = RUNS_DEFAULT;
	memset(key, 0x2b, sizeof(key));
	for (size_t k = 16; k <= 32; k += 16) {
		struct ff1 f;
		if (ff1_init(&f, key, k, 10))
			return 1;
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			printf("ff1 AES-%zu radix 10, %2zu digits: %.0f "
			       "encryptions/s\n",
			       k * 8, lens[i], per_second(&f, lens[i], runs));
		ff1_clear(&f);
	}
	return 0;
}
