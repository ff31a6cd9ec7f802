/*
 * netguard.h - what one client may hold of an HTTP server built on
 * libmicrohttpd: connections per address, request-body bytes per
 * address, per principal and in all, and how long a request head or
 * body may take (docs/operations.md, "Connections and slow clients").
 *
 * Why: libmicrohttpd's own timeout restarts on every byte, and the body
 * budget used to be reserved from a Content-Length before the bytes
 * came, so a few slow clients could hold every slot (issue 9, findings
 * 2, 4 and 9).  Here every hold is of bytes actually received, every
 * deadline runs from the start of its phase and never restarts, and a
 * reaper thread closes what passes one.
 *
 * Ownership: a struct netguard is made by netguard_create and freed by
 * netguard_destroy, after the libmicrohttpd daemon that uses it has
 * stopped.  It hands libmicrohttpd three callbacks (netguard_accept,
 * netguard_notify, and through the caller's own URI-log callback
 * netguard_request_line); a connection's struct netguard_conn lives
 * from MHD_CONNECTION_NOTIFY_STARTED to _CLOSED and is found with
 * netguard_conn_of.  Every function is thread-safe (one mutex; no call
 * blocks on I/O while holding it).
 *
 * Closing: the reaper shuts the socket down (shutdown(2), never close:
 * the descriptor stays libmicrohttpd's, and the table lock is held so
 * it cannot be closed under us); libmicrohttpd then sees end of file and
 * closes it.  A request whose request line was read gets a 408
 * request-timeout problem first, written straight to the socket: in the
 * head and body phases libmicrohttpd has nothing of its own to write.
 *
 * The parsers (netguard_addr_parse, netguard_cidrs_parse,
 * netguard_forwarded_client) are pure and fuzzed by
 * tests/fuzz/fuzz_netguard.c.
 */
#ifndef TPW_API_NETGUARD_H
#define TPW_API_NETGUARD_H

#include "api/framing.h"
#include "core/types.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* An IPv4 address is kept as its IPv4-mapped IPv6 form (::ffff:a.b.c.d),
 * so one table and one comparison serve both families. */
struct netguard_addr {
	u8 b[16];
};

struct netguard_cidr {
	struct netguard_addr net; /* host bits zero */
	unsigned prefix;	  /* 0..128, over the mapped form */
};

/* trusted_proxies: at most this many CIDRs, in at most so many bytes. */
#define NETGUARD_PROXIES_MAX	   16
#define NETGUARD_PROXIES_BYTES_MAX 1024
/* X-Forwarded-For: at most so many bytes and entries are read. */
#define NETGUARD_FORWARDED_BYTES_MAX   2048
#define NETGUARD_FORWARDED_ENTRIES_MAX 64
/* How often the reaper looks for passed deadlines. */
#define NETGUARD_TICK_MS 100
/* A body's rate is judged from this long after its first byte on. */
#define NETGUARD_RATE_GRACE_S 5

/* Defaults of the settings (docs/operations.md). */
#define NETGUARD_BODY_BUDGET_BYTES_DEFAULT		 ((size_t)512 << 20)
#define NETGUARD_BODY_BUDGET_PER_ADDRESS_BYTES_DEFAULT	 ((size_t)64 << 20)
#define NETGUARD_BODY_BUDGET_PER_PRINCIPAL_BYTES_DEFAULT ((size_t)64 << 20)
#define NETGUARD_HEADER_TIMEOUT_S_DEFAULT		 10u
#define NETGUARD_BODY_TIMEOUT_S_DEFAULT			 60u
#define NETGUARD_BODY_RATE_MIN_BYTES_S_DEFAULT		 1024u
#define NETGUARD_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT	 64u

struct netguard_limits {
	size_t body_budget_bytes;		/* every body together */
	size_t body_budget_per_address_bytes;	/* one client address */
	size_t body_budget_per_principal_bytes; /* one root principal */
	unsigned idle_timeout_s;   /* no request line yet (keep-alive) */
	unsigned header_timeout_s; /* request line to the end of the head */
	unsigned body_timeout_s;   /* end of the head to the end of body */
	unsigned body_rate_min_bytes_s; /* averaged, after the grace */
	unsigned connections_per_address_max;
	unsigned connections_max; /* sizes the tables */
	struct netguard_cidr proxies[NETGUARD_PROXIES_MAX];
	size_t nproxies;
	/* The daemon speaks TLS: the framing scanner reads what GnuTLS
	 * decrypted (gnutls_record_recv), never the socket's bytes. */
	bool tls;
};

/* Why a hold was refused. */
enum netguard_refusal {
	NETGUARD_OK = 0,
	NETGUARD_OVER_BUDGET,	   /* every body together */
	NETGUARD_OVER_ADDRESS,	   /* this client address */
	NETGUARD_OVER_PRINCIPAL,   /* this principal */
	NETGUARD_OVER_CONNECTIONS, /* this address's requests in progress */
};

struct netguard;
struct netguard_conn;

/* Parse one IPv4 or IPv6 address (no brackets, no port, no zone).
 * 0 or -EINVAL. */
int netguard_addr_parse(const char *s, size_t len, struct netguard_addr *out);
/* From a socket address (AF_INET, AF_INET6).  0 or -EINVAL. */
int netguard_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len,
				struct netguard_addr *out);
/* "a.b.c.d" or an IPv6 text (for logs), NUL-terminated, in out[46]. */
void netguard_addr_format(const struct netguard_addr *a, char out[46]);

/* trusted_proxies: CIDRs ("10.0.0.0/8", "::1/128"; a bare address is
 * its host) separated by commas and optional blanks; "" is none.  At
 * most NETGUARD_PROXIES_MAX.  0 or -EINVAL (nothing is kept then). */
