/*
 * test_core_activity.c - client versions in use (core/activity.h): the
 * impact of raising a minimum on a hand-made table (window edges, users
 * who upgrade, out-of-order and same-day observations, unparsed
 * versions, strict and lenient parsing), the limits (platforms,
 * versions, users: -E2BIG and counted as dropped), the adoption forecast
 * against its closed form, and persistence (byte-exact round trip, the
 * same answers, hostile bytes refused).
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

#include "core/activity.h"
#include "core/semver.h"
#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define TODAY 20468u /* 2026-01-15 */

static struct semver ver(const char *s)
{
	struct semver v;
	assert_int_equal(semver_parse(s, strlen(s), SEMVER_STRICT, &v, NULL),
			 0);
	return v;
}

static struct activity_impact impact(const struct activity *a,
				     const char *platform, const char *min,
				     enum semver_mode mode, u32 today)
{
	struct activity_impact im;
	struct semver m = ver(min);
	memset(&im, 0xA5, sizeof(im));
	activity_impact(a, platform, &m, mode, today, &im);
	assert_int_equal(im.window_days, ACTIVITY_WINDOW_DAYS);
	assert_true(im.blocked + im.unparsed <= im.actives);
	return im;
}

static void observe_ok(struct activity *a, u64 user, const char *platform,
		       const char *version, u32 day)
{
	assert_int_equal(activity_observe(a, user, platform, version, day), 0);
}

/* activity_days into an array indexed by day - from. */
struct days {
	u32 from;
	u32 calls;
	u64 below[16], all[16];
	bool seen[16];
	u32 last_day;
};

static void days_cb(void *ctx, u32 day, u64 below, u64 all)
{
	struct days *d = ctx;
	assert_true(day >= d->from && day < d->from + 16);
	assert_false(d->seen[day - d->from]); /* each day once */
	if (d->calls)
		assert_true(day > d->last_day); /* in order */
	d->last_day = day;
	d->calls++;
	d->seen[day - d->from] = true;
	d->below[day - d->from] = below;
	d->all[day - d->from] = all;
}

static struct days days(const struct activity *a, const char *platform,
			const char *min, u32 from, u32 to)
{
	struct days d;
	struct semver m = ver(min);
	memset(&d, 0, sizeof(d));
	d.from = from;
	activity_days(a, platform, &m, SEMVER_STRICT, from, to, days_cb, &d);
	return d;
}

/* ---- the hand-made table ---------------------------------------------- */

static struct activity *hand_table(void)
{
	struct activity *a = activity_new();
	assert_non_null(a);
	/* u1: today, below 4.0.0, seen twice the same day at the same
	 * version (counted once). */
	observe_ok(a, 1, "android", "3.9.0", TODAY);
	observe_ok(a, 1, "android", "3.9.0", TODAY);
	/* u2: on the window's first day, today - 6: counted. */
	observe_ok(a, 2, "android", "4.1.0", TODAY - 6);
	/* u3: today - 7, just out of the window. */
	observe_ok(a, 3, "android", "3.0.0", TODAY - 7);
	/* u4: upgrades mid-window: counted at the last version. */
	observe_ok(a, 4, "android", "3.5.0", TODAY - 5);
	observe_ok(a, 4, "android", "4.2.0", TODAY - 2);
	/* u5: an older observation arriving late is ignored. */
	observe_ok(a, 5, "android", "4.2.0", TODAY - 3);
	observe_ok(a, 5, "android", "3.1.0", TODAY - 4);
	/* u6: two versions the same day: once, at the last. */
	observe_ok(a, 6, "android", "3.8.0", TODAY - 1);
	observe_ok(a, 6, "android", "4.0.0", TODAY - 1);
	/* u7: a version that does not parse. */
	observe_ok(a, 7, "android", "garbage", TODAY);
	/* u8: another platform. */
	observe_ok(a, 8, "ios", "1.0.0", TODAY);
	/* u10: a prerelease of the minimum is below it. */
	observe_ok(a, 10, "android", "4.0.0-beta.1", TODAY);
	/* u11: back to an older version: the last one counts. */
	observe_ok(a, 11, "android", "4.5.0", TODAY - 3);
	observe_ok(a, 11, "android", "3.2.0", TODAY - 2);
	/* u12: above every minimum asked. */
	observe_ok(a, 12, "android", "4.5.0", TODAY);
	return a;
}

