/*
 * http.h - the one outbound HTTP client (on libcurl, GnuTLS flavour):
 * the CLI's requests to a server, the witness thread's checkpoints, and
 * every outbound call to come (webhooks, acquirer connectors).
 *
 * A struct http_client is one destination: a base URL (scheme, host,
 * port, path prefix), its limits and deadlines, and a libcurl handle
 * whose connection cache keeps the connection open between requests
 * (keep-alive).  Open one per destination and reuse it; it belongs to
 * one thread at a time (nothing here locks).
 *
 * What every request gets, whatever the caller forgets:
 *   - http and https only, for the URL and for any redirect; redirects
 *     are not followed unless redirects_max says how many;
 *   - TLS peer and host name verification (system CAs, or ca_file);
 *   - a connect deadline and a total deadline (connect to last byte),
 *     and a cancel flag looked at every HTTP_CANCEL_POLL_MS;
 *   - a response body cap (a Content-Length over it is refused before
 *     the body is read; a longer body is cut off as it arrives) and a
 *     cap on the bytes of the status line and headers;
 *   - no library trace output: request headers (Authorization, DPoP)
 *     are never written anywhere, and the copies this module makes of
 *     them are wiped after each request.
 *
 * Errors: 0 or the negative of a code in HTTP_ERRORS; http_err_desc()
 * says what it means in a sentence that never holds request or
 * response bytes.
 *
 * Process set-up: http_global_init() once at start, before any thread
 * (libcurl's global state is not thread-safe to create).
 */
#ifndef TPW_NET_HTTP_H
#define TPW_NET_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_HEAD_BYTES_DEFAULT	    (64u * 1024u)
#define HTTP_BODY_BYTES_DEFAULT	    ((size_t)16 << 20)
#define HTTP_BODY_BYTES_MAX	    ((size_t)256 << 20)
#define HTTP_TIMEOUT_MS_DEFAULT	    10000u
#define HTTP_TIMEOUT_MS_MAX	    (3600u * 1000u)
#define HTTP_REDIRECTS_MAX	    10u
#define HTTP_URL_BYTES_MAX	    2048u
#define HTTP_HOST_BYTES_MAX	    255u
#define HTTP_TARGET_BYTES_MAX	    4096u
#define HTTP_HEADERS_MAX	    16u
#define HTTP_CONTENT_TYPE_BYTES_MAX 128u
#define HTTP_REASON_BYTES_MAX	    128u
#define HTTP_USER_AGENT_BYTES_MAX   64u
#define HTTP_CANCEL_POLL_MS	    20u
#define HTTP_CAPTURE_MAX	    4u
#define HTTP_CAPTURE_BYTES_MAX	    256u

#define HTTP_ERRORS(X)                                                         \
	X(ok, "done")                                                          \
	X(invalid_argument, "invalid request (method, target or header)")      \
	X(bad_url, "not a URL of the form http[s]://HOST[:PORT][/PATH]")       \
	X(unsupported_scheme, "only http:// and https:// URLs are allowed")    \
	X(resolve, "the host name does not resolve")                           \
	X(connect, "cannot connect to the server")                             \
	X(connect_timeout, "connecting timed out")                             \
	X(timeout, "the request timed out")                                    \
	X(tls, "the TLS handshake failed or the certificate is not trusted")   \
	X(pinned_key, "the server's public key is not one of its pins")        \
	X(pin_needs_https, "a pinned host is reached over http, not https")    \
	X(send, "sending the request failed")                                  \
	X(recv, "receiving the answer failed")                                 \
	X(no_memory, "out of memory")                                          \
	X(truncated, "the connection closed before the answer was complete")   \
	X(protocol, "the answer is not valid HTTP/1.x")                        \
	X(head_too_large, "the answer's headers are over the limit")           \
	X(body_too_large, "the answer's body is over the size limit")          \
	X(too_many_redirects, "too many redirects")                            \
	X(canceled, "the request was canceled")                                \
	X(library, "the HTTP library failed")                                  \
	X(outbound_refused,                                                    \
	  "the destination's address is loopback, link-local, unspecified, "   \
	  "multicast or private and no outbound_allow rule covers it")

enum http_err {
#define X(name, desc) HTTP_##name,
	HTTP_ERRORS(X)
#undef X
		HTTP_ERR_COUNT
};

/* Stable snake_case name and one-sentence description of 0 or -HTTP_x;
 * NULL / "unknown error" outside the table. */
const char *http_err_name(int ret);
const char *http_err_desc(int ret);

/* libcurl's global set-up, once per process before any thread; 0 or
 * -HTTP_library.  http_global_cleanup at exit is optional. */
int http_global_init(void);
void http_global_cleanup(void);

