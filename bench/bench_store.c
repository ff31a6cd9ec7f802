/*
 * bench_store.c - RocksDB against LMDB on the history store's workload
 * (issue 12, item 1), measured before either is built into the server.
 * Prints figures; never fails on time.
 *
 * The workload, the same for both engines:
 *   - transfers keyed by id (16 bytes, big-endian, so time-ordered ids
 *     sort in insertion order) with the 128-byte struct transfer as value;
 *   - the per-account index that the account-transfers route needs: for
 *     the debit and for the credit account, (account id, timestamp) ->
 *     transfer id, 24-byte key, 16-byte value;
 *   - accounts (min(1,000,000, N/10)) stay in memory and are not stored;
 *   - two id patterns: random u128 ids, and time-ordered ids (the high 48
 *     bits a millisecond clock that advances every 1024 transfers, the low
 *     80 bits random, as TigerBeetle's ids are);
 *   - inserts in batches of 8190 transfers, one write batch (RocksDB) or
 *     one write transaction (LMDB) each, as the engine applies groups;
 *   - no durability from the engine: the journal is the write-ahead log.
 *     RocksDB runs with its WAL disabled; LMDB with MDB_NOSYNC.  A
 *     checkpoint at the end makes the store durable: RocksDB flushes its
 *     memtables (SST files are synced) and creates a checkpoint of hard
 *     links; LMDB runs mdb_env_sync.
 *
 * Then, for each engine and id pattern (each in a child process, so the
 * resident memory is that configuration's own):
 *   - "cold": the store is closed, each file is fsynced and its pages
 *     dropped from the page cache (posix_fadvise POSIX_FADV_DONTNEED), and
 *     the store reopened (the open is timed), so the engine's cache is
 *     empty and the first read of each page goes to the disk; then
 *     --lookups point lookups of random existing ids, timed one by one.
 *     The same again before the absent-id lookups (the idempotency check)
 *     and before the account pages (the newest 100 index entries of a
 *     random account, and the transfer behind each);
 *   - "warm": every file read through once, so the page cache holds the
 *     store (the engine's own cache as it is), then the same three runs.
 *   - disk bytes per transfer (allocated blocks of the store's files after
 *     the checkpoint), RssAnon from /proc/self/status after the inserts
 *     and at the end, with the block cache at --cache-mib (RocksDB; index
 *     and filter blocks are charged to it).  LMDB has no cache of its own:
 *     its reads are the page cache through a shared mapping, which is not
 *     anonymous memory.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_store [--transfers N] [--engine rocksdb|lmdb|both]
 *       [--ids random|time|both] [--lookups L] [--cache-mib M]
 *       [--dir DIR] [--verify] [--json]
 * Defaults: 200,000 transfers, both engines, both id patterns, 10,000
 * lookups, 256 MiB, $TMPDIR/tpw-bench-store (removed at the end).  One
 * line per figure ("store=rocksdb ids=random n=... name=value load1=...");
 * with --json they go to stderr and one JSON summary to stdout.  --verify
 * also looks up every inserted id once and reports how many were found.
 */
#include "core/types.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define BATCH_TRANSFERS 8190u
#define ACCOUNTS_MAX	1000000u
#define PAGE_ROWS	100u
#define ID_BYTES	16u
#define INDEX_KEY_BYTES 24u
#define PATH_BYTES	4096u
#define RUNS_MAX	4u

/* One configuration's figures, written by its child process into a shared
 * mapping for the parent's summary. */
struct figures {
	int done;
	char store[8];
	char ids[8];
	double insert_tps;
	double insert_s;
	double flush_ms;
	double checkpoint_ms;
	double open_cold_ms;
	double get_cold_p50_us, get_cold_p99_us;
	double absent_cold_p50_us, absent_cold_p99_us;
	double page_cold_p50_us, page_cold_p99_us;
	double get_warm_p50_us, get_warm_p99_us;
	double absent_warm_p50_us, absent_warm_p99_us;
	double page_warm_p50_us, page_warm_p99_us;
	double page_rows_avg;
	double disk_bytes_per_transfer;
	double rss_anon_insert_mib;
	double rss_anon_end_mib;
	double load1;
	u64 found_existing;
	u64 found_absent;
	u64 verified;
};

static struct {
	u64 transfers;
	u32 accounts;
	u32 lookups;
	u64 cache_mib;
	char dir[PATH_BYTES];
	int verify;
	int json;
	FILE *out;
} cfg = {
	.transfers = 200000,
	.lookups = 10000,
	.cache_mib = 256,
};

/* ---- deterministic ids ---------------------------------------------- */

