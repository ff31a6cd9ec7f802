/*
 * audit.c - the Merkle tree over the journal (audit.h).
 *
 * The thread reads records with journal_reader, appends their leaf hashes
 * to the tile store (log/tilestore.h: the tree's hashes on disk behind a
 * bounded cache), and records where each record lies (segment, offset)
 * and its timestamp in DATA/audit/positions, mapped shared, so that it
 * lives in the page cache the kernel can drop, not in the process's
 * anonymous memory.  Readers need no lock: everything below the published
 * size is written before the size is stored (release) and read after it
 * is loaded (acquire).
 *
 * Start-up (load_state): when DATA/audit/state (log/auditstate.h) vouches
 * for the leaves, tiles and positions, the entries below the seq the
 * engine recovered from are taken from them and only the journal after
 * it is read; otherwise the files are rebuilt from the journal.  After
 * each signed checkpoint the thread records the state again and moves
 * the journal segments nothing needs any longer to the archive directory
 * (retention_step, log/archive.h).
 *
 * Witnesses have a thread of their own.  The audit thread signs a
 * checkpoint, makes it durable and serves it at once, then leaves it in a
 * mailbox of one: a checkpoint not yet taken is replaced by the newer one
 * (a witness needs the newest, not every one).  The witness thread takes
 * it, resolves names, talks to each witness (consistency proofs read the
 * store like any reader, below the published size) and, when cosignatures
 * come back, appends and serves the cosigned copy, unless a newer
 * checkpoint was published meanwhile.  A witness that never answers
 * therefore delays only the next witness round, never the tree or the
 * next signature.
 */
#include "engine/audit.h"
#include "core/parse.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "log/journal_reader.h"
#include "log/leaf.h"
#include "crypto/cosig.h"
#include "crypto/note.h"
#include "core/u128.h"
#include "engine/witness.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/fsfile.h"
#include "log/tilestore.h"
#include "log/auditstate.h"
#include "log/archive.h"
#include "engine/history.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

/* Positions: the file grows by 2^14 records of 32 bytes (512 KiB) at a
 * time, up to 2^32 records, as many as the tree holds; the mapping is
 * reserved for all of them at once (128 GiB of address space, no memory)
 * so that it never moves. */
#define CHUNK_RECORDS ((u64)1 << 14)
#define POSITIONS_MAX MERKLE_STORE_LEAVES_MAX
/* Stored leaf hashes read at once while the journal is compared. */
#define LEAVES_BUFFER_HASHES 2048
/* At stop, the longest the thread goes on hashing durable records. */
#define AUDIT_DRAIN_MS 1000
/* How long the thread sleeps when it has read everything there is. */
#define IDLE_POLL_MS 5
/* A checkpoint's text ("<origin>\n<size>\n<root>\n" and extension
 * lines). */
#define CHECKPOINT_TEXT_BYTES_MAX (1024 + AUDIT_EXTENSIONS_BYTES_MAX)
/* The longest wait of the idle witness thread before it looks again. */
#define WITNESS_IDLE_WAIT_MS 1000

struct position {
	u64 segment_seq;
	u64 offset;
	u64 timestamp;
	u32 bytes;
	u16 type;
	u16 pad;
};
_Static_assert(sizeof(struct position) == 32, "position is 32 bytes");

/* A witness as the witness thread keeps it (and nothing else touches). */
struct witness_slot {
	struct witness_peer peer; /* peer.size: what it last cosigned */
	struct http_client *http; /* kept open between checkpoints */
	/* What the metrics and DATA/audit/witnesses show: written by the
	 * witness thread, read by any, under the audit's status_lock. */
	struct audit_witness_status st;
};

/* The newest signed checkpoint the witness thread has not taken yet.
 * Under mail_lock; buffers allocated at audit_open. */
struct mailbox {
	bool full;
	u64 size;
	size_t text_len;
	char text[CHECKPOINT_TEXT_BYTES_MAX];
	size_t note_len;
	char *note; /* NOTE_BYTES_MAX */
};

struct audit {
	char data_dir[PATH_MAX];
	struct engine *engine;	 /* may be NULL */
	struct tilestore *tiles; /* the tree's hashes (log/tilestore.h) */
	u64 cache_bytes;
	struct position *positions; /* mapped: POSITIONS_MAX records */
	int positions_fd;
	u64 positions_cap; /* records the file has room for */
	/* CRC-32C of the position records below size (the audit thread's;
	 * DATA/audit/state records it with the size it covers). */
	u32 positions_crc;
	u64 loaded;	/* entries taken from the files at start */
	u64 state_size; /* the size DATA/audit/state last recorded */
	bool on_disk;	/* DATA/audit (not memory-backed files) */
	/* Where sealed journal segments may have moved (setting
	 * journal_archive_dir); empty: none. */
	char archive_dir[PATH_MAX];
	_Atomic u64 archived; /* segments moved since start */
	_Atomic u64 size;
	_Atomic bool healthy;
	_Atomic bool changed; /* a logged journal entry changed on disk */
	_Atomic bool stop;
	_Atomic bool asked; /* a checkpoint was requested: sign at once */
	pthread_t thread;
	bool started;

	/* Checkpoints (all on the audit thread but `latest`). */
	struct audit_signer signer;
	char origin[CHECKPOINT_ORIGIN_BYTES_MAX + 1];
	bool signing;
	u64 signed_size; /* size of the last checkpoint signed */
	/* Size of the newest checkpoint in DATA/audit/checkpoints at start:
	 * while the tree is rebuilt below it, nothing is signed (a smaller
	 * checkpoint after a bigger one reads as a rollback). */
	u64 resume_size;
	/* That checkpoint's root: the tree at resume_size must have it, or
	 * the files or the journal were changed (load_state rebuilds; the
	 * first signature waits for it: maybe_checkpoint). */
	u8 resume_root[MERKLE_HASH_BYTES];
	bool resume_root_ok;
	bool fork_logged;
	bool signed_any;
	u64 signed_at_ms;
	int checkpoints_fd; /* DATA/audit/checkpoints, append */
	/* The leaves the tiles held at open (DATA/audit/leaves, level 0):
	 * the tree of them is reopened, not rebuilt, and each journal entry
	 * below is compared with its stored hash, never rewritten: one that
	 * no longer hashes to its recorded leaf stops the tree. */
	u64 leaves_stored;
	u64 cache_first; /* stored hashes read ahead into leaves_buf */
	unsigned cache_n;
	u8 leaves_buf[LEAVES_BUFFER_HASHES][32];

	/* Publication, by the audit thread (a new checkpoint) and the
	 * witness thread (a cosigned copy of it).  publish_lock orders the
	 * appends to the file with the size published; latest_lock, taken
	 * inside it, guards only the copy GET /v1/audit/checkpoint reads. */
	pthread_mutex_t publish_lock;
	u64 checkpoints_end; /* bytes of whole checkpoints in the file */
	bool published_any;
	u64 published_size; /* of the checkpoint in `latest` */
	pthread_mutex_t latest_lock;
	char *latest; /* NOTE_BYTES_MAX */
	size_t latest_len;

	/* The witness thread, its mailbox and its own witnesses (copied
	 * from the signer at open: only that thread uses them). */
	struct witness_slot *witnesses;
	size_t nwitnesses;
	pthread_mutex_t mail_lock;
	pthread_cond_t mail_cond; /* CLOCK_MONOTONIC */
	struct mailbox mail;
	pthread_t witness_thread;
	bool witness_started;
	pthread_mutex_t status_lock; /* a leaf: the slots' st */
	char *witness_note;	     /* NOTE_BYTES_MAX: the round's note */
	char *witness_req;	     /* WITNESS_REQUEST_BYTES_MAX */
};

/* A request to a witness: "old N", up to 64 proof lines, the note. */
#define WITNESS_REQUEST_BYTES_MAX (NOTE_BYTES_MAX + 8192)

static const struct position *position_of(const struct audit *a, u64 i)
{
	return &a->positions[i];
}

/* Make the tree's hashes durable (before a checkpoint that covers them
 * is appended). */
static int leaves_flush(struct audit *a)
{
	return a->tiles ? tilestore_sync(a->tiles) : 0;
}

/* Leaf i's hash against the one recorded by an earlier run.  Returns 0,
 * or -EBADMSG when the journal changed under the log. */
