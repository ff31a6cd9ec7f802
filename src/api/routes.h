/*
 * routes.h - the route table: every route of the HTTP API is one row of
 * API_ROUTES, and everything the server knows about routes comes from it.
 *
 *   X(name, template, param, methods, body, read_right, write_right,
 *     scope, flags, handler)
 *
 *   name      ROUTE_<name> in enum api_route
 *   template  what the URL must be ({...} is one path segment); also the
 *             `route` label of metrics and of the request log line
 *   param     RP_*: how the {...} segment is read (into rq->path_id or
 *             rq->text_id)
 *   methods   RM_* bits: the others are refused 405 with an Allow header
 *             listing these
 *   body      RB_*: the largest body read; a body is read only for POST
 *             and PUT, and never when RB_NONE (it is discarded unread)
 *   read_right, write_right
 *             the mandate op (MANDATE_OP_*) a GET/HEAD, or another
 *             method, needs; RIGHT_OPEN: no credential needed (the
 *             handler checks what the body proves); RIGHT_PRINCIPAL: any
 *             valid credential, whatever its right; 0: refused (a method
 *             the row does not allow never gets this far)
 *   scope     RA_*: what part of the ledger the right must cover;
 *             RA_PUBLIC routes are never authenticated nor gated
 *   flags     RF_* bits
 *   handler   enum MHD_Result handler(struct request *): called once the
 *             body is in and every check above passed
 *
 * Matching (route.c), the method check and Allow header, the body limit,
 * the rights check (authz_routes.c), dispatch (server.c) and the metric
 * labels (metrics.c) are all expansions of this table.  The order of the
 * rows is the order of the series in /metrics; `unmatched` stays last.
 *
 * Worked example: adding GET /v1/accounts/{id}/holds, readable with
 * accounts:read over that account.
 *
 *   1. One row, before `unmatched`:
 *
 *        X(account_holds, "/v1/accounts/{id}/holds", RP_DEC128, RM_READ,
 *          RB_NONE, OP(ACCOUNTS_READ), 0, RA_ACCOUNT, 0,
 *          ledger_route_account_holds)
 *
 *   2. The handler, in the file of its resource (ledger_routes.c):
 *
 *        enum MHD_Result ledger_route_account_holds(struct request *rq)
 *        {
 *                ... rq->path_id is the account id, already a canonical
 *                decimal (a bad one was answered 400 invalid-id) ...
 *                return api_reply_json(rq, 200, &b);
 *        }
 *
 *      Its prototype comes from the table (internal.h); nothing else
 *      changes: the matcher, 405 with "Allow: GET, HEAD", the 401/403 of
 *      the rights check, the metric series and the log label all follow.
 *   3. docs/api.md: the route, its right and its answers; docs/openapi.json:
 *      its operation (tests/e2e/test_openapi.py fails without); an e2e test.
 */
#ifndef TPW_API_ROUTES_H
#define TPW_API_ROUTES_H

#include "core/types.h"
#include "crypto/mandate.h"

/* The {...} segment of a template. */
enum route_param {
	RP_NONE,
	/* Canonical decimal 0..2^128-1 (an empty last segment: no match). */
	RP_DEC128,
	/* Canonical decimal 0..2^64-1 (an empty last segment: no match). */
	RP_DEC64,
	/* Canonical decimal 0..2^64-1; an empty segment is a bad id. */
	RP_SERIAL,
	/* 1..API_TEXT_ID_BYTES_MAX of [A-Za-z0-9._~-] (thumbprints, jtis):
	 * anything else, empty included, is a bad id. */
	RP_TEXT,
	/* The rest of the URL, '/' included, as text: 1..API_TEXT_ID_BYTES_MAX
	 * of [0-9a-z./] (a tlog-tiles tile path); anything else is a bad
	 * id.  The template ends with this {...}. */
	RP_REST,
};

enum api_method {
	METHOD_GET,
	METHOD_HEAD,
	METHOD_POST,
	METHOD_PUT,
	METHOD_DELETE,
	METHOD_OTHER,
	METHOD_COUNT
};

#define RM_GET	  (1u << METHOD_GET)
#define RM_HEAD	  (1u << METHOD_HEAD)
#define RM_POST	  (1u << METHOD_POST)
#define RM_PUT	  (1u << METHOD_PUT)
#define RM_DELETE (1u << METHOD_DELETE)
#define RM_READ	  (RM_GET | RM_HEAD)

