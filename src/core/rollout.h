/*
 * rollout.h - stable percentage buckets for rollouts, compatible with
 * Unleash's stickiness (issue 3, item 5).
 *
 * A user's bucket for a flag is a number 1..100 that depends only on the
 * flag's group and the user's id, so raising a rollout from 10% to 20%
 * keeps the first 10% in, and operators can check a bucket with any
 * Unleash SDK or MurmurHash3 implementation:
 *
 *   bucket  = (murmur3_x86_32("<group>:<user>", seed 0) % 100) + 1
 *   enabled = percentage > 0 && bucket <= percentage
 *
 * which is Unleash's normalizedValue() and flexibleRollout strategy
 * (client-specification, specifications/10-flexible-rollout-strategy.json).
 * Keys are hashed as the bytes given (UTF-8 in practice).  Unleash's Node
 * SDK hashes the low byte of each UTF-16 unit (murmurhash3js), so its
 * buckets equal these for ASCII group and user ids only.
 *
 * Unlike Unleash, there is no random fallback: a missing user (NULL) is
 * never in a rollout below 100%, and is in one of 100%.
 *
 * Pure functions: no allocation, no state, safe from any thread; the key
 * is hashed in pieces, so group and user need no concatenation and have
 * no length limit.
 */
#ifndef TPW_CORE_ROLLOUT_H
#define TPW_CORE_ROLLOUT_H

#include "core/types.h"

/* MurmurHash3, x86 32-bit variant (Austin Appleby, public domain
 * algorithm), of key[0..len) with seed. */
u32 rollout_murmur3_32(const void *key, size_t len, u32 seed);

/* Incremental form, for keys made of several pieces: the same result as
 * one call on the concatenation. */
struct rollout_murmur3 {
	u32 h;
	u32 tail; /* up to 3 pending bytes, little-endian */
	u32 tail_len;
	u64 total_len;
};

void rollout_murmur3_init(struct rollout_murmur3 *m, u32 seed);
void rollout_murmur3_update(struct rollout_murmur3 *m, const void *data,
			    size_t len);
u32 rollout_murmur3_final(const struct rollout_murmur3 *m);

/* 1..100: the user's bucket in group (Unleash's normalizedValue). */
u32 rollout_bucket(const char *group, size_t group_len, const char *user,
		   size_t user_len);

/* Is user inside a rollout of `percentage` (0..100; above 100 counts as
 * 100) of group?  user may be NULL (see above). */
bool rollout_enabled(u32 percentage, const char *group, size_t group_len,
		     const char *user, size_t user_len);

#endif
