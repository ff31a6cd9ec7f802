/*
 * admin.h - named administrators, the bootstrap token's retirement and
 * dual control (docs/authz.md, "Named administrators").
 *
 * Part of the authorization state (core/auth owns one and writes it into
 * its snapshot and digest): what roles registered principals hold, whether
 * the bootstrap administrator's credentials are retired, and the requests
 * for an operation that a second administrator must approve.  Changed only
 * by the journal commands of kinds 30..33 (core/command.h), applied in
 * journal order with the record's timestamp: whether an approval comes
 * within its window, by another administrator, on an unchanged target is
 * decided here, so a replay decides the same.
 *
 * An approved (or break-glass) policy activation is applied to the
 * policy state by the same record that approves it: the request holds
 * the PSTATE_CMD_SET ext it will apply.
 *
 * Pure: no I/O, no clock.
 */
#ifndef TPW_CORE_ADMIN_H
#define TPW_CORE_ADMIN_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

struct auth;
struct pstate;

/* Roles: each a fixed set of operations (api/authz.c, docs/authz.md). */
enum admin_role {
	ADMIN_ROLE_NONE = 0, /* taken away (or never given) */
	ADMIN_ROLE_OPERATOR = 1,
	ADMIN_ROLE_SECURITY_OFFICER = 2,
	ADMIN_ROLE_SUPPORT = 3,
	ADMIN_ROLE_AUDITOR = 4,
};
#define ADMIN_ROLE_MAX 4
/* "operator", ... ("none" for ADMIN_ROLE_NONE); NULL for no role. */
const char *admin_role_name(u32 role);
/* The role a name says, or -1. */
int admin_role_parse(const char *name);

/* At most this many principals hold a role, requests are kept: when the
 * table is full, the oldest request that is no longer pending is
 * dropped to make room (ids go on growing; a dropped one is gone). */
#define ADMIN_ROLES_MAX	   256u
#define ADMIN_REQUESTS_MAX 4096u
/* The PSTATE_CMD_SET ext a request holds: at most 64 KiB (a client
 * policy of every platform with its rules is a few KiB), so that the 16
 * pending requests hold at most 1 MiB in the state and in each snapshot,
 * not 16 x 256 KiB. */
#define ADMIN_PAYLOAD_BYTES_MAX (64u * 1024u)
/* Pending requests holding a payload at once, in all and of one
 * requester (so that one administrator cannot take every slot).  A
 * pending request whose window passed (by the journal's time) is expired
 * by the next request, which so frees its slot. */
#define ADMIN_PENDING_MAX		16u
#define ADMIN_PENDING_PER_REQUESTER_MAX 4u
#define ADMIN_REASON_BYTES		128
/* dual_control_window_s: the default and the bounds. */
#define ADMIN_WINDOW_DEFAULT_S 900u
#define ADMIN_WINDOW_MIN_S     60u
#define ADMIN_WINDOW_MAX_S     86400u

/* ADMIN_CMD_ROLE (kind 30): give a registered principal a role, or take
 * it away (role ADMIN_ROLE_NONE).  author: who did (zero: the bootstrap
 * administrator).  Once the bootstrap is retired, the last active
 * security officer's role is not changed (ADMIN_NO_OFFICER); a principal
 * that owns accounts is given no role (ADMIN_OWNS_ACCOUNTS). */
struct admin_role_cmd {
	u8 id[32];
	u8 author[32];
	u32 role;
	u32 reserved[3];
};
_Static_assert(sizeof(struct admin_role_cmd) == 80, "role");

/* ADMIN_CMD_RETIRE (kind 31): the bootstrap credentials are refused from
 * now on; refused while no administrator holds the security_officer
 * role (nobody could grant roles any more). */
struct admin_retire_cmd {
	u8 author[32];
};
_Static_assert(sizeof(struct admin_retire_cmd) == 32, "retire");

/* What a request is for. */
enum admin_op {
	ADMIN_OP_POLICY_SET = 1, /* payload: a PSTATE_CMD_SET ext */
	/* payload: a struct admin_role_cmd giving a role (not "none"),
	 * whose author is the requester; target: the principal's role when
	 * asked.  A named administrator gives no role alone (docs/authz.md,
	 * "Dual control"): otherwise one security officer could give a
	 * second key of its own a role and approve its own requests. */
	ADMIN_OP_ROLE = 2,
};

/* ADMIN_CMD_REQUEST (kind 32): an administrator asks for an operation;
 * payload_bytes of its payload follow (a multiple of 16).  target: what
 * the operation expects unchanged (the policy's version count; for a
 * role, the principal's role). */
struct admin_request_cmd {
	u8 author[32];
	u64 target;
	u32 op;	      /* enum admin_op */
	u32 window_s; /* ADMIN_WINDOW_MIN_S..ADMIN_WINDOW_MAX_S */
	u32 payload_bytes;
	u32 reserved[3];
};
_Static_assert(sizeof(struct admin_request_cmd) == 64, "request");

enum admin_decision {
	ADMIN_APPROVE = 1,
	ADMIN_REJECT = 2,
	ADMIN_BREAK_GLASS = 3, /* the requester alone; reason required */
};

/* ADMIN_CMD_DECIDE (kind 33): a decision on request `request`. */
struct admin_decide_cmd {
	u8 author[32];	  /* the deciding administrator */
	u8 requester[32]; /* the request's author (must match) */
	u64 request;	  /* its id, 1.. */
	u32 decision;	  /* enum admin_decision */
	u32 reserved;
	char reason[ADMIN_REASON_BYTES]; /* NUL-padded */
};
_Static_assert(sizeof(struct admin_decide_cmd) == 208, "decide");

