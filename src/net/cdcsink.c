/*
 * cdcsink.c - sink URLs, and the sink calls sent to the broker kind's
 * half (cdcsink_amqp.c, cdcsink_nats.c).  See cdcsink.h.
 */
#include "net/cdcsink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static int bad(char *err, size_t n, const char *part, const char *why)
{
	snprintf(err, n, "%s: %s", part, why);
	return -EINVAL;
}

/* A name of 1..CDC_SINK_NAME_BYTES-1 bytes of [A-Za-z0-9._-] and the
 * extra characters allowed. */
static bool name_ok(const char *s, size_t len, const char *extra)
{
	if (len == 0 || len >= CDC_SINK_NAME_BYTES)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      strchr(extra, c)))
			return false;
	}
	return true;
}

static void copy(char *dst, const char *s, size_t len)
{
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* The query "k=v&k=v": each key once, only the kind's keys. */
static int parse_query(const char *q, struct cdc_sink_url *u, char *err,
		       size_t n)
{
	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		if (!eq)
			return bad(err, n, "query", "expected key=value");
		size_t klen = (size_t)(eq - q), vlen = len - klen - 1;
		const char *v = eq + 1;
		char *dst = NULL;
		const char *extra = ".";
		if (u->kind == CDC_SINK_AMQP && klen == 8 &&
		    !memcmp(q, "exchange", 8)) {
			dst = u->exchange;
		} else if (u->kind == CDC_SINK_AMQP && klen == 5 &&
			   !memcmp(q, "queue", 5)) {
			dst = u->queue;
		} else if (u->kind == CDC_SINK_NATS && klen == 6 &&
			   !memcmp(q, "stream", 6)) {
			dst = u->stream;
			extra = "";
		} else if (u->kind == CDC_SINK_NATS && klen == 7 &&
			   !memcmp(q, "subject", 7)) {
			dst = u->subject;
		} else {
			snprintf(err, n, "query: unknown key \"%.*s\"",
				 (int)(klen < 40 ? klen : 40), q);
			return -EINVAL;
		}
		char part[16];
		copy(part, q, klen);
		if (dst[0])
			return bad(err, n, part, "given twice");
		if (!name_ok(v, vlen, extra) || v[0] == '.' ||
		    v[vlen - 1] == '.' || memmem(v, vlen, "..", 2))
			return bad(err, n, part,
				   "expected 1-127 of A-Z a-z 0-9 . _ -");
		copy(dst, v, vlen);
		q += len + (q[len] == '&');
	}
	return 0;
}

