/*
 * ledger.h - the double-entry ledger state machine.
 *
 * Pure and deterministic: no clock, no I/O, no randomness, no threads.
 * Time comes in with each batch from the journal entry that carries it, so
 * replaying the same entries gives the same state, byte for byte
 * (ledger_digest() proves it).
 *
 * Semantics are TigerBeetle's (accounts, transfers, linked chains,
 * two-phase transfers with timeouts, balancing and closing transfers),
 * with the result codes and their precedence listed in result.h.
 *
 * Ownership: the ledger owns every record it stores.  Pointers passed in
 * are only read during the call.  Not thread-safe: the engine serialises
 * writers and guards readers with a lock.
 */
#ifndef TPW_CORE_LEDGER_H
#define TPW_CORE_LEDGER_H

#include "core/types.h"
#include "core/result.h"

struct ledger;

/* Capacity hints; tables grow beyond them (by doubling) when needed. */
struct ledger_options {
	u64 accounts_hint;
	u64 transfers_hint;
};

/* Key of the id hash (see ledger.c): call once, before any ledger_new,
 * with a secret random value.  It changes the indexes' layout only, never
 * the state or its digest. */
void ledger_set_hash_key(u64 key);
/* The keyed hash of a client-chosen id that the ledger's indexes use:
 * for any other index of ids (core/auth's account owners). */
u64 ledger_hash_id(u128 id);

/* Returns NULL when out of memory. */
struct ledger *ledger_new(const struct ledger_options *opts);
void ledger_free(struct ledger *l);

/*
 * Apply one batch.  `timestamp` is the batch's commit time in nanoseconds,
 * from the journal entry; event i is stamped timestamp - n + 1 + i, so the
 * caller must give a timestamp with timestamp - n + 1 > the previous
 * batch's timestamp, and timestamp < 2^63.  Before the events apply,
 * pending transfers whose timeout has passed at timestamp - n + 1 are
 * expired (see ledger_pulse); a post/void of a pending transfer whose
 * deadline is <= the event's own timestamp gets pending_transfer_expired
 * even if no pulse expired it yet.
 *
 * results[i] receives the result code of event i (0 == ok/created).
 * n must be 1..BATCH_EVENTS_MAX.  Returns 0, -EINVAL (n out of range or
 * timestamps that do not advance) or -ENOMEM when the state could not
 * grow; in both error cases the batch is not applied at all.
 *
 * Semantics beyond result.h, as TigerBeetle 0.16 documents them:
 *   - linked chains are all-or-nothing: balances, pending statuses, closed
 *     flags, history points, transfer and account ids of a failed chain
 *     are rolled back; the event that failed keeps its own code, the
 *     others get linked_event_failed; a linked last event of the batch
 *     gets linked_event_chain_open (even in a chain that already failed);
 *   - a transient failure (see create_transfer_result_transient) burns the
 *     id, also when its chain is rolled back: the id then always gets
 *     id_already_failed (after exists_*, which cannot apply to it);
 *   - post: amount AMOUNT_MAX posts the full pending amount, any other
 *     amount <= the pending amount posts that much (0 included) and
 *     releases the rest; void: amount 0 or the pending amount;
 *   - balancing_debit/credit move min(amount, room) where room keeps
 *     debits <= credits_posted (credits <= debits_posted); the stored
 *     amount is what moved;
 *   - closing_debit/credit (pending only) set the account's closed flag;
 *     voiding or expiry of that pending transfer clears it.  A closed
 *     account refuses every transfer except voiding its pending ones;
 *   - accounts with the history flag get one balance point (after the
 *     transfer) per transfer that touches them, posts and voids included;
 *     expiry by pulse records no point.
 */
int ledger_create_accounts(struct ledger *l, const struct account *events,
			   u32 n, u64 timestamp, u32 *results);
int ledger_create_transfers(struct ledger *l, const struct transfer *events,
			    u32 n, u64 timestamp, u32 *results);

/* Expire every pending transfer whose deadline (its timestamp + timeout
 * seconds) is <= timestamp, releasing its pending amounts (status
 * PENDING_EXPIRED; a closing transfer reopens its accounts).  0, or
 * -ENOMEM with a cold tier when its change list cannot grow (nothing
 * expired). */
int ledger_pulse(struct ledger *l, u64 timestamp);

/* Deadline of the earliest pending transfer still to expire, or 0 if none:
 * the engine journals a pulse when the clock passes it. */
u64 ledger_next_expiry(const struct ledger *l);

/* Timestamp of the last applied event (0 for an empty ledger). */
u64 ledger_last_timestamp(const struct ledger *l);

/* Lookups: copy the record into *out and return 0, or return -ENOENT. */
int ledger_lookup_account(const struct ledger *l, u128 id, struct account *out);
int ledger_lookup_transfer(const struct ledger *l, u128 id,
			   struct transfer *out);

