/*
 * merkle.c - the RFC 9162 Merkle tree: compact range, node store, proof
 * generation and verification (see merkle.h).
 *
 * Proof generation walks the RFC's recursive definitions (PATH and
 * SUBPROOF, §2.1.3.1 and §2.1.4.1) top-down, iteratively: every subtree
 * the recursion names is either a perfect subtree (one lookup in the
 * store) or the right edge [a, size) of the tree, which is folded from
 * at most 64 perfect subtrees.  The verifiers are the RFC's algorithms
 * step by step, preceded by an exact length check so that a proof of the
 * wrong length gets the precise error; the RFC's own in-loop checks stay
 * as a second line.
 */
#include "core/merkle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <nettle/sha2.h>
#include <sodium.h>

#include "banned.h"

const char *merkle_strerror(int code)
{
	switch (code) {
#define MERKLE_NAME_(name, value, text)                                        \
	case value: return text;
		MERKLE_ERRORS(MERKLE_NAME_)
#undef MERKLE_NAME_
	default: return "unknown";
	}
}

/* ---- hashing ----------------------------------------------------------- */

/*
 * SHA-256 from nettle (GnuTLS's hashing library, already linked through
 * libmicrohttpd): it uses the CPU's SHA extensions where they exist,
 * measured 1.71 GB/s here against libsodium's 445 MB/s
 * (bench/bench_merkle.c).  The audit tree hashes every journal byte, so
 * this is what keeps it from slowing the engine.
 */
void merkle_hash_leaf(const void *data, size_t len, u8 out[MERKLE_HASH_BYTES])
{
	struct sha256_ctx st;
	static const u8 prefix = 0x00;

	sha256_init(&st);
	sha256_update(&st, 1, &prefix);
	if (len > 0)
		sha256_update(&st, len, data);
	sha256_digest(&st, MERKLE_HASH_BYTES, out);
}

void merkle_hash_node(const u8 left[MERKLE_HASH_BYTES],
		      const u8 right[MERKLE_HASH_BYTES],
		      u8 out[MERKLE_HASH_BYTES])
{
	struct sha256_ctx st;
	u8 buf[1 + 2 * MERKLE_HASH_BYTES];

	buf[0] = 0x01;
	memcpy(buf + 1, left, MERKLE_HASH_BYTES);
	memcpy(buf + 1 + MERKLE_HASH_BYTES, right, MERKLE_HASH_BYTES);
	sha256_init(&st);
	sha256_update(&st, sizeof(buf), buf);
	sha256_digest(&st, MERKLE_HASH_BYTES, out);
}

void merkle_hash_empty(u8 out[MERKLE_HASH_BYTES])
{
	struct sha256_ctx st;

	sha256_init(&st);
	sha256_digest(&st, MERKLE_HASH_BYTES, out);
}

static bool hash_equal(const u8 a[MERKLE_HASH_BYTES],
		       const u8 b[MERKLE_HASH_BYTES])
{
	return crypto_verify_32(a, b) == 0;
}

/* ---- bit helpers ------------------------------------------------------- */

static unsigned bit_len(u64 x)
{
	return x == 0 ? 0 : 64u - (unsigned)__builtin_clzll(x);
}

/* Largest power of two strictly below n (n >= 2). */
static u64 split_point(u64 n)
{
	return (u64)1 << (bit_len(n - 1) - 1);
}

/* ---- the compact range ------------------------------------------------- */

void merkle_tree_init(struct merkle_tree *t)
{
	t->size = 0;
	t->npeaks = 0;
}

int merkle_tree_append_hash(struct merkle_tree *t,
			    const u8 leaf_hash[MERKLE_HASH_BYTES],
			    merkle_node_fn *on_node, void *ctx)
{
	u8 h[MERKLE_HASH_BYTES];
	u64 index = t->size;
	unsigned level = 0;

	if (t->size == UINT64_MAX)
		return MERKLE_E_FULL;
	memcpy(h, leaf_hash, MERKLE_HASH_BYTES);
	if (on_node)
		on_node(ctx, 0, index, h);
	/* Each trailing 1 bit of the old size is a peak of the same height
	 * as the subtree being carried: merge them, as a binary increment. */
	for (u64 n = t->size; n & 1; n >>= 1) {
		t->npeaks--;
		merkle_hash_node(t->peaks[t->npeaks], h, h);
		level++;
		index >>= 1;
		if (on_node)
			on_node(ctx, level, index, h);
	}
	memcpy(t->peaks[t->npeaks], h, MERKLE_HASH_BYTES);
	t->npeaks++;
	t->size++;
	return 0;
}

