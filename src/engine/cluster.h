/*
 * cluster.h - cluster mode's writer side (issue 13, first step): every
 * journal group also goes to PostgreSQL (log/pgjournal.h) before replies.
 *
 * The engine owns one struct cluster when `serve --cluster` is given and
 * uses it from its sequencer thread only.  At start (cluster_open,
 * cluster_catch_up) the node takes the writer's lease and brings its
 * local journal and the table to the same end; then for each group it
 * sends the group's bytes (cluster_append_start), fdatasyncs its own copy,
 * and waits for PostgreSQL's commit (cluster_append_finish): replies go
 * out only when both are durable.  A failed append stops the writer (the
 * engine refuses every change, /readyz 503) rather than let the two
 * copies diverge.
 *
 * A node that cannot take the lease (another node holds it) is a
 * follower: the engine's sequencer thread calls cluster_follow in a loop,
 * which waits for the table's notification (or a poll interval), appends
 * the new rows' records to the local journal, syncs it, and hands each
 * row to the engine to apply.  When the lease has expired, the follower
 * takes it (term + 1: the old writer is fenced), pulls what is left and
 * becomes the writer (docs/operations.md, "Cluster mode").
 */
#ifndef TPW_ENGINE_CLUSTER_H
#define TPW_ENGINE_CLUSTER_H

#include "core/types.h"
#include "log/journal.h"

struct cluster_options {
	const char *conninfo; /* libpq; may hold a password: never logged */
	const char *holder;   /* this node's stable name for the lease */
	u32 lease_ms;	      /* 0: PGJOURNAL_LEASE_MS_DEFAULT */
	u32 reconnect_ms;     /* 0: PGJOURNAL_RECONNECT_MS_DEFAULT */
	/* The URL clients should use for this node (cluster_advertise):
	 * stored with the lease, named by followers to writes.  May be
	 * NULL. */
	const char *advertise;
};

struct cluster_stats {
	bool writer;	    /* holds the lease (else a follower) */
	u64 term;	    /* the lease's term (a follower's: as last read) */
	u64 table_last_seq; /* the table's last seq, as last seen */
	u64 caught_up_ms;   /* monotonic ms when the local end last was it */
	u64 appended_seq;   /* last seq committed to the table */
	u64 appends;	    /* groups appended */
	u64 append_us_sum;
};

struct cluster;

/* Connect, create the schema if missing, take the lease, or when another
 * node holds it start as a follower (cluster_is_writer false).  *err: a
 * short reason without secrets (static storage). */
int cluster_open(struct cluster **out, const struct cluster_options *o,
		 const char **err);
bool cluster_is_writer(const struct cluster *c);

/* Bring j (opened and replayed; nothing pending) and the table to the
 * same end: records the table has beyond j are appended to j, synced, and
 * passed to apply (as journal_open's replay); records j has beyond the
 * table (durable here, never acknowledged) are appended to the table.  The
 * group where the two meet is compared record by record: a node whose
 * journal differs from the table's stops with -EBADMSG. */
int cluster_catch_up(struct cluster *c, struct journal *j, const char *data_dir,
		     journal_replay_fn apply, void *ctx, const char **err);

/* The follower's step: wait for a notification or the poll interval,
 * then append the table's new rows to j (synced once per row) and call
 * fn with each row's records (bytes valid during the call only, 64-byte
 * aligned; first..last their seqs).  When no notification came, checks
 * the lease, and takes it when it has expired: then pulls the rest and
 * returns 1 (this node is the writer now).  0: still a follower; or a
 * negative code (cluster_error says why). */
typedef int (*cluster_group_fn)(void *ctx, const void *bytes, size_t len,
				u64 first, u64 last);
int cluster_follow(struct cluster *c, struct journal *j, cluster_group_fn fn,
		   void *ctx);
/* The writer's address as last read from the lease (this node's own
 * once it is the writer); "" when not known. */
void cluster_writer_address(struct cluster *c, char *buf, size_t n);

/* Send the group pending in j (journal_pending), then fdatasync j
 * (journal_sync), then cluster_append_finish for the table's outcome. */
int cluster_append_start(struct cluster *c, struct journal *j);
int cluster_append_finish(struct cluster *c);

/* With nothing to append: renew the lease when a third of it has
 * passed.  0, or -ESTALE when it was lost (stop writing). */
int cluster_tick(struct cluster *c);

void cluster_stats(const struct cluster *c, struct cluster_stats *s);
/* The reason of the last failure: one line, no secrets. */
const char *cluster_error(const struct cluster *c);
void cluster_close(struct cluster *c);

#endif
