/*
 * test_api_route.c - URLs map to route templates (never raw paths), ids in
 * paths are canonical decimals, X-Request-Id and traceparent are kept only
 * when well-formed (W3C Trace Context examples).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/route.h"

#include <errno.h>
#include <stdio.h>

#include <string.h>

#include "banned.h"

static void urls_map_to_their_templates(void **state)
{
	(void)state;
	static const struct {
		const char *url;
		enum api_route route;
		bool bad_id;
		unsigned long long id;
	} cases[] = {
		{"/v1/accounts", ROUTE_accounts, false, 0},
		{"/v1/transfers", ROUTE_transfers, false, 0},
		{"/v1/accounts/42", ROUTE_account, false, 42},
		{"/v1/transfers/7", ROUTE_transfer, false, 7},
		{"/v1/accounts/9/transfers", ROUTE_account_transfers, false, 9},
		{"/v1/accounts/9/balances", ROUTE_account_balances, false, 9},
		{"/healthz", ROUTE_healthz, false, 0},
		{"/readyz", ROUTE_readyz, false, 0},
		{"/metrics", ROUTE_metrics, false, 0},
		{"/v1/accounts/", ROUTE_unmatched, false, 0},
		{"/v1/accountsx", ROUTE_unmatched, false, 0},
		{"/v1/transfers/9/transfers", ROUTE_unmatched, false, 0},
		{"/v1/accounts/9/other", ROUTE_unmatched, false, 0},
		{"/v1/accounts/9/transfers/", ROUTE_unmatched, false, 0},
		{"/", ROUTE_unmatched, false, 0},
		{"", ROUTE_unmatched, false, 0},
		{"/healthz/", ROUTE_unmatched, false, 0},
		{"/v1/accounts/01", ROUTE_account, true, 0},
		{"/v1/accounts/-1", ROUTE_account, true, 0},
		{"/v1/accounts/abc/transfers", ROUTE_account_transfers, true,
		 0},
		{"/v1/transfers/340282366920938463463374607431768211456",
		 ROUTE_transfer, true, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		u128 id = 12345;
		bool bad = false;
		enum api_route r = api_route_match(cases[i].url, &id, &bad);
		if (r != cases[i].route || bad != cases[i].bad_id)
			fail_msg("%s: route %d bad %d", cases[i].url, r, bad);
		if (r != ROUTE_unmatched && !bad &&
		    (r == ROUTE_account || r == ROUTE_transfer ||
		     r == ROUTE_account_transfers ||
		     r == ROUTE_account_balances))
			assert_true(id == cases[i].id);
	}
	u128 id = 0;
	bool bad = true;
	assert_int_equal(
		api_route_match(
			"/v1/accounts/340282366920938463463374607431768211455",
			&id, &bad),
		ROUTE_account);
	assert_false(bad);
	assert_true(id == U128_MAX);
}

/* Every template of the table routes to its own row (its {...} filled
 * with a good value), and nothing else does. */
static void every_template_routes_to_its_row(void **state)
{
	(void)state;
	for (unsigned r = 0; r < ROUTE_unmatched; r++) {
		const char *t = api_routes[r].tmpl;
		const char *open = strchr(t, '{');
		char url[128];
		if (open) {
			const char *close = strchr(open, '}');
			const char *v = api_routes[r].param == RP_TEXT
						? "a-b_c.d~9"
					: api_routes[r].param == RP_REST
						? "0/x001/234.p/7"
						: "17";
			snprintf(url, sizeof(url), "%.*s%s%s", (int)(open - t),
				 t, v, close + 1);
		} else {
			snprintf(url, sizeof(url), "%s", t);
		}
		u128 id = 0;
		bool bad = true;
		const char *text = NULL;
		size_t text_len = 0;
		enum api_route got =
			api_route_match_text(url, &id, &bad, &text, &text_len);
		if (got != (enum api_route)r || bad)
			fail_msg("%s: route %d bad %d", url, got, bad);
		if (open && api_routes[r].param == RP_TEXT) {
			assert_int_equal(text_len, 9);
			assert_memory_equal(text, "a-b_c.d~9", 9);
		} else if (open && api_routes[r].param == RP_REST) {
			assert_string_equal(text, "0/x001/234.p/7");
			assert_int_equal(text_len, strlen(text));
		} else if (open)
			assert_true(id == 17);
		else
			assert_null(text);
	}
}

