/*
 * u128.h - 128-bit unsigned integers: decimal text and checked arithmetic.
 *
 * In JSON, 128- and 64-bit values travel as decimal strings, because
 * JavaScript numbers lose precision past 2^53.  Parsing is strict: ASCII
 * digits only, no sign, no spaces, no leading zeros (except "0" itself),
 * at most 39 digits, value <= max.
 */
#ifndef TPW_CORE_U128_H
#define TPW_CORE_U128_H

#include "core/types.h"

/* Longest decimal rendering of a u128
 * ("340282366920938463463374607431768211455") plus the terminating NUL. */
#define U128_DEC_BYTES 40

/* Parse s[0..len) into *out, rejecting values above max.
 * Returns 0, -EINVAL (not a canonical decimal) or -ERANGE (> max). */
int u128_parse_dec(const char *s, size_t len, u128 max, u128 *out);

/* Write the decimal form of v and a NUL into buf; returns the length. */
size_t u128_format_dec(u128 v, char buf[U128_DEC_BYTES]);

/* a + b into *out; returns false on overflow (and leaves *out unchanged). */
static inline bool u128_add(u128 a, u128 b, u128 *out)
{
	u128 r;
	if (__builtin_add_overflow(a, b, &r))
		return false;
	*out = r;
	return true;
}

/* a - b into *out; returns false when b > a. */
static inline bool u128_sub(u128 a, u128 b, u128 *out)
{
	if (b > a)
		return false;
	*out = a - b;
	return true;
}

static inline u128 u128_min(u128 a, u128 b)
{
	return a < b ? a : b;
}

#endif