static int leaves_compare(struct audit *a, u64 i, const u8 hash[32])
{
	/* Catching up: compare in blocks, not a read per leaf. */
	if (i < a->cache_first || i >= a->cache_first + a->cache_n) {
		u64 n = a->leaves_stored - i;
		if (n > LEAVES_BUFFER_HASHES)
			n = LEAVES_BUFFER_HASHES;
		int ret = tilestore_read_leaves(a->tiles, i, n, a->leaves_buf);
		if (ret != 0)
			return ret;
		a->cache_first = i;
		a->cache_n = (unsigned)n;
	}
	const u8 *old = a->leaves_buf[i - a->cache_first];
	if (memcmp(old, hash, 32) != 0) {
		log_at(LOG_ERROR,
		       "journal entry no longer matches the audit log: "
		       "the journal or audit/leaves was changed on "
		       "disk; the server refuses every request until "
		       "it is restored (docs/operations.md, Recovery)",
		       LOG_NUM("index", i), LOG_NUM("seq", i + 1));
		atomic_store(&a->changed, true);
		return -EBADMSG;
	}
	return 0;
}

static int add_leaf(struct audit *a, const struct journal_record *r,
		    const u8 *raw, size_t raw_bytes, u64 segment_seq,
		    u64 offset)
{
	u64 i = atomic_load_explicit(&a->size, memory_order_relaxed);
	u8 hash[MERKLE_HASH_BYTES];

	if (i >= POSITIONS_MAX)
		return MERKLE_E_FULL;
	if (i >= a->positions_cap) {
		/* Blocks allocated, not a sparse hole: a full disk is an
		 * error here, never a SIGBUS when the mapping is written. */
		int ret = fallocate(
			a->positions_fd, 0,
			(off_t)(a->positions_cap * sizeof(struct position)),
			(off_t)(CHUNK_RECORDS * sizeof(struct position)));
		if (ret != 0)
			return -errno;
		a->positions_cap += CHUNK_RECORDS;
	}
	/* The record's version picks its leaf rule (log/leaf.h). */
	if (leaf_hash_record(raw, raw_bytes, hash) != 0)
		return -EBADMSG;
	/* Below what the tiles held at open, the tree has the leaf already:
	 * compare; past it, append. */
	int ret = i < a->leaves_stored ? leaves_compare(a, i, hash)
				       : tilestore_append(a->tiles, hash);
	if (ret != 0)
		return ret;
	a->positions[i] = (struct position){.segment_seq = segment_seq,
					    .offset = offset,
					    .timestamp = r->timestamp,
					    .bytes = (u32)raw_bytes,
					    .type = r->type};
	a->positions_crc = crc32c(a->positions_crc, &a->positions[i],
				  sizeof(struct position));
	atomic_store_explicit(&a->size, i + 1, memory_order_release);
	return 0;
}

/* Record in DATA/audit/state what the files cover: the position records
 * below the size made durable first (the tiles were synced by the
 * caller), then the state file replaced.  root: the tree head of that
 * size, or NULL to compute it.  A failure costs a longer next start
 * (the entries after the last state are hashed again), so it is logged
 * and left. */
static void state_save(struct audit *a, const u8 *root)
{
	struct auditstate st = {.size = atomic_load(&a->size),
				.positions_crc = a->positions_crc};

	if (!a->on_disk || st.size == 0 || st.size == a->state_size ||
	    atomic_load(&a->changed))
		return;
	if (root)
		memcpy(st.root, root, sizeof(st.root));
	else if (tilestore_root(a->tiles, st.size, st.root) != 0)
		return;
	/* Records below the last state were synced then and are never
	 * written again: only the pages from there on (msync walks every
	 * page of its range, and the file grows by 32 bytes an entry). */
	long page = sysconf(_SC_PAGESIZE);
	u64 from = a->state_size * sizeof(struct position);
	from -= page > 0 ? from % (u64)page : from;
	int ret = msync((u8 *)a->positions + from,
			st.size * sizeof(struct position) - from, MS_SYNC) != 0
			  ? -errno
			  : auditstate_write(a->data_dir, &st);
	if (ret != 0) {
		log_at(LOG_WARN, "cannot write DATA/audit/state",
		       LOG_NUM("errno", (u64)-ret));
		return;
	}
	a->state_size = st.size;
}

/* Journal retention (docs/operations.md): move the sealed segments whose
 * records are all covered both by the store's durable checkpoint (its
 * flushed seq: a crash restarts from it and replays only what follows)
 * and by DATA/audit/state (the tree starts from its files, not from
 * those records).  Without a store, nothing moves: the journal is then
 * the only state (serve refuses the setting without one). */
static void retention_step(struct audit *a)
{
	struct history_stats hs;
	u64 moved = 0;
	const char *why = NULL;

	if (!a->archive_dir[0] || !a->engine ||
	    !engine_history_stats(a->engine, &hs))
		return;
	u64 below =
		hs.flushed_seq < a->state_size ? hs.flushed_seq : a->state_size;
	int ret = journal_archive_move(a->data_dir, a->archive_dir, below,
				       &moved, &why);
	atomic_fetch_add(&a->archived, moved);
	if (moved > 0)
		log_at(LOG_INFO, "journal segments moved to the archive",
		       LOG_NUM("segments", moved), LOG_NUM("below_seq", below),
		       LOG_STR("archive", a->archive_dir));
	if (ret < 0)
		log_at(LOG_WARN, "journal retention failed",
		       LOG_STR("step", why), LOG_NUM("errno", (u64)-ret));
}

/* Read the journal record a position names into buf (p->bytes): from
 * DATA/journal, else from the archive directory.  0, -ENOENT (neither
 * holds its segment), -EBADMSG (shorter than the position says) or
 * -errno. */
static int record_read(const struct audit *a, const struct position *p, u8 *buf)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path),
		 "%s/" DATADIR_JOURNAL "/" JOURNAL_SEGMENT_NAME_FMT,
		 a->data_dir, (unsigned long long)p->segment_seq);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && a->archive_dir[0]) {
		snprintf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT,
			 a->archive_dir, (unsigned long long)p->segment_seq);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	int ret = 0;
	size_t got = 0;
	while (got < p->bytes) {
		ssize_t k = pread(fd, buf + got, p->bytes - got,
				  (off_t)(p->offset + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ret = k < 0 ? -errno : -EBADMSG;
			break;
		}
		got += (size_t)k;
	}
	close(fd);
	return ret;
}

/* Do the audit files agree with DATA/audit/state?  NULL when they do,
 * else why not; *tree_bad when the tree's own hashes cannot be trusted
 * (they are then set aside and rebuilt, not compared).  *crc_from gets
 * the CRC-32C of the first `from` position records (from <= st->size). */
