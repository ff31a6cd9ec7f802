/*
 * test_log_keyring.c - the server keyring (src/crypto/keyring.c, in memory)
 * over its files (src/log/keyfile.c): KEK loading from files and the
 * environment with every refusal, key files
 * written and read back, signing with the current key and verifying through
 * keyring_lookup_verifier, rotation with its overlap window, each kind of
 * tampering refused with its own code, the JWKS and pruning.
 *
 * Every test works in its own directory under $TMPDIR (mkdtemp, 0700) and
 * removes it.  Times are fixed numbers: the keyring never reads a clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include <sodium.h>

#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "crypto/keyring.h"
#include "crypto/note.h"
#include "log/keyfile.h"

#include "banned.h"

#define T0 INT64_C(1700000000)

/* ---- helpers ------------------------------------------------------------ */

struct fx {
	char dir[256];
	char kek_text[KEYRING_KEK_TEXT_BYTES + 1];
	struct keyring_kek *kek;
	struct keyring *kr;
	char err[KEYRING_ERR_BYTES];
};

static void random_kek_text(char out[KEYRING_KEK_TEXT_BYTES + 1])
{
	unsigned char raw[KEYRING_KEK_BYTES];

	randombytes_buf(raw, sizeof(raw));
	assert_int_equal(b64url_encode(out, KEYRING_KEK_TEXT_BYTES + 1, raw,
				       sizeof(raw)),
			 0);
	sodium_memzero(raw, sizeof(raw));
}

static void path_in(const struct fx *f, const char *name, char *out,
		    size_t size)
{
	int n = snprintf(out, size, "%s/%s", f->dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

static void key_path(const struct fx *f, const char *kid, char *out,
		     size_t size)
{
	int n = snprintf(out, size, "%s/%s.key", f->dir, kid);

	assert_true(n > 0 && (size_t)n < size);
}

static void write_file(const char *path, const void *buf, size_t len,
		       mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

/* Flips mask into byte off of a key file, keeping its mode. */
static void flip_byte(const struct fx *f, const char *kid, size_t off,
		      unsigned char mask)
{
	char path[512];
	unsigned char buf[KEYRING_KEYFILE_BYTES];

	key_path(f, kid, path, sizeof(path));
	assert_int_equal(read_file(path, buf, sizeof(buf)),
			 KEYRING_KEYFILE_BYTES);
	buf[off] ^= mask;
	write_file(path, buf, sizeof(buf), 0600);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	assert_int_equal(jose_init(), 0);
	snprintf(f->dir, sizeof(f->dir), "%s/tpw-keyring-XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	random_kek_text(f->kek_text);
	assert_int_equal(keyring_kek_parse(f->kek_text, strlen(f->kek_text),
					   &f->kek, f->err, sizeof(f->err)),
			 0);
	*state = f;
	return 0;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	const struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0)
			remove_tree(path);
	}
	closedir(d);
	rmdir(dir);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	keyring_free(f->kr);
	keyring_kek_free(f->kek);
	remove_tree(f->dir);
	free(f);
	return 0;
}

static void open_ring(struct fx *f)
{
	keyring_free(f->kr);
	f->kr = NULL;
	f->err[0] = '\0';
	assert_int_equal(keyfile_open_keyring(f->dir, f->kek, &f->kr, f->err,
					      sizeof(f->err)),
			 0);
}

static const struct keyring_key *rotate(struct fx *f, int64_t now,
					int64_t overlap_s)
{
	struct keyring_rotation rot;

	assert_int_equal(keyring_rotate(f->kr, now, overlap_s, &rot, f->err,
					sizeof(f->err)),
			 0);
	assert_string_equal(keyring_current_signer(f->kr, now)->kid,
			    rot.created.kid);
	return keyring_current_signer(f->kr, now);
}

/* A JWT {"exp":exp,"iat":now,"sub":"s"} signed by the keyring at now. */
static void sign_token(const struct fx *f, int64_t now, int64_t exp, char *out,
		       size_t size, size_t *len)
{
	json_t *claims = json_pack("{s:I,s:I,s:s}", "exp", (json_int_t)exp,
				   "iat", (json_int_t)now, "sub", "s");

	assert_non_null(claims);
	assert_int_equal(
		keyring_sign_jwt(f->kr, now, "JWT", claims, out, size, len), 0);
	json_decref(claims);
}

/* Verifies signature (by kid, at now) and the claims' times at now. */
static int verify_token(const struct fx *f, int64_t now, const char *tok,
			size_t len, char kid_out[KEYRING_KID_BYTES + 1])
{
	struct keyring_verify_ctx ctx = {.kr = f->kr, .now = now};
	struct jose_verify_opts vo = {.lookup = keyring_lookup_verifier,
				      .lookup_ctx = &ctx,
				      .typ = "JWT",
				      .require_kid = true};
	struct jose_jws jws = {0};
	struct jose_claims c;
	int ret;

	ret = jose_jwt_verify(tok, len, &vo, &jws);
	if (ret == 0)
		ret = jose_claims_extract(jws.claims, JOSE_CLAIM_EXP, &c);
	if (ret == 0)
		ret = jose_claims_check_time(&c, now, 0);
	if (ret == 0 && kid_out)
		snprintf(kid_out, KEYRING_KID_BYTES + 1, "%s", jws.kid);
	jose_jws_clear(&jws);
	return ret;
}

static int open_err(struct fx *f)
{
	keyring_free(f->kr);
	f->kr = NULL;
	f->err[0] = '\0';
	return keyfile_open_keyring(f->dir, f->kek, &f->kr, f->err,
				    sizeof(f->err));
}

/* ---- the KEK ------------------------------------------------------------ */

static void test_kek_file_mode_0644_refused_naming_the_mode(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	char path[512];

	path_in(f, "kek", path, sizeof(path));
	write_file(path, f->kek_text, strlen(f->kek_text), 0644);
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)),
			 KEYRING_E_BAD_PERMISSIONS);
	assert_null(k);
	assert_non_null(strstr(f->err, "0644"));
	assert_non_null(strstr(f->err, path));
	/* another user's file, when the test can make one (as root) */
	if (geteuid() == 0) {
		assert_int_equal(chmod(path, 0600), 0);
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(
			keyfile_kek_load(path, &k, f->err, sizeof(f->err)),
			KEYRING_E_BAD_OWNER);
		assert_non_null(strstr(f->err, "not by the running user"));
		assert_int_equal(chown(path, 0, 0), 0);
	}
	/* group-readable only, world-readable only: refused too */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(keyfile_kek_load(path, &k, NULL, 0),
			 KEYRING_E_BAD_PERMISSIONS);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(keyfile_kek_load(path, &k, NULL, 0),
			 KEYRING_E_BAD_PERMISSIONS);
}

static void test_kek_file_mode_0600_and_0400_accepted_same_key(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	unsigned char id1[KEYRING_KEK_ID_BYTES], id2[KEYRING_KEK_ID_BYTES];
	char path[512], text[KEYRING_KEK_TEXT_BYTES + 2];

	keyring_kek_id(f->kek, id1);
	path_in(f, "kek", path, sizeof(path));
	/* text with a newline */
	snprintf(text, sizeof(text), "%s\n", f->kek_text);
	write_file(path, text, strlen(text), 0600);
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)), 0);
	keyring_kek_id(k, id2);
	assert_memory_equal(id1, id2, sizeof(id1));
	keyring_kek_free(k);
	/* text without the newline, read-only */
	write_file(path, f->kek_text, strlen(f->kek_text), 0400);
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)), 0);
	keyring_kek_id(k, id2);
	assert_memory_equal(id1, id2, sizeof(id1));
	keyring_kek_free(k);
}

