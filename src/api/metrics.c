/*
 * metrics.c - lock-free counters and their Prometheus text rendering (see
 * metrics.h).
 */
#include "api/metrics.h"
#include "net/http.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/clock.h"
#include "engine/trace.h"
#include "engine/acquirer.h"
#include "engine/cluster.h"
#include "engine/engine.h"
#include "log/pkcs11.h"
#include "engine/history.h"

#include <stdio.h>

#include "banned.h"

static const unsigned status_codes[STATUS_IDX_OTHER] = {
#define X(code) [STATUS_IDX_##code] = code,
	API_STATUSES(X)
#undef X
};

static const u64 latency_le_us[METRICS_LATENCY_BUCKETS] = {
	100,   250,    500,    1000,   2500,	5000,	 10000,	  25000,
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
};
static const char *const latency_le[METRICS_LATENCY_BUCKETS] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025",
	"0.005",  "0.01",    "0.025",  "0.05",	"0.1",
	"0.25",	  "0.5",     "1",      "2.5",	"5",
};

void metrics_init(struct metrics *m)
{
	/* All-zero is the initial state of every atomic here. */
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->exemplar_lock, NULL);
}

const char *metrics_route_template(enum api_route r)
{
	return r < ROUTE_COUNT ? api_routes[r].tmpl : "unmatched";
}

const char *metrics_method_name(enum api_method m)
{
	return api_method_name(m);
}

static unsigned status_index(unsigned status)
{
	for (unsigned i = 0; i < STATUS_IDX_OTHER; i++)
		if (status_codes[i] == status)
			return i;
	return STATUS_IDX_OTHER;
}

#define ADD(counter, v)                                                        \
	atomic_fetch_add_explicit(&(counter), (v), memory_order_relaxed)
#define LOAD(counter) atomic_load_explicit(&(counter), memory_order_relaxed)

static const char *const status_class_names[METRICS_STATUS_CLASSES] = {
	"2xx", "3xx", "4xx", "5xx"};

/* 1xx and anything out of range count with 5xx: the server never sends
 * them, so seeing one there is worth a look. */
static unsigned status_class(unsigned status)
{
	if (status >= 200 && status < 500)
		return status / 100 - 2;
	return 3;
}

/* The bucket of a latency; METRICS_LATENCY_BUCKETS: +Inf only. */
static unsigned latency_bucket(u64 duration_us)
{
	unsigned i = 0;
	while (i < METRICS_LATENCY_BUCKETS && duration_us > latency_le_us[i])
		i++;
	return i;
}

void metrics_observe_exemplar(struct metrics *m, enum api_route r,
			      unsigned status, u64 duration_us,
			      const char trace_id[33], const char span_id[17])
{
	struct timespec ts;

	if (r >= ROUTE_COUNT)
		r = ROUTE_unmatched;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct metrics_exemplar *x = &m->exemplars[r][status_class(status)]
						  [latency_bucket(duration_us)];
	pthread_mutex_lock(&m->exemplar_lock);
	memcpy(x->trace_id, trace_id, sizeof(x->trace_id));
	memcpy(x->span_id, span_id, sizeof(x->span_id));
	x->trace_id[32] = x->span_id[16] = '\0';
	x->duration_us = duration_us;
	x->time_ms = (u64)ts.tv_sec * 1000u + (u64)ts.tv_nsec / 1000000u;
	pthread_mutex_unlock(&m->exemplar_lock);
}

void metrics_observe_request(struct metrics *m, enum api_route r,
			     enum api_method meth, unsigned status,
			     u64 duration_us)
{
	struct metrics_latency *l;
	unsigned i;

	if (r >= ROUTE_COUNT)
		r = ROUTE_unmatched;
	if (meth >= METHOD_COUNT)
		meth = METHOD_OTHER;
	ADD(m->requests[r][meth][status_index(status)], 1);
	l = &m->latency[r][status_class(status)];
	i = latency_bucket(duration_us);
	if (i < METRICS_LATENCY_BUCKETS)
		ADD(l->buckets[i], 1);
	ADD(l->count, 1);
	ADD(l->sum_us, duration_us);
}

