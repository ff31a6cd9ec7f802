/*
 * test_api_cdcevent.c - the CDC event format (api/cdcevent.h): accounts
 * created; transfers with both accounts' balances just after each one
 * within a batch (a plain transfer, a pending one, a partial post and a
 * void); failed events emit nothing; a pending transfer expired by a
 * pulse with the balances it released; a key event by its decoded view;
 * ids "<origin>/<seq>/<index>"; replay without emitting reaches the same
 * state, so a resumed encoder numbers the same events the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/cdcevent.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/ledger.h"
#include "core/state.h"
#include "log/journal.h"
#include "record_fixture.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define ORIGIN "tpwallet/00112233aabbccdd"
/* 2027-01-15T08:00:00Z */
#define T0 1800000000000000000ull
#define S  1000000000ull

static u8 rec[JOURNAL_HEADER_BYTES + 16 + 128 * 16];

/* A sealed record of type `type` holding payload[0..n). */
static struct journal_record record(u16 type, u64 seq, u64 ts,
				    const void *payload, size_t n)
{
	assert_true(JOURNAL_HEADER_BYTES + n <= sizeof(rec));
	record_fixture(rec, type, seq, ts, payload, n);
	return (struct journal_record){
		.type = type,
		.seq = seq,
		.timestamp = ts,
		.payload = rec + JOURNAL_HEADER_BYTES,
		.payload_bytes = (u32)n,
	};
}

/* The events of the last record, parsed. */
static json_t *got[16];
static u32 ngot;

static int keep(void *ctx, const struct cdc_event *ev)
{
	(void)ctx;
	json_error_t err;
	assert_true(ngot < 16);
	got[ngot] = json_loadb(ev->json, ev->json_bytes, 0, &err);
	assert_non_null(got[ngot]);
	/* The id and type in the struct are those in the JSON. */
	assert_string_equal(json_string_value(json_object_get(got[ngot], "id")),
			    ev->id);
	assert_string_equal(
		json_string_value(json_object_get(got[ngot], "type")),
		ev->type);
	ngot++;
	return 0;
}

static void forget(void)
{
	for (u32 i = 0; i < ngot; i++)
		json_decref(got[i]);
	ngot = 0;
}

static int feed(struct cdc_encoder *e, struct journal_record r, bool emit)
{
	forget();
	return cdc_encoder_record(e, &r, rec,
				  JOURNAL_HEADER_BYTES + r.payload_bytes,
				  emit ? keep : NULL, NULL);
}

static const char *str(json_t *o, const char *path)
{
	json_t *v = o;
	while (v && *path) {
		size_t n = strcspn(path, ".");
		char k[64];
		snprintf(k, sizeof(k), "%.*s", (int)n, path);
		v = json_object_get(v, k);
		path += n + (path[n] == '.');
	}
	assert_non_null(v);
	return json_string_value(v);
}

/* "dp/dpo/cp/cpo" of one side's balance in an event. */
static void balance_is(json_t *ev, const char *side, const char *want)
{
	char key[64], have[160];
	snprintf(key, sizeof(key), "%s", side);
	json_t *b = json_object_get(json_object_get(ev, key), "balance");
	assert_non_null(b);
	snprintf(have, sizeof(have), "%s/%s/%s/%s",
		 json_string_value(json_object_get(b, "debits_pending")),
		 json_string_value(json_object_get(b, "debits_posted")),
		 json_string_value(json_object_get(b, "credits_pending")),
		 json_string_value(json_object_get(b, "credits_posted")));
	assert_string_equal(have, want);
}

static struct cdc_encoder *encoder(void)
{
	struct cdc_encoder *e;
	struct state *st = state_new(&(struct ledger_options){0});
	assert_non_null(st);
	assert_int_equal(cdc_encoder_new(&e, st, ORIGIN), 0);
	return e;
}

static struct transfer xfer(u128 id, u128 dr, u128 cr, u128 amount, u16 flags)
{
	return (struct transfer){.id = id,
				 .debit_account_id = dr,
				 .credit_account_id = cr,
				 .amount = amount,
				 .ledger = 1,
				 .code = 1,
				 .flags = flags};
}

