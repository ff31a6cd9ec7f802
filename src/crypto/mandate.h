/*
 * mandate.h - delegation chains ("mandates"), DPoP proofs (RFC 9449) and
 * revocation statements, exactly as docs/authz.md specifies them (the
 * normative text; this header says how the code maps onto it).
 *
 * Pure: no I/O, no clock (every time is a parameter, seconds since the
 * epoch), no global state beyond libsodium's (call jose_init() first).
 * The only shared mutable objects are the two caches below, which the
 * caller creates and which lock internally.
 *
 * A mandate is the text after "DPoP " in the Authorization header:
 * 1..MANDATE_LINKS_MAX compact JWS links, root first, separated by '~'.
 * mandate_chain_verify checks, link by link (root first), and reports the
 * first failure with its link (1-based) and claim path:
 *   1. the value: at most MANDATE_AUTHZ_BYTES_MAX bytes (malformed), at
 *      most MANDATE_LINKS_MAX links (chain_too_deep, link = 9), no empty
 *      link (malformed);
 *   2. the JWS (skipped on a cache hit): jose_jwt_verify with typ
 *      "tpwallet-mandate+jwt", alg EdDSA or Ed25519 (alg_not_allowed),
 *      header members alg and typ only (malformed, claim "header"); the
 *      signing key comes from iss, read from the payload before the
 *      signature is checked: the root's iss through root->principal
 *      (unknown_issuer), a later link's iss must equal the previous link's
 *      sub (chain_broken, "iss") and is verified with its cnf.jwk;
 *      then the signature (bad_signature);
 *   3. the claims (skipped on a cache hit), strictly: exactly the claims
 *      of docs/authz.md, each of its type (malformed, claim = its path;
 *      an unknown member is reported with the path of the object that
 *      holds it, "claims", "cnf" or "right", never with its name, so no
 *      token text reaches an error), cnf.jwk's thumbprint == sub
 *      (malformed, "cnf.jwk"), or instead cnf {"x5t#S256"} == sub
 *      (malformed, "cnf.x5t#S256"; a certificate-bound link, which must
 *      be the last: see cert_bound), exp > nbf when both (malformed, "exp"),
 *      then aud (wrong_audience, "aud"; a link with aud when o->audience
 *      is NULL is refused);
 *   4. (hit or miss) for the root, root->principal again on a hit (the
 *      issuer must still be registered; is_admin is read now); iss is the
 *      previous link's sub (chain_broken, "iss"); prn: absent on the
 *      root, else the previous link's hash (chain_broken, "prn");
 *      delegate keys (sub) and jti distinct in the chain (cycle, "sub" or
 *      "jti"); time: exp (expired), nbf (not_yet_valid), iat
 *      (issued_in_future), all with o->leeway_s; narrowing against the
 *      previous link in the order of docs/authz.md (widened, claim
 *      "right.ops", "right.accounts", ..., "exp", "nbf"); revocation
 *      (revoked, "jti": root->revoked(iss, jti_hash)); for the root:
 *      administrator, or a named administrator granting a subset of its
 *      role's ops over no account (root->role_ops), or owner of every
 *      right.accounts (issuer_not_owner: "right.accounts" when absent or
 *      not owned, "right.ops" for "*" or ops beyond the role's).
 * The audience check needs the aud text, so it is done before caching and
 * a cached link is trusted for it: use one cache per audience.
 *
 * The caller then checks the DPoP proof (mandate_dpop_verify, then
 * mandate_dpop_check_key against the chain, then mandate_replay_...) and
 * the request against chain.effective (mandate_right_check_*).  total_cap
 * and uses are stateful and counted by the state machine, by link hash.
 *
 * Errors: functions return 0 or -1 and fill struct mandate_error.  The
 * codes come from MANDATE_ERRORS: a wire-stable snake_case name (used as
 * the RFC 9457 problem type), the HTTP status and a title.  Values of the
 * enum are not stable; names are.  Nothing in an error is token text.
 *
 * Limits: see the MANDATE_*_MAX macros; every list, string and token has
 * one, and JSON goes through jose's depth limit and duplicate refusal.
 */
