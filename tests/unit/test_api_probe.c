/*
 * test_api_probe.c - who decided an answer (api/probe.h): given its
 * status, headers and body, the verdict a probe reports; the probe
 * spec "URL:platform/version" and its metric label; the refusal marker's
 * slug as api_reply reads it from a problem document (api/problem.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/probe.h"

#include <string.h>

#include "banned.h"

static struct probe_result classify(int err, int status, const char *marker,
				    const char *client_policy,
				    const char *content_type, const char *body)
{
	struct probe_answer a = {
		.err = err,
		.status = status,
		.marker = marker,
		.client_policy = client_policy,
		.content_type = content_type ? content_type : "",
		.body = body,
		.body_len = body ? strlen(body) : 0,
	};
	struct probe_result r;
	probe_classify(&a, &r);
	return r;
}

static void a_plain_refusal_without_tpwallet_signs_is_the_gateways(void **state)
{
	(void)state;
	struct probe_result r = classify(
		0, 403, NULL, NULL, "text/html",
		"<html><body>403 Forbidden: app version refused</body></html>");
	assert_int_equal(r.verdict, PROBE_refused_by_gateway);
	assert_true(r.up);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.problem, "");
	/* A redirect to a login page and a 502 of the gateway's own. */
	assert_int_equal(classify(0, 302, NULL, NULL, NULL, NULL).verdict,
			 PROBE_refused_by_gateway);
	assert_int_equal(
		classify(0, 502, NULL, NULL, "text/plain", "bad gw").verdict,
		PROBE_refused_by_gateway);
	/* A problem document of another service (not /problems/...). */
	assert_int_equal(classify(0, 429, NULL, NULL,
				  "application/problem+json",
				  "{\"type\":\"https://gw.example/rate\"}")
				 .verdict,
			 PROBE_refused_by_gateway);
}

static void the_gates_refusal_names_its_rule_and_policy_version(void **state)
{
	(void)state;
	struct probe_result r = classify(
		0, 426, "client-version-blocked", "blocked; policy-version=7",
		"application/problem+json",
		"{\"verdict\":\"blocked\",\"reason\":\"below_min_supported\","
		"\"type\":\"/problems/"
		"client-version-blocked\",\"status\":426}");
	assert_int_equal(r.verdict, PROBE_refused_by_tpwallet);
	assert_string_equal(r.problem, "client-version-blocked");
	assert_string_equal(r.gate, "blocked");
	assert_int_equal(r.policy_version, 7);
	assert_string_equal(r.reason, "below_min_supported");
	/* A gateway that strips the headers still passes tpwallet's body
	 * through: its type alone says who refused. */
	r = classify(0, 403, NULL, NULL, "application/problem+json",
		     "{\"type\":\"/problems/client-version-blocked\","
		     "\"reason\":\"blocked_range\"}");
	assert_int_equal(r.verdict, PROBE_refused_by_tpwallet);
	assert_string_equal(r.problem, "client-version-blocked");
	assert_string_equal(r.reason, "blocked_range");
}

static void tpwallets_own_state_refusals_are_tpwallets(void **state)
{
	(void)state;
	static const struct {
		int status;
		const char *slug;
	} cases[] = {
		{503, "unavailable"},
		{429, "too-many-requests"},
		{408, "request-timeout"},
		{500, "internal-error"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct probe_result r =
			classify(0, cases[i].status, cases[i].slug, NULL,
				 "application/problem+json", "{}");
		assert_int_equal(r.verdict, PROBE_refused_by_tpwallet);
		assert_string_equal(r.problem, cases[i].slug);
	}
}

static void an_answer_past_the_gate_is_served(void **state)
{
	(void)state;
	/* No credential: authentication refuses after the gate let the
	 * client through, and X-Client-Policy says so. */
	struct probe_result r =
		classify(0, 401, "malformed", "supported; policy-version=3",
			 "application/problem+json",
			 "{\"type\":\"/problems/malformed\"}");
	assert_int_equal(r.verdict, PROBE_served);
	assert_string_equal(r.gate, "supported");
	assert_int_equal(r.policy_version, 3);
	/* No policy set: no X-Client-Policy, the marker alone. */
	assert_int_equal(
		classify(0, 401, "malformed", NULL, NULL, NULL).verdict,
		PROBE_served);
	assert_int_equal(classify(0, 200, NULL, "deprecated; policy-version=2",
				  "application/json", "[]")
				 .verdict,
			 PROBE_served);
	assert_int_equal(
		classify(0, 200, NULL, NULL, "application/json", "[]").verdict,
		PROBE_served);
	/* A 404 of tpwallet's is an answer to the request, not a refusal
	 * of the client. */
	assert_int_equal(
		classify(0, 404, "not-found", NULL, NULL, NULL).verdict,
		PROBE_served);
}

static void no_complete_answer_is_unreachable(void **state)
{
	(void)state;
	static const int errs[] = {-HTTP_connect, -HTTP_timeout, -HTTP_protocol,
				   -HTTP_body_too_large, -HTTP_truncated};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct probe_result r =
			classify(errs[i], 0, NULL, NULL, NULL, NULL);
		assert_int_equal(r.verdict, PROBE_unreachable);
		assert_false(r.up);
		assert_string_equal(r.error, http_err_name(errs[i]));
	}
	assert_int_equal(classify(0, 0, NULL, NULL, NULL, NULL).verdict,
			 PROBE_unreachable);
}

