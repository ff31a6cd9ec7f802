/*
 * cosig.h - C2SP tlog-cosignature/v1 (Ed25519) cosignatures over
 * checkpoints, and the request body of the C2SP tlog-witness
 * add-checkpoint call.  Pure: no I/O, no clock (the caller passes the
 * time), used by `tpwallet witness` and by whoever checks a witness.
 *
 * A cosignature is a signed-note signature line
 *
 *   "— <witness name> <base64(key id || timestamp || signature)>\n"
 *
 * where key id = SHA-256(name || "\n" || 0x04 || public key)[:4]
 * (4 bytes, big-endian), timestamp is 8 bytes big-endian POSIX seconds
 * (at most 2^63 - 1) and signature is Ed25519 over
 *
 *   "cosignature/v1\ntime <timestamp in decimal>\n" || checkpoint body
 *
 * (the body is the note text, final newline included, no signatures).
 * The same Ed25519 key as a signed-note key (type 0x01) gets a different
 * key id here (type 0x04), so a cosignature can never pass for a log
 * signature or the reverse.  A cosigner's verifier key travels as
 * "<name>+<8 hex key id>+<base64(0x04 || public key)>".
 *
 * The add-checkpoint body (c2sp.org/tlog-witness) is
 *
 *   "old <size>\n" (canonical decimal), at most COSIG_PROOF_LINES_MAX
 *   lines each the canonical base64 of one 32-byte hash, "\n", then the
 *   signed checkpoint note (not parsed here: see note_open).
 *
 * Limits: a checkpoint body is at most NOTE_BYTES_MAX bytes; a request
 * body at most COSIG_REQUEST_BYTES_MAX.  Ownership: cosig_request_parse
 * leaves pointers into the caller's body, valid as long as it is; every
 * writer writes into a caller buffer of stated capacity, NUL-terminated.
 * Every function returns 0 or a negative code from COSIG_ERRORS (from
 * -1301, distinct from note.h's and merkle.h's) or from note.h.
 */
#ifndef TPW_CRYPTO_COSIG_H
#define TPW_CRYPTO_COSIG_H

#include "core/types.h"
#include "crypto/note.h"

#define COSIG_ALG_ED25519 0x04
/* key id (4) || timestamp (8) || Ed25519 signature (64) */
#define COSIG_BLOB_BYTES 76
/* "— " (4 bytes) name " " base64(76) = 104 "\n" */
#define COSIG_LINE_BYTES_MAX (4 + NOTE_NAME_BYTES_MAX + 1 + 104 + 1)
#define COSIG_TIMESTAMP_MAX  ((u64)INT64_MAX)
/* The spec: a client MUST NOT send more than 63 proof lines. */
#define COSIG_PROOF_LINES_MAX	63
#define COSIG_REQUEST_BYTES_MAX (64 * 1024)
/* A cosigner verifier key string, NUL excluded. */
#define COSIG_VERIFIER_KEY_BYTES_MAX NOTE_VERIFIER_KEY_BYTES_MAX

#define COSIG_ERRORS(X)                                                        \
	X(BAD_LINE, -1301, "malformed_cosignature_line")                       \
	X(NAME_MISMATCH, -1302, "cosigner_name_mismatch")                      \
	X(KEY_ID_MISMATCH, -1303, "cosigner_key_id_mismatch")                  \
	X(BAD_TIMESTAMP, -1304, "cosignature_timestamp_out_of_range")          \
	X(BAD_SIGNATURE, -1305, "invalid_cosignature")                         \
	X(TOO_LARGE, -1306, "checkpoint_too_large")                            \
	X(NOMEM, -1307, "out_of_memory")                                       \
	X(BAD_OLD_LINE, -1308, "malformed_old_size_line")                      \
	X(BAD_PROOF_LINE, -1309, "malformed_proof_line")                       \
	X(TOO_MANY_PROOF_LINES, -1310, "too_many_proof_lines")                 \
	X(NO_CHECKPOINT, -1311, "missing_checkpoint")                          \
	X(REQUEST_TOO_LARGE, -1312, "request_too_large")                       \
	X(NO_SPACE, -1313, "output_buffer_too_small")

enum cosig_error {
#define COSIG_ENUM_(name, code, text) COSIG_E_##name = code,
	COSIG_ERRORS(COSIG_ENUM_)
#undef COSIG_ENUM_
};

/* The stable name of a code from this module, or "unknown". */
const char *cosig_strerror(int code);

/* The cosignature key id of an Ed25519 public key under name. */
u32 cosig_key_id(const char *name, size_t len, const u8 public_key[32]);

/* The cosigner verifier key string of v's name and public key (v's own
 * key_id, a signed-note id, is ignored).  0 or COSIG_E_NO_SPACE. */
int cosig_verifier_format(const struct note_verifier *v, char *buf, size_t cap,
			  size_t *len_out);

/*
 * Cosign body[0..len) (a checkpoint's note text) with s at timestamp and
 * write one signature line, "\n" included, into buf[0..cap).  Returns 0,
 * COSIG_E_BAD_TIMESTAMP, COSIG_E_TOO_LARGE (len > NOTE_BYTES_MAX or 0),
 * COSIG_E_NOMEM (the message is built in a heap buffer, freed before
 * return) or COSIG_E_NO_SPACE.
 */
int cosig_sign(const struct note_signer *s, u64 timestamp, const char *body,
	       size_t len, char *buf, size_t cap, size_t *len_out);

/*
 * Check one cosignature line line[0..line_len) (with or without its final
 * "\n") over body[0..len) against the cosigner (v's name and public key).
 * Returns 0 and the timestamp in *timestamp_out (may be NULL), or
 * COSIG_E_BAD_LINE, COSIG_E_NAME_MISMATCH, COSIG_E_KEY_ID_MISMATCH,
 * COSIG_E_BAD_TIMESTAMP, COSIG_E_TOO_LARGE, COSIG_E_NOMEM or
 * COSIG_E_BAD_SIGNATURE.
 */
int cosig_verify(const struct note_verifier *v, const char *body, size_t len,
		 const char *line, size_t line_len, u64 *timestamp_out);

struct cosig_request {
	u64 old_size;
	u8 proof[COSIG_PROOF_LINES_MAX][32];
	size_t nproof;
	const char *note; /* points into the body; non-empty */
	size_t note_len;
};

/*
 * Parse an add-checkpoint request body[0..len) strictly.  Returns 0,
 * COSIG_E_REQUEST_TOO_LARGE, COSIG_E_BAD_OLD_LINE, COSIG_E_BAD_PROOF_LINE,
 * COSIG_E_TOO_MANY_PROOF_LINES or COSIG_E_NO_CHECKPOINT.
 */
int cosig_request_parse(const char *body, size_t len,
			struct cosig_request *out);

#endif