static void test_kek_file_raw_32_bytes_equals_its_text(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	unsigned char raw[KEYRING_KEK_BYTES];
	unsigned char id1[KEYRING_KEK_ID_BYTES], id2[KEYRING_KEK_ID_BYTES];
	size_t n = 0;
	char path[512];

	assert_int_equal(b64url_decode(raw, sizeof(raw), f->kek_text,
				       strlen(f->kek_text), &n),
			 0);
	path_in(f, "kek.bin", path, sizeof(path));
	unlink(path);
	write_file(path, raw, sizeof(raw), 0600);
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)), 0);
	keyring_kek_id(f->kek, id1);
	keyring_kek_id(k, id2);
	assert_memory_equal(id1, id2, sizeof(id1));
	keyring_kek_free(k);
	sodium_memzero(raw, sizeof(raw));
}

static void test_kek_file_symlink_refused_even_to_a_good_file(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	char path[512], link[512];

	path_in(f, "kek", path, sizeof(path));
	path_in(f, "kek-link", link, sizeof(link));
	write_file(path, f->kek_text, strlen(f->kek_text), 0600);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(keyfile_kek_load(link, &k, f->err, sizeof(f->err)),
			 KEYRING_E_NOT_REGULAR);
	assert_non_null(strstr(f->err, "symbolic link"));
	assert_null(k);
}

static void test_kek_file_directory_and_missing_refused(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	char path[512];

	assert_int_equal(keyfile_kek_load(f->dir, &k, f->err, sizeof(f->err)),
			 KEYRING_E_NOT_REGULAR);
	path_in(f, "absent", path, sizeof(path));
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)),
			 KEYRING_E_IO);
	assert_non_null(strstr(f->err, "No such file"));
}

static void test_kek_file_wrong_length_or_encoding_refused(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	char path[512], bad[KEYRING_KEK_TEXT_BYTES + 1];

	path_in(f, "kek", path, sizeof(path));
	write_file(path, "short\n", 6, 0600);
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)),
			 KEYRING_E_KEK_BAD_LENGTH);
	assert_non_null(strstr(f->err, "6 bytes"));
	memcpy(bad, f->kek_text, sizeof(bad));
	bad[5] = '+'; /* base64, not base64url */
	write_file(path, bad, strlen(bad), 0600);
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)),
			 KEYRING_E_KEK_BAD_ENCODING);
	assert_null(k);
}

static void test_kek_generate_file_is_0600_loadable_and_exclusive(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	struct stat st;
	char path[512];

	path_in(f, "new.kek", path, sizeof(path));
	assert_int_equal(keyfile_kek_generate(path, f->err, sizeof(f->err)), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, KEYRING_KEK_TEXT_BYTES + 1);
	assert_int_equal(keyfile_kek_load(path, &k, f->err, sizeof(f->err)), 0);
	keyring_kek_free(k);
	assert_int_equal(keyfile_kek_generate(path, f->err, sizeof(f->err)),
			 KEYRING_E_EXISTS);
}

static void test_kek_env_parsing_accepts_43_chars_refuses_rest(void **state)
{
	struct fx *f = *state;
	struct keyring_kek *k = NULL;
	unsigned char id1[KEYRING_KEK_ID_BYTES], id2[KEYRING_KEK_ID_BYTES];
	char padded[KEYRING_KEK_TEXT_BYTES + 2];
	char bad[KEYRING_KEK_TEXT_BYTES + 1];
	const char *var = "TPW_TEST_KEYRING_KEK";

	unsetenv(var);
	assert_int_equal(keyfile_kek_from_env(var, &k, f->err, sizeof(f->err)),
			 KEYRING_E_KEK_MISSING);
	assert_non_null(strstr(f->err, var));

	assert_int_equal(setenv(var, f->kek_text, 1), 0);
	assert_int_equal(keyfile_kek_from_env(var, &k, f->err, sizeof(f->err)),
			 0);
	keyring_kek_id(f->kek, id1);
	keyring_kek_id(k, id2);
	assert_memory_equal(id1, id2, sizeof(id1));
	keyring_kek_free(k);
	k = NULL;

	/* too short, too long, padded, trailing newline */
	assert_int_equal(setenv(var, "AAAA", 1), 0);
	assert_int_equal(keyfile_kek_from_env(var, &k, f->err, sizeof(f->err)),
			 KEYRING_E_KEK_BAD_LENGTH);
	assert_non_null(strstr(f->err, "got 4"));
	snprintf(padded, sizeof(padded), "%s=", f->kek_text);
	assert_int_equal(setenv(var, padded, 1), 0);
	assert_int_equal(keyfile_kek_from_env(var, &k, NULL, 0),
			 KEYRING_E_KEK_BAD_LENGTH);
	snprintf(padded, sizeof(padded), "%s\n", f->kek_text);
	assert_int_equal(setenv(var, padded, 1), 0);
	assert_int_equal(keyfile_kek_from_env(var, &k, NULL, 0),
			 KEYRING_E_KEK_BAD_LENGTH);
	/* bad character; non-canonical final character (low bits set) */
	memcpy(bad, f->kek_text, sizeof(bad));
	bad[0] = '*';
	assert_int_equal(setenv(var, bad, 1), 0);
	assert_int_equal(keyfile_kek_from_env(var, &k, NULL, 0),
			 KEYRING_E_KEK_BAD_ENCODING);
	memcpy(bad, f->kek_text, sizeof(bad));
	bad[KEYRING_KEK_TEXT_BYTES - 1] = 'B';
	assert_int_equal(setenv(var, bad, 1), 0);
	assert_int_equal(keyfile_kek_from_env(var, &k, f->err, sizeof(f->err)),
			 KEYRING_E_KEK_BAD_ENCODING);
	assert_null(k);
	/* a refusal never echoes the value */
	assert_null(strstr(f->err, bad));
	unsetenv(var);
}

/* ---- keys --------------------------------------------------------------- */

static void test_create_then_load_round_trip(void **state)
{
	struct fx *f = *state;
	struct keyring_key k1;
	const struct keyring_key *k;
	unsigned char buf[512];
	struct stat st;
	char path[512];

	open_ring(f);
	assert_int_equal(keyring_count(f->kr), 0);
	assert_null(keyring_current_signer(f->kr, T0));
	k1 = *rotate(f, T0, 3600);
	assert_int_equal(k1.created_at, T0);
	assert_int_equal(k1.activate_at, T0);
	assert_int_equal(k1.retire_at, KEYRING_NEVER);
	assert_int_equal(k1.expires_at, KEYRING_NEVER);
	assert_int_equal(strlen(k1.kid), KEYRING_KID_BYTES);

	/* the kid is the RFC 7638 thumbprint of the public key */
	{
		struct jose_pubkey pk = {0};
		char tp[JOSE_B64_32_BYTES];

		memcpy(pk.x, k1.pub, sizeof(pk.x));
		assert_int_equal(jose_thumbprint(&pk, tp), 0);
		assert_string_equal(tp, k1.kid);
	}

	key_path(f, k1.kid, path, sizeof(path));
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, KEYRING_KEYFILE_BYTES);
	/* no temporary left behind: only the key file */
	{
		DIR *d = opendir(f->dir);
		const struct dirent *de;
		int files = 0;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			files += de->d_name[0] != '.';
		closedir(d);
		assert_int_equal(files, 1);
	}

	open_ring(f);
	assert_int_equal(keyring_count(f->kr), 1);
	k = keyring_key_at(f->kr, 0);
	assert_string_equal(k->kid, k1.kid);
	assert_memory_equal(k->pub, k1.pub, sizeof(k1.pub));
	assert_int_equal(k->created_at, k1.created_at);
	assert_int_equal(k->activate_at, k1.activate_at);
	assert_int_equal(k->retire_at, k1.retire_at);
	assert_int_equal(k->expires_at, k1.expires_at);
	assert_null(keyring_key_at(f->kr, 1));

	/* the public metadata reads without the KEK */
	{
		struct keyring_key pub;
		size_t n = read_file(path, buf, sizeof(buf));

		assert_int_equal(keyring_keyfile_decode(buf, n, NULL, &pub,
							f->err, sizeof(f->err)),
				 0);
		assert_string_equal(pub.kid, k1.kid);
		assert_int_equal(pub.activate_at, T0);
	}
}

