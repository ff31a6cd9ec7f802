/*
 * admin_routes.c - /v1/admin: named administrators' roles, the bootstrap
 * token's retirement and dual control (docs/authz.md, "Named
 * administrators" and "Dual control").
 *
 * Every change is a journal command of core/admin.h, decided by the state
 * machine at the record's time: a handler only checks the request's form
 * and who asks, builds the command and turns its outcome into an answer.
 * A refused decision (self-approval, a window passed, a changed target, a
 * requester no longer an administrator) is journaled too, so the trail
 * shows every attempt.  A named administrator's policy activation above
 * the impact threshold reaches admin_request_policy (policy_routes.c)
 * instead of being applied: it becomes a pending request (202).
 */
#include "api/authz.h"
#include "api/internal.h"
#include "api/problem.h"
#include "api/wbuf.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/policy.h"
#include "core/pstate.h"
#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "engine/engine.h"
#include "engine/logger.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

static void id_text(const u8 id[32], char out[JOSE_B64_32_BYTES])
{
	if (b64url_encode(out, JOSE_B64_32_BYTES, id, 32) != 0)
		out[0] = '\0';
}

bool admin_rooted_caller(struct request *rq, u8 id[32])
{
	const struct api_caller *c = &rq->auth.caller;
	if (!c->chain || c->root_admin || c->org)
		return false;
	engine_read_begin(rq->srv->e);
	const struct auth *a = engine_auth(rq->srv->e);
	bool named = admin_is_active(auth_admin(a), a, c->root);
	engine_read_end(rq->srv->e);
	if (named)
		memcpy(id, c->root, 32);
	return named;
}

bool admin_named_caller(struct request *rq, u8 id[32])
{
	const struct mandate_chain *m = rq->auth.caller.chain;
	if (!m || m->n != 1 || m->links[0].cert_bound ||
	    memcmp(m->links[0].iss, m->links[0].sub, 32) != 0)
		return false;
	return admin_rooted_caller(rq, id);
}

u32 admin_role_now(struct request *rq, const u8 id[32])
{
	engine_read_begin(rq->srv->e);
	u32 role = admin_role_of(auth_admin(engine_auth(rq->srv->e)), id);
	engine_read_end(rq->srv->e);
	return role;
}

/* ---- answers -------------------------------------------------------------
 */

static void put_ns_time(struct wbuf *b, const char *key, u64 ns)
{
	char t[POLICY_TIME_TEXT_BYTES];
	wbuf_puts(b, key);
	if (policy_format_time((int64_t)(ns / 1000000000u), t) != 0) {
		wbuf_puts(b, "null");
		return;
	}
	wbuf_putc(b, '"');
	wbuf_puts(b, t);
	wbuf_putc(b, '"');
}

static u64 now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

static const u8 zero_id[32];

static u64 expires_at(const struct admin_request_info *r)
{
	return r->timestamp + (u64)r->window_s * 1000000000u;
}

/* The role a pending role request gives, copied from its payload
 * while the read lock holds it (has: false for any other request, or
 * once decided: the payload is gone, the journal keeps it). */
struct held_role {
	bool has;
	struct admin_role_cmd c;
};

static void held_role_take(const struct admin_request_info *r,
			   struct held_role *h)
{
	h->has = r->op == ADMIN_OP_ROLE && r->payload &&
		 r->payload_bytes == sizeof(h->c);
	if (h->has)
		memcpy(&h->c, r->payload, sizeof(h->c));
}

/* A request as JSON.  A pending one whose window has passed by now is
 * shown expired (the journal marks it so at the next request). */
