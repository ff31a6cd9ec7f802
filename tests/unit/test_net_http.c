/*
 * test_net_http.c - the outbound HTTP client (src/net/http.h) against a
 * tiny server on loopback that this test runs in a thread: each case
 * sets how the server answers, sends requests, and looks at what the
 * client returned and at the bytes the server received.
 */
#include "net/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "banned.h"

enum answer {
	ANSWER_HELLO,	   /* 200, "hello", kept open */
	ANSWER_PROBLEM,	   /* 404 problem+json */
	ANSWER_BIG_LENGTH, /* Content-Length: 1000000 and no body */
	ANSWER_BIG_CHUNKS, /* chunked, 64 KiB of body */
	ANSWER_BIG_HEAD,   /* 200 with 100 KiB of headers */
	ANSWER_NOTHING,	   /* read the request, never answer */
	ANSWER_REDIRECT,   /* 302 to /base/a, again and again */
	ANSWER_TO_FTP,	   /* 302 to ftp:// */
	ANSWER_TO_OTHER,   /* 302 to http://127.0.0.2:PORT/x */
};

struct server {
	int fd;
	unsigned port;
	_Atomic int answer;
	_Atomic bool stop;
	_Atomic unsigned accepted;
	_Atomic unsigned requests;
	_Atomic bool *cancel_on_request; /* set when a request is read */
	pthread_mutex_t lock;
	char last[8192]; /* the last request's head and body */
	pthread_t thread;
};

static struct server srv;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void send_text(int c, const char *s, size_t n)
{
	size_t off = 0;
	for (int i = 0; i < 1000 && off < n; i++) {
		ssize_t k = send(c, s + off, n - off, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		off += (size_t)k;
	}
}

/* Reads one request (head and Content-Length body) into buf; false when
 * the peer closed or the server stops (polls of 20 ms, at most 10 s). */
static bool read_request(int c, char *buf, size_t cap)
{
	size_t got = 0;

	for (int i = 0; i < 500 && !atomic_load(&srv.stop); i++) {
		struct pollfd p = {.fd = c, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		ssize_t k = recv(c, buf + got, cap - 1 - got, 0);
		if (k <= 0)
			return false;
		got += (size_t)k;
		buf[got] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		char *cl = strstr(buf, "Content-Length: ");
		size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
		if ((size_t)(end + 4 - buf) + body <= got)
			return true;
	}
	return false;
}

static void answer(int c, enum answer a)
{
	static const char hello[] = "HTTP/1.1 200 OK\r\n"
				    "Content-Type: text/plain\r\n"
				    "Content-Length: 5\r\n\r\nhello";
	static const char problem[] =
		"HTTP/1.1 404 Not Found\r\n"
		"Content-Type: application/problem+json\r\n"
		"tpwallet-problem:   not-found  \r\n"
		"X-Other: 1\r\n"
		"Content-Length: 15\r\n\r\n{\"status\":404}\n";
	static const char big_length[] = "HTTP/1.1 200 OK\r\n"
					 "Content-Length: 1000000\r\n\r\n";
	char chunk[4096 + 16];

	switch (a) {
	case ANSWER_HELLO: send_text(c, hello, sizeof(hello) - 1); break;
	case ANSWER_PROBLEM: send_text(c, problem, sizeof(problem) - 1); break;
	case ANSWER_BIG_LENGTH:
		send_text(c, big_length, sizeof(big_length) - 1);
		break;
	case ANSWER_BIG_CHUNKS: {
		static const char head[] = "HTTP/1.1 200 OK\r\n"
					   "Transfer-Encoding: chunked\r\n\r\n";
		send_text(c, head, sizeof(head) - 1);
		int n = snprintf(chunk, sizeof(chunk), "1000\r\n");
		memset(chunk + n, 'x', 4096);
		memcpy(chunk + n + 4096, "\r\n", 2);
		for (int i = 0; i < 16; i++)
			send_text(c, chunk, (size_t)n + 4096 + 2);
		send_text(c, "0\r\n\r\n", 5);
		break;
	}
	case ANSWER_BIG_HEAD: {
		static const char head[] = "HTTP/1.1 200 OK\r\n";
		send_text(c, head, sizeof(head) - 1);
		memset(chunk, 'a', 1000);
		memcpy(chunk, "X-Pad: ", 7);
		memcpy(chunk + 1000, "\r\n", 2);
		for (int i = 0; i < 100; i++)
			send_text(c, chunk, 1002);
		send_text(c, "Content-Length: 0\r\n\r\n", 21);
		break;
	}
	case ANSWER_NOTHING: break;
	case ANSWER_REDIRECT:
	case ANSWER_TO_FTP:
	case ANSWER_TO_OTHER: {
		char other[64];
		snprintf(other, sizeof(other), "http://127.0.0.2:%u/x",
			 srv.port);
		int n = snprintf(chunk, sizeof(chunk),
				 "HTTP/1.1 302 Found\r\nLocation: %s\r\n"
				 "Content-Length: 0\r\n\r\n",
				 a == ANSWER_REDIRECT ? "/base/a"
				 : a == ANSWER_TO_FTP ? "ftp://127.0.0.1/x"
						      : other);
		send_text(c, chunk, (size_t)n);
		break;
	}
	}
}

static void *server_main(void *arg)
{
	(void)arg;
	char *req = malloc(sizeof(srv.last));

	/* Until stopped: at most 10^4 polls of 20 ms between connections. */
	for (int i = 0; req && i < 10000 && !atomic_load(&srv.stop); i++) {
		struct pollfd p = {.fd = srv.fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		int c = accept(srv.fd, NULL, NULL);
		if (c < 0)
			continue;
		atomic_fetch_add(&srv.accepted, 1);
		/* Requests on this connection until the peer closes. */
		while (read_request(c, req, sizeof(srv.last))) {
			pthread_mutex_lock(&srv.lock);
			memcpy(srv.last, req, sizeof(srv.last));
			pthread_mutex_unlock(&srv.lock);
			atomic_fetch_add(&srv.requests, 1);
			enum answer a = (enum answer)atomic_load(&srv.answer);
			if (a == ANSWER_NOTHING && srv.cancel_on_request)
				atomic_store(srv.cancel_on_request, true);
			answer(c, a);
		}
		close(c);
	}
	free(req);
	return NULL;
}

static int setup(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);

	(void)state;
	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv.fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv.fd, 16), 0);
	assert_int_equal(getsockname(srv.fd, (struct sockaddr *)&sa, &sl), 0);
	srv.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&srv.thread, NULL, server_main, NULL),
			 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	atomic_store(&srv.stop, true);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	pthread_mutex_destroy(&srv.lock);
	return 0;
}

