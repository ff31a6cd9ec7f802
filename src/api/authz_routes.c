/*
 * authz_routes.c - authorization of every /v1 route, and the routes of
 * the authorization state: /v1/principals, /v1/keys, /v1/revocations.
 * docs/authz.md is the contract; the right each route needs is in its
 * row of API_ROUTES (routes.h), checked by authz_check_route() below, and
 * in docs/api.md.
 */
#include "api/internal.h"
#include "api/tls.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/policy.h"
#include "core/result.h"
#include "core/u128.h"
#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "crypto/keyring.h"
#include "engine/logger.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

/* The revocation list is good for a day: fetch it again before. */
#define REVOCATIONS_NEXT_UPDATE_S (24 * 3600)
/* Largest list a GET /v1/principals returns. */
#define PRINCIPALS_LIST_MAX 10000u
/* Revocations per signed page of GET /v1/revocations (~120 bytes each:
 * a page stays far under the 1 MiB a server-signed payload may be). */
#define REVOCATIONS_PAGE 2000u
/* Issuers listed for one jti by GET /v1/revocations/{jti}, at most. */
#define REVOCATION_STATUS_MAX 64u
/* Refusals of our own in auth.err.code, below the MANDATE_ERR_* codes. */
enum {
	/* Not configured: every /v1 request answers 503. */
	AUTH_ERR_UNCONFIGURED = -1,
	/* The guard's counters are at their limit: 507. */
	AUTH_ERR_STATE_FULL = -2,
};

static int set_err(struct request *rq, int code, int link, const char *claim)
{
	rq->auth.err.code = code;
	rq->auth.err.link = link;
	snprintf(rq->auth.err.claim, sizeof(rq->auth.err.claim), "%s",
		 claim ? claim : "");
	return -1;
}

static void id_text(const u8 id[32], char out[JOSE_B64_32_BYTES])
{
	b64url_encode(out, JOSE_B64_32_BYTES, id, 32);
}

static bool id_parse(const char *text, u8 out[32])
{
	size_t n;
	return strlen(text) == 43 &&
	       b64url_decode(out, 32, text, 43, &n) == 0 && n == 32;
}

static const u8 zero32[32];

/* ---- authentication and per-route rights ----------------------------- */

/* A read the operator opened to anyone (RF_OPEN_IF_PUBLIC and the
 * manifest_public setting)? */
static bool open_if_public(const struct request *rq)
{
	return (api_routes[rq->route].flags & RF_OPEN_IF_PUBLIC) &&
	       rq->srv->manifest_public &&
	       api_route_right(rq->route, rq->method) == RIGHT_PRINCIPAL;
}

void authz_begin(struct request *rq, const char *url, const char *method)
{
	struct api_server *s = rq->srv;
	struct MHD_Connection *c = rq->conn;
	const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							"Authorization");
	const char *dpop =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, "DPoP");
	const char *host =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");

	rq->auth.checked = true;
	memset(&rq->auth.err, 0, sizeof(rq->auth.err));
	if (!s->authz) {
		rq->auth.err.code = AUTH_ERR_UNCONFIGURED;
		return;
	}
	/* A revocation statement proves itself: no credential needed. */
	if (!authz && api_route_right(rq->route, rq->method) == RIGHT_OPEN)
		return;
	/* The manifest, where the operator made it public (signed, no
	 * secret in it): no credential is no caller, not an error. */
	if (!authz && open_if_public(rq))
		return;
	struct api_authz_conn conn = {
		.client = s->tls ? api_tls_client(c) : NULL,
		.slot = s->tls ? api_tls_conn_slot(c) : NULL,
	};
	api_authz_authenticate(s->authz, s->e, authz, dpop, method, host, url,
			       &conn, &rq->auth.caller, &rq->auth.err);
}

/* Does the organisation calling own this account? */
static bool org_owns(struct request *rq, u128 account)
{
	u8 owner[32];
	engine_read_begin(rq->srv->e);
	bool found = auth_owner_get(engine_auth(rq->srv->e), account, owner);
	engine_read_end(rq->srv->e);
	return found && memcmp(owner, rq->auth.caller.root, 32) == 0;
}

/* The right to check a request with: the caller's, except for an
 * organisation, whose right (api_org_right) covers the accounts it owns
 * among the up to four this request names (a, b, c, d; 0: none), found
 * now and added to its list in *own. */
static const struct mandate_right *
right_for(struct request *rq, struct mandate_right *own, const u128 ids[4])
{
	if (!rq->auth.caller.org)
		return api_caller_right(&rq->auth.caller);
	*own = api_org_right;
	unsigned n = 0;
	for (unsigned i = 0; i < 4; i++) {
		bool seen = ids[i] == 0;
		for (unsigned k = 0; k < n && !seen; k++)
			seen = own->accounts[k] == ids[i];
		if (!seen && org_owns(rq, ids[i]))
			own->accounts[n++] = ids[i];
	}
	if (n > 0)
		own->n_accounts = (uint8_t)n;
	return own;
}

static int check_op(struct request *rq, unsigned op, bool has_account,
		    u128 account)
{
	struct mandate_right own;
	const u128 ids[4] = {has_account ? account : 0, 0, 0, 0};
	const struct mandate_right *r = right_for(rq, &own, ids);
	if (mandate_right_check_op(r, op, has_account, account,
				   &rq->auth.err) != 0)
		return -1;
	return 0;
}

static int check_event(struct request *rq, const struct transfer *t,
		       const struct transfer *p)
{
	struct mandate_right own;
	const u128 ids[4] = {t->debit_account_id, t->credit_account_id,
			     p ? p->debit_account_id : 0,
			     p ? p->credit_account_id : 0};
	const struct mandate_right *r = right_for(rq, &own, ids);
	return mandate_right_check_transfer(r, t, p, &rq->auth.err);
}

/* Reading a transfer: a right limited to accounts covers the transfers
 * that debit or credit one of them. */
static int check_transfer_read(struct request *rq, unsigned op)
{
	const struct mandate_right *r = api_caller_right(&rq->auth.caller);
	if (r->n_accounts == 0)
		return check_op(rq, op, false, 0);
	struct transfer t;
	enum pending_status ps;
	int found = engine_lookup_transfer(rq->srv->e, rq->path_id, &t, &ps);
	if (found != 0) /* as if it were someone else's: no existence leak */
		return set_err(rq, MANDATE_ERR_account_not_allowed, 0,
			       "right.accounts");
	if (check_op(rq, op, true, t.debit_account_id) == 0)
		return 0;
	return check_op(rq, op, true, t.credit_account_id);
}

bool authz_may_read_audit(struct request *rq)
{
	struct mandate_error ignored;
	const struct mandate_right *r = api_caller_right(&rq->auth.caller);

	memset(&ignored, 0, sizeof(ignored));
	return rq->auth.caller.authenticated &&
	       mandate_right_check_op(r, MANDATE_OP_AUDIT_READ, false, 0,
				      &ignored) == 0;
}

