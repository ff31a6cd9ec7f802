/*
 * keyfile.c - the keyring's files (keyfile.h): KEK files, the key
 * directory, and the struct keyring_store that crypto/keyring writes
 * through.
 */
#include "log/keyfile.h"

#include "log/fsdir.h"
#include "log/fsfile.h"
#include "core/strerror.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "banned.h"

/* The store's context: the directory the key files are in. */
struct keyfile_dir {
	char dir[KEYRING_DIR_BYTES_MAX + 1];
};

static int read_all(int fd, unsigned char *buf, size_t cap, size_t *n)
{
	*n = 0;
	while (*n < cap) {
		ssize_t r = read(fd, buf + *n, cap - *n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = write(fd, buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
	}
	return 0;
}

/*
 * A file holding a secret must be a regular file of ours that nobody
 * else can read or write.  fstat on the open descriptor: what is checked
 * is what is read.
 */
static int check_secret_file(int fd, const char *path, const char *what,
			     char *err, size_t err_size)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		int e = errno;

		keyring__say(err, err_size, "%s %s: cannot stat: %s", what,
			     path, tpw_strerror(e));
		return KEYRING_E_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		keyring__say(err, err_size, "%s %s: not a regular file", what,
			     path);
		return KEYRING_E_NOT_REGULAR;
	}
	if (st.st_uid != geteuid()) {
		keyring__say(err, err_size,
			     "%s %s: owned by uid %lu, not by the running user "
			     "(uid %lu)",
			     what, path, (unsigned long)st.st_uid,
			     (unsigned long)geteuid());
		return KEYRING_E_BAD_OWNER;
	}
	if (st.st_mode & 077) {
		keyring__say(
			err, err_size,
			"%s %s: mode %04o gives access to group or others; it "
			"must be 0600 or stricter (chmod 600 %s)",
			what, path, (unsigned)(st.st_mode & 07777), path);
		return KEYRING_E_BAD_PERMISSIONS;
	}
	return 0;
}

/* Opens a file that must not be a symbolic link; O_NONBLOCK so that a
 * FIFO planted at the path cannot hang us before fstat refuses it. */
static int open_secret(int dirfd, const char *name, const char *path,
		       const char *what, int *fd_out, char *err,
		       size_t err_size)
{
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
				O_NOCTTY);

	*fd_out = -1;
	if (fd < 0) {
		int e = errno;

		if (e == ELOOP) {
			keyring__say(err, err_size,
				     "%s %s: is a symbolic link; refusing to "
				     "follow it",
				     what, path);
			return KEYRING_E_NOT_REGULAR;
		}
		keyring__say(err, err_size, "%s %s: cannot open: %s", what,
			     path, tpw_strerror(e));
		return KEYRING_E_IO;
	}
	*fd_out = fd;
	return 0;
}

static int fsync_dir(const char *dir, char *err, size_t err_size)
{
	int ret = fsdir_sync(dir);

	if (ret) {
		keyring__say(err, err_size, "directory %s: cannot fsync: %s",
			     dir, tpw_strerror(-ret));
		return KEYRING_E_IO;
	}
	return 0;
}

int keyfile_kek_from_env(const char *var, struct keyring_kek **out, char *err,
			 size_t err_size)
{
	const char *name = var ? var : KEYRING_KEK_ENV;
	const char *v;

	if (!out)
		return KEYRING_E_INVALID_ARGUMENT;
	*out = NULL;
	v = getenv(name);
	if (!v) {
		keyring__say(err, err_size,
			     "environment variable %s is not set", name);
		return KEYRING_E_KEK_MISSING;
	}
	return keyring_kek_parse(v, strlen(v), out, err, err_size);
}

int keyfile_kek_load(const char *path, struct keyring_kek **out, char *err,
		     size_t err_size)
{
	enum { CAP = KEYRING_KEK_FILE_BYTES_MAX };
	unsigned char *buf = NULL;
	size_t n = 0;
	int fd = -1;
	int ret;

	if (!out)
		return KEYRING_E_INVALID_ARGUMENT;
	*out = NULL;
	if (!path)
		return KEYRING_E_INVALID_ARGUMENT;
	ret = open_secret(AT_FDCWD, path, path, "KEK file", &fd, err, err_size);
	if (ret)
		goto cleanup;
	ret = check_secret_file(fd, path, "KEK file", err, err_size);
	if (ret)
		goto cleanup;
	buf = sodium_malloc(CAP + 1);
	if (!buf) {
		ret = KEYRING_E_NO_MEMORY;
		goto cleanup;
	}
	ret = read_all(fd, buf, CAP + 1, &n);
	if (ret) {
		keyring__say(err, err_size, "KEK file %s: cannot read: %s",
			     path, tpw_strerror(-ret));
		ret = KEYRING_E_IO;
		goto cleanup;
	}
	ret = keyring_kek_decode_file(buf, n, path, out, err, err_size);
cleanup:
	if (fd >= 0)
		close(fd);
	sodium_free(buf);
	return ret;
}

