/*
 * fuzz_parse.c - libFuzzer harness for src/core/parse.h.
 *
 * The input is read as text by every reader, each checked against a
 * plain reference written from the definition:
 *   - canonical decimal succeeds exactly when the text is "0" or a
 *     non-zero digit then digits and the value fits under max, and then
 *     printing the value gives the text back (one value, one spelling);
 *     the u32 reading agrees with the u64 one under UINT32_MAX;
 *   - digits succeeds exactly when the text is non-empty digits whose
 *     value fits in 64 bits, and reports that value;
 *   - the hex digit readers agree with the alphabet, by case;
 *   - base64 succeeds exactly when libsodium (given only the alphabet)
 *     decodes the whole text and re-encoding it gives the text back; the
 *     decoded bytes are libsodium's; a cap below the length refuses.
 */
#include "core/parse.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The value of a run of digits, or false when it passes 2^64 - 1. */
static bool ref_value(const char *s, size_t len, uint64_t *out)
{
	unsigned __int128 v = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > UINT64_MAX)
			return false;
	}
	*out = (uint64_t)v;
	return true;
}

static void decimal(const char *s, size_t len, uint64_t max)
{
	uint64_t v = 0xdeadbeef, ref = 0;
	bool digits = len > 0 && ref_value(s, len, &ref);
	bool canonical = digits && (len == 1 || s[0] != '0') && ref <= max;
	int r = parse_u64_n(s, len, max, &v);

	CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
	CHECK((r == 0) == canonical);
	if (r == 0) {
		char again[24];
		CHECK(v == ref && v <= max);
		CHECK((size_t)snprintf(again, sizeof(again), "%" PRIu64, v) ==
		      len);
		CHECK(memcmp(again, s, len) == 0);
	} else {
		CHECK(v == 0xdeadbeef);
	}
	uint32_t w = 7;
	int r32 = parse_u32_n(s, len, UINT32_MAX, &w);
	uint64_t v32 = 0;
	CHECK((r32 == 0) == (parse_u64_n(s, len, UINT32_MAX, &v32) == 0));
	CHECK(r32 != 0 || w == v32);

	uint64_t d = 0xdeadbeef;
	r = parse_digits(s, len, &d);
	CHECK((r == 0) == digits);
	CHECK(r != 0 || d == ref);
}

static void hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int lo = parse_hex_digit_lower(c), any = parse_hex_digit(c);
		const char *low = memchr("0123456789abcdef", c, 16);
		const char *up = memchr("0123456789ABCDEF", c, 16);
		CHECK(c != '\0' || (lo < 0 && any < 0));
		if (c == '\0')
			continue;
		CHECK(lo == (low ? (int)(low - "0123456789abcdef") : -1));
		CHECK(any == (low  ? lo
			      : up ? (int)(up - "0123456789ABCDEF")
				   : -1));
	}
}

static bool alphabet(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      c == '='))
			return false;
	}
	return true;
}

static void base64(const char *s, size_t len)
{
	size_t cap = len / 4 * 3 + 3;
	uint8_t *out = malloc(cap), *ref = malloc(cap);
	char *again = malloc(len * 2 + 8);
	size_t n = 0;
	const char *end = NULL;
	bool want = false;

	CHECK(out && ref && again);
	if (len > 0 && alphabet(s, len) &&
	    sodium_base642bin(ref, cap, s, len, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    end == s + len) {
		sodium_bin2base64(again, len * 2 + 8, ref, n,
				  sodium_base64_VARIANT_ORIGINAL);
		want = strlen(again) == len && memcmp(again, s, len) == 0;
	}
	long got = parse_base64(s, len, out, cap);
	CHECK((got >= 0) == want);
	if (got >= 0) {
		CHECK((size_t)got == n && memcmp(out, ref, n) == 0);
		if (n > 0)
			CHECK(parse_base64(s, len, out, n - 1) == -1);
	}
	free(out);
	free(ref);
	free(again);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *s = (const char *)data;

	if (sodium_init() < 0)
		abort();
	decimal(s, size, UINT64_MAX);
	/* A max from the input's length, so over-max is reached too. */
	decimal(s, size,
		size < 20 ? (uint64_t)size * 1000003u : UINT64_MAX / 3);
	hex(s, size);
	base64(s, size);
	return 0;
}
