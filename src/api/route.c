/*
 * route.c - routes, request ids and trace context from the request line
 * and headers (route.h).
 */
#include "api/route.h"
#include "api/codec.h"
#include "api/routes.h"
#include "core/parse.h"
#include "core/u128.h"
#include "engine/trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

const struct api_route_info api_routes[ROUTE_COUNT] = {
#define X(name, tmpl, param, methods, body, rd, wr, scope, flags, handler)     \
	[ROUTE_##name] = {tmpl, rd, wr, param, methods, body, scope, flags},
	API_ROUTES(X)
#undef X
};

const char *api_method_name(enum api_method m)
{
	static const char *const names[METHOD_COUNT] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "other"};
	return m < METHOD_COUNT ? names[m] : "other";
}

const char *api_route_allow(enum api_route r, char buf[API_ALLOW_BYTES_MAX])
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned m = 0; m < METHOD_OTHER; m++) {
		if (!(api_routes[r].methods & (1u << m)))
			continue;
		n += (size_t)snprintf(buf + n, API_ALLOW_BYTES_MAX - n, "%s%s",
				      n ? ", " : "", api_method_name(m));
	}
	return buf;
}

/*
 * The table, indexed for matching (built once, before main): templates
 * without a {...} by their length, so that a URL is compared with the
 * one or two of its length; the others by the literal prefix before
 * their {...} and the suffix after it.  No URL has the shape of two
 * templates (test_api_route checks each template finds its own row), so
 * the order of the look-ups does not matter.
 */
#define LITERAL_BYTES_MAX 64
#define SAME_LENGTH_MAX	  8
static u8 literal_by_len[LITERAL_BYTES_MAX][SAME_LENGTH_MAX];
static u8 literal_count[LITERAL_BYTES_MAX];
static struct {
	u8 route;
	u8 prefix_len;
	const char *suffix; /* after the '}' */
} with_param[ROUTE_COUNT];
static unsigned with_param_count;

__attribute__((constructor)) static void route_index(void)
{
	for (unsigned r = 0; r < ROUTE_unmatched; r++) {
		const char *t = api_routes[r].tmpl;
		const char *open = strchr(t, '{');
		size_t n = strlen(t);
		if (!open && n < LITERAL_BYTES_MAX &&
		    literal_count[n] < SAME_LENGTH_MAX) {
			literal_by_len[n][literal_count[n]++] = (u8)r;
		} else if (open) {
			with_param[with_param_count].route = (u8)r;
			with_param[with_param_count].prefix_len =
				(u8)(open - t);
			with_param[with_param_count++].suffix =
				strchr(open, '}') + 1;
		} else {
			abort(); /* a template longer than the index */
		}
	}
}

/* Is url, from its {...} segment at url + p on, the rest of a template
 * whose suffix is suffix?  *seg_len: the segment's length, any bytes up
 * to the next '/'. */
static bool rest_matches(const char *url, size_t p, const char *suffix,
			 size_t *seg_len)
{
	const char *s = url + p;
	const char *e = s;
	while (*e && *e != '/')
		e++;
	*seg_len = (size_t)(e - s);
	return strcmp(e, suffix) == 0;
}

static bool rest_ok(const char *s, size_t n)
{
	if (n == 0 || n > API_TEXT_ID_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '/'))
			return false;
	return true;
}

static bool text_id_ok(const char *s, size_t n)
{
	if (n == 0 || n > API_TEXT_ID_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '~' || c == '-'))
			return false;
	}
	return true;
}

/* The {...} segment seg (n bytes) of row r: id, bad_id, text. */
static enum api_route read_param(unsigned r, const char *seg, size_t n,
				 u128 *id, bool *bad_id, const char **text)
{
	const struct api_route_info *ri = &api_routes[r];

	switch ((enum route_param)ri->param) {
	case RP_NONE: break;
	case RP_DEC128:
	case RP_DEC64:
	case RP_SERIAL:
		/* ".../accounts/" is no route; ".../accounts//x" is a route
		 * with a bad id; ".../versions/" a bad id */
		if (n == 0 && seg[0] == '\0' && ri->param != RP_SERIAL)
			return ROUTE_unmatched;
		if (u128_parse_dec(
			    seg, n,
			    ri->param == RP_DEC128 ? U128_MAX : UINT64_MAX, id))
			*bad_id = true;
		break;
	case RP_REST:
		if (!rest_ok(seg, n))
			*bad_id = true;
		else if (text)
			*text = seg;
		break;
	case RP_TEXT:
		if (!text_id_ok(seg, n))
			*bad_id = true;
		else if (text)
			*text = seg;
		break;
	}
	return (enum api_route)r;
}

