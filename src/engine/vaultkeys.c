/*
 * vaultkeys.c - the card vault's key store (vaultkeys.h): the file
 * formats, the wrapping epochs and the crash-safe order of an erasure.
 *
 * <DATA>.vaultwrap, the wrapping keys (all integers little-endian):
 *     0   8  "TPWVWRAP"
 *     8   4  format version, 1
 *    12   4  how many keys follow: 1, or 2 during an erasure
 *    16      per key: 8 epoch, 88 the key sealed by the KEK
 *            (keyring_kek_seal_secret; associated data "tpwvwrap" and
 *            the epoch)
 * DATA/vault/keystore:
 *     0   8  "TPWVKEYS"
 *     8   4  format version, 1
 *    12   4  reserved, zero
 *    16   8  epoch: which wrapping key sealed it
 *    24   8  body bytes
 *    32  24  nonce
 *    56      body sealed by XChaCha20-Poly1305, associated data [0, 32)
 * The body: 32 fingerprint key; 4 newest version; 4 lowest version
 * kept; 4 versions kept; 4 data keys; per version 4 version, 4 zero, 32
 * key; per data key 32 token (NUL-padded), 4 version, 4 zero, 24 nonce,
 * 48 the data key sealed by that version's key (associated data: the
 * token's 32 bytes and the version).
 *
 * An erasure, in an order whose every crash point is safe:
 *   1. the wrap file gets the old key (epoch e) and a new one (e + 1);
 *   2. the key store, without the card's data key, under the new key;
 *   3. the wrap file keeps only the new key: the old one is gone.
 * A start that finds two keys keeps the one of the key store's epoch
 * (the erasure's entry is in the journal before step 1, so
 * vaultkeys_reconcile redoes the shredding when step 2 did not happen).
 */
#include "engine/vaultkeys.h"
#include "crypto/ff1.h"
#include "crypto/keyring.h"
#include "log/fsdir.h"
#include "log/formats.h"
#include "log/fsfile.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define KEY_BYTES   32
#define WRAP_MAGIC  "TPWVWRAP"
#define STORE_MAGIC VAULT_KEYSTORE_MAGIC
#define WRAP_HEAD   16
#define WRAP_ENTRY  (8 + KEYRING_SEALED_BYTES)
#define STORE_HEAD  32
#define NONCE_BYTES 24
#define TAG_BYTES   16
#define BODY_HEAD   (KEY_BYTES + 16)
#define VKEY_BYTES  (8 + KEY_BYTES)
#define WDK_BYTES   (KEY_BYTES + TAG_BYTES)
#define ENTRY_BYTES (VAULT_TOKEN_BYTES + 8 + NONCE_BYTES + WDK_BYTES)
#define TOKEN_TRIES 8
#define PATH_BYTES  4096

struct vkey {
	u32 version;
	u8 key[KEY_BYTES];
};

struct entry {
	char token[VAULT_TOKEN_BYTES];
	u32 version;
	u8 nonce[NONCE_BYTES];
	u8 wdk[WDK_BYTES];
};

struct secrets { /* sodium_malloc'd: guarded, wiped when freed */
	u8 wrap[KEY_BYTES];
	u8 fp_key[KEY_BYTES];
	struct vkey v[VAULTKEYS_VERSIONS_MAX];
};

struct vaultkeys {
	pthread_mutex_t lock;
	const struct keyring_kek *kek;
	char dir[PATH_BYTES];	   /* DATA/vault */
	char wrap_dir[PATH_BYTES]; /* DATA's parent */
	char wrap_name[PATH_BYTES];
	bool usable;
	u64 epoch;
	u32 version, min_version, nv;
	struct secrets *s;
	struct entry *e; /* data keys, wrapped */
	u32 n, cap;
};

static void put32(u8 *p, u32 v)
{
	memcpy(p, &v, 4);
}

static u32 get32(const u8 *p)
{
	u32 v;
	memcpy(&v, p, 4);
	return v;
}

static void put64(u8 *p, u64 v)
{
	memcpy(p, &v, 8);
}

static u64 get64(const u8 *p)
{
	u64 v;
	memcpy(&v, p, 8);
	return v;
}

static void say(char *err, size_t size, const char *what)
{
	if (err && size)
		snprintf(err, size, "%s", what);
}

