/*
 * test_core_semver.c - SemVer 2.0.0 versions, precedence and npm-style
 * ranges (src/core/semver.h).
 *
 * Tables come from two published sources, used as facts:
 *   - semver.org 2.0.0: the grammar, the examples of sections 9 and 10 and
 *     the precedence chain of section 11;
 *   - npm's node-semver test fixtures (test/fixtures/range-include.js,
 *     range-exclude.js, comparisons.js, equality.js, valid-versions.js,
 *     invalid-versions.js): every row that is within our documented
 *     subset.  Left out, as semver.h says: rows with the `loose` or
 *     `includePrerelease` option (24 range rows, the loose comparisons and
 *     equalities) and rows whose version is not a string.  Versions with
 *     a "v" prefix, valid for npm but not SemVer 2.0.0, are in the lenient
 *     table instead.
 * The extra range rows (policy shapes, partial hyphens, 0.x carets, the
 * prerelease rule) were checked against node-semver 7.8 when written; the
 * u64-edge rows have no npm counterpart (npm stops at 2^53).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/semver.h"

#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int parse(const char *s, enum semver_mode mode, struct semver *v,
		 struct semver_err *err)
{
	return semver_parse(s, strlen(s), mode, v, err);
}

static struct semver strict(const char *s)
{
	struct semver v;
	struct semver_err err;
	int r = parse(s, SEMVER_STRICT, &v, &err);
	if (r != 0)
		fail_msg("%s: %s", s, err.msg);
	return v;
}

static int cmp(const char *a, const char *b)
{
	struct semver x = strict(a), y = strict(b);
	return semver_compare(&x, &y);
}

static void precedence_follows_the_spec_chain_of_section_11(void **state)
{
	(void)state;
	static const char *chain[] = {
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
		"1.0.0-beta",  "1.0.0-beta.2",	"1.0.0-beta.11",
		"1.0.0-rc.1",  "1.0.0",		"2.0.0",
		"2.1.0",       "2.1.1",
	};
	for (size_t i = 0; i < N(chain); i++) {
		for (size_t j = 0; j < N(chain); j++) {
			int want = (i > j) - (i < j);
			int got = cmp(chain[i], chain[j]);
			if ((got > 0) - (got < 0) != want)
				fail_msg("%s vs %s: %d", chain[i], chain[j],
					 got);
		}
	}
}

/* npm comparisons.js (strict rows): the first is greater. */
static void precedence_matches_npm_comparisons_fixture(void **state)
{
	(void)state;
	static const char *gt[][2] = {
		{"0.0.0", "0.0.0-foo"},
		{"0.0.1", "0.0.0"},
		{"1.0.0", "0.9.9"},
		{"0.10.0", "0.9.0"},
		{"0.99.0", "0.10.0"},
		{"2.0.0", "1.2.3"},
		{"1.2.3", "1.2.3-asdf"},
		{"1.2.3", "1.2.3-4"},
		{"1.2.3", "1.2.3-4-foo"},
		{"1.2.3-5-foo", "1.2.3-5"},
		{"1.2.3-5", "1.2.3-4"},
		{"1.2.3-5-foo", "1.2.3-5-Foo"},
		{"3.0.0", "2.7.2+asdf"},
		{"1.2.3-a.10", "1.2.3-a.5"},
		{"1.2.3-a.b", "1.2.3-a.5"},
		{"1.2.3-a.b", "1.2.3-a"},
		{"1.2.3-a.b.c.10.d.5", "1.2.3-a.b.c.5.d.100"},
		{"1.2.3-r2", "1.2.3-r100"},
		{"1.2.3-r100", "1.2.3-R2"},
		/* and ours: numbers past u64 in prereleases, the u64 edge */
		{"1.0.0-123456789012345678901234567890",
		 "1.0.0-99999999999999999999999999999"},
		{"1.0.0-1", "1.0.0-0.0"},
		{"18446744073709551615.0.0", "18446744073709551614.99.99"},
		{"0.0.18446744073709551615", "0.0.18446744073709551614"},
	};
	for (size_t i = 0; i < N(gt); i++) {
		if (cmp(gt[i][0], gt[i][1]) <= 0)
			fail_msg("%s should be > %s", gt[i][0], gt[i][1]);
		if (cmp(gt[i][1], gt[i][0]) >= 0)
			fail_msg("%s should be < %s", gt[i][1], gt[i][0]);
	}
}

/* npm equality.js (strict rows) and the spec: build metadata is ignored. */
static void precedence_ignores_build_metadata(void **state)
{
	(void)state;
	assert_int_equal(cmp("1.2.3-beta+build", "1.2.3-beta+otherbuild"), 0);
	assert_int_equal(cmp("1.2.3+build", "1.2.3+otherbuild"), 0);
	assert_int_equal(cmp("1.0.0+20130313144700", "1.0.0"), 0);
	assert_int_equal(cmp("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"), 0);
}

