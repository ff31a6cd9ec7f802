/*
 * test_core_pstate.c - the client-version policy as state of the journal
 * (core/pstate.h): versions (set, unchanged by meaning, invalid, rollback),
 * the framing of the three commands (-EBADMSG, and pstate_command_valid
 * agreeing with pstate_apply on every malformed case), overrides (live
 * list, pruning by later commands' times, ending early, the 64 live
 * limit, relaxing the gate exactly while active), and the snapshot codec
 * (byte-exact round trip with grown arrays, a digest that sees every
 * field, hostile bytes refused).
 *
 * Times: commands carry nanoseconds (the journal's), overrides and the
 * gate whole seconds; T0 is an arbitrary second in 2027.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/policy.h"
#include "core/pstate.h"

#include <jansson.h>
#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define T0    1799971200 /* 2027-01-15T00:00:00Z */
#define NS(s) ((u64)(s)*1000000000u)

/* Two documents that mean the same, written differently. */
static const char doc_a[] =
	"{\"platforms\":{\"android\":{\"min_supported\":\"4.0.0\","
	"\"blocked\":[\"3.x\"]},\"ios\":{\"min_supported\":\"2.0.0\"}}}";
static const char doc_a_reformatted[] =
	"{\n  \"platforms\": {\n    \"ios\": {\"min_supported\": \"2.0.0\"},\n"
	"    \"android\": {\n      \"blocked\": [ \"3.x\" ],\n"
	"      \"recommended_rollout\": 100,\n"
	"      \"min_supported\": \"4.0.0\"\n    }\n  }\n}\n";
static const char doc_b[] =
	"{\"platforms\":{\"android\":{\"min_supported\":\"4.1.0\"}}}";

/* ---- builders -------------------------------------------------------- */

struct ext {
	u8 *p;
	u32 len;
};

/* A PSTATE_CMD_SET ext: header, text, zero padding to 16. */
static struct ext set_ext(const char *text, u64 rollback_of, const char *reason,
			  u8 author)
{
	struct pstate_set h;
	size_t n = strlen(text);
	size_t padded = (n + 15) / 16 * 16;
	struct ext e;

	memset(&h, 0, sizeof(h));
	memset(h.author, author, sizeof(h.author));
	h.rollback_of = rollback_of;
	h.text_bytes = (u32)n;
	if (reason)
		memcpy(h.reason, reason, strlen(reason));
	e.len = (u32)(sizeof(h) + padded);
	e.p = calloc(1, e.len);
	assert_non_null(e.p);
	memcpy(e.p, &h, sizeof(h));
	memcpy(e.p + sizeof(h), text, n);
	return e;
}

static u32 apply(struct pstate *s, u16 kind, const void *ext, u32 len, u64 ts_s)
{
	u32 outcome = 99;
	assert_int_equal(pstate_apply(s, kind, ext, len, NS(ts_s), &outcome),
			 0);
	assert_true(outcome <= PSTATE_FULL);
	return outcome;
}

static u32 set_doc(struct pstate *s, const char *text, u64 rollback_of,
		   const char *reason, u8 author, u64 ts_s)
{
	struct ext e = set_ext(text, rollback_of, reason, author);
	u32 o = apply(s, PSTATE_CMD_SET, e.p, e.len, ts_s);
	free(e.p);
	return o;
}

static struct pstate_override_cmd ov_cmd(const char *platform,
					 const char *range, u32 mode,
					 u32 duration_s, const char *reason)
{
	struct pstate_override_cmd c;
	memset(&c, 0, sizeof(c));
	memset(c.author, 0x11, sizeof(c.author));
	memcpy(c.platform, platform, strlen(platform));
	memcpy(c.range, range, strlen(range));
	memcpy(c.reason, reason, strlen(reason));
	c.mode = mode;
	c.duration_s = duration_s;
	return c;
}

static u32 open_ov(struct pstate *s, const char *platform, const char *range,
		   u32 mode, u32 duration_s, u64 ts_s)
{
	struct pstate_override_cmd c =
		ov_cmd(platform, range, mode, duration_s, "incident 42");
	return apply(s, PSTATE_CMD_OVERRIDE, &c, sizeof(c), ts_s);
}

/* A kind 20 ext: c, then the message (may be "") padded to 16. */
static struct ext ov2_ext(const struct pstate_override_cmd *c, const char *msg,
			  int64_t expected_end_s)
{
	struct pstate_override_2 h;
	size_t n = strlen(msg);
	struct ext e;

	memset(&h, 0, sizeof(h));
	h.base = *c;
	h.expected_end_s = expected_end_s;
	h.message_bytes = (u32)n;
	e.len = (u32)(sizeof(h) + (n + 15) / 16 * 16);
	e.p = calloc(1, e.len);
	assert_non_null(e.p);
	memcpy(e.p, &h, sizeof(h));
	memcpy(e.p + sizeof(h), msg, n);
	return e;
}

static u32 open_ov2(struct pstate *s, const char *range, const char *msg,
		    int64_t expected_end_s, u32 duration_s, u64 ts_s)
{
	struct pstate_override_cmd c = ov_cmd("android", range, 1, duration_s,
					      "locked out by REL-311");
	struct ext e = ov2_ext(&c, msg, expected_end_s);
	u32 o = apply(s, PSTATE_CMD_OVERRIDE_2, e.p, e.len, ts_s);
	free(e.p);
	return o;
}

static u32 end_ov(struct pstate *s, u64 id, u64 ts_s)
{
	struct pstate_override_end e;
	memset(&e, 0, sizeof(e));
	e.id = id;
	memcpy(e.reason, "fixed", 5);
	return apply(s, PSTATE_CMD_OVERRIDE_END, &e, sizeof(e), ts_s);
}

static char *render(const struct policy *p)
{
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(policy_render(p, &out, &len), 0);
	assert_int_equal(strlen(out), len);
	return out;
}

static char *render_text(const char *doc)
{
	struct policy *p = NULL;
	assert_int_equal(policy_parse(doc, strlen(doc), &p, NULL), 0);
	char *out = render(p);
	policy_free(p);
	return out;
}

/* Is override id in the live list? */
static bool live_has(const struct pstate *s, u64 id)
{
	size_t n;
	const struct policy_override *ov = pstate_overrides_live(s, &n);
	assert_true(n <= POLICY_OVERRIDES_MAX);
	for (size_t i = 0; i < n; i++)
		if (ov[i].id == id)
			return true;
	return false;
}

static size_t live_count(const struct pstate *s)
{
	size_t n;
	(void)pstate_overrides_live(s, &n);
	return n;
}

struct buf {
	u8 *p;
	size_t len, cap;
};

static int buf_sink(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + len)
			cap *= 2;
		u8 *p = realloc(b->p, cap);
		assert_non_null(p);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static struct buf snapshot(const struct pstate *s)
{
	struct buf b = {0};
	assert_int_equal(pstate_snapshot_write(s, buf_sink, &b), 0);
	assert_int_equal(b.len, pstate_snapshot_bytes(s));
	return b;
}

static void digest(const struct pstate *s, u8 out[32])
{
	pstate_digest(s, out);
}

/* ---- versions --------------------------------------------------------- */

static void first_set_becomes_version_1_and_current(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	u64 v = 77;
	struct pstate_version pv;

	assert_null(pstate_current(s, &v));
	assert_int_equal(v, 0);
	assert_int_equal(pstate_version_count(s), 0);
	assert_false(pstate_version_get(s, 0, &pv));
	assert_false(pstate_version_get(s, 1, &pv));

	assert_int_equal(set_doc(s, doc_a_reformatted, 0, "first", 7, T0),
			 PSTATE_OK);
	const struct policy *p = pstate_current(s, &v);
	assert_non_null(p);
	assert_int_equal(v, 1);
	assert_int_equal(pstate_version_count(s), 1);
	assert_int_equal(p->nplatforms, 2);

	assert_true(pstate_version_get(s, 1, &pv));
	assert_int_equal(pv.version, 1);
	assert_true(pv.timestamp == NS(T0));
	assert_int_equal(pv.author[0], 7);
	assert_int_equal(pv.author[31], 7);
	assert_int_equal(pv.rollback_of, 0);
	assert_string_equal(pv.reason, "first");
	/* The version keeps the canonical text, not what was sent. */
	char *canon = render_text(doc_a);
	assert_int_equal(pv.text_len, strlen(canon));
	assert_string_equal(pv.text, canon);
	char *cur = render(p);
	assert_string_equal(cur, canon);
	free(cur);
	free(canon);
	assert_false(pstate_version_get(s, 2, &pv));
	pstate_free(s);
}

static void
same_document_reformatted_is_unchanged_and_adds_no_version(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	u8 d0[32], d1[32];
	u64 v;

	assert_int_equal(set_doc(s, doc_a, 0, "a", 1, T0), PSTATE_OK);
	digest(s, d0);
	const struct policy *before = pstate_current(s, NULL);
	assert_int_equal(set_doc(s, doc_a, 0, "again", 2, T0 + 1),
			 PSTATE_UNCHANGED);
	assert_int_equal(set_doc(s, doc_a_reformatted, 0, "again", 2, T0 + 2),
			 PSTATE_UNCHANGED);
	assert_ptr_equal(pstate_current(s, &v), before);
	assert_int_equal(v, 1);
	assert_int_equal(pstate_version_count(s), 1);
	digest(s, d1);
	assert_memory_equal(d0, d1, 32);

	/* Only the current version counts: a, b, a is three versions. */
	assert_int_equal(set_doc(s, doc_b, 0, "b", 1, T0 + 3), PSTATE_OK);
	assert_int_equal(set_doc(s, doc_a_reformatted, 0, "a", 1, T0 + 4),
			 PSTATE_OK);
	assert_int_equal(pstate_version_count(s), 3);
	pstate_free(s);
}