/* Status of a pending transfer (for lookups): 0 if id is not pending. */
enum pending_status {
	PENDING_NONE = 0,
	PENDING_PENDING = 1,
	PENDING_POSTED = 2,
	PENDING_VOIDED = 3,
	PENDING_EXPIRED = 4,
};
enum pending_status ledger_pending_status(const struct ledger *l, u128 id);

/* Queries, as TigerBeetle's get_account_transfers/get_account_balances:
 * up to min(filter->limit, out_max, QUERY_LIMIT_MAX) results ordered by
 * timestamp (descending with ACCOUNT_FILTER_REVERSED).  A filter is
 * invalid (-EINVAL) when: account_id is 0 or 2^128-1; timestamp_min or
 * timestamp_max >= 2^63; timestamp_max != 0 and timestamp_min >
 * timestamp_max; limit == 0; flags has unknown bits; or neither
 * ACCOUNT_FILTER_DEBITS nor ACCOUNT_FILTER_CREDITS is set.  Timestamp
 * bounds are inclusive, 0 means unbounded; nonzero user_data_* and code
 * must match the transfer's.  An unknown account gives 0 results, and so
 * does get_account_balances for an account without ACCOUNT_HISTORY; a
 * balance's timestamp is its transfer's. */
int ledger_get_account_transfers(const struct ledger *l,
				 const struct account_filter *f,
				 struct transfer *out, u32 out_max);
int ledger_get_account_balances(const struct ledger *l,
				const struct account_filter *f,
				struct account_balance *out, u32 out_max);

/* The filter rules above, for a store that answers the older part of a
 * query: ledger_filter_valid() is the -EINVAL check, and
 * ledger_filter_match() says whether transfer t is on a side the filter
 * asks for and matches its user_data_* and code (not its timestamp
 * bounds). */
bool ledger_filter_valid(const struct account_filter *f);
bool ledger_filter_match(const struct account_filter *f,
			 const struct transfer *t);

/* What the cold tier (the store, docs/store.md) holds for one transfer id:
 * nothing, a transfer with its pending status, or an id burnt by a
 * transient failure (id_already_failed). */
enum ledger_cold_kind {
	LEDGER_COLD_ABSENT = 0,
	LEDGER_COLD_TRANSFER = 1,
	LEDGER_COLD_FAILED = 2,
};
struct ledger_cold_item {
	struct transfer t; /* when kind == LEDGER_COLD_TRANSFER */
	u8 kind;	   /* enum ledger_cold_kind */
	u8 status;	   /* enum pending_status of t */
};

/*
 * The cold tier (docs/store.md): history beyond memory.
 *
 * A ledger given a cold tier records what each batch changes; the engine
 * drains those changes (ledger_drain) into the store and, once the store
 * holds them, evicts old transfers, history points and failed ids from
 * memory (ledger_evict).  Accounts and pending transfers always stay in
 * memory.  The state is the union of both tiers, so every result is the
 * same as a ledger that keeps everything in memory: before a batch
 * applies, the ids it refers to that memory no longer holds are looked
 * up in the cold tier at once (cold.get), and a failed lookup leaves the
 * batch unapplied.
 */
struct ledger_cold {
	/* Look up ids[0..n): out[i] for ids[i].  Returns 0 or a negative
	 * errno (the batch is then not applied and the call returns it). */
	int (*get)(void *ctx, const u128 *ids, u32 n,
		   struct ledger_cold_item *out);
	void *ctx;
};

/* Give l a cold tier and start recording changes (from the whole state:
 * the first drain emits everything).  0 or -ENOMEM. */
int ledger_set_cold(struct ledger *l, const struct ledger_cold *cold);

/* What changed since the last drain, for the store: new transfers (with
 * their pending status and, for a side whose account keeps history, its
 * balance point after the transfer), pending statuses that changed
 * (each transfer once, from PENDING to what it is now),
 * accounts created or changed (their current record), failed ids.  The
 * pointers are valid during the call only. */
struct ledger_drain_ops {
	void (*transfer)(void *ctx, const struct transfer *t, u8 status,
			 const struct account_balance *dr_point,
			 const struct account_balance *cr_point);
	void (*status)(void *ctx, const struct transfer *t, u8 status);
	void (*account)(void *ctx, const struct account *a);
	void (*failed)(void *ctx, u128 id);
};
/* Names a drain: give it back to ledger_evict once the store holds it. */
struct ledger_mark {
	u32 drain;
	u32 transfers;
	u32 history;
	u32 failed;
};
/* 0, or -ENOMEM (nothing emitted; try again). */
int ledger_drain(struct ledger *l, const struct ledger_drain_ops *ops,
		 void *ctx, struct ledger_mark *out);