/* Accounts 1, 2, 3 at seq 1. */
static void three_accounts(struct cdc_encoder *e, bool emit)
{
	struct account a[3] = {0};
	for (u32 i = 0; i < 3; i++)
		a[i] = (struct account){.id = i + 1, .ledger = 1, .code = 7};
	assert_int_equal(
		feed(e, record(JOURNAL_CREATE_ACCOUNTS, 1, T0, a, sizeof(a)),
		     emit),
		emit ? 3 : 0);
}

/* seq 2: 1->2 100; pending 1->3 50 (timeout 1 s); 2->9 (no such
 * account: fails); post 20 of the pending one; 2->3 30. */
static struct journal_record batch(void)
{
	struct transfer t[5] = {
		xfer(10, 1, 2, 100, 0),
		xfer(11, 1, 3, 50, TRANSFER_PENDING),
		xfer(12, 2, 9, 5, 0),
		xfer(13, 0, 0, 20, TRANSFER_POST_PENDING_TRANSFER),
		xfer(14, 2, 3, 30, 0),
	};
	t[1].timeout = 1;
	t[3].pending_id = 11;
	t[3].ledger = 0;
	t[3].code = 0;
	return record(JOURNAL_CREATE_TRANSFERS, 2, T0 + S, t, sizeof(t));
}

static void accounts_are_created_events_with_stable_ids(void **state)
{
	(void)state;
	struct cdc_encoder *e = encoder();

	three_accounts(e, true);
	assert_int_equal(ngot, 3);
	assert_string_equal(str(got[0], "id"), ORIGIN "/1/0");
	assert_string_equal(str(got[2], "id"), ORIGIN "/1/2");
	assert_string_equal(str(got[0], "type"), "account.created");
	assert_string_equal(str(got[0], "origin"), ORIGIN);
	assert_string_equal(str(got[0], "seq"), "1");
	assert_string_equal(str(got[0], "timestamp_ns"), "1800000000000000000");
	assert_string_equal(str(got[0], "time"),
			    "2027-01-15T08:00:00.000000000Z");
	assert_string_equal(str(got[1], "account.id"), "2");
	/* Event i of 3 is stamped T0 - 3 + 1 + i. */
	assert_string_equal(str(got[1], "account.timestamp"),
			    "1799999999999999999");
	forget();
	cdc_encoder_free(e);
}

static void each_transfer_carries_the_balances_just_after_it(void **state)
{
	(void)state;
	struct cdc_encoder *e = encoder();

	three_accounts(e, false);
	assert_int_equal(feed(e, batch(), true), 4);
	/* The failed event (index 2 of the batch) emits nothing. */
	const char *ids[4] = {"10", "11", "13", "14"};
	for (u32 i = 0; i < 4; i++) {
		char want[64];
		snprintf(want, sizeof(want), ORIGIN "/2/%u", i);
		assert_string_equal(str(got[i], "id"), want);
		assert_string_equal(str(got[i], "type"), "transfer.created");
		assert_string_equal(str(got[i], "transfer.id"), ids[i]);
	}
	/* 1->2 100 */
	balance_is(got[0], "debit_account", "0/100/0/0");
	balance_is(got[0], "credit_account", "0/0/0/100");
	assert_string_equal(str(got[0], "debit_account.account_id"), "1");
	/* pending 1->3 50 */
	balance_is(got[1], "debit_account", "50/100/0/0");
	balance_is(got[1], "credit_account", "0/0/50/0");
	assert_string_equal(str(got[1], "transfer.pending_status"), "pending");
	/* post 20 of it: the pending 50 released, 20 posted; the stored
	 * post names the pending transfer's accounts */
	balance_is(got[2], "debit_account", "0/120/0/0");
	balance_is(got[2], "credit_account", "0/0/0/20");
	assert_string_equal(str(got[2], "transfer.debit_account_id"), "1");
	assert_string_equal(str(got[2], "transfer.amount"), "20");
	/* 2->3 30 */
	balance_is(got[3], "debit_account", "0/30/0/100");
	balance_is(got[3], "credit_account", "0/0/0/50");
	forget();
	cdc_encoder_free(e);
}