void metrics_observe_results(struct metrics *m, int op, const u32 *results,
			     u32 n)
{
	unsigned b = 0;

	for (u32 i = 0; i < n; i++) {
		if (op == ENGINE_CREATE_ACCOUNTS)
			ADD(m->account_results
				    [results[i] < CREATE_ACCOUNT_RESULT_COUNT
					     ? results[i]
					     : CREATE_ACCOUNT_RESULT_COUNT],
			    1);
		else
			ADD(m->transfer_results
				    [results[i] < CREATE_TRANSFER_RESULT_COUNT
					     ? results[i]
					     : CREATE_TRANSFER_RESULT_COUNT],
			    1);
	}
	while (b + 1 < METRICS_BATCH_BUCKETS && ((u64)1 << b) < n)
		b++;
	ADD(m->batch_buckets[b], 1);
	ADD(m->batch_count, 1);
	ADD(m->batch_sum, n);
}

static void put_seconds(struct wbuf *b, u64 us)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu.%06llu",
			 (unsigned long long)(us / 1000000),
			 (unsigned long long)(us % 1000000));
	wbuf_put(b, tmp, (size_t)n);
}

static void help(struct wbuf *b, const char *name, const char *type,
		 const char *text)
{
	wbuf_puts(b, "# HELP ");
	wbuf_puts(b, name);
	wbuf_putc(b, ' ');
	wbuf_puts(b, text);
	wbuf_puts(b, "\n# TYPE ");
	wbuf_puts(b, name);
	wbuf_putc(b, ' ');
	wbuf_puts(b, type);
	wbuf_putc(b, '\n');
}

static void render_results(struct wbuf *b, const char *op,
			   const atomic_ullong *counts, unsigned n,
			   const char *(*name)(unsigned))
{
	for (unsigned i = 0; i <= n; i++) {
		const char *rn = i == 0 ? "created" : i < n ? name(i) : "other";
		u64 v = LOAD(counts[i]);
		if (i == n && v == 0)
			continue;
		wbuf_puts(b, "tpwallet_results_total{op=\"");
		wbuf_puts(b, op);
		wbuf_puts(b, "\",result=\"");
		wbuf_puts(b, rn ? rn : "other");
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, v);
		wbuf_putc(b, '\n');
	}
}

static void gauge(struct wbuf *b, const char *name, const char *type,
		  const char *text, u64 v)
{
	help(b, name, type, text);
	wbuf_puts(b, name);
	wbuf_putc(b, ' ');
	wbuf_put_u64(b, v);
	wbuf_putc(b, '\n');
}

