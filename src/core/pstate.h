/*
 * pstate.h - the client-version policy as state of the log: every
 * document ever activated (a version history) and every emergency
 * override, changed only by journal commands, in journal order, with
 * the record's timestamp (docs/client-policy.md).
 *
 * Pure and deterministic like the ledger.  Each version keeps the
 * canonical text of its document (policy_render) and who set it, when,
 * why and, for a rollback, which version it restored; the current one is
 * also kept parsed, for the gate.  Overrides keep their command as
 * journaled; their parsed form is derived from it, so a snapshot is the
 * commands, never a struct with pointers or padding.
 *
 * Readers (the gate, the routes) hold the engine's read lock while they
 * look; pointers returned stay valid until the lock is released.
 */
#ifndef TPW_CORE_PSTATE_H
#define TPW_CORE_PSTATE_H

#include "core/command.h"
#include "core/policy.h"
#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSTATE_VERSIONS_MAX  100000u
#define PSTATE_OVERRIDES_MAX 100000u
#define PSTATE_REASON_BYTES  208

/* The command kinds (PSTATE_CMD_*): core/command.h. */

/* PSTATE_CMD_SET: followed by text_bytes of document text, zero-padded
 * to a multiple of 16. */
struct pstate_set {
	u8 author[32];	 /* principal id (zero: the administrator) */
	u64 rollback_of; /* the version this restores, or 0 */
	u32 text_bytes;
	u32 reserved;
	char reason[PSTATE_REASON_BYTES]; /* NUL-padded */
};
_Static_assert(sizeof(struct pstate_set) == 256, "policy set");

struct pstate_override_cmd {
	u8 author[32];
	char platform[48];			/* NUL-padded */
	char range[SEMVER_RANGE_TEXT_MAX + 16]; /* NUL-padded */
	char reason[POLICY_REASON_MAX + 16];	/* NUL-padded */
	u32 mode;				/* enum policy_override_mode */
	u32 duration_s;
	u64 reserved;
};
_Static_assert(sizeof(struct pstate_override_cmd) % 16 == 0, "override");

/* PSTATE_CMD_OVERRIDE_2: an override as kind 17 opens it (base, read
 * the same way), and what its users are told: message_bytes (0: none,
 * at most POLICY_MESSAGE_BYTES_MAX) of the canonical JSON of a localised
 * message (policy_message_render) follow, zero-padded to a multiple of
 * 16, and expected_end_s is when the operator expects the cause fixed
 * (0: not said; informational, base.duration_s still ends it).  Kind 17
 * keeps its meaning for the records that hold it. */
struct pstate_override_2 {
	struct pstate_override_cmd base;
	int64_t expected_end_s;
	u32 message_bytes;
	u32 reserved; /* zero */
};
_Static_assert(sizeof(struct pstate_override_2) % 16 == 0, "override 2");
/* The latest expected_end_s a command may carry (9999-12-31T23:59:59Z). */
#define PSTATE_EXPECTED_END_MAX_S 253402300799

struct pstate_override_end {
	u8 author[32];
	u64 id;
	u64 reserved;
	char reason[PSTATE_REASON_BYTES];
};
_Static_assert(sizeof(struct pstate_override_end) % 16 == 0, "override end");

/* PSTATE_CMD_OVERRIDE_EXTEND: override id stays in force until the
 * record's time + duration_s (POLICY_OVERRIDE_MIN_S..MAX_S), which must
 * be later than its current end; an ended or expired one is
 * PSTATE_ENDED, an end not later PSTATE_INVALID. */
struct pstate_override_extend {
	u8 author[32];
	u64 id;
	u32 duration_s;
	u32 reserved; /* zero */
	char reason[PSTATE_REASON_BYTES];
};
_Static_assert(sizeof(struct pstate_override_extend) == 256, "override extend");

/* PSTATE_CMD_OVERRIDE_EXPIRED: override id reached its end, expires_at_s,
 * without being ended early; journaled by the server itself (no author),
 * once per override.  Informational: the override was inactive from
 * that second on whether or not this is applied.  Outcomes: PSTATE_OK
 * (recorded), PSTATE_UNCHANGED (already recorded), PSTATE_ENDED (it was
 * ended early), PSTATE_INVALID (expires_at_s is not its end, or its end
 * is after the record's time: it was extended meanwhile), and
 * PSTATE_NOT_FOUND; none of them changes the gate. */
struct pstate_override_expired {
	u64 id;
	int64_t expires_at_s;
};
_Static_assert(sizeof(struct pstate_override_expired) == 16,
	       "override expired");

enum pstate_outcome {
	PSTATE_OK = 0,
	PSTATE_INVALID = 1,   /* the document or override does not parse */
	PSTATE_UNCHANGED = 2, /* same text as the current version */
	PSTATE_NOT_FOUND = 3, /* rollback_of or override id unknown */
	PSTATE_ENDED = 4,     /* the override had already ended */
	PSTATE_FULL = 5,
	/* PSTATE_CMD_SET only, decided by core/command.c before pstate
	 * sees it: its author's authority had ended at the entry's time
	 * (admin_author_holds); nothing changed. */
	PSTATE_AUTHOR_ENDED = 6,
};

