/*
 * route.c - routes, request ids and trace context from the request line
 * and headers (route.h).
 */
#include "api/route.h"
#include "core/u128.h"

#include <string.h>

#include "banned.h"

/* Match url (already percent-decoded by libmicrohttpd).  Returns the
 * route, or ROUTE_unmatched; *bad_id is set when the shape matched but
 * the {id} segment is not a canonical decimal. */
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
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
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
