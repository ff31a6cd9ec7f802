/*
 * expirer.h - the server's notice that an emergency override reached its
 * end: one PSTATE_CMD_OVERRIDE_EXPIRED journal command per override that
 * expired without being ended early (core/pstate.h), and a log line.
 *
 * The gate needs no entry (an override is inactive once its time has
 * passed); the entry is for the audit trail.  One thread sleeps until the
 * earliest end the client-policy state knows of, or until the engine says
 * that state changed (engine_options.pstate_changed: expirer_poke), then
 * submits the commands through engine_submit like any other, a bounded
 * batch at a time.  At start it finds the overrides that expired while
 * the server was down; the state knows which have their entry, so each
 * gets exactly one, whatever the restarts.
 */
#ifndef TPW_ENGINE_EXPIRER_H
#define TPW_ENGINE_EXPIRER_H

#include "engine/engine.h"

struct expirer;

/* Allocate (no thread yet): its pointer goes into engine_options as
 * pstate_changed_ctx before engine_open.  NULL when out of memory. */
struct expirer *expirer_new(void);
/* Start the thread on an open engine.  Returns 0 or a negative errno. */
int expirer_start(struct expirer *x, struct engine *e);
/* engine_options.pstate_changed: look again (any thread; never blocks
 * for long). */
void expirer_poke(void *ctx);
/* Stop the thread (before engine_close) and free. */
void expirer_free(struct expirer *x);

#endif
