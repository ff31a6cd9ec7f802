/*
 * policy_routes.c - the client-version gate that runs on every /v1
 * request, and the /v1/client-policy routes: the versioned document,
 * evaluation, the signed manifest, overrides, impact, the impact guard of
 * a new document and the revert of one version (docs/client-policy.md,
 * docs/api.md).
 */
#include "api/internal.h"
#include "core/activity.h"
#include "core/auth.h"
#include "core/parse.h"
#include "core/policy_impact.h"
#include "core/policy_revert.h"
#include "core/pstate.h"
#include "crypto/b64url.h"
#include "crypto/keyring.h"
#include "engine/logger.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/fsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define ACTIVITY_OBSERVATIONS_MAX 100000u
/* JSON bodies of the policy routes (the activity load is the largest) */
#define POLICY_BODY_BYTES_MAX	 (16u << 20)
#define ACTIVITY_FILE		 DATADIR_ACTIVITY
#define ACTIVITY_KEY_FILE	 "activity.key"
#define IMPACT_THRESHOLD_DEFAULT 0.05
#define IMPACT_WEEKS_DEFAULT	 4u
/* GET /v1/client-policy/versions lists the newest this many. */
#define VERSIONS_LISTED 1000u
/* The most overrides one GET .../overrides answers (a page; `next`
 * points at the rest). */
#define OVERRIDES_LISTED      100u
#define OVERRIDES_LISTED_TEXT "100"

static enum MHD_Result policy_command_reply(struct request *rq);

/* The wall clock the engine stamps records with (CLOCK_REALTIME, not
 * time(2)'s coarse clock, which may still read the previous second a
 * few ms after a record was stamped in the next: an override opened
 * then looked not yet started). */
static int64_t now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec;
}

static u32 today(void)
{
	return (u32)(now_s() / 86400);
}

/* RFC 3339 (core/policy.c's writer), or null. */
static json_t *json_time(int64_t t)
{
	char buf[POLICY_TIME_TEXT_BYTES];
	if (t == POLICY_TIME_NONE || policy_format_time(t, buf) != 0)
		return json_null();
	return json_string(buf);
}

/* "YYYY-MM-DD" of a day number. */
static void put_day(char out[POLICY_TIME_TEXT_BYTES], u32 day)
{
	if (policy_format_time((int64_t)day * 86400, out) != 0)
		snprintf(out, POLICY_TIME_TEXT_BYTES, "%u", day);
	out[10] = '\0';
}

/* ---- the decision as JSON (evaluate, manifest, refusals) ------------- */

/* The decision as the evaluate route answers it (core/policy.c) and
 * the version of the policy that decided. */
static json_t *decision_json(const struct policy *p,
			     const struct policy_decision *d, u64 version)
{
	json_t *o = policy_decision_json(p, d);
	if (o)
		json_object_set_new(o, "policy_version",
				    json_integer((json_int_t)version));
	return o;
}

/* Evaluate q against the current policy (the read lock is held by the
 * caller).  *version 0 and a supported verdict when none is set. */
static const struct policy *evaluate_locked(struct api_server *s,
					    struct policy_query *q,
					    struct policy_decision *d,
					    u64 *version)
{
	const struct pstate *ps = engine_pstate(s->e);
	const struct policy *p = pstate_current(ps, version);
	memset(d, 0, sizeof(*d));
	if (!p) {
		d->verdict = POLICY_SUPPORTED;
		d->reason = POLICY_REASON_NO_RULE;
		d->deprecated_since_s = d->sunset_s = POLICY_TIME_NONE;
		return NULL;
	}
	size_t n;
	const struct policy_override *ov = pstate_overrides_live(ps, &n);
	if (policy_evaluate(p, q, ov, n, d) != 0) {
		d->verdict = POLICY_SUPPORTED;
		d->reason = POLICY_REASON_NO_RULE;
	}
	return p;
}

/* ---- the gate --------------------------------------------------------- */

/* Keep what the gate saw, to count once the request authenticates:
 * anonymous requests must not shape the impact figures.  Only
 * platforms the policy names are counted. */
static void observe_later(struct request *rq, const struct policy_query *q,
			  const struct policy_decision *d)
{
	rq->gate.obs_platform[0] = '\0';
	if (!d->platform || !q->user || !q->version || q->platform_len > 32 ||
	    q->version_len == 0 || q->version_len > SEMVER_TEXT_MAX ||
	    strlen(q->user) > 256)
		return;
	memcpy(rq->gate.obs_platform, q->platform, q->platform_len);
	rq->gate.obs_platform[q->platform_len] = '\0';
	memcpy(rq->gate.obs_version, q->version, q->version_len);
	rq->gate.obs_version[q->version_len] = '\0';
	rq->gate.obs_user = q->user;
}

/* The keyed hash of user as the caller's: the administrator's
 * credentials (the gateway) speak for every user id; any other
 * credential only for the users of the principal at the root of its
 * chain, so the same id sent by another tenant is another user, and no
 * tenant can change what is counted for another's users
 * (docs/security.md).  Unverified (no authenticated caller): a hash of
 * its own, which never meets a verified one. */
static u64 user_hash(struct request *rq, const char *user, bool verified)
{
	struct api_server *s = rq->srv;
	u64 h;
	crypto_generichash_state st;
	crypto_generichash_init(&st, s->activity_key, sizeof(s->activity_key),
				sizeof(h));
	if (!verified) {
		static const u8 tag[] = "unverified";
		crypto_generichash_update(&st, tag, sizeof(tag));
	} else if (!rq->auth.caller.root_admin) {
		static const u8 tag[] = "principal";
		crypto_generichash_update(&st, tag, sizeof(tag));
		crypto_generichash_update(&st, rq->auth.caller.root,
					  sizeof(rq->auth.caller.root));
	}
	crypto_generichash_update(&st, (const u8 *)user, strlen(user));
	crypto_generichash_final(&st, (u8 *)&h, sizeof(h));
	return h;
}

void policy_count_blocked(struct request *rq, const char *url,
			  const char *method)
{
	const char *user = MHD_lookup_connection_value(
		rq->conn, MHD_HEADER_KIND, "X-Client-User");
	if (!rq->gate.evaluated || !user || !user[0] || strlen(user) > 256)
		return;
	/* Authenticated only to know whose user it is: the refusal is the
	 * same whatever the credential says. */
	if (MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					"Authorization"))
		authz_begin(rq, url, method);
	bool verified = rq->auth.checked && rq->auth.err.code == 0 &&
			rq->auth.caller.authenticated;
	gatewatch_blocked(&rq->srv->watch, rq->gate.label,
			  user_hash(rq, user, verified), verified, today());
}

void policy_observe(struct request *rq)
{
	struct api_server *s = rq->srv;
	if (!rq->gate.obs_platform[0] || !s->activity ||
	    !rq->auth.caller.authenticated)
		return;
	u64 h = user_hash(rq, rq->gate.obs_user, true);
	pthread_mutex_lock(&s->activity_lock);
	if (rq->auth.caller.root_admin)
		activity_observe(s->activity, h, rq->gate.obs_platform,
				 rq->gate.obs_version, today());
	else
		activity_observe_shared(s->activity, h, rq->gate.obs_platform,
					rq->gate.obs_version, today());
	pthread_mutex_unlock(&s->activity_lock);
	rq->gate.obs_platform[0] = '\0';
}

/* The gate's refusal as a JSON tree of its own: built under the read
 * lock (the decision's texts point into the policy), serialized by
 * blocked_text after it. */
static json_t *blocked_json(const struct policy *p,
			    const struct policy_decision *d, u64 version)
{
	json_t *o = decision_json(p, d, version);
	json_object_set_new(o, "type",
			    json_string("/problems/client-version-blocked"));
	json_object_set_new(o, "title",
			    json_string("This client version is no longer "
					"served: upgrade it"));
	json_object_set_new(o, "status", json_integer(d->status));
	if (d->message)
		json_object_set_new(o, "detail", json_string(d->message));
	return o;
}

static char *blocked_text(struct request *rq, json_t *o)
{
	json_object_set_new(o, "instance", json_string(rq->request_id));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

void policy_gate(struct request *rq)
{
	struct api_server *s = rq->srv;
	struct MHD_Connection *c = rq->conn;

	/* No policy ever set (the common case before one is): nothing to
	 * look up, and no state lock taken, which the applier's write lock
	 * would make this thread wait for.  A document is flagged before
	 * it is submitted, so a request after its reply always looks. */
	if (!atomic_load(&s->policy_seen))
		return;
	/* Under the same read lock as the evaluation below. */
	engine_read_begin(s->e);
	if (!pstate_current(engine_pstate(s->e), NULL)) {
		engine_read_end(s->e);
		return;
	}
	const char *cv = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     "X-Client-Version");
	struct policy_query q = {0};

	q.channel = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						"X-Client-Channel");
	q.country = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						"X-Client-Country");
	q.user = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
					     "X-Client-User");
	q.languages = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						  "Accept-Language");
	q.now_s = now_s();
	size_t cv_len = cv ? strlen(cv) : 0;
	if (cv)
		policy_query_set_client_version(&q, cv, cv_len);

	struct policy_decision d;
	u64 version;
	json_t *blocked = NULL;
	const struct policy *p = evaluate_locked(s, &q, &d, &version);
	observe_later(rq, &q, &d);
	/* What the metrics and the log line need, copied out: the
	 * platform's name, the deciding rule, and the lines a new policy
	 * version's rules name (rarely: once per version). */
	struct gatewatch_rule_line *seed = NULL;
	size_t nseed = 0;
	if (atomic_load_explicit(&s->watch.seeded_version,
				 memory_order_acquire) != version) {
		seed = malloc(GATEWATCH_RULE_LINES_COPIED * sizeof(*seed));
		if (seed)
			nseed = gatewatch_rule_lines(
				p, seed, GATEWATCH_RULE_LINES_COPIED);
	}
	char platform[POLICY_NAME_MAX + 1] = "";
	bool labelled = gatewatch_label_find(
		&s->watch, d.platform ? d.platform->name : NULL,
		d.platform ? (unsigned)(d.platform - p->platforms) : 0, version,
		d.version_valid, d.version.major, d.version.minor,
		&rq->gate.label);
	if ((!labelled || seed) && d.platform)
		snprintf(platform, sizeof(platform), "%s", d.platform->name);
	rq->gate.reason = d.reason;
	gatewatch_copy(d.rule, d.rule ? strlen(d.rule) : 0, rq->gate.rule);
	rq->gate.has_version = cv != NULL;
	gatewatch_copy(cv, cv_len, rq->gate.client_version);
	rq->gate.evaluated = true;
	rq->gate.verdict = d.verdict;
	rq->gate.version = version;
	rq->gate.since_s = d.deprecated_since_s;
	rq->gate.sunset_s = d.sunset_s;
	if (d.verdict == POLICY_DEPRECATED &&
	    d.deprecated_since_s == POLICY_TIME_NONE) {
		/* RFC 9745 wants a date: the rule has none, so the day the
		 * policy version that deprecates it took effect. */
		struct pstate_version pv;
		if (pstate_version_get(engine_pstate(s->e), version, &pv))
			rq->gate.since_s =
				(int64_t)(pv.timestamp / 1000000000u);
	}
	if (d.upgrade_url)
		snprintf(rq->gate.link, sizeof(rq->gate.link), "%s",
			 d.upgrade_url);
	/* The most severe active notice (the first of equals), for a
	 * client that says which it is. */
	if (cv && d.nnotices) {
		const struct policy_notice *top = d.notice[0];
		for (unsigned i = 1; i < d.nnotices; i++)
			if (d.notice[i]->severity > top->severity)
				top = d.notice[i];
		snprintf(rq->gate.notice, sizeof(rq->gate.notice), "%s",
			 top->id);
		rq->gate.notice_severity = top->severity;
	}
	if (d.verdict == POLICY_BLOCKED) {
		rq->gate.status = d.status ? d.status : 426;
		blocked = blocked_json(p, &d, version);
	}
	engine_read_end(s->e);
	if (blocked)
		rq->gate.body = blocked_text(rq, blocked);
	if (seed) {
		gatewatch_seed(&s->watch, seed, nseed, version);
		free(seed);
	}
	/* A new label (rare), or rule lines just seeded: again, adding. */
	if (!labelled || seed) {
		rq->gate.label = gatewatch_label(
			&s->watch, d.platform ? platform : NULL,
			d.version_valid, d.version.major, d.version.minor);
	}
	gatewatch_count(&s->watch, rq->gate.label, d.verdict);
}

