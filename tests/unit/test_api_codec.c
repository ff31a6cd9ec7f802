/*
 * test_api_codec.c - the JSON codec of the HTTP API: every field and flag
 * round-trips, every kind of bad input is refused with the right problem
 * and path, nesting and batch limits hold, and the query parser is strict.
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

#include "api/codec.h"
#include "api/problem.h"
#include "api/wbuf.h"
#include "doc_status.h"

#include "banned.h"

#define U128_MAX_DEC "340282366920938463463374607431768211455"

/* Decode a NUL-terminated body; returns the codec's return value. */
static int decode(enum codec_kind k, const char *body, void **ev, u32 *n,
		  bool *arr, struct codec_error *err)
{
	return codec_decode_events(k, body, strlen(body), ev, n, arr, err);
}

/* Expect body to be refused with problem p at path (NULL: don't care)
 * and, when detail_part is set, a detail containing it. */
static void expect_refused(enum codec_kind k, const char *body, enum problem p,
			   const char *path, const char *detail_part)
{
	struct codec_error err;
	void *ev = (void *)1;
	u32 n = 99;
	bool arr;

	assert_int_equal(decode(k, body, &ev, &n, &arr, &err), -EINVAL);
	assert_null(ev);
	assert_int_equal(n, 0);
	if (err.problem != p || (path && strcmp(err.path, path) != 0))
		fail_msg("body %s: got problem %s path '%s' detail '%s'", body,
			 problem_slug(err.problem), err.path, err.detail);
	if (detail_part && !strstr(err.detail, detail_part))
		fail_msg("detail '%s' lacks '%s'", err.detail, detail_part);
}

static char *encode_account(const struct account *a)
{
	struct wbuf b = WBUF_INIT(4096);
	size_t len;
	char *s;

	codec_write_account(&b, a);
	wbuf_putc(&b, '\0');
	assert_int_equal(b.err, 0);
	s = wbuf_detach(&b, &len);
	return s;
}

static char *encode_transfer(const struct transfer *t, enum pending_status ps)
{
	struct wbuf b = WBUF_INIT(4096);
	size_t len;

	codec_write_transfer(&b, t, ps);
	wbuf_putc(&b, '\0');
	assert_int_equal(b.err, 0);
	return wbuf_detach(&b, &len);
}

static void account_every_field_round_trips(void **state)
{
	static const char body[] =
		"{\"id\":\"" U128_MAX_DEC "\",\"debits_pending\":\"1\","
		"\"debits_posted\":\"2\",\"credits_pending\":\"3\","
		"\"credits_posted\":\"18446744073709551616\","
		"\"user_data_128\":\"5\",\"user_data_64\":"
		"\"18446744073709551615\","
		"\"user_data_32\":4294967295,\"ledger\":7,\"code\":65535,"
		"\"flags\":[\"linked\",\"debits_must_not_exceed_credits\","
		"\"credits_must_not_exceed_debits\",\"history\",\"closed\"],"
		"\"timestamp\":\"9\"}";
	struct codec_error err;
	struct account *a, *a2;
	bool arr;
	u32 n;
	char *enc;

	(void)state;
	assert_int_equal(
		decode(CODEC_ACCOUNT, body, (void **)&a, &n, &arr, &err), 0);
	assert_int_equal(n, 1);
	assert_false(arr);
	assert_true(a->id == U128_MAX);
	assert_true(a->debits_pending == 1 && a->debits_posted == 2);
	assert_true(a->credits_pending == 3);
	assert_true(a->credits_posted == (u128)1 << 64);
	assert_true(a->user_data_128 == 5);
	assert_true(a->user_data_64 == UINT64_MAX);
	assert_int_equal(a->user_data_32, UINT32_MAX);
	assert_int_equal(a->ledger, 7);
	assert_int_equal(a->code, 65535);
	assert_int_equal(a->flags, ACCOUNT_FLAGS_KNOWN);
	assert_int_equal(a->timestamp, 9);
	assert_int_equal(a->reserved, 0);

	enc = encode_account(a);
	assert_int_equal(
		decode(CODEC_ACCOUNT, enc, (void **)&a2, &n, &arr, &err), 0);
	assert_memory_equal(a, a2, sizeof(*a));
	free(enc);
	free(a);
	free(a2);
}

