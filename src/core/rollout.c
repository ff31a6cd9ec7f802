/*
 * rollout.c - MurmurHash3 x86_32 and Unleash-compatible rollout buckets
 * (see rollout.h).
 *
 * The hash is written from the algorithm's description: 4-byte
 * little-endian blocks mixed with c1, c2 and rotations into h, the 1..3
 * tail bytes mixed the same way without the h step, then the length and
 * the fmix32 finaliser.  The incremental form buffers at most 3 bytes.
 */
#include "core/rollout.h"

#include "banned.h"

#define C1 0xcc9e2d51u
#define C2 0x1b873593u

static u32 rotl32(u32 x, unsigned r)
{
	return (x << r) | (x >> (32 - r));
}

static u32 mix_k(u32 k)
{
	k *= C1;
	k = rotl32(k, 15);
	return k * C2;
}

static u32 mix_h(u32 h, u32 k)
{
	h ^= mix_k(k);
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

static u32 fmix32(u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

void rollout_murmur3_init(struct rollout_murmur3 *m, u32 seed)
{
	m->h = seed;
	m->tail = 0;
	m->tail_len = 0;
	m->total_len = 0;
}

void rollout_murmur3_update(struct rollout_murmur3 *m, const void *data,
			    size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;

	m->total_len += len;
	/* Complete a pending block first. */
	while (m->tail_len != 0 && i < len) {
		m->tail |= (u32)p[i++] << (8 * m->tail_len);
		if (++m->tail_len == 4) {
			m->h = mix_h(m->h, m->tail);
			m->tail = 0;
			m->tail_len = 0;
		}
	}
	for (; i + 4 <= len; i += 4) {
		u32 k = (u32)p[i] | (u32)p[i + 1] << 8 | (u32)p[i + 2] << 16 |
			(u32)p[i + 3] << 24;
		m->h = mix_h(m->h, k);
	}
	for (; i < len; i++)
		m->tail |= (u32)p[i] << (8 * m->tail_len++);
}

u32 rollout_murmur3_final(const struct rollout_murmur3 *m)
{
	u32 h = m->h;

	if (m->tail_len != 0)
		h ^= mix_k(m->tail);
	/* The reference takes the length as a 32-bit int. */
	h ^= (u32)m->total_len;
	return fmix32(h);
}

u32 rollout_murmur3_32(const void *key, size_t len, u32 seed)
{
	struct rollout_murmur3 m;

	rollout_murmur3_init(&m, seed);
	rollout_murmur3_update(&m, key, len);
	return rollout_murmur3_final(&m);
}

u32 rollout_bucket(const char *group, size_t group_len, const char *user,
		   size_t user_len)
{
	struct rollout_murmur3 m;

	rollout_murmur3_init(&m, 0);
	rollout_murmur3_update(&m, group, group_len);
	rollout_murmur3_update(&m, ":", 1);
	rollout_murmur3_update(&m, user, user_len);
	return rollout_murmur3_final(&m) % 100 + 1;
}

bool rollout_enabled(u32 percentage, const char *group, size_t group_len,
		     const char *user, size_t user_len)
{
	if (percentage == 0)
		return false;
	if (percentage >= 100)
		return true;
	if (user == NULL)
		return false;
	return rollout_bucket(group, group_len, user, user_len) <= percentage;
}
