/*
 * route.c - routes, request ids and trace context from the request line
 * and headers (route.h).
 */
#include "api/route.h"
#include "api/codec.h"
#include "core/parse.h"
#include "core/u128.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "banned.h"

/* Match url (already percent-decoded by libmicrohttpd).  Returns the
 * route, or ROUTE_unmatched; *bad_id is set when the shape matched but
 * the {id} segment is not a canonical decimal. */
/* "/v1/audit/" + rest. */
static enum api_route audit_route(const char *rest, u128 *id, bool *bad_id)
{
	static const char entries[] = "entries/";

	if (strcmp(rest, "head") == 0)
		return ROUTE_audit_head;
	if (strcmp(rest, "checkpoint") == 0)
		return ROUTE_audit_checkpoint;
	if (strcmp(rest, "key") == 0)
		return ROUTE_audit_key;
	if (strcmp(rest, "proof/inclusion") == 0)
		return ROUTE_audit_inclusion;
	if (strcmp(rest, "proof/consistency") == 0)
		return ROUTE_audit_consistency;
	if (strncmp(rest, entries, sizeof(entries) - 1) != 0)
		return ROUTE_unmatched;
	rest += sizeof(entries) - 1;
	if (*rest == '\0' || strchr(rest, '/'))
		return ROUTE_unmatched;
	if (u128_parse_dec(rest, strlen(rest), UINT64_MAX, id))
		*bad_id = true;
	return ROUTE_audit_entry;
}

/* A text id: 1..API_TEXT_ID_BYTES_MAX characters of [A-Za-z0-9._~-]
 * (base64url thumbprints and jtis), no further segment. */
static enum api_route text_id_route(const char *rest, enum api_route r,
				    bool *bad_id)
{
	size_t n = 0;

	for (; rest[n]; n++) {
		char c = rest[n];
		if (c == '/')
			return ROUTE_unmatched;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '~' || c == '-'))
			*bad_id = true;
	}
	if (n == 0 || n > API_TEXT_ID_BYTES_MAX)
		*bad_id = true;
	return r;
}

/* "/v1/client-policy" + rest. */
static enum api_route client_policy_route(const char *rest, u128 *id,
					  bool *bad_id)
{
	static const struct {
		const char *path;
		enum api_route route;
	} fixed[] = {
		{"", ROUTE_cp_manifest},
		{"/current", ROUTE_cp_current},
		{"/versions", ROUTE_cp_versions},
		{"/diff", ROUTE_cp_diff},
		{"/rollback", ROUTE_cp_rollback},
		{"/evaluate", ROUTE_cp_evaluate},
		{"/overrides", ROUTE_cp_overrides},
		{"/impact", ROUTE_cp_impact},
		{"/activity", ROUTE_cp_activity},
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(rest, fixed[i].path) == 0)
			return fixed[i].route;
	enum api_route r;
	if (strncmp(rest, "/versions/", 10) == 0) {
		rest += 10;
		r = ROUTE_cp_version;
	} else if (strncmp(rest, "/overrides/", 11) == 0) {
		rest += 11;
		r = ROUTE_cp_override;
	} else {
		return ROUTE_unmatched;
	}
	if (strchr(rest, '/'))
		return ROUTE_unmatched;
	if (u128_parse_dec(rest, strlen(rest), UINT64_MAX, id))
		*bad_id = true;
	return r;
}

const char *api_route_text_id(const char *url)
{
	if (strncmp(url, "/v1/principals/", 15) == 0)
		return url + 15;
	if (strncmp(url, "/v1/revocations/", 16) == 0)
		return url + 16;
	return NULL;
}

enum api_route api_route_match(const char *url, u128 *id, bool *bad_id)
{
	static const char acc[] = "/v1/accounts", tr[] = "/v1/transfers";
	const char *rest, *slash;
	bool accounts;
	size_t idlen;