static void transfer_every_field_round_trips(void **state)
{
	static const char body[] =
		"[{\"id\":\"1\",\"debit_account_id\":\"2\","
		"\"credit_account_id\":\"3\",\"amount\":\"" U128_MAX_DEC "\","
		"\"pending_id\":\"4\",\"user_data_128\":\"5\","
		"\"user_data_64\":\"6\",\"user_data_32\":7,\"timeout\":8,"
		"\"ledger\":9,\"code\":10,\"flags\":[\"linked\",\"pending\","
		"\"post_pending_transfer\",\"void_pending_transfer\","
		"\"balancing_debit\",\"balancing_credit\",\"closing_debit\","
		"\"closing_credit\"],\"timestamp\":\"11\"}]";
	struct codec_error err;
	struct transfer *t, *t2;
	bool arr;
	u32 n;
	char *enc;

	(void)state;
	assert_int_equal(
		decode(CODEC_TRANSFER, body, (void **)&t, &n, &arr, &err), 0);
	assert_int_equal(n, 1);
	assert_true(arr);
	assert_true(t->id == 1 && t->debit_account_id == 2 &&
		    t->credit_account_id == 3 && t->amount == U128_MAX &&
		    t->pending_id == 4 && t->user_data_128 == 5);
	assert_int_equal(t->user_data_64, 6);
	assert_int_equal(t->user_data_32, 7);
	assert_int_equal(t->timeout, 8);
	assert_int_equal(t->ledger, 9);
	assert_int_equal(t->code, 10);
	assert_int_equal(t->flags, TRANSFER_FLAGS_KNOWN);
	assert_int_equal(t->timestamp, 11);

	enc = encode_transfer(t, PENDING_POSTED);
	assert_non_null(strstr(enc, "\"pending_status\":\"posted\""));
	/* pending_status is output only: strip it before decoding again. */
	*strstr(enc, ",\"pending_status\"") = '}';
	strstr(enc, "}")[1] = '\0';
	assert_int_equal(
		decode(CODEC_TRANSFER, enc, (void **)&t2, &n, &arr, &err), 0);
	assert_memory_equal(t, t2, sizeof(*t));
	free(enc);
	free(t);
	free(t2);
}

static void each_flag_alone_round_trips(void **state)
{
	struct codec_error err;
	char body[128];
	bool arr;
	u32 n;

	(void)state;
	for (unsigned bit = 0; bit < 16; bit++) {
		const char *an = codec_account_flag_name(bit);
		const char *tn = codec_transfer_flag_name(bit);
		struct account *a;
		struct transfer *t;
		char *enc;

		if (an) {
			snprintf(body, sizeof(body), "{\"flags\":[\"%s\"]}",
				 an);
			assert_int_equal(decode(CODEC_ACCOUNT, body,
						(void **)&a, &n, &arr, &err),
					 0);
			assert_int_equal(a->flags, 1u << bit);
			enc = encode_account(a);
			snprintf(body, sizeof(body), "\"flags\":[\"%s\"]", an);
			assert_non_null(strstr(enc, body));
			free(enc);
			free(a);
		}
		if (tn) {
			snprintf(body, sizeof(body), "{\"flags\":[\"%s\"]}",
				 tn);
			assert_int_equal(decode(CODEC_TRANSFER, body,
						(void **)&t, &n, &arr, &err),
					 0);
			assert_int_equal(t->flags, 1u << bit);
			enc = encode_transfer(t, PENDING_NONE);
			snprintf(body, sizeof(body), "\"flags\":[\"%s\"]", tn);
			assert_non_null(strstr(enc, body));
			free(enc);
			free(t);
		}
	}
	/* Reserved bits (TigerBeetle's `imported`) are not accepted names. */
	assert_null(codec_account_flag_name(4));
	assert_null(codec_transfer_flag_name(8));
	expect_refused(CODEC_ACCOUNT, "{\"flags\":[\"imported\"]}",
		       PROBLEM_invalid_flag, "flags[0]", "unknown flag");
}

