/*
 * cdcevent.c - journal records to change events (see cdcevent.h).
 *
 * The balances after each transfer of a batch are found by walking the
 * batch backwards from the balances at its end: a transfer's effect on
 * its two accounts is known from its stored record (a post or void also
 * from its pending transfer), so undoing the later transfers of the batch
 * gives the balances just after an earlier one.  The state machine is
 * not changed to report them, and its hot path pays nothing for CDC.
 */
#include "api/cdcevent.h"
#include "api/codec.h"
#include "api/wbuf.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/ledger.h"
#include "core/state.h"
#include "log/entry_view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* The pending transfers one record expired, collected by the drain. */
struct expired {
	struct transfer *t;
	u32 n, cap;
	int err;
};

struct cdc_encoder {
	struct state *st;
	char origin[CDC_ORIGIN_BYTES_MAX];
	struct wbuf out;
	struct expired exp;
	u32 *results;
	u32 results_cap;
	struct entry_view view;
};

/* The balances of one account, at some point of a batch. */
struct bal {
	u128 id;
	struct account_balance b;
	bool used;
};

/* Accounts a batch touches: open addressing, twice the room needed. */
struct bal_map {
	struct bal *slot;
	u32 mask;
};

static int never_cold(void *ctx, const u128 *ids, u32 n,
		      struct ledger_cold_item *out)
{
	(void)ctx;
	(void)ids;
	memset(out, 0, sizeof(*out) * n);
	return 0;
}

static void drain_transfer(void *ctx, const struct transfer *t, u8 status,
			   const struct account_balance *dr,
			   const struct account_balance *cr)
{
	(void)ctx;
	(void)t;
	(void)status;
	(void)dr;
	(void)cr;
}

static void drain_status(void *ctx, const struct transfer *t, u8 status)
{
	struct expired *x = ctx;

	if (status != PENDING_EXPIRED || x->err)
		return;
	if (x->n == x->cap) {
		u32 cap = x->cap ? x->cap * 2 : 16;
		struct transfer *g = realloc(x->t, sizeof(*g) * cap);
		if (!g) {
			x->err = -ENOMEM;
			return;
		}
		x->t = g;
		x->cap = cap;
	}
	x->t[x->n++] = *t;
}

static void drain_account(void *ctx, const struct account *a)
{
	(void)ctx;
	(void)a;
}

static void drain_failed(void *ctx, u128 id)
{
	(void)ctx;
	(void)id;
}

static const struct ledger_drain_ops drain_ops = {
	.transfer = drain_transfer,
	.status = drain_status,
	.account = drain_account,
	.failed = drain_failed,
};

/* What the ledger changed since the last drain: the expiries kept in
 * e->exp, the rest dropped (nothing is ever evicted). */
static int drain(struct cdc_encoder *e)
{
	struct ledger_mark mark;

	e->exp.n = 0;
	e->exp.err = 0;
	int ret = ledger_drain(state_ledger_rw(e->st), &drain_ops, &e->exp,
			       &mark);
	return ret < 0 ? ret : e->exp.err;
}

int cdc_encoder_new(struct cdc_encoder **out, struct state *st,
		    const char *origin)
{
	struct cdc_encoder *e = NULL;
	int ret = -EINVAL;

	*out = NULL;
	if (strlen(origin) >= CDC_ORIGIN_BYTES_MAX)
		goto fail;
	ret = -ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto fail;
	e->st = st;
	st = NULL;
	snprintf(e->origin, sizeof(e->origin), "%s", origin);
	wbuf_init(&e->out, CDC_EVENT_BYTES_MAX);
	ret = ledger_set_cold(state_ledger_rw(e->st),
			      &(struct ledger_cold){.get = never_cold});
	/* The first drain emits the whole state: not a change. */
	if (ret == 0)
		ret = drain(e);
	if (ret < 0)
		goto fail;
	*out = e;
	return 0;
fail:
	if (st)
		state_free(st);
	cdc_encoder_free(e);
	return ret;
}

void cdc_encoder_free(struct cdc_encoder *e)
{
	if (!e)
		return;
	state_free(e->st);
	wbuf_release(&e->out);
	free(e->exp.t);
	free(e->results);
	free(e);
}

