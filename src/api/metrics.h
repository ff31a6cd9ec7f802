/*
 * metrics.h - Prometheus counters and histograms of the HTTP API, and the
 * text exposition (format 0.0.4) served on GET /metrics.
 *
 * Hot-path updates are relaxed atomic adds on fixed arrays: no lock, no
 * allocation.  Labels are bounded by construction: `route` is a route
 * template from API_ROUTES in routes.h (never a raw path, so a scan of random
 * URLs cannot grow the series), `method` one of four, `status` one of the codes
 * in API_STATUSES, `result` a ledger result name.
 *
 * Series:
 *   tpwallet_http_requests_total{route,method,status}       counter
 *   tpwallet_http_request_duration_seconds{route,status}     histogram
 *     (status is the class: 2xx, 3xx, 4xx or 5xx, so that fast refusals
 *     do not hide slow successes)
 *   tpwallet_results_total{op,result}                        counter
 *   tpwallet_batch_events                                    histogram
 *   tpwallet_fsync_duration_seconds                          histogram (engine)
 *   tpwallet_journal_bytes, tpwallet_accounts, tpwallet_transfers  gauges
 *
 * A struct metrics lives as long as its server; any thread may update it.
 */
#ifndef TPW_API_METRICS_H
#define TPW_API_METRICS_H

#include "api/routes.h"
#include "api/wbuf.h"
#include "core/result.h"

#include <pthread.h>
#include <stdatomic.h>

struct engine;

/* Every status the API answers; anything else is counted as "other". */
#define API_STATUSES(X)                                                        \
	X(200)                                                                 \
	X(201)                                                                 \
	X(202)                                                                 \
	X(400)                                                                 \
	X(401)                                                                 \
	X(403)                                                                 \
	X(404)                                                                 \
	X(405) X(409) X(413) X(415) X(422) X(426) X(500) X(503) X(507)
enum {
#define X(code) STATUS_IDX_##code,
	API_STATUSES(X)
#undef X
		STATUS_IDX_OTHER,
	STATUS_IDX_COUNT
};

/* Request latency buckets, microseconds (le labels are in seconds). */
#define METRICS_LATENCY_BUCKETS 15
/* Batch size buckets: 1, 2, 4, ... 8192 events. */
#define METRICS_BATCH_BUCKETS 14

struct metrics_latency {
	atomic_ullong buckets[METRICS_LATENCY_BUCKETS]; /* not cumulative */
	atomic_ullong count;
	atomic_ullong sum_us;
};

/* Status classes of the latency histogram: 2xx, 3xx, 4xx, 5xx. */
#define METRICS_STATUS_CLASSES 4

/* The exemplar of one latency bucket (OpenMetrics): the last sampled
 * request that fell in it ("" trace_id: none yet). */
struct metrics_exemplar {
	char trace_id[33], span_id[17];
	u64 duration_us;
	u64 time_ms; /* wall clock */
};

struct metrics {
	atomic_ullong requests[ROUTE_COUNT][METHOD_COUNT][STATUS_IDX_COUNT];
	/* +1: the +Inf bucket; written and read under exemplar_lock. */
	pthread_mutex_t exemplar_lock;
	struct metrics_exemplar exemplars[ROUTE_COUNT][METRICS_STATUS_CLASSES]
					 [METRICS_LATENCY_BUCKETS + 1];
	struct metrics_latency latency[ROUTE_COUNT][METRICS_STATUS_CLASSES];
	/* +1: codes past the table (a newer ledger) are counted as "other" */
	atomic_ullong account_results[CREATE_ACCOUNT_RESULT_COUNT + 1];
	atomic_ullong transfer_results[CREATE_TRANSFER_RESULT_COUNT + 1];
	atomic_ullong batch_buckets[METRICS_BATCH_BUCKETS];
	atomic_ullong batch_count;
	atomic_ullong batch_sum;
};

void metrics_init(struct metrics *m);

const char *metrics_route_template(enum api_route r);
const char *metrics_method_name(enum api_method m);

void metrics_observe_request(struct metrics *m, enum api_route r,
			     enum api_method meth, unsigned status,
			     u64 duration_us);
/* op: 1 accounts, 2 transfers (enum engine_op).  Counts each result and
 * the batch size. */
void metrics_observe_results(struct metrics *m, int op, const u32 *results,
			     u32 n);

/* A sampled request's trace (engine/trace.h) as the exemplar of the
 * latency bucket metrics_observe_request put it in (hex ids). */
void metrics_observe_exemplar(struct metrics *m, enum api_route r,
			      unsigned status, u64 duration_us,
			      const char trace_id[33], const char span_id[17]);

/* Render the exposition into b.  e may be NULL (engine series omitted);
 * otherwise engine_stats() and, briefly, the read lock are taken.
 * exemplars: the latency buckets carry their exemplars (OpenMetrics
 * only: the Prometheus text format 0.0.4 has no syntax for them). */
void metrics_render(struct metrics *m, struct engine *e, struct wbuf *b,
		    bool exemplars);
/* The OpenMetrics 1.0 text of a finished exposition in: a counter's
 * family is named without its _total, untyped is unknown, and it ends
 * with # EOF. */
void metrics_openmetrics(const struct wbuf *in, struct wbuf *out);
/* tpwallet_hsm_*: the token that holds the KEK (log/pkcs11.h). */
struct pkcs11;
void metrics_render_hsm(struct pkcs11 *p, struct wbuf *b);
/* tpwallet_acquirer_*: the acquirer connector (engine/acquirer.h). */
struct acquirer;
void metrics_render_acquirer(struct acquirer *a, struct wbuf *b);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_OPENMETRICS_TYPE                                               \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"

#endif
