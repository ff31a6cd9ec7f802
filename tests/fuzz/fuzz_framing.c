/*
 * fuzz_framing.c - libFuzzer harness for the strict reading of raw
 * request bytes (api/framing.h).
 *
 * The stream is read three ways: whole, byte by byte, and in chunks
 * whose sizes the first input byte picks.  The verdict must not depend
 * on how the bytes arrive (a client controls segmentation): the same
 * first bad offset, request and error, and the same state at the end.
 * A returned offset is never past what was given, and a line start is
 * never past the bad byte.
 */
#include "api/framing.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define INPUT_BYTES_MAX 8192

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

struct verdict {
	enum framing_state state;
	enum framing_error error;
	u32 bad_request, requests;
	size_t bad_at; /* offset in the whole stream, or SIZE_MAX */
};

static struct verdict read_in_chunks(const u8 *p, size_t n, size_t step)
{
	struct framing f;
	struct verdict v = {.bad_at = SIZE_MAX};
	size_t at = 0, line_at;

	framing_init(&f);
	while (at < n) {
		size_t len = n - at < step ? n - at : step;
		size_t r = framing_read(&f, p + at, len, &line_at);
		if (r > len)
			abort();
		if (r < len || f.state == FRAMING_BAD) {
			if (f.state != FRAMING_BAD)
				abort();
			if (line_at != SIZE_MAX && line_at > r)
				abort();
			v.bad_at = at + r;
			break;
		}
		at += len;
	}
	v.state = f.state;
	v.error = f.error;
	v.bad_request = f.bad_request;
	v.requests = f.requests;
	return v;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct verdict a, b, c;

	if (size < 1 || size > INPUT_BYTES_MAX)
		return 0;
	a = read_in_chunks(data + 1, size - 1, size);
	b = read_in_chunks(data + 1, size - 1, 1);
	c = read_in_chunks(data + 1, size - 1, (size_t)data[0] % 64 + 1);
	if (a.state != b.state || a.state != c.state || a.error != b.error ||
	    a.error != c.error || a.bad_request != b.bad_request ||
	    a.bad_request != c.bad_request || a.bad_at != b.bad_at ||
	    a.bad_at != c.bad_at || a.requests != b.requests ||
	    a.requests != c.requests)
		abort();
	return 0;
}
