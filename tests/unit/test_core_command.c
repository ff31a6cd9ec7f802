/*
 * test_core_command.c - the registry of journal commands
 * (src/core/command.h): the kinds keep their on-disk numbers, the one
 * decoder refuses every payload whose sizes do not follow the layout or
 * the kind's row, and a decoded command applies to the state parts its
 * row names (and refuses a target without them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/auth.h"
#include "core/command.h"
#include "core/ledger.h"
#include "core/pstate.h"
#include "core/tlsswitch.h"

#include <errno.h>

#include "banned.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Room for a header, 8 guards and 4 events. */
static u8 buf[16 + 8 * 128 + 4 * 128];

static size_t put(u16 kind, u32 ext_bytes, u32 count)
{
	struct command_header h = {
		.kind = kind, .ext_bytes = ext_bytes, .count = count};
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	return 16 + (size_t)ext_bytes + (size_t)count * 128;
}

static void kinds_keep_their_journal_numbers_and_names(void **state)
{
	(void)state;
	static const struct {
		u16 kind;
		const char *name;
	} rows[] = {
		{1, "accounts_owned"},
		{2, "transfers_guarded"},
		{3, "principal"},
		{4, "revoke"},
		{5, "key"},
		{6, "transfers_guarded_2"},
		{16, "policy_set"},
		{17, "policy_override"},
		{18, "policy_override_end"},
		{19, "policy_override_extend"},
		{20, "policy_override_2"},
		{21, "policy_override_expired"},
		{22, "tls_switch"},
	};
	assert_int_equal(AUTH_CMD_ACCOUNTS_OWNED, 1);
	assert_int_equal(AUTH_CMD_TRANSFERS_GUARDED_2, 6);
	assert_int_equal(PSTATE_CMD_SET, 16);
	assert_int_equal(PSTATE_CMD_OVERRIDE_END, 18);
	assert_int_equal(PSTATE_CMD_OVERRIDE_EXTEND, 19);
	assert_int_equal(PSTATE_CMD_OVERRIDE_2, 20);
	assert_int_equal(TLS_CMD_SWITCH, 22);
	for (size_t i = 0; i < N(rows); i++) {
		const struct command_def *d = command_find(rows[i].kind);
		assert_non_null(d);
		assert_int_equal(d->kind, rows[i].kind);
		assert_string_equal(command_name(rows[i].kind), rows[i].name);
	}
	static const u16 none[] = {0, 7, 15, 23, 0xffff};
	for (size_t i = 0; i < N(none); i++) {
		assert_null(command_find(none[i]));
		assert_string_equal(command_name(none[i]), "unknown");
	}
}

static void decoder_refuses_sizes_that_do_not_add_up(void **state)
{
	(void)state;
	struct command_view c;
	struct command_header h;

	/* Shorter than a header, and one byte short or over. */
	assert_int_equal(command_decode(buf, 15, &c), -EBADMSG);
	size_t n = put(AUTH_CMD_ACCOUNTS_OWNED, 32, 2);
	assert_int_equal(command_decode(buf, n, &c), 0);
	assert_int_equal(command_decode(buf, n - 16, &c), -EBADMSG);
	assert_int_equal(command_decode(buf, n + 16, &c), -EBADMSG);
	/* An ext not a multiple of 16. */
	n = put(AUTH_CMD_PRINCIPAL, 120, 0);
	assert_int_equal(command_layout(buf, n, &h), -EBADMSG);
	/* A count so large that 32-bit sums would wrap to the size. */
	put(AUTH_CMD_ACCOUNTS_OWNED, 32, 1u << 25);
	assert_int_equal(command_decode(buf, 16 + 32, &c), -EBADMSG);
	/* The layout alone does not know kinds; decode does. */
	n = put(7, 16, 0);
	assert_int_equal(command_layout(buf, n, &h), 0);
	assert_int_equal(command_decode(buf, n, &c), -EBADMSG);
}

