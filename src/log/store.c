/*
 * store.c - the ledger's history in RocksDB (format in store.h and
 * docs/store.md).
 *
 * Every kind of record lives in one column family under a one-byte
 * prefix, the layout bench/bench_store.c measured: one write batch per
 * commit and one flush keep all kinds at the same journal seq without
 * RocksDB's WAL (a flush of one family is a consistent prefix of the
 * writes).  The meta record goes into every commit's batch, so whatever
 * RocksDB holds after a flush says which journal seq it reaches.
 *
 * What is read from disk is never trusted: each value is decoded by a
 * small pure function that checks its length and the ids it repeats, and
 * refuses anything else with -EIO (fuzz_store runs them on random bytes).
 * The index carries the whole transfer and the balance point after it,
 * so an account page is one range scan.
 */
#include "log/store.h"

#include "core/ledger.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "banned.h"

/* Under ThreadSanitizer: RocksDB is not instrumented, so its own
 * synchronisation (std::atomic in the memtable and block cache) is
 * invisible, and its memcpy/memcmp calls, which the sanitizer intercepts,
 * look like races between the writer and a reader.  Races whose stacks
 * run through the library (or whose memory it allocated) are suppressed,
 * for every program that links
 * the store (the server, its tests); the store's own code is still
 * checked. */
#ifdef __has_feature
#if __has_feature(thread_sanitizer)
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	/* RocksDB's allocations go through libstdc++'s operator new,
	 * which the store's C code never calls: a race with such a
	 * block is RocksDB handing its memory from writer to reader. */
	return "race:librocksdb.so\nrace:libstdc++.so\n";
}
#endif
#endif

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "records are stored as their little-endian bytes");

#define META_MAGIC	   "TPWSTORE"
#define ID_KEY_BYTES	   17u /* kind + id */
#define INDEX_KEY_BYTES	   25u /* kind + account + timestamp */
#define BLOB_KEY_BYTES_MAX (1u + STORE_BLOB_NAME_BYTES_MAX)

struct store {
	rocksdb_t *db;
	rocksdb_column_family_handle_t *cf; /* the one: "default" */
	rocksdb_options_t *opt;
	rocksdb_block_based_table_options_t *topt;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wopt;
	rocksdb_readoptions_t *ropt;
	char *dir;
	bool read_only;
	pthread_mutex_t meta_lock; /* guards meta: written by the writer */
	struct store_meta meta;
	_Atomic u64 cache_hits;
	_Atomic u64 cache_misses;
};

/* Accounts of a batch: an open-addressing table keyed by id, so the last
 * one of a batch wins and each is written (and counted) once. */
struct acct_slot {
	struct account a;
	bool used;
};

/*
 * Transfers, status changes and failed ids are staged, not put straight
 * into RocksDB's batch: store_commit sorts their writes by key first, so
 * the memtable's skiplist takes them in order.  An insert next to the
 * previous one reuses its search path; a random one walks the list with
 * a cache miss a level, and that walk was most of the writer's time
 * (docs/benchmarks.md, the writer's profile).  seq keeps the call order
 * of the writes to one key (a transfer, then its status change).
 */
/* The value each op writes: T the transfer and its status, P the
 * transfer, DELP a delete, I the transfer, IDR and ICR the transfer and
 * the debit's or the credit's point, F the failed mark. */
enum sop_what { OP_T, OP_P, OP_DELP, OP_I, OP_IDR, OP_ICR, OP_F };

struct sop {
	u8 key[INDEX_KEY_BYTES];
	u8 klen;
	u8 what; /* enum sop_what */
	u32 seq;
	u32 ref; /* the record in recs (not for OP_F) */
};

struct srec {
	struct transfer t;
	u8 dr[STORE_POINT_BYTES], cr[STORE_POINT_BYTES];
	u8 status;
};

struct store_batch {
	rocksdb_writebatch_t *wb; /* blobs, in call order */
	struct sop *ops;
	u32 nops, capops;
	struct srec *recs;
	u32 nrecs, caprecs;
	struct acct_slot *accts;
	u32 *accts_used; /* the slots in use, accts_n of them: a small
			  * batch after a large one touches only those */
	u32 accts_cap;	 /* power of two, or 0 */
	u32 accts_n;
	u64 transfers;
	u64 failed;
	u64 ts_min; /* of the batched transfers; UINT64_MAX when none */
	u64 ts_max;
};

/* ---------------------------------------------------------------------
 * Encoding: big-endian keys, little-endian values (the records' bytes).
 */

static void put_be64(u8 *p, u64 v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (u8)v;
}

static void put_be128(u8 *p, u128 v)
{
	for (int i = 15; i >= 0; i--, v >>= 8)
		p[i] = (u8)v;
}