static struct http_client *open_client(const struct http_options *opt)
{
	char url[64];
	struct http_client *c = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/base", srv.port);
	assert_int_equal(http_client_open(&c, url, opt), 0);
	return c;
}

static void last_request(char *out, size_t cap)
{
	pthread_mutex_lock(&srv.lock);
	snprintf(out, cap, "%s", srv.last);
	pthread_mutex_unlock(&srv.lock);
}

static void
two_requests_share_one_connection_and_send_only_what_is_asked(void **state)
{
	struct http_client *c = open_client(NULL);
	struct http_header h[] = {{"Authorization", "Bearer s3cret"}};
	struct http_request get = {.method = "GET", .target = "/a?x=1"};
	struct http_request post = {
		.method = "POST", .target = "/b", .headers = h, .nheaders = 1};
	struct http_response r = {0};
	char seen[8192];

	(void)state;
	atomic_store(&srv.answer, ANSWER_HELLO);
	assert_int_equal(http_client_do(c, &get, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.minor_version, 1);
	assert_string_equal(r.reason, "OK");
	assert_string_equal(r.content_type, "text/plain");
	assert_int_equal(r.body_len, 5);
	assert_string_equal(r.body, "hello");
	last_request(seen, sizeof(seen));
	char host[64];
	snprintf(host, sizeof(host),
		 "GET /base/a?x=1 HTTP/1.1\r\n"
		 "Host: 127.0.0.1:%u\r\n",
		 srv.port);
	assert_memory_equal(seen, host, strlen(host));
	assert_null(strstr(seen, "Content-Length"));
	http_response_clear(&r);

	/* A POST without a body says Content-Length: 0, and nothing of
	 * libcurl's own (no Expect, no form Content-Type). */
	assert_int_equal(http_client_do(c, &post, &r), 0);
	assert_int_equal(r.status, 200);
	last_request(seen, sizeof(seen));
	assert_memory_equal(seen, "POST /base/b HTTP/1.1\r\n", 23);
	assert_non_null(strstr(seen, "\r\nAuthorization: Bearer s3cret\r\n"));
	assert_non_null(strstr(seen, "\r\nContent-Length: 0\r\n"));
	assert_null(strstr(seen, "Expect"));
	assert_null(strstr(seen, "Content-Type"));
	http_response_clear(&r);
	assert_int_equal(atomic_load(&srv.requests), 2);
	assert_int_equal(atomic_load(&srv.accepted), 1);
	http_client_close(c);
}

static void a_non_2xx_answer_is_an_answer_with_its_status(void **state)
{
	struct http_client *c = open_client(NULL);
	struct http_request req = {.method = "PUT",
				   .target = "/p",
				   .body = "{}",
				   .body_len = 2,
				   .has_body = true};
	struct http_response r = {0};
	char seen[8192];

	(void)state;
	atomic_store(&srv.answer, ANSWER_PROBLEM);
	assert_int_equal(http_client_do(c, &req, &r), 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.reason, "Not Found");
	assert_string_equal(r.content_type, "application/problem+json");
	assert_string_equal(r.body, "{\"status\":404}\n");
	last_request(seen, sizeof(seen));
	assert_memory_equal(seen, "PUT /base/p HTTP/1.1\r\n", 22);
	assert_non_null(strstr(seen, "\r\nContent-Length: 2\r\n\r\n{}"));
	http_response_clear(&r);
	http_client_close(c);
}

static void only_the_asked_answer_headers_are_captured(void **state)
{
	struct http_client *c = open_client(NULL);
	static const char *const names[] = {"Tpwallet-Problem",
					    "X-Client-Policy", "X-Other"};
	struct http_request req = {.method = "GET",
				   .target = "/p",
				   .capture = names,
				   .ncapture = 2};
	struct http_response r = {0};

	(void)state;
	atomic_store(&srv.answer, ANSWER_PROBLEM);
	assert_int_equal(http_client_do(c, &req, &r), 0);
	assert_int_equal(r.status, 404);
	/* Matched whatever its case, trimmed; an absent one is unseen. */
	assert_true(r.captured_seen[0]);
	assert_string_equal(r.captured[0], "not-found");
	assert_false(r.captured_seen[1]);
	assert_string_equal(r.captured[1], "");
	/* X-Other was not asked for (ncapture 2): nothing lands past it. */
	assert_false(r.captured_seen[2]);
	http_response_clear(&r);

	/* More names than HTTP_CAPTURE_MAX, or a name that is not a
	 * token, is refused before sending. */
	static const char *const many[HTTP_CAPTURE_MAX + 1] = {"A", "B", "C",
							       "D", "E"};
	struct http_request too_many = {.method = "GET",
					.target = "/p",
					.capture = many,
					.ncapture = HTTP_CAPTURE_MAX + 1};
	assert_int_equal(http_client_do(c, &too_many, &r),
			 -HTTP_invalid_argument);
	static const char *const bad[] = {"Bad Name"};
	struct http_request bad_name = {
		.method = "GET", .target = "/p", .capture = bad, .ncapture = 1};
	assert_int_equal(http_client_do(c, &bad_name, &r),
			 -HTTP_invalid_argument);
	http_response_clear(&r);
	http_client_close(c);
}

static void a_body_over_the_limit_is_refused(void **state)
{
	struct http_options opt = {.body_bytes_max = 1024};
	struct http_client *c = open_client(&opt);
	struct http_request req = {.method = "GET", .target = "/"};
	struct http_response r = {0};

	(void)state;
	/* Announced by Content-Length: refused before any body byte. */
	atomic_store(&srv.answer, ANSWER_BIG_LENGTH);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_body_too_large);
	assert_int_equal(r.status, 0);
	assert_null(r.body);
	/* Chunked, so only counting the bytes finds it. */
	atomic_store(&srv.answer, ANSWER_BIG_CHUNKS);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_body_too_large);
	assert_null(r.body);
	http_response_clear(&r);
	http_client_close(c);

	/* The same chunked answer under the default cap is read whole. */
	c = open_client(NULL);
	assert_int_equal(http_client_do(c, &req, &r), 0);
	assert_int_equal(r.body_len, 16 * 4096);
	http_response_clear(&r);
	http_client_close(c);
}

