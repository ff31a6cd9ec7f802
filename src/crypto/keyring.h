/*
 * keyring.h - the server's own signing keys (issue 4, item 1): versioned
 * Ed25519 keys named by their RFC 7638 thumbprint, encrypted at rest under
 * a key-encryption key (KEK), rotated with an overlap window, published as
 * a JWKS.  See docs/keys.md for the operator's view.
 *
 * The KEK.  32 random bytes, from a file (exactly 32 raw bytes, or the 43
 * base64url characters of them with an optional final "\n") that must be
 * a regular file, not a symbolic link, owned by the running user, with
 * mode 0600 or stricter; or from the environment variable TPWALLET_KEK
 * (KEYRING_KEK_ENV: the 43 base64url characters, nothing else).  It lives
 * in sodium_malloc'd memory that is PROT_NONE except while a subkey is
 * derived from it, and is wiped when freed.  It is never used directly:
 * crypto_kdf (BLAKE2b) derives, under the context "tpwkeyrg",
 *   subkey 1  the XChaCha20-Poly1305 key that seals the private keys,
 *   subkey 2  the BLAKE2b key of the metadata MAC,
 *   subkey 3  the KEK id: 16 public bytes that name the KEK (a key file
 *             records the id of the KEK that sealed it, so a wrong KEK is
 *             reported as such rather than as tampering).
 *
 * Keys.  Each key has a kid (the full 43-character RFC 7638 thumbprint of
 * its public key, jose_thumbprint) and four times in seconds since the
 * epoch, with created_at <= activate_at <= retire_at <= expires_at:
 *   signs      while activate_at <= now < retire_at;
 *   verifies   while now < expires_at (a key is published and verifies
 *              from creation on, so caches learn it before it signs);
 *   KEYRING_NEVER (INT64_MAX) as retire_at or expires_at means "not yet
 *   scheduled".
 * keyring_rotate creates a key that signs from now on and schedules every
 * key signing until now to retire now and expire at now + overlap_s: the
 * overlap must be at least the lifetime of the longest-lived token the
 * server signs, so that everything a retired key signed has expired
 * before the key stops verifying.
 *
 * Key file, one per key: <dir>/<kid>.key, mode 0600, exactly
 * KEYRING_KEYFILE_BYTES bytes, integers big-endian, times signed:
 *     0   6  magic "TPWKEY"
 *     6   2  format version, 1
 *     8   2  algorithm, 1 = Ed25519
 *    10   6  reserved, zero
 *    16   8  created_at
 *    24   8  activate_at
 *    32   8  retire_at
 *    40   8  expires_at
 *    48  32  Ed25519 public key
 *    80  48  kid: 43 base64url characters, then 5 zero bytes
 *   128  16  KEK id of the KEK that sealed this file
 *   144  32  metadata MAC: BLAKE2b-256 keyed with subkey 2 over [0, 144)
 *   176  24  XChaCha20-Poly1305 nonce (random per write)
 *   200  32  ciphertext of the 32-byte Ed25519 seed (RFC 8032 private key)
 *   232  16  Poly1305 tag; associated data: bytes [0, 176)
 * Format version 2 is a file sealed by a KEK in a token (issue 19): the
 * same layout, AES-256-GCM in the token instead of XChaCha20-Poly1305
 * (keyring_kek_provider, below), the metadata MAC field zero.
 * Format version 3 is a key generated in the token and used there
 * (signing_pkcs11): the layout of version 2, but the 32 bytes sealed
 * are not a seed: they are the token key's reference, its 16-byte
 * CKA_ID and 16 zero bytes, also written in clear in the metadata MAC
 * field (bytes [144, 176), covered by the GCM tag as associated data).
 * Opening checks the sealed reference equals the clear one and that the
 * token holds that key pair with the file's public key
 * (token_key_missing, key_mismatch).  No private key byte is in it.
 * Bytes [0, 144) are the public metadata, readable without the KEK.  A
 * file is written to <dir>/.<kid>.key.tmp (O_EXCL, 0600), fsynced, renamed
 * over <kid>.key, and the directory is fsynced.  Other names in the
 * directory are ignored, except that a name ending in ".key" must be a
 * well-formed kid.
 *
 * Decoding checks, in this order, and reports the first failure: length
 * at least 8 and magic (malformed), version (unknown_version), exact
 * length, algorithm, reserved bytes, kid characters and padding, times in
 * [0, JOSE_NUMERIC_DATE_MAX] or KEYRING_NEVER and in order (malformed),
 * public key a valid point and kid its thumbprint (metadata_modified);
 * with a KEK: KEK id (wrong_kek), metadata MAC (metadata_modified), AEAD
 * (ciphertext_modified), seed derives the public key (key_mismatch).
 * Loading a directory adds: file type, owner, mode (bad_permissions) and
 * that the file name is the kid inside (file_name_mismatch: two files
 * swapped).  NEEDSWORK: an older, genuine version of a key file (before
 * its retirement was written) cannot be told from the current one here;
 * once rotations are journaled, the journal is the authority and start-up
 * should compare the two.
 *
 * What a rotation will write to the journal (not wired yet): for the new
 * key, its kid, public key, created_at, activate_at, retire_at, expires_at;
 * for each key it retires, its kid and new retire_at and expires_at; a
 * prune, the kids removed.  That is struct keyring_rotation: public data
 * only.  Private keys and the KEK never go into the journal, because
 * journal entries are published by the audit log (issue 5).
 *
 * Ownership and threads.  A struct keyring owns its entries (each keeps
 * its sealed file image; no private key is held decrypted) and borrows the
 * KEK, which must outlive it.  Private key bytes are decrypted into
 * sodium_malloc'd memory for one signature or one re-seal and wiped.  A
 * keyring has its own (recursive) mutex: keyring_verifier (and so
 * keyring_lookup_verifier), keyring_rotate, keyring_prune, keyring_jwks,
 * the signing calls, keyring_due_for_rotation and the *_copy functions
 * take it, so any thread may call them at any time.  keyring_count,
 * keyring_key_at and keyring_current_signer do not: they return pointers
 * into the keyring that a rotate or prune on another thread invalidates,
 * so only the thread that rotates may use them; the others take copies
 * (keyring_keys_copy, keyring_current_copy).
 *
 * Errors.  Every function returns 0 or a code from KEYRING_ERRORS (below
 * -1200); keyring_strerror gives its stable name.  Functions that touch
 * files or parse input take an optional (err, err_size) buffer that gets
 * one sentence saying exactly what is wrong (path, mode, owner, offset);
 * no message ever contains key bytes.  Nothing here prints or logs.
 *
 * Files.  Nothing here touches a file: reading and writing the KEK file
 * and the key files, their checks (type, owner, mode) and the directory
 * are log/keyfile.h's, which hands this module bytes and gives it a
 * struct keyring_store to write through.
 *
 * Limits: KEYRING_KEYS_MAX keys in a keyring; KEYRING_DIR_BYTES_MAX for
 * the directory name; KEYRING_OVERLAP_MAX_S for an overlap;
 * KEYRING_JWKS_BYTES_MAX for the JWKS text; times in
 * [0, JOSE_NUMERIC_DATE_MAX].  No clock is read here: `now` is always a
 * parameter.  jose_init() (sodium_init) must have been called.
 */
