/*
 * test_log_store.c - the store (src/log/store.c) on a real RocksDB in a
 * directory under $TMPDIR: every kind of record round-trips, batched gets
 * mix absent, failed and present ids, the two account queries equal a
 * brute-force reference over a few thousand random transfers and random
 * filters, the pending set follows status changes exactly, a checkpoint
 * and a reopen answer the same, and a bad store (unknown version, a value
 * of the wrong length, a seq that does not increase) is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log/store.h"
#include "tmpdir_fixture.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "banned.h"

/* Under ThreadSanitizer the races inside RocksDB are suppressed by
 * src/log/store.c itself (__tsan_default_suppressions). */

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	char tmpl[200];

	snprintf(tmpl, sizeof(tmpl), "%s/tpw-store-XXXXXX",
		 t && *t ? t : "/tmp");
	return tmpdir_setup(state, tmpl);
}

static const char *dir_of(void **state)
{
	return ((struct fixture *)*state)->dir;
}

static void path(char *out, size_t n, void **state, const char *name)
{
	snprintf(out, n, "%s/%s", dir_of(state), name);
}

static struct store *open_store(const char *dir, bool create)
{
	struct store_options o = {.dir = dir,
				  .create = create,
				  .cache_bytes = 8u << 20,
				  .memtable_bytes = 1u << 20};
	struct store *s = NULL;
	const char *why = NULL;

	memset(o.origin, 0xab, sizeof(o.origin));
	assert_int_equal(store_open(&o, &s, &why), 0);
	return s;
}

static const u8 digest_a[32] = {1, 2, 3};

/* Deterministic random numbers (xorshift64*). */
static u64 rng_state = 0x9e3779b97f4a7c15ull;
static u64 rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}
static u64 rnd_below(u64 n)
{
	return rnd() % n;
}

static struct transfer xfer(u128 id, u128 dr, u128 cr, u64 ts, u16 flags)
{
	struct transfer t;

	memset(&t, 0, sizeof(t));
	t.id = id;
	t.debit_account_id = dr;
	t.credit_account_id = cr;
	t.amount = 100 + (u128)id;
	t.ledger = 1;
	t.code = 7;
	t.flags = flags;
	t.timestamp = ts;
	return t;
}

static struct account account_rec(u128 id, u64 ts, u16 flags)
{
	struct account a;

	memset(&a, 0, sizeof(a));
	a.id = id;
	a.ledger = 1;
	a.code = 1;
	a.flags = flags;
	a.timestamp = ts;
	return a;
}

static void commit(struct store *s, struct store_batch *b, u64 seq, u64 ts)
{
	const char *why = NULL;

	assert_int_equal(store_commit(s, b, seq, ts, digest_a, &why), 0);
	store_batch_reset(b);
}

static int count_accounts(void *ctx, const struct account *a)
{
	struct account *seen = ctx;
	seen[0].reserved++;
	seen[seen[0].reserved] = *a;
	return 0;
}

static int collect_pending(void *ctx, const struct transfer *t)
{
	struct transfer *seen = ctx;
	seen[0].timeout++;
	seen[seen[0].timeout] = *t;
	return 0;
}

static int stop_at_first(void *ctx, const struct account *a)
{
	(void)a;
	(*(int *)ctx)++;
	return 42;
}

