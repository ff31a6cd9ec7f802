/*
 * cluster.c - the writer's side of cluster mode: the lease, the catch-up
 * at start, and each group appended to PostgreSQL beside its fdatasync
 * (see cluster.h).
 *
 * The catch-up works on whole journal records (log/journal.h), decoded
 * from the table's groups or read from the local segments: both copies
 * hold the same bytes, record for record, so a comparison is a memcmp.
 */
#include "engine/cluster.h"
#include "core/clock.h"
#include "engine/logger.h"
#include "log/journal_reader.h"
#include "log/pgjournal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

/* Local records go to the table in groups of at most this many bytes
 * (a writer's group is at most 32 MiB: engine.c's GROUP_BYTES_MAX). */
#define PUSH_BYTES_MAX ((size_t)8 << 20)
#define ERR_BYTES      256u
/* A follower reads the table at least this often without a notification
 * (the bounded poll behind LISTEN/NOTIFY), and checks the lease then. */
#define POLL_MS_MAX 1000u

struct cluster {
	struct pgjournal *pj;
	u32 lease_ms, poll_ms;
	char holder[128];
	char data_dir[4096]; /* cluster_catch_up's, for the follower */
	char advertise[PGJOURNAL_ADDRESS_BYTES];
	_Atomic bool writer;
	_Atomic u64 table_last;	  /* the table's last seq, as last seen */
	_Atomic u64 caught_up_ms; /* when the local end last was table_last */
	/* The writer's address (its cluster_advertise), as last read. */
	pthread_mutex_t addr_lock;
	char writer_address[PGJOURNAL_ADDRESS_BYTES];
	_Atomic u64 term;
	u64 last_renew_ms;
	u64 append_started_ms;
	u64 pending_last_seq;
	char err[ERR_BYTES];
	_Atomic u64 appended_seq, appends, append_us_sum;
};

static char open_err[ERR_BYTES];

/* Append latency is summed in microseconds (the metrics' unit). */
static u64 mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000u + (u64)ts.tv_nsec / 1000u;
}

static void set_writer_address(struct cluster *c, const char *a)
{
	pthread_mutex_lock(&c->addr_lock);
	snprintf(c->writer_address, sizeof(c->writer_address), "%s", a);
	pthread_mutex_unlock(&c->addr_lock);
}

/* Read the lease: the writer's address and term, for the replies that
 * name it.  1 when it has expired (a follower may take it). */
static int read_lease(struct cluster *c)
{
	struct pgjournal_lease l;
	int ret = pgjournal_lease(c->pj, &l);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
		return ret;
	}
	set_writer_address(c, l.address);
	atomic_store(&c->term, l.term);
	return l.expired;
}

/* Take the lease; -EBUSY while another node holds it. */
static int acquire(struct cluster *c)
{
	u64 term = 0;
	int ret = pgjournal_acquire(c->pj, c->holder, c->advertise, &term);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
		return ret;
	}
	atomic_store(&c->term, term);
	atomic_store(&c->writer, true);
	set_writer_address(c, c->advertise);
	c->last_renew_ms = mono_us() / 1000u;
	return 0;
}