/* The store holds every drain up to `stored`: drop from memory the
 * transfers it holds but the newest keep_transfers, with their history
 * points, and the failed ids it holds.  Pending transfers stay (pinned),
 * and so do transfers whose status changed after `stored`.  Call right
 * after ledger_drain: -EBUSY when changes were made since, -EINVAL for a
 * mark from the future, -ENOMEM (nothing evicted). */
int ledger_evict(struct ledger *l, const struct ledger_mark *stored,
		 u64 keep_transfers);

/* Recovery from the cold tier: a new ledger, given its cold tier with
 * ledger_set_cold, gets every account and every pending transfer the
 * store holds (ledger_restore_account, in creation order, that is by
 * timestamp; _pending: 0 or -ENOMEM; -EINVAL for a record that cannot be
 * right: a zero id, one seen twice, accounts out of order, a pending
 * transfer without the pending flag), then ledger_restore_end
 * with the number of transfers the store holds and the last timestamp
 * applied.  Nothing of this is a change to drain. */
int ledger_restore_account(struct ledger *l, const struct account *a);
int ledger_restore_pending(struct ledger *l, const struct transfer *t);
void ledger_restore_end(struct ledger *l, u64 transfers, u64 last_timestamp);

/* Transfers (and balance points) with a timestamp >= this are answered by
 * the queries above; older ones by the cold tier.  0 when nothing was
 * evicted. */
u64 ledger_hot_since(const struct ledger *l);

/* out[i] = 1 when a transfer with id ev[i].id exists, in either tier.  0,
 * or the cold tier's error. */
int ledger_transfers_exist(struct ledger *l, const struct transfer *ev, u32 n,
			   u8 *out);

/* Counters for metrics and memory accounting. */
struct ledger_stats {
	u64 accounts;
	u64 transfers;
	u64 pending_open;
	u64 index_bytes;  /* bytes held in hash indexes and per-account lists */
	u64 record_bytes; /* bytes held in account/transfer/history records */
};
void ledger_stats(const struct ledger *l, struct ledger_stats *out);

/*
 * Digest of the whole logical state, the same whichever tier holds what:
 * two ledgers that applied the same batches have the same digest, with or
 * without a cold tier, before and after a restore.
 *
 * BLAKE2b-256 over a header (counts, last timestamp), every account in
 * creation order, and three sums that can be kept as records come and go:
 * of the BLAKE2b-256 of each transfer with its pending status, of each
 * balance point, and of each failed id (each sum is four independent
 * 64-bit lanes, added modulo 2^64).  A consumer of ledger_drain keeps
 * the sums of what it stored with ledger_sums_transfer (status changes:
 * remove the transfer as pending, add it with its new status; a drained
 * status change is always from PENDING), ledger_sums_point and
 * ledger_sums_failed; ledger_digest_with combines them with the accounts
 * in memory.  ledger_digest computes the sums itself, so needs every
 * record in memory.
 */
struct ledger_sums {
	u64 transfers[4];
	u64 points[4];
	u64 failed[4];
	u64 n_transfers, n_points, n_failed;
};
void ledger_sums_transfer(struct ledger_sums *s, const struct transfer *t,
			  u8 status, bool remove);
void ledger_sums_point(struct ledger_sums *s, u128 account_id,
		       const struct account_balance *b);
void ledger_sums_failed(struct ledger_sums *s, u128 id);
void ledger_digest_with(const struct ledger *l, const struct ledger_sums *s,
			u8 out[32]);
void ledger_digest(const struct ledger *l, u8 out[32]);

/*
 * Snapshots.  ledger_snapshot_write() streams the state through sink in
 * pieces; it allocates nothing and takes no lock, so it is safe in a child
 * after fork().  It returns 0, or the first non-zero value sink returned.
 * ledger_snapshot_read() rebuilds a ledger from the bytes written (the
 * caller checks the file's checksum first); it returns NULL on a malformed
 * or truncated snapshot or when out of memory, never crashes.
 */
typedef int (*ledger_sink_fn)(void *ctx, const void *buf, size_t len);
int ledger_snapshot_write(const struct ledger *l, ledger_sink_fn sink,
			  void *ctx);
struct ledger *ledger_snapshot_read(const u8 *buf, size_t len);

/* The four balances summed over every account (accounts are always in
 * memory, with or without a cold tier): debits equal credits, pending and
 * posted, in a consistent ledger (`tpwallet recover --check`).  A sum
 * that passes 2^128 sets overflow. */
struct ledger_totals {
	u64 accounts;
	u128 debits_pending, debits_posted, credits_pending, credits_posted;
	bool overflow;
};
void ledger_totals(const struct ledger *l, struct ledger_totals *out);

/* Checks the per-ledger balance invariants by re-summing every account
 * (expensive: tests and debug builds).  Returns true when they hold. */
bool ledger_check_invariants(const struct ledger *l);

#endif
