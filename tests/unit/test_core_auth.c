/*
 * test_core_auth.c - the authorization state beside the ledger
 * (core/auth.h): principals (exists, name taken, limits), revocations of
 * a link and of every link of an issuer, account owners, the mandate
 * guard (total cap and uses at their exact boundaries, what counts and
 * what does not, overflow, revocation first, the tightest link wins),
 * and the snapshot codec (round trip with grown indexes, hostile bytes,
 * a digest that sees every element).
 *
 * Keys are built so that many share their first 8 bytes, the part the
 * indexes hash: lookups must then walk long probe chains and still tell
 * the elements apart.
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

#include "core/auth.h"
#include "core/result.h"
#include "banned.h"

/* ---- builders -------------------------------------------------------- */

/* A 32-byte key: `hi` lands in the hashed first 8 bytes, `lo` after them.
 * Keys with the same hi collide in every index. */
static void key32(u8 out[32], u32 hi, u32 lo)
{
	memset(out, 0, 32);
	memcpy(out, &hi, 4);
	memcpy(out + 8, &lo, 4);
	out[31] = 0xA5; /* never the all-zero key */
}

static struct auth_principal principal(u32 hi, u32 lo, const char *name)
{
	struct auth_principal p;
	memset(&p, 0, sizeof(p));
	key32(p.id, hi, lo);
	key32(p.pub, lo, hi);
	p.pub[0] ^= 0x5a;
	if (name)
		memcpy(p.name, name, strnlen(name, AUTH_NAME_BYTES));
	return p;
}

static struct auth_revoke revoke_link(const u8 iss[32], const u8 jti_hash[32],
				      const char *jti)
{
	struct auth_revoke r;
	memset(&r, 0, sizeof(r));
	memcpy(r.iss, iss, 32);
	memcpy(r.jti_hash, jti_hash, 32);
	r.quota = AUTH_REVOCATIONS_PER_PRINCIPAL;
	if (jti)
		memcpy(r.jti, jti, strnlen(jti, AUTH_JTI_BYTES));
	return r;
}

static struct auth_revoke revoke_all(const u8 iss[32])
{
	struct auth_revoke r;
	memset(&r, 0, sizeof(r));
	memcpy(r.iss, iss, 32);
	r.flags = AUTH_REVOKE_ALL;
	return r;
}

static struct auth_key_event key_event(u32 i, u32 kind)
{
	struct auth_key_event k;
	memset(&k, 0, sizeof(k));
	snprintf(k.kid, sizeof(k.kid), "kid-%u", i);
	key32(k.pub, i, 7);
	k.not_before = (int64_t)i * 100;
	k.not_after =
		kind == AUTH_KEY_RETIRED ? (int64_t)i * 100 + 50 : INT64_MAX;
	k.kind = kind;
	return k;
}

static struct auth_guard guard(u32 link, u32 iss, u32 jti, u32 flags,
			       u128 total_cap, u64 uses_max)
{
	struct auth_guard g;
	memset(&g, 0, sizeof(g));
	key32(g.link, link, 1);
	key32(g.iss, iss, 2);
	key32(g.jti_hash, jti, 3);
	g.flags = flags;
	g.total_cap = total_cap;
	g.uses_max = uses_max;
	return g;
}

static struct transfer xfer(u128 amount, u16 flags)
{
	struct transfer t;
	memset(&t, 0, sizeof(t));
	t.amount = amount;
	t.flags = flags;
	return t;
}

/* Apply a command that must be well formed; returns its outcome. */
static u32 apply(struct auth *a, u16 kind, const void *ext, u32 bytes, u64 ts)
{
	u32 outcome = 0xdead;
	assert_int_equal(auth_apply(a, kind, ext, bytes, ts, &outcome), 0);
	assert_true(outcome <= AUTH_FULL);
	return outcome;
}

static u32 add_principal(struct auth *a, const struct auth_principal *p, u64 ts)
{
	return apply(a, AUTH_CMD_PRINCIPAL, p, sizeof(*p), ts);
}

static u32 add_revoke(struct auth *a, const struct auth_revoke *r, u64 ts)
{
	return apply(a, AUTH_CMD_REVOKE, r, sizeof(*r), ts);
}

static u32 add_key(struct auth *a, const struct auth_key_event *k, u64 ts)
{
	return apply(a, AUTH_CMD_KEY, k, sizeof(*k), ts);
}

static struct auth *fresh(void)
{
	struct auth *a = auth_new();
	assert_non_null(a);
	return a;
}

/* Check then, when allowed, commit as if every event was created. */
static u32 guard_run(struct auth *a, const struct auth_guard *g, u32 ng,
		     const struct transfer *t, u32 n)
{
	u32 results[16] = {0};
	assert_true(n <= 16);
	u32 r = auth_guard_check(a, g, ng, t, n, NULL);
	if (r == 0)
		assert_int_equal(auth_guard_commit(a, g, ng, t, results, n), 0);
	return r;
}

static void counter(const struct auth *a, const struct auth_guard *g,
		    u128 *spent, u64 *uses)
{
	auth_counter_get(a, g->link, spent, uses);
}

/* ---- snapshot helpers -------------------------------------------------- */

struct buf {
	u8 *p;
	size_t n, cap;
};

static int buf_sink(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->n + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + len)
			cap *= 2;
		u8 *p = realloc(b->p, cap);
		assert_non_null(p);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
	return 0;
}

static struct buf snap(const struct auth *a)
{
	struct buf b = {0};
	assert_int_equal(auth_snapshot_write(a, buf_sink, &b), 0);
	assert_int_equal(b.n, auth_snapshot_bytes(a));
	return b;
}

static void same_digest(const struct auth *x, const struct auth *y)
{
	u8 dx[32], dy[32];
	auth_digest(x, dx);
	auth_digest(y, dy);
	assert_memory_equal(dx, dy, 32);
}

static void different_digest(const struct auth *x, const struct auth *y)
{
	u8 dx[32], dy[32];
	auth_digest(x, dx);
	auth_digest(y, dy);
	assert_memory_not_equal(dx, dy, 32);
}

/* ---- principals -------------------------------------------------------- */

static void principal_register_exists_name_taken(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_principal_info info;

	struct auth_principal alice = principal(1, 1, "alice");
	assert_false(auth_principal_get(a, alice.id, &info));
	assert_int_equal(add_principal(a, &alice, 111), AUTH_OK);
	assert_true(auth_principal_get(a, alice.id, &info));
	assert_memory_equal(info.id, alice.id, 32);
	assert_memory_equal(info.pub, alice.pub, 32);
	assert_string_equal(info.name, "alice");
	assert_int_equal(info.timestamp, 111);

	/* The same id again, whatever its name: exists, nothing stored. */
	struct auth_principal again = principal(1, 1, "other");
	assert_int_equal(add_principal(a, &again, 112), AUTH_EXISTS);
	assert_int_equal(auth_principal_count(a), 1);
	assert_true(auth_principal_get(a, alice.id, &info));
	assert_string_equal(info.name, "alice");
	assert_int_equal(info.timestamp, 111);

	/* Another key, same name: taken, also when the name is followed by
	 * bytes after its NUL (the name ends at the NUL). */
	struct auth_principal bob = principal(1, 2, "alice");
	assert_int_equal(add_principal(a, &bob, 113), AUTH_NAME_TAKEN);
	bob.name[6] = 'x';
	assert_int_equal(add_principal(a, &bob, 113), AUTH_NAME_TAKEN);
	assert_false(auth_principal_get(a, bob.id, NULL));
	/* A name that only starts like it is another name. */
	bob = principal(1, 2, "alice2");
	assert_int_equal(add_principal(a, &bob, 114), AUTH_OK);
	struct auth_principal al = principal(1, 3, "alic");
	assert_int_equal(add_principal(a, &al, 115), AUTH_OK);

	/* Names are optional: any number of nameless principals. */
	struct auth_principal n1 = principal(1, 4, NULL);
	struct auth_principal n2 = principal(1, 5, NULL);
	assert_int_equal(add_principal(a, &n1, 116), AUTH_OK);
	assert_int_equal(add_principal(a, &n2, 117), AUTH_OK);

	/* A name that fills all 64 bytes (no NUL) is read back whole and
	 * taken whole. */
	char full[AUTH_NAME_BYTES + 1];
	memset(full, 'z', AUTH_NAME_BYTES);
	full[AUTH_NAME_BYTES] = '\0';
	struct auth_principal f1 = principal(1, 6, full);
	assert_int_equal(add_principal(a, &f1, 118), AUTH_OK);
	assert_true(auth_principal_get(a, f1.id, &info));
	assert_int_equal(strlen(info.name), AUTH_NAME_BYTES);
	assert_string_equal(info.name, full);
	struct auth_principal f2 = principal(1, 7, full);
	assert_int_equal(add_principal(a, &f2, 119), AUTH_NAME_TAKEN);
	full[AUTH_NAME_BYTES - 1] = '\0';
	f2 = principal(1, 7, full);
	assert_int_equal(add_principal(a, &f2, 119), AUTH_OK);

	/* Insertion order is journal order. */
	assert_int_equal(auth_principal_count(a), 7);
	const u32 order[] = {1, 2, 3, 4, 5, 6, 7};
	for (u32 i = 0; i < 7; i++) {
		struct auth_principal p = principal(1, order[i], NULL);
		auth_principal_at(a, i, &info);
		assert_memory_equal(info.id, p.id, 32);
	}
	auth_free(a);
}

