/*
 * archive.c - sealed journal segments moved to an archive directory
 * (archive.h): copy, fsync, rename, fsync, then unlink.
 */
#include "log/archive.h"

#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/journal.h"
#include "log/seqdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

#define COPY_BYTES (1u << 20)

static int list_dir(const char *dir, u64 **seqs, size_t *n)
{
	DIR *d = opendir(dir);

	*seqs = NULL;
	*n = 0;
	if (!d)
		return -errno;
	int ret = seqdir_list(d, journal__parse_segment_name, seqs, n);
	closedir(d);
	return ret;
}

/* Copy from into a new file to (0600), fsynced. */
static int copy_file(const char *from, const char *to, u8 *buf)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out =
		open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		     0600);
	int ret = out < 0 ? -errno : 0;
	while (ret == 0) {
		ssize_t r = read(in, buf, COPY_BYTES);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? -errno : 0;
			break;
		}
		for (ssize_t done = 0; ret == 0 && done < r;) {
			ssize_t w = write(out, buf + done, (size_t)(r - done));
			if (w < 0 && errno != EINTR)
				ret = -errno;
			else if (w > 0)
				done += w;
		}
	}
	if (ret == 0 && fsync(out) != 0)
		ret = -errno;
	if (out >= 0)
		close(out);
	close(in);
	return ret;
}

static int move_one(const char *jdir, const char *archive_dir, u64 seq, u8 *buf,
		    const char **why)
{
	char name[64], from[PATH_MAX + 96], tmp[PATH_MAX + 112],
		to[PATH_MAX + 96];
	int ret;

	snprintf(name, sizeof(name), JOURNAL_SEGMENT_NAME_FMT,
		 (unsigned long long)seq);
	snprintf(from, sizeof(from), "%s/%s", jdir, name);
	snprintf(to, sizeof(to), "%s/%s", archive_dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", to);
	ret = copy_file(from, tmp, buf);
	if (ret < 0) {
		*why = "copying a segment to the archive directory";
		unlink(tmp);
		return ret;
	}
	if (rename(tmp, to) != 0) {
		ret = -errno;
		*why = "renaming the copy in the archive directory";
		unlink(tmp);
		return ret;
	}
	/* TPW_PLANT_NO_ARCHIVE_DIRSYNC: the crash explorer's planted bug
	 * (build/tests/tpwallet-planted-archive only, docs/crash-model.md). */
#ifndef TPW_PLANT_NO_ARCHIVE_DIRSYNC
	ret = fsdir_sync(archive_dir);
	if (ret < 0) {
		*why = "syncing the archive directory";
		return ret;
	}
#endif
	/* Now whole in the archive: only then gone from the data dir. */
	if (unlink(from) != 0) {
		*why = "removing the segment from DATA/journal";
		return -errno;
	}
	ret = fsdir_sync(jdir);
	if (ret < 0)
		*why = "syncing DATA/journal";
	return ret;
}

int journal_archive_move(const char *data_dir, const char *archive_dir,
			 u64 below_seq, u64 *moved, const char **why)
{
	char jdir[PATH_MAX + 16];
	u64 *seqs = NULL;
	size_t n = 0;
	u8 *buf = NULL;

	*moved = 0;
	*why = NULL;
	snprintf(jdir, sizeof(jdir), "%s/" DATADIR_JOURNAL, data_dir);
	int ret = list_dir(jdir, &seqs, &n);
	if (ret < 0) {
		*why = "listing DATA/journal";
		return ret;
	}
	/* Segment i is sealed when i + 1 exists; its last seq is
	 * seqs[i + 1] - 1. */
	for (size_t i = 0; i + 1 < n && seqs[i + 1] - 1 < below_seq; i++) {
		if (!buf && !(buf = malloc(COPY_BYTES))) {
			ret = -ENOMEM;
			*why = "out of memory";
			break;
		}
		ret = move_one(jdir, archive_dir, seqs[i], buf, why);
		if (ret < 0)
			break;
		(*moved)++;
	}
	free(buf);
	free(seqs);
	return ret;
}

/* Is seq in the sorted array? */
static bool listed(const u64 *seqs, size_t n, u64 seq)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (seqs[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && seqs[lo] == seq;
}

/* Count the segments of dir and their bytes (*only: of those not in
 * `other`); *first the oldest's seq.  *seqs_out (may be NULL) gets the
 * sorted list, for the caller to free. */
static int count_dir(const char *dir, u64 *segments, u64 *bytes, u64 *first,
		     const u64 *other, size_t nother, u64 *only, u64 **seqs_out,
		     size_t *n_out)
{
	u64 *seqs = NULL;
	size_t n = 0;
	char path[PATH_MAX + 64];
	int ret = list_dir(dir, &seqs, &n);

	*segments = *bytes = 0;
	if (first)
		*first = 0;
	if (only)
		*only = 0;
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT,
			 dir, (unsigned long long)seqs[i]);
		if (stat(path, &st) != 0)
			continue;
		*bytes += (u64)st.st_size;
		if (only && !listed(other, nother, seqs[i]))
			*only += (u64)st.st_size;
	}
	*segments = n;
	if (first && n > 0)
		*first = seqs[0];
	if (seqs_out) {
		*seqs_out = seqs;
		*n_out = n;
	} else {
		free(seqs);
	}
	return 0;
}

int journal_archive_stats(const char *data_dir, const char *archive_dir,
			  struct journal_archive_stats *out)
{
	char jdir[PATH_MAX + 16];

	memset(out, 0, sizeof(*out));
	snprintf(jdir, sizeof(jdir), "%s/" DATADIR_JOURNAL, data_dir);
	u64 *data = NULL;
	size_t ndata = 0;
	int ret =
		count_dir(jdir, &out->data_segments, &out->data_bytes,
			  &out->oldest_data_seq, NULL, 0, NULL, &data, &ndata);
	if (archive_dir && archive_dir[0])
		out->archive_readable =
			count_dir(archive_dir, &out->archive_segments,
				  &out->archive_bytes, NULL, data, ndata,
				  &out->archive_only_bytes, NULL, NULL) == 0;
	free(data);
	return ret;
}
