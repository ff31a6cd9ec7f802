/*
 * test_engine_recovery.c - the engine's promises: what it acknowledged is
 * there after a reopen, with the same state digest, whether recovery
 * replays the whole journal or starts from a snapshot; timeouts expire
 * by a journaled pulse once the engine's clock (injected: stepped here,
 * never slept for) passes them; malformed requests are refused.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/logger.h"
#include "log/fsdir.h"

#include "tmpdir_fixture.h"

#include "banned.h"

static int setup(void **state)
{
	logger_set_level(LOG_WARN);
	return tmpdir_setup(state, "/tmp/tpw-engine-XXXXXX");
}

static int teardown(void **state)
{
	return tmpdir_teardown(state);
}

static struct engine *open_engine(const char *dir, u64 snapshot_every)
{
	struct engine *e = NULL;
	const char *err = NULL;
	struct engine_options o = {.data_dir = dir,
				   .snapshot_every_records = snapshot_every,
				   .quiet = true};
	int ret = engine_open(&e, &o, &err);
	if (ret < 0)
		fprintf(stderr, "engine_open: %s (%d)\n", err ? err : "?", ret);
	assert_int_equal(ret, 0);
	return e;
}

static void create_accounts(struct engine *e, u64 first_id, u32 n)
{
	struct account *a = calloc(n, sizeof(*a));
	u32 *res = calloc(n, sizeof(u32));
	for (u32 i = 0; i < n; i++) {
		a[i].id = first_id + i;
		a[i].ledger = 1;
		a[i].code = 7;
	}
	struct engine_request r = {.op = ENGINE_CREATE_ACCOUNTS,
				   .count = n,
				   .events = a,
				   .results = res};
	assert_int_equal(engine_execute(e, &r), 0);
	for (u32 i = 0; i < n; i++)
		assert_int_equal(res[i], 0);
	free(a);
	free(res);
}

/* n transfers among accounts 1..accounts, ids from first_id. */
static void create_transfers(struct engine *e, u64 first_id, u32 n,
			     u64 accounts, u16 flags, u32 timeout)
{
	struct transfer *t = calloc(n, sizeof(*t));
	u32 *res = calloc(n, sizeof(u32));
	for (u32 i = 0; i < n; i++) {
		u64 k = first_id + i;
		t[i].id = k;
		t[i].debit_account_id = 1 + k % accounts;
		t[i].credit_account_id = 1 + (k + 1) % accounts;
		t[i].amount = 1 + k % 97;
		t[i].ledger = 1;
		t[i].code = 1;
		t[i].flags = flags;
		t[i].timeout = timeout;
	}
	struct engine_request r = {.op = ENGINE_CREATE_TRANSFERS,
				   .count = n,
				   .events = t,
				   .results = res};
	assert_int_equal(engine_execute(e, &r), 0);
	for (u32 i = 0; i < n; i++)
		assert_int_equal(res[i], 0);
	free(t);
	free(res);
}

static void digest(struct engine *e, u8 out[32])
{
	const struct ledger *l = engine_read_begin(e);
	ledger_digest(l, out);
	assert_true(ledger_check_invariants(l));
	engine_read_end(e);
}

static void acknowledged_batches_survive_reopen_with_same_digest(void **state)
{
	struct fixture *f = *state;
	u8 before[32], after[32];
	struct account a;

	struct engine *e = open_engine(f->dir, 0);
	create_accounts(e, 1, 50);
	for (u32 b = 0; b < 20; b++)
		create_transfers(e, 1000 + b * 100, 100, 50, 0, 0);
	digest(e, before);
	const struct ledger *l = engine_read_begin(e);
	assert_int_equal(ledger_lookup_account(l, 3, &a), 0);
	engine_read_end(e);
	engine_close(e);

	e = open_engine(f->dir, 0);
	digest(e, after);
	assert_memory_equal(before, after, 32);
	struct account b2;
	l = engine_read_begin(e);
	assert_int_equal(ledger_lookup_account(l, 3, &b2), 0);
	engine_read_end(e);
	assert_memory_equal(&a, &b2, sizeof(a));
	/* And it goes on: new batches get later timestamps. */
	create_transfers(e, 900000, 10, 50, 0, 0);
	struct transfer t;
	l = engine_read_begin(e);
	assert_int_equal(ledger_lookup_transfer(l, 900000, &t), 0);
	assert_true(t.timestamp > a.timestamp);
	engine_read_end(e);
	engine_close(e);
}

