/*
 * test_log_journal.c - the journal keeps every synced record, cuts only a
 * torn tail, and refuses to start on anything else that is wrong.
 *
 * Each test writes a journal in a fresh temporary directory, damages the
 * files the way a crash or a bad disk would, and checks what journal_open
 * replays or which error (file, offset) it reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

#define RECORDS_MAX 4096

struct seen {
	size_t n;
	u16 type[RECORDS_MAX];
	u64 seq[RECORDS_MAX];
	u64 ts[RECORDS_MAX];
	u32 bytes[RECORDS_MAX];
	u8 first[RECORDS_MAX]; /* first payload byte */
	u8 last[RECORDS_MAX];  /* last payload byte */
	int warnings;
	char warning[512];
};

static int collect(void *ctx, const struct journal_record *r)
{
	struct seen *s = ctx;
	assert_true(s->n < RECORDS_MAX);
	s->type[s->n] = r->type;
	s->seq[s->n] = r->seq;
	s->ts[s->n] = r->timestamp;
	s->bytes[s->n] = r->payload_bytes;
	if (r->payload_bytes) {
		s->first[s->n] = ((const u8 *)r->payload)[0];
		s->last[s->n] = ((const u8 *)r->payload)[r->payload_bytes - 1];
	}
	s->n++;
	return 0;
}

static void on_warn(void *ctx, const char *msg)
{
	struct seen *s = ctx;
	s->warnings++;
	snprintf(s->warning, sizeof(s->warning), "%s", msg);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

struct fixture {
	char dir[64];
	char jdir[96];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/tpw-journal-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->jdir, sizeof(f->jdir), "%s/journal", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Payload for record i: a recognizable pattern. */
static u8 payload_buf[8 * 128];

static u32 payload_for(u64 seq, u16 *type)
{
	u32 events = (u32)(seq % 3) + 1;
	*type = seq % 5 == 0 ? JOURNAL_PULSE
		: seq % 2    ? JOURNAL_CREATE_TRANSFERS
			     : JOURNAL_CREATE_ACCOUNTS;
	if (*type == JOURNAL_PULSE)
		return 0;
	for (u32 i = 0; i < events * 128; i++)
		payload_buf[i] = (u8)(seq * 31 + i);
	return events * 128;
}

static u64 ts_for(u64 seq)
{
	return 1000000 + seq / 2; /* non-decreasing, with repeats */
}

/* Append records [from, to] in groups of `group`, syncing each group. */
static void write_records(struct journal *j, u64 from, u64 to, u32 group)
{
	for (u64 seq = from; seq <= to; seq++) {
		u16 type;
		u32 bytes = payload_for(seq, &type);
		u64 got = 0;
		assert_int_equal(journal_append(j, type, ts_for(seq),
						payload_buf, bytes, &got),
				 0);
		assert_int_equal(got, seq);
		if ((seq - from + 1) % group == 0 || seq == to)
			assert_int_equal(journal_sync(j), 0);
	}
}

static void check_records(const struct seen *s, u64 from, u64 to)
{
	assert_int_equal(s->n, to - from + 1);
	for (size_t i = 0; i < s->n; i++) {
		u64 seq = from + i;
		u16 type;
		u32 bytes = payload_for(seq, &type);
		assert_int_equal(s->seq[i], seq);
		assert_int_equal(s->type[i], type);
		assert_int_equal(s->ts[i], ts_for(seq));
		assert_int_equal(s->bytes[i], bytes);
		if (bytes) {
			assert_int_equal(s->first[i], payload_buf[0]);
			assert_int_equal(s->last[i], payload_buf[bytes - 1]);
		}
	}
}

static int reopen(struct fixture *f, const struct journal_options *o, u64 after,
		  struct seen *s, const char **err)
{
	struct journal *j = NULL;
	struct journal_options opts = o ? *o : (struct journal_options){0};
	opts.warn = on_warn;
	opts.warn_ctx = s;
	int rc = journal_open(&j, f->dir, &opts, after, collect, s, err);
	journal_close(j);
	return rc;
}

static void segment_path(const struct fixture *f, u64 seq, char *out,
			 size_t len)
{
	snprintf(out, len, "%s/%020llu.wal", f->jdir, (unsigned long long)seq);
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	u8 b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

static size_t count_segments(const struct fixture *f)
{
	size_t n = 0;
	DIR *d = opendir(f->jdir);
	struct dirent *e;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".wal") != NULL;
	closedir(d);
	return n;
}

/* ---- Tests ---- */

static void test_crc32c_matches_published_vectors(void **state)
{
	u8 buf[48];
	static const u8 iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
		0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	(void)state;

	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	/* RFC 3720 B.4 */
	memset(buf, 0, 32);
	assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, 32);
	assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (u8)i;
	assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (u8)(31 - i);
	assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);
	assert_int_equal(crc32c(0, iscsi_read, 48), 0xD9963A56u);
	assert_int_equal(crc32c(0, "", 0), 0);
}

