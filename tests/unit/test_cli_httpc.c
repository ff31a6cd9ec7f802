/*
 * test_cli_httpc.c - the response parser and URL parser of the client
 * commands (src/cli/httpc.c): Content-Length, chunked and
 * end-of-connection framing, fed whole and one byte at a time; interim
 * 1xx answers; HEAD, 204 and 304 without a body; the body cap (declared
 * or reached while reading); truncated answers; malformed status lines,
 * headers, lengths, chunks and codings; http-only URLs.
 *
 * Includes the .c under test (STYLE.md, item 10): it needs no other
 * object than libsodium.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/httpc.c"

/* Parse text (fed whole, or step bytes at a time), then EOF if needed.
 * Returns 1 or the error; *out holds the answer on 1. */
static int parse(const char *text, size_t len, bool head, size_t cap,
		 size_t step, struct httpc_response *out)
{
	struct httpc_parser p;
	size_t off = 0;
	int r = 0;

	memset(out, 0, sizeof(*out));
	httpc_parser_init(&p, head, cap);
	while (off < len && r == 0) {
		size_t n = step && len - off > step ? step : len - off;
		r = httpc_parser_feed(&p, text + off, n, NULL);
		off += n;
	}
	if (r == 0)
		r = httpc_parser_eof(&p);
	if (r == 1)
		httpc_parser_take(&p, out);
	httpc_parser_clear(&p);
	return r;
}

/* Whole and byte by byte must agree; returns the verdict. */
static int parse_both(const char *text, bool head, size_t cap,
		      struct httpc_response *out)
{
	struct httpc_response one;
	size_t len = strlen(text);
	int a = parse(text, len, head, cap, 0, out);
	int b = parse(text, len, head, cap, 1, &one);

	assert_int_equal(a, b);
	if (a == 1) {
		assert_int_equal(out->status, one.status);
		assert_int_equal(out->body_len, one.body_len);
		if (out->body_len)
			assert_memory_equal(out->body, one.body, out->body_len);
	}
	httpc_response_clear(&one);
	return a;
}

static void content_length_body_is_read_exactly(void **state)
{
	struct httpc_response r;
	(void)state;

	assert_int_equal(
		parse_both("HTTP/1.1 201 Created\r\n"
			   "Content-Type: application/json\r\n"
			   "Content-Length: 7\r\n\r\n{\"a\":1}TRAILING",
			   false, 0, &r),
		1);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.reason, "Created");
	assert_string_equal(r.content_type, "application/json");
	assert_int_equal(r.body_len, 7);
	assert_string_equal(r.body, "{\"a\":1}");
	httpc_response_clear(&r);

	/* an identical repetition is one length (RFC 9110 8.6) */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\nContent-Length: 2, 2"
				    "\r\ncontent-length: 2\r\n\r\nok",
				    false, 0, &r),
			 1);
	assert_string_equal(r.body, "ok");
	httpc_response_clear(&r);

	/* zero: no body, NULL */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
				    "\r\n",
				    false, 0, &r),
			 1);
	assert_null(r.body);
	assert_int_equal(r.body_len, 0);
	httpc_response_clear(&r);
}

static void chunked_body_is_reassembled(void **state)
{
	struct httpc_response r;
	(void)state;

	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n"
				    "4\r\n{\"a\"\r\n"
				    "3;name=value\r\n:1}\r\n"
				    "A\r\n0123456789\r\n"
				    "0\r\nX-Trailer: yes\r\n\r\n",
				    false, 0, &r),
			 1);
	assert_int_equal(r.body_len, 17);
	assert_string_equal(r.body, "{\"a\":1}0123456789");
	httpc_response_clear(&r);

	/* bare LF line ends are accepted */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\n"
				    "transfer-encoding: Chunked\n\n"
				    "2\nok\n0\n\n",
				    false, 0, &r),
			 1);
	assert_string_equal(r.body, "ok");
	httpc_response_clear(&r);
}

static void eof_framed_body_ends_with_the_connection(void **state)
{
	struct httpc_response r;
	(void)state;

	assert_int_equal(
		parse_both("HTTP/1.0 200 OK\r\n\r\nall of it", false, 0, &r),
		1);
	assert_int_equal(r.minor_version, 0);
	assert_string_equal(r.body, "all of it");
	httpc_response_clear(&r);
}