#ifndef TPW_CRYPTO_KEYRING_H
#define TPW_CRYPTO_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "crypto/jose.h"

#define KEYRING_KEK_ENV		     "TPWALLET_KEK"
#define KEYRING_KEK_BYTES	     32
#define KEYRING_KEK_TEXT_BYTES	     43 /* base64url of 32 bytes */
#define KEYRING_KEK_ID_BYTES	     16
#define KEYRING_KID_BYTES	     43
#define KEYRING_KEYFILE_BYTES	     248
#define KEYRING_KEYFILE_PUBLIC_BYTES 144
#define KEYRING_KEYFILE_VERSION	     1
/* A key file sealed by a KEK kept in a token (AES-256-GCM, below). */
#define KEYRING_KEYFILE_VERSION_TOKEN 2
#define KEYRING_TOKEN_IV_BYTES	      12
#define KEYRING_TOKEN_TAG_BYTES	      16
/* A key generated in the token and used there (signing_pkcs11): the file
 * holds its CKA_ID, no private bytes (below). */
#define KEYRING_KEYFILE_VERSION_IN_TOKEN 3
#define KEYRING_TOKEN_KEY_ID_BYTES	 16
#define KEYRING_KEYS_MAX		 64
#define KEYRING_KEK_FILE_BYTES_MAX                                             \
	64 /* a KEK file read past this is refused                             \
	    */