static void test_every_kind_round_trips_and_the_meta_counts_them(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct store_batch *b = store_batch_new();
	struct store_meta m;
	struct transfer t = xfer(10, 1, 2, 1001, 0);
	struct transfer p = xfer(11, 2, 1, 1002, TRANSFER_PENDING);
	struct account a1 = account_rec(1, 900, ACCOUNT_HISTORY),
		       a2 = account_rec(2, 901, 0);
	struct account got, seen[4];
	struct account_balance point = {.debits_posted = 5,
					.credits_posted = 9};
	struct ledger_cold_item items[4];
	u128 ids[4] = {10, 11, 12, 13};
	void *blob = NULL;
	size_t blob_n = 0;

	store_meta(s, &m);
	assert_int_equal(m.version, STORE_FORMAT_VERSION);
	assert_int_equal(m.seq, 0);
	assert_int_equal(m.origin[31], 0xab);

	assert_int_equal(store_batch_account(b, &a1), 0);
	assert_int_equal(store_batch_account(b, &a2), 0);
	a1.debits_posted = 100; /* changed in the same batch: last wins */
	assert_int_equal(store_batch_account(b, &a1), 0);
	commit(s, b, 1, 901);

	assert_int_equal(
		store_batch_transfer(b, &t, PENDING_NONE, &point, NULL), 0);
	assert_int_equal(
		store_batch_transfer(b, &p, PENDING_PENDING, NULL, &point), 0);
	assert_int_equal(store_batch_failed(b, 12), 0);
	assert_int_equal(store_batch_blob(b, "auth", "abc", 3), 0);
	a2.credits_posted = 7; /* changed, not created */
	assert_int_equal(store_batch_account(b, &a2), 0);
	commit(s, b, 5, 1002);

	store_meta(s, &m);
	assert_int_equal(m.seq, 5);
	assert_int_equal(m.last_timestamp, 1002);
	assert_int_equal(m.transfers, 2);
	assert_int_equal(m.accounts, 2);
	assert_int_equal(m.failed, 1);
	assert_memory_equal(m.digest, digest_a, 32);

	assert_int_equal(store_get_transfers(s, ids, 4, items), 0);
	assert_int_equal(items[0].kind, LEDGER_COLD_TRANSFER);
	assert_memory_equal(&items[0].t, &t, sizeof(t));
	assert_int_equal(items[0].status, PENDING_NONE);
	assert_int_equal(items[1].kind, LEDGER_COLD_TRANSFER);
	assert_memory_equal(&items[1].t, &p, sizeof(p));
	assert_int_equal(items[1].status, PENDING_PENDING);
	assert_int_equal(items[2].kind, LEDGER_COLD_FAILED);
	assert_int_equal(items[3].kind, LEDGER_COLD_ABSENT);

	assert_int_equal(store_lookup_account(s, 1, &got), 0);
	assert_memory_equal(&got, &a1, sizeof(a1));
	assert_int_equal(store_lookup_account(s, 2, &got), 0);
	assert_memory_equal(&got, &a2, sizeof(a2));
	assert_int_equal(store_lookup_account(s, 3, &got), -ENOENT);

	memset(seen, 0, sizeof(seen));
	assert_int_equal(store_scan_accounts(s, count_accounts, seen), 0);
	assert_int_equal(seen[0].reserved, 2);
	assert_true(seen[1].id == 1 && seen[2].id == 2);
	int calls = 0;
	assert_int_equal(store_scan_accounts(s, stop_at_first, &calls), 42);
	assert_int_equal(calls, 1);

	assert_int_equal(store_blob_get(s, "auth", &blob, &blob_n), 0);
	assert_int_equal(blob_n, 3);
	assert_memory_equal(blob, "abc", 3);
	free(blob);
	assert_int_equal(store_blob_get(s, "policy", &blob, &blob_n), -ENOENT);
	assert_int_equal(store_batch_blob(b, "", "x", 1), -EINVAL);

	/* the index carries the transfer and the point of its side */
	struct account_filter f = {.account_id = 1,
				   .limit = 10,
				   .flags = ACCOUNT_FILTER_DEBITS |
					    ACCOUNT_FILTER_CREDITS};
	struct transfer xs[4];
	struct account_balance bs[4];
	assert_int_equal(store_account_transfers(s, &f, 0, xs, 4), 2);
	assert_memory_equal(&xs[0], &t, sizeof(t));
	assert_memory_equal(&xs[1], &p, sizeof(p));
	assert_int_equal(store_account_balances(s, &f, 0, bs, 4), 2);
	assert_true(bs[0].debits_posted == 5 && bs[0].credits_posted == 9);
	assert_int_equal(bs[0].timestamp, 1001);
	assert_int_equal(bs[1].timestamp, 1002);
	f.account_id = 2; /* account 2's side carries no point for t */
	assert_int_equal(store_account_balances(s, &f, 0, bs, 4), 0);

	store_batch_free(b);
	store_close(s);
}

static void test_batched_gets_mix_absent_failed_and_present(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct store_batch *b = store_batch_new();
	enum { N = 3000 };
	u128 *ids = calloc(N, sizeof(*ids));
	u8 *want = calloc(N, 1);
	struct ledger_cold_item *items = calloc(N, sizeof(*items));
	u64 ts = 1000;

	for (u32 i = 0; i < N; i++) {
		ids[i] = ((u128)rnd() << 64) | rnd() | 1;
		want[i] = (u8)rnd_below(3);
		if (want[i] == LEDGER_COLD_TRANSFER) {
			struct transfer t = xfer(ids[i], 1, 2, ++ts, 0);
			assert_int_equal(
				store_batch_transfer(b, &t, 0, NULL, NULL), 0);
		} else if (want[i] == LEDGER_COLD_FAILED) {
			assert_int_equal(store_batch_failed(b, ids[i]), 0);
		}
		if (i % 1000 == 999)
			commit(s, b, i + 1, ts);
	}
	assert_int_equal(store_get_transfers(s, ids, N, items), 0);
	for (u32 i = 0; i < N; i++) {
		assert_int_equal(items[i].kind, want[i]);
		if (want[i] == LEDGER_COLD_TRANSFER)
			assert_true(items[i].t.id == ids[i]);
	}
	assert_int_equal(store_get_transfers(s, ids, STORE_GET_MAX + 1, items),
			 -EINVAL);
	free(ids);
	free(want);
	free(items);
	store_batch_free(b);
	store_close(s);
}

