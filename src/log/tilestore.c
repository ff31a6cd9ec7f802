/*
 * tilestore.c - the audit tree's hashes in tiles on disk behind a bounded
 * cache (tilestore.h).
 *
 * Each level keeps its partial tile (the right edge) in memory, under the
 * store's lock, and its full tiles in its file.  The writer appends
 * through merkle_tree_append_hash: every node of a tree level 8L it
 * completes is hash (L, index); when a level's partial tile fills, the
 * tile is written to the file before the edge moves on, so a reader that
 * finds a tile no longer at the edge finds it whole on disk.
 *
 * The cache holds full tiles expanded (their 256 hashes and the 255
 * nodes above them, so any node inside a tile is one lookup), in a
 * chained hash table with CLOCK eviction.  A tile read from disk is
 * checked against its parent hash (one level up) before it enters the
 * cache; the parent comes through the same path, and the chain ends at
 * a partial tile in memory, which tilestore_open checked.
 */
#include "log/tilestore.h"
#include "log/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

#define HB		MERKLE_HASH_BYTES
#define TILE_BYTES	((u64)TILESTORE_WIDTH * HB)
#define EXPANDED_HASHES 511u
/* Hashes of each level checked against the level below at open: the
 * last two tiles' worth, where a crash can leave a torn tail. */
#define OPEN_CHECK_HASHES 512u
/* Progress is reported about this often during a rebuild. */
#define PROGRESS_HASHES ((u64)1 << 20)

struct level {
	int fd;
	u64 written;   /* hashes known to be in the file */
	bool dirty;    /* written since the last sync */
	u64 edge_tile; /* index of the partial tile */
	unsigned edge_n;
	u8 edge[TILESTORE_WIDTH][HB];
};

struct entry {
	u64 key;
	int next; /* in its bucket's chain; -1 ends it */
	bool used;
	bool ref;
	u8 h[EXPANDED_HASHES][HB];
};

_Static_assert(sizeof(struct entry) <= TILESTORE_CACHE_TILE_BYTES,
	       "a cached tile costs what tilestore.h says");

struct tilestore {
	pthread_mutex_t lock; /* edges, cache, counters */
	_Atomic u64 size;
	struct merkle_tree tree; /* the writer's */
	int append_err;		 /* from a node callback */
	struct level lv[TILESTORE_LEVELS];
	struct entry *ent;
	unsigned nent, hand;
	int *bucket;
	unsigned bucket_bits;
	u64 hits, misses;
};

/* Where tree level r (0..8) of a tile starts among its expanded hashes:
 * 256 at 0, 128 at 256, ..., the tile's root at 510. */
static unsigned expanded_at(unsigned r)
{
	return 512u - (512u >> r);
}

/* Fold n = 2^k hashes (in place) into their perfect subtree's root. */
static void fold(u8 (*h)[HB], unsigned n, u8 out[HB])
{
	for (; n > 1; n /= 2)
		for (unsigned i = 0; i < n / 2; i++)
			merkle_hash_node(h[2 * i], h[2 * i + 1], h[i]);
	memcpy(out, h[0], HB);
}

static void expand(u8 (*x)[HB])
{
	for (unsigned r = 1; r <= TILESTORE_HEIGHT; r++) {
		unsigned from = expanded_at(r - 1), to = expanded_at(r);
		for (unsigned i = 0; i < (TILESTORE_WIDTH >> r); i++)
			merkle_hash_node(x[from + 2 * i], x[from + 2 * i + 1],
					 x[to + i]);
	}
}

