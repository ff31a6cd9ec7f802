/*
 * test_core_strerror.c - tpw_strerror gives glibc's English text for a
 * known errno whatever the locale, and one fixed text for an unknown one.
 */
#include <errno.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/strerror.h"

#include "banned.h"

static void known_values_give_their_text(void **state)
{
	(void)state;
	assert_string_equal(tpw_strerror(0), "Success");
	assert_string_equal(tpw_strerror(ENOENT), "No such file or directory");
	assert_string_equal(tpw_strerror(EACCES), "Permission denied");
	assert_string_equal(tpw_strerror(ENOSPC), "No space left on device");
}

static void unknown_values_give_one_text(void **state)
{
	(void)state;
	assert_string_equal(tpw_strerror(-ENOENT), "Unknown error");
	assert_string_equal(tpw_strerror(100000), "Unknown error");
}

static void the_same_pointer_every_time(void **state)
{
	(void)state;
	/* A constant table entry: nothing for another call to overwrite. */
	const char *a = tpw_strerror(EIO);
	assert_ptr_equal(tpw_strerror(EIO), a);
	assert_string_equal(a, "Input/output error");
}

int main(void)
{
	setlocale(LC_ALL, "");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_values_give_their_text),
		cmocka_unit_test(unknown_values_give_one_text),
		cmocka_unit_test(the_same_pointer_every_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