/* The reference: every transfer with the points of its two sides. */
enum { ACCOUNTS = 6, TRANSFERS = 4000 };
struct ref {
	struct transfer t[TRANSFERS];
	bool has_point[TRANSFERS][2]; /* debit, credit side */
	struct account_balance point[TRANSFERS][2];
};

static bool ref_match(const struct account_filter *f, const struct transfer *t,
		      u64 ts_below, int *side)
{
	if ((f->flags & ACCOUNT_FILTER_DEBITS) &&
	    t->debit_account_id == f->account_id)
		*side = 0;
	else if ((f->flags & ACCOUNT_FILTER_CREDITS) &&
		 t->credit_account_id == f->account_id)
		*side = 1;
	else
		return false;
	if (f->timestamp_min && t->timestamp < f->timestamp_min)
		return false;
	if (f->timestamp_max && t->timestamp > f->timestamp_max)
		return false;
	if (ts_below && t->timestamp >= ts_below)
		return false;
	if (f->user_data_128 && f->user_data_128 != t->user_data_128)
		return false;
	if (f->user_data_64 && f->user_data_64 != t->user_data_64)
		return false;
	if (f->user_data_32 && f->user_data_32 != t->user_data_32)
		return false;
	return !f->code || f->code == t->code;
}

static bool ref_valid(const struct account_filter *f)
{
	return f->account_id != 0 && f->account_id != U128_MAX &&
	       f->timestamp_min < (1ull << 63) &&
	       f->timestamp_max < (1ull << 63) &&
	       (f->timestamp_max == 0 ||
		f->timestamp_min <= f->timestamp_max) &&
	       f->limit != 0 && !(f->flags & ~7u) && (f->flags & 3u);
}

/* Returns the count or -EINVAL; fills xs (transfers) or bs (balances). */
static int ref_query(const struct ref *r, const struct account_filter *f,
		     u64 ts_below, u32 out_max, bool balances,
		     struct transfer *xs, struct account_balance *bs)
{
	u32 max = f->limit, k = 0;

	if (!ref_valid(f))
		return -EINVAL;
	if (out_max < max)
		max = out_max;
	if (max > QUERY_LIMIT_MAX)
		max = QUERY_LIMIT_MAX;
	for (u32 j = 0; j < TRANSFERS && k < max; j++) {
		u32 i = f->flags & ACCOUNT_FILTER_REVERSED ? TRANSFERS - 1 - j
							   : j;
		int side;
		if (!ref_match(f, &r->t[i], ts_below, &side))
			continue;
		if (balances) {
			if (!r->has_point[i][side])
				continue;
			bs[k] = r->point[i][side];
		} else {
			xs[k] = r->t[i];
		}
		k++;
	}
	return (int)k;
}

static void random_filter(struct account_filter *f, u64 ts_lo, u64 ts_hi)
{
	memset(f, 0, sizeof(*f));
	f->account_id = 1 + rnd_below(ACCOUNTS + 1); /* one unknown */
	if (rnd_below(50) == 0)
		f->account_id = rnd_below(2) ? 0 : U128_MAX;
	f->flags = (u32)rnd_below(8);
	if (rnd_below(50) == 0)
		f->flags |= 8;
	if (rnd_below(3) == 0)
		f->user_data_128 = 1 + rnd_below(3);
	if (rnd_below(4) == 0)
		f->user_data_64 = 1 + rnd_below(2);
	if (rnd_below(4) == 0)
		f->user_data_32 = 1 + rnd_below(2);
	if (rnd_below(3) == 0)
		f->code = (u16)(1 + rnd_below(3));
	if (rnd_below(2))
		f->timestamp_min = ts_lo + rnd_below(ts_hi - ts_lo + 2);
	if (rnd_below(2))
		f->timestamp_max = ts_lo + rnd_below(ts_hi - ts_lo + 2);
	if (rnd_below(40) == 0)
		f->timestamp_min = 1ull << 63;
	f->limit = rnd_below(4) ? (u32)(1 + rnd_below(300))
				: (u32)rnd_below(20000);
}

