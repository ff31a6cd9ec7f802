/*
 * merkle.h - the RFC 9162 (RFC 6962) Merkle tree of the transparency log:
 * hashing, an append-only tree state, a store of node hashes that answers
 * proofs, and the verifiers of inclusion and consistency proofs.
 *
 * Hashes are SHA-256 (nettle, for its use of the CPU's SHA extensions):
 *   leaf  = SHA-256(0x00 || entry bytes)
 *   node  = SHA-256(0x01 || left || right)
 *   empty = SHA-256("")                     (the root of the tree of size 0)
 *
 * Three pieces, usable alone:
 *
 *   struct merkle_tree   the "compact range" of [0, size): the roots of the
 *                        perfect subtrees that the binary digits of size
 *                        name, at most 64 hashes (2 KiB, no allocation).
 *                        Appending costs one leaf hash plus, amortised, one
 *                        node hash; the root costs popcount(size) - 1 node
 *                        hashes.  This is what runs beside the engine.
 *
 *   struct merkle_store  every leaf hash and a cache of perfect-subtree
 *                        hashes, enough to answer any proof at any size up
 *                        to the stored one in O(log n) lookups and at most
 *                        2 * 64 + 64 node hashes.  See "Memory" below.
 *                        The server's log keeps its hashes on disk
 *                        instead (log/tilestore.h), through the same
 *                        proof walks (merkle_*_of, any source of
 *                        perfect-subtree hashes); this store is the
 *                        reference its tests and benchmarks compare with.
 *
 *   merkle_verify_*      the verifiers, written as RFC 9162 §2.1.3.2 and
 *                        §2.1.4.2 state them, with every bound checked and
 *                        a distinct error for each way a proof can fail.
 *                        They never return 0 for a proof they did not
 *                        fully consume and check.
 *
 * Memory of the store: level 0 (the leaf hashes) and every even level are
 * kept, odd levels are recomputed from the level below (one node hash).
 * That is 32 * n * (1 + 1/4 + 1/16 + ...) = 42.7 bytes per leaf: 427 MB
 * for 10^7 leaves, 4.3 GB for 10^8.  Storage is in chunks of 2^16 hashes
 * (2 MiB) that never move once allocated, under per-level directories
 * sized at creation for MERKLE_STORE_LEAVES_MAX leaves (about 700 KiB of
 * pointers, zero pages until touched).  Even a small store therefore
 * costs one 2 MiB chunk per stored level it reaches (8 MiB at 64
 * leaves): it is meant for the one long-lived log, not for scratch use.
 *
 * Threads: one writer appends; readers may ask proofs for sizes up to a
 * value of merkle_store_size() they read, concurrently with the writer
 * (the size is published with release order after the hashes it covers;
 * chunks never move).  Nothing else is thread-safe.
 */
#ifndef TPW_CORE_MERKLE_H
#define TPW_CORE_MERKLE_H

#include "core/types.h"

#define MERKLE_HASH_BYTES 32
/* A tree of size < 2^64 has height <= 64: no proof is longer. */
#define MERKLE_PROOF_HASHES_MAX 64
/* Leaves a merkle_store can hold (4.3 billion; 180 GB of hashes). */
#define MERKLE_STORE_LEAVES_MAX ((u64)1 << 32)

/*
 * Errors: one table generates the codes (negative, below -1000 so they
 * never collide with -errno values) and their stable names.
 */
#define MERKLE_ERRORS(X)                                                       \
	X(SIZE_ZERO, -1001, "tree_size_zero")                                  \
	X(INDEX_RANGE, -1002, "index_not_below_size")                          \
	X(SIZE_ORDER, -1003, "first_size_above_second")                        \
	X(PROOF_LONG, -1004, "proof_too_long")                                 \
	X(PROOF_SHORT, -1005, "proof_too_short")                               \
	X(ROOT_MISMATCH, -1006, "root_mismatch")                               \
	X(FIRST_ROOT_MISMATCH, -1007, "first_root_mismatch")                   \
	X(SECOND_ROOT_MISMATCH, -1008, "second_root_mismatch")                 \
	X(SIZE_RANGE, -1009, "size_above_stored_size")                         \
	X(FULL, -1010, "tree_full")                                            \
	X(NOMEM, -1011, "out_of_memory")

