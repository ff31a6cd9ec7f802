/*
 * test_core_ledger_results.c - every create_accounts/create_transfers
 * result code provoked on purpose, precedence between pairs of errors,
 * and the ledger's semantics: linked-chain rollback, two-phase transfers
 * and expiry, balancing and closing transfers, history and transfer
 * queries, snapshots (round trip and hostile input) and invariants.
 *
 * Each result code asserted goes through EXPECT_*, which marks it seen;
 * the last test fails if any code of either table was never provoked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/ledger.h"
#include "banned.h"

static bool seen_account[CREATE_ACCOUNT_RESULT_COUNT];
static bool seen_transfer[CREATE_TRANSFER_RESULT_COUNT];

/* A ledger and its clock: each batch gets fresh, increasing timestamps. */
struct ctx {
	struct ledger *l;
	u64 ts;
	u128 next_id; /* for random_workload */
};

static struct ctx ctx_new(void)
{
	struct ctx c = {
		.l = ledger_new(NULL), .ts = 1000000000000ull, .next_id = 1000};
	assert_non_null(c.l);
	return c;
}

static void ctx_free(struct ctx *c)
{
	assert_true(ledger_check_invariants(c->l));
	ledger_free(c->l);
}

static void accounts(struct ctx *c, const struct account *a, u32 n, u32 *r)
{
	c->ts += n + 1000;
	assert_int_equal(ledger_create_accounts(c->l, a, n, c->ts, r), 0);
	for (u32 i = 0; i < n; i++)
		seen_account[r[i]] = true;
}

static void transfers(struct ctx *c, const struct transfer *t, u32 n, u32 *r)
{
	c->ts += n + 1000;
	assert_int_equal(ledger_create_transfers(c->l, t, n, c->ts, r), 0);
	for (u32 i = 0; i < n; i++)
		seen_transfer[r[i]] = true;
}

static u32 account1(struct ctx *c, const struct account *a)
{
	u32 r;
	accounts(c, a, 1, &r);
	return r;
}

static u32 transfer1(struct ctx *c, const struct transfer *t)
{
	u32 r;
	transfers(c, t, 1, &r);
	return r;
}

