/*
 * fastjson.c - one-pass decoder for well-formed create requests (see
 * fastjson.h).
 *
 * A recursive-descent reader over a cursor, one function per JSON
 * construct of the request grammar (body, object, key, decimal string,
 * integer, flag list).  It knows the schema, so it never builds a value it
 * would then have to check: a key is looked up as it is read, a number is
 * range-checked as its digits go by, and each value lands at its offset in
 * the caller's record.  Every function answers false at the first byte it
 * does not expect; nothing is reported, because the full decoder will
 * read the body again and name the fault.  Loops are bounded by the
 * grammar: an object has at most one key per field, a flag list at most
 * one entry per flag, a batch at most events_max objects, and there is no
 * recursion into arbitrary values, hence no nesting to limit.
 */
#include "api/fastjson.h"
#include "api/codec_internal.h"
#include "core/u128.h"

#include <errno.h>
#include <string.h>

#include "banned.h"

/* Longest field or flag name that can match; a longer string is unknown
 * anyway, and the bound keeps the scan of a key short. */
#define NAME_BYTES_MAX 40
/* Digits of the longest u128 (2^128-1 has 39). */
#define U128_DIGITS_MAX (U128_DEC_BYTES - 1)
/* Up to this many digits a u64 cannot overflow (10^19 - 1 < 2^64), so the
 * common short value needs no 128-bit arithmetic. */
#define U64_SAFE_DIGITS 19
/* Digits of UINT32_MAX, 4294967295: the widest JSON integer field. */
#define UINT_DIGITS_MAX 10
/* The smallest event, "{}" plus its separating ",", in bytes. */
#define EVENT_BYTES_MIN 3

struct cursor {
	const char *p;	 /* next byte to read */
	const char *end; /* one past the last byte of the body */
};