/* The store (docs/store.md), when the server keeps history in one. */
static void render_store(struct wbuf *b, struct engine *e, u64 applied_seq)
{
	struct history_stats h;

	if (!engine_history_stats(e, &h))
		return;
	gauge(b, "tpwallet_store_disk_bytes", "gauge",
	      "Bytes of the store's files (DATA/store).", h.store.disk_bytes);
	gauge(b, "tpwallet_store_memtable_bytes", "gauge",
	      "Bytes in the store's memtables (lost on a crash, replayed "
	      "from the journal).",
	      h.store.memtable_bytes);
	gauge(b, "tpwallet_store_cache_bytes", "gauge",
	      "Bytes in the store's block cache.", h.store.cache_bytes);
	gauge(b, "tpwallet_store_cache_capacity_bytes", "gauge",
	      "Capacity of the store's block cache.",
	      h.store.cache_capacity_bytes);
	gauge(b, "tpwallet_store_cache_hits_total", "counter",
	      "Blocks the store's reads found in its cache.",
	      h.store.cache_hits);
	gauge(b, "tpwallet_store_cache_misses_total", "counter",
	      "Blocks the store's reads had to read from its files.",
	      h.store.cache_misses);
	gauge(b, "tpwallet_store_pending_compaction_bytes", "gauge",
	      "Bytes the store estimates compaction still has to rewrite.",
	      h.store.pending_compaction_bytes);
	gauge(b, "tpwallet_store_l0_files", "gauge",
	      "Files in the store's level 0 (many: compaction falls behind).",
	      h.store.l0_files);
	gauge(b, "tpwallet_store_committed_seq", "gauge",
	      "The journal seq the store holds.", h.committed_seq);
	gauge(b, "tpwallet_store_flushed_seq", "gauge",
	      "The journal seq the store's files hold (what a crash keeps; "
	      "a restart replays the journal after it).",
	      h.flushed_seq);
	gauge(b, "tpwallet_store_lag_records", "gauge",
	      "Journal records applied but not yet in the store.",
	      applied_seq > h.committed_seq ? applied_seq - h.committed_seq
					    : 0);
	gauge(b, "tpwallet_store_commits_total", "counter",
	      "Commits to the store.", h.commits);
	gauge(b, "tpwallet_store_evictions_total", "counter",
	      "Times the ledger dropped what the store holds from memory.",
	      h.evictions);
	gauge(b, "tpwallet_store_writer_waits_total", "counter",
	      "Times the applier waited for the store's writer (back "
	      "pressure).",
	      h.waits);
	gauge(b, "tpwallet_store_window_transfers", "gauge",
	      "Recent transfers the ledger keeps in memory with a store.",
	      h.keep_transfers);
}

/* Cluster mode (docs/operations.md, "Cluster mode"); nothing for a
 * single node. */
static void render_cluster(struct wbuf *b, struct engine *e)
{
	struct cluster_stats cs;
	if (!engine_cluster_stats(e, &cs))
		return;
	u64 applied = engine_applied_seq(e);
	u64 lag = cs.table_last_seq > applied ? cs.table_last_seq - applied : 0;
	u64 now = tpw_monotonic_ms();
	help(b, "tpwallet_cluster_role", "gauge",
	     "This node's role in the cluster: 1 for the current one.");
	wbuf_puts(b, "tpwallet_cluster_role{role=\"writer\"} ");
	wbuf_put_u64(b, cs.writer ? 1 : 0);
	wbuf_puts(b, "\ntpwallet_cluster_role{role=\"follower\"} ");
	wbuf_put_u64(b, cs.writer ? 0 : 1);
	wbuf_putc(b, '\n');
	gauge(b, "tpwallet_cluster_term", "gauge",
	      "The writer's lease term in the cluster's table (a follower's: "
	      "as it last read it).",
	      cs.term);
	gauge(b, "tpwallet_cluster_applied_seq", "gauge",
	      "The last journal seq applied to this node's state.", applied);
	gauge(b, "tpwallet_cluster_lag_seq", "gauge",
	      "The table's last seq (as last seen) minus the applied seq.",
	      lag);
	help(b, "tpwallet_cluster_lag_seconds", "gauge",
	     "How long this node has been behind the table (0: caught up).");
	wbuf_puts(b, "tpwallet_cluster_lag_seconds ");
	put_seconds(b, lag && now > cs.caught_up_ms
			       ? (now - cs.caught_up_ms) * 1000u
			       : 0);
	wbuf_putc(b, '\n');
	gauge(b, "tpwallet_cluster_appended_seq", "gauge",
	      "Last journal seq committed to the cluster's table.",
	      cs.appended_seq);
	help(b, "tpwallet_cluster_append_duration_seconds", "summary",
	     "Group appends to the cluster's table, from send to commit.");
	wbuf_puts(b, "tpwallet_cluster_append_duration_seconds_sum ");
	put_seconds(b, cs.append_us_sum);
	wbuf_puts(b, "\ntpwallet_cluster_append_duration_seconds_count ");
	wbuf_put_u64(b, cs.appends);
	wbuf_putc(b, '\n');
}

