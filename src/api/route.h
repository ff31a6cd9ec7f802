/*
 * route.h - what the request line and headers say, parsed strictly:
 * the route a URL names, an incoming X-Request-Id, a W3C traceparent.
 *
 * Pure functions over NUL-terminated strings, fuzzed by
 * tests/fuzz/fuzz_route.c.  Routes are the templates of API_ROUTES in
 * routes.h, so a metric label can never be a raw path.
 */
#ifndef TPW_API_ROUTE_H
#define TPW_API_ROUTE_H

#include "api/routes.h"
#include "core/types.h"

/* A kept X-Request-Id is 1..REQUEST_ID_BYTES_MAX characters. */
#define REQUEST_ID_BYTES_MAX 64
/* A trace-id is 32 lowercase hex digits. */
#define TRACE_ID_HEX 32

/* Match url (already percent-decoded by libmicrohttpd) against the
 * templates of API_ROUTES.  Returns the route, or ROUTE_unmatched;
 * *bad_id is set when the shape matched but the {...} segment is not what
 * the row's param says (then *id is unchanged). */
enum api_route api_route_match(const char *url, u128 *id, bool *bad_id);

/* The same, and *text: the {...} segment of an RP_TEXT route (a
 * principal id, a jti, a card token) when it is good, else NULL.  It
 * points into url; *text_len (may be NULL) is the segment's length (a
 * template may go on after it: /v1/vault/cards/{token}/reveal). */
#define API_TEXT_ID_BYTES_MAX 64
enum api_route api_route_match_text(const char *url, u128 *id, bool *bad_id,
				    const char **text, size_t *text_len);

/* An incoming X-Request-Id is kept when it is 1..64 characters from
 * [A-Za-z0-9._:-]: it then goes into logs and headers as it is. */
bool api_request_id_valid(const char *s);

/*
 * W3C Trace Context: "vv-<32 hex trace-id>-<16 hex parent-id>-<2 hex
 * flags>", lowercase hex; version ff, an all-zero trace-id or parent-id
 * are invalid; version 00 is exactly 55 characters, a later version may
 * append "-..." fields.  Returns true and the trace-id when valid; an
 * invalid header is ignored by the caller, as the spec says.
 */
bool api_traceparent_parse(const char *v, char trace_id[TRACE_ID_HEX + 1]);

/*
 * A query string of only the given names, each a decimal u64 at most
 * once ("index=3&size=10"): values[i] and present[i] for names[i].
 * Returns 0, or -EINVAL for an unknown or repeated name, a missing '=',
 * or a value that is not a canonical decimal <= 2^64-1 (then *bad names
 * the parameter when it is known, else NULL).  No percent-decoding:
 * digits need none.
 */
int api_query_u64s(const char *q, size_t len, const char *const names[],
		   u64 values[], bool present[], size_t n, const char **bad);

/*
 * Is a parameter named twice in the raw query q?  Names compare after
 * percent-decoding ('+' is a space), as libmicrohttpd decodes them for
 * lookups, so "a=1&%61=2" repeats "a".  Refused on every route (400):
 * first-wins and last-wins readings differ between a proxy and us.
 * Returns 0 (no repeat), 1 (a repeat: name, NUL-terminated and cut to
 * name_size - 1, is the repeated name when it is printable ASCII, else
 * ""), or -E2BIG past API_QUERY_PARAMS_MAX parameters.
 */
#define API_QUERY_PARAMS_MAX 64
int api_query_repeated(const char *q, size_t len, char *name, size_t name_size);

#endif
