/*
 * vaultkeys.h - the card vault's key store (docs/vault.md): every key
 * that can open a card, kept OUTSIDE the journal so that erasing a card
 * (crypto-shredding) is possible at all.
 *
 * What it holds, in DATA/vault/keystore (mode 0600, replaced whole and
 * fsynced on every change, log/fsfile.h):
 *   - the fingerprint key (BLAKE2b-256 keyed; the same PAN gives the
 *     same fingerprint, so duplicates are found without decrypting);
 *   - the vault keys, versioned (1, 2, ...); the newest wraps new data
 *     keys, a rotation rewraps every data key under a new version and
 *     drops the versions below its minimum;
 *   - one data key per card, wrapped (XChaCha20-Poly1305) by a vault
 *     key, named by the card's token.  The card's own ciphertext is in
 *     the journal (core/vault.h), sealed under that data key.
 * The whole file is sealed (XChaCha20-Poly1305) under the wrapping key
 * of its epoch.  The wrapping key lives in its own small file beside
 * the data directory, <DATA>.vaultwrap (like the KEK's DATA.kek: not in
 * the data directory's backups), sealed there by the KEK
 * (keyring_kek_seal_secret).  Erasing a card removes its data key,
 * makes a new wrapping key (epoch + 1), writes the key store under it,
 * and destroys the old wrapping key: a copy of the key store taken
 * before the erasure names an epoch whose wrapping key no longer
 * exists, so it opens nothing.  The crash-safe order is in vaultkeys.c.
 *
 * Ownership and threads: a struct vaultkeys owns its keys (in
 * sodium_malloc'd memory, wiped when dropped) and borrows the KEK, which
 * must outlive it.  One mutex serialises every call; any thread may
 * call any function.  Disk writes happen under it (each change is
 * durable before the call returns).
 */
#ifndef TPW_ENGINE_VAULTKEYS_H
#define TPW_ENGINE_VAULTKEYS_H

#include "core/types.h"
#include "core/vault.h"

#include <stdbool.h>
#include <stddef.h>

struct keyring_kek;
struct vaultkeys;

#define VAULTKEYS_FILE_BYTES_MAX ((size_t)256 << 20)
#define VAULTKEYS_VERSIONS_MAX	 32
#define VAULTKEYS_ERR_BYTES	 256
#define VAULTKEYS_DIR		 "vault"
#define VAULTKEYS_FILE		 "keystore"
#define VAULTKEYS_WRAP_SUFFIX	 ".vaultwrap"

/* Opens the key store of data_dir (making both files when neither
 * exists).  0 and *out; a key store that cannot be opened (its
 * wrapping key is gone, the KEK is another, a file is damaged) still
 * gives 0 and a store that refuses every card operation with -EKEYREVOKED,
 * with the reason in err (no secret in it): the ledger keeps serving.
 * Other failures (memory, I/O making the files): a negative errno. */
int vaultkeys_open(const char *data_dir, const struct keyring_kek *kek,
		   struct vaultkeys **out, char *err, size_t err_size);
void vaultkeys_close(struct vaultkeys *k);

/* Could the key store be opened?  The reason is what open said. */
bool vaultkeys_usable(const struct vaultkeys *k);

/* The fingerprint of the PAN s[0..n): BLAKE2b-256 keyed with the
 * fingerprint key.  0 or -EKEYREVOKED. */
int vaultkeys_fingerprint(struct vaultkeys *k, const char *s, size_t n,
			  u8 out[VAULT_FINGERPRINT_BYTES]);

/* Does a token already exist (the state's answer, for the tokenizer)? */
typedef bool (*vaultkeys_taken_fn)(void *ctx, const char *token);

/*
 * Tokenizes a card: a new data key, the token (format_preserving: "0",
 * then the PAN's digits but the last four encrypted with FF1 under a key
 * derived from the data key, then the last four; else "tok_" and 24 hex
 * digits of randomness), plain[0..VAULT_PLAIN_BYTES) sealed under the
 * data key with the token and fp as associated data into nonce and ct,
 * and the data key wrapped by the newest vault key and stored durably.
 * A token the state already has (taken) or the store has is drawn
 * again, a few times.  0, -EKEYREVOKED, -EEXIST (no free token), -EIO.
 */
int vaultkeys_tokenize(struct vaultkeys *k, const u8 plain[VAULT_PLAIN_BYTES],
		       const char *pan, size_t pan_len, bool format_preserving,
		       const u8 fp[VAULT_FINGERPRINT_BYTES],
		       vaultkeys_taken_fn taken, void *ctx,
		       char token[VAULT_TOKEN_BYTES],
		       u8 nonce[VAULT_NONCE_BYTES], u8 ct[VAULT_CT_BYTES]);

/* Opens card c (from the state) into plain: 0; -ENOENT (its data key
 * is not in the store: erased); -EKEYREVOKED (the store is unusable);
 * -EBADMSG (a tag did not verify). */
int vaultkeys_open_card(struct vaultkeys *k, const struct vault_card *c,
			u8 plain[VAULT_PLAIN_BYTES]);

/* Erases token's data key and rewraps the store under a new wrapping
 * key, destroying the old one.  0 (also when the key was already gone:
 * the rewrap still happens), -EKEYREVOKED, or -errno of a write. */
int vaultkeys_erase(struct vaultkeys *k, const char *token);

/* A new vault key version; every data key rewrapped under it; versions
 * below min_version dropped (0: the new version, so only it is left).
 * *version, *min and *rewrapped say what was done.  0, -EKEYREVOKED,
 * -EINVAL (min_version above the new version), -E2BIG (too many
 * versions kept), or -errno of the write. */
int vaultkeys_rotate(struct vaultkeys *k, u32 min_version, u32 *version,
		     u32 *min, u32 *rewrapped);

/* At start-up, after recovery: drops the data key of every card the
 * state says is erased and of every token the state does not know (a
 * tokenization whose journal entry never became durable), rewrapping
 * when a key of an erased card was still there (a crash between an
 * erasure's entry and its shredding).  *dropped says how many. */
int vaultkeys_reconcile(struct vaultkeys *k, const struct vault *state,
			u32 *dropped);

/* The newest vault key version and the lowest kept; the epoch. */
void vaultkeys_versions(struct vaultkeys *k, u32 *version, u32 *min_version,
			u64 *epoch);

#endif
