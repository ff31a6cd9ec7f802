/*
 * fuzz_traceparent.c - libFuzzer harness for engine/trace.h's W3C
 * traceparent parser, whose answer becomes the parent of the server's
 * spans and the engine's.
 *
 * Asserts: an accepted header gives a valid context (a trace id and a
 * parent id not all zero) whose version-00 form parses back to the same
 * context; an input it accepts is at least 55 bytes and, when version
 * 00, exactly 55 with those bytes; a rejected one leaves the output as
 * it was.
 */
#include "engine/trace.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define INPUT_BYTES_MAX 1024

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char buf[INPUT_BYTES_MAX + 1];
	char back[TRACEPARENT_BYTES + 1];
	struct trace_context c, again;

	if (size > INPUT_BYTES_MAX)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	memset(&c, 0xa5, sizeof(c));
	if (!trace_parse_traceparent(buf, &c)) {
		for (size_t i = 0; i < sizeof(c.trace_id); i++)
			if (c.trace_id[i] != 0xa5)
				abort();
		if (c.flags != 0xa5)
			abort();
		return 0;
	}
	size_t n = strlen(buf);
	if (n < TRACEPARENT_BYTES || !trace_context_valid(&c))
		abort();
	trace_format_traceparent(&c, back);
	if (strlen(back) != TRACEPARENT_BYTES)
		abort();
	if (buf[0] == '0' && buf[1] == '0' &&
	    (n != TRACEPARENT_BYTES || strcmp(buf, back) != 0))
		abort();
	if (!trace_parse_traceparent(back, &again) ||
	    memcmp(&again, &c, sizeof(c)) != 0)
		abort();
	/* The rest of a later version's header is never part of it. */
	if (memcmp(buf + 2, back + 2, TRACEPARENT_BYTES - 2) != 0)
		abort();
	return 0;
}