static void invalid_document_leaves_current_unchanged(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{",
		"not json",
		"{\"platforms\":{\"android\":{\"min_supported\":\"4.x\"}}}",
		"{\"platforms\":{\"Android\":{}}}",
		"{\"nonsense\":1}",
		"[]",
	};
	struct pstate *s = pstate_new();
	u8 d0[32], d1[32];
	u64 v;

	/* Before any version: nothing becomes current. */
	assert_int_equal(set_doc(s, bad[0], 0, NULL, 0, T0), PSTATE_INVALID);
	assert_null(pstate_current(s, &v));
	assert_int_equal(v, 0);

	assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0), PSTATE_OK);
	const struct policy *p = pstate_current(s, NULL);
	digest(s, d0);
	for (size_t i = 0; i < N(bad); i++) {
		assert_int_equal(set_doc(s, bad[i], 0, NULL, 0, T0 + 1 + i),
				 PSTATE_INVALID);
		assert_ptr_equal(pstate_current(s, &v), p);
		assert_int_equal(v, 1);
		assert_int_equal(pstate_version_count(s), 1);
	}
	digest(s, d1);
	assert_memory_equal(d0, d1, 32);
	pstate_free(s);
}

static void rollback_beyond_the_count_is_not_found(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();

	assert_int_equal(set_doc(s, doc_a, 1, NULL, 0, T0), PSTATE_NOT_FOUND);
	assert_int_equal(pstate_version_count(s), 0);
	assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0), PSTATE_OK);
	assert_int_equal(set_doc(s, doc_b, 0, NULL, 0, T0 + 1), PSTATE_OK);
	assert_int_equal(set_doc(s, doc_a, 3, NULL, 0, T0 + 2),
			 PSTATE_NOT_FOUND);
	assert_int_equal(set_doc(s, doc_a, UINT64_MAX, NULL, 0, T0 + 2),
			 PSTATE_NOT_FOUND);
	assert_int_equal(pstate_version_count(s), 2);
	/* The current version is 2 (doc_b) still. */
	struct pstate_version pv;
	assert_true(pstate_version_get(s, 2, &pv));
	char *cur = render(pstate_current(s, NULL));
	assert_string_equal(cur, pv.text);
	free(cur);
	pstate_free(s);
}

static void rollback_creates_a_new_version_with_the_old_text(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	struct pstate_version v1, v3;
	u64 v;

	assert_int_equal(set_doc(s, doc_a, 0, "one", 1, T0), PSTATE_OK);
	assert_int_equal(set_doc(s, doc_b, 0, "two", 2, T0 + 10), PSTATE_OK);
	assert_true(pstate_version_get(s, 1, &v1));
	/* What the route sends: version 1's canonical text. */
	assert_int_equal(set_doc(s, v1.text, 1, "back", 3, T0 + 20), PSTATE_OK);
	assert_non_null(pstate_current(s, &v));
	assert_int_equal(v, 3);
	assert_int_equal(pstate_version_count(s), 3);
	assert_true(pstate_version_get(s, 3, &v3));
	assert_int_equal(v3.version, 3);
	assert_int_equal(v3.rollback_of, 1);
	assert_true(v3.timestamp == NS(T0 + 20));
	assert_int_equal(v3.author[0], 3);
	assert_string_equal(v3.reason, "back");
	assert_int_equal(v3.text_len, v1.text_len);
	assert_string_equal(v3.text, v1.text);
	/* History is never rewritten. */
	assert_true(pstate_version_get(s, 1, &v1));
	assert_int_equal(v1.rollback_of, 0);
	assert_string_equal(v1.reason, "one");
	/* Rolling back to what is current already changes nothing. */
	assert_int_equal(set_doc(s, v1.text, 1, "again", 3, T0 + 30),
			 PSTATE_UNCHANGED);
	assert_int_equal(pstate_version_count(s), 3);
	pstate_free(s);
}

static void longest_reason_is_kept_whole(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	char reason[PSTATE_REASON_BYTES];
	struct pstate_version pv;

	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(set_doc(s, doc_a, 0, reason, 0, T0), PSTATE_OK);
	assert_true(pstate_version_get(s, 1, &pv));
	assert_int_equal(strlen(pv.reason), PSTATE_REASON_BYTES - 1);
	assert_string_equal(pv.reason, reason);
	pstate_free(s);
}

/* ---- framing ---------------------------------------------------------- */

enum mangle {
	M_NONE,
	M_SET_TEXT_ZERO, /* text_bytes 0, ext = header only */
	M_SET_TEXT_OVER, /* text_bytes = limit + 1, padded */
	M_SET_SHORT_PAD, /* ext one byte short of the padding */
	M_SET_LONG_PAD,	 /* 16 bytes more than the padding */
	M_SET_UNPADDED,	 /* ext = header + text_bytes (not mult. 16) */
	M_SET_REASON_UNTERMINATED,
	M_SET_SHORTER_THAN_HEADER,
	M_SET_TEXT_BYTES_HUGE, /* u32 max: padding must not wrap */
	M_OV_MODE_2,
	M_OV_MODE_HUGE,
	M_OV_PLATFORM_UNTERMINATED,
	M_OV_RANGE_UNTERMINATED,
	M_OV_REASON_UNTERMINATED,
	M_OV_SHORT,
	M_OV_LONG,
	M_END_REASON_UNTERMINATED,
	M_END_SHORT,
	M_END_LONG,
	M_KIND_UNKNOWN,
	M_KIND_ZERO,
};

struct frame_row {
	const char *name;
	u16 kind;
	enum mangle m;
	bool valid;
};

/* Build the ext of one row: a well-formed command, then mangled. */
static struct ext frame(const struct frame_row *row)
{
	struct ext e = {0};
	switch (row->kind) {
	case PSTATE_CMD_OVERRIDE: {
		struct pstate_override_cmd c =
			ov_cmd("android", "<4.0.0", 1, 3600, "incident");
		size_t len = sizeof(c);
		if (row->m == M_OV_MODE_2)
			c.mode = 2;
		if (row->m == M_OV_MODE_HUGE)
			c.mode = UINT32_MAX;
		if (row->m == M_OV_PLATFORM_UNTERMINATED)
			memset(c.platform, 'a', sizeof(c.platform));
		if (row->m == M_OV_RANGE_UNTERMINATED)
			memset(c.range, '1', sizeof(c.range));
		if (row->m == M_OV_REASON_UNTERMINATED)
			memset(c.reason, 'r', sizeof(c.reason));
		if (row->m == M_OV_SHORT)
			len -= 16;
		if (row->m == M_OV_LONG)
			len += 16;
		e.p = calloc(1, sizeof(c) + 16);
		assert_non_null(e.p);
		memcpy(e.p, &c, sizeof(c));
		e.len = (u32)len;
		return e;
	}
	case PSTATE_CMD_OVERRIDE_END: {
		struct pstate_override_end c;
		size_t len = sizeof(c);
		memset(&c, 0, sizeof(c));
		c.id = 1;
		memcpy(c.reason, "done", 4);
		if (row->m == M_END_REASON_UNTERMINATED)
			memset(c.reason, 'r', sizeof(c.reason));
		if (row->m == M_END_SHORT)
			len -= 8;
		if (row->m == M_END_LONG)
			len += 16;
		e.p = calloc(1, sizeof(c) + 16);
		assert_non_null(e.p);
		memcpy(e.p, &c, sizeof(c));
		e.len = (u32)len;
		return e;
	}
	default: break;
	}
	/* SET, and the unknown kinds (which get a well-formed SET ext). */
	if (row->m == M_SET_TEXT_OVER) {
		struct pstate_set h;
		u32 n = POLICY_DOC_BYTES_MAX + 1;
		memset(&h, 0, sizeof(h));
		h.text_bytes = n;
		e.len = (u32)(sizeof(h) + (n + 15) / 16 * 16);
		e.p = calloc(1, e.len);
		assert_non_null(e.p);
		memcpy(e.p, &h, sizeof(h));
		memset(e.p + sizeof(h), ' ', n);
		e.p[sizeof(h)] = '{';
		e.p[sizeof(h) + n - 1] = '}';
		return e;
	}
	e = set_ext(doc_b, 0, "why", 0); /* 51 bytes: padded to 64 */
	struct pstate_set h;
	memcpy(&h, e.p, sizeof(h));
	assert_true(h.text_bytes % 16 != 0);
	switch (row->m) {
	case M_SET_TEXT_ZERO:
		h.text_bytes = 0;
		e.len = sizeof(h);
		break;
	case M_SET_SHORT_PAD: e.len -= 1; break;
	case M_SET_LONG_PAD: {
		u8 *p = realloc(e.p, e.len + 16);
		assert_non_null(p);
		memset(p + e.len, 0, 16);
		e.p = p;
		e.len += 16;
		break;
	}
	case M_SET_UNPADDED: e.len = (u32)(sizeof(h) + h.text_bytes); break;
	case M_SET_REASON_UNTERMINATED:
		memset(h.reason, 'r', sizeof(h.reason));
		break;
	case M_SET_SHORTER_THAN_HEADER: e.len = sizeof(h) - 1; break;
	case M_SET_TEXT_BYTES_HUGE: h.text_bytes = UINT32_MAX; break;
	default: break;
	}
	memcpy(e.p, &h, sizeof(h));
	return e;
}