struct valid_row {
	const char *s;
	u64 major, minor, patch;
	const char *pre, *build;
};

static void check_fields(const char *s, const struct semver *v,
			 const struct valid_row *w)
{
	if (v->major != w->major || v->minor != w->minor ||
	    v->patch != w->patch)
		fail_msg("%s: numbers", s);
	if (v->pre_len != strlen(w->pre) ||
	    (v->pre_len && memcmp(v->pre, w->pre, v->pre_len) != 0))
		fail_msg("%s: prerelease %.*s", s, (int)v->pre_len,
			 v->pre ? v->pre : "");
	if (v->build_len != strlen(w->build) ||
	    (v->build_len && memcmp(v->build, w->build, v->build_len) != 0))
		fail_msg("%s: build %.*s", s, (int)v->build_len,
			 v->build ? v->build : "");
}

/* npm valid-versions.js, semver.org's examples, and the u64 edge. */
static void strict_parse_accepts_valid_versions_with_their_fields(void **state)
{
	(void)state;
	static const struct valid_row rows[] = {
		{"1.0.0", 1, 0, 0, "", ""},
		{"2.1.0", 2, 1, 0, "", ""},
		{"3.2.1", 3, 2, 1, "", ""},
		{"1.2.3-0", 1, 2, 3, "0", ""},
		{"1.2.3-123", 1, 2, 3, "123", ""},
		{"1.2.3-1.2.3", 1, 2, 3, "1.2.3", ""},
		{"1.2.3-1a", 1, 2, 3, "1a", ""},
		{"1.2.3-a1", 1, 2, 3, "a1", ""},
		{"1.2.3-alpha", 1, 2, 3, "alpha", ""},
		{"1.2.3-alpha.1", 1, 2, 3, "alpha.1", ""},
		{"1.2.3-alpha-1", 1, 2, 3, "alpha-1", ""},
		{"1.2.3-alpha-.-beta", 1, 2, 3, "alpha-.-beta", ""},
		{"1.2.3+456", 1, 2, 3, "", "456"},
		{"1.2.3+build", 1, 2, 3, "", "build"},
		{"1.2.3+new-build", 1, 2, 3, "", "new-build"},
		{"1.2.3+build.1", 1, 2, 3, "", "build.1"},
		{"1.2.3+build.1a", 1, 2, 3, "", "build.1a"},
		{"1.2.3+build.a1", 1, 2, 3, "", "build.a1"},
		{"1.2.3+build.alpha", 1, 2, 3, "", "build.alpha"},
		{"1.2.3+build.alpha.beta", 1, 2, 3, "", "build.alpha.beta"},
		{"1.2.3-alpha+build", 1, 2, 3, "alpha", "build"},
		{"1.0.0-alpha+001", 1, 0, 0, "alpha", "001"},
		{"1.0.0+21AF26D3----117B344092BD", 1, 0, 0, "",
		 "21AF26D3----117B344092BD"},
		{"1.0.0-x.7.z.92", 1, 0, 0, "x.7.z.92", ""},
		{"1.0.0-x-y-z.--", 1, 0, 0, "x-y-z.--", ""},
		{"1.0.0--", 1, 0, 0, "-", ""},
		{"0.0.0", 0, 0, 0, "", ""},
		{"18446744073709551615.18446744073709551615."
		 "18446744073709551615",
		 UINT64_MAX, UINT64_MAX, UINT64_MAX, "", ""},
		{"1.0.0-0A.is.legal", 1, 0, 0, "0A.is.legal", ""},
		{"1.0.0+0.build.1-rc.10000aaa-kk-0.1", 1, 0, 0, "",
		 "0.build.1-rc.10000aaa-kk-0.1"},
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct semver v;
		struct semver_err err;
		if (parse(rows[i].s, SEMVER_STRICT, &v, &err) != 0)
			fail_msg("%s: %s", rows[i].s, err.msg);
		check_fields(rows[i].s, &v, &rows[i]);
	}
}

struct invalid_row {
	const char *s;
	int code;
	const char *msg; /* exact message, or NULL to check only the code */
};

