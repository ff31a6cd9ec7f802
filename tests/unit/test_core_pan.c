/*
 * test_core_pan.c - card number checks (src/core/pan.h): the Luhn check
 * on the networks' published test numbers and on one-digit changes of
 * them, the refusals in their order, the masked form at every length,
 * the brand of each range's edges, and the expiry at the month's edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/pan.h"

#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Test card numbers the networks and acquirers publish. */
static const char *const test_pans[] = {
	"4111111111111111", "4012888888881881", "5555555555554444",
	"5105105105105100", "378282246310005",	"371449635398431",
	"6011111111111117", "3530111333300000", "30569309025904",
	"4222222222222",    "2223003122003222", "6200000000000005",
};

static void
luhn_accepts_test_numbers_and_refuses_every_changed_digit(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(test_pans); i++) {
		char s[PAN_DIGITS_MAX + 1];
		size_t n = strlen(test_pans[i]);

		assert_true(pan_luhn_valid(test_pans[i], n));
		assert_int_equal(pan_check(test_pans[i], n), PAN_OK);
		assert_int_equal(pan_luhn_digit(test_pans[i], n - 1),
				 test_pans[i][n - 1]);
		for (size_t k = 0; k < n; k++) {
			memcpy(s, test_pans[i], n);
			s[k] = (char)('0' + (s[k] - '0' + 1) % 10);
			assert_false(pan_luhn_valid(s, n));
		}
	}
	assert_false(pan_luhn_valid("", 0));
}

static void check_refuses_non_digits_then_length_then_luhn(void **state)
{
	(void)state;
	assert_int_equal(pan_check("4111 1111 1111 1111", 19), PAN_NOT_DIGITS);
	assert_int_equal(pan_check("411111111111111x", 16), PAN_NOT_DIGITS);
	assert_int_equal(pan_check("41111111111", 11), PAN_LENGTH);
	assert_int_equal(pan_check("41111111111111111113", 20), PAN_LENGTH);
	assert_int_equal(pan_check("4111111111111112", 16), PAN_LUHN);
	assert_int_equal(pan_check("000000000000", 12), PAN_OK);
	assert_string_equal(pan_check_name(PAN_LUHN), "bad_check_digit");
	assert_string_equal(pan_check_name(PAN_NOT_DIGITS), "not_digits");
	assert_string_equal(pan_check_name(PAN_LENGTH), "bad_length");
}

static void mask_keeps_at_most_six_and_four_and_hides_six(void **state)
{
	char out[PAN_DIGITS_MAX + 1];

	(void)state;
	pan_mask("4111111111111111", 16, out);
	assert_string_equal(out, "411111******1111");
	pan_mask("378282246310005", 15, out);
	assert_string_equal(out, "37828******0005");
	pan_mask("123456789012", 12, out);
	assert_string_equal(out, "12******9012");
	pan_mask("6200000000000000005", 19, out);
	assert_string_equal(out, "620000*********0005");
}

static void brand_follows_the_leading_digits(void **state)
{
	static const struct {
		const char *pan, *brand;
	} rows[] = {
		{"4111111111111111", "visa"},
		{"5555555555554444", "mastercard"},
		{"2221000000000009", "mastercard"},
		{"2720990000000000", "mastercard"},
		{"2721000000000000", "unknown"},
		{"378282246310005", "amex"},
		{"341111111111111", "amex"},
		{"6011111111111117", "discover"},
		{"6221260000000000", "discover"},
		{"6221250000000000", "unionpay"},
		{"3530111333300000", "jcb"},
		{"30569309025904", "diners"},
		{"5018000000000000", "maestro"},
		{"1234567890123", "unknown"},
	};
	(void)state;
	for (size_t i = 0; i < N(rows); i++)
		assert_string_equal(pan_brand(rows[i].pan, strlen(rows[i].pan)),
				    rows[i].brand);
}

static void expiry_is_valid_to_the_end_of_its_month(void **state)
{
	(void)state;
	assert_true(pan_expiry_current(12, 2026, 12, 2026));
	assert_false(pan_expiry_current(11, 2026, 12, 2026));
	assert_true(pan_expiry_current(1, 2027, 12, 2026));
	assert_false(pan_expiry_current(12, 2025, 1, 2026));
	assert_false(pan_expiry_current(0, 2030, 1, 2026));
	assert_false(pan_expiry_current(13, 2030, 1, 2026));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			luhn_accepts_test_numbers_and_refuses_every_changed_digit),
		cmocka_unit_test(
			check_refuses_non_digits_then_length_then_luhn),
		cmocka_unit_test(mask_keeps_at_most_six_and_four_and_hides_six),
		cmocka_unit_test(brand_follows_the_leading_digits),
		cmocka_unit_test(expiry_is_valid_to_the_end_of_its_month),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