size_t policy_log_fields(struct request *rq, struct log_field *f)
{
	if (!rq->gate.evaluated)
		return 0;
	/* copied raw at the gate, sanitised now (once, off its path) */
	gatewatch_sanitize(rq->gate.client_version,
			   strlen(rq->gate.client_version),
			   rq->gate.client_version);
	gatewatch_sanitize(rq->gate.rule, strlen(rq->gate.rule), rq->gate.rule);
	f[0] = LOG_STR(
		"client_platform",
		gatewatch_platform_name(&rq->srv->watch, rq->gate.label));
	f[1] = LOG_STR("client_version",
		       rq->gate.has_version ? rq->gate.client_version : NULL);
	f[2] = LOG_STR("verdict", policy_verdict_name(rq->gate.verdict));
	f[3] = LOG_STR("rule", policy_reason_name(rq->gate.reason));
	f[4] = LOG_STR("rule_text", rq->gate.rule[0] ? rq->gate.rule : NULL);
	f[5] = LOG_NUM("policy_version", rq->gate.version);
	return 6;
}

static void http_date(char *out, size_t cap, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void policy_gate_headers(struct request *rq, struct MHD_Response *resp)
{
	char buf[700];

	if (rq->gate.cache_control[0]) { /* a manifest: its texts are
					  * localised */
		MHD_add_response_header(resp, "Cache-Control",
					rq->gate.cache_control);
		MHD_add_response_header(resp, "Vary", "Accept-Language");
	}
	if (!rq->gate.evaluated)
		return;
	if (rq->gate.notice[0]) {
		static const char *const sev[] = {"info", "warning",
						  "critical"};
		snprintf(buf, sizeof(buf),
			 "\"%s\"; severity=%s; url=\"/v1/client-policy\"",
			 rq->gate.notice,
			 sev[rq->gate.notice_severity < 3
				     ? rq->gate.notice_severity
				     : 0]);
		MHD_add_response_header(resp, "Client-Notice", buf);
	}
	snprintf(buf, sizeof(buf), "%s; policy-version=%llu",
		 policy_verdict_name(rq->gate.verdict),
		 (unsigned long long)rq->gate.version);
	MHD_add_response_header(resp, "X-Client-Policy", buf);
	if (rq->gate.verdict != POLICY_DEPRECATED)
		return;
	/* RFC 9745: a Structured Field Date; RFC 8594: an HTTP-date. */
	if (rq->gate.since_s != POLICY_TIME_NONE) {
		snprintf(buf, sizeof(buf), "@%lld",
			 (long long)rq->gate.since_s);
		MHD_add_response_header(resp, "Deprecation", buf);
	}
	if (rq->gate.sunset_s != POLICY_TIME_NONE) {
		http_date(buf, sizeof(buf), rq->gate.sunset_s);
		MHD_add_response_header(resp, "Sunset", buf);
	}
	/* A URL that would break the header's syntax is left out. */
	if (rq->gate.link[0] && !strpbrk(rq->gate.link, "<>\", ")) {
		snprintf(buf, sizeof(buf), "<%s>; rel=\"deprecation\"",
			 rq->gate.link);
		MHD_add_response_header(resp, "Link", buf);
	}
}

enum MHD_Result policy_gate_reply(struct request *rq)
{
	if (!rq->gate.body)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	size_t n = strlen(rq->gate.body);
	struct wbuf b = WBUF_INIT(n + 1);
	wbuf_put(&b, rq->gate.body, n);
	return api_reply(rq, rq->gate.status, &b, PROBLEM_CONTENT_TYPE, NULL);
}

/* ---- helpers --------------------------------------------------------------
 */

/* o (consumed; NULL: out of memory) as the reply's body. */
static enum MHD_Result reply_jansson_as(struct request *rq, unsigned status,
					json_t *o, const char *content_type)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	size_t n = strlen(text);
	struct wbuf b = WBUF_INIT(n + 1);
	wbuf_put(&b, text, n);
	free(text);
	return api_reply(rq, status, &b, content_type, NULL);
}

static enum MHD_Result reply_jansson(struct request *rq, unsigned status,
				     json_t *o)
{
	return reply_jansson_as(rq, status, o, "application/json");
}

static const char *arg(struct request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

static void id_text(const u8 id[32], char out[44])
{
	static const u8 zero[32];
	if (memcmp(id, zero, 32) == 0) {
		snprintf(out, 44, "admin");
		return;
	}
	b64url_encode(out, 44, id, 32);
}

void api_author_of(struct request *rq, u8 out[32])
{
	memset(out, 0, 32);
	if ((rq->auth.caller.chain || rq->auth.caller.org) &&
	    !rq->auth.caller.root_admin)
		memcpy(out, rq->auth.caller.root, 32);
	else if (rq->auth.caller.chain)
		memcpy(out,
		       rq->auth.caller.chain
			       ->links[rq->auth.caller.chain->n - 1]
			       .sub,
		       32);
}

static enum MHD_Result reply_policy_err(struct request *rq,
					const struct policy_err *err)
{
	return api_reply_problem(rq, PROBLEM_invalid_policy, err->msg,
				 err->path[0] ? err->path : NULL, NULL);
}

/* Copy a reason (query ?reason= or a body member) into a fixed field. */
static bool reason_ok(const char *r, size_t cap)
{
	if (!r)
		return true;
	size_t n = strlen(r);
	if (n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)r[i] < 0x20)
			return false;
	json_t *j = json_stringn(r, n); /* NULL: not UTF-8 */
	bool utf8 = j != NULL;
	json_decref(j);
	return utf8;
}

/* ---- document: PUT, current, versions, diff, rollback ----------------------
 */

/* Version v's document (0: the current one) copied out under the read
 * lock: a malloc'd NUL-terminated text, or NULL when there is no such
 * version (*nomem when out of memory).  *pv: the version's record when
 * found (its text pointer is not to be used: the copy is returned). */
static char *version_text(struct request *rq, u64 v, struct pstate_version *pv,
			  bool *nomem)
{
	char *text = NULL;
	*nomem = false;
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	if (v == 0)
		v = pstate_version_count(ps);
	if (pstate_version_get(ps, v, pv)) {
		text = strndup(pv->text, pv->text_len);
		*nomem = !text;
	}
	engine_read_end(rq->srv->e);
	pv->text = NULL;
	return text;
}

/* ---- the impact of a new document (docs/client-policy.md) ------------ */

/* Against the current document (parsed into *cur, NULL when none is
 * set; the caller frees it): its text is copied under the read lock and
 * parsed after it, the activity read under its own lock, never both at
 * once.  0 or -ENOMEM. */
static int impact_of(struct request *rq, const struct policy *next,
		     struct policy **cur, u64 *cur_version,
		     struct policy_impact *im)
{
	struct pstate_version pv;
	bool nomem;
	char *text = version_text(rq, 0, &pv, &nomem);
	*cur = NULL;
	*cur_version = text ? pv.version : 0;
	if (nomem)
		return -ENOMEM;
	/* A journaled document always parses (it did when it was set). */
	if (text && policy_parse(text, pv.text_len, cur, NULL) != 0) {
		free(text);
		return -ENOMEM;
	}
	free(text);
	pthread_mutex_lock(&rq->srv->activity_lock);
	int r = policy_impact_compute(rq->srv->activity, *cur, next, now_s(),
				      today(), im);
	pthread_mutex_unlock(&rq->srv->activity_lock);
	return r;
}

/* Would the document block any active user the current one serves? */
static bool newly_blocks(const struct policy_impact *im)
{
	for (u32 i = 0; i < im->nplatforms; i++)
		if (im->p[i].newly_blocked > 0)
			return true;
	return false;
}

static json_t *impact_json(const struct policy_impact *im, double threshold,
			   u64 against)
{
	json_t *rows = json_array();
	for (u32 i = 0; i < im->nplatforms; i++) {
		const struct policy_impact_platform *p = &im->p[i];
		json_t *row = json_pack(
			"{s:s, s:I, s:I, s:I, s:I}", "platform", p->name,
			"actives", (json_int_t)p->actives, "newly_blocked",
			(json_int_t)p->newly_blocked, "blocked_before",
			(json_int_t)p->blocked_before, "blocked_after",
			(json_int_t)p->blocked_after);
		json_object_set_new(row, "share",
				    json_real(policy_impact_share(p)));
		json_array_append_new(rows, row);
	}
	json_t *o = json_pack("{s:I, s:f, s:I, s:s, s:o}", "window_days",
			      (json_int_t)im->window_days, "threshold",
			      threshold, "against_version", (json_int_t)against,
			      "user_scope", "verified", "platforms", rows);
	if (im->nplatforms == 0)
		json_object_set_new(o, "note",
				    json_string("no activity in the window: no "
						"user is known to be blocked"));
	return o;
}

/* A problem document with extension members (members: a new object of
 * them, consumed). */
static enum MHD_Result reply_problem_with(struct request *rq, enum problem p,
					  const char *detail, json_t *members)
{
	char type[96];
	snprintf(type, sizeof(type), "/problems/%s", problem_slug(p));
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s}", "type", type,
			      "title", problem_title(p), "status",
			      (json_int_t)problem_status(p), "detail", detail,
			      "instance", rq->request_id);
	if (o)
		json_object_update(o, members);
	json_decref(members);
	return reply_jansson_as(rq, problem_status(p), o, PROBLEM_CONTENT_TYPE);
}

/* How a document is set: PUT and revert are guarded (refused above the
 * threshold unless accept_impact), rollback is not (it restores a
 * version that was accepted before; its reply still reports the
 * impact).  dry_run: answer what would happen, journal nothing. */
struct set_opts {
	u64 rollback_of;
	const char *reason;
	bool guarded, accept_impact, dry_run;
	json_t *extra; /* members for the reply (consumed), or NULL */
};

/* The dry run's answer: the changes against the current document, the
 * impact, the document that would be set. */
static enum MHD_Result dry_run_reply(struct request *rq,
				     const struct policy *cur,
				     const struct policy *next, u64 cur_version,
				     const char *text, size_t len, json_t *o)
{
	char *out = NULL;
	json_t *changes = NULL;
	if (cur && policy_diff(cur, next, &out, NULL) == 0)
		changes = json_loads(out, 0, NULL);
	free(out);
	json_object_set_new(o, "status", json_string("dry_run"));
	json_object_set_new(o, "current",
			    json_integer((json_int_t)cur_version));
	json_object_set_new(o, "changes", changes ? changes : json_array());
	json_t *doc = json_loadb(text, len, 0, NULL);
	json_object_set_new(o, "document", doc ? doc : json_null());
	return reply_jansson(rq, 200, o);
}

/* The current version, when p renders to its very text (a set that
 * would change nothing, which the state machine would answer
 * PSTATE_UNCHANGED after journaling it), else 0. */
static u64 same_as_current(struct request *rq, const struct policy *p)
{
	char *text = NULL;
	size_t len = 0;
	u64 v = 0, cur = 0;
	struct pstate_version cv;

	if (policy_render(p, &text, &len) != 0)
		return 0;
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	if (pstate_current(ps, &cur) && pstate_version_get(ps, cur, &cv) &&
	    cv.text_len == len && memcmp(cv.text, text, len) == 0)
		v = cur;
	engine_read_end(rq->srv->e);
	free(text);
	return v;
}