static void strict_parse_rejects_invalid_versions_naming_the_place(void **state)
{
	(void)state;
	static const struct invalid_row rows[] = {
		{"01.2.3", -EINVAL, "at 0: leading zero in major"},
		{"10.01.3", -EINVAL, "at 3: leading zero in minor"},
		{"1.2.03", -EINVAL, "at 4: leading zero in patch"},
		{"1.2.3-01", -EINVAL,
		 "at 6: leading zero in numeric prerelease identifier"},
		{"1.2.3-a.01", -EINVAL, NULL},
		{"1.2.3-", -EINVAL,
		 "at 6: empty identifier in prerelease, got end of input"},
		{"1.2.3+", -EINVAL, NULL},
		{"1.2.3-a..b", -EINVAL,
		 "at 8: empty identifier in prerelease, got '.'"},
		{"1.2.3+a..b", -EINVAL, NULL},
		{"1.2.3-a.", -EINVAL, NULL},
		{"1.2", -EINVAL,
		 "at 3: expected '.' after minor, got end of input"},
		{"1", -EINVAL, NULL},
		{"1.2.3.4", -EINVAL, "at 5: unexpected '.' after the version"},
		{"v1.2.3", -EINVAL,
		 "at 0: expected a number for major, got 'v'"},
		{"=1.2.3", -EINVAL, NULL},
		{" 1.2.3", -EINVAL,
		 "at 0: expected a number for major, got "
		 "\\x20"},
		{"1.2.3 ", -EINVAL, NULL},
		{"1.2.3\n", -EINVAL, NULL},
		{"", -EINVAL, NULL},
		{".1.2", -EINVAL, NULL},
		{"1..2", -EINVAL, NULL},
		{"1.2.3-beta!", -EINVAL,
		 "at 10: unexpected '!' after the "
		 "version"},
		{"1.2.3+build_1", -EINVAL, NULL},
		{"1.2.3-\xc3\xa9", -EINVAL, NULL},
		{"-1.2.3", -EINVAL, NULL},
		{"1.2.3beta", -EINVAL, NULL},
		{"1.2.x", -EINVAL, NULL},
		{"hello, world", -EINVAL, NULL},
		{"18446744073709551616.0.0", -ERANGE,
		 "at 0: major does not fit in 64 bits"},
		{"0.18446744073709551616.0", -ERANGE, NULL},
		{"0.0.99999999999999999999", -ERANGE,
		 "at 4: patch does not fit in 64 bits"},
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct semver v;
		struct semver_err err;
		int r = parse(rows[i].s, SEMVER_STRICT, &v, &err);
		if (r != rows[i].code)
			fail_msg("\"%s\": got %d, want %d", rows[i].s, r,
				 rows[i].code);
		if (rows[i].msg && strcmp(err.msg, rows[i].msg) != 0)
			fail_msg("\"%s\": message \"%s\"", rows[i].s, err.msg);
	}
}

/* npm invalid-versions.js: longer than MAX_LENGTH (256) is refused. */
static void parse_refuses_versions_past_the_length_limit(void **state)
{
	(void)state;
	char s[SEMVER_TEXT_MAX + 2];
	struct semver v;
	struct semver_err err;

	/* "1.0.0-" then 'a's up to exactly the limit: accepted. */
	memset(s, 'a', sizeof(s));
	memcpy(s, "1.0.0-", 6);
	assert_int_equal(
		semver_parse(s, SEMVER_TEXT_MAX, SEMVER_STRICT, &v, &err), 0);
	assert_int_equal(v.pre_len, SEMVER_TEXT_MAX - 6);
	assert_int_equal(
		semver_parse(s, SEMVER_TEXT_MAX + 1, SEMVER_STRICT, &v, &err),
		-E2BIG);
	assert_string_equal(err.msg, "at 256: version longer than 256 bytes");
	/* Lenient: "1.0-" and 252 more bytes would print as 1.0.0-...,
	 * 258 bytes: refused, since the result must be a strict version;
	 * one byte less prints as exactly 256. */
	memcpy(s, "1.0-", 4);
	assert_int_equal(
		semver_parse(s, SEMVER_TEXT_MAX, SEMVER_LENIENT, &v, &err),
		-E2BIG);
	assert_string_equal(err.msg,
			    "at 0: version longer than 256 bytes once written "
			    "out");
	assert_int_equal(
		semver_parse(s, SEMVER_TEXT_MAX - 2, SEMVER_LENIENT, &v, &err),
		0);
	/* A NULL err is allowed. */
	assert_int_equal(parse("1.x", SEMVER_STRICT, &v, NULL), -EINVAL);
}

/* The lenient rules listed in semver.h, and npm equality.js's strict
 * "v"/"=" rows. */
static void lenient_parse_applies_exactly_the_documented_rules(void **state)
{
	(void)state;
	static const char *rows[][2] = {
		{"v4.2", "4.2.0"},
		{"4.2.1.77", "4.2.1+77"},
		{"4.2.1.0077", "4.2.1+0077"},
		{"4", "4.0.0"},
		{"V2", "2.0.0"},
		{"=1.2.3", "1.2.3"},
		{"=v1.2.3", "1.2.3"},
		{"v1.2.3", "1.2.3"},
		{"  v1.2.3+build", "1.2.3+build"},
		{" \t1.2.3\r\n", "1.2.3"},
		{"4.02", "4.2.0"},
		{"007.000.010", "7.0.10"},
		{"4.2-beta", "4.2.0-beta"},
		{"4-rc.1+b", "4.0.0-rc.1+b"},
		{"1.2.3-alpha.1+exp", "1.2.3-alpha.1+exp"},
		{"v1.2.3-0", "1.2.3-0"},
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct semver v, again;
		struct semver_err err;
		char buf[SEMVER_FORMAT_BYTES];
		int n;

		if (parse(rows[i][0], SEMVER_LENIENT, &v, &err) != 0)
			fail_msg("\"%s\": %s", rows[i][0], err.msg);
		n = semver_format(&v, buf, sizeof(buf));
		assert_true(n > 0);
		if (strcmp(buf, rows[i][1]) != 0)
			fail_msg("\"%s\" gave %s", rows[i][0], buf);
		/* The result is a strict version. */
		assert_int_equal(parse(buf, SEMVER_STRICT, &again, NULL), 0);
		assert_int_equal(semver_compare(&v, &again), 0);
	}
}

