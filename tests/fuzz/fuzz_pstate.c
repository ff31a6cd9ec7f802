/*
 * fuzz_pstate.c - libFuzzer driver for the client-version policy state
 * (core/pstate.h): its snapshot decoder, which reads files from disk,
 * and its journal commands (kinds 16 to 19 and 21).
 *
 * The first input byte picks a mode:
 *   even  snapshot: the rest goes to pstate_snapshot_read; it must return
 *         NULL or a state whose snapshot bytes are exactly the input
 *         (format 1, "TPWPOL01": format 2 bytes that read back to
 *         themselves),
 *         whose digest is the BLAKE2b of those bytes, and whose live
 *         overrides are in id order, at most POLICY_OVERRIDES_MAX.
 *   odd   commands: the rest is a program (see run()) of SET, OVERRIDE
 *         (kind 17, or kind 20 with a message and an expected end) and
 *         OVERRIDE_END commands built from the input, a small policy
 *         document generator among them, some framing mangled, and raw
 *         commands whose kind and ext come straight from the input
 *         (OVERRIDE_EXPIRED, kind 21, also as the server writes it: an
 *         override's id and end, or an end a second or two off; kind
					    40,
					    41,
					    42,
					    43,
					    33};
		c->kind = kinds[(op >> 2) % (sizeof(kinds) / sizeof(kinds[0]))];
 *         every command pstate_command_valid must agree with pstate_apply
 *         (-EBADMSG exactly when not valid), and a malformed one must
 *         leave the digest alone.  The program runs on two states: the
 *         same outcomes and digests (determinism).  The final state
 *         round-trips through its snapshot: same bytes, digest, versions
 *         and overrides, and the same live overrides as of the last
 *         command.
 *
 * Build (see Makefile: make fuzz):
 *   make build/fuzz/fuzz_pstate
 *   build/fuzz/fuzz_pstate -dict=tests/fuzz/pstate.dict \
 *     tests/fuzz/corpus/pstate
 *
 * Seed corpus: compiled with -DPSTATE_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DPSTATE_CORPUS_MAIN -Isrc \
 *     tests/fuzz/fuzz_pstate.c build/src/core/[a-z]*.o \
 *     $(pkg-config --libs jansson libsodium nettle) -lm -o gen && \
 *   ./gen tests/fuzz/corpus/pstate
 */
#include "core/policy.h"
#include "core/pstate.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define OPS_MAX	     64	  /* commands per program */
#define RAW_EXT_MAX  2048 /* bytes of a raw command's ext */
#define BASE_SECONDS 1799971200u

struct reader {
	const u8 *p;
	size_t n;
};

