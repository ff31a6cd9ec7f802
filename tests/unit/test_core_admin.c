/*
 * test_core_admin.c - named administrators and dual control as state of
 * the journal (core/admin.h), through command_apply as the engine applies
 * them: roles given and taken, the bootstrap's retirement refused without
 * a security officer, and every decision on a request at the record's
 * time (approval by another administrator applies the policy; self-
 * approval, a passed window, a changed target, a revoked or role-less
 * administrator, break-glass by another refused), the same again on a
 * replay; the validator's refusals; the snapshot round trip and the
 * digest of a state without administrators unchanged by the new part.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/admin.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/pstate.h"
#include "core/result.h"

#include "banned.h"

#define T0    1799971200u /* 2027-01-15T00:00:00Z */
#define NS(s) ((u64)(s)*1000000000u)

static const char doc_a[] =
	"{\"platforms\":{\"android\":{\"min_supported\":\"4.0.0\"}}}";
static const char doc_b[] =
	"{\"platforms\":{\"android\":{\"min_supported\":\"4.1.0\"}}}";

struct world {
	struct auth *a;
	struct pstate *ps;
};

static u8 key(u8 n)
{
	return n;
}

static void id_of(u8 n, u8 out[32])
{
	memset(out, key(n), 32);
}

/* Apply one command of kind with ext; its outcome. */
static u32 apply(struct world *w, u16 kind, const void *ext, u32 len, u64 ts_s)
{
	u8 buf[16 + 2048];
	struct command_header h = {.kind = kind, .ext_bytes = len};
	struct command_view c;
	u32 outcome = 99;

	assert_true(len <= sizeof(buf) - 16);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 16, ext, len);
	assert_int_equal(command_decode(buf, 16 + len, &c), 0);
	const struct command_target t = {.auth = w->a, .pstate = w->ps};
	assert_int_equal(command_apply(&t, &c, NS(ts_s), &outcome), 0);
	return outcome;
}

static void principal(struct world *w, u8 n, u64 ts_s)
{
	struct auth_principal p = {0};
	id_of(n, p.id);
	memset(p.pub, n, 32);
	assert_int_equal(apply(w, AUTH_CMD_PRINCIPAL, &p, sizeof(p), ts_s),
			 AUTH_OK);
}

/* Every link n signs revoked. */
static void revoke_all(struct world *w, u8 n, u64 ts_s)
{
	struct auth_revoke rv = {.flags = AUTH_REVOKE_ALL};
	id_of(n, rv.iss);
	assert_int_equal(apply(w, AUTH_CMD_REVOKE, &rv, sizeof(rv), ts_s),
			 AUTH_OK);
}

/* Principal `by` (0: the bootstrap credential) gives n role r. */
static u32 role_by(struct world *w, u8 by, u8 n, u32 r, u64 ts_s)
{
	struct admin_role_cmd c = {.role = r};
	id_of(n, c.id);
	if (by)
		id_of(by, c.author);
	return apply(w, ADMIN_CMD_ROLE, &c, sizeof(c), ts_s);
}

static u32 role(struct world *w, u8 n, u32 r, u64 ts_s)
{
	return role_by(w, 0, n, r, ts_s);
}

/* A request by n for doc (a PSTATE_CMD_SET ext after the header). */
static u32 request(struct world *w, u8 n, const char *doc, u64 target,
		   u32 window_s, u64 ts_s)
{
	u8 ext[1024] = {0};
	struct admin_request_cmd c = {.target = target,
				      .op = ADMIN_OP_POLICY_SET,
				      .window_s = window_s};
	struct pstate_set s = {0};
	size_t len = strlen(doc);
	u32 padded = (u32)((len + 15) / 16 * 16);

	id_of(n, c.author);
	id_of(n, s.author);
	s.text_bytes = (u32)len;
	c.payload_bytes = (u32)sizeof(s) + padded;
	memcpy(ext, &c, sizeof(c));
	memcpy(ext + sizeof(c), &s, sizeof(s));
	memcpy(ext + sizeof(c) + sizeof(s), doc, len);
	return apply(w, ADMIN_CMD_REQUEST, ext,
		     (u32)sizeof(c) + c.payload_bytes, ts_s);
}

static u32 decide(struct world *w, u8 by, u8 requester, u64 id, u32 decision,
		  const char *reason, u64 ts_s)
{
	struct admin_decide_cmd c = {.request = id, .decision = decision};
	id_of(by, c.author);
	id_of(requester, c.requester);
	if (reason)
		memcpy(c.reason, reason, strlen(reason));
	return apply(w, ADMIN_CMD_DECIDE, &c, sizeof(c), ts_s);
}

static u32 status_of(struct world *w, u64 id)
{
	struct admin_request_info r;
	assert_true(admin_request_get(auth_admin(w->a), id, &r));
	return r.status;
}