static u64 mix(u64 x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The id of transfer i (seed 0: inserted; seed 1: never inserted, the
 * absent ids; a collision of 128 random bits is not a concern). */
static u128 transfer_id(int time_ordered, u64 seed, u64 i)
{
	u64 a = mix(i * 4 + seed * 2), b = mix(i * 4 + seed * 2 + 1);
	if (time_ordered) {
		u64 ms = 1700000000000ull + (i >> 10);
		a = (ms << 16) | (a & 0xffff);
	}
	return ((u128)a << 64) | b;
}

static u128 account_id(u32 k)
{
	return ((u128)mix(0xacc0000000ull + k) << 64) | (u64)(k + 1);
}

static void put_be64(u8 *p, u64 v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (u8)v;
		v >>= 8;
	}
}

static void put_be128(u8 *p, u128 v)
{
	put_be64(p, (u64)(v >> 64));
	put_be64(p + 8, (u64)v);
}

static void make_transfer(struct transfer *t, int time_ordered, u64 i)
{
	u64 r = mix(i ^ 0x5151515151ull);
	u32 d = (u32)(r % cfg.accounts);
	u32 c = (u32)((r >> 32) % cfg.accounts);
	if (c == d)
		c = (c + 1) % cfg.accounts;
	memset(t, 0, sizeof(*t));
	t->id = transfer_id(time_ordered, 0, i);
	t->debit_account_id = account_id(d);
	t->credit_account_id = account_id(c);
	t->amount = 1 + (r % 100000);
	t->ledger = 1;
	t->code = 1;
	t->timestamp = 1700000000000000000ull + i;
}

static void index_key(u8 *k, u128 account, u64 timestamp)
{
	put_be128(k, account);
	put_be64(k + 16, timestamp);
}

/* ---- measuring -------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double load1(void)
{
	double l[1] = {0};
	return getloadavg(l, 1) == 1 ? l[0] : -1;
}

static double rss_anon_mib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "RssAnon:", 8) == 0) {
			kb = strtod(line + 8, NULL);
			break;
		}
	fclose(f);
	return kb / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void percentiles(double *us, u32 n, double *p50, double *p99)
{
	qsort(us, n, sizeof(*us), cmp_double);
	*p50 = n ? us[(u64)n * 50 / 100] : 0;
	*p99 = n ? us[(u64)n * 99 / 100] : 0;
}

static void figure(const struct figures *f, const char *name, double v)
{
	fprintf(cfg.out, "store=%s ids=%s n=%llu %s=%.2f load1=%.2f\n",
		f->store, f->ids, (unsigned long long)cfg.transfers, name, v,
		load1());
	fflush(cfg.out);
}

/* ---- the store's files ------------------------------------------------ */

/* Calls fn on every regular file under dir (one level of subdirectories,
 * enough for both engines' layouts). */
