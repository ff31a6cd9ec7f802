/*
 * history.c - the store behind the engine: the change buffer the applier
 * fills, the writer thread that commits it, eviction, and recovery from
 * the store (see history.h and docs/store.md).
 */
#include "engine/history.h"
#include "core/assert.h"
#include "core/clock.h"
#include "engine/logger.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/fsfile.h"
#include "log/journal_reader.h"

#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "banned.h"

/* A buffer with this many new transfers makes the applier wait for the
 * writer; during replay it is committed at once. */
#define BUFFER_TRANSFERS_MAX (1u << 18)
#define REPLAY_COMMIT_AT     (1u << 17)
/* Bytes of memory a transfer in the recent window costs (record, status,
 * index entry, two list entries, slack). */
#define WINDOW_BYTES_PER_TRANSFER 160u

/* The writer flushes the store at least this often while it commits, so
 * a crash replays little journal (history.h). */
#define FLUSH_EVERY_MS 5000u

#define BLOB_STATE    "state"	 /* auth and policy (state_parts_write) */
#define BLOB_SUMS     "sums"	 /* struct ledger_sums, 15 u64 */
#define BLOB_POSITION "position" /* u64 seq, record ts, ledger ts */

struct xch {
	struct transfer t;
	struct account_balance dr, cr;
	u8 status;
	u8 has_dr, has_cr;
};

struct sch {
	struct transfer t;
	u8 status;
};

/* What drains put together for one store commit. */
struct buf {
	struct xch *x;
	size_t nx, capx;
	struct sch *st;
	size_t nst, capst;
	struct account *a;
	size_t na, capa;
	u128 *f;
	size_t nf, capf;
	u8 *parts;
	size_t nparts, capparts;
	bool has_parts;
	bool used; /* records were applied since the last commit */
	int err;   /* an allocation failed while filling */
	u64 seq, ts, ledger_ts;
	struct ledger_mark mark;
};

struct history {
	char dir[PATH_MAX];
	char data_dir[PATH_MAX];
	char archive_dir[PATH_MAX]; /* "": none */
	u64 cache_bytes;
	u64 keep;
	bool quiet;
	struct store *store; /* NULL until the journal has a first record */
	struct store_batch *batch;
	struct ledger_sums sums; /* of what the store holds (writer) */

	pthread_mutex_t mu;
	pthread_cond_t work, space;
	struct buf bufs[2];
	struct buf *cur;    /* the applier fills it (under mu) */
	struct buf *sealed; /* the writer commits it */
	bool writing;	    /* the writer holds sealed */
	bool running, stopping;
	pthread_t writer;
	bool writer_started;
	_Atomic bool failed;
	bool parts_pending; /* the next drain writes the state's parts */
	struct ledger_mark stored;
	bool stored_valid;
	u32 evicted_drain;
	u32 evicted_transfers; /* stored.transfers at the last eviction */

	_Atomic u64 commits, committed_seq, evictions, waits;
	_Atomic u64 flushed_seq; /* what a crash keeps */
	u64 last_flush_ms;	 /* writer */
};

/* ---- the buffer ------------------------------------------------------ */

static void *grow(void *v, size_t *cap, size_t need, size_t elem, int *err)
{
	if (need <= *cap)
		return v;
	size_t c = *cap ? *cap * 2 : 1024;
	while (c < need)
		c *= 2;
	void *p = realloc(v, c * elem);
	if (!p) {
		*err = -ENOMEM;
		return v;
	}
	*cap = c;
	return p;
}

static void buf_reset(struct buf *b)
{
	b->nx = b->nst = b->na = b->nf = b->nparts = 0;
	b->has_parts = false;
	b->used = false;
	b->err = 0;
}

static void buf_free(struct buf *b)
{
	free(b->x);
	free(b->st);
	free(b->a);
	free(b->f);
	free(b->parts);
	memset(b, 0, sizeof(*b));
}

static void on_transfer(void *ctx, const struct transfer *t, u8 status,
			const struct account_balance *dr,
			const struct account_balance *cr)
{
	struct buf *b = ctx;

	b->x = grow(b->x, &b->capx, b->nx + 1, sizeof(*b->x), &b->err);
	if (b->err)
		return;
	struct xch *x = &b->x[b->nx++];
	x->t = *t;
	x->status = status;
	x->has_dr = dr != NULL;
	x->has_cr = cr != NULL;
	if (dr)
		x->dr = *dr;
	if (cr)
		x->cr = *cr;
}

