/*
 * test_core_state.c - the state machine as one module (src/core/state.h):
 * records of every type apply to the part they name, a snapshot of the
 * container reads back to the same digest and the same answers, a cut or
 * lengthened container is refused, and state_check refuses what
 * state_apply would refuse as malformed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/auth.h"
#include "core/command.h"
#include "core/state.h"

#include <errno.h>

#include "banned.h"

#define TS0 1000000000000ull

struct bytes {
	u8 *p;
	size_t len;
};

static int to_bytes(void *ctx, const void *buf, size_t len)
{
	struct bytes *b = ctx;
	u8 *p = realloc(b->p, b->len + len);
	if (!p)
		return -ENOMEM;
	memcpy(p + b->len, buf, len);
	b->p = p;
	b->len += len;
	return 0;
}

/* Register a principal (id all `id`) by a PRINCIPAL command; its
 * outcome. */
static u32 add_principal(struct state *s, u8 id, const char *name, u64 ts)
{
	u8 rec[16 + sizeof(struct auth_principal)] = {0};
	struct auth_principal p = {.pub = {id}};
	struct command_header h = {.kind = AUTH_CMD_PRINCIPAL,
				   .ext_bytes = sizeof(p)};
	u32 out = 99;

	memset(p.id, id, sizeof(p.id));
	memcpy(p.name, name, strlen(name));
	memcpy(rec, &h, sizeof(h));
	memcpy(rec + 16, &p, sizeof(p));
	assert_int_equal(
		state_apply(s, STATE_COMMAND, ts, rec, sizeof(rec), &out), 0);
	return out;
}

/* Two accounts with an owner, a principal, and a pending transfer of 5
 * between them that times out 10 s after TS0 + 3. */
static struct state *populated(void)
{
	struct state *s = state_new(NULL);
	u32 results[2];
	u8 cmd[16 + 32 + 2 * 128] = {0};
	struct command_header h = {
		.kind = AUTH_CMD_ACCOUNTS_OWNED, .ext_bytes = 32, .count = 2};
	struct account a[2] = {{.id = 1, .ledger = 1, .code = 1},
			       {.id = 2, .ledger = 1, .code = 1}};

	assert_non_null(s);
	memcpy(cmd, &h, sizeof(h));
	memset(cmd + 16, 9, 32); /* the owner */
	memcpy(cmd + 48, a, sizeof(a));
	assert_int_equal(state_apply(s, STATE_COMMAND, TS0 + 1, cmd,
				     sizeof(cmd), results),
			 0);
	assert_int_equal(results[0], 0);
	assert_int_equal(results[1], 0);

	assert_int_equal(add_principal(s, 4, "bob", TS0 + 2), AUTH_OK);

	struct transfer t = {.id = 10,
			     .debit_account_id = 1,
			     .credit_account_id = 2,
			     .amount = 5,
			     .ledger = 1,
			     .code = 1,
			     .flags = TRANSFER_PENDING,
			     .timeout = 10};
	assert_int_equal(state_apply(s, STATE_CREATE_TRANSFERS, TS0 + 3, &t,
				     sizeof(t), results),
			 0);
	assert_int_equal(results[0], 0);
	return s;
}

static void records_apply_to_their_parts(void **unused)
{
	(void)unused;
	struct state *s = populated();
	u8 owner[AUTH_ID_BYTES];
	struct transfer t;

	assert_true(auth_owner_get(state_auth(s), 2, owner));
	assert_int_equal(owner[0], 9);
	assert_int_equal(auth_principal_count(state_auth(s)), 1);
	assert_int_equal(ledger_lookup_transfer(state_ledger(s), 10, &t), 0);
	assert_int_equal(state_last_timestamp(s), TS0 + 3);
	u64 deadline = TS0 + 3 + 10 * 1000000000ull;
	assert_int_equal(state_next_expiry(s), deadline);
	/* A pulse before the deadline expires nothing; one at it does. */
	assert_int_equal(
		state_apply(s, STATE_PULSE, deadline - 1, NULL, 0, NULL), 0);
	assert_int_equal(state_next_expiry(s), deadline);
	assert_int_equal(state_apply(s, STATE_PULSE, deadline, NULL, 0, NULL),
			 0);
	assert_int_equal(state_next_expiry(s), 0);
	state_free(s);
}

