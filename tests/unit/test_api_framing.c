/*
 * test_api_framing.c - the strict reading of raw request bytes
 * (api/framing.h): well-framed pipelines pass whatever the segmentation;
 * each leniency libmicrohttpd has (bare LF, folding, NUL, repeated or
 * signed Content-Length, Content-Length with chunked) stops the stream
 * at the right byte, request and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/framing.h"

#include <string.h>

#include "banned.h"

static size_t read_all(struct framing *f, const char *s, size_t *line_at)
{
	framing_init(f);
	return framing_read(f, (const u8 *)s, strlen(s), line_at);
}

static void well_framed_pipelines_pass(void **state)
{
	static const char s[] =
		"\r\nPOST /v1/accounts HTTP/1.1\r\nHost: t\r\n"
		"Content-Length: 5\r\n\r\n[\r\n]\n"
		"GET /healthz HTTP/1.1\r\nX-A:\tv\xc3\xa9 \r\n\r\n"
		"POST /v1/transfers HTTP/1.1\r\ntransfer-encoding:  Chunked "
		"\r\n"
		"\r\nzz not read \n\x00";
	struct framing f;
	size_t line_at;

	(void)state;
	assert_int_equal(read_all(&f, s, &line_at), strlen(s));
	assert_int_equal(f.state, FRAMING_PASS);
	assert_int_equal(f.requests, 3);
	/* one byte at a time: the same */
	framing_init(&f);
	for (size_t i = 0; i < strlen(s); i++)
		assert_int_equal(
			framing_read(&f, (const u8 *)s + i, 1, &line_at), 1);
	assert_int_equal(f.state, FRAMING_PASS);
}

static void each_leniency_stops_at_its_byte(void **state)
{
	static const struct {
		const char *s;
		size_t at, line_at;
		u32 request;
		bool in_line;
		enum framing_error e;
	} cases[] = {
		{"GET / HTTP/1.1\nHost: t\r\n\r\n", 14, 0, 1, true,
		 FRAMING_BARE_CR_LF},
		{"GET / HTTP/1.1\r\nHost: t\n\r\n", 23, 16, 1, false,
		 FRAMING_BARE_CR_LF},
		{"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 24, 24, 1, false,
		 FRAMING_FOLDED},
		{"GET / HTTP/1.1\r\nAuthorization: Bearer t\0junk\r\n\r\n", 39,
		 16, 1, false, FRAMING_CONTROL},
		{"GET / HTTP/1.1\r\nX-A : b\r\n\r\n", 19, 16, 1, false,
		 FRAMING_BAD_NAME},
		{"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n[]", 33, 17, 1,
		 false, FRAMING_BAD_LENGTH},
		{"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 34, 17, 1,
		 false, FRAMING_BAD_LENGTH},
		/* a trailing blank: libmicrohttpd would answer it twice */
		{"POST / HTTP/1.1\r\nContent-Length: 2\t\r\n\r\n[]", 34, 17, 1,
		 false, FRAMING_BAD_LENGTH},
		{"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: "
		 "2\r\n",
		 54, 36, 1, false, FRAMING_BAD_LENGTH},
		{"POST / HTTP/1.1\r\nContent-Length: 2\r\n"
		 "Transfer-Encoding: chunked\r\n",
		 63, 36, 1, false, FRAMING_BAD_CODING},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n", 50,
		 17, 1, false, FRAMING_BAD_CODING},
		{"GET / HTTP/1.1\r\n\r\nGET /\x7f HTTP/1.1\r\n", 23, 18, 2,
		 true, FRAMING_CONTROL},
		{"GET / HTTP/1.1\r\n\r\n\r\r\n", 19, 18, 2, true,
		 FRAMING_BARE_CR_LF},
	};
	struct framing f;
	size_t line_at;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].s);
		if (cases[i].e == FRAMING_CONTROL && i == 3)
			n = 48; /* the NUL case: past the NUL */
		framing_init(&f);
		size_t at =
			framing_read(&f, (const u8 *)cases[i].s, n, &line_at);
		if (at != cases[i].at || line_at != cases[i].line_at ||
		    f.state != FRAMING_BAD || f.error != cases[i].e ||
		    f.bad_request != cases[i].request ||
		    f.bad_in_line != cases[i].in_line)
			fail_msg("case %zu: at %zu line %zu state %d error %d "
				 "request %u in_line %d",
				 i, at, line_at, f.state, f.error,
				 f.bad_request, f.bad_in_line);
		/* stays refused */
		assert_int_equal(framing_read(&f, (const u8 *)"x", 1, &line_at),
				 0);
	}
}

static void a_line_begun_in_an_earlier_read_has_no_start_here(void **state)
{
	static const char a[] = "GET / HTTP/1.1\r\nX-Long: abc",
			  b[] = "def\x01\r\n\r\n";
	struct framing f;
	size_t line_at;

	(void)state;
	framing_init(&f);
	assert_int_equal(framing_read(&f, (const u8 *)a, strlen(a), &line_at),
			 strlen(a));
	assert_int_equal(framing_read(&f, (const u8 *)b, strlen(b), &line_at),
			 3);
	assert_int_equal(line_at, SIZE_MAX);
	assert_int_equal(f.error, FRAMING_CONTROL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_framed_pipelines_pass),
		cmocka_unit_test(each_leniency_stops_at_its_byte),
		cmocka_unit_test(
			a_line_begun_in_an_earlier_read_has_no_start_here),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
