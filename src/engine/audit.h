/*
 * audit.h - the Merkle tree over the journal, kept beside the engine.
 *
 * Every journal record (a batch of accounts or transfers, a pulse, and
 * later policy changes, key rotations, revocations: everything) is one
 * leaf of an RFC 9162 tree, leaf i being the record with seq i + 1,
 * hashed by the rule its version names (log/leaf.h: version 1 its bytes
 * exactly as on disk, version 2 per event).
 *
 * A thread tails the journal with a journal_reader: it never sits in the
 * engine's path (the engine does not wait for it, and it reads what the
 * engine already made durable), and it catches up from the first record
 * at start-up.  The tree therefore lags the journal by the time it takes
 * to read and hash what was just synced (milliseconds at full load).
 *
 * Checkpoints (C2SP tlog-checkpoint) are signed by the audit_signer (the
 * server's current key from its keyring) about once a second while the
 * tree grows; without a signer (a tool reading a journal) there are none.
 *
 * Threads: one writer (the audit thread); any thread may read sizes,
 * roots, entries and proofs for sizes up to audit_size().  With witnesses,
 * a second thread of this module talks to them (see audit_signer), so a
 * witness that is slow or dead never holds the tree or its checkpoints.
 */
#ifndef TPW_ENGINE_AUDIT_H
#define TPW_ENGINE_AUDIT_H

#include "core/merkle.h"
#include "core/types.h"
#include "crypto/note.h"
#include "engine/witness.h"
#include "log/tilestore.h"

struct audit;

struct engine;

/*
 * Signs checkpoint bodies: writes the signed note for text[0..len) into
 * note[0..cap) and its length into *note_len; returns 0 or an error.
 * Called on the audit thread, about once a second.
 */
typedef int (*audit_sign_fn)(void *ctx, const char *text, size_t len,
			     char *note, size_t cap, size_t *note_len);

struct witness_peer;

struct audit_signer {
	const char *origin; /* the log's name: a valid note key name */
	audit_sign_fn sign;
	void *ctx;
	/* Extension lines for the checkpoint of the first `size` leaves,
	 * each ending in "\n", written into buf[0..cap): returns their
	 * length (0: none, or they do not fit).  Called with ctx on the
	 * audit thread just before each signature; may be NULL. */
	size_t (*extensions)(void *ctx, const struct audit *a, u64 size,
			     char *buf, size_t cap);
	/* Witnesses checkpoints are sent to (C2SP tlog-witness), at most
	 * WITNESSES_MAX.  audit_open copies them: the caller's array may go
	 * once it returns.  A witness thread sends each of them the newest
	 * signed checkpoint (one signed while it was busy replaces one it
	 * had not sent yet) and, once cosignatures verify, appends the
	 * cosigned copy to DATA/audit/checkpoints and serves it, unless a
	 * newer checkpoint was served meanwhile. */
	struct witness_peer *witnesses;
	size_t nwitnesses;
	/* What audit_covered_size read just before, or NULL: when
	 * DATA/audit/checkpoints is still that file with that size, it is
	 * not read again (a start-up reads it once). */
	const struct audit_covered *covered;
	/* The tile cache's bytes (setting audit_cache_bytes); 0: the
	 * default, TILESTORE_CACHE_BYTES_DEFAULT. */
	u64 cache_bytes;
	/* Where sealed journal segments may have been moved (the setting
	 * journal_archive_dir), or NULL: entries whose segment is no
	 * longer in DATA/journal are read from there. */
	const char *archive_dir;
};

/* A checkpoint's extension lines, at most. */
#define AUDIT_EXTENSIONS_BYTES_MAX 1024

/* How often a checkpoint is signed while entries arrive. */
#define AUDIT_CHECKPOINT_INTERVAL_MS 1000
/* The floor between two checkpoints asked for by POST. */
#define AUDIT_CHECKPOINT_ASKED_MIN_MS 100

