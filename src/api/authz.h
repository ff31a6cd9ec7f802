/*
 * authz.h - who is calling: the bootstrap administrator's bearer token,
 * or a mandate (a chain of signed links) with a DPoP proof of the
 * delegate's key.  docs/authz.md is the contract.
 *
 * The checks that need state (registered principals, account owners,
 * revocations) read the engine's auth state under its read lock, one
 * short lock per question, never across a signature check.  Verified
 * links are cached by hash; DPoP proofs are remembered for their window
 * to refuse replays.
 */
#ifndef TPW_API_AUTHZ_H
#define TPW_API_AUTHZ_H

#include "core/types.h"
#include "crypto/mandate.h"

#include <stdbool.h>
#include <stdint.h>

struct engine;

#define AUTHZ_ADMIN_TOKEN_FILE "admin.token"
#define AUTHZ_ADMIN_KEY_FILE   "admin.jwk"
#define AUTHZ_TOKEN_PREFIX     "tpw_admin_"
/* "tpw_admin_" + base64url of 32 random bytes */
#define AUTHZ_TOKEN_BYTES (sizeof(AUTHZ_TOKEN_PREFIX) - 1 + 43)
#define AUTHZ_CACHE_LINKS 4096u
/* DPoP proofs remembered, each until 60 s past its iat: 2^21 / 60 s is
 * about 35,000 DPoP requests/s sustained at most (arithmetic, not a
 * measurement; half that for proofs dated ahead); past it new proofs
 * get 503 replay_cache_full, never a forgotten proof.  58 bytes each
 * (a 24-byte ring entry and two 17-byte table slots, sizeof), 116 MiB
 * when full, touched only as it fills. */
#define AUTHZ_REPLAY_PROOFS (1u << 21)
/* Tolerated clock skew on link times (exp, nbf, iat): the default of the
 * link_leeway_s setting (0..JOSE_LEEWAY_MAX_S). */
#define AUTHZ_LEEWAY_S 30
/*
 * DPoP proofs after a restart.  The replay cache lives in memory, so a
 * proof used before a restart could be used again after it, within its
 * window.  DATA/dpop.horizon holds H: every proof ever accepted had
 * iat <= H.  It is raised (written and fdatasync'ed) before a proof with
 * a later iat is accepted, to that iat + AUTHZ_DPOP_LEASE_S, so one sync
 * covers the next AUTHZ_DPOP_LEASE_S seconds of proofs; a clean stop
 * brings H back to the latest iat accepted.  At start the
 * server refuses every proof with iat <= H (dpop_before_restart): a proof
 * made after the restart is new, one made before may have been used.
 * Honest clients (iat = now) wait about a second after a clean restart;
 * after a crash, at most until H: about AUTHZ_DPOP_LEASE_S seconds, more when a
 * client dated its proofs ahead (up to MANDATE_DPOP_AHEAD_S).  A data
 * directory made before the file existed starts with H = now +
 * MANDATE_DPOP_WINDOW_S; a new one with H = 0.
 */
#define AUTHZ_DPOP_HORIZON_FILE "dpop.horizon"
#define AUTHZ_DPOP_LEASE_S	10

struct api_authz;

/*
 * Read DATA/admin.token and DATA/admin.jwk (both must exist, be regular
 * files of mode 0600 or stricter).  audience: the server's name that a
 * link's aud must equal (the log origin).  Returns 0, or -errno with a
 * reason (paths only, never contents) in err.
 */
int api_authz_open(struct api_authz **out, const char *data_dir,
		   const char *audience, char *err, size_t err_size);
void api_authz_close(struct api_authz *z);

/* The public origin DPoP proofs name in htu ("https://host[:port]", no
 * path), as clients reach the server through its TLS proxy; "" or NULL:
 * "http://" + the request's Host header (direct, development). */
int api_authz_set_origin(struct api_authz *z, const char *origin);

/* The limits a server's settings choose (docs/operations.md). */
struct api_authz_limits {
	int leeway_s; /* link_leeway_s: skew on exp, nbf, iat */
	uint32_t revocations_per_principal; /* per bucket (core/auth.h) */
};
void api_authz_set_limits(struct api_authz *z,
			  const struct api_authz_limits *l);