static void render_engine(struct wbuf *b, struct engine *e)
{
	static const u64 sync_le_us[12] = ENGINE_SYNC_BUCKETS_US;
	struct engine_stats es;
	struct ledger_stats ls;
	const struct ledger *l;
	char le[32];
	u64 cum = 0;

	engine_stats(e, &es);
	l = engine_read_begin(e);
	ledger_stats(l, &ls);
	u64 glass = admin_break_glass_count(auth_admin(engine_auth(e)));
	engine_read_end(e);

	gauge(b, "tpwallet_break_glass_total", "counter",
	      "Dual-control requests carried out by their requester alone "
	      "(break-glass), in the journal.",
	      glass);

	help(b, "tpwallet_fsync_duration_seconds", "histogram",
	     "Journal fdatasync latency (one per group commit).");
	/* engine.c counts each sync in one bucket (not cumulatively);
	 * Prometheus buckets are cumulative. */
	for (unsigned i = 0; i < 12 && sync_le_us[i]; i++) {
		int n = snprintf(le, sizeof(le), "%llu.%06llu",
				 (unsigned long long)(sync_le_us[i] / 1000000),
				 (unsigned long long)(sync_le_us[i] % 1000000));
		wbuf_puts(b, "tpwallet_fsync_duration_seconds_bucket{le=\"");
		wbuf_put(b, le, (size_t)n);
		wbuf_puts(b, "\"} ");
		cum += es.sync_buckets[i];
		wbuf_put_u64(b, cum);
		wbuf_putc(b, '\n');
	}
	wbuf_puts(b, "tpwallet_fsync_duration_seconds_bucket{le=\"+Inf\"} ");
	wbuf_put_u64(b, es.sync_count);
	wbuf_puts(b, "\ntpwallet_fsync_duration_seconds_sum ");
	put_seconds(b, es.sync_sum_us);
	wbuf_puts(b, "\ntpwallet_fsync_duration_seconds_count ");
	wbuf_put_u64(b, es.sync_count);
	wbuf_putc(b, '\n');

	help(b, "tpwallet_journal_bytes", "gauge", "Bytes in the journal.");
	wbuf_puts(b, "tpwallet_journal_bytes ");
	wbuf_put_u64(b, es.journal_bytes);
	wbuf_putc(b, '\n');
	help(b, "tpwallet_accounts", "gauge", "Accounts in the ledger.");
	wbuf_puts(b, "tpwallet_accounts ");
	wbuf_put_u64(b, ls.accounts);
	wbuf_putc(b, '\n');
	help(b, "tpwallet_transfers", "gauge", "Transfers in the ledger.");
	wbuf_puts(b, "tpwallet_transfers ");
	wbuf_put_u64(b, ls.transfers);
	wbuf_putc(b, '\n');
	help(b, "tpwallet_ledger_memory_bytes", "gauge",
	     "Bytes the ledger holds in memory (records and indexes).");
	wbuf_puts(b, "tpwallet_ledger_memory_bytes ");
	wbuf_put_u64(b, ls.index_bytes + ls.record_bytes);
	wbuf_putc(b, '\n');
	render_store(b, e, es.last_seq);
	render_cluster(b, e);
}

static void latency_labels(struct wbuf *b, const char *series,
			   const char *route, const char *cls)
{
	wbuf_puts(b, "tpwallet_http_request_duration_seconds_");
	wbuf_puts(b, series);
	wbuf_puts(b, "{route=\"");
	wbuf_puts(b, route);
	wbuf_puts(b, "\",status=\"");
	wbuf_puts(b, cls);
	wbuf_putc(b, '"');
}

/* " # {trace_id=...,span_id=...} SECONDS TIMESTAMP" after a bucket's
 * value, when ex holds one (OpenMetrics exemplar syntax). */