static enum MHD_Result set_document(struct request *rq, const char *text,
				    size_t len, struct set_opts *so)
{
	struct policy *p = NULL, *cur = NULL;
	struct policy_err err;
	struct policy_impact *im = NULL;
	enum MHD_Result reply;
	json_t *extra = so->extra ? so->extra : json_object();
	char detail[256];
	u64 cur_version = 0;
	so->extra = NULL;
	int r = policy_parse(text, len, &p, &err);
	if (r == -ENOMEM)
		goto nomem;
	if (r != 0) {
		json_decref(extra);
		return reply_policy_err(rq, &err);
	}
	if (!reason_ok(so->reason, PSTATE_REASON_BYTES)) {
		reply = api_reply_problem(rq, PROBLEM_invalid_query,
					  "reason: at most 207 bytes, no "
					  "control characters",
					  "reason", NULL);
		goto done;
	}
	im = malloc(sizeof(*im));
	if (!im || impact_of(rq, p, &cur, &cur_version, im) != 0)
		goto nomem;
	double th = rq->srv->policy_blocked_share_max;
	bool over = policy_impact_over(im, th);
	json_t *ij = impact_json(im, th, cur_version);
	json_object_set_new(ij, "over_threshold", json_boolean(over));
	json_object_set_new(extra, "impact", ij);
	if (so->dry_run) {
		reply = dry_run_reply(rq, cur, p, cur_version, text, len,
				      extra);
		extra = NULL;
		goto done;
	}
	u64 same = same_as_current(rq, p);
	if (same) { /* nothing would change: answered, nothing journaled */
		json_t *o = json_pack("{s:I, s:s}", "version", (json_int_t)same,
				      "status", "unchanged");
		json_object_update(o, extra);
		reply = reply_jansson(rq, 200, o);
		goto done;
	}
	if (so->guarded && !so->accept_impact && over) {
		snprintf(detail, sizeof(detail),
			 "the document would newly block more than %g%% of "
			 "a platform's users active in the last %u days "
			 "(impact.platforms); confirm with "
			 "accept_impact=true",
			 100.0 * th, im->window_days);
		json_object_set_new(extra, "threshold", json_real(th));
		reply = reply_problem_with(rq, PROBLEM_policy_impact_too_high,
					   detail, extra);
		extra = NULL;
		goto done;
	}
	u32 padded = (u32)((len + 15) / 16 * 16);
	struct pstate_set h = {0};
	api_author_of(rq, h.author);
	h.rollback_of = so->rollback_of;
	h.text_bytes = (u32)len;
	if (so->reason)
		memcpy(h.reason, so->reason, strlen(so->reason));
	u8 me[32];
	bool dual = over || newly_blocks(im);
	if (dual && admin_rooted_caller(rq, me) &&
	    !admin_named_caller(rq, me)) {
		/* A power an administrator delegated requests nothing: the
		 * request must be the administrator's own (docs/authz.md). */
		reply = api_reply_problem(
			rq, PROBLEM_not_an_administrator,
			"a change that blocks active users: request it "
			"with a mandate of one link that a named "
			"administrator signed to itself",
			NULL, NULL);
		goto done;
	}
	if (dual && admin_named_caller(rq, me)) {
		/* Dual control: a named administrator's activation (a new
		 * document, a revert or a rollback) that blocks any active
		 * user the current document serves waits for a second one
		 * (docs/authz.md).  Any, not a share: a share can be lowered
		 * by adding users and reached in small steps, a count of
		 * users the gate saw cannot (an import never moves them). */
		u8 *set = calloc(1, sizeof(h) + padded);
		if (!set)
			goto nomem;
		memcpy(set, &h, sizeof(h));
		memcpy(set + sizeof(h), text, len);
		reply = admin_request_policy(rq, set, (u32)sizeof(h) + padded);
		free(set);
		goto done;
	}
	u8 *ext = api_command(rq, PSTATE_CMD_SET, (u32)sizeof(h) + padded, NULL,
			      0);
	if (!ext)
		goto nomem;
	memcpy(ext, &h, sizeof(h));
	memcpy(ext + sizeof(h), text, len);
	rq->eng.reply_extra = extra;
	extra = NULL;
	atomic_store(&rq->srv->policy_seen, true);
	reply = api_submit_command(rq, policy_command_reply);
	goto done;
nomem:
	reply = api_reply_problem(rq, PROBLEM_internal_error, "out of memory",
				  NULL, NULL);
done:
	json_decref(extra);
	free(im);
	policy_free(cur);
	policy_free(p);
	return reply;
}

/* ?name=true|false (absent: false).  false with the reply queued when
 * the value is neither. */
static bool arg_bool(struct request *rq, const char *name, bool *out,
		     enum MHD_Result *reply)
{
	const char *v = arg(rq, name);
	*out = v && strcmp(v, "true") == 0;
	if (!v || strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
		return true;
	*reply = api_reply_problem(rq, PROBLEM_invalid_query, "true or false",
				   name, NULL);
	return false;
}

static enum MHD_Result put_policy(struct request *rq)
{
	struct set_opts so = {.reason = arg(rq, "reason"), .guarded = true};
	enum MHD_Result reply;
	if (rq->body.over_budget)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "too many large requests at once; "
					 "retry",
					 NULL, NULL);
	if (rq->body.too_large || rq->body.len > POLICY_DOC_BYTES_MAX)
		return api_reply_problem(rq, PROBLEM_body_too_large,
					 "a policy document is at most 256 KiB",
					 NULL, NULL);
	if (rq->body.len == 0)
		return api_reply_problem(rq, PROBLEM_invalid_json,
					 "the body is the policy document",
					 NULL, NULL);
	if (!arg_bool(rq, "accept_impact", &so.accept_impact, &reply) ||
	    !arg_bool(rq, "dry_run", &so.dry_run, &reply))
		return reply;
	return set_document(rq, rq->body.data, rq->body.len, &so);
}

static json_t *version_meta(const struct pstate_version *v)
{
	char author[44];
	id_text(v->author, author);
	json_t *o = json_pack("{s:I, s:o, s:s}", "version",
			      (json_int_t)v->version, "set_at",
			      json_time((int64_t)(v->timestamp / 1000000000u)),
			      "author", author);
	if (v->reason[0])
		json_object_set_new(o, "reason", json_string(v->reason));
	if (v->rollback_of)
		json_object_set_new(o, "rollback_of",
				    json_integer((json_int_t)v->rollback_of));
	return o;
}

static enum MHD_Result get_version(struct request *rq, u64 v)
{
	struct pstate_version pv;
	bool nomem;
	/* The version is copied out under the read lock (its text too), and
	 * parsed and formatted after it. */
	char *text = version_text(rq, v, &pv, &nomem);
	if (nomem)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	if (!text)
		return api_reply_problem(rq, PROBLEM_policy_not_found,
					 v ? "no such version"
					   : "no policy has been set yet",
					 NULL, NULL);
	json_t *o = version_meta(&pv);
	json_t *doc = json_loadb(text, pv.text_len, 0, NULL);
	free(text);
	json_object_set_new(o, "document", doc ? doc : json_null());
	return reply_jansson(rq, 200, o);
}

enum MHD_Result policy_route_versions(struct request *rq)
{
	/* newest first, at most VERSIONS_LISTED: copied out under the read
	 * lock, formatted after it */
	struct pstate_version *pv = malloc(VERSIONS_LISTED * sizeof(*pv));
	u64 n, got = 0;
	if (!pv)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	n = pstate_version_count(ps);
	for (u64 v = n; v > 0 && n - v < VERSIONS_LISTED; v--)
		if (pstate_version_get(ps, v, &pv[got]))
			got++;
	engine_read_end(rq->srv->e);
	json_t *arr = json_array();
	for (u64 i = 0; i < got; i++)
		json_array_append_new(arr, version_meta(&pv[i]));
	free(pv);
	return reply_jansson(rq, 200,
			     json_pack("{s:I, s:o}", "current", (json_int_t)n,
				       "versions", arr));
}

static bool arg_u64(struct request *rq, const char *name, u64 *out)
{
	return parse_u64(arg(rq, name), UINT64_MAX, out) == 0;
}

/* The changes from version `from` to `to` as JSON (policy_diff): the
 * texts are copied under the read lock, parsed and compared after it.
 * *found false: a version does not exist.  NULL: out of memory. */
static json_t *diff_versions(struct request *rq, u64 from, u64 to, bool *found)
{
	struct pstate_version a, b;
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0;
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	*found = pstate_version_get(ps, from, &a) &&
		 pstate_version_get(ps, to, &b);
	if (*found) {
		ta = strndup(a.text, a.text_len);
		tb = strndup(b.text, b.text_len);
		la = a.text_len;
		lb = b.text_len;
	}
	engine_read_end(rq->srv->e);
	struct policy *pa = NULL, *pb = NULL;
	char *out = NULL;
	int r = ta && tb ? policy_parse(ta, la, &pa, NULL) : -ENOMEM;
	if (r == 0)
		r = policy_parse(tb, lb, &pb, NULL);
	if (r == 0)
		r = policy_diff(pa, pb, &out, NULL);
	free(ta);
	free(tb);
	policy_free(pa);
	policy_free(pb);
	json_t *changes = r == 0 && out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	return changes;
}

char *policy_held_members(struct request *rq, const char *text, size_t len)
{
	struct pstate_version cv;
	char *ct = NULL, *out = NULL;
	size_t cl = 0;
	u64 cur = 0;
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	if (pstate_current(ps, &cur) && pstate_version_get(ps, cur, &cv)) {
		ct = strndup(cv.text, cv.text_len);
		cl = cv.text_len;
	}
	engine_read_end(rq->srv->e);
	struct policy *pc = NULL, *pn = NULL;
	json_t *changes = NULL;
	if (ct && policy_parse(ct, cl, &pc, NULL) == 0 &&
	    policy_parse(text, len, &pn, NULL) == 0 &&
	    policy_diff(pc, pn, &out, NULL) == 0 && out)
		changes = json_loads(out, 0, NULL);
	free(out);
	free(ct);
	policy_free(pc);
	policy_free(pn);
	json_t *o = json_object();
	json_t *doc = json_loadb(text, len, 0, NULL);
	json_object_set_new(o, "document", doc ? doc : json_null());
	json_object_set_new(o, "changes", changes ? changes : json_null());
	json_object_set_new(o, "current_version",
			    cur ? json_integer((json_int_t)cur) : json_null());
	char *members = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return members;
}

enum MHD_Result policy_route_diff(struct request *rq)
{
	u64 from, to;
	bool found;
	if (!arg_u64(rq, "from", &from) || !arg_u64(rq, "to", &to))
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "from and to are version numbers",
					 NULL, NULL);
	json_t *changes = diff_versions(rq, from, to, &found);
	if (!found)
		return api_reply_problem(rq, PROBLEM_policy_not_found,
					 "no such version", NULL, NULL);
	if (!changes)
		return api_reply_problem(rq, PROBLEM_internal_error, NULL, NULL,
					 NULL);
	return reply_jansson(rq, 200,
			     json_pack("{s:I, s:I, s:o}", "from",
				       (json_int_t)from, "to", (json_int_t)to,
				       "changes", changes));
}

/* A small request body whose members are among names (NULL-ended; all
 * optional here), or NULL with the reply: 400 unknown-field naming any
 * other member, the detail listing them. */