static void fill_random(struct store *s, struct ref *r, u64 *ts_lo, u64 *ts_hi)
{
	struct store_batch *b = store_batch_new();
	u64 ts = 5000, seq = 0;

	for (u32 a = 1; a <= ACCOUNTS; a++) {
		struct account x =
			account_rec(a, ++ts, a % 2 ? ACCOUNT_HISTORY : 0);
		assert_int_equal(store_batch_account(b, &x), 0);
	}
	commit(s, b, ++seq, ts);
	*ts_lo = ts + 1;
	for (u32 i = 0; i < TRANSFERS; i++) {
		u128 dr = 1 + rnd_below(ACCOUNTS);
		u128 cr = 1 + (dr + rnd_below(ACCOUNTS - 1)) % ACCOUNTS;
		struct transfer *t = &r->t[i];
		ts += 1 + rnd_below(3);
		*t = xfer(((u128)rnd() << 64) | (i + 1), dr, cr, ts, 0);
		t->user_data_128 = 1 + rnd_below(3);
		t->user_data_64 = 1 + rnd_below(2);
		t->user_data_32 = 1 + rnd_below(2);
		t->code = (u16)(1 + rnd_below(3));
		for (int side = 0; side < 2; side++) {
			u128 acc = side ? cr : dr;
			struct account_balance *p = &r->point[i][side];
			memset(p, 0, sizeof(*p));
			r->has_point[i][side] = acc % 2 == 1;
			p->debits_pending = rnd();
			p->debits_posted = (u128)rnd() << 64;
			p->credits_pending = i;
			p->credits_posted = rnd();
			p->timestamp = ts;
		}
		assert_int_equal(
			store_batch_transfer(
				b, t, 0,
				r->has_point[i][0] ? &r->point[i][0] : NULL,
				r->has_point[i][1] ? &r->point[i][1] : NULL),
			0);
		if (rnd_below(500) == 0 || i == TRANSFERS - 1)
			commit(s, b, ++seq, ts);
	}
	*ts_hi = ts;
	store_batch_free(b);
}

static void compare_queries(struct store *s, const struct ref *r, u64 ts_lo,
			    u64 ts_hi, u32 rounds)
{
	struct transfer *xs = calloc(QUERY_LIMIT_MAX, sizeof(*xs));
	struct transfer *ys = calloc(QUERY_LIMIT_MAX, sizeof(*ys));
	struct account_balance *bs = calloc(QUERY_LIMIT_MAX, sizeof(*bs));
	struct account_balance *cs = calloc(QUERY_LIMIT_MAX, sizeof(*cs));
	u32 nonempty = 0;

	for (u32 round = 0; round < rounds; round++) {
		struct account_filter f;
		u64 below =
			rnd_below(3) ? 0 : ts_lo + rnd_below(ts_hi - ts_lo + 2);
		u32 out_max = rnd_below(4) ? QUERY_LIMIT_MAX
					   : (u32)(1 + rnd_below(50));
		random_filter(&f, ts_lo, ts_hi);

		int want = ref_query(r, &f, below, out_max, false, xs, NULL);
		int got = store_account_transfers(s, &f, below, ys, out_max);
		assert_int_equal(got, want);
		if (want > 0) {
			nonempty++;
			assert_memory_equal(xs, ys, (size_t)want * sizeof(*xs));
		}
		want = ref_query(r, &f, below, out_max, true, NULL, bs);
		got = store_account_balances(s, &f, below, cs, out_max);
		assert_int_equal(got, want);
		if (want > 0)
			assert_memory_equal(bs, cs, (size_t)want * sizeof(*bs));
	}
	/* the filters found something most of the time */
	assert_true(nonempty > rounds / 4);
	free(xs);
	free(ys);
	free(bs);
	free(cs);
}

static void test_queries_equal_a_brute_force_reference(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct ref *r = calloc(1, sizeof(*r));
	u64 ts_lo, ts_hi;

	fill_random(s, r, &ts_lo, &ts_hi);
	compare_queries(s, r, ts_lo, ts_hi, 3000);
	free(r);
	store_close(s);
}

