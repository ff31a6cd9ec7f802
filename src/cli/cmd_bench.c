/*
 * cmd_bench.c - `tpwallet bench`: the engine measured in process.
 *
 * Creates accounts, then pushes random transfers through the real engine
 * (sequencer, journal with fdatasync, ledger) in batches, keeping a few
 * batches in flight so group commit works as it does under load.  Then
 * closes the engine and recovers it from the journal, timing the replay
 * and checking that the recovered state has the same digest.  Prints
 * figures; never passes or fails on time.  docs/benchmarks.md records the
 * runs.
 *
 * --history N measures the store (issue 12, docs/store.md) at N
 * transfers of history preloaded through the same engine: write rates
 * until the store holds everything, memory, restarts after a close and
 * after kill -9 (of a re-executed copy of this command, the hidden
 * --crash-writer), cold and warm reads, and disk bytes.
 */
#include "cli/cli.h"
#include "core/u128.h"
#include "engine/audit.h"
#include "engine/engine.h"
#include "engine/history.h"
#include "log/datadir.h"
#include "log/fsdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <getopt.h>
#include <signal.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define WINDOW_MAX 64

struct slot {
	struct engine_request req;
	struct transfer *events;
	u32 *results;
	u64 submitted_ns;
	bool busy;
};

struct bench {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned in_flight;
	u64 failures; /* events with a result other than ok */
	int status;   /* first engine error */
	u64 *latencies_ns;
	u64 latencies_n;
	u64 latencies_cap;
	u32 batch;
};

static u64 mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

static u64 splitmix(u64 *s)
{
	u64 z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void on_done(struct engine_request *req)
{
	struct slot *sl = (struct slot *)req;
	struct bench *b = req->ctx;
	u64 fails = 0;

	for (u32 i = 0; i < req->count; i++)
		fails += req->results[i] != 0;
	u64 lat = mono_ns() - sl->submitted_ns;
	pthread_mutex_lock(&b->lock);
	b->failures += fails;
	if (req->status < 0 && b->status == 0)
		b->status = req->status;
	if (b->latencies_n < b->latencies_cap)
		b->latencies_ns[b->latencies_n++] = lat;
	sl->busy = false;
	b->in_flight--;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return x < y ? -1 : x > y;
}

/*
 * Transfers are a function of their index, so a lookup can name an old
 * one without keeping its id: random ids (the high 64 bits mixed from
 * the index) or time-ordered ids (TigerBeetle's recommendation: a
 * millisecond clock in the high 48 bits, here the index below it),
 * between random accounts.  block_ms holds the clock for each
 * GEN_BLOCK indexes when ids are time-ordered.
 */
#define GEN_BLOCK_SHIFT 12

struct gen {
	u64 accounts;
	u64 seed;
	u64 next; /* index of the next transfer */
	bool time_ids;
	u64 *block_ms;
	u64 blocks;
};

static u64 mix(u64 seed, u64 i)
{
	u64 s = seed ^ (i * 0xd1b54a32d192ed03u);
	return splitmix(&s);
}

static u64 wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000u + (u64)ts.tv_nsec / 1000000u;
}

/* The id of transfer i (0 when time-ordered and i was never made). */
static u128 gen_id(const struct gen *g, u64 i)
{
	if (!g->time_ids)
		return ((u128)mix(g->seed, 2 * i + 1) << 64) | (u128)(i + 1);
	u64 blk = i >> GEN_BLOCK_SHIFT;
	if (blk >= g->blocks || g->block_ms[blk] == 0)
		return 0;
	return ((u128)g->block_ms[blk] << 80) | (u128)(i + 1);
}

static void gen_fill(struct gen *g, struct transfer *ev, u32 n)
{
	for (u32 i = 0; i < n; i++, g->next++) {
		struct transfer *t = &ev[i];
		u64 r = mix(g->seed, 2 * g->next);
		u64 d = r % g->accounts, k = (r >> 32) % (g->accounts - 1);
		u64 blk = g->next >> GEN_BLOCK_SHIFT;

		if (g->time_ids && blk < g->blocks && g->block_ms[blk] == 0)
			g->block_ms[blk] = wall_ms();
		memset(t, 0, sizeof(*t));
		t->id = gen_id(g, g->next);
		t->debit_account_id = d + 1;
		t->credit_account_id = (d + 1 + k) % g->accounts + 1;
		t->amount = 1 + (r >> 48) % 1000;
		t->ledger = 1;
		t->code = 1;
	}
}

/* Push count transfers through the engine in batches, window in flight;
 * *elapsed_ns from the first submit to the last reply.  0, or -1 after
 * printing why. */
static u64 rss_anon_bytes(void);

/* A long load says how far it is every 10 s on stderr, and where the
 * memory is: the process's own (RssAnon), the ledger's records and
 * indexes, the store's memtables, block cache and table readers, and the
 * allocator's free memory it keeps (what grows with history shows here
 * first). */