enum merkle_error {
#define MERKLE_ENUM_(name, code, text) MERKLE_E_##name = code,
	MERKLE_ERRORS(MERKLE_ENUM_)
#undef MERKLE_ENUM_
};

/* The stable name of a code from this module ("proof_too_long"), or
 * "unknown" for anything else. */
const char *merkle_strerror(int code);

/* Hashing.  merkle_hash_node's out may be left or right itself (the
 * inputs are read before out is written). */
void merkle_hash_leaf(const void *data, size_t len, u8 out[MERKLE_HASH_BYTES]);
void merkle_hash_node(const u8 left[MERKLE_HASH_BYTES],
		      const u8 right[MERKLE_HASH_BYTES],
		      u8 out[MERKLE_HASH_BYTES]);
void merkle_hash_empty(u8 out[MERKLE_HASH_BYTES]);

/* ---- the append-only tree state ---------------------------------------- */

/*
 * The compact range of [0, size): peaks[0] is the root of the largest
 * perfect subtree (the highest set bit of size), peaks[npeaks - 1] of the
 * smallest.  npeaks == popcount(size).  A plain value: copy it freely.
 */
struct merkle_tree {
	u64 size;
	unsigned npeaks;
	u8 peaks[64][MERKLE_HASH_BYTES];
};

/* Called for every perfect subtree an append completes, the leaf itself
 * first (level 0, index = leaf index), then level 1, 2, ...: node index
 * covers leaves [index << level, (index + 1) << level). */
typedef void merkle_node_fn(void *ctx, unsigned level, u64 index,
			    const u8 hash[MERKLE_HASH_BYTES]);

void merkle_tree_init(struct merkle_tree *t);

/* Append a leaf by its leaf hash (merkle_hash_leaf).  on_node may be NULL.
 * Returns 0, or MERKLE_E_FULL when size is already 2^64 - 1. */
int merkle_tree_append_hash(struct merkle_tree *t,
			    const u8 leaf_hash[MERKLE_HASH_BYTES],
			    merkle_node_fn *on_node, void *ctx);

/* Append an entry: hash it as a leaf, then merkle_tree_append_hash. */
int merkle_tree_append(struct merkle_tree *t, const void *entry, size_t len);

/* The root hash at the current size (the empty hash at size 0). */
void merkle_tree_root(const struct merkle_tree *t, u8 out[MERKLE_HASH_BYTES]);

/* ---- the store that answers proofs ------------------------------------- */

struct merkle_store;

/* Returns NULL when out of memory.  Free with merkle_store_free. */
struct merkle_store *merkle_store_new(void);
void merkle_store_free(struct merkle_store *s);

/* Append a leaf hash.  Returns 0, MERKLE_E_FULL (MERKLE_STORE_LEAVES_MAX
 * reached) or MERKLE_E_NOMEM (nothing changed). */
int merkle_store_append_hash(struct merkle_store *s,
			     const u8 leaf_hash[MERKLE_HASH_BYTES]);

/* Number of leaves stored (acquire order: see "Threads" above). */
u64 merkle_store_size(const struct merkle_store *s);

/* The tree state at the stored size (a copy). */
void merkle_store_tree(const struct merkle_store *s, struct merkle_tree *out);

/* The hash of leaf index.  Returns 0 or MERKLE_E_INDEX_RANGE. */
int merkle_store_leaf_hash(const struct merkle_store *s, u64 index,
			   u8 out[MERKLE_HASH_BYTES]);

/* The root at any size <= merkle_store_size(): 0 or MERKLE_E_SIZE_RANGE. */
int merkle_store_root(const struct merkle_store *s, u64 size,
		      u8 out[MERKLE_HASH_BYTES]);

/*
 * The inclusion proof of leaf index in the tree of size size (RFC 9162
 * §2.1.3.1), deepest sibling first, into proof[]; *nproof receives its
 * length (<= MERKLE_PROOF_HASHES_MAX).  Returns 0, MERKLE_E_SIZE_ZERO,
 * MERKLE_E_INDEX_RANGE or MERKLE_E_SIZE_RANGE.
 */
int merkle_store_inclusion_proof(const struct merkle_store *s, u64 index,
				 u64 size, u8 proof[][MERKLE_HASH_BYTES],
				 size_t *nproof);