static void put_exemplar(struct wbuf *b, const struct metrics_exemplar *ex)
{
	if (!ex || !ex->trace_id[0])
		return;
	wbuf_puts(b, " # {trace_id=\"");
	wbuf_puts(b, ex->trace_id);
	wbuf_puts(b, "\",span_id=\"");
	wbuf_puts(b, ex->span_id);
	wbuf_puts(b, "\"} ");
	put_seconds(b, ex->duration_us);
	wbuf_putc(b, ' ');
	wbuf_put_u64(b, ex->time_ms / 1000u);
	char ms[8];
	snprintf(ms, sizeof(ms), ".%03u", (unsigned)(ex->time_ms % 1000u));
	wbuf_puts(b, ms);
}

/* ex: the route and class's exemplars (METRICS_LATENCY_BUCKETS + 1), or
 * NULL for none. */
static void render_latency(struct wbuf *b, struct metrics_latency *l,
			   const char *route, const char *cls,
			   const struct metrics_exemplar *ex)
{
	u64 cum = 0, count = LOAD(l->count);

	if (!count)
		return;
	for (unsigned i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
		cum += LOAD(l->buckets[i]);
		latency_labels(b, "bucket", route, cls);
		wbuf_puts(b, ",le=\"");
		wbuf_puts(b, latency_le[i]);
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, cum);
		put_exemplar(b, ex ? &ex[i] : NULL);
		wbuf_putc(b, '\n');
	}
	/* count is read before the buckets: a concurrent observation may
	 * make +Inf lag the last bucket by one; take the max. */
	if (count < cum)
		count = cum;
	latency_labels(b, "bucket", route, cls);
	wbuf_puts(b, ",le=\"+Inf\"} ");
	wbuf_put_u64(b, count);
	put_exemplar(b, ex ? &ex[METRICS_LATENCY_BUCKETS] : NULL);
	wbuf_putc(b, '\n');
	latency_labels(b, "sum", route, cls);
	wbuf_puts(b, "} ");
	put_seconds(b, LOAD(l->sum_us));
	wbuf_putc(b, '\n');
	latency_labels(b, "count", route, cls);
	wbuf_puts(b, "} ");
	wbuf_put_u64(b, count);
	wbuf_putc(b, '\n');
}

/* One line of in (from at, without its newline), and where the next
 * starts. */
static size_t line_end(const struct wbuf *in, size_t at, size_t *next)
{
	const char *nl = memchr(in->data + at, '\n', in->len - at);
	size_t end = nl ? (size_t)(nl - in->data) : in->len;
	*next = nl ? end + 1 : end;
	return end;
}

/* Is "# TYPE <name> counter" with name ending in _total the line at? */
static bool total_counter(const char *l, size_t n, size_t *name_len)
{
	static const char type[] = "# TYPE ", counter[] = " counter";
	if (n < sizeof(type) - 1 + sizeof(counter) - 1 ||
	    memcmp(l, type, sizeof(type) - 1) != 0 ||
	    memcmp(l + n - (sizeof(counter) - 1), counter,
		   sizeof(counter) - 1) != 0)
		return false;
	size_t name = n - (sizeof(type) - 1) - (sizeof(counter) - 1);
	*name_len = name;
	return name > 6 &&
	       memcmp(l + sizeof(type) - 1 + name - 6, "_total", 6) == 0;
}

void metrics_openmetrics(const struct wbuf *in, struct wbuf *out)
{
	size_t at = 0, next, name;

	while (at < in->len) {
		size_t end = line_end(in, at, &next);
		const char *l = in->data + at;
		size_t n = end - at;
		bool help = n > 7 && memcmp(l, "# HELP ", 7) == 0;
		size_t after, tend = help ? line_end(in, next, &after) : 0;
		if (help &&
		    total_counter(in->data + next, tend - next, &name) &&
		    n > 7 + name && l[7 + name] == ' ' &&
		    memcmp(l + 7, in->data + next + 7, name) == 0) {
			/* "# HELP x_total ..." of a counter: "# HELP x ..." */
			wbuf_put(out, l, 7 + name - 6);
			wbuf_put(out, l + 7 + name, n - 7 - name);
		} else if (total_counter(l, n, &name)) {
			wbuf_put(out, l, 7 + name - 6);
			wbuf_puts(out, " counter");
		} else if (n > 15 && memcmp(l + n - 8, " untyped", 8) == 0 &&
			   memcmp(l, "# TYPE ", 7) == 0) {
			wbuf_put(out, l, n - 8);
			wbuf_puts(out, " unknown");
		} else {
			wbuf_put(out, l, n);
		}
		wbuf_putc(out, '\n');
		at = next;
	}
	wbuf_puts(out, "# EOF\n");
}

