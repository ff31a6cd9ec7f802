/*
 * test_api_gatewatch.c - the gate's metric labels stay bounded whatever
 * the clients send (platforms, lines, "unparsed", "other"), the lines a
 * policy's rules name get labels first, header values in log lines are
 * sanitised, and blocked users are counted once each, verified apart
 * from unverified, over the last 7 days.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/gatewatch.h"
#include "core/activity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define DAY 20000u

static struct gatewatch *new_watch(void)
{
	struct gatewatch *w = malloc(sizeof(*w));
	assert_non_null(w);
	assert_int_equal(gatewatch_init(w), 0);
	return w;
}

static void free_watch(struct gatewatch *w)
{
	gatewatch_destroy(w);
	free(w);
}

static void label_text(struct gatewatch *w, struct gatewatch_label l,
		       char out[64])
{
	char line[GATEWATCH_LINE_BYTES];
	gatewatch_line_name(w, l, line);
	snprintf(out, 64, "%s %s", gatewatch_platform_name(w, l), line);
}

static void expect_label(struct gatewatch *w, const char *platform, bool valid,
			 u64 major, u64 minor, const char *want)
{
	char got[64];
	label_text(w, gatewatch_label(w, platform, valid, major, minor), got);
	assert_string_equal(got, want);
}

/* A metrics exposition into a string (freed by the caller). */
static char *render(struct gatewatch *w, u32 today)
{
	struct wbuf b = WBUF_INIT(1 << 16);
	gatewatch_render(w, today, &b);
	assert_int_equal(b.err, 0);
	char *s = strndup(b.data, b.len);
	wbuf_release(&b);
	return s;
}

static void lines_are_major_minor_and_bounded_per_platform(void **state)
{
	(void)state;
	struct gatewatch *w = new_watch();
	char want[64];
	expect_label(w, "android", true, 3, 9, "android 3.9");
	expect_label(w, "android", true, 3, 9, "android 3.9");
	expect_label(w, "android", false, 0, 0, "android unparsed");
	/* 8 seen lines in all: 3.9 and 7 more; the ninth is "other" */
	for (u64 i = 1; i < GATEWATCH_SEEN_LINES_MAX; i++) {
		snprintf(want, sizeof(want), "android 5.%llu",
			 (unsigned long long)i);
		expect_label(w, "android", true, 5, i, want);
	}
	expect_label(w, "android", true, 6, 0, "android other");
	expect_label(w, "android", true, 5, 1, "android 5.1");
	/* another platform has its own room */
	expect_label(w, "ios", true, 6, 0, "ios 6.0");
	/* numbers past the bound never get a label */
	expect_label(w, "ios", true, 100000, 0, "ios other");
	expect_label(w, "ios", true, 1, GATEWATCH_LINE_PART_MAX + 1,
		     "ios other");
	/* no configured platform: "other", lines still bounded */
	expect_label(w, NULL, true, 1, 2, "other 1.2");
	expect_label(w, NULL, false, 0, 0, "other unparsed");
	free_watch(w);
}

static void platforms_are_bounded_and_names_sanitised(void **state)
{
	(void)state;
	struct gatewatch *w = new_watch();
	char name[16], want[64];
	for (unsigned i = 0; i < GATEWATCH_PLATFORMS_MAX; i++) {
		snprintf(name, sizeof(name), "p%u", i);
		snprintf(want, sizeof(want), "p%u 1.0", i);
		expect_label(w, name, true, 1, 0, want);
	}
	expect_label(w, "one-too-many", true, 1, 0, "other 1.0");
	free_watch(w);

	w = new_watch();
	expect_label(w, "Bad\"name}", true, 1, 0, "_ad_name_ 1.0");
	/* a platform named "other" would be mistaken for the bucket */
	expect_label(w, "other", true, 1, 0, "other 1.0");
	free_watch(w);
}