#define KEYRING_DIR_BYTES_MAX 3800
#define KEYRING_OVERLAP_MAX_S (INT64_C(10) * 366 * 24 * 3600)
/* How long a replaced key keeps verifying, by default (30 days). */
#define KEYRING_OVERLAP_DEFAULT_S (30 * 24 * 3600)
#define KEYRING_NEVER		  INT64_MAX
#define KEYRING_ERR_BYTES	  256 /* a comfortable err buffer */
/* {"keys":[ ... ]} with KEYRING_KEYS_MAX entries of at most 160 bytes */
#define KEYRING_JWKS_BYTES_MAX (16 + KEYRING_KEYS_MAX * 160)
/* A compact JWS that keyring_sign_jws/jwt writes, at most (and a NUL). */
#define KEYRING_JWS_BYTES_MAX JOSE_SIGN_LARGE_TOKEN_BYTES

#define KEYRING_ERRORS(X)                                                      \
	X(INVALID_ARGUMENT, -1201, "invalid_argument")                         \
	X(IO, -1202, "io_error")                                               \
	X(NOT_REGULAR, -1203, "not_a_regular_file")                            \
	X(BAD_OWNER, -1204, "wrong_owner")                                     \
	X(BAD_PERMISSIONS, -1205, "bad_permissions")                           \
	X(EXISTS, -1206, "already_exists")                                     \
	X(KEK_MISSING, -1207, "kek_missing")                                   \
	X(KEK_BAD_LENGTH, -1208, "kek_bad_length")                             \
	X(KEK_BAD_ENCODING, -1209, "kek_bad_encoding")                         \
	X(NO_KEK, -1210, "kek_required")                                       \
	X(MALFORMED, -1211, "malformed_key_file")                              \
	X(UNKNOWN_VERSION, -1212, "unknown_key_file_version")                  \
	X(WRONG_KEK, -1213, "wrong_kek")                                       \
	X(METADATA_MODIFIED, -1214, "metadata_modified")                       \
	X(CIPHERTEXT_MODIFIED, -1215, "ciphertext_modified")                   \
	X(KEY_MISMATCH, -1216, "key_mismatch")                                 \
	X(FILE_NAME_MISMATCH, -1217, "file_name_mismatch")                     \
	X(TOO_MANY_KEYS, -1218, "too_many_keys")                               \
	X(DUPLICATE_KID, -1219, "duplicate_kid")                               \
	X(NO_SIGNING_KEY, -1220, "no_signing_key")                             \
	X(UNKNOWN_KID, -1221, "unknown_kid")                                   \
	X(KEY_EXPIRED, -1222, "key_expired")                                   \
	X(BAD_TIME, -1223, "bad_time")                                         \
	X(SIGN_FAILED, -1224, "signing_failed")                                \
	X(NO_SPACE, -1225, "output_buffer_too_small")                          \
	X(NO_MEMORY, -1226, "out_of_memory")                                   \
	X(INTERNAL, -1227, "internal_error")                                   \
	X(KEK_UNAVAILABLE, -1228, "kek_unavailable")                           \
	X(KEY_IN_TOKEN, -1229, "key_in_token")                                 \
	X(TOKEN_KEY_MISSING, -1230, "token_key_missing")