static void test_jws_signed_with_current_key_verifies_by_kid(void **state)
{
	struct fx *f = *state;
	char tok[JOSE_TOKEN_BYTES_MAX + 1], kid[KEYRING_KID_BYTES + 1];
	size_t len = 0;
	const struct keyring_key *cur;

	open_ring(f);
	cur = rotate(f, T0, 3600);
	sign_token(f, T0 + 10, T0 + 600, tok, sizeof(tok), &len);
	assert_int_equal(verify_token(f, T0 + 20, tok, len, kid), 0);
	assert_string_equal(kid, cur->kid);

	/* plain JWS with an opaque payload, through a reopened keyring */
	open_ring(f);
	assert_int_equal(keyring_sign_jws(f->kr, T0 + 10, NULL, "hello", 5, tok,
					  sizeof(tok), &len),
			 0);
	{
		struct keyring_verify_ctx ctx = {.kr = f->kr, .now = T0 + 10};
		struct jose_verify_opts vo = {.lookup = keyring_lookup_verifier,
					      .lookup_ctx = &ctx,
					      .require_kid = true};
		struct jose_jws jws = {0};

		assert_int_equal(jose_jws_verify(tok, len, &vo, &jws), 0);
		assert_int_equal(jws.payload_len, 5);
		assert_memory_equal(jws.payload, "hello", 5);
		jose_jws_clear(&jws);
		/* a flipped signature byte is refused */
		tok[len - 3] = tok[len - 3] == 'A' ? 'B' : 'A';
		assert_int_equal(jose_jws_verify(tok, len, &vo, &jws),
				 -JOSE_bad_signature);
	}
	/* an unknown kid is refused by the lookup */
	{
		struct jose_pubkey pk;

		assert_int_equal(keyring_verifier(f->kr, "nope", T0, &pk),
				 KEYRING_E_UNKNOWN_KID);
	}
	/* nothing signs before any key is active */
	assert_int_equal(keyring_sign_jws(f->kr, T0 - 1, NULL, "x", 1, tok,
					  sizeof(tok), &len),
			 KEYRING_E_NO_SIGNING_KEY);
}

static void test_rotation_old_token_verifies_until_overlap_ends(void **state)
{
	struct fx *f = *state;
	char tok[JOSE_TOKEN_BYTES_MAX + 1], kid[KEYRING_KID_BYTES + 1];
	struct keyring_key k1, k2;
	struct keyring_rotation rot;
	struct jose_pubkey pk;
	const int64_t t1 = T0 + 1000, overlap = 3600;
	size_t len = 0;

	open_ring(f);
	k1 = *rotate(f, T0, overlap);
	/* a token of the longest allowed lifetime, signed just before */
	sign_token(f, t1 - 1, t1 - 1 + overlap, tok, sizeof(tok), &len);
	assert_int_equal(keyring_rotate(f->kr, t1, overlap, &rot, f->err,
					sizeof(f->err)),
			 0);
	k2 = rot.created;
	assert_string_not_equal(k1.kid, k2.kid);
	/* what will be journaled: the new key, the old key's new times */
	assert_int_equal(rot.n_retired, 1);
	assert_string_equal(rot.retired[0].kid, k1.kid);
	assert_int_equal(rot.retired[0].retire_at, t1);
	assert_int_equal(rot.retired[0].expires_at, t1 + overlap);

	/* survives a reload */
	open_ring(f);
	assert_int_equal(verify_token(f, t1, tok, len, kid), 0);
	assert_string_equal(kid, k1.kid);
	assert_int_equal(verify_token(f, t1 + overlap - 2, tok, len, NULL), 0);
	/* the key outlives the token by at least the overlap */
	assert_int_equal(keyring_verifier(f->kr, k1.kid, t1 + overlap - 1, &pk),
			 0);
	assert_int_equal(keyring_verifier(f->kr, k1.kid, t1 + overlap, &pk),
			 KEYRING_E_KEY_EXPIRED);
	assert_int_equal(verify_token(f, t1 + overlap, tok, len, NULL),
			 -JOSE_unknown_kid);
	/* the new key verifies throughout */
	assert_int_equal(
		keyring_verifier(f->kr, k2.kid, t1 + 10 * overlap, &pk), 0);
}

static void test_retired_key_is_no_longer_chosen_for_signing(void **state)
{
	struct fx *f = *state;
	char tok[JOSE_TOKEN_BYTES_MAX + 1], kid[KEYRING_KID_BYTES + 1];
	struct keyring_key k1, k2;
	const int64_t t1 = T0 + 500;
	size_t len = 0;

	open_ring(f);
	k1 = *rotate(f, T0, 100);
	k2 = *rotate(f, t1, 100);
	assert_string_equal(keyring_current_signer(f->kr, t1 - 1)->kid, k1.kid);
	assert_string_equal(keyring_current_signer(f->kr, t1)->kid, k2.kid);
	assert_string_equal(keyring_current_signer(f->kr, t1 + 50)->kid,
			    k2.kid);
	sign_token(f, t1 + 1, t1 + 60, tok, sizeof(tok), &len);
	assert_int_equal(verify_token(f, t1 + 2, tok, len, kid), 0);
	assert_string_equal(kid, k2.kid);
	/* a second rotation in the same second retires the new key too */
	{
		struct keyring_key k3 = *rotate(f, t1, 100);

		assert_string_equal(keyring_current_signer(f->kr, t1)->kid,
				    k3.kid);
	}
}

/* The retired keys that still verify sign a note too (newest first), a
 * key rotated out with overlap 0 never does, nor one past its overlap;
 * each signature verifies under its own public key. */