void metrics_render(struct metrics *m, struct engine *e, struct wbuf *b,
		    bool exemplars)
{
	/* A copy, so the lock is not held while rendering. */
	static _Thread_local struct metrics_exemplar
		ex[METRICS_STATUS_CLASSES][METRICS_LATENCY_BUCKETS + 1];
	help(b, "tpwallet_http_requests_total", "counter",
	     "HTTP requests by route template, method and status.");
	for (unsigned r = 0; r < ROUTE_COUNT; r++)
		for (unsigned me = 0; me < METHOD_COUNT; me++)
			for (unsigned s = 0; s < STATUS_IDX_COUNT; s++) {
				u64 v = LOAD(m->requests[r][me][s]);
				if (!v)
					continue;
				wbuf_puts(b, "tpwallet_http_requests_total{"
					     "route=\"");
				wbuf_puts(b, api_routes[r].tmpl);
				wbuf_puts(b, "\",method=\"");
				wbuf_puts(b, api_method_name(me));
				wbuf_puts(b, "\",status=\"");
				if (s == STATUS_IDX_OTHER)
					wbuf_puts(b, "other");
				else
					wbuf_put_u64(b, status_codes[s]);
				wbuf_puts(b, "\"} ");
				wbuf_put_u64(b, v);
				wbuf_putc(b, '\n');
			}

	help(b, "tpwallet_http_request_duration_seconds", "histogram",
	     "HTTP request latency by route template, from request line to "
	     "response queued.");
	for (unsigned r = 0; r < ROUTE_COUNT; r++) {
		if (exemplars) {
			pthread_mutex_lock(&m->exemplar_lock);
			memcpy(ex, m->exemplars[r], sizeof(ex));
			pthread_mutex_unlock(&m->exemplar_lock);
		}
		for (unsigned c = 0; c < METRICS_STATUS_CLASSES; c++)
			render_latency(b, &m->latency[r][c], api_routes[r].tmpl,
				       status_class_names[c],
				       exemplars ? ex[c] : NULL);
	}

	help(b, "tpwallet_results_total", "counter",
	     "Per-event results of create requests.");
	render_results(b, "create_accounts", m->account_results,
		       CREATE_ACCOUNT_RESULT_COUNT, create_account_result_name);
	render_results(b, "create_transfers", m->transfer_results,
		       CREATE_TRANSFER_RESULT_COUNT,
		       create_transfer_result_name);

	help(b, "tpwallet_batch_events", "histogram",
	     "Events per create request.");
	{
		u64 cum = 0, count = LOAD(m->batch_count);
		for (unsigned i = 0; i < METRICS_BATCH_BUCKETS; i++) {
			cum += LOAD(m->batch_buckets[i]);
			wbuf_puts(b, "tpwallet_batch_events_bucket{le=\"");
			wbuf_put_u64(b, (u64)1 << i);
			wbuf_puts(b, "\"} ");
			wbuf_put_u64(b, cum);
			wbuf_putc(b, '\n');
		}
		if (count < cum)
			count = cum;
		wbuf_puts(b, "tpwallet_batch_events_bucket{le=\"+Inf\"} ");
		wbuf_put_u64(b, count);
		wbuf_puts(b, "\ntpwallet_batch_events_sum ");
		wbuf_put_u64(b, LOAD(m->batch_sum));
		wbuf_puts(b, "\ntpwallet_batch_events_count ");
		wbuf_put_u64(b, count);
		wbuf_putc(b, '\n');
	}

	if (e)
		render_engine(b, e);

	u64 exported, dropped;
	trace_counts(&exported, &dropped);
	help(b, "tpwallet_trace_spans_exported_total", "counter",
	     "Spans the OTLP receiver accepted.");
	wbuf_puts(b, "tpwallet_trace_spans_exported_total ");
	wbuf_put_u64(b, exported);
	wbuf_putc(b, '\n');
	help(b, "tpwallet_trace_spans_dropped_total", "counter",
	     "Spans dropped: the queue was full, or the receiver refused, "
	     "failed or timed out.");
	wbuf_puts(b, "tpwallet_trace_spans_dropped_total ");
	wbuf_put_u64(b, dropped);
	wbuf_putc(b, '\n');

	unsigned long long refused[HTTP_ADDR_CLASS_COUNT];
	http_outbound_refusals(refused, NULL, 0);
	help(b, "tpwallet_outbound_refused_total", "counter",
	     "Outbound connections refused by outbound_allow, by the class "
	     "of the address (docs/operations.md, Outbound allow-list).");
	for (unsigned i = 0; i < HTTP_ADDR_CLASS_COUNT; i++) {
		wbuf_puts(b, "tpwallet_outbound_refused_total{class=\"");
		wbuf_puts(b, http_addr_class_name(i));
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, refused[i]);
		wbuf_putc(b, '\n');
	}
}

