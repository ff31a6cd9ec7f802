/*
 * trace.c - W3C trace context, spans, the sampler and the OTLP/HTTP JSON
 * exporter (see trace.h).
 *
 * The queue is two arrays of queue_spans spans: producers copy into the
 * filling one under the lock; the exporter thread swaps it with its
 * empty one (a pointer swap under the lock), then encodes and POSTs the
 * taken spans in batches of TRACE_BATCH_SPANS without the lock.  So at
 * most queue_spans spans wait and as many are in flight; a span that
 * finds the filling array full is dropped and counted.  A failed export
 * (refused, an error status, past its deadline) drops its batch and
 * counts it: spans are telemetry, never retried at the cost of memory.
 */
#include "engine/trace.h"
#include "core/assert.h"
#include "core/clock.h"
#include "core/parse.h"
#include "engine/logger.h"
#include "net/http.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

/* How long trace_stop waits for the last export before canceling it. */
#define STOP_WAIT_MS 2000

/* ---- trace context -------------------------------------------------- */

static const char hexdigits[] = "0123456789abcdef";

void trace_hex(const u8 *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[b[i] >> 4];
		out[2 * i + 1] = hexdigits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* n lowercase hex digits into n / 2 bytes; false on any other byte. */
static bool unhex(const char *s, size_t n, u8 *out)
{
	for (size_t i = 0; i < n; i += 2) {
		int hi = parse_hex_digit_lower(s[i]);
		int lo = parse_hex_digit_lower(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i / 2] = (u8)(hi << 4 | lo);
	}
	return true;
}

static bool all_zero(const u8 *b, size_t n)
{
	u8 any = 0;
	for (size_t i = 0; i < n; i++)
		any |= b[i];
	return any == 0;
}

bool trace_context_valid(const struct trace_context *c)
{
	return c && !all_zero(c->trace_id, 16) && !all_zero(c->span_id, 8);
}

bool trace_parse_traceparent(const char *v, struct trace_context *out)
{
	size_t n = strnlen(v, 512);
	struct trace_context c;
	u8 version;

	if (n < TRACEPARENT_BYTES || !unhex(v, 2, &version) || version == 0xff)
		return false;
	if (v[2] != '-' || v[35] != '-' || v[52] != '-')
		return false;
	if (!unhex(v + 3, 32, c.trace_id) || !unhex(v + 36, 16, c.span_id) ||
	    !unhex(v + 53, 2, &c.flags) || !trace_context_valid(&c))
		return false;
	if (version == 0 ? n != TRACEPARENT_BYTES
			 : (n > TRACEPARENT_BYTES && v[55] != '-'))
		return false;
	*out = c;
	return true;
}

void trace_format_traceparent(const struct trace_context *c,
			      char out[TRACEPARENT_BYTES + 1])
{
	out[0] = out[1] = '0';
	out[2] = '-';
	trace_hex(c->trace_id, 16, out + 3);
	out[35] = '-';
	trace_hex(c->span_id, 8, out + 36);
	out[52] = '-';
	trace_hex(&c->flags, 1, out + 53);
}

/* ---- configuration -------------------------------------------------- */

int trace_sampler_parse(const char *name, const char *arg,
			struct trace_options *o)
{
	static const struct {
		const char *name;
		enum trace_sampler s;
		bool parent;
	} names[] = {
		{"always_on", TRACE_SAMPLER_ALWAYS_ON, false},
		{"always_off", TRACE_SAMPLER_ALWAYS_OFF, false},
		{"traceidratio", TRACE_SAMPLER_RATIO, false},
		{"parentbased_always_on", TRACE_SAMPLER_ALWAYS_ON, true},
		{"parentbased_always_off", TRACE_SAMPLER_ALWAYS_OFF, true},
		{"parentbased_traceidratio", TRACE_SAMPLER_RATIO, true},
	};
	size_t i;

	if (!name || !*name)
		name = "parentbased_always_on";
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			break;
	if (i == sizeof(names) / sizeof(names[0]))
		return -EINVAL;
	o->sampler = names[i].s;
	o->parent_based = names[i].parent;
	o->ratio = 1.0;
	if (o->sampler == TRACE_SAMPLER_RATIO && arg && *arg) {
		char *end;
		double r = strtod(arg, &end);
		if (*end || end == arg || !(r >= 0.0 && r <= 1.0))
			return -EINVAL;
		o->ratio = r;
	}
	return 0;
}

void trace_endpoint_url(const char *endpoint, const char *traces_endpoint,
			char *out, size_t cap)
{
	if (traces_endpoint && *traces_endpoint) {
		snprintf(out, cap, "%s", traces_endpoint);
	} else if (endpoint && *endpoint) {
		size_t n = strlen(endpoint);
		while (n > 0 && endpoint[n - 1] == '/')
			n--;
		snprintf(out, cap, "%.*s/v1/traces", (int)n, endpoint);
	} else if (cap) {
		out[0] = '\0';
	}
}

/* ---- the tracer ----------------------------------------------------- */

struct tracer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool running, stopping;
	struct trace_span *filling, *sending;
	unsigned count, cap;
	pthread_t thread;
	struct http_client *client;
	char target[HTTP_TARGET_BYTES_MAX];
	char resource[1024]; /* the encoded resource object */
	enum trace_sampler sampler;
	bool parent_based;
	u64 ratio_bound; /* sampled when the id's low 56 bits are below */
	unsigned delay_ms, timeout_ms;
	bool failing;	     /* the last export failed (logged once) */
	_Atomic bool cancel; /* trace_stop gave up on the last export */
};

