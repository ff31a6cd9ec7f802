/*
 * test_api_fastjson.c - the fast path of the create-request decoder: each
 * accepted shape decodes to the expected records; each near miss is "not
 * handled" (and codec_decode_events then answers as the full decoder);
 * random valid batches, written with and without whitespace, keys in
 * random order and fields left out, decode the same through the fast path,
 * the full decoder and the wired codec_decode_events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "api/codec_internal.h"
#include "api/fastjson.h"
#include "api/wbuf.h"
#include "core/u128.h"

#include "banned.h"

#define U128_MAX_DEC "340282366920938463463374607431768211455"
#define U64_MAX_DEC  "18446744073709551615"
/* Random batches: how many, and at most how many events each. */
#define RANDOM_BATCHES	  300
#define RANDOM_EVENTS_MAX 40

/* Fast-decode a NUL-terminated body; returns fastjson_decode's answer
 * with the records in a malloc()ed *ev (caller frees). */
static int fast(enum codec_kind k, const char *body, void **ev, u32 *n,
		bool *arr)
{
	size_t len = strlen(body);
	u32 cap = fastjson_events_max(body, len);

	*ev = NULL;
	if (cap == 0)
		return -ENOTSUP;
	*ev = malloc((size_t)cap * 128);
	assert_non_null(*ev);
	return fastjson_decode(k, body, len, *ev, cap, n, arr);
}

/* Both decoders (and the wired one) accept body with the same records;
 * returns the fast records (caller frees). */
static void *expect_same(enum codec_kind k, const char *body, size_t len,
			 u32 want_n, bool want_arr)
{
	struct codec_error err;
	void *f = NULL, *full = NULL, *wired = NULL;
	u32 fn = 0, n = 0, wn = 0;
	bool farr = !want_arr, arr, warr;
	u32 cap = fastjson_events_max(body, len);

	assert_true(cap >= want_n);
	f = malloc((size_t)cap * 128);
	assert_non_null(f);
	if (fastjson_decode(k, body, len, f, cap, &fn, &farr) != 0)
		fail_msg("fast path declined: %.300s", body);
	assert_int_equal(
		codec__decode_events_full(k, body, len, &full, &n, &arr, &err),
		0);
	assert_int_equal(
		codec_decode_events(k, body, len, &wired, &wn, &warr, &err), 0);
	assert_int_equal(fn, want_n);
	assert_int_equal(n, want_n);
	assert_int_equal(wn, want_n);
	assert_true(farr == want_arr && arr == want_arr && warr == want_arr);
	assert_memory_equal(f, full, (size_t)n * 128);
	assert_memory_equal(f, wired, (size_t)n * 128);
	free(full);
	free(wired);
	return f;
}

static void test_account_with_every_field_and_flag(void **state)
{
	const char *body =
		"{\"id\":\"1\",\"debits_pending\":\"2\",\"debits_posted\":"
		"\"3\",\"credits_pending\":\"4\",\"credits_posted\":\"5\","
		"\"user_data_128\":\"" U128_MAX_DEC "\",\"user_data_64\":"
		"\"" U64_MAX_DEC "\",\"user_data_32\":4294967295,\"ledger\":"
		"7,\"code\":65535,\"flags\":[\"closed\",\"linked\","
		"\"debits_must_not_exceed_credits\","
		"\"credits_must_not_exceed_debits\",\"history\"],"
		"\"timestamp\":\"9\"}";
	struct account *a;

	(void)state;
	a = expect_same(CODEC_ACCOUNT, body, strlen(body), 1, false);
	assert_true(a->id == 1 && a->debits_pending == 2 &&
		    a->debits_posted == 3 && a->credits_pending == 4 &&
		    a->credits_posted == 5 && a->user_data_128 == U128_MAX);
	assert_true(a->user_data_64 == UINT64_MAX);
	assert_int_equal(a->user_data_32, UINT32_MAX);
	assert_int_equal(a->ledger, 7);
	assert_int_equal(a->code, 65535);
	assert_int_equal(a->flags, ACCOUNT_FLAGS_KNOWN);
	assert_int_equal(a->timestamp, 9);
	assert_int_equal(a->reserved, 0);
	free(a);
}

