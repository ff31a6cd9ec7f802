/*
 * fuzz_fastjson.c - differential libFuzzer harness: the fast path of the
 * create-request decoder (fastjson.c) against the full jansson decoder.
 *
 * For every input and both kinds:
 *   - when fastjson accepts, the full decoder accepts too, with the same
 *     count, the same shape (object or array) and byte-identical records;
 *     so when the full decoder refuses, fastjson has refused as well;
 *   - fastjson writes only inside the records it was given (the buffer is
 *     exactly fastjson_events_max() records, so ASan sees any overrun);
 *   - codec_decode_events, the fast path wired in front of the full
 *     decoder, answers exactly as the full decoder alone: same return,
 *     records, or problem, path and detail.
 */
#include "api/codec_internal.h"
#include "api/fastjson.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The wired decoder must answer as the full decoder did. */
static void check_same_answer(enum codec_kind kind, const char *body,
			      size_t len, int full_r, const void *full,
			      u32 full_n, bool full_arr,
			      const struct codec_error *full_err)
{
	struct codec_error err;
	void *ev = NULL;
	bool arr;
	u32 n;
	int r = codec_decode_events(kind, body, len, &ev, &n, &arr, &err);

	if (r != full_r)
		abort();
	if (r == 0 && (n != full_n || arr != full_arr ||
		       memcmp(ev, full, (size_t)n * 128) != 0))
		abort();
	if (r == -EINVAL && (err.problem != full_err->problem ||
			     strcmp(err.path, full_err->path) != 0 ||
			     strcmp(err.detail, full_err->detail) != 0))
		abort();
	free(ev);
}

static void one_kind(enum codec_kind kind, const char *body, size_t len)
{
	u32 cap = fastjson_events_max(body, len);
	size_t rec_bytes = codec__schemas[kind].record_bytes;
	struct codec_error err;
	void *fast = NULL, *full = NULL;
	u32 fast_n = 0, full_n = 0;
	bool fast_arr = false, full_arr = false;
	int fast_r = -ENOTSUP, full_r;

	if (cap > BATCH_EVENTS_MAX)
		abort();
	if (cap) {
		fast = malloc((size_t)cap * rec_bytes);
		if (!fast)
			abort();
		fast_r = fastjson_decode(kind, body, len, fast, cap, &fast_n,
					 &fast_arr);
	}
	if (fast_r != 0 && fast_r != -ENOTSUP)
		abort();
	full_r = codec__decode_events_full(kind, body, len, &full, &full_n,
					   &full_arr, &err);
	if (fast_r == 0) {
		if (full_r != 0 || fast_n != full_n || fast_arr != full_arr ||
		    fast_n == 0 || fast_n > cap ||
		    memcmp(fast, full, (size_t)fast_n * rec_bytes) != 0)
			abort();
	}
	check_same_answer(kind, body, len, full_r, full, full_n, full_arr,
			  &err);
	free(fast);
	free(full);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	one_kind(CODEC_ACCOUNT, (const char *)data, size);
	one_kind(CODEC_TRANSFER, (const char *)data, size);
	return 0;
}