/*
 * Start tailing DATA/journal, never past what engine has made durable
 * (engine may be NULL for a journal nobody writes).  With a signer, a
 * checkpoint (C2SP tlog-checkpoint) is signed at start and then at most
 * every AUDIT_CHECKPOINT_INTERVAL_MS while the tree grows, appended to
 * DATA/audit/checkpoints (each as "<bytes>\n" followed by the note) and
 * then kept as the latest, without waiting for any witness.  A cosigned
 * copy follows it in the file, with the same size and root, when a
 * witness answers.  Returns 0, or -errno with *err set.
 */
int audit_open(struct audit **out, const char *data_dir, struct engine *engine,
	       const struct audit_signer *signer, const char **err);

/*
 * How many journal records the audit files say were durable, read before
 * the journal is recovered: out->leaves the hashes in DATA/audit/leaves,
 * out->checkpointed the size of the largest checkpoint in
 * DATA/audit/checkpoints, out->size the larger of the two (records
 * 1..size were synced and acknowledged: none of them is a torn tail).
 * Read-only; absent files count 0.  Returns 0 or -errno.
 */
struct audit_covered {
	u64 size;	  /* max(leaves, checkpointed) */
	u64 leaves;	  /* hashes in DATA/audit/leaves */
	u64 checkpointed; /* size of the largest checkpoint */
	/* What was read of DATA/audit/checkpoints (cp_present), so that
	 * audit_open need not read it again when it has not changed. */
	bool cp_present;
	u64 cp_dev, cp_ino, cp_bytes;
	u64 cp_end; /* end of the last whole frame */
	/* The root of the largest checkpoint (cp_root_ok: it was read). */
	u8 cp_root[32];
	bool cp_root_ok;
};
int audit_covered_size(const char *data_dir, struct audit_covered *out);

/*
 * After the operator accepted losing journal records past `size`
 * (serve --truncate-corrupt-tail): the checkpoints file, when it covers
 * more than size, is renamed to checkpoints.before-cut-<unix time>; the
 * leaves file, when longer, is renamed likewise and its first size hashes
 * copied back.  Call before audit_open.  msg gets one line naming what
 * moved (relative to DATA).  Returns 0 or -errno.
 */
int audit_set_aside(const char *data_dir, u64 size, char *msg, size_t msg_len);

/* Ask for a checkpoint of the tree as it is, without waiting for the
 * interval: signed within a poll (milliseconds) if the tree grew since the
 * last one.  Does not wait. */
void audit_request_checkpoint(struct audit *a);

/* Copy the newest signed checkpoint (with the cosignatures it has got so
 * far) into buf[0..cap).  Returns its length, 0 when none was signed yet,
 * or -ENOSPC. */
long audit_checkpoint(struct audit *a, char *buf, size_t cap);
/* A witness as the log sees it (the metrics tpwallet_witness_*, and
 * DATA/audit/witnesses for `tpwallet doctor`). */
struct audit_witness_status {
	char name[NOTE_NAME_BYTES_MAX + 1]; /* its cosigner key's name */
	int up; /* 1 cosigned the last checkpoint sent, 0 did not, -1 none
		   sent yet (this run) */
	int64_t last_cosigned_s;	     /* unix seconds; 0: not this run */
	u64 refusals[WITNESS_REFUSAL_COUNT]; /* by enum witness_refusal */
	int last_reason;	/* enum witness_refusal; -1: none */
	unsigned last_status;	/* its HTTP status; 0: no answer */
	int64_t last_refusal_s; /* unix seconds; 0: none */
};

/* Copies of the witnesses' status, in the order they were given: how
 * many (at most max). */
size_t audit_witnesses(struct audit *a, struct audit_witness_status *out,
		       size_t max);

/* Stop the threads and free everything.  Bounded: an exchange with a
 * witness in progress is abandoned within WITNESS_CANCEL_POLL_MS (a name
 * lookup in progress is not: getaddrinfo cannot be interrupted). */
