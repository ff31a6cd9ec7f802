/*
 * keyring.c - the server's versioned Ed25519 signing keys, sealed at rest
 * with XChaCha20-Poly1305 under a key-encryption key, rotated with an
 * overlap window and published as a JWKS.  The format, the order of the
 * checks and the rules are in keyring.h; the operator's guide is
 * docs/keys.md.
 *
 * Secrets in this file are only ever in sodium_malloc'd memory: the KEK
 * (PROT_NONE between uses), the subkeys derived from it, and a decrypted
 * seed for the length of one signature or one re-seal.  Each is freed
 * (and so wiped) on the one way out of the function that made it.  Error
 * messages name paths, offsets, modes and kids, never bytes of a key.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/b64url.h"
#include "crypto/keyring.h"
#include "crypto/note.h"

#include "banned.h"

/* Offsets of the key file (keyring.h). */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 6,
	OFF_ALG = 8,
	OFF_RESERVED = 10,
	OFF_CREATED = 16,
	OFF_ACTIVATE = 24,
	OFF_RETIRE = 32,
	OFF_EXPIRES = 40,
	OFF_PUB = 48,
	OFF_KID = 80,
	OFF_KEK_ID = 128,
	OFF_MAC = 144,
	OFF_NONCE = 176,
	OFF_CT = 200,
	OFF_TAG = 232,
	KID_FIELD_BYTES = 48,
	MAC_BYTES = 32,
	AD_BYTES = OFF_NONCE,
	ALG_ED25519 = 1,
};

_Static_assert(OFF_TAG + crypto_aead_xchacha20poly1305_ietf_ABYTES ==
		       KEYRING_KEYFILE_BYTES,
	       "key file layout");
_Static_assert(OFF_CT - OFF_NONCE ==
		       crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	       "nonce size");
_Static_assert(OFF_MAC == KEYRING_KEYFILE_PUBLIC_BYTES, "public part");
_Static_assert(KEYRING_KEK_BYTES == crypto_kdf_KEYBYTES, "KEK is a kdf key");
_Static_assert(KEYRING_KID_BYTES + 1 == JOSE_B64_32_BYTES, "kid size");

static const char magic[6] = {'T', 'P', 'W', 'K', 'E', 'Y'};
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = {'t', 'p', 'w', 'k',
							  'e', 'y', 'r', 'g'};
enum { SUBKEY_AEAD = 1, SUBKEY_MAC = 2, SUBKEY_KEK_ID = 3, SUBKEY_SECRET = 4 };

struct keyring_kek {
	unsigned char *key; /* sodium_malloc; PROT_NONE between uses; NULL
			       for a KEK in a token */
	unsigned char id[KEYRING_KEK_ID_BYTES];
	struct keyring_kek_provider prov; /* wrap NULL: not in a token */
};

struct subkeys {
	unsigned char aead[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char mac[crypto_generichash_KEYBYTES];
};

struct entry {
	struct keyring_key key;
	unsigned char image[KEYRING_KEYFILE_BYTES]; /* as on disk */
};

struct keyring {
	/* Serialises rotation and pruning against readers and signers
	 * (HTTP threads, the audit thread); recursive, since public
	 * functions call each other. */
	pthread_mutex_t lock;
	struct keyring_store store; /* where the key files live (no I/O here) */
	const struct keyring_kek *kek; /* borrowed; NULL: verify only */
	size_t n;
	struct entry e[KEYRING_KEYS_MAX];
};

const char *keyring_strerror(int code)
{
	switch (code) {
#define KEYRING_NAME_(name, c, text)                                           \
	case c: return text;
		KEYRING_ERRORS(KEYRING_NAME_)
#undef KEYRING_NAME_
	default: return "unknown";
	}
}

void keyring__say(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;

	if (!err || err_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* ---- small helpers ------------------------------------------------------ */

static void put_u16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static unsigned get_u16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void put_i64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;

	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)u;
		u >>= 8;
	}
}

static int64_t get_i64(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool kid_valid(const char *s, size_t len)
{
	if (len != KEYRING_KID_BYTES)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!b64url_char(s[i]))
			return false;
	return true;
}

static bool time_valid(int64_t t, bool never_ok)
{
	return (t >= 0 && t <= JOSE_NUMERIC_DATE_MAX) ||
	       (never_ok && t == KEYRING_NEVER);
}

static bool signs_at(const struct keyring_key *k, int64_t now)
{
	return k->activate_at <= now && now < k->retire_at &&
	       now < k->expires_at;
}

/* Reads up to cap bytes (stops at EOF); *n gets how many.  -errno. */

/* ---- the KEK ------------------------------------------------------------ */

/* Derives subkey id of len bytes; the KEK is readable only meanwhile. */
static int kek_derive(const struct keyring_kek *kek, uint64_t id,
		      unsigned char *out, size_t len)
{
	int ret;

	if (sodium_mprotect_readonly(kek->key) != 0)
		return KEYRING_E_INTERNAL;
	ret = crypto_kdf_derive_from_key(out, len, id, kdf_context, kek->key);
	sodium_mprotect_noaccess(kek->key);
	return ret == 0 ? 0 : KEYRING_E_INTERNAL;
}

static int kek_alloc(struct keyring_kek **out)
{
	struct keyring_kek *kek = calloc(1, sizeof(*kek));

	*out = NULL;
	if (!kek)
		return KEYRING_E_NO_MEMORY;
	kek->key = sodium_malloc(KEYRING_KEK_BYTES);
	if (!kek->key) {
		free(kek);
		return KEYRING_E_NO_MEMORY;
	}
	*out = kek;
	return 0;
}

/* kek->key holds the bytes: compute the id and lock the key away. */
static int kek_seal_in(struct keyring_kek *kek)
{
	if (sodium_mprotect_noaccess(kek->key) != 0)
		return KEYRING_E_INTERNAL;
	return kek_derive(kek, SUBKEY_KEK_ID, kek->id, sizeof(kek->id));
}

void keyring_kek_free(struct keyring_kek *kek)
{
	if (!kek)
		return;
	if (kek->prov.release)
		kek->prov.release(kek->prov.ctx);
	sodium_free(kek->key); /* makes it writable, wipes, unmaps */
	sodium_memzero(kek, sizeof(*kek));
	free(kek);
}

int keyring_kek_from_provider(const struct keyring_kek_provider *p,
			      const unsigned char id[KEYRING_KEK_ID_BYTES],
			      struct keyring_kek **out)
{
	struct keyring_kek *kek;

	if (!p || !p->wrap || !p->unwrap || !id || !out)
		return KEYRING_E_INVALID_ARGUMENT;
	kek = calloc(1, sizeof(*kek));
	if (!kek)
		return KEYRING_E_NO_MEMORY;
	kek->prov = *p;
	memcpy(kek->id, id, KEYRING_KEK_ID_BYTES);
	*out = kek;
	return 0;
}

bool keyring_kek_in_token(const struct keyring_kek *kek)
{
	return kek && kek->prov.wrap;
}

bool keyring_kek_generates_in_token(const struct keyring_kek *kek)
{
	return keyring_kek_in_token(kek) && kek->prov.generate_in_token &&
	       kek->prov.key_generate;
}

bool keyring_image_in_token(const unsigned char image[KEYRING_KEYFILE_BYTES])
{
	return get_u16(image + OFF_VERSION) == KEYRING_KEYFILE_VERSION_IN_TOKEN;
}

int keyring_image_version(const unsigned char *image, size_t len)
{
	if (len < OFF_ALG || memcmp(image + OFF_MAGIC, magic, sizeof(magic)))
		return -1;
	return get_u16(image + OFF_VERSION);
}

static unsigned kek_file_version(const struct keyring_kek *kek)
{
	return keyring_kek_in_token(kek) ? KEYRING_KEYFILE_VERSION_TOKEN
					 : KEYRING_KEYFILE_VERSION;
}

void keyring_kek_id(const struct keyring_kek *kek,
		    unsigned char out[KEYRING_KEK_ID_BYTES])
{
	memcpy(out, kek->id, KEYRING_KEK_ID_BYTES);
}

