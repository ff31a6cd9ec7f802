/*
 * state.c - the ledger, the authorization state and the policy state as
 * one state machine: apply a journal record, snapshot, digest.  The
 * commands' layouts and handlers are the registry's (core/command.c);
 * this file owns the parts and what a record of each type does to them.
 */
#include "core/state.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/pstate.h"
#include "core/vault.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct state {
	struct ledger *ledger;
	struct auth *auth;     /* principals, owners, revocations, counters */
	struct pstate *pstate; /* client-version policy versions, overrides */
	struct vault *vault;   /* the card vault's tokens (no key) */
	/* Scratch of the guarded kinds: which events are already transfers
	 * (apply runs on one thread at a time). */
	u8 scratch[BATCH_EVENTS_MAX];
};

static struct state *assemble(struct ledger *l, struct auth *a,
			      struct pstate *ps, struct vault *v)
{
	struct state *s = NULL;

	if (l && a && ps && v)
		s = calloc(1, sizeof(*s));
	if (!s) {
		if (l)
			ledger_free(l);
		auth_free(a);
		pstate_free(ps);
		vault_free(v);
		return NULL;
	}
	s->ledger = l;
	s->auth = a;
	s->pstate = ps;
	s->vault = v;
	return s;
}

struct state *state_new(const struct ledger_options *opts)
{
	return assemble(ledger_new(opts), auth_new(), pstate_new(),
			vault_new());
}

void state_free(struct state *s)
{
	if (!s)
		return;
	ledger_free(s->ledger);
	auth_free(s->auth);
	pstate_free(s->pstate);
	vault_free(s->vault);
	free(s);
}

int state_check(u16 type, const void *payload, u32 payload_bytes, u32 *events)
{
	struct command_view c;

	switch (type) {
	case STATE_CREATE_ACCOUNTS:
	case STATE_CREATE_TRANSFERS:
		if (payload_bytes == 0 || payload_bytes % 128 != 0 ||
		    payload_bytes / 128 > BATCH_EVENTS_MAX)
			return -EBADMSG;
		*events = payload_bytes / 128;
		return 0;
	case STATE_PULSE:
		if (payload_bytes != 0)
			return -EBADMSG;
		*events = 0;
		return 0;
	case STATE_COMMAND:
		if (command_decode(payload, payload_bytes, &c) != 0 ||
		    !command_valid(&c))
			return -EBADMSG;
		*events = c.h.count;
		return 0;
	default: return -EBADMSG;
	}
}

int state_apply(struct state *s, u16 type, u64 timestamp, const void *payload,
		u32 payload_bytes, u32 *results)
{
	struct command_view c;
	u32 n = payload_bytes / 128;

	switch (type) {
	case STATE_CREATE_ACCOUNTS:
	case STATE_CREATE_TRANSFERS:
		if (n == 0 || n > BATCH_EVENTS_MAX || payload_bytes % 128 != 0)
			return -EBADMSG;
		return type == STATE_CREATE_ACCOUNTS
			       ? ledger_create_accounts(s->ledger, payload, n,
							timestamp, results)
			       : ledger_create_transfers(s->ledger, payload, n,
							 timestamp, results);
	case STATE_PULSE:
		/* A pulse's payload is empty (journal_decode checks it). */
		return ledger_pulse(s->ledger, timestamp);
	case STATE_COMMAND: {
		const struct command_target t = {.ledger = s->ledger,
						 .auth = s->auth,
						 .pstate = s->pstate,
						 .vault = s->vault,
						 .scratch = s->scratch};
		if (command_decode(payload, payload_bytes, &c) != 0)
			return -EBADMSG;
		return command_apply(&t, &c, timestamp, results);
	}
	default: return -EBADMSG;
	}
}

const struct ledger *state_ledger(const struct state *s)
{
	return s->ledger;
}

const struct auth *state_auth(const struct state *s)
{
	return s->auth;
}

const struct pstate *state_pstate(const struct state *s)
{
	return s->pstate;
}

const struct vault *state_vault(const struct state *s)
{
	return s->vault;
}

u64 state_next_expiry(const struct state *s)
{
	return ledger_next_expiry(s->ledger);
}

u64 state_last_timestamp(const struct state *s)
{
	return ledger_last_timestamp(s->ledger);
}

struct ledger *state_ledger_rw(struct state *s)
{
	return s->ledger;
}

/* An empty vault adds nothing: the digest of a state without cards is
 * what it was before the vault existed. */
