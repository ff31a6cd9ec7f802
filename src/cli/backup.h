/*
 * backup.h - what `tpwallet backup`, `restore` and `drill` share
 * (cmd_backup.c): the operator key, the sealed files of a backup
 * location, reading and checking a location's manifests and their chain,
 * and unpacking one backup into a directory laid out as a data
 * directory, every file checked on the way (docs/operations.md
 * "Backups").
 */
#ifndef TPW_CLI_BACKUP_H
#define TPW_CLI_BACKUP_H

#include "core/types.h"
#include "log/bkmanifest.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A backup directory of a location, with its manifest when it has one. */
struct backup_entry {
	char id[BKMANIFEST_ID_BYTES_MAX];
	bool complete;	 /* has a manifest that decodes */
	const char *why; /* when not complete */
	u8 manifest_sha256[32];
	char *manifest_text;
	size_t manifest_len;
	struct bkmanifest m;
};

struct backup_location {
	struct backup_entry *e; /* complete ones sorted by last_seq, then
				   created_ns; the incomplete ones last */
	size_t n, ncomplete;
};

/* The operator key: 32 bytes (raw, or 43 base64url characters and a
 * newline), in a regular file of the running user with mode 0600 or
 * stricter.  0, or prints why on stderr and returns EXIT_USAGE. */
int backup_key_load(const char *cmd, const char *path, u8 key[32]);
/* The key's public id (names it in manifests and messages). */
void backup_key_id(const u8 key[32], u8 out[8]);

/* Every entry of LOC (which must exist).  0, or -errno. */
int backup_location_read(const char *loc, struct backup_location *out);
void backup_location_free(struct backup_location *l);

/* The manifests' MACs (with key) and the chain: each manifest's previous
 * is the one before's hash, the first has none, one origin throughout.
 * Faults are printed ("FAULT: ...") on stdout; returns how many. */
unsigned backup_check_chain(const struct backup_location *l, const u8 *key);

/* Unpack backup e of loc into dir (which must exist and be empty): every
 * file's size, SHA-256 and authentication checked and decrypted; then
 * every journal record decoded up to last_seq; the Merkle tree
 * recomputed and compared with the signed checkpoint (`audit check`);
 * the store checkpoint's origin and seq.  Faults are printed naming the
 * file or segment; returns how many (0: dir holds a good backup). */
unsigned backup_unpack(const char *loc, const struct backup_entry *e,
		       const u8 *key, const char *dir, bool quiet);

/* A restore (cmd_restore.c): loc and key as above, data the directory to
 * make (absent or empty), the target (0, 0: the newest point). */
struct restore_request {
	const char *loc, *data;
	const u8 *key;
	u64 to_index, to_time_ns;
	bool quiet; /* no progress on stderr */
};

struct restore_result {
	char backup_id[BKMANIFEST_ID_BYTES_MAX];
	u64 seq;	  /* the entry restored to */
	u64 last_time_ns; /* its time */
	u8 digest[32];	  /* the state digest there */
	u32 base;
	u64 base_seq, replayed, duration_ms;
	bool store;    /* serve it with store = 1 */
	bool made_kek; /* DATA.kek was made */
};

/* 0 restored, else the command's exit status (the reason printed). */
int backup_restore(const struct restore_request *rq,
		   struct restore_result *out);
void backup_restore_print(const char *data, const struct restore_result *r,
			  bool json);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of ns since the epoch. */
void backup_time_text(u64 ns, char out[32]);

/* Print o as one compact JSON line on stdout and release it (NULL:
 * nothing). */
void backup_print_json(json_t *o);

/* snprintf for paths and names: a result that does not fit is cut and
 * reported (-ENAMETOOLONG), else 0. */
int pathf(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