/* ---- the process's outbound policy ------------------------------------ */

/*
 * What every client the server opens trusts, set once at start before
 * any thread (settings outbound_ca_file and outbound_pin;
 * docs/operations.md "Outbound TLS"):
 *   - ca_file (NULL or ""): a PEM bundle used instead of the system's CAs
 *     by every client whose own http_options.ca_file is NULL;
 *   - pins: "https://HOST[:PORT] sha256//BASE64[;sha256//BASE64...]", at
 *     most HTTP_PINS_MAX of them, at most HTTP_PIN_KEYS_MAX keys each: a
 *     client for that host and port (443 when none is written) accepts
 *     only a server whose public key (SubjectPublicKeyInfo, DER) hashes
 *     to one of them, after the usual chain and name checks; a client
 *     for it over http:// is refused (-HTTP_pin_needs_https).
 * Returns 0, or -HTTP_invalid_argument with err saying which spec and
 * why.  The CLI's own commands do not call it: only the server's
 * outbound calls (witnesses, probes, and what comes) follow it.
 */
#define HTTP_PINS_MAX	  16u
#define HTTP_PIN_KEYS_MAX 4u
int http_outbound_set(const char *ca_file, const char *const *pins,
		      size_t npins, char *err, size_t err_len);

/* 0 when the policy lets a client open for url, -HTTP_pin_needs_https
 * for a pinned host named with http://, or a URL error. */
int http_outbound_check(const char *url);

/* ---- the outbound allow-list ------------------------------------------ */

/*
 * Setting outbound_allow (docs/operations.md "Outbound allow-list"): once
 * http_outbound_allow has been called (the server does, at start, before
 * any thread), every connection a client opens is checked on the address
 * it is about to connect to (after name resolution, so a name that
 * resolves elsewhere the second time cannot slip past; again for every
 * redirect): an address that is loopback, link-local, unspecified,
 * multicast or private (RFC 1918, 100.64/10, ULA fc00::/7, site-local)
 * is refused (-HTTP_outbound_refused) unless a rule covers it.  A rule
 * is one of:
 *   - ADDR or ADDR/BITS (IPv4, or IPv6 with or without brackets): that
 *     address or network, any port;
 *   - ADDR:PORT or [ADDR6]:PORT: that address and port;
 *   - NAME or NAME:PORT: any address NAME resolves to, when the URL's
 *     host is NAME (case-insensitive), any port or that one.
 * Public addresses are never refused.  The CLI's own commands never call
 * it: only the server's outbound calls are checked.
 */
#define HTTP_ALLOW_MAX	      32u
#define HTTP_ALLOW_RULE_BYTES 300u
#define HTTP_REFUSED_BYTES    384u
#define HTTP_ADDR_CLASS_COUNT 5u

/* Checks one rule's syntax: 0, or -HTTP_invalid_argument with err. */
int http_allow_rule_check(const char *rule, char *err, size_t err_len);

/* Turns the check on with these rules (copied); 0 or
 * -HTTP_invalid_argument with err saying which rule and why. */
int http_outbound_allow(const char *const *rules, size_t nrules, char *err,
			size_t err_len);

struct sockaddr;

/* The refused class of an address: "loopback", "link_local",
 * "unspecified", "multicast" or "private" (index 0..4 in *index when not
 * NULL), or NULL for a public address.  IPv4-mapped IPv6 addresses are
 * judged as the IPv4 address they carry. */
const char *http_addr_class(const struct sockaddr *sa, unsigned *index);

/* The class names, for metrics labels (i < HTTP_ADDR_CLASS_COUNT). */
const char *http_addr_class_name(unsigned i);

/*
 * Judges one connection to sa (its port included) for a URL whose host
 * is host against rules: 0 when allowed, -HTTP_outbound_refused with
 * why ("HOST (ADDR:PORT) is loopback; no outbound_allow rule covers
 * it") otherwise.  Pure: no resolution, no global state.
 */
int http_allow_judge(const char *const *rules, size_t nrules, const char *host,
		     const struct sockaddr *sa, char *why, size_t why_len);

/* Refusals since start, by class (counts[HTTP_ADDR_CLASS_COUNT]), and
 * the last one's sentence ("" when none). */
void http_outbound_refusals(unsigned long long *counts, char *last,
			    size_t last_len);

/* ---- URLs ------------------------------------------------------------ */

/*
 * "http[s]://HOST[:PORT][/PATH]": HOST a name, a dotted IPv4 address or
 * a bracketed IPv6 address; PORT 1..65535 (default 80 or 443); PATH, when
 * present, a prefix put before every request target (without a trailing
 * '/').  No user info, query or fragment.
 */