static void missing_fields_are_zero_and_ids_zero_or_max_pass(void **state)
{
	struct codec_error err;
	struct transfer *t, zero = {0};
	bool arr;
	u32 n;

	(void)state;
	assert_int_equal(
		decode(CODEC_TRANSFER, "{}", (void **)&t, &n, &arr, &err), 0);
	assert_memory_equal(t, &zero, sizeof(zero));
	free(t);
	/* 0 and 2^128-1 are the ledger's to refuse, per event. */
	assert_int_equal(decode(CODEC_TRANSFER,
				"[{\"id\":\"0\"},{\"id\":\"" U128_MAX_DEC
				"\"}]",
				(void **)&t, &n, &arr, &err),
			 0);
	assert_int_equal(n, 2);
	assert_true(t[0].id == 0 && t[1].id == U128_MAX);
	free(t);
}

static void integer_limits(void **state)
{
	struct codec_error err;
	struct account *a;
	bool arr;
	u32 n;

	(void)state;
	assert_int_equal(decode(CODEC_ACCOUNT,
				"{\"ledger\":0,\"code\":0,\"user_data_32\":0,"
				"\"user_data_64\":\"0\",\"id\":\"0\"}",
				(void **)&a, &n, &arr, &err),
			 0);
	free(a);
	expect_refused(CODEC_ACCOUNT,
		       "{\"id\":\"340282366920938463463374607431768211456\"}",
		       PROBLEM_invalid_field, "id", "at most");
	expect_refused(CODEC_ACCOUNT,
		       "{\"user_data_64\":\"18446744073709551616\"}",
		       PROBLEM_invalid_field, "user_data_64", "at most");
	expect_refused(CODEC_ACCOUNT, "{\"user_data_32\":4294967296}",
		       PROBLEM_invalid_field, "user_data_32", "4294967295");
	expect_refused(CODEC_ACCOUNT, "{\"ledger\":-1}", PROBLEM_invalid_field,
		       "ledger", NULL);
	expect_refused(CODEC_ACCOUNT, "{\"code\":65536}", PROBLEM_invalid_field,
		       "code", "65535");
	expect_refused(CODEC_TRANSFER, "{\"timeout\":1.0}",
		       PROBLEM_invalid_field, "timeout", NULL);
	expect_refused(CODEC_TRANSFER, "{\"timeout\":\"1\"}",
		       PROBLEM_invalid_field, "timeout", NULL);
	expect_refused(CODEC_TRANSFER, "{\"code\":1e3}", PROBLEM_invalid_field,
		       "code", NULL);
	/* A number too big for jansson's json_int_t is malformed JSON. */
	expect_refused(CODEC_TRANSFER, "{\"code\":99999999999999999999999}",
		       PROBLEM_invalid_json, NULL, NULL);
}

