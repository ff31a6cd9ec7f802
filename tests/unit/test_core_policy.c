/*
 * test_core_policy.c - the client-version policy (src/core/policy.h):
 * strict parsing with exact error paths, the decision table of issue 3,
 * channel and country precedence, overrides, feature flags and their
 * buckets, canonical rendering and diff.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/policy.h"

#include <jansson.h>
#include "core/rollout.h"

#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* 2027-01-15T00:00:00Z and 2027-03-01T00:00:00Z */
#define JAN_15_2027 1799971200
#define MAR_01_2027 1803859200

/* The interface document of issue 3, as written there. */
static const char issue_doc[] =
	"{\"platforms\": {\"android\": {\"min_supported\": \"4.0.0\", "
	"\"recommended\": \"4.2.0\", \"blocked\": [\"3.x\", \"4.1.3\"], "
	"\"deprecated\": [{\"range\": \"<4.2.0\", \"sunset\": "
	"\"2027-03-01T00:00:00Z\"}], \"upgrade_url\": "
	"\"https://play.google.com/store/apps/details?id=tpwallet\"}}}";

/* Everything the format has. */
static const char full_doc[] =
	"{\n"
	" \"unknown_platform\": \"allow\",\n"
	" \"platforms\": {\n"
	"  \"android\": {\n"
	"   \"min_supported\": \"4.0.0\",\n"
	"   \"recommended\": \"4.2.0\",\n"
	"   \"recommended_rollout\": 50,\n"
	"   \"blocked\": [\"3.x\", \"4.1.3\"],\n"
	"   \"compat\": [\"4.0.x\"],\n"
	"   \"deprecated\": [{\"range\": \"<4.2.0\", \"since\": "
	"\"2026-12-01T00:00:00Z\", \"sunset\": \"2027-03-01T00:00:00Z\"}],\n"
	"   \"upgrade_url\": \"https://play.google.com/store/apps/"
	"details?id=tpwallet\",\n"
	"   \"messages\": {\n"
	"    \"blocked\": {\"default\": \"Please update tpwallet.\", "
	"\"de\": \"Bitte aktualisieren Sie tpwallet.\", \"de-CH\": "
	"\"Bitte tpwallet aktualisieren.\"},\n"
	"    \"deprecated\": {\"default\": \"This version stops working on "
	"1 March.\"}\n"
	"   },\n"
	"   \"release_notes\": {\"default\": \"4.2.0: faster transfers\"},\n"
	"   \"blocked_status\": 426,\n"
	"   \"missing_version\": \"allow\",\n"
	"   \"channels\": {\"beta\": {\"min_supported\": \"4.2.0-beta.1\", "
	"\"recommended\": \"4.3.0-beta.2\", \"blocked\": []}},\n"
	"   \"countries\": {\"DE\": {\"min_supported\": \"4.1.0\", "
	"\"blocked_status\": 403}}\n"
	"  },\n"
	"  \"ios\": {\"min_supported\": \"4.0.0\", \"version_mode\": "
	"\"lenient\", \"missing_version\": \"block\"}\n"
	" },\n"
	" \"notices\": [\n"
	"  {\"id\": \"inc-42\", \"severity\": \"critical\", \"text\": "
	"{\"default\": \"Card payments are delayed.\", \"de\": "
	"\"Kartenzahlungen verzoegern sich.\"}, \"starts_at\": "
	"\"2027-01-14T00:00:00Z\", \"expected_resolution_at\": "
	"\"2027-01-15T06:00:00Z\", \"ends_at\": \"2027-01-16T00:00:00Z\"},\n"
	"  {\"id\": \"ios-only\", \"severity\": \"info\", \"text\": "
	"{\"default\": \"New widgets\"}, \"platforms\": [\"ios\"]}\n"
	" ],\n"
	" \"flags\": {\n"
	"  \"new-checkout\": {\"rollout\": 25},\n"
	"  \"instant-payouts\": {\"rollout\": 100, \"platforms\": "
	"[\"android\"], \"versions\": \">=4.2.0\", \"countries\": [\"DE\", "
	"\"FR\"]},\n"
	"  \"off\": {\"rollout\": 0}\n"
	" }\n"
	"}\n";

static struct policy *parse_ok(const char *doc)
{
	struct policy *p = NULL;
	struct policy_err err;
	int ret = policy_parse(doc, strlen(doc), &p, &err);
	if (ret != 0)
		fail_msg("parse failed (%d): %s", ret, err.msg);
	assert_non_null(p);
	return p;
}

static struct policy_decision decide(const struct policy *p, const char *header,
				     const char *channel, const char *country,
				     int64_t now,
				     const struct policy_override *ov,
				     size_t nov)
{
	struct policy_query q = {0};
	struct policy_decision d;

	if (header)
		policy_query_set_client_version(&q, header, strlen(header));
	q.channel = channel;
	q.country = country;
	q.user = "user-1";
	q.now_s = now;
	assert_int_equal(policy_evaluate(p, &q, ov, nov, &d), 0);
	return d;
}

static void issue_example_document_parses(void **state)
{
	struct policy *p = parse_ok(issue_doc);
	(void)state;
	assert_int_equal(p->nplatforms, 1);
	assert_string_equal(p->platforms[0].name, "android");
	assert_string_equal(p->platforms[0].rules.min_supported_text, "4.0.0");
	assert_int_equal(p->platforms[0].rules.nblocked, 2);
	assert_int_equal(p->platforms[0].rules.ndeprecated, 1);
	assert_true(p->platforms[0].rules.deprecated[0].sunset_s ==
		    MAR_01_2027);
	assert_int_equal(p->platforms[0].rules.blocked_status, 426);
	policy_free(p);
	p = parse_ok(full_doc);
	assert_int_equal(p->nplatforms, 2);
	assert_int_equal(p->nnotices, 2);
	assert_int_equal(p->nflags, 3);
	policy_free(p);
}

/* --- invalid documents
 * -------------------------------------------------------- */

struct bad_row {
	const char *doc;
	int code;
	const char *msg; /* exact "<path>: <reason>" prefix */
};

#define A(x) "{\"platforms\":{\"android\":{" x "}}}"

