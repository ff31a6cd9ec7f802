/*
 * httpc.h - a small blocking HTTP/1.1 client for the client commands
 * (tpwallet call, principal, keys, delegate revoke): one request per
 * connection, the answer read whole into memory.
 *
 * Plain http only: there is no TLS here.  Talk to a server on loopback
 * or on a network you trust, or put a TLS-terminating proxy on loopback
 * in front of a remote one.  An "https://" URL is refused with a message
 * saying so, never downgraded.
 *
 * Every request sends "Connection: close" and a Content-Length (no
 * chunked uploads, no Expect).  The response may be framed by
 * Content-Length, by chunked transfer coding, or by the end of the
 * connection; interim 1xx answers are skipped.  Two deadlines bound the
 * whole exchange: connecting (every address the host resolves to, in
 * turn, under one deadline) and the whole request (connect, send,
 * receive).
 *
 * The response parser is a pure state machine (struct httpc_parser): it
 * is fed bytes as they arrive, in pieces of any size, and never reads a
 * clock or a socket, so it is unit-tested and fuzzed
 * (tests/fuzz/fuzz_httpc.c) on its own.
 *
 * Errors: every function returns 0 (or a documented positive value) or
 * the negative of a code in HTTPC_ERRORS; httpc_err_desc() says what it
 * means in a sentence that never contains request or response bytes.
 *
 * Limits (bytes):
 *   HTTPC_HEAD_BYTES_MAX        status line and headers of one answer
 *   HTTPC_CHUNK_LINE_BYTES_MAX  one chunk-size line (with extensions)
 *   HTTPC_TRAILER_BYTES_MAX     the trailer section of a chunked body
 *   HTTPC_INTERIM_MAX           1xx answers skipped before the final one
 *   HTTPC_BODY_BYTES_DEFAULT    the response body cap (callers may lower
 *                               or raise it, up to HTTPC_BODY_BYTES_MAX)
 *   HTTPC_HOST_BYTES_MAX        a host name or address in a URL
 *   HTTPC_PATH_BYTES_MAX        a URL's path prefix; a request target
 *   HTTPC_HEADERS_MAX           extra request headers
 */
#ifndef TPW_CLI_HTTPC_H
#define TPW_CLI_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPC_HEAD_BYTES_MAX	     (64u * 1024u)
#define HTTPC_CHUNK_LINE_BYTES_MAX   1024u
#define HTTPC_TRAILER_BYTES_MAX	     (64u * 1024u)
#define HTTPC_INTERIM_MAX	     8u
#define HTTPC_BODY_BYTES_DEFAULT     ((size_t)16 << 20)
#define HTTPC_BODY_BYTES_MAX	     ((size_t)256 << 20)
#define HTTPC_HOST_BYTES_MAX	     255u
#define HTTPC_PATH_BYTES_MAX	     4096u
#define HTTPC_HEADERS_MAX	     8u
#define HTTPC_CONTENT_TYPE_BYTES_MAX 128u
#define HTTPC_REASON_BYTES_MAX	     128u
#define HTTPC_TIMEOUT_MS_DEFAULT     10000u
#define HTTPC_TIMEOUT_MS_MAX	     (3600u * 1000u)

#define HTTPC_ERRORS(X)                                                        \
	X(ok, "done")                                                          \
	X(invalid_argument, "invalid request (method, target or header)")      \
	X(bad_url, "not a URL of the form http://HOST[:PORT][/PATH]")          \
	X(https_unsupported,                                                   \
	  "https is not supported: this client speaks plain http only "        \
	  "(use a TLS-terminating proxy on loopback)")                         \
	X(resolve, "the host name does not resolve")                           \
	X(connect, "cannot connect to the server")                             \
	X(connect_timeout, "connecting timed out")                             \
	X(timeout, "the request timed out")                                    \
	X(send, "sending the request failed")                                  \
	X(recv, "receiving the answer failed")                                 \
	X(no_memory, "out of memory")                                          \
	X(truncated, "the connection closed before the answer was complete")   \
	X(bad_status_line, "the answer does not start with an HTTP/1.x "       \
			   "status line")                                      \
	X(bad_header, "a malformed header line in the answer")                 \
	X(head_too_large, "the answer's headers are over the limit")           \
	X(bad_content_length, "a malformed or conflicting Content-Length")     \
	X(bad_transfer_encoding, "a Transfer-Encoding other than chunked")     \
	X(bad_chunk, "a malformed chunk in a chunked answer")                  \
	X(too_many_interim, "too many 1xx interim answers")                    \
	X(body_too_large, "the answer's body is over the size limit")

enum httpc_err {
#define X(name, desc) HTTPC_##name,
	HTTPC_ERRORS(X)
#undef X
		HTTPC_ERR_COUNT
};

/* Stable snake_case name and one-sentence description of 0 or -HTTPC_x;
 * NULL / "unknown error" outside the table. */
const char *httpc_err_name(int ret);
const char *httpc_err_desc(int ret);

/* ---- URLs ------------------------------------------------------------ */

/*
 * "http://HOST[:PORT][/PATH]": HOST is a name, a dotted IPv4 address or
 * a bracketed IPv6 address ("[::1]"); PORT is 1..65535 (default 80);
 * PATH, when present, is a prefix put before every request target
 * (without a trailing '/').  No user info, query or fragment.
 */