#ifndef TPW_CRYPTO_MANDATE_H
#define TPW_CRYPTO_MANDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/types.h"
#include "crypto/jose.h"

#define MANDATE_LINKS_MAX     8
#define MANDATE_LIST_MAX      16 /* accounts, ledgers, counterparties, ops */
#define MANDATE_JTI_BYTES_MAX 64
#define MANDATE_AUTHZ_BYTES_MAX                                                \
	(MANDATE_LINKS_MAX * JOSE_TOKEN_BYTES_MAX + MANDATE_LINKS_MAX)
#define MANDATE_DPOP_WINDOW_S 60
/* A proof may be dated at most this far ahead of the server's clock: a
 * proof dated ahead keeps every client waiting after a restart until its
 * iat has passed (the horizon, api/authz.h), so the skew allowed is
 * small. */
#define MANDATE_DPOP_AHEAD_S	    5
#define MANDATE_REVOCATION_WINDOW_S 300
/* uses is an integer 1..2^53-1 (exact in every JSON implementation) */
#define MANDATE_USES_MAX ((UINT64_C(1) << 53) - 1)
/* The largest amount a right with accounts may move to (or reserve for)
 * an account outside them, whatever its caps: so that no one can push
 * another tenant's balance towards 2^128 (its credits would then
 * overflow on every later payment) nor learn it from an overflow. */
#define MANDATE_FOREIGN_AMOUNT_MAX ((u128)UINT64_MAX)
/* Link / DPoP / revocation JWS "typ" headers. */
#define MANDATE_TYP	       "tpwallet-mandate+jwt"
#define MANDATE_DPOP_TYP       "dpop+jwt"
#define MANDATE_REVOCATION_TYP "tpwallet-revocation+jwt"
/* Longest "htu" a DPoP proof may carry, and longest method. */
#define MANDATE_HTU_BYTES_MAX 2048
#define MANDATE_HTM_BYTES_MAX 16

/* ---- operations ------------------------------------------------------- */

enum mandate_op {
	MANDATE_OP_ACCOUNTS_CREATE = 1u << 0,
	MANDATE_OP_ACCOUNTS_READ = 1u << 1,
	MANDATE_OP_TRANSFERS_CREATE = 1u << 2,
	MANDATE_OP_TRANSFERS_POST_VOID = 1u << 3,
	MANDATE_OP_TRANSFERS_READ = 1u << 4,
	MANDATE_OP_PRINCIPALS_READ = 1u << 5,
	MANDATE_OP_PRINCIPALS_ADMIN = 1u << 6,
	MANDATE_OP_KEYS_READ = 1u << 7,
	MANDATE_OP_KEYS_ROTATE = 1u << 8,
	MANDATE_OP_REVOCATIONS_READ = 1u << 9,
	MANDATE_OP_REVOKE = 1u << 10,
	MANDATE_OP_AUDIT_READ = 1u << 11,
	MANDATE_OP_POLICY_READ = 1u << 12,
	MANDATE_OP_POLICY_ADMIN = 1u << 13,
	/* The card vault (docs/vault.md). */
	MANDATE_OP_VAULT_TOKENIZE = 1u << 14,
	MANDATE_OP_VAULT_REVEAL = 1u << 15,
	MANDATE_OP_VAULT_ERASE = 1u << 16,
	MANDATE_OP_VAULT_ADMIN = 1u << 17,
	/* The acquirer connector (docs/acquirer.md). */
	MANDATE_OP_ACQUIRER_TOPUP = 1u << 18,
	MANDATE_OP_ACQUIRER_RECONCILE = 1u << 19,
	MANDATE_OP_ALL = (1u << 20) - 1
};
#define MANDATE_OP_COUNT 20
/* An ops list names each op at most once: at most every op. */
#define MANDATE_OPS_LIST_MAX MANDATE_OP_COUNT

/* "transfers:create" for one bit; "*" for MANDATE_OP_ALL; NULL else. */
const char *mandate_op_name(unsigned op_bit);
/* One name (or "*" -> MANDATE_OP_ALL) to its bit: 0, or -1 unknown. */
int mandate_op_parse(const char *s, unsigned *bit);

