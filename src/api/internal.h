/*
 * internal.h - what server.c shares with the route files of the API
 * (ledger_routes.c, audit_routes.c, authz_routes.c, policy_routes.c): the
 * server and request structs, the reply helpers and the handlers of the
 * route table.  Not for use outside src/api.
 */
#ifndef TPW_API_INTERNAL_H
#define TPW_API_INTERNAL_H

#include "api/authz.h"
#include "api/gatewatch.h"
#include "api/metrics.h"
#include "api/netguard.h"
#include "api/problem.h"
#include "api/route.h"
#include "api/routes.h"
#include "api/wbuf.h"
#include "core/policy.h"
#include "engine/engine.h"
#include "engine/logger.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

struct activity;
struct probes;
struct request;

/* How long api_server_stop lets resumed requests send their replies. */
#define STOP_REPLY_GRACE_MS 2000
/* Small replies (problems, one record): initial cap of their buffer. */
#define SMALL_REPLY_BYTES_MAX 4096
/* The JSON objects of the auth and policy routes, at most. */
#define API_SMALL_BODY_BYTES_MAX ((size_t)16 << 10)
#define RECORD_JSON_BYTES_MAX	 1024

struct api_server {
	struct MHD_Daemon *d;
	/* GET /v1/cluster's digest, hashed under the state's lock: at most
	 * once a second while the state changes (one at a time), else the
	 * last one with its seq (server.c). */
	pthread_mutex_t digest_lock;
	bool digest_valid;
	u64 digest_ms, digest_seq;
	u8 digest[32];
	struct api_tls *tls; /* NULL: plain HTTP */
	struct engine *e;
	struct audit *audit;	 /* may be NULL */
	struct keyring *keyring; /* may be NULL */
	struct pkcs11 *hsm;	 /* may be NULL: api_options.hsm */
	const char *origin;	 /* may be NULL */
	int64_t key_overlap_s;	 /* POST /v1/keys/rotate without overlap_s */
	unsigned dual_control_window_s; /* docs/authz.md, "Dual control" */
	struct api_authz *authz;	/* NULL: every /v1 route answers 503 */
	/* Client versions seen by the gate (policy_routes.c). */
	const char *data_dir;	   /* NULL: activity is not kept on disk */
	struct activity *activity; /* under activity_lock */
	pthread_mutex_t activity_lock;
	u8 activity_key[32]; /* keys the hash of X-Client-User */
	/* The gate's decisions and blocked users, labelled (gatewatch.h). */
	struct gatewatch watch;
	/* False while no client policy has ever been current: set at start
	 * from the state and before any policy document is submitted, so
	 * the gate skips the state lock on every request until then. */
	atomic_bool policy_seen;
	/* The guard rail of a policy set: the largest share of a
	 * platform's active users it may newly block unless confirmed. */
	double policy_blocked_share_max;
	/* The signed manifest (docs/client-policy.md): readable without a
	 * credential, and the longest it may be cached. */
	bool manifest_public;
	bool metrics_exemplars;
	unsigned manifest_ttl_max_s;
	size_t body_bytes_max;
	unsigned short port;
	atomic_bool ready;
	atomic_bool stopping;
	atomic_bool draining; /* /readyz says so; everything else serves */
	/* Cluster mode (docs/operations.md, "Cluster mode"): replies carry
	 * Tpwallet-Seq; a follower holds a read with Tpwallet-Min-Seq at
	 * most read_wait_ms. */
	bool cluster;
	unsigned read_wait_ms;
	struct seqwait *seqwait; /* NULL but in cluster mode */
	/* Requests handed to the engine whose done callback has not run. */
	atomic_uint inflight;
	/* Requests handed to the engine and not yet completed (replied). */
	atomic_uint submitted;
	/* Connections, holds of body bytes and deadlines (netguard.h). */
	struct netguard *ng;
	struct metrics metrics;
	/* serve --probe (probe_routes.c); NULL when none is configured. */
	struct probes *probes;
	/* The card vault's key store (engine/vaultkeys.h); NULL: the vault
	 * routes answer 503 vault-unavailable.  Reveals per principal and
	 * minute (vault_routes.c). */
	struct vaultkeys *vault;
	unsigned vault_reveals_per_minute;
	struct vault_limiter *vault_limiter;
	/* The acquirer connector (engine/acquirer.h), or NULL: POST
	 * /v1/topups answers 503 acquirer-unavailable. */
	struct acquirer *acquirer;
	u128 acquirer_suspense; /* 0: no booking (api_options) */
	/* POST /v1/reconciliations: runs, and rows by outcome (the kinds of
	 * engine/reconcile.h, then bad lines), for /metrics. */
	_Atomic u64 recon_runs;
	_Atomic u64 recon_rows[8];
};