/* T.wake is made again by trace_start with CLOCK_MONOTONIC (the clock of
 * tpw_deadline_ms); the initializer only serves a stop without a start. */
static struct tracer T = {.lock = PTHREAD_MUTEX_INITIALIZER,
			  .wake = PTHREAD_COND_INITIALIZER};
static atomic_bool enabled;
static _Atomic u64 exported_total, dropped_total;

bool trace_enabled(void)
{
	return atomic_load_explicit(&enabled, memory_order_acquire);
}

void trace_counts(u64 *exported, u64 *dropped)
{
	*exported = atomic_load(&exported_total);
	*dropped = atomic_load(&dropped_total);
}

u64 trace_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

/* Ids come from a ChaCha20 stream per thread (libsodium's
 * randombytes_buf_deterministic), seeded once from randombytes_buf and
 * re-keyed from its own output at each call: no system call per id,
 * which a getrandom(2) each would cost every request. */
static _Thread_local u8 rng_seed[randombytes_SEEDBYTES];
static _Thread_local bool rng_seeded;

static void random_id(u8 *out, size_t n)
{
	u8 block[randombytes_SEEDBYTES + 16];

	TPW_ASSERT(n <= 16);
	if (!rng_seeded) {
		randombytes_buf(rng_seed, sizeof(rng_seed));
		rng_seeded = true;
	}
	do {
		randombytes_buf_deterministic(block, randombytes_SEEDBYTES + n,
					      rng_seed);
		memcpy(rng_seed, block, randombytes_SEEDBYTES);
		memcpy(out, block + randombytes_SEEDBYTES, n);
	} while (all_zero(out, n));
	sodium_memzero(block, sizeof(block));
}

void trace_new_span_id(u8 out[8])
{
	random_id(out, 8);
}

/* A root's decision: the trace id's last 7 bytes (56 random bits, as
 * W3C Trace Context level 2 asks of a random trace id) below the
 * ratio's bound. */
static bool sample_root(const u8 trace_id[16])
{
	if (T.sampler != TRACE_SAMPLER_RATIO)
		return T.sampler == TRACE_SAMPLER_ALWAYS_ON;
	u64 low = 0;
	for (unsigned i = 9; i < 16; i++)
		low = low << 8 | trace_id[i];
	return low < T.ratio_bound;
}

