/*
 * fastjson.h - the fast path of the create-request decoder.
 *
 * codec_decode_events() builds a jansson tree and then validates it: exact
 * errors, but several times the cost of the decode itself on a batch of
 * 8190 transfers.  fastjson decodes, in one pass and without allocating,
 * exactly the well-formed subset of request bodies:
 *
 *   - a JSON object, or an array of 1..BATCH_EVENTS_MAX objects;
 *   - keys that are field names of the kind (codec_internal.h), each at
 *     most once per object;
 *   - 128- and 64-bit fields as canonical decimal strings (u128.h rules);
 *   - 32- and 16-bit fields as JSON integers in range, without sign,
 *     fraction, exponent or leading zero;
 *   - `flags` as an array of known flag names, each at most once;
 *   - JSON whitespace (space, tab, CR, LF) wherever JSON allows it.
 *
 * Everything else - an escape or a byte >= 0x80 inside a string, unknown or
 * repeated keys or flags, wrong types, null, out-of-range values, trailing
 * bytes, truncation, too many events, [] - is "not handled" (-ENOTSUP):
 * the caller then runs the full decoder, which gives the precise error.
 * The contract is one-sided: whatever fastjson accepts, the full decoder
 * accepts with the same records, count and shape (checked by
 * tests/fuzz/fuzz_fastjson.c and tests/unit/test_api_fastjson.c); what it
 * declines may still be valid.
 *
 * Thread-safe; no state between calls.
 */
#ifndef TPW_API_FASTJSON_H
#define TPW_API_FASTJSON_H

#include "api/codec.h"

/*
 * How many records a caller must provide for body: 1 when the body is an
 * object, else an upper bound on the events it can hold (every event
 * takes at least 3 bytes, "{},"), at most BATCH_EVENTS_MAX.  0 when the
 * body is too short to be handled.  Costs a look at the leading bytes.
 */
u32 fastjson_events_max(const char *body, size_t len);

/*
 * Decode body as a kind create request into events[0..events_max).
 * Returns 0 with *count (1..events_max) records written and *is_array
 * set, or -ENOTSUP when the body is outside the subset above (or needs
 * more than events_max records); then events, *count and *is_array hold
 * nothing meaningful.  Records are zeroed before their fields are set,
 * so a missing field is 0, as in the full decoder.
 */
int fastjson_decode(enum codec_kind kind, const char *body, size_t len,
		    void *events, u32 events_max, u32 *count, bool *is_array);

#endif