int authz_check_route(struct request *rq)
{
	u32 op = api_route_right(rq->route, rq->method);

	if (rq->auth.err.code != 0)
		return -1;
	if (op == RIGHT_OPEN)
		return 0; /* a statement that proves itself */
	if (!rq->auth.caller.authenticated && open_if_public(rq))
		return 0;
	if (!rq->auth.caller.authenticated)
		return set_err(rq, MANDATE_ERR_malformed, 0, NULL);
	if (op == RIGHT_PRINCIPAL)
		return 0; /* whoever it is, authenticated */
	/* A row without a right for this method: refuse (fail closed). */
	if (op == 0)
		return set_err(rq, MANDATE_ERR_op_not_allowed, 0, "right.ops");
	switch ((enum route_scope)api_routes[rq->route].scope) {
	case RA_ANY:
		/* New accounts are no one's yet: an unscoped right, which
		 * only a chain rooted at the administrator can hold. */
		return check_op(rq, op, false, 0);
	case RA_ACCOUNT: return check_op(rq, op, true, rq->path_id);
	case RA_TRANSFER: return check_transfer_read(rq, op);
	case RA_EVENTS:
		/* Each event is checked once decoded (authz_check_transfers);
		 * a right with none of the ops is refused before the body. */
		if (!(api_caller_right(&rq->auth.caller)->ops & op))
			return set_err(rq, MANDATE_ERR_op_not_allowed, 0,
				       "right.ops");
		return 0;
	case RA_PUBLIC:
	default: return set_err(rq, MANDATE_ERR_op_not_allowed, 0, "right.ops");
	}
}

/* The pending transfers a batch creates, by id then position, so that
 * a post or void may name one created earlier in the same batch (a
 * pending and its post sent together) in O(log n) per event. */
struct batch_pending {
	u128 id;
	u32 i;
};

static int batch_pending_cmp(const void *a, const void *b)
{
	const struct batch_pending *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* The latest pending transfer with id created before event i, or NULL. */
static const struct transfer *batch_pending_find(const struct batch_pending *v,
						 u32 n,
						 const struct transfer *t,
						 u128 id, u32 i)
{
	u32 lo = 0, hi = n; /* first entry not below (id, i) */
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		if (v[mid].id < id || (v[mid].id == id && v[mid].i < i))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || v[lo - 1].id != id)
		return NULL;
	return &t[v[lo - 1].i];
}

/*
 * Each event against the caller's right (mandate_right_check_transfer).
 * A post or void is checked against the pending transfer it names: read
 * from the ledger under the read lock (a pending transfer never changes
 * once created, so it is what the ledger will apply to), else one created
 * earlier in the batch, looked up after the lock is released.  What a
 * pending created meanwhile by someone else under the same id would mean
 * is in docs/authz.md.
 */
int authz_check_transfers(struct request *rq)
{
	if (rq->auth.caller.bearer)
		return 0;
	const struct transfer *t = rq->eng.events;
	const u16 pv =
		TRANSFER_POST_PENDING_TRANSFER | TRANSFER_VOID_PENDING_TRANSFER;
	bool *later = NULL; /* pv events whose pending the ledger lacks */
	u32 n_later = 0;
	int ret = 0;

	for (u32 i = 0; i < rq->eng.count && ret == 0; i++) {
		struct transfer p;
		enum pending_status ps;
		const struct transfer *pp = NULL;
		if (t[i].flags & pv) {
			if (engine_lookup_transfer(rq->srv->e, t[i].pending_id,
						   &p, &ps) != 0) {
				if (!later)
					later = calloc(rq->eng.count,
						       sizeof(*later));
				if (!later) {
					ret = set_err(rq, MANDATE_ERR_internal,
						      0, NULL);
					break;
				}
				later[i] = true;
				n_later++;
				continue;
			}
			pp = &p;
		}
		if (check_event(rq, &t[i], pp))
			ret = -1;
	}
	if (ret != 0 || n_later == 0) {
		free(later);
		return ret;
	}

	u32 n = 0;
	struct batch_pending *v = malloc(rq->eng.count * sizeof(*v));
	if (!v) {
		free(later);
		return set_err(rq, MANDATE_ERR_internal, 0, NULL);
	}
	for (u32 i = 0; i < rq->eng.count; i++)
		if ((t[i].flags & TRANSFER_PENDING) && !(t[i].flags & pv))
			v[n++] = (struct batch_pending){t[i].id, i};
	qsort(v, n, sizeof(*v), batch_pending_cmp);
	for (u32 i = 0; i < rq->eng.count && ret == 0; i++) {
		if (!later[i])
			continue;
		const struct transfer *pp =
			batch_pending_find(v, n, t, t[i].pending_id, i);
		if (check_event(rq, &t[i], pp))
			ret = -1;
	}
	free(v);
	free(later);
	return ret;
}

/* The owner of accounts created by this request: ?owner=, else the
 * principal at the root of the caller's mandate (all zero: the
 * administrator).  Only the administrator may name another owner. */
static enum authz_build accounts_owner(struct request *rq, u8 owner[32])
{
	u8 admin[32], me[32];
	api_authz_admin_id(rq->srv->authz, admin);
	memcpy(owner, rq->auth.caller.root, 32);
	/* A named administrator creates accounts for the server, as the
	 * administrator does: owning them would let it grant transfers
	 * over them, which no role holds. */
	bool named = admin_rooted_caller(rq, me);
	if (named)
		memcpy(owner, admin, 32);
	if (rq->auth.owner_param[0]) {
		if (!id_parse(rq->auth.owner_param, owner))
			return AUTHZ_OWNER_MALFORMED;
		if (!rq->auth.caller.root_admin && !named &&
		    memcmp(owner, rq->auth.caller.root, 32) != 0)
			return AUTHZ_OWNER_NOT_YOURS;
		if (memcmp(owner, admin, 32) != 0) {
			engine_read_begin(rq->srv->e);
			bool known = auth_principal_get(engine_auth(rq->srv->e),
							owner, NULL);
			engine_read_end(rq->srv->e);
			if (!known)
				return AUTHZ_OWNER_UNKNOWN;
			if (named &&
			    admin_role_now(rq, owner) != ADMIN_ROLE_NONE)
				return AUTHZ_OWNER_ADMINISTRATOR;
		}
	}
	if (memcmp(owner, admin, 32) == 0)
		memset(owner, 0, 32);
	return AUTHZ_BUILT;
}

