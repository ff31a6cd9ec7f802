/*
 * test_log_entry_view.c - the decoded audit entry (log/entry_view.h):
 * each kind's fields and words, text from a record made printable, a
 * batch's count and first ids, the administrator as an all-zero author,
 * and damaged records (bad checksum, unknown kind) refused with why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/auth.h"
#include "core/command.h"
#include "core/pstate.h"
#include "core/tlsswitch.h"
#include "log/entry_view.h"
#include "log/journal.h"
#include "record_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* 2027-01-15T08:00:00.000000123Z */
#define TS 1800000000000000123ull

static u8 rec[JOURNAL_HEADER_BYTES + 16 + 4096];

/* A sealed record of type `type` holding payload[0..n). */
static size_t record(u16 type, const void *payload, size_t n)
{
	assert_true(JOURNAL_HEADER_BYTES + n <= sizeof(rec));
	memset(rec, 0, sizeof(rec));
	return record_fixture(rec, type, 7, TS, payload, n);
}

/* A command record: header, ext[0..ext_bytes), no events. */
static size_t command(u16 kind, const void *ext, u32 ext_bytes)
{
	static u8 p[16 + 2048];
	struct command_header h = {.kind = kind, .ext_bytes = ext_bytes};

	memcpy(p, &h, sizeof(h));
	memcpy(p + 16, ext, ext_bytes);
	return record(JOURNAL_COMMAND, p, 16 + ext_bytes);
}

static const char *field(const struct entry_view *v, const char *key)
{
	for (u32 i = 0; i < v->nfields; i++)
		if (strcmp(v->fields[i].key, key) == 0)
			return v->fields[i].value;
	return NULL;
}

static void an_override_names_its_author_range_and_reason(void **state)
{
	(void)state;
	struct pstate_override_cmd o = {0};
	struct entry_view v;

	memset(o.author, 0xab, sizeof(o.author));
	memcpy(o.platform, "android", 7);
	memcpy(o.range, "3.9.x", 5);
	memcpy(o.reason, "REL-311\n\x01\xff", 10);
	o.mode = POLICY_OVERRIDE_ALLOW;
	o.duration_s = 120;
	size_t n = command(PSTATE_CMD_OVERRIDE, &o, sizeof(o));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.type_name, "command");
	assert_string_equal(v.command, "policy_override");
	assert_int_equal(v.seq, 7);
	assert_true(v.timestamp_ns == TS);
	assert_string_equal(v.time, "2027-01-15T08:00:00.000000123Z");
	assert_true(v.has_author);
	assert_memory_equal(v.author, o.author, 32);
	assert_false(entry_view_is_admin(v.author));
	assert_int_equal(v.nfields, 5);
	assert_string_equal(field(&v, "platform"), "android");
	assert_string_equal(field(&v, "range"), "3.9.x");
	/* Control and non-ASCII bytes become '?'. */
	assert_string_equal(field(&v, "reason"), "REL-311???");
	assert_string_equal(field(&v, "mode"), "allow");
	assert_string_equal(field(&v, "duration_s"), "120");
	assert_string_equal(v.summary, "override opened: android 3.9.x -> "
				       "allow for 120 s: REL-311???");
	entry_view_set_outcome(&v, 0); /* none: nothing changes */
	assert_int_equal(v.nfields, 5);
	entry_view_set_outcome(&v, 2);
	assert_string_equal(field(&v, "override_id"), "2");
	assert_string_equal(v.summary, "override 2 opened: android 3.9.x -> "
				       "allow for 120 s: REL-311???");
	char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
	entry_view_thumbprint(v.author, tp);
	assert_string_equal(tp, "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s");
}

/* Kind 20: kind 17's fields, then the message (as journaled, never read
 * past the ext even when message_bytes says more) and the expected end. */
