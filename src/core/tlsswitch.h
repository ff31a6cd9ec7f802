/*
 * tlsswitch.h - the journal entry of a change of the served TLS
 * certificate (docs/operations.md, "Standby certificate"): the server
 * switched from its primary certificate to its standby or back, by
 * itself (the primary expired, is not valid yet, was revoked, or became
 * valid again)
 * or because an operator asked (POST /v1/tls/switch).
 *
 * The entry is for the audit trail: it changes no part of the state
 * (which certificate serves is the process's, not the ledger's), so its
 * applier only checks it.  Pure: no I/O, no clock.
 */
#ifndef TPW_CORE_TLSSWITCH_H
#define TPW_CORE_TLSSWITCH_H

#include "core/types.h"

#include <stdbool.h>

/* Why the served certificate changed.  On disk: add, never renumber. */
enum tlsswitch_reason {
	TLSSWITCH_EXPIRED = 1,	     /* the serving one's not_after passed */
	TLSSWITCH_NOT_YET_VALID = 2, /* its not_before is ahead */
	TLSSWITCH_OPERATOR = 3,	     /* POST /v1/tls/switch */
	TLSSWITCH_PRIMARY_VALID = 4, /* the primary is valid again (a
				      * renewal, or its not_before came) */
	TLSSWITCH_REVOKED = 5,	     /* its OCSP response says revoked */
};

enum tlsswitch_role {
	TLSSWITCH_PRIMARY = 1,
	TLSSWITCH_STANDBY = 2,
};

/* A certificate serial in lower-case hex (at most 20 bytes), NUL-padded. */
#define TLSSWITCH_SERIAL_BYTES 44

/* The ext of TLS_CMD_SWITCH (kind 22). */
struct tlsswitch {
	u8 reason; /* enum tlsswitch_reason */
	u8 from;   /* enum tlsswitch_role */
	u8 to;	   /* the other role */
	u8 reserved[5];
	/* TLSSWITCH_OPERATOR: who asked (a principal id; zero: the
	 * administrator).  Zero for the server's own switches. */
	u8 author[32];
	char from_serial[TLSSWITCH_SERIAL_BYTES];
	char to_serial[TLSSWITCH_SERIAL_BYTES];
};
_Static_assert(sizeof(struct tlsswitch) == 128, "tls switch ext");

/* "expired", "not_yet_valid", "operator", "primary_valid", "revoked";
 * NULL else. */
const char *tlsswitch_reason_name(u8 reason);
/* "primary", "standby"; NULL else. */
const char *tlsswitch_role_name(u8 role);

/* command.h's validator for TLS_CMD_SWITCH: a known reason, two
 * different roles (primary_valid only toward the primary), serials of
 * 1..40 hex digits with NUL padding, no reserved bit, and no author on
 * the server's own switches. */
bool tlsswitch_command_valid(u16 kind, const void *ext, u32 ext_bytes);

#endif
