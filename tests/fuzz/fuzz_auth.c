/*
 * fuzz_auth.c - libFuzzer driver for the authorization state (core/auth.h):
 * its snapshot decoder, which reads files from disk, and the commands
 * the engine applies in journal order.
 *
 * The first input byte picks a mode:
 *   even  snapshot: the rest goes to auth_snapshot_read; it must return
 *         NULL or a state whose snapshot bytes are exactly the input, whose
 *         digest is that of those bytes, and in which every principal and
 *         revocation listed is found by its lookup.
 *   odd   commands: the rest is a program of small operations (principal,
 *         revoke, key event, owners, guarded batch; and raw ones whose
 *         bytes come straight from the input) applied to a fresh state
 *         with auth_apply, auth_set_owners, auth_guard_check and
 *         auth_guard_commit (auth_command_valid must agree with
 *         auth_apply on every raw command), and the commands of named
 *         administrators (op_admin: admin_apply beside a policy state).
 * Well-formed operations are checked against a reference model written from
 * auth.h (outcomes, revocations, owners, the guard's verdict and counters, and
 * that no capped link is ever counted past its cap); raw ones only need to
 * leave a state the model stops following. The program runs twice on two
 * states: same digests (determinism); and the final state round-trips through
 * its snapshot.
 *
 * Build (see Makefile: make fuzz):
 *   make build/fuzz/fuzz_auth
 *   build/fuzz/fuzz_auth -dict=tests/fuzz/auth.dict tests/fuzz/corpus/auth
 *
 * Seed corpus: compiled with -DAUTH_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DAUTH_CORPUS_MAIN -Isrc tests/fuzz/fuzz_auth.c \
 *     build/src/core/[a-z]*.o $(pkg-config --libs jansson libsodium nettle) \
 *     -lm -o gen && \
 *   ./gen tests/fuzz/corpus/auth
 */
#include "core/admin.h"
#include "core/auth.h"
#include "core/pstate.h"
#include "core/result.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_auth: %s failed (line %d)\n",    \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

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

/* n bytes, zero-padded when the input runs out. */
static void take(struct reader *r, void *out, size_t n)
{
	size_t k = n < r->n ? n : r->n;
	memcpy(out, r->p, k);
	memset((u8 *)out + k, 0, n - k);
	r->p += k;
	r->n -= k;
}

/* ---- the growable buffer snapshots are written to ---------------------- */

struct buf {
	u8 *p;
	size_t n, cap;
};

static int buf_sink(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->n + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + len)
			cap *= 2;
		u8 *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
	return 0;
}

static struct buf snapshot_of(const struct auth *a)
{
	struct buf b = {0};
	CHECK(auth_snapshot_write(a, buf_sink, &b) == 0);
	CHECK(b.n == auth_snapshot_bytes(a));
	return b;
}

/* ---- keys: small domains, so that the program meets the same ids again;
 * the hashed first 8 bytes are shared by many keys, so lookups probe. */

#define IDS	 64 /* principals */
#define ISSUERS	 8
#define LINKS	 16
#define JTIS	 LINKS
#define ACCOUNTS 64

static void key(u8 out[32], u8 domain, u32 i)
{
	memset(out, 0, 32);
	out[0] = domain;
	out[1] = (u8)(i & 1); /* two hash buckets per domain */
	memcpy(out + 8, &i, 4);
	out[31] = 0xA5;
}

/* A link's contents are a function of the link (its hash names its
 * text): issuer, jti, caps. */
static struct auth_guard link_guard(u32 l)
{
	struct auth_guard g;
	memset(&g, 0, sizeof(g));
	key(g.link, 'L', l);
	key(g.iss, 'I', l % 5);
	key(g.jti_hash, 'J', l);
	g.flags = l & 3;
	g.total_cap = l == 15 ? U128_MAX : (u128)l * 37;
	g.uses_max = l == 14 ? UINT64_MAX : l % 5;
	return g;
}

static u128 amount_of(u8 b)
{
	if (b < 200)
		return b;
	if (b < 250)
		return (u128)1 << (b - 200 + 78); /* 2^78 .. 2^127 */
	return U128_MAX - (u128)(255 - b);
}

/* ---- the reference model ----------------------------------------------- */

struct model {
	bool valid; /* false once a raw operation may have changed anything */
	bool principal[IDS];
	int name[IDS]; /* 0: none */
	u32 principals, keys;
	bool kid_created[256]; /* kids "k<byte>" created */
	bool link_revoked[ISSUERS][JTIS];
	bool issuer_revoked[ISSUERS];
	u32 revocations;
	bool created[ACCOUNTS];
	bool owned[ACCOUNTS];
	u8 owner[ACCOUNTS];
	u128 spent[LINKS];
	u64 uses[LINKS];
};

