/*
 * expirer.c - journal an entry when an emergency override reaches its
 * end (expirer.h).  One thread; it reads the client-policy state under
 * the engine's read lock (copy out, unlock), submits up to BATCH_MAX
 * commands, waits for their replies, logs one line per override whose
 * entry was recorded, and sleeps until the next end or a poke.
 */
#include "engine/expirer.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/command.h"
#include "core/pstate.h"
#include "crypto/b64url.h"
#include "engine/logger.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* Commands in flight at once: a restart after a long stop may find many
 * overrides expired; they are journaled this many at a time. */
#define BATCH_MAX 64
/* After a batch none of which was recorded (the engine refused, or each
 * override changed meanwhile), look again this much later, not at once. */
#define RETRY_MS 1000
/* The longest sleep: a wall clock stepped forward is noticed by then. */
#define WAKE_MAX_MS (3600 * 1000)

struct due {
	u64 id;
	int64_t expires_at_s;
	char platform[48];
	char range[SEMVER_RANGE_TEXT_MAX + 16];
	char author[48]; /* a thumbprint, or "administrator" */
	char author_name[AUTH_NAME_BYTES + 1];
	/* the command: header and ext */
	u8 payload[sizeof(struct command_header) +
		   sizeof(struct pstate_override_expired)];
	u32 result;
	struct engine_request req;
};

struct expirer {
	struct engine *e;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, poked;
	unsigned pending; /* requests not done yet */
	struct due due[BATCH_MAX];
};

struct expirer *expirer_new(void)
{
	struct expirer *x = calloc(1, sizeof(*x));
	pthread_condattr_t ca;

	if (!x)
		return NULL;
	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x->cond, &ca);
	pthread_condattr_destroy(&ca);
	return x;
}

void expirer_poke(void *ctx)
{
	struct expirer *x = ctx;

	pthread_mutex_lock(&x->lock);
	x->poked = true;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

static void author_text(const struct auth *a, const u8 id[32], struct due *d)
{
	static const u8 zero[32];
	struct auth_principal_info p;

	d->author_name[0] = '\0';
	if (memcmp(id, zero, 32) == 0) {
		memcpy(d->author, "administrator", sizeof("administrator"));
		return;
	}
	if (b64url_encode(d->author, sizeof(d->author), id, 32) != 0)
		d->author[0] = '\0';
	if (auth_principal_get(a, id, &p))
		memcpy(d->author_name, p.name, sizeof(d->author_name));
}

/* The overrides due now, copied out under the read lock; *next: the
 * earliest end still to come (INT64_MAX: none). */
static size_t collect(struct expirer *x, int64_t now_s, int64_t *next)
{
	u64 ids[BATCH_MAX];

	engine_read_begin(x->e);
	const struct pstate *ps = engine_pstate(x->e);
	size_t n = pstate_expiry_due(ps, now_s, ids, BATCH_MAX);
	for (size_t i = 0; i < n; i++) {
		struct pstate_override_info o;
		struct due *d = &x->due[i];
		pstate_override_at(ps, ids[i] - 1, &o);
		d->id = o.id;
		d->expires_at_s = o.expires_at_s;
		memcpy(d->platform, o.cmd->platform, sizeof(d->platform));
		memcpy(d->range, o.cmd->range, sizeof(d->range));
		author_text(engine_auth(x->e), o.cmd->author, d);
	}
	*next = n ? now_s : pstate_expiry_next(ps);
	engine_read_end(x->e);
	return n;
}

static void done(struct engine_request *req)
{
	struct expirer *x = req->ctx;

	pthread_mutex_lock(&x->lock);
	x->pending--;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

/* Submit the n commands, wait for them, log those recorded.  Returns how
 * many were recorded. */
static size_t submit(struct expirer *x, size_t n)
{
	size_t recorded = 0;

	pthread_mutex_lock(&x->lock);
	x->pending = 0;
	pthread_mutex_unlock(&x->lock);
	for (size_t i = 0; i < n; i++) {
		struct due *d = &x->due[i];
		struct command_header h = {
			.kind = PSTATE_CMD_OVERRIDE_EXPIRED,
			.ext_bytes = sizeof(struct pstate_override_expired)};
		struct pstate_override_expired c = {
			.id = d->id, .expires_at_s = d->expires_at_s};
		memcpy(d->payload, &h, sizeof(h));
		memcpy(d->payload + sizeof(h), &c, sizeof(c));
		d->result = 0;
		d->req = (struct engine_request){
			.op = ENGINE_COMMAND,
			.payload_bytes = sizeof(d->payload),
			.events = d->payload,
			.results = &d->result,
			.done = done,
			.ctx = x,
		};
		pthread_mutex_lock(&x->lock);
		x->pending++;
		pthread_mutex_unlock(&x->lock);
		if (engine_submit(x->e, &d->req) != 0) {
			pthread_mutex_lock(&x->lock);
			x->pending--;
			pthread_mutex_unlock(&x->lock);
			d->req.status = -ECANCELED;
		}
	}
	pthread_mutex_lock(&x->lock);
	while (x->pending > 0)
		pthread_cond_wait(&x->cond, &x->lock);
	pthread_mutex_unlock(&x->lock);
	for (size_t i = 0; i < n; i++) {
		const struct due *d = &x->due[i];
		if (d->req.status != 0 || d->result != PSTATE_OK)
			continue;
		recorded++;
		log_at(LOG_WARN, "client-policy override expired",
		       LOG_NUM("id", d->id), LOG_STR("platform", d->platform),
		       LOG_STR("range", d->range), LOG_STR("author", d->author),
		       LOG_STR("author_name",
			       d->author_name[0] ? d->author_name : NULL),
		       LOG_NUM("expires_at_s", d->expires_at_s),
		       LOG_NUM("seq", d->req.seq));
	}
	return recorded;
}

static void *expirer_main(void *arg)
{
	struct expirer *x = arg;

	pthread_mutex_lock(&x->lock);
	while (!x->stop) {
		x->poked = false;
		pthread_mutex_unlock(&x->lock);
		u64 now_ns = engine_now_ns(x->e);
		int64_t now_s = (int64_t)(now_ns / 1000000000u), next;
		size_t n = collect(x, now_s, &next);
		long wait_ms;
		if (n > 0)
			wait_ms = submit(x, n) > 0 ? 0 : RETRY_MS;
		else if (next == INT64_MAX || next - now_s > WAKE_MAX_MS / 1000)
			wait_ms = WAKE_MAX_MS;
		else if ((u64)next * 1000000000u <= now_ns)
			wait_ms = RETRY_MS; /* a clock that went back */
		else /* the end's second has begun: a little after it */
			wait_ms = (long)(((u64)next * 1000000000u - now_ns) /
					 1000000u) +
				  10;
		pthread_mutex_lock(&x->lock);
		if (wait_ms == 0)
			continue;
		struct timespec until = tpw_deadline_ms(wait_ms);
		while (!x->stop && !x->poked &&
		       pthread_cond_timedwait(&x->cond, &x->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

int expirer_start(struct expirer *x, struct engine *e)
{
	x->e = e;
	int ret = pthread_create(&x->thread, NULL, expirer_main, x);
	if (ret != 0)
		return -ret;
	x->started = true;
	return 0;
}

void expirer_free(struct expirer *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	x->stop = true;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
	if (x->started)
		pthread_join(x->thread, NULL);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x);
}
