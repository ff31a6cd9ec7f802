/*
 * span.c - the SERVER span of each HTTP request (issue 22): begun when
 * the headers are in, a child of the caller's W3C traceparent when it
 * is valid; its context goes with the request into the engine, whose
 * stage spans are its children; ended with the reply's status when the
 * request completes.  Problem answers and refused events are span
 * events (their problem type or result name, never a body or a
 * credential).  Nothing is allocated when tracing is off or the request
 * is not sampled (engine/trace.h, docs/operations.md "Tracing").
 */
#include "api/internal.h"
#include "api/metrics.h"
#include "core/policy.h"
#include "core/result.h"
#include "engine/trace.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

void api_span_begin(struct request *rq, const char *traceparent)
{
	struct trace_context parent = {0};
	struct trace_span head;

	if (!trace_enabled())
		return;
	if (traceparent)
		(void)trace_parse_traceparent(traceparent, &parent);
	/* Allocated only once sampled; begin sets no attribute, event or
	 * link, so the head's fields are all that is copied. */
	if (!trace_span_begin(&head, &parent, "HTTP", TRACE_KIND_SERVER))
		return;
	rq->span = malloc(sizeof(*rq->span));
	if (rq->span)
		memcpy(rq->span, &head, offsetof(struct trace_span, attrs));
}

void api_span_event(struct request *rq, const char *name, const char *key,
		    const char *value)
{
	if (rq->span)
		trace_span_event(rq->span, name, key, value);
}

void api_span_auth(struct request *rq, u64 start_ns)
{
	const struct api_caller *c = &rq->auth.caller;
	struct trace_span s;

	if (!rq->span || !start_ns)
		return;
	trace_span_child(&s, &rq->span->ctx, "auth", start_ns, trace_now_ns());
	trace_span_text(&s, "tpwallet.auth.kind",
			!c->authenticated ? "none"
			: c->bearer	  ? "bearer"
			: c->org	  ? "organisation"
					  : "mandate");
	trace_span_text(&s, "tpwallet.auth.outcome",
			rq->auth.err.code ? "refused" : "allowed");
	if (c->chain) { /* links verified, and those the cache spared */
		trace_span_num(&s, "tpwallet.auth.links", c->chain->n);
		trace_span_num(&s, "tpwallet.auth.links_cached",
			       c->chain->cached);
	}
	s.error = rq->auth.err.code != 0;
	trace_span_end(&s);
}

void api_span_results(struct request *rq)
{
	u32 refused = 0, first = 0;

	if (!rq->span)
		return;
	for (u32 i = 0; i < rq->eng.count; i++) {
		if (rq->eng.results[i] != 0 && refused++ == 0)
			first = rq->eng.results[i];
	}
	bool transfers = rq->eng.base_op == ENGINE_CREATE_TRANSFERS;
	/* A batch is one span with counts, not a span per event. */
	trace_span_num(rq->span, "tpwallet.events", rq->eng.count);
	trace_span_num(rq->span, "tpwallet.events.refused", refused);
	if (refused)
		trace_span_event(rq->span,
				 transfers ? "transfer.refused"
					   : "account.refused",
				 "tpwallet.result",
				 transfers ? create_transfer_result_name(first)
					   : create_account_result_name(first));
}

void api_span_end(struct request *rq, u64 duration_us)
{
	struct trace_span *s = rq->span;
	const char *method = metrics_method_name(rq->method);
	const char *route = metrics_route_template(rq->route);

	if (!s)
		return;
	rq->span = NULL;
	snprintf(s->name, sizeof(s->name), "%.15s %.47s", method, route);
	trace_span_text(s, "http.request.method", method);
	trace_span_text(s, "http.route", route);
	trace_span_num(s, "http.response.status_code", rq->status);
	trace_span_text(s, "url.scheme", rq->srv->tls ? "https" : "http");
	if (rq->gate.evaluated)
		trace_span_text(s, "tpwallet.client_version.verdict",
				policy_verdict_name(rq->gate.verdict));
	if (rq->srv->cluster) /* the role may change: the span's, not the
				 resource's */
		trace_span_text(s, "tpwallet.cluster.role",
				engine_is_follower(rq->srv->e) ? "follower"
							       : "writer");
	s->error = rq->status >= 500 || rq->status == 0;
	char trace_id[33], span_id[17];
	trace_hex(s->ctx.trace_id, 16, trace_id);
	trace_hex(s->ctx.span_id, 8, span_id);
	metrics_observe_exemplar(&rq->srv->metrics, rq->route, rq->status,
				 duration_us, trace_id, span_id);
	trace_span_end(s);
	free(s);
}