static void test_status_updates_keep_the_pending_set_exact(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct store_batch *b = store_batch_new();
	enum { N = 60 };
	struct transfer t[N + 1], seen[N + 2];
	u8 status[N + 1];
	u128 ids[N];
	struct ledger_cold_item items[N];
	u64 ts = 100, seq = 0;

	for (u32 i = 1; i <= N; i++) {
		t[i] = xfer(i, 1, 2, ++ts, TRANSFER_PENDING);
		status[i] = PENDING_PENDING;
		assert_int_equal(store_batch_transfer(b, &t[i], PENDING_PENDING,
						      NULL, NULL),
				 0);
		/* some change status in the batch that creates them */
		if (i % 7 == 0) {
			status[i] = PENDING_VOIDED;
			assert_int_equal(
				store_batch_status(b, &t[i], status[i]), 0);
		}
	}
	commit(s, b, ++seq, ts);
	for (u32 round = 0; round < 5; round++) {
		for (u32 i = 1; i <= N; i++) {
			if (status[i] != PENDING_PENDING || rnd_below(4))
				continue;
			status[i] = (u8)(PENDING_POSTED + rnd_below(3));
			assert_int_equal(
				store_batch_status(b, &t[i], status[i]), 0);
		}
		commit(s, b, ++seq, ts);
		memset(seen, 0, sizeof(seen));
		assert_int_equal(store_scan_pending(s, collect_pending, seen),
				 0);
		u32 k = 1;
		for (u32 i = 1; i <= N; i++) {
			if (status[i] != PENDING_PENDING)
				continue;
			assert_true(k <= seen[0].timeout);
			assert_memory_equal(&seen[k], &t[i], sizeof(t[i]));
			k++;
		}
		assert_int_equal(seen[0].timeout, k - 1);
		for (u32 i = 0; i < N; i++)
			ids[i] = i + 1;
		assert_int_equal(store_get_transfers(s, ids, N, items), 0);
		for (u32 i = 0; i < N; i++)
			assert_int_equal(items[i].status, status[i + 1]);
	}
	/* a status that does not fit the transfer is refused */
	struct transfer plain = xfer(500, 1, 2, ts, 0);
	assert_int_equal(store_batch_status(b, &plain, PENDING_POSTED),
			 -EINVAL);
	assert_int_equal(store_batch_status(b, &t[1], 9), -EINVAL);
	assert_int_equal(
		store_batch_transfer(b, &plain, PENDING_PENDING, NULL, NULL),
		-EINVAL);
	store_batch_free(b);
	store_close(s);
}

/* A commit's writes go into RocksDB sorted by key (store.c): in a large
 * batch of random ids, the writes to one key still land in the order
 * they were batched: a pending transfer, then a void, then a post. */
static void test_a_large_sorted_batch_keeps_each_keys_write_order(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct store_batch *b = store_batch_new();
	enum { N = 12000 };
	struct transfer *t = calloc(N, sizeof(*t));
	struct transfer *seen = calloc(N + 1, sizeof(*seen));
	struct ledger_cold_item *items = calloc(N, sizeof(*items));
	u128 *ids = calloc(N, sizeof(*ids));
	u64 ts = 1000;

	assert_non_null(t);
	assert_non_null(seen);
	assert_non_null(items);
	assert_non_null(ids);
	for (u32 i = 0; i < N; i++) {
		ids[i] = ((u128)rnd() << 64) | (u128)(i + 1);
		t[i] = xfer(ids[i], 1 + i % 50, 51 + i % 50, ++ts,
			    TRANSFER_PENDING);
		assert_int_equal(store_batch_transfer(b, &t[i], PENDING_PENDING,
						      NULL, NULL),
				 0);
	}
	for (u32 i = 0; i < N; i++) {
		if (i % 3 == 0)
			assert_int_equal(
				store_batch_status(b, &t[i], PENDING_VOIDED),
				0);
		if (i % 3 != 2)
			assert_int_equal(
				store_batch_status(b, &t[i], PENDING_POSTED),
				0);
	}
	commit(s, b, 1, ts);
	assert_int_equal(store_get_transfers(s, ids, N, items), 0);
	for (u32 i = 0; i < N; i++) {
		assert_int_equal(items[i].kind, LEDGER_COLD_TRANSFER);
		assert_memory_equal(&items[i].t, &t[i], sizeof(t[i]));
		assert_int_equal(items[i].status,
				 i % 3 == 2 ? PENDING_PENDING : PENDING_POSTED);
	}
	assert_int_equal(store_scan_pending(s, collect_pending, seen), 0);
	assert_int_equal(seen[0].timeout, N / 3);
	for (u32 k = 1; k <= N / 3; k++)
		assert_int_equal((u64)seen[k].id % 3,
				 0); /* i + 1, i = 2 mod 3 */
	free(ids);
	free(items);
	free(seen);
	free(t);
	store_batch_free(b);
	store_close(s);
}