static json_t *body_members(struct request *rq, const char *const *names,
			    const char *detail, enum MHD_Result *reply)
{
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, reply);
	const char *k;
	json_t *x;
	if (!j)
		return NULL;
	json_object_foreach(j, k, x)
	{
		size_t i = 0;
		while (names[i] && strcmp(k, names[i]))
			i++;
		if (!names[i]) {
			/* k lives in j: reply before letting go of it */
			*reply = api_reply_problem(rq, PROBLEM_unknown_field,
						   detail, k, NULL);
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

/* The "version" member: a version number, or 0 with the reply queued. */
static u64 body_version(struct request *rq, json_t *j, enum MHD_Result *reply)
{
	json_t *v = json_object_get(j, "version");
	if (json_is_integer(v) && json_integer_value(v) >= 1)
		return (u64)json_integer_value(v);
	*reply = api_reply_problem(rq, PROBLEM_invalid_field,
				   "a version number (1, 2, ...)", "version",
				   NULL);
	return 0;
}

static enum MHD_Result reply_bad_reason(struct request *rq)
{
	return api_reply_problem(rq, PROBLEM_invalid_field,
				 "at most 207 bytes, no control characters",
				 "reason", NULL);
}

enum MHD_Result policy_route_rollback(struct request *rq)
{
	static const char *const names[] = {"version", "reason", NULL};
	enum MHD_Result reply;
	json_t *j = body_members(rq, names, "members are version and reason",
				 &reply);
	if (!j)
		return reply;
	u64 target = body_version(rq, j, &reply);
	const char *reason = json_string_value(json_object_get(j, "reason"));
	struct pstate_version pv;
	char *text = NULL;
	bool nomem = false;
	if (target)
		text = version_text(rq, target, &pv, &nomem);
	if (!target || nomem || !text) {
		json_decref(j);
		return !target ? reply
		       : nomem ? api_reply_problem(rq, PROBLEM_internal_error,
						   "out of memory", NULL, NULL)
			       : api_reply_problem(rq, PROBLEM_policy_not_found,
						   "no such version", "version",
						   NULL);
	}
	if (!reason_ok(reason, PSTATE_REASON_BYTES)) {
		json_decref(j);
		free(text);
		return reply_bad_reason(rq);
	}
	char reason_buf[PSTATE_REASON_BYTES];
	snprintf(reason_buf, sizeof(reason_buf), "%s", reason ? reason : "");
	json_decref(j);
	struct set_opts so = {.rollback_of = target,
			      .reason = reason_buf[0] ? reason_buf : NULL};
	enum MHD_Result r = set_document(rq, text, pv.text_len, &so);
	free(text);
	return r;
}

/* The texts a revert of version n merges: n - 1's (NULL for n = 1), n's
 * and the current one, copied under one read lock.  false: no version
 * n (or out of memory: *nomem). */
struct revert_texts {
	char *base, *theirs, *ours;
	size_t base_len, theirs_len, ours_len;
	u64 current;
};

static bool revert_texts(struct request *rq, u64 n, struct revert_texts *t,
			 bool *nomem)
{
	struct pstate_version a, b, c;
	memset(t, 0, sizeof(*t));
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	t->current = pstate_version_count(ps);
	bool found = pstate_version_get(ps, n, &b) &&
		     pstate_version_get(ps, t->current, &c) &&
		     (n == 1 || pstate_version_get(ps, n - 1, &a));
	if (found) {
		t->theirs = strndup(b.text, t->theirs_len = b.text_len);
		t->ours = strndup(c.text, t->ours_len = c.text_len);
		if (n > 1)
			t->base = strndup(a.text, t->base_len = a.text_len);
	}
	engine_read_end(rq->srv->e);
	*nomem = found && (!t->theirs || !t->ours || (n > 1 && !t->base));
	return found;
}

static void revert_texts_free(struct revert_texts *t)
{
	free(t->base);
	free(t->theirs);
	free(t->ours);
}

/* POST /v1/client-policy/revert {"version": N, "reason"?,
 * "accept_impact"?, "dry_run"?}: undo version N's change on top of the
 * current document (core/policy_revert.h), set as a new version through
 * the impact guard. */
enum MHD_Result policy_route_revert(struct request *rq)
{
	static const char *const names[] = {"version", "reason",
					    "accept_impact", "dry_run", NULL};
	enum MHD_Result reply;
	json_t *j = body_members(rq, names,
				 "members are version, reason, accept_impact "
				 "and dry_run",
				 &reply);
	if (!j)
		return reply;
	u64 n = body_version(rq, j, &reply);
	json_t *why = json_object_get(j, "reason");
	json_t *acc = json_object_get(j, "accept_impact");
	json_t *dry = json_object_get(j, "dry_run");
	const char *reason = json_string_value(why);
	char reason_buf[PSTATE_REASON_BYTES];
	int k = snprintf(reason_buf, sizeof(reason_buf),
			 "revert of version %llu%s%s", (unsigned long long)n,
			 reason ? ": " : "", reason ? reason : "");
	struct set_opts so = {.reason = reason_buf,
			      .guarded = true,
			      .accept_impact = json_is_true(acc),
			      .dry_run = json_is_true(dry)};
	if (!n) {
		json_decref(j);
		return reply;
	}
	if ((why && (!reason || !reason[0])) ||
	    !reason_ok(reason, PSTATE_REASON_BYTES) || k < 0 ||
	    (size_t)k >= sizeof(reason_buf)) {
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "1 byte or more, no control "
					 "characters, and with \"revert of "
					 "version N: \" at most 207 bytes",
					 "reason", NULL);
	}
	if ((acc && !json_is_boolean(acc)) || (dry && !json_is_boolean(dry))) {
		const char *field = acc && !json_is_boolean(acc)
					    ? "accept_impact"
					    : "dry_run";
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "true or false", field, NULL);
	}
	json_decref(j);

	struct revert_texts t;
	struct policy_revert rv;
	bool nomem;
	if (!revert_texts(rq, n, &t, &nomem)) {
		revert_texts_free(&t);
		return api_reply_problem(rq, PROBLEM_policy_not_found,
					 "no such version", "version", NULL);
	}
	int r = nomem ? -ENOMEM
		      : policy_revert(t.base, t.base_len, t.theirs,
				      t.theirs_len, t.ours, t.ours_len, &rv);
	u64 current = t.current;
	revert_texts_free(&t);
	if (r != 0)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 r == -ENOMEM ? "out of memory"
						      : "a stored document "
							"does not load",
					 NULL, NULL);
	if (rv.nconflicts) {
		char detail[160];
		json_t *paths = json_array();
		for (u32 i = 0;
		     i < rv.nconflicts && i < POLICY_REVERT_CONFLICTS_MAX; i++)
			json_array_append_new(paths,
					      json_string(rv.conflicts[i]));
		snprintf(detail, sizeof(detail),
			 "a later version changed again what version %llu "
			 "changed (conflicts); revert those first, or set a "
			 "document",
			 (unsigned long long)n);
		return reply_problem_with(
			rq, PROBLEM_policy_revert_conflict, detail,
			json_pack("{s:I, s:I, s:I, s:o}", "version",
				  (json_int_t)n, "current", (json_int_t)current,
				  "conflict_count", (json_int_t)rv.nconflicts,
				  "conflicts", paths));
	}
	struct policy *merged = NULL;
	struct policy_err err;
	r = policy_parse(rv.text, rv.len, &merged, &err);
	policy_free(merged);
	if (r != 0) {
		char detail[POLICY_ERR_MSG_BYTES + 96];
		free(rv.text);
		if (r == -ENOMEM)
			return api_reply_problem(rq, PROBLEM_internal_error,
						 "out of memory", NULL, NULL);
		snprintf(detail, sizeof(detail),
			 "reverting version %llu gives a document that is not "
			 "valid: %s",
			 (unsigned long long)n, err.msg);
		return api_reply_problem(rq, PROBLEM_invalid_policy, detail,
					 err.path[0] ? err.path : NULL, NULL);
	}
	so.extra = json_pack("{s:I}", "reverted", (json_int_t)n);
	enum MHD_Result res = set_document(rq, rv.text, rv.len, &so);
	free(rv.text);
	return res;
}

/* ---- evaluate and the signed manifest -------------------------------- */

static void query_from_args(struct request *rq, struct policy_query *q,
			    char *cv, size_t cv_cap)
{
	const char *platform = arg(rq, "platform");
	const char *version = arg(rq, "version");
	memset(q, 0, sizeof(*q));
	cv[0] = '\0';
	if (platform)
		snprintf(cv, cv_cap, "%s%s%s", platform, version ? "/" : "",
			 version ? version : "");
	if (cv[0])
		policy_query_set_client_version(q, cv, strlen(cv));
	q->channel = arg(rq, "channel");
	q->country = arg(rq, "country");
	q->user = arg(rq, "user");
	q->languages = arg(rq, "lang");
	if (!q->languages)
		q->languages = MHD_lookup_connection_value(
			rq->conn, MHD_HEADER_KIND, "Accept-Language");
	q->now_s = now_s();
}

/* The earliest change after q->now_s the server knows of for q's
 * platform (read lock held): one the document schedules (a sunset, a
 * notice's start or end) or an override's start or end.
 * POLICY_TIME_NONE when none. */
static int64_t next_change_locked(struct api_server *s, const struct policy *p,
				  const struct policy_query *q)
{
	char platform[POLICY_NAME_MAX + 1] = "";
	if (q->platform && q->platform_len <= POLICY_NAME_MAX) {
		memcpy(platform, q->platform, q->platform_len);
		platform[q->platform_len] = '\0';
	}
	size_t n;
	const struct policy_override *ov =
		pstate_overrides_live(engine_pstate(s->e), &n);
	return policy_next_change(p, platform, ov, n, q->now_s);
}

/*
 * Signed manifests of the current second, by what they say: identical
 * queries within one second (a fleet of apps on one version, or one
 * caller repeating itself) cost one signature, not one each; with keys
 * sealed by or kept in a PKCS#11 token, one token operation each (the
 * sixth review).  Ed25519 is deterministic and the key that signs now is
 * part of the cache's key, so a hit is the very bytes a new signature
 * would give.
 * Direct-mapped, MANIFEST_CACHE_SLOTS slots, each its JWS.
 */
#define MANIFEST_CACHE_SLOTS 64u

struct manifest_slot {
	int64_t at;
	u8 hash[crypto_generichash_BYTES];
	char *jws;
	size_t len;
};

static pthread_mutex_t manifest_lock = PTHREAD_MUTEX_INITIALIZER;
static struct manifest_slot manifest_slots[MANIFEST_CACHE_SLOTS];

/* The claims as signed, for the key of the cache (NULL: out of memory). */
static bool manifest_hash(const struct keyring *kr, int64_t now, json_t *o,
			  u8 hash[crypto_generichash_BYTES])
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	crypto_generichash_state st;
	uintptr_t who = (uintptr_t)kr;
	struct keyring_key k;

	/* The key that signs now: a rotation is seen at once. */
	if (!text || keyring_current_copy(kr, now, &k) != 0) {
		free(text);
		return false;
	}
	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&st, (const u8 *)k.kid, strlen(k.kid));
	crypto_generichash_update(&st, (const u8 *)&who, sizeof(who));
	crypto_generichash_update(&st, (const u8 *)&now, sizeof(now));
	crypto_generichash_update(&st, (const u8 *)text, strlen(text));
	crypto_generichash_final(&st, hash, crypto_generichash_BYTES);
	free(text);
	return true;
}

/* Copy the cached JWS for hash at now into out; its length or 0. */
static size_t manifest_cached(const u8 *hash, int64_t now, char *out,
			      size_t cap)
{
	struct manifest_slot *s =
		&manifest_slots[hash[0] % MANIFEST_CACHE_SLOTS];
	size_t len = 0;

	pthread_mutex_lock(&manifest_lock);
	if (s->jws && s->at == now && s->len < cap &&
	    memcmp(s->hash, hash, sizeof(s->hash)) == 0) {
		memcpy(out, s->jws, s->len);
		len = s->len;
	}
	pthread_mutex_unlock(&manifest_lock);
	return len;
}

static void manifest_keep(const u8 *hash, int64_t now, const char *jws,
			  size_t len)
{
	char *copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, jws, len);
	struct manifest_slot *s =
		&manifest_slots[hash[0] % MANIFEST_CACHE_SLOTS];
	pthread_mutex_lock(&manifest_lock);
	char *old = s->jws;
	s->jws = copy;
	s->len = len;
	s->at = now;
	memcpy(s->hash, hash, sizeof(s->hash));
	pthread_mutex_unlock(&manifest_lock);
	free(old);
}

