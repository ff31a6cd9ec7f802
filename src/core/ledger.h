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

/* Returns NULL when out of memory. */
struct ledger *ledger_new(const struct ledger_options *opts);
void ledger_free(struct ledger *l);

/*
 * Apply one batch.  `timestamp` is the batch's commit time in nanoseconds,
 * from the journal entry; event i is stamped timestamp - n + 1 + i, so the
 * caller must give a timestamp > previous batch's timestamp + n.  Before
 * the events apply, pending transfers whose timeout has passed at
 * timestamp - n + 1 are expired (see ledger_pulse).
 *
 * results[i] receives the result code of event i (0 == ok/created).
 * n must be 1..BATCH_EVENTS_MAX.  Returns 0, or -ENOMEM when the state
 * could not grow (the batch is then not applied at all).
 */
int ledger_create_accounts(struct ledger *l, const struct account *events,
			   u32 n, u64 timestamp, u32 *results);
int ledger_create_transfers(struct ledger *l, const struct transfer *events,
			    u32 n, u64 timestamp, u32 *results);

/* Expire every pending transfer whose deadline (its timestamp + timeout
 * seconds) is <= timestamp, releasing its pending amounts. */
void ledger_pulse(struct ledger *l, u64 timestamp);

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
 * up to min(filter->limit, out_max) results ordered by timestamp
 * (descending with ACCOUNT_FILTER_REVERSED).  Returns the count, or
 * -EINVAL for an invalid filter (see ledger.c for the rules). */
int ledger_get_account_transfers(const struct ledger *l,
				 const struct account_filter *f,
				 struct transfer *out, u32 out_max);
int ledger_get_account_balances(const struct ledger *l,
				const struct account_filter *f,
				struct account_balance *out, u32 out_max);

/* Counters for metrics and memory accounting. */
struct ledger_stats {
	u64 accounts;
	u64 transfers;
	u64 pending_open;
	u64 index_bytes;  /* bytes held in hash indexes and per-account lists */
	u64 record_bytes; /* bytes held in account/transfer/history records */
};
void ledger_stats(const struct ledger *l, struct ledger_stats *out);

/* BLAKE2b-256 digest of the whole logical state (accounts, transfers,
 * pending statuses, failed ids, histories) in a canonical order: two
 * ledgers that applied the same batches have the same digest. */
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

/* Checks the per-ledger balance invariants by re-summing every account
 * (expensive: tests and debug builds).  Returns true when they hold. */
bool ledger_check_invariants(const struct ledger *l);

#endif