static void test_transfer_with_every_field_and_flag(void **state)
{
	const char *body =
		"[{\"id\":\"" U128_MAX_DEC "\",\"debit_account_id\":"
		"\"10000000000000000000\",\"credit_account_id\":"
		"\"9999999999999999999\",\"amount\":\"100\",\"pending_id\":"
		"\"0\",\"user_data_128\":\"12\",\"user_data_64\":\"13\","
		"\"user_data_32\":14,\"timeout\":15,\"ledger\":16,\"code\":17,"
		"\"flags\":[\"linked\",\"pending\",\"post_pending_transfer\","
		"\"void_pending_transfer\",\"balancing_debit\","
		"\"balancing_credit\",\"closing_debit\",\"closing_credit\"],"
		"\"timestamp\":\"0\"}]";
	struct transfer *t;

	(void)state;
	t = expect_same(CODEC_TRANSFER, body, strlen(body), 1, true);
	assert_true(t->id == U128_MAX);
	assert_true(t->debit_account_id == (u128)10000000000000000000ull);
	assert_true(t->credit_account_id == (u128)9999999999999999999ull);
	assert_true(t->amount == 100 && t->pending_id == 0 &&
		    t->user_data_128 == 12);
	assert_int_equal(t->user_data_64, 13);
	assert_int_equal(t->user_data_32, 14);
	assert_int_equal(t->timeout, 15);
	assert_int_equal(t->ledger, 16);
	assert_int_equal(t->code, 17);
	assert_int_equal(t->flags, TRANSFER_FLAGS_KNOWN);
	assert_int_equal(t->timestamp, 0);
	free(t);
}

static void test_whitespace_empty_objects_and_batches(void **state)
{
	const char *ws = " \t\r\n[ {\n\t\"id\" : \"5\" ,\r\n \"amount\":\t\"1\""
			 ",  \"flags\" : [ \"pending\" , \"linked\" ] ,"
			 "\"timeout\" : 30 }\n, { } ,{\"flags\":[]}]\n ";
	struct transfer *t;
	struct account *a;
	char *big;

	(void)state;
	t = expect_same(CODEC_TRANSFER, ws, strlen(ws), 3, true);
	assert_true(t[0].id == 5 && t[0].amount == 1);
	assert_int_equal(t[0].flags, TRANSFER_PENDING | TRANSFER_LINKED);
	assert_int_equal(t[0].timeout, 30);
	assert_true(t[1].id == 0 && t[2].flags == 0);
	free(t);

	a = expect_same(CODEC_ACCOUNT, "{}", 2, 1, false);
	assert_true(a->id == 0 && a->flags == 0);
	free(a);

	/* The largest batch: 8190 events. */
	big = malloc(BATCH_EVENTS_MAX * 3 + 2);
	assert_non_null(big);
	big[0] = '[';
	for (u32 i = 0; i < BATCH_EVENTS_MAX; i++)
		memcpy(big + 1 + 3 * i, "{},", 3);
	big[BATCH_EVENTS_MAX * 3] = ']';
	big[BATCH_EVENTS_MAX * 3 + 1] = '\0';
	free(expect_same(CODEC_ACCOUNT, big, strlen(big), BATCH_EVENTS_MAX,
			 true));
	free(big);
}

