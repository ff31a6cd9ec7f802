/*
 * test_log_reader.c - the journal reader returns every record exactly as
 * it is on disk, in order, across segments; tails a journal that is still
 * being written; treats an unfinished tail as "nothing more yet" and a bad
 * record followed by good ones as corruption.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log/journal.h"
#include "log/journal_reader.h"
#include "log/fsdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir_fixture.h"

#include "banned.h"

static int setup(void **state)
{
	return tmpdir_setup(state, "/tmp/tpw-reader-XXXXXX");
}

static int teardown(void **state)
{
	return tmpdir_teardown(state);
}

static int no_replay(void *ctx, const struct journal_record *r)
{
	(void)ctx;
	(void)r;
	return 0;
}

static struct journal *open_journal(const char *dir, u64 segment_bytes)
{
	struct journal *j = NULL;
	const char *err = NULL;
	struct journal_options o = {.segment_bytes_max = segment_bytes,
				    .no_sync = true};
	assert_int_equal(journal_open(&j, dir, &o, 0, no_replay, NULL, &err),
			 0);
	return j;
}

/* Record k carries k events whose bytes all equal k. */
static void append(struct journal *j, u64 k)
{
	static u8 payload[128 * 8];
	u32 events = (u32)(k % 8) + 1;
	memset(payload, (int)(k & 0xff), events * 128u);
	assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS, 1000 + k,
					payload, events * 128u, NULL),
			 0);
}

static void expect_record(struct journal_reader *rd, u64 k)
{
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	int ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
	if (ret != 1)
		fprintf(stderr, "next: %d %s\n", ret, journal_reader_error(rd));
	assert_int_equal(ret, 1);
	assert_true(r.seq == k);
	assert_true(r.timestamp == 1000 + k);
	assert_int_equal(r.payload_bytes, ((k % 8) + 1) * 128);
	assert_int_equal(raw_bytes, JOURNAL_HEADER_BYTES + r.payload_bytes);
	assert_ptr_equal(raw + JOURNAL_HEADER_BYTES, r.payload);
	for (u32 i = 0; i < r.payload_bytes; i++)
		assert_int_equal(((const u8 *)r.payload)[i], k & 0xff);
	/* The raw bytes are a record journal_decode accepts whole. */
	struct journal_record again;
	assert_int_equal(journal_decode(raw, raw_bytes, &again),
			 (long)raw_bytes);
}

static void expect_end(struct journal_reader *rd)
{
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	assert_int_equal(journal_reader_next(rd, &r, &raw, &raw_bytes), 0);
}

static void reads_every_record_in_order_across_segments(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_journal(f->dir, 4096); /* many segments */
	struct journal_reader *rd;

	for (u64 k = 1; k <= 200; k++) {
		append(j, k);
		if (k % 3 == 0)
			assert_int_equal(journal_sync(j), 0);
	}
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	for (u64 k = 1; k <= 200; k++)
		expect_record(rd, k);
	expect_end(rd);
	journal_reader_close(rd);
	journal_close(j);
}

static void starts_at_the_requested_seq(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_journal(f->dir, 4096);
	struct journal_reader *rd;

	for (u64 k = 1; k <= 60; k++) {
		append(j, k);
		assert_int_equal(journal_sync(j), 0);
	}
	assert_int_equal(journal_reader_open(&rd, f->dir, 37), 0);
	for (u64 k = 37; k <= 60; k++)
		expect_record(rd, k);
	expect_end(rd);
	journal_reader_close(rd);
	journal_close(j);
}

static void tails_a_journal_that_is_still_written(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_journal(f->dir, 8192);
	struct journal_reader *rd;

	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	expect_end(rd); /* nothing yet */
	u64 k = 1;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 5; i++)
			append(j, k + (u64)i);
		assert_int_equal(journal_sync(j), 0);
		for (int i = 0; i < 5; i++)
			expect_record(rd, k++);
		expect_end(rd);
	}
	journal_reader_close(rd);
	journal_close(j);
}

static void never_reads_past_the_limit(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_journal(f->dir, 0);
	struct journal_reader *rd;

	for (u64 k = 1; k <= 10; k++)
		append(j, k);
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	journal_reader_limit(rd, 4);
	for (u64 k = 1; k <= 4; k++)
		expect_record(rd, k);
	expect_end(rd); /* 5..10 are in the file, but past the limit */
	journal_reader_limit(rd, 10);
	for (u64 k = 5; k <= 10; k++)
		expect_record(rd, k);
	expect_end(rd);
	journal_reader_close(rd);
	journal_close(j);
}

static char *last_segment(const char *dir)
{
	static char path[256];
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ls %s/journal/*.wal | tail -n 1", dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(path, sizeof(path), p));
	pclose(p);
	path[strcspn(path, "\n")] = '\0';
	return path;
}

static void unfinished_tail_is_the_end_not_an_error(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_journal(f->dir, 0);
	struct journal_reader *rd;

	for (u64 k = 1; k <= 10; k++)
		append(j, k);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);
	/* Half a record at the end, as a crash mid-write leaves it. */
	int fd = open(last_segment(f->dir), O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	u8 junk[50];
	memset(junk, 0x54, sizeof(junk));
	memcpy(junk, "TPWL", 4); /* the magic, little-endian */
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);

	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	for (u64 k = 1; k <= 10; k++)
		expect_record(rd, k);
	expect_end(rd);
	journal_reader_close(rd);
}

static void bad_record_before_good_ones_is_corruption(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_journal(f->dir, 0);
	struct journal_reader *rd;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;

	for (u64 k = 1; k <= 10; k++)
		append(j, k);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);
	/* Flip a payload byte of record 4. */
	u64 off = 0;
	for (u64 k = 1; k < 4; k++)
		off += JOURNAL_HEADER_BYTES + ((k % 8) + 1) * 128;
	int fd = open(last_segment(f->dir), O_RDWR);
	assert_true(fd >= 0);
	u8 b;
	assert_int_equal(pread(fd, &b, 1, (off_t)(off + 40)), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)(off + 40)), 1);
	close(fd);

	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	for (u64 k = 1; k <= 3; k++)
		expect_record(rd, k);
	assert_int_equal(journal_reader_next(rd, &r, &raw, &raw_bytes),
			 -EBADMSG);
	char want[64];
	snprintf(want, sizeof(want), "at offset %llu", (unsigned long long)off);
	assert_non_null(strstr(journal_reader_error(rd), want));
	assert_non_null(strstr(journal_reader_error(rd), ".wal"));
	journal_reader_close(rd);
}

static void missing_journal_directory_is_enoent(void **state)
{
	struct fixture *f = *state;
	struct journal_reader *rd = NULL;
	assert_int_equal(journal_reader_open(&rd, f->dir, 1), -ENOENT);
	assert_null(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			reads_every_record_in_order_across_segments, setup,
			teardown),
		cmocka_unit_test_setup_teardown(starts_at_the_requested_seq,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			tails_a_journal_that_is_still_written, setup, teardown),
		cmocka_unit_test_setup_teardown(
			unfinished_tail_is_the_end_not_an_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			bad_record_before_good_ones_is_corruption, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			missing_journal_directory_is_enoent, setup, teardown),
		cmocka_unit_test_setup_teardown(never_reads_past_the_limit,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