int merkle_tree_append(struct merkle_tree *t, const void *entry, size_t len)
{
	u8 h[MERKLE_HASH_BYTES];

	merkle_hash_leaf(entry, len, h);
	return merkle_tree_append_hash(t, h, NULL, NULL);
}

void merkle_tree_root(const struct merkle_tree *t, u8 out[MERKLE_HASH_BYTES])
{
	if (t->npeaks == 0) {
		merkle_hash_empty(out);
		return;
	}
	memcpy(out, t->peaks[t->npeaks - 1], MERKLE_HASH_BYTES);
	for (unsigned i = t->npeaks - 1; i-- > 0;)
		merkle_hash_node(t->peaks[i], out, out);
}

/* ---- the store --------------------------------------------------------- */

#define CHUNK_SHIFT  16
#define CHUNK_HASHES ((u64)1 << CHUNK_SHIFT)
/* Stored levels: 0, 2, ..., 32 (a tree of 2^32 leaves has height 32). */
#define STORE_LEVEL_TOP 32u
#define STORE_LEVELS	(STORE_LEVEL_TOP / 2 + 1)

struct merkle_store {
	u64 size; /* published with release order */
	struct merkle_tree tree;
	u8 (**dir[STORE_LEVELS])[MERKLE_HASH_BYTES];
	u64 dir_len[STORE_LEVELS];
};

struct merkle_store *merkle_store_new(void)
{
	struct merkle_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	merkle_tree_init(&s->tree);
	for (unsigned i = 0; i < STORE_LEVELS; i++) {
		u64 nodes = MERKLE_STORE_LEAVES_MAX >> (2 * i);
		u64 chunks = (nodes + CHUNK_HASHES - 1) >> CHUNK_SHIFT;
		s->dir[i] = calloc(chunks, sizeof(*s->dir[i]));
		if (!s->dir[i]) {
			merkle_store_free(s);
			return NULL;
		}
		s->dir_len[i] = chunks;
	}
	return s;
}

void merkle_store_free(struct merkle_store *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < STORE_LEVELS; i++) {
		if (!s->dir[i])
			continue;
		for (u64 c = 0; c < s->dir_len[i]; c++)
			free(s->dir[i][c]);
		free(s->dir[i]);
	}
	free(s);
}

static u8 *slot(const struct merkle_store *s, unsigned level, u64 index)
{
	u8(*chunk)[MERKLE_HASH_BYTES] = s->dir[level / 2][index >> CHUNK_SHIFT];
	return &chunk[index & (CHUNK_HASHES - 1)][0];
}

/* Make sure the chunk holding (level, index) exists; 0 or -ENOMEM. */
static int reserve(struct merkle_store *s, unsigned level, u64 index)
{
	unsigned li = level / 2;
	u64 c = index >> CHUNK_SHIFT;

	if (s->dir[li][c])
		return 0;
	s->dir[li][c] = malloc(CHUNK_HASHES * MERKLE_HASH_BYTES);
	return s->dir[li][c] ? 0 : -ENOMEM;
}

static void store_node(void *ctx, unsigned level, u64 index,
		       const u8 hash[MERKLE_HASH_BYTES])
{
	struct merkle_store *s = ctx;

	if (level % 2 != 0 || level > STORE_LEVEL_TOP)
		return;
	/* Chunks were reserved before the append started. */
	memcpy(slot(s, level, index), hash, MERKLE_HASH_BYTES);
}

