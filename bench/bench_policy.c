/*
 * bench_policy.c - cost of the client-version gate's decision: ns per
 * policy_evaluate() for a realistic policy (four platforms, block lists,
 * deprecations with sunsets, a channel and two country levels, localised
 * messages, two notices, six feature flags, two active overrides).
 *
 * The issue asks for >= 10,000,000 decisions per second in process, so
 * one evaluation must stay under 100 ns.  Requests are a fixed mix of
 * X-Client-Version values (blocked, deprecated, supported, lenient,
 * missing, unknown platform), channels, countries, users and
 * Accept-Language values, so every rule of the order is taken.  Prints
 * the median of RUNS runs, for the full decision and for one without a
 * user (no flag buckets).  A figure, never a test.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_policy [runs]
 */
#include "core/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

#define RUNS_DEFAULT 11
#define ROUNDS	     1000000u
#define NOW	     1799971200 /* 2027-01-15T00:00:00Z */

static const char doc[] =
	"{\"platforms\":{"
	"\"android\":{\"min_supported\":\"4.0.0\",\"recommended\":\"4.2.0\","
	"\"recommended_rollout\":50,\"blocked\":[\"3.x\",\"4.1.3\","
	"\"4.0.7 - 4.0.9\"],\"compat\":[\"4.0.x\"],\"deprecated\":[{\"range\":"
	"\"<4.2.0\",\"sunset\":\"2027-03-01T00:00:00Z\"},{\"range\":\"4.2.x\","
	"\"sunset\":\"2027-09-01T00:00:00Z\"}],\"upgrade_url\":"
	"\"https://play.google.com/store/apps/details?id=tpwallet\","
	"\"messages\":{\"blocked\":{\"default\":\"Please update.\",\"de\":"
	"\"Bitte aktualisieren.\",\"fr\":\"Mettez a jour.\"},\"deprecated\":"
	"{\"default\":\"Update soon.\",\"de\":\"Bald aktualisieren.\"}},"
	"\"channels\":{\"beta\":{\"min_supported\":\"4.2.0-beta.1\"}},"
	"\"countries\":{\"DE\":{\"blocked_status\":403},\"FR\":{"
	"\"min_supported\":\"4.1.0\"}}},"
	"\"ios\":{\"min_supported\":\"4.0.0\",\"recommended\":\"4.2.0\","
	"\"version_mode\":\"lenient\",\"blocked\":[\"4.0.1\"],\"deprecated\":"
	"[{\"range\":\"<4.1.0\",\"sunset\":\"2027-06-01T00:00:00Z\"}],"
	"\"upgrade_url\":\"https://apps.apple.com/app/id1\"},"
	"\"web\":{\"min_supported\":\"2024.1.0\",\"missing_version\":"
	"\"block\"},"
	"\"sdk\":{\"min_supported\":\"1.0.0\",\"blocked\":[\"1.2.x || "
	"1.3.0\"]}},"
	"\"notices\":[{\"id\":\"inc-42\",\"severity\":\"warning\",\"text\":"
	"{\"default\":\"Card payments are delayed.\",\"de\":\"Verzoegert.\"},"
	"\"starts_at\":\"2027-01-14T00:00:00Z\",\"expected_resolution_at\":"
	"\"2027-01-15T06:00:00Z\"},{\"id\":\"ios-widgets\",\"severity\":"
	"\"info\",\"text\":{\"default\":\"New widgets\"},\"platforms\":"
	"[\"ios\"]}],"
	"\"flags\":{\"new-checkout\":{\"rollout\":25},\"instant-payouts\":"
	"{\"rollout\":100,\"platforms\":[\"android\"],\"versions\":"
	"\">=4.2.0\",\"countries\":[\"DE\",\"FR\"]},\"dark-mode\":"
	"{\"rollout\":50,\"platforms\":[\"ios\",\"android\"]},\"qr-pay\":"
	"{\"rollout\":10,\"countries\":[\"DE\"]},\"legacy-sync\":{\"rollout\":"
	"100,\"versions\":\"<4.1.0\"},\"off\":{\"rollout\":0}}}";

