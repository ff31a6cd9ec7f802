/*
 * test_engine_trace.c - engine/trace.h without an exporter: W3C
 * traceparent parsing and formatting (the whole context: trace id,
 * parent id, flags), the OTEL_TRACES_SAMPLER names and argument, the
 * endpoint URL rule of OTLP/HTTP, and that nothing is recorded while
 * tracing is not started.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "engine/trace.h"

#include "banned.h"

static const char w3c_example[] =
	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void traceparent_gives_the_whole_context(void **state)
{
	(void)state;
	struct trace_context c;
	char hex[33], back[TRACEPARENT_BYTES + 1];

	assert_true(trace_parse_traceparent(w3c_example, &c));
	trace_hex(c.trace_id, 16, hex);
	assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
	trace_hex(c.span_id, 8, hex);
	assert_string_equal(hex, "00f067aa0ba902b7");
	assert_int_equal(c.flags, TRACE_FLAG_SAMPLED);
	trace_format_traceparent(&c, back);
	assert_string_equal(back, w3c_example);

	/* Not sampled; unknown flag bits are kept as they came. */
	assert_true(trace_parse_traceparent(
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c));
	assert_int_equal(c.flags, 0);
	assert_true(trace_parse_traceparent(
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", &c));
	assert_int_equal(c.flags, 0xff);
	/* A later version: its first four fields, more after a dash. */
	assert_true(trace_parse_traceparent(
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz",
		&c));
	assert_true(trace_context_valid(&c));
}

static void bad_traceparents_leave_the_context_alone(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
		"0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct trace_context c;
		memset(&c, 0x5a, sizeof(c));
		if (trace_parse_traceparent(bad[i], &c))
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(c.flags, 0x5a);
	}
}

static void sampler_names_are_opentelemetrys(void **state)
{
	(void)state;
	struct trace_options o;

	assert_int_equal(trace_sampler_parse(NULL, NULL, &o), 0);
	assert_int_equal(o.sampler, TRACE_SAMPLER_ALWAYS_ON);
	assert_true(o.parent_based);
	assert_int_equal(
		trace_sampler_parse("parentbased_traceidratio", "0.25", &o), 0);
	assert_int_equal(o.sampler, TRACE_SAMPLER_RATIO);
	assert_true(o.parent_based);
	assert_true(o.ratio == 0.25);
	assert_int_equal(trace_sampler_parse("always_off", NULL, &o), 0);
	assert_int_equal(o.sampler, TRACE_SAMPLER_ALWAYS_OFF);
	assert_false(o.parent_based);
	assert_int_equal(trace_sampler_parse("traceidratio", "", &o), 0);
	assert_true(o.ratio == 1.0);
	assert_int_equal(trace_sampler_parse("sometimes", NULL, &o), -EINVAL);
	assert_int_equal(trace_sampler_parse("traceidratio", "1.5", &o),
			 -EINVAL);
	assert_int_equal(trace_sampler_parse("traceidratio", "-0.1", &o),
			 -EINVAL);
	assert_int_equal(trace_sampler_parse("traceidratio", "0.5x", &o),
			 -EINVAL);
	assert_int_equal(trace_sampler_parse("traceidratio", "nan", &o),
			 -EINVAL);
}

static void
the_endpoint_gets_v1_traces_the_traces_endpoint_does_not(void **state)
{
	(void)state;
	char url[256];

	trace_endpoint_url("http://127.0.0.1:4318", NULL, url, sizeof(url));
	assert_string_equal(url, "http://127.0.0.1:4318/v1/traces");
	trace_endpoint_url("http://collector:4318/otlp/", "", url, sizeof(url));
	assert_string_equal(url, "http://collector:4318/otlp/v1/traces");
	trace_endpoint_url("http://a:1", "http://b:2/custom", url, sizeof(url));
	assert_string_equal(url, "http://b:2/custom");
	trace_endpoint_url(NULL, NULL, url, sizeof(url));
	assert_string_equal(url, "");
}

static void nothing_is_recorded_before_start(void **state)
{
	(void)state;
	struct trace_context parent;
	struct trace_span s;

	assert_false(trace_enabled());
	assert_true(trace_parse_traceparent(w3c_example, &parent));
	assert_false(trace_span_begin(&s, &parent, "x", TRACE_KIND_SERVER));
	assert_false(trace_context_valid(&s.ctx));
	u64 exported, dropped;
	trace_span_end(&s);
	trace_counts(&exported, &dropped);
	assert_int_equal(exported, 0);
	assert_int_equal(dropped, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(traceparent_gives_the_whole_context),
		cmocka_unit_test(bad_traceparents_leave_the_context_alone),
		cmocka_unit_test(sampler_names_are_opentelemetrys),
		cmocka_unit_test(
			the_endpoint_gets_v1_traces_the_traces_endpoint_does_not),
		cmocka_unit_test(nothing_is_recorded_before_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