/* ---- errors ----------------------------------------------------------- */

/* X(name, HTTP status, title) */
#define MANDATE_ERRORS(X)                                                      \
	X(ok, 200, "accepted")                                                 \
	X(malformed, 401, "credential is not well-formed")                     \
	X(bad_signature, 401, "signature does not verify")                     \
	X(alg_not_allowed, 401, "alg is not EdDSA or Ed25519")                 \
	X(unknown_issuer, 401, "issuer of the first link is not registered")   \
	X(issuer_not_owner, 403,                                               \
	  "issuer of the first link does not own every account it grants")     \
	X(expired, 401, "link has expired")                                    \
	X(not_yet_valid, 401, "link is not valid yet")                         \
	X(issued_in_future, 401, "link is issued in the future")               \
	X(wrong_audience, 401, "link is for another audience")                 \
	X(chain_too_deep, 401, "mandate has more links than allowed")          \
	X(chain_broken, 401, "link does not follow the link before it")        \
	X(cycle, 401, "a delegate key or jti appears twice in the chain")      \
	X(widened, 401, "link grants more than the link before it")            \
	X(revoked, 401, "link or its issuer is revoked")                       \
	X(dpop_missing, 401, "DPoP proof is missing")                          \
	X(dpop_malformed, 401, "DPoP proof is not well-formed")                \
	X(dpop_bad_signature, 401, "DPoP proof signature does not verify")     \
	X(dpop_wrong_key, 401, "DPoP proof is not signed by the delegate")     \
	X(dpop_wrong_method, 401, "DPoP proof is for another method")          \
	X(dpop_wrong_url, 401, "DPoP proof is for another URL")                \
	X(dpop_stale, 401, "DPoP proof iat is outside the window")             \
	X(dpop_before_restart, 401,                                            \
	  "DPoP proof is dated before the server last started; make a new "    \
	  "one")                                                               \
	X(dpop_wrong_ath, 401, "DPoP proof is for another credential")         \
	X(replay, 401, "DPoP proof was already used")                          \
	X(replay_cache_full, 503, "too many recent DPoP proofs; retry later")  \
	X(wrong_issuer, 401, "iss is not the thumbprint of the signing key")   \
	X(stale, 401, "statement iat is outside the window")                   \
	X(op_not_allowed, 403, "right does not include this operation")        \
	X(account_not_allowed, 403, "right does not cover this account")       \
	X(ledger_not_allowed, 403, "right does not cover this ledger")         \
	X(counterparty_not_allowed, 403,                                       \
	  "right does not allow crediting this account")                       \
	X(per_transfer_cap_exceeded, 403,                                      \
	  "amount is over the right's per-transfer cap")                       \
	X(foreign_amount_too_large, 403,                                       \
	  "amount to an account outside the right is over 2^64-1")             \
	X(total_cap_exceeded, 403, "transfers would exceed the total cap")     \
	X(uses_exceeded, 403, "transfers would exceed the allowed uses")       \
	X(internal, 500, "invalid argument or out of memory")                  \
	X(bootstrap_retired, 401,                                              \
	  "the bootstrap administrator's credentials are retired")

enum mandate_err {
#define X(name, status, title) MANDATE_ERR_##name,
	MANDATE_ERRORS(X)
#undef X
		MANDATE_ERR_COUNT
};

#define MANDATE_CLAIM_BYTES_MAX 48

struct mandate_error {
	int code;			     /* enum mandate_err */
	int link;			     /* 1-based link index, 0 = none */
	char claim[MANDATE_CLAIM_BYTES_MAX]; /* "right.total_cap", "exp", "" */
};

/* Name, title and status of a code; NULL / NULL / 500 outside the table. */
const char *mandate_err_name(int code);
const char *mandate_err_title(int code);
int mandate_err_status(int code);

/* ---- rights ----------------------------------------------------------- */