struct httpc_url {
	char host[HTTPC_HOST_BYTES_MAX + 1]; /* without brackets */
	bool ipv6_literal;
	unsigned short port;
	char prefix[HTTPC_PATH_BYTES_MAX]; /* "" or "/api" */
	/* The Host header and the authority of a DPoP htu: "host:port",
	 * "[v6]:port".  The port is always written. */
	char authority[HTTPC_HOST_BYTES_MAX + 16];
};

/* Returns 0, -HTTPC_bad_url or -HTTPC_https_unsupported. */
int httpc_url_parse(const char *text, struct httpc_url *out);

/* ---- the response parser ---------------------------------------------- */

/* The parser's state; opaque in use (fields are for httpc.c). */
enum httpc_state {
	HTTPC_ST_HEAD,
	HTTPC_ST_BODY_LENGTH,
	HTTPC_ST_BODY_EOF,
	HTTPC_ST_CHUNK_SIZE,
	HTTPC_ST_CHUNK_DATA,
	HTTPC_ST_CHUNK_DATA_END,
	HTTPC_ST_TRAILER,
	HTTPC_ST_DONE,
	HTTPC_ST_FAILED
};

/*
 * A parsed answer.  body is malloc'd, NUL-terminated after body_len
 * bytes, owned by the response and freed by httpc_response_clear (safe on
 * a zeroed or cleared struct); it is NULL when body_len is 0.
 * content_type is the media type as sent (parameters included), cut at
 * HTTPC_CONTENT_TYPE_BYTES_MAX - 1 bytes; "" when absent.
 */
struct httpc_response {
	int status; /* 100..599; never 1xx but 101 after httpc_do */
	int minor_version;
	char reason[HTTPC_REASON_BYTES_MAX];
	char content_type[HTTPC_CONTENT_TYPE_BYTES_MAX];
	char *body;
	size_t body_len;
};

void httpc_response_clear(struct httpc_response *r);

struct httpc_parser {
	enum httpc_state state;
	int err;	   /* the error once state is HTTPC_ST_FAILED */
	bool head_request; /* the answer to HEAD has no body */
	unsigned interim;  /* 1xx answers skipped */
	size_t body_max;
	char *head; /* HTTPC_HEAD_BYTES_MAX, malloc'd on first use */
	size_t head_len;
	char line[HTTPC_CHUNK_LINE_BYTES_MAX]; /* a chunk-size line */
	size_t line_len;
	size_t trailer_len;
	uint64_t remaining; /* body or chunk bytes still expected */
	size_t body_cap;    /* bytes allocated for resp.body */
	struct httpc_response resp;
};

/*
 * Starts parsing the answer to one request; head_request when the
 * request's method was HEAD.  body_max is 1..HTTPC_BODY_BYTES_MAX (else
 * HTTPC_BODY_BYTES_DEFAULT).  Nothing is allocated yet.
 */
void httpc_parser_init(struct httpc_parser *p, bool head_request,
		       size_t body_max);

/*
 * Feeds the next len bytes of the connection.  Returns 0 when more is
 * needed, 1 when the answer is complete (bytes after it are ignored and
 * *used says how many of data were read), or a negative error, after
 * which the parser only fails.  used may be NULL.
 */
int httpc_parser_feed(struct httpc_parser *p, const char *data, size_t len,
		      size_t *used);

/*
 * The connection ended.  Returns 1 when the answer is complete (an answer
 * framed by the end of the connection is complete now), else
 * -HTTPC_truncated (or the earlier error).
 */
int httpc_parser_eof(struct httpc_parser *p);

/*
 * Moves the complete response to *out (which the caller clears later)
 * and releases the parser.  Only after feed or eof returned 1.
 */
void httpc_parser_take(struct httpc_parser *p, struct httpc_response *out);

/* Releases everything the parser holds (safe after take, and twice). */
void httpc_parser_clear(struct httpc_parser *p);

/* ---- requests ----------------------------------------------------------- */

struct httpc_header {
	const char *name;  /* a token */
	const char *value; /* no CR, LF or NUL; may hold a secret: it is
			    * wiped from the client's buffers after sending */
};

struct httpc_request {
	const struct httpc_url *url;
	const char *method; /* a token: "GET", "POST"... */
	const char *target; /* "/v1/accounts?x=1": after url->prefix */
	const struct httpc_header *headers;
	size_t nheaders;  /* at most HTTPC_HEADERS_MAX */
	const void *body; /* sent with Content-Length when has_body */
	size_t body_len;
	bool has_body;
	unsigned connect_timeout_ms; /* 0: HTTPC_TIMEOUT_MS_DEFAULT */
	unsigned total_timeout_ms;   /* 0: HTTPC_TIMEOUT_MS_DEFAULT */
	size_t body_bytes_max;	     /* 0: HTTPC_BODY_BYTES_DEFAULT */
};

/*
 * Sends one request and reads its answer into *out (cleared by the
 * caller with httpc_response_clear, also on failure).  Returns 0 for any
 * complete answer, whatever its status, or a negative HTTPC code; for
 * resolve, connect, send and recv failures *sys_err (may be NULL) gets
 * the errno or getaddrinfo code behind it (0 when none), for a message.
 * Name resolution is the system resolver's and follows its own
 * timeouts; everything after it is under the two deadlines.  SIGPIPE is
 * avoided per call (MSG_NOSIGNAL); nothing is printed.
 */
int httpc_do(const struct httpc_request *req, struct httpc_response *out,
	     int *sys_err);

#endif
