/*
 * seqwait.h - reads that wait for a sequence (cluster mode's
 * read-your-writes, docs/api.md "Cluster mode"): a GET with
 * Tpwallet-Min-Seq: N on a node that has applied less than N is
 * suspended (no HTTP thread is held) and resumed by this module's thread
 * once the node has applied N or the wait (setting cluster_read_wait_ms)
 * is over, whichever comes first; the server then answers it, or 503
 * seq-not-reached.
 *
 * The thread looks every SEQWAIT_POLL_MS while a request waits, and
 * sleeps on its condition variable while none does.
 */
#ifndef TPW_API_SEQWAIT_H
#define TPW_API_SEQWAIT_H

#include "core/types.h"

#define SEQWAIT_POLL_MS 2u

struct seqwait;
struct request;
struct engine;

int seqwait_start(struct seqwait **out, struct engine *e);
/* rq (suspended by the caller, state RS_WAITING, min_seq and
 * min_seq_deadline_ms set) is resumed once, by the thread. */
void seqwait_add(struct seqwait *w, struct request *rq);
/* Resume every waiting request now, stop the thread, free.  NULL is a
 * no-op. */
void seqwait_stop(struct seqwait *w);

#endif
