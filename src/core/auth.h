/*
 * auth.h - the authorization state beside the ledger (docs/authz.md).
 *
 * Pure and deterministic like the ledger: it changes only by applying
 * journal commands, in journal order, with the record's timestamp; no
 * clock, no I/O.  It holds what the server must remember to check
 * mandates, and nothing secret:
 *
 *   principals   registered public keys (id = RFC 7638 thumbprint, raw)
 *   owners       account id -> owner principal (absent: the administrator)
 *   revocations  (issuer, SHA-256 of a link's jti), or every link of an
 *                issuer
 *   counters     per link (SHA-256 of its compact text): the amount and
 *                number of transfers made under it, for total_cap / uses
 *   keys         the server's signing-key events (public data only)
 *
 * Every collection is an append-only array (insertion order is journal
 * order, so the snapshot bytes and the digest are the same on every
 * replica) with an open-addressing index.
 *
 * Journal command payloads are fixed little structs (below), carried in
 * JOURNAL_COMMAND records (src/log/journal.h) after a command_header;
 * core/command.h numbers the kinds and says which function applies each.
 */
#ifndef TPW_CORE_AUTH_H
#define TPW_CORE_AUTH_H

#include "core/command.h"
#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_ID_BYTES	     32
#define AUTH_NAME_BYTES	     64
#define AUTH_JTI_BYTES	     64
#define AUTH_KID_BYTES	     48
#define AUTH_GUARD_LINKS_MAX 8
#define AUTH_PRINCIPALS_MAX  (1u << 20)
#define AUTH_REVOCATIONS_MAX (1u << 20)
/* Statements from keys other than the administrator's count against
 * the registered principal they speak for (struct auth_revoke's payer:
 * the principal itself, or the root of the delegate's chain; a chain
 * rooted at the administrator counts as one payer, the administrator's
 * delegates), in two buckets: the principal's own statements and its
 * delegates', so that delegates that used up theirs never stop the
 * principal from revoking them.  At most the record's quota each (the
 * server's revocations_per_principal setting when it was journaled,
 * AUTH_REVOCATIONS_PER_PRINCIPAL by default), and never the last
 * AUTH_REVOCATIONS_RESERVE entries, which stay the administrator's own.
 * Keys minted below a mandate all pay for their root, so filling the
 * rest of the table at the default takes (2^20 - 2^16) / 2^15 = 30
 * principals at both quotas, and only the administrator registers
 * principals. */
#define AUTH_REVOCATIONS_PER_PRINCIPAL (1u << 14)
/* The quota of records journaled before it was set per principal. */
#define AUTH_REVOCATIONS_PER_KEY_V1 (1u << 16)
#define AUTH_REVOCATIONS_RESERVE    (1u << 16)
#define AUTH_COUNTERS_MAX	    (1u << 22)
#define AUTH_KEY_EVENTS_MAX	    (1u << 16)

/* The command kinds (AUTH_CMD_*) and command_header: core/command.h. */

struct auth_owner {
	u8 owner[AUTH_ID_BYTES]; /* all zero: the administrator */
};

#define AUTH_GUARD_TOTAL_CAP (1u << 0)
#define AUTH_GUARD_USES	     (1u << 1)

/* One link of the mandate a guarded batch was made under. */
struct auth_guard {
	u8 link[32];	 /* SHA-256 of the link's compact text */
	u8 iss[32];	 /* issuer thumbprint */
	u8 jti_hash[32]; /* SHA-256 of the link's jti */
	u128 total_cap;
	u64 uses_max;
	u32 flags; /* AUTH_GUARD_* */
	u32 reserved;
};
_Static_assert(sizeof(struct auth_guard) == 128, "guard entry");

struct auth_principal {
	u8 id[AUTH_ID_BYTES];
	u8 pub[32];
	char name[AUTH_NAME_BYTES]; /* NUL-padded; may fill all 64 bytes */
};
_Static_assert(sizeof(struct auth_principal) == 128, "principal");

/* An organisation principal (AUTH_CMD_PRINCIPAL_X509, docs/authz.md
 * "Organisation principals"): its id is the SHA-256 of its certificate's
 * SubjectPublicKeyInfo, and its pub holds no key but this (no Ed25519
 * principal's key starts with the magic: the route refuses one). */
#define AUTH_X509_MAGIC "TPWX509"
struct auth_x509_pub {
	char magic[8];	    /* AUTH_X509_MAGIC, NUL-padded */
	int64_t not_before; /* seconds; 0: not known */
	int64_t not_after;  /* seconds; 0: not known */
	u8 reserved[8];	    /* zero */
};
_Static_assert(sizeof(struct auth_x509_pub) == 32, "x509 pub");

/* Is pub an organisation's (then its dates in *x when x is not NULL)? */
bool auth_principal_x509(const u8 pub[32], struct auth_x509_pub *x);

#define AUTH_REVOKE_ALL (1u << 0)
/* A statement of a key other than the administrator's: it counts against
 * its payer's quota and never takes the reserve. */
#define AUTH_REVOKE_QUOTA (1u << 1)
/* With AUTH_REVOKE_QUOTA: signed by a delegate of the payer, not by the
 * payer itself (the delegates' bucket). */
#define AUTH_REVOKE_DELEGATE (1u << 2)

struct auth_revoke {
	u8 iss[AUTH_ID_BYTES];
	u8 jti_hash[32];	  /* zero with AUTH_REVOKE_ALL */
	char jti[AUTH_JTI_BYTES]; /* NUL-padded */
	u32 flags;
	u32 quota; /* with AUTH_REVOKE_QUOTA: the payer's bucket's limit */
	u32 reserved[2];
	/* With AUTH_REVOKE_QUOTA: the principal whose quota it uses. */
	u8 payer[AUTH_ID_BYTES];
};
_Static_assert(sizeof(struct auth_revoke) == 176, "revoke");
/* Records journaled before the payer existed: the first 144 bytes; their
 * payer is their issuer (the quota was per key then). */
