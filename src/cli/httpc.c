/*
 * httpc.c - the blocking HTTP/1.1 client of httpc.h: URL parsing, the
 * incremental response parser, and one request per connection.
 *
 * The parser is strict where a lenient reading could make two programs
 * see two different answers (the status line, Content-Length, chunk
 * sizes, Transfer-Encoding) and lenient where nothing depends on it
 * (line ends may be bare LF, trailers and chunk extensions are skipped).
 * Memory: the head is held in one HTTPC_HEAD_BYTES_MAX buffer, the body
 * grows geometrically up to the caller's cap; nothing else is allocated.
 */
#include "cli/httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "banned.h"

#define RECV_CHUNK_BYTES (16u * 1024u)

static const char *const err_names[] = {
#define X(name, desc) #name,
	HTTPC_ERRORS(X)
#undef X
};
static const char *const err_descs[] = {
#define X(name, desc) desc,
	HTTPC_ERRORS(X)
#undef X
};

const char *httpc_err_name(int ret)
{
	if (ret > 0 || -ret >= HTTPC_ERR_COUNT)
		return NULL;
	return err_names[-ret];
}

const char *httpc_err_desc(int ret)
{
	if (ret > 0 || -ret >= HTTPC_ERR_COUNT)
		return "unknown error";
	return err_descs[-ret];
}

/* ---- small character classes ------------------------------------------ */

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool ieq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* ---- URLs ------------------------------------------------------------- */

int httpc_url_parse(const char *text, struct httpc_url *out)
{
	const char *p, *host, *host_end, *port_s = NULL, *path;
	size_t host_len;
	unsigned long port = 80;

	memset(out, 0, sizeof(*out));
	if (!text)
		return -HTTPC_bad_url;
	if (strncasecmp(text, "https://", 8) == 0)
		return -HTTPC_https_unsupported;
	if (strncasecmp(text, "http://", 7) != 0)
		return -HTTPC_bad_url;
	p = text + 7;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			return -HTTPC_bad_url;
		p = host_end + 1;
		out->ipv6_literal = true;
		for (const char *c = host; c < host_end; c++)
			if (!(hex_value((unsigned char)*c) >= 0 || *c == ':' ||
			      *c == '.'))
				return -HTTPC_bad_url;
	} else {
		host = p;
		while (*p && *p != ':' && *p != '/')
			p++;
		host_end = p;
		for (const char *c = host; c < host_end; c++)
			if (!((*c >= 'a' && *c <= 'z') ||
			      (*c >= 'A' && *c <= 'Z') || is_digit(*c) ||
			      *c == '-' || *c == '.' || *c == '_'))
				return -HTTPC_bad_url;
	}
	host_len = (size_t)(host_end - host);
	if (host_len == 0 || host_len > HTTPC_HOST_BYTES_MAX)
		return -HTTPC_bad_url;
	if (*p == ':') {
		port_s = ++p;
		port = 0;
		while (is_digit((unsigned char)*p)) {
			port = port * 10 + (unsigned long)(*p - '0');
			if (port > 65535)
				return -HTTPC_bad_url;
			p++;
		}
		if (p == port_s || port == 0)
			return -HTTPC_bad_url;
	}
	if (*p != '\0' && *p != '/')
		return -HTTPC_bad_url;
	path = p;
	size_t path_len = strlen(path);
	while (path_len > 0 && path[path_len - 1] == '/')
		path_len--;
	if (path_len >= sizeof(out->prefix))
		return -HTTPC_bad_url;
	for (size_t i = 0; i < path_len; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '@')
			return -HTTPC_bad_url;
	}
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	out->port = (unsigned short)port;
	memcpy(out->prefix, path, path_len);
	out->prefix[path_len] = '\0';
	snprintf(out->authority, sizeof(out->authority),
		 out->ipv6_literal ? "[%s]:%u" : "%s:%u", out->host,
		 (unsigned)out->port);
	return 0;
}

/* ---- the response parser ---------------------------------------------- */