static void recovery_from_snapshot_gives_same_digest(void **state)
{
	struct fixture *f = *state;
	u8 before[32], after[32];
	struct engine_stats st;

	struct engine *e = open_engine(f->dir, 1000);
	create_accounts(e, 1, 100);
	for (u32 b = 0; b < 15; b++)
		create_transfers(e, 10000 + b * 200, 200, 100, 0, 0);
	/* The snapshot child runs in the background: wait for it (bounded). */
	for (int i = 0; i < 200; i++) {
		engine_stats(e, &st);
		if (st.snapshots > 0)
			break;
		create_transfers(e, 500000 + (u64)i, 1, 100, 0, 0);
		usleep(20000);
	}
	assert_true(st.snapshots > 0);
	create_transfers(e, 800000, 300, 100, 0, 0); /* after the snapshot */
	digest(e, before);
	engine_close(e);

	e = open_engine(f->dir, 1000);
	engine_stats(e, &st);
	/* Only the tail after the snapshot was replayed. */
	assert_true(st.recovery_records < 20);
	digest(e, after);
	assert_memory_equal(before, after, 32);
	engine_close(e);
}

static struct engine *open_engine_at(const char *dir, struct step_clock *c)
{
	struct engine *e = NULL;
	const char *err = NULL;
	struct engine_options o = {
		.data_dir = dir,
		.quiet = true,
		.clock = {.now_ns = step_clock_now, .ctx = c}};
	assert_int_equal(engine_open(&e, &o, &err), 0);
	return e;
}

static enum pending_status pending_of(struct engine *e, u128 id)
{
	const struct ledger *l = engine_read_begin(e);
	enum pending_status ps = ledger_pending_status(l, id);
	engine_read_end(e);
	return ps;
}

#define SECOND_NS 1000000000ull

static void pending_timeout_expires_when_the_clock_passes_it(void **state)
{
	struct fixture *f = *state;
	const u64 t0 = 1700000000ull * SECOND_NS;
	struct step_clock c = {.now_ns = t0};

	struct engine *e = open_engine_at(f->dir, &c);
	create_accounts(e, 1, 2);
	create_transfers(e, 77, 1, 2, TRANSFER_PENDING, 1);
	/* Stamped by the stepped clock: t0 and a few ns after it. */
	const struct ledger *l = engine_read_begin(e);
	struct transfer t;
	assert_int_equal(ledger_lookup_transfer(l, 77, &t), 0);
	engine_read_end(e);
	assert_true(t.timestamp >= t0 && t.timestamp < t0 + 100);
	assert_int_equal(pending_of(e, 77), PENDING_PENDING);

	/* Just before the deadline, a committed group pulses nothing. */
	atomic_store(&c.now_ns, t.timestamp + SECOND_NS - 1);
	create_accounts(e, 10, 1);
	assert_int_equal(pending_of(e, 77), PENDING_PENDING);

	/* At it, the next group carries a pulse first: once the request is
	 * answered, the transfer has expired. */
	atomic_store(&c.now_ns, t.timestamp + SECOND_NS);
	create_accounts(e, 11, 1);
	assert_int_equal(pending_of(e, 77), PENDING_EXPIRED);
	struct account a;
	l = engine_read_begin(e);
	assert_int_equal(ledger_lookup_account(l, 1 + 77 % 2, &a), 0);
	assert_true(a.debits_pending == 0);
	engine_read_end(e);

	/* With no traffic at all, the applier's idle wake sees the clock
	 * past the deadline and the sequencer journals a pulse on its own
	 * (waited for, bounded: the wake is every 50 ms). */
	create_transfers(e, 78, 1, 2, TRANSFER_PENDING, 1);
	assert_int_equal(pending_of(e, 78), PENDING_PENDING);
	atomic_fetch_add(&c.now_ns, 2 * SECOND_NS);
	enum pending_status ps = PENDING_PENDING;
	for (int i = 0; i < 400 && ps != PENDING_EXPIRED; i++) {
		usleep(5000);
		ps = pending_of(e, 78);
	}
	assert_int_equal(ps, PENDING_EXPIRED);
	engine_close(e);

	/* Replay expires them at the same point, whatever the clock says. */
	atomic_store(&c.now_ns, t0);
	e = open_engine_at(f->dir, &c);
	assert_int_equal(pending_of(e, 77), PENDING_EXPIRED);
	assert_int_equal(pending_of(e, 78), PENDING_EXPIRED);
	engine_close(e);
}

