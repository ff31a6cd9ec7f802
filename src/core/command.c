/*
 * command.c - the registry of journal commands expanded: the table, the
 * one decoder, and the appliers of the kinds that change the ledger
 * (the others hand their ext to core/auth or core/pstate).  See
 * command.h for the rows and how to add one.
 */
#include "core/command.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/ledger.h"
#include "core/pstate.h"
#include "core/tlsswitch.h"
#include "core/vault.h"

#include <errno.h>
#include <string.h>

#include "banned.h"

/* ---- appliers ----------------------------------------------------------- */

static int apply_accounts_owned(const struct command_target *t,
				const struct command_view *c, u64 timestamp,
				u32 *results)
{
	struct auth_owner o;

	memcpy(&o, c->ext, sizeof(o));
	int ret = ledger_create_accounts(t->ledger, c->events, c->h.count,
					 timestamp, results);
	if (ret == 0)
		auth_set_owners(t->auth, &o, c->events, results, c->h.count);
	return ret;
}

/* The caps are decided here, at apply time in journal order: two guarded
 * batches that race can never together pass a cap. */
static int apply_transfers_guarded(const struct command_target *t,
				   const struct command_view *c, u64 timestamp,
				   u32 *results)
{
	u32 n = c->h.ext_bytes / sizeof(struct auth_guard);
	const struct auth_guard *g = (const void *)c->ext;
	const struct transfer *tr = c->events;
	const u8 *skip = NULL;

	if (c->h.kind == AUTH_CMD_TRANSFERS_GUARDED_2) {
		int ret = ledger_transfers_exist(t->ledger, tr, c->h.count,
						 t->scratch);
		if (ret)
			return ret;
		skip = t->scratch;
	}
	u32 refuse = auth_guard_check(t->auth, g, n, tr, c->h.count, skip);
	if (refuse) {
		for (u32 i = 0; i < c->h.count; i++)
			results[i] = refuse;
		return 0;
	}
	int ret = ledger_create_transfers(t->ledger, tr, c->h.count, timestamp,
					  results);
	if (ret == 0)
		ret = auth_guard_commit(t->auth, g, n, tr, results, c->h.count);
	return ret;
}

static int apply_auth(const struct command_target *t,
		      const struct command_view *c, u64 timestamp, u32 *results)
{
	return auth_apply(t->auth, c->h.kind, c->ext, c->h.ext_bytes, timestamp,
			  results);
}

static int apply_pstate(const struct command_target *t,
			const struct command_view *c, u64 timestamp,
			u32 *results)
{
	/* A policy activation whose author's authority ended before its
	 * entry (docs/authz.md, "Named administrators") changes nothing. */
	if (c->h.kind == PSTATE_CMD_SET &&
	    pstate_command_valid(c->h.kind, c->ext, c->h.ext_bytes)) {
		struct pstate_set h;
		memcpy(&h, c->ext, sizeof(h));
		if (!admin_author_holds(auth_admin(t->auth), t->auth, h.author,
					ADMIN_ROLE_OPERATOR)) {
			results[0] = PSTATE_AUTHOR_ENDED;
			return 0;
		}
	}
	return pstate_apply(t->pstate, c->h.kind, c->ext, c->h.ext_bytes,
			    timestamp, results);
}

static int apply_vault(const struct command_target *t,
		       const struct command_view *c, u64 timestamp,
		       u32 *results)
{
	return vault_apply(t->vault, c->h.kind, c->ext, c->h.ext_bytes,
			   timestamp, results);
}

static int apply_admin(const struct command_target *t,
		       const struct command_view *c, u64 timestamp,
		       u32 *results)
{
	return admin_apply(auth_admin_rw(t->auth), t->auth, t->pstate,
			   c->h.kind, c->ext, c->h.ext_bytes, timestamp,
			   results);
}

/* An entry for the audit trail only (TLS_CMD_SWITCH): its validator
 * checked it; nothing changes. */
static int apply_none(const struct command_target *t,
		      const struct command_view *c, u64 timestamp, u32 *results)
{
	(void)t;
	(void)timestamp;
	if (!command_valid(c))
		return -EBADMSG;
	results[0] = 0;
	return 0;
}

/* ---- the table ------------------------------------------------------------
 */

static const struct command_def defs[] = {
#define COMMAND__ROW(name_, kind_, display_, events_, parts_, min_, max_,      \
		     unit_, valid_, apply_)                                    \
	{.kind = (kind_),                                                      \
	 .name = (display_),                                                   \
	 .events = (events_),                                                  \
	 .parts = (parts_),                                                    \
	 .ext_min = (u32)(min_),                                               \
	 .ext_max = (u32)(max_),                                               \
	 .ext_unit = (u32)(unit_),                                             \
	 .valid = (valid_),                                                    \
	 .apply = (apply_)},
	COMMAND_KINDS(COMMAND__ROW)
#undef COMMAND__ROW
};

#define COMMAND__CHECK(name_, kind_, display_, events_, parts_, min_, max_,    \
		       unit_, valid_, apply_)                                  \
	_Static_assert((unit_) % 16 == 0 && (unit_) > 0 &&                     \
			       (min_) % (unit_) == 0 && (min_) <= (max_) &&    \
			       (max_) <= COMMAND_EXT_BYTES_MAX,                \
		       "ext sizes of " display_);
COMMAND_KINDS(COMMAND__CHECK)
#undef COMMAND__CHECK

const struct command_def *command_find(u16 kind)
{
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (defs[i].kind == kind)
			return &defs[i];
	return NULL;
}

const char *command_name(u16 kind)
{
	const struct command_def *d = command_find(kind);
	return d ? d->name : "unknown";
}

/* ---- decoding -------------------------------------------------------------
 */

int command_decode(const void *payload, size_t bytes, struct command_view *out)
{
	const u8 *p = payload;

	memset(out, 0, sizeof(*out));
	if (bytes < sizeof(out->h) || command_layout(p, bytes, &out->h) != 0)
		return -EBADMSG;
	const struct command_def *d = command_find(out->h.kind);
	if (!d)
		return -EBADMSG;
	if (d->events == COMMAND_EVENTS_NONE
		    ? out->h.count != 0
		    : out->h.count == 0 || out->h.count > BATCH_EVENTS_MAX)
		return -EBADMSG;
	if (out->h.ext_bytes < d->ext_min || out->h.ext_bytes > d->ext_max ||
	    out->h.ext_bytes % d->ext_unit != 0)
		return -EBADMSG;
	out->def = d;
	out->ext = p + sizeof(out->h);
	out->events = out->ext + out->h.ext_bytes;
	return 0;
}

bool command_valid(const struct command_view *c)
{
	return c->def && (!c->def->valid ||
			  c->def->valid(c->h.kind, c->ext, c->h.ext_bytes));
}

int command_apply(const struct command_target *t, const struct command_view *c,
		  u64 timestamp, u32 *results)
{
	if (!c->def)
		return -EBADMSG;
	if (((c->def->parts & COMMAND_LEDGER) && !t->ledger) ||
	    ((c->def->parts & COMMAND_AUTH) && !t->auth) ||
	    ((c->def->parts & COMMAND_PSTATE) && !t->pstate) ||
	    ((c->def->parts & COMMAND_VAULT) && !t->vault) ||
	    (c->def->events == COMMAND_EVENTS_TRANSFERS && !t->scratch))
		return -EINVAL;
	return c->def->apply(t, c, timestamp, results);
}