void httpc_response_clear(struct httpc_response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

void httpc_parser_init(struct httpc_parser *p, bool head_request,
		       size_t body_max)
{
	memset(p, 0, sizeof(*p));
	p->state = HTTPC_ST_HEAD;
	p->head_request = head_request;
	p->body_max = body_max >= 1 && body_max <= HTTPC_BODY_BYTES_MAX
			      ? body_max
			      : HTTPC_BODY_BYTES_DEFAULT;
}

void httpc_parser_clear(struct httpc_parser *p)
{
	free(p->head);
	p->head = NULL;
	httpc_response_clear(&p->resp);
	p->body_cap = 0;
}

static int parser_fail(struct httpc_parser *p, int err)
{
	p->state = HTTPC_ST_FAILED;
	p->err = err;
	return err;
}

/* Room for need more body bytes (and the NUL), within the cap. */
static int body_reserve(struct httpc_parser *p, uint64_t need)
{
	uint64_t want = (uint64_t)p->resp.body_len + need;
	size_t cap;
	char *nb;

	if (want > p->body_max)
		return -HTTPC_body_too_large;
	if (want + 1 <= p->body_cap)
		return 0;
	cap = p->body_cap ? p->body_cap : 4096;
	while (cap < want + 1)
		cap = cap > p->body_max / 2 ? p->body_max + 1 : cap * 2;
	nb = realloc(p->resp.body, cap);
	if (!nb)
		return -HTTPC_no_memory;
	p->resp.body = nb;
	p->body_cap = cap;
	return 0;
}

static int body_append(struct httpc_parser *p, const char *data, size_t n)
{
	int r = body_reserve(p, n);

	if (r < 0)
		return r;
	memcpy(p->resp.body + p->resp.body_len, data, n);
	p->resp.body_len += n;
	p->resp.body[p->resp.body_len] = '\0';
	return 0;
}

static int done(struct httpc_parser *p)
{
	if (p->resp.body_len == 0) {
		free(p->resp.body);
		p->resp.body = NULL;
		p->body_cap = 0;
	}
	p->state = HTTPC_ST_DONE;
	return 1;
}

/* "HTTP/1.x SSS[ reason]" */
static int parse_status_line(struct httpc_parser *p, const char *s, size_t n)
{
	size_t i, k = 0;

	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) ||
	    s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) ||
	    !is_digit(s[11]) || (n > 12 && s[12] != ' '))
		return -HTTPC_bad_status_line;
	p->resp.minor_version = s[7] - '0';
	p->resp.status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + s[11] - '0';
	if (p->resp.status < 100 || p->resp.status > 599)
		return -HTTPC_bad_status_line;
	for (i = 13; i < n && k + 1 < sizeof(p->resp.reason); i++) {
		unsigned char c = (unsigned char)s[i];
		p->resp.reason[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	p->resp.reason[k] = '\0';
	return 0;
}

/* A decimal Content-Length value (or an identical comma-separated
 * repetition of it, RFC 9110 8.6), agreeing with an earlier one. */
static int parse_content_length(const char *v, size_t n, bool *seen,
				uint64_t *out)
{
	size_t i = 0;

	while (i < n) {
		uint64_t x = 0;
		size_t start = i;

		while (i < n && is_digit(v[i])) {
			unsigned d = (unsigned)(v[i] - '0');
			if (x > (UINT64_MAX - d) / 10)
				return -HTTPC_bad_content_length;
			x = x * 10 + d;
			i++;
		}
		if (i == start || (*seen && x != *out))
			return -HTTPC_bad_content_length;
		*seen = true;
		*out = x;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i < n) {
			if (v[i] != ',')
				return -HTTPC_bad_content_length;
			i++;
			while (i < n && (v[i] == ' ' || v[i] == '\t'))
				i++;
			if (i == n)
				return -HTTPC_bad_content_length;
		}
	}
	return 0;
}

/* The head is complete in p->head[0..head_len): status line and fields,
 * then the framing of the body. */
