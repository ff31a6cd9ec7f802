/*
 * reconcile.h - an acquirer's settlement file against the ledger
 * (docs/acquirer.md, "Reconciliation"): each row is matched with the
 * top-up its idempotency key names ("tpw-" and the pending transfer's id
 * in hex, engine/acquirer.h), and every posted top-up of the settlement
 * account that no row names is found too.  Outcomes: matched, missing in
 * the ledger (settled by the acquirer, not posted here), missing at the
 * acquirer (posted here, not settled), amount mismatch, currency
 * mismatch.  reconcile_book books each difference to a suspense account
 * as an ordinary transfer, idempotent (a second run books nothing new).
 */
#ifndef TPW_ENGINE_RECONCILE_H
#define TPW_ENGINE_RECONCILE_H

#include "core/settle.h"
#include "core/types.h"

#include <stddef.h>

struct engine;

#define RECON_KINDS(X)                                                         \
	X(matched)                                                             \
	X(missing_in_ledger)                                                   \
	X(missing_at_acquirer)                                                 \
	X(amount_mismatch)                                                     \
	X(currency_mismatch)

enum recon_kind {
#define RECON_ENUM_(n) RECON_##n,
	RECON_KINDS(RECON_ENUM_)
#undef RECON_ENUM_
		RECON_KIND_COUNT
};
const char *recon_kind_name(unsigned k);

struct recon_item {
	u8 kind;       /* enum recon_kind */
	unsigned line; /* the row's line; 0 for missing_at_acquirer */
	char key[SETTLE_KEY_BYTES_MAX + 1];
	char ref[SETTLE_REF_BYTES_MAX + 1];
	char currency[4];
	u128 amount_file;   /* 0 when missing in the file */
	u128 amount_ledger; /* 0 when missing in the ledger */
	u128 transfer_id;   /* the pending top-up, 0 when none */
	u128 booked_id;	    /* its suspense transfer, 0 when not booked */
};

struct recon_report {
	struct recon_item *items; /* every row's outcome, then the rest */
	size_t n;
	size_t counts[RECON_KIND_COUNT];
};

struct recon_options {
	u128 settlement; /* the acquirer's settlement account */
	u16 code;	 /* the top-ups' code */
	const char *currency;
};

/* Matches f's rows against the ledger.  0, -ENOMEM or -EIO. */
int reconcile_run(struct engine *e, const struct recon_options *o,
		  const struct settle_file *f, struct recon_report *out);

/*
 * Books every difference but currency mismatches (nothing can be booked
 * across currencies) between the settlement account and suspense, on
 * the settlement account's ledger: money the acquirer settled and the
 * ledger does not hold goes settlement -> suspense, money the ledger
 * holds and the acquirer did not settle suspense -> settlement, an
 * amount's difference the way its sign says.  Each transfer's id is
 * derived from the difference (a second run finds it: exists), its
 * user_data_128 is BLAKE2b-128 of reason, user_data_64 the file's line,
 * user_data_32 the kind.  0, or the first failure (a negative errno, or
 * the ledger's result code + 1 with *result_name set).
 */
int reconcile_book(struct engine *e, const struct recon_options *o,
		   u128 suspense, const char *reason, struct recon_report *r,
		   const char **result_name);

void recon_report_free(struct recon_report *r);

#endif