static void interim_and_bodiless_answers(void **state)
{
	struct httpc_response r;
	char many[2048] = "";
	(void)state;

	assert_int_equal(parse_both("HTTP/1.1 100 Continue\r\n\r\n"
				    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				    "\r\nok",
				    false, 0, &r),
			 1);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok");
	httpc_response_clear(&r);

	/* HEAD, 204, 304: no body whatever the headers say */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
				    "\r\n",
				    true, 0, &r),
			 1);
	assert_int_equal(r.body_len, 0);
	httpc_response_clear(&r);
	assert_int_equal(parse_both("HTTP/1.1 204 No Content\r\n"
				    "Content-Length: 5\r\n\r\n",
				    false, 0, &r),
			 1);
	assert_int_equal(r.status, 204);
	httpc_response_clear(&r);
	assert_int_equal(
		parse_both("HTTP/1.1 304 Not Modified\r\n\r\n", false, 0, &r),
		1);
	httpc_response_clear(&r);

	for (unsigned i = 0; i <= HTTPC_INTERIM_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "HTTP/1.1 102 Processing\r\n\r\n");
	assert_int_equal(parse_both(many, false, 0, &r),
			 -HTTPC_too_many_interim);
}

static void oversize_bodies_are_refused(void **state)
{
	struct httpc_response r;
	(void)state;

	/* declared over the cap: refused before reading it */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
				    "\r\n",
				    false, 8, &r),
			 -HTTPC_body_too_large);
	/* exactly the cap is fine */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n"
				    "\r\n12345678",
				    false, 8, &r),
			 1);
	httpc_response_clear(&r);
	/* chunks adding up past the cap */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n"
				    "5\r\n12345\r\n4\r\n6789\r\n0\r\n\r\n",
				    false, 8, &r),
			 -HTTPC_body_too_large);
	/* an end-of-connection body past the cap */
	assert_int_equal(
		parse_both("HTTP/1.1 200 OK\r\n\r\n123456789", false, 8, &r),
		-HTTPC_body_too_large);
	/* a length that overflows 64 bits */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\n"
				    "Content-Length: 18446744073709551616\r\n"
				    "\r\n",
				    false, 0, &r),
			 -HTTPC_bad_content_length);
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n"
				    "10000000000000000\r\n",
				    false, 0, &r),
			 -HTTPC_bad_chunk);
}

static void oversize_head_is_refused(void **state)
{
	struct httpc_response r;
	size_t n = HTTPC_HEAD_BYTES_MAX + 64;
	char *big = malloc(n + 1);
	(void)state;

	assert_non_null(big);
	memset(big, 'a', n);
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	big[n] = '\0';
	assert_int_equal(parse(big, n, false, 0, 0, &r), -HTTPC_head_too_large);
	free(big);
}

static void truncated_answers_are_refused(void **state)
{
	struct httpc_response r;
	(void)state;

	assert_int_equal(parse_both("", false, 0, &r), -HTTPC_truncated);
	assert_int_equal(
		parse_both("HTTP/1.1 200 OK\r\nContent-Len", false, 0, &r),
		-HTTPC_truncated);
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
				    "\r\nshort",
				    false, 0, &r),
			 -HTTPC_truncated);
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n"
				    "5\r\nabc",
				    false, 0, &r),
			 -HTTPC_truncated);
	/* the last chunk without the empty line that ends the trailer */
	assert_int_equal(parse_both("HTTP/1.1 200 OK\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n"
				    "0\r\n",
				    false, 0, &r),
			 -HTTPC_truncated);
}