void metrics_render_hsm(struct pkcs11 *p, struct wbuf *b)
{
	struct pkcs11_stats st;
	char num[48];
	int n;

	pkcs11_stats(p, &st);
	gauge(b, "tpwallet_hsm_up", "gauge",
	      "1 when the last call to the token that holds the KEK (a "
	      "seal, an open, or the check every minute) succeeded.",
	      st.up ? 1 : 0);
	help(b, "tpwallet_hsm_operation_duration_seconds", "histogram",
	     "Calls to the token by operation (wrap: seal a key; unwrap: "
	     "open one, for each signature), failed ones included.");
	for (unsigned op = 0; op < PKCS11_OPS; op++) {
		const char *name = pkcs11_op_names[op];
		for (unsigned i = 0; i <= PKCS11_BUCKETS; i++) {
			wbuf_puts(b, "tpwallet_hsm_operation_duration_seconds"
				     "_bucket{op=\"");
			wbuf_puts(b, name);
			wbuf_puts(b, "\",le=\"");
			if (i < PKCS11_BUCKETS) {
				n = snprintf(num, sizeof(num), "%g",
					     pkcs11_bucket_bounds[i]);
				wbuf_put(b, num, (size_t)n);
			} else {
				wbuf_puts(b, "+Inf");
			}
			wbuf_puts(b, "\"} ");
			wbuf_put_u64(b, i < PKCS11_BUCKETS ? st.bucket[op][i]
							   : st.count[op]);
			wbuf_putc(b, '\n');
		}
		wbuf_puts(b,
			  "tpwallet_hsm_operation_duration_seconds_sum{op=\"");
		wbuf_puts(b, name);
		n = snprintf(num, sizeof(num), "\"} %.6f\n", st.sum_s[op]);
		wbuf_put(b, num, (size_t)n);
		wbuf_puts(
			b,
			"tpwallet_hsm_operation_duration_seconds_count{op=\"");
		wbuf_puts(b, name);
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, st.count[op]);
		wbuf_putc(b, '\n');
	}
	help(b, "tpwallet_hsm_errors_total", "counter",
	     "Calls to the token that failed, by operation: refused, timed "
	     "out (kek_pkcs11_timeout_ms), or not made while an earlier "
	     "call was stuck.");
	for (unsigned op = 0; op < PKCS11_OPS; op++) {
		wbuf_puts(b, "tpwallet_hsm_errors_total{op=\"");
		wbuf_puts(b, pkcs11_op_names[op]);
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, st.errors[op]);
		wbuf_putc(b, '\n');
	}
}