const struct state *cdc_encoder_state(const struct cdc_encoder *e)
{
	return e->st;
}

static struct bal *bal_get(struct bal_map *m, const struct ledger *l, u128 id)
{
	u32 i = (u32)ledger_hash_id(id) & m->mask;

	while (m->slot[i].used && m->slot[i].id != id)
		i = (i + 1) & m->mask;
	struct bal *s = &m->slot[i];
	if (!s->used) {
		struct account a = {0};
		/* Every account a created transfer names exists. */
		(void)ledger_lookup_account(l, id, &a);
		s->used = true;
		s->id = id;
		s->b.debits_pending = a.debits_pending;
		s->b.debits_posted = a.debits_posted;
		s->b.credits_pending = a.credits_pending;
		s->b.credits_posted = a.credits_posted;
	}
	return s;
}

/* Take t's effect off the balances (t as stored: a post or void names
 * its accounts and the amount it moved; p is its pending transfer). */
static void undo(struct account_balance *dr, struct account_balance *cr,
		 const struct transfer *t, const struct transfer *p)
{
	if (t->flags &
	    (TRANSFER_POST_PENDING_TRANSFER | TRANSFER_VOID_PENDING_TRANSFER)) {
		dr->debits_pending += p->amount;
		cr->credits_pending += p->amount;
		if (t->flags & TRANSFER_POST_PENDING_TRANSFER) {
			dr->debits_posted -= t->amount;
			cr->credits_posted -= t->amount;
		}
	} else if (t->flags & TRANSFER_PENDING) {
		dr->debits_pending -= t->amount;
		cr->credits_pending -= t->amount;
	} else {
		dr->debits_posted -= t->amount;
		cr->credits_posted -= t->amount;
	}
}

/* The members every event starts with; the caller closes the object. */
static void put_head(struct cdc_encoder *e, const struct journal_record *r,
		     u32 index, const char *type, char id[CDC_ID_BYTES_MAX])
{
	struct wbuf *b = &e->out;

	snprintf(id, CDC_ID_BYTES_MAX, "%s/%llu/%u", e->origin,
		 (unsigned long long)r->seq, index);
	b->len = 0;
	b->err = 0;
	wbuf_puts(b, "{\"id\":");
	wbuf_put_json_str(b, id, strlen(id));
	wbuf_puts(b, ",\"type\":\"");
	wbuf_puts(b, type);
	wbuf_puts(b, "\",\"origin\":");
	wbuf_put_json_str(b, e->origin, strlen(e->origin));
	wbuf_puts(b, ",\"seq\":");
	wbuf_put_u128_str(b, r->seq);
	wbuf_puts(b, ",\"index\":");
	wbuf_put_u64(b, index);
	wbuf_puts(b, ",\"timestamp_ns\":");
	wbuf_put_u128_str(b, r->timestamp);
	wbuf_puts(b, ",\"time\":\"");
	wbuf_puts(b, e->view.time);
	wbuf_putc(b, '"');
	if (e->view.command) {
		wbuf_puts(b, ",\"command\":\"");
		wbuf_puts(b, e->view.command);
		wbuf_putc(b, '"');
	}
}

static int finish(struct cdc_encoder *e, const struct journal_record *r,
		  u32 index, const char *type, const char *id, cdc_emit_fn emit,
		  void *ctx)
{
	wbuf_putc(&e->out, '}');
	if (e->out.err)
		return e->out.err;
	struct cdc_event ev = {
		.seq = r->seq,
		.index = index,
		.type = type,
		.id = id,
		.json = e->out.data,
		.json_bytes = e->out.len,
	};
	return emit(ctx, &ev);
}

static void put_balance(struct wbuf *b, const char *key, u128 id,
			const struct account_balance *ab, u64 ts)
{
	struct account_balance x = *ab;

	x.timestamp = ts;
	wbuf_puts(b, key);
	wbuf_puts(b, "{\"account_id\":");
	wbuf_put_u128_str(b, id);
	wbuf_puts(b, ",\"balance\":");
	codec_write_balance(b, &x);
	wbuf_putc(b, '}');
}

