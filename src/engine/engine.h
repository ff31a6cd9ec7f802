/*
 * engine.h - the sequencer: order, journal, sync, apply, reply.
 *
 * Requests from any thread are queued.  Two threads form a pipeline:
 *
 *   sequencer: takes every request waiting, stamps each with a strictly
 *              increasing timestamp, appends them to the journal as one
 *              group and syncs once (group commit);
 *   applier:   applies each durable group to the state (core/state: the
 *              ledger, auth and policy state), in journal order,
 *              under the write lock, and only then calls each request's
 *              `done` callback.
 *
 * So a reply is never sent for a change that is not durable; one
 * fdatasync is shared by every request that arrived while the previous
 * one ran; and applying group k overlaps syncing group k + 1.
 *
 * Reads take the read lock and see only applied (hence durable) state.
 *
 * Recovery at engine_open: newest valid snapshot, then replay of the
 * journal after it.  Snapshots are written in the background by a forked
 * child (copy-on-write), every `snapshot_every_records` events.  With a
 * store (engine_options.store), history lives in DATA/store behind the
 * journal (engine/history.h) and recovery starts from it instead.
 */
#ifndef TPW_ENGINE_ENGINE_H
#define TPW_ENGINE_ENGINE_H

#include "core/ledger.h"
#include "core/state.h"
#include "engine/trace.h"

#include <pthread.h>

enum engine_op {
	ENGINE_CREATE_ACCOUNTS = 1,  /* events are struct account   */
	ENGINE_CREATE_TRANSFERS = 2, /* events are struct transfer  */
	/* events is a JOURNAL_COMMAND payload (core/auth.h: command_header,
	 * ext, then `count` events) of payload_bytes; results has room for
	 * max(count, 1) codes (an event-less command's outcome in [0]). */
	ENGINE_COMMAND = 3,
};

struct engine_request;
typedef void (*engine_done_fn)(struct engine_request *req);

/* Owned by the caller; must stay valid until `done` has been called.  */
struct engine_request {
	enum engine_op op;
	u32 count;	    /* 1..BATCH_EVENTS_MAX (commands: 0..) */
	u32 payload_bytes;  /* ENGINE_COMMAND only */
	const void *events; /* count records of 128 bytes */
	u32 *results;	    /* out: count result codes */
	u64 timestamp;	    /* out: the batch's timestamp (last event's) */
	u64 seq;	    /* out: journal sequence number of the batch */
	/* out: 0; or -EIO: the journal failed while this batch was being
	 * written, so whether it is applied is unknown until a restart
	 * (retry with the same ids: they are idempotent); or another
	 * negative errno: not applied (-ECANCELED after a journal failure,
	 * -ENOLINK after cluster mode's table refused or lost a group,
	 * -EREMOTE on a cluster follower (another node is the writer),
	 * -ESHUTDOWN while closing, -ERANGE for a clock past 2262). */
	int status;
	/* Called once: on the applier thread after the batch is applied,
	 * or on the sequencer thread when it was not (status < 0); must
	 * not block (it holds up every later reply). */
	engine_done_fn done;
	void *ctx;
	/* Tracing (engine/trace.h): the context of the caller's span, or
	 * all zero.  When it is sampled, the engine records its stages
	 * (queue wait, commit, apply) as children of it, and the group
	 * commit it shared as a span they link to (docs/operations.md,
	 * "Tracing"). */
	struct trace_context trace;
	u64 trace_queued_ns;	     /* internal */
	struct engine_request *next; /* internal */
};

struct engine_options {
	const char *data_dir;
	u64 snapshot_every_records; /* 0: 1,000,000 events */
	u64 accounts_hint;
	u64 transfers_hint;
	bool no_sync; /* benchmarks of the non-durable path only */
	/* Recovery progress to stderr when it takes more than a moment. */
	bool quiet;
	/* Records 1..covered_seq are known acknowledged (audit_covered_size):
	 * damage among them refuses to start, unless the operator passed
	 * truncate_corrupt_tail (journal_options). */
	u64 covered_seq;
	bool truncate_corrupt_tail;
	/* The clock records are stamped with and pending transfers expire
	 * by (core/state.h); now_ns NULL: CLOCK_REALTIME.  Must not go
	 * back by much: the engine keeps timestamps increasing anyway.  A
	 * test steps it to drive expiry (a pulse) without sleeping. */
	struct state_clock clock;
	/* Called on the applier thread after it applied a group that held
	 * a client-policy command (not during recovery); must not block.
	 * The override expirer (engine/expirer.h) looks again then. */
	void (*pstate_changed)(void *ctx);
	void *pstate_changed_ctx;
	/* Cluster mode: called on the sequencer thread once a follower
	 * has taken the lease and accepts changes; must not block (nor
	 * submit and wait: the sequencer is the caller).  serve wakes its
	 * key upkeep (the new writer's signing key is journaled) and the
	 * override expirer. */
	void (*became_writer)(void *ctx);
	void *became_writer_ctx;
	/* History on disk (engine/history.h, docs/store.md): the ledger's
	 * records in DATA/store behind a window of cache_bytes (0: the
	 * default); recovery starts from the store instead of a snapshot. */
	bool store;
	u64 cache_bytes;
	/* Recent transfers kept in memory with a store; 0: what half of
	 * cache_bytes holds.  Tests set it small to make eviction happen. */
	u64 window_transfers;
	/* Cluster mode (engine/cluster.h, docs/operations.md "Cluster
	 * mode"): each group also committed to PostgreSQL before replies,
	 * under the writer's lease.  NULL: a single node. */
	const struct cluster_options *cluster;
	/* Journal segments roll past this many bytes (0: 256 MiB). */
	u64 segment_bytes;
	/* Where sealed segments are moved (setting journal_archive_dir), or
	 * NULL: a rebuild from the journal (a store missing or corrupt)
	 * reads the segments no longer in DATA/journal from there. */
	const char *archive_dir;
};