static void snapshot_reads_back_to_the_same_digest(void **unused)
{
	(void)unused;
	struct state *s = populated();
	struct bytes b = {0};
	u8 d1[32], d2[32], d3[32];

	assert_int_equal(state_snapshot_write(s, to_bytes, &b), 0);
	struct state *r = state_snapshot_read(b.p, b.len);
	assert_non_null(r);
	state_digest(s, d1);
	state_digest(r, d2);
	assert_memory_equal(d1, d2, 32);
	assert_int_equal(state_next_expiry(r), state_next_expiry(s));
	assert_int_equal(auth_principal_count(state_auth(r)), 1);
	/* The digest covers every part: one more principal changes it. */
	assert_int_equal(add_principal(r, 6, "carol", TS0 + 4), AUTH_OK);
	state_digest(r, d3);
	assert_memory_not_equal(d1, d3, 32);
	state_free(r);
	state_free(s);
	free(b.p);
}

static void cut_or_lengthened_snapshot_is_refused(void **unused)
{
	(void)unused;
	struct state *s = populated();
	struct bytes b = {0};
	u64 n;

	assert_int_equal(state_snapshot_write(s, to_bytes, &b), 0);
	/* Cut inside each length field and each part. */
	memcpy(&n, b.p, 8);
	const size_t cuts[] = {
		0, 7, 8, 8 + (size_t)n - 1, 8 + (size_t)n + 4, b.len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		assert_null(state_snapshot_read(b.p, cuts[i]));
	/* A first length that runs past the end. */
	u8 *bad = malloc(b.len);
	assert_non_null(bad);
	memcpy(bad, b.p, b.len);
	u64 huge = b.len;
	memcpy(bad, &huge, 8);
	assert_null(state_snapshot_read(bad, b.len));
	free(bad);
	state_free(s);
	free(b.p);
}

static void check_refuses_what_apply_refuses(void **unused)
{
	(void)unused;
	u8 rec[16 + 128] = {0};
	u32 events = 99;
	struct command_header h = {.kind = AUTH_CMD_PRINCIPAL,
				   .ext_bytes = 128};

	assert_int_equal(state_check(STATE_PULSE, NULL, 0, &events), 0);
	assert_int_equal(events, 0);
	assert_int_equal(state_check(STATE_PULSE, rec, 128, &events), -EBADMSG);
	assert_int_equal(state_check(STATE_CREATE_ACCOUNTS, rec, 128, &events),
			 0);
	assert_int_equal(events, 1);
	assert_int_equal(state_check(STATE_CREATE_ACCOUNTS, rec, 0, &events),
			 -EBADMSG);
	assert_int_equal(state_check(STATE_CREATE_TRANSFERS, rec, 100, &events),
			 -EBADMSG);
	assert_int_equal(state_check(9, rec, 128, &events), -EBADMSG);
	memcpy(rec, &h, sizeof(h));
	assert_int_equal(state_check(STATE_COMMAND, rec, sizeof(rec), &events),
			 0);
	assert_int_equal(events, 0);
	h.kind = 7; /* no such kind */
	memcpy(rec, &h, sizeof(h));
	assert_int_equal(state_check(STATE_COMMAND, rec, sizeof(rec), &events),
			 -EBADMSG);
	struct state *s = state_new(NULL);
	u32 out;
	assert_int_equal(
		state_apply(s, STATE_COMMAND, TS0, rec, sizeof(rec), &out),
		-EBADMSG);
	assert_int_equal(state_apply(s, 9, TS0, rec, 128, &out), -EBADMSG);
	state_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_apply_to_their_parts),
		cmocka_unit_test(snapshot_reads_back_to_the_same_digest),
		cmocka_unit_test(cut_or_lengthened_snapshot_is_refused),
		cmocka_unit_test(check_refuses_what_apply_refuses),
	};
	ledger_set_hash_key(0x0123456789abcdefull);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
