/*
 * clock.h - CLOCK_MONOTONIC in milliseconds, and "now + ms" for
 * pthread_cond_timedwait.
 *
 * The condition variables that wait with a timeout (engine, logger, audit
 * witness loop, netguard) are created with CLOCK_MONOTONIC, so a wall
 * clock stepped back cannot stretch a wait.  One place does the timespec
 * carry instead of each loop.
 */
#ifndef TPW_CORE_CLOCK_H
#define TPW_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now, in milliseconds (for elapsed times). */
uint64_t tpw_monotonic_ms(void);

/* The CLOCK_MONOTONIC time ms milliseconds from now, normalized. */
struct timespec tpw_deadline_ms(long ms);

#endif
