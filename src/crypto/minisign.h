/*
 * minisign.h - verification of minisign signatures (the format of the
 * minisign tool, Debian's `minisign`), with which tpwallet's release
 * artifacts are signed (issue 21, docs/releases.md).
 *
 * A public key file: an optional "untrusted comment: ..." line, then
 * the base64 of "Ed", an 8-byte key id and the 32-byte Ed25519 key.  A
 * signature file: "untrusted comment: ...", the base64 of "ED", the key
 * id and a 64-byte Ed25519 signature of the file's BLAKE2b-512 hash,
 * "trusted comment: TEXT", and the base64 of a 64-byte signature of the
 * first signature followed by TEXT (so the trusted comment cannot be
 * changed).  Only the prehashed form ("ED", minisign's default) is
 * accepted; the legacy "Ed" form signs the whole file and is refused
 * with its own error.  Pure: the caller hashes the file
 * (crypto_generichash, 64 bytes, no key).
 */
#ifndef TPW_CRYPTO_MINISIGN_H
#define TPW_CRYPTO_MINISIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MINISIGN_FILE_BYTES_MAX 4096u /* either file, at most */
#define MINISIGN_COMMENT_BYTES	1024u /* a trusted comment, at most */
#define MINISIGN_HASH_BYTES	64u   /* BLAKE2b-512 */

struct minisign_pubkey {
	uint8_t key_id[8];
	uint8_t pk[32];
};

struct minisign_sig {
	uint8_t key_id[8];
	uint8_t sig[64];
	uint8_t global_sig[64];
	char trusted[MINISIGN_COMMENT_BYTES + 1]; /* the trusted comment */
};

#define MINISIGN_ERRORS(X)                                                     \
	X(OK, 0, "verified")                                                   \
	X(MALFORMED_KEY, -1301, "the public key file is not a minisign key")   \
	X(MALFORMED_SIG, -1302,                                                \
	  "the signature file is not a minisign signature")                    \
	X(LEGACY, -1303,                                                       \
	  "a legacy (not prehashed) signature: sign without -l")               \
	X(OTHER_KEY, -1304,                                                    \
	  "the signature is by another key (key id differs)")                  \
	X(BAD_SIGNATURE, -1305,                                                \
	  "the signature does not match the file (changed, or not this one)")  \
	X(BAD_COMMENT, -1306, "the trusted comment was changed after signing")

/* Codes apart from -errno values, so a caller can tell the two apart. */
enum minisign_result {
#define MINISIGN_ENUM_(name, code, text) MINISIGN_##name = code,
	MINISIGN_ERRORS(MINISIGN_ENUM_)
#undef MINISIGN_ENUM_
};

const char *minisign_strerror(int r);
/* The key id as minisign prints it (16 upper-case hex digits, the 8
 * bytes read as a little-endian number). */
void minisign_key_id_hex(const uint8_t id[8], char out[17]);

int minisign_parse_pubkey(const char *text, size_t len,
			  struct minisign_pubkey *out);
int minisign_parse_sig(const char *text, size_t len, struct minisign_sig *out);
/* hash: BLAKE2b-512 of the signed file. */
int minisign_verify(const struct minisign_pubkey *pk,
		    const struct minisign_sig *sig,
		    const uint8_t hash[MINISIGN_HASH_BYTES]);

#endif