/* src cut to cap - 1 bytes (telemetry: a cut value is fine). */
static void copy_cut(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

static void copy_name(char *dst, const char *src)
{
	copy_cut(dst, TRACE_NAME_BYTES, src);
}

bool trace_span_begin(struct trace_span *s, const struct trace_context *parent,
		      const char *name, enum trace_kind kind)
{
	s->ctx = (struct trace_context){0};
	if (!trace_enabled())
		return false;
	bool sampled;
	if (trace_context_valid(parent)) {
		memcpy(s->ctx.trace_id, parent->trace_id, 16);
		memcpy(s->parent_span_id, parent->span_id, 8);
		sampled = T.parent_based
				  ? (parent->flags & TRACE_FLAG_SAMPLED) != 0
				  : sample_root(parent->trace_id);
	} else {
		random_id(s->ctx.trace_id, 16);
		memset(s->parent_span_id, 0, 8);
		sampled = sample_root(s->ctx.trace_id);
	}
	trace_new_span_id(s->ctx.span_id);
	s->ctx.flags = sampled ? TRACE_FLAG_SAMPLED : 0;
	if (!sampled)
		return false;
	copy_name(s->name, name);
	s->kind = kind;
	s->start_ns = trace_now_ns();
	s->end_ns = 0;
	s->error = false;
	s->nattrs = s->nevents = s->nlinks = 0;
	return true;
}

void trace_span_child(struct trace_span *s, const struct trace_context *parent,
		      const char *name, u64 start_ns, u64 end_ns)
{
	memcpy(s->ctx.trace_id, parent->trace_id, 16);
	trace_new_span_id(s->ctx.span_id);
	s->ctx.flags = TRACE_FLAG_SAMPLED;
	memcpy(s->parent_span_id, parent->span_id, 8);
	copy_name(s->name, name);
	s->kind = TRACE_KIND_INTERNAL;
	s->start_ns = start_ns;
	s->end_ns = end_ns;
	s->error = false;
	s->nattrs = s->nevents = s->nlinks = 0;
}

static void set_text(struct trace_attr *a, const char *key, const char *v)
{
	a->key = key;
	a->is_text = true;
	copy_cut(a->text, sizeof(a->text), v);
}

static _Thread_local struct trace_context current;
static _Thread_local bool has_current;

void trace_set_current(const struct trace_context *c)
{
	has_current = c != NULL;
	if (c)
		current = *c;
}

const struct trace_context *trace_current(void)
{
	return has_current ? &current : NULL;
}

void trace_span_text(struct trace_span *s, const char *key, const char *v)
{
	if (s->nattrs < TRACE_ATTRS_MAX)
		set_text(&s->attrs[s->nattrs++], key, v);
}

void trace_span_num(struct trace_span *s, const char *key, int64_t v)
{
	if (s->nattrs < TRACE_ATTRS_MAX)
		s->attrs[s->nattrs++] =
			(struct trace_attr){.key = key, .num = v};
}

void trace_span_event(struct trace_span *s, const char *name, const char *key,
		      const char *v)
{
	if (s->nevents == TRACE_EVENTS_MAX)
		return;
	struct trace_event *ev = &s->events[s->nevents++];
	ev->name = name;
	ev->time_ns = trace_now_ns();
	ev->nattrs = 0;
	if (key)
		set_text(&ev->attrs[ev->nattrs++], key, v);
}

void trace_span_link(struct trace_span *s, const struct trace_context *c)
{
	if (s->nlinks < TRACE_LINKS_MAX)
		s->links[s->nlinks++] = *c;
}

void trace_span_end(struct trace_span *s)
{
	if (!s->end_ns)
		s->end_ns = trace_now_ns();
	bool dropped = true;
	pthread_mutex_lock(&T.lock);
	if (T.running && T.count < T.cap) {
		T.filling[T.count++] = *s;
		dropped = false;
		if (T.count == TRACE_BATCH_SPANS)
			pthread_cond_signal(&T.wake);
	}
	bool running = T.running;
	pthread_mutex_unlock(&T.lock);
	if (dropped && running)
		atomic_fetch_add(&dropped_total, 1);
}

/* ---- outbound calls ------------------------------------------------- */

bool trace_client_begin(struct trace_span *s,
			const struct trace_context *parent, const char *method,
			const struct http_client *c,
			char traceparent[TRACEPARENT_BYTES + 1])
{
	bool rec = trace_span_begin(s, parent, method, TRACE_KIND_CLIENT);
	if (trace_context_valid(&s->ctx))
		trace_format_traceparent(&s->ctx, traceparent);
	else
		traceparent[0] = '\0';
	if (rec) {
		const struct http_url *u = http_client_url(c);
		trace_span_text(s, "http.request.method", method);
		trace_span_text(s, "server.address", u->host);
		trace_span_num(s, "server.port", u->port);
		trace_span_text(s, "url.scheme", u->tls ? "https" : "http");
	}
	return rec;
}

void trace_client_end(struct trace_span *s, int ret, int status)
{
	if (ret < 0) {
		trace_span_text(s, "error.type", http_err_name(ret));
		s->error = true;
	} else {
		trace_span_num(s, "http.response.status_code", status);
		s->error = status >= 400;
	}
	trace_span_end(s);
}

/* ---- the OTLP/HTTP JSON encoding ------------------------------------ */

struct jbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct jbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct jbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* A JSON string: quotes, and escapes for '"', '\\' and controls. */
static void put_str(struct jbuf *b, const char *s)
{
	put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			char e[8];
			snprintf(e, sizeof(e), "\\u%04x", c);
			puts_(b, e);
		} else {
			put(b, (const char *)&c, 1);
		}
	}
	put(b, "\"", 1);
}

