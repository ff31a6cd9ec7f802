/*
 * test_log_datadir.c - the data directory's own formats: checkpoint frame
 * heads (whole, cut short by an append in progress, malformed), the
 * marker and the trusted modes, a bounded whole-file read that refuses
 * one byte too many, and the atomic replace (no temporary left, mode
 * 0600, the old content replaced whole), and a journal record sealed
 * again after an edit decodes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log/datadir.h"
#include "log/fsfile.h"
#include "log/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/datadir-XXXXXX", t ? t : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[512];
	const char *names[] = {"f", "f.tmp", DATADIR_MARKER, "big", NULL};
	for (size_t i = 0; names[i]; i++) {
		snprintf(cmd, sizeof(cmd), "%s/%s", dir, names[i]);
		unlink(cmd);
	}
	return rmdir(dir);
}

static void checkpoint_heads(void **state)
{
	(void)state;
	char head[DATADIR_CHECKPOINT_HEAD_BYTES_MAX + 1];
	u64 n = 0;
	size_t used = 0;

	assert_int_equal(datadir_checkpoint_head(head, 123), 4);
	assert_string_equal(head, "123\n");
	assert_int_equal(
		datadir_checkpoint_head_parse("123\nxyz", 7, &n, &used),
		DATADIR_HEAD_OK);
	assert_true(n == 123 && used == 4);
	assert_int_equal(datadir_checkpoint_head_parse("", 0, &n, &used),
			 DATADIR_HEAD_END);
	assert_int_equal(datadir_checkpoint_head_parse("12", 2, &n, &used),
			 DATADIR_HEAD_CUT);
	static const char *const bad[] = {"0\n", "0123\n",   "-1\n", " 1\n",
					  "\n",	 "131073\n", "1x\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(datadir_checkpoint_head_parse(
					 bad[i], strlen(bad[i]), &n, &used),
				 -EBADMSG);
	/* 21 bytes without a newline cannot be a head being written. */
	assert_int_equal(datadir_checkpoint_head_parse("111111111111111111111",
						       21, &n, &used),
			 -EBADMSG);
}

static void marker_prepare_and_modes(void **state)
{
	(void)state;
	char why[512] = "";
	bool created = false;

	assert_int_equal(datadir_marker_check(dir), -ENOENT);
	assert_int_equal(datadir_prepare(dir, &created, why, sizeof(why)), 0);
	assert_true(created);
	assert_int_equal(datadir_marker_check(dir), 0);
	char *text = NULL;
	size_t len = 0;
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, DATADIR_MARKER);
	assert_int_equal(fsfile_read(path, 64, &text, &len), 0);
	assert_string_equal(text, DATADIR_MARKER_TEXT);
	free(text);
	assert_int_equal(datadir_prepare(dir, &created, why, sizeof(why)), 0);
	assert_false(created);
	assert_int_equal(datadir_check_modes(dir, why, sizeof(why)), 0);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(datadir_check_modes(dir, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "chmod 700"));
	assert_int_equal(chmod(dir, 0700), 0);
}

static void bounded_read_refuses_one_byte_more(void **state)
{
	(void)state;
	char path[512], *text = NULL;
	size_t len = 0;
	static char big[10000];

	memset(big, 'a', sizeof(big));
	assert_int_equal(fsfile_replace(dir, "big", big, sizeof(big)), 0);
	snprintf(path, sizeof(path), "%s/big", dir);
	assert_int_equal(fsfile_read(path, sizeof(big), &text, &len), 0);
	assert_true(len == sizeof(big) && text[len] == '\0');
	free(text);
	text = NULL;
	assert_int_equal(fsfile_read(path, sizeof(big) - 1, &text, &len),
			 -EFBIG);
	assert_null(text);
	assert_int_equal(fsfile_read(path, 0, &text, &len), -EFBIG);
	assert_string_equal(fsfile_strerror(-EFBIG), "file too large");
}

static void replace_is_whole_private_and_leaves_no_temporary(void **state)
{
	(void)state;
	char path[512], *text = NULL;
	size_t len = 0;
	struct stat st;

	assert_int_equal(fsfile_replace(dir, "f", "first version\n", 14), 0);
	/* A temporary left by a crash does not stop the next replace. */
	snprintf(path, sizeof(path), "%s/f.tmp", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fsfile_replace(dir, "f", "2\n", 2), 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fsfile_read(path, 100, &text, &len), 0);
	assert_string_equal(text, "2\n");
	free(text);
	assert_int_equal(fsfile_replace("/nonexistent-dir", "f", "x", 1),
			 -ENOENT);
}

static void sealed_record_decodes_after_an_edit(void **state)
{
	(void)state;
	u8 rec[JOURNAL_HEADER_BYTES + JOURNAL_EVENT_BYTES] = {0};
	u32 magic = JOURNAL_MAGIC, size = sizeof(rec);
	u16 type = JOURNAL_CREATE_ACCOUNTS, version = JOURNAL_VERSION;
	struct journal_record r;

	memcpy(rec, &magic, 4);
	memcpy(rec + JOURNAL_OFF_SIZE, &size, 4);
	memcpy(rec + JOURNAL_OFF_TYPE, &type, 2);
	memcpy(rec + JOURNAL_OFF_VERSION, &version, 2);
	journal_record_seal(rec, sizeof(rec), true, 7);
	assert_int_equal(journal_decode(rec, sizeof(rec), &r), sizeof(rec));
	assert_true(r.seq == 7);
	rec[JOURNAL_HEADER_BYTES + 5] ^= 1; /* an edit: now it fails */
	assert_int_equal(journal_decode(rec, sizeof(rec), &r), -EBADMSG);
	journal_record_seal(rec, sizeof(rec), false, 0);
	assert_int_equal(journal_decode(rec, sizeof(rec), &r), sizeof(rec));
	assert_true(r.seq == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(checkpoint_heads),
		cmocka_unit_test(marker_prepare_and_modes),
		cmocka_unit_test(bounded_read_refuses_one_byte_more),
		cmocka_unit_test(
			replace_is_whole_private_and_leaves_no_temporary),
		cmocka_unit_test(sealed_record_decodes_after_an_edit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