int merkle_store_append_hash(struct merkle_store *s,
			     const u8 leaf_hash[MERKLE_HASH_BYTES])
{
	u64 n = s->tree.size;

	if (n >= MERKLE_STORE_LEAVES_MAX)
		return MERKLE_E_FULL;
	/* Allocate every chunk this append may write before changing
	 * anything, so a failure leaves the store as it was. */
	for (unsigned level = 0; level <= STORE_LEVEL_TOP; level += 2) {
		u64 span = (u64)1 << level;
		if ((n + 1) % span != 0)
			break;
		if (reserve(s, level, n >> level) != 0)
			return MERKLE_E_NOMEM;
	}
	int ret = merkle_tree_append_hash(&s->tree, leaf_hash, store_node, s);
	if (ret != 0)
		return ret;
	__atomic_store_n(&s->size, s->tree.size, __ATOMIC_RELEASE);
	return 0;
}

u64 merkle_store_size(const struct merkle_store *s)
{
	return __atomic_load_n(&s->size, __ATOMIC_ACQUIRE);
}

void merkle_store_tree(const struct merkle_store *s, struct merkle_tree *out)
{
	*out = s->tree;
}

/* The root of the perfect subtree (level, index), which must be complete
 * in the stored tree.  Odd levels cost one node hash. */
static int perfect(void *ctx, unsigned level, u64 index,
		   u8 out[MERKLE_HASH_BYTES])
{
	const struct merkle_store *s = ctx;

	if (level % 2 == 0) {
		memcpy(out, slot(s, level, index), MERKLE_HASH_BYTES);
		return 0;
	}
	merkle_hash_node(slot(s, level - 1, 2 * index),
			 slot(s, level - 1, 2 * index + 1), out);
	return 0;
}

/* MTH(D[a:b]) for 0 <= a < b <= stored size, where [a, b) is a subtree
 * the RFC's recursion names: split it into perfect subtrees from the left
 * and fold them from the right, which is exactly MTH's definition. */
static int range_hash(merkle_perfect_fn *get, void *ctx, u64 a, u64 b,
		      u8 out[MERKLE_HASH_BYTES])
{
	unsigned lv[64];
	u64 ix[64];
	unsigned n = 0;
	int ret;

	while (a < b) {
		unsigned level = bit_len(b - a) - 1;
		if (a != 0 && (unsigned)__builtin_ctzll(a) < level)
			level = (unsigned)__builtin_ctzll(a);
		lv[n] = level;
		ix[n] = a >> level;
		n++;
		a += (u64)1 << level;
	}
	ret = get(ctx, lv[n - 1], ix[n - 1], out);
	for (unsigned i = n - 1; ret == 0 && i-- > 0;) {
		u8 left[MERKLE_HASH_BYTES];
		ret = get(ctx, lv[i], ix[i], left);
		if (ret == 0)
			merkle_hash_node(left, out, out);
	}
	return ret;
}

int merkle_store_leaf_hash(const struct merkle_store *s, u64 index,
			   u8 out[MERKLE_HASH_BYTES])
{
	if (index >= merkle_store_size(s))
		return MERKLE_E_INDEX_RANGE;
	memcpy(out, slot(s, 0, index), MERKLE_HASH_BYTES);
	return 0;
}

int merkle_root_of(merkle_perfect_fn *get, void *ctx, u64 size,
		   u8 out[MERKLE_HASH_BYTES])
{
	if (size == 0) {
		merkle_hash_empty(out);
		return 0;
	}
	return range_hash(get, ctx, 0, size, out);
}

int merkle_store_root(const struct merkle_store *s, u64 size,
		      u8 out[MERKLE_HASH_BYTES])
{
	if (size > merkle_store_size(s))
		return MERKLE_E_SIZE_RANGE;
	return merkle_root_of(perfect, (void *)s, size, out);
}

static void reverse(u8 (*p)[MERKLE_HASH_BYTES], size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		u8 t[MERKLE_HASH_BYTES];
		memcpy(t, p[i], MERKLE_HASH_BYTES);
		memcpy(p[i], p[n - 1 - i], MERKLE_HASH_BYTES);
		memcpy(p[n - 1 - i], t, MERKLE_HASH_BYTES);
	}
}

