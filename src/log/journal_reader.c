/*
 * journal_reader.c - read a journal's records in order (journal_reader.h).
 *
 * pread(2) rather than mmap: the last segment grows under the reader, and
 * a read of what is there now is all a tailing reader needs.  Reads go
 * through a read-ahead window (one pread of up to READAHEAD_BYTES), so a
 * journal of small records costs one system call per window, not two
 * per record.  Bytes below a segment's end at the time of a read never
 * change while the engine runs (it only appends); the window is dropped
 * when the segment changes and whenever a record does not decode, so a
 * record that was still being written is read again from the file.  Each record
 * is decoded and checked with journal_decode, the same function journal
 * recovery uses, so reader and owner agree on what a valid record is.
 */
#include "log/journal_reader.h"

#include "log/datadir.h"
#include "log/seqdir.h"
#include "core/strerror.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

#define READER_ERR_BYTES 512
#define READAHEAD_BYTES	 (256u * 1024u)

struct journal_reader {
	char dir[PATH_MAX];	/* DATA/journal */
	char archive[PATH_MAX]; /* journal_reader_archive; "": none */
	int fd;			/* current segment, or -1 */
	u64 seg_seq;		/* its first seq */
	u64 off;		/* where the next record starts */
	u64 last_off;		/* where the record last returned starts */
	u64 next_seq;		/* seq the next record must have */
	u64 from_seq;		/* records before it are read and skipped */
	u64 max_seq;		/* nothing past it is read */
	u8 *buf;
	size_t cap;
	u8 *ra;	       /* read-ahead window: bytes [ra_off, ra_off + ra_len) */
	u64 ra_off;    /* of the current segment */
	size_t ra_len; /* 0: empty */
	char err[READER_ERR_BYTES];
};

static int fail(struct journal_reader *rd, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct journal_reader *rd, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rd->err, sizeof(rd->err), fmt, ap);
	va_end(ap);
	return code;
}

static int list_dir(const char *dir, u64 **seqs, size_t *n)
{
	DIR *d = opendir(dir);
	int ret;

	*seqs = NULL;
	*n = 0;
	if (!d)
		return -errno;
	ret = seqdir_list(d, journal__parse_segment_name, seqs, n);
	closedir(d);
	return ret;
}

/* The segments of DATA/journal and, with an archive, of the archive too:
 * sorted, each once (a segment being moved is in both for a moment). */
static int list(struct journal_reader *rd, u64 **seqs, size_t *n)
{
	u64 *b = NULL, *m;
	size_t nb = 0, k = 0, i = 0, j = 0;
	int ret = list_dir(rd->dir, seqs, n);

	if (ret < 0 || !rd->archive[0])
		return ret;
	/* An archive that cannot be read holds nothing for us. */
	if (list_dir(rd->archive, &b, &nb) < 0 || nb == 0) {
		free(b);
		return 0;
	}
	m = malloc((*n + nb) * sizeof(*m));
	if (!m) {
		free(b);
		return -ENOMEM;
	}
	while (i < *n || j < nb) {
		u64 v;
		if (j == nb || (i < *n && (*seqs)[i] <= b[j]))
			v = (*seqs)[i++];
		else
			v = b[j++];
		if (k == 0 || m[k - 1] != v)
			m[k++] = v;
	}
	free(*seqs);
	free(b);
	*seqs = m;
	*n = k;
	return 0;
}

/* Open the segment that holds next_seq.  Returns 1 when one is open, 0
 * when there is none yet, or a negative errno. */
static int open_segment(struct journal_reader *rd)
{
	u64 *seqs = NULL;
	size_t n = 0;
	char path[PATH_MAX + 32];
	int ret = list(rd, &seqs, &n);

	if (ret < 0)
		goto cleanup;
	/* The newest segment whose first seq is at or before next_seq. */
	size_t pick = n;
	for (size_t i = 0; i < n; i++)
		if (seqs[i] <= rd->next_seq)
			pick = i;
	if (pick == n) {
		ret = n == 0 ? 0
			     : fail(rd, -EBADMSG,
				    "journal: no segment holds seq %llu (the "
				    "oldest starts at %llu)",
				    (unsigned long long)rd->next_seq,
				    (unsigned long long)seqs[0]);
		goto cleanup;
	}
	snprintf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT, rd->dir,
		 (unsigned long long)seqs[pick]);
	rd->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rd->fd < 0 && errno == ENOENT && rd->archive[0]) {
		snprintf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT,
			 rd->archive, (unsigned long long)seqs[pick]);
		rd->fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (rd->fd < 0) {
		ret = fail(rd, -errno, "%s: %s", path, tpw_strerror(errno));
		goto cleanup;
	}
	rd->seg_seq = seqs[pick];
	rd->off = 0;
	rd->ra_len = 0;
	/* Reading starts at the segment's first record, whatever from_seq
	 * asked: the seq check needs the records before it. */
	rd->next_seq = seqs[pick];
	ret = 1;