int keyring_kek_parse(const char *text, size_t len, struct keyring_kek **out,
		      char *err, size_t err_size)
{
	struct keyring_kek *kek = NULL;
	size_t n = 0;
	int ret;

	if (!out)
		return KEYRING_E_INVALID_ARGUMENT;
	*out = NULL;
	if (!text)
		return KEYRING_E_INVALID_ARGUMENT;
	if (len != KEYRING_KEK_TEXT_BYTES) {
		keyring__say(err, err_size,
			     "KEK must be %d base64url characters (32 bytes); "
			     "got %zu "
			     "characters",
			     KEYRING_KEK_TEXT_BYTES, len);
		return KEYRING_E_KEK_BAD_LENGTH;
	}
	ret = kek_alloc(&kek);
	if (ret)
		goto cleanup;
	if (b64url_decode(kek->key, KEYRING_KEK_BYTES, text, len, &n) != 0 ||
	    n != KEYRING_KEK_BYTES) {
		keyring__say(err, err_size,
			     "KEK is not canonical base64url (alphabet A-Z a-z "
			     "0-9 - _, "
			     "no padding)");
		ret = KEYRING_E_KEK_BAD_ENCODING;
		goto cleanup;
	}
	ret = kek_seal_in(kek);
	if (ret)
		goto cleanup;
	*out = kek;
	kek = NULL;
cleanup:
	keyring_kek_free(kek);
	return ret;
}

int keyring_kek_decode_file(const unsigned char *buf, size_t n,
			    const char *path, struct keyring_kek **out,
			    char *err, size_t err_size)
{
	struct keyring_kek *kek = NULL;
	int ret;

	if (!out || !buf || !path)
		return KEYRING_E_INVALID_ARGUMENT;
	*out = NULL;
	if (n == KEYRING_KEK_BYTES) {
		ret = kek_alloc(&kek);
		if (ret)
			goto cleanup;
		memcpy(kek->key, buf, KEYRING_KEK_BYTES);
		ret = kek_seal_in(kek);
		if (ret)
			goto cleanup;
		*out = kek;
		kek = NULL;
	} else if (n == KEYRING_KEK_TEXT_BYTES ||
		   (n == KEYRING_KEK_TEXT_BYTES + 1 &&
		    buf[KEYRING_KEK_TEXT_BYTES] == '\n')) {
		ret = keyring_kek_parse((const char *)buf,
					KEYRING_KEK_TEXT_BYTES, out, err,
					err_size);
		if (ret == KEYRING_E_KEK_BAD_ENCODING)
			keyring__say(err, err_size,
				     "KEK file %s: not canonical base64url "
				     "(alphabet "
				     "A-Z a-z 0-9 - _, no padding)",
				     path);
	} else {
		keyring__say(
			err, err_size,
			"KEK file %s: %s%zu bytes; expected 32 raw bytes or %d "
			"base64url characters and an optional newline",
			path,
			n > KEYRING_KEK_FILE_BYTES_MAX ? "more than " : "",
			n > KEYRING_KEK_FILE_BYTES_MAX
				? (size_t)KEYRING_KEK_FILE_BYTES_MAX
				: n,
			KEYRING_KEK_TEXT_BYTES);
		ret = KEYRING_E_KEK_BAD_LENGTH;
	}
cleanup:
	keyring_kek_free(kek);
	return ret;
}

int keyring_kek_generate_text(char *text)
{
	unsigned char *raw = sodium_malloc(KEYRING_KEK_BYTES);
	int ret = 0;

	if (!text)
		ret = KEYRING_E_INVALID_ARGUMENT;
	else if (!raw)
		ret = KEYRING_E_NO_MEMORY;
	if (ret)
		goto cleanup;
	randombytes_buf(raw, KEYRING_KEK_BYTES);
	if (b64url_encode(text, KEYRING_KEK_TEXT_BYTES + 2, raw,
			  KEYRING_KEK_BYTES) != 0) {
		ret = KEYRING_E_INTERNAL;
		goto cleanup;
	}
	text[KEYRING_KEK_TEXT_BYTES] = '\n';
	text[KEYRING_KEK_TEXT_BYTES + 1] = '\0';
cleanup:
	sodium_free(raw);
	return ret;
}

/* ---- key files ---------------------------------------------------------- */

static int derive_subkeys(const struct keyring_kek *kek, struct subkeys **out)
{
	struct subkeys *sk = sodium_malloc(sizeof(*sk));
	int ret;

	*out = NULL;
	if (!sk)
		return KEYRING_E_NO_MEMORY;
	ret = kek_derive(kek, SUBKEY_AEAD, sk->aead, sizeof(sk->aead));
	if (ret == 0)
		ret = kek_derive(kek, SUBKEY_MAC, sk->mac, sizeof(sk->mac));
	if (ret) {
		sodium_free(sk);
		return ret;
	}
	*out = sk;
	return 0;
}

static int thumbprint_of(const unsigned char pub[JOSE_ED25519_PUBLIC_BYTES],
			 char out[JOSE_B64_32_BYTES])
{
	struct jose_pubkey pk;

	memset(&pk, 0, sizeof(pk));
	memcpy(pk.x, pub, sizeof(pk.x));
	return jose_thumbprint(&pk, out) == 0 ? 0 : KEYRING_E_INTERNAL;
}

/* The public metadata: everything a reader without the KEK can check. */
static int decode_public(const unsigned char *b, size_t len,
			 struct keyring_key *k, char *err, size_t err_size)
{
	char tp[JOSE_B64_32_BYTES];
	unsigned version;

	if (len < OFF_ALG || memcmp(b + OFF_MAGIC, magic, sizeof(magic)) != 0) {
		keyring__say(
			err, err_size,
			"not a key file (under 8 bytes or no TPWKEY magic)");
		return KEYRING_E_MALFORMED;
	}
	version = get_u16(b + OFF_VERSION);
	if (version != KEYRING_KEYFILE_VERSION &&
	    version != KEYRING_KEYFILE_VERSION_TOKEN &&
	    version != KEYRING_KEYFILE_VERSION_IN_TOKEN) {
		keyring__say(err, err_size,
			     "key file format version %u; this build reads "
			     "versions %d to %d",
			     version, KEYRING_KEYFILE_VERSION,
			     KEYRING_KEYFILE_VERSION_IN_TOKEN);
		return KEYRING_E_UNKNOWN_VERSION;
	}
	if (len != KEYRING_KEYFILE_BYTES) {
		keyring__say(err, err_size,
			     "key file has %zu bytes; version %u has %d", len,
			     version, KEYRING_KEYFILE_BYTES);
		return KEYRING_E_MALFORMED;
	}
	for (size_t i = OFF_MAC + KEYRING_TOKEN_KEY_ID_BYTES;
	     version == KEYRING_KEYFILE_VERSION_IN_TOKEN && i < OFF_NONCE;
	     i++) {
		if (b[i] != 0) {
			keyring__say(err, err_size,
				     "byte at offset %zu after the token key's "
				     "CKA_ID is not zero",
				     i);
			return KEYRING_E_MALFORMED;
		}
	}
	for (size_t i = OFF_NONCE + KEYRING_TOKEN_IV_BYTES;
	     version != KEYRING_KEYFILE_VERSION && i < OFF_CT; i++) {
		if (b[i] != 0) {
			keyring__say(err, err_size,
				     "byte at offset %zu after the GCM IV is "
				     "not zero",
				     i);
			return KEYRING_E_MALFORMED;
		}
	}
	if (get_u16(b + OFF_ALG) != ALG_ED25519) {
		keyring__say(err, err_size,
			     "unknown key algorithm %u (1 is Ed25519)",
			     get_u16(b + OFF_ALG));
		return KEYRING_E_MALFORMED;
	}
	for (size_t i = OFF_RESERVED; i < OFF_CREATED; i++) {
		if (b[i] != 0) {
			keyring__say(err, err_size,
				     "reserved byte at offset %zu is not zero",
				     i);
			return KEYRING_E_MALFORMED;
		}
	}
	if (!kid_valid((const char *)b + OFF_KID, KEYRING_KID_BYTES)) {
		keyring__say(err, err_size,
			     "kid at offset %d is not %d base64url characters",
			     OFF_KID, KEYRING_KID_BYTES);
		return KEYRING_E_MALFORMED;
	}
	for (size_t i = OFF_KID + KEYRING_KID_BYTES;
	     i < OFF_KID + KID_FIELD_BYTES; i++) {
		if (b[i] != 0) {
			keyring__say(
				err, err_size,
				"kid padding byte at offset %zu is not zero",
				i);
			return KEYRING_E_MALFORMED;
		}
	}
	memset(k, 0, sizeof(*k));
	k->created_at = get_i64(b + OFF_CREATED);
	k->activate_at = get_i64(b + OFF_ACTIVATE);
	k->retire_at = get_i64(b + OFF_RETIRE);
	k->expires_at = get_i64(b + OFF_EXPIRES);
	if (!time_valid(k->created_at, false) ||
	    !time_valid(k->activate_at, false) ||
	    !time_valid(k->retire_at, true) ||
	    !time_valid(k->expires_at, true)) {
		keyring__say(err, err_size, "a time is out of range");
		return KEYRING_E_MALFORMED;
	}
	if (!(k->created_at <= k->activate_at &&
	      k->activate_at <= k->retire_at &&
	      k->retire_at <= k->expires_at)) {
		keyring__say(err, err_size,
			     "times out of order (created_at <= activate_at <= "
			     "retire_at <= expires_at)");
		return KEYRING_E_MALFORMED;
	}
	memcpy(k->pub, b + OFF_PUB, sizeof(k->pub));
	memcpy(k->kid, b + OFF_KID, KEYRING_KID_BYTES);
	k->kid[KEYRING_KID_BYTES] = '\0';
	memcpy(k->kek_id, b + OFF_KEK_ID, sizeof(k->kek_id));
	if (crypto_core_ed25519_is_valid_point(k->pub) != 1) {
		keyring__say(err, err_size,
			     "public key is not a valid Ed25519 key");
		return KEYRING_E_METADATA_MODIFIED;
	}
	if (thumbprint_of(k->pub, tp) != 0)
		return KEYRING_E_INTERNAL;
	if (memcmp(tp, k->kid, KEYRING_KID_BYTES) != 0) {
		keyring__say(err, err_size,
			     "kid %s is not the thumbprint of the public key",
			     k->kid);
		return KEYRING_E_METADATA_MODIFIED;
	}
	return 0;
}

