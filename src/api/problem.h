/*
 * problem.h - every error the HTTP API can answer, as RFC 9457
 * application/problem+json.
 *
 * One table (API_PROBLEMS) generates the enum, the stable `type`
 * ("/problems/<slug>"), the HTTP status and the title, as libuv's
 * UV_ERRNO_MAP does.  Slugs and titles are part of the API contract
 * (docs/api.md lists them): never rename one, add a new one instead.
 * Ledger results of create operations are not problems: they travel in
 * the per-event result objects (see codec.h).
 */
#ifndef TPW_API_PROBLEM_H
#define TPW_API_PROBLEM_H

#include "api/wbuf.h"

/* X(name, slug, status, title) */
#define API_PROBLEMS(X)                                                        \
	X(invalid_json, "invalid-json", 400, "Request body is not valid JSON") \
	X(nesting_too_deep, "nesting-too-deep", 400,                           \
	  "JSON nesting is too deep")                                          \
	X(invalid_body, "invalid-body", 400,                                   \
	  "Request body must be an object or an array of objects")             \
	X(invalid_field, "invalid-field", 400, "A field has an invalid value") \
	X(unknown_field, "unknown-field", 400, "Unknown field")                \
	X(invalid_flag, "invalid-flag", 400, "Unknown or repeated flag")       \
	X(empty_batch, "empty-batch", 400, "The batch has no events")          \
	X(batch_too_large, "batch-too-large", 413,                             \
	  "Too many events in one batch")                                      \
	X(body_too_large, "body-too-large", 413, "Request body is too large")  \
	X(unsupported_media_type, "unsupported-media-type", 415,               \
	  "Content-Type must be application/json")                             \
	X(invalid_id, "invalid-id", 400, "Invalid id in the path")             \
	X(invalid_query, "invalid-query", 400, "Invalid query parameter")      \
	X(not_found, "not-found", 404, "No such resource")                     \
	X(account_not_found, "account-not-found", 404, "Account not found")    \
	X(transfer_not_found, "transfer-not-found", 404, "Transfer not found") \
	X(method_not_allowed, "method-not-allowed", 405,                       \
	  "Method not allowed on this resource")                               \
	X(unavailable, "unavailable", 503,                                     \
	  "The server is not ready or is shutting down")                       \
	X(audit_unavailable, "audit-unavailable", 503,                         \
	  "The audit log is not available")                                    \
	X(audit_out_of_range, "audit-out-of-range", 400,                       \
	  "Index or size beyond the audit log")                                \
	X(audit_entry_changed, "audit-entry-changed", 500,                     \
	  "A journal entry changed on disk after it was logged")               \
	X(audit_entry_archived, "audit-entry-archived", 410,                   \
	  "The journal segment holding this entry was moved out of the data "  \
	  "directory and cannot be read from the archive directory")           \
	X(journal_changed, "journal-changed", 503,                             \
	  "A journal entry changed on disk after it was logged: nothing is "   \
	  "served until an operator restores it")                              \
	X(receipt_shows_others, "receipt-shows-others", 403,                   \
	  "This receipt would show other records: it needs audit:read")        \
	X(commit_unknown, "commit-unknown", 503,                               \
	  "The journal failed during this commit: the outcome is unknown "     \
	  "until a restart; retry with the same ids")                          \
	X(engine_error, "engine-error", 500,                                   \
	  "The batch was not applied; nothing changed")                        \
	X(invalid_policy, "invalid-policy", 422,                               \
	  "The client policy or override is not valid")                        \
	X(override_unknown_platform, "override-unknown-platform", 422,         \
	  "The override names no platform of the current client policy")       \
	X(override_relaxes_nothing, "override-relaxes-nothing", 422,           \
	  "The override would relax no verdict of the current client policy")  \
	X(override_ended, "override-ended", 409,                               \
	  "The override has already ended or expired")                         \
	X(policy_not_found, "policy-not-found", 404,                           \
	  "No such client policy version or override")                         \
	X(policy_impact_too_high, "policy-impact-too-high", 409,               \
	  "The client policy would block too many active users")               \
	X(policy_revert_conflict, "policy-revert-conflict", 409,               \
	  "The version's change was changed again since")                      \
	X(unknown_revoker, "unknown-revoker", 403,                             \
	  "The revocation statement is signed by a key the server does not "   \
	  "know")                                                              \
	X(principal_not_found, "principal-not-found", 404,                     \
	  "Principal not found")                                               \
	X(name_taken, "name-taken", 409,                                       \
	  "Another principal already has this name")                           \
	X(state_full, "state-full", 507,                                       \
	  "A limit of the server's state is reached")                          \
	X(key_rotation_failed, "key-rotation-failed", 500,                     \
	  "The signing key could not be rotated")                              \
	X(request_timeout, "request-timeout", 408,                             \
	  "The request head or body was not received in time")                 \
	X(bad_framing, "bad-framing", 400,                                     \
	  "The request's HTTP framing is ambiguous or malformed")              \
	X(too_many_requests, "too-many-requests", 429,                         \
	  "Too many requests in progress from this address")                   \
	X(tls_switch_refused, "tls-switch-refused", 409,                       \
	  "The served TLS certificate cannot be switched")                     \
	X(key_store_unavailable, "key-store-unavailable", 503,                 \
	  "The token that holds the key-encryption key is not answering")      \
	X(not_the_writer, "not-the-writer", 503,                               \
	  "This cluster node is a follower: send changes to the writer")       \
	X(seq_not_reached, "seq-not-reached", 503,                             \
	  "This node has not applied the sequence asked for yet")              \
	X(card_data_refused, "card-data-refused", 422,                         \
	  "Card security codes and track data are never accepted")             \
	X(card_not_found, "card-not-found", 404, "No card has this token")     \
	X(card_erased, "card-erased", 410, "The card was erased")              \
	X(reveal_rate_limited, "reveal-rate-limited", 429,                     \
	  "Too many reveals by this principal: wait")                          \
	X(vault_unavailable, "vault-unavailable", 503,                         \
	  "The card vault's key store cannot be used")                         \
	X(token_collision, "token-collision", 409,                             \
	  "The token drawn is taken: send the request again")                  \
	X(not_an_administrator, "not-an-administrator", 403,                   \
	  "Only a named administrator may decide a dual-control request")      \
	X(request_not_found, "request-not-found", 404,                         \
	  "No such dual-control request")                                      \
	X(self_approval, "self-approval", 403,                                 \
	  "A dual-control request needs another administrator's approval")     \
	X(request_expired, "request-expired", 409,                             \
	  "The dual-control request's window has passed")                      \
	X(request_target_changed, "request-target-changed", 409,               \
	  "What the dual-control request would change has changed since")      \
	X(request_not_pending, "request-not-pending", 409,                     \
	  "The dual-control request is already decided")                       \
	X(break_glass_not_requester, "break-glass-not-requester", 403,         \
	  "Only the requester may break the glass on its request")             \
	X(no_security_officer, "no-security-officer", 409,                     \
	  "No active administrator holds the security_officer role")           \
	X(role_for_account_owner, "role-for-account-owner", 409,               \
	  "A principal that owns accounts cannot be an administrator")         \
	X(authority_ended, "authority-ended", 403,                             \
	  "The caller's authority ended before its change was journaled")      \
	X(request_dropped, "request-dropped", 410,                             \
	  "The dual-control request was decided and dropped from the table")   \
	X(request_refused, "request-refused", 409,                             \
	  "The approved operation was refused by the state it would change")   \
	X(acquirer_unavailable, "acquirer-unavailable", 503,                   \
	  "The acquirer connector takes no call now")                          \
	X(acquirer_version_refused, "acquirer-version-refused", 502,           \
	  "The acquirer refuses this server's API version")                    \
	X(acquirer_refused, "acquirer-refused", 502,                           \
	  "The acquirer refused the request")                                  \
	X(idempotency_conflict, "idempotency-conflict", 409,                   \
	  "The idempotency key was used for another request")                  \
	X(reconcile_pending, "reconcile-pending", 409,                         \
	  "Top-ups are pending: differences are booked once none is")          \
	X(topup_refused, "topup-refused", 422,                                 \
	  "The ledger refused the top-up's pending transfer")                  \
	X(internal_error, "internal-error", 500, "Internal error")

