/*
 * command.h - the one registry of journal commands.
 *
 * A JOURNAL_COMMAND record (src/log/journal.h, type 4) carries a payload
 * of a 16-byte command_header, its ext (a fixed struct, a multiple of 16
 * bytes) and then `count` events of 128 bytes.  Every kind of command is
 * one row of COMMAND_KINDS below: its number (stable: it is on disk), its
 * display name, what events it carries, the sizes its ext may have, the
 * validator that inspects the ext's contents before it is journaled, and
 * the applier that changes the state.  The enum of kinds, the table and
 * the one decoder (command_decode) are all derived from it; the engine
 * (through core/state), `tpwallet doctor`, `tpwallet audit` and the
 * server's audit routes (through log/leaf) decode commands only here.
 *
 * Adding a journal command, worked example: a command that renames a
 * principal, with no events and a 96-byte ext.
 *
 *   1. The ext's struct, beside the state it changes (core/auth.h):
 *
 *        struct auth_rename {
 *                u8 id[AUTH_ID_BYTES];
 *                char name[AUTH_NAME_BYTES];   // NUL-padded
 *        };
 *        _Static_assert(sizeof(struct auth_rename) == 96, "rename");
 *
 *   2. One row here, with the next free number (never reuse one: old
 *      journals keep their records):
 *
 *        X(AUTH_CMD_RENAME, 7, "rename", COMMAND_EVENTS_NONE, COMMAND_AUTH,
 *          sizeof(struct auth_rename), sizeof(struct auth_rename), 16,
 *          auth_command_valid, apply_auth)
 *
 *   3. The handler: the validator and applier named in the row.  Here
 *      auth_command_valid and auth_apply (reached by apply_auth in
 *      command.c) get a `case AUTH_CMD_RENAME`; a command that changes
 *      the ledger gets a static applier in command.c instead (see
 *      apply_accounts_owned).  The applier must be deterministic: only
 *      the record's timestamp and bytes, never a clock.  State it adds
 *      goes into its module's snapshot and digest (a new snapshot
 *      version if the bytes change, reading the old one too).
 *
 *   4. The API builds the record with api_command(rq, AUTH_CMD_RENAME,
 *      sizeof(struct auth_rename), NULL, 0) and engine_submit refuses it
 *      unless command_valid() accepts it; replay, doctor and audit need
 *      nothing more.  A unit test in tests/unit/test_core_*.c applies it.
 *
 * Pure: no I/O, no clock, no allocation.
 */
#ifndef TPW_CORE_COMMAND_H
#define TPW_CORE_COMMAND_H

#include "core/types.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Leads every JOURNAL_COMMAND payload; ext_bytes is a multiple of 16 and
 * the events (count records of 128 bytes) follow the ext. */
struct command_header {
	u16 kind;
	u16 reserved;
	u32 ext_bytes;
	u32 count;
	u32 reserved2;
};
_Static_assert(sizeof(struct command_header) == 16, "command header");

/* What a kind carries after its ext. */
enum command_events {
	COMMAND_EVENTS_NONE = 0,      /* count == 0; results[0]: an outcome */
	COMMAND_EVENTS_ACCOUNTS = 1,  /* 1..BATCH_EVENTS_MAX struct account */
	COMMAND_EVENTS_TRANSFERS = 2, /* 1..BATCH_EVENTS_MAX struct transfer */
};

/* The parts of the state a kind changes (a bit set). */
#define COMMAND_LEDGER (1u << 0)
#define COMMAND_AUTH   (1u << 1)
#define COMMAND_PSTATE (1u << 2)
#define COMMAND_VAULT  (1u << 3)

/* A bound on any ext: a journal record holds about 1 MiB
 * (log/journal.h, JOURNAL_RECORD_BYTES_MAX). */
#define COMMAND_EXT_BYTES_MAX (1u << 20)

/*
 * The registry: X(enum name, kind, display name, events, parts, ext_min,
 * ext_max, ext_unit, validator, applier).  Parts: what the applier
 * changes (COMMAND_LEDGER, _AUTH, _PSTATE).  The ext's size is in
 * ext_min..ext_max and a multiple of ext_unit (16, or a whole struct
 * such as the guards'); the validator (may be NULL) then checks the
 * ext's contents, and its exact size, for the kinds whose module applies
 * them.  The ext types and the handlers are only named here; command.c
 * expands the rows.
 */
