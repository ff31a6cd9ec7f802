/*
 * test_core_merkle.c - the RFC 6962 Merkle tree against the published
 * reference vectors (transparency-dev/merkle and Trillian: the 8 reference
 * leaves, the roots at every size, their inclusion and consistency
 * proofs), every mutation of those proofs that a verifier must refuse,
 * and a property test over random trees: generated proofs verify, any
 * single flipped bit, any wrong index or size, any extra or missing hash
 * is refused, and the store's roots equal a naive recursive MTH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/merkle.h"

#include "banned.h"

#define H MERKLE_HASH_BYTES

static void unhex(const char *s, u8 *out, size_t len)
{
	assert_int_equal(strlen(s), 2 * len);
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < 2 * len; i++) {
		const char *d = strchr(digits, s[i]);
		assert_true(d && *d);
		unsigned v = (unsigned)(d - digits);
		out[i / 2] = (u8)(i % 2 ? out[i / 2] | v : v << 4);
	}
}

static const char *const leaves_hex[8] = {
	"",
	"00",
	"10",
	"2021",
	"3031",
	"40414243",
	"5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

static const char *const roots_hex[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static const char empty_hex[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char some_hex[] =
	"abacaba000000000000000000000000000000000000000000060061e00123456";

/* Inclusion: leaf is 1-based as in the published table. */
static const struct {
	u64 leaf, size;
	size_t n;
	const char *proof[3];
} incl[] = {
	{1, 1, 0, {NULL}},
	{1,
	 8,
	 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{6,
	 8,
	 3,
	 {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{3,
	 3,
	 1,
	 {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	{2,
	 5,
	 3,
	 {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const struct {
	u64 size1, size2;
	size_t n;
	const char *proof[3];
} cons[] = {
	{1, 1, 0, {NULL}},
	{1,
	 8,
	 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{6,
	 8,
	 3,
	 {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2,
	 5,
	 2,
	 {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	{6,
	 7,
	 3,
	 {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	  "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static u8 leaf_data[8][16];
static size_t leaf_len[8];
static u8 leaf_hash[8][H];
static u8 roots[8][H];
static u8 empty_root[H], some_hash[H];

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < 8; i++) {
		leaf_len[i] = strlen(leaves_hex[i]) / 2;
		unhex(leaves_hex[i], leaf_data[i], leaf_len[i]);
		merkle_hash_leaf(leaf_data[i], leaf_len[i], leaf_hash[i]);
		unhex(roots_hex[i], roots[i], H);
	}
	unhex(empty_hex, empty_root, H);
	unhex(some_hex, some_hash, H);
	return 0;
}

static struct merkle_store *reference_store(void)
{
	struct merkle_store *s = merkle_store_new();
	assert_non_null(s);
	for (int i = 0; i < 8; i++)
		assert_int_equal(merkle_store_append_hash(s, leaf_hash[i]), 0);
	return s;
}

/* ---- hashing and roots ------------------------------------------------- */

static void empty_tree_root_is_sha256_of_nothing(void **state)
{
	(void)state;
	u8 r[H];
	struct merkle_tree t;

	merkle_hash_empty(r);
	assert_memory_equal(r, empty_root, H);
	merkle_tree_init(&t);
	merkle_tree_root(&t, r);
	assert_memory_equal(r, empty_root, H);
}

static void leaf_and_node_hashes_use_domain_prefixes(void **state)
{
	(void)state;
	u8 h[H], l[H], r[H];

	/* RFC 6962 leaf hash of the empty leaf is root[0] (a 1-leaf tree). */
	merkle_hash_leaf("", 0, h);
	assert_memory_equal(h, roots[0], H);
	/* Node of leaves 0 and 1 is root[1]. */
	merkle_hash_node(leaf_hash[0], leaf_hash[1], h);
	assert_memory_equal(h, roots[1], H);
	/* Swapping children changes the hash. */
	merkle_hash_node(leaf_hash[1], leaf_hash[0], h);
	assert_memory_not_equal(h, roots[1], H);
	/* out may alias an input. */
	memcpy(l, leaf_hash[0], H);
	memcpy(r, leaf_hash[1], H);
	merkle_hash_node(l, r, l);
	assert_memory_equal(l, roots[1], H);
	memcpy(l, leaf_hash[0], H);
	merkle_hash_node(l, r, r);
	assert_memory_equal(r, roots[1], H);
}

static void roots_of_reference_tree_at_every_size(void **state)
{
	(void)state;
	struct merkle_tree t;
	struct merkle_store *s = reference_store();
	u8 r[H];

	merkle_tree_init(&t);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(
			merkle_tree_append(&t, leaf_data[i], leaf_len[i]), 0);
		merkle_tree_root(&t, r);
		assert_memory_equal(r, roots[i], H);
		assert_int_equal(merkle_store_root(s, (u64)i + 1, r), 0);
		assert_memory_equal(r, roots[i], H);
	}
	assert_int_equal(merkle_store_root(s, 0, r), 0);
	assert_memory_equal(r, empty_root, H);
	assert_int_equal(merkle_store_root(s, 9, r), MERKLE_E_SIZE_RANGE);
	assert_int_equal(merkle_store_leaf_hash(s, 7, r), 0);
	assert_memory_equal(r, leaf_hash[7], H);
	assert_int_equal(merkle_store_leaf_hash(s, 8, r), MERKLE_E_INDEX_RANGE);
	merkle_store_free(s);
}

/* ---- the published inclusion proofs ------------------------------------ */

static void load(const char *const *hex, size_t n, u8 (*out)[H])
{
	for (size_t i = 0; i < n; i++)
		unhex(hex[i], out[i], H);
}

/* Every mutation of a good inclusion proof, after transparency-dev's
 * corruptInclusionProof, plus every single bit of every hash. */
static void refuse_inclusion_mutations(u64 index, u64 size, u8 (*proof)[H],
				       size_t n, const u8 *root, const u8 *leaf)
{
	u8 p[MERKLE_PROOF_HASHES_MAX + 2][H];
	u8 x[H];
	const u8(*cp)[H] = (const u8(*)[H])p;

	memcpy(p, proof, n * H);
	assert_int_equal(
		merkle_verify_inclusion(index, size, leaf, cp, n, root), 0);
	/* Wrong index. */
	if (index > 0)
		assert_int_not_equal(merkle_verify_inclusion(index - 1, size,
							     leaf, cp, n, root),
				     0);
	assert_int_not_equal(
		merkle_verify_inclusion(index + 1, size, leaf, cp, n, root), 0);
	assert_int_not_equal(
		merkle_verify_inclusion(index ^ 2, size, leaf, cp, n, root), 0);
	/* Wrong size. */
	assert_int_not_equal(
		merkle_verify_inclusion(index, size * 2, leaf, cp, n, root), 0);
	assert_int_not_equal(
		merkle_verify_inclusion(index, size / 2, leaf, cp, n, root), 0);
	/* Wrong leaf or root. */
	assert_int_equal(
		merkle_verify_inclusion(index, size, some_hash, cp, n, root),
		MERKLE_E_ROOT_MISMATCH);
	assert_int_equal(
		merkle_verify_inclusion(index, size, leaf, cp, n, empty_root),
		MERKLE_E_ROOT_MISMATCH);
	assert_int_equal(
		merkle_verify_inclusion(index, size, leaf, cp, n, some_hash),
		MERKLE_E_ROOT_MISMATCH);
	/* Trailing and preceding garbage. */
	memcpy(p[n], root, H);
	assert_int_equal(
		merkle_verify_inclusion(index, size, leaf, cp, n + 1, root),
		MERKLE_E_PROOF_LONG);
	memset(p[n], 0, H);
	assert_int_equal(
		merkle_verify_inclusion(index, size, leaf, cp, n + 1, root),
		MERKLE_E_PROOF_LONG);
	memmove(p[1], p[0], n * H);
	memcpy(p[0], root, H);
	assert_int_equal(
		merkle_verify_inclusion(index, size, leaf, cp, n + 1, root),
		MERKLE_E_PROOF_LONG);
	memcpy(p, proof, n * H);
	/* Removed and inserted components. */
	if (n > 0)
		assert_int_equal(merkle_verify_inclusion(index, size, leaf, cp,
							 n - 1, root),
				 MERKLE_E_PROOF_SHORT);
	if (n > 1) {
		memcpy(p[2], proof[1], (n - 1) * H);
		memcpy(p[1], some_hash, H);
		assert_int_equal(merkle_verify_inclusion(index, size, leaf, cp,
							 n + 1, root),
				 MERKLE_E_PROOF_LONG);
		memcpy(p, proof, n * H);
	}
	/* Every bit of every proof hash, of the leaf and of the root. */
	for (size_t i = 0; i < n; i++) {
		for (unsigned b = 0; b < 8 * H; b++) {
			p[i][b / 8] ^= (u8)(1u << (b % 8));
			assert_int_equal(merkle_verify_inclusion(index, size,
								 leaf, cp, n,
								 root),
					 MERKLE_E_ROOT_MISMATCH);
			p[i][b / 8] ^= (u8)(1u << (b % 8));
		}
	}
	for (unsigned b = 0; b < 8 * H; b++) {
		memcpy(x, leaf, H);
		x[b / 8] ^= (u8)(1u << (b % 8));
		assert_int_equal(
			merkle_verify_inclusion(index, size, x, cp, n, root),
			MERKLE_E_ROOT_MISMATCH);
		memcpy(x, root, H);
		x[b / 8] ^= (u8)(1u << (b % 8));
		assert_int_equal(
			merkle_verify_inclusion(index, size, leaf, cp, n, x),
			MERKLE_E_ROOT_MISMATCH);
	}
}

static void published_inclusion_proofs_verify_and_mutations_fail(void **state)
{
	(void)state;
	struct merkle_store *s = reference_store();

	for (size_t t = 0; t < sizeof(incl) / sizeof(incl[0]); t++) {
		u8 want[3][H], got[MERKLE_PROOF_HASHES_MAX][H];
		size_t n = 99;
		u64 index = incl[t].leaf - 1, size = incl[t].size;

		load(incl[t].proof, incl[t].n, want);
		assert_int_equal(merkle_inclusion_proof_len(index, size),
				 incl[t].n);
		/* The store generates exactly the published proof. */
		assert_int_equal(
			merkle_store_inclusion_proof(s, index, size, got, &n),
			0);
		assert_int_equal(n, incl[t].n);
		assert_memory_equal(got, want, n * H);
		refuse_inclusion_mutations(index, size, want, n,
					   roots[size - 1], leaf_hash[index]);
	}
	merkle_store_free(s);
}

static void inclusion_bounds_are_refused(void **state)
{
	(void)state;
	u8 proof[1][H];
	const u8(*cp)[H] = (const u8(*)[H])proof;
	struct merkle_store *s = reference_store();
	u8 out[MERKLE_PROOF_HASHES_MAX][H];
	size_t n;

	memcpy(proof[0], leaf_hash[1], H);
	/* The probes of transparency-dev's TestVerifyInclusion. */
	assert_int_equal(
		merkle_verify_inclusion(0, 0, some_hash, cp, 0, empty_root),
		MERKLE_E_SIZE_ZERO);
	assert_int_equal(
		merkle_verify_inclusion(1, 0, some_hash, cp, 0, empty_root),
		MERKLE_E_SIZE_ZERO);
	assert_int_equal(
		merkle_verify_inclusion(2, 1, some_hash, cp, 0, empty_root),
		MERKLE_E_INDEX_RANGE);
	assert_int_equal(
		merkle_verify_inclusion(1, 1, leaf_hash[0], cp, 0, roots[0]),
		MERKLE_E_INDEX_RANGE);
	assert_int_equal(
		merkle_verify_inclusion(0, 1, some_hash, cp, 0, empty_root),
		MERKLE_E_ROOT_MISMATCH);
	/* Single entry: root == leaf hash, empty proof; any proof is long. */
	assert_int_equal(
		merkle_verify_inclusion(0, 1, leaf_hash[0], cp, 0, roots[0]),
		0);
	assert_int_equal(
		merkle_verify_inclusion(0, 1, leaf_hash[0], cp, 1, roots[0]),
		MERKLE_E_PROOF_LONG);
	assert_int_equal(merkle_verify_inclusion(UINT64_MAX, UINT64_MAX,
						 leaf_hash[0], cp, 0, roots[0]),
			 MERKLE_E_INDEX_RANGE);
	/* Generation refuses the same. */
	assert_int_equal(merkle_store_inclusion_proof(s, 0, 0, out, &n),
			 MERKLE_E_SIZE_ZERO);
	assert_int_equal(merkle_store_inclusion_proof(s, 8, 8, out, &n),
			 MERKLE_E_INDEX_RANGE);
	assert_int_equal(merkle_store_inclusion_proof(s, 0, 9, out, &n),
			 MERKLE_E_SIZE_RANGE);
	assert_string_equal(merkle_strerror(MERKLE_E_PROOF_LONG),
			    "proof_too_long");
	assert_string_equal(merkle_strerror(-1), "unknown");
	merkle_store_free(s);
}

/* ---- the published consistency proofs ---------------------------------- */

static bool is_mismatch(int ret)
{
	return ret == MERKLE_E_FIRST_ROOT_MISMATCH ||
	       ret == MERKLE_E_SECOND_ROOT_MISMATCH;
}

static void refuse_consistency_mutations(u64 m, u64 n2, u8 (*proof)[H],
					 size_t n, const u8 *r1, const u8 *r2)
{
	u8 p[MERKLE_PROOF_HASHES_MAX + 2][H];
	u8 x[H];
	const u8(*cp)[H] = (const u8(*)[H])p;

	memcpy(p, proof, n * H);
	assert_int_equal(merkle_verify_consistency(m, n2, r1, r2, cp, n), 0);
	/* Wrong first size. */
	assert_int_not_equal(
		merkle_verify_consistency(m - 1, n2, r1, r2, cp, n), 0);
	assert_int_not_equal(
		merkle_verify_consistency(m + 1, n2, r1, r2, cp, n), 0);
	assert_int_not_equal(
		merkle_verify_consistency(m ^ 2, n2, r1, r2, cp, n), 0);
	/* Wrong second size. */
	assert_int_not_equal(
		merkle_verify_consistency(m, n2 * 2, r1, r2, cp, n), 0);
	assert_int_not_equal(
		merkle_verify_consistency(m, n2 / 2, r1, r2, cp, n), 0);
	/* Swapped sizes. */
	assert_int_equal(merkle_verify_consistency(n2, m, r1, r2, cp, n),
			 MERKLE_E_SIZE_ORDER);
	/* Wrong or swapped roots. */
	/* When first is a power of two its root seeds the path, so a wrong
	 * one shows as a wrong second root. */
	assert_true(is_mismatch(
		merkle_verify_consistency(m, n2, some_hash, r2, cp, n)));
	assert_int_equal(merkle_verify_consistency(m, n2, r1, some_hash, cp, n),
			 MERKLE_E_SECOND_ROOT_MISMATCH);
	assert_int_not_equal(merkle_verify_consistency(m, n2, r2, r1, cp, n),
			     0);
	/* Empty proof. */
	assert_int_equal(merkle_verify_consistency(m, n2, r1, r2, cp, 0),
			 MERKLE_E_PROOF_SHORT);
	/* Trailing garbage: empty-ish, root1, root2. */
	memset(p[n], 0, H);
	assert_int_equal(merkle_verify_consistency(m, n2, r1, r2, cp, n + 1),
			 MERKLE_E_PROOF_LONG);
	memcpy(p[n], r1, H);
	assert_int_equal(merkle_verify_consistency(m, n2, r1, r2, cp, n + 1),
			 MERKLE_E_PROOF_LONG);
	memcpy(p[n], r2, H);
	assert_int_equal(merkle_verify_consistency(m, n2, r1, r2, cp, n + 1),
			 MERKLE_E_PROOF_LONG);
	/* Preceding: zero, root1, root2, proof[0]. */
	const u8 *pre[4] = {empty_root, r1, r2, proof[0]};
	for (int k = 0; k < 4; k++) {
		memcpy(p[1], proof, n * H);
		memcpy(p[0], pre[k], H);
		assert_int_equal(
			merkle_verify_consistency(m, n2, r1, r2, cp, n + 1),
			MERKLE_E_PROOF_LONG);
	}
	memcpy(p, proof, n * H);
	/* Truncated. */
	assert_int_equal(merkle_verify_consistency(m, n2, r1, r2, cp, n - 1),
			 MERKLE_E_PROOF_SHORT);
	/* Every bit of every proof hash and of both roots. */
	for (size_t i = 0; i < n; i++) {
		for (unsigned b = 0; b < 8 * H; b++) {
			p[i][b / 8] ^= (u8)(1u << (b % 8));
			assert_true(is_mismatch(merkle_verify_consistency(
				m, n2, r1, r2, cp, n)));
			p[i][b / 8] ^= (u8)(1u << (b % 8));
		}
	}
	for (unsigned b = 0; b < 8 * H; b++) {
		memcpy(x, r1, H);
		x[b / 8] ^= (u8)(1u << (b % 8));
		assert_true(is_mismatch(
			merkle_verify_consistency(m, n2, x, r2, cp, n)));
		memcpy(x, r2, H);
		x[b / 8] ^= (u8)(1u << (b % 8));
		assert_int_equal(merkle_verify_consistency(m, n2, r1, x, cp, n),
				 MERKLE_E_SECOND_ROOT_MISMATCH);
	}
}

static void published_consistency_proofs_verify_and_mutations_fail(void **state)
{
	(void)state;
	struct merkle_store *s = reference_store();

	for (size_t t = 0; t < sizeof(cons) / sizeof(cons[0]); t++) {
		u8 want[3][H], got[MERKLE_PROOF_HASHES_MAX][H];
		size_t n = 99;
		u64 m = cons[t].size1, n2 = cons[t].size2;

		load(cons[t].proof, cons[t].n, want);
		assert_int_equal(merkle_consistency_proof_len(m, n2),
				 cons[t].n);
		assert_int_equal(
			merkle_store_consistency_proof(s, m, n2, got, &n), 0);
		assert_int_equal(n, cons[t].n);
		assert_memory_equal(got, want, n * H);
		if (n == 0) {
			assert_int_equal(merkle_verify_consistency(
						 m, n2, roots[m - 1],
						 roots[n2 - 1],
						 (const u8(*)[H])want, 0),
					 0);
			continue;
		}
		refuse_consistency_mutations(m, n2, want, n, roots[m - 1],
					     roots[n2 - 1]);
	}
	merkle_store_free(s);
}

static void consistency_edge_cases_are_decided_strictly(void **state)
{
	(void)state;
	u8 proof[1][H];
	const u8(*cp)[H] = (const u8(*)[H])proof;
	u8 out[MERKLE_PROOF_HASHES_MAX][H];
	size_t n;
	struct merkle_store *s = reference_store();

	memcpy(proof[0], empty_root, H);
	/* Equal sizes: roots must match, proof must be empty. */
	assert_int_equal(
		merkle_verify_consistency(1, 1, roots[0], roots[0], cp, 0), 0);
	assert_int_equal(
		merkle_verify_consistency(1, 1, roots[0], roots[1], cp, 0),
		MERKLE_E_SECOND_ROOT_MISMATCH);
	assert_int_equal(
		merkle_verify_consistency(1, 1, roots[0], roots[0], cp, 1),
		MERKLE_E_PROOF_LONG);
	/* From the empty tree: empty proof, first root the empty hash. */
	assert_int_equal(
		merkle_verify_consistency(0, 0, empty_root, empty_root, cp, 0),
		0);
	assert_int_equal(
		merkle_verify_consistency(0, 5, empty_root, roots[4], cp, 0),
		0);
	assert_int_equal(
		merkle_verify_consistency(0, 5, roots[0], roots[4], cp, 0),
		MERKLE_E_FIRST_ROOT_MISMATCH);
	assert_int_equal(
		merkle_verify_consistency(0, 5, empty_root, roots[4], cp, 1),
		MERKLE_E_PROOF_LONG);
	assert_int_equal(
		merkle_verify_consistency(0, 0, empty_root, empty_root, cp, 1),
		MERKLE_E_PROOF_LONG);
	/* Time travel. */
	assert_int_equal(
		merkle_verify_consistency(1, 0, roots[0], empty_root, cp, 0),
		MERKLE_E_SIZE_ORDER);
	assert_int_equal(
		merkle_verify_consistency(2, 1, roots[1], roots[0], cp, 0),
		MERKLE_E_SIZE_ORDER);
	/* A proof is due: empty is short. */
	assert_int_equal(
		merkle_verify_consistency(1, 2, roots[0], roots[1], cp, 0),
		MERKLE_E_PROOF_SHORT);
	/* Generation. */
	assert_int_equal(merkle_store_consistency_proof(s, 3, 2, out, &n),
			 MERKLE_E_SIZE_ORDER);
	assert_int_equal(merkle_store_consistency_proof(s, 3, 9, out, &n),
			 MERKLE_E_SIZE_RANGE);
	assert_int_equal(merkle_store_consistency_proof(s, 0, 8, out, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(merkle_store_consistency_proof(s, 8, 8, out, &n), 0);
	assert_int_equal(n, 0);
	merkle_store_free(s);
}

/* ---- property test over random trees ----------------------------------- */

static u64 rng_state = 0x9e3779b97f4a7c15ull;

static u64 rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* MTH straight from RFC 9162 §2.1.1's recursive definition. */
static void naive_mth(u8 (*lh)[H], u64 n, u8 out[H])
{
	if (n == 0) {
		merkle_hash_empty(out);
		return;
	}
	if (n == 1) {
		memcpy(out, lh[0], H);
		return;
	}
	u64 k = 1;
	while (k * 2 < n)
		k *= 2;
	u8 l[H], r[H];
	naive_mth(lh, k, l);
	naive_mth(lh + k, n - k, r);
	merkle_hash_node(l, r, out);
}

static void random_trees_proofs_verify_and_any_bit_flip_fails(void **state)
{
	(void)state;
	enum { TREES = 12, N_MAX = 2000, PROBES = 40 };
	u8(*lh)[H] = malloc((size_t)N_MAX * H);
	u8(*rootsz)[H] = malloc(((size_t)N_MAX + 1) * H);
	assert_non_null(lh);
	assert_non_null(rootsz);

	for (int t = 0; t < TREES; t++) {
		u64 n = 1 + rnd() % N_MAX;
		struct merkle_store *s = merkle_store_new();
		struct merkle_tree tree;
		assert_non_null(s);
		merkle_tree_init(&tree);
		merkle_hash_empty(rootsz[0]);
		for (u64 i = 0; i < n; i++) {
			u8 entry[160];
			for (size_t b = 0; b < sizeof(entry); b++)
				entry[b] = (u8)rnd();
			merkle_hash_leaf(entry, sizeof(entry), lh[i]);
			assert_int_equal(merkle_store_append_hash(s, lh[i]), 0);
			assert_int_equal(merkle_tree_append_hash(&tree, lh[i],
								 NULL, NULL),
					 0);
			merkle_tree_root(&tree, rootsz[i + 1]);
		}
		assert_int_equal(merkle_store_size(s), n);
		/* Roots: tree state == store == naive, at sampled sizes. */
		for (int k = 0; k < 8; k++) {
			u64 m = k == 0 ? n : rnd() % (n + 1);
			u8 a[H], b[H];
			assert_int_equal(merkle_store_root(s, m, a), 0);
			naive_mth(lh, m, b);
			assert_memory_equal(a, b, H);
			assert_memory_equal(a, rootsz[m], H);
		}
		for (int k = 0; k < PROBES; k++) {
			u64 size = 1 + rnd() % n;
			u64 idx = rnd() % size;
			u8 p[MERKLE_PROOF_HASHES_MAX][H];
			const u8(*cp)[H] = (const u8(*)[H])p;
			size_t np;

			assert_int_equal(merkle_store_inclusion_proof(
						 s, idx, size, p, &np),
					 0);
			assert_int_equal(np,
					 merkle_inclusion_proof_len(idx, size));
			assert_int_equal(
				merkle_verify_inclusion(idx, size, lh[idx], cp,
							np, rootsz[size]),
				0);
			if (np > 0) {
				size_t e = rnd() % np;
				unsigned b = (unsigned)(rnd() % (8 * H));
				p[e][b / 8] ^= (u8)(1u << (b % 8));
				assert_int_equal(merkle_verify_inclusion(
							 idx, size, lh[idx], cp,
							 np, rootsz[size]),
						 MERKLE_E_ROOT_MISMATCH);
				p[e][b / 8] ^= (u8)(1u << (b % 8));
				assert_int_not_equal(merkle_verify_inclusion(
							     idx, size, lh[idx],
							     cp, np - 1,
							     rootsz[size]),
						     0);
			}
			if (idx + 1 < size)
				assert_int_not_equal(
					merkle_verify_inclusion(idx + 1, size,
								lh[idx], cp, np,
								rootsz[size]),
					0);
			if (size < n)
				assert_int_not_equal(merkle_verify_inclusion(
							     idx, size + 1,
							     lh[idx], cp, np,
							     rootsz[size + 1]),
						     0);

			u64 m = rnd() % (size + 1);
			assert_int_equal(merkle_store_consistency_proof(
						 s, m, size, p, &np),
					 0);
			assert_int_equal(np,
					 merkle_consistency_proof_len(m, size));
			assert_int_equal(
				merkle_verify_consistency(m, size, rootsz[m],
							  rootsz[size], cp, np),
				0);
			if (np > 0) {
				size_t e = rnd() % np;
				unsigned b = (unsigned)(rnd() % (8 * H));
				p[e][b / 8] ^= (u8)(1u << (b % 8));
				assert_int_not_equal(merkle_verify_consistency(
							     m, size, rootsz[m],
							     rootsz[size], cp,
							     np),
						     0);
				p[e][b / 8] ^= (u8)(1u << (b % 8));
				assert_int_not_equal(merkle_verify_consistency(
							     m, size, rootsz[m],
							     rootsz[size], cp,
							     np - 1),
						     0);
				/* A neighbouring first size with the same
				 * proof and its true root is refused. */
				if (m + 1 < size)
					assert_int_not_equal(
						merkle_verify_consistency(
							m + 1, size,
							rootsz[m + 1],
							rootsz[size], cp, np),
						0);
			}
			/* The true root of the next size with this proof
			 * (not from the empty tree: that needs no proof). */
			if (m > 0 && m < size && size < n)
				assert_int_not_equal(
					merkle_verify_consistency(
						m, size + 1, rootsz[m],
						rootsz[size + 1], cp, np),
					0);
		}
		merkle_store_free(s);
	}
	free(lh);
	free(rootsz);
}

/* Proof lengths match the RFC loop for every (index, size) up to 130,
 * generation included, and every consistency pair verifies. */
static void every_small_proof_verifies(void **state)
{
	(void)state;
	enum { N = 130 };
	u8 lh[N][H], rt[N + 1][H];
	struct merkle_store *s = merkle_store_new();
	struct merkle_tree tree;

	assert_non_null(s);
	merkle_tree_init(&tree);
	merkle_tree_root(&tree, rt[0]);
	for (u64 i = 0; i < N; i++) {
		u8 e[8];
		memcpy(e, &i, sizeof(e));
		merkle_hash_leaf(e, sizeof(e), lh[i]);
		assert_int_equal(merkle_store_append_hash(s, lh[i]), 0);
		assert_int_equal(
			merkle_tree_append_hash(&tree, lh[i], NULL, NULL), 0);
		merkle_tree_root(&tree, rt[i + 1]);
	}
	for (u64 size = 1; size <= N; size++) {
		for (u64 i = 0; i < size; i++) {
			u8 p[MERKLE_PROOF_HASHES_MAX][H];
			size_t np;
			assert_int_equal(merkle_store_inclusion_proof(
						 s, i, size, p, &np),
					 0);
			assert_int_equal(
				merkle_verify_inclusion(i, size, lh[i],
							(const u8(*)[H])p, np,
							rt[size]),
				0);
		}
		for (u64 m = 0; m <= size; m++) {
			u8 p[MERKLE_PROOF_HASHES_MAX][H];
			size_t np;
			assert_int_equal(merkle_store_consistency_proof(
						 s, m, size, p, &np),
					 0);
			assert_int_equal(merkle_verify_consistency(
						 m, size, rt[m], rt[size],
						 (const u8(*)[H])p, np),
					 0);
		}
	}
	merkle_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_tree_root_is_sha256_of_nothing),
		cmocka_unit_test(leaf_and_node_hashes_use_domain_prefixes),
		cmocka_unit_test(roots_of_reference_tree_at_every_size),
		cmocka_unit_test(
			published_inclusion_proofs_verify_and_mutations_fail),
		cmocka_unit_test(inclusion_bounds_are_refused),
		cmocka_unit_test(
			published_consistency_proofs_verify_and_mutations_fail),
		cmocka_unit_test(consistency_edge_cases_are_decided_strictly),
		cmocka_unit_test(
			random_trees_proofs_verify_and_any_bit_flip_fails),
		cmocka_unit_test(every_small_proof_verifies),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