static const char *files_check(struct audit *a, const struct auditstate *st,
			       u64 from, u32 *crc_from, bool *tree_bad)
{
	u8 root[MERKLE_HASH_BYTES], leaf[MERKLE_HASH_BYTES];
	struct stat sb;

	*tree_bad = false;
	if (st->size == 0)
		return "audit/state covers no entry";
	if (st->size > POSITIONS_MAX)
		return "audit/state is corrupt (size out of range)";
	if (tilestore_size(a->tiles) < st->size)
		return "short: audit/leaves holds fewer hashes than "
		       "audit/state covers";
	if (fstat(a->positions_fd, &sb) != 0 ||
	    (u64)sb.st_size / sizeof(struct position) < st->size)
		return "short: audit/positions holds fewer records than "
		       "audit/state covers";
	if (tilestore_root(a->tiles, st->size, root) != 0) {
		*tree_bad = true;
		return "corrupt: the audit tiles cannot be read";
	}
	if (memcmp(root, st->root, sizeof(root)) != 0) {
		*tree_bad = true;
		return "corrupt: the tree head recomputed from the tiles "
		       "differs from the one audit/state recorded";
	}
	/* The files must agree with what was signed: the tree at the
	 * newest checkpoint's size has its root (files rewritten with
	 * their checksums fail here, not at the next signature). */
	if (a->resume_root_ok && a->resume_size > 0 &&
	    a->resume_size <= st->size &&
	    (tilestore_root(a->tiles, a->resume_size, root) != 0 ||
	     memcmp(root, a->resume_root, sizeof(root)) != 0)) {
		*tree_bad = true;
		return "changed: the tree at the newest signed checkpoint's "
		       "size does not have that checkpoint's root";
	}
	*crc_from = crc32c(0, a->positions, from * sizeof(struct position));
	if (crc32c(*crc_from, a->positions + from,
		   (st->size - from) * sizeof(struct position)) !=
	    st->positions_crc)
		return "corrupt: audit/positions does not match its checksum";
	/* The last entry covered, read where its position says, must be
	 * the leaf: files copied from another data directory fail here. */
	const struct position *p = position_of(a, st->size - 1);
	if (p->bytes < JOURNAL_HEADER_BYTES ||
	    p->bytes > JOURNAL_RECORD_BYTES_MAX)
		return "corrupt: audit/positions names an impossible record";
	u8 *buf = malloc(p->bytes);
	if (!buf)
		return "out of memory";
	int ret = record_read(a, p, buf);
	bool same = ret == 0 && leaf_hash_record(buf, p->bytes, root) == 0 &&
		    tilestore_leaf_hash(a->tiles, st->size - 1, leaf) == 0 &&
		    memcmp(root, leaf, sizeof(root)) == 0;
	free(buf);
	if (ret != 0 && ret != -EBADMSG)
		return "the journal record audit/state ends at cannot be read";
	if (!same) {
		*tree_bad = true;
		return "foreign: the journal record audit/state ends at does "
		       "not hash to its leaf (audit files of another journal)";
	}
	return NULL;
}

/* Append note, a checkpoint of `size`, to DATA/audit/checkpoints and serve
 * it.  A cosigned copy (from the witness thread) is dropped unless the
 * checkpoint it copies is still the one served: an older one after a newer
 * one would read as a rollback, to clients and in the file.  Append
 * failures are logged and the note served anyway, as the tree itself does
 * not depend on them.  Returns true when it was published. */
static bool publish(struct audit *a, u64 size, const char *note,
		    size_t note_len, bool cosigned, bool *recorded)
{
	bool done = false;

	if (recorded)
		*recorded = false;
	pthread_mutex_lock(&a->publish_lock);
	if (cosigned && (!a->published_any || a->published_size != size))
		goto cleanup;
	if (a->checkpoints_fd >= 0) {
		char head[DATADIR_CHECKPOINT_HEAD_BYTES_MAX + 1];
		size_t hn = datadir_checkpoint_head(head, note_len);
		struct iovec iov[2] = {{head, hn}, {(void *)note, note_len}};
		ssize_t w = writev(a->checkpoints_fd, iov, 2);
		if (w != (ssize_t)(hn + note_len) ||
		    fdatasync(a->checkpoints_fd) != 0) {
			log_at(LOG_WARN, "cannot append the checkpoint",
			       LOG_NUM("errno", errno));
			/* Never leave half a frame for the next one to
			 * follow: cut back to the last whole checkpoint. */
			if (ftruncate(a->checkpoints_fd,
				      (off_t)a->checkpoints_end) != 0)
				log_at(LOG_ERROR,
				       "cannot cut the checkpoints file",
				       LOG_NUM("errno", errno));
		} else {
			a->checkpoints_end += (u64)w;
			if (recorded)
				*recorded = true;
		}
	}
	pthread_mutex_lock(&a->latest_lock);
	memcpy(a->latest, note, note_len);
	a->latest_len = note_len;
	pthread_mutex_unlock(&a->latest_lock);
	a->published_any = true;
	a->published_size = size;
	done = true;
cleanup:
	pthread_mutex_unlock(&a->publish_lock);
	return done;
}

/* Leave a signed checkpoint for the witness thread, replacing one it has
 * not taken yet.  Never waits but for the lock (held for copies only). */
static void mailbox_post(struct audit *a, u64 size, const char *text,
			 size_t text_len, const char *note, size_t note_len)
{
	if (text_len > sizeof(a->mail.text) || note_len > NOTE_BYTES_MAX)
		return; /* cannot happen: both were made with these caps */
	pthread_mutex_lock(&a->mail_lock);
	a->mail.size = size;
	memcpy(a->mail.text, text, text_len);
	a->mail.text_len = text_len;
	memcpy(a->mail.note, note, note_len);
	a->mail.note_len = note_len;
	a->mail.full = true;
	pthread_cond_signal(&a->mail_cond);
	pthread_mutex_unlock(&a->mail_lock);
}

/* On the witness thread: send the signed note of size `size` to one
 * witness with a consistency proof from the size it last cosigned; on a
 * 409 learn its size and try once more.  A verified cosignature line is
 * appended to the note.  A witness that is down or refuses costs a log
 * line, never the log.  The proofs read the store below the published
 * size, as any reader may (merkle.h), while the audit thread appends. */
/* What one round with a witness came to. */
struct cosign_outcome {
	int refusal;	 /* enum witness_refusal; -1 cosigned; -2 no news */
	unsigned status; /* the HTTP status of a refusal (0: none) */
};

static struct cosign_outcome cosign(struct audit *a, struct witness_slot *ws,
				    u64 size, const char *body, size_t body_len,
				    char *note, size_t *note_len)
{
	struct witness_peer *w = &ws->peer;
	char *req = a->witness_req;
	struct http_response r = {0};
	struct cosign_outcome out = {-2, 0};

	if (!ws->http)
		return (struct cosign_outcome){WITNESS_REFUSAL_unreachable, 0};
	for (int attempt = 0; attempt < 2; attempt++) {
		u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
		size_t np = 0, rlen = 0;

		if (w->size > size)
			w->size = 0; /* it knows a bigger tree: it will say */
		if (w->size > 0 && w->size < size &&
		    audit_consistency_proof(a, w->size, size, proof, &np) != 0)
			break;
		rlen = (size_t)snprintf(req, 64, "old %llu\n",
					(unsigned long long)w->size);
		for (size_t i = 0; i < np; i++) {
			sodium_bin2base64(req + rlen, 64, proof[i], 32,
					  sodium_base64_VARIANT_ORIGINAL);
			rlen += strlen(req + rlen);
			req[rlen++] = '\n';
		}
		req[rlen++] = '\n';
		memcpy(req + rlen, note, *note_len);
		rlen += *note_len;
		http_response_clear(&r);
		int ret = witness_post(ws->http, req, rlen, &a->stop, &r);
		if (ret == -HTTP_canceled)
			break; /* shutting down */
		if (ret != 0) {
			bool refused = ret == -HTTP_outbound_refused;
			if (refused)
				log_at(LOG_WARN,
				       "witness refused by outbound_allow",
				       LOG_STR("witness", w->key.name),
				       LOG_STR("error", http_err_name(ret)),
				       LOG_STR("detail", r.refused));
			else
				log_at(LOG_WARN, "witness unreachable",
				       LOG_STR("witness", w->key.name),
				       LOG_STR("error", http_err_name(ret)));
			out.refusal = refused ? WITNESS_REFUSAL_outbound_refused
					      : WITNESS_REFUSAL_unreachable;
			break;
		}
		out.status = r.status;
		if (r.status == 409 && attempt == 0) {
			/* It last cosigned another size: start from there. */
			u64 known;
			if (witness_parse_size(r.body ? r.body : "", r.body_len,
					       &known) != 0) {
				log_at(LOG_WARN,
				       "witness answered 409 without a "
				       "canonical size",
				       LOG_STR("witness", w->key.name));
				out.refusal = WITNESS_REFUSAL_size_conflict;
				break;
			}
			w->size = known;
			continue;
		}
		if (r.status != 200) {
			out.refusal = (int)witness_refusal_of_status(r.status);
			log_at(LOG_WARN, "witness refused the checkpoint",
			       LOG_STR("witness", w->key.name),
			       LOG_NUM("status", r.status),
			       LOG_NUM("size", size),
			       LOG_STR("reason",
				       witness_refusal_name(
					       (unsigned)out.refusal)));
			break;
		}
		/* One or more lines; keep those that verify. */
		const char *line = r.body ? r.body : "";
		while (*line) {
			const char *nl = strchr(line, '\n');
			size_t ll = nl ? (size_t)(nl - line) + 1 : strlen(line);
			if (cosig_verify(&w->key, body, body_len, line, ll,
					 NULL) == 0 &&
			    *note_len + ll + 1 < NOTE_BYTES_MAX) {
				memcpy(note + *note_len, line, ll);
				*note_len += ll;
				if (note[*note_len - 1] != '\n')
					note[(*note_len)++] = '\n';
				w->size = size;
			}
			line += ll;
		}
		if (w->size != size) {
			log_at(LOG_WARN,
			       "witness answered no valid cosignature",
			       LOG_STR("witness", w->key.name));
			out.refusal = WITNESS_REFUSAL_invalid_cosignature;
		} else {
			out = (struct cosign_outcome){-1, 0};
		}
		break;
	}
	http_response_clear(&r);
	return out;
}