static u64 version(struct world *w)
{
	return pstate_version_count(w->ps);
}

static void world_new(struct world *w)
{
	w->a = auth_new();
	w->ps = pstate_new();
	assert_non_null(w->a);
	assert_non_null(w->ps);
}

static void world_free(struct world *w)
{
	auth_free(w->a);
	pstate_free(w->ps);
}

/* Alice (1) and Bob (2) operators, Carol (3) security officer, Dave (4)
 * registered without a role. */
static void staff(struct world *w)
{
	for (u8 n = 1; n <= 4; n++)
		principal(w, n, T0 + n);
	assert_int_equal(role(w, 1, ADMIN_ROLE_OPERATOR, T0 + 10), ADMIN_OK);
	assert_int_equal(role(w, 2, ADMIN_ROLE_OPERATOR, T0 + 11), ADMIN_OK);
	assert_int_equal(role(w, 3, ADMIN_ROLE_SECURITY_OFFICER, T0 + 12),
			 ADMIN_OK);
}

/* staff, then the bootstrap credential retired at T0 + 20. */
static void staff_retired(struct world *w)
{
	struct admin_retire_cmd rc = {0};
	staff(w);
	assert_int_equal(apply(w, ADMIN_CMD_RETIRE, &rc, sizeof(rc), T0 + 20),
			 ADMIN_OK);
}

static void roles_and_retirement(void **state)
{
	struct world w;
	u8 id[32];
	(void)state;
	world_new(&w);
	/* An unknown principal gets no role. */
	assert_int_equal(role(&w, 9, ADMIN_ROLE_OPERATOR, T0), ADMIN_UNKNOWN);
	for (u8 n = 1; n <= 4; n++)
		principal(&w, n, T0 + n);
	assert_int_equal(role(&w, 1, ADMIN_ROLE_OPERATOR, T0 + 10), ADMIN_OK);
	assert_int_equal(role(&w, 1, ADMIN_ROLE_OPERATOR, T0 + 11),
			 ADMIN_EXISTS);
	/* Retirement without a security officer: refused. */
	struct admin_retire_cmd rc = {0};
	assert_int_equal(apply(&w, ADMIN_CMD_RETIRE, &rc, sizeof(rc), T0 + 12),
			 ADMIN_NO_OFFICER);
	assert_int_equal(admin_retired_at(auth_admin(w.a)), 0);
	/* A security officer whose key is revoked does not count. */
	assert_int_equal(role(&w, 3, ADMIN_ROLE_SECURITY_OFFICER, T0 + 13),
			 ADMIN_OK);
	revoke_all(&w, 3, T0 + 14);
	id_of(3, id);
	assert_false(admin_is_active(auth_admin(w.a), w.a, id));
	assert_int_equal(apply(&w, ADMIN_CMD_RETIRE, &rc, sizeof(rc), T0 + 15),
			 ADMIN_NO_OFFICER);
	assert_int_equal(role(&w, 4, ADMIN_ROLE_SECURITY_OFFICER, T0 + 16),
			 ADMIN_OK);
	assert_int_equal(apply(&w, ADMIN_CMD_RETIRE, &rc, sizeof(rc), T0 + 17),
			 ADMIN_OK);
	assert_int_equal(admin_retired_at(auth_admin(w.a)), NS(T0 + 17));
	assert_int_equal(apply(&w, ADMIN_CMD_RETIRE, &rc, sizeof(rc), T0 + 18),
			 ADMIN_EXISTS);
	/* Taking a role away (the officer, after the retirement). */
	assert_int_equal(role_by(&w, 4, 1, ADMIN_ROLE_NONE, T0 + 19), ADMIN_OK);
	id_of(1, id);
	assert_int_equal(admin_role_of(auth_admin(w.a), id), ADMIN_ROLE_NONE);
	world_free(&w);
}

/* F11: once retired, the last active security officer keeps its role:
 * otherwise nobody could ever give a role again. */