static void rule_lines_get_labels_before_the_seen_ones(void **state)
{
	(void)state;
	static const char doc[] =
		"{\"platforms\":{\"android\":{\"min_supported\":\"4.0.0\","
		"\"blocked\":[\"3.x\"],\"deprecated\":[{\"range\":\"<4.2.0\"}],"
		"\"recommended\":\"4.5.1\"}}}";
	struct policy *p = NULL;
	struct policy_err err;
	struct gatewatch_rule_line lines[GATEWATCH_RULE_LINES_COPIED];
	assert_int_equal(policy_parse(doc, strlen(doc), &p, &err), 0);
	size_t n = gatewatch_rule_lines(p, lines, GATEWATCH_RULE_LINES_COPIED);
	policy_free(p);
	struct gatewatch *w = new_watch();
	/* the table of seen lines is full before the policy arrives */
	for (u64 i = 0; i < GATEWATCH_SEEN_LINES_MAX; i++)
		gatewatch_label(w, "android", true, 9, i);
	expect_label(w, "android", true, 3, 9, "android other");
	gatewatch_seed(w, lines, n, 1);
	assert_int_equal(atomic_load(&w->seeded_version), 1);
	/* 4.0 (min), 3.0 and 4.0 (3.x is >=3.0.0 <4.0.0-0), 4.2, 4.5 */
	expect_label(w, "android", true, 4, 0, "android 4.0");
	expect_label(w, "android", true, 3, 0, "android 3.0");
	expect_label(w, "android", true, 4, 2, "android 4.2");
	expect_label(w, "android", true, 4, 5, "android 4.5");
	/* not named by a rule and no room: still "other" */
	expect_label(w, "android", true, 3, 9, "android other");
	free_watch(w);
}

static void lookups_without_a_lock_never_add(void **state)
{
	(void)state;
	static const char doc[] =
		"{\"platforms\":{\"android\":{\"min_supported\":\"4.0.0\"},"
		"\"ios\":{\"min_supported\":\"2.1.0\"}}}";
	struct policy *p = NULL;
	struct policy_err err;
	struct gatewatch_rule_line lines[GATEWATCH_RULE_LINES_COPIED];
	struct gatewatch_label l;
	char got[64];
	assert_int_equal(policy_parse(doc, strlen(doc), &p, &err), 0);
	size_t n = gatewatch_rule_lines(p, lines, GATEWATCH_RULE_LINES_COPIED);
	policy_free(p);
	struct gatewatch *w = new_watch();
	/* nothing known yet: the lookup says a label must be added */
	assert_false(gatewatch_label_find(w, "ios", 1, 7, true, 2, 1, &l));
	assert_int_equal(atomic_load(&w->nplatforms), 0);
	gatewatch_seed(w, lines, n, 7);
	/* the policy's platforms by index (sorted: android 0, ios 1) */
	assert_true(gatewatch_label_find(w, "ios", 1, 7, true, 2, 1, &l));
	label_text(w, l, got);
	assert_string_equal(got, "ios 2.1");
	/* another version's index is not trusted: the name decides */
	assert_true(gatewatch_label_find(w, "android", 1, 8, true, 4, 0, &l));
	label_text(w, l, got);
	assert_string_equal(got, "android 4.0");
	/* a line not seen while there is room: false, nothing added */
	assert_false(gatewatch_label_find(w, "ios", 1, 7, true, 3, 0, &l));
	assert_int_equal(atomic_load(&w->platforms[1].nlines), 3);
	assert_true(gatewatch_label_find(w, "ios", 1, 7, false, 0, 0, &l));
	label_text(w, l, got);
	assert_string_equal(got, "ios unparsed");
	free_watch(w);
}

static void decisions_are_rendered_by_platform_line_and_verdict(void **state)
{
	(void)state;
	struct gatewatch *w = new_watch();
	struct gatewatch_label a = gatewatch_label(w, "android", true, 3, 9);
	struct gatewatch_label u = gatewatch_label(w, "android", false, 0, 0);
	gatewatch_count(w, a, 3);
	gatewatch_count(w, a, 3);
	gatewatch_count(w, u, 0);
	gatewatch_count(w, a, 4); /* not a verdict: ignored */
	char *s = render(w, DAY);
	assert_non_null(strstr(s, "tpwallet_client_policy_decisions_total{"
				  "platform=\"android\",line=\"3.9\","
				  "verdict=\"blocked\"} 2\n"));
	assert_non_null(strstr(s, "tpwallet_client_policy_decisions_total{"
				  "platform=\"android\",line=\"unparsed\","
				  "verdict=\"supported\"} 1\n"));
	/* series that never counted are not rendered */
	assert_null(strstr(s, "line=\"3.9\",verdict=\"supported\""));
	free(s);
	free_watch(w);
}