int cluster_open(struct cluster **out, const struct cluster_options *o,
		 const char **err)
{
	struct pgjournal_options po = {.lease_ms = o->lease_ms,
				       .reconnect_ms = o->reconnect_ms};
	struct cluster *c = calloc(1, sizeof(*c));
	const char *perr = NULL;
	int ret = -ENOMEM;

	*out = NULL;
	*err = "out of memory";
	if (!c)
		return ret;
	pthread_mutex_init(&c->addr_lock, NULL);
	c->lease_ms = o->lease_ms ? o->lease_ms : PGJOURNAL_LEASE_MS_DEFAULT;
	c->poll_ms =
		c->lease_ms / 5u < POLL_MS_MAX ? c->lease_ms / 5u : POLL_MS_MAX;
	snprintf(c->holder, sizeof(c->holder), "%s", o->holder);
	snprintf(c->advertise, sizeof(c->advertise), "%s",
		 o->advertise ? o->advertise : "");
	ret = pgjournal_open(&c->pj, o->conninfo, &po, &perr);
	if (ret < 0) {
		snprintf(open_err, sizeof(open_err), "%s", perr);
		goto fail;
	}
	/* The lease, else a follower (another node holds it). */
	ret = acquire(c);
	if (ret == -EBUSY)
		ret = read_lease(c);
	if (ret < 0) {
		snprintf(open_err, sizeof(open_err), "%s", c->err);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	*err = open_err;
	cluster_close(c);
	return ret;
}

bool cluster_is_writer(const struct cluster *c)
{
	return atomic_load(&c->writer);
}

/* ---- catch-up ------------------------------------------------------- */

struct pull_ctx {
	struct cluster *c;
	struct journal *j;
	/* The local records, to compare: opened at the first one compared
	 * (the meeting group's first record). */
	struct journal_reader *rd;
	const char *data_dir;
	u64 local_last;
	journal_replay_fn apply; /* per record; NULL: group instead */
	cluster_group_fn group;	 /* per row, once synced */
	u64 first_new;		 /* rows ending before it were compared */
	void *apply_ctx;
	u64 pulled;
	u64 table_last, logged_ms; /* the catch-up's progress lines */
};

/* A record of the table's at or below the local end must be the local
 * record, byte for byte. */
static int compare_local(struct pull_ctx *p, const struct journal_record *r,
			 const u8 *raw, size_t raw_len)
{
	struct journal_record lr = {0};
	const u8 *lraw = NULL;
	size_t lraw_len = 0;
	int ret = 0;
	if (!p->rd)
		ret = journal_reader_open(&p->rd, p->data_dir, r->seq);
	if (ret == 0)
		ret = journal_reader_next(p->rd, &lr, &lraw, &lraw_len);
	if (ret == 1 && lr.seq == r->seq && lraw_len == raw_len &&
	    memcmp(lraw, raw, raw_len) == 0)
		return 0;
	snprintf(p->c->err, sizeof(p->c->err),
		 "the local journal and the cluster's table differ at seq "
		 "%llu: this node diverged",
		 (unsigned long long)r->seq);
	return -EBADMSG;
}

static int pull_row(void *ctx, u64 seq, u64 last_seq, u64 term,
		    const void *bytes, size_t len)
{
	struct pull_ctx *p = ctx;
	const u8 *b = bytes;
	size_t off = 0;
	u64 expect = seq;
	int ret = 0;
	(void)term;

	while (off < len) {
		struct journal_record r;
		long n = journal_decode(b + off, len - off, &r);
		if (n <= 0 || r.seq != expect) {
			snprintf(p->c->err, sizeof(p->c->err),
				 "the cluster's table holds a bad record in "
				 "group %llu",
				 (unsigned long long)seq);
			return -EBADMSG;
		}
		if (r.seq <= p->local_last) {
			ret = compare_local(p, &r, b + off, (size_t)n);
		} else {
			u64 got = 0;
			ret = journal_append(p->j, r.type, r.timestamp,
					     r.payload, r.payload_bytes, &got);
			if (ret == 0 && got != r.seq)
				ret = -EBADMSG;
			if (ret == 0 && p->apply)
				ret = p->apply(p->apply_ctx, &r);
			if (ret < 0)
				snprintf(p->c->err, sizeof(p->c->err),
					 "catching up record %llu from the "
					 "cluster's table failed (%d)",
					 (unsigned long long)r.seq, ret);
			p->pulled++;
		}
		if (ret < 0)
			return ret;
		off += (size_t)n;
		expect++;
	}
	if (expect != last_seq + 1) {
		snprintf(p->c->err, sizeof(p->c->err),
			 "group %llu of the cluster's table ends at %llu, not "
			 "%llu",
			 (unsigned long long)seq,
			 (unsigned long long)(expect - 1),
			 (unsigned long long)last_seq);
		return -EBADMSG;
	}
	ret = journal_sync(p->j);
	if (ret < 0)
		snprintf(p->c->err, sizeof(p->c->err),
			 "local journal sync failed during the catch-up");
	if (ret == 0 && p->group && last_seq >= p->first_new)
		ret = p->group(p->apply_ctx, bytes, len, seq, last_seq);
	if (ret == 0 && last_seq > atomic_load(&p->c->table_last))
		atomic_store(&p->c->table_last, last_seq);
	u64 now_ms = mono_us() / 1000u;
	if (ret == 0 && p->apply && now_ms - p->logged_ms >= 1000u) {
		/* At most one line a second. */
		p->logged_ms = now_ms;
		log_at(LOG_INFO, "cluster catch-up in progress",
		       LOG_NUM("seq", last_seq),
		       LOG_NUM("table_last_seq", p->table_last));
	}
	return ret;
}

/* Local records from_seq..to_seq (durable here, never in the table) go
 * to the table in groups of at most PUSH_BYTES_MAX. */
static int push_local(struct cluster *c, struct journal_reader *rd,
		      u64 from_seq, u64 to_seq)
{
	u8 *buf = malloc(PUSH_BYTES_MAX + JOURNAL_RECORD_BYTES_MAX);
	size_t used = 0;
	u64 first = from_seq, seq = from_seq - 1;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (seq < to_seq) {
		struct journal_record r;
		const u8 *raw = NULL;
		size_t raw_len = 0;
		ret = journal_reader_next(rd, &r, &raw, &raw_len);
		if (ret != 1 || r.seq != seq + 1) {
			snprintf(c->err, sizeof(c->err),
				 "reading local record %llu failed",
				 (unsigned long long)(seq + 1));
			ret = ret < 0 ? ret : -EBADMSG;
			break;
		}
		memcpy(buf + used, raw, raw_len);
		used += raw_len;
		seq = r.seq;
		if (used < PUSH_BYTES_MAX && seq < to_seq)
			continue;
		ret = pgjournal_append(c->pj, first, seq, atomic_load(&c->term),
				       buf, used);
		if (ret < 0) {
			snprintf(c->err, sizeof(c->err), "%s",
				 pgjournal_error(c->pj));
			break;
		}
		atomic_store(&c->appended_seq, seq);
		used = 0;
		first = seq + 1;
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

int cluster_catch_up(struct cluster *c, struct journal *j, const char *data_dir,
		     journal_replay_fn apply, void *ctx, const char **err)
{
	u64 local_last = journal_next_seq(j) - 1, table_last = 0;
	struct pull_ctx p = {.c = c,
			     .j = j,
			     .data_dir = data_dir,
			     .local_last = local_last,
			     .apply = apply,
			     .apply_ctx = ctx};
	int ret;

	*err = open_err; /* outlives c: the engine closes it on failure */
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", data_dir);
	ret = pgjournal_last_seq(c->pj, &table_last);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
		goto done;
	}
	/* The meeting point: the table's group that holds the lower of the
	 * two ends is compared with the local records, and what the table
	 * has beyond the local end is pulled. */
	u64 meet = local_last < table_last ? local_last : table_last;
	p.table_last = table_last;
	p.logged_ms = mono_us() / 1000u;
	if (table_last > local_last)
		log_at(LOG_INFO, "cluster catch-up",
		       LOG_NUM("local_last_seq", local_last),
		       LOG_NUM("table_last_seq", table_last));
	if (table_last > 0) {
		ret = pgjournal_read(c->pj, meet ? meet : 1, pull_row, &p);
		if (ret < 0 && ret != -EBADMSG)
			snprintf(c->err, sizeof(c->err), "%s",
				 pgjournal_error(c->pj));
		if (ret < 0)
			goto done;
	}
	if (local_last > table_last && !atomic_load(&c->writer)) {
		snprintf(c->err, sizeof(c->err),
			 "the local journal holds records %llu..%llu the "
			 "cluster's table does not, and another node holds "
			 "the lease: this node diverged (start it from an "
			 "empty data directory)",
			 (unsigned long long)table_last + 1,
			 (unsigned long long)local_last);
		ret = -EBADMSG;
		goto done;
	}
	if (local_last > table_last) {
		/* After the comparison the reader stands at table_last + 1. */
		if (!p.rd)
			ret = journal_reader_open(&p.rd, data_dir,
						  table_last + 1);
		if (ret == 0)
			ret = push_local(c, p.rd, table_last + 1, local_last);
		if (ret < 0)
			goto done;
	}
	atomic_store(&c->appended_seq, journal_next_seq(j) - 1);
	atomic_store(&c->table_last, journal_next_seq(j) - 1);
	atomic_store(&c->caught_up_ms, mono_us() / 1000u);
	if (p.pulled > 0 || local_last > table_last)
		log_at(LOG_INFO, "cluster catch-up",
		       LOG_NUM("pulled_records", p.pulled),
		       LOG_NUM("pushed_records",
			       local_last > table_last ? local_last - table_last
						       : 0),
		       LOG_NUM("last_seq", journal_next_seq(j) - 1));
done:
	journal_reader_close(p.rd);
	if (ret < 0)
		snprintf(open_err, sizeof(open_err), "%s", c->err);
	return ret;
}

/* ---- the writer's appends ------------------------------------------- */

int cluster_append_start(struct cluster *c, struct journal *j)
{
	const void *buf = NULL;
	size_t len = 0;
	u64 first = 0;
	journal_pending(j, &buf, &len, &first);
	c->pending_last_seq = journal_next_seq(j) - 1;
	c->append_started_ms = mono_us();
	int ret = pgjournal_append_start(c->pj, first, c->pending_last_seq,
					 atomic_load(&c->term), buf, len);
	if (ret < 0)
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
	return ret;
}

int cluster_append_finish(struct cluster *c)
{
	int ret = pgjournal_append_finish(c->pj);
	u64 now = mono_us();
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
		return ret;
	}
	atomic_store(&c->appended_seq, c->pending_last_seq);
	atomic_store(&c->table_last, c->pending_last_seq);
	atomic_fetch_add(&c->appends, 1);
	atomic_fetch_add(&c->append_us_sum, now - c->append_started_ms);
	c->last_renew_ms = now / 1000u;
	return 0;
}

int cluster_tick(struct cluster *c)
{
	u64 now_ms = mono_us() / 1000u;
	if (now_ms - c->last_renew_ms < c->lease_ms / 3u)
		return 0;
	int ret = pgjournal_renew(c->pj, atomic_load(&c->term));
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
		return ret;
	}
	c->last_renew_ms = now_ms;
	return 0;
}