static void on_status(void *ctx, const struct transfer *t, u8 status)
{
	struct buf *b = ctx;

	b->st = grow(b->st, &b->capst, b->nst + 1, sizeof(*b->st), &b->err);
	if (b->err)
		return;
	b->st[b->nst].t = *t;
	b->st[b->nst++].status = status;
}

static void on_account(void *ctx, const struct account *a)
{
	struct buf *b = ctx;

	b->a = grow(b->a, &b->capa, b->na + 1, sizeof(*b->a), &b->err);
	if (!b->err)
		b->a[b->na++] = *a;
}

static void on_failed(void *ctx, u128 id)
{
	struct buf *b = ctx;

	b->f = grow(b->f, &b->capf, b->nf + 1, sizeof(*b->f), &b->err);
	if (!b->err)
		b->f[b->nf++] = id;
}

static const struct ledger_drain_ops drain_ops = {
	.transfer = on_transfer,
	.status = on_status,
	.account = on_account,
	.failed = on_failed,
};

static int parts_sink(void *ctx, const void *p, size_t n)
{
	struct buf *b = ctx;

	if (n == 0)
		return 0;
	b->parts = grow(b->parts, &b->capparts, b->nparts + n, 1, &b->err);
	if (b->err)
		return b->err;
	memcpy(b->parts + b->nparts, p, n);
	b->nparts += n;
	return 0;
}

/* ---- the store's origin and its blobs -------------------------------- */

/* DATA/journal-origin: the journal's identity, kept once computed, so
 * that start-up never needs the first segment once journal retention
 * moved it (docs/operations.md, "Journal retention"). */
#define ORIGIN_FILE "journal-origin"

static int origin_file_read(const char *data_dir, u8 out[32])
{
	char path[PATH_MAX + 32], *text = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/" ORIGIN_FILE, data_dir);
	if (fsfile_read(path, 128, &text, &len) != 0)
		return -ENOENT;
	int ret = len == 65 && text[64] == '\n' &&
				  sodium_hex2bin(out, 32, text, 64, NULL, NULL,
						 NULL) == 0
			  ? 1
			  : -ENOENT;
	free(text);
	return ret;
}

static void origin_file_write(const char *data_dir, const u8 origin[32])
{
	char text[66];

	sodium_bin2hex(text, sizeof(text), origin, 32);
	text[64] = '\n';
	if (fsfile_replace(data_dir, ORIGIN_FILE, text, 65) != 0)
		log_at(LOG_WARN, "cannot write DATA/" ORIGIN_FILE);
}

void history_origin_of(const u8 *raw, size_t raw_bytes, u8 out[32])
{
	static const char ctx[] = "tpwallet store origin v1";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const u8 *)ctx, sizeof(ctx));
	crypto_generichash_update(&st, raw, raw_bytes);
	crypto_generichash_final(&st, out, 32);
}

/* The journal's identity: a hash of its first record as it is on disk.
 * When DATA/journal no longer holds it (journal retention moved it),
 * DATA/journal-origin, written whenever it is computed, else the
 * archive directory.  1 when there is one, 0 when the journal is empty,
 * -errno. */
static int journal_origin(const char *data_dir, const char *archive_dir,
			  u8 out[32])
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	u8 kept[32];
	int ret = journal_reader_open(&rd, data_dir, 1);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
	if (ret < 0 && origin_file_read(data_dir, out) == 1) {
		journal_reader_close(rd);
		return 1;
	}
	if (ret < 0 && archive_dir && archive_dir[0]) {
		journal_reader_close(rd);
		ret = journal_reader_open(&rd, data_dir, 1);
		if (ret < 0)
			return ret;
		journal_reader_archive(rd, archive_dir);
		ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
	}
	if (ret == 1) {
		history_origin_of(raw, raw_bytes, out);
		if (origin_file_read(data_dir, kept) != 1 ||
		    memcmp(kept, out, 32) != 0)
			origin_file_write(data_dir, out);
	}
	journal_reader_close(rd);
	return ret;
}

