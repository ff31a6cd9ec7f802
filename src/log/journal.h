/*
 * journal.h - the append-only log that makes every change durable.
 *
 * A journal is a directory of segment files (journal/NNNNNNNNNNNNNNNNNNNN.wal,
 * named by the sequence number of their first record).  Each record is a
 * 32-byte header followed by its payload:
 *
 *     u32 magic      JOURNAL_MAGIC
 *     u32 checksum   CRC-32C of everything after this field (header rest
 *                    and payload)
 *     u32 size       header + payload bytes
 *     u16 type       enum journal_type
 *     u16 version    JOURNAL_VERSION (2; 1 is still read: log/leaf.h)
 *     u64 seq        1, 2, 3... with no gap, across segments
 *     u64 timestamp  the batch's commit time, nanoseconds (Unix epoch)
 *     payload        size - 32 bytes (records of 128 bytes for batches)
 *
 * All integers little-endian.  A record is visible only once it is whole
 * and its checksum holds.  This is the narrow interface a replicated log
 * (NATS JetStream) will implement later: open+replay, append, sync, close.
 *
 * A record is valid when its magic, size bounds (>= 32, <=
 * JOURNAL_RECORD_BYTES_MAX), checksum, version and type hold, and its
 * payload fits its type: a non-zero multiple of 128 bytes for the batch
 * types, empty for JOURNAL_PULSE.  Unknown types are invalid (a new type
 * is a new JOURNAL_VERSION or an explicit addition to the decoder).
 *
 * Recovery rules (journal_open):
 *   - seqs run without a gap: the first record of a segment has the seq in
 *     the file name, the next segment's name is the previous one's last
 *     seq + 1; timestamps never decrease;
 *   - a torn tail (a bad or cut-short record in the last segment, with no
 *     valid record anywhere after it: every byte offset is tried, and
 *     with a seq past opts->covered_seq: no audit file or checkpoint
 *     says it was durable) is cut with ftruncate + fsync and reported
 *     through opts->warn;
 *   - any other bad record, a gap or a reordered seq, stops start-up with
 *     -EBADMSG and a message naming the file and byte offset.
 *
 * Segments roll at group boundaries: journal_sync starts a new segment
 * (file created, directory fsynced) before writing a group that would
 * take the current, non-empty segment past segment_bytes_max.  So a
 * segment exceeds the limit only when a single group does.
 *
 * Threads: a struct journal is used by one thread at a time (the
 * sequencer); crc32c and journal_decode are thread-safe.
 */
#ifndef TPW_LOG_JOURNAL_H
#define TPW_LOG_JOURNAL_H

#include "core/types.h"

#define JOURNAL_MAGIC 0x4c575054u /* "TPWL" little-endian */
/* 2 since the audit tree's leaf rule 2 (log/leaf.h): the payload is the
 * same as version 1's, the version names the rule that hashes the record
 * into the audit tree.  Both are read; only 2 is written. */
#define JOURNAL_VERSION	     2u
#define JOURNAL_HEADER_BYTES 32u
/* Where each header field lies (the table above), for readers of raw
 * records (audit's receipts and tamper checks). */
#define JOURNAL_OFF_CHECKSUM 4u
#define JOURNAL_OFF_SIZE     8u
#define JOURNAL_OFF_TYPE     12u
#define JOURNAL_OFF_VERSION  14u
#define JOURNAL_OFF_SEQ	     16u
#define JOURNAL_OFF_TIME     24u
/* The checksum covers every byte from here to the record's end. */
#define JOURNAL_CHECKSUM_FROM 8u
/* A segment's file name in DATA/journal, from the seq of its first record
 * (unsigned long long): zero-padded so names sort as seqs. */
#define JOURNAL_SEGMENT_NAME_FMT "%020llu.wal"
/* One event of a batch payload. */
#define JOURNAL_EVENT_BYTES 128u
/* Largest record: a full batch of 128-byte events, plus room for a
 * command's header and ext (core/command.h: up to 8 guard entries of 128
 * bytes before a batch of transfers). */
#define JOURNAL_RECORD_BYTES_MAX                                               \
	(JOURNAL_HEADER_BYTES + 8192u * 128u + 16u + 8u * 128u)
/* The write buffer (records appended since the last journal_sync) starts
 * at 1 MiB and doubles as needed up to this bound: 63 full-size batch
 * records, far more than one group commit holds. */
#define JOURNAL_BUFFER_BYTES_MAX (64u << 20)

