/*
 * test_net_cdcsink.c - sink URLs (net/cdcsink.h): both kinds with their
 * parts and defaults; each refusal names the part that is wrong; a
 * password in the URL is refused; a URL formats back to what it parsed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/cdcsink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

static void an_amqp_url_gives_its_parts(void **state)
{
	(void)state;
	struct cdc_sink_url u;
	char err[CDC_SINK_ERR_BYTES], back[512];

	assert_int_equal(cdc_sink_url_parse("amqp://cdc@127.0.0.1:5672/prod?"
					    "exchange=tpw.events&queue=ledger",
					    &u, err, sizeof(err)),
			 0);
	assert_int_equal(u.kind, CDC_SINK_AMQP);
	assert_string_equal(u.user, "cdc");
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 5672);
	assert_string_equal(u.vhost, "prod");
	assert_string_equal(u.exchange, "tpw.events");
	assert_string_equal(u.queue, "ledger");
	cdc_sink_url_format(&u, back, sizeof(back));
	assert_string_equal(back, "amqp://cdc@127.0.0.1:5672/prod?"
				  "exchange=tpw.events&queue=ledger");

	/* No user, vhost "/", no queue. */
	assert_int_equal(cdc_sink_url_parse("amqp://localhost:1?exchange=x", &u,
					    err, sizeof(err)),
			 0);
	assert_string_equal(u.user, "");
	assert_string_equal(u.vhost, "/");
	assert_string_equal(u.queue, "");
	cdc_sink_url_format(&u, back, sizeof(back));
	assert_string_equal(back, "amqp://localhost:1?exchange=x");
}

static void a_nats_url_gives_its_parts(void **state)
{
	(void)state;
	struct cdc_sink_url u;
	char err[CDC_SINK_ERR_BYTES], back[512];

	assert_int_equal(cdc_sink_url_parse("nats://10.0.0.1:4222?stream=TPW&"
					    "subject=tpw.ledger",
					    &u, err, sizeof(err)),
			 0);
	assert_int_equal(u.kind, CDC_SINK_NATS);
	assert_string_equal(u.stream, "TPW");
	assert_string_equal(u.subject, "tpw.ledger");
	cdc_sink_url_format(&u, back, sizeof(back));
	assert_string_equal(
		back, "nats://10.0.0.1:4222?stream=TPW&subject=tpw.ledger");
}

static void each_refusal_names_its_part(void **state)
{
	(void)state;
	static const struct {
		const char *url, *part;
	} bad[] = {
		{"http://h:1?exchange=x", "scheme: "},
		{"amqp://h?exchange=x", "host: "},
		{"amqp://:5672?exchange=x", "host: "},
		{"amqp://h:0?exchange=x", "port: "},
		{"amqp://h:65536?exchange=x", "port: "},
		{"amqp://h:12a?exchange=x", "port: "},
		{"amqp://h:1", "exchange: "},
		{"amqp://h:1?exchange=", "exchange: "},
		{"amqp://h:1?exchange=a&exchange=b", "exchange: "},
		{"amqp://h:1?exchange=a b", "exchange: "},
		{"amqp://h:1?exchange=x&stream=S", "query: "},
		{"amqp://h:1?exchange", "query: "},
		{"amqp://u:secret@h:1?exchange=x", "password: "},
		{"amqp://u ser@h:1?exchange=x", "user: "},
		{"amqp://h:1/v host?exchange=x", "vhost: "},
		{"nats://h:1/x?stream=S&subject=s", "path: "},
		{"nats://h:1?subject=s", "stream: "},
		{"nats://h:1?stream=S", "subject: "},
		{"nats://h:1?stream=S.T&subject=s", "stream: "},
		{"nats://h:1?stream=S&subject=a.>", "subject: "},
		{"nats://h:1?stream=S&subject=a..b", "subject: "},
		{"nats://h:1?stream=S&subject=.a", "subject: "},
		{"nats://h:1?stream=S&subject=a.", "subject: "},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cdc_sink_url u;
		char err[CDC_SINK_ERR_BYTES] = "";
		int r = cdc_sink_url_parse(bad[i].url, &u, err, sizeof(err));
		if (r != -EINVAL ||
		    strncmp(err, bad[i].part, strlen(bad[i].part)) != 0)
			fail_msg("%s: %d \"%s\", want \"%s...\"", bad[i].url, r,
				 err, bad[i].part);
		assert_null(strstr(err, "secret"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_amqp_url_gives_its_parts),
		cmocka_unit_test(a_nats_url_gives_its_parts),
		cmocka_unit_test(each_refusal_names_its_part),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