int keyfile_kek_generate(const char *path, char *err, size_t err_size)
{
	char *text = NULL;
	bool created = false;
	int fd = -1;
	int ret = 0;

	if (!path)
		return KEYRING_E_INVALID_ARGUMENT;
	text = sodium_malloc(KEYRING_KEK_TEXT_BYTES + 2);
	if (!text) {
		ret = KEYRING_E_NO_MEMORY;
		goto cleanup;
	}
	ret = keyring_kek_generate_text(text);
	if (ret)
		goto cleanup;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		int e = errno;

		keyring__say(err, err_size, "KEK file %s: cannot create: %s",
			     path, tpw_strerror(e));
		ret = e == EEXIST ? KEYRING_E_EXISTS : KEYRING_E_IO;
		goto cleanup;
	}
	created = true;
	ret = write_all(fd, (const unsigned char *)text,
			KEYRING_KEK_TEXT_BYTES + 1);
	if (ret == 0 && fsync(fd) != 0)
		ret = -errno;
	if (ret) {
		keyring__say(err, err_size, "KEK file %s: cannot write: %s",
			     path, tpw_strerror(-ret));
		ret = KEYRING_E_IO;
		goto cleanup;
	}
	/* The directory entry must be durable too. */
	{
		char dir[KEYRING_DIR_BYTES_MAX + 1];
		const char *slash = strrchr(path, '/');
		size_t dlen = slash ? (size_t)(slash - path) : 0;

		if (dlen >= sizeof(dir)) {
			keyring__say(err, err_size,
				     "KEK file %s: directory name too long",
				     path);
			ret = KEYRING_E_INVALID_ARGUMENT;
			goto cleanup;
		}
		if (!slash)
			memcpy(dir, ".", 2);
		else if (dlen == 0)
			memcpy(dir, "/", 2);
		else {
			memcpy(dir, path, dlen);
			dir[dlen] = '\0';
		}
		ret = fsync_dir(dir, err, err_size);
	}
cleanup:
	if (fd >= 0 && close(fd) != 0 && ret == 0) {
		keyring__say(err, err_size, "KEK file %s: close failed", path);
		ret = KEYRING_E_IO;
	}
	if (ret && created)
		unlink(path);
	sodium_free(text);
	return ret;
}

static int put_key(void *ctx, const char *kid,
		   const unsigned char image[KEYRING_KEYFILE_BYTES], char *err,
		   size_t err_size)
{
	const struct keyfile_dir *kd = ctx;
	char name[KEYRING_KID_BYTES + 8];
	int ret;

	snprintf(name, sizeof(name), "%s.key", kid);
	ret = fsfile_replace(kd->dir, name, image, KEYRING_KEYFILE_BYTES);
	if (ret) {
		keyring__say(err, err_size, "key file %s/%s: cannot write: %s",
			     kd->dir, name, tpw_strerror(-ret));
		return KEYRING_E_IO;
	}
	return 0;
}