/* The reveals of each principal in the current minute (vault_routes.c):
 * NULL when out of memory. */
struct vault_limiter *vault_limiter_new(void);
void vault_limiter_free(struct vault_limiter *l);

/* Cluster mode's headers (docs/api.md, "Cluster mode"). */
#define SEQ_HEADER     "Tpwallet-Seq"
#define MIN_SEQ_HEADER "Tpwallet-Min-Seq"

/* RS_WAITING: suspended until the node applies min_seq (api/seqwait.h),
 * then dispatched again. */
enum req_state { RS_NEW, RS_BODY, RS_SUBMITTED, RS_REPLIED, RS_WAITING };

/* The connection's side of a request (server.c, netguard.h). */
struct request_net {
	struct netguard_conn *nc; /* the connection's record, or NULL */
	u32 index;		  /* its number on the connection */
	bool bad_target;	  /* the raw target fails netguard_target_ok */
	bool close_after;	  /* the reply closes the connection */
};

/* The request body, held against netguard's budgets (server.c). */
struct request_body {
	char *data;
	size_t len;
	size_t cap;
	size_t expected; /* Content-Length, or 0 */
	bool too_large;
	bool over_budget;	    /* refused: a body budget is spent */
	enum netguard_refusal over; /* which one */
};

/* Who is calling (/v1 routes), authenticated at the headers, the refusal
 * (if any) answered once the body is in (authz_routes.c). */
struct request_auth {
	struct api_caller caller;
	struct mandate_error err;
	bool checked;
	char owner_param[64]; /* POST /v1/accounts?owner= */
};

/* The client-version gate's decision (policy_routes.c). */
struct request_gate {
	bool evaluated;		   /* X-Client-Version was evaluated */
	u8 verdict;		   /* enum policy_verdict */
	u64 version;		   /* the policy version that decided */
	int64_t since_s, sunset_s; /* deprecation headers */
	char *body;		   /* the refusal (problem+json) when blocked */
	unsigned status;
	char link[600]; /* upgrade URL for Link: rel="deprecation" */
	/* Client-Notice: the most severe active notice for this client
	 * ("" none) and its severity; Cache-Control of a manifest ("" none) */
	char notice[POLICY_ID_MAX + 1];
	u8 notice_severity;
	char cache_control[40];
	/* counted in activity once authenticated (policy_observe) */
	char obs_platform[33];
	char obs_version[257];
	const char *obs_user; /* X-Client-User, valid for the request */
	/* for the metrics and the request's log line (gatewatch.h) */
	struct gatewatch_label label;
	bool has_version; /* X-Client-Version was sent */
	char client_version[GATEWATCH_LOG_TEXT_BYTES]; /* raw; sanitised when
							  logged */
	u8 reason;				       /* enum policy_reason */
	char rule[GATEWATCH_LOG_TEXT_BYTES]; /* the deciding range or min */
};

/* What goes to the engine and comes back (server.c, ledger_routes.c,
 * and the command records of authz_routes.c and policy_routes.c). */
struct request_engine {
	enum engine_op base_op; /* accounts or transfers, for the results */
	void *payload;		/* a command record (core/auth.h), or NULL */
	u32 payload_bytes;
	struct engine_request ereq;
	/* The reply once the engine is done (api_submit). */
	enum MHD_Result (*done_reply)(struct request *rq);
	void *events;
	u32 *results;
	u32 count;
	bool is_array;
	bool want_entry; /* ?entry_index=true: results carry their entry */
	/* Members the reply adds (a policy set's impact), or NULL; freed
	 * with the request. */
	json_t *reply_extra;
	atomic_bool ready; /* set by on_engine_done before resuming */
};