static void headers_over_the_limit_are_refused(void **state)
{
	struct http_options opt = {.head_bytes_max = 16 * 1024};
	struct http_client *c = open_client(&opt);
	struct http_request req = {.method = "GET", .target = "/"};
	struct http_response r = {0};

	(void)state;
	atomic_store(&srv.answer, ANSWER_BIG_HEAD);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_head_too_large);
	http_client_close(c);
}

static void a_silent_server_costs_the_deadline_and_no_more(void **state)
{
	struct http_options opt = {.total_timeout_ms = 300};
	struct http_client *c = open_client(&opt);
	struct http_request req = {.method = "GET", .target = "/"};
	struct http_response r = {0};

	(void)state;
	atomic_store(&srv.answer, ANSWER_NOTHING);
	uint64_t t0 = now_ms();
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_timeout);
	uint64_t took = now_ms() - t0;
	assert_true(took >= 290 && took < 1000);
	http_client_close(c);
}

static void a_cancel_flag_ends_the_wait_at_once(void **state)
{
	static _Atomic bool cancel;
	struct http_client *c = open_client(NULL); /* 10 s deadline */
	struct http_request req = {
		.method = "GET", .target = "/", .cancel = &cancel};
	struct http_response r = {0};

	(void)state;
	atomic_store(&cancel, false);
	srv.cancel_on_request = &cancel;
	atomic_store(&srv.answer, ANSWER_NOTHING);
	uint64_t t0 = now_ms();
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_canceled);
	assert_true(now_ms() - t0 < 1000);
	http_client_close(c);
}