struct mandate_right {
	unsigned ops; /* bit set of enum mandate_op */
	bool all_ops; /* ops was ["*"] (administrator chains only) */
	uint8_t n_accounts, n_ledgers, n_counterparties; /* 0 = absent (any) */
	u128 accounts[MANDATE_LIST_MAX];
	uint32_t ledgers[MANDATE_LIST_MAX];
	u128 counterparties[MANDATE_LIST_MAX];
	bool has_per_transfer_cap, has_total_cap, has_uses;
	u128 per_transfer_cap, total_cap;
	uint64_t uses;
};

/*
 * JSON of a right, in docs/authz.md's form (ops by name, or ["*"]; ids
 * and caps as decimal strings).  New reference, NULL when out of memory.
 */
json_t *mandate_right_to_json(const struct mandate_right *r);
/*
 * Parses a right strictly: unknown members, wrong types, empty or too
 * long lists, duplicates in a list, account 0 or 2^128-1, ledger 0 or
 * above 2^32-1, non-canonical decimals, uses outside 1..MANDATE_USES_MAX:
 * malformed, with claim "right.<member>" (or "right").
 */
int mandate_right_from_json(const json_t *j, struct mandate_right *out,
			    struct mandate_error *err);

/*
 * Does the right allow op (one bit) on account?  has_account false means
 * the route touches accounts it does not name (queries, lookups, create):
 * allowed only when the right has no accounts list.  op_not_allowed
 * ("right.ops") or account_not_allowed ("right.accounts"); link 0.
 */
int mandate_right_check_op(const struct mandate_right *r, unsigned op,
			   bool has_account, u128 account,
			   struct mandate_error *err);
/*
 * The stateless checks of one transfer event t, in this order (first
 * failure): the op its flags need (TRANSFERS_POST_VOID for a post or a
 * void, else TRANSFERS_CREATE) in ops; the accounts it touches in
 * accounts; ledger in ledgers; credit in counterparties; amount <=
 * per_transfer_cap.  docs/authz.md "Which right each field needs" is the
 * table this implements:
 *   - create: debit in accounts; also credit in accounts when t closes
 *     the credit account (closing_credit) or is limited by its balance
 *     (balancing_credit: the amount would reveal that balance);
 *   - post or void: p is the pending transfer t names (NULL when it is
 *     not known: refused with account_not_allowed by a right that has
 *     accounts, so an unknown and someone else's pending look the same);
 *     the accounts, ledger and amount checked are p's (amount: t's when
 *     0 < t's < p's, as the ledger posts it).  A post needs p's debit in
 *     accounts (money leaves it) and p's credit in counterparties; a void
 *     needs p's debit, or p's credit when p closed nothing (the payee may
 *     refuse a payment, never undo a closing); either needs p's credit in
 *     accounts too when p closed it (closing_credit), because posting
 *     makes the closing final and voiding reopens the account.
 * The per-transfer cap applies to creates and posts (a void moves none).
 * account_not_allowed, ledger_not_allowed, ... with their claim; link 0.
 */
int mandate_right_check_transfer(const struct mandate_right *r,
				 const struct transfer *t,
				 const struct transfer *p,
				 struct mandate_error *err);

/* ---- links and chains ------------------------------------------------- */

struct mandate_link {	  /* fixed size, copyable: the server caches these */
	uint8_t hash[32]; /* SHA-256 of the compact text: counter key, prn */
	uint8_t iss[32], sub[32]; /* raw thumbprints (decoded base64url) */
	uint8_t sub_key[32];	  /* cnf.jwk x (zero when cert_bound) */
	/* cnf is {"x5t#S256": sub} (RFC 8705): the delegate is the client
	 * certificate whose DER hashes to sub; it proves possession by the
	 * TLS connection it comes on, and delegates no further (a link
	 * below it is chain_broken, "iss": it has no key to verify). */
	bool cert_bound;
	uint8_t prn[32];
	bool has_prn;
	int64_t iat, nbf, exp;
	bool has_nbf;
	char jti[MANDATE_JTI_BYTES_MAX + 1];
	uint8_t jti_hash[32]; /* SHA-256 of the jti text */
	bool has_aud;	      /* aud was present (and matched) */
	struct mandate_right right;
};

