/*
 * trace.h - distributed tracing (issue 22): W3C trace context, spans, a
 * parent-based ratio sampler, and one exporter thread that sends spans
 * as OTLP/HTTP JSON to an OpenTelemetry collector.
 *
 * In engine because spans need a clock and the exporter sends HTTP
 * (net/http.h): the engine records its own stages (queue wait, the group
 * commit, fdatasync, apply), the witness its outbound calls, and api the
 * server span of each request and the probes' calls.
 *
 * Off by default: until trace_start() is called with an endpoint,
 * trace_span_begin() returns false after one atomic load, so nothing is
 * recorded.  A span is a fixed-size record filled by one thread; ending
 * it copies it into a bounded queue (a mutex held for one memcpy).  When
 * the queue is full the span is dropped and counted: a receiver that
 * hangs or refuses slows the exporter thread only, never a request.
 */
#ifndef TPW_ENGINE_TRACE_H
#define TPW_ENGINE_TRACE_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "00-<32 hex>-<16 hex>-<2 hex>" */
#define TRACEPARENT_BYTES  55
#define TRACE_FLAG_SAMPLED 0x01u

/* A span context: trace id, span id, flags.  All zero: none. */
struct trace_context {
	u8 trace_id[16];
	u8 span_id[8];
	u8 flags;
};

/*
 * W3C Trace Context: "vv-<32 hex trace-id>-<16 hex parent-id>-<2 hex
 * flags>", lowercase hex; version ff, an all-zero trace-id or parent-id
 * are invalid; version 00 is exactly 55 characters, a later version may
 * append "-..." fields.  Returns true and the context (span_id is the
 * caller's span, the parent of ours) when valid.  At most 512 bytes of
 * v are read.
 */
bool trace_parse_traceparent(const char *v, struct trace_context *out);
/* Version 00 of c, NUL-terminated. */
void trace_format_traceparent(const struct trace_context *c,
			      char out[TRACEPARENT_BYTES + 1]);
/* Lowercase hex of n bytes, NUL-terminated (out holds 2n + 1). */
void trace_hex(const u8 *b, size_t n, char *out);
/* A valid context: a trace id and a span id not all zero. */
bool trace_context_valid(const struct trace_context *c);

/* ---- configuration -------------------------------------------------- */

enum trace_sampler {
	TRACE_SAMPLER_ALWAYS_OFF,
	TRACE_SAMPLER_ALWAYS_ON,
	TRACE_SAMPLER_RATIO,
};

#define TRACE_QUEUE_SPANS_DEFAULT 2048u
#define TRACE_BATCH_SPANS	  512u
#define TRACE_DELAY_MS_DEFAULT	  1000u
#define TRACE_TIMEOUT_MS_DEFAULT  10000u

struct trace_options {
	/* The URL spans are POSTed to (…/v1/traces). */
	const char *url;
	const char *service_name, *service_version, *host_name;
	/* service.instance.id: the cluster node's name, else host:listen */
	const char *instance_id;
	enum trace_sampler sampler;
	bool parent_based;    /* the sampler decides roots only */
	double ratio;	      /* TRACE_SAMPLER_RATIO: 0..1 */
	unsigned queue_spans; /* 0: TRACE_QUEUE_SPANS_DEFAULT */
	unsigned delay_ms;    /* between exports; 0: the default */
	unsigned timeout_ms;  /* one export's deadline; 0: the default */
};

/*
 * OTEL_TRACES_SAMPLER names: always_on, always_off, traceidratio,
 * parentbased_always_on, parentbased_always_off,
 * parentbased_traceidratio ("" or NULL: parentbased_always_on, the
 * OpenTelemetry default); arg (OTEL_TRACES_SAMPLER_ARG) the ratio, a
 * decimal in [0, 1] ("" or NULL: 1).  Returns 0, or -EINVAL.
 */
int trace_sampler_parse(const char *name, const char *arg,
			struct trace_options *o);
/* The URL to send to: traces_endpoint as it is when set, else endpoint
 * with "/v1/traces" appended (OTLP/HTTP's rule); "" when neither. */
void trace_endpoint_url(const char *endpoint, const char *traces_endpoint,
			char *out, size_t cap);

/* Start the exporter (once per process).  Returns 0, or a negative
 * errno / -HTTP_x (net/http.h) for an unusable URL, with *err saying
 * what. */