static void malformed_commands_are_ebadmsg_and_valid_agrees(void **state)
{
	(void)state;
	static const struct frame_row rows[] = {
		{"set ok", PSTATE_CMD_SET, M_NONE, true},
		{"set text_bytes 0", PSTATE_CMD_SET, M_SET_TEXT_ZERO, false},
		{"set text over limit", PSTATE_CMD_SET, M_SET_TEXT_OVER, false},
		{"set padding short", PSTATE_CMD_SET, M_SET_SHORT_PAD, false},
		{"set padding long", PSTATE_CMD_SET, M_SET_LONG_PAD, false},
		{"set unpadded", PSTATE_CMD_SET, M_SET_UNPADDED, false},
		{"set reason unterminated", PSTATE_CMD_SET,
		 M_SET_REASON_UNTERMINATED, false},
		{"set short header", PSTATE_CMD_SET, M_SET_SHORTER_THAN_HEADER,
		 false},
		{"set text_bytes u32 max", PSTATE_CMD_SET,
		 M_SET_TEXT_BYTES_HUGE, false},
		{"override ok", PSTATE_CMD_OVERRIDE, M_NONE, true},
		{"override mode 2", PSTATE_CMD_OVERRIDE, M_OV_MODE_2, false},
		{"override mode max", PSTATE_CMD_OVERRIDE, M_OV_MODE_HUGE,
		 false},
		{"override platform unterminated", PSTATE_CMD_OVERRIDE,
		 M_OV_PLATFORM_UNTERMINATED, false},
		{"override range unterminated", PSTATE_CMD_OVERRIDE,
		 M_OV_RANGE_UNTERMINATED, false},
		{"override reason unterminated", PSTATE_CMD_OVERRIDE,
		 M_OV_REASON_UNTERMINATED, false},
		{"override short", PSTATE_CMD_OVERRIDE, M_OV_SHORT, false},
		{"override long", PSTATE_CMD_OVERRIDE, M_OV_LONG, false},
		{"end ok", PSTATE_CMD_OVERRIDE_END, M_NONE, true},
		{"end reason unterminated", PSTATE_CMD_OVERRIDE_END,
		 M_END_REASON_UNTERMINATED, false},
		{"end short", PSTATE_CMD_OVERRIDE_END, M_END_SHORT, false},
		{"end long", PSTATE_CMD_OVERRIDE_END, M_END_LONG, false},
		{"kind 19", 19, M_KIND_UNKNOWN, false},
		{"kind 0", 0, M_KIND_ZERO, false},
	};
	for (size_t i = 0; i < N(rows); i++) {
		const struct frame_row *r = &rows[i];
		struct ext e = frame(r);
		struct pstate *s = pstate_new();
		u8 d0[32], d1[32];
		u32 outcome = 99;

		/* A state with something in it, so -EBADMSG must not touch
		 * it. */
		assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0), PSTATE_OK);
		assert_int_equal(open_ov(s, "android", "3.x", 0, 600, T0 + 1),
				 PSTATE_OK);
		digest(s, d0);
		bool valid = pstate_command_valid(r->kind, e.p, e.len);
		int ret = pstate_apply(s, r->kind, e.p, e.len, NS(T0 + 2),
				       &outcome);
		if (valid != r->valid || valid != (ret != -EBADMSG))
			fail_msg("%s: valid %d, apply %d", r->name, valid, ret);
		if (valid) {
			assert_int_equal(ret, 0);
		} else {
			assert_int_equal(ret, -EBADMSG);
			digest(s, d1);
			assert_memory_equal(d0, d1, 32);
			assert_int_equal(pstate_version_count(s), 1);
			assert_int_equal(pstate_override_count(s), 1);
			assert_true(live_has(s, 1));
		}
		pstate_free(s);
		free(e.p);
	}
}

/* Text whose length is a multiple of 16 needs no padding at all. */
static void set_text_of_exactly_sixteen_multiple_needs_no_padding(void **state)
{
	(void)state;
	char doc[128];
	/* doc_b padded with trailing spaces to 64 bytes. */
	snprintf(doc, sizeof(doc), "%-64s", doc_b);
	assert_int_equal(strlen(doc), 64);
	struct ext e = set_ext(doc, 0, NULL, 0);
	assert_int_equal(e.len, sizeof(struct pstate_set) + 64);
	assert_true(pstate_command_valid(PSTATE_CMD_SET, e.p, e.len));
	struct pstate *s = pstate_new();
	assert_int_equal(apply(s, PSTATE_CMD_SET, e.p, e.len, T0), PSTATE_OK);
	assert_false(pstate_command_valid(PSTATE_CMD_SET, e.p, e.len + 16));
	pstate_free(s);
	free(e.p);
}

/* ---- overrides -------------------------------------------------------- */

static void opened_override_is_live_with_its_id_and_times(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	struct pstate_override_info o;
	size_t n;

	assert_int_equal(open_ov(s, "android", "<4.0.0", 1, 3600, T0),
			 PSTATE_OK);
	assert_int_equal(pstate_override_count(s), 1);
	pstate_override_at(s, 0, &o);
	assert_int_equal(o.id, 1);
	assert_true(o.timestamp == NS(T0));
	assert_true(o.not_before_s == T0);
	assert_true(o.expires_at_s == T0 + 3600);
	assert_false(o.ended_early);
	assert_string_equal(o.cmd->platform, "android");
	assert_string_equal(o.cmd->range, "<4.0.0");
	assert_string_equal(o.cmd->reason, "incident 42");
	assert_int_equal(o.cmd->mode, 1);

	const struct policy_override *ov = pstate_overrides_live(s, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ov[0].id, 1);
	assert_true(ov[0].not_before_s == T0);
	assert_true(ov[0].expires_at_s == T0 + 3600);
	assert_int_equal(ov[0].mode, POLICY_OVERRIDE_ALLOW);
	assert_string_equal(ov[0].platform, "android");
	assert_string_equal(ov[0].range_text, "<4.0.0");

	/* Sub-second part of the record's time is dropped. */
	struct pstate_override_cmd c =
		ov_cmd("ios", "*", 0, 60, "second override");
	u32 outcome;
	assert_int_equal(pstate_apply(s, PSTATE_CMD_OVERRIDE, &c, sizeof(c),
				      NS(T0 + 5) + 999999999u, &outcome),
			 0);
	assert_int_equal(outcome, PSTATE_OK);
	pstate_override_at(s, 1, &o);
	assert_int_equal(o.id, 2);
	assert_true(o.not_before_s == T0 + 5);
	assert_true(o.expires_at_s == T0 + 65);
	ov = pstate_overrides_live(s, &n);
	assert_int_equal(n, 2);
	assert_int_equal(ov[0].id, 1);
	assert_int_equal(ov[1].id, 2);
	assert_int_equal(ov[1].mode, POLICY_OVERRIDE_COMPAT);
	pstate_free(s);
}

static void invalid_override_requests_are_refused_without_a_record(void **state)
{
	(void)state;
	struct {
		const char *platform, *range, *reason;
		u32 duration_s;
	} rows[] = {
		{"Android", "*", "r", 600},	   /* not a platform name */
		{"", "*", "r", 600},		   /* empty platform */
		{"android", "4.x-beta", "r", 600}, /* not a range */
		{"android", "*", "", 600},	   /* no reason */
		{"android", "*", "r\x01", 600},	   /* control character */
		{"android", "*", "r", 59},	   /* too short */
		{"android", "*", "r", POLICY_OVERRIDE_MAX_S + 1},
		{"android", "*", "r", 0},
	};
	struct pstate *s = pstate_new();
	for (size_t i = 0; i < N(rows); i++) {
		struct pstate_override_cmd c =
			ov_cmd(rows[i].platform, rows[i].range, 0,
			       rows[i].duration_s, rows[i].reason);
		if (apply(s, PSTATE_CMD_OVERRIDE, &c, sizeof(c), T0) !=
		    PSTATE_INVALID)
			fail_msg("row %zu was not refused", i);
	}
	assert_int_equal(pstate_override_count(s), 0);
	assert_int_equal(live_count(s), 0);
	/* The edges of the duration are fine. */
	assert_int_equal(
		open_ov(s, "android", "*", 0, POLICY_OVERRIDE_MIN_S, T0),
		PSTATE_OK);
	assert_int_equal(
		open_ov(s, "android", "*", 0, POLICY_OVERRIDE_MAX_S, T0),
		PSTATE_OK);
	pstate_free(s);
}