static u64 timestamp_of(struct engine *e, u128 id)
{
	struct transfer t;
	const struct ledger *l = engine_read_begin(e);
	assert_int_equal(ledger_lookup_transfer(l, id, &t), 0);
	engine_read_end(e);
	return t.timestamp;
}

/* A node whose clock is behind the last journaled timestamp (a cluster
 * follower that took over from a writer with a faster clock, or a
 * restart after the clock was stepped back) stamps after it anyway: the
 * timestamps come from the state as journaled, not from the clock. */
static void
timestamps_stay_increasing_on_a_clock_behind_the_journal(void **state)
{
	struct fixture *f = *state;
	const u64 t0 = 1700000000ull * SECOND_NS;
	struct step_clock ahead = {.now_ns = t0 + 3600 * SECOND_NS};
	struct engine *e = open_engine_at(f->dir, &ahead);
	create_accounts(e, 1, 2);
	create_transfers(e, 10, 5, 2, 0, 0);
	u64 last = timestamp_of(e, 14);
	assert_true(last >= t0 + 3600 * SECOND_NS);
	engine_close(e);

	struct step_clock behind = {.now_ns = t0};
	e = open_engine_at(f->dir, &behind);
	create_transfers(e, 20, 3, 2, 0, 0);
	u64 prev = last;
	for (u64 id = 20; id < 23; id++) {
		u64 ts = timestamp_of(e, id);
		assert_true(ts > prev);
		assert_true(ts < last + SECOND_NS); /* not the clock's jump */
		prev = ts;
	}
	engine_close(e);
}

struct worker {
	struct engine *e;
	u64 first_id;
	int failures;
};

static void *submit_singles(void *arg)
{
	struct worker *w = arg;
	for (u32 i = 0; i < 200; i++) {
		struct transfer t = {.id = w->first_id + i,
				     .debit_account_id = 1,
				     .credit_account_id = 2,
				     .amount = 1,
				     .ledger = 1,
				     .code = 1};
		u32 res = 99;
		struct engine_request r = {.op = ENGINE_CREATE_TRANSFERS,
					   .count = 1,
					   .events = &t,
					   .results = &res};
		if (engine_execute(w->e, &r) != 0 || res != 0)
			w->failures++;
	}
	return NULL;
}

static void concurrent_submitters_all_commit(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	pthread_t th[8];
	struct worker w[8];

	create_accounts(e, 1, 2);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){.e = e,
				       .first_id = 1000000u * (u64)(i + 1)};
		pthread_create(&th[i], NULL, submit_singles, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	struct account a;
	const struct ledger *l = engine_read_begin(e);
	assert_int_equal(ledger_lookup_account(l, 1, &a), 0);
	engine_read_end(e);
	assert_true(a.debits_posted == 8 * 200);
	engine_close(e);
}

static void noop_done(struct engine_request *r)
{
	(void)r;
}

static void submit_refuses_malformed_requests(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	struct transfer t = {0};
	u32 res;
	struct engine_request r = {.op = ENGINE_CREATE_TRANSFERS,
				   .count = 0,
				   .events = &t,
				   .results = &res,
				   .done = noop_done};
	assert_int_equal(engine_submit(e, &r), -EINVAL);
	r.count = BATCH_EVENTS_MAX + 1;
	assert_int_equal(engine_submit(e, &r), -EINVAL);
	r.count = 1;
	r.op = 99;
	assert_int_equal(engine_submit(e, &r), -EINVAL);
	engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			acknowledged_batches_survive_reopen_with_same_digest,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			recovery_from_snapshot_gives_same_digest, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			pending_timeout_expires_when_the_clock_passes_it, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			concurrent_submitters_all_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(
			submit_refuses_malformed_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(
			timestamps_stay_increasing_on_a_clock_behind_the_journal,
			setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