static u128 get_be128(const u8 *p)
{
	u128 v = 0;
	for (int i = 0; i < 16; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put_le32(u8 *p, u32 v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (u8)v;
}

static void put_le64(u8 *p, u64 v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (u8)v;
}

static u32 get_le32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

static u64 get_le64(const u8 *p)
{
	u64 v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void id_key(u8 k[ID_KEY_BYTES], char kind, u128 id)
{
	k[0] = (u8)kind;
	put_be128(k + 1, id);
}

static void index_key(u8 k[INDEX_KEY_BYTES], u128 account, u64 ts)
{
	k[0] = STORE_KEY_INDEX;
	put_be128(k + 1, account);
	put_be64(k + 17, ts);
}

/* Meta, little-endian:
 *   0 8 magic "TPWSTORE" | 8 4 version | 12 4 bytes (120) | 16 32 origin |
 *  48 8 seq | 56 32 digest | 88 8 last_timestamp | 96 8 transfers |
 * 104 8 accounts | 112 8 failed */
void store_meta_encode(const struct store_meta *m, u8 out[STORE_META_BYTES])
{
	memcpy(out, META_MAGIC, 8);
	put_le32(out + 8, m->version);
	put_le32(out + 12, STORE_META_BYTES);
	memcpy(out + 16, m->origin, 32);
	put_le64(out + 48, m->seq);
	memcpy(out + 56, m->digest, 32);
	put_le64(out + 88, m->last_timestamp);
	put_le64(out + 96, m->transfers);
	put_le64(out + 104, m->accounts);
	put_le64(out + 112, m->failed);
}

int store_meta_decode(const void *v, size_t n, struct store_meta *out)
{
	const u8 *p = v;

	if (n < 16 || memcmp(p, META_MAGIC, 8) != 0)
		return -EIO;
	if (get_le32(p + 8) != STORE_FORMAT_VERSION)
		return -EPROTO;
	if (n != STORE_META_BYTES || get_le32(p + 12) != STORE_META_BYTES)
		return -EIO;
	memset(out, 0, sizeof(*out));
	out->version = STORE_FORMAT_VERSION;
	memcpy(out->origin, p + 16, 32);
	out->seq = get_le64(p + 48);
	memcpy(out->digest, p + 56, 32);
	out->last_timestamp = get_le64(p + 88);
	out->transfers = get_le64(p + 96);
	out->accounts = get_le64(p + 104);
	out->failed = get_le64(p + 112);
	return 0;
}

static bool status_consistent(const struct transfer *t, u8 status)
{
	if (t->flags & TRANSFER_PENDING)
		return status >= PENDING_PENDING && status <= PENDING_EXPIRED;
	return status == PENDING_NONE;
}

int store_transfer_value_decode(const void *v, size_t n, u128 id,
				struct ledger_cold_item *out)
{
	const u8 *p = v;

	memset(out, 0, sizeof(*out));
	if (n == 1 && p[0] == STORE_FAILED_VALUE) {
		out->kind = LEDGER_COLD_FAILED;
		return 0;
	}
	if (n != STORE_TRANSFER_VALUE_BYTES)
		return -EIO;
	memcpy(&out->t, p, sizeof(out->t));
	out->status = p[sizeof(out->t)];
	if (out->t.id != id || !status_consistent(&out->t, out->status)) {
		memset(out, 0, sizeof(*out));
		return -EIO;
	}
	out->kind = LEDGER_COLD_TRANSFER;
	return 0;
}

int store_index_value_decode(const void *v, size_t n, u128 account, u64 ts,
			     struct transfer *t, struct account_balance *point,
			     bool *has_point)
{
	const u8 *p = v;

	if (n != STORE_INDEX_VALUE_BYTES &&
	    n != STORE_INDEX_VALUE_BYTES + STORE_POINT_BYTES)
		return -EIO;
	memcpy(t, p, sizeof(*t));
	if (t->timestamp != ts ||
	    (t->debit_account_id != account && t->credit_account_id != account))
		return -EIO;
	*has_point = n > STORE_INDEX_VALUE_BYTES;
	memset(point, 0, sizeof(*point));
	if (*has_point) {
		memcpy(&point->debits_pending, p + 128, 16);
		memcpy(&point->debits_posted, p + 144, 16);
		memcpy(&point->credits_pending, p + 160, 16);
		memcpy(&point->credits_posted, p + 176, 16);
		point->timestamp = ts;
	}
	return 0;
}

int store_account_value_decode(const void *v, size_t n, u128 id,
			       struct account *out)
{
	if (n != sizeof(*out))
		return -EIO;
	memcpy(out, v, sizeof(*out));
	return out->id == id ? 0 : -EIO;
}

int store_pending_value_decode(const void *v, size_t n, u128 id,
			       struct transfer *out)
{
	if (n != sizeof(*out))
		return -EIO;
	memcpy(out, v, sizeof(*out));
	return out->id == id && (out->flags & TRANSFER_PENDING) ? 0 : -EIO;
}

/* ---------------------------------------------------------------------
 * RocksDB's status strings to codes.  The C API reports a failure as a
 * message ("IO error: No space left on device: ...", "Corruption: ...").
 */

static int status_code(char *err, const char **why, const char *what)
{
	int ret = -EIO;

	if (strstr(err, "No space left") || strstr(err, "NoSpace")) {
		ret = -ENOSPC;
		what = "disk full";
	} else if (strncmp(err, "Corruption", 10) == 0) {
		what = "corrupt";
	} else if (strstr(err, "does not exist")) {
		ret = -ENOENT;
		what = "no store in the directory";
	} else if (strncmp(err, "Invalid argument", 16) == 0 ||
		   strncmp(err, "Not implemented", 15) == 0) {
		ret = -EINVAL;
	}
	rocksdb_free(err);
	if (why)
		*why = what;
	return ret;
}

/* Cache hits and misses of the store's own reads, through RocksDB's
 * per-thread perf context at the count level (no timers): a handful of
 * thread-local counter increments per block. */
struct perf {
	rocksdb_perfcontext_t *pc;
	u64 hits, reads;
};

static void perf_begin(struct perf *p)
{
	rocksdb_set_perf_level(rocksdb_enable_count);
	p->pc = rocksdb_perfcontext_create();
	p->hits = rocksdb_perfcontext_metric(p->pc,
					     rocksdb_block_cache_hit_count);
	p->reads = rocksdb_perfcontext_metric(p->pc, rocksdb_block_read_count);
}

static void perf_end(struct store *s, struct perf *p)
{
	u64 hits = rocksdb_perfcontext_metric(p->pc,
					      rocksdb_block_cache_hit_count);
	u64 reads = rocksdb_perfcontext_metric(p->pc, rocksdb_block_read_count);

	rocksdb_perfcontext_destroy(p->pc);
	atomic_fetch_add(&s->cache_hits, hits - p->hits);
	atomic_fetch_add(&s->cache_misses, reads - p->reads);
}

/* ---------------------------------------------------------------------
 * Open and close.
 */

static void destroy(struct store *s)
{
	if (s->cf)
		rocksdb_column_family_handle_destroy(s->cf);
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
	pthread_mutex_destroy(&s->meta_lock);
	free(s->dir);
	free(s);
}

static void set_options(struct store *s, const struct store_options *o)
{
	u64 cache = o->cache_bytes ? o->cache_bytes : STORE_CACHE_BYTES_DEFAULT;
	u64 mem = o->memtable_bytes ? o->memtable_bytes
				    : STORE_MEMTABLE_BYTES_DEFAULT;

	s->opt = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opt, o->create);
	rocksdb_options_increase_parallelism(s->opt, 2);
	rocksdb_options_set_max_background_jobs(s->opt, 2);
	rocksdb_options_set_write_buffer_size(s->opt, (size_t)mem);
	rocksdb_options_set_max_write_buffer_number(s->opt, 2);
	rocksdb_options_set_compression(s->opt, rocksdb_lz4_compression);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(s->opt, 1);
	/* A bloom filter over each memtable's whole keys (5% of its size):
	 * the id check of every new transfer asks for ids that are nearly
	 * always absent, and without it each one walked both memtables'
	 * skiplists (docs/benchmarks.md, the writer's profile). */
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opt, 0.05);
	rocksdb_options_set_memtable_whole_key_filtering(s->opt, 1);
	/* RocksDB's LOG file: warnings and errors only, two files kept. */
	rocksdb_options_set_info_log_level(s->opt, 2);
	rocksdb_options_set_keep_log_file_num(s->opt, 2);
	rocksdb_options_set_max_log_file_size(s->opt, 1u << 20);

	s->topt = rocksdb_block_based_options_create();
	s->cache = rocksdb_cache_create_lru((size_t)cache);
	rocksdb_block_based_options_set_block_cache(s->topt, s->cache);
	/* Index and filter blocks are charged to the cache, partitioned so
	 * only the touched partitions are loaded; the top levels stay
	 * pinned (small: one entry per partition). */
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->topt,
								      1);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(
		s->topt, 1);
	rocksdb_block_based_options_set_index_type(
		s->topt,
		rocksdb_block_based_table_index_type_two_level_index_search);
	rocksdb_block_based_options_set_partition_filters(s->topt, 1);
	rocksdb_block_based_options_set_metadata_block_size(s->topt, 4096);
	rocksdb_block_based_options_set_pin_top_level_index_and_filter(s->topt,
								       1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(
		s->topt, 1);
	rocksdb_block_based_options_set_filter_policy(
		s->topt, rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_options_set_block_based_table_factory(s->opt, s->topt);

	s->wopt = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(s->wopt, 1);
	s->ropt = rocksdb_readoptions_create();
}

/* Is the store empty (not a single key)? 1, 0 or -EIO. */
static int empty(struct store *s)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ropt);
	char *err = NULL;
	int ret;

	rocksdb_iter_seek_to_first(it);
	ret = !rocksdb_iter_valid(it);
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (err)
		return status_code(err, NULL, "read failed");
	return ret;
}