/* A version 3 file: the sealed reference ref must be the clear one, and
 * the token must hold that key pair with the file's public key. */
static int check_token_key(const struct keyring_kek *kek,
			   const struct keyring_key *meta,
			   const unsigned char *b,
			   const unsigned char ref[JOSE_ED25519_SEED_BYTES],
			   char *err, size_t err_size)
{
	unsigned char pk[JOSE_ED25519_PUBLIC_BYTES];
	char why[KEYRING_ERR_BYTES] = "";
	char hex[2 * KEYRING_TOKEN_KEY_ID_BYTES + 1];
	int ret;

	sodium_bin2hex(hex, sizeof(hex), b + OFF_MAC,
		       KEYRING_TOKEN_KEY_ID_BYTES);
	if (sodium_memcmp(ref, b + OFF_MAC, JOSE_ED25519_SEED_BYTES) != 0) {
		keyring__say(err, err_size,
			     "key %s: the sealed CKA_ID is not the one in "
			     "clear",
			     meta->kid);
		return KEYRING_E_CIPHERTEXT_MODIFIED;
	}
	if (!kek->prov.key_public) {
		keyring__say(err, err_size,
			     "key %s lives in a token this KEK cannot sign "
			     "with",
			     meta->kid);
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	ret = kek->prov.key_public(kek->prov.ctx, b + OFF_MAC, pk, why,
				   sizeof(why));
	if (ret == KEYRING_E_TOKEN_KEY_MISSING)
		keyring__say(err, err_size,
			     "key %s: the token holds no key pair with its "
			     "CKA_ID %s (deleted, or another token)",
			     meta->kid, hex);
	else if (ret)
		keyring__say(err, err_size, "key %s: %s", meta->kid, why);
	if (ret)
		return ret;
	if (sodium_memcmp(pk, meta->pub, sizeof(pk)) != 0) {
		keyring__say(err, err_size,
			     "key %s: the token's key with CKA_ID %s has "
			     "another public key",
			     meta->kid, hex);
		return KEYRING_E_KEY_MISMATCH;
	}
	return 0;
}

int keyring__keyfile_open(const void *buf, size_t len,
			  const struct keyring_kek *kek,
			  struct keyring_key *meta,
			  unsigned char seed[JOSE_ED25519_SEED_BYTES],
			  char *err, size_t err_size)
{
	const unsigned char *b = buf;
	unsigned char mac[MAC_BYTES];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char *sk = NULL;
	struct subkeys *keys = NULL;
	unsigned long long n = 0;
	int ret;

	if (!b || !meta)
		return KEYRING_E_INVALID_ARGUMENT;
	ret = decode_public(b, len, meta, err, err_size);
	if (ret || !kek)
		goto cleanup;
	if (sodium_memcmp(meta->kek_id, kek->id, KEYRING_KEK_ID_BYTES) != 0 &&
	    !(keyring_kek_in_token(kek) && kek->prov.knows &&
	      kek->prov.knows(kek->prov.ctx, meta->kek_id))) {
		char want[2 * KEYRING_KEK_ID_BYTES + 1];
		char got[2 * KEYRING_KEK_ID_BYTES + 1];

		sodium_bin2hex(want, sizeof(want), meta->kek_id,
			       KEYRING_KEK_ID_BYTES);
		sodium_bin2hex(got, sizeof(got), kek->id, KEYRING_KEK_ID_BYTES);
		keyring__say(err, err_size,
			     "key %s was sealed under KEK id %s; the KEK given "
			     "has id "
			     "%s",
			     meta->kid, want, got);
		ret = KEYRING_E_WRONG_KEK;
		goto cleanup;
	}
	bool in_tok = keyring_image_in_token(b);
	if (in_tok ? !keyring_kek_in_token(kek)
		   : get_u16(b + OFF_VERSION) != kek_file_version(kek)) {
		keyring__say(err, err_size,
			     "key %s: format version %u, but the KEK given "
			     "has its id and seals version %u",
			     meta->kid, get_u16(b + OFF_VERSION),
			     kek_file_version(kek));
		ret = KEYRING_E_WRONG_KEK;
		goto cleanup;
	}
	sk = sodium_malloc(crypto_sign_SECRETKEYBYTES +
			   JOSE_ED25519_SEED_BYTES);
	if (!sk) {
		ret = KEYRING_E_NO_MEMORY;
		goto cleanup;
	}
	if (keyring_kek_in_token(kek)) {
		char why[KEYRING_ERR_BYTES] = "";

		ret = kek->prov.unwrap(
			kek->prov.ctx, meta->kek_id, b, AD_BYTES, b + OFF_NONCE,
			b + OFF_CT, JOSE_ED25519_SEED_BYTES, b + OFF_TAG,
			sk + crypto_sign_SECRETKEYBYTES, why, sizeof(why));
		if (ret == KEYRING_E_CIPHERTEXT_MODIFIED)
			keyring__say(err, err_size,
				     "key %s: the token does not authenticate "
				     "it (metadata, IV, ciphertext or tag "
				     "changed)",
				     meta->kid);
		else if (ret)
			keyring__say(err, err_size, "key %s: %s", meta->kid,
				     why);
		if (ret)
			goto cleanup;
		if (in_tok) {
			ret = check_token_key(kek, meta, b,
					      sk + crypto_sign_SECRETKEYBYTES,
					      err, err_size);
			if (ret == 0 && seed)
				memcpy(seed, sk + crypto_sign_SECRETKEYBYTES,
				       JOSE_ED25519_SEED_BYTES);
			goto cleanup;
		}
		goto check_seed;
	}
	ret = derive_subkeys(kek, &keys);
	if (ret)
		goto cleanup;
	crypto_generichash(mac, sizeof(mac), b, OFF_MAC, keys->mac,
			   sizeof(keys->mac));
	if (sodium_memcmp(mac, b + OFF_MAC, MAC_BYTES) != 0) {
		keyring__say(err, err_size,
			     "key %s: metadata MAC does not match (kid, times "
			     "or public "
			     "key changed)",
			     meta->kid);
		ret = KEYRING_E_METADATA_MODIFIED;
		goto cleanup;
	}
	/* seed into sk's tail first; copied to the caller only when good */
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    sk + crypto_sign_SECRETKEYBYTES, &n, NULL, b + OFF_CT,
		    KEYRING_KEYFILE_BYTES - OFF_CT, b, AD_BYTES, b + OFF_NONCE,
		    keys->aead) != 0 ||
	    n != JOSE_ED25519_SEED_BYTES) {
		keyring__say(err, err_size,
			     "key %s: sealed private key does not authenticate "
			     "(nonce, ciphertext or tag changed)",
			     meta->kid);
		ret = KEYRING_E_CIPHERTEXT_MODIFIED;
		goto cleanup;
	}
check_seed:
	if (crypto_sign_seed_keypair(pk, sk, sk + crypto_sign_SECRETKEYBYTES) !=
	    0) {
		ret = KEYRING_E_INTERNAL;
		goto cleanup;
	}
	if (sodium_memcmp(pk, meta->pub, sizeof(pk)) != 0) {
		keyring__say(
			err, err_size,
			"key %s: private key does not derive the public key",
			meta->kid);
		ret = KEYRING_E_KEY_MISMATCH;
		goto cleanup;
	}
	if (seed)
		memcpy(seed, sk + crypto_sign_SECRETKEYBYTES,
		       JOSE_ED25519_SEED_BYTES);