static u64 each_file(const char *dir, int (*fn)(const char *, u64 *), u64 *acc)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_BYTES];
	struct stat st;
	u64 n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			n += each_file(p, fn, acc);
		else if (S_ISREG(st.st_mode) && fn(p, acc) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static int add_blocks(const char *p, u64 *acc)
{
	struct stat st;
	if (stat(p, &st) != 0)
		return -1;
	*acc += (u64)st.st_blocks * 512;
	return 0;
}

/* fsync, then drop the file's pages: DONTNEED drops only clean pages. */
static int evict(const char *p, u64 *acc)
{
	int fd = open(p, O_RDONLY);
	(void)acc;
	if (fd < 0)
		return -1;
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return 0;
}

static int read_through(const char *p, u64 *acc)
{
	static u8 buf[1 << 20];
	int fd = open(p, O_RDONLY);
	ssize_t r;
	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		*acc += (u64)r;
	close(fd);
	return 0;
}

static int remove_file(const char *p, u64 *acc)
{
	(void)acc;
	return unlink(p);
}

static void remove_tree(const char *dir)
{
	DIR *d;
	struct dirent *e;
	char p[PATH_BYTES];
	struct stat st;
	u64 acc = 0;
	each_file(dir, remove_file, &acc);
	d = opendir(dir);
	if (d) {
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
				remove_tree(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* ---- the engines behind one interface ---------------------------------- */

struct store;
struct engine {
	const char *name;
	int (*open)(struct store *s, int create);
	void (*close)(struct store *s);
	/* Writes transfers [first, first + n) and their index entries in one
	 * batch. */
	int (*insert)(struct store *s, const struct transfer *t, u32 n);
	int (*checkpoint)(struct store *s, double *flush_ms, double *cp_ms);
	/* 1 found, 0 absent, <0 error; out may be NULL. */
	int (*get)(struct store *s, u128 id, struct transfer *out);
	/* The newest rows index entries of account: transfer ids, newest
	 * first; returns how many, <0 on error. */
	int (*page)(struct store *s, u128 account, u128 *ids, u32 rows);
};

struct store {
	const struct engine *e;
	char path[PATH_BYTES];
	/* RocksDB */
	rocksdb_t *db;
	rocksdb_options_t *opt;
	rocksdb_block_based_table_options_t *topt;
	rocksdb_cache_t *cache;
	rocksdb_filterpolicy_t *filter;
	rocksdb_writeoptions_t *wopt;
	rocksdb_readoptions_t *ropt;
	/* LMDB */
	MDB_env *env;
	MDB_dbi transfers_dbi, index_dbi;
	MDB_txn *rtxn;
};

/* RocksDB keeps both kinds of record in one column family: a one-byte
 * prefix tells them apart ('t' transfer by id, 'a' account index). */
#define RK_TRANSFER 't'
#define RK_INDEX    'a'

static int rocks_open(struct store *s, int create)
{
	char *err = NULL;
	s->opt = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opt, create);
	rocksdb_options_increase_parallelism(s->opt, 2);
	rocksdb_options_set_max_background_jobs(s->opt, 2);
	rocksdb_options_set_write_buffer_size(s->opt, 64u << 20);
	rocksdb_options_set_max_write_buffer_number(s->opt, 2);
	rocksdb_options_set_compression(s->opt, rocksdb_lz4_compression);
	s->topt = rocksdb_block_based_options_create();
	s->cache = rocksdb_cache_create_lru(cfg.cache_mib << 20);
	rocksdb_block_based_options_set_block_cache(s->topt, s->cache);
	/* Index and filter blocks are charged to the cache, so the cache
	 * setting bounds them too (otherwise they grow with the data). */
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->topt,
								      1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(
		s->topt, 1);
	s->filter = rocksdb_filterpolicy_create_bloom_full(10);
	rocksdb_block_based_options_set_filter_policy(s->topt, s->filter);
	rocksdb_options_set_block_based_table_factory(s->opt, s->topt);
	s->db = rocksdb_open(s->opt, s->path, &err);
	if (err) {
		fprintf(stderr, "rocksdb_open %s: %s\n", s->path, err);
		rocksdb_free(err);
		return -1;
	}
	s->wopt = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(s->wopt, 1);
	s->ropt = rocksdb_readoptions_create();
	return 0;
}

static void rocks_close(struct store *s)
{
	if (s->db)
		rocksdb_close(s->db);
	if (s->wopt)
		rocksdb_writeoptions_destroy(s->wopt);
	if (s->ropt)
		rocksdb_readoptions_destroy(s->ropt);
	/* The table options own the filter policy once set. */
	if (s->topt)
		rocksdb_block_based_options_destroy(s->topt);
	if (s->cache)
		rocksdb_cache_destroy(s->cache);
	if (s->opt)
		rocksdb_options_destroy(s->opt);
	s->db = NULL;
	s->wopt = NULL;
	s->ropt = NULL;
	s->topt = NULL;
	s->cache = NULL;
	s->opt = NULL;
	s->filter = NULL;
}

static int rocks_insert(struct store *s, const struct transfer *t, u32 n)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	u8 k[1 + INDEX_KEY_BYTES], v[ID_BYTES];
	char *err = NULL;
	for (u32 i = 0; i < n; i++) {
		k[0] = RK_TRANSFER;
		put_be128(k + 1, t[i].id);
		rocksdb_writebatch_put(wb, (const char *)k, 1 + ID_BYTES,
				       (const char *)&t[i], sizeof(t[i]));
		put_be128(v, t[i].id);
		k[0] = RK_INDEX;
		index_key(k + 1, t[i].debit_account_id, t[i].timestamp);
		rocksdb_writebatch_put(wb, (const char *)k, sizeof(k),
				       (const char *)v, sizeof(v));
		index_key(k + 1, t[i].credit_account_id, t[i].timestamp);
		rocksdb_writebatch_put(wb, (const char *)k, sizeof(k),
				       (const char *)v, sizeof(v));
	}
	rocksdb_write(s->db, s->wopt, wb, &err);
	rocksdb_writebatch_destroy(wb);
	if (err) {
		fprintf(stderr, "rocksdb_write: %s\n", err);
		rocksdb_free(err);
		return -1;
	}
	return 0;
}

static int rocks_checkpoint(struct store *s, double *flush_ms, double *cp_ms)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_checkpoint_t *cp;
	char *err = NULL;
	char cpdir[PATH_BYTES];
	double t0 = now_s();
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(s->db, fo, &err);
	rocksdb_flushoptions_destroy(fo);
	*flush_ms = (now_s() - t0) * 1e3;
	if (err)
		goto fail;
	t0 = now_s();
	cp = rocksdb_checkpoint_object_create(s->db, &err);
	if (err)
		goto fail;
	if (snprintf(cpdir, sizeof(cpdir), "%s.checkpoint", s->path) >=
	    (int)sizeof(cpdir)) {
		rocksdb_checkpoint_object_destroy(cp);
		return -1;
	}
	remove_tree(cpdir);
	rocksdb_checkpoint_create(cp, cpdir, 0, &err);
	rocksdb_checkpoint_object_destroy(cp);
	*cp_ms = (now_s() - t0) * 1e3;
	/* Hard links: removing them frees nothing the store still uses. */
	remove_tree(cpdir);
	if (err)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "rocksdb checkpoint: %s\n", err);
	rocksdb_free(err);
	return -1;
}

