/*
 * tmpdir_fixture.h - a fresh directory under /tmp for each test (cmocka
 * setup and teardown, removed with everything in it), and a clock a test
 * steps (engine_options.clock) instead of sleeping.  A test file defines
 * its setup as tmpdir_setup(state, "/tmp/tpw-NAME-XXXXXX") and uses
 * tmpdir_teardown; the test reads the directory as
 * ((struct fixture *)*state)->dir.  Include after <cmocka.h>.
 */
#ifndef TPW_TEST_TMPDIR_FIXTURE_H
#define TPW_TEST_TMPDIR_FIXTURE_H

#include "core/types.h"
#include "log/fsdir.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct fixture {
	char dir[256];
};

static inline int tmpdir_setup(void **state, const char *template)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s", template);
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static inline int tmpdir_teardown(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(fsdir_remove_tree(f->dir), 0);
	free(f);
	return 0;
}

/* A clock the test steps: store into now_ns. */
struct step_clock {
	_Atomic u64 now_ns;
};

static inline u64 step_clock_now(void *ctx)
{
	struct step_clock *c = ctx;
	return atomic_load(&c->now_ns);
}

#endif