/* DATA/audit/witnesses: one line per witness, "<name> <up> <last
 * cosigned, unix s> <reason of the last refusal or -> <its HTTP status>
 * <its unix s>" (docs/operations.md, Witness), for `tpwallet doctor`.
 * Rewritten when a witness turns up or down or refuses for another
 * reason, not at each checkpoint.  Called on the witness thread. */
static void save_witness_status(struct audit *a)
{
	char dir[PATH_MAX + 16];
	char text[WITNESSES_MAX * (NOTE_NAME_BYTES_MAX + 96)];
	size_t len = 0;

	pthread_mutex_lock(&a->status_lock);
	for (size_t k = 0; k < a->nwitnesses; k++) {
		const struct audit_witness_status *st = &a->witnesses[k].st;
		int n = snprintf(text + len, sizeof(text) - len,
				 "%s %d %lld %s %u %lld\n", st->name, st->up,
				 (long long)st->last_cosigned_s,
				 st->last_reason < 0
					 ? "-"
					 : witness_refusal_name(
						   (unsigned)st->last_reason),
				 st->last_status,
				 (long long)st->last_refusal_s);
		if (n > 0 && (size_t)n < sizeof(text) - len)
			len += (size_t)n;
	}
	pthread_mutex_unlock(&a->status_lock);
	snprintf(dir, sizeof(dir), "%s/" DATADIR_AUDIT, a->data_dir);
	int ret = fsfile_replace(dir, "witnesses", text, len);
	if (ret != 0)
		log_at(LOG_WARN, "cannot write DATA/audit/witnesses",
		       LOG_NUM("errno", (u64)-ret));
}

/* Count a round's outcome; true when DATA/audit/witnesses should be
 * written again (the witness turned up or down, or refuses for another
 * reason). */
static bool note_outcome(struct audit *a, struct witness_slot *ws,
			 struct cosign_outcome o)
{
	struct audit_witness_status *st = &ws->st;
	int64_t now = (int64_t)time(NULL);
	bool changed;

	if (o.refusal == -2)
		return false;
	pthread_mutex_lock(&a->status_lock);
	int up = o.refusal == -1;
	changed = st->up != up;
	st->up = up;
	if (up) {
		st->last_cosigned_s = now;
	} else {
		changed |= st->last_reason != o.refusal ||
			   st->last_status != o.status;
		st->refusals[o.refusal]++;
		st->last_reason = o.refusal;
		st->last_status = o.status;
		st->last_refusal_s = now;
	}
	pthread_mutex_unlock(&a->status_lock);
	return changed;
}

size_t audit_witnesses(struct audit *a, struct audit_witness_status *out,
		       size_t max)
{
	size_t n = 0;

	if (!a)
		return 0;
	pthread_mutex_lock(&a->status_lock);
	for (; n < a->nwitnesses && n < max; n++)
		out[n] = a->witnesses[n].st;
	pthread_mutex_unlock(&a->status_lock);
	return n;
}

/*
 * The witness thread: take the newest checkpoint from the mailbox, send it
 * round the witnesses (each exchange bounded by WITNESS_TIMEOUT_MS, name
 * lookup included, two at most per witness), and publish the cosigned
 * copy.  Every wait is bounded and looks at `stop`, so audit_close waits
 * at most an HTTP_CANCEL_POLL_MS slice.  The thread owns the witnesses'
 * clients: their connections stay open from one checkpoint to the next.
 */
static void *witness_main(void *arg)
{
	struct audit *a = arg;
	char text[CHECKPOINT_TEXT_BYTES_MAX];

	for (size_t k = 0; k < a->nwitnesses; k++) {
		int ret = witness_connect(&a->witnesses[k].peer,
					  &a->witnesses[k].http);
		if (ret < 0)
			log_at(LOG_WARN, "witness client not opened",
			       LOG_STR("witness",
				       a->witnesses[k].peer.key.name),
			       LOG_STR("error", http_err_name(ret)));
	}
	while (!atomic_load(&a->stop)) {
		u64 size = 0;
		size_t text_len = 0, note_len = 0;
		bool take;

		pthread_mutex_lock(&a->mail_lock);
		if (!a->mail.full && !atomic_load(&a->stop)) {
			struct timespec until =
				tpw_deadline_ms(WITNESS_IDLE_WAIT_MS);
			pthread_cond_timedwait(&a->mail_cond, &a->mail_lock,
					       &until);
		}
		take = a->mail.full && !atomic_load(&a->stop);
		if (take) {
			size = a->mail.size;
			text_len = a->mail.text_len;
			memcpy(text, a->mail.text, text_len);
			note_len = a->mail.note_len;
			memcpy(a->witness_note, a->mail.note, note_len);
			a->mail.full = false;
		}
		pthread_mutex_unlock(&a->mail_lock);
		if (!take)
			continue;
		size_t signed_len = note_len;
		bool changed = false;
		for (size_t k = 0; k < a->nwitnesses && !atomic_load(&a->stop);
		     k++)
			changed |= note_outcome(
				a, &a->witnesses[k],
				cosign(a, &a->witnesses[k], size, text,
				       text_len, a->witness_note, &note_len));
		if (changed)
			save_witness_status(a);
		if (note_len > signed_len)
			publish(a, size, a->witness_note, note_len, true, NULL);
	}
	for (size_t k = 0; k < a->nwitnesses; k++) {
		http_client_close(a->witnesses[k].http);
		a->witnesses[k].http = NULL;
	}
	return NULL;
}

/* Sign a checkpoint of the tree as it is, append it to
 * DATA/audit/checkpoints, serve it, and hand it to the witness thread.
 * Failures are logged and retried at the next interval: the tree itself
 * does not depend on them. */
static void checkpoint_now(struct audit *a)
{
	char body[CHECKPOINT_TEXT_BYTES_MAX];
	char *note = NULL;
	size_t body_len, note_len;
	struct checkpoint c = {0};
	u64 size = audit_size(a);
	int ret;

	/* The leaves a checkpoint covers are durable before it is. */
	ret = leaves_flush(a);
	if (ret != 0)
		goto failed;
	memcpy(c.origin, a->origin, sizeof(c.origin));
	c.origin_len = strlen(a->origin);
	c.size = size;
	ret = tilestore_root(a->tiles, size, c.root);
	if (ret != 0)
		goto failed;
	char ext[AUDIT_EXTENSIONS_BYTES_MAX];
	if (a->signer.extensions) {
		c.extensions_len = a->signer.extensions(a->signer.ctx, a, size,
							ext, sizeof(ext));
		c.extensions = c.extensions_len ? ext : NULL;
	}
	ret = checkpoint_format(&c, body, sizeof(body), &body_len);
	if (ret != 0)
		goto failed;
	note = malloc(NOTE_BYTES_MAX);
	if (!note) {
		ret = -ENOMEM;
		goto failed;
	}
	ret = a->signer.sign(a->signer.ctx, body, body_len, note,
			     NOTE_BYTES_MAX, &note_len);
	if (ret != 0)
		goto failed;
	bool recorded;
	publish(a, size, note, note_len, false, &recorded);
	state_save(a, c.root);
	retention_step(a);
	a->signed_any = true;
	a->signed_at_ms = tpw_monotonic_ms();
	if (!recorded && a->checkpoints_fd >= 0) {
		/* Served, but not in DATA/audit/checkpoints (a full disk):
		 * sign again at the next interval until one is recorded,
		 * and only then hand it to the witnesses. */
		free(note);
		return;
	}
	if (a->nwitnesses > 0)
		mailbox_post(a, size, body, body_len, note, note_len);
	a->signed_size = size;
	free(note);
	return;
failed:
	free(note);
	a->signed_at_ms = tpw_monotonic_ms(); /* retry at the next interval */
	log_at(LOG_WARN, "cannot sign a checkpoint", LOG_NUM("code", ret));
}