/* 1,000 principals whose ids all share the hashed prefix, and 1,000 that
 * do not: every one is found, no absent one is. */
/* An organisation (kind 24): its record's pub says so and carries its
 * dates; without the magic, with negative dates or reserved bytes, the
 * command is malformed; it shares ids and names with Ed25519 ones. */
static void organisation_principal_is_kind_24_with_its_dates(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_principal_info info;
	struct auth_x509_pub x = {.magic = AUTH_X509_MAGIC,
				  .not_before = 1700000000,
				  .not_after = 1790000000},
			     got;

	struct auth_principal org = principal(7, 1, "bank");
	memcpy(org.pub, &x, sizeof(x));
	assert_int_equal(
		apply(a, AUTH_CMD_PRINCIPAL_X509, &org, sizeof(org), 5),
		AUTH_OK);
	assert_true(auth_principal_get(a, org.id, &info));
	assert_true(auth_principal_x509(info.pub, &got));
	assert_int_equal(got.not_after, 1790000000);
	assert_int_equal(got.not_before, 1700000000);
	struct auth_principal ed = principal(7, 2, "bank");
	assert_int_equal(add_principal(a, &ed, 6), AUTH_NAME_TAKEN);
	struct auth_principal_info einfo;
	ed = principal(7, 3, "till");
	assert_int_equal(add_principal(a, &ed, 7), AUTH_OK);
	assert_true(auth_principal_get(a, ed.id, &einfo));
	assert_false(auth_principal_x509(einfo.pub, NULL));
	assert_int_equal(
		apply(a, AUTH_CMD_PRINCIPAL_X509, &org, sizeof(org), 8),
		AUTH_EXISTS);

	u32 out;
	struct auth_principal bad = principal(7, 9, "x");
	assert_false(
		auth_command_valid(AUTH_CMD_PRINCIPAL_X509, &bad, sizeof(bad)));
	assert_int_equal(auth_apply(a, AUTH_CMD_PRINCIPAL_X509, &bad,
				    sizeof(bad), 9, &out),
			 -EBADMSG);
	x.not_after = -1;
	memcpy(bad.pub, &x, sizeof(x));
	assert_false(
		auth_command_valid(AUTH_CMD_PRINCIPAL_X509, &bad, sizeof(bad)));
	x.not_after = 1;
	x.reserved[3] = 1;
	memcpy(bad.pub, &x, sizeof(x));
	assert_false(
		auth_command_valid(AUTH_CMD_PRINCIPAL_X509, &bad, sizeof(bad)));
	assert_false(auth_command_valid(AUTH_CMD_PRINCIPAL_X509, &org,
					sizeof(org) - 16));
	assert_int_equal(auth_principal_count(a), 2);
	auth_free(a);
}

static void principal_lookup_through_collisions_and_growth(void **state)
{
	(void)state;
	struct auth *a = fresh();
	for (u32 i = 0; i < 1000; i++) {
		struct auth_principal p = principal(42, i, NULL);
		assert_int_equal(add_principal(a, &p, i + 1), AUTH_OK);
		struct auth_principal q = principal(1000 + i, i, NULL);
		assert_int_equal(add_principal(a, &q, i + 1), AUTH_OK);
	}
	for (u32 i = 0; i < 1000; i++) {
		struct auth_principal p = principal(42, i, NULL);
		struct auth_principal_info info;
		assert_true(auth_principal_get(a, p.id, &info));
		assert_memory_equal(info.pub, p.pub, 32);
		assert_int_equal(add_principal(a, &p, 5000), AUTH_EXISTS);
		struct auth_principal q = principal(1000 + i, i, NULL);
		assert_true(auth_principal_get(a, q.id, NULL));
		struct auth_principal absent = principal(42, 5000 + i, NULL);
		assert_false(auth_principal_get(a, absent.id, NULL));
	}
	assert_int_equal(auth_principal_count(a), 2000);
	auth_free(a);
}

static void key_events_stop_at_their_limit_with_full(void **state)
{
	(void)state;
	struct auth *a = fresh();
	for (u32 i = 0; i < AUTH_KEY_EVENTS_MAX; i++) {
		struct auth_key_event k = key_event(
			i, i % 2 ? AUTH_KEY_RETIRED : AUTH_KEY_CREATED);
		assert_int_equal(add_key(a, &k, 1000 + i), AUTH_OK);
	}
	u8 before[32], after[32];
	auth_digest(a, before);
	struct auth_key_event k = key_event(1, AUTH_KEY_CREATED);
	assert_int_equal(add_key(a, &k, 1), AUTH_FULL);
	assert_int_equal(auth_key_event_count(a), AUTH_KEY_EVENTS_MAX);
	auth_digest(a, after);
	assert_memory_equal(before, after, 32);

	struct auth_key_event out;
	u64 ts = 0;
	auth_key_event_at(a, 5, &out, &ts);
	struct auth_key_event want = key_event(5, AUTH_KEY_RETIRED);
	assert_memory_equal(&out, &want, sizeof(out));
	assert_int_equal(ts, 1005);
	auth_free(a);
}

static void principals_stop_at_their_limit_with_full(void **state)
{
	(void)state;
	struct auth *a = fresh();
	for (u32 i = 0; i < AUTH_PRINCIPALS_MAX; i++) {
		struct auth_principal p = principal(i, i, NULL);
		assert_int_equal(add_principal(a, &p, 1), AUTH_OK);
	}
	struct auth_principal p = principal(AUTH_PRINCIPALS_MAX, 0, "late");
	assert_int_equal(add_principal(a, &p, 2), AUTH_FULL);
	assert_false(auth_principal_get(a, p.id, NULL));
	/* A known one is still "exists", not "full". */
	struct auth_principal known = principal(7, 7, NULL);
	assert_int_equal(add_principal(a, &known, 3), AUTH_EXISTS);
	assert_int_equal(auth_principal_count(a), AUTH_PRINCIPALS_MAX);
	auth_free(a);
}

/* ---- malformed commands ------------------------------------------------- */