enum authz_build authz_build_command(struct request *rq)
{
	if (!rq->auth.caller.authenticated)
		return AUTHZ_BUILT;
	if (rq->eng.base_op == ENGINE_CREATE_ACCOUNTS) {
		u8 owner[32];
		enum authz_build r = accounts_owner(rq, owner);
		if (r != AUTHZ_BUILT)
			return r;
		if (memcmp(owner, zero32, 32) == 0)
			return AUTHZ_BUILT; /* the administrator's: a plain
					       batch */
		struct auth_owner *o =
			api_command(rq, AUTH_CMD_ACCOUNTS_OWNED, sizeof(*o),
				    rq->eng.events, rq->eng.count);
		if (!o)
			return AUTHZ_BUILD_NO_MEMORY;
		memcpy(o->owner, owner, 32);
		return AUTHZ_BUILT;
	}
	if (rq->eng.base_op != ENGINE_CREATE_TRANSFERS ||
	    !rq->auth.caller.chain)
		return AUTHZ_BUILT;
	const struct mandate_chain *c = rq->auth.caller.chain;
	struct auth_guard *g = api_command(rq, AUTH_CMD_TRANSFERS_GUARDED_2,
					   c->n * (u32)sizeof(*g),
					   rq->eng.events, rq->eng.count);
	if (!g)
		return AUTHZ_BUILD_NO_MEMORY;
	for (unsigned k = 0; k < c->n; k++) {
		const struct mandate_link *ln = &c->links[k];
		struct auth_guard e = {0};
		memcpy(e.link, ln->hash, 32);
		memcpy(e.iss, ln->iss, 32);
		memcpy(e.jti_hash, ln->jti_hash, 32);
		if (ln->right.has_total_cap) {
			e.flags |= AUTH_GUARD_TOTAL_CAP;
			e.total_cap = ln->right.total_cap;
		}
		if (ln->right.has_uses) {
			e.flags |= AUTH_GUARD_USES;
			e.uses_max = ln->right.uses;
		}
		memcpy(&g[k], &e, sizeof(e));
	}
	return AUTHZ_BUILT;
}

bool authz_guard_refused(struct request *rq)
{
	if (rq->eng.count == 0)
		return false;
	switch (rq->eng.results[0]) {
	case CREATE_TRANSFER_mandate_revoked:
		set_err(rq, MANDATE_ERR_revoked, 0, NULL);
		return true;
	case CREATE_TRANSFER_exceeds_mandate_total_cap:
		set_err(rq, MANDATE_ERR_total_cap_exceeded, 0,
			"right.total_cap");
		return true;
	case CREATE_TRANSFER_exceeds_mandate_uses:
		set_err(rq, MANDATE_ERR_uses_exceeded, 0, "right.uses");
		return true;
	case CREATE_TRANSFER_mandate_counters_full:
		/* 507 state-full, through api_reply_auth's fallback */
		set_err(rq, AUTH_ERR_STATE_FULL, 0, NULL);
		return true;
	default: return false;
	}
}

/* What the refusals about the client certificate say (docs/authz.md,
 * "Certificate-bound mandates"), NULL for the others. */
static const char *cert_detail(struct request *rq,
			       const struct mandate_error *e)
{
	bool cert = rq->srv->tls && api_tls_client(rq->conn);

	if (e->code == MANDATE_ERR_malformed &&
	    strcmp(e->claim, AUTHZ_CLAIM_CERT) == 0)
		return "the client certificate names no registered principal: "
		       "register its key (POST /v1/principals with "
		       "certificate) or send an Authorization header";
	if (e->code == MANDATE_ERR_dpop_wrong_key &&
	    strcmp(e->claim, AUTHZ_CLAIM_X5T) == 0)
		return cert ? "the mandate is bound to another client "
			      "certificate (cnf x5t#S256)"
			    : "the mandate is bound to a client certificate "
			      "(cnf x5t#S256) and this connection has none";
	if (e->code == MANDATE_ERR_dpop_missing &&
	    strcmp(e->claim, "cnf.jwk") == 0)
		return "the mandate is bound to a key (cnf jwk): send it as "
		       "Authorization: DPoP with a DPoP proof";
	return NULL;
}

enum MHD_Result api_reply_auth(struct request *rq)
{
	const struct mandate_error *e = &rq->auth.err;
	if (e->code == AUTH_ERR_STATE_FULL)
		return api_reply_problem(rq, PROBLEM_state_full,
					 "the mandate counters are at their "
					 "limit",
					 NULL, NULL);
	if (e->code == AUTH_ERR_UNCONFIGURED || e->code <= 0 ||
	    e->code >= MANDATE_ERR_COUNT)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "authorization is not configured",
					 NULL, NULL);
	unsigned status = (unsigned)mandate_err_status(e->code);
	const char *name = mandate_err_name(e->code);
	const char *title = mandate_err_title(e->code);
	struct wbuf b = WBUF_INIT(1024);
	char slug[64];
	size_t i = 0;
	for (; name[i] && i + 1 < sizeof(slug); i++)
		slug[i] = name[i] == '_' ? '-' : name[i];
	slug[i] = '\0';

	wbuf_puts(&b, "{\"type\":\"/problems/");
	wbuf_puts(&b, slug);
	wbuf_puts(&b, "\",\"title\":");
	wbuf_put_json_str(&b, title, strlen(title));
	wbuf_puts(&b, ",\"status\":");
	wbuf_put_u64(&b, status);
	wbuf_puts(&b, ",\"check\":");
	wbuf_put_json_str(&b, name, strlen(name));
	const char *detail = cert_detail(rq, e);
	if (detail) {
		wbuf_puts(&b, ",\"detail\":");
		wbuf_put_json_str(&b, detail, strlen(detail));
	} else if (e->code == MANDATE_ERR_malformed &&
		   strcmp(e->claim, "statement") != 0 &&
		   !MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						"Authorization"))
		wbuf_puts(&b, ",\"detail\":\"no Authorization header: send "
			      "the administrator's bearer token, or a mandate "
			      "with a DPoP proof (docs/authz.md)\"");
	if (e->link > 0) {
		wbuf_puts(&b, ",\"link\":");
		wbuf_put_u64(&b, (u64)e->link);
	}
	if (e->claim[0]) {
		wbuf_puts(&b, ",\"claim\":");
		wbuf_put_json_str(&b, e->claim, strlen(e->claim));
	}
	wbuf_puts(&b, ",\"instance\":");
	wbuf_put_json_str(&b, rq->request_id, strlen(rq->request_id));
	wbuf_putc(&b, '}');
	return api_reply(rq, status, &b, PROBLEM_CONTENT_TYPE, NULL);
}

/* ---- /v1/principals ---------------------------------------------------- */

static void put_time(struct wbuf *b, const char *key, int64_t t);