static void maybe_checkpoint(struct audit *a)
{
	bool asked = atomic_exchange(&a->asked, false);

	if (!a->signing)
		return;
	if (audit_size(a) < a->resume_size)
		return;
	/* Never sign a tree that forks from the newest checkpoint on disk
	 * (a journal rewritten with valid checksums, files changed while
	 * running): say so once and stay unhealthy. */
	if (!a->signed_any && a->resume_root_ok && a->resume_size > 0) {
		u8 root[MERKLE_HASH_BYTES];
		if (tilestore_root(a->tiles, a->resume_size, root) != 0 ||
		    memcmp(root, a->resume_root, sizeof(root)) != 0) {
			if (!a->fork_logged)
				log_at(LOG_ERROR,
				       "audit tree differs from the newest "
				       "signed checkpoint: not signing; run "
				       "`tpwallet audit check` and restore "
				       "the data directory from a backup",
				       LOG_NUM("checkpoint_size",
					       a->resume_size));
			a->fork_logged = true;
			atomic_store(&a->healthy, false);
			return;
		}
	}
	if (a->signed_any && audit_size(a) == a->signed_size)
		return;
	/* Asked (POST /v1/audit/checkpoint) shortens the wait, but never
	 * below a floor: anyone may ask, and a signature costs two
	 * fdatasyncs (and the witness thread a round of witnesses). */
	u64 wait = asked ? AUDIT_CHECKPOINT_ASKED_MIN_MS
			 : AUDIT_CHECKPOINT_INTERVAL_MS;
	if (a->signed_any && tpw_monotonic_ms() - a->signed_at_ms < wait) {
		if (asked)
			atomic_store(&a->asked, true); /* keep it for later */
		return;
	}
	checkpoint_now(a);
}

void audit_request_checkpoint(struct audit *a)
{
	atomic_store(&a->asked, true);
}

/* The first pass over the journal at start: how far it has to go, and
 * its progress in the log (about once a second, then once when done):
 * entries compared with the stored leaves, and entries appended to the
 * tree (rebuilt from the journal when the leaves were missing, else only
 * records newer than the stored leaves). */
struct catchup {
	u64 target; /* the engine's durable seq when the thread started */
	u64 start_ms, logged_ms;
	bool done;
};

static void catchup_note(struct audit *a, struct catchup *c, bool dry)
{
	u64 size = audit_size(a), now = tpw_monotonic_ms();

	if (c->done)
		return;
	u64 compared = size < a->leaves_stored ? size : a->leaves_stored;
	compared = compared > a->loaded ? compared - a->loaded : 0;
	if (size >= c->target || dry) {
		c->done = true;
		log_at(LOG_INFO, "audit tree caught up with the journal",
		       LOG_NUM("entries", size),
		       LOG_NUM("loaded_from_files", a->loaded),
		       LOG_NUM("compared_with_stored_leaves", compared),
		       LOG_NUM("leaves_appended", size - compared - a->loaded),
		       LOG_NUM("duration_ms", now - c->start_ms));
		return;
	}
	if (now - c->logged_ms < 1000)
		return;
	c->logged_ms = now;
	log_at(LOG_INFO, "audit tree catching up with the journal",
	       LOG_NUM("entries", size), LOG_NUM("of", c->target),
	       LOG_NUM("loaded_from_files", a->loaded),
	       LOG_NUM("compared_with_stored_leaves", compared),
	       LOG_NUM("leaves_appended", size - compared - a->loaded));
}

static void *audit_main(void *arg)
{
	struct audit *a = arg;
	struct journal_reader *rd = NULL;
	int ret;

	/* The journal directory exists once the engine opened it. */
	while (!atomic_load(&a->stop)) {
		/* Past what the files held at start (load_state). */
		ret = journal_reader_open(&rd, a->data_dir, audit_size(a) + 1);
		if (ret == 0) {
			if (a->archive_dir[0])
				journal_reader_archive(rd, a->archive_dir);
			break;
		}
		struct timespec ms = {0, 100 * 1000000L};
		nanosleep(&ms, NULL);
	}
	u64 drain_until_ms = 0;
	struct catchup cu = {.start_ms = tpw_monotonic_ms(),
			     .logged_ms = tpw_monotonic_ms(),
			     /* Without an engine (a tool) nobody waits. */
			     .done = !a->engine};
	if (a->engine)
		cu.target = engine_durable_seq(a->engine);
	while (rd) {
		struct journal_record r;
		const u8 *raw;
		size_t raw_bytes;
		u64 seg, off;

		/* At stop, hash what is durable before leaving (bounded):
		 * DATA/audit/leaves then proves every acknowledged record
		 * durable at the next start (a damaged one is refused, not
		 * cut as a torn tail). */
		bool stopping = atomic_load(&a->stop);
		if (stopping && drain_until_ms == 0)
			drain_until_ms = tpw_monotonic_ms() + AUDIT_DRAIN_MS;
		else if (stopping && tpw_monotonic_ms() > drain_until_ms)
			break;

		/* Only what is durable: a record past it may be half-written
		 * or lost in a power cut, and must never be in the tree. */
		if (a->engine)
			journal_reader_limit(rd, engine_durable_seq(a->engine));
		ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
		if (ret == 1) {
			journal_reader_position(rd, &seg, &off);
			ret = add_leaf(a, &r, raw, raw_bytes, seg, off);
			if (ret != 0) {
				log_at(LOG_ERROR, "audit tree cannot grow",
				       LOG_NUM("code", ret));
				break;
			}
			catchup_note(a, &cu, false);
			/* Under load the reader may never run dry: check on
			 * the way (a clock read per record, and records are
			 * whole batches), so checkpoints lag by at most an
			 * interval. */
			if (!stopping)
				maybe_checkpoint(a);
			continue;
		}
		if (ret < 0) {
			log_at(LOG_ERROR,
			       "audit tree stopped: journal unreadable",
			       LOG_STR("detail", journal_reader_error(rd)));
			break;
		}
		if (stopping) {
			/* Caught up with what is durable: sign it, so a
			 * clean stop leaves no entry unsigned (doctor calls
			 * unsigned entries a failure to sign). */
			if (a->signing && audit_size(a) >= a->resume_size &&
			    (!a->signed_any || audit_size(a) != a->signed_size))
				checkpoint_now(a);
			break;
		}
		catchup_note(a, &cu, true);
		maybe_checkpoint(a);
		struct timespec idle = {0, IDLE_POLL_MS * 1000000L};
		nanosleep(&idle, NULL);
	}
	if (!atomic_load(&a->stop))
		atomic_store(&a->healthy, false);
	journal_reader_close(rd);
	return NULL;
}

/* Read the "<bytes>\n<note>" frames of the checkpoints file: *end gets
 * the end of the last whole frame, *max_size the largest tree size a
 * frame names (sizes never go back, so it is the newest's).  Reads only.
 * NEEDSWORK: this reads the whole file at start; rotate or index it
 * once logs run for years. */
/* The root line of a checkpoint's text (after "<origin>\n<size>\n"). */
static bool root_line(const char *line, u8 root[MERKLE_HASH_BYTES])
{
	const char *nl = strchr(line, '\n');
	size_t got = 0;
	return nl &&
	       sodium_base642bin(root, MERKLE_HASH_BYTES, line,
				 (size_t)(nl - line), NULL, &got, NULL,
				 sodium_base64_VARIANT_ORIGINAL) == 0 &&
	       got == MERKLE_HASH_BYTES;
}

