/*
 * fuzz_check.h - the property check the harnesses share: a failed
 * CHECK prints where and what, then aborts, which libFuzzer reports as
 * a crash with the input that caused it.
 */
#ifndef TPW_FUZZ_CHECK_H
#define TPW_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__,     \
				#x);                                           \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
