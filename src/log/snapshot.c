/*
 * snapshot.c - checksummed snapshot files (format in snapshot.h).
 *
 * A snapshot bounds recovery time, so it must never be trusted when it is
 * not whole: it is written under a temporary name, its header (with both
 * checksums) goes in last, and only fsync + rename + directory fsync make
 * it visible.  The writer runs in a forked child of a multi-threaded
 * process, where malloc may deadlock, so everything after snapshot_begin
 * uses the buffer inside struct snapshot_writer and plain system calls.
 * Loading re-checks everything and falls back to older snapshots: the
 * journal still holds the records, so a bad snapshot costs time, not data.
 */
#include "core/parse.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/seqdir.h"
#include "log/snapshot.h"

#include "log/journal.h" /* crc32c */
#include "core/strerror.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the snapshot format is little-endian; add byte swaps");

#define SNAP_MAGIC	   "TPWSNAP1"
#define SNAP_PREFIX	   "snapshot-"
#define SNAP_SUFFIX	   ".snap"
#define SNAP_DIGITS	   20
#define SNAP_HEADER_CRC_AT 60u
#define WARN_BYTES	   1024 /* one warning message */

struct snap_header {
	char magic[8];
	u32 version;
	u32 header_bytes;
	u64 seq;
	u64 timestamp;
	u64 payload_bytes;
	u32 payload_crc;
	u8 reserved[16];
	u32 header_crc;
};
_Static_assert(sizeof(struct snap_header) == SNAPSHOT_HEADER_BYTES,
	       "snapshot header is 64 bytes");
_Static_assert(offsetof(struct snap_header, header_crc) == SNAP_HEADER_CRC_AT,
	       "header checksum at 60");

static int dir_path(char *out, size_t len, const char *data_dir)
{
	int n = snprintf(out, len, "%s/" DATADIR_SNAPSHOTS, data_dir);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const u8 *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int snapshot_begin(struct snapshot_writer *w, const char *data_dir, u64 seq,
		   u64 timestamp)
{
	int ret = 0;
	int n;

	w->fd = -1;
	w->seq = seq;
	w->timestamp = timestamp;
	w->payload_bytes = 0;
	w->crc = 0;
	w->error = 0;
	w->tmp_path[0] = '\0';
	ret = dir_path(w->dir_path, sizeof(w->dir_path), data_dir);
	if (ret != 0)
		goto cleanup;
	ret = fsdir_make(w->dir_path);
	if (ret != 0)
		goto cleanup;
	n = snprintf(w->final_path, sizeof(w->final_path),
		     "%s/" SNAPSHOT_NAME_FMT, w->dir_path,
		     (unsigned long long)seq);
	if (n < 0 || (size_t)n + sizeof(".tmp") > sizeof(w->tmp_path)) {
		ret = -ENAMETOOLONG;
		goto cleanup;
	}
	memcpy(w->tmp_path, w->final_path, (size_t)n);
	memcpy(w->tmp_path + n, ".tmp", sizeof(".tmp"));
	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		     0600);
	if (w->fd < 0) {
		ret = -errno;
		w->tmp_path[0] = '\0';
		goto cleanup;
	}
	/* The header's place; it is written at commit. */
	memset(w->buf, 0, SNAPSHOT_HEADER_BYTES);
	w->used = SNAPSHOT_HEADER_BYTES;
cleanup:
	w->error = ret;
	return ret;
}

static int flush(struct snapshot_writer *w)
{
	int ret = write_all(w->fd, w->buf, w->used);
	if (ret != 0)
		w->error = ret;
	w->used = 0;
	return ret;
}

int snapshot_sink(void *ctx, const void *buf, size_t len)
{
	struct snapshot_writer *w = ctx;
	const u8 *p = buf;

	if (w->error)
		return w->error;
	if (w->fd < 0)
		return (w->error = -EBADF);
	w->crc = crc32c(w->crc, p, len);
	w->payload_bytes += len;
	while (len > 0) {
		size_t room = SNAPSHOT_BUFFER_BYTES - w->used;
		size_t n = len < room ? len : room;
		memcpy(w->buf + w->used, p, n);
		w->used += (u32)n;
		p += n;
		len -= n;
		if (w->used == SNAPSHOT_BUFFER_BYTES && flush(w) != 0)
			return w->error;
	}
	return 0;
}