static void a_pulse_past_the_timeout_emits_the_expiry(void **state)
{
	(void)state;
	struct cdc_encoder *e = encoder();
	struct transfer t = xfer(20, 1, 2, 70, TRANSFER_PENDING);

	three_accounts(e, false);
	t.timeout = 1;
	assert_int_equal(
		feed(e,
		     record(JOURNAL_CREATE_TRANSFERS, 2, T0 + S, &t, sizeof(t)),
		     true),
		1);
	balance_is(got[0], "debit_account", "70/0/0/0");
	/* A pulse before the deadline expires nothing: no event. */
	assert_int_equal(feed(e,
			      record(JOURNAL_PULSE, 3, T0 + S + S / 2, NULL, 0),
			      true),
			 0);
	assert_int_equal(
		feed(e, record(JOURNAL_PULSE, 4, T0 + 3 * S, NULL, 0), true),
		1);
	assert_string_equal(str(got[0], "type"), "transfer.expired");
	assert_string_equal(str(got[0], "id"), ORIGIN "/4/0");
	assert_string_equal(str(got[0], "transfer.id"), "20");
	assert_string_equal(str(got[0], "transfer.pending_status"), "expired");
	balance_is(got[0], "debit_account", "0/0/0/0");
	balance_is(got[0], "credit_account", "0/0/0/0");
	/* As of the expiry: the record's time, not the transfer's. */
	assert_string_equal(str(got[0], "debit_account.balance.timestamp"),
			    "1800000003000000000");
	forget();
	cdc_encoder_free(e);
}

static void a_key_event_is_its_decoded_view(void **state)
{
	(void)state;
	struct cdc_encoder *e = encoder();
	u8 p[16 + sizeof(struct auth_key_event)] = {0};
	struct command_header h = {.kind = AUTH_CMD_KEY,
				   .ext_bytes = sizeof(struct auth_key_event)};
	struct auth_key_event k = {0};

	memcpy(k.kid, "k2", 2);
	k.kind = AUTH_KEY_RETIRED;
	k.not_after = 1800000000;
	memcpy(p, &h, sizeof(h));
	memcpy(p + 16, &k, sizeof(k));
	assert_int_equal(
		feed(e, record(JOURNAL_COMMAND, 1, T0, p, sizeof(p)), true), 1);
	assert_string_equal(str(got[0], "type"), "command.key");
	assert_string_equal(str(got[0], "command"), "key");
	assert_string_equal(str(got[0], "entry.summary"),
			    "server key k2 retired");
	assert_string_equal(str(got[0], "entry.fields.not_after_s"),
			    "1800000000");
	forget();
	cdc_encoder_free(e);
}

static void
replay_without_emitting_then_resume_gives_the_same_events(void **state)
{
	(void)state;
	struct cdc_encoder *a = encoder(), *b = encoder();
	u8 da[32], db[32];

	three_accounts(a, true);
	assert_int_equal(feed(a, batch(), true), 4);
	char *first = json_dumps(got[3], JSON_SORT_KEYS);
	three_accounts(b, false);
	assert_int_equal(feed(b, batch(), true), 4);
	char *second = json_dumps(got[3], JSON_SORT_KEYS);
	assert_string_equal(first, second);
	free(first);
	free(second);
	state_digest(cdc_encoder_state(a), da);
	state_digest(cdc_encoder_state(b), db);
	assert_memory_equal(da, db, 32);
	forget();
	cdc_encoder_free(a);
	cdc_encoder_free(b);
}

static void a_bad_record_is_refused(void **state)
{
	(void)state;
	struct cdc_encoder *e = encoder();
	u8 junk[128] = {0};

	/* A command of no kind. */
	assert_int_equal(
		feed(e, record(JOURNAL_COMMAND, 1, T0, junk, 128), true),
		-EBADMSG);
	assert_int_equal(ngot, 0);
	cdc_encoder_free(e);
}

int main(void)
{
	ledger_set_hash_key(0x1234);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accounts_are_created_events_with_stable_ids),
		cmocka_unit_test(
			each_transfer_carries_the_balances_just_after_it),
		cmocka_unit_test(a_pulse_past_the_timeout_emits_the_expiry),
		cmocka_unit_test(a_key_event_is_its_decoded_view),
		cmocka_unit_test(
			replay_without_emitting_then_resume_gives_the_same_events),
		cmocka_unit_test(a_bad_record_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
