/*
 * test_log_snapshot.c - a snapshot is loaded only when whole and valid,
 * the newest valid one wins, and pruning keeps the newest N.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

struct fixture {
	char dir[64];
	struct snapshot_writer *w;
	int warnings;
	char warning[1024];
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/tpw-snap-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->w = malloc(sizeof(*f->w));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->w);
	free(f);
	return 0;
}

static void on_warn(void *ctx, const char *msg)
{
	struct fixture *f = ctx;
	f->warnings++;
	snprintf(f->warning, sizeof(f->warning), "%s", msg);
}

static u8 pattern(u64 seq, size_t i)
{
	return (u8)(seq * 131 + i * 7 + (i >> 9));
}

/* Write a snapshot of `bytes` bytes through the sink in uneven pieces
 * (some larger than the writer's buffer). */
static void write_snapshot(struct fixture *f, u64 seq, size_t bytes)
{
	u8 *data = malloc(bytes ? bytes : 1);
	for (size_t i = 0; i < bytes; i++)
		data[i] = pattern(seq, i);
	assert_int_equal(snapshot_begin(f->w, f->dir, seq, seq * 10), 0);
	size_t off = 0, piece = 1;
	while (off < bytes) {
		size_t n = bytes - off < piece ? bytes - off : piece;
		assert_int_equal(snapshot_sink(f->w, data + off, n), 0);
		off += n;
		piece = piece * 3 + 1; /* 1, 4, 13, ... up to megabytes */
	}
	assert_int_equal(snapshot_commit(f->w), 0);
	free(data);
}

static void snap_path(const struct fixture *f, u64 seq, char *out, size_t n)
{
	snprintf(out, n, "%s/snapshots/snapshot-%020llu.snap", f->dir,
		 (unsigned long long)seq);
}

