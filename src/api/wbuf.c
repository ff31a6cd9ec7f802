/*
 * wbuf.c - growable capped output buffer and JSON value writers (see
 * wbuf.h).
 */
#include "api/wbuf.h"
#include "core/u128.h"

#include <errno.h>
#include <stdlib.h>

#include "banned.h"

void wbuf_init(struct wbuf *b, size_t max)
{
	*b = (struct wbuf)WBUF_INIT(max);
}

void wbuf_release(struct wbuf *b)
{
	free(b->data);
	wbuf_init(b, b->max);
}

char *wbuf_detach(struct wbuf *b, size_t *len)
{
	char *d = b->data;

	*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

int wbuf__grow(struct wbuf *b, size_t n)
{
	size_t want, cap;
	char *d;

	if (b->err)
		return b->err;
	if (n > b->max - b->len) {
		b->err = -E2BIG;
		return b->err;
	}
	want = b->len + n;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	if (cap > b->max)
		cap = b->max;
	d = realloc(b->data, cap);
	if (!d) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void wbuf_put_u64(struct wbuf *b, u64 v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wbuf_put(b, tmp + sizeof(tmp) - n, n);
}

void wbuf_put_u128_str(struct wbuf *b, u128 v)
{
	char tmp[U128_DEC_BYTES + 2];
	size_t n;

	/* Most values fit in 64 bits: skip the slow 128-bit division. */
	if (v <= UINT64_MAX) {
		wbuf_putc(b, '"');
		wbuf_put_u64(b, (u64)v);
		wbuf_putc(b, '"');
		return;
	}
	tmp[0] = '"';
	n = u128_format_dec(v, tmp + 1);
	tmp[n + 1] = '"';
	wbuf_put(b, tmp, n + 2);
}

static void put_json_string(struct wbuf *b, const char *s, size_t n,
			    bool keep_utf8)
{
	static const char hex[] = "0123456789abcdef";
	size_t out = 2;

	/* Size it exactly first: reserving the worst case (6 bytes per byte)
	 * would trip the cap of a tightly sized buffer. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out += c == '"' || c == '\\'   ? 2
		       : c < 0x20 || c == 0x7f ? 6
					       : 1;
	}
	if (wbuf_reserve(b, out))
		return;
	char *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			*o++ = '\\';
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		} else if (c >= 0x80 && !keep_utf8) {
			*o++ = '?';
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
}

void wbuf_put_json_str(struct wbuf *b, const char *s, size_t n)
{
	put_json_string(b, s, n, false);
}

void wbuf_put_json_utf8(struct wbuf *b, const char *s, size_t n)
{
	put_json_string(b, s, n, true);
}