static const struct bad_row bad_rows[] = {
	{"", -EINVAL, "$: invalid JSON"},
	{"[]", -EINVAL, "$: not an object"},
	{"{}", -EINVAL, "$: no \"platforms\""},
	{"{\"platforms\":{}}", -EINVAL, "platforms: no platform"},
	{"{\"platforms\":{\"android\":{}},\"platforms\":{}}", -EINVAL,
	 "$: invalid JSON"},
	{"{\"platform\":{}}", -EINVAL, "platform: unknown key"},
	{A("\"min_suported\":\"4.0.0\""), -EINVAL,
	 "platforms.android.min_suported: unknown key"},
	{"{\"platforms\":{\"Android\":{}}}", -EINVAL,
	 "platforms.Android: not a platform name"},
	{A("\"min_supported\":\"4.0\""), -EINVAL,
	 "platforms.android.min_supported: not a SemVer 2.0.0 version"},
	{A("\"min_supported\":4"), -EINVAL,
	 "platforms.android.min_supported: not a string"},
	{A("\"min_supported\":\"4.2.0\",\"recommended\":\"4.1.0\""), -EINVAL,
	 "platforms.android.recommended: min_supported 4.2.0 is above "
	 "recommended 4.1.0"},
	{A("\"recommended\":\"4.1.0\",\"channels\":{\"beta\":{"
	   "\"min_supported\":\"5.0.0\"}}"),
	 -EINVAL,
	 "platforms.android.channels.beta.min_supported: min_supported 5.0.0 "
	 "is above recommended 4.1.0 (where both apply)"},
	{A("\"blocked\":[\"3.x\",\">=banana\"]"), -EINVAL,
	 "platforms.android.blocked[1]: not a version range"},
	{A("\"blocked\":\"3.x\""), -EINVAL,
	 "platforms.android.blocked: not an array"},
	{A("\"deprecated\":[{\"range\":\"<4.2.0\",\"sunset\":\"2027-03-01\"}]"),
	 -EINVAL,
	 "platforms.android.deprecated[0].sunset: not an RFC 3339 UTC "
	 "date-time"},
	{A("\"deprecated\":[{\"range\":\"<4.2.0\",\"sunset\":"
	   "\"2027-02-30T00:00:00Z\"}]"),
	 -EINVAL,
	 "platforms.android.deprecated[0].sunset: no such day in that month"},
	{A("\"deprecated\":[{\"range\":\"<4.2.0\",\"sunset\":"
	   "\"2100-02-29T00:00:00Z\"}]"),
	 -EINVAL,
	 "platforms.android.deprecated[0].sunset: no such day in that month"},
	{A("\"deprecated\":[{\"range\":\"<4.2.0\",\"sunset\":"
	   "\"2027-03-01T24:00:00Z\"}]"),
	 -EINVAL,
	 "platforms.android.deprecated[0].sunset: no such time of day"},
	{A("\"deprecated\":[{\"range\":\"<4.2.0\",\"sunset\":"
	   "\"2027-03-01T00:00:00+01:00\"}]"),
	 -EINVAL,
	 "platforms.android.deprecated[0].sunset: not an RFC 3339 UTC "
	 "date-time"},
	{A("\"deprecated\":[{\"sunset\":\"2027-03-01T00:00:00Z\"}]"), -EINVAL,
	 "platforms.android.deprecated[0]: no \"range\""},
	{A("\"deprecated\":[{\"range\":\"<4\",\"since\":"
	   "\"2027-03-02T00:00:00Z\",\"sunset\":\"2027-03-01T00:00:00Z\"}]"),
	 -EINVAL, "platforms.android.deprecated[0].sunset: before \"since\""},
	{A("\"deprecated\":[{\"range\":\"<4\",\"until\":\"x\"}]"), -EINVAL,
	 "platforms.android.deprecated[0].until: unknown key"},
	{A("\"upgrade_url\":\"http://play.google.com/x\""), -EINVAL,
	 "platforms.android.upgrade_url: must be an https:// URL"},
	{A("\"upgrade_url\":\"https://\""), -EINVAL,
	 "platforms.android.upgrade_url: has no host"},
	{A("\"upgrade_url\":\"http://localhost.evil.com/\""), -EINVAL,
	 "platforms.android.upgrade_url: must be an https:// URL"},
	{A("\"blocked_status\":410"), -EINVAL,
	 "platforms.android.blocked_status: must be 426 or 403"},
	{A("\"missing_version\":\"deny\""), -EINVAL,
	 "platforms.android.missing_version: must be \"allow\" or \"block\""},
	{A("\"version_mode\":\"loose\""), -EINVAL,
	 "platforms.android.version_mode: must be \"strict\" or \"lenient\""},
	{A("\"recommended_rollout\":50.0"), -EINVAL,
	 "platforms.android.recommended_rollout: must be an integer from 0 "
	 "to 100"},
	{A("\"messages\":{\"blocked\":{\"de\":\"x\"}}"), -EINVAL,
	 "platforms.android.messages.blocked: no \"default\" text"},
	{A("\"messages\":{\"gone\":{\"default\":\"x\"}}"), -EINVAL,
	 "platforms.android.messages.gone: unknown key"},
	{A("\"messages\":{\"blocked\":{\"default\":\"x\",\"d_e\":\"y\"}}"),
	 -EINVAL,
	 "platforms.android.messages.blocked.d_e: not a BCP 47 language tag"},
	{A("\"messages\":{\"blocked\":{\"default\":\"x\",\"de-ch\":\"y\","
	   "\"de-CH\":\"z\"}}"),
	 -EINVAL,
	 "platforms.android.messages.blocked.de-CH: same language tag as "
	 "de-CH"},
	{A("\"release_notes\":{\"default\":\"\"}"), -EINVAL,
	 "platforms.android.release_notes.default: empty string"},
	{A("\"countries\":{\"de\":{}}"), -EINVAL,
	 "platforms.android.countries.de: not an ISO 3166-1 alpha-2"},
	{A("\"channels\":{\"beta\":{\"channels\":{}}}"), -EINVAL,
	 "platforms.android.channels.beta.channels: levels do not nest"},
	{A("\"channels\":{\"beta\":{\"blocked\":[\"1.0.0 - \"]}}"), -EINVAL,
	 "platforms.android.channels.beta.blocked[0]: not a version range"},
	/* npm reads "" as every version: never what a policy means */
	{A("\"blocked\":[\"\"]"), -EINVAL,
	 "platforms.android.blocked[0]: empty: a range must name versions"},
	{A("\"compat\":[\"  \"]"), -EINVAL,
	 "platforms.android.compat[0]: empty"},
	{A("\"blocked\":[\"3.x ||\"]"), -EINVAL,
	 "platforms.android.blocked[0]: empty"},
	{A("\"blocked\":[\"|| 3.x\"]"), -EINVAL,
	 "platforms.android.blocked[0]: empty"},
	{A("\"blocked\":[\"1.x || || 2.x\"]"), -EINVAL,
	 "platforms.android.blocked[0]: empty"},
	{A("\"deprecated\":[{\"range\":\"\"}]"), -EINVAL,
	 "platforms.android.deprecated[0].range: empty"},
	{"{\"platforms\":{\"a\":{}},\"unknown_platform\":\"deny\"}", -EINVAL,
	 "unknown_platform: must be \"allow\" or \"block\""},
	{"{\"platforms\":{\"a\":{}},\"notices\":[{\"id\":\"x\","
	 "\"severity\":\"fatal\",\"text\":{\"default\":\"t\"}}]}",
	 -EINVAL, "notices[0].severity: must be \"info\", \"warning\" or"},
	{"{\"platforms\":{\"a\":{}},\"notices\":[{\"id\":\"x\","
	 "\"severity\":\"info\",\"text\":{\"default\":\"t\"}},{\"id\":\"x\","
	 "\"severity\":\"info\",\"text\":{\"default\":\"t\"}}]}",
	 -EINVAL, "notices[1].id: same id as notices[0]"},
	{"{\"platforms\":{\"a\":{}},\"notices\":[{\"id\":\"x\","
	 "\"severity\":\"info\",\"text\":{\"default\":\"t\"},\"starts_at\":"
	 "\"2027-01-02T00:00:00Z\",\"ends_at\":\"2027-01-01T00:00:00Z\"}]}",
	 -EINVAL, "notices[0].ends_at: not after starts_at"},
	{"{\"platforms\":{\"a\":{}},\"flags\":{\"x\":{\"rollout\":101}}}",
	 -EINVAL, "flags.x.rollout: must be an integer from 0 to 100"},
	{"{\"platforms\":{\"a\":{}},\"flags\":{\"x\":{}}}", -EINVAL,
	 "flags.x: no \"rollout\""},
	{"{\"platforms\":{\"a\":{}},\"flags\":{\"a.b\":{\"rollout\":1}}}",
	 -EINVAL, "flags.a.b: not a flag name"},
	{"{\"platforms\":{\"a\":{}},\"flags\":{\"x\":{\"rollout\":1,"
	 "\"platforms\":[]}}}",
	 -EINVAL, "flags.x.platforms: empty list"},
	{"{\"platforms\":{\"a\":{}},\"flags\":{\"x\":{\"rollout\":1,"
	 "\"countries\":[\"DE\",\"DE\"]}}}",
	 -EINVAL, "flags.x.countries[1]: listed twice"},
	{"{\"platforms\":{\"a\":{}},\"flags\":{\"x\":{\"rollout\":1,"
	 "\"versions\":\"4.x ||| 5\"}}}",
	 -EINVAL, "flags.x.versions: not a version range"},
	{"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]", -E2BIG,
	 "$: nested deeper than"},
	{"{\"platforms\":{\"a\":{},\"b\":{},\"c\":{},\"d\":{},\"e\":{},"
	 "\"f\":{},\"g\":{},\"h\":{},\"i\":{},\"j\":{},\"k\":{},\"l\":{},"
	 "\"m\":{},\"n\":{},\"o\":{},\"p\":{},\"q\":{}}}",
	 -E2BIG, "platforms: more than 16 entries"},
	{A("\"blocked\":[\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\","
	   "\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\","
	   "\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\","
	   "\"1\",\"1\",\"1\"]"),
	 -E2BIG, "platforms.android.blocked: more than 32 entries"},
};