static int parse_head(struct httpc_parser *p)
{
	const char *s = p->head, *end = p->head + p->head_len;
	bool first = true, have_cl = false, chunked = false;
	uint64_t cl = 0;
	int r;

	p->resp.content_type[0] = '\0';
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n;

		if (!nl)
			return -HTTPC_bad_header; /* cannot happen: ends in LF
						   */
		n = (size_t)(nl - s);
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (first) {
			r = parse_status_line(p, s, n);
			if (r < 0)
				return r;
			first = false;
		} else if (n > 0) {
			const char *colon = memchr(s, ':', n);
			const char *v, *ve;
			size_t name_len;

			if (!colon || colon == s)
				return -HTTPC_bad_header;
			name_len = (size_t)(colon - s);
			for (size_t i = 0; i < name_len; i++)
				if (!is_tchar((unsigned char)s[i]))
					return -HTTPC_bad_header;
			v = colon + 1;
			ve = s + n;
			for (const char *c = v; c < ve; c++) {
				unsigned char ch = (unsigned char)*c;
				if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
					return -HTTPC_bad_header;
			}
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (ieq(s, name_len, "content-length")) {
				r = parse_content_length(v, (size_t)(ve - v),
							 &have_cl, &cl);
				if (r < 0)
					return r;
			} else if (ieq(s, name_len, "transfer-encoding")) {
				/* Only "chunked", once: a client that
				 * cannot decode a coding must not guess the
				 * body's end. */
				if (chunked ||
				    !ieq(v, (size_t)(ve - v), "chunked"))
					return -HTTPC_bad_transfer_encoding;
				chunked = true;
			} else if (ieq(s, name_len, "content-type")) {
				size_t k = (size_t)(ve - v);
				if (k >= sizeof(p->resp.content_type))
					k = sizeof(p->resp.content_type) - 1;
				memcpy(p->resp.content_type, v, k);
				p->resp.content_type[k] = '\0';
			}
		}
		s = nl + 1;
	}
	if (first)
		return -HTTPC_bad_status_line;

	/* RFC 9112 section 6.3, in order. */
	if (p->resp.status >= 100 && p->resp.status < 200 &&
	    p->resp.status != 101) {
		if (++p->interim > HTTPC_INTERIM_MAX)
			return -HTTPC_too_many_interim;
		p->head_len = 0;
		p->resp.status = 0;
		p->resp.reason[0] = '\0';
		return 0;
	}
	if (p->head_request || p->resp.status == 101 || p->resp.status == 204 ||
	    p->resp.status == 304)
		return done(p);
	if (chunked) {
		p->state = HTTPC_ST_CHUNK_SIZE;
		p->line_len = 0;
		return 0;
	}
	if (have_cl) {
		if (cl > p->body_max)
			return -HTTPC_body_too_large;
		if (cl == 0)
			return done(p);
		r = body_reserve(p, cl);
		if (r < 0)
			return r;
		p->remaining = cl;
		p->state = HTTPC_ST_BODY_LENGTH;
		return 0;
	}
	p->state = HTTPC_ST_BODY_EOF;
	return 0;
}

/* "HEX[ ; ext...]" without its line end; extensions are skipped. */
static int parse_chunk_size(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && hex_value((unsigned char)s[i]) >= 0) {
		if (v > (UINT64_MAX >> 4))
			return -HTTPC_bad_chunk;
		v = (v << 4) | (uint64_t)hex_value((unsigned char)s[i]);
		i++;
	}
	if (i == 0)
		return -HTTPC_bad_chunk;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < n && s[i] != ';')
		return -HTTPC_bad_chunk;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -HTTPC_bad_chunk;
	}
	*out = v;
	return 0;
}