static bool name_taken(const struct model *m, int name)
{
	for (u32 i = 0; i < IDS; i++)
		if (m->principal[i] && m->name[i] == name)
			return true;
	return false;
}

static u128 add_sat(u128 a, u128 b)
{
	return a + b < a ? U128_MAX : a + b;
}

/* The guard's verdict from auth.h: revocation first (any link), then per
 * link in order the total cap, then the uses. */
static u32 model_check(const struct model *m, const u32 *links, u32 ng,
		       const struct transfer *t, u32 n, const u8 *skip)
{
	u128 sum = 0;
	u64 cnt = 0;
	bool overflow = false;
	for (u32 i = 0; i < n; i++) {
		if ((t[i].flags & (TRANSFER_POST_PENDING_TRANSFER |
				   TRANSFER_VOID_PENDING_TRANSFER)) ||
		    (skip && skip[i]))
			continue;
		overflow |= sum + t[i].amount < sum;
		sum += t[i].amount;
		cnt++;
	}
	for (u32 k = 0; k < ng; k++) {
		u32 l = links[k];
		if (m->issuer_revoked[l % 5] || m->link_revoked[l % 5][l])
			return CREATE_TRANSFER_mandate_revoked;
	}
	for (u32 k = 0; k < ng; k++) {
		struct auth_guard g = link_guard(links[k]);
		u128 spent = m->spent[links[k]];
		u64 uses = m->uses[links[k]];
		if ((g.flags & AUTH_GUARD_TOTAL_CAP) &&
		    (overflow || spent + sum < spent ||
		     spent + sum > g.total_cap))
			return CREATE_TRANSFER_exceeds_mandate_total_cap;
		if ((g.flags & AUTH_GUARD_USES) &&
		    (uses + cnt < uses || uses + cnt > g.uses_max))
			return CREATE_TRANSFER_exceeds_mandate_uses;
	}
	return 0;
}

/* ---- the program ------------------------------------------------------- */

#define OPS_MAX 512

static void op_principal(struct auth *a, struct model *m, struct reader *r,
			 u64 ts)
{
	u8 idb = take8(r), nameb = take8(r), pubb = take8(r);
	u32 id = idb % IDS;
	struct auth_principal p;
	memset(&p, 0, sizeof(p));
	key(p.id, 'P', id);
	key(p.pub, 'K', pubb);
	int name = 0;
	if (nameb % 32 == 0) {
		name = 0;
	} else if (nameb % 32 < 24) {
		name = nameb % 8 + 1;
		snprintf(p.name, sizeof(p.name), "n%d", name);
		if (nameb & 0x80) /* junk after the NUL is no part of it */
			p.name[AUTH_NAME_BYTES - 1] = 'x';
	} else {
		name = 100 + nameb % 3; /* all 64 bytes, no NUL */
		memset(p.name, 'a' + nameb % 3, AUTH_NAME_BYTES);
	}
	/* Half of them organisations (kind 24): the same table, the same
	 * answers, a pub that says so. */
	bool org = pubb & 0x40;
	if (org) {
		struct auth_x509_pub x = {.magic = AUTH_X509_MAGIC,
					  .not_before = pubb,
					  .not_after = (int64_t)pubb + 1};
		memcpy(p.pub, &x, sizeof(x));
	}
	u32 out = 0xdead;
	CHECK(auth_apply(a, org ? AUTH_CMD_PRINCIPAL_X509 : AUTH_CMD_PRINCIPAL,
			 &p, sizeof(p), ts, &out) == 0);
	if (!m->valid)
		return;
	u32 want = m->principal[id]		 ? AUTH_EXISTS
		   : name && name_taken(m, name) ? AUTH_NAME_TAKEN
						 : AUTH_OK;
	CHECK(out == want);
	if (want == AUTH_OK) {
		m->principal[id] = true;
		m->name[id] = name;
		m->principals++;
	}
	struct auth_principal_info info;
	CHECK(auth_principal_get(a, p.id, &info) == m->principal[id]);
	if (want == AUTH_OK)
		CHECK(auth_principal_x509(info.pub, NULL) == org);
}

