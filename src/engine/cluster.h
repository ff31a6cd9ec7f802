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
 * Followers, failover between tpwallet nodes and read-your-writes are
 * later steps (docs/operations.md, "Cluster mode (first step)").
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
};

struct cluster_stats {
	u64 term;
	u64 appended_seq; /* last seq committed to the table */
	u64 appends;	  /* groups appended */
	u64 append_us_sum;
};

struct cluster;

/* Connect, create the schema if missing, take the lease (waiting at most
 * one lease length for another holder's to expire).  *err: a short
 * reason without secrets (static storage). */
int cluster_open(struct cluster **out, const struct cluster_options *o,
		 const char **err);

/* Bring j (opened and replayed; nothing pending) and the table to the
 * same end: records the table has beyond j are appended to j, synced, and
 * passed to apply (as journal_open's replay); records j has beyond the
 * table (durable here, never acknowledged) are appended to the table.  The
 * group where the two meet is compared record by record: a node whose
 * journal differs from the table's stops with -EBADMSG. */
int cluster_catch_up(struct cluster *c, struct journal *j, const char *data_dir,
		     journal_replay_fn apply, void *ctx, const char **err);

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