static void progress(struct engine *e, u64 sent, u64 count, u64 t0)
{
	struct ledger_stats ls;
	struct history_stats hs;
	struct mallinfo2 mi = mallinfo2();
	double s = (double)(mono_ns() - t0) / 1e9;

	const struct ledger *l = engine_read_begin(e);
	ledger_stats(l, &ls);
	engine_read_end(e);
	memset(&hs, 0, sizeof(hs));
	(void)engine_history_stats(e, &hs);
	fprintf(stderr,
		"tpwallet bench: %llu of %llu sent (%.0f/s); MiB: RssAnon "
		"%.0f, ledger %.0f (index %.0f), memtables %.0f, cache "
		"%.0f, table readers %.0f, malloc in use %.0f free %.0f; "
		"store buffer %llu\n",
		(unsigned long long)sent, (unsigned long long)count,
		(double)sent / s, (double)rss_anon_bytes() / 1048576.0,
		(double)(ls.index_bytes + ls.record_bytes) / 1048576.0,
		(double)ls.index_bytes / 1048576.0,
		(double)hs.store.memtable_bytes / 1048576.0,
		(double)hs.store.cache_bytes / 1048576.0,
		(double)hs.store.table_readers_bytes / 1048576.0,
		(double)mi.uordblks / 1048576.0,
		(double)mi.fordblks / 1048576.0,
		(unsigned long long)hs.buffered_transfers);
}

static int run_load(struct engine *e, struct bench *b, struct slot *slots,
		    u64 window, u64 batch, struct gen *g, u64 count,
		    u64 *elapsed_ns)
{
	u64 sent = 0, t0 = mono_ns(), next = t0 + 10000000000ull;
	int ret = 0;

	while (sent < count) {
		if (mono_ns() >= next) {
			progress(e, sent, count, t0);
			next += 10000000000ull;
		}
		pthread_mutex_lock(&b->lock);
		while (b->in_flight == window)
			pthread_cond_wait(&b->cond, &b->lock);
		struct slot *sl = NULL;
		for (u64 i = 0; i < window; i++)
			if (!slots[i].busy) {
				sl = &slots[i];
				break;
			}
		/* in_flight < window, so a slot is free. */
		if (!sl)
			abort();
		sl->busy = true;
		b->in_flight++;
		pthread_mutex_unlock(&b->lock);

		u32 n = (u32)(count - sent < batch ? count - sent : batch);
		gen_fill(g, sl->events, n);
		sl->req = (struct engine_request){.op = ENGINE_CREATE_TRANSFERS,
						  .count = n,
						  .events = sl->events,
						  .results = sl->results,
						  .done = on_done,
						  .ctx = b};
		sl->submitted_ns = mono_ns();
		if (engine_submit(e, &sl->req) < 0) {
			fprintf(stderr, "tpwallet bench: submit failed\n");
			pthread_mutex_lock(&b->lock);
			sl->busy = false;
			b->in_flight--;
			pthread_mutex_unlock(&b->lock);
			ret = -1;
			break;
		}
		sent += n;
	}
	pthread_mutex_lock(&b->lock);
	while (b->in_flight > 0)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
	*elapsed_ns = mono_ns() - t0;
	return ret;
}

/* Accounts 1..n, in full batches, one at a time.  0, or -1 after
 * printing why. */
static int create_accounts(struct engine *e, u64 n_accounts)
{
	struct account *acc = calloc(BATCH_EVENTS_MAX, sizeof(*acc));
	u32 *res = calloc(BATCH_EVENTS_MAX, sizeof(u32));
	int ret = acc && res ? 0 : -1;

	for (u64 done = 0; ret == 0 && done < n_accounts;) {
		u32 n = (u32)(n_accounts - done < BATCH_EVENTS_MAX
				      ? n_accounts - done
				      : BATCH_EVENTS_MAX);
		for (u32 i = 0; i < n; i++) {
			memset(&acc[i], 0, sizeof(acc[i]));
			acc[i].id = (u128)(done + i + 1);
			acc[i].ledger = 1;
			acc[i].code = 1;
		}
		struct engine_request r = {.op = ENGINE_CREATE_ACCOUNTS,
					   .count = n,
					   .events = acc,
					   .results = res};
		if (engine_execute(e, &r) < 0 || r.status < 0)
			ret = -1;
		done += n;
	}
	if (ret)
		fprintf(stderr, "tpwallet bench: create accounts failed\n");
	free(acc);
	free(res);
	return ret;
}

static u64 rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0, resident = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return (u64)resident * (u64)sysconf(_SC_PAGESIZE);
}

/* ---- --history: the store measured at N transfers of history ---------- */

struct hist_opts {
	const char *data; /* an empty directory of our own */
	u64 accounts, history, measure, single, lookups, cache_bytes, seed;
	bool time_ids, json;
};

static struct slot *slots_new(u64 window, u64 batch)
{
	struct slot *sl = calloc(window, sizeof(*sl));

	for (u64 i = 0; sl && i < window; i++) {
		sl[i].events = calloc(batch, sizeof(struct transfer));
		sl[i].results = calloc(batch, sizeof(u32));
		if (!sl[i].events || !sl[i].results) {
			for (u64 j = 0; j <= i; j++) {
				free(sl[j].events);
				free(sl[j].results);
			}
			free(sl);
			return NULL;
		}
	}
	return sl;
}

static void slots_free(struct slot *sl, u64 window)
{
	for (u64 i = 0; sl && i < window; i++) {
		free(sl[i].events);
		free(sl[i].results);
	}
	free(sl);
}

/* count transfers in batches of batch, window in flight, until the store
 * holds them all (engine_digest waits for the writer): transfers/s, or
 * a negative value after printing why. */