static void last_officer_keeps_its_role(void **state)
{
	struct world w;
	u8 id[32];
	(void)state;
	world_new(&w);
	staff_retired(&w);
	assert_int_equal(role_by(&w, 3, 3, ADMIN_ROLE_NONE, T0 + 21),
			 ADMIN_NO_OFFICER);
	assert_int_equal(role_by(&w, 3, 3, ADMIN_ROLE_OPERATOR, T0 + 22),
			 ADMIN_NO_OFFICER);
	id_of(3, id);
	assert_int_equal(admin_role_of(auth_admin(w.a), id),
			 ADMIN_ROLE_SECURITY_OFFICER);
	/* A second officer, but with its key revoked, does not count. */
	assert_int_equal(
		role_by(&w, 3, 4, ADMIN_ROLE_SECURITY_OFFICER, T0 + 23),
		ADMIN_OK);
	revoke_all(&w, 4, T0 + 24);
	assert_int_equal(role_by(&w, 3, 3, ADMIN_ROLE_NONE, T0 + 25),
			 ADMIN_NO_OFFICER);
	/* The revoked one's role may go; with an active second officer the
	 * first may step down. */
	assert_int_equal(role_by(&w, 3, 4, ADMIN_ROLE_NONE, T0 + 26), ADMIN_OK);
	assert_int_equal(
		role_by(&w, 3, 2, ADMIN_ROLE_SECURITY_OFFICER, T0 + 27),
		ADMIN_OK);
	assert_int_equal(role_by(&w, 3, 3, ADMIN_ROLE_NONE, T0 + 28), ADMIN_OK);
	assert_int_equal(role_by(&w, 2, 2, ADMIN_ROLE_OPERATOR, T0 + 29),
			 ADMIN_NO_OFFICER);
	world_free(&w);
}

static void approval_by_another_applies_the_policy(void **state)
{
	struct world w;
	(void)state;
	world_new(&w);
	staff(&w);
	/* Dave holds no role: his request is refused. */
	assert_int_equal(request(&w, 4, doc_a, 0, 900, T0 + 20),
			 ADMIN_NOT_ADMIN);
	assert_int_equal(request(&w, 1, doc_a, 0, 900, T0 + 21), ADMIN_OK);
	assert_int_equal(version(&w), 0);
	/* Self-approval: refused, the request stays pending. */
	assert_int_equal(decide(&w, 1, 1, 1, ADMIN_APPROVE, NULL, T0 + 22),
			 ADMIN_SELF);
	assert_int_equal(status_of(&w, 1), ADMIN_PENDING);
	/* Dave (no role) cannot approve; a wrong requester is no request;
	 * Bob cannot break the glass on Alice's request. */
	assert_int_equal(decide(&w, 4, 1, 1, ADMIN_APPROVE, NULL, T0 + 23),
			 ADMIN_NOT_ADMIN);
	assert_int_equal(decide(&w, 2, 3, 1, ADMIN_APPROVE, NULL, T0 + 23),
			 ADMIN_UNKNOWN);
	assert_int_equal(decide(&w, 2, 1, 1, ADMIN_BREAK_GLASS, "x", T0 + 23),
			 ADMIN_NOT_REQUESTER);
	assert_int_equal(decide(&w, 2, 1, 7, ADMIN_APPROVE, NULL, T0 + 23),
			 ADMIN_UNKNOWN);
	assert_int_equal(version(&w), 0);
	/* Bob approves: the policy is version 1, by the same entry. */
	assert_int_equal(decide(&w, 2, 1, 1, ADMIN_APPROVE, NULL, T0 + 24),
			 ADMIN_OK);
	assert_int_equal(version(&w), 1);
	assert_int_equal(status_of(&w, 1), ADMIN_APPROVED);
	struct admin_request_info r;
	assert_true(admin_request_get(auth_admin(w.a), 1, &r));
	assert_null(r.payload);
	assert_int_equal(r.decided_at, NS(T0 + 24));
	assert_int_equal(r.decider[0], 2);
	/* Decided once. */
	assert_int_equal(decide(&w, 3, 1, 1, ADMIN_APPROVE, NULL, T0 + 25),
			 ADMIN_NOT_PENDING);
	world_free(&w);
}

static void window_and_target_are_decided_at_log_time(void **state)
{
	struct world w;
	(void)state;
	world_new(&w);
	staff(&w);
	/* Request 1: approved one second after its 60 s window. */
	assert_int_equal(request(&w, 1, doc_a, 0, 60, T0 + 100), ADMIN_OK);
	assert_int_equal(decide(&w, 2, 1, 1, ADMIN_APPROVE, NULL, T0 + 161),
			 ADMIN_WINDOW_PASSED);
	assert_int_equal(status_of(&w, 1), ADMIN_EXPIRED);
	assert_int_equal(version(&w), 0);
	/* Exactly at the window's end it is still taken. */
	assert_int_equal(request(&w, 1, doc_a, 0, 60, T0 + 200), ADMIN_OK);
	assert_int_equal(decide(&w, 2, 1, 2, ADMIN_APPROVE, NULL, T0 + 260),
			 ADMIN_OK);
	assert_int_equal(version(&w), 1);
	/* Request 3 expects version 1; request 4 moves the policy first. */
	assert_int_equal(request(&w, 1, doc_b, 1, 900, T0 + 300), ADMIN_OK);
	assert_int_equal(request(&w, 2, doc_a, 1, 900, T0 + 301), ADMIN_OK);
	assert_int_equal(request(&w, 2, doc_b, 1, 900, T0 + 302), ADMIN_OK);
	assert_int_equal(decide(&w, 1, 2, 5, ADMIN_APPROVE, NULL, T0 + 303),
			 ADMIN_OK);
	assert_int_equal(version(&w), 2);
	assert_int_equal(decide(&w, 2, 1, 3, ADMIN_APPROVE, NULL, T0 + 304),
			 ADMIN_TARGET_CHANGED);
	assert_int_equal(status_of(&w, 3), ADMIN_STALE);
	/* Reject by the requester itself (withdrawn). */
	assert_int_equal(decide(&w, 2, 2, 4, ADMIN_REJECT, NULL, T0 + 305),
			 ADMIN_OK);
	assert_int_equal(status_of(&w, 4), ADMIN_REJECTED);
	assert_int_equal(version(&w), 2);
	world_free(&w);
}