static void
invalid_documents_are_refused_with_the_path_of_the_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(bad_rows); i++) {
		const struct bad_row *r = &bad_rows[i];
		struct policy *p = (struct policy *)1;
		struct policy_err err;
		int ret = policy_parse(r->doc, strlen(r->doc), &p, &err);
		if (ret != r->code ||
		    strncmp(err.msg, r->msg, strlen(r->msg)) != 0)
			fail_msg("row %zu: %d \"%s\", want %d \"%s...\"", i,
				 ret, err.msg, r->code, r->msg);
		assert_null(p);
	}
}

static void document_longer_than_the_limit_is_refused(void **state)
{
	size_t len = POLICY_DOC_BYTES_MAX + 1;
	char *doc = malloc(len);
	struct policy *p;
	struct policy_err err;
	(void)state;
	assert_non_null(doc);
	memset(doc, ' ', len);
	assert_int_equal(policy_parse(doc, len, &p, &err), -E2BIG);
	assert_string_equal(err.path, "$");
	free(doc);
}

/* --- decisions
 * ---------------------------------------------------------------- */

struct decision_row {
	const char *header; /* X-Client-Version, or NULL */
	int64_t now;
	u8 verdict;
	u8 reason;
	const char *rule;
};

static const struct decision_row decision_rows[] = {
	{"android/3.9.0", JAN_15_2027, POLICY_BLOCKED,
	 POLICY_REASON_BLOCKED_RANGE, "3.x"},
	{"android/4.1.3", JAN_15_2027, POLICY_BLOCKED,
	 POLICY_REASON_BLOCKED_RANGE, "4.1.3"},
	{"android/4.1.0", JAN_15_2027, POLICY_DEPRECATED,
	 POLICY_REASON_DEPRECATED_RANGE, "<4.2.0"},
	{"android/4.2.0", JAN_15_2027, POLICY_SUPPORTED, POLICY_REASON_NO_RULE,
	 NULL},
	{"android/5.0.0", JAN_15_2027, POLICY_SUPPORTED, POLICY_REASON_NO_RULE,
	 NULL},
	{"android/2.0.0", JAN_15_2027, POLICY_BLOCKED,
	 POLICY_REASON_BELOW_MIN_SUPPORTED, "4.0.0"},
	{"android/4.0.0-rc.1", JAN_15_2027, POLICY_BLOCKED,
	 POLICY_REASON_BELOW_MIN_SUPPORTED, "4.0.0"},
	{"android/4.1.0", MAR_01_2027 - 1, POLICY_DEPRECATED,
	 POLICY_REASON_DEPRECATED_RANGE, "<4.2.0"},
	{"android/4.1.0", MAR_01_2027, POLICY_BLOCKED,
	 POLICY_REASON_PAST_SUNSET, "<4.2.0"},
	{"android/4.2", JAN_15_2027, POLICY_SUPPORTED,
	 POLICY_REASON_MISSING_VERSION_ALLOWED, NULL},
	{"android/", JAN_15_2027, POLICY_SUPPORTED,
	 POLICY_REASON_MISSING_VERSION_ALLOWED, NULL},
	{NULL, JAN_15_2027, POLICY_SUPPORTED,
	 POLICY_REASON_UNKNOWN_PLATFORM_ALLOWED, NULL},
	{"windows-phone/1.0.0", JAN_15_2027, POLICY_SUPPORTED,
	 POLICY_REASON_UNKNOWN_PLATFORM_ALLOWED, NULL},
	{"androidx/4.2.0", JAN_15_2027, POLICY_SUPPORTED,
	 POLICY_REASON_UNKNOWN_PLATFORM_ALLOWED, NULL},
};