static void decimal_strings_are_strict(void **state)
{
	static const char *const bad[] = {
		"{\"amount\":\"01\"}",	     "{\"amount\":\"+1\"}",
		"{\"amount\":\"-1\"}",	     "{\"amount\":\" 1\"}",
		"{\"amount\":\"1 \"}",	     "{\"amount\":\"\"}",
		"{\"amount\":\"0x10\"}",     "{\"amount\":\"1e3\"}",
		"{\"amount\":\"1\\u00002\"}"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct codec_error err;
		void *ev;
		u32 n;
		bool arr;
		int r = decode(CODEC_TRANSFER, bad[i], &ev, &n, &arr, &err);
		assert_int_equal(r, -EINVAL);
		/* \u0000 (the last) is refused by jansson itself: the
		 * body is not JSON we take; the others are JSON with a
		 * field that is not a canonical decimal string. */
		bool nul = i + 1 == sizeof(bad) / sizeof(bad[0]);
		assert_int_equal(err.problem, nul ? PROBLEM_invalid_json
						  : PROBLEM_invalid_field);
	}
	expect_refused(CODEC_TRANSFER, "{\"amount\":5}", PROBLEM_invalid_field,
		       "amount", "must be a decimal string");
	expect_refused(CODEC_TRANSFER, "[{},{},{},{\"amount\":5}]",
		       PROBLEM_invalid_field, "[3].amount",
		       "must be a decimal string");
	expect_refused(CODEC_TRANSFER, "{\"amount\":null}",
		       PROBLEM_invalid_field, "amount", NULL);
	expect_refused(CODEC_TRANSFER, "{\"amount\":true}",
		       PROBLEM_invalid_field, "amount", NULL);
	expect_refused(CODEC_TRANSFER, "{\"user_data_64\":7}",
		       PROBLEM_invalid_field, "user_data_64",
		       "must be a decimal string");
}

static void bad_shapes_name_their_path(void **state)
{
	(void)state;
	expect_refused(CODEC_TRANSFER, "{\"amont\":\"1\"}",
		       PROBLEM_unknown_field, "amont", NULL);
	expect_refused(CODEC_TRANSFER, "[{},{\"reserved\":0}]",
		       PROBLEM_unknown_field, "[1].reserved", NULL);
	expect_refused(CODEC_ACCOUNT, "{\"amount\":\"1\"}",
		       PROBLEM_unknown_field, "amount", NULL);
	expect_refused(CODEC_TRANSFER, "[{},{},7]", PROBLEM_invalid_body, "[2]",
		       NULL);
	expect_refused(CODEC_TRANSFER, "[[]]", PROBLEM_invalid_body, "[0]",
		       NULL);
	expect_refused(CODEC_TRANSFER, "{\"flags\":\"linked\"}",
		       PROBLEM_invalid_field, "flags", NULL);
	expect_refused(CODEC_TRANSFER, "{\"flags\":[\"linked\",\"bogus\"]}",
		       PROBLEM_invalid_flag, "flags[1]", "unknown flag");
	expect_refused(CODEC_TRANSFER,
		       "[{},{\"flags\":[\"pending\",\"pending\"]}]",
		       PROBLEM_invalid_flag, "[1].flags[1]", "twice");
	expect_refused(CODEC_TRANSFER, "{\"flags\":[1]}", PROBLEM_invalid_flag,
		       "flags[0]", NULL);
	expect_refused(CODEC_ACCOUNT, "{\"flags\":[\"pending\"]}",
		       PROBLEM_invalid_flag, "flags[0]", NULL);
	expect_refused(CODEC_TRANSFER, "{\"id\":\"1\",\"id\":\"2\"}",
		       PROBLEM_invalid_json, NULL, "duplicate");
	expect_refused(CODEC_TRANSFER, "[]", PROBLEM_empty_batch, "", NULL);
	expect_refused(CODEC_TRANSFER, "", PROBLEM_invalid_json, "", NULL);
	expect_refused(CODEC_TRANSFER, "{\"id\":", PROBLEM_invalid_json, "",
		       NULL);
	expect_refused(CODEC_TRANSFER, "{} {}", PROBLEM_invalid_json, "", NULL);
	/* Valid JSON of the wrong shape is not a syntax error. */
	expect_refused(CODEC_TRANSFER, "\"x\"", PROBLEM_invalid_body, "", NULL);
	expect_refused(CODEC_TRANSFER, "42", PROBLEM_invalid_body, "", NULL);
	expect_refused(CODEC_TRANSFER, "null", PROBLEM_invalid_body, "", NULL);
	/* Invalid UTF-8, in a key and in a value. */
	expect_refused(CODEC_TRANSFER, "{\"\xff\":1}", PROBLEM_invalid_json, "",
		       NULL);
	expect_refused(CODEC_TRANSFER, "{\"amount\":\"\xc3\x28\"}",
		       PROBLEM_invalid_json, "", NULL);
}