static void test_crc32c_hardware_software_and_chaining_agree(void **state)
{
	static u8 data[4096 + 8];
	(void)state;
	srand(7);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (u8)rand();
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len < 300; len += 7) {
			u32 sw = log__crc32c_sw(0, data + off, len);
			assert_int_equal(crc32c(0, data + off, len), sw);
#if defined(__x86_64__)
			if (__builtin_cpu_supports("sse4.2"))
				assert_int_equal(
					log__crc32c_hw(0, data + off, len), sw);
#endif
			for (size_t cut = 0; cut <= len; cut += 13)
				assert_int_equal(
					crc32c(crc32c(0, data + off, cut),
					       data + off + cut, len - cut),
					sw);
		}
	}
	assert_int_equal(crc32c(0, data, 4096), log__crc32c_sw(0, data, 4096));
}

static void test_append_sync_reopen_replays_every_record_exactly(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct seen *s = calloc(1, sizeof(*s));
	const char *err = NULL;

	assert_int_equal(journal_open(&j, f->dir, NULL, 0, collect, s, &err),
			 0);
	assert_int_equal(journal_next_seq(j), 1);
	assert_int_equal(s->n, 0);
	write_records(j, 1, 100, 7);
	assert_int_equal(journal_next_seq(j), 101);
	u64 size = journal_size_bytes(j);
	char path[256];
	segment_path(f, 1, path, sizeof(path));
	assert_int_equal((u64)file_size(path), size);
	journal_close(j);

	assert_int_equal(journal_open(&j, f->dir, NULL, 0, collect, s, &err),
			 0);
	check_records(s, 1, 100);
	assert_int_equal(journal_next_seq(j), 101);
	assert_int_equal(journal_size_bytes(j), size);
	journal_close(j);
	free(s);
}

static void test_replay_skips_records_up_to_after_seq(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct seen *s = calloc(1, sizeof(*s));

	assert_int_equal(journal_open(&j, f->dir, NULL, 0, NULL, NULL, NULL),
			 0);
	write_records(j, 1, 100, 10);
	journal_close(j);
	assert_int_equal(reopen(f, NULL, 40, s, NULL), 0);
	check_records(s, 41, 100);
	s->n = 0;
	assert_int_equal(reopen(f, NULL, 100, s, NULL), 0);
	assert_int_equal(s->n, 0);
	free(s);
}