static void header_values_are_kept_only_when_they_are_words(void **state)
{
	(void)state;
	/* A hostile marker or verdict never reaches a report or a label. */
	struct probe_result r =
		classify(0, 403, "x\"} 1\nevil", "blocked\"; policy-version=x",
			 NULL, NULL);
	assert_string_equal(r.problem, "");
	assert_string_equal(r.gate, "");
	assert_int_equal(r.policy_version, 0);
	/* Tpwallet's header was there: still not the gateway's. */
	assert_int_equal(r.verdict, PROBE_served);
}

static void probe_specs_split_at_the_last_colon(void **state)
{
	(void)state;
	struct probe_target t;
	assert_int_equal(
		probe_target_parse("https://gw.example:8443/api:android/3.9.4",
				   &t),
		0);
	assert_string_equal(t.url, "https://gw.example:8443/api");
	assert_string_equal(t.client, "android/3.9.4");
	assert_string_equal(t.name,
			    "https://gw.example:8443/api:android/3.9.4");
	assert_int_equal(
		probe_target_parse("http://[::1]:80:ios/1.0.0-beta.1+7", &t),
		0);
	assert_string_equal(t.url, "http://[::1]:80");
	/* The label: unusual bytes made '_', the length bounded. */
	assert_string_equal(t.name, "http://_::1_:80:ios/1.0.0-beta.1+7");
	char long_spec[600];
	memset(long_spec, 0, sizeof(long_spec));
	memcpy(long_spec, "http://h/", 9);
	memset(long_spec + 9, 'p', 500);
	memcpy(long_spec + 509, ":web/1", 6);
	assert_int_equal(probe_target_parse(long_spec, &t), 0);
	assert_int_equal(strlen(t.name), PROBE_NAME_BYTES_MAX - 1);

	static const char *const bad[] = {
		"http://gw.example",		  /* no client */
		"http://gw.example:android",	  /* no version */
		"http://gw.example:/3.9.4",	  /* no platform */
		"http://gw.example:android/",	  /* empty version */
		"http://gw.example:Android/3.9",  /* platform case */
		"http://gw.example:android/3 9",  /* space */
		"ftp://gw.example:android/3.9.4", /* scheme */
		"gw.example:android/3.9.4",	  /* not a URL */
		"http://gw.example?x=1:android/1",
		":android/3.9.4",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(probe_target_parse(bad[i], &t), -1);
}

static void the_marker_is_the_documents_own_type(void **state)
{
	(void)state;
	char slug[PROBLEM_SLUG_BYTES_MAX];
	const char doc[] = "{\"verdict\":\"blocked\",\"type\":\"/problems/"
			   "client-version-blocked\",\"status\":426}";
	assert_int_equal(problem_slug_find(doc, sizeof(doc) - 1, slug), 0);
	assert_string_equal(slug, "client-version-blocked");
	/* Only as a member: an escaped one inside a string is text. */
	const char quoted[] =
		"{\"detail\":\"\\\"type\\\":\\\"/problems/x\\\"\"}";
	assert_int_equal(problem_slug_find(quoted, sizeof(quoted) - 1, slug),
			 -1);
	/* Cut short, empty or not a slug: none. */
	const char cut[] = "{\"type\":\"/problems/abc";
	assert_int_equal(problem_slug_find(cut, sizeof(cut) - 1, slug), -1);
	const char empty[] = "{\"type\":\"/problems/\"}";
	assert_int_equal(problem_slug_find(empty, sizeof(empty) - 1, slug), -1);
	const char upper[] = "{\"type\":\"/problems/Not-Found\"}";
	assert_int_equal(problem_slug_find(upper, sizeof(upper) - 1, slug), -1);
	/* Every slug of the table is found in its own document. */
	for (unsigned p = 0; p < PROBLEM_COUNT; p++) {
		struct wbuf b = WBUF_INIT(4096);
		problem_write(&b, (enum problem)p, "d\"etail", "id", NULL);
		assert_int_equal(b.err, 0);
		assert_int_equal(problem_slug_find(b.data, b.len, slug), 0);
		assert_string_equal(slug, problem_slug((enum problem)p));
		wbuf_release(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			a_plain_refusal_without_tpwallet_signs_is_the_gateways),
		cmocka_unit_test(
			the_gates_refusal_names_its_rule_and_policy_version),
		cmocka_unit_test(tpwallets_own_state_refusals_are_tpwallets),
		cmocka_unit_test(an_answer_past_the_gate_is_served),
		cmocka_unit_test(no_complete_answer_is_unreachable),
		cmocka_unit_test(
			header_values_are_kept_only_when_they_are_words),
		cmocka_unit_test(probe_specs_split_at_the_last_colon),
		cmocka_unit_test(the_marker_is_the_documents_own_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
