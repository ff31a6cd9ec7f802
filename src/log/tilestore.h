/*
 * tilestore.h - the audit tree's hashes on disk, in C2SP tlog-tiles
 * tiles of height 8, read through a bounded cache.
 *
 * A tile of level L holds up to 256 consecutive hashes of tree level 8L:
 * tile (L, N) holds the roots of the perfect subtrees of 2^(8L) leaves
 * with indexes N*256 .. N*256+255.  A full tile never changes; the right
 * edge of each level is a partial tile of fewer than 256 hashes.
 *
 * On disk (docs/audit.md, "Tiles"): one append-only file per level, tile
 * hashes packed in order, hash j of level L at 32 * j, so tile N is bytes
 * [8192 N, 8192 (N + 1)) and a partial tile the file's tail.  Level 0 is
 * DATA/audit/leaves (leaf hash i at 32 * i, as it always was); levels 1
 * to 4 are DATA/audit/tiles-1 .. tiles-4 (five files whatever the size;
 * one file per tile would be 390,000 files at 10^8 leaves).  There is no
 * checksum field: the tree is its own.  A full tile of level L hashes (as
 * a perfect subtree) to hash N of level L + 1, which is checked each
 * time the tile is read from disk; what no level above covers (the
 * partial tiles, and the tail a crash can tear) is checked at open
 * against the level below and rebuilt from it when it differs or is
 * missing.  Level 0 itself is checked against the journal by its reader
 * (engine/audit.c) and rebuilt from it.
 *
 * Writes: a full tile is written once, when it completes; partial tiles
 * are written by tilestore_sync, which also makes every level durable (a
 * checkpoint is signed only after it).  A crash therefore leaves at most
 * a tail that tilestore_open cuts or rebuilds.
 *
 * Memory: the cache (cache_bytes, at least TILESTORE_CACHE_TILES_MIN
 * tiles of TILESTORE_CACHE_TILE_BYTES each) and one partial tile per
 * level (40 KiB), whatever the number of leaves.
 *
 * Threads: one writer (append, sync); any thread may read sizes, hashes,
 * roots, proofs and tiles for sizes up to tilestore_size(), which is
 * published with release order after the hashes it covers.
 */
#ifndef TPW_LOG_TILESTORE_H
#define TPW_LOG_TILESTORE_H

#include "core/merkle.h"
#include "core/types.h"

#include <stdbool.h>

#define TILESTORE_HEIGHT 8u
#define TILESTORE_WIDTH	 256u
/* Tile levels 0..4: level 4 holds roots of 2^32 leaves, as many as the
 * tree may hold (MERKLE_STORE_LEAVES_MAX). */
#define TILESTORE_LEVELS 5u
/* What one cached tile costs: its 256 hashes and the 255 above them. */
#define TILESTORE_CACHE_TILE_BYTES (511u * MERKLE_HASH_BYTES + 32u)
#define TILESTORE_CACHE_TILES_MIN  16u
/* The default of the setting audit_cache_bytes. */
#define TILESTORE_CACHE_BYTES_DEFAULT ((u64)32 << 20)

struct tilestore;

/* What tilestore_open found and did. */
struct tilestore_report {
	u64 leaves;		       /* leaf hashes found (level 0) */
	u64 cut_bytes;		       /* torn or surplus bytes cut */
	u64 rebuilt[TILESTORE_LEVELS]; /* hashes recomputed per level */
	u64 checked[TILESTORE_LEVELS]; /* hashes checked against below */
};

/* Progress of a rebuild at open: `done` of `total` hashes of level. */
typedef void tilestore_progress_fn(void *ctx, unsigned level, u64 done,
				   u64 total);

/*
 * Open the hashes in audit_dir (DATA/audit, which must exist), or, with
 * audit_dir NULL, in memory-backed files that vanish at close (a tool
 * reading a journal).  Checks and repairs the tails as above, calling
 * progress (may be NULL) about every million hashes rebuilt.  Returns 0,
 * -ENOMEM, -EBADMSG (a level disagrees with the one below where neither
 * can be rebuilt) or -errno.
 */