static void test_segments_roll_and_replay_across_segments(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct seen *s = calloc(1, sizeof(*s));
	struct journal_options o = {.segment_bytes_max = 2048};
	char path[512];

	assert_int_equal(journal_open(&j, f->dir, &o, 0, NULL, NULL, NULL), 0);
	write_records(j, 1, 200, 3);
	journal_close(j);
	assert_true(count_segments(f) > 5);
	/* Every segment is named by its first record and within the limit
	 * (no single group passes it here). */
	DIR *d = opendir(f->jdir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strstr(e->d_name, ".wal"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", f->jdir, e->d_name);
		assert_true(file_size(path) <= 2048);
		int fd = open(path, O_RDONLY);
		u8 hdr[32];
		assert_int_equal(read(fd, hdr, 32), 32);
		close(fd);
		u64 seq;
		memcpy(&seq, hdr + 16, 8);
		assert_int_equal(seq, strtoull(e->d_name, NULL, 10));
	}
	closedir(d);

	assert_int_equal(reopen(f, &o, 0, s, NULL), 0);
	check_records(s, 1, 200);
	/* Appending after reopen goes on in the last segment, then rolls. */
	assert_int_equal(journal_open(&j, f->dir, &o, 200, NULL, NULL, NULL),
			 0);
	write_records(j, 201, 300, 4);
	journal_close(j);
	s->n = 0;
	assert_int_equal(reopen(f, &o, 0, s, NULL), 0);
	check_records(s, 1, 300);
	free(s);
}

/* Write 10 records of one 128-byte event (160 bytes each). */
static void write_ten_transfers(struct fixture *f)
{
	struct journal *j = NULL;
	u8 ev[128];
	assert_int_equal(journal_open(&j, f->dir, NULL, 0, NULL, NULL, NULL),
			 0);
	for (int i = 1; i <= 10; i++) {
		memset(ev, i, sizeof(ev));
		assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS,
						(u64)i, ev, 128, NULL),
				 0);
	}
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);
}

static void test_torn_tail_mid_record_is_cut_and_seq_continues(void **state)
{
	struct fixture *f = *state;
	struct seen *s = calloc(1, sizeof(*s));
	struct journal *j = NULL;
	char path[256];
	u8 ev[128] = {0};
	const char *err = NULL;

	write_ten_transfers(f);
	segment_path(f, 1, path, sizeof(path));
	assert_int_equal(truncate(path, 1600 - 50), 0);

	struct journal_options o = {.warn = on_warn, .warn_ctx = s};
	assert_int_equal(journal_open(&j, f->dir, &o, 0, collect, s, &err), 0);
	assert_int_equal(s->n, 9);
	assert_int_equal(s->seq[8], 9);
	assert_int_equal(s->warnings, 1);
	assert_non_null(strstr(s->warning, "journal/00000000000000000001.wal"));
	assert_non_null(strstr(s->warning, "offset 1440"));
	assert_int_equal(file_size(path), 1440);
	assert_int_equal(journal_next_seq(j), 10);
	u64 seq = 0;
	assert_int_equal(
		journal_append(j, JOURNAL_CREATE_TRANSFERS, 10, ev, 128, &seq),
		0);
	assert_int_equal(seq, 10);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);

	s->n = 0;
	s->warnings = 0;
	assert_int_equal(reopen(f, NULL, 0, s, &err), 0);
	assert_int_equal(s->n, 10);
	assert_int_equal(s->seq[9], 10);
	assert_int_equal(s->warnings, 0);
	free(s);
}

