/*
 * wbuf.h - a growable output buffer with a hard cap, and the JSON writer
 * used for every response body.
 *
 * Responses are written straight into one buffer rather than built as
 * jansson trees: a reply to an 8190-event batch is then one allocation
 * (amortised doubling) and no per-value objects.  The buffer never grows
 * past `max` bytes; a write that would is dropped and the error sticks
 * (`b->err` becomes -ENOMEM or -E2BIG), so callers write a whole document
 * and check once at the end, as with git's strbuf.
 *
 * Ownership: the buffer owns `data` until wbuf_detach() hands it to the
 * caller (who then frees it with free()).  wbuf_release() frees it and
 * leaves an empty buffer that can be reused.  Not thread-safe.
 */
#ifndef TPW_API_WBUF_H
#define TPW_API_WBUF_H

#include "core/types.h"

#include <string.h>

struct wbuf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* hard cap on len */
	int err;    /* 0, or the first error (sticky) */
};

#define WBUF_INIT(max_bytes)                                                   \
	{                                                                      \
		.data = NULL, .len = 0, .cap = 0, .max = (max_bytes), .err = 0 \
	}

void wbuf_init(struct wbuf *b, size_t max);
void wbuf_release(struct wbuf *b);
/* Hand the bytes to the caller (never NULL unless err is set); the buffer
 * is left empty. */
char *wbuf_detach(struct wbuf *b, size_t *len);

/* Make room for n more bytes; returns 0 or the sticky error. */
int wbuf__grow(struct wbuf *b, size_t n);

static inline int wbuf_reserve(struct wbuf *b, size_t n)
{
	if (b->err)
		return b->err;
	if (b->cap - b->len >= n)
		return 0;
	return wbuf__grow(b, n);
}

static inline void wbuf_put(struct wbuf *b, const void *s, size_t n)
{
	if (wbuf_reserve(b, n) == 0) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
	}
}

static inline void wbuf_putc(struct wbuf *b, char c)
{
	if (wbuf_reserve(b, 1) == 0)
		b->data[b->len++] = c;
}

/* A NUL-terminated literal or string, copied as is (no escaping). */
static inline void wbuf_puts(struct wbuf *b, const char *s)
{
	wbuf_put(b, s, strlen(s));
}

/* Unsigned decimal, unquoted (JSON number or Prometheus value). */
void wbuf_put_u64(struct wbuf *b, u64 v);
/* Decimal in double quotes: how 64- and 128-bit values travel in JSON. */
void wbuf_put_u128_str(struct wbuf *b, u128 v);
/* A JSON string with quotes.  Control characters become \u00XX; bytes
 * >= 0x80 become '?' so that text from a client (possibly invalid
 * UTF-8) can never make our output invalid JSON. */
void wbuf_put_json_str(struct wbuf *b, const char *s, size_t n);
/* The same for text the server made itself and knows to be valid UTF-8
 * (a signed note): bytes >= 0x80 pass through, so signatures still
 * verify after a JSON round trip. */
void wbuf_put_json_utf8(struct wbuf *b, const char *s, size_t n);

#endif