static void malformed_answers_are_refused(void **state)
{
	static const struct {
		const char *text;
		int err;
	} cases[] = {
		{"HTTP/2 200 OK\r\n\r\n", -HTTPC_bad_status_line},
		{"HTTP/1.1 20 OK\r\n\r\n", -HTTPC_bad_status_line},
		{"HTTP/1.1 2000 OK\r\n\r\n", -HTTPC_bad_status_line},
		{"HTTP/1.1 099 Low\r\n\r\n", -HTTPC_bad_status_line},
		{"http/1.1 200 OK\r\n\r\n", -HTTPC_bad_status_line},
		{"\r\n\r\n", -HTTPC_bad_status_line},
		{"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", -HTTPC_bad_header},
		{"HTTP/1.1 200 OK\r\nX : y\r\n\r\n", -HTTPC_bad_header},
		{"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
		 -HTTPC_bad_header},
		{"HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n", -HTTPC_bad_header},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2"
		 "\r\n\r\nab",
		 -HTTPC_bad_content_length},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		 -HTTPC_bad_content_length},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\n",
		 -HTTPC_bad_content_length},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
		 -HTTPC_bad_content_length},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		 -HTTPC_bad_transfer_encoding},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n",
		 -HTTPC_bad_transfer_encoding},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "z\r\n",
		 -HTTPC_bad_chunk},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "2\r\nabc\r\n",
		 -HTTPC_bad_chunk},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "2 x\r\n",
		 -HTTPC_bad_chunk},
	};
	struct httpc_response r;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = parse_both(cases[i].text, false, 0, &r);
		if (got != cases[i].err)
			fail_msg("case %zu: got %s, want %s", i,
				 httpc_err_name(got),
				 httpc_err_name(cases[i].err));
	}
}

static void a_failed_parser_stays_failed(void **state)
{
	struct httpc_parser p;
	(void)state;

	httpc_parser_init(&p, false, 0);
	assert_int_equal(httpc_parser_feed(&p, "HTTP/9 x\r\n\r\n", 13, NULL),
			 -HTTPC_bad_status_line);
	assert_int_equal(
		httpc_parser_feed(&p, "HTTP/1.1 200 OK\r\n\r\n", 19, NULL),
		-HTTPC_bad_status_line);
	assert_int_equal(httpc_parser_eof(&p), -HTTPC_bad_status_line);
	httpc_parser_clear(&p);
	httpc_parser_clear(&p);
}

static void urls_are_http_only(void **state)
{
	struct httpc_url u;
	(void)state;

	assert_int_equal(httpc_url_parse("http://127.0.0.1:8080", &u), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 8080);
	assert_string_equal(u.prefix, "");
	assert_string_equal(u.authority, "127.0.0.1:8080");
	assert_int_equal(httpc_url_parse("http://Example.org/api/", &u), 0);
	assert_int_equal(u.port, 80);
	assert_string_equal(u.prefix, "/api");
	assert_string_equal(u.authority, "Example.org:80");
	assert_int_equal(httpc_url_parse("http://[::1]:9/", &u), 0);
	assert_true(u.ipv6_literal);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.authority, "[::1]:9");

	assert_int_equal(httpc_url_parse("https://127.0.0.1", &u),
			 -HTTPC_https_unsupported);
	static const char *const bad[] = {
		"127.0.0.1:8080", "http://",	  "http://:80", "http://h:0",
		"http://h:65536", "http://h:80x", "http://u@h", "http://h/a?b",
		"http://[::1",	  "http://h/a b", "ftp://h",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (httpc_url_parse(bad[i], &u) != -HTTPC_bad_url)
			fail_msg("accepted %s", bad[i]);
}

static void every_error_has_a_name(void **state)
{
	(void)state;
	for (int i = 0; i < HTTPC_ERR_COUNT; i++) {
		assert_non_null(httpc_err_name(-i));
		assert_non_null(httpc_err_desc(-i));
	}
	assert_null(httpc_err_name(-HTTPC_ERR_COUNT));
	assert_null(httpc_err_name(1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(content_length_body_is_read_exactly),
		cmocka_unit_test(chunked_body_is_reassembled),
		cmocka_unit_test(eof_framed_body_ends_with_the_connection),
		cmocka_unit_test(interim_and_bodiless_answers),
		cmocka_unit_test(oversize_bodies_are_refused),
		cmocka_unit_test(oversize_head_is_refused),
		cmocka_unit_test(truncated_answers_are_refused),
		cmocka_unit_test(malformed_answers_are_refused),
		cmocka_unit_test(a_failed_parser_stays_failed),
		cmocka_unit_test(urls_are_http_only),
		cmocka_unit_test(every_error_has_a_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
