/*
 * http.c - the outbound HTTP client over libcurl (http.h).  Each request
 * runs on the destination's easy handle inside its own multi handle, so
 * the connection cache (keep-alive) lives as long as the client, and the
 * wait is cut into HTTP_CANCEL_POLL_MS slices in which the cancel flag
 * is looked at; libcurl itself enforces the two deadlines and the
 * Content-Length cap, the callbacks here the body and header caps.
 */
#include "net/http.h"
#include "core/clock.h"
#include "net/http_internal.h"

#include <curl/curl.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "banned.h"

struct http_client {
	struct http_url url;
	struct http_options opt; /* defaults filled in; strings below */
	char *ca_file, *cert_file, *key_file;
	char *user_agent;
	char *pin; /* CURLOPT_PINNEDPUBLICKEY, or NULL */
	CURL *easy;
	CURLM *multi;
};

/* What the callbacks of one request share. */
struct xfer {
	struct http_response *out;
	const struct http_request *req;
	size_t body_cap; /* bytes allocated for out->body */
	size_t body_max;
	size_t head_max;
	size_t head_bytes; /* of the current answer (an interim one resets) */
	bool status_seen;
	bool connected; /* a connection carried the request */
	CURL *easy;
	char refused[HTTP_REFUSED_BYTES]; /* the allow-list said no: why */
	bool body_over;
	bool head_over;
	bool no_memory;
};

static const char *const err_names[] = {
#define X(name, desc) #name,
	HTTP_ERRORS(X)
#undef X
};
static const char *const err_descs[] = {
#define X(name, desc) desc,
	HTTP_ERRORS(X)
#undef X
};

const char *http_err_name(int ret)
{
	int k = -ret;
	return k >= 0 && k < HTTP_ERR_COUNT ? err_names[k] : NULL;
}

const char *http_err_desc(int ret)
{
	int k = -ret;
	return k >= 0 && k < HTTP_ERR_COUNT ? err_descs[k] : "unknown error";
}

int http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK
		       ? 0
		       : -HTTP_library;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

/* ---- URLs ------------------------------------------------------------ */

/* One part of u into buf; false when it is absent or too long. */
static bool url_part(CURLU *u, CURLUPart what, unsigned flags, char *buf,
		     size_t cap)
{
	char *v = NULL;
	bool ok = curl_url_get(u, what, &v, flags) == CURLUE_OK &&
		  strlen(v) < cap;
	if (ok)
		memcpy(buf, v, strlen(v) + 1);
	curl_free(v);
	return ok;
}

static bool url_has(CURLU *u, CURLUPart what)
{
	char *v = NULL;
	bool has = curl_url_get(u, what, &v, 0) == CURLUE_OK;
	curl_free(v);
	return has;
}

int http_url_parse(const char *text, struct http_url *out)
{
	char scheme[8], port[8];
	CURLU *u = NULL;
	int ret = -HTTP_bad_url;

	memset(out, 0, sizeof(*out));
	if (!text || strlen(text) > HTTP_URL_BYTES_MAX)
		return -HTTP_bad_url;
	/* The scheme first, so "ftp://..." says what is wrong with it. */
	const char *sep = strstr(text, "://");
	if (!sep)
		return -HTTP_bad_url;
	if (!((sep - text == 4 && strncasecmp(text, "http", 4) == 0) ||
	      (sep - text == 5 && strncasecmp(text, "https", 5) == 0)))
		return -HTTP_unsupported_scheme;
	u = curl_url();
	if (!u)
		return -HTTP_no_memory;
	if (curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK ||
	    !url_part(u, CURLUPART_SCHEME, 0, scheme, sizeof(scheme)) ||
	    !url_part(u, CURLUPART_HOST, 0, out->host, sizeof(out->host)) ||
	    !url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, port,
		      sizeof(port)) ||
	    !url_part(u, CURLUPART_PATH, 0, out->prefix, sizeof(out->prefix)))
		goto cleanup;
	if (url_has(u, CURLUPART_USER) || url_has(u, CURLUPART_PASSWORD) ||
	    url_has(u, CURLUPART_OPTIONS) || url_has(u, CURLUPART_QUERY) ||
	    url_has(u, CURLUPART_FRAGMENT) || out->host[0] == '\0')
		goto cleanup;
	long p = strtol(port, NULL, 10);
	if (p < 1 || p > 65535)
		goto cleanup;
	out->port = (unsigned short)p;
	out->tls = strcmp(scheme, "https") == 0;
	size_t plen = strlen(out->prefix);
	while (plen > 0 && out->prefix[plen - 1] == '/')
		out->prefix[--plen] = '\0';
	snprintf(out->origin, sizeof(out->origin), "%s://%s:%u",
		 out->tls ? "https" : "http", out->host, (unsigned)out->port);
	ret = 0;