cleanup:
	sodium_free(sk);
	sodium_free(keys);
	return ret;
}

int keyring_keyfile_decode(const void *buf, size_t len,
			   const struct keyring_kek *kek,
			   struct keyring_key *out, char *err, size_t err_size)
{
	return keyring__keyfile_open(buf, len, kek, out, NULL, err, err_size);
}

/* Seals seed, or with in_tok the reference of a key in the token (its
 * CKA_ID and 16 zero bytes: version 3), into a key file image. */
static int seal_image(const struct keyring_key *meta,
		      const unsigned char seed[JOSE_ED25519_SEED_BYTES],
		      bool in_tok, const unsigned char nonce[24],
		      const struct keyring_kek *kek,
		      unsigned char out[KEYRING_KEYFILE_BYTES]);

int keyring__keyfile_seal(const struct keyring_key *meta,
			  const unsigned char seed[JOSE_ED25519_SEED_BYTES],
			  const unsigned char nonce[24],
			  const struct keyring_kek *kek,
			  unsigned char out[KEYRING_KEYFILE_BYTES])
{
	return seal_image(meta, seed, false, nonce, kek, out);
}

static int seal_image(const struct keyring_key *meta,
		      const unsigned char seed[JOSE_ED25519_SEED_BYTES],
		      bool in_tok, const unsigned char nonce[24],
		      const struct keyring_kek *kek,
		      unsigned char out[KEYRING_KEYFILE_BYTES])
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	char tp[JOSE_B64_32_BYTES];
	unsigned char *sk = NULL;
	struct subkeys *keys = NULL;
	unsigned long long n = 0;
	int ret = 0;

	if (!meta || !seed || !nonce || !kek || !out)
		return KEYRING_E_INVALID_ARGUMENT;
	if (!time_valid(meta->created_at, false) ||
	    !time_valid(meta->activate_at, false) ||
	    !time_valid(meta->retire_at, true) ||
	    !time_valid(meta->expires_at, true) ||
	    !(meta->created_at <= meta->activate_at &&
	      meta->activate_at <= meta->retire_at &&
	      meta->retire_at <= meta->expires_at))
		return KEYRING_E_BAD_TIME;
	if (in_tok && !keyring_kek_in_token(kek))
		return KEYRING_E_KEY_IN_TOKEN;
	/* Both sides of the boundary: what is sealed is what open checks
	 * (a key in the token: its public key is the token's, and open
	 * asks the token). */
	sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (!sk)
		return KEYRING_E_NO_MEMORY;
	if (in_tok) {
		if (thumbprint_of(meta->pub, tp) != 0) {
			ret = KEYRING_E_INTERNAL;
			goto cleanup;
		}
		memcpy(pk, meta->pub, sizeof(pk));
	} else if (crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
		   thumbprint_of(pk, tp) != 0) {
		ret = KEYRING_E_INTERNAL;
		goto cleanup;
	}
	if (memcmp(pk, meta->pub, sizeof(pk)) != 0 ||
	    strnlen(meta->kid, sizeof(meta->kid)) != KEYRING_KID_BYTES ||
	    memcmp(tp, meta->kid, KEYRING_KID_BYTES) != 0) {
		ret = KEYRING_E_KEY_MISMATCH;
		goto cleanup;
	}
	memset(out, 0, KEYRING_KEYFILE_BYTES);
	memcpy(out + OFF_MAGIC, magic, sizeof(magic));
	put_u16(out + OFF_VERSION, in_tok ? KEYRING_KEYFILE_VERSION_IN_TOKEN
					  : kek_file_version(kek));
	put_u16(out + OFF_ALG, ALG_ED25519);
	put_i64(out + OFF_CREATED, meta->created_at);
	put_i64(out + OFF_ACTIVATE, meta->activate_at);
	put_i64(out + OFF_RETIRE, meta->retire_at);
	put_i64(out + OFF_EXPIRES, meta->expires_at);
	memcpy(out + OFF_PUB, meta->pub, JOSE_ED25519_PUBLIC_BYTES);
	memcpy(out + OFF_KID, meta->kid, KEYRING_KID_BYTES);
	memcpy(out + OFF_KEK_ID, kek->id, KEYRING_KEK_ID_BYTES);
	if (keyring_kek_in_token(kek)) {
		char why[KEYRING_ERR_BYTES] = "";

		memcpy(out + OFF_NONCE, nonce, KEYRING_TOKEN_IV_BYTES);
		if (in_tok)
			memcpy(out + OFF_MAC, seed, JOSE_ED25519_SEED_BYTES);
		ret = kek->prov.wrap(kek->prov.ctx, out, AD_BYTES,
				     out + OFF_NONCE, seed,
				     JOSE_ED25519_SEED_BYTES, out + OFF_CT,
				     out + OFF_TAG, why, sizeof(why));
		goto cleanup;
	}
	ret = derive_subkeys(kek, &keys);
	if (ret)
		goto cleanup;
	crypto_generichash(out + OFF_MAC, MAC_BYTES, out, OFF_MAC, keys->mac,
			   sizeof(keys->mac));
	memcpy(out + OFF_NONCE, nonce, OFF_CT - OFF_NONCE);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(
		    out + OFF_CT, &n, seed, JOSE_ED25519_SEED_BYTES, out,
		    AD_BYTES, NULL, out + OFF_NONCE, keys->aead) != 0 ||
	    n != KEYRING_KEYFILE_BYTES - OFF_CT)
		ret = KEYRING_E_INTERNAL;
cleanup:
	sodium_free(sk);
	sodium_free(keys);
	return ret;
}

int keyring_keyfile_reseal(const unsigned char in[KEYRING_KEYFILE_BYTES],
			   const struct keyring_kek *from,
			   const struct keyring_kek *to,
			   const unsigned char nonce[24],
			   unsigned char out[KEYRING_KEYFILE_BYTES], char *err,
			   size_t err_size)
{
	struct keyring_key meta;
	unsigned char *seed;
	int ret;

	if (!in || !from || !to || !nonce || !out)
		return KEYRING_E_INVALID_ARGUMENT;
	bool in_tok = keyring_image_in_token(in);
	if (in_tok && !keyring_kek_in_token(to)) {
		keyring__say(err, err_size,
			     "key %.43s was generated in the token and cannot "
			     "leave it",
			     (const char *)in + OFF_KID);
		return KEYRING_E_KEY_IN_TOKEN;
	}
	seed = sodium_malloc(JOSE_ED25519_SEED_BYTES);
	if (!seed)
		return KEYRING_E_NO_MEMORY;
	ret = keyring__keyfile_open(in, KEYRING_KEYFILE_BYTES, from, &meta,
				    seed, err, err_size);
	if (ret == 0)
		ret = seal_image(&meta, seed, in_tok, nonce, to, out);
	if (ret == 0)
		ret = keyring__keyfile_open(out, KEYRING_KEYFILE_BYTES, to,
					    &meta, NULL, err, err_size);
	sodium_free(seed);
	return ret;
}

/* ---- the keyring -------------------------------------------------------- */

static int entry_cmp(const void *a, const void *b)
{
	const struct keyring_key *x = &((const struct entry *)a)->key;
	const struct keyring_key *y = &((const struct entry *)b)->key;

	if (x->activate_at != y->activate_at)
		return x->activate_at > y->activate_at ? -1 : 1;
	if (x->created_at != y->created_at)
		return x->created_at > y->created_at ? -1 : 1;
	return strcmp(x->kid, y->kid);
}

static void sort_entries(struct keyring *kr)
{
	qsort(kr->e, kr->n, sizeof(kr->e[0]), entry_cmp);
}

int keyring_new(const struct keyring_kek *kek,
		const struct keyring_store *store, struct keyring **out)
{
	struct keyring *kr;
	pthread_mutexattr_t ma;

	if (!out)
		return KEYRING_E_INVALID_ARGUMENT;
	*out = NULL;
	if (!store || !store->put || !store->remove || !store->sync)
		return KEYRING_E_INVALID_ARGUMENT;
	kr = calloc(1, sizeof(*kr));
	if (!kr)
		return KEYRING_E_NO_MEMORY;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&kr->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	kr->store = *store;
	kr->kek = kek;
	*out = kr;
	return 0;
}

bool keyring_kid_valid(const char *s, size_t len)
{
	return len == KEYRING_KID_BYTES && kid_valid(s, len);
}