static void lenient_parse_still_rejects_what_no_rule_allows(void **state)
{
	(void)state;
	static const struct invalid_row rows[] = {
		{"4.2.1.77.5", -EINVAL,
		 "at 8: a fourth version component must end the version, "
		 "got '.'"},
		{"4.2.1.77-beta", -EINVAL, NULL},
		{"4.2.1.x", -EINVAL, NULL},
		{"vv1", -EINVAL, NULL},
		{"v=1", -EINVAL, NULL},
		{"v", -EINVAL, NULL},
		{"", -EINVAL, NULL},
		{"   ", -EINVAL, NULL},
		{"4.", -EINVAL, NULL},
		{"4.2.", -EINVAL, NULL},
		{"1.2.3-01", -EINVAL, NULL},
		{"1 .2.3", -EINVAL, NULL},
		{"1.2.3beta", -EINVAL, NULL},
		{"v 1.2.3", -EINVAL, NULL},
		{"18446744073709551616", -ERANGE, NULL},
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct semver v;
		struct semver_err err;
		int r = parse(rows[i].s, SEMVER_LENIENT, &v, &err);
		if (r != rows[i].code)
			fail_msg("\"%s\": got %d", rows[i].s, r);
		if (rows[i].msg && strcmp(err.msg, rows[i].msg) != 0)
			fail_msg("\"%s\": message \"%s\"", rows[i].s, err.msg);
	}
}

static void format_reports_a_buffer_too_small(void **state)
{
	(void)state;
	struct semver v = strict("10.20.30-rc.1+b");
	char buf[8];
	assert_int_equal(semver_format(&v, buf, sizeof(buf)), -ENOSPC);
	char big[SEMVER_FORMAT_BYTES];
	assert_int_equal(semver_format(&v, big, sizeof(big)), 15);
	assert_string_equal(big, "10.20.30-rc.1+b");
}

struct range_row {
	const char *range, *version;
	bool included;
};

/* npm test/fixtures/range-include.js and range-exclude.js, every row
 * without the loose or includePrerelease option (see the top). */