#define EXPECT_A(c, a, code)                                                   \
	assert_string_equal(create_account_result_name(account1((c), (a))),    \
			    create_account_result_name(CREATE_ACCOUNT_##code))
#define EXPECT_T(c, t, code)                                                   \
	assert_string_equal(                                                   \
		create_transfer_result_name(transfer1((c), (t))),              \
		create_transfer_result_name(CREATE_TRANSFER_##code))

static struct account A(u128 id, u32 ledger, u16 flags) {
	struct account a;
	memset(&a, 0, sizeof(a));
	a.id = id;
	a.ledger = ledger;
	a.code = 10;
	a.flags = flags;
	return a;
}

static struct transfer
T(u128 id, u128 dr, u128 cr, u128 amount) {
	struct transfer t;
	memset(&t, 0, sizeof(t));
	t.id = id;
	t.debit_account_id = dr;
	t.credit_account_id = cr;
	t.amount = amount;
	t.ledger = 1;
	t.code = 1;
	return t;
}

static struct transfer
P(u128 id, u128 dr, u128 cr, u128 amount, u32 timeout) {
	struct transfer t = T(id, dr, cr, amount);
	t.flags = TRANSFER_PENDING;
	t.timeout = timeout;
	return t;
}

static struct transfer
PV(u128 id, u128 pending_id, u16 flag, u128 amount) {
	struct transfer t;
	memset(&t, 0, sizeof(t));
	t.id = id;
	t.pending_id = pending_id;
	t.flags = flag;
	t.amount = amount;
	return t;
}

static struct account
get_account(struct ctx *c, u128 id)
{
	struct account a;
	assert_int_equal(ledger_lookup_account(c->l, id, &a), 0);
	return a;
}

/* Accounts used by most transfer tests:
 *   1, 2  ledger 1, no flags          3  ledger 2
 *   4     ledger 1, debits_must_not_exceed_credits
 *   5     ledger 1, credits_must_not_exceed_debits
 *   6     ledger 1, history            7  ledger 1, closed */
static struct ctx setup(void)
{
	struct ctx c = ctx_new();
	struct account a[7] = {
		A(1, 1, 0),
		A(2, 1, 0),
		A(3, 2, 0),
		A(4, 1, ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS),
		A(5, 1, ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS),
		A(6, 1, ACCOUNT_HISTORY),
		A(7, 1, ACCOUNT_CLOSED),
	};
	u32 r[7];
	accounts(&c, a, 7, r);
	for (int i = 0; i < 7; i++)
		assert_int_equal(r[i], CREATE_ACCOUNT_ok);
	return c;
}

/* ------------------------------------------------------------------ */
/* create_accounts: every code.                                        */

static void test_every_create_account_result_code_is_reachable(void **state)
{
	(void)state;
	struct ctx c = ctx_new();
	struct account a = A(100, 1, 0);

	EXPECT_A(&c, &a, ok);
	EXPECT_A(&c, &a, exists);

	a = A(101, 1, 0);
	a.timestamp = 5;
	EXPECT_A(&c, &a, timestamp_must_be_zero);
	a = A(101, 1, 0);
	a.reserved = 1;
	EXPECT_A(&c, &a, reserved_field);
	a = A(101, 1, 1u << 4); /* TigerBeetle's `imported` is reserved here */
	EXPECT_A(&c, &a, reserved_flag);
	a = A(101, 1, 1u << 9);
	EXPECT_A(&c, &a, reserved_flag);
	a = A(0, 1, 0);
	EXPECT_A(&c, &a, id_must_not_be_zero);
	a = A(U128_MAX, 1, 0);
	EXPECT_A(&c, &a, id_must_not_be_int_max);

	a = A(100, 1, ACCOUNT_HISTORY);
	EXPECT_A(&c, &a, exists_with_different_flags);
	a = A(100, 1, 0);
	a.user_data_128 = 1;
	EXPECT_A(&c, &a, exists_with_different_user_data_128);
	a = A(100, 1, 0);
	a.user_data_64 = 1;
	EXPECT_A(&c, &a, exists_with_different_user_data_64);
	a = A(100, 1, 0);
	a.user_data_32 = 1;
	EXPECT_A(&c, &a, exists_with_different_user_data_32);
	a = A(100, 2, 0);
	EXPECT_A(&c, &a, exists_with_different_ledger);
	a = A(100, 1, 0);
	a.code = 11;
	EXPECT_A(&c, &a, exists_with_different_code);

	a = A(101, 1,
	      ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS |
		      ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS);
	EXPECT_A(&c, &a, flags_are_mutually_exclusive);
	a = A(101, 1, 0);
	a.debits_pending = 1;
	EXPECT_A(&c, &a, debits_pending_must_be_zero);
	a = A(101, 1, 0);
	a.debits_posted = 1;
	EXPECT_A(&c, &a, debits_posted_must_be_zero);
	a = A(101, 1, 0);
	a.credits_pending = 1;
	EXPECT_A(&c, &a, credits_pending_must_be_zero);
	a = A(101, 1, 0);
	a.credits_posted = 1;
	EXPECT_A(&c, &a, credits_posted_must_be_zero);
	a = A(101, 0, 0);
	EXPECT_A(&c, &a, ledger_must_not_be_zero);
	a = A(101, 1, 0);
	a.code = 0;
	EXPECT_A(&c, &a, code_must_not_be_zero);

	/* A linked last event leaves its chain open. */
	a = A(101, 1, ACCOUNT_LINKED);
	EXPECT_A(&c, &a, linked_event_chain_open);

	/* One bad account fails its whole chain and nothing is created. */
	struct account ch[3] = {A(102, 1, ACCOUNT_LINKED),
				A(103, 1, ACCOUNT_LINKED), A(104, 0, 0)};
	u32 r[3];
	accounts(&c, ch, 3, r);
	assert_int_equal(r[0], CREATE_ACCOUNT_linked_event_failed);
	assert_int_equal(r[1], CREATE_ACCOUNT_linked_event_failed);
	assert_int_equal(r[2], CREATE_ACCOUNT_ledger_must_not_be_zero);
	struct account out;
	assert_int_equal(ledger_lookup_account(c.l, 102, &out), -ENOENT);
	assert_int_equal(ledger_lookup_account(c.l, 103, &out), -ENOENT);
	/* The ids are free again. */
	a = A(102, 1, 0);
	EXPECT_A(&c, &a, ok);
	ctx_free(&c);
}

static void test_create_account_precedence_first_listed_error_wins(void **state)
{
	(void)state;
	struct ctx c = ctx_new();
	struct account a;

	a = A(1, 0, 1u << 12);
	a.timestamp = 1;
	a.reserved = 1;
	EXPECT_A(&c, &a, timestamp_must_be_zero); /* over reserved_field */
	a = A(0, 1, 1u << 12);
	a.reserved = 1;
	EXPECT_A(&c, &a, reserved_field); /* over reserved_flag */
	a = A(0, 1, 1u << 12);
	EXPECT_A(&c, &a, reserved_flag); /* over id_must_not_be_zero */

	a = A(1, 1, 0);
	EXPECT_A(&c, &a, ok);
	/* exists_* come before the field checks of a new account. */
	a = A(1, 0,
	      ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS |
		      ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS);
	a.debits_posted = 5;
	EXPECT_A(&c, &a, exists_with_different_flags);
	a = A(1, 2, 0);
	a.user_data_32 = 9;
	EXPECT_A(&c, &a, exists_with_different_user_data_32); /* over ledger */
	a = A(1, 1, 0);
	a.credits_posted = 5;
	EXPECT_A(&c, &a, exists); /* balances are not compared */

	a = A(2, 0,
	      ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS |
		      ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS);
	a.debits_pending = 1;
	EXPECT_A(&c, &a, flags_are_mutually_exclusive);
	a = A(2, 0, 0);
	a.code = 0;
	a.credits_pending = 1;
	a.credits_posted = 1;
	EXPECT_A(&c, &a, credits_pending_must_be_zero);
	a = A(2, 0, 0);
	a.code = 0;
	EXPECT_A(&c, &a, ledger_must_not_be_zero); /* over code */

	/* linked_event_chain_open beats the event's own error. */
	a = A(0, 0, ACCOUNT_LINKED);
	EXPECT_A(&c, &a, linked_event_chain_open);
	ctx_free(&c);
}

/* ------------------------------------------------------------------ */
/* create_transfers: every code.                                       */

static void test_transfer_validation_codes_are_reachable(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;

	t = T(10, 1, 2, 5);
	EXPECT_T(&c, &t, ok);
	t = T(11, 1, 2, 5);
	t.timestamp = 1;
	EXPECT_T(&c, &t, timestamp_must_be_zero);
	t = T(11, 1, 2, 5);
	t.flags = 1u << 8; /* TigerBeetle's `imported` is reserved here */
	EXPECT_T(&c, &t, reserved_flag);
	t = T(0, 1, 2, 5);
	EXPECT_T(&c, &t, id_must_not_be_zero);
	t = T(U128_MAX, 1, 2, 5);
	EXPECT_T(&c, &t, id_must_not_be_int_max);

	t = T(11, 1, 2, 5);
	t.flags = TRANSFER_PENDING | TRANSFER_VOID_PENDING_TRANSFER;
	EXPECT_T(&c, &t, flags_are_mutually_exclusive);
	t.flags =
		TRANSFER_POST_PENDING_TRANSFER | TRANSFER_VOID_PENDING_TRANSFER;
	EXPECT_T(&c, &t, flags_are_mutually_exclusive);
	t.flags = TRANSFER_POST_PENDING_TRANSFER | TRANSFER_BALANCING_DEBIT;
	EXPECT_T(&c, &t, flags_are_mutually_exclusive);
	t.flags = TRANSFER_VOID_PENDING_TRANSFER | TRANSFER_CLOSING_CREDIT;
	EXPECT_T(&c, &t, flags_are_mutually_exclusive);

	t = T(11, 0, 2, 5);
	EXPECT_T(&c, &t, debit_account_id_must_not_be_zero);
	t = T(11, U128_MAX, 2, 5);
	EXPECT_T(&c, &t, debit_account_id_must_not_be_int_max);
	t = T(11, 1, 0, 5);
	EXPECT_T(&c, &t, credit_account_id_must_not_be_zero);
	t = T(11, 1, U128_MAX, 5);
	EXPECT_T(&c, &t, credit_account_id_must_not_be_int_max);
	t = T(11, 1, 1, 5);
	EXPECT_T(&c, &t, accounts_must_be_different);
	t = T(11, 1, 2, 5);
	t.pending_id = 10;
	EXPECT_T(&c, &t, pending_id_must_be_zero);
	t = PV(11, 0, TRANSFER_POST_PENDING_TRANSFER, 5);
	EXPECT_T(&c, &t, pending_id_must_not_be_zero);
	t = PV(11, U128_MAX, TRANSFER_VOID_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, pending_id_must_not_be_int_max);
	t = PV(11, 11, TRANSFER_POST_PENDING_TRANSFER, 5);
	EXPECT_T(&c, &t, pending_id_must_be_different);
	t = T(11, 1, 2, 5);
	t.timeout = 3;
	EXPECT_T(&c, &t, timeout_reserved_for_pending_transfer);
	t = T(11, 1, 2, 5);
	t.flags = TRANSFER_CLOSING_DEBIT;
	EXPECT_T(&c, &t, closing_transfer_must_be_pending);
	t = T(11, 1, 2, 5);
	t.ledger = 0;
	EXPECT_T(&c, &t, ledger_must_not_be_zero);
	t = T(11, 1, 2, 5);
	t.code = 0;
	EXPECT_T(&c, &t, code_must_not_be_zero);
	t = T(11, 1, 3, 5);
	EXPECT_T(&c, &t, accounts_must_have_the_same_ledger);
	t = T(11, 1, 2, 5);
	t.ledger = 2;
	EXPECT_T(&c, &t, transfer_must_have_the_same_ledger_as_accounts);
	/* None of these burnt id 11: none is transient. */
	t = T(11, 1, 2, 5);
	EXPECT_T(&c, &t, ok);
	ctx_free(&c);
}

static void test_transfer_exists_codes_compare_fields_in_order(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t, base;

	base = T(20, 1, 2, 5);
	base.user_data_128 = 7;
	base.user_data_64 = 8;
	base.user_data_32 = 9;
	EXPECT_T(&c, &base, ok);
	EXPECT_T(&c, &base, exists);

	t = base;
	t.flags = TRANSFER_LINKED;
	EXPECT_T(&c, &t, linked_event_chain_open);
	t = base;
	t.flags = TRANSFER_BALANCING_DEBIT;
	EXPECT_T(&c, &t, exists_with_different_flags);
	t = base;
	t.debit_account_id = 4;
	EXPECT_T(&c, &t, exists_with_different_debit_account_id);
	t = base;
	t.credit_account_id = 4;
	EXPECT_T(&c, &t, exists_with_different_credit_account_id);
	t = base;
	t.amount = 6;
	EXPECT_T(&c, &t, exists_with_different_amount);
	t = base;
	t.user_data_128 = 1;
	EXPECT_T(&c, &t, exists_with_different_user_data_128);
	t = base;
	t.user_data_64 = 1;
	EXPECT_T(&c, &t, exists_with_different_user_data_64);
	t = base;
	t.user_data_32 = 1;
	EXPECT_T(&c, &t, exists_with_different_user_data_32);
	t = base;
	t.ledger = 2;
	EXPECT_T(&c, &t, exists_with_different_ledger);
	t = base;
	t.code = 2;
	EXPECT_T(&c, &t, exists_with_different_code);

	/* pending_id and timeout: two pendings and a post of the first. */
	t = P(21, 1, 2, 5, 100);
	EXPECT_T(&c, &t, ok);
	t = P(22, 1, 2, 5, 0);
	EXPECT_T(&c, &t, ok);
	t = P(21, 1, 2, 5, 200);
	EXPECT_T(&c, &t, exists_with_different_timeout);
	t = PV(23, 21, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, ok);
	t = PV(23, 22, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, exists_with_different_pending_id);
	/* A full post is `exists` for any amount >= the pending amount, and
	 * zero optional fields match what was filled in. */
	t = PV(23, 21, TRANSFER_POST_PENDING_TRANSFER, 5);
	EXPECT_T(&c, &t, exists);
	t = PV(23, 21, TRANSFER_POST_PENDING_TRANSFER, 4);
	EXPECT_T(&c, &t, exists_with_different_amount);
	t = PV(23, 21, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	t.debit_account_id = 1;
	t.ledger = 1;
	EXPECT_T(&c, &t, exists);
	/* A void retried with amount 0 or the pending amount is `exists`. */
	t = PV(24, 22, TRANSFER_VOID_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(24, 22, TRANSFER_VOID_PENDING_TRANSFER, 5);
	EXPECT_T(&c, &t, exists);
	ctx_free(&c);
}

static void test_transient_errors_burn_the_id(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;

	t = T(30, 99, 2, 5);
	EXPECT_T(&c, &t, debit_account_not_found);
	t = T(30, 1, 2, 5); /* now valid, but the id is burnt */
	EXPECT_T(&c, &t, id_already_failed);
	t = T(31, 1, 99, 5);
	EXPECT_T(&c, &t, credit_account_not_found);
	EXPECT_T(&c, &t, id_already_failed);
	t = PV(32, 999, TRANSFER_POST_PENDING_TRANSFER, 1);
	EXPECT_T(&c, &t, pending_transfer_not_found);
	EXPECT_T(&c, &t, id_already_failed);
	t = T(33, 4, 2, 1);
	EXPECT_T(&c, &t, exceeds_credits);
	EXPECT_T(&c, &t, id_already_failed);
	t = T(34, 1, 5, 1);
	EXPECT_T(&c, &t, exceeds_debits);
	EXPECT_T(&c, &t, id_already_failed);
	t = T(35, 7, 2, 1);
	EXPECT_T(&c, &t, debit_account_already_closed);
	EXPECT_T(&c, &t, id_already_failed);
	t = T(36, 1, 7, 1);
	EXPECT_T(&c, &t, credit_account_already_closed);
	EXPECT_T(&c, &t, id_already_failed);
	/* A non-transient error does not burn the id. */
	t = T(37, 1, 1, 1);
	EXPECT_T(&c, &t, accounts_must_be_different);
	t = T(37, 1, 2, 1);
	EXPECT_T(&c, &t, ok);
	/* Transient failure inside a chain: the id stays burnt although the
	 * chain rolled back. */
	struct transfer ch[2] = {T(38, 1, 2, 1), T(39, 4, 2, 1)};
	ch[0].flags = TRANSFER_LINKED;
	u32 r[2];
	transfers(&c, ch, 2, r);
	assert_int_equal(r[0], CREATE_TRANSFER_linked_event_failed);
	assert_int_equal(r[1], CREATE_TRANSFER_exceeds_credits);
	t = T(39, 1, 2, 1);
	EXPECT_T(&c, &t, id_already_failed);
	t = T(38, 1, 2, 1);
	EXPECT_T(&c, &t, ok);
	ctx_free(&c);
}

static void test_pending_transfer_codes_are_reachable(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;

	t = T(40, 1, 2, 5);
	EXPECT_T(&c, &t, ok);
	t = P(41, 1, 2, 10, 0);
	t.user_data_64 = 3;
	EXPECT_T(&c, &t, ok);

	t = PV(42, 40, TRANSFER_POST_PENDING_TRANSFER, 1);
	EXPECT_T(&c, &t, pending_transfer_not_pending);
	t = PV(42, 41, TRANSFER_POST_PENDING_TRANSFER, 1);
	t.debit_account_id = 4;
	EXPECT_T(&c, &t, pending_transfer_has_different_debit_account_id);
	t = PV(42, 41, TRANSFER_POST_PENDING_TRANSFER, 1);
	t.credit_account_id = 4;
	EXPECT_T(&c, &t, pending_transfer_has_different_credit_account_id);
	t = PV(42, 41, TRANSFER_POST_PENDING_TRANSFER, 1);
	t.ledger = 2;
	EXPECT_T(&c, &t, pending_transfer_has_different_ledger);
	t = PV(42, 41, TRANSFER_POST_PENDING_TRANSFER, 1);
	t.code = 2;
	EXPECT_T(&c, &t, pending_transfer_has_different_code);
	t = PV(42, 41, TRANSFER_POST_PENDING_TRANSFER, 11);
	EXPECT_T(&c, &t, exceeds_pending_transfer_amount);
	t = PV(42, 41, TRANSFER_VOID_PENDING_TRANSFER, 11);
	EXPECT_T(&c, &t, exceeds_pending_transfer_amount);
	t = PV(42, 41, TRANSFER_VOID_PENDING_TRANSFER, 9);
	EXPECT_T(&c, &t, pending_transfer_has_different_amount);

	t = PV(42, 41, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, ok);
	t = PV(43, 41, TRANSFER_POST_PENDING_TRANSFER, 1);
	EXPECT_T(&c, &t, pending_transfer_already_posted);
	t = PV(43, 41, TRANSFER_VOID_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, pending_transfer_already_posted);

	t = P(44, 1, 2, 10, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(45, 44, TRANSFER_VOID_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(46, 44, TRANSFER_POST_PENDING_TRANSFER, 1);
	EXPECT_T(&c, &t, pending_transfer_already_voided);

	t = P(47, 1, 2, 10, 1);
	EXPECT_T(&c, &t, ok);
	ledger_pulse(c.l, c.ts + 2000000000ull);
	c.ts += 2000000000ull;
	t = PV(48, 47, TRANSFER_POST_PENDING_TRANSFER, 1);
	EXPECT_T(&c, &t, pending_transfer_expired);
	assert_int_equal(ledger_pending_status(c.l, 47), PENDING_EXPIRED);

	/* Post against a closed account is refused; void is allowed. */
	t = P(49, 1, 2, 10, 0);
	EXPECT_T(&c, &t, ok);
	t = P(50, 1, 6, 1, 0);
	t.flags |= TRANSFER_CLOSING_DEBIT;
	EXPECT_T(&c, &t, ok);
	t = PV(51, 49, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, debit_account_already_closed);
	t = P(52, 2, 6, 1, 0);
	t.flags |= TRANSFER_CLOSING_CREDIT;
	EXPECT_T(&c, &t, ok);
	t = P(53, 1, 2, 1, 0);
	EXPECT_T(&c, &t, debit_account_already_closed);
	t = P(54, 5, 7, 1, 0);
	EXPECT_T(&c, &t, credit_account_already_closed);
	t = PV(55, 49, TRANSFER_VOID_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, ok);
	ctx_free(&c);
}

/* Four fresh accounts on ledger 9 for the overflow cases. */
static void huge_accounts(struct ctx *c, u128 base)
{
	struct account a[4] = {A(base, 9, 0), A(base + 1, 9, 0),
			       A(base + 2, 9, 0), A(base + 3, 9, 0)};
	u32 r[4];
	accounts(c, a, 4, r);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i], CREATE_ACCOUNT_ok);
}

static struct transfer T9(u128 id, u128 dr, u128 cr, u128 amount,
			  bool pending) {
	struct transfer t = T(id, dr, cr, amount);
	t.ledger = 9;
	if (pending)
		t.flags = TRANSFER_PENDING;
	return t;
}

static void
test_overflow_codes_are_reachable(void **state)
{
	(void)state;
	struct ctx c = ctx_new();
	struct transfer t;
	u128 half = (u128)1 << 127;

	huge_accounts(&c, 100);
	t = T9(1, 100, 101, U128_MAX - 5, true);
	EXPECT_T(&c, &t, ok);
	t = T9(2, 100, 102, 10, true);
	EXPECT_T(&c, &t, overflows_debits_pending);
	t = T9(2, 102, 101, 10, true);
	EXPECT_T(&c, &t, overflows_credits_pending);

	huge_accounts(&c, 200);
	t = T9(3, 200, 201, U128_MAX - 5, false);
	EXPECT_T(&c, &t, ok);
	t = T9(4, 200, 202, 10, false);
	EXPECT_T(&c, &t, overflows_debits_posted);
	t = T9(4, 202, 201, 10, false);
	EXPECT_T(&c, &t, overflows_credits_posted);
	/* Posted sums are checked for pending transfers too. */
	t = T9(4, 200, 202, 10, true);
	EXPECT_T(&c, &t, overflows_debits_posted);

	huge_accounts(&c, 300);
	t = T9(5, 300, 301, half, true);
	EXPECT_T(&c, &t, ok);
	t = T9(6, 300, 302, half, false);
	EXPECT_T(&c, &t, overflows_debits);
	t = T9(6, 303, 301, half, false);
	EXPECT_T(&c, &t, overflows_credits);
	/* None of these is transient: the id is still usable. */
	t = T9(6, 302, 303, 1, false);
	EXPECT_T(&c, &t, ok);

	/* The deadline timestamp + timeout must stay below 2^63. */
	c.ts = 5000000000000000000ull;
	t = T9(7, 302, 303, 1, true);
	t.timeout = UINT32_MAX;
	EXPECT_T(&c, &t, overflows_timeout);
	t.timeout = 1000;
	EXPECT_T(&c, &t, ok);
	ctx_free(&c);
}

static void
test_create_transfer_precedence_first_listed_error_wins(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;

	t = T(0, 1, 2, 5);
	t.timestamp = 1;
	t.flags = 1u << 9;
	EXPECT_T(&c, &t, timestamp_must_be_zero); /* over reserved_flag */
	t = T(0, 1, 2, 5);
	t.flags = 1u << 9;
	EXPECT_T(&c, &t, reserved_flag); /* over id_must_not_be_zero */

	t = T(60, 1, 2, 5);
	EXPECT_T(&c, &t, ok);
	t = T(60, 1, 2, 6);
	t.ledger = 0;
	EXPECT_T(&c, &t, exists_with_different_amount); /* over ledger */
	t = T(60, 1, 1, 5);
	t.flags = TRANSFER_PENDING | TRANSFER_POST_PENDING_TRANSFER;
	EXPECT_T(&c, &t, exists_with_different_flags); /* over validation */

	t = T(61, 99, 2, 5);
	EXPECT_T(&c, &t, debit_account_not_found);
	t.flags = TRANSFER_PENDING | TRANSFER_POST_PENDING_TRANSFER;
	EXPECT_T(&c, &t, id_already_failed); /* over flags_are_mutually_... */

	t = T(62, 0, 2, 5);
	t.flags = TRANSFER_PENDING | TRANSFER_VOID_PENDING_TRANSFER;
	EXPECT_T(&c, &t, flags_are_mutually_exclusive); /* over dr zero */
	t = T(62, 0, 0, 5);
	EXPECT_T(&c, &t, debit_account_id_must_not_be_zero); /* over cr */
	t = T(62, 1, 2, 5);
	t.timeout = 1;
	t.flags = TRANSFER_CLOSING_DEBIT;
	EXPECT_T(&c, &t, timeout_reserved_for_pending_transfer);
	t = T(62, 98, 99, 5);
	EXPECT_T(&c, &t, debit_account_not_found); /* over credit */
	t = T(63, 1, 3, 5);
	t.ledger = 5;
	EXPECT_T(&c, &t, accounts_must_have_the_same_ledger);
	t = T(63, 7, 5, 5);
	EXPECT_T(&c, &t, debit_account_already_closed); /* over exceeds */
	t = T(64, 4, 5, 5);
	EXPECT_T(&c, &t, exceeds_credits); /* over exceeds_debits */

	t = P(65, 1, 2, 10, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(66, 65, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, ok);
	t = PV(67, 65, TRANSFER_POST_PENDING_TRANSFER, 11);
	EXPECT_T(&c, &t, exceeds_pending_transfer_amount); /* over posted */
	t = PV(67, 65, TRANSFER_POST_PENDING_TRANSFER, 1);
	t.code = 9;
	EXPECT_T(&c, &t, pending_transfer_has_different_code);

	/* linked_event_chain_open beats the event's own error. */
	t = T(0, 0, 0, 0);
	t.flags = TRANSFER_LINKED;
	EXPECT_T(&c, &t, linked_event_chain_open);
	ctx_free(&c);
}

static void test_overflow_precedence_debits_before_credits(void **state)
{
	(void)state;
	struct ctx c = ctx_new();
	struct transfer t;

	huge_accounts(&c, 100);
	huge_accounts(&c, 200);
	t = T9(1, 100, 101, U128_MAX, true);
	EXPECT_T(&c, &t, ok);
	t = T9(2, 102, 103, U128_MAX, true);
	EXPECT_T(&c, &t, ok);
	/* 100 debits_pending and 103 credits_pending both overflow. */
	t = T9(3, 100, 103, 1, true);
	EXPECT_T(&c, &t, overflows_debits_pending);
	/* A single-phase transfer skips the pending checks: 100's pending +
	 * posted overflows first. */
	t = T9(3, 100, 103, 1, false);
	EXPECT_T(&c, &t, overflows_debits);
	t = T9(4, 200, 201, U128_MAX, false);
	EXPECT_T(&c, &t, ok);
	t = T9(5, 200, 201, 1, true);
	EXPECT_T(&c, &t, overflows_debits_posted); /* over credits_posted */
	ctx_free(&c);
}

/* ------------------------------------------------------------------ */
/* Semantics.                                                          */

static void test_failed_linked_chain_rolls_back_every_effect(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;

	t = P(70, 1, 6, 10, 0);
	EXPECT_T(&c, &t, ok);
	struct account before1 = get_account(&c, 1),
		       before6 = get_account(&c, 6);
	struct ledger_stats st0;
	ledger_stats(c.l, &st0);
	struct account_filter f = {.account_id = 6,
				   .limit = 100,
				   .flags = ACCOUNT_FILTER_DEBITS |
					    ACCOUNT_FILTER_CREDITS};
	struct account_balance bal[16];
	int nbal = ledger_get_account_balances(c.l, &f, bal, 16);
	assert_int_equal(nbal, 1);

	struct transfer ch[6] = {
		T(71, 1, 6, 3),
		PV(72, 70, TRANSFER_POST_PENDING_TRANSFER, 4),
		P(73, 6, 2, 2, 60),
		P(74, 2, 1, 1, 0),
		T(75, 1, 6, 1),
		T(76, 4, 1, 1000), /* exceeds_credits */
	};
	ch[3].flags |= TRANSFER_CLOSING_DEBIT;
	for (int i = 0; i < 5; i++)
		ch[i].flags |= TRANSFER_LINKED;
	u32 r[6];
	transfers(&c, ch, 6, r);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r[i], CREATE_TRANSFER_linked_event_failed);
	assert_int_equal(r[5], CREATE_TRANSFER_exceeds_credits);

	struct account after1 = get_account(&c, 1), after6 = get_account(&c, 6);
	assert_memory_equal(&before1, &after1, sizeof(after1));
	assert_memory_equal(&before6, &after6, sizeof(after6));
	assert_int_equal(get_account(&c, 2).flags, 0); /* closing undone */
	assert_int_equal(ledger_pending_status(c.l, 70), PENDING_PENDING);
	struct ledger_stats st1;
	ledger_stats(c.l, &st1);
	assert_int_equal(st1.transfers, st0.transfers);
	assert_int_equal(st1.pending_open, st0.pending_open);
	assert_int_equal(ledger_get_account_balances(c.l, &f, bal, 16), nbal);
	struct transfer out;
	for (u128 id = 71; id <= 75; id++)
		assert_int_equal(ledger_lookup_transfer(c.l, id, &out),
				 -ENOENT);
	assert_int_equal(ledger_next_expiry(c.l), 0);
	assert_true(ledger_check_invariants(c.l));

	/* The same chain, fixed, commits as a unit; its pending transfer
	 * with a timeout is then scheduled for expiry. */
	ch[5] = T(77, 1, 6, 1);
	transfers(&c, ch, 6, r);
	for (int i = 0; i < 6; i++)
		assert_int_equal(r[i], CREATE_TRANSFER_ok);
	assert_int_equal(ledger_pending_status(c.l, 70), PENDING_POSTED);
	assert_int_equal(ledger_get_account_balances(c.l, &f, bal, 16),
			 nbal + 5);
	assert_int_not_equal(ledger_next_expiry(c.l), 0);
	assert_int_equal(get_account(&c, 2).flags, ACCOUNT_CLOSED);

	/* Chains are independent of each other within a batch, and a chain
	 * still open at the end of the batch fails whole. */
	struct transfer mix[5] = {T(80, 1, 4, 1), T(81, 4, 1, 1),
				  T(82, 1, 4, 1), T(83, 1, 4, 1),
				  T(84, 1, 4, 1)};
	mix[0].flags = TRANSFER_LINKED;
	mix[3].flags = TRANSFER_LINKED;
	mix[4].flags = TRANSFER_LINKED;
	transfers(&c, mix, 5, r);
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_int_equal(r[1], CREATE_TRANSFER_ok);
	assert_int_equal(r[2], CREATE_TRANSFER_ok);
	assert_int_equal(r[3], CREATE_TRANSFER_linked_event_failed);
	assert_int_equal(r[4], CREATE_TRANSFER_linked_event_chain_open);
	assert_int_equal(ledger_lookup_transfer(c.l, 83, &out), -ENOENT);
	ctx_free(&c);
}

static void test_two_phase_post_void_and_partial_post(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t, out;
	struct account a1, a2;

	t = P(90, 1, 2, 100, 0);
	t.user_data_128 = 5;
	EXPECT_T(&c, &t, ok);
	a1 = get_account(&c, 1);
	assert_true(a1.debits_pending == 100 && a1.debits_posted == 0);

	/* Partial post: 30 posted, the other 70 released. */
	t = PV(91, 90, TRANSFER_POST_PENDING_TRANSFER, 30);
	EXPECT_T(&c, &t, ok);
	a1 = get_account(&c, 1);
	a2 = get_account(&c, 2);
	assert_true(a1.debits_pending == 0 && a1.debits_posted == 30);
	assert_true(a2.credits_pending == 0 && a2.credits_posted == 30);
	assert_int_equal(ledger_lookup_transfer(c.l, 91, &out), 0);
	assert_true(out.amount == 30 && out.debit_account_id == 1 &&
		    out.credit_account_id == 2 && out.user_data_128 == 5 &&
		    out.ledger == 1 && out.code == 1);
	/* Retrying the partial post needs the same amount. */
	EXPECT_T(&c, &t, exists);
	t.amount = AMOUNT_MAX;
	EXPECT_T(&c, &t, exists_with_different_amount);

	/* Post of amount 0 posts nothing but resolves the pending. */
	t = P(92, 1, 2, 100, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(93, 92, TRANSFER_POST_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, ok);
	a1 = get_account(&c, 1);
	assert_true(a1.debits_pending == 0 && a1.debits_posted == 30);
	assert_int_equal(ledger_pending_status(c.l, 92), PENDING_POSTED);

	/* Full post with AMOUNT_MAX. */
	t = P(94, 1, 2, 40, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(95, 94, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_lookup_transfer(c.l, 95, &out), 0);
	assert_true(out.amount == 40);
	assert_true(get_account(&c, 1).debits_posted == 70);

	/* Void releases everything. */
	t = P(96, 1, 2, 50, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(97, 96, TRANSFER_VOID_PENDING_TRANSFER, 50);
	EXPECT_T(&c, &t, ok);
	a1 = get_account(&c, 1);
	assert_true(a1.debits_pending == 0 && a1.debits_posted == 70);
	assert_int_equal(ledger_pending_status(c.l, 96), PENDING_VOIDED);
	assert_int_equal(ledger_pending_status(c.l, 97), PENDING_NONE);

	/* Pending and its post in the same batch. */
	struct transfer b[2] = {
		P(98, 1, 2, 7, 0),
		PV(99, 98, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX)};
	u32 r[2];
	transfers(&c, b, 2, r);
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_int_equal(r[1], CREATE_TRANSFER_ok);
	assert_true(get_account(&c, 1).debits_posted == 77);
	struct ledger_stats st;
	ledger_stats(c.l, &st);
	assert_int_equal(st.pending_open, 0);
	ctx_free(&c);
}

static void test_expiry_by_pulse_releases_pending_amounts(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;

	t = P(110, 1, 2, 10, 2);
	EXPECT_T(&c, &t, ok);
	struct transfer out;
	assert_int_equal(ledger_lookup_transfer(c.l, 110, &out), 0);
	u64 deadline = out.timestamp + 2000000000ull;
	assert_int_equal(ledger_next_expiry(c.l), deadline);

	ledger_pulse(c.l, deadline - 1);
	assert_int_equal(ledger_pending_status(c.l, 110), PENDING_PENDING);
	assert_true(get_account(&c, 1).debits_pending == 10);
	ledger_pulse(c.l, deadline);
	assert_int_equal(ledger_pending_status(c.l, 110), PENDING_EXPIRED);
	assert_true(get_account(&c, 1).debits_pending == 0);
	assert_true(get_account(&c, 2).credits_pending == 0);
	assert_int_equal(ledger_next_expiry(c.l), 0);
	c.ts = deadline;
	t = PV(111, 110, TRANSFER_VOID_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, pending_transfer_expired);

	/* A posted pending transfer is not expired later. */
	t = P(112, 1, 2, 10, 1);
	EXPECT_T(&c, &t, ok);
	t = PV(113, 112, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_next_expiry(c.l), 0);
	ledger_pulse(c.l, c.ts + 5000000000ull);
	assert_int_equal(ledger_pending_status(c.l, 112), PENDING_POSTED);

	/* create_transfers pulses at its first event's timestamp. */
	t = P(114, 1, 2, 10, 1);
	EXPECT_T(&c, &t, ok);
	c.ts += 3000000000ull;
	t = T(115, 1, 2, 1);
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_pending_status(c.l, 114), PENDING_EXPIRED);
	assert_true(get_account(&c, 1).debits_pending == 0);
	ctx_free(&c);
}

static void test_expiry_by_timestamp_within_batch_before_pulse(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t, out;

	t = P(120, 1, 2, 10, 1);
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_lookup_transfer(c.l, 120, &out), 0);
	u64 deadline = out.timestamp + 1000000000ull;

	/* Events at deadline-1, deadline, deadline+1: the pulse before the
	 * batch (at deadline-1) does not expire it, yet the post at the
	 * third event is past the deadline. */
	struct transfer b[3] = {
		T(121, 1, 2, 1),
		PV(122, 120, TRANSFER_POST_PENDING_TRANSFER, 1),
		PV(123, 120, TRANSFER_POST_PENDING_TRANSFER, 1)};
	u32 r[3];
	assert_int_equal(ledger_create_transfers(c.l, b, 3, deadline + 1, r),
			 0);
	c.ts = deadline + 1;
	assert_int_equal(r[0], CREATE_TRANSFER_ok);
	assert_int_equal(r[1], CREATE_TRANSFER_pending_transfer_expired);
	assert_int_equal(r[2], CREATE_TRANSFER_pending_transfer_expired);
	seen_transfer[r[1]] = true;
	/* Not pulsed yet: still formally pending, and its amount held. */
	assert_int_equal(ledger_pending_status(c.l, 120), PENDING_PENDING);
	ledger_pulse(c.l, deadline);
	assert_int_equal(ledger_pending_status(c.l, 120), PENDING_EXPIRED);
	ctx_free(&c);
}

static void test_balancing_transfers_clamp_to_the_balance_limit(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t, out;

	t = T(130, 1, 4, 100); /* 4 (debits<=credits) gets 100 credits */
	EXPECT_T(&c, &t, ok);
	t = T(131, 4, 2, 1000);
	t.flags = TRANSFER_BALANCING_DEBIT;
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_lookup_transfer(c.l, 131, &out), 0);
	assert_true(out.amount == 100);
	assert_true(get_account(&c, 4).debits_posted == 100);
	/* Retried with a maximum >= what moved: exists; below: different. */
	EXPECT_T(&c, &t, exists);
	t.amount = 99;
	EXPECT_T(&c, &t, exists_with_different_amount);
	/* Nothing left: a balancing transfer moves 0 and succeeds. */
	t = T(132, 4, 2, 1000);
	t.flags = TRANSFER_BALANCING_DEBIT;
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_lookup_transfer(c.l, 132, &out), 0);
	assert_true(out.amount == 0);

	/* balancing_credit against 5 (credits<=debits), and pending. */
	t = T(133, 5, 1, 60);
	EXPECT_T(&c, &t, ok);
	t = T(134, 2, 5, 1000);
	t.flags = TRANSFER_BALANCING_CREDIT | TRANSFER_PENDING;
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_lookup_transfer(c.l, 134, &out), 0);
	assert_true(out.amount == 60);
	assert_true(get_account(&c, 5).credits_pending == 60);
	/* Both flags: the smaller room wins. */
	t = T(135, 1, 6, 5);
	EXPECT_T(&c, &t, ok); /* 6: debits 0, credits 5 */
	t = T(136, 2, 1, 3);
	EXPECT_T(&c, &t, ok); /* 1: credits 3 + earlier ones */
	struct account a1 = get_account(&c, 1);
	t = T(137, 6, 1, 1000);
	t.flags = TRANSFER_BALANCING_DEBIT | TRANSFER_BALANCING_CREDIT;
	EXPECT_T(&c, &t, ok);
	assert_int_equal(ledger_lookup_transfer(c.l, 137, &out), 0);
	u128 room1 = a1.debits_posted > a1.credits_posted + a1.credits_pending
			     ? a1.debits_posted - a1.credits_posted -
				       a1.credits_pending
			     : 0;
	assert_true(out.amount == (room1 < 5 ? room1 : 5));
	ctx_free(&c);
}

static void
test_closing_transfer_closes_and_void_or_expiry_reopens(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;

	t = P(140, 1, 2, 0, 0);
	t.flags |= TRANSFER_CLOSING_DEBIT | TRANSFER_CLOSING_CREDIT;
	EXPECT_T(&c, &t, ok);
	assert_int_equal(get_account(&c, 1).flags, ACCOUNT_CLOSED);
	assert_int_equal(get_account(&c, 2).flags, ACCOUNT_CLOSED);
	t = T(141, 1, 6, 1);
	EXPECT_T(&c, &t, debit_account_already_closed);
	t = T(142, 6, 2, 1);
	EXPECT_T(&c, &t, credit_account_already_closed);
	/* Posting the closing transfer keeps the accounts closed. */
	t = PV(143, 140, TRANSFER_POST_PENDING_TRANSFER, AMOUNT_MAX);
	EXPECT_T(&c, &t, debit_account_already_closed);
	t = PV(144, 140, TRANSFER_VOID_PENDING_TRANSFER, 0);
	EXPECT_T(&c, &t, ok);
	assert_int_equal(get_account(&c, 1).flags, 0);
	assert_int_equal(get_account(&c, 2).flags, 0);
	t = T(145, 1, 2, 1);
	EXPECT_T(&c, &t, ok);

	/* Expiry of a closing transfer reopens too. */
	t = P(146, 1, 2, 1, 1);
	t.flags |= TRANSFER_CLOSING_CREDIT;
	EXPECT_T(&c, &t, ok);
	assert_int_equal(get_account(&c, 2).flags, ACCOUNT_CLOSED);
	ledger_pulse(c.l, c.ts + 2000000000ull);
	c.ts += 2000000000ull;
	assert_int_equal(get_account(&c, 2).flags, 0);
	ctx_free(&c);
}

static void test_history_records_one_balance_point_per_transfer(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t;
	struct account_balance b[16];
	struct account_filter f = {.account_id = 6,
				   .limit = 16,
				   .flags = ACCOUNT_FILTER_DEBITS |
					    ACCOUNT_FILTER_CREDITS};
	u64 tss[4];

	t = T(150, 1, 6, 10);
	EXPECT_T(&c, &t, ok);
	t = T(151, 6, 2, 3);
	EXPECT_T(&c, &t, ok);
	t = P(152, 6, 2, 4, 0);
	EXPECT_T(&c, &t, ok);
	t = PV(153, 152, TRANSFER_POST_PENDING_TRANSFER, 2);
	EXPECT_T(&c, &t, ok);
	for (int i = 0; i < 4; i++) {
		struct transfer out;
		assert_int_equal(ledger_lookup_transfer(c.l, 150 + i, &out), 0);
		tss[i] = out.timestamp;
	}

	assert_int_equal(ledger_get_account_balances(c.l, &f, b, 16), 4);
	assert_true(b[0].credits_posted == 10 && b[0].debits_posted == 0);
	assert_true(b[1].debits_posted == 3);
	assert_true(b[2].debits_pending == 4 && b[2].debits_posted == 3);
	assert_true(b[3].debits_pending == 0 && b[3].debits_posted == 5);
	for (int i = 0; i < 4; i++)
		assert_int_equal(b[i].timestamp, tss[i]);

	/* Debits only, reversed, limited. */
	f.flags = ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_REVERSED;
	f.limit = 2;
	assert_int_equal(ledger_get_account_balances(c.l, &f, b, 16), 2);
	assert_int_equal(b[0].timestamp, tss[3]);
	assert_int_equal(b[1].timestamp, tss[2]);
	/* Timestamp range. */
	f.flags = ACCOUNT_FILTER_CREDITS | ACCOUNT_FILTER_DEBITS;
	f.limit = 16;
	f.timestamp_min = tss[1];
	f.timestamp_max = tss[2];
	assert_int_equal(ledger_get_account_balances(c.l, &f, b, 16), 2);
	assert_int_equal(b[0].timestamp, tss[1]);
	/* No history flag: no balances. */
	f.account_id = 1;
	f.timestamp_min = f.timestamp_max = 0;
	assert_int_equal(ledger_get_account_balances(c.l, &f, b, 16), 0);
	ctx_free(&c);
}

static void test_get_account_transfers_range_limit_order_filters(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t, out[32];
	u64 tss[10];

	for (int i = 0; i < 10; i++) {
		t = (i % 2) ? T(200 + i, 2, 1, 1) : T(200 + i, 1, 2, 1);
		t.code = (u16)(1 + i % 3);
		t.user_data_64 = (u64)i;
		EXPECT_T(&c, &t, ok);
		struct transfer o;
		assert_int_equal(ledger_lookup_transfer(c.l, 200 + i, &o), 0);
		tss[i] = o.timestamp;
	}
	struct account_filter f = {.account_id = 1,
				   .limit = 32,
				   .flags = ACCOUNT_FILTER_DEBITS |
					    ACCOUNT_FILTER_CREDITS};
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 10);
	for (int i = 0; i < 10; i++)
		assert_true(out[i].id == (u128)(200 + i));

	f.flags = ACCOUNT_FILTER_DEBITS;
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 5);
	assert_true(out[0].id == 200 && out[4].id == 208);
	f.flags = ACCOUNT_FILTER_CREDITS | ACCOUNT_FILTER_REVERSED;
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 5);
	assert_true(out[0].id == 209 && out[4].id == 201);

	f.flags = ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS;
	f.timestamp_min = tss[3];
	f.timestamp_max = tss[6];
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 4);
	assert_true(out[0].id == 203 && out[3].id == 206);
	f.flags |= ACCOUNT_FILTER_REVERSED;
	f.limit = 2;
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 2);
	assert_true(out[0].id == 206 && out[1].id == 205);
	/* out_max bounds the count too. */
	f.limit = 32;
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 1), 1);

	f.timestamp_min = f.timestamp_max = 0;
	f.flags = ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS;
	f.code = 2;
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 3);
	f.code = 0;
	f.user_data_64 = 7;
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 1);
	assert_true(out[0].id == 207);
	f.user_data_64 = 0;
	f.account_id = 3; /* no transfers */
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 0);
	f.account_id = 12345; /* unknown */
	assert_int_equal(ledger_get_account_transfers(c.l, &f, out, 32), 0);

	/* Invalid filters. */
	struct account_filter bad;
	f.account_id = 1;
	bad = f;
	bad.account_id = 0;
	assert_int_equal(ledger_get_account_transfers(c.l, &bad, out, 32),
			 -EINVAL);
	bad = f;
	bad.account_id = U128_MAX;
	assert_int_equal(ledger_get_account_balances(c.l, &bad, NULL, 0),
			 -EINVAL);
	bad = f;
	bad.limit = 0;
	assert_int_equal(ledger_get_account_transfers(c.l, &bad, out, 32),
			 -EINVAL);
	bad = f;
	bad.flags = ACCOUNT_FILTER_REVERSED;
	assert_int_equal(ledger_get_account_transfers(c.l, &bad, out, 32),
			 -EINVAL);
	bad = f;
	bad.flags |= 1u << 5;
	assert_int_equal(ledger_get_account_transfers(c.l, &bad, out, 32),
			 -EINVAL);
	bad = f;
	bad.timestamp_min = 10;
	bad.timestamp_max = 9;
	assert_int_equal(ledger_get_account_transfers(c.l, &bad, out, 32),
			 -EINVAL);
	bad = f;
	bad.timestamp_min = (u64)1 << 63;
	assert_int_equal(ledger_get_account_transfers(c.l, &bad, out, 32),
			 -EINVAL);
	ctx_free(&c);
}

