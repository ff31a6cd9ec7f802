/*
 * ledger.c - the double-entry ledger state machine (see ledger.h).
 *
 * Layout, chosen for the hot path (create_transfers) and for memory:
 *   - records (accounts, transfers, history points, failed ids) live in
 *     fixed-size chunks that never move, so a slot number (u32) names a
 *     record for its whole life and a snapshot can stream chunks as-is;
 *   - one open-addressing hash index per id space maps id -> slot; an
 *     entry is 8 bytes (slot + 32-bit tag taken from the top of the hash,
 *     which also gives the home bucket, so growth never touches records);
 *   - each account keeps a u32 list of the transfer slots that touch it,
 *     appended in commit order, so its transfers are sorted by timestamp
 *     and range queries binary-search it; accounts with the history flag
 *     also keep a list of their balance points;
 *   - a u8 per transfer slot holds the pending status;
 *   - a min-heap of (deadline, slot) drives expiry; entries of transfers
 *     that were posted or voided meanwhile are dropped lazily when they
 *     reach the top (the top is always kept valid).
 *
 * Allocation policy: everything a batch may need is reserved before the
 * first event applies (records, index room, per-account list room, undo
 * log), so -ENOMEM leaves the ledger untouched and the event loop never
 * allocates.  Linked chains undo through a log of old account states and
 * old pending statuses plus the record counts at the chain's start: the
 * records a chain added are always the newest ones, so rollback truncates.
 */
#include "core/ledger.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/u128.h"
#include "banned.h"

