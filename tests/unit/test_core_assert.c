/*
 * test_core_assert.c - TPW_ASSERT: a true condition costs nothing and
 * evaluates once; a false one prints file:line and the condition on stderr
 * and aborts, in this build as in every other (NDEBUG does not matter).
 */
#define NDEBUG 1 /* TPW_ASSERT must stay on anyway */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/assert.h"

#include "banned.h"

static void a_true_condition_is_evaluated_once_and_passes(void **state)
{
	(void)state;
	int calls = 0;
	TPW_ASSERT(++calls == 1);
	assert_int_equal(calls, 1);
}

/* Fails an assertion; FAIL_LINE is the line it is on. */
// clang-format off
enum { FAIL_LINE = __LINE__ }; static void break_it(int two) { TPW_ASSERT(two == 3); }
// clang-format on

static void a_false_condition_reports_where_and_aborts(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		break_it(2);
		_exit(0);
	}
	close(fds[1]);
	char out[256] = "";
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(out) - 1 &&
	       (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	char want[128];
	snprintf(want, sizeof(want),
		 "tests/unit/test_core_assert.c:%d: assertion failed: two == "
		 "3\n",
		 (int)FAIL_LINE);
	assert_string_equal(out, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_true_condition_is_evaluated_once_and_passes),
		cmocka_unit_test(a_false_condition_reports_where_and_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