void audit_close(struct audit *a);

/* Leaves hashed so far (acquire order: proofs and roots up to it work). */
u64 audit_size(const struct audit *a);
/* False once the journal reader met corruption (the tree stops there). */
bool audit_healthy(const struct audit *a);
/* True once a journal entry the log had recorded was found changed on
 * disk (its leaf differs from audit/leaves): the state replayed from it
 * cannot be trusted, and the server serves nothing but health. */
bool audit_journal_changed(const struct audit *a);

/* The root of the tree of the first `size` leaves.  Returns 0, or
 * MERKLE_E_SIZE_RANGE when size > audit_size(). */
int audit_root(const struct audit *a, u64 size, u8 root[MERKLE_HASH_BYTES]);

/* What is known of leaf index without reading the journal. */
struct audit_leaf {
	u64 seq;
	u64 timestamp;
	u16 type;
	u32 bytes;
	u8 hash[MERKLE_HASH_BYTES];
};
int audit_leaf(const struct audit *a, u64 index, struct audit_leaf *out);

/* The exact bytes of leaf index, read from the journal into a malloc'd
 * buffer the caller frees, checked against the leaf hash (a journal
 * changed on disk after it was hashed is -EBADMSG).  Returns 0,
 * MERKLE_E_INDEX_RANGE, -EBADMSG, -ENOMEM or -errno. */
int audit_entry(const struct audit *a, u64 index, u8 **bytes, size_t *len);
/* The same, except that bytes which do not match the leaf hash are still
 * handed over with -EBADMSG (*bytes set: the caller frees them), for a
 * view that shows a damaged entry as it is. */
int audit_entry_read(const struct audit *a, u64 index, u8 **bytes, size_t *len);

/* Entries taken from the audit files at open because DATA/audit/state
 * vouched for them (docs/audit.md, "Start-up from the files"); 0 when
 * they were rebuilt from the journal, and for a tool's in-memory tree. */
u64 audit_loaded(const struct audit *a);

/* Journal retention (docs/operations.md, "Journal retention"): segments
 * moved to the archive directory since start, and that directory (NULL:
 * none).  audit_entry and audit_entry_read return -ENOENT when an
 * entry's segment is neither in DATA/journal nor in the archive. */
u64 audit_archived_total(const struct audit *a);
const char *audit_archive_dir(const struct audit *a);
/* The journal's segments in DATA/journal and in the archive
 * (log/archive.h).  0 or -errno. */
struct journal_archive_stats;
int audit_journal_stats(const struct audit *a,
			struct journal_archive_stats *out);

/* Index of the leaf holding the event stamped `timestamp` (the first
 * record whose timestamp is >= it), or MERKLE_E_INDEX_RANGE. */
int audit_index_of_timestamp(const struct audit *a, u64 timestamp, u64 *index);

/* Proofs, as merkle_store_*_proof, for sizes up to audit_size(). */
int audit_inclusion_proof(const struct audit *a, u64 index, u64 size,
			  u8 proof[][MERKLE_HASH_BYTES], size_t *nproof);
int audit_consistency_proof(const struct audit *a, u64 first, u64 second,
			    u8 proof[][MERKLE_HASH_BYTES], size_t *nproof);

/*
 * C2SP tlog-tiles hash tiles of the tree of audit_size() leaves: how many
 * hashes tile (level, index) has (0: none yet, 256: full), and its first
 * `width` hashes (at most that many) into out.  Returns 0,
 * MERKLE_E_SIZE_RANGE, -EBADMSG (a tile damaged on disk) or -errno.
 */
unsigned audit_tile_width(const struct audit *a, unsigned level, u64 index);
int audit_tile(const struct audit *a, unsigned level, u64 index, unsigned width,
	       u8 (*out)[MERKLE_HASH_BYTES]);
/* The tile cache's counters (for /metrics). */
void audit_tile_stats(const struct audit *a, struct tilestore_stats *out);

#endif
