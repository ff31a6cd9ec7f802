/*
 * datadir.c - the data directory's marker, trusted modes and checkpoint
 * framing (datadir.h).
 */
#include "log/datadir.h"

#include "core/parse.h"
#include "core/strerror.h"
#include "crypto/note.h"
#include "log/fsdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

/* Each directory made, made durable in its parent (fsdir_make): else a
 * power cut may undo a new data directory whose files were all synced
 * (the crash explorer's finding, docs/crash-model.md). */
static int mkdir_p(const char *dir)
{
	char path[4096];
	int ret;
	if ((size_t)snprintf(path, sizeof(path), "%s", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if ((ret = fsdir_make(path)) < 0)
			return ret;
		*p = '/';
	}
	return fsdir_make(path);
}

const char *const datadir_trusted[] = {"",	"journal", "snapshots",
				       "audit", "keys",	   NULL};

int datadir_check_dir(const char *path, bool optional, char *why,
		      size_t why_len)
{
	struct stat st;

	why[0] = '\0';
	if (stat(path, &st) != 0) {
		if (errno == ENOENT && optional)
			return 0; /* created 0700 when needed */
		int ret = -errno;
		snprintf(why, why_len, "%s: %s", path, tpw_strerror(errno));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, why_len, "%s is not a directory", path);
		return -ENOTDIR;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, why_len,
			 "%s is mode %04o: group or others can write it, and "
			 "so rewrite the journal, snapshots, audit files or "
			 "keys; refusing it (chmod 700 %s)",
			 path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	/* A file others may write is as open as the directory: they need
	 * only its name (a directory of mode 0711 gives them a way in). */
	DIR *dd = opendir(path);
	if (!dd)
		return 0;
	struct dirent *de;
	int ret = 0;
	while ((de = readdir(dd)) && ret == 0) {
		char file[4500];
		struct stat fst;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		if (lstat(file, &fst) != 0 || !S_ISREG(fst.st_mode) ||
		    !(fst.st_mode & (S_IWGRP | S_IWOTH)))
			continue;
		snprintf(why, why_len,
			 "%s is mode %04o: group or others can write it; "
			 "refusing it (chmod 600 %s)",
			 file, (unsigned)(fst.st_mode & 07777), file);
		ret = -EPERM;
	}
	closedir(dd);
	return ret;
}

int datadir_check_outside(const char *path, char *why, size_t why_len)
{
	char parent[4200];
	struct stat st, pst;
	int ret = datadir_check_dir(path, false, why, why_len);

	if (ret < 0)
		return ret;
	if (stat(path, &st) != 0)
		return -errno;
	if (st.st_uid != geteuid()) {
		snprintf(why, why_len,
			 "%s is owned by uid %lu, not by the user the server "
			 "runs as (uid %lu): another user could remove or "
			 "replace what it holds; refusing it (chown it)",
			 path, (unsigned long)st.st_uid,
			 (unsigned long)geteuid());
		return -EPERM;
	}
	/* Whoever can write its parent can rename it away and put another
	 * in its place: only the owner (or root, or a sticky directory's
	 * rules) may. */
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(parent, &pst) == 0 && (pst.st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(pst.st_mode & S_ISVTX)) {
		snprintf(why, why_len,
			 "the directory holding %s is mode %04o: group or "
			 "others can rename it and put another in its place; "
			 "refusing it (chmod go-w, or +t, on its parent)",
			 path, (unsigned)(pst.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int datadir_check_modes(const char *dir, char *why, size_t why_len)
{
	char path[4200];

	why[0] = '\0';
	for (size_t i = 0; datadir_trusted[i]; i++) {
		const char *sub = datadir_trusted[i];
		snprintf(path, sizeof(path), "%s%s%s", dir, *sub ? "/" : "",
			 sub);
		int ret = datadir_check_dir(path, *sub != '\0', why, why_len);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int datadir_prepare(const char *dir, bool *created, char *why, size_t why_len)
{
	char marker[4200];
	struct stat st;
	int ret;

	*created = false;
	snprintf(marker, sizeof(marker), "%s/%s", dir, DATADIR_MARKER);
	if (stat(marker, &st) == 0)
		return 0;

	ret = mkdir_p(dir);
	if (ret < 0) {
		snprintf(why, why_len, "cannot create %s: %s", dir,
			 tpw_strerror(-ret));
		return ret;
	}
	DIR *d = opendir(dir);
	if (!d) {
		ret = -errno;
		snprintf(why, why_len, "cannot open %s: %s", dir,
			 tpw_strerror(errno));
		return ret;
	}
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	if (!empty) {
		snprintf(why, why_len,
			 "%s is not empty and is not a tpwallet "
			 "data directory (no %s): refusing to use it",
			 dir, DATADIR_MARKER);
		return -ENOTEMPTY;
	}
	/* A directory made beforehand (by an installer, with the umask of
	 * the day) gets the mode the server makes its own with. */
	if (chmod(dir, 0700) != 0) {
		ret = -errno;
		snprintf(why, why_len, "cannot chmod 700 %s: %s", dir,
			 tpw_strerror(errno));
		return ret;
	}
	int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, why_len, "cannot create %s: %s", marker,
			 tpw_strerror(errno));
		return ret;
	}
	ssize_t w =
		write(fd, DATADIR_MARKER_TEXT, sizeof(DATADIR_MARKER_TEXT) - 1);
	if (w != (ssize_t)sizeof(DATADIR_MARKER_TEXT) - 1 || fsync(fd) < 0) {
		ret = -EIO;
		snprintf(why, why_len, "cannot write %s", marker);
		close(fd);
		return ret;
	}
	close(fd);
	ret = fsdir_sync(dir);
	if (ret < 0) {
		snprintf(why, why_len, "cannot sync %s: %s", dir,
			 tpw_strerror(-ret));
		return ret;
	}
	*created = true;
	return 0;
}

int datadir_marker_check(const char *dir)
{
	char marker[4200];
	struct stat st;

	snprintf(marker, sizeof(marker), "%s/%s", dir, DATADIR_MARKER);
	return stat(marker, &st) == 0 ? 0 : -errno;
}

size_t datadir_checkpoint_head(char out[DATADIR_CHECKPOINT_HEAD_BYTES_MAX + 1],
			       size_t note_len)
{
	return (size_t)snprintf(out, DATADIR_CHECKPOINT_HEAD_BYTES_MAX + 1,
				"%zu\n", note_len);
}

int datadir_checkpoint_head_parse(const char *text, size_t len, u64 *note_len,
				  size_t *head_bytes)
{
	const char *nl = memchr(text, '\n', len);

	if (!nl) {
		if (len == 0)
			return DATADIR_HEAD_END;
		/* Whatever it holds: the rest is still being appended. */
		if (len < DATADIR_CHECKPOINT_HEAD_BYTES_MAX)
			return DATADIR_HEAD_CUT;
		*head_bytes = len;
		return -EBADMSG;
	}
	*head_bytes = (size_t)(nl - text) + 1;
	if (*head_bytes > DATADIR_CHECKPOINT_HEAD_BYTES_MAX ||
	    parse_u64_n(text, (size_t)(nl - text), NOTE_BYTES_MAX, note_len) !=
		    0 ||
	    *note_len == 0)
		return -EBADMSG;
	return DATADIR_HEAD_OK;
}

int datadir_checkpoint_head_read(FILE *f, u64 *note_len, size_t *head_bytes)
{
	char line[DATADIR_CHECKPOINT_HEAD_BYTES_MAX];
	size_t n = 0;
	int ch = 0;

	while (n < sizeof(line) && (ch = fgetc(f)) != EOF) {
		line[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (ferror(f))
		return -EIO;
	return datadir_checkpoint_head_parse(line, n, note_len, head_bytes);
}
