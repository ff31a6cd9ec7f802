/*
 * server.c - libmicrohttpd daemon, router and request life cycle (see
 * server.h).  The routes' handlers live with their resource:
 * ledger_routes.c, audit_routes.c, authz_routes.c, policy_routes.c; the
 * server's own (/healthz, /readyz, /metrics) are here.
 *
 * A request goes through these states, one libmicrohttpd callback each:
 *
 *   uri_log       request line read: allocate struct request, keep the query
 *   RS_NEW        headers read: route, method, ids; only refusals that must
 *                 not read the body are answered here (the connection then
 *                 closes)
 *   RS_BODY       body chunks appended (capped, create routes only); at the
 *                 end: GETs and refusals are answered, or the events are
 *                 decoded, the connection suspended, engine_submit() called
 *   RS_SUBMITTED  resumed by on_engine_done(): encode results, reply
 *   completed     log line, metrics, free
 */
#include "api/internal.h"
#include "api/route.h"
#include "engine/audit.h"
#include "api/server.h"
#include "api/metrics.h"
#include "api/problem.h"
#include "api/seqwait.h"
#include "core/clock.h"
#include "api/tls.h"
#include "api/wbuf.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/parse.h"
#include "core/policy.h"
#include "crypto/keyring.h"
#include "engine/cluster.h"
#include "engine/engine.h"
#include "engine/trace.h"
#include "api/buildinfo.h"
#include "engine/logger.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

/* ---- request ids and trace context ------------------------------------ */

static const char hexdigits[] = "0123456789abcdef";

/* 16 random hex digits.  Random bytes are drawn 256 at a time per thread:
 * one getrandom(2) per 32 requests instead of one each. */
static void request_id_generate(char out[REQUEST_ID_BYTES_MAX + 1])
{
	static _Thread_local u8 pool[256];
	static _Thread_local unsigned left;
	const u8 *p;

	if (left < 8) {
		randombytes_buf(pool, sizeof(pool));
		left = sizeof(pool);
	}
	p = pool + sizeof(pool) - left;
	left -= 8;
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hexdigits[p[i] >> 4];
		out[2 * i + 1] = hexdigits[p[i] & 15];
	}
	out[16] = '\0';
}

/* ---- replies ---------------------------------------------------------- */

static void free_body(void *p)
{
	free(p);
}

/* The console's pages (docs/console.md, "Security"): scripts, styles,
 * images and fetches from this origin only, no inline script or style, no
 * plugin, never framed, forms post here only; no referrer leaves; the
 * media type is what it says. */
#define PAGE_CSP                                                               \
	"default-src 'self'; script-src 'self'; style-src 'self'; "            \
	"img-src 'self'; connect-src 'self'; object-src 'none'; "              \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static void add_page_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", PAGE_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy",
				"same-origin");
}

/* Queue b's bytes (taken over) as the reply.  Returns an MHD_Result. */
enum MHD_Result api_reply(struct request *rq, unsigned status, struct wbuf *b,
			  const char *content_type, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	size_t len;
	char *data;
	char slug[PROBLEM_SLUG_BYTES_MAX] = "internal-error";
	bool problem = strcmp(content_type, PROBLEM_CONTENT_TYPE) == 0;

	if (b->err) {
		/* Out of memory or a reply over its cap: say so briefly. */
		static const char fallback[] =
			"{\"type\":\"/problems/internal-error\",\"title\":"
			"\"Internal error\",\"status\":500}";
		wbuf_release(b);
		status = 500;
		content_type = PROBLEM_CONTENT_TYPE;
		resp = MHD_create_response_from_buffer(sizeof(fallback) - 1,
						       (void *)fallback,
						       MHD_RESPMEM_PERSISTENT);
		problem = true;
	} else {
		if (problem && problem_slug_find(b->data, b->len, slug) != 0)
			snprintf(slug, sizeof(slug), "internal-error");
		if (problem)
			api_span_event(rq, "problem", "problem.type", slug);
		data = wbuf_detach(b, &len);
		resp = MHD_create_response_from_buffer_with_free_callback(
			len, data, free_body);
		if (!resp)
			free(data);
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				content_type);
	MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
	/* The refusal marker (api/problem.h), for every problem answer. */
	if (problem)
		MHD_add_response_header(resp, PROBLEM_MARKER_HEADER, slug);
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (rq->location)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
					rq->location);
	if (rq->srv->cluster) {
		/* The seq this reply reflects: a write's own record, else
		 * what was applied when the handler read the state. */
		char seq[24];
		u64 v = rq->state == RS_SUBMITTED && rq->eng.ereq.seq
				? rq->eng.ereq.seq
			: rq->seen_seq ? rq->seen_seq
				       : engine_applied_seq(rq->srv->e);
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)v);
		MHD_add_response_header(resp, SEQ_HEADER, seq);
	}
	if (rq->cache_control && (status == 200 || status == 304))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
					rq->cache_control);
	if (rq->etag && (status == 200 || status == 304))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, rq->etag);
	if (rq->page)
		add_page_headers(resp);
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					AUTHZ_CHALLENGE);
	if (status == 503) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u",
			 rq->retry_after_s ? rq->retry_after_s : 1u);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (rq->net.close_after)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	policy_gate_headers(rq, resp);
	ok = MHD_queue_response(rq->conn, status, resp);
	MHD_destroy_response(resp);
	rq->status = status;
	rq->state = RS_REPLIED;
	return ok;
}

enum MHD_Result api_reply_problem(struct request *rq, enum problem p,
				  const char *detail, const char *field,
				  const char *allow)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);

	problem_write(&b, p, detail, rq->request_id, field);
	return api_reply(rq, problem_status(p), &b, PROBLEM_CONTENT_TYPE,
			 allow);
}

enum MHD_Result api_reply_json(struct request *rq, unsigned status,
			       struct wbuf *b)
{
	return api_reply(rq, status, b, "application/json", NULL);
}

enum MHD_Result api_reply_sign_failed(struct request *rq, int r,
				      const char *what)
{
	char detail[160];

	log_at(LOG_ERROR, "cannot sign", LOG_STR("what", what),
	       LOG_STR("code", keyring_strerror(r)));
	if (r == KEYRING_E_KEK_UNAVAILABLE)
		return api_reply_problem(rq, PROBLEM_key_store_unavailable,
					 "the token that holds the "
					 "key-encryption key did not answer "
					 "or refused; retry later",
					 NULL, NULL);
	snprintf(detail, sizeof(detail), "cannot sign %s", what);
	return api_reply_problem(rq, PROBLEM_internal_error, detail, NULL,
				 NULL);
}