static void live_list_is_pruned_by_the_times_of_later_commands(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();

	assert_int_equal(open_ov(s, "android", "*", 0, 60, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "android", "*", 0, 120, T0), PSTATE_OK);
	/* Nothing prunes by itself: the list is as of the last command. */
	assert_int_equal(live_count(s), 2);
	/* One second before expiry: both stay (a failed end still prunes). */
	assert_int_equal(end_ov(s, 99, T0 + 59), PSTATE_NOT_FOUND);
	assert_int_equal(live_count(s), 2);
	/* At expiry (exclusive): the first goes; an invalid set prunes
	 * too. */
	assert_int_equal(set_doc(s, "{", 0, NULL, 0, T0 + 60), PSTATE_INVALID);
	assert_false(live_has(s, 1));
	assert_true(live_has(s, 2));
	assert_int_equal(live_count(s), 1);
	/* A successful set at the second's expiry prunes it. */
	assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0 + 120), PSTATE_OK);
	assert_int_equal(live_count(s), 0);
	/* The records stay, with their original expiry. */
	assert_int_equal(pstate_override_count(s), 2);
	struct pstate_override_info o;
	pstate_override_at(s, 0, &o);
	assert_true(o.expires_at_s == T0 + 60);
	assert_false(o.ended_early);
	pstate_free(s);
}

static void
ending_early_sets_expires_to_now_and_leaves_the_live_list(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	struct pstate_override_info o;

	assert_int_equal(open_ov(s, "android", "*", 0, 3600, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "ios", "*", 1, 3600, T0 + 1), PSTATE_OK);
	assert_int_equal(open_ov(s, "web", "*", 1, 3600, T0 + 2), PSTATE_OK);
	assert_int_equal(end_ov(s, 2, T0 + 100), PSTATE_OK);
	pstate_override_at(s, 1, &o);
	assert_true(o.expires_at_s == T0 + 100);
	assert_true(o.ended_early);
	assert_true(o.not_before_s == T0 + 1);
	/* The others are untouched, and keep their order. */
	size_t n;
	const struct policy_override *ov = pstate_overrides_live(s, &n);
	assert_int_equal(n, 2);
	assert_int_equal(ov[0].id, 1);
	assert_int_equal(ov[1].id, 3);
	pstate_override_at(s, 0, &o);
	assert_false(o.ended_early);
	assert_true(o.expires_at_s == T0 + 3600);
	/* Ending it again: already ended. */
	assert_int_equal(end_ov(s, 2, T0 + 101), PSTATE_ENDED);
	pstate_override_at(s, 1, &o);
	assert_true(o.expires_at_s == T0 + 100);
	pstate_free(s);
}

static void
end_of_unknown_id_is_not_found_and_of_expired_one_ended(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	struct pstate_override_info o;

	assert_int_equal(end_ov(s, 1, T0), PSTATE_NOT_FOUND);
	assert_int_equal(open_ov(s, "android", "*", 0, 60, T0), PSTATE_OK);
	assert_int_equal(end_ov(s, 0, T0 + 1), PSTATE_NOT_FOUND);
	assert_int_equal(end_ov(s, 2, T0 + 1), PSTATE_NOT_FOUND);
	assert_int_equal(end_ov(s, UINT64_MAX, T0 + 1), PSTATE_NOT_FOUND);
	/* At its expiry second it has ended by itself. */
	assert_int_equal(end_ov(s, 1, T0 + 60), PSTATE_ENDED);
	pstate_override_at(s, 0, &o);
	assert_false(o.ended_early);
	assert_true(o.expires_at_s == T0 + 60);
	assert_int_equal(live_count(s), 0);
	pstate_free(s);
}

static void sixty_fifth_live_override_is_full_until_one_expires(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	u8 d0[32], d1[32];

	/* The first lives 60 s, the others an hour. */
	assert_int_equal(open_ov(s, "android", "*", 0, 60, T0), PSTATE_OK);
	for (u32 i = 1; i < POLICY_OVERRIDES_MAX; i++)
		assert_int_equal(open_ov(s, "android", "*", 0, 3600, T0 + 1),
				 PSTATE_OK);
	assert_int_equal(live_count(s), POLICY_OVERRIDES_MAX);
	digest(s, d0);
	assert_int_equal(open_ov(s, "ios", "*", 0, 3600, T0 + 59), PSTATE_FULL);
	digest(s, d1);
	assert_memory_equal(d0, d1, 32);
	assert_int_equal(pstate_override_count(s), POLICY_OVERRIDES_MAX);
	/* The first expires at T0 + 60: room for exactly one. */
	assert_int_equal(open_ov(s, "ios", "*", 0, 3600, T0 + 60), PSTATE_OK);
	assert_int_equal(live_count(s), POLICY_OVERRIDES_MAX);
	assert_false(live_has(s, 1));
	assert_true(live_has(s, POLICY_OVERRIDES_MAX + 1));
	assert_int_equal(open_ov(s, "ios", "*", 0, 3600, T0 + 61), PSTATE_FULL);
	/* Ending one early makes room too. */
	assert_int_equal(end_ov(s, 2, T0 + 62), PSTATE_OK);
	assert_int_equal(live_count(s), POLICY_OVERRIDES_MAX - 1);
	assert_int_equal(open_ov(s, "ios", "*", 0, 3600, T0 + 63), PSTATE_OK);
	assert_int_equal(pstate_override_count(s), POLICY_OVERRIDES_MAX + 2);
	pstate_free(s);
}

static struct policy_decision decide(const struct pstate *s,
				     const char *version, int64_t now)
{
	struct policy_query q = {0};
	struct policy_decision d;
	size_t n;
	const struct policy_override *ov = pstate_overrides_live(s, &n);

	q.platform = "android";
	q.platform_len = 7;
	q.version = version;
	q.version_len = strlen(version);
	q.now_s = now;
	assert_int_equal(
		policy_evaluate(pstate_current(s, NULL), &q, ov, n, &d), 0);
	return d;
}

static void
live_override_relaxes_a_blocked_version_exactly_while_active(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	struct policy_decision d;

	assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0), PSTATE_OK);
	d = decide(s, "3.5.0", T0);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	assert_int_equal(open_ov(s, "android", "3.5.x", 1, 600, T0 + 100),
			 PSTATE_OK);
	/* An override of another platform or range changes nothing. */
	assert_int_equal(open_ov(s, "ios", "*", 1, 600, T0 + 100), PSTATE_OK);

	const struct {
		const char *version;
		int64_t now;
		u8 verdict;
	} rows[] = {
		{"3.5.0", T0 + 99, POLICY_BLOCKED},
		{"3.5.0", T0 + 100, POLICY_SUPPORTED},
		{"3.5.9", T0 + 699, POLICY_SUPPORTED},
		{"3.5.0", T0 + 700, POLICY_BLOCKED},
		{"3.6.0", T0 + 300, POLICY_BLOCKED},
		{"4.0.0", T0 + 300, POLICY_SUPPORTED},
	};
	for (size_t i = 0; i < N(rows); i++) {
		d = decide(s, rows[i].version, rows[i].now);
		if (d.verdict != rows[i].verdict)
			fail_msg("row %zu: verdict %d", i, d.verdict);
		if (d.verdict == POLICY_SUPPORTED &&
		    rows[i].version[0] == '3') {
			assert_non_null(d.override);
			assert_int_equal(d.override->id, 1);
			assert_int_equal(d.verdict_without_override,
					 POLICY_BLOCKED);
		} else {
			assert_null(d.override);
		}
	}
	/* Ended early: no longer relaxes, from the end's second. */
	assert_int_equal(end_ov(s, 1, T0 + 200), PSTATE_OK);
	d = decide(s, "3.5.0", T0 + 200);
	assert_int_equal(d.verdict, POLICY_BLOCKED);
	assert_null(d.override);
	pstate_free(s);
}

static void compat_override_serves_blocked_versions_in_compat_mode(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "android", "<4.0.0", 0, 600, T0),
			 PSTATE_OK);
	struct policy_decision d = decide(s, "3.9.0", T0 + 1);
	assert_int_equal(d.verdict, POLICY_COMPAT);
	assert_int_equal(d.verdict_without_override, POLICY_BLOCKED);
	/* A later allow for the same versions wins over compat. */
	assert_int_equal(open_ov(s, "android", "3.9.0", 1, 600, T0 + 2),
			 PSTATE_OK);
	d = decide(s, "3.9.0", T0 + 3);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	assert_int_equal(d.override->id, 2);
	pstate_free(s);
}

/* ---- snapshot and digest ------------------------------------------------ */