static void put_u64(struct jbuf *b, u64 v)
{
	char n[24];
	snprintf(n, sizeof(n), "\"%llu\"", (unsigned long long)v);
	puts_(b, n);
}

static void put_hex(struct jbuf *b, const u8 *v, size_t n)
{
	char h[33];
	trace_hex(v, n, h);
	put(b, "\"", 1);
	puts_(b, h);
	put(b, "\"", 1);
}

static void put_attrs(struct jbuf *b, const struct trace_attr *a, unsigned n)
{
	puts_(b, "\"attributes\":[");
	for (unsigned i = 0; i < n; i++) {
		puts_(b, i ? ",{\"key\":" : "{\"key\":");
		put_str(b, a[i].key);
		if (a[i].is_text) {
			puts_(b, ",\"value\":{\"stringValue\":");
			put_str(b, a[i].text);
		} else {
			char v[40];
			snprintf(v, sizeof(v),
				 ",\"value\":{\"intValue\":\"%lld\"",
				 (long long)a[i].num);
			puts_(b, v);
		}
		puts_(b, "}}");
	}
	puts_(b, "]");
}

static void put_span(struct jbuf *b, const struct trace_span *s)
{
	puts_(b, "{\"traceId\":");
	put_hex(b, s->ctx.trace_id, 16);
	puts_(b, ",\"spanId\":");
	put_hex(b, s->ctx.span_id, 8);
	if (!all_zero(s->parent_span_id, 8)) {
		puts_(b, ",\"parentSpanId\":");
		put_hex(b, s->parent_span_id, 8);
	}
	char flags[24];
	snprintf(flags, sizeof(flags), ",\"flags\":%u", 0x100u | s->ctx.flags);
	puts_(b, flags);
	puts_(b, ",\"name\":");
	put_str(b, s->name);
	char kind[16];
	snprintf(kind, sizeof(kind), ",\"kind\":%d", (int)s->kind);
	puts_(b, kind);
	puts_(b, ",\"startTimeUnixNano\":");
	put_u64(b, s->start_ns);
	puts_(b, ",\"endTimeUnixNano\":");
	put_u64(b, s->end_ns);
	puts_(b, ",");
	put_attrs(b, s->attrs, s->nattrs);
	puts_(b, ",\"events\":[");
	for (unsigned i = 0; i < s->nevents; i++) {
		puts_(b, i ? ",{\"timeUnixNano\":" : "{\"timeUnixNano\":");
		put_u64(b, s->events[i].time_ns);
		puts_(b, ",\"name\":");
		put_str(b, s->events[i].name);
		puts_(b, ",");
		put_attrs(b, s->events[i].attrs, s->events[i].nattrs);
		puts_(b, "}");
	}
	puts_(b, "],\"links\":[");
	for (unsigned i = 0; i < s->nlinks; i++) {
		puts_(b, i ? ",{\"traceId\":" : "{\"traceId\":");
		put_hex(b, s->links[i].trace_id, 16);
		puts_(b, ",\"spanId\":");
		put_hex(b, s->links[i].span_id, 8);
		puts_(b, "}");
	}
	/* STATUS_CODE_ERROR (2) or UNSET (0): OK is for operators. */
	puts_(b, s->error ? "],\"status\":{\"code\":2}}" : "],\"status\":{}}");
}

