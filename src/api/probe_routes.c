/*
 * probe_routes.c - the server's probes (`serve --probe URL:platform/version`):
 * one thread that sends each target's probe in turn every interval,
 * compares the answer with tpwallet's own decision for that client
 * (evaluated in-process from the policy state, no HTTP round trip),
 * and keeps the last result of each; /metrics exports them
 * (tpwallet_probe_*) and GET /v1/probes lists them (docs/api.md).
 *
 * Bounded: at most PROBE_TARGETS_MAX targets; each request under
 * api/probe.h's connect and total deadlines (the total never longer
 * than the interval) and body cap; the stop flag cancels the request
 * in flight within HTTP_CANCEL_POLL_MS, so probes_stop joins promptly
 * whatever a target does.  The results' lock is a leaf: the thread
 * holds it only to copy a result in, readers only to copy them out.
 */
#include "api/internal.h"
#include "api/probe.h"
#include "core/clock.h"
#include "core/policy.h"
#include "engine/logger.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

struct probe_slot {
	struct probe_target t;
	struct http_client *c; /* the thread's only */
	/* Under the lock: */
	struct probe_result r;
	u8 own_verdict; /* enum policy_verdict, at the probe's time */
	u64 own_version;
	bool disagreement;
	double duration_s;
	double last_run_s; /* wall clock, seconds since the epoch */
	u64 runs;
};

struct probes {
	struct api_server *s;
	struct probe_slot slot[PROBE_TARGETS_MAX];
	unsigned n;
	unsigned interval_s;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;	      /* under lock */
	_Atomic bool cancel;  /* the request in flight */
	bool started, joined; /* the starting and stopping thread's */
};

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double monotonic_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_one(struct probes *p, struct probe_slot *sl)
{
	struct probe_result r;
	double t0 = monotonic_s();
	double started = wall_s();

	(void)probe_send(sl->c, PROBE_PATH_DEFAULT, sl->t.client, NULL,
			 &p->cancel, &r);
	double took = monotonic_s() - t0;
	u64 own_version = 0;
	enum policy_verdict own =
		policy_verdict_of(p->s, sl->t.client, &own_version);
	/* The gateway refuses what tpwallet's own decision allows. */
	bool disagree =
		r.verdict == PROBE_refused_by_gateway && own != POLICY_BLOCKED;

	pthread_mutex_lock(&p->lock);
	bool was = sl->disagreement;
	sl->r = r;
	sl->own_verdict = (u8)own;
	sl->own_version = own_version;
	sl->disagreement = disagree;
	sl->duration_s = took;
	sl->last_run_s = started;
	sl->runs++;
	pthread_mutex_unlock(&p->lock);
	if (disagree != was)
		log_at(disagree ? LOG_WARN : LOG_INFO,
		       disagree ? "probe: the gateway refuses a client "
				  "tpwallet serves"
				: "probe: the gateway agrees again",
		       LOG_STR("probe", sl->t.name),
		       LOG_STR("verdict", probe_verdict_name(r.verdict)),
		       LOG_STR("tpwallet_verdict", policy_verdict_name(own)));
}

