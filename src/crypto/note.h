/*
 * note.h - C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys,
 * and the transparency-log checkpoint they carry (c2sp.org/tlog-checkpoint).
 *
 * A signed note is a text, a blank line, and signature lines:
 *
 *   <text ending in "\n">
 *   "\n"
 *   "— <key name> <base64(key id, 4 bytes big-endian || signature)>\n" ...
 *
 * (the dash is U+2014, em dash).  The text is everything up to the LAST
 * blank line.  An Ed25519 key is named and identified by
 *   key id = SHA-256(name || "\n" || 0x01 || 32-byte public key)[:4]
 * and travels as text:
 *   verifier  "<name>+<8 hex key id>+<base64(0x01 || public key)>"
 *   signer    "PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>"
 * (the format of Go's golang.org/x/mod/sumdb/note).
 *
 * Verification (note_open) follows the spec: signatures of unknown keys
 * (name and id not both matching a given verifier) are skipped; a known
 * key's signature that fails is an error for the whole note; at least one
 * known signature must verify.  Stricter than Go's package on purpose:
 * a note naming the same (name, key id) twice is refused rather than
 * de-duplicated, base64 must be canonical, and a failing known signature
 * is always fatal.
 *
 * Limits (every input is bounded before it is looked at):
 *   NOTE_BYTES_MAX      a whole note (16 post-quantum-sized signatures fit)
 *   NOTE_SIGS_MAX       signature lines in a note (the spec asks >= 16)
 *   NOTE_LINE_BYTES_MAX any one line, text or signature
 *   NOTE_NAME_BYTES_MAX a key name
 *   NOTE_VERIFIERS_MAX  verifier keys given to one note_open
 *
 * Ownership: parsed structures hold copies (names, keys) except where a
 * field says it points into the caller's input, valid as long as that
 * input is.  A note_signer holds a secret key: clear it with
 * note_signer_clear (sodium_memzero) when done.  Functions that write
 * text write into a caller buffer of stated capacity and never past it.
 *
 * Every function returns 0 or a negative code from NOTE_ERRORS (below
 * -1100, distinct from -errno and from merkle.h's codes).  libsodium must
 * be initialised (sodium_init) before note_keygen.
 */
#ifndef TPW_CRYPTO_NOTE_H
#define TPW_CRYPTO_NOTE_H

#include "core/types.h"

#define NOTE_BYTES_MAX	    (128 * 1024)
#define NOTE_SIGS_MAX	    32
#define NOTE_LINE_BYTES_MAX 8192
#define NOTE_NAME_BYTES_MAX 256
#define NOTE_VERIFIERS_MAX  64

/* Text lengths, NUL excluded.  A verifier key: name, "+", 8 hex, "+",
 * 44 base64; a signer key adds "PRIVATE+KEY+". */
#define NOTE_VERIFIER_KEY_BYTES_MAX (NOTE_NAME_BYTES_MAX + 1 + 8 + 1 + 44)
#define NOTE_SIGNER_KEY_BYTES_MAX   (12 + NOTE_VERIFIER_KEY_BYTES_MAX)

