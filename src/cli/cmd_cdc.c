/*
 * cmd_cdc.c - `tpwallet cdc`: change data capture beside the server
 * (docs/cdc.md).
 *
 * Reads DATA's journal from the outside (log/journal_reader: no lock,
 * nothing written under DATA), replays it through the state machine
 * (api/cdcevent) and publishes every committed change as JSON events to
 * RabbitMQ or NATS JetStream (net/cdcsink), in journal order, in batches
 * of whole records.  Only once the broker confirmed a whole batch is the
 * seq of its last record written to the state file (atomic replace,
 * fsync): after any crash, of this process, of the server or of the
 * broker, publishing resumes after that seq, so every event goes out at
 * least once and a consumer drops duplicates by event id.
 *
 * Nothing uncommitted is published: the journal's writer writes a group
 * of records and fdatasyncs it before it writes the next, so a record
 * followed by a later group is durable; before a batch goes, the segment
 * holding its last record is fdatasynced from here (a no-op once the
 * writer's own sync is done), so the last group is durable too.  A
 * record that is whole and valid on disk is kept by the server's
 * recovery (only a torn tail is cut, and the reader never returns one).
 *
 * At start the state machine is rebuilt up to the state file's seq from
 * the newest snapshot when it is at or below it (else from the journal's
 * start; NEEDSWORK: an older snapshot at or below it would do):
 * the cost of a start is that of the server's own recovery.  Status goes
 * to stderr and, with --metrics-listen, to a Prometheus /metrics page.
 */
#include "api/cdcevent.h"
#include "cli/cli.h"
#include "core/ledger.h"
#include "core/state.h"
#include "core/strerror.h"
#include "log/datadir.h"
#include "log/fsfile.h"
#include "log/journal_reader.h"
#include "log/snapshot.h"
#include "net/cdcsink.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define PROG "tpwallet cdc"
/* Defaults and bounds of the options (docs/cli.md). */
#define CDC_BATCH_DEFAULT    1000u
#define CDC_BATCH_MAX	     100000u
#define POLL_MS_DEFAULT	     20u
#define POLL_MS_MAX	     10000u
#define TIMEOUT_MS_DEFAULT   5000u
#define BACKOFF_MS_FIRST     100u
#define BACKOFF_MS_MAX	     5000u
#define STATE_FILE_BYTES_MAX 4096u
#define PASSWORD_BYTES_MAX   512u
/* The writer first: on a shared machine, cdc yields the CPU to the
 * server and catches up when the load eases (docs/cdc.md). */
#define CDC_NICE_DEFAULT 10u

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* What /metrics shows; written by the loop, read by MHD's thread. */
struct status {
	pthread_mutex_t lock;
	const char *sink; /* "amqp" or "nats" */
	u64 end_seq;	  /* the journal's last record seen */
	u64 confirmed_seq;
	u64 pending_ts_ns; /* the oldest unconfirmed record read, or 0 */
	bool up;
	u64 events_total, batches_total, failures_total, connects_total;
};

/* One batch: whole records' events, their bytes in one arena. */
struct bmsg {
	size_t type_off, id_off, body_off, body_bytes;
};
struct batch {
	struct bmsg *m;
	u32 n, cap;
	char *arena;
	size_t used, size;
	u64 first_seq, last_seq, first_ts_ns, last_segment;
	bool synced;
};

struct cdc {
	const char *data;
	const char *state_path;
	struct cdc_sink_url url;
	char url_text[512];
	char password[PASSWORD_BYTES_MAX];
	bool has_password;
	u32 batch_events, poll_ms, timeout_ms, nice;
	char origin[CDC_ORIGIN_BYTES_MAX];
	struct cdc_encoder *enc;
	struct journal_reader *rd, *tail;
	struct cdc_sink *sink;
	struct batch b;
	struct status st;
	u64 confirmed_seq;
	char last_err[CDC_SINK_ERR_BYTES];
};

