/*
 * tlsswitch.c - names and the validator of the TLS switch entry (see
 * tlsswitch.h).
 */
#include "core/tlsswitch.h"

#include <string.h>

#include "banned.h"

const char *tlsswitch_reason_name(u8 reason)
{
	switch (reason) {
	case TLSSWITCH_EXPIRED: return "expired";
	case TLSSWITCH_NOT_YET_VALID: return "not_yet_valid";
	case TLSSWITCH_OPERATOR: return "operator";
	case TLSSWITCH_PRIMARY_VALID: return "primary_valid";
	case TLSSWITCH_REVOKED: return "revoked";
	default: return NULL;
	}
}

const char *tlsswitch_role_name(u8 role)
{
	switch (role) {
	case TLSSWITCH_PRIMARY: return "primary";
	case TLSSWITCH_STANDBY: return "standby";
	default: return NULL;
	}
}

/* 1..40 lower-case hex digits, then NULs to the end of the field. */
static bool serial_valid(const char *s)
{
	size_t n = 0;

	while (n < TLSSWITCH_SERIAL_BYTES && s[n] != '\0') {
		if (!((s[n] >= '0' && s[n] <= '9') ||
		      (s[n] >= 'a' && s[n] <= 'f')))
			return false;
		n++;
	}
	if (n == 0 || n > 40)
		return false;
	for (size_t i = n; i < TLSSWITCH_SERIAL_BYTES; i++)
		if (s[i] != '\0')
			return false;
	return true;
}

bool tlsswitch_command_valid(u16 kind, const void *ext, u32 ext_bytes)
{
	static const u8 zero[32];
	struct tlsswitch x;

	(void)kind;
	if (ext_bytes != sizeof(x))
		return false;
	memcpy(&x, ext, sizeof(x));
	if (!tlsswitch_reason_name(x.reason) || !tlsswitch_role_name(x.from) ||
	    !tlsswitch_role_name(x.to) || x.from == x.to ||
	    memcmp(x.reserved, zero, sizeof(x.reserved)) != 0)
		return false;
	if (x.reason != TLSSWITCH_OPERATOR &&
	    memcmp(x.author, zero, sizeof(x.author)) != 0)
		return false;
	/* The server's own switches follow from the certificates' dates:
	 * away from the one serving when it is not valid (the primary, or
	 * a standby an operator chose), back to the primary when it is. */
	if (x.reason == TLSSWITCH_PRIMARY_VALID && x.to != TLSSWITCH_PRIMARY)
		return false;
	return serial_valid(x.from_serial) && serial_valid(x.to_serial);
}