/* ---- the follower ------------------------------------------------- */

/* Pull every row beyond j's end (j ends at a row's end: the catch-up
 * and this leave it so). */
static int pull_new(struct cluster *c, struct journal *j, cluster_group_fn fn,
		    void *ctx)
{
	u64 local_last = journal_next_seq(j) - 1;
	struct pull_ctx p = {.c = c,
			     .j = j,
			     .data_dir = c->data_dir,
			     .local_last = local_last,
			     .group = fn,
			     .first_new = local_last + 1,
			     .apply_ctx = ctx};
	int ret = pgjournal_read(c->pj, local_last + 1, pull_row, &p);
	if (ret < 0 && ret != -EBADMSG && !c->err[0])
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
	journal_reader_close(p.rd);
	return ret;
}

int cluster_follow(struct cluster *c, struct journal *j, cluster_group_fn fn,
		   void *ctx)
{
	u64 notified = 0;
	c->err[0] = '\0';
	int ret = pgjournal_wait(c->pj, c->poll_ms, &notified);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s", pgjournal_error(c->pj));
		return ret;
	}
	if (notified > atomic_load(&c->table_last))
		atomic_store(&c->table_last, notified);
	if (ret == 0) {
		/* Quiet for a poll interval: is the writer still there? */
		u64 last = 0;
		ret = pgjournal_last_seq(c->pj, &last);
		if (ret == 0 && last > atomic_load(&c->table_last))
			atomic_store(&c->table_last, last);
		if (ret == 0)
			ret = read_lease(c);
		if (ret < 0) {
			snprintf(c->err, sizeof(c->err), "%s",
				 pgjournal_error(c->pj));
			return ret;
		}
		if (ret == 1) {
			/* Expired: take it (a new term fences the old
			 * writer: it cannot append one more row), then
			 * read everything it appended before. */
			ret = acquire(c);
			if (ret == -EBUSY)
				return 0; /* another follower was first */
			if (ret < 0)
				return ret;
			log_at(LOG_WARN, "cluster: took the expired lease",
			       LOG_NUM("term", atomic_load(&c->term)));
			ret = pull_new(c, j, fn, ctx);
			if (ret == 0)
				ret = pgjournal_unlisten(c->pj);
			if (ret < 0)
				return ret;
			atomic_store(&c->appended_seq, journal_next_seq(j) - 1);
			atomic_store(&c->table_last, journal_next_seq(j) - 1);
			atomic_store(&c->caught_up_ms, mono_us() / 1000u);
			return 1;
		}
	}
	ret = pull_new(c, j, fn, ctx);
	/* What the table holds up to here: the writer committed it. */
	atomic_store(&c->appended_seq, journal_next_seq(j) - 1);
	if (ret == 0 && journal_next_seq(j) - 1 >= atomic_load(&c->table_last))
		atomic_store(&c->caught_up_ms, mono_us() / 1000u);
	return ret;
}

void cluster_writer_address(struct cluster *c, char *buf, size_t n)
{
	pthread_mutex_lock(&c->addr_lock);
	snprintf(buf, n, "%s", c->writer_address);
	pthread_mutex_unlock(&c->addr_lock);
}

void cluster_stats(const struct cluster *c, struct cluster_stats *s)
{
	s->writer = atomic_load(&c->writer);
	s->term = atomic_load(&c->term);
	s->table_last_seq = atomic_load(&c->table_last);
	s->caught_up_ms = atomic_load(&c->caught_up_ms);
	s->appended_seq = atomic_load(&c->appended_seq);
	s->appends = atomic_load(&c->appends);
	s->append_us_sum = atomic_load(&c->append_us_sum);
}

const char *cluster_error(const struct cluster *c)
{
	return c->err;
}

void cluster_close(struct cluster *c)
{
	if (!c)
		return;
	pgjournal_close(c->pj);
	pthread_mutex_destroy(&c->addr_lock);
	free(c);
}