static int write_meta(struct store *s, const struct store_meta *m,
		      const char **why)
{
	u8 k = STORE_KEY_META, v[STORE_META_BYTES];
	char *err = NULL;

	store_meta_encode(m, v);
	rocksdb_put(s->db, s->wopt, (const char *)&k, 1, (const char *)v,
		    sizeof(v), &err);
	return err ? status_code(err, why, "write failed") : 0;
}

static int load_meta(struct store *s, const struct store_options *o,
		     const char **why)
{
	u8 k = STORE_KEY_META;
	char *err = NULL, *v;
	size_t n = 0;
	int ret;

	v = rocksdb_get(s->db, s->ropt, (const char *)&k, 1, &n, &err);
	if (err)
		return status_code(err, why, "meta unreadable");
	if (v) {
		ret = store_meta_decode(v, n, &s->meta);
		rocksdb_free(v);
		if (ret && why)
			*why = ret == -EPROTO ? "unknown store format version"
					      : "meta corrupt";
		return ret;
	}
	ret = empty(s);
	if (ret <= 0 || !o->create || o->read_only) {
		if (why)
			*why = ret == 1 ? "empty: nothing was flushed"
					: "no meta";
		return ret < 0 ? ret : ret == 1 ? -ENODATA : -EIO;
	}
	memset(&s->meta, 0, sizeof(s->meta));
	s->meta.version = STORE_FORMAT_VERSION;
	memcpy(s->meta.origin, o->origin, sizeof(s->meta.origin));
	return write_meta(s, &s->meta, why);
}