static void put_principal(struct wbuf *b, const struct auth_principal_info *p,
			  u32 role)
{
	char id[JOSE_B64_32_BYTES];
	struct jose_pubkey k = {0};
	char jwk[JOSE_JWK_BYTES_MAX];

	struct auth_x509_pub x;
	bool org = auth_principal_x509(p->pub, &x);

	id_text(p->id, id);
	memcpy(k.x, p->pub, 32);
	if (org || jose_pubkey_to_jwk(&k, jwk, sizeof(jwk)) != 0)
		jwk[0] = '\0';
	wbuf_puts(b, "{\"id\":\"");
	wbuf_puts(b, id);
	wbuf_puts(b, "\",\"name\":");
	if (p->name[0])
		wbuf_put_json_str(b, p->name, strlen(p->name));
	else
		wbuf_puts(b, "null");
	wbuf_puts(b, ",\"jwk\":");
	wbuf_puts(b, jwk[0] ? jwk : "null");
	if (org) {
		/* An organisation: its id is its certificate key's
		 * SHA-256, and its certificate's dates when it was
		 * registered by its certificate. */
		wbuf_puts(b, ",\"type\":\"x509\",\"spki_sha256\":\"");
		wbuf_puts(b, id);
		wbuf_putc(b, '"');
		put_time(b, ",\"not_after\":",
			 x.not_after ? x.not_after : KEYRING_NEVER);
	}
	if (role != ADMIN_ROLE_NONE) { /* a named administrator */
		wbuf_puts(b, ",\"role\":\"");
		wbuf_puts(b, admin_role_name(role));
		wbuf_putc(b, '"');
	}
	wbuf_puts(b, ",\"registered_at\":\"");
	wbuf_put_u64(b, p->timestamp);
	wbuf_puts(b, "\"}");
}

/* The principals are copied out under the read lock and formatted after
 * it (JWKs and escaping are not the writer's to wait for). */
static enum MHD_Result principals_list(struct request *rq)
{
	struct engine *e = rq->srv->e;
	engine_read_begin(e);
	const struct auth *a = engine_auth(e);
	u32 n = auth_principal_count(a);
	u32 shown = n < PRINCIPALS_LIST_MAX ? n : PRINCIPALS_LIST_MAX;
	struct auth_principal_info *ps =
		malloc((size_t)(shown ? shown : 1) * sizeof(*ps));
	u32 *roles = malloc((size_t)(shown ? shown : 1) * sizeof(*roles));
	for (u32 i = 0; ps && roles && i < shown; i++) {
		auth_principal_at(a, i, &ps[i]);
		roles[i] = admin_role_of(auth_admin(a), ps[i].id);
	}
	engine_read_end(e);
	if (!ps || !roles) {
		free(ps);
		free(roles);
		ps = NULL;
	}
	if (!ps)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	/* id 43, name up to 64 x 6 escaped, JWK ~100, time 20, keys */
	struct wbuf b = WBUF_INIT((size_t)shown * 640 + 64);
	wbuf_puts(&b, "{\"principals\":[");
	for (u32 i = 0; i < shown; i++) {
		if (i)
			wbuf_putc(&b, ',');
		put_principal(&b, &ps[i], roles[i]);
	}
	free(ps);
	free(roles);
	wbuf_puts(&b, "],\"count\":");
	wbuf_put_u64(&b, n);
	wbuf_puts(&b, n > shown ? ",\"truncated\":true}" : "}");
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result authz_route_principal(struct request *rq)
{
	u8 id[32];
	struct auth_principal_info p;
	if (!id_parse(rq->text_id, id))
		return api_reply_problem(rq, PROBLEM_invalid_id,
					 "a principal id is the 43-character "
					 "base64url RFC 7638 thumbprint",
					 "id", NULL);
	engine_read_begin(rq->srv->e);
	bool found = auth_principal_get(engine_auth(rq->srv->e), id, &p);
	engine_read_end(rq->srv->e);
	if (!found)
		return api_reply_problem(rq, PROBLEM_principal_not_found, NULL,
					 NULL, NULL);
	struct wbuf b = WBUF_INIT(512);
	put_principal(&b, &p, admin_role_now(rq, p.id));
	return api_reply_json(rq, 200, &b);
}

/* An organisation's certificate key (docs/authz.md, "Organisation
 * principals"): "certificate" (PEM: the key's SHA-256 and its dates) or
 * "spki_sha256" (the SHA-256 alone, base64url; its dates not known). */
static const char *x509_principal(const json_t *cert, const json_t *spki,
				  struct auth_principal *p, const char **field)
{
	struct auth_x509_pub x = {.magic = AUTH_X509_MAGIC};

	if (cert) {
		const char *pem = json_string_value(cert);
		*field = "certificate";
		if (!pem ||
		    api_tls_cert_identity(pem, strlen(pem), p->id, NULL,
					  &x.not_before, &x.not_after) != 0)
			return "a PEM X.509 certificate that GnuTLS can read";
		if (x.not_before < 0 || x.not_after <= 0)
			return "a certificate dated after 1970";
	} else {
		*field = "spki_sha256";
		if (!json_is_string(spki) ||
		    !id_parse(json_string_value(spki), p->id))
			return "the 43-character base64url SHA-256 of the "
			       "certificate's SubjectPublicKeyInfo";
	}
	memcpy(p->pub, &x, sizeof(x));
	return NULL;
}

static enum MHD_Result principals_post(struct request *rq)
{
	enum MHD_Result reply;
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, &reply);
	if (!j)
		return reply;
	json_t *jwk = json_object_get(j, "jwk");
	json_t *name = json_object_get(j, "name");
	json_t *cert = json_object_get(j, "certificate");
	json_t *spki = json_object_get(j, "spki_sha256");
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		if (strcmp(k, "jwk") != 0 && strcmp(k, "name") != 0 &&
		    strcmp(k, "certificate") != 0 &&
		    strcmp(k, "spki_sha256") != 0) {
			/* k lives in j: reply before letting go of it */
			enum MHD_Result r = api_reply_problem(
				rq, PROBLEM_unknown_field,
				"members are jwk (an Ed25519 principal) or "
				"certificate or spki_sha256 (an organisation), "
				"and name",
				k, NULL);
			json_decref(j);
			return r;
		}
	}
	if ((jwk != NULL) + (cert != NULL) + (spki != NULL) != 1) {
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "give exactly one of jwk, certificate "
					 "and spki_sha256",
					 "jwk", NULL);
	}
	struct auth_principal p = {0};
	struct jose_pubkey pub;
	const char *why = NULL, *field = "jwk";
	if (jwk) {
		char *text = json_is_object(jwk) ? json_dumps(jwk, JSON_COMPACT)
						 : NULL;
		int r = text ? jose_pubkey_parse_jwk(text, strlen(text), &pub)
			     : -JOSE_key_bad_json;
		free(text);
		why = r != 0 ? jose_err_desc(r) : NULL;
		/* Never mistaken for an organisation's record. */
		if (!why && auth_principal_x509(pub.x, NULL))
			why = "this key cannot be registered";
	} else {
		why = x509_principal(cert, spki, &p, &field);
	}
	if (why) {
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_invalid_field, why, field,
					 NULL);
	}
	if (name && !json_is_null(name)) {
		const char *s = json_string_value(name);
		size_t n = s ? strlen(s) : 0;
		bool ok = s && n > 0 && n <= AUTH_NAME_BYTES;
		for (size_t i = 0; ok && i < n; i++)
			ok = s[i] > 0x20 && s[i] < 0x7f;
		if (!ok) {
			json_decref(j);
			return api_reply_problem(
				rq, PROBLEM_invalid_field,
				"a name is 1..64 printable ASCII characters "
				"without spaces",
				"name", NULL);
		}
		memcpy(p.name, s, n);
	}
	json_decref(j);
	u16 kind = AUTH_CMD_PRINCIPAL_X509;
	if (jwk) {
		char tp[JOSE_B64_32_BYTES];
		size_t n;
		if (jose_thumbprint(&pub, tp) != 0 ||
		    b64url_decode(p.id, 32, tp, strlen(tp), &n) != 0)
			return api_reply_problem(rq, PROBLEM_internal_error,
						 NULL, NULL, NULL);
		memcpy(p.pub, pub.x, 32);
		kind = AUTH_CMD_PRINCIPAL;
	}
	void *ext = api_command(rq, kind, sizeof(p), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &p, sizeof(p));
	return MHD_YES;
}