static void revoked_requester_and_break_glass(void **state)
{
	struct world w;
	(void)state;
	world_new(&w);
	staff(&w);
	assert_int_equal(request(&w, 1, doc_a, 0, 900, T0 + 20), ADMIN_OK);
	/* Alice's role is taken away: Bob's approval is refused. */
	assert_int_equal(role(&w, 1, ADMIN_ROLE_NONE, T0 + 21), ADMIN_OK);
	assert_int_equal(decide(&w, 2, 1, 1, ADMIN_APPROVE, NULL, T0 + 22),
			 ADMIN_NOT_ADMIN);
	assert_int_equal(status_of(&w, 1), ADMIN_PENDING);
	assert_int_equal(version(&w), 0);
	/* Bob's own request, broken by Bob with a reason. */
	assert_int_equal(request(&w, 2, doc_a, 0, 900, T0 + 23), ADMIN_OK);
	assert_int_equal(
		decide(&w, 2, 2, 2, ADMIN_BREAK_GLASS, "outage", T0 + 24),
		ADMIN_OK);
	assert_int_equal(status_of(&w, 2), ADMIN_BROKEN_GLASS);
	assert_int_equal(version(&w), 1);
	assert_int_equal(admin_break_glass_count(auth_admin(w.a)), 1);
	/* Bob's key revoked (every link he signs): he decides nothing
	 * more, though he keeps his role. */
	revoke_all(&w, 2, T0 + 25);
	assert_int_equal(request(&w, 3, doc_b, 1, 900, T0 + 26), ADMIN_OK);
	assert_int_equal(decide(&w, 2, 3, 3, ADMIN_APPROVE, NULL, T0 + 27),
			 ADMIN_NOT_ADMIN);
	assert_int_equal(request(&w, 2, doc_b, 1, 900, T0 + 28),
			 ADMIN_NOT_ADMIN);
	assert_int_equal(version(&w), 1);
	world_free(&w);
}

/* F6: one administrator holds at most 4 pending requests; a request
 * whose window passed is expired by the next request, its slot free. */
static void pending_slots_per_requester_and_expiry(void **state)
{
	struct world w;
	struct admin_request_info r;
	(void)state;
	world_new(&w);
	staff(&w);
	for (u32 k = 0; k < ADMIN_PENDING_PER_REQUESTER_MAX; k++)
		assert_int_equal(request(&w, 1, doc_a, 0, 60, T0 + 20 + k),
				 ADMIN_OK);
	assert_int_equal(request(&w, 1, doc_a, 0, 900, T0 + 30), ADMIN_FULL);
	/* Bob's own slots are his. */
	assert_int_equal(request(&w, 2, doc_a, 0, 900, T0 + 31), ADMIN_OK);
	assert_int_equal(status_of(&w, 1), ADMIN_PENDING);
	/* Past the first one's window (T0 + 80): the next request expires
	 * it, and alice has a slot again. */
	assert_int_equal(request(&w, 1, doc_a, 0, 900, T0 + 81), ADMIN_OK);
	assert_int_equal(status_of(&w, 1), ADMIN_EXPIRED);
	assert_true(admin_request_get(auth_admin(w.a), 1, &r));
	assert_null(r.payload);
	assert_int_equal(r.decided_at, NS(T0 + 80));
	assert_int_equal(status_of(&w, 2), ADMIN_PENDING);
	assert_int_equal(request(&w, 1, doc_a, 0, 900, T0 + 81), ADMIN_FULL);
	world_free(&w);
}

/* F10: a principal that owns accounts is given no role (its own links
 * would move money beside the role); taking a role stays possible. */