static int checkpoints_read(FILE *f, u64 *end_out, u64 *max_size,
			    u8 root[MERKLE_HASH_BYTES], bool *root_ok)
{
	u64 end = 0;
	int ret = 0;

	*max_size = 0;
	*root_ok = false;
	for (;;) {
		u64 n;
		size_t head_bytes;
		if (datadir_checkpoint_head_read(f, &n, &head_bytes) !=
		    DATADIR_HEAD_OK)
			break;
		off_t note_at = ftello(f);
		if (note_at < 0)
			break;
		/* The size: "<origin>\n<size>\n..." */
		char note[256];
		size_t want =
			n < sizeof(note) - 1 ? (size_t)n : sizeof(note) - 1;
		size_t got = fread(note, 1, want, f);
		note[got] = '\0';
		u64 size = 0;
		bool sized = false;
		char *onl = strchr(note, '\n');
		char *snl = onl ? strchr(onl + 1, '\n') : NULL;
		if (snl && parse_u64_n(onl + 1, (size_t)(snl - onl - 1),
				       UINT64_MAX, &size) == 0)
			sized = true;
		if (fseeko(f, note_at + (off_t)n, SEEK_SET) != 0)
			break;
		/* fseeko past the end succeeds: check the bytes exist. */
		off_t at = ftello(f);
		struct stat st;
		if (at < 0 || fstat(fileno(f), &st) != 0 || at > st.st_size)
			break;
		end = (u64)at;
		if (sized && size > *max_size) {
			*max_size = size;
			*root_ok = root_line(snl + 1, root);
		}
	}
	if (ferror(f))
		ret = -EIO;
	*end_out = end;
	return ret;
}

/* Find the end of the last whole frame of the checkpoints file and cut
 * anything after it (a crash mid-append). */
static int checkpoints_scan(struct audit *a, const char *path,
			    const struct audit_covered *known)
{
	struct stat st;
	u64 end = 0;
	int ret;

	/* Read a moment ago (audit_covered_size) and not changed since. */
	if (known && known->cp_present && fstat(a->checkpoints_fd, &st) == 0 &&
	    (u64)st.st_dev == known->cp_dev &&
	    (u64)st.st_ino == known->cp_ino &&
	    (u64)st.st_size == known->cp_bytes) {
		a->resume_size = known->checkpointed;
		memcpy(a->resume_root, known->cp_root, sizeof(a->resume_root));
		a->resume_root_ok = known->cp_root_ok;
		end = known->cp_end;
		ret = 0;
		goto cut;
	}
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	ret = checkpoints_read(f, &end, &a->resume_size, a->resume_root,
			       &a->resume_root_ok);
	fclose(f);
cut:
	if (ret == 0 && truncate(path, (off_t)end) != 0)
		ret = -errno;
	a->checkpoints_end = end;
	return ret;
}

int audit_covered_size(const char *data_dir, struct audit_covered *out)
{
	char path[PATH_MAX + 32];
	struct stat st;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/" DATADIR_LEAVES, data_dir);
	if (stat(path, &st) == 0)
		out->leaves = (u64)st.st_size / 32u;
	else if (errno != ENOENT)
		return -errno;
	snprintf(path, sizeof(path), "%s/" DATADIR_CHECKPOINTS, data_dir);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fstat(fileno(f), &st) == 0) {
			ret = checkpoints_read(f, &out->cp_end,
					       &out->checkpointed, out->cp_root,
					       &out->cp_root_ok);
			out->cp_present = ret == 0;
			out->cp_dev = (u64)st.st_dev;
			out->cp_ino = (u64)st.st_ino;
			out->cp_bytes = (u64)st.st_size;
		} else {
			ret = -errno;
		}
		fclose(f);
	} else if (errno != ENOENT) {
		ret = -errno;
	}
	out->size = out->leaves > out->checkpointed ? out->leaves
						    : out->checkpointed;
	return ret;
}

/* Copy the first `bytes` of from_fd into a new file path (0600), synced. */
static int copy_prefix(int from_fd, const char *path, u64 bytes)
{
	int ret = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	u64 done = 0;
	char buf[65536];

	if (fd < 0)
		return -errno;
	while (done < bytes) {
		size_t want = bytes - done < sizeof(buf)
				      ? (size_t)(bytes - done)
				      : sizeof(buf);
		ssize_t r = pread(from_fd, buf, want, (off_t)done);
		if (r <= 0) {
			ret = r < 0 ? -errno : -EIO;
			goto cleanup;
		}
		ssize_t w = write(fd, buf, (size_t)r);
		if (w != r) {
			ret = w < 0 ? -errno : -EIO;
			goto cleanup;
		}
		done += (u64)r;
	}
	if (fsync(fd) != 0)
		ret = -errno;
cleanup:
	close(fd);
	return ret;
}

int audit_set_aside(const char *data_dir, u64 size, char *msg, size_t msg_len)
{
	char dir[PATH_MAX + 8], from[PATH_MAX + 32], to[PATH_MAX + 64];
	char suffix[40];
	struct audit_covered cov;
	int ret, fd = -1;

	msg[0] = '\0';
	ret = audit_covered_size(data_dir, &cov);
	if (ret < 0)
		return ret;
	u64 leaves = cov.leaves, checkpointed = cov.checkpointed;
	snprintf(dir, sizeof(dir), "%s/audit", data_dir);
	snprintf(suffix, sizeof(suffix), ".before-cut-%lld",
		 (long long)time(NULL));
	if (checkpointed > size) {
		/* Signed checkpoints of a longer log no longer match this
		 * one: kept, as evidence, but no longer in the log. */
		snprintf(from, sizeof(from), "%s/checkpoints", dir);
		snprintf(to, sizeof(to), "%s/checkpoints%s", dir, suffix);
		if (rename(from, to) != 0)
			return -errno;
	}
	if (leaves > size) {
		/* The hashes of the records kept still guard them; those of
		 * the records lost are kept aside with the old file. */
		snprintf(from, sizeof(from), "%s/leaves", dir);
		snprintf(to, sizeof(to), "%s/leaves%s", dir, suffix);
		if (rename(from, to) != 0)
			return -errno;
		fd = open(to, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ret = copy_prefix(fd, from, size * 32u);
		close(fd);
		if (ret < 0)
			return ret;
	}
	ret = fsdir_sync(dir);
	if (ret < 0)
		return ret;
	snprintf(msg, msg_len,
		 "audit/checkpoints%s%s and audit/leaves%s%s (the signed "
		 "checkpoints covered %llu entries, the leaves %llu, the "
		 "journal now holds %llu)%s",
		 checkpointed > size ? " moved to audit/checkpoints" : " kept",
		 checkpointed > size ? suffix : "",
		 leaves > size ? " moved to audit/leaves" : " kept",
		 leaves > size ? suffix : "", (unsigned long long)checkpointed,
		 (unsigned long long)leaves, (unsigned long long)size,
		 checkpointed > size
			 ? "; witnesses and auditors who saw the old "
			   "checkpoints will see this log go back: tell them"
			 : "");
	return 0;
}

/* DATA/audit/checkpoints, created (with its directory) if absent. */
static int open_checkpoints(struct audit *a, const struct audit_covered *known)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/" DATADIR_AUDIT, a->data_dir);
	int ret = fsdir_make(path);
	if (ret < 0)
		return ret;
	snprintf(path, sizeof(path), "%s/" DATADIR_CHECKPOINTS, a->data_dir);
	a->checkpoints_fd =
		open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (a->checkpoints_fd < 0)
		return -errno;
	return checkpoints_scan(a, path, known);
}

/* DATA/audit/positions as it is (load_state decides whether it is kept
 * or emptied), or a memory-backed file for a tool reading a journal;
 * mapped for every record the tree may hold. */
