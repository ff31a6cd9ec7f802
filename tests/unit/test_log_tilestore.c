/*
 * test_log_tilestore.c - the audit tree's hash tiles on disk: roots and
 * proofs equal to the in-memory merkle_store's at many sizes (with a
 * cache small enough to evict), a reopen that rebuilds nothing, partial
 * and full tiles as C2SP tlog-tiles defines them, a torn hash cut, a
 * corrupted or deleted level rebuilt from the one below, and a damaged
 * tile refused when read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/merkle.h"
#include "log/tilestore.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

/* Past two full level-1 tiles' worth of leaves (2 * 65536) and a bit:
 * level 2 has hashes, level 1 a partial tile. */
#define LEAVES 131700u

static char dir[256];

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/tilestore-XXXXXX", t ? t : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/leaves", dir);
	unlink(path);
	for (unsigned l = 1; l < TILESTORE_LEVELS; l++) {
		snprintf(path, sizeof(path), "%s/tiles-%u", dir, l);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}

static void leaf_of(u64 i, u8 out[MERKLE_HASH_BYTES])
{
	merkle_hash_leaf(&i, sizeof(i), out);
}

static struct tilestore *open_store(struct tilestore_report *rep)
{
	struct tilestore *ts = NULL;
	/* The smallest cache: proofs evict tiles all the time. */
	assert_int_equal(tilestore_open(&ts, dir, 0, NULL, NULL, rep), 0);
	return ts;
}

static u64 rebuilt(const struct tilestore_report *rep)
{
	u64 n = 0;
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++)
		n += rep->rebuilt[l];
	return n;
}

/* Roots and proofs of both at size, for a few indexes and first sizes:
 * NULL when they agree, else what differs (no assertion: a reader
 * thread calls it, and cmocka's assertions belong to the main one). */