int httpc_parser_feed(struct httpc_parser *p, const char *data, size_t len,
		      size_t *used)
{
	size_t i = 0;
	int r = 0;

	if (used)
		*used = 0;
	if (p->state == HTTPC_ST_FAILED)
		return p->err;
	while (i < len && p->state != HTTPC_ST_DONE) {
		char c = data[i];

		switch (p->state) {
		case HTTPC_ST_HEAD:
			if (!p->head) {
				p->head = malloc(HTTPC_HEAD_BYTES_MAX);
				if (!p->head)
					return parser_fail(p, -HTTPC_no_memory);
			}
			if (p->head_len == HTTPC_HEAD_BYTES_MAX)
				return parser_fail(p, -HTTPC_head_too_large);
			p->head[p->head_len++] = c;
			i++;
			/* The head ends with an empty line: LF LF or
			 * LF CR LF. */
			if (c == '\n' && ((p->head_len >= 2 &&
					   p->head[p->head_len - 2] == '\n') ||
					  (p->head_len >= 3 &&
					   p->head[p->head_len - 2] == '\r' &&
					   p->head[p->head_len - 3] == '\n'))) {
				r = parse_head(p);
				if (r < 0)
					return parser_fail(p, r);
			}
			break;
		case HTTPC_ST_BODY_LENGTH: {
			size_t n = len - i;
			if (n > p->remaining)
				n = (size_t)p->remaining;
			r = body_append(p, data + i, n);
			if (r < 0)
				return parser_fail(p, r);
			i += n;
			p->remaining -= n;
			if (p->remaining == 0)
				done(p);
			break;
		}
		case HTTPC_ST_BODY_EOF:
			r = body_append(p, data + i, len - i);
			if (r < 0)
				return parser_fail(p, r);
			i = len;
			break;
		case HTTPC_ST_CHUNK_SIZE:
			i++;
			if (c != '\n') {
				if (p->line_len == sizeof(p->line))
					return parser_fail(p, -HTTPC_bad_chunk);
				p->line[p->line_len++] = c;
				break;
			}
			if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
				p->line_len--;
			r = parse_chunk_size(p->line, p->line_len,
					     &p->remaining);
			p->line_len = 0;
			if (r < 0)
				return parser_fail(p, r);
			if (p->remaining == 0) {
				p->state = HTTPC_ST_TRAILER;
				p->trailer_len = 0;
				break;
			}
			r = body_reserve(p, p->remaining);
			if (r < 0)
				return parser_fail(p, r);
			p->state = HTTPC_ST_CHUNK_DATA;
			break;
		case HTTPC_ST_CHUNK_DATA: {
			size_t n = len - i;
			if (n > p->remaining)
				n = (size_t)p->remaining;
			r = body_append(p, data + i, n);
			if (r < 0)
				return parser_fail(p, r);
			i += n;
			p->remaining -= n;
			if (p->remaining == 0) {
				p->state = HTTPC_ST_CHUNK_DATA_END;
				p->line_len = 0;
			}
			break;
		}
		case HTTPC_ST_CHUNK_DATA_END:
			i++;
			if (c == '\r' && p->line_len == 0) {
				p->line_len = 1;
			} else if (c == '\n') {
				p->line_len = 0;
				p->state = HTTPC_ST_CHUNK_SIZE;
			} else {
				return parser_fail(p, -HTTPC_bad_chunk);
			}
			break;
		case HTTPC_ST_TRAILER:
			i++;
			if (++p->trailer_len > HTTPC_TRAILER_BYTES_MAX)
				return parser_fail(p, -HTTPC_bad_chunk);
			/* Trailer fields are skipped; an empty line (a CR
			 * counts as nothing) ends them. */
			if (c == '\n') {
				if (p->line_len == 0)
					done(p);
				p->line_len = 0;
			} else if (c != '\r') {
				p->line_len++;
			}
			break;
		case HTTPC_ST_DONE:
		case HTTPC_ST_FAILED: break;
		}
	}
	if (used)
		*used = i;
	return p->state == HTTPC_ST_DONE ? 1 : 0;
}

int httpc_parser_eof(struct httpc_parser *p)
{
	switch (p->state) {
	case HTTPC_ST_DONE: return 1;
	case HTTPC_ST_FAILED: return p->err;
	case HTTPC_ST_BODY_EOF: return done(p);
	default: return parser_fail(p, -HTTPC_truncated);
	}
}

