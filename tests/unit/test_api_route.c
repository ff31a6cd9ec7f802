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
	static const char *const bad[] = {
		/* version ff is forbidden */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		/* all-zero trace-id, all-zero parent-id */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		/* uppercase hex */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		/* version 00 with a trailing field */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		/* later version followed by something other than a dash */
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		/* short, wrong separators, non-hex */
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (api_traceparent_parse(bad[i], id))
			fail_msg("accepted: %s", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(urls_map_to_their_templates),
		cmocka_unit_test(request_ids_are_kept_only_when_safe),
		cmocka_unit_test(traceparent_follows_w3c_trace_context),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
