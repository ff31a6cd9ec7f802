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
 *     u16 version    JOURNAL_VERSION
 *     u64 seq        1, 2, 3... with no gap, across segments
 *     u64 timestamp  the batch's commit time, nanoseconds (Unix epoch)
 *     payload        size - 32 bytes (records of 128 bytes for batches)
 *
 * All integers little-endian.  A record is visible only once it is whole
 * and its checksum holds.  This is the narrow interface a replicated log
 * (NATS JetStream) will implement later: open+replay, append, sync, close.
 *
 * Recovery rules (journal_open):
 *   - a torn tail (the last record(s) of the last segment cut short or
 *     failing their checksum, with no valid record after them) is cut;
 *   - any other bad record, a gap or a reordered seq, stops start-up with
 *     -EBADMSG and a message naming the file and byte offset.
 */
#ifndef TPW_LOG_JOURNAL_H
#define TPW_LOG_JOURNAL_H

#include "core/types.h"

#define JOURNAL_MAGIC   0x4c575054u /* "TPWL" little-endian */
#define JOURNAL_VERSION 1u
#define JOURNAL_HEADER_BYTES 32u
/* Largest record: a full batch of 128-byte events plus slack. */
#define JOURNAL_RECORD_BYTES_MAX (JOURNAL_HEADER_BYTES + 8192u * 128u)

enum journal_type {
	JOURNAL_CREATE_ACCOUNTS = 1,
	JOURNAL_CREATE_TRANSFERS = 2,
	JOURNAL_PULSE = 3, /* empty payload: expire pending transfers */
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
	bool no_sync;          /* tests and benchmarks only: skip fdatasync */
	/* Progress during recovery: called at most a few times per second
	 * with bytes scanned and total bytes; may be NULL. */
	void (*progress)(void *ctx, u64 done_bytes, u64 total_bytes);
	void *progress_ctx;
};

struct journal;

/* Replay callback: return 0 to go on, or a negative code to stop
 * journal_open with that code. */
typedef int (*journal_replay_fn)(void *ctx, const struct journal_record *r);

/*
 * Open (creating DIR/journal if absent), validate every segment, cut a torn
 * tail, and call replay for every record with seq > after_seq, in order.
 * On error, *err (if not NULL) gets a human-readable message (static
 * storage in the journal module, valid until the next journal_open).
 * Returns 0 or a negative errno (-EBADMSG for corruption).
 */
int journal_open(struct journal **out, const char *dir,
		 const struct journal_options *opts, u64 after_seq,
		 journal_replay_fn replay, void *ctx, const char **err);

/* Sequence number the next appended record will get. */
u64 journal_next_seq(const struct journal *j);

/* Append a record to the in-memory write buffer; nothing is durable until
 * journal_sync returns 0.  Assigns and returns the seq via *seq_out.
 * Returns 0, -EMSGSIZE (payload too large) or -ENOMEM. */
int journal_append(struct journal *j, u16 type, u64 timestamp,
		   const void *payload, u32 payload_bytes, u64 *seq_out);

/* Write the buffer and fdatasync: every record appended so far is durable
 * when this returns 0.  On failure (-errno) the journal is poisoned: every
 * later call fails, the process must stop (as PostgreSQL does on fsync
 * failure). */
int journal_sync(struct journal *j);

/* Bytes in all segments (for metrics). */
u64 journal_size_bytes(const struct journal *j);

void journal_close(struct journal *j);

/* CRC-32C (Castagnoli), hardware-accelerated where the CPU has it. */
u32 crc32c(u32 crc, const void *buf, size_t len);

/* Decode one record from buf (len bytes available).  Returns the record
 * size (> 0) and fills *r, 0 when more bytes are needed (truncated), or
 * -EBADMSG when the bytes are not a valid record.  Pure: fuzzed. */
long journal_decode(const u8 *buf, size_t len, struct journal_record *r);

#endif
