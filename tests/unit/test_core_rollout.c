/*
 * test_core_rollout.c - MurmurHash3 x86_32 against published vectors and
 * rollout buckets against Unleash's client specification
 * (src/core/rollout.h).
 *
 * The hash vectors are the widely published MurmurHash3_x86_32 check
 * values (SMHasher's reference implementation); every one was also
 * checked against the murmurhash3js 3.0.1 package that Unleash's
 * specification uses, before it was written here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/rollout.h"

#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct hash_row {
	const char *key;
	size_t len;
	u32 seed;
	u32 hash;
};

#define K(s) s, sizeof(s) - 1

static const struct hash_row hash_rows[] = {
	{K(""), 0, 0},
	{K(""), 1, 0x514E28B7},
	{K(""), 0xffffffff, 0x81F16F39},
	{K("\0\0\0\0"), 0, 0x2362F9DE},
	{K("\0\0\0"), 0, 0x85F0B427},
	{K("\0\0"), 0, 0x30F4C306},
	{K("\0"), 0, 0x514E28B7},
	{K("\xff\xff\xff\xff"), 0, 0x76293B50},
	{K("\x21\x43\x65\x87"), 0, 0xF55B516B},
	{K("\x21\x43\x65\x87"), 0x5082EDEE, 0x2362F9DE},
	{K("\x21\x43\x65"), 0, 0x7E4A8634},
	{K("\x21\x43"), 0, 0xA0F7B07A},
	{K("\x21"), 0, 0x72661CF4},
	{K("aaaa"), 0x9747b28c, 0x5A97808A},
	{K("aaa"), 0x9747b28c, 0x283E0130},
	{K("aa"), 0x9747b28c, 0x5D211726},
	{K("a"), 0x9747b28c, 0x7FA09EA6},
	{K("abcd"), 0x9747b28c, 0xF0478627},
	{K("abc"), 0x9747b28c, 0xC84A62DD},
	{K("ab"), 0x9747b28c, 0x74875592},
	{K("Hello, world!"), 0x9747b28c, 0x24884CBA},
	/* "ππππππππ" in UTF-8 */
	{K("\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80\xcf\x80"),
	 0x9747b28c, 0xD58063C1},
	{K("abc"), 0, 0xB3DD93FA},
	{K("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), 0,
	 0xEE925B90},
	{K("The quick brown fox jumps over the lazy dog"), 0x9747b28c,
	 0x2FA826CD},
	{K("hello"), 0, 0x248BFA47},
};

static void murmur3_matches_published_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(hash_rows); i++) {
		const struct hash_row *r = &hash_rows[i];
		u32 h = rollout_murmur3_32(r->key, r->len, r->seed);
		if (h != r->hash)
			fail_msg("row %zu: 0x%08x, want 0x%08x", i, h, r->hash);
	}
}

static void murmur3_in_pieces_equals_murmur3_of_the_whole(void **state)
{
	(void)state;
	static const char key[] = "Feature.flexibleRollout.userId.55:25 and "
				  "some more bytes to cross blocks";
	const size_t len = sizeof(key) - 1;
	u32 whole = rollout_murmur3_32(key, len, 42);

	/* Every split into three pieces, empty pieces included. */
	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len; b++) {
			struct rollout_murmur3 m;
			rollout_murmur3_init(&m, 42);
			rollout_murmur3_update(&m, key, a);
			rollout_murmur3_update(&m, key + a, b - a);
			rollout_murmur3_update(&m, key + b, len - b);
			if (rollout_murmur3_final(&m) != whole)
				fail_msg("split %zu,%zu", a, b);
		}
	}
}

/*
 * Unleash client-specification (@unleash/client-specification 5.x):
 *   10-flexible-rollout-strategy.json   (flexibleRollout)
 *   03-gradual-rollout-user-id-strategy.json   (gradualRolloutUserId)
 *   12-custom-stickiness.json   (flexibleRollout, customField stickiness)
 * Each row: the strategy's groupId and rollout, the stickiness value the
 * context gives (NULL: the field is missing), the expected result from
 * the file, and the bucket (normalizedValue) murmurhash3js gives.  Left
 * out: 03's "Feature.A3 should be disabled when no user on context" at
 * 100%, because rollout.h has no random fallback and counts a missing
 * user in a 100% rollout, as flexibleRollout's default stickiness does
 * (10's "Feature.flexibleRollout.100 should always be enabled" below).
 */
struct unleash_row {
	const char *group;
	u32 rollout;
	const char *user;
	bool enabled;
	u32 bucket; /* 0: not computed (no user) */
};