/* The largest body a route reads. */
enum route_body {
	RB_NONE,
	RB_SMALL,  /* API_SMALL_BODY_BYTES_MAX: one JSON object */
	RB_BATCH,  /* the server's body_bytes_max: a batch */
	RB_POLICY, /* a policy document: POLICY_DOC_BYTES_MAX, at most
		    * body_bytes_max */
};

/* What the right must cover. */
enum route_scope {
	RA_PUBLIC,   /* no authentication, no client-version gate */
	RA_ANY,	     /* the op, over no particular account */
	RA_ACCOUNT,  /* the op over account {id} */
	RA_TRANSFER, /* the op over an account of transfer {id} */
	/* Any of the ops before the body; each event against the right
	 * once decoded (authz_check_transfers). */
	RA_EVENTS,
};

/* Answered even when the journal changed under the server (the other
 * routes fail closed: docs/operations.md, Recovery). */
#define RF_ALWAYS (1u << 0)
/* An engine batch: refused (503) once the server is stopping. */
#define RF_BATCH (1u << 1)
/* Needs a healthy audit log (else 503 audit-unavailable). */
#define RF_AUDIT (1u << 2)
/* Not behind the client-version gate (an app must reach it to learn). */
#define RF_UNGATED (1u << 3)
/* Its RIGHT_PRINCIPAL read is open without a credential too when the
 * operator says so (setting manifest_public: what it answers is signed
 * and holds no secret; docs/authz.md lists it). */
#define RF_OPEN_IF_PUBLIC (1u << 4)
/* The body is optional: a request without one needs no Content-Type
 * (POST /v1/keys/rotate was body-less before it took one). */
#define RF_BODY_OPTIONAL (1u << 5)

#define OP(name) MANDATE_OP_##name
/* No credential needed: what the request carries proves itself. */
#define RIGHT_OPEN (1u << 31)
/* Any authenticated principal (an app's own credential, an account
 * owner's mandate), over nothing in particular. */
#define RIGHT_PRINCIPAL (1u << 30)

