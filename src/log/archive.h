/*
 * archive.h - journal retention: sealed journal segments moved out of
 * DATA/journal to an archive directory (setting journal_archive_dir,
 * docs/operations.md "Journal retention").
 *
 * A segment is sealed once a newer one exists (the journal only appends
 * to its newest); its last record is the newer one's first seq - 1.  A
 * move is crash-safe: the segment is copied to ARCHIVE/<name>.tmp,
 * fsynced, renamed to ARCHIVE/<name>, the archive directory fsynced, and
 * only then unlinked from DATA/journal and that directory fsynced.  A
 * crash at any point leaves the segment whole in at least one place: in
 * DATA/journal (a stale .tmp in the archive is replaced by the next
 * move), in both (readers take DATA/journal's; the next move replaces
 * the archive's copy and unlinks the other), or in the archive.
 *
 * The caller decides how far segments may go (below_seq: every record of
 * a segment moved is below it); this module only moves files.
 */
#ifndef TPW_LOG_ARCHIVE_H
#define TPW_LOG_ARCHIVE_H

#include "core/types.h"

/*
 * Move every sealed segment of DATA/journal whose records all have a seq
 * below below_seq to archive_dir (which must exist), oldest first.
 * *moved gets how many were moved (also on error: those before it).
 * Returns 0, or -errno with *why naming the step that failed.
 */
int journal_archive_move(const char *data_dir, const char *archive_dir,
			 u64 below_seq, u64 *moved, const char **why);

/* What lies where, for /metrics and doctor. */
struct journal_archive_stats {
	u64 data_segments, data_bytes;
	u64 archive_segments, archive_bytes;
	/* Of those, the ones not also in DATA/journal (a crash between a
	 * move's rename and its unlink leaves a segment in both). */
	u64 archive_only_bytes;
	u64 oldest_data_seq;   /* first seq of DATA/journal's oldest segment */
	bool archive_readable; /* the archive directory could be listed */
};

/* Count the segments (archive_dir may be NULL).  0 or -errno (DATA/journal
 * cannot be listed). */
int journal_archive_stats(const char *data_dir, const char *archive_dir,
			  struct journal_archive_stats *out);

#endif