static enum MHD_Result evaluate(struct request *rq, bool signed_manifest)
{
	char cv[SEMVER_TEXT_MAX + 64];
	struct policy_query q;
	struct policy_decision d;
	u64 version;
	if (!arg(rq, "platform"))
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "platform is required (and version, "
					 "channel, country, user, lang may be "
					 "given)",
					 "platform", NULL);
	query_from_args(rq, &q, cv, sizeof(cv));
	/* The decision points into the policy, which lives only as long as
	 * the read lock: its texts are copied into a JSON tree of its own
	 * under the lock, serialized (and signed) after it, like the gate's
	 * refusal (blocked_json). */
	engine_read_begin(rq->srv->e);
	const struct policy *p = evaluate_locked(rq->srv, &q, &d, &version);
	json_t *o = decision_json(p, &d, version);
	int64_t next = signed_manifest ? next_change_locked(rq->srv, p, &q)
				       : POLICY_TIME_NONE;
	engine_read_end(rq->srv->e);
	json_object_set_new(o, "platform", json_string(arg(rq, "platform")));
	if (arg(rq, "version"))
		json_object_set_new(o, "version",
				    json_string(arg(rq, "version")));
	if (!signed_manifest)
		return reply_jansson(rq, 200, o);

	struct keyring *kr = rq->srv->keyring;
	if (!kr) {
		json_decref(o);
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "no keyring loaded", NULL, NULL);
	}
	/* Valid until the first change the server knows of, at most the
	 * configured maximum; a cache keeps it no longer (a credentialed
	 * one is the caller's alone). */
	int64_t now = q.now_s;
	int64_t exp = now + (int64_t)rq->srv->manifest_ttl_max_s;
	if (next != POLICY_TIME_NONE && next < exp)
		exp = next;
	snprintf(rq->gate.cache_control, sizeof(rq->gate.cache_control),
		 "%s, max-age=%lld",
		 rq->auth.caller.authenticated ? "private" : "public",
		 (long long)(exp - now));
	json_object_set_new(
		o, "iss",
		json_string(rq->srv->origin ? rq->srv->origin : "tpwallet"));
	json_object_set_new(o, "iat", json_integer(now));
	json_object_set_new(o, "exp", json_integer(exp));
	if (q.user)
		json_object_set_new(o, "sub", json_string(q.user));
	char *out = malloc(KEYRING_JWS_BYTES_MAX + 1);
	size_t len = 0;
	u8 hash[crypto_generichash_BYTES];
	bool hashed = out && manifest_hash(kr, now, o, hash);
	if (hashed)
		len = manifest_cached(hash, now, out,
				      KEYRING_JWS_BYTES_MAX + 1);
	bool hit = len > 0;
	int r = !out  ? -ENOMEM
		: hit ? 0
		      : keyring_sign_jwt(kr, now, "tpwallet-client-policy+jwt",
					 o, out, KEYRING_JWS_BYTES_MAX + 1,
					 &len);
	if (r == 0 && hashed && !hit)
		manifest_keep(hash, now, out, len);
	json_decref(o);
	if (r != 0) {
		free(out);
		return api_reply_sign_failed(rq, r, "the manifest");
	}
	struct wbuf b = WBUF_INIT(len + 1);
	wbuf_put(&b, out, len);
	free(out);
	return api_reply(rq, 200, &b, "application/jwt", NULL);
}

/* ---- overrides ---------------------------------------------------------- */

/* The newest extensions of an override the routes show. */
#define OVERRIDE_EXTENSIONS_SHOWN 8

/* Who did something, as the decoded audit view names an author. */
struct person {
	u8 id[32];
	bool named;
	char name[AUTH_NAME_BYTES + 1];
};

/* An override copied out of the state (read lock held), its command,
 * who ended it and its newest extensions with it: formatted once the
 * lock is released. */
struct override_copy {
	struct pstate_override_info info;
	struct pstate_override_cmd cmd;
	struct person ended_by;
	u32 shown; /* ext[0] the newest */
	struct {
		struct pstate_extension x;
		struct person by;
	} ext[OVERRIDE_EXTENSIONS_SHOWN];
};

static void person_copy(const struct auth *a, const u8 id[32], struct person *p)
{
	struct auth_principal_info pi;

	memcpy(p->id, id, 32);
	p->named = auth_principal_get(a, id, &pi);
	if (p->named)
		memcpy(p->name, pi.name, sizeof(p->name));
}

static json_t *person_json(const struct person *p)
{
	static const u8 zero[32];
	char tp[44];

	if (memcmp(p->id, zero, 32) == 0)
		return json_pack("{s:s}", "name", "administrator");
	b64url_encode(tp, sizeof(tp), p->id, 32);
	json_t *o = json_object();
	if (p->named)
		json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "thumbprint", json_string(tp));
	return o;
}

/* Read lock held: the state's pointers are copied, never kept. */
static void override_copy(struct engine *e,
			  const struct pstate_override_info *o,
			  struct override_copy *c)
{
	const struct pstate *ps = engine_pstate(e);
	const struct auth *a = engine_auth(e);
	u64 h = o->last_extension;

	c->info = *o;
	c->cmd = *o->cmd;
	c->info.cmd = &c->cmd;
	if (o->end_timestamp)
		person_copy(a, o->end_author, &c->ended_by);
	for (c->shown = 0; c->shown < OVERRIDE_EXTENSIONS_SHOWN &&
			   pstate_extension_get(ps, h, &c->ext[c->shown].x);
	     c->shown++) {
		person_copy(a, c->ext[c->shown].x.author, &c->ext[c->shown].by);
		h = c->ext[c->shown].x.prev;
	}
}

static json_t *text_or_null(const char *t)
{
	return t[0] ? json_string(t) : json_null();
}

static json_t *override_json(const struct override_copy *c, int64_t now)
{
	const struct pstate_override_info *o = &c->info;
	char author[44];
	id_text(o->cmd->author, author);
	bool active = o->not_before_s <= now && now < o->expires_at_s;
	json_t *j = json_pack(
		"{s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:b, s:b}",
		"id", (json_int_t)o->id, "platform", o->cmd->platform, "range",
		o->cmd->range, "mode",
		o->cmd->mode == POLICY_OVERRIDE_ALLOW ? "allow" : "compat",
		"duration_s", (json_int_t)o->cmd->duration_s, "reason",
		o->cmd->reason, "author", author, "opened_at",
		json_time((int64_t)(o->timestamp / 1000000000u)), "starts_at",
		json_time(o->not_before_s), "expires_at",
		json_time(o->expires_at_s), "active", active, "ended_early",
		o->ended_early);
	/* What the users are told (kind 20): the message map as given
	 * (canonical), the expected end. */
	json_t *m = o->message ? json_loadb(o->message, o->message_len, 0, NULL)
			       : NULL;
	if (j && m)
		json_object_set_new(j, "message", m);
	else
		json_decref(m);
	if (j && o->expected_end_s != POLICY_TIME_NONE)
		json_object_set_new(j, "expected_end",
				    json_time(o->expected_end_s));
	/* Who ended it and why (unknown for an end older than the state's
	 * snapshot format 2: null), when it expired, its extensions. */
	bool end_known = o->ended_early && o->end_timestamp;
	json_object_set_new(j, "ended_by",
			    end_known ? person_json(&c->ended_by)
				      : json_null());
	json_object_set_new(j, "end_reason",
			    end_known ? text_or_null(o->end_reason)
				      : json_null());
	json_object_set_new(j, "expired_at",
			    o->expired_timestamp ? json_time(o->expires_at_s)
						 : json_null());
	json_t *xs = json_array();
	for (u32 i = c->shown; i-- > 0;) {
		const struct pstate_extension *x = &c->ext[i].x;
		json_array_append_new(
			xs, json_pack("{s:o, s:o, s:I, s:o, s:o}", "at",
				      json_time((int64_t)(x->timestamp /
							  1000000000u)),
				      "by", person_json(&c->ext[i].by),
				      "duration_s", (json_int_t)x->duration_s,
				      "expires_at", json_time(x->expires_at_s),
				      "reason", text_or_null(x->reason)));
	}
	json_object_set_new(j, "extensions", xs);
	return j;
}

static enum MHD_Result get_overrides(struct request *rq, u64 only_id)
{
	const char *all = arg(rq, "all");
	bool every = all && strcmp(all, "true") == 0;
	int64_t now = now_s();
	/* A page: at most `limit` (1..OVERRIDES_LISTED) overrides, newest
	 * first, with ids below `before`; each may be some 9 KB of JSON,
	 * so a page bounds what one request makes the server hold. */
	u64 limit = OVERRIDES_LISTED, before = UINT64_MAX;
	if (!only_id && arg(rq, "limit") &&
	    (!arg_u64(rq, "limit", &limit) || limit < 1 ||
	     limit > OVERRIDES_LISTED))
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "limit: 1 to " OVERRIDES_LISTED_TEXT,
					 "limit", NULL);
	if (!only_id && arg(rq, "before") &&
	    (!arg_u64(rq, "before", &before) || before < 1))
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "before: an override id (1 or more)",
					 "before", NULL);
	bool has_next = false;
	/* Sized to what is shown (each copy is some 4 KB): one, or grown
	 * as the listed ones are found, up to OVERRIDES_LISTED. */
	struct override_copy *oc = NULL;
	u32 got = 0, cap = 0;
	bool oom = false;
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	u64 n = pstate_override_count(ps);
	for (u64 i = n; i-- > 0;) {
		struct pstate_override_info o;
		pstate_override_at(ps, i, &o);
		if (only_id ? o.id != only_id
			    : o.id >= before ||
				      (!every && !(o.not_before_s <= now &&
						   now < o.expires_at_s)))
			continue;
		if (!only_id && got == limit) {
			has_next =
				true; /* one more than the page: a next one */
			break;
		}
		if (got == cap) {
			u32 want =
				only_id ? 1
				: cap ? (cap * 2 < limit ? cap * 2 : (u32)limit)
				      : (limit < 16 ? (u32)limit : 16);
			struct override_copy *more =
				realloc(oc, want * sizeof(*oc));
			if (!more) {
				oom = true;
				break;
			}
			oc = more;
			cap = want;
			for (u32 k = 0; k < got; k++) /* moved: point again */
				oc[k].info.cmd = &oc[k].cmd;
		}
		override_copy(rq->srv->e, &o, &oc[got++]);
		if (only_id)
			break;
	}
	engine_read_end(rq->srv->e);
	if (oom) {
		free(oc);
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	}
	if (only_id) {
		json_t *one = got ? override_json(&oc[0], now) : NULL;
		free(oc);
		if (!one)
			return api_reply_problem(rq, PROBLEM_policy_not_found,
						 "no such override", NULL,
						 NULL);
		return reply_jansson(rq, 200, one);
	}
	json_t *arr = json_array();
	for (u32 i = 0; i < got; i++)
		json_array_append_new(arr, override_json(&oc[i], now));
	json_t *o = json_pack("{s:o}", "overrides", arr);
	if (has_next) { /* the next page: older ones, below the last shown */
		char next[128];
		snprintf(next, sizeof(next),
			 "/v1/client-policy/overrides?%sbefore=%llu&limit=%llu",
			 every ? "all=true&" : "",
			 (unsigned long long)oc[got - 1].info.id,
			 (unsigned long long)limit);
		json_object_set_new(o, "next", json_string(next));
	}
	free(oc);
	return reply_jansson(rq, 200, o);
}

/* The guard rail (issue 11, item 5): an override that the current
 * policy gives nothing to relax is refused with the reason
 * (core/policy.h, policy_override_fit).  The state machine does not
 * check it, so overrides already journaled replay as they were. */
static bool override_refused(struct request *rq,
			     const struct policy_override *o,
			     enum MHD_Result *reply)
{
	char detail[512];
	u64 v = 0;
	engine_read_begin(rq->srv->e);
	const struct policy *p = pstate_current(engine_pstate(rq->srv->e), &v);
	enum policy_override_fit fit = policy_override_fit(p, o);
	if (fit == POLICY_OVERRIDE_NO_PLATFORM) {
		int n = snprintf(detail, sizeof(detail),
				 "platform: %s is not in client policy version "
				 "%llu (it names:",
				 o->platform, (unsigned long long)v);
		for (u16 i = 0;
		     i < p->nplatforms && n > 0 && (size_t)n < sizeof(detail);
		     i++)
			n += snprintf(detail + n, sizeof(detail) - (size_t)n,
				      " %s", p->platforms[i].name);
		if (n > 0 && (size_t)n < sizeof(detail))
			snprintf(detail + n, sizeof(detail) - (size_t)n, ")");
	}
	engine_read_end(rq->srv->e);
	switch (fit) {
	case POLICY_OVERRIDE_FITS: return false;
	case POLICY_OVERRIDE_NO_POLICY:
		*reply = api_reply_problem(
			rq, PROBLEM_override_unknown_platform,
			"platform: no client policy is set, so no platform "
			"is configured and nothing is blocked",
			"platform", NULL);
		return true;
	case POLICY_OVERRIDE_NO_PLATFORM:
		*reply =
			api_reply_problem(rq, PROBLEM_override_unknown_platform,
					  detail, "platform", NULL);
		return true;
	case POLICY_OVERRIDE_NOTHING_BLOCKED:
		snprintf(detail, sizeof(detail),
			 "platform: %s has no blocked range, min_supported or "
			 "deprecation with a sunset in client policy version "
			 "%llu, on any level",
			 o->platform, (unsigned long long)v);
		*reply = api_reply_problem(rq, PROBLEM_override_relaxes_nothing,
					   detail, "platform", NULL);
		return true;
	default:
		snprintf(detail, sizeof(detail),
			 "range: %s meets no blocked range, version below "
			 "min_supported or deprecation with a sunset of %s in "
			 "client policy version %llu, on any level",
			 o->range_text, o->platform, (unsigned long long)v);
		*reply = api_reply_problem(rq, PROBLEM_override_relaxes_nothing,
					   detail, "range", NULL);
		return true;
	}
}