#define COMMAND_KINDS(X)                                                       \
	/* ext: struct auth_owner; events: accounts */                         \
	X(AUTH_CMD_ACCOUNTS_OWNED, 1, "accounts_owned",                        \
	  COMMAND_EVENTS_ACCOUNTS, COMMAND_LEDGER | COMMAND_AUTH,              \
	  sizeof(struct auth_owner), sizeof(struct auth_owner), 16, NULL,      \
	  apply_accounts_owned)                                                \
	/* ext: 1..AUTH_GUARD_LINKS_MAX struct auth_guard; events: transfers   \
	 * (every event counts against caps and uses) */                       \
	X(AUTH_CMD_TRANSFERS_GUARDED, 2, "transfers_guarded",                  \
	  COMMAND_EVENTS_TRANSFERS, COMMAND_LEDGER | COMMAND_AUTH,             \
	  sizeof(struct auth_guard),                                           \
	  AUTH_GUARD_LINKS_MAX * sizeof(struct auth_guard),                    \
	  sizeof(struct auth_guard), NULL, apply_transfers_guarded)            \
	X(AUTH_CMD_PRINCIPAL, 3, "principal", COMMAND_EVENTS_NONE,             \
	  COMMAND_AUTH, sizeof(struct auth_principal),                         \
	  sizeof(struct auth_principal), 16, auth_command_valid, apply_auth)   \
	/* ext: struct auth_revoke, or its first AUTH_REVOKE_V1_BYTES */       \
	X(AUTH_CMD_REVOKE, 4, "revoke", COMMAND_EVENTS_NONE, COMMAND_AUTH,     \
	  AUTH_REVOKE_V1_BYTES, sizeof(struct auth_revoke), 16,                \
	  auth_command_valid, apply_auth)                                      \
	X(AUTH_CMD_KEY, 5, "key", COMMAND_EVENTS_NONE, COMMAND_AUTH,           \
	  sizeof(struct auth_key_event), sizeof(struct auth_key_event), 16,    \
	  auth_command_valid, apply_auth)                                      \
	/* As 2, except that an event whose id is already a transfer before    \
	 * the batch does not count against caps and uses: it creates          \
	 * nothing, and a retry of an acknowledged transfer under a link that  \
	 * is now used up must answer `exists`, not a refusal.  Kind 2 keeps   \
	 * its meaning for the records that hold it. */                        \
	X(AUTH_CMD_TRANSFERS_GUARDED_2, 6, "transfers_guarded_2",              \
	  COMMAND_EVENTS_TRANSFERS, COMMAND_LEDGER | COMMAND_AUTH,             \
	  sizeof(struct auth_guard),                                           \
	  AUTH_GUARD_LINKS_MAX * sizeof(struct auth_guard),                    \
	  sizeof(struct auth_guard), NULL, apply_transfers_guarded)            \
	/* ext: struct auth_principal whose pub is an auth_x509_pub: an        \
	 * organisation registered by its certificate's key (id = SHA-256 of   \
	 * its SubjectPublicKeyInfo) */                                        \
	X(AUTH_CMD_PRINCIPAL_X509, 24, "principal_x509", COMMAND_EVENTS_NONE,  \
	  COMMAND_AUTH, sizeof(struct auth_principal),                         \
	  sizeof(struct auth_principal), 16, auth_command_valid, apply_auth)   \
	/* ext: struct pstate_set + the document text, padded to 16 */         \
	X(PSTATE_CMD_SET, 16, "policy_set", COMMAND_EVENTS_NONE,               \
	  COMMAND_PSTATE, sizeof(struct pstate_set), COMMAND_EXT_BYTES_MAX,    \
	  16, pstate_command_valid, apply_pstate)                              \
	X(PSTATE_CMD_OVERRIDE, 17, "policy_override", COMMAND_EVENTS_NONE,     \
	  COMMAND_PSTATE, sizeof(struct pstate_override_cmd),                  \
	  sizeof(struct pstate_override_cmd), 16, pstate_command_valid,        \
	  apply_pstate)                                                        \
	X(PSTATE_CMD_OVERRIDE_END, 18, "policy_override_end",                  \
	  COMMAND_EVENTS_NONE, COMMAND_PSTATE,                                 \
	  sizeof(struct pstate_override_end),                                  \
	  sizeof(struct pstate_override_end), 16, pstate_command_valid,        \
	  apply_pstate)                                                        \
	X(PSTATE_CMD_OVERRIDE_EXTEND, 19, "policy_override_extend",            \
	  COMMAND_EVENTS_NONE, COMMAND_PSTATE,                                 \
	  sizeof(struct pstate_override_extend),                               \
	  sizeof(struct pstate_override_extend), 16, pstate_command_valid,     \
	  apply_pstate)                                                        \
	/* ext: struct pstate_override_2 + the message JSON, padded to 16:     \
	 * kind 17 with a user message and an expected end */                  \
	X(PSTATE_CMD_OVERRIDE_2, 20, "policy_override_2", COMMAND_EVENTS_NONE, \
	  COMMAND_PSTATE, sizeof(struct pstate_override_2),                    \
	  sizeof(struct pstate_override_2) + POLICY_MESSAGE_BYTES_MAX, 16,     \
	  pstate_command_valid, apply_pstate)                                  \
	/* Journaled by the server when an override reaches its end: no        \
	 * author; informational for the gate (core/pstate.h) */               \
	X(PSTATE_CMD_OVERRIDE_EXPIRED, 21, "policy_override_expired",          \
	  COMMAND_EVENTS_NONE, COMMAND_PSTATE,                                 \
	  sizeof(struct pstate_override_expired),                              \
	  sizeof(struct pstate_override_expired), 16, pstate_command_valid,    \
	  apply_pstate)                                                        \
	/* ext: struct tlsswitch (core/tlsswitch.h): the served TLS            \
	 * certificate changed; for the audit trail, no part changes */        \
	X(TLS_CMD_SWITCH, 22, "tls_switch", COMMAND_EVENTS_NONE, 0,            \
	  sizeof(struct tlsswitch), sizeof(struct tlsswitch), 16,              \
	  tlsswitch_command_valid, apply_none)                                 \
	/* The card vault (core/vault.h, docs/vault.md); kind 44 is the        \
	 * vault's too, unused so far.  ext: struct vault_card_cmd: a card     \
	 * tokenized (its ciphertext, never its number) */                     \
	X(VAULT_CMD_CARD, 40, "vault_card", COMMAND_EVENTS_NONE,               \
	  COMMAND_VAULT, sizeof(struct vault_card_cmd),                        \
	  sizeof(struct vault_card_cmd), 16, vault_command_valid, apply_vault) \
	/* ext: struct vault_use_cmd: who revealed which token, and why */     \
	X(VAULT_CMD_REVEAL, 41, "vault_reveal", COMMAND_EVENTS_NONE,           \
	  COMMAND_VAULT, sizeof(struct vault_use_cmd),                         \
	  sizeof(struct vault_use_cmd), 16, vault_command_valid, apply_vault)  \
	/* ext: struct vault_use_cmd: who erased which token, and why */       \
	X(VAULT_CMD_ERASE, 42, "vault_erase", COMMAND_EVENTS_NONE,             \
	  COMMAND_VAULT, sizeof(struct vault_use_cmd),                         \
	  sizeof(struct vault_use_cmd), 16, vault_command_valid, apply_vault)  \
	/* ext: struct vault_rotate_cmd: the vault key rotated */              \
	X(VAULT_CMD_ROTATE, 43, "vault_rotate", COMMAND_EVENTS_NONE,           \
	  COMMAND_VAULT, sizeof(struct vault_rotate_cmd),                      \
	  sizeof(struct vault_rotate_cmd), 16, vault_command_valid,            \
	  apply_vault)                                                         \
	/* Named administrators and dual control (core/admin.h): a role        \
	 * given or taken away, the bootstrap credentials retired, a request   \
	 * (+ its PSTATE_CMD_SET ext) and a decision on one, which applies     \
	 * the request's policy when it approves it */                         \
	X(ADMIN_CMD_ROLE, 30, "admin_role", COMMAND_EVENTS_NONE, COMMAND_AUTH, \
	  sizeof(struct admin_role_cmd), sizeof(struct admin_role_cmd), 16,    \
	  admin_command_valid, apply_admin)                                    \
	X(ADMIN_CMD_RETIRE, 31, "bootstrap_retire", COMMAND_EVENTS_NONE,       \
	  COMMAND_AUTH, sizeof(struct admin_retire_cmd),                       \
	  sizeof(struct admin_retire_cmd), 16, admin_command_valid,            \
	  apply_admin)                                                         \
	/* the smallest: a role grant (op 2); a policy set is larger */        \
	X(ADMIN_CMD_REQUEST, 32, "admin_request", COMMAND_EVENTS_NONE,         \
	  COMMAND_AUTH,                                                        \
	  sizeof(struct admin_request_cmd) + sizeof(struct admin_role_cmd),    \
	  sizeof(struct admin_request_cmd) + sizeof(struct pstate_set) +       \
		  POLICY_DOC_BYTES_MAX,                                        \
	  16, admin_command_valid, apply_admin)                                \
	X(ADMIN_CMD_DECIDE, 33, "admin_decide", COMMAND_EVENTS_NONE,           \
	  COMMAND_AUTH | COMMAND_PSTATE, sizeof(struct admin_decide_cmd),      \
	  sizeof(struct admin_decide_cmd), 16, admin_command_valid,            \
	  apply_admin)