static int rocks_get(struct store *s, u128 id, struct transfer *out)
{
	u8 k[1 + ID_BYTES];
	char *err = NULL;
	size_t len = 0;
	char *v;
	k[0] = RK_TRANSFER;
	put_be128(k + 1, id);
	v = rocksdb_get(s->db, s->ropt, (const char *)k, sizeof(k), &len, &err);
	if (err) {
		fprintf(stderr, "rocksdb_get: %s\n", err);
		rocksdb_free(err);
		return -1;
	}
	if (!v)
		return 0;
	if (len != sizeof(struct transfer)) {
		rocksdb_free(v);
		return -1;
	}
	if (out)
		memcpy(out, v, len);
	rocksdb_free(v);
	return 1;
}

static int rocks_page(struct store *s, u128 account, u128 *ids, u32 rows)
{
	u8 lo[1 + INDEX_KEY_BYTES], hi[1 + INDEX_KEY_BYTES];
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	u32 n = 0;
	lo[0] = hi[0] = RK_INDEX;
	index_key(lo + 1, account, 0);
	index_key(hi + 1, account, ~(u64)0);
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo,
						    sizeof(lo));
	it = rocksdb_create_iterator(s->db, ro);
	for (rocksdb_iter_seek_for_prev(it, (const char *)hi, sizeof(hi));
	     n < rows && rocksdb_iter_valid(it); rocksdb_iter_prev(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);
		if (kl != sizeof(lo) || memcmp(k, lo, 1 + 16) != 0 ||
		    vl != ID_BYTES)
			break;
		u128 id = 0;
		for (u32 b = 0; b < ID_BYTES; b++)
			id = (id << 8) | (u8)v[b];
		ids[n++] = id;
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return (int)n;
}

static const struct engine rocksdb_engine = {
	"rocksdb",	  rocks_open, rocks_close, rocks_insert,
	rocks_checkpoint, rocks_get,  rocks_page,
};

static int lmdb_fail(const char *what, int rc)
{
	fprintf(stderr, "%s: %s\n", what, mdb_strerror(rc));
	return -1;
}

static int lmdb_open(struct store *s, int create)
{
	MDB_txn *txn;
	/* The map is a reservation, not an allocation: 1 KiB per transfer
	 * plus 1 GiB is several times what the data needs. */
	size_t map = (size_t)cfg.transfers * 1024 + ((size_t)1 << 30);
	int rc;
	if (create)
		mkdir(s->path, 0700);
	if ((rc = mdb_env_create(&s->env)) != 0)
		return lmdb_fail("mdb_env_create", rc);
	mdb_env_set_maxdbs(s->env, 2);
	mdb_env_set_mapsize(s->env, map);
	/* MDB_NOSYNC: commits do not sync (the journal is the WAL; the
	 * checkpoint syncs).  MDB_NORDAHEAD: random reads of a store larger
	 * than memory should not pull in neighbours. */
	rc = mdb_env_open(s->env, s->path, MDB_NOSYNC | MDB_NORDAHEAD, 0600);
	if (rc != 0)
		return lmdb_fail("mdb_env_open", rc);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_fail("mdb_txn_begin", rc);
	rc = mdb_dbi_open(txn, "transfers", create ? MDB_CREATE : 0,
			  &s->transfers_dbi);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "account_transfers",
				  create ? MDB_CREATE : 0, &s->index_dbi);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_fail("mdb_dbi_open", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_fail("mdb_txn_commit", rc);
	return 0;
}