/* What an override request tells the users (issue 11): "message", a
 * localised text (core/policy.h, policy_message_parse), and
 * "expected_end", an RFC 3339 time after now; both optional.  Taken out
 * of j: the rest is policy_override_parse's.  *json (canonical, malloc'd)
 * and *expected_end_s (0: not said) on success. */
static int override_extras(json_t *j, char **json, size_t *json_len,
			   int64_t *expected_end_s, struct policy_err *err)
{
	json_t *m = json_object_get(j, "message");
	json_t *e = json_object_get(j, "expected_end");
	int ret = 0;

	*json = NULL;
	*json_len = 0;
	*expected_end_s = 0;
	if (e) {
		const char *t = json_string_value(e);
		const char *why =
			t ? policy_parse_time(t, json_string_length(e),
					      expected_end_s)
			  : "not a string";
		if (!why && *expected_end_s <= now_s())
			why = "not in the future";
		if (why) {
			snprintf(err->path, sizeof(err->path), "expected_end");
			snprintf(err->msg, sizeof(err->msg), "expected_end: %s",
				 why);
			return -EINVAL;
		}
		json_object_del(j, "expected_end");
	}
	if (!m)
		return 0;
	char *text = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
	struct policy_message *pm = NULL;
	ret = text ? policy_message_parse(text, strlen(text), &pm, err)
		   : -ENOMEM;
	free(text);
	if (ret == 0)
		ret = policy_message_render(pm, json, json_len);
	policy_message_free(pm);
	if (ret == 0 && *json_len > POLICY_MESSAGE_BYTES_MAX) {
		free(*json);
		*json = NULL;
		snprintf(err->path, sizeof(err->path), "message");
		snprintf(err->msg, sizeof(err->msg),
			 "message: longer than %d bytes",
			 POLICY_MESSAGE_BYTES_MAX);
		return -E2BIG;
	}
	if (ret == 0)
		json_object_del(j, "message");
	return ret;
}

/* The record that opens an override, for the caller to fill: kind 17
 * as before when there is nothing for the users, else kind 20 with the
 * message (msg_len bytes, 0: none) and the expected end (0: none).  NULL
 * when out of memory. */
static struct pstate_override_cmd *override_command(struct request *rq,
						    const char *msg,
						    size_t msg_len,
						    int64_t expected_end_s)
{
	if (!msg_len && !expected_end_s)
		return api_command(rq, PSTATE_CMD_OVERRIDE,
				   sizeof(struct pstate_override_cmd), NULL, 0);
	u32 padded = (u32)(msg_len + 15) / 16 * 16;
	struct pstate_override_2 *c = api_command(
		rq, PSTATE_CMD_OVERRIDE_2, (u32)sizeof(*c) + padded, NULL, 0);
	if (!c)
		return NULL;
	c->expected_end_s = expected_end_s;
	c->message_bytes = (u32)msg_len;
	if (msg_len)
		memcpy((char *)c + sizeof(*c), msg, msg_len);
	return &c->base;
}

static enum MHD_Result post_override(struct request *rq)
{
	enum MHD_Result reply;
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, &reply);
	if (!j)
		return reply;
	/* Validate exactly as the state machine will (policy.c). */
	struct policy_override o;
	struct policy_err err;
	char *msg = NULL;
	size_t msg_len = 0;
	int64_t expected_end_s = 0;
	int r = override_extras(j, &msg, &msg_len, &expected_end_s, &err);
	char *text = r == 0 ? json_dumps(j, JSON_COMPACT) : NULL;
	if (r == 0)
		r = text ? policy_override_parse(text, strlen(text), now_s(),
						 &o, &err)
			 : -ENOMEM;
	free(text);
	json_t *dur = json_object_get(j, "duration_s");
	u64 duration = json_is_integer(dur) ? (u64)json_integer_value(dur) : 0;
	json_decref(j);
	struct pstate_override_cmd *c = NULL;
	if (r == 0 && override_refused(rq, &o, &reply)) {
		free(msg);
		return reply;
	}
	if (r == 0 && !(c = override_command(rq, msg, msg_len, expected_end_s)))
		r = -ENOMEM;
	free(msg);
	if (r == -ENOMEM)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	if (r != 0)
		return reply_policy_err(rq, &err);
	api_author_of(rq, c->author);
	snprintf(c->platform, sizeof(c->platform), "%s", o.platform);
	snprintf(c->range, sizeof(c->range), "%s", o.range_text);
	snprintf(c->reason, sizeof(c->reason), "%s", o.reason);
	c->mode = o.mode;
	c->duration_s = (u32)duration;
	log_at(LOG_WARN, "client-policy override opened",
	       LOG_STR("platform", o.platform), LOG_STR("range", o.range_text),
	       LOG_NUM("duration_s", duration));
	return api_submit_command(rq, policy_command_reply);
}

/* The refusals of an extension, before it is journaled or after. */
#define EXTEND_ENDED                                                           \
	"an ended or expired override cannot be extended: open a new one"
#define EXTEND_NOT_LATER                                                       \
	"duration_s: now + duration_s is not later than the override's end "   \
	"(an extension never shortens it: end it instead)"

#define END_ENDED                                                              \
	"the override has already ended or expired (GET "                      \
	"/v1/client-policy/overrides/{id} says when, and who ended it)"

/* Where override id stands now, read under the state lock (the state
 * machine decides again when the command is applied; this refuses the
 * common cases before anything is journaled, so a refused request adds
 * no audit entry).  false when there is no such override. */
static bool override_expiry(struct request *rq, u64 id, int64_t *expires_at_s)
{
	struct pstate_override_info info;
	bool found = false;

	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	if (id >= 1 && id <= pstate_override_count(ps)) {
		pstate_override_at(ps, id - 1, &info);
		*expires_at_s = info.expires_at_s;
		found = true;
	}
	engine_read_end(rq->srv->e);
	return found;
}

static enum MHD_Result delete_override(struct request *rq)
{
	const char *reason = arg(rq, "reason");
	int64_t expires_at_s;

	/* The query first, as before the existence check was added. */
	if (!reason_ok(reason, PSTATE_REASON_BYTES))
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "reason: at most 207 bytes, no "
					 "control characters",
					 "reason", NULL);
	if (!override_expiry(rq, (u64)rq->path_id, &expires_at_s))
		return api_reply_problem(rq, PROBLEM_policy_not_found, NULL,
					 NULL, NULL);
	/* Ended or expired already: refused, and nothing journaled (an
	 * entry would say it was ended again, by someone else, for
	 * another reason; outside review, issue 11). */
	if (expires_at_s <= now_s())
		return api_reply_problem(rq, PROBLEM_override_ended, END_ENDED,
					 NULL, NULL);
	struct pstate_override_end *e =
		api_command(rq, PSTATE_CMD_OVERRIDE_END, sizeof(*e), NULL, 0);
	if (!e)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	api_author_of(rq, e->author);
	e->id = (u64)rq->path_id;
	if (reason)
		memcpy(e->reason, reason, strlen(reason));
	return api_submit_command(rq, policy_command_reply);
}

/* POST .../overrides/{id}/extend {"duration_s", "reason"?}: in force
 * until now + duration_s (a journal command: PSTATE_CMD_OVERRIDE_EXTEND). */
enum MHD_Result policy_route_override_extend(struct request *rq)
{
	static const char *const names[] = {"duration_s", "reason", NULL};
	enum MHD_Result reply;
	json_t *j = body_members(rq, names, "members are duration_s and reason",
				 &reply);
	if (!j)
		return reply;
	json_t *d = json_object_get(j, "duration_s");
	json_t *why = json_object_get(j, "reason");
	json_int_t dur = json_is_integer(d) ? json_integer_value(d) : 0;
	const char *reason = json_string_value(why);
	bool reason_good = !why || (reason && reason[0] &&
				    reason_ok(reason, PSTATE_REASON_BYTES));
	struct pstate_override_extend *e = NULL;
	int64_t expires_at_s = 0;
	bool found = override_expiry(rq, (u64)rq->path_id, &expires_at_s);
	int64_t now = now_s();
	if (dur < POLICY_OVERRIDE_MIN_S || dur > POLICY_OVERRIDE_MAX_S)
		reply = api_reply_problem(rq, PROBLEM_invalid_field,
					  "an integer from 60 to 604800 (7 "
					  "days): how long from now",
					  "duration_s", NULL);
	else if (!reason_good)
		reply = api_reply_problem(rq, PROBLEM_invalid_field,
					  "1 to 207 bytes, no control "
					  "characters",
					  "reason", NULL);
	else if (!found)
		reply = api_reply_problem(rq, PROBLEM_policy_not_found, NULL,
					  NULL, NULL);
	else if (expires_at_s <= now)
		reply = api_reply_problem(rq, PROBLEM_override_ended,
					  EXTEND_ENDED, NULL, NULL);
	else if (now + dur <= expires_at_s)
		reply = api_reply_problem(rq, PROBLEM_invalid_policy,
					  EXTEND_NOT_LATER, "duration_s", NULL);
	else if (!(e = api_command(rq, PSTATE_CMD_OVERRIDE_EXTEND, sizeof(*e),
				   NULL, 0)))
		reply = api_reply_problem(rq, PROBLEM_internal_error,
					  "out of memory", NULL, NULL);
	if (!e) {
		json_decref(j);
		return reply;
	}
	api_author_of(rq, e->author);
	e->id = (u64)rq->path_id;
	e->duration_s = (u32)dur;
	if (reason)
		memcpy(e->reason, reason, strlen(reason));
	json_decref(j);
	log_at(LOG_WARN, "client-policy override extended",
	       LOG_NUM("id", e->id), LOG_NUM("duration_s", e->duration_s));
	return api_submit_command(rq, policy_command_reply);
}

/* ---- impact and activity ----------------------------------------------------
 */

struct days_ctx {
	json_t *arr;
};

static void day_row(void *ctx, u32 day, u64 below, u64 all)
{
	struct days_ctx *c = ctx;
	char date[POLICY_TIME_TEXT_BYTES];
	put_day(date, day);
	json_array_append_new(c->arr, json_pack("{s:s, s:I, s:I}", "day", date,
						"below", (json_int_t)below,
						"all", (json_int_t)all));
}