int store_open(const struct store_options *o, struct store **out,
	       const char **why)
{
	struct store *s = calloc(1, sizeof(*s));
	char *err = NULL;
	int ret;

	*out = NULL;
	if (!s || pthread_mutex_init(&s->meta_lock, NULL) != 0) {
		free(s);
		if (why)
			*why = "out of memory";
		return -ENOMEM;
	}
	s->dir = strdup(o->dir);
	set_options(s, o);
	if (!s->dir) {
		ret = -ENOMEM;
		if (why)
			*why = "out of memory";
		goto fail;
	}
	s->read_only = o->read_only;
	/* Opened by its one column family, for the handle the batched
	 * MultiGet takes (this RocksDB's C API has no getter for it). */
	const char *cf_name = "default";
	const rocksdb_options_t *cf_opt = s->opt;
	s->db = o->read_only ? rocksdb_open_for_read_only_column_families(
				       s->opt, o->dir, 1, &cf_name, &cf_opt,
				       &s->cf, 0, &err)
			     : rocksdb_open_column_families(s->opt, o->dir, 1,
							    &cf_name, &cf_opt,
							    &s->cf, &err);
	if (err) {
		ret = status_code(err, why, "open failed");
		goto fail;
	}
	ret = load_meta(s, o, why);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	destroy(s);
	return ret;
}

static int flush(struct store *s, const char **why)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	char *err = NULL;

	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(s->db, fo, &err);
	rocksdb_flushoptions_destroy(fo);
	return err ? status_code(err, why, "flush failed") : 0;
}

int store_flush(struct store *s, const char **why)
{
	return flush(s, why);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	/* With the WAL off, only flushed commits survive the close. */
	if (!s->read_only)
		(void)flush(s, NULL);
	destroy(s);
}

/* ---------------------------------------------------------------------
 * Batches.
 */

struct store_batch *store_batch_new(void)
{
	struct store_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->wb = rocksdb_writebatch_create();
	b->ts_min = UINT64_MAX;
	return b;
}

void store_batch_free(struct store_batch *b)
{
	if (!b)
		return;
	rocksdb_writebatch_destroy(b->wb);
	free(b->accts);
	free(b->accts_used);
	free(b->ops);
	free(b->recs);
	free(b);
}

void store_batch_reset(struct store_batch *b)
{
	rocksdb_writebatch_clear(b->wb);
	b->nops = b->nrecs = 0;
	for (u32 i = 0; i < b->accts_n; i++)
		b->accts[b->accts_used[i]].used = false;
	b->accts_n = 0;
	b->transfers = 0;
	b->failed = 0;
	b->ts_min = UINT64_MAX;
	b->ts_max = 0;
}