static void deep_nesting_is_refused_before_parsing(void **state)
{
	char *deep = malloc(1 << 20);

	(void)state;
	/* One level too deep, and a million levels deep. */
	expect_refused(CODEC_TRANSFER, "[{\"flags\":[[[1]]]}]",
		       PROBLEM_nesting_too_deep, "", NULL);
	/* Depth 4 passes the scan; the field check names the culprit. */
	expect_refused(CODEC_TRANSFER, "[{\"flags\":[[1]]}]",
		       PROBLEM_invalid_flag, "[0].flags[0]", NULL);
	memset(deep, '[', (1 << 20) - 1);
	deep[(1 << 20) - 1] = '\0';
	expect_refused(CODEC_TRANSFER, deep, PROBLEM_nesting_too_deep, "",
		       NULL);
	free(deep);
	/* Exactly 4 is fine for the scan (the field check refuses it). */
	assert_int_equal(codec_check_depth("[{\"a\":[[]]}]", 12, 4), 0);
	assert_int_equal(codec_check_depth("[{\"a\":[[[]]]}]", 14, 4), -E2BIG);
	/* Brackets inside strings, even after escaped quotes, don't count. */
	static const char s[] = "[{\"k\\\"[[[[[\":\"[[[[[\\\\\"}]";
	assert_int_equal(codec_check_depth(s, sizeof(s) - 1, 2), 0);
	expect_refused(CODEC_TRANSFER, "[{\"id\":\"[[[[[[[[\"}]",
		       PROBLEM_invalid_field, "[0].id", NULL);
}

static char *batch(enum codec_kind k, u32 n)
{
	const char *one = k == CODEC_TRANSFER
				  ? "{\"id\":\"%u\",\"amount\":\"10\","
				    "\"flags\":[\"linked\"]}"
				  : "{\"id\":\"%u\",\"ledger\":1}";
	size_t cap = (size_t)n * 64 + 16, len = 0;
	char *s = malloc(cap);

	s[len++] = '[';
	for (u32 i = 0; i < n; i++) {
		if (i)
			s[len++] = ',';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		len += (size_t)snprintf(s + len, cap - len, one, i + 1);
#pragma GCC diagnostic pop
	}
	s[len++] = ']';
	s[len] = '\0';
	return s;
}

static void batch_of_8190_is_accepted_8191_refused(void **state)
{
	struct codec_error err;
	struct transfer *t;
	struct account *a;
	bool arr;
	u32 n;
	char *s;

	(void)state;
	s = batch(CODEC_TRANSFER, BATCH_EVENTS_MAX);
	assert_int_equal(decode(CODEC_TRANSFER, s, (void **)&t, &n, &arr, &err),
			 0);
	assert_int_equal(n, BATCH_EVENTS_MAX);
	assert_true(t[8189].id == 8190 && t[8189].amount == 10);
	assert_int_equal(t[8189].flags, TRANSFER_LINKED);
	free(t);
	free(s);
	s = batch(CODEC_ACCOUNT, BATCH_EVENTS_MAX);
	assert_int_equal(decode(CODEC_ACCOUNT, s, (void **)&a, &n, &arr, &err),
			 0);
	assert_int_equal(n, BATCH_EVENTS_MAX);
	free(a);
	free(s);
	s = batch(CODEC_TRANSFER, BATCH_EVENTS_MAX + 1);
	expect_refused(CODEC_TRANSFER, s, PROBLEM_batch_too_large, "", "8191");
	free(s);
}