static void op_revoke(struct auth *a, struct model *m, struct reader *r, u64 ts)
{
	u8 issb = take8(r), jtib = take8(r), flagsb = take8(r);
	u32 iss = issb % ISSUERS, jti = jtib % (JTIS + 4);
	bool all = jti >= JTIS;
	struct auth_revoke rv;
	memset(&rv, 0, sizeof(rv));
	key(rv.iss, 'I', iss);
	if (!all)
		key(rv.jti_hash, 'J', jti);
	snprintf(rv.jti, sizeof(rv.jti), "jti-%u", jti);
	rv.flags = all ? AUTH_REVOKE_ALL : 0;
	if (flagsb & 0x80) /* any flags at all: maybe malformed */
		rv.flags = flagsb & 7;
	/* AUTH_REVOKE_QUOTA may accompany either kind (a quota far above
	 * what a fuzz input reaches, or 0, which a full record refuses);
	 * AUTH_REVOKE_DELEGATE only with it, in a full record. */
	rv.quota = (flagsb & 0x20) ? 0 : 1u << 30;
	/* the payer, or a record of the first format (paid by iss) */
	key(rv.payer, 'P', iss);
	bool v1 = (flagsb & 0x40) != 0;
	u32 bytes = v1 ? AUTH_REVOKE_V1_BYTES : sizeof(rv);
	u32 known = AUTH_REVOKE_ALL | AUTH_REVOKE_QUOTA |
		    (v1 ? 0 : AUTH_REVOKE_DELEGATE);
	bool quota = rv.flags & AUTH_REVOKE_QUOTA;
	bool valid = !(rv.flags & ~known) &&
		     (quota || !(rv.flags & AUTH_REVOKE_DELEGATE)) &&
		     (v1 || !quota || rv.quota > 0) &&
		     ((rv.flags & AUTH_REVOKE_ALL) != 0) == all;
	u8 before[32], after[32];
	auth_digest(a, before);
	u32 out = 0xdead;
	int ret = auth_apply(a, AUTH_CMD_REVOKE, &rv, bytes, ts, &out);
	CHECK(ret == (valid ? 0 : -EBADMSG));
	if (!valid) {
		auth_digest(a, after);
		CHECK(memcmp(before, after, 32) == 0);
		return;
	}
	if (!m->valid)
		return;
	bool *slot = all ? &m->issuer_revoked[iss] : &m->link_revoked[iss][jti];
	CHECK(out == (*slot ? AUTH_ALREADY_REVOKED : AUTH_OK));
	if (!*slot)
		m->revocations++;
	*slot = true;
	u8 h[32];
	key(h, 'J', jtib); /* any jti: revoked if the issuer is */
	CHECK(auth_revoked(a, rv.iss, h) ==
	      (m->issuer_revoked[iss] ||
	       (jtib < JTIS && m->link_revoked[iss][jtib])));
}

static void op_key(struct auth *a, struct model *m, struct reader *r, u64 ts)
{
	u8 kb = take8(r);
	struct auth_key_event k;
	memset(&k, 0, sizeof(k));
	snprintf(k.kid, sizeof(k.kid), "k%u", kb);
	key(k.pub, 'K', kb);
	k.kind = kb % 4; /* 0 and 3 are not kinds */
	k.not_before = kb;
	k.not_after = kb & 1 ? INT64_MAX : kb + 10;
	u32 out = 0xdead;
	int ret = auth_apply(a, AUTH_CMD_KEY, &k, sizeof(k), ts, &out);
	bool valid = k.kind == AUTH_KEY_CREATED || k.kind == AUTH_KEY_RETIRED;
	CHECK(ret == (valid ? 0 : -EBADMSG));
	if (valid && m->valid) {
		/* a key is created once: the same kid again changes nothing */
		bool again = k.kind == AUTH_KEY_CREATED && m->kid_created[kb];
		CHECK(out == (again ? AUTH_EXISTS : AUTH_OK));
		if (!again)
			m->keys++;
		if (k.kind == AUTH_KEY_CREATED)
			m->kid_created[kb] = true;
	}
}

/* Any kind, any size, any bytes. */
static void op_raw(struct auth *a, struct model *m, struct reader *r, u64 ts)
{
	u8 ext[176];
	u16 kind = (u16)(take8(r) % 8);
	u32 len = take8(r) % sizeof(ext);
	take(r, ext, len);
	u8 before[32], after[32];
	auth_digest(a, before);
	u32 out = 0xdead;
	bool valid = auth_command_valid(kind, ext, len);
	int ret = auth_apply(a, kind, ext, len, ts, &out);
	CHECK(ret == 0 || ret == -EBADMSG);
	CHECK(valid == (ret == 0)); /* the engine's check before journaling */
	if (ret == 0) {
		CHECK(out <= AUTH_FULL);
		m->valid = false;
	} else {
		auth_digest(a, after);
		CHECK(memcmp(before, after, 32) == 0);
	}
}