/* ---- the server's own routes ------------------------------------------ */

enum MHD_Result server_route_healthz(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);

	wbuf_puts(&b, "{\"status\":\"ok\"}");
	return api_reply_json(rq, 200, &b);
}

/* ,"role":...,"term":...,"applied_seq":...,"writer":... of a cluster
 * node (/readyz, GET /v1/cluster). */
static void put_cluster_role(struct wbuf *b, struct engine *e)
{
	struct cluster_stats cs = {0};
	char writer[256];
	(void)engine_cluster_stats(e, &cs);
	engine_writer_address(e, writer, sizeof(writer));
	wbuf_puts(b, ",\"role\":");
	wbuf_puts(b, engine_is_follower(e) ? "\"follower\"" : "\"writer\"");
	wbuf_puts(b, ",\"term\":");
	wbuf_put_u64(b, cs.term);
	wbuf_puts(b, ",\"applied_seq\":");
	wbuf_put_u64(b, engine_applied_seq(e));
	wbuf_puts(b, ",\"writer\":");
	wbuf_put_json_str(b, writer, strlen(writer));
}

#define CLUSTER_DIGEST_EVERY_MS 1000u

enum MHD_Result server_route_cluster(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	struct api_server *s = rq->srv;
	static const char hex[] = "0123456789abcdef";
	u8 d[32];
	char dhex[65];

	/* The digest holds the state's lock while it hashes every account
	 * (about 145 ms at 819,000): one caller polling would stall every
	 * writer.  Hashed again only when the node applied more since and a
	 * second has passed; the answer says which seq it is of. */
	pthread_mutex_lock(&s->digest_lock);
	u64 now = tpw_monotonic_ms();
	if (!s->digest_valid ||
	    (engine_applied_seq(s->e) != s->digest_seq &&
	     now - s->digest_ms >= CLUSTER_DIGEST_EVERY_MS)) {
		s->digest_seq = engine_digest_seq(s->e, s->digest);
		s->digest_ms = now;
		s->digest_valid = true;
	}
	u64 seq = s->digest_seq;
	memcpy(d, s->digest, sizeof(d));
	pthread_mutex_unlock(&s->digest_lock);
	for (int i = 0; i < 32; i++) {
		dhex[2 * i] = hex[d[i] >> 4];
		dhex[2 * i + 1] = hex[d[i] & 15];
	}
	dhex[64] = '\0';
	wbuf_puts(&b, "{\"cluster\":");
	wbuf_puts(&b, s->cluster ? "true" : "false");
	if (s->cluster)
		put_cluster_role(&b, s->e);
	wbuf_puts(&b, ",\"digest\":\"");
	wbuf_puts(&b, dhex);
	wbuf_puts(&b, "\",\"digest_seq\":");
	wbuf_put_u64(&b, seq);
	wbuf_puts(&b, "}");
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result server_route_readyz(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	struct api_server *s = rq->srv;

	if (!atomic_load(&s->ready) || atomic_load(&s->stopping))
		return api_reply_problem(rq, PROBLEM_unavailable, NULL, NULL,
					 NULL);
	if (atomic_load(&s->draining))
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "draining: the server is stopping "
					 "(SIGTERM); send requests elsewhere",
					 NULL, NULL);
	if (!engine_healthy(s->e))
		return api_reply_problem(rq, PROBLEM_unavailable,
					 engine_failure(s->e), NULL, NULL);
	wbuf_puts(&b, "{\"status\":\"ready\"");
	if (s->cluster)
		put_cluster_role(&b, s->e);
	wbuf_puts(&b, "}");
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result server_route_metrics(struct request *rq)
{
	struct wbuf b = WBUF_INIT((size_t)4 << 20);
	struct api_server *s = rq->srv;
	/* OpenMetrics (with exemplars) when the scraper asks for it. */
	const char *accept = MHD_lookup_connection_value(
		rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	bool om = accept && strstr(accept, "application/openmetrics-text");

	metrics_render(&s->metrics, s->e, &b, om && s->metrics_exemplars);
	buildinfo_metrics(&b);
	policy_metrics(s, &b);
	probes_metrics(s, &b);
	reconcile_metrics(s, &b);
	audit_metrics(s, &b);
	netguard_metrics(s->ng, &b);
	if (s->tls)
		api_tls_metrics(s->tls, &b);
	if (s->hsm)
		metrics_render_hsm(s->hsm, &b);
	if (s->acquirer)
		metrics_render_acquirer(s->acquirer, &b);
	if (om && !b.err) {
		struct wbuf o = WBUF_INIT((size_t)4 << 20);
		metrics_openmetrics(&b, &o);
		wbuf_release(&b);
		return api_reply(rq, 200, &o, METRICS_OPENMETRICS_TYPE, NULL);
	}
	return api_reply(rq, 200, &b, METRICS_CONTENT_TYPE, NULL);
}

enum MHD_Result server_route_not_found(struct request *rq)
{
	return api_reply_problem(rq, PROBLEM_not_found, NULL, NULL, NULL);
}

/* ---- create requests -------------------------------------------------- */

/* Sequencer thread: must not block.  After MHD_resume_connection the
 * request may be replied to and freed at any moment: touch only s. */
static void on_engine_done(struct engine_request *er)
{
	struct request *rq = er->ctx;
	struct api_server *s = rq->srv;
	struct MHD_Connection *c = rq->conn;

	atomic_store_explicit(&rq->eng.ready, true, memory_order_release);
	MHD_resume_connection(c);
	atomic_fetch_sub(&s->inflight, 1);
}

static bool content_type_json(const char *ct)
{
	static const char want[] = "application/json";
	size_t n;

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = sizeof(want) - 1;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* The largest body a route reads: the batches and the activity load
 * take body_bytes_max; a policy document 256 KiB; the other JSON
 * objects 16 KiB.  No request reserves more of the shared budget. */
static size_t route_body_max(const struct request *rq)
{
	switch ((enum route_body)api_routes[rq->route].body) {
	case RB_BATCH: return rq->srv->body_bytes_max;
	case RB_POLICY:
		return rq->srv->body_bytes_max < POLICY_DOC_BYTES_MAX
			       ? rq->srv->body_bytes_max
			       : POLICY_DOC_BYTES_MAX;
	case RB_NONE:
	case RB_SMALL:
	default: return API_SMALL_BODY_BYTES_MAX;
	}
}

static bool has_body(struct request *rq)
{
	const char *cl = MHD_lookup_connection_value(
		rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0") != 0) ||
	       MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* A create request's headers: refuse what can be refused unread. */
static enum MHD_Result create_begin(struct request *rq)
{
	const char *cl;

	bool optional = api_routes[rq->route].flags & RF_BODY_OPTIONAL;
	if (!(optional && !has_body(rq)) &&
	    !content_type_json(MHD_lookup_connection_value(
		    rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
		return api_reply_problem(rq, PROBLEM_unsupported_media_type,
					 "send Content-Type: application/json",
					 NULL, NULL);
	cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		u64 n;
		int r = parse_digits(cl, strlen(cl), &n);
		if (r == -ERANGE || (r == 0 && n > route_body_max(rq)))
			return api_reply_problem(
				rq, PROBLEM_body_too_large,
				"Content-Length is over the limit", NULL, NULL);
		if (r == 0)
			rq->body.expected = (size_t)n;
	}
	rq->state = RS_BODY;
	return MHD_YES;
}

/* Free the body buffer and give its bytes back to the global budget. */
void api_release_body(struct request *rq)
{
	if (rq->body.cap)
		netguard_release(rq->net.nc, rq->body.cap);
	free(rq->body.data);
	rq->body.data = NULL;
	rq->body.len = rq->body.cap = 0;
}

/* A body chunk: keep it if under the cap, else drop it and remember. */
static enum MHD_Result create_chunk(struct request *rq, const char *data,
				    size_t n)
{
	size_t max = route_body_max(rq);

	if (rq->body.too_large || rq->body.over_budget)
		return MHD_YES;
	if (n > max - rq->body.len) {
		rq->body.too_large = true;
		api_release_body(rq);
		return MHD_YES;
	}
	if (rq->body.len + n > rq->body.cap) {
		size_t cap = rq->body.cap ? rq->body.cap * 2 : 16384;
		char *p;
		while (cap < rq->body.len + n)
			cap *= 2;
		/* The buffer grows with the bytes that came, never ahead of
		 * them to a promised Content-Length: at most twice what was
		 * received (and no more than Content-Length, when given). */
		if (rq->body.expected >= rq->body.len + n &&
		    cap > rq->body.expected)
			cap = rq->body.expected;
		if (cap > max)
			cap = max;
		/* Every growth is held against the budgets of all bodies,
		 * of this address and of this principal (netguard.h): past
		 * one the request is refused (503), and what one client may
		 * hold leaves room for the others. */
		size_t grow = cap - rq->body.cap;
		enum netguard_refusal over = netguard_hold(rq->net.nc, grow);
		if (over != NETGUARD_OK) {
			rq->body.over_budget = true;
			rq->body.over = over;
			api_release_body(rq);
			return MHD_YES;
		}
		p = realloc(rq->body.data, cap);
		if (!p) {
			netguard_release(rq->net.nc, grow);
			return MHD_NO;
		}
		rq->body.data = p;
		rq->body.cap = cap;
	}
	memcpy(rq->body.data + rq->body.len, data, n);
	rq->body.len += n;
	return MHD_YES;
}

const char *api_over_budget_detail(const struct request *rq)
{
	switch (rq->body.over) {
	case NETGUARD_OVER_ADDRESS:
		return "this address holds its share of buffered request "
		       "bodies; retry when its other uploads are done";
	case NETGUARD_OVER_PRINCIPAL:
		return "this principal holds its share of buffered request "
		       "bodies; retry when its other uploads are done";
	default: return "too many large requests at once; retry";
	}
}

/* What json_loadb refused, in words that name no input. */
static const char *json_load_error_name(const json_error_t *je)
{
	switch (json_error_code(je)) {
	case json_error_duplicate_key: return "a member is given twice";
	case json_error_numeric_overflow:
		return "a number is out of range (integers: 64 bits)";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "\\u0000 is not allowed in a string";
	case json_error_invalid_utf8: return "not UTF-8";
	case json_error_premature_end_of_input:
		return "the body ends inside a JSON value";
	case json_error_end_of_input_expected:
		return "more than one JSON value";
	case json_error_stack_overflow: return "nested too deep";
	default: return "not JSON";
	}
}

json_t *api_body_object(struct request *rq, size_t max_bytes,
			enum MHD_Result *reply)
{
	json_error_t je;
	json_t *j = NULL;
	char detail[64];

	*reply = MHD_NO;
	if (rq->body.over_budget) {
		*reply = api_reply_problem(rq, PROBLEM_unavailable,
					   api_over_budget_detail(rq), NULL,
					   NULL);
		return NULL;
	}
	if (rq->body.too_large || rq->body.len > max_bytes) {
		snprintf(detail, sizeof(detail), "at most %zu bytes",
			 max_bytes);
		*reply = api_reply_problem(rq, PROBLEM_body_too_large, detail,
					   NULL, NULL);
		return NULL;
	}
	if (rq->body.len)
		j = json_loadb(rq->body.data, rq->body.len,
			       JSON_REJECT_DUPLICATES, &je);
	if (!j && rq->body.len) {
		/* Why, and where; never the text near it (the body is the
		 * caller's, and a detail is logged). */
		char why[96];
		snprintf(why, sizeof(why), "%s at line %d, column %d",
			 json_load_error_name(&je), je.line, je.column);
		*reply = api_reply_problem(rq, PROBLEM_invalid_json, why, NULL,
					   NULL);
		return NULL;
	}
	if (!j || !json_is_object(j)) {
		json_decref(j);
		*reply = api_reply_problem(rq, PROBLEM_invalid_json,
					   "the body must be a JSON object",
					   NULL, NULL);
		return NULL;
	}
	return j;
}

void *api_command(struct request *rq, u16 kind, u32 ext_bytes,
		  const void *events, u32 count)
{
	struct command_header h = {
		.kind = kind, .ext_bytes = ext_bytes, .count = count};
	size_t bytes = sizeof(h) + ext_bytes + (size_t)count * 128u;
	/* zeroed: every byte of it is journaled */
	u8 *p = calloc(1, bytes);
	if (!p)
		return NULL;
	memcpy(p, &h, sizeof(h));
	if (count)
		memcpy(p + sizeof(h) + ext_bytes, events, (size_t)count * 128u);
	free(rq->eng.payload);
	rq->eng.payload = p;
	rq->eng.payload_bytes = (u32)bytes;
	return p + sizeof(h);
}

enum MHD_Result api_submit_command(struct request *rq,
				   enum MHD_Result (*reply)(struct request *))
{
	rq->eng.results = calloc(1, sizeof(u32));
	if (!rq->eng.results)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	rq->eng.ereq =
		(struct engine_request){.op = ENGINE_COMMAND,
					.count = 0,
					.payload_bytes = rq->eng.payload_bytes,
					.events = rq->eng.payload,
					.results = rq->eng.results};
	return api_submit(rq, reply);
}

/* Counted in flight and suspended, reply(rq) to come once resumed
 * (engine_reply); false, with the refusal in *out, while stopping. */
static bool suspend_for(struct request *rq,
			enum MHD_Result (*reply)(struct request *),
			enum MHD_Result *out)
{
	struct api_server *s = rq->srv;

	rq->eng.done_reply = reply;
	/* Count first, then look at `stopping`: with api_server_stop doing
	 * the reverse, one of the two always sees the other (seq_cst). */
	atomic_fetch_add(&s->inflight, 1);
	if (atomic_load(&s->stopping)) {
		atomic_fetch_sub(&s->inflight, 1);
		*out = api_reply_problem(rq, PROBLEM_unavailable,
					 "the server is shutting down", NULL,
					 NULL);
		return false;
	}
	rq->eng.ereq.ctx = rq;
	rq->state = RS_SUBMITTED;
	/* Suspend before the work starts: its end may come before the
	 * caller returns, and resuming needs a suspended connection. */
	MHD_suspend_connection(rq->conn);
	*out = MHD_YES;
	return true;
}

/* Hand rq->eng.ereq to the engine; the reply comes in engine_reply. */
enum MHD_Result api_submit(struct request *rq,
			   enum MHD_Result (*reply)(struct request *))
{
	struct api_server *s = rq->srv;
	enum MHD_Result out;

	if (!suspend_for(rq, reply, &out))
		return out;
	atomic_fetch_add(&s->submitted, 1);
	rq->eng.ereq.done = on_engine_done; /* also: counted in submitted */
	if (rq->span)
		rq->eng.ereq.trace = rq->span->ctx;
	int r = engine_submit(s->e, &rq->eng.ereq);
	if (r) {
		rq->eng.ereq.status = r;
		on_engine_done(&rq->eng.ereq);
	}
	return MHD_YES;
}

bool api_defer(struct request *rq, enum MHD_Result (*reply)(struct request *),
	       enum MHD_Result *out)
{
	rq->eng.ereq = (struct engine_request){0};
	return suspend_for(rq, reply, out);
}

void api_resume(struct request *rq)
{
	on_engine_done(&rq->eng.ereq);
}

/* A change sent to a cluster follower: the writer's address in the
 * detail and in Location (docs/api.md, "Cluster mode"). */
static enum MHD_Result reply_not_the_writer(struct request *rq)
{
	char writer[256], detail[400];
	engine_writer_address(rq->srv->e, writer, sizeof(writer));
	if (writer[0]) {
		snprintf(detail, sizeof(detail),
			 "this node is a follower; the writer is %s", writer);
		rq->location = strdup(writer);
	} else {
		snprintf(detail, sizeof(detail),
			 "this node is a follower; the writer did not "
			 "advertise an address (setting cluster_advertise)");
	}
	return api_reply_problem(rq, PROBLEM_not_the_writer, detail, NULL,
				 NULL);
}

/* Resumed after the engine ran the request: the engine's failures, else
 * the reply its submitter asked for. */
static enum MHD_Result engine_reply(struct request *rq)
{
	struct engine_request *er = &rq->eng.ereq;

	if (!atomic_load_explicit(&rq->eng.ready, memory_order_acquire)) {
		/* Cannot happen: we are only resumed once ready. */
		log_at(LOG_ERROR, "request resumed before its batch was done",
		       LOG_STR("request_id", rq->request_id));
		return MHD_NO;
	}
	if (er->status == -EIO)
		return api_reply_problem(rq, PROBLEM_commit_unknown, NULL, NULL,
					 NULL);
	if (er->status == -ESHUTDOWN)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "the engine is shutting down", NULL,
					 NULL);
	if (er->status == -EREMOTE)
		return reply_not_the_writer(rq);
	/* The journal (or the store, or cluster mode's table) failed
	 * earlier: nothing is accepted until a restart, which a supervisor
	 * or the operator makes; 503 says so to clients and balancers. */
	if (er->status == -ENOLINK || er->status == -ECANCELED)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 engine_failure(rq->srv->e), NULL,
					 NULL);
	if (er->status)
		return api_reply_problem(rq, PROBLEM_engine_error, NULL, NULL,
					 NULL);
	return rq->eng.done_reply(rq);
}

/* ---- routing ---------------------------------------------------------- */

static enum api_method method_of(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return METHOD_GET;
	if (strcmp(m, "HEAD") == 0)
		return METHOD_HEAD;
	if (strcmp(m, "POST") == 0)
		return METHOD_POST;
	if (strcmp(m, "PUT") == 0)
		return METHOD_PUT;
	if (strcmp(m, "DELETE") == 0)
		return METHOD_DELETE;
	return METHOD_OTHER;
}

/* Is the body read (the others' is discarded unread)?  Not for a
 * request refused by the gate or by authentication either. */
static bool reads_body(const struct request *rq)
{
	bool blocked = rq->gate.evaluated && rq->gate.verdict == POLICY_BLOCKED;
	return api_route_reads_body(rq->route, rq->method) && !blocked &&
	       (!rq->auth.checked || rq->auth.err.code == 0);
}

/* The refusal that routing alone decides, or PROBLEM_COUNT for none. */
static enum problem route_check(struct request *rq)
{
	const struct api_route_info *ri = &api_routes[rq->route];

	if (rq->route == ROUTE_unmatched)
		return PROBLEM_not_found;
	/* Fail closed: balances replayed from a changed entry are not the
	 * ones acknowledged (docs/operations.md, Recovery). */
	if (rq->srv->audit && !(ri->flags & RF_ALWAYS) &&
	    audit_journal_changed(rq->srv->audit))
		return PROBLEM_journal_changed;
	if (!(ri->methods & (1u << rq->method)))
		return PROBLEM_method_not_allowed;
	if (rq->bad_id)
		return PROBLEM_invalid_id;
	rq->query_repeat =
		api_query_repeated(rq->query, rq->query_len, rq->repeated_param,
				   sizeof(rq->repeated_param));
	if (rq->query_repeat != 0)
		return PROBLEM_invalid_query;
	if ((ri->flags & RF_BATCH) && atomic_load(&rq->srv->stopping))
		return PROBLEM_unavailable;
	return PROBLEM_COUNT;
}

static enum MHD_Result reply_route_problem(struct request *rq, enum problem p)
{
	char allow[API_ALLOW_BYTES_MAX];

	if (p == PROBLEM_invalid_id && api_routes[rq->route].param == RP_DEC64)
		return api_reply_problem(
			rq, p,
			"entry indexes are decimal integers from "
			"0 to 2^64-1 without leading zeros",
			"index", NULL);
	if (p == PROBLEM_invalid_id)
		return api_reply_problem(rq, p,
					 "ids are decimal integers from 0 to "
					 "2^128-1 without leading zeros",
					 "id", NULL);
	_Static_assert(API_QUERY_PARAMS_MAX == 64, "the reply names 64");
	if (p == PROBLEM_invalid_query)
		return api_reply_problem(
			rq, p,
			rq->query_repeat > 0
				? "a query parameter is given more than once"
				: "at most 64 query parameters",
			rq->repeated_param[0] ? rq->repeated_param : NULL,
			NULL);
	if (p == PROBLEM_method_not_allowed)
		return api_reply_problem(rq, p, NULL, NULL,
					 api_route_allow(rq->route, allow));
	return api_reply_problem(rq, p, NULL, NULL, NULL);
}

/* What the header fields say about framing and the forwarded client. */
struct head_scan {
	struct netguard_framing framing;
	bool bad_field;
	unsigned hosts;	       /* Host fields */
	const char *forwarded; /* the last X-Forwarded-For */
	size_t forwarded_len;
};

static enum MHD_Result head_field(void *cls, enum MHD_ValueKind kind,
				  const char *key, size_t key_size,
				  const char *value, size_t value_size)
{
	struct head_scan *hs = cls;

	(void)kind;
	if (!netguard_field_ok(key, key_size, value, value_size)) {
		hs->bad_field = true;
		return MHD_NO;
	}
	netguard_framing_add(&hs->framing, key, key_size, value, value_size);
	if (key_size == 4 && strncasecmp(key, "Host", 4) == 0)
		hs->hosts++;
	if (key_size == 15 && strncasecmp(key, "X-Forwarded-For", 15) == 0) {
		hs->forwarded = value;
		hs->forwarded_len = value_size;
	}
	return MHD_YES;
}

/*
 * Headers are in.  libmicrohttpd 0.9.75 closes the connection after any
 * reply queued in this first call (it cannot know the body was read), so
 * only refusals that must not read the body are answered here: a create
 * request with the wrong Content-Type or too long a Content-Length, and a
 * refused request that carries a body.  Everything else is answered once
 * the (empty or buffered) body is in, keeping the connection alive.
 */
static enum MHD_Result request_begin(struct request *rq, const char *url,
				     const char *method, const char *version)
{
	const char *v, *tid;
	enum problem p;

	v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					"X-Request-Id");
	if (v && api_request_id_valid(v))
		snprintf(rq->request_id, sizeof(rq->request_id), "%s", v);
	else
		request_id_generate(rq->request_id);
	v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					"traceparent");
	if (!v || !api_traceparent_parse(v, rq->trace_id))
		rq->trace_id[0] = '\0';
	api_span_begin(rq, v);

	rq->method = method_of(method);
	/* The framing first: an ambiguous request is not routed at all.
	 * The raw bytes (netguard.h, framing.h), then what libmicrohttpd
	 * parsed of them. */
	enum framing_error fe =
		netguard_framing_error(rq->net.nc, rq->net.index);
	rq->net.close_after = netguard_close_after(rq->net.nc);
	if (fe != FRAMING_OK) {
		netguard_head_done(rq->net.nc, NULL, 0, false);
		return api_reply_problem(rq, PROBLEM_bad_framing,
					 framing_error_text(fe), NULL, NULL);
	}
	struct head_scan hs = {0};
	MHD_get_connection_values_n(rq->conn, MHD_HEADER_KIND, head_field, &hs);
	/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host field (a
	 * second one could name another origin for DPoP's htu). */
	bool bad_host = hs.hosts > 1 ||
			(hs.hosts == 0 && strcmp(version, "HTTP/1.0") != 0);
	if (rq->net.bad_target || hs.bad_field || bad_host ||
	    !netguard_framing_ok(&hs.framing)) {
		netguard_head_done(rq->net.nc, NULL, 0, false);
		return api_reply_problem(
			rq, PROBLEM_bad_framing,
			rq->net.bad_target
				? "the request target is not origin-form, or "
				  "has a control character, a non-ASCII byte, "
				  "%00 or an encoded slash (%2F, %5C) in its "
				  "path"
			: hs.bad_field ? "a header field has a bad name or a "
					 "control character in its value"
			: bad_host     ? "exactly one Host field is needed "
					 "(RFC 9112, section 3.2)"
				       : "Content-Length and "
					 "Transfer-Encoding must frame the "
					 "body one way only",
			NULL, NULL);
	}
	switch (netguard_head_done(rq->net.nc, hs.forwarded, hs.forwarded_len,
				   has_body(rq))) {
	case NETGUARD_OK: break;
	case NETGUARD_OVER_CONNECTIONS:
		return api_reply_problem(rq, PROBLEM_too_many_requests,
					 "this client address has too many "
					 "requests in progress",
					 NULL, NULL);
	default:
		return api_reply_problem(rq, PROBLEM_bad_framing,
					 "a request through a trusted proxy "
					 "must carry one X-Forwarded-For "
					 "that names the client",
					 NULL, NULL);
	}
	size_t tid_len = 0;
	rq->route = api_route_match_text(url, &rq->path_id, &rq->bad_id, &tid,
					 &tid_len);
	if (tid)
		snprintf(rq->text_id, sizeof(rq->text_id), "%.*s", (int)tid_len,
			 tid);
	p = route_check(rq);
	if (p != PROBLEM_COUNT && has_body(rq))
		return reply_route_problem(rq, p);
	rq->state = RS_BODY;
	/* Who is calling and may they: decided before any body is read
	 * (a refused request's body is discarded unread). */
	if (p == PROBLEM_COUNT && api_routes[rq->route].scope != RA_PUBLIC) {
		/* The client-version gate first: a blocked app learns what
		 * to do whatever else is wrong.  Not on the policy's own
		 * routes, which an app must reach to learn it. */
		if (!(api_routes[rq->route].flags & RF_UNGATED))
			policy_gate(rq);
		bool blocked = rq->gate.evaluated &&
			       rq->gate.verdict == POLICY_BLOCKED;
		/* A refused request with a body is answered now, unread
		 * (the connection then closes): no waiting for an upload
		 * that would be thrown away. */
		if (blocked) {
			policy_count_blocked(rq, url, method);
			return has_body(rq) ? policy_gate_reply(rq) : MHD_YES;
		}
		u64 auth_ns = rq->span ? trace_now_ns() : 0;
		authz_begin(rq, url, method);
		if (rq->auth.err.code == 0 && rq->auth.caller.authenticated)
			netguard_set_principal(rq->net.nc,
					       rq->auth.caller.tenant);
		if (rq->auth.err.code == 0)
			authz_check_route(rq);
		api_span_auth(rq, auth_ns);
		if (rq->auth.err.code != 0 && has_body(rq))
			return api_reply_auth(rq);
	}
	if (p == PROBLEM_COUNT && reads_body(rq))
		return create_begin(rq);
	return MHD_YES;
}

static enum MHD_Result (*const route_handlers[ROUTE_COUNT])(
	struct request *) = {
#define X(name, tmpl, param, methods, body, rd, wr, scope, flags, handler)     \
	[ROUTE_##name] = handler,
	API_ROUTES(X)
#undef X
};

/* Does the caller's credential no longer hold (docs/authz.md,
 * "Named administrators": a request checked when its headers came and
 * answered later)?  Then *out is the refusal: 401 bootstrap-retired for
 * the bearer token, expired or revoked for a chain (a role taken away
 * counts as revoked). */
static bool credential_ended(struct request *rq, enum MHD_Result *out)
{
	struct api_server *s = rq->srv;
	int64_t now = (int64_t)time(NULL);
	if (!s->authz ||
	    api_authz_still_holds(s->authz, s->e, &rq->auth.caller, now))
		return false;
	const struct mandate_chain *c = rq->auth.caller.chain;
	memset(&rq->auth.err, 0, sizeof(rq->auth.err));
	rq->auth.err.code = rq->auth.caller.bearer
				    ? MANDATE_ERR_bootstrap_retired
			    : c && now >= c->exp ? MANDATE_ERR_expired
						 : MANDATE_ERR_revoked;
	api_release_body(rq);
	*out = api_reply_auth(rq);
	return true;
}

/* A read with Tpwallet-Min-Seq on a node that has not applied it yet:
 * held (suspended) until it has, at most read_wait_ms, then answered
 * 503 seq-not-reached.  True when *out is the answer (or the hold). */
static bool min_seq_hold(struct request *rq, enum MHD_Result *out)
{
	struct api_server *s = rq->srv;
	char detail[200];
	u64 n = 0;
	const char *v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						    MIN_SEQ_HEADER);
	if (!v || (rq->method != METHOD_GET && rq->method != METHOD_HEAD))
		return false;
	if (parse_u64(v, UINT64_MAX, &n) < 0) {
		*out = api_reply_problem(rq, PROBLEM_invalid_field,
					 "Tpwallet-Min-Seq is a decimal "
					 "sequence number",
					 MIN_SEQ_HEADER, NULL);
		return true;
	}
	u64 applied = engine_applied_seq(s->e);
	if (applied >= n) {
		/* Held, then answered: the state it will reflect may have
		 * revoked its credential meanwhile (or time ended it). */
		if (rq->state == RS_WAITING)
			return credential_ended(rq, out);
		return false;
	}
	if (rq->state != RS_WAITING && s->read_wait_ms) {
		atomic_fetch_add(&s->inflight, 1);
		if (!atomic_load(&s->stopping)) {
			rq->min_seq = n;
			rq->min_seq_deadline_ms =
				tpw_monotonic_ms() + s->read_wait_ms;
			rq->state = RS_WAITING;
			MHD_suspend_connection(rq->conn);
			seqwait_add(s->seqwait, rq);
			*out = MHD_YES;
			return true;
		}
		atomic_fetch_sub(&s->inflight, 1);
	}
	snprintf(detail, sizeof(detail),
		 "this node has applied seq %llu, %llu behind the %llu asked "
		 "for, after waiting %u ms",
		 (unsigned long long)applied, (unsigned long long)(n - applied),
		 (unsigned long long)n, s->read_wait_ms);
	*out = api_reply_problem(rq, PROBLEM_seq_not_reached, detail, NULL,
				 NULL);
	return true;
}

/* The body is in (create requests) or there is none: answer. */
static enum MHD_Result request_dispatch(struct request *rq)
{
	enum problem p = route_check(rq);

	if (p != PROBLEM_COUNT)
		return reply_route_problem(rq, p);
	if (rq->gate.evaluated && rq->gate.verdict == POLICY_BLOCKED)
		return policy_gate_reply(rq);
	if (rq->auth.checked && rq->auth.err.code != 0) {
		api_release_body(rq);
		return api_reply_auth(rq);
	}
	enum MHD_Result held;
	/* A change whose body came after its headers were checked: the
	 * credential again, as it is now (a retirement, a role taken away,
	 * a revocation meanwhile).  The state machine checks the admin and
	 * policy commands once more at their entry's time. */
	if (rq->method != METHOD_GET && rq->method != METHOD_HEAD &&
	    rq->auth.checked && credential_ended(rq, &held))
		return held;
	if (rq->srv->seqwait && min_seq_hold(rq, &held))
		return held;
	policy_observe(rq);
	if ((api_routes[rq->route].flags & RF_AUDIT) &&
	    (!rq->srv->audit || !audit_healthy(rq->srv->audit)))
		return api_reply_problem(rq, PROBLEM_audit_unavailable, NULL,
					 NULL, NULL);
	rq->seen_seq = engine_applied_seq(rq->srv->e);
	/* A sampled request's store reads become its spans' children. */
	if (rq->span)
		trace_set_current(&rq->span->ctx);
	enum MHD_Result ret = route_handlers[rq->route](rq);
	trace_set_current(NULL);
	return ret;
}

/* ---- libmicrohttpd callbacks ------------------------------------------ */

/* Called once per request with the raw request target: the one place
 * the query string is seen before libmicrohttpd splits it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct api_server *s = cls;
	const char *q = strchr(uri, '?');
	size_t qlen = q ? strlen(q + 1) : 0;
	struct request *rq;

	rq = calloc(1, sizeof(*rq) + qlen + 1);
	if (!rq)
		return NULL;
	rq->srv = s;
	rq->conn = c;
	rq->start_ns = now_ns();
	rq->route = ROUTE_unmatched;
	rq->method = METHOD_OTHER;
	rq->query_len = qlen;
	if (qlen)
		memcpy(rq->query, q + 1, qlen);
	rq->query[qlen] = '\0';
	atomic_init(&rq->eng.ready, false);
	rq->net.bad_target = !netguard_target_ok(uri);
	rq->net.nc = netguard_conn_of(c);
	rq->net.index = netguard_request_line(rq->net.nc);
	return rq;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **req_cls)
{
	struct request *rq = *req_cls;

	(void)cls;
	(void)version;
	if (!rq)
		return MHD_NO; /* out of memory in on_uri: drop the connection
				*/
	rq->conn = c;
	switch (rq->state) {
	case RS_NEW: return request_begin(rq, url, method, version);
	case RS_BODY:
		if (*upload_data_size) {
			size_t n = *upload_data_size;
			*upload_data_size = 0;
			netguard_body_bytes(rq->net.nc, n);
			if (!reads_body(rq))
				return MHD_YES; /* a body we do not read */
			return create_chunk(rq, upload_data, n);
		}
		netguard_body_done(rq->net.nc);
		return request_dispatch(rq);
	case RS_SUBMITTED: return engine_reply(rq);
	case RS_WAITING: return request_dispatch(rq);
	case RS_REPLIED:
	default: *upload_data_size = 0; return MHD_YES;
	}
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	struct request *rq = *req_cls;
	u64 us;

	(void)c;
	(void)toe;
	if (!rq)
		return;
	*req_cls = NULL;
	if (rq->state == RS_SUBMITTED &&
	    !atomic_load_explicit(&rq->eng.ready, memory_order_acquire)) {
		/* The engine still holds pointers into rq: leaking it is the
		 * only safe choice.  api_server_stop prevents this. */
		log_at(LOG_ERROR, "request completed while in the engine",
		       LOG_STR("request_id", rq->request_id));
		return;
	}
	if (rq->eng.ereq.done) /* counted in create_submit */
		atomic_fetch_sub(&s->submitted, 1);
	us = (now_ns() - rq->start_ns) / 1000;
	metrics_observe_request(&s->metrics, rq->route, rq->method, rq->status,
				us);
	api_span_end(rq, us);
	{
		/* A gated request's line also says how the gate decided. */
		struct log_field f[13] = {
			LOG_STR("method", metrics_method_name(rq->method)),
			LOG_STR("route", metrics_route_template(rq->route)),
			LOG_NUM("status", rq->status),
			LOG_NUM("duration_us", us),
			LOG_STR("request_id", rq->request_id),
			LOG_STR("trace_id",
				rq->trace_id[0] ? rq->trace_id : NULL),
			LOG_NUM("events", rq->eng.count),
		};
		size_t n = 7 + policy_log_fields(rq, f + 7);
		log_write(LOG_INFO, "request", f, n);
	}
	api_release_body(rq);
	netguard_request_done(rq->net.nc);
	free(rq->location);
	free(rq->eng.events);
	free(rq->eng.results);
	free(rq->eng.payload);
	free(rq->gate.body);
	free(rq->deferred);
	json_decref(rq->eng.reply_extra);
	api_caller_clear(&rq->auth.caller);
	free(rq);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(msg, sizeof(msg), fmt, ap);
#pragma GCC diagnostic pop
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
		msg[--n] = '\0';
	log_at(LOG_WARN, "libmicrohttpd", LOG_STR("detail", msg));
}

/* ---- start and stop --------------------------------------------------- */

static int resolve(const char *host, unsigned short port,
		   struct sockaddr_storage *ss, socklen_t *len,
		   const char **err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	char service[8];
	int r;

	snprintf(service, sizeof(service), "%u", (unsigned)port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r || !res) {
		*err = "cannot resolve the listen address";
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* netguard's bookkeeping; on HTTPS, TCP_NODELAY from the start, and the
 * TLS credentials' reference a closed connection held.  Without
 * TCP_NODELAY the server's handshake flight, written in several records,
 * waits on Nagle for the client's delayed ACK: about 40 ms per new
 * connection (bench/tls_handshakes.sh). */
static void on_connection(void *cls, struct MHD_Connection *c,
			  void **socket_ctx,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct api_server *s = cls;
	netguard_notify(s->ng, c, socket_ctx, toe);
	if (s->tls && toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			c, MHD_CONNECTION_INFO_CONNECTION_FD);
		int on = 1;
		if (ci)
			(void)setsockopt(ci->connect_fd, IPPROTO_TCP,
					 TCP_NODELAY, &on, sizeof(on));
	}
	if (s->tls && toe == MHD_CONNECTION_NOTIFY_CLOSED)
		api_tls_connection_closed(c);
}

static struct MHD_Daemon *daemon_start(struct api_server *s, unsigned poll_flag,
				       unsigned threads,
				       const struct api_options *o,
				       const struct sockaddr *sa, bool v6)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | poll_flag |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			 (v6 ? MHD_USE_IPv6 : 0);
	/* One thread is the polling thread itself: a pool of 1 (or 0) is
	 * refused with a warning, so the option is left out then. */
	struct MHD_OptionItem pool[] = {
		{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	if (threads <= 1)
		pool[0].option = MHD_OPTION_END;
	/* HTTPS: the certificate callback serves api/tls.h's current
	 * credentials, so a reload needs no restart. */
	struct MHD_OptionItem tls[] = {
		{MHD_OPTION_HTTPS_CERT_CALLBACK2, 0,
		 s->tls ? api_tls_callback() : NULL},
		{MHD_OPTION_HTTPS_PRIORITIES, 0,
		 s->tls ? (void *)api_tls_priority(s->tls) : NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	if (s->tls)
		flags |= MHD_USE_TLS;
	else
		tls[0].option = MHD_OPTION_END;

	return MHD_start_daemon(
		flags, 0, netguard_accept, s->ng, on_access, s,
		/* First, so that every message goes through logger.h. */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_ARRAY, pool,
		MHD_OPTION_ARRAY, tls, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)(o->connection_timeout_s
				   ? o->connection_timeout_s
				   : API_CONNECTION_TIMEOUT_S_DEFAULT),
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)(o->connections_max ? o->connections_max
					      : API_CONNECTIONS_MAX_DEFAULT),
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
		MHD_OPTION_END);
}

int api_server_start(struct api_server **out, struct engine *e,
		     const struct api_options *o, const char **err)
{
	struct sockaddr_storage ss;
	struct api_server *s = NULL;
	const union MHD_DaemonInfo *info;
	const char *dummy;
	unsigned threads;
	socklen_t sslen;
	int ret;

	if (!err)
		err = &dummy;
	*out = NULL;
	if (sodium_init() < 0) {
		*err = "libsodium failed to initialise";
		ret = -EIO;
		goto cleanup;
	}
	ret = resolve(o->host ? o->host : "127.0.0.1", o->port, &ss, &sslen,
		      err);
	if (ret)
		goto cleanup;
	s = calloc(1, sizeof(*s));
	if (s)
		pthread_mutex_init(&s->digest_lock, NULL);
	if (!s) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto cleanup;
	}
	if (o->tls && (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
		       MHD_is_feature_supported(
			       MHD_FEATURE_HTTPS_CERT_CALLBACK2) != MHD_YES)) {
		*err = "this libmicrohttpd has no TLS with a certificate "
		       "callback (Debian's libmicrohttpd12 has both)";
		ret = -ENOTSUP;
		goto cleanup;
	}
	s->e = e;
	s->tls = o->tls;
	struct cluster_stats cs;
	s->cluster = engine_cluster_stats(e, &cs);
	s->read_wait_ms = o->cluster_read_wait_ms;
	if (s->tls)
		api_tls_install(s->tls);
	s->audit = o->audit;
	s->keyring = o->keyring;
	s->hsm = o->hsm;
	s->origin = o->origin;
	s->manifest_public = o->manifest_public;
	s->metrics_exemplars = o->metrics_exemplars;
	s->manifest_ttl_max_s = o->manifest_ttl_max_s
					? o->manifest_ttl_max_s
					: API_MANIFEST_TTL_S_DEFAULT;
	s->key_overlap_s = o->key_overlap_s;
	s->vault = o->vault;
	s->acquirer = o->acquirer;
	s->acquirer_suspense = o->acquirer_suspense;
	s->vault_reveals_per_minute =
		o->vault_reveals_per_minute
			? o->vault_reveals_per_minute
			: API_VAULT_REVEALS_PER_MINUTE_DEFAULT;
	s->vault_limiter = vault_limiter_new();
	if (!s->vault_limiter) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto cleanup;
	}
	s->dual_control_window_s = o->dual_control_window_s
					   ? o->dual_control_window_s
					   : ADMIN_WINDOW_DEFAULT_S;
	s->authz = o->authz;
	s->data_dir = o->data_dir;
	s->policy_blocked_share_max =
		o->policy_blocked_share_set
			? o->policy_blocked_share_max
			: API_POLICY_BLOCKED_SHARE_MAX_DEFAULT;
	if (policy_activity_open(s) != 0) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto cleanup;
	}
	s->body_bytes_max = o->body_bytes_max ? o->body_bytes_max
					      : API_BODY_BYTES_MAX_DEFAULT;
	struct netguard_limits nl = o->net;
	nl.tls = o->tls != NULL;
	nl.idle_timeout_s = o->connection_timeout_s
				    ? o->connection_timeout_s
				    : API_CONNECTION_TIMEOUT_S_DEFAULT;
	nl.connections_max = o->connections_max ? o->connections_max
						: API_CONNECTIONS_MAX_DEFAULT;
	s->ng = netguard_create(&nl);
	if (!s->ng) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto cleanup;
	}
	metrics_init(&s->metrics);
	/* Before the HTTP threads exist: s->probes never changes while
	 * they run (/metrics and GET /v1/probes read it). */
	ret = probes_start(s, o->probes, o->nprobes, o->probe_interval_s, err);
	if (ret < 0)
		goto cleanup;
	if (s->cluster) {
		ret = seqwait_start(&s->seqwait, e);
		if (ret < 0) {
			*err = "cannot start the thread of Tpwallet-Min-Seq";
			goto cleanup;
		}
	}
	atomic_init(&s->ready, true);
	atomic_init(&s->stopping, false);
	atomic_init(&s->draining, false);
	atomic_init(&s->inflight, 0);
	atomic_init(&s->submitted, 0);
	threads = o->threads;
	if (!threads) {
		/* One core is left to the engine's sequencer and applier:
		 * on 2 cores, 1 HTTP thread serves 8% more single-transfer
		 * requests than 2 (docs/benchmarks.md). */
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 1 ? (unsigned)n - 1 : 1;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		s->d = daemon_start(s, MHD_USE_EPOLL | MHD_USE_TURBO, threads,
				    o, (struct sockaddr *)&ss,
				    ss.ss_family == AF_INET6);
	if (!s->d)
		s->d = daemon_start(s, MHD_USE_POLL, threads, o,
				    (struct sockaddr *)&ss,
				    ss.ss_family == AF_INET6);
	if (!s->d) {
		*err = "cannot start the HTTP server (address in use?)";
		ret = -EADDRINUSE;
		goto cleanup;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : o->port;
	ret = probes_run(s, err);
	if (ret < 0) {
		MHD_stop_daemon(s->d);
		goto cleanup;
	}
	*out = s;
	s = NULL;
	ret = 0;
cleanup:
	if (s)
		seqwait_stop(s->seqwait);
	if (s && s->activity)
		policy_activity_close(s);
	if (s)
		netguard_destroy(s->ng);
	if (s) {
		probes_free(s);
		vault_limiter_free(s->vault_limiter);
		pthread_mutex_destroy(&s->digest_lock);
	}
	free(s);
	return ret;
}

int api_server_save_activity(struct api_server *s)
{
	return policy_activity_save(s);
}

unsigned short api_server_port(const struct api_server *s)
{
	return s->port;
}

void api_server_set_ready(struct api_server *s, bool ready)
{
	atomic_store(&s->ready, ready);
}

void api_server_drain(struct api_server *s)
{
	if (s)
		atomic_store(&s->draining, true);
}

void api_server_stop(struct api_server *s)
{
	struct timespec ms = {0, 1000000};

	if (!s)
		return;
	/* First: a probe may be waiting for an answer from this server.
	 * Its results stay readable until probes_free, after the daemon. */
	probes_stop(s);
	/* New requests are answered 503 from here on.  No
	 * MHD_quiesce_daemon: in libmicrohttpd 0.9.75 with a thread pool on
	 * epoll it races the workers removing the listen socket from their
	 * epoll sets, and the loser aborts the process ("Failed to remove
	 * listen FD from epoll set"); MHD_stop_daemon closes the socket. */
	atomic_store(&s->stopping, true);
	/* Reads held for Tpwallet-Min-Seq are answered now. */
	seqwait_stop(s->seqwait);
	/* Mandatory: the engine holds pointers into these requests. */
	while (atomic_load(&s->inflight))
		nanosleep(&ms, NULL);
	/* Courtesy: let resumed requests send their replies. */
	for (int i = 0; i < STOP_REPLY_GRACE_MS && atomic_load(&s->submitted);
	     i++)
		nanosleep(&ms, NULL);
	MHD_stop_daemon(s->d);
	probes_free(s);
	vault_limiter_free(s->vault_limiter);
	netguard_destroy(s->ng);
	policy_activity_close(s);
	pthread_mutex_destroy(&s->digest_lock);
	free(s);
}