/* Room for n more ops and one more record: 0 or -ENOMEM. */
static int stage_room(struct store_batch *b, u32 n)
{
	if (b->nops + n > b->capops) {
		u32 cap = b->capops ? b->capops * 2 : 4096;
		struct sop *p;
		if (cap > (1u << 30))
			return -ENOMEM;
		p = realloc(b->ops, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->ops = p;
		b->capops = cap;
	}
	if (b->nrecs + 1 > b->caprecs) {
		u32 cap = b->caprecs ? b->caprecs * 2 : 1024;
		struct srec *p;
		if (cap > (1u << 28))
			return -ENOMEM;
		p = realloc(b->recs, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->recs = p;
		b->caprecs = cap;
	}
	return 0;
}

static void stage(struct store_batch *b, const u8 *key, u8 klen, u8 what,
		  u32 ref)
{
	struct sop *o = &b->ops[b->nops];

	memcpy(o->key, key, klen);
	o->klen = klen;
	o->what = what;
	o->seq = b->nops++;
	o->ref = ref;
}

static void point_bytes(u8 out[STORE_POINT_BYTES],
			const struct account_balance *p)
{
	memcpy(out, &p->debits_pending, 16);
	memcpy(out + 16, &p->debits_posted, 16);
	memcpy(out + 32, &p->credits_pending, 16);
	memcpy(out + 48, &p->credits_posted, 16);
}

/* T id -> transfer + status, and the pending set kept exact; with points
 * (new transfers only) the two index entries. */
static int stage_transfer(struct store_batch *b, const struct transfer *t,
			  u8 status, bool is_new,
			  const struct account_balance *dr,
			  const struct account_balance *cr)
{
	u8 k[INDEX_KEY_BYTES];
	u32 ref = b->nrecs;
	struct srec *r;

	if (stage_room(b, 4))
		return -ENOMEM;
	r = &b->recs[b->nrecs++];
	r->t = *t;
	r->status = status;
	id_key(k, STORE_KEY_TRANSFER, t->id);
	stage(b, k, ID_KEY_BYTES, OP_T, ref);
	k[0] = STORE_KEY_PENDING;
	if (status == PENDING_PENDING)
		stage(b, k, ID_KEY_BYTES, OP_P, ref);
	else if (!is_new)
		stage(b, k, ID_KEY_BYTES, OP_DELP, ref);
	if (!is_new)
		return 0;
	index_key(k, t->debit_account_id, t->timestamp);
	stage(b, k, INDEX_KEY_BYTES, dr ? OP_IDR : OP_I, ref);
	if (dr)
		point_bytes(r->dr, dr);
	index_key(k, t->credit_account_id, t->timestamp);
	stage(b, k, INDEX_KEY_BYTES, cr ? OP_ICR : OP_I, ref);
	if (cr)
		point_bytes(r->cr, cr);
	return 0;
}

static bool id_valid(u128 id)
{
	return id != 0 && id != U128_MAX;
}

int store_batch_transfer(struct store_batch *b, const struct transfer *t,
			 u8 status, const struct account_balance *dr_point,
			 const struct account_balance *cr_point)
{
	if (!id_valid(t->id) || !status_consistent(t, status) ||
	    t->timestamp == 0 || t->debit_account_id == t->credit_account_id)
		return -EINVAL;
	if (stage_transfer(b, t, status, true, dr_point, cr_point))
		return -ENOMEM;
	b->transfers++;
	if (t->timestamp < b->ts_min)
		b->ts_min = t->timestamp;
	if (t->timestamp > b->ts_max)
		b->ts_max = t->timestamp;
	return 0;
}

int store_batch_status(struct store_batch *b, const struct transfer *t,
		       u8 status)
{
	if (!id_valid(t->id) || !(t->flags & TRANSFER_PENDING) ||
	    !status_consistent(t, status))
		return -EINVAL;
	return stage_transfer(b, t, status, false, NULL, NULL);
}

static u32 id_hash(u128 id)
{
	u64 x = (u64)id ^ (u64)(id >> 64) * 0x9e3779b97f4a7c15ull;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (u32)x;
}

static struct acct_slot *acct_find(struct acct_slot *t, u32 cap, u128 id)
{
	u32 i = id_hash(id) & (cap - 1);

	while (t[i].used && t[i].a.id != id)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static int acct_grow(struct store_batch *b)
{
	u32 cap = b->accts_cap ? b->accts_cap * 2 : 256;
	struct acct_slot *t;
	u32 *used;

	if (cap > (1u << 28))
		return -ENOMEM;
	t = calloc(cap, sizeof(*t));
	used = malloc((size_t)(cap / 2) * sizeof(*used));
	if (!t || !used) {
		free(t);
		free(used);
		return -ENOMEM;
	}
	for (u32 i = 0; i < b->accts_n; i++) {
		const struct acct_slot *o = &b->accts[b->accts_used[i]];
		struct acct_slot *n = acct_find(t, cap, o->a.id);
		*n = *o;
		used[i] = (u32)(n - t);
	}
	free(b->accts);
	free(b->accts_used);
	b->accts = t;
	b->accts_used = used;
	b->accts_cap = cap;
	return 0;
}

int store_batch_account(struct store_batch *b, const struct account *a)
{
	struct acct_slot *slot;

	if (!id_valid(a->id))
		return -EINVAL;
	/* At most half full. */
	if ((u64)(b->accts_n + 1) * 2 > b->accts_cap && acct_grow(b))
		return -ENOMEM;
	slot = acct_find(b->accts, b->accts_cap, a->id);
	if (!slot->used)
		b->accts_used[b->accts_n++] = (u32)(slot - b->accts);
	slot->used = true;
	slot->a = *a;
	return 0;
}

int store_batch_failed(struct store_batch *b, u128 id)
{
	u8 k[ID_KEY_BYTES];

	if (!id_valid(id))
		return -EINVAL;
	if (stage_room(b, 1))
		return -ENOMEM;
	id_key(k, STORE_KEY_TRANSFER, id);
	stage(b, k, ID_KEY_BYTES, OP_F, 0);
	b->failed++;
	return 0;
}

/* B name; returns the key's length, or 0 for a bad name. */
static size_t blob_key(u8 k[BLOB_KEY_BYTES_MAX], const char *name)
{
	size_t n = strnlen(name, STORE_BLOB_NAME_BYTES_MAX + 1);

	if (n == 0 || n > STORE_BLOB_NAME_BYTES_MAX)
		return 0;
	k[0] = STORE_KEY_BLOB;
	memcpy(k + 1, name, n);
	return n + 1;
}

int store_batch_blob(struct store_batch *b, const char *name, const void *p,
		     size_t n)
{
	u8 k[BLOB_KEY_BYTES_MAX];
	size_t kn = blob_key(k, name);

	if (!kn || n > STORE_BLOB_BYTES_MAX)
		return -EINVAL;
	rocksdb_writebatch_put(b->wb, (const char *)k, kn, p, n);
	return 0;
}

/* ---------------------------------------------------------------------
 * Commit and checkpoint.
 */

static int cmp_sop(const void *x, const void *y)
{
	const struct sop *a = x, *b = y;
	int c = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);

	if (c)
		return c;
	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* A quicksort of the ops in place (no temporary: qsort's merge buffer
 * for millions of ops was fresh memory, zeroed by the kernel, at every
 * commit); cmp_sop is a total order, so stability is not needed. */
static void swap_sop(struct sop *a, struct sop *b)
{
	struct sop t = *a;
	*a = *b;
	*b = t;
}

static void sort_sops(struct sop *v, size_t n)
{
	/* Recurse into the smaller side, loop on the larger: depth is
	 * at most log2(n). */
	while (n > 16) {
		size_t m = n / 2, i = 0, j = n - 1;
		if (cmp_sop(&v[m], &v[0]) < 0)
			swap_sop(&v[m], &v[0]);
		if (cmp_sop(&v[n - 1], &v[0]) < 0)
			swap_sop(&v[n - 1], &v[0]);
		if (cmp_sop(&v[n - 1], &v[m]) < 0)
			swap_sop(&v[n - 1], &v[m]);
		struct sop pivot = v[m];
		for (;;) {
			while (cmp_sop(&v[i], &pivot) < 0)
				i++;
			while (cmp_sop(&pivot, &v[j]) < 0)
				j--;
			if (i >= j)
				break;
			swap_sop(&v[i], &v[j]);
			i++;
			j--;
		}
		size_t left = j + 1;
		if (left < n - left) {
			sort_sops(v, left);
			v += left;
			n -= left;
		} else {
			sort_sops(v + left, n - left);
			n = left;
		}
	}
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && cmp_sop(&v[k], &v[k - 1]) < 0; k--)
			swap_sop(&v[k], &v[k - 1]);
}

static u128 acct_id_at(const struct store_batch *b, u32 i)
{
	return b->accts[b->accts_used[i]].a.id;
}

/* The used list by account id: a heap sort, in place. */
static void sift(struct store_batch *b, u32 root, u32 n)
{
	for (;;) {
		u32 c = 2 * root + 1;
		if (c >= n)
			return;
		if (c + 1 < n && acct_id_at(b, c) < acct_id_at(b, c + 1))
			c++;
		if (acct_id_at(b, root) >= acct_id_at(b, c))
			return;
		u32 t = b->accts_used[root];
		b->accts_used[root] = b->accts_used[c];
		b->accts_used[c] = t;
		root = c;
	}
}

static void sort_accounts(struct store_batch *b)
{
	u32 n = b->accts_n;

	for (u32 i = n / 2; i-- > 0;)
		sift(b, i, n);
	while (n > 1) {
		u32 t = b->accts_used[0];
		b->accts_used[0] = b->accts_used[--n];
		b->accts_used[n] = t;
		sift(b, 0, n);
	}
}

/* The accounts, then the staged writes, each in key order (sorting the
 * ops in place leaves the batch as built: same writes, same order per
 * key). */
static void put_sorted(struct store_batch *b)
{
	sort_accounts(b);
	for (u32 i = 0; i < b->accts_n; i++) {
		const struct account *a = &b->accts[b->accts_used[i]].a;
		u8 k[ID_KEY_BYTES];
		id_key(k, STORE_KEY_ACCOUNT, a->id);
		rocksdb_writebatch_put(b->wb, (const char *)k, sizeof(k),
				       (const char *)a, sizeof(*a));
	}
	sort_sops(b->ops, b->nops);
	for (u32 i = 0; i < b->nops; i++) {
		const struct sop *o = &b->ops[i];
		const struct srec *r = &b->recs[o->ref];
		u8 v[STORE_INDEX_VALUE_BYTES + STORE_POINT_BYTES];
		size_t n = sizeof(struct transfer);
		static const u8 failed = STORE_FAILED_VALUE;

		if (o->what == OP_DELP) {
			rocksdb_writebatch_delete(b->wb, (const char *)o->key,
						  o->klen);
			continue;
		}
		if (o->what == OP_F) {
			rocksdb_writebatch_put(b->wb, (const char *)o->key,
					       o->klen, (const char *)&failed,
					       1);
			continue;
		}
		memcpy(v, &r->t, n);
		if (o->what == OP_T)
			v[n++] = r->status;
		if (o->what == OP_IDR || o->what == OP_ICR) {
			memcpy(v + n, o->what == OP_IDR ? r->dr : r->cr,
			       STORE_POINT_BYTES);
			n += STORE_POINT_BYTES;
		}
		rocksdb_writebatch_put(b->wb, (const char *)o->key, o->klen,
				       (const char *)v, n);
	}
}

int store_commit(struct store *s, struct store_batch *b, u64 seq,
		 u64 last_timestamp, const u8 digest[32], const char **why)
{
	struct store_meta m;
	u8 mk = STORE_KEY_META, mv[STORE_META_BYTES];
	rocksdb_writebatch_t *wb;
	char *err = NULL, *rb_err = NULL;
	u64 created = 0;

	pthread_mutex_lock(&s->meta_lock);
	m = s->meta;
	pthread_mutex_unlock(&s->meta_lock);
	if (seq <= m.seq || last_timestamp < m.last_timestamp ||
	    (b->transfers &&
	     (b->ts_min <= m.last_timestamp || b->ts_max > last_timestamp))) {
		if (why)
			*why = seq <= m.seq ? "seq does not increase"
					    : "timestamps out of order";
		return -EINVAL;
	}
	for (u32 i = 0; i < b->accts_n; i++)
		created += b->accts[b->accts_used[i]].a.timestamp >
			   m.last_timestamp;
	/* The accounts and the meta go in after a save point, rolled back
	 * after the write: the caller's batch stays as built (a failed
	 * commit can be retried). */
	wb = b->wb;
	rocksdb_writebatch_set_save_point(wb);
	put_sorted(b);
	m.seq = seq;
	m.last_timestamp = last_timestamp;
	memcpy(m.digest, digest, sizeof(m.digest));
	m.transfers += b->transfers;
	m.accounts += created;
	m.failed += b->failed;
	store_meta_encode(&m, mv);
	rocksdb_writebatch_put(wb, (const char *)&mk, 1, (const char *)mv,
			       sizeof(mv));
	rocksdb_write(s->db, s->wopt, wb, &err);
	rocksdb_writebatch_rollback_to_save_point(wb, &rb_err);
	/* Only fails without a save point, and there is one. */
	rocksdb_free(rb_err);
	if (err)
		return status_code(err, why, "write failed");
	pthread_mutex_lock(&s->meta_lock);
	s->meta = m;
	pthread_mutex_unlock(&s->meta_lock);
	return 0;
}

int store_checkpoint(struct store *s, const char *dir, const char **why)
{
	rocksdb_checkpoint_t *cp;
	char *err = NULL;
	/* Read only: no flush; the checkpoint holds the files the open
	 * found, what the server had flushed then. */
	int ret = s->read_only ? 0 : flush(s, why);

	if (ret)
		return ret;
	cp = rocksdb_checkpoint_object_create(s->db, &err);
	if (err)
		return status_code(err, why, "checkpoint failed");
	/* 0: flush whatever a concurrent commit added since. */
	rocksdb_checkpoint_create(cp, dir, s->read_only ? UINT64_MAX : 0, &err);
	rocksdb_checkpoint_object_destroy(cp);
	return err ? status_code(err, why, "checkpoint failed") : 0;
}

/* ---------------------------------------------------------------------
 * Reads.
 */

int store_get_transfers(struct store *s, const u128 *ids, u32 n,
			struct ledger_cold_item *out)
{
	u8 *keys;
	const char **kp;
	size_t *kl;
	rocksdb_pinnableslice_t **vals;
	char **errs;
	struct perf perf;
	int ret = 0;

	if (n == 0)
		return 0;
	if (n > STORE_GET_MAX)
		return -EINVAL;
	keys = malloc((size_t)n * ID_KEY_BYTES);
	kp = malloc((size_t)n * sizeof(*kp));
	kl = malloc((size_t)n * sizeof(*kl));
	vals = malloc((size_t)n * sizeof(*vals));
	errs = malloc((size_t)n * sizeof(*errs));
	if (!keys || !kp || !kl || !vals || !errs) {
		ret = -ENOMEM;
		goto out;
	}
	for (u32 i = 0; i < n; i++) {
		id_key(keys + (size_t)i * ID_KEY_BYTES, STORE_KEY_TRANSFER,
		       ids[i]);
		kp[i] = (const char *)keys + (size_t)i * ID_KEY_BYTES;
		kl[i] = ID_KEY_BYTES;
	}
	/* The batched MultiGet: the keys sorted once (by RocksDB: the
	 * answers stay in the caller's order), then one pass per file
	 * through its filter and index for all the keys that fall in its
	 * range, instead of one lookup per key. */
	perf_begin(&perf);
	rocksdb_batched_multi_get_cf(s->db, s->ropt, s->cf, n, kp, kl, vals,
				     errs, false);
	perf_end(s, &perf);
	for (u32 i = 0; i < n; i++) {
		size_t vl = 0;
		const char *v =
			vals[i] ? rocksdb_pinnableslice_value(vals[i], &vl)
				: NULL;
		if (errs[i]) {
			int r = status_code(errs[i], NULL, NULL);
			if (!ret)
				ret = r;
		} else if (!v) {
			memset(&out[i], 0, sizeof(out[i]));
			out[i].kind = LEDGER_COLD_ABSENT;
		} else {
			int r = store_transfer_value_decode(v, vl, ids[i],
							    &out[i]);
			if (r && !ret)
				ret = r;
		}
		if (vals[i])
			rocksdb_pinnableslice_destroy(vals[i]);
	}
out:
	free(keys);
	free(kp);
	free(kl);
	free(vals);
	free(errs);
	return ret;
}

int store_lookup_account(struct store *s, u128 id, struct account *out)
{
	u8 k[ID_KEY_BYTES];
	char *err = NULL, *v;
	size_t n = 0;
	struct perf perf;
	int ret;

	id_key(k, STORE_KEY_ACCOUNT, id);
	perf_begin(&perf);
	v = rocksdb_get(s->db, s->ropt, (const char *)k, sizeof(k), &n, &err);
	perf_end(s, &perf);
	if (err)
		return status_code(err, NULL, NULL);
	if (!v)
		return -ENOENT;
	ret = store_account_value_decode(v, n, id, out);
	rocksdb_free(v);
	return ret;
}

/* Visit the stored keys in [lo, hi) in order (or reverse order) from one
 * view; fn returns 0 to go on, 1 to stop, <0 to fail. */
typedef int (*visit_fn)(void *ctx, const u8 *k, size_t kn, const char *v,
			size_t vn);

static int range(struct store *s, const u8 *lo, size_t lo_n, const u8 *hi,
		 size_t hi_n, bool reverse, visit_fn fn, void *ctx)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	struct perf perf;
	char *err = NULL;
	int ret = 0;

	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, lo_n);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hi_n);
	perf_begin(&perf);
	it = rocksdb_create_iterator(s->db, ro);
	if (reverse)
		rocksdb_iter_seek_to_last(it);
	else
		rocksdb_iter_seek_to_first(it);
	while (rocksdb_iter_valid(it)) {
		size_t kn, vn;
		const char *k = rocksdb_iter_key(it, &kn);
		const char *v = rocksdb_iter_value(it, &vn);
		ret = fn(ctx, (const u8 *)k, kn, v, vn);
		if (ret)
			break;
		if (reverse)
			rocksdb_iter_prev(it);
		else
			rocksdb_iter_next(it);
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	perf_end(s, &perf);
	rocksdb_readoptions_destroy(ro);
	if (err)
		return status_code(err, NULL, NULL);
	return ret < 0 ? ret : 0;
}

