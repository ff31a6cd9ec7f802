/*
 * u128.c - decimal text for 128-bit integers (see u128.h).
 */
#include "core/u128.h"

#include <errno.h>

#include "banned.h"

int u128_parse_dec(const char *s, size_t len, u128 max, u128 *out)
{
	u128 v = 0;

	if (len == 0 || len > U128_DEC_BYTES - 1)
		return -EINVAL;
	if (len > 1 && s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9)
			return -EINVAL;
		if (__builtin_mul_overflow(v, (u128)10, &v) ||
		    __builtin_add_overflow(v, (u128)d, &v))
			return -ERANGE;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

size_t u128_format_dec(u128 v, char buf[U128_DEC_BYTES])
{
	char tmp[U128_DEC_BYTES];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + (unsigned)(v % 10));
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}