struct http_url {
	bool tls;			    /* https */
	char host[HTTP_HOST_BYTES_MAX + 3]; /* "[::1]" keeps its brackets */
	unsigned short port;
	char prefix[HTTP_TARGET_BYTES_MAX]; /* "" or "/api" */
	/* "http[s]://host:port": the port is always written (the Host
	 * header and a DPoP htu use it, so both ends see one URL). */
	char origin[HTTP_HOST_BYTES_MAX + 32];
};

/* Returns 0, -HTTP_bad_url or -HTTP_unsupported_scheme. */
int http_url_parse(const char *text, struct http_url *out);

/* ---- a destination ----------------------------------------------------- */

struct http_options {
	unsigned connect_timeout_ms; /* 0: HTTP_TIMEOUT_MS_DEFAULT */
	unsigned total_timeout_ms;   /* 0: HTTP_TIMEOUT_MS_DEFAULT */
	size_t body_bytes_max;	     /* 0: HTTP_BODY_BYTES_DEFAULT */
	size_t head_bytes_max;	     /* 0: HTTP_HEAD_BYTES_DEFAULT */
	unsigned redirects_max;	     /* 0: none followed (3xx returned) */
	const char *ca_file;	     /* NULL: the system's CAs */
	const char *user_agent;	     /* NULL: none sent */
	/* A client certificate (PEM chain) and its key (PEM) for mutual
	 * TLS: both or neither. */
	const char *cert_file, *key_file;
};

struct http_client;

/*
 * Opens a client for base_url (http_url_parse) with opt (NULL: all
 * defaults; copied, strings included).  No connection is made yet.
 * Returns 0, a URL error, -HTTP_invalid_argument for an unusable option,
 * -HTTP_no_memory or -HTTP_library.
 */
int http_client_open(struct http_client **out, const char *base_url,
		     const struct http_options *opt);

/* Closes the kept connection and frees c (NULL is fine). */
void http_client_close(struct http_client *c);

/* The base URL as parsed; valid while c is open. */
const struct http_url *http_client_url(const struct http_client *c);

struct http_header {
	const char *name;  /* a token */
	const char *value; /* no CR, LF or NUL; may hold a secret */
};

struct http_request {
	const char *method; /* a token: "GET", "POST"... */
	const char *target; /* "/v1/accounts?x=1": after the URL's prefix */
	const struct http_header *headers;
	size_t nheaders;  /* at most HTTP_HEADERS_MAX */
	const void *body; /* sent with Content-Length when has_body */
	size_t body_len;
	bool has_body;		    /* POST, PUT and PATCH send a length */
	const _Atomic bool *cancel; /* may be NULL */
	/* Answer headers to keep (names, matched case-insensitively), at
	 * most HTTP_CAPTURE_MAX: their values land in the response's
	 * captured[i] (the first field of that name in the final answer). */
	const char *const *capture;
	size_t ncapture;
};

/*
 * An answer.  body is malloc'd, NUL-terminated after body_len bytes,
 * owned by the response and freed by http_response_clear (safe on a
 * zeroed or cleared struct); NULL when body_len is 0.  content_type is
 * the header's value (cut at HTTP_CONTENT_TYPE_BYTES_MAX - 1 bytes), ""
 * when absent.  os_errno: after a resolve, connect, send or recv
 * failure, the errno behind it (0 when none is known), for a message.
 * captured[i]: the value of the request's capture[i] header, trimmed and
 * cut at HTTP_CAPTURE_BYTES_MAX - 1 bytes; captured_seen[i] says whether
 * the answer had one.  refused: see below.
 */
struct http_response {
	int status; /* 100..599; the final answer, never an interim 1xx */
	int minor_version;
	char reason[HTTP_REASON_BYTES_MAX];
	char content_type[HTTP_CONTENT_TYPE_BYTES_MAX];
	char *body;
	size_t body_len;
	int os_errno;
	char captured[HTTP_CAPTURE_MAX][HTTP_CAPTURE_BYTES_MAX];
	bool captured_seen[HTTP_CAPTURE_MAX];
	/* After -HTTP_outbound_refused: why, as http_allow_judge says it. */
	char refused[HTTP_REFUSED_BYTES];
};

void http_response_clear(struct http_response *r);

/*
 * Sends one request to c's URL + req->target and reads its answer into
 * *out, which is overwritten (clear an earlier answer first) and cleared
 * by the caller with http_response_clear, also on failure.  Returns 0 for any
 * complete answer, whatever its status, or a negative HTTP code: -HTTP_canceled
 * within HTTP_CANCEL_POLL_MS of *req->cancel turning true.  Nothing is printed.
 */
int http_client_do(struct http_client *c, const struct http_request *req,
		   struct http_response *out);

#endif