/* Everything the two states show through the API is the same. */
static void assert_same_state(const struct pstate *a, const struct pstate *b)
{
	u64 va, vb;
	const struct policy *pa = pstate_current(a, &va);
	const struct policy *pb = pstate_current(b, &vb);
	assert_int_equal(va, vb);
	assert_int_equal(pa == NULL, pb == NULL);
	if (pa) {
		char *ra = render(pa), *rb = render(pb);
		assert_string_equal(ra, rb);
		free(ra);
		free(rb);
	}
	assert_int_equal(pstate_version_count(a), pstate_version_count(b));
	for (u64 v = 1; v <= pstate_version_count(a); v++) {
		struct pstate_version x, y;
		assert_true(pstate_version_get(a, v, &x));
		assert_true(pstate_version_get(b, v, &y));
		assert_int_equal(x.version, y.version);
		assert_true(x.timestamp == y.timestamp);
		assert_memory_equal(x.author, y.author, 32);
		assert_int_equal(x.rollback_of, y.rollback_of);
		assert_memory_equal(x.reason, y.reason, sizeof(x.reason));
		assert_int_equal(x.text_len, y.text_len);
		assert_memory_equal(x.text, y.text, x.text_len);
	}
	assert_int_equal(pstate_override_count(a), pstate_override_count(b));
	for (u64 i = 0; i < pstate_override_count(a); i++) {
		struct pstate_override_info x, y;
		pstate_override_at(a, i, &x);
		pstate_override_at(b, i, &y);
		assert_int_equal(x.id, y.id);
		assert_true(x.timestamp == y.timestamp);
		assert_memory_equal(x.cmd, y.cmd, sizeof(*x.cmd));
		assert_true(x.not_before_s == y.not_before_s);
		assert_true(x.expires_at_s == y.expires_at_s);
		assert_int_equal(x.ended_early, y.ended_early);
		assert_true(x.end_timestamp == y.end_timestamp);
		assert_memory_equal(x.end_author, y.end_author, 32);
		assert_string_equal(x.end_reason, y.end_reason);
		assert_true(x.expired_timestamp == y.expired_timestamp);
		assert_int_equal(x.extensions, y.extensions);
		for (u64 hx = x.last_extension, hy = y.last_extension; hx;) {
			struct pstate_extension ex, ey;
			assert_true(pstate_extension_get(a, hx, &ex));
			assert_true(pstate_extension_get(b, hy, &ey));
			assert_true(ex.timestamp == ey.timestamp);
			assert_memory_equal(ex.author, ey.author, 32);
			assert_int_equal(ex.duration_s, ey.duration_s);
			assert_true(ex.expires_at_s == ey.expires_at_s);
			assert_string_equal(ex.reason, ey.reason);
			hx = ex.prev;
			hy = ey.prev;
		}
		assert_int_equal(x.kind, y.kind);
		assert_true(x.expected_end_s == y.expected_end_s);
		assert_int_equal(x.message_len, y.message_len);
		assert_int_equal(x.message == NULL, y.message == NULL);
		if (x.message)
			assert_string_equal(x.message, y.message);
	}
	assert_true(pstate_expiry_next(a) == pstate_expiry_next(b));
	size_t na, nb;
	const struct policy_override *la = pstate_overrides_live(a, &na);
	const struct policy_override *lb = pstate_overrides_live(b, &nb);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(la[i].id, lb[i].id);
		assert_true(la[i].not_before_s == lb[i].not_before_s);
		assert_true(la[i].expires_at_s == lb[i].expires_at_s);
		assert_int_equal(la[i].mode, lb[i].mode);
		assert_string_equal(la[i].platform, lb[i].platform);
		assert_string_equal(la[i].range_text, lb[i].range_text);
		assert_string_equal(la[i].reason, lb[i].reason);
		assert_memory_equal(&la[i].range, &lb[i].range,
				    sizeof(la[i].range));
		assert_true(la[i].expected_end_s == lb[i].expected_end_s);
		assert_int_equal(la[i].message == NULL, lb[i].message == NULL);
	}
}

static void assert_same_digest_and_state(const struct pstate *a,
					 const struct pstate *b)
{
	u8 d1[32], d2[32];
	digest(a, d1);
	digest(b, d2);
	assert_memory_equal(d1, d2, 32);
	assert_same_state(a, b);
}

/* Write, read, write: the same bytes, digest and visible state. */
static void round_trip(const struct pstate *s)
{
	struct buf b1 = snapshot(s);
	struct pstate *r = pstate_snapshot_read(b1.p, b1.len);
	assert_non_null(r);
	struct buf b2 = snapshot(r);
	assert_int_equal(b1.len, b2.len);
	assert_memory_equal(b1.p, b2.p, b1.len);
	assert_same_digest_and_state(s, r);
	pstate_free(r);
	free(b1.p);
	free(b2.p);
}

/* Version i's document: min_supported i.0.0 (all distinct). */
static void doc_n(char *buf, size_t cap, unsigned i)
{
	snprintf(buf, cap,
		 "{\"platforms\":{\"android\":{\"min_supported\":\"%u.0.0\"}}}",
		 i);
}

static struct pstate *grown_state(void)
{
	struct pstate *s = pstate_new();
	char doc[128], reason[32];
	u64 t = T0;

	/* 40 versions (arrays grow past 16 and 32), rollbacks among them. */
	for (unsigned i = 1; i <= 40; i++) {
		snprintf(reason, sizeof(reason), "step %u", i);
		if (i % 10 == 0) {
			struct pstate_version pv;
			assert_true(pstate_version_get(s, i - 5, &pv));
			assert_int_equal(
				set_doc(s, pv.text, i - 5, reason, (u8)i, t++),
				PSTATE_OK);
			continue;
		}
		doc_n(doc, sizeof(doc), i);
		assert_int_equal(set_doc(s, doc, 0, reason, (u8)i, t++),
				 PSTATE_OK);
	}
	/* 40 overrides: ones that expired, ones ended early, live ones. */
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(open_ov(s, i % 2 ? "android" : "ios",
					 i % 3 ? "<4.0.0" : "3.x || 5.x", i % 2,
					 i < 20 ? 60 : 7200, t + i),
				 PSTATE_OK);
	t += 1000; /* the first 20 have expired */
	for (u64 id = 21; id <= 40; id += 4)
		assert_int_equal(end_ov(s, id, t), PSTATE_OK);
	return s;
}

static void snapshot_round_trip_is_byte_exact_with_grown_arrays(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();

	round_trip(s); /* empty */
	assert_int_equal(set_doc(s, doc_a, 0, "one", 1, T0), PSTATE_OK);
	round_trip(s);
	assert_int_equal(open_ov(s, "android", "3.x", 1, 600, T0 + 1),
			 PSTATE_OK);
	round_trip(s);
	pstate_free(s);

	s = grown_state();
	assert_int_equal(pstate_version_count(s), 40);
	assert_int_equal(pstate_override_count(s), 40);
	assert_int_equal(live_count(s), 15);
	/* A later set: the live list as of it. */
	assert_int_equal(set_doc(s, doc_b, 0, "late", 0, T0 + 2000), PSTATE_OK);
	round_trip(s);
	pstate_free(s);
}

/* The live list after a restore is the one the applier had, even when
 * the last command was the end of an override (a command that leaves
 * no record of its own time). */
static void snapshot_after_ending_an_override_keeps_the_live_list(void **state)
{
	(void)state;
	struct pstate *s = grown_state(); /* its last command is an end */
	assert_int_equal(live_count(s), 15);
	round_trip(s);
	pstate_free(s);

	s = pstate_new();
	assert_int_equal(open_ov(s, "android", "*", 0, 3600, T0), PSTATE_OK);
	assert_int_equal(end_ov(s, 1, T0 + 10), PSTATE_OK);
	assert_int_equal(live_count(s), 0);
	round_trip(s);
	pstate_free(s);
}

static u32 extend_ov(struct pstate *s, u64 id, u32 duration_s, u64 ts_s)
{
	struct pstate_override_extend x;
	memset(&x, 0, sizeof(x));
	x.id = id;
	x.duration_s = duration_s;
	memcpy(x.reason, "still broken", 12);
	return apply(s, PSTATE_CMD_OVERRIDE_EXTEND, &x, sizeof(x), ts_s);
}

/* An extension moves the end to the record's time + duration_s, later
 * only; an ended, expired or unknown override is refused; the new end
 * is in the live list and survives a snapshot. */
static void extension_moves_the_end_and_survives_a_snapshot(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	struct pstate_override_info o;
	size_t n;
	assert_int_equal(open_ov(s, "android", "3.x", 1, 600, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "android", "2.x", 1, 600, T0), PSTATE_OK);
	assert_int_equal(extend_ov(s, 1, 3600, T0 + 100), PSTATE_OK);
	pstate_override_at(s, 0, &o);
	assert_true(o.expires_at_s == (int64_t)T0 + 3700);
	assert_false(o.ended_early);
	const struct policy_override *live = pstate_overrides_live(s, &n);
	assert_int_equal(n, 2);
	assert_true(live[0].id == 1 && live[0].expires_at_s == T0 + 3700);
	/* Not later than the current end: refused, nothing changes. */
	assert_int_equal(extend_ov(s, 1, 3500, T0 + 150), PSTATE_INVALID);
	assert_int_equal(extend_ov(s, 1, 3600, T0 + 100), PSTATE_INVALID);
	pstate_override_at(s, 0, &o);
	assert_true(o.expires_at_s == (int64_t)T0 + 3700);
	assert_int_equal(extend_ov(s, 3, 600, T0 + 200), PSTATE_NOT_FOUND);
	assert_int_equal(extend_ov(s, 0, 600, T0 + 200), PSTATE_NOT_FOUND);
	/* Ended, or expired (override 2 ended at T0 + 600). */
	assert_int_equal(end_ov(s, 1, T0 + 300), PSTATE_OK);
	assert_int_equal(extend_ov(s, 1, 3600, T0 + 301), PSTATE_ENDED);
	assert_int_equal(extend_ov(s, 2, 3600, T0 + 600), PSTATE_ENDED);
	pstate_free(s);

	s = pstate_new();
	assert_int_equal(open_ov(s, "android", "3.x", 1, 600, T0), PSTATE_OK);
	assert_int_equal(extend_ov(s, 1, 7200, T0 + 500), PSTATE_OK);
	round_trip(s);
	pstate_free(s);
}

static u32 expired_ov(struct pstate *s, u64 id, int64_t end_s, u64 ts_s)
{
	struct pstate_override_expired x = {.id = id, .expires_at_s = end_s};
	return apply(s, PSTATE_CMD_OVERRIDE_EXPIRED, &x, sizeof(x), ts_s);
}