static void decisions_of_the_issue_example(void **state)
{
	struct policy *p = parse_ok(issue_doc);
	(void)state;
	for (size_t i = 0; i < N(decision_rows); i++) {
		const struct decision_row *r = &decision_rows[i];
		struct policy_decision d =
			decide(p, r->header, NULL, NULL, r->now, NULL, 0);
		if (d.verdict != r->verdict || d.reason != r->reason ||
		    (r->rule == NULL) != (d.rule == NULL) ||
		    (r->rule && strcmp(r->rule, d.rule) != 0))
			fail_msg("row %zu (%s): %s/%s/%s, want %s/%s/%s", i,
				 r->header ? r->header : "none",
				 policy_verdict_name(d.verdict),
				 policy_reason_name(d.reason),
				 d.rule ? d.rule : "-",
				 policy_verdict_name(r->verdict),
				 policy_reason_name(r->reason),
				 r->rule ? r->rule : "-");
		assert_int_equal(d.status,
				 d.verdict == POLICY_BLOCKED ? 426 : 0);
	}
	policy_free(p);
}

static void deprecated_decision_carries_sunset_and_upgrade_url(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_decision d;
	(void)state;
	d = decide(p, "android/4.1.0", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_DEPRECATED);
	assert_true(d.sunset_s == MAR_01_2027);
	assert_true(d.deprecated_since_s == MAR_01_2027 - 90 * 86400);
	assert_string_equal(d.upgrade_url, "https://play.google.com/store/apps/"
					   "details?id=tpwallet");
	assert_string_equal(d.message,
			    "This version stops working on 1 March.");
	assert_string_equal(d.min_supported, "4.0.0");
	assert_string_equal(d.release_notes, "4.2.0: faster transfers");
	d = decide(p, "android/4.2.0", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	assert_true(d.sunset_s == POLICY_TIME_NONE);
	assert_null(d.message);
	policy_free(p);
}

static void
compat_range_is_served_in_compat_mode_after_blocked_and_min(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_decision d;
	(void)state;
	d = decide(p, "android/4.0.5", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_COMPAT);
	assert_int_equal(d.reason, POLICY_REASON_COMPAT_RANGE);
	assert_string_equal(d.rule, "4.0.x");
	/* compat after deprecated? no: compat is tried first. */
	d = decide(p, "android/4.1.0", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_DEPRECATED);
	policy_free(p);
}

static void missing_version_follows_the_platform_setting(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_decision d;
	(void)state;
	d = decide(p, "android", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_non_null(d.platform);
	assert_int_equal(d.reason, POLICY_REASON_MISSING_VERSION_ALLOWED);
	d = decide(p, "android/garbage", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	assert_int_equal(d.reason, POLICY_REASON_MISSING_VERSION_ALLOWED);
	assert_false(d.version_valid);
	d = decide(p, "ios/", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	assert_int_equal(d.reason, POLICY_REASON_MISSING_VERSION_BLOCKED);
	assert_int_equal(d.status, 426);
	d = decide(p, "ios/not-a-version", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	policy_free(p);
}

static void lenient_platform_accepts_app_store_versions(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_decision d;
	(void)state;
	d = decide(p, "ios/v4.2", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	assert_true(d.version_valid);
	assert_true(d.version.major == 4 && d.version.minor == 2);
	d = decide(p, "ios/3.9.1.77", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	assert_int_equal(d.reason, POLICY_REASON_BELOW_MIN_SUPPORTED);
	/* android is strict: v4.2 is no version there. */
	d = decide(p, "android/v4.2", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.reason, POLICY_REASON_MISSING_VERSION_ALLOWED);
	policy_free(p);
}

static void unknown_platform_can_be_blocked_with_403(void **state)
{
	static const char doc[] = "{\"unknown_platform\":\"block\","
				  "\"platforms\":{\"web\":{}}}";
	struct policy *p = parse_ok(doc);
	struct policy_decision d;
	(void)state;
	d = decide(p, "tv/1.0.0", NULL, NULL, 0, NULL, 0);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	assert_int_equal(d.reason, POLICY_REASON_UNKNOWN_PLATFORM_BLOCKED);
	assert_int_equal(d.status, 403);
	d = decide(p, "web/0.0.1", NULL, NULL, 0, NULL, 0);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	policy_free(p);
}

static void country_level_beats_channel_level_beats_platform(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_decision d;
	(void)state;
	/* beta: min 4.2.0-beta.1, empty block list replaces the platform's */
	d = decide(p, "android/4.1.3", "beta", NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.reason, POLICY_REASON_BELOW_MIN_SUPPORTED);
	assert_string_equal(d.rule, "4.2.0-beta.1");
	assert_string_equal(d.channel_applied, "beta");
	d = decide(p, "android/4.2.0-beta.3", "beta", NULL, JAN_15_2027, NULL,
		   0);
	/* npm's rule: "<4.2.0" holds no prerelease of 4.2.0 */
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	d = decide(p, "android/3.9.0", "beta", NULL, JAN_15_2027, NULL, 0);
	assert_int_equal(d.reason, POLICY_REASON_BELOW_MIN_SUPPORTED);
	/* DE: min 4.1.0 (over the channel's), status 403; blocked list
	 * comes from the channel (the country does not set it). */
	d = decide(p, "android/4.1.3", "beta", "de", JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_DEPRECATED);
	assert_string_equal(d.country_applied, "DE");
	d = decide(p, "android/4.1.3", NULL, "DE", JAN_15_2027, NULL, 0);
	assert_int_equal(d.reason, POLICY_REASON_BLOCKED_RANGE);
	d = decide(p, "android/4.0.9", "beta", "DE", JAN_15_2027, NULL, 0);
	assert_int_equal(d.reason, POLICY_REASON_BELOW_MIN_SUPPORTED);
	assert_string_equal(d.rule, "4.1.0");
	assert_int_equal(d.status, 403);
	/* unknown channel and country: the platform's rules */
	d = decide(p, "android/4.0.9", "nightly", "FR", JAN_15_2027, NULL, 0);
	assert_int_equal(d.verdict, POLICY_COMPAT);
	assert_null(d.channel_applied);
	assert_null(d.country_applied);
	policy_free(p);
}

static void blocked_message_uses_the_best_matching_locale(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_query q = {0};
	struct policy_decision d;
	static const struct {
		const char *langs;
		const char *want;
	} rows[] = {
		{NULL, "Please update tpwallet."},
		{"de", "Bitte aktualisieren Sie tpwallet."},
		{"de-CH", "Bitte tpwallet aktualisieren."},
		{"DE-ch", "Bitte tpwallet aktualisieren."},
		{"de-AT", "Bitte aktualisieren Sie tpwallet."},
		{"fr-CH, de;q=0.8", "Bitte aktualisieren Sie tpwallet."},
		{"fr, de;q=0", "Please update tpwallet."},
		{"*", "Please update tpwallet."},
		{"de-CH-x-phonebk", "Bitte tpwallet aktualisieren."},
		{"", "Please update tpwallet."},
		{" , ;q=1,", "Please update tpwallet."},
	};
	(void)state;
	policy_query_set_client_version(&q, "android/3.9.0", 13);
	for (size_t i = 0; i < N(rows); i++) {
		q.languages = rows[i].langs;
		assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
		if (strcmp(d.message, rows[i].want) != 0)
			fail_msg("row %zu: \"%s\"", i, d.message);
	}
	policy_free(p);
}

/* --- overrides
 * ----------------------------------------------------------------- */

static struct policy_override make_override(const char *range, const char *mode,
					    int64_t now, int64_t duration)
{
	struct policy_override o;
	struct policy_err err;
	if (policy_override_init(&o, "android", range, mode, duration,
				 "INC-42 bank app crash", now, &err) != 0)
		fail_msg("override: %s", err.msg);
	return o;
}

/* The JSON the evaluate route and the manifest carry. */
static void decision_json_carries_the_decision(void **state)
{
	struct policy *p = parse_ok(issue_doc);
	struct policy_override o =
		make_override("3.x", "allow", JAN_15_2027, 1800);
	struct policy_decision d;
	(void)state;
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027 - 1, &o, 1);
	json_t *j = policy_decision_json(p, &d);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "decision")),
			    "blocked");
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
			    "blocked_range");
	assert_int_equal(json_integer_value(json_object_get(j, "status")),
			 d.status);
	assert_null(json_object_get(j, "override"));
	assert_true(json_is_object(json_object_get(j, "flags")));
	json_decref(j);
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027, &o, 1);
	j = policy_decision_json(p, &d);
	assert_string_equal(json_string_value(json_object_get(j, "decision")),
			    "supported");
	assert_null(json_object_get(j, "status"));
	json_t *ov = json_object_get(j, "override");
	assert_non_null(ov);
	assert_string_equal(json_string_value(json_object_get(ov, "mode")),
			    "allow");
	assert_string_equal(json_string_value(json_object_get(ov, "range")),
			    "3.x");
	assert_string_equal(json_string_value(json_object_get(
				    j, "decision_without_override")),
			    "blocked");
	json_decref(j);
	policy_free(p);
}

static void override_applies_only_while_active(void **state)
{
	struct policy *p = parse_ok(issue_doc);
	struct policy_override o =
		make_override("3.x", "allow", JAN_15_2027, 1800);
	struct policy_decision d;
	(void)state;
	/* not yet active */
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027 - 1, &o, 1);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	assert_null(d.override);
	/* active */
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027, &o, 1);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	assert_int_equal(d.verdict_without_override, POLICY_BLOCKED);
	assert_int_equal(d.reason, POLICY_REASON_BLOCKED_RANGE);
	assert_ptr_equal(d.override, &o);
	assert_int_equal(d.status, 0);
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027 + 1799, &o, 1);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	/* expired: ignored, nothing to do */
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027 + 1800, &o, 1);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	assert_null(d.override);
	/* outside its range, or another platform */
	d = decide(p, "android/4.1.3", NULL, NULL, JAN_15_2027, &o, 1);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	memcpy(o.platform, "ios", 4);
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027, &o, 1);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	policy_free(p);
}