static void test_retired_keys_still_verifying_sign_notes(void **state)
{
	struct fx *f = *state;
	struct note_signer s[4];
	size_t n = 9;

	open_ring(f);
	struct keyring_key k1 = *rotate(f, T0, 0);
	assert_int_equal(
		keyring_note_signers_retired(f->kr, T0, "log/x", 5, s, 4, &n),
		0);
	assert_int_equal(n, 0); /* only the current key */
	struct keyring_key k2 = *rotate(f, T0 + 10, 1000); /* k1: overlap */
	struct keyring_key k3 = *rotate(f, T0 + 20, 0);	   /* k2: none */
	(void)k3;
	assert_int_equal(keyring_note_signers_retired(f->kr, T0 + 20, "log/x",
						      5, s, 4, &n),
			 0);
	assert_int_equal(n, 1);
	assert_memory_equal(s[0].pub.public_key, k1.pub, 32);
	assert_memory_not_equal(s[0].pub.public_key, k2.pub, 32);
	char note[1024];
	size_t len;
	const struct note_signer *list[1] = {&s[0]};
	assert_int_equal(
		note_sign("log/x\n1\n", 8, list, 1, note, sizeof(note), &len),
		0);
	struct note_verifier v = s[0].pub;
	struct note_opened o;
	assert_int_equal(note_open(note, len, &v, 1, &o), 0);
	note_signer_clear(&s[0]);
	/* Past k1's overlap: nothing retired signs. */
	assert_int_equal(keyring_note_signers_retired(f->kr, T0 + 1010, "log/x",
						      5, s, 4, &n),
			 0);
	assert_int_equal(n, 0);
	/* max bounds the count: two retired keys in their overlap, one
	 * asked for, the newest given. */
	struct keyring_key k4 = *rotate(f, T0 + 30, 1000); /* k3: overlap */
	(void)k4;
	assert_int_equal(keyring_note_signers_retired(f->kr, T0 + 30, "log/x",
						      5, s, 1, &n),
			 0);
	assert_int_equal(n, 1);
	assert_memory_equal(s[0].pub.public_key, k3.pub, 32);
	note_signer_clear(&s[0]);
}

static void test_due_for_rotation_by_period(void **state)
{
	struct fx *f = *state;

	open_ring(f);
	assert_true(keyring_due_for_rotation(f->kr, T0, 86400));
	rotate(f, T0, 3600);
	assert_false(keyring_due_for_rotation(f->kr, T0 + 86399, 86400));
	assert_true(keyring_due_for_rotation(f->kr, T0 + 86400, 86400));
	rotate(f, T0 + 86400, 3600);
	assert_false(keyring_due_for_rotation(f->kr, T0 + 86400, 86400));
}

static void test_rotate_refuses_clock_gone_backwards(void **state)
{
	struct fx *f = *state;
	struct keyring_rotation rot;

	open_ring(f);
	rotate(f, T0, 3600);
	assert_int_equal(keyring_rotate(f->kr, T0 - 1, 3600, &rot, f->err,
					sizeof(f->err)),
			 KEYRING_E_BAD_TIME);
	assert_non_null(strstr(f->err, "backwards"));
	assert_int_equal(keyring_rotate(f->kr, T0, -1, &rot, NULL, 0),
			 KEYRING_E_BAD_TIME);
	assert_int_equal(keyring_count(f->kr), 1);
}

/* ---- tampering ---------------------------------------------------------- */

/* Two keys: k[0] retired at T0 + 100, expiring at T0 + 1100; k[1] current. */
static void two_keys(struct fx *f, struct keyring_key k[2])
{
	open_ring(f);
	k[0] = *rotate(f, T0, 1000);
	k[1] = *rotate(f, T0 + 100, 1000);
	k[0] = *keyring_key_at(f->kr, 1);
	assert_int_equal(k[0].expires_at, T0 + 1100);
}

static void test_tamper_ciphertext_byte_refused(void **state)
{
	struct fx *f = *state;
	struct keyring_key k[2];

	two_keys(f, k);
	flip_byte(f, k[1].kid, 210, 0x40); /* ciphertext */
	assert_int_equal(open_err(f), KEYRING_E_CIPHERTEXT_MODIFIED);
	assert_non_null(strstr(f->err, k[1].kid));
	flip_byte(f, k[1].kid, 210, 0x40);
	flip_byte(f, k[1].kid, 240, 0x01); /* tag */
	assert_int_equal(open_err(f), KEYRING_E_CIPHERTEXT_MODIFIED);
	flip_byte(f, k[1].kid, 240, 0x01);
	flip_byte(f, k[1].kid, 180, 0x80); /* nonce */
	assert_int_equal(open_err(f), KEYRING_E_CIPHERTEXT_MODIFIED);
	flip_byte(f, k[1].kid, 180, 0x80);
	assert_int_equal(open_err(f), 0);
}

static void test_tamper_metadata_byte_refused(void **state)
{
	struct fx *f = *state;
	struct keyring_key k[2];

	two_keys(f, k);
	/* extend the retired key's life by one second */
	flip_byte(f, k[0].kid, 47, 0x01);
	assert_int_equal(open_err(f), KEYRING_E_METADATA_MODIFIED);
	assert_non_null(strstr(f->err, "MAC"));
	flip_byte(f, k[0].kid, 47, 0x01);
	/* a public key byte: kid no longer its thumbprint */
	flip_byte(f, k[0].kid, 50, 0x02);
	assert_int_equal(open_err(f), KEYRING_E_METADATA_MODIFIED);
	flip_byte(f, k[0].kid, 50, 0x02);
	/* the MAC itself */
	flip_byte(f, k[0].kid, 150, 0x10);
	assert_int_equal(open_err(f), KEYRING_E_METADATA_MODIFIED);
	flip_byte(f, k[0].kid, 150, 0x10);
	/* times out of order are malformed before any MAC */
	flip_byte(f, k[0].kid, 17, 0x10);
	assert_int_equal(open_err(f), KEYRING_E_MALFORMED);
	flip_byte(f, k[0].kid, 17, 0x10);
	/* a reserved byte */
	flip_byte(f, k[0].kid, 12, 0x01);
	assert_int_equal(open_err(f), KEYRING_E_MALFORMED);
	assert_non_null(strstr(f->err, "offset 12"));
	flip_byte(f, k[0].kid, 12, 0x01);
	assert_int_equal(open_err(f), 0);
}

static void test_tamper_unknown_version_refused(void **state)
{
	struct fx *f = *state;
	struct keyring_key k[2];

	two_keys(f, k);
	flip_byte(f, k[1].kid, 7, 0x04); /* version 1 -> 5 (2, 3: a token's) */
	assert_int_equal(open_err(f), KEYRING_E_UNKNOWN_VERSION);
	assert_non_null(strstr(f->err, "version 5"));
}

static void test_tamper_swapped_key_files_refused(void **state)
{
	struct fx *f = *state;
	struct keyring_key k[2];
	char a[512], b[512], t[512];

	two_keys(f, k);
	key_path(f, k[0].kid, a, sizeof(a));
	key_path(f, k[1].kid, b, sizeof(b));
	path_in(f, "swap", t, sizeof(t));
	assert_int_equal(rename(a, t), 0);
	assert_int_equal(rename(b, a), 0);
	assert_int_equal(rename(t, b), 0);
	assert_int_equal(open_err(f), KEYRING_E_FILE_NAME_MISMATCH);
	assert_non_null(strstr(f->err, "swapped"));
	/* a copy under a name that is not a kid */
	assert_int_equal(rename(a, t), 0);
	path_in(f, "backup.key", a, sizeof(a));
	assert_int_equal(rename(t, a), 0);
	assert_int_equal(open_err(f), KEYRING_E_FILE_NAME_MISMATCH);
}