static void sums_encode(const struct ledger_sums *s, u64 out[15])
{
	memcpy(out, s->transfers, 32);
	memcpy(out + 4, s->points, 32);
	memcpy(out + 8, s->failed, 32);
	out[12] = s->n_transfers;
	out[13] = s->n_points;
	out[14] = s->n_failed;
}

static void sums_decode(const u64 in[15], struct ledger_sums *s)
{
	memcpy(s->transfers, in, 32);
	memcpy(s->points, in + 4, 32);
	memcpy(s->failed, in + 8, 32);
	s->n_transfers = in[12];
	s->n_points = in[13];
	s->n_failed = in[14];
}

/* A blob of exactly n bytes into p: 0, or -EIO (missing or other size:
 * the store is not what it should be). */
static int blob_exact(struct store *st, const char *name, void *p, size_t n)
{
	void *v = NULL;
	size_t got = 0;
	int ret = store_blob_get(st, name, &v, &got);

	if (ret == 0 && got == n)
		memcpy(p, v, n);
	else
		ret = -EIO;
	free(v);
	return ret;
}

/* ---- committing ------------------------------------------------------ */

static int create_store(struct history *h, const u8 origin[32],
			const char **why)
{
	struct store_options so = {.dir = h->dir,
				   .cache_bytes = h->cache_bytes / 2,
				   .create = true};

	memcpy(so.origin, origin, 32);
	/* Published whole: history_stats reads the pointer from other
	 * threads (the audit thread's retention, /metrics). */
	struct store *st = NULL;
	int ret = store_open(&so, &st, why);
	if (ret == 0)
		__atomic_store_n(&h->store, st, __ATOMIC_RELEASE);
	return ret;
}

/* One buffer, one store commit (the writer's thread, or the applier's
 * before the writer starts). */
static int commit_buf(struct history *h, struct buf *b, const char **why)
{
	struct store_batch *sb = h->batch;
	int ret = 0;

	*why = NULL;
	if (b->err) {
		*why = "out of memory while draining";
		return b->err;
	}
	if (!h->store) {
		u8 origin[32];
		ret = journal_origin(h->data_dir, h->archive_dir, origin);
		if (ret <= 0) {
			*why = "the journal's first record cannot be read";
			return ret < 0 ? ret : -EIO;
		}
		ret = create_store(h, origin, why);
		if (ret)
			return ret;
	}
	store_batch_reset(sb);
	for (size_t i = 0; !ret && i < b->nx; i++) {
		const struct xch *x = &b->x[i];
		ret = store_batch_transfer(sb, &x->t, x->status,
					   x->has_dr ? &x->dr : NULL,
					   x->has_cr ? &x->cr : NULL);
		ledger_sums_transfer(&h->sums, &x->t, x->status, false);
		if (x->has_dr)
			ledger_sums_point(&h->sums, x->t.debit_account_id,
					  &x->dr);
		if (x->has_cr)
			ledger_sums_point(&h->sums, x->t.credit_account_id,
					  &x->cr);
	}
	for (size_t i = 0; !ret && i < b->nst; i++) {
		ret = store_batch_status(sb, &b->st[i].t, b->st[i].status);
		ledger_sums_transfer(&h->sums, &b->st[i].t, PENDING_PENDING,
				     true);
		ledger_sums_transfer(&h->sums, &b->st[i].t, b->st[i].status,
				     false);
	}
	for (size_t i = 0; !ret && i < b->na; i++)
		ret = store_batch_account(sb, &b->a[i]);
	for (size_t i = 0; !ret && i < b->nf; i++) {
		ret = store_batch_failed(sb, b->f[i]);
		ledger_sums_failed(&h->sums, b->f[i]);
	}
	if (!ret && b->has_parts)
		ret = store_batch_blob(sb, BLOB_STATE, b->parts, b->nparts);
	if (!ret) {
		u64 sums[15], pos[3] = {b->seq, b->ts, b->ledger_ts};
		sums_encode(&h->sums, sums);
		ret = store_batch_blob(sb, BLOB_SUMS, sums, sizeof(sums));
		if (!ret)
			ret = store_batch_blob(sb, BLOB_POSITION, pos,
					       sizeof(pos));
	}
	if (ret) {
		*why = "the store batch could not be built";
		return ret;
	}
	static const u8 no_digest[32];
	ret = store_commit(h->store, sb, b->seq, b->ledger_ts, no_digest, why);
	if (ret == 0) {
		atomic_fetch_add(&h->commits, 1);
		atomic_store(&h->committed_seq, b->seq);
	}
	return ret;
}

