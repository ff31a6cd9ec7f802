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
 * the median of RUNS runs, for the full decision, for one without a
 * user (no flag buckets), and for the full decision plus what the gate
 * does with it, before issue 11 (a count by verdict) and now (the
 * label lookup and count of api/gatewatch.h, the version header and the
 * rule copied for the log line), as policy_gate does.  A figure, never
 * a test.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_policy [runs]
 */
#include "api/gatewatch.h"
#include "core/policy.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

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

static volatile unsigned sink;

int main(int argc, char **argv)
{
	int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : RUNS_DEFAULT;
	struct policy_query q[NR];
	size_t hlen[NR];
	struct policy_override ov[2];
	struct policy_err err;
	struct policy *p;
	double *full_ns, *nouser_ns, *count_ns, *watch_ns;
	static atomic_ullong verdicts[4];
	struct gatewatch *w = malloc(sizeof(*w));
	struct gatewatch_rule_line lines[GATEWATCH_RULE_LINES_COPIED];

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
		hlen[i] = strlen(reqs[i].header);
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
	count_ns = calloc((size_t)runs, sizeof(double));
	watch_ns = calloc((size_t)runs, sizeof(double));
	if (!full_ns || !nouser_ns || !count_ns || !watch_ns || !w ||
	    gatewatch_init(w))
		return 1;
	/* as the gate does once per policy version */
	gatewatch_seed(
		w, lines,
		gatewatch_rule_lines(p, lines, GATEWATCH_RULE_LINES_COPIED), 1);
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
		/* the gate before issue 11: a count by verdict */
		for (unsigned i = 0; i < ROUNDS; i++) {
			struct policy_query *x = &q[i % NR];
			x->user = users[i % NU];
			policy_evaluate(p, x, ov, 2, &d);
			if (d.verdict < 4)
				atomic_fetch_add_explicit(&verdicts[d.verdict],
							  1,
							  memory_order_relaxed);
			acc += d.verdict + (unsigned)d.flags;
		}
		double t3 = now_ns();
		/* the gate now (policy_gate): the label (no new one after
		 * the first rounds), its count, the rule and the header
		 * copied for the log line */
		for (unsigned i = 0; i < ROUNDS; i++) {
			struct policy_query *x = &q[i % NR];
			struct gatewatch_label l;
			char rule[GATEWATCH_LOG_TEXT_BYTES];
			char version[GATEWATCH_LOG_TEXT_BYTES];
			x->user = users[i % NU];
			policy_evaluate(p, x, ov, 2, &d);
			if (!gatewatch_label_find(
				    w, d.platform ? d.platform->name : NULL,
				    d.platform ? (unsigned)(d.platform -
							    p->platforms)
					       : 0,
				    1, d.version_valid, d.version.major,
				    d.version.minor, &l))
				l = gatewatch_label(
					w, d.platform ? d.platform->name : NULL,
					d.version_valid, d.version.major,
					d.version.minor);
			gatewatch_copy(d.rule, d.rule ? strlen(d.rule) : 0,
				       rule);
			gatewatch_copy(reqs[i % NR].header, hlen[i % NR],
				       version);
			gatewatch_count(w, l, d.verdict);
			acc += d.verdict + (unsigned)d.flags +
			       (unsigned char)rule[0] +
			       (unsigned char)version[0];
		}
		double t4 = now_ns();
		sink += acc;
		full_ns[r] = (t1 - t0) / ROUNDS;
		nouser_ns[r] = (t2 - t1) / ROUNDS;
		count_ns[r] = (t3 - t2) / ROUNDS;
		watch_ns[r] = (t4 - t3) / ROUNDS;
	}
	qsort(full_ns, (size_t)runs, sizeof(double), cmp_double);
	qsort(nouser_ns, (size_t)runs, sizeof(double), cmp_double);
	qsort(count_ns, (size_t)runs, sizeof(double), cmp_double);
	qsort(watch_ns, (size_t)runs, sizeof(double), cmp_double);
	printf("policy: 4 platforms, 6 flags, 2 notices, 2 overrides; %zu "
	       "requests, %u rounds, median of %d runs\n",
	       NR, ROUNDS, runs);
	printf("evaluate (with user, flags bucketed): %6.1f ns  (%.1f M/s)\n",
	       full_ns[runs / 2], 1e3 / full_ns[runs / 2]);
	printf("evaluate (no user):                   %6.1f ns  (%.1f M/s)\n",
	       nouser_ns[runs / 2], 1e3 / nouser_ns[runs / 2]);
	printf("gate before issue 11 (+ count by verdict): %6.1f ns\n",
	       count_ns[runs / 2]);
	printf("gate now (+ labels, count, log texts):      %6.1f ns  "
	       "(%.3f of before)\n",
	       watch_ns[runs / 2], watch_ns[runs / 2] / count_ns[runs / 2]);
	free(full_ns);
	free(nouser_ns);
	free(count_ns);
	free(watch_ns);
	gatewatch_destroy(w);
	free(w);
	policy_free(p);
	return 0;
}