static void
redirects_are_followed_only_when_asked_and_only_to_http(void **state)
{
	struct http_options follow = {.redirects_max = 2};
	struct http_client *c = open_client(NULL);
	struct http_request req = {.method = "GET", .target = "/"};
	struct http_response r = {0};

	(void)state;
	atomic_store(&srv.answer, ANSWER_REDIRECT);
	assert_int_equal(http_client_do(c, &req, &r), 0);
	assert_int_equal(r.status, 302);
	assert_int_equal(atomic_load(&srv.requests), 1);
	http_response_clear(&r);
	http_client_close(c);

	c = open_client(&follow);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_too_many_redirects);
	assert_int_equal(atomic_load(&srv.requests), 1 + 3);
	atomic_store(&srv.answer, ANSWER_TO_FTP);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_unsupported_scheme);
	http_client_close(c);
}

static void only_http_and_https_urls_are_accepted(void **state)
{
	static const char *const other[] = {
		"ftp://127.0.0.1:21/", "file:///etc/passwd",
		"gopher://127.0.0.1:70", "dict://127.0.0.1:2628",
		"ldap://127.0.0.1"};
	static const char *const bad[] = {
		"127.0.0.1:8080",	   "http://",
		"http://u:p@127.0.0.1:1/", "http://127.0.0.1:1/?q=1",
		"http://127.0.0.1:1/#f",   "http://127.0.0.1:0/",
		"http://127.0.0.1:65536/", "http://127.0.0.1 :1/"};
	struct http_client *c = NULL;
	struct http_url u;

	(void)state;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		assert_int_equal(http_client_open(&c, other[i], NULL),
				 -HTTP_unsupported_scheme);
		assert_null(c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http_url_parse(bad[i], &u), -HTTP_bad_url);
	assert_int_equal(http_url_parse("https://[::1]/api/", &u), 0);
	assert_true(u.tls);
	assert_string_equal(u.host, "[::1]");
	assert_int_equal(u.port, 443);
	assert_string_equal(u.prefix, "/api");
	assert_string_equal(u.origin, "https://[::1]:443");
	assert_int_equal(http_url_parse("HTTP://Example.COM:8080", &u), 0);
	assert_false(u.tls);
	assert_string_equal(u.prefix, "");
	assert_string_equal(u.origin, "http://Example.COM:8080");
}

static void invalid_requests_are_refused_before_sending(void **state)
{
	struct http_client *c = open_client(NULL);
	struct http_header crlf[] = {{"X-A", "a\r\nX-B: b"}};
	struct http_header name[] = {{"X A", "b"}};
	const struct http_request bad[] = {
		{.method = "G T", .target = "/"},
		{.method = "GET", .target = "no-slash"},
		{.method = "GET", .target = "/a b"},
		{.method = "GET",
		 .target = "/",
		 .headers = crlf,
		 .nheaders = 1},
		{.method = "GET",
		 .target = "/",
		 .headers = name,
		 .nheaders = 1},
	};
	struct http_response r = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http_client_do(c, &bad[i], &r),
				 -HTTP_invalid_argument);
	assert_int_equal(atomic_load(&srv.accepted), 0);
	http_client_close(c);
}