void metrics_render_acquirer(struct acquirer *a, struct wbuf *b)
{
	struct acquirer_stats st;
	char num[64];

	acquirer_stats(a, &st);
	help(b, "tpwallet_acquirer_calls_total", "counter",
	     "Calls to the acquirer by outcome (docs/acquirer.md).");
	for (unsigned i = 0; i < ACQ_OUT_COUNT; i++) {
		wbuf_puts(b, "tpwallet_acquirer_calls_total{outcome=\"");
		wbuf_puts(b, acq_outcome_name(i));
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, st.calls[i]);
		wbuf_putc(b, '\n');
	}
	help(b, "tpwallet_acquirer_call_duration_seconds", "histogram",
	     "How long one call to the acquirer took, answer or not.");
	for (unsigned i = 0; i < ACQ_LATENCY_BUCKETS; i++) {
		snprintf(num, sizeof(num), "%g", acq_latency_bounds_s[i]);
		wbuf_puts(b, "tpwallet_acquirer_call_duration_seconds_bucket"
			     "{le=\"");
		wbuf_puts(b, num);
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, st.latency_buckets[i]);
		wbuf_putc(b, '\n');
	}
	wbuf_puts(b, "tpwallet_acquirer_call_duration_seconds_bucket"
		     "{le=\"+Inf\"} ");
	wbuf_put_u64(b, st.latency_count);
	snprintf(num, sizeof(num), "%.6f", st.latency_sum_s);
	wbuf_puts(b, "\ntpwallet_acquirer_call_duration_seconds_sum ");
	wbuf_puts(b, num);
	wbuf_puts(b, "\ntpwallet_acquirer_call_duration_seconds_count ");
	wbuf_put_u64(b, st.latency_count);
	wbuf_putc(b, '\n');
	const struct {
		const char *name, *type, *text;
		unsigned long long v;
	} one[] = {
		{"tpwallet_acquirer_breaker_state", "gauge",
		 "The circuit breaker: 0 closed, 1 open, 2 half-open.",
		 st.breaker},
		{"tpwallet_acquirer_breaker_opened_total", "counter",
		 "Times the breaker opened.", st.breaker_opened},
		{"tpwallet_acquirer_inflight", "gauge",
		 "Top-ups calling the acquirer now.", st.inflight},
		{"tpwallet_acquirer_inflight_max", "gauge",
		 "Setting acquirer_inflight_max.", st.inflight_max},
		{"tpwallet_acquirer_rejected_total{reason=\"inflight\"}",
		 "counter",
		 "Top-ups refused 503 before any call: in-flight bound or "
		 "open breaker.",
		 st.rejected_busy},
		{"tpwallet_acquirer_rejected_total{reason=\"breaker_open\"}",
		 NULL, NULL, st.rejected_open},
		{"tpwallet_acquirer_pending", "gauge",
		 "Top-ups left pending that the resolver asks the acquirer "
		 "about.",
		 st.pending},
	};
	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		if (one[i].type) {
			size_t n = strcspn(one[i].name, "{");
			snprintf(num, sizeof(num), "%.*s", (int)n, one[i].name);
			help(b, num, one[i].type, one[i].text);
		}
		wbuf_puts(b, one[i].name);
		wbuf_putc(b, ' ');
		wbuf_put_u64(b, one[i].v);
		wbuf_putc(b, '\n');
	}
	/* The acquirer's minimum is its text: kept to a safe label value. */
	for (char *p = st.minimum; *p; p++)
		if (!strchr("0123456789-."
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
			    "nopqrstuvwxyz",
			    *p))
			*p = '_';
	help(b, "tpwallet_acquirer_version_refused", "gauge",
	     "1 while the acquirer's last answer refused our "
	     "acquirer_api_version (426); minimum: what it said it needs.");
	wbuf_puts(b, "tpwallet_acquirer_version_refused{version=\"");
	wbuf_puts(b, st.version);
	wbuf_puts(b, "\",minimum=\"");
	wbuf_puts(b, st.minimum);
	wbuf_puts(b, "\"} ");
	wbuf_put_u64(b, st.version_refused);
	wbuf_putc(b, '\n');
}