static void encode(struct jbuf *b, const struct trace_span *s, unsigned n)
{
	b->len = 0;
	b->oom = false;
	puts_(b, "{\"resourceSpans\":[{\"resource\":");
	puts_(b, T.resource);
	puts_(b, ",\"scopeSpans\":[{\"scope\":{\"name\":\"tpwallet\"},"
		 "\"spans\":[");
	for (unsigned i = 0; i < n; i++) {
		if (i)
			puts_(b, ",");
		put_span(b, &s[i]);
	}
	puts_(b, "]}]}]}");
}

/* ---- the exporter thread -------------------------------------------- */

static void export_batch(struct jbuf *b, const struct trace_span *s, unsigned n)
{
	static const struct http_header h[] = {
		{"Content-Type", "application/json"}};
	struct http_response r = {0};
	int ret = -HTTP_no_memory;

	encode(b, s, n);
	if (!b->oom) {
		struct http_request req = {.method = "POST",
					   .target = T.target,
					   .headers = h,
					   .nheaders = 1,
					   .body = b->p,
					   .body_len = b->len,
					   .has_body = true,
					   .cancel = &T.cancel};
		ret = http_client_do(T.client, &req, &r);
	}
	int status = ret < 0 ? 0 : r.status;
	bool ok = ret == 0 && status >= 200 && status < 300;
	http_response_clear(&r);
	atomic_fetch_add(ok ? &exported_total : &dropped_total, n);
	/* One line when exports start failing, one when they work again. */
	if (ok == !T.failing)
		return;
	T.failing = !ok;
	if (ok)
		log_at(LOG_INFO, "trace export works again");
	else
		log_at(LOG_WARN, "trace export failed: spans are dropped",
		       LOG_STR("error", ret < 0 ? http_err_name(ret) : NULL),
		       LOG_NUM("status", (u64)status));
}

static void *exporter_main(void *arg)
{
	struct jbuf b = {0};
	(void)arg;

	pthread_mutex_lock(&T.lock);
	for (;;) {
		struct timespec until = tpw_deadline_ms((long)T.delay_ms);
		while (!T.stopping && T.count < TRACE_BATCH_SPANS &&
		       pthread_cond_timedwait(&T.wake, &T.lock, &until) == 0)
			;
		struct trace_span *taken = T.filling;
		unsigned n = T.count;
		T.filling = T.sending;
		T.sending = taken;
		T.count = 0;
		bool stop = T.stopping;
		pthread_mutex_unlock(&T.lock);
		for (unsigned at = 0; at < n; at += TRACE_BATCH_SPANS)
			export_batch(&b, taken + at,
				     n - at < TRACE_BATCH_SPANS
					     ? n - at
					     : TRACE_BATCH_SPANS);
		pthread_mutex_lock(&T.lock);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&T.lock);
	free(b.p);
	return NULL;
}

