/*
 * bench_util.h - what the micro-benchmarks share: a monotonic clock in
 * nanoseconds and a comparison of doubles for qsort (medians of runs).
 */
#ifndef TPW_BENCH_UTIL_H
#define TPW_BENCH_UTIL_H

#include <time.h>

static inline double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#endif
