/*
 * formats.h - the on-disk formats this release reads and writes, and an
 * inventory of what a data directory holds (issue 21).
 *
 * Every format of DATA carries a version: each journal record (its
 * header's version and type, and for a command its kind), the snapshots,
 * the store, DATA/audit/state, the key files, the card vault's key
 * store.  FORMATS lists, per format, the values this release reads and
 * the one it writes; `tpwallet version --json` prints that table, and
 * `tpwallet upgrade check` compares a directory's inventory with the
 * table of this binary or another one (docs/operations.md, "Upgrades and
 * rollbacks").  Whether a value nobody reads stops a start ("blocks") or
 * only costs time (an old snapshot is skipped, the journal replays; the
 * audit state is rebuilt) is said per format here too.
 *
 * The inventory reads every journal record's header (the archive
 * directory's too when given), each snapshot's and key file's header,
 * DATA/audit/state, the vault key store's header and the store's
 * version (a read-only open): never a payload but a command's kind.
 */
#ifndef TPW_LOG_FORMATS_H
#define TPW_LOG_FORMATS_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum format_id {
	FORMAT_JOURNAL_RECORD,	 /* a journal record's header version */
	FORMAT_JOURNAL_TYPE,	 /* a journal record's type */
	FORMAT_COMMAND_KIND,	 /* a command record's kind */
	FORMAT_ADMIN_REQUEST_OP, /* a dual-control request's operation */
	FORMAT_SNAPSHOT,	 /* DATA/snapshots/<seq>.snap */
	FORMAT_STORE,		 /* DATA/store (RocksDB), its meta version */
	FORMAT_AUDIT_STATE,	 /* DATA/audit/state */
	FORMAT_KEY_FILE,	 /* DATA/keys/<kid>.key */
	FORMAT_VAULT_KEYSTORE,	 /* DATA/vault/keystore */
	FORMAT_COUNT
};

/* The card vault's key store (engine/vaultkeys.c writes it; its format
 * is named here, where every layer that reads DATA can see it). */
#define VAULT_KEYSTORE_PATH    "vault/keystore"
#define VAULT_KEYSTORE_MAGIC   "TPWVKEYS"
#define VAULT_KEYSTORE_VERSION 1u

/* Values are u16 (a record's version, type and kind are). */
#define FORMAT_VALUES 65536u

struct format_info {
	const char *name;  /* the key in JSON, e.g. "journal_record" */
	const char *what;  /* for people, e.g. "journal record versions" */
	unsigned writes;   /* the version written; 0: a set, not a version */
	bool blocks;	   /* a value not read stops a start */
	const char *else_; /* when it does not block: what happens instead */
};

extern const struct format_info FORMATS[FORMAT_COUNT];

/* Does this release read value v of format f? */
bool format_reads(enum format_id f, unsigned v);

/* {"journal_record": {"reads": [1, 2], "writes": 2}, ...}: what this
 * release reads and writes (tpwallet version --json).  NULL: out of
 * memory. */
json_t *formats_json(void);

/* Which values of each format a directory holds, and how often. */
struct format_inventory {
	u8 seen[FORMAT_COUNT][FORMAT_VALUES / 8];
	u64 count[FORMAT_COUNT];
	u64 records;	   /* journal records read */
	u64 last_seq;	   /* the last one's seq */
	u64 tail_bytes;	   /* after the last whole record of the last
			    * segment: a torn write, cut at the next start */
	bool store_unread; /* a store this release cannot open (-EPROTO) */
	char store_why[160];
};

static inline bool format_seen(const struct format_inventory *inv,
			       enum format_id f, unsigned v)
{
	return inv->seen[f][v / 8] & (1u << (v % 8));
}

/* Read DATA (and archive_dir, NULL for none) into *inv (zeroed first).
 * progress, when not NULL, is called about once a second with the
 * journal bytes read and their total.  Returns 0, or -errno with a
 * message in err (a directory that cannot be read; a segment with a bad
 * record before its end). */
int formats_inventory(const char *data_dir, const char *archive_dir,
		      struct format_inventory *inv,
		      void (*progress)(void *ctx, u64 done, u64 total),
		      void *ctx, char *err, size_t err_len);

#endif