void httpc_parser_take(struct httpc_parser *p, struct httpc_response *out)
{
	*out = p->resp;
	memset(&p->resp, 0, sizeof(p->resp));
	p->body_cap = 0;
	httpc_parser_clear(p);
}

/* ---- requests ----------------------------------------------------------- */

static void deadline_in(struct timespec *t, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += (time_t)(ms / 1000);
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static int remaining_ms(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

/* 0 when fd is ready for events, -ETIMEDOUT at the deadline. */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = events};
		int ms = remaining_ms(deadline);
		int r;

		if (ms == 0)
			return -ETIMEDOUT;
		r = poll(&pf, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

static int connect_any(const struct httpc_request *req,
		       const struct timespec *deadline, int *fd_out,
		       int *sys_err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char service[8];
	int fd = -1, ret, gai;

	if (req->url->ipv6_literal)
		hints.ai_flags |= AI_NUMERICHOST;
	snprintf(service, sizeof(service), "%u", (unsigned)req->url->port);
	gai = getaddrinfo(req->url->host, service, &hints, &ai);
	if (gai != 0 || !ai) {
		*sys_err = gai;
		return -HTTPC_resolve;
	}
	ret = -HTTPC_connect;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		int e = 0;

		fd = socket(a->ai_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*sys_err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			if (errno != EINPROGRESS) {
				e = errno;
			} else {
				int w = wait_fd(fd, POLLOUT, deadline);
				socklen_t sl = sizeof(e);
				if (w == -ETIMEDOUT) {
					ret = -HTTPC_connect_timeout;
					e = ETIMEDOUT;
				} else if (w < 0) {
					e = -w;
				} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR,
						      &e, &sl) < 0) {
					e = errno;
				}
			}
		}
		if (e != 0) {
			*sys_err = e;
			close(fd);
			fd = -1;
			if (ret == -HTTPC_connect_timeout)
				break; /* the deadline is spent */
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return ret;
	*fd_out = fd;
	*sys_err = 0;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len,
		    const struct timespec *deadline, int *sys_err)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int w = wait_fd(fd, POLLOUT, deadline);
			if (w == -ETIMEDOUT)
				return -HTTPC_timeout;
			if (w < 0) {
				*sys_err = -w;
				return -HTTPC_send;
			}
			continue;
		}
		if (n <= 0) {
			*sys_err = n < 0 ? errno : EPIPE;
			return -HTTPC_send;
		}
		off += (size_t)n;
	}
	return 0;
}

static bool valid_request(const struct httpc_request *req)
{
	size_t n;

	if (!req || !req->url || !req->method || !req->target ||
	    req->nheaders > HTTPC_HEADERS_MAX ||
	    (req->nheaders && !req->headers) ||
	    (req->has_body && req->body_len && !req->body))
		return false;
	n = strlen(req->method);
	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)req->method[i]))
			return false;
	n = strlen(req->target);
	if (n == 0 || n >= HTTPC_PATH_BYTES_MAX || req->target[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)req->target[i];
		if (c <= 0x20 || c >= 0x7f)
			return false;
	}
	for (size_t h = 0; h < req->nheaders; h++) {
		const char *name = req->headers[h].name;
		const char *v = req->headers[h].value;
		if (!name || !v || !name[0])
			return false;
		for (const char *c = name; *c; c++)
			if (!is_tchar((unsigned char)*c))
				return false;
		for (const char *c = v; *c; c++)
			if (*c == '\r' || *c == '\n')
				return false;
	}
	return true;
}