/* ---- /v1/keys ------------------------------------------------------------ */

static void put_time(struct wbuf *b, const char *key, int64_t t)
{
	wbuf_puts(b, key);
	if (t == KEYRING_NEVER) {
		wbuf_puts(b, "null");
		return;
	}
	char buf[POLICY_TIME_TEXT_BYTES];
	if (policy_format_time(t, buf) != 0) {
		wbuf_puts(b, "null");
		return;
	}
	wbuf_putc(b, '"');
	wbuf_puts(b, buf);
	wbuf_putc(b, '"');
}

enum MHD_Result authz_route_keys(struct request *rq)
{
	struct keyring *kr = rq->srv->keyring;
	if (!kr)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "no keyring loaded", NULL, NULL);
	int64_t now = (int64_t)time(NULL);
	struct keyring_key keys[KEYRING_KEYS_MAX];
	size_t n = keyring_keys_copy(kr, keys, KEYRING_KEYS_MAX);
	const struct keyring_key *cur = NULL;
	struct keyring_key current;
	if (keyring_current_copy(kr, now, &current) == 0)
		cur = &current;
	struct wbuf b = WBUF_INIT(256 + n * 300);
	wbuf_puts(&b, "{\"keys\":[");
	for (size_t i = 0; i < n; i++) {
		const struct keyring_key *k = &keys[i];
		const char *status = cur && strcmp(cur->kid, k->kid) == 0
					     ? "current"
				     : now < k->expires_at ? "verifying"
							   : "expired";
		if (i)
			wbuf_putc(&b, ',');
		wbuf_puts(&b, "{\"kid\":\"");
		wbuf_puts(&b, k->kid);
		wbuf_puts(&b, "\",\"status\":\"");
		wbuf_puts(&b, status);
		wbuf_putc(&b, '"');
		put_time(&b, ",\"created_at\":", k->created_at);
		put_time(&b, ",\"activate_at\":", k->activate_at);
		put_time(&b, ",\"retire_at\":", k->retire_at);
		put_time(&b, ",\"expires_at\":", k->expires_at);
		wbuf_putc(&b, '}');
	}
	wbuf_puts(&b, "]}");
	return api_reply_json(rq, 200, &b);
}

/* The overlap a rotation asks for: an empty body, or {} without it, is
 * the setting; {"overlap_s": N} with N in [0, KEYRING_OVERLAP_MAX_S].
 * Returns false with the refusal queued in *reply. */
static bool rotate_overlap(struct request *rq, int64_t *overlap_s,
			   enum MHD_Result *reply)
{
	*overlap_s = rq->srv->key_overlap_s;
	if (rq->body.len == 0 && !rq->body.too_large && !rq->body.over_budget)
		return true;
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, reply);
	if (!j)
		return false;
	const char *k;
	json_t *x;
	bool ok = true;
	json_object_foreach(j, k, x)
	{
		if (strcmp(k, "overlap_s") != 0) {
			/* k lives in j: reply before letting go of it */
			*reply = api_reply_problem(rq, PROBLEM_unknown_field,
						   "the member is overlap_s", k,
						   NULL);
			ok = false;
			break;
		}
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > KEYRING_OVERLAP_MAX_S) {
			*reply = api_reply_problem(
				rq, PROBLEM_invalid_field,
				"seconds the retired keys keep verifying: 0 "
				"(a leaked key) to 316224000 (10 years)",
				"overlap_s", NULL);
			ok = false;
			break;
		}
		*overlap_s = (int64_t)json_integer_value(x);
	}
	json_decref(j);
	return ok;
}

static enum MHD_Result keys_rotate(struct request *rq)
{
	struct keyring *kr = rq->srv->keyring;
	if (!kr)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "no keyring loaded", NULL, NULL);
	int64_t overlap_s;
	enum MHD_Result reply;
	if (!rotate_overlap(rq, &overlap_s, &reply))
		return reply;
	int64_t now = (int64_t)time(NULL);
	struct keyring_rotation *rot = malloc(sizeof(*rot));
	char err[KEYRING_ERR_BYTES];
	if (!rot)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	int r = keyring_rotate(kr, now, overlap_s, rot, err, sizeof(err));
	if (r != 0) {
		free(rot);
		/* The keyring's words name files and directories: for the
		 * log only, never for the reply. */
		log_at(LOG_ERROR, "key rotation failed", LOG_STR("reason", err),
		       LOG_STR("code", keyring_strerror(r)));
		if (r == KEYRING_E_KEK_UNAVAILABLE)
			return api_reply_sign_failed(rq, r, "a new key");
		if (r == KEYRING_E_IO) /* a file could not be written */
			return api_reply_problem(rq, PROBLEM_unavailable,
						 "the new key could not be "
						 "written; nothing changed; "
						 "retry later",
						 NULL, NULL);
		return api_reply_problem(rq, PROBLEM_key_rotation_failed,
					 "the signing key could not be "
					 "rotated; the server log says why",
					 NULL, NULL);
	}
	if (rot->n_dropped) {
		char kids[KEYRING_KEYS_MAX * (KEYRING_KID_BYTES + 1) + 1];
		keyring_rotation_dropped_text(rot, kids, sizeof(kids));
		log_at(LOG_WARN, "keys dropped to make room for the rotation",
		       LOG_NUM("count", rot->n_dropped), LOG_STR("kids", kids));
	}
	struct auth_key_event ev = {0};
	snprintf(ev.kid, sizeof(ev.kid), "%s", rot->created.kid);
	memcpy(ev.pub, rot->created.pub, 32);
	ev.not_before = now;
	ev.not_after = now + overlap_s; /* previous keys verify until */
	ev.kind = AUTH_KEY_CREATED;
	free(rot);
	log_at(LOG_INFO, "signing key rotated", LOG_STR("kid", ev.kid),
	       LOG_NUM("overlap_s", (u64)overlap_s));
	void *ext = api_command(rq, AUTH_CMD_KEY, sizeof(ev), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &ev, sizeof(ev));
	return MHD_YES;
}

