/*
 * engine.c - the sequencer and the applier: order, journal, sync, apply,
 * reply.
 *
 * The one place where the journal and the state (core/state) meet.  Any
 * thread may queue a request; only the sequencer thread writes the
 * journal, and only the applier thread (replay, before it starts) applies
 * to the state, in journal order, so the state needs no locking against
 * itself and the order of the journal is the order of the state.  See
 * engine.h for the contract and docs/architecture.md for the path of a
 * request.
 */
#include "engine/engine.h"
#include "core/assert.h"
#include "core/command.h"
#include "core/version.h"
#include "core/clock.h"
#include "core/state.h"
#include "engine/cluster.h"
#include "engine/history.h"
#include "engine/logger.h"
#include "log/journal.h"
#include "log/snapshot.h"

#include <errno.h>
#include <sodium.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

/* A group never holds more events than this: it bounds the journal write
 * buffer and the time a reader waits for the write lock. */
#define GROUP_EVENTS_MAX (8u * BATCH_EVENTS_MAX)
/* ... and at most this many journal bytes (half the journal's write
 * buffer, JOURNAL_BUFFER_BYTES_MAX, with a pulse beside). */
#define GROUP_BYTES_MAX	       ((u64)32 << 20)
#define SNAPSHOT_EVERY_DEFAULT 1000000u
/* The ledger keeps timestamps below 2^63 (a clock past the year 2262). */
#define TIMESTAMP_LIMIT ((u64)1 << 63)
#define SNAPSHOTS_KEPT	2u
/* How often the sequencer wakes with no traffic, to expire pending
 * transfers and reap the snapshot child. */
#define IDLE_WAKE_MS 50

/* Durable groups waiting for the applier.  Two are enough to keep both
 * stages busy; more would only add reply latency. */
#define PIPELINE_GROUPS 2

static const u64 sync_bounds_us[12] = ENGINE_SYNC_BUCKETS_US;

/* A group of requests committed by one journal_sync. */
struct group {
	struct engine_request *requests;
	/* A follower's group: a row of the cluster's table, whole journal
	 * records already durable here (malloc'ed, 64-byte aligned; freed
	 * by the applier).  requests is NULL then. */
	u8 *rows;
	size_t rows_len;
	bool pulse;
	u64 pulse_ts, pulse_seq;
	u64 events, records;
	/* toward the next snapshot: events, and a command's bytes in
	 * 128-byte units (so policy documents count too) */
	u64 weight;
	/* Tracing: when a request of the group is sampled, the group's
	 * span (a child of the first such request's span) and its times. */
	struct group_trace {
		struct trace_context ctx, parent;
		u64 taken_ns, sync_ns, synced_ns, durable_ns, bytes;
	} trace;
};

_Static_assert((int)JOURNAL_CREATE_ACCOUNTS == (int)STATE_CREATE_ACCOUNTS &&
		       (int)JOURNAL_CREATE_TRANSFERS ==
			       (int)STATE_CREATE_TRANSFERS &&
		       (int)JOURNAL_PULSE == (int)STATE_PULSE &&
		       (int)JOURNAL_COMMAND == (int)STATE_COMMAND,
	       "journal record types are the state's");

struct engine {
	/* The ledger, auth and policy state (core/state): written by the
	 * applier (replay before it starts), read under state_lock. */
	struct state *state;
	struct journal *journal;
	struct history *history;     /* NULL without a store */
	struct cluster *cluster;     /* NULL but in cluster mode */
	pthread_rwlock_t state_lock; /* readers vs. the applier */

	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;
	struct engine_request *head, *tail;
	bool stopping;
	bool failed;	     /* the journal failed: nothing more is accepted */
	bool follower;	     /* cluster mode: another node is the writer */
	bool cluster_failed; /* ... because the table refused or lost a group */

	/* Sequencer -> applier: durable groups, in journal order. */
	pthread_mutex_t pipe_lock;
	pthread_cond_t pipe_ready, pipe_space;
	struct group pipe[PIPELINE_GROUPS];
	unsigned pipe_head, pipe_count;
	bool pipe_closed;

	pthread_t sequencer, applier;
	bool sequencer_started, applier_started;
	u64 last_timestamp;	 /* sequencer: last stamped */
	u64 last_pulse_deadline; /* sequencer: deadline last pulsed for */
	_Atomic u64 next_expiry; /* applier publishes state_next_expiry */
	u64 last_seq;		 /* applier (under state_lock) */
	_Atomic u64 applied_seq; /* last_seq, for readers without the lock */
	_Atomic u64 durable_seq; /* sequencer: last seq fdatasync'ed */
	u64 applied_timestamp;	 /* applier: timestamp of record last_seq */

	struct state_clock clock; /* engine_options.clock, or realtime */
	void (*pstate_changed)(void *ctx); /* engine_options' */
	void *pstate_changed_ctx;
	void (*became_writer)(void *ctx); /* engine_options' */
	void *became_writer_ctx;
	char data_dir[PATH_MAX];
	u64 snapshot_every;
	u64 events_since_snapshot;
	pid_t snapshot_child;
	u64 snapshot_child_seq;
	struct snapshot_writer *snapshot_writer; /* allocated before fork */

	_Atomic u64 batches, records, events, snapshots, journal_bytes;
	_Atomic u64 sync_buckets[12];
	_Atomic u64 sync_sum_us, sync_count;
	u64 recovery_records, recovery_ms;
	u64 recovered_from; /* the seq the state held before the replay */
	/* Results of records replayed at open (nobody reads them). */
	u32 replay_results[BATCH_EVENTS_MAX];
};