static void *probes_main(void *arg)
{
	struct probes *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		pthread_mutex_unlock(&p->lock);
		u64 round = tpw_monotonic_ms();
		for (unsigned i = 0; i < p->n && !atomic_load(&p->cancel); i++)
			run_one(p, &p->slot[i]);
		u64 spent = tpw_monotonic_ms() - round;
		u64 period = (u64)p->interval_s * 1000u;
		long wait_ms = spent < period ? (long)(period - spent) : 0;
		struct timespec until = tpw_deadline_ms(wait_ms);
		pthread_mutex_lock(&p->lock);
		while (!p->stop &&
		       pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void probes_release(struct probes *p)
{
	for (unsigned i = 0; i < p->n; i++)
		http_client_close(p->slot[i].c);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int probes_start(struct api_server *s, const char *const *specs, unsigned n,
		 unsigned interval_s, const char **err)
{
	pthread_condattr_t ca;
	struct probes *p;

	if (n == 0)
		return 0;
	if (n > PROBE_TARGETS_MAX) {
		*err = "too many probes";
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		*err = "out of memory";
		return -ENOMEM;
	}
	p->s = s;
	p->interval_s = interval_s ? interval_s : PROBE_INTERVAL_S_DEFAULT;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake, &ca);
	pthread_condattr_destroy(&ca);
	unsigned total_ms = PROBE_TOTAL_TIMEOUT_MS;
	if (total_ms > p->interval_s * 1000u)
		total_ms = p->interval_s * 1000u;
	for (unsigned i = 0; i < n; i++) {
		struct probe_slot *sl = &p->slot[i];
		if (probe_target_parse(specs[i], &sl->t) != 0 ||
		    probe_client_open(&sl->c, sl->t.url, 0, total_ms, NULL) !=
			    0) {
			*err = "a probe is not URL:platform/version";
			probes_release(p);
			return -EINVAL;
		}
		p->n++;
	}
	s->probes = p;
	return 0;
}

int probes_run(struct api_server *s, const char **err)
{
	struct probes *p = s->probes;

	if (!p)
		return 0;
	if (pthread_create(&p->thread, NULL, probes_main, p) != 0) {
		*err = "cannot start the probe thread";
		return -EAGAIN;
	}
	p->started = true;
	return 0;
}

void probes_stop(struct api_server *s)
{
	struct probes *p = s->probes;

	if (!p || !p->started || p->joined)
		return;
	atomic_store(&p->cancel, true);
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->joined = true;
}

void probes_free(struct api_server *s)
{
	if (!s->probes)
		return;
	probes_stop(s);
	probes_release(s->probes);
	s->probes = NULL;
}

/* The slots' results, copied out under the lock. */
static unsigned copy_slots(struct probes *p, struct probe_slot *out)
{
	pthread_mutex_lock(&p->lock);
	memcpy(out, p->slot, sizeof(p->slot[0]) * p->n);
	pthread_mutex_unlock(&p->lock);
	return p->n;
}

static void put_double(struct wbuf *b, double v)
{
	char buf[40];
	snprintf(buf, sizeof(buf), "%.6f", v);
	wbuf_puts(b, buf);
}

/* One sample: name{probe="..."[,verdict="..."]} value. */
static void sample(struct wbuf *b, const char *metric,
		   const struct probe_slot *sl, const char *verdict)
{
	wbuf_puts(b, metric);
	wbuf_puts(b, "{probe=\"");
	wbuf_puts(b, sl->t.name); /* sanitised: no quote, backslash, LF */
	if (verdict) {
		wbuf_puts(b, "\",verdict=\"");
		wbuf_puts(b, verdict);
	}
	wbuf_puts(b, "\"} ");
}

static const struct {
	const char *name, *help;
} families[] = {
	{"tpwallet_probe_up",
	 "1 when the probe's last request got an HTTP answer."},
	{"tpwallet_probe_verdict",
	 "1 for the probe's current verdict, 0 for the others."},
	{"tpwallet_probe_disagreement",
	 "1 when the gateway refuses what tpwallet's policy allows for the "
	 "probe's client."},
	{"tpwallet_probe_duration_seconds",
	 "How long the probe's last request took."},
	{"tpwallet_probe_last_run_timestamp_seconds",
	 "When the probe last ran (seconds since the epoch)."},
};

void probes_metrics(struct api_server *s, struct wbuf *b)
{
	struct probe_slot *sl;
	unsigned n;

	if (!s->probes)
		return;
	sl = malloc(sizeof(*sl) * s->probes->n);
	if (!sl) {
		b->err = -ENOMEM;
		return;
	}
	n = copy_slots(s->probes, sl);
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		wbuf_puts(b, "# HELP ");
		wbuf_puts(b, families[f].name);
		wbuf_putc(b, ' ');
		wbuf_puts(b, families[f].help);
		wbuf_puts(b, "\n# TYPE ");
		wbuf_puts(b, families[f].name);
		wbuf_puts(b, " gauge\n");
		for (unsigned i = 0; i < n; i++) {
			if (!sl[i].runs)
				continue;
			if (f == 1) {
				for (unsigned v = 0; v < PROBE_VERDICT_COUNT;
				     v++) {
					sample(b, families[f].name, &sl[i],
					       probe_verdict_name(v));
					wbuf_puts(b, v == sl[i].r.verdict
							     ? "1\n"
							     : "0\n");
				}
				continue;
			}
			sample(b, families[f].name, &sl[i], NULL);
			if (f == 0)
				wbuf_puts(b, sl[i].r.up ? "1" : "0");
			else if (f == 2)
				wbuf_puts(b, sl[i].disagreement ? "1" : "0");
			else
				put_double(b, f == 3 ? sl[i].duration_s
						     : sl[i].last_run_s);
			wbuf_putc(b, '\n');
		}
	}
	free(sl);
}

/* GET /v1/probes: every target and its last result. */
enum MHD_Result probe_route_list(struct request *rq)
{
	struct api_server *s = rq->srv;
	struct wbuf b = WBUF_INIT((size_t)64 << 10);
	struct probe_slot *sl = NULL;
	unsigned n = 0;

	if (s->probes) {
		sl = malloc(sizeof(*sl) * s->probes->n);
		if (!sl)
			return api_reply_problem(rq, PROBLEM_internal_error,
						 "out of memory", NULL, NULL);
		n = copy_slots(s->probes, sl);
		wbuf_puts(&b, "{\"interval_s\":");
		wbuf_put_u64(&b, s->probes->interval_s);
	} else {
		wbuf_puts(&b, "{\"interval_s\":null");
	}
	wbuf_puts(&b, ",\"probes\":[");
	for (unsigned i = 0; i < n; i++) {
		const struct probe_slot *p = &sl[i];
		wbuf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		wbuf_put_json_str(&b, p->t.name, strlen(p->t.name));
		wbuf_puts(&b, ",\"url\":");
		wbuf_put_json_str(&b, p->t.url, strlen(p->t.url));
		wbuf_puts(&b, ",\"client_version\":");
		wbuf_put_json_str(&b, p->t.client, strlen(p->t.client));
		wbuf_puts(&b, ",\"runs\":");
		wbuf_put_u64(&b, p->runs);
		if (!p->runs) {
			wbuf_puts(&b, ",\"verdict\":null}");
			continue;
		}
		wbuf_puts(&b, ",\"last_run_timestamp_seconds\":");
		put_double(&b, p->last_run_s);
		wbuf_puts(&b, ",\"duration_seconds\":");
		put_double(&b, p->duration_s);
		wbuf_putc(&b, ',');
		probe_result_json(&b, &p->r);
		wbuf_puts(&b, ",\"tpwallet_verdict\":\"");
		wbuf_puts(&b, policy_verdict_name(p->own_verdict));
		wbuf_puts(&b, "\",\"tpwallet_policy_version\":");
		wbuf_put_u64(&b, p->own_version);
		wbuf_puts(&b, p->disagreement ? ",\"disagreement\":true}"
					      : ",\"disagreement\":false}");
	}
	wbuf_puts(&b, "]}");
	free(sl);
	return api_reply_json(rq, 200, &b);
}