static void compat_override_serves_blocked_versions_in_compat_mode(void **state)
{
	struct policy *p = parse_ok(issue_doc);
	struct policy_override o[3];
	struct policy_decision d;
	(void)state;
	o[0] = make_override("<4.2.0", "compat", JAN_15_2027, 3600);
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027, o, 1);
	assert_int_equal(d.verdict, POLICY_COMPAT);
	assert_ptr_equal(d.override, &o[0]);
	/* past sunset is relaxed too */
	o[0] = make_override("<4.2.0", "compat", MAR_01_2027, 3600);
	d = decide(p, "android/4.1.0", NULL, NULL, MAR_01_2027, o, 1);
	assert_int_equal(d.verdict, POLICY_COMPAT);
	assert_int_equal(d.reason, POLICY_REASON_PAST_SUNSET);
	/* only blocked verdicts change: deprecated stays deprecated */
	d = decide(p, "android/4.1.0", NULL, NULL, MAR_01_2027 - 10, o, 1);
	assert_int_equal(d.verdict, POLICY_DEPRECATED);
	assert_null(d.override);
	/* allow wins over compat whatever the order */
	o[0] = make_override("3.x", "compat", JAN_15_2027, 3600);
	o[1] = make_override("3.9.x", "allow", JAN_15_2027, 3600);
	o[2] = make_override("*", "compat", JAN_15_2027, 3600);
	d = decide(p, "android/3.9.0", NULL, NULL, JAN_15_2027, o, 3);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	assert_ptr_equal(d.override, &o[1]);
	/* overrides never apply to a missing version */
	d = decide(p, "android/", NULL, NULL, JAN_15_2027, o, 3);
	assert_null(d.override);
	policy_free(p);
}

static void override_requests_are_validated(void **state)
{
	struct policy_override o;
	struct policy_err err;
	static const struct {
		const char *json;
		int code;
		const char *msg;
	} rows[] = {
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"compat\",\"duration_s\":1800,\"reason\":\"INC-42\"}",
		 0, ""},
		{"{\"platform\":\"android\",\"range\":\"\",\"mode\":"
		 "\"allow\",\"duration_s\":600,\"reason\":\"INC-42\"}",
		 -EINVAL, "range: empty"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"compat\",\"duration_s\":59,\"reason\":\"INC-42\"}",
		 -EINVAL, "duration_s: must be from 60 to 604800 seconds"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"compat\",\"duration_s\":604801,\"reason\":\"INC-42\"}",
		 -EINVAL, "duration_s: must be from 60 to 604800 seconds"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"compat\",\"duration_s\":600,\"reason\":\"\"}",
		 -EINVAL, "reason: required"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"lower\",\"duration_s\":600,\"reason\":\"x\"}",
		 -EINVAL, "mode: must be \"compat\" or \"allow\""},
		{"{\"platform\":\"android\",\"range\":\"3.x.y\",\"mode\":"
		 "\"allow\",\"duration_s\":600,\"reason\":\"x\"}",
		 -EINVAL, "range: not a version range"},
		{"{\"platform\":\"Android\",\"range\":\"3.x\",\"mode\":"
		 "\"allow\",\"duration_s\":600,\"reason\":\"x\"}",
		 -EINVAL, "platform: not a platform name"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"allow\",\"duration_s\":\"600\",\"reason\":\"x\"}",
		 -EINVAL, "duration_s: not an integer"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"allow\",\"duration_s\":600}",
		 -EINVAL, "reason: missing"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"allow\",\"duration_s\":600,\"reason\":\"x\",\"by\":\"me\"}",
		 -EINVAL, "by: unknown key"},
		{"{\"platform\":\"android\",\"range\":\"3.x\",\"mode\":"
		 "\"allow\",\"duration_s\":600,\"reason\":\"a\\nb\"}",
		 -EINVAL, "reason: contains a control character"},
	};
	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		int ret = policy_override_parse(
			rows[i].json, strlen(rows[i].json), 1000, &o, &err);
		if (ret != rows[i].code ||
		    strncmp(err.msg, rows[i].msg, strlen(rows[i].msg)) != 0)
			fail_msg("row %zu: %d \"%s\"", i, ret, err.msg);
	}
	assert_int_equal(policy_override_parse(rows[0].json,
					       strlen(rows[0].json), 1000, &o,
					       &err),
			 0);
	assert_true(o.not_before_s == 1000 && o.expires_at_s == 2800);
	assert_int_equal(o.mode, POLICY_OVERRIDE_COMPAT);
	assert_string_equal(o.reason, "INC-42");
	assert_true(policy_override_active(&o, 1000));
	assert_false(policy_override_active(&o, 2800));
}