struct request {
	struct api_server *srv;
	struct MHD_Connection *conn;
	u64 start_ns;
	enum req_state state;
	enum api_route route;
	enum api_method method;
	unsigned status; /* queued reply, for the log; 0 if none */
	u128 path_id;
	bool bad_id; /* the {id} segment is not what the route takes */
	char request_id[REQUEST_ID_BYTES_MAX + 1];
	char trace_id[TRACE_ID_HEX + 1]; /* "" when no valid traceparent */
	struct trace_span *span;	 /* the SERVER span, or NULL (span.c) */
	char text_id[API_TEXT_ID_BYTES_MAX + 1]; /* principal id, jti */
	/* Work done off the HTTP thread (api_defer), freed with the
	 * request: the acquirer's job. */
	void *deferred;
	/* Retry-After of a 503 (0: 1 s), for the acquirer's refusals. */
	unsigned retry_after_s;
	/* A Cache-Control header for the reply, or NULL (a static string). */
	const char *cache_control;
	/* A strong ETag for the reply (quoted, a static string), or NULL. */
	const char *etag;
	/* A page of the console (console_routes.c): the reply carries its
	 * security headers (Content-Security-Policy and the others). */
	bool page;
	/* A Location header for the reply (malloc'ed), or NULL: a
	 * follower's not-the-writer answer names the writer. */
	char *location;
	/* Cluster mode: the applied seq when the route's handler ran (the
	 * state it read reflects at least this one). */
	u64 seen_seq;
	/* Tpwallet-Min-Seq: wait for it until this (monotonic ms). */
	u64 min_seq, min_seq_deadline_ms;
	struct request *wait_next; /* api/seqwait.c's list */
	int query_repeat;	   /* api_query_repeated's answer, when not 0 */
	char repeated_param[33];

	struct request_net net;
	struct request_body body;
	struct request_auth auth;
	struct request_gate gate;
	struct request_engine eng;

	size_t query_len;
	char query[]; /* raw, still percent-encoded, NUL-terminated */
};

enum MHD_Result api_reply(struct request *rq, unsigned status, struct wbuf *b,
			  const char *content_type, const char *allow);
enum MHD_Result api_reply_problem(struct request *rq, enum problem p,
				  const char *detail, const char *field,
				  const char *allow);
enum MHD_Result api_reply_json(struct request *rq, unsigned status,
			       struct wbuf *b);
/* A signature that failed (code r from the keyring): 503
 * key-store-unavailable (with Retry-After) when the token holding the KEK
 * did not answer or refused, else 500 internal-error saying what could
 * not be signed.  The keyring's words go to the log only. */
enum MHD_Result api_reply_sign_failed(struct request *rq, int r,
				      const char *what);
/* Every route's handler (routes.h): called by request_dispatch once the
 * body is in and the route's checks passed. */
#define X(name, tmpl, param, methods, body, rd, wr, scope, flags, handler)     \
	enum MHD_Result handler(struct request *rq);
API_ROUTES(X)
#undef X

/* Hand rq->ereq (filled by the caller) to the engine; reply(rq) writes
 * the reply once it is done, unless the engine failed. */
enum MHD_Result api_submit(struct request *rq,
			   enum MHD_Result (*reply)(struct request *));
/* Suspend rq before its work is handed to another thread, which calls
 * api_resume(rq) once (and touches rq no more); reply(rq) then writes
 * the answer on the HTTP thread.  Counted in flight like a submission,
 * so the server's stop waits for it.  False when the server is stopping
 * (the refusal is queued in *out: start no work); else *out is what the
 * handler returns. */
bool api_defer(struct request *rq, enum MHD_Result (*reply)(struct request *),
	       enum MHD_Result *out);