static const struct unleash_row unleash_rows[] = {
	/* 10-flexible-rollout-strategy.json */
	{"Feature.flexibleRollout.100", 100, NULL, true, 0},
	{"Feature.flexibleRollout.10", 10, "174", true, 10},  /* userId */
	{"Feature.flexibleRollout.10", 10, "499", false, 32}, /* userId */
	{"Feature.flexibleRollout.10", 10, "174", true, 10},  /* sessionId */
	{"Feature.flexibleRollout.10", 10, "499", false, 32}, /* sessionId */
	{"Feature.flexibleRollout.userId.55", 55, "25", true, 55},
	/* userId stickiness, only a sessionId in the context: no user */
	{"Feature.flexibleRollout.userId.55", 55, NULL, false, 0},
	{"Feature.flexibleRollout.userId.55", 55, NULL, false, 0},
	{"Feature.flexibleRollout.sessionId.42", 42, "147", true, 42},
	/* 03-gradual-rollout-user-id-strategy.json (groupId AB12A) */
	{"AB12A", 100, "123", true, 51},
	{"AB12A", 50, "122", true, 23},
	{"AB12A", 50, "155", false, 100},
	{"AB12A", 0, "122", false, 23},
	/* 12-custom-stickiness.json */
	{"Feature.flexible.rollout.custom.stickiness_100", 100, "any_value",
	 true, 30},
	{"Feature.flexible.rollout.custom.stickiness_50", 50, NULL, false, 0},
	{"Feature.flexible.rollout.custom.stickiness_50", 50, "402", false, 55},
	{"Feature.flexible.rollout.custom.stickiness_50", 50, "388", true, 10},
	{"Feature.flexible.rollout.custom.stickiness_50", 50, "39", true, 25},
};

static void rollout_matches_unleash_specification_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(unleash_rows); i++) {
		const struct unleash_row *r = &unleash_rows[i];
		size_t ulen = r->user ? strlen(r->user) : 0;
		bool got = rollout_enabled(r->rollout, r->group,
					   strlen(r->group), r->user, ulen);

		if (got != r->enabled)
			fail_msg("row %zu: %s/%s at %u%%", i, r->group,
				 r->user ? r->user : "(none)", r->rollout);
		if (r->user && rollout_bucket(r->group, strlen(r->group),
					      r->user, ulen) != r->bucket)
			fail_msg("row %zu: bucket %u, want %u", i,
				 rollout_bucket(r->group, strlen(r->group),
						r->user, ulen),
				 r->bucket);
	}
}

static void bucket_is_1_to_100_and_rollouts_only_grow(void **state)
{
	(void)state;
	u32 count[101] = {0};
	char user[16];

	for (u32 u = 0; u < 100000; u++) {
		size_t n = (size_t)snprintf(user, sizeof(user), "%u", u);
		u32 b = rollout_bucket("flag", 4, user, n);
		assert_true(b >= 1 && b <= 100);
		count[b]++;
		/* In at p means in at every p' > p: raising a rollout never
		 * drops anyone. */
		for (u32 p = 0; p <= 100; p += 5)
			assert_int_equal(rollout_enabled(p, "flag", 4, user, n),
					 p > 0 && b <= p);
	}
	/* 1000 expected per bucket; a uniform hash stays well inside. */
	for (u32 b = 1; b <= 100; b++)
		assert_true(count[b] > 850 && count[b] < 1150);
}

static void rollout_limits_zero_hundred_and_missing_user(void **state)
{
	(void)state;
	assert_false(rollout_enabled(0, "g", 1, "u", 1));
	assert_true(rollout_enabled(100, "g", 1, "u", 1));
	assert_true(rollout_enabled(250, "g", 1, "u", 1));
	assert_true(rollout_enabled(100, "g", 1, NULL, 0));
	assert_false(rollout_enabled(99, "g", 1, NULL, 0));
	/* An empty user id is a user: "g:" is hashed. */
	assert_int_equal(rollout_bucket("g", 1, "", 0),
			 rollout_murmur3_32("g:", 2, 0) % 100 + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(murmur3_matches_published_vectors),
		cmocka_unit_test(murmur3_in_pieces_equals_murmur3_of_the_whole),
		cmocka_unit_test(rollout_matches_unleash_specification_vectors),
		cmocka_unit_test(bucket_is_1_to_100_and_rollouts_only_grow),
		cmocka_unit_test(rollout_limits_zero_hundred_and_missing_user),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