/* Named administrators and dual control (core/admin.h, kinds 30..33):
 * a command built from the input around the registered principals (a
 * role, the retirement, a request for a small policy, a decision on a
 * request), its size sometimes cut; admin_command_valid must agree with
 * admin_apply, an outcome is one of admin_outcome's, and a refused ext
 * leaves the digest alone.  The model does not follow roles: they
 * change none of what it checks. */
static void op_admin(struct auth *a, struct pstate *ps, struct reader *r,
		     u64 ts)
{
	static const char doc[] =
		"{\"platforms\":{\"android\":{\"min_supported\":\"4.0.0\"}}}";
	u8 ext[512];
	u8 sel = take8(r), pick = take8(r), pick2 = take8(r);
	u32 np = auth_principal_count(a), len = 0;
	struct auth_principal_info p1, p2;
	memset(&p1, 0, sizeof(p1));
	memset(&p2, 0, sizeof(p2));
	if (np) {
		auth_principal_at(a, pick % np, &p1);
		auth_principal_at(a, pick2 % np, &p2);
	}
	memset(ext, 0, sizeof(ext));
	u16 kind = (u16)(ADMIN_CMD_ROLE + sel % 4);
	switch (kind) {
	case ADMIN_CMD_ROLE: {
		struct admin_role_cmd c = {.role = take8(r) % 6};
		memcpy(c.id, p1.id, 32);
		memcpy(ext, &c, sizeof(c));
		len = sizeof(c);
		break;
	}
	case ADMIN_CMD_RETIRE: len = sizeof(struct admin_retire_cmd); break;
	case ADMIN_CMD_REQUEST: {
		if (sel & 0x40) {
			/* A role grant: p1 asks p2's role (target: the
			 * role p2 holds now, or another). */
			struct admin_request_cmd c = {
				.target = admin_role_of(auth_admin(a), p2.id) +
					  (sel >> 7),
				.op = ADMIN_OP_ROLE,
				.window_s = ADMIN_WINDOW_MIN_S,
				.payload_bytes = sizeof(struct admin_role_cmd)};
			struct admin_role_cmd g = {.role = 1 + take8(r) % 4};
			memcpy(c.author, p1.id, 32);
			memcpy(g.author, p1.id, 32);
			memcpy(g.id, p2.id, 32);
			memcpy(ext, &c, sizeof(c));
			memcpy(ext + sizeof(c), &g, sizeof(g));
			len = (u32)(sizeof(c) + sizeof(g));
			break;
		}
		struct admin_request_cmd c = {
			.target = pstate_version_count(ps) + (sel >> 7),
			.op = ADMIN_OP_POLICY_SET,
			.window_s = ADMIN_WINDOW_MIN_S * (1 + (sel >> 4 & 3))};
		struct pstate_set s = {.text_bytes = sizeof(doc) - 1};
		u32 padded = (s.text_bytes + 15) / 16 * 16;
		memcpy(c.author, p1.id, 32);
		c.payload_bytes = (u32)sizeof(s) + padded;
		memcpy(ext, &c, sizeof(c));
		memcpy(ext + sizeof(c), &s, sizeof(s));
		memcpy(ext + sizeof(c) + sizeof(s), doc, s.text_bytes);
		len = (u32)sizeof(c) + c.payload_bytes;
		break;
	}
	default: {
		struct admin_decide_cmd c = {
			.request = take8(r) %
				   (admin_request_count(auth_admin(a)) + 2),
			.decision = take8(r) % 5};
		memcpy(c.author, p1.id, 32);
		memcpy(c.requester, p2.id, 32);
		take(r, c.reason, (sel >> 4) % 4);
		memcpy(ext, &c, sizeof(c));
		len = sizeof(c);
		break;
	}
	}
	if ((sel & 0x0c) == 0x0c)
		len -= 16; /* cut: refused */
	u8 before[32], after[32];
	auth_digest(a, before);
	u32 out = 0xdead;
	bool valid = admin_command_valid(kind, ext, len);
	int ret =
		admin_apply(auth_admin_rw(a), a, ps, kind, ext, len, ts, &out);
	CHECK(ret == 0 || ret == -EBADMSG);
	CHECK(valid == (ret == 0));
	if (ret == 0) {
		CHECK(out <= ADMIN_TOO_LARGE); /* the last result code */
	} else {
		auth_digest(a, after);
		CHECK(memcmp(before, after, 32) == 0);
	}
}

