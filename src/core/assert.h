/*
 * assert.h - the project's one run-time assertion, on in every build.
 *
 * TPW_ASSERT(cond) checks an invariant that must hold whatever the input:
 * when it does not, the process reports file, line and the condition on
 * stderr and aborts (a state that broke an invariant must not be journaled
 * or served).  Unlike assert(3) it ignores NDEBUG, so release builds keep
 * it; use it only for cheap checks (see docs/conventions.md for where the
 * invariants are asserted).  Never put a side effect inside: the condition
 * is evaluated exactly once, but a reader should not need to know that.
 * Bad input is not an invariant: refuse it with an error instead.
 */
#ifndef TPW_CORE_ASSERT_H
#define TPW_CORE_ASSERT_H

/* Reports "file:line: assertion failed: cond" and aborts. */
_Noreturn void tpw_assert_fail(const char *file, int line, const char *cond);

#define TPW_ASSERT(cond)                                                       \
	((cond) ? (void)0 : tpw_assert_fail(__FILE__, __LINE__, #cond))

#endif