/* How an empty or bad {...} segment is read, per kind of parameter. */
static void segments_are_read_by_their_kind(void **state)
{
	(void)state;
	static const struct {
		const char *url;
		enum api_route route;
		bool bad_id;
	} cases[] = {
		{"/v1/audit/entries/", ROUTE_unmatched, false},
		{"/v1/audit/entries/18446744073709551616", ROUTE_audit_entry,
		 true},
		{"/v1/audit/entries/18446744073709551615", ROUTE_audit_entry,
		 false},
		{"/v1/accounts//transfers", ROUTE_account_transfers, true},
		{"/v1/client-policy/versions/", ROUTE_cp_version, true},
		{"/v1/client-policy/overrides/x", ROUTE_cp_override, true},
		{"/v1/client-policy/overrides/1/", ROUTE_unmatched, false},
		{"/v1/principals/", ROUTE_principal, true},
		{"/v1/principals/a b", ROUTE_principal, true},
		{"/v1/principals/a/b", ROUTE_unmatched, false},
		{"/v1/revocations/"
		 "1234567890123456789012345678901234567890123456789012345678901"
		 "2345",
		 ROUTE_revocation, true},
		{"/v1/client-policyx", ROUTE_unmatched, false},
		{"unmatched", ROUTE_unmatched, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		u128 id = 0;
		bool bad = false;
		const char *text = "unset";
		enum api_route r = api_route_match_text(cases[i].url, &id, &bad,
							&text, NULL);
		if (r != cases[i].route || bad != cases[i].bad_id)
			fail_msg("%s: route %d bad %d", cases[i].url, r, bad);
		assert_null(text);
	}
}

/* The Allow header lists a row's methods in one fixed order. */
static void allow_lists_the_methods_of_the_row(void **state)
{
	(void)state;
	char buf[API_ALLOW_BYTES_MAX];
	assert_string_equal(api_route_allow(ROUTE_transfers, buf), "POST");
	assert_string_equal(api_route_allow(ROUTE_account, buf), "GET, HEAD");
	assert_string_equal(api_route_allow(ROUTE_principals, buf),
			    "GET, HEAD, POST");
	assert_string_equal(api_route_allow(ROUTE_cp_manifest, buf),
			    "GET, HEAD, PUT");
	assert_string_equal(api_route_allow(ROUTE_cp_override, buf),
			    "GET, HEAD, DELETE");
	/* every method of every row fits */
	for (unsigned r = 0; r < ROUTE_COUNT; r++)
		assert_true(strlen(api_route_allow(r, buf)) <
			    API_ALLOW_BYTES_MAX - 1);
}

/* A method's right: the read right for GET and HEAD, else the write
 * right; a body is read only for POST and PUT on a row with a limit. */
static void rights_and_bodies_follow_the_method(void **state)
{
	(void)state;
	assert_int_equal(api_route_right(ROUTE_principals, METHOD_HEAD),
			 MANDATE_OP_PRINCIPALS_READ);
	assert_int_equal(api_route_right(ROUTE_principals, METHOD_POST),
			 MANDATE_OP_PRINCIPALS_ADMIN);
	assert_int_equal(api_route_right(ROUTE_revocations, METHOD_POST),
			 RIGHT_OPEN);
	/* The signed manifest: any principal reads it (and anyone when the
	 * operator opens it); changing the policy stays policy:admin. */
	assert_int_equal(api_route_right(ROUTE_cp_manifest, METHOD_GET),
			 RIGHT_PRINCIPAL);
	assert_int_equal(api_route_right(ROUTE_cp_manifest, METHOD_PUT),
			 MANDATE_OP_POLICY_ADMIN);
	assert_true(api_routes[ROUTE_cp_manifest].flags & RF_OPEN_IF_PUBLIC);
	for (unsigned r = 0; r < ROUTE_COUNT; r++)
		if (r != ROUTE_cp_manifest)
			assert_false(api_routes[r].flags & RF_OPEN_IF_PUBLIC);
	assert_true(api_route_reads_body(ROUTE_principals, METHOD_POST));
	assert_false(api_route_reads_body(ROUTE_principals, METHOD_GET));
	assert_true(api_route_reads_body(ROUTE_cp_manifest, METHOD_PUT));
	assert_false(api_route_reads_body(ROUTE_cp_override, METHOD_DELETE));
	assert_true(api_route_reads_body(ROUTE_keys_rotate, METHOD_POST));
	assert_false(api_route_reads_body(ROUTE_audit_checkpoint, METHOD_POST));
	/* every /v1 row names a right for each method it allows, but one:
	 * the log's public key, open to anyone (docs/authz.md) */
	assert_int_equal(api_routes[ROUTE_audit_key].scope, RA_PUBLIC);
	assert_int_equal(api_routes[ROUTE_audit_key].methods, RM_READ);
	for (unsigned r = 0; r < ROUTE_unmatched; r++) {
		if (r == ROUTE_audit_key)
			continue;
		if (strncmp(api_routes[r].tmpl, "/v1/", 4) != 0) {
			assert_int_equal(api_routes[r].scope, RA_PUBLIC);
			continue;
		}
		assert_int_not_equal(api_routes[r].scope, RA_PUBLIC);
		for (unsigned m = 0; m < METHOD_OTHER; m++)
			if (api_routes[r].methods & (1u << m))
				assert_int_not_equal(api_route_right(r, m), 0);
	}
}

static void request_ids_are_kept_only_when_safe(void **state)
{
	(void)state;
	char long_ok[65], too_long[66];
	memset(long_ok, 'a', 64);
	long_ok[64] = '\0';
	memset(too_long, 'a', 65);
	too_long[65] = '\0';
	assert_true(api_request_id_valid("abc-123_X.y:z"));
	assert_true(api_request_id_valid(long_ok));
	assert_false(api_request_id_valid(too_long));
	assert_false(api_request_id_valid(""));
	assert_false(api_request_id_valid("a b"));
	assert_false(api_request_id_valid("a\"b"));
	assert_false(api_request_id_valid("a\nb"));
	assert_false(api_request_id_valid("é"));
}

static void traceparent_follows_w3c_trace_context(void **state)
{
	(void)state;
	char id[TRACE_ID_HEX + 1];
	/* The example of the W3C Trace Context recommendation. */
	assert_true(api_traceparent_parse(
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id));
	assert_string_equal(id, "4bf92f3577b34da6a3ce929d0e0e4736");
	/* A later version may carry more fields after a dash. */
	assert_true(api_traceparent_parse(
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		id));
	/* The rules are engine/trace.h's, tested in test_engine_trace.c:
	 * one refusal shows the answer is passed on. */
	assert_false(api_traceparent_parse(
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id));
}

/* A parameter named twice is found, after percent-decoding as
 * libmicrohttpd decodes names; values never matter. */
static void repeated_query_parameters_are_found(void **state)
{
	(void)state;
	char name[33];
	static const struct {
		const char *q;
		int want;
		const char *name;
	} cases[] = {
		{"", 0, ""},
		{"owner=a", 0, ""},
		{"owner=a&entry_index=true", 0, ""},
		{"owner=a&owner=b", 1, "owner"},
		{"entry_index=true&entry_index=false", 1, "entry_index"},
		{"iss=x&iss", 1, "iss"},
		{"%69ss=x&iss=y", 1, "iss"},
		{"a+b=1&a%20b=2", 1, ""}, /* a space: not printed */
		{"a=1&&b=2", 0, ""},
		{"a=1&b=2&A=3", 0, ""}, /* names are case-sensitive */
		{"limit=1&limit=1", 1, "limit"},
		{"%6=1&%6=2", 1, "%6"}, /* a bad escape stays as it is */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = api_query_repeated(cases[i].q, strlen(cases[i].q), name,
					   sizeof(name));
		if (r != cases[i].want || strcmp(name, cases[i].name) != 0)
			fail_msg("%s: %d '%s'", cases[i].q, r, name);
	}
	char many[API_QUERY_PARAMS_MAX * 8 + 16];
	size_t n = 0;
	for (int i = 0; i <= API_QUERY_PARAMS_MAX; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "p%d=1&", i);
	assert_int_equal(api_query_repeated(many, n - 1, name, sizeof(name)),
			 -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(urls_map_to_their_templates),
		cmocka_unit_test(every_template_routes_to_its_row),
		cmocka_unit_test(segments_are_read_by_their_kind),
		cmocka_unit_test(allow_lists_the_methods_of_the_row),
		cmocka_unit_test(rights_and_bodies_follow_the_method),
		cmocka_unit_test(request_ids_are_kept_only_when_safe),
		cmocka_unit_test(traceparent_follows_w3c_trace_context),
		cmocka_unit_test(repeated_query_parameters_are_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