static void op_owners(struct auth *a, struct model *m, struct reader *r)
{
	u8 ob = take8(r);
	u32 n = take8(r) % 9;
	struct auth_owner o;
	if (ob % 8 == 0)
		memset(&o, 0, sizeof(o)); /* the administrator */
	else
		key(o.owner, 'P', ob % 8);
	struct account acc[8];
	u32 res[8];
	memset(acc, 0, sizeof(acc));
	bool fresh[ACCOUNTS] = {0};
	for (u32 i = 0; i < n; i++) {
		u8 b = take8(r);
		u32 id = b % ACCOUNTS;
		acc[i].id = ((u128)(id % 3) << 64) | id;
		/* What a ledger would say: created once, else exists. */
		bool ok = !(b & 0x80) && !m->created[id] && !fresh[id];
		res[i] = ok ? CREATE_ACCOUNT_ok : CREATE_ACCOUNT_exists;
		if (ok)
			fresh[id] = true;
	}
	auth_set_owners(a, &o, acc, res, n);
	for (u32 i = 0; i < ACCOUNTS; i++) {
		if (!fresh[i])
			continue;
		m->created[i] = true;
		if (ob % 8) {
			m->owned[i] = true;
			m->owner[i] = ob % 8;
		}
	}
}

/* skip[i]: the event's id is already a transfer (a retry): it does not
 * count, and the ledger answers it `exists`. */
static void read_transfers(struct reader *r, struct transfer *t, u32 *res,
			   u8 *skip, u32 n)
{
	for (u32 i = 0; i < n; i++) {
		u8 ab = take8(r), fb = take8(r);
		memset(&t[i], 0, sizeof(t[i]));
		t[i].amount = amount_of(ab);
		static const u16 fl[8] = {
			0,
			0,
			0,
			TRANSFER_PENDING,
			TRANSFER_LINKED,
			TRANSFER_POST_PENDING_TRANSFER,
			TRANSFER_VOID_PENDING_TRANSFER,
			TRANSFER_BALANCING_DEBIT,
		};
		t[i].flags = fl[fb & 7];
		res[i] = fb & 0x40 ? CREATE_TRANSFER_exceeds_credits
				   : CREATE_TRANSFER_ok;
		skip[i] = (fb & 0x20) != 0;
		if (skip[i])
			res[i] = CREATE_TRANSFER_exists;
	}
}

static void op_guard(struct auth *a, struct model *m, struct reader *r)
{
	u32 ng = 1 + take8(r) % AUTH_GUARD_LINKS_MAX;
	u32 links[AUTH_GUARD_LINKS_MAX];
	struct auth_guard g[AUTH_GUARD_LINKS_MAX];
	for (u32 k = 0; k < ng; k++) {
		links[k] = take8(r) % LINKS; /* may repeat */
		g[k] = link_guard(links[k]);
	}
	u32 n = take8(r) % 17;
	struct transfer t[16];
	u32 res[16];
	u8 skip[16];
	read_transfers(r, t, res, skip, n);
	/* kind 2 counts every event, kind 6 skips the existing ids */
	const u8 *sk = take8(r) & 1 ? skip : NULL;
	u32 got = auth_guard_check(a, g, ng, t, n, sk);
	CHECK(got == 0 || got == CREATE_TRANSFER_mandate_revoked ||
	      got == CREATE_TRANSFER_exceeds_mandate_total_cap ||
	      got == CREATE_TRANSFER_exceeds_mandate_uses);
	if (m->valid && got != model_check(m, links, ng, t, n, sk)) {
		fprintf(stderr, "got %u want %u ng %u n %u links", got,
			model_check(m, links, ng, t, n, sk), ng, n);
		for (u32 k = 0; k < ng; k++)
			fprintf(stderr, " %u(spent %llu uses %llu)", links[k],
				(unsigned long long)m->spent[links[k]],
				(unsigned long long)m->uses[links[k]]);
		fprintf(stderr, "\n");
		CHECK(!"guard verdict differs from the model");
	}
	if (got != 0)
		return;
	CHECK(auth_guard_commit(a, g, ng, t, res, n) == 0);
	/* Model: each distinct flagged link counts the created ones once. */
	u128 sum = 0;
	u64 cnt = 0;
	for (u32 i = 0; i < n; i++) {
		if (res[i] != CREATE_TRANSFER_ok ||
		    (t[i].flags & (TRANSFER_POST_PENDING_TRANSFER |
				   TRANSFER_VOID_PENDING_TRANSFER)))
			continue;
		sum = add_sat(sum, t[i].amount);
		cnt++;
	}
	bool done[LINKS] = {0};
	for (u32 k = 0; k < ng; k++) {
		u32 l = links[k];
		u128 spent;
		u64 uses;
		if (m->valid && !done[l] && (g[k].flags & 3) && cnt) {
			m->spent[l] = add_sat(m->spent[l], sum);
			m->uses[l] += cnt;
		}
		done[l] = true;
		auth_counter_get(a, g[k].link, &spent, &uses);
		/* What a passed check allows, the commit never exceeds. */
		if (g[k].flags & AUTH_GUARD_TOTAL_CAP)
			CHECK(spent <= g[k].total_cap);
		if (g[k].flags & AUTH_GUARD_USES)
			CHECK(uses <= g[k].uses_max);
	}
}