static int emit_transfer(struct cdc_encoder *e, const struct journal_record *r,
			 u32 index, const char *type, const struct transfer *t,
			 enum pending_status ps,
			 const struct account_balance *dr,
			 const struct account_balance *cr, u64 balance_ts,
			 cdc_emit_fn emit, void *ctx)
{
	char id[CDC_ID_BYTES_MAX];

	put_head(e, r, index, type, id);
	wbuf_puts(&e->out, ",\"transfer\":");
	codec_write_transfer(&e->out, t, ps);
	put_balance(&e->out, ",\"debit_account\":", t->debit_account_id, dr,
		    balance_ts);
	put_balance(&e->out, ",\"credit_account\":", t->credit_account_id, cr,
		    balance_ts);
	return finish(e, r, index, type, id, emit, ctx);
}

/* A record's expiries (first) and created transfers, with balances. */
static int emit_transfers(struct cdc_encoder *e, const struct journal_record *r,
			  const struct transfer *ev, u32 n, cdc_emit_fn emit,
			  void *ctx, u32 *index)
{
	const struct ledger *l = state_ledger(e->st);
	struct transfer *made = NULL, *pend = NULL;
	struct account_balance *after = NULL;
	struct bal_map m = {0};
	u32 k = 0, cap = 16;
	int ret = -ENOMEM;

	while (cap < 4 * (n + e->exp.n))
		cap *= 2;
	m.slot = calloc(cap, sizeof(*m.slot));
	m.mask = cap - 1;
	made = malloc(sizeof(*made) * (n ? n : 1));
	pend = malloc(sizeof(*pend) * (n ? n : 1));
	after = malloc(sizeof(*after) * 2 * (n ? n : 1));
	if (!m.slot || !made || !pend || !after)
		goto cleanup;
	for (u32 i = 0; i < n; i++) {
		if (e->results[i] != 0)
			continue;
		if (ledger_lookup_transfer(l, ev[i].id, &made[k]) != 0) {
			ret = -EBADMSG; /* created, hence there */
			goto cleanup;
		}
		memset(&pend[k], 0, sizeof(pend[k]));
		if (made[k].pending_id)
			(void)ledger_lookup_transfer(l, made[k].pending_id,
						     &pend[k]);
		k++;
	}
	for (u32 j = k; j-- > 0;) {
		struct bal *dr = bal_get(&m, l, made[j].debit_account_id);
		struct bal *cr = bal_get(&m, l, made[j].credit_account_id);
		after[2 * j] = dr->b;
		after[2 * j + 1] = cr->b;
		undo(&dr->b, &cr->b, &made[j], &pend[j]);
	}
	/* Before the first transfer: just after the expiries. */
	for (u32 x = 0; x < e->exp.n; x++) {
		const struct transfer *t = &e->exp.t[x];
		struct account_balance dr =
			bal_get(&m, l, t->debit_account_id)->b;
		struct account_balance cr =
			bal_get(&m, l, t->credit_account_id)->b;
		ret = emit_transfer(e, r, (*index)++, "transfer.expired", t,
				    PENDING_EXPIRED, &dr, &cr, r->timestamp,
				    emit, ctx);
		if (ret < 0)
			goto cleanup;
	}
	for (u32 j = 0; j < k; j++) {
		ret = emit_transfer(
			e, r, (*index)++, "transfer.created", &made[j],
			(made[j].flags & TRANSFER_PENDING) ? PENDING_PENDING
							   : PENDING_NONE,
			&after[2 * j], &after[2 * j + 1], made[j].timestamp,
			emit, ctx);
		if (ret < 0)
			goto cleanup;
	}
	ret = 0;
cleanup:
	free(m.slot);
	free(made);
	free(pend);
	free(after);
	return ret;
}