static void put_request(struct wbuf *b, const struct admin_request_info *r,
			u64 now, const char *held, const struct held_role *role)
{
	char id[JOSE_B64_32_BYTES];
	bool passed = r->status == ADMIN_PENDING && now > expires_at(r);
	bool is_role = r->op == ADMIN_OP_ROLE;

	wbuf_puts(b, "{\"id\":");
	wbuf_put_u64(b, r->id);
	wbuf_puts(b, is_role ? ",\"operation\":\"role\",\"status\":\""
			     : ",\"operation\":\"policy_set\",\"status\":\"");
	wbuf_puts(b, admin_status_name(passed ? ADMIN_EXPIRED : r->status));
	id_text(r->author, id);
	wbuf_puts(b, "\",\"requested_by\":\"");
	wbuf_puts(b, id);
	wbuf_putc(b, '"');
	put_ns_time(b, ",\"requested_at\":", r->timestamp);
	put_ns_time(b, ",\"expires_at\":", expires_at(r));
	if (is_role) {
		/* The role the principal held when asked: an approval
		 * finds it unchanged or the request stale. */
		const char *was = admin_role_name((u32)r->target);
		wbuf_puts(b, ",\"target_role\":\"");
		wbuf_puts(b, was ? was : "none");
		wbuf_putc(b, '"');
	} else {
		wbuf_puts(b, ",\"target_version\":");
		wbuf_put_u64(b, r->target);
	}
	if (role && role->has) {
		id_text(role->c.id, id);
		wbuf_puts(b, ",\"principal\":\"");
		wbuf_puts(b, id);
		wbuf_puts(b, "\",\"role\":\"");
		wbuf_puts(b, admin_role_name(role->c.role));
		wbuf_putc(b, '"');
	}
	if (r->decided_at) {
		if (memcmp(r->decider, zero_id, 32) != 0) {
			id_text(r->decider, id); /* none: expired */
			wbuf_puts(b, ",\"decided_by\":\"");
			wbuf_puts(b, id);
			wbuf_putc(b, '"');
		}
		put_ns_time(b, ",\"decided_at\":", r->decided_at);
		if (r->reason[0]) {
			wbuf_puts(b, ",\"reason\":");
			wbuf_put_json_str(b, r->reason, strlen(r->reason));
		}
	}
	if (held && held[0] == '{' && held[1] != '}') {
		wbuf_putc(b, ','); /* the members of policy_held_members */
		wbuf_puts(b, held + 1);
		return;
	}
	wbuf_putc(b, '}');
}

static bool request_get(struct request *rq, u64 id,
			struct admin_request_info *out, bool *dropped)
{
	engine_read_begin(rq->srv->e);
	const struct admin *d = auth_admin(engine_auth(rq->srv->e));
	bool found = admin_request_get(d, id, out);
	*dropped = !found && id > 0 && id <= admin_request_last_id(d);
	engine_read_end(rq->srv->e);
	out->payload = NULL; /* valid under the lock only */
	return found;
}

/* 404 request-not-found, or 410 request-dropped for an id given once. */
static enum MHD_Result reply_no_request(struct request *rq, bool dropped)
{
	if (dropped)
		return api_reply_problem(rq, PROBLEM_request_dropped,
					 "decided (or expired) requests are "
					 "dropped, oldest first, when 4096 are "
					 "kept; the journal keeps its entries",
					 NULL, NULL);
	return api_reply_problem(rq, PROBLEM_request_not_found, NULL, NULL,
				 NULL);
}

/* The request a record made: the one stamped with its time. */
static u64 request_made_by(struct request *rq)
{
	struct admin_request_info r;
	u64 id = 0;
	engine_read_begin(rq->srv->e);
	const struct admin *d = auth_admin(engine_auth(rq->srv->e));
	for (u32 k = admin_request_count(d); k > 0 && !id; k--) {
		admin_request_at(d, k - 1, &r);
		if (r.timestamp == rq->eng.ereq.timestamp)
			id = r.id;
	}
	engine_read_end(rq->srv->e);
	return id;
}

/* A request; with_document: and, while pending, the document it holds
 * and its changes against the current policy. */
static enum MHD_Result reply_request(struct request *rq, unsigned status,
				     u64 id, bool with_document)
{
	struct admin_request_info r;
	/* The document (64 KiB at most) twice over, as document and as
	 * changes, and the request's own members. */
	struct wbuf b = WBUF_INIT(4 * ADMIN_PAYLOAD_BYTES_MAX);
	bool dropped, found;
	char *text = NULL, *held = NULL;
	size_t len = 0;
	struct held_role role = {0};

	engine_read_begin(rq->srv->e);
	const struct admin *d = auth_admin(engine_auth(rq->srv->e));
	found = admin_request_get(d, id, &r);
	dropped = !found && id > 0 && id <= admin_request_last_id(d);
	if (found)
		held_role_take(&r, &role);
	if (found && with_document && r.op == ADMIN_OP_POLICY_SET &&
	    r.payload && r.payload_bytes >= sizeof(struct pstate_set)) {
		struct pstate_set h;
		memcpy(&h, r.payload, sizeof(h));
		if (h.text_bytes <= r.payload_bytes - sizeof(h)) {
			len = h.text_bytes;
			text = strndup((const char *)r.payload + sizeof(h),
				       len);
		}
	}
	r.payload = NULL; /* valid under the lock only */
	engine_read_end(rq->srv->e);
	if (!found)
		return reply_no_request(rq, dropped);
	if (text)
		held = policy_held_members(rq, text, len);
	free(text);
	put_request(&b, &r, now_ns(), held, &role);
	free(held);
	return api_reply_json(rq, status, &b);
}