cleanup:
	free(seqs);
	return ret;
}

/* Is there a segment that starts at next_seq (the current one is done)? */
static int newer_segment(struct journal_reader *rd, bool *yes)
{
	u64 *seqs = NULL;
	size_t n = 0;
	int ret = list(rd, &seqs, &n);

	*yes = false;
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (seqs[i] == rd->next_seq && seqs[i] != rd->seg_seq)
			*yes = true;
	free(seqs);
	return ret;
}

static int read_at(int fd, u8 *p, size_t len, u64 at, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t k = pread(fd, p + *got, len - *got, (off_t)(at + *got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		*got += (size_t)k;
	}
	return 0;
}

/* read_at of the current segment through the read-ahead window. */
static int read_ahead(struct journal_reader *rd, u8 *p, size_t len, u64 at,
		      size_t *got)
{
	if (at >= rd->ra_off && len <= rd->ra_len &&
	    at - rd->ra_off <= rd->ra_len - len) {
		memcpy(p, rd->ra + (at - rd->ra_off), len);
		*got = len;
		return 0;
	}
	rd->ra_len = 0;
	if (len > READAHEAD_BYTES ||
	    (!rd->ra && !(rd->ra = malloc(READAHEAD_BYTES))))
		return read_at(rd->fd, p, len, at, got);
	ssize_t k;
	do
		k = pread(rd->fd, rd->ra, READAHEAD_BYTES, (off_t)at);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	rd->ra_off = at;
	rd->ra_len = (size_t)k;
	*got = rd->ra_len < len ? rd->ra_len : len;
	memcpy(p, rd->ra, *got);
	if (*got == len || k == 0)
		return 0;
	/* Short: the end of the file, or a short read; read_at says. */
	size_t more;
	int ret = read_at(rd->fd, p + *got, len - *got, at + *got, &more);
	*got += more;
	return ret;
}

static int reserve(struct journal_reader *rd, size_t need)
{
	if (need <= rd->cap)
		return 0;
	u8 *p = realloc(rd->buf, need);
	if (!p)
		return -ENOMEM;
	rd->buf = p;
	rd->cap = need;
	return 0;
}

#define RETRY 2

/* Does the record at off decode now? */
static bool record_now_valid(struct journal_reader *rd)
{
	u8 head[JOURNAL_HEADER_BYTES];
	struct journal_record r;
	size_t got;
	u32 size;

	if (read_at(rd->fd, head, sizeof(head), rd->off, &got) < 0 ||
	    got < sizeof(head))
		return false;
	memcpy(&size, head + 8, sizeof(size));
	if (size < JOURNAL_HEADER_BYTES || size > JOURNAL_RECORD_BYTES_MAX ||
	    reserve(rd, size) < 0 ||
	    read_at(rd->fd, rd->buf, size, rd->off, &got) < 0 || got < size)
		return false;
	return journal_decode(rd->buf, size, &r) == (long)size;
}

/* A record at off is not valid.  The end of a live journal (a record
 * still being written, or a torn tail its owner cuts at start-up) looks
 * the same, so it is corruption only when a valid record follows it in
 * this segment, or a newer segment exists. */
static int bad_record(struct journal_reader *rd, const char *why)
{
	bool newer = false;
	int ret;

	rd->ra_len = 0; /* what follows reads the file itself */
	/* A writer may have been in the middle of this very record: if it
	 * is whole now, it was never bad (the caller reads it again). */
	if (record_now_valid(rd))
		return RETRY;
	ret = newer_segment(rd, &newer);
	if (ret < 0)
		return fail(rd, ret, "journal: cannot list segments");

	off_t end = lseek(rd->fd, 0, SEEK_END);
	if (end < 0)
		return fail(rd, -errno, "journal: %s", tpw_strerror(errno));
	size_t rest = (size_t)end > rd->off ? (size_t)end - rd->off : 0;
	bool later = false;
	if (!newer && rest > 0) {
		size_t got;
		if (reserve(rd, rest) < 0)
			return -ENOMEM;
		ret = read_at(rd->fd, rd->buf, rest, rd->off, &got);
		if (ret < 0)
			return fail(rd, ret, "journal: %s", tpw_strerror(-ret));
		const u8 first = (u8)(JOURNAL_MAGIC & 0xff);
		for (size_t at = 1; at + JOURNAL_HEADER_BYTES <= got; at++) {
			struct journal_record r;
			if (rd->buf[at] == first &&
			    journal_decode(rd->buf + at, got - at, &r) > 0) {
				later = true;
				break;
			}
		}
	}
	if (!newer && !later)
		return 0;
	return fail(rd, -EBADMSG,
		    "journal/" JOURNAL_SEGMENT_NAME_FMT
		    ": %s at offset %llu (record seq %llu) "
		    "with valid records after it",
		    (unsigned long long)rd->seg_seq, why,
		    (unsigned long long)rd->off,
		    (unsigned long long)rd->next_seq);
}

int journal_reader_open(struct journal_reader **out, const char *data_dir,
			u64 from_seq)
{
	struct journal_reader *rd;
	DIR *d;

	*out = NULL;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	rd->fd = -1;
	rd->from_seq = from_seq ? from_seq : 1;
	rd->max_seq = UINT64_MAX;
	rd->next_seq = rd->from_seq;
	if ((size_t)snprintf(rd->dir, sizeof(rd->dir), "%s/" DATADIR_JOURNAL,
			     data_dir) >= sizeof(rd->dir)) {
		free(rd);
		return -ENAMETOOLONG;
	}
	d = opendir(rd->dir);
	if (!d) {
		int ret = -errno;
		free(rd);
		return ret;
	}
	closedir(d);
	*out = rd;
	return 0;
}

int journal_reader_next(struct journal_reader *rd, struct journal_record *r,
			const u8 **raw, size_t *raw_bytes)
{
	for (;;) {
		u8 head[JOURNAL_HEADER_BYTES];
		size_t got;
		u32 magic, size;
		int ret;

		if (rd->next_seq > rd->max_seq)
			return 0;
		if (rd->fd < 0) {
			ret = open_segment(rd);
			if (ret <= 0)
				return ret;
		}
		ret = read_ahead(rd, head, sizeof(head), rd->off, &got);
		if (ret < 0)
			return fail(rd, ret, "journal: %s", tpw_strerror(-ret));
		if (got == 0) {
			/* The segment ends here: go on in the next one, if
			 * the journal rolled. */
			bool newer = false;
			ret = newer_segment(rd, &newer);
			if (ret < 0)
				return fail(rd, ret, "journal: cannot list");
			if (!newer)
				return 0;
			close(rd->fd);
			rd->fd = -1;
			continue;
		}
		if (got < sizeof(head)) {
			ret = bad_record(rd, "truncated header");
			if (ret == RETRY)
				continue;
			return ret;
		}
		memcpy(&magic, head, sizeof(magic));
		memcpy(&size, head + 8, sizeof(size));
		if (magic != JOURNAL_MAGIC) {
			ret = bad_record(rd, "bad magic");
			if (ret == RETRY)
				continue;
			return ret;
		}
		if (size < JOURNAL_HEADER_BYTES ||
		    size > JOURNAL_RECORD_BYTES_MAX) {
			ret = bad_record(rd, "bad record size");
			if (ret == RETRY)
				continue;
			return ret;
		}
		if (reserve(rd, size) < 0)
			return -ENOMEM;
		ret = read_ahead(rd, rd->buf, size, rd->off, &got);
		if (ret < 0)
			return fail(rd, ret, "journal: %s", tpw_strerror(-ret));
		if (got < size) {
			ret = bad_record(rd, "truncated record");
			if (ret == RETRY)
				continue;
			return ret;
		}
		if (journal_decode(rd->buf, size, r) != (long)size) {
			ret = bad_record(rd, "bad checksum or type");
			if (ret == RETRY)
				continue;
			return ret;
		}
		if (r->seq != rd->next_seq)
			return fail(rd, -EBADMSG,
				    "journal/" JOURNAL_SEGMENT_NAME_FMT
				    ": record seq %llu at "
				    "offset %llu, expected %llu",
				    (unsigned long long)rd->seg_seq,
				    (unsigned long long)r->seq,
				    (unsigned long long)rd->off,
				    (unsigned long long)rd->next_seq);
		rd->last_off = rd->off;
		rd->off += size;
		rd->next_seq++;
		if (r->seq < rd->from_seq)
			continue;
		*raw = rd->buf;
		*raw_bytes = size;
		return 1;
	}
}

void journal_reader_archive(struct journal_reader *rd, const char *dir)
{
	snprintf(rd->archive, sizeof(rd->archive), "%s", dir ? dir : "");
}

void journal_reader_limit(struct journal_reader *rd, u64 max_seq)
{
	rd->max_seq = max_seq;
}

void journal_reader_position(const struct journal_reader *rd, u64 *segment_seq,
			     u64 *offset)
{
	*segment_seq = rd->seg_seq;
	*offset = rd->last_off;
}

const char *journal_reader_error(const struct journal_reader *rd)
{
	return rd->err;
}

void journal_reader_close(struct journal_reader *rd)
{
	if (!rd)
		return;
	if (rd->fd >= 0)
		close(rd->fd);
	free(rd->buf);
	free(rd->ra);
	free(rd);
}
