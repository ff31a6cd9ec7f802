/*
 * test_core_ledger_model.c - the ledger against an independent reference model.
 *
 * What this proves: for thousands of random batches of account and transfer
 * events (valid and invalid, linked chains that hold and chains that break,
 * two-phase transfers posted, voided, expired and retried, balancing and
 * closing transfers, amounts near 2^128), src/core/ledger.c returns the same
 * result code for every event as a small reference model written from
 * TigerBeetle's documentation, and ends every batch in the same state: the
 * same accounts (balances, flags, timestamps), the same transfers, the same
 * pending statuses, the same next expiry, the same answers to account
 * transfer and balance queries.  On top of that it checks what the model
 * does not need to know: the ledger's own invariants, that debits equal
 * credits per ledger, that two ledgers fed the same batches have the same
 * digest, and that a snapshot read back is the same ledger and stays the same
 * ledger when both copies are fed further batches.
 *
 * The model lives in this file and was written without reading ledger.c, so
 * the two implementations only agree where they both follow the documented
 * semantics.  It is deliberately naive: plain arrays, linear scans, a linked
 * chain rolled back by restoring a copy.  Where TigerBeetle's documentation
 * leaves a corner open, the comment at that spot says what the model chose.
 *
 * Replay a failure with the seed it prints:
 *   TPW_SEED=<seed> TPW_ITERATIONS=<n> build/model/tests/test_core_ledger_model
 * TPW_VERBOSE=1 prints how often each result code came up (coverage);
 * TPW_KNOWN=1 tolerates the differences listed in build/model/DISCREPANCIES.md
 * so that a run can look past them (off by default: the test is strict).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/ledger.h"
#include "core/u128.h"

#include "banned.h"

/* ------------------------------------------------------------------------ */
/* Result names, from the same table as the enums (never from ledger.c).    */

static const char *const account_result_names[] = {
#define X(name) #name,
	CREATE_ACCOUNT_RESULTS(X)
#undef X
};

static const char *const transfer_result_names[] = {
#define X(name) #name,
	CREATE_TRANSFER_RESULTS(X)
#undef X
};

static const char *acct_name(u32 r)
{
	return r < CREATE_ACCOUNT_RESULT_COUNT ? account_result_names[r]
					       : "(out of range)";
}

static const char *xfer_name(u32 r)
{
	return r < CREATE_TRANSFER_RESULT_COUNT ? transfer_result_names[r]
						: "(out of range)";
}

/* Decimal u128 for diagnostics; a few rotating buffers so that several can
 * appear in one printf. */
static const char *dec(u128 v)
{
	static char bufs[8][U128_DEC_BYTES];
	static unsigned next;
	char *b = bufs[next++ % 8];

	u128_format_dec(v, b);
	return b;
}

/* ------------------------------------------------------------------------ */
/* Diagnosis context: where we are when a comparison fails.                 */

static struct {
	u64 seed;
	u32 iterations;
	u32 batch;
	const char *phase;
} ctx;

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr,
		"MISMATCH seed=%" PRIu64 " batch=%u phase=%s: ", ctx.seed,
		ctx.batch, ctx.phase ? ctx.phase : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static void replay_hint(void)
{
	fprintf(stderr,
		"replay: TPW_SEED=%" PRIu64 " TPW_ITERATIONS=%u "
		"build/model/tests/test_core_ledger_model\n",
		ctx.seed, ctx.iterations);
}

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			diag(__VA_ARGS__);                                     \
			replay_hint();                                         \
			fail_msg("ledger differs from the model (see above)"); \
		}                                                              \
	} while (0)

/* ------------------------------------------------------------------------ */
/* The reference model.                                                     */

#define MODEL_ACCOUNTS_MAX 128u
/* Largest batch the test sends: most are <= 50 events, a few are big, to
 * grow the ledger's tables in the middle of a batch and roll back long
 * chains. */
#define BATCH_TEST_MAX 1024u
#define NS_PER_S       1000000000ull
/* Transfer ids below this are indexed directly; the rare others by a
 * linear scan of their own short list. */
#define DIRECT_IDS (1u << 20)

struct mtransfer {
	struct transfer t;
	u8 status; /* enum pending_status; PENDING_NONE unless flags.pending */
};

struct mhist {
	u128 account_id;
	bool debit_side; /* the account was the transfer's debit account */
	struct account_balance b;
};

struct model {
	struct account acc[MODEL_ACCOUNTS_MAX];
	u32 nacc;

	struct mtransfer *tr; /* in commit (== timestamp) order */
	u32 ntr, trcap;
	u32 *direct; /* id -> index + 1, for ids < DIRECT_IDS */
	u32 *big;    /* indexes of the transfers with larger ids */
	u32 nbig, bigcap;

	u128 *failed; /* ids that failed with a transient error */
	u32 nfailed, failedcap;
	u8 *failed_direct;

	struct mhist *hist; /* balance history, in timestamp order */
	u32 nhist, histcap;

	u32 *timed; /* indexes of pending transfers with a timeout */
	u32 ntimed, timedcap;

	u64 expired_in_batch; /* coverage: deadline passed mid-batch */

	/* Linked chain in progress: enough to put everything back. */
	struct {
		bool active;
		struct account acc[MODEL_ACCOUNTS_MAX];
		u32 nacc, ntr, nhist, ntimed;
		u32 undo_idx[BATCH_TEST_MAX]; /* at most one per event */
		u8 undo_status[BATCH_TEST_MAX];
		u32 nundo;
	} chain;
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	assert_non_null(q);
	return q;
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->direct = calloc(DIRECT_IDS, sizeof(u32));
	m->failed_direct = calloc(DIRECT_IDS, 1);
	assert_non_null(m->direct);
	assert_non_null(m->failed_direct);
}

static void model_release(struct model *m)
{
	free(m->tr);
	free(m->direct);
	free(m->big);
	free(m->failed);
	free(m->failed_direct);
	free(m->hist);
	free(m->timed);
	memset(m, 0, sizeof(*m));
}

static struct account *model_account(struct model *m, u128 id)
{
	for (u32 i = 0; i < m->nacc; i++)
		if (m->acc[i].id == id)
			return &m->acc[i];
	return NULL;
}

static struct mtransfer *model_transfer(const struct model *m, u128 id)
{
	if (id < DIRECT_IDS) {
		u32 k = m->direct[(u32)id];
		return k ? &m->tr[k - 1] : NULL;
	}
	for (u32 i = 0; i < m->nbig; i++)
		if (m->tr[m->big[i]].t.id == id)
			return &m->tr[m->big[i]];
	return NULL;
}

static bool model_failed(const struct model *m, u128 id)
{
	if (id < DIRECT_IDS)
		return m->failed_direct[(u32)id] != 0;
	for (u32 i = 0; i < m->nfailed; i++)
		if (m->failed[i] == id)
			return true;
	return false;
}

static void model_add_failed(struct model *m, u128 id)
{
	if (id < DIRECT_IDS) {
		m->failed_direct[(u32)id] = 1;
		return;
	}
	if (m->nfailed == m->failedcap) {
		m->failedcap = m->failedcap ? 2 * m->failedcap : 64;
		m->failed = xrealloc(m->failed, m->failedcap * sizeof(u128));
	}
	m->failed[m->nfailed++] = id;
}

static struct mtransfer *model_append_transfer(struct model *m,
					       const struct transfer *t)
{
	struct mtransfer *mt;

	if (m->ntr == m->trcap) {
		m->trcap = m->trcap ? 2 * m->trcap : 1024;
		m->tr = xrealloc(m->tr, m->trcap * sizeof(*m->tr));
	}
	mt = &m->tr[m->ntr++];
	mt->t = *t;
	mt->status =
		(t->flags & TRANSFER_PENDING) ? PENDING_PENDING : PENDING_NONE;
	if (t->id < DIRECT_IDS) {
		m->direct[(u32)t->id] = m->ntr;
	} else {
		if (m->nbig == m->bigcap) {
			m->bigcap = m->bigcap ? 2 * m->bigcap : 64;
			m->big = xrealloc(m->big, m->bigcap * sizeof(u32));
		}
		m->big[m->nbig++] = m->ntr - 1;
	}
	if ((t->flags & TRANSFER_PENDING) && t->timeout) {
		if (m->ntimed == m->timedcap) {
			m->timedcap = m->timedcap ? 2 * m->timedcap : 256;
			m->timed =
				xrealloc(m->timed, m->timedcap * sizeof(u32));
		}
		m->timed[m->ntimed++] = m->ntr - 1;
	}
	return mt;
}

static void model_history(struct model *m, const struct account *a, u64 ts,
			  bool debit_side)
{
	struct mhist *h;

	if (!(a->flags & ACCOUNT_HISTORY))
		return;
	if (m->nhist == m->histcap) {
		m->histcap = m->histcap ? 2 * m->histcap : 1024;
		m->hist = xrealloc(m->hist, m->histcap * sizeof(*m->hist));
	}
	h = &m->hist[m->nhist++];
	memset(h, 0, sizeof(*h));
	h->account_id = a->id;
	h->debit_side = debit_side;
	h->b.debits_pending = a->debits_pending;
	h->b.debits_posted = a->debits_posted;
	h->b.credits_pending = a->credits_pending;
	h->b.credits_posted = a->credits_posted;
	h->b.timestamp = ts;
}

static u64 deadline_of(const struct transfer *t)
{
	return t->timestamp + (u64)t->timeout * NS_PER_S;
}

/* Chains: remember, then either forget or put back. */
static void chain_begin(struct model *m)
{
	memcpy(m->chain.acc, m->acc, m->nacc * sizeof(struct account));
	m->chain.nacc = m->nacc;
	m->chain.ntr = m->ntr;
	m->chain.nhist = m->nhist;
	m->chain.ntimed = m->ntimed;
	m->chain.nundo = 0;
	m->chain.active = true;
}

static void chain_note_status(struct model *m, struct mtransfer *p)
{
	if (!m->chain.active)
		return;
	assert_true(m->chain.nundo < BATCH_TEST_MAX);
	m->chain.undo_idx[m->chain.nundo] = (u32)(p - m->tr);
	m->chain.undo_status[m->chain.nundo] = p->status;
	m->chain.nundo++;
}

static void chain_rollback(struct model *m)
{
	memcpy(m->acc, m->chain.acc, m->chain.nacc * sizeof(struct account));
	m->nacc = m->chain.nacc;
	for (u32 i = m->chain.ntr; i < m->ntr; i++)
		if (m->tr[i].t.id < DIRECT_IDS)
			m->direct[(u32)m->tr[i].t.id] = 0;
	m->ntr = m->chain.ntr;
	while (m->nbig > 0 && m->big[m->nbig - 1] >= m->ntr)
		m->nbig--;
	m->nhist = m->chain.nhist;
	m->ntimed = m->chain.ntimed;
	while (m->chain.nundo > 0) {
		m->chain.nundo--;
		m->tr[m->chain.undo_idx[m->chain.nundo]].status =
			m->chain.undo_status[m->chain.nundo];
	}
	m->chain.active = false;
}

