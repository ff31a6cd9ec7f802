/*
 * fuzz_json.c - libFuzzer harness for the HTTP API's request decoders:
 * the create-request decoder for accounts and for transfers, and the
 * query-string parser.  Every input goes through all three.
 *
 * Beyond "does not crash": an accepted body must re-encode and decode to
 * the same records (the encoder and the decoder agree), and a refusal must
 * carry a problem and a NUL-terminated path and detail.
 */
#include "api/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_refusal(const struct codec_error *err)
{
	if (err->problem >= PROBLEM_COUNT ||
	    !memchr(err->path, '\0', sizeof(err->path)) ||
	    !memchr(err->detail, '\0', sizeof(err->detail)))
		abort();
}

static void round_trip(enum codec_kind kind, const void *events, u32 n)
{
	struct wbuf b = WBUF_INIT((size_t)n * 2048 + 16);
	struct codec_error err;
	void *again = NULL;
	bool arr;
	u32 m;

	wbuf_putc(&b, '[');
	for (u32 i = 0; i < n; i++) {
		if (i)
			wbuf_putc(&b, ',');
		if (kind == CODEC_ACCOUNT)
			codec_write_account(&b,
					    (const struct account *)events + i);
		else
			codec_write_transfer(
				&b, (const struct transfer *)events + i,
				PENDING_NONE);
	}
	wbuf_putc(&b, ']');
	if (b.err)
		abort();
	if (codec_decode_events(kind, b.data, b.len, &again, &m, &arr, &err))
		abort();
	if (m != n || !arr || memcmp(again, events, (size_t)n * 128) != 0)
		abort();
	free(again);
	wbuf_release(&b);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const enum codec_kind kinds[] = {CODEC_ACCOUNT, CODEC_TRANSFER};
	struct account_filter f;
	struct codec_error err;

	for (size_t k = 0; k < 2; k++) {
		void *events = NULL;
		bool arr;
		u32 n;
		int r = codec_decode_events(kinds[k], (const char *)data, size,
					    &events, &n, &arr, &err);
		if (r == 0) {
			if (n == 0 || n > BATCH_EVENTS_MAX)
				abort();
			round_trip(kinds[k], events, n);
			free(events);
		} else if (r == -EINVAL) {
			check_refusal(&err);
		} else if (r != -ENOMEM) {
			abort();
		}
	}
	memset(&f, 0xa5, sizeof(f));
	if (codec_parse_query((const char *)data, size, &f, &err) == 0) {
		if (f.limit == 0 || f.limit > QUERY_LIMIT_MAX)
			abort();
	} else {
		check_refusal(&err);
	}
	return 0;
}