/* ---- the wrap file ------------------------------------------------------ */

static void wrap_aad(u64 epoch, u8 aad[16])
{
	memcpy(aad, "tpwvwrap", 8);
	put64(aad + 8, epoch);
}

/* Writes the wrap file with keys[0..n) of epochs[0..n). */
static int write_wrap(struct vaultkeys *k, const u8 (*keys)[KEY_BYTES],
		      const u64 *epochs, u32 n)
{
	u8 buf[WRAP_HEAD + 2 * WRAP_ENTRY];
	char why[KEYRING_ERR_BYTES];

	memcpy(buf, WRAP_MAGIC, 8);
	put32(buf + 8, 1);
	put32(buf + 12, n);
	for (u32 i = 0; i < n; i++) {
		u8 aad[16], nonce[NONCE_BYTES];
		u8 *at = buf + WRAP_HEAD + i * WRAP_ENTRY;
		wrap_aad(epochs[i], aad);
		randombytes_buf(nonce, sizeof(nonce));
		put64(at, epochs[i]);
		if (keyring_kek_seal_secret(k->kek, aad, sizeof(aad), nonce,
					    keys[i], at + 8, why, sizeof(why)))
			return -EIO;
	}
	return fsfile_replace(k->wrap_dir, k->wrap_name, buf,
			      WRAP_HEAD + n * WRAP_ENTRY);
}

/* The wrapping key of epoch from the wrap file: 0, -ENOENT (no file),
 * -ENOKEY (no key of that epoch), -EKEYREJECTED, -EBADMSG. */
static int read_wrap(struct vaultkeys *k, u64 epoch, u8 key[KEY_BYTES],
		     u32 *nkeys)
{
	char path[PATH_BYTES * 2 + 2], *buf = NULL;
	char why[KEYRING_ERR_BYTES];
	size_t len = 0;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", k->wrap_dir, k->wrap_name);
	ret = fsfile_read(path, WRAP_HEAD + 2 * WRAP_ENTRY, &buf, &len);
	if (ret)
		return ret;
	u32 n = len >= WRAP_HEAD ? get32((u8 *)buf + 12) : 0;
	if (len < WRAP_HEAD || memcmp(buf, WRAP_MAGIC, 8) != 0 ||
	    get32((u8 *)buf + 8) != 1 || n < 1 || n > 2 ||
	    len != WRAP_HEAD + n * WRAP_ENTRY) {
		free(buf);
		return -EBADMSG;
	}
	*nkeys = n;
	ret = -ENOKEY;
	for (u32 i = 0; i < n; i++) {
		const u8 *at = (u8 *)buf + WRAP_HEAD + i * WRAP_ENTRY;
		u8 aad[16];
		if (get64(at) != epoch)
			continue;
		wrap_aad(epoch, aad);
		ret = keyring_kek_open_secret(k->kek, aad, sizeof(aad), at + 8,
					      key, why, sizeof(why))
			      ? -EKEYREJECTED
			      : 0;
		break;
	}
	sodium_memzero(buf, len);
	free(buf);
	return ret;
}

/* ---- the key store ------------------------------------------------------ */