static void results_and_statuses(void **state)
{
	struct wbuf b = WBUF_INIT(1024);

	(void)state;
	codec_write_result(&b, 0, "created", 123);
	wbuf_putc(&b, ' ');
	codec_write_result(&b, 8189, "exceeds_credits", 0);
	wbuf_putc(&b, '\0');
	assert_string_equal(b.data,
			    "{\"index\":0,\"status\":\"created\",\"timestamp\":"
			    "\"123\"} {\"index\":8189,\"status\":"
			    "\"exceeds_credits\"}");
	wbuf_release(&b);
	/* The longest result fits in the per-result budget. */
	wbuf_init(&b, CODEC_RESULT_BYTES_MAX);
	codec_write_result(&b, BATCH_EVENTS_MAX - 1,
			   "exists_with_different_credit_account_id",
			   UINT64_MAX);
	assert_int_equal(b.err, 0);
	wbuf_release(&b);
	assert_int_equal(codec_result_http_status("created"), 201);
	assert_int_equal(codec_result_http_status("exists"), 200);
	assert_int_equal(
		codec_result_http_status("exists_with_different_amount"), 409);
	assert_int_equal(codec_result_http_status("id_already_failed"), 409);
	assert_int_equal(codec_result_http_status("exceeds_credits"), 422);
	assert_int_equal(codec_result_http_status("id_must_not_be_zero"), 422);
}

static void balance_and_pending_status_encode(void **state)
{
	struct account_balance ab = {.debits_pending = 1,
				     .debits_posted = U128_MAX,
				     .credits_pending = 3,
				     .credits_posted = 4,
				     .timestamp = 5};
	struct transfer t = {.id = 1, .flags = TRANSFER_PENDING};
	struct wbuf b = WBUF_INIT(1024);
	char *s;

	(void)state;
	codec_write_balance(&b, &ab);
	wbuf_putc(&b, '\0');
	assert_string_equal(
		b.data,
		"{\"debits_pending\":\"1\",\"debits_posted\":\"" U128_MAX_DEC
		"\",\"credits_pending\":\"3\",\"credits_posted\":"
		"\"4\",\"timestamp\":\"5\"}");
	wbuf_release(&b);
	s = encode_transfer(&t, PENDING_EXPIRED);
	assert_non_null(strstr(s, "\"flags\":[\"pending\"],"));
	assert_non_null(strstr(s, "\"pending_status\":\"expired\"}"));
	free(s);
	/* Not a pending transfer: no pending_status member. */
	t.flags = 0;
	s = encode_transfer(&t, PENDING_NONE);
	assert_null(strstr(s, "pending_status"));
	free(s);
}

/* The status docs/api.md ("Errors") gives the problem: its row
 * "| `/problems/<slug>` | <status> |". */
static unsigned documented_status(enum problem p)
{
	char name[64];
	int n = snprintf(name, sizeof(name), "/problems/%s", problem_slug(p));
	assert_true(n > 0 && (size_t)n < sizeof(name));
	return doc_status("docs/api.md", name);
}

static void problem_document_shape(void **state)
{
	struct wbuf b = WBUF_INIT(1024);

	(void)state;
	problem_write(&b, PROBLEM_invalid_field, "must be \"x\"\n\xff",
		      "0123456789abcdef", "[3].amount");
	wbuf_putc(&b, '\0');
	assert_string_equal(
		b.data,
		"{\"type\":\"/problems/invalid-field\",\"title\":\"A field has "
		"an invalid value\",\"status\":400,\"detail\":\"must be "
		"\\\"x\\\"\\u000a?\",\"instance\":\"0123456789abcdef\","
		"\"field\":\"[3].amount\"}");
	wbuf_release(&b);
	for (unsigned p = 0; p < PROBLEM_COUNT; p++) {
		assert_non_null(problem_slug(p));
		assert_non_null(problem_title(p));
		assert_int_equal(problem_status(p), documented_status(p));
	}
}

static void wbuf_respects_its_cap(void **state)
{
	struct wbuf b = WBUF_INIT(8);

	(void)state;
	wbuf_puts(&b, "12345678");
	assert_int_equal(b.err, 0);
	wbuf_putc(&b, '9');
	assert_int_equal(b.err, -E2BIG);
	assert_int_equal(b.len, 8);
	wbuf_release(&b);
}