static int pread_all(int fd, void *buf, size_t n, u64 off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k =
			pread(fd, (u8 *)buf + got, n - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		got += (size_t)k;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, u64 off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = pwrite(fd, (const u8 *)buf + done, n - done,
				   (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		done += (size_t)k;
	}
	return 0;
}

/* ---- the cache --------------------------------------------------------- */

static u64 key_of(unsigned level, u64 index)
{
	return ((u64)level << 56) | index;
}

static unsigned bucket_of(const struct tilestore *ts, u64 key)
{
	return (unsigned)((key * 0x9e3779b97f4a7c15ull) >>
			  (64 - ts->bucket_bits));
}

/* Under the lock. */
static struct entry *cache_find(struct tilestore *ts, u64 key)
{
	for (int i = ts->bucket[bucket_of(ts, key)]; i >= 0;
	     i = ts->ent[i].next)
		if (ts->ent[i].key == key)
			return &ts->ent[i];
	return NULL;
}

/* Under the lock: an entry for key (evicting one), its hashes to fill. */
static struct entry *cache_insert(struct tilestore *ts, u64 key)
{
	struct entry *e;

	for (;;) {
		e = &ts->ent[ts->hand];
		ts->hand = (ts->hand + 1) % ts->nent;
		if (!e->used || !e->ref)
			break;
		e->ref = false;
	}
	if (e->used) {
		int *p = &ts->bucket[bucket_of(ts, e->key)];
		int self = (int)(e - ts->ent);
		while (*p != self)
			p = &ts->ent[*p].next;
		*p = e->next;
	}
	unsigned b = bucket_of(ts, key);
	e->key = key;
	e->used = true;
	e->ref = true;
	e->next = ts->bucket[b];
	ts->bucket[b] = (int)(e - ts->ent);
	return e;
}

/* Hashes [at, at + n) of full tile (level, index), expanded: through the
 * cache, or read from disk and checked against the parent hash. */
static int full_tile(struct tilestore *ts, unsigned level, u64 index,
		     unsigned at, unsigned n, u8 (*out)[HB])
{
	u64 key = key_of(level, index);
	u8 parent[HB];
	int ret;

	pthread_mutex_lock(&ts->lock);
	struct entry *e = cache_find(ts, key);
	if (e) {
		e->ref = true;
		memcpy(out, e->h[at], (size_t)n * HB);
		ts->hits++;
	} else {
		ts->misses++;
	}
	pthread_mutex_unlock(&ts->lock);
	if (e)
		return 0;
	if (level + 1 >= TILESTORE_LEVELS)
		return MERKLE_E_SIZE_RANGE; /* no such full tile */
	u8(*x)[HB] = malloc((size_t)EXPANDED_HASHES * HB);
	if (!x)
		return -ENOMEM;
	ret = pread_all(ts->lv[level].fd, x, TILE_BYTES, index * TILE_BYTES);
	if (ret != 0)
		goto cleanup;
	expand(x);
	ret = tilestore_perfect(ts, TILESTORE_HEIGHT * (level + 1), index,
				parent);
	if (ret != 0)
		goto cleanup;
	if (memcmp(parent, x[expanded_at(TILESTORE_HEIGHT)], HB) != 0) {
		ret = -EBADMSG;
		goto cleanup;
	}
	pthread_mutex_lock(&ts->lock);
	e = cache_find(ts, key);
	if (!e) {
		e = cache_insert(ts, key);
		memcpy(e->h, x, sizeof(e->h));
	}
	memcpy(out, x[at], (size_t)n * HB);
	pthread_mutex_unlock(&ts->lock);
cleanup:
	free(x);
	return ret;
}

/* ---- reading ----------------------------------------------------------- */

u64 tilestore_size(const struct tilestore *ts)
{
	return atomic_load_explicit(&ts->size, memory_order_acquire);
}

int tilestore_perfect(void *ctx, unsigned h, u64 k, u8 out[HB])
{
	struct tilestore *ts = ctx;
	unsigned level = h / TILESTORE_HEIGHT, r = h % TILESTORE_HEIGHT;
	u8 buf[TILESTORE_WIDTH / 2][HB];

	if (h >= 64 || level >= TILESTORE_LEVELS ||
	    k >= (tilestore_size(ts) >> h))
		return MERKLE_E_SIZE_RANGE;
	u64 first = k << r; /* its first hash at tree level 8 * level */
	u64 tile = first / TILESTORE_WIDTH;
	unsigned in = (unsigned)(first % TILESTORE_WIDTH);
	struct level *lv = &ts->lv[level];

	pthread_mutex_lock(&ts->lock);
	if (tile == lv->edge_tile) {
		memcpy(buf, lv->edge[in], (size_t)HB << r);
		pthread_mutex_unlock(&ts->lock);
		fold(buf, 1u << r, out);
		return 0;
	}
	pthread_mutex_unlock(&ts->lock);
	return full_tile(ts, level, tile, expanded_at(r) + (in >> r), 1,
			 (u8(*)[HB])out);
}

int tilestore_leaf_hash(struct tilestore *ts, u64 index, u8 out[HB])
{
	if (index >= tilestore_size(ts))
		return MERKLE_E_INDEX_RANGE;
	return tilestore_perfect(ts, 0, index, out);
}

int tilestore_root(struct tilestore *ts, u64 size, u8 out[HB])
{
	if (size > tilestore_size(ts))
		return MERKLE_E_SIZE_RANGE;
	return merkle_root_of(tilestore_perfect, ts, size, out);
}

int tilestore_inclusion_proof(struct tilestore *ts, u64 index, u64 size,
			      u8 proof[][HB], size_t *nproof)
{
	if (size != 0 && index < size && size > tilestore_size(ts))
		return MERKLE_E_SIZE_RANGE;
	return merkle_inclusion_proof_of(tilestore_perfect, ts, index, size,
					 proof, nproof);
}

int tilestore_consistency_proof(struct tilestore *ts, u64 first, u64 second,
				u8 proof[][HB], size_t *nproof)
{
	if (first > second)
		return MERKLE_E_SIZE_ORDER;
	if (second > tilestore_size(ts))
		return MERKLE_E_SIZE_RANGE;
	return merkle_consistency_proof_of(tilestore_perfect, ts, first, second,
					   proof, nproof);
}

unsigned tilestore_tile_width(unsigned level, u64 index, u64 size)
{
	if (level >= TILESTORE_LEVELS)
		return 0;
	u64 count = size >> (TILESTORE_HEIGHT * level);
	if (index > (count >> 8) || count - index * TILESTORE_WIDTH == 0)
		return 0;
	u64 w = count - index * TILESTORE_WIDTH;
	return w > TILESTORE_WIDTH ? TILESTORE_WIDTH : (unsigned)w;
}

int tilestore_tile(struct tilestore *ts, unsigned level, u64 index,
		   unsigned width, u64 size, u8 (*out)[HB])
{
	if (size > tilestore_size(ts) || width == 0 ||
	    width > tilestore_tile_width(level, index, size))
		return MERKLE_E_SIZE_RANGE;
	struct level *lv = &ts->lv[level];
	pthread_mutex_lock(&ts->lock);
	if (index == lv->edge_tile) {
		memcpy(out, lv->edge, (size_t)width * HB);
		pthread_mutex_unlock(&ts->lock);
		return 0;
	}
	pthread_mutex_unlock(&ts->lock);
	return full_tile(ts, level, index, 0, width, out);
}

int tilestore_read_leaves(struct tilestore *ts, u64 first, u64 n, u8 (*out)[HB])
{
	if (first + n < first || first + n > ts->lv[0].written)
		return -ERANGE;
	return pread_all(ts->lv[0].fd, out, (size_t)(n * HB), first * HB);
}

void tilestore_stats(struct tilestore *ts, struct tilestore_stats *out)
{
	pthread_mutex_lock(&ts->lock);
	out->hits = ts->hits;
	out->misses = ts->misses;
	out->cache_bytes = (u64)ts->nent * sizeof(struct entry);
	pthread_mutex_unlock(&ts->lock);
}

/* ---- writing ----------------------------------------------------------- */

static void on_node(void *ctx, unsigned h, u64 index, const u8 hash[HB])
{
	struct tilestore *ts = ctx;
	unsigned level = h / TILESTORE_HEIGHT;

	if (h % TILESTORE_HEIGHT != 0 || level >= TILESTORE_LEVELS ||
	    ts->append_err != 0)
		return;
	struct level *lv = &ts->lv[level];
	unsigned in = (unsigned)(index % TILESTORE_WIDTH);
	pthread_mutex_lock(&ts->lock);
	memcpy(lv->edge[in], hash, HB);
	lv->edge_n = in + 1;
	pthread_mutex_unlock(&ts->lock);
	if (lv->edge_n < TILESTORE_WIDTH)
		return;
	/* A full tile: on disk before readers look for it there. */
	int ret = pwrite_all(lv->fd, lv->edge, TILE_BYTES,
			     lv->edge_tile * TILE_BYTES);
	if (ret != 0) {
		ts->append_err = ret;
		return;
	}
	lv->dirty = true;
	pthread_mutex_lock(&ts->lock);
	lv->edge_tile++;
	lv->edge_n = 0;
	lv->written = lv->edge_tile * TILESTORE_WIDTH;
	pthread_mutex_unlock(&ts->lock);
}

int tilestore_append(struct tilestore *ts, const u8 leaf[HB])
{
	if (ts->append_err != 0)
		return ts->append_err;
	if (ts->tree.size >= MERKLE_STORE_LEAVES_MAX)
		return MERKLE_E_FULL;
	int ret = merkle_tree_append_hash(&ts->tree, leaf, on_node, ts);
	if (ret != 0)
		return ret;
	if (ts->append_err != 0)
		return ts->append_err;
	atomic_store_explicit(&ts->size, ts->tree.size, memory_order_release);
	return 0;
}

int tilestore_sync(struct tilestore *ts)
{
	if (ts->append_err != 0)
		return ts->append_err;
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++) {
		struct level *lv = &ts->lv[l];
		/* The writer's own fields: no lock needed to read them. */
		u64 have = lv->edge_tile * TILESTORE_WIDTH + lv->edge_n;
		if (have > lv->written) {
			u64 from = lv->written;
			u64 in = from - lv->edge_tile * TILESTORE_WIDTH;
			int ret = pwrite_all(lv->fd, lv->edge[in],
					     (size_t)((have - from) * HB),
					     from * HB);
			if (ret != 0)
				return ret;
			lv->written = have;
			lv->dirty = true;
		}
		if (lv->dirty && fdatasync(lv->fd) != 0)
			return -errno;
		lv->dirty = false;
	}
	return 0;
}

/* ---- tile paths ------------------------------------------------------- */

/* A canonical decimal of 1..digits_max digits at *p, up to max. */
static int small_decimal(const char **p, unsigned digits_max, u64 max, u64 *out)
{
	const char *s = *p;
	unsigned n = 0;
	u64 v = 0;

	while (s[n] >= '0' && s[n] <= '9' && n < digits_max) {
		v = v * 10 + (u64)(s[n] - '0');
		n++;
	}
	if (n == 0 || (n > 1 && s[0] == '0') || v > max ||
	    (s[n] >= '0' && s[n] <= '9'))
		return -EINVAL;
	*p = s + n;
	*out = v;
	return 0;
}

static int three_digits(const char *s, u64 *out)
{
	for (int i = 0; i < 3; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	*out = (u64)(s[0] - '0') * 100 + (u64)(s[1] - '0') * 10 +
	       (u64)(s[2] - '0');
	return 0;
}

int tilestore_path_parse(const char *s, unsigned *level, u64 *index,
			 unsigned *width)
{
	u64 v, n = 0, g;
	bool first = true;

	if (small_decimal(&s, 2, 63, &v) != 0 || *s++ != '/')
		return -EINVAL;
	*level = (unsigned)v;
	while (*s == 'x') {
		if (three_digits(s + 1, &g) != 0 || s[4] != '/' ||
		    (first && g == 0) || n > (UINT64_MAX - g) / 1000)
			return -EINVAL;
		n = n * 1000 + g;
		first = false;
		s += 5;
	}
	if (three_digits(s, &g) != 0 || n > (UINT64_MAX - g) / 1000)
		return -EINVAL;
	*index = n * 1000 + g;
	s += 3;
	*width = 0;
	if (*s == '\0')
		return 0;
	if (s[0] != '.' || s[1] != 'p' || s[2] != '/')
		return -EINVAL;
	s += 3;
	if (small_decimal(&s, 3, TILESTORE_WIDTH - 1, &v) != 0 || v == 0 ||
	    *s != '\0')
		return -EINVAL;
	*width = (unsigned)v;
	return 0;
}

size_t tilestore_path_format(char *out, size_t cap, unsigned level, u64 index,
			     unsigned width)
{
	unsigned groups[7], ng = 0;
	size_t len;

	do {
		groups[ng++] = (unsigned)(index % 1000);
		index /= 1000;
	} while (index > 0);
	len = (size_t)snprintf(out, cap, "%u/", level);
	while (ng-- > 1)
		len += (size_t)snprintf(out + len, cap - len, "x%03u/",
					groups[ng]);
	len += (size_t)snprintf(out + len, cap - len, "%03u", groups[0]);
	if (width > 0 && width < TILESTORE_WIDTH)
		len += (size_t)snprintf(out + len, cap - len, ".p/%u", width);
	return len;
}

/* ---- open -------------------------------------------------------------- */

/* Hash j of `level` from tile j of the level below, read from its file. */
static int from_below(struct tilestore *ts, unsigned level, u64 j,
		      u8 (*buf)[HB], u8 out[HB])
{
	int ret = pread_all(ts->lv[level - 1].fd, buf, TILE_BYTES,
			    j * TILE_BYTES);
	if (ret == 0)
		fold(buf, TILESTORE_WIDTH, out);
	return ret;
}

/* Make level hold exactly `want` hashes that agree with the level below:
 * cut a surplus, check the last OPEN_CHECK_HASHES, rebuild from the first
 * that differs (or is missing) on. */
static int settle_level(struct tilestore *ts, unsigned level, u64 have,
			u64 want, tilestore_progress_fn *progress, void *pctx,
			struct tilestore_report *rep)
{
	struct level *lv = &ts->lv[level];
	u8(*buf)[HB] = malloc(TILE_BYTES);
	u8 h[HB], stored[HB];
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	if (have > want) {
		if (ftruncate(lv->fd, (off_t)(want * HB)) != 0) {
			ret = -errno;
			goto cleanup;
		}
		rep->cut_bytes += (have - want) * HB;
		have = want;
		lv->dirty = true;
	}
	u64 j = want > OPEN_CHECK_HASHES ? want - OPEN_CHECK_HASHES : 0;
	if (j > have)
		j = have; /* a short file: rebuild from its end */
	for (; j < have; j++) {
		ret = from_below(ts, level, j, buf, h);
		if (ret == 0)
			ret = pread_all(lv->fd, stored, HB, j * HB);
		if (ret != 0)
			goto cleanup;
		if (memcmp(h, stored, HB) != 0)
			break;
		rep->checked[level]++;
	}
	u64 start = j;
	for (; j < want; j++) {
		ret = from_below(ts, level, j, buf, h);
		if (ret == 0)
			ret = pwrite_all(lv->fd, h, HB, j * HB);
		if (ret != 0)
			goto cleanup;
		rep->rebuilt[level]++;
		lv->dirty = true;
		if (progress && (j - start + 1) % PROGRESS_HASHES == 0)
			progress(pctx, level, j - start + 1, want - start);
	}
	if (progress && want > start)
		progress(pctx, level, want - start, want - start);
	if (lv->dirty && ftruncate(lv->fd, (off_t)(want * HB)) != 0)
		ret = -errno;
cleanup:
	free(buf);
	return ret;
}

static int open_level(const char *dir, unsigned level, int *fd)
{
	char path[PATH_MAX];

	if (!dir) {
		*fd = memfd_create("tpwallet-tiles", MFD_CLOEXEC);
		return *fd < 0 ? -errno : 0;
	}
	if (level == 0)
		snprintf(path, sizeof(path), "%s/" DATADIR_TILES_LEAVES, dir);
	else
		snprintf(path, sizeof(path), "%s/" DATADIR_TILES_LEVEL_FMT, dir,
			 level);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	return *fd < 0 ? -errno : 0;
}

int tilestore_open(struct tilestore **out, const char *audit_dir,
		   u64 cache_bytes, tilestore_progress_fn *progress,
		   void *progress_ctx, struct tilestore_report *report)
{
	struct tilestore_report rep = {0};
	struct tilestore *ts = calloc(1, sizeof(*ts));
	u64 have[TILESTORE_LEVELS];
	int ret = 0;

	*out = NULL;
	if (!ts)
		return -ENOMEM;
	pthread_mutex_init(&ts->lock, NULL);
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++)
		ts->lv[l].fd = -1;
	u64 n = cache_bytes / sizeof(struct entry);
	ts->nent = n < TILESTORE_CACHE_TILES_MIN ? TILESTORE_CACHE_TILES_MIN
		   : n > (1u << 24)		 ? (1u << 24)
						 : (unsigned)n;
	ts->bucket_bits = 1;
	while ((1u << ts->bucket_bits) < 2 * ts->nent)
		ts->bucket_bits++;
	ts->ent = calloc(ts->nent, sizeof(*ts->ent));
	ts->bucket = malloc(sizeof(int) << ts->bucket_bits);
	if (!ts->ent || !ts->bucket) {
		ret = -ENOMEM;
		goto fail;
	}
	memset(ts->bucket, 0xff, sizeof(int) << ts->bucket_bits);
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++) {
		struct stat st;
		ret = open_level(audit_dir, l, &ts->lv[l].fd);
		if (ret != 0)
			goto fail;
		if (fstat(ts->lv[l].fd, &st) != 0) {
			ret = -errno;
			goto fail;
		}
		have[l] = (u64)st.st_size / HB;
		if ((u64)st.st_size % HB != 0) {
			/* A hash torn by a crash mid-write. */
			rep.cut_bytes += (u64)st.st_size % HB;
			if (ftruncate(ts->lv[l].fd, (off_t)(have[l] * HB)) !=
			    0) {
				ret = -errno;
				goto fail;
			}
			ts->lv[l].dirty = true;
		}
	}
	u64 size = have[0];
	if (size > MERKLE_STORE_LEAVES_MAX) {
		ret = -EFBIG;
		goto fail;
	}
	for (unsigned l = 1; l < TILESTORE_LEVELS; l++) {
		ret = settle_level(ts, l, have[l],
				   size >> (TILESTORE_HEIGHT * l), progress,
				   progress_ctx, &rep);
		if (ret != 0)
			goto fail;
	}
	/* The partial tiles into memory. */
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++) {
		struct level *lv = &ts->lv[l];
		u64 count = size >> (TILESTORE_HEIGHT * l);
		lv->edge_tile = count / TILESTORE_WIDTH;
		lv->edge_n = (unsigned)(count % TILESTORE_WIDTH);
		lv->written = count;
		ret = pread_all(lv->fd, lv->edge, (size_t)lv->edge_n * HB,
				lv->edge_tile * TILE_BYTES);
		if (ret != 0)
			goto fail;
	}
	ret = tilestore_sync(ts);
	if (ret != 0)
		goto fail;
	/* The writer's compact range, from the stored peaks. */
	atomic_store(&ts->size, size);
	merkle_tree_init(&ts->tree);
	ts->tree.size = size;
	u64 at = 0;
	for (unsigned b = 64; b-- > 0;) {
		if (!(size >> b & 1))
			continue;
		ret = tilestore_perfect(ts, b, at >> b,
					ts->tree.peaks[ts->tree.npeaks++]);
		if (ret != 0)
			goto fail;
		at += (u64)1 << b;
	}
	rep.leaves = size;
	if (report)
		*report = rep;
	*out = ts;
	return 0;
fail:
	tilestore_close(ts);
	return ret;
}

void tilestore_close(struct tilestore *ts)
{
	if (!ts)
		return;
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++)
		if (ts->lv[l].fd >= 0)
			close(ts->lv[l].fd);
	free(ts->ent);
	free(ts->bucket);
	pthread_mutex_destroy(&ts->lock);
	free(ts);
}