static void append_bytes(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void test_torn_tail_garbage_partial_header_is_cut(void **state)
{
	struct fixture *f = *state;
	struct seen *s = calloc(1, sizeof(*s));
	char path[256];
	/* A header cut short: the magic and part of a size. */
	u8 partial[20] = {'T', 'P', 'W', 'L', 0x12, 0x34, 0x56, 0x78, 0xa0};
	static u8 zeros[4096];

	write_ten_transfers(f);
	segment_path(f, 1, path, sizeof(path));
	append_bytes(path, partial, sizeof(partial));
	assert_int_equal(reopen(f, NULL, 0, s, NULL), 0);
	assert_int_equal(s->n, 10);
	assert_int_equal(s->warnings, 1);
	assert_int_equal(file_size(path), 1600);

	/* A tail of zeros (file size written, data blocks not). */
	append_bytes(path, zeros, sizeof(zeros));
	s->n = 0;
	assert_int_equal(reopen(f, NULL, 0, s, NULL), 0);
	assert_int_equal(s->n, 10);
	assert_int_equal(s->warnings, 2);
	assert_int_equal(file_size(path), 1600);
	free(s);
}

static void test_flipped_byte_in_middle_record_is_corruption(void **state)
{
	struct fixture *f = *state;
	struct seen *s = calloc(1, sizeof(*s));
	char path[256];
	const char *err = NULL;

	write_ten_transfers(f);
	segment_path(f, 1, path, sizeof(path));
	flip_byte(path, 4 * 160 + 77); /* payload of seq 5 */
	assert_int_equal(reopen(f, NULL, 0, s, &err), -EBADMSG);
	assert_non_null(err);
	assert_non_null(strstr(err, "journal/00000000000000000001.wal: "
				    "bad checksum at offset 640 "
				    "(record seq 5)"));
	assert_non_null(strstr(err, "restore from backup"));
	assert_int_equal(file_size(path), 1600); /* nothing was cut */
	assert_int_equal(s->warnings, 0);
	free(s);
}

/* 20 records of one 128-byte event, 5 to an 800-byte segment: segments
 * 1, 6, 11 and 16 (o->segment_bytes_max 1000). */
static void write_four_segments(struct fixture *f,
				const struct journal_options *o)
{
	struct journal *j = NULL;
	u8 ev[128] = {1};

	assert_int_equal(journal_open(&j, f->dir, o, 0, NULL, NULL, NULL), 0);
	for (int i = 1; i <= 20; i++) {
		assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS,
						(u64)i, ev, 128, NULL),
				 0);
		if (i % 5 == 0)
			assert_int_equal(journal_sync(j), 0);
	}
	journal_close(j);
	assert_int_equal(count_segments(f), 4);
}

static void test_flipped_byte_in_earlier_segment_is_corruption(void **state)
{
	struct fixture *f = *state;
	struct seen *s = calloc(1, sizeof(*s));
	struct journal_options o = {.segment_bytes_max = 1000};
	char path[256];
	const char *err = NULL;

	write_four_segments(f, &o);
	/* The last record of the first segment: where a torn tail would
	 * be, were it the last segment. */
	segment_path(f, 1, path, sizeof(path));
	assert_int_equal(file_size(path), 800);
	flip_byte(path, 799);
	assert_int_equal(reopen(f, &o, 0, s, &err), -EBADMSG);
	assert_non_null(strstr(err, "journal/00000000000000000001.wal: "
				    "bad checksum at offset 640 "
				    "(record seq 5)"));
	assert_int_equal(file_size(path), 800);
	free(s);
}

/* With skip_sealed, sealed segments wholly before after_seq are not read:
 * a damaged record there does not stop the open (it is found when read),
 * everything after after_seq is replayed, and appends go on.  A damaged
 * record in a segment that holds records after after_seq still stops it. */
static void test_skip_sealed_reads_only_what_follows_the_state(void **state)
{
	struct fixture *f = *state;
	struct seen *s = calloc(1, sizeof(*s));
	struct journal *j = NULL;
	struct journal_options o = {.segment_bytes_max = 1000};
	char path[256];
	const char *err = NULL;
	u8 ev[128] = {1};

	write_four_segments(f, &o);
	segment_path(f, 1, path, sizeof(path));
	flip_byte(path, 799);
	assert_int_equal(reopen(f, &o, 12, s, &err), -EBADMSG);

	o.skip_sealed = true;
	s->n = 0;
	assert_int_equal(journal_open(&j, f->dir, &o, 12, collect, s, &err), 0);
	assert_int_equal(journal_skipped_segments(j), 2);
	assert_int_equal(journal_next_seq(j), 21);
	assert_int_equal(s->n, 8);
	assert_int_equal(s->seq[0], 13);
	assert_int_equal(s->seq[7], 20);
	assert_int_equal(journal_size_bytes(j), 20 * 160);
	assert_int_equal(
		journal_append(j, JOURNAL_CREATE_TRANSFERS, 20, ev, 128, NULL),
		0);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);

	/* after_seq inside segment 1: it holds records to replay. */
	s->n = 0;
	assert_int_equal(reopen(f, &o, 3, s, &err), -EBADMSG);
	assert_non_null(strstr(err, "journal/00000000000000000001.wal"));

	/* A damaged record in a segment the state does not cover. */
	segment_path(f, 11, path, sizeof(path));
	flip_byte(path, 799);
	s->n = 0;
	assert_int_equal(reopen(f, &o, 12, s, &err), -EBADMSG);
	assert_non_null(strstr(err, "journal/00000000000000000011.wal"));
	free(s);
}