int merkle_inclusion_proof_of(merkle_perfect_fn *get, void *ctx, u64 index,
			      u64 size, u8 proof[][MERKLE_HASH_BYTES],
			      size_t *nproof)
{
	u64 lo = 0, hi = size;
	size_t n = 0;
	int ret = 0;

	if (size == 0)
		return MERKLE_E_SIZE_ZERO;
	if (index >= size)
		return MERKLE_E_INDEX_RANGE;
	/* PATH(m, D[lo:hi]), the sibling of each step collected top-down. */
	while (ret == 0 && hi - lo > 1) {
		u64 k = split_point(hi - lo);
		if (index < lo + k) {
			ret = range_hash(get, ctx, lo + k, hi, proof[n++]);
			hi = lo + k;
		} else {
			ret = range_hash(get, ctx, lo, lo + k, proof[n++]);
			lo += k;
		}
	}
	if (ret != 0)
		return ret;
	reverse(proof, n);
	*nproof = n;
	return 0;
}

int merkle_store_inclusion_proof(const struct merkle_store *s, u64 index,
				 u64 size, u8 proof[][MERKLE_HASH_BYTES],
				 size_t *nproof)
{
	if (size != 0 && index < size && size > merkle_store_size(s))
		return MERKLE_E_SIZE_RANGE;
	return merkle_inclusion_proof_of(perfect, (void *)s, index, size, proof,
					 nproof);
}

int merkle_consistency_proof_of(merkle_perfect_fn *get, void *ctx, u64 first,
				u64 second, u8 proof[][MERKLE_HASH_BYTES],
				size_t *nproof)
{
	u64 lo = 0, hi = second;
	bool whole = true; /* SUBPROOF's b: still the original tree's left */
	size_t n = 0;
	int ret = 0;

	if (first > second)
		return MERKLE_E_SIZE_ORDER;
	*nproof = 0;
	if (first == 0 || first == second)
		return 0;
	/* SUBPROOF(m, D[lo:hi], b) with m = first - lo. */
	while (ret == 0) {
		u64 m = first - lo;
		if (m == hi - lo) {
			if (!whole)
				ret = range_hash(get, ctx, lo, hi, proof[n++]);
			break;
		}
		u64 k = split_point(hi - lo);
		if (m <= k) {
			ret = range_hash(get, ctx, lo + k, hi, proof[n++]);
			hi = lo + k;
		} else {
			ret = range_hash(get, ctx, lo, lo + k, proof[n++]);
			lo += k;
			whole = false;
		}
	}
	if (ret != 0)
		return ret;
	reverse(proof, n);
	*nproof = n;
	return 0;
}

int merkle_store_consistency_proof(const struct merkle_store *s, u64 first,
				   u64 second, u8 proof[][MERKLE_HASH_BYTES],
				   size_t *nproof)
{
	if (first > second)
		return MERKLE_E_SIZE_ORDER;
	if (second > merkle_store_size(s))
		return MERKLE_E_SIZE_RANGE;
	return merkle_consistency_proof_of(perfect, (void *)s, first, second,
					   proof, nproof);
}

/* ---- verification ------------------------------------------------------ */

/* Length of the RFC's inclusion path: the levels where index and size - 1
 * differ (the inner part), plus one per 1 bit of index above them (the
 * right border, where the sibling is to the left). */
size_t merkle_inclusion_proof_len(u64 index, u64 size)
{
	if (size == 0 || index >= size)
		return 0;
	unsigned inner = bit_len(index ^ (size - 1));
	unsigned border =
		inner >= 64 ? 0
			    : (unsigned)__builtin_popcountll(index >> inner);
	return inner + border;
}

size_t merkle_consistency_proof_len(u64 first, u64 second)
{
	if (first == 0 || first >= second)
		return 0;
	u64 index = first - 1;
	unsigned inner = bit_len(index ^ (second - 1));
	unsigned border =
		inner >= 64 ? 0
			    : (unsigned)__builtin_popcountll(index >> inner);
	unsigned shift = (unsigned)__builtin_ctzll(first);
	/* The subtree of size 2^shift ending at first is its own seed when
	 * first is that power of two; otherwise the proof carries it. */
	bool seed_in_proof = first != (u64)1 << shift;
	return (size_t)(inner - shift + border + (seed_in_proof ? 1 : 0));
}