static void usage(FILE *f)
{
	fputs("usage: tpwallet cdc --data DATA --sink URL --state FILE\n"
	      "                    [--password-file FILE] "
	      "[--metrics-listen HOST:PORT]\n"
	      "                    [--batch-events N] [--poll-ms N] "
	      "[--timeout-ms N] [--nice N]\n"
	      "  Publish every committed change of DATA's journal as JSON "
	      "events,\n"
	      "  at least once, in journal order, resuming after a crash "
	      "(docs/cdc.md).\n"
	      "  URL: amqp://[USER@]HOST:PORT[/VHOST]?exchange=X[&queue=Q]\n"
	      "       nats://[USER@]HOST:PORT?stream=S&subject=P\n"
	      "  The password: --password-file FILE (mode 0600) or "
	      "TPWALLET_CDC_PASSWORD.\n"
	      "\n"
	      "Example:\n"
	      "  tpwallet cdc --data data --state cdc.state --metrics-listen "
	      "127.0.0.1:9464 \\\n"
	      "    --sink "
	      "'amqp://127.0.0.1:5672/?exchange=tpwallet&queue=ledger'\n",
	      f);
}

static u64 now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000u + (u64)ts.tv_nsec / 1000000u;
}

static u64 wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

/* Sleep ms, or less when a signal asks to stop. */
static void nap(u32 ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L};
	if (!stopping)
		nanosleep(&ts, NULL);
}

static int parse_u32(const char *opt, const char *s, u32 lo, u32 hi, u32 *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, PROG ": %s: expected %u..%u\n", opt, lo, hi);
		return -1;
	}
	*out = (u32)v;
	return 0;
}

/* ---- the state file -------------------------------------------------- */

/* "tpwallet-cdc 1\norigin <origin>\nseq <n>\nsink <url>\n": the seq of
 * the last record whose every event the broker confirmed. */
static int state_load(struct cdc *c)
{
	char *text = NULL, origin[CDC_ORIGIN_BYTES_MAX];
	size_t len;
	int ret = fsfile_read(c->state_path, STATE_FILE_BYTES_MAX, &text, &len);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: %s\n", c->state_path,
			fsfile_strerror(ret));
		return -1;
	}
	ret = -1;
	const char *o = NULL, *q = NULL;
	char *end = NULL;
	if (!strncmp(text, "tpwallet-cdc 1\norigin ", 22)) {
		o = text + 22;
		q = strstr(o, "\nseq ");
	}
	unsigned long long seq = 0;
	if (q) {
		errno = 0;
		seq = strtoull(q + 5, &end, 10);
	}
	if (!q || errno || end == q + 5 || *end != '\n' ||
	    (size_t)(q - o) >= sizeof(origin)) {
		fprintf(stderr, PROG ": %s: not a state file of tpwallet cdc\n",
			c->state_path);
		goto out;
	}
	memcpy(origin, o, (size_t)(q - o));
	origin[q - o] = '\0';
	if (strcmp(origin, c->origin) != 0) {
		fprintf(stderr,
			PROG ": %s is the state of the journal %s, not of "
			     "%s (%s)\n",
			c->state_path, origin, c->data, c->origin);
		goto out;
	}
	c->confirmed_seq = seq;
	ret = 0;
out:
	free(text);
	return ret;
}

static int state_save(struct cdc *c, u64 seq)
{
	char dir[PATH_MAX], text[1024];
	const char *slash = strrchr(c->state_path, '/');
	const char *name = slash ? slash + 1 : c->state_path;

	if (slash)
		snprintf(dir, sizeof(dir), "%.*s",
			 (int)(slash == c->state_path ? 1
						      : slash - c->state_path),
			 c->state_path);
	else
		snprintf(dir, sizeof(dir), ".");
	int n = snprintf(text, sizeof(text),
			 "tpwallet-cdc 1\norigin %s\nseq %llu\nsink %s\n",
			 c->origin, (unsigned long long)seq, c->url_text);
	return fsfile_replace(dir, name, text, (size_t)n);
}