enum keyring_error {
#define KEYRING_ENUM_(name, code, text) KEYRING_E_##name = code,
	KEYRING_ERRORS(KEYRING_ENUM_)
#undef KEYRING_ENUM_
};

/* The stable name of a code from this module, or "unknown". */
const char *keyring_strerror(int code);

/* ---- the key-encryption key ------------------------------------------ */

/* Opaque; owned by whoever loaded it, freed with keyring_kek_free. */
struct keyring_kek;

/* The KEK from the bytes of a KEK file at path (named in messages):
 * exactly KEYRING_KEK_BYTES raw bytes, or KEYRING_KEK_TEXT_BYTES canonical
 * base64url characters and an optional "\n" (kek_bad_length,
 * kek_bad_encoding); n up to KEYRING_KEK_FILE_BYTES_MAX + 1 (more is
 * reported as "more than" the maximum). */
int keyring_kek_decode_file(const unsigned char *buf, size_t n,
			    const char *path, struct keyring_kek **out,
			    char *err, size_t err_size);

/* The KEK from text[0..len): exactly KEYRING_KEK_TEXT_BYTES canonical
 * base64url characters (kek_bad_length, kek_bad_encoding). */
int keyring_kek_parse(const char *text, size_t len, struct keyring_kek **out,
		      char *err, size_t err_size);

/* A new random KEK as its base64url text, "\n" and a NUL, into text
 * (KEYRING_KEK_TEXT_BYTES + 2 bytes, sodium_malloc'd by the caller). */
int keyring_kek_generate_text(char *text);

/* The KEK's public id (subkey 3). */
void keyring_kek_id(const struct keyring_kek *kek,
		    unsigned char out[KEYRING_KEK_ID_BYTES]);

/* Wipes and frees; NULL is fine. */
void keyring_kek_free(struct keyring_kek *kek);

/*
 * A KEK that never leaves a token (issue 19: a PKCS#11 module, reached
 * from log/pkcs11.h; this module does no I/O and loads nothing).  The
 * token seals each private key with AES-256-GCM: a fresh 12-byte IV per
 * seal (chosen here, from the key file's random nonce), the key file's
 * bytes [0, 176) (magic, version, times, public key, kid, KEK id) as
 * associated data.  Such a file is format version 2 (the layout of
 * version 1: the IV in the first 12 bytes of the nonce field, the rest
 * zero; the GCM tag in the tag field; the metadata MAC field zero, since
 * the GCM tag covers the metadata).
 *
 * wrap seals len bytes of pt into ct and tag; unwrap opens them into pt
 * with the version of the KEK whose id the file names (kek_id).
 * Each returns 0, KEYRING_E_CIPHERTEXT_MODIFIED when the tag does not
 * verify (unwrap), or KEYRING_E_KEK_UNAVAILABLE (the token is absent,
 * refuses, or did not answer in time) with a sentence in err that names
 * no secret.  They may be called from any thread.  release (may be NULL)
 * frees ctx at keyring_kek_free.
 */
struct keyring_kek_provider {
	void *ctx;
	int (*wrap)(void *ctx, const unsigned char *aad, size_t aad_len,
		    const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
		    const unsigned char *pt, size_t len, unsigned char *ct,
		    unsigned char tag[KEYRING_TOKEN_TAG_BYTES], char *err,
		    size_t err_size);
	int (*unwrap)(void *ctx,
		      const unsigned char kek_id[KEYRING_KEK_ID_BYTES],
		      const unsigned char *aad, size_t aad_len,
		      const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
		      const unsigned char *ct, size_t len,
		      const unsigned char tag[KEYRING_TOKEN_TAG_BYTES],
		      unsigned char *pt, char *err, size_t err_size);
	/* Can unwrap open a file sealed under kek_id, an older version of
	 * this KEK still in the token?  NULL: only the KEK's own id. */
	bool (*knows)(void *ctx,
		      const unsigned char kek_id[KEYRING_KEK_ID_BYTES]);
	void (*release)(void *ctx);