/* Guards and transfers straight from the input. */
static void op_raw_guard(struct auth *a, struct model *m, struct reader *r)
{
	u32 ng = 1 + take8(r) % AUTH_GUARD_LINKS_MAX;
	struct auth_guard g[AUTH_GUARD_LINKS_MAX];
	for (u32 k = 0; k < ng; k++)
		take(r, &g[k], sizeof(g[k]));
	u32 n = take8(r) % 17;
	struct transfer t[16];
	u32 res[16];
	u8 skip[16];
	read_transfers(r, t, res, skip, n);
	/* kind 2 counts every event, kind 6 skips the existing ids */
	const u8 *sk = take8(r) & 1 ? skip : NULL;
	u32 got = auth_guard_check(a, g, ng, t, n, sk);
	CHECK(got == 0 || got == CREATE_TRANSFER_mandate_revoked ||
	      got == CREATE_TRANSFER_exceeds_mandate_total_cap ||
	      got == CREATE_TRANSFER_exceeds_mandate_uses);
	if (got == 0) {
		CHECK(auth_guard_commit(a, g, ng, t, res, n) == 0);
		m->valid = false;
	}
}

/* Everything the model knows, asked of the state. */
static void compare_model(const struct auth *a, const struct model *m)
{
	if (!m->valid)
		return;
	CHECK(auth_principal_count(a) == m->principals);
	CHECK(auth_revocation_count(a) == m->revocations);
	CHECK(auth_key_event_count(a) == m->keys);
	for (u32 i = 0; i < IDS; i++) {
		u8 id[32];
		key(id, 'P', i);
		CHECK(auth_principal_get(a, id, NULL) == m->principal[i]);
	}
	for (u32 i = 0; i < ACCOUNTS; i++) {
		u8 owner[32], want[32];
		u128 acc = ((u128)(i % 3) << 64) | i;
		bool has = auth_owner_get(a, acc, owner);
		CHECK(has == m->owned[i]);
		if (has) {
			key(want, 'P', m->owner[i]);
			CHECK(memcmp(owner, want, 32) == 0);
		}
	}
	for (u32 l = 0; l < LINKS; l++) {
		struct auth_guard g = link_guard(l);
		u128 spent;
		u64 uses;
		auth_counter_get(a, g.link, &spent, &uses);
		CHECK(spent == m->spent[l] && uses == m->uses[l]);
		CHECK(auth_revoked(a, g.iss, g.jti_hash) ==
		      (m->issuer_revoked[l % 5] || m->link_revoked[l % 5][l]));
	}
}

static void run(struct auth *a, const u8 *data, size_t size)
{
	struct reader r = {data, size};
	struct model m;
	memset(&m, 0, sizeof(m));
	m.valid = true;
	u64 ts = 1;
	struct pstate *ps = pstate_new();
	CHECK(ps);
	for (u32 ops = 0; r.n > 0 && ops < OPS_MAX; ops++) {
		u8 op = take8(&r);
		ts += 1 + (op >> 4);
		switch (op % 8) {
		case 0: op_principal(a, &m, &r, ts); break;
		case 1: op_revoke(a, &m, &r, ts); break;
		case 2: op_key(a, &m, &r, ts); break;
		case 3: op_owners(a, &m, &r); break;
		case 4:
		case 5: op_guard(a, &m, &r); break;
		case 6:
			if (op & 0x10)
				op_admin(a, ps, &r, ts);
			else
				op_raw(a, &m, &r, ts);
			break;
		default: op_raw_guard(a, &m, &r); break;
		}
	}
	pstate_free(ps);
	compare_model(a, &m);
}