static int open_positions(struct audit *a, bool on_disk)
{
	char path[PATH_MAX + 32];

	if (on_disk) {
		snprintf(path, sizeof(path), "%s/" DATADIR_AUDIT, a->data_dir);
		int ret = fsdir_make(path);
		if (ret < 0)
			return ret;
		snprintf(path, sizeof(path), "%s/" DATADIR_POSITIONS,
			 a->data_dir);
		a->positions_fd =
			open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	} else {
		a->positions_fd =
			memfd_create("tpwallet-positions", MFD_CLOEXEC);
	}
	if (a->positions_fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(a->positions_fd, &sb) != 0)
		return -errno;
	a->positions_cap = (u64)sb.st_size / sizeof(struct position);
	void *m = mmap(NULL, POSITIONS_MAX * sizeof(struct position),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       a->positions_fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	a->positions = m;
	return 0;
}

static void tiles_progress(void *ctx, unsigned level, u64 done, u64 total)
{
	(void)ctx;
	log_at(LOG_INFO, "rebuilding audit tiles from the level below",
	       LOG_NUM("level", level), LOG_NUM("done", done),
	       LOG_NUM("total", total));
}

/* The tree's hashes: in DATA/audit with a signer (the server's log),
 * else in memory-backed files (a tool reading a journal).  The tree of
 * the leaves found is reopened, not rebuilt; what it logs says so. */
static int open_tiles(struct audit *a, bool on_disk)
{
	char dir[PATH_MAX + 16];
	struct tilestore_report rep;

	snprintf(dir, sizeof(dir), "%s/" DATADIR_AUDIT, a->data_dir);
	int ret = tilestore_open(&a->tiles, on_disk ? dir : NULL,
				 a->cache_bytes, tiles_progress, a, &rep);
	if (ret != 0 || !on_disk)
		return ret;
	/* The files' entries must outlive a crash (once, at start). */
	ret = fsdir_sync(dir);
	if (ret < 0)
		return ret;
	a->leaves_stored = rep.leaves;
	u64 rebuilt = 0;
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++)
		rebuilt += rep.rebuilt[l];
	log_at(LOG_INFO,
	       rebuilt ? "audit tree reopened from tiles, some rebuilt"
		       : "audit tree reopened from tiles",
	       LOG_NUM("leaves", rep.leaves),
	       LOG_NUM("tile_hashes_rebuilt", rebuilt),
	       LOG_NUM("level1_rebuilt", rep.rebuilt[1]),
	       LOG_NUM("tail_hashes_checked", rep.checked[1] + rep.checked[2] +
						      rep.checked[3] +
						      rep.checked[4]),
	       LOG_NUM("bytes_cut", rep.cut_bytes));
	return 0;
}

/* Move the tree's hash files aside (".untrusted-<time>", kept as
 * evidence) so that tilestore_open starts them anew. */
static int tiles_set_aside(struct audit *a)
{
	char from[PATH_MAX + 32], to[PATH_MAX + 64];
	long long now = (long long)time(NULL);

	tilestore_close(a->tiles);
	a->tiles = NULL;
	for (unsigned l = 0; l < TILESTORE_LEVELS; l++) {
		int n = snprintf(from, sizeof(from), "%s/" DATADIR_AUDIT "/",
				 a->data_dir);
		if (l == 0)
			snprintf(from + n, sizeof(from) - (size_t)n,
				 DATADIR_TILES_LEAVES);
		else
			snprintf(from + n, sizeof(from) - (size_t)n,
				 DATADIR_TILES_LEVEL_FMT, l);
		snprintf(to, sizeof(to), "%s.untrusted-%lld", from, now);
		if (rename(from, to) != 0 && errno != ENOENT)
			return -errno;
	}
	return open_tiles(a, true);
}

/* Start from the audit files when DATA/audit/state vouches for them
 * (files_check), else empty the positions (and, when the tree's hashes
 * are in doubt, set them aside) so that the audit thread rebuilds them
 * from the journal, saying why.  0 or -errno. */
static int load_state(struct audit *a)
{
	struct auditstate st;
	const char *why = NULL;
	char reason[160];
	bool tree_bad = false;
	u64 t0 = tpw_monotonic_ms();
	u32 crc_from = 0;
	/* The records the engine replayed into its state at this start
	 * (after its store's or snapshot's seq) are compared with their
	 * leaves all the same: a journal rewritten on disk is never
	 * applied unchecked.  Only those before are taken on trust. */
	u64 from = 0;

	int ret = auditstate_read(a->data_dir, &st, &why);
	if (ret == -ENOENT) {
		why = "audit/state is missing";
	} else if (ret == -EBADMSG) {
		snprintf(reason, sizeof(reason), "corrupt: audit/state: %s",
			 why);
		why = reason;
	} else if (ret < 0) {
		why = "audit/state cannot be read";
	} else {
		from = a->engine ? engine_recovered_from(a->engine) : st.size;
		if (from > st.size)
			from = st.size;
		why = files_check(a, &st, from, &crc_from, &tree_bad);
	}
	if (!why) {
		a->loaded = a->state_size = from;
		a->positions_crc = crc_from;
		atomic_store(&a->size, from);
		log_at(LOG_INFO, "audit tree loaded from its files",
		       LOG_NUM("entries", st.size), LOG_NUM("loaded", from),
		       LOG_NUM("to_compare", st.size - from),
		       LOG_NUM("duration_ms", tpw_monotonic_ms() - t0));
		return 0;
	}
	/* A new data directory has nothing to trust or distrust. */
	if (ret != -ENOENT || tilestore_size(a->tiles) > 0)
		log_at(LOG_WARN,
		       tree_bad ? "audit files not trusted: tiles set aside, "
				  "rebuilding the tree from the journal"
				: "audit files not trusted: rebuilding "
				  "positions from the journal",
		       LOG_STR("reason", why),
		       LOG_NUM("leaves_found", tilestore_size(a->tiles)));
	if (ftruncate(a->positions_fd, 0) != 0)
		return -errno;
	a->positions_cap = 0;
	return tree_bad ? tiles_set_aside(a) : 0;
}