static const struct {
	const char *header, *channel, *country, *langs;
} reqs[] = {
	{"android/4.2.1", NULL, "DE", "de-DE,de;q=0.9,en;q=0.8"},
	{"android/3.9.0", NULL, "US", "en-US"},
	{"android/4.1.0", NULL, "FR", "fr-FR, fr;q=0.9"},
	{"ios/v4.2", NULL, "DE", "de"},
	{"ios/4.0.1", NULL, NULL, NULL},
	{"android/4.3.0", "beta", "DE", "de-CH"},
	{"web/2025.3.1", NULL, "GB", "en-GB"},
	{"sdk/1.2.7", NULL, NULL, NULL},
	{"android/4.0.5", NULL, "US", "en"},
	{"android/4.2.0+build.77", NULL, "DE", "de"},
	{"ios/4.0.9", NULL, "FR", "fr"},
	{"web", NULL, NULL, NULL},
	{"desktop/1.0.0", NULL, "US", "en"},
	{"android/5.0.0-rc.1", "beta", "US", "en"},
	{"ios/4.1.0.123", NULL, "DE", "de-AT, en;q=0.5"},
	{"android/4.1.3", NULL, "US", "*"},
};
#define NR (sizeof(reqs) / sizeof(reqs[0]))

static const char *const users[] = {"u-1",	 "u-22",    "u-333",
				    "u-4444",	 "u-55555", "u-666666",
				    "u-7777777", "u-8"};
#define NU (sizeof(users) / sizeof(users[0]))

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static volatile unsigned sink;

int main(int argc, char **argv)
{
	int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : RUNS_DEFAULT;
	struct policy_query q[NR];
	struct policy_override ov[2];
	struct policy_err err;
	struct policy *p;
	double *full_ns, *nouser_ns;

	if (runs < 1 || runs > 1000)
		runs = RUNS_DEFAULT;
	if (policy_parse(doc, sizeof(doc) - 1, &p, &err)) {
		fprintf(stderr, "bench policy: %s\n", err.msg);
		return 1;
	}
	if (policy_override_init(&ov[0], "android", "3.9.x", "compat", 3600,
				 "bench", NOW, &err) ||
	    policy_override_init(&ov[1], "sdk", "1.2.x", "allow", 3600, "bench",
				 NOW, &err)) {
		fprintf(stderr, "bench override: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < NR; i++) {
		memset(&q[i], 0, sizeof(q[i]));
		policy_query_set_client_version(&q[i], reqs[i].header,
						strlen(reqs[i].header));
		q[i].channel = reqs[i].channel;
		q[i].country = reqs[i].country;
		q[i].languages = reqs[i].langs;
		q[i].now_s = NOW;
	}
	full_ns = calloc((size_t)runs, sizeof(double));
	nouser_ns = calloc((size_t)runs, sizeof(double));
	if (!full_ns || !nouser_ns)
		return 1;
	for (int r = 0; r < runs; r++) {
		struct policy_decision d;
		unsigned acc = 0;
		double t0 = now_ns(), t1, t2;
		for (unsigned i = 0; i < ROUNDS; i++) {
			struct policy_query *x = &q[i % NR];
			x->user = users[i % NU];
			policy_evaluate(p, x, ov, 2, &d);
			acc += d.verdict + (unsigned)d.flags;
		}
		t1 = now_ns();
		for (unsigned i = 0; i < ROUNDS; i++) {
			struct policy_query *x = &q[i % NR];
			x->user = NULL;
			policy_evaluate(p, x, ov, 2, &d);
			acc += d.verdict + (unsigned)d.flags;
		}
		t2 = now_ns();
		sink += acc;
		full_ns[r] = (t1 - t0) / ROUNDS;
		nouser_ns[r] = (t2 - t1) / ROUNDS;
	}
	qsort(full_ns, (size_t)runs, sizeof(double), cmp_double);
	qsort(nouser_ns, (size_t)runs, sizeof(double), cmp_double);
	printf("policy: 4 platforms, 6 flags, 2 notices, 2 overrides; %zu "
	       "requests, %u rounds, median of %d runs\n",
	       NR, ROUNDS, runs);
	printf("evaluate (with user, flags bucketed): %6.1f ns  (%.1f M/s)\n",
	       full_ns[runs / 2], 1e3 / full_ns[runs / 2]);
	printf("evaluate (no user):                   %6.1f ns  (%.1f M/s)\n",
	       nouser_ns[runs / 2], 1e3 / nouser_ns[runs / 2]);
	free(full_ns);
	free(nouser_ns);
	policy_free(p);
	return 0;
}