cleanup:
	curl_url_cleanup(u);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* ---- the process's outbound policy ------------------------------------ */

/* "sha256//" and 44 base64 characters (32 bytes, one '=' of padding). */
#define PIN_KEY_BYTES (8u + 44u)

struct pin_entry {
	char host[HTTP_HOST_BYTES_MAX + 3];
	unsigned short port;
	char keys[HTTP_PIN_KEYS_MAX * (PIN_KEY_BYTES + 1)];
};

/* Written by http_outbound_set before any thread; read only after. */
static struct {
	char ca_file[4096];
	size_t npins;
	struct pin_entry pins[HTTP_PINS_MAX];
} outbound;

static bool pin_key_valid(const char *k, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	if (len != PIN_KEY_BYTES || strncmp(k, "sha256//", 8) != 0 ||
	    k[len - 1] != '=')
		return false;
	for (size_t i = 8; i < len - 1; i++)
		if (!memchr(b64, k[i], sizeof(b64) - 1))
			return false;
	/* The last character before '=' carries 2 bits: 4 zero bits. */
	return strchr("AEIMQUYcgkosw048", k[len - 2]) != NULL;
}

static int pin_parse(const char *spec, struct pin_entry *out, char *err,
		     size_t err_len)
{
	const char *sp = strchr(spec, ' ');
	char url[HTTP_URL_BYTES_MAX];
	struct http_url u;

	memset(out, 0, sizeof(*out));
	if (!sp || (size_t)(sp - spec) >= sizeof(url)) {
		snprintf(err, err_len,
			 "outbound_pin: want \"https://HOST[:PORT] "
			 "sha256//BASE64[;sha256//BASE64]\"");
		return -HTTP_invalid_argument;
	}
	memcpy(url, spec, (size_t)(sp - spec));
	url[sp - spec] = '\0';
	if (http_url_parse(url, &u) != 0 || !u.tls || u.prefix[0]) {
		snprintf(err, err_len,
			 "outbound_pin: \"%.200s\" is not https://HOST[:PORT] "
			 "(no path)",
			 url);
		return -HTTP_invalid_argument;
	}
	snprintf(out->host, sizeof(out->host), "%s", u.host);
	out->port = u.port;
	const char *k = sp + 1;
	size_t nkeys = 0;
	for (;;) {
		size_t len = strcspn(k, ";");
		if (nkeys == HTTP_PIN_KEYS_MAX || !pin_key_valid(k, len)) {
			snprintf(err, err_len, "outbound_pin for %s: %s",
				 u.origin,
				 nkeys == HTTP_PIN_KEYS_MAX
					 ? "more than 4 keys"
					 : "a key is not sha256// and the "
					   "base64 of 32 bytes");
			return -HTTP_invalid_argument;
		}
		nkeys++;
		if (k[len] == '\0')
			break;
		k += len + 1;
	}
	snprintf(out->keys, sizeof(out->keys), "%s", sp + 1);
	return 0;
}

int http_outbound_set(const char *ca_file, const char *const *pins,
		      size_t npins, char *err, size_t err_len)
{
	memset(&outbound, 0, sizeof(outbound));
	if (ca_file && strlen(ca_file) >= sizeof(outbound.ca_file)) {
		snprintf(err, err_len, "outbound_ca_file: path too long");
		return -HTTP_invalid_argument;
	}
	if (npins > HTTP_PINS_MAX) {
		snprintf(err, err_len, "outbound_pin: more than %u",
			 HTTP_PINS_MAX);
		return -HTTP_invalid_argument;
	}
	for (size_t i = 0; i < npins; i++) {
		int ret = pin_parse(pins[i], &outbound.pins[i], err, err_len);
		if (ret < 0) {
			memset(&outbound, 0, sizeof(outbound));
			return ret;
		}
	}
	outbound.npins = npins;
	if (ca_file)
		snprintf(outbound.ca_file, sizeof(outbound.ca_file), "%s",
			 ca_file);
	return 0;
}

static const struct pin_entry *pin_for(const struct http_url *u)
{
	for (size_t i = 0; i < outbound.npins; i++)
		if (outbound.pins[i].port == u->port &&
		    strcasecmp(outbound.pins[i].host, u->host) == 0)
			return &outbound.pins[i];
	return NULL;
}