enum api_route api_route_match_text(const char *url, u128 *id, bool *bad_id,
				    const char **text, size_t *text_len)
{
	size_t n = strlen(url);

	*bad_id = false;
	if (text)
		*text = NULL;
	if (text_len)
		*text_len = 0;
	if (n < LITERAL_BYTES_MAX)
		for (unsigned k = 0; k < literal_count[n]; k++) {
			unsigned r = literal_by_len[n][k];
			if (memcmp(url, api_routes[r].tmpl, n) == 0)
				return (enum api_route)r;
		}
	for (unsigned k = 0; k < with_param_count; k++) {
		size_t p = with_param[k].prefix_len, seg_len;
		unsigned r = with_param[k].route;
		if (n < p || memcmp(url, api_routes[r].tmpl, p) != 0)
			continue;
		if (api_routes[r].param == RP_REST) {
			if (text_len)
				*text_len = n - p;
			return read_param(r, url + p, n - p, id, bad_id, text);
		}
		if (rest_matches(url, p, with_param[k].suffix, &seg_len)) {
			if (text_len)
				*text_len = seg_len;
			return read_param(r, url + p, seg_len, id, bad_id,
					  text);
		}
	}
	return ROUTE_unmatched;
}

enum api_route api_route_match(const char *url, u128 *id, bool *bad_id)
{
	return api_route_match_text(url, id, bad_id, NULL, NULL);
}

/* An incoming X-Request-Id is kept when it is 1..64 characters from
 * [A-Za-z0-9._:-]: it then goes into logs and headers as is. */
bool api_request_id_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];
		if (n >= REQUEST_ID_BYTES_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '-'))
			return false;
	}
	return n > 0;
}

/* The parsing is engine/trace.h's (the spans use the whole context). */
bool api_traceparent_parse(const char *v, char trace_id[TRACE_ID_HEX + 1])
{
	struct trace_context c;

	if (!trace_parse_traceparent(v, &c))
		return false;
	trace_hex(c.trace_id, 16, trace_id);
	return true;
}

int api_query_u64s(const char *q, size_t len, const char *const names[],
		   u64 values[], bool present[], size_t n, const char **bad)
{
	size_t at = 0;

	*bad = NULL;
	for (size_t i = 0; i < n; i++)
		present[i] = false;
	while (at < len) {
		const char *amp = memchr(q + at, '&', len - at);
		size_t end = amp ? (size_t)(amp - q) : len;
		const char *eq = memchr(q + at, '=', end - at);
		size_t i;

		if (!eq)
			return -EINVAL;
		size_t klen = (size_t)(eq - (q + at));
		for (i = 0; i < n; i++)
			if (strlen(names[i]) == klen &&
			    memcmp(names[i], q + at, klen) == 0)
				break;
		if (i == n || present[i])
			return -EINVAL; /* unknown or repeated */
		*bad = names[i];
		u128 v;
		if (u128_parse_dec(eq + 1, end - (size_t)(eq + 1 - q),
				   UINT64_MAX, &v))
			return -EINVAL;
		values[i] = (u64)v;
		present[i] = true;
		*bad = NULL;
		at = end + (amp ? 1 : 0);
		if (amp && at == len)
			return -EINVAL; /* a trailing '&' */
	}
	return 0;
}

/* The next decoded byte of a name at *p (< end); advances *p. */
static int name_byte(const char **p, const char *end)
{
	const char *s = *p;
	if (*s == '%' && end - s >= 3 && parse_hex_digit(s[1]) >= 0 &&
	    parse_hex_digit(s[2]) >= 0) {
		*p = s + 3;
		return parse_hex_digit(s[1]) * 16 + parse_hex_digit(s[2]);
	}
	*p = s + 1;
	return *s == '+' ? ' ' : (unsigned char)*s;
}

static bool names_equal(const char *a, const char *a_end, const char *b,
			const char *b_end)
{
	while (a < a_end && b < b_end)
		if (name_byte(&a, a_end) != name_byte(&b, b_end))
			return false;
	return a == a_end && b == b_end;
}

int api_query_repeated(const char *q, size_t len, char *name, size_t name_size)
{
	const char *start[API_QUERY_PARAMS_MAX], *stop[API_QUERY_PARAMS_MAX];
	size_t n = 0, at = 0;

	if (name_size)
		name[0] = '\0';
	while (at < len) {
		const char *amp = memchr(q + at, '&', len - at);
		size_t end = amp ? (size_t)(amp - q) : len;
		const char *eq = memchr(q + at, '=', end - at);
		const char *ne = eq ? eq : q + end;
		const char *ns = q + at;
		at = end + (amp ? 1 : 0);
		if (ne == ns && !eq)
			continue; /* "a&&b": an empty piece names nothing */
		for (size_t i = 0; i < n; i++) {
			if (!names_equal(start[i], stop[i], ns, ne))
				continue;
			size_t k = 0;
			const char *p = ns;
			while (p < ne && k + 1 < name_size) {
				int c = name_byte(&p, ne);
				if (c < 0x21 || c > 0x7e) {
					k = 0;
					break;
				}
				name[k++] = (char)c;
			}
			if (name_size)
				name[k] = '\0';
			return 1;
		}
		if (n == API_QUERY_PARAMS_MAX)
			return -E2BIG;
		start[n] = ns;
		stop[n++] = ne;
	}
	return 0;
}