static int write_store(struct vaultkeys *k, const u8 wrap[KEY_BYTES], u64 epoch)
{
	size_t body = BODY_HEAD + (size_t)k->nv * VKEY_BYTES +
		      (size_t)k->n * ENTRY_BYTES;
	size_t total = STORE_HEAD + NONCE_BYTES + body + TAG_BYTES;
	u8 *plain = sodium_malloc(body ? body : 1);
	u8 *out = malloc(total);
	unsigned long long clen = 0;
	int ret = -ENOMEM;

	if (!plain || !out)
		goto cleanup;
	memcpy(plain, k->s->fp_key, KEY_BYTES);
	put32(plain + KEY_BYTES, k->version);
	put32(plain + KEY_BYTES + 4, k->min_version);
	put32(plain + KEY_BYTES + 8, k->nv);
	put32(plain + KEY_BYTES + 12, k->n);
	u8 *p = plain + BODY_HEAD;
	for (u32 i = 0; i < k->nv; i++, p += VKEY_BYTES) {
		put32(p, k->s->v[i].version);
		put32(p + 4, 0);
		memcpy(p + 8, k->s->v[i].key, KEY_BYTES);
	}
	for (u32 i = 0; i < k->n; i++, p += ENTRY_BYTES) {
		memcpy(p, k->e[i].token, VAULT_TOKEN_BYTES);
		put32(p + VAULT_TOKEN_BYTES, k->e[i].version);
		put32(p + VAULT_TOKEN_BYTES + 4, 0);
		memcpy(p + VAULT_TOKEN_BYTES + 8, k->e[i].nonce, NONCE_BYTES);
		memcpy(p + VAULT_TOKEN_BYTES + 8 + NONCE_BYTES, k->e[i].wdk,
		       WDK_BYTES);
	}
	memcpy(out, STORE_MAGIC, 8);
	put32(out + 8, VAULT_KEYSTORE_VERSION);
	put32(out + 12, 0);
	put64(out + 16, epoch);
	put64(out + 24, body);
	randombytes_buf(out + STORE_HEAD, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		out + STORE_HEAD + NONCE_BYTES, &clen, plain, body, out,
		STORE_HEAD, NULL, out + STORE_HEAD, wrap);
	ret = fsfile_replace(k->dir, VAULTKEYS_FILE, out, total);
cleanup:
	sodium_free(plain);
	free(out);
	return ret;
}

static int grow(struct vaultkeys *k)
{
	if (k->n < k->cap)
		return 0;
	u32 cap = k->cap ? k->cap * 2 : 64;
	struct entry *e = calloc(cap, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (k->n)
		memcpy(e, k->e, (size_t)k->n * sizeof(*e));
	free(k->e);
	k->e = e;
	k->cap = cap;
	return 0;
}

/* Parses the opened body into k; -EBADMSG when it is not well-formed. */
static int parse_body(struct vaultkeys *k, const u8 *b, size_t len)
{
	if (len < BODY_HEAD)
		return -EBADMSG;
	u32 nv = get32(b + KEY_BYTES + 8), n = get32(b + KEY_BYTES + 12);
	if (nv < 1 || nv > VAULTKEYS_VERSIONS_MAX ||
	    len != BODY_HEAD + (size_t)nv * VKEY_BYTES +
			    (size_t)n * ENTRY_BYTES)
		return -EBADMSG;
	memcpy(k->s->fp_key, b, KEY_BYTES);
	k->version = get32(b + KEY_BYTES);
	k->min_version = get32(b + KEY_BYTES + 4);
	k->nv = nv;
	const u8 *p = b + BODY_HEAD;
	for (u32 i = 0; i < nv; i++, p += VKEY_BYTES) {
		k->s->v[i].version = get32(p);
		memcpy(k->s->v[i].key, p + 8, KEY_BYTES);
	}
	for (u32 i = 0; i < n; i++, p += ENTRY_BYTES) {
		if (grow(k))
			return -ENOMEM;
		struct entry *e = &k->e[k->n++];
		memcpy(e->token, p, VAULT_TOKEN_BYTES);
		e->version = get32(p + VAULT_TOKEN_BYTES);
		memcpy(e->nonce, p + VAULT_TOKEN_BYTES + 8, NONCE_BYTES);
		memcpy(e->wdk, p + VAULT_TOKEN_BYTES + 8 + NONCE_BYTES,
		       WDK_BYTES);
	}
	return 0;
}

/* Reads and opens the key store: 0, -ENOENT (none), or a reason. */
static int read_store(struct vaultkeys *k, char *err, size_t err_size)
{
	char path[PATH_BYTES + 16], *buf = NULL;
	size_t len = 0;
	u8 *plain = NULL;
	u32 nkeys = 0;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", k->dir, VAULTKEYS_FILE);
	ret = fsfile_read(path, VAULTKEYS_FILE_BYTES_MAX, &buf, &len);
	if (ret)
		return ret;
	const u8 *b = (const u8 *)buf;
	if (len < STORE_HEAD + NONCE_BYTES + TAG_BYTES ||
	    memcmp(b, STORE_MAGIC, 8) != 0 ||
	    get32(b + 8) != VAULT_KEYSTORE_VERSION ||
	    get64(b + 24) != len - STORE_HEAD - NONCE_BYTES - TAG_BYTES) {
		say(err, err_size, "DATA/vault/keystore is not a key store");
		ret = -EBADMSG;
		goto cleanup;
	}
	k->epoch = get64(b + 16);
	ret = read_wrap(k, k->epoch, k->s->wrap, &nkeys);
	if (ret == -ENOENT || ret == -ENOKEY) {
		say(err, err_size,
		    "the key store's wrapping key was destroyed (an erasure "
		    "replaced it: is this an old copy of DATA/vault?) or its "
		    "wrap file beside the data directory is missing");
		ret = -ENOKEY;
		goto cleanup;
	}
	if (ret) {
		say(err, err_size,
		    "the vault's wrap file does not open with this "
		    "key-encryption key, or is damaged");
		goto cleanup;
	}
	size_t body = len - STORE_HEAD - NONCE_BYTES - TAG_BYTES;
	plain = sodium_malloc(body ? body : 1);
	if (!plain) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    plain, NULL, NULL, b + STORE_HEAD + NONCE_BYTES,
		    body + TAG_BYTES, b, STORE_HEAD, b + STORE_HEAD,
		    k->s->wrap) != 0 ||
	    parse_body(k, plain, body) != 0) {
		say(err, err_size, "DATA/vault/keystore was modified");
		ret = -EBADMSG;
		goto cleanup;
	}
	if (nkeys == 2) /* an erasure stopped after step 1 or 2: finish */
		ret = write_wrap(k, (const u8(*)[KEY_BYTES])k->s->wrap,
				 &k->epoch, 1);
