/*
 * keyfile.h - the keyring's files: the KEK file or environment variable,
 * and DATA/keys/<kid>.key.  crypto/keyring does the cryptography in
 * memory; this module reads and writes what it seals, with the checks a
 * file holding a secret needs (a regular file, not a symbolic link,
 * owned by the running user, mode 0600 or stricter; a directory owned by
 * the running user that group and others cannot write).  Each refusal is
 * a KEYRING_E_* code with one sentence naming the path and what is
 * wrong, never key bytes.  Key files are replaced with fsfile_replace.
 */
#ifndef TPW_LOG_KEYFILE_H
#define TPW_LOG_KEYFILE_H

#include "crypto/keyring.h"

/* The KEK from the file at path (not_a_regular_file for a symbolic link,
 * directory or device; wrong_owner; bad_permissions with the mode found;
 * kek_bad_length; kek_bad_encoding). */
int keyfile_kek_load(const char *path, struct keyring_kek **out, char *err,
		     size_t err_size);

/* The KEK from the environment variable var (NULL: KEYRING_KEK_ENV):
 * kek_missing when unset, else as keyring_kek_parse.  The variable is
 * left as it is; the caller may unsetenv it. */
int keyfile_kek_from_env(const char *var, struct keyring_kek **out, char *err,
			 size_t err_size);

/* Create a new random KEK at path, as its base64url text and "\n", with
 * O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, fsynced with its directory
 * (already_exists if anything is at path). */
int keyfile_kek_generate(const char *path, char *err, size_t err_size);

/* Load every <kid>.key in dir, which must exist, be owned by the running
 * user and not be writable by group or others (the caller creates it,
 * mode 0700), into a keyring that writes back to dir.  kek NULL: verify
 * and publish only.  Any refused file refuses the whole keyring, naming
 * the file.  An empty directory is a keyring without keys:
 * keyring_rotate makes the first. */
int keyfile_open_keyring(const char *dir, const struct keyring_kek *kek,
			 struct keyring **out, char *err, size_t err_size);

#endif