	/* Signing keys kept in the token (key file version 3), named by
	 * their CKA_ID; each NULL when the provider has none.  generate
	 * makes an Ed25519 pair there (private key sensitive, not
	 * extractable) with a fresh id, labelled with its kid, and gives
	 * its public key; public gives the public key of id
	 * (KEYRING_E_TOKEN_KEY_MISSING when the token has not both
	 * halves); sign signs msg[0..len) with id (Ed25519, 64 bytes);
	 * destroy removes the pair (absent is fine).  Errors as wrap's. */
	int (*key_generate)(void *ctx,
			    unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
			    unsigned char pub[JOSE_ED25519_PUBLIC_BYTES],
			    char *err, size_t err_size);
	int (*key_public)(void *ctx,
			  const unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
			  unsigned char pub[JOSE_ED25519_PUBLIC_BYTES],
			  char *err, size_t err_size);
	int (*key_sign)(void *ctx,
			const unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
			const unsigned char *msg, size_t len,
			unsigned char sig[JOSE_ED25519_SIGNATURE_BYTES],
			char *err, size_t err_size);
	int (*key_destroy)(void *ctx,
			   const unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
			   char *err, size_t err_size);
	/* New keys (rotations) are generated in the token (key_generate)
	 * rather than sealed by it. */
	bool generate_in_token;
};

/* A KEK kept in a token, named by id (the provider's public name for the
 * token key).  On success the KEK owns the provider (release at
 * keyring_kek_free); on failure the caller keeps it. */
int keyring_kek_from_provider(const struct keyring_kek_provider *p,
			      const unsigned char id[KEYRING_KEK_ID_BYTES],
			      struct keyring_kek **out);

/* Is the KEK kept in a token? */
bool keyring_kek_in_token(const struct keyring_kek *kek);

/* Are new signing keys generated inside the token (signing_pkcs11)? */
bool keyring_kek_generates_in_token(const struct keyring_kek *kek);

/* The format version of a key file's image (its first len bytes), or -1
 * when it is not a key file (tpwallet upgrade check).  Pure. */
int keyring_image_version(const unsigned char *image, size_t len);

/* Does the key file image hold a key generated in a token (version 3)? */
bool keyring_image_in_token(const unsigned char image[KEYRING_KEYFILE_BYTES]);

/* Re-seals the key file image in[] (opened with from) under to, into
 * out[], with the given nonce (random per call by the caller): the same
 * key, times and kid.  For `tpwallet keys migrate`.  A key generated in
 * a token (version 3) stays there: re-sealed under another version of
 * the token's KEK, refused (key_in_token) under a file KEK. */
int keyring_keyfile_reseal(const unsigned char in[KEYRING_KEYFILE_BYTES],
			   const struct keyring_kek *from,
			   const struct keyring_kek *to,
			   const unsigned char nonce[24],
			   unsigned char out[KEYRING_KEYFILE_BYTES], char *err,
			   size_t err_size);

/*
 * A 32-byte secret sealed by the KEK, for the card vault's wrapping keys
 * (engine/vaultkeys.h): KEYRING_SEALED_BYTES of
 *     0  16  KEK id of the KEK that sealed it
 *    16  24  nonce (random per seal, the caller's)
 *    40  32  ciphertext
 *    72  16  tag; associated data: aad[0..aad_len) and the KEK id
 * With a file KEK: XChaCha20-Poly1305 under its own subkey (4), never
 * the key files' one.  With a KEK in a token: the token's AES-256-GCM
 * (the first 12 bytes of the nonce as its IV).  Open refuses a KEK id
 * it cannot open (wrong_kek) and a tag that does not verify
 * (ciphertext_modified).
 */
