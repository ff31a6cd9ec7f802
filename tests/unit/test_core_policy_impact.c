/*
 * test_core_policy_impact.c - the users a new client-policy document
 * newly blocks (core/policy_impact.h), on a hand-made activity table:
 * per platform, actives, blocked before and after and newly blocked for
 * a raised minimum, a blocked range, an unknown platform blocked, a
 * sunset already past (and one still ahead), no current policy; users
 * outside the 7-day window are not counted; the threshold is "more
 * than".
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/policy_impact.h"
#include "banned.h"

#define TODAY 20468u /* 2026-01-15 */
#define NOW_S ((int64_t)TODAY * 86400 + 3600)

static struct policy *doc(const char *text)
{
	struct policy *p = NULL;
	struct policy_err err;
	if (policy_parse(text, strlen(text), &p, &err) != 0)
		fail_msg("%s: %s", text, err.msg);
	return p;
}

/* n users more (ids from *u on) last seen at platform/version on day. */
static void observe_n(struct activity *a, u64 *u, const char *platform,
		      const char *version, u32 day, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(
			activity_observe(a, (*u)++, platform, version, day), 0);
}

/* android: 3 users at 3.9.0, 5 at 4.0.5, 2 at 4.1.0; ios: 4 at 1.0.0;
 * and users last seen 7 days ago (outside the window). */
static struct activity *table(void)
{
	struct activity *a = activity_new();
	u64 u = 1;
	assert_non_null(a);
	observe_n(a, &u, "android", "3.9.0", TODAY - 6, 3);
	observe_n(a, &u, "android", "4.0.5", TODAY, 5);
	observe_n(a, &u, "android", "4.1.0", TODAY - 1, 2);
	observe_n(a, &u, "ios", "1.0.0", TODAY, 4);
	observe_n(a, &u, "android", "1.0.0", TODAY - 7, 9);
	return a;
}

static const struct policy_impact_platform *row(const struct policy_impact *im,
						const char *name)
{
	for (u32 i = 0; i < im->nplatforms; i++)
		if (strcmp(im->p[i].name, name) == 0)
			return &im->p[i];
	fail_msg("no row for %s", name);
	return NULL;
}

static void assert_row(const struct policy_impact *im, const char *name,
		       u64 actives, u64 before, u64 after, u64 newly)
{
	const struct policy_impact_platform *r = row(im, name);
	assert_int_equal(r->actives, actives);
	assert_int_equal(r->blocked_before, before);
	assert_int_equal(r->blocked_after, after);
	assert_int_equal(r->newly_blocked, newly);
}

static void raised_minimum_and_blocked_range_count_newly_blocked(void **state)
{
	(void)state;
	struct activity *a = table();
	struct policy *cur = doc("{\"platforms\":{\"android\":{"
				 "\"min_supported\":\"4.0.0\"},\"ios\":{}}}");
	struct policy *next =
		doc("{\"platforms\":{\"android\":{\"min_supported\":\"4.1.0\"},"
		    "\"ios\":{\"blocked\":[\"<2.0.0\"]}}}");
	struct policy_impact im;
	assert_int_equal(policy_impact_compute(a, cur, next, NOW_S, TODAY, &im),
			 0);
	assert_int_equal(im.window_days, 7);
	assert_int_equal(im.nplatforms, 2);
	assert_row(&im, "android", 10, 3, 8, 5);
	assert_row(&im, "ios", 4, 0, 4, 4);
	assert_true(fabs(policy_impact_share(row(&im, "android")) - 0.5) <
		    1e-12);
	assert_true(fabs(policy_impact_share(row(&im, "ios")) - 1.0) < 1e-12);
	/* "More than" the threshold. */
	assert_true(policy_impact_over(&im, 0.99));
	assert_false(policy_impact_over(&im, 1.0));
	/* The other way round: nobody is newly blocked. */
	assert_int_equal(policy_impact_compute(a, next, cur, NOW_S, TODAY, &im),
			 0);
	assert_row(&im, "android", 10, 8, 3, 0);
	assert_row(&im, "ios", 4, 4, 0, 0);
	assert_false(policy_impact_over(&im, 0));
	policy_free(cur);
	policy_free(next);
	activity_free(a);
}

static void no_current_policy_blocks_nobody_before(void **state)
{
	(void)state;
	struct activity *a = table();
	/* ios is not in the document: an unknown platform, blocked. */
	struct policy *next = doc("{\"unknown_platform\":\"block\","
				  "\"platforms\":{\"android\":{"
				  "\"min_supported\":\"4.0.0\"}}}");
	struct policy_impact im;
	assert_int_equal(
		policy_impact_compute(a, NULL, next, NOW_S, TODAY, &im), 0);
	assert_row(&im, "android", 10, 0, 3, 3);
	assert_row(&im, "ios", 4, 0, 4, 4);
	policy_free(next);
	activity_free(a);
}

static void a_past_sunset_blocks_and_a_future_one_does_not(void **state)
{
	(void)state;
	struct activity *a = table();
	struct policy *cur = doc("{\"platforms\":{\"android\":{}}}");
	/* 2026-01-15T00:00:00Z is TODAY's midnight, before NOW_S. */
	struct policy *past =
		doc("{\"platforms\":{\"android\":{\"deprecated\":[{\"range\":"
		    "\"<4.1.0\",\"sunset\":\"2026-01-15T00:00:00Z\"}]}}}");
	struct policy *ahead =
		doc("{\"platforms\":{\"android\":{\"deprecated\":[{\"range\":"
		    "\"<4.1.0\",\"sunset\":\"2026-01-16T00:00:00Z\"}]}}}");
	struct policy_impact im;
	assert_int_equal(policy_impact_compute(a, cur, past, NOW_S, TODAY, &im),
			 0);
	assert_row(&im, "android", 10, 0, 8, 8);
	assert_int_equal(
		policy_impact_compute(a, cur, ahead, NOW_S, TODAY, &im), 0);
	assert_row(&im, "android", 10, 0, 0, 0);
	policy_free(cur);
	policy_free(past);
	policy_free(ahead);
	activity_free(a);
}

static void no_activity_is_no_platform_and_never_over(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	struct policy *next = doc("{\"platforms\":{\"android\":{"
				  "\"min_supported\":\"9.0.0\"}}}");
	struct policy_impact im;
	assert_int_equal(
		policy_impact_compute(a, NULL, next, NOW_S, TODAY, &im), 0);
	assert_int_equal(im.nplatforms, 0);
	assert_false(policy_impact_over(&im, 0));
	/* The table's users, ten days later: all outside the window. */
	activity_free(a);
	a = table();
	assert_int_equal(
		policy_impact_compute(a, NULL, next, NOW_S, TODAY + 10, &im),
		0);
	assert_int_equal(im.nplatforms, 0);
	policy_free(next);
	activity_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			raised_minimum_and_blocked_range_count_newly_blocked),
		cmocka_unit_test(no_current_policy_blocks_nobody_before),
		cmocka_unit_test(
			a_past_sunset_blocks_and_a_future_one_does_not),
		cmocka_unit_test(no_activity_is_no_platform_and_never_over),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