int tilestore_open(struct tilestore **out, const char *audit_dir,
		   u64 cache_bytes, tilestore_progress_fn *progress,
		   void *progress_ctx, struct tilestore_report *report);
void tilestore_close(struct tilestore *ts);

/* Leaves held (acquire order). */
u64 tilestore_size(const struct tilestore *ts);

/* Append a leaf hash (the writer).  Returns 0, MERKLE_E_FULL or -errno
 * (nothing published then). */
int tilestore_append(struct tilestore *ts, const u8 leaf[MERKLE_HASH_BYTES]);

/* Write the partial tiles and make every level durable. 0 or -errno. */
int tilestore_sync(struct tilestore *ts);

/* Leaf hashes [first, first + n), all below tilestore_size, read straight
 * from level 0 (not through the cache: for a sequential pass).  0 or
 * -errno / -EIO. */
int tilestore_read_leaves(struct tilestore *ts, u64 first, u64 n,
			  u8 (*out)[MERKLE_HASH_BYTES]);

/* The root of the perfect subtree (level, index), complete below
 * tilestore_size: a merkle_perfect_fn (ctx is the store).  Returns 0,
 * MERKLE_E_SIZE_RANGE, -EBADMSG (a tile that does not hash to its
 * parent: damaged on disk) or -errno. */
int tilestore_perfect(void *ts, unsigned level, u64 index,
		      u8 out[MERKLE_HASH_BYTES]);

/* As merkle_store_leaf_hash, _root, _inclusion_proof and
 * _consistency_proof, with the errors of tilestore_perfect besides. */
int tilestore_leaf_hash(struct tilestore *ts, u64 index,
			u8 out[MERKLE_HASH_BYTES]);
int tilestore_root(struct tilestore *ts, u64 size, u8 out[MERKLE_HASH_BYTES]);
int tilestore_inclusion_proof(struct tilestore *ts, u64 index, u64 size,
			      u8 proof[][MERKLE_HASH_BYTES], size_t *nproof);
int tilestore_consistency_proof(struct tilestore *ts, u64 first, u64 second,
				u8 proof[][MERKLE_HASH_BYTES], size_t *nproof);

/* How many hashes tile (level, index) has in the tree of `size` leaves
 * (0: none yet; 256: full). */
unsigned tilestore_tile_width(unsigned level, u64 index, u64 size);

/* The first `width` hashes of tile (level, index), which must be at most
 * tilestore_tile_width(level, index, size) for a size <= tilestore_size,
 * into out (32 * width bytes).  Returns 0, MERKLE_E_SIZE_RANGE, -EBADMSG
 * or -errno. */
int tilestore_tile(struct tilestore *ts, unsigned level, u64 index,
		   unsigned width, u64 size, u8 (*out)[MERKLE_HASH_BYTES]);

/*
 * A tile's path as C2SP tlog-tiles writes it, "<L>/<N>[.p/<W>]": L in
 * decimal, N in groups of three digits, all but the last prefixed with
 * "x" (1234067 is "x001/x234/067"), W (1..255) for a partial tile.
 * Parse refuses anything not canonical (a leading "x000/" group, a
 * leading zero in L or W) with -EINVAL; *width is 0 for a full tile.
 * Format returns the length written (cap >= TILESTORE_PATH_BYTES_MAX).
 */
#define TILESTORE_PATH_BYTES_MAX 48u
int tilestore_path_parse(const char *s, unsigned *level, u64 *index,
			 unsigned *width);
size_t tilestore_path_format(char *out, size_t cap, unsigned level, u64 index,
			     unsigned width);

/* The cache's counters. */
struct tilestore_stats {
	u64 hits;
	u64 misses; /* tiles read from disk (and checked) */
	u64 cache_bytes;
};
void tilestore_stats(struct tilestore *ts, struct tilestore_stats *out);

#endif