static void fail(struct history *h, int err, const char *why)
{
	log_at(LOG_ERROR,
	       "store write failed: refusing every change until restart",
	       LOG_STR("reason", why ? why : "unknown"),
	       LOG_NUM("errno", -err));
	h->failed = true;
}

/* Flush when commits since the last flush are older than FLUSH_EVERY_MS
 * (the writer's thread, without mu). */
static void maybe_flush(struct history *h, bool force)
{
	u64 seq = atomic_load(&h->committed_seq);
	u64 now = tpw_monotonic_ms();
	const char *why = NULL;

	if (h->failed || !h->store || seq == atomic_load(&h->flushed_seq))
		return;
	if (!force && now - h->last_flush_ms < FLUSH_EVERY_MS)
		return;
	int ret = store_flush(h->store, &why);
	if (ret) {
		fail(h, ret, why);
		return;
	}
	h->last_flush_ms = now;
	atomic_store(&h->flushed_seq, seq);
	/* Give the allocator's free pages back: RocksDB's flushes and
	 * compactions and the writer's batches free large blocks that glibc
	 * keeps in its arenas (measured: 200-400 MiB of free memory held at
	 * 10-30M transfers, resident), so the process's memory would follow
	 * its peaks rather than what it holds.  A few ms, once a flush. */
	malloc_trim(0);
}

static void *writer_main(void *arg)
{
	struct history *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->cur->used && !h->stopping) {
			struct timespec until = tpw_deadline_ms(FLUSH_EVERY_MS);
			if (pthread_cond_timedwait(&h->work, &h->mu, &until) ==
			    ETIMEDOUT) {
				pthread_mutex_unlock(&h->mu);
				maybe_flush(h, false);
				pthread_mutex_lock(&h->mu);
			}
		}
		if (!h->cur->used && h->stopping)
			break;
		struct buf *b = h->cur;
		h->cur = h->sealed;
		h->sealed = b;
		h->writing = true;
		pthread_cond_broadcast(&h->space);
		pthread_mutex_unlock(&h->mu);

		const char *why = NULL;
		int ret = h->failed ? -EIO : commit_buf(h, b, &why);
		if (ret == 0)
			maybe_flush(h, false);

		pthread_mutex_lock(&h->mu);
		if (ret == 0) {
			h->stored = b->mark;
			h->stored_valid = true;
		} else if (!h->failed) {
			fail(h, ret, why);
		}
		buf_reset(b);
		h->writing = false;
		pthread_cond_broadcast(&h->space);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* ---- the applier's side ---------------------------------------------- */

static int evict(struct history *h, struct ledger *l)
{
	struct ledger_mark m;
	bool have;

	/* An eviction walks every account's lists, so it waits until the
	 * store holds keep / 8 transfers more than at the last one (the
	 * window then grows by at most that much): with one small group per
	 * commit, evicting at each one cost more than the commit. */
	pthread_mutex_lock(&h->mu);
	have = h->stored_valid && h->stored.drain > h->evicted_drain &&
	       (u64)h->stored.transfers >=
		       (u64)h->evicted_transfers + h->keep / 8;
	m = h->stored;
	pthread_mutex_unlock(&h->mu);
	if (!have)
		return 0;
	int ret = ledger_evict(l, &m, h->keep);
	if (ret == 0) {
		h->evicted_drain = m.drain;
		h->evicted_transfers = m.transfers;
		atomic_fetch_add(&h->evictions, 1);
	}
	/* -ENOMEM: memory stays as it is, try again next time. */
	return ret == -ENOMEM ? 0 : ret;
}