static void account_owner_gets_no_role(void **state)
{
	struct world w;
	struct auth_owner o;
	struct account acct = {.id = 77};
	u32 ok = CREATE_ACCOUNT_ok;
	u8 id[32];
	(void)state;
	world_new(&w);
	staff(&w);
	id_of(4, o.owner);
	auth_set_owners(w.a, &o, &acct, &ok, 1);
	for (u32 r = ADMIN_ROLE_OPERATOR; r <= ADMIN_ROLE_MAX; r++)
		assert_int_equal(role(&w, 4, r, T0 + 20), ADMIN_OWNS_ACCOUNTS);
	id_of(4, id);
	assert_int_equal(admin_role_of(auth_admin(w.a), id), ADMIN_ROLE_NONE);
	/* Alice is given accounts after her role: she may lose it, and
	 * gets none back. */
	id_of(1, o.owner);
	acct.id = 78;
	auth_set_owners(w.a, &o, &acct, &ok, 1);
	assert_int_equal(role(&w, 1, ADMIN_ROLE_NONE, T0 + 21), ADMIN_OK);
	assert_int_equal(role(&w, 1, ADMIN_ROLE_OPERATOR, T0 + 22),
			 ADMIN_OWNS_ACCOUNTS);
	world_free(&w);
}

/* A PSTATE_CMD_SET of doc_a by `by` (0: the bootstrap credential). */
static u32 set_by(struct world *w, u8 by, u64 ts_s)
{
	struct pstate_set set = {0};
	u8 buf[sizeof(set) + 64] = {0};
	size_t len = strlen(doc_a);
	set.text_bytes = (u32)len;
	if (by)
		id_of(by, set.author);
	memcpy(buf, &set, sizeof(set));
	memcpy(buf + sizeof(set), doc_a, len);
	return apply(w, PSTATE_CMD_SET, buf,
		     (u32)(sizeof(set) + (len + 15) / 16 * 16), ts_s);
}

/* F4, F5: a change checked when its headers came and journaled after
 * the bootstrap's retirement, its author's role taken away or its key
 * revoked is refused at the entry's time, and changes nothing. */
static void changes_by_an_ended_authority_are_refused(void **state)
{
	struct world w;
	u8 id[32];
	(void)state;
	world_new(&w);
	staff_retired(&w);
	/* The bootstrap credential, and a bootstrap chain's delegate (4,
	 * no role), after the retirement. */
	assert_int_equal(role(&w, 4, ADMIN_ROLE_OPERATOR, T0 + 21),
			 ADMIN_AUTHOR_ENDED);
	assert_int_equal(role_by(&w, 4, 4, ADMIN_ROLE_OPERATOR, T0 + 21),
			 ADMIN_AUTHOR_ENDED);
	assert_int_equal(set_by(&w, 0, T0 + 22), PSTATE_AUTHOR_ENDED);
	assert_int_equal(set_by(&w, 4, T0 + 22), PSTATE_AUTHOR_ENDED);
	assert_int_equal(version(&w), 0);
	/* An operator gives no role (its role is not the officer's). */
	assert_int_equal(role_by(&w, 1, 4, ADMIN_ROLE_OPERATOR, T0 + 23),
			 ADMIN_AUTHOR_ENDED);
	/* Alice activates while an operator; not once her role is gone,
	 * nor Bob once his key is revoked. */
	assert_int_equal(set_by(&w, 1, T0 + 24), PSTATE_OK);
	assert_int_equal(version(&w), 1);
	assert_int_equal(role_by(&w, 3, 1, ADMIN_ROLE_NONE, T0 + 25), ADMIN_OK);
	assert_int_equal(set_by(&w, 1, T0 + 26), PSTATE_AUTHOR_ENDED);
	revoke_all(&w, 2, T0 + 27);
	assert_int_equal(set_by(&w, 2, T0 + 28), PSTATE_AUTHOR_ENDED);
	assert_int_equal(version(&w), 1);
	/* Carol's officer key revoked: her role change is refused too. */
	assert_int_equal(role_by(&w, 3, 4, ADMIN_ROLE_SUPPORT, T0 + 29),
			 ADMIN_OK);
	revoke_all(&w, 3, T0 + 30);
	assert_int_equal(role_by(&w, 3, 4, ADMIN_ROLE_NONE, T0 + 31),
			 ADMIN_AUTHOR_ENDED);
	id_of(4, id);
	assert_int_equal(admin_role_of(auth_admin(w.a), id),
			 ADMIN_ROLE_SUPPORT);
	world_free(&w);
}

/* F7: a full table drops its oldest decided request to make room; ids
 * never repeat, the break-glass count keeps the dropped ones, a pending
 * request is never dropped, and the snapshot keeps the ids. */
/* A role grant under dual control (op 2): carol (3) asks dave (4) to be
 * an operator; neither she nor dave approves; a role change meanwhile
 * makes it stale; alice's approval gives it as carol would. */
