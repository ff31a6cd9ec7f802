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
 * the struct), so it can run in a child process after fork().
 */
#ifndef TPW_LOG_SNAPSHOT_H
#define TPW_LOG_SNAPSHOT_H

#include "core/types.h"

#define SNAPSHOT_BUFFER_BYTES (1u << 20)

struct snapshot_writer {
	int fd;
	u64 seq;
	u64 timestamp;
	u64 payload_bytes;
	u32 crc;
	u32 used;
	char tmp_path[4096];
	char final_path[4096];
	char dir_path[4096];
	u8 buf[SNAPSHOT_BUFFER_BYTES];
};

/* Create the temporary file.  Returns 0 or -errno. */
int snapshot_begin(struct snapshot_writer *w, const char *data_dir, u64 seq,
		   u64 timestamp);
/* A ledger_sink_fn: append bytes.  ctx is the struct snapshot_writer. */
int snapshot_sink(void *ctx, const void *buf, size_t len);
/* Flush, write header and checksum, fsync, rename, fsync directory. */
int snapshot_commit(struct snapshot_writer *w);
/* Remove the temporary file. */
void snapshot_abort(struct snapshot_writer *w);

/*
 * Load the newest valid snapshot's payload into a malloc'd buffer that the
 * caller frees.  Returns 1 when one was found (*buf, *len, *seq,
 * *timestamp set), 0 when there is none, or -errno.  Invalid snapshots
 * are reported through warn (may be NULL) and skipped.
 */
int snapshot_load_newest(const char *data_dir, u8 **buf, size_t *len,
			 u64 *seq, u64 *timestamp,
			 void (*warn)(void *ctx, const char *msg), void *ctx);

/* Delete all but the newest `keep` snapshots. */
void snapshot_prune(const char *data_dir, unsigned keep);

#endif