enum journal_type {
	JOURNAL_CREATE_ACCOUNTS = 1,
	JOURNAL_CREATE_TRANSFERS = 2,
	JOURNAL_PULSE = 3, /* empty payload: expire pending transfers */
	/* a command of the authorization state (core/auth.h): a 16-byte
	 * command_header, its ext, its 128-byte events; a multiple of 16 */
	JOURNAL_COMMAND = 4,
};

struct journal_record {
	u16 type;
	u64 seq;
	u64 timestamp;
	const void *payload; /* valid only during the callback / call */
	u32 payload_bytes;
};

struct journal_options {
	u64 segment_bytes_max; /* roll to a new segment past this; 0: 256 MiB */
#define JOURNAL_SEGMENT_BYTES_DEFAULT ((u64)256 << 20)
	bool no_sync; /* tests and benchmarks only: skip fdatasync */
	/* Progress during recovery: called at most a few times per second
	 * with bytes scanned and total bytes; may be NULL. */
	void (*progress)(void *ctx, u64 done_bytes, u64 total_bytes);
	void *progress_ctx;
	/* Warnings during recovery (a torn tail cut: file and offset); one
	 * line without a newline.  NULL: printed to stderr. */
	void (*warn)(void *ctx, const char *msg);
	void *warn_ctx;
	/* Records 1..covered_seq are known durable and acknowledged (the
	 * audit log's leaves or a signed checkpoint cover them: see
	 * audit_covered_size).  A bad record among them is corruption, never
	 * a torn tail, and a journal that ends before covered_seq has lost
	 * records: both are -EBADMSG unless truncate_corrupt_tail. */
	u64 covered_seq;
	/* The operator accepts the loss: cut the last segment at its first
	 * bad record (covered or not, valid records after it or not), and
	 * accept a journal that ends before covered_seq.  Reported through
	 * warn, naming what was dropped. */
	bool truncate_corrupt_tail;
	/* Sealed segments moved out of DIR/journal (setting
	 * journal_archive_dir), or NULL.  Read only when the state before
	 * the journal (after_seq) is older than the oldest segment left in
	 * DIR/journal: the archived segments that fill the gap are then
	 * validated and replayed first, read only. */
	const char *archive_dir;
	/* The state before the journal (after_seq) is durable elsewhere
	 * (the store): sealed segments whose records all precede it are
	 * not read at open, so a restart does not grow with history.  Their
	 * records are checked whenever they are read (journal_reader, the
	 * audit routes) and by `tpwallet audit check`; the last segment,
	 * and the one before it when the last is empty, are always
	 * scanned.  Off: every segment is scanned (snapshots, rebuilds). */
	bool skip_sealed;
};

struct journal;

/* Replay callback: return 0 to go on, or a negative code to stop
 * journal_open with that code. */
typedef int (*journal_replay_fn)(void *ctx, const struct journal_record *r);

/*
 * Open (creating DIR and DIR/journal if absent, fsyncing the parent of
 * each directory created), validate every segment, cut a torn tail, and
 * call replay for every record with seq > after_seq, in order.  Records
 * are replayed during the single validating pass, so when journal_open
 * fails, some may already have been replayed: discard that state.
 *
 * after_seq is the seq the caller's state (a snapshot or the store) already
 * holds.  The journal must cover after_seq + 1 onwards: a journal that
 * starts later (in DIR/journal and, with opts->archive_dir, the archive's
 * segments below it), or ends before after_seq, is an error (-EBADMSG),
 * and so is an empty journal directory with after_seq > 0 (retention
 * never moves the newest segment, so it was removed).
 *
 * progress is called at most every 250 ms during the scan, and once at
 * the end with done_bytes == total_bytes.
 *
 * The journal directory is locked (flock) while open: a second
 * journal_open of the same directory gets -EBUSY.
 *
 * On error, *err (if not NULL) gets a human-readable message (static
 * storage in the journal module, valid until the next journal_open).
 * Returns 0 or a negative errno (-EBADMSG for corruption).
 */
int journal_open(struct journal **out, const char *dir,
		 const struct journal_options *opts, u64 after_seq,
		 journal_replay_fn replay, void *ctx, const char **err);

/* Sequence number the next appended record will get. */
u64 journal_next_seq(const struct journal *j);

/* Append a record to the in-memory write buffer (a memcpy and a
 * checksum; no system call); nothing is durable until journal_sync
 * returns 0.  Assigns and returns the seq via *seq_out (may be NULL).
 * Returns 0, -EMSGSIZE (payload too large), -EINVAL (unknown type,
 * payload size wrong for the type, timestamp before the previous
 * record's), -ENOBUFS (the buffer would pass JOURNAL_BUFFER_BYTES_MAX:
 * sync first), -ENOMEM, or the poison code of a failed journal. */