static u32 role_request(struct world *w, u8 by, u8 n, u32 role, u64 target,
			u64 ts_s)
{
	u8 ext[sizeof(struct admin_request_cmd) +
	       sizeof(struct admin_role_cmd)] = {0};
	struct admin_request_cmd c = {.target = target,
				      .op = ADMIN_OP_ROLE,
				      .window_s = ADMIN_WINDOW_MIN_S,
				      .payload_bytes =
					      sizeof(struct admin_role_cmd)};
	struct admin_role_cmd g = {.role = role};
	id_of(by, c.author);
	id_of(by, g.author);
	id_of(n, g.id);
	memcpy(ext, &c, sizeof(c));
	memcpy(ext + sizeof(c), &g, sizeof(g));
	return apply(w, ADMIN_CMD_REQUEST, ext, sizeof(ext), ts_s);
}

static void role_grants_wait_for_a_second_administrator(void **state)
{
	struct world w;
	u8 id4[32];
	(void)state;
	world_new(&w);
	staff_retired(&w);
	id_of(4, id4);
	assert_int_equal(role_request(&w, 3, 4, ADMIN_ROLE_OPERATOR,
				      ADMIN_ROLE_NONE, T0 + 30),
			 ADMIN_OK);
	u64 id = admin_request_last_id(auth_admin(w.a));
	assert_int_equal(admin_role_of(auth_admin(w.a), id4), ADMIN_ROLE_NONE);
	assert_int_equal(decide(&w, 3, 3, id, ADMIN_APPROVE, "", T0 + 31),
			 ADMIN_SELF);
	/* dave holds no role: not an administrator. */
	assert_int_equal(decide(&w, 4, 3, id, ADMIN_APPROVE, "", T0 + 32),
			 ADMIN_NOT_ADMIN);
	assert_int_equal(decide(&w, 1, 3, id, ADMIN_APPROVE, "", T0 + 33),
			 ADMIN_OK);
	assert_int_equal(status_of(&w, id), ADMIN_APPROVED);
	assert_int_equal(admin_role_of(auth_admin(w.a), id4),
			 ADMIN_ROLE_OPERATOR);
	/* The grantee, an administrator now, may not approve its own
	 * promotion; a change meanwhile makes the request stale. */
	assert_int_equal(role_request(&w, 3, 4, ADMIN_ROLE_SUPPORT,
				      ADMIN_ROLE_OPERATOR, T0 + 40),
			 ADMIN_OK);
	id = admin_request_last_id(auth_admin(w.a));
	assert_int_equal(decide(&w, 4, 3, id, ADMIN_APPROVE, "", T0 + 41),
			 ADMIN_GRANTEE);
	assert_int_equal(role_by(&w, 3, 4, ADMIN_ROLE_NONE, T0 + 42), ADMIN_OK);
	assert_int_equal(decide(&w, 1, 3, id, ADMIN_APPROVE, "", T0 + 43),
			 ADMIN_TARGET_CHANGED);
	assert_int_equal(status_of(&w, id), ADMIN_STALE);
	/* A grant the state would refuse is refused when asked, not held:
	 * an unknown principal, one that holds the role already. */
	assert_int_equal(role_request(&w, 3, 9, ADMIN_ROLE_SUPPORT,
				      ADMIN_ROLE_NONE, T0 + 45),
			 ADMIN_UNKNOWN);
	assert_int_equal(role_request(&w, 3, 1, ADMIN_ROLE_OPERATOR,
				      ADMIN_ROLE_OPERATOR, T0 + 46),
			 ADMIN_EXISTS);
	assert_int_equal(admin_request_last_id(auth_admin(w.a)), id);
	/* Approved after its requester lost security_officer (it holds
	 * operator now): refused, the request still pending (the outside
	 * attack's F4: any role was enough). */
	assert_int_equal(role_request(&w, 3, 4, ADMIN_ROLE_AUDITOR,
				      ADMIN_ROLE_NONE, T0 + 50),
			 ADMIN_OK);
	id = admin_request_last_id(auth_admin(w.a));
	assert_int_equal(role(&w, 2, ADMIN_ROLE_SECURITY_OFFICER, T0 + 51),
			 ADMIN_AUTHOR_ENDED); /* the bootstrap is retired */
	assert_int_equal(
		role_by(&w, 3, 1, ADMIN_ROLE_SECURITY_OFFICER, T0 + 52),
		ADMIN_OK);
	assert_int_equal(role_by(&w, 1, 3, ADMIN_ROLE_OPERATOR, T0 + 53),
			 ADMIN_OK);
	assert_int_equal(decide(&w, 2, 3, id, ADMIN_APPROVE, "", T0 + 54),
			 ADMIN_NOT_ADMIN);
	assert_int_equal(status_of(&w, id), ADMIN_PENDING);
	assert_int_equal(admin_role_of(auth_admin(w.a), id4), ADMIN_ROLE_NONE);
	/* A role taken away frees its record (the attack's F3: the table
	 * filled for good by roles given and taken). */
	u32 before = admin_role_count(auth_admin(w.a));
	assert_int_equal(role_by(&w, 1, 2, ADMIN_ROLE_NONE, T0 + 55), ADMIN_OK);
	assert_int_equal(admin_role_count(auth_admin(w.a)), before - 1);
	/* Malformed: a grant of "none", or one whose author is not the
	 * requester, is no request. */
	struct {
		struct admin_request_cmd c;
		struct admin_role_cmd g;
	} bad = {.c = {.op = ADMIN_OP_ROLE,
		       .window_s = ADMIN_WINDOW_MIN_S,
		       .payload_bytes = sizeof(struct admin_role_cmd)},
		 .g = {.role = ADMIN_ROLE_NONE}};
	id_of(3, bad.c.author);
	id_of(3, bad.g.author);
	id_of(4, bad.g.id);
	assert_false(admin_command_valid(ADMIN_CMD_REQUEST, &bad, sizeof(bad)));
	bad.g.role = ADMIN_ROLE_SUPPORT;
	assert_true(admin_command_valid(ADMIN_CMD_REQUEST, &bad, sizeof(bad)));
	id_of(1, bad.g.author);
	assert_false(admin_command_valid(ADMIN_CMD_REQUEST, &bad, sizeof(bad)));
	world_free(&w);
}