static void test_tamper_wrong_kek_refused_naming_both_ids(void **state)
{
	struct fx *f = *state;
	struct keyring_key k[2];
	char other[KEYRING_KEK_TEXT_BYTES + 1];
	struct keyring_kek *good = f->kek;

	two_keys(f, k);
	random_kek_text(other);
	assert_int_equal(keyring_kek_parse(other, strlen(other), &f->kek,
					   f->err, sizeof(f->err)),
			 0);
	assert_int_equal(open_err(f), KEYRING_E_WRONG_KEK);
	assert_non_null(strstr(f->err, "KEK id"));
	assert_null(strstr(f->err, other));
	assert_null(strstr(f->err, f->kek_text));
	/* a KEK id rewritten to the other KEK's is caught by the MAC */
	{
		unsigned char id[KEYRING_KEK_ID_BYTES], mask;

		keyring_kek_id(f->kek, id);
		for (size_t i = 0; i < sizeof(id); i++) {
			unsigned char g[KEYRING_KEK_ID_BYTES];

			keyring_kek_id(good, g);
			mask = id[i] ^ g[i];
			if (!mask)
				continue;
			flip_byte(f, k[0].kid, 128 + i, mask);
			flip_byte(f, k[1].kid, 128 + i, mask);
		}
		assert_int_equal(open_err(f), KEYRING_E_METADATA_MODIFIED);
		assert_non_null(strstr(f->err, "MAC"));
	}
	keyring_kek_free(f->kek);
	f->kek = good;
	assert_int_equal(open_err(f), KEYRING_E_WRONG_KEK);
}

static void test_key_file_permissions_and_links_refused(void **state)
{
	struct fx *f = *state;
	struct keyring_key k[2];
	char a[512], link[512];

	two_keys(f, k);
	key_path(f, k[0].kid, a, sizeof(a));
	assert_int_equal(chmod(a, 0640), 0);
	assert_int_equal(open_err(f), KEYRING_E_BAD_PERMISSIONS);
	assert_non_null(strstr(f->err, "0640"));
	assert_int_equal(chmod(a, 0600), 0);
	/* another user's file, when the test can make one (as root) */
	if (geteuid() == 0) {
		assert_int_equal(chown(a, 65534, 65534), 0);
		assert_int_equal(open_err(f), KEYRING_E_BAD_OWNER);
		assert_non_null(strstr(f->err, "uid 65534"));
		assert_int_equal(chown(a, 0, 0), 0);
	}
	/* a symlink to a genuine file is refused */
	path_in(f, "elsewhere", link, sizeof(link));
	assert_int_equal(rename(a, link), 0);
	assert_int_equal(symlink(link, a), 0);
	assert_int_equal(open_err(f), KEYRING_E_NOT_REGULAR);
	assert_int_equal(unlink(a), 0);
	assert_int_equal(rename(link, a), 0);
	/* the directory must not be writable by others */
	assert_int_equal(chmod(f->dir, 0777), 0);
	assert_int_equal(open_err(f), KEYRING_E_BAD_PERMISSIONS);
	assert_int_equal(chmod(f->dir, 0700), 0);
	assert_int_equal(open_err(f), 0);
}

static void test_keyfile_decode_refuses_truncated_and_padded(void **state)
{
	struct fx *f = *state;
	struct keyring_key k[2], out;
	unsigned char buf[KEYRING_KEYFILE_BYTES + 1];
	char path[512];

	two_keys(f, k);
	key_path(f, k[1].kid, path, sizeof(path));
	assert_int_equal(read_file(path, buf, sizeof(buf)),
			 KEYRING_KEYFILE_BYTES);
	assert_int_equal(keyring_keyfile_decode(buf, KEYRING_KEYFILE_BYTES,
						f->kek, &out, NULL, 0),
			 0);
	for (size_t n = 0; n < KEYRING_KEYFILE_BYTES; n += 7)
		assert_int_equal(
			keyring_keyfile_decode(buf, n, f->kek, &out, NULL, 0),
			KEYRING_E_MALFORMED);
	buf[KEYRING_KEYFILE_BYTES] = 0;
	assert_int_equal(keyring_keyfile_decode(buf, sizeof(buf), f->kek, &out,
						f->err, sizeof(f->err)),
			 KEYRING_E_MALFORMED);
	assert_non_null(strstr(f->err, "249 bytes"));
}

/* ---- JWKS, prune, verify-only ------------------------------------------ */

static void expect_jwk(char *p, size_t size, const struct keyring_key *k,
		       bool first)
{
	char x[JOSE_B64_32_BYTES];

	assert_int_equal(b64url_encode(x, sizeof(x), k->pub, sizeof(k->pub)),
			 0);
	snprintf(p, size,
		 "%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\","
		 "\"kid\":\"%s\",\"use\":\"sig\",\"alg\":\"EdDSA\"}",
		 first ? "" : ",", x, k->kid);
}

static void test_jwks_lists_verifying_keys_newest_first(void **state)
{
	struct fx *f = *state;
	char jwks[KEYRING_JWKS_BYTES_MAX + 1], want[2048], part[256];
	struct keyring_key k1, k2, k3;
	size_t len = 0;

	open_ring(f);
	k1 = *rotate(f, T0, 1000);	 /* expires T0 + 1100 */
	k2 = *rotate(f, T0 + 100, 1000); /* expires T0 + 250 */
	k3 = *rotate(f, T0 + 200, 50);
	(void)k1;
	(void)k2;
	k1 = *keyring_key_at(f->kr, 2);
	k2 = *keyring_key_at(f->kr, 1);
	assert_int_equal(k1.expires_at, T0 + 1100);
	assert_int_equal(k2.expires_at, T0 + 250);

	assert_int_equal(
		keyring_jwks(f->kr, T0 + 200, jwks, sizeof(jwks), &len), 0);
	snprintf(want, sizeof(want), "{\"keys\":[");
	expect_jwk(part, sizeof(part), &k3, true);
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s", part);
	expect_jwk(part, sizeof(part), &k2, false);
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s", part);
	expect_jwk(part, sizeof(part), &k1, false);
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s]}",
		 part);
	assert_string_equal(jwks, want);
	assert_int_equal(len, strlen(want));

	/* k2 expired at T0 + 250: gone from the set */
	assert_int_equal(
		keyring_jwks(f->kr, T0 + 250, jwks, sizeof(jwks), &len), 0);
	snprintf(want, sizeof(want), "{\"keys\":[");
	expect_jwk(part, sizeof(part), &k3, true);
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s", part);
	expect_jwk(part, sizeof(part), &k1, false);
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s]}",
		 part);
	assert_string_equal(jwks, want);

	/* every entry is a JWK that jose accepts, with its kid */
	{
		json_error_t je;
		json_t *doc = json_loads(jwks, JSON_REJECT_DUPLICATES, &je);
		json_t *keys = json_object_get(doc, "keys");

		assert_true(json_is_array(keys));
		for (size_t i = 0; i < json_array_size(keys); i++) {
			char *one = json_dumps(json_array_get(keys, i), 0);
			struct jose_pubkey pk;

			assert_int_equal(
				jose_pubkey_parse_jwk(one, strlen(one), &pk),
				0);
			assert_string_equal(pk.kid, i ? k1.kid : k3.kid);
			free(one);
		}
		json_decref(doc);
	}

	/* an empty keyring publishes an empty set; a small buffer refused */
	assert_int_equal(
		keyring_jwks(f->kr, KEYRING_NEVER, jwks, sizeof(jwks), &len),
		0);
	assert_string_equal(jwks, "{\"keys\":[]}");
	assert_int_equal(keyring_jwks(f->kr, T0, jwks, 40, &len),
			 KEYRING_E_NO_SPACE);
}

