/*
 * bench_semver.c - cost of the client-version gate's version work: ns per
 * range match, and per parse + match (a request's header is parsed, then
 * matched), for a typical policy range.
 *
 * The issue asks for >= 10,000,000 gate decisions per second in process,
 * so one match must cost tens of nanoseconds at most.  Versions are a
 * fixed mix (releases in and out of the range, prereleases, build
 * metadata) so that every branch of the match is taken.  Prints the
 * median of RUNS runs.  A figure, never a test: nothing here passes or
 * fails on time.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_semver [runs]
 */
#include "core/semver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#include "banned.h"

#define RUNS_DEFAULT 11
#define ROUNDS	     1000000u

static const char policy[] = ">=4.0.0 <5.0.0-0 || ^5.1.0";

static const char *const versions[] = {
	"4.2.0",      "4.9.17", "5.1.3",	 "5.0.2",
	"3.9.0",      "6.0.0",	"4.2.1+77",	 "5.2.0-rc.1",
	"4.0.0-beta", "5.1.0",	"5.1.0-beta.11", "4.10.2",
	"2.0.0",      "5.99.0", "4.2.0+build.5", "5.0.0-0",
};
#define NV (sizeof(versions) / sizeof(versions[0]))

/* Keeps the compiler from dropping the loops. */
static volatile unsigned sink;

int main(int argc, char **argv)
{
	int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : RUNS_DEFAULT;
	struct semver_range range;
	struct semver_err err;
	struct semver v[NV];
	double match_ns[64], parse_ns[64];
	size_t vlen[NV];

	if (runs < 1 || runs > 64)
		runs = RUNS_DEFAULT;
	if (semver_range_compile(policy, sizeof(policy) - 1, &range, &err)) {
		fprintf(stderr, "bench_semver: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < NV; i++) {
		vlen[i] = strlen(versions[i]);
		if (semver_parse(versions[i], vlen[i], SEMVER_STRICT, &v[i],
				 &err)) {
			fprintf(stderr, "bench_semver: %s: %s\n", versions[i],
				err.msg);
			return 1;
		}
	}
	for (int r = 0; r < runs; r++) {
		unsigned hits = 0;
		double t0 = now_ns();
		for (unsigned i = 0; i < ROUNDS; i++)
			hits += semver_range_match(&range, &v[i % NV]);
		double t1 = now_ns();
		for (unsigned i = 0; i < ROUNDS; i++) {
			struct semver pv;
			size_t k = i % NV;
			if (semver_parse(versions[k], vlen[k], SEMVER_LENIENT,
					 &pv, NULL) == 0)
				hits += semver_range_match(&range, &pv);
		}
		double t2 = now_ns();
		sink += hits;
		match_ns[r] = (t1 - t0) / ROUNDS;
		parse_ns[r] = (t2 - t1) / ROUNDS;
	}
	qsort(match_ns, (size_t)runs, sizeof(double), cmp_double);
	qsort(parse_ns, (size_t)runs, sizeof(double), cmp_double);
	printf("range \"%s\", %zu versions, %u rounds, median of %d runs\n",
	       policy, NV, ROUNDS, runs);
	printf("match:          %6.1f ns  (%.1f M/s)\n", match_ns[runs / 2],
	       1e3 / match_ns[runs / 2]);
	printf("parse + match:  %6.1f ns  (%.1f M/s)\n", parse_ns[runs / 2],
	       1e3 / parse_ns[runs / 2]);
	return 0;
}