#define KEYRING_SEALED_BYTES 88
int keyring_kek_seal_secret(const struct keyring_kek *kek,
			    const unsigned char *aad, size_t aad_len,
			    const unsigned char nonce[24],
			    const unsigned char secret[32],
			    unsigned char out[KEYRING_SEALED_BYTES], char *err,
			    size_t err_size);
int keyring_kek_open_secret(const struct keyring_kek *kek,
			    const unsigned char *aad, size_t aad_len,
			    const unsigned char in[KEYRING_SEALED_BYTES],
			    unsigned char secret[32], char *err,
			    size_t err_size);

/* ---- keys and key files ----------------------------------------------- */

/* The public view of one key: plain data, freely copied. */
struct keyring_key {
	char kid[KEYRING_KID_BYTES + 1];
	unsigned char pub[JOSE_ED25519_PUBLIC_BYTES];
	int64_t created_at, activate_at, retire_at, expires_at;
	unsigned char kek_id[KEYRING_KEK_ID_BYTES];
};

/*
 * Decodes a key file image buf[0..len) (the checks and their order are at
 * the top of this file).  kek NULL: the public metadata only (no
 * integrity beyond the kid matching the public key).  Pure: no I/O.
 */
int keyring_keyfile_decode(const void *buf, size_t len,
			   const struct keyring_kek *kek,
			   struct keyring_key *out, char *err, size_t err_size);

/* ---- the keyring -------------------------------------------------------- */

/* Opaque; owned by the caller of keyring_new (log/keyfile.h's
 * keyfile_open_keyring), freed with keyring_free. */
struct keyring;

/* Where a keyring's key files live: each callback returns 0 or a
 * KEYRING_E_* code with a sentence in err.  put writes the image of kid
 * whole or not at all, durably; remove deletes kid's file (absent is
 * fine), made durable by the next sync; release frees ctx (may be NULL),
 * at keyring_free. */
struct keyring_store {
	void *ctx;
	int (*put)(void *ctx, const char *kid,
		   const unsigned char image[KEYRING_KEYFILE_BYTES], char *err,
		   size_t err_size);
	int (*remove)(void *ctx, const char *kid, char *err, size_t err_size);
	int (*sync)(void *ctx, char *err, size_t err_size);
	void (*release)(void *ctx);
};

/* An empty keyring over store (copied; on success its ctx is the
 * keyring's, released by keyring_free).  kek NULL: verify and
 * publish only (signing and rotation return kek_required); the metadata
 * of each key is then not authenticated. */
int keyring_new(const struct keyring_kek *kek,
		const struct keyring_store *store, struct keyring **out);

/* Is s[0..len) a kid (KEYRING_KID_BYTES base64url characters)? */
bool keyring_kid_valid(const char *s, size_t len);

/* Add the key file image buf[0..len) read from path (named in messages),
 * whose name says it holds kid: keyring_keyfile_decode's checks, then
 * file_name_mismatch when the kid inside differs (two files swapped);
 * too_many_keys past KEYRING_KEYS_MAX. */
int keyring_add_image(struct keyring *kr, const char *kid, const char *path,
		      const void *buf, size_t len, char *err, size_t err_size);
void keyring_free(struct keyring *kr);

/*
 * Re-seals, under kek, every key of kr not already sealed by it (each
 * file replaced whole through the store), then makes kek the keyring's
 * (borrowed, as at keyring_new; the caller frees the previous one after
 * this returns 0).  The keyring's current KEK must open every file (a
 * token's KEK opens those of every version still in the token).  For the
 * KEK's rotation inside a token without a restart (issue 19).  On a
 * failure the files re-sealed so far stay so and the keyring keeps its
 * KEK; calling it again finishes.  *n_resealed (may be NULL) gets how
 * many were re-sealed.
 */
int keyring_rekey(struct keyring *kr, const struct keyring_kek *kek,
		  size_t *n_resealed, char *err, size_t err_size);

/* Internal, for log/keyfile.c: one sentence into err[0..err_size) (err
 * NULL or err_size 0: nothing). */
__attribute__((format(printf, 3, 4))) void
keyring__say(char *err, size_t err_size, const char *fmt, ...);