/* Outcomes (results[0]); 0 is AUTH_OK and 1..4 are auth_outcome's. */
enum admin_outcome {
	ADMIN_OK = 0,
	ADMIN_EXISTS = 1,	   /* already so (role, retirement) */
	ADMIN_FULL = 4,		   /* a table is at its limit */
	ADMIN_UNKNOWN = 10,	   /* no such principal, or request */
	ADMIN_NOT_ADMIN = 11,	   /* author (or requester) holds no role,
				    * or its key is revoked */
	ADMIN_NO_OFFICER = 12,	   /* retirement: no security officer; or,
				    * once retired, a role change that
				    * would leave none */
	ADMIN_SELF = 13,	   /* approval by the requester */
	ADMIN_WINDOW_PASSED = 14,  /* after the request's window */
	ADMIN_TARGET_CHANGED = 15, /* the target moved since the request */
	ADMIN_NOT_PENDING = 16,	   /* decided already (or expired) */
	ADMIN_NOT_REQUESTER = 17,  /* break-glass by another than the
				    * requester */
	ADMIN_REFUSED = 18,	   /* the operation itself was refused */
	ADMIN_OWNS_ACCOUNTS = 19,  /* a role for a principal that owns
				    * accounts (its own links would move
				    * money beside the role) */
	ADMIN_AUTHOR_ENDED = 20,   /* a role change or retirement whose
				    * author's authority had ended at the
				    * entry's time (admin_author_holds) */
	ADMIN_TOO_LARGE = 21,	   /* a request's document above
				    * ADMIN_PAYLOAD_BYTES_MAX */
	ADMIN_GRANTEE = 22,	   /* a role's approval by the principal it
				    * is for */
};

enum admin_status {
	ADMIN_PENDING = 0,
	ADMIN_APPROVED = 1,
	ADMIN_REJECTED = 2,
	ADMIN_BROKEN_GLASS = 3,
	ADMIN_EXPIRED = 4, /* the window passed: found by an approval after
			    * it, or by a later request */
	ADMIN_STALE = 5,   /* an approval found the target changed */
};
const char *admin_status_name(u32 status);

struct admin;

struct admin *admin_new(void);
void admin_free(struct admin *d);
bool admin_empty(const struct admin *d);

/* Would admin_apply take this ext? */
bool admin_command_valid(u16 kind, const void *ext, u32 ext_bytes);
/*
 * Apply kinds 30..33 at timestamp (ns).  a: the principals and
 * revocations it asks about; ps: the policy state an approved request
 * changes.  *outcome: an admin_outcome (ADMIN_REFUSED: the approval
 * held but the policy state refused the operation; the request is then
 * rejected).  Returns 0, -EBADMSG or -ENOMEM.
 */
int admin_apply(struct admin *d, const struct auth *a, struct pstate *ps,
		u16 kind, const void *ext, u32 ext_bytes, u64 timestamp,
		u32 *outcome);

/* ---- reading ---------------------------------------------------------- */

/* The role of a principal (ADMIN_ROLE_NONE: none). */
u32 admin_role_of(const struct admin *d, const u8 id[32]);
/* Is it an administrator now: a role, and its key not revoked? */
bool admin_is_active(const struct admin *d, const struct auth *a,
		     const u8 id[32]);
/*
 * Does the authority of a change's author (zero: the bootstrap
 * credential) still hold at the entry's time, for an operation of role
 * `role`?  Before the retirement, always (the bootstrap credential holds
 * every right, also through a chain it rooted, whose author is its last
 * delegate, which may hold a role); after it, only an active
 * administrator with exactly that role.  Checked when the change is
 * applied, so a request checked when its headers came and journaled
 * after a retirement, or after its author's role was taken away or its
 * key revoked (after the retirement), changes nothing.
 */
bool admin_author_holds(const struct admin *d, const struct auth *a,
			const u8 author[32], u32 role);
/* When the bootstrap credentials were retired (ns), 0: not retired. */
u64 admin_retired_at(const struct admin *d);

struct admin_role_info {
	u8 id[32];
	u32 role;
	u64 timestamp; /* when given */
	u8 author[32];
};
u32 admin_role_count(const struct admin *d);
void admin_role_at(const struct admin *d, u32 i, struct admin_role_info *out);

struct admin_request_info {
	u64 id;
	u64 timestamp; /* requested at (ns) */
	u8 author[32];
	u32 op, window_s, status;
	u64 target;
	u64 decided_at; /* 0: not decided */
	u8 decider[32];
	char reason[ADMIN_REASON_BYTES + 1]; /* a break-glass's */
	/* The payload while pending (pointer into the state, valid under
	 * the read lock), NULL once decided. */
	const u8 *payload;
	u32 payload_bytes;
};
/* Requests held in the table (at most ADMIN_REQUESTS_MAX), oldest
 * first: admin_request_at(0..count-1). */
u32 admin_request_count(const struct admin *d);
void admin_request_at(const struct admin *d, u32 i,
		      struct admin_request_info *out);
/* The last id given (0: none yet); ids are never given twice. */
u64 admin_request_last_id(const struct admin *d);
/* How many requests were carried out by break-glass (dropped ones too). */
u64 admin_break_glass_count(const struct admin *d);
/* Request id; false when never made (> admin_request_last_id) or
 * dropped. */
bool admin_request_get(const struct admin *d, u64 id,
		       struct admin_request_info *out);

/* ---- snapshot (a part of auth's) -------------------------------------- */

u64 admin_snapshot_bytes(const struct admin *d);
int admin_snapshot_write(const struct admin *d,
			 int (*sink)(void *ctx, const void *buf, size_t len),
			 void *ctx);
/* Reads exactly len bytes; NULL when not valid (an empty part too: it is
 * never written) or out of memory. */
struct admin *admin_snapshot_read(const u8 *buf, size_t len);

#endif