/* The commands of expiry_entry_is_recorded_once_and_replays_alike, in
 * order, with the outcome each must have. */
static void expiry_story(struct pstate *s)
{
	assert_int_equal(open_ov(s, "android", "3.x", 1, 60, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "android", "2.x", 1, 600, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "ios", "1.x", 1, 600, T0), PSTATE_OK);
	/* Not yet at its end: refused. */
	assert_int_equal(expired_ov(s, 1, T0 + 60, T0 + 59), PSTATE_INVALID);
	assert_int_equal(expired_ov(s, 1, T0 + 60, T0 + 60), PSTATE_OK);
	assert_int_equal(expired_ov(s, 1, T0 + 60, T0 + 61), PSTATE_UNCHANGED);
	/* Ended early: no expiry. */
	assert_int_equal(end_ov(s, 2, T0 + 100), PSTATE_OK);
	assert_int_equal(expired_ov(s, 2, T0 + 100, T0 + 200), PSTATE_ENDED);
	/* Extended meanwhile: the old end is stale, the new one is not yet
	 * reached, then it is. */
	assert_int_equal(extend_ov(s, 3, 3600, T0 + 500), PSTATE_OK);
	assert_int_equal(expired_ov(s, 3, T0 + 600, T0 + 700), PSTATE_INVALID);
	assert_int_equal(expired_ov(s, 3, T0 + 4100, T0 + 4099),
			 PSTATE_INVALID);
	assert_int_equal(expired_ov(s, 3, T0 + 4100, T0 + 4100), PSTATE_OK);
	assert_int_equal(expired_ov(s, 4, T0 + 60, T0 + 4200),
			 PSTATE_NOT_FOUND);
}

/* Kind 21: recorded once per override that reached its end, never for
 * one ended early or before its (extended) end; it changes no decision
 * (the live list is the same with or without it); replaying the same
 * records gives the same digest, and a snapshot keeps it. */
static void expiry_entry_is_recorded_once_and_replays_alike(void **state)
{
	(void)state;
	struct pstate *s = pstate_new(), *again = pstate_new();
	struct pstate_override_info o;
	struct pstate_extension x;
	u64 ids[4];

	/* Before any entry: what is due, and when to look next. */
	assert_int_equal(open_ov(s, "android", "3.x", 1, 60, T0), PSTATE_OK);
	assert_true(pstate_expiry_next(s) == (int64_t)T0 + 60);
	assert_int_equal(pstate_expiry_due(s, T0 + 59, ids, 4), 0);
	assert_int_equal(pstate_expiry_due(s, T0 + 60, ids, 4), 1);
	assert_int_equal(ids[0], 1);
	pstate_free(s);

	s = pstate_new();
	expiry_story(s);
	pstate_override_at(s, 0, &o);
	assert_true(o.expired_timestamp == NS(T0 + 60));
	assert_false(o.ended_early);
	pstate_override_at(s, 1, &o);
	assert_true(o.ended_early && o.expired_timestamp == 0);
	assert_true(o.end_timestamp == NS(T0 + 100));
	assert_string_equal(o.end_reason, "fixed");
	pstate_override_at(s, 2, &o);
	assert_true(o.expired_timestamp == NS(T0 + 4100));
	assert_int_equal(o.extensions, 1);
	assert_true(pstate_extension_get(s, o.last_extension, &x));
	assert_int_equal(x.duration_s, 3600);
	assert_true(x.expires_at_s == (int64_t)T0 + 4100);
	assert_true(x.timestamp == NS(T0 + 500));
	assert_string_equal(x.reason, "still broken");
	assert_int_equal(x.prev, 0);
	assert_false(pstate_extension_get(s, 0, &x));
	assert_int_equal(pstate_expiry_due(s, T0 + 9999, ids, 4), 0);
	assert_true(pstate_expiry_next(s) == INT64_MAX);
	/* Malformed: id 0, no end, wrong size. */
	struct pstate_override_expired bad = {.id = 0, .expires_at_s = 1};
	assert_false(pstate_command_valid(PSTATE_CMD_OVERRIDE_EXPIRED, &bad,
					  sizeof(bad)));
	bad = (struct pstate_override_expired){.id = 1, .expires_at_s = 0};
	assert_false(pstate_command_valid(PSTATE_CMD_OVERRIDE_EXPIRED, &bad,
					  sizeof(bad)));
	bad.expires_at_s = T0 + 60;
	assert_false(
		pstate_command_valid(PSTATE_CMD_OVERRIDE_EXPIRED, &bad, 8));
	u32 outcome = 0;
	assert_int_equal(pstate_apply(s, PSTATE_CMD_OVERRIDE_EXPIRED, &bad, 8,
				      NS(T0 + 9999), &outcome),
			 -EBADMSG);

	/* Replay: the same digest; a snapshot keeps every field. */
	expiry_story(again);
	assert_same_digest_and_state(s, again);
	round_trip(s);
	pstate_free(again);

	/* The entry decides nothing: the same live list without it. */
	again = pstate_new();
	struct pstate *without = pstate_new();
	assert_int_equal(open_ov(again, "android", "3.x", 1, 60, T0),
			 PSTATE_OK);
	assert_int_equal(open_ov(without, "android", "3.x", 1, 60, T0),
			 PSTATE_OK);
	assert_int_equal(open_ov(again, "ios", "1.x", 1, 600, T0 + 1),
			 PSTATE_OK);
	assert_int_equal(open_ov(without, "ios", "1.x", 1, 600, T0 + 1),
			 PSTATE_OK);
	assert_int_equal(expired_ov(again, 1, T0 + 60, T0 + 61), PSTATE_OK);
	assert_int_equal(end_ov(again, 9, T0 + 62), PSTATE_NOT_FOUND);
	assert_int_equal(end_ov(without, 9, T0 + 62), PSTATE_NOT_FOUND);
	assert_int_equal(live_count(again), live_count(without));
	assert_false(live_has(again, 1));
	assert_true(live_has(again, 2) && live_has(without, 2));
	pstate_free(without);
	pstate_free(again);
	pstate_free(s);
}

/* Version 1 and override 1 (android 3.x, 600 s). */
static struct pstate *one_version_one_override(void)
{
	struct pstate *s = pstate_new();
	assert_int_equal(set_doc(s, doc_b, 0, "one", 1, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "android", "3.x", 1, 600, T0 + 1),
			 PSTATE_OK);
	return s;
}

/* A snapshot of the format before the end's author and reason, the
 * expiry entries and the extensions were kept ("TPWPOL01") still reads:
 * its overrides have none of those (and so get their expiry entry). */
static void format_1_snapshot_still_reads(void **state)
{
	(void)state;
	struct pstate *s = one_version_one_override();
	struct buf b = snapshot(s);
	/* Format 1: magic '1', no per-override tail (kind, expected end,
	 * message length; the end's time, author and reason, the expiry
	 * entry's time), no extension count. */
	const size_t tail = 24 + 8 + 32 + PSTATE_REASON_BYTES + 8;
	size_t v1_len = b.len - tail - 8;
	u8 *v1 = malloc(v1_len);
	assert_non_null(v1);
	memcpy(v1, b.p, v1_len);
	v1[7] = '1';
	struct pstate *r = pstate_snapshot_read(v1, v1_len);
	assert_non_null(r);
	assert_same_state(s, r);
	struct buf b2 = snapshot(r);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.p, b.p, b.len);
	u64 ids[2];
	assert_int_equal(pstate_expiry_due(r, T0 + 601, ids, 2), 1);
	/* One byte more or less is not a format-1 snapshot. */
	assert_null(pstate_snapshot_read(v1, v1_len - 1));
	free(b2.p);
	free(v1);
	free(b.p);
	pstate_free(r);
	pstate_free(s);
}

struct digest_case {
	const char *name;
	int variant;
};

/* A small state; variant k changes exactly one thing. */
static struct pstate *variant_state(int k)
{
	struct pstate *s = pstate_new();
	struct ext e = set_ext(doc_a, 0, "why", 1);
	struct pstate_set h;
	memcpy(&h, e.p, sizeof(h));
	if (k == 1)
		h.author[31] ^= 1;
	if (k == 2)
		h.reason[200] = 'x'; /* after the NUL: still journaled */
	if (k == 3)
		h.reason[0] = 'W';
	memcpy(e.p, &h, sizeof(h));
	assert_int_equal(
		apply(s, PSTATE_CMD_SET, e.p, e.len, k == 4 ? T0 + 1 : T0),
		PSTATE_OK);
	free(e.p);
	assert_int_equal(set_doc(s, doc_b, 0, NULL, 0, T0 + 10), PSTATE_OK);
	if (k == 5) /* changes nothing: the same digest as variant 0 */
		assert_int_equal(set_doc(s, doc_b, 0, "again", 9, T0 + 12),
				 PSTATE_UNCHANGED);
	if (k == 6)
		assert_int_equal(set_doc(s, doc_a, 1, NULL, 0, T0 + 11),
				 PSTATE_OK);
	if (k == 7)
		assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0 + 11),
				 PSTATE_OK);
	struct pstate_override_cmd c =
		ov_cmd("android", "3.x", 1, 600, "incident");
	if (k == 8)
		c.mode = 0;
	if (k == 9)
		c.duration_s = 601;
	if (k == 10)
		c.range[0] = '4';
	if (k == 11)
		c.author[0] ^= 1;
	if (k == 12)
		c.reserved = 1; /* not read, but journaled */
	if (k == 13)
		c.platform[40] = 'z';
	assert_int_equal(apply(s, PSTATE_CMD_OVERRIDE, &c, sizeof(c),
			       k == 14 ? T0 + 21 : T0 + 20),
			 PSTATE_OK);
	if (k == 15)
		assert_int_equal(end_ov(s, 1, T0 + 30), PSTATE_OK);
	if (k == 16)
		assert_int_equal(end_ov(s, 1, T0 + 31), PSTATE_OK);
	if (k == 17)
		assert_int_equal(open_ov(s, "web", "*", 0, 60, T0 + 40),
				 PSTATE_OK);
	return s;
}