/* The kinds (command_header.kind), numbered by the rows above. */
enum command_kind {
#define COMMAND__ENUM(name, kind, ...) name = kind,
	COMMAND_KINDS(COMMAND__ENUM)
#undef COMMAND__ENUM
};

struct ledger;
struct auth;
struct pstate;
struct vault;

/* What an applier may change: the parts of the state (core/state owns
 * them; a reader such as `doctor` may hold only the parts it rebuilds)
 * and BATCH_EVENTS_MAX bytes of scratch for the guarded kinds. */
struct command_target {
	struct ledger *ledger;
	struct auth *auth;
	struct pstate *pstate;
	struct vault *vault;
	u8 *scratch;
};

struct command_view;
typedef bool (*command_valid_fn)(u16 kind, const void *ext, u32 ext_bytes);
typedef int (*command_apply_fn)(const struct command_target *t,
				const struct command_view *c, u64 timestamp,
				u32 *results);

/* One row of the registry. */
struct command_def {
	u16 kind;
	const char *name;
	enum command_events events;
	u32 parts; /* COMMAND_LEDGER | ... */
	u32 ext_min, ext_max, ext_unit;
	command_valid_fn valid;
	command_apply_fn apply;
};

/* A decoded command: pointers into the payload it was decoded from,
 * valid as long as that payload. */