static void decoder_holds_each_kind_to_its_row(void **state)
{
	(void)state;
	struct command_view c;
	static const struct {
		u16 kind;
		u32 ext, count;
		int want;
	} rows[] = {
		{AUTH_CMD_ACCOUNTS_OWNED, 32, 1, 0},
		{AUTH_CMD_ACCOUNTS_OWNED, 32, 0, -EBADMSG}, /* no accounts */
		{AUTH_CMD_ACCOUNTS_OWNED, 48, 1, -EBADMSG},
		{AUTH_CMD_TRANSFERS_GUARDED, 128, 1, 0},
		{AUTH_CMD_TRANSFERS_GUARDED_2, 8 * 128, 4, 0},
		{AUTH_CMD_TRANSFERS_GUARDED_2, 144, 1, -EBADMSG}, /* 1.125 */
		{AUTH_CMD_TRANSFERS_GUARDED, 0, 1, -EBADMSG},
		{AUTH_CMD_TRANSFERS_GUARDED, 128, 0, -EBADMSG},
		{AUTH_CMD_PRINCIPAL, 128, 0, 0},
		{AUTH_CMD_PRINCIPAL, 128, 1, -EBADMSG}, /* events */
		{AUTH_CMD_PRINCIPAL, 144, 0, -EBADMSG},
		{AUTH_CMD_REVOKE, AUTH_REVOKE_V1_BYTES, 0, 0},
		{AUTH_CMD_REVOKE, 176, 0, 0},
		{AUTH_CMD_REVOKE, 192, 0, -EBADMSG},
		{AUTH_CMD_KEY, 112, 0, 0},
		{PSTATE_CMD_OVERRIDE_END, 240, 0, -EBADMSG},
	};
	for (size_t i = 0; i < N(rows); i++) {
		size_t n = put(rows[i].kind, rows[i].ext, rows[i].count);
		assert_true(n <= sizeof(buf));
		int got = command_decode(buf, n, &c);
		if (got != rows[i].want)
			fail_msg("row %zu: kind %u ext %u count %u: %d", i,
				 rows[i].kind, rows[i].ext, rows[i].count, got);
		if (got == 0) {
			assert_ptr_equal(c.ext, buf + 16);
			assert_ptr_equal(c.events, buf + 16 + rows[i].ext);
			assert_int_equal(c.def->kind, rows[i].kind);
		}
	}
}

static void validator_and_applier_of_a_row_are_the_module_s(void **state)
{
	(void)state;
	struct command_view c;
	struct auth *a = auth_new();
	struct auth_principal p = {.pub = {1}};
	u32 outcome = 99;

	assert_non_null(a);
	memset(p.id, 7, sizeof(p.id));
	memcpy(p.name, "alice", 5);
	size_t n = put(AUTH_CMD_PRINCIPAL, sizeof(p), 0);
	memcpy(buf + 16, &p, sizeof(p));
	assert_int_equal(command_decode(buf, n, &c), 0);
	assert_true(command_valid(&c));
	/* A target without the part the kind changes. */
	const struct command_target none = {0};
	assert_int_equal(command_apply(&none, &c, 10, &outcome), -EINVAL);
	const struct command_target t = {.auth = a};
	assert_int_equal(command_apply(&t, &c, 10, &outcome), 0);
	assert_int_equal(outcome, AUTH_OK);
	assert_int_equal(auth_principal_count(a), 1);
	/* A key event of no known kind: the row's validator refuses it,
	 * and so does its applier. */
	struct auth_key_event k = {.kind = 3};
	n = put(AUTH_CMD_KEY, sizeof(k), 0);
	memcpy(buf + 16, &k, sizeof(k));
	assert_int_equal(command_decode(buf, n, &c), 0);
	assert_false(command_valid(&c));
	assert_int_equal(command_apply(&t, &c, 11, &outcome), -EBADMSG);
	auth_free(a);
}

/* Kind 22 changes no part: it applies to an empty target once its
 * validator takes it, and the validator holds the server's own switches
 * to the certificates' logic. */