void api_resume(struct request *rq);
/* A JOURNAL_COMMAND record as rq->payload (core/command.h): a zeroed
 * ext_bytes ext, returned for the caller to fill, and count events
 * copied after it.  NULL when out of memory. */
void *api_command(struct request *rq, u16 kind, u32 ext_bytes,
		  const void *events, u32 count);
/* Submit an event-less rq->payload; its outcome arrives in results[0]
 * for reply (authz_command_reply, policy_command_reply). */
enum MHD_Result api_submit_command(struct request *rq,
				   enum MHD_Result (*reply)(struct request *));
/* ---- admin_routes.c: named administrators and dual control ---- */

/* The detail of 403 authority-ended (admin and policy changes). */
#define AUTHORITY_ENDED_DETAIL                                                 \
	"at the journal entry's time the bootstrap token was retired, or "     \
	"the administrator no longer held the role or its key was revoked: "   \
	"journaled as refused, nothing changed"

/* Is the caller's mandate rooted at an administrator (a chain whose
 * first link an administrator with a role signed, its key not revoked)?
 * Its id into id. */
bool admin_rooted_caller(struct request *rq, u8 id[32]);
/* Is the caller a named administrator signed in: rooted so, and its
 * mandate exactly one link that the administrator signed to itself (the
 * key that proves the request is the administrator's own)?  Only such a
 * caller requests or decides under dual control: a delegated power is
 * not the administrator's approval.  Its id into id. */
bool admin_named_caller(struct request *rq, u8 id[32]);
/* Make a dual-control request of a PSTATE_CMD_SET ext (the caller is a
 * named administrator): answered 202 with its Location once journaled. */
enum MHD_Result admin_request_policy(struct request *rq, const void *set_ext,
				     u32 set_bytes);
/* What a held policy document (text, len) would do, for the approver:
 * the JSON object {"document", "changes" (policy_diff against the
 * current version, null when none), "current_version"} as text to
 * free(), or NULL (out of memory). */
char *policy_held_members(struct request *rq, const char *text, size_t len);
/* The role a principal holds now (ADMIN_ROLE_NONE: none). */
u32 admin_role_now(struct request *rq, const u8 id[32]);

/* The principal making a change, for the journal (zero: the
 * administrator): the root of a delegation, or the caller. */
void api_author_of(struct request *rq, u8 out[32]);
/* The request body as a JSON object (duplicate keys refused), or NULL
 * with the refusal already queued in *reply (413 past max_bytes, 400
 * otherwise).  The caller json_decref()s it. */
json_t *api_body_object(struct request *rq, size_t max_bytes,
			enum MHD_Result *reply);
/* Free the body buffer and give its bytes back to the budgets. */
void api_release_body(struct request *rq);
/* The detail of a 503 for a body past one of the budgets (netguard.h). */
const char *api_over_budget_detail(const struct request *rq);

/* ---- span.c: the request's SERVER span (engine/trace.h) ---- */

/* Begin rq's span when tracing is on and the request is sampled;
 * traceparent: the header, or NULL. */
void api_span_begin(struct request *rq, const char *traceparent);
/* An event with one text attribute (key NULL: none) on rq's span. */
void api_span_event(struct request *rq, const char *name, const char *key,
		    const char *value);
/* The "auth" child span of rq's: from start_ns (trace_now_ns(), 0 when
 * rq has no span) to now, with the kind of credential and whether it
 * was refused. */
void api_span_auth(struct request *rq, u64 start_ns);
/* A batch's counts (events, refused) and the first refusal as an
 * event, from rq->eng.results. */
void api_span_results(struct request *rq);
/* End and queue rq's span with the reply's status; frees it.  Its
 * trace becomes the exemplar of the latency bucket of duration_us. */
void api_span_end(struct request *rq, u64 duration_us);

/* ---- policy_routes.c ---- */

/* Headers are in: the client-version gate for this request. */
void policy_gate(struct request *rq);
/* Headers a reply carries from the gate (Deprecation, Sunset...). */
void policy_gate_headers(struct request *rq, struct MHD_Response *resp);
/* Count the client the gate saw, now that it authenticated. */
void policy_observe(struct request *rq);
/* A blocked request: count its user (X-Client-User), verified when its
 * credential authenticates (it is still refused whatever it says). */