struct query {
	const struct account_filter *f;
	void *out;
	u32 max, k;
	bool balances;
};

static int visit_index(void *ctx, const u8 *k, size_t kn, const char *v,
		       size_t vn)
{
	struct query *q = ctx;
	struct transfer t;
	struct account_balance point;
	bool has_point;
	u64 ts = 0;

	if (kn != INDEX_KEY_BYTES)
		return -EIO;
	for (int i = 17; i < 25; i++)
		ts = (ts << 8) | k[i];
	if (store_index_value_decode(v, vn, q->f->account_id, ts, &t, &point,
				     &has_point))
		return -EIO;
	if (!ledger_filter_match(q->f, &t) || (q->balances && !has_point))
		return 0;
	if (q->balances)
		((struct account_balance *)q->out)[q->k++] = point;
	else
		((struct transfer *)q->out)[q->k++] = t;
	return q->k == q->max;
}

static int query(struct store *s, const struct account_filter *f, u64 ts_below,
		 void *out, u32 out_max, bool balances)
{
	struct query q = {.f = f, .out = out, .balances = balances};
	u64 lo = f->timestamp_min;
	u64 hi = f->timestamp_max ? f->timestamp_max : UINT64_MAX;
	u8 klo[INDEX_KEY_BYTES], khi[INDEX_KEY_BYTES + 1];
	int ret;

	if (!ledger_filter_valid(f))
		return -EINVAL;
	q.max = f->limit < out_max ? f->limit : out_max;
	if (q.max > QUERY_LIMIT_MAX)
		q.max = QUERY_LIMIT_MAX;
	if (ts_below && hi >= ts_below)
		hi = ts_below - 1;
	if (q.max == 0 || hi < lo)
		return 0;
	index_key(klo, f->account_id, lo);
	/* hi inclusive: the bound is hi's key followed by one byte. */
	index_key(khi, f->account_id, hi);
	khi[INDEX_KEY_BYTES] = 0;
	ret = range(s, klo, sizeof(klo), khi, sizeof(khi),
		    f->flags & ACCOUNT_FILTER_REVERSED, visit_index, &q);
	return ret ? ret : (int)q.k;
}

