/*
 * journal_reader.h - read a journal's records in order, from the outside.
 *
 * For whoever needs the exact bytes of every entry without owning the
 * journal: the audit tree (issue 5) tailing a live journal, `tpwallet
 * audit check` recomputing it offline, `GET /v1/audit/entries/{i}`.
 *
 * Read-only: no lock, no repair, safe while a server appends.  At the
 * current end (nothing more yet, or a record still being written, or a
 * torn tail the owner will cut) journal_reader_next returns 0; calling it
 * again later returns the records appended meanwhile, moving on to newer
 * segments as they appear.  A bad record with a valid one after it is
 * corruption: -EBADMSG with the file and offset, as journal_open says it.
 */
#ifndef TPW_LOG_JOURNAL_READER_H
#define TPW_LOG_JOURNAL_READER_H

#include "log/journal.h"

struct journal_reader;

/* Open DATA/journal for reading from the record with seq from_seq (>= 1).
 * Returns 0, -ENOENT (no journal directory), -ENOMEM, or -errno. */
int journal_reader_open(struct journal_reader **out, const char *data_dir,
			u64 from_seq);

/*
 * The next record: returns 1 and fills *r, and *raw / *raw_bytes with the
 * whole record as it is on disk (header and payload; what the audit tree
 * hashes).  r->payload and *raw stay valid until the next call.  Returns
 * 0 at the current end, or a negative errno (-EBADMSG: corruption, a gap
 * in seqs) with a message from journal_reader_error().
 */
int journal_reader_next(struct journal_reader *rd, struct journal_record *r,
			const u8 **raw, size_t *raw_bytes);

/* Also read segments from dir (the setting journal_archive_dir: sealed
 * segments moved out of DATA/journal), or, with NULL, no longer: a
 * segment is looked for in DATA/journal first, then in dir.  Call before
 * the first journal_reader_next. */
void journal_reader_archive(struct journal_reader *rd, const char *dir);

/* Never read past seq max_seq (the owner's durable end, so that nothing
 * half-written or not yet synced is read): journal_reader_next returns 0
 * instead.  UINT64_MAX (the default) reads whatever is in the files. */
void journal_reader_limit(struct journal_reader *rd, u64 max_seq);

/* Where the record last returned lies: its segment's first seq and its
 * byte offset in that segment. */
void journal_reader_position(const struct journal_reader *rd, u64 *segment_seq,
			     u64 *offset);

/* The message of the last error ("journal/<seq>.wal: ... at offset N"). */
const char *journal_reader_error(const struct journal_reader *rd);

void journal_reader_close(struct journal_reader *rd);

#endif