static void test_checkpoint_and_reopen_answer_the_same(void **state)
{
	char live[300], cp[300];
	struct store *s, *c;
	struct ref *r = calloc(1, sizeof(*r));
	struct store_meta m1, m2;
	const char *why = NULL;
	u64 ts_lo, ts_hi, seed;

	path(live, sizeof(live), state, "live");
	path(cp, sizeof(cp), state, "cp");
	s = open_store(live, true);
	fill_random(s, r, &ts_lo, &ts_hi);
	assert_int_equal(store_checkpoint(s, cp, &why), 0);
	store_meta(s, &m1);

	c = open_store(cp, false);
	store_meta(c, &m2);
	assert_memory_equal(&m1, &m2, sizeof(m1));
	assert_int_equal(m2.transfers, TRANSFERS);
	seed = rng_state;
	compare_queries(c, r, ts_lo, ts_hi, 300);
	rng_state = seed;
	compare_queries(s, r, ts_lo, ts_hi, 300);
	store_close(c);

	store_close(s);
	s = open_store(live, false);
	store_meta(s, &m2);
	assert_memory_equal(&m1, &m2, sizeof(m1));
	compare_queries(s, r, ts_lo, ts_hi, 300);
	store_close(s);
	free(r);
}

static void test_seq_and_timestamps_must_advance(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct store_batch *b = store_batch_new();
	struct store_meta m;
	struct transfer t = xfer(1, 1, 2, 50, 0);
	const char *why = NULL;

	commit(s, b, 10, 40);
	assert_int_equal(store_commit(s, b, 10, 41, digest_a, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(store_commit(s, b, 9, 41, digest_a, &why), -EINVAL);
	assert_int_equal(store_commit(s, b, 11, 39, digest_a, &why), -EINVAL);
	/* a transfer at or before the stored last timestamp, or after the
	 * commit's */
	t.timestamp = 40;
	assert_int_equal(store_batch_transfer(b, &t, 0, NULL, NULL), 0);
	assert_int_equal(store_commit(s, b, 11, 60, digest_a, &why), -EINVAL);
	store_batch_reset(b);
	t.timestamp = 61;
	assert_int_equal(store_batch_transfer(b, &t, 0, NULL, NULL), 0);
	assert_int_equal(store_commit(s, b, 11, 60, digest_a, &why), -EINVAL);
	store_meta(s, &m);
	assert_int_equal(m.seq, 10);
	assert_int_equal(m.transfers, 0);
	/* nothing of the refused batches was written */
	u128 id = 1;
	struct ledger_cold_item item;
	assert_int_equal(store_get_transfers(s, &id, 1, &item), 0);
	assert_int_equal(item.kind, LEDGER_COLD_ABSENT);
	assert_int_equal(store_commit(s, b, 11, 61, digest_a, &why), 0);
	assert_int_equal(store_get_transfers(s, &id, 1, &item), 0);
	assert_int_equal(item.kind, LEDGER_COLD_TRANSFER);
	store_batch_free(b);
	store_close(s);
}

/* Writes key -> value straight into the RocksDB under dir. */
static void raw_put(const char *dir, const void *k, size_t kn, const void *v,
		    size_t vn)
{
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
	char *err = NULL;
	rocksdb_t *db = rocksdb_open(o, dir, &err);

	assert_null(err);
	rocksdb_put(db, w, k, kn, v, vn, &err);
	assert_null(err);
	rocksdb_close(db);
	rocksdb_writeoptions_destroy(w);
	rocksdb_options_destroy(o);
}

static void test_unknown_version_and_missing_store_are_refused(void **state)
{
	struct store_options o = {.dir = dir_of(state)};
	struct store *s = open_store(dir_of(state), true);
	struct store_meta m;
	u8 v[STORE_META_BYTES], k = STORE_KEY_META;
	const char *why = NULL;
	char other[300];

	store_meta(s, &m);
	store_close(s);
	m.version = STORE_FORMAT_VERSION + 1;
	store_meta_encode(&m, v);
	raw_put(dir_of(state), &k, 1, v, sizeof(v));
	assert_int_equal(store_open(&o, &s, &why), -EPROTO);
	assert_null(s);
	assert_string_equal(why, "unknown store format version");
	/* a meta cut short */
	m.version = STORE_FORMAT_VERSION;
	store_meta_encode(&m, v);
	raw_put(dir_of(state), &k, 1, v, sizeof(v) - 1);
	assert_int_equal(store_open(&o, &s, &why), -EIO);

	path(other, sizeof(other), state, "none");
	o.dir = other;
	assert_int_equal(store_open(&o, &s, &why), -ENOENT);
	assert_null(s);
}

static void test_values_of_wrong_length_are_eio(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct store_batch *b = store_batch_new();
	struct transfer t = xfer(7, 1, 2, 10, 0);
	struct account a = account_rec(3, 5, 0);
	struct ledger_cold_item item;
	struct account got;
	struct transfer xs[4];
	struct account_filter f = {
		.account_id = 1, .limit = 4, .flags = ACCOUNT_FILTER_DEBITS};
	u8 k[25], junk[130];
	u128 id = 7;

	assert_int_equal(store_batch_transfer(b, &t, 0, NULL, NULL), 0);
	assert_int_equal(store_batch_account(b, &a), 0);
	commit(s, b, 1, 10);
	store_batch_free(b);
	store_close(s);

	memset(junk, 0x5a, sizeof(junk));
	k[0] = STORE_KEY_TRANSFER;
	memset(k + 1, 0, 16);
	k[16] = 7;
	raw_put(dir_of(state), k, 17, junk, 5);
	k[0] = STORE_KEY_ACCOUNT;
	k[16] = 3;
	raw_put(dir_of(state), k, 17, junk, 127);
	k[0] = STORE_KEY_INDEX;
	k[16] = 1;
	memset(k + 17, 0, 8);
	k[24] = 10;
	raw_put(dir_of(state), k, 25, junk, 130);

	s = open_store(dir_of(state), false);
	assert_int_equal(store_get_transfers(s, &id, 1, &item), -EIO);
	assert_int_equal(store_lookup_account(s, 3, &got), -EIO);
	assert_int_equal(store_account_transfers(s, &f, 0, xs, 4), -EIO);
	store_close(s);
}

static void test_stats_report_the_store(void **state)
{
	struct store *s = open_store(dir_of(state), true);
	struct ref *r = calloc(1, sizeof(*r));
	struct store_stats st;
	const char *why = NULL;
	char cp[300];
	u64 ts_lo, ts_hi;

	fill_random(s, r, &ts_lo, &ts_hi);
	path(cp, sizeof(cp), state, "cp");
	assert_int_equal(store_checkpoint(s, cp, &why), 0);
	compare_queries(s, r, ts_lo, ts_hi, 50);
	assert_int_equal(store_stats(s, &st), 0);
	struct store_meta m;
	store_meta(s, &m);
	assert_int_equal(st.seq, m.seq);
	assert_true(st.disk_bytes > (u64)TRANSFERS * 64);
	assert_int_equal(st.cache_capacity_bytes, 8u << 20);
	assert_true(st.cache_bytes > 0);
	assert_true(st.cache_hits > 0);
	assert_true(st.cache_misses > 0);
	/* a commit after the checkpoint's flush sits in the memtable */
	struct store_batch *b = store_batch_new();
	struct store_stats st2;
	for (u32 i = 1; i <= 100; i++) {
		struct transfer t = xfer((1u << 20) + i, 1, 2, ts_hi + i, 0);
		assert_int_equal(store_batch_transfer(b, &t, 0, NULL, NULL), 0);
	}
	commit(s, b, 1000000, ts_hi + 100);
	assert_int_equal(store_stats(s, &st2), 0);
	assert_true(st2.memtable_bytes > st.memtable_bytes);
	assert_int_equal(st2.seq, 1000000);
	store_batch_free(b);
	free(r);
	store_close(s);
}

/* Readers on another thread while the writer commits: each read sees
 * whole commits, and everything committed before it began. */
enum { COMMITS = 100, PER_COMMIT = 50 };
struct race {
	struct store *s;
	atomic_bool done;
	u32 reads;
	int bad; /* the first failed check's line, or 0 */
};

#define RACE_CHECK(r, cond)                                                    \
	do {                                                                   \
		if (!(cond) && !(r)->bad)                                      \
			(r)->bad = __LINE__;                                   \
	} while (0)

static void *reader(void *arg)
{
	struct race *r = arg;
	struct transfer *xs = calloc(QUERY_LIMIT_MAX, sizeof(*xs));
	struct account_filter f = {.account_id = 1,
				   .limit = QUERY_LIMIT_MAX,
				   .flags = ACCOUNT_FILTER_DEBITS};

	for (u32 i = 0; i < 200000 && !atomic_load(&r->done); i++) {
		struct store_meta m;
		struct ledger_cold_item item;
		store_meta(r->s, &m);
		u64 committed = m.seq * PER_COMMIT;
		int n = store_account_transfers(r->s, &f, 0, xs,
						QUERY_LIMIT_MAX);
		RACE_CHECK(r, n >= 0 && (u64)n >= committed);
		RACE_CHECK(r, n % PER_COMMIT == 0);
		for (int k = 0; k < n; k++)
			RACE_CHECK(r, xs[k].id == (u128)k + 1);
		if (committed) {
			u128 id = committed;
			RACE_CHECK(r, store_get_transfers(r->s, &id, 1,
							  &item) == 0);
			RACE_CHECK(r, item.kind == LEDGER_COLD_TRANSFER);
		}
		r->reads++;
	}
	free(xs);
	return NULL;
}

static void test_readers_see_whole_commits_while_the_writer_runs(void **state)
{
	struct race r = {.s = open_store(dir_of(state), true)};
	struct store_batch *b = store_batch_new();
	pthread_t th;
	u64 id = 0;

	assert_int_equal(pthread_create(&th, NULL, reader, &r), 0);
	for (u32 c = 0; c < COMMITS; c++) {
		for (u32 k = 0; k < PER_COMMIT; k++) {
			id++;
			struct transfer t = xfer(id, 1, 2, id, 0);
			assert_int_equal(
				store_batch_transfer(b, &t, 0, NULL, NULL), 0);
		}
		commit(r.s, b, c + 1, id);
	}
	atomic_store(&r.done, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.bad, 0);
	assert_true(r.reads > 0);
	store_batch_free(b);
	store_close(r.s);
}

/* A crash (the process ends without store_close) loses the commits after
 * the last flush and nothing else: the store reopens at a whole commit,
 * its meta says which, and the data is exactly that commit's. The crash
 * runs in a fresh process (this binary, re-executed), since RocksDB's
 * background threads do not survive a fork. */
enum { CRASH_FLUSHED = 20, CRASH_COMMITS = 50, CRASH_PER_COMMIT = 100 };

static void crash_child(const char *dir)
{
	struct store *s = open_store(dir, true);
	struct store_batch *b = store_batch_new();
	char cp[300];
	const char *why = NULL;
	u64 id = 0;

	snprintf(cp, sizeof(cp), "%s-cp", dir);
	for (u32 c = 1; c <= CRASH_COMMITS; c++) {
		for (u32 k = 0; k < CRASH_PER_COMMIT; k++) {
			id++;
			struct transfer t = xfer(id, 1, 2, id, 0);
			if (store_batch_transfer(b, &t, 0, NULL, NULL))
				_exit(3);
		}
		if (store_commit(s, b, c, id, digest_a, &why))
			_exit(4);
		store_batch_reset(b);
		/* a checkpoint flushes: these commits are on disk */
		if (c == CRASH_FLUSHED && store_checkpoint(s, cp, &why))
			_exit(5);
	}
	_exit(0); /* no store_close: the memtables are lost */
}

static void test_a_crash_reopens_at_a_whole_commit(void **state)
{
	enum { N = CRASH_COMMITS * CRASH_PER_COMMIT };
	char live[300], exe[4096];
	struct store *s;
	struct store_meta m;
	struct ledger_cold_item *items = calloc(N, sizeof(*items));
	u128 *ids = calloc(N, sizeof(*ids));
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int status = 0;
	pid_t pid;

	assert_true(n > 0);
	exe[n] = '\0';
	path(live, sizeof(live), state, "live");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(exe, exe, "--crash-child", live, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	s = open_store(live, false);
	store_meta(s, &m);
	assert_true(m.seq >= CRASH_FLUSHED && m.seq <= CRASH_COMMITS);
	assert_int_equal(m.transfers, m.seq * CRASH_PER_COMMIT);
	assert_int_equal(m.last_timestamp, m.seq * CRASH_PER_COMMIT);
	for (u32 i = 0; i < N; i++)
		ids[i] = i + 1;
	assert_int_equal(store_get_transfers(s, ids, N, items), 0);
	for (u32 i = 0; i < N; i++)
		assert_int_equal(items[i].kind, i < m.transfers
							? LEDGER_COLD_TRANSFER
							: LEDGER_COLD_ABSENT);
	store_close(s);
	free(items);
	free(ids);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--crash-child") == 0)
		crash_child(argv[2]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_every_kind_round_trips_and_the_meta_counts_them,
			setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_batched_gets_mix_absent_failed_and_present, setup,
			tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_queries_equal_a_brute_force_reference, setup,
			tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_status_updates_keep_the_pending_set_exact, setup,
			tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_a_large_sorted_batch_keeps_each_keys_write_order,
			setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_checkpoint_and_reopen_answer_the_same, setup,
			tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_seq_and_timestamps_must_advance, setup,
			tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_unknown_version_and_missing_store_are_refused,
			setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_values_of_wrong_length_are_eio, setup,
			tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_stats_report_the_store,
						setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_readers_see_whole_commits_while_the_writer_runs,
			setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_a_crash_reopens_at_a_whole_commit, setup,
			tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