int http_outbound_check(const char *url)
{
	struct http_url u;
	int ret = http_url_parse(url, &u);
	if (ret < 0)
		return ret;
	return pin_for(&u) && !u.tls ? -HTTP_pin_needs_https : 0;
}

/* ---- a destination ----------------------------------------------------- */

int http_client_open(struct http_client **out, const char *base_url,
		     const struct http_options *opt)
{
	struct http_client *c;
	int ret;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -HTTP_no_memory;
	ret = http_url_parse(base_url, &c->url);
	if (ret < 0)
		goto fail;
	if (opt)
		c->opt = *opt;
	ret = -HTTP_invalid_argument;
	if (c->opt.body_bytes_max > HTTP_BODY_BYTES_MAX ||
	    c->opt.connect_timeout_ms > HTTP_TIMEOUT_MS_MAX ||
	    c->opt.total_timeout_ms > HTTP_TIMEOUT_MS_MAX ||
	    c->opt.redirects_max > HTTP_REDIRECTS_MAX ||
	    !c->opt.cert_file != !c->opt.key_file ||
	    (c->opt.user_agent &&
	     (strlen(c->opt.user_agent) > HTTP_USER_AGENT_BYTES_MAX ||
	      strpbrk(c->opt.user_agent, "\r\n"))))
		goto fail;
	if (!c->opt.connect_timeout_ms)
		c->opt.connect_timeout_ms = HTTP_TIMEOUT_MS_DEFAULT;
	if (!c->opt.total_timeout_ms)
		c->opt.total_timeout_ms = HTTP_TIMEOUT_MS_DEFAULT;
	if (c->opt.connect_timeout_ms > c->opt.total_timeout_ms)
		c->opt.connect_timeout_ms = c->opt.total_timeout_ms;
	if (!c->opt.body_bytes_max)
		c->opt.body_bytes_max = HTTP_BODY_BYTES_DEFAULT;
	if (!c->opt.head_bytes_max)
		c->opt.head_bytes_max = HTTP_HEAD_BYTES_DEFAULT;
	const struct pin_entry *pin = pin_for(&c->url);
	if (pin && !c->url.tls) {
		ret = -HTTP_pin_needs_https;
		goto fail;
	}
	if (!c->opt.ca_file && outbound.ca_file[0])
		c->opt.ca_file = outbound.ca_file;
	ret = -HTTP_no_memory;
	if (pin && !(c->pin = strdup(pin->keys)))
		goto fail;
	if (c->opt.ca_file && !(c->ca_file = strdup(c->opt.ca_file)))
		goto fail;
	if (c->opt.user_agent && !(c->user_agent = strdup(c->opt.user_agent)))
		goto fail;
	if (c->opt.cert_file && !(c->cert_file = strdup(c->opt.cert_file)))
		goto fail;
	if (c->opt.key_file && !(c->key_file = strdup(c->opt.key_file)))
		goto fail;
	c->opt.cert_file = c->cert_file;
	c->opt.key_file = c->key_file;
	c->opt.ca_file = c->ca_file;
	c->opt.user_agent = c->user_agent;
	ret = -HTTP_library;
	c->easy = curl_easy_init();
	c->multi = curl_multi_init();
	if (!c->easy || !c->multi)
		goto fail;
	*out = c;
	return 0;
fail:
	http_client_close(c);
	return ret;
}

void http_client_close(struct http_client *c)
{
	if (!c)
		return;
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->user_agent);
	free(c->pin);
	free(c);
}

const struct http_url *http_client_url(const struct http_client *c)
{
	return &c->url;
}