static void an_override_2_shows_its_message_and_expected_end(void **state)
{
	(void)state;
	struct {
		struct pstate_override_2 h;
		char msg[32];
	} x;
	struct entry_view v;
	static const char msg[] = "{\"default\":\"Back soon\"}";

	memset(&x, 0, sizeof(x));
	memcpy(x.h.base.platform, "android", 7);
	memcpy(x.h.base.range, "3.x", 3);
	memcpy(x.h.base.reason, "REL-311", 7);
	x.h.base.duration_s = 600;
	x.h.expected_end_s = 1800000000; /* 2027-01-15T08:00:00Z */
	x.h.message_bytes = sizeof(msg) - 1;
	memcpy(x.msg, msg, sizeof(msg) - 1);
	size_t n = command(PSTATE_CMD_OVERRIDE_2, &x, sizeof(x));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.command, "policy_override_2");
	assert_true(entry_view_is_admin(v.author));
	assert_string_equal(field(&v, "reason"), "REL-311");
	assert_string_equal(field(&v, "message"), msg);
	assert_string_equal(field(&v, "expected_end"), "2027-01-15T08:00:00Z");
	entry_view_set_outcome(&v, 4);
	assert_string_equal(field(&v, "override_id"), "4");
	assert_string_equal(v.summary, "override 4 opened: android 3.x -> "
				       "compat for 600 s: REL-311");
	/* No expected end, and a message_bytes past the ext: cut at it. */
	x.h.expected_end_s = 0;
	x.h.message_bytes = 5000;
	memset(x.msg, 'm', sizeof(x.msg));
	n = command(PSTATE_CMD_OVERRIDE_2, &x, sizeof(x));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(field(&v, "expected_end"), "");
	assert_int_equal(strlen(field(&v, "message")), sizeof(x.msg));
}

static void policy_set_and_end_by_the_administrator(void **state)
{
	(void)state;
	static u8 ext[sizeof(struct pstate_set) + 32];
	struct pstate_set s = {.rollback_of = 3, .text_bytes = 20};
	struct pstate_override_end e = {.id = 9};
	struct entry_view v;

	memcpy(s.reason, "back to 3", 9);
	memcpy(ext, &s, sizeof(s));
	size_t n = command(PSTATE_CMD_SET, ext, sizeof(ext));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.command, "policy_set");
	assert_true(v.has_author && entry_view_is_admin(v.author));
	assert_string_equal(field(&v, "reason"), "back to 3");
	assert_string_equal(field(&v, "document_bytes"), "20");
	assert_string_equal(field(&v, "rollback_of"), "3");
	assert_string_equal(
		v.summary, "client policy rolled back to version 3: back to 3");

	/* The version the state gave it. */
	entry_view_set_outcome(&v, 4);
	assert_string_equal(field(&v, "version"), "4");
	assert_string_equal(v.summary, "client policy version 4: rolled back "
				       "to version 3: back to 3");

	/* A text_bytes beyond the ext is not believed. */
	s.text_bytes = 1000;
	memcpy(ext, &s, sizeof(s));
	n = command(PSTATE_CMD_SET, ext, sizeof(ext));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(field(&v, "document_bytes"), "32");

	memcpy(e.reason, "shipped", 7);
	n = command(PSTATE_CMD_OVERRIDE_END, &e, sizeof(e));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.command, "policy_override_end");
	assert_string_equal(field(&v, "override_id"), "9");
	assert_string_equal(v.summary, "override 9 ended: shipped");

	struct pstate_override_extend x = {.id = 9, .duration_s = 600};
	memcpy(x.reason, "still rolling out", 17);
	n = command(PSTATE_CMD_OVERRIDE_EXTEND, &x, sizeof(x));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.command, "policy_override_extend");
	assert_true(v.has_author && entry_view_is_admin(v.author));
	assert_string_equal(field(&v, "override_id"), "9");
	assert_string_equal(field(&v, "duration_s"), "600");
	assert_string_equal(field(&v, "reason"), "still rolling out");
	assert_string_equal(v.summary,
			    "override 9 extended by 600 s: still rolling out");
}

/* Kind 21: the server's own entry, no principal; it names the override
 * and its end; naming the override's platform and range (what the state
 * knows) adds them to an end, an extension or an expiry, and to nothing
 * else. */