int audit_open(struct audit **out, const char *data_dir, struct engine *engine,
	       const struct audit_signer *signer, const char **err)
{
	struct audit *a;
	int ret;

	*out = NULL;
	*err = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	/* Before any way out: audit_close destroys them. */
	/* Before any way out: audit_close must not close fd 0. */
	a->checkpoints_fd = -1;
	a->positions_fd = -1;
	pthread_mutex_init(&a->latest_lock, NULL);
	pthread_mutex_init(&a->publish_lock, NULL);
	pthread_mutex_init(&a->mail_lock, NULL);
	pthread_mutex_init(&a->status_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->mail_cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((size_t)snprintf(a->data_dir, sizeof(a->data_dir), "%s",
			     data_dir) >= sizeof(a->data_dir)) {
		*err = "data directory path too long";
		ret = -ENAMETOOLONG;
		goto fail;
	}
	ret = open_positions(a, signer != NULL);
	if (ret < 0) {
		*err = "cannot map DATA/audit/positions";
		goto fail;
	}
	a->engine = engine;
	a->checkpoints_fd = -1;
	if (signer) {
		if (!signer->origin ||
		    !note_name_valid(signer->origin, strlen(signer->origin)) ||
		    strlen(signer->origin) > CHECKPOINT_ORIGIN_BYTES_MAX) {
			*err = "the log's origin is not a valid note key name";
			ret = -EINVAL;
			goto fail;
		}
		if (signer->nwitnesses > WITNESSES_MAX) {
			*err = "too many witnesses";
			ret = -EINVAL;
			goto fail;
		}
		a->signer = *signer;
		snprintf(a->origin, sizeof(a->origin), "%s", signer->origin);
		a->signer.origin = a->origin;
		/* The witnesses become the witness thread's own. */
		a->signer.witnesses = NULL;
		a->signer.nwitnesses = 0;
		a->latest = malloc(NOTE_BYTES_MAX);
		if (!a->latest) {
			*err = "out of memory";
			ret = -ENOMEM;
			goto fail;
		}
		if (signer->nwitnesses > 0) {
			a->witnesses = calloc(signer->nwitnesses,
					      sizeof(*a->witnesses));
			a->mail.note = malloc(NOTE_BYTES_MAX);
			a->witness_note = malloc(NOTE_BYTES_MAX);
			a->witness_req = malloc(WITNESS_REQUEST_BYTES_MAX);
			if (!a->witnesses || !a->mail.note ||
			    !a->witness_note || !a->witness_req) {
				*err = "out of memory";
				ret = -ENOMEM;
				goto fail;
			}
			for (size_t k = 0; k < signer->nwitnesses; k++) {
				struct witness_slot *ws = &a->witnesses[k];
				ws->peer = signer->witnesses[k];
				snprintf(ws->st.name, sizeof(ws->st.name), "%s",
					 ws->peer.key.name);
				ws->st.up = -1;
				ws->st.last_reason = -1;
			}
			a->nwitnesses = signer->nwitnesses;
		}
		/* DATA/audit/witnesses is this run's: a witness no longer
		 * configured is not shown (the first round writes it). */
		char wpath[PATH_MAX + 32];
		snprintf(wpath, sizeof(wpath), "%s/" DATADIR_AUDIT "/witnesses",
			 a->data_dir);
		if (unlink(wpath) != 0 && errno != ENOENT)
			log_at(LOG_WARN, "cannot remove DATA/audit/witnesses",
			       LOG_NUM("errno", (u64)errno));
		ret = open_checkpoints(a, signer->covered);
		if (ret < 0) {
			*err = "cannot open DATA/audit/checkpoints";
			goto fail;
		}
		a->signing = true;
	}
	a->cache_bytes = signer && signer->cache_bytes
				 ? signer->cache_bytes
				 : TILESTORE_CACHE_BYTES_DEFAULT;
	a->on_disk = signer != NULL;
	if (signer && signer->archive_dir)
		snprintf(a->archive_dir, sizeof(a->archive_dir), "%s",
			 signer->archive_dir);
	atomic_init(&a->size, 0);
	ret = open_tiles(a, signer != NULL);
	if (ret == 0 && a->on_disk)
		ret = load_state(a);
	if (ret < 0) {
		*err = "cannot open the audit tiles (DATA/audit/leaves, "
		       "tiles-1..4)";
		goto fail;
	}
	atomic_init(&a->healthy, true);
	atomic_init(&a->changed, false);
	atomic_init(&a->stop, false);
	atomic_init(&a->asked, false);
	if (a->nwitnesses > 0) {
		ret = pthread_create(&a->witness_thread, NULL, witness_main, a);
		if (ret != 0) {
			*err = "cannot start the witness thread";
			ret = -ret;
			goto fail;
		}
		a->witness_started = true;
	}
	ret = pthread_create(&a->thread, NULL, audit_main, a);
	if (ret != 0) {
		*err = "cannot start the audit thread";
		ret = -ret;
		goto fail;
	}
	a->started = true;
	*out = a;
	return 0;
fail:
	audit_close(a);
	return ret;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	atomic_store(&a->stop, true);
	/* Under the lock: the witness thread looks at stop under it before
	 * it waits, so the wake-up cannot fall between the two. */
	pthread_mutex_lock(&a->mail_lock);
	pthread_cond_broadcast(&a->mail_cond);
	pthread_mutex_unlock(&a->mail_lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	if (a->witness_started)
		pthread_join(a->witness_thread, NULL);
	/* The tiles durable, then the positions and DATA/audit/state: the
	 * next start takes them as they are. */
	if (a->tiles && a->started && audit_healthy(a) && leaves_flush(a) == 0)
		state_save(a, NULL);
	if (a->positions)
		munmap(a->positions, POSITIONS_MAX * sizeof(struct position));
	if (a->positions_fd >= 0)
		close(a->positions_fd);
	if (a->checkpoints_fd >= 0)
		close(a->checkpoints_fd);
	if (a->tiles && leaves_flush(a) != 0)
		log_at(LOG_WARN, "cannot sync the audit tiles at close");
	tilestore_close(a->tiles);
	free(a->latest);
	free(a->witnesses);
	free(a->mail.note);
	free(a->witness_note);
	free(a->witness_req);
	pthread_cond_destroy(&a->mail_cond);
	pthread_mutex_destroy(&a->mail_lock);
	pthread_mutex_destroy(&a->status_lock);
	pthread_mutex_destroy(&a->publish_lock);
	pthread_mutex_destroy(&a->latest_lock);
	free(a);
}

long audit_checkpoint(struct audit *a, char *buf, size_t cap)
{
	long ret;

	pthread_mutex_lock(&a->latest_lock);
	if (a->latest_len > cap) {
		ret = -ENOSPC;
	} else {
		memcpy(buf, a->latest, a->latest_len);
		ret = (long)a->latest_len;
	}
	pthread_mutex_unlock(&a->latest_lock);
	return ret;
}

u64 audit_size(const struct audit *a)
{
	return atomic_load_explicit(&a->size, memory_order_acquire);
}

bool audit_journal_changed(const struct audit *a)
{
	return atomic_load(&a->changed);
}

bool audit_healthy(const struct audit *a)
{
	return atomic_load(&a->healthy);
}

int audit_root(const struct audit *a, u64 size, u8 root[MERKLE_HASH_BYTES])
{
	if (size > audit_size(a))
		return MERKLE_E_SIZE_RANGE;
	return tilestore_root(a->tiles, size, root);
}

int audit_leaf(const struct audit *a, u64 index, struct audit_leaf *out)
{
	if (index >= audit_size(a))
		return MERKLE_E_INDEX_RANGE;
	const struct position *p = position_of(a, index);
	out->seq = index + 1;
	out->timestamp = p->timestamp;
	out->type = p->type;
	out->bytes = p->bytes;
	return tilestore_leaf_hash(a->tiles, index, out->hash);
}

int audit_entry(const struct audit *a, u64 index, u8 **bytes, size_t *len)
{
	int ret = audit_entry_read(a, index, bytes, len);

	if (ret == -EBADMSG && *bytes) {
		free(*bytes);
		*bytes = NULL;
		*len = 0;
	}
	return ret;
}

int audit_entry_read(const struct audit *a, u64 index, u8 **bytes, size_t *len)
{
	struct audit_leaf leaf;
	u8 hash[MERKLE_HASH_BYTES];
	u8 *buf = NULL;
	int ret;

	*bytes = NULL;
	*len = 0;
	ret = audit_leaf(a, index, &leaf);
	if (ret != 0)
		return ret;
	const struct position *p = position_of(a, index);
	buf = malloc(p->bytes);
	if (!buf)
		return -ENOMEM;
	/* DATA/journal, else the archive (journal_archive_dir). */
	ret = record_read(a, p, buf);
	if (ret != 0)
		goto cleanup;
	/* What is served must be what was hashed. */
	*bytes = buf;
	*len = p->bytes;
	buf = NULL;
	ret = leaf_hash_record(*bytes, *len, hash) != 0 ||
			      memcmp(hash, leaf.hash, sizeof(hash)) != 0
		      ? -EBADMSG
		      : 0;
cleanup:
	free(buf);
	return ret;
}

int audit_index_of_timestamp(const struct audit *a, u64 timestamp, u64 *index)
{
	/* One size for the search and the answer: a leaf appended meanwhile
	 * must not make lo == the new size look like a match. */
	u64 size = audit_size(a);
	u64 lo = 0, hi = size;

	/* Records are in timestamp order: the first with timestamp >= t. */
	while (lo < hi) {
		u64 mid = lo + (hi - lo) / 2;
		if (position_of(a, mid)->timestamp < timestamp)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == size)
		return MERKLE_E_INDEX_RANGE;
	*index = lo;
	return 0;
}

int audit_inclusion_proof(const struct audit *a, u64 index, u64 size,
			  u8 proof[][MERKLE_HASH_BYTES], size_t *nproof)
{
	if (size > audit_size(a))
		return MERKLE_E_SIZE_RANGE;
	return tilestore_inclusion_proof(a->tiles, index, size, proof, nproof);
}

int audit_consistency_proof(const struct audit *a, u64 first, u64 second,
			    u8 proof[][MERKLE_HASH_BYTES], size_t *nproof)
{
	if (second > audit_size(a))
		return MERKLE_E_SIZE_RANGE;
	return tilestore_consistency_proof(a->tiles, first, second, proof,
					   nproof);
}

int audit_tile(const struct audit *a, unsigned level, u64 index, unsigned width,
	       u8 (*out)[MERKLE_HASH_BYTES])
{
	return tilestore_tile(a->tiles, level, index, width, audit_size(a),
			      out);
}

unsigned audit_tile_width(const struct audit *a, unsigned level, u64 index)
{
	return tilestore_tile_width(level, index, audit_size(a));
}

u64 audit_loaded(const struct audit *a)
{
	return a->loaded;
}

u64 audit_archived_total(const struct audit *a)
{
	return atomic_load(&a->archived);
}

const char *audit_archive_dir(const struct audit *a)
{
	return a->archive_dir[0] ? a->archive_dir : NULL;
}

int audit_journal_stats(const struct audit *a,
			struct journal_archive_stats *out)
{
	return journal_archive_stats(a->data_dir, audit_archive_dir(a), out);
}

void audit_tile_stats(const struct audit *a, struct tilestore_stats *out)
{
	tilestore_stats(a->tiles, out);
}
