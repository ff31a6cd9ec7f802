/*
 * test_core_u128.c - decimal text of 128-bit values: strict parsing, exact
 * formatting, checked arithmetic at the edges.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "core/u128.h"

#include "banned.h"

static const char max_dec[] = "340282366920938463463374607431768211455";

static int parse(const char *s, u128 max, u128 *out)
{
	return u128_parse_dec(s, strlen(s), max, out);
}

static void parses_zero_one_and_max(void **state)
{
	(void)state;
	u128 v;
	assert_int_equal(parse("0", U128_MAX, &v), 0);
	assert_true(v == 0);
	assert_int_equal(parse("1", U128_MAX, &v), 0);
	assert_true(v == 1);
	assert_int_equal(parse(max_dec, U128_MAX, &v), 0);
	assert_true(v == U128_MAX);
}

static void rejects_values_above_max(void **state)
{
	(void)state;
	u128 v = 7;
	assert_int_equal(
		parse("340282366920938463463374607431768211456", U128_MAX, &v),
		-ERANGE);
	assert_int_equal(parse("18446744073709551616", UINT64_MAX, &v),
			 -ERANGE);
	assert_int_equal(parse("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

static void rejects_non_canonical_text(void **state)
{
	(void)state;
	u128 v = 7;
	const char *bad[] = {
		"",	"-1",  "+1",
		" 1",	"1 ",  "01",
		"00",	"1.0", "1e3",
		"0x10", "١",   "9999999999999999999999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(parse(bad[i], U128_MAX, &v), 0);
	assert_true(v == 7); /* untouched on failure */
}

static void formats_round_trip(void **state)
{
	(void)state;
	char buf[U128_DEC_BYTES];
	u128 samples[] = {0,
			  1,
			  9,
			  10,
			  12345678901234567890u,
			  U128_MAX,
			  (u128)1 << 64,
			  ((u128)1 << 127) + 3};
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		u128 back;
		size_t n = u128_format_dec(samples[i], buf);
		assert_int_equal(n, strlen(buf));
		assert_int_equal(parse(buf, U128_MAX, &back), 0);
		assert_true(back == samples[i]);
	}
	u128_format_dec(U128_MAX, buf);
	assert_string_equal(buf, max_dec);
}

static void add_and_sub_report_overflow(void **state)
{
	(void)state;
	u128 r = 5;
	assert_false(u128_add(U128_MAX, 1, &r));
	assert_true(r == 5);
	assert_true(u128_add(U128_MAX - 1, 1, &r));
	assert_true(r == U128_MAX);
	assert_false(u128_sub(1, 2, &r));
	assert_true(u128_sub(2, 2, &r));
	assert_true(r == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_zero_one_and_max),
		cmocka_unit_test(rejects_values_above_max),
		cmocka_unit_test(rejects_non_canonical_text),
		cmocka_unit_test(formats_round_trip),
		cmocka_unit_test(add_and_sub_report_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
