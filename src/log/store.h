/*
 * store.h - the ledger's history on disk (issue 12): the "cold tier"
 * behind the in-memory ledger, on RocksDB, and the one owner of its
 * on-disk format (docs/store.md).
 *
 * The journal stays the write-ahead log.  After each applied group the
 * engine drains what changed into a struct store_batch and a writer
 * commits it with store_commit(), tagged with the journal seq it reaches;
 * RocksDB's own WAL is off and nothing is synced there: a crash loses the
 * memtables, and recovery starts from the newest store_checkpoint() and
 * replays the journal after the checkpoint's seq.  The store can always be
 * rebuilt from the journal.
 *
 * Threads: one writer (store_commit, store_checkpoint) at a time; every
 * read (store_get_transfers, the queries, the scans, store_meta,
 * store_stats) may run on any thread concurrently with it.  A read sees
 * whole commits: each scan and query reads one consistent view.
 *
 * Errors: 0 (or a count) or -errno: -EIO for an I/O error or corruption
 * (a stored value of unexpected length or contents is corruption: never a
 * crash), -ENOSPC for a full disk, -EPROTO for a store of an unknown
 * format version, -EINVAL for misuse, -ENOMEM, -ENOENT where said.  The
 * functions that take `const char **why` set it to a short static reason
 * on failure (never NULL then; the caller may pass NULL).
 */
#ifndef TPW_LOG_STORE_H
#define TPW_LOG_STORE_H

#include "core/ledger.h"
#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

/* The format (docs/store.md).  Keys are one kind byte and big-endian
 * integers, so they sort by id, and by account then timestamp. */
#define STORE_FORMAT_VERSION	   1u
#define STORE_KEY_META		   'M' /* "M" -> meta (STORE_META_BYTES) */
#define STORE_KEY_TRANSFER	   'T' /* T id16 -> transfer 128 + status 1, or "F" */
#define STORE_KEY_PENDING	   'P' /* P id16 -> transfer 128 (status PENDING) */
#define STORE_KEY_INDEX		   'I' /* I account16 ts8 -> transfer 128 [+ point 64] */
#define STORE_KEY_ACCOUNT	   'A' /* A id16 -> account 128 */
#define STORE_KEY_BLOB		   'B' /* B name -> bytes */
#define STORE_META_BYTES	   120u
#define STORE_TRANSFER_VALUE_BYTES 129u
#define STORE_FAILED_VALUE	   'F' /* the one byte of a failed id's value */
#define STORE_POINT_BYTES	   64u
#define STORE_INDEX_VALUE_BYTES	   128u /* + STORE_POINT_BYTES with a point */

/* Limits: ids per store_get_transfers (a group's ids and pending ids),
 * blob names and sizes; the defaults of struct store_options. */
#define STORE_GET_MAX		     (2u * BATCH_EVENTS_MAX)
#define STORE_BLOB_NAME_BYTES_MAX    64u
#define STORE_BLOB_BYTES_MAX	     (64u << 20)
#define STORE_CACHE_BYTES_DEFAULT    (256ull << 20)
#define STORE_MEMTABLE_BYTES_DEFAULT (64ull << 20)

struct store;
struct store_batch;

struct store_options {
	const char *dir;
	/* Block cache, with the index and filter blocks charged to it; 0 is
	 * STORE_CACHE_BYTES_DEFAULT. */
	u64 cache_bytes;
	/* One memtable; two may be held (one being flushed); 0 is
	 * STORE_MEMTABLE_BYTES_DEFAULT. */
	u64 memtable_bytes;
	/* Create an empty store (with this origin) when dir holds none. */
	bool create;
	/* Read only, beside a server that has it open (doctor): the view of
	 * what the server flushed last; nothing may be written. */
	bool read_only;
	u8 origin[32];
};

struct store_meta {
	u32 version;   /* STORE_FORMAT_VERSION */
	u8 origin[32]; /* given at create: the journal's identity */
	u64 seq;       /* the journal seq the store reaches (0: none yet) */
	u8 digest[32]; /* the state digest given with that seq */
	u64 last_timestamp; /* given with that seq */
	u64 transfers;	    /* transfers stored */
	u64 accounts;	    /* accounts stored */
	u64 failed;	    /* failed (burnt) ids stored */
};

/* Opens (or with o->create creates) the store in o->dir.  An existing
 * store must have a readable meta of a known format version (-EPROTO
 * otherwise); a directory without a store gives -ENOENT unless
 * o->create, and one whose files hold nothing (made, then lost before
 * anything was flushed) -ENODATA unless o->create.  *out is freed with
 * store_close(). */
int store_open(const struct store_options *o, struct store **out,
	       const char **why);
/* Flushes the memtables (so a reopen finds every commit) and frees.
 * NULL is ignored. */
void store_close(struct store *s);
/* Flushes the memtables and waits: every commit so far survives a crash
 * (the writer's thread; 0 or -errno). */
int store_flush(struct store *s, const char **why);

/* A batch: what one commit writes.  Building allocates (the batch keeps
 * its memory across store_batch_reset, so a reused batch allocates only
 * to grow past its largest size).  The builders return 0, -EINVAL for a
 * bad argument (the batch is unchanged) or -ENOMEM. */
struct store_batch *store_batch_new(void);
void store_batch_free(struct store_batch *b);
void store_batch_reset(struct store_batch *b);
/* A transfer the store does not hold yet, once, with its pending status
 * (PENDING_NONE unless it is a pending transfer) and the balance point
 * after it of the debit and of the credit account (NULL when that account
 * has no ACCOUNT_HISTORY flag; only the four balances are stored, the
 * point's timestamp is the transfer's). */
