/*
 * seqwait.c - the thread that resumes reads waiting for a sequence (see
 * seqwait.h).
 */
#include "api/seqwait.h"
#include "api/internal.h"
#include "core/clock.h"
#include "engine/engine.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "banned.h"

struct seqwait {
	struct engine *e;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct request *head; /* waiting, under lock */
	bool stopping;
	pthread_t thread;
};

/* Resume rq: the server answers it (api/server.c, RS_WAITING). */
static void resume(struct request *rq)
{
	struct api_server *s = rq->srv;
	MHD_resume_connection(rq->conn);
	atomic_fetch_sub(&s->inflight, 1);
}

static void *seqwait_main(void *arg)
{
	struct seqwait *w = arg;
	const struct timespec poll = {.tv_nsec = SEQWAIT_POLL_MS * 1000000L};

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		u64 applied = engine_applied_seq(w->e);
		u64 now = tpw_monotonic_ms();
		struct request **pp = &w->head, *done = NULL;
		while (*pp) {
			struct request *rq = *pp;
			if (w->stopping || applied >= rq->min_seq ||
			    now >= rq->min_seq_deadline_ms) {
				*pp = rq->wait_next;
				rq->wait_next = done;
				done = rq;
			} else {
				pp = &rq->wait_next;
			}
		}
		bool stop = w->stopping && !w->head;
		pthread_mutex_unlock(&w->lock);
		while (done) {
			struct request *next = done->wait_next;
			resume(done);
			done = next;
		}
		if (stop)
			return NULL;
		nanosleep(&poll, NULL);
		pthread_mutex_lock(&w->lock);
	}
}

int seqwait_start(struct seqwait **out, struct engine *e)
{
	struct seqwait *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->e = e;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	int ret = pthread_create(&w->thread, NULL, seqwait_main, w);
	if (ret != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -ret;
	}
	*out = w;
	return 0;
}

void seqwait_add(struct seqwait *w, struct request *rq)
{
	pthread_mutex_lock(&w->lock);
	rq->wait_next = w->head;
	w->head = rq;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void seqwait_stop(struct seqwait *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