static enum policy_override_fit fit(const struct policy *p,
				    const char *platform, const char *range)
{
	struct policy_override o;
	struct policy_err err;
	if (policy_override_init(&o, platform, range, "allow", 600, "x", 1000,
				 &err) != 0)
		fail_msg("override %s %s: %s", platform, range, err.msg);
	return policy_override_fit(p, &o);
}

/* The guard rail: an override must name a platform of the policy and
 * meet one of its blocked ranges, minimums or sunset deprecations. */
static void override_that_relaxes_nothing_is_told_apart(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy *web = parse_ok("{\"platforms\":{\"web\":{}}}");
	(void)state;
	assert_int_equal(fit(NULL, "android", "3.x"),
			 POLICY_OVERRIDE_NO_POLICY);
	assert_int_equal(fit(p, "andriod", "3.x"), POLICY_OVERRIDE_NO_PLATFORM);
	assert_int_equal(fit(web, "web", "1.x"),
			 POLICY_OVERRIDE_NOTHING_BLOCKED);
	assert_int_equal(fit(p, "android", "3.9.x"), POLICY_OVERRIDE_FITS);
	assert_int_equal(fit(p, "android", "4.1.3"), POLICY_OVERRIDE_FITS);
	/* DE's minimum 4.1.0 and the deprecation's sunset block 4.0.x. */
	assert_int_equal(fit(p, "android", "4.0.x"), POLICY_OVERRIDE_FITS);
	/* The beta channel's minimum 4.2.0-beta.1 blocks 4.2.0-beta.0. */
	assert_int_equal(fit(p, "android", "4.2.0-beta.0"),
			 POLICY_OVERRIDE_FITS);
	assert_int_equal(fit(p, "android", "5.0.0 || 3.9.9"),
			 POLICY_OVERRIDE_FITS);
	assert_int_equal(fit(p, "android", "*"), POLICY_OVERRIDE_FITS);
	/* Just above every restriction: <4.2.0 and <4.2.0-beta.1. */
	assert_int_equal(fit(p, "android", "4.2.x"),
			 POLICY_OVERRIDE_NO_OVERLAP);
	assert_int_equal(fit(p, "android", ">=5.0.0"),
			 POLICY_OVERRIDE_NO_OVERLAP);
	/* ios: only min_supported 4.0.0, exclusive. */
	assert_int_equal(fit(p, "ios", "4.x"), POLICY_OVERRIDE_NO_OVERLAP);
	assert_int_equal(fit(p, "ios", "<=4.0.0"), POLICY_OVERRIDE_FITS);
	assert_int_equal(fit(p, "ios", ">x"), POLICY_OVERRIDE_NO_OVERLAP);
	policy_free(web);
	policy_free(p);
}

/* --- flags and rollout -------------------------------------------------------
 */

static bool flag_on(const struct policy *p, const struct policy_decision *d,
		    const char *name)
{
	int i = policy_flag_index(p, name);
	assert_true(i >= 0);
	return (d->flags >> i) & 1;
}

static void flags_follow_targeting_by_platform_version_and_country(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_decision d;
	(void)state;
	d = decide(p, "android/4.2.0", NULL, "DE", JAN_15_2027, NULL, 0);
	assert_true(flag_on(p, &d, "instant-payouts"));
	assert_false(flag_on(p, &d, "off"));
	d = decide(p, "android/4.1.0", NULL, "DE", JAN_15_2027, NULL, 0);
	assert_false(flag_on(p, &d, "instant-payouts")); /* version */
	d = decide(p, "android/4.2.0", NULL, "US", JAN_15_2027, NULL, 0);
	assert_false(flag_on(p, &d, "instant-payouts")); /* country */
	d = decide(p, "android/4.2.0", NULL, NULL, JAN_15_2027, NULL, 0);
	assert_false(flag_on(p, &d, "instant-payouts")); /* no country */
	d = decide(p, "ios/4.2.0", NULL, "fr", JAN_15_2027, NULL, 0);
	assert_false(flag_on(p, &d, "instant-payouts")); /* platform */
	assert_int_equal(policy_flag_index(p, "nope"), -1);
	policy_free(p);
}

static void flag_bucket_is_stable_and_matches_unleash(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_query q = {0};
	struct policy_decision d;
	char user[32];
	unsigned in = 0;
	(void)state;
	policy_query_set_client_version(&q, "android/4.2.0", 13);
	q.now_s = JAN_15_2027;
	for (unsigned i = 0; i < 10000; i++) {
		bool on, again;
		snprintf(user, sizeof(user), "user-%u", i);
		q.user = user;
		assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
		on = flag_on(p, &d, "new-checkout");
		assert_int_equal(on, rollout_bucket("new-checkout", 12, user,
						    strlen(user)) <= 25);
		assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
		again = flag_on(p, &d, "new-checkout");
		assert_int_equal(on, again);
		in += on;
	}
	/* 25% of 10,000: binomial sd ~43, so +-4 sd */
	if (in < 2330 || in > 2670)
		fail_msg("%u of 10000 users in a 25%% rollout", in);
	/* no user: never in a rollout below 100% */
	q.user = NULL;
	assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
	assert_false(flag_on(p, &d, "new-checkout"));
	policy_free(p);
}

static void recommended_version_rolls_out_by_percentage(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_query q = {0};
	struct policy_decision d;
	char user[32];
	unsigned shown = 0;
	(void)state;
	policy_query_set_client_version(&q, "android/4.1.0", 13);
	q.now_s = JAN_15_2027;
	for (unsigned i = 0; i < 10000; i++) {
		snprintf(user, sizeof(user), "u%u", i);
		q.user = user;
		assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
		assert_int_equal(d.recommended != NULL,
				 rollout_bucket("recommended.android", 19, user,
						strlen(user)) <= 50);
		assert_int_equal(d.update_available, d.recommended != NULL);
		shown += d.recommended != NULL;
	}
	if (shown < 4800 || shown > 5200)
		fail_msg("%u of 10000 shown a 50%% recommended", shown);
	policy_free(p);
}