static void test_prune_removes_only_expired_keys(void **state)
{
	struct fx *f = *state;
	struct keyring_key k1, k2, k3;
	size_t n = 99;
	char path[512];

	open_ring(f);
	rotate(f, T0, 1000);
	rotate(f, T0 + 100, 1000);
	k3 = *rotate(f, T0 + 200, 50);
	k1 = *keyring_key_at(f->kr, 2); /* expires T0 + 1100 */
	k2 = *keyring_key_at(f->kr, 1); /* expires T0 + 250 */

	assert_int_equal(
		keyring_prune(f->kr, T0 + 249, &n, f->err, sizeof(f->err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
		keyring_prune(f->kr, T0 + 250, &n, f->err, sizeof(f->err)), 0);
	assert_int_equal(n, 1);
	key_path(f, k2.kid, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	key_path(f, k1.kid, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);

	open_ring(f);
	assert_int_equal(keyring_count(f->kr), 2);
	assert_string_equal(keyring_key_at(f->kr, 0)->kid, k3.kid);
	assert_string_equal(keyring_key_at(f->kr, 1)->kid, k1.kid);

	assert_int_equal(
		keyring_prune(f->kr, T0 + 5000, &n, f->err, sizeof(f->err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(keyring_count(f->kr), 1);
	assert_string_equal(keyring_key_at(f->kr, 0)->kid, k3.kid);
	assert_int_equal(access(path, F_OK), -1);
}

/* 70 rotations within one overlap: each succeeds; from the 64th key on,
 * the retired key that retired first is dropped (its file too), never
 * the current one nor a newer retired one. */
static void
test_rotation_of_a_full_keyring_drops_the_oldest_retired(void **state)
{
	struct fx *f = *state;
	static struct keyring_rotation rot;
	char first[KEYRING_KID_BYTES + 1] = "", path[512];

	open_ring(f);
	for (int i = 0; i < 70; i++) {
		int64_t now = T0 + i;
		assert_int_equal(keyring_rotate(f->kr, now, 86400, &rot, f->err,
						sizeof(f->err)),
				 0);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", rot.created.kid);
		assert_int_equal(rot.n_dropped, i < KEYRING_KEYS_MAX ? 0 : 1);
		if (i == KEYRING_KEYS_MAX) {
			assert_string_equal(rot.dropped[0], first);
			key_path(f, first, path, sizeof(path));
			assert_int_equal(access(path, F_OK), -1);
		}
		assert_string_equal(keyring_current_signer(f->kr, now)->kid,
				    rot.created.kid);
		assert_true(keyring_count(f->kr) <= KEYRING_KEYS_MAX);
	}
	open_ring(f);
	assert_int_equal(keyring_count(f->kr), KEYRING_KEYS_MAX);
}

static void test_open_without_kek_verifies_but_cannot_sign(void **state)
{
	struct fx *f = *state;
	char tok[JOSE_TOKEN_BYTES_MAX + 1];
	char j1[KEYRING_JWKS_BYTES_MAX + 1], j2[KEYRING_JWKS_BYTES_MAX + 1];
	struct keyring *ro = NULL;
	struct keyring_rotation rot;
	struct jose_pubkey pk;
	struct keyring_key k1;
	size_t len = 0;

	open_ring(f);
	k1 = *rotate(f, T0, 1000);
	assert_int_equal(
		keyfile_open_keyring(f->dir, NULL, &ro, f->err, sizeof(f->err)),
		0);
	assert_int_equal(keyring_verifier(ro, k1.kid, T0, &pk), 0);
	assert_memory_equal(pk.x, k1.pub, sizeof(pk.x));
	assert_int_equal(keyring_jwks(ro, T0, j1, sizeof(j1), NULL), 0);
	assert_int_equal(keyring_jwks(f->kr, T0, j2, sizeof(j2), NULL), 0);
	assert_string_equal(j1, j2);
	assert_int_equal(
		keyring_sign_jws(ro, T0, NULL, "x", 1, tok, sizeof(tok), &len),
		KEYRING_E_NO_KEK);
	assert_int_equal(keyring_rotate(ro, T0 + 1, 10, &rot, NULL, 0),
			 KEYRING_E_NO_KEK);
	keyring_free(ro);
}

/* ---- a KEK in a token (issue 19) ---------------------------------------- */

/* A stand-in for a PKCS#11 token: ChaCha20-Poly1305 (12-byte nonce,
 * 16-byte tag, like the token's AES-GCM) under a key this test holds;
 * `down` makes it answer like a token that is gone. */
struct fake_token {
	unsigned char key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	bool down;
	int wraps, unwraps;
};

static int fake_wrap(void *ctx, const unsigned char *aad, size_t aad_len,
		     const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
		     const unsigned char *pt, size_t len, unsigned char *ct,
		     unsigned char tag[KEYRING_TOKEN_TAG_BYTES], char *err,
		     size_t err_size)
{
	struct fake_token *t = ctx;
	unsigned long long tl = 0;

	t->wraps++;
	if (t->down) {
		snprintf(err, err_size, "fake token is down");
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(
		ct, tag, &tl, pt, len, aad, aad_len, NULL, iv, t->key);
	return 0;
}

static int fake_unwrap(void *ctx,
		       const unsigned char kek_id[KEYRING_KEK_ID_BYTES],
		       const unsigned char *aad, size_t aad_len,
		       const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
		       const unsigned char *ct, size_t len,
		       const unsigned char tag[KEYRING_TOKEN_TAG_BYTES],
		       unsigned char *pt, char *err, size_t err_size)
{
	struct fake_token *t = ctx;

	(void)kek_id; /* one version only */
	t->unwraps++;
	if (t->down) {
		snprintf(err, err_size, "fake token is down");
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		    pt, NULL, ct, len, tag, aad, aad_len, iv, t->key) != 0)
		return KEYRING_E_CIPHERTEXT_MODIFIED;
	return 0;
}

static struct keyring_kek *fake_kek(struct fake_token *t, unsigned char tag)
{
	struct keyring_kek_provider p = {
		.ctx = t, .wrap = fake_wrap, .unwrap = fake_unwrap};
	unsigned char id[KEYRING_KEK_ID_BYTES];
	struct keyring_kek *k = NULL;

	memset(t, 0, sizeof(*t));
	randombytes_buf(t->key, sizeof(t->key));
	memset(id, tag, sizeof(id));
	assert_int_equal(keyring_kek_from_provider(&p, id, &k), 0);
	assert_true(keyring_kek_in_token(k));
	return k;
}

static void test_token_kek_seals_version_2_in_the_token(void **state)
{
	struct fx *f = *state;
	struct fake_token t;
	unsigned char buf[KEYRING_KEYFILE_BYTES];
	unsigned char zero[32] = {0};
	char path[512], tok[1024], kid[KEYRING_KID_BYTES + 1];
	size_t len;

	keyring_kek_free(f->kek);
	f->kek = fake_kek(&t, 0xA5);
	assert_false(keyring_kek_in_token(NULL));
	open_ring(f);
	struct keyring_key k1 = *rotate(f, T0, 3600);
	assert_true(t.wraps == 1 && t.unwraps == 1); /* sealed, read back */
	key_path(f, k1.kid, path, sizeof(path));
	assert_int_equal(read_file(path, buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(buf[6] << 8 | buf[7], KEYRING_KEYFILE_VERSION_TOKEN);
	assert_memory_equal(buf + 144, zero, 32); /* no MAC: GCM's AAD */
	assert_memory_equal(buf + 188, zero, 12); /* after the 12-byte IV */
	/* each signature opens the key in the token */
	open_ring(f);
	int before = t.unwraps;
	sign_token(f, T0, T0 + 60, tok, sizeof(tok), &len);
	assert_int_equal(t.unwraps, before + 1);
	assert_int_equal(verify_token(f, T0, tok, len, kid), 0);
	assert_string_equal(kid, k1.kid);
	/* a time changed: the token refuses it (the metadata is its AAD) */
	flip_byte(f, k1.kid, 31, 0x01);
	assert_int_equal(open_err(f), KEYRING_E_CIPHERTEXT_MODIFIED);
	assert_non_null(strstr(f->err, "token"));
	flip_byte(f, k1.kid, 31, 0x01);
	/* a byte after the IV is malformed before the token is asked */
	flip_byte(f, k1.kid, 190, 0x01);
	assert_int_equal(open_err(f), KEYRING_E_MALFORMED);
	flip_byte(f, k1.kid, 190, 0x01);
	open_ring(f);
	/* a token gone: signing says so, with the provider's words */
	t.down = true;
	assert_int_equal(keyring_sign_jws(f->kr, T0, NULL, "x", 1, tok,
					  sizeof(tok), &len),
			 KEYRING_E_KEK_UNAVAILABLE);
	assert_int_equal(open_err(f), KEYRING_E_KEK_UNAVAILABLE);
	assert_non_null(strstr(f->err, "fake token is down"));
	t.down = false;
	assert_int_equal(open_err(f), 0);
}

/* A fake token that also keeps signing keys (key file version 3): up to
 * four Ed25519 seeds by CKA_ID, which never reach the keyring. */
struct fake_signing_token {
	struct fake_token t;
	unsigned char id[4][KEYRING_TOKEN_KEY_ID_BYTES];
	unsigned char sk[4][crypto_sign_SECRETKEYBYTES];
	bool used[4];
	int signs;
};

static int fake_find(struct fake_signing_token *s, const unsigned char *id)
{
	for (int i = 0; i < 4; i++)
		if (s->used[i] &&
		    memcmp(s->id[i], id, KEYRING_TOKEN_KEY_ID_BYTES) == 0)
			return i;
	return -1;
}

static int fake_key_generate(void *ctx, unsigned char *id, unsigned char *pub,
			     char *err, size_t err_size)
{
	struct fake_signing_token *s = ctx;
	int i = 0;

	(void)err;
	(void)err_size;
	while (i < 4 && s->used[i])
		i++;
	if (i == 4)
		return KEYRING_E_TOO_MANY_KEYS;
	randombytes_buf(s->id[i], KEYRING_TOKEN_KEY_ID_BYTES);
	crypto_sign_keypair(pub, s->sk[i]);
	s->used[i] = true;
	memcpy(id, s->id[i], KEYRING_TOKEN_KEY_ID_BYTES);
	return 0;
}

static int fake_key_public(void *ctx, const unsigned char *id,
			   unsigned char *pub, char *err, size_t err_size)
{
	struct fake_signing_token *s = ctx;
	int i = fake_find(s, id);

	(void)err;
	(void)err_size;
	if (i < 0)
		return KEYRING_E_TOKEN_KEY_MISSING;
	crypto_sign_ed25519_sk_to_pk(pub, s->sk[i]);
	return 0;
}

static int fake_key_sign(void *ctx, const unsigned char *id,
			 const unsigned char *msg, size_t len,
			 unsigned char *sig, char *err, size_t err_size)
{
	struct fake_signing_token *s = ctx;
	int i = fake_find(s, id);

	s->signs++;
	if (s->t.down) {
		snprintf(err, err_size, "fake token is down");
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	if (i < 0)
		return KEYRING_E_TOKEN_KEY_MISSING;
	crypto_sign_detached(sig, NULL, msg, len, s->sk[i]);
	return 0;
}

static int fake_key_destroy(void *ctx, const unsigned char *id, char *err,
			    size_t err_size)
{
	struct fake_signing_token *s = ctx;
	int i = fake_find(s, id);

	(void)err;
	(void)err_size;
	if (i >= 0)
		s->used[i] = false;
	return 0;
}

static void test_token_generated_keys_sign_in_the_token(void **state)
{
	struct fx *f = *state;
	struct fake_signing_token s;
	unsigned char buf[KEYRING_KEYFILE_BYTES], zero[16] = {0};
	unsigned char id[KEYRING_KEK_ID_BYTES], nonce[24];
	unsigned char out[KEYRING_KEYFILE_BYTES];
	char path[512], tok[1024], kid[KEYRING_KID_BYTES + 1];
	size_t len;

	memset(&s, 0, sizeof(s));
	randombytes_buf(s.t.key, sizeof(s.t.key));
	memset(id, 0x77, sizeof(id));
	struct keyring_kek_provider p = {.ctx = &s,
					 .wrap = fake_wrap,
					 .unwrap = fake_unwrap,
					 .key_generate = fake_key_generate,
					 .key_public = fake_key_public,
					 .key_sign = fake_key_sign,
					 .key_destroy = fake_key_destroy,
					 .generate_in_token = true};
	keyring_kek_free(f->kek);
	f->kek = NULL;
	assert_int_equal(keyring_kek_from_provider(&p, id, &f->kek), 0);
	assert_true(keyring_kek_generates_in_token(f->kek));
	open_ring(f);
	struct keyring_key k1 = *rotate(f, T0, 3600);
	key_path(f, k1.kid, path, sizeof(path));
	assert_int_equal(read_file(path, buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(buf[6] << 8 | buf[7],
			 KEYRING_KEYFILE_VERSION_IN_TOKEN);
	assert_true(keyring_image_in_token(buf));
	assert_memory_equal(buf + 144, s.id[0], 16); /* its CKA_ID, clear */
	assert_memory_equal(buf + 160, zero, 16);
	/* no byte of the private key in the file */
	assert_null(memmem(buf, sizeof(buf), s.sk[0], 8));
	assert_null(memmem(buf, sizeof(buf), s.sk[0] + 8, 8));
	/* signatures are the token's, and verify */
	open_ring(f);
	sign_token(f, T0, T0 + 60, tok, sizeof(tok), &len);
	assert_int_equal(s.signs, 1);
	assert_int_equal(verify_token(f, T0, tok, len, kid), 0);
	assert_string_equal(kid, k1.kid);
	struct note_signer ns;
	char note[512];
	size_t note_len;
	assert_int_equal(keyring_note_signer(f->kr, T0, "o", 1, &ns), 0);
	const struct note_signer *list[] = {&ns};
	assert_int_equal(
		note_sign("x\n", 2, list, 1, note, sizeof(note), &note_len), 0);
	assert_int_equal(s.signs, 2);
	struct note_opened opened;
	assert_int_equal(note_open(note, note_len, &ns.pub, 1, &opened), 0);
	assert_int_equal(opened.verified, 1);
	note_signer_clear(&ns);
	/* a token refusing: the signature says so */
	s.t.down = true;
	assert_int_equal(keyring_sign_jws(f->kr, T0, NULL, "x", 1, tok,
					  sizeof(tok), &len),
			 KEYRING_E_KEK_UNAVAILABLE);
	s.t.down = false;
	/* a rotation: the new key in the token too, the old rescheduled and
	 * still there */
	struct keyring_key k2 = *rotate(f, T0 + 10, 3600);
	assert_string_not_equal(k2.kid, k1.kid);
	open_ring(f);
	assert_int_equal(read_file(path, buf, sizeof(buf)), sizeof(buf));
	assert_true(keyring_image_in_token(buf));
	/* it cannot leave the token for a file KEK */
	randombytes_buf(nonce, sizeof(nonce));
	assert_int_equal(keyring_keyfile_reseal(buf, f->kek, f->kek, nonce, out,
						NULL, 0),
			 0);
	assert_true(keyring_image_in_token(out));
	struct keyring_kek *file = NULL;
	assert_int_equal(keyring_kek_parse(f->kek_text, KEYRING_KEK_TEXT_BYTES,
					   &file, NULL, 0),
			 0);
	assert_int_equal(keyring_keyfile_reseal(buf, f->kek, file, nonce, out,
						f->err, sizeof(f->err)),
			 KEYRING_E_KEY_IN_TOKEN);
	assert_non_null(strstr(f->err, k1.kid));
	keyring_kek_free(file);
	/* its pair gone from the token: the load says which key */
	s.used[0] = false;
	assert_int_equal(open_err(f), KEYRING_E_TOKEN_KEY_MISSING);
	assert_non_null(strstr(f->err, k1.kid));
	s.used[0] = true;
	open_ring(f);
	/* pruned once expired: the pair leaves the token too */
	size_t pruned = 0;
	assert_int_equal(keyring_prune(f->kr, T0 + 10 + 3600, &pruned, NULL, 0),
			 0);
	assert_int_equal(pruned, 1);
	assert_false(s.used[0]);
	assert_true(s.used[1]);
}

static void test_reseal_moves_a_key_between_keks_unchanged(void **state)
{
	struct fx *f = *state;
	struct fake_token t;
	struct keyring_kek *token = fake_kek(&t, 0x5A);
	unsigned char file1[KEYRING_KEYFILE_BYTES], tok[KEYRING_KEYFILE_BYTES];
	unsigned char file2[KEYRING_KEYFILE_BYTES], nonce[24];
	struct keyring_key a, b, c;
	char path[512];

	open_ring(f);
	a = *rotate(f, T0, 3600);
	key_path(f, a.kid, path, sizeof(path));
	assert_int_equal(read_file(path, file1, sizeof(file1)), sizeof(file1));
	randombytes_buf(nonce, sizeof(nonce));
	assert_int_equal(keyring_keyfile_reseal(file1, f->kek, token, nonce,
						tok, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(
		keyring_keyfile_decode(tok, sizeof(tok), token, &b, NULL, 0),
		0);
	/* the file KEK no longer opens it, and the token does not open the
	 * file KEK's */
	assert_int_equal(
		keyring_keyfile_decode(tok, sizeof(tok), f->kek, &c, NULL, 0),
		KEYRING_E_WRONG_KEK);
	assert_int_equal(keyring_keyfile_reseal(file1, token, f->kek, nonce,
						file2, NULL, 0),
			 KEYRING_E_WRONG_KEK);
	randombytes_buf(nonce, sizeof(nonce));
	assert_int_equal(keyring_keyfile_reseal(tok, token, f->kek, nonce,
						file2, NULL, 0),
			 0);
	assert_int_equal(keyring_keyfile_decode(file2, sizeof(file2), f->kek,
						&c, NULL, 0),
			 0);
	assert_string_equal(b.kid, a.kid);
	assert_string_equal(c.kid, a.kid);
	assert_memory_equal(c.pub, a.pub, sizeof(a.pub));
	assert_true(c.created_at == a.created_at &&
		    c.expires_at == a.expires_at &&
		    b.activate_at == a.activate_at);
	keyring_kek_free(token);
}

static void test_rekey_reseals_every_key_then_switches(void **state)
{
	struct fx *f = *state;
	struct fake_token t;
	struct keyring_kek *token = fake_kek(&t, 0x3C);
	unsigned char buf[KEYRING_KEYFILE_BYTES];
	char path[512], tok[1024];
	struct keyring_key k[2];
	size_t n = 99, len;

	two_keys(f, k);
	open_ring(f);
	assert_int_equal(
		keyring_rekey(f->kr, token, &n, f->err, sizeof(f->err)), 0);
	assert_int_equal(n, 2);
	for (int i = 0; i < 2; i++) {
		key_path(f, k[i].kid, path, sizeof(path));
		assert_int_equal(read_file(path, buf, sizeof(buf)),
				 sizeof(buf));
		assert_int_equal(buf[7], KEYRING_KEYFILE_VERSION_TOKEN);
	}
	/* the keyring now signs through the token */
	int before = t.unwraps;
	sign_token(f, T0 + 100, T0 + 160, tok, sizeof(tok), &len);
	assert_int_equal(t.unwraps, before + 1);
	/* again: nothing left to re-seal */
	assert_int_equal(keyring_rekey(f->kr, token, &n, NULL, 0), 0);
	assert_int_equal(n, 0);
	/* the directory opens with the token's KEK, not the file's */
	assert_int_equal(open_err(f), KEYRING_E_WRONG_KEK);
	keyring_free(f->kr);
	f->kr = NULL;
	keyring_kek_free(f->kek);
	f->kek = token;
	open_ring(f);
	assert_int_equal(keyring_count(f->kr), 2);
}

static void test_error_names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(keyring_strerror(KEYRING_E_WRONG_KEK), "wrong_kek");
	assert_string_equal(keyring_strerror(KEYRING_E_CIPHERTEXT_MODIFIED),
			    "ciphertext_modified");
	assert_string_equal(keyring_strerror(0), "unknown");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_kek_file_mode_0644_refused_naming_the_mode),
		T(test_kek_file_mode_0600_and_0400_accepted_same_key),
		T(test_kek_file_raw_32_bytes_equals_its_text),
		T(test_kek_file_symlink_refused_even_to_a_good_file),
		T(test_kek_file_directory_and_missing_refused),
		T(test_kek_file_wrong_length_or_encoding_refused),
		T(test_kek_generate_file_is_0600_loadable_and_exclusive),
		T(test_kek_env_parsing_accepts_43_chars_refuses_rest),
		T(test_create_then_load_round_trip),
		T(test_jws_signed_with_current_key_verifies_by_kid),
		T(test_rotation_old_token_verifies_until_overlap_ends),
		T(test_retired_key_is_no_longer_chosen_for_signing),
		T(test_retired_keys_still_verifying_sign_notes),
		T(test_due_for_rotation_by_period),
		T(test_rotate_refuses_clock_gone_backwards),
		T(test_tamper_ciphertext_byte_refused),
		T(test_tamper_metadata_byte_refused),
		T(test_tamper_unknown_version_refused),
		T(test_token_generated_keys_sign_in_the_token),
		T(test_tamper_swapped_key_files_refused),
		T(test_tamper_wrong_kek_refused_naming_both_ids),
		T(test_key_file_permissions_and_links_refused),
		T(test_keyfile_decode_refuses_truncated_and_padded),
		T(test_jwks_lists_verifying_keys_newest_first),
		T(test_prune_removes_only_expired_keys),
		T(test_rotation_of_a_full_keyring_drops_the_oldest_retired),
		T(test_open_without_kek_verifies_but_cannot_sign),
		T(test_token_kek_seals_version_2_in_the_token),
		T(test_reseal_moves_a_key_between_keks_unchanged),
		T(test_rekey_reseals_every_key_then_switches),
		T(test_error_names_are_stable),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