#define NOTE_ERRORS(X)                                                         \
	X(MALFORMED, -1101, "malformed_note")                                  \
	X(TOO_LARGE, -1102, "note_too_large")                                  \
	X(TOO_MANY_SIGS, -1103, "too_many_signatures")                         \
	X(LINE_TOO_LONG, -1104, "line_too_long")                               \
	X(BAD_UTF8, -1105, "invalid_utf8")                                     \
	X(CONTROL_CHAR, -1106, "control_character")                            \
	X(BAD_NAME, -1107, "invalid_key_name")                                 \
	X(BAD_BASE64, -1108, "invalid_base64")                                 \
	X(BAD_KEY, -1109, "malformed_key")                                     \
	X(KEY_ID_MISMATCH, -1110, "key_id_mismatch")                           \
	X(UNKNOWN_ALGORITHM, -1111, "unknown_key_algorithm")                   \
	X(NO_FINAL_NEWLINE, -1112, "missing_final_newline")                    \
	X(NO_SIGNATURES, -1113, "no_signature_lines")                          \
	X(DUPLICATE_SIG, -1114, "duplicate_signature")                         \
	X(BAD_SIGNATURE, -1115, "invalid_signature")                           \
	X(UNVERIFIED, -1116, "no_verifiable_signature")                        \
	X(AMBIGUOUS_KEY, -1117, "ambiguous_key")                               \
	X(TOO_MANY_KEYS, -1118, "too_many_verifiers")                          \
	X(NO_SPACE, -1119, "output_buffer_too_small")                          \
	X(BAD_ORIGIN, -1120, "invalid_checkpoint_origin")                      \
	X(BAD_SIZE, -1121, "invalid_checkpoint_size")                          \
	X(BAD_ROOT, -1122, "invalid_checkpoint_root")                          \
	X(BAD_EXTENSION, -1123, "invalid_checkpoint_extension")                \
	X(SIGN_FAILED, -1124, "signing_failed")

enum note_error {
#define NOTE_ENUM_(name, code, text) NOTE_E_##name = code,
	NOTE_ERRORS(NOTE_ENUM_)
#undef NOTE_ENUM_
};

/* The stable name of a code from this module, or "unknown". */
const char *note_strerror(int code);

/* ---- keys ------------------------------------------------------------- */

struct note_verifier {
	char name[NOTE_NAME_BYTES_MAX + 1]; /* NUL-terminated */
	size_t name_len;
	u32 key_id;
	u8 public_key[32];
};

/* A signature made outside this process (a key in a PKCS#11 token):
 * the Ed25519 signature of msg[0..len) by the key ref names; 0 or
 * nonzero for a refusal (ctx keeps the reason). */
typedef int (*note_sign_fn)(void *ctx, const u8 ref[32], const u8 *msg,
			    size_t len, u8 sig[64]);

struct note_signer {
	struct note_verifier pub;
	u8 secret_key[64]; /* libsodium's seed || public key */
	/* NULL: secret_key signs.  Else sign(sign_ctx, sign_ref, ...) does
	 * and secret_key is zero (note_signer_external). */
	note_sign_fn sign;
	void *sign_ctx;
	u8 sign_ref[32];
};

/* Is name[0..len) a valid key name: non-empty, at most
 * NOTE_NAME_BYTES_MAX bytes, well-formed UTF-8, no Unicode space, no '+',
 * no control character? */
bool note_name_valid(const char *name, size_t len);

/* The key id of an Ed25519 public key under name. */
u32 note_key_id(const char *name, size_t len, const u8 public_key[32]);
/* The same for any key type byte (cosig.c uses 0x04): the first 4 bytes,
 * big-endian, of SHA-256(name || "\n" || type || public key). */
u32 note__key_id_typed(const char *name, size_t len, u8 type,
		       const u8 public_key[32]);

/* Parse a verifier key string (whole of s[0..len)).  Returns 0,
 * NOTE_E_BAD_KEY (shape), NOTE_E_BAD_NAME, NOTE_E_BAD_BASE64,
 * NOTE_E_UNKNOWN_ALGORITHM (not 0x01) or NOTE_E_KEY_ID_MISMATCH. */
int note_verifier_parse(const char *s, size_t len, struct note_verifier *out);

/* The same for a signer key string; the key id is checked against the
 * public key derived from the seed. */
int note_signer_parse(const char *s, size_t len, struct note_signer *out);

/* A signer from a 32-byte Ed25519 seed.  0 or NOTE_E_BAD_NAME. */
int note_signer_from_seed(const char *name, size_t len, const u8 seed[32],
			  struct note_signer *out);

/* A signer whose key is held elsewhere: public_key, and sign (which
 * borrows ctx, to outlive the signer) with ref.  0 or NOTE_E_BAD_NAME. */
int note_signer_external(const char *name, size_t len, const u8 public_key[32],
			 note_sign_fn sign, void *ctx, const u8 ref[32],
			 struct note_signer *out);