static void digest_differs_when_anything_differs(void **state)
{
	(void)state;
	enum { K = 18 };
	u8 d[K][32];
	for (int k = 0; k < K; k++) {
		struct pstate *s = variant_state(k);
		digest(s, d[k]);
		/* Deterministic: the same commands, the same digest. */
		struct pstate *t = variant_state(k);
		u8 again[32];
		digest(t, again);
		assert_memory_equal(d[k], again, 32);
		pstate_free(t);
		pstate_free(s);
	}
	for (int i = 0; i < K; i++)
		for (int j = i + 1; j < K; j++)
			if (memcmp(d[i], d[j], 32) == 0 && !(i == 0 && j == 5))
				fail_msg("variants %d and %d collide", i, j);
	/* An unchanged set leaves no trace. */
	assert_memory_equal(d[0], d[5], 32);
}

/* Offsets into a snapshot with one version and one override. */
#define OFF_NVERSIONS  8
#define OFF_V0	       16
#define OFF_V0_TEXTLEN (OFF_V0 + 8 + 32 + 8 + PSTATE_REASON_BYTES)
#define OFF_V0_TEXT    (OFF_V0_TEXTLEN + 8)

static void truncated_or_garbled_snapshots_are_refused(void **state)
{
	(void)state;
	struct pstate *s = one_version_one_override();
	struct buf b = snapshot(s);
	struct pstate_version pv;
	assert_true(pstate_version_get(s, 1, &pv));
	const size_t tlen = pv.text_len;
	const size_t off_ov = OFF_V0_TEXT + tlen; /* count, then timestamp */
	const size_t off_cmd = off_ov + 8 + 8;
	const size_t off_ended =
		off_cmd + sizeof(struct pstate_override_cmd) + 8;
	/* then kind, expected end, message length (0: a kind 17), the end's
	 * time, author and reason, the expiry entry's time */
	const size_t off_kind = off_ended + 8;
	const size_t off_end_reason = off_kind + 24 + 8 + 32;
	const size_t off_next = off_end_reason + PSTATE_REASON_BYTES + 8;
	assert_int_equal(b.len, off_next + 8);
	assert_memory_equal(b.p + OFF_V0_TEXT, pv.text, tlen);

	/* Every truncation, and a byte too many. */
	for (size_t n = 0; n < b.len; n++)
		assert_null(pstate_snapshot_read(b.p, n));
	u8 *longer = malloc(b.len + 1);
	assert_non_null(longer);
	memcpy(longer, b.p, b.len);
	longer[b.len] = 0;
	assert_null(pstate_snapshot_read(longer, b.len + 1));
	free(longer);

	/* Field by field. */
	struct {
		const char *name;
		size_t off;
		u64 value;
		size_t width;
	} rows[] = {
		{"magic", 0, 'X', 1},
		{"magic version", 7, '3', 1},
		{"version count +1", OFF_NVERSIONS, 2, 8},
		{"version count huge", OFF_NVERSIONS, UINT64_MAX, 8},
		{"rollback_of unknown", OFF_V0 + 8 + 32, 1, 8},
		{"text_len 0", OFF_V0_TEXTLEN, 0, 8},
		{"text_len short", OFF_V0_TEXTLEN, tlen - 1, 8},
		{"text_len huge", OFF_V0_TEXTLEN, UINT64_MAX, 8},
		{"text not json", OFF_V0_TEXT, '[', 1},
		{"text not canonical (space)", OFF_V0_TEXT + 1, ' ', 1},
		{"override count +1", off_ov, 2, 8},
		{"override count huge", off_ov, UINT64_MAX, 8},
		{"override mode 2",
		 off_cmd + offsetof(struct pstate_override_cmd, mode), 2, 4},
		{"override duration 0",
		 off_cmd + offsetof(struct pstate_override_cmd, duration_s), 0,
		 4},
		{"override platform bad",
		 off_cmd + offsetof(struct pstate_override_cmd, platform), 'A',
		 1},
		{"override ended 2", off_ended, 2, 8},
		{"extension count +1", off_next, 1, 8},
		{"extension count huge", off_next, UINT64_MAX, 8},
		{"override kind 18", off_kind, 18, 8},
		{"kind 17 with an expected end", off_kind + 8, T0, 8},
		{"kind 17 with a message", off_kind + 16, 1, 8},
	};
	for (size_t i = 0; i < N(rows); i++) {
		u8 *g = malloc(b.len);
		assert_non_null(g);
		memcpy(g, b.p, b.len);
		memcpy(g + rows[i].off, &rows[i].value, rows[i].width);
		struct pstate *r = pstate_snapshot_read(g, b.len);
		if (r)
			fail_msg("%s: accepted", rows[i].name);
		free(g);
	}

	/* The reason of a version with no NUL in its 208 bytes. */
	u8 *g = malloc(b.len);
	assert_non_null(g);
	memcpy(g, b.p, b.len);
	memset(g + OFF_V0 + 8 + 32 + 8, 'r', PSTATE_REASON_BYTES);
	assert_null(pstate_snapshot_read(g, b.len));
	/* ... and an end reason with none. */
	memcpy(g, b.p, b.len);
	memset(g + off_end_reason, 'r', PSTATE_REASON_BYTES);
	assert_null(pstate_snapshot_read(g, b.len));
	free(g);

	/* Every single-byte change: refused, or a state that writes back
	 * exactly the bytes it was read from. */
	for (size_t i = 0; i < b.len; i++) {
		static const u8 flips[] = {0x01, 0x20, 0x80, 0xff};
		for (size_t f = 0; f < N(flips); f++) {
			b.p[i] ^= flips[f];
			struct pstate *r = pstate_snapshot_read(b.p, b.len);
			if (r) {
				struct buf again = snapshot(r);
				if (again.len != b.len ||
				    memcmp(again.p, b.p, b.len) != 0)
					fail_msg("byte %zu ^ %#x: read, but "
						 "writes back other bytes",
						 i, flips[f]);
				free(again.p);
				pstate_free(r);
			}
			b.p[i] ^= flips[f];
		}
	}
	free(b.p);
	pstate_free(s);
}

/* A document of the same length as the canonical text but not
 * canonical (keys out of order) is not a snapshot this code wrote: it
 * would come back as other bytes, with another digest. */
static void snapshot_text_must_be_canonical_not_just_as_long(void **state)
{
	(void)state;
	static const char two[] =
		"{\"platforms\":{\"android\":{\"min_supported\":\"1.0.0\"},"
		"\"ios\":{\"min_supported\":\"2.0.0\"}}}";
	static const char swapped[] =
		"{\"platforms\":{\"ios\":{\"min_supported\":\"2.0.0\"},"
		"\"android\":{\"min_supported\":\"1.0.0\"}}}";
	struct pstate *s = pstate_new();
	assert_int_equal(set_doc(s, two, 0, NULL, 0, T0), PSTATE_OK);
	struct pstate_version pv;
	assert_true(pstate_version_get(s, 1, &pv));
	assert_string_equal(pv.text, two); /* two is canonical */
	assert_int_equal(strlen(swapped), pv.text_len);
	struct buf b = snapshot(s);
	assert_memory_equal(b.p + OFF_V0_TEXT, two, pv.text_len);
	memcpy(b.p + OFF_V0_TEXT, swapped, pv.text_len);
	struct pstate *r = pstate_snapshot_read(b.p, b.len);
	if (r) {
		struct buf again = snapshot(r);
		bool same =
			again.len == b.len && memcmp(again.p, b.p, b.len) == 0;
		free(again.p);
		pstate_free(r);
		fail_msg("a non-canonical text was accepted (writes back %s)",
			 same ? "the same bytes" : "other bytes");
	}
	free(b.p);
	pstate_free(s);
}

/* ---- kind 20: an override that tells the users ------------------------ */

#define MSG_EN_DE "{\"de\":\"Bald wieder\",\"default\":\"Back soon\"}"