int httpc_do(const struct httpc_request *req, struct httpc_response *out,
	     int *sys_err)
{
	struct httpc_parser p;
	struct timespec total, conn;
	unsigned conn_ms, total_ms;
	char *head = NULL, *buf = NULL;
	size_t head_cap = 0, head_len = 0;
	int fd = -1, ret, ignored = 0, k;
	bool head_request, send_length;

	if (!sys_err)
		sys_err = &ignored;
	*sys_err = 0;
	memset(out, 0, sizeof(*out));
	if (!valid_request(req))
		return -HTTPC_invalid_argument;
	head_request = strcmp(req->method, "HEAD") == 0;
	httpc_parser_init(&p, head_request, req->body_bytes_max);
	conn_ms = req->connect_timeout_ms ? req->connect_timeout_ms
					  : HTTPC_TIMEOUT_MS_DEFAULT;
	total_ms = req->total_timeout_ms ? req->total_timeout_ms
					 : HTTPC_TIMEOUT_MS_DEFAULT;
	if (conn_ms > HTTPC_TIMEOUT_MS_MAX)
		conn_ms = HTTPC_TIMEOUT_MS_MAX;
	if (total_ms > HTTPC_TIMEOUT_MS_MAX)
		total_ms = HTTPC_TIMEOUT_MS_MAX;
	if (conn_ms > total_ms)
		conn_ms = total_ms;
	deadline_in(&total, total_ms);
	deadline_in(&conn, conn_ms);

	/* The head: fixed lines, the caller's headers, the length. */
	head_cap = 512 + strlen(req->url->prefix) + strlen(req->target) +
		   strlen(req->url->authority);
	for (size_t h = 0; h < req->nheaders; h++)
		head_cap += strlen(req->headers[h].name) +
			    strlen(req->headers[h].value) + 4;
	head = malloc(head_cap);
	buf = malloc(RECV_CHUNK_BYTES);
	if (!head || !buf) {
		ret = -HTTPC_no_memory;
		goto cleanup;
	}
	k = snprintf(head, head_cap,
		     "%s %s%s HTTP/1.1\r\nHost: %s\r\n"
		     "User-Agent: tpwallet-cli\r\nAccept: */*\r\n"
		     "Connection: close\r\n",
		     req->method, req->url->prefix, req->target,
		     req->url->authority);
	head_len = (size_t)k;
	for (size_t h = 0; h < req->nheaders; h++) {
		k = snprintf(head + head_len, head_cap - head_len, "%s: %s\r\n",
			     req->headers[h].name, req->headers[h].value);
		head_len += (size_t)k;
	}
	/* A POST without a body still says so (RFC 9110 8.6). */
	send_length = req->has_body || strcmp(req->method, "POST") == 0 ||
		      strcmp(req->method, "PUT") == 0 ||
		      strcmp(req->method, "PATCH") == 0;
	if (send_length) {
		k = snprintf(head + head_len, head_cap - head_len,
			     "Content-Length: %zu\r\n",
			     req->has_body ? req->body_len : 0);
		head_len += (size_t)k;
	}
	k = snprintf(head + head_len, head_cap - head_len, "\r\n");
	head_len += (size_t)k;

	ret = connect_any(req, &conn, &fd, sys_err);
	if (ret < 0)
		goto cleanup;
	ret = send_all(fd, head, head_len, &total, sys_err);
	if (ret == 0 && req->has_body && req->body_len)
		ret = send_all(fd, req->body, req->body_len, &total, sys_err);
	if (ret < 0)
		goto cleanup;

	for (;;) {
		ssize_t n = recv(fd, buf, RECV_CHUNK_BYTES, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int w = wait_fd(fd, POLLIN, &total);
			if (w == -ETIMEDOUT) {
				ret = -HTTPC_timeout;
				goto cleanup;
			}
			if (w < 0) {
				*sys_err = -w;
				ret = -HTTPC_recv;
				goto cleanup;
			}
			continue;
		}
		if (n < 0) {
			*sys_err = errno;
			ret = -HTTPC_recv;
			goto cleanup;
		}
		ret = n == 0 ? httpc_parser_eof(&p)
			     : httpc_parser_feed(&p, buf, (size_t)n, NULL);
		if (ret < 0)
			goto cleanup;
		if (ret == 1)
			break;
		if (remaining_ms(&total) == 0) {
			ret = -HTTPC_timeout;
			goto cleanup;
		}
	}
	httpc_parser_take(&p, out);
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (head) {
		/* the head carries the credentials */
		sodium_memzero(head, head_cap);
		free(head);
	}
	free(buf);
	httpc_parser_clear(&p);
	return ret;
}
