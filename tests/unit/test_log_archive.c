/*
 * test_log_archive.c - journal retention and the audit files' state
 * (log/archive.h, log/auditstate.h): only sealed segments wholly below
 * the bound move, each to exactly one complete place; the reader and
 * journal_open find moved segments in the archive (and journal_open
 * needs them only when the state before the journal is older than
 * DATA/journal); DATA/audit/state round-trips and any damage to it is
 * refused with its reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log/archive.h"
#include "log/auditstate.h"
#include "log/fsdir.h"
#include "log/journal.h"
#include "log/journal_reader.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir_fixture.h"

#include "banned.h"

static int setup(void **state)
{
	return tmpdir_setup(state, "/tmp/tpw-archive-XXXXXX");
}

static int teardown(void **state)
{
	return tmpdir_teardown(state);
}

struct count {
	u64 n, next;
};

static int counting(void *ctx, const struct journal_record *r)
{
	struct count *c = ctx;
	if (r->seq != c->next)
		return -EBADMSG;
	c->next++;
	c->n++;
	return 0;
}

/* A journal of `records` records of 8 events (1 KiB each) in segments of
 * 4 KiB (three records each), closed. */
static void write_journal(const char *dir, u64 records)
{
	struct journal *j = NULL;
	const char *err = NULL;
	struct journal_options o = {.segment_bytes_max = 4096, .no_sync = true};
	struct count c = {0, 1};
	static u8 payload[8 * 128];

	assert_int_equal(journal_open(&j, dir, &o, 0, counting, &c, &err), 0);
	for (u64 k = 1; k <= records; k++) {
		memset(payload, (int)k, sizeof(payload));
		assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS,
						1000 + k, payload,
						sizeof(payload), NULL),
				 0);
		assert_int_equal(journal_sync(j), 0);
	}
	journal_close(j);
}

static bool exists(const char *dir, const char *sub, u64 seq)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s/" JOURNAL_SEGMENT_NAME_FMT, dir,
		 sub, (unsigned long long)seq);
	return stat(path, &st) == 0;
}

static void only_sealed_segments_below_the_bound_move(void **state)
{
	struct fixture *f = *state;
	char archive[300];
	const char *why = NULL;
	u64 moved = 0;
	struct journal_archive_stats js;

	write_journal(f->dir, 20); /* segments 1, 4, 7, ..., 19 */
	snprintf(archive, sizeof(archive), "%s/archive", f->dir);
	assert_int_equal(fsdir_make(archive), 0);
	/* Segment 1 holds 1..3: seq 3 is not below 3, so nothing moves. */
	assert_int_equal(journal_archive_move(f->dir, archive, 3, &moved, &why),
			 0);
	assert_true(moved == 0);
	assert_int_equal(journal_archive_move(f->dir, archive, 4, &moved, &why),
			 0);
	assert_true(moved == 1);
	assert_false(exists(f->dir, "journal", 1));
	assert_true(exists(f->dir, "archive", 1));
	/* The newest segment never moves, whatever the bound. */
	assert_int_equal(
		journal_archive_move(f->dir, archive, UINT64_MAX, &moved, &why),
		0);
	assert_true(moved == 5);
	assert_true(exists(f->dir, "journal", 19));
	assert_false(exists(f->dir, "archive", 19));
	assert_int_equal(journal_archive_stats(f->dir, archive, &js), 0);
	assert_true(js.data_segments == 1 && js.archive_segments == 6);
	assert_true(js.oldest_data_seq == 19 && js.archive_readable);
	assert_true(js.archive_bytes == 6 * 3 * (32 + 1024));
}