static int emit_accounts(struct cdc_encoder *e, const struct journal_record *r,
			 const struct account *ev, u32 n, cdc_emit_fn emit,
			 void *ctx, u32 *index)
{
	const struct ledger *l = state_ledger(e->st);

	for (u32 i = 0; i < n; i++) {
		struct account a;
		char id[CDC_ID_BYTES_MAX];
		u8 owner[AUTH_ID_BYTES];
		if (e->results[i] != 0)
			continue;
		if (ledger_lookup_account(l, ev[i].id, &a) != 0)
			return -EBADMSG;
		u32 at = (*index)++;
		put_head(e, r, at, "account.created", id);
		wbuf_puts(&e->out, ",\"account\":");
		codec_write_account(&e->out, &a);
		if (auth_owner_get(state_auth(e->st), a.id, owner)) {
			char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
			entry_view_thumbprint(owner, tp);
			wbuf_puts(&e->out, ",\"owner\":\"");
			wbuf_puts(&e->out, tp);
			wbuf_putc(&e->out, '"');
		}
		int ret = finish(e, r, at, "account.created", id, emit, ctx);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int emit_command(struct cdc_encoder *e, const struct journal_record *r,
			cdc_emit_fn emit, void *ctx, u32 *index)
{
	struct entry_view *v = &e->view;
	struct auth_principal_info p;
	char id[CDC_ID_BYTES_MAX], type[64];
	bool named = false;

	if (v->has_author && !entry_view_is_admin(v->author))
		named = auth_principal_get(state_auth(e->st), v->author, &p);
	snprintf(type, sizeof(type), "command.%s", v->command);
	u32 at = (*index)++;
	put_head(e, r, at, type, id);
	wbuf_puts(&e->out, ",\"entry\":{");
	codec_write_entry_view(&e->out, v, named ? p.name : NULL);
	wbuf_putc(&e->out, '}');
	return finish(e, r, at, type, id, emit, ctx);
}

int cdc_encoder_record(struct cdc_encoder *e, const struct journal_record *r,
		       const u8 *raw, size_t raw_bytes, cdc_emit_fn emit,
		       void *ctx)
{
	u32 events = 0, index = 0;
	int ret;

	if (state_check(r->type, r->payload, r->payload_bytes, &events) != 0)
		return -EBADMSG;
	if (events + 1u > e->results_cap) {
		u32 *g = realloc(e->results, sizeof(*g) * (events + 1u));
		if (!g)
			return -ENOMEM;
		e->results = g;
		e->results_cap = events + 1u;
	}
	ret = state_apply(e->st, r->type, r->timestamp, r->payload,
			  r->payload_bytes, e->results);
	if (ret < 0)
		return ret;
	if ((ret = drain(e)) < 0 || !emit)
		return ret;
	/* The decoded view: the time, and a command's name and fields. */
	if (entry_view_decode(raw, raw_bytes, &e->view) != 0)
		return -EBADMSG;

	const void *ev = r->payload;
	u32 n = r->payload_bytes / JOURNAL_EVENT_BYTES;
	enum command_events kind = COMMAND_EVENTS_NONE;
	if (r->type == JOURNAL_CREATE_ACCOUNTS)
		kind = COMMAND_EVENTS_ACCOUNTS;
	else if (r->type == JOURNAL_CREATE_TRANSFERS)
		kind = COMMAND_EVENTS_TRANSFERS;
	else
		n = 0;
	if (r->type == JOURNAL_COMMAND) {
		struct command_view c;
		if (command_decode(r->payload, r->payload_bytes, &c) != 0)
			return -EBADMSG;
		kind = c.def->events;
		ev = c.events;
		n = c.h.count;
	}
	ret = 0;
	if (kind == COMMAND_EVENTS_TRANSFERS || e->exp.n > 0)
		ret = emit_transfers(e, r, ev,
				     kind == COMMAND_EVENTS_TRANSFERS ? n : 0,
				     emit, ctx, &index);
	if (ret >= 0 && kind == COMMAND_EVENTS_ACCOUNTS)
		ret = emit_accounts(e, r, ev, n, emit, ctx, &index);
	if (ret >= 0 && r->type == JOURNAL_COMMAND &&
	    kind == COMMAND_EVENTS_NONE)
		ret = emit_command(e, r, emit, ctx, &index);
	return ret < 0 ? ret : (int)index;
}