static int query(const char *qs, struct account_filter *f,
		 struct codec_error *err)
{
	return codec_parse_query(qs, strlen(qs), f, err);
}

static void query_defaults_and_every_parameter(void **state)
{
	struct account_filter f = {.account_id = 42};
	struct codec_error err;

	(void)state;
	assert_int_equal(query("", &f, &err), 0);
	assert_true(f.account_id == 42);
	assert_int_equal(f.limit, 100);
	assert_int_equal(f.flags,
			 ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS);
	assert_int_equal(
		query("timestamp_min=1&timestamp_max=18446744073709551615&"
		      "limit=8190&order=desc&direction=credits&code=65535&"
		      "user_data_128=" U128_MAX_DEC "&user_data_64=7&"
		      "user_data_32=4294967295&",
		      &f, &err),
		0);
	assert_int_equal(f.timestamp_min, 1);
	assert_true(f.timestamp_max == UINT64_MAX);
	assert_int_equal(f.limit, 8190);
	assert_int_equal(f.flags,
			 ACCOUNT_FILTER_CREDITS | ACCOUNT_FILTER_REVERSED);
	assert_int_equal(f.code, 65535);
	assert_true(f.user_data_128 == U128_MAX);
	assert_int_equal(f.user_data_64, 7);
	assert_int_equal(f.user_data_32, UINT32_MAX);
	assert_int_equal(query("direction=debits&order=asc", &f, &err), 0);
	assert_int_equal(f.flags, ACCOUNT_FILTER_DEBITS);
	/* Percent-encoding is decoded. */
	assert_int_equal(query("%6Cimit=%31%30", &f, &err), 0);
	assert_int_equal(f.limit, 10);
}

static void query_refusals(void **state)
{
	static const struct {
		const char *qs, *path;
	} bad[] = {
		{"limit=0", "limit"},
		{"limit=8191", "limit"},
		{"limit=", "limit"},
		{"limit", "limit"},
		{"limit=10&limit=20", "limit"},
		{"order=up", "order"},
		{"direction=all", "direction"},
		{"code=65536", "code"},
		{"user_data_32=-1", "user_data_32"},
		{"timestamp_min=01", "timestamp_min"},
		{"timestamp_min=5&timestamp_max=4", "timestamp_min"},
		{"account_id=1", "account_id"},
		{"limit=%zz", "limit"},
		{"limit=%3", "limit"},
		{"limit=1%00", "limit"},
		{"user_data_128=1+2", "user_data_128"},
	};
	struct account_filter f;
	struct codec_error err;
	char big[CODEC_QUERY_BYTES_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(query(bad[i].qs, &f, &err), -EINVAL);
		assert_int_equal(err.problem, PROBLEM_invalid_query);
		if (strcmp(err.path, bad[i].path) != 0)
			fail_msg("%s: path '%s'", bad[i].qs, err.path);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(query(big, &f, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(account_every_field_round_trips),
		cmocka_unit_test(transfer_every_field_round_trips),
		cmocka_unit_test(each_flag_alone_round_trips),
		cmocka_unit_test(
			missing_fields_are_zero_and_ids_zero_or_max_pass),
		cmocka_unit_test(integer_limits),
		cmocka_unit_test(decimal_strings_are_strict),
		cmocka_unit_test(bad_shapes_name_their_path),
		cmocka_unit_test(deep_nesting_is_refused_before_parsing),
		cmocka_unit_test(batch_of_8190_is_accepted_8191_refused),
		cmocka_unit_test(results_and_statuses),
		cmocka_unit_test(balance_and_pending_status_encode),
		cmocka_unit_test(problem_document_shape),
		cmocka_unit_test(wbuf_respects_its_cap),
		cmocka_unit_test(query_defaults_and_every_parameter),
		cmocka_unit_test(query_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