/*
 * Root lookup.  principal: iss (raw thumbprint) -> that principal's public
 * key and whether it is the administrator; 0, or -1 unknown.  owns: does
 * iss own account (asked for non-administrator roots only).  revoked: is
 * this link (iss, SHA-256 of its jti) revoked, or every link of iss.  All
 * three are called on the verifying thread, on cache hits too.
 */
struct mandate_root_ops {
	int (*principal)(void *ctx, const uint8_t iss[32], uint8_t pub_out[32],
			 bool *is_admin);
	bool (*owns)(void *ctx, const uint8_t iss[32], u128 account);
	bool (*revoked)(void *ctx, const uint8_t iss[32],
			const uint8_t jti_hash[32]);
	/* May be NULL.  The ops a named administrator's role gives iss (0:
	 * none): a first link it signs may then grant a subset of them over
	 * no particular account (docs/authz.md, "Named administrators"). */
	unsigned (*role_ops)(void *ctx, const uint8_t iss[32]);
	void *ctx;
};

/*
 * Cache of verified links by hash: capacity entries (a power of two,
 * 1..2^20; NULL otherwise or when out of memory), direct-mapped, one
 * mutex.  A hit skips the signature and the claims parse, never the time,
 * revocation, ownership, chain or narrowing checks.  One cache per
 * audience (see above).  Counters are exact.
 */
#define MANDATE_CACHE_CAPACITY_MAX (1u << 20)
struct mandate_cache;
struct mandate_cache *mandate_cache_new(unsigned capacity);
void mandate_cache_free(struct mandate_cache *cache);
void mandate_cache_stats(const struct mandate_cache *cache, uint64_t *hits,
			 uint64_t *misses);

struct mandate_chain {
	unsigned n;
	struct mandate_link links[MANDATE_LINKS_MAX];
	struct mandate_right effective; /* = the last link's right */
	int64_t nbf, exp; /* effective window: max nbf (0: none), min exp */
	bool root_admin;
	unsigned cached; /* links whose checks a hit in the cache skipped */
};

struct mandate_verify_opts {
	int64_t now;
	int64_t leeway_s;     /* 0..JOSE_LEEWAY_MAX_S */
	const char *audience; /* NULL: links with aud are refused */
	const struct mandate_root_ops *root; /* principal, owns, revoked */
	struct mandate_cache *cache;	     /* may be NULL */
};

/*
 * value[0..len) is the text after "DPoP " (need not be NUL-terminated).
 * Returns 0 with *out filled, or -1 with *err set (and *out zeroed).
 * out is large (~6 KiB): do not put many on a small stack.
 */
int mandate_chain_verify(const char *value, size_t len,
			 const struct mandate_verify_opts *o,
			 struct mandate_chain *out, struct mandate_error *err);

/* ---- DPoP (RFC 9449) --------------------------------------------------- */

struct mandate_dpop_opts {
	int64_t now;
	const char *method; /* compared exactly with htm */
	const char *host;   /* Host header: htu must be http://<host><path> */
	/* The server's public origin ("https://wallet.example:8443"): when
	 * set, htu must be <origin><path> and host is not used, so a proof
	 * made for another server or scheme never matches. */
	const char *origin;
	const char *path;	  /* without query or fragment */
	const char *access_token; /* the Authorization value after "DPoP " */
	size_t access_token_len;
};

struct mandate_dpop {
	uint8_t jkt[32]; /* raw thumbprint of the header jwk */
	char jti[MANDATE_JTI_BYTES_MAX + 1];
	int64_t iat;
};

/*
 * Verifies a proof: header {alg, typ "dpop+jwt", jwk} and nothing else,
 * the signature under jwk, claims exactly jti (1..64 bytes, 0x21..0x7e),
 * htm, htu, iat, ath; htm == method; htu == "http://" host path (scheme
 * and host ASCII case-insensitive; a query or fragment in htu is
 * ignored, RFC 9449 4.3); now - MANDATE_DPOP_WINDOW_S <= iat <= now +
 * MANDATE_DPOP_AHEAD_S;
 * ath == base64url(SHA-256(access_token)).  proof NULL or len 0:
 * dpop_missing.  Does not check the key against the chain (below) nor
 * replay (mandate_replay_check_and_add).
 */
