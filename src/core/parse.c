/*
 * parse.c - canonical decimal, hex digits and standard base64 (see
 * parse.h).  The canonical decimal loop is u128_parse_dec's, so the
 * project reads a number one way whatever its width.
 */
#include "core/parse.h"

#include <errno.h>
#include <string.h>

#include "core/u128.h"

#include "banned.h"

int parse_u64_n(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	u128 v;
	int r;

	if (!s)
		return -EINVAL;
	r = u128_parse_dec(s, len, max, &v);
	if (r == 0)
		*out = (uint64_t)v;
	return r;
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s)
		return -EINVAL;
	return parse_u64_n(s, strlen(s), max, out);
}

int parse_duration_s(const char *s, uint64_t max_s, uint64_t *out)
{
	static const char units[] = "smhdw";
	static const uint64_t unit_s[] = {1, 60, 3600, 86400, 604800};
	uint64_t v, mul = 1;

	if (!s || !*s)
		return -EINVAL;
	size_t len = strlen(s);
	const char *u = strchr(units, s[len - 1]);
	if (u) {
		mul = unit_s[u - units];
		len--;
	}
	int r = parse_u64_n(s, len, max_s / mul, &v);
	if (r == 0)
		*out = v * mul;
	return r;
}

int parse_u32_n(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int r = parse_u64_n(s, len, max, &v);

	if (r == 0)
		*out = (uint32_t)v;
	return r;
}

int parse_digits(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9)
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, d, &v))
			return -ERANGE;
	}
	*out = v;
	return 0;
}

int parse_hex_digit_lower(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int parse_hex_digit(char c)
{
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return parse_hex_digit_lower(c);
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long parse_base64(const char *s, size_t len, uint8_t *out, size_t cap)
{
	size_t pad = 0, n = 0;

	if (!s || len == 0 || len % 4 != 0)
		return -1;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	if ((len / 4) * 3 - pad > cap)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int d[4];
		size_t digits = i + 4 == len ? 4 - pad : 4;
		for (size_t j = 0; j < 4; j++) {
			d[j] = j < digits ? b64_digit(s[i + j]) : 0;
			if (d[j] < 0)
				return -1;
		}
		uint32_t v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 |
			     (uint32_t)d[2] << 6 | (uint32_t)d[3];
		/* Canonical: the bits past the last whole byte are zero. */
		if ((pad == 1 && digits == 3 && (v & 0xffu)) ||
		    (pad == 2 && digits == 2 && (v & 0xffffu)))
			return -1;
		out[n++] = (uint8_t)(v >> 16);
		if (digits > 2)
			out[n++] = (uint8_t)(v >> 8);
		if (digits > 3)
			out[n++] = (uint8_t)v;
	}
	return (long)n;
}
