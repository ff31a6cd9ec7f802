/*
 * server.h - the HTTP API: a libmicrohttpd daemon and its router.
 *
 * Routes (docs/api.md is the contract):
 *   POST /v1/accounts, POST /v1/transfers        one event or 1..8190
 *   GET  /v1/accounts/{id}, /v1/transfers/{id}
 *   GET  /v1/accounts/{id}/transfers, /v1/accounts/{id}/balances
 *   GET  /healthz, /readyz, /metrics
 *
 * Threads: libmicrohttpd's internal polling threads (epoll, poll when
 * epoll is missing), `threads` of them.  No HTTP thread ever waits for the
 * journal: a create request is parsed, handed to engine_submit(), and its
 * connection suspended; the engine's `done` callback (on the sequencer
 * thread) only marks the request ready and resumes the connection, and
 * the reply is written by an HTTP thread afterwards.
 *
 * Allocation policy: per request, freed when the request completes.  One
 * allocation holds the request state and its query string (made when the
 * request line arrives); the body buffer grows by doubling with the
 * bytes received, up to body_bytes_max and never past Content-Length,
 * each growth held against api/netguard.h's budgets; decoded
 * events, results and the response body are allocated once each, sized
 * from the event count.  libmicrohttpd frees the response body after
 * sending it; everything else is freed in the request-completed callback.
 * Nothing is allocated on the hot path for GET /healthz beyond the
 * request state and the reply.
 *
 * Limits: body_bytes_max (413), 8190 events per request (413), JSON
 * nesting 4 (400), query string 2 KiB (400), request line and headers
 * 32 KiB (libmicrohttpd's connection memory; it answers 414/431),
 * connection_timeout_s for idle, slow or half-open connections (closed),
 * connections_max simultaneous connections (further ones are refused at
 * accept); and what api/netguard.h bounds: bytes of bodies held per
 * address, per principal and in all, head and body deadlines that never
 * restart, a minimum body rate, connections per address.
 */
#ifndef TPW_API_SERVER_H
#define TPW_API_SERVER_H

#include "api/netguard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct audit;
struct engine;
struct keyring;
struct pkcs11;
struct vaultkeys;

#define API_BODY_BYTES_MAX_DEFAULT	 ((size_t)8 << 20)
#define API_CONNECTION_TIMEOUT_S_DEFAULT 30u
#define API_CONNECTIONS_MAX_DEFAULT	 4096u
/* client_policy_max_blocked_share (docs/client-policy.md) */
#define API_POLICY_BLOCKED_SHARE_MAX_DEFAULT 0.05
#define API_MANIFEST_TTL_S_DEFAULT	     (24u * 3600u)
#define API_VAULT_REVEALS_PER_MINUTE_DEFAULT 10u

struct api_options {
	const char *host;      /* numeric address or name; NULL: 127.0.0.1 */
	unsigned short port;   /* 0: any free port (see api_server_port) */
	unsigned threads;      /* 0: online CPUs - 1 (at least 1) */
	size_t body_bytes_max; /* 0: API_BODY_BYTES_MAX_DEFAULT */
	unsigned connection_timeout_s; /* 0: 30 */
	unsigned connections_max;      /* 0: 4096 */
	struct audit *audit;	 /* NULL: the /v1/audit routes answer 503 */
	struct keyring *keyring; /* NULL: /.well-known/jwks.json answers 503 */
	/* The token that holds the KEK (log/pkcs11.h), for /metrics; NULL:
	 * the KEK is a file or an environment variable. */
	struct pkcs11 *hsm;
	const char *origin; /* the audit log's name (its note key name) */
	/* How long keys retired by POST /v1/keys/rotate keep verifying when
	 * the request does not say (the `key_overlap_s` setting): 0 is no
	 * overlap at all, so set it. */
	int64_t key_overlap_s;
	/* Authentication (api/authz.h); NULL: every /v1 route answers 503.
	 * Owned by the caller; must outlive the server. */
	struct api_authz *authz;
	/* Where client activity (docs/client-policy.md) is kept between
	 * runs; NULL: in memory only. */
	const char *data_dir;
	/* The guard rail of a policy set (docs/client-policy.md): the
	 * largest share (0..1) of a platform's active users a new document
	 * may newly block without ?accept_impact=true.  Unset: the default. */
	bool policy_blocked_share_set;
	/* The window of a dual-control request (dual_control_window_s; 0:
	 * ADMIN_WINDOW_DEFAULT_S). */
	unsigned dual_control_window_s;
	double policy_blocked_share_max;
	/* GET /v1/client-policy without a credential (setting
	 * manifest_public), and the longest a manifest may be cached
	 * (manifest_ttl_max_s; 0: API_MANIFEST_TTL_S_DEFAULT). */
	bool manifest_public;
	/* OpenMetrics scrapes carry exemplars (recent trace and span ids):
	 * /metrics is open, so only where its readers may see them. */
	bool metrics_exemplars;
	unsigned manifest_ttl_max_s;
	/* Body budgets, deadlines, per-address limits, trusted proxies
	 * (api/netguard.h); a zero field takes its default. */
	struct netguard_limits net;
	/* Probes from the outside (api/probe.h): "URL:platform/version"
	 * each, at most PROBE_TARGETS_MAX (16), run one after the other by
	 * one thread every probe_interval_s (0: 30). */
	const char *const *probes;
	unsigned nprobes;
	unsigned probe_interval_s;
	/* HTTPS with these credentials (api/tls.h, opened and reloaded by
	 * the caller, closed after api_server_stop); NULL: plain HTTP. */
	struct api_tls *tls;
	/* Cluster mode: how long a read with Tpwallet-Min-Seq waits for
	 * this node to apply it (setting cluster_read_wait_ms). */
	unsigned cluster_read_wait_ms;
	/* The card vault's key store (engine/vaultkeys.h, owned by the
	 * caller; NULL: the vault routes answer 503), and how many reveals
	 * one principal may make per minute (vault_reveals_per_minute; 0:
	 * API_VAULT_REVEALS_PER_MINUTE_DEFAULT). */
	struct vaultkeys *vault;
	unsigned vault_reveals_per_minute;
	/* The acquirer connector (engine/acquirer.h, owned by the caller,
	 * closed after api_server_stop); NULL: none configured. */
	struct acquirer *acquirer;
	/* The one account reconciliation books differences to
	 * (acquirer_suspense_account); 0: booking refused. */
	u128 acquirer_suspense;
};

struct api_server;

/*
 * Start serving e (which must stay open until api_server_stop returns).
 * Returns 0, or a negative errno with *err (if not NULL) naming the cause
 * in a static string.
 */
int api_server_start(struct api_server **out, struct engine *e,
		     const struct api_options *o, const char **err);

/*
 * Stop: /readyz turns 503 and new create requests get 503, the listening
 * socket is closed, requests already handed to the engine are waited for
 * (their replies get up to 2 s to go out), then libmicrohttpd is stopped
 * and s freed.  Call before engine_close().  NULL is a no-op.
 */
void api_server_stop(struct api_server *s);
/* /readyz answers 503 "draining" from now on; every other route still
 * serves (the stop's first phase, setting shutdown_drain_s). */
void api_server_drain(struct api_server *s);

/* Write the client-version activity counts to DATA/activity now (the
 * upkeep does every few minutes; the stop does too).  0 or -errno. */
int api_server_save_activity(struct api_server *s);

/* The bound TCP port (useful with port 0). */
unsigned short api_server_port(const struct api_server *s);

/* /readyz answers 200 only while ready (true after start). */
void api_server_set_ready(struct api_server *s, bool ready);

#endif