/* Bodies outside the subset, each for one or both kinds. */
static const struct {
	enum codec_kind kind;
	const char *body;
} near_misses[] = {
	{CODEC_TRANSFER, ""},
	{CODEC_TRANSFER, "   "},
	{CODEC_TRANSFER, "[]"},
	{CODEC_TRANSFER, "[ ]"},
	{CODEC_TRANSFER, "\"1\""},
	{CODEC_TRANSFER, "1"},
	{CODEC_TRANSFER, "null"},
	{CODEC_TRANSFER, "[null]"},
	{CODEC_TRANSFER, "[1]"},
	{CODEC_TRANSFER, "[[{}]]"},
	{CODEC_TRANSFER, "[[[[[{}]]]]]"},
	{CODEC_TRANSFER, "{\"\\u0069d\":\"1\"}"},
	{CODEC_TRANSFER, "{\"id\":\"\\u0031\"}"},
	{CODEC_TRANSFER, "{\"flags\":[\"linke\\u0064\"]}"},
	{CODEC_TRANSFER, "{\"id\xc3\xa9\":\"1\"}"},
	{CODEC_TRANSFER, "{\"id\":\"1\xc3\xa9\"}"},
	{CODEC_TRANSFER, "{\"id\":\"1\x01\"}"},
	{CODEC_TRANSFER, "{\"idx\":\"1\"}"},
	{CODEC_TRANSFER, "{\"ID\":\"1\"}"},
	{CODEC_TRANSFER, "{\"\":\"1\"}"},
	{CODEC_TRANSFER, "{\"debits_pending\":\"1\"}"},
	{CODEC_ACCOUNT, "{\"amount\":\"1\"}"},
	{CODEC_ACCOUNT, "{\"timeout\":1}"},
	{CODEC_TRANSFER, "{\"id\":\"1\",\"id\":\"1\"}"},
	{CODEC_TRANSFER, "[{\"code\":1},{\"code\":1,\"code\":2}]"},
	{CODEC_TRANSFER, "{\"flags\":[\"linked\",\"linked\"]}"},
	{CODEC_TRANSFER, "{\"flags\":[\"imported\"]}"},
	{CODEC_ACCOUNT, "{\"flags\":[\"pending\"]}"},
	{CODEC_TRANSFER, "{\"flags\":[\"\"]}"},
	{CODEC_TRANSFER, "{\"flags\":[1]}"},
	{CODEC_TRANSFER, "{\"flags\":\"linked\"}"},
	{CODEC_TRANSFER, "{\"flags\":[\"linked\",]}"},
	{CODEC_TRANSFER, "{\"flags\":null}"},
	{CODEC_TRANSFER, "{\"id\":1}"},
	{CODEC_TRANSFER, "{\"user_data_64\":7}"},
	{CODEC_TRANSFER, "{\"ledger\":\"1\"}"},
	{CODEC_TRANSFER, "{\"id\":null}"},
	{CODEC_TRANSFER, "{\"id\":true}"},
	{CODEC_TRANSFER, "{\"id\":\"\"}"},
	{CODEC_TRANSFER, "{\"id\":\"01\"}"},
	{CODEC_TRANSFER, "{\"id\":\"00\"}"},
	{CODEC_TRANSFER, "{\"id\":\"-1\"}"},
	{CODEC_TRANSFER, "{\"id\":\"+1\"}"},
	{CODEC_TRANSFER, "{\"id\":\" 1\"}"},
	{CODEC_TRANSFER, "{\"id\":\"1 \"}"},
	{CODEC_TRANSFER, "{\"id\":\"1e3\"}"},
	{CODEC_TRANSFER,
	 "{\"id\":\"340282366920938463463374607431768211456\"}"},
	{CODEC_TRANSFER,
	 "{\"id\":\"0000000000000000000000000000000000000001\"}"},
	{CODEC_TRANSFER,
	 "{\"id\":\"1000000000000000000000000000000000000000\"}"},
	{CODEC_TRANSFER, "{\"user_data_64\":\"18446744073709551616\"}"},
	{CODEC_TRANSFER, "{\"timestamp\":\"99999999999999999999\"}"},
	{CODEC_TRANSFER, "{\"code\":65536}"},
	{CODEC_TRANSFER, "{\"ledger\":4294967296}"},
	{CODEC_TRANSFER, "{\"ledger\":99999999999}"},
	{CODEC_TRANSFER, "{\"code\":01}"},
	{CODEC_TRANSFER, "{\"code\":-0}"},
	{CODEC_TRANSFER, "{\"code\":-1}"},
	{CODEC_TRANSFER, "{\"code\":1.0}"},
	{CODEC_TRANSFER, "{\"code\":1e2}"},
	{CODEC_TRANSFER, "{\"code\":1E2}"},
	{CODEC_TRANSFER, "{\"code\":}"},
	{CODEC_TRANSFER, "{\"code\" 1}"},
	{CODEC_TRANSFER, "{\"code\":1 2}"},
	{CODEC_TRANSFER, "{\"id\":\"1\",}"},
	{CODEC_TRANSFER, "{,\"id\":\"1\"}"},
	{CODEC_TRANSFER, "[{\"id\":\"1\"},]"},
	{CODEC_TRANSFER, "[{\"id\":\"1\"}"},
	{CODEC_TRANSFER, "[{\"id\":\"1\""},
	{CODEC_TRANSFER, "{\"id\":\"1"},
	{CODEC_TRANSFER, "{\"id\":\"1\"}x"},
	{CODEC_TRANSFER, "{\"id\":\"1\"} {}"},
	{CODEC_TRANSFER, "{\"id\":\"1\"}\f"},
	{CODEC_TRANSFER, "\xef\xbb\xbf{}"},
	{CODEC_TRANSFER, "{'id':'1'}"},
};

