/*
 * fuzz_probe.c - libFuzzer harness for src/api/probe.h: the probe spec
 * parser ("URL:platform/version") and the answer classifier.
 *
 * The input's first line is a spec; the rest is an answer: a status
 * byte pair, then the Tpwallet-Problem and X-Client-Policy values (one
 * line each) and a body.  Checks:
 *   - a spec that parses has a URL http_url_parse accepts, a client
 *     probe_client_valid accepts, and a label of at most
 *     PROBE_NAME_BYTES_MAX - 1 bytes of [A-Za-z0-9._:/@+-] (safe inside a
 *     Prometheus label value), and its URL and client put back together
 *     are the spec again;
 *   - every answer gets exactly one verdict; a transport error is always
 *     unreachable; problem, gate and reason are words of [a-z0-9_-];
 *     nothing crashes or reads past the body.
 */
#include "api/probe.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char *take_line(char **p)
{
	char *s = *p, *nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

static void check_word(const char *w)
{
	for (; *w; w++)
		CHECK(strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", *w));
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char *p = text;

	const char *spec = take_line(&p);
	struct probe_target t;
	if (probe_target_parse(spec, &t) == 0) {
		struct http_url u;
		CHECK(http_url_parse(t.url, &u) == 0);
		CHECK(probe_client_valid(t.client));
		size_t n = strlen(t.name);
		CHECK(n > 0 && n < PROBE_NAME_BYTES_MAX);
		for (size_t i = 0; i < n; i++)
			CHECK(strchr("abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789._:/@+-",
				     t.name[i]));
		size_t ul = strlen(t.url);
		CHECK(strncmp(spec, t.url, ul) == 0 && spec[ul] == ':' &&
		      strcmp(spec + ul + 1, t.client) == 0);
	}

	size_t left = strlen(p);
	int status =
		left >= 2
			? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) % 700
			: 0;
	if (left >= 2)
		p += 2;
	const char *marker = take_line(&p);
	const char *policy = take_line(&p);
	struct probe_answer a = {
		.err = status == 1 ? -HTTP_timeout : 0,
		.status = status,
		.marker = *marker ? marker : NULL,
		.client_policy = *policy ? policy : NULL,
		.content_type = PROBLEM_CONTENT_TYPE,
		.body = p,
		.body_len = strlen(p),
	};
	struct probe_result r;
	probe_classify(&a, &r);
	CHECK(r.verdict < PROBE_VERDICT_COUNT);
	if (a.err || status < 100 || status > 599)
		CHECK(r.verdict == PROBE_unreachable && !r.up);
	else
		CHECK(r.up && r.status == status);
	check_word(r.problem);
	check_word(r.gate);
	check_word(r.reason);
	free(text);
	return 0;
}