static void a_closed_port_is_a_connect_error(void **state)
{
	struct http_client *c = NULL;
	struct http_request req = {.method = "GET", .target = "/"};
	struct http_response r = {0};
	char url[64];
	/* A port that was just free: bound, then closed. */
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u",
		 (unsigned)ntohs(sa.sin_port));
	assert_int_equal(http_client_open(&c, url, NULL), 0);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_connect);
	assert_int_equal(r.os_errno, 111 /* ECONNREFUSED */);
	assert_string_equal(http_err_name(-HTTP_connect), "connect");
	assert_string_equal(http_err_desc(-HTTP_connect),
			    "cannot connect to the server");
	http_client_close(c);
}

/* An address literal with a port as a sockaddr (IPv6 when it has ':'). */
static const struct sockaddr *addr(const char *a, unsigned port,
				   struct sockaddr_in6 *buf)
{
	memset(buf, 0, sizeof(*buf));
	if (strchr(a, ':')) {
		buf->sin6_family = AF_INET6;
		buf->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, a, &buf->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)buf;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, a, &in->sin_addr), 1);
	}
	return (const struct sockaddr *)(const void *)buf;
}

static void private_addresses_are_classed_and_public_ones_are_not(void **s)
{
	static const struct {
		const char *addr, *cls;
	} cases[] = {
		{"127.0.0.1", "loopback"},
		{"127.9.9.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "link_local"},
		{"fe80::1", "link_local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"100.64.0.1", "private"},
		{"fd00::1", "private"},
		{"fc00::1", "private"},
		{"8.8.8.8", NULL},
		{"172.32.0.1", NULL},
		{"100.128.0.1", NULL},
		{"2001:db8::1", NULL},
		{"::ffff:8.8.8.8", NULL},
		/* The tenth review's F6: IPv6 forms carrying an IPv4
		 * address, and the other special IPv4 blocks. */
		{"64:ff9b::a9fe:a9fe", "link_local"},
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::808:808", NULL},
		{"64:ff9b:1::1", "private"},
		{"::a9fe:a9fe", "link_local"},
		{"::7f00:1", "loopback"},
		{"2002:7f00:1::1", "loopback"},
		{"2002:a00:1::1", "private"},
		{"2002:808:808::1", NULL},
		{"198.18.0.1", "private"},
		{"198.19.255.255", "private"},
		{"198.20.0.1", NULL},
		{"192.0.0.8", "private"},
		{"192.0.2.1", NULL},
	};
	struct sockaddr_in6 b;

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *c =
			http_addr_class(addr(cases[i].addr, 80, &b), NULL);
		if (cases[i].cls)
			assert_string_equal(c, cases[i].cls);
		else
			assert_null(c);
	}
}

static void rules_cover_what_they_name_and_nothing_else(void **s)
{
	static const char *const rules[] = {"10.0.0.0/8", "192.168.1.5:8443",
					    "[fd00::7]:443", "witness.lan",
					    "gw.lan:9000"};
	/* host, address, port, refused and why ("" when not checked) */
	static const struct {
		const char *host, *addr;
		unsigned port;
		bool refused;
		const char *why;
	} cases[] = {
		{"a", "10.9.8.7", 1, false, ""},
		{"a", "192.168.1.5", 8443, false, ""},
		{"a", "192.168.1.5", 8444, true,
		 "a (192.168.1.5:8444) is private; no outbound_allow rule "
		 "covers it"},
		{"x", "fd00::7", 443, false, ""},
		{"WITNESS.lan", "127.0.0.1", 5, false, ""},
		/* 10/8 covers it whatever the name and port */
		{"gw.lan", "10.0.0.1", 9001, false, ""},
		{"gw.lan", "172.16.0.1", 9001, true, ""},
		{"other.lan", "::1", 80, true,
		 "other.lan ([::1]:80) is loopback; no outbound_allow rule "
		 "covers it"},
		/* A public address needs no rule. */
		{"example.com", "93.184.216.34", 443, false, ""},
	};
	struct sockaddr_in6 b;
	char why[HTTP_REFUSED_BYTES], err[400];
	const size_t n = sizeof(rules) / sizeof(rules[0]);

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret =
			http_allow_judge(rules, n, cases[i].host,
					 addr(cases[i].addr, cases[i].port, &b),
					 why, sizeof(why));
		assert_int_equal(ret,
				 cases[i].refused ? -HTTP_outbound_refused : 0);
		if (cases[i].why[0])
			assert_string_equal(why, cases[i].why);
	}
	static const char *const bad[] = {"",	     "10.0.0.0/33", "[fd00::1",
					  "a:0",     "a:70000",	    "a b",
					  "::1/129", "[::1]:x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
			http_allow_rule_check(bad[i], err, sizeof(err)),
			-HTTP_invalid_argument);
	assert_int_equal(http_allow_rule_check("::1", err, sizeof(err)), 0);
	assert_int_equal(http_allow_rule_check("fe80::/10", err, sizeof(err)),
			 0);
}

