/*
 * fsfile.c - bounded whole-file reads and the atomic replace (fsfile.h).
 */
#include "log/fsfile.h"
#include "core/strerror.h"

#include "log/fsdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

int fsfile_read_fd(int fd, size_t max, char **out, size_t *len_out)
{
	size_t cap = max < 4096 ? max : 4096, len = 0;
	char *buf = malloc(cap + 2), *nb;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		/* Room for one byte more than max: that byte tells a file
		 * that is too large. */
		if (len == cap + 1) {
			if (cap == max) {
				free(buf);
				return -EFBIG;
			}
			cap = cap > max / 2 ? max : cap * 2;
			nb = realloc(buf, cap + 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + len, cap + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max) {
		free(buf);
		return -EFBIG;
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	return 0;
}

int fsfile_read(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = fsfile_read_fd(fd, max, out, len);
	close(fd);
	return ret;
}

const char *fsfile_strerror(int code)
{
	return code == -EFBIG ? "file too large" : tpw_strerror(-code);
}

int fsfile_replace(const char *dir, const char *name, const void *data,
		   size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	const char *p = data;
	bool created = false;
	int fd = -1, ret = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
		    sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	/* A leftover from a crash may have another mode: start afresh. */
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return -errno;
	created = true;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ret = w < 0 ? -errno : -EIO;
			goto cleanup;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	fd = -1;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		goto cleanup;
	created = false;
	ret = fsdir_sync(dir);
cleanup:
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(tmp);
	return ret;
}