static void sanitised_values_are_short_and_plain(void **state)
{
	(void)state;
	char out[GATEWATCH_LOG_TEXT_BYTES];
	gatewatch_sanitize("android/3.9.4-beta+1", 20, out);
	assert_string_equal(out, "android/3.9.4-beta+1");
	gatewatch_sanitize("a\"b\\c\nd\x01{}", 10, out);
	assert_string_equal(out, "a?b?c?d???");
	gatewatch_sanitize(">=3.0.0 <4.0.0 || ^5", 20, out);
	assert_string_equal(out, ">=3.0.0 <4.0.0 || ^5");
	char big[200];
	memset(big, 'x', sizeof(big));
	gatewatch_sanitize(big, sizeof(big), out);
	assert_int_equal(strlen(out), GATEWATCH_LOG_TEXT_BYTES - 1);
	gatewatch_sanitize(NULL, 0, out);
	assert_string_equal(out, "");
}

static void blocked_users_count_once_each_and_verified_apart(void **state)
{
	(void)state;
	struct gatewatch *w = new_watch();
	struct gatewatch_label l39 = gatewatch_label(w, "android", true, 3, 9);
	struct gatewatch_label l38 = gatewatch_label(w, "android", true, 3, 8);
	u64 n[2];
	/* user 1: twice the same day, then at 3.8: counted once, at 3.8 */
	gatewatch_blocked(w, l39, 1, true, DAY);
	gatewatch_blocked(w, l39, 1, true, DAY);
	gatewatch_blocked(w, l38, 1, true, DAY);
	gatewatch_blocked(w, l39, 2, true, DAY - 6);
	/* unverified: the same hash is another table */
	gatewatch_blocked(w, l39, 1, false, DAY);
	gatewatch_blocked(w, l39, 3, false, DAY);
	gatewatch_blocked(w, l39, 4, false, DAY - 7); /* out of the window */
	gatewatch_blocked_users(w, "android", DAY, n);
	assert_int_equal(n[1], 2);
	assert_int_equal(n[0], 2);
	gatewatch_blocked_users(w, "ios", DAY, n);
	assert_int_equal(n[0] + n[1], 0);
	char *s = render(w, DAY);
	assert_non_null(strstr(s, "tpwallet_client_policy_blocked_users{"
				  "platform=\"android\",line=\"3.9\","
				  "verified=\"true\"} 1\n"));
	assert_non_null(strstr(s, "tpwallet_client_policy_blocked_users{"
				  "platform=\"android\",line=\"3.8\","
				  "verified=\"true\"} 1\n"));
	assert_non_null(strstr(s, "tpwallet_client_policy_blocked_users{"
				  "platform=\"android\",line=\"3.9\","
				  "verified=\"false\"} 2\n"));
	free(s);
	/* a week later, user 2 has left the window */
	gatewatch_blocked_users(w, "android", DAY + 1, n);
	assert_int_equal(n[1], 1);
	assert_int_equal(n[0], 2);
	free_watch(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			lines_are_major_minor_and_bounded_per_platform),
		cmocka_unit_test(platforms_are_bounded_and_names_sanitised),
		cmocka_unit_test(rule_lines_get_labels_before_the_seen_ones),
		cmocka_unit_test(lookups_without_a_lock_never_add),
		cmocka_unit_test(
			decisions_are_rendered_by_platform_line_and_verdict),
		cmocka_unit_test(sanitised_values_are_short_and_plain),
		cmocka_unit_test(
			blocked_users_count_once_each_and_verified_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