static void test_missing_middle_segment_is_a_gap(void **state)
{
	struct fixture *f = *state;
	struct seen *s = calloc(1, sizeof(*s));
	struct journal *j = NULL;
	struct journal_options o = {.segment_bytes_max = 1000};
	char path[256];
	const char *err = NULL;
	u8 ev[128] = {1};

	assert_int_equal(journal_open(&j, f->dir, &o, 0, NULL, NULL, NULL), 0);
	for (int i = 1; i <= 15; i++) {
		assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS,
						(u64)i, ev, 128, NULL),
				 0);
		if (i % 5 == 0)
			assert_int_equal(journal_sync(j), 0);
	}
	journal_close(j);
	segment_path(f, 6, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(reopen(f, &o, 0, s, &err), -EBADMSG);
	assert_non_null(strstr(err, "journal/00000000000000000011.wal"));
	assert_non_null(strstr(err, "missing"));

	/* A journal that starts after the snapshot's seq is a gap too. */
	segment_path(f, 1, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(reopen(f, &o, 0, s, &err), -EBADMSG);
	assert_non_null(strstr(err, "starts at seq 11"));
	free(s);
}

static void test_decode_of_garbage_never_crashes(void **state)
{
	static u8 buf[4096];
	struct journal_record r;
	struct journal *j = NULL;
	struct fixture *f = *state;
	u8 ev[256];
	(void)state;

	srand(42);
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)rand() % sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (u8)rand();
		if (round % 2 && len >= 4)
			memcpy(buf, "TPWL", 4); /* get past the magic */
		long n = journal_decode(buf, len, &r);
		assert_true(n == 0 || n == -EBADMSG ||
			    (n >= 32 && (size_t)n <= len));
	}

	/* A valid record: every prefix needs more bytes, every bit flip
	 * is caught. */
	memset(ev, 0xab, sizeof(ev));
	assert_int_equal(journal_open(&j, f->dir, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(
		journal_append(j, JOURNAL_CREATE_ACCOUNTS, 5, ev, 256, NULL),
		0);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);
	char path[256];
	segment_path(f, 1, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, 288), 288);
	close(fd);
	assert_int_equal(journal_decode(buf, 288, &r), 288);
	assert_int_equal(r.type, JOURNAL_CREATE_ACCOUNTS);
	assert_int_equal(r.seq, 1);
	assert_int_equal(r.timestamp, 5);
	assert_int_equal(r.payload_bytes, 256);
	assert_ptr_equal(r.payload, buf + 32);
	for (size_t len = 0; len < 288; len++)
		assert_true(journal_decode(buf, len, &r) <= 0);
	for (size_t bit = 0; bit < 288 * 8; bit++) {
		buf[bit / 8] ^= (u8)(1u << (bit % 8));
		assert_true(journal_decode(buf, 288, &r) <= 0);
		buf[bit / 8] ^= (u8)(1u << (bit % 8));
	}
	assert_int_equal(journal_decode(buf, 288, &r), 288);
}