static u32 model_create_account(struct model *m, const struct account *a,
				u64 ts)
{
	const struct account *e;
	struct account *n;

	if (a->timestamp != 0)
		return CREATE_ACCOUNT_timestamp_must_be_zero;
	if (a->reserved != 0)
		return CREATE_ACCOUNT_reserved_field;
	if (a->flags & (u16)~ACCOUNT_FLAGS_KNOWN)
		return CREATE_ACCOUNT_reserved_flag;
	if (a->id == 0)
		return CREATE_ACCOUNT_id_must_not_be_zero;
	if (a->id == U128_MAX)
		return CREATE_ACCOUNT_id_must_not_be_int_max;
	e = model_account(m, a->id);
	if (e) {
		/* Compared with the account as it is now: a closing transfer
		 * may have set flags.closed since it was created. */
		if (a->flags != e->flags)
			return CREATE_ACCOUNT_exists_with_different_flags;
		if (a->user_data_128 != e->user_data_128)
			return CREATE_ACCOUNT_exists_with_different_user_data_128;
		if (a->user_data_64 != e->user_data_64)
			return CREATE_ACCOUNT_exists_with_different_user_data_64;
		if (a->user_data_32 != e->user_data_32)
			return CREATE_ACCOUNT_exists_with_different_user_data_32;
		if (a->ledger != e->ledger)
			return CREATE_ACCOUNT_exists_with_different_ledger;
		if (a->code != e->code)
			return CREATE_ACCOUNT_exists_with_different_code;
		return CREATE_ACCOUNT_exists;
	}
	if ((a->flags & ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
	    (a->flags & ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS))
		return CREATE_ACCOUNT_flags_are_mutually_exclusive;
	if (a->debits_pending != 0)
		return CREATE_ACCOUNT_debits_pending_must_be_zero;
	if (a->debits_posted != 0)
		return CREATE_ACCOUNT_debits_posted_must_be_zero;
	if (a->credits_pending != 0)
		return CREATE_ACCOUNT_credits_pending_must_be_zero;
	if (a->credits_posted != 0)
		return CREATE_ACCOUNT_credits_posted_must_be_zero;
	if (a->ledger == 0)
		return CREATE_ACCOUNT_ledger_must_not_be_zero;
	if (a->code == 0)
		return CREATE_ACCOUNT_code_must_not_be_zero;

	assert_true(m->nacc < MODEL_ACCOUNTS_MAX);
	n = &m->acc[m->nacc++];
	*n = *a;
	n->timestamp = ts;
	return CREATE_ACCOUNT_ok;
}

static bool add_overflows(u128 a, u128 b)
{
	u128 r;

	return __builtin_add_overflow(a, b, &r);
}

/* An existing transfer under the same id (create_transfers, `exists` and
 * the exists_with_different_* results, in their documented order). */
static u32 model_transfer_exists(struct model *m, const struct transfer *t,
				 const struct transfer *e)
{
	bool pv = t->flags & (TRANSFER_POST_PENDING_TRANSFER |
			      TRANSFER_VOID_PENDING_TRANSFER);
	const struct transfer *p = NULL;
	u128 dr = t->debit_account_id, cr = t->credit_account_id;
	u128 ud128 = t->user_data_128;
	u64 ud64 = t->user_data_64;
	u32 ud32 = t->user_data_32, ledger = t->ledger;
	u16 code = t->code;

	if (t->flags != e->flags)
		return CREATE_TRANSFER_exists_with_different_flags;
	if (t->pending_id != e->pending_id)
		return CREATE_TRANSFER_exists_with_different_pending_id;
	if (t->timeout != e->timeout)
		return CREATE_TRANSFER_exists_with_different_timeout;
	if (pv) {
		/* Zero fields of a post/void are "take the pending
		 * transfer's", so they compare as the pending's values. */
		const struct mtransfer *pm = model_transfer(m, e->pending_id);

		assert_non_null(pm);
		p = &pm->t;
		dr = dr ? dr : p->debit_account_id;
		cr = cr ? cr : p->credit_account_id;
		ud128 = ud128 ? ud128 : p->user_data_128;
		ud64 = ud64 ? ud64 : p->user_data_64;
		ud32 = ud32 ? ud32 : p->user_data_32;
		ledger = ledger ? ledger : p->ledger;
		code = code ? code : p->code;
	}
	if (dr != e->debit_account_id)
		return CREATE_TRANSFER_exists_with_different_debit_account_id;
	if (cr != e->credit_account_id)
		return CREATE_TRANSFER_exists_with_different_credit_account_id;
	if (t->flags & (TRANSFER_BALANCING_DEBIT | TRANSFER_BALANCING_CREDIT)) {
		/* The request's amount is an upper bound of what moved. */
		if (t->amount < e->amount)
			return CREATE_TRANSFER_exists_with_different_amount;
	} else if (t->flags & TRANSFER_POST_PENDING_TRANSFER) {
		/* Documented under `exists`: a partial post must be retried
		 * with the posted amount; a full post with any amount >= the
		 * pending amount (AMOUNT_MAX included). */
		if (e->amount < p->amount) {
			if (t->amount != e->amount)
				return CREATE_TRANSFER_exists_with_different_amount;
		} else if (t->amount < p->amount) {
			return CREATE_TRANSFER_exists_with_different_amount;
		}
	} else if (t->flags & TRANSFER_VOID_PENDING_TRANSFER) {
		u128 amount = t->amount ? t->amount : p->amount;

		if (amount != e->amount)
			return CREATE_TRANSFER_exists_with_different_amount;
	} else if (t->amount != e->amount) {
		return CREATE_TRANSFER_exists_with_different_amount;
	}
	if (ud128 != e->user_data_128)
		return CREATE_TRANSFER_exists_with_different_user_data_128;
	if (ud64 != e->user_data_64)
		return CREATE_TRANSFER_exists_with_different_user_data_64;
	if (ud32 != e->user_data_32)
		return CREATE_TRANSFER_exists_with_different_user_data_32;
	if (ledger != e->ledger)
		return CREATE_TRANSFER_exists_with_different_ledger;
	if (code != e->code)
		return CREATE_TRANSFER_exists_with_different_code;
	return CREATE_TRANSFER_exists;
}

static u32 model_post_or_void(struct model *m, const struct transfer *t, u64 ts)
{
	bool post = t->flags & TRANSFER_POST_PENDING_TRANSFER;
	struct mtransfer *pm;
	struct transfer p, n;
	struct account *dr, *cr;
	u128 amount;

	if (t->pending_id == 0)
		return CREATE_TRANSFER_pending_id_must_not_be_zero;
	if (t->pending_id == U128_MAX)
		return CREATE_TRANSFER_pending_id_must_not_be_int_max;
	if (t->pending_id == t->id)
		return CREATE_TRANSFER_pending_id_must_be_different;
	if (t->timeout != 0)
		return CREATE_TRANSFER_timeout_reserved_for_pending_transfer;
	pm = model_transfer(m, t->pending_id);
	if (!pm)
		return CREATE_TRANSFER_pending_transfer_not_found;
	p = pm->t;
	if (!(p.flags & TRANSFER_PENDING))
		return CREATE_TRANSFER_pending_transfer_not_pending;
	if (t->debit_account_id && t->debit_account_id != p.debit_account_id)
		return CREATE_TRANSFER_pending_transfer_has_different_debit_account_id;
	if (t->credit_account_id && t->credit_account_id != p.credit_account_id)
		return CREATE_TRANSFER_pending_transfer_has_different_credit_account_id;
	if (t->ledger && t->ledger != p.ledger)
		return CREATE_TRANSFER_pending_transfer_has_different_ledger;
	if (t->code && t->code != p.code)
		return CREATE_TRANSFER_pending_transfer_has_different_code;
	if (post)
		amount = t->amount == AMOUNT_MAX ? p.amount : t->amount;
	else
		amount = t->amount == 0 ? p.amount : t->amount;
	if (amount > p.amount)
		return CREATE_TRANSFER_exceeds_pending_transfer_amount;
	if (!post && amount != p.amount)
		return CREATE_TRANSFER_pending_transfer_has_different_amount;
	if (pm->status == PENDING_POSTED)
		return CREATE_TRANSFER_pending_transfer_already_posted;
	if (pm->status == PENDING_VOIDED)
		return CREATE_TRANSFER_pending_transfer_already_voided;
	if (pm->status == PENDING_EXPIRED)
		return CREATE_TRANSFER_pending_transfer_expired;
	/* "Transfers expire exactly at their expiry time ... Expired
	 * transfers cannot be manually posted or voided": this covers a
	 * deadline that falls between the batch's first event and this one,
	 * which the expiry pass before the batch did not reach. */
	if (p.timeout && deadline_of(&p) <= ts) {
		m->expired_in_batch++;
		return CREATE_TRANSFER_pending_transfer_expired;
	}
	dr = model_account(m, p.debit_account_id);
	cr = model_account(m, p.credit_account_id);
	assert_non_null(dr);
	assert_non_null(cr);
	/* A closed account rejects everything but voiding a pending
	 * transfer (Account.flags.closed). */
	if (post && (dr->flags & ACCOUNT_CLOSED))
		return CREATE_TRANSFER_debit_account_already_closed;
	if (post && (cr->flags & ACCOUNT_CLOSED))
		return CREATE_TRANSFER_credit_account_already_closed;

	n = *t;
	n.debit_account_id = p.debit_account_id;
	n.credit_account_id = p.credit_account_id;
	n.amount = amount;
	n.ledger = p.ledger;
	n.code = p.code;
	if (!n.user_data_128)
		n.user_data_128 = p.user_data_128;
	if (!n.user_data_64)
		n.user_data_64 = p.user_data_64;
	if (!n.user_data_32)
		n.user_data_32 = p.user_data_32;
	n.timestamp = ts;

	dr->debits_pending -= p.amount;
	cr->credits_pending -= p.amount;
	if (post) {
		dr->debits_posted += amount;
		cr->credits_posted += amount;
	} else {
		if (p.flags & TRANSFER_CLOSING_DEBIT)
			dr->flags &= (u16)~ACCOUNT_CLOSED;
		if (p.flags & TRANSFER_CLOSING_CREDIT)
			cr->flags &= (u16)~ACCOUNT_CLOSED;
	}
	chain_note_status(m, pm);
	pm->status = post ? PENDING_POSTED : PENDING_VOIDED;
	model_append_transfer(m, &n); /* may move m->tr; pm is dead */
	model_history(m, dr, ts, true);
	model_history(m, cr, ts, false);
	return CREATE_TRANSFER_ok;
}

static u32 model_create_transfer(struct model *m, const struct transfer *t,
				 u64 ts)
{
	const u16 pv_flags =
		TRANSFER_POST_PENDING_TRANSFER | TRANSFER_VOID_PENDING_TRANSFER;
	const u16 closing = TRANSFER_CLOSING_DEBIT | TRANSFER_CLOSING_CREDIT;
	const u16 balancing =
		TRANSFER_BALANCING_DEBIT | TRANSFER_BALANCING_CREDIT;
	const struct mtransfer *e;
	struct account *dr, *cr;
	struct transfer n;
	u128 amount;

	if (t->timestamp != 0)
		return CREATE_TRANSFER_timestamp_must_be_zero;
	if (t->flags & (u16)~TRANSFER_FLAGS_KNOWN)
		return CREATE_TRANSFER_reserved_flag;
	if (t->id == 0)
		return CREATE_TRANSFER_id_must_not_be_zero;
	if (t->id == U128_MAX)
		return CREATE_TRANSFER_id_must_not_be_int_max;
	e = model_transfer(m, t->id);
	if (e)
		return model_transfer_exists(m, t, &e->t);
	if (model_failed(m, t->id))
		return CREATE_TRANSFER_id_already_failed;
	if ((t->flags & TRANSFER_PENDING) && (t->flags & pv_flags))
		return CREATE_TRANSFER_flags_are_mutually_exclusive;
	if ((t->flags & pv_flags) == pv_flags)
		return CREATE_TRANSFER_flags_are_mutually_exclusive;
	if ((t->flags & pv_flags) && (t->flags & (closing | balancing)))
		return CREATE_TRANSFER_flags_are_mutually_exclusive;
	if (t->flags & pv_flags)
		return model_post_or_void(m, t, ts);

	if (t->debit_account_id == 0)
		return CREATE_TRANSFER_debit_account_id_must_not_be_zero;
	if (t->debit_account_id == U128_MAX)
		return CREATE_TRANSFER_debit_account_id_must_not_be_int_max;
	if (t->credit_account_id == 0)
		return CREATE_TRANSFER_credit_account_id_must_not_be_zero;
	if (t->credit_account_id == U128_MAX)
		return CREATE_TRANSFER_credit_account_id_must_not_be_int_max;
	if (t->debit_account_id == t->credit_account_id)
		return CREATE_TRANSFER_accounts_must_be_different;
	if (t->pending_id != 0)
		return CREATE_TRANSFER_pending_id_must_be_zero;
	if (!(t->flags & TRANSFER_PENDING)) {
		if (t->timeout != 0)
			return CREATE_TRANSFER_timeout_reserved_for_pending_transfer;
		if (t->flags & closing)
			return CREATE_TRANSFER_closing_transfer_must_be_pending;
	}
	if (t->ledger == 0)
		return CREATE_TRANSFER_ledger_must_not_be_zero;
	if (t->code == 0)
		return CREATE_TRANSFER_code_must_not_be_zero;
	dr = model_account(m, t->debit_account_id);
	if (!dr)
		return CREATE_TRANSFER_debit_account_not_found;
	cr = model_account(m, t->credit_account_id);
	if (!cr)
		return CREATE_TRANSFER_credit_account_not_found;
	if (dr->ledger != cr->ledger)
		return CREATE_TRANSFER_accounts_must_have_the_same_ledger;
	if (t->ledger != dr->ledger)
		return CREATE_TRANSFER_transfer_must_have_the_same_ledger_as_accounts;
	if (dr->flags & ACCOUNT_CLOSED)
		return CREATE_TRANSFER_debit_account_already_closed;
	if (cr->flags & ACCOUNT_CLOSED)
		return CREATE_TRANSFER_credit_account_already_closed;

	/* Balancing: move at most `amount`, only as much as keeps the
	 * account's debits (credits) within its posted credits (debits). */
	amount = t->amount;
	if (t->flags & TRANSFER_BALANCING_DEBIT) {
		u128 used = dr->debits_posted + dr->debits_pending;
		u128 room = dr->credits_posted > used
				    ? dr->credits_posted - used
				    : 0;
		amount = u128_min(amount, room);
	}
	if (t->flags & TRANSFER_BALANCING_CREDIT) {
		u128 used = cr->credits_posted + cr->credits_pending;
		u128 room =
			cr->debits_posted > used ? cr->debits_posted - used : 0;
		amount = u128_min(amount, room);
	}
	if (t->flags & TRANSFER_PENDING) {
		if (add_overflows(dr->debits_pending, amount))
			return CREATE_TRANSFER_overflows_debits_pending;
		if (add_overflows(cr->credits_pending, amount))
			return CREATE_TRANSFER_overflows_credits_pending;
	}
	if (add_overflows(dr->debits_posted, amount))
		return CREATE_TRANSFER_overflows_debits_posted;
	if (add_overflows(cr->credits_posted, amount))
		return CREATE_TRANSFER_overflows_credits_posted;
	if (add_overflows(dr->debits_pending + dr->debits_posted, amount))
		return CREATE_TRANSFER_overflows_debits;
	if (add_overflows(cr->credits_pending + cr->credits_posted, amount))
		return CREATE_TRANSFER_overflows_credits;
	/* timestamp + timeout in ns must stay below 2^63. */
	if ((u128)ts + (u128)t->timeout * NS_PER_S > (u128)INT64_MAX)
		return CREATE_TRANSFER_overflows_timeout;
	if ((dr->flags & ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
	    dr->debits_pending + dr->debits_posted + amount >
		    dr->credits_posted)
		return CREATE_TRANSFER_exceeds_credits;
	if ((cr->flags & ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
	    cr->credits_pending + cr->credits_posted + amount >
		    cr->debits_posted)
		return CREATE_TRANSFER_exceeds_debits;

	n = *t;
	n.amount = amount;
	n.timestamp = ts;
	if (t->flags & TRANSFER_PENDING) {
		dr->debits_pending += amount;
		cr->credits_pending += amount;
	} else {
		dr->debits_posted += amount;
		cr->credits_posted += amount;
	}
	if (t->flags & TRANSFER_CLOSING_DEBIT)
		dr->flags |= ACCOUNT_CLOSED;
	if (t->flags & TRANSFER_CLOSING_CREDIT)
		cr->flags |= ACCOUNT_CLOSED;
	model_append_transfer(m, &n);
	model_history(m, dr, ts, true);
	model_history(m, cr, ts, false);
	return CREATE_TRANSFER_ok;
}

/* Errors that depend on the state at the time, so the id is burnt
 * (id_already_failed). */
static bool transient(u32 r)
{
	switch (r) {
	case CREATE_TRANSFER_debit_account_not_found:
	case CREATE_TRANSFER_credit_account_not_found:
	case CREATE_TRANSFER_pending_transfer_not_found:
	case CREATE_TRANSFER_exceeds_credits:
	case CREATE_TRANSFER_exceeds_debits:
	case CREATE_TRANSFER_debit_account_already_closed:
	case CREATE_TRANSFER_credit_account_already_closed: return true;
	default: return false;
	}
}

static int cmp_expiry(const void *a, const void *b, void *arg)
{
	const struct model *m = arg;
	const struct transfer *x = &m->tr[*(const u32 *)a].t;
	const struct transfer *y = &m->tr[*(const u32 *)b].t;
	u64 dx = deadline_of(x), dy = deadline_of(y);

	if (dx != dy)
		return dx < dy ? -1 : 1;
	return x->timestamp < y->timestamp ? -1 : x->timestamp > y->timestamp;
}

/* Expire every pending transfer with deadline <= ts, in deadline order. */
static void model_expire(struct model *m, u64 ts)
{
	u32 keep = 0, ndue = 0;
	u32 *due = malloc((m->ntimed + 1) * sizeof(u32));

	assert_non_null(due);
	for (u32 i = 0; i < m->ntimed; i++) {
		struct mtransfer *p = &m->tr[m->timed[i]];

		if (p->status != PENDING_PENDING)
			continue;
		if (deadline_of(&p->t) <= ts)
			due[ndue++] = m->timed[i];
		else
			m->timed[keep++] = m->timed[i];
	}
	m->ntimed = keep;
	qsort_r(due, ndue, sizeof(u32), cmp_expiry, m);
	for (u32 i = 0; i < ndue; i++) {
		struct mtransfer *p = &m->tr[due[i]];
		struct account *dr = model_account(m, p->t.debit_account_id);
		struct account *cr = model_account(m, p->t.credit_account_id);

		dr->debits_pending -= p->t.amount;
		cr->credits_pending -= p->t.amount;
		if (p->t.flags & TRANSFER_CLOSING_DEBIT)
			dr->flags &= (u16)~ACCOUNT_CLOSED;
		if (p->t.flags & TRANSFER_CLOSING_CREDIT)
			cr->flags &= (u16)~ACCOUNT_CLOSED;
		p->status = PENDING_EXPIRED;
	}
	free(due);
}

static u64 model_next_expiry(const struct model *m)
{
	u64 best = 0;

	for (u32 i = 0; i < m->ntimed; i++) {
		const struct mtransfer *p = &m->tr[m->timed[i]];
		u64 d = deadline_of(&p->t);

		if (p->status == PENDING_PENDING && (best == 0 || d < best))
			best = d;
	}
	return best;
}

/*
 * One batch, with TigerBeetle's linked-chain rules: the last event of a
 * batch may not be linked (linked_event_chain_open, which also fails the
 * rest of its chain); the first failure in a chain rolls back the events
 * before it (linked_event_failed) and fails the ones after it.
 */
static void model_execute(struct model *m, bool transfers, const void *events,
			  u32 n, u64 ts, u32 *results)
{
	const u32 ok = 0, chain_failed = CREATE_TRANSFER_linked_event_failed,
		  chain_open = CREATE_TRANSFER_linked_event_chain_open;
	u64 first = ts - n + 1;
	int chain = -1;
	bool broken = false;

	_Static_assert((int)CREATE_TRANSFER_linked_event_failed ==
			       (int)CREATE_ACCOUNT_linked_event_failed,
		       "same code in both tables");
	_Static_assert((int)CREATE_TRANSFER_linked_event_chain_open ==
			       (int)CREATE_ACCOUNT_linked_event_chain_open,
		       "same code in both tables");
	if (transfers)
		model_expire(m, first);
	for (u32 i = 0; i < n; i++) {
		const struct account *a = (const struct account *)events + i;
		const struct transfer *t = (const struct transfer *)events + i;
		u16 flags = transfers ? t->flags : a->flags;
		bool linked = flags & 1; /* linked is bit 0 in both */
		u32 r;

		if (linked && chain < 0) {
			chain = (int)i;
			broken = false;
			chain_begin(m);
		}
		/* Both may apply to the last event of a broken chain.  The
		 * documented list puts linked_event_failed first, but
		 * TigerBeetle's state machine (execute) tests "linked and
		 * last" before "chain broken", in every release; the model
		 * follows what TigerBeetle does. */
		if (linked && i == n - 1)
			r = chain_open;
		else if (broken)
			r = chain_failed;
		else if (transfers)
			r = model_create_transfer(m, t, first + i);
		else
			r = model_create_account(m, a, first + i);
		if (r != ok && chain >= 0 && !broken) {
			broken = true;
			chain_rollback(m);
			for (u32 j = (u32)chain; j < i; j++)
				results[j] = chain_failed;
		}
		/* The model burns the id of a transient failure even inside a
		 * chain that rolls back, so that a retry of the chain gets the
		 * same answer ("retrying a transfer will not produce a
		 * different outcome"). */
		if (transfers && transient(r))
			model_add_failed(m, t->id);
		results[i] = r;
		if (chain >= 0 && (!linked || r == chain_open)) {
			m->chain.active = false; /* kept, or already undone */
			chain = -1;
			broken = false;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Random generation.                                                       */

static u64 rng_state;

static u64 rnd64(void)
{
	/* splitmix64 */
	u64 z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static u32 rnd(u32 n)
{
	return n ? (u32)(rnd64() % n) : 0;
}

static bool chance(u32 percent)
{
	return rnd(100) < percent;
}

/* Account pool: ids 1..20 on ledger 1, 21..24 on ledger 2, 25..28 on
 * ledger 3 (where huge amounts go, so overflows do not poison the rest),
 * 29..32 created late or never, 33..34 never. */
#define POOL_CREATE 32u
#define POOL_ALL    34u
#define HUGE_FIRST  25u

static u32 ledger_of(u32 id)
{
	return id <= 20 ? 1 : id <= 24 ? 2 : 3;
}

static struct account account_template(u32 id)
{
	struct account a;

	memset(&a, 0, sizeof(a));
	a.id = id;
	a.ledger = ledger_of(id);
	a.code = (u16)(1 + id % 3);
	a.user_data_128 = (u128)id * 1000;
	a.user_data_64 = id * 7u;
	a.user_data_32 = id;
	if (id % 7 == 1)
		a.flags |= ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
	else if (id % 7 == 2)
		a.flags |= ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS;
	if (id % 3 == 0)
		a.flags |= ACCOUNT_HISTORY;
	if (id == 19)
		a.flags |= ACCOUNT_CLOSED;
	return a;
}

static struct account gen_account(void)
{
	u32 id = 1 + rnd(POOL_CREATE);
	struct account a = account_template(id);

	switch (rnd(40)) {
	case 0: a.id = 0; break;
	case 1: a.id = U128_MAX; break;
	case 2: a.reserved = 1 + rnd(5); break;
	case 3: a.flags |= (u16)(1u << 4); break; /* imported: reserved */
	case 4: a.flags |= (u16)(1u << (6 + rnd(10))); break;
	case 5:
		a.flags |= ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS |
			   ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS;
		break;
	case 6: a.debits_pending = 1; break;
	case 7: a.debits_posted = 1; break;
	case 8: a.credits_pending = 1; break;
	case 9: a.credits_posted = 1; break;
	case 10: a.ledger = 0; break;
	case 11: a.code = 0; break;
	case 12: a.user_data_128++; break;
	case 13: a.user_data_64++; break;
	case 14: a.user_data_32++; break;
	case 15: a.ledger++; break;
	case 16: a.code++; break;
	case 17: a.flags ^= ACCOUNT_HISTORY; break;
	case 18: a.timestamp = 1 + rnd(1000); break;
	case 19:
		a.id = 1000 + rnd(60);
		a.flags &= (u16)~ACCOUNT_CLOSED;
		break;
	default: break;
	}
	return a;
}

#define RECENT_MAX   256u
#define PENDINGS_MAX 4096u

struct gen {
	u128 next_tid;
	struct transfer recent[RECENT_MAX]; /* submitted transfer events */
	u32 nrecent;
	u128 pendings[PENDINGS_MAX]; /* ids of pending transfers created */
	u32 npendings;
	u128 focus; /* pending transfer to aim post/void at, or 0 */
};

static u32 pick_account(void)
{
	if (chance(3))
		return 29 + rnd(POOL_ALL - 28); /* late or never created */
	return 1 + rnd(24);
}

/* Mostly a pair on the same ledger, so that most transfers get past the
 * ledger checks to the interesting ones. */
static void pick_pair(u128 *dr, u128 *cr)
{
	u32 d = pick_account(), c;

	if (chance(90) && d <= 24) {
		u32 lo = d <= 20 ? 1 : 21, span = d <= 20 ? 20 : 4;

		c = lo + rnd(span);
	} else {
		c = pick_account();
	}
	*dr = d;
	*cr = c;
}

static u128 pick_pending(struct gen *g, const struct model *m)
{
	u32 r = rnd(100);

	if (g->focus && r < 50)
		return g->focus;
	if (g->npendings == 0 || r < 5)
		return g->next_tid + 100 + rnd(100); /* not found */
	if (r < 10 && m->ntr)
		return m->tr[rnd(m->ntr)].t.id; /* maybe not pending */
	if (r < 70) {
		u32 k = g->npendings < 16 ? g->npendings : 16;
		return g->pendings[(g->npendings - 1 - rnd(k)) % PENDINGS_MAX];
	}
	return g->pendings[rnd(g->npendings < PENDINGS_MAX ? g->npendings
							   : PENDINGS_MAX)];
}

static u128 small_amount(void)
{
	return chance(5) ? 0 : 1 + rnd(chance(20) ? 2000 : 100);
}

static void base_transfer(struct gen *g, struct transfer *t)
{
	memset(t, 0, sizeof(*t));
	t->id = g->next_tid++;
	/* Now and then an id with high bits set: the same counter, so still
	 * unique, but it exercises the ledger's hashing of all 128 bits. */
	if (chance(2))
		t->id |= (u128)(0x8000000000000000ull | rnd64()) << 64;
	pick_pair(&t->debit_account_id, &t->credit_account_id);
	t->amount = small_amount();
	t->ledger = ledger_of(t->debit_account_id <= POOL_CREATE
				      ? (u32)t->debit_account_id
				      : 1);
	t->code = (u16)(1 + rnd(3));
	if (chance(30))
		t->user_data_128 = 1 + rnd(5);
	if (chance(30))
		t->user_data_64 = 1 + rnd(5);
	if (chance(30))
		t->user_data_32 = 1 + rnd(5);
}

static void gen_post_or_void(struct gen *g, const struct model *m,
			     struct transfer *t, bool post)
{
	const struct mtransfer *p;
	u128 pamount = 50;

	base_transfer(g, t);
	t->flags = post ? TRANSFER_POST_PENDING_TRANSFER
			: TRANSFER_VOID_PENDING_TRANSFER;
	t->pending_id = pick_pending(g, m);
	p = model_transfer(m, t->pending_id);
	if (p)
		pamount = p->t.amount;
	t->debit_account_id = 0;
	t->credit_account_id = 0;
	t->ledger = 0;
	t->code = 0;
	if (p && chance(20)) {
		t->debit_account_id = p->t.debit_account_id;
		t->credit_account_id = p->t.credit_account_id;
		t->ledger = p->t.ledger;
		t->code = p->t.code;
	}
	switch (rnd(12)) {
	case 0: t->debit_account_id = pick_account(); break;
	case 1: t->credit_account_id = pick_account(); break;
	case 2: t->ledger = 1 + rnd(3); break;
	case 3: t->code = (u16)(1 + rnd(3)); break;
	default: break;
	}
	if (post) {
		switch (rnd(6)) {
		case 0: t->amount = AMOUNT_MAX; break;
		case 1: t->amount = pamount; break;
		case 2:
			t->amount = pamount ? rnd((u32)(pamount % 100000)) : 0;
			break;
		case 3: t->amount = pamount + 1; break;
		case 4: t->amount = 0; break;
		default: t->amount = AMOUNT_MAX; break;
		}
	} else {
		switch (rnd(5)) {
		case 0: t->amount = pamount; break;
		case 1: t->amount = pamount + 1; break;
		case 2: t->amount = pamount ? pamount - 1 : 1; break;
		case 3: t->amount = AMOUNT_MAX; break;
		default: t->amount = 0; break;
		}
	}
}

static void gen_invalid(struct gen *g, const struct model *m,
			struct transfer *t)
{
	base_transfer(g, t);
	switch (rnd(22)) {
	case 0: t->id = 0; break;
	case 1: t->id = U128_MAX; break;
	case 2: t->debit_account_id = 0; break;
	case 3: t->debit_account_id = U128_MAX; break;
	case 4: t->credit_account_id = 0; break;
	case 5: t->credit_account_id = U128_MAX; break;
	case 6: t->credit_account_id = t->debit_account_id; break;
	case 7: t->pending_id = 1 + rnd(100); break;
	case 8: t->timeout = 1 + rnd(5); break;
	case 9: t->flags |= TRANSFER_CLOSING_DEBIT; break;
	case 10: t->ledger = 0; break;
	case 11: t->code = 0; break;
	case 12: t->ledger = 1 + (t->ledger % 3); break; /* mismatch */
	case 13: t->flags |= (u16)(1u << (8 + rnd(8))); break;
	case 14: t->timestamp = 1 + rnd(100); break;
	case 15:
		t->flags |= TRANSFER_PENDING | TRANSFER_POST_PENDING_TRANSFER;
		break;
	case 16:
		gen_post_or_void(g, m, t, true);
		t->flags |= TRANSFER_VOID_PENDING_TRANSFER;
		break;
	case 17:
		gen_post_or_void(g, m, t, chance(50));
		t->flags |= chance(50) ? TRANSFER_BALANCING_DEBIT
				       : TRANSFER_CLOSING_CREDIT;
		break;
	case 18:
		gen_post_or_void(g, m, t, true);
		t->pending_id = 0;
		break;
	case 19:
		gen_post_or_void(g, m, t, false);
		t->pending_id = U128_MAX;
		break;
	case 20:
		gen_post_or_void(g, m, t, true);
		t->pending_id = t->id;
		break;
	default:
		gen_post_or_void(g, m, t, true);
		t->timeout = 1;
		break;
	}
}

static void gen_retry(struct gen *g, struct transfer *t)
{
	if (g->nrecent == 0) {
		base_transfer(g, t);
		return;
	}
	*t = g->recent[rnd(g->nrecent < RECENT_MAX ? g->nrecent : RECENT_MAX)];
	if (chance(40)) {
		switch (rnd(12)) {
		case 0: t->flags ^= TRANSFER_LINKED; break;
		case 1: t->pending_id += 1; break;
		case 2: t->timeout += 1; break;
		case 3: t->debit_account_id = pick_account(); break;
		case 4: t->credit_account_id = pick_account(); break;
		case 5: t->amount += 1; break;
		case 6: t->amount = t->amount ? t->amount - 1 : 0; break;
		case 7: t->user_data_128 += 1; break;
		case 8: t->user_data_64 += 1; break;
		case 9: t->user_data_32 += 1; break;
		case 10: t->ledger += 1; break;
		default: t->code = (u16)(t->code + 1); break;
		}
	}
}

static void gen_transfer(struct gen *g, const struct model *m,
			 struct transfer *t)
{
	u32 k = rnd(100);

	if (k < 28) {
		base_transfer(g, t);
	} else if (k < 42) {
		base_transfer(g, t);
		t->flags |= TRANSFER_PENDING;
		if (chance(50))
			t->timeout = 1 + rnd(8);
		/* Closing transfers mostly time out, or accounts would stay
		 * closed for good and starve the rest of the run. */
		if (chance(4)) {
			t->flags |= chance(50) ? TRANSFER_CLOSING_DEBIT
					       : TRANSFER_CLOSING_CREDIT;
			if (chance(85))
				t->timeout = 1 + rnd(4);
		}
		if (chance(1))
			t->timeout = UINT32_MAX - rnd(1000000);
	} else if (k < 54) {
		gen_post_or_void(g, m, t, true);
	} else if (k < 62) {
		gen_post_or_void(g, m, t, false);
	} else if (k < 73) {
		gen_retry(g, t);
	} else if (k < 80) {
		base_transfer(g, t);
		t->flags |= chance(50) ? TRANSFER_BALANCING_DEBIT
				       : TRANSFER_BALANCING_CREDIT;
		if (chance(20))
			t->flags |= TRANSFER_BALANCING_DEBIT |
				    TRANSFER_BALANCING_CREDIT;
		if (chance(30))
			t->flags |= TRANSFER_PENDING;
		if (chance(50))
			t->amount = AMOUNT_MAX;
	} else if (k < 86) {
		/* Huge amounts among their own accounts, to reach every
		 * overflows_* result. */
		base_transfer(g, t);
		t->debit_account_id = HUGE_FIRST + rnd(4);
		t->credit_account_id = HUGE_FIRST + rnd(4);
		t->ledger = 3;
		switch (rnd(4)) {
		case 0: t->amount = U128_MAX - rnd(1000); break;
		case 1: t->amount = ((u128)1 << 127) + rnd(1000); break;
		case 2: t->amount = ((u128)1 << 126) + rnd(1000); break;
		default: t->amount = rnd(1000); break;
		}
		if (chance(50))
			t->flags |= TRANSFER_PENDING;
	} else {
		gen_invalid(g, m, t);
	}
}

static void gen_remember(struct gen *g, const struct transfer *events,
			 const u32 *results, u32 n)
{
	for (u32 i = 0; i < n; i++) {
		g->recent[g->nrecent++ % RECENT_MAX] = events[i];
		if (results[i] == CREATE_TRANSFER_ok &&
		    (events[i].flags & TRANSFER_PENDING))
			g->pendings[g->npendings++ % PENDINGS_MAX] =
				events[i].id;
	}
	if (g->nrecent >= 2 * RECENT_MAX)
		g->nrecent -= RECENT_MAX;
	if (g->npendings >= 2 * PENDINGS_MAX)
		g->npendings -= PENDINGS_MAX;
}

/* ------------------------------------------------------------------------ */
/* Comparisons.                                                             */

static void print_transfer(const char *label, const struct transfer *t)
{
	fprintf(stderr,
		"  %s id=%s dr=%s cr=%s amount=%s pending_id=%s ud128=%s "
		"ud64=%" PRIu64 " ud32=%u timeout=%u ledger=%u code=%u "
		"flags=0x%x ts=%" PRIu64 "\n",
		label, dec(t->id), dec(t->debit_account_id),
		dec(t->credit_account_id), dec(t->amount), dec(t->pending_id),
		dec(t->user_data_128), t->user_data_64, t->user_data_32,
		t->timeout, t->ledger, t->code, t->flags, t->timestamp);
}

static void print_account(const char *label, const struct account *a)
{
	fprintf(stderr,
		"  %s id=%s dp=%s dP=%s cp=%s cP=%s ud128=%s ud64=%" PRIu64
		" ud32=%u reserved=%u ledger=%u code=%u flags=0x%x ts=%" PRIu64
		"\n",
		label, dec(a->id), dec(a->debits_pending),
		dec(a->debits_posted), dec(a->credits_pending),
		dec(a->credits_posted), dec(a->user_data_128), a->user_data_64,
		a->user_data_32, a->reserved, a->ledger, a->code, a->flags,
		a->timestamp);
}

/*
 * Differences reported in build/model/DISCREPANCIES.md (model answer,
 * ledger answer); all fixed in ledger.c since, kept for TPW_KNOWN runs
 * against older builds.  Tolerated only with TPW_KNOWN=1, so that a run
 * can look past them for new ones; both answers are non-transient failures,
 * so the model and the ledger stay in the same state.
 */
static const struct {
	u32 want, got;
} known_transfer_diffs[] = {
	/* D1: void amount > pending amount. */
	{CREATE_TRANSFER_exceeds_pending_transfer_amount,
	 CREATE_TRANSFER_pending_transfer_has_different_amount},
	/* D2: *_posted overflow checks skipped for pending transfers. */
	{CREATE_TRANSFER_overflows_credits_posted,
	 CREATE_TRANSFER_overflows_credits},
	{CREATE_TRANSFER_overflows_debits_posted,
	 CREATE_TRANSFER_overflows_debits},
	{CREATE_TRANSFER_overflows_credits_posted,
	 CREATE_TRANSFER_overflows_debits},
	/* D4: retried post/void with user_data 0 vs an existing transfer
	 * that got its user_data from the request, not the pending one. */
	{CREATE_TRANSFER_exists_with_different_user_data_128,
	 CREATE_TRANSFER_exists},
	{CREATE_TRANSFER_exists_with_different_user_data_64,
	 CREATE_TRANSFER_exists},
	{CREATE_TRANSFER_exists_with_different_user_data_32,
	 CREATE_TRANSFER_exists},
};

static u64 known_tolerated;

static bool known_diff(bool transfers, u32 want, u32 got)
{
	static int enabled = -1;

	if (enabled < 0)
		enabled = getenv("TPW_KNOWN") != NULL;
	if (!enabled || !transfers)
		return false;
	for (size_t i = 0;
	     i < sizeof(known_transfer_diffs) / sizeof(known_transfer_diffs[0]);
	     i++) {
		if (known_transfer_diffs[i].want == want &&
		    known_transfer_diffs[i].got == got) {
			known_tolerated++;
			return true;
		}
	}
	return false;
}

static void check_results(bool transfers, const void *events, u32 n,
			  const u32 *want, const u32 *got, const char *who)
{
	for (u32 i = 0; i < n; i++) {
		if (want[i] == got[i] || known_diff(transfers, want[i], got[i]))
			continue;
		diag("%s event %u of %u: expected %s, got %s (%u)", who, i, n,
		     transfers ? xfer_name(want[i]) : acct_name(want[i]),
		     transfers ? xfer_name(got[i]) : acct_name(got[i]), got[i]);
		fprintf(stderr, "  the batch (expected / got per event)%s:\n",
			n > 60 ? ", around the event" : "");
		for (u32 j = n > 60 && i > 40 ? i - 40 : 0;
		     j < n && (n <= 60 || j <= i + 5); j++) {
			char label[160];

			snprintf(label, sizeof(label), "[%u] %s/%s", j,
				 transfers ? xfer_name(want[j])
					   : acct_name(want[j]),
				 transfers ? xfer_name(got[j])
					   : acct_name(got[j]));
			if (transfers)
				print_transfer(label,
					       (const struct transfer *)events +
						       j);
			else
				print_account(label,
					      (const struct account *)events +
						      j);
		}
		replay_hint();
		fail_msg("result code differs from the model (see above)");
	}
}

/* ------------------------------------------------------------------------ */
/* A cold tier in memory: what the store promises, written naively.  The    */
/* tiered ledger drains into it after every batch and pulse; the store      */
/* commits the drains, sometimes several behind; the ledger then evicts     */
/* what the store holds.                                                    */

struct fake_op {
	u8 type; /* 1 transfer, 2 status, 3 failed, 4 account */
	u8 status;
	bool has_dr, has_cr;
	u32 drain;
	struct transfer t;
	struct account_balance dr, cr;
	struct account a;
};

struct fake_rec {
	struct ledger_cold_item it;
	u128 id;
	bool used;
};

struct fake_ix {
	u128 account;
	struct transfer t;
	bool has_point;
	struct account_balance point;
};

struct fake_store {
	struct fake_op *log; /* drained, not yet committed */
	u32 nlog, caplog;
	u32 draining; /* drain number the ops being recorded belong to */
	struct fake_rec *rec; /* committed, open addressing by id */
	u32 recmask, nrec;
	struct fake_ix *ix; /* committed, in commit (timestamp) order */
	u32 nix, capix;
	struct ledger_mark *marks; /* marks[k - 1] of drain k */
	u32 nmarks, capmarks;
	u32 committed;	     /* drains committed */
	struct account *acc; /* committed accounts */
	u32 nacc, capacc;
	u32 restarts;
	struct ledger_sums sums; /* of what was committed */
	u32 digests;		 /* comparisons made */
	u64 gets, evictions;
};

static struct fake_rec *fake_slot(struct fake_store *fs, u128 id)
{
	u32 i = (u32)(id * 0x9e3779b97f4a7c15ull >> 40) & fs->recmask;

	while (fs->rec[i].used && fs->rec[i].id != id)
		i = (i + 1) & fs->recmask;
	return &fs->rec[i];
}

static void fake_put(struct fake_store *fs, u128 id,
		     const struct ledger_cold_item *it)
{
	if (fs->rec == NULL || (fs->nrec + 1) * 2 > fs->recmask) {
		struct fake_rec *old = fs->rec;
		u32 oldn = old ? fs->recmask + 1 : 0;

		fs->recmask = old ? fs->recmask * 2 + 1 : 1023;
		fs->rec = calloc(fs->recmask + 1, sizeof(*fs->rec));
		assert_non_null(fs->rec);
		for (u32 i = 0; i < oldn; i++)
			if (old[i].used)
				*fake_slot(fs, old[i].id) = old[i];
		free(old);
	}
	struct fake_rec *r = fake_slot(fs, id);
	if (!r->used)
		fs->nrec++;
	r->used = true;
	r->id = id;
	r->it = *it;
}

static const struct fake_rec *fake_get_rec(struct fake_store *fs, u128 id)
{
	if (!fs->rec)
		return NULL;
	const struct fake_rec *r = fake_slot(fs, id);
	return r->used ? r : NULL;
}

static struct fake_op *fake_op(struct fake_store *fs, u8 type)
{
	if (fs->nlog == fs->caplog) {
		fs->caplog = fs->caplog ? fs->caplog * 2 : 256;
		fs->log = xrealloc(fs->log, fs->caplog * sizeof(*fs->log));
	}
	struct fake_op *o = &fs->log[fs->nlog++];
	memset(o, 0, sizeof(*o));
	o->type = type;
	o->drain = fs->draining;
	return o;
}

static void fake_transfer(void *arg, const struct transfer *t, u8 status,
			  const struct account_balance *dr,
			  const struct account_balance *cr)
{
	struct fake_op *o = fake_op(arg, 1);

	o->t = *t;
	o->status = status;
	if (dr) {
		o->has_dr = true;
		o->dr = *dr;
	}
	if (cr) {
		o->has_cr = true;
		o->cr = *cr;
	}
}

static void fake_status(void *arg, const struct transfer *t, u8 status)
{
	struct fake_op *o = fake_op(arg, 2);

	o->t = *t;
	o->status = status;
}

static void fake_account(void *arg, const struct account *a)
{
	fake_op(arg, 4)->a = *a;
}

static void fake_failed(void *arg, u128 id)
{
	fake_op(arg, 3)->t.id = id;
}

static const struct ledger_drain_ops fake_ops = {
	.transfer = fake_transfer,
	.status = fake_status,
	.account = fake_account,
	.failed = fake_failed,
};

static void fake_index(struct fake_store *fs, u128 account,
		       const struct transfer *t,
		       const struct account_balance *p)
{
	if (fs->nix == fs->capix) {
		fs->capix = fs->capix ? fs->capix * 2 : 256;
		fs->ix = xrealloc(fs->ix, fs->capix * sizeof(*fs->ix));
	}
	struct fake_ix *x = &fs->ix[fs->nix++];
	memset(x, 0, sizeof(*x));
	x->account = account;
	x->t = *t;
	if (p) {
		x->has_point = true;
		x->point = *p;
	}
}

/* Commit every drained op up to drain k. */
static void fake_commit(struct fake_store *fs, u32 k)
{
	u32 i = 0;

	for (; i < fs->nlog && fs->log[i].drain <= k; i++) {
		const struct fake_op *o = &fs->log[i];
		struct ledger_cold_item it;

		if (o->type == 4) {
			u32 j = 0;
			while (j < fs->nacc && fs->acc[j].id != o->a.id)
				j++;
			if (j == fs->nacc) {
				if (fs->nacc == fs->capacc) {
					fs->capacc = fs->capacc ? fs->capacc * 2
								: 64;
					fs->acc = xrealloc(
						fs->acc,
						fs->capacc * sizeof(*fs->acc));
				}
				fs->nacc++;
			}
			fs->acc[j] = o->a;
			continue;
		}
		memset(&it, 0, sizeof(it));
		it.t = o->t;
		it.status = o->status;
		it.kind = o->type == 3 ? LEDGER_COLD_FAILED
				       : LEDGER_COLD_TRANSFER;
		if (o->type == 2)
			CHECK(fake_get_rec(fs, o->t.id) != NULL,
			      "drained a status change of transfer %s the "
			      "store never got",
			      dec(o->t.id));
		fake_put(fs, o->t.id, &it);
		if (o->type == 1) {
			ledger_sums_transfer(&fs->sums, &o->t, o->status,
					     false);
			if (o->has_dr)
				ledger_sums_point(&fs->sums,
						  o->t.debit_account_id,
						  &o->dr);
			if (o->has_cr)
				ledger_sums_point(&fs->sums,
						  o->t.credit_account_id,
						  &o->cr);
		} else if (o->type == 2) {
			ledger_sums_transfer(&fs->sums, &o->t, PENDING_PENDING,
					     true);
			ledger_sums_transfer(&fs->sums, &o->t, o->status,
					     false);
		} else {
			ledger_sums_failed(&fs->sums, o->t.id);
		}
		if (o->type == 1) {
			fake_index(fs, o->t.debit_account_id, &o->t,
				   o->has_dr ? &o->dr : NULL);
			fake_index(fs, o->t.credit_account_id, &o->t,
				   o->has_cr ? &o->cr : NULL);
		}
	}
	if (i) {
		memmove(fs->log, fs->log + i,
			(fs->nlog - i) * sizeof(*fs->log));
		fs->nlog -= i;
	}
	fs->committed = k;
}

static int fake_get(void *arg, const u128 *ids, u32 n,
		    struct ledger_cold_item *out)
{
	struct fake_store *fs = arg;

	for (u32 i = 0; i < n; i++) {
		const struct fake_rec *r = fake_get_rec(fs, ids[i]);
		memset(&out[i], 0, sizeof(out[i]));
		if (r)
			out[i] = r->it;
		fs->gets++;
	}
	return 0;
}

/* After a batch or pulse: drain, let the store commit some of what it
 * was given (all of it, or lagging a few drains), evict what it holds. */
static void tier_step(struct ledger *l, struct fake_store *fs)
{
	struct ledger_mark mk;

	fs->draining = fs->nmarks + 1;
	CHECK(ledger_drain(l, &fake_ops, fs, &mk) == 0, "drain failed");
	CHECK(mk.drain == fs->nmarks + 1, "drain number %u after %u", mk.drain,
	      fs->nmarks);
	if (fs->nmarks == fs->capmarks) {
		fs->capmarks = fs->capmarks ? fs->capmarks * 2 : 256;
		fs->marks =
			xrealloc(fs->marks, fs->capmarks * sizeof(*fs->marks));
	}
	fs->marks[fs->nmarks++] = mk;
	if (chance(60))
		fake_commit(fs, mk.drain);
	else if (chance(50) && mk.drain > 3)
		fake_commit(fs, mk.drain - 1 - rnd(3));
	if (fs->committed && chance(70)) {
		u64 keep = chance(50) ? 0 : rnd(60);
		int rc = ledger_evict(l, &fs->marks[fs->committed - 1], keep);
		CHECK(rc == 0, "evict returned %d", rc);
		fs->evictions++;
	}
}

/* The process dies once the store committed everything it was given,
 * and a new ledger starts from the store: its accounts and pending
 * transfers in memory, the rest cold. */
static struct ledger *tier_restart(struct ledger *old, struct fake_store *fs)
{
	const struct ledger_cold cold = {.get = fake_get, .ctx = fs};
	struct ledger_options o = {.accounts_hint = 16, .transfers_hint = 64};
	u64 last = ledger_last_timestamp(old);
	struct ledger *l;
	u64 transfers = 0;

	fake_commit(fs, fs->nmarks);
	ledger_free(old);
	l = ledger_new(&o);
	assert_non_null(l);
	assert_int_equal(ledger_set_cold(l, &cold), 0);
	for (u32 i = 0; i < fs->nacc; i++)
		CHECK(ledger_restore_account(l, &fs->acc[i]) == 0,
		      "restore of account %s failed", dec(fs->acc[i].id));
	for (u32 i = 0; fs->rec && i <= fs->recmask; i++) {
		const struct fake_rec *r = &fs->rec[i];
		if (!r->used || r->it.kind != LEDGER_COLD_TRANSFER)
			continue;
		transfers++;
		if (r->it.status == PENDING_PENDING)
			CHECK(ledger_restore_pending(l, &r->it.t) == 0,
			      "restore of pending transfer %s failed",
			      dec(r->id));
	}
	ledger_restore_end(l, transfers, last);
	fs->nmarks = 0;
	fs->committed = 0;
	fs->restarts++;
	return l;
}

static void fake_release(struct fake_store *fs)
{
	free(fs->log);
	free(fs->rec);
	free(fs->ix);
	free(fs->marks);
	free(fs->acc);
	memset(fs, 0, sizeof(*fs));
}

/* The older part of a query, from the store: timestamps below `below`. */
static u32 fake_query(const struct fake_store *fs,
		      const struct account_filter *f, u64 below, bool balances,
		      struct transfer *out_t, struct account_balance *out_b,
		      u32 max)
{
	bool rev = f->flags & ACCOUNT_FILTER_REVERSED;
	u32 n = 0;

	for (u32 k = 0; k < fs->nix && n < max; k++) {
		const struct fake_ix *x = &fs->ix[rev ? fs->nix - 1 - k : k];
		u64 ts = x->t.timestamp;

		if (x->account != f->account_id || ts >= below ||
		    (f->timestamp_min && ts < f->timestamp_min) ||
		    (f->timestamp_max && ts > f->timestamp_max) ||
		    !ledger_filter_match(f, &x->t))
			continue;
		if (balances) {
			if (x->has_point)
				out_b[n++] = x->point;
		} else {
			out_t[n++] = x->t;
		}
	}
	return n;
}

/* A query over both tiers: the store below ledger_hot_since, memory from
 * it on, in the filter's order. */
static int tiered_query(const struct ledger *l, const struct fake_store *fs,
			const struct account_filter *f, bool balances,
			struct transfer *out_t, struct account_balance *out_b,
			u32 out_max)
{
	u64 hs = ledger_hot_since(l);
	u32 max = f->limit < out_max ? f->limit : out_max, n = 0;
	bool rev = f->flags & ACCOUNT_FILTER_REVERSED;
	struct account_filter hot = *f;
	int got = 0;

	if (!ledger_filter_valid(f))
		return -EINVAL;
	if (max > QUERY_LIMIT_MAX)
		max = QUERY_LIMIT_MAX;
	if (hot.timestamp_min < hs)
		hot.timestamp_min = hs;
	bool hot_empty =
		f->timestamp_max && f->timestamp_max < hot.timestamp_min;
	for (int part = 0; part < 2 && n < max; part++) {
		bool cold = (part == 0) != rev;
		if (cold) {
			n += fake_query(fs, f, hs, balances,
					balances ? NULL : out_t + n,
					balances ? out_b + n : NULL, max - n);
			continue;
		}
		if (hot_empty)
			continue;
		hot.limit = max - n;
		got = balances ? ledger_get_account_balances(l, &hot, out_b + n,
							     max - n)
			       : ledger_get_account_transfers(
					 l, &hot, out_t + n, max - n);
		if (got < 0)
			return got;
		n += (u32)got;
	}
	return (int)n;
}

static void check_account(const struct ledger *l, const struct account *want,
			  u128 id)
{
	struct account got;
	int rc = ledger_lookup_account(l, id, &got);

	if (!want) {
		CHECK(rc == -ENOENT, "account %s: expected -ENOENT, got %d",
		      dec(id), rc);
		return;
	}
	CHECK(rc == 0, "account %s: expected to exist, lookup gave %d", dec(id),
	      rc);
	if (memcmp(&got, want, sizeof(got)) != 0) {
		diag("account %s differs", dec(id));
		print_account("expected", want);
		print_account("got     ", &got);
		replay_hint();
		fail_msg("account differs from the model (see above)");
	}
}

/* A transfer from memory, or else from the store when there is one. */
static int lookup_any(const struct ledger *l, struct fake_store *fs, u128 id,
		      struct transfer *out, enum pending_status *st)
{
	int rc = ledger_lookup_transfer(l, id, out);

	*st = ledger_pending_status(l, id);
	if (rc == -ENOENT && fs) {
		const struct fake_rec *r = fake_get_rec(fs, id);
		if (r && r->it.kind == LEDGER_COLD_TRANSFER) {
			*out = r->it.t;
			*st = (enum pending_status)r->it.status;
			rc = 0;
		}
	}
	return rc;
}

static void check_transfer_in(const struct ledger *l, struct fake_store *fs,
			      const struct mtransfer *want, u128 id)
{
	struct transfer got;
	enum pending_status st;
	int rc = lookup_any(l, fs, id, &got, &st);

	if (!want) {
		CHECK(rc == -ENOENT, "transfer %s: expected -ENOENT, got %d",
		      dec(id), rc);
		return;
	}
	CHECK(rc == 0, "transfer %s: expected to exist, lookup gave %d",
	      dec(id), rc);
	if (memcmp(&got, &want->t, sizeof(got)) != 0) {
		diag("transfer %s differs", dec(id));
		print_transfer("expected", &want->t);
		print_transfer("got     ", &got);
		replay_hint();
		fail_msg("transfer differs from the model (see above)");
	}
	CHECK((u32)st == want->status,
	      "pending status of transfer %s: expected %u, got %u "
	      "(1 pending, 2 posted, 3 voided, 4 expired)",
	      dec(id), want->status, (u32)st);
}

static void check_transfer(const struct ledger *l, const struct mtransfer *want,
			   u128 id)
{
	check_transfer_in(l, NULL, want, id);
}

static void check_accounts_and_sums(const struct ledger *l, struct model *m)
{
	/* Per ledger (1..3), the test's own sums of what the ledger says. */
	u128 dp[4] = {0}, dP[4] = {0}, cp[4] = {0}, cP[4] = {0};

	for (u32 id = 1; id <= POOL_ALL; id++)
		check_account(l, model_account(m, id), id);
	for (u32 i = 0; i < m->nacc; i++) {
		struct account got;

		check_account(l, &m->acc[i], m->acc[i].id);
		assert_int_equal(ledger_lookup_account(l, m->acc[i].id, &got),
				 0);
		if (got.ledger < 4) {
			dp[got.ledger] += got.debits_pending;
			dP[got.ledger] += got.debits_posted;
			cp[got.ledger] += got.credits_pending;
			cP[got.ledger] += got.credits_posted;
		}
	}
	/* Ledger 3 carries near-2^128 amounts whose sums wrap; equality
	 * modulo 2^128 still holds there. */
	for (u32 k = 1; k < 4; k++) {
		CHECK(dp[k] == cp[k],
		      "ledger %u: sum debits_pending %s != sum credits_pending "
		      "%s",
		      k, dec(dp[k]), dec(cp[k]));
		CHECK(dP[k] == cP[k],
		      "ledger %u: sum debits_posted %s != sum credits_posted "
		      "%s",
		      k, dec(dP[k]), dec(cP[k]));
	}
	CHECK(ledger_check_invariants(l), "ledger_check_invariants() is false");
}

static void check_all_transfers(const struct ledger *l, const struct model *m)
{
	for (u32 i = 0; i < m->ntr; i++)
		check_transfer(l, &m->tr[i], m->tr[i].t.id);
}

static void check_stats(const struct ledger *l, const struct model *m)
{
	struct ledger_stats s;
	u64 open = 0;

	for (u32 i = 0; i < m->ntr; i++)
		open += m->tr[i].status == PENDING_PENDING;
	ledger_stats(l, &s);
	CHECK(s.accounts == m->nacc,
	      "stats.accounts: expected %u, got %" PRIu64, m->nacc, s.accounts);
	CHECK(s.transfers == m->ntr,
	      "stats.transfers: expected %u, got %" PRIu64, m->ntr,
	      s.transfers);
	CHECK(s.pending_open == open,
	      "stats.pending_open: expected %" PRIu64 ", got %" PRIu64, open,
	      s.pending_open);
	CHECK(ledger_next_expiry(l) == model_next_expiry(m),
	      "next_expiry: expected %" PRIu64 ", got %" PRIu64,
	      model_next_expiry(m), ledger_next_expiry(l));
}

/* ------------------------------------------------------------------------ */
/* Queries.                                                                 */

#define QUERY_OUT_MAX 64u

static bool filter_time_ok(const struct account_filter *f, u64 ts)
{
	if (f->timestamp_min && ts < f->timestamp_min)
		return false;
	if (f->timestamp_max && ts > f->timestamp_max)
		return false;
	return true;
}

static u32 model_account_transfers(const struct model *m,
				   const struct account_filter *f,
				   struct transfer *out, u32 out_max)
{
	u32 max = f->limit < out_max ? f->limit : out_max, n = 0;
	bool rev = f->flags & ACCOUNT_FILTER_REVERSED;

	for (u32 k = 0; k < m->ntr && n < max; k++) {
		const struct transfer *t = &m->tr[rev ? m->ntr - 1 - k : k].t;
		bool hit = ((f->flags & ACCOUNT_FILTER_DEBITS) &&
			    t->debit_account_id == f->account_id) ||
			   ((f->flags & ACCOUNT_FILTER_CREDITS) &&
			    t->credit_account_id == f->account_id);

		if (!hit || !filter_time_ok(f, t->timestamp))
			continue;
		if (f->user_data_128 && t->user_data_128 != f->user_data_128)
			continue;
		if (f->user_data_64 && t->user_data_64 != f->user_data_64)
			continue;
		if (f->user_data_32 && t->user_data_32 != f->user_data_32)
			continue;
		if (f->code && t->code != f->code)
			continue;
		out[n++] = *t;
	}
	return n;
}

static u32 model_account_balances(struct model *m,
				  const struct account_filter *f,
				  struct account_balance *out, u32 out_max)
{
	u32 max = f->limit < out_max ? f->limit : out_max, n = 0;
	bool rev = f->flags & ACCOUNT_FILTER_REVERSED;
	const struct account *a = model_account(m, f->account_id);

	if (!a || !(a->flags & ACCOUNT_HISTORY))
		return 0;
	for (u32 k = 0; k < m->nhist && n < max; k++) {
		const struct mhist *h = &m->hist[rev ? m->nhist - 1 - k : k];

		/* flags.debits / flags.credits pick the side the account
		 * was on, as for the transfers query. */
		bool side = h->debit_side ? (f->flags & ACCOUNT_FILTER_DEBITS)
					  : (f->flags & ACCOUNT_FILTER_CREDITS);

		if (h->account_id != f->account_id || !side ||
		    !filter_time_ok(f, h->b.timestamp))
			continue;
		out[n++] = h->b;
	}
	return n;
}

static void print_filter(const struct account_filter *f)
{
	fprintf(stderr,
		"  filter account=%s ud128=%s ud64=%" PRIu64 " ud32=%u code=%u "
		"ts_min=%" PRIu64 " ts_max=%" PRIu64 " limit=%u flags=0x%x\n",
		dec(f->account_id), dec(f->user_data_128), f->user_data_64,
		f->user_data_32, f->code, f->timestamp_min, f->timestamp_max,
		f->limit, f->flags);
}

static void random_filter(struct model *m, struct account_filter *f,
			  bool balances, u64 now)
{
	memset(f, 0, sizeof(*f));
	f->account_id = 1 + rnd(POOL_ALL);
	if (balances && chance(80))
		f->account_id = 3 * (1 + rnd(POOL_ALL / 3)); /* history */
	f->flags = 1 + rnd(3); /* debits, credits or both */
	if (chance(50))
		f->flags |= ACCOUNT_FILTER_REVERSED;
	f->limit = chance(20) ? 1 + rnd(3) : 1 + rnd(QUERY_OUT_MAX + 20);
	if (m->ntr && chance(40)) {
		u64 a = m->tr[rnd(m->ntr)].t.timestamp;
		u64 b = m->tr[rnd(m->ntr)].t.timestamp;

		f->timestamp_min = a < b ? a : b;
		f->timestamp_max = a < b ? b : a;
		if (chance(30))
			f->timestamp_min = 0;
		else if (chance(30))
			f->timestamp_max = 0;
	} else if (chance(5)) {
		f->timestamp_min = now + 1; /* nothing yet */
	}
	if (!balances && chance(20)) {
		switch (rnd(4)) {
		case 0: f->user_data_128 = 1 + rnd(5); break;
		case 1: f->user_data_64 = 1 + rnd(5); break;
		case 2: f->user_data_32 = 1 + rnd(5); break;
		default: f->code = (u16)(1 + rnd(3)); break;
		}
	}
}

/* Filters TigerBeetle calls invalid: no results (empty or -EINVAL), and
 * certainly no crash. */
static void check_invalid_filters(const struct ledger *l)
{
	struct transfer out_t[4];
	struct account_balance out_b[4];

	for (int k = 0; k < 6; k++) {
		struct account_filter f;
		int a, b;

		memset(&f, 0, sizeof(f));
		f.account_id = 3; /* exists, has history */
		f.limit = 4;
		f.flags = ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS;
		switch (k) {
		case 0: f.account_id = 0; break;
		case 1: f.account_id = U128_MAX; break;
		case 2: f.limit = 0; break;
		case 3: f.flags = 0; break; /* neither debits nor credits */
		case 4: f.timestamp_min = f.timestamp_max = UINT64_MAX; break;
		default: f.timestamp_min = 10, f.timestamp_max = 9; break;
		}
		a = ledger_get_account_transfers(l, &f, out_t, 4);
		b = ledger_get_account_balances(l, &f, out_b, 4);
		CHECK(a <= 0 && b <= 0,
		      "invalid filter #%d gave results: transfers %d, "
		      "balances %d",
		      k, a, b);
	}
}

static void check_queries_in(const struct ledger *l, struct fake_store *fs,
			     struct model *m, u64 now)
{
	struct transfer want_t[QUERY_OUT_MAX], got_t[QUERY_OUT_MAX];
	struct account_balance want_b[QUERY_OUT_MAX], got_b[QUERY_OUT_MAX];
	struct account_filter f;

	for (int q = 0; q < 4; q++) {
		u32 want;
		int got;

		random_filter(m, &f, false, now);
		want = model_account_transfers(m, &f, want_t, QUERY_OUT_MAX);
		got = fs ? tiered_query(l, fs, &f, false, got_t, NULL,
					QUERY_OUT_MAX)
			 : ledger_get_account_transfers(l, &f, got_t,
							QUERY_OUT_MAX);
		if (got != (int)want) {
			diag("get_account_transfers: expected %u results, "
			     "got %d",
			     want, got);
			print_filter(&f);
			replay_hint();
			fail_msg("query differs from the model");
		}
		for (u32 i = 0; i < want; i++) {
			if (memcmp(&want_t[i], &got_t[i], sizeof(got_t[i]))) {
				diag("get_account_transfers: result %u "
				     "differs",
				     i);
				print_filter(&f);
				print_transfer("expected", &want_t[i]);
				print_transfer("got     ", &got_t[i]);
				replay_hint();
				fail_msg("query differs from the model");
			}
		}

		random_filter(m, &f, true, now);
		want = model_account_balances(m, &f, want_b, QUERY_OUT_MAX);
		got = fs ? tiered_query(l, fs, &f, true, NULL, got_b,
					QUERY_OUT_MAX)
			 : ledger_get_account_balances(l, &f, got_b,
						       QUERY_OUT_MAX);
		if (want == 0 && got < 0)
			got = 0; /* no history: empty or refused, both fine */
		if (got != (int)want) {
			diag("get_account_balances: expected %u results, "
			     "got %d",
			     want, got);
			print_filter(&f);
			replay_hint();
			fail_msg("query differs from the model");
		}
		for (u32 i = 0; i < want; i++) {
			const struct account_balance *w = &want_b[i],
						     *g = &got_b[i];

			if (w->timestamp != g->timestamp ||
			    w->debits_pending != g->debits_pending ||
			    w->debits_posted != g->debits_posted ||
			    w->credits_pending != g->credits_pending ||
			    w->credits_posted != g->credits_posted) {
				diag("get_account_balances: result %u differs: "
				     "expected ts=%" PRIu64 " dp=%s dP=%s "
				     "cp=%s cP=%s, got ts=%" PRIu64
				     " dp=%s dP=%s cp=%s cP=%s",
				     i, w->timestamp, dec(w->debits_pending),
				     dec(w->debits_posted),
				     dec(w->credits_pending),
				     dec(w->credits_posted), g->timestamp,
				     dec(g->debits_pending),
				     dec(g->debits_posted),
				     dec(g->credits_pending),
				     dec(g->credits_posted));
				print_filter(&f);
				replay_hint();
				fail_msg("query differs from the model");
			}
		}
	}
}

static void check_queries(const struct ledger *l, struct model *m, u64 now)
{
	check_queries_in(l, NULL, m, now);
}

/* ------------------------------------------------------------------------ */
/* Snapshots into memory.                                                   */

struct membuf {
	u8 *p;
	size_t len, cap;
};

static int membuf_sink(void *arg, const void *buf, size_t len)
{
	struct membuf *b = arg;

	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + len)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			return -ENOMEM;
		b->cap = cap;
	}
	memcpy(b->p + b->len, buf, len);
	b->len += len;
	return 0;
}

static struct ledger *snapshot_copy(const struct ledger *l, bool abuse)
{
	struct membuf b = {0};
	struct ledger *r;
	int rc = ledger_snapshot_write(l, membuf_sink, &b);

	CHECK(rc == 0, "ledger_snapshot_write returned %d", rc);
	if (abuse) {
		/* Truncated snapshots must be refused, never crash. */
		size_t cuts[] = {0, 1, b.len / 2, b.len - 1};

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			if (cuts[i] >= b.len)
				continue;
			r = ledger_snapshot_read(b.p, cuts[i]);
			CHECK(r == NULL,
			      "snapshot truncated to %zu of %zu bytes was "
			      "accepted",
			      cuts[i], b.len);
		}
		/* A flipped byte: the caller's checksum catches this; the
		 * reader need only not crash. */
		if (b.len) {
			size_t at = rnd64() % b.len;

			b.p[at] ^= 0x5a;
			ledger_free(ledger_snapshot_read(b.p, b.len));
			b.p[at] ^= 0x5a;
		}
	}
	r = ledger_snapshot_read(b.p, b.len);
	CHECK(r != NULL,
	      "ledger_snapshot_read rejected a fresh snapshot "
	      "of %zu bytes",
	      b.len);
	free(b.p);
	return r;
}

static void check_same_digest(const struct ledger *a, const struct ledger *b,
			      const char *what)
{
	u8 da[32], db[32];

	ledger_digest(a, da);
	ledger_digest(b, db);
	CHECK(memcmp(da, db, 32) == 0, "digests differ: %s", what);
}

/* ------------------------------------------------------------------------ */
/* The driver.                                                              */

struct run_opts {
	u32 iterations;
	bool twin;	/* a second ledger fed the same batches */
	bool snapshots; /* periodic snapshot round trips, fed on too */
	bool queries;
	bool tiered; /* a ledger with a cold tier fed the same batches */
};

struct run_totals {
	u64 batches, events, pulses, expired_checks, expired_in_batch;
	u32 result_hist[CREATE_TRANSFER_RESULT_COUNT];
};

static struct ledger *new_ledger(void)
{
	struct ledger_options o = {.accounts_hint = 16, .transfers_hint = 64};
	struct ledger *l = ledger_new(&o);

	assert_non_null(l);
	return l;
}

/* The same batch into one more ledger: same results as the first one. */
static void feed_copy(struct ledger *l, bool transfers, const void *ev, u32 n,
		      u64 ts, const u32 *want, const char *who)
{
	u32 *got = calloc(BATCH_TEST_MAX, sizeof(u32));
	int rc;

	assert_non_null(got);
	rc = transfers ? ledger_create_transfers(l, ev, n, ts, got)
		       : ledger_create_accounts(l, ev, n, ts, got);

	CHECK(rc == 0, "%s: create returned %d", who, rc);
	check_results(transfers, ev, n, want, got, who);
	free(got);
}

static void run(const struct run_opts *o, struct run_totals *tot)
{
	struct model *m = calloc(1, sizeof(*m));
	struct gen *g = calloc(1, sizeof(*g));
	struct ledger *l, *twin = NULL, *restored = NULL, *tiered = NULL;
	struct fake_store fs = {0};
	/* Nanoseconds since the epoch, far enough on that a timeout near
	 * 2^32 seconds overflows 2^63 (overflows_timeout). */
	u64 now = 5000000000000000000ull;
	u8 last_digest[32] = {0};
	u64 last_size = 0;
	struct transfer *tev = calloc(BATCH_TEST_MAX, sizeof(*tev));
	struct account *aev = calloc(BATCH_TEST_MAX, sizeof(*aev));
	u32 *want = calloc(BATCH_TEST_MAX, sizeof(u32));
	u32 *got = calloc(BATCH_TEST_MAX, sizeof(u32));

	assert_non_null(m);
	assert_non_null(g);
	assert_non_null(tev);
	assert_non_null(aev);
	assert_non_null(want);
	assert_non_null(got);
	model_init(m);
	g->next_tid = 1;
	l = new_ledger();
	if (o->twin)
		twin = new_ledger();
	if (o->tiered) {
		const struct ledger_cold cold = {.get = fake_get, .ctx = &fs};
		tiered = new_ledger();
		assert_int_equal(ledger_set_cold(tiered, &cold), 0);
	}

	for (u32 b = 0; b < o->iterations; b++) {
		bool transfers = b > 0 && !chance(b < 20 ? 30 : 8);
		u32 n = 1 + rnd(chance(20) ? 50 : 12);
		const void *ev;
		u64 ts;
		int rc;

		if (chance(1) && transfers)
			n = 100 + rnd(BATCH_TEST_MAX - 100);
		ctx.batch = b;
		ctx.phase = "batch";
		g->focus = 0;

		/* Now and then a pulse after a jump in time, so timeouts
		 * fire outside of create_transfers too. */
		if (chance(8)) {
			now += 1 + (u64)rnd(12000) * 1000000ull;
			model_expire(m, now);
			ledger_pulse(l, now);
			if (twin)
				ledger_pulse(twin, now);
			if (restored)
				ledger_pulse(restored, now);
			if (tiered) {
				CHECK(ledger_pulse(tiered, now) == 0,
				      "tiered pulse failed");
				tier_step(tiered, &fs);
			}
			tot->pulses++;
		}

		ts = now + n + 1 + (u64)rnd(2500) * 1000000ull;
		/* Sometimes land a batch across a pending deadline and aim
		 * posts and voids at that transfer. */
		if (transfers && chance(4)) {
			u64 d = model_next_expiry(m);

			if (d > now + n + 1) {
				ts = d + rnd(n);
				for (u32 i = 0; i < m->ntimed; i++)
					if (deadline_of(
						    &m->tr[m->timed[i]].t) == d)
						g->focus =
							m->tr[m->timed[i]].t.id;
				tot->expired_checks++;
			}
		}
		if (b == 0) {
			n = POOL_CREATE - 4; /* ids 1..28: the working pool */
			for (u32 i = 0; i < n; i++)
				aev[i] = account_template(i + 1);
		} else if (!transfers) {
			for (u32 i = 0; i < n; i++)
				aev[i] = gen_account();
		} else {
			for (u32 i = 0; i < n; i++)
				gen_transfer(g, m, &tev[i]);
		}
		/* Linked chains: any event may link to the next; the last
		 * one rarely (linked_event_chain_open). */
		if (b > 0) {
			for (u32 i = 0; i < n; i++) {
				u16 *fl = transfers ? &tev[i].flags
						    : &aev[i].flags;

				if (chance(i == n - 1 ? 4 : 10))
					*fl |= 1;
			}
		}
		ev = transfers ? (const void *)tev : (const void *)aev;

		if (!transfers) {
			/* Expiry before an accounts batch is left to the
			 * engine's pulse; do it explicitly on both sides. */
			model_expire(m, ts - n + 1);
			ledger_pulse(l, ts - n + 1);
			if (twin)
				ledger_pulse(twin, ts - n + 1);
			if (restored)
				ledger_pulse(restored, ts - n + 1);
			if (tiered)
				CHECK(ledger_pulse(tiered, ts - n + 1) == 0,
				      "tiered pulse failed");
		}
		model_execute(m, transfers, ev, n, ts, want);
		rc = transfers ? ledger_create_transfers(l, tev, n, ts, got)
			       : ledger_create_accounts(l, aev, n, ts, got);
		CHECK(rc == 0, "create returned %d", rc);
		check_results(transfers, ev, n, want, got, "ledger");
		if (twin)
			feed_copy(twin, transfers, ev, n, ts, want, "twin");
		if (restored)
			feed_copy(restored, transfers, ev, n, ts, want,
				  "restored");
		if (tiered) {
			feed_copy(tiered, transfers, ev, n, ts, want, "tiered");
			tier_step(tiered, &fs);
			if (b % 200 == 199)
				tiered = tier_restart(tiered, &fs);
		}
		if (transfers) {
			gen_remember(g, tev, want, n);
			for (u32 i = 0; i < n; i++)
				tot->result_hist[want[i]]++;
		}
		now = ts;
		tot->batches++;
		tot->events += n;

		ctx.phase = "state";
		check_accounts_and_sums(l, m);
		check_stats(l, m);
		CHECK(ledger_last_timestamp(l) <= ts,
		      "last_timestamp %" PRIu64 " is after the batch (%" PRIu64
		      ")",
		      ledger_last_timestamp(l), ts);
		if (transfers) {
			/* This batch's transfers and their pending ones. */
			for (u32 i = 0; i < n; i++) {
				check_transfer(l, model_transfer(m, tev[i].id),
					       tev[i].id);
				if (tev[i].pending_id)
					check_transfer(
						l,
						model_transfer(
							m, tev[i].pending_id),
						tev[i].pending_id);
			}
		}
		if (b % 25 == 0 || b + 1 == o->iterations) {
			ctx.phase = "all transfers";
			check_all_transfers(l, m);
		}
		if (tiered) {
			ctx.phase = "tiered";
			for (u32 i = 0; i < m->nacc; i++)
				check_account(tiered, &m->acc[i], m->acc[i].id);
			check_stats(tiered, m);
			if (transfers)
				for (u32 i = 0; i < n; i++) {
					check_transfer_in(
						tiered, &fs,
						model_transfer(m, tev[i].id),
						tev[i].id);
					if (tev[i].pending_id)
						check_transfer_in(
							tiered, &fs,
							model_transfer(
								m,
								tev[i].pending_id),
							tev[i].pending_id);
				}
			if (b % 25 == 0 || b + 1 == o->iterations)
				for (u32 i = 0; i < m->ntr; i++)
					check_transfer_in(tiered, &fs,
							  &m->tr[i],
							  m->tr[i].t.id);
			if (o->queries && b % 4 == 0)
				check_queries_in(tiered, &fs, m, now);
			if (fs.nlog == 0) {
				/* The store holds everything drained: its
				 * sums and memory's accounts give the
				 * all-in-memory ledger's digest. */
				u8 a[32], d[32];
				ledger_digest(l, a);
				ledger_digest_with(tiered, &fs.sums, d);
				CHECK(memcmp(a, d, 32) == 0,
				      "digest of the tiered ledger differs");
				fs.digests++;
			}
		}
		if (o->queries && b % 4 == 0) {
			ctx.phase = "queries";
			check_queries(l, m, now);
			if (b % 100 == 0)
				check_invalid_filters(l);
		}
		/* A digest that ignores the state would make every digest
		 * comparison below vacuous: it must move when the state
		 * does. */
		if (b % 50 == 0) {
			u8 d[32];
			u64 size = (u64)m->nacc + m->ntr;

			ctx.phase = "digest moves";
			ledger_digest(l, d);
			CHECK(size == last_size ||
				      memcmp(d, last_digest, 32) != 0,
			      "digest unchanged although %" PRIu64
			      " records were added",
			      size - last_size);
			memcpy(last_digest, d, 32);
			last_size = size;
		}
		if (twin && (b % 50 == 0 || b + 1 == o->iterations)) {
			ctx.phase = "twin digest";
			check_same_digest(l, twin,
					  "two ledgers fed the same "
					  "batches");
		}
		if (restored && (b % 10 == 0 || b + 1 == o->iterations)) {
			ctx.phase = "restored digest";
			check_same_digest(l, restored,
					  "original and restored ledger fed "
					  "the same batches after the "
					  "snapshot");
		}
		if (o->snapshots && b > 0 &&
		    (b % 300 == 0 || b + 1 == o->iterations)) {
			ctx.phase = "snapshot";
			ledger_free(restored);
			restored = snapshot_copy(l, b % 900 == 0);
			check_same_digest(l, restored, "snapshot round trip");
			check_accounts_and_sums(restored, m);
			check_all_transfers(restored, m);
			check_stats(restored, m);
			if (o->queries)
				check_queries(restored, m, now);
		}
	}
	ctx.phase = "end";
	tot->expired_in_batch = m->expired_in_batch;
	if (twin)
		check_same_digest(l, twin, "two ledgers fed the same batches");
	if (tiered) {
		struct ledger_stats st;

		ledger_stats(tiered, &st);
		fprintf(stderr,
			"tiered: %" PRIu64 " cold lookups, %" PRIu64
			" evictions, %u restarts, %u transfers in the "
			"store\n",
			fs.gets, fs.evictions, fs.restarts, fs.nrec);
		/* The run must have exercised the cold tier at all. */
		CHECK(fs.evictions > 0 && fs.gets > 0 && fs.nrec > 0 &&
			      fs.digests > 0,
		      "the cold tier was never used");
	}
	ledger_free(tiered);
	fake_release(&fs);
	ledger_free(restored);
	ledger_free(twin);
	ledger_free(l);
	model_release(m);
	free(m);
	free(g);
	free(tev);
	free(aev);
	free(want);
	free(got);
}

static u64 env_u64(const char *name, u64 fallback)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return fallback;
	v = strtoull(s, &end, 0);
	return *end ? fallback : (u64)v;
}

/* One seed per process (TPW_SEED, or fresh from the clock), shared by
 * every test so that one number replays the whole run. */
static void setup_run(u32 default_iterations, u64 salt)
{
	static u64 seed;

	if (!seed)
		seed = env_u64("TPW_SEED", 0);
	if (!seed) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		rng_state = ((u64)t.tv_sec << 30) ^ (u64)t.tv_nsec ^
			    ((u64)getpid() << 48);
		seed = rnd64() % 1000000000000ull; /* short to type */
		seed = seed ? seed : 1;
	}
	ctx.seed = seed;
	ctx.iterations = (u32)env_u64("TPW_ITERATIONS", default_iterations);
	rng_state = seed ^ salt;
}

/* ------------------------------------------------------------------------ */
/* Tests.                                                                   */

static void test_ledger_matches_reference_model_on_random_batches(void **state)
{
	struct run_opts o = {.queries = true};
	struct run_totals tot = {0};
	struct timespec t0, t1;
	u32 kinds = 0;

	(void)state;
	setup_run(6000, 0);
	o.iterations = ctx.iterations;
	fprintf(stderr, "model: seed=%" PRIu64 " iterations=%u\n", ctx.seed,
		ctx.iterations);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(&o, &tot);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (u32 r = 0; r < CREATE_TRANSFER_RESULT_COUNT; r++)
		kinds += tot.result_hist[r] != 0;
	fprintf(stderr,
		"model: %" PRIu64 " batches, %" PRIu64 " events, %" PRIu64
		" pulses, %u distinct transfer results, %.2f s\n",
		tot.batches, tot.events, tot.pulses, kinds,
		(double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (known_tolerated)
		fprintf(stderr,
			"model: %" PRIu64 " known discrepancies "
			"tolerated (TPW_KNOWN)\n",
			known_tolerated);
	if (getenv("TPW_VERBOSE")) {
		fprintf(stderr,
			"  batches across a deadline %" PRIu64
			", posts/voids refused mid-batch by it %" PRIu64 "\n",
			tot.expired_checks, tot.expired_in_batch);
		for (u32 r = 0; r < CREATE_TRANSFER_RESULT_COUNT; r++)
			fprintf(stderr, "  %-50s %u\n", xfer_name(r),
				tot.result_hist[r]);
	}
}

static void
test_same_batches_give_same_digest_and_snapshots_round_trip(void **state)
{
	struct run_opts o = {.twin = true, .snapshots = true};
	struct run_totals tot = {0};

	(void)state;
	setup_run(6000, 0x5eed);
	o.iterations = ctx.iterations / 4 ? ctx.iterations / 4 : 1;
	fprintf(stderr, "determinism: seed=%" PRIu64 " iterations=%u\n",
		ctx.seed, o.iterations);
	run(&o, &tot);
}

/* The model itself, on hand-computed cases: if these fail, the model is
 * wrong, not the ledger. */
/* A ledger whose history lives in a cold tier (evicted as soon as the
 * store holds it, or kept a little, with the store committing late) gives
 * the same results, records, statuses and query answers as the model. */
static void test_ledger_with_a_cold_tier_matches_the_model(void **state)
{
	struct run_opts o = {.queries = true, .tiered = true};
	struct run_totals tot = {0};

	(void)state;
	setup_run(6000, 0xc01d);
	o.iterations = ctx.iterations / 3 ? ctx.iterations / 3 : 1;
	fprintf(stderr, "cold tier: seed=%" PRIu64 " iterations=%u\n", ctx.seed,
		o.iterations);
	run(&o, &tot);
}

static void test_model_follows_documented_two_phase_rules(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct account a[2];
	struct transfer t[4];
	u32 r[4];

	(void)state;
	assert_non_null(m);
	model_init(m);
	memset(a, 0, sizeof(a));
	a[0].id = 1, a[0].ledger = 1, a[0].code = 1;
	a[1] = a[0], a[1].id = 2;
	a[1].flags = ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
	model_execute(m, false, a, 2, 100, r);
	assert_int_equal(r[0], CREATE_ACCOUNT_ok);
	assert_int_equal(r[1], CREATE_ACCOUNT_ok);
	assert_int_equal(m->acc[1].timestamp, 100);
	assert_int_equal(m->acc[0].timestamp, 99);

	memset(t, 0, sizeof(t));
	t[0].id = 10, t[0].debit_account_id = 1, t[0].credit_account_id = 2;
	t[0].amount = 50, t[0].ledger = 1, t[0].code = 1;
	t[0].flags = TRANSFER_PENDING, t[0].timeout = 1;
	t[1] = t[0], t[1].id = 11, t[1].flags = TRANSFER_POST_PENDING_TRANSFER;
	t[1].timeout = 0, t[1].pending_id = 10, t[1].amount = 20;
	t[1].debit_account_id = 0, t[1].credit_account_id = 0;
	t[2] = t[1], t[2].id = 12; /* second post: already posted */
	t[3] = t[0], t[3].id = 13, t[3].flags = 0, t[3].timeout = 0;
	t[3].debit_account_id = 2, t[3].credit_account_id = 1;
	t[3].amount = 21; /* 2 has credits 20: exceeds_credits */
	model_execute(m, true, t, 4, 1000, r);
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_int_equal(r[1], CREATE_TRANSFER_ok);
	assert_int_equal(r[2], CREATE_TRANSFER_pending_transfer_already_posted);
	assert_int_equal(r[3], CREATE_TRANSFER_exceeds_credits);
	assert_true(model_account(m, 1)->debits_posted == 20);
	assert_true(model_account(m, 1)->debits_pending == 0);
	assert_true(model_transfer(m, 11)->t.amount == 20);

	/* Retry the failed one: its id is burnt.  Retry the post: exists,
	 * and with a different amount: exists_with_different_amount. */
	t[3].amount = 1;
	t[1].id = 11, t[2] = t[1], t[2].amount = 21;
	{
		struct transfer again[3] = {t[3], t[1], t[2]};

		model_execute(m, true, again, 3, 2000, r);
	}
	assert_int_equal(r[0], CREATE_TRANSFER_id_already_failed);
	assert_int_equal(r[1], CREATE_TRANSFER_exists);
	assert_int_equal(r[2], CREATE_TRANSFER_exists_with_different_amount);

	/* A linked chain whose second event fails rolls back the first. */
	t[0].id = 20, t[0].flags = TRANSFER_LINKED, t[0].timeout = 0;
	t[1] = t[0], t[1].id = 21, t[1].flags = 0, t[1].ledger = 0;
	model_execute(m, true, t, 2, 3000, r);
	assert_int_equal(r[0], CREATE_TRANSFER_linked_event_failed);
	assert_int_equal(r[1], CREATE_TRANSFER_ledger_must_not_be_zero);
	assert_null(model_transfer(m, 20));
	assert_true(model_account(m, 1)->debits_posted == 20);
	model_release(m);
	free(m);
}

/* Model and ledger side by side on one hand-written batch; the model's
 * answers are asserted by the caller. */
static void both(struct model *m, struct ledger *l, const struct transfer *t,
		 u32 n, u64 ts, u32 *r)
{
	u32 got[8];

	assert_true(n <= 8);
	model_execute(m, true, t, n, ts, r);
	assert_int_equal(ledger_create_transfers(l, t, n, ts, got), 0);
	check_results(true, t, n, r, got, "ledger (directed)");
	for (u32 i = 0; i < m->nacc; i++)
		check_account(l, &m->acc[i], m->acc[i].id);
}

/* Closing, reopening by void and by expiry, balancing, and a deadline
 * passed in the middle of a batch, on the model (hand-computed answers)
 * and on the ledger (same answers as the model). */
static void
test_model_and_ledger_agree_on_closing_balancing_and_expiry(void **state)
{
	struct model *m = calloc(1, sizeof(*m));
	struct ledger *l = new_ledger();
	struct account a[3];
	struct transfer t[4], base;
	u32 r[8], got[8];
	const u64 s = NS_PER_S;

	(void)state;
	ctx.phase = "directed";
	assert_non_null(m);
	model_init(m);
	memset(a, 0, sizeof(a));
	for (u32 i = 0; i < 3; i++)
		a[i].id = i + 1, a[i].ledger = 1, a[i].code = 1;
	a[2].flags = ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
	model_execute(m, false, a, 3, 10 * s, r);
	assert_int_equal(ledger_create_accounts(l, a, 3, 10 * s, got), 0);

	memset(&base, 0, sizeof(base));
	base.debit_account_id = 1, base.credit_account_id = 3;
	base.amount = 30, base.ledger = 1, base.code = 1;

	/* 1 -> 3: 30 posted.  Balancing debit 3 -> 2 of at most 100 moves
	 * 30 (3's credits).  Closing pending 1 -> 2 closes 1; a plain
	 * transfer from 1 is then refused. */
	t[0] = base, t[0].id = 100;
	t[1] = base, t[1].id = 101, t[1].debit_account_id = 3;
	t[1].credit_account_id = 2, t[1].amount = 100;
	t[1].flags = TRANSFER_BALANCING_DEBIT;
	t[2] = base, t[2].id = 102, t[2].credit_account_id = 2;
	t[2].flags = TRANSFER_PENDING | TRANSFER_CLOSING_DEBIT;
	t[2].amount = 0;
	t[3] = base, t[3].id = 103;
	both(m, l, t, 4, 20 * s, r);
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_int_equal(r[1], CREATE_TRANSFER_ok);
	assert_int_equal(r[2], CREATE_TRANSFER_ok);
	assert_int_equal(r[3], CREATE_TRANSFER_debit_account_already_closed);
	assert_true(model_transfer(m, 101)->t.amount == 30);
	assert_true(model_account(m, 1)->flags & ACCOUNT_CLOSED);

	/* Voiding the closing transfer reopens 1; 103 stays burnt. */
	memset(t, 0, sizeof(t));
	t[0].id = 104, t[0].pending_id = 102;
	t[0].flags = TRANSFER_VOID_PENDING_TRANSFER;
	t[1] = base, t[1].id = 103;
	t[2] = base, t[2].id = 105;
	both(m, l, t, 3, 30 * s, r);
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_int_equal(r[1], CREATE_TRANSFER_id_already_failed);
	assert_int_equal(r[2], CREATE_TRANSFER_ok);
	assert_false(model_account(m, 1)->flags & ACCOUNT_CLOSED);

	/* A closing pending with a 1 s timeout; a batch whose first event
	 * is before the deadline and whose second is at it: the pass before
	 * the batch leaves it pending, the post at the deadline is refused
	 * as expired.  A pulse then expires it and reopens account 2. */
	t[0] = base, t[0].id = 106, t[0].debit_account_id = 2;
	t[0].credit_account_id = 1, t[0].amount = 5, t[0].timeout = 1;
	t[0].flags = TRANSFER_PENDING | TRANSFER_CLOSING_DEBIT;
	both(m, l, t, 1, 40 * s, r);
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_true(model_next_expiry(m) == 41 * s);
	memset(t, 0, sizeof(t));
	t[0] = base, t[0].id = 107, t[0].debit_account_id = 3;
	t[0].credit_account_id = 1, t[0].amount = 1;
	t[1].id = 108, t[1].pending_id = 106;
	t[1].flags = TRANSFER_POST_PENDING_TRANSFER, t[1].amount = AMOUNT_MAX;
	both(m, l, t, 2, 41 * s, r);
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_int_equal(r[1], CREATE_TRANSFER_pending_transfer_expired);
	assert_int_equal(model_transfer(m, 106)->status, PENDING_PENDING);
	model_expire(m, 41 * s);
	ledger_pulse(l, 41 * s);
	assert_int_equal(model_transfer(m, 106)->status, PENDING_EXPIRED);
	assert_false(model_account(m, 2)->flags & ACCOUNT_CLOSED);
	check_transfer(l, model_transfer(m, 106), 106);
	for (u32 i = 0; i < m->nacc; i++)
		check_account(l, &m->acc[i], m->acc[i].id);
	assert_true(ledger_check_invariants(l));
	ledger_free(l);
	model_release(m);
	free(m);
}

static void test_empty_ledger_snapshot_round_trips(void **state)
{
	struct ledger *l = new_ledger(), *r;
	struct membuf b = {0};

	(void)state;
	ctx.phase = "empty snapshot";
	assert_int_equal(ledger_snapshot_write(l, membuf_sink, &b), 0);
	r = ledger_snapshot_read(b.p, b.len);
	assert_non_null(r);
	check_same_digest(l, r, "empty ledger and its snapshot");
	assert_int_equal(ledger_next_expiry(r), 0);
	assert_true(ledger_check_invariants(r));
	free(b.p);
	ledger_free(r);
	ledger_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_follows_documented_two_phase_rules),
		cmocka_unit_test(test_empty_ledger_snapshot_round_trips),
		cmocka_unit_test(
			test_model_and_ledger_agree_on_closing_balancing_and_expiry),
		cmocka_unit_test(
			test_ledger_matches_reference_model_on_random_batches),
		cmocka_unit_test(
			test_same_batches_give_same_digest_and_snapshots_round_trip),
		cmocka_unit_test(
			test_ledger_with_a_cold_tier_matches_the_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