struct command_view {
	struct command_header h;
	const struct command_def *def;
	const u8 *ext;	    /* h.ext_bytes */
	const void *events; /* h.count records of 128 bytes */
};

/* The row of a kind, or NULL for a kind no row has. */
const struct command_def *command_find(u16 kind);
/* The display name of a kind ("unknown" for none). */
const char *command_name(u16 kind);

/*
 * The layout alone: do a header's sizes describe a payload of exactly
 * payload_bytes (16 + ext_bytes + 128 * count, ext_bytes a multiple of
 * 16)?  What a reader holding only the header and the record's size can
 * check (log/leaf's rule 2).  Returns 0 or -EBADMSG.  Inline, so a
 * reader of the layout links none of the appliers.
 */
static inline int command_layout(const u8 header[16], u64 payload_bytes,
				 struct command_header *out)
{
	struct command_header h;

	memcpy(&h, header, sizeof(h));
	/* u64 sums: count and ext_bytes are 32-bit and untrusted. */
	if (h.ext_bytes % 16 != 0 ||
	    (u64)sizeof(h) + h.ext_bytes + (u64)h.count * 128u != payload_bytes)
		return -EBADMSG;
	*out = h;
	return 0;
}

/*
 * Decode a JOURNAL_COMMAND payload: the layout, a kind of the registry,
 * and the row's rule (events: none, or 1..BATCH_EVENTS_MAX; the ext's
 * size in range and a multiple of its unit).  Never reads outside
 * payload[0..bytes). Returns 0 or -EBADMSG.  The ext's contents are the
 * validator's.
 */
int command_decode(const void *payload, size_t bytes, struct command_view *out);

/* Would command_apply take it (command_decode's rule, and the row's
 * validator)?  The engine asks before journaling: a record that fails to
 * apply stops replay. */
bool command_valid(const struct command_view *c);

/* Apply a decoded command at the record's timestamp; results has room
 * for max(count, 1) codes.  Returns 0, -EBADMSG (the state refuses the
 * record as malformed), -EINVAL (the target lacks a part the kind
 * changes) or another negative errno from the state. */
int command_apply(const struct command_target *t, const struct command_view *c,
		  u64 timestamp, u32 *results);

#endif