int history_applied(struct history *h, struct state *s, u64 seq, u64 timestamp,
		    bool parts_changed)
{
	struct ledger *l = state_ledger_rw(s);
	struct ledger_mark mark;
	int ret;

	if (h->failed)
		return -EIO;
	pthread_mutex_lock(&h->mu);
	struct buf *b = h->cur;
	ret = ledger_drain(l, &drain_ops, b, &mark);
	if (ret == 0) {
		b->seq = seq;
		b->ts = timestamp;
		b->ledger_ts = ledger_last_timestamp(l);
		b->mark = mark;
		b->used = true;
		if (parts_changed || h->parts_pending) {
			b->nparts = 0;
			if (state_parts_write(s, parts_sink, b) == 0)
				b->has_parts = true;
			h->parts_pending = false;
		}
		if (b->err)
			ret = b->err;
	}
	bool running = h->running;
	if (running)
		pthread_cond_signal(&h->work);
	pthread_mutex_unlock(&h->mu);
	if (ret) {
		fail(h, ret, "out of memory while draining");
		return ret;
	}
	if (!running && b->nx >= REPLAY_COMMIT_AT) {
		const char *why;
		ret = commit_buf(h, b, &why);
		if (ret) {
			fail(h, ret, why);
			return ret;
		}
		h->stored = b->mark;
		h->stored_valid = true;
		buf_reset(b);
	}
	return evict(h, l);
}

void history_wait(struct history *h)
{
	pthread_mutex_lock(&h->mu);
	if (h->cur->nx >= BUFFER_TRANSFERS_MAX && h->running && !h->failed) {
		atomic_fetch_add(&h->waits, 1);
		while (h->cur->nx >= BUFFER_TRANSFERS_MAX && !h->failed)
			pthread_cond_wait(&h->space, &h->mu);
	}
	pthread_mutex_unlock(&h->mu);
}

int history_start(struct history *h, const char **why)
{
	*why = NULL;
	if (h->cur->used) {
		int ret = commit_buf(h, h->cur, why);
		if (ret)
			return ret;
		h->stored = h->cur->mark;
		h->stored_valid = true;
		buf_reset(h->cur);
	}
	int ret = pthread_create(&h->writer, NULL, writer_main, h);
	if (ret) {
		*why = "cannot start the store writer thread";
		return -ret;
	}
	h->writer_started = true;
	h->running = true;
	return 0;
}

bool history_failed(struct history *h)
{
	return h->failed;
}

struct store *history_store(struct history *h)
{
	/* The writer thread publishes it (create_store); readers of any
	 * thread (lookups, queries) take it whole. */
	return __atomic_load_n(&h->store, __ATOMIC_ACQUIRE);
}

void history_digest(struct history *h, const struct state *s, u8 out[32])
{
	struct ledger_sums sums;

	pthread_mutex_lock(&h->mu);
	if (h->running) {
		pthread_cond_signal(&h->work);
		while ((h->cur->used || h->writing) && !h->failed)
			pthread_cond_wait(&h->space, &h->mu);
	} else if (h->cur->used) {
		const char *why;
		int ret = commit_buf(h, h->cur, &why);
		if (ret)
			fail(h, ret, why);
		buf_reset(h->cur);
	}
	sums = h->sums;
	pthread_mutex_unlock(&h->mu);
	state_digest_with(s, &sums, out);
}

void history_stats(struct history *h, struct history_stats *out)
{
	memset(out, 0, sizeof(*out));
	struct store *st = __atomic_load_n(&h->store, __ATOMIC_ACQUIRE);
	if (st)
		(void)store_stats(st, &out->store);
	out->commits = atomic_load(&h->commits);
	out->committed_seq = atomic_load(&h->committed_seq);
	out->flushed_seq = atomic_load(&h->flushed_seq);
	out->evictions = atomic_load(&h->evictions);
	out->waits = atomic_load(&h->waits);
	out->keep_transfers = h->keep;
	pthread_mutex_lock(&h->mu);
	out->buffered_transfers = h->cur->nx + h->sealed->nx;
	pthread_mutex_unlock(&h->mu);
}

/* ---- open and recover ------------------------------------------------ */

static int cold_get(void *ctx, const u128 *ids, u32 n,
		    struct ledger_cold_item *out)
{
	struct history *h = ctx;

	return store_get_transfers(history_store(h), ids, n, out);
}

