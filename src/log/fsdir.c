/*
 * fsdir.c - durable directory entries (fsdir.h).
 */
#include "log/fsdir.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

int fsdir_sync(const char *path)
{
	int ret = 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		ret = -errno;
	close(fd);
	return ret;
}

int fsdir_make(const char *path)
{
	char parent[4096];
	const char *slash;
	size_t n;

	if (mkdir(path, 0700) != 0)
		return errno == EEXIST ? 0 : -errno;
	slash = strrchr(path, '/');
	if (!slash)
		return fsdir_sync(".");
	n = (size_t)(slash - path);
	if (n == 0)
		return fsdir_sync("/");
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, n);
	parent[n] = '\0';
	return fsdir_sync(parent);
}