void http_response_clear(struct http_response *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---- one request --------------------------------------------------------- */

/* "Name: value\r\n" into dst (trimmed, cut to cap - 1 bytes). */
static void copy_value(char *dst, size_t cap, const char *v, size_t vl)
{
	while (vl > 0 && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
			  v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (vl >= cap)
		vl = cap - 1;
	memcpy(dst, v, vl);
	dst[vl] = '\0';
}

/* The captured headers of the request, from one header line. */
static void capture_line(struct xfer *x, const char *line, size_t len)
{
	for (size_t i = 0; i < x->req->ncapture; i++) {
		size_t nl = strlen(x->req->capture[i]);
		if (x->out->captured_seen[i] || len <= nl || line[nl] != ':' ||
		    strncasecmp(line, x->req->capture[i], nl) != 0)
			continue;
		copy_value(x->out->captured[i], sizeof(x->out->captured[i]),
			   line + nl + 1, len - nl - 1);
		x->out->captured_seen[i] = true;
	}
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new answer (after an interim 1xx or a redirect). */
		x->head_bytes = 0;
		x->status_seen = true;
		x->out->content_type[0] = '\0';
		x->out->reason[0] = '\0';
		memset(x->out->captured, 0, sizeof(x->out->captured));
		memset(x->out->captured_seen, 0, sizeof(x->out->captured_seen));
		const char *sp = memchr(line, ' ', len);
		if (sp && (size_t)(line + len - sp) > 5 && sp[4] == ' ') {
			const char *r = sp + 5;
			size_t rl = 0, left = (size_t)(line + len - r);
			/* The line is not NUL-terminated: stop at its end. */
			while (rl < left && r[rl] != '\r' && r[rl] != '\n')
				rl++;
			if (rl >= sizeof(x->out->reason))
				rl = sizeof(x->out->reason) - 1;
			memcpy(x->out->reason, r, rl);
			x->out->reason[rl] = '\0';
		}
	}
	x->head_bytes += len;
	if (x->head_bytes > x->head_max) {
		x->head_over = true;
		return 0;
	}
	if (len > 13 && strncasecmp(line, "content-type:", 13) == 0)
		copy_value(x->out->content_type, sizeof(x->out->content_type),
			   line + 13, len - 13);
	capture_line(x, line, len);
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct http_response *r = x->out;
	size_t len = size * n;

	if (len > x->body_max - r->body_len) {
		x->body_over = true;
		return 0;
	}
	if (r->body_len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		while (cap < r->body_len + len + 1)
			cap *= 2;
		if (cap > x->body_max + 1)
			cap = x->body_max + 1;
		char *nb = realloc(r->body, cap);
		if (!nb) {
			x->no_memory = true;
			return 0;
		}
		r->body = nb;
		x->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return len;
}

/* Called once a connection (new or kept) is about to carry the request. */
static int on_connected(void *arg, char *primary_ip, char *local_ip,
			int primary_port, int local_port)
{
	struct xfer *x = arg;
	(void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
	x->connected = true;
	return CURL_PREREQFUNC_OK;
}

/* Every socket libcurl opens for a connection (the first one and any
 * redirect's, each address tried): the allow-list judges the address
 * about to be connected to (http_allow.c) before the socket exists. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose,
				    struct curl_sockaddr *a)
{
	struct xfer *x = arg;
	if (purpose == CURLSOCKTYPE_IPCXN) {
		char host[HTTP_HOST_BYTES_MAX + 3] = "";
		char *url = NULL;
		CURLU *u = curl_url();
		if (u &&
		    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url) ==
			    CURLE_OK &&
		    url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
			(void)url_part(u, CURLUPART_HOST, 0, host,
				       sizeof(host));
		curl_url_cleanup(u);
		if (http__allow_connect(host, &a->addr, x->refused,
					sizeof(x->refused)) < 0)
			return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

static bool valid_request(const struct http_request *req)
{
	if (!req || !req->method || !req->target ||
	    req->nheaders > HTTP_HEADERS_MAX ||
	    (req->nheaders && !req->headers) ||
	    (req->has_body && req->body_len && !req->body) ||
	    !is_token(req->method, 16))
		return false;
	size_t n = strlen(req->target);
	if (n == 0 || n >= HTTP_TARGET_BYTES_MAX || req->target[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)req->target[i];
		if (ch <= 0x20 || ch >= 0x7f)
			return false;
	}
	for (size_t h = 0; h < req->nheaders; h++) {
		const char *name = req->headers[h].name;
		const char *v = req->headers[h].value;
		if (!name || !v || !is_token(name, 64) || strpbrk(v, "\r\n"))
			return false;
	}
	if (req->ncapture > HTTP_CAPTURE_MAX ||
	    (req->ncapture && !req->capture))
		return false;
	for (size_t i = 0; i < req->ncapture; i++)
		if (!req->capture[i] || !is_token(req->capture[i], 64))
			return false;
	return true;
}

/* "Name: value" appended to *list; false when out of memory. */
static bool add_header(struct curl_slist **list, const char *name,
		       const char *value)
{
	size_t cap = strlen(name) + strlen(value) + 3;
	char *line = malloc(cap);
	struct curl_slist *l = NULL;

	if (!line)
		return false;
	snprintf(line, cap, "%s: %s", name, value);
	/* "Name:" with nothing after removes a header libcurl would add. */
	if (value[0] == '\0')
		line[strlen(name) + 1] = '\0';
	l = curl_slist_append(*list, line);
	explicit_bzero(line, cap);
	free(line);
	if (!l)
		return false;
	*list = l;
	return true;
}

/* Frees a header list after wiping it: it may hold credentials. */
static void wipe_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static bool has_header(const struct http_request *req, const char *name)
{
	for (size_t h = 0; h < req->nheaders; h++)
		if (strcasecmp(req->headers[h].name, name) == 0)
			return true;
	return false;
}

/* POST, PUT and PATCH say Content-Length even without a body (RFC 9110
 * 8.6), as does any request with one. */
static bool sends_length(const struct http_request *req)
{
	return req->has_body || strcmp(req->method, "POST") == 0 ||
	       strcmp(req->method, "PUT") == 0 ||
	       strcmp(req->method, "PATCH") == 0;
}

static struct curl_slist *request_headers(const struct http_client *c,
					  const struct http_request *req)
{
	struct curl_slist *list = NULL;
	char host[sizeof(c->url.host) + 8];
	bool ok;

	/* Host with its port, always: a DPoP htu names it the same way. */
	snprintf(host, sizeof(host), "%s:%u", c->url.host,
		 (unsigned)c->url.port);
	ok = add_header(&list, "Host", host);
	for (size_t h = 0; ok && h < req->nheaders; h++)
		ok = add_header(&list, req->headers[h].name,
				req->headers[h].value);
	/* Nothing libcurl would add on its own: no Expect: 100-continue,
	 * no form Content-Type on a body. */
	if (ok)
		ok = add_header(&list, "Expect", "");
	if (ok && sends_length(req) && !has_header(req, "Content-Type"))
		ok = add_header(&list, "Content-Type", "");
	if (!ok) {
		wipe_headers(list);
		return NULL;
	}
	return list;
}

static int map_result(CURLcode rc, const struct xfer *x)
{
	switch (rc) {
	case CURLE_OK: return 0;
	case CURLE_URL_MALFORMAT: return -HTTP_bad_url;
	case CURLE_UNSUPPORTED_PROTOCOL:
		/* A redirect elsewhere, or an answer that is not HTTP/1.x. */
		return x->status_seen ? -HTTP_unsupported_scheme
				      : -HTTP_protocol;
	case CURLE_COULDNT_RESOLVE_HOST: return -HTTP_resolve;
	case CURLE_COULDNT_CONNECT:
		return x->refused[0] ? -HTTP_outbound_refused : -HTTP_connect;
	case CURLE_OPERATION_TIMEDOUT:
		return x->connected ? -HTTP_timeout : -HTTP_connect_timeout;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED: return -HTTP_tls;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return -HTTP_pinned_key;
	case CURLE_SEND_ERROR: return -HTTP_send;
	case CURLE_RECV_ERROR: return -HTTP_recv;
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: return -HTTP_truncated;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2: return -HTTP_protocol;
	case CURLE_FILESIZE_EXCEEDED: return -HTTP_body_too_large;
	case CURLE_TOO_MANY_REDIRECTS: return -HTTP_too_many_redirects;
	case CURLE_OUT_OF_MEMORY: return -HTTP_no_memory;
	case CURLE_WRITE_ERROR:
		if (x->body_over)
			return -HTTP_body_too_large;
		if (x->head_over)
			return -HTTP_head_too_large;
		return x->no_memory ? -HTTP_no_memory : -HTTP_library;
	default: return -HTTP_library;
	}
}

static int set_options(struct http_client *c, const struct http_request *req,
		       const char *url, struct curl_slist *headers,
		       struct xfer *x)
{
	CURL *e = c->easy;
	CURLcode rc = CURLE_OK;
	bool head = strcmp(req->method, "HEAD") == 0;

	/* Options last for one request: start from libcurl's defaults
	 * (the connection cache and the DNS cache stay). */
	curl_easy_reset(e);
#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(e, opt, val);                    \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, c->opt.redirects_max > 0 ? 1L : 0L);
	SET(CURLOPT_MAXREDIRS, (long)c->opt.redirects_max);
	SET(CURLOPT_VERBOSE, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROGRESS, 1L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->opt.connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)c->opt.total_timeout_ms);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opt.body_bytes_max);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->opt.ca_file)
		SET(CURLOPT_CAINFO, c->opt.ca_file);
	if (c->pin)
		SET(CURLOPT_PINNEDPUBLICKEY, c->pin);
	if (c->opt.cert_file) {
		SET(CURLOPT_SSLCERT, c->opt.cert_file);
		SET(CURLOPT_SSLKEY, c->opt.key_file);
	}
	if (c->opt.user_agent)
		SET(CURLOPT_USERAGENT, c->opt.user_agent);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_PREREQFUNCTION, on_connected);
	SET(CURLOPT_PREREQDATA, x);
	SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	SET(CURLOPT_OPENSOCKETDATA, x);
	if (head) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (sends_length(req)) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(req->has_body ? req->body_len : 0));
		SET(CURLOPT_POSTFIELDS,
		    req->has_body && req->body_len ? req->body : "");
		if (strcmp(req->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, req->method);
	} else {
		SET(CURLOPT_HTTPGET, 1L);
		if (strcmp(req->method, "GET") != 0)
			SET(CURLOPT_CUSTOMREQUEST, req->method);
	}