#define AUTH_REVOKE_V1_BYTES 144u

enum auth_key_kind {
	AUTH_KEY_CREATED = 1, /* a new current key */
	AUTH_KEY_RETIRED = 2, /* verifies no more after not_after */
};

/* AUTH_KEY_CREATED: a key that signs from not_before; the keys before it
 * keep verifying until not_after (0: not recorded). */
struct auth_key_event {
	char kid[AUTH_KID_BYTES]; /* NUL-padded */
	u8 pub[32];
	int64_t not_before; /* seconds */
	int64_t not_after;  /* seconds */
	u32 kind;
	u32 reserved[3];
};
_Static_assert(sizeof(struct auth_key_event) == 112, "key event");

/* Outcomes of the commands without events (results[0]). */
enum auth_outcome {
	AUTH_OK = 0,
	AUTH_EXISTS = 1,     /* principal already registered with this key */
	AUTH_NAME_TAKEN = 2, /* another key holds the name */
	AUTH_ALREADY_REVOKED = 3,
	AUTH_FULL = 4, /* a collection is at its limit */
};

struct auth;

struct auth *auth_new(void);
void auth_free(struct auth *a);

/* The revocation record, counters, principal, owner records as read by
 * the API and the revocation list. */
struct auth_revocation {
	u8 iss[AUTH_ID_BYTES];
	u8 jti_hash[32];
	char jti[AUTH_JTI_BYTES + 1];
	bool all;
	u64 timestamp; /* ns, the journal record's */
};

struct auth_principal_info {
	u8 id[AUTH_ID_BYTES];
	u8 pub[32];
	char name[AUTH_NAME_BYTES + 1];
	u64 timestamp;
};

/* ---- applying (the engine, in journal order) ------------------------ */

/* Would auth_apply take this ext (not -EBADMSG)?  The engine asks
 * before journaling: a record that fails to apply stops replay. */
bool auth_command_valid(u16 kind, const void *ext, u32 ext_bytes);

/* Apply a command without events; *outcome gets an auth_outcome.
 * Returns 0, or -EBADMSG for a malformed ext (size, kind). */
int auth_apply(struct auth *a, u16 kind, const void *ext, u32 ext_bytes,
	       u64 timestamp, u32 *outcome);

/* Owners of accounts the ledger has just created (results[i] == ok). */
void auth_set_owners(struct auth *a, const struct auth_owner *o,
		     const struct account *accounts, const u32 *results,
		     u32 count);

/* Before a guarded batch: 0 if it may run, else the transfer result code
 * that refuses every event of it (revoked, total cap, uses), checked on
 * the whole batch's amounts (post/void events do not count, nor events i
 * with skip[i] set; skip may be NULL). */
u32 auth_guard_check(const struct auth *a, const struct auth_guard *g,
		     u32 n_guard, const struct transfer *t, u32 count,
		     const u8 *skip);
/* After it: counts the transfers that were created (results[i] == ok). */
int auth_guard_commit(struct auth *a, const struct auth_guard *g, u32 n_guard,
		      const struct transfer *t, const u32 *results, u32 count);

/* ---- reading (under the engine's read lock) ------------------------- */

bool auth_principal_get(const struct auth *a, const u8 id[AUTH_ID_BYTES],
			struct auth_principal_info *out);
u32 auth_principal_count(const struct auth *a);
void auth_principal_at(const struct auth *a, u32 i,
		       struct auth_principal_info *out);

/* The owner of an account: false when the administrator owns it (or it
 * was created without an owner). */
bool auth_owner_get(const struct auth *a, u128 account,
		    u8 owner[AUTH_ID_BYTES]);

/* Does the principal own at least one account?  (A scan of the owner
 * records: for the rare role grant, not for a request's path.) */
bool auth_owns_any(const struct auth *a, const u8 id[AUTH_ID_BYTES]);

bool auth_revoked(const struct auth *a, const u8 iss[AUTH_ID_BYTES],
		  const u8 jti_hash[32]);
u32 auth_revocation_count(const struct auth *a);
/* How many quota-counted revocations a payer (a principal) has made: by
 * its own key, or by its delegates. */
u32 auth_revocations_by(const struct auth *a, const u8 payer[AUTH_ID_BYTES],
			bool delegates);
void auth_revocation_at(const struct auth *a, u32 i,
			struct auth_revocation *out);

/* Spent amount and uses of a link (zeros when unseen). */
void auth_counter_get(const struct auth *a, const u8 link[32], u128 *spent,
		      u64 *uses);

u32 auth_key_event_count(const struct auth *a);
void auth_key_event_at(const struct auth *a, u32 i, struct auth_key_event *out,
		       u64 *timestamp);

/* Named administrators and dual control (core/admin.h), a part of this
 * state: its snapshot and digest include them. */
struct admin;
const struct admin *auth_admin(const struct auth *a);
struct admin *auth_admin_rw(struct auth *a);

/* ---- digest and snapshot --------------------------------------------- */

/* BLAKE2b-256 of the whole state (the snapshot bytes). */
void auth_digest(const struct auth *a, u8 out[32]);
/* Bytes auth_snapshot_write will produce. */
u64 auth_snapshot_bytes(const struct auth *a);
int auth_snapshot_write(const struct auth *a,
			int (*sink)(void *ctx, const void *buf, size_t len),
			void *ctx);
/* NULL when the bytes are not a valid snapshot (or out of memory). */
struct auth *auth_snapshot_read(const u8 *buf, size_t len);

#endif