/*
 * The keys, newest first: by activate_at, then created_at, descending,
 * then kid ascending (the JWKS order).  keyring_key_at returns NULL past
 * the end; the pointer is valid until the next rotate, prune or free.
 */
size_t keyring_count(const struct keyring *kr);
const struct keyring_key *keyring_key_at(const struct keyring *kr, size_t i);

/* How many of the keys were generated in a token (key file version 3),
 * and whether the key that signs at now is one (*current may be NULL).
 * Takes the keyring's lock. */
size_t keyring_count_in_token(const struct keyring *kr, int64_t now,
			      bool *current);

/* Copies of the keys (keyring_key_at order) and of the current signer,
 * taken under the keyring's lock: what threads other than the one that
 * rotates should use.  keys_copy returns how many; current_copy 0 or -1
 * when no key signs at now. */
size_t keyring_keys_copy(const struct keyring *kr, struct keyring_key *out,
			 size_t max);
int keyring_current_copy(const struct keyring *kr, int64_t now,
			 struct keyring_key *out);

/* The newest key that signs at now, or NULL. */
const struct keyring_key *keyring_current_signer(const struct keyring *kr,
						 int64_t now);

/*
 * The public key of kid if it is known and verifies at now (now <
 * expires_at): unknown_kid, key_expired.  out->kid is set.
 */
int keyring_verifier(const struct keyring *kr, const char *kid, int64_t now,
		     struct jose_pubkey *out);

/* A jose_key_lookup_fn: ctx is a struct keyring_verify_ctx. */
struct keyring_verify_ctx {
	const struct keyring *kr;
	int64_t now;
};
int keyring_lookup_verifier(void *ctx, const char *kid,
			    struct jose_pubkey *out);

/* No key signs at now, or the current one has signed for period_s or
 * more (activate_at + period_s <= now).  period_s > 0. */
bool keyring_due_for_rotation(const struct keyring *kr, int64_t now,
			      int64_t period_s);

/*
 * What one rotation changed: the public data to journal (see the top of
 * this file).  retired[i] are the keys' new metadata.
 */
struct keyring_rotation {
	struct keyring_key created;
	size_t n_retired;
	struct keyring_key retired[KEYRING_KEYS_MAX];
	/* Keys removed to make room (expired ones, then the oldest retired
	 * ones): their kids. */
	size_t n_dropped;
	char dropped[KEYRING_KEYS_MAX][KEYRING_KID_BYTES + 1];
};

/*
 * Creates a key that signs from now (activate_at = created_at = now,
 * retire and expiry KEYRING_NEVER) and writes its file; then rewrites
 * each key that signs at now with retire_at = now and expires_at =
 * min(expires_at, now + overlap_s).  The new file is durable before any
 * old one changes, so a crash in between leaves two signing keys (the
 * newer is used; the next rotation retires both), never none.
 * overlap_s in [0, KEYRING_OVERLAP_MAX_S].  Refuses (bad_time) a now
 * earlier than any key's created_at (a clock gone backwards),
 * kek_required.  A full keyring (KEYRING_KEYS_MAX keys) makes room first,
 * so an emergency rotation is always possible: it removes the expired
 * keys, then, while still full, the retired key that retired first (it
 * stops verifying what it signed: the price of rotating 64 times within
 * one overlap); rot->dropped names them.  too_many_keys only when no key
 * can go (every one signs or is yet to sign).
 * rot may be NULL.  On failure the keyring in memory is unchanged for
 * every file not yet rewritten, and matches the disk.
 */
int keyring_rotate(struct keyring *kr, int64_t now, int64_t overlap_s,
		   struct keyring_rotation *rot, char *err, size_t err_size);

/* rot->dropped as "kid,kid,..." (NUL-terminated, cut to out_size; 64
 * kids take KEYRING_KEYS_MAX * 44 bytes); "" when none.  Returns the
 * number of kids. */