static void notices_show_in_their_window_and_on_their_platforms(void **state)
{
	struct policy *p = parse_ok(full_doc);
	struct policy_query q = {0};
	struct policy_decision d;
	(void)state;
	policy_query_set_client_version(&q, "android/4.2.0", 13);
	q.languages = "de";
	q.now_s = JAN_15_2027;
	assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
	assert_int_equal(d.nnotices, 1);
	assert_string_equal(d.notice[0]->id, "inc-42");
	assert_int_equal(d.notice[0]->severity, POLICY_SEVERITY_CRITICAL);
	assert_string_equal(d.notice_text[0],
			    "Kartenzahlungen verzoegern sich.");
	assert_true(d.notice[0]->expected_resolution_at_s ==
		    JAN_15_2027 + 6 * 3600);
	q.now_s = JAN_15_2027 + 86400; /* ends_at: gone */
	assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
	assert_int_equal(d.nnotices, 0);
	policy_query_set_client_version(&q, "ios/4.2.0", 9);
	assert_int_equal(policy_evaluate(p, &q, NULL, 0, &d), 0);
	assert_int_equal(d.nnotices, 1);
	assert_string_equal(d.notice[0]->id, "ios-only");
	policy_free(p);
}

static void client_version_header_splits_at_the_first_slash(void **state)
{
	struct policy_query q;
	(void)state;
	policy_query_set_client_version(&q, "android/4.2.0/x", 15);
	assert_int_equal(q.platform_len, 7);
	assert_int_equal(q.version_len, 7);
	assert_memory_equal(q.version, "4.2.0/x", 7);
	policy_query_set_client_version(&q, "android", 7);
	assert_int_equal(q.platform_len, 7);
	assert_null(q.version);
	policy_query_set_client_version(&q, "android/", 8);
	assert_int_equal(q.platform_len, 7);
	assert_null(q.version);
	policy_query_set_client_version(&q, "/4.2.0", 6);
	assert_null(q.platform);
	assert_null(q.version);
}

/* --- rendering and diff ------------------------------------------------------
 */

static char *render(const struct policy *p)
{
	char *s;
	size_t len;
	assert_int_equal(policy_render(p, &s, &len), 0);
	assert_int_equal(strlen(s), len);
	return s;
}

static void canonical_rendering_is_a_fixed_point(void **state)
{
	const char *docs[] = {issue_doc, full_doc};
	(void)state;
	for (size_t i = 0; i < N(docs); i++) {
		struct policy *p = parse_ok(docs[i]), *p2;
		char *a = render(p), *b;
		p2 = parse_ok(a);
		b = render(p2);
		assert_string_equal(a, b);
		assert_null(strstr(a, "\": "));
		free(a);
		free(b);
		policy_free(p);
		policy_free(p2);
	}
}

static void documents_that_mean_the_same_render_identically(void **state)
{
	static const char a[] =
		"{\"platforms\":{\"web\":{\"blocked_status\":426,"
		"\"missing_version\":\"allow\",\"version_mode\":\"strict\","
		"\"recommended_rollout\":100,\"blocked\":[],\"compat\":[],"
		"\"messages\":{\"blocked\":{\"DE-at\":\"a\",\"default\":\"b\"}}"
		","
		"\"deprecated\":[{\"sunset\":\"2027-03-01T00:00:00Z\","
		"\"range\":\"<2\"}]},\"android\":{}},\"notices\":[],"
		"\"flags\":{\"f\":{\"rollout\":5,\"countries\":[\"FR\",\"DE\"]}"
		"},"
		"\"unknown_platform\":\"allow\"}";
	static const char b[] =
		"{ \"flags\": { \"f\": { \"countries\": [\"DE\", \"FR\"], "
		"\"rollout\": 5 } },\n \"platforms\": { \"android\": { },\n"
		"  \"web\": { \"deprecated\": [ { \"range\": \"<2\", "
		"\"sunset\": "
		"\"2027-03-01T00:00:00Z\" } ], \"messages\": { \"blocked\": "
		"{ \"default\": \"b\", \"de-AT\": \"a\" } } } } }";
	struct policy *pa = parse_ok(a), *pb = parse_ok(b);
	char *ra = render(pa), *rb = render(pb);
	(void)state;
	assert_string_equal(ra, rb);
	assert_string_equal(
		ra, "{\"flags\":{\"f\":{\"countries\":[\"DE\",\"FR\"],"
		    "\"rollout\":5}},\"platforms\":{\"android\":{},\"web\":{"
		    "\"deprecated\":[{\"range\":\"<2\",\"sunset\":"
		    "\"2027-03-01T00:00:00Z\"}],\"messages\":{\"blocked\":{"
		    "\"de-AT\":\"a\",\"default\":\"b\"}}}}}");
	free(ra);
	free(rb);
	policy_free(pa);
	policy_free(pb);
}