static const char *differs(struct tilestore *ts, struct merkle_store *ms,
			   u64 size, u64 *rnd)
{
	u8 a[MERKLE_HASH_BYTES], b[MERKLE_HASH_BYTES];
	u8 pa[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 pb[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	size_t na, nb;

	if (tilestore_root(ts, size, a) != 0 ||
	    merkle_store_root(ms, size, b) != 0)
		return "a root could not be computed";
	if (memcmp(a, b, sizeof(a)) != 0)
		return "the roots differ";
	if (size == 0)
		return NULL;
	for (int k = 0; k < 3; k++) {
		*rnd = *rnd * 6364136223846793005ull + 1442695040888963407ull;
		u64 i = (*rnd >> 11) % size;
		if (tilestore_inclusion_proof(ts, i, size, pa, &na) != 0 ||
		    merkle_store_inclusion_proof(ms, i, size, pb, &nb) != 0)
			return "an inclusion proof could not be made";
		if (na != nb || memcmp(pa, pb, na * MERKLE_HASH_BYTES) != 0)
			return "the inclusion proofs differ";
		u64 first = (*rnd >> 23) % (size + 1);
		if (tilestore_consistency_proof(ts, first, size, pa, &na) !=
			    0 ||
		    merkle_store_consistency_proof(ms, first, size, pb, &nb) !=
			    0)
			return "a consistency proof could not be made";
		if (na != nb || memcmp(pa, pb, na * MERKLE_HASH_BYTES) != 0)
			return "the consistency proofs differ";
	}
	return NULL;
}

static void same_answers(struct tilestore *ts, struct merkle_store *ms,
			 u64 size, u64 *rnd)
{
	const char *why = differs(ts, ms, size, rnd);
	if (why)
		fail_msg("at size %llu: %s", (unsigned long long)size, why);
}

static void
proofs_equal_the_in_memory_store_and_reopen_rebuilds_nothing(void **state)
{
	(void)state;
	struct tilestore_report rep;
	struct tilestore *ts = open_store(&rep);
	struct merkle_store *ms = merkle_store_new();
	u64 rnd = 42;
	u8 h[MERKLE_HASH_BYTES];

	assert_non_null(ms);
	assert_true(tilestore_size(ts) == 0);
	for (u64 i = 0; i < LEAVES; i++) {
		leaf_of(i, h);
		assert_int_equal(tilestore_append(ts, h), 0);
		assert_int_equal(merkle_store_append_hash(ms, h), 0);
		u64 size = i + 1;
		/* Every size up to a few tiles, then around tile edges. */
		if (size <= 700 || size % 997 == 0 || size % 65536 < 3 ||
		    size % 256 < 2)
			same_answers(ts, ms, size, &rnd);
	}
	/* Out of range, as the in-memory store says it. */
	assert_int_equal(tilestore_root(ts, LEAVES + 1, h),
			 MERKLE_E_SIZE_RANGE);
	assert_int_equal(tilestore_leaf_hash(ts, LEAVES, h),
			 MERKLE_E_INDEX_RANGE);
	u8 p[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	size_t np;
	assert_int_equal(tilestore_inclusion_proof(ts, 0, LEAVES + 1, p, &np),
			 MERKLE_E_SIZE_RANGE);
	assert_int_equal(tilestore_inclusion_proof(ts, 5, 5, p, &np),
			 MERKLE_E_INDEX_RANGE);
	struct tilestore_stats st;
	tilestore_stats(ts, &st);
	assert_true(st.misses > 0 && st.hits > 0);
	assert_true(st.cache_bytes < (u64)(TILESTORE_CACHE_TILES_MIN + 1) *
					     TILESTORE_CACHE_TILE_BYTES);
	assert_int_equal(tilestore_sync(ts), 0);
	tilestore_close(ts);

	/* Reopened: nothing rebuilt, nothing cut, the same tree, and it
	 * grows on as if it had never stopped. */
	ts = open_store(&rep);
	assert_true(rep.leaves == LEAVES);
	assert_true(rebuilt(&rep) == 0);
	assert_true(rep.cut_bytes == 0);
	assert_true(rep.checked[1] == 512); /* the tail only */
	assert_true(tilestore_size(ts) == LEAVES);
	for (u64 size = 1; size <= LEAVES; size += 4099)
		same_answers(ts, ms, size, &rnd);
	for (u64 i = LEAVES; i < LEAVES + 300; i++) {
		leaf_of(i, h);
		assert_int_equal(tilestore_append(ts, h), 0);
		assert_int_equal(merkle_store_append_hash(ms, h), 0);
	}
	same_answers(ts, ms, LEAVES + 300, &rnd);
	assert_int_equal(tilestore_sync(ts), 0);
	tilestore_close(ts);
	merkle_store_free(ms);
}

/* Tiles as tlog-tiles has them: tile (L, N)'s hash k is the root of the
 * perfect subtree of 2^(8L) leaves at N * 256 + k. */
static void tiles_full_and_partial(void **state)
{
	(void)state;
	struct tilestore_report rep;
	struct tilestore *ts = open_store(&rep);
	u64 size = tilestore_size(ts);
	u8 t[TILESTORE_WIDTH][MERKLE_HASH_BYTES], h[MERKLE_HASH_BYTES];

	assert_true(size == LEAVES + 300);
	/* Level 0: full tile 3, the partial last one. */
	assert_int_equal(tilestore_tile_width(0, 3, size), 256);
	assert_int_equal(tilestore_tile(ts, 0, 3, 256, size, t), 0);
	leaf_of(3 * 256 + 17, h);
	assert_memory_equal(t[17], h, sizeof(h));
	u64 last = size / 256;
	assert_int_equal(tilestore_tile_width(0, last, size), size % 256);
	assert_int_equal(tilestore_tile_width(0, last + 1, size), 0);
	assert_int_equal(
		tilestore_tile(ts, 0, last, (unsigned)(size % 256), size, t),
		0);
	leaf_of(size - 1, h);
	assert_memory_equal(t[size % 256 - 1], h, sizeof(h));
	/* A narrower partial read of a full tile is its prefix. */
	assert_int_equal(tilestore_tile(ts, 0, 3, 5, size, t), 0);
	leaf_of(3 * 256 + 4, h);
	assert_memory_equal(t[4], h, sizeof(h));
	/* Wider than there is: refused. */
	assert_int_equal(tilestore_tile(ts, 0, last, (unsigned)(size % 256) + 1,
					size, t),
			 MERKLE_E_SIZE_RANGE);
	/* Level 1: hash k is the root of leaves [256 k, 256 k + 256). */
	unsigned w1 = tilestore_tile_width(1, 0, size);
	assert_int_equal(w1, 256);
	assert_int_equal(tilestore_tile(ts, 1, 0, w1, size, t), 0);
	assert_int_equal(tilestore_perfect(ts, 8, 200, h), 0);
	assert_memory_equal(t[200], h, sizeof(h));
	assert_int_equal(tilestore_tile_width(1, 2, size), (size >> 8) - 512);
	/* Level 2: one hash, the root of the first 65536 leaves. */
	assert_int_equal(tilestore_tile_width(2, 0, size), 2);
	assert_int_equal(tilestore_tile(ts, 2, 0, 2, size, t), 0);
	assert_int_equal(tilestore_root(ts, 65536, h), 0);
	assert_memory_equal(t[0], h, sizeof(h));
	assert_int_equal(tilestore_tile_width(3, 0, size), 0);
	tilestore_close(ts);
}

static void file_path(char *out, size_t cap, unsigned level)
{
	if (level == 0)
		snprintf(out, cap, "%s/leaves", dir);
	else
		snprintf(out, cap, "%s/tiles-%u", dir, level);
}

static void flip(unsigned level, u64 at)
{
	char path[512];
	u8 b;
	file_path(path, sizeof(path), level);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
	close(fd);
}

static void root_is(struct tilestore *ts, const u8 want[MERKLE_HASH_BYTES])
{
	u8 h[MERKLE_HASH_BYTES];
	assert_int_equal(tilestore_root(ts, tilestore_size(ts), h), 0);
	assert_memory_equal(h, want, MERKLE_HASH_BYTES);
}

static void torn_corrupt_and_missing_tiles_are_rebuilt(void **state)
{
	(void)state;
	struct tilestore_report rep;
	struct tilestore *ts = open_store(&rep);
	u8 root[MERKLE_HASH_BYTES];
	char path[512];
	u64 size = tilestore_size(ts);

	assert_int_equal(tilestore_root(ts, size, root), 0);
	tilestore_close(ts);

	/* A torn hash at the end of level 0 and of level 1: cut. */
	for (unsigned l = 0; l < 2; l++) {
		file_path(path, sizeof(path), l);
		int fd = open(path, O_WRONLY | O_APPEND);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "torn", 4), 4);
		close(fd);
	}
	ts = open_store(&rep);
	assert_true(rep.cut_bytes == 8);
	assert_true(rebuilt(&rep) == 0);
	root_is(ts, root);
	tilestore_close(ts);

	/* The partial tile of level 1 changed: rebuilt from level 0. */
	flip(1, 32 * ((size >> 8) - 1) + 3);
	ts = open_store(&rep);
	assert_true(rep.rebuilt[1] == 1);
	root_is(ts, root);
	tilestore_close(ts);

	/* Level 1 deleted: rebuilt whole; level 2 checked against it. */
	file_path(path, sizeof(path), 1);
	assert_int_equal(unlink(path), 0);
	ts = open_store(&rep);
	assert_true(rep.rebuilt[1] == size >> 8);
	assert_true(rep.rebuilt[2] == 0 && rep.checked[2] == size >> 16);
	root_is(ts, root);
	tilestore_close(ts);

	/* Leaves lost from the end (an operator cut the journal): the
	 * levels above are cut to match. */
	file_path(path, sizeof(path), 0);
	assert_int_equal(truncate(path, (off_t)(32 * 65535)), 0);
	ts = open_store(&rep);
	assert_true(tilestore_size(ts) == 65535);
	assert_true(rep.cut_bytes == 32 * ((size >> 8) - 255) + 32 * 2);
	struct merkle_store *ms = merkle_store_new();
	u8 h[MERKLE_HASH_BYTES];
	for (u64 i = 0; i < 65535; i++) {
		leaf_of(i, h);
		assert_int_equal(merkle_store_append_hash(ms, h), 0);
	}
	assert_int_equal(merkle_store_root(ms, 65535, root), 0);
	root_is(ts, root);
	/* Growing again completes the first level-2 hash. */
	leaf_of(65535, h);
	assert_int_equal(tilestore_append(ts, h), 0);
	assert_int_equal(merkle_store_append_hash(ms, h), 0);
	assert_int_equal(merkle_store_root(ms, 65536, root), 0);
	root_is(ts, root);
	assert_int_equal(tilestore_sync(ts), 0);
	tilestore_close(ts);
	merkle_store_free(ms);
}

/* A full tile changed on disk after the store was opened: reading it
 * fails (it does not hash to its parent), nothing wrong is served. */
static void a_damaged_tile_is_refused_when_read(void **state)
{
	(void)state;
	struct tilestore_report rep;
	struct tilestore *ts = open_store(&rep);
	u8 h[MERKLE_HASH_BYTES];

	flip(0, 32 * (5 * 256 + 9));
	assert_int_equal(tilestore_leaf_hash(ts, 5 * 256 + 9, h), -EBADMSG);
	assert_int_equal(tilestore_leaf_hash(ts, 5 * 256 + 10, h), -EBADMSG);
	leaf_of(6 * 256, h);
	u8 g[MERKLE_HASH_BYTES];
	assert_int_equal(tilestore_leaf_hash(ts, 6 * 256, g), 0);
	assert_memory_equal(g, h, sizeof(h));
	tilestore_close(ts);
	flip(0, 32 * (5 * 256 + 9)); /* restored */
}

struct race {
	struct tilestore *ts;
	struct merkle_store *ms;
	atomic_bool done;
	unsigned checked;
	const char *why; /* the reader's first disagreement */
	u64 why_size;
};

/* A reader while the writer appends: every size it sees published has
 * the in-memory store's root and proofs (partial tiles change under it,
 * full tiles move to disk under it). */
static void *reader(void *arg)
{
	struct race *r = arg;
	u64 rnd = 99;

	while (!atomic_load(&r->done)) {
		u64 size = tilestore_size(r->ts);
		if (size == 0)
			continue;
		r->why = differs(r->ts, r->ms, size, &rnd);
		if (r->why) {
			r->why_size = size;
			break;
		}
		r->checked++;
	}
	return NULL;
}

static void readers_while_the_writer_appends(void **state)
{
	(void)state;
	struct race r = {0};
	struct tilestore_report rep;
	pthread_t th;
	u8 h[MERKLE_HASH_BYTES];

	assert_int_equal(tilestore_open(&r.ts, NULL, 0, NULL, NULL, &rep), 0);
	r.ms = merkle_store_new();
	assert_non_null(r.ms);
	atomic_init(&r.done, false);
	/* The reference whole before the reader starts: it answers for any
	 * size ts publishes, and is never written while read (it grew
	 * beside the reader once, and a reallocation under it crashed the
	 * test now and then on a loaded machine). */
	for (u64 i = 0; i < 70000; i++) {
		leaf_of(i, h);
		assert_int_equal(merkle_store_append_hash(r.ms, h), 0);
	}
	assert_int_equal(pthread_create(&th, NULL, reader, &r), 0);
	for (u64 i = 0; i < 70000; i++) {
		leaf_of(i, h);
		assert_int_equal(tilestore_append(r.ts, h), 0);
		if (i % 4096 == 0)
			assert_int_equal(tilestore_sync(r.ts), 0);
	}
	atomic_store(&r.done, true);
	pthread_join(th, NULL);
	if (r.why)
		fail_msg("the reader at size %llu: %s",
			 (unsigned long long)r.why_size, r.why);
	assert_true(r.checked > 0);
	tilestore_close(r.ts);
	merkle_store_free(r.ms);
}

/* Tile paths as C2SP tlog-tiles writes them, both ways; anything not
 * canonical refused. */
static void tile_paths(void **state)
{
	(void)state;
	static const struct {
		unsigned level;
		u64 index;
		unsigned width;
		const char *path;
	} good[] = {
		{0, 0, 0, "0/000"},
		{0, 5, 0, "0/005"},
		{1, 999, 17, "1/999.p/17"},
		{0, 1000, 0, "0/x001/000"},
		{2, 1234067, 255, "2/x001/x234/067.p/255"},
		{4, UINT64_MAX, 1, "4/x018/x446/x744/x073/x709/x551/615.p/1"},
	};
	char buf[TILESTORE_PATH_BYTES_MAX];
	unsigned level, width;
	u64 index;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(tilestore_path_parse(good[i].path, &level,
						      &index, &width),
				 0);
		assert_int_equal(level, good[i].level);
		assert_true(index == good[i].index);
		assert_int_equal(width, good[i].width);
		size_t n = tilestore_path_format(buf, sizeof(buf), level, index,
						 width);
		assert_int_equal(n, strlen(good[i].path));
		assert_string_equal(buf, good[i].path);
	}
	static const char *const bad[] = {
		"",
		"0",
		"0/",
		"0/1",
		"0/0000",
		"0/x000/001",
		"01/000",
		"64/000",
		"0/000.p/0",
		"0/000.p/256",
		"0/000.p/07",
		"0/000.p/",
		"0/000/",
		"0/000.q/1",
		"0/x001",
		"0/x1/000",
		"entries/000",
		"0/x018/x446/x744/x073/x709/x551/616",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tilestore_path_parse(bad[i], &level, &index, &width) !=
		    -EINVAL)
			fail_msg("accepted %s", bad[i]);
}

/* Without a directory (a tool reading a journal): memory-backed. */
static void memory_backed_store(void **state)
{
	(void)state;
	struct tilestore *ts = NULL;
	struct tilestore_report rep;
	struct merkle_store *ms = merkle_store_new();
	u8 h[MERKLE_HASH_BYTES];
	u64 rnd = 7;

	assert_int_equal(tilestore_open(&ts, NULL, 1 << 20, NULL, NULL, &rep),
			 0);
	for (u64 i = 0; i < 1000; i++) {
		leaf_of(i, h);
		assert_int_equal(tilestore_append(ts, h), 0);
		assert_int_equal(merkle_store_append_hash(ms, h), 0);
	}
	same_answers(ts, ms, 1000, &rnd);
	tilestore_close(ts);
	merkle_store_free(ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			proofs_equal_the_in_memory_store_and_reopen_rebuilds_nothing),
		cmocka_unit_test(tiles_full_and_partial),
		cmocka_unit_test(torn_corrupt_and_missing_tiles_are_rebuilt),
		cmocka_unit_test(a_damaged_tile_is_refused_when_read),
		cmocka_unit_test(memory_backed_store),
		cmocka_unit_test(tile_paths),
		cmocka_unit_test(readers_while_the_writer_appends),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