enum problem {
#define X(name, slug, status, title) PROBLEM_##name,
	API_PROBLEMS(X)
#undef X
		PROBLEM_COUNT
};

/* Table lookups; p must be < PROBLEM_COUNT. */
unsigned problem_status(enum problem p);
const char *problem_slug(enum problem p);
const char *problem_title(enum problem p);

#define PROBLEM_CONTENT_TYPE "application/problem+json"

/*
 * The refusal marker: every problem answer (this table's, the client
 * gate's client-version-blocked, the credential checks', the netguard's
 * raw 408) carries `Tpwallet-Problem: <slug>`, the slug of its own
 * `type`, so an operator (or `tpwallet probe`) tells tpwallet's refusal
 * from a gateway's at a glance (docs/operations.md).  api_reply adds it
 * from the document itself, so the two can never disagree.
 */
#define PROBLEM_MARKER_HEADER  "Tpwallet-Problem"
#define PROBLEM_SLUG_BYTES_MAX 64

/*
 * The slug of the first `"type":"/problems/<slug>"` member of a problem
 * document (doc: len bytes, no NUL needed), copied into out: 0, or -1
 * when there is none or the slug is empty, longer than
 * PROBLEM_SLUG_BYTES_MAX - 1 or not of [a-z0-9-].  The pattern cannot
 * occur inside a JSON string (its quotes would be escaped there).
 */
int problem_slug_find(const char *doc, size_t len,
		      char out[PROBLEM_SLUG_BYTES_MAX]);

/*
 * Write the problem document into b:
 *   {"type":"/problems/<slug>","title":..,"status":..,"detail":..,
 *    "instance":"<request id>","field":"[3].amount"}
 * detail, instance and field are optional (NULL or "" omits them).
 * `field` is an extension member naming the offending JSON path or query
 * parameter.  Check b->err afterwards.
 */
void problem_write(struct wbuf *b, enum problem p, const char *detail,
		   const char *instance, const char *field);

#endif