struct restore_ctx {
	struct ledger *l;
	struct account *a;
	size_t n, cap;
	int err;
};

static int collect_account(void *ctx, const struct account *a)
{
	struct restore_ctx *rc = ctx;

	rc->a = grow(rc->a, &rc->cap, rc->n + 1, sizeof(*rc->a), &rc->err);
	if (rc->err)
		return rc->err;
	rc->a[rc->n++] = *a;
	return 0;
}

static int by_timestamp(const void *a, const void *b)
{
	u64 x = ((const struct account *)a)->timestamp;
	u64 y = ((const struct account *)b)->timestamp;
	return (x > y) - (x < y);
}

static int restore_pending(void *ctx, const struct transfer *t)
{
	struct restore_ctx *rc = ctx;

	return ledger_restore_pending(rc->l, t);
}

/* The state the store holds (meta.seq > 0): accounts (in creation
 * order) and pending transfers in memory, the rest cold; the auth and
 * policy parts from their blob. */
static int restore(struct history *h, const struct ledger_options *lo,
		   const struct store_meta *m, struct state **out, u64 *seq,
		   u64 *ts, const char **why)
{
	const struct ledger_cold cold = {.get = cold_get, .ctx = h};
	struct restore_ctx rc = {0};
	u64 pos[3], sums[15];
	void *parts = NULL;
	size_t nparts = 0;
	int ret;

	*why = "the store's position, sums or state blobs are missing";
	if (blob_exact(h->store, BLOB_POSITION, pos, sizeof(pos)) ||
	    blob_exact(h->store, BLOB_SUMS, sums, sizeof(sums)) ||
	    store_blob_get(h->store, BLOB_STATE, &parts, &nparts))
		return -EIO;
	if (pos[0] != m->seq || pos[2] != m->last_timestamp) {
		free(parts);
		*why = "the store's position does not match its meta";
		return -EIO;
	}
	rc.l = ledger_new(lo);
	if (!rc.l || ledger_set_cold(rc.l, &cold)) {
		ret = -ENOMEM;
		*why = "out of memory";
		goto fail;
	}
	*why = "the store's accounts cannot be read";
	ret = store_scan_accounts(h->store, collect_account, &rc);
	if (ret)
		goto fail;
	if (rc.n > 0) /* qsort wants an array, even of none */
		qsort(rc.a, rc.n, sizeof(*rc.a), by_timestamp);
	for (size_t i = 0; i < rc.n && ret == 0; i++)
		ret = ledger_restore_account(rc.l, &rc.a[i]);
	if (ret)
		goto fail;
	*why = "the store's pending transfers cannot be read";
	ret = store_scan_pending(h->store, restore_pending, &rc);
	if (ret)
		goto fail;
	ledger_restore_end(rc.l, m->transfers, pos[2]);
	sums_decode(sums, &h->sums);
	*out = state_from_parts(rc.l, parts, nparts);
	rc.l = NULL; /* taken over (freed on failure) */
	if (!*out) {
		ret = -EIO;
		*why = "the store's auth and policy state cannot be read";
		goto fail;
	}
	*seq = pos[0];
	*ts = pos[1];
	ret = 0;
fail:
	if (ret < 0 && ret != -ENOMEM)
		ret = -EIO;
	ledger_free(rc.l);
	free(rc.a);
	free(parts);
	return ret;
}

static struct state *fresh_state(struct history *h,
				 const struct ledger_options *lo)
{
	const struct ledger_cold cold = {.get = cold_get, .ctx = h};
	struct state *s = state_new(lo);

	if (s && ledger_set_cold(state_ledger_rw(s), &cold)) {
		state_free(s);
		s = NULL;
	}
	return s;
}

static void wipe(struct history *h, const char *reason)
{
	store_close(h->store);
	h->store = NULL;
	log_at(LOG_WARN, "store rebuilt from the journal",
	       LOG_STR("reason", reason), LOG_STR("path", h->dir));
	(void)fsdir_remove_tree(h->dir);
}

static void history_free(struct history *h)
{
	store_close(h->store);
	store_batch_free(h->batch);
	buf_free(&h->bufs[0]);
	buf_free(&h->bufs[1]);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->work);
	pthread_cond_destroy(&h->space);
	free(h);
}