static const struct range_row npm_rows[] = {
	{"1.0.0 - 2.0.0", "1.2.3", true},
	{"^1.2.3+build", "1.2.3", true},
	{"^1.2.3+build", "1.3.0", true},
	{"1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3", true},
	{"1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3-pre.2", true},
	{"1.2.3-pre+asdf - 2.4.3-pre+asdf", "2.4.3-alpha", true},
	{"1.2.3+asdf - 2.4.3+asdf", "1.2.3", true},
	{"1.0.0", "1.0.0", true},
	{">=*", "0.2.4", true},
	{"", "1.0.0", true},
	{"*", "1.2.3", true},
	{">=1.0.0", "1.0.0", true},
	{">=1.0.0", "1.0.1", true},
	{">=1.0.0", "1.1.0", true},
	{">1.0.0", "1.0.1", true},
	{">1.0.0", "1.1.0", true},
	{"<=2.0.0", "2.0.0", true},
	{"<=2.0.0", "1.9999.9999", true},
	{"<=2.0.0", "0.2.9", true},
	{"<2.0.0", "1.9999.9999", true},
	{"<2.0.0", "0.2.9", true},
	{">= 1.0.0", "1.0.0", true},
	{">=  1.0.0", "1.0.1", true},
	{">=   1.0.0", "1.1.0", true},
	{"> 1.0.0", "1.0.1", true},
	{">  1.0.0", "1.1.0", true},
	{"<=   2.0.0", "2.0.0", true},
	{"<= 2.0.0", "1.9999.9999", true},
	{"<=  2.0.0", "0.2.9", true},
	{"<    2.0.0", "1.9999.9999", true},
	{"<\t2.0.0", "0.2.9", true},
	{">=0.1.97", "0.1.97", true},
	{"0.1.20 || 1.2.4", "1.2.4", true},
	{">=0.2.3 || <0.0.1", "0.0.0", true},
	{">=0.2.3 || <0.0.1", "0.2.3", true},
	{">=0.2.3 || <0.0.1", "0.2.4", true},
	{"||", "1.3.4", true},
	{"2.x.x", "2.1.3", true},
	{"1.2.x", "1.2.3", true},
	{"1.2.x || 2.x", "2.1.3", true},
	{"1.2.x || 2.x", "1.2.3", true},
	{"x", "1.2.3", true},
	{"2.*.*", "2.1.3", true},
	{"1.2.*", "1.2.3", true},
	{"1.2.* || 2.*", "2.1.3", true},
	{"1.2.* || 2.*", "1.2.3", true},
	{"*", "1.2.3", true},
	{"2", "2.1.2", true},
	{"2.3", "2.3.1", true},
	{"~0.0.1", "0.0.1", true},
	{"~0.0.1", "0.0.2", true},
	{"~x", "0.0.9", true},
	{"~2", "2.0.9", true},
	{"~2.4", "2.4.0", true},
	{"~2.4", "2.4.5", true},
	{"~>3.2.1", "3.2.2", true},
	{"~1", "1.2.3", true},
	{"~>1", "1.2.3", true},
	{"~> 1", "1.2.3", true},
	{"~1.0", "1.0.2", true},
	{"~ 1.0", "1.0.2", true},
	{"~ 1.0.3", "1.0.12", true},
	{">=1", "1.0.0", true},
	{">= 1", "1.0.0", true},
	{"<1.2", "1.1.1", true},
	{"< 1.2", "1.1.1", true},
	{"~v0.5.4-pre", "0.5.5", true},
	{"~v0.5.4-pre", "0.5.4", true},
	{"=0.7.x", "0.7.2", true},
	{"<=0.7.x", "0.7.2", true},
	{">=0.7.x", "0.7.2", true},
	{"<=0.7.x", "0.6.2", true},
	{"~1.2.1 >=1.2.3", "1.2.3", true},
	{"~1.2.1 =1.2.3", "1.2.3", true},
	{"~1.2.1 1.2.3", "1.2.3", true},
	{"~1.2.1 >=1.2.3 1.2.3", "1.2.3", true},
	{"~1.2.1 1.2.3 >=1.2.3", "1.2.3", true},
	{"~1.2.1 1.2.3", "1.2.3", true},
	{">=1.2.1 1.2.3", "1.2.3", true},
	{"1.2.3 >=1.2.1", "1.2.3", true},
	{">=1.2.3 >=1.2.1", "1.2.3", true},
	{">=1.2.1 >=1.2.3", "1.2.3", true},
	{">=1.2", "1.2.8", true},
	{"^1.2.3", "1.8.1", true},
	{"^0.1.2", "0.1.2", true},
	{"^0.1", "0.1.2", true},
	{"^0.0.1", "0.0.1", true},
	{"^1.2", "1.4.2", true},
	{"^1.2 ^1", "1.4.2", true},
	{"^1.2.3-alpha", "1.2.3-pre", true},
	{"^1.2.0-alpha", "1.2.0-pre", true},
	{"^0.0.1-alpha", "0.0.1-beta", true},
	{"^0.0.1-alpha", "0.0.1", true},
	{"^0.1.1-alpha", "0.1.1-beta", true},
	{"^x", "1.2.3", true},
	{"x - 1.0.0", "0.9.7", true},
	{"x - 1.x", "0.9.7", true},
	{"1.0.0 - x", "1.9.7", true},
	{"1.x - x", "1.9.7", true},
	{"<=7.x", "7.9.9", true},
	{"1.0.0 - 2.0.0", "2.2.3", false},
	{"1.2.3+asdf - 2.4.3+asdf", "1.2.3-pre.2", false},
	{"1.2.3+asdf - 2.4.3+asdf", "2.4.3-alpha", false},
	{"^1.2.3+build", "2.0.0", false},
	{"^1.2.3+build", "1.2.0", false},
	{"^1.2.3", "1.2.3-pre", false},
	{"^1.2", "1.2.0-pre", false},
	{">1.2", "1.3.0-beta", false},
	{"<=1.2.3", "1.2.3-beta", false},
	{"^1.2.3", "1.2.3-beta", false},
	{"=0.7.x", "0.7.0-asdf", false},
	{">=0.7.x", "0.7.0-asdf", false},
	{"1.0.0", "1.0.1", false},
	{">=1.0.0", "0.0.0", false},
	{">=1.0.0", "0.0.1", false},
	{">=1.0.0", "0.1.0", false},
	{">1.0.0", "0.0.1", false},
	{">1.0.0", "0.1.0", false},
	{"<=2.0.0", "3.0.0", false},
	{"<=2.0.0", "2.9999.9999", false},
	{"<=2.0.0", "2.2.9", false},
	{"<2.0.0", "2.9999.9999", false},
	{"<2.0.0", "2.2.9", false},
	{">=0.1.97", "0.1.93", false},
	{"0.1.20 || 1.2.4", "1.2.3", false},
	{">=0.2.3 || <0.0.1", "0.0.3", false},
	{">=0.2.3 || <0.0.1", "0.2.2", false},
	{"2.x.x", "1.1.3", false},
	{"2.x.x", "3.1.3", false},
	{"1.2.x", "1.3.3", false},
	{"1.2.x || 2.x", "3.1.3", false},
	{"1.2.x || 2.x", "1.1.3", false},
	{"2.*.*", "1.1.3", false},
	{"2.*.*", "3.1.3", false},
	{"1.2.*", "1.3.3", false},
	{"1.2.* || 2.*", "3.1.3", false},
	{"1.2.* || 2.*", "1.1.3", false},
	{"2", "1.1.2", false},
	{"2.3", "2.4.1", false},
	{"~0.0.1", "0.1.0-alpha", false},
	{"~0.0.1", "0.1.0", false},
	{"~2.4", "2.5.0", false},
	{"~2.4", "2.3.9", false},
	{"~>3.2.1", "3.3.2", false},
	{"~>3.2.1", "3.2.0", false},
	{"~1", "0.2.3", false},
	{"~>1", "2.2.3", false},
	{"~1.0", "1.1.0", false},
	{"<1", "1.0.0", false},
	{">=1.2", "1.1.1", false},
	{"~v0.5.4-beta", "0.5.4-alpha", false},
	{"=0.7.x", "0.8.2", false},
	{">=0.7.x", "0.6.2", false},
	{"<0.7.x", "0.7.2", false},
	{"<1.2.3", "1.2.3-beta", false},
	{"=1.2.3", "1.2.3-beta", false},
	{">1.2", "1.2.8", false},
	{"^0.0.1", "0.0.2-alpha", false},
	{"^0.0.1", "0.0.2", false},
	{"^1.2.3", "2.0.0-alpha", false},
	{"^1.2.3", "1.2.2", false},
	{"^1.2", "1.1.9", false},
	{"*", "not a version", false},
	{">=2", "glorp", false},
	{"^1.0.0", "2.0.0-rc1", false},
};

