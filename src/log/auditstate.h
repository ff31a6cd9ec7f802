/*
 * auditstate.h - DATA/audit/state: what lets the audit tree start from
 * its own files instead of re-reading the whole journal.
 *
 * The audit thread rebuilt DATA/audit/positions (where each journal
 * record lies) and re-hashed every journal record at each start, so
 * start-up grew with history.  This small file, replaced atomically
 * (log/fsfile.h) each time a checkpoint is signed and at a clean stop,
 * records how many entries the files on disk cover (`size`, N), the tree
 * head of those N leaves and a CRC-32C of the N position records.  At
 * start (engine/audit.c) the files are used only when they agree with it:
 * the leaves hold at least N hashes, the positions file at least N
 * records, the root recomputed from the stored tiles equals `root`, the
 * positions' CRC-32C equals `positions_crc`, and journal record N (read
 * where its position says) hashes to leaf N - 1 (files of another data
 * directory fail there).  Anything else is rebuilt from the journal.
 *
 * Format (little-endian, 96 bytes): "TPWAUDS1" (8), version (4, 1),
 * bytes (4, 96), size (8), root (32), positions_crc (4), reserved (32,
 * zero), crc (4: CRC-32C of the 92 bytes before it).
 */
#ifndef TPW_LOG_AUDITSTATE_H
#define TPW_LOG_AUDITSTATE_H

#include "core/types.h"

#include <stddef.h>

#define AUDITSTATE_BYTES   96u
#define AUDITSTATE_VERSION 1u
/* The file's name in DATA (log/datadir.h's style). */
#define AUDITSTATE_PATH "audit/state"
#define AUDITSTATE_NAME "state"

struct auditstate {
	u64 size;	   /* entries the audit files cover (N) */
	u8 root[32];	   /* the tree head of the first N leaves */
	u32 positions_crc; /* CRC-32C of position records 0 .. N-1 */
};

/* Encode s into out (AUDITSTATE_BYTES). */
void auditstate_encode(const struct auditstate *s, u8 out[AUDITSTATE_BYTES]);

/* Decode buf[0..len): 0, or -EBADMSG with *why ("wrong length", "not an
 * audit state file", "unknown version", "checksum mismatch"). */
int auditstate_decode(const u8 *buf, size_t len, struct auditstate *s,
		      const char **why);

/* Read DATA/audit/state: 0, -ENOENT (none), -EBADMSG (with *why), or
 * -errno. */
int auditstate_read(const char *data_dir, struct auditstate *s,
		    const char **why);

/* Replace DATA/audit/state atomically (fsync file and directory). */
int auditstate_write(const char *data_dir, const struct auditstate *s);

#endif