/*
 * The consistency proof from size first to size second (RFC 9162
 * §2.1.4.1).  Empty when first == 0 or first == second.  Returns 0,
 * MERKLE_E_SIZE_ORDER or MERKLE_E_SIZE_RANGE.
 */
int merkle_store_consistency_proof(const struct merkle_store *s, u64 first,
				   u64 second, u8 proof[][MERKLE_HASH_BYTES],
				   size_t *nproof);

/* ---- proofs over any source of hashes ---------------------------------- */

/*
 * A source of perfect-subtree hashes: the root of the subtree (level,
 * index), which covers leaves [index << level, (index + 1) << level) and
 * is complete in the tree asked about.  Returns 0, or a negative code
 * (an I/O error of a store on disk) that the callers below hand back.
 * merkle_store is one such source; log/tilestore.h is another.
 */
typedef int merkle_perfect_fn(void *ctx, unsigned level, u64 index,
			      u8 out[MERKLE_HASH_BYTES]);

/* The root, inclusion and consistency proofs of merkle_store_*, for a
 * tree of `size` (`second`) leaves the source holds (the caller checks
 * that bound).  The same walk, so the same bytes, whatever the source. */
int merkle_root_of(merkle_perfect_fn *get, void *ctx, u64 size,
		   u8 out[MERKLE_HASH_BYTES]);
int merkle_inclusion_proof_of(merkle_perfect_fn *get, void *ctx, u64 index,
			      u64 size, u8 proof[][MERKLE_HASH_BYTES],
			      size_t *nproof);
int merkle_consistency_proof_of(merkle_perfect_fn *get, void *ctx, u64 first,
				u64 second, u8 proof[][MERKLE_HASH_BYTES],
				size_t *nproof);

/* ---- verification ------------------------------------------------------ */

/*
 * RFC 9162 §2.1.3.2: does proof[0..nproof) show that the leaf with hash
 * leaf_hash is at index in the tree of size size whose root is root?
 * Returns 0 only then; otherwise MERKLE_E_SIZE_ZERO, MERKLE_E_INDEX_RANGE
 * (index >= size), MERKLE_E_PROOF_LONG, MERKLE_E_PROOF_SHORT or
 * MERKLE_E_ROOT_MISMATCH.  The length is checked before any hashing: a
 * proof of the wrong length is refused as such, whatever its contents.
 */
int merkle_verify_inclusion(u64 index, u64 size,
			    const u8 leaf_hash[MERKLE_HASH_BYTES],
			    const u8 (*proof)[MERKLE_HASH_BYTES], size_t nproof,
			    const u8 root[MERKLE_HASH_BYTES]);

/* The root that proof implies (the same checks, minus the last compare). */
int merkle_root_from_inclusion(u64 index, u64 size,
			       const u8 leaf_hash[MERKLE_HASH_BYTES],
			       const u8 (*proof)[MERKLE_HASH_BYTES],
			       size_t nproof, u8 out[MERKLE_HASH_BYTES]);

/*
 * RFC 9162 §2.1.4.2: is the tree (second, second_root) an extension of
 * (first, first_root)?  Edge cases, where the RFC's algorithm does not
 * apply, are decided strictly:
 *   first > second                 MERKLE_E_SIZE_ORDER;
 *   first == 0                     the proof must be empty and first_root
 *                                  the empty-tree hash (FIRST_ROOT_MISMATCH);
 *   first == second                the proof must be empty and the roots
 *                                  equal (SECOND_ROOT_MISMATCH);
 *   otherwise                      the RFC: PROOF_SHORT (including empty),
 *                                  PROOF_LONG, FIRST_ROOT_MISMATCH,
 *                                  SECOND_ROOT_MISMATCH.
 * A non-empty proof where an empty one is due is MERKLE_E_PROOF_LONG.
 */
int merkle_verify_consistency(u64 first, u64 second,
			      const u8 first_root[MERKLE_HASH_BYTES],
			      const u8 second_root[MERKLE_HASH_BYTES],
			      const u8 (*proof)[MERKLE_HASH_BYTES],
			      size_t nproof);

/* Exact proof lengths (0 for the cases with an empty proof; the caller
 * checks the bounds first).  Exposed for tests and for API limits. */
size_t merkle_inclusion_proof_len(u64 index, u64 size);
size_t merkle_consistency_proof_len(u64 first, u64 second);

#endif