/* Ours, checked against node-semver 7.8 when written. */
static const struct range_row extra_rows[] = {
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "4.9.9", true},
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "5.0.0", false},
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "5.0.1", false},
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "5.1.0", true},
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "5.99.0", true},
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "6.0.0", false},
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "3.9.9", false},
	{">=4.0.0 <5.0.0-0 || ^5.1.0", "5.0.0-rc.1", false},
	{"~1.2.3", "1.2.9", true},
	{"~1.2.3", "1.3.0", false},
	{"~1.2.3", "1.2.2", false},
	{"^0.2.3", "0.2.9", true},
	{"^0.2.3", "0.3.0", false},
	{"^0.0.3", "0.0.3", true},
	{"^0.0.3", "0.0.4", false},
	{"^1.2.x", "1.9.0", true},
	{"^1.2.x", "1.1.9", false},
	{"^1.2.x", "2.0.0", false},
	{"^0.0.x", "0.0.7", true},
	{"^0.0.x", "0.1.0", false},
	{"^0.0", "0.0.7", true},
	{"^0.0", "0.1.0", false},
	{"^0.x", "0.9.0", true},
	{"^0.x", "1.0.0", false},
	{"1.2 - 2.3", "2.3.9", true},
	{"1.2 - 2.3", "2.4.0", false},
	{"1.2 - 2.3", "1.1.9", false},
	{"1.2.3 - 2", "2.9.9", true},
	{"1.2.3 - 2", "3.0.0", false},
	{"1.2.3 - 2.3.4", "2.3.4", true},
	{"1.2.3 - 2.3.4", "2.3.5", false},
	{"1.2.3 - 2.3.4-rc.1", "2.3.4-rc.0", true},
	{"1.2.3 - 2.3.4-rc.1", "2.3.4", false},
	{">1", "2.0.0", true},
	{">1", "1.9.9", false},
	{">1.2", "1.3.0", true},
	{"<=1.2", "1.2.99", true},
	{"<=1.2", "1.3.0", false},
	{"<1", "0.99.99", true},
	{">x", "1.0.0", false},
	{"<x", "0.0.0", false},
	{"* || 1.2.3-beta", "1.2.3-beta", false},
	{"1.2.3-beta || 1.x", "1.2.3-beta", true},
	{">=0.0.0 <=0.0.0-beta", "0.0.0-alpha", true},
	{">=1.2.3-beta <2", "1.2.3-rc.1", true},
	{">=1.2.3-beta <2", "1.5.0-rc.1", false},
	{">=1.2.3-beta.2 <2", "1.2.3-beta.11", true},
	{">=1.2.3-beta.2 <2", "1.2.3-beta.10a", true},
	{"<1.2.3-beta.2", "1.2.3-beta.1", true},
	{"=1.2.3", "1.2.3+build.5", true},
	{"1.2.3+x", "1.2.3+y", true},
	{">= v1.2.3", "1.2.3", true},
	{"^v1.2", "1.9.0", true},
	{"~> 1.2", "1.2.9", true},
	{">=1.0.0\t<2.0.0", "1.5.0", true},
	{"  1.x  ||  2.x  ", "2.5.0", true},
	{"1.x ||", "5.0.0", true},
	{"2.x", "2.0.0-pre.0", false},
	{"<2.0.0-0", "2.0.0-alpha", false},
	{"<2.0.0-alpha", "2.0.0-0", true},
	{"<2.0.0-alpha", "1.9.0-0", false},
	{"1.0.0-alpha.beta", "1.0.0-alpha.beta", true},
	{">1.0.0-alpha.1", "1.0.0-alpha.beta", true},
	{">1.0.0-beta.11", "1.0.0-beta.2", false},
};