struct pstate;

struct pstate *pstate_new(void);
void pstate_free(struct pstate *s);

/* Would pstate_apply take this ext (not -EBADMSG)?  The engine asks
 * before journaling: a record that fails to apply stops replay. */
bool pstate_command_valid(u16 kind, const void *ext, u32 ext_bytes);

/* Apply a PSTATE_CMD_* command; *outcome gets an enum pstate_outcome.
 * Returns 0, -EBADMSG (malformed ext) or -ENOMEM. */
int pstate_apply(struct pstate *s, u16 kind, const void *ext, u32 ext_bytes,
		 u64 timestamp, u32 *outcome);

/* ---- reading ---------------------------------------------------------- */

struct pstate_version {
	u64 version; /* 1, 2, ... */
	u64 timestamp;
	u8 author[32];
	u64 rollback_of;
	char reason[PSTATE_REASON_BYTES + 1];
	const char *text; /* canonical document, NUL-terminated */
	size_t text_len;
};

/* The current policy and its version, or NULL (none set yet). */
const struct policy *pstate_current(const struct pstate *s, u64 *version);
u64 pstate_version_count(const struct pstate *s);
/* Version v (1-based); false when there is none. */
bool pstate_version_get(const struct pstate *s, u64 v,
			struct pstate_version *out);

/* Every override ever opened, in order (id = index + 1). */
struct pstate_override_info {
	u64 id;
	u64 timestamp;
	const struct pstate_override_cmd *cmd; /* as journaled (kind 20: its
						* base) */
	int64_t not_before_s, expires_at_s;    /* expires_at: ended early too */
	bool ended_early;
	/* Ended early: the end command's time, author and reason (zero and
	 * "" when not, or when the end came before a snapshot of the
	 * format before TPWPOL02). */
	u64 end_timestamp;
	u8 end_author[32];
	char end_reason[PSTATE_REASON_BYTES + 1];
	/* The time of its PSTATE_CMD_OVERRIDE_EXPIRED entry, or 0. */
	u64 expired_timestamp;
	/* Its extensions: how many, and the newest (a handle for
	 * pstate_extension_get; 0: none). */
	u32 extensions;
	u64 last_extension;
	u16 kind; /* PSTATE_CMD_OVERRIDE or PSTATE_CMD_OVERRIDE_2 */
	/* Kind 20's: the canonical message JSON (NULL: none), NUL-terminated,
	 * and the expected end (POLICY_TIME_NONE: not said).  The message is
	 * never changed nor moved once applied: unlike the rest, it stays
	 * valid after the read lock, as long as the state. */
	const char *message;
	size_t message_len;
	int64_t expected_end_s;
};
u64 pstate_override_count(const struct pstate *s);
void pstate_override_at(const struct pstate *s, u64 i,
			struct pstate_override_info *out);

/* One applied extension of an override. */
struct pstate_extension {
	u64 timestamp;
	u8 author[32];
	u32 duration_s;
	int64_t expires_at_s; /* the end it set */
	char reason[PSTATE_REASON_BYTES + 1];
	u64 prev; /* the handle of the one before, or 0 */
};
/* The extension a handle names (pstate_override_info.last_extension,
 * then each one's prev: newest first); false for 0 or an unknown one. */
bool pstate_extension_get(const struct pstate *s, u64 handle,
			  struct pstate_extension *out);

/* The overrides that reached their end by now_s without being ended
 * early and have no PSTATE_CMD_OVERRIDE_EXPIRED entry yet: up to max of
 * their ids into ids, oldest first; returns how many.  What the server
 * journals an expiry entry for. */
size_t pstate_expiry_due(const struct pstate *s, int64_t now_s, u64 *ids,
			 size_t max);
/* The earliest end among the overrides neither ended early nor with an
 * expiry entry (expired or not), or INT64_MAX: when to look again. */
int64_t pstate_expiry_next(const struct pstate *s);
/* The overrides not yet expired as of the last command applied (at most
 * POLICY_OVERRIDES_MAX, contiguous, each with its id): what the gate
 * passes to policy_evaluate, which keeps those active at its now. */
const struct policy_override *pstate_overrides_live(const struct pstate *s,
						    size_t *n);

/* ---- digest and snapshot ----------------------------------------------- */

void pstate_digest(const struct pstate *s, u8 out[32]);
u64 pstate_snapshot_bytes(const struct pstate *s);
int pstate_snapshot_write(const struct pstate *s,
			  int (*sink)(void *ctx, const void *buf, size_t len),
			  void *ctx);
struct pstate *pstate_snapshot_read(const u8 *buf, size_t len);

#endif