/* ---- metrics --------------------------------------------------------- */

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct status *s = cls;
	char body[4096];
	unsigned code = MHD_HTTP_OK;
	int n;

	(void)version;
	(void)data;
	(void)data_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		n = snprintf(body, sizeof(body), "not found: GET /metrics\n");
	} else {
		pthread_mutex_lock(&s->lock);
		u64 lag = s->end_seq > s->confirmed_seq
				  ? s->end_seq - s->confirmed_seq
				  : 0;
		u64 now = wall_ns();
		double lag_s = lag && s->pending_ts_ns && now > s->pending_ts_ns
				       ? (double)(now - s->pending_ts_ns) / 1e9
				       : 0.0;
		n = snprintf(
			body, sizeof(body),
			"# HELP tpwallet_cdc_journal_end_seq The seq of the "
			"journal's last record seen.\n"
			"# TYPE tpwallet_cdc_journal_end_seq gauge\n"
			"tpwallet_cdc_journal_end_seq{sink=\"%s\"} %llu\n"
			"# HELP tpwallet_cdc_confirmed_seq The seq of the last "
			"record whose events the broker confirmed.\n"
			"# TYPE tpwallet_cdc_confirmed_seq gauge\n"
			"tpwallet_cdc_confirmed_seq{sink=\"%s\"} %llu\n"
			"# HELP tpwallet_cdc_lag_entries Journal records not "
			"yet confirmed by the broker.\n"
			"# TYPE tpwallet_cdc_lag_entries gauge\n"
			"tpwallet_cdc_lag_entries{sink=\"%s\"} %llu\n"
			"# HELP tpwallet_cdc_lag_seconds Age of the oldest "
			"record not yet confirmed (0 when caught up).\n"
			"# TYPE tpwallet_cdc_lag_seconds gauge\n"
			"tpwallet_cdc_lag_seconds{sink=\"%s\"} %.3f\n"
			"# HELP tpwallet_cdc_broker_up 1 while connected to "
			"the broker.\n"
			"# TYPE tpwallet_cdc_broker_up gauge\n"
			"tpwallet_cdc_broker_up{sink=\"%s\"} %d\n"
			"# HELP tpwallet_cdc_events_published_total Events "
			"the broker confirmed.\n"
			"# TYPE tpwallet_cdc_events_published_total counter\n"
			"tpwallet_cdc_events_published_total{sink=\"%s\"} "
			"%llu\n"
			"# HELP tpwallet_cdc_batches_confirmed_total Batches "
			"the broker confirmed.\n"
			"# TYPE tpwallet_cdc_batches_confirmed_total counter\n"
			"tpwallet_cdc_batches_confirmed_total{sink=\"%s\"} "
			"%llu\n"
			"# HELP tpwallet_cdc_failures_total Failed connects "
			"and publishes (each retried).\n"
			"# TYPE tpwallet_cdc_failures_total counter\n"
			"tpwallet_cdc_failures_total{sink=\"%s\"} %llu\n"
			"# HELP tpwallet_cdc_connects_total Connections made "
			"to the broker.\n"
			"# TYPE tpwallet_cdc_connects_total counter\n"
			"tpwallet_cdc_connects_total{sink=\"%s\"} %llu\n",
			s->sink, (unsigned long long)s->end_seq, s->sink,
			(unsigned long long)s->confirmed_seq, s->sink,
			(unsigned long long)lag, s->sink, lag_s, s->sink,
			s->up ? 1 : 0, s->sink,
			(unsigned long long)s->events_total, s->sink,
			(unsigned long long)s->batches_total, s->sink,
			(unsigned long long)s->failures_total, s->sink,
			(unsigned long long)s->connects_total);
		pthread_mutex_unlock(&s->lock);
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(
		(size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4");
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static struct MHD_Daemon *metrics_start(struct status *s, const char *listen)
{
	char host[256], service[8];
	unsigned short port;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV},
			*res = NULL;
	struct MHD_Daemon *d = NULL;

	if (parse_listen(listen, host, sizeof(host), &port) < 0) {
		fprintf(stderr,
			PROG ": --metrics-listen: expected HOST:PORT\n");
		return NULL;
	}
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (getaddrinfo(host, service, &hints, &res) != 0 || !res) {
		fprintf(stderr,
			PROG ": --metrics-listen: %s is not an IP address\n",
			host);
		return NULL;
	}
	d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			(res->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_metrics, s, MHD_OPTION_SOCK_ADDR,
		res->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
		MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_END);
	freeaddrinfo(res);
	if (!d)
		fprintf(stderr, PROG ": cannot listen on %s\n", listen);
	return d;
}

/* ---- the batch ------------------------------------------------------- */

static size_t put(struct batch *b, const char *s, size_t len)
{
	if (b->used + len + 1 > b->size) {
		size_t size = b->size ? b->size : 1u << 20;
		while (b->used + len + 1 > size)
			size *= 2;
		char *g = realloc(b->arena, size);
		if (!g)
			return SIZE_MAX;
		b->arena = g;
		b->size = size;
	}
	size_t at = b->used;
	memcpy(b->arena + at, s, len);
	b->arena[at + len] = '\0';
	b->used += len + 1;
	return at;
}

static int add_event(void *ctx, const struct cdc_event *ev)
{
	struct batch *b = ctx;

	if (b->n == b->cap) {
		u32 cap = b->cap ? b->cap * 2 : 1024;
		struct bmsg *g = realloc(b->m, sizeof(*g) * cap);
		if (!g)
			return -ENOMEM;
		b->m = g;
		b->cap = cap;
	}
	struct bmsg *m = &b->m[b->n];
	m->type_off = put(b, ev->type, strlen(ev->type));
	m->id_off = put(b, ev->id, strlen(ev->id));
	m->body_off = put(b, ev->json, ev->json_bytes);
	m->body_bytes = ev->json_bytes;
	if (m->type_off == SIZE_MAX || m->id_off == SIZE_MAX ||
	    m->body_off == SIZE_MAX)
		return -ENOMEM;
	b->n++;
	return 0;
}

static void batch_clear(struct batch *b)
{
	b->n = 0;
	b->used = 0;
	b->first_seq = b->last_seq = b->first_ts_ns = 0;
	b->synced = false;
}

/* Read whole records until the batch holds batch_events events or the
 * journal's end.  0, or -1 (said on stderr: the journal is damaged). */
static int fill(struct cdc *c)
{
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	int ret = 0;

	while (c->b.n < c->batch_events &&
	       (ret = journal_reader_next(c->rd, &r, &raw, &raw_bytes)) == 1) {
		ret = cdc_encoder_record(c->enc, &r, raw, raw_bytes, add_event,
					 &c->b);
		if (ret < 0) {
			fprintf(stderr, PROG ": record %llu: %s\n",
				(unsigned long long)r.seq, tpw_strerror(-ret));
			return -1;
		}
		if (!c->b.first_seq) {
			c->b.first_seq = r.seq;
			c->b.first_ts_ns = r.timestamp;
		}
		c->b.last_seq = r.seq;
		u64 off;
		journal_reader_position(c->rd, &c->b.last_segment, &off);
	}
	if (ret < 0) {
		fprintf(stderr, PROG ": %s\n", journal_reader_error(c->rd));
		return -1;
	}
	return 0;
}

/* The segment of the batch's last record, fdatasynced: see the top. */
static int sync_batch(struct cdc *c)
{
	char path[PATH_MAX];

	if (c->b.synced)
		return 0;
	snprintf(path, sizeof(path), "%s/journal/" JOURNAL_SEGMENT_NAME_FMT,
		 c->data, (unsigned long long)c->b.last_segment);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	/* Gone: archived, and the archive moves only sealed segments. */
	if (fd < 0 && errno == ENOENT) {
		c->b.synced = true;
		return 0;
	}
	if (fd < 0 || fdatasync(fd) != 0) {
		fprintf(stderr, PROG ": fdatasync %s: %s\n", path,
			tpw_strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	c->b.synced = true;
	return 0;
}

/* The journal's end, for the lag: a second reader that only skips. */
static void follow_tail(struct cdc *c)
{
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	u64 end = 0;

	while (journal_reader_next(c->tail, &r, &raw, &raw_bytes) == 1)
		end = r.seq;
	pthread_mutex_lock(&c->st.lock);
	if (end > c->st.end_seq)
		c->st.end_seq = end;
	if (c->b.last_seq > c->st.end_seq)
		c->st.end_seq = c->b.last_seq;
	c->st.pending_ts_ns = c->b.n || c->b.last_seq ? c->b.first_ts_ns : 0;
	pthread_mutex_unlock(&c->st.lock);
}

static void say_failure(struct cdc *c, const char *what, const char *err)
{
	/* Once per change of words: a broker down for an hour is one line
	 * per distinct error, not one per retry. */
	if (strcmp(c->last_err, err) != 0)
		fprintf(stderr, PROG ": %s %s: %s (retrying)\n", what,
			c->url_text, err);
	snprintf(c->last_err, sizeof(c->last_err), "%s", err);
	pthread_mutex_lock(&c->st.lock);
	c->st.failures_total++;
	c->st.up = false;
	pthread_mutex_unlock(&c->st.lock);
}

static int publish(struct cdc *c)
{
	char err[CDC_SINK_ERR_BYTES] = "";
	struct cdc_msg *m = malloc(sizeof(*m) * (c->b.n ? c->b.n : 1));

	if (!m)
		return -ENOMEM;
	for (u32 i = 0; i < c->b.n; i++)
		m[i] = (struct cdc_msg){
			.type = c->b.arena + c->b.m[i].type_off,
			.id = c->b.arena + c->b.m[i].id_off,
			.body = c->b.arena + c->b.m[i].body_off,
			.body_bytes = c->b.m[i].body_bytes,
		};
	int ret = c->b.n ? cdc_sink_publish(c->sink, m, c->b.n, c->timeout_ms,
					    err, sizeof(err))
			 : 0;
	free(m);
	if (ret < 0)
		say_failure(c, "publish to", err);
	return ret;
}

/* The loop: 0 when stopped by a signal, else an exit status. */
static int run(struct cdc *c)
{
	u64 next_try = 0;
	u32 backoff = BACKOFF_MS_FIRST;
	char err[CDC_SINK_ERR_BYTES];

	while (!stopping) {
		if (c->b.last_seq == 0 && fill(c) < 0)
			return EXIT_DATA;
		follow_tail(c);
		if (c->b.last_seq == 0) {
			nap(c->poll_ms);
			continue;
		}
		if (!c->sink && c->b.n > 0) {
			u64 now = now_ms();
			if (now < next_try) {
				nap((u32)(next_try - now));
				continue;
			}
			int ret = cdc_sink_open(
				&c->sink, &c->url,
				c->has_password ? c->password : NULL,
				c->timeout_ms, err, sizeof(err));
			if (ret < 0) {
				say_failure(c, "connect to", err);
				next_try = now_ms() + backoff;
				backoff = backoff * 2 > BACKOFF_MS_MAX
						  ? BACKOFF_MS_MAX
						  : backoff * 2;
				continue;
			}
			fprintf(stderr, PROG ": connected to %s\n",
				c->url_text);
			c->last_err[0] = '\0';
			pthread_mutex_lock(&c->st.lock);
			c->st.up = true;
			c->st.connects_total++;
			pthread_mutex_unlock(&c->st.lock);
		}
		if (sync_batch(c) < 0)
			return EXIT_DATA;
		if (publish(c) < 0) {
			cdc_sink_close(c->sink);
			c->sink = NULL;
			next_try = now_ms() + backoff;
			continue;
		}
		backoff = BACKOFF_MS_FIRST;
		int ret = state_save(c, c->b.last_seq);
		if (ret < 0) {
			fprintf(stderr, PROG ": cannot write %s: %s\n",
				c->state_path, tpw_strerror(-ret));
			return EXIT_SOFTWARE;
		}
		pthread_mutex_lock(&c->st.lock);
		c->st.confirmed_seq = c->confirmed_seq = c->b.last_seq;
		c->st.events_total += c->b.n;
		c->st.batches_total++;
		pthread_mutex_unlock(&c->st.lock);
		batch_clear(&c->b);
	}
	return 0;
}

/* ---- start ----------------------------------------------------------- */

static void warn_snapshot(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, PROG ": %s\n", msg);
}

/* The state machine at confirmed_seq: the newest snapshot at or below
 * it, then the journal replayed without publishing. */
static int rebuild(struct cdc *c)
{
	u8 *snap = NULL;
	size_t len = 0;
	u64 snap_seq = 0, snap_ts, key;
	struct state *st = NULL;

	randombytes_buf(&key, sizeof(key));
	ledger_set_hash_key(key);
	int ret = snapshot_load_newest(c->data, &snap, &len, &snap_seq,
				       &snap_ts, warn_snapshot, NULL);
	if (ret == 1 && snap_seq <= c->confirmed_seq)
		st = state_snapshot_read(snap, len);
	else
		snap_seq = 0;
	free(snap);
	if (!st) {
		snap_seq = 0;
		st = state_new(&(struct ledger_options){0});
	}
	if (!st || cdc_encoder_new(&c->enc, st, c->origin) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		return EXIT_SOFTWARE;
	}
	ret = journal_reader_open(&c->rd, c->data, snap_seq + 1);
	if (ret == 0)
		ret = journal_reader_open(&c->tail, c->data, snap_seq + 1);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s/journal: %s\n", c->data,
			tpw_strerror(-ret));
		return EXIT_DATA;
	}
	u64 seq = snap_seq;
	while (seq < c->confirmed_seq && !stopping) {
		struct journal_record r;
		const u8 *raw;
		size_t raw_bytes;
		ret = journal_reader_next(c->rd, &r, &raw, &raw_bytes);
		if (ret == 0) {
			fprintf(stderr,
				PROG ": %s says seq %llu was published but "
				     "the journal ends at %llu\n",
				c->state_path,
				(unsigned long long)c->confirmed_seq,
				(unsigned long long)seq);
			return EXIT_DATA;
		}
		if (ret < 0 ||
		    (ret = cdc_encoder_record(c->enc, &r, raw, raw_bytes, NULL,
					      NULL)) < 0) {
			fprintf(stderr, PROG ": replay: %s\n",
				journal_reader_error(c->rd)[0]
					? journal_reader_error(c->rd)
					: tpw_strerror(-ret));
			return EXIT_DATA;
		}
		seq = r.seq;
	}
	fprintf(stderr,
		PROG ": %s at seq %llu (snapshot %llu), publishing to %s\n",
		c->data, (unsigned long long)seq, (unsigned long long)snap_seq,
		c->url_text);
	return 0;
}

static int read_origin(struct cdc *c)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", c->data, DATADIR_ORIGIN);
	int ret = fsfile_read(path, CDC_ORIGIN_BYTES_MAX, &text, &len);
	if (ret < 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, fsfile_strerror(ret));
		return -1;
	}
	text[strcspn(text, "\r\n")] = '\0';
	snprintf(c->origin, sizeof(c->origin), "%s", text);
	free(text);
	return c->origin[0] ? 0 : -1;
}

