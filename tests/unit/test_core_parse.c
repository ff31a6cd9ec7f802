/*
 * test_core_parse.c - the shared text readers: canonical decimal refuses
 * every second spelling ("007", "-1", "+1", " 1", "1 ") and overflow;
 * digits allows leading zeros but not overflow; base64 accepts only the
 * one canonical spelling of a value; a duration is canonical decimal and
 * at most one unit letter.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/parse.h"

#include "banned.h"

static void canonical_decimal_reads_zero_and_max(void **state)
{
	(void)state;
	uint64_t v = 9;
	assert_int_equal(parse_u64("0", UINT64_MAX, &v), 0);
	assert_true(v == 0);
	assert_int_equal(parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_u64_n("1234x", 4, 2000, &v), 0);
	assert_true(v == 1234);
	uint32_t w = 0;
	assert_int_equal(parse_u32_n("4294967295", 10, UINT32_MAX, &w), 0);
	assert_true(w == UINT32_MAX);
}

static void canonical_decimal_refuses_second_spellings(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",    "-1",   "+1",  "007",	  "00", " 1",  "1 ",
		"1\n", "0x1f", "1e3", "\xd9\xa1", "-0", "1.0", "\t5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 42;
		assert_int_equal(parse_u64(bad[i], UINT64_MAX, &v), -EINVAL);
		assert_true(v == 42);
	}
	uint64_t v = 42;
	assert_int_equal(parse_u64(NULL, UINT64_MAX, &v), -EINVAL);
}

static void canonical_decimal_refuses_overflow_and_over_max(void **state)
{
	(void)state;
	uint64_t v = 42;
	assert_int_equal(parse_u64("18446744073709551616", UINT64_MAX, &v),
			 -ERANGE);
	assert_int_equal(parse_u64("65536", 65535, &v), -ERANGE);
	assert_true(v == 42);
	uint32_t w = 7;
	assert_int_equal(parse_u32_n("4294967296", 10, UINT32_MAX, &w),
			 -ERANGE);
	assert_true(w == 7);
}

static void digits_allow_leading_zeros_not_overflow(void **state)
{
	(void)state;
	uint64_t v = 0;
	assert_int_equal(parse_digits("00000000000000000042", 20, &v), 0);
	assert_true(v == 42);
	assert_int_equal(parse_digits("99999999999999999999", 20, &v), -ERANGE);
	assert_int_equal(parse_digits("", 0, &v), -EINVAL);
	assert_int_equal(parse_digits("-1", 2, &v), -EINVAL);
	assert_int_equal(parse_digits("1 ", 2, &v), -EINVAL);
	assert_true(v == 42);
}

static void hex_digits_by_case(void **state)
{
	(void)state;
	assert_int_equal(parse_hex_digit('0'), 0);
	assert_int_equal(parse_hex_digit('f'), 15);
	assert_int_equal(parse_hex_digit('F'), 15);
	assert_int_equal(parse_hex_digit('g'), -1);
	assert_int_equal(parse_hex_digit_lower('a'), 10);
	assert_int_equal(parse_hex_digit_lower('A'), -1);
	assert_int_equal(parse_hex_digit_lower('/'), -1);
}

static void base64_reads_each_padding(void **state)
{
	(void)state;
	uint8_t out[8];
	assert_int_equal(parse_base64("Zm9v", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(parse_base64("Zm8=", 4, out, sizeof(out)), 2);
	assert_memory_equal(out, "fo", 2);
	assert_int_equal(parse_base64("Zg==", 4, out, sizeof(out)), 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(parse_base64("+/+/", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void base64_refuses_other_spellings(void **state)
{
	(void)state;
	uint8_t out[8];
	static const char *const bad[] = {
		"",	  "Zg",
		"Zg=",	  "Zh==",
		"Zm9=",	  "Z===",
		"====",	  "Zg==Zg==",
		"Zm9v\n", "Zm-v",
		"Zm_v",	  "Zm 9v",
		"Zg=a",	  "\xc3\xa9\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
			parse_base64(bad[i], strlen(bad[i]), out, sizeof(out)),
			-1);
	/* More than cap is refused, not cut. */
	assert_int_equal(parse_base64("Zm9vYmFy", 8, out, 5), -1);
}

static void durations_read_each_unit_and_refuse_the_rest(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint64_t s;
	} good[] = {{"0", 0},	    {"0d", 0},	    {"90", 90},
		    {"90s", 90},    {"30m", 1800},  {"2h", 7200},
		    {"7d", 604800}, {"2w", 1209600}};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t v = 42;
		assert_int_equal(parse_duration_s(good[i].text, 1u << 30, &v),
				 0);
		assert_true(v == good[i].s);
	}
	static const char *const bad[] = {"",	 "d",  "07d", "-1s", "1.5h",
					  "1dd", "1y", " 1d", "1d ", "1D"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 42;
		assert_int_equal(parse_duration_s(bad[i], 1u << 30, &v),
				 -EINVAL);
		assert_true(v == 42);
	}
	uint64_t v = 42;
	/* The bound is in seconds, whatever the unit. */
	assert_int_equal(parse_duration_s("2d", 86400, &v), -ERANGE);
	assert_int_equal(parse_duration_s("1d", 86400, &v), 0);
	assert_true(v == 86400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(canonical_decimal_reads_zero_and_max),
		cmocka_unit_test(canonical_decimal_refuses_second_spellings),
		cmocka_unit_test(
			canonical_decimal_refuses_overflow_and_over_max),
		cmocka_unit_test(digits_allow_leading_zeros_not_overflow),
		cmocka_unit_test(hex_digits_by_case),
		cmocka_unit_test(base64_reads_each_padding),
		cmocka_unit_test(base64_refuses_other_spellings),
		cmocka_unit_test(durations_read_each_unit_and_refuse_the_rest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