static void moved_segments_are_read_from_the_archive(void **state)
{
	struct fixture *f = *state;
	char archive[300], path[600];
	const char *why = NULL, *err = NULL;
	u64 moved = 0;
	struct journal_reader *rd;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;

	write_journal(f->dir, 20);
	snprintf(archive, sizeof(archive), "%s/archive", f->dir);
	assert_int_equal(fsdir_make(archive), 0);
	assert_int_equal(
		journal_archive_move(f->dir, archive, 10, &moved, &why), 0);
	assert_true(moved == 3); /* 1..3, 4..6, 7..9 */
	/* A crash between the archive's rename and the unlink: segment 7
	 * in both places; and a stale partial copy of the next. */
	snprintf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT, archive,
		 7ull);
	FILE *in = fopen(path, "rb");
	snprintf(path, sizeof(path), "%s/journal/" JOURNAL_SEGMENT_NAME_FMT,
		 f->dir, 7ull);
	FILE *out = fopen(path, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf), in);
	assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
	snprintf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT ".tmp",
		 archive, 10ull);
	out = fopen(path, "wb");
	assert_int_equal(fwrite(buf, 1, 100, out), 100);
	fclose(out);

	struct journal_archive_stats js;
	assert_int_equal(journal_archive_stats(f->dir, archive, &js), 0);
	assert_true(js.archive_segments == 3);
	assert_true(js.archive_only_bytes == 2 * 3 * (32 + 1024));
	assert_true(js.archive_bytes == 3 * 3 * (32 + 1024));

	/* Without the archive the reader stops at the first gap. */
	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	assert_int_equal(journal_reader_next(rd, &r, &raw, &raw_bytes),
			 -EBADMSG);
	journal_reader_close(rd);
	/* With it, every record once, in order. */
	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	journal_reader_archive(rd, archive);
	for (u64 k = 1; k <= 20; k++) {
		assert_int_equal(journal_reader_next(rd, &r, &raw, &raw_bytes),
				 1);
		assert_true(r.seq == k);
		assert_int_equal(((const u8 *)r.payload)[0], (u8)k);
	}
	assert_int_equal(journal_reader_next(rd, &r, &raw, &raw_bytes), 0);
	journal_reader_close(rd);

	/* journal_open from a state at seq 9 needs nothing archived... */
	struct journal *j = NULL;
	struct journal_options o = {.segment_bytes_max = 4096, .no_sync = true};
	struct count c = {0, 10};
	assert_int_equal(journal_open(&j, f->dir, &o, 9, counting, &c, &err),
			 0);
	assert_true(c.n == 11);
	journal_close(j);
	/* ...from nothing it replays the archive's segments first... */
	o.archive_dir = archive;
	c = (struct count){0, 1};
	assert_int_equal(journal_open(&j, f->dir, &o, 0, counting, &c, &err),
			 0);
	assert_true(c.n == 20);
	journal_close(j);
	/* ...and without them says where it looked. */
	o.archive_dir = NULL;
	c = (struct count){0, 1};
	assert_int_equal(journal_open(&j, f->dir, &o, 0, counting, &c, &err),
			 -EBADMSG);
	assert_non_null(strstr(err, "records are missing"));
	/* The next move replaces the archive's copy of 7, unlinks the one
	 * in DATA/journal, and overwrites the stale .tmp. */
	assert_int_equal(
		journal_archive_move(f->dir, archive, 13, &moved, &why), 0);
	assert_true(moved == 2);
	assert_false(exists(f->dir, "journal", 7));
	assert_false(exists(f->dir, "journal", 10));
	assert_true(exists(f->dir, "archive", 10));
	assert_int_equal(journal_archive_stats(f->dir, archive, &js), 0);
	assert_true(js.archive_segments == 4 && js.oldest_data_seq == 13);
}

static void audit_state_round_trips_and_damage_is_refused(void **state)
{
	struct fixture *f = *state;
	struct auditstate s = {.size = 1234567, .positions_crc = 0xdeadbeef},
			  got;
	u8 buf[AUDITSTATE_BYTES], bad[AUDITSTATE_BYTES];
	const char *why = NULL;
	char dir[300];

	for (unsigned i = 0; i < 32; i++)
		s.root[i] = (u8)(i * 7 + 1);
	auditstate_encode(&s, buf);
	assert_int_equal(auditstate_decode(buf, sizeof(buf), &got, &why), 0);
	assert_true(got.size == s.size);
	assert_true(got.positions_crc == s.positions_crc);
	assert_memory_equal(got.root, s.root, 32);
	/* Any flipped bit anywhere. */
	for (unsigned i = 0; i < AUDITSTATE_BYTES; i++) {
		memcpy(bad, buf, sizeof(bad));
		bad[i] ^= 0x10;
		assert_int_equal(
			auditstate_decode(bad, sizeof(bad), &got, &why),
			-EBADMSG);
		assert_non_null(why);
	}
	assert_int_equal(auditstate_decode(buf, sizeof(buf) - 1, &got, &why),
			 -EBADMSG);
	assert_string_equal(why, "wrong length");
	memcpy(bad, buf, sizeof(bad));
	bad[0] = 'X';
	assert_int_equal(auditstate_decode(bad, sizeof(bad), &got, &why),
			 -EBADMSG);
	assert_string_equal(why, "not an audit state file");
	/* On disk: absent, then written and read back. */
	assert_int_equal(auditstate_read(f->dir, &got, &why), -ENOENT);
	snprintf(dir, sizeof(dir), "%s/audit", f->dir);
	assert_int_equal(fsdir_make(dir), 0);
	assert_int_equal(auditstate_write(f->dir, &s), 0);
	memset(&got, 0, sizeof(got));
	assert_int_equal(auditstate_read(f->dir, &got, &why), 0);
	assert_true(got.size == s.size);
	assert_memory_equal(got.root, s.root, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			only_sealed_segments_below_the_bound_move, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			moved_segments_are_read_from_the_archive, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			audit_state_round_trips_and_damage_is_refused, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