static size_t count_files(const struct fixture *f)
{
	char dir[128];
	size_t n = 0;
	snprintf(dir, sizeof(dir), "%s/snapshots", f->dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_sink_in_pieces_then_load_newest(void **state)
{
	struct fixture *f = *state;
	u8 *buf = NULL;
	size_t len = 0;
	u64 seq = 0, ts = 0;
	size_t big = 3 * SNAPSHOT_BUFFER_BYTES + 12345;

	write_snapshot(f, 7, 1000);
	write_snapshot(f, 42, big);
	assert_int_equal(count_files(f), 2); /* no temporary left */
	assert_int_equal(
		snapshot_load_newest(f->dir, &buf, &len, &seq, &ts, on_warn, f),
		1);
	assert_int_equal(seq, 42);
	assert_int_equal(ts, 420);
	assert_int_equal(len, big);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(42, i))
			fail_msg("byte %zu differs", i);
	assert_int_equal(f->warnings, 0);
	free(buf);
}

static void test_empty_payload_is_a_valid_snapshot(void **state)
{
	struct fixture *f = *state;
	u8 *buf = NULL;
	size_t len = 99;
	u64 seq = 0, ts = 0;

	write_snapshot(f, 3, 0);
	assert_int_equal(
		snapshot_load_newest(f->dir, &buf, &len, &seq, &ts, NULL, NULL),
		1);
	assert_int_equal(len, 0);
	assert_int_equal(seq, 3);
	free(buf);
}

static void test_corrupt_newest_falls_back_to_older_with_warning(void **state)
{
	struct fixture *f = *state;
	u8 *buf = NULL;
	size_t len = 0;
	u64 seq = 0, ts = 0;
	char path[256];

	write_snapshot(f, 10, 5000);
	write_snapshot(f, 20, 5000);
	write_snapshot(f, 30, 5000);
	/* 30: a flipped payload byte; 20: cut short. */
	snap_path(f, 30, path, sizeof(path));
	int fd = open(path, O_RDWR);
	u8 b;
	assert_int_equal(pread(fd, &b, 1, 64 + 2500), 1);
	b ^= 1;
	assert_int_equal(pwrite(fd, &b, 1, 64 + 2500), 1);
	close(fd);
	snap_path(f, 20, path, sizeof(path));
	assert_int_equal(truncate(path, 3000), 0);

	assert_int_equal(
		snapshot_load_newest(f->dir, &buf, &len, &seq, &ts, on_warn, f),
		1);
	assert_int_equal(seq, 10);
	assert_int_equal(len, 5000);
	assert_int_equal(buf[4999], pattern(10, 4999));
	assert_int_equal(f->warnings, 2);
	assert_non_null(strstr(f->warning, "snapshot-00000000000000000020"));
	free(buf);
}

static void test_header_checksum_and_name_are_checked(void **state)
{
	struct fixture *f = *state;
	u8 *buf = NULL;
	size_t len = 0;
	u64 seq = 0, ts = 0;
	char path[256], other[256];

	write_snapshot(f, 5, 100);
	write_snapshot(f, 6, 100);
	/* A flipped timestamp bit: only the header checksum sees it. */
	snap_path(f, 6, path, sizeof(path));
	int fd = open(path, O_RDWR);
	u8 b;
	assert_int_equal(pread(fd, &b, 1, 24), 1);
	b ^= 1;
	assert_int_equal(pwrite(fd, &b, 1, 24), 1);
	close(fd);
	/* Snapshot 5 renamed to 9: the name no longer matches the seq. */
	snap_path(f, 5, path, sizeof(path));
	snap_path(f, 9, other, sizeof(other));
	assert_int_equal(rename(path, other), 0);
	assert_int_equal(
		snapshot_load_newest(f->dir, &buf, &len, &seq, &ts, on_warn, f),
		0);
	assert_null(buf);
	assert_int_equal(f->warnings, 2);
}

static void test_no_snapshot_returns_zero(void **state)
{
	struct fixture *f = *state;
	u8 *buf = NULL;
	size_t len = 0;
	u64 seq = 0, ts = 0;

	assert_int_equal(
		snapshot_load_newest(f->dir, &buf, &len, &seq, &ts, on_warn, f),
		0);
	assert_null(buf);
	/* An aborted writer leaves nothing behind. */
	assert_int_equal(snapshot_begin(f->w, f->dir, 4, 1), 0);
	assert_int_equal(snapshot_sink(f->w, "abc", 3), 0);
	snapshot_abort(f->w);
	assert_int_equal(count_files(f), 0);
	assert_int_equal(
		snapshot_load_newest(f->dir, &buf, &len, &seq, &ts, on_warn, f),
		0);
	assert_int_equal(f->warnings, 0);
}

static void test_prune_keeps_newest_n(void **state)
{
	struct fixture *f = *state;
	char path[256];

	for (u64 s = 1; s <= 5; s++)
		write_snapshot(f, s * 100, 64);
	snapshot_prune(f->dir, 2);
	assert_int_equal(count_files(f), 2);
	snap_path(f, 500, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	snap_path(f, 400, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	snap_path(f, 300, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	snapshot_prune(f->dir, 2);
	assert_int_equal(count_files(f), 2);
	snapshot_prune(f->dir, 0);
	assert_int_equal(count_files(f), 0);
}

static void test_sink_error_fails_commit(void **state)
{
	struct fixture *f = *state;
	u8 *buf = NULL;
	size_t len = 0;
	u64 seq = 0, ts = 0;

	assert_int_equal(snapshot_begin(f->w, f->dir, 8, 1), 0);
	/* Simulate a failing disk: the fd goes away under the writer. */
	close(f->w->fd);
	f->w->fd = open("/dev/null", O_RDONLY);
	static u8 chunk[SNAPSHOT_BUFFER_BYTES];
	assert_int_equal(snapshot_sink(f->w, chunk, sizeof(chunk)), -EBADF);
	assert_int_equal(snapshot_sink(f->w, chunk, 1), -EBADF);
	assert_int_equal(snapshot_commit(f->w), -EBADF);
	assert_int_equal(count_files(f), 0);
	assert_int_equal(
		snapshot_load_newest(f->dir, &buf, &len, &seq, &ts, on_warn, f),
		0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sink_in_pieces_then_load_newest),
		T(test_empty_payload_is_a_valid_snapshot),
		T(test_corrupt_newest_falls_back_to_older_with_warning),
		T(test_header_checksum_and_name_are_checked),
		T(test_no_snapshot_returns_zero),
		T(test_prune_keeps_newest_n),
		T(test_sink_error_fails_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