int journal_append(struct journal *j, u16 type, u64 timestamp,
		   const void *payload, u32 payload_bytes, u64 *seq_out);

/* Write the buffer (one write(2), continued only if the kernel took
 * part of it) and fdatasync: every record appended so far is durable
 * when this returns 0.  No-op when nothing was appended.
 *
 * On failure (-errno) the journal is poisoned: every later append and
 * sync returns the same code, and the process must stop and recover by
 * restarting (as PostgreSQL does on fsync failure).  Why not retry: after
 * a failed fdatasync Linux may have dropped the dirty pages and cleared
 * the error, so a second fdatasync can succeed with the data lost; after
 * a short write the file ends in part of a record, and appending behind
 * it would turn a torn tail into mid-file corruption.  Recovery on
 * restart re-reads what is really on disk and cuts the torn tail. */
int journal_sync(struct journal *j);

/* The records appended since the last journal_sync, as journal_sync
 * will write them: *len bytes at *buf (0 when none), seqs *first_seq ..
 * journal_next_seq() - 1.  *buf stays valid and unchanged until the next
 * append or close (journal_sync only reads it): cluster mode sends the
 * same bytes to PostgreSQL while the sync runs (log/pgjournal.h). */
void journal_pending(const struct journal *j, const void **buf, size_t *len,
		     u64 *first_seq);

/* Sealed segments journal_open did not read (skip_sealed). */
u64 journal_skipped_segments(const struct journal *j);

/* Bytes written to all segments (for metrics); excludes the unsynced
 * buffer. */
u64 journal_size_bytes(const struct journal *j);

/* Close and free everything.  Records appended but not synced are
 * discarded (they were never acknowledged).  NULL is a no-op. */
void journal_close(struct journal *j);

/* CRC-32C (Castagnoli), hardware-accelerated where the CPU has it. */
u32 crc32c(u32 crc, const void *buf, size_t len);

/* Seal rec[0..len) (len >= JOURNAL_HEADER_BYTES) after an edit: the
 * checksum is recomputed over bytes JOURNAL_CHECKSUM_FROM..len, as
 * journal_append computes it.  With set_seq, the seq field becomes seq
 * first (what a record was before a renumbering).  Pure. */
void journal_record_seal(u8 *rec, size_t len, bool set_seq, u64 seq);

/* A record's frame: what its header says once the magic, the size
 * bounds and the checksum hold, whether or not this release reads its
 * version and type (tpwallet upgrade check). */
struct journal_frame {
	u64 seq;
	u32 size;
	u16 type;
	u16 version;
};
/* The frame of the record at buf: its size (> 0) with *f set, 0 when
 * more bytes are needed, -EBADMSG when no whole record starts here.
 * Pure: fuzzed with journal_decode. */
long journal_frame(const u8 *buf, size_t len, struct journal_frame *f);

/* Decode one record from buf (len bytes available).  Returns the record
 * size (> 0) and fills *r, 0 when more bytes are needed (truncated), or
 * -EBADMSG when the bytes are not a valid record.  Pure: fuzzed. */
long journal_decode(const u8 *buf, size_t len, struct journal_record *r);

/* Internal, for tests, fuzzing and benchmarks. */

/* Validate one segment held in memory as journal_open does: first seq
 * first_seq, `last` says whether a torn tail may be cut.  Returns 0 with
 * *valid_bytes = where the valid records end (len, or the torn-tail cut),
 * or -EBADMSG with a message in err. */
int journal__scan_buffer(const u8 *buf, size_t len, u64 first_seq, bool last,
			 size_t *valid_bytes, char *err, size_t err_len);
/* The same with a covered seq (opts->covered_seq) and the operator's
 * truncate_corrupt_tail. */
int journal__scan_buffer_covered(const u8 *buf, size_t len, u64 first_seq,
				 bool last, u64 covered_seq, bool truncate,
				 size_t *valid_bytes, char *err,
				 size_t err_len);
/* "<20 digits>.wal" -> its first seq; false for any other name. */
bool journal__parse_segment_name(const char *name, u64 *seq);
/* The two CRC-32C implementations behind crc32c(). */
u32 log__crc32c_sw(u32 crc, const void *buf, size_t len);
u32 log__crc32c_hw(u32 crc, const void *buf, size_t len); /* x86-64 only */

#endif