static enum MHD_Result outcome_problem(struct request *rq, u32 outcome)
{
	switch (outcome) {
	case ADMIN_FULL:
		return api_reply_problem(rq, PROBLEM_state_full,
					 "at most 4 dual-control requests of "
					 "one administrator and 16 in all "
					 "wait at once, 4096 are kept, and 256 "
					 "administrators",
					 NULL, NULL);
	case ADMIN_UNKNOWN:
		return api_reply_problem(rq, PROBLEM_principal_not_found,
					 "no such Ed25519 principal",
					 "principal", NULL);
	case ADMIN_NOT_ADMIN:
		return api_reply_problem(
			rq, PROBLEM_not_an_administrator,
			"the deciding administrator or the requester no "
			"longer holds a role, or its key is revoked",
			NULL, NULL);
	case ADMIN_NO_OFFICER:
		return api_reply_problem(
			rq, PROBLEM_no_security_officer,
			"give a registered principal the security_officer "
			"role first (POST /v1/admin/roles): after retirement "
			"only it can give roles",
			NULL, NULL);
	case ADMIN_SELF:
		return api_reply_problem(rq, PROBLEM_self_approval,
					 "the requester cannot approve its "
					 "own request",
					 NULL, NULL);
	case ADMIN_GRANTEE:
		return api_reply_problem(rq, PROBLEM_self_approval,
					 "the principal a role is for cannot "
					 "approve it",
					 NULL, NULL);
	case ADMIN_WINDOW_PASSED:
		return api_reply_problem(rq, PROBLEM_request_expired,
					 "approvals are taken within "
					 "dual_control_window_s of the request",
					 NULL, NULL);
	case ADMIN_TARGET_CHANGED:
		return api_reply_problem(rq, PROBLEM_request_target_changed,
					 "what the request would change "
					 "changed since (the client policy's "
					 "version, or the principal's role): "
					 "request again",
					 NULL, NULL);
	case ADMIN_NOT_PENDING:
		return api_reply_problem(rq, PROBLEM_request_not_pending, NULL,
					 NULL, NULL);
	case ADMIN_NOT_REQUESTER:
		return api_reply_problem(rq, PROBLEM_break_glass_not_requester,
					 NULL, NULL, NULL);
	case ADMIN_OWNS_ACCOUNTS:
		return api_reply_problem(rq, PROBLEM_role_for_account_owner,
					 "administrators move no money: a "
					 "principal that owns accounts would "
					 "move money with its own links",
					 "principal", NULL);
	case ADMIN_TOO_LARGE:
		return api_reply_problem(rq, PROBLEM_body_too_large,
					 "a document under dual control is at "
					 "most 64 KiB",
					 NULL, NULL);
	case ADMIN_AUTHOR_ENDED:
		return api_reply_problem(rq, PROBLEM_authority_ended,
					 AUTHORITY_ENDED_DETAIL, NULL, NULL);
	case ADMIN_REFUSED:
		return api_reply_problem(rq, PROBLEM_invalid_policy,
					 "the policy state refused the "
					 "requested document",
					 NULL, NULL);
	default:
		return api_reply_problem(rq, PROBLEM_internal_error, NULL, NULL,
					 NULL);
	}
}

#define NO_OFFICER_LEFT_DETAIL                                                 \
	"this would leave no active security officer after the bootstrap's "   \
	"retirement: give another the security_officer role first"

/* {"principal", "role", "status": "changed" | "unchanged"}: 200. */
static enum MHD_Result role_reply(struct request *rq,
				  const struct admin_role_cmd *c, bool changed)
{
	struct wbuf b = WBUF_INIT(256);
	char id[JOSE_B64_32_BYTES];
	id_text(c->id, id);
	wbuf_puts(&b, "{\"principal\":\"");
	wbuf_puts(&b, id);
	wbuf_puts(&b, "\",\"role\":\"");
	wbuf_puts(&b, admin_role_name(c->role));
	wbuf_puts(&b, changed ? "\",\"status\":\"changed\"}"
			      : "\",\"status\":\"unchanged\"}");
	return api_reply_json(rq, 200, &b);
}