int history_open(struct history **out, const struct history_options *o,
		 const struct ledger_options *lo, struct state **state,
		 u64 *seq, u64 *timestamp, const char **why)
{
	struct history *h = calloc(1, sizeof(*h));
	struct store_meta m;
	u8 origin[32];
	int ret;

	*out = NULL;
	*state = NULL;
	*seq = *timestamp = 0;
	*why = NULL;
	if (!h)
		return -ENOMEM;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->work, &ca);
	pthread_cond_init(&h->space, &ca);
	pthread_condattr_destroy(&ca);
	h->last_flush_ms = tpw_monotonic_ms();
	h->cur = &h->bufs[0];
	h->sealed = &h->bufs[1];
	h->parts_pending = true;
	h->quiet = o->quiet;
	h->cache_bytes =
		o->cache_bytes ? o->cache_bytes : HISTORY_CACHE_BYTES_DEFAULT;
	if (h->cache_bytes < HISTORY_CACHE_BYTES_MIN)
		h->cache_bytes = HISTORY_CACHE_BYTES_MIN;
	h->keep = o->window_transfers
			  ? o->window_transfers
			  : h->cache_bytes / 2 / WINDOW_BYTES_PER_TRANSFER;
	h->batch = store_batch_new();
	if (snprintf(h->dir, sizeof(h->dir), "%s/%s", o->data_dir,
		     DATADIR_STORE) >= (int)sizeof(h->dir) ||
	    snprintf(h->data_dir, sizeof(h->data_dir), "%s", o->data_dir) >=
		    (int)sizeof(h->data_dir)) {
		*why = "data directory path too long";
		ret = -ENAMETOOLONG;
		goto fail;
	}
	if (!h->batch) {
		ret = -ENOMEM;
		goto fail;
	}

	if (o->archive_dir)
		snprintf(h->archive_dir, sizeof(h->archive_dir), "%s",
			 o->archive_dir);
	int have = journal_origin(o->data_dir, h->archive_dir, origin);
	if (have < 0) {
		ret = have;
		*why = "the journal's first record cannot be read";
		goto fail;
	}
	struct stat sb;
	bool exists = stat(h->dir, &sb) == 0;
	if (have == 0) {
		/* An empty journal: nothing a store could hold is valid.  The
		 * store is made at the first commit. */
		if (exists)
			wipe(h, "the journal is empty");
	} else {
		if (exists) {
			/* A store that holds nothing (lost before its
			 * first flush) is made anew with this origin. */
			struct store_options so = {.dir = h->dir,
						   .cache_bytes =
							   h->cache_bytes / 2,
						   .create = true};
			const char *e = NULL;
			memcpy(so.origin, origin, 32);
			if (store_open(&so, &h->store, &e) != 0) {
				wipe(h, e ? e : "the store cannot be opened");
			} else {
				store_meta(h->store, &m);
				if (memcmp(m.origin, origin, 32) != 0)
					wipe(h, "the store belongs to another "
						"journal");
				else if (o->rebuild)
					wipe(h, "the store is ahead of the "
						"journal");
			}
		}
		if (!h->store) {
			ret = create_store(h, origin, why);
			if (ret)
				goto fail;
		}
	}
	if (h->store) {
		store_meta(h->store, &m);
		if (m.seq > 0) {
			ret = restore(h, lo, &m, state, seq, timestamp, why);
			if (ret == -EIO) {
				wipe(h, *why);
				ret = create_store(h, origin, why);
				if (ret)
					goto fail;
			} else if (ret) {
				goto fail;
			}
		}
	}
	if (!*state) {
		memset(&h->sums, 0, sizeof(h->sums));
		*seq = *timestamp = 0;
		*state = fresh_state(h, lo);
		if (!*state) {
			*why = "out of memory";
			ret = -ENOMEM;
			goto fail;
		}
	}
	*out = h;
	return 0;
fail:
	history_free(h);
	return ret;
}

void history_close(struct history *h)
{
	if (!h)
		return;
	if (h->writer_started) {
		pthread_mutex_lock(&h->mu);
		h->stopping = true;
		pthread_cond_signal(&h->work);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->writer, NULL);
	}
	history_free(h);
}