static u8 take8(struct reader *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

static u16 take16(struct reader *r)
{
	u16 lo = take8(r);
	return (u16)(lo | (u16)take8(r) << 8);
}

/* ---- growing buffer (snapshot sink) ------------------------------------ */

struct buf {
	u8 *p;
	size_t len, cap;
};

static int buf_sink(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		u8 *p = realloc(b->p, cap);
		CHECK(p);
		b->p = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static struct buf snapshot(const struct pstate *s)
{
	struct buf b = {0};
	CHECK(pstate_snapshot_write(s, buf_sink, &b) == 0);
	CHECK(b.len == pstate_snapshot_bytes(s));
	return b;
}

static void check_live(const struct pstate *s)
{
	size_t n;
	const struct policy_override *ov = pstate_overrides_live(s, &n);
	CHECK(n <= POLICY_OVERRIDES_MAX);
	for (size_t i = 0; i < n; i++) {
		CHECK(ov[i].id >= 1 && ov[i].id <= pstate_override_count(s));
		if (i)
			CHECK(ov[i].id > ov[i - 1].id);
	}
}

/* ---- snapshot mode ------------------------------------------------------ */

static void snapshot_mode(const u8 *p, size_t n)
{
	struct pstate *s = pstate_snapshot_read(p, n);
	if (!s)
		return;
	struct buf b = snapshot(s);
	/* An old "TPWPOL01" snapshot is written back as the current
	 * version, which must read back to the very same bytes. */
	if (n >= 8 && memcmp(p, "TPWPOL01", 8) == 0) {
		struct pstate *again = pstate_snapshot_read(b.p, b.len);
		CHECK(again != NULL);
		struct buf b2 = snapshot(again);
		CHECK(b2.len == b.len && memcmp(b2.p, b.p, b.len) == 0);
		free(b2.p);
		pstate_free(again);
		p = b.p;
		n = b.len;
	}
	CHECK(b.len == n);
	CHECK(n == 0 || memcmp(b.p, p, n) == 0);
	u8 d1[32], d2[32];
	pstate_digest(s, d1);
	crypto_generichash(d2, 32, b.p, b.len, NULL, 0);
	CHECK(memcmp(d1, d2, 32) == 0);
	check_live(s);
	u64 v;
	const struct policy *cur = pstate_current(s, &v);
	CHECK(v == pstate_version_count(s));
	CHECK((cur != NULL) == (v > 0));
	if (cur) {
		struct pstate_version pv;
		char *text = NULL;
		size_t len = 0;
		CHECK(pstate_version_get(s, v, &pv));
		CHECK(policy_render(cur, &text, &len) == 0);
		CHECK(len == pv.text_len && memcmp(text, pv.text, len) == 0);
		free(text);
	}
	free(b.p);
	pstate_free(s);
}

/* ---- command mode ------------------------------------------------------- */

static const char *const platforms[] = {"android", "ios", "web", "Bad!", "a"};
static const char *const ranges[] = {
	"*", "<4.0.0", "3.x", "1.2.3 - 2.3.4", "bad range", ">=1 <2 || 5", ""};
static const u32 durations[] = {0, 59, 60, 61, 600, 604800, 604801, UINT32_MAX};

/* A document from a few templates, numbers from the input; some are
 * invalid, one is raw input bytes.  Returns its length. */
static size_t gen_doc(struct reader *r, char *out, size_t cap)
{
	u8 t = take8(r), x = take8(r), y = take8(r);
	int n = 0;
	switch (t % 8) {
	case 0:
		n = snprintf(out, cap,
			     "{\"platforms\":{\"android\":{\"min_supported\":"
			     "\"%u.%u.0\"}}}",
			     x % 8, y % 4);
		break;
	case 1:
		n = snprintf(out, cap,
			     "{\"platforms\":{\"android\":{\"min_supported\":"
			     "\"%u.0.0\",\"blocked\":[\"3.x\"]},\"ios\":{"
			     "\"min_supported\":\"2.%u.0\"}}}",
			     x % 8, y % 4);
		break;
	case 2: /* the same as 1, written differently */
		n = snprintf(out, cap,
			     "{ \"platforms\" : { \"ios\" : { "
			     "\"min_supported\" : \"2.%u.0\" },\n \"android\":"
			     "{\"blocked\":[ \"3.x\" ],\"min_supported\":"
			     "\"%u.0.0\"}}}",
			     y % 4, x % 8);
		break;
	case 3:
		n = snprintf(out, cap,
			     "{\"unknown_platform\":\"block\",\"platforms\":{"
			     "\"web\":{\"deprecated\":[{\"range\":\"<%u.0.0\","
			     "\"sunset\":\"2027-03-01T00:00:00Z\"}],"
			     "\"recommended\":\"%u.1.0\"}}}",
			     x % 8, y % 8);
		break;
	case 4:
		n = snprintf(out, cap,
			     "{\"platforms\":{\"android\":{\"min_supported\":"
			     "\"x%u\"}}}",
			     x);
		break;
	case 5: n = snprintf(out, cap, "{\"platforms\":%u}", x); break;
	default: {
		size_t len = x % 128;
		if (len > r->n)
			len = r->n;
		if (len >= cap)
			len = cap - 1;
		memcpy(out, r->p, len);
		r->p += len;
		r->n -= len;
		out[len] = '\0';
		return len;
	}
	}
	CHECK(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

struct cmd {
	u16 kind;
	u32 len;
	u8 ext[sizeof(struct pstate_set) + RAW_EXT_MAX + 32];
};

static void text_field(struct reader *r, char *field, size_t size)
{
	static const char *const reasons[] = {"incident", "", "rollback",
					      "r\x01"};
	u8 b = take8(r);
	memset(field, 0, size);
	if (b & 0x80) /* unterminated */
		memset(field, 'r', size);
	else
		memcpy(field, reasons[b % 4], strlen(reasons[b % 4]));
}

/* One command from the program; false at the end of input. */
static bool next_cmd(struct reader *r, const struct pstate *s, struct cmd *c)
{
	u64 nversions = pstate_version_count(s);
	u64 noverrides = pstate_override_count(s);

	if (r->n == 0)
		return false;
	u8 op = take8(r);
	memset(c, 0, sizeof(*c));
	switch (op % 4) {
	case 0: { /* SET */
		struct pstate_set h;
		char doc[512];
		size_t n = gen_doc(r, doc, sizeof(doc));
		u8 rb = take8(r);
		memset(&h, 0, sizeof(h));
		memset(h.author, take8(r), sizeof(h.author));
		h.rollback_of = rb < 200 ? 0 : rb - 200;
		if (rb == 255)
			h.rollback_of = nversions + 1;
		if (rb == 254)
			h.rollback_of = UINT64_MAX;
		h.text_bytes = (u32)n;
		text_field(r, h.reason, sizeof(h.reason));
		c->kind = PSTATE_CMD_SET;
		c->len = (u32)(sizeof(h) + (n + 15) / 16 * 16);
		/* Mangled framing, now and then. */
		switch (op >> 5) {
		case 1: c->len += 16; break;
		case 2: c->len -= 1; break;
		case 3: h.text_bytes = 0; break;
		case 4: h.text_bytes += 16; break;
		default: break;
		}
		memcpy(c->ext, &h, sizeof(h));
		memcpy(c->ext + sizeof(h), doc, n);
		return true;
	}
	case 1: { /* OVERRIDE */
		struct pstate_override_cmd o;
		u8 a = take8(r), b = take8(r);
		memset(&o, 0, sizeof(o));
		memset(o.author, a, sizeof(o.author));
		const char *pl = platforms[a % 5];
		const char *rg = ranges[b % 7];
		memcpy(o.platform, pl, strlen(pl));
		memcpy(o.range, rg, strlen(rg));
		text_field(r, o.reason, sizeof(o.reason));
		/* bits 2-3: compat, allow, mode 2 (malformed), short ext;
		 * bits 4-6: the duration. */
		u8 mode = (op >> 2) & 3;
		o.mode = mode == 3 ? 0 : mode;
		o.duration_s = durations[(op >> 4) & 7];
		if (b & 0x80)
			o.duration_s = 60 + take16(r);
		c->kind = PSTATE_CMD_OVERRIDE;
		c->len = sizeof(o);
		if (mode == 3)
			c->len -= 16;
		memcpy(c->ext, &o, sizeof(o));
		if (!(op & 0x80))
			return true;
		/* bit 7: kind 20, a message (good, localised, no default,
		 * not JSON, none) and an expected end, some framing off. */
		static const char *const msgs[] = {
			"{\"default\":\"Update soon\"}",
			"{\"de\":\"Bald\",\"default\":\"Soon\"}",
			"{\"de\":\"Bald\"}",
			"{\"default\":",
			"",
		};
		struct pstate_override_2 o2;
		u8 m = take8(r);
		const char *msg = msgs[m % 5];
		memset(&o2, 0, sizeof(o2));
		o2.base = o;
		o2.message_bytes = (u32)strlen(msg);
		o2.expected_end_s = (m & 0x40) ? 0 : (int64_t)take16(r) << 16;
		if (m & 0x80)
			o2.expected_end_s = -1;
		c->kind = PSTATE_CMD_OVERRIDE_2;
		c->len = (u32)(sizeof(o2) + (o2.message_bytes + 15) / 16 * 16);
		if (m & 0x20)
			c->len += 16;
		memcpy(c->ext, &o2, sizeof(o2));
		memcpy(c->ext + sizeof(o2), msg, o2.message_bytes);
		return true;
	}
	case 2: { /* OVERRIDE_END */
		struct pstate_override_end e;
		memset(&e, 0, sizeof(e));
		e.id = take8(r) % (noverrides + 2);
		text_field(r, e.reason, sizeof(e.reason));
		c->kind = PSTATE_CMD_OVERRIDE_END;
		c->len = sizeof(e);
		if ((op >> 5) == 7)
			c->len += 16;
		memcpy(c->ext, &e, sizeof(e));
		return true;
	}
	default: { /* raw */
		static const u16 kinds[] = {PSTATE_CMD_SET,
					    PSTATE_CMD_OVERRIDE,
					    PSTATE_CMD_OVERRIDE_END,
					    PSTATE_CMD_OVERRIDE_EXTEND,
					    0,
					    20,
					    PSTATE_CMD_OVERRIDE_EXPIRED,
					    22,
					    24,
					    40,
					    41,
					    42,
					    43,
					    33};
		c->kind = kinds[(op >> 2) % (sizeof(kinds) / sizeof(kinds[0]))];
		if (c->kind == PSTATE_CMD_OVERRIDE_EXPIRED && !(op & 0x20)) {
			/* An expiry entry as the server writes it (an id
			 * and that override's end), or an end moved by
			 * the next byte's low bits. */
			struct pstate_override_expired x = {
				.id = take8(r) % (noverrides + 2)};
			u8 d = take8(r);
			if (x.id >= 1 && x.id <= noverrides) {
				struct pstate_override_info o;
				pstate_override_at(s, x.id - 1, &o);
				x.expires_at_s = o.expires_at_s;
			}
			x.expires_at_s += (int64_t)(d & 3) - (d & 4 ? 2 : 0);
			c->len = sizeof(x);
			memcpy(c->ext, &x, sizeof(x));
			return true;
		}
		u32 len = take16(r) % (RAW_EXT_MAX + 1);
		if (len > r->n)
			len = (u32)r->n;
		memcpy(c->ext, r->p, len);
		r->p += len;
		r->n -= len;
		c->len = len;
		return true;
	}
	}
}

static void compare_versions(const struct pstate *a, const struct pstate *b)
{
	CHECK(pstate_version_count(a) == pstate_version_count(b));
	for (u64 v = 1; v <= pstate_version_count(a); v++) {
		struct pstate_version x, y;
		CHECK(pstate_version_get(a, v, &x));
		CHECK(pstate_version_get(b, v, &y));
		CHECK(x.timestamp == y.timestamp);
		CHECK(x.rollback_of == y.rollback_of);
		CHECK(memcmp(x.author, y.author, 32) == 0);
		CHECK(memcmp(x.reason, y.reason, sizeof(x.reason)) == 0);
		CHECK(x.text_len == y.text_len);
		CHECK(memcmp(x.text, y.text, x.text_len) == 0);
	}
	CHECK(pstate_override_count(a) == pstate_override_count(b));
	for (u64 i = 0; i < pstate_override_count(a); i++) {
		struct pstate_override_info x, y;
		pstate_override_at(a, i, &x);
		pstate_override_at(b, i, &y);
		CHECK(x.id == i + 1 && y.id == i + 1);
		CHECK(x.timestamp == y.timestamp);
		CHECK(memcmp(x.cmd, y.cmd, sizeof(*x.cmd)) == 0);
		CHECK(x.not_before_s == y.not_before_s);
		CHECK(x.expires_at_s == y.expires_at_s);
		CHECK(x.ended_early == y.ended_early);
		CHECK(x.end_timestamp == y.end_timestamp);
		CHECK(memcmp(x.end_author, y.end_author, 32) == 0);
		CHECK(strcmp(x.end_reason, y.end_reason) == 0);
		CHECK(x.expired_timestamp == y.expired_timestamp);
		CHECK(x.extensions == y.extensions);
		/* An expiry entry only for one that reached its end. */
		CHECK(!x.expired_timestamp ||
		      (!x.ended_early &&
		       x.expires_at_s <=
			       (int64_t)(x.expired_timestamp / 1000000000u)));
		u32 k = 0;
		for (u64 hx = x.last_extension, hy = y.last_extension; hx;
		     k++) {
			struct pstate_extension ex, ey;
			CHECK(pstate_extension_get(a, hx, &ex));
			CHECK(pstate_extension_get(b, hy, &ey));
			CHECK(ex.timestamp == ey.timestamp &&
			      ex.duration_s == ey.duration_s &&
			      ex.expires_at_s == ey.expires_at_s);
			CHECK(memcmp(ex.author, ey.author, 32) == 0);
			CHECK(strcmp(ex.reason, ey.reason) == 0);
			hx = ex.prev;
			hy = ey.prev;
		}
		CHECK(k == x.extensions);
		CHECK(x.kind == y.kind);
		CHECK(x.expected_end_s == y.expected_end_s);
		CHECK(x.message_len == y.message_len);
		CHECK(!x.message_len ||
		      memcmp(x.message, y.message, x.message_len) == 0);
	}
	CHECK(pstate_expiry_next(a) == pstate_expiry_next(b));
}

/* The live overrides of `got` not expired at now_s are those of `want`;
 * every override of `want` is in `got`.  When the last command that
 * pruned (any well-formed one) left its time in the snapshot (it made a
 * version or an override, or ended one early), the lists are equal. */
static void compare_live(const struct pstate *want, const struct pstate *got,
			 int64_t now_s)
{
	int64_t newest_s = 0;
	for (u64 v = 1; v <= pstate_version_count(want); v++) {
		struct pstate_version x;
		CHECK(pstate_version_get(want, v, &x));
		if ((int64_t)(x.timestamp / 1000000000u) > newest_s)
			newest_s = (int64_t)(x.timestamp / 1000000000u);
	}
	for (u64 i = 0; i < pstate_override_count(want); i++) {
		struct pstate_override_info x;
		pstate_override_at(want, i, &x);
		if ((int64_t)(x.timestamp / 1000000000u) > newest_s)
			newest_s = (int64_t)(x.timestamp / 1000000000u);
		if (x.ended_early && x.expires_at_s > newest_s)
			newest_s = x.expires_at_s;
	}
	if (newest_s == now_s) {
		size_t nw, ng;
		const struct policy_override *w =
			pstate_overrides_live(want, &nw);
		const struct policy_override *g =
			pstate_overrides_live(got, &ng);
		CHECK(nw == ng);
		for (size_t i = 0; i < nw; i++)
			CHECK(w[i].id == g[i].id &&
			      w[i].expires_at_s == g[i].expires_at_s);
	}
	size_t nw, ng, j = 0;
	const struct policy_override *w = pstate_overrides_live(want, &nw);
	const struct policy_override *g = pstate_overrides_live(got, &ng);
	for (size_t i = 0; i < ng; i++) {
		if (j < nw && g[i].id == w[j].id) {
			CHECK(g[i].expires_at_s == w[j].expires_at_s);
			CHECK(g[i].not_before_s == w[j].not_before_s);
			CHECK(g[i].mode == w[j].mode);
			CHECK(strcmp(g[i].platform, w[j].platform) == 0);
			CHECK(strcmp(g[i].range_text, w[j].range_text) == 0);
			CHECK(g[i].expected_end_s == w[j].expected_end_s);
			CHECK(!g[i].message == !w[j].message);
			j++;
		} else {
			CHECK(g[i].expires_at_s <= now_s);
		}
	}
	CHECK(j == nw);
}

static void run(const u8 *p, size_t n)
{
	struct reader r = {p, n};
	struct pstate *s1 = pstate_new(), *s2 = pstate_new();
	CHECK(s1 && s2);
	u64 ts = (u64)BASE_SECONDS * 1000000000u, pruned_at = 0;
	struct cmd *c = malloc(sizeof(*c));
	CHECK(c);
	for (int i = 0; i < OPS_MAX; i++) {
		if (!next_cmd(&r, s1, c))
			break;
		u8 dt = take8(&r);
		ts += (u64)(dt & 0x7f) * (dt & 0x80 ? 3600 : 7) * 1000000000u +
		      dt * 1000u;
		u8 before[32], after[32];
		pstate_digest(s1, before);
		u64 nv = pstate_version_count(s1);
		bool valid = pstate_command_valid(c->kind, c->ext, c->len);
		u32 o1 = 99, o2 = 99;
		int r1 = pstate_apply(s1, c->kind, c->ext, c->len, ts, &o1);
		int r2 = pstate_apply(s2, c->kind, c->ext, c->len, ts, &o2);
		CHECK(valid == (r1 != -EBADMSG));
		CHECK(r1 == 0 || r1 == -EBADMSG);
		CHECK(r1 == r2);
		pstate_digest(s1, after);
		if (r1 == 0)
			pruned_at = ts;
		if (r1 == 0) {
			CHECK(o1 <= PSTATE_FULL && o1 == o2);
			if (c->kind == PSTATE_CMD_SET)
				CHECK(pstate_version_count(s1) ==
				      nv + (o1 == PSTATE_OK));
			if (o1 != PSTATE_OK)
				CHECK(memcmp(before, after, 32) == 0);
		} else {
			CHECK(memcmp(before, after, 32) == 0);
		}
		check_live(s1);
	}
	free(c);

	u8 d1[32], d2[32];
	pstate_digest(s1, d1);
	pstate_digest(s2, d2);
	CHECK(memcmp(d1, d2, 32) == 0);

	struct buf b1 = snapshot(s1);
	struct pstate *rd = pstate_snapshot_read(b1.p, b1.len);
	CHECK(rd);
	struct buf b2 = snapshot(rd);
	CHECK(b1.len == b2.len && memcmp(b1.p, b2.p, b1.len) == 0);
	pstate_digest(rd, d2);
	CHECK(memcmp(d1, d2, 32) == 0);
	compare_versions(s1, rd);
	compare_live(s1, rd, (int64_t)(pruned_at / 1000000000u));
	u64 v1, v2;
	const struct policy *c1 = pstate_current(s1, &v1);
	const struct policy *c2 = pstate_current(rd, &v2);
	CHECK(v1 == v2 && (c1 == NULL) == (c2 == NULL));
	free(b1.p);
	free(b2.p);
	pstate_free(rd);
	pstate_free(s1);
	pstate_free(s2);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		snapshot_mode(data + 1, size - 1);
	else
		run(data + 1, size - 1);
	return 0;
}

#ifdef PSTATE_CORPUS_MAIN
static void write_seed(const char *dir, const char *name, u8 mode, const u8 *p,
		       size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f);
	CHECK(fwrite(&mode, 1, 1, f) == 1);
	CHECK(n == 0 || fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

/* Run a program and write the snapshot of the state it leaves. */
static void write_snapshot_seed(const char *dir, const char *name,
				const u8 *prog, size_t n)
{
	struct reader r = {prog, n};
	struct pstate *s = pstate_new();
	u64 ts = (u64)BASE_SECONDS * 1000000000u;
	struct cmd *c = malloc(sizeof(*c));
	u32 o;
	CHECK(s && c);
	while (next_cmd(&r, s, c)) {
		u8 dt = take8(&r);
		ts += (u64)(dt & 0x7f) * (dt & 0x80 ? 3600 : 7) * 1000000000u +
		      dt * 1000u;
		(void)pstate_apply(s, c->kind, c->ext, c->len, ts, &o);
	}
	struct buf b = snapshot(s);
	write_seed(dir, name, 0, b.p, b.len);
	free(b.p);
	free(c);
	pstate_free(s);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	/* SET: op 0, template, x, y, rollback, author, reason; dt.
	 * OVERRIDE: op 1|mode<<2|duration<<4, platform, range, reason; dt.
	 * END: op 2, id, reason; dt. */
	static const u8 versions[] = {
		0,    0, 4, 1, 0,   1, 0, 5, /* v1 */
		0,    1, 4, 1, 0,   2, 0, 5, /* v2 */
		0,    2, 4, 1, 0,   3, 0, 5, /* unchanged */
		0,    4, 9, 9, 0,   3, 0, 5, /* invalid */
		0,    3, 2, 3, 201, 4, 2, 5, /* rollback_of 1 */
		0,    0, 4, 1, 255, 4, 2, 5, /* not found */
		0,    0, 4, 1, 202, 4, 2, 5, /* rollback to 2 */
		0,    0, 1, 2, 0,   1, 0, 5, /* v */
		0x20, 0, 1, 3, 0,   1, 0, 5, /* padding too long */
		0x60, 0, 1, 3, 0,   1, 0, 5, /* text_bytes 0 */
	};
	write_seed(argv[1], "cmds-versions", 1, versions, sizeof(versions));
	static const u8 overrides[] = {
		0,    1, 4,    1,    0,	   1,	 0,  1, /* v1 */
		0x45, 0, 1,    0,    10,		/* allow 600 s */
		0x41, 1, 0,    0,    10,		/* compat 600 s */
		0x21, 2, 2,    0,    10,		/* 60 s */
		0x49, 0, 6,    0,    10,		/* mode 2 */
		0x41, 3, 0,    0,    10,		/* bad platform */
		0x41, 0, 4,    0,    10,		/* bad range */
		0x41, 0, 0,    0x80, 10,	     /* reason unterminated */
		0x41, 0, 0x81, 0x01, 0x02, 0,	 10, /* duration from input */
		2,    2, 0,    10,		     /* end 2 */
		2,    2, 0,    10,		     /* ended */
		2,    9, 0,    10,		     /* not found */
		0xe2, 1, 0,    10,		     /* end, framing too long */
		0x41, 0, 0,    0,    0x85,	     /* hours later */
		2,    1, 0,    0,		     /* expired */
		0x1b, 3, 0,    10, /* expiry of 3, at its end */
		0x1b, 3, 0,    10, /* again: unchanged */
		0x1b, 2, 0,    10, /* of 2: ended early */
		0x1b, 9, 1,    10, /* not found */
		0xc5, 0, 1,    0,    1,	   0x10, 0,  10, /* kind 20, message */
		0xc5, 0, 1,    0,    0x41, 10,		 /* kind 20, no end */
		0xc5, 0, 1,    0,    2,	   0x10, 0,  10, /* no default */
		0xc5, 0, 1,    0,    0x61, 10,		 /* kind 20, framing */
	};
	write_seed(argv[1], "cmds-overrides", 1, overrides, sizeof(overrides));
	static const u8 raw[] = {
		3,    0x10, 0x01, 1,	2,  3,	4,  5,	6, 7, 8,
		9,    10,   11,	  12,	13, 14, 15, 16, 0, /* raw SET, 272 */
		0x07, 0x80, 0x02, 0xAA, 0,		   /* raw 17, 640 */
		0x13, 4,    0,	  1,	2,  3,	4,  0,	   /* kind 19 */
		0x3b, 16,   0,	  1,	0,  0,	0,  0,	0, 0, 0,
		0x3c, 0,    0,	  0,	0,  0,	0,  0,	0, /* raw 21 */
		0x1f, 0,    0,	  0			   /* unknown kind 22 */
	};
	write_seed(argv[1], "cmds-raw", 1, raw, sizeof(raw));
	/* Many overrides at once: the live limit. */
	u8 full[8 + 70 * 5] = {0, 0, 4, 1, 0, 1, 0, 1};
	size_t k = 8;
	for (int i = 0; i < 70; i++) {
		full[k++] = 0x41;
		full[k++] = (u8)(i % 3);
		full[k++] = 0;
		full[k++] = 0;
		full[k++] = 1;
	}
	write_seed(argv[1], "cmds-full", 1, full, k);

	write_seed(argv[1], "snap-empty", 0, NULL, 0);
	write_snapshot_seed(argv[1], "snap-versions", versions,
			    sizeof(versions));
	write_snapshot_seed(argv[1], "snap-overrides", overrides,
			    sizeof(overrides));
	/* 20 versions: arrays grown past 16. */
	u8 many[20 * 8];
	for (int i = 0; i < 20; i++) {
		u8 *q = many + i * 8;
		q[0] = 0;
		q[1] = (u8)(i % 2);
		q[2] = (u8)(i / 2);
		q[3] = (u8)i;
		q[4] = 0;
		q[5] = (u8)i;
		q[6] = 0;
		q[7] = 3;
	}
	write_snapshot_seed(argv[1], "snap-many", many, sizeof(many));
	return 0;
}
#endif
