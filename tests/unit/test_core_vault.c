/*
 * test_core_vault.c - the card vault as state (src/core/vault.h), through
 * state_apply as the engine applies it: a card tokenized once (a second
 * card under its token is refused), found by token and by fingerprint,
 * revealed, erased (its ciphertext wiped from the state, later uses
 * refused as erased), rotations only forward; malformed entries refused
 * before they change anything; the state's snapshot carries the vault
 * and reads back to the same digest, a container from before the vault
 * reads as an empty vault, and an empty vault leaves the digest as it
 * was.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/command.h"
#include "core/ledger.h"
#include "core/state.h"
#include "core/vault.h"

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

/* Applies kind with ext; returns state_apply's code, outcome in *out. */
static int apply(struct state *s, u16 kind, const void *ext, u32 n, u64 ts,
		 u32 *out)
{
	u8 rec[16 + 512] = {0};
	struct command_header h = {.kind = kind, .ext_bytes = n};

	memcpy(rec, &h, sizeof(h));
	memcpy(rec + 16, ext, n);
	*out = 99;
	return state_apply(s, STATE_COMMAND, ts, rec, 16 + n, out);
}

static struct vault_card_cmd card(const char *token, u8 fp)
{
	struct vault_card_cmd c;

	memset(&c, 0, sizeof(c));
	memcpy(c.token, token, strlen(token));
	memset(c.fingerprint, fp, sizeof(c.fingerprint));
	memcpy(c.masked, "411111******1111", 16);
	memcpy(c.brand, "visa", 4);
	c.exp_month = 12;
	c.exp_year = 2031;
	memset(c.ct, 0xc7, sizeof(c.ct));
	return c;
}

static struct vault_use_cmd use(const char *token, const char *why)
{
	struct vault_use_cmd u;

	memset(&u, 0, sizeof(u));
	memcpy(u.token, token, strlen(token));
	memcpy(u.reason, why, strlen(why));
	return u;
}

static void vault_cards_reveal_erase_and_rotate(void **state)
{
	struct state *s = state_new(NULL);
	struct vault_card_cmd a = card("tok_a", 1), b = card("tok_b", 1),
			      again = card("tok_a", 2);
	struct vault_use_cmd r = use("tok_a", "refund 12"),
			     e = use("tok_a", "erasure request"),
			     unknown = use("tok_zz", "x");
	struct vault_card c;
	char toks[4][VAULT_TOKEN_BYTES];
	u32 out;

	(void)state;
	assert_non_null(s);
	assert_int_equal(apply(s, VAULT_CMD_CARD, &a, sizeof(a), TS0, &out), 0);
	assert_int_equal(out, VAULT_R_OK);
	assert_int_equal(
		apply(s, VAULT_CMD_CARD, &again, sizeof(again), TS0 + 1, &out),
		0);
	assert_int_equal(out, VAULT_R_EXISTS);
	assert_int_equal(apply(s, VAULT_CMD_CARD, &b, sizeof(b), TS0 + 2, &out),
			 0);
	assert_int_equal(vault_find(state_vault(s), "tok_a", &c), 0);
	assert_int_equal(c.fingerprint[0], 1); /* the first, not "again" */
	assert_int_equal(c.created_ns, TS0);
	assert_int_equal(
		vault_by_fingerprint(state_vault(s), a.fingerprint, toks, 4),
		2);
	assert_int_equal(
		apply(s, VAULT_CMD_REVEAL, &r, sizeof(r), TS0 + 3, &out), 0);
	assert_int_equal(out, VAULT_R_OK);
	assert_int_equal(apply(s, VAULT_CMD_REVEAL, &unknown, sizeof(unknown),
			       TS0 + 4, &out),
			 0);
	assert_int_equal(out, VAULT_R_UNKNOWN);
	assert_int_equal(
		apply(s, VAULT_CMD_ERASE, &e, sizeof(e), TS0 + 5, &out), 0);
	assert_int_equal(out, VAULT_R_OK);
	assert_int_equal(vault_find(state_vault(s), "tok_a", &c), 0);
	assert_true(c.erased && c.erased_ns == TS0 + 5 && c.reveals == 1);
	for (size_t i = 0; i < sizeof(c.ct); i++)
		assert_int_equal(c.ct[i], 0);
	assert_int_equal(
		apply(s, VAULT_CMD_REVEAL, &r, sizeof(r), TS0 + 6, &out), 0);
	assert_int_equal(out, VAULT_R_ERASED);
	assert_int_equal(
		apply(s, VAULT_CMD_ERASE, &e, sizeof(e), TS0 + 7, &out), 0);
	assert_int_equal(out, VAULT_R_ERASED);
	assert_int_equal(
		vault_by_fingerprint(state_vault(s), a.fingerprint, toks, 4),
		1);
	assert_string_equal(toks[0], "tok_b");

	struct vault_rotate_cmd rot = {.version = 2, .min_version = 2};
	assert_int_equal(
		apply(s, VAULT_CMD_ROTATE, &rot, sizeof(rot), TS0 + 8, &out),
		0);
	assert_int_equal(out, VAULT_R_OK);
	assert_int_equal(
		apply(s, VAULT_CMD_ROTATE, &rot, sizeof(rot), TS0 + 9, &out),
		0);
	assert_int_equal(out, VAULT_R_STALE_VERSION);
	state_free(s);
}