static u64 realtime_ns(void *ctx)
{
	struct timespec ts;
	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

/* The time records are stamped with: engine_options.clock. */
static u64 now_ns(const struct engine *e)
{
	return e->clock.now_ns(e->clock.ctx);
}

/* IDLE_WAKE_MS from now on CLOCK_MONOTONIC, the clock of the engine's
 * condition variables: a wall clock stepped back would stretch the wait,
 * and the engine's own clock (engine_options.clock) may be a test's. */
static struct timespec idle_deadline(void)
{
	return tpw_deadline_ms(IDLE_WAKE_MS);
}

/* ---- applying records (shared by replay and the live path) ---------- */

struct replay_ctx {
	struct engine *e;
	u64 expect_seq;
	u64 count;
	const char *why; /* a record the state refused, said */
};

/* Why a journal record does not apply, for recover's error: a command
 * of a kind this release does not know was written by a newer one
 * (docs/operations.md, "Upgrades and rollbacks"). */
static _Thread_local char replay_why[256];

static const char *replay_refused(const struct journal_record *r)
{
	struct command_header h;

	if (r->type == JOURNAL_COMMAND && r->payload_bytes >= sizeof(h)) {
		memcpy(&h, r->payload, sizeof(h));
		if (!command_find(h.kind)) {
			snprintf(replay_why, sizeof(replay_why),
				 "journal record seq %llu is a command of kind "
				 "%u, which this release (%s) does not know: "
				 "it was written by a newer release; serve "
				 "this directory with that release "
				 "(`tpwallet upgrade check --data DATA`)",
				 (unsigned long long)r->seq, h.kind,
				 TPWALLET_VERSION);
			return replay_why;
		}
	}
	snprintf(replay_why, sizeof(replay_why),
		 "journal record seq %llu (type %u) does not apply to the "
		 "state before it: the journal is damaged or was not written "
		 "by this server",
		 (unsigned long long)r->seq, r->type);
	return replay_why;
}

static int replay_one(void *ctx, const struct journal_record *r)
{
	struct replay_ctx *rc = ctx;

	if (r->seq != rc->expect_seq)
		return -EBADMSG;
	int ret = state_apply(rc->e->state, r->type, r->timestamp, r->payload,
			      r->payload_bytes, rc->e->replay_results);
	if (ret < 0) {
		rc->why = replay_refused(r);
		return ret;
	}
	if (rc->e->history) {
		ret = history_applied(rc->e->history, rc->e->state, r->seq,
				      r->timestamp, r->type == JOURNAL_COMMAND);
		if (ret < 0)
			return ret;
	}
	rc->expect_seq++;
	rc->count++;
	rc->e->last_seq = r->seq;
	atomic_store(&rc->e->applied_seq, r->seq);
	if (r->timestamp > rc->e->last_timestamp)
		rc->e->last_timestamp = r->timestamp;
	return 0;
}

struct progress_ctx {
	u64 started_ms;
	u64 last_ms;
	bool quiet;
};

static void recovery_progress(void *ctx, u64 done, u64 total)
{
	struct progress_ctx *p = ctx;
	u64 t = tpw_monotonic_ms();

	/* Quiet for a moment; then at most one line a second. */
	if (p->quiet || t - p->started_ms < 1000 || t - p->last_ms < 1000)
		return;
	p->last_ms = t;
	log_at(LOG_INFO, "recovery in progress", LOG_NUM("bytes_done", done),
	       LOG_NUM("bytes_total", total),
	       LOG_NUM("percent", total ? done * 100 / total : 100));
}

static void snapshot_warn(void *ctx, const char *msg)
{
	(void)ctx;
	log_at(LOG_WARN, "snapshot skipped", LOG_STR("reason", msg));
}

static void journal_warn(void *ctx, const char *msg)
{
	(void)ctx;
	log_at(LOG_WARN, "journal repaired", LOG_STR("detail", msg));
}

static int recover(struct engine *e, const struct engine_options *o,
		   bool rebuild, const char **err)
{
	struct ledger_options lo = {.accounts_hint = o->accounts_hint,
				    .transfers_hint = o->transfers_hint};
	struct progress_ctx pc = {.started_ms = tpw_monotonic_ms(),
				  .quiet = o->quiet};
	struct journal_options jo = {.no_sync = o->no_sync,
				     .progress = recovery_progress,
				     .progress_ctx = &pc,
				     .warn = journal_warn,
				     .covered_seq = o->covered_seq,
				     .segment_bytes_max = o->segment_bytes,
				     .archive_dir = o->archive_dir,
				     .skip_sealed = o->store && !rebuild,
				     .truncate_corrupt_tail =
					     o->truncate_corrupt_tail};
	u8 *snap = NULL;
	size_t snap_len = 0;
	u64 snap_seq = 0, snap_ts = 0;
	int ret;

	if (o->store) {
		/* The store replaces the snapshots: the state it holds, then
		 * the journal after its seq. */
		struct history_options ho = {.data_dir = e->data_dir,
					     .cache_bytes = o->cache_bytes,
					     .window_transfers =
						     o->window_transfers,
					     .quiet = o->quiet,
					     .rebuild = rebuild,
					     .archive_dir = o->archive_dir};
		ret = history_open(&e->history, &ho, &lo, &e->state,
				   &e->last_seq, &e->last_timestamp, err);
		if (ret < 0)
			return ret;
		snap_seq = e->last_seq;
		ret = 0;
	} else {
		ret = snapshot_load_newest(e->data_dir, &snap, &snap_len,
					   &snap_seq, &snap_ts, snapshot_warn,
					   NULL);
	}
	if (ret < 0) {
		*err = "cannot read the snapshots directory";
		return ret;
	}
	if (e->state) {
		/* from the store */
	} else if (ret == 1) {
		e->state = state_snapshot_read(snap, snap_len);
		free(snap);
		if (!e->state) {
			*err = "the newest snapshot passed its checksum but "
			       "could not be decoded";
			return -EBADMSG;
		}
		e->last_seq = snap_seq;
		e->last_timestamp = snap_ts;
	} else {
		e->state = state_new(&lo);
		if (!e->state) {
			*err = "out of memory";
			return -ENOMEM;
		}
	}
	if (state_last_timestamp(e->state) > e->last_timestamp)
		e->last_timestamp = state_last_timestamp(e->state);

	struct replay_ctx rc = {.e = e, .expect_seq = e->last_seq + 1};
	ret = journal_open(&e->journal, e->data_dir, &jo, e->last_seq,
			   replay_one, &rc, err);
	if (ret < 0) {
		if (rc.why)
			*err = rc.why;
		if (ret == -EBADMSG && *err == NULL)
			*err = "journal records do not follow the snapshot";
		return ret;
	}
	if (journal_next_seq(e->journal) != e->last_seq + 1) {
		if (e->history && !rebuild) {
			/* The store is ahead of a journal that was cut
			 * (truncate_corrupt_tail): start it again. */
			journal_close(e->journal);
			e->journal = NULL;
			history_close(e->history);
			e->history = NULL;
			state_free(e->state);
			e->state = NULL;
			e->last_seq = e->last_timestamp = 0;
			return recover(e, o, true, err);
		}
		*err = "journal ends before the newest snapshot: the journal "
		       "was truncated or replaced";
		return -EBADMSG;
	}
	if (e->cluster) {
		/* The table's records beyond the local end are applied as
		 * replayed ones are. */
		ret = cluster_catch_up(e->cluster, e->journal, e->data_dir,
				       replay_one, &rc, err);
		if (ret < 0)
			return ret;
	}
	if (e->history) {
		ret = history_start(e->history, err);
		if (ret < 0)
			return ret;
	}
	atomic_store(&e->journal_bytes, journal_size_bytes(e->journal));
	e->recovery_records = rc.count;
	e->recovered_from = snap_seq;
	e->recovery_ms = tpw_monotonic_ms() - pc.started_ms;
	if (!o->quiet && (rc.count > 0 || ret == 1 || snap_seq > 0))
		log_at(LOG_INFO, "recovered",
		       LOG_NUM(e->history ? "store_seq" : "snapshot_seq",
			       snap_seq),
		       LOG_NUM("replayed_records", rc.count),
		       LOG_NUM("last_seq", e->last_seq),
		       LOG_NUM("segments_not_read",
			       journal_skipped_segments(e->journal)),
		       LOG_NUM("duration_ms", e->recovery_ms));
	return 0;
}

/* ---- snapshots ------------------------------------------------------ */

static void snapshot_reap(struct engine *e, bool block)
{
	int status;

	if (e->snapshot_child <= 0)
		return;
	pid_t r = waitpid(e->snapshot_child, &status, block ? 0 : WNOHANG);
	if (r == 0)
		return;
	if (r == e->snapshot_child && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0) {
		atomic_fetch_add(&e->snapshots, 1);
		snapshot_prune(e->data_dir, SNAPSHOTS_KEPT);
		log_at(LOG_INFO, "snapshot written",
		       LOG_NUM("seq", e->snapshot_child_seq));
	} else {
		log_at(LOG_WARN, "snapshot failed",
		       LOG_NUM("seq", e->snapshot_child_seq),
		       LOG_NUM("status", status));
	}
	e->snapshot_child = 0;
}

/* Fork a child that writes the state as of now.  Copy-on-write gives the
 * child a consistent image without stopping the sequencer; the child only
 * writes files with memory allocated before the fork. */
static void snapshot_start(struct engine *e)
{
	/* With a store its commits replace the snapshots. */
	if (e->snapshot_child > 0 || e->history)
		return;
	if (!e->snapshot_writer) {
		e->snapshot_writer = malloc(sizeof(*e->snapshot_writer));
		if (!e->snapshot_writer)
			return;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_at(LOG_WARN, "snapshot fork failed",
		       LOG_NUM("errno", errno));
		return;
	}
	if (pid == 0) {
		struct snapshot_writer *w = e->snapshot_writer;
		/* Die with the parent, and let go of its descriptors: the
		 * journal's lock and the listening socket must not outlive
		 * it in this child (both calls are async-signal-safe). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close_range(3, ~0u, 0);
		int rc = snapshot_begin(w, e->data_dir, e->last_seq,
					e->applied_timestamp);
		if (rc == 0)
			rc = state_snapshot_write(e->state, snapshot_sink, w);
		if (rc == 0)
			rc = snapshot_commit(w);
		else
			snapshot_abort(w);
		_exit(rc == 0 ? 0 : 1);
	}
	e->snapshot_child = pid;
	e->snapshot_child_seq = e->last_seq;
	e->events_since_snapshot = 0;
}

/* ---- the sequencer -------------------------------------------------- */

static void record_sync_latency(struct engine *e, u64 us)
{
	for (unsigned i = 0; i < 12; i++) {
		if (sync_bounds_us[i] == 0 || us <= sync_bounds_us[i]) {
			atomic_fetch_add_explicit(&e->sync_buckets[i], 1,
						  memory_order_relaxed);
			break;
		}
	}
	atomic_fetch_add_explicit(&e->sync_sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&e->sync_count, 1, memory_order_relaxed);
}

static void finish(struct engine_request *list, int status)
{
	while (list) {
		struct engine_request *next = list->next;
		if (status < 0)
			list->status = status;
		list->done(list);
		list = next;
	}
}

/* Take up to GROUP_EVENTS_MAX events' worth of requests off the queue;
 * wait up to IDLE_WAKE_MS when it is empty.  Returns NULL when idle. */
/* The journal bytes a request becomes (header and payload). */
static u64 record_bytes(const struct engine_request *r)
{
	return JOURNAL_HEADER_BYTES + (r->op == ENGINE_COMMAND
					       ? (u64)r->payload_bytes
					       : (u64)r->count * 128u);
}

static struct engine_request *take_group(struct engine *e, bool *stop)
{
	struct engine_request *group = NULL;

	pthread_mutex_lock(&e->queue_lock);
	if (!e->head && !e->stopping) {
		struct timespec until = idle_deadline();
		pthread_cond_timedwait(&e->queue_cond, &e->queue_lock, &until);
	}
	if (e->head) {
		/* Bounded in events and in bytes: commands carry few events
		 * but up to a megabyte each, and a group must fit the
		 * journal's write buffer whole. */
		struct engine_request *last = e->head;
		u32 events = last->count;
		u64 bytes = record_bytes(last);
		while (last->next &&
		       events + last->next->count <= GROUP_EVENTS_MAX &&
		       bytes + record_bytes(last->next) <= GROUP_BYTES_MAX) {
			last = last->next;
			events += last->count;
			bytes += record_bytes(last);
		}
		group = e->head;
		e->head = last->next;
		if (!e->head)
			e->tail = NULL;
		last->next = NULL;
	}
	*stop = e->stopping && !e->head && !group;
	pthread_mutex_unlock(&e->queue_lock);
	return group;
}

/* Refuse every change from now on (the journal, or the store, failed);
 * what is queued is answered -EIO.  The caller has logged why. */
static void refuse_changes(struct engine *e)
{
	pthread_mutex_lock(&e->queue_lock);
	e->failed = true;
	struct engine_request *rest = e->head;
	e->head = e->tail = NULL;
	pthread_mutex_unlock(&e->queue_lock);
	finish(rest, -EIO);
}

static void fail_engine(struct engine *e, int err)
{
	log_at(LOG_ERROR,
	       "journal write failed: refusing every change until "
	       "restart",
	       LOG_NUM("errno", -err));
	refuse_changes(e);
}

static void fail_cluster(struct engine *e, int err)
{
	log_at(LOG_ERROR,
	       "cluster append failed: refusing every change until "
	       "restart",
	       LOG_STR("reason", cluster_error(e->cluster)),
	       LOG_NUM("errno", -err));
	pthread_mutex_lock(&e->queue_lock);
	e->cluster_failed = true;
	pthread_mutex_unlock(&e->queue_lock);
	refuse_changes(e);
}

static u16 journal_type_of(const struct engine_request *r)
{
	switch (r->op) {
	case ENGINE_CREATE_ACCOUNTS: return JOURNAL_CREATE_ACCOUNTS;
	case ENGINE_CREATE_TRANSFERS: return JOURNAL_CREATE_TRANSFERS;
	default: return JOURNAL_COMMAND;
	}
}

static u32 payload_bytes_of(const struct engine_request *r)
{
	return r->op == ENGINE_COMMAND ? r->payload_bytes : r->count * 128u;
}

/* Hand a durable group to the applier; waits while the pipeline is full,
 * which is the back-pressure that bounds memory and reply latency. */
static void push_durable(struct engine *e, const struct group *g)
{
	pthread_mutex_lock(&e->pipe_lock);
	while (e->pipe_count == PIPELINE_GROUPS)
		pthread_cond_wait(&e->pipe_space, &e->pipe_lock);
	e->pipe[(e->pipe_head + e->pipe_count) % PIPELINE_GROUPS] = *g;
	e->pipe_count++;
	/* INVARIANT (conventions.md): the pipeline holds at most its bound. */
	TPW_ASSERT(e->pipe_count <= PIPELINE_GROUPS);
	pthread_cond_signal(&e->pipe_ready);
	pthread_mutex_unlock(&e->pipe_lock);
}

/* ---- tracing (engine/trace.h, docs/operations.md "Tracing") ---------- */

/* A group with a sampled request gets a span of its own, a child of the
 * first such request's span: the group is shared, so every sampled
 * request's commit span links to it. */
static void trace_group_begin(struct group *g, struct engine_request *list)
{
	struct engine_request *r = list;
	while (r && !(r->trace.flags & TRACE_FLAG_SAMPLED))
		r = r->next;
	if (!r)
		return;
	g->trace.taken_ns = trace_now_ns();
	g->trace.parent = r->trace;
	g->trace.ctx = r->trace;
	trace_new_span_id(g->trace.ctx.span_id);
	for (r = list; r; r = r->next)
		g->trace.bytes += record_bytes(r);
}

/* The spans of a group and of its sampled requests, once applied. */
static void trace_group_end(const struct engine *e, const struct group *g,
			    u64 apply_ns)
{
	u64 applied_ns = trace_now_ns();
	struct trace_span s;

	trace_span_child(&s, &g->trace.parent, "engine.group",
			 g->trace.taken_ns, g->trace.durable_ns);
	s.ctx = g->trace.ctx;
	trace_span_num(&s, "tpwallet.group.records", (int64_t)g->records);
	trace_span_num(&s, "tpwallet.group.events", (int64_t)g->events);
	trace_span_num(&s, "tpwallet.group.bytes", (int64_t)g->trace.bytes);
	trace_span_end(&s);
	trace_span_child(&s, &g->trace.ctx, "engine.fdatasync",
			 g->trace.sync_ns, g->trace.synced_ns);
	trace_span_end(&s);
	if (e->cluster) {
		/* PostgreSQL's commit of the group ran beside the fdatasync;
		 * the group was durable when both were done. */
		trace_span_child(&s, &g->trace.ctx, "engine.cluster_append",
				 g->trace.sync_ns, g->trace.durable_ns);
		trace_span_num(&s, "tpwallet.group.bytes",
			       (int64_t)g->trace.bytes);
		trace_span_end(&s);
	}
	for (const struct engine_request *r = g->requests; r; r = r->next) {
		if (!(r->trace.flags & TRACE_FLAG_SAMPLED))
			continue;
		trace_span_child(&s, &r->trace, "engine.queue",
				 r->trace_queued_ns, g->trace.taken_ns);
		trace_span_end(&s);
		trace_span_child(&s, &r->trace, "engine.commit",
				 g->trace.taken_ns, g->trace.durable_ns);
		trace_span_num(&s, "tpwallet.seq", (int64_t)r->seq);
		trace_span_link(&s, &g->trace.ctx);
		trace_span_end(&s);
		trace_span_child(&s, &r->trace, "engine.apply", apply_ns,
				 applied_ns);
		trace_span_end(&s);
	}
}

/* Stage 1 (sequencer thread): stamp, journal and sync one group. */
static void commit_group(struct engine *e, struct engine_request *list)
{
	struct group g = {.requests = list};
	u64 now = now_ns(e);
	int ret = 0;

	if (trace_enabled())
		trace_group_begin(&g, list);

	/* Expire pending transfers by log time: a pulse record, so replay
	 * expires them at the same point.  The applier publishes the next
	 * deadline; one pulse per deadline is enough. */
	u64 expiry = atomic_load(&e->next_expiry);
	if (expiry != 0 && expiry <= now && expiry > e->last_pulse_deadline) {
		g.pulse_ts =
			now > e->last_timestamp ? now : e->last_timestamp + 1;
		ret = journal_append(e->journal, JOURNAL_PULSE, g.pulse_ts,
				     NULL, 0, &g.pulse_seq);
		if (ret < 0)
			goto not_written;
		e->last_timestamp = g.pulse_ts;
		e->last_pulse_deadline = expiry;
		g.pulse = true;
		g.records++;
	}
	for (struct engine_request *r = list; r; r = r->next) {
		/* Event i of n is stamped ts - n + 1 + i: all after the
		 * previous batch's last timestamp. */
		u64 ts = e->last_timestamp + (r->count ? r->count : 1);
		if (now > ts)
			ts = now;
		if (ts >= TIMESTAMP_LIMIT) {
			/* The ledger refuses such a batch at apply time,
			 * which would stop replay for good: refuse it here,
			 * before it is written. */
			ret = -ERANGE;
			goto not_written;
		}
		ret = journal_append(e->journal, journal_type_of(r), ts,
				     r->events, payload_bytes_of(r), &r->seq);
		if (ret < 0)
			goto not_written;
		r->timestamp = ts;
		e->last_timestamp = ts;
		g.events += r->count;
		g.weight += r->op == ENGINE_COMMAND
				    ? r->payload_bytes / 128u + 1
				    : r->count;
		g.records++;
	}
	if (g.records == 0)
		return;

	struct timespec a, b;
	if (g.trace.taken_ns)
		g.trace.sync_ns = trace_now_ns();
	clock_gettime(CLOCK_MONOTONIC, &a);
	/* Cluster mode: PostgreSQL commits the group while the local copy
	 * is synced; replies wait for both. */
	int cret =
		e->cluster ? cluster_append_start(e->cluster, e->journal) : 0;
	bool sent = e->cluster && cret == 0;
	ret = journal_sync(e->journal);
	if (g.trace.taken_ns)
		g.trace.synced_ns = trace_now_ns();
	if (sent)
		cret = cluster_append_finish(e->cluster);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (ret < 0)
		goto failed;
	if (cret < 0)
		goto cluster_failed;
	record_sync_latency(e, (u64)((b.tv_sec - a.tv_sec) * 1000000 +
				     (b.tv_nsec - a.tv_nsec) / 1000));
	if (g.trace.taken_ns)
		g.trace.durable_ns = trace_now_ns();
	atomic_store(&e->journal_bytes, journal_size_bytes(e->journal));
	atomic_store(&e->durable_seq, journal_next_seq(e->journal) - 1);
	push_durable(e, &g);
	return;

not_written:
	/* Nothing of this group reached the file; the records appended to
	 * the buffer so far would be, by the next sync: poison instead. */
	fail_engine(e, ret);
	finish(list, -ECANCELED);
	return;
failed:
	/* write(2) may have put some or all of the group in the file, and
	 * a restart replays whatever is there: the outcome is unknown. */
	fail_engine(e, ret);
	finish(list, -EIO);
	return;
cluster_failed:
	/* Durable here, but the table refused it (another writer holds
	 * the lease) or its outcome stayed unknown: stop rather than
	 * diverge.  A restart pushes the group if the lease is still ours,
	 * and refuses to start if another writer went on. */
	fail_cluster(e, cret);
	finish(list, -EIO);
}

/* The follower's rows (cluster_follow): durable here; to the applier. */
static int follow_group(void *ctx, const void *bytes, size_t len, u64 first,
			u64 last)
{
	struct engine *e = ctx;
	struct group g = {.rows_len = len};
	size_t off = 0;
	(void)first;
	while (off < len) {
		struct journal_record r;
		long n = journal_decode((const u8 *)bytes + off, len - off, &r);
		if (n <= 0)
			return -EBADMSG;
		/* The writer stamped them strictly increasing; a follower
		 * that becomes the writer goes on after the last. */
		if (r.timestamp > e->last_timestamp)
			e->last_timestamp = r.timestamp;
		g.records++;
		if (r.type == JOURNAL_COMMAND) {
			g.weight += r.payload_bytes / 128u + 1;
		} else {
			g.events += r.payload_bytes / 128u;
			g.weight += r.payload_bytes / 128u;
		}
		off += (size_t)n;
	}
	g.rows = aligned_alloc(64, (len + 63) / 64 * 64);
	if (!g.rows)
		return -ENOMEM;
	memcpy(g.rows, bytes, len);
	atomic_store(&e->journal_bytes, journal_size_bytes(e->journal));
	atomic_store(&e->durable_seq, last);
	push_durable(e, &g);
	return 0;
}

static bool is_stopping(struct engine *e)
{
	pthread_mutex_lock(&e->queue_lock);
	bool stopping = e->stopping;
	pthread_mutex_unlock(&e->queue_lock);
	return stopping;
}

/* A follower until it takes the lease (or the engine closes): the
 * table's rows, pulled, synced and applied. */
static void follow(struct engine *e)
{
	const struct timespec pause = {.tv_sec = 1};
	while (!is_stopping(e)) {
		int ret =
			cluster_follow(e->cluster, e->journal, follow_group, e);
		if (ret == 1) {
			pthread_mutex_lock(&e->queue_lock);
			e->follower = false;
			pthread_mutex_unlock(&e->queue_lock);
			log_at(LOG_WARN, "cluster: this node is the writer now",
			       LOG_NUM("last_seq",
				       journal_next_seq(e->journal) - 1));
			if (e->became_writer)
				e->became_writer(e->became_writer_ctx);
			return;
		}
		if (ret < 0) {
			log_at(LOG_ERROR, "cluster: following the table failed",
			       LOG_STR("reason", cluster_error(e->cluster)),
			       LOG_NUM("errno", -ret));
			/* PostgreSQL unreachable: try again.  A bad row, or
			 * records in the local journal the applier never got
			 * (the journal or memory failed halfway): stop. */
			if (ret == -EBADMSG ||
			    journal_next_seq(e->journal) - 1 !=
				    atomic_load(&e->durable_seq)) {
				log_at(LOG_ERROR,
				       "cluster: this follower stops following "
				       "until a restart");
				refuse_changes(e);
				return;
			}
			nanosleep(&pause, NULL);
		}
	}
}

static void *sequencer_main(void *arg)
{
	struct engine *e = arg;
	bool stop = false;

	if (e->follower)
		follow(e);
	while (!stop) {
		struct engine_request *list = take_group(e, &stop);
		if (e->failed) {
			finish(list, e->cluster_failed ? -ENOLINK : -ECANCELED);
			continue;
		}
		bool idle = !list;
		commit_group(e, list);
		if (idle && e->cluster && !e->failed) {
			/* Keep the lease while there is nothing to append. */
			int ret = cluster_tick(e->cluster);
			if (ret < 0)
				fail_cluster(e, ret);
		}
	}
	/* Tell the applier that nothing more comes. */
	pthread_mutex_lock(&e->pipe_lock);
	e->pipe_closed = true;
	pthread_cond_signal(&e->pipe_ready);
	pthread_mutex_unlock(&e->pipe_lock);
	return NULL;
}

/* What a request is, for the log: a batch type, or the command's name
 * from the registry (core/command.h). */
static const char *record_name(const struct engine_request *r)
{
	struct command_view c;

	switch (r->op) {
	case ENGINE_CREATE_ACCOUNTS: return "create_accounts";
	case ENGINE_CREATE_TRANSFERS: return "create_transfers";
	default:
		return command_decode(r->events, r->payload_bytes, &c) == 0
			       ? c.def->name
			       : "command";
	}
}

/* Stage 2 (applier thread): apply durable groups in journal order under
 * the write lock, then reply.  Applying group k overlaps the sync of
 * group k + 1, so the engine runs at the speed of the slower stage, not
 * of their sum; and what readers see is always durable. */
/* Does a request change the client-policy state? */
static bool is_pstate_command(const struct engine_request *r)
{
	struct command_view c;

	return r->op == ENGINE_COMMAND &&
	       command_decode(r->events, r->payload_bytes, &c) == 0 &&
	       (c.def->parts & COMMAND_PSTATE);
}

/* A follower's row (struct group.rows): the same apply as the writer's
 * groups and the replay, record by record. */
static void apply_rows(struct engine *e, struct group *g, bool *pstate_changed,
		       bool *command)
{
	size_t off = 0;
	while (off < g->rows_len) {
		struct journal_record r;
		long n = journal_decode(g->rows + off, g->rows_len - off, &r);
		/* INVARIANT (conventions.md): as for the writer's groups;
		 * the rows were decoded and checked before the sync. */
		TPW_ASSERT(n > 0 && r.seq == e->last_seq + 1);
		TPW_ASSERT(r.timestamp > e->applied_timestamp);
		int ret = state_apply(e->state, r.type, r.timestamp, r.payload,
				      r.payload_bytes, e->replay_results);
		if (ret < 0) {
			pthread_rwlock_unlock(&e->state_lock);
			log_at(LOG_ERROR, "apply failed after commit",
			       LOG_NUM("seq", r.seq), LOG_NUM("errno", -ret));
			abort();
		}
		struct command_view c;
		if (r.type == JOURNAL_COMMAND) {
			*command = true;
			*pstate_changed =
				*pstate_changed ||
				(command_decode(r.payload, r.payload_bytes,
						&c) == 0 &&
				 (c.def->parts & COMMAND_PSTATE));
		}
		e->last_seq = r.seq;
		e->applied_timestamp = r.timestamp;
		off += (size_t)n;
	}
}

static void apply_group(struct engine *e, struct group *g)
{
	bool pstate_changed = false, command = false;
	u64 apply_ns = g->trace.taken_ns ? trace_now_ns() : 0;

	pthread_rwlock_wrlock(&e->state_lock);
	if (g->rows)
		apply_rows(e, g, &pstate_changed, &command);
	if (g->pulse) {
		/* INVARIANT (conventions.md): seq is the previous + 1 and
		 * timestamps strictly increase, record after record. */
		TPW_ASSERT(g->pulse_seq == e->last_seq + 1);
		TPW_ASSERT(g->pulse_ts > e->applied_timestamp);
		(void)state_apply(e->state, STATE_PULSE, g->pulse_ts, NULL, 0,
				  NULL); /* cannot fail */
		e->last_seq = g->pulse_seq;
		e->applied_timestamp = g->pulse_ts;
	}
	for (struct engine_request *r = g->requests; r; r = r->next) {
		/* INVARIANT (conventions.md): as for the pulse above. */
		TPW_ASSERT(r->seq == e->last_seq + 1);
		TPW_ASSERT(r->timestamp > e->applied_timestamp);
		r->status =
			state_apply(e->state, journal_type_of(r), r->timestamp,
				    r->events, payload_bytes_of(r), r->results);
		if (r->status < 0) {
			/* The record is durable but the state could not
			 * take it: the process cannot go on consistently. */
			pthread_rwlock_unlock(&e->state_lock);
			log_at(LOG_ERROR, "apply failed after commit",
			       LOG_NUM("seq", r->seq),
			       LOG_STR("record", record_name(r)),
			       LOG_NUM("errno", -r->status));
			abort();
		}
		e->last_seq = r->seq;
		e->applied_timestamp = r->timestamp;
		pstate_changed = pstate_changed || is_pstate_command(r);
		command = command || r->op == ENGINE_COMMAND;
	}
	atomic_store(&e->applied_seq, e->last_seq);
	atomic_store(&e->next_expiry, state_next_expiry(e->state));
	/* The records are durable and applied, so their replies stand; a
	 * store that fails (it logged why) stops further changes. */
	bool store_failed =
		e->history &&
		(history_failed(e->history) ||
		 history_applied(e->history, e->state, e->last_seq,
				 e->applied_timestamp, command) < 0);
	pthread_rwlock_unlock(&e->state_lock);
	if (store_failed)
		refuse_changes(e);
	if (e->history)
		history_wait(e->history);
	if (pstate_changed && e->pstate_changed)
		e->pstate_changed(e->pstate_changed_ctx);

	atomic_fetch_add(&e->batches, 1);
	atomic_fetch_add(&e->records, g->records);
	atomic_fetch_add(&e->events, g->events);
	e->events_since_snapshot += g->weight;
	if (apply_ns)
		trace_group_end(e, g, apply_ns);
	free(g->rows);
	finish(g->requests, 0);
}

static void *applier_main(void *arg)
{
	struct engine *e = arg;

	for (;;) {
		struct group g;
		pthread_mutex_lock(&e->pipe_lock);
		while (e->pipe_count == 0 && !e->pipe_closed) {
			struct timespec until = idle_deadline();
			pthread_cond_timedwait(&e->pipe_ready, &e->pipe_lock,
					       &until);
			if (e->pipe_count == 0)
				break; /* idle wake: reap the snapshot child */
		}
		bool have = e->pipe_count > 0;
		if (have) {
			g = e->pipe[e->pipe_head];
			e->pipe_head = (e->pipe_head + 1) % PIPELINE_GROUPS;
			e->pipe_count--;
			pthread_cond_signal(&e->pipe_space);
		}
		bool closed = e->pipe_closed && !have;
		pthread_mutex_unlock(&e->pipe_lock);

		if (have)
			apply_group(e, &g);
		snapshot_reap(e, false);
		if (e->events_since_snapshot >= e->snapshot_every)
			snapshot_start(e);
		if (closed)
			break;
		/* With no traffic, wake the sequencer when a pending
		 * transfer's deadline has passed, so it journals a pulse. */
		u64 expiry = atomic_load(&e->next_expiry);
		if (!have && expiry != 0 && expiry <= now_ns(e)) {
			pthread_mutex_lock(&e->queue_lock);
			pthread_cond_signal(&e->queue_cond);
			pthread_mutex_unlock(&e->queue_lock);
		}
	}
	return NULL;
}

/* ---- public --------------------------------------------------------- */

static void set_hash_key(void)
{
	u64 key;
	randombytes_buf(&key, sizeof(key));
	ledger_set_hash_key(key);
}

int engine_open(struct engine **out, const struct engine_options *o,
		const char **err)
{
	const char *msg = NULL;
	struct engine *e;
	int ret;

	*out = NULL;
	if (err)
		*err = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	static pthread_once_t key_once = PTHREAD_ONCE_INIT;
	pthread_once(&key_once, set_hash_key);
	/* Writers first: a steady stream of GETs must not hold the applier
	 * (and so every reply) back. */
	pthread_rwlockattr_t rwa;
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(
		&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->state_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&e->queue_lock, NULL);
	pthread_cond_init(&e->queue_cond, &ca);
	pthread_mutex_init(&e->pipe_lock, NULL);
	pthread_cond_init(&e->pipe_ready, &ca);
	pthread_cond_init(&e->pipe_space, &ca);
	pthread_condattr_destroy(&ca);
	if (snprintf(e->data_dir, sizeof(e->data_dir), "%s", o->data_dir) >=
	    (int)sizeof(e->data_dir)) {
		msg = "data directory path too long";
		ret = -ENAMETOOLONG;
		goto cleanup;
	}
	e->clock = o->clock;
	e->pstate_changed = o->pstate_changed;
	e->pstate_changed_ctx = o->pstate_changed_ctx;
	e->became_writer = o->became_writer;
	e->became_writer_ctx = o->became_writer_ctx;
	if (!e->clock.now_ns)
		e->clock = (struct state_clock){.now_ns = realtime_ns};
	e->snapshot_every = o->snapshot_every_records
				    ? o->snapshot_every_records
				    : SNAPSHOT_EVERY_DEFAULT;
	if (o->cluster) {
		ret = cluster_open(&e->cluster, o->cluster, &msg);
		if (ret < 0)
			goto cleanup;
		e->follower = !cluster_is_writer(e->cluster);
		log_at(LOG_INFO, "cluster role",
		       LOG_STR("role", e->follower ? "follower" : "writer"));
	}
	ret = recover(e, o, false, &msg);
	if (ret < 0)
		goto cleanup;
	e->applied_timestamp = e->last_timestamp;
	atomic_store(&e->durable_seq, e->last_seq);
	atomic_store(&e->applied_seq, e->last_seq);
	atomic_store(&e->next_expiry, state_next_expiry(e->state));
	ret = pthread_create(&e->applier, NULL, applier_main, e);
	if (ret != 0) {
		msg = "cannot start the applier thread";
		ret = -ret;
		goto cleanup;
	}
	e->applier_started = true;
	ret = pthread_create(&e->sequencer, NULL, sequencer_main, e);
	if (ret != 0) {
		msg = "cannot start the sequencer thread";
		ret = -ret;
		goto cleanup;
	}
	e->sequencer_started = true;
	*out = e;
	return 0;

cleanup:
	if (err)
		*err = msg;
	engine_close(e);
	return ret;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->queue_lock);
	e->stopping = true;
	pthread_cond_signal(&e->queue_cond);
	pthread_mutex_unlock(&e->queue_lock);
	if (e->sequencer_started) {
		pthread_join(e->sequencer, NULL); /* closes the pipe */
	} else {
		pthread_mutex_lock(&e->pipe_lock);
		e->pipe_closed = true;
		pthread_cond_signal(&e->pipe_ready);
		pthread_mutex_unlock(&e->pipe_lock);
	}
	if (e->applier_started)
		pthread_join(e->applier, NULL);
	history_close(e->history);
	snapshot_reap(e, true);
	if (e->journal)
		journal_close(e->journal);
	cluster_close(e->cluster);
	state_free(e->state);
	free(e->snapshot_writer);
	pthread_rwlock_destroy(&e->state_lock);
	pthread_mutex_destroy(&e->queue_lock);
	pthread_cond_destroy(&e->queue_cond);
	pthread_mutex_destroy(&e->pipe_lock);
	pthread_cond_destroy(&e->pipe_ready);
	pthread_cond_destroy(&e->pipe_space);
	free(e);
}

/* A command must be one state_apply takes: a malformed record would be
 * durable before it failed, and stop every later replay. */
static bool command_ok(const struct engine_request *r)
{
	u32 events;

	return r->payload_bytes <=
		       JOURNAL_RECORD_BYTES_MAX - JOURNAL_HEADER_BYTES &&
	       state_check(STATE_COMMAND, r->events, r->payload_bytes,
			   &events) == 0 &&
	       events == r->count;
}

int engine_submit(struct engine *e, struct engine_request *req)
{
	if (!req->events || !req->results || !req->done)
		return -EINVAL;
	if (req->op == ENGINE_COMMAND) {
		if (!command_ok(req))
			return -EINVAL;
	} else if (req->count == 0 || req->count > BATCH_EVENTS_MAX ||
		   (req->op != ENGINE_CREATE_ACCOUNTS &&
		    req->op != ENGINE_CREATE_TRANSFERS)) {
		return -EINVAL;
	}
	req->next = NULL;
	req->status = 0;
	if (req->trace.flags & TRACE_FLAG_SAMPLED)
		req->trace_queued_ns = trace_now_ns();
	pthread_mutex_lock(&e->queue_lock);
	if (e->stopping || e->failed || e->follower) {
		int ret = e->follower	      ? -EREMOTE
			  : !e->failed	      ? -ESHUTDOWN
			  : e->cluster_failed ? -ENOLINK
					      : -ECANCELED;
		pthread_mutex_unlock(&e->queue_lock);
		return ret;
	}
	/* The sequencer waits only on an empty queue, and a queue that is
	 * not empty had its signal when it stopped being so: one wake per
	 * group, given after unlocking so the woken thread does not block
	 * on the mutex this one still holds. */
	bool was_empty = e->head == NULL;
	if (e->tail)
		e->tail->next = req;
	else
		e->head = req;
	e->tail = req;
	pthread_mutex_unlock(&e->queue_lock);
	if (was_empty)
		pthread_cond_signal(&e->queue_cond);
	return 0;
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void wake_waiter(struct engine_request *req)
{
	struct waiter *w = req->ctx;
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int engine_execute(struct engine *e, struct engine_request *req)
{
	struct waiter w = {.done = false};
	int ret;

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	req->done = wake_waiter;
	/* The request lives only until this function returns, and so does
	 * its pointer to w: we wait for done before returning. */
	// cppcheck-suppress autoVariables
	req->ctx = &w;
	ret = engine_submit(e, req);
	if (ret == 0) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		ret = req->status;
	}
	req->ctx = NULL;
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	return ret;
}

const struct ledger *engine_read_begin(struct engine *e)
{
	pthread_rwlock_rdlock(&e->state_lock);
	return state_ledger(e->state);
}

const struct auth *engine_auth(struct engine *e)
{
	return state_auth(e->state);
}

const struct pstate *engine_pstate(struct engine *e)
{
	return state_pstate(e->state);
}

const struct vault *engine_vault(struct engine *e)
{
	return state_vault(e->state);
}

void engine_read_end(struct engine *e)
{
	pthread_rwlock_unlock(&e->state_lock);
}

/* Memory first; what memory no longer holds, the store holds (it is
 * written before anything is evicted). */
/* A read of the store for a sampled request (trace_current): its span,
 * begun at start_ns, with the keys asked for and the rows it gave. */
static void store_read_span(const char *name, u64 start_ns, u32 keys, int rows)
{
	const struct trace_context *tc = trace_current();
	struct trace_span s;

	if (!tc)
		return;
	trace_span_child(&s, tc, name, start_ns, trace_now_ns());
	trace_span_num(&s, "tpwallet.store.keys", keys);
	trace_span_num(&s, "tpwallet.store.rows", rows < 0 ? 0 : rows);
	s.error = rows < 0;
	trace_span_end(&s);
}

int engine_lookup_transfers(struct engine *e, const u128 *ids, u32 n,
			    struct transfer *out, u8 *status, bool *found)
{
	u128 miss[64];
	u32 at[64], k = 0;
	struct ledger_cold_item it[64];
	struct store *st = e->history ? history_store(e->history) : NULL;

	const struct ledger *l = engine_read_begin(e);
	for (u32 i = 0; i < n; i++) {
		found[i] = ledger_lookup_transfer(l, ids[i], &out[i]) == 0;
		status[i] = found[i] ? (u8)ledger_pending_status(l, ids[i])
				     : PENDING_NONE;
	}
	engine_read_end(e);
	if (!st)
		return 0;
	/* What memory no longer holds, in batched reads of the store. */
	for (u32 i = 0; i <= n; i++) {
		if (i < n && !found[i]) {
			miss[k] = ids[i];
			at[k++] = i;
		}
		if (k == 0 || (k < 64 && i < n))
			continue;
		u64 t0 = trace_current() ? trace_now_ns() : 0;
		int gr = store_get_transfers(st, miss, k, it);
		int rows = 0;
		for (u32 j = 0; gr == 0 && j < k; j++)
			rows += it[j].kind == LEDGER_COLD_TRANSFER;
		store_read_span("store.get", t0, k, gr ? -1 : rows);
		if (gr != 0)
			return -EIO;
		for (u32 j = 0; j < k; j++) {
			if (it[j].kind != LEDGER_COLD_TRANSFER)
				continue;
			out[at[j]] = it[j].t;
			status[at[j]] = it[j].status;
			found[at[j]] = true;
		}
		k = 0;
	}
	return 0;
}

int engine_lookup_transfer(struct engine *e, u128 id, struct transfer *out,
			   enum pending_status *status)
{
	u8 st;
	bool found;
	int r = engine_lookup_transfers(e, &id, 1, out, &st, &found);

	*status = (enum pending_status)st;
	return r ? r : found ? 0 : -ENOENT;
}

/* The pending statuses of transfers a store query returned: final, or
 * (still pending) the one memory holds; one batched lookup. */
static int cold_statuses(struct engine *e, const struct transfer *t, u32 n,
			 u8 *statuses)
{
	u128 *ids = calloc((size_t)n + 1, sizeof(*ids));
	struct transfer *got = malloc((size_t)n * sizeof(*got) + 1);
	bool *found = calloc((size_t)n + 1, sizeof(*found));
	int ret = -ENOMEM;

	if (ids && got && found) {
		for (u32 i = 0; i < n; i++)
			ids[i] = t[i].id;
		ret = engine_lookup_transfers(e, ids, n, got, statuses, found);
	}
	for (u32 i = 0; ret == 0 && i < n; i++)
		if (!(t[i].flags & TRANSFER_PENDING) || !found[i])
			statuses[i] = PENDING_NONE;
	free(ids);
	free(got);
	free(found);
	return ret;
}

/*
 * A query over both tiers: memory answers timestamps from
 * ledger_hot_since on (read under the lock, with their statuses), the
 * store the older ones (everything below that point was stored before it
 * was evicted).  In ascending order the older part comes first.
 */
static int query_tiers(struct engine *e, const struct account_filter *f,
		       bool balances, void *out, u8 *statuses, u32 out_max)
{
	size_t rec = balances ? sizeof(struct account_balance)
			      : sizeof(struct transfer);
	struct account_filter hot = *f;
	u32 max = f->limit < out_max ? f->limit : out_max;
	bool rev = f->flags & ACCOUNT_FILTER_REVERSED;
	u8 *hot_st = NULL;
	void *hot_out = NULL;
	int nh = 0, nc = 0;

	if (!ledger_filter_valid(f))
		return -EINVAL;
	if (max > QUERY_LIMIT_MAX)
		max = QUERY_LIMIT_MAX;
	hot_out = malloc((size_t)max * rec + 1);
	hot_st = calloc((size_t)max + 1, 1);
	if (!hot_out || !hot_st) {
		free(hot_out);
		free(hot_st);
		return -ENOMEM;
	}
	const struct ledger *l = engine_read_begin(e);
	u64 since = ledger_hot_since(l);
	if (hot.timestamp_min < since)
		hot.timestamp_min = since;
	if (!(f->timestamp_max && f->timestamp_max < hot.timestamp_min)) {
		nh = balances ? ledger_get_account_balances(l, &hot, hot_out,
							    max)
			      : ledger_get_account_transfers(l, &hot, hot_out,
							     max);
		for (int i = 0; !balances && i < nh; i++)
			hot_st[i] = (u8)ledger_pending_status(
				l, ((struct transfer *)hot_out)[i].id);
	}
	engine_read_end(e);

	/* Descending: memory's newest first, then the store's. */
	u32 k = 0;
	if (rev) {
		k = (u32)nh;
		memcpy(out, hot_out, (size_t)k * rec);
		if (statuses)
			memcpy(statuses, hot_st, k);
	}
	struct store *st = history_store(e->history);
	if (since && st && k < max) {
		struct account_filter cold = *f;
		cold.limit = max - k;
		u64 t0 = trace_current() ? trace_now_ns() : 0;
		nc = balances ? store_account_balances(
					st, &cold, since,
					(struct account_balance *)out + k,
					max - k)
			      : store_account_transfers(
					st, &cold, since,
					(struct transfer *)out + k, max - k);
		store_read_span(balances ? "store.scan_balances"
					 : "store.scan_transfers",
				t0, max - k, nc);
		if (nc < 0) {
			free(hot_out);
			free(hot_st);
			return nc == -EINVAL ? -EINVAL : -EIO;
		}
		if (statuses && cold_statuses(e, (struct transfer *)out + k,
					      (u32)nc, statuses + k) != 0) {
			free(hot_out);
			free(hot_st);
			return -EIO;
		}
		k += (u32)nc;
	}
	if (!rev) {
		u32 take = (u32)nh < max - k ? (u32)nh : max - k;
		memcpy((u8 *)out + (size_t)k * rec, hot_out,
		       (size_t)take * rec);
		if (statuses)
			memcpy(statuses + k, hot_st, take);
		k += take;
	}
	free(hot_out);
	free(hot_st);
	return (int)k;
}

int engine_account_transfers(struct engine *e, const struct account_filter *f,
			     struct transfer *out, u8 *statuses, u32 out_max)
{
	if (e->history)
		return query_tiers(e, f, false, out, statuses, out_max);
	const struct ledger *l = engine_read_begin(e);
	int n = ledger_get_account_transfers(l, f, out, out_max);

	for (int i = 0; statuses && i < n; i++)
		statuses[i] = (u8)ledger_pending_status(l, out[i].id);
	engine_read_end(e);
	return n;
}

int engine_account_balances(struct engine *e, const struct account_filter *f,
			    struct account_balance *out, u32 out_max)
{
	if (e->history)
		return query_tiers(e, f, true, out, NULL, out_max);
	int n = ledger_get_account_balances(engine_read_begin(e), f, out,
					    out_max);

	engine_read_end(e);
	return n;
}

u64 engine_digest_seq(struct engine *e, u8 out[32])
{
	pthread_rwlock_wrlock(&e->state_lock);
	if (e->history)
		history_digest(e->history, e->state, out);
	else
		state_digest(e->state, out);
	u64 seq = e->last_seq;
	pthread_rwlock_unlock(&e->state_lock);
	return seq;
}

void engine_digest(struct engine *e, u8 out[32])
{
	(void)engine_digest_seq(e, out);
}

u64 engine_applied_seq(struct engine *e)
{
	return atomic_load(&e->applied_seq);
}

bool engine_is_follower(struct engine *e)
{
	pthread_mutex_lock(&e->queue_lock);
	bool f = e->follower;
	pthread_mutex_unlock(&e->queue_lock);
	return f;
}

void engine_writer_address(struct engine *e, char *buf, size_t n)
{
	if (e->cluster)
		cluster_writer_address(e->cluster, buf, n);
	else if (n)
		buf[0] = '\0';
}

bool engine_history_stats(struct engine *e, struct history_stats *out)
{
	if (!e->history)
		return false;
	history_stats(e->history, out);
	return true;
}

u64 engine_now_ns(struct engine *e)
{
	return now_ns(e);
}

bool engine_healthy(struct engine *e)
{
	pthread_mutex_lock(&e->queue_lock);
	bool ok = !e->failed && !e->stopping;
	pthread_mutex_unlock(&e->queue_lock);
	return ok;
}

const char *engine_failure(struct engine *e)
{
	pthread_mutex_lock(&e->queue_lock);
	bool cluster = e->cluster_failed;
	pthread_mutex_unlock(&e->queue_lock);
	return cluster ? "the cluster's journal table refused or lost a "
			 "group: every change is refused until a restart"
		       : "the journal failed: every change is refused until "
			 "a restart";
}

bool engine_cluster_stats(struct engine *e, struct cluster_stats *s)
{
	if (!e->cluster)
		return false;
	cluster_stats(e->cluster, s);
	return true;
}

void engine_stats(struct engine *e, struct engine_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->batches = atomic_load(&e->batches);
	s->events = atomic_load(&e->events);
	s->records = atomic_load(&e->records);
	s->journal_bytes = atomic_load(&e->journal_bytes);
	s->snapshots = atomic_load(&e->snapshots);
	for (unsigned i = 0; i < 12; i++)
		s->sync_buckets[i] = atomic_load(&e->sync_buckets[i]);
	s->sync_sum_us = atomic_load(&e->sync_sum_us);
	s->sync_count = atomic_load(&e->sync_count);
	s->recovery_records = e->recovery_records;
	s->recovery_ms = e->recovery_ms;
	pthread_rwlock_rdlock(&e->state_lock);
	s->last_seq = e->last_seq;
	pthread_rwlock_unlock(&e->state_lock);
}

u64 engine_recovered_from(struct engine *e)
{
	return e->recovered_from;
}

u64 engine_durable_seq(struct engine *e)
{
	return atomic_load(&e->durable_seq);
}
