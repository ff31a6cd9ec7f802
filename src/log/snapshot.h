/*
 * snapshot.h - checksummed snapshot files of the state as of a journal seq.
 *
 * DIR/snapshots/snapshot-<seq 20 digits>.snap.  Written to a temporary
 * name, fsynced, renamed, directory fsynced: a snapshot is either whole
 * and valid or absent.  Recovery loads the newest valid one and replays
 * the journal after its seq; an invalid snapshot is skipped with a
 * warning (the journal still holds everything).
 *
 * The writer allocates nothing after snapshot_begin() (its buffer lives in
 * the struct), so it can run in a child process after fork().  The
 * struct is large (1 MiB buffer): allocate it, do not put it on a stack.
 *
 * File format (integers little-endian):
 *
 *     offset  size
 *      0       8   magic "TPWSNAP1"
 *      8       4   u32 format version, SNAPSHOT_VERSION
 *     12       4   u32 header bytes, SNAPSHOT_HEADER_BYTES (64)
 *     16       8   u64 seq: the journal seq the state includes
 *     24       8   u64 timestamp of that record
 *     32       8   u64 payload bytes (== file size - 64)
 *     40       4   u32 CRC-32C of the payload
 *     44      16   zero (reserved)
 *     60       4   u32 CRC-32C of bytes 0..59
 *     64           payload: u64 n, the auth state (n bytes,
 *                  auth_snapshot_write), u64 n, the client-policy state
 *                  (pstate_snapshot_write), the ledger
 *                  (ledger_snapshot_write)
 * Older versions (1: the ledger alone; 2: without the policy state; 3:
 * revocations without their payer) are
 * skipped: the journal replays from the start.
 *
 * A snapshot is valid when the magic, version, header size, header
 * checksum, payload size and payload checksum hold and the seq matches
 * the file name.  The header is written last (at offset 0, before the
 * fsync), so a snapshot whose writer died has a zero header and fails.
 */
#ifndef TPW_LOG_SNAPSHOT_H
#define TPW_LOG_SNAPSHOT_H

#include "core/types.h"

#define SNAPSHOT_BUFFER_BYTES (1u << 20)
#define SNAPSHOT_HEADER_BYTES 64u
#define SNAPSHOT_VERSION      4u
/* A snapshot's file name in DATA/snapshots, from its seq (unsigned long
 * long): zero-padded so names sort as seqs. */
#define SNAPSHOT_NAME_FMT "snapshot-%020llu.snap"

struct snapshot_writer {
	int fd;
	u64 seq;
	u64 timestamp;
	u64 payload_bytes;
	u32 crc;
	u32 used;
	int error; /* first write error (-errno), sticky: commit fails */
	char tmp_path[4096];
	char final_path[4096];
	char dir_path[4096];
	u8 buf[SNAPSHOT_BUFFER_BYTES];
};

/* Create DIR/snapshots if absent (fsyncing DIR) and the temporary file
 * snapshot-<seq>.snap.tmp.  Returns 0 or -errno. */
int snapshot_begin(struct snapshot_writer *w, const char *data_dir, u64 seq,
		   u64 timestamp);
/* A ledger_sink_fn: append bytes.  ctx is the struct snapshot_writer.
 * Writes to the file whenever the buffer fills; returns 0 or -errno (and
 * keeps failing after the first error). */
int snapshot_sink(void *ctx, const void *buf, size_t len);
/* Flush, write header and checksum, fsync, rename, fsync directory.
 * Returns 0 or -errno; on failure the temporary file is removed. */
int snapshot_commit(struct snapshot_writer *w);
/* Close and remove the temporary file (after a failed sink, or instead
 * of commit).  Safe after a failed commit. */
void snapshot_abort(struct snapshot_writer *w);

/* "snapshot-<20 digits>.snap": its seq, else false (any other name,
 * the temporaries included). */
bool snapshot_parse_name(const char *name, u64 *seq);

/* What a valid header says. */
struct snapshot_header {
	u64 seq;
	u64 timestamp;
	u64 payload_bytes;
	u32 payload_crc;
};

/* Check the first SNAPSHOT_HEADER_BYTES of a file of file_bytes named for
 * name_seq: NULL when the header holds (magic, checksum, version, seq,
 * payload size; *out set), else why not, in words.  The payload checksum
 * is the reader's to check. */
const char *snapshot_header_check(const u8 raw[SNAPSHOT_HEADER_BYTES],
				  u64 name_seq, u64 file_bytes,
				  struct snapshot_header *out);

/*
 * Load the newest valid snapshot's payload into a malloc'd buffer that the
 * caller frees.  Returns 1 when one was found (*buf, *len, *seq,
 * *timestamp set), 0 when there is none, or -errno.  Invalid snapshots
 * are reported through warn (may be NULL) and skipped.
 */
int snapshot_load_newest(const char *data_dir, u8 **buf, size_t *len, u64 *seq,
			 u64 *timestamp,
			 void (*warn)(void *ctx, const char *msg), void *ctx);

/* Delete all but the newest `keep` snapshots (by seq in the name; files
 * being written, *.tmp, are left alone), then fsync the directory.
 * NEEDSWORK: does not check validity, so with keep == 1 and a corrupt
 * newest snapshot the older valid one goes; recovery still has the
 * journal, which is whole without a store (journal retention needs
 * one). */
void snapshot_prune(const char *data_dir, unsigned keep);

#endif