int keyring_add_image(struct keyring *kr, const char *kid, const char *path,
		      const void *buf, size_t len, char *err, size_t err_size)
{
	char why[KEYRING_ERR_BYTES];
	struct entry *e;
	int ret;

	if (!kr || !kid || !path || !buf)
		return KEYRING_E_INVALID_ARGUMENT;
	if (kr->n >= KEYRING_KEYS_MAX)
		return KEYRING_E_TOO_MANY_KEYS;
	e = &kr->e[kr->n];
	why[0] = '\0';
	ret = keyring__keyfile_open(buf, len, kr->kek, &e->key, NULL, why,
				    sizeof(why));
	if (ret) {
		keyring__say(err, err_size, "key file %s: %s", path, why);
		return ret;
	}
	if (memcmp(e->key.kid, kid, KEYRING_KID_BYTES) != 0) {
		keyring__say(
			err, err_size,
			"key file %s holds key %s: files swapped or renamed",
			path, e->key.kid);
		return KEYRING_E_FILE_NAME_MISMATCH;
	}
	memcpy(e->image, buf, KEYRING_KEYFILE_BYTES);
	kr->n++;
	sort_entries(kr);
	return 0;
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	pthread_mutex_destroy(&kr->lock);
	if (kr->store.release)
		kr->store.release(kr->store.ctx);
	free(kr); /* holds sealed images and public data only */
}

size_t keyring_count(const struct keyring *kr)
{
	return kr ? kr->n : 0;
}

const struct keyring_key *keyring_key_at(const struct keyring *kr, size_t i)
{
	return kr && i < kr->n ? &kr->e[i].key : NULL;
}

static const struct entry *current_entry(const struct keyring *kr, int64_t now)
{
	for (size_t i = 0; kr && i < kr->n; i++)
		if (signs_at(&kr->e[i].key, now))
			return &kr->e[i];
	return NULL;
}

const struct keyring_key *keyring_current_signer(const struct keyring *kr,
						 int64_t now)
{
	const struct entry *e = current_entry(kr, now);

	return e ? &e->key : NULL;
}

static int keyring_verifier_unlocked(const struct keyring *kr, const char *kid,
				     int64_t now, struct jose_pubkey *out)
{
	if (!kr || !kid || !out)
		return KEYRING_E_INVALID_ARGUMENT;
	for (size_t i = 0; i < kr->n; i++) {
		const struct keyring_key *k = &kr->e[i].key;

		if (strcmp(k->kid, kid) != 0)
			continue;
		if (now >= k->expires_at)
			return KEYRING_E_KEY_EXPIRED;
		memset(out, 0, sizeof(*out));
		memcpy(out->x, k->pub, sizeof(out->x));
		memcpy(out->kid, k->kid, KEYRING_KID_BYTES + 1);
		return 0;
	}
	return KEYRING_E_UNKNOWN_KID;
}

int keyring_lookup_verifier(void *ctx, const char *kid, struct jose_pubkey *out)
{
	const struct keyring_verify_ctx *c = ctx;

	if (!c || !kid)
		return KEYRING_E_UNKNOWN_KID;
	return keyring_verifier(c->kr, kid, c->now, out);
}

static bool due_for_rotation_unlocked(const struct keyring *kr, int64_t now,
				      int64_t period_s);

bool keyring_due_for_rotation(const struct keyring *kr, int64_t now,
			      int64_t period_s)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	bool due = due_for_rotation_unlocked(kr, now, period_s);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return due;
}

static bool due_for_rotation_unlocked(const struct keyring *kr, int64_t now,
				      int64_t period_s)
{
	const struct keyring_key *cur = keyring_current_signer(kr, now);

	if (!cur || period_s <= 0)
		return true;
	/* cur signs, so activate_at <= now: no overflow */
	return now - cur->activate_at >= period_s;
}

static bool key_equal(const struct keyring_key *a, const struct keyring_key *b)
{
	return strcmp(a->kid, b->kid) == 0 &&
	       memcmp(a->pub, b->pub, sizeof(a->pub)) == 0 &&
	       a->created_at == b->created_at &&
	       a->activate_at == b->activate_at &&
	       a->retire_at == b->retire_at && a->expires_at == b->expires_at &&
	       memcmp(a->kek_id, b->kek_id, sizeof(a->kek_id)) == 0;
}

static bool valid_now(int64_t now)
{
	return now >= 0 && now <= JOSE_NUMERIC_DATE_MAX;
}

/* Re-seals entry e with new times and writes it; e changes on success. */
static int reschedule(struct keyring *kr, struct entry *e, int64_t retire_at,
		      int64_t expires_at, char *err, size_t err_size)
{
	unsigned char image[KEYRING_KEYFILE_BYTES];
	unsigned char nonce[OFF_CT - OFF_NONCE];
	struct keyring_key meta = e->key;
	unsigned char *seed = sodium_malloc(JOSE_ED25519_SEED_BYTES);
	int ret;

	if (!seed)
		return KEYRING_E_NO_MEMORY;
	ret = keyring__keyfile_open(e->image, sizeof(e->image), kr->kek, &meta,
				    seed, err, err_size);
	if (ret)
		goto cleanup;
	meta.retire_at = retire_at;
	meta.expires_at = expires_at;
	randombytes_buf(nonce, sizeof(nonce));
	ret = seal_image(&meta, seed, keyring_image_in_token(e->image), nonce,
			 kr->kek, image);
	if (ret)
		goto cleanup;
	ret = kr->store.put(kr->store.ctx, meta.kid, image, err, err_size);
	if (ret)
		goto cleanup;
	e->key = meta;
	memcpy(e->image, image, sizeof(image));
cleanup:
	sodium_free(seed);
	return ret;
}

int keyring_rekey(struct keyring *kr, const struct keyring_kek *kek,
		  size_t *n_resealed, char *err, size_t err_size)
{
	unsigned char image[KEYRING_KEYFILE_BYTES];
	unsigned char nonce[OFF_CT - OFF_NONCE];
	size_t n = 0;
	int ret = 0;

	if (!kr || !kek)
		return KEYRING_E_INVALID_ARGUMENT;
	if (!kr->kek)
		return KEYRING_E_NO_KEK;
	pthread_mutex_lock(&kr->lock);
	for (size_t i = 0; i < kr->n && ret == 0; i++) {
		struct entry *e = &kr->e[i];
		if (memcmp(e->key.kek_id, kek->id, KEYRING_KEK_ID_BYTES) == 0)
			continue;
		randombytes_buf(nonce, sizeof(nonce));
		ret = keyring_keyfile_reseal(e->image, kr->kek, kek, nonce,
					     image, err, err_size);
		if (ret == 0)
			ret = kr->store.put(kr->store.ctx, e->key.kid, image,
					    err, err_size);
		if (ret == 0) {
			memcpy(e->image, image, sizeof(image));
			memcpy(e->key.kek_id, kek->id, KEYRING_KEK_ID_BYTES);
			n++;
		}
	}
	/* Only once every file is under kek does it seal new ones: until
	 * then the old KEK (which opens both) stays the keyring's. */
	if (ret == 0)
		kr->kek = kek;
	pthread_mutex_unlock(&kr->lock);
	if (n_resealed)
		*n_resealed = n;
	return ret;
}

/* A key generated in the token whose file is gone (pruned, dropped, or
 * never written): its pair leaves the token too.  Best effort: a pair
 * left behind signs nothing (no file names it). */
static void destroy_token_key(struct keyring *kr, const unsigned char *ref)
{
	if (!keyring_kek_in_token(kr->kek) || !kr->kek->prov.key_destroy)
		return;
	const struct keyring_kek_provider *p = &kr->kek->prov;
	(void)p->key_destroy(p->ctx, ref, NULL, 0);
}

/* Remove entry i and its file (fsync of the directory left to the
 * caller); its kid goes to rot->dropped. */
static int drop_entry(struct keyring *kr, size_t i,
		      struct keyring_rotation *rot, char *err, size_t err_size)
{
	int ret = kr->store.remove(kr->store.ctx, kr->e[i].key.kid, err,
				   err_size);

	if (ret)
		return ret;
	if (keyring_image_in_token(kr->e[i].image))
		destroy_token_key(kr, kr->e[i].image + OFF_MAC);
	if (rot && rot->n_dropped < KEYRING_KEYS_MAX)
		snprintf(rot->dropped[rot->n_dropped++],
			 sizeof(rot->dropped[0]), "%s", kr->e[i].key.kid);
	for (size_t j = i + 1; j < kr->n; j++)
		kr->e[j - 1] = kr->e[j];
	kr->n--;
	return 0;
}

/* A full keyring makes room for one more key: expired keys go, then the
 * retired key that retired first (ties: the older), until one fits. */
static int make_room(struct keyring *kr, int64_t now,
		     struct keyring_rotation *rot, char *err, size_t err_size)
{
	int ret = 0;
	size_t dropped = 0;