/* clang-format off */
#define API_ROUTES(X)                                                          \
	X(accounts, "/v1/accounts", RP_NONE, RM_POST, RB_BATCH,                \
	  0, OP(ACCOUNTS_CREATE), RA_ANY, RF_BATCH, ledger_route_accounts)     \
	X(transfers, "/v1/transfers", RP_NONE, RM_POST, RB_BATCH,              \
	  0, OP(TRANSFERS_CREATE) | OP(TRANSFERS_POST_VOID), RA_EVENTS,         \
	  RF_BATCH, ledger_route_transfers)                                    \
	X(account, "/v1/accounts/{id}", RP_DEC128, RM_READ, RB_NONE,           \
	  OP(ACCOUNTS_READ), 0, RA_ACCOUNT, 0, ledger_route_account)           \
	X(transfer, "/v1/transfers/{id}", RP_DEC128, RM_READ, RB_NONE,         \
	  OP(TRANSFERS_READ), 0, RA_TRANSFER, 0, ledger_route_transfer)        \
	X(account_transfers, "/v1/accounts/{id}/transfers", RP_DEC128,         \
	  RM_READ, RB_NONE, OP(ACCOUNTS_READ), 0, RA_ACCOUNT, 0,               \
	  ledger_route_account_transfers)                                      \
	X(account_balances, "/v1/accounts/{id}/balances", RP_DEC128,           \
	  RM_READ, RB_NONE, OP(ACCOUNTS_READ), 0, RA_ACCOUNT, 0,               \
	  ledger_route_account_balances)                                       \
	X(account_receipt, "/v1/accounts/{id}/receipt", RP_DEC128, RM_READ,    \
	  RB_NONE, OP(ACCOUNTS_READ), 0, RA_ACCOUNT, RF_AUDIT,                 \
	  audit_route_account_receipt)                                         \
	X(transfer_receipt, "/v1/transfers/{id}/receipt", RP_DEC128, RM_READ,  \
	  RB_NONE, OP(TRANSFERS_READ), 0, RA_TRANSFER, RF_AUDIT,               \
	  audit_route_transfer_receipt)                                        \
	X(audit_key, "/v1/audit/key", RP_NONE, RM_READ, RB_NONE, 0, 0,         \
	  RA_PUBLIC, RF_AUDIT, audit_route_key)                                \
	X(audit_head, "/v1/audit/head", RP_NONE, RM_READ, RB_NONE,             \
	  OP(AUDIT_READ), 0, RA_ANY, RF_AUDIT, audit_route_head)               \
	X(audit_checkpoint, "/v1/audit/checkpoint", RP_NONE,                   \
	  RM_READ | RM_POST, RB_NONE, OP(AUDIT_READ), OP(AUDIT_READ), RA_ANY,  \
	  RF_AUDIT, audit_route_checkpoint)                                    \
	X(jwks, "/.well-known/jwks.json", RP_NONE, RM_READ, RB_NONE,           \
	  0, 0, RA_PUBLIC, RF_ALWAYS, audit_route_jwks)                        \
	X(audit_entry, "/v1/audit/entries/{index}", RP_DEC64, RM_READ,         \
	  RB_NONE, OP(AUDIT_READ), 0, RA_ANY, RF_AUDIT, audit_route_entry)     \
	X(audit_inclusion, "/v1/audit/proof/inclusion", RP_NONE, RM_READ,      \
	  RB_NONE, OP(AUDIT_READ), 0, RA_ANY, RF_AUDIT,                        \
	  audit_route_inclusion)                                               \
	X(audit_consistency, "/v1/audit/proof/consistency", RP_NONE, RM_READ,  \
	  RB_NONE, OP(AUDIT_READ), 0, RA_ANY, RF_AUDIT,                        \
	  audit_route_consistency)                                             \
	X(audit_tile, "/v1/audit/tile/{path}", RP_REST, RM_READ, RB_NONE,      \
	  OP(AUDIT_READ), 0, RA_ANY, RF_AUDIT, audit_route_tile)               \
	X(principals, "/v1/principals", RP_NONE, RM_READ | RM_POST, RB_SMALL,  \
	  OP(PRINCIPALS_READ), OP(PRINCIPALS_ADMIN), RA_ANY, 0,                \
	  authz_route_principals)                                              \
	X(principal, "/v1/principals/{id}", RP_TEXT, RM_READ, RB_NONE,         \
	  OP(PRINCIPALS_READ), 0, RA_ANY, 0, authz_route_principal)            \
	X(keys, "/v1/keys", RP_NONE, RM_READ, RB_NONE, OP(KEYS_READ), 0,       \
	  RA_ANY, 0, authz_route_keys)                                         \
	X(keys_rotate, "/v1/keys/rotate", RP_NONE, RM_POST, RB_SMALL, 0,       \
	  OP(KEYS_ROTATE), RA_ANY, RF_BODY_OPTIONAL, authz_route_keys_rotate)  \
	X(revocations, "/v1/revocations", RP_NONE, RM_READ | RM_POST,          \
	  RB_SMALL, OP(REVOCATIONS_READ), RIGHT_OPEN, RA_ANY, 0,               \
	  authz_route_revocations)                                             \
	X(revocation, "/v1/revocations/{jti}", RP_TEXT, RM_READ, RB_NONE,      \
	  OP(REVOCATIONS_READ), 0, RA_ANY, 0, authz_route_revocation)          \
	X(cp_manifest, "/v1/client-policy", RP_NONE, RM_READ | RM_PUT,         \
	  RB_POLICY, RIGHT_PRINCIPAL, OP(POLICY_ADMIN), RA_ANY,                \
	  RF_UNGATED | RF_OPEN_IF_PUBLIC, policy_route_manifest)               \
	X(cp_current, "/v1/client-policy/current", RP_NONE, RM_READ, RB_NONE,  \
	  OP(POLICY_READ), 0, RA_ANY, RF_UNGATED, policy_route_current)        \
	X(cp_versions, "/v1/client-policy/versions", RP_NONE, RM_READ,         \
	  RB_NONE, OP(POLICY_READ), 0, RA_ANY, RF_UNGATED,                     \
	  policy_route_versions)                                               \
	X(cp_version, "/v1/client-policy/versions/{version}", RP_SERIAL,       \
	  RM_READ, RB_NONE, OP(POLICY_READ), 0, RA_ANY, RF_UNGATED,            \
	  policy_route_version)                                                \
	X(cp_diff, "/v1/client-policy/diff", RP_NONE, RM_READ, RB_NONE,        \
	  OP(POLICY_READ), 0, RA_ANY, RF_UNGATED, policy_route_diff)           \
	X(cp_rollback, "/v1/client-policy/rollback", RP_NONE, RM_POST,         \
	  RB_SMALL, 0, OP(POLICY_ADMIN), RA_ANY, RF_UNGATED,                   \
	  policy_route_rollback)                                               \
	X(cp_revert, "/v1/client-policy/revert", RP_NONE, RM_POST, RB_SMALL,   \
	  0, OP(POLICY_ADMIN), RA_ANY, RF_UNGATED, policy_route_revert)        \
	X(cp_evaluate, "/v1/client-policy/evaluate", RP_NONE, RM_READ,         \
	  RB_NONE, OP(POLICY_READ), 0, RA_ANY, RF_UNGATED,                     \
	  policy_route_evaluate)                                               \
	X(cp_overrides, "/v1/client-policy/overrides", RP_NONE,                \
	  RM_READ | RM_POST, RB_SMALL, OP(POLICY_READ), OP(POLICY_ADMIN),      \
	  RA_ANY, RF_UNGATED, policy_route_overrides)                          \
	X(cp_override, "/v1/client-policy/overrides/{id}", RP_SERIAL,          \
	  RM_READ | RM_DELETE, RB_NONE, OP(POLICY_READ), OP(POLICY_ADMIN),     \
	  RA_ANY, RF_UNGATED, policy_route_override)                           \
	X(cp_override_extend, "/v1/client-policy/overrides/{id}/extend",      \
	  RP_SERIAL, RM_POST, RB_SMALL, 0, OP(POLICY_ADMIN), RA_ANY,           \
	  RF_UNGATED, policy_route_override_extend)                            \
	X(cp_impact, "/v1/client-policy/impact", RP_NONE, RM_READ, RB_NONE,    \
	  OP(POLICY_READ), 0, RA_ANY, RF_UNGATED, policy_route_impact)         \
	X(cp_activity, "/v1/client-policy/activity", RP_NONE, RM_POST,         \
	  RB_BATCH, 0, OP(POLICY_ADMIN), RA_ANY, RF_UNGATED,                   \
	  policy_route_activity)                                               \
	X(probes, "/v1/probes", RP_NONE, RM_READ, RB_NONE, OP(POLICY_READ),    \
	  0, RA_ANY, RF_UNGATED, probe_route_list)                             \
	X(tls_switch, "/v1/tls/switch", RP_NONE, RM_POST, RB_SMALL, 0,         \
	  OP(KEYS_ROTATE), RA_ANY, 0, tls_route_switch)                        \
	X(cluster, "/v1/cluster", RP_NONE, RM_READ, RB_NONE, OP(AUDIT_READ),  \
	  0, RA_ANY, RF_UNGATED, server_route_cluster)                         \
	X(vault_cards, "/v1/vault/cards", RP_NONE, RM_POST, RB_SMALL, 0,      \
	  OP(VAULT_TOKENIZE), RA_ANY, 0, vault_route_cards)                    \
	X(vault_reveal, "/v1/vault/cards/{token}/reveal", RP_TEXT, RM_POST,    \
	  RB_SMALL, 0, OP(VAULT_REVEAL), RA_ANY, 0, vault_route_reveal)        \
	X(vault_erase, "/v1/vault/cards/{token}/erase", RP_TEXT, RM_POST,      \
	  RB_SMALL, 0, OP(VAULT_ERASE), RA_ANY, 0, vault_route_erase)          \
	X(vault_rotate, "/v1/vault/keys/rotate", RP_NONE, RM_POST, RB_SMALL,   \
	  0, OP(VAULT_ADMIN), RA_ANY, RF_BODY_OPTIONAL, vault_route_rotate)    \
	X(topups, "/v1/topups", RP_NONE, RM_POST, RB_SMALL, 0,                 \
	  OP(ACQUIRER_TOPUP), RA_ANY, 0, acquirer_route_topups)                \
	X(reconciliations, "/v1/reconciliations", RP_NONE, RM_POST, RB_BATCH,  \
	  0, OP(ACQUIRER_RECONCILE), RA_ANY, 0, acquirer_route_reconcile)      \
	X(admin_roles, "/v1/admin/roles", RP_NONE, RM_POST, RB_SMALL, 0,      \
	  OP(PRINCIPALS_ADMIN), RA_ANY, 0, admin_route_roles)                  \
	X(admin_retire, "/v1/admin/bootstrap/retire", RP_NONE, RM_POST,        \
	  RB_SMALL, 0, OP(PRINCIPALS_ADMIN), RA_ANY, RF_BODY_OPTIONAL,         \
	  admin_route_retire)                                                  \
	X(admin_requests, "/v1/admin/requests", RP_NONE, RM_READ, RB_NONE,     \
	  OP(POLICY_READ), 0, RA_ANY, 0, admin_route_requests)                 \
	X(admin_request, "/v1/admin/requests/{id}", RP_SERIAL, RM_READ,        \
	  RB_NONE, OP(POLICY_READ), 0, RA_ANY, 0, admin_route_request)         \
	/* decisions: the right of the operation decided (admin_routes.c) */ \
	X(admin_approve, "/v1/admin/requests/{id}/approve", RP_SERIAL,         \
	  RM_POST, RB_SMALL, 0, RIGHT_PRINCIPAL, RA_ANY, RF_BODY_OPTIONAL,     \
	  admin_route_approve)                                                 \
	X(admin_reject, "/v1/admin/requests/{id}/reject", RP_SERIAL, RM_POST,  \
	  RB_SMALL, 0, RIGHT_PRINCIPAL, RA_ANY, RF_BODY_OPTIONAL,              \
	  admin_route_reject)                                                  \
	X(admin_break_glass, "/v1/admin/requests/{id}/break-glass", RP_SERIAL, \
	  RM_POST, RB_SMALL, 0, RIGHT_PRINCIPAL, RA_ANY, RF_BODY_OPTIONAL,     \
	  admin_route_break_glass)                                             \
	X(session, "/v1/session", RP_NONE, RM_READ, RB_NONE, RIGHT_PRINCIPAL, \
	  0, RA_ANY, RF_UNGATED, authz_route_session)                          \
	X(console, "/console", RP_NONE, RM_READ, RB_NONE, 0, 0, RA_PUBLIC,     \
	  RF_ALWAYS, console_route_index)                                      \
	X(console_dir, "/console/", RP_NONE, RM_READ, RB_NONE, 0, 0,           \
	  RA_PUBLIC, RF_ALWAYS, console_route_index)                           \
	X(console_file, "/console/{path}", RP_REST, RM_READ, RB_NONE, 0, 0,    \
	  RA_PUBLIC, RF_ALWAYS, console_route_file)                            \
	X(healthz, "/healthz", RP_NONE, RM_READ, RB_NONE, 0, 0, RA_PUBLIC,     \
	  RF_ALWAYS, server_route_healthz)                                     \
	X(readyz, "/readyz", RP_NONE, RM_READ, RB_NONE, 0, 0, RA_PUBLIC, 0,    \
	  server_route_readyz)                                                 \
	X(metrics, "/metrics", RP_NONE, RM_READ, RB_NONE, 0, 0, RA_PUBLIC,     \
	  RF_ALWAYS, server_route_metrics)                                     \
	X(unmatched, "unmatched", RP_NONE, 0, RB_NONE, 0, 0, RA_PUBLIC, 0,     \
	  server_route_not_found)
