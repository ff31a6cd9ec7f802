/*
 * test_engine_expirer.c - the override expirer (engine/expirer.h): once
 * the engine's clock (stepped here) passes an override's end, one
 * policy_override_expired command is journaled for it, none for an
 * override ended early; an override that expired while the engine was
 * closed gets its entry at the next start, and a further start writes
 * none; the state read back from the journal has the same digest.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/command.h"
#include "core/pstate.h"
#include "engine/engine.h"
#include "engine/expirer.h"
#include "engine/logger.h"
#include "log/fsdir.h"

#include "tmpdir_fixture.h"

#include "banned.h"

#define SECOND_NS 1000000000ull
#define T0_S	  1800000000ull
/* Bounded waits for the expirer's thread: 10 ms steps. */
#define WAIT_STEPS 500

static int setup(void **state)
{
	logger_set_level(LOG_ERROR);
	return tmpdir_setup(state, "/tmp/tpw-expirer-XXXXXX");
}

static int teardown(void **state)
{
	return tmpdir_teardown(state);
}

struct running {
	struct engine *e;
	struct expirer *x;
};

static struct running start(const char *dir, struct step_clock *c)
{
	struct running r = {.x = expirer_new()};
	const char *err = NULL;
	assert_non_null(r.x);
	struct engine_options o = {
		.data_dir = dir,
		.quiet = true,
		.clock = {.now_ns = step_clock_now, .ctx = c},
		.pstate_changed = expirer_poke,
		.pstate_changed_ctx = r.x,
	};
	assert_int_equal(engine_open(&r.e, &o, &err), 0);
	assert_int_equal(expirer_start(r.x, r.e), 0);
	return r;
}

static void stop(struct running *r)
{
	expirer_free(r->x);
	engine_close(r->e);
}

/* One command (no events) through the engine; its outcome. */
static u32 command(struct engine *e, u16 kind, const void *ext, u32 n)
{
	u8 payload[16 + 1024];
	struct command_header h = {.kind = kind, .ext_bytes = n};
	u32 result = 99;

	memcpy(payload, &h, sizeof(h));
	memcpy(payload + 16, ext, n);
	struct engine_request req = {.op = ENGINE_COMMAND,
				     .payload_bytes = 16 + n,
				     .events = payload,
				     .results = &result};
	assert_int_equal(engine_execute(e, &req), 0);
	return result;
}

static u64 open_override(struct engine *e, const char *range, u32 duration_s)
{
	struct pstate_override_cmd c = {.mode = POLICY_OVERRIDE_ALLOW,
					.duration_s = duration_s};
	memcpy(c.platform, "android", 7);
	memcpy(c.range, range, strlen(range));
	memcpy(c.reason, "INC-7", 5);
	assert_int_equal(command(e, PSTATE_CMD_OVERRIDE, &c, sizeof(c)),
			 PSTATE_OK);
	engine_read_begin(e);
	u64 id = pstate_override_count(engine_pstate(e));
	engine_read_end(e);
	return id;
}

static u64 expired_at(struct engine *e, u64 id)
{
	struct pstate_override_info o;
	engine_read_begin(e);
	pstate_override_at(engine_pstate(e), id - 1, &o);
	engine_read_end(e);
	return o.expired_timestamp;
}

static u64 last_seq(struct engine *e)
{
	struct engine_stats s;
	engine_stats(e, &s);
	return s.last_seq;
}

static void pstate_digest_of(struct engine *e, u8 out[32])
{
	engine_read_begin(e);
	pstate_digest(engine_pstate(e), out);
	engine_read_end(e);
}

/* Wait (bounded) until override id has its expiry entry. */
static void wait_expired(struct engine *e, u64 id)
{
	struct timespec ten_ms = {0, 10000000};
	for (int i = 0; i < WAIT_STEPS && expired_at(e, id) == 0; i++)
		nanosleep(&ten_ms, NULL);
	assert_true(expired_at(e, id) != 0);
}

static void an_expiry_is_journaled_once_also_after_a_stop(void **state)
{
	struct fixture *f = *state;
	struct step_clock c = {.now_ns = T0_S * SECOND_NS};
	struct timespec settle = {0, 200000000};

	struct running r = start(f->dir, &c);
	u64 a = open_override(r.e, "3.9.x", 60);
	u64 ended = open_override(r.e, "3.8.x", 60);
	u64 later = open_override(r.e, "3.7.x", 600);
	struct pstate_override_end end = {.id = ended};
	assert_int_equal(
		command(r.e, PSTATE_CMD_OVERRIDE_END, &end, sizeof(end)),
		PSTATE_OK);
	/* Before the end: nothing, even when poked. */
	u64 seq = last_seq(r.e);
	expirer_poke(r.x);
	nanosleep(&settle, NULL);
	assert_int_equal(last_seq(r.e), seq);

	/* Past A's end: one entry, for A only. */
	atomic_store(&c.now_ns, (T0_S + 61) * SECOND_NS);
	expirer_poke(r.x);
	wait_expired(r.e, a);
	nanosleep(&settle, NULL);
	assert_int_equal(last_seq(r.e), seq + 1);
	assert_true(expired_at(r.e, a) >= (T0_S + 61) * SECOND_NS);
	assert_int_equal(expired_at(r.e, ended), 0);
	assert_int_equal(expired_at(r.e, later), 0);
	stop(&r);

	/* Closed past the third's end: its entry at the next start. */
	atomic_store(&c.now_ns, (T0_S + 700) * SECOND_NS);
	r = start(f->dir, &c);
	wait_expired(r.e, later);
	nanosleep(&settle, NULL);
	assert_int_equal(last_seq(r.e), seq + 2);
	assert_int_equal(expired_at(r.e, ended), 0);
	u8 before[32], after[32];
	pstate_digest_of(r.e, before);
	stop(&r);

	/* Once: another start writes none, and replays the same state. */
	atomic_store(&c.now_ns, (T0_S + 800) * SECOND_NS);
	r = start(f->dir, &c);
	nanosleep(&settle, NULL);
	assert_int_equal(last_seq(r.e), seq + 2);
	pstate_digest_of(r.e, after);
	assert_memory_equal(before, after, 32);
	stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			an_expiry_is_journaled_once_also_after_a_stop, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