/* The u64 edge: bounds past it never wrap (no npm counterpart). */
static const struct range_row edge_rows[] = {
	{"~18446744073709551615", "18446744073709551615.99.0", true},
	{"^18446744073709551615.1.2", "18446744073709551615.9.0", true},
	{"^18446744073709551615.1.2", "18446744073709551615.1.1", false},
	{"~1.18446744073709551615", "1.18446744073709551615.7", true},
	{"~1.18446744073709551615", "2.0.0", false},
	{"^0.0.18446744073709551615", "0.0.18446744073709551615", true},
	{"^0.0.18446744073709551615", "0.1.0", false},
	{">18446744073709551615", "18446744073709551615.5.5", false},
	{">18446744073709551615 || 1.x", "1.5.5", true},
	{">1.18446744073709551615", "2.0.0", true},
	{">1.18446744073709551615", "1.18446744073709551615.9", false},
	{"<=18446744073709551615",
	 "18446744073709551615.18446744073709551615."
	 "18446744073709551615",
	 true},
	{"1.0.0 - 18446744073709551615", "18446744073709551615.1.0", true},
};

static void check_rows(const struct range_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct semver_range r;
		struct semver_err err;
		struct semver v;
		bool got;

		if (semver_range_compile(rows[i].range, strlen(rows[i].range),
					 &r, &err) != 0)
			fail_msg("range \"%s\": %s", rows[i].range, err.msg);
		/* A version that does not parse is never included. */
		got = parse(rows[i].version, SEMVER_STRICT, &v, NULL) == 0 &&
		      semver_range_match(&r, &v);
		if (got != rows[i].included)
			fail_msg("\"%s\" %s \"%s\"", rows[i].range,
				 got ? "includes" : "excludes",
				 rows[i].version);
	}
}

static void range_matches_npm_include_and_exclude_fixtures(void **state)
{
	(void)state;
	check_rows(npm_rows, N(npm_rows));
}

static void range_matches_npm_on_policy_shapes_and_prerelease_rule(void **state)
{
	(void)state;
	check_rows(extra_rows, N(extra_rows));
}

static void range_bounds_past_u64_never_wrap(void **state)
{
	(void)state;
	check_rows(edge_rows, N(edge_rows));
}

static void range_compile_rejects_bad_ranges_naming_the_place(void **state)
{
	(void)state;
	static const struct invalid_row rows[] = {
		{"1.2.x-beta", -EINVAL,
		 "at 5: prerelease needs a full major.minor.patch"},
		{"~", -EINVAL, "at 0: operator without a version"},
		{">= ", -EINVAL, "at 0: operator without a version"},
		{">=<1", -EINVAL, "at 2: expected a number for major, got '<'"},
		{"1 2 - 3", -EINVAL,
		 "at 4: '-' must stand between the two versions of a hyphen "
		 "range"},
		{"1.2.3 -2", -EINVAL, NULL},
		{"- 1.2.3", -EINVAL, NULL},
		{">1.2 - 2", -EINVAL, NULL},
		{"1.2.3 - ", -EINVAL,
		 "at 8: hyphen range without an upper version"},
		{"1.2.3 - 2.3.4 5", -EINVAL,
		 "at 14: a hyphen range must be the whole alternative, got "
		 "'5'"},
		{"1.2.3 - >2", -EINVAL, NULL},
		{"1.2.3 | 2", -EINVAL,
		 "at 6: single '|' (alternatives are separated by \"||\")"},
		{"1.2.3 |", -EINVAL, NULL},
		{"01.2.3", -EINVAL, "at 0: leading zero in major"},
		{"^1.02", -EINVAL, "at 3: leading zero in minor"},
		{"1.x.3", -EINVAL, "at 4: patch after a wildcard, got '3'"},
		{"x.1", -EINVAL, NULL},
		{"V1.2.3", -EINVAL, NULL},
		{">=  v 1.2.3", -EINVAL, NULL},
		{"==1.2.3", -EINVAL, NULL},
		{"1.2.3beta", -EINVAL, "at 5: unexpected 'b' in a version"},
		{"1.2.3-01", -EINVAL, NULL},
		{"1.2.3-a..b", -EINVAL, NULL},
		{"1.2.3+", -EINVAL, NULL},
		{">=1.0.0 <2.0.0 || ~", -EINVAL,
		 "at 18: operator without a version"},
		{"1.2.3 ~ ^", -EINVAL, NULL},
		{"a", -EINVAL, NULL},
		{"1.2.3,2", -EINVAL, NULL},
		{"18446744073709551616", -ERANGE,
		 "at 0: major does not fit in 64 bits"},
		{"^1.2.18446744073709551616", -ERANGE,
		 "at 5: patch does not fit in 64 bits"},
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct semver_range r;
		struct semver_err err;
		int ret = semver_range_compile(rows[i].s, strlen(rows[i].s), &r,
					       &err);
		if (ret != rows[i].code)
			fail_msg("\"%s\": got %d", rows[i].s, ret);
		if (rows[i].msg && strcmp(err.msg, rows[i].msg) != 0)
			fail_msg("\"%s\": message \"%s\"", rows[i].s, err.msg);
	}
}