	if (kr->n < KEYRING_KEYS_MAX)
		return 0;
	for (size_t i = 0; i < kr->n;) {
		if (now >= kr->e[i].key.expires_at) {
			ret = drop_entry(kr, i, rot, err, err_size);
			if (ret)
				goto cleanup;
			dropped++;
			continue;
		}
		i++;
	}
	while (kr->n >= KEYRING_KEYS_MAX) {
		size_t oldest = SIZE_MAX;
		for (size_t i = 0; i < kr->n; i++) {
			const struct keyring_key *k = &kr->e[i].key;
			if (k->retire_at > now)
				continue; /* signs now, or will */
			if (oldest == SIZE_MAX ||
			    k->retire_at < kr->e[oldest].key.retire_at ||
			    (k->retire_at == kr->e[oldest].key.retire_at &&
			     k->created_at < kr->e[oldest].key.created_at))
				oldest = i;
		}
		if (oldest == SIZE_MAX) {
			keyring__say(err, err_size,
				     "%d keys, none of them retired: no room "
				     "for a new "
				     "key",
				     KEYRING_KEYS_MAX);
			ret = KEYRING_E_TOO_MANY_KEYS;
			goto cleanup;
		}
		ret = drop_entry(kr, oldest, rot, err, err_size);
		if (ret)
			goto cleanup;
		dropped++;
	}
cleanup:
	if (dropped) {
		int r = kr->store.sync(kr->store.ctx, err, err_size);
		if (ret == 0)
			ret = r;
	}
	if (ret == 0 && kr->n >= KEYRING_KEYS_MAX)
		ret = KEYRING_E_INTERNAL; /* the loop above cannot end so */
	return ret;
}

static int keyring_rotate_unlocked(struct keyring *kr, int64_t now,
				   int64_t overlap_s,
				   struct keyring_rotation *rot, char *err,
				   size_t err_size)
{
	unsigned char nonce[OFF_CT - OFF_NONCE];
	struct jose_seckey *sk = NULL;
	struct jose_pubkey pub;
	unsigned char *seed = NULL;
	struct entry *fresh;
	size_t n_old;
	bool added = false, generated = false;
	int ret = 0;

	if (!kr)
		return KEYRING_E_INVALID_ARGUMENT;
	bool in_tok = keyring_kek_generates_in_token(kr->kek);
	if (rot)
		memset(rot, 0, sizeof(*rot));
	if (!kr->kek) {
		keyring__say(err, err_size, "rotation needs the KEK");
		return KEYRING_E_NO_KEK;
	}
	if (!valid_now(now) || overlap_s < 0 ||
	    overlap_s > KEYRING_OVERLAP_MAX_S) {
		keyring__say(err, err_size,
			     "now must be in [0, %" PRId64
			     "] and the overlap in "
			     "[0, %" PRId64 "] seconds",
			     JOSE_NUMERIC_DATE_MAX, KEYRING_OVERLAP_MAX_S);
		return KEYRING_E_BAD_TIME;
	}
	for (size_t i = 0; i < kr->n; i++) {
		if (now < kr->e[i].key.created_at) {
			keyring__say(
				err, err_size,
				"now (%" PRId64
				") is before key %s was created "
				"(%" PRId64 "): has the clock gone backwards?",
				now, kr->e[i].key.kid, kr->e[i].key.created_at);
			return KEYRING_E_BAD_TIME;
		}
	}
	ret = make_room(kr, now, rot, err, err_size);
	if (ret)
		return ret;

	seed = sodium_malloc(JOSE_ED25519_SEED_BYTES);
	if (!seed) {
		ret = KEYRING_E_NO_MEMORY;
		goto cleanup;
	}
	if (in_tok) {
		/* seed holds the reference: the CKA_ID, then zeros */
		const struct keyring_kek_provider *p = &kr->kek->prov;
		memset(seed, 0, JOSE_ED25519_SEED_BYTES);
		ret = p->key_generate(p->ctx, seed, pub.x, err, err_size);
		if (ret)
			goto cleanup;
		generated = true;
	} else {
		randombytes_buf(seed, JOSE_ED25519_SEED_BYTES);
		if (jose_seckey_from_seed(seed, NULL, &sk) != 0) {
			ret = KEYRING_E_INTERNAL;
			goto cleanup;
		}
		jose_seckey_public(sk, &pub);
	}
	n_old = kr->n;
	fresh = &kr->e[n_old];
	memset(fresh, 0, sizeof(*fresh));
	memcpy(fresh->key.pub, pub.x, sizeof(pub.x));
	if (thumbprint_of(pub.x, fresh->key.kid) != 0) {
		ret = KEYRING_E_INTERNAL;
		goto cleanup;
	}
	for (size_t i = 0; i < n_old; i++) {
		if (strcmp(kr->e[i].key.kid, fresh->key.kid) == 0) {
			keyring__say(err, err_size, "new key %s already exists",
				     fresh->key.kid);
			ret = KEYRING_E_DUPLICATE_KID;
			goto cleanup;
		}
	}
	fresh->key.created_at = now;
	fresh->key.activate_at = now;
	fresh->key.retire_at = KEYRING_NEVER;
	fresh->key.expires_at = KEYRING_NEVER;
	memcpy(fresh->key.kek_id, kr->kek->id, KEYRING_KEK_ID_BYTES);
	randombytes_buf(nonce, sizeof(nonce));
	ret = seal_image(&fresh->key, seed, in_tok, nonce, kr->kek,
			 fresh->image);
	if (ret)
		goto cleanup;
	/* Read back what will be written before it is written. */
	{
		struct keyring_key back;

		ret = keyring__keyfile_open(fresh->image, sizeof(fresh->image),
					    kr->kek, &back, NULL, err,
					    err_size);
		if (ret == 0 && !key_equal(&back, &fresh->key))
			ret = KEYRING_E_INTERNAL;
		if (ret)
			goto cleanup;
	}
	ret = kr->store.put(kr->store.ctx, fresh->key.kid, fresh->image, err,
			    err_size);
	if (ret)
		goto cleanup;
	kr->n++;
	added = true;
	if (rot)
		rot->created = fresh->key;

	for (size_t i = 0; i < n_old; i++) {
		struct entry *e = &kr->e[i];
		int64_t expires = e->key.expires_at;

		if (!signs_at(&e->key, now))
			continue;
		if (expires - now > overlap_s)
			expires = now + overlap_s;
		ret = reschedule(kr, e, now, expires, err, err_size);
		if (ret)
			goto cleanup;
		if (rot)
			rot->retired[rot->n_retired++] = e->key;
	}
cleanup:
	if (generated && !added) /* not written: the pair goes too */
		destroy_token_key(kr, seed);
	if (added)
		sort_entries(kr);
	jose_seckey_free(sk);
	sodium_free(seed);
	return ret;
}

static int keyring_prune_unlocked(struct keyring *kr, int64_t now,
				  size_t *n_pruned, char *err, size_t err_size)
{
	size_t kept = 0, removed = 0;
	int ret = 0;

	if (n_pruned)
		*n_pruned = 0;
	if (!kr)
		return KEYRING_E_INVALID_ARGUMENT;
	for (size_t i = 0; i < kr->n; i++) {
		struct entry *e = &kr->e[i];

		if (ret == 0 && now >= e->key.expires_at) {
			ret = kr->store.remove(kr->store.ctx, e->key.kid, err,
					       err_size);
			if (ret == 0) {
				if (keyring_image_in_token(e->image))
					destroy_token_key(kr,
							  e->image + OFF_MAC);
				removed++;
				continue;
			}
		}
		if (kept != i)
			kr->e[kept] = *e;
		kept++;
	}
	kr->n = kept;
	if (n_pruned)
		*n_pruned = removed;
	if (ret == 0 && removed)
		ret = kr->store.sync(kr->store.ctx, err, err_size);
	return ret;
}

static int keyring_jwks_unlocked(const struct keyring *kr, int64_t now,
				 char *out, size_t out_size, size_t *out_len)
{
	size_t len = 0;
	bool first = true;
	int n;

	if (out_len)
		*out_len = 0;
	if (!kr || !out || out_size == 0)
		return KEYRING_E_INVALID_ARGUMENT;
	n = snprintf(out, out_size, "{\"keys\":[");
	if (n < 0 || (size_t)n >= out_size)
		goto no_space;
	len = (size_t)n;
	for (size_t i = 0; i < kr->n; i++) {
		const struct keyring_key *k = &kr->e[i].key;
		char x[JOSE_B64_32_BYTES];

		if (now >= k->expires_at)
			continue;
		if (b64url_encode(x, sizeof(x), k->pub, sizeof(k->pub)) != 0)
			return KEYRING_E_INTERNAL;
		n = snprintf(
			out + len, out_size - len,
			"%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
			"\"kid\":\"%s\",\"use\":\"sig\",\"alg\":\"EdDSA\"}",
			first ? "" : ",", x, k->kid);
		if (n < 0 || (size_t)n >= out_size - len)
			goto no_space;
		len += (size_t)n;
		first = false;
	}
	n = snprintf(out + len, out_size - len, "]}");
	if (n < 0 || (size_t)n >= out_size - len)
		goto no_space;
	len += (size_t)n;
	if (out_len)
		*out_len = len;
	return 0;
no_space:
	out[0] = '\0';
	return KEYRING_E_NO_SPACE;
}