static void malformed_commands_are_ebadmsg_and_change_nothing(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_principal p = principal(1, 1, "p");
	assert_int_equal(add_principal(a, &p, 1), AUTH_OK);
	u8 before[32], after[32];
	auth_digest(a, before);

	u8 big[512];
	memset(big, 0x11, sizeof(big));
	u32 out = 0xdead;
	const struct {
		u16 kind;
		u32 size;
	} sizes[] = {
		{AUTH_CMD_PRINCIPAL, 0},
		{AUTH_CMD_PRINCIPAL, sizeof(struct auth_principal) - 1},
		{AUTH_CMD_PRINCIPAL, sizeof(struct auth_principal) + 1},
		{AUTH_CMD_PRINCIPAL, sizeof(struct auth_principal) + 16},
		{AUTH_CMD_REVOKE, 0},
		{AUTH_CMD_REVOKE, sizeof(struct auth_revoke) - 16},
		{AUTH_CMD_REVOKE, sizeof(struct auth_revoke) + 16},
		{AUTH_CMD_KEY, 0},
		{AUTH_CMD_KEY, sizeof(struct auth_key_event) - 1},
		{AUTH_CMD_KEY, sizeof(struct auth_key_event) + 16},
		/* Kinds with events, or unknown, never go through here. */
		{AUTH_CMD_ACCOUNTS_OWNED, sizeof(struct auth_owner)},
		{AUTH_CMD_TRANSFERS_GUARDED, sizeof(struct auth_guard)},
		{0, sizeof(struct auth_principal)},
		{6, sizeof(struct auth_principal)},
		{0xffff, sizeof(struct auth_principal)},
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		assert_int_equal(auth_apply(a, sizes[i].kind, big,
					    sizes[i].size, 2, &out),
				 -EBADMSG);

	u8 iss[32], h[32];
	key32(iss, 9, 9);
	key32(h, 9, 10);
	/* Unknown flag bits, alone or beside AUTH_REVOKE_ALL. */
	struct auth_revoke r = revoke_link(iss, h, "j");
	r.flags = 1u << 2; /* bit 1 is AUTH_REVOKE_QUOTA */
	assert_int_equal(auth_apply(a, AUTH_CMD_REVOKE, &r, sizeof(r), 2, &out),
			 -EBADMSG);
	r = revoke_all(iss);
	r.flags |= 1u << 31;
	assert_int_equal(auth_apply(a, AUTH_CMD_REVOKE, &r, sizeof(r), 2, &out),
			 -EBADMSG);
	/* "all" with a jti hash; a link without one. */
	r = revoke_all(iss);
	r.jti_hash[17] = 1;
	assert_int_equal(auth_apply(a, AUTH_CMD_REVOKE, &r, sizeof(r), 2, &out),
			 -EBADMSG);
	static const u8 zero[32];
	r = revoke_link(iss, zero, "j");
	assert_int_equal(auth_apply(a, AUTH_CMD_REVOKE, &r, sizeof(r), 2, &out),
			 -EBADMSG);
	/* Key events of an unknown kind. */
	const u32 bad_kinds[] = {0, 3, 0xffffffffu};
	for (size_t i = 0; i < 3; i++) {
		struct auth_key_event k = key_event(1, AUTH_KEY_CREATED);
		k.kind = bad_kinds[i];
		assert_int_equal(
			auth_apply(a, AUTH_CMD_KEY, &k, sizeof(k), 2, &out),
			-EBADMSG);
	}

	auth_digest(a, after);
	assert_memory_equal(before, after, 32);
	assert_false(auth_revoked(a, iss, h));

	/* What the engine asks before journaling agrees with auth_apply,
	 * both ways. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		assert_false(
			auth_command_valid(sizes[i].kind, big, sizes[i].size));
	r = revoke_all(iss);
	assert_true(auth_command_valid(AUTH_CMD_REVOKE, &r, sizeof(r)));
	r.jti_hash[0] = 1;
	assert_false(auth_command_valid(AUTH_CMD_REVOKE, &r, sizeof(r)));
	r = revoke_link(iss, h, "j");
	assert_true(auth_command_valid(AUTH_CMD_REVOKE, &r, sizeof(r)));
	r.flags = 4;
	assert_false(auth_command_valid(AUTH_CMD_REVOKE, &r, sizeof(r)));
	struct auth_key_event k = key_event(1, AUTH_KEY_RETIRED);
	assert_true(auth_command_valid(AUTH_CMD_KEY, &k, sizeof(k)));
	k.kind = 0;
	assert_false(auth_command_valid(AUTH_CMD_KEY, &k, sizeof(k)));
	assert_true(auth_command_valid(AUTH_CMD_PRINCIPAL, &p, sizeof(p)));
	assert_int_equal(auth_revocation_count(a), 0);
	assert_int_equal(auth_key_event_count(a), 0);
	auth_free(a);
}

/* ---- revocations -------------------------------------------------------- */

/* A key is created once; revocations are counted per issuer, also
 * after a snapshot is read back (the count is derived, not stored). */
static void key_created_once_and_revocations_counted_by_issuer(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_key_event k = key_event(1, AUTH_KEY_CREATED);
	assert_int_equal(add_key(a, &k, 10), AUTH_OK);
	assert_int_equal(add_key(a, &k, 11), AUTH_EXISTS);
	assert_int_equal(auth_key_event_count(a), 1);

	u8 iss[32], iss2[32], h[32];
	key32(iss, 9, 1);
	key32(iss2, 9, 2); /* same hashed prefix */
	for (u32 i = 0; i < 70; i++) {
		char jti[16];
		snprintf(jti, sizeof(jti), "j%u", i);
		key32(h, 40 + i, 3);
		struct auth_revoke r = revoke_link(i % 2 ? iss2 : iss, h, jti);
		r.flags |= AUTH_REVOKE_QUOTA;
		memcpy(r.payer, r.iss, 32);
		assert_int_equal(add_revoke(a, &r, 100 + i), AUTH_OK);
	}
	assert_int_equal(auth_revocations_by(a, iss, false), 35);
	assert_int_equal(auth_revocations_by(a, iss2, false), 35);
	u8 other[32];
	key32(other, 1, 1);
	assert_int_equal(auth_revocations_by(a, other, false), 0);

	struct buf b = {0};
	assert_int_equal(auth_snapshot_write(a, buf_sink, &b), 0);
	struct auth *c = auth_snapshot_read(b.p, b.n);
	assert_non_null(c);
	assert_int_equal(auth_revocations_by(c, iss, false), 35);
	assert_int_equal(auth_revocations_by(c, iss2, false), 35);
	free(b.p);
	auth_free(c);
	auth_free(a);
}

/* Statements of keys other than the administrator's carry
 * AUTH_REVOKE_QUOTA and the principal that pays for them: the state
 * machine stops a payer at its quota, in journal order, however many
 * keys sign for it; unmarked ones (the administrator's) go on. */
static void revocation_quota_is_decided_by_the_state_machine(void **state)
{
	(void)state;
	struct auth *a = fresh();
	u8 payer[32], other[32], admin[32], h[32];
	key32(payer, 11, 1);
	key32(other, 11, 3);
	key32(admin, 11, 2);
	for (u32 i = 0; i < AUTH_REVOCATIONS_PER_PRINCIPAL; i++) {
		u8 minted[32]; /* a fresh key for every statement */
		key32(minted, 1000 + i, 4);
		key32(h, i, 9);
		struct auth_revoke r = revoke_link(minted, h, "q");
		r.flags |= AUTH_REVOKE_QUOTA;
		memcpy(r.payer, payer, 32);
		assert_int_equal(add_revoke(a, &r, 10 + i), AUTH_OK);
	}
	u8 minted[32];
	key32(minted, 999, 4);
	key32(h, AUTH_REVOCATIONS_PER_PRINCIPAL, 9);
	struct auth_revoke over = revoke_link(minted, h, "q");
	over.flags |= AUTH_REVOKE_QUOTA;
	memcpy(over.payer, payer, 32);
	assert_int_equal(add_revoke(a, &over, 1u << 20), AUTH_FULL);
	assert_false(auth_revoked(a, minted, h));
	/* the payer's delegates have a bucket of their own, so keys it
	 * handed out cannot use up its own revocations, nor it theirs */
	over.flags |= AUTH_REVOKE_DELEGATE;
	assert_int_equal(add_revoke(a, &over, (1u << 20) + 3), AUTH_OK);
	assert_int_equal(auth_revocations_by(a, payer, true), 1);
	over.flags &= ~AUTH_REVOKE_DELEGATE;
	key32(h, AUTH_REVOCATIONS_PER_PRINCIPAL + 1, 9);
	memcpy(over.jti_hash, h, 32);
	/* another principal still has its own */
	memcpy(over.payer, other, 32);
	assert_int_equal(add_revoke(a, &over, (1u << 20) + 1), AUTH_OK);
	struct auth_revoke mine = revoke_link(admin, h, "a");
	assert_int_equal(add_revoke(a, &mine, (1u << 20) + 2), AUTH_OK);
	assert_int_equal(auth_revocations_by(a, payer, false),
			 AUTH_REVOCATIONS_PER_PRINCIPAL);
	assert_int_equal(auth_revocations_by(a, other, false), 1);
	assert_int_equal(auth_revocations_by(a, admin, false), 0);
	auth_free(a);
}

/* A statement journaled before payers existed (144 bytes) still applies,
 * paid by its issuer, as its quota was counted then. */
static void revocations_of_the_first_format_replay(void **state)
{
	(void)state;
	struct auth *a = fresh();
	u8 iss[32], h[32];
	key32(iss, 12, 1);
	key32(h, 12, 9);
	struct auth_revoke r = revoke_link(iss, h, "old");
	r.flags |= AUTH_REVOKE_QUOTA;
	assert_int_equal(
		apply(a, AUTH_CMD_REVOKE, &r, AUTH_REVOKE_V1_BYTES, 10),
		AUTH_OK);
	assert_true(auth_revoked(a, iss, h));
	assert_int_equal(auth_revocations_by(a, iss, false), 1);
	assert_false(auth_command_valid(AUTH_CMD_REVOKE, &r,
					AUTH_REVOKE_V1_BYTES + 16));
	auth_free(a);
}

static void revoke_link_only_that_link(void **state)
{
	(void)state;
	struct auth *a = fresh();
	u8 iss[32], iss2[32], h1[32], h2[32];
	key32(iss, 5, 1);
	key32(iss2, 5, 2); /* same hashed prefix as iss */
	key32(h1, 6, 1);
	key32(h2, 6, 2);

	struct auth_revoke r = revoke_link(iss, h1, "link-one");
	assert_int_equal(add_revoke(a, &r, 500), AUTH_OK);
	assert_true(auth_revoked(a, iss, h1));
	assert_false(auth_revoked(a, iss, h2));
	assert_false(auth_revoked(a, iss2, h1));
	static const u8 zero[32];
	assert_false(auth_revoked(a, iss, zero)); /* the issuer is not */

	assert_int_equal(add_revoke(a, &r, 501), AUTH_ALREADY_REVOKED);
	assert_int_equal(auth_revocation_count(a), 1);

	struct auth_revocation out;
	auth_revocation_at(a, 0, &out);
	assert_memory_equal(out.iss, iss, 32);
	assert_memory_equal(out.jti_hash, h1, 32);
	assert_string_equal(out.jti, "link-one");
	assert_false(out.all);
	assert_int_equal(out.timestamp, 500);

	/* A jti of the full 64 bytes comes back NUL-terminated. */
	char jti[AUTH_JTI_BYTES + 1];
	memset(jti, 'j', AUTH_JTI_BYTES);
	jti[AUTH_JTI_BYTES] = '\0';
	r = revoke_link(iss, h2, jti);
	assert_int_equal(add_revoke(a, &r, 502), AUTH_OK);
	auth_revocation_at(a, 1, &out);
	assert_string_equal(out.jti, jti);
	assert_true(auth_revoked(a, iss, h2));
	auth_free(a);
}

static void revoke_all_covers_every_jti_of_the_issuer(void **state)
{
	(void)state;
	struct auth *a = fresh();
	u8 iss[32], other[32], h[32];
	key32(iss, 8, 1);
	key32(other, 8, 2);

	struct auth_revoke r = revoke_all(iss);
	assert_int_equal(add_revoke(a, &r, 700), AUTH_OK);
	for (u32 i = 0; i < 100; i++) {
		key32(h, i, i * 7);
		assert_true(auth_revoked(a, iss, h));
		assert_false(auth_revoked(a, other, h));
	}
	static const u8 zero[32];
	assert_true(auth_revoked(a, iss, zero));
	assert_false(auth_revoked(a, other, zero));
	assert_int_equal(add_revoke(a, &r, 701), AUTH_ALREADY_REVOKED);

	struct auth_revocation out;
	auth_revocation_at(a, 0, &out);
	assert_true(out.all);
	assert_memory_equal(out.jti_hash, zero, 32);
	assert_string_equal(out.jti, "");
	assert_int_equal(out.timestamp, 700);

	/* A link revocation is its own record even under a revoked issuer;
	 * a revoked link does not revoke its issuer. */
	key32(h, 1, 1);
	struct auth_revoke l = revoke_link(iss, h, "x");
	assert_int_equal(add_revoke(a, &l, 702), AUTH_OK);
	l = revoke_link(other, h, "x");
	assert_int_equal(add_revoke(a, &l, 703), AUTH_OK);
	key32(h, 1, 2);
	assert_false(auth_revoked(a, other, h));
	assert_int_equal(auth_revocation_count(a), 3);
	auth_free(a);
}

/* Link and issuer revocations share one array with two indexes: many of
 * each, interleaved, with colliding hashes, each found only as what it
 * is. */
static void revocations_of_both_kinds_interleaved_through_growth(void **state)
{
	(void)state;
	struct auth *a = fresh();
	u8 iss[32], h[32];
	for (u32 i = 0; i < 300; i++) {
		struct auth_revoke r;
		if (i % 3 == 0) {
			key32(iss, 77, i); /* issuers colliding */
			r = revoke_all(iss);
		} else {
			key32(iss, 78, i);
			key32(h, 0, i); /* iss ^ jti_hash prefix = 78 */
			r = revoke_link(iss, h, "k");
		}
		assert_int_equal(add_revoke(a, &r, i + 1), AUTH_OK);
	}
	for (u32 i = 0; i < 300; i++) {
		if (i % 3 == 0) {
			key32(iss, 77, i);
			key32(h, 1234, i);
			assert_true(auth_revoked(a, iss, h));
			struct auth_revoke r = revoke_all(iss);
			assert_int_equal(add_revoke(a, &r, 9),
					 AUTH_ALREADY_REVOKED);
		} else {
			key32(iss, 78, i);
			key32(h, 0, i);
			assert_true(auth_revoked(a, iss, h));
			struct auth_revoke r = revoke_link(iss, h, "k");
			assert_int_equal(add_revoke(a, &r, 9),
					 AUTH_ALREADY_REVOKED);
			key32(h, 0, i + 1000);
			assert_false(auth_revoked(a, iss, h));
			static const u8 zero[32];
			assert_false(auth_revoked(a, iss, zero));
		}
	}
	assert_int_equal(auth_revocation_count(a), 300);
	auth_free(a);
}

/* ---- owners ----------------------------------------------------------- */

static void owners_only_for_created_accounts_zero_is_admin(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct account acc[300];
	u32 results[300];
	memset(acc, 0, sizeof(acc));
	for (u32 i = 0; i < 300; i++) {
		/* Ids that differ only above bit 64, and plain ones. */
		acc[i].id = i % 2 ? ((u128)i << 64) : (u128)i + 1;
		results[i] =
			i % 5 == 0 ? CREATE_ACCOUNT_exists : CREATE_ACCOUNT_ok;
	}
	struct auth_owner o;
	key32(o.owner, 3, 3);
	auth_set_owners(a, &o, acc, results, 300);

	u8 got[32];
	for (u32 i = 0; i < 300; i++) {
		memset(got, 0xee, 32);
		if (i % 5 == 0) {
			assert_false(auth_owner_get(a, acc[i].id, got));
		} else {
			assert_true(auth_owner_get(a, acc[i].id, got));
			assert_memory_equal(got, o.owner, 32);
		}
	}
	assert_false(auth_owner_get(a, 100000, got));

	/* The administrator: nothing stored, even for created accounts. */
	u8 before[32], after[32];
	auth_digest(a, before);
	struct auth_owner admin;
	memset(&admin, 0, sizeof(admin));
	struct account more[3];
	memset(more, 0, sizeof(more));
	u32 ok[3] = {0, 0, 0};
	for (u32 i = 0; i < 3; i++)
		more[i].id = 900000 + i;
	auth_set_owners(a, &admin, more, ok, 3);
	auth_digest(a, after);
	assert_memory_equal(before, after, 32);
	for (u32 i = 0; i < 3; i++)
		assert_false(auth_owner_get(a, more[i].id, got));

	/* A second owner for other accounts. */
	struct auth_owner o2;
	key32(o2.owner, 3, 4);
	auth_set_owners(a, &o2, more, ok, 3);
	assert_true(auth_owner_get(a, more[1].id, got));
	assert_memory_equal(got, o2.owner, 32);
	assert_true(auth_owner_get(a, acc[1].id, got));
	assert_memory_equal(got, o.owner, 32);
	auth_free(a);
}

/* ---- the guard ----------------------------------------------------------- */

static void total_cap_exact_boundary(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g = guard(1, 1, 1, AUTH_GUARD_TOTAL_CAP, 100, 0);
	struct transfer t[3] = {xfer(30, 0), xfer(30, TRANSFER_PENDING),
				xfer(41, 0)};
	u128 spent;
	u64 uses;

	/* 101 on a fresh link: refused, nothing counted. */
	assert_int_equal(auth_guard_check(a, &g, 1, t, 3, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	/* 100: exactly the cap. */
	t[2].amount = 40;
	assert_int_equal(guard_run(a, &g, 1, t, 3), 0);
	counter(a, &g, &spent, &uses);
	assert_true(spent == 100);
	assert_int_equal(uses, 3);
	/* Nothing left: even 1 is refused, 0 is not. */
	struct transfer one = xfer(1, 0), zero = xfer(0, 0);
	assert_int_equal(auth_guard_check(a, &g, 1, &one, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	assert_int_equal(auth_guard_check(a, &g, 1, &zero, 1, NULL), 0);

	/* Part spent: the remainder is allowed, one more is not. */
	struct auth_guard h = guard(2, 1, 2, AUTH_GUARD_TOTAL_CAP, 1000, 0);
	struct transfer t60 = xfer(600, 0);
	assert_int_equal(guard_run(a, &h, 1, &t60, 1), 0);
	struct transfer rest[2] = {xfer(200, 0), xfer(201, 0)};
	assert_int_equal(auth_guard_check(a, &h, 1, rest, 2, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	rest[1].amount = 200;
	assert_int_equal(guard_run(a, &h, 1, rest, 2), 0);
	counter(a, &h, &spent, &uses);
	assert_true(spent == 1000);
	assert_int_equal(uses, 3);

	/* A cap of U128_MAX takes U128_MAX in one transfer. */
	struct auth_guard m = guard(3, 1, 3, AUTH_GUARD_TOTAL_CAP, U128_MAX, 0);
	struct transfer max = xfer(U128_MAX, 0);
	assert_int_equal(guard_run(a, &m, 1, &max, 1), 0);
	assert_int_equal(auth_guard_check(a, &m, 1, &one, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	auth_free(a);
}

static void uses_exact_boundary(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g = guard(1, 1, 1, AUTH_GUARD_USES, 0, 3);
	struct transfer t[4] = {xfer(5, 0), xfer(5, 0), xfer(5, 0), xfer(5, 0)};
	u128 spent;
	u64 uses;

	assert_int_equal(auth_guard_check(a, &g, 1, t, 4, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	assert_int_equal(guard_run(a, &g, 1, t, 2), 0);
	counter(a, &g, &spent, &uses);
	assert_int_equal(uses, 2);
	assert_true(spent == 10); /* counted, though not capped */
	assert_int_equal(auth_guard_check(a, &g, 1, t, 2, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	assert_int_equal(guard_run(a, &g, 1, t, 1), 0);
	assert_int_equal(auth_guard_check(a, &g, 1, t, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	counter(a, &g, &spent, &uses);
	assert_int_equal(uses, 3);

	/* uses_max 0: nothing at all may be made under the link. */
	struct auth_guard z = guard(2, 1, 2, AUTH_GUARD_USES, 0, 0);
	assert_int_equal(auth_guard_check(a, &z, 1, t, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	/* A huge uses_max does not wrap. */
	struct auth_guard u = guard(3, 1, 3, AUTH_GUARD_USES, 0, UINT64_MAX);
	assert_int_equal(guard_run(a, &u, 1, t, 4), 0);
	assert_int_equal(auth_guard_check(a, &u, 1, t, 4, NULL), 0);
	auth_free(a);
}

static void post_and_void_do_not_count(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g =
		guard(1, 1, 1, AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES, 10, 1);
	struct transfer t[4] = {
		xfer(U128_MAX, TRANSFER_POST_PENDING_TRANSFER),
		xfer(10, 0),
		xfer(U128_MAX, TRANSFER_VOID_PENDING_TRANSFER),
		xfer(999, TRANSFER_POST_PENDING_TRANSFER | TRANSFER_LINKED),
	};
	assert_int_equal(guard_run(a, &g, 1, t, 4), 0);
	u128 spent;
	u64 uses;
	counter(a, &g, &spent, &uses);
	assert_true(spent == 10);
	assert_int_equal(uses, 1);
	/* Only posts and voids left: still allowed, nothing counted. */
	t[1].flags = TRANSFER_VOID_PENDING_TRANSFER;
	assert_int_equal(guard_run(a, &g, 1, t, 4), 0);
	counter(a, &g, &spent, &uses);
	assert_true(spent == 10);
	assert_int_equal(uses, 1);
	/* A pending transfer counts like a posted one. */
	struct transfer p = xfer(1, TRANSFER_PENDING);
	assert_int_equal(auth_guard_check(a, &g, 1, &p, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	auth_free(a);
}

static void sum_overflow_is_refused(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g = guard(1, 1, 1, AUTH_GUARD_TOTAL_CAP, U128_MAX, 0);
	/* 2^127 + 2^127 wraps to 0: it must not look small. */
	struct transfer half[2] = {xfer((u128)1 << 127, 0),
				   xfer((u128)1 << 127, 0)};
	assert_int_equal(auth_guard_check(a, &g, 1, half, 2, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	/* Wraps to a small value after more events. */
	struct transfer wrap[3] = {xfer(U128_MAX, 0), xfer(1, 0), xfer(5, 0)};
	assert_int_equal(auth_guard_check(a, &g, 1, wrap, 3, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	/* The same with a small cap: still refused. */
	struct auth_guard s = guard(2, 1, 2, AUTH_GUARD_TOTAL_CAP, 10, 0);
	assert_int_equal(auth_guard_check(a, &s, 1, wrap, 3, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	u128 spent;
	u64 uses;
	counter(a, &g, &spent, &uses);
	assert_true(spent == 0);
	assert_int_equal(uses, 0);
	auth_free(a);
}

/* A link without a total cap may see a batch whose amounts add up past
 * 2^128: its spent counter must not wrap to a small number. */
static void uncapped_link_spent_does_not_wrap(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g = guard(1, 1, 1, AUTH_GUARD_USES, 0, 100);
	struct transfer half[2] = {xfer((u128)1 << 127, 0),
				   xfer((u128)1 << 127, 0)};
	assert_int_equal(guard_run(a, &g, 1, half, 2), 0);
	u128 spent;
	u64 uses;
	counter(a, &g, &spent, &uses);
	assert_int_equal(uses, 2);
	assert_true(spent == U128_MAX);
	assert_int_equal(guard_run(a, &g, 1, half, 1), 0);
	counter(a, &g, &spent, &uses);
	assert_true(spent == U128_MAX);
	auth_free(a);
}

static void revoked_link_or_issuer_refuses_first(void **state)
{
	(void)state;
	struct auth *a = fresh();
	/* Chain of three links; the batch is also over link 3's cap, but
	 * revocation is reported first. */
	struct auth_guard g[3] = {
		guard(1, 10, 100, 0, 0, 0),
		guard(2, 11, 101, AUTH_GUARD_USES, 0, 5),
		guard(3, 12, 102, AUTH_GUARD_TOTAL_CAP, 5, 0),
	};
	struct transfer t = xfer(6, 0);
	assert_int_equal(auth_guard_check(a, g, 3, &t, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	t.amount = 5;
	assert_int_equal(auth_guard_check(a, g, 3, &t, 1, NULL), 0);

	/* The middle link revoked. */
	struct auth_revoke r = revoke_link(g[1].iss, g[1].jti_hash, "mid");
	assert_int_equal(add_revoke(a, &r, 1), AUTH_OK);
	assert_int_equal(auth_guard_check(a, g, 3, &t, 1, NULL),
			 CREATE_TRANSFER_mandate_revoked);
	t.amount = 6;
	assert_int_equal(auth_guard_check(a, g, 3, &t, 1, NULL),
			 CREATE_TRANSFER_mandate_revoked);
	/* Another link of the same issuer is not revoked. */
	struct auth_guard other = g[1];
	key32(other.jti_hash, 101, 99);
	key32(other.link, 2, 99);
	t.amount = 5;
	assert_int_equal(auth_guard_check(a, &other, 1, &t, 1, NULL), 0);

	/* Every link of the root's issuer revoked: the root (no flags) and
	 * whatever any chain under it does are refused. */
	struct auth *b = fresh();
	struct auth_revoke all = revoke_all(g[0].iss);
	assert_int_equal(add_revoke(b, &all, 1), AUTH_OK);
	assert_int_equal(auth_guard_check(b, g, 3, &t, 1, NULL),
			 CREATE_TRANSFER_mandate_revoked);
	assert_int_equal(auth_guard_check(b, &g[0], 1, &t, 1, NULL),
			 CREATE_TRANSFER_mandate_revoked);
	assert_int_equal(auth_guard_check(b, &g[2], 1, &t, 1, NULL), 0);
	/* Even a batch of only posts and voids. */
	struct transfer pv = xfer(1, TRANSFER_POST_PENDING_TRANSFER);
	assert_int_equal(auth_guard_check(b, g, 3, &pv, 1, NULL),
			 CREATE_TRANSFER_mandate_revoked);
	auth_free(b);
	auth_free(a);
}

static void commit_counts_created_transfers_on_flagged_links(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g[3] = {
		guard(1, 1, 1, 0, 0, 0), /* no cap: no counter */
		guard(2, 1, 2, AUTH_GUARD_TOTAL_CAP, 1000, 0),
		guard(3, 1, 3, AUTH_GUARD_USES, 0, 1000),
	};
	struct transfer t[5] = {xfer(1, 0), xfer(20, 0), xfer(300, 0),
				xfer(4000, TRANSFER_POST_PENDING_TRANSFER),
				xfer(50, TRANSFER_PENDING)};
	u32 results[5] = {CREATE_TRANSFER_ok, CREATE_TRANSFER_exceeds_credits,
			  CREATE_TRANSFER_ok, CREATE_TRANSFER_ok,
			  CREATE_TRANSFER_linked_event_failed};
	assert_int_equal(auth_guard_check(a, g, 3, t, 5, NULL), 0);
	assert_int_equal(auth_guard_commit(a, g, 3, t, results, 5), 0);

	u128 spent;
	u64 uses;
	counter(a, &g[0], &spent, &uses);
	assert_true(spent == 0);
	assert_int_equal(uses, 0);
	for (int k = 1; k < 3; k++) {
		counter(a, &g[k], &spent, &uses);
		assert_true(spent == 301);
		assert_int_equal(uses, 2);
	}
	/* Nothing created: no counter appears, nothing changes. */
	u8 before[32], after[32];
	auth_digest(a, before);
	u32 failed[5];
	for (int i = 0; i < 5; i++)
		failed[i] = CREATE_TRANSFER_exceeds_credits;
	struct auth_guard fresh_link = guard(9, 1, 9, AUTH_GUARD_USES, 0, 9);
	assert_int_equal(auth_guard_commit(a, &fresh_link, 1, t, failed, 5), 0);
	assert_int_equal(auth_guard_commit(a, g, 3, t, failed, 5), 0);
	auth_digest(a, after);
	assert_memory_equal(before, after, 32);
	auth_free(a);
}

static void tighter_of_two_links_wins(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g[2] = {
		guard(1, 1, 1, AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES, 1000, 5),
		guard(2, 2, 2, AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES, 100, 50),
	};
	struct transfer t[3] = {xfer(50, 0), xfer(50, 0), xfer(1, 0)};
	assert_int_equal(auth_guard_check(a, g, 2, t, 3, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	struct auth_guard rev[2] = {g[1], g[0]};
	assert_int_equal(auth_guard_check(a, rev, 2, t, 3, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	assert_int_equal(guard_run(a, g, 2, t, 2), 0);
	/* Link 2 is spent; link 1 alone still has room. */
	assert_int_equal(auth_guard_check(a, g, 2, &t[2], 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	assert_int_equal(auth_guard_check(a, g, 1, &t[2], 1, NULL), 0);

	/* Uses: link 1 allows 5, 2 are used; the wider cap of link 2 does
	 * not help. */
	struct transfer small[4] = {xfer(0, 0), xfer(0, 0), xfer(0, 0),
				    xfer(0, 0)};
	assert_int_equal(auth_guard_check(a, g, 2, small, 4, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	assert_int_equal(guard_run(a, g, 2, small, 3), 0);
	assert_int_equal(auth_guard_check(a, g, 2, small, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	/* Link 2 under a different parent is another counter only if its
	 * hash differs: the same link hash under another chain shares it. */
	struct auth_guard shared = g[1];
	shared.iss[5] ^= 1;
	assert_int_equal(auth_guard_check(a, &shared, 1, &t[2], 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	auth_free(a);
}

/* A link presented with limits below what its counter already holds
 * (inconsistent input: the same hash names the same text): refused, the
 * remaining room is not computed by a subtraction that wraps. */
static void limits_below_the_counter_refuse_without_wrapping(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g =
		guard(1, 1, 1, AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES, 100, 5);
	struct transfer t[2] = {xfer(50, 0), xfer(50, 0)};
	assert_int_equal(guard_run(a, &g, 1, t, 2), 0);
	struct transfer zero = xfer(0, 0);
	struct auth_guard low = g;
	low.total_cap = 99;
	assert_int_equal(auth_guard_check(a, &low, 1, &zero, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_total_cap);
	low = g;
	low.uses_max = 1;
	assert_int_equal(auth_guard_check(a, &low, 1, &zero, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	auth_free(a);
}

/* The same link twice in one guard (a malformed or hostile chain): the
 * check sees the batch once per link, so the commit must count it once,
 * or the counter runs ahead of what was made. */
static void duplicate_link_in_one_guard_counts_once(void **state)
{
	(void)state;
	struct auth *a = fresh();
	struct auth_guard g =
		guard(1, 1, 1, AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES, 100, 4);
	struct auth_guard twice[3] = {g, guard(2, 1, 2, 0, 0, 0), g};
	struct transfer t[2] = {xfer(30, 0), xfer(30, 0)};
	assert_int_equal(guard_run(a, twice, 3, t, 2), 0);
	u128 spent;
	u64 uses;
	counter(a, &g, &spent, &uses);
	assert_true(spent == 60);
	assert_int_equal(uses, 2);
	/* The remaining 40 and 2 uses are still there. */
	struct transfer rest[2] = {xfer(20, 0), xfer(20, 0)};
	assert_int_equal(guard_run(a, &g, 1, rest, 2), 0);
	counter(a, &g, &spent, &uses);
	assert_true(spent == 100);
	assert_int_equal(uses, 4);
	auth_free(a);
}

/* ---- snapshot and digest ---------------------------------------------- */

/* A state with more than 64 elements in every collection (every index
 * grows), colliding keys, and every kind of record. */
static struct auth *populated(void)
{
	struct auth *a = fresh();
	u64 ts = 1;
	for (u32 i = 0; i < 150; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%u", i);
		struct auth_principal p =
			principal(i % 3, i, i % 2 ? name : NULL);
		assert_int_equal(add_principal(a, &p, ts++), AUTH_OK);
	}
	struct account acc[200];
	u32 res[200];
	memset(acc, 0, sizeof(acc));
	for (u32 i = 0; i < 200; i++) {
		acc[i].id = ((u128)(i % 4) << 64) | (i + 1);
		res[i] = CREATE_ACCOUNT_ok;
	}
	struct auth_owner o;
	key32(o.owner, 1, 1);
	auth_set_owners(a, &o, acc, res, 100);
	key32(o.owner, 1, 2);
	auth_set_owners(a, &o, acc + 100, res, 100);
	u8 iss[32], h[32];
	for (u32 i = 0; i < 180; i++) {
		key32(iss, 50 + i % 2, i);
		struct auth_revoke r;
		if (i % 4 == 0) {
			r = revoke_all(iss);
		} else {
			key32(h, 60, i);
			r = revoke_link(iss, h, "jti");
		}
		assert_int_equal(add_revoke(a, &r, ts++), AUTH_OK);
	}
	for (u32 i = 0; i < 130; i++) {
		struct auth_guard g = guard(
			i % 5, 90, i, AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES,
			1000000, 1000);
		key32(g.link, i % 5, i);
		struct transfer t[2] = {xfer(i + 1, 0), xfer(7, 0)};
		assert_int_equal(guard_run(a, &g, 1, t, 1 + i % 2), 0);
	}
	for (u32 i = 0; i < 90; i++) {
		struct auth_key_event k = key_event(
			i, i % 3 ? AUTH_KEY_CREATED : AUTH_KEY_RETIRED);
		assert_int_equal(add_key(a, &k, ts++), AUTH_OK);
	}
	return a;
}

/* Field by field: the struct has padding. */
static void same_principal_info(const struct auth_principal_info *x,
				const struct auth_principal_info *y)
{
	assert_memory_equal(x->id, y->id, 32);
	assert_memory_equal(x->pub, y->pub, 32);
	assert_string_equal(x->name, y->name);
	assert_int_equal(x->timestamp, y->timestamp);
}

static void same_revocation(const struct auth_revocation *x,
			    const struct auth_revocation *y)
{
	assert_memory_equal(x->iss, y->iss, 32);
	assert_memory_equal(x->jti_hash, y->jti_hash, 32);
	assert_string_equal(x->jti, y->jti);
	assert_int_equal(x->all, y->all);
	assert_int_equal(x->timestamp, y->timestamp);
}

/* Every answer of x equals y's, over every element populated() made. */
static void same_answers(const struct auth *x, const struct auth *y)
{
	assert_int_equal(auth_principal_count(x), auth_principal_count(y));
	for (u32 i = 0; i < auth_principal_count(x); i++) {
		struct auth_principal_info px, py, pg;
		auth_principal_at(x, i, &px);
		auth_principal_at(y, i, &py);
		same_principal_info(&px, &py);
		assert_true(auth_principal_get(y, px.id, &pg));
		same_principal_info(&pg, &px);
	}
	for (u32 i = 0; i < 200; i++) {
		u128 id = ((u128)(i % 4) << 64) | (i + 1);
		u8 ox[32], oy[32];
		bool hx = auth_owner_get(x, id, ox),
		     hy = auth_owner_get(y, id, oy);
		assert_true(hx);
		assert_int_equal(hx, hy);
		assert_memory_equal(ox, oy, 32);
		assert_false(auth_owner_get(y, id + 1000, oy));
	}
	assert_int_equal(auth_revocation_count(x), auth_revocation_count(y));
	for (u32 i = 0; i < auth_revocation_count(x); i++) {
		struct auth_revocation rx, ry;
		auth_revocation_at(x, i, &rx);
		auth_revocation_at(y, i, &ry);
		same_revocation(&rx, &ry);
		u8 h[32];
		key32(h, 60, i);
		assert_true(auth_revoked(y, ry.iss, rx.all ? h : rx.jti_hash));
		h[20] ^= 1;
		assert_int_equal(auth_revoked(x, rx.iss, h),
				 auth_revoked(y, ry.iss, h));
		assert_int_equal(auth_revoked(y, ry.iss, h), rx.all);
	}
	for (u32 i = 0; i < 140; i++) {
		u8 link[32];
		key32(link, i % 5, i);
		u128 sx, sy;
		u64 ux, uy;
		auth_counter_get(x, link, &sx, &ux);
		auth_counter_get(y, link, &sy, &uy);
		assert_true(sx == sy);
		assert_int_equal(ux, uy);
		assert_int_equal(ux, i < 130 ? 1 + i % 2 : 0);
	}
	assert_int_equal(auth_key_event_count(x), auth_key_event_count(y));
	for (u32 i = 0; i < auth_key_event_count(x); i++) {
		struct auth_key_event kx, ky;
		u64 tx, ty;
		auth_key_event_at(x, i, &kx, &tx);
		auth_key_event_at(y, i, &ky, &ty);
		assert_memory_equal(&kx, &ky, sizeof(kx));
		assert_int_equal(tx, ty);
	}
}

static void snapshot_round_trip_same_digest_and_answers(void **state)
{
	(void)state;
	struct auth *a = populated();
	struct buf b = snap(a);
	struct auth *r = auth_snapshot_read(b.p, b.n);
	assert_non_null(r);
	same_digest(a, r);
	same_answers(a, r);
	struct buf b2 = snap(r);
	assert_int_equal(b.n, b2.n);
	assert_memory_equal(b.p, b2.p, b.n);

	/* The rebuilt indexes go on like the originals: duplicates found,
	 * new elements added, caps still enforced. */
	struct auth_principal p = principal(1, 1, NULL);
	assert_int_equal(add_principal(r, &p, 9), AUTH_EXISTS);
	p = principal(1, 3, "p3"); /* a new id, a taken name */
	assert_int_equal(add_principal(r, &p, 9), AUTH_NAME_TAKEN);
	p = principal(2, 100000, "new");
	assert_int_equal(add_principal(r, &p, 9), AUTH_OK);
	assert_int_equal(add_principal(a, &p, 9), AUTH_OK);
	u8 iss[32];
	key32(iss, 50, 0);
	struct auth_revoke rv = revoke_all(iss);
	assert_int_equal(add_revoke(r, &rv, 9), AUTH_ALREADY_REVOKED);
	u8 h[32];
	key32(iss, 51, 1);
	key32(h, 60, 1);
	rv = revoke_link(iss, h, "jti");
	assert_int_equal(add_revoke(r, &rv, 9), AUTH_ALREADY_REVOKED);
	struct auth_guard g = guard(0, 90, 0, AUTH_GUARD_USES, 0, 1);
	key32(g.link, 0, 0); /* used once in populated() */
	struct transfer t = xfer(1, 0);
	assert_int_equal(auth_guard_check(r, &g, 1, &t, 1, NULL),
			 CREATE_TRANSFER_exceeds_mandate_uses);
	g.uses_max = 2;
	assert_int_equal(guard_run(r, &g, 1, &t, 1), 0);
	assert_int_equal(guard_run(a, &g, 1, &t, 1), 0);
	same_digest(a, r);

	/* The empty state round-trips too. */
	struct auth *e = fresh();
	struct buf be = snap(e);
	assert_int_equal(be.n, 8 + 5 * 8);
	struct auth *er = auth_snapshot_read(be.p, be.n);
	assert_non_null(er);
	same_digest(e, er);
	assert_false(auth_principal_get(er, p.id, NULL));
	auth_free(er);
	auth_free(e);
	free(be.p);

	free(b.p);
	free(b2.p);
	auth_free(r);
	auth_free(a);
}

static void snapshot_truncated_or_garbled_is_null(void **state)
{
	(void)state;
	struct auth *a = fresh();
	/* Small but with every collection present. */
	struct auth_principal p = principal(1, 1, "n");
	add_principal(a, &p, 1);
	u8 iss[32];
	key32(iss, 2, 2);
	struct auth_revoke r = revoke_all(iss);
	add_revoke(a, &r, 2);
	struct auth_key_event k = key_event(1, AUTH_KEY_CREATED);
	add_key(a, &k, 3);
	struct account acc;
	memset(&acc, 0, sizeof(acc));
	acc.id = 5;
	u32 ok = 0;
	struct auth_owner o;
	key32(o.owner, 3, 3);
	auth_set_owners(a, &o, &acc, &ok, 1);
	struct auth_guard g = guard(1, 1, 1, AUTH_GUARD_USES, 0, 9);
	struct transfer t = xfer(1, 0);
	guard_run(a, &g, 1, &t, 1);

	struct buf b = snap(a);
	/* Every proper prefix. */
	for (size_t n = 0; n < b.n; n++) {
		u8 *copy = malloc(n ? n : 1); /* exact size for ASan */
		memcpy(copy, b.p, n);
		assert_null(auth_snapshot_read(copy, n));
		free(copy);
	}
	/* One byte too many. */
	u8 *longer = malloc(b.n + 1);
	memcpy(longer, b.p, b.n);
	longer[b.n] = 0;
	assert_null(auth_snapshot_read(longer, b.n + 1));
	free(longer);

	/* Each header word (magic, counts, element sizes) changed. */
	u8 *bad = malloc(b.n);
	size_t off = 0;
	memcpy(bad, b.p, b.n);
	bad[7] = '2';
	assert_null(auth_snapshot_read(bad, b.n));
	off = 8;
	for (int c = 0; c < 5; c++) {
		u32 head[2];
		memcpy(head, b.p + off, 8);
		const u32 counts[] = {head[0] + 1, head[0] ? head[0] - 1 : 2,
				      0xffffffffu, 0x80000000u};
		for (int i = 0; i < 4; i++) {
			memcpy(bad, b.p, b.n);
			memcpy(bad + off, &counts[i], 4);
			assert_null(auth_snapshot_read(bad, b.n));
		}
		const u32 sizes[] = {head[1] + 1, head[1] - 1, 0, 0xffffffffu};
		for (int i = 0; i < 4; i++) {
			memcpy(bad, b.p, b.n);
			memcpy(bad + off + 4, &sizes[i], 4);
			assert_null(auth_snapshot_read(bad, b.n));
		}
		off += 8 + (size_t)head[0] * head[1];
	}
	assert_int_equal(off, b.n);
	free(bad);
	free(b.p);
	auth_free(a);
}

/* Same contents, one element different (or the order of two): the digest
 * tells them apart. */
static void digest_sees_every_element(void **state)
{
	(void)state;
	struct auth *base = populated();
	struct auth *same = populated();
	same_digest(base, same);
	auth_free(same);

	for (int variant = 0; variant < 9; variant++) {
		struct auth *x = populated();
		struct auth *y = populated();
		switch (variant) {
		case 0: { /* a principal's key differs */
			struct auth_principal p = principal(7, 1, NULL);
			add_principal(x, &p, 1);
			p.pub[31] ^= 1;
			add_principal(y, &p, 1);
			break;
		}
		case 1: { /* only the timestamp differs */
			struct auth_principal p = principal(7, 1, NULL);
			add_principal(x, &p, 1);
			add_principal(y, &p, 2);
			break;
		}
		case 2: { /* an owner differs */
			struct account acc;
			memset(&acc, 0, sizeof(acc));
			acc.id = 777777;
			u32 ok = 0;
			struct auth_owner o;
			key32(o.owner, 4, 4);
			auth_set_owners(x, &o, &acc, &ok, 1);
			o.owner[30] ^= 1;
			auth_set_owners(y, &o, &acc, &ok, 1);
			break;
		}
		case 3: { /* a revocation's jti text differs */
			u8 iss[32], h[32];
			key32(iss, 8, 8);
			key32(h, 8, 9);
			struct auth_revoke r = revoke_link(iss, h, "a");
			add_revoke(x, &r, 1);
			r = revoke_link(iss, h, "b");
			add_revoke(y, &r, 1);
			break;
		}
		case 4: { /* a counter's spent differs by one */
			struct auth_guard g =
				guard(3, 3, 3, AUTH_GUARD_USES, 0, 9);
			struct transfer t = xfer(5, 0);
			guard_run(x, &g, 1, &t, 1);
			t.amount = 6;
			guard_run(y, &g, 1, &t, 1);
			break;
		}
		case 5: { /* a key event's not_after differs */
			struct auth_key_event k =
				key_event(500, AUTH_KEY_RETIRED);
			add_key(x, &k, 1);
			k.not_after++;
			add_key(y, &k, 1);
			break;
		}
		case 6: { /* the same two principals, in another order */
			struct auth_principal p = principal(7, 1, NULL);
			struct auth_principal q = principal(7, 2, NULL);
			add_principal(x, &p, 1);
			add_principal(x, &q, 1);
			add_principal(y, &q, 1);
			add_principal(y, &p, 1);
			break;
		}
		case 7: { /* one more uses, same spent */
			struct auth_guard g =
				guard(3, 3, 3, AUTH_GUARD_USES, 0, 9);
			struct transfer t[2] = {xfer(5, 0), xfer(0, 0)};
			guard_run(x, &g, 1, t, 1);
			guard_run(y, &g, 1, t, 2);
			break;
		}
		default: { /* one element more */
			struct auth_key_event k =
				key_event(501, AUTH_KEY_CREATED);
			add_key(y, &k, 1);
			break;
		}
		}
		different_digest(x, y);
		different_digest(base, y);
		auth_free(x);
		auth_free(y);
	}
	auth_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(principal_register_exists_name_taken),
		cmocka_unit_test(
			organisation_principal_is_kind_24_with_its_dates),
		cmocka_unit_test(
			principal_lookup_through_collisions_and_growth),
		cmocka_unit_test(key_events_stop_at_their_limit_with_full),
		cmocka_unit_test(principals_stop_at_their_limit_with_full),
		cmocka_unit_test(
			malformed_commands_are_ebadmsg_and_change_nothing),
		cmocka_unit_test(revoke_link_only_that_link),
		cmocka_unit_test(
			revocation_quota_is_decided_by_the_state_machine),
		cmocka_unit_test(revocations_of_the_first_format_replay),
		cmocka_unit_test(
			key_created_once_and_revocations_counted_by_issuer),
		cmocka_unit_test(revoke_all_covers_every_jti_of_the_issuer),
		cmocka_unit_test(
			revocations_of_both_kinds_interleaved_through_growth),
		cmocka_unit_test(
			owners_only_for_created_accounts_zero_is_admin),
		cmocka_unit_test(total_cap_exact_boundary),
		cmocka_unit_test(uses_exact_boundary),
		cmocka_unit_test(post_and_void_do_not_count),
		cmocka_unit_test(sum_overflow_is_refused),
		cmocka_unit_test(uncapped_link_spent_does_not_wrap),
		cmocka_unit_test(revoked_link_or_issuer_refuses_first),
		cmocka_unit_test(
			commit_counts_created_transfers_on_flagged_links),
		cmocka_unit_test(tighter_of_two_links_wins),
		cmocka_unit_test(
			limits_below_the_counter_refuse_without_wrapping),
		cmocka_unit_test(duplicate_link_in_one_guard_counts_once),
		cmocka_unit_test(snapshot_round_trip_same_digest_and_answers),
		cmocka_unit_test(snapshot_truncated_or_garbled_is_null),
		cmocka_unit_test(digest_sees_every_element),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