/* Cheap invariants stay on in release builds. */
static void __attribute__((noreturn, cold))
ledger_assert_fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "%s:%d: ledger assertion failed: %s\n", file, line,
		cond);
	abort();
}
#define LEDGER_ASSERT(c)                                                       \
	do {                                                                   \
		if (__builtin_expect(!(c), 0))                                 \
			ledger_assert_fail(#c, __FILE__, __LINE__);            \
	} while (0)

#define SLOT_NONE UINT32_MAX
/* Slots are u32 and SLOT_NONE is reserved. */
#define SLOTS_MAX ((u64)UINT32_MAX - 1)
/* Transfer slots from PIN_BASE up name pinned transfers (see "The cold
 * tier"): pending transfers kept in memory after their neighbours were
 * evicted.  Ordinary transfer slots stay below it. */
#define PIN_BASE       0xF0000000u
#define XFER_SLOTS_MAX ((u64)PIN_BASE)

#define NS_PER_S	1000000000ull
#define TIMESTAMP_LIMIT ((u64)1 << 63)

/* ---------------------------------------------------------------------
 * Chunked record storage.
 */

#define ACCT_SHIFT	  14
#define XFER_SHIFT	  16
#define HIST_SHIFT	  14
#define FAIL_SHIFT	  14
#define CHUNK_MASK(shift) (((u32)1 << (shift)) - 1)

/* Per-account lists (indexes, not records). */
struct acct_aux {
	u32 *xs; /* transfer slots touching the account, ascending */
	u32 *hs; /* history point slots, ascending */
	u32 xn, xcap;
	u32 hn, hcap;
	/* List appends reserved by the current batch (valid when
	 * res_epoch == ledger.epoch; a stale count only over-reserves). */
	u32 res_epoch, res_count;
	/* == ledger.drain_no + 1 when the account is on the changed list
	 * of the changes not yet drained (ledger_drain). */
	u32 dirty;
};

struct acct_chunk {
	struct account rec[1u << ACCT_SHIFT];
	struct acct_aux aux[1u << ACCT_SHIFT];
};

struct xfer_chunk {
	struct transfer rec[1u << XFER_SHIFT];
	u8 status[1u << XFER_SHIFT];
};

/* One balance point; the explicit padding is always zero so the record can
 * be hashed and streamed as bytes. */
struct hist_rec {
	u128 debits_pending;
	u128 debits_posted;
	u128 credits_pending;
	u128 credits_posted;
	u32 xfer_slot;
	u32 acct_slot;
	u64 zero;
};
_Static_assert(sizeof(struct hist_rec) == 80, "hist_rec has no hidden padding");

struct hist_chunk {
	struct hist_rec rec[1u << HIST_SHIFT];
};

struct fail_chunk {
	u128 id[1u << FAIL_SHIFT];
};

/* Pinned transfers live in the same chunk vector as the others, from
 * chunk PIN_CHUNK0 on, so that a slot names a record with no branch. */
#define PIN_CHUNK0	(PIN_BASE >> XFER_SHIFT)
#define XFER_CHUNKS_ALL (1u << (32 - XFER_SHIFT))

/* A transfer whose status change was drained but may not be stored yet
 * (see ledger_evict). */
struct inflight {
	u128 id;
	u32 drain;
	u32 zero[3];
};

/* One id looked up in the cold tier for the current batch. */
struct cold_entry {
	struct ledger_cold_item item;
	u128 id;
	u32 epoch;
};
#define COLD_CACHE_BITS 15 /* >= 3 ids per event at load <= 3/4 */

struct chunkvec {
	void **v;
	u32 n, cap;
};

/* Records and index entries sit on cache lines: a 128-byte record is two
 * lines, never three.  (Transparent huge pages, for the chunks or for the
 * hash tables, were measured no faster here.) */
static void *big_alloc(size_t bytes)
{
	return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

static int chunkvec_reserve(struct chunkvec *cv, u64 items, unsigned shift,
			    size_t chunk_bytes)
{
	u64 need = (items + CHUNK_MASK(shift)) >> shift;

	while (cv->n < need) {
		if (cv->n == cv->cap) {
			u32 cap = cv->cap ? cv->cap * 2 : 16;
			void **v = realloc(cv->v, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			cv->v = v;
			cv->cap = cap;
		}
		void *p = big_alloc(chunk_bytes);
		if (!p)
			return -ENOMEM;
		cv->v[cv->n++] = p;
	}
	return 0;
}

/* Chunks still allocated (the cold tier frees the oldest). */
static u32 chunkvec_live(const struct chunkvec *cv)
{
	u32 k = 0;

	for (u32 i = 0; i < cv->n; i++)
		k += cv->v[i] != NULL;
	return k;
}

static void chunkvec_release(struct chunkvec *cv)
{
	for (u32 i = 0; i < cv->n; i++)
		free(cv->v[i]);
	free(cv->v);
	memset(cv, 0, sizeof(*cv));
}

/* ---------------------------------------------------------------------
 * Hash index: id -> slot.
 */

struct ix_entry {
	u32 slot; /* SLOT_NONE when empty */
	u32 tag;  /* top 32 bits of the hash; its top `bits` bits = home */
};

struct index {
	struct ix_entry *e;
	u32 bits;
	u32 mask;
	u32 count;
};

enum ix_kind { IX_ACCOUNT, IX_TRANSFER, IX_FAILED };

/* Ids are chosen by clients, so a fixed hash would let one choose ids
 * that all land in one probe run and make every lookup linear.  The key
 * (set once per process, before any ledger exists) hides where ids land.
 * It changes only the layout of the indexes, never the state: records,
 * digests and snapshots are all in slot order.
 * NEEDSWORK: a keyed PRF (SipHash) would resist an attacker who can time
 * lookups; measure its cost on the hot path first. */
static u64 hash_key = 0x5851f42d4c957f2dull;

void ledger_set_hash_key(u64 key)
{
	hash_key = key;
}

/* Mixes both halves so that sequential and structured ids spread. */
static inline u64 hash_id(u128 id)
{
	return ledger_hash_id(id);
}

u64 ledger_hash_id(u128 id)
{
	u64 lo = (u64)id, hi = (u64)(id >> 64);
	u64 x = lo ^ (hi * 0x9e3779b97f4a7c15ull) ^ hash_key;

	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

static inline u32 ix_home(const struct index *ix, u32 tag)
{
	return tag >> (32 - ix->bits);
}

static int index_init(struct index *ix, u64 hint)
{
	u32 bits = 4;

	while (bits < 31 && ((u64)1 << bits) * 3 / 4 < hint)
		bits++;
	ix->e = big_alloc(((size_t)1 << bits) * sizeof(*ix->e));
	if (!ix->e)
		return -ENOMEM;
	memset(ix->e, 0xff, ((size_t)1 << bits) * sizeof(*ix->e));
	ix->bits = bits;
	ix->mask = ((u32)1 << bits) - 1;
	ix->count = 0;
	return 0;
}

static void index_put(struct index *ix, u32 slot, u32 tag)
{
	u32 i = ix_home(ix, tag);

	while (ix->e[i].slot != SLOT_NONE)
		i = (i + 1) & ix->mask;
	ix->e[i].slot = slot;
	ix->e[i].tag = tag;
	ix->count++;
}

/* Make room for `extra` more entries at load <= 3/4. */
static int index_reserve(struct index *ix, u64 extra)
{
	u64 want = (u64)ix->count + extra;
	u32 bits = ix->bits;

	while (((u64)1 << bits) * 3 / 4 < want) {
		if (bits >= 31)
			return -ENOMEM;
		bits++;
	}
	if (bits == ix->bits)
		return 0;

	struct index nx;
	nx.e = big_alloc(((size_t)1 << bits) * sizeof(*nx.e));
	if (!nx.e)
		return -ENOMEM;
	memset(nx.e, 0xff, ((size_t)1 << bits) * sizeof(*nx.e));
	nx.bits = bits;
	nx.mask = ((u32)1 << bits) - 1;
	nx.count = 0;
	for (u32 i = 0; i <= ix->mask; i++)
		if (ix->e[i].slot != SLOT_NONE)
			index_put(&nx, ix->e[i].slot, ix->e[i].tag);
	free(ix->e);
	*ix = nx;
	return 0;
}

/* ---------------------------------------------------------------------
 * The ledger.
 */

struct heap_entry {
	u64 deadline;
	u32 slot;
	u32 zero;
};

enum undo_kind { UNDO_ACCOUNT = 1, UNDO_STATUS = 2 };

struct undo {
	u128 debits_pending;
	u128 debits_posted;
	u128 credits_pending;
	u128 credits_posted;
	u32 slot;
	u16 flags;
	u8 kind;
	u8 status;
};

struct chain_mark {
	u32 n_accounts;
	u32 n_transfers;
	u32 n_history;
	u32 undo_len;
};

struct ledger {
	struct chunkvec acct;
	struct chunkvec xfer;
	struct chunkvec hist;
	struct chunkvec fail;
	u32 n_accounts;
	u32 n_transfers;
	u32 n_history;
	u32 n_failed;

	struct index acct_ix;
	struct index xfer_ix;
	struct index fail_ix;

	struct heap_entry *heap;
	u32 heap_len, heap_cap;

	struct undo *undo;
	u32 undo_len, undo_cap;
	bool in_chain;
	struct chain_mark mark;

	/* Per-batch scratch: hashes and account slots found by the
	 * reservation pass, reused by the event loop. */
	u64 *scratch_hash;
	u64 *scratch_hdr;
	u64 *scratch_hcr;
	u32 *scratch_dr;
	u32 *scratch_cr;
	u32 batch_n;
	u32 epoch;

	u64 pending_open;
	u64 last_timestamp;

	/* The cold tier (ledger_set_cold); all zero for a ledger that
	 * keeps everything in memory. */
	struct ledger_cold cold;
	bool tracking;	    /* changes are recorded for ledger_drain */
	u64 base_transfers; /* transfers the store held at ledger_restore_end */
	bool has_cold;	    /* some state now lives only in the cold tier */
	/* Slots below these were evicted (ordinary transfer, history and
	 * failed-id slots); their chunks are freed as they empty. */
	u32 x_lo, h_lo, f_lo;
	/* Slots from these on were not drained yet. */
	u32 d_x, d_a, d_h, d_f;
	u32 drain_no;
	/* Changes since the last drain: transfer slots whose status
	 * changed (older than d_x, or pinned) and accounts (older than
	 * d_a) whose balances or flags changed. */
	u32 *dirty_st, dirty_st_len, dirty_st_cap;
	u32 *dirty_ac, dirty_ac_len, dirty_ac_cap;
	/* Status changes drained, oldest first, until stored. */
	struct inflight *fly;
	u32 fly_head, fly_len, fly_cap;
	/* Pinned transfers: slots PIN_BASE + i, in xfer chunks PIN_CHUNK0
	 * and on. */
	u32 pin_chunks;
	u32 n_pins; /* high water */
	u32 *pin_free, pin_free_len, pin_free_cap;
	/* Ids of the current batch looked up in the cold tier. */
	struct cold_entry *cc;
	u32 cc_epoch;
	u128 *cold_ids;
	struct ledger_cold_item *cold_items;
};

static inline struct account *arec(const struct ledger *l, u32 s)
{
	return &((struct acct_chunk *)l->acct.v[s >> ACCT_SHIFT])
			->rec[s & CHUNK_MASK(ACCT_SHIFT)];
}

static inline struct acct_aux *aaux(const struct ledger *l, u32 s)
{
	return &((struct acct_chunk *)l->acct.v[s >> ACCT_SHIFT])
			->aux[s & CHUNK_MASK(ACCT_SHIFT)];
}

static inline struct transfer *xrec(const struct ledger *l, u32 s)
{
	return &((struct xfer_chunk *)l->xfer.v[s >> XFER_SHIFT])
			->rec[s & CHUNK_MASK(XFER_SHIFT)];
}

static inline u8 *xstatus(const struct ledger *l, u32 s)
{
	return &((struct xfer_chunk *)l->xfer.v[s >> XFER_SHIFT])
			->status[s & CHUNK_MASK(XFER_SHIFT)];
}

static inline struct hist_rec *hrec(const struct ledger *l, u32 s)
{
	return &((struct hist_chunk *)l->hist.v[s >> HIST_SHIFT])
			->rec[s & CHUNK_MASK(HIST_SHIFT)];
}

static inline u128 *frec(const struct ledger *l, u32 s)
{
	return &((struct fail_chunk *)l->fail.v[s >> FAIL_SHIFT])
			->id[s & CHUNK_MASK(FAIL_SHIFT)];
}

static inline u128 slot_id(const struct ledger *l, enum ix_kind kind, u32 s)
{
	switch (kind) {
	case IX_ACCOUNT: return arec(l, s)->id;
	case IX_TRANSFER: return xrec(l, s)->id;
	case IX_FAILED: return *frec(l, s);
	}
	return 0;
}

static inline const struct index *ix_of(const struct ledger *l,
					enum ix_kind kind)
{
	return kind == IX_ACCOUNT    ? &l->acct_ix
	       : kind == IX_TRANSFER ? &l->xfer_ix
				     : &l->fail_ix;
}

static inline u32 ix_find(const struct ledger *l, enum ix_kind kind, u128 id,
			  u64 h)
{
	const struct index *ix = ix_of(l, kind);
	u32 tag = (u32)(h >> 32);
	u32 i = ix_home(ix, tag);

	for (;;) {
		const struct ix_entry *e = &ix->e[i];
		if (e->slot == SLOT_NONE)
			return SLOT_NONE;
		if (e->tag == tag && slot_id(l, kind, e->slot) == id)
			return e->slot;
		i = (i + 1) & ix->mask;
	}
}

/* Remove slot (which must be present) with backward-shift deletion, so no
 * tombstones accumulate from rolled-back chains. */
static void ix_remove(struct ledger *l, enum ix_kind kind, u32 slot)
{
	struct index *ix = kind == IX_ACCOUNT	 ? &l->acct_ix
			   : kind == IX_TRANSFER ? &l->xfer_ix
						 : &l->fail_ix;
	u32 tag = (u32)(hash_id(slot_id(l, kind, slot)) >> 32);
	u32 i = ix_home(ix, tag);

	while (ix->e[i].slot != slot) {
		LEDGER_ASSERT(ix->e[i].slot != SLOT_NONE);
		i = (i + 1) & ix->mask;
	}
	for (u32 j = (i + 1) & ix->mask; ix->e[j].slot != SLOT_NONE;
	     j = (j + 1) & ix->mask) {
		u32 home = ix_home(ix, ix->e[j].tag);
		if (((j - home) & ix->mask) >= ((j - i) & ix->mask)) {
			ix->e[i] = ix->e[j];
			i = j;
		}
	}
	ix->e[i].slot = SLOT_NONE;
	ix->e[i].tag = UINT32_MAX;
	ix->count--;
}

static inline u32 find_account(const struct ledger *l, u128 id)
{
	return ix_find(l, IX_ACCOUNT, id, hash_id(id));
}

static inline u32 find_transfer(const struct ledger *l, u128 id)
{
	return ix_find(l, IX_TRANSFER, id, hash_id(id));
}

/* ---------------------------------------------------------------------
 * Lifecycle.
 */

struct ledger *ledger_new(const struct ledger_options *opts)
{
	u64 ah = opts ? opts->accounts_hint : 0;
	u64 th = opts ? opts->transfers_hint : 0;
	struct ledger *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	if (ah > SLOTS_MAX)
		ah = SLOTS_MAX;
	if (th > SLOTS_MAX)
		th = SLOTS_MAX;
	if (index_init(&l->acct_ix, ah) || index_init(&l->xfer_ix, th) ||
	    index_init(&l->fail_ix, 0))
		goto fail;
	l->scratch_hash = malloc(BATCH_EVENTS_MAX * sizeof(u64));
	l->scratch_hdr = malloc(BATCH_EVENTS_MAX * sizeof(u64));
	l->scratch_hcr = malloc(BATCH_EVENTS_MAX * sizeof(u64));
	l->scratch_dr = malloc(BATCH_EVENTS_MAX * sizeof(u32));
	l->scratch_cr = malloc(BATCH_EVENTS_MAX * sizeof(u32));
	if (!l->scratch_hash || !l->scratch_hdr || !l->scratch_hcr ||
	    !l->scratch_dr || !l->scratch_cr)
		goto fail;
	return l;
fail:
	ledger_free(l);
	return NULL;
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	for (u32 s = 0; s < l->n_accounts; s++) {
		free(aaux(l, s)->xs);
		free(aaux(l, s)->hs);
	}
	for (u32 c = 0; c < l->pin_chunks; c++)
		free(l->xfer.v[PIN_CHUNK0 + c]);
	chunkvec_release(&l->acct);
	chunkvec_release(&l->xfer);
	chunkvec_release(&l->hist);
	chunkvec_release(&l->fail);
	free(l->pin_free);
	free(l->dirty_st);
	free(l->dirty_ac);
	free(l->fly);
	free(l->cc);
	free(l->cold_ids);
	free(l->cold_items);
	free(l->acct_ix.e);
	free(l->xfer_ix.e);
	free(l->fail_ix.e);
	free(l->heap);
	free(l->undo);
	free(l->scratch_hash);
	free(l->scratch_hdr);
	free(l->scratch_hcr);
	free(l->scratch_dr);
	free(l->scratch_cr);
	free(l);
}

/* ---------------------------------------------------------------------
 * Small growable arrays (per-account lists, heap, undo log).
 */

static int grow_u32(u32 **v, u32 *cap, u64 need)
{
	if (need <= *cap)
		return 0;
	if (need > SLOTS_MAX)
		return -ENOMEM;
	u64 c = *cap ? *cap : 4;
	while (c < need)
		c *= 2;
	if (c > SLOTS_MAX)
		c = SLOTS_MAX;
	u32 *p = realloc(*v, c * sizeof(u32));
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = (u32)c;
	return 0;
}

static int grow_bytes(void **v, u32 *cap, u64 need, size_t elem)
{
	if (need <= *cap)
		return 0;
	if (need > SLOTS_MAX)
		return -ENOMEM;
	u64 c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *p = realloc(*v, c * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = (u32)c;
	return 0;
}

/* ---------------------------------------------------------------------
 * Expiry heap.
 */

static inline bool heap_less(const struct heap_entry *a,
			     const struct heap_entry *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->slot < b->slot);
}

static void heap_push(struct ledger *l, u64 deadline, u32 slot)
{
	LEDGER_ASSERT(l->heap_len < l->heap_cap);
	u32 i = l->heap_len++;
	struct heap_entry e = {.deadline = deadline, .slot = slot};

	while (i > 0) {
		u32 p = (i - 1) / 2;
		if (!heap_less(&e, &l->heap[p]))
			break;
		l->heap[i] = l->heap[p];
		i = p;
	}
	l->heap[i] = e;
}

static void heap_pop(struct ledger *l)
{
	LEDGER_ASSERT(l->heap_len > 0);
	struct heap_entry e = l->heap[--l->heap_len];
	u32 n = l->heap_len, i = 0;

	if (n == 0)
		return;
	for (;;) {
		u32 c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_less(&l->heap[c + 1], &l->heap[c]))
			c++;
		if (!heap_less(&l->heap[c], &e))
			break;
		l->heap[i] = l->heap[c];
		i = c;
	}
	l->heap[i] = e;
}

static inline u64 deadline_of(const struct transfer *t)
{
	return t->timestamp + (u64)t->timeout * NS_PER_S;
}

/* Drop entries of transfers that were posted or voided since they were
 * pushed, so the top is always a transfer that is still pending. */
static void heap_prune(struct ledger *l)
{
	while (l->heap_len > 0 &&
	       *xstatus(l, l->heap[0].slot) != PENDING_PENDING)
		heap_pop(l);
}

/* ---------------------------------------------------------------------
 * Undo log for linked chains.
 */

/* Changes for ledger_drain: room was reserved with the batch
 * (track_reserve). */
static inline void touch_account(struct ledger *l, u32 slot)
{
	struct acct_aux *x;

	if (!l->tracking || slot >= l->d_a)
		return;
	x = aaux(l, slot);
	if (x->dirty == l->drain_no + 1)
		return;
	x->dirty = l->drain_no + 1;
	LEDGER_ASSERT(l->dirty_ac_len < l->dirty_ac_cap);
	l->dirty_ac[l->dirty_ac_len++] = slot;
}

static inline void log_account(struct ledger *l, u32 slot)
{
	touch_account(l, slot);
	if (!l->in_chain)
		return;
	LEDGER_ASSERT(l->undo_len < l->undo_cap);
	const struct account *a = arec(l, slot);
	struct undo *u = &l->undo[l->undo_len++];
	u->debits_pending = a->debits_pending;
	u->debits_posted = a->debits_posted;
	u->credits_pending = a->credits_pending;
	u->credits_posted = a->credits_posted;
	u->slot = slot;
	u->flags = a->flags;
	u->kind = UNDO_ACCOUNT;
	u->status = 0;
}

static inline void set_status(struct ledger *l, u32 slot, u8 status)
{
	u8 *st = xstatus(l, slot);

	if (l->in_chain) {
		LEDGER_ASSERT(l->undo_len < l->undo_cap);
		struct undo *u = &l->undo[l->undo_len++];
		memset(u, 0, sizeof(*u));
		u->slot = slot;
		u->kind = UNDO_STATUS;
		u->status = *st;
	}
	if (*st == PENDING_PENDING)
		l->pending_open--;
	if (status == PENDING_PENDING)
		l->pending_open++;
	*st = status;
	if (l->tracking && (slot < l->d_x || slot >= PIN_BASE)) {
		LEDGER_ASSERT(l->dirty_st_len < l->dirty_st_cap);
		l->dirty_st[l->dirty_st_len++] = slot;
	}
}

static void chain_begin(struct ledger *l)
{
	l->in_chain = true;
	l->mark.n_accounts = l->n_accounts;
	l->mark.n_transfers = l->n_transfers;
	l->mark.n_history = l->n_history;
	l->mark.undo_len = l->undo_len;
}

/* A chain committed: its pending transfers with a timeout enter the
 * expiry heap only now, so a rollback never leaves heap entries behind. */
static void chain_commit(struct ledger *l)
{
	for (u32 s = l->mark.n_transfers; s < l->n_transfers; s++) {
		const struct transfer *t = xrec(l, s);
		if (t->timeout && *xstatus(l, s) == PENDING_PENDING)
			heap_push(l, deadline_of(t), s);
	}
	l->in_chain = false;
	l->undo_len = 0;
}

static void chain_rollback(struct ledger *l)
{
	/* Balances, flags and statuses, newest first. */
	while (l->undo_len > l->mark.undo_len) {
		const struct undo *u = &l->undo[--l->undo_len];
		if (u->kind == UNDO_ACCOUNT) {
			struct account *a = arec(l, u->slot);
			a->debits_pending = u->debits_pending;
			a->debits_posted = u->debits_posted;
			a->credits_pending = u->credits_pending;
			a->credits_posted = u->credits_posted;
			a->flags = u->flags;
		} else {
			u8 *st = xstatus(l, u->slot);
			if (*st == PENDING_PENDING)
				l->pending_open--;
			if (u->status == PENDING_PENDING)
				l->pending_open++;
			*st = u->status;
		}
	}
	/* History points, then transfers, then accounts: all at the tails. */
	while (l->n_history > l->mark.n_history) {
		const struct hist_rec *h = hrec(l, l->n_history - 1);
		struct acct_aux *x = aaux(l, h->acct_slot);
		LEDGER_ASSERT(x->hn > 0 &&
			      x->hs[x->hn - 1] == l->n_history - 1);
		x->hn--;
		l->n_history--;
	}
	while (l->n_transfers > l->mark.n_transfers) {
		u32 s = l->n_transfers - 1;
		const struct transfer *t = xrec(l, s);
		u32 dr = find_account(l, t->debit_account_id);
		u32 cr = find_account(l, t->credit_account_id);
		LEDGER_ASSERT(dr != SLOT_NONE && cr != SLOT_NONE);
		struct acct_aux *dx = aaux(l, dr), *cx = aaux(l, cr);
		LEDGER_ASSERT(dx->xn > 0 && dx->xs[dx->xn - 1] == s);
		LEDGER_ASSERT(cx->xn > 0 && cx->xs[cx->xn - 1] == s);
		dx->xn--;
		cx->xn--;
		if (*xstatus(l, s) == PENDING_PENDING)
			l->pending_open--;
		ix_remove(l, IX_TRANSFER, s);
		l->n_transfers--;
	}
	while (l->n_accounts > l->mark.n_accounts) {
		u32 s = l->n_accounts - 1;
		ix_remove(l, IX_ACCOUNT, s);
		LEDGER_ASSERT(aaux(l, s)->xs == NULL && aaux(l, s)->hs == NULL);
		l->n_accounts--;
	}
	l->in_chain = false;
	l->undo_len = 0;
}

/* ---------------------------------------------------------------------
 * create_accounts.
 */

static u32 account_exists(const struct account *e, const struct account *a)
{
	if (e->flags != a->flags)
		return CREATE_ACCOUNT_exists_with_different_flags;
	if (e->user_data_128 != a->user_data_128)
		return CREATE_ACCOUNT_exists_with_different_user_data_128;
	if (e->user_data_64 != a->user_data_64)
		return CREATE_ACCOUNT_exists_with_different_user_data_64;
	if (e->user_data_32 != a->user_data_32)
		return CREATE_ACCOUNT_exists_with_different_user_data_32;
	if (e->ledger != a->ledger)
		return CREATE_ACCOUNT_exists_with_different_ledger;
	if (e->code != a->code)
		return CREATE_ACCOUNT_exists_with_different_code;
	return CREATE_ACCOUNT_exists;
}

static u32 create_account(struct ledger *l, const struct account *a, u64 ts)
{
	if (a->timestamp != 0)
		return CREATE_ACCOUNT_timestamp_must_be_zero;
	if (a->reserved != 0)
		return CREATE_ACCOUNT_reserved_field;
	if (a->flags & ~ACCOUNT_FLAGS_KNOWN)
		return CREATE_ACCOUNT_reserved_flag;
	if (a->id == 0)
		return CREATE_ACCOUNT_id_must_not_be_zero;
	if (a->id == U128_MAX)
		return CREATE_ACCOUNT_id_must_not_be_int_max;

	u64 h = hash_id(a->id);
	u32 s = ix_find(l, IX_ACCOUNT, a->id, h);
	if (s != SLOT_NONE)
		return account_exists(a, arec(l, s));

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

	s = l->n_accounts++;
	struct account *r = arec(l, s);
	*r = *a;
	r->timestamp = ts;
	memset(aaux(l, s), 0, sizeof(struct acct_aux));
	index_put(&l->acct_ix, s, (u32)(h >> 32));
	return CREATE_ACCOUNT_ok;
}

static int check_batch(const struct ledger *l, u32 n, u64 timestamp)
{
	if (n == 0 || n > BATCH_EVENTS_MAX)
		return -EINVAL;
	/* Event timestamps must be unique, increasing and below 2^63. */
	if (timestamp >= TIMESTAMP_LIMIT || timestamp < n ||
	    timestamp - n + 1 <= l->last_timestamp)
		return -EINVAL;
	return 0;
}

/*
 * The batch driver shared by both operations: chains, chain_open, and the
 * linked_event_failed marking.  `apply` returns a result code; 0 == ok.
 */
#define RUN_BATCH(l, events, n, timestamp, results, apply, FAILED, OPEN)       \
	do {                                                                   \
		u32 chain_start_ = SLOT_NONE;                                  \
		bool chain_failed_ = false;                                    \
		u64 base_ = (timestamp) - (n) + 1;                             \
		for (u32 i_ = 0; i_ < (n); i_++) {                             \
			bool linked_ = (events)[i_].flags & 1u;                \
			u32 r_;                                                \
			if (chain_start_ == SLOT_NONE && linked_) {            \
				chain_start_ = i_;                             \
				chain_failed_ = false;                         \
				chain_begin(l);                                \
			}                                                      \
			if (linked_ && i_ == (n)-1)                            \
				r_ = (OPEN);                                   \
			else if (chain_start_ != SLOT_NONE && chain_failed_)   \
				r_ = (FAILED);                                 \
			else                                                   \
				r_ = apply((l), &(events)[i_], base_ + i_,     \
					   i_);                                \
			(results)[i_] = r_;                                    \
			if (r_ != 0 && chain_start_ != SLOT_NONE &&            \
			    !chain_failed_) {                                  \
				chain_failed_ = true;                          \
				chain_rollback(l);                             \
				for (u32 j_ = chain_start_; j_ < i_; j_++)     \
					(results)[j_] = (FAILED);              \
			}                                                      \
			if (chain_start_ != SLOT_NONE && !linked_) {           \
				if (!chain_failed_)                            \
					chain_commit(l);                       \
				chain_start_ = SLOT_NONE;                      \
			}                                                      \
		}                                                              \
		LEDGER_ASSERT(chain_start_ == SLOT_NONE || chain_failed_);     \
		l->in_chain = false;                                           \
		l->undo_len = 0;                                               \
		l->last_timestamp = (timestamp);                               \
	} while (0)

static inline u32 apply_account(struct ledger *l, const struct account *a,
				u64 ts, u32 i)
{
	(void)i;
	return create_account(l, a, ts);
}

int ledger_create_accounts(struct ledger *l, const struct account *events,
			   u32 n, u64 timestamp, u32 *results)
{
	int ret = check_batch(l, n, timestamp);

	if (ret)
		return ret;
	if ((u64)l->n_accounts + n > SLOTS_MAX)
		return -ENOMEM;
	ret = chunkvec_reserve(&l->acct, (u64)l->n_accounts + n, ACCT_SHIFT,
			       sizeof(struct acct_chunk));
	if (!ret)
		ret = index_reserve(&l->acct_ix, n);
	if (ret)
		return ret;

	RUN_BATCH(l, events, n, timestamp, results, apply_account,
		  CREATE_ACCOUNT_linked_event_failed,
		  CREATE_ACCOUNT_linked_event_chain_open);
	return 0;
}

/* ---------------------------------------------------------------------
 * create_transfers.
 */

static inline bool is_post_or_void(const struct transfer *t)
{
	return t->flags & (TRANSFER_POST_PENDING_TRANSFER |
			   TRANSFER_VOID_PENDING_TRANSFER);
}

/* ---------------------------------------------------------------------
 * The cold tier, read side: the ids of a batch that memory does not hold
 * are looked up before the batch applies and kept in a small table for
 * the batch (cold_prefetch); the event loop finds them there.
 */

#define COLD_CACHE_MASK ((1u << COLD_CACHE_BITS) - 1)

static struct cold_entry *cc_slot(const struct ledger *l, u128 id, u64 h)
{
	u32 i = (u32)h & COLD_CACHE_MASK;

	for (;;) {
		struct cold_entry *e = &l->cc[i];
		if (e->epoch != l->cc_epoch || e->id == id)
			return e;
		i = (i + 1) & COLD_CACHE_MASK;
	}
}

/* The cold tier's answer for an id memory does not hold: NULL when it
 * has none.  Every such id of the batch was looked up beforehand. */
static const struct ledger_cold_item *cold_find(const struct ledger *l, u128 id,
						u64 h)
{
	if (!l->has_cold)
		return NULL;
	const struct cold_entry *e = cc_slot(l, id, h);
	LEDGER_ASSERT(e->epoch == l->cc_epoch && e->id == id);
	return e->item.kind == LEDGER_COLD_ABSENT ? NULL : &e->item;
}

/* Queue id for the cold tier unless memory holds it or it is queued. */
static void cold_want(struct ledger *l, u128 id, u32 *k)
{
	if (id == 0 || id == U128_MAX)
		return;
	u64 h = hash_id(id);
	if (ix_find(l, IX_TRANSFER, id, h) != SLOT_NONE)
		return;
	struct cold_entry *e = cc_slot(l, id, h);
	if (e->epoch == l->cc_epoch)
		return;
	e->epoch = l->cc_epoch;
	e->id = id;
	e->item.kind = LEDGER_COLD_ABSENT;
	l->cold_ids[(*k)++] = id;
}

/* Look up what the batch may need from the cold tier: each event's id
 * (idempotency, id_already_failed) and a post or void's pending id (a
 * retried post or void compares with that same pending transfer).  A
 * transfer memory does not hold is never pending: the cold tier saying
 * otherwise, or answering for another id, is corrupt (-EIO). */
static int cold_prefetch(struct ledger *l, const struct transfer *ev, u32 n,
			 bool ids_only)
{
	u32 k = 0;
	int ret;

	if (!l->has_cold)
		return 0;
	if (++l->cc_epoch == 0) {
		memset(l->cc, 0, sizeof(*l->cc) << COLD_CACHE_BITS);
		l->cc_epoch = 1;
	}
	for (u32 i = 0; i < n; i++) {
		cold_want(l, ev[i].id, &k);
		if (!ids_only &&
		    (ev[i].flags & (TRANSFER_POST_PENDING_TRANSFER |
				    TRANSFER_VOID_PENDING_TRANSFER)))
			cold_want(l, ev[i].pending_id, &k);
	}
	if (k == 0)
		return 0;
	ret = l->cold.get(l->cold.ctx, l->cold_ids, k, l->cold_items);
	if (ret)
		return ret < 0 ? ret : -EIO;
	for (u32 i = 0; i < k; i++) {
		const struct ledger_cold_item *it = &l->cold_items[i];
		if (it->kind > LEDGER_COLD_FAILED ||
		    (it->kind == LEDGER_COLD_TRANSFER &&
		     (it->t.id != l->cold_ids[i] ||
		      it->status == PENDING_PENDING ||
		      it->status > PENDING_EXPIRED)))
			return -EIO;
	}
	for (u32 i = 0; i < k; i++)
		cc_slot(l, l->cold_ids[i], hash_id(l->cold_ids[i]))->item =
			l->cold_items[i];
	return 0;
}

/* A transfer by id in either tier, with its status; NULL if none. */
static const struct transfer *any_transfer(const struct ledger *l, u128 id,
					   u64 h, u32 *slot, u8 *status)
{
	u32 s = ix_find(l, IX_TRANSFER, id, h);

	*slot = s;
	if (s != SLOT_NONE) {
		*status = *xstatus(l, s);
		return xrec(l, s);
	}
	const struct ledger_cold_item *c = cold_find(l, id, h);
	if (!c || c->kind != LEDGER_COLD_TRANSFER)
		return NULL;
	*status = c->status;
	return &c->t;
}

/* Idempotency: compare a retried event with the stored transfer.  For
 * post/void, a zero optional field stands for the pending transfer's value
 * (what the retry would have stored), and compares as that. */
static u32 transfer_exists(const struct ledger *l, const struct transfer *t,
			   const struct transfer *e)
{
	bool pv = is_post_or_void(t);
	u128 dr = t->debit_account_id, cr = t->credit_account_id;
	u128 ud128 = t->user_data_128;
	u64 ud64 = t->user_data_64;
	u32 ud32 = t->user_data_32, ledger = t->ledger;
	u16 code = t->code;
	const struct transfer *p = NULL;

	if (t->flags != e->flags)
		return CREATE_TRANSFER_exists_with_different_flags;
	if (t->pending_id != e->pending_id)
		return CREATE_TRANSFER_exists_with_different_pending_id;
	if (t->timeout != e->timeout)
		return CREATE_TRANSFER_exists_with_different_timeout;
	if (pv) {
		u32 ps;
		u8 pst;
		p = any_transfer(l, e->pending_id, hash_id(e->pending_id), &ps,
				 &pst);
		LEDGER_ASSERT(p != NULL);
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

	bool amount_ok;
	if (t->flags & (TRANSFER_BALANCING_DEBIT | TRANSFER_BALANCING_CREDIT)) {
		/* The stored amount is what was actually moved, at most the
		 * requested maximum. */
		amount_ok = t->amount >= e->amount;
	} else if (t->flags & TRANSFER_POST_PENDING_TRANSFER) {
		/* A partial post is retried with the posted amount; a full
		 * one with any amount >= the pending amount. */
		amount_ok = t->amount == e->amount ||
			    (e->amount == p->amount && t->amount >= p->amount);
	} else if (t->flags & TRANSFER_VOID_PENDING_TRANSFER) {
		amount_ok = (t->amount ? t->amount : p->amount) == e->amount;
	} else {
		amount_ok = t->amount == e->amount;
	}
	if (!amount_ok)
		return CREATE_TRANSFER_exists_with_different_amount;

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

static inline u128 sat_add(u128 a, u128 b)
{
	u128 r;
	return u128_add(a, b, &r) ? r : U128_MAX;
}

static inline u128 sat_sub(u128 a, u128 b)
{
	return a > b ? a - b : 0;
}

static void push_list(struct ledger *l, u32 acct, u32 xfer_slot)
{
	struct acct_aux *x = aaux(l, acct);

	LEDGER_ASSERT(x->xn < x->xcap);
	x->xs[x->xn++] = xfer_slot;
	if (arec(l, acct)->flags & ACCOUNT_HISTORY) {
		const struct account *a = arec(l, acct);
		u32 hs = l->n_history++;
		struct hist_rec *h = hrec(l, hs);
		h->debits_pending = a->debits_pending;
		h->debits_posted = a->debits_posted;
		h->credits_pending = a->credits_pending;
		h->credits_posted = a->credits_posted;
		h->xfer_slot = xfer_slot;
		h->acct_slot = acct;
		h->zero = 0;
		LEDGER_ASSERT(x->hn < x->hcap);
		x->hs[x->hn++] = hs;
	}
}

/* Store a new transfer whose effects on balances already happened. */
static void insert_transfer(struct ledger *l, const struct transfer *rec, u64 h,
			    u32 dr, u32 cr)
{
	u32 s = l->n_transfers++;

	*xrec(l, s) = *rec;
	*xstatus(l, s) = PENDING_NONE;
	index_put(&l->xfer_ix, s, (u32)(h >> 32));
	if (rec->flags & TRANSFER_PENDING) {
		set_status(l, s, PENDING_PENDING);
		if (rec->timeout && !l->in_chain)
			heap_push(l, deadline_of(rec), s);
	}
	push_list(l, dr, s);
	push_list(l, cr, s);
}

static u32 create_single_or_pending(struct ledger *l, const struct transfer *t,
				    u64 ts, u64 h, u32 drs, u32 crs)
{
	struct account *dr = arec(l, drs), *cr = arec(l, crs);
	bool pending = t->flags & TRANSFER_PENDING;
	u128 amount = t->amount;

	if (dr->flags & ACCOUNT_CLOSED)
		return CREATE_TRANSFER_debit_account_already_closed;
	if (cr->flags & ACCOUNT_CLOSED)
		return CREATE_TRANSFER_credit_account_already_closed;

	if (t->flags & TRANSFER_BALANCING_DEBIT) {
		u128 used = sat_add(dr->debits_pending, dr->debits_posted);
		amount = u128_min(amount, sat_sub(dr->credits_posted, used));
	}
	if (t->flags & TRANSFER_BALANCING_CREDIT) {
		u128 used = sat_add(cr->credits_pending, cr->credits_posted);
		amount = u128_min(amount, sat_sub(cr->debits_posted, used));
	}

	/* The posted sums are checked for pending transfers too: a pending
	 * transfer that could never be posted is refused up front. */
	u128 x;
	if (pending) {
		if (!u128_add(dr->debits_pending, amount, &x))
			return CREATE_TRANSFER_overflows_debits_pending;
		if (!u128_add(cr->credits_pending, amount, &x))
			return CREATE_TRANSFER_overflows_credits_pending;
	}
	if (!u128_add(dr->debits_posted, amount, &x))
		return CREATE_TRANSFER_overflows_debits_posted;
	if (!u128_add(cr->credits_posted, amount, &x))
		return CREATE_TRANSFER_overflows_credits_posted;
	u128 dr_total, cr_total;
	if (!u128_add(dr->debits_pending, dr->debits_posted, &dr_total) ||
	    !u128_add(dr_total, amount, &dr_total))
		return CREATE_TRANSFER_overflows_debits;
	if (!u128_add(cr->credits_pending, cr->credits_posted, &cr_total) ||
	    !u128_add(cr_total, amount, &cr_total))
		return CREATE_TRANSFER_overflows_credits;
	if (pending && t->timeout) {
		u64 d = ts + (u64)t->timeout * NS_PER_S;
		if (d < ts || d >= TIMESTAMP_LIMIT)
			return CREATE_TRANSFER_overflows_timeout;
	}
	if ((dr->flags & ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
	    dr_total > dr->credits_posted)
		return CREATE_TRANSFER_exceeds_credits;
	if ((cr->flags & ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
	    cr_total > cr->debits_posted)
		return CREATE_TRANSFER_exceeds_debits;

	log_account(l, drs);
	log_account(l, crs);
	if (pending) {
		dr->debits_pending += amount;
		cr->credits_pending += amount;
		if (t->flags & TRANSFER_CLOSING_DEBIT)
			dr->flags |= ACCOUNT_CLOSED;
		if (t->flags & TRANSFER_CLOSING_CREDIT)
			cr->flags |= ACCOUNT_CLOSED;
	} else {
		dr->debits_posted += amount;
		cr->credits_posted += amount;
	}

	struct transfer rec = *t;
	rec.amount = amount;
	rec.timestamp = ts;
	insert_transfer(l, &rec, h, drs, crs);
	return CREATE_TRANSFER_ok;
}

static u32 create_post_or_void(struct ledger *l, const struct transfer *t,
			       u64 ts, u64 h, u64 hp)
{
	bool post = t->flags & TRANSFER_POST_PENDING_TRANSFER;
	u32 ps;
	u8 pst;
	const struct transfer *p =
		any_transfer(l, t->pending_id, hp, &ps, &pst);

	if (!p)
		return CREATE_TRANSFER_pending_transfer_not_found;
	if (!(p->flags & TRANSFER_PENDING))
		return CREATE_TRANSFER_pending_transfer_not_pending;
	if (t->debit_account_id && t->debit_account_id != p->debit_account_id)
		return CREATE_TRANSFER_pending_transfer_has_different_debit_account_id;
	if (t->credit_account_id &&
	    t->credit_account_id != p->credit_account_id)
		return CREATE_TRANSFER_pending_transfer_has_different_credit_account_id;
	if (t->ledger && t->ledger != p->ledger)
		return CREATE_TRANSFER_pending_transfer_has_different_ledger;
	if (t->code && t->code != p->code)
		return CREATE_TRANSFER_pending_transfer_has_different_code;

	/* Post: AMOUNT_MAX means the full pending amount.  Void: 0 means
	 * the full pending amount, anything else must equal it; an amount
	 * above the pending one is exceeds_pending_transfer_amount for both,
	 * as it precedes pending_transfer_has_different_amount. */
	u128 amount;
	if (post)
		amount = t->amount == AMOUNT_MAX ? p->amount : t->amount;
	else
		amount = t->amount == 0 ? p->amount : t->amount;
	if (amount > p->amount)
		return CREATE_TRANSFER_exceeds_pending_transfer_amount;
	if (!post && amount != p->amount)
		return CREATE_TRANSFER_pending_transfer_has_different_amount;

	switch (pst) {
	case PENDING_POSTED:
		return CREATE_TRANSFER_pending_transfer_already_posted;
	case PENDING_VOIDED:
		return CREATE_TRANSFER_pending_transfer_already_voided;
	case PENDING_EXPIRED: return CREATE_TRANSFER_pending_transfer_expired;
	case PENDING_PENDING: break;
	default: LEDGER_ASSERT(!"pending transfer with no pending status");
	}
	/* Past its deadline but not yet pulsed: already expired. */
	if (p->timeout && deadline_of(p) <= ts)
		return CREATE_TRANSFER_pending_transfer_expired;
	LEDGER_ASSERT(ps != SLOT_NONE); /* pending ones stay in memory */

	u32 drs = find_account(l, p->debit_account_id);
	u32 crs = find_account(l, p->credit_account_id);
	LEDGER_ASSERT(drs != SLOT_NONE && crs != SLOT_NONE);
	struct account *dr = arec(l, drs), *cr = arec(l, crs);

	/* A closed account still lets its pending transfers be voided. */
	if (post && (dr->flags & ACCOUNT_CLOSED))
		return CREATE_TRANSFER_debit_account_already_closed;
	if (post && (cr->flags & ACCOUNT_CLOSED))
		return CREATE_TRANSFER_credit_account_already_closed;

	LEDGER_ASSERT(dr->debits_pending >= p->amount);
	LEDGER_ASSERT(cr->credits_pending >= p->amount);
	u128 dpo = dr->debits_posted, cpo = cr->credits_posted;
	if (post) {
		/* Cannot fail while pending + posted did not overflow when
		 * the pending transfer was created; checked all the same. */
		if (!u128_add(dpo, amount, &dpo))
			return CREATE_TRANSFER_overflows_debits_posted;
		if (!u128_add(cpo, amount, &cpo))
			return CREATE_TRANSFER_overflows_credits_posted;
	}

	log_account(l, drs);
	log_account(l, crs);
	dr->debits_pending -= p->amount;
	cr->credits_pending -= p->amount;
	dr->debits_posted = dpo;
	cr->credits_posted = cpo;
	if (!post) {
		if (p->flags & TRANSFER_CLOSING_DEBIT)
			dr->flags &= (u16)~ACCOUNT_CLOSED;
		if (p->flags & TRANSFER_CLOSING_CREDIT)
			cr->flags &= (u16)~ACCOUNT_CLOSED;
	}
	set_status(l, ps, post ? PENDING_POSTED : PENDING_VOIDED);

	struct transfer rec = *t;
	rec.debit_account_id = p->debit_account_id;
	rec.credit_account_id = p->credit_account_id;
	rec.amount = amount;
	if (!rec.user_data_128)
		rec.user_data_128 = p->user_data_128;
	if (!rec.user_data_64)
		rec.user_data_64 = p->user_data_64;
	if (!rec.user_data_32)
		rec.user_data_32 = p->user_data_32;
	rec.ledger = p->ledger;
	rec.code = p->code;
	rec.timestamp = ts;
	insert_transfer(l, &rec, h, drs, crs);
	return CREATE_TRANSFER_ok;
}

static u32 create_transfer(struct ledger *l, const struct transfer *t, u64 ts,
			   u32 i)
{
	if (t->timestamp != 0)
		return CREATE_TRANSFER_timestamp_must_be_zero;
	if (t->flags & ~TRANSFER_FLAGS_KNOWN)
		return CREATE_TRANSFER_reserved_flag;
	if (t->id == 0)
		return CREATE_TRANSFER_id_must_not_be_zero;
	if (t->id == U128_MAX)
		return CREATE_TRANSFER_id_must_not_be_int_max;

	u64 h = l->scratch_hash[i];
	u32 es = ix_find(l, IX_TRANSFER, t->id, h);
	if (es != SLOT_NONE)
		return transfer_exists(l, t, xrec(l, es));
	if (l->fail_ix.count && ix_find(l, IX_FAILED, t->id, h) != SLOT_NONE)
		return CREATE_TRANSFER_id_already_failed;
	if (__builtin_expect(l->has_cold, 0)) {
		const struct ledger_cold_item *c = cold_find(l, t->id, h);
		if (c)
			return c->kind == LEDGER_COLD_FAILED
				       ? CREATE_TRANSFER_id_already_failed
				       : transfer_exists(l, t, &c->t);
	}

	u16 f = t->flags;
	bool pending = f & TRANSFER_PENDING;
	bool post = f & TRANSFER_POST_PENDING_TRANSFER;
	bool vd = f & TRANSFER_VOID_PENDING_TRANSFER;
	u16 closing = TRANSFER_CLOSING_DEBIT | TRANSFER_CLOSING_CREDIT;
	u16 not_with_pv =
		TRANSFER_BALANCING_DEBIT | TRANSFER_BALANCING_CREDIT | closing;
	if ((pending && (post || vd)) || (post && vd) ||
	    ((post || vd) && (f & not_with_pv)))
		return CREATE_TRANSFER_flags_are_mutually_exclusive;

	if (!post && !vd) {
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
	} else {
		if (t->pending_id == 0)
			return CREATE_TRANSFER_pending_id_must_not_be_zero;
		if (t->pending_id == U128_MAX)
			return CREATE_TRANSFER_pending_id_must_not_be_int_max;
		if (t->pending_id == t->id)
			return CREATE_TRANSFER_pending_id_must_be_different;
	}
	if (!pending && t->timeout != 0)
		return CREATE_TRANSFER_timeout_reserved_for_pending_transfer;
	if (!pending && (f & closing))
		return CREATE_TRANSFER_closing_transfer_must_be_pending;

	if (post || vd)
		return create_post_or_void(l, t, ts, h, l->scratch_hdr[i]);

	if (t->ledger == 0)
		return CREATE_TRANSFER_ledger_must_not_be_zero;
	if (t->code == 0)
		return CREATE_TRANSFER_code_must_not_be_zero;
	u32 drs = l->scratch_dr[i], crs = l->scratch_cr[i];
	if (drs == SLOT_NONE)
		return CREATE_TRANSFER_debit_account_not_found;
	if (crs == SLOT_NONE)
		return CREATE_TRANSFER_credit_account_not_found;
	u32 dl = arec(l, drs)->ledger;
	if (dl != arec(l, crs)->ledger)
		return CREATE_TRANSFER_accounts_must_have_the_same_ledger;
	if (t->ledger != dl)
		return CREATE_TRANSFER_transfer_must_have_the_same_ledger_as_accounts;
	return create_single_or_pending(l, t, ts, h, drs, crs);
}

static void remember_failed(struct ledger *l, u128 id, u64 h)
{
	u32 s = l->n_failed++;

	*frec(l, s) = id;
	index_put(&l->fail_ix, s, (u32)(h >> 32));
}

/* Prefetch distance (events) of the pipelined passes: far enough to
 * cover a DRAM miss, near enough to stay in L1/L2. */
#define PF_DIST 16

static inline void prefetch_home(const struct index *ix, u64 h)
{
	__builtin_prefetch(&ix->e[ix_home(ix, (u32)(h >> 32))]);
}

/* Prefetch the records of every entry whose tag matches, so the id
 * comparison of a later ix_find() hits the cache. */
static inline void prefetch_candidates(const struct ledger *l,
				       enum ix_kind kind, u64 h)
{
	const struct index *ix = ix_of(l, kind);
	u32 tag = (u32)(h >> 32);

	for (u32 i = ix_home(ix, tag); ix->e[i].slot != SLOT_NONE;
	     i = (i + 1) & ix->mask) {
		if (ix->e[i].tag != tag)
			continue;
		u32 s = ix->e[i].slot;
		if (kind == IX_ACCOUNT) {
			/* id on the first line, ledger and flags on the
			 * second; the list header in aux. */
			__builtin_prefetch(arec(l, s));
			__builtin_prefetch((const char *)arec(l, s) + 64);
			__builtin_prefetch(aaux(l, s));
		} else {
			__builtin_prefetch(xrec(l, s));
		}
	}
}

/* Count one (or k) list appends for an account and make room for them. */
static int reserve_account(struct ledger *l, u32 s, u32 k)
{
	struct acct_aux *x = aaux(l, s);
	int ret;

	if (x->res_epoch != l->epoch) {
		x->res_epoch = l->epoch;
		x->res_count = 0;
	}
	x->res_count += k;
	ret = grow_u32(&x->xs, &x->xcap, (u64)x->xn + x->res_count);
	if (!ret && (arec(l, s)->flags & ACCOUNT_HISTORY))
		ret = grow_u32(&x->hs, &x->hcap, (u64)x->hn + x->res_count);
	return ret;
}

/* Stage 3 of the reservation pass for event i. */
static int reserve_event(struct ledger *l, const struct transfer *t, u32 i)
{
	u32 dr, cr;
	int ret = 0;

	if (is_post_or_void(t)) {
		u32 ps = ix_find(l, IX_TRANSFER, t->pending_id,
				 l->scratch_hdr[i]);
		dr = cr = SLOT_NONE;
		if (ps != SLOT_NONE) {
			const struct transfer *p = xrec(l, ps);
			dr = find_account(l, p->debit_account_id);
			cr = find_account(l, p->credit_account_id);
		}
		l->scratch_dr[i] = SLOT_NONE;
		l->scratch_cr[i] = SLOT_NONE;
	} else {
		dr = ix_find(l, IX_ACCOUNT, t->debit_account_id,
			     l->scratch_hdr[i]);
		cr = ix_find(l, IX_ACCOUNT, t->credit_account_id,
			     l->scratch_hcr[i]);
		l->scratch_dr[i] = dr;
		l->scratch_cr[i] = cr;
	}
	/* A pending transfer counts twice, for the post or void that may
	 * follow it in the same batch. */
	u32 k = (t->flags & TRANSFER_PENDING) ? 2 : 1;
	if (dr != SLOT_NONE)
		ret = reserve_account(l, dr, k);
	if (!ret && cr != SLOT_NONE)
		ret = reserve_account(l, cr, k);
	return ret;
}

/*
 * Reserve everything the batch could need, so that the event loop never
 * allocates and -ENOMEM leaves the ledger as it was (grown capacity is
 * not state).  The pass also records each event's hashes and account
 * slots (accounts cannot appear during a create_transfers batch) for the
 * event loop, and is pipelined: hash and prefetch index entries PF_DIST
 * events ahead, prefetch candidate records PF_DIST/2 ahead, then look up.
 */
static int reserve_transfers(struct ledger *l, const struct transfer *ev, u32 n)
{
	int ret = 0;

	if ((u64)l->n_transfers + n > XFER_SLOTS_MAX ||
	    (u64)l->n_history + 2ull * n > SLOTS_MAX ||
	    (u64)l->n_failed + n > SLOTS_MAX)
		return -ENOMEM;
	ret = chunkvec_reserve(&l->xfer, (u64)l->n_transfers + n, XFER_SHIFT,
			       sizeof(struct xfer_chunk));
	if (!ret)
		ret = chunkvec_reserve(&l->hist, (u64)l->n_history + 2ull * n,
				       HIST_SHIFT, sizeof(struct hist_chunk));
	if (!ret)
		ret = chunkvec_reserve(&l->fail, (u64)l->n_failed + n,
				       FAIL_SHIFT, sizeof(struct fail_chunk));
	if (!ret)
		ret = index_reserve(&l->xfer_ix, n);
	if (!ret)
		ret = index_reserve(&l->fail_ix, n);
	if (!ret)
		ret = grow_bytes((void **)&l->heap, &l->heap_cap,
				 (u64)l->heap_len + n, sizeof(*l->heap));
	if (!ret)
		ret = grow_bytes((void **)&l->undo, &l->undo_cap, 3ull * n,
				 sizeof(*l->undo));
	if (ret)
		return ret;

	l->epoch++;
	for (u32 j = 0; j < n + PF_DIST && !ret; j++) {
		if (j < n) {
			const struct transfer *t = &ev[j];
			u64 h = hash_id(t->id);
			l->scratch_hash[j] = h;
			prefetch_home(&l->xfer_ix, h);
			if (is_post_or_void(t)) {
				h = hash_id(t->pending_id);
				l->scratch_hdr[j] = h;
				prefetch_home(&l->xfer_ix, h);
			} else {
				h = hash_id(t->debit_account_id);
				l->scratch_hdr[j] = h;
				prefetch_home(&l->acct_ix, h);
				h = hash_id(t->credit_account_id);
				l->scratch_hcr[j] = h;
				prefetch_home(&l->acct_ix, h);
			}
		}
		if (j >= PF_DIST / 2 && j - PF_DIST / 2 < n) {
			u32 i = j - PF_DIST / 2;
			if (is_post_or_void(&ev[i])) {
				prefetch_candidates(l, IX_TRANSFER,
						    l->scratch_hdr[i]);
			} else {
				prefetch_candidates(l, IX_ACCOUNT,
						    l->scratch_hdr[i]);
				prefetch_candidates(l, IX_ACCOUNT,
						    l->scratch_hcr[i]);
			}
		}
		if (j >= PF_DIST)
			ret = reserve_event(l, &ev[j - PF_DIST], j - PF_DIST);
	}
	return ret;
}

/* Event-loop prefetch: PF_DIST events ahead, the lines the event will
 * write (accounts, their list tails, the id's index entry). */
static inline void prefetch_event(const struct ledger *l, u32 i)
{
	if (i >= l->batch_n)
		return;
	prefetch_home(&l->xfer_ix, l->scratch_hash[i]);
	u32 s[2] = {l->scratch_dr[i], l->scratch_cr[i]};
	for (int k = 0; k < 2; k++) {
		if (s[k] == SLOT_NONE)
			continue;
		const struct acct_aux *x = aaux(l, s[k]);
		__builtin_prefetch(arec(l, s[k]), 1);
		__builtin_prefetch((const char *)arec(l, s[k]) + 64, 1);
		if (x->xs)
			__builtin_prefetch(&x->xs[x->xn], 1);
	}
}

static inline u32 apply_transfer(struct ledger *l, const struct transfer *t,
				 u64 ts, u32 i)
{
	prefetch_event(l, i + PF_DIST);
	u32 r = create_transfer(l, t, ts, i);

	/* A transient failure fixes the outcome for this id, even when the
	 * event was part of a chain that is rolled back. */
	if (create_transfer_result_transient(r))
		remember_failed(l, t->id, l->scratch_hash[i]);
	return r;
}

static void expire_one(struct ledger *l, u32 slot)
{
	const struct transfer *p = xrec(l, slot);
	u32 drs = find_account(l, p->debit_account_id);
	u32 crs = find_account(l, p->credit_account_id);

	LEDGER_ASSERT(drs != SLOT_NONE && crs != SLOT_NONE);
	struct account *dr = arec(l, drs), *cr = arec(l, crs);
	LEDGER_ASSERT(dr->debits_pending >= p->amount);
	LEDGER_ASSERT(cr->credits_pending >= p->amount);
	touch_account(l, drs);
	touch_account(l, crs);
	dr->debits_pending -= p->amount;
	cr->credits_pending -= p->amount;
	if (p->flags & TRANSFER_CLOSING_DEBIT)
		dr->flags &= (u16)~ACCOUNT_CLOSED;
	if (p->flags & TRANSFER_CLOSING_CREDIT)
		cr->flags &= (u16)~ACCOUNT_CLOSED;
	set_status(l, slot, PENDING_EXPIRED);
}

/* Room in the change lists for `events` more events and `expiries`
 * expiries, so the event loop and the pulse never allocate. */
static int track_reserve(struct ledger *l, u64 events, u64 expiries)
{
	if (!l->tracking)
		return 0;
	int ret = grow_u32(&l->dirty_st, &l->dirty_st_cap,
			   (u64)l->dirty_st_len + events + expiries);
	if (!ret)
		ret = grow_u32(&l->dirty_ac, &l->dirty_ac_cap,
			       (u64)l->dirty_ac_len + 2 * (events + expiries));
	return ret;
}

static void pulse(struct ledger *l, u64 timestamp)
{
	LEDGER_ASSERT(!l->in_chain);
	heap_prune(l);
	while (l->heap_len > 0 && l->heap[0].deadline <= timestamp) {
		u32 s = l->heap[0].slot;
		u64 deadline = l->heap[0].deadline;
		heap_pop(l);
		if (*xstatus(l, s) != PENDING_PENDING)
			continue;
		LEDGER_ASSERT(deadline_of(xrec(l, s)) == deadline);
		expire_one(l, s);
		heap_prune(l);
	}
}

int ledger_pulse(struct ledger *l, u64 timestamp)
{
	if (track_reserve(l, 0, l->heap_len))
		return -ENOMEM;
	pulse(l, timestamp);
	return 0;
}

int ledger_create_transfers(struct ledger *l, const struct transfer *events,
			    u32 n, u64 timestamp, u32 *results)
{
	int ret = check_batch(l, n, timestamp);

	if (ret)
		return ret;
	ret = cold_prefetch(l, events, n, false);
	if (!ret)
		ret = track_reserve(l, n, l->heap_len);
	if (!ret)
		ret = reserve_transfers(l, events, n);
	if (ret)
		return ret;
	l->batch_n = n;

	pulse(l, timestamp - n + 1);
	RUN_BATCH(l, events, n, timestamp, results, apply_transfer,
		  CREATE_TRANSFER_linked_event_failed,
		  CREATE_TRANSFER_linked_event_chain_open);
	heap_prune(l);
	return 0;
}

u64 ledger_next_expiry(const struct ledger *l)
{
	return l->heap_len ? l->heap[0].deadline : 0;
}

u64 ledger_last_timestamp(const struct ledger *l)
{
	return l->last_timestamp;
}

/* ---------------------------------------------------------------------
 * Lookups and queries.
 */

int ledger_lookup_account(const struct ledger *l, u128 id, struct account *out)
{
	u32 s = find_account(l, id);

	if (s == SLOT_NONE)
		return -ENOENT;
	*out = *arec(l, s);
	return 0;
}

int ledger_lookup_transfer(const struct ledger *l, u128 id,
			   struct transfer *out)
{
	u32 s = find_transfer(l, id);

	if (s == SLOT_NONE)
		return -ENOENT;
	*out = *xrec(l, s);
	return 0;
}

enum pending_status ledger_pending_status(const struct ledger *l, u128 id)
{
	u32 s = find_transfer(l, id);

	if (s == SLOT_NONE)
		return PENDING_NONE;
	return (enum pending_status) * xstatus(l, s);
}

bool ledger_filter_valid(const struct account_filter *f)
{
	u32 known = ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS |
		    ACCOUNT_FILTER_REVERSED;

	if (f->account_id == 0 || f->account_id == U128_MAX)
		return false;
	if (f->timestamp_min >= TIMESTAMP_LIMIT ||
	    f->timestamp_max >= TIMESTAMP_LIMIT)
		return false;
	if (f->timestamp_max != 0 && f->timestamp_min > f->timestamp_max)
		return false;
	if (f->limit == 0)
		return false;
	if (f->flags & ~known)
		return false;
	if (!(f->flags & (ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS)))
		return false;
	return true;
}

bool ledger_filter_match(const struct account_filter *f,
			 const struct transfer *t)
{
	if ((f->flags & ACCOUNT_FILTER_DEBITS) &&
	    t->debit_account_id == f->account_id)
		goto side_ok;
	if ((f->flags & ACCOUNT_FILTER_CREDITS) &&
	    t->credit_account_id == f->account_id)
		goto side_ok;
	return false;
side_ok:
	if (f->user_data_128 && t->user_data_128 != f->user_data_128)
		return false;
	if (f->user_data_64 && t->user_data_64 != f->user_data_64)
		return false;
	if (f->user_data_32 && t->user_data_32 != f->user_data_32)
		return false;
	if (f->code && t->code != f->code)
		return false;
	return true;
}

/* Walk a per-account list of entries (transfer slots, or history slots
 * mapped to transfer slots) in timestamp order within [min, max]. */
struct walk {
	const struct ledger *l;
	const u32 *v;
	u32 n;
	bool hist;
};

static inline u32 walk_xfer(const struct walk *w, u32 i)
{
	return w->hist ? hrec(w->l, w->v[i])->xfer_slot : w->v[i];
}

/* First index whose transfer timestamp is >= ts. */
static u32 walk_lower(const struct walk *w, u64 ts)
{
	u32 lo = 0, hi = w->n;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		if (xrec(w->l, walk_xfer(w, mid))->timestamp < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

typedef void (*emit_fn)(const struct ledger *l, u32 entry, void *out, u32 k);

static int run_query(const struct walk *w, const struct account_filter *f,
		     void *out, u32 out_max, emit_fn emit)
{
	u32 max = f->limit < out_max ? f->limit : out_max;
	u32 lo = f->timestamp_min ? walk_lower(w, f->timestamp_min) : 0;
	u32 hi = f->timestamp_max ? walk_lower(w, f->timestamp_max + 1) : w->n;
	u32 k = 0;

	if (max > QUERY_LIMIT_MAX)
		max = QUERY_LIMIT_MAX;
	if (f->flags & ACCOUNT_FILTER_REVERSED) {
		for (u32 i = hi; i > lo && k < max; i--)
			if (ledger_filter_match(
				    f, xrec(w->l, walk_xfer(w, i - 1))))
				emit(w->l, w->v[i - 1], out, k++);
	} else {
		for (u32 i = lo; i < hi && k < max; i++)
			if (ledger_filter_match(f, xrec(w->l, walk_xfer(w, i))))
				emit(w->l, w->v[i], out, k++);
	}
	return (int)k;
}

static void emit_transfer(const struct ledger *l, u32 slot, void *out, u32 k)
{
	((struct transfer *)out)[k] = *xrec(l, slot);
}

static void emit_balance(const struct ledger *l, u32 hs, void *out, u32 k)
{
	const struct hist_rec *h = hrec(l, hs);
	struct account_balance *b = &((struct account_balance *)out)[k];

	memset(b, 0, sizeof(*b));
	b->debits_pending = h->debits_pending;
	b->debits_posted = h->debits_posted;
	b->credits_pending = h->credits_pending;
	b->credits_posted = h->credits_posted;
	b->timestamp = xrec(l, h->xfer_slot)->timestamp;
}

int ledger_get_account_transfers(const struct ledger *l,
				 const struct account_filter *f,
				 struct transfer *out, u32 out_max)
{
	if (!ledger_filter_valid(f))
		return -EINVAL;
	u32 s = find_account(l, f->account_id);
	if (s == SLOT_NONE)
		return 0;
	const struct acct_aux *x = aaux(l, s);
	struct walk w = {.l = l, .v = x->xs, .n = x->xn, .hist = false};
	return run_query(&w, f, out, out_max, emit_transfer);
}

int ledger_get_account_balances(const struct ledger *l,
				const struct account_filter *f,
				struct account_balance *out, u32 out_max)
{
	if (!ledger_filter_valid(f))
		return -EINVAL;
	u32 s = find_account(l, f->account_id);
	if (s == SLOT_NONE || !(arec(l, s)->flags & ACCOUNT_HISTORY))
		return 0;
	const struct acct_aux *x = aaux(l, s);
	struct walk w = {.l = l, .v = x->hs, .n = x->hn, .hist = true};
	return run_query(&w, f, out, out_max, emit_balance);
}

/* ---------------------------------------------------------------------
 * The cold tier, write side: changes drained for the store, eviction of
 * what the store holds, pinned pending transfers.
 */

int ledger_set_cold(struct ledger *l, const struct ledger_cold *cold)
{
	if (!l->cc) {
		l->cc = calloc((size_t)1 << COLD_CACHE_BITS, sizeof(*l->cc));
		l->cold_ids = malloc(2 * BATCH_EVENTS_MAX * sizeof(u128));
		l->cold_items = malloc(2 * BATCH_EVENTS_MAX *
				       sizeof(struct ledger_cold_item));
		if (!l->cc || !l->cold_ids || !l->cold_items)
			return -ENOMEM;
	}
	l->cold = *cold;
	l->tracking = true;
	return 0;
}

static void balance_of(const struct hist_rec *h, u64 ts,
		       struct account_balance *b)
{
	memset(b, 0, sizeof(*b));
	b->debits_pending = h->debits_pending;
	b->debits_posted = h->debits_posted;
	b->credits_pending = h->credits_pending;
	b->credits_posted = h->credits_posted;
	b->timestamp = ts;
}

/* Make room for k more entries at the tail of the in-flight list,
 * dropping what ledger_evict consumed from its head first. */
static int fly_reserve(struct ledger *l, u32 k)
{
	if (l->fly_head) {
		memmove(l->fly, l->fly + l->fly_head,
			(size_t)(l->fly_len - l->fly_head) * sizeof(*l->fly));
		l->fly_len -= l->fly_head;
		l->fly_head = 0;
	}
	return grow_bytes((void **)&l->fly, &l->fly_cap, (u64)l->fly_len + k,
			  sizeof(*l->fly));
}

static int cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;
	return (x > y) - (x < y);
}

int ledger_drain(struct ledger *l, const struct ledger_drain_ops *ops,
		 void *ctx, struct ledger_mark *out)
{
	LEDGER_ASSERT(l->tracking && !l->in_chain);
	if (fly_reserve(l, l->dirty_st_len))
		return -ENOMEM;

	for (u32 s = l->d_a; s < l->n_accounts; s++)
		ops->account(ctx, arec(l, s));
	for (u32 i = 0; i < l->dirty_ac_len; i++)
		ops->account(ctx, arec(l, l->dirty_ac[i]));

	/* A transfer's balance points follow it in the history, debit
	 * side first (push_list). */
	u32 hp = l->d_h;
	for (u32 s = l->d_x; s < l->n_transfers; s++) {
		const struct transfer *t = xrec(l, s);
		struct account_balance bd, bc;
		const struct account_balance *pd = NULL, *pc = NULL;
		for (; hp < l->n_history && hrec(l, hp)->xfer_slot == s; hp++) {
			const struct hist_rec *h = hrec(l, hp);
			if (arec(l, h->acct_slot)->id == t->debit_account_id) {
				balance_of(h, t->timestamp, &bd);
				pd = &bd;
			} else {
				balance_of(h, t->timestamp, &bc);
				pc = &bc;
			}
		}
		ops->transfer(ctx, t, *xstatus(l, s), pd, pc);
	}
	LEDGER_ASSERT(hp == l->n_history);

	/* A status can change, be rolled back with its chain and change
	 * again: each transfer once, with the status it has now. */
	if (l->dirty_st_len > 1)
		qsort(l->dirty_st, l->dirty_st_len, sizeof(u32), cmp_u32);
	for (u32 i = 0; i < l->dirty_st_len; i++) {
		u32 s = l->dirty_st[i];
		if (i && l->dirty_st[i - 1] == s)
			continue;
		ops->status(ctx, xrec(l, s), *xstatus(l, s));
		struct inflight *f = &l->fly[l->fly_len++];
		memset(f, 0, sizeof(*f));
		f->id = xrec(l, s)->id;
		f->drain = l->drain_no + 1;
	}
	for (u32 f = l->d_f; f < l->n_failed; f++)
		ops->failed(ctx, *frec(l, f));

	l->drain_no++;
	l->d_a = l->n_accounts;
	l->d_x = l->n_transfers;
	l->d_h = l->n_history;
	l->d_f = l->n_failed;
	l->dirty_st_len = 0;
	l->dirty_ac_len = 0;
	out->drain = l->drain_no;
	out->transfers = l->n_transfers;
	out->history = l->n_history;
	out->failed = l->n_failed;
	return 0;
}

static int cmp_u128(const void *a, const void *b)
{
	u128 x = *(const u128 *)a, y = *(const u128 *)b;
	return (x > y) - (x < y);
}

/* Ids whose status change the store may not hold yet, sorted. */
struct unsafe {
	u128 *id;
	u32 n;
};

static bool is_unsafe(const struct unsafe *u, u128 id)
{
	return u->n && bsearch(&id, u->id, u->n, sizeof(u128), cmp_u128);
}

/* Room for `pins` pinned transfers: the chunk vector spans every slot
 * once there are any. */
static int pin_reserve(struct ledger *l, u64 pins)
{
	struct chunkvec *cv = &l->xfer;
	u64 need = (pins + CHUNK_MASK(XFER_SHIFT)) >> XFER_SHIFT;

	if (pins == 0)
		return 0;
	if (cv->cap < XFER_CHUNKS_ALL) {
		void **v = realloc(cv->v, XFER_CHUNKS_ALL * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + cv->cap, 0,
		       (XFER_CHUNKS_ALL - cv->cap) * sizeof(*v));
		cv->v = v;
		cv->cap = XFER_CHUNKS_ALL;
	}
	while (l->pin_chunks < need) {
		void *p = big_alloc(sizeof(struct xfer_chunk));
		if (!p)
			return -ENOMEM;
		cv->v[PIN_CHUNK0 + l->pin_chunks++] = p;
	}
	return 0;
}

static u32 pin_take(struct ledger *l)
{
	if (l->pin_free_len)
		return l->pin_free[--l->pin_free_len];
	return l->n_pins++;
}

/* Move transfer slot s (being evicted) to a pin slot. */
static void pin(struct ledger *l, u32 s)
{
	u32 p = PIN_BASE + pin_take(l);
	const struct transfer *t = xrec(l, s);
	struct index *ix = &l->xfer_ix;
	u32 tag = (u32)(hash_id(t->id) >> 32);
	u32 i = ix_home(ix, tag);

	*xrec(l, p) = *t;
	*xstatus(l, p) = *xstatus(l, s);
	while (ix->e[i].slot != s) {
		LEDGER_ASSERT(ix->e[i].slot != SLOT_NONE);
		i = (i + 1) & ix->mask;
	}
	ix->e[i].slot = p;
}

static void unpin(struct ledger *l, u32 p)
{
	ix_remove(l, IX_TRANSFER, p);
	*xstatus(l, p) = PENDING_NONE; /* its heap entries go (heap_rebuild) */
	l->pin_free[l->pin_free_len++] = p - PIN_BASE;
}

/* Keep the heap entries of transfers still pending, with the slots they
 * have now (pinned ones moved), and restore the heap order. */
static void heap_rebuild(struct ledger *l, u32 lo, u32 hi)
{
	u32 k = 0;

	for (u32 i = 0; i < l->heap_len; i++) {
		struct heap_entry e = l->heap[i];
		if (e.slot >= lo && e.slot < hi) {
			u32 ns = find_transfer(l, xrec(l, e.slot)->id);
			if (ns == SLOT_NONE || ns < PIN_BASE)
				continue;
			e.slot = ns;
		}
		if (*xstatus(l, e.slot) == PENDING_PENDING)
			l->heap[k++] = e;
	}
	l->heap_len = k;
	for (u32 i = k / 2; i-- > 0;) {
		struct heap_entry e = l->heap[i];
		u32 j = i;
		for (;;) {
			u32 c = 2 * j + 1;
			if (c >= k)
				break;
			if (c + 1 < k &&
			    heap_less(&l->heap[c + 1], &l->heap[c]))
				c++;
			if (!heap_less(&l->heap[c], &e))
				break;
			l->heap[j] = l->heap[c];
			j = c;
		}
		l->heap[j] = e;
	}
}

/* Drop the entries below `lo` from the front of an ascending list, and
 * give memory back when the list shrank to a quarter. */
static void trim_list(u32 **v, u32 *n, u32 *cap, u32 lo)
{
	u32 a = 0, b = *n;

	while (a < b) {
		u32 mid = a + (b - a) / 2;
		if ((*v)[mid] < lo)
			a = mid + 1;
		else
			b = mid;
	}
	if (a == 0)
		return;
	memmove(*v, *v + a, (size_t)(*n - a) * sizeof(u32));
	*n -= a;
	if (*cap > 16 && *n < *cap / 4) {
		u32 c = *n < 8 ? 8 : *n * 2;
		u32 *p = realloc(*v, (size_t)c * sizeof(u32));
		if (p) {
			*v = p;
			*cap = c;
		}
	}
}

static void free_chunks(struct chunkvec *cv, unsigned shift, u32 lo, u32 hi)
{
	for (u32 c = lo >> shift; c < (hi >> shift); c++) {
		free(cv->v[c]);
		cv->v[c] = NULL;
	}
}

int ledger_evict(struct ledger *l, const struct ledger_mark *stored,
		 u64 keep_transfers)
{
	LEDGER_ASSERT(l->tracking && !l->in_chain);
	if (l->dirty_st_len || l->dirty_ac_len || l->d_x != l->n_transfers ||
	    l->d_a != l->n_accounts || l->d_f != l->n_failed)
		return -EBUSY;
	if (stored->drain > l->drain_no || stored->transfers > l->d_x ||
	    stored->history > l->d_h || stored->failed > l->d_f)
		return -EINVAL;

	u32 ux = stored->transfers;
	if (keep_transfers >= l->n_transfers)
		ux = 0;
	else if (ux > l->n_transfers - keep_transfers)
		ux = (u32)(l->n_transfers - keep_transfers);
	if (ux < l->x_lo)
		ux = l->x_lo;
	u32 uf = stored->failed > l->f_lo ? stored->failed : l->f_lo;

	/* In-flight status changes the store now holds leave the list; the
	 * rest name transfers that must stay in memory. */
	u32 j = l->fly_head;
	while (j < l->fly_len && l->fly[j].drain <= stored->drain)
		j++;
	struct unsafe un = {.n = l->fly_len - j};
	if (un.n) {
		un.id = malloc((size_t)un.n * sizeof(u128));
		if (!un.id)
			return -ENOMEM;
		for (u32 i = 0; i < un.n; i++)
			un.id[i] = l->fly[j + i].id;
		qsort(un.id, un.n, sizeof(u128), cmp_u128);
	}

	/* Room for the pins before anything moves. */
	u64 need = 0;
	for (u32 s = l->x_lo; s < ux; s++)
		if (*xstatus(l, s) == PENDING_PENDING ||
		    is_unsafe(&un, xrec(l, s)->id))
			need++;
	int ret = 0;
	if ((u64)l->n_pins + need > (u64)SLOT_NONE - PIN_BASE)
		ret = -ENOMEM;
	if (!ret)
		ret = pin_reserve(l, (u64)l->n_pins + need);
	if (!ret)
		ret = grow_u32(&l->pin_free, &l->pin_free_cap,
			       (u64)l->n_pins + need);
	if (ret) {
		free(un.id);
		return ret;
	}

	for (u32 s = l->x_lo; s < ux; s++) {
		if (*xstatus(l, s) == PENDING_PENDING ||
		    is_unsafe(&un, xrec(l, s)->id))
			pin(l, s);
		else
			ix_remove(l, IX_TRANSFER, s);
	}
	/* Pinned transfers whose final status the store now holds. */
	for (u32 i = l->fly_head; i < j; i++) {
		u32 s = find_transfer(l, l->fly[i].id);
		if (s != SLOT_NONE && s >= PIN_BASE &&
		    *xstatus(l, s) != PENDING_PENDING &&
		    !is_unsafe(&un, l->fly[i].id))
			unpin(l, s);
	}
	l->fly_head = j;
	free(un.id);
	heap_rebuild(l, l->x_lo, ux);

	u32 uh = l->h_lo;
	while (uh < l->n_history && hrec(l, uh)->xfer_slot < ux)
		uh++;
	for (u32 a = 0; a < l->n_accounts; a++) {
		struct acct_aux *x = aaux(l, a);
		trim_list(&x->xs, &x->xn, &x->xcap, ux);
		trim_list(&x->hs, &x->hn, &x->hcap, uh);
	}
	for (u32 f = l->f_lo; f < uf; f++)
		ix_remove(l, IX_FAILED, f);

	free_chunks(&l->xfer, XFER_SHIFT, l->x_lo, ux);
	free_chunks(&l->hist, HIST_SHIFT, l->h_lo, uh);
	free_chunks(&l->fail, FAIL_SHIFT, l->f_lo, uf);
	l->x_lo = ux;
	l->h_lo = uh;
	l->f_lo = uf;
	if (ux || uf)
		l->has_cold = true;
	return 0;
}

int ledger_restore_account(struct ledger *l, const struct account *a)
{
	LEDGER_ASSERT(l->tracking && l->n_transfers == 0);
	if (a->id == 0 || a->id == U128_MAX)
		return -EINVAL;
	u64 h = hash_id(a->id);
	if (ix_find(l, IX_ACCOUNT, a->id, h) != SLOT_NONE)
		return -EINVAL;
	/* In creation order, as the digest streams them. */
	if (l->n_accounts &&
	    a->timestamp <= arec(l, l->n_accounts - 1)->timestamp)
		return -EINVAL;
	if ((u64)l->n_accounts + 1 > SLOTS_MAX ||
	    chunkvec_reserve(&l->acct, (u64)l->n_accounts + 1, ACCT_SHIFT,
			     sizeof(struct acct_chunk)) ||
	    index_reserve(&l->acct_ix, 1))
		return -ENOMEM;
	u32 s = l->n_accounts++;
	*arec(l, s) = *a;
	memset(aaux(l, s), 0, sizeof(struct acct_aux));
	index_put(&l->acct_ix, s, (u32)(h >> 32));
	l->d_a = l->n_accounts;
	return 0;
}

int ledger_restore_pending(struct ledger *l, const struct transfer *t)
{
	LEDGER_ASSERT(l->tracking && l->n_transfers == 0);
	if (t->id == 0 || t->id == U128_MAX || !(t->flags & TRANSFER_PENDING))
		return -EINVAL;
	u64 h = hash_id(t->id);
	if (ix_find(l, IX_TRANSFER, t->id, h) != SLOT_NONE)
		return -EINVAL;
	if ((u64)l->n_pins + 1 > (u64)SLOT_NONE - PIN_BASE ||
	    pin_reserve(l, (u64)l->n_pins + 1) ||
	    grow_u32(&l->pin_free, &l->pin_free_cap, (u64)l->n_pins + 1) ||
	    index_reserve(&l->xfer_ix, 1) ||
	    grow_bytes((void **)&l->heap, &l->heap_cap, (u64)l->heap_len + 1,
		       sizeof(*l->heap)))
		return -ENOMEM;
	u32 p = PIN_BASE + l->n_pins++;
	*xrec(l, p) = *t;
	*xstatus(l, p) = PENDING_PENDING;
	index_put(&l->xfer_ix, p, (u32)(h >> 32));
	l->pending_open++;
	if (t->timeout)
		heap_push(l, deadline_of(t), p);
	return 0;
}

void ledger_restore_end(struct ledger *l, u64 transfers, u64 last_timestamp)
{
	l->base_transfers = transfers;
	l->last_timestamp = last_timestamp;
	l->has_cold = true;
}

u64 ledger_hot_since(const struct ledger *l)
{
	if (!l->has_cold)
		return 0;
	if (l->x_lo < l->n_transfers)
		return xrec(l, l->x_lo)->timestamp;
	return l->last_timestamp + 1;
}

int ledger_transfers_exist(struct ledger *l, const struct transfer *ev, u32 n,
			   u8 *out)
{
	int ret = cold_prefetch(l, ev, n, true);

	for (u32 i = 0; !ret && i < n; i++) {
		u128 id = ev[i].id;
		u64 h = hash_id(id);
		const struct ledger_cold_item *c;
		out[i] = 0;
		if (id == 0 || id == U128_MAX)
			continue;
		if (ix_find(l, IX_TRANSFER, id, h) != SLOT_NONE)
			out[i] = 1;
		else if ((c = cold_find(l, id, h)) &&
			 c->kind == LEDGER_COLD_TRANSFER)
			out[i] = 1;
	}
	return ret;
}

/* ---------------------------------------------------------------------
 * Stats.
 */

void ledger_stats(const struct ledger *l, struct ledger_stats *out)
{
	u64 idx = 0;

	memset(out, 0, sizeof(*out));
	out->accounts = l->n_accounts;
	out->transfers = l->base_transfers + l->n_transfers;
	out->pending_open = l->pending_open;

	idx += ((u64)l->acct_ix.mask + 1) * sizeof(struct ix_entry);
	idx += ((u64)l->xfer_ix.mask + 1) * sizeof(struct ix_entry);
	idx += ((u64)l->fail_ix.mask + 1) * sizeof(struct ix_entry);
	idx += (u64)l->heap_cap * sizeof(struct heap_entry);
	idx += (u64)l->undo_cap * sizeof(struct undo);
	/* Per-account lists and their headers, and the status bytes. */
	for (u32 s = 0; s < l->n_accounts; s++) {
		const struct acct_aux *x = aaux(l, s);
		idx += ((u64)x->xcap + x->hcap) * sizeof(u32);
	}
	idx += (u64)l->acct.n * (1u << ACCT_SHIFT) *
	       (sizeof(struct acct_aux) + sizeof(u32));
	idx += (u64)chunkvec_live(&l->xfer) * (1u << XFER_SHIFT);
	idx += ((u64)l->dirty_st_cap + l->dirty_ac_cap) * sizeof(u32) +
	       (u64)l->fly_cap * sizeof(struct inflight) +
	       (u64)l->pin_free_cap * sizeof(u32);
	if (l->cc)
		idx += (sizeof(struct cold_entry) << COLD_CACHE_BITS) +
		       2 * BATCH_EVENTS_MAX *
			       (sizeof(u128) + sizeof(struct ledger_cold_item));
	out->index_bytes = idx;

	out->record_bytes =
		(u64)l->acct.n * (1u << ACCT_SHIFT) * sizeof(struct account) +
		(u64)chunkvec_live(&l->xfer) * (1u << XFER_SHIFT) *
			sizeof(struct transfer) +
		(u64)chunkvec_live(&l->hist) * sizeof(struct hist_chunk) +
		(u64)chunkvec_live(&l->fail) * sizeof(struct fail_chunk) +
		(u64)l->pin_chunks * sizeof(struct xfer_chunk);
}

/* ---------------------------------------------------------------------
 * Digest and snapshots share one canonical stream:
 *   header (8 x u64): magic, version, n_accounts, n_transfers, n_history,
 *                     n_failed, last_timestamp, 0
 *   account records, transfer records, transfer status bytes,
 *   history records (80 bytes), failed ids (16 bytes).
 * Records are in slot order, which is commit order.  Native byte order;
 * the magic tells a foreign-endian file apart.
 */

#define SNAP_MAGIC	  0x314753444c575054ull /* "TPWLDSG1" little-endian */
#define SNAP_VERSION	  1ull
#define SNAP_HEADER_BYTES 64

static void snap_header(const struct ledger *l, u64 hdr[8])
{
	hdr[0] = SNAP_MAGIC;
	hdr[1] = SNAP_VERSION;
	hdr[2] = l->n_accounts;
	hdr[3] = l->n_transfers;
	hdr[4] = l->n_history;
	hdr[5] = l->n_failed;
	hdr[6] = l->last_timestamp;
	hdr[7] = 0;
}

/* Feed the canonical stream to sink in chunk-sized pieces. */
static int stream_state(const struct ledger *l, ledger_sink_fn sink, void *ctx)
{
	u64 hdr[8];
	int ret;

	snap_header(l, hdr);
	ret = sink(ctx, hdr, sizeof(hdr));
	for (u32 c = 0; !ret && c * (1ull << ACCT_SHIFT) < l->n_accounts; c++) {
		u64 left = l->n_accounts - c * (1ull << ACCT_SHIFT);
		u64 k = left < (1u << ACCT_SHIFT) ? left : (1u << ACCT_SHIFT);
		ret = sink(ctx, ((struct acct_chunk *)l->acct.v[c])->rec,
			   k * sizeof(struct account));
	}
	for (u32 c = 0; !ret && c * (1ull << XFER_SHIFT) < l->n_transfers;
	     c++) {
		u64 left = l->n_transfers - c * (1ull << XFER_SHIFT);
		u64 k = left < (1u << XFER_SHIFT) ? left : (1u << XFER_SHIFT);
		ret = sink(ctx, ((struct xfer_chunk *)l->xfer.v[c])->rec,
			   k * sizeof(struct transfer));
	}
	for (u32 c = 0; !ret && c * (1ull << XFER_SHIFT) < l->n_transfers;
	     c++) {
		u64 left = l->n_transfers - c * (1ull << XFER_SHIFT);
		u64 k = left < (1u << XFER_SHIFT) ? left : (1u << XFER_SHIFT);
		ret = sink(ctx, ((struct xfer_chunk *)l->xfer.v[c])->status, k);
	}
	for (u32 c = 0; !ret && c * (1ull << HIST_SHIFT) < l->n_history; c++) {
		u64 left = l->n_history - c * (1ull << HIST_SHIFT);
		u64 k = left < (1u << HIST_SHIFT) ? left : (1u << HIST_SHIFT);
		ret = sink(ctx, ((struct hist_chunk *)l->hist.v[c])->rec,
			   k * sizeof(struct hist_rec));
	}
	for (u32 c = 0; !ret && c * (1ull << FAIL_SHIFT) < l->n_failed; c++) {
		u64 left = l->n_failed - c * (1ull << FAIL_SHIFT);
		u64 k = left < (1u << FAIL_SHIFT) ? left : (1u << FAIL_SHIFT);
		ret = sink(ctx, ((struct fail_chunk *)l->fail.v[c])->id,
			   k * sizeof(u128));
	}
	return ret;
}

static void sum_in(u64 lanes[4], const void *rec, size_t len, bool remove)
{
	u64 h[4];

	crypto_generichash((u8 *)h, sizeof(h), rec, len, NULL, 0);
	for (int i = 0; i < 4; i++)
		lanes[i] = remove ? lanes[i] - h[i] : lanes[i] + h[i];
}

void ledger_sums_transfer(struct ledger_sums *s, const struct transfer *t,
			  u8 status, bool remove)
{
	u8 rec[sizeof(*t) + 1];

	memcpy(rec, t, sizeof(*t));
	rec[sizeof(*t)] = status;
	sum_in(s->transfers, rec, sizeof(rec), remove);
	s->n_transfers = remove ? s->n_transfers - 1 : s->n_transfers + 1;
}

void ledger_sums_point(struct ledger_sums *s, u128 account_id,
		       const struct account_balance *b)
{
	u8 rec[16 + 8 + 64];

	memcpy(rec, &account_id, 16);
	memcpy(rec + 16, &b->timestamp, 8);
	memcpy(rec + 24, &b->debits_pending, 16);
	memcpy(rec + 40, &b->debits_posted, 16);
	memcpy(rec + 56, &b->credits_pending, 16);
	memcpy(rec + 72, &b->credits_posted, 16);
	sum_in(s->points, rec, sizeof(rec), false);
	s->n_points++;
}

void ledger_sums_failed(struct ledger_sums *s, u128 id)
{
	sum_in(s->failed, &id, sizeof(id), false);
	s->n_failed++;
}

#define DIGEST_MAGIC 0x3247445357505400ull /* "\0TPWSDG2", version 2 */

void ledger_digest_with(const struct ledger *l, const struct ledger_sums *s,
			u8 out[32])
{
	crypto_generichash_state st;
	u64 hdr[6] = {DIGEST_MAGIC, l->n_accounts, s->n_transfers,
		      s->n_points,  s->n_failed,   l->last_timestamp};

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const u8 *)hdr, sizeof(hdr));
	for (u32 c = 0; c * (1ull << ACCT_SHIFT) < l->n_accounts; c++) {
		u64 left = l->n_accounts - c * (1ull << ACCT_SHIFT);
		u64 k = left < (1u << ACCT_SHIFT) ? left : (1u << ACCT_SHIFT);
		crypto_generichash_update(
			&st,
			(const u8 *)((struct acct_chunk *)l->acct.v[c])->rec,
			k * sizeof(struct account));
	}
	crypto_generichash_update(&st, (const u8 *)s->transfers,
				  sizeof(s->transfers));
	crypto_generichash_update(&st, (const u8 *)s->points,
				  sizeof(s->points));
	crypto_generichash_update(&st, (const u8 *)s->failed,
				  sizeof(s->failed));
	crypto_generichash_final(&st, out, 32);
}

void ledger_digest(const struct ledger *l, u8 out[32])
{
	struct ledger_sums s;

	/* With a cold tier the consumer of the drains keeps the sums. */
	LEDGER_ASSERT(!l->has_cold);
	memset(&s, 0, sizeof(s));
	for (u32 i = 0; i < l->n_transfers; i++)
		ledger_sums_transfer(&s, xrec(l, i), *xstatus(l, i), false);
	for (u32 i = 0; i < l->n_history; i++) {
		const struct hist_rec *h = hrec(l, i);
		struct account_balance b;
		balance_of(h, xrec(l, h->xfer_slot)->timestamp, &b);
		ledger_sums_point(&s, arec(l, h->acct_slot)->id, &b);
	}
	for (u32 i = 0; i < l->n_failed; i++)
		ledger_sums_failed(&s, *frec(l, i));
	ledger_digest_with(l, &s, out);
}

int ledger_snapshot_write(const struct ledger *l, ledger_sink_fn sink,
			  void *ctx)
{
	if (l->has_cold)
		return -ENOTSUP; /* the store's checkpoints replace them */
	return stream_state(l, sink, ctx);
}

static bool id_valid(u128 id)
{
	return id != 0 && id != U128_MAX;
}

/* Rebuild and validate; every count and reference is checked before use. */
struct ledger *ledger_snapshot_read(const u8 *buf, size_t len)
{
	struct ledger *l = NULL;
	u64 hdr[8];
	size_t off = SNAP_HEADER_BYTES;

	if (!buf || len < SNAP_HEADER_BYTES)
		return NULL;
	memcpy(hdr, buf, sizeof(hdr));
	if (hdr[0] != SNAP_MAGIC || hdr[1] != SNAP_VERSION || hdr[7] != 0)
		return NULL;
	u64 na = hdr[2], nt = hdr[3], nh = hdr[4], nf = hdr[5];
	if (na > SLOTS_MAX || nt > SLOTS_MAX || nh > SLOTS_MAX ||
	    nf > SLOTS_MAX)
		return NULL;
	/* Counts < 2^32, so these sums cannot overflow a u64. */
	u64 need = SNAP_HEADER_BYTES + na * sizeof(struct account) +
		   nt * (sizeof(struct transfer) + 1) +
		   nh * sizeof(struct hist_rec) + nf * sizeof(u128);
	if (need != len)
		return NULL;
	if (hdr[6] >= TIMESTAMP_LIMIT)
		return NULL;

	struct ledger_options o = {.accounts_hint = na, .transfers_hint = nt};
	l = ledger_new(&o);
	if (!l)
		return NULL;
	if (chunkvec_reserve(&l->acct, na, ACCT_SHIFT,
			     sizeof(struct acct_chunk)) ||
	    chunkvec_reserve(&l->xfer, nt, XFER_SHIFT,
			     sizeof(struct xfer_chunk)) ||
	    chunkvec_reserve(&l->hist, nh, HIST_SHIFT,
			     sizeof(struct hist_chunk)) ||
	    chunkvec_reserve(&l->fail, nf, FAIL_SHIFT,
			     sizeof(struct fail_chunk)) ||
	    index_reserve(&l->acct_ix, na) || index_reserve(&l->xfer_ix, nt) ||
	    index_reserve(&l->fail_ix, nf))
		goto fail;
	l->last_timestamp = hdr[6];

	u64 prev_ts = 0;
	for (u64 i = 0; i < na; i++, off += sizeof(struct account)) {
		struct account a;
		memcpy(&a, buf + off, sizeof(a));
		if (!id_valid(a.id) || a.reserved || a.ledger == 0 ||
		    a.code == 0 || (a.flags & ~ACCOUNT_FLAGS_KNOWN) ||
		    ((a.flags & ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
		     (a.flags & ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS)) ||
		    a.timestamp <= prev_ts || a.timestamp > l->last_timestamp)
			goto fail;
		prev_ts = a.timestamp;
		u64 h = hash_id(a.id);
		if (ix_find(l, IX_ACCOUNT, a.id, h) != SLOT_NONE)
			goto fail;
		u32 s = l->n_accounts++;
		*arec(l, s) = a;
		memset(aaux(l, s), 0, sizeof(struct acct_aux));
		index_put(&l->acct_ix, s, (u32)(h >> 32));
	}

	size_t status_off = off + nt * sizeof(struct transfer);
	prev_ts = 0;
	for (u64 i = 0; i < nt; i++, off += sizeof(struct transfer)) {
		struct transfer t;
		memcpy(&t, buf + off, sizeof(t));
		u8 st = buf[status_off + i];
		bool pending = t.flags & TRANSFER_PENDING;
		if (!id_valid(t.id) || (t.flags & ~TRANSFER_FLAGS_KNOWN) ||
		    t.timestamp <= prev_ts || t.timestamp > l->last_timestamp)
			goto fail;
		if (pending ? (st < PENDING_PENDING || st > PENDING_EXPIRED)
			    : st != PENDING_NONE)
			goto fail;
		if (t.timeout && (!pending || deadline_of(&t) < t.timestamp ||
				  deadline_of(&t) >= TIMESTAMP_LIMIT))
			goto fail;
		prev_ts = t.timestamp;
		u32 dr = find_account(l, t.debit_account_id);
		u32 cr = find_account(l, t.credit_account_id);
		if (dr == SLOT_NONE || cr == SLOT_NONE || dr == cr)
			goto fail;
		if (is_post_or_void(&t)) {
			u32 ps = find_transfer(l, t.pending_id);
			if (ps == SLOT_NONE ||
			    !(xrec(l, ps)->flags & TRANSFER_PENDING))
				goto fail;
		}
		u64 h = hash_id(t.id);
		if (ix_find(l, IX_TRANSFER, t.id, h) != SLOT_NONE)
			goto fail;
		u32 s = l->n_transfers++;
		*xrec(l, s) = t;
		*xstatus(l, s) = st;
		if (st == PENDING_PENDING)
			l->pending_open++;
		index_put(&l->xfer_ix, s, (u32)(h >> 32));
		struct acct_aux *dx = aaux(l, dr), *cx = aaux(l, cr);
		if (grow_u32(&dx->xs, &dx->xcap, (u64)dx->xn + 1) ||
		    grow_u32(&cx->xs, &cx->xcap, (u64)cx->xn + 1))
			goto fail;
		dx->xs[dx->xn++] = s;
		cx->xs[cx->xn++] = s;
		if (st == PENDING_PENDING && t.timeout) {
			if (grow_bytes((void **)&l->heap, &l->heap_cap,
				       (u64)l->heap_len + 1, sizeof(*l->heap)))
				goto fail;
			heap_push(l, deadline_of(&t), s);
		}
	}
	off = status_off + nt;

	for (u64 i = 0; i < nh; i++, off += sizeof(struct hist_rec)) {
		struct hist_rec h;
		memcpy(&h, buf + off, sizeof(h));
		if (h.zero || h.acct_slot >= l->n_accounts ||
		    h.xfer_slot >= l->n_transfers)
			goto fail;
		const struct account *a = arec(l, h.acct_slot);
		const struct transfer *t = xrec(l, h.xfer_slot);
		if (!(a->flags & ACCOUNT_HISTORY) ||
		    (t->debit_account_id != a->id &&
		     t->credit_account_id != a->id))
			goto fail;
		struct acct_aux *x = aaux(l, h.acct_slot);
		if (x->hn &&
		    hrec(l, x->hs[x->hn - 1])->xfer_slot >= h.xfer_slot)
			goto fail;
		if (grow_u32(&x->hs, &x->hcap, (u64)x->hn + 1))
			goto fail;
		u32 s = l->n_history++;
		*hrec(l, s) = h;
		x->hs[x->hn++] = s;
	}

	for (u64 i = 0; i < nf; i++, off += sizeof(u128)) {
		u128 id;
		memcpy(&id, buf + off, sizeof(id));
		u64 h = hash_id(id);
		if (!id_valid(id) || find_transfer(l, id) != SLOT_NONE ||
		    ix_find(l, IX_FAILED, id, h) != SLOT_NONE)
			goto fail;
		remember_failed(l, id, h);
	}
	LEDGER_ASSERT(off == len);

	/* Balances must be exactly what the transfers imply. */
	if (!ledger_check_invariants(l))
		goto fail;
	heap_prune(l);
	return l;
fail:
	ledger_free(l);
	return NULL;
}

/* ---------------------------------------------------------------------
 * Invariants (expensive: recomputes every balance from the transfers).
 */

struct expect {
	u128 dp, dpo, cp, cpo;
};

static int cmp_ledger(const void *a, const void *b, void *arg)
{
	const struct ledger *l = arg;
	u32 la = arec(l, *(const u32 *)a)->ledger;
	u32 lb = arec(l, *(const u32 *)b)->ledger;
	return (la > lb) - (la < lb);
}

static void totals_add(u128 *sum, u128 v, bool *overflow)
{
	if (*sum > ~(u128)0 - v)
		*overflow = true;
	*sum += v;
}

void ledger_totals(const struct ledger *l, struct ledger_totals *out)
{
	*out = (struct ledger_totals){.accounts = l->n_accounts};
	for (u32 s = 0; s < l->n_accounts; s++) {
		const struct account *a = arec(l, s);
		totals_add(&out->debits_pending, a->debits_pending,
			   &out->overflow);
		totals_add(&out->debits_posted, a->debits_posted,
			   &out->overflow);
		totals_add(&out->credits_pending, a->credits_pending,
			   &out->overflow);
		totals_add(&out->credits_posted, a->credits_posted,
			   &out->overflow);
	}
}

bool ledger_check_invariants(const struct ledger *l)
{
	struct expect *ex = NULL;
	u32 *order = NULL;
	bool ok = false;
	u64 pending = 0;

	/* Needs every transfer in memory. */
	LEDGER_ASSERT(!l->has_cold);
	if (l->n_accounts) {
		ex = calloc(l->n_accounts, sizeof(*ex));
		order = malloc((size_t)l->n_accounts * sizeof(*order));
		if (!ex || !order)
			goto cleanup;
	}

	for (u32 s = 0; s < l->n_transfers; s++) {
		const struct transfer *t = xrec(l, s);
		u8 st = *xstatus(l, s);
		u32 dr = find_account(l, t->debit_account_id);
		u32 cr = find_account(l, t->credit_account_id);
		if (dr == SLOT_NONE || cr == SLOT_NONE)
			goto cleanup;
		if (find_transfer(l, t->id) != s)
			goto cleanup;
		if (st == PENDING_PENDING)
			pending++;
		if (t->flags & TRANSFER_PENDING) {
			if (st == PENDING_PENDING) {
				ex[dr].dp += t->amount;
				ex[cr].cp += t->amount;
			}
		} else if (!(t->flags & TRANSFER_VOID_PENDING_TRANSFER)) {
			ex[dr].dpo += t->amount;
			ex[cr].cpo += t->amount;
		}
	}
	if (pending != l->pending_open)
		goto cleanup;

	for (u32 s = 0; s < l->n_accounts; s++) {
		const struct account *a = arec(l, s);
		const struct acct_aux *x = aaux(l, s);
		if (a->debits_pending != ex[s].dp ||
		    a->debits_posted != ex[s].dpo ||
		    a->credits_pending != ex[s].cp ||
		    a->credits_posted != ex[s].cpo)
			goto cleanup;
		if (find_account(l, a->id) != s)
			goto cleanup;
		for (u32 i = 1; i < x->xn; i++)
			if (x->xs[i - 1] >= x->xs[i])
				goto cleanup;
		order[s] = s;
	}

	/* Per ledger, debits equal credits. */
	if (l->n_accounts)
		qsort_r(order, l->n_accounts, sizeof(*order), cmp_ledger,
			(void *)l);
	for (u32 i = 0; i < l->n_accounts;) {
		u32 led = arec(l, order[i])->ledger;
		u128 dp = 0, dpo = 0, cp = 0, cpo = 0;
		for (; i < l->n_accounts && arec(l, order[i])->ledger == led;
		     i++) {
			const struct account *a = arec(l, order[i]);
			dp += a->debits_pending;
			dpo += a->debits_posted;
			cp += a->credits_pending;
			cpo += a->credits_posted;
		}
		if (dp != cp || dpo != cpo)
			goto cleanup;
	}
	ok = true;
cleanup:
	free(ex);
	free(order);
	return ok;
}