static void lmdb_close(struct store *s)
{
	if (s->rtxn)
		mdb_txn_abort(s->rtxn);
	s->rtxn = NULL;
	if (s->env)
		mdb_env_close(s->env);
	s->env = NULL;
}

static int lmdb_insert(struct store *s, const struct transfer *t, u32 n)
{
	MDB_txn *txn;
	u8 k[INDEX_KEY_BYTES], v[ID_BYTES];
	MDB_val key, val;
	int rc;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_fail("mdb_txn_begin", rc);
	for (u32 i = 0; i < n && rc == 0; i++) {
		put_be128(k, t[i].id);
		key.mv_data = k;
		key.mv_size = ID_BYTES;
		val.mv_data = (void *)&t[i];
		val.mv_size = sizeof(t[i]);
		rc = mdb_put(txn, s->transfers_dbi, &key, &val, 0);
		put_be128(v, t[i].id);
		val.mv_data = v;
		val.mv_size = sizeof(v);
		key.mv_size = sizeof(k);
		index_key(k, t[i].debit_account_id, t[i].timestamp);
		if (rc == 0)
			rc = mdb_put(txn, s->index_dbi, &key, &val, 0);
		index_key(k, t[i].credit_account_id, t[i].timestamp);
		if (rc == 0)
			rc = mdb_put(txn, s->index_dbi, &key, &val, 0);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return lmdb_fail("mdb_put", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_fail("mdb_txn_commit", rc);
	return 0;
}

static int lmdb_checkpoint(struct store *s, double *flush_ms, double *cp_ms)
{
	double t0 = now_s();
	int rc = mdb_env_sync(s->env, 1);
	*flush_ms = (now_s() - t0) * 1e3;
	*cp_ms = 0;
	return rc ? lmdb_fail("mdb_env_sync", rc) : 0;
}

/* Readers share one read transaction, renewed for every lookup as a
 * server's reader would be between requests. */
static int lmdb_reader(struct store *s)
{
	int rc;
	if (!s->rtxn)
		rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
	else
		rc = mdb_txn_renew(s->rtxn);
	return rc ? lmdb_fail("mdb_txn_begin rdonly", rc) : 0;
}

static int lmdb_get(struct store *s, u128 id, struct transfer *out)
{
	u8 k[ID_BYTES];
	MDB_val key = {ID_BYTES, k}, val;
	int rc;
	if (lmdb_reader(s) != 0)
		return -1;
	put_be128(k, id);
	rc = mdb_get(s->rtxn, s->transfers_dbi, &key, &val);
	if (rc == 0 && val.mv_size == sizeof(*out) && out)
		memcpy(out, val.mv_data, sizeof(*out));
	mdb_txn_reset(s->rtxn);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return lmdb_fail("mdb_get", rc);
	return 1;
}

static int lmdb_page(struct store *s, u128 account, u128 *ids, u32 rows)
{
	u8 hi[INDEX_KEY_BYTES];
	MDB_val key = {sizeof(hi), hi}, val;
	MDB_cursor *c;
	u32 n = 0;
	int rc;
	if (lmdb_reader(s) != 0)
		return -1;
	if ((rc = mdb_cursor_open(s->rtxn, s->index_dbi, &c)) != 0) {
		mdb_txn_reset(s->rtxn);
		return lmdb_fail("mdb_cursor_open", rc);
	}
	/* The first key past the account, then backwards. */
	index_key(hi, account + 1, 0);
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	rc = mdb_cursor_get(c, &key, &val, rc == 0 ? MDB_PREV : MDB_LAST);
	index_key(hi, account, 0);
	for (; rc == 0 && n < rows;
	     rc = mdb_cursor_get(c, &key, &val, MDB_PREV)) {
		if (key.mv_size != INDEX_KEY_BYTES ||
		    memcmp(key.mv_data, hi, 16) != 0 || val.mv_size != ID_BYTES)
			break;
		const u8 *v = val.mv_data;
		u128 id = 0;
		for (u32 b = 0; b < ID_BYTES; b++)
			id = (id << 8) | v[b];
		ids[n++] = id;
	}
	mdb_cursor_close(c);
	mdb_txn_reset(s->rtxn);
	return (int)n;
}

static const struct engine lmdb_engine = {
	"lmdb",		 lmdb_open, lmdb_close, lmdb_insert,
	lmdb_checkpoint, lmdb_get,  lmdb_page,
};

/* ---- one configuration ------------------------------------------------ */

static int cold(struct store *s, double *open_ms)
{
	u64 acc = 0;
	double t0;
	s->e->close(s);
	each_file(s->path, evict, &acc);
	t0 = now_s();
	if (s->e->open(s, 0) != 0)
		return -1;
	if (open_ms)
		*open_ms = (now_s() - t0) * 1e3;
	return 0;
}

/* L lookups of inserted (seed 0) or absent (seed 1) ids; found counted. */
static int lookups(struct store *s, int time_ordered, u64 seed, u64 salt,
		   double *us, double *p50, double *p99, u64 *found)
{
	struct transfer t;
	*found = 0;
	for (u32 i = 0; i < cfg.lookups; i++) {
		u64 which = mix(salt + i) % cfg.transfers;
		u128 id = transfer_id(time_ordered, seed, which);
		double t0 = now_s();
		int rc = s->e->get(s, id, &t);
		us[i] = (now_s() - t0) * 1e6;
		if (rc < 0)
			return -1;
		if (rc == 1) {
			if (t.id != id)
				return -1;
			(*found)++;
		}
	}
	percentiles(us, cfg.lookups, p50, p99);
	return 0;
}

/* Account pages: the newest PAGE_ROWS index entries of a random account
 * and each transfer behind them, as the account-transfers route reads. */
static int pages(struct store *s, u64 salt, double *us, double *p50,
		 double *p99, double *rows_avg)
{
	u128 ids[PAGE_ROWS];
	struct transfer t;
	u64 rows = 0;
	for (u32 i = 0; i < cfg.lookups; i++) {
		u128 acct = account_id((u32)(mix(salt + i) % cfg.accounts));
		double t0 = now_s();
		int n = s->e->page(s, acct, ids, PAGE_ROWS);
		for (int r = 0; r < n; r++)
			if (s->e->get(s, ids[r], &t) != 1 ||
			    (t.debit_account_id != acct &&
			     t.credit_account_id != acct))
				return -1;
		us[i] = (now_s() - t0) * 1e6;
		if (n < 0)
			return -1;
		rows += (u64)n;
	}
	percentiles(us, cfg.lookups, p50, p99);
	*rows_avg = cfg.lookups ? (double)rows / cfg.lookups : 0;
	return 0;
}

static int run(const struct engine *e, int time_ordered, struct figures *f)
{
	struct store s = {.e = e};
	struct transfer *batch = NULL;
	double *us = NULL, t0;
	u64 acc = 0, found = 0;
	int ret = -1;

	snprintf(f->store, sizeof(f->store), "%s", e->name);
	snprintf(f->ids, sizeof(f->ids), "%s",
		 time_ordered ? "time" : "random");
	if (snprintf(s.path, sizeof(s.path), "%s/%s-%s", cfg.dir, e->name,
		     f->ids) >= (int)sizeof(s.path))
		return -1;
	remove_tree(s.path);
	batch = calloc(BATCH_TRANSFERS, sizeof(*batch));
	us = calloc(cfg.lookups ? cfg.lookups : 1, sizeof(*us));
	if (!batch || !us || e->open(&s, 1) != 0)
		goto cleanup;

	t0 = now_s();
	for (u64 i = 0; i < cfg.transfers; i += BATCH_TRANSFERS) {
		u32 n = (u32)(cfg.transfers - i < BATCH_TRANSFERS
				      ? cfg.transfers - i
				      : BATCH_TRANSFERS);
		for (u32 j = 0; j < n; j++)
			make_transfer(&batch[j], time_ordered, i + j);
		if (e->insert(&s, batch, n) != 0)
			goto cleanup;
	}
	f->insert_s = now_s() - t0;
	f->insert_tps = (double)cfg.transfers / f->insert_s;
	f->load1 = load1();
	figure(f, "insert_transfers_per_s", f->insert_tps);
	f->rss_anon_insert_mib = rss_anon_mib();
	figure(f, "rss_anon_after_insert_mib", f->rss_anon_insert_mib);
	if (e->checkpoint(&s, &f->flush_ms, &f->checkpoint_ms) != 0)
		goto cleanup;
	figure(f, "checkpoint_sync_ms", f->flush_ms);
	figure(f, "checkpoint_links_ms", f->checkpoint_ms);
	each_file(s.path, add_blocks, &acc);
	f->disk_bytes_per_transfer = (double)acc / (double)cfg.transfers;
	figure(f, "disk_bytes_per_transfer", f->disk_bytes_per_transfer);

	if (cold(&s, &f->open_cold_ms) != 0)
		goto cleanup;
	figure(f, "open_cold_ms", f->open_cold_ms);
	if (lookups(&s, time_ordered, 0, 1000, us, &f->get_cold_p50_us,
		    &f->get_cold_p99_us, &f->found_existing) != 0)
		goto cleanup;
	figure(f, "get_cold_p50_us", f->get_cold_p50_us);
	figure(f, "get_cold_p99_us", f->get_cold_p99_us);
	if (cold(&s, NULL) != 0 ||
	    lookups(&s, time_ordered, 1, 2000, us, &f->absent_cold_p50_us,
		    &f->absent_cold_p99_us, &f->found_absent) != 0)
		goto cleanup;
	figure(f, "absent_cold_p50_us", f->absent_cold_p50_us);
	figure(f, "absent_cold_p99_us", f->absent_cold_p99_us);
	if (cold(&s, NULL) != 0 ||
	    pages(&s, 3000, us, &f->page_cold_p50_us, &f->page_cold_p99_us,
		  &f->page_rows_avg) != 0)
		goto cleanup;
	figure(f, "page_cold_p50_us", f->page_cold_p50_us);
	figure(f, "page_cold_p99_us", f->page_cold_p99_us);
	figure(f, "page_rows_avg", f->page_rows_avg);

	acc = 0;
	each_file(s.path, read_through, &acc);
	if (lookups(&s, time_ordered, 0, 4000, us, &f->get_warm_p50_us,
		    &f->get_warm_p99_us, &found) != 0 ||
	    found != cfg.lookups)
		goto cleanup;
	figure(f, "get_warm_p50_us", f->get_warm_p50_us);
	figure(f, "get_warm_p99_us", f->get_warm_p99_us);
	if (lookups(&s, time_ordered, 1, 5000, us, &f->absent_warm_p50_us,
		    &f->absent_warm_p99_us, &found) != 0)
		goto cleanup;
	f->found_absent += found;
	figure(f, "absent_warm_p50_us", f->absent_warm_p50_us);
	figure(f, "absent_warm_p99_us", f->absent_warm_p99_us);
	if (pages(&s, 6000, us, &f->page_warm_p50_us, &f->page_warm_p99_us,
		  &f->page_rows_avg) != 0)
		goto cleanup;
	figure(f, "page_warm_p50_us", f->page_warm_p50_us);
	figure(f, "page_warm_p99_us", f->page_warm_p99_us);

	if (cfg.verify) {
		for (u64 i = 0; i < cfg.transfers; i++) {
			struct transfer t, want;
			make_transfer(&want, time_ordered, i);
			if (e->get(&s, want.id, &t) == 1 &&
			    memcmp(&t, &want, sizeof(t)) == 0)
				f->verified++;
		}
		figure(f, "verified", (double)f->verified);
	}
	f->rss_anon_end_mib = rss_anon_mib();
	figure(f, "rss_anon_end_mib", f->rss_anon_end_mib);
	figure(f, "found_existing", (double)f->found_existing);
	figure(f, "found_absent", (double)f->found_absent);
	f->done = 1;
	ret = 0;
cleanup:
	e->close(&s);
	remove_tree(s.path);
	free(batch);
	free(us);
	return ret;
}

/* ---- the summary ------------------------------------------------------ */

#define JSON_FIELDS(X)                                                         \
	X(insert_tps)                                                          \
	X(insert_s)                                                            \
	X(flush_ms)                                                            \
	X(checkpoint_ms)                                                       \
	X(open_cold_ms)                                                        \
	X(get_cold_p50_us)                                                     \
	X(get_cold_p99_us)                                                     \
	X(absent_cold_p50_us)                                                  \
	X(absent_cold_p99_us)                                                  \
	X(page_cold_p50_us)                                                    \
	X(page_cold_p99_us)                                                    \
	X(get_warm_p50_us)                                                     \
	X(get_warm_p99_us)                                                     \
	X(absent_warm_p50_us)                                                  \
	X(absent_warm_p99_us)                                                  \
	X(page_warm_p50_us)                                                    \
	X(page_warm_p99_us)                                                    \
	X(page_rows_avg)                                                       \
	X(disk_bytes_per_transfer)                                             \
	X(rss_anon_insert_mib)                                                 \
	X(rss_anon_end_mib)                                                    \
	X(load1)

static void print_json(const struct figures *runs, u32 n)
{
	printf("{\"transfers\":%llu,\"accounts\":%u,\"lookups\":%u,"
	       "\"cache_mib\":%llu,\"batch\":%u,\"runs\":[",
	       (unsigned long long)cfg.transfers, cfg.accounts, cfg.lookups,
	       (unsigned long long)cfg.cache_mib, BATCH_TRANSFERS);
	for (u32 i = 0; i < n; i++) {
		const struct figures *f = &runs[i];
		printf("%s{\"store\":\"%s\",\"ids\":\"%s\",\"ok\":%s",
		       i ? "," : "", f->store, f->ids,
		       f->done ? "true" : "false");
#define X(name) printf(",\"" #name "\":%.3f", f->name);
		JSON_FIELDS(X)
#undef X
		printf(",\"found_existing\":%llu,\"found_absent\":%llu",
		       (unsigned long long)f->found_existing,
		       (unsigned long long)f->found_absent);
		if (cfg.verify)
			printf(",\"verified\":%llu",
			       (unsigned long long)f->verified);
		printf("}");
	}
	printf("]}\n");
}

static int usage(void)
{
	fprintf(stderr,
		"usage: bench_store [--transfers N] [--engine "
		"rocksdb|lmdb|both]"
		" [--ids random|time|both] [--lookups L] [--cache-mib M]"
		" [--dir DIR] [--verify] [--json]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *engine = "both", *ids = "both";
	const struct engine *engines[2];
	int patterns[2];
	u32 ne = 0, np = 0, nruns = 0;
	struct figures *runs;
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--verify") == 0) {
			cfg.verify = 1;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			cfg.json = 1;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--transfers") == 0)
			cfg.transfers = strtoull(v, NULL, 10);
		else if (strcmp(a, "--lookups") == 0)
			cfg.lookups = (u32)strtoul(v, NULL, 10);
		else if (strcmp(a, "--cache-mib") == 0)
			cfg.cache_mib = strtoull(v, NULL, 10);
		else if (strcmp(a, "--dir") == 0)
			snprintf(cfg.dir, sizeof(cfg.dir), "%s", v);
		else if (strcmp(a, "--engine") == 0)
			engine = v;
		else if (strcmp(a, "--ids") == 0)
			ids = v;
		else
			return usage();
	}
	if (cfg.transfers == 0 || cfg.transfers > ((u64)1 << 40) ||
	    cfg.lookups == 0 || cfg.lookups > 10000000 || cfg.cache_mib == 0)
		return usage();
	if (!cfg.dir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(cfg.dir, sizeof(cfg.dir), "%s/tpw-bench-store",
			 tmp && tmp[0] ? tmp : "/tmp");
	}
	cfg.accounts = cfg.transfers / 10 < ACCOUNTS_MAX
			       ? (u32)(cfg.transfers / 10)
			       : ACCOUNTS_MAX;
	if (cfg.accounts < 2)
		cfg.accounts = 2;
	cfg.out = cfg.json ? stderr : stdout;
	if (strcmp(engine, "both") == 0 || strcmp(engine, "rocksdb") == 0)
		engines[ne++] = &rocksdb_engine;
	if (strcmp(engine, "both") == 0 || strcmp(engine, "lmdb") == 0)
		engines[ne++] = &lmdb_engine;
	if (strcmp(ids, "both") == 0 || strcmp(ids, "random") == 0)
		patterns[np++] = 0;
	if (strcmp(ids, "both") == 0 || strcmp(ids, "time") == 0)
		patterns[np++] = 1;
	if (!ne || !np)
		return usage();
	if (mkdir(cfg.dir, 0700) != 0 && errno != EEXIST) {
		perror(cfg.dir);
		return 1;
	}
	runs = mmap(NULL, RUNS_MAX * sizeof(*runs), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (runs == MAP_FAILED)
		return 1;
	memset(runs, 0, RUNS_MAX * sizeof(*runs));

	fprintf(cfg.out,
		"bench_store: %llu transfers, %u accounts, batches of %u, "
		"%u lookups, cache %llu MiB, dir %s\n",
		(unsigned long long)cfg.transfers, cfg.accounts,
		BATCH_TRANSFERS, cfg.lookups, (unsigned long long)cfg.cache_mib,
		cfg.dir);
	for (u32 ei = 0; ei < ne; ei++)
		for (u32 pi = 0; pi < np; pi++) {
			struct figures *f = &runs[nruns++];
			int st = 0;
			pid_t pid;
			fflush(NULL);
			pid = fork();
			if (pid < 0)
				return 1;
			if (pid == 0)
				_exit(run(engines[ei], patterns[pi], f) ? 1
									: 0);
			if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
			    WEXITSTATUS(st) != 0 || !f->done) {
				fprintf(stderr,
					"bench_store: %s ids=%s failed\n",
					engines[ei]->name,
					patterns[pi] ? "time" : "random");
				failed = 1;
			}
		}
	rmdir(cfg.dir);
	if (cfg.json)
		print_json(runs, nruns);
	munmap(runs, RUNS_MAX * sizeof(*runs));
	return failed;
}