/* ---- /v1/revocations ------------------------------------------------------
 */

static json_t *revocation_json(const struct auth_revocation *r)
{
	char iss[JOSE_B64_32_BYTES];
	id_text(r->iss, iss);
	json_t *o = json_pack("{s:s, s:I}", "iss", iss, "at",
			      (json_int_t)(r->timestamp / 1000000000u));
	if (o && !r->all)
		json_object_set_new(o, "jti", json_string(r->jti));
	return o;
}

static enum MHD_Result revocations_list(struct request *rq)
{
	struct keyring *kr = rq->srv->keyring;
	if (!kr)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "no keyring loaded", NULL, NULL);
	int64_t now = (int64_t)time(NULL);
	/* Partitioned like a CRL: REVOCATIONS_PAGE entries per signed
	 * document, in journal order; ?from= the first, "next" the page
	 * after when there is one. */
	const char *fs = MHD_lookup_connection_value(
		rq->conn, MHD_GET_ARGUMENT_KIND, "from");
	u128 from128 = 0;
	if (fs && u128_parse_dec(fs, strlen(fs), UINT32_MAX, &from128) != 0)
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "from is an entry number (0, "
					 "the \"next\" of a page)",
					 "from", NULL);
	u32 from = (u32)from128;
	/* The page is copied out under the read lock, made JSON after. */
	struct auth_revocation *page =
		malloc(REVOCATIONS_PAGE * sizeof(struct auth_revocation));
	if (!page)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	engine_read_begin(rq->srv->e);
	const struct auth *a = engine_auth(rq->srv->e);
	u32 n = auth_revocation_count(a);
	u32 end = from < n ? (n - from > REVOCATIONS_PAGE
				      ? from + REVOCATIONS_PAGE
				      : n)
			   : from;
	for (u32 i = from; i < end; i++)
		auth_revocation_at(a, i, &page[i - from]);
	engine_read_end(rq->srv->e);
	if (from > n) {
		free(page);
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "from is past the last revocation",
					 "from", NULL);
	}
	json_t *revoked = json_array(), *issuers = json_array();
	for (u32 i = 0; i < end - from; i++)
		json_array_append_new(page[i].all ? issuers : revoked,
				      revocation_json(&page[i]));
	free(page);
	json_t *claims =
		json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "iss",
			  rq->srv->origin ? rq->srv->origin : "tpwallet", "seq",
			  (json_int_t)n, "from", (json_int_t)from,
			  "this_update", (json_int_t)now, "next_update",
			  (json_int_t)(now + REVOCATIONS_NEXT_UPDATE_S),
			  "revoked", revoked, "issuers_revoked", issuers);
	if (claims && end < n)
		json_object_set_new(claims, "next", json_integer(end));
	if (!claims)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	size_t cap = KEYRING_JWS_BYTES_MAX + 1, len = 0;
	char *out = malloc(cap);
	int r = out ? keyring_sign_jwt(kr, now, "tpwallet-revocations+jwt",
				       claims, out, cap, &len)
		    : -ENOMEM;
	json_decref(claims);
	if (r != 0) {
		free(out);
		return api_reply_sign_failed(rq, r, "the revocation list");
	}
	struct wbuf b = WBUF_INIT(len + 1);
	wbuf_put(&b, out, len);
	free(out);
	return api_reply(rq, 200, &b, "application/jwt", NULL);
}

enum MHD_Result authz_route_revocation(struct request *rq)
{
	const char *jti = rq->text_id;
	/* A link is (issuer, jti): with ?iss= the answer is that link's,
	 * every revocation of the issuer included; without, "revoked"
	 * means by some issuer, as the list says. */
	const char *iss_text = MHD_lookup_connection_value(
		rq->conn, MHD_GET_ARGUMENT_KIND, "iss");
	u8 iss[32], jti_hash[32];
	bool by_iss = iss_text && id_parse(iss_text, iss);
	if (iss_text && !by_iss)
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "iss is a principal id (43 base64url "
					 "characters)",
					 "iss", NULL);
	if (by_iss)
		crypto_hash_sha256(jti_hash, (const u8 *)jti, strlen(jti));

	/* Copied out under the read lock, formatted after it. */
	struct {
		u8 iss[32];
		u64 timestamp;
	} found[REVOCATION_STATUS_MAX];
	unsigned listed = 0;
	bool link_revoked = false;
	engine_read_begin(rq->srv->e);
	const struct auth *a = engine_auth(rq->srv->e);
	u32 n = auth_revocation_count(a);
	/* NEEDSWORK: a scan; an index by jti when lists grow large. */
	for (u32 i = 0; i < n && listed < REVOCATION_STATUS_MAX; i++) {
		struct auth_revocation r;
		auth_revocation_at(a, i, &r);
		if (r.all || strcmp(r.jti, jti) != 0)
			continue;
		memcpy(found[listed].iss, r.iss, 32);
		found[listed++].timestamp = r.timestamp;
	}
	if (by_iss)
		link_revoked = auth_revoked(a, iss, jti_hash);
	engine_read_end(rq->srv->e);

	struct wbuf b = WBUF_INIT(REVOCATION_STATUS_MAX * 96 + 256);
	wbuf_puts(&b, "{\"jti\":");
	wbuf_put_json_str(&b, jti, strlen(jti));
	wbuf_puts(&b, ",\"revocations\":[");
	for (unsigned i = 0; i < listed; i++) {
		char text[JOSE_B64_32_BYTES];
		id_text(found[i].iss, text);
		if (i)
			wbuf_putc(&b, ',');
		wbuf_puts(&b, "{\"iss\":\"");
		wbuf_puts(&b, text);
		wbuf_puts(&b, "\",\"at\":");
		wbuf_put_u64(&b, found[i].timestamp / 1000000000u);
		wbuf_putc(&b, '}');
	}
	wbuf_puts(&b, "]");
	if (listed == REVOCATION_STATUS_MAX)
		wbuf_puts(&b, ",\"truncated\":true");
	wbuf_puts(&b, ",\"status\":");
	if (by_iss)
		wbuf_puts(&b, link_revoked ? "\"revoked\"}" : "\"good\"}");
	else
		wbuf_puts(&b, listed ? "\"revoked\"}" : "\"good\"}");
	return api_reply_json(rq, 200, &b);
}