cleanup:
	sodium_free(plain);
	if (buf)
		sodium_memzero(buf, len);
	free(buf);
	return ret;
}

static int create(struct vaultkeys *k)
{
	k->epoch = 1;
	k->version = k->min_version = 1;
	k->nv = 1;
	randombytes_buf(k->s->wrap, KEY_BYTES);
	randombytes_buf(k->s->fp_key, KEY_BYTES);
	k->s->v[0].version = 1;
	randombytes_buf(k->s->v[0].key, KEY_BYTES);
	int ret =
		write_wrap(k, (const u8(*)[KEY_BYTES])k->s->wrap, &k->epoch, 1);
	if (ret == 0)
		ret = write_store(k, k->s->wrap, k->epoch);
	return ret;
}

static int split_path(struct vaultkeys *k, const char *data_dir)
{
	char tmp[PATH_BYTES - 32];
	size_t n = strlen(data_dir);

	while (n > 1 && data_dir[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, data_dir, n);
	tmp[n] = '\0';
	snprintf(k->dir, sizeof(k->dir), "%s/%s", tmp, VAULTKEYS_DIR);
	char *slash = strrchr(tmp, '/');
	if (!slash) {
		snprintf(k->wrap_dir, sizeof(k->wrap_dir), ".");
		snprintf(k->wrap_name, sizeof(k->wrap_name), "%s%s", tmp,
			 VAULTKEYS_WRAP_SUFFIX);
	} else {
		*slash = '\0';
		snprintf(k->wrap_dir, sizeof(k->wrap_dir), "%s",
			 slash == tmp ? "/" : tmp);
		snprintf(k->wrap_name, sizeof(k->wrap_name), "%s%s", slash + 1,
			 VAULTKEYS_WRAP_SUFFIX);
	}
	return 0;
}

int vaultkeys_open(const char *data_dir, const struct keyring_kek *kek,
		   struct vaultkeys **out, char *err, size_t err_size)
{
	struct vaultkeys *k = calloc(1, sizeof(*k));
	int ret;

	*out = NULL;
	if (!k)
		return -ENOMEM;
	k->kek = kek;
	pthread_mutex_init(&k->lock, NULL);
	k->s = sodium_malloc(sizeof(*k->s));
	ret = k->s ? split_path(k, data_dir) : -ENOMEM;
	if (ret == 0)
		ret = fsdir_make(k->dir);
	if (ret == 0) {
		ret = read_store(k, err, err_size);
		if (ret == -ENOENT) {
			u8 probe[KEY_BYTES];
			u32 nk;
			/* no key store: make one, unless a wrap file says
			 * one existed (then it was lost: say so) */
			int w = read_wrap(k, 0, probe, &nk);
			if (w == -ENOENT || w == -ENOKEY) {
				k->n = 0;
				ret = create(k);
			} else {
				say(err, err_size,
				    "the vault's wrap file is damaged");
				ret = -EBADMSG;
			}
			sodium_memzero(probe, sizeof(probe));
		}
	}
	if (ret == -ENOMEM || ret == -ENAMETOOLONG || (ret < 0 && !k->s)) {
		vaultkeys_close(k);
		return ret;
	}
	k->usable = ret == 0;
	if (!k->usable && err && !err[0])
		say(err, err_size, "the vault's key store cannot be used");
	if (!k->usable)
		k->n = 0;
	*out = k;
	return 0;
}

void vaultkeys_close(struct vaultkeys *k)
{
	if (!k)
		return;
	sodium_free(k->s);
	if (k->e)
		sodium_memzero(k->e, (size_t)k->cap * sizeof(*k->e));
	free(k->e);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

bool vaultkeys_usable(const struct vaultkeys *k)
{
	return k && k->usable;
}

void vaultkeys_versions(struct vaultkeys *k, u32 *version, u32 *min_version,
			u64 *epoch)
{
	pthread_mutex_lock(&k->lock);
	*version = k->version;
	*min_version = k->min_version;
	*epoch = k->epoch;
	pthread_mutex_unlock(&k->lock);
}

int vaultkeys_fingerprint(struct vaultkeys *k, const char *s, size_t n,
			  u8 out[VAULT_FINGERPRINT_BYTES])
{
	int ret = -EKEYREVOKED;

	pthread_mutex_lock(&k->lock);
	if (k->usable) {
		crypto_generichash(out, VAULT_FINGERPRINT_BYTES, (const u8 *)s,
				   n, k->s->fp_key, KEY_BYTES);
		ret = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static struct entry *find(struct vaultkeys *k, const char *token)
{
	for (u32 i = 0; i < k->n; i++) {
		if (strncmp(k->e[i].token, token, VAULT_TOKEN_BYTES) == 0)
			return &k->e[i];
	}
	return NULL;
}

static const u8 *vkey(struct vaultkeys *k, u32 version)
{
	if (version < k->min_version)
		return NULL;
	for (u32 i = 0; i < k->nv; i++) {
		if (k->s->v[i].version == version)
			return k->s->v[i].key;
	}
	return NULL;
}

static void dk_aad(const char token[VAULT_TOKEN_BYTES], u32 version,
		   u8 aad[VAULT_TOKEN_BYTES + 4])
{
	memcpy(aad, token, VAULT_TOKEN_BYTES);
	put32(aad + VAULT_TOKEN_BYTES, version);
}

static void wrap_dk(struct entry *e, const u8 *key, u32 version,
		    const u8 dk[KEY_BYTES])
{
	u8 aad[VAULT_TOKEN_BYTES + 4];

	e->version = version;
	dk_aad(e->token, version, aad);
	randombytes_buf(e->nonce, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(e->wdk, NULL, dk, KEY_BYTES,
						   aad, sizeof(aad), NULL,
						   e->nonce, key);
}

static int unwrap_dk(struct vaultkeys *k, const struct entry *e,
		     u8 dk[KEY_BYTES])
{
	u8 aad[VAULT_TOKEN_BYTES + 4];
	const u8 *key = vkey(k, e->version);

	if (!key)
		return -EKEYEXPIRED;
	dk_aad(e->token, e->version, aad);
	return crypto_aead_xchacha20poly1305_ietf_decrypt(
		       dk, NULL, NULL, e->wdk, WDK_BYTES, aad, sizeof(aad),
		       e->nonce, key) == 0
		       ? 0
		       : -EBADMSG;
}

/* The format-preserving token of pan under the data key dk. */
static int fpe_token(const u8 dk[KEY_BYTES], const char *pan, size_t n,
		     char token[VAULT_TOKEN_BYTES])
{
	u8 fk[KEY_BYTES];
	struct ff1 f;
	static const char ctx[] = "tpwallet vault ff1 token";
	int ret;

	crypto_generichash(fk, sizeof(fk), (const u8 *)ctx, sizeof(ctx) - 1, dk,
			   KEY_BYTES);
	ret = ff1_init(&f, fk, sizeof(fk), 10);
	sodium_memzero(fk, sizeof(fk));
	if (ret)
		return ret;
	memset(token, 0, VAULT_TOKEN_BYTES);
	token[0] = '0';
	ret = ff1_encrypt_text(&f, NULL, 0, pan, n - 4, token + 1);
	ff1_clear(&f);
	if (ret == 0)
		memcpy(token + 1 + n - 4, pan + n - 4, 4);
	return ret;
}

int vaultkeys_tokenize(struct vaultkeys *k, const u8 plain[VAULT_PLAIN_BYTES],
		       const char *pan, size_t pan_len, bool format_preserving,
		       const u8 fp[VAULT_FINGERPRINT_BYTES],
		       vaultkeys_taken_fn taken, void *ctx,
		       char token[VAULT_TOKEN_BYTES],
		       u8 nonce[VAULT_NONCE_BYTES], u8 ct[VAULT_CT_BYTES])
{
	u8 dk[KEY_BYTES], aad[VAULT_TOKEN_BYTES + VAULT_FINGERPRINT_BYTES];
	int ret = -EEXIST;

	pthread_mutex_lock(&k->lock);
	if (!k->usable) {
		ret = -EKEYREVOKED;
		goto cleanup;
	}
	for (int i = 0; i < TOKEN_TRIES && ret == -EEXIST; i++) {
		randombytes_buf(dk, sizeof(dk));
		if (format_preserving) {
			ret = fpe_token(dk, pan, pan_len, token);
			if (ret) {
				ret = -EINVAL;
				break;
			}
		} else {
			u8 r[12];
			randombytes_buf(r, sizeof(r));
			memset(token, 0, VAULT_TOKEN_BYTES);
			memcpy(token, "tok_", 4);
			sodium_bin2hex(token + 4, VAULT_TOKEN_BYTES - 4, r,
				       sizeof(r));
		}
		ret = (find(k, token) || (taken && taken(ctx, token))) ? -EEXIST
								       : 0;
	}
	if (ret)
		goto cleanup;
	ret = grow(k);
	if (ret)
		goto cleanup;
	struct entry *e = &k->e[k->n];
	memset(e, 0, sizeof(*e));
	memcpy(e->token, token, VAULT_TOKEN_BYTES);
	wrap_dk(e, vkey(k, k->version), k->version, dk);
	memcpy(aad, token, VAULT_TOKEN_BYTES);
	memcpy(aad + VAULT_TOKEN_BYTES, fp, VAULT_FINGERPRINT_BYTES);
	randombytes_buf(nonce, VAULT_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		ct, NULL, plain, VAULT_PLAIN_BYTES, aad, sizeof(aad), NULL,
		nonce, dk);
	k->n++;
	ret = write_store(k, k->s->wrap, k->epoch);
	if (ret) {
		k->n--;
		ret = -EIO;
	}
cleanup:
	sodium_memzero(dk, sizeof(dk));
	pthread_mutex_unlock(&k->lock);
	return ret;
}

int vaultkeys_open_card(struct vaultkeys *k, const struct vault_card *c,
			u8 plain[VAULT_PLAIN_BYTES])
{
	u8 dk[KEY_BYTES], aad[VAULT_TOKEN_BYTES + VAULT_FINGERPRINT_BYTES];
	int ret;

	pthread_mutex_lock(&k->lock);
	const struct entry *e = k->usable ? find(k, c->token) : NULL;
	ret = !k->usable ? -EKEYREVOKED : !e ? -ENOENT : unwrap_dk(k, e, dk);
	if (ret == 0) {
		memcpy(aad, c->token, VAULT_TOKEN_BYTES);
		memcpy(aad + VAULT_TOKEN_BYTES, c->fingerprint,
		       VAULT_FINGERPRINT_BYTES);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(
			    plain, NULL, NULL, c->ct, VAULT_CT_BYTES, aad,
			    sizeof(aad), c->nonce, dk) != 0)
			ret = -EBADMSG;
	}
	sodium_memzero(dk, sizeof(dk));
	pthread_mutex_unlock(&k->lock);
	return ret;
}

/* Steps 1-3 of an erasure (top of the file), after the data keys were
 * removed from k. */
static int rewrap(struct vaultkeys *k)
{
	u8(*keys)[KEY_BYTES] = sodium_malloc(2 * KEY_BYTES);
	u64 epochs[2] = {k->epoch, k->epoch + 1};
	int ret;

	if (!keys)
		return -ENOMEM;
	memcpy(keys[0], k->s->wrap, KEY_BYTES);
	randombytes_buf(keys[1], KEY_BYTES);
	ret = write_wrap(k, (const u8(*)[KEY_BYTES])keys, epochs, 2);
	if (ret == 0)
		ret = write_store(k, keys[1], epochs[1]);
	if (ret == 0) {
		k->epoch = epochs[1];
		memcpy(k->s->wrap, keys[1], KEY_BYTES);
		ret = write_wrap(k, (const u8(*)[KEY_BYTES])keys + 1,
				 epochs + 1, 1);
	}
	sodium_free(keys);
	return ret;
}

static void drop(struct vaultkeys *k, struct entry *e)
{
	u32 i = (u32)(e - k->e);

	k->e[i] = k->e[k->n - 1];
	sodium_memzero(&k->e[k->n - 1], sizeof(k->e[0]));
	k->n--;
}

int vaultkeys_erase(struct vaultkeys *k, const char *token)
{
	char t[VAULT_TOKEN_BYTES] = {0};
	int ret = -EKEYREVOKED;

	memcpy(t, token, strnlen(token, VAULT_TOKEN_BYTES - 1));
	pthread_mutex_lock(&k->lock);
	if (k->usable) {
		struct entry *e = find(k, t);
		if (e)
			drop(k, e);
		ret = rewrap(k);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

int vaultkeys_rotate(struct vaultkeys *k, u32 min_version, u32 *version,
		     u32 *min, u32 *rewrapped)
{
	u8 dk[KEY_BYTES];
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	u32 v = k->version + 1, keep = min_version ? min_version : v;
	if (!k->usable) {
		ret = -EKEYREVOKED;
		goto cleanup;
	}
	if (keep > v || keep < k->min_version || k->version == UINT32_MAX) {
		ret = -EINVAL;
		goto cleanup;
	}
	u32 kept = 1;
	for (u32 i = 0; i < k->nv; i++)
		kept += k->s->v[i].version >= keep;
	if (kept > VAULTKEYS_VERSIONS_MAX) {
		ret = -E2BIG;
		goto cleanup;
	}
	struct vkey nk = {.version = v};
	randombytes_buf(nk.key, KEY_BYTES);
	u32 n = 0;
	for (u32 i = 0; i < k->n; i++) {
		if (unwrap_dk(k, &k->e[i], dk) != 0)
			continue; /* unreadable already; left as it is */
		wrap_dk(&k->e[i], nk.key, v, dk);
		n++;
	}
	u32 j = 0;
	for (u32 i = 0; i < k->nv; i++) {
		if (k->s->v[i].version >= keep)
			k->s->v[j++] = k->s->v[i];
	}
	for (u32 i = j; i < k->nv; i++)
		sodium_memzero(&k->s->v[i], sizeof(k->s->v[i]));
	k->s->v[j++] = nk;
	sodium_memzero(&nk, sizeof(nk));
	k->nv = j;
	k->version = v;
	k->min_version = keep;
	ret = write_store(k, k->s->wrap, k->epoch);
	*version = v;
	*min = keep;
	*rewrapped = n;
cleanup:
	sodium_memzero(dk, sizeof(dk));
	pthread_mutex_unlock(&k->lock);
	return ret;
}

int vaultkeys_reconcile(struct vaultkeys *k, const struct vault *state,
			u32 *dropped)
{
	int ret = 0;
	bool shred = false;

	*dropped = 0;
	pthread_mutex_lock(&k->lock);
	if (!k->usable) {
		ret = -EKEYREVOKED;
		goto cleanup;
	}
	for (u32 i = 0; i < k->n;) {
		struct vault_card c;
		char t[VAULT_TOKEN_BYTES + 1] = {0};
		memcpy(t, k->e[i].token, VAULT_TOKEN_BYTES);
		if (vault_find(state, t, &c) == 0 && !c.erased) {
			i++;
			continue;
		}
		shred = shred || vault_find(state, t, &c) == 0;
		drop(k, &k->e[i]);
		(*dropped)++;
	}
	if (shred)
		ret = rewrap(k);
	else if (*dropped)
		ret = write_store(k, k->s->wrap, k->epoch);
cleanup:
	pthread_mutex_unlock(&k->lock);
	return ret;
}