static void
impact_counts_each_user_once_at_the_last_version_in_the_window(void **state)
{
	(void)state;
	struct activity *a = hand_table();
	struct activity_impact im;

	/* actives: u1 u2 u4 u5 u6 u7 u10 u11 u12; below 4.0.0: u1 u10 u11;
	 * unparsed: u7. */
	im = impact(a, "android", "4.0.0", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, 9);
	assert_int_equal(im.blocked, 3);
	assert_int_equal(im.unparsed, 1);

	/* The same on the next day: u2 (today - 6) drops out. */
	im = impact(a, "android", "4.0.0", SEMVER_STRICT, TODAY + 1);
	assert_int_equal(im.actives, 8);
	/* Seven days later only those seen today remain. */
	im = impact(a, "android", "4.0.0", SEMVER_STRICT, TODAY + 6);
	assert_int_equal(im.actives, 4); /* u1 u7 u10 u12 */
	im = impact(a, "android", "4.0.0", SEMVER_STRICT, TODAY + 7);
	assert_int_equal(im.actives, 0);

	/* A higher minimum: 4.2.0 blocks u2 (4.1.0) and u6 (4.0.0) too. */
	im = impact(a, "android", "4.2.0", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, 9);
	assert_int_equal(im.blocked, 5);
	assert_int_equal(im.unparsed, 1);

	/* A minimum below everything blocks nobody. */
	im = impact(a, "android", "0.0.1", SEMVER_STRICT, TODAY);
	assert_int_equal(im.blocked, 0);
	assert_int_equal(im.unparsed, 1);

	im = impact(a, "ios", "2.0.0", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, 1);
	assert_int_equal(im.blocked, 1);

	im = impact(a, "web", "2.0.0", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, 0);
	assert_int_equal(im.blocked, 0);
	assert_int_equal(im.unparsed, 0);

	/* Early days: the window does not reach before day 0. */
	im = impact(a, "android", "4.0.0", SEMVER_STRICT, 3);
	assert_int_equal(im.actives, 0);
	assert_int_equal(activity_dropped(a), 0);
	activity_free(a);
}

static void
days_count_distinct_users_per_day_at_their_last_version(void **state)
{
	(void)state;
	struct activity *a = hand_table();
	struct days d = days(a, "android", "4.0.0", TODAY - 7, TODAY);
	static const struct {
		u32 ago;
		bool seen;
		u64 below, all;
	} want[] = {
		{7, true, 1, 1},  /* u3 3.0.0 */
		{6, true, 0, 1},  /* u2 4.1.0 */
		{5, true, 1, 1},  /* u4 3.5.0 */
		{4, false, 0, 0}, /* u5's late observation: ignored */
		{3, true, 0, 2},  /* u5 4.2.0, u11 4.5.0 */
		{2, true, 1, 2},  /* u4 4.2.0, u11 3.2.0 */
		{1, true, 0, 1},  /* u6 at 4.0.0 only */
		{0, true, 2, 4},  /* u1, u7 (unparsed), u10, u12 4.5.0 */
	};
	for (size_t i = 0; i < N(want); i++) {
		u32 k = TODAY - want[i].ago - d.from;
		if (d.seen[k] != want[i].seen || d.below[k] != want[i].below ||
		    d.all[k] != want[i].all)
			fail_msg("today - %u: seen %d below %llu all %llu",
				 want[i].ago, d.seen[k],
				 (unsigned long long)d.below[k],
				 (unsigned long long)d.all[k]);
	}
	assert_int_equal(d.calls, 7);
	/* A narrower span: only its days. */
	d = days(a, "android", "4.0.0", TODAY - 2, TODAY - 1);
	assert_int_equal(d.calls, 2);
	d = days(a, "nothing", "4.0.0", TODAY - 7, TODAY);
	assert_int_equal(d.calls, 0);
	activity_free(a);
}

