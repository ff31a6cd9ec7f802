/*
 * test_engine_history.c - the engine with its history in a store
 * (engine/history.h) against the engine with everything in memory.
 *
 * What this proves: fed the same requests under the same clock, an engine
 * whose store holds the history and whose memory keeps a window of a few
 * transfers (so nearly every old id, pending post or void, retry and
 * query goes to the store) gives the same result for every event, the same
 * transfer on every lookup (with its pending status), the same answers to
 * account queries in both orders and with bounds, and the same state
 * digest as an engine that keeps everything in memory; and after a clean
 * reopen, which starts from the store and replays nothing it holds, the
 * same again.  An engine opened on the same directory without the store
 * replays the journal to the same digest.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/history.h"
#include "engine/logger.h"

#include "tmpdir_fixture.h"

#include "banned.h"

#define ACCOUNTS 24u
#define ROUNDS	 260u
#define NS	 1000000000ull

static _Atomic u64 clock_now = 1700000000ull * NS;

static u64 test_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&clock_now);
}

static u64 rng = 0x2545f4914f6cdd1dull;

static u64 rnd(u64 n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static int setup(void **state)
{
	logger_set_level(LOG_ERROR);
	return tmpdir_setup(state, "/tmp/tpw-history-XXXXXX");
}

static int teardown(void **state)
{
	return tmpdir_teardown(state);
}

static struct engine *open_at(const char *dir, bool store)
{
	struct engine *e = NULL;
	const char *err = NULL;
	struct engine_options o = {
		.data_dir = dir,
		.snapshot_every_records = 1u << 30,
		.quiet = true,
		.clock = {.now_ns = test_clock},
		.store = store,
		.window_transfers = 3,
	};
	int ret = engine_open(&e, &o, &err);

	if (ret < 0)
		fprintf(stderr, "engine_open %s: %s (%d)\n", dir,
			err ? err : "?", ret);
	assert_int_equal(ret, 0);
	return e;
}

/* The same request into both engines: the same results. */
static void both(struct engine *a, struct engine *b, enum engine_op op,
		 const void *ev, u32 n)
{
	u32 ra[64], rb[64];
	struct engine_request qa = {
		.op = op, .count = n, .events = ev, .results = ra};
	struct engine_request qb = qa;

	qb.results = rb;
	assert_int_equal(engine_execute(a, &qa), 0);
	assert_int_equal(engine_execute(b, &qb), 0);
	for (u32 i = 0; i < n; i++)
		if (ra[i] != rb[i])
			fail_msg("event %u: %u in memory, %u with a store", i,
				 ra[i], rb[i]);
}

static void same_transfer(struct engine *a, struct engine *b, u128 id)
{
	struct transfer ta, tb;
	enum pending_status sa, sb;
	int ra = engine_lookup_transfer(a, id, &ta, &sa);
	int rb = engine_lookup_transfer(b, id, &tb, &sb);

	assert_int_equal(ra, rb);
	if (ra == 0) {
		assert_memory_equal(&ta, &tb, sizeof(ta));
		assert_int_equal(sa, sb);
	}
}

static void same_queries(struct engine *a, struct engine *b, u64 first_ts)
{
	struct transfer ta[40], tb[40];
	struct account_balance ba[40], bb[40];
	u8 sa[40], sb[40];

	for (u32 acc = 1; acc <= ACCOUNTS; acc++) {
		for (u32 q = 0; q < 6; q++) {
			struct account_filter f = {
				.account_id = acc,
				.limit = 1 + (u32)rnd(40),
				.flags = ACCOUNT_FILTER_DEBITS |
					 ACCOUNT_FILTER_CREDITS,
			};
			if (q & 1)
				f.flags |= ACCOUNT_FILTER_REVERSED;
			if (q >= 2)
				f.flags &= ~(u32)(q == 2 ? ACCOUNT_FILTER_DEBITS
							 : 0);
			if (q >= 4) {
				f.timestamp_min = first_ts + rnd(300) * NS;
				f.timestamp_max =
					f.timestamp_min + (1 + rnd(200)) * NS;
			}
			int na = engine_account_transfers(a, &f, ta, sa, 40);
			int nb = engine_account_transfers(b, &f, tb, sb, 40);
			assert_int_equal(na, nb);
			if (na > 0) {
				assert_memory_equal(ta, tb,
						    (size_t)na * sizeof(*ta));
				assert_memory_equal(sa, sb, (size_t)na);
			}
			na = engine_account_balances(a, &f, ba, 40);
			nb = engine_account_balances(b, &f, bb, 40);
			assert_int_equal(na, nb);
			if (na > 0)
				assert_memory_equal(ba, bb,
						    (size_t)na * sizeof(*ba));
		}
	}
}

static void same_digest(struct engine *a, struct engine *b)
{
	u8 da[32], db[32];

	engine_digest(a, da);
	engine_digest(b, db);
	assert_memory_equal(da, db, 32);
}

/* Random transfers: new ones (some pending with a short timeout),
 * posts and voids of earlier pending ones, retries of earlier ids, and a
 * linked pair now and then. */