/* May this key write a revocation statement?  The administrator, a
 * registered principal, or a key of the caller's own verified chain (a
 * delegate revoking what it signed). */
static bool statement_issuer_known(struct request *rq, const u8 iss[32])
{
	u8 admin[32];
	api_authz_admin_id(rq->srv->authz, admin);
	if (memcmp(iss, admin, 32) == 0)
		return true;
	const struct mandate_chain *c = rq->auth.caller.chain;
	for (unsigned k = 0; c && k < c->n; k++)
		if (memcmp(c->links[k].iss, iss, 32) == 0 ||
		    memcmp(c->links[k].sub, iss, 32) == 0)
			return true;
	engine_read_begin(rq->srv->e);
	bool known = auth_principal_get(engine_auth(rq->srv->e), iss, NULL);
	engine_read_end(rq->srv->e);
	return known;
}

/*
 * Who pays for a statement by iss: nobody for the administrator's key
 * (false); a registered principal pays for itself (its own bucket); any
 * other key (a delegate, accepted because the caller's verified chain
 * names it) pays for the root of that chain (the delegates' bucket), so
 * keys minted below a mandate share their root's quota and never its
 * own bucket.  Fills rv's flags, payer and quota.
 */
static bool revocation_payer(struct request *rq, struct auth_revoke *rv)
{
	u8 admin[32];
	api_authz_admin_id(rq->srv->authz, admin);
	if (memcmp(rv->iss, admin, 32) == 0)
		return false;
	engine_read_begin(rq->srv->e);
	bool registered =
		auth_principal_get(engine_auth(rq->srv->e), rv->iss, NULL);
	engine_read_end(rq->srv->e);
	memcpy(rv->payer, registered ? rv->iss : rq->auth.caller.root, 32);
	rv->flags |= AUTH_REVOKE_QUOTA;
	if (!registered)
		rv->flags |= AUTH_REVOKE_DELEGATE;
	rv->quota = api_authz_revocation_quota(rq->srv->authz);
	return true;
}

/* Room for one more revocation in rv's bucket (checked again, in journal
 * order, by the state machine), and not in the last
 * AUTH_REVOCATIONS_RESERVE entries. */
static bool revocation_room(struct request *rq, const struct auth_revoke *rv)
{
	engine_read_begin(rq->srv->e);
	const struct auth *a = engine_auth(rq->srv->e);
	bool room = auth_revocations_by(a, rv->payer,
					rv->flags & AUTH_REVOKE_DELEGATE) <
			    rv->quota &&
		    auth_revocation_count(a) <
			    AUTH_REVOCATIONS_MAX - AUTH_REVOCATIONS_RESERVE;
	engine_read_end(rq->srv->e);
	return room;
}

/* Already revoked: answered without a journal entry. */
static bool already_revoked(struct request *rq, const struct auth_revoke *rv)
{
	bool all = rv->flags & AUTH_REVOKE_ALL;
	engine_read_begin(rq->srv->e);
	const struct auth *a = engine_auth(rq->srv->e);
	u8 zero[32] = {0};
	bool r = all ? auth_revoked(a, rv->iss, zero)
		     : auth_revoked(a, rv->iss, rv->jti_hash);
	engine_read_end(rq->srv->e);
	return r;
}

static enum MHD_Result revocations_post(struct request *rq)
{
	enum MHD_Result reply;
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, &reply);
	if (!j)
		return reply;
	struct auth_revoke rv = {0};
	json_t *stmt = json_object_get(j, "statement");
	if (stmt) {
		struct mandate_revocation m;
		const char *s = json_string_value(stmt);
		if (!s || json_object_size(j) != 1) {
			json_decref(j);
			return api_reply_problem(rq, PROBLEM_invalid_field,
						 "statement is the only member "
						 "and a compact JWS",
						 "statement", NULL);
		}
		int r = mandate_revocation_verify(s, strlen(s), time(NULL), &m,
						  &rq->auth.err);
		json_decref(j);
		if (r != 0) {
			/* the statement, not a missing header, is at fault */
			if (rq->auth.err.code == MANDATE_ERR_malformed &&
			    !rq->auth.err.claim[0])
				snprintf(rq->auth.err.claim,
					 sizeof(rq->auth.err.claim),
					 "statement");
			return api_reply_auth(rq);
		}
		memcpy(rv.iss, m.iss, 32);
		if (m.all) {
			rv.flags = AUTH_REVOKE_ALL;
		} else {
			memcpy(rv.jti_hash, m.jti_hash, 32);
			memcpy(rv.jti, m.jti, strlen(m.jti));
		}
		/* Anyone can make a key and sign: only a key the server knows
		 * may write a revocation, so the list cannot be flooded. */
		if (!statement_issuer_known(rq, m.iss))
			return api_reply_problem(
				rq, PROBLEM_unknown_revoker,
				"the statement's key is neither the "
				"administrator's nor a registered principal's; "
				"a delegate sends it with its own mandate "
				"(Authorization: DPoP) naming that key",
				NULL, NULL);
		/* The state machine enforces the quota (this check only
		 * refuses early): mark every statement but the admin's. */
		if (revocation_payer(rq, &rv) && !revocation_room(rq, &rv))
			return api_reply_problem(
				rq, PROBLEM_state_full,
				"the principal this key speaks for (or its "
				"delegates) made as many revocations as the "
				"revocations_per_principal setting allows, or "
				"the room left is the administrator's",
				NULL, NULL);
	} else {
		/* The plain form: the right to revoke anyone's links. */
		if (rq->auth.caller.authenticated &&
		    check_op(rq, MANDATE_OP_REVOKE, false, 0) != 0) {
			json_decref(j);
			return api_reply_auth(rq);
		}
		if (!rq->auth.caller.authenticated) {
			json_decref(j);
			set_err(rq, MANDATE_ERR_malformed, 0, NULL);
			return api_reply_auth(rq);
		}
		/* The administrator's plain form (right: revoke). */
		const char *iss = json_string_value(json_object_get(j, "iss"));
		const char *jti = json_string_value(json_object_get(j, "jti"));
		json_t *all = json_object_get(j, "all");
		bool is_all = json_is_true(all);
		size_t jn = jti ? strlen(jti) : 0;
		bool ok = iss && id_parse(iss, rv.iss) &&
			  (is_all ? !jti
				  : (jti && jn > 0 && jn <= AUTH_JTI_BYTES)) &&
			  (!all || json_is_boolean(all)) &&
			  json_object_size(j) == 2u;
		if (!ok) {
			json_decref(j);
			return api_reply_problem(
				rq, PROBLEM_invalid_body,
				"send {\"statement\": <JWS>}, or as the "
				"administrator {\"iss\": <id>, \"jti\": <jti>} "
				"or {\"iss\": <id>, \"all\": true}",
				NULL, NULL);
		}
		if (is_all) {
			rv.flags = AUTH_REVOKE_ALL;
		} else {
			memcpy(rv.jti, jti, jn);
			crypto_hash_sha256(rv.jti_hash, (const u8 *)jti, jn);
		}
		json_decref(j);
	}
	if (already_revoked(rq, &rv)) {
		char id[JOSE_B64_32_BYTES];
		struct wbuf b = WBUF_INIT(256);
		id_text(rv.iss, id);
		wbuf_puts(&b, "{\"iss\":\"");
		wbuf_puts(&b, id);
		wbuf_puts(&b, "\",\"status\":\"already_revoked\"}");
		return api_reply_json(rq, 200, &b);
	}
	void *ext = api_command(rq, AUTH_CMD_REVOKE, sizeof(rv), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &rv, sizeof(rv));
	return MHD_YES;
}