static void lenient_mode_reads_app_store_versions(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	assert_non_null(a);
	observe_ok(a, 1, "ios", "v4.2", TODAY);	    /* 4.2.0 */
	observe_ok(a, 2, "ios", "4.2.1.77", TODAY); /* 4.2.1+77 */
	observe_ok(a, 3, "ios", "4.1", TODAY);	    /* 4.1.0 */
	observe_ok(a, 4, "ios", "4.2.0", TODAY);
	observe_ok(a, 5, "ios", "V3", TODAY); /* 3.0.0 */
	observe_ok(a, 6, "ios", "four", TODAY);

	struct activity_impact im =
		impact(a, "ios", "4.2.0", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, 6);
	assert_int_equal(im.blocked, 0);
	assert_int_equal(im.unparsed, 5); /* only 4.2.0 parses strictly */

	im = impact(a, "ios", "4.2.0", SEMVER_LENIENT, TODAY);
	assert_int_equal(im.actives, 6);
	assert_int_equal(im.blocked, 2); /* 4.1, V3 */
	assert_int_equal(im.unparsed, 1);

	im = impact(a, "ios", "4.2.1", SEMVER_LENIENT, TODAY);
	assert_int_equal(im.blocked, 4); /* 4.2.1+77 is not below 4.2.1 */
	activity_free(a);
}

/* ---- limits ------------------------------------------------------------ */