void policy_count_blocked(struct request *rq, const char *url,
			  const char *method);
/* The gate's fields of the request's log line: at most 6 into f. */
size_t policy_log_fields(struct request *rq, struct log_field *f);
/* The refusal of a blocked client. */
enum MHD_Result policy_gate_reply(struct request *rq);
void policy_metrics(struct api_server *s, struct wbuf *b);

/* ---- audit_routes.c ---- */

/* The keys' verifying windows and the witnesses, for /metrics. */
void audit_metrics(struct api_server *s, struct wbuf *b);
int policy_activity_open(struct api_server *s);
void policy_activity_close(struct api_server *s);
int policy_activity_save(struct api_server *s);
/* tpwallet's own verdict now for a client ("platform/version", as
 * X-Client-Version carries it), evaluated from the policy state as the
 * gate would; *version: the policy version (0: none).  Takes the read
 * lock itself. */
enum policy_verdict policy_verdict_of(struct api_server *s, const char *client,
				      u64 *version);

/* ---- probe_routes.c ---- */

/* Set up the probes of n specs ("URL:platform/version", already checked
 * by the settings) in s->probes, before the HTTP threads exist (they read
 * it); nothing when n is 0.  0 or -errno with *err. */
int probes_start(struct api_server *s, const char *const *specs, unsigned n,
		 unsigned interval_s, const char **err);
/* Start the probe thread, once the server listens (its first round may
 * go through a gateway back to this server).  0 or -errno with *err. */
int probes_run(struct api_server *s, const char **err);
/* Cancel the probe in flight and join the thread; the results stay
 * readable (no probes: a no-op; a second call too). */
void probes_stop(struct api_server *s);
/* After the HTTP threads are gone: stop if needed, free, NULL. */
void probes_free(struct api_server *s);
/* The tpwallet_probe_* families (nothing when no probe is configured). */
void probes_metrics(struct api_server *s, struct wbuf *b);
/* tpwallet_reconciliation_* (acquirer_routes.c). */
void reconcile_metrics(struct api_server *s, struct wbuf *b);

/* ---- authz_routes.c ---- */

/* The challenge of every 401 (RFC 9449 section 7.1, RFC 6750). */
#define AUTHZ_CHALLENGE "DPoP algs=\"EdDSA Ed25519\", Bearer"

/* Headers are in: authenticate (sets rq->auth). */
void authz_begin(struct request *rq, const char *url, const char *method);
/* Does the caller's right cover this route (the right and scope of its
 * row in routes.h)?  0, or -1 with auth.err. */
int authz_check_route(struct request *rq);
/* May the caller read whole audit entries (audit:read with a right over
 * no particular account, as the /v1/audit routes need)?  Asks only: the
 * request's authorization error is left as it is. */
bool authz_may_read_audit(struct request *rq);
/* Every transfer event against the caller's right (-1: auth.err). */
int authz_check_transfers(struct request *rq);
/* What authz_build_command did. */
enum authz_build {
	AUTHZ_BUILT,		   /* rq->eng.payload set, or none needed */
	AUTHZ_BUILD_NO_MEMORY,	   /* out of memory */
	AUTHZ_OWNER_MALFORMED,	   /* ?owner= is not a principal id */
	AUTHZ_OWNER_NOT_YOURS,	   /* only the administrator names another */
	AUTHZ_OWNER_UNKNOWN,	   /* ?owner= is not a registered principal */
	AUTHZ_OWNER_ADMINISTRATOR, /* a named administrator for the owner */
};
/* Build rq->eng.payload when the batch needs a command record (a
 * mandate's guard, an account owner). */
enum authz_build authz_build_command(struct request *rq);
/* After a guarded batch: did its guard refuse it (auth.err set)? */
bool authz_guard_refused(struct request *rq);
/* An auth refusal as an RFC 9457 problem (401 or 403). */
enum MHD_Result api_reply_auth(struct request *rq);

#endif