int cdc_sink_url_parse(const char *url, struct cdc_sink_url *out, char *err,
		       size_t err_bytes)
{
	struct cdc_sink_url u;
	const char *p;

	memset(&u, 0, sizeof(u));
	if (!strncmp(url, "amqp://", 7)) {
		u.kind = CDC_SINK_AMQP;
		p = url + 7;
	} else if (!strncmp(url, "nats://", 7)) {
		u.kind = CDC_SINK_NATS;
		p = url + 7;
	} else {
		return bad(err, err_bytes, "scheme",
			   "expected amqp:// or nats://");
	}
	size_t auth_len = strcspn(p, "@/?");
	if (p[auth_len] == '@') {
		if (memchr(p, ':', auth_len))
			return bad(err, err_bytes, "password",
				   "not in the URL (a command line shows in "
				   "ps): use --password-file or "
				   "TPWALLET_CDC_PASSWORD");
		if (!name_ok(p, auth_len, "."))
			return bad(err, err_bytes, "user",
				   "expected 1-127 of A-Z a-z 0-9 . _ -");
		copy(u.user, p, auth_len);
		p += auth_len + 1;
	}
	size_t hp = strcspn(p, "/?");
	const char *colon = memchr(p, ':', hp);
	if (!colon || colon == p)
		return bad(err, err_bytes, "host", "expected HOST:PORT");
	size_t hlen = (size_t)(colon - p);
	if (!name_ok(p, hlen, "."))
		return bad(err, err_bytes, "host",
			   "expected a name or an IPv4 address");
	copy(u.host, p, hlen);
	unsigned long port = 0;
	size_t plen = hp - hlen - 1;
	if (plen == 0 || plen > 5)
		return bad(err, err_bytes, "port", "expected 1-65535");
	for (size_t i = 0; i < plen; i++) {
		char c = colon[1 + i];
		if (c < '0' || c > '9')
			return bad(err, err_bytes, "port", "expected 1-65535");
		port = port * 10 + (unsigned long)(c - '0');
	}
	if (port == 0 || port > 65535)
		return bad(err, err_bytes, "port", "expected 1-65535");
	u.port = (u16)port;
	p += hp;
	snprintf(u.vhost, sizeof(u.vhost), "/");
	if (*p == '/') {
		size_t vlen = strcspn(p + 1, "?");
		if (u.kind != CDC_SINK_AMQP && vlen > 0)
			return bad(err, err_bytes, "path",
				   "a NATS URL has none");
		if (vlen > 0) {
			if (!name_ok(p + 1, vlen, "/"))
				return bad(err, err_bytes, "vhost",
					   "expected 1-127 of A-Z a-z 0-9 / "
					   ". _ -");
			copy(u.vhost, p + 1, vlen);
		}
		p += 1 + vlen;
	}
	if (*p == '?' && parse_query(p + 1, &u, err, err_bytes) < 0)
		return -EINVAL;
	if (u.kind == CDC_SINK_AMQP && !u.exchange[0])
		return bad(err, err_bytes, "exchange", "missing (?exchange=X)");
	if (u.kind == CDC_SINK_NATS && !u.stream[0])
		return bad(err, err_bytes, "stream", "missing (?stream=S)");
	if (u.kind == CDC_SINK_NATS && !u.subject[0])
		return bad(err, err_bytes, "subject", "missing (&subject=P)");
	*out = u;
	return 0;
}

void cdc_sink_url_format(const struct cdc_sink_url *u, char *out, size_t n)
{
	const char *at = u->user[0] ? "@" : "";

	if (u->kind == CDC_SINK_AMQP)
		snprintf(out, n, "amqp://%s%s%s:%u%s%s?exchange=%s%s%s",
			 u->user, at, u->host, u->port,
			 strcmp(u->vhost, "/") ? "/" : "",
			 strcmp(u->vhost, "/") ? u->vhost : "", u->exchange,
			 u->queue[0] ? "&queue=" : "", u->queue);
	else
		snprintf(out, n, "nats://%s%s%s:%u?stream=%s&subject=%s",
			 u->user, at, u->host, u->port, u->stream, u->subject);
}

int cdc_sink_open(struct cdc_sink **out, const struct cdc_sink_url *u,
		  const char *password, u32 timeout_ms, char *err,
		  size_t err_bytes)
{
	if (u->kind == CDC_SINK_AMQP)
		return cdcsink__amqp_open(out, u, password, timeout_ms, err,
					  err_bytes);
	return cdcsink__nats_open(out, u, password, timeout_ms, err, err_bytes);
}

int cdc_sink_publish(struct cdc_sink *s, const struct cdc_msg *m, u32 n,
		     u32 timeout_ms, char *err, size_t err_bytes)
{
	if (s->kind == CDC_SINK_AMQP)
		return cdcsink__amqp_publish(s, m, n, timeout_ms, err,
					     err_bytes);
	return cdcsink__nats_publish(s, m, n, timeout_ms, err, err_bytes);
}

void cdc_sink_close(struct cdc_sink *s)
{
	if (!s)
		return;
	if (s->kind == CDC_SINK_AMQP)
		cdcsink__amqp_close(s);
	else
		cdcsink__nats_close(s);
}