/* The state read from a snapshot answers like the one written. */
static void check_lookups(const struct auth *a)
{
	for (u32 i = 0; i < auth_principal_count(a); i++) {
		struct auth_principal_info p, q;
		auth_principal_at(a, i, &p);
		CHECK(auth_principal_get(a, p.id, &q));
		CHECK(memcmp(p.id, q.id, 32) == 0);
		CHECK(strlen(p.name) <= AUTH_NAME_BYTES);
	}
	for (u32 i = 0; i < auth_revocation_count(a); i++) {
		struct auth_revocation v;
		auth_revocation_at(a, i, &v);
		CHECK(auth_revoked(a, v.iss, v.jti_hash));
		CHECK(strlen(v.jti) <= AUTH_JTI_BYTES);
	}
	for (u32 i = 0; i < auth_key_event_count(a); i++) {
		struct auth_key_event k;
		u64 ts;
		auth_key_event_at(a, i, &k, &ts);
	}
}

static void snapshot_mode(const u8 *data, size_t size)
{
	/* An exact-size copy, so that ASan sees any read past the end. */
	u8 *copy = malloc(size ? size : 1);
	if (!copy)
		return;
	memcpy(copy, data, size);
	struct auth *a = auth_snapshot_read(copy, size);
	if (a) {
		struct buf b = snapshot_of(a);
		/* The current format writes back byte for byte; a snapshot
		 * with an older administrators' part ("TPWADMN1", read
		 * only) is written in the current one, which reads back the
		 * same state (below). */
		bool old = memmem(data, size, "TPWADMN1", 8) != NULL;
		CHECK(old || (b.n == size && memcmp(b.p, data, size) == 0));
		check_lookups(a);
		struct auth *again = auth_snapshot_read(b.p, b.n);
		CHECK(again);
		u8 d1[32], d2[32];
		auth_digest(a, d1);
		auth_digest(again, d2);
		CHECK(memcmp(d1, d2, 32) == 0);
		struct buf b2 = snapshot_of(again);
		CHECK(b2.n == b.n && memcmp(b2.p, b.p, b.n) == 0);
		free(b2.p);
		auth_free(again);
		free(b.p);
		auth_free(a);
	}
	free(copy);
}

static void commands_mode(const u8 *data, size_t size)
{
	struct auth *a = auth_new(), *b = auth_new();
	CHECK(a && b);
	run(a, data, size);
	run(b, data, size);
	u8 da[32], db[32], dr[32];
	auth_digest(a, da);
	auth_digest(b, db);
	CHECK(memcmp(da, db, 32) == 0);

	struct buf s = snapshot_of(a);
	struct auth *r = auth_snapshot_read(s.p, s.n);
	CHECK(r);
	auth_digest(r, dr);
	CHECK(memcmp(da, dr, 32) == 0);
	check_lookups(r);
	struct buf s2 = snapshot_of(r);
	CHECK(s2.n == s.n && memcmp(s.p, s2.p, s.n) == 0);
	free(s.p);
	free(s2.p);
	auth_free(r);
	auth_free(a);
	auth_free(b);
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		commands_mode(data + 1, size - 1);
	else
		snapshot_mode(data + 1, size - 1);
	return 0;
}