struct engine;
struct vault;
struct cluster_options;

/* Recover and start the sequencer.  On failure returns a negative errno
 * and *err (if not NULL) names the cause (file, offset). */
int engine_open(struct engine **out, const struct engine_options *opts,
		const char **err);
/* Stop accepting, finish queued requests, stop the thread, close. */
void engine_close(struct engine *e);

/* Queue a request.  Returns 0 (done will be called exactly once), or
 * -EINVAL for a malformed request, -ESHUTDOWN when closing. */
int engine_submit(struct engine *e, struct engine_request *req);

/* Convenience for CLI and tests: submit and wait. */
int engine_execute(struct engine *e, struct engine_request *req);

/* Read access.  Hold the lock only for the duration of a lookup. */
const struct ledger *engine_read_begin(struct engine *e);
void engine_read_end(struct engine *e);
/* The authorization state; read it only between read_begin and _end. */
const struct auth *engine_auth(struct engine *e);
/* The client-version policy state, under the same rule. */
const struct pstate *engine_pstate(struct engine *e);
/* The card vault's state (core/vault.h), under the same rule. */
const struct vault *engine_vault(struct engine *e);

/* Transfers, in whichever tier holds them (memory, or with a store the
 * store, docs/store.md); each takes the read lock itself.  A lookup
 * returns 0 with the transfer and its pending status, -ENOENT, or -EIO
 * when the store failed.  The queries have ledger.h's semantics
 * (get_account_transfers/balances: -EINVAL for a filter it refuses) and
 * return the number of records; statuses (may be NULL) receives the
 * pending status of each transfer. */
int engine_lookup_transfer(struct engine *e, u128 id, struct transfer *out,
			   enum pending_status *status);
/* The same for n ids at once (one read lock, batched store reads):
 * found[i] says whether out[i] and status[i] were set; 0 or -EIO. */
int engine_lookup_transfers(struct engine *e, const u128 *ids, u32 n,
			    struct transfer *out, u8 *status, bool *found);
int engine_account_transfers(struct engine *e, const struct account_filter *f,
			     struct transfer *out, u8 *statuses, u32 out_max);
int engine_account_balances(struct engine *e, const struct account_filter *f,
			    struct account_balance *out, u32 out_max);

/* The state digest (state_digest; with a store, once the store holds
 * everything applied).  Holds the write lock: without a store it walks
 * every record (tests, bench, the log line at a clean stop). */
void engine_digest(struct engine *e, u8 out[32]);
/* The same, and the seq of the state it is the digest of. */
u64 engine_digest_seq(struct engine *e, u8 out[32]);

/* The last seq applied to the state (what a read sees at least). */
u64 engine_applied_seq(struct engine *e);
/* Cluster mode: true while another node is the writer (engine_submit
 * answers -EREMOTE); false for the writer and a single node. */
bool engine_is_follower(struct engine *e);
/* The writer's address (its cluster_advertise) as this node last read
 * it, into buf; "" when not known or not in cluster mode. */
void engine_writer_address(struct engine *e, char *buf, size_t n);

/* The store's figures; false when the engine has none. */
struct history_stats;
bool engine_history_stats(struct engine *e, struct history_stats *out);

struct engine_stats {
	u64 batches; /* journal groups committed */
	u64 records; /* journal records written */
	u64 events;
	u64 journal_bytes;
	u64 snapshots;
	u64 last_seq;
	/* fdatasync latency histogram, microseconds: sync_buckets[i] counts
	 * syncs with latency <= ENGINE_SYNC_BUCKETS_US[i] and above the bound
	 * before it (not cumulative; the last bound, 0, is +Inf). */
	u64 sync_buckets[12];
	u64 sync_sum_us;
	u64 sync_count;
	u64 recovery_records;
	u64 recovery_ms;
};
#define ENGINE_SYNC_BUCKETS_US                                                 \
	{                                                                      \
		50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,      \
			100000, 0                                              \
	}
void engine_stats(struct engine *e, struct engine_stats *out);

/* The seq of the state recovery started from (the store's or the
 * snapshot's; 0: none): the journal records after it were replayed into
 * the state at this start, and the audit tree compares each of them with
 * its stored leaf before it trusts them (docs/audit.md, "Start-up from
 * the files"). */
u64 engine_recovered_from(struct engine *e);

/* The last journal seq that is durable (fdatasync'ed).  Readers of the
 * journal files (the audit tree) must not go past it: a record beyond may
 * still be half-written, or lost in a power cut. */
u64 engine_durable_seq(struct engine *e);

/* Now on the clock records are stamped with (engine_options.clock),
 * in nanoseconds since the epoch. */
u64 engine_now_ns(struct engine *e);

/* False once the journal has failed (every change is refused until a
 * restart) or the engine is closing: /readyz reports it. */
bool engine_healthy(struct engine *e);
/* Why engine_healthy is false (the journal, or in cluster mode the
 * table): a sentence for /readyz. */
const char *engine_failure(struct engine *e);
/* Cluster mode's figures (false, s untouched, for a single node). */
struct cluster_stats;
bool engine_cluster_stats(struct engine *e, struct cluster_stats *s);

#endif
