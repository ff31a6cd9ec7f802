/*
 * leaf.h - how a journal record becomes a leaf of the audit tree, and the
 * per-event receipts that the second rule makes possible.
 *
 * The record's version (header bytes 14..16) picks the rule, so a log
 * that holds records of both versions verifies record by record, and a
 * leaf hash can only ever be checked under the rule its own bytes name.
 *
 * Rule 1 (JOURNAL_VERSION 1, every record written before version 2):
 *
 *     leaf = SHA-256(0x00 || record)      record = header || payload, as
 *                                          on disk
 *
 * Rule 2 (JOURNAL_VERSION 2): the leaf commits to each event on its own,
 * so that one event can be proven without showing the others:
 *
 *     E_i  = SHA-256(0x10 || event_i)                   128-byte event i
 *     C_j  = SHA-256(0x11 || E_32j || ... || E_32j+c-1) c = min(32, n-32j)
 *     R    = RFC 9162 tree hash over C_0 .. C_m-1       m = ceil(n / 32),
 *            (node = SHA-256(0x01 || l || r), the C_j    R = SHA-256("")
 *            are the tree's leaf hashes as they are)      when n = 0
 *     X    = SHA-256(ext)     the command's ext (mandate guards, owner...),
 *                             SHA-256("") for a record with no ext
 *     L    = header' || command || X || R                  112 bytes
 *     leaf = SHA-256(0x00 || L)
 *
 *   header'  the record's 32-byte header with its checksum (bytes 4..8)
 *            zeroed: a CRC of the whole record would tell something of
 *            the other events;
 *   command  the 16-byte command_header of a JOURNAL_COMMAND record
 *            (core/command.h), 16 zero bytes for the other types;
 *   events   create_accounts / create_transfers: the payload, n =
 *            payload / 128; pulse: none; command: the count events
 *            after the ext, and the payload must be exactly
 *            16 + ext_bytes + 128 * count.
 *
 * All integers little-endian, as in journal.h.  docs/audit.md gives the
 * same rules with a worked example.
 *
 * An event receipt carries header', command, X, the event, the hashes E
 * of its chunk (its own included, at its place) and the path of its
 * chunk to R: the verifier recomputes E_i, C_j, R, L and the leaf, then
 * proves the leaf in the signed tree.
 *
 * Everything here is pure and thread-safe (no allocation).
 */
#ifndef TPW_LOG_LEAF_H
#define TPW_LOG_LEAF_H

#include "core/merkle.h"
#include "core/types.h"

#define LEAF_EVENT_BYTES  128u
#define LEAF_CHUNK_EVENTS 32u
#define LEAF_V2_BYTES	  112u
/* Events a record holds at most (JOURNAL_RECORD_BYTES_MAX / 128). */
#define LEAF_EVENTS_MAX 8200u
/* Chunks of a record, hence leaves of its events tree: at most 257, so
 * a chunk's path has at most 9 hashes. */
#define LEAF_CHUNKS_MAX	      ((LEAF_EVENTS_MAX + LEAF_CHUNK_EVENTS - 1) / 32)
#define LEAF_EVENTS_PROOF_MAX 9u

/* The three parts of L that are not the events. */
struct leaf_v2 {
	u8 header[32]; /* checksum zeroed */
	u8 command[16];
	u8 ext_hash[MERKLE_HASH_BYTES];
	u8 events_root[MERKLE_HASH_BYTES];
};

/*
 * The leaf hash of record[0..len) under the rule its version names.
 * The record must be whole (len == its size field) and, under rule 2,
 * its layout must hold (a command's sizes add up).  The checksum is not
 * checked here (journal_decode does).  Returns 0, or -EBADMSG for a
 * record this cannot hash (unknown version, bad layout).
 */
int leaf_hash_record(const u8 *record, size_t len, u8 out[MERKLE_HASH_BYTES]);

/* The record's version (1 or 2 today), 0 when too short to have one. */
u16 leaf_record_version(const u8 *record, size_t len);

/*
 * Split a version-2 record: fill p (events_root computed) and point
 * *events at its n events (inside record).  Returns 0 or -EBADMSG.
 */
int leaf_v2_split(const u8 *record, size_t len, struct leaf_v2 *p,
		  const u8 **events, u32 *n);

/* leaf = SHA-256(0x00 || header' || command || X || R). */
void leaf_v2_hash(const struct leaf_v2 *p, u8 out[MERKLE_HASH_BYTES]);

/* The events a version-2 header and command announce, from their sizes
 * alone (what a verifier that holds no other event trusts).  Returns 0
 * or -EBADMSG when they do not describe a valid record. */
int leaf_v2_event_count(const u8 header[32], const u8 command[16], u32 *n);

void leaf_event_hash(const u8 event[LEAF_EVENT_BYTES],
		     u8 out[MERKLE_HASH_BYTES]);
/* C = SHA-256(0x11 || e[0] || ... || e[c-1]), 1 <= c <= 32. */
void leaf_chunk_hash(const u8 (*e)[MERKLE_HASH_BYTES], size_t c,
		     u8 out[MERKLE_HASH_BYTES]);

/* What proves event k of a version-2 record against its leaf. */
struct leaf_event_proof {
	u32 n;	    /* events in the record */
	u32 k;	    /* this event's position */
	u32 nchunk; /* hashes in chunk[] */
	u32 npath;  /* hashes in path[] */
	u8 chunk[LEAF_CHUNK_EVENTS][MERKLE_HASH_BYTES]; /* E of the chunk */
	u8 path[LEAF_EVENTS_PROOF_MAX][MERKLE_HASH_BYTES];
};

/* Build the proof of event k of the n events[] (from leaf_v2_split).
 * Returns 0 or -EINVAL (k >= n). */
int leaf_event_prove(const u8 *events, u32 n, u32 k,
		     struct leaf_event_proof *out);

/*
 * The events root that event (at pr->k of pr->n) and its proof imply:
 * checks that chunk[k % 32] is the event's hash and that the chunk and
 * path have exactly the lengths n and k call for.  Returns 0 or
 * -EBADMSG naming nothing more (the caller says which receipt failed).
 */
int leaf_events_root_from_proof(const u8 event[LEAF_EVENT_BYTES],
				const struct leaf_event_proof *pr,
				u8 root[MERKLE_HASH_BYTES]);

/* Hashes in the chunk of event k of n, and in its path to R. */
u32 leaf_chunk_len(u32 n, u32 k);

#endif