static void an_expiry_is_the_servers_and_names_its_override(void **state)
{
	(void)state;
	struct pstate_override_expired x = {.id = 4,
					    .expires_at_s = 1800000060};
	struct entry_view v;

	size_t n = command(PSTATE_CMD_OVERRIDE_EXPIRED, &x, sizeof(x));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.command, "policy_override_expired");
	assert_true(v.server_author);
	assert_false(v.has_author);
	assert_int_equal(v.nfields, 2);
	assert_string_equal(field(&v, "override_id"), "4");
	assert_string_equal(field(&v, "expires_at"), "2027-01-15T08:01:00Z");
	assert_string_equal(v.summary, "override 4 expired: its end, "
				       "2027-01-15T08:01:00Z, passed");
	assert_int_equal(entry_view_override_id(&v), 4);
	entry_view_set_override(&v, "android", "3.9.x\x01");
	assert_string_equal(field(&v, "platform"), "android");
	assert_string_equal(field(&v, "range"), "3.9.x?");
	assert_string_equal(v.summary,
			    "override 4 (android 3.9.x?) expired: its end, "
			    "2027-01-15T08:01:00Z, passed");

	struct pstate_override_end e = {.id = 9};
	memcpy(e.reason, "shipped", 7);
	n = command(PSTATE_CMD_OVERRIDE_END, &e, sizeof(e));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_false(v.server_author);
	assert_int_equal(entry_view_override_id(&v), 9);
	entry_view_set_override(&v, "ios", "<2");
	assert_string_equal(v.summary, "override 9 (ios <2) ended: shipped");

	struct pstate_override_extend xt = {.id = 9, .duration_s = 600};
	n = command(PSTATE_CMD_OVERRIDE_EXTEND, &xt, sizeof(xt));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	entry_view_set_override(&v, "ios", "<2");
	assert_string_equal(v.summary,
			    "override 9 (ios <2) extended by 600 s: ");

	/* An opening has its platform and range already: left alone. */
	struct pstate_override_cmd o = {0};
	memcpy(o.platform, "web", 3);
	memcpy(o.range, "1.x", 3);
	o.duration_s = 60;
	n = command(PSTATE_CMD_OVERRIDE, &o, sizeof(o));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_int_equal(entry_view_override_id(&v), 0);
	u32 nf = v.nfields;
	entry_view_set_override(&v, "ios", "<2");
	assert_int_equal(v.nfields, nf);
	assert_string_equal(field(&v, "platform"), "web");
}

static void auth_commands_show_their_ext(void **state)
{
	(void)state;
	struct auth_principal p = {0};
	struct auth_revoke r = {0};
	struct auth_key_event k = {0};
	struct entry_view v;

	/* A name that fills all 64 bytes, without a NUL. */
	memset(p.name, 'n', sizeof(p.name));
	size_t n = command(AUTH_CMD_PRINCIPAL, &p, sizeof(p));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_false(v.has_author);
	assert_int_equal(strlen(field(&v, "name")), 64);
	assert_string_equal(field(&v, "thumbprint"),
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

	/* A revocation of the first version (144 bytes). */
	memset(r.iss, 0xff, sizeof(r.iss));
	memcpy(r.jti, "gone-1", 6);
	n = command(AUTH_CMD_REVOKE, &r, AUTH_REVOKE_V1_BYTES);
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.command, "revoke");
	assert_string_equal(field(&v, "jti"), "gone-1");
	assert_string_equal(field(&v, "scope"), "jti");
	assert_string_equal(v.summary,
			    "mandate link jti \"gone-1\" of issuer "
			    "__________________________________________8 "
			    "revoked");
	r.flags = AUTH_REVOKE_ALL;
	n = command(AUTH_CMD_REVOKE, &r, sizeof(r));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(field(&v, "scope"), "all");
	assert_null(field(&v, "jti"));

	memcpy(k.kid, "k2", 2);
	k.kind = AUTH_KEY_RETIRED;
	k.not_after = 1800000000;
	n = command(AUTH_CMD_KEY, &k, sizeof(k));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.summary, "server key k2 retired");
	assert_string_equal(field(&v, "not_after_s"), "1800000000");
	assert_null(field(&v, "overlap_s"));

	/* A rotation names the overlap it gave the keys it replaced: 0 for
	 * a leaked key; none when it was not recorded (not_after 0). */
	k.kind = AUTH_KEY_CREATED;
	k.not_before = 1800000000;
	k.not_after = 1800000000;
	n = command(AUTH_CMD_KEY, &k, sizeof(k));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(field(&v, "overlap_s"), "0");
	k.not_after = 1800000000 + 2592000;
	n = command(AUTH_CMD_KEY, &k, sizeof(k));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(field(&v, "overlap_s"), "2592000");
	k.not_after = 0;
	n = command(AUTH_CMD_KEY, &k, sizeof(k));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_null(field(&v, "overlap_s"));
}