static void encode_resource(const struct trace_options *o)
{
	struct jbuf b = {0};
	const char *keys[] = {"service.name", "service.version", "host.name",
			      "service.instance.id"};
	const char *vals[] = {o->service_name && *o->service_name
				      ? o->service_name
				      : "tpwallet",
			      o->service_version ? o->service_version : "",
			      o->host_name ? o->host_name : "",
			      o->instance_id ? o->instance_id : ""};
	puts_(&b, "{\"attributes\":[");
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		puts_(&b, i ? ",{\"key\":" : "{\"key\":");
		put_str(&b, keys[i]);
		puts_(&b, ",\"value\":{\"stringValue\":");
		put_str(&b, vals[i]);
		puts_(&b, "}}");
	}
	puts_(&b, "]}");
	copy_cut(T.resource, sizeof(T.resource), b.oom ? "{}" : b.p);
	free(b.p);
}

int trace_start(const struct trace_options *o, const char **err)
{
	struct http_url u;
	int ret;

	if (T.running) {
		*err = "tracing is already started";
		return -EALREADY;
	}
	ret = http_url_parse(o->url, &u);
	if (ret == 0)
		ret = http_outbound_check(o->url);
	if (ret < 0) {
		*err = "the OTLP endpoint is not an http(s) URL";
		return ret;
	}
	T.timeout_ms = o->timeout_ms ? o->timeout_ms : TRACE_TIMEOUT_MS_DEFAULT;
	T.delay_ms = o->delay_ms ? o->delay_ms : TRACE_DELAY_MS_DEFAULT;
	struct http_options ho = {.connect_timeout_ms = T.timeout_ms,
				  .total_timeout_ms = T.timeout_ms,
				  .body_bytes_max = 64u * 1024u,
				  .user_agent = "tpwallet-otlp"};
	ret = http_client_open(&T.client, u.origin, &ho);
	if (ret < 0) {
		*err = "cannot open the OTLP endpoint's client";
		return ret;
	}
	copy_cut(T.target, sizeof(T.target), u.prefix[0] ? u.prefix : "/");
	T.cap = o->queue_spans ? o->queue_spans : TRACE_QUEUE_SPANS_DEFAULT;
	T.filling = calloc(T.cap, sizeof(struct trace_span));
	T.sending = calloc(T.cap, sizeof(struct trace_span));
	if (!T.filling || !T.sending) {
		*err = "out of memory for the span queue";
		ret = -ENOMEM;
		goto fail;
	}
	encode_resource(o);
	T.sampler = o->sampler;
	T.parent_based = o->parent_based;
	T.ratio_bound = (u64)ldexp(o->ratio, 56);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&T.wake, &ca);
	pthread_condattr_destroy(&ca);
	T.count = 0;
	T.stopping = false;
	T.failing = false;
	atomic_store(&T.cancel, false);
	T.running = true;
	ret = -pthread_create(&T.thread, NULL, exporter_main, NULL);
	if (ret) {
		T.running = false;
		*err = "cannot start the trace exporter thread";
		goto fail;
	}
	/* always_off records nothing, parent-based or not: the cost of
	 * tracing that is configured but off is one atomic load. */
	atomic_store(&enabled,
		     o->sampler != TRACE_SAMPLER_ALWAYS_OFF || o->parent_based);
	return 0;
fail:
	free(T.filling);
	free(T.sending);
	T.filling = T.sending = NULL;
	http_client_close(T.client);
	T.client = NULL;
	return ret;
}

void trace_stop(void)
{
	pthread_mutex_lock(&T.lock);
	if (!T.running) {
		pthread_mutex_unlock(&T.lock);
		return;
	}
	atomic_store(&enabled, false);
	T.stopping = true;
	pthread_cond_signal(&T.wake);
	pthread_mutex_unlock(&T.lock);
	/* The last export gets its chance, within STOP_WAIT_MS: a receiver
	 * that hangs does not hold up the stop for its whole deadline. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_WAIT_MS / 1000;
	if (pthread_timedjoin_np(T.thread, NULL, &until) != 0) {
		atomic_store(&T.cancel, true);
		pthread_join(T.thread, NULL);
	}
	pthread_mutex_lock(&T.lock);
	T.running = false;
	free(T.filling);
	free(T.sending);
	T.filling = T.sending = NULL;
	T.count = 0;
	pthread_mutex_unlock(&T.lock);
	http_client_close(T.client);
	T.client = NULL;
}