int merkle_root_from_inclusion(u64 index, u64 size,
			       const u8 leaf_hash[MERKLE_HASH_BYTES],
			       const u8 (*proof)[MERKLE_HASH_BYTES],
			       size_t nproof, u8 out[MERKLE_HASH_BYTES])
{
	u8 r[MERKLE_HASH_BYTES];

	/* Step 1: index < size (and a tree to be in). */
	if (size == 0)
		return MERKLE_E_SIZE_ZERO;
	if (index >= size)
		return MERKLE_E_INDEX_RANGE;
	size_t want = merkle_inclusion_proof_len(index, size);
	if (nproof < want)
		return MERKLE_E_PROOF_SHORT;
	if (nproof > want)
		return MERKLE_E_PROOF_LONG;
	/* Steps 2-4. */
	u64 fn = index, sn = size - 1;
	memcpy(r, leaf_hash, MERKLE_HASH_BYTES);
	for (size_t i = 0; i < nproof; i++) {
		if (sn == 0)
			return MERKLE_E_PROOF_LONG;
		if ((fn & 1) || fn == sn) {
			merkle_hash_node(proof[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_hash_node(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	/* Step 5, first half: the path reached the root. */
	if (sn != 0)
		return MERKLE_E_PROOF_SHORT;
	memcpy(out, r, MERKLE_HASH_BYTES);
	return 0;
}

int merkle_verify_inclusion(u64 index, u64 size,
			    const u8 leaf_hash[MERKLE_HASH_BYTES],
			    const u8 (*proof)[MERKLE_HASH_BYTES], size_t nproof,
			    const u8 root[MERKLE_HASH_BYTES])
{
	u8 r[MERKLE_HASH_BYTES];
	int ret = merkle_root_from_inclusion(index, size, leaf_hash, proof,
					     nproof, r);
	if (ret != 0)
		return ret;
	return hash_equal(r, root) ? 0 : MERKLE_E_ROOT_MISMATCH;
}

int merkle_verify_consistency(u64 first, u64 second,
			      const u8 first_root[MERKLE_HASH_BYTES],
			      const u8 second_root[MERKLE_HASH_BYTES],
			      const u8 (*proof)[MERKLE_HASH_BYTES],
			      size_t nproof)
{
	u8 fr[MERKLE_HASH_BYTES], sr[MERKLE_HASH_BYTES];

	if (first > second)
		return MERKLE_E_SIZE_ORDER;
	if (first == 0) {
		u8 empty[MERKLE_HASH_BYTES];
		if (nproof != 0)
			return MERKLE_E_PROOF_LONG;
		merkle_hash_empty(empty);
		return hash_equal(first_root, empty)
			       ? 0
			       : MERKLE_E_FIRST_ROOT_MISMATCH;
	}
	if (first == second) {
		if (nproof != 0)
			return MERKLE_E_PROOF_LONG;
		return hash_equal(first_root, second_root)
			       ? 0
			       : MERKLE_E_SECOND_ROOT_MISMATCH;
	}
	/* Step 1: an empty path proves nothing. */
	size_t want = merkle_consistency_proof_len(first, second);
	if (nproof == 0 || nproof < want)
		return MERKLE_E_PROOF_SHORT;
	if (nproof > want)
		return MERKLE_E_PROOF_LONG;
	/* Step 2: when first is a power of two, first_root is the path's
	 * virtual first element. */
	bool pow2 = (first & (first - 1)) == 0;
	size_t len = nproof + (pow2 ? 1 : 0);
#define PATH(i) (pow2 ? ((i) == 0 ? first_root : proof[(i)-1]) : proof[i])
	/* Steps 3-4. */
	u64 fn = first - 1, sn = second - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	/* Step 5. */
	memcpy(fr, PATH(0), MERKLE_HASH_BYTES);
	memcpy(sr, PATH(0), MERKLE_HASH_BYTES);
	/* Step 6. */
	for (size_t i = 1; i < len; i++) {
		const u8 *c = PATH(i);
		if (sn == 0)
			return MERKLE_E_PROOF_LONG;
		if ((fn & 1) || fn == sn) {
			merkle_hash_node(c, fr, fr);
			merkle_hash_node(c, sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_hash_node(sr, c, sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
#undef PATH
	/* Step 7. */
	if (sn != 0)
		return MERKLE_E_PROOF_SHORT;
	if (!hash_equal(fr, first_root))
		return MERKLE_E_FIRST_ROOT_MISMATCH;
	if (!hash_equal(sr, second_root))
		return MERKLE_E_SECOND_ROOT_MISMATCH;
	return 0;
}
