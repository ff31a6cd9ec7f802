/*
 * test_engine_logger.c - the JSON lines of engine/logger: the exact shape
 * of a line (timestamp, level, escaped strings, negative and large
 * numbers, null), and in async mode that buffered info lines and
 * immediate warnings come out in the order they were logged, none lost,
 * when more lines are logged than the two buffers hold.  stderr is
 * redirected to a temporary file for each test.
 */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/logger.h"

#include "banned.h"

struct capture {
	char path[64];
	int saved;
};

static int capture_setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "/tmp/tpw-logger-XXXXXX");
	int fd = mkstemp(c->path);
	if (fd < 0)
		return -1;
	c->saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	logger_set_level(LOG_DEBUG);
	*state = c;
	return 0;
}

static int capture_teardown(void **state)
{
	struct capture *c = *state;
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	unlink(c->path);
	free(c);
	logger_set_level(LOG_INFO);
	return 0;
}

/* The captured text, NUL-terminated; *len its length. */
static char *captured(const struct capture *c, size_t *len)
{
	FILE *f = fopen(c->path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void a_line_has_the_documented_shape(void **state)
{
	size_t len;

	log_at(LOG_WARN, "say \"hi\"\\", LOG_STR("k\n", "tab\there\x01\x7f"),
	       LOG_NUM("neg", -42), LOG_NUM("min", LLONG_MIN),
	       LOG_NUM("zero", 0), LOG_STR("none", NULL));
	char *t = captured(*state, &len);
	/* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ", then the fixed rest */
	assert_true(len > 32);
	assert_memory_equal(t, "{\"ts\":\"", 7);
	for (int i = 7; i < 7 + 23; i++) {
		char ch = t[i];
		if (i == 11 || i == 14)
			assert_int_equal(ch, '-');
		else if (i == 17)
			assert_int_equal(ch, 'T');
		else if (i == 20 || i == 23)
			assert_int_equal(ch, ':');
		else if (i == 26)
			assert_int_equal(ch, '.');
		else
			assert_true(ch >= '0' && ch <= '9');
	}
	assert_string_equal(
		t + 30, "Z\",\"level\":\"warn\",\"msg\":\"say \\\"hi\\\"\\\\\","
			"\"k\\u000a\":\"tab\\u0009here\\u0001\\u007f\","
			"\"neg\":-42,\"min\":-9223372036854775808,\"zero\":0,"
			"\"none\":null}\n");
	free(t);
}

static void lines_below_the_level_are_dropped(void **state)
{
	size_t len;

	logger_set_level(LOG_WARN);
	log_at(LOG_INFO, "dropped", LOG_NUM("n", 1));
	log_at(LOG_ERROR, "kept", LOG_NUM("n", 2));
	char *t = captured(*state, &len);
	assert_null(strstr(t, "dropped"));
	assert_non_null(strstr(t, "\"level\":\"error\",\"msg\":\"kept\""));
	assert_non_null(strchr(t, '\n'));
	assert_int_equal(strchr(t, '\n') - t + 1, (long)len);
	free(t);
}

/* 20,000 lines of about 130 bytes: several times the two 256 KiB
 * buffers, so the request thread's path when both are full runs too. */
#define MANY 20000

static void async_lines_keep_their_order(void **state)
{
	size_t len;

	assert_int_equal(logger_start_async(), 0);
	for (int i = 0; i < MANY; i++) {
		if (i % 5000 == 4999)
			log_at(LOG_WARN, "now", LOG_NUM("i", i));
		else
			log_at(LOG_INFO, "request", LOG_NUM("i", i),
			       LOG_STR("pad",
				       "................................"
				       "................................"));
	}
	logger_stop_async();
	char *t = captured(*state, &len);
	const char *p = t;
	for (int i = 0; i < MANY; i++) {
		char want[48], line[512];
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		assert_true((size_t)(nl - p) < sizeof(line));
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		snprintf(want, sizeof(want), "\"i\":%d%c", i,
			 i % 5000 == 4999 ? '}' : ',');
		assert_non_null(strstr(line, want));
		assert_non_null(strstr(line, i % 5000 == 4999
						     ? "\"level\":\"warn\""
						     : "\"level\":\"info\""));
		p = nl + 1;
	}
	assert_int_equal(*p, '\0');
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_line_has_the_documented_shape,
						capture_setup,
						capture_teardown),
		cmocka_unit_test_setup_teardown(
			lines_below_the_level_are_dropped, capture_setup,
			capture_teardown),
		cmocka_unit_test_setup_teardown(async_lines_keep_their_order,
						capture_setup,
						capture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