static void test_append_rejects_bad_records(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	static u8 big[JOURNAL_RECORD_BYTES_MAX];

	assert_int_equal(journal_open(&j, f->dir, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(journal_append(j, 99, 1, big, 128, NULL), -EINVAL);
	assert_int_equal(
		journal_append(j, JOURNAL_CREATE_TRANSFERS, 1, big, 100, NULL),
		-EINVAL);
	assert_int_equal(
		journal_append(j, JOURNAL_CREATE_TRANSFERS, 1, big, 0, NULL),
		-EINVAL);
	assert_int_equal(journal_append(j, JOURNAL_PULSE, 1, big, 128, NULL),
			 -EINVAL);
	assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS, 1, big,
					JOURNAL_RECORD_BYTES_MAX, NULL),
			 -EMSGSIZE);
	/* The largest record is a command (a batch with its guard);
	 * a batch type must still be whole events. */
	assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS, 10, big,
					JOURNAL_RECORD_BYTES_MAX - 32, NULL),
			 -EINVAL);
	assert_int_equal(journal_append(j, JOURNAL_COMMAND, 10, big,
					JOURNAL_RECORD_BYTES_MAX - 32, NULL),
			 0);
	assert_int_equal(journal_append(j, JOURNAL_COMMAND, 10, big, 24, NULL),
			 -EINVAL);
	assert_int_equal(journal_append(j, JOURNAL_PULSE, 9, NULL, 0, NULL),
			 -EINVAL);
	/* The buffer bound: 64 full records fit, the 65th does not. */
	int i = 1;
	while (journal_append(j, JOURNAL_COMMAND, 10, big,
			      JOURNAL_RECORD_BYTES_MAX - 32, NULL) == 0)
		i++;
	assert_int_equal(i,
			 JOURNAL_BUFFER_BYTES_MAX / JOURNAL_RECORD_BYTES_MAX);
	assert_int_equal(journal_append(j, JOURNAL_COMMAND, 10, big,
					JOURNAL_RECORD_BYTES_MAX - 32, NULL),
			 -ENOBUFS);
	assert_int_equal(journal_next_seq(j), (u64)i + 1);
	journal_close(j);
}

static void test_short_write_poisons_journal_until_reopen(void **state)
{
	struct fixture *f = *state;
	struct seen *s = calloc(1, sizeof(*s));
	struct journal *j = NULL;
	struct rlimit old, lim;
	char path[256];
	u8 ev[128] = {3};

	write_ten_transfers(f);
	assert_int_equal(journal_open(&j, f->dir, NULL, 10, NULL, NULL, NULL),
			 0);
	/* The file may grow by 100 bytes only: the next group of 1600
	 * bytes is written short, then fails with EFBIG. */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1600 + 100;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (int i = 11; i <= 20; i++)
		assert_int_equal(journal_append(j, JOURNAL_CREATE_TRANSFERS,
						(u64)i, ev, 128, NULL),
				 0);
	int rc = journal_sync(j);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, -EFBIG);
	/* Poisoned: everything fails with the same code from now on. */
	assert_int_equal(journal_sync(j), -EFBIG);
	assert_int_equal(journal_append(j, JOURNAL_PULSE, 30, NULL, 0, NULL),
			 -EFBIG);
	journal_close(j);

	segment_path(f, 1, path, sizeof(path));
	assert_int_equal(file_size(path), 1700);
	assert_int_equal(reopen(f, NULL, 0, s, NULL), 0);
	assert_int_equal(s->n, 10);
	assert_int_equal(s->warnings, 1);
	assert_non_null(strstr(s->warning, "offset 1600"));
	assert_int_equal(file_size(path), 1600);
	free(s);
}

struct progress {
	int calls;
	u64 last_done;
	u64 total;
};

static void on_progress(void *ctx, u64 done, u64 total)
{
	struct progress *p = ctx;
	assert_true(done >= p->last_done);
	assert_true(done <= total);
	p->calls++;
	p->last_done = done;
	p->total = total;
}

static void test_progress_callback_reports_scan(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	struct progress p = {0};
	struct journal_options o = {.progress = on_progress,
				    .progress_ctx = &p,
				    .segment_bytes_max = 4096};

	assert_int_equal(journal_open(&j, f->dir, &o, 0, NULL, NULL, NULL), 0);
	write_records(j, 1, 100, 5);
	u64 size = journal_size_bytes(j);
	journal_close(j);
	assert_int_equal(journal_open(&j, f->dir, &o, 0, NULL, NULL, NULL), 0);
	journal_close(j);
	assert_true(p.calls >= 1);
	assert_int_equal(p.last_done, size);
	assert_int_equal(p.total, size);
}