/* JSON's four whitespace bytes; the first test rejects most bytes. */
static inline bool is_ws(char ch)
{
	return ch <= ' ' &&
	       (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t');
}

/* The bytes of every field and flag name: anything else (escapes, UTF-8,
 * control bytes) means the string is not a name we know. */
static inline bool is_name_byte(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '_';
}

static inline void skip_ws(struct cursor *c)
{
	while (c->p < c->end && is_ws(*c->p))
		c->p++;
}

/* Skip whitespace, then take ch if it comes next. */
static inline bool eat(struct cursor *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/*
 * A string made only of name bytes, after optional whitespace.  Returns
 * its length (0 when it is anything else) and its first byte in *s.
 */
static size_t name_string(struct cursor *c, const char **s)
{
	const char *start;

	if (!eat(c, '"'))
		return 0;
	start = c->p;
	while (c->p < c->end && is_name_byte(*c->p)) {
		if (c->p - start >= NAME_BYTES_MAX)
			return 0;
		c->p++;
	}
	if (c->p == c->end || *c->p != '"')
		return 0;
	*s = start;
	return (size_t)(c->p++ - start);
}

/*
 * Index of the field named s[0..len), or -1.  Clients usually send the
 * fields of every event in one order, so the search starts after the
 * previous key's field (hint) and mostly hits on the first compare.
 */
static int find_field(const struct codec__schema *sc, const char *s, size_t len,
		      size_t hint)
{
	for (size_t k = 0; k < sc->nfields; k++) {
		size_t i = hint + k < sc->nfields ? hint + k
						  : hint + k - sc->nfields;
		const struct codec__field *f = &sc->fields[i];

		if (f->name_len == len && memcmp(f->name, s, len) == 0)
			return (int)i;
	}
	return -1;
}

/* Bit of the flag named s[0..len), or -1 (s holds no NUL: name bytes). */
static int find_flag(const char *const *names, const char *s, size_t len)
{
	for (int bit = 0; bit < CODEC__FLAG_BITS; bit++)
		if (names[bit] && strncmp(names[bit], s, len) == 0 &&
		    names[bit][len] == '\0')
			return bit;
	return -1;
}

/*
 * A canonical decimal string of at most max (u128.h: digits only, no
 * leading zero).  Values of up to 19 digits are read here in a u64, in the
 * same pass that finds the closing quote; longer ones go to the strict
 * u128_parse_dec.
 */
static bool dec_string(struct cursor *c, u128 max, u128 *out)
{
	const char *s;
	size_t len;
	u64 v = 0;
	unsigned d;

	if (!eat(c, '"'))
		return false;
	s = c->p;
	/* v wraps past 19 digits (unsigned, defined); it is unused then. */
	while (c->p < c->end && (d = (unsigned char)*c->p - '0') <= 9) {
		v = v * 10 + d;
		if (++c->p - s > U128_DIGITS_MAX)
			return false;
	}
	if (c->p == c->end || *c->p != '"')
		return false;
	len = (size_t)(c->p++ - s);
	if (len == 0 || (len > 1 && s[0] == '0'))
		return false;
	if (len > U64_SAFE_DIGITS)
		return u128_parse_dec(s, len, max, out) == 0;
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* A JSON integer from 0 to max: digits only, so no sign, fraction or
 * exponent (a '.' or 'e' after it is refused by the caller's next token). */
static bool json_uint(struct cursor *c, u32 max, u32 *out)
{
	const char *s;
	u64 v = 0;
	unsigned d;

	skip_ws(c);
	s = c->p;
	while (c->p < c->end && (d = (unsigned char)*c->p - '0') <= 9) {
		v = v * 10 + d;
		if (++c->p - s > UINT_DIGITS_MAX)
			return false;
	}
	if (c->p == s || (c->p - s > 1 && s[0] == '0') || v > max)
		return false;
	*out = (u32)v;
	return true;
}

/* An array of distinct flag names, possibly empty. */
static bool flag_list(struct cursor *c, const char *const *names, u16 *out)
{
	unsigned flags = 0;

	if (!eat(c, '['))
		return false;
	if (!eat(c, ']')) {
		do {
			const char *s = NULL;
			size_t len = name_string(c, &s);
			int bit = len ? find_flag(names, s, len) : -1;

			if (bit < 0 || (flags & (1u << bit)))
				return false;
			flags |= 1u << bit;
		} while (eat(c, ','));
		if (!eat(c, ']'))
			return false;
	}
	*out = (u16)flags;
	return true;
}

/* The value of field f, stored at its offset in rec. */
static bool value(struct cursor *c, const struct codec__schema *sc,
		  const struct codec__field *f, u8 *rec)
{
	u8 *at = rec + f->offset;

	switch (f->type) {
	case CODEC__U128: {
		u128 v;
		if (!dec_string(c, U128_MAX, &v))
			return false;
		memcpy(at, &v, sizeof(v));
		return true;
	}
	case CODEC__U64: {
		u128 v;
		u64 w;
		if (!dec_string(c, UINT64_MAX, &v))
			return false;
		w = (u64)v;
		memcpy(at, &w, sizeof(w));
		return true;
	}
	case CODEC__U32: {
		u32 v;
		if (!json_uint(c, UINT32_MAX, &v))
			return false;
		memcpy(at, &v, sizeof(v));
		return true;
	}
	case CODEC__U16: {
		u32 v;
		u16 w;
		if (!json_uint(c, UINT16_MAX, &v))
			return false;
		w = (u16)v;
		memcpy(at, &w, sizeof(w));
		return true;
	}
	case CODEC__FLAGS: {
		u16 v;
		if (!flag_list(c, sc->flag_names, &v))
			return false;
		memcpy(at, &v, sizeof(v));
		return true;
	}
	default: return false;
	}
}

/* One event object into rec (zeroed first: a missing field is 0).  A
 * per-object mask of the fields seen refuses a repeated key. */
static bool object(struct cursor *c, const struct codec__schema *sc, u8 *rec)
{
	u32 seen = 0;
	size_t hint = 0;

	memset(rec, 0, sc->record_bytes);
	if (!eat(c, '{'))
		return false;
	if (eat(c, '}'))
		return true;
	do {
		const char *key = NULL;
		size_t len = name_string(c, &key);
		int i = len ? find_field(sc, key, len, hint) : -1;

		if (i < 0 || (seen & (1u << i)))
			return false;
		seen |= 1u << i;
		hint = (size_t)i + 1;
		if (!eat(c, ':') || !value(c, sc, &sc->fields[i], rec))
			return false;
	} while (eat(c, ','));
	return eat(c, '}');
}

u32 fastjson_events_max(const char *body, size_t len)
{
	struct cursor c = {body, body + len};
	size_t n;

	skip_ws(&c);
	if (c.p == c.end)
		return 0;
	if (*c.p == '{')
		return 1;
	if (*c.p != '[')
		return 0;
	n = len / EVENT_BYTES_MIN;
	return n < BATCH_EVENTS_MAX ? (u32)n : BATCH_EVENTS_MAX;
}

int fastjson_decode(enum codec_kind kind, const char *body, size_t len,
		    void *events, u32 events_max, u32 *count, bool *is_array)
{
	struct cursor c = {body, body + len};
	const struct codec__schema *sc;
	u8 *rec = events;
	bool arr = false;
	u32 n = 0;

	if (kind != CODEC_ACCOUNT && kind != CODEC_TRANSFER)
		return -ENOTSUP;
	sc = &codec__schemas[kind];
	if (eat(&c, '[')) {
		arr = true;
		/* "[]" fails in object(): an empty batch is the full
		 * decoder's to refuse. */
		do {
			if (n == events_max || n == BATCH_EVENTS_MAX ||
			    !object(&c, sc, rec + (size_t)n * sc->record_bytes))
				return -ENOTSUP;
			n++;
		} while (eat(&c, ','));
		if (!eat(&c, ']'))
			return -ENOTSUP;
	} else {
		if (events_max < 1 || !object(&c, sc, rec))
			return -ENOTSUP;
		n = 1;
	}
	skip_ws(&c);
	if (c.p != c.end)
		return -ENOTSUP;
	*count = n;
	*is_array = arr;
	return 0;
}
