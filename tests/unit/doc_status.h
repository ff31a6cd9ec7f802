/*
 * doc_status.h - the status a document's table gives a name, for unit
 * tests that hold a code table to the docs: the row
 * "| `<name>` | <status> |" of a markdown file read from the top of the
 * tree (where the unit tests run).  Each name must have exactly one row
 * and a three-digit status; anything else fails the test.  Include after
 * <cmocka.h>.
 */
#ifndef TPW_TEST_DOC_STATUS_H
#define TPW_TEST_DOC_STATUS_H

#include <stdio.h>
#include <string.h>

static unsigned doc_status(const char *path, const char *name)
{
	static char doc[1 << 17];
	static char loaded[64];
	if (strcmp(loaded, path) != 0) {
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		size_t len = fread(doc, 1, sizeof(doc) - 1, f);
		assert_true(len > 0 && len < sizeof(doc) - 1);
		assert_int_equal(fclose(f), 0);
		doc[len] = '\0';
		int n = snprintf(loaded, sizeof(loaded), "%s", path);
		assert_true(n > 0 && (size_t)n < sizeof(loaded));
	}
	char row[96];
	int n = snprintf(row, sizeof(row), "\n| `%s` | ", name);
	assert_true(n > 0 && (size_t)n < sizeof(row));
	const char *at = strstr(doc, row);
	assert_non_null(at);
	assert_null(strstr(at + 1, row));
	at += n;
	unsigned st = 0;
	int digits = 0;
	for (; *at >= '0' && *at <= '9' && digits < 4; at++, digits++)
		st = st * 10 + (unsigned)(*at - '0');
	assert_int_equal(digits, 3);
	assert_int_equal(strncmp(at, " |", 2), 0);
	return st;
}

#endif