static void test_second_open_of_same_journal_is_busy(void **state)
{
	struct fixture *f = *state;
	struct journal *a = NULL, *b = NULL;
	const char *err = NULL;

	assert_int_equal(journal_open(&a, f->dir, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(journal_open(&b, f->dir, NULL, 0, NULL, NULL, &err),
			 -EBUSY);
	assert_null(b);
	assert_non_null(strstr(err, "in use"));
	journal_close(a);
	assert_int_equal(journal_open(&b, f->dir, NULL, 0, NULL, NULL, NULL),
			 0);
	journal_close(b);
}

static void test_empty_journal_after_a_snapshot_is_refused(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	const char *err = NULL;

	/* The journal is never pruned: a snapshot at seq 50 with no
	 * segment at all means the journal, and every record after the
	 * snapshot with it, was removed. */
	assert_int_equal(journal_open(&j, f->dir, NULL, 50, NULL, NULL, &err),
			 -EBADMSG);
	assert_null(j);
	assert_non_null(strstr(err, "no segment"));
	assert_non_null(strstr(err, "seq 50"));
	/* With no snapshot, an empty journal is a new one. */
	assert_int_equal(journal_open(&j, f->dir, NULL, 0, NULL, NULL, &err),
			 0);
	assert_int_equal(journal_next_seq(j), 1);
	journal_close(j);
}

static void test_scan_buffer_reports_torn_and_corrupt(void **state)
{
	struct fixture *f = *state;
	static u8 buf[2000];
	char path[256], err[512];
	size_t valid = 0;
	(void)state;

	write_ten_transfers(f);
	segment_path(f, 1, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, 1600), 1600);
	close(fd);
	assert_int_equal(journal__scan_buffer(buf, 1600, 1, false, &valid, err,
					      sizeof(err)),
			 0);
	assert_int_equal(valid, 1600);
	assert_int_equal(journal__scan_buffer(buf, 1500, 1, true, &valid, err,
					      sizeof(err)),
			 0);
	assert_int_equal(valid, 1440);
	assert_int_equal(journal__scan_buffer(buf, 1500, 1, false, &valid, err,
					      sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "truncated record at offset 1440"));
	assert_int_equal(journal__scan_buffer(buf, 1600, 2, true, &valid, err,
					      sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "seq 1 where 2 belongs at offset 0"));
}

/* A cut-short record the audit log covers is corruption, named with its
 * seq and offset; past the covered seq it is a torn tail; the operator's
 * truncate_corrupt_tail cuts either. */
static void test_scan_buffer_refuses_a_covered_tail(void **state)
{
	struct fixture *f = *state;
	static u8 buf[2000];
	char path[256], err[1024];
	size_t valid = 0;

	write_ten_transfers(f);
	segment_path(f, 1, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, 1600), 1600);
	close(fd);
	/* Record 10 starts at 1440: cut 7 bytes off it. */
	assert_int_equal(journal__scan_buffer_covered(buf, 1593, 1, true, 10,
						      false, &valid, err,
						      sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "record seq 10 at offset 1440"));
	assert_non_null(strstr(err, "--truncate-corrupt-tail"));
	assert_int_equal(journal__scan_buffer_covered(buf, 1593, 1, true, 9,
						      false, &valid, err,
						      sizeof(err)),
			 0);
	assert_int_equal(valid, 1440);
	valid = 0;
	assert_int_equal(journal__scan_buffer_covered(buf, 1593, 1, true, 10,
						      true, &valid, err,
						      sizeof(err)),
			 0);
	assert_int_equal(valid, 1440);
	/* A byte flipped in record 4 with valid records after it: the
	 * operator may still cut there, in the last segment. */
	buf[480 + 40] ^= 1;
	valid = 0;
	assert_int_equal(journal__scan_buffer_covered(buf, 1600, 1, true, 0,
						      true, &valid, err,
						      sizeof(err)),
			 0);
	assert_int_equal(valid, 480);
}