static void malformed_vault_entries_are_refused_and_change_nothing(void **state)
{
	struct state *s = state_new(NULL);
	struct vault_card_cmd bad_token = card("tok-a", 1),
			      bad_month = card("tok_a", 1);
	struct vault_use_cmd no_reason = use("tok_a", "");
	struct vault_rotate_cmd backwards = {.version = 1, .min_version = 2};
	u8 before[32], after[32];
	u32 out;

	(void)state;
	bad_month.exp_month = 13;
	state_digest(s, before);
	assert_int_equal(apply(s, VAULT_CMD_CARD, &bad_token, sizeof(bad_token),
			       TS0, &out),
			 -EBADMSG);
	assert_int_equal(apply(s, VAULT_CMD_CARD, &bad_month, sizeof(bad_month),
			       TS0, &out),
			 -EBADMSG);
	assert_int_equal(apply(s, VAULT_CMD_ERASE, &no_reason,
			       sizeof(no_reason), TS0, &out),
			 -EBADMSG);
	assert_int_equal(apply(s, VAULT_CMD_ROTATE, &backwards,
			       sizeof(backwards), TS0, &out),
			 -EBADMSG);
	state_digest(s, after);
	assert_memory_equal(before, after, 32);
	state_free(s);
}

static void
snapshot_carries_the_vault_and_old_containers_read_empty(void **state)
{
	struct state *s = state_new(NULL), *back;
	struct vault_card_cmd a = card("tok_a", 1);
	struct vault_card c;
	struct bytes snap = {0}, parts = {0};
	u8 d1[32], d2[32], empty[32];
	u32 out;

	(void)state;
	state_digest(s, empty);
	assert_int_equal(apply(s, VAULT_CMD_CARD, &a, sizeof(a), TS0, &out), 0);
	state_digest(s, d1);
	assert_memory_not_equal(d1, empty, 32);
	assert_int_equal(state_snapshot_write(s, to_bytes, &snap), 0);
	back = state_snapshot_read(snap.p, snap.len);
	assert_non_null(back);
	state_digest(back, d2);
	assert_memory_equal(d1, d2, 32);
	assert_int_equal(vault_find(state_vault(back), "tok_a", &c), 0);
	assert_memory_equal(c.ct, a.ct, sizeof(a.ct));
	state_free(back);
	/* A container written before the vault: the auth and policy parts
	 * only (each a u64 length and its bytes), then the ledger. */
	struct state *fresh = state_new(NULL);
	assert_int_equal(state_parts_write(fresh, to_bytes, &parts), 0);
	u64 vlen;
	size_t vpart = sizeof(vlen) + vault_snapshot_bytes(state_vault(fresh));
	memcpy(&vlen, parts.p + parts.len - vpart, sizeof(vlen));
	assert_int_equal(vlen, vault_snapshot_bytes(state_vault(fresh)));
	back = state_from_parts(ledger_new(NULL), parts.p, parts.len - vpart);
	assert_non_null(back);
	u64 cards, erased;
	u32 kv, mv;
	vault_counts(state_vault(back), &cards, &erased, &kv, &mv);
	assert_true(cards == 0 && erased == 0 && kv == 0);
	state_digest(back, d2);
	assert_memory_equal(d2, empty, 32);
	state_free(back);
	state_free(fresh);
	free(snap.p);
	free(parts.p);
	state_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vault_cards_reveal_erase_and_rotate),
		cmocka_unit_test(
			malformed_vault_entries_are_refused_and_change_nothing),
		cmocka_unit_test(
			snapshot_carries_the_vault_and_old_containers_read_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