static int compile_str(const char *s, struct semver_range *r,
		       struct semver_err *err)
{
	return semver_range_compile(s, strlen(s), r, err);
}

static void
range_limits_are_accepted_at_the_limit_and_refused_past_it(void **state)
{
	(void)state;
	struct semver_range r;
	struct semver_err err;
	char s[SEMVER_RANGE_TEXT_MAX + 2];
	struct semver v = strict("7.0.0");

	/* SEMVER_RANGE_SETS_MAX alternatives, then one more. */
	assert_int_equal(compile_str("0||1||2||3||4||5||6||7", &r, &err), 0);
	assert_int_equal(r.nsets, SEMVER_RANGE_SETS_MAX);
	assert_true(semver_range_match(&r, &v));
	assert_int_equal(compile_str("0||1||2||3||4||5||6||7||8", &r, &err),
			 -E2BIG);
	assert_string_equal(err.msg, "at 24: more than 8 \"||\" alternatives");

	/* SEMVER_RANGE_COMPS_MAX comparators (4 carets of 2), then one
	 * more. */
	assert_int_equal(compile_str("^7 ^7 ^7 ^7", &r, &err), 0);
	assert_true(semver_range_match(&r, &v));
	assert_int_equal(compile_str("^7 ^7 ^7 ^7 >1", &r, &err), -E2BIG);
	assert_string_equal(err.msg, "at 12: more than 8 comparators in one "
				     "alternative");

	/* SEMVER_RANGE_TEXT_MAX bytes: spaces around one version. */
	memset(s, ' ', sizeof(s));
	memcpy(s + 100, "7.x", 3);
	assert_int_equal(
		semver_range_compile(s, SEMVER_RANGE_TEXT_MAX, &r, &err), 0);
	assert_true(semver_range_match(&r, &v));
	assert_int_equal(
		semver_range_compile(s, SEMVER_RANGE_TEXT_MAX + 1, &r, &err),
		-E2BIG);
	assert_string_equal(err.msg, "at 256: range longer than 256 bytes");
}

static void compiled_range_owns_its_text_and_copies_by_value(void **state)
{
	(void)state;
	char src[64];
	struct semver_range a, b;
	struct semver v = strict("1.2.3-rc.2");
	struct semver w = strict("1.2.3-rc.0");

	snprintf(src, sizeof(src), "%s", ">=1.2.3-rc.1 <1.3.0");
	assert_int_equal(compile_str(src, &a, NULL), 0);
	memset(src, 'x', sizeof(src)); /* the source is gone */
	memcpy(&b, &a, sizeof(a));
	memset(&a, 0xa5, sizeof(a)); /* and so is the original */
	assert_true(semver_range_match(&b, &v));
	assert_false(semver_range_match(&b, &w));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			precedence_follows_the_spec_chain_of_section_11),
		cmocka_unit_test(precedence_matches_npm_comparisons_fixture),
		cmocka_unit_test(precedence_ignores_build_metadata),
		cmocka_unit_test(
			strict_parse_accepts_valid_versions_with_their_fields),
		cmocka_unit_test(
			strict_parse_rejects_invalid_versions_naming_the_place),
		cmocka_unit_test(parse_refuses_versions_past_the_length_limit),
		cmocka_unit_test(
			lenient_parse_applies_exactly_the_documented_rules),
		cmocka_unit_test(
			lenient_parse_still_rejects_what_no_rule_allows),
		cmocka_unit_test(format_reports_a_buffer_too_small),
		cmocka_unit_test(
			range_matches_npm_include_and_exclude_fixtures),
		cmocka_unit_test(
			range_matches_npm_on_policy_shapes_and_prerelease_rule),
		cmocka_unit_test(range_bounds_past_u64_never_wrap),
		cmocka_unit_test(
			range_compile_rejects_bad_ranges_naming_the_place),
		cmocka_unit_test(
			range_limits_are_accepted_at_the_limit_and_refused_past_it),
		cmocka_unit_test(
			compiled_range_owns_its_text_and_copies_by_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
