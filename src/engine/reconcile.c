/*
 * reconcile.c - the settlement file against the ledger (reconcile.h).
 * A row names a top-up by its key; the top-up is matched when its pending
 * transfer (debiting the settlement account, with the top-ups' code) is
 * posted for the row's amount in the acquirer's currency.  The ledger's
 * side is read with the ledger's own query: every pending top-up of the
 * settlement account, in timestamp pages; those posted that no row named
 * are missing at the acquirer.  Pending ones are not differences yet (the
 * resolver settles them), voided ones were never money.
 */
#include "engine/reconcile.h"
#include "core/ledger.h"
#include "core/result.h"
#include "engine/acquirer.h"
#include "engine/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define PAGE 1024u

static const char *const kind_names[RECON_KIND_COUNT] = {
#define RECON_NAME_(n) #n,
	RECON_KINDS(RECON_NAME_)
#undef RECON_NAME_
};

const char *recon_kind_name(unsigned k)
{
	return k < RECON_KIND_COUNT ? kind_names[k] : NULL;
}

static int add(struct recon_report *r, size_t *cap, const struct recon_item *it)
{
	if (r->n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct recon_item *p = realloc(r->items, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->items = p;
		*cap = c;
	}
	r->items[r->n++] = *it;
	r->counts[it->kind]++;
	return 0;
}

static int cmp_u128(const void *a, const void *b)
{
	const u128 *x = a, *y = b;
	return (*x > *y) - (*x < *y);
}

/* The top-up a row names, when the ledger has it: its pending transfer
 * and status. */
static bool topup_of(struct engine *e, const struct recon_options *o,
		     const char *key, struct transfer *t,
		     enum pending_status *st)
{
	u128 id;
	return acquirer_key_id(key, &id) == 0 &&
	       engine_lookup_transfer(e, id, t, st) == 0 &&
	       (t->flags & TRANSFER_PENDING) &&
	       t->debit_account_id == o->settlement && t->code == o->code;
}

int reconcile_run(struct engine *e, const struct recon_options *o,
		  const struct settle_file *f, struct recon_report *out)
{
	size_t cap = 0;
	int ret = 0;
	u128 *named = f->nrows ? calloc(f->nrows, sizeof(*named)) : NULL;
	size_t nnamed = 0;

	memset(out, 0, sizeof(*out));
	if (f->nrows && !named)
		return -ENOMEM;
	for (size_t i = 0; i < f->nrows && ret == 0; i++) {
		const struct settle_row *row = &f->rows[i];
		struct recon_item it = {.line = row->line,
					.amount_file = row->amount};
		struct transfer t;
		enum pending_status st = PENDING_NONE;
		memcpy(it.key, row->key, sizeof(it.key));
		memcpy(it.ref, row->ref, sizeof(it.ref));
		memcpy(it.currency, row->currency, sizeof(it.currency));
		bool known = row->type == SETTLE_TOPUP &&
			     topup_of(e, o, row->key, &t, &st);
		if (known) {
			it.transfer_id = t.id;
			named[nnamed++] = t.id;
		}
		if (!known || st != PENDING_POSTED) {
			it.kind = RECON_missing_in_ledger;
		} else {
			it.amount_ledger = t.amount;
			it.kind = strcmp(row->currency, o->currency) != 0
					  ? RECON_currency_mismatch
				  : t.amount != row->amount
					  ? RECON_amount_mismatch
					  : RECON_matched;
		}
		ret = add(out, &cap, &it);
	}
	if (nnamed > 1)
		qsort(named, nnamed, sizeof(*named), cmp_u128);

	struct transfer *page = ret ? NULL : calloc(PAGE, sizeof(*page));
	u8 *status = ret ? NULL : calloc(PAGE, 1);
	u64 from = 0;
	int n = 0;
	if (ret == 0 && (!page || !status))
		ret = -ENOMEM;
	while (ret == 0) {
		struct account_filter fl = {.account_id = o->settlement,
					    .code = o->code,
					    .timestamp_min = from,
					    .limit = PAGE,
					    .flags = ACCOUNT_FILTER_DEBITS};
		n = engine_account_transfers(e, &fl, page, status, PAGE);
		if (n < 0) {
			ret = n;
			break;
		}
		for (int i = 0; i < n && ret == 0; i++) {
			from = page[i].timestamp + 1;
			if (!(page[i].flags & TRANSFER_PENDING) ||
			    status[i] != PENDING_POSTED ||
			    (nnamed && bsearch(&page[i].id, named, nnamed,
					       sizeof(*named), cmp_u128)))
				continue;
			struct recon_item it = {
				.kind = RECON_missing_at_acquirer,
				.amount_ledger = page[i].amount,
				.transfer_id = page[i].id};
			acquirer_key_of(page[i].id, it.key);
			memcpy(it.currency, o->currency, 3);
			ret = add(out, &cap, &it);
		}
		if (n < (int)PAGE)
			break;
	}
	free(page);
	free(status);
	free(named);
	if (ret)
		recon_report_free(out);
	return ret;
}

int reconcile_book(struct engine *e, const struct recon_options *o,
		   u128 suspense, const char *reason, struct recon_report *r,
		   const char **result_name)
{
	struct account set;
	const struct ledger *l = engine_read_begin(e);
	int found = ledger_lookup_account(l, o->settlement, &set);
	engine_read_end(e);
	u128 why = acquirer_derive_id("reason:", 7, reason, strlen(reason));

	*result_name = NULL;
	if (found != 0)
		return -ENOENT;
	for (size_t i = 0; i < r->n; i++) {
		struct recon_item *it = &r->items[i];
		if (it->kind == RECON_matched ||
		    it->kind == RECON_currency_mismatch)
			continue;
		/* Positive: the acquirer settled more than the ledger holds. */
		bool more = it->amount_file > it->amount_ledger;
		u128 amount = more ? it->amount_file - it->amount_ledger
				   : it->amount_ledger - it->amount_file;
		/* One booking per key and kind, whatever the amounts (the
		 * tenth review's F2: amounts in the id let the same key be
		 * booked again with another amount). */
		u8 tag[1];
		size_t kl = strlen(it->key);
		memcpy(tag, &it->kind, 1);
		struct transfer t = {
			.id = acquirer_derive_id(tag, 1, it->key, kl),
			.debit_account_id = more ? o->settlement : suspense,
			.credit_account_id = more ? suspense : o->settlement,
			.amount = amount,
			.user_data_128 = why,
			.user_data_64 = it->line,
			.user_data_32 = it->kind,
			.ledger = set.ledger,
			.code = o->code,
		};
		u32 result = 0;
		struct engine_request req = {.op = ENGINE_CREATE_TRANSFERS,
					     .count = 1,
					     .events = &t,
					     .results = &result};
		int ret = engine_execute(e, &req);
		if (ret == 0)
			ret = req.status;
		if (ret < 0)
			return ret;
		if (result != CREATE_TRANSFER_ok &&
		    result != CREATE_TRANSFER_exists) {
			*result_name = create_transfer_result_name(result);
			return (int)result + 1;
		}
		it->booked_id = t.id;
	}
	return 0;
}

void recon_report_free(struct recon_report *r)
{
	free(r->items);
	memset(r, 0, sizeof(*r));
}
