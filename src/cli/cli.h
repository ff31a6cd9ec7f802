/*
 * cli.h - the command table and what subcommands share.
 *
 * One file per subcommand (src/cli/cmd_<name>.c), each exporting one
 * `cmd_<name>` function, registered in the table in main.c.  A command
 * gets argv with argv[0] == its own name, parses its own flags with
 * getopt_long, answers --help, and returns a process exit status.
 *
 * Settings resolve in this order: command-line flag, environment variable
 * (TPWALLET_*), config file (--config or TPWALLET_CONFIG), default.  See
 * docs/operations.md.
 */
#ifndef TPW_CLI_CLI_H
#define TPW_CLI_CLI_H

#include "core/version.h"
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "core/parse.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

extern const struct command commands[];
extern const size_t commands_count;

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_witness(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_principal(int argc, char **argv);
int cmd_keys(int argc, char **argv);
/* reconcile an acquirer's settlement file (cmd_reconcile.c). */
int cmd_reconcile(int argc, char **argv);
/* keys init-hsm and keys migrate (cmd_keys_local.c). */
int cmd_keys_local(int argc, char **argv);
int cmd_tls(int argc, char **argv);
int cmd_delegate(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* ---- release.c: signed artifacts (docs/releases.md) ---- */

/* Verify file against its minisign signature sigfile (NULL: FILE.minisig)
 * with the public key in keyfile.  Returns 0 (verified: detail says by
 * which key, with the trusted comment), a MINISIGN_* error, or -errno
 * for a file that cannot be read (detail names it).  Never more than
 * MINISIGN_FILE_BYTES_MAX of the key or signature file is read. */
int release_verify(const char *file, const char *sigfile, const char *keyfile,
		   char *detail, size_t cap);
/* What the running binary is, against keyfile ("" none): "verified",
 * "unsigned" (no BINARY.minisig), "bad" (a signature that fails, or an
 * unreadable key), "no_key" (no key set); detail says more. */
const char *release_self_status(const char *keyfile, char *detail, size_t cap);
int cmd_doctor(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_routes(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_drill(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);
int cmd_cdc(int argc, char **argv);

/* Exit statuses (sysexits-like). */
#define EXIT_USAGE    2
#define EXIT_DATA     65 /* data directory unusable or corrupt */
#define EXIT_SOFTWARE 70
/* The stop's bound on the requests in flight (shutdown_timeout_s). */
#define SHUTDOWN_TIMEOUT_S_DEFAULT 30u

/* Settings shared by init and serve. */
struct settings {
	char data_dir[4096];
	char listen[256]; /* HOST:PORT */
	unsigned threads; /* HTTP worker threads; 0 = number of cores */
	uint64_t body_bytes_max;
	unsigned connection_timeout_s;
	unsigned connections_max;
	/* Slow and greedy clients (api/netguard.h, docs/operations.md). */
	uint64_t body_budget_bytes;
	uint64_t body_budget_per_address_bytes;
	uint64_t body_budget_per_principal_bytes;
	unsigned header_timeout_s;
	unsigned body_timeout_s;
	unsigned body_rate_min_bytes_s;
	unsigned connections_per_address_max;
	char trusted_proxies[1025]; /* CIDRs, comma-separated; "" none */
	uint64_t snapshot_every;
	unsigned store;	      /* 1: history in DATA/store (docs/store.md) */
	uint64_t cache_bytes; /* memory for history with a store */
	/* Journal retention (docs/operations.md): sealed segments the
	 * store and the audit files cover are moved here; "" keeps all. */
	char journal_archive_dir[4096];
	uint64_t journal_segment_bytes; /* segments roll past this */
	unsigned key_rotation_days;	/* scheduled rotation; 0: never */
	/* How long the keys a rotation retires keep verifying (0: not at
	 * all, for a leaked key); POST /v1/keys/rotate may say otherwise. */
	unsigned key_overlap_s;
	char public_url[256];	/* DPoP htu origin; "" = the Host header */
	unsigned link_leeway_s; /* skew on link exp, nbf, iat */
	/* How long a dual-control request waits for its second
	 * administrator (docs/authz.md, "Dual control"). */
	unsigned dual_control_window_s;
	unsigned revocations_per_principal; /* per bucket: core/auth.h */
	/* A policy set may newly block at most this share (0..1) of a
	 * platform's active users unless confirmed (docs/client-policy.md). */
	double client_policy_max_blocked_share;
	/* The signed manifest (docs/client-policy.md): 1 = readable without
	 * a credential; the longest it may be cached, seconds. */
	unsigned manifest_public;
	/* Trace ids as exemplars on OpenMetrics scrapes of the open /metrics
	 * (docs/operations.md, "Tracing"): off unless asked. */
	unsigned metrics_exemplars;
	unsigned manifest_ttl_max_s;
	/* Card reveals per principal and minute (docs/vault.md). */
	unsigned vault_reveals_per_minute;
	/* The stop (docs/operations.md, "Stopping"): /readyz answers
	 * draining for shutdown_drain_s before requests are refused; the
	 * requests accepted get shutdown_timeout_s to finish.  core_dumps
	 * = 1 keeps the process dumpable (a core may hold keys). */
	unsigned shutdown_drain_s;
	unsigned shutdown_timeout_s;
	unsigned core_dumps;
	char log_level[16];
	char kek_file[4200]; /* "" until settings_finish: DATA.kek */
	/* The KEK in a PKCS#11 token instead (log/pkcs11.h, docs/keys.md
	 * "In a hardware security module"): the module's path ("": the
	 * file KEK), the token's label or slot, the PIN's file ("": the
	 * environment variable TPWALLET_KEK_PKCS11_PIN), the key's label,
	 * and the deadline of each call to the token. */
	char kek_pkcs11_module[4096];
	char kek_pkcs11_token[65];
	char kek_pkcs11_slot[24];
	char kek_pkcs11_pin_file[4096];
	char kek_pkcs11_key_label[65];
	unsigned kek_pkcs11_timeout_ms;
	/* 1: the signing keys are generated in that token and sign there
	 * (docs/keys.md, "Signing inside the token"); needs
	 * kek_pkcs11_module. */
	unsigned signing_pkcs11;
	/* "http://HOST:PORT KEY" of each witness (setting `witness`, which
	 * may be given several times, at most 8). */
	char witnesses[8][1024];
	unsigned nwitnesses;
	/* "URL:platform/version" of each probe (setting `probe`, which may
	 * be given several times, at most 16: api/probe.h), run every
	 * probe_interval_s. */
	char probes[16][1024];
	unsigned nprobes;
	unsigned probe_interval_s;
	/* Tracing (engine/trace.h, docs/operations.md "Tracing"): the
	 * OpenTelemetry variables of the same names, in lower case. */
	char otel_exporter_otlp_endpoint[1024];
	char otel_exporter_otlp_traces_endpoint[1024];
	char otel_traces_sampler[64];
	char otel_traces_sampler_arg[32];
	char otel_service_name[128];
	unsigned otel_bsp_max_queue_size;
	unsigned otel_bsp_schedule_delay;    /* ms */
	unsigned otel_exporter_otlp_timeout; /* ms */
	/* The audit tree's tile cache (log/tilestore.h), bytes. */
	uint64_t audit_cache_bytes;
	/* HTTPS (api/tls.h, docs/operations.md "TLS"): both files or none;
	 * "" priority: API_TLS_PRIORITY_DEFAULT. */
	char tls_cert_file[4096];
	char tls_key_file[4096];
	char tls_priority[512];
	/* The standby pair (docs/operations.md, "Standby certificate"):
	 * both or none, beside tls_cert_file. */
	char tls_standby_cert_file[4096];
	char tls_standby_key_file[4096];
	/* Mutual TLS (docs/operations.md, "Client certificates"): the CAs
	 * that sign client certificates, their CRLs, and whether a client
	 * certificate is asked for ("none", "optional", "required"; ""
	 * means optional with a CA file, none without). */
	char tls_client_ca_file[4096];
	char tls_crl_file[4096];
	char tls_client_auth[16];
	/* OCSP stapling (docs/operations.md, "OCSP stapling"): DER OCSP
	 * responses for the primary and the standby certificate. */
	char tls_ocsp_file[4096];
	char tls_standby_ocsp_file[4096];
	/* The server's outbound calls (witnesses, probes; net/http.h,
	 * docs/operations.md "Outbound TLS"): a CA bundle instead of the
	 * system's ("" the system's), and public-key pins, "https://HOST[:PORT]
	 * sha256//BASE64[;...]" each (setting `outbound_pin`, at most 16). */
	char outbound_ca_file[4096];
	/* the minisign public key releases are signed with: the running
	 * binary is checked against BINARY.minisig at start (release.c) */
	char release_public_key_file[4096];
	char outbound_pins[16][512];
	unsigned noutbound_pins;
	/* Setting outbound_allow (net/http.h, docs/operations.md "Outbound
	 * allow-list"): what the server's outbound calls may reach among
	 * loopback, link-local, unspecified, multicast and private
	 * addresses; HOST[:PORT], ADDR[:PORT] or ADDR/BITS each. */
	char outbound_allow[32][300];
	unsigned noutbound_allow;
	/* The acquirer connector (engine/acquirer.h, docs/acquirer.md): its
	 * URL ("" none), the settlement account (decimal), the currency and
	 * API version sent, the top-ups' transfer code, the calls at once,
	 * the breaker's failures and cool-down, one call's deadline. */
	char acquirer[2048];
	char acquirer_settlement_account[48];
	/* The one account differences are booked to (reconcile). */
	char acquirer_suspense_account[48];
	char acquirer_currency[8];
	char acquirer_api_version[16];
	unsigned acquirer_code;
	unsigned acquirer_inflight_max;
	unsigned acquirer_breaker_failures;
	unsigned acquirer_breaker_cooldown_ms;
	unsigned acquirer_timeout_ms;
	/* Cluster mode (docs/operations.md, "Cluster mode"): a libpq
	 * connection string ("" a single node; may hold a password, never
	 * printed), this node's name for the writer's lease ("" until
	 * settings_finish: HOST:DATA_DIR), the lease's length; the URL
	 * clients should use for this node (named by followers to writes),
	 * and how long a follower holds a read for Tpwallet-Min-Seq. */
	char cluster[1024];
	char cluster_node[256];
	unsigned cluster_lease_ms;
	char cluster_advertise[256];
	unsigned cluster_read_wait_ms;
};

/* Defaults, then the config file (if any), then the environment. */
int settings_load(struct settings *s, const char *config_path);
/* Set one setting by its config-file key ("data", "listen", ...).
 * Returns 0, or -EINVAL with a message on stderr. */
int settings_set(struct settings *s, const char *key, const char *value);

/* After flags: derive what defaults to other settings (kek_file is the
 * data directory's path + ".kek"). */
void settings_finish(struct settings *s);

/* Parse config-file text (`key = value` lines, `#` comments) into s;
 * source names the file in messages.  Returns 0 or -EINVAL (a message on
 * stderr names the line).  Fuzzed by tests/fuzz/fuzz_config.c. */
int settings_parse_text(struct settings *s, const char *text, size_t len,
			const char *source);

/* Split "HOST:PORT" ("[::1]:8080" for IPv6).  Returns 0 or -EINVAL. */
int parse_listen(const char *s, char *host, size_t host_bytes,
		 unsigned short *port);

/*
 * The client commands (call, principal, keys, delegate) talk to a server
 * over src/net/http.h; what they share is in cmd_call.c.  See
 * docs/cli.md.  Every helper prints its own refusal on stderr, prefixed
 * with the command's name, and never prints a key or a token.
 */
#define CLIENT_SERVER_DEFAULT	  "http://127.0.0.1:8080"
#define CLIENT_DATA_DEFAULT	  "data"
#define CLIENT_TIMEOUT_S_DEFAULT  10u
#define CLIENT_TIMEOUT_S_MAX	  3600u
#define CLIENT_BODY_BYTES_MAX	  ((size_t)64 << 20) /* a request body */
#define CLIENT_KEY_FILE_BYTES_MAX 4096u
#define CLIENT_TOKEN_BYTES_MAX	  1024u

struct jose_seckey;
struct jose_pubkey;
struct http_response;

/* Where and how to reach the server, and with which credential. */
struct http_header;

struct client {
	const char *prog;     /* "tpwallet call": prefixes messages */
	const char *server;   /* --server, $TPWALLET_SERVER, default */
	const char *data_dir; /* --data, $TPWALLET_DATA, "data" */
	const char *ca_file;  /* --cacert: CAs for https (NULL: system) */
	/* --cert, --cert-key: a client certificate for mutual TLS */
	const char *cert_file, *cert_key_file;
	unsigned timeout_s;	  /* --timeout: connect and total, seconds */
	bool verbose;		  /* -v: the status line on stderr */
	const char *token_file;	  /* --token-file (default DATA/admin.token) */
	const char *key_file;	  /* --key: DPoP key (with mandate_file) */
	const char *mandate_file; /* --mandate: the chain */
	bool no_auth;		  /* --no-auth: no Authorization header */
	/* -H 'Name: value' of tpwallet call (X-Client-Version...) */
	struct http_header *extra;
	unsigned nextra;
	/* client_send with resp: a problem answer is kept in *resp too
	 * (after its summary on stderr; the return is still 1). */
	bool keep_problem;
};

void client_init(struct client *c, const char *prog);

/* The start of a command with subcommands: no argument is a usage error
 * (usage on stderr, EXIT_USAGE), --help or -h the usage on stdout (0);
 * else -1: go on with argv[1], the subcommand. */
int client_subcommand_or_help(int argc, char **argv, void (*usage)(FILE *));

/* Text from a server or an unverified file, made safe for a terminal:
 * control characters become '?'.  NULL prints nothing. */
void client_print_clean(FILE *f, const char *s);

/* getopt_long entries for the shared options; put CLIENT_LONG_OPTIONS in
 * a command's table and offer each option to client_option first. */
#define CLIENT_OPT_SERVER     0x1001
#define CLIENT_OPT_DATA	      0x1002
#define CLIENT_OPT_TIMEOUT    0x1003
#define CLIENT_OPT_TOKEN_FILE 0x1004
#define CLIENT_OPT_MANDATE    0x1005
#define CLIENT_OPT_NO_AUTH    0x1006
#define CLIENT_OPT_CACERT     0x1007
#define CLIENT_OPT_CERT	      0x1008
#define CLIENT_OPT_CERT_KEY   0x1009
/* clang-format off */
#define CLIENT_LONG_OPTIONS                                                    \
	{"server", required_argument, NULL, CLIENT_OPT_SERVER},                \
	{"data", required_argument, NULL, CLIENT_OPT_DATA},                    \
	{"timeout", required_argument, NULL, CLIENT_OPT_TIMEOUT},              \
	{"cacert", required_argument, NULL, CLIENT_OPT_CACERT},                \
	{"cert", required_argument, NULL, CLIENT_OPT_CERT},                    \
	{"cert-key", required_argument, NULL, CLIENT_OPT_CERT_KEY},            \
	{"verbose", no_argument, NULL, 'v'}
#define CLIENT_AUTH_LONG_OPTIONS                                               \
	{"token-file", required_argument, NULL, CLIENT_OPT_TOKEN_FILE},        \
	{"key", required_argument, NULL, 'k'},                                 \
	{"mandate", required_argument, NULL, CLIENT_OPT_MANDATE},              \
	{"no-auth", no_argument, NULL, CLIENT_OPT_NO_AUTH}
/* clang-format on */

/* 1 when opt was a shared option (and is now set), 0 when it is not
 * one, -1 on a bad value (message printed).  with_auth: also the
 * credential options (--token-file, --key/-k, --mandate, --no-auth). */
int client_option(struct client *c, int opt, const char *arg, bool with_auth);

/* Usage lines for the shared options. */
extern const char client_usage_common[];
extern const char client_usage_auth[];

/* A file ("-": standard input) read whole, at most max bytes, with a NUL
 * after; *out is malloc'd.  0, -EFBIG, or -errno. */
int client_read_file(const char *path, size_t max, char **out, size_t *len);

/* A secret's file whole (at most cap - 1 bytes, trailing blanks cut,
 * NUL-terminated) into buf; private_only: refused unless mode 0600 or
 * stricter.  0, or -1 with the reason on stderr (what names the file). */
int client_read_secret_file(const struct client *c, const char *what,
			    const char *path, bool private_only, char *buf,
			    size_t cap, size_t *len_out);

/* A private Ed25519 JWK from a file of mode 0600 or stricter.  0 or -1. */
int client_load_seckey(const struct client *c, const char *path,
		       struct jose_seckey **out);
/* A public key from a file holding a public or a private JWK.  0 or -1. */
int client_load_pubkey(const struct client *c, const char *path,
		       struct jose_pubkey *out);

/*
 * One request to c->server: method, target (path and query), a body
 * (JSON: sent with Content-Type application/json) when body is not NULL.
 * Authorization from c (the bearer token, or DPoP with a fresh proof).
 * A 2xx answer is kept in *resp when resp is not NULL, else its body is
 * written to stdout.  Returns 0 for a 2xx answer; 1 for any other answer
 * (its problem summarised on stderr, a non-problem body on stdout) or a
 * failure to send; EXIT_USAGE for an unusable option or file.
 */
int client_send(const struct client *c, const char *method, const char *target,
		const char *body, size_t body_len, struct http_response *resp);

/* Writes a body to stdout, with a newline when it lacks one. */
void client_print_body(const char *body, size_t len);

/* 16 random bytes in base64url (22 characters and a NUL). */
void client_random_id(char out[23]);

#endif