static void digest_of(const struct state *s, const u8 ledger[32], u8 out[32])
{
	u8 parts[4][32];
	size_t n = vault_empty(s->vault) ? 3 : 4;

	memcpy(parts[0], ledger, 32);
	auth_digest(s->auth, parts[1]);
	pstate_digest(s->pstate, parts[2]);
	if (n == 4)
		vault_digest(s->vault, parts[3]);
	crypto_generichash(out, 32, parts[0], n * 32, NULL, 0);
}

void state_digest(const struct state *s, u8 out[32])
{
	u8 l[32];

	ledger_digest(s->ledger, l);
	digest_of(s, l, out);
}

void state_digest_with(const struct state *s, const struct ledger_sums *sums,
		       u8 out[32])
{
	u8 l[32];

	ledger_digest_with(s->ledger, sums, l);
	digest_of(s, l, out);
}

int state_parts_write(const struct state *s, ledger_sink_fn sink, void *ctx)
{
	u64 auth_len = auth_snapshot_bytes(s->auth);
	u64 ps_len = pstate_snapshot_bytes(s->pstate);
	int rc = sink(ctx, &auth_len, sizeof(auth_len));

	if (rc == 0)
		rc = auth_snapshot_write(s->auth, sink, ctx);
	if (rc == 0)
		rc = sink(ctx, &ps_len, sizeof(ps_len));
	if (rc == 0)
		rc = pstate_snapshot_write(s->pstate, sink, ctx);
	if (rc == 0) {
		u64 v_len = vault_snapshot_bytes(s->vault);
		rc = sink(ctx, &v_len, sizeof(v_len));
		if (rc == 0)
			rc = vault_snapshot_write(s->vault, sink, ctx);
	}
	return rc;
}

int state_snapshot_write(const struct state *s, ledger_sink_fn sink, void *ctx)
{
	int rc = state_parts_write(s, sink, ctx);

	if (rc == 0)
		rc = ledger_snapshot_write(s->ledger, sink, ctx);
	return rc;
}

/* The next part of the container: a u64 length and that many bytes. */
static const u8 *take_part(const u8 *buf, size_t len, size_t *at,
			   size_t *part_len)
{
	u64 n;

	if (len - *at < sizeof(n))
		return NULL;
	memcpy(&n, buf + *at, sizeof(n));
	*at += sizeof(n);
	if (n > len - *at)
		return NULL;
	*part_len = (size_t)n;
	*at += n;
	return buf + *at - n;
}

/* Is a vault part next at buf[at..)?  Containers written before the
 * vault have the ledger (or nothing) there: its part's first bytes, after
 * the u64 length, are VAULT_SNAP_MAGIC. */
static bool vault_part_next(const u8 *buf, size_t len, size_t at)
{
	u64 magic;

	if (len - at < 16)
		return false;
	memcpy(&magic, buf + at + 8, sizeof(magic));
	return magic == VAULT_SNAP_MAGIC;
}

/* The auth, policy and vault parts at the start of buf: *at is where they
 * end (NULL parts when they are not valid; an empty vault when the
 * container predates it). */
static void read_parts(const u8 *buf, size_t len, size_t *at, struct auth **a,
		       struct pstate **ps, struct vault **v)
{
	size_t n = 0;
	const u8 *p;

	*a = NULL;
	*ps = NULL;
	*v = NULL;
	if ((p = take_part(buf, len, at, &n)))
		*a = auth_snapshot_read(p, n);
	if (*a && (p = take_part(buf, len, at, &n)))
		*ps = pstate_snapshot_read(p, n);
	if (!*ps)
		return;
	if (!vault_part_next(buf, len, *at))
		*v = vault_new();
	else if ((p = take_part(buf, len, at, &n)))
		*v = vault_snapshot_read(p, n);
}

struct state *state_from_parts(struct ledger *l, const u8 *buf, size_t len)
{
	struct auth *a;
	struct pstate *ps;
	struct vault *v;
	size_t at = 0;

	read_parts(buf, len, &at, &a, &ps, &v);
	if (v && at != len) {
		vault_free(v);
		v = NULL;
	}
	return assemble(l, a, ps, v);
}

struct state *state_snapshot_read(const u8 *buf, size_t len)
{
	struct auth *a;
	struct pstate *ps;
	struct vault *v;
	struct ledger *l = NULL;
	size_t at = 0;

	read_parts(buf, len, &at, &a, &ps, &v);
	if (v)
		l = ledger_snapshot_read(buf + at, len - at);
	return assemble(l, a, ps, v);
}
