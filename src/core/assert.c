/*
 * assert.c - the failure path of TPW_ASSERT (core/assert.h).
 *
 * One write to stderr and abort(): no allocation and no logger (core sits
 * below the logger), so it works whatever state the process is in.
 */
#include "core/assert.h"

#include <stdio.h>
#include <stdlib.h>

#include "banned.h"

void tpw_assert_fail(const char *file, int line, const char *cond)
{
	fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, cond);
	fflush(stderr);
	abort();
}