#undef SET
	return rc == CURLE_OK ? 0 : -HTTP_library;
}

/* Drives the transfer to its end (or the cancel flag), in slices. */
static int run(struct http_client *c, const _Atomic bool *cancel,
	       CURLcode *result)
{
	/* libcurl stops at the total deadline; this bound is a backstop. */
	uint64_t give_up = tpw_monotonic_ms() + c->opt.total_timeout_ms + 1000u;
	int running = 1, ret = 0;

	*result = CURLE_OK;
	if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK)
		return -HTTP_library;
	while (running) {
		if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
			ret = -HTTP_library;
			break;
		}
		if (!running)
			break;
		if (cancel && atomic_load(cancel)) {
			ret = -HTTP_canceled;
			break;
		}
		if (tpw_monotonic_ms() > give_up) {
			ret = -HTTP_timeout;
			break;
		}
		if (curl_multi_poll(c->multi, NULL, 0, HTTP_CANCEL_POLL_MS,
				    NULL) != CURLM_OK) {
			ret = -HTTP_library;
			break;
		}
	}
	if (ret == 0) {
		int left = 0;
		CURLMsg *m = curl_multi_info_read(c->multi, &left);
		if (m && m->msg == CURLMSG_DONE)
			*result = m->data.result;
		else
			ret = -HTTP_library;
	}
	/* A transfer cut short takes its connection with it. */
	curl_multi_remove_handle(c->multi, c->easy);
	return ret;
}

