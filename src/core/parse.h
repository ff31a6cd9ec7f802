/*
 * parse.h - the one home of the text readers every layer shares: decimal
 * numbers, hex digits and standard base64.  Pure: no I/O, no allocation.
 *
 * Two decimal readings exist, and each caller picks the one its format
 * names:
 *   - canonical (parse_u64, parse_u64_n, parse_u32): "0" or a non-zero
 *     digit then digits; no sign, no space, no leading zero, no overflow,
 *     value <= max.  Every number the project itself writes or accepts as
 *     an argument (flags, settings, query parameters, checkpoint sizes,
 *     record lengths) reads this way, so one value has one spelling.
 *   - digits (parse_digits): one or more ASCII digits, leading zeros
 *     allowed, no overflow.  For fixed-width zero-padded fields (segment
 *     and snapshot names) and HTTP's Content-Length (RFC 9110: 1*DIGIT).
 * Each returns 0, -EINVAL (not the form) or -ERANGE (over max / overflow)
 * and writes *out only on success.
 */
#ifndef TPW_CORE_PARSE_H
#define TPW_CORE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Canonical decimal s[0..len), value <= max. */
int parse_u64_n(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Canonical decimal: the whole NUL-terminated s (NULL is -EINVAL). */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Canonical decimal s[0..len) into a u32, value <= max. */
int parse_u32_n(const char *s, size_t len, uint32_t max, uint32_t *out);

/* A duration in seconds: canonical decimal, then optionally one unit
 * letter (s, m, h, d, w: seconds, minutes, hours, days, weeks): "0",
 * "90", "30m", "7d".  The seconds must be <= max_s. */
int parse_duration_s(const char *s, uint64_t max_s, uint64_t *out);

/* One or more digits s[0..len), leading zeros allowed; -ERANGE past
 * UINT64_MAX. */
int parse_digits(const char *s, size_t len, uint64_t *out);

/* The value of one hex digit, either case (RFC 3986 percent-encoding and
 * C2SP key hashes accept both), else -1. */
int parse_hex_digit(char c);

/* The value of one lowercase hex digit, else -1 (W3C trace context). */
int parse_hex_digit_lower(char c);

/* Canonical standard base64 (RFC 4648 section 4) of s[0..len) into
 * out[0..cap): the alphabet A-Z a-z 0-9 + /, length a multiple of 4, '='
 * padding only at the end, the unused bits of the last digit zero; no
 * whitespace, no empty text.  So one value has exactly one spelling.
 * Returns the decoded length, or -1 (not canonical, or more than cap). */
long parse_base64(const char *s, size_t len, uint8_t *out, size_t cap);

#endif