int store_batch_transfer(struct store_batch *b, const struct transfer *t,
			 u8 status, const struct account_balance *dr_point,
			 const struct account_balance *cr_point);
/* A stored (or batched) pending transfer changed status: its stored
 * status is rewritten and the pending set follows. */
int store_batch_status(struct store_batch *b, const struct transfer *t,
		       u8 status);
/* An account created or changed; the last one of a batch wins.  It counts
 * as created when its timestamp is above the store's last_timestamp. */
int store_batch_account(struct store_batch *b, const struct account *a);
/* An id burnt by a transient failure, once. */
int store_batch_failed(struct store_batch *b, u128 id);
/* Named state (name: 1..STORE_BLOB_NAME_BYTES_MAX bytes, a C string; n up
 * to STORE_BLOB_BYTES_MAX); a later put replaces. */
int store_batch_blob(struct store_batch *b, const char *name, const void *p,
		     size_t n);

/* Writes the batch and the new meta (seq, last_timestamp, digest, counts)
 * atomically, without sync.  seq must be above the stored seq,
 * last_timestamp not below the stored one, and every batched transfer's
 * timestamp in (stored last_timestamp, last_timestamp]: else -EINVAL and
 * nothing is written.  The batch is left as it was (reset it to reuse).
 * A failed write leaves the store as it was. */
int store_commit(struct store *s, struct store_batch *b, u64 seq,
		 u64 last_timestamp, const u8 digest[32], const char **why);

/* For each id: ABSENT, TRANSFER (with its status) or FAILED.  n up to
 * STORE_GET_MAX, all read at once from one view.  Returns 0. */
int store_get_transfers(struct store *s, const u128 *ids, u32 n,
			struct ledger_cold_item *out);
/* 0, or -ENOENT. */
int store_lookup_account(struct store *s, u128 id, struct account *out);

/* ledger_get_account_transfers / ledger_get_account_balances over the
 * stored transfers with timestamp < ts_below (0: no bound): the same
 * validity (-EINVAL), sides, user_data and code matching, inclusive
 * bounds, limit min(f->limit, out_max, QUERY_LIMIT_MAX) and order.
 * Balances come from the points stored with the transfers.  Return the
 * count. */
int store_account_transfers(struct store *s, const struct account_filter *f,
			    u64 ts_below, struct transfer *out, u32 out_max);
int store_account_balances(struct store *s, const struct account_filter *f,
			   u64 ts_below, struct account_balance *out,
			   u32 out_max);

/* Every stored account (id order), and every transfer whose status is
 * PENDING (id order), from one view.  fn returning non-zero stops the
 * scan and is returned. */
typedef int (*store_account_fn)(void *ctx, const struct account *a);
typedef int (*store_transfer_fn)(void *ctx, const struct transfer *t);
int store_scan_accounts(struct store *s, store_account_fn fn, void *ctx);
int store_scan_pending(struct store *s, store_transfer_fn fn, void *ctx);

/* A named blob: *out is allocated (free() it) and *n set; -ENOENT when
 * absent. */
int store_blob_get(struct store *s, const char *name, void **out, size_t *n);

/* The meta as of the last commit. */
void store_meta(struct store *s, struct store_meta *out);

/* Flushes the memtables (waiting) and makes a checkpoint in dir (which
 * must not exist): hard links of the SST files, opened later as a store
 * with the meta of the last commit before the call.  Call it from the
 * writer's thread for a checkpoint at exactly store_meta's seq.  On a
 * store opened read_only (beside a running server: `tpwallet backup`)
 * nothing is flushed: the checkpoint holds what the open found, the
 * meta store_meta gives; it may fail (-EIO) when the server's compaction
 * removes a file meanwhile, and a new open and a new try succeed. */
int store_checkpoint(struct store *s, const char *dir, const char **why);

struct store_stats {
	u64 disk_bytes;	    /* live SST files + WAL files (none: WAL off) */
	u64 memtable_bytes; /* every memtable, flushing ones included */
	u64 table_readers_bytes; /* open files' index/filter memory outside
				    the cache (RocksDB's estimate) */
	u64 cache_bytes;	 /* block cache usage (data, index, filters) */
	u64 cache_capacity_bytes;
	u64 cache_hits;	  /* blocks found in the cache by store reads */
	u64 cache_misses; /* blocks read from files by store reads */
	u64 pending_compaction_bytes; /* RocksDB's estimate */
	u64 l0_files;
	u64 seq; /* the meta's */
};
int store_stats(struct store *s, struct store_stats *out);

/* The stored values, decoded and checked (pure: the fuzzer's targets).
 * Each returns 0 or -EIO for a value of wrong length or contents;
 * store_meta_decode returns -EPROTO for a meta of another version. */
void store_meta_encode(const struct store_meta *m, u8 out[STORE_META_BYTES]);
int store_meta_decode(const void *v, size_t n, struct store_meta *out);
/* T id -> value: kind TRANSFER (the record's id must be id, its status
 * consistent with its PENDING flag) or FAILED. */
int store_transfer_value_decode(const void *v, size_t n, u128 id,
				struct ledger_cold_item *out);
/* I account ts -> value: the transfer must touch account and carry ts;
 * *has_point says whether a point followed (then *point is set, with ts). */
int store_index_value_decode(const void *v, size_t n, u128 account, u64 ts,
			     struct transfer *t, struct account_balance *point,
			     bool *has_point);
/* A id -> account, P id -> pending transfer: the record's id must be id. */
int store_account_value_decode(const void *v, size_t n, u128 id,
			       struct account *out);
int store_pending_value_decode(const void *v, size_t n, u128 id,
			       struct transfer *out);

#endif