int mandate_dpop_verify(const char *proof, size_t len,
			const struct mandate_dpop_opts *o,
			struct mandate_dpop *out, struct mandate_error *err);

/* The proof's key must be the last link's delegate: dpop_wrong_key. */
int mandate_dpop_check_key(const struct mandate_dpop *d,
			   const struct mandate_chain *c,
			   struct mandate_error *err);

/*
 * Replay cache of (jkt, jti) pairs, each kept until
 * max(iat, now) + MANDATE_DPOP_WINDOW_S.  Holds at most capacity live
 * pairs (1..2^24; NULL otherwise); when full, pairs past their window are
 * dropped; if it is still full the proof is refused (replay_cache_full,
 * status 503) rather than a live pair forgotten.  One mutex.
 */
#define MANDATE_REPLAY_CAPACITY_MAX (1u << 24)
struct mandate_replay;
struct mandate_replay *mandate_replay_new(unsigned capacity);
void mandate_replay_free(struct mandate_replay *replay);
/* 0 (new pair, now recorded), or -1: replay, replay_cache_full. */
int mandate_replay_check_and_add(struct mandate_replay *replay,
				 const struct mandate_dpop *d, int64_t now,
				 struct mandate_error *err);

/* ---- revocation statements -------------------------------------------- */

struct mandate_revocation {
	uint8_t iss[32]; /* the revoker (raw thumbprint) */
	bool all;	 /* every link iss ever signed or will sign */
	char jti[MANDATE_JTI_BYTES_MAX + 1]; /* the revoked link ("" if all) */
	uint8_t jti_hash[32];		     /* SHA-256 of jti (0 if all) */
	char stmt_jti[MANDATE_JTI_BYTES_MAX + 1]; /* the statement's own id */
	int64_t iat;
};

/*
 * Verifies a statement: header {alg, typ "tpwallet-revocation+jwt", jwk}
 * only, signature under jwk, claims exactly iss, iat, jti, revoke
 * ({"jti": <link jti>} or {"all": true}) (malformed), iss == thumbprint
 * of jwk (wrong_issuer, "iss"), |now - iat| <= MANDATE_REVOCATION_WINDOW_S
 * (stale, "iat").
 */
int mandate_revocation_verify(const char *jws, size_t len, int64_t now,
			      struct mandate_revocation *out,
			      struct mandate_error *err);

/* ---- issuing (the CLI, tests) ----------------------------------------- */

struct mandate_issue {
	const char *jti;
	int64_t iat, nbf /* 0: none */, exp;
	const char *aud; /* NULL: none */
	const struct jose_pubkey *delegate;
	/* Instead of delegate (NULL then): the SHA-256 of a client
	 * certificate's DER, for cnf {"x5t#S256": ...} and sub. */
	const uint8_t *x5t_s256;
	const struct mandate_right *right;
	const char *parent_compact; /* NULL: a root link */
	size_t parent_len;
};

/*
 * Builds the claims of docs/authz.md and signs them (EdDSA, typ
 * tpwallet-mandate+jwt, no kid).  out gets a NUL-terminated compact JWS
 * (JOSE_TOKEN_BYTES_MAX + 1 always suffices).  Refuses (-1, err code
 * internal with claim) a jti outside the charset, a right that would not
 * parse back, exp <= nbf.  Narrowing is not checked: tests need wide
 * children.
 */
int mandate_link_sign(const struct jose_seckey *issuer,
		      const struct mandate_issue *in, char *out,
		      size_t out_size, size_t *out_len);
/* A DPoP proof; access_token may be NULL (no ath). 0 or -1. */
int mandate_dpop_sign(const struct jose_seckey *key, const char *jti,
		      const char *method, const char *htu, int64_t iat,
		      const char *access_token, size_t at_len, char *out,
		      size_t out_size, size_t *out_len);
/* A revocation statement; revoke_jti NULL with all. 0 or -1. */
int mandate_revocation_sign(const struct jose_seckey *key, const char *stmt_jti,
			    int64_t iat, const char *revoke_jti, bool all,
			    char *out, size_t out_size, size_t *out_len);

#endif
