/*
 * test_core_ff1.c - FF1 (src/crypto/ff1.h) against NIST's published FF1
 * examples (the SP 800-38G sample computations: samples 1-3 with
 * AES-128, 7-9 with AES-256), decryption back, and every refusal of the
 * domain: too few numerals or too small a domain, too many numerals, a
 * numeral outside the radix, a tweak too long, a bad key length or radix.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "crypto/ff1.h"

#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const u8 key128[16] = {0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6,
			      0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C};
static const u8 key256[32] = {0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6,
			      0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C,
			      0xEF, 0x43, 0x59, 0xD8, 0xD5, 0x80, 0xAA, 0x4F,
			      0x7F, 0x03, 0x6D, 0x6F, 0x04, 0xFC, 0x6A, 0x94};
static const u8 tweak_a[] = {0x39, 0x38, 0x37, 0x36, 0x35,
			     0x34, 0x33, 0x32, 0x31, 0x30};
static const u8 tweak_b[] = {0x37, 0x37, 0x37, 0x37, 0x70, 0x71,
			     0x72, 0x73, 0x37, 0x37, 0x37};

struct sample {
	const char *name;
	const u8 *key;
	size_t key_len;
	unsigned radix;
	const u8 *tweak;
	size_t tweak_len;
	const char *pt, *ct;
};

static const struct sample samples[] = {
	{"sample 1", key128, 16, 10, NULL, 0, "0123456789", "2433477484"},
	{"sample 2", key128, 16, 10, tweak_a, sizeof(tweak_a), "0123456789",
	 "6124200773"},
	{"sample 3", key128, 16, 36, tweak_b, sizeof(tweak_b),
	 "0123456789abcdefghi", "a9tv40mll9kdu509eum"},
	{"sample 7", key256, 32, 10, NULL, 0, "0123456789", "6657667009"},
	{"sample 8", key256, 32, 10, tweak_a, sizeof(tweak_a), "0123456789",
	 "1001623463"},
	{"sample 9", key256, 32, 36, tweak_b, sizeof(tweak_b),
	 "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"},
};

static void ff1_matches_nist_samples_both_ways(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(samples); i++) {
		const struct sample *s = &samples[i];
		struct ff1 f;
		char out[FF1_NUMERALS_MAX + 1], back[FF1_NUMERALS_MAX + 1];
		size_t n = strlen(s->pt);

		assert_int_equal(ff1_init(&f, s->key, s->key_len, s->radix), 0);
		assert_int_equal(ff1_encrypt_text(&f, s->tweak, s->tweak_len,
						  s->pt, n, out),
				 0);
		if (strcmp(out, s->ct) != 0)
			fail_msg("%s: %s, want %s", s->name, out, s->ct);
		assert_int_equal(ff1_decrypt_text(&f, s->tweak, s->tweak_len,
						  out, n, back),
				 0);
		assert_string_equal(back, s->pt);
		ff1_clear(&f);
	}
}

static void ff1_round_trips_every_length_and_the_tweak_matters(void **state)
{
	struct ff1 f;
	u8 x[FF1_NUMERALS_MAX], y[FF1_NUMERALS_MAX], z[FF1_NUMERALS_MAX];

	(void)state;
	assert_int_equal(ff1_init(&f, key256, 32, 10), 0);
	for (size_t n = 6; n <= FF1_NUMERALS_MAX; n++) {
		for (size_t i = 0; i < n; i++)
			x[i] = (u8)((i * 7 + n) % 10);
		assert_int_equal(ff1_encrypt(&f, tweak_a, 3, x, n, y), 0);
		assert_memory_not_equal(x, y, n);
		assert_int_equal(ff1_decrypt(&f, tweak_a, 3, y, n, z), 0);
		assert_memory_equal(x, z, n);
		assert_int_equal(ff1_encrypt(&f, tweak_a, 4, x, n, z), 0);
		assert_memory_not_equal(y, z, n);
	}
	ff1_clear(&f);
}

static void ff1_refuses_what_is_outside_its_domain(void **state)
{
	struct ff1 f;
	u8 x[FF1_NUMERALS_MAX + 1], tw[FF1_TWEAK_BYTES_MAX + 1];
	char out[FF1_NUMERALS_MAX + 2];

	(void)state;
	memset(x, 1, sizeof(x));
	memset(tw, 0, sizeof(tw));
	assert_int_equal(ff1_init(&f, key128, 24, 10), -EINVAL);
	assert_int_equal(ff1_init(&f, key128, 16, 1), -EINVAL);
	assert_int_equal(ff1_init(&f, key128, 16, 37), -EINVAL);
	assert_int_equal(ff1_init(&f, key128, 16, 10), 0);
	/* 10^5 < 10^6: five decimal digits are too few, six are enough */
	assert_int_equal(ff1_encrypt(&f, NULL, 0, x, 5, x), -EINVAL);
	assert_int_equal(ff1_encrypt(&f, NULL, 0, x, 6, x), 0);
	assert_int_equal(ff1_encrypt(&f, NULL, 0, x, FF1_NUMERALS_MAX + 1, x),
			 -EINVAL);
	assert_int_equal(ff1_encrypt(&f, tw, FF1_TWEAK_BYTES_MAX + 1, x, 10, x),
			 -EINVAL);
	assert_int_equal(ff1_encrypt(&f, tw, FF1_TWEAK_BYTES_MAX, x, 10, x), 0);
	x[3] = 10;
	assert_int_equal(ff1_encrypt(&f, NULL, 0, x, 10, x), -ERANGE);
	assert_int_equal(ff1_encrypt_text(&f, NULL, 0, "01234a6789", 10, out),
			 -ERANGE);
	assert_int_equal(ff1_decrypt_text(&f, NULL, 0, "0123 56789", 10, out),
			 -ERANGE);
	ff1_clear(&f);
	/* radix 2 needs 20 numerals (2^20 >= 10^6, 2^19 < 10^6) */
	assert_int_equal(ff1_init(&f, key128, 16, 2), 0);
	memset(x, 1, sizeof(x));
	assert_int_equal(ff1_encrypt(&f, NULL, 0, x, 19, x), -EINVAL);
	assert_int_equal(ff1_encrypt(&f, NULL, 0, x, 20, x), 0);
	ff1_clear(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ff1_matches_nist_samples_both_ways),
		cmocka_unit_test(
			ff1_round_trips_every_length_and_the_tweak_matters),
		cmocka_unit_test(ff1_refuses_what_is_outside_its_domain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