/* A kind-32 ext of a role grant: its grant into *g. */
static bool role_request_of(const u8 *ext, struct admin_role_cmd *g)
{
	struct admin_request_cmd q;
	memcpy(&q, ext, sizeof(q));
	if (q.op != ADMIN_OP_ROLE)
		return false;
	memcpy(g, ext + sizeof(q), sizeof(*g));
	return true;
}

/* Was the request a decision refused a policy set (not a role)? */
static bool refused_policy(struct request *rq, const u8 *ext)
{
	struct admin_decide_cmd c;
	struct admin_request_info r;
	bool dropped;
	memcpy(&c, ext, sizeof(c));
	return !request_get(rq, c.request, &r, &dropped) ||
	       r.op == ADMIN_OP_POLICY_SET;
}

static enum MHD_Result admin_command_reply(struct request *rq)
{
	u32 outcome = rq->eng.results ? rq->eng.results[0] : 0;
	const struct command_header *h = rq->eng.payload;
	const u8 *ext = (const u8 *)rq->eng.payload + sizeof(*h);
	struct wbuf b = WBUF_INIT(256);
	struct admin_role_cmd grant;

	if (h->kind == ADMIN_CMD_REQUEST && role_request_of(ext, &grant)) {
		if (outcome == ADMIN_EXISTS)
			return role_reply(rq, &grant, false);
		if (outcome == ADMIN_NO_OFFICER)
			return api_reply_problem(
				rq, PROBLEM_no_security_officer,
				NO_OFFICER_LEFT_DETAIL, "role", NULL);
	}
	if (outcome == ADMIN_NO_OFFICER && h->kind == ADMIN_CMD_ROLE)
		return api_reply_problem(rq, PROBLEM_no_security_officer,
					 NO_OFFICER_LEFT_DETAIL, "role", NULL);
	if (outcome == ADMIN_REFUSED && h->kind == ADMIN_CMD_DECIDE &&
	    !refused_policy(rq, ext))
		return api_reply_problem(
			rq, PROBLEM_request_refused,
			"the role was not given: its requester no longer "
			"holds security_officer, the principal owns accounts "
			"or already holds it (the request is rejected)",
			NULL, NULL);
	if (outcome != ADMIN_OK && outcome != ADMIN_EXISTS)
		return outcome_problem(rq, outcome);
	switch (h->kind) {
	case ADMIN_CMD_ROLE: {
		struct admin_role_cmd c;
		memcpy(&c, ext, sizeof(c));
		return role_reply(rq, &c, outcome == ADMIN_OK);
	}
	case ADMIN_CMD_RETIRE:
		wbuf_puts(&b, outcome == ADMIN_OK
				      ? "{\"status\":\"retired\"}"
				      : "{\"status\":\"already_retired\"}");
		return api_reply_json(rq, 200, &b);
	case ADMIN_CMD_REQUEST: {
		u64 id = request_made_by(rq);
		char loc[64];
		snprintf(loc, sizeof(loc), "/v1/admin/requests/%llu",
			 (unsigned long long)id);
		free(rq->location);
		rq->location = strdup(loc);
		return reply_request(rq, 202, id, false);
	}
	default: {
		struct admin_decide_cmd c;
		memcpy(&c, ext, sizeof(c));
		if (c.decision == ADMIN_BREAK_GLASS) {
			char who[JOSE_B64_32_BYTES];
			id_text(c.author, who);
			log_at(LOG_WARN,
			       "break-glass: a request carried out "
			       "by its requester alone",
			       LOG_NUM("request", c.request),
			       LOG_STR("requester", who));
		}
		return reply_request(rq, 200, c.request, false);
	}
	}
}

static enum MHD_Result submit(struct request *rq)
{
	return api_submit_command(rq, admin_command_reply);
}

/* ---- POST /v1/admin/roles ------------------------------------------------
 */

/* A named administrator gives no role alone: every grant of one (or of a
 * chain rooted at one) becomes a request that a second administrator (not
 * the principal it is for) approves (docs/authz.md, "Dual control").  The
 * state machine answers at once, journaled, one it would refuse or that
 * changes nothing (apply_request); no check here decides whether dual
 * control applies (the outside attack's F1: a grant the API saw refused,
 * journaled plainly, was given when a registration came first).  Taking a
 * role away acts at once. */