int store_account_transfers(struct store *s, const struct account_filter *f,
			    u64 ts_below, struct transfer *out, u32 out_max)
{
	return query(s, f, ts_below, out, out_max, false);
}

int store_account_balances(struct store *s, const struct account_filter *f,
			   u64 ts_below, struct account_balance *out,
			   u32 out_max)
{
	return query(s, f, ts_below, out, out_max, true);
}

struct scan {
	store_account_fn afn;
	store_transfer_fn tfn;
	void *ctx;
	int stopped; /* what fn returned */
};

static int visit_account(void *ctx, const u8 *k, size_t kn, const char *v,
			 size_t vn)
{
	struct scan *sc = ctx;
	struct account a;

	if (kn != ID_KEY_BYTES ||
	    store_account_value_decode(v, vn, get_be128(k + 1), &a))
		return -EIO;
	sc->stopped = sc->afn(sc->ctx, &a);
	return sc->stopped != 0;
}

static int visit_pending(void *ctx, const u8 *k, size_t kn, const char *v,
			 size_t vn)
{
	struct scan *sc = ctx;
	struct transfer t;

	if (kn != ID_KEY_BYTES ||
	    store_pending_value_decode(v, vn, get_be128(k + 1), &t))
		return -EIO;
	sc->stopped = sc->tfn(sc->ctx, &t);
	return sc->stopped != 0;
}