	*bad_id = false;
	if (strcmp(url, "/healthz") == 0)
		return ROUTE_healthz;
	if (strcmp(url, "/readyz") == 0)
		return ROUTE_readyz;
	if (strcmp(url, "/metrics") == 0)
		return ROUTE_metrics;
	if (strcmp(url, "/.well-known/jwks.json") == 0)
		return ROUTE_jwks;
	if (strncmp(url, "/v1/audit/", 10) == 0)
		return audit_route(url + 10, id, bad_id);
	if (strncmp(url, "/v1/client-policy", 17) == 0)
		return client_policy_route(url + 17, id, bad_id);
	if (strcmp(url, "/v1/principals") == 0)
		return ROUTE_principals;
	if (strcmp(url, "/v1/keys") == 0)
		return ROUTE_keys;
	if (strcmp(url, "/v1/keys/rotate") == 0)
		return ROUTE_keys_rotate;
	if (strcmp(url, "/v1/revocations") == 0)
		return ROUTE_revocations;
	/* Their {id} is text (a thumbprint, a jti): api_route_text_id. */
	if (strncmp(url, "/v1/principals/", 15) == 0)
		return text_id_route(url + 15, ROUTE_principal, bad_id);
	if (strncmp(url, "/v1/revocations/", 16) == 0)
		return text_id_route(url + 16, ROUTE_revocation, bad_id);
	if (strncmp(url, acc, sizeof(acc) - 1) == 0) {
		accounts = true;
		rest = url + sizeof(acc) - 1;
	} else if (strncmp(url, tr, sizeof(tr) - 1) == 0) {
		accounts = false;
		rest = url + sizeof(tr) - 1;
	} else {
		return ROUTE_unmatched;
	}
	if (*rest == '\0')
		return accounts ? ROUTE_accounts : ROUTE_transfers;
	if (*rest != '/' || rest[1] == '\0')
		return ROUTE_unmatched;
	rest++;
	slash = strchr(rest, '/');
	idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	enum api_route r;
	if (!slash)
		r = accounts ? ROUTE_account : ROUTE_transfer;
	else if (accounts && strcmp(slash, "/transfers") == 0)
		r = ROUTE_account_transfers;
	else if (accounts && strcmp(slash, "/balances") == 0)
		r = ROUTE_account_balances;
	else if (strcmp(slash, "/receipt") == 0)
		r = accounts ? ROUTE_account_receipt : ROUTE_transfer_receipt;
	else
		return ROUTE_unmatched;
	if (u128_parse_dec(rest, idlen, U128_MAX, id))
		*bad_id = true;
	return r;
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

static bool lowhex(const char *s, size_t n, bool *all_zero)
{
	bool zero = true;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (parse_hex_digit_lower(c) < 0)
			return false;
		if (c != '0')
			zero = false;
	}
	if (all_zero)
		*all_zero = zero;
	return true;
}

/*
 * W3C Trace Context: "vv-<32 hex trace-id>-<16 hex parent-id>-<2 hex
 * flags>", lowercase hex; version ff, an all-zero trace-id or parent-id
 * are invalid; version 00 is exactly 55 characters, a later version may
 * append "-..." fields.  An invalid header is ignored, as the spec says.
 */
bool api_traceparent_parse(const char *v, char trace_id[TRACE_ID_HEX + 1])
{
	size_t n = strnlen(v, 512);
	bool zero;

	if (n < 55 || !lowhex(v, 2, NULL) || (v[0] == 'f' && v[1] == 'f'))
		return false;
	if (v[2] != '-' || v[35] != '-' || v[52] != '-')
		return false;
	if (!lowhex(v + 3, 32, &zero) || zero)
		return false;
	if (!lowhex(v + 36, 16, &zero) || zero)
		return false;
	if (!lowhex(v + 53, 2, NULL))
		return false;
	if (v[0] == '0' && v[1] == '0' ? n != 55 : (n > 55 && v[55] != '-'))
		return false;
	memcpy(trace_id, v + 3, TRACE_ID_HEX);
	trace_id[TRACE_ID_HEX] = '\0';
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