/* A fresh random key (randombytes).  0 or NOTE_E_BAD_NAME. */
int note_keygen(const char *name, size_t len, struct note_signer *out);

void note_signer_clear(struct note_signer *s);

/* Key strings into buf[0..cap), NUL-terminated; *len_out (may be NULL)
 * gets the length.  0 or NOTE_E_NO_SPACE. */
int note_verifier_format(const struct note_verifier *v, char *buf, size_t cap,
			 size_t *len_out);
int note_signer_format(const struct note_signer *s, char *buf, size_t cap,
		       size_t *len_out);

/* ---- notes ------------------------------------------------------------ */

/*
 * Sign text[0..len) with each of signers[0..n) and write the note
 * (text, blank line, one signature line per signer, in order) into
 * buf[0..cap), NUL-terminated.  The text must be a valid note text:
 * non-empty, ending in "\n", valid UTF-8 without control characters but
 * newline, lines within NOTE_LINE_BYTES_MAX, and the whole note within
 * NOTE_BYTES_MAX.  1 <= n <= NOTE_SIGS_MAX, distinct keys.
 */
int note_sign(const char *text, size_t len,
	      const struct note_signer *const *signers, size_t n, char *buf,
	      size_t cap, size_t *len_out);

struct note_opened {
	const char *text; /* points into the note given to note_open */
	size_t text_len;  /* including the final "\n" */
	u32 sigs;	  /* signature lines in the note */
	u32 verified;	  /* of which verified by a given key */
	u64 verified_by;  /* bit i: verifiers[i] signed */
};

/*
 * Check a signed note msg[0..len) against verifiers[0..n) (n <=
 * NOTE_VERIFIERS_MAX).  Returns 0 when at least one signature of a given
 * key verifies and no signature of a given key fails; then *out tells the
 * text and who signed.  Errors: the shape and limit codes, NOTE_E_BAD_NAME
 * and NOTE_E_BAD_BASE64 for a signature line, NOTE_E_DUPLICATE_SIG,
 * NOTE_E_AMBIGUOUS_KEY (two verifiers with the signer's name and id),
 * NOTE_E_BAD_SIGNATURE (a known key's signature failed) or
 * NOTE_E_UNVERIFIED (no known key signed).
 */
int note_open(const char *msg, size_t len,
	      const struct note_verifier *verifiers, size_t n,
	      struct note_opened *out);

/* ---- checkpoints ------------------------------------------------------ */

#define CHECKPOINT_ORIGIN_BYTES_MAX 256
#define CHECKPOINT_EXTENSIONS_MAX   16

struct checkpoint {
	char origin[CHECKPOINT_ORIGIN_BYTES_MAX + 1]; /* NUL-terminated */
	size_t origin_len;
	u64 size;
	u8 root[32];
	/* Extension lines, each ending in "\n": points into the parsed text
	 * (NULL, 0 when none); copied when formatting. */
	const char *extensions;
	size_t extensions_len;
	unsigned nextensions;
};

/*
 * Parse a checkpoint body (a note's text) strictly: a non-empty origin
 * line (any text; the spec lets logs choose), the size in canonical
 * decimal (no sign, no leading zero but "0", fits u64), the root as
 * canonical base64 of exactly 32 bytes, then up to
 * CHECKPOINT_EXTENSIONS_MAX non-empty extension lines; every line ends in
 * "\n".  Returns 0, NOTE_E_BAD_ORIGIN, NOTE_E_BAD_SIZE, NOTE_E_BAD_ROOT,
 * NOTE_E_BAD_EXTENSION or a text-shape code.
 */
int checkpoint_parse(const char *text, size_t len, struct checkpoint *out);

/* Write the body of c into buf[0..cap), NUL-terminated.  The origin
 * written must also be a valid key name (no spaces, no '+'), as the log's
 * signing key is named after it.  0, NOTE_E_BAD_ORIGIN,
 * NOTE_E_BAD_EXTENSION or NOTE_E_NO_SPACE. */
int checkpoint_format(const struct checkpoint *c, char *buf, size_t cap,
		      size_t *len_out);

#endif
