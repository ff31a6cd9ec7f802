/*
 * fuzz_keyfile.c - libFuzzer driver for the key file decoder of the
 * server keyring (src/crypto/keyring.c): the input is the whole file.
 *
 * A key file is read at start-up from a directory an attacker may have
 * written to, so decoding must never crash and never accept a forgery.
 * The input is decoded twice, with one fixed KEK and without a KEK:
 *   - a refusal must be a code of the keyring's table with a message;
 *   - whatever is accepted with the KEK must be genuine: sealing the
 *     decoded metadata and seed again, with the nonce found in the input,
 *     must give back the input byte for byte (sealing is deterministic for
 *     a nonce), so only what the seeds carry can pass;
 *   - whatever is accepted with the KEK is accepted without it, with the
 *     same public metadata;
 *   - the same with a KEK kept in a token (format version 2, issue 19):
 *     a stand-in provider seals with ChaCha20-Poly1305 under a fixed key
 *     (12-byte IV, 16-byte tag, like the token's AES-GCM), and what it
 *     accepts seals back to the input byte for byte.
 *
 * Built by `make fuzz` with the rest (build/fuzz/fuzz_keyfile); run:
 *   build/fuzz/fuzz_keyfile -dict=tests/fuzz/keyfile.dict \
 *     build/fuzz/corpus-keyfile tests/fuzz/corpus/keyfile
 *
 * Seed corpus: compiled with -DKEYFILE_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DKEYFILE_CORPUS_MAIN -Isrc \
 *     tests/fuzz/fuzz_keyfile.c src/crypto/keyring.c src/crypto/jose.c \
 *     src/crypto/b64url.c $(pkg-config --cflags --libs jansson libsodium) \
 *     -o gen && ./gen tests/fuzz/corpus/keyfile
 */