enum MHD_Result policy_route_impact(struct request *rq)
{
	const char *platform = arg(rq, "platform");
	const char *min_text = arg(rq, "min_supported");
	const char *th = arg(rq, "threshold");
	u64 weeks = IMPACT_WEEKS_DEFAULT;
	double threshold = IMPACT_THRESHOLD_DEFAULT;
	struct semver min;
	struct semver_err se;
	if (!platform || !min_text)
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "platform and min_supported are "
					 "required",
					 NULL, NULL);
	if (semver_parse(min_text, strlen(min_text), SEMVER_STRICT, &min,
			 &se) != 0)
		return api_reply_problem(rq, PROBLEM_invalid_query, se.msg,
					 "min_supported", NULL);
	if (th) {
		char *end;
		threshold = strtod(th, &end);
		if (*end || !(threshold > 0 && threshold < 1))
			return api_reply_problem(rq, PROBLEM_invalid_query,
						 "threshold is a share "
						 "between 0 and 1 (0.05)",
						 "threshold", NULL);
	}
	if (arg(rq, "weeks") &&
	    (!arg_u64(rq, "weeks", &weeks) || weeks < 1 || weeks > 17))
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "weeks is 1..17", "weeks", NULL);
	/* How versions of this platform parse: as the policy says. */
	enum semver_mode mode = SEMVER_STRICT;
	engine_read_begin(rq->srv->e);
	const struct policy *p =
		pstate_current(engine_pstate(rq->srv->e), NULL);
	for (unsigned i = 0; p && i < p->nplatforms; i++)
		if (strcmp(p->platforms[i].name, platform) == 0)
			mode = p->platforms[i].rules.version_mode;
	engine_read_end(rq->srv->e);

	struct activity_impact im;
	struct activity_forecast fc;
	struct days_ctx dc = {json_array()};
	u32 t = today();
	int fr;
	pthread_mutex_lock(&rq->srv->activity_lock);
	activity_impact(rq->srv->activity, platform, &min, mode, t, &im);
	fr = activity_forecast(rq->srv->activity, platform, &min, mode, t,
			       (u32)weeks, threshold, &fc);
	activity_days(rq->srv->activity, platform, &min, mode,
		      t >= weeks * 7 ? t - (u32)weeks * 7 : 0, t, day_row, &dc);
	pthread_mutex_unlock(&rq->srv->activity_lock);

	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "platform",
			      platform, "min_supported", min_text, "blocked",
			      (json_int_t)im.blocked, "actives",
			      (json_int_t)im.actives, "unparsed",
			      (json_int_t)im.unparsed, "window_days",
			      (json_int_t)im.window_days);
	json_object_set_new(
		o, "share",
		json_real(im.actives ? (double)im.blocked / (double)im.actives
				     : 0.0));
	/* What a user is in these counts (docs/client-policy.md): an
	 * X-Client-User of the administrator's credentials, or of one
	 * principal's (the root of the sender's chain). */
	json_object_set_new(o, "user_scope", json_string("root-principal"));
	/* The users the gate refused (not in the counts above, which are
	 * served users of authenticated requests only): verified apart
	 * from unverified, never mixed (docs/client-policy.md). */
	u64 bu[2];
	gatewatch_blocked_users(&rq->srv->watch, platform, t, bu);
	json_object_set_new(o, "blocked_users",
			    json_pack("{s:I, s:I, s:I}", "verified",
				      (json_int_t)bu[1], "unverified",
				      (json_int_t)bu[0], "window_days",
				      (json_int_t)ACTIVITY_WINDOW_DAYS));
	json_t *f = json_pack("{s:f, s:I, s:I}", "threshold", threshold,
			      "weeks", (json_int_t)weeks, "days_used",
			      (json_int_t)fc.days_used);
	if (fr == 0) {
		json_object_set_new(f, "share_now", json_real(fc.share_now));
		json_object_set_new(f, "daily_decay",
				    json_real(fc.daily_decay));
		json_object_set_new(f, "r2", json_real(fc.r2));
		if (fc.already_below || fc.decreasing) {
			char date[POLICY_TIME_TEXT_BYTES];
			put_day(date, fc.day_below);
			json_object_set_new(f, "date_below", json_string(date));
		} else {
			json_object_set_new(f, "date_below", json_null());
			json_object_set_new(f, "note",
					    json_string("the share is not "
							"falling: no date"));
		}
	} else {
		json_object_set_new(f, "date_below", json_null());
		json_object_set_new(f, "note",
				    json_string("fewer than 3 days with users "
						"below the minimum: no fit"));
	}
	json_object_set_new(o, "forecast", f);
	json_object_set_new(o, "days", dc.arr);
	return reply_jansson(rq, 200, o);
}

static bool parse_day(const char *s, u32 *out)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%d", &tm) : NULL;
	if (!end || *end)
		return false;
	time_t t = timegm(&tm);
	if (t < 0)
		return false;
	*out = (u32)(t / 86400);
	return true;
}

/* Load observations (a synthetic history for tests and demos):
 * {"observations": [{"day": "2026-11-01", "platform": "android",
 *   "version": "3.9.0", "user": "u1"}, ...]} in day order. */
/* The reply to PSTATE_FULL names these limits. */
_Static_assert(POLICY_OVERRIDES_MAX == 64 && PSTATE_OVERRIDES_MAX == 100000 &&
		       PSTATE_VERSIONS_MAX == 100000,
	       "the state-full reply names these limits");

enum MHD_Result policy_route_activity(struct request *rq)
{
	enum MHD_Result reply;
	json_t *j = api_body_object(rq, rq->srv->body_bytes_max, &reply);
	if (!j)
		return reply;
	json_t *obs = json_object_get(j, "observations");
	if (!json_is_array(obs) || json_object_size(j) != 1 ||
	    json_array_size(obs) > ACTIVITY_OBSERVATIONS_MAX) {
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_invalid_body,
					 "{\"observations\": [...]} with at "
					 "most 100000 entries",
					 "observations", NULL);
	}
	size_t i, accepted = 0, known = 0;
	json_t *e;
	char path[48];
	json_array_foreach(obs, i, e)
	{
		const char *day = json_string_value(json_object_get(e, "day"));
		const char *pl =
			json_string_value(json_object_get(e, "platform"));
		const char *ve =
			json_string_value(json_object_get(e, "version"));
		const char *us = json_string_value(json_object_get(e, "user"));
		u32 d;
		snprintf(path, sizeof(path), "observations[%zu]", i);
		if (!pl || !ve || !us || !parse_day(day, &d) ||
		    json_object_size(e) != 4) {
			json_decref(j);
			return api_reply_problem(
				rq, PROBLEM_invalid_field,
				"day (YYYY-MM-DD), platform, version and "
				"user, all strings",
				path, NULL);
		}
		u64 h;
		crypto_generichash((u8 *)&h, sizeof(h), (const u8 *)us,
				   strlen(us), rq->srv->activity_key,
				   sizeof(rq->srv->activity_key));
		pthread_mutex_lock(&rq->srv->activity_lock);
		int r = activity_import(rq->srv->activity, h, pl, ve, d);
		pthread_mutex_unlock(&rq->srv->activity_lock);
		if (r == -EINVAL) {
			json_decref(j);
			return api_reply_problem(rq, PROBLEM_invalid_field,
						 "platform or version not "
						 "acceptable",
						 path, NULL);
		}
		if (r == 0)
			accepted++;
		else if (r == 1)
			known++;
	}
	json_decref(j);
	return reply_jansson(rq, 200,
			     json_pack("{s:I, s:I, s:I}", "observed",
				       (json_int_t)accepted, "known",
				       (json_int_t)known, "dropped",
				       (json_int_t)(i - accepted - known)));
}

/* ---- dispatch and replies ---------------------------------------------------
 */

enum MHD_Result policy_route_manifest(struct request *rq)
{
	if (rq->method == METHOD_GET || rq->method == METHOD_HEAD)
		return evaluate(rq, true);
	return put_policy(rq);
}

enum MHD_Result policy_route_current(struct request *rq)
{
	return get_version(rq, 0);
}

enum MHD_Result policy_route_version(struct request *rq)
{
	if (rq->path_id == 0)
		return api_reply_problem(rq, PROBLEM_policy_not_found,
					 "versions start at 1", NULL, NULL);
	return get_version(rq, (u64)rq->path_id);
}

enum MHD_Result policy_route_evaluate(struct request *rq)
{
	return evaluate(rq, false);
}

enum MHD_Result policy_route_overrides(struct request *rq)
{
	if (rq->method == METHOD_GET || rq->method == METHOD_HEAD)
		return get_overrides(rq, 0);
	return post_override(rq);
}

enum MHD_Result policy_route_override(struct request *rq)
{
	if (rq->path_id == 0)
		return api_reply_problem(rq, PROBLEM_policy_not_found,
					 "no such override", NULL, NULL);
	if (rq->method == METHOD_GET || rq->method == METHOD_HEAD)
		return get_overrides(rq, (u64)rq->path_id);
	return delete_override(rq);
}

/* ---- log lines of changes ------------------------------------------- */

/* Who made a change, for its log line: "administrator", or the
 * principal's name (copied out of the auth state) and thumbprint. */
struct author_text {
	char name[AUTH_NAME_BYTES + 1];
	char thumbprint[44];
	bool admin;
};

static void author_text(struct request *rq, const u8 id[32],
			struct author_text *out)
{
	static const u8 zero[32];
	struct auth_principal_info p;
	memset(out, 0, sizeof(*out));
	out->admin = memcmp(id, zero, 32) == 0;
	if (out->admin) {
		snprintf(out->name, sizeof(out->name), "administrator");
		return;
	}
	b64url_encode(out->thumbprint, sizeof(out->thumbprint), id, 32);
	engine_read_begin(rq->srv->e);
	bool named = auth_principal_get(engine_auth(rq->srv->e), id, &p);
	engine_read_end(rq->srv->e);
	if (named)
		snprintf(out->name, sizeof(out->name), "%s", p.name);
}

/* A NUL-padded text of a record, cut at its padding. */
static void padded_text(char *out, size_t cap, const char *in, size_t n)
{
	size_t len = strnlen(in, n);
	if (len >= cap)
		len = cap - 1;
	memcpy(out, in, len);
	out[len] = '\0';
}

static void put_time(char out[POLICY_TIME_TEXT_BYTES], int64_t t)
{
	if (t == POLICY_TIME_NONE || policy_format_time(t, out) != 0)
		snprintf(out, POLICY_TIME_TEXT_BYTES, "none");
}

/* An override's line: opened, extended or ended (info: its state now). */
static void log_override(struct request *rq, const char *msg, const u8 *author,
			 const char *reason, size_t reason_bytes,
			 const struct pstate_override_info *info)
{
	struct author_text a;
	char why[PSTATE_REASON_BYTES + POLICY_REASON_MAX + 16];
	char platform[sizeof(info->cmd->platform) + 1];
	char range[sizeof(info->cmd->range) + 1];
	char start[POLICY_TIME_TEXT_BYTES], end[POLICY_TIME_TEXT_BYTES];
	author_text(rq, author, &a);
	padded_text(why, sizeof(why), reason, reason_bytes);
	padded_text(platform, sizeof(platform), info->cmd->platform,
		    sizeof(info->cmd->platform));
	padded_text(range, sizeof(range), info->cmd->range,
		    sizeof(info->cmd->range));
	put_time(start, info->not_before_s);
	put_time(end, info->expires_at_s);
	log_at(LOG_INFO, msg, LOG_NUM("id", info->id),
	       LOG_STR("platform", platform), LOG_STR("range", range),
	       LOG_STR("mode", info->cmd->mode == POLICY_OVERRIDE_ALLOW
				       ? "allow"
				       : "compat"),
	       LOG_STR("author", a.name[0] ? a.name : NULL),
	       LOG_STR("author_thumbprint", a.admin ? NULL : a.thumbprint),
	       LOG_STR("reason", why[0] ? why : NULL),
	       LOG_STR("starts_at", start), LOG_STR("ends_at", end));
}

/* The override id's state now (copied out), or false. */
static bool override_now(struct request *rq, u64 id, struct override_copy *c)
{
	bool found = false;
	engine_read_begin(rq->srv->e);
	const struct pstate *ps = engine_pstate(rq->srv->e);
	for (u64 i = pstate_override_count(ps); i-- > 0 && !found;) {
		struct pstate_override_info o;
		pstate_override_at(ps, i, &o);
		if (o.id == id) {
			override_copy(rq->srv->e, &o, c);
			found = true;
		}
	}
	engine_read_end(rq->srv->e);
	return found;
}

static void log_policy_set(struct request *rq, const struct pstate_set *set,
			   u64 version)
{
	struct author_text a;
	char why[PSTATE_REASON_BYTES + 1];
	author_text(rq, set->author, &a);
	padded_text(why, sizeof(why), set->reason, sizeof(set->reason));
	log_at(LOG_INFO, "client policy activated", LOG_NUM("version", version),
	       LOG_STR("change", set->rollback_of ? "rollback" : "set"),
	       LOG_NUM("rollback_of", set->rollback_of),
	       LOG_STR("author", a.name[0] ? a.name : NULL),
	       LOG_STR("author_thumbprint", a.admin ? NULL : a.thumbprint),
	       LOG_STR("reason", why[0] ? why : NULL));
}

static enum MHD_Result policy_command_reply(struct request *rq)
{
	const struct command_header *h = rq->eng.payload;
	u32 outcome = rq->eng.results[0];

