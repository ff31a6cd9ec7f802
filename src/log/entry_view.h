/*
 * entry_view.h - an audit entry (one journal record, as the audit tree
 * hashes it) decoded for people: its type, time, seq, and for a command
 * the registry's name (core/command.h), its author and what it changed,
 * in words and as named fields.
 *
 * The one decoder behind `GET /v1/audit/entries/{i}?view=decoded` and
 * `tpwallet audit log` (docs/audit.md): both render the same struct, so
 * the two views say the same thing.  Text taken from the record (names,
 * reasons, jtis) is cut at its NUL padding and every byte outside
 * printable ASCII becomes '?', so a renderer may put it anywhere.
 * The author is a principal id (an RFC 7638 thumbprint, raw); naming it
 * is the caller's (the server's auth state, or the principals the CLI has
 * seen).  No allocation; the raw bytes are never changed.
 */
#ifndef TPW_LOG_ENTRY_VIEW_H
#define TPW_LOG_ENTRY_VIEW_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

#define ENTRY_VIEW_FIELDS_MAX	 12
#define ENTRY_VIEW_VALUE_BYTES	 288
#define ENTRY_VIEW_SUMMARY_BYTES 512
#define ENTRY_VIEW_ERROR_BYTES	 160
#define ENTRY_VIEW_TIME_BYTES	 64
/* How many ids of a batch are shown. */
#define ENTRY_VIEW_FIRST_IDS 3
/* A thumbprint in base64url: 43 characters and a NUL. */
#define ENTRY_VIEW_THUMBPRINT_BYTES 44

struct entry_view_field {
	const char *key;
	char value[ENTRY_VIEW_VALUE_BYTES];
};

struct entry_view {
	u16 type;	       /* the journal record type */
	const char *type_name; /* "create_accounts", ..., "command" */
	u64 seq;
	u64 timestamp_ns;
	char time[ENTRY_VIEW_TIME_BYTES]; /* RFC 3339, UTC, nanoseconds */
	const char *command; /* the registry's display name, or NULL */
	bool has_author;
	u8 author[32]; /* all zero: the administrator */
	/* The server's own entry (an override's expiry, a TLS switch of
	 * its own): no principal;
	 * renderers show the author as "server". */
	bool server_author;
	char summary[ENTRY_VIEW_SUMMARY_BYTES];
	u32 nfields;
	struct entry_view_field fields[ENTRY_VIEW_FIELDS_MAX];
	char error[ENTRY_VIEW_ERROR_BYTES]; /* set when the entry is damaged */
};

/*
 * Decode the record raw[0..len).  Returns 0, or -EBADMSG with out->error
 * saying what is wrong (the fields decoded before it stay filled: a
 * record whose header reads but whose command does not still has its
 * type, seq and time).
 */
int entry_view_decode(const u8 *raw, size_t len, struct entry_view *out);

/*
 * What the record alone does not say but the state does: the policy
 * version a policy_set made, the id a policy_override got (id > 0).  Adds
 * the field ("version", "override_id") and names it in the summary.  No
 * effect on other commands.
 */
void entry_view_set_outcome(struct entry_view *v, u64 id);

/*
 * What the state says of the override a policy_override_end, _extend or
 * _expired names: its platform and range.  Adds the fields "platform"
 * and "range" and names them in the summary.  No effect on other
 * commands.
 */
void entry_view_set_override(struct entry_view *v, const char *platform,
			     const char *range);
/* The override id a policy_override_end, _extend or _expired names; 0
 * for any other entry. */
u64 entry_view_override_id(const struct entry_view *v);

/* A journal record type's name ("command", ...; "unknown"). */
const char *entry_view_type_name(u16 type);

/* The base64url thumbprint of a principal id. */
void entry_view_thumbprint(const u8 id[32],
			   char out[ENTRY_VIEW_THUMBPRINT_BYTES]);

/* Is the id the administrator's (all zero)? */
bool entry_view_is_admin(const u8 id[32]);

/* A NUL-padded text of at most n bytes, as entry_view shows it. */
void entry_view_text(char *out, size_t out_size, const char *in, size_t n);

#endif
