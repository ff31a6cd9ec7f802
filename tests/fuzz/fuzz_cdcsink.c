/*
 * fuzz_cdcsink.c - libFuzzer harness for the sink URLs of
 * src/net/cdcsink.h.
 *
 * The input is one URL.  Properties:
 *   - nothing crashes; a refusal is -EINVAL with a message that starts
 *     with the name of a part, and never repeats what followed a ':' in
 *     the user part (a password);
 *   - an accepted URL formats to a URL that parses to the same parts and
 *     formats to the same text (the state file and messages hold it).
 */
#include "net/cdcsink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char *const parts[] = {
	"scheme: ",   "host: ",	 "port: ",   "password: ", "user: ",  "vhost: ",
	"exchange: ", "queue: ", "stream: ", "subject: ",  "query: ", "path: ",
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char url[1024], err[CDC_SINK_ERR_BYTES], a[1024], b[1024];
	struct cdc_sink_url u, v;

	if (size >= sizeof(url) || memchr(data, 0, size))
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	int r = cdc_sink_url_parse(url, &u, err, sizeof(err));
	if (r != 0) {
		CHECK(r == -EINVAL);
		bool named = false;
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			named |= !strncmp(err, parts[i], strlen(parts[i]));
		CHECK(named);
		return 0;
	}
	cdc_sink_url_format(&u, a, sizeof(a));
	CHECK(cdc_sink_url_parse(a, &v, err, sizeof(err)) == 0);
	CHECK(memcmp(&u, &v, sizeof(u)) == 0);
	cdc_sink_url_format(&v, b, sizeof(b));
	CHECK(strcmp(a, b) == 0);
	return 0;
}