	switch (outcome) {
	case PSTATE_INVALID:
		return api_reply_problem(
			rq, PROBLEM_invalid_policy,
			h->kind == PSTATE_CMD_OVERRIDE_EXTEND
				? EXTEND_NOT_LATER
				: "refused by the state machine",
			h->kind == PSTATE_CMD_OVERRIDE_EXTEND ? "duration_s"
							      : NULL,
			NULL);
	case PSTATE_ENDED:
		if (h->kind != PSTATE_CMD_OVERRIDE_EXTEND)
			break;
		return api_reply_problem(rq, PROBLEM_override_ended,
					 EXTEND_ENDED, NULL, NULL);
	case PSTATE_NOT_FOUND:
		return api_reply_problem(rq, PROBLEM_policy_not_found, NULL,
					 NULL, NULL);
	case PSTATE_AUTHOR_ENDED:
		return api_reply_problem(rq, PROBLEM_authority_ended,
					 AUTHORITY_ENDED_DETAIL, NULL, NULL);
	case PSTATE_FULL:
		return api_reply_problem(
			rq, PROBLEM_state_full,
			h->kind == PSTATE_CMD_OVERRIDE ||
					h->kind == PSTATE_CMD_OVERRIDE_2
				? "at most 64 overrides are open at once (and "
				  "100000 in the policy's life): end one with "
				  "DELETE /v1/client-policy/overrides/{id}, or "
				  "widen the range of one"
				: "the policy keeps at most 100000 versions",
			NULL, NULL);
	default: break;
	}
	if (h->kind == PSTATE_CMD_SET) {
		u64 v;
		engine_read_begin(rq->srv->e);
		const struct pstate *ps = engine_pstate(rq->srv->e);
		pstate_current(ps, &v);
		/* Ours is the version stamped with our record's time (another
		 * may have come after it in the same group). */
		struct pstate_version mine;
		for (u64 k = v; outcome == PSTATE_OK && k > 0; k--) {
			if (pstate_version_get(ps, k, &mine) &&
			    mine.timestamp == rq->eng.ereq.timestamp) {
				v = k;
				break;
			}
		}
		engine_read_end(rq->srv->e);
		json_t *o = json_pack(
			"{s:I, s:s}", "version", (json_int_t)v, "status",
			outcome == PSTATE_UNCHANGED ? "unchanged"
						    : "activated");
		/* What changed against the version before. */
		bool found;
		json_t *c = outcome == PSTATE_OK && v > 1
				    ? diff_versions(rq, v - 1, v, &found)
				    : NULL;
		if (c) {
			json_object_set_new(o, "changes", c);
			json_object_set_new(o, "previous",
					    json_integer((json_int_t)v - 1));
		}
		/* The impact reported before submitting (set_document). */
		if (rq->eng.reply_extra)
			json_object_update(o, rq->eng.reply_extra);
		if (outcome == PSTATE_OK)
			log_policy_set(rq, (const void *)(h + 1), v);
		return reply_jansson(rq, outcome == PSTATE_OK ? 201 : 200, o);
	}
	if (h->kind == PSTATE_CMD_OVERRIDE ||
	    h->kind == PSTATE_CMD_OVERRIDE_2) {
		struct override_copy *mine = malloc(sizeof(*mine));
		bool found = false;
		if (!mine)
			return api_reply_problem(rq, PROBLEM_internal_error,
						 "out of memory", NULL, NULL);
		engine_read_begin(rq->srv->e);
		const struct pstate *ps = engine_pstate(rq->srv->e);
		u64 n = pstate_override_count(ps);
		/* Ours is the one stamped with our record's time. */
		for (u64 i = n; i-- > 0 && !found;) {
			struct pstate_override_info info;
			pstate_override_at(ps, i, &info);
			if (info.timestamp == rq->eng.ereq.timestamp) {
				override_copy(rq->srv->e, &info, mine);
				found = true;
			}
		}
		engine_read_end(rq->srv->e);
		json_t *o = found ? override_json(mine, now_s()) : NULL;
		if (o)
			log_override(rq, "client policy override opened",
				     mine->cmd.author, mine->cmd.reason,
				     sizeof(mine->cmd.reason), &mine->info);
		free(mine);
		if (!o)
			return api_reply_problem(rq, PROBLEM_internal_error,
						 NULL, NULL, NULL);
		return reply_jansson(rq, 201, o);
	}
	struct override_copy now;
	if (h->kind == PSTATE_CMD_OVERRIDE_EXTEND) { /* with its new end */
		const struct pstate_override_extend *x = (const void *)(h + 1);
		if (override_now(rq, x->id, &now))
			log_override(rq, "client policy override extended",
				     x->author, x->reason, sizeof(x->reason),
				     &now.info);
		return get_overrides(rq, (u64)rq->path_id);
	}
	/* PSTATE_CMD_OVERRIDE_END */
	const struct pstate_override_end *e = (const void *)(h + 1);
	if (outcome == PSTATE_OK && override_now(rq, e->id, &now))
		log_override(rq, "client policy override ended", e->author,
			     e->reason, sizeof(e->reason), &now.info);
	if (outcome != PSTATE_OK) /* it ended meanwhile: see delete_override */
		return api_reply_problem(rq, PROBLEM_override_ended, END_ENDED,
					 NULL, NULL);
	return reply_jansson(rq, 200,
			     json_pack("{s:I, s:s}", "id",
				       (json_int_t)rq->path_id, "status",
				       "ended"));
}

/* ---- /metrics
 * ------------------------------------------------------------------ */

enum policy_verdict policy_verdict_of(struct api_server *s, const char *client,
				      u64 *version)
{
	struct policy_query q = {0};
	struct policy_decision d;

	q.now_s = now_s();
	policy_query_set_client_version(&q, client, strlen(client));
	engine_read_begin(s->e);
	(void)evaluate_locked(s, &q, &d, version);
	engine_read_end(s->e);
	return (enum policy_verdict)d.verdict;
}

void policy_metrics(struct api_server *s, struct wbuf *b)
{
	u64 version;
	size_t n, active = 0;
	int64_t now = now_s();
	engine_read_begin(s->e);
	const struct pstate *ps = engine_pstate(s->e);
	pstate_current(ps, &version);
	const struct policy_override *ov = pstate_overrides_live(ps, &n);
	/* at most POLICY_OVERRIDES_MAX live: one series each */
	struct {
		u64 id;
		int64_t at_s;
	} exp[POLICY_OVERRIDES_MAX];
	size_t nexp = 0;
	for (size_t i = 0; i < n; i++) {
		active += policy_override_active(&ov[i], now);
		if (ov[i].expires_at_s > now && nexp < POLICY_OVERRIDES_MAX) {
			exp[nexp].id = ov[i].id;
			exp[nexp++].at_s = ov[i].expires_at_s;
		}
	}
	engine_read_end(s->e);
	wbuf_puts(b, "# HELP tpwallet_client_policy_version The active client "
		     "policy version (0: none).\n"
		     "# TYPE tpwallet_client_policy_version gauge\n"
		     "tpwallet_client_policy_version ");
	wbuf_put_u64(b, version);
	wbuf_puts(b, "\n# HELP tpwallet_client_policy_overrides_active "
		     "Emergency overrides in force.\n"
		     "# TYPE tpwallet_client_policy_overrides_active gauge\n"
		     "tpwallet_client_policy_overrides_active ");
	wbuf_put_u64(b, active);
	wbuf_putc(b, '\n');
	gatewatch_render(&s->watch, today(), b);
	wbuf_puts(b, "# HELP "
		     "tpwallet_client_policy_override_expiry_timestamp_seconds "
		     "When each override not yet ended stops relaxing the "
		     "gate (Unix time).\n"
		     "# TYPE "
		     "tpwallet_client_policy_override_expiry_timestamp_seconds "
		     "gauge\n");
	for (size_t i = 0; i < nexp; i++) {
		wbuf_puts(b, "tpwallet_client_policy_override_expiry_"
			     "timestamp_seconds{id=\"");
		wbuf_put_u64(b, exp[i].id);
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, (u64)exp[i].at_s);
		wbuf_putc(b, '\n');
	}
}

/* ---- activity on disk
 * ------------------------------------------------------------ */

int policy_activity_open(struct api_server *s)
{
	engine_read_begin(s->e);
	atomic_init(&s->policy_seen,
		    pstate_current(engine_pstate(s->e), NULL) != NULL);
	engine_read_end(s->e);
	pthread_mutex_init(&s->activity_lock, NULL);
	randombytes_buf(s->activity_key, sizeof(s->activity_key));
	if (s->data_dir) {
		/* The key that hashes user ids, kept so counts survive a
		 * restart; never leaves the data directory. */
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", s->data_dir,
			 ACTIVITY_KEY_FILE);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			struct stat st;
			if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
			    (st.st_mode & 077) || st.st_uid != geteuid())
				log_at(LOG_WARN,
				       "the activity key should be a file of "
				       "ours with mode 0600",
				       LOG_STR("path", path));
			if (read(fd, s->activity_key, 32) != 32) {
				log_at(LOG_WARN,
				       "activity key unreadable: user hashes "
				       "restart from a new key",
				       LOG_STR("path", path));
				randombytes_buf(s->activity_key, 32);
			}
			close(fd);
		} else {
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				  0600);
			if (fd >= 0) {
				if (write(fd, s->activity_key, 32) != 32 ||
				    fsync(fd) != 0)
					log_at(LOG_WARN,
					       "cannot write the activity key",
					       LOG_STR("path", path));
				close(fd);
			}
		}
		snprintf(path, sizeof(path), "%s/%s", s->data_dir,
			 ACTIVITY_FILE);
		FILE *f = fopen(path, "rb");
		if (f) {
			size_t cap = (size_t)1 << 20, len = 0;
			u8 *buf = malloc(cap);
			size_t got;
			while (buf &&
			       (got = fread(buf + len, 1, cap - len, f)) > 0) {
				len += got;
				if (len == cap) {
					u8 *nb = cap < ((size_t)1 << 30)
							 ? realloc(buf, cap * 2)
							 : NULL;
					if (!nb)
						break;
					buf = nb;
					cap *= 2;
				}
			}
			fclose(f);
			if (buf)
				s->activity = activity_read(buf, len);
			free(buf);
			if (!s->activity)
				log_at(LOG_WARN,
				       "activity file unreadable: counting "
				       "from zero",
				       LOG_STR("path", path));
		}
	}
	if (!s->activity)
		s->activity = activity_new();
	if (!s->activity)
		return -ENOMEM;
	if (gatewatch_init(&s->watch) != 0) {
		activity_free(s->activity);
		s->activity = NULL;
		return -ENOMEM;
	}
	return 0;
}

struct mem_sink {
	u8 *p;
	size_t len, cap;
	bool failed;
};

static int mem_sink(void *ctx, const void *buf, size_t len)
{
	struct mem_sink *m = ctx;
	if (m->failed)
		return -ENOMEM;
	if (len > m->cap - m->len) {
		size_t cap = m->cap ? m->cap : 1 << 16;
		while (cap - m->len < len)
			cap *= 2;
		u8 *p = realloc(m->p, cap);
		if (!p) {
			m->failed = true;
			return -ENOMEM;
		}
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

/* Copy the counts under the lock (a memory copy), write them outside it
 * (temp file, fsync, rename): the gate waits for the copy only. */
int policy_activity_save(struct api_server *s)
{
	struct mem_sink m = {0};
	if (!s->activity || !s->data_dir)
		return 0;
	pthread_mutex_lock(&s->activity_lock);
	int rc = activity_write(s->activity, mem_sink, &m);
	pthread_mutex_unlock(&s->activity_lock);
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", s->data_dir, ACTIVITY_FILE);
	if (rc == 0)
		rc = fsfile_replace(s->data_dir, ACTIVITY_FILE, m.p, m.len);
	if (rc != 0) {
		log_at(LOG_WARN, "cannot save client activity",
		       LOG_STR("path", path));
		rc = -EIO;
	}
	free(m.p);
	return rc;
}

void policy_activity_close(struct api_server *s)
{
	if (s->activity)
		policy_activity_save(s);
	activity_free(s->activity);
	s->activity = NULL;
	gatewatch_destroy(&s->watch);
	pthread_mutex_destroy(&s->activity_lock);
	sodium_memzero(s->activity_key, sizeof(s->activity_key));
}
