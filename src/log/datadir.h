/*
 * datadir.h - the data directory: what each file is called, the marker
 * that makes a directory a tpwallet data directory, the modes the server
 * trusts, and the framing of DATA/audit/checkpoints.  The one place the
 * commands (doctor, audit, init, serve) and the server take these from,
 * so no second copy of a name or a frame can drift.
 *
 * The other formats have one owner each beside this one:
 *   DATA/journal/<20 digits>.wal   records: log/journal.h (framing, seal)
 *   DATA/snapshots/snapshot-<20 digits>.snap: log/snapshot.h
 *   DATA/audit/leaves              leaf i's 32-byte hash at 32 * i: level 0
 *                                  of the tree's hash tiles
 *   DATA/audit/tiles-1 .. tiles-4  levels 1..4 of the hash tiles (C2SP
 *                                  tlog-tiles, height 8), packed in one
 *                                  append-only file per level:
 *                                  log/tilestore.h (format, checks, cache)
 *   DATA/audit/checkpoints         "<note bytes>\n" then the note, appended
 *   DATA/audit/positions           scratch: engine/audit.c
 *   DATA/keys/<kid>.key            log/keyfile.h
 *   DATA/store/                    the ledger's history: log/store.h
 * Whole small files are read and replaced by log/fsfile.h.
 */
#ifndef TPW_LOG_DATADIR_H
#define TPW_LOG_DATADIR_H

#include "core/types.h"

#include <stdbool.h>
#include <stdio.h>

#define DATADIR_MARKER	    "tpwallet.data"
#define DATADIR_MARKER_TEXT "tpwallet data directory, format 1\n"
#define DATADIR_JOURNAL	    "journal"
#define DATADIR_SNAPSHOTS   "snapshots"
#define DATADIR_AUDIT	    "audit"
#define DATADIR_LEAVES	    "audit/leaves"
#define DATADIR_CHECKPOINTS "audit/checkpoints"
/* Where each leaf's record lies in the journal, written by the running
 * server's audit thread and kept between runs when DATA/audit/state
 * (log/auditstate.h) vouches for it, else written again from the journal
 * (engine/audit.c); never read by anything else. */
#define DATADIR_POSITIONS "audit/positions"
/* In DATA/audit: the hash tiles of level 0 (the leaves) and of levels
 * 1..4 (printf format of the level). */
#define DATADIR_TILES_LEAVES	"leaves"
#define DATADIR_TILES_LEVEL_FMT "tiles-%u"
#define DATADIR_KEYS		"keys"
#define DATADIR_ACTIVITY	"activity"
#define DATADIR_ORIGIN		"origin"
#define DATADIR_STORE		"store"

/* Bytes of one leaf hash in DATA/audit/leaves. */
#define DATADIR_LEAF_BYTES 32u

/* Make dir a tpwallet data directory if it is absent or empty (mode 0700,
 * the marker written and synced).  *created says whether it was made.
 * Returns 0 (made, or already one), or -errno with why[0..why_len) set;
 * -ENOTEMPTY for a directory with files but no marker. */
int datadir_prepare(const char *dir, bool *created, char *why, size_t why_len);

/* Does dir hold the marker?  0, or -errno of looking for it. */
int datadir_marker_check(const char *dir);

/* The directories of a data directory that hold what the server trusts
 * (DIR itself, journal, snapshots, audit, keys), relative names, NULL
 * terminated; "" is DIR. */
extern const char *const datadir_trusted[];

/* Is any of them (those that exist), or a file in one, writable by group
 * or others?  Then whoever can write there can rewrite the journal or
 * plant keys.  Returns 0, or -EPERM with one line in why[0..why_len)
 * naming the path and the chmod that fixes it, or -errno when one cannot
 * be examined. */
int datadir_check_modes(const char *dir, char *why, size_t why_len);

/* The same for one directory (and its files); optional: a missing one is
 * fine. */
int datadir_check_dir(const char *path, bool optional, char *why,
		      size_t why_len);

/* A directory outside DIR the server trusts as much (journal_archive_dir):
 * datadir_check_dir, owned by the running user, and in a parent that
 * group or others cannot write (unless sticky). */
int datadir_check_outside(const char *path, char *why, size_t why_len);

/* ---- DATA/audit/checkpoints: "<n>\n" then n bytes of note ---- */

/* Longest head: 20 digits and "\n". */
#define DATADIR_CHECKPOINT_HEAD_BYTES_MAX 21u

/* Write the head of a note of note_len bytes (and a NUL) into out;
 * returns its length. */
size_t datadir_checkpoint_head(char out[DATADIR_CHECKPOINT_HEAD_BYTES_MAX + 1],
			       size_t note_len);

enum datadir_head {
	DATADIR_HEAD_OK = 0,  /* *note_len bytes of note follow in f */
	DATADIR_HEAD_END = 1, /* the end of the file, between frames */
	DATADIR_HEAD_CUT = 2, /* the end of the file inside a head (one
				 being appended) */
};

/* Read one head from f: DATADIR_HEAD_*, or -EBADMSG (not a head: no
 * canonical decimal of 1..NOTE_BYTES_MAX then "\n") or -EIO.
 * *head_bytes is how many bytes the head took (OK and -EBADMSG). */
int datadir_checkpoint_head_read(FILE *f, u64 *note_len, size_t *head_bytes);

/* The same over memory: the head at text[0..len). */
int datadir_checkpoint_head_parse(const char *text, size_t len, u64 *note_len,
				  size_t *head_bytes);

#endif