static enum MHD_Result request_role(struct request *rq,
				    struct admin_role_cmd *c, const u8 me[32])
{
	if (!admin_named_caller(rq, (u8 *)me))
		return api_reply_problem(rq, PROBLEM_not_an_administrator,
					 "a role is given by request: with a "
					 "mandate of one link that a named "
					 "administrator signed to itself",
					 NULL, NULL);
	struct admin_request_cmd q = {0};
	memcpy(c->author, me, 32);
	memcpy(q.author, me, 32);
	q.target = admin_role_now(rq, c->id);
	q.op = ADMIN_OP_ROLE;
	q.window_s = rq->srv->dual_control_window_s;
	q.payload_bytes = sizeof(*c);
	u8 *ext = api_command(rq, ADMIN_CMD_REQUEST,
			      (u32)(sizeof(q) + sizeof(*c)), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &q, sizeof(q));
	memcpy(ext + sizeof(q), c, sizeof(*c));
	return submit(rq);
}

enum MHD_Result admin_route_roles(struct request *rq)
{
	enum MHD_Result reply;
	struct admin_role_cmd c = {0};
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, &reply);
	if (!j)
		return reply;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		if (strcmp(k, "principal") != 0 && strcmp(k, "role") != 0) {
			reply = api_reply_problem(rq, PROBLEM_unknown_field,
						  "members are principal and "
						  "role",
						  k, NULL);
			json_decref(j);
			return reply;
		}
	}
	const char *who = json_string_value(json_object_get(j, "principal"));
	const char *role = json_string_value(json_object_get(j, "role"));
	size_t n = 0;
	int r = role ? admin_role_parse(role) : -1;
	bool id_ok = who &&
		     b64url_decode(c.id, 32, who, strlen(who), &n) == 0 &&
		     n == 32;
	json_decref(j);
	if (!id_ok)
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "a principal id is the 43-character "
					 "base64url RFC 7638 thumbprint",
					 "principal", NULL);
	if (r < 0)
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "operator, security_officer, support, "
					 "auditor, or none (take it away)",
					 "role", NULL);
	c.role = (u32)r;
	api_author_of(rq, c.author);
	u8 me[32];
	if (c.role != ADMIN_ROLE_NONE && admin_rooted_caller(rq, me))
		return request_role(rq, &c, me);
	void *ext = api_command(rq, ADMIN_CMD_ROLE, sizeof(c), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &c, sizeof(c));
	return submit(rq);
}

/* ---- POST /v1/admin/bootstrap/retire -------------------------------------
 */

enum MHD_Result admin_route_retire(struct request *rq)
{
	struct admin_retire_cmd c = {0};
	api_author_of(rq, c.author);
	void *ext = api_command(rq, ADMIN_CMD_RETIRE, sizeof(c), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &c, sizeof(c));
	return submit(rq);
}

/* ---- dual control -------------------------------------------------------
 */

enum MHD_Result admin_request_policy(struct request *rq, const void *set_ext,
				     u32 set_bytes)
{
	struct admin_request_cmd c = {0};
	engine_read_begin(rq->srv->e);
	c.target = pstate_version_count(engine_pstate(rq->srv->e));
	engine_read_end(rq->srv->e);
	memcpy(c.author, rq->auth.caller.root, 32);
	c.op = ADMIN_OP_POLICY_SET;
	c.window_s = rq->srv->dual_control_window_s;
	c.payload_bytes = set_bytes;
	u8 *ext = api_command(rq, ADMIN_CMD_REQUEST, (u32)sizeof(c) + set_bytes,
			      NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &c, sizeof(c));
	memcpy(ext + sizeof(c), set_ext, set_bytes);
	return submit(rq);
}

enum MHD_Result admin_route_requests(struct request *rq)
{
	struct admin_request_info *v;
	struct held_role roles[ADMIN_PENDING_MAX];
	u32 n = 0;
	u64 now = now_ns();