#ifdef AUTH_CORPUS_MAIN
/* Writes the seed corpus: snapshots (empty, and of a state that holds
 * every collection) and programs that reach every operation. */
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

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	/* Programs (see run()): op byte, then its operands. */
	static const u8 mixed[] =
		{
			0, 1,  1,   1, 0,  2, 1,  2,	0,  1, 9,  3,	 0,
			3, 24, 4,	      /* principals */
			2, 1,  2,   2, 2,  0, /* key events */
			3, 1,  4,   1, 2,  3, 1,  3,	0,  2, 5,  6, /* owners
								       */
			4, 1,  3,   2, 10, 0, 20, 0, /* guards */
			4, 1,  3,   3, 30, 0, 30, 0,	40, 0, 4,  2,	 3,
			3, 1,  1,   0, 5,  0, 7,  2,	5,  5, 9,  0x40, 1,
			2, 2,  0,   4, 0,  2, 1,  1,	0, /* revocations */
			1, 2,  16,  0, 1,  3, 3,  0x81, 4,  0, 15, 2,	 255,
			0, 1,  0,   /* overflow */
			6, 3,  144, /* raw */
		};
	write_seed(argv[1], "cmds-mixed", 1, mixed, sizeof(mixed));
	static const u8 caps[] = {
		4,  0,	1,  1, 37, 0, /* link 1: cap 37, uses 1 */
		4,  0,	1,  1, 1,  0, 4, 0, 6, 2, 37, 0, 37, 0, /* link 6 */
		4,  0,	14, 3, 1,  0, 1, 0, 1, 0, 4,  7, 15, 14, 13,
		12, 11, 10, 9, 8,  4, 1, 0, 2, 0, 3,  0, 4,  0,
	};
	write_seed(argv[1], "cmds-caps", 1, caps, sizeof(caps));
	static const u8 raw[] = {
		7,    1,    'L', 0, 0,	 0,    0, 0, 0, 0, 1,	0,   0,	  0,
		0,    0,    0,	 0, 0,	 0,    0, 0, 0, 0, 0,	0,   0,	  0,
		0,    0,    0,	 0, 0,	 0xA5, 2, 3, 0, 4, 0,	6,   1,	  144,
		0xde, 0xad, 6,	 4, 144, 1,    2, 3, 6, 5, 112, 'k', 'i', 'd',
	};
	write_seed(argv[1], "cmds-raw", 1, raw, sizeof(raw));

	/* Snapshots. */
	struct auth *a = auth_new();
	CHECK(a);
	struct buf b = snapshot_of(a);
	write_seed(argv[1], "snap-empty", 0, b.p, b.n);
	free(b.p);
	run(a, mixed, sizeof(mixed)); /* (a model per run: one program) */
	b = snapshot_of(a);
	write_seed(argv[1], "snap-mixed", 0, b.p, b.n);
	free(b.p);
	auth_free(a);
	/* Named administrators: two principals, roles, a request, a
	 * self-approval, an approval (op 0x16: op_admin). */
	static const u8 admins[] = {
		0,    1, 1, 1, 0, 2, 2, 2, /* two Ed25519 principals */
		0x16, 0, 0, 0, 1,	   /* the first an operator */
		0x16, 0, 1, 1, 1,	   /* the second too */
		0x16, 2, 0, 0,		   /* the first requests */
		0x16, 3, 0, 0, 1, 1,	   /* approves: self */
		0x16, 3, 1, 0, 1, 1,	   /* the second approves */
	};
	write_seed(argv[1], "cmds-admins", 1, admins, sizeof(admins));
	a = auth_new();
	CHECK(a);
	run(a, admins, sizeof(admins));
	b = snapshot_of(a);
	write_seed(argv[1], "snap-admins", 0, b.p, b.n);
	free(b.p);
	auth_free(a);
	/* More than 64 of each, so that every index grows when read. */
	a = auth_new();
	CHECK(a);
	struct account acc[100];
	u32 ok[100];
	memset(acc, 0, sizeof(acc));
	for (u32 i = 0; i < 100; i++) {
		u32 out;
		struct auth_principal p;
		memset(&p, 0, sizeof(p));
		key(p.id, 'P', i);
		snprintf(p.name, sizeof(p.name), "p%u", i);
		CHECK(auth_apply(a, AUTH_CMD_PRINCIPAL, &p, sizeof(p), i,
				 &out) == 0 &&
		      out == AUTH_OK);
		struct auth_revoke rv;
		memset(&rv, 0, sizeof(rv));
		key(rv.iss, 'I', i);
		if (i % 3)
			key(rv.jti_hash, 'J', i);
		else
			rv.flags = AUTH_REVOKE_ALL;
		CHECK(auth_apply(a, AUTH_CMD_REVOKE, &rv, sizeof(rv), i,
				 &out) == 0 &&
		      out == AUTH_OK);
		struct auth_key_event k;
		memset(&k, 0, sizeof(k));
		k.kind = 1 + i % 2;
		CHECK(auth_apply(a, AUTH_CMD_KEY, &k, sizeof(k), i, &out) == 0);
		acc[i].id = i + 1;
		ok[i] = CREATE_ACCOUNT_ok;
		struct auth_guard g;
		memset(&g, 0, sizeof(g));
		key(g.link, 'X', i);
		g.flags = AUTH_GUARD_USES;
		g.uses_max = 9;
		struct transfer t;
		memset(&t, 0, sizeof(t));
		t.amount = i;
		u32 created = CREATE_TRANSFER_ok;
		CHECK(auth_guard_check(a, &g, 1, &t, 1, NULL) == 0);
		CHECK(auth_guard_commit(a, &g, 1, &t, &created, 1) == 0);
	}
	struct auth_owner o;
	key(o.owner, 'P', 1);
	auth_set_owners(a, &o, acc, ok, 100);
	b = snapshot_of(a);
	write_seed(argv[1], "snap-grown", 0, b.p, b.n);
	free(b.p);
	auth_free(a);
	return 0;
}
#endif