int http_client_do(struct http_client *c, const struct http_request *req,
		   struct http_response *out)
{
	struct xfer x = {.out = out, .req = req, .easy = c ? c->easy : NULL};
	struct curl_slist *headers = NULL;
	char *url = NULL;
	size_t url_cap;
	CURLcode rc = CURLE_OK;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!c || !valid_request(req))
		return -HTTP_invalid_argument;
	x.body_max = c->opt.body_bytes_max;
	x.head_max = c->opt.head_bytes_max;
	url_cap = strlen(c->url.origin) + strlen(c->url.prefix) +
		  strlen(req->target) + 1;
	url = malloc(url_cap);
	headers = request_headers(c, req);
	if (!url || !headers) {
		ret = -HTTP_no_memory;
		goto cleanup;
	}
	snprintf(url, url_cap, "%s%s%s", c->url.origin, c->url.prefix,
		 req->target);
	ret = set_options(c, req, url, headers, &x);
	if (ret == 0)
		ret = run(c, req->cancel, &rc);
	if (ret == 0)
		ret = map_result(rc, &x);
	if (ret == 0) {
		long status = 0, version = 0;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c->easy, CURLINFO_HTTP_VERSION, &version);
		out->status = (int)status;
		out->minor_version = version == CURL_HTTP_VERSION_1_0 ? 0 : 1;
		if (status < 100 || status > 599)
			ret = -HTTP_protocol;
	} else {
		long os = 0;
		curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &os);
		out->os_errno = (int)os;
	}
cleanup:
	/* Nothing of this request's options may outlive it. */
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
	wipe_headers(headers);
	free(url);
	if (ret < 0) {
		int os = out->os_errno;
		http_response_clear(out);
		if (ret == -HTTP_resolve || ret == -HTTP_connect ||
		    ret == -HTTP_send || ret == -HTTP_recv)
			out->os_errno = os;
		if (ret == -HTTP_outbound_refused)
			memcpy(out->refused, x.refused, sizeof(out->refused));
	}
	return ret;
}