static int scan(struct store *s, char kind, visit_fn fn, struct scan *sc)
{
	u8 lo = (u8)kind, hi = (u8)(kind + 1);
	int ret = range(s, &lo, 1, &hi, 1, false, fn, sc);

	return ret ? ret : sc->stopped;
}

int store_scan_accounts(struct store *s, store_account_fn fn, void *ctx)
{
	struct scan sc = {.afn = fn, .ctx = ctx};

	return scan(s, STORE_KEY_ACCOUNT, visit_account, &sc);
}

int store_scan_pending(struct store *s, store_transfer_fn fn, void *ctx)
{
	struct scan sc = {.tfn = fn, .ctx = ctx};

	return scan(s, STORE_KEY_PENDING, visit_pending, &sc);
}

int store_blob_get(struct store *s, const char *name, void **out, size_t *n)
{
	u8 k[BLOB_KEY_BYTES_MAX];
	size_t kn = blob_key(k, name), vn = 0;
	char *err = NULL, *v;

	*out = NULL;
	*n = 0;
	if (!kn)
		return -EINVAL;
	v = rocksdb_get(s->db, s->ropt, (const char *)k, kn, &vn, &err);
	if (err)
		return status_code(err, NULL, NULL);
	if (!v)
		return -ENOENT;
	if (vn > STORE_BLOB_BYTES_MAX) {
		rocksdb_free(v);
		return -EIO;
	}
	*out = malloc(vn ? vn : 1);
	if (!*out) {
		rocksdb_free(v);
		return -ENOMEM;
	}
	memcpy(*out, v, vn);
	*n = vn;
	rocksdb_free(v);
	return 0;
}

void store_meta(struct store *s, struct store_meta *out)
{
	pthread_mutex_lock(&s->meta_lock);
	*out = s->meta;
	pthread_mutex_unlock(&s->meta_lock);
}

/* ---------------------------------------------------------------------
 * Stats.
 */

static u64 property(struct store *s, const char *name)
{
	uint64_t v = 0;

	return rocksdb_property_int(s->db, name, &v) == 0 ? v : 0;
}

/* Bytes of the WAL files (*.log) in the store's directory: none while the
 * WAL is off, but a store written with it would show them. */
static u64 wal_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	u64 total = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		struct stat st;
		if (n < 4 || strcmp(e->d_name + n - 4, ".log") != 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0)
			total += (u64)st.st_size;
	}
	closedir(d);
	return total;
}

int store_stats(struct store *s, struct store_stats *out)
{
	struct store_meta m;

	memset(out, 0, sizeof(*out));
	out->disk_bytes =
		property(s, "rocksdb.live-sst-files-size") + wal_bytes(s->dir);
	out->memtable_bytes = property(s, "rocksdb.cur-size-all-mem-tables");
	out->table_readers_bytes =
		property(s, "rocksdb.estimate-table-readers-mem");
	out->cache_bytes = rocksdb_cache_get_usage(s->cache);
	out->cache_capacity_bytes = rocksdb_cache_get_capacity(s->cache);
	out->cache_hits = atomic_load(&s->cache_hits);
	out->cache_misses = atomic_load(&s->cache_misses);
	out->pending_compaction_bytes =
		property(s, "rocksdb.estimate-pending-compaction-bytes");
	out->l0_files = property(s, "rocksdb.num-files-at-level0");
	store_meta(s, &m);
	out->seq = m.seq;
	return 0;
}