static void override_2_carries_message_and_expected_end_not_reason(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0), PSTATE_OK);
	assert_int_equal(open_ov2(s, "3.x", MSG_EN_DE, T0 + 3600, 600, T0),
			 PSTATE_OK);
	struct pstate_override_info info;
	assert_int_equal(pstate_override_count(s), 1);
	pstate_override_at(s, 0, &info);
	assert_int_equal(info.kind, PSTATE_CMD_OVERRIDE_2);
	assert_string_equal(info.message, MSG_EN_DE);
	assert_int_equal(info.message_len, strlen(MSG_EN_DE));
	assert_true(info.expected_end_s == T0 + 3600);
	assert_true(info.expires_at_s == T0 + 600);
	assert_string_equal(info.cmd->reason, "locked out by REL-311");

	/* The decision picks the message's locale as other messages. */
	struct policy_query q = {0};
	struct policy_decision d;
	size_t n;
	const struct policy_override *ov = pstate_overrides_live(s, &n);
	policy_query_set_client_version(&q, "android/3.9.0", 13);
	q.languages = "de-CH, en;q=0.5";
	q.now_s = T0 + 1;
	assert_int_equal(
		policy_evaluate(pstate_current(s, NULL), &q, ov, n, &d), 0);
	assert_int_equal(d.verdict, POLICY_SUPPORTED);
	assert_non_null(d.override);
	assert_string_equal(d.override_message, "Bald wieder");
	q.languages = "fr";
	assert_int_equal(
		policy_evaluate(pstate_current(s, NULL), &q, ov, n, &d), 0);
	assert_string_equal(d.override_message, "Back soon");

	/* What clients see: the message and expected end, never the
	 * reason. */
	json_t *j = policy_decision_json(pstate_current(s, NULL), &d);
	assert_non_null(j);
	json_t *o = json_object_get(j, "override");
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "message")),
			    "Back soon");
	assert_string_equal(
		json_string_value(json_object_get(o, "expected_end")),
		"2027-01-15T01:00:00Z");
	assert_null(json_object_get(o, "reason"));
	char *text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	assert_null(strstr(text, "REL-311"));
	free(text);
	json_decref(j);

	/* A kind 17 override beside it: no message, no expected end. */
	assert_int_equal(open_ov(s, "android", "3.8.x", 1, 600, T0 + 2),
			 PSTATE_OK);
	pstate_override_at(s, 1, &info);
	assert_int_equal(info.kind, PSTATE_CMD_OVERRIDE);
	assert_null(info.message);
	assert_true(info.expected_end_s == POLICY_TIME_NONE);
	/* And a kind 20 that says only when. */
	assert_int_equal(open_ov2(s, "3.7.x", "", T0 + 60, 600, T0 + 3),
			 PSTATE_OK);
	pstate_override_at(s, 2, &info);
	assert_null(info.message);
	assert_true(info.expected_end_s == T0 + 60);
	round_trip(s);
	pstate_free(s);
}

static void override_2_bad_message_or_framing_is_refused(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	assert_int_equal(set_doc(s, doc_a, 0, NULL, 0, T0), PSTATE_OK);
	/* Well framed, but not a message a document could hold: invalid,
	 * nothing opened. */
	static const char *const bad[] = {
		"{\"de\":\"Bald\"}",		     /* no default */
		"{\"default\":\"\"}",		     /* empty text */
		"{\"default\":\"a\",\"x y\":\"b\"}", /* not a tag */
		"[\"default\"]",
		"{\"default\":",
	};
	for (size_t i = 0; i < N(bad); i++)
		if (open_ov2(s, "3.x", bad[i], 0, 600, T0) != PSTATE_INVALID)
			fail_msg("message %zu opened an override", i);
	assert_int_equal(pstate_override_count(s), 0);

	/* Malformed: -EBADMSG, and valid() agrees. */
	struct pstate_override_cmd c = ov_cmd("android", "3.x", 1, 600, "r");
	struct ext e = ov2_ext(&c, "{\"default\":\"x\"}", 0);
	struct pstate_override_2 h;
	u32 outcome;
	memcpy(&h, e.p, sizeof(h));
	const struct {
		int64_t expected_end_s;
		u32 message_bytes, reserved, len_delta;
	} frames[] = {
		{-1, h.message_bytes, 0, 0},
		{PSTATE_EXPECTED_END_MAX_S + 1, h.message_bytes, 0, 0},
		{0, h.message_bytes, 1, 0},
		{0, h.message_bytes + 16, 0, 0},
		{0, h.message_bytes, 0, 16},
		{0, POLICY_MESSAGE_BYTES_MAX + 1, 0, 0},
	};
	for (size_t i = 0; i < N(frames); i++) {
		u8 *g = calloc(1, e.len + 16);
		assert_non_null(g);
		memcpy(g, e.p, e.len);
		struct pstate_override_2 x = h;
		x.expected_end_s = frames[i].expected_end_s;
		x.message_bytes = frames[i].message_bytes;
		x.reserved = frames[i].reserved;
		memcpy(g, &x, sizeof(x));
		u32 len = e.len + frames[i].len_delta;
		assert_false(
			pstate_command_valid(PSTATE_CMD_OVERRIDE_2, g, len));
		if (pstate_apply(s, PSTATE_CMD_OVERRIDE_2, g, len, NS(T0),
				 &outcome) != -EBADMSG)
			fail_msg("frame %zu: not -EBADMSG", i);
		free(g);
	}
	assert_true(pstate_command_valid(PSTATE_CMD_OVERRIDE_2, e.p, e.len));
	free(e.p);
	assert_int_equal(pstate_override_count(s), 0);
	pstate_free(s);
}

/* A snapshot written before kind 20 ("TPWPOL01": an override without
 * kind, expected end and message) is read, and written back as the
 * current version with the same state. */
static void version_1_snapshot_is_read_and_written_as_version_2(void **state)
{
	(void)state;
	struct pstate *s = pstate_new();
	assert_int_equal(set_doc(s, doc_a, 0, "one", 1, T0), PSTATE_OK);
	assert_int_equal(open_ov(s, "android", "3.x", 1, 600, T0 + 1),
			 PSTATE_OK);
	assert_int_equal(open_ov(s, "android", "3.5.x", 0, 900, T0 + 2),
			 PSTATE_OK);
	struct buf v2 = snapshot(s);
	assert_memory_equal(v2.p, "TPWPOL02", 8);
	/* The same state as version 1 wrote it: drop each override's last
	 * 24 + 256 bytes (kind 17, no expected end, no message; no end, no
	 * expiry entry) and the extension count.  (An end's author and
	 * reason are not in version 1: format_1_snapshot_still_reads.) */
	const size_t more = 24 + 8 + 32 + PSTATE_REASON_BYTES + 8;
	const size_t per = 8 + sizeof(struct pstate_override_cmd) + 8 + 8;
	const size_t tail = 2 * (per + more) + 8;
	u8 *v1 = malloc(v2.len);
	assert_non_null(v1);
	size_t off = v2.len - tail, k = off;
	memcpy(v1, v2.p, off);
	memcpy(v1 + 7, "1", 1);
	for (int i = 0; i < 2; i++) {
		memcpy(v1 + k, v2.p + off, per);
		u64 kind;
		memcpy(&kind, v2.p + off + per, 8);
		assert_int_equal(kind, PSTATE_CMD_OVERRIDE);
		k += per;
		off += per + more;
	}
	struct pstate *r = pstate_snapshot_read(v1, k);
	assert_non_null(r);
	assert_same_state(s, r);
	struct buf again = snapshot(r);
	assert_int_equal(again.len, v2.len);
	assert_memory_equal(again.p, v2.p, v2.len);
	/* A version 1 body under the version 2 magic is refused. */
	memcpy(v1 + 7, "2", 1);
	assert_null(pstate_snapshot_read(v1, k));
	free(again.p);
	free(v1);
	free(v2.p);
	pstate_free(r);
	pstate_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_set_becomes_version_1_and_current),
		cmocka_unit_test(
			same_document_reformatted_is_unchanged_and_adds_no_version),
		cmocka_unit_test(invalid_document_leaves_current_unchanged),
		cmocka_unit_test(rollback_beyond_the_count_is_not_found),
		cmocka_unit_test(
			rollback_creates_a_new_version_with_the_old_text),
		cmocka_unit_test(longest_reason_is_kept_whole),
		cmocka_unit_test(
			malformed_commands_are_ebadmsg_and_valid_agrees),
		cmocka_unit_test(
			set_text_of_exactly_sixteen_multiple_needs_no_padding),
		cmocka_unit_test(opened_override_is_live_with_its_id_and_times),
		cmocka_unit_test(
			extension_moves_the_end_and_survives_a_snapshot),
		cmocka_unit_test(
			invalid_override_requests_are_refused_without_a_record),
		cmocka_unit_test(
			live_list_is_pruned_by_the_times_of_later_commands),
		cmocka_unit_test(
			ending_early_sets_expires_to_now_and_leaves_the_live_list),
		cmocka_unit_test(
			end_of_unknown_id_is_not_found_and_of_expired_one_ended),
		cmocka_unit_test(
			sixty_fifth_live_override_is_full_until_one_expires),
		cmocka_unit_test(
			live_override_relaxes_a_blocked_version_exactly_while_active),
		cmocka_unit_test(
			compat_override_serves_blocked_versions_in_compat_mode),
		cmocka_unit_test(
			snapshot_round_trip_is_byte_exact_with_grown_arrays),
		cmocka_unit_test(
			snapshot_after_ending_an_override_keeps_the_live_list),
		cmocka_unit_test(digest_differs_when_anything_differs),
		cmocka_unit_test(truncated_or_garbled_snapshots_are_refused),
		cmocka_unit_test(
			expiry_entry_is_recorded_once_and_replays_alike),
		cmocka_unit_test(format_1_snapshot_still_reads),
		cmocka_unit_test(
			snapshot_text_must_be_canonical_not_just_as_long),
		cmocka_unit_test(
			override_2_carries_message_and_expected_end_not_reason),
		cmocka_unit_test(override_2_bad_message_or_framing_is_refused),
		cmocka_unit_test(
			version_1_snapshot_is_read_and_written_as_version_2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