int snapshot_commit(struct snapshot_writer *w)
{
	int ret = w->error;
	struct snap_header h;
	ssize_t n;

	if (ret != 0)
		goto cleanup;
	if (w->fd < 0) {
		ret = -EBADF;
		goto cleanup;
	}
	if (w->used > 0 && (ret = flush(w)) != 0)
		goto cleanup;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SNAP_MAGIC, sizeof(h.magic));
	h.version = SNAPSHOT_VERSION;
	h.header_bytes = SNAPSHOT_HEADER_BYTES;
	h.seq = w->seq;
	h.timestamp = w->timestamp;
	h.payload_bytes = w->payload_bytes;
	h.payload_crc = w->crc;
	h.header_crc = crc32c(0, &h, SNAP_HEADER_CRC_AT);
	do
		n = pwrite(w->fd, &h, sizeof(h), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(h)) {
		ret = n < 0 ? -errno : -EIO;
		goto cleanup;
	}
	if (fsync(w->fd) != 0) {
		ret = -errno;
		goto cleanup;
	}
	if (close(w->fd) != 0) {
		w->fd = -1;
		ret = -errno;
		goto cleanup;
	}
	w->fd = -1;
	if (rename(w->tmp_path, w->final_path) != 0) {
		ret = -errno;
		goto cleanup;
	}
	w->tmp_path[0] = '\0'; /* nothing left to remove */
	ret = fsdir_sync(w->dir_path);
cleanup:
	if (ret != 0) {
		w->error = ret;
		snapshot_abort(w);
	}
	return ret;
}

void snapshot_abort(struct snapshot_writer *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	if (w->tmp_path[0] != '\0') {
		unlink(w->tmp_path);
		w->tmp_path[0] = '\0';
	}
}

/* ---- Loading and pruning ---- */

bool snapshot_parse_name(const char *name, u64 *seq)
{
	size_t plen = strlen(SNAP_PREFIX), slen = strlen(SNAP_SUFFIX);

	if (strlen(name) != plen + SNAP_DIGITS + slen ||
	    memcmp(name, SNAP_PREFIX, plen) != 0 ||
	    strcmp(name + plen + SNAP_DIGITS, SNAP_SUFFIX) != 0)
		return false;
	return parse_digits(name + plen, SNAP_DIGITS, seq) == 0;
}

const char *snapshot_header_check(const u8 raw[SNAPSHOT_HEADER_BYTES],
				  u64 name_seq, u64 file_bytes,
				  struct snapshot_header *out)
{
	struct snap_header h;

	if (file_bytes < SNAPSHOT_HEADER_BYTES)
		return "shorter than its header";
	memcpy(&h, raw, sizeof(h));
	if (memcmp(h.magic, SNAP_MAGIC, sizeof(h.magic)) != 0)
		return "bad magic (an unfinished or foreign file)";
	if (crc32c(0, &h, SNAP_HEADER_CRC_AT) != h.header_crc)
		return "bad header checksum";
	if (h.version != SNAPSHOT_VERSION ||
	    h.header_bytes != SNAPSHOT_HEADER_BYTES)
		return "unsupported version";
	if (h.seq != name_seq)
		return "seq in the header differs from the file name";
	if (h.payload_bytes != file_bytes - SNAPSHOT_HEADER_BYTES ||
	    h.payload_bytes > SIZE_MAX - 1)
		return "payload size differs from the file size";
	out->seq = h.seq;
	out->timestamp = h.timestamp;
	out->payload_bytes = h.payload_bytes;
	out->payload_crc = h.payload_crc;
	return NULL;
}

/* Seqs of every snapshot file, newest first.  *n_out == 0 and 0 when the
 * directory does not exist. */