static void decided_requests_are_recycled(void **state)
{
	struct world w;
	struct admin_request_info r;
	(void)state;
	world_new(&w);
	staff(&w);
	const struct admin *d = auth_admin(w.a);
	/* 1: pending for the whole test (a day's window); 2: broken. */
	assert_int_equal(request(&w, 1, doc_a, 9, ADMIN_WINDOW_MAX_S, T0 + 20),
			 ADMIN_OK);
	assert_int_equal(request(&w, 2, doc_a, 0, 900, T0 + 21), ADMIN_OK);
	assert_int_equal(decide(&w, 2, 2, 2, ADMIN_BREAK_GLASS, "x", T0 + 22),
			 ADMIN_OK);
	for (u64 id = 3; id <= ADMIN_REQUESTS_MAX; id++) {
		assert_int_equal(request(&w, 2, doc_b, 1, 900, T0 + 30),
				 ADMIN_OK);
		assert_int_equal(
			decide(&w, 2, 2, id, ADMIN_REJECT, NULL, T0 + 30),
			ADMIN_OK);
	}
	assert_int_equal(admin_request_count(d), ADMIN_REQUESTS_MAX);
	/* Full: the next drops request 2 (1 is pending) and is 4097. */
	assert_int_equal(request(&w, 2, doc_b, 1, 900, T0 + 40), ADMIN_OK);
	assert_int_equal(admin_request_count(d), ADMIN_REQUESTS_MAX);
	assert_int_equal(admin_request_last_id(d), ADMIN_REQUESTS_MAX + 1);
	assert_false(admin_request_get(d, 2, &r));
	assert_true(admin_request_get(d, 1, &r));
	assert_int_equal(r.status, ADMIN_PENDING);
	assert_true(admin_request_get(d, ADMIN_REQUESTS_MAX + 1, &r));
	assert_int_equal(r.id, ADMIN_REQUESTS_MAX + 1);
	assert_int_equal(admin_break_glass_count(d), 1);
	/* A dropped request is decided no more; the new one is. */
	assert_int_equal(decide(&w, 1, 2, 2, ADMIN_REJECT, NULL, T0 + 41),
			 ADMIN_UNKNOWN);
	assert_int_equal(decide(&w, 1, 2, ADMIN_REQUESTS_MAX + 1, ADMIN_REJECT,
				NULL, T0 + 42),
			 ADMIN_OK);
	/* Again: request 3 goes, 4098 comes. */
	assert_int_equal(request(&w, 2, doc_b, 1, 900, T0 + 43), ADMIN_OK);
	assert_false(admin_request_get(d, 3, &r));
	assert_int_equal(admin_request_last_id(d), ADMIN_REQUESTS_MAX + 2);
	world_free(&w);
}