/* e's private seed, decrypted into sodium_malloc'd memory the caller
 * wipes and frees with sodium_free as soon as it has used it. */
static int entry_seed(const struct keyring *kr, const struct entry *e,
		      unsigned char **seed_out)
{
	struct keyring_key meta;
	unsigned char *seed;
	int ret;

	*seed_out = NULL;
	seed = sodium_malloc(JOSE_ED25519_SEED_BYTES);
	if (!seed)
		return KEYRING_E_NO_MEMORY;
	ret = keyring__keyfile_open(e->image, sizeof(e->image), kr->kek, &meta,
				    seed, NULL, 0);
	if (ret != 0) {
		sodium_free(seed);
		return ret;
	}
	*seed_out = seed;
	return 0;
}

/* The same for the current signer. */
static int current_seed(const struct keyring *kr, int64_t now,
			const struct entry **e_out, unsigned char **seed_out)
{
	const struct entry *e;
	unsigned char *seed;
	int ret;

	*seed_out = NULL;
	if (!kr)
		return KEYRING_E_INVALID_ARGUMENT;
	if (!kr->kek)
		return KEYRING_E_NO_KEK;
	e = current_entry(kr, now);
	if (!e)
		return KEYRING_E_NO_SIGNING_KEY;
	ret = entry_seed(kr, e, &seed);
	if (ret != 0)
		return ret;
	*e_out = e;
	*seed_out = seed;
	return 0;
}

/* Signing with a key generated in the token (version 3): the token signs
 * with the CKA_ID the file names in clear (authenticated at load). */
struct token_sign {
	const struct keyring *kr;
	const unsigned char *ref;
	int ret;
};

static int token_sign_fn(void *ctx, const unsigned char *msg, size_t len,
			 unsigned char sig[JOSE_ED25519_SIGNATURE_BYTES])
{
	struct token_sign *t = ctx;
	const struct keyring_kek_provider *p = &t->kr->kek->prov;

	t->ret = p->key_sign
			 ? p->key_sign(p->ctx, t->ref, msg, len, sig, NULL, 0)
			 : KEYRING_E_KEK_UNAVAILABLE;
	return t->ret;
}

/* A note_sign_fn: ctx is the keyring, whose lock it takes, so that the
 * KEK it uses is the keyring's at the time of the signature. */
static int note_token_sign(void *ctx, const unsigned char ref[32],
			   const unsigned char *msg, size_t len,
			   unsigned char sig[64])
{
	struct keyring *kr = ctx;
	struct token_sign t = {kr, ref, 0};

	pthread_mutex_lock(&kr->lock);
	int ret = kr->kek ? token_sign_fn(&t, msg, len, sig) : KEYRING_E_NO_KEK;
	pthread_mutex_unlock(&kr->lock);
	return ret;
}

/* A note signer for entry e: its key in the token, or its seed opened. */
static int entry_note_signer(const struct keyring *kr, const struct entry *e,
			     const char *name, size_t name_len,
			     struct note_signer *out)
{
	unsigned char *seed;
	int ret;

	if (keyring_image_in_token(e->image))
		return note_signer_external(name, name_len, e->key.pub,
					    note_token_sign, (void *)kr,
					    e->image + OFF_MAC, out) == 0
			       ? 0
			       : KEYRING_E_INVALID_ARGUMENT;
	ret = entry_seed(kr, e, &seed);
	if (ret != 0)
		return ret;
	if (note_signer_from_seed(name, name_len, seed, out) != 0)
		ret = KEYRING_E_INVALID_ARGUMENT;
	sodium_free(seed);
	return ret;
}

/* The current signer's private key, decrypted for one use. */
static int signer_key(const struct keyring *kr, int64_t now,
		      struct jose_seckey **out)
{
	const struct entry *e = NULL;
	unsigned char *seed;
	int ret;

	*out = NULL;
	ret = current_seed(kr, now, &e, &seed);
	if (ret != 0)
		return ret;
	if (jose_seckey_from_seed(seed, e->key.kid, out) != 0)
		ret = KEYRING_E_INTERNAL;
	sodium_free(seed);
	return ret;
}

static int keyring_note_signer_unlocked(const struct keyring *kr, int64_t now,
					const char *name, size_t name_len,
					struct note_signer *out)
{
	const struct entry *e;

	if (!kr)
		return KEYRING_E_INVALID_ARGUMENT;
	if (!kr->kek)
		return KEYRING_E_NO_KEK;
	e = current_entry(kr, now);
	if (!e)
		return KEYRING_E_NO_SIGNING_KEY;
	return entry_note_signer(kr, e, name, name_len, out);
}

/* Is the current signer a key in the token?  Then its public key (with
 * its kid) and the CKA_ID it is named by. */
static bool in_token_signer(const struct keyring *kr, int64_t now,
			    struct jose_pubkey *pub, const unsigned char **ref)
{
	const struct entry *e = kr && kr->kek ? current_entry(kr, now) : NULL;

	if (!e || !keyring_image_in_token(e->image))
		return false;
	memset(pub, 0, sizeof(*pub));
	memcpy(pub->x, e->key.pub, sizeof(pub->x));
	snprintf(pub->kid, sizeof(pub->kid), "%s", e->key.kid);
	*ref = e->image + OFF_MAC;
	return true;
}

static int sign_ret(int jose_ret)
{
	if (jose_ret == 0)
		return 0;
	return jose_ret == -JOSE_buffer_too_small ? KEYRING_E_NO_SPACE
						  : KEYRING_E_SIGN_FAILED;
}

static int keyring_sign_jws_unlocked(const struct keyring *kr, int64_t now,
				     const char *typ, const void *payload,
				     size_t len, char *out, size_t out_size,
				     size_t *out_len)
{
	struct jose_sign_opts opts = {.alg = JOSE_ALG_EDDSA,
				      .typ = typ,
				      .with_kid = true,
				      .large = true};
	struct jose_seckey *sk = NULL;
	struct jose_pubkey pub;
	struct token_sign t = {kr, NULL, 0};
	int ret;

	if (in_token_signer(kr, now, &pub, &t.ref)) {
		ret = jose_jws_sign_with(&pub, token_sign_fn, &t, &opts,
					 payload, len, out, out_size, out_len);
		return t.ret ? t.ret : sign_ret(ret);
	}
	ret = signer_key(kr, now, &sk);
	if (ret == 0)
		ret = sign_ret(jose_jws_sign(sk, &opts, payload, len, out,
					     out_size, out_len));
	jose_seckey_free(sk);
	return ret;
}

static int keyring_sign_jwt_unlocked(const struct keyring *kr, int64_t now,
				     const char *typ, const json_t *claims,
				     char *out, size_t out_size,
				     size_t *out_len)
{
	struct jose_sign_opts opts = {.alg = JOSE_ALG_EDDSA,
				      .typ = typ,
				      .with_kid = true,
				      .large = true};
	struct jose_seckey *sk = NULL;
	struct jose_pubkey pub;
	struct token_sign t = {kr, NULL, 0};
	int ret;

	if (in_token_signer(kr, now, &pub, &t.ref)) {
		ret = jose_jwt_sign_with(&pub, token_sign_fn, &t, &opts, claims,
					 out, out_size, out_len);
		return t.ret ? t.ret : sign_ret(ret);
	}
	ret = signer_key(kr, now, &sk);
	if (ret == 0)
		ret = sign_ret(jose_jwt_sign(sk, &opts, claims, out, out_size,
					     out_len));
	jose_seckey_free(sk);
	return ret;
}

/* ---- locked entry points ------------------------------------------------ */

int keyring_verifier(const struct keyring *kr, const char *kid, int64_t now,
		     struct jose_pubkey *out)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	int ret = keyring_verifier_unlocked(kr, kid, now, out);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return ret;
}

int keyring_rotate(struct keyring *kr, int64_t now, int64_t overlap_s,
		   struct keyring_rotation *rot, char *err, size_t err_size)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	int ret =
		keyring_rotate_unlocked(kr, now, overlap_s, rot, err, err_size);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return ret;
}