static double load_stored(struct engine *e, struct gen *g, u64 count, u64 batch,
			  u64 window, u64 *failures)
{
	struct slot *sl = slots_new(window, batch);
	struct bench b = {.batch = (u32)batch};
	u64 ns = 0, t0 = mono_ns();
	u8 d[32];
	double ret = -1;

	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	if (sl && run_load(e, &b, sl, window, batch, g, count, &ns) == 0 &&
	    b.status == 0) {
		engine_digest(e, d);
		ns = mono_ns() - t0;
		ret = (double)count / ((double)ns / 1e9);
	} else if (b.status) {
		fprintf(stderr, "tpwallet bench: engine error %d\n", b.status);
	}
	*failures += b.failures;
	slots_free(sl, window);
	pthread_cond_destroy(&b.cond);
	pthread_mutex_destroy(&b.lock);
	return ret;
}

/* RssAnon of /proc/self/status: the process's own memory, not the page
 * cache or file mappings the kernel can drop. */
static u64 rss_anon_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	u64 kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "RssAnon:", 8) == 0) {
			const char *p = line + 8;
			while (*p == ' ' || *p == '\t')
				p++;
			size_t n = strspn(p, "0123456789");
			if (parse_digits(p, n, &kb) < 0)
				kb = 0;
			break;
		}
	fclose(f);
	return kb * 1024u;
}

/* Bytes of the regular files in dir (not recursive: the store and the
 * journal are flat); with drop, each is synced and dropped from the page
 * cache first, so the next read goes to the disk. */
static u64 dir_files(const char *dir, bool drop)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	u64 sum = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[4096];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		sum += (u64)st.st_size;
		if (drop) {
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				(void)fdatasync(fd);
				(void)posix_fadvise(fd, 0, 0,
						    POSIX_FADV_DONTNEED);
				close(fd);
			}
		}
	}
	closedir(d);
	return sum;
}

struct pct {
	double p50_us, p99_us;
};

static struct pct percentiles(u64 *ns, u64 n)
{
	struct pct p = {0, 0};

	if (!n)
		return p;
	qsort(ns, n, sizeof(u64), cmp_u64);
	p.p50_us = (double)ns[n / 2] / 1e3;
	p.p99_us = (double)ns[n * 99 / 100] / 1e3;
	return p;
}

/* Random lookups of old transfers (those below the memory window, so
 * the store answers): found counts the ones found. */
static struct pct time_lookups(struct engine *e, const struct gen *g, u64 old,
			       u64 n, u64 salt, u64 *ns, u64 *found)
{
	for (u64 i = 0; i < n; i++) {
		u128 id = gen_id(g, mix(g->seed ^ salt, i) % old);
		struct transfer t;
		enum pending_status st;
		u64 t0 = mono_ns();
		int r = engine_lookup_transfer(e, id, &t, &st);
		ns[i] = mono_ns() - t0;
		*found += r == 0 && t.id == id;
	}
	return percentiles(ns, n);
}

/* Pages of a random account's transfers, newest first, limit 100. */
static struct pct time_pages(struct engine *e, u64 accounts, u64 n, u64 salt,
			     u64 *ns, u64 *rows)
{
	struct transfer *out = calloc(100, sizeof(*out));
	u8 st[100];

	for (u64 i = 0; out && i < n; i++) {
		struct account_filter f = {.account_id =
						   mix(salt, i) % accounts + 1,
					   .limit = 100,
					   .flags = ACCOUNT_FILTER_DEBITS |
						    ACCOUNT_FILTER_CREDITS |
						    ACCOUNT_FILTER_REVERSED};
		u64 t0 = mono_ns();
		int r = engine_account_transfers(e, &f, out, st, 100);
		ns[i] = mono_ns() - t0;
		*rows += r > 0 ? (u64)r : 0;
	}
	free(out);
	return percentiles(ns, out ? n : 0);
}

/* engine_open on the data directory, then the first read that needs the
 * store: seconds to ready, or a negative value. */
static double open_ready(struct engine **e, const struct engine_options *eo,
			 u128 old_id)
{
	const char *err = NULL;
	struct transfer t;
	enum pending_status st;
	u64 t0 = mono_ns();

	if (engine_open(e, eo, &err) < 0) {
		fprintf(stderr, "tpwallet bench: reopen: %s\n",
			err ? err : "?");
		*e = NULL;
		return -1;
	}
	if (engine_lookup_transfer(*e, old_id, &t, &st) != 0) {
		fprintf(stderr, "tpwallet bench: the oldest transfer is "
				"missing after a restart\n");
		return -1;
	}
	return (double)(mono_ns() - t0) / 1e9;
}

/* The child of the kill -9 measurement: open the engine on dir, write
 * batches until killed, "ready" on stdout after the first.  A separate
 * process image (exec), since RocksDB's threads do not survive fork. */
static int crash_writer(const char *dir, u64 accounts, u64 cache_bytes,
			u64 seed, bool time_ids)
{
	struct engine_options eo = {.data_dir = dir,
				    .quiet = true,
				    .store = true,
				    .cache_bytes = cache_bytes,
				    .snapshot_every_records = UINT64_MAX};
	struct engine *e = NULL;
	const char *err = NULL;
	u64 blocks[1u << 10] = {0};
	struct gen g = {.accounts = accounts,
			.seed = seed,
			.time_ids = time_ids,
			.block_ms = blocks,
			.blocks = 1u << 10};
	u64 fails = 0;

	if (engine_open(&e, &eo, &err) < 0) {
		fprintf(stderr, "tpwallet bench: crash writer: %s\n",
			err ? err : "?");
		return EXIT_SOFTWARE;
	}
	/* Bounded: (1 << 10) blocks of ids, about four million transfers;
	 * the parent kills it long before. */
	for (int round = 0; round < 400; round++) {
		if (load_stored(e, &g, 8190, 8190, 1, &fails) < 0)
			break;
		if (round == 0) {
			printf("ready\n");
			fflush(stdout);
		}
	}
	engine_close(e);
	return EXIT_SOFTWARE;
}

