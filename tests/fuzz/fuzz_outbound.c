/*
 * fuzz_outbound.c - libFuzzer harness for the outbound policy of
 * src/net/http.h: http_outbound_set's pin specs ("https://HOST[:PORT]
 * sha256//BASE64[;...]") and http_outbound_check.
 *
 * The input is up to HTTP_PINS_MAX + 1 lines, each a spec.  Checks:
 *   - a set that succeeds had at most HTTP_PINS_MAX specs, and each spec's
 *     keys part is 1..HTTP_PIN_KEYS_MAX keys of "sha256//" and 44 base64
 *     characters ending in '=';
 *   - then each spec's host, named with http:// and its port, is refused
 *     (-HTTP_pin_needs_https) and with https:// accepted;
 *   - a set that fails leaves no pin behind (any URL is accepted);
 *   - nothing crashes or reads past a line.
 */
#include "net/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_keys(const char *k)
{
	size_t n = 0;
	for (;;) {
		size_t len = strcspn(k, ";");
		CHECK(len == 52 && strncmp(k, "sha256//", 8) == 0 &&
		      k[51] == '=');
		n++;
		if (k[len] == '\0')
			break;
		k += len + 1;
	}
	CHECK(n >= 1 && n <= HTTP_PIN_KEYS_MAX);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *text = malloc(size + 1);
	const char *specs[HTTP_PINS_MAX + 1];
	size_t n = 0;
	char err[300];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *p = text; n < HTTP_PINS_MAX + 1;) {
		char *nl = strchr(p, '\n');
		specs[n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	if (http_outbound_set(NULL, specs, n, err, sizeof(err)) == 0) {
		CHECK(n <= HTTP_PINS_MAX);
		for (size_t i = 0; i < n; i++) {
			const char *sp = strchr(specs[i], ' ');
			char url[HTTP_URL_BYTES_MAX + 8];
			struct http_url u;
			CHECK(sp != NULL);
			check_keys(sp + 1);
			snprintf(url, sizeof(url), "%.*s", (int)(sp - specs[i]),
				 specs[i]);
			CHECK(http_url_parse(url, &u) == 0 && u.tls);
			CHECK(http_outbound_check(url) == 0);
			snprintf(url, sizeof(url), "http://%s:%u", u.host,
				 u.port);
			CHECK(http_outbound_check(url) ==
			      -HTTP_pin_needs_https);
		}
	} else {
		CHECK(strlen(err) > 0);
		for (size_t i = 0; i < n; i++) {
			const char *sp = strchr(specs[i], ' ');
			char url[HTTP_URL_BYTES_MAX + 8];
			struct http_url u;
			if (!sp)
				continue;
			snprintf(url, sizeof(url), "%.*s", (int)(sp - specs[i]),
				 specs[i]);
			if (http_url_parse(url, &u) != 0)
				continue;
			snprintf(url, sizeof(url), "http://%s:%u", u.host,
				 u.port);
			CHECK(http_outbound_check(url) == 0);
		}
	}
	free(text);
	return 0;
}