/* clang-format on */

enum api_route {
#define X(name, ...) ROUTE_##name,
	API_ROUTES(X)
#undef X
		ROUTE_COUNT
};

/* A row of API_ROUTES without its handler (server.c has those). */
struct api_route_info {
	const char *tmpl;
	u32 read_right, write_right;
	u8 param;   /* enum route_param */
	u8 methods; /* RM_* */
	u8 body;    /* enum route_body */
	u8 scope;   /* enum route_scope */
	u8 flags;   /* RF_* */
};

extern const struct api_route_info api_routes[ROUTE_COUNT];

/* The right method m needs on route r (read_right or write_right). */
static inline u32 api_route_right(enum api_route r, enum api_method m)
{
	return m == METHOD_GET || m == METHOD_HEAD ? api_routes[r].read_right
						   : api_routes[r].write_right;
}

/* Is the body of method m on route r read (else discarded unread)? */
static inline bool api_route_reads_body(enum api_route r, enum api_method m)
{
	return api_routes[r].body != RB_NONE &&
	       (m == METHOD_POST || m == METHOD_PUT);
}

/* "GET", "HEAD", "POST", "PUT", "DELETE", else "other". */
const char *api_method_name(enum api_method m);

/* The Allow header of route r ("GET, HEAD, POST"), into buf. */
#define API_ALLOW_BYTES_MAX 32
const char *api_route_allow(enum api_route r, char buf[API_ALLOW_BYTES_MAX]);

#endif