static void test_near_misses_are_not_handled(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(near_misses) / sizeof(near_misses[0]);
	     i++) {
		enum codec_kind k = near_misses[i].kind;
		const char *body = near_misses[i].body;
		struct codec_error e1, e2;
		void *ev = NULL, *e_full = NULL, *e_wired = NULL;
		u32 n, n1 = 0, n2 = 0;
		bool arr, a1, a2;
		int r1, r2;

		if (fast(k, body, &ev, &n, &arr) != -ENOTSUP)
			fail_msg("fast path accepted: %s", body);
		free(ev);
		/* The wired decoder answers as the full one, errors and all. */
		r1 = codec__decode_events_full(k, body, strlen(body), &e_full,
					       &n1, &a1, &e1);
		r2 = codec_decode_events(k, body, strlen(body), &e_wired, &n2,
					 &a2, &e2);
		assert_int_equal(r1, r2);
		if (r1 == 0) {
			assert_int_equal(n1, n2);
			assert_memory_equal(e_full, e_wired, (size_t)n1 * 128);
		} else {
			assert_int_equal(e1.problem, e2.problem);
			assert_string_equal(e1.path, e2.path);
			assert_string_equal(e1.detail, e2.detail);
		}
		free(e_full);
		free(e_wired);
	}
}

