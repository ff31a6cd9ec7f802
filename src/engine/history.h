/*
 * history.h - the ledger's history on disk behind the engine (issue 12):
 * the store (log/store) as the ledger's cold tier, written behind the
 * journal by a thread of its own.
 *
 * The applier, after each group it applied and under the engine's write
 * lock, drains the ledger's changes into a buffer (history_applied);
 * the writer thread takes the buffer whole, turns it into one store
 * commit tagged with the group's journal seq, and says which drain the
 * store now holds; the applier then evicts what the store holds from
 * memory, but a recent window (history_options.cache_bytes).  The
 * ledger asks the store for ids it no longer holds (ledger_set_cold).
 * A buffer that grows past its bound makes the applier wait for the
 * writer (history_wait): the store's speed bounds memory.
 *
 * Recovery (history_recover) starts from the store as it is on disk (a
 * crash loses RocksDB's memtables, never a whole commit: its meta says
 * which journal seq it reaches): accounts and pending transfers into
 * memory, the authorization and policy state from the store's blobs,
 * then the engine replays the journal after that seq through
 * history_applied as well.  A store that is missing, corrupt, of another
 * format or from another journal (its origin is a hash of the journal's
 * first record) is rebuilt from the journal, never trusted.
 *
 * The store's sums of the history (ledger_sums) are committed with each
 * batch, so the state digest is the same as an all-in-memory ledger's
 * (history_digest).
 */
#ifndef TPW_ENGINE_HISTORY_H
#define TPW_ENGINE_HISTORY_H

#include "core/ledger.h"
#include "core/state.h"
#include "log/store.h"

#include <stdbool.h>

struct history;

struct history_options {
	const char *data_dir;
	/* Memory for history: half the store's block cache, half the
	 * window of recent transfers kept in memory.  0: the default. */
	u64 cache_bytes;
	u64 window_transfers; /* 0: from cache_bytes */
	bool quiet;
	/* The journal ends before the store's seq (it was truncated): start
	 * the store again from the journal. */
	bool rebuild;
	/* Where sealed journal segments may have been moved (setting
	 * journal_archive_dir), or NULL. */
	const char *archive_dir;
};
#define HISTORY_CACHE_BYTES_DEFAULT (512ull << 20)
#define HISTORY_CACHE_BYTES_MIN	    (1ull << 20)

/* Open the store under DATA/store (created, or rebuilt, as needed) and
 * build the state it holds into *state, or a new state when it holds
 * none; *seq and *timestamp are the journal position it reaches (0 when
 * none), from which the engine replays.  Returns 0 or -errno with *why.
 */
int history_open(struct history **out, const struct history_options *o,
		 const struct ledger_options *lo, struct state **state,
		 u64 *seq, u64 *timestamp, const char **why);

/* After the engine applied records up to seq (timestamp: its record's),
 * under the write lock: drain into the buffer, evict what the store
 * holds.  parts_changed: a command was applied, so the authorization or
 * policy state may have changed.  During replay (before history_start)
 * the buffer is committed here when it is large.  0, or -errno (the
 * store failed: the engine stops taking changes). */
int history_applied(struct history *h, struct state *s, u64 seq, u64 timestamp,
		    bool parts_changed);
/* Without the write lock: wait while the buffer is over its bound. */
void history_wait(struct history *h);
/* Commit what replay left in the buffer, then start the writer. */
int history_start(struct history *h, const char **why);
/* Stop the writer after it committed everything; close the store. */
void history_close(struct history *h);
/* True once a store write failed (every change is refused then). */
bool history_failed(struct history *h);

/* The store, for reads on any thread (lookups and queries below
 * ledger_hot_since). */
struct store *history_store(struct history *h);

/* The state digest (state_digest_with) once the store holds everything
 * applied: call with the engine's write lock held. */
void history_digest(struct history *h, const struct state *s, u8 out[32]);

struct history_stats {
	struct store_stats store;
	u64 commits;
	u64 committed_seq;
	u64 flushed_seq; /* what survives a crash; the rest is replayed */
	u64 evictions;
	u64 keep_transfers;
	u64 buffered_transfers; /* drained, not yet committed */
	u64 waits;		/* times the applier waited for the writer */
};
void history_stats(struct history *h, struct history_stats *out);

/* The journal's identity (the store's origin, DATA/journal-origin): a
 * keyed hash of its first record's bytes raw[0..raw_bytes) as on disk.
 * Backups carry it to tell one server's journal from another's. */
void history_origin_of(const u8 *raw, size_t raw_bytes, u8 out[32]);

#endif