static u32 gen(struct transfer *t, u64 *next_id, const u64 *pending,
	       u32 npending)
{
	u32 n = 1 + (u32)rnd(12);

	memset(t, 0, n * sizeof(*t));
	for (u32 i = 0; i < n; i++) {
		u64 k = rnd(100);
		if (k < 15 && *next_id > 1000) {
			/* a retry of an old id, as it was first sent */
			u64 id = 1000 + rnd(*next_id - 1000);
			t[i].id = id;
			t[i].debit_account_id = 1 + id % ACCOUNTS;
			t[i].credit_account_id = 1 + (id + 7) % ACCOUNTS;
			t[i].amount = 1 + id % 50;
			t[i].ledger = 1;
			t[i].code = 1;
			continue;
		}
		t[i].id = (*next_id)++;
		if (k < 35 && npending) {
			t[i].pending_id = pending[rnd(npending)];
			t[i].flags = rnd(2) ? TRANSFER_POST_PENDING_TRANSFER
					    : TRANSFER_VOID_PENDING_TRANSFER;
			t[i].amount = rnd(3) ? 0 : AMOUNT_MAX;
			if (t[i].flags & TRANSFER_VOID_PENDING_TRANSFER)
				t[i].amount = 0;
			continue;
		}
		t[i].debit_account_id = 1 + t[i].id % ACCOUNTS;
		t[i].credit_account_id = 1 + (t[i].id + 7) % ACCOUNTS;
		t[i].amount = 1 + t[i].id % 50;
		t[i].ledger = 1;
		t[i].code = 1;
		if (k < 55) {
			t[i].flags = TRANSFER_PENDING;
			t[i].timeout = rnd(3) ? 0 : 1 + (u32)rnd(40);
		}
		if (k > 95 && i + 1 < n)
			t[i].flags |= TRANSFER_LINKED;
	}
	return n;
}

static void store_engine_equals_memory_engine(void **state)
{
	struct fixture *fx = *state;
	char dm[512], ds[512];
	struct account acc[ACCOUNTS];
	struct transfer t[16];
	u64 pending[4096], next_id = 1000, first_ts;
	u32 npending = 0;

	snprintf(dm, sizeof(dm), "%s/memory", fx->dir);
	snprintf(ds, sizeof(ds), "%s/store", fx->dir);
	struct engine *a = open_at(dm, false), *b = open_at(ds, true);

	memset(acc, 0, sizeof(acc));
	for (u32 i = 0; i < ACCOUNTS; i++) {
		acc[i].id = i + 1;
		acc[i].ledger = 1;
		acc[i].code = 10;
		if (i % 3 == 0)
			acc[i].flags = ACCOUNT_HISTORY;
	}
	first_ts = atomic_load(&clock_now);
	both(a, b, ENGINE_CREATE_ACCOUNTS, acc, ACCOUNTS);

	for (u32 r = 0; r < ROUNDS; r++) {
		atomic_fetch_add(&clock_now, (1 + rnd(3)) * NS);
		u32 n = gen(t, &next_id, pending, npending);
		both(a, b, ENGINE_CREATE_TRANSFERS, t, n);
		for (u32 i = 0; i < n; i++)
			if ((t[i].flags & TRANSFER_PENDING) && npending < 4096)
				pending[npending++] = t[i].id;
		if (r % 40 == 39) {
			for (u64 id = 1000; id < next_id; id++)
				same_transfer(a, b, id);
			same_queries(a, b, first_ts);
			same_digest(a, b);
		}
	}
	struct history_stats hs;
	assert_true(engine_history_stats(b, &hs));
	assert_true(hs.evictions > 0);
	fprintf(stderr,
		"history: %llu commits, %llu evictions, window %llu, "
		"store at seq %llu\n",
		(unsigned long long)hs.commits,
		(unsigned long long)hs.evictions,
		(unsigned long long)hs.keep_transfers,
		(unsigned long long)hs.store.seq);
	assert_false(engine_history_stats(a, &hs));

	/* A clean reopen starts from the store. */
	u8 before[32], after[32];
	engine_digest(b, before);
	engine_close(b);
	b = open_at(ds, true);
	struct engine_stats es;
	engine_stats(b, &es);
	assert_int_equal(es.recovery_records, 0);
	engine_digest(b, after);
	assert_memory_equal(before, after, 32);
	for (u64 id = 1000; id < next_id; id++)
		same_transfer(a, b, id);
	same_queries(a, b, first_ts);

	/* And it goes on the same way. */
	for (u32 r = 0; r < 40; r++) {
		atomic_fetch_add(&clock_now, (1 + rnd(3)) * NS);
		u32 n = gen(t, &next_id, pending, npending);
		both(a, b, ENGINE_CREATE_TRANSFERS, t, n);
	}
	same_digest(a, b);
	engine_digest(b, before);
	engine_close(b);

	/* The journal alone, without the store, gives the same digest. */
	b = open_at(ds, false);
	engine_digest(b, after);
	assert_memory_equal(before, after, 32);
	engine_close(b);
	engine_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			store_engine_equals_memory_engine, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