/* Run the crash writer on dir, SIGKILL it while it writes.  0 or -1. */
static int crash_once(const struct hist_opts *o, const char *dir)
{
	char acc[32], cache[32], seed[32];
	int fds[2];
	pid_t pid;

	snprintf(acc, sizeof(acc), "%llu", (unsigned long long)o->accounts);
	snprintf(cache, sizeof(cache), "%llu",
		 (unsigned long long)o->cache_bytes);
	snprintf(seed, sizeof(seed), "%llu", (unsigned long long)o->seed + 1);
	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		static char a0[] = "tpwallet", a1[] = "bench",
			    a2[] = "--crash-writer", a4[] = "--accounts",
			    a6[] = "--cache-bytes", a8[] = "--seed",
			    a10[] = "--ids", rnd[] = "random", tim[] = "time";
		char dirc[4096];
		snprintf(dirc, sizeof(dirc), "%s", dir);
		char *args[] = {a0,  a1,   a2,	dirc,
				a4,  acc,  a6,	cache,
				a8,  seed, a10, o->time_ids ? tim : rnd,
				NULL};
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	close(fds[1]);
	char buf[16] = "";
	ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	/* Let it write (and the store flush) for a while, then kill it. */
	if (got > 0) {
		struct timespec ts = {2, 0};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	int wst = 0;
	while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
		;
	if (got <= 0 || strncmp(buf, "ready", 5) != 0) {
		fprintf(stderr, "tpwallet bench: the crash writer did not "
				"start\n");
		return -1;
	}
	return 0;
}

static int bench_history(const struct hist_opts *o)
{
	char dir_empty[4096], dir_hist[4096], p[4096 + 16];
	struct engine_options eo = {.quiet = true,
				    .store = true,
				    .cache_bytes = o->cache_bytes,
				    .accounts_hint = o->accounts,
				    .snapshot_every_records = UINT64_MAX};
	struct engine *e = NULL;
	const char *err = NULL;
	u64 total = o->history + o->measure + o->single;
	struct gen g = {.accounts = o->accounts,
			.seed = o->seed,
			.time_ids = o->time_ids,
			.blocks = (total >> GEN_BLOCK_SHIFT) + 1};
	struct gen ge = g;
	u64 fails = 0, found_cold = 0, found_warm = 0, rows_cold = 0,
	    rows_warm = 0;
	u64 *ns = calloc(o->lookups, sizeof(u64));
	int ret = EXIT_SOFTWARE;

	g.block_ms = calloc(g.blocks, sizeof(u64));
	ge.block_ms = calloc(g.blocks, sizeof(u64));
	snprintf(dir_empty, sizeof(dir_empty), "%s/empty", o->data);
	snprintf(dir_hist, sizeof(dir_hist), "%s/history", o->data);
	if (!ns || !g.block_ms || !ge.block_ms || fsdir_make(dir_empty) < 0 ||
	    fsdir_make(dir_hist) < 0)
		goto cleanup;

	/* N transfers of history, the same way, then the figures at N. */
	eo.data_dir = dir_hist;
	if (engine_open(&e, &eo, &err) < 0 ||
	    create_accounts(e, o->accounts) < 0)
		goto cleanup;
	u64 t_pre = mono_ns();
	double tps_pre =
		load_stored(e, &g, o->history, BATCH_EVENTS_MAX, 4, &fails);
	t_pre = mono_ns() - t_pre;
	double tps_hist =
		load_stored(e, &g, o->measure, BATCH_EVENTS_MAX, 4, &fails);
	double tps_single = load_stored(e, &g, o->single, 1, 64, &fails);
	if (tps_pre < 0 || tps_hist < 0 || tps_single < 0)
		goto cleanup;
	u64 rss_anon = rss_anon_bytes();
	struct history_stats hs;
	(void)engine_history_stats(e, &hs);
	/* Old: below the newest window the ledger keeps in memory. */
	u64 made = g.next;
	u64 old = made > hs.keep_transfers ? made - hs.keep_transfers : 1;
	struct pct look_warm =
		time_lookups(e, &g, old, o->lookups, 1, ns, &found_warm);
	struct pct page_warm =
		time_pages(e, o->accounts, o->lookups, 2, ns, &rows_warm);
	u8 d_before[32], d_after[32];
	engine_digest(e, d_before);
	engine_close(e);
	e = NULL;

	snprintf(p, sizeof(p), "%s/" DATADIR_STORE, dir_hist);
	u64 store_bytes = dir_files(p, true);
	snprintf(p, sizeof(p), "%s/" DATADIR_JOURNAL, dir_hist);
	u64 journal_bytes = dir_files(p, true);
	double clean_s = open_ready(&e, &eo, gen_id(&g, 0));
	if (clean_s < 0)
		goto cleanup;
	engine_digest(e, d_after);
	struct pct look_cold =
		time_lookups(e, &g, old, o->lookups, 3, ns, &found_cold);
	engine_close(e);
	e = NULL;
	snprintf(p, sizeof(p), "%s/" DATADIR_STORE, dir_hist);
	(void)dir_files(p, true);
	if (engine_open(&e, &eo, &err) < 0)
		goto cleanup;
	struct pct page_cold =
		time_pages(e, o->accounts, o->lookups, 4, ns, &rows_cold);
	engine_close(e);
	e = NULL;

	if (crash_once(o, dir_hist) < 0)
		goto cleanup;
	double kill9_s = open_ready(&e, &eo, gen_id(&g, 0));
	if (kill9_s < 0)
		goto cleanup;
	engine_close(e);
	e = NULL;

	/* The same run's figure on an empty ledger, store on; last, so
	 * that neither figure pays for the process's first touch of its
	 * memory. */
	eo.data_dir = dir_empty;
	if (engine_open(&e, &eo, &err) < 0 ||
	    create_accounts(e, o->accounts) < 0)
		goto cleanup;
	double tps_empty =
		load_stored(e, &ge, o->measure, BATCH_EVENTS_MAX, 4, &fails);
	engine_close(e);
	e = NULL;
	(void)fsdir_remove_tree(dir_empty);
	if (tps_empty < 0)
		goto cleanup;

	bool same = memcmp(d_before, d_after, 32) == 0;
	double ratio = tps_hist / tps_empty;
	double bpt = (double)(store_bytes + journal_bytes) / (double)made;
	double pages =
		(double)(rows_warm + rows_cold) / (double)(2 * o->lookups);
	const char *ids = o->time_ids ? "time" : "random";
	if (o->json) {
		printf("{\"mode\":\"history\",\"path\":\"engine\","
		       "\"ids\":\"%s\",\"accounts\":%llu,\"history\":%llu,"
		       "\"cache_bytes\":%llu,\"measured\":%llu,"
		       "\"single\":%llu,\"preload_transfers_per_second\":%.0f,"
		       "\"preload_seconds\":%.3f,"
		       "\"empty_transfers_per_second\":%.0f,"
		       "\"transfers_per_second\":%.0f,"
		       "\"ratio_to_empty\":%.3f,"
		       "\"single_transfers_per_second\":%.0f,"
		       "\"rss_anon_bytes\":%llu,"
		       "\"restart_kill9_seconds\":%.3f,"
		       "\"restart_clean_seconds\":%.3f,"
		       "\"lookup_cold_us_p50\":%.1f,\"lookup_cold_us_p99\":%."
		       "1f,"
		       "\"lookup_warm_us_p50\":%.1f,\"lookup_warm_us_p99\":%."
		       "1f,"
		       "\"lookups\":%llu,\"lookups_found\":%llu,"
		       "\"page_cold_us_p50\":%.1f,\"page_cold_us_p99\":%.1f,"
		       "\"page_warm_us_p50\":%.1f,\"page_warm_us_p99\":%.1f,"
		       "\"page_rows_avg\":%.1f,"
		       "\"store_bytes\":%llu,\"journal_bytes\":%llu,"
		       "\"disk_bytes_per_transfer\":%.1f,"
		       "\"failed_events\":%llu,"
		       "\"digest_equal_after_restart\":%s}\n",
		       ids, (unsigned long long)o->accounts,
		       (unsigned long long)o->history,
		       (unsigned long long)o->cache_bytes,
		       (unsigned long long)o->measure,
		       (unsigned long long)o->single, tps_pre,
		       (double)t_pre / 1e9, tps_empty, tps_hist, ratio,
		       tps_single, (unsigned long long)rss_anon, kill9_s,
		       clean_s, look_cold.p50_us, look_cold.p99_us,
		       look_warm.p50_us, look_warm.p99_us,
		       (unsigned long long)(2 * o->lookups),
		       (unsigned long long)(found_cold + found_warm),
		       page_cold.p50_us, page_cold.p99_us, page_warm.p50_us,
		       page_warm.p99_us, pages, (unsigned long long)store_bytes,
		       (unsigned long long)journal_bytes, bpt,
		       (unsigned long long)fails, same ? "true" : "false");
	} else {
		printf("tpwallet bench --history: %llu transfers preloaded "
		       "through the real write path (engine: journal with "
		       "fdatasync, ledger, store writer), %s ids, %llu "
		       "accounts, cache_bytes %llu\n",
		       (unsigned long long)o->history, ids,
		       (unsigned long long)o->accounts,
		       (unsigned long long)o->cache_bytes);
		printf("  preload                %12.0f transfers/s  (%.1f s, "
		       "until stored)\n",
		       tps_pre, (double)t_pre / 1e9);
		printf("  batches at N           %12.0f transfers/s  (%llu, "
		       "until stored)\n",
		       tps_hist, (unsigned long long)o->measure);
		printf("  batches, empty ledger  %12.0f transfers/s  (ratio "
		       "%.3f)\n",
		       tps_empty, ratio);
		printf("  one entry per transfer %12.0f transfers/s  (batch 1, "
		       "64 in flight, %llu)\n",
		       tps_single, (unsigned long long)o->single);
		printf("  RssAnon at N           %12.1f MiB\n",
		       (double)rss_anon / 1048576.0);
		printf("  ready after kill -9    %12.3f s\n", kill9_s);
		printf("  ready after close      %12.3f s\n", clean_s);
		printf("  old transfer lookup    cold p50/p99 %.1f / %.1f us, "
		       "warm %.1f / %.1f us (%llu of %llu found)\n",
		       look_cold.p50_us, look_cold.p99_us, look_warm.p50_us,
		       look_warm.p99_us,
		       (unsigned long long)(found_cold + found_warm),
		       (unsigned long long)(2 * o->lookups));
		printf("  account page (100)     cold p50/p99 %.1f / %.1f us, "
		       "warm %.1f / %.1f us (%.1f rows avg)\n",
		       page_cold.p50_us, page_cold.p99_us, page_warm.p50_us,
		       page_warm.p99_us, pages);
		printf("  disk bytes/transfer    %12.1f  (store %llu, journal "
		       "%llu)\n",
		       bpt, (unsigned long long)store_bytes,
		       (unsigned long long)journal_bytes);
		printf("  failed events          %12llu\n",
		       (unsigned long long)fails);
		printf("  digest after restart   %12s\n",
		       same ? "equal" : "DIFFERENT");
	}
	ret = same && fails == 0 && found_cold + found_warm == 2 * o->lookups
		      ? 0
		      : EXIT_SOFTWARE;

cleanup:
	if (ret && err)
		fprintf(stderr, "tpwallet bench: %s\n", err);
	if (e)
		engine_close(e);
	free(ns);
	free(g.block_ms);
	free(ge.block_ms);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet bench [--accounts N] [--transfers N] "
		"[--batch N] [--window N]\n"
		"                      [--data DIR] [--no-sync] [--seed N] "
		"[--json] [--audit]\n"
		"                      [--store] [--history N [--ids "
		"random|time] [--cache-bytes N]\n"
		"                       [--single N] [--lookups N]]\n\n"
		"Measure the engine in process: create N accounts, apply "
		"random\n"
		"transfers in batches through the durable journal (fdatasync "
		"per\n"
		"group), then recover from the journal and compare state "
		"digests.\n\n"
		"  --accounts N   accounts (default 100000)\n"
		"  --transfers N  transfers (default 10000000)\n"
		"  --batch N      transfers per batch, 1..8190 (default 8190)\n"
		"  --window N     batches in flight, 1..64 (default 4)\n"
		"  --data DIR     empty directory to use (default: a new one "
		"under $TMPDIR, removed after)\n"
		"  --no-sync      skip fdatasync (to see what durability "
		"costs)\n"
		"  --json         print one JSON object\n"
		"  --audit        run the audit thread beside the engine, as "
		"serve does\n                 (docs/benchmarks.md)\n"
		"  --store        history in DATA/store behind the journal "
		"(docs/store.md)\n"
		"  --history N    the store at N transfers of history: "
		"preload N through the\n"
		"                 engine, then measure --transfers more in "
		"batches (default\n"
		"                 1000000; against an empty ledger's figure), "
		"--single N with\n"
		"                 one entry per transfer (default 20000), "
		"RssAnon, restarts\n"
		"                 after kill -9 and a close, --lookups N old "
		"transfers and\n"
		"                 account pages cold and warm (default 2000), "
		"disk bytes\n"
		"  --ids KIND     random (default) or time (ms clock in the "
		"high bits)\n"
		"  --cache-bytes N  the store's cache_bytes (default "
		"536870912)\n\n"
		"Example:\n"
		"  tpwallet bench --transfers 100000 --json\n"
		"  tpwallet bench --history 20000 --transfers 5000 --single "
		"500 "
		"--cache-bytes 1048576\n");
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{"accounts", required_argument, NULL, 'a'},
		{"transfers", required_argument, NULL, 't'},
		{"batch", required_argument, NULL, 'b'},
		{"window", required_argument, NULL, 'w'},
		{"data", required_argument, NULL, 'd'},
		{"seed", required_argument, NULL, 's'},
		{"no-sync", no_argument, NULL, 'n'},
		{"audit", no_argument, NULL, 'A'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"history", required_argument, NULL, 'H'},
		{"store", no_argument, NULL, 'S'},
		{"ids", required_argument, NULL, 'i'},
		{"cache-bytes", required_argument, NULL, 'c'},
		{"lookups", required_argument, NULL, 'l'},
		{"single", required_argument, NULL, '1'},
		{"crash-writer", required_argument, NULL, 'X'},
		{NULL, 0, NULL, 0},
	};
	u64 accounts = 100000, transfers = 10000000, batch = 8190, window = 4;
	u64 seed = 42, history = 0, cache_bytes = HISTORY_CACHE_BYTES_DEFAULT;
	u64 lookups = 2000, single = 20000;
	const char *data = NULL, *crash_dir = NULL;
	bool json = false, no_sync = false, with_audit = false;
	bool store = false, time_ids = false, transfers_set = false;
	struct audit *audit = NULL;
	u64 audit_lag_ms = 0;
	char tmpdir[4096] = "";
	int c, ret = EXIT_SOFTWARE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "a:t:b:w:d:s:nAjhH:Si:c:l:1:X:",
				opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'a':
			bad = parse_u64(optarg, 100000000, &accounts) ||
			      accounts < 2;
			break;
		case 't':
			bad = parse_u64(optarg, 1000000000, &transfers);
			transfers_set = true;
			break;
		case 'H':
			bad = parse_u64(optarg, 1000000000, &history) ||
			      history == 0;
			break;
		case 'S': store = true; break;
		case 'i':
			time_ids = strcmp(optarg, "time") == 0;
			bad = !time_ids && strcmp(optarg, "random") != 0;
			break;
		case 'c':
			bad = parse_u64(optarg, 1ull << 40, &cache_bytes) ||
			      cache_bytes < HISTORY_CACHE_BYTES_MIN;
			break;
		case 'l':
			bad = parse_u64(optarg, 1000000, &lookups) ||
			      lookups == 0;
			break;
		case '1':
			bad = parse_u64(optarg, 100000000, &single) ||
			      single == 0;
			break;
		case 'X': crash_dir = optarg; break;
		case 'b':
			bad = parse_u64(optarg, BATCH_EVENTS_MAX, &batch) ||
			      batch == 0;
			break;
		case 'w':
			bad = parse_u64(optarg, WINDOW_MAX, &window) ||
			      window == 0;
			break;
		case 's': bad = parse_u64(optarg, UINT64_MAX, &seed); break;
		case 'd': data = optarg; break;
		case 'n': no_sync = true; break;
		case 'A': with_audit = true; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
		if (bad) {
			fprintf(stderr, "tpwallet bench: invalid value '%s'\n",
				optarg);
			return EXIT_USAGE;
		}
	}
	if (crash_dir)
		return crash_writer(crash_dir, accounts, cache_bytes, seed,
				    time_ids);
	if (history && (no_sync || with_audit)) {
		fprintf(stderr, "tpwallet bench: --history measures the "
				"durable path without the audit thread\n");
		return EXIT_USAGE;
	}
	if (!data) {
		const char *t = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/tpwallet-bench-XXXXXX",
			 t && *t ? t : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("tpwallet bench: mkdtemp");
			return EXIT_SOFTWARE;
		}
		data = tmpdir;
	}
	if (history) {
		struct hist_opts ho = {
			.data = data,
			.accounts = accounts,
			.history = history,
			.measure = transfers_set ? transfers : 1000000,
			.single = single,
			.lookups = lookups,
			.cache_bytes = cache_bytes,
			.seed = seed,
			.time_ids = time_ids,
			.json = json,
		};
		ret = bench_history(&ho);
		if (tmpdir[0])
			(void)fsdir_remove_tree(tmpdir);
		return ret;
	}

	struct engine_options eo = {
		.data_dir = data,
		.accounts_hint = accounts,
		.transfers_hint = transfers,
		.no_sync = no_sync,
		.quiet = true,
		/* No snapshot during the run: recovery then measures a
		 * replay of the whole journal. */
		.snapshot_every_records = UINT64_MAX,
		.store = store,
		.cache_bytes = store ? cache_bytes : 0,
	};
	struct engine *e = NULL;
	const char *err = NULL;
	struct slot *slots = calloc(window, sizeof(*slots));
	struct bench b = {.batch = (u32)batch};
	u64 batches_total = (transfers + batch - 1) / batch;
	b.latencies_ns = calloc(batches_total + 1, sizeof(u64));
	b.latencies_cap = batches_total + 1;
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	if (!slots || !b.latencies_ns)
		goto cleanup;
	for (u64 i = 0; i < window; i++) {
		slots[i].events =
			calloc(BATCH_EVENTS_MAX, sizeof(struct transfer));
		slots[i].results = calloc(BATCH_EVENTS_MAX, sizeof(u32));
		if (!slots[i].events || !slots[i].results)
			goto cleanup;
	}
	if (engine_open(&e, &eo, &err) < 0) {
		fprintf(stderr, "tpwallet bench: %s\n",
			err ? err : "cannot open");
		goto cleanup;
	}

	if (with_audit && audit_open(&audit, data, e, NULL, &err) < 0) {
		fprintf(stderr, "tpwallet bench: audit: %s\n", err ? err : "?");
		goto cleanup;
	}

	/* Accounts, in full batches, one at a time. */
	u64 t_acc = mono_ns();
	if (create_accounts(e, accounts) < 0)
		goto cleanup;
	t_acc = mono_ns() - t_acc;

	/* Transfers: keep `window` batches in flight. */
	struct gen g = {.accounts = accounts, .seed = seed};
	u64 t_transfers = 0;
	if (run_load(e, &b, slots, window, batch, &g, transfers, &t_transfers) <
	    0)
		goto cleanup;

	struct engine_stats es;
	struct ledger_stats ls;
	if (audit) {
		/* How long the tree takes to catch up with the journal. */
		struct engine_stats now;
		engine_stats(e, &now);
		u64 t_audit = mono_ns();
		while (audit_size(audit) < now.last_seq &&
		       audit_healthy(audit)) {
			struct timespec ms = {0, 1000000L};
			nanosleep(&ms, NULL);
		}
		audit_lag_ms = (mono_ns() - t_audit) / 1000000u;
		audit_close(audit);
		audit = NULL;
	}
	u8 digest_before[32], digest_after[32];
	engine_stats(e, &es);
	engine_digest(e, digest_before);
	const struct ledger *l = engine_read_begin(e);
	ledger_stats(l, &ls);
	bool invariants = ledger_check_invariants(l);
	engine_read_end(e);
	u64 rss = rss_bytes();
	engine_close(e);
	e = NULL;

	/* Recovery: replay the whole journal. */
	u64 t_rec = mono_ns();
	if (engine_open(&e, &eo, &err) < 0) {
		fprintf(stderr, "tpwallet bench: recovery failed: %s\n",
			err ? err : "?");
		goto cleanup;
	}
	t_rec = mono_ns() - t_rec;
	struct engine_stats rs;
	engine_stats(e, &rs);
	engine_digest(e, digest_after);
	bool same = memcmp(digest_before, digest_after, 32) == 0;

	qsort(b.latencies_ns, b.latencies_n, sizeof(u64), cmp_u64);
	double secs = (double)t_transfers / 1e9;
	double tps = (double)transfers / secs;
	double p50 = b.latencies_n
			     ? (double)b.latencies_ns[b.latencies_n / 2] / 1e6
			     : 0;
	double p99 =
		b.latencies_n
			? (double)b.latencies_ns[b.latencies_n * 99 / 100] / 1e6
			: 0;
	u64 entries = accounts + transfers;
	double rec_eps = (double)entries / ((double)t_rec / 1e9);
	double idx_per_transfer =
		ls.transfers ? (double)ls.index_bytes /
				       (double)(ls.transfers + ls.accounts)
			     : 0;
	double sync_avg =
		es.sync_count ? (double)es.sync_sum_us / (double)es.sync_count
			      : 0;

	if (json) {
		printf("{\"accounts\":%llu,\"transfers\":%llu,\"batch\":%llu,"
		       "\"window\":%llu,\"durable\":%s,"
		       "\"transfers_per_second\":%.0f,\"seconds\":%.3f,"
		       "\"batch_latency_ms_p50\":%.3f,\"batch_latency_ms_p99\":"
		       "%.3f,"
		       "\"journal_groups\":%llu,\"fsync_us_avg\":%.1f,"
		       "\"failed_events\":%llu,"
		       "\"accounts_seconds\":%.3f,"
		       "\"recovery_entries\":%llu,\"recovery_seconds\":%.3f,"
		       "\"recovery_entries_per_second\":%.0f,"
		       "\"digest_equal_after_recovery\":%s,\"invariants_hold\":"
		       "%s,"
		       "\"index_bytes\":%llu,\"index_bytes_per_record\":%.1f,"
		       "\"record_bytes\":%llu,\"rss_bytes\":%llu,"
		       "\"journal_bytes\":%llu,\"audit\":%s,"
		       "\"audit_catch_up_ms\":%llu}\n",
		       (unsigned long long)accounts,
		       (unsigned long long)transfers, (unsigned long long)batch,
		       (unsigned long long)window, no_sync ? "false" : "true",
		       tps, secs, p50, p99, (unsigned long long)es.batches,
		       sync_avg, (unsigned long long)b.failures,
		       (double)t_acc / 1e9, (unsigned long long)entries,
		       (double)t_rec / 1e9, rec_eps, same ? "true" : "false",
		       invariants ? "true" : "false",
		       (unsigned long long)ls.index_bytes, idx_per_transfer,
		       (unsigned long long)ls.record_bytes,
		       (unsigned long long)rss,
		       (unsigned long long)es.journal_bytes,
		       with_audit ? "true" : "false",
		       (unsigned long long)audit_lag_ms);
	} else {
		printf("tpwallet bench: %llu accounts, %llu transfers in "
		       "batches "
		       "of %llu, %llu in flight, %s\n",
		       (unsigned long long)accounts,
		       (unsigned long long)transfers, (unsigned long long)batch,
		       (unsigned long long)window,
		       no_sync ? "NO fdatasync"
			       : "durable (fdatasync per group)");
		printf("  transfers/s            %12.0f  (%.2f s)\n", tps,
		       secs);
		printf("  batch latency p50/p99  %8.2f / %.2f ms\n", p50, p99);
		printf("  journal groups         %12llu  (fdatasync avg %.0f "
		       "us)\n",
		       (unsigned long long)es.batches, sync_avg);
		printf("  failed events          %12llu\n",
		       (unsigned long long)b.failures);
		printf("  recovery               %12.0f entries/s  (%llu "
		       "entries, %.2f s)\n",
		       rec_eps, (unsigned long long)entries,
		       (double)t_rec / 1e9);
		printf("  digest after recovery  %12s\n",
		       same ? "equal" : "DIFFERENT");
		printf("  invariants             %12s\n",
		       invariants ? "hold" : "BROKEN");
		printf("  index bytes/record     %12.1f  (%llu index, %llu "
		       "record bytes)\n",
		       idx_per_transfer, (unsigned long long)ls.index_bytes,
		       (unsigned long long)ls.record_bytes);
		printf("  resident memory        %12.1f MiB\n",
		       (double)rss / 1048576.0);
		if (with_audit)
			printf("  audit tree caught up   %12llu ms after the "
			       "last batch\n",
			       (unsigned long long)audit_lag_ms);
	}
	ret = (same && invariants && b.status == 0) ? 0 : EXIT_SOFTWARE;

cleanup:
	audit_close(audit);
	if (e)
		engine_close(e);
	if (slots)
		for (u64 i = 0; i < window; i++) {
			free(slots[i].events);
			free(slots[i].results);
		}
	free(slots);
	free(b.latencies_ns);
	/* Only the directory this command made with mkdtemp. */
	if (tmpdir[0])
		(void)fsdir_remove_tree(tmpdir);
	return ret;
}