static int remove_key(void *ctx, const char *kid, char *err, size_t err_size)
{
	const struct keyfile_dir *kd = ctx;
	char path[KEYRING_DIR_BYTES_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s.key", kd->dir, kid);
	if (unlink(path) != 0 && errno != ENOENT) {
		int en = errno;
		keyring__say(err, err_size, "key file %s: cannot remove: %s",
			     path, tpw_strerror(en));
		return KEYRING_E_IO;
	}
	return 0;
}

static int sync_dir(void *ctx, char *err, size_t err_size)
{
	const struct keyfile_dir *kd = ctx;

	return fsync_dir(kd->dir, err, err_size);
}

static int load_one(struct keyring *kr, const char *dir, int dfd,
		    const char *name, char *err, size_t err_size)
{
	char path[KEYRING_DIR_BYTES_MAX + 300];
	unsigned char buf[KEYRING_KEYFILE_BYTES + 1];
	size_t len = strlen(name);
	size_t n = 0;
	int fd = -1;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (len != KEYRING_KID_BYTES + 4 ||
	    !keyring_kid_valid(name, KEYRING_KID_BYTES)) {
		keyring__say(err, err_size,
			     "%s: a .key file name must be a %d-character kid",
			     path, KEYRING_KID_BYTES);
		return KEYRING_E_FILE_NAME_MISMATCH;
	}
	if (keyring_count(kr) >= KEYRING_KEYS_MAX) {
		keyring__say(err, err_size,
			     "%s: more than %d keys in %s; prune first", path,
			     KEYRING_KEYS_MAX, dir);
		return KEYRING_E_TOO_MANY_KEYS;
	}
	ret = open_secret(dfd, name, path, "key file", &fd, err, err_size);
	if (ret)
		goto cleanup;
	ret = check_secret_file(fd, path, "key file", err, err_size);
	if (ret)
		goto cleanup;
	ret = read_all(fd, buf, sizeof(buf), &n);
	if (ret) {
		keyring__say(err, err_size, "key file %s: cannot read: %s",
			     path, tpw_strerror(-ret));
		ret = KEYRING_E_IO;
		goto cleanup;
	}
	ret = keyring_add_image(kr, name, path, buf, n, err, err_size);
cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}

int keyfile_open_keyring(const char *dir, const struct keyring_kek *kek,
			 struct keyring **out, char *err, size_t err_size)
{
	struct keyring *kr = NULL;
	struct keyfile_dir *st_ctx;
	struct keyring_store store = {.put = put_key,
				      .remove = remove_key,
				      .sync = sync_dir,
				      .release = free};
	DIR *d = NULL;
	struct stat st;
	size_t dlen;
	int dfd = -1;
	int ret = 0;

	if (!out)
		return KEYRING_E_INVALID_ARGUMENT;
	*out = NULL;
	if (!dir)
		return KEYRING_E_INVALID_ARGUMENT;
	dlen = strlen(dir);
	if (dlen == 0 || dlen > KEYRING_DIR_BYTES_MAX) {
		keyring__say(err, err_size,
			     "keyring directory name is empty or longer "
			     "than %d bytes",
			     KEYRING_DIR_BYTES_MAX);
		return KEYRING_E_INVALID_ARGUMENT;
	}
	st_ctx = malloc(sizeof(*st_ctx));
	if (!st_ctx)
		return KEYRING_E_NO_MEMORY;
	memcpy(st_ctx->dir, dir, dlen + 1);
	store.ctx = st_ctx;
	ret = keyring_new(kek, &store, &kr);
	if (ret) {
		free(st_ctx);
		return ret;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) != 0) {
		int e = errno;

		keyring__say(err, err_size,
			     "keyring directory %s: cannot open: %s", dir,
			     tpw_strerror(e));
		ret = KEYRING_E_IO;
		goto cleanup;
	}
	if (st.st_uid != geteuid()) {
		keyring__say(
			err, err_size,
			"keyring directory %s: owned by uid %lu, not by the "
			"running user (uid %lu)",
			dir, (unsigned long)st.st_uid,
			(unsigned long)geteuid());
		ret = KEYRING_E_BAD_OWNER;
		goto cleanup;
	}
	if (st.st_mode & 022) {
		keyring__say(
			err, err_size,
			"keyring directory %s: mode %04o lets group or others "
			"write; it must be 0700 or 0755 at most (chmod 700 %s)",
			dir, (unsigned)(st.st_mode & 07777), dir);
		ret = KEYRING_E_BAD_PERMISSIONS;
		goto cleanup;
	}
	d = fdopendir(dfd);
	if (!d) {
		int e = errno;

		keyring__say(err, err_size,
			     "keyring directory %s: cannot list: %s", dir,
			     tpw_strerror(e));
		ret = KEYRING_E_IO;
		goto cleanup;
	}
	dfd = -1; /* owned by d now */
	for (;;) {
		const struct dirent *de;
		size_t len;

		errno = 0;
		de = readdir(d);
		if (!de) {
			int e = errno;

			if (e) {
				keyring__say(
					err, err_size,
					"keyring directory %s: cannot list: %s",
					dir, tpw_strerror(e));
				ret = KEYRING_E_IO;
			}
			break;
		}
		len = strlen(de->d_name);
		/* dot files are ours (temporaries) or not ours at all */
		if (de->d_name[0] == '.' || len < 4 ||
		    strcmp(de->d_name + len - 4, ".key") != 0)
			continue;
		ret = load_one(kr, dir, dirfd(d), de->d_name, err, err_size);
		if (ret)
			break;
	}
	if (ret)
		goto cleanup;
	*out = kr;
	kr = NULL;
cleanup:
	if (d)
		closedir(d);
	if (dfd >= 0)
		close(dfd);
	keyring_free(kr);
	return ret;
}