#include "crypto/jose.h"
#include "crypto/keyring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
static int try_token(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* The fixed KEK of every seed (32 bytes 0x00..0x1f, base64url). */
static const char fixed_kek[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

static struct keyring_kek *kek(void)
{
	static struct keyring_kek *k;

	if (!k) {
		CHECK(jose_init() == 0);
		CHECK(keyring_kek_parse(fixed_kek, strlen(fixed_kek), &k, NULL,
					0) == 0);
	}
	return k;
}

/* The stand-in token: the IETF ChaCha20-Poly1305 under a fixed key. */
static const unsigned char token_key[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
					    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
					    7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

static int token_wrap(void *ctx, const unsigned char *aad, size_t aad_len,
		      const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
		      const unsigned char *pt, size_t len, unsigned char *ct,
		      unsigned char tag[KEYRING_TOKEN_TAG_BYTES], char *err,
		      size_t err_size)
{
	(void)ctx, (void)err, (void)err_size;
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(
		ct, tag, NULL, pt, len, aad, aad_len, NULL, iv, token_key);
	return 0;
}

static int token_unwrap(void *ctx,
			const unsigned char kek_id[KEYRING_KEK_ID_BYTES],
			const unsigned char *aad, size_t aad_len,
			const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
			const unsigned char *ct, size_t len,
			const unsigned char tag[KEYRING_TOKEN_TAG_BYTES],
			unsigned char *pt, char *err, size_t err_size)
{
	(void)ctx, (void)kek_id, (void)err, (void)err_size;
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		       pt, NULL, ct, len, tag, aad, aad_len, iv, token_key) == 0
		       ? 0
		       : KEYRING_E_CIPHERTEXT_MODIFIED;
}

/* Its KEK id: 16 bytes 0xA0..0xAF. */
static struct keyring_kek *token_kek(void)
{
	static struct keyring_kek *k;
	if (!k) {
		struct keyring_kek_provider p = {.wrap = token_wrap,
						 .unwrap = token_unwrap};
		unsigned char id[KEYRING_KEK_ID_BYTES];
		for (int i = 0; i < KEYRING_KEK_ID_BYTES; i++)
			id[i] = (unsigned char)(0xA0 + i);
		CHECK(jose_init() == 0);
		CHECK(keyring_kek_from_provider(&p, id, &k) == 0);
	}
	return k;
}

static void check_refusal(int ret, const char *err)
{
	CHECK(ret < 0);
	CHECK(strcmp(keyring_strerror(ret), "unknown") != 0);
	CHECK(memchr(err, '\0', KEYRING_ERR_BYTES) != NULL);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct keyring_key meta, pub;
	unsigned char seed[JOSE_ED25519_SEED_BYTES];
	unsigned char again[KEYRING_KEYFILE_BYTES];
	char err[KEYRING_ERR_BYTES];
	int ret, ret_pub;

	err[0] = '\0';
	ret = keyring__keyfile_open(data, size, kek(), &meta, seed, err,
				    sizeof(err));
	err[0] = '\0';
	ret_pub = keyring_keyfile_decode(data, size, NULL, &pub, err,
					 sizeof(err));
	if (ret_pub)
		check_refusal(ret_pub, err);
	if (try_token(data, size))
		CHECK(ret_pub == 0);
	if (ret) {
		check_refusal(ret, err);
		return 0;
	}
	CHECK(size == KEYRING_KEYFILE_BYTES);
	CHECK(keyring__keyfile_seal(&meta, seed, data + 176, kek(), again) ==
	      0);
	CHECK(memcmp(again, data, KEYRING_KEYFILE_BYTES) == 0);
	CHECK(ret_pub == 0);
	CHECK(strcmp(pub.kid, meta.kid) == 0);
	CHECK(memcmp(pub.pub, meta.pub, sizeof(pub.pub)) == 0);
	CHECK(pub.created_at == meta.created_at &&
	      pub.activate_at == meta.activate_at &&
	      pub.retire_at == meta.retire_at &&
	      pub.expires_at == meta.expires_at);
	sodium_memzero(seed, sizeof(seed));
	return 0;
}

/* The same decoding with the token's KEK; 1 when it accepted. */
static int try_token(const unsigned char *data, size_t size)
{
	struct keyring_key meta;
	unsigned char seed[JOSE_ED25519_SEED_BYTES];
	unsigned char again[KEYRING_KEYFILE_BYTES];
	char err[KEYRING_ERR_BYTES] = "";
	int ret = keyring__keyfile_open(data, size, token_kek(), &meta, seed,
					err, sizeof(err));
	if (ret) {
		check_refusal(ret, err);
		return 0;
	}
	CHECK(size == KEYRING_KEYFILE_BYTES);
	CHECK(keyring__keyfile_seal(&meta, seed, data + 176, token_kek(),
				    again) == 0);
	CHECK(memcmp(again, data, KEYRING_KEYFILE_BYTES) == 0);
	sodium_memzero(seed, sizeof(seed));
	return 1;
}

#ifdef KEYFILE_CORPUS_MAIN
static void put(const char *dir, const char *name, const unsigned char *buf,
		size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(buf, 1, len, f) == len);
	CHECK(fclose(f) == 0);
	LLVMFuzzerTestOneInput(buf, len); /* every seed runs clean */
}

/* A genuine file: seed byte s, the given times, nonce byte s. */
static void genuine(const struct keyring_kek *k, unsigned char s,
		    int64_t created, int64_t activate, int64_t retire,
		    int64_t expires, unsigned char out[KEYRING_KEYFILE_BYTES])
{
	unsigned char seed[JOSE_ED25519_SEED_BYTES], nonce[24];
	struct jose_seckey *sk = NULL;
	struct jose_pubkey pk;
	struct keyring_key meta;

	memset(seed, s, sizeof(seed));
	memset(nonce, s, sizeof(nonce));
	CHECK(jose_seckey_from_seed(seed, NULL, &sk) == 0);
	jose_seckey_public(sk, &pk);
	jose_seckey_free(sk);
	memset(&meta, 0, sizeof(meta));
	memcpy(meta.pub, pk.x, sizeof(meta.pub));
	CHECK(jose_thumbprint(&pk, meta.kid) == 0);
	meta.created_at = created;
	meta.activate_at = activate;
	meta.retire_at = retire;
	meta.expires_at = expires;
	CHECK(keyring__keyfile_seal(&meta, seed, nonce, k, out) == 0);
}

int main(int argc, char **argv)
{
	unsigned char b[KEYRING_KEYFILE_BYTES], c[KEYRING_KEYFILE_BYTES + 8];
	struct keyring_kek *other = NULL;
	const char *dir = argc > 1 ? argv[1] : ".";

	genuine(kek(), 1, 1700000000, 1700000000, KEYRING_NEVER, KEYRING_NEVER,
		b);
	put(dir, "current", b, sizeof(b));
	genuine(kek(), 2, 1700000000, 1700000000, 1700086400, 1700090000, b);
	put(dir, "retired", b, sizeof(b));
	genuine(kek(), 3, 0, 0, 0, 0, b);
	put(dir, "epoch", b, sizeof(b));
	genuine(kek(), 4, JOSE_NUMERIC_DATE_MAX, JOSE_NUMERIC_DATE_MAX,
		JOSE_NUMERIC_DATE_MAX, KEYRING_NEVER, b);
	put(dir, "far-future", b, sizeof(b));

	/* refusals: each reaches a different check */
	memcpy(c, b, sizeof(b));
	c[7] = 2;
	put(dir, "version-2", c, sizeof(b));
	memcpy(c, b, sizeof(b));
	memset(c + sizeof(b), 0, 8);
	put(dir, "padded", c, sizeof(c));
	put(dir, "truncated", b, 100);
	put(dir, "magic-only", b, 8);
	memcpy(c, b, sizeof(b));
	c[210] ^= 1;
	put(dir, "ciphertext-flip", c, sizeof(b));
	memcpy(c, b, sizeof(b));
	c[47] ^= 1;
	put(dir, "expiry-flip", c, sizeof(b));
	CHECK(keyring_kek_parse("_wECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
				43, &other, NULL, 0) == 0);
	genuine(other, 5, 1700000000, 1700000000, KEYRING_NEVER, KEYRING_NEVER,
		b);
	put(dir, "other-kek", b, sizeof(b));
	keyring_kek_free(other);
	genuine(token_kek(), 6, 1700000000, 1700000000, KEYRING_NEVER,
		KEYRING_NEVER, b);
	put(dir, "token-sealed", b, sizeof(b));
	return 0;
}
#endif