/* Last: once on, the allow-list stays on for the process. */
static void
the_allow_list_is_checked_on_each_connection_and_redirect(void **state)
{
	static const char *const port_only[] = {"127.0.0.1"};
	struct http_options follow = {.redirects_max = 2};
	struct http_request req = {.method = "GET", .target = "/"};
	struct http_response r = {0};
	unsigned long long before[HTTP_ADDR_CLASS_COUNT],
		after[HTTP_ADDR_CLASS_COUNT];
	char err[400], last[HTTP_REFUSED_BYTES], url[64], want[128];
	struct http_client *c;

	(void)state;
	http_outbound_refusals(before, NULL, 0);
	/* No rule: 127.0.0.1 is refused before any connection, by name too
	 * (localhost resolves to a loopback address). */
	assert_int_equal(http_outbound_allow(NULL, 0, err, sizeof(err)), 0);
	atomic_store(&srv.answer, ANSWER_HELLO);
	c = open_client(NULL);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_outbound_refused);
	snprintf(want, sizeof(want),
		 "127.0.0.1 (127.0.0.1:%u) is loopback; no outbound_allow rule "
		 "covers it",
		 srv.port);
	assert_string_equal(r.refused, want);
	http_response_clear(&r);
	http_client_close(c);
	snprintf(url, sizeof(url), "http://localhost:%u", srv.port);
	assert_int_equal(http_client_open(&c, url, NULL), 0);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_outbound_refused);
	http_client_close(c);
	assert_int_equal(atomic_load(&srv.accepted), 0);
	http_outbound_refusals(after, last, sizeof(last));
	assert_true(after[0] >= before[0] + 2);
	assert_non_null(strstr(last, "is loopback"));

	/* Allowed: the request goes; a redirect to another loopback address
	 * is judged again and refused. */
	assert_int_equal(http_outbound_allow(port_only, 1, err, sizeof(err)),
			 0);
	c = open_client(&follow);
	assert_int_equal(http_client_do(c, &req, &r), 0);
	assert_int_equal(r.status, 200);
	http_response_clear(&r);
	atomic_store(&srv.answer, ANSWER_TO_OTHER);
	assert_int_equal(http_client_do(c, &req, &r), -HTTP_outbound_refused);
	assert_non_null(strstr(r.refused, "127.0.0.2 (127.0.0.2:"));
	assert_int_equal(atomic_load(&srv.requests), 2);
	http_client_close(c);
	static const char *const bad[] = {"127.0.0.1", "no such/rule"};
	assert_int_equal(http_outbound_allow(bad, 2, err, sizeof(err)),
			 -HTTP_invalid_argument);
	assert_non_null(strstr(err, "\"no such/rule\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			two_requests_share_one_connection_and_send_only_what_is_asked,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_non_2xx_answer_is_an_answer_with_its_status, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			only_the_asked_answer_headers_are_captured, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			a_body_over_the_limit_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
			headers_over_the_limit_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_silent_server_costs_the_deadline_and_no_more, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			a_cancel_flag_ends_the_wait_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
			redirects_are_followed_only_when_asked_and_only_to_http,
			setup, teardown),
		cmocka_unit_test(only_http_and_https_urls_are_accepted),
		cmocka_unit_test_setup_teardown(
			invalid_requests_are_refused_before_sending, setup,
			teardown),
		cmocka_unit_test(a_closed_port_is_a_connect_error),
		cmocka_unit_test(
			private_addresses_are_classed_and_public_ones_are_not),
		cmocka_unit_test(rules_cover_what_they_name_and_nothing_else),
		cmocka_unit_test_setup_teardown(
			the_allow_list_is_checked_on_each_connection_and_redirect,
			setup, teardown),
	};

	if (http_global_init() != 0)
		return 1;
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	http_global_cleanup();
	return failed;
}
