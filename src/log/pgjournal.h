/*
 * pgjournal.h - the journal's mirror in PostgreSQL (cluster mode, issue 13).
 *
 * In cluster mode every journal group (the records one journal_sync makes
 * durable) is also one row of a PostgreSQL table, committed with
 * synchronous replication, so the loss of this machine loses nothing that
 * was acknowledged.  PostgreSQL (with Patroni) does the consensus; this
 * module only appends, fences and reads back.
 *
 * Schema (created if missing, under an advisory lock so that two nodes
 * starting together do not race):
 *
 *     tpw_journal(seq bigint PRIMARY KEY,  -- the group's first record seq
 *                 last_seq bigint,         -- its last record seq
 *                 term bigint,             -- the writer's lease term
 *                 checksum bigint,         -- CRC-32C of bytes
 *                 bytes bytea)             -- the group's journal records
 *     tpw_lease(id = 1, term bigint, holder text, expires timestamptz,
 *               address text)          -- the holder's cluster_advertise
 *
 * Every insert into tpw_journal notifies channel PGJOURNAL_CHANNEL (a
 * trigger, so in the append's own transaction: delivered at its commit)
 * with the row's last_seq: followers LISTEN and read the new rows.
 *
 * Fencing: a writer holds the lease with a term number.  pgjournal_acquire
 * takes it in one transaction only when it has expired (PostgreSQL's clock)
 * or is held by the same holder, and increments the term.  Every append is
 * ONE statement that updates the lease row where the term is still ours
 * (extending its expiry) and inserts the group only through that update:
 * a writer whose term was superseded cannot append one more row, and the
 * row lock orders an append against a concurrent take-over.
 *
 * Unknown outcomes: when the connection is lost during an append, the
 * module reconnects (the connection string may list several hosts with
 * target_session_attrs=read-write: libpq finds the new primary after a
 * failover) and reads the seq back: present with our term and checksum is
 * success, present otherwise is -EEXIST, absent is appended again.  A seq
 * is never appended twice (it is the primary key besides).
 *
 * Errors are negative errnos with a short reason (pgjournal_error), which
 * never holds the connection string (it may hold a password).
 *   -ESTALE     the lease is no longer ours (another writer took it)
 *   -EBUSY      pgjournal_acquire: another holder's lease has not expired
 *   -EEXIST     the seq is taken by different bytes (diverged)
 *   -EBADMSG    a row read back does not match its checksum
 *   -ENOTCONN   PostgreSQL unreachable within reconnect_ms
 *   -EIO        any other PostgreSQL error
 *
 * Threads: one struct pgjournal is used by one thread at a time.
 */
#ifndef TPW_LOG_PGJOURNAL_H
#define TPW_LOG_PGJOURNAL_H

#include "core/types.h"

#include <stddef.h>

/* Defaults of the options below. */
#define PGJOURNAL_LEASE_MS_DEFAULT     10000u
#define PGJOURNAL_RECONNECT_MS_DEFAULT 60000u
/* pgjournal_read hands at most this many rows per query to its callback
 * before asking for the next ones (bounds the memory of a catch-up). */
#define PGJOURNAL_READ_ROWS 16u

struct pgjournal_options {
	/* The lease's length: another holder may take it this long after
	 * the last append or renewal.  0: PGJOURNAL_LEASE_MS_DEFAULT. */
	u32 lease_ms;
	/* How long a lost connection is retried before -ENOTCONN (a
	 * Patroni failover takes its ttl and more).  0: the default. */
	u32 reconnect_ms;
};

struct pgjournal;

/* Connect and create the schema if missing.  conninfo is a libpq
 * connection string or URI; it is kept (for reconnects) and wiped at
 * close.  Returns 0 or a negative errno; *out is NULL on error and the
 * reason is in *err (static storage valid until the next failed open). */
int pgjournal_open(struct pgjournal **out, const char *conninfo,
		   const struct pgjournal_options *opts, const char **err);

/* The notification channel of new rows. */
#define PGJOURNAL_CHANNEL "tpw_journal"
/* An address (cluster_advertise) is shorter than this. */
#define PGJOURNAL_ADDRESS_BYTES 256u

/* Take the lease for holder (a stable name of this node: the same node
 * restarting takes it back at once) with a new term, returned in *term;
 * address (the URL clients should use for the holder, may be "") is
 * stored with it.  -EBUSY when another holder's lease has not expired. */
int pgjournal_acquire(struct pgjournal *pj, const char *holder,
		      const char *address, u64 *term);

/* The lease as it stands (PostgreSQL's clock decides expiry). */
struct pgjournal_lease {
	u64 term;
	bool expired;
	char address[PGJOURNAL_ADDRESS_BYTES];
};
int pgjournal_lease(struct pgjournal *pj, struct pgjournal_lease *out);

/* Followers: LISTEN on PGJOURNAL_CHANNEL (again after a reconnect) and
 * wait at most timeout_ms for a notification.  1: there may be new rows
 * (*notified: the highest last_seq notified, or 0 when not known), 0:
 * nothing came, or a negative code. */
int pgjournal_wait(struct pgjournal *pj, u32 timeout_ms, u64 *notified);
/* Stop listening (a follower that became the writer). */
int pgjournal_unlisten(struct pgjournal *pj);

/* The term last acquired (0 before). */
u64 pgjournal_term(const struct pgjournal *pj);

/* Append one group (seq..last_seq, bytes) under term, and wait for the
 * commit (synchronous replication: on the standby too).  Also extends the
 * lease.  0, -ESTALE (fenced), -EEXIST, -ENOTCONN, -EIO. */
int pgjournal_append(struct pgjournal *pj, u64 seq, u64 last_seq, u64 term,
		     const void *bytes, size_t len);

/* The same in two halves, so the caller can fdatasync its own copy
 * while PostgreSQL commits: _start sends the statement, _finish waits for
 * its outcome (resolving a lost connection as above).  bytes must stay
 * valid and unchanged until _finish returns.  Between the two, no other
 * call on pj. */
int pgjournal_append_start(struct pgjournal *pj, u64 seq, u64 last_seq,
			   u64 term, const void *bytes, size_t len);
int pgjournal_append_finish(struct pgjournal *pj);

/* Extend the lease while there is nothing to append (-ESTALE if lost). */
int pgjournal_renew(struct pgjournal *pj, u64 term);

/* The last seq in the table (the last row's last_seq; 0 if none). */
int pgjournal_last_seq(struct pgjournal *pj, u64 *last_seq);

/* Call fn for every row that holds a record with seq >= from_seq (the
 * row holding from_seq first, when from_seq is inside a group), in
 * order, checksums verified.  fn returns 0 to go on or a negative code to
 * stop with it.  bytes are valid during the call only, and 64-byte
 * aligned (the ledger reads events with aligned loads). */
typedef int (*pgjournal_row_fn)(void *ctx, u64 seq, u64 last_seq, u64 term,
				const void *bytes, size_t len);
int pgjournal_read(struct pgjournal *pj, u64 from_seq, pgjournal_row_fn fn,
		   void *ctx);

/* The reason of the last error on pj: one short line, no secrets. */
const char *pgjournal_error(const struct pgjournal *pj);

/* Close the connection and free everything.  NULL is a no-op. */
void pgjournal_close(struct pgjournal *pj);

/* Does the connection string hold a password (a `password` keyword or
 * the URI's user:password@)?  For the start's warnings about where it
 * was given; false for a string libpq refuses. */
bool pgjournal_conninfo_has_password(const char *conninfo);

#endif