static void test_batch_arguments_are_checked(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct transfer t = T(300, 1, 2, 1);
	u32 r;

	assert_int_equal(ledger_create_transfers(c.l, &t, 0, c.ts + 10, &r),
			 -EINVAL);
	assert_int_equal(ledger_create_transfers(c.l, &t, BATCH_EVENTS_MAX + 1,
						 c.ts + 100000, &r),
			 -EINVAL);
	/* Timestamps must advance. */
	assert_int_equal(ledger_create_transfers(c.l, &t, 1, c.ts, &r),
			 -EINVAL);
	assert_int_equal(ledger_last_timestamp(c.l), c.ts);
	ctx_free(&c);
}

/* ------------------------------------------------------------------ */
/* Determinism, snapshots, invariants.                                 */

struct buf {
	u8 *p;
	size_t len, cap;
};

static int buf_sink(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		u8 *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static u64 rng = 88172645463325252ull;
static u64 rnd(u64 n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

/* Mostly the three unconstrained ledger-1 accounts, sometimes any. */
static u128 pick_account(void)
{
	static const u128 plain[3] = {1, 2, 6};
	return rnd(5) ? plain[rnd(3)] : 1 + rnd(7);
}

/* A random mix of every kind of event over a few accounts. */
static void random_workload(struct ctx *c, int batches)
{
	static struct transfer t[64];
	u32 r[64];
	u128 next_id = c->next_id;

	for (int b = 0; b < batches; b++) {
		u32 n = 1 + (u32)rnd(64);
		for (u32 i = 0; i < n; i++) {
			u64 k = rnd(100);
			u128 dr = pick_account(), cr = pick_account();
			if (dr == cr && rnd(8))
				cr = dr == 1 ? 2 : 1;
			if (k < 45) {
				t[i] = T(next_id++, dr, cr, rnd(50));
				if (rnd(4) == 0)
					t[i].flags = TRANSFER_BALANCING_DEBIT;
			} else if (k < 70) {
				t[i] = P(next_id++, dr, cr, rnd(50),
					 (u32)rnd(3));
				if (rnd(40) == 0)
					t[i].flags |= TRANSFER_CLOSING_CREDIT;
			} else if (k < 90) {
				u128 pid = next_id > 1001
						   ? 1000 + rnd((u64)(next_id -
								      1000))
						   : 1;
				t[i] = PV(
					next_id++, pid,
					rnd(2) ? TRANSFER_POST_PENDING_TRANSFER
					       : TRANSFER_VOID_PENDING_TRANSFER,
					rnd(2) ? 0 : AMOUNT_MAX);
			} else {
				/* retry of a recent id */
				t[i] = T(next_id > 1010 ? next_id - 1 - rnd(10)
							: 1,
					 dr, cr, 1);
			}
			if (i + 1 < n && rnd(10) == 0)
				t[i].flags |= TRANSFER_LINKED;
		}
		c->ts += n + rnd(3000000000ull);
		assert_int_equal(ledger_create_transfers(c->l, t, n, c->ts, r),
				 0);
		if (rnd(8) == 0)
			ledger_pulse(c->l, c->ts);
	}
	c->next_id = next_id;
}

static void test_same_batches_give_same_digest(void **state)
{
	(void)state;
	u8 d1[32], d2[32];

	rng = 42;
	struct ctx a = setup();
	random_workload(&a, 200);
	ledger_digest(a.l, d1);
	rng = 42;
	struct ctx b = setup();
	random_workload(&b, 200);
	ledger_digest(b.l, d2);
	assert_memory_equal(d1, d2, 32);
	/* One more event changes it (if only its timestamp). */
	struct transfer t = T(5, 1, 2, 1);
	(void)transfer1(&b, &t);
	ledger_digest(b.l, d2);
	assert_memory_not_equal(d1, d2, 32);
	ctx_free(&a);
	ctx_free(&b);
}

static void test_snapshot_round_trip_keeps_the_digest(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct buf b = {0};
	u8 d1[32], d2[32];

	rng = 7;
	random_workload(&c, 300);
	assert_int_equal(ledger_snapshot_write(c.l, buf_sink, &b), 0);
	struct ledger *r = ledger_snapshot_read(b.p, b.len);
	assert_non_null(r);
	ledger_digest(c.l, d1);
	ledger_digest(r, d2);
	assert_memory_equal(d1, d2, 32);
	assert_int_equal(ledger_next_expiry(c.l), ledger_next_expiry(r));
	struct ledger_stats s1, s2;
	ledger_stats(c.l, &s1);
	ledger_stats(r, &s2);
	assert_int_equal(s1.transfers, s2.transfers);
	assert_int_equal(s1.pending_open, s2.pending_open);

	/* Both continue identically. */
	struct ctx c2 = {.l = r, .ts = c.ts, .next_id = c.next_id};
	u64 save = rng;
	random_workload(&c, 50);
	rng = save;
	random_workload(&c2, 50);
	ledger_digest(c.l, d1);
	ledger_digest(c2.l, d2);
	assert_memory_equal(d1, d2, 32);

	/* An empty ledger round-trips too. */
	struct ledger *e = ledger_new(NULL);
	b.len = 0;
	assert_int_equal(ledger_snapshot_write(e, buf_sink, &b), 0);
	struct ledger *e2 = ledger_snapshot_read(b.p, b.len);
	assert_non_null(e2);
	ledger_digest(e, d1);
	ledger_digest(e2, d2);
	assert_memory_equal(d1, d2, 32);
	ledger_free(e);
	ledger_free(e2);
	free(b.p);
	ctx_free(&c);
	ctx_free(&c2);
}

static int fail_sink(void *ctx, const void *data, size_t len)
{
	(void)data;
	(void)len;
	int *calls = ctx;
	return ++*calls == 3 ? -EIO : 0;
}

static void test_snapshot_read_rejects_truncated_and_garbage_input(void **state)
{
	(void)state;
	struct ctx c = setup();
	struct buf b = {0};
	struct transfer t;

	t = T(400, 1, 6, 10);
	EXPECT_T(&c, &t, ok);
	t = P(401, 6, 2, 3, 5);
	EXPECT_T(&c, &t, ok);
	t = T(402, 99, 2, 3);
	EXPECT_T(&c, &t, debit_account_not_found);
	assert_int_equal(ledger_snapshot_write(c.l, buf_sink, &b), 0);

	int calls = 0;
	assert_int_equal(ledger_snapshot_write(c.l, fail_sink, &calls), -EIO);

	assert_null(ledger_snapshot_read(NULL, 0));
	for (size_t n = 0; n < b.len; n++)
		assert_null(ledger_snapshot_read(b.p, n));
	u8 *longer = malloc(b.len + 1);
	memcpy(longer, b.p, b.len);
	longer[b.len] = 0;
	assert_null(ledger_snapshot_read(longer, b.len + 1));
	free(longer);

	/* Every single-byte corruption is rejected or yields a ledger that
	 * still satisfies its invariants; never a crash. */
	u8 *copy = malloc(b.len);
	for (size_t i = 0; i < b.len; i++) {
		memcpy(copy, b.p, b.len);
		copy[i] ^= (u8)(1u << (i % 8));
		struct ledger *r = ledger_snapshot_read(copy, b.len);
		if (r) {
			assert_true(ledger_check_invariants(r));
			ledger_free(r);
		}
	}
	/* Random garbage, with and without a valid header. */
	for (int k = 0; k < 2000; k++) {
		size_t n = (size_t)rnd(b.len + 64);
		u8 *g = malloc(n + 1);
		for (size_t i = 0; i < n; i++)
			g[i] = (u8)rnd(256);
		if (k % 2 && n >= 64)
			memcpy(g, b.p, 64);
		struct ledger *r = ledger_snapshot_read(g, n);
		if (r)
			ledger_free(r);
		free(g);
	}
	free(copy);
	free(b.p);
	ctx_free(&c);
}

static void test_invariants_hold_after_many_operations(void **state)
{
	(void)state;
	struct ctx c = setup();

	rng = 99;
	for (int round = 0; round < 20; round++) {
		random_workload(&c, 50);
		assert_true(ledger_check_invariants(c.l));
	}
	struct ledger_stats st;
	ledger_stats(c.l, &st);
	assert_true(st.transfers > 1000);
	assert_true(st.index_bytes > 0 && st.record_bytes > 0);
	ctx_free(&c);
}

static void test_result_names_are_stable_and_bounded(void **state)
{
	(void)state;
	assert_string_equal(create_account_result_name(CREATE_ACCOUNT_ok),
			    "ok");
	assert_string_equal(create_account_result_name(CREATE_ACCOUNT_exists),
			    "exists");
	assert_string_equal(
		create_transfer_result_name(CREATE_TRANSFER_exceeds_debits),
		"exceeds_debits");
	assert_null(create_account_result_name(CREATE_ACCOUNT_RESULT_COUNT));
	assert_null(create_transfer_result_name(CREATE_TRANSFER_RESULT_COUNT));
	/* Precedence spot checks straight from the tables. */
	assert_true(CREATE_TRANSFER_exists < CREATE_TRANSFER_id_already_failed);
	assert_true(CREATE_TRANSFER_id_already_failed <
		    CREATE_TRANSFER_flags_are_mutually_exclusive);
	assert_true(CREATE_TRANSFER_pending_transfer_expired <
		    CREATE_TRANSFER_debit_account_already_closed);
	assert_true(CREATE_TRANSFER_overflows_timeout <
		    CREATE_TRANSFER_exceeds_credits);
	assert_true(CREATE_ACCOUNT_exists <
		    CREATE_ACCOUNT_flags_are_mutually_exclusive);
}

/* Must run last: every code of both tables was provoked above. */
static void test_every_result_code_was_provoked(void **state)
{
	(void)state;
	for (unsigned i = 0; i < CREATE_ACCOUNT_RESULT_COUNT; i++) {
		if (!seen_account[i])
			fail_msg("account result never provoked: %s",
				 create_account_result_name(i));
	}
	/* The mandate codes come from the auth guard, not the ledger:
	 * tests/unit/test_core_auth.c provokes them. */
	for (unsigned i = 0; i < CREATE_TRANSFER_mandate_revoked; i++) {
		if (!seen_transfer[i])
			fail_msg("transfer result never provoked: %s",
				 create_transfer_result_name(i));
	}
}

/* The hash key changes where ids sit in the indexes, never the state: two
 * ledgers fed the same batches under different keys have one digest. */
static void build_small_ledger(u8 digest[32])
{
	struct ledger *l = ledger_new(NULL);
	struct account a[40];
	struct transfer t[200];
	u32 res[200];

	memset(a, 0, sizeof(a));
	for (u32 i = 0; i < 40; i++) {
		a[i].id = ((u128)i << 70) + i * 7919u + 1;
		a[i].ledger = 1;
		a[i].code = 1;
	}
	assert_int_equal(ledger_create_accounts(l, a, 40, 1000000, res), 0);
	memset(t, 0, sizeof(t));
	for (u32 i = 0; i < 200; i++) {
		t[i].id = ((u128)(i * 31u) << 64) + i + 1;
		t[i].debit_account_id = a[i % 40].id;
		t[i].credit_account_id = a[(i + 1) % 40].id;
		t[i].amount = i + 1;
		t[i].ledger = 1;
		t[i].code = 1;
		t[i].flags = (i % 5 == 0) ? TRANSFER_PENDING : 0;
	}
	assert_int_equal(ledger_create_transfers(l, t, 200, 2000000, res), 0);
	for (u32 i = 0; i < 200; i++)
		assert_int_equal(res[i], 0);
	ledger_digest(l, digest);
	ledger_free(l);
}

static void test_hash_key_changes_layout_not_digest(void **state)
{
	(void)state;
	u8 d1[32], d2[32];

	ledger_set_hash_key(0x0123456789abcdefull);
	build_small_ledger(d1);
	ledger_set_hash_key(0xfedcba9876543210ull);
	build_small_ledger(d2);
	assert_memory_equal(d1, d2, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_every_create_account_result_code_is_reachable),
		cmocka_unit_test(
			test_create_account_precedence_first_listed_error_wins),
		cmocka_unit_test(test_transfer_validation_codes_are_reachable),
		cmocka_unit_test(
			test_transfer_exists_codes_compare_fields_in_order),
		cmocka_unit_test(test_transient_errors_burn_the_id),
		cmocka_unit_test(test_pending_transfer_codes_are_reachable),
		cmocka_unit_test(test_overflow_codes_are_reachable),
		cmocka_unit_test(
			test_create_transfer_precedence_first_listed_error_wins),
		cmocka_unit_test(
			test_overflow_precedence_debits_before_credits),
		cmocka_unit_test(
			test_failed_linked_chain_rolls_back_every_effect),
		cmocka_unit_test(test_two_phase_post_void_and_partial_post),
		cmocka_unit_test(test_expiry_by_pulse_releases_pending_amounts),
		cmocka_unit_test(
			test_expiry_by_timestamp_within_batch_before_pulse),
		cmocka_unit_test(
			test_balancing_transfers_clamp_to_the_balance_limit),
		cmocka_unit_test(
			test_closing_transfer_closes_and_void_or_expiry_reopens),
		cmocka_unit_test(
			test_history_records_one_balance_point_per_transfer),
		cmocka_unit_test(
			test_get_account_transfers_range_limit_order_filters),
		cmocka_unit_test(test_batch_arguments_are_checked),
		cmocka_unit_test(test_same_batches_give_same_digest),
		cmocka_unit_test(test_snapshot_round_trip_keeps_the_digest),
		cmocka_unit_test(
			test_snapshot_read_rejects_truncated_and_garbage_input),
		cmocka_unit_test(test_invariants_hold_after_many_operations),
		cmocka_unit_test(test_result_names_are_stable_and_bounded),
		cmocka_unit_test(test_hash_key_changes_layout_not_digest),
		cmocka_unit_test(test_every_result_code_was_provoked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