/* A journal ending (at a record boundary) before what the audit covers. */
static void test_open_refuses_a_journal_shorter_than_covered(void **state)
{
	struct fixture *f = *state;
	struct journal *j;
	const char *err = NULL;
	struct journal_options o = {.covered_seq = 11};

	write_ten_transfers(f);
	assert_int_equal(journal_open(&j, f->dir, &o, 0, NULL, NULL, &err),
			 -EBADMSG);
	assert_non_null(strstr(err, "ends at seq 10"));
	assert_non_null(strstr(err, "records 11 to 11"));
	o.truncate_corrupt_tail = true;
	assert_int_equal(journal_open(&j, f->dir, &o, 0, NULL, NULL, &err), 0);
	assert_int_equal(journal_next_seq(j), 11);
	journal_close(j);
}

/* Cluster mode sends the pending group's bytes to PostgreSQL while
 * journal_sync writes them: they are the records as the segment gets
 * them, and nothing once synced. */
static void test_pending_is_the_group_as_it_will_be_written(void **state)
{
	struct fixture *f = *state;
	struct journal *j = NULL;
	const void *buf = NULL;
	size_t len = 1;
	u64 first = 0;

	assert_int_equal(journal_open(&j, f->dir, NULL, 0, NULL, NULL, NULL),
			 0);
	journal_pending(j, &buf, &len, &first);
	assert_int_equal(len, 0);
	assert_int_equal(first, 1);
	write_records(j, 1, 3, 3); /* one group, synced */
	u64 synced = journal_size_bytes(j);
	for (u64 seq = 4; seq <= 6; seq++) {
		u16 type;
		u32 bytes = payload_for(seq, &type);
		assert_int_equal(journal_append(j, type, ts_for(seq),
						payload_buf, bytes, NULL),
				 0);
	}
	journal_pending(j, &buf, &len, &first);
	assert_int_equal(first, 4);
	/* Three whole records, 4..6, in order, decodable. */
	size_t off = 0;
	for (u64 seq = 4; seq <= 6; seq++) {
		struct journal_record r;
		long n = journal_decode((const u8 *)buf + off, len - off, &r);
		assert_true(n > 0);
		assert_int_equal(r.seq, seq);
		off += (size_t)n;
	}
	assert_int_equal(off, len);
	u8 *copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, buf, len);
	assert_int_equal(journal_sync(j), 0);
	/* What was pending is now the segment's tail, byte for byte. */
	char path[256];
	segment_path(f, 1, path, sizeof(path));
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	u8 *tail = malloc(len);
	assert_non_null(tail);
	assert_int_equal(fseek(fp, (long)synced, SEEK_SET), 0);
	assert_int_equal(fread(tail, 1, len, fp), len);
	fclose(fp);
	assert_memory_equal(tail, copy, len);
	journal_pending(j, &buf, &len, &first);
	assert_int_equal(len, 0);
	assert_int_equal(first, 7);
	free(tail);
	free(copy);
	journal_close(j);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_matches_published_vectors),
		cmocka_unit_test(
			test_crc32c_hardware_software_and_chaining_agree),
		T(test_append_sync_reopen_replays_every_record_exactly),
		T(test_replay_skips_records_up_to_after_seq),
		T(test_segments_roll_and_replay_across_segments),
		T(test_torn_tail_mid_record_is_cut_and_seq_continues),
		T(test_torn_tail_garbage_partial_header_is_cut),
		T(test_flipped_byte_in_middle_record_is_corruption),
		T(test_flipped_byte_in_earlier_segment_is_corruption),
		T(test_skip_sealed_reads_only_what_follows_the_state),
		T(test_missing_middle_segment_is_a_gap),
		T(test_decode_of_garbage_never_crashes),
		T(test_append_rejects_bad_records),
		T(test_short_write_poisons_journal_until_reopen),
		T(test_progress_callback_reports_scan),
		T(test_second_open_of_same_journal_is_busy),
		T(test_empty_journal_after_a_snapshot_is_refused),
		T(test_scan_buffer_reports_torn_and_corrupt),
		T(test_scan_buffer_refuses_a_covered_tail),
		T(test_open_refuses_a_journal_shorter_than_covered),
		T(test_pending_is_the_group_as_it_will_be_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