static void diff_lists_each_change_with_its_path(void **state)
{
	static const char b_doc[] =
		"{\"platforms\": {\"android\": {\"min_supported\": \"4.1.0\", "
		"\"recommended\": \"4.2.0\", \"blocked\": [\"3.x\"], "
		"\"deprecated\": [{\"range\": \"<4.2.0\", \"sunset\": "
		"\"2027-04-01T00:00:00Z\"}], \"upgrade_url\": "
		"\"https://play.google.com/store/apps/details?id=tpwallet\"}, "
		"\"ios\": {}}}";
	struct policy *a = parse_ok(issue_doc), *b = parse_ok(b_doc);
	char *out;
	size_t n;
	(void)state;
	assert_int_equal(policy_diff(a, b, &out, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(
		out, "[{\"new\":null,\"old\":\"4.1.3\",\"path\":"
		     "\"platforms.android.blocked[1]\"},"
		     "{\"new\":\"2027-04-01T00:00:00Z\",\"old\":"
		     "\"2027-03-01T00:00:00Z\",\"path\":"
		     "\"platforms.android.deprecated[0].sunset\"},"
		     "{\"new\":\"4.1.0\",\"old\":\"4.0.0\",\"path\":"
		     "\"platforms.android.min_supported\"},"
		     "{\"new\":{},\"old\":null,\"path\":\"platforms.ios\"}]");
	free(out);
	assert_int_equal(policy_diff(a, a, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(out, "[]");
	free(out);
	policy_free(a);
	policy_free(b);
}

static void dates_render_back_exactly(void **state)
{
	static const char *const dates[] = {
		"1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z",
		"2027-03-01T00:00:00Z", "2100-12-31T12:34:56Z",
		"9999-12-31T23:59:59Z",
	};
	(void)state;
	for (size_t i = 0; i < N(dates); i++) {
		char doc[256], *out;
		struct policy *p;
		snprintf(doc, sizeof(doc),
			 A("\"deprecated\":[{\"range\":\"1\",\"sunset\":\"%s\"}"
			   "]"),
			 dates[i]);
		p = parse_ok(doc);
		out = render(p);
		assert_non_null(strstr(out, dates[i]));
		free(out);
		policy_free(p);
	}
}

/* The earliest scheduled change after now for a platform: sunsets on
 * every level, notices' starts and ends, overrides' ends; past ones and
 * other platforms' left out. */
static void next_change_is_the_earliest_scheduled_for_the_platform(void **state)
{
	(void)state;
	struct policy *p = parse_ok(
		"{\"platforms\":{"
		"\"android\":{\"deprecated\":[{\"range\":\"<4.0.0\","
		"\"sunset\":\"2027-03-01T00:00:00Z\"}],"
		"\"countries\":{\"DE\":{\"deprecated\":[{\"range\":\"<4.1.0\","
		"\"sunset\":\"2027-02-01T00:00:00Z\"}]}}},"
		"\"ios\":{\"deprecated\":[{\"range\":\"<2.0.0\","
		"\"sunset\":\"2027-01-20T00:00:00Z\"}]}},"
		"\"notices\":[{\"id\":\"n1\",\"severity\":\"info\","
		"\"text\":{\"default\":\"x\"},"
		"\"starts_at\":\"2027-01-10T00:00:00Z\","
		"\"ends_at\":\"2027-01-25T00:00:00Z\",\"platforms\":[\"web\"]},"
		"{\"id\":\"n2\",\"severity\":\"info\","
		"\"text\":{\"default\":\"y\"},"
		"\"ends_at\":\"2027-02-15T00:00:00Z\"}]}");
	const int64_t jan15 = 1799971200; /* 2027-01-15T00:00:00Z */
	const int64_t jan20 = jan15 + 5 * 86400, jan25 = jan15 + 10 * 86400;
	const int64_t feb1 = 1801440000, feb15 = feb1 + 14 * 86400;
	assert_true(policy_next_change(p, "android", NULL, 0, jan15) == feb1);
	assert_true(policy_next_change(p, "android", NULL, 0, feb1) == feb15);
	assert_true(policy_next_change(p, "ios", NULL, 0, jan15) == jan20);
	assert_true(policy_next_change(p, "web", NULL, 0, jan15) == jan25);
	assert_true(policy_next_change(p, NULL, NULL, 0, jan15) == jan20);
	assert_true(policy_next_change(p, "web", NULL, 0, jan15 - 6 * 86400) ==
		    jan15 - 5 * 86400);
	assert_true(policy_next_change(p, "android", NULL, 0, 1806000000) ==
		    POLICY_TIME_NONE);
	/* An override's end, 120 s away, comes first for its platform
	 * only; one already ended counts no more. */
	struct policy_override ov[2];
	assert_int_equal(policy_override_init(&ov[0], "android", "3.x", "allow",
					      120, "r", jan15, NULL),
			 0);
	assert_int_equal(policy_override_init(&ov[1], "ios", "1.x", "compat",
					      60, "r", jan15 - 600, NULL),
			 0);
	assert_true(policy_next_change(p, "android", ov, 2, jan15) ==
		    jan15 + 120);
	assert_true(policy_next_change(p, "ios", ov, 2, jan15) == jan20);
	assert_true(policy_next_change(NULL, "android", ov, 2, jan15 + 60) ==
		    jan15 + 120);
	assert_true(policy_next_change(NULL, "android", ov, 2, jan15 + 120) ==
		    POLICY_TIME_NONE);
	policy_free(p);
}

/* An override's message: the document's rules for a localised text,
 * rendered canonically. */
static void override_message_parses_like_document_messages(void **state)
{
	(void)state;
	struct policy_message *m = NULL;
	struct policy_err err;
	static const char in[] =
		"{ \"DE-ch\": \"Gruezi\", \"default\": \"Hi\" }";
	assert_int_equal(policy_message_parse(in, strlen(in), &m, &err), 0);
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(policy_message_render(m, &out, &len), 0);
	assert_string_equal(out, "{\"de-CH\":\"Gruezi\",\"default\":\"Hi\"}");
	assert_int_equal(policy_message_text(m)->n, 1);
	free(out);
	policy_message_free(m);
	const struct {
		const char *json, *msg;
	} bad[] = {
		{"{\"de\":\"x\"}", "message: no \"default\" text"},
		{"{\"default\":\"a\\u0001\"}",
		 "message.default: contains a control character"},
		{"\"text\"", "message: not an object"},
		{"{\"default\":\"x\",\"1x\":\"y\"}",
		 "message.1x: not a BCP 47 language tag (or \"default\")"},
	};
	for (size_t i = 0; i < N(bad); i++) {
		m = NULL;
		assert_int_not_equal(policy_message_parse(bad[i].json,
							  strlen(bad[i].json),
							  &m, &err),
				     0);
		assert_null(m);
		assert_string_equal(err.msg, bad[i].msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(issue_example_document_parses),
		cmocka_unit_test(
			invalid_documents_are_refused_with_the_path_of_the_field),
		cmocka_unit_test(document_longer_than_the_limit_is_refused),
		cmocka_unit_test(decisions_of_the_issue_example),
		cmocka_unit_test(
			deprecated_decision_carries_sunset_and_upgrade_url),
		cmocka_unit_test(
			compat_range_is_served_in_compat_mode_after_blocked_and_min),
		cmocka_unit_test(missing_version_follows_the_platform_setting),
		cmocka_unit_test(lenient_platform_accepts_app_store_versions),
		cmocka_unit_test(unknown_platform_can_be_blocked_with_403),
		cmocka_unit_test(
			country_level_beats_channel_level_beats_platform),
		cmocka_unit_test(blocked_message_uses_the_best_matching_locale),
		cmocka_unit_test(override_applies_only_while_active),
		cmocka_unit_test(
			compat_override_serves_blocked_versions_in_compat_mode),
		cmocka_unit_test(override_requests_are_validated),
		cmocka_unit_test(override_that_relaxes_nothing_is_told_apart),
		cmocka_unit_test(
			flags_follow_targeting_by_platform_version_and_country),
		cmocka_unit_test(flag_bucket_is_stable_and_matches_unleash),
		cmocka_unit_test(recommended_version_rolls_out_by_percentage),
		cmocka_unit_test(
			notices_show_in_their_window_and_on_their_platforms),
		cmocka_unit_test(
			client_version_header_splits_at_the_first_slash),
		cmocka_unit_test(canonical_rendering_is_a_fixed_point),
		cmocka_unit_test(
			documents_that_mean_the_same_render_identically),
		cmocka_unit_test(diff_lists_each_change_with_its_path),
		cmocka_unit_test(dates_render_back_exactly),
		cmocka_unit_test(decision_json_carries_the_decision),
		cmocka_unit_test(
			next_change_is_the_earliest_scheduled_for_the_platform),
		cmocka_unit_test(
			override_message_parses_like_document_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