/* ---- dispatch and replies to commands ------------------------------------ */

static enum MHD_Result authz_command_reply(struct request *rq);

/* A handler that replied has moved the request on; one that built a
 * command leaves it for the engine. */
static enum MHD_Result submit_built(struct request *rq, enum MHD_Result r)
{
	if (rq->state == RS_REPLIED || r != MHD_YES || !rq->eng.payload)
		return r;
	return api_submit_command(rq, authz_command_reply);
}

enum MHD_Result authz_route_principals(struct request *rq)
{
	if (rq->method != METHOD_POST)
		return principals_list(rq);
	return submit_built(rq, principals_post(rq));
}

enum MHD_Result authz_route_keys_rotate(struct request *rq)
{
	return submit_built(rq, keys_rotate(rq));
}

enum MHD_Result authz_route_revocations(struct request *rq)
{
	if (rq->method != METHOD_POST)
		return revocations_list(rq);
	return submit_built(rq, revocations_post(rq));
}

static enum MHD_Result authz_command_reply(struct request *rq)
{
	u32 outcome = rq->eng.results ? rq->eng.results[0] : 0;
	const struct command_header *h = rq->eng.payload;
	const u8 *ext = (const u8 *)rq->eng.payload + sizeof(*h);
	struct wbuf b = WBUF_INIT(512);
	char id[JOSE_B64_32_BYTES];

	if (outcome == AUTH_FULL)
		return api_reply_problem(rq, PROBLEM_state_full,
					 "the authorization state is at one of "
					 "its limits (docs/authz.md)",
					 NULL, NULL);
	switch (h->kind) {
	case AUTH_CMD_PRINCIPAL:
	case AUTH_CMD_PRINCIPAL_X509: {
		const struct auth_principal *p = (const void *)ext;
		if (outcome == AUTH_NAME_TAKEN)
			return api_reply_problem(rq, PROBLEM_name_taken, NULL,
						 "name", NULL);
		id_text(p->id, id);
		wbuf_puts(&b, "{\"id\":\"");
		wbuf_puts(&b, id);
		wbuf_puts(&b, "\",\"status\":");
		wbuf_puts(&b, outcome == AUTH_OK ? "\"registered\"}"
						 : "\"exists\"}");
		return api_reply_json(rq, outcome == AUTH_OK ? 201 : 200, &b);
	}
	case AUTH_CMD_REVOKE: {
		const struct auth_revoke *r = (const void *)ext;
		id_text(r->iss, id);
		wbuf_puts(&b, "{\"iss\":\"");
		wbuf_puts(&b, id);
		wbuf_putc(&b, '"');
		if (r->flags & AUTH_REVOKE_ALL) {
			wbuf_puts(&b, ",\"all\":true");
		} else {
			wbuf_puts(&b, ",\"jti\":");
			wbuf_put_json_str(&b, r->jti,
					  strnlen(r->jti, AUTH_JTI_BYTES));
		}
		wbuf_puts(&b, ",\"status\":");
		wbuf_puts(&b, outcome == AUTH_OK ? "\"revoked\"}"
						 : "\"already_revoked\"}");
		return api_reply_json(rq, outcome == AUTH_OK ? 201 : 200, &b);
	}
	case AUTH_CMD_KEY: {
		const struct auth_key_event *k = (const void *)ext;
		wbuf_puts(&b, "{\"kid\":");
		wbuf_put_json_str(&b, k->kid, strnlen(k->kid, AUTH_KID_BYTES));
		put_time(&b, ",\"previous_keys_verify_until\":", k->not_after);
		wbuf_puts(&b, ",\"overlap_s\":");
		wbuf_put_u64(&b, (u64)(k->not_after - k->not_before));
		wbuf_puts(&b, ",\"status\":\"rotated\"}");
		return api_reply_json(rq, 200, &b);
	}
	default:
		return api_reply_problem(rq, PROBLEM_internal_error, NULL, NULL,
					 NULL);
	}
}

/* ---- GET /v1/session: who the caller is and what it may do ------------ */

enum MHD_Result authz_route_session(struct request *rq)
{
	const struct api_caller *c = &rq->auth.caller;
	const struct mandate_chain *m = c->chain;
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	char id[JOSE_B64_32_BYTES];
	u8 admin[32];

	wbuf_puts(&b, "{\"credential\":");
	wbuf_puts(&b, c->bearer ? "\"bearer\""
		      : c->org	? "\"organisation\""
				: "\"mandate\"");
	if (c->bearer) {
		api_authz_admin_id(rq->srv->authz, admin);
		id_text(admin, id);
	} else {
		id_text(m ? m->links[m->n - 1].sub : c->root, id);
	}
	wbuf_puts(&b, ",\"principal\":");
	wbuf_put_json_str(&b, id, strlen(id));
	id_text(c->root, id);
	wbuf_puts(&b, ",\"root\":");
	wbuf_put_json_str(&b, id, strlen(id));
	wbuf_puts(&b, ",\"root_admin\":");
	wbuf_puts(&b, c->root_admin ? "true" : "false");
	u32 role = c->bearer ? 0 : admin_role_now(rq, c->root);
	const char *rn = role ? admin_role_name(role) : NULL;
	wbuf_puts(&b, ",\"role\":");
	if (rn)
		wbuf_put_json_str(&b, rn, strlen(rn));
	else
		wbuf_puts(&b, "null");
	json_t *right = mandate_right_to_json(api_caller_right(c));
	char *text = right ? json_dumps(right, JSON_COMPACT) : NULL;
	json_decref(right);
	if (!text)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	wbuf_puts(&b, ",\"right\":");
	wbuf_puts(&b, text);
	free(text);
	wbuf_puts(&b, ",\"expires\":");
	if (m && m->exp)
		wbuf_put_u64(&b, (u64)m->exp);
	else
		wbuf_puts(&b, "null");
	wbuf_puts(&b, "}");
	return api_reply_json(rq, 200, &b);
}