static int read_password(struct cdc *c, const char *file)
{
	size_t len = 0;

	if (file) {
		struct client cl;
		client_init(&cl, PROG);
		if (client_read_secret_file(&cl, "--password-file", file, true,
					    c->password, sizeof(c->password),
					    &len) < 0)
			return -1;
		c->has_password = true;
		return 0;
	}
	const char *env = getenv("TPWALLET_CDC_PASSWORD");
	if (env && env[0]) {
		if (strlen(env) >= sizeof(c->password)) {
			fprintf(stderr,
				PROG ": TPWALLET_CDC_PASSWORD is too long\n");
			return -1;
		}
		snprintf(c->password, sizeof(c->password), "%s", env);
		c->has_password = true;
	}
	return 0;
}

int cmd_cdc(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"sink", required_argument, NULL, 's'},
		{"state", required_argument, NULL, 'S'},
		{"password-file", required_argument, NULL, 'p'},
		{"metrics-listen", required_argument, NULL, 'm'},
		{"batch-events", required_argument, NULL, 'b'},
		{"poll-ms", required_argument, NULL, 'P'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"nice", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct cdc c;
	const char *sink = NULL, *password_file = NULL, *metrics = NULL;
	struct MHD_Daemon *d = NULL;
	char err[CDC_SINK_ERR_BYTES];
	int opt, ret = EXIT_USAGE;

	memset(&c, 0, sizeof(c));
	c.batch_events = CDC_BATCH_DEFAULT;
	c.poll_ms = POLL_MS_DEFAULT;
	c.timeout_ms = TIMEOUT_MS_DEFAULT;
	c.nice = CDC_NICE_DEFAULT;
	pthread_mutex_init(&c.st.lock, NULL);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': c.data = optarg; break;
		case 's': sink = optarg; break;
		case 'S': c.state_path = optarg; break;
		case 'p': password_file = optarg; break;
		case 'm': metrics = optarg; break;
		case 'b':
			if (parse_u32("--batch-events", optarg, 1,
				      CDC_BATCH_MAX, &c.batch_events) < 0)
				goto cleanup;
			break;
		case 'P':
			if (parse_u32("--poll-ms", optarg, 1, POLL_MS_MAX,
				      &c.poll_ms) < 0)
				goto cleanup;
			break;
		case 't':
			if (parse_u32("--timeout-ms", optarg, 100, 600000,
				      &c.timeout_ms) < 0)
				goto cleanup;
			break;
		case 'n':
			if (parse_u32("--nice", optarg, 0, 19, &c.nice) < 0)
				goto cleanup;
			break;
		case 'h':
			usage(stdout);
			ret = 0;
			goto cleanup;
		default: usage(stderr); goto cleanup;
		}
	}
	if (optind != argc || !c.data || !sink || !c.state_path) {
		usage(stderr);
		goto cleanup;
	}
	if (cdc_sink_url_parse(sink, &c.url, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": --sink: %s\n", err);
		goto cleanup;
	}
	cdc_sink_url_format(&c.url, c.url_text, sizeof(c.url_text));
	if (read_password(&c, password_file) < 0)
		goto cleanup;
	c.st.sink = c.url.kind == CDC_SINK_AMQP ? "amqp" : "nats";
	/* Before any thread starts (libnats's, MHD's): they inherit it. */
	if (c.nice && setpriority(PRIO_PROCESS, 0, (int)c.nice) != 0)
		fprintf(stderr, PROG ": --nice %u: %s\n", c.nice,
			tpw_strerror(errno));
	/* A stop asked during the rebuild ends it (exit 0, nothing
	 * published), as one asked later does. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = EXIT_DATA;
	if (read_origin(&c) < 0 || state_load(&c) < 0)
		goto cleanup;
	c.st.confirmed_seq = c.confirmed_seq;
	if ((ret = rebuild(&c)) != 0)
		goto cleanup;
	ret = EXIT_SOFTWARE;
	if (metrics && !(d = metrics_start(&c.st, metrics)))
		goto cleanup;
	ret = run(&c);
	if (ret == 0)
		fprintf(stderr, PROG ": stopping at seq %llu\n",
			(unsigned long long)c.confirmed_seq);
cleanup:
	if (d)
		MHD_stop_daemon(d);
	cdc_sink_close(c.sink);
	if (c.rd)
		journal_reader_close(c.rd);
	if (c.tail)
		journal_reader_close(c.tail);
	cdc_encoder_free(c.enc);
	free(c.b.m);
	free(c.b.arena);
	sodium_memzero(c.password, sizeof(c.password));
	return ret;
}