static int list_snapshots(const char *dir, u64 **out, size_t *n_out)
{
	int ret = 0;
	DIR *d;
	u64 *seqs = NULL;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	ret = seqdir_list(d, snapshot_parse_name, &seqs, &n);
	if (ret != 0)
		goto cleanup;
	for (size_t i = 0; i < n / 2; i++) {
		u64 t = seqs[i];
		seqs[i] = seqs[n - 1 - i];
		seqs[n - 1 - i] = t;
	}
	*out = seqs;
	*n_out = n;
	seqs = NULL;
cleanup:
	free(seqs);
	closedir(d);
	return ret;
}

static int read_all(int fd, u8 *p, size_t len, off_t at)
{
	while (len > 0) {
		ssize_t n = pread(fd, p, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shrank under us */
		p += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

/* Load and check one snapshot.  Returns 1 (valid; *buf set), 0 (invalid:
 * *why says why), or -errno for failures that are not about the file's
 * contents (out of memory). */
static int load_one(const char *path, u64 name_seq, u8 **buf, size_t *len,
		    u64 *seq, u64 *timestamp, const char **why)
{
	int ret = 0;
	int fd = -1;
	u8 *data = NULL;
	u8 raw[SNAPSHOT_HEADER_BYTES];
	struct snapshot_header h;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		*why = tpw_strerror(errno);
		goto cleanup;
	}
	if ((u64)st.st_size < SNAPSHOT_HEADER_BYTES) {
		*why = "shorter than its header";
		goto cleanup;
	}
	if (read_all(fd, raw, sizeof(raw), 0) != 0) {
		*why = "header unreadable";
		goto cleanup;
	}
	*why = snapshot_header_check(raw, name_seq, (u64)st.st_size, &h);
	if (*why)
		goto cleanup;
	data = malloc(h.payload_bytes ? (size_t)h.payload_bytes : 1);
	if (!data) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (read_all(fd, data, (size_t)h.payload_bytes,
		     SNAPSHOT_HEADER_BYTES) != 0) {
		*why = "payload unreadable";
		goto cleanup;
	}
	if (crc32c(0, data, (size_t)h.payload_bytes) != h.payload_crc) {
		*why = "bad payload checksum";
		goto cleanup;
	}
	*buf = data;
	*len = (size_t)h.payload_bytes;
	*seq = h.seq;
	*timestamp = h.timestamp;
	data = NULL;
	ret = 1;
cleanup:
	free(data);
	if (fd >= 0)
		close(fd);
	return ret;
}

int snapshot_load_newest(const char *data_dir, u8 **buf, size_t *len, u64 *seq,
			 u64 *timestamp,
			 void (*warn)(void *ctx, const char *msg), void *ctx)
{
	int ret = 0;
	char dir[4096], path[4200], msg[WARN_BYTES];
	u64 *seqs = NULL;
	size_t n = 0;

	*buf = NULL;
	*len = 0;
	ret = dir_path(dir, sizeof(dir), data_dir);
	if (ret == 0)
		ret = list_snapshots(dir, &seqs, &n);
	if (ret != 0)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		const char *why = "invalid";
		snprintf(path, sizeof(path), "%s/" SNAPSHOT_NAME_FMT, dir,
			 (unsigned long long)seqs[i]);
		ret = load_one(path, seqs[i], buf, len, seq, timestamp, &why);
		if (ret != 0)
			goto cleanup;
		if (warn) {
			snprintf(msg, sizeof(msg),
				 "snapshots/" SNAPSHOT_NAME_FMT
				 ": %s; skipped (an older snapshot and the "
				 "journal are used instead)",
				 (unsigned long long)seqs[i], why);
			warn(ctx, msg);
		}
	}
cleanup:
	free(seqs);
	return ret;
}

void snapshot_prune(const char *data_dir, unsigned keep)
{
	char dir[4096], path[4200];
	u64 *seqs = NULL;
	size_t n = 0;

	if (dir_path(dir, sizeof(dir), data_dir) != 0 ||
	    list_snapshots(dir, &seqs, &n) != 0)
		goto cleanup;
	if (n <= keep)
		goto cleanup;
	for (size_t i = keep; i < n; i++) {
		snprintf(path, sizeof(path), "%s/" SNAPSHOT_NAME_FMT, dir,
			 (unsigned long long)seqs[i]);
		unlink(path);
	}
	fsdir_sync(dir);
cleanup:
	free(seqs);
}