size_t keyring_rotation_dropped_text(const struct keyring_rotation *rot,
				     char *out, size_t out_size)
{
	size_t len = 0;

	if (out_size)
		out[0] = '\0';
	for (size_t i = 0; i < rot->n_dropped && out_size; i++) {
		int n = snprintf(out + len, out_size - len, "%s%s",
				 i ? "," : "", rot->dropped[i]);
		if (n < 0 || (size_t)n >= out_size - len)
			break;
		len += (size_t)n;
	}
	return rot->n_dropped;
}

int keyring_prune(struct keyring *kr, int64_t now, size_t *n_pruned, char *err,
		  size_t err_size)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	int ret = keyring_prune_unlocked(kr, now, n_pruned, err, err_size);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return ret;
}

int keyring_jwks(const struct keyring *kr, int64_t now, char *out,
		 size_t out_size, size_t *out_len)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	int ret = keyring_jwks_unlocked(kr, now, out, out_size, out_len);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return ret;
}

int keyring_note_signer(const struct keyring *kr, int64_t now, const char *name,
			size_t name_len, struct note_signer *out)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	int ret = keyring_note_signer_unlocked(kr, now, name, name_len, out);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return ret;
}

int keyring_note_signers_retired(const struct keyring *kr, int64_t now,
				 const char *name, size_t name_len,
				 struct note_signer *out, size_t max,
				 size_t *n_out)
{
	struct keyring *k = (struct keyring *)kr;
	int ret = 0;

	*n_out = 0;
	if (!kr->kek)
		return KEYRING_E_NO_KEK;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < kr->n && *n_out < max && ret == 0; i++) {
		const struct entry *e = &kr->e[i];
		if (e->key.retire_at > now || e->key.expires_at <= now)
			continue; /* signs (or is yet to), or verifies no more
				   */
		ret = entry_note_signer(kr, e, name, name_len, &out[*n_out]);
		if (ret == 0)
			(*n_out)++;
	}
	pthread_mutex_unlock(&k->lock);
	if (ret != 0) {
		for (size_t i = 0; i < *n_out; i++)
			note_signer_clear(&out[i]);
		*n_out = 0;
	}
	return ret;
}

int keyring_sign_jws(const struct keyring *kr, int64_t now, const char *typ,
		     const void *payload, size_t len, char *out,
		     size_t out_size, size_t *out_len)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	int ret = keyring_sign_jws_unlocked(kr, now, typ, payload, len, out,
					    out_size, out_len);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return ret;
}

int keyring_sign_jwt(const struct keyring *kr, int64_t now, const char *typ,
		     const json_t *claims, char *out, size_t out_size,
		     size_t *out_len)
{
	pthread_mutex_lock(&((struct keyring *)kr)->lock);
	int ret = keyring_sign_jwt_unlocked(kr, now, typ, claims, out, out_size,
					    out_len);
	pthread_mutex_unlock(&((struct keyring *)kr)->lock);
	return ret;
}

size_t keyring_count_in_token(const struct keyring *kr, int64_t now,
			      bool *current)
{
	struct keyring *k = (struct keyring *)kr;
	size_t n = 0;

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < kr->n; i++)
		n += keyring_image_in_token(kr->e[i].image);
	const struct entry *e = current_entry(kr, now);
	if (current)
		*current = e && keyring_image_in_token(e->image);
	pthread_mutex_unlock(&k->lock);
	return n;
}

size_t keyring_keys_copy(const struct keyring *kr, struct keyring_key *out,
			 size_t max)
{
	struct keyring *k = (struct keyring *)kr;
	pthread_mutex_lock(&k->lock);
	size_t n = 0;
	for (; n < kr->n && n < max; n++)
		out[n] = *keyring_key_at(kr, n);
	pthread_mutex_unlock(&k->lock);
	return n;
}

int keyring_current_copy(const struct keyring *kr, int64_t now,
			 struct keyring_key *out)
{
	struct keyring *k = (struct keyring *)kr;
	pthread_mutex_lock(&k->lock);
	const struct keyring_key *c = keyring_current_signer(kr, now);
	if (c)
		*out = *c;
	pthread_mutex_unlock(&k->lock);
	return c ? 0 : -1;
}

/* ---- secrets sealed by the KEK (the card vault's wrapping keys) -------- */

#define SEALED_AAD_MAX 256

/* aad || KEK id, the associated data of a sealed secret. */
static int sealed_aad(const unsigned char *aad, size_t aad_len,
		      const unsigned char id[KEYRING_KEK_ID_BYTES],
		      unsigned char out[SEALED_AAD_MAX + KEYRING_KEK_ID_BYTES])
{
	if (aad_len > SEALED_AAD_MAX || (aad_len && !aad))
		return KEYRING_E_INVALID_ARGUMENT;
	if (aad_len)
		memcpy(out, aad, aad_len);
	memcpy(out + aad_len, id, KEYRING_KEK_ID_BYTES);
	return 0;
}

/* The file KEK's subkey 4 into guarded memory (*out, sodium_free'd by
 * the caller, also on failure). */
static int secret_key(const struct keyring_kek *kek, unsigned char **out)
{
	*out = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
	if (!*out)
		return KEYRING_E_NO_MEMORY;
	return kek_derive(kek, SUBKEY_SECRET, *out,
			  crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
}

int keyring_kek_seal_secret(const struct keyring_kek *kek,
			    const unsigned char *aad, size_t aad_len,
			    const unsigned char nonce[24],
			    const unsigned char secret[32],
			    unsigned char out[KEYRING_SEALED_BYTES], char *err,
			    size_t err_size)
{
	unsigned char ad[SEALED_AAD_MAX + KEYRING_KEK_ID_BYTES];
	unsigned char *key = NULL;
	unsigned long long n = 0;
	int ret;

	if (!kek || !nonce || !secret || !out)
		return KEYRING_E_INVALID_ARGUMENT;
	ret = sealed_aad(aad, aad_len, kek->id, ad);
	if (ret)
		return ret;
	memset(out, 0, KEYRING_SEALED_BYTES);
	memcpy(out, kek->id, KEYRING_KEK_ID_BYTES);
	memcpy(out + 16, nonce, 24);
	if (keyring_kek_in_token(kek))
		return kek->prov.wrap(kek->prov.ctx, ad,
				      aad_len + KEYRING_KEK_ID_BYTES, out + 16,
				      secret, 32, out + 40, out + 72, err,
				      err_size);
	ret = secret_key(kek, &key);
	if (ret == 0 &&
	    crypto_aead_xchacha20poly1305_ietf_encrypt(
		    out + 40, &n, secret, 32, ad,
		    aad_len + KEYRING_KEK_ID_BYTES, NULL, out + 16, key) != 0)
		ret = KEYRING_E_INTERNAL;
	sodium_free(key);
	return ret;
}

int keyring_kek_open_secret(const struct keyring_kek *kek,
			    const unsigned char *aad, size_t aad_len,
			    const unsigned char in[KEYRING_SEALED_BYTES],
			    unsigned char secret[32], char *err,
			    size_t err_size)
{
	unsigned char ad[SEALED_AAD_MAX + KEYRING_KEK_ID_BYTES];
	unsigned char *key = NULL;
	unsigned long long n = 0;
	bool in_tok = keyring_kek_in_token(kek);
	int ret;

	if (!kek || !in || !secret)
		return KEYRING_E_INVALID_ARGUMENT;
	if (sodium_memcmp(in, kek->id, KEYRING_KEK_ID_BYTES) != 0 &&
	    !(in_tok && kek->prov.knows &&
	      kek->prov.knows(kek->prov.ctx, in))) {
		keyring__say(err, err_size,
			     "sealed by another key-encryption key");
		return KEYRING_E_WRONG_KEK;
	}
	ret = sealed_aad(aad, aad_len, in, ad);
	if (ret)
		return ret;
	if (in_tok)
		return kek->prov.unwrap(
			kek->prov.ctx, in, ad, aad_len + KEYRING_KEK_ID_BYTES,
			in + 16, in + 40, 32, in + 72, secret, err, err_size);
	ret = secret_key(kek, &key);
	if (ret == 0 &&
	    crypto_aead_xchacha20poly1305_ietf_decrypt(
		    secret, &n, NULL, in + 40, 48, ad,
		    aad_len + KEYRING_KEK_ID_BYTES, in + 16, key) != 0) {
		keyring__say(err, err_size, "the sealed secret was modified");
		ret = KEYRING_E_CIPHERTEXT_MODIFIED;
	}
	sodium_free(key);
	return ret;
}