static void a_tls_switch_changes_nothing_and_is_checked(void **state)
{
	(void)state;
	struct command_view c;
	const struct command_target none = {0};
	struct tlsswitch x = {.reason = TLSSWITCH_EXPIRED,
			      .from = TLSSWITCH_PRIMARY,
			      .to = TLSSWITCH_STANDBY};
	u32 outcome = 99;

	memcpy(x.from_serial, "1001", 4);
	memcpy(x.to_serial, "6006", 4);
	size_t n = put(TLS_CMD_SWITCH, sizeof(x), 0);
	memcpy(buf + 16, &x, sizeof(x));
	assert_int_equal(command_decode(buf, n, &c), 0);
	assert_true(command_valid(&c));
	assert_int_equal(command_apply(&none, &c, 10, &outcome), 0);
	assert_int_equal(outcome, 0);

	static const struct {
		u8 reason, from, to;
		bool author, valid;
		const char *serial;
	} cases[] = {
		{TLSSWITCH_EXPIRED, 1, 2, false, true, "1001"},
		{TLSSWITCH_NOT_YET_VALID, 1, 2, false, true, "ab"},
		{TLSSWITCH_OPERATOR, 2, 1, true, true, "1001"},
		{TLSSWITCH_OPERATOR, 1, 2, false, true, "1001"},
		{TLSSWITCH_PRIMARY_VALID, 2, 1, false, true, "1001"},
		/* an operator's standby that expired: back to the primary */
		{TLSSWITCH_EXPIRED, 2, 1, false, true, "1001"},
		{TLSSWITCH_NOT_YET_VALID, 2, 1, false, true, "1001"},
		{TLSSWITCH_PRIMARY_VALID, 1, 2, false, false, "1001"},
		{TLSSWITCH_EXPIRED, 1, 2, true, false, "1001"},
		{TLSSWITCH_OPERATOR, 1, 1, false, false, "1001"},
		{TLSSWITCH_OPERATOR, 1, 3, false, false, "1001"},
		{0, 1, 2, false, false, "1001"},
		{TLSSWITCH_REVOKED, 1, 2, false, true, "1001"},
		{TLSSWITCH_REVOKED, 2, 1, false, true, "1001"},
		{TLSSWITCH_REVOKED, 1, 2, true, false, "1001"},
		{6, 1, 2, false, false, "1001"},
		{TLSSWITCH_EXPIRED, 1, 2, false, false, ""},
		{TLSSWITCH_EXPIRED, 1, 2, false, false, "10A1"},
		{TLSSWITCH_EXPIRED, 1, 2, false, false,
		 "0123456789abcdef0123456789abcdef012345678"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		memset(&x, 0, sizeof(x));
		x.reason = cases[i].reason;
		x.from = cases[i].from;
		x.to = cases[i].to;
		if (cases[i].author)
			memset(x.author, 3, sizeof(x.author));
		memcpy(x.from_serial, "1001", 4);
		memcpy(x.to_serial, cases[i].serial, strlen(cases[i].serial));
		assert_int_equal(
			tlsswitch_command_valid(TLS_CMD_SWITCH, &x, sizeof(x)),
			cases[i].valid);
		memcpy(buf + 16, &x, sizeof(x));
		assert_int_equal(command_decode(buf, n, &c), 0);
		assert_int_equal(command_apply(&none, &c, 10, &outcome),
				 cases[i].valid ? 0 : -EBADMSG);
	}
	/* A byte after a serial's NUL, and a reserved byte. */
	memset(&x, 0, sizeof(x));
	x.reason = TLSSWITCH_OPERATOR;
	x.from = 1;
	x.to = 2;
	memcpy(x.from_serial, "1001", 4);
	memcpy(x.to_serial, "1001", 4);
	assert_true(tlsswitch_command_valid(TLS_CMD_SWITCH, &x, sizeof(x)));
	x.to_serial[6] = 'a';
	assert_false(tlsswitch_command_valid(TLS_CMD_SWITCH, &x, sizeof(x)));
	x.to_serial[6] = '\0';
	x.reserved[4] = 1;
	assert_false(tlsswitch_command_valid(TLS_CMD_SWITCH, &x, sizeof(x)));
	assert_false(tlsswitch_command_valid(TLS_CMD_SWITCH, &x, 112));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kinds_keep_their_journal_numbers_and_names),
		cmocka_unit_test(decoder_refuses_sizes_that_do_not_add_up),
		cmocka_unit_test(decoder_holds_each_kind_to_its_row),
		cmocka_unit_test(
			validator_and_applier_of_a_row_are_the_module_s),
		cmocka_unit_test(a_tls_switch_changes_nothing_and_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