static void bad_arguments_are_einval_and_not_dropped(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	char longv[SEMVER_TEXT_MAX + 2];
	char longp[40];

	memset(longv, '1', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(activity_observe(a, 1, "Android", "1.0.0", TODAY),
			 -EINVAL);
	assert_int_equal(activity_observe(a, 1, "", "1.0.0", TODAY), -EINVAL);
	assert_int_equal(activity_observe(a, 1, "a/b", "1.0.0", TODAY),
			 -EINVAL);
	assert_int_equal(activity_observe(a, 1, longp, "1.0.0", TODAY),
			 -EINVAL);
	assert_int_equal(activity_observe(a, 1, "android", "", TODAY), -EINVAL);
	assert_int_equal(activity_observe(a, 1, "android", longv, TODAY),
			 -EINVAL);
	/* The longest of each is fine. */
	longp[32] = '\0';
	observe_ok(a, 1, longp, "1.0.0", TODAY);
	longv[SEMVER_TEXT_MAX] = '\0';
	observe_ok(a, 2, "android", longv, TODAY);
	assert_int_equal(activity_dropped(a), 0);
	activity_free(a);
}

static void platform_and_version_limits_are_e2big_and_counted(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	char name[16], v[24];

	for (unsigned i = 0; i < ACTIVITY_PLATFORMS_MAX; i++) {
		snprintf(name, sizeof(name), "p%u", i);
		observe_ok(a, 100 + i, name, "1.0.0", TODAY);
	}
	assert_int_equal(activity_observe(a, 1, "one-more", "1.0.0", TODAY),
			 -E2BIG);
	assert_int_equal(activity_dropped(a), 1);
	observe_ok(a, 2, "p0", "1.0.0", TODAY); /* known ones still work */

	for (unsigned i = 1; i < ACTIVITY_VERSIONS_MAX; i++) {
		snprintf(v, sizeof(v), "1.0.%u", i);
		observe_ok(a, 1000 + i, "p1", v, TODAY);
	}
	assert_int_equal(activity_observe(a, 5, "p1", "9.9.9", TODAY), -E2BIG);
	assert_int_equal(activity_dropped(a), 2);
	/* Dropped means not counted: user 5 is nowhere. */
	struct activity_impact im =
		impact(a, "p1", "9.9.9", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, ACTIVITY_VERSIONS_MAX);
	/* A known version still counts, and another platform has room. */
	observe_ok(a, 5, "p1", "1.0.7", TODAY);
	observe_ok(a, 6, "p2", "9.9.9", TODAY);
	im = impact(a, "p1", "9.9.9", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, ACTIVITY_VERSIONS_MAX + 1);
	assert_int_equal(activity_dropped(a), 2);
	activity_free(a);
}

static void user_limit_is_e2big_and_counted(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	for (u64 u = 1; u <= ACTIVITY_USERS_MAX; u++)
		if (activity_observe(a, u * 0x9E3779B97F4A7C15ull, "android",
				     "1.0.0", TODAY) != 0)
			fail_msg("user %llu refused", (unsigned long long)u);
	assert_int_equal(activity_observe(a, 7, "android", "1.0.0", TODAY),
			 -E2BIG);
	assert_int_equal(activity_dropped(a), 1);
	/* Known users are still followed. */
	observe_ok(a, 0x9E3779B97F4A7C15ull, "android", "2.0.0", TODAY + 1);
	struct activity_impact im =
		impact(a, "android", "2.0.0", SEMVER_STRICT, TODAY + 1);
	assert_int_equal(im.actives, ACTIVITY_USERS_MAX);
	assert_int_equal(im.blocked, ACTIVITY_USERS_MAX - 1);
	activity_free(a);
}

/* What anyone may send fills half of each table; the operator's own
 * traffic keeps the other half. */
static void shared_telemetry_leaves_half_for_the_operator(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	char v[24];
	for (unsigned i = 0; i < ACTIVITY_SHARED_VERSIONS_MAX; i++) {
		snprintf(v, sizeof(v), "1.0.%u", i);
		assert_int_equal(
			activity_observe_shared(a, 1000 + i, "ios", v, TODAY),
			0);
	}
	assert_int_equal(activity_observe_shared(a, 1, "ios", "9.0.0", TODAY),
			 -E2BIG);
	assert_int_equal(activity_dropped(a), 1);
	/* a version already there still counts for anyone */
	assert_int_equal(activity_observe_shared(a, 2, "ios", "1.0.3", TODAY),
			 0);
	/* the operator's new version has room */
	observe_ok(a, 3, "ios", "9.0.0", TODAY);
	struct activity_impact im =
		impact(a, "ios", "9.0.0", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, ACTIVITY_SHARED_VERSIONS_MAX + 2);
	assert_int_equal(im.blocked, ACTIVITY_SHARED_VERSIONS_MAX + 1);

	struct activity *b = activity_new();
	u64 u = 1;
	for (; u <= ACTIVITY_SHARED_USERS_MAX; u++)
		if (activity_observe_shared(b, u * 0x9E3779B97F4A7C15ull,
					    "android", "1.0.0", TODAY) != 0)
			fail_msg("user %llu refused", (unsigned long long)u);
	assert_int_equal(activity_observe_shared(b, u * 0x9E3779B97F4A7C15ull,
						 "android", "1.0.0", TODAY),
			 -E2BIG);
	observe_ok(b, u * 0x9E3779B97F4A7C15ull, "android", "1.0.0", TODAY);
	im = impact(b, "android", "2.0.0", SEMVER_STRICT, TODAY);
	assert_int_equal(im.actives, ACTIVITY_SHARED_USERS_MAX + 1);
	activity_free(a);
	activity_free(b);
}

/* ---- forecast ------------------------------------------------------------ */

/* Day first + k: `all` users, below[k] of them at 3.0.0, the rest 5.0.0
 * (fresh users every day). */
static void fill(struct activity *a, const char *platform, u32 first,
		 const u32 *below, size_t ndays, u32 all)
{
	static u64 next = 1;
	for (size_t k = 0; k < ndays; k++)
		for (u32 i = 0; i < all; i++)
			observe_ok(a, next++, platform,
				   i < below[k] ? "3.0.0" : "5.0.0",
				   first + (u32)k);
}

static int forecast(const struct activity *a, const char *platform, u32 today,
		    u32 weeks, double threshold, struct activity_forecast *out)
{
	struct semver m = ver("4.0.0");
	memset(out, 0xA5, sizeof(*out));
	return activity_forecast(a, platform, &m, SEMVER_STRICT, today, weeks,
				 threshold, out);
}

static void forecast_of_exact_halving_matches_the_closed_form(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	/* share(d0 + k) = 2^-(k+1), k = 0..6; today = d0 + 6. */
	static const u32 below[] = {512, 256, 128, 64, 32, 16, 8};
	const u32 d0 = TODAY - 6;
	struct activity_forecast f;

	fill(a, "android", d0, below, N(below), 1024);
	assert_int_equal(forecast(a, "android", TODAY, 1, 0.001, &f), 0);
	assert_int_equal(f.days_used, 7);
	assert_true(fabs(f.r2 - 1.0) < 1e-9);
	assert_true(fabs(f.daily_decay - 0.5) < 1e-9);
	assert_true(fabs(f.share_now - 1.0 / 128) < 1e-9);
	assert_true(f.decreasing);
	assert_false(f.already_below);
	/* 2^-(d - d0 + 1) = 0.001  =>  d = d0 - 1 + log2(1000) = d0 + 8.97 */
	double d = (double)d0 - 1 + log2(1000.0);
	assert_int_equal(f.day_below, (u32)ceil(d));
	assert_int_equal(f.day_below, d0 + 9);

	/* A threshold the share is already under. */
	assert_int_equal(forecast(a, "android", TODAY, 1, 0.01, &f), 0);
	assert_true(f.already_below);
	assert_int_equal(f.day_below, TODAY);

	/* Asked later, the fitted share today keeps falling. */
	assert_int_equal(forecast(a, "android", TODAY + 3, 2, 0.001, &f), 0);
	assert_int_equal(f.days_used, 7);
	assert_true(fabs(f.share_now - 1.0 / 1024) < 1e-9);
	assert_true(f.already_below == (1.0 / 1024 < 0.001));
	activity_free(a);
}

static void forecast_skips_days_without_users_below(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	/* Shares 1/4, 1/8, 0, 1/16: the day with nobody below has no
	 * logarithm and is left out of the fit. */
	static const u32 below[] = {64, 32, 0, 16};
	struct activity_forecast f;
	fill(a, "web", TODAY - 3, below, N(below), 256);
	assert_int_equal(forecast(a, "web", TODAY, 1, 0.001, &f), 0);
	assert_int_equal(f.days_used, 3);
	assert_true(f.decreasing);
	assert_true(f.r2 > 0.8 && f.r2 <= 1.0);
	activity_free(a);
}

static void forecast_of_a_constant_share_is_not_decreasing(void **state)
{
	(void)state;
	/* Flat data in many shapes: rounding in the sums must not come out
	 * as a (tiny) decay with a forecast date. */
	static const u32 ndays[] = {3, 4, 6, 7, 9, 14, 30};
	static const u32 below[] = {1, 4, 7, 10, 16, 19};
	for (size_t i = 0; i < N(ndays); i++)
		for (size_t j = 0; j < N(below); j++) {
			struct activity *a = activity_new();
			struct activity_forecast f;
			u32 today = 20000 + ndays[i] * 7, b[30];
			for (u32 k = 0; k < ndays[i]; k++)
				b[k] = below[j];
			fill(a, "android", today - ndays[i] + 1, b, ndays[i],
			     20);
			assert_int_equal(
				forecast(a, "android", today, 6, 0.01, &f), 0);
			assert_int_equal(f.days_used, ndays[i]);
			assert_true(fabs(f.share_now - below[j] / 20.0) < 1e-9);
			assert_true(fabs(f.daily_decay) < 1e-9);
			assert_false(f.already_below);
			assert_true(f.r2 >= 0 && f.r2 <= 1);
			if (f.decreasing || f.day_below != 0)
				fail_msg("%u days at %u/20: forecast as "
					 "decreasing (decay %g, day %u)",
					 ndays[i], below[j], f.daily_decay,
					 f.day_below);
			activity_free(a);
		}
}

static void forecast_needs_three_days(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	static const u32 below[] = {10, 5};
	struct activity_forecast f;

	assert_int_equal(forecast(a, "android", TODAY, 1, 0.1, &f), -ENODATA);
	assert_int_equal(f.days_used, 0);
	fill(a, "android", TODAY - 1, below, N(below), 20);
	assert_int_equal(forecast(a, "android", TODAY, 1, 0.1, &f), -ENODATA);
	assert_int_equal(f.days_used, 2);
	/* A third day with nobody below does not count either. */
	observe_ok(a, 999999, "android", "5.0.0", TODAY - 2);
	assert_int_equal(forecast(a, "android", TODAY, 1, 0.1, &f), -ENODATA);
	/* Days before the span do not count. */
	observe_ok(a, 999998, "android", "3.0.0", TODAY - 8);
	assert_int_equal(forecast(a, "android", TODAY, 1, 0.1, &f), -ENODATA);
	assert_int_equal(forecast(a, "android", TODAY, 2, 0.1, &f), 0);
	assert_int_equal(f.days_used, 3);
	activity_free(a);
}

static void forecast_refuses_bad_arguments(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	struct activity_forecast f;
	static const double bad[] = {0.0, 1.0, -0.5, 2.0, NAN};
	for (size_t i = 0; i < N(bad); i++)
		assert_int_equal(forecast(a, "android", TODAY, 1, bad[i], &f),
				 -EINVAL);
	assert_int_equal(forecast(a, "android", TODAY, 0, 0.5, &f), -EINVAL);
	assert_int_equal(forecast(a, "android", TODAY, 18, 0.5, &f), -EINVAL);
	activity_free(a);
}

/* ---- persistence ------------------------------------------------------- */

struct buf {
	u8 *p;
	size_t len, cap;
};

static int buf_sink(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		u8 *p = realloc(b->p, cap);
		assert_non_null(p);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static struct buf write_all(const struct activity *a)
{
	struct buf b = {0};
	assert_int_equal(activity_write(a, buf_sink, &b), 0);
	return b;
}

static void assert_same_answers(const struct activity *a,
				const struct activity *b)
{
	static const char *const platforms[] = {"android", "ios", "web"};
	static const char *const mins[] = {"4.0.0", "4.2.0", "1.0.0"};
	assert_int_equal(activity_dropped(a), activity_dropped(b));
	for (size_t p = 0; p < N(platforms); p++)
		for (size_t m = 0; m < N(mins); m++)
			for (u32 t = TODAY - 20; t <= TODAY + 8; t++) {
				struct activity_impact x =
					impact(a, platforms[p], mins[m],
					       SEMVER_LENIENT, t);
				struct activity_impact y =
					impact(b, platforms[p], mins[m],
					       SEMVER_LENIENT, t);
				assert_memory_equal(&x, &y, sizeof(x));
				struct activity_forecast fx, fy;
				int rx = forecast(a, platforms[p], t, 3, 0.01,
						  &fx);
				int ry = forecast(b, platforms[p], t, 3, 0.01,
						  &fy);
				assert_int_equal(rx, ry);
				assert_memory_equal(&fx, &fy, sizeof(fx));
			}
}

static void round_trip(const struct activity *a)
{
	struct buf b1 = write_all(a);
	struct activity *r = activity_read(b1.p, b1.len);
	assert_non_null(r);
	struct buf b2 = write_all(r);
	assert_int_equal(b1.len, b2.len);
	assert_memory_equal(b1.p, b2.p, b1.len);
	assert_same_answers(a, r);
	activity_free(r);
	free(b1.p);
	free(b2.p);
}

static void
write_read_round_trip_is_byte_exact_with_the_same_answers(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	round_trip(a); /* empty */
	activity_free(a);

	a = hand_table();
	round_trip(a);
	/* Grow the user table a few times and fill days of forecast. */
	static const u32 below[] = {300, 250, 200, 160, 130, 100, 80, 60};
	fill(a, "ios", TODAY - 7, below, N(below), 400);
	assert_int_equal(activity_observe(a, 1, "x", "", TODAY), -EINVAL);
	char name[8];
	for (unsigned i = 0; i < ACTIVITY_PLATFORMS_MAX; i++) {
		snprintf(name, sizeof(name), "q%u", i);
		(void)activity_observe(a, 77, name, "1.0.0", TODAY);
	}
	assert_true(activity_dropped(a) > 0);
	round_trip(a);
	activity_free(a);
}

/* Users whose hashes share a slot at the end of the table wrap around to
 * its start: the file must still read back into the same table. */
static void round_trip_keeps_users_that_wrap_around_the_table(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	/* 1023, 2047, 3071 all hash to slot 1023 of the first table. */
	observe_ok(a, 1023, "android", "3.0.0", TODAY);
	observe_ok(a, 2047, "android", "4.0.0", TODAY);
	observe_ok(a, 3071, "android", "5.0.0", TODAY);
	round_trip(a);
	/* And after the table grew (2 * users > slots). */
	for (u64 u = 1; u <= 600; u++)
		observe_ok(a, u * 2048 + 2047, "ios", "1.0.0", TODAY - 1);
	round_trip(a);
	/* Random-looking users across several growths. */
	u64 x = 88172645463325252ull;
	for (int i = 0; i < 5000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		observe_ok(a, x, i % 2 ? "android" : "web",
			   i % 3 ? "4.1.0" : "3.9.9", TODAY - (u32)(i % 9));
	}
	round_trip(a);
	activity_free(a);
}

/* Offsets in a file with one platform, one version, one user, one day. */
#define NAME_BYTES  33
#define OFF_NP	    8
#define OFF_NAME    12
#define OFF_NVER    (OFF_NAME + NAME_BYTES)
#define OFF_VER	    (OFF_NVER + 2)
#define OFF_NUSERS  (OFF_VER + SEMVER_TEXT_MAX + 1)
#define OFF_USER    (OFF_NUSERS + 4)
#define OFF_NDAYS   (OFF_USER + 16)
#define OFF_DAY	    (OFF_NDAYS + 4)
#define OFF_DROPPED (OFF_DAY + 16)
#define ONE_LEN	    (OFF_DROPPED + 8)

static void garbled_files_are_refused(void **state)
{
	(void)state;
	struct activity *a = activity_new();
	observe_ok(a, 42, "android", "4.0.0", TODAY);
	struct buf b = write_all(a);
	assert_int_equal(b.len, ONE_LEN);
	assert_memory_equal(b.p + OFF_NAME, "android", 8);
	assert_memory_equal(b.p + OFF_VER, "4.0.0", 6);

	for (size_t n = 0; n < b.len; n++)
		assert_null(activity_read(b.p, n));
	u8 *longer = calloc(1, b.len + 1);
	assert_non_null(longer);
	memcpy(longer, b.p, b.len);
	assert_null(activity_read(longer, b.len + 1));
	free(longer);

	struct {
		const char *name;
		size_t off;
		u64 value;
		size_t width;
	} rows[] = {
		{"magic", 0, 'x', 1},
		{"platforms 2", OFF_NP, 2, 4},
		{"platforms 33", OFF_NP, ACTIVITY_PLATFORMS_MAX + 1, 4},
		{"platform name upper", OFF_NAME, 'A', 1},
		{"platform name empty", OFF_NAME, 0, 1},
		{"versions 2", OFF_NVER, 2, 2},
		{"versions 0 (user's version unknown)", OFF_NVER, 0, 2},
		{"versions over the limit", OFF_NVER, ACTIVITY_VERSIONS_MAX + 1,
		 2},
		{"version unterminated", OFF_VER + SEMVER_TEXT_MAX, '1', 1},
		{"users 2", OFF_NUSERS, 2, 4},
		{"users 0 (one follows)", OFF_NUSERS, 0, 4},
		{"users over the limit", OFF_NUSERS, ACTIVITY_USERS_MAX + 1, 4},
		{"user 0", OFF_USER, 0, 8},
		{"user platform 1", OFF_USER + 14, 1, 1},
		{"user version 1", OFF_USER + 12, 1, 2},
		{"days 2", OFF_NDAYS, 2, 4},
		{"days huge", OFF_NDAYS, UINT32_MAX, 4},
		{"day platform 1", OFF_DAY + 6, 1, 1},
		{"day version 1", OFF_DAY + 4, 1, 2},
	};
	for (size_t i = 0; i < N(rows); i++) {
		u8 *g = malloc(b.len);
		assert_non_null(g);
		memcpy(g, b.p, b.len);
		memcpy(g + rows[i].off, &rows[i].value, rows[i].width);
		struct activity *r = activity_read(g, b.len);
		if (r)
			fail_msg("%s: accepted", rows[i].name);
		free(g);
	}
	/* A platform name filling its field with no NUL. */
	u8 *g = malloc(b.len);
	assert_non_null(g);
	memcpy(g, b.p, b.len);
	memset(g + OFF_NAME, 'a', NAME_BYTES);
	assert_null(activity_read(g, b.len));
	free(g);
	activity_free(a);

	/* Two users with the same hash; days out of order. */
	a = activity_new();
	observe_ok(a, 42, "android", "4.0.0", TODAY);
	observe_ok(a, 43, "android", "4.0.0", TODAY + 1);
	struct buf two = write_all(a);
	size_t off_u = OFF_USER, off_d = OFF_USER + 2 * 16 + 4;
	g = malloc(two.len);
	assert_non_null(g);
	memcpy(g, two.p, two.len);
	memcpy(g + off_u + 16, g + off_u, 16);
	assert_null(activity_read(g, two.len));
	memcpy(g, two.p, two.len);
	u8 tmp[16];
	memcpy(tmp, g + off_d, 16);
	memcpy(g + off_d, g + off_d + 16, 16);
	memcpy(g + off_d + 16, tmp, 16);
	assert_null(activity_read(g, two.len));
	memcpy(g + off_d, g + off_d + 16, 16); /* the same day twice */
	assert_null(activity_read(g, two.len));
	/* Untouched, it reads. */
	struct activity *r = activity_read(two.p, two.len);
	assert_non_null(r);
	activity_free(r);
	free(g);
	free(two.p);

	/* Every single-byte change: refused, or a table that answers
	 * without crashing. */
	for (size_t i = 0; i < b.len; i++) {
		b.p[i] ^= 0x41;
		r = activity_read(b.p, b.len);
		if (r) {
			struct activity_impact im = impact(
				r, "android", "4.0.0", SEMVER_STRICT, TODAY);
			(void)im;
			struct activity_forecast f;
			(void)forecast(r, "android", TODAY, 1, 0.5, &f);
			observe_ok(r, 42, "android", "4.0.1", TODAY + 1);
			activity_free(r);
		}
		b.p[i] ^= 0x41;
	}
	free(b.p);
	activity_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			impact_counts_each_user_once_at_the_last_version_in_the_window),
		cmocka_unit_test(
			days_count_distinct_users_per_day_at_their_last_version),
		cmocka_unit_test(lenient_mode_reads_app_store_versions),
		cmocka_unit_test(bad_arguments_are_einval_and_not_dropped),
		cmocka_unit_test(
			platform_and_version_limits_are_e2big_and_counted),
		cmocka_unit_test(user_limit_is_e2big_and_counted),
		cmocka_unit_test(shared_telemetry_leaves_half_for_the_operator),
		cmocka_unit_test(
			forecast_of_exact_halving_matches_the_closed_form),
		cmocka_unit_test(forecast_skips_days_without_users_below),
		cmocka_unit_test(
			forecast_of_a_constant_share_is_not_decreasing),
		cmocka_unit_test(forecast_needs_three_days),
		cmocka_unit_test(forecast_refuses_bad_arguments),
		cmocka_unit_test(
			write_read_round_trip_is_byte_exact_with_the_same_answers),
		cmocka_unit_test(
			round_trip_keeps_users_that_wrap_around_the_table),
		cmocka_unit_test(garbled_files_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