uint32_t api_authz_revocation_quota(const struct api_authz *z);

/* The administrator's principal id (raw thumbprint). */
void api_authz_admin_id(const struct api_authz *z, u8 out[32]);

struct api_caller {
	bool authenticated;
	bool bearer; /* the administrator's bearer token */
	/* An organisation principal, by the verified client certificate
	 * of the connection and no Authorization header: root and tenant
	 * are its id, chain NULL, and it holds the owner's right over the
	 * accounts it owns (authz_routes.c asks who owns each). */
	bool org;
	bool root_admin; /* bearer, or a chain whose first link the admin signed
			  */
	u8 root[32];	 /* the first link's issuer (the admin for bearer) */
	/* Whose share of the per-caller limits (body budget) it uses: the
	 * root principal; in a chain the administrator signed, the first
	 * link's delegate, so that one administrator-rooted mandate cannot
	 * use up the administrator's share; the admin for bearer. */
	u8 tenant[32];
	struct mandate_chain
		*chain; /* NULL for bearer; owned, free with _clear */
};

void api_caller_clear(struct api_caller *c);

/* Does c's credential still hold at now (a read held for a sequence,
 * answered later: the state it reflects may have revoked it)?  Time,
 * revocations and the root's registration, as at verification; the
 * administrator's bearer token always. */
bool api_authz_still_holds(struct api_authz *z, struct engine *e,
			   const struct api_caller *c, int64_t now);

/*
 * Authenticate a request from its Authorization and DPoP header values
 * (either may be NULL), method, Host header, path and the connection's
 * verified client certificate (NULL: none).  An Authorization header
 * decides when there is one: the administrator's bearer token, a
 * mandate with DPoP, or a certificate-bound mandate as a bearer (its
 * last link's cnf x5t#S256 must be the certificate's); without one, a
 * certificate whose key is a registered organisation principal's is that
 * principal.  Returns 0 with *out filled, or -1 with *err saying which
 * check failed.
 */
struct api_tls_client;
struct api_authz_conn {
	const struct api_tls_client *client; /* NULL: no certificate */
	/* The connection's slot (api_tls_conn_slot), NULL without one: a
	 * certificate-bound chain verified on it is kept there, and the
	 * same chain on the same connection is then checked only for what
	 * can change (time, revocation, the root still registered). */
	void **slot;
};
int api_authz_authenticate(struct api_authz *z, struct engine *e,
			   const char *authorization, const char *dpop,
			   const char *method, const char *host,
			   const char *path, const struct api_authz_conn *conn,
			   struct api_caller *out, struct mandate_error *err);

/* The claim of the refusals that concern the client certificate: of a
 * certificate-bound mandate (dpop_wrong_key, dpop_missing) and of a
 * certificate that is no registered principal (malformed). */
#define AUTHZ_CLAIM_X5T	 "cnf.x5t#S256"
#define AUTHZ_CLAIM_CERT "certificate"

/* The right an organisation principal holds: the operations an owner
 * may grant over its own accounts; its accounts list names none (account
 * 0), so that only the checks that ask who owns an account widen it. */
extern const struct mandate_right api_org_right;

/* The right a caller holds (every right for bearer callers). */
const struct mandate_right *api_caller_right(const struct api_caller *c);

/* The operations a named administrator's role gives (enum admin_role,
 * core/admin.h; docs/authz.md, "Named administrators"): 0 for none. */
unsigned api_role_ops(u32 role);
/* Are the bootstrap administrator's credentials retired (its bearer
 * token and the chains its key roots)? */
bool api_authz_bootstrap_retired(struct engine *e);

/* Cache and replay figures for /metrics. */
void api_authz_stats(const struct api_authz *z, uint64_t *cache_hits,
		     uint64_t *cache_misses);

/* Create DATA/admin.jwk and DATA/admin.token (mode 0600) when absent.
 * Returns 1 when created, 0 when both exist, -errno on failure (err). */
int api_authz_admin_ensure(const char *data_dir, char *err, size_t err_size);

#endif