static void test_more_events_than_room_is_not_handled(void **state)
{
	char *big = malloc((BATCH_EVENTS_MAX + 1) * 3 + 2);
	const char *two = "[{},{}]";
	u8 recs[2 * 128];
	u32 n;
	bool arr;

	(void)state;
	assert_non_null(big);
	big[0] = '[';
	for (u32 i = 0; i <= BATCH_EVENTS_MAX; i++)
		memcpy(big + 1 + 3 * i, "{},", 3);
	big[(BATCH_EVENTS_MAX + 1) * 3] = ']';
	big[(BATCH_EVENTS_MAX + 1) * 3 + 1] = '\0';
	void *ev = NULL;
	assert_int_equal(fast(CODEC_TRANSFER, big, &ev, &n, &arr), -ENOTSUP);
	free(ev);
	free(big);

	/* A caller's array that is too small is never overrun. */
	assert_int_equal(fastjson_decode(CODEC_ACCOUNT, two, strlen(two), recs,
					 1, &n, &arr),
			 -ENOTSUP);
	assert_int_equal(fastjson_decode(CODEC_ACCOUNT, two, strlen(two), recs,
					 2, &n, &arr),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(fastjson_events_max("  {\"id\":\"1\"}", 13), 1);
	assert_int_equal(fastjson_events_max(two, strlen(two)), 2);
	assert_int_equal(fastjson_events_max("x", 1), 0);
	assert_int_equal(fastjson_events_max(" ", 1), 0);
}

/* ---- random batches --------------------------------------------------- */

static u64 rng_state = 0x2545f4914f6cdd1dull;

/* splitmix64: deterministic, so a failure is reproducible. */
static u64 rnd(void)
{
	u64 z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A value of a random bit width, so short, 19/20-digit and 39-digit
 * decimals all occur, and the edges 0 and max. */
static u128 rnd_u128(u128 max)
{
	u128 v = ((u128)rnd() << 64) | rnd();
	unsigned bits = (unsigned)(rnd() % 129);

	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return max;
	default: break;
	}
	v = bits == 128 ? v : v & (((u128)1 << bits) - 1);
	return v > max ? v % max : v;
}

static void put_ws(struct wbuf *b, bool spaced)
{
	static const char ws[] = " \t\r\n";

	if (!spaced)
		return;
	for (u64 k = rnd() % 3; k > 0; k--)
		wbuf_putc(b, ws[rnd() % 4]);
}

/* One field of rec as JSON, and its value stored back into rec. */
static void put_field(struct wbuf *b, const struct codec__schema *sc,
		      const struct codec__field *f, u8 *rec, bool spaced)
{
	u8 *at = rec + f->offset;
	char dec[U128_DEC_BYTES];
	bool first = true;

	wbuf_putc(b, '"');
	wbuf_put(b, f->name, f->name_len);
	wbuf_putc(b, '"');
	put_ws(b, spaced);
	wbuf_putc(b, ':');
	put_ws(b, spaced);
	switch (f->type) {
	case CODEC__U128:
	case CODEC__U64: {
		bool wide = f->type == CODEC__U128;
		u128 v = rnd_u128(wide ? U128_MAX : UINT64_MAX);
		u64 w = (u64)v;
		if (wide)
			memcpy(at, &v, sizeof(v));
		else
			memcpy(at, &w, sizeof(w));
		wbuf_putc(b, '"');
		wbuf_put(b, dec, u128_format_dec(v, dec));
		wbuf_putc(b, '"');
		break;
	}
	case CODEC__U32:
	case CODEC__U16: {
		bool wide = f->type == CODEC__U32;
		u64 v = (u64)rnd_u128(wide ? UINT32_MAX : UINT16_MAX);
		u32 w = (u32)v;
		u16 h = (u16)v;
		if (wide)
			memcpy(at, &w, sizeof(w));
		else
			memcpy(at, &h, sizeof(h));
		wbuf_put_u64(b, v);
		break;
	}
	case CODEC__FLAGS: {
		u16 flags = 0;
		/* Known flags in random order, each at most once. */
		unsigned order[CODEC__FLAG_BITS];
		for (unsigned i = 0; i < CODEC__FLAG_BITS; i++)
			order[i] = i;
		for (unsigned i = CODEC__FLAG_BITS - 1; i > 0; i--) {
			unsigned j = (unsigned)(rnd() % (i + 1)), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		wbuf_putc(b, '[');
		for (unsigned i = 0; i < CODEC__FLAG_BITS; i++) {
			unsigned bit = order[i];
			if (!sc->flag_names[bit] || rnd() % 2)
				continue;
			if (!first)
				wbuf_putc(b, ',');
			put_ws(b, spaced);
			wbuf_putc(b, '"');
			wbuf_puts(b, sc->flag_names[bit]);
			wbuf_putc(b, '"');
			put_ws(b, spaced);
			flags |= (u16)(1u << bit);
			first = false;
		}
		wbuf_putc(b, ']');
		memcpy(at, &flags, sizeof(flags));
		break;
	}
	default: fail_msg("bad schema type %u", f->type);
	}
}

/* One random event: its fields in random order, about a third left out
 * (and so 0 in the record). */
static void put_event(struct wbuf *b, const struct codec__schema *sc, u8 *rec,
		      bool spaced)
{
	unsigned order[CODEC__FIELDS_MAX];
	bool first = true;

	memset(rec, 0, sc->record_bytes);
	for (unsigned i = 0; i < sc->nfields; i++)
		order[i] = i;
	for (unsigned i = (unsigned)sc->nfields - 1; i > 0; i--) {
		unsigned j = (unsigned)(rnd() % (i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	wbuf_putc(b, '{');
	for (unsigned i = 0; i < sc->nfields; i++) {
		if (rnd() % 3 == 0)
			continue;
		if (!first)
			wbuf_putc(b, ',');
		put_ws(b, spaced);
		put_field(b, sc, &sc->fields[order[i]], rec, spaced);
		put_ws(b, spaced);
		first = false;
	}
	wbuf_putc(b, '}');
}

static void test_random_batches_agree_with_jansson(void **state)
{
	u8 *want = malloc((size_t)RANDOM_EVENTS_MAX * 128);

	(void)state;
	assert_non_null(want);
	for (unsigned iter = 0; iter < RANDOM_BATCHES; iter++) {
		enum codec_kind k = iter % 2 ? CODEC_TRANSFER : CODEC_ACCOUNT;
		const struct codec__schema *sc = &codec__schemas[k];
		bool spaced = (iter / 2) % 2, arr = rnd() % 4 != 0;
		u32 n = arr ? (u32)(rnd() % RANDOM_EVENTS_MAX) + 1 : 1;
		struct wbuf b = WBUF_INIT((size_t)1 << 20);
		void *got;

		put_ws(&b, spaced);
		if (arr)
			wbuf_putc(&b, '[');
		for (u32 i = 0; i < n; i++) {
			if (i)
				wbuf_putc(&b, ',');
			put_ws(&b, spaced);
			put_event(&b, sc, want + (size_t)i * 128, spaced);
			put_ws(&b, spaced);
		}
		if (arr)
			wbuf_putc(&b, ']');
		put_ws(&b, spaced);
		wbuf_putc(&b, '\0');
		assert_int_equal(b.err, 0);
		got = expect_same(k, b.data, b.len - 1, n, arr);
		assert_memory_equal(got, want, (size_t)n * 128);
		free(got);
		wbuf_release(&b);
	}
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_account_with_every_field_and_flag),
		cmocka_unit_test(test_transfer_with_every_field_and_flag),
		cmocka_unit_test(test_whitespace_empty_objects_and_batches),
		cmocka_unit_test(test_near_misses_are_not_handled),
		cmocka_unit_test(test_more_events_than_room_is_not_handled),
		cmocka_unit_test(test_random_batches_agree_with_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