static void validator_refuses_malformed(void **state)
{
	struct admin_decide_cmd d = {.request = 1,
				     .decision = ADMIN_BREAK_GLASS};
	struct admin_role_cmd r = {.role = ADMIN_ROLE_MAX + 1};
	(void)state;
	/* Break-glass without a reason; unknown decision; request 0. */
	assert_false(admin_command_valid(ADMIN_CMD_DECIDE, &d, sizeof(d)));
	d.decision = 9;
	memcpy(d.reason, "r", 1);
	assert_false(admin_command_valid(ADMIN_CMD_DECIDE, &d, sizeof(d)));
	d.decision = ADMIN_APPROVE;
	d.request = 0;
	assert_false(admin_command_valid(ADMIN_CMD_DECIDE, &d, sizeof(d)));
	d.request = 1;
	assert_true(admin_command_valid(ADMIN_CMD_DECIDE, &d, sizeof(d)));
	assert_false(admin_command_valid(ADMIN_CMD_DECIDE, &d, sizeof(d) - 16));
	/* A role out of range, a zero principal. */
	memset(r.id, 1, 32);
	assert_false(admin_command_valid(ADMIN_CMD_ROLE, &r, sizeof(r)));
	r.role = ADMIN_ROLE_AUDITOR;
	assert_true(admin_command_valid(ADMIN_CMD_ROLE, &r, sizeof(r)));
	memset(r.id, 0, 32);
	assert_false(admin_command_valid(ADMIN_CMD_ROLE, &r, sizeof(r)));
	/* A request whose window is out of bounds. */
	struct admin_request_cmd q = {.op = ADMIN_OP_POLICY_SET,
				      .window_s = ADMIN_WINDOW_MIN_S - 1};
	assert_false(admin_command_valid(ADMIN_CMD_REQUEST, &q, sizeof(q)));
}

static int sink_buf(void *ctx, const void *p, size_t n)
{
	struct {
		u8 *b;
		size_t len, cap;
	} *s = ctx;
	if (s->len + n > s->cap)
		return -ENOSPC;
	memcpy(s->b + s->len, p, n);
	s->len += n;
	return 0;
}

static void snapshot_round_trip_and_old_digest(void **state)
{
	struct world w;
	u8 before[32], after[32];
	struct {
		u8 *b;
		size_t len, cap;
	} s = {malloc(1 << 16), 0, 1 << 16};
	(void)state;
	assert_non_null(s.b);
	world_new(&w);
	for (u8 n = 1; n <= 4; n++)
		principal(&w, n, T0 + n);
	/* No administrators: the snapshot is the format before them (no
	 * administrators' part: an older reader takes it). */
	assert_int_equal(auth_snapshot_write(w.a, sink_buf, &s), 0);
	assert_int_equal(s.len, auth_snapshot_bytes(w.a));
	assert_null(memmem(s.b, s.len, "TPWADMN", 7));
	auth_digest(w.a, before);
	assert_int_equal(role(&w, 1, ADMIN_ROLE_OPERATOR, T0 + 10), ADMIN_OK);
	assert_int_equal(role(&w, 2, ADMIN_ROLE_OPERATOR, T0 + 11), ADMIN_OK);
	assert_int_equal(request(&w, 1, doc_a, 0, 900, T0 + 12), ADMIN_OK);
	assert_int_equal(request(&w, 2, doc_b, 0, 900, T0 + 13), ADMIN_OK);
	assert_int_equal(decide(&w, 1, 2, 2, ADMIN_REJECT, NULL, T0 + 14),
			 ADMIN_OK);
	auth_digest(w.a, after);
	assert_memory_not_equal(before, after, 32);
	s.len = 0;
	assert_int_equal(auth_snapshot_write(w.a, sink_buf, &s), 0);
	assert_int_equal(s.len, auth_snapshot_bytes(w.a));
	assert_non_null(memmem(s.b, s.len, "TPWADMN", 7));
	struct auth *b = auth_snapshot_read(s.b, s.len);
	assert_non_null(b);
	u8 again[32];
	auth_digest(b, again);
	assert_memory_equal(after, again, 32);
	/* The pending request kept its payload: approving it on the copy
	 * applies the document. */
	struct world w2 = {.a = b, .ps = pstate_new()};
	assert_int_equal(decide(&w2, 2, 1, 1, ADMIN_APPROVE, NULL, T0 + 15),
			 ADMIN_OK);
	assert_int_equal(version(&w2), 1);
	/* Cut short: refused. */
	assert_null(auth_snapshot_read(s.b, s.len - 1));
	world_free(&w2);
	world_free(&w);
	free(s.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roles_and_retirement),
		cmocka_unit_test(last_officer_keeps_its_role),
		cmocka_unit_test(approval_by_another_applies_the_policy),
		cmocka_unit_test(window_and_target_are_decided_at_log_time),
		cmocka_unit_test(revoked_requester_and_break_glass),
		cmocka_unit_test(pending_slots_per_requester_and_expiry),
		cmocka_unit_test(account_owner_gets_no_role),
		cmocka_unit_test(changes_by_an_ended_authority_are_refused),
		cmocka_unit_test(decided_requests_are_recycled),
		cmocka_unit_test(role_grants_wait_for_a_second_administrator),
		cmocka_unit_test(validator_refuses_malformed),
		cmocka_unit_test(snapshot_round_trip_and_old_digest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
