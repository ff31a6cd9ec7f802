/*
 * fuzz_route.c - libFuzzer harness for what the request line and headers
 * carry: api_route_match, api_request_id_valid, api_traceparent_parse,
 * api_query_repeated.
 *
 * Asserts the properties the server relies on: a matched id route with a
 * good id parses the same id back from the text; a kept request id is
 * 1..64 safe characters; a kept trace-id is 32 lowercase hex digits; a
 * query with no repeat keeps none when a parameter is appended to itself
 * ("q&q" repeats whatever q's first name is), and a repeated name that
 * is reported is printable.
 */
#include "api/route.h"
#include "core/u128.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define INPUT_BYTES_MAX 4096

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char buf[INPUT_BYTES_MAX + 1];
	char trace[TRACE_ID_HEX + 1];
	u128 id = 0;
	bool bad = false;

	if (size > INPUT_BYTES_MAX)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	enum api_route r = api_route_match(buf, &id, &bad);
	if (r >= ROUTE_COUNT)
		abort();
	if (r == ROUTE_account && !bad) {
		/* "/v1/accounts/<id>" with a canonical id round-trips. */
		char dec[U128_DEC_BYTES];
		u128_format_dec(id, dec);
		if (strcmp(buf + strlen("/v1/accounts/"), dec) != 0)
			abort();
	}

	if (api_request_id_valid(buf)) {
		size_t n = strlen(buf);
		if (n == 0 || n > REQUEST_ID_BYTES_MAX)
			abort();
		if (strspn(buf,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
			   "VWXYZ0123456789._:-") != n)
			abort();
	}

	char name[33];
	int rep = api_query_repeated(buf, size, name, sizeof(name));
	if (rep < -E2BIG || rep > 1 || strlen(name) >= sizeof(name))
		abort();
	for (const char *p = name; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			abort();
	if (rep == 0 && size > 0 && size <= INPUT_BYTES_MAX / 2 - 1 &&
	    buf[0] != '&' && buf[0] != '=') {
		/* the first parameter's name, once more */
		char twice[INPUT_BYTES_MAX + 2];
		memcpy(twice, buf, size);
		twice[size] = '&';
		memcpy(twice + size + 1, buf, size);
		if (api_query_repeated(twice, 2 * size + 1, name,
				       sizeof(name)) == 0)
			abort();
	}

	if (api_traceparent_parse(buf, trace)) {
		if (strlen(trace) != TRACE_ID_HEX ||
		    strspn(trace, "0123456789abcdef") != TRACE_ID_HEX ||
		    strspn(trace, "0") == TRACE_ID_HEX)
			abort();
	}
	return 0;
}