	v = malloc(ADMIN_PENDING_MAX * sizeof(*v));
	if (!v)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	engine_read_begin(rq->srv->e);
	const struct admin *d = auth_admin(engine_auth(rq->srv->e));
	for (u32 k = admin_request_count(d); k > 0 && n < ADMIN_PENDING_MAX;
	     k--) {
		struct admin_request_info r;
		admin_request_at(d, k - 1, &r);
		if (r.status == ADMIN_PENDING && now <= expires_at(&r)) {
			held_role_take(&r, &roles[n]);
			r.payload = NULL;
			v[n++] = r;
		}
	}
	engine_read_end(rq->srv->e);
	struct wbuf b = WBUF_INIT(64 + (size_t)n * 1024);
	wbuf_puts(&b, "{\"requests\":[");
	for (u32 i = 0; i < n; i++) {
		if (i)
			wbuf_putc(&b, ',');
		put_request(&b, &v[n - 1 - i], now, NULL, &roles[n - 1 - i]);
	}
	wbuf_puts(&b, "]}");
	free(v);
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result admin_route_request(struct request *rq)
{
	return reply_request(rq, 200, (u64)rq->path_id, true);
}

/* {"reason": "..."} (optional but for break-glass), into out. */
static bool decision_reason(struct request *rq, bool required, char *out,
			    enum MHD_Result *reply)
{
	if (rq->body.len == 0 && !rq->body.too_large && !rq->body.over_budget) {
		if (!required)
			return true;
		*reply = api_reply_problem(rq, PROBLEM_invalid_field,
					   "a break-glass needs a reason",
					   "reason", NULL);
		return false;
	}
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, reply);
	if (!j)
		return false;
	const char *k;
	json_t *x;
	json_object_foreach(j, k, x)
	{
		if (strcmp(k, "reason") != 0) {
			*reply = api_reply_problem(rq, PROBLEM_unknown_field,
						   "the member is reason", k,
						   NULL);
			json_decref(j);
			return false;
		}
	}
	const char *s = json_string_value(json_object_get(j, "reason"));
	size_t n = s ? strlen(s) : 0;
	bool ok = s && n < ADMIN_REASON_BYTES && (n > 0 || !required);
	for (size_t i = 0; ok && i < n; i++)
		ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
	if (ok)
		memcpy(out, s, n);
	json_decref(j);
	if (!ok)
		*reply = api_reply_problem(rq, PROBLEM_invalid_field,
					   "1..127 bytes without control "
					   "characters",
					   "reason", NULL);
	return ok;
}

/* Does the caller's right hold one of ops?  Else its refusal is set
 * (403 issuer-not-owner, claim right.ops, as the route table's check). */
static bool caller_holds(struct request *rq, unsigned ops)
{
	const struct mandate_right *right = api_caller_right(&rq->auth.caller);
	if (right && (right->ops & ops))
		return true;
	rq->auth.err.code = MANDATE_ERR_op_not_allowed;
	rq->auth.err.link = 0;
	snprintf(rq->auth.err.claim, sizeof(rq->auth.err.claim), "%s",
		 "right.ops");
	return false;
}

/* A decision needs the right of the operation decided: policy:admin for
 * a client policy, principals:admin or policy:admin for a role (a
 * security officer or an operator: any second administrator but a
 * support or an auditor).  Checked before the request is looked up, so
 * that a caller with neither learns nothing of it. */
static enum MHD_Result decide(struct request *rq, u32 decision)
{
	struct admin_decide_cmd c = {0};
	struct admin_request_info r;
	enum MHD_Result reply;

	if (!caller_holds(rq, MANDATE_OP_POLICY_ADMIN |
				      MANDATE_OP_PRINCIPALS_ADMIN))
		return api_reply_auth(rq);
	if (!admin_named_caller(rq, c.author))
		return api_reply_problem(rq, PROBLEM_not_an_administrator,
					 "decide with a mandate of one link "
					 "that a named administrator signed "
					 "to itself (its sign-in), proven "
					 "with its own key",
					 NULL, NULL);
	if (!decision_reason(rq, decision == ADMIN_BREAK_GLASS, c.reason,
			     &reply))
		return reply;
	bool dropped;
	if (!request_get(rq, (u64)rq->path_id, &r, &dropped))
		return reply_no_request(rq, dropped);
	if (r.op != ADMIN_OP_ROLE && !caller_holds(rq, MANDATE_OP_POLICY_ADMIN))
		return api_reply_auth(rq);
	memcpy(c.requester, r.author, 32);
	c.request = r.id;
	c.decision = decision;
	void *ext = api_command(rq, ADMIN_CMD_DECIDE, sizeof(c), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &c, sizeof(c));
	atomic_store(&rq->srv->policy_seen, true);
	return submit(rq);
}

enum MHD_Result admin_route_approve(struct request *rq)
{
	return decide(rq, ADMIN_APPROVE);
}

enum MHD_Result admin_route_reject(struct request *rq)
{
	return decide(rq, ADMIN_REJECT);
}

enum MHD_Result admin_route_break_glass(struct request *rq)
{
	return decide(rq, ADMIN_BREAK_GLASS);
}
