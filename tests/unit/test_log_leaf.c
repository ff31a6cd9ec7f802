/*
 * test_log_leaf.c - the audit tree's leaf rules (log/leaf.h): fixed
 * vectors computed outside this code base (tests/unit/leaf_vectors.py,
 * hashlib from the byte layout in docs/audit.md), what each rule commits
 * to and what it ignores, and event proofs at every chunk boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/auth.h"
#include "log/journal.h"
#include "log/leaf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define TS 1800000000000000000ull

/* From tests/unit/leaf_vectors.py. */
static const char guarded_hex[] =
	"46ff78c9cebc4b8c42f2c59f4260e2edf3bcc9760e972ef0c769251b2e5f7d03";
static const char batch_hex[] =
	"8c79918dabf02fa5273c10b043ddb6052897a8f141c94ef75e097ea3cda31522";
static const char pulse_hex[] =
	"3b0f546c91d679221d5bb14622b495e34ff9168353bd9c59d34057a57483d6c8";
static const char rule1_hex[] =
	"3466fd2ae242000fd3af1ee4a49199d9b42e85cc3e0ab24651fb65d89b2a0407";

static void hex(const u8 h[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void put_header(u8 *p, u32 size, u16 type, u16 version, u64 seq)
{
	u32 magic = JOURNAL_MAGIC, crc = 0xdeadbeefu;
	u64 ts = TS;
	memcpy(p, &magic, 4);
	memcpy(p + 4, &crc, 4);
	memcpy(p + 8, &size, 4);
	memcpy(p + 12, &type, 2);
	memcpy(p + 14, &version, 2);
	memcpy(p + 16, &seq, 8);
	memcpy(p + 24, &ts, 8);
}

static void put_events(u8 *p, u32 n)
{
	for (u32 i = 0; i < n; i++)
		for (u32 j = 0; j < 128; j++)
			p[i * 128 + j] = (u8)(7 * i + j);
}

/* The guarded command of the vectors; returns its size.  buf holds
 * 32 + 16 + 128 + n * 128 bytes. */
static size_t guarded(u8 *buf, u32 n, u64 seq)
{
	struct command_header h = {.kind = AUTH_CMD_TRANSFERS_GUARDED,
				   .ext_bytes = 128,
				   .count = n};
	size_t size = 32 + 16 + 128 + (size_t)n * 128;
	put_header(buf, (u32)size, JOURNAL_COMMAND, 2, seq);
	memcpy(buf + 32, &h, sizeof(h));
	for (u32 j = 0; j < 128; j++)
		buf[48 + j] = (u8)(0xa0 + j);
	put_events(buf + 176, n);
	return size;
}

static void assert_leaf_hex(const u8 *rec, size_t len, const char *want)
{
	u8 h[32];
	char got[65];
	assert_int_equal(leaf_hash_record(rec, len, h), 0);
	hex(h, got);
	assert_string_equal(got, want);
}

static void leaf_rules_match_the_independent_vectors(void **state)
{
	(void)state;
	static u8 buf[32 + 16 + 128 + 40 * 128];
	u8 batch[32 + 3 * 128], pulse[32];

	assert_leaf_hex(buf, guarded(buf, 40, 7), guarded_hex);
	put_header(batch, sizeof(batch), JOURNAL_CREATE_TRANSFERS, 2, 8);
	put_events(batch + 32, 3);
	assert_leaf_hex(batch, sizeof(batch), batch_hex);
	put_header(pulse, 32, JOURNAL_PULSE, 2, 9);
	assert_leaf_hex(pulse, sizeof(pulse), pulse_hex);
	/* Version 1: the record whole, checksum and all (unchanged). */
	put_header(batch, sizeof(batch), JOURNAL_CREATE_TRANSFERS, 1, 8);
	assert_leaf_hex(batch, sizeof(batch), rule1_hex);
}

static void rule_2_ignores_only_the_checksum(void **state)
{
	(void)state;
	static u8 buf[32 + 16 + 128 + 70 * 128];
	size_t len = guarded(buf, 70, 3);
	u8 base[32], h[32];

	assert_int_equal(leaf_hash_record(buf, len, base), 0);
	buf[5] ^= 0x55; /* the checksum */
	assert_int_equal(leaf_hash_record(buf, len, h), 0);
	assert_memory_equal(h, base, 32);
	buf[5] ^= 0x55;
	/* Every other byte is committed to: header, command, ext, events
	 * (one per region and the last byte of the last event). */
	static const size_t at[] = {0,	8,  14, 16,  24,  31,
				    33, 40, 48, 175, 176, 176 + 69 * 128 + 127};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		buf[at[i]] ^= 1;
		int r = leaf_hash_record(buf, len, h);
		assert_true(r != 0 || memcmp(h, base, 32) != 0);
		buf[at[i]] ^= 1;
	}
}

static void malformed_records_have_no_leaf(void **state)
{
	(void)state;
	static u8 buf[32 + 16 + 128 + 4 * 128];
	size_t len = guarded(buf, 4, 1);
	u8 h[32];
	u16 v = 3;

	/* count that does not add up with the size */
	buf[32 + 8] = 5;
	assert_int_equal(leaf_hash_record(buf, len, h), -EBADMSG);
	buf[32 + 8] = 4;
	assert_int_equal(leaf_hash_record(buf, len, h), 0);
	/* a size field that is not the length */
	assert_int_equal(leaf_hash_record(buf, len - 128, h), -EBADMSG);
	/* an unknown version; too short for a header */
	memcpy(buf + 14, &v, 2);
	assert_int_equal(leaf_hash_record(buf, len, h), -EBADMSG);
	assert_int_equal(leaf_hash_record(buf, 20, h), -EBADMSG);
	/* a batch of events that are not whole */
	u8 batch[32 + 100] = {0};
	put_header(batch, sizeof(batch), JOURNAL_CREATE_TRANSFERS, 2, 1);
	assert_int_equal(leaf_hash_record(batch, sizeof(batch), h), -EBADMSG);
}

/* Every event of n proves the events root, and a changed sibling, event
 * or length does not. */
static void prove_all(u32 n)
{
	size_t len = 32 + (size_t)n * 128;
	u8 *rec = calloc(1, len);
	struct leaf_event_proof *pr = malloc(sizeof(*pr));
	struct leaf_v2 p;
	const u8 *events;
	u32 got_n;
	u8 root[32];

	assert_non_null(rec);
	assert_non_null(pr);
	put_header(rec, (u32)len, JOURNAL_CREATE_ACCOUNTS, 2, 1);
	put_events(rec + 32, n);
	assert_int_equal(leaf_v2_split(rec, len, &p, &events, &got_n), 0);
	assert_int_equal(got_n, n);
	u32 step = n > 200 ? 97 : 1;
	for (u32 k = 0; k < n; k += step) {
		assert_int_equal(leaf_event_prove(events, n, k, pr), 0);
		assert_int_equal(pr->nchunk, leaf_chunk_len(n, k));
		assert_int_equal(leaf_events_root_from_proof(
					 events + (size_t)k * 128, pr, root),
				 0);
		assert_memory_equal(root, p.events_root, 32);
		/* another event at this place */
		assert_int_equal(
			leaf_events_root_from_proof(
				events + (size_t)((k + 1) % n) * 128, pr, root),
			n == 1 ? 0 : -EBADMSG);
		/* a sibling's hash changed */
		if (pr->nchunk > 1) {
			u32 s = (k % LEAF_CHUNK_EVENTS) == 0 ? 1 : 0;
			pr->chunk[s][0] ^= 1;
			assert_int_equal(
				leaf_events_root_from_proof(
					events + (size_t)k * 128, pr, root),
				0);
			assert_memory_not_equal(root, p.events_root, 32);
			pr->chunk[s][0] ^= 1;
		}
		/* a chunk one short, a path one long */
		pr->nchunk--;
		assert_int_equal(leaf_events_root_from_proof(
					 events + (size_t)k * 128, pr, root),
				 -EBADMSG);
		pr->nchunk++;
		pr->npath++;
		assert_int_equal(leaf_events_root_from_proof(
					 events + (size_t)k * 128, pr, root),
				 -EBADMSG);
	}
	assert_int_equal(leaf_event_prove(events, n, n, pr), -EINVAL);
	free(pr);
	free(rec);
}

static void every_event_proves_the_root_at_chunk_boundaries(void **state)
{
	(void)state;
	static const u32 ns[] = {1, 2, 31, 32, 33, 63, 64, 65, 100, 257, 8190};
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		prove_all(ns[i]);
}

static void event_count_comes_from_the_header_and_command(void **state)
{
	(void)state;
	u8 hdr[32], cmd[16] = {0};
	u32 n;

	put_header(hdr, 32 + 5 * 128, JOURNAL_CREATE_TRANSFERS, 2, 1);
	assert_int_equal(leaf_v2_event_count(hdr, cmd, &n), 0);
	assert_int_equal(n, 5);
	cmd[0] = 1; /* a command header on a batch */
	assert_int_equal(leaf_v2_event_count(hdr, cmd, &n), -EBADMSG);
	put_header(hdr, 32 + 5 * 128, JOURNAL_CREATE_TRANSFERS, 1, 1);
	memset(cmd, 0, sizeof(cmd));
	assert_int_equal(leaf_v2_event_count(hdr, cmd, &n), -EBADMSG);
	put_header(hdr, 32, JOURNAL_PULSE, 2, 1);
	assert_int_equal(leaf_v2_event_count(hdr, cmd, &n), 0);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(leaf_rules_match_the_independent_vectors),
		cmocka_unit_test(rule_2_ignores_only_the_checksum),
		cmocka_unit_test(malformed_records_have_no_leaf),
		cmocka_unit_test(
			every_event_proves_the_root_at_chunk_boundaries),
		cmocka_unit_test(event_count_comes_from_the_header_and_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