static void batches_give_a_count_and_the_first_ids(void **state)
{
	(void)state;
	u8 ev[5 * 128] = {0};
	struct entry_view v;

	for (u8 i = 0; i < 5; i++)
		ev[i * 128] = (u8)(10 + i);
	size_t n = record(JOURNAL_CREATE_TRANSFERS, ev, sizeof(ev));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_null(v.command);
	assert_false(v.has_author);
	assert_string_equal(v.type_name, "create_transfers");
	assert_string_equal(field(&v, "count"), "5");
	assert_string_equal(field(&v, "first_ids"), "10,11,12");
	assert_string_equal(v.summary, "5 transfers (first ids 10,11,12, ...)");

	/* accounts_owned: the events and the owner. */
	u8 p[16 + 32 + 128] = {0};
	struct command_header h = {
		.kind = AUTH_CMD_ACCOUNTS_OWNED, .ext_bytes = 32, .count = 1};
	memcpy(p, &h, sizeof(h));
	p[16 + 32] = 4;
	n = record(JOURNAL_COMMAND, p, sizeof(p));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.summary,
			    "1 account (first ids 4) owned by administrator");

	n = record(JOURNAL_PULSE, NULL, 0);
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.type_name, "pulse");
	assert_int_equal(v.nfields, 0);
}

static void damaged_records_say_why(void **state)
{
	(void)state;
	struct pstate_override_end e = {0};
	struct entry_view v;

	/* A kind no row has: the header still reads. */
	size_t n = command(99, &e, sizeof(e));
	assert_int_equal(entry_view_decode(rec, n, &v), -EBADMSG);
	assert_string_equal(v.type_name, "command");
	assert_int_equal(v.seq, 7);
	assert_non_null(strstr(v.error, "command does not decode"));

	/* A changed byte without a new checksum. */
	n = command(PSTATE_CMD_OVERRIDE_END, &e, sizeof(e));
	rec[n - 1] ^= 1;
	assert_int_equal(entry_view_decode(rec, n, &v), -EBADMSG);
	assert_string_equal(v.type_name, "unknown");
	assert_non_null(strstr(v.error, "record does not decode"));

	/* Cut short. */
	assert_int_equal(entry_view_decode(rec, 10, &v), -EBADMSG);

	/* A batch that is not whole events. */
	u8 odd[100] = {0};
	n = record(JOURNAL_CREATE_ACCOUNTS, odd, sizeof(odd));
	assert_int_equal(entry_view_decode(rec, n, &v), -EBADMSG);
}

/* Kind 22: the server's own switch has no principal; an operator's
 * names its author; both give the reason, the roles and the serials. */
static void a_tls_switch_names_its_reason_roles_and_serials(void **state)
{
	(void)state;
	struct tlsswitch x = {.reason = TLSSWITCH_EXPIRED,
			      .from = TLSSWITCH_PRIMARY,
			      .to = TLSSWITCH_STANDBY};
	struct entry_view v;

	memcpy(x.from_serial, "1001", 4);
	memcpy(x.to_serial, "6006", 4);
	size_t n = command(TLS_CMD_SWITCH, &x, sizeof(x));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_string_equal(v.command, "tls_switch");
	assert_true(v.server_author);
	assert_false(v.has_author);
	assert_int_equal(v.nfields, 5);
	assert_string_equal(field(&v, "reason"), "expired");
	assert_string_equal(field(&v, "from"), "primary");
	assert_string_equal(field(&v, "to"), "standby");
	assert_string_equal(field(&v, "from_serial"), "1001");
	assert_string_equal(field(&v, "to_serial"), "6006");
	assert_string_equal(v.summary,
			    "TLS certificate switched from primary (serial "
			    "1001) to standby (serial 6006): expired");

	x.reason = TLSSWITCH_OPERATOR;
	x.from = TLSSWITCH_STANDBY;
	x.to = TLSSWITCH_PRIMARY;
	memset(x.author, 5, sizeof(x.author));
	n = command(TLS_CMD_SWITCH, &x, sizeof(x));
	assert_int_equal(entry_view_decode(rec, n, &v), 0);
	assert_false(v.server_author);
	assert_true(v.has_author);
	assert_memory_equal(v.author, x.author, 32);
	assert_string_equal(v.summary,
			    "TLS certificate switched from standby (serial "
			    "1001) to primary (serial 6006): operator");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			a_tls_switch_names_its_reason_roles_and_serials),
		cmocka_unit_test(an_override_names_its_author_range_and_reason),
		cmocka_unit_test(
			an_override_2_shows_its_message_and_expected_end),
		cmocka_unit_test(policy_set_and_end_by_the_administrator),
		cmocka_unit_test(
			an_expiry_is_the_servers_and_names_its_override),
		cmocka_unit_test(auth_commands_show_their_ext),
		cmocka_unit_test(batches_give_a_count_and_the_first_ids),
		cmocka_unit_test(damaged_records_say_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