int trace_start(const struct trace_options *o, const char **err);
/* Send what is queued (within the deadline) and stop the exporter;
 * spans ended afterwards are ignored. */
void trace_stop(void);
/* Spans are being recorded (trace_start succeeded, sampler not off). */
bool trace_enabled(void);

/* Spans exported (accepted by the receiver) and dropped (the queue was
 * full, or the receiver refused, failed or timed out). */
void trace_counts(u64 *exported, u64 *dropped);

/* ---- spans ---------------------------------------------------------- */

enum trace_kind {
	TRACE_KIND_INTERNAL = 1,
	TRACE_KIND_SERVER = 2,
	TRACE_KIND_CLIENT = 3,
};

#define TRACE_NAME_BYTES  64u
#define TRACE_VALUE_BYTES 64u
#define TRACE_ATTRS_MAX	  10u
#define TRACE_EVENTS_MAX  4u
#define TRACE_EVENT_ATTRS 2u
#define TRACE_LINKS_MAX	  2u

/* key: a static string; a string value is cut at TRACE_VALUE_BYTES - 1. */
struct trace_attr {
	const char *key;
	bool is_text;
	int64_t num;
	char text[TRACE_VALUE_BYTES];
};

struct trace_event {
	const char *name; /* static */
	u64 time_ns;
	unsigned nattrs;
	struct trace_attr attrs[TRACE_EVENT_ATTRS];
};

struct trace_span {
	struct trace_context ctx;
	u8 parent_span_id[8]; /* zero: a root span */
	char name[TRACE_NAME_BYTES];
	enum trace_kind kind;
	u64 start_ns, end_ns; /* wall clock, ns since the epoch */
	bool error;
	unsigned nattrs, nevents, nlinks;
	struct trace_attr attrs[TRACE_ATTRS_MAX];
	struct trace_event events[TRACE_EVENTS_MAX];
	struct trace_context links[TRACE_LINKS_MAX];
};

/* Wall clock in ns (CLOCK_REALTIME): spans' times. */
u64 trace_now_ns(void);
/* 8 random bytes, never all zero (libsodium). */
void trace_new_span_id(u8 out[8]);

/*
 * Begin a span named name (cut to fit) of kind, starting now, child of
 * parent when parent is valid (its trace, and its sampled flag decides
 * when the sampler is parent-based), else the root of a new trace (the
 * sampler decides).  Returns true when the span is recorded; false when
 * tracing is off or the span is not sampled: then s->ctx is still a
 * context to propagate when tracing is on (its flags say "not sampled"),
 * and all zero when it is off.
 */
bool trace_span_begin(struct trace_span *s, const struct trace_context *parent,
		      const char *name, enum trace_kind kind);
/* The same for a span whose times are known (start_ns, then end_ns by
 * the caller), always recorded: for children of a recorded span. */
void trace_span_child(struct trace_span *s, const struct trace_context *parent,
		      const char *name, u64 start_ns, u64 end_ns);
void trace_span_text(struct trace_span *s, const char *key, const char *v);
void trace_span_num(struct trace_span *s, const char *key, int64_t v);
/* An event at now with up to one text attribute (key NULL: none). */
void trace_span_event(struct trace_span *s, const char *name, const char *key,
		      const char *v);
void trace_span_link(struct trace_span *s, const struct trace_context *c);

/* The recorded span this thread works for (a request's, set around its
 * handler), so that a lower layer's work for it (a store read) becomes
 * its child.  NULL clears it; trace_current() is NULL when none is set. */
void trace_set_current(const struct trace_context *c);
const struct trace_context *trace_current(void);
/* Queue the span (end_ns now unless set); dropped and counted when the
 * queue is full. */
void trace_span_end(struct trace_span *s);

/* ---- outbound calls ------------------------------------------------- */

struct http_client;
/*
 * A CLIENT span for one call of c ("METHOD" as its name, with the
 * server's address and port), child of parent (NULL: a new trace).
 * traceparent receives the header to send ("" when tracing is off).
 * Returns whether the span is recorded; end it with trace_client_end.
 */
bool trace_client_begin(struct trace_span *s,
			const struct trace_context *parent, const char *method,
			const struct http_client *c,
			char traceparent[TRACEPARENT_BYTES + 1]);
/* ret: http_client_do's; status: the answer's (0 when none). */
void trace_client_end(struct trace_span *s, int ret, int status);

#endif