size_t keyring_rotation_dropped_text(const struct keyring_rotation *rot,
				     char *out, size_t out_size);

/*
 * Removes the files (and entries) of keys expired at now (expires_at <=
 * now), then fsyncs the directory.  *n_pruned (may be NULL) gets how
 * many.  A file already gone counts as removed.
 */
int keyring_prune(struct keyring *kr, int64_t now, size_t *n_pruned, char *err,
		  size_t err_size);

/*
 * The JWKS of the keys that verify at now, in keyring_key_at order:
 * {"keys":[{"kty":"OKP","crv":"Ed25519","x":"...","kid":"...","use":"sig",
 * "alg":"EdDSA"},...]}, no whitespace, NUL-terminated into out;
 * *out_len (may be NULL) gets its length.  KEYRING_JWKS_BYTES_MAX + 1
 * always suffices (no_space otherwise).
 */
int keyring_jwks(const struct keyring *kr, int64_t now, char *out,
		 size_t out_size, size_t *out_len);

/*
 * Signs payload[0..len) with the current signer into a compact JWS whose
 * header is {"alg":"EdDSA","kid":...,"typ":typ} (typ NULL: none).
 * no_signing_key, kek_required, signing_failed (jose's refusal of the
 * payload or typ), or the decoding errors of the key's sealed image.
 * The caller keeps the token's lifetime within the rotation overlap.
 */
/* A C2SP signed-note signer named `name` holding the current signer's
 * private key (for signed checkpoints).  The caller must
 * note_signer_clear(out) as soon as it has signed.  Returns 0, or
 * KEYRING_E_NO_KEK, KEYRING_E_NO_SIGNING_KEY, KEYRING_E_INVALID_ARGUMENT
 * (a name note keys cannot have), or a decryption error. */
struct note_signer;
int keyring_note_signer(const struct keyring *kr, int64_t now, const char *name,
			size_t name_len, struct note_signer *out);

/* Signers the same way for the keys that no longer sign but still verify
 * at now (retire_at <= now < expires_at), newest first, at most max, into
 * out[0..*n_out): a checkpoint signed by them too lets a witness that
 * trusts an older key follow the rotation (docs/audit.md, "Witnesses
 * through a rotation").  A key rotated out with overlap 0 verifies no
 * more, so it never signs again.  The caller clears each signer. */
int keyring_note_signers_retired(const struct keyring *kr, int64_t now,
				 const char *name, size_t name_len,
				 struct note_signer *out, size_t max,
				 size_t *n_out);

int keyring_sign_jws(const struct keyring *kr, int64_t now, const char *typ,
		     const void *payload, size_t len, char *out,
		     size_t out_size, size_t *out_len);

/* The same for a JWT whose claims (a JSON object) jansson serialises
 * compactly with sorted keys (jose_jwt_sign). */
int keyring_sign_jwt(const struct keyring *kr, int64_t now, const char *typ,
		     const json_t *claims, char *out, size_t out_size,
		     size_t *out_len);

/* ---- internal, for tests and fuzzing ---------------------------------- */

/*
 * Seals meta (kid, times, public key; kek_id is ignored and set from kek)
 * and seed with the given nonce into a key file image.  The kid must be
 * the thumbprint of the seed's public key.  Deterministic for a given
 * nonce, so the fuzzer can check an accepted file is genuine.
 */
int keyring__keyfile_seal(const struct keyring_key *meta,
			  const unsigned char seed[JOSE_ED25519_SEED_BYTES],
			  const unsigned char nonce[24],
			  const struct keyring_kek *kek,
			  unsigned char out[KEYRING_KEYFILE_BYTES]);

/* keyring_keyfile_decode with a KEK that also returns the seed into seed
 * (caller's memory, which the caller wipes). */
int keyring__keyfile_open(const void *buf, size_t len,
			  const struct keyring_kek *kek,
			  struct keyring_key *meta,
			  unsigned char seed[JOSE_ED25519_SEED_BYTES],
			  char *err, size_t err_size);

#endif
