/*
 * serverkeys.h - the server's key material as init and serve set it up:
 * the key-encryption key, the keyring in DATA/keys, and the audit log's
 * origin (its name in signed checkpoints).
 *
 * The KEK comes from TPWALLET_KEK when set, else from the `kek_file`
 * setting (default: DATA.kek, beside the data directory and not in it,
 * so that a copy of the data directory does not carry its own key).  A
 * missing KEK file is created (mode 0600) only when `create` is true.
 * A keyring with no signing key gets one.  See docs/keys.md.
 */
#ifndef TPW_CLI_SERVERKEYS_H
#define TPW_CLI_SERVERKEYS_H

#include "cli/cli.h"
#include "core/types.h"
#include "crypto/keyring.h"

#define ORIGIN_BYTES_MAX 128

struct pkcs11;
struct server_keys {
	/* The token when the KEK is in one (kek_pkcs11_module), else NULL;
	 * kek borrows it. */
	struct pkcs11 *hsm;
	bool hsm_down;	      /* the last minute's check of the token failed */
	unsigned hsm_version; /* the version of the token's KEK that seals */
	struct keyring_kek *kek;
	struct keyring *keyring;
	char origin[ORIGIN_BYTES_MAX];
	/* Where the key events are (set by serve once it is open; NULL:
	 * checkpoints announce no key). */
	struct engine *e;
};

/* The extension line that announces the log's current key in a
 * checkpoint: "tpwallet-log-key <leaf index of its key event> <note
 * verifier key>" (docs/audit.md, "Witnesses through a rotation"). */
#define SERVER_KEYS_ANNOUNCE "tpwallet-log-key"
/* Retired keys that sign a checkpoint beside the current one, at most
 * (newest first): a witness that slept through more rotations than
 * this within an overlap is told the key by its operator. */
#define SERVER_KEYS_RETIRED_SIGNERS_MAX 7

/* The token settings as log/pkcs11.h takes them (borrowing s). */
struct pkcs11_config;
void server_keys_pkcs11_config(const struct settings *s,
			       struct pkcs11_config *c);

/* The KEK the settings name: in a token when kek_pkcs11_module is set
 * (*hsm gets the token; create makes its key when absent), else from
 * TPWALLET_KEK or kek_file (*hsm NULL; create makes the file when
 * absent).  Returns 0, or a negative code with the reason logged. */
int server_keys_load_kek(const struct settings *s, bool create,
			 struct pkcs11 **hsm, struct keyring_kek **kek);

/* Returns 0, or a negative code with the reason printed on stderr. */
int server_keys_open(const struct settings *s, bool create,
		     struct server_keys *out);
void server_keys_close(struct server_keys *k);

/* The administrator's key and bearer token (DATA/admin.jwk and
 * DATA/admin.token, made when absent) and the authenticator that checks
 * requests against them.  Returns 0, or a negative code with the reason
 * on stderr.  *created is set when the files were made now. */
struct api_authz;
int server_admin_open(const struct settings *s, const char *audience,
		      struct api_authz **out, bool *created);

/* Journal the current signing key (public data) if the journal does not
 * hold it yet: every key the server signs with is a log entry.  Returns
 * 0 or a negative errno. */
struct engine;
int server_keys_journal(struct server_keys *k, struct engine *e);

/* Scheduled upkeep (serve calls it every minute): rotate the signing key
 * when it has signed for period_s (0: never), the keys it retires
 * verifying overlap_s more, journal it (with that overlap), and remove
 * key files expired past their overlap.  Failures are logged; returns 0
 * or a negative code. */
int server_keys_maintain(struct server_keys *k, struct engine *e,
			 int64_t period_s, int64_t overlap_s);

/* An audit_sign_fn: sign a checkpoint body with the current key, as a
 * note key named after the origin, and with each retired key that still
 * verifies (at most SERVER_KEYS_RETIRED_SIGNERS_MAX), so that a witness
 * that trusts one of those can follow the rotation.  ctx is the struct
 * server_keys. */
int server_keys_sign_note(void *ctx, const char *text, size_t len, char *note,
			  size_t cap, size_t *note_len);

/* The audit_signer's extensions: while a retired key still verifies,
 * the SERVER_KEYS_ANNOUNCE line of the current key, once its key event
 * is among the first `size` leaves; else none. */
struct audit;
size_t server_keys_checkpoint_extensions(void *ctx, const struct audit *a,
					 u64 size, char *buf, size_t cap);

#endif
