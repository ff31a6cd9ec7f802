/*
 * bkmanifest.h - the manifest of one backup in a backup location
 * (`tpwallet backup`, docs/operations.md "Backups"): LOC/<id>/manifest.json,
 * written last and atomically, so a backup directory without it is an
 * interrupted backup and nothing restores from it.
 *
 * The manifest says what the backup holds: the journal identity it comes
 * from (origin), the entries it covers (first_seq..last_seq, their
 * record times), the seq of the store checkpoint or snapshot it starts
 * from (base_seq), the hash of the previous backup's manifest in the
 * location (the chain that makes a deleted backup visible), and every
 * file with its size and the SHA-256 of its bytes as stored (ciphertext
 * when encrypted).  The operator key authenticates it: `mac` is
 * HMAC-SHA-256 over bkmanifest_encode(m, false) under a key derived from
 * the operator key (computed by the command, not here).
 *
 * Encoding: one JSON object, keys sorted, compact, integers as JSON
 * numbers, hashes as 64 lower-case hex digits.  The decoder is strict:
 * every member present, nothing unknown, each value of its type and
 * range, file names of the safe alphabet (no "..", no absolute path),
 * at most BKMANIFEST_FILES_MAX files.  Pure: fuzzed by
 * tests/fuzz/fuzz_bkmanifest.c.
 */
#ifndef TPW_LOG_BKMANIFEST_H
#define TPW_LOG_BKMANIFEST_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

#define BKMANIFEST_VERSION	  1u
#define BKMANIFEST_FILE		  "manifest.json"
#define BKMANIFEST_ID_BYTES_MAX	  64u
#define BKMANIFEST_NAME_BYTES_MAX 128u
#define BKMANIFEST_FILES_MAX	  100000u
#define BKMANIFEST_TEXT_BYTES_MAX (32u << 20)
#define BKMANIFEST_BASE_NONE	  0u /* replay from entry 1 */
#define BKMANIFEST_BASE_STORE	  1u /* store/: a RocksDB checkpoint */
#define BKMANIFEST_BASE_SNAPSHOT  2u /* snapshots/: a snapshot file */

struct bkmanifest_file {
	char name[BKMANIFEST_NAME_BYTES_MAX]; /* relative to LOC/<id> */
	u64 bytes;			      /* as stored */
	u8 sha256[32];			      /* of the bytes as stored */
};

struct bkmanifest {
	u32 version;
	char id[BKMANIFEST_ID_BYTES_MAX]; /* the directory's name */
	u8 origin[32];			  /* the journal's identity */
	bool has_previous;
	u8 previous[32]; /* SHA-256 of the previous manifest.json */
	bool encrypted;
	u8 key_id[8]; /* names the operator key (not secret) */
	u32 base;     /* BKMANIFEST_BASE_* */
	u64 base_seq; /* the seq the store checkpoint or snapshot holds */
	u64 first_seq, last_seq;
	u64 first_time_ns, last_time_ns; /* of entries first_seq, last_seq */
	u64 created_ns, duration_ms;
	u64 bytes; /* every file's, summed */
	size_t nfiles;
	struct bkmanifest_file *files;
	u8 mac[32];
};

/* Allocates the JSON text (free() it); with_mac adds the "mac" member.
 * NULL when out of memory. */
char *bkmanifest_encode(const struct bkmanifest *m, bool with_mac);

/* Parses text[0..len) into *out (out->files allocated: bkmanifest_free).
 * 0, or -EBADMSG with *why a short static reason, or -ENOMEM. */
int bkmanifest_decode(const char *text, size_t len, struct bkmanifest *out,
		      const char **why);

/* Is name a file name a manifest may hold? */
bool bkmanifest_name_valid(const char *name);

void bkmanifest_free(struct bkmanifest *m);

#endif