int netguard_cidrs_parse(const char *text, struct netguard_cidr *out,
			 size_t max, size_t *n);
bool netguard_cidrs_match(const struct netguard_cidr *c, size_t n,
			  const struct netguard_addr *a);

/* The client of an X-Forwarded-For value: read from the right, the
 * first address that is not a trusted proxy (every hop to its right
 * was added by a proxy we trust; anything to its left the client may
 * have written).  0, or -EINVAL when the value is empty, too long, has
 * too many entries or an entry that is not an address, or names only
 * proxies. */
int netguard_forwarded_client(const char *v, size_t len,
			      const struct netguard_cidr *proxies, size_t n,
			      struct netguard_addr *out);

/*
 * Framing (RFC 9112) of what libmicrohttpd hands over; each false is a
 * 400 bad-framing and a closed connection.
 *
 * netguard_target_ok: the raw request target, before percent-decoding:
 * only visible ASCII, and no %00 (which would cut the decoded path).
 *
 * netguard_field_ok: one header field as parsed: the name a token, the
 * value without NUL or other control characters but HTAB (its length is
 * libmicrohttpd's, so a NUL that cut the value shows as a mismatch).
 *
 * struct netguard_framing gathers the fields that frame a body, one
 * netguard_framing_add per field; netguard_framing_ok then refuses a
 * repeated or non-decimal Content-Length, Transfer-Encoding beside
 * Content-Length, and any Transfer-Encoding but one "chunked".
 */
bool netguard_target_ok(const char *uri);
bool netguard_field_ok(const char *name, size_t name_len, const char *value,
		       size_t value_len);
struct netguard_framing {
	unsigned content_lengths, transfer_encodings;
	bool bad; /* a field that can never frame a body */
};
void netguard_framing_add(struct netguard_framing *f, const char *name,
			  size_t name_len, const char *value, size_t value_len);
bool netguard_framing_ok(const struct netguard_framing *f);

/* Limits are copied; a zero field takes its default.  NULL when out of
 * memory or the reaper thread cannot start. */
struct netguard *netguard_create(const struct netguard_limits *l);
/* Stop the reaper, free the tables.  After MHD_stop_daemon. */
void netguard_destroy(struct netguard *g);

/* libmicrohttpd's accept policy (cls: the netguard): refuses a peer at
 * its connection limit (trusted proxies are exempt). */
enum MHD_Result netguard_accept(void *cls, const struct sockaddr *addr,
				socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION (cls: the netguard). */
void netguard_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
		     enum MHD_ConnectionNotificationCode toe);
/* The connection's record, or NULL (out of memory at its start). */
struct netguard_conn *netguard_conn_of(struct MHD_Connection *c);

/* The phases of a request, each with its deadline (NULL conn: no-op).
 * netguard_request_line returns the request's number on its connection
 * (from 1; 0 for a NULL conn), for netguard_framing_error. */
u32 netguard_request_line(struct netguard_conn *nc);
/*
 * The head is in.  forwarded: the last X-Forwarded-For value (or NULL).
 * When the peer is a trusted proxy the request is counted against the
 * forwarded client, else against the peer.  has_body: a body follows
 * (its phase and deadline start now).  Returns NETGUARD_OK;
 * NETGUARD_OVER_CONNECTIONS when the forwarded client has
 * connections_per_address_max requests in progress; -EINVAL when a
 * trusted proxy sent no usable X-Forwarded-For.
 */
int netguard_head_done(struct netguard_conn *nc, const char *forwarded,
		       size_t forwarded_len, bool has_body);
/* The caller is known: bodies from now on count against this principal
 * (32 bytes: the chain's root key, or the administrator's). */
void netguard_set_principal(struct netguard_conn *nc, const u8 root[32]);
/* n more body bytes arrived (read or discarded). */
void netguard_body_bytes(struct netguard_conn *nc, size_t n);
/* The body is in: no more deadline until the next request line. */
void netguard_body_done(struct netguard_conn *nc);
/* Hold n more bytes of buffered body against every budget.
 * NETGUARD_OK, or which budget refused (nothing is held then). */
enum netguard_refusal netguard_hold(struct netguard_conn *nc, size_t n);
/* Give back n held bytes (n <= what this connection holds). */
void netguard_release(struct netguard_conn *nc, size_t n);
/* The request completed: its holds must have been released; the idle
 * deadline starts. */
void netguard_request_done(struct netguard_conn *nc);

/* The raw bytes of every connection are read strictly (framing.h) on
 * their way to libmicrohttpd.  Did request number `request` (from
 * netguard_request_line) break the grammar?  FRAMING_OK when not; else
 * answer 400 bad-framing (nothing after the bad byte reached
 * libmicrohttpd). */
enum framing_error netguard_framing_error(const struct netguard_conn *nc,
					  u32 request);
/* The number of the connection's current request (0 before the first). */
u32 netguard_requests(const struct netguard_conn *nc);
/* After a chunked request the bytes are no longer read: its reply must
 * close the connection. */
bool netguard_close_after(const struct netguard_conn *nc);

/* For /metrics and tests: connections closed by each deadline, and
 * connections refused by the per-address limit. */
struct netguard_stats {
	u64 closed_idle, closed_header, closed_body, refused_address;
	size_t held_bytes;
	size_t tracked; /* table entries in use: addresses and principals */
};
void netguard_stats(struct netguard *g, struct netguard_stats *out);
struct wbuf;
/* The same, as Prometheus text (tpwallet_net_*). */
void netguard_metrics(struct netguard *g, struct wbuf *b);

#endif
