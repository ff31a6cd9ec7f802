/*
 * fsdir.c - durable directory entries (fsdir.h).
 */
#include "log/fsdir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
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

/* nftw passes no context: the walk's first error, per thread. */
static _Thread_local int remove_err;

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	bool dir = type == FTW_DP || type == FTW_DNR;
	int r = dir ? rmdir(path) : unlink(path);
	if (r != 0 && remove_err == 0)
		remove_err = -errno;
	return 0; /* go on: remove what can be removed */
}

int fsdir_remove_tree(const char *path)
{
	remove_err = 0;
	/* FTW_DEPTH: contents before their directory; FTW_PHYS: a link is
	 * an entry to unlink, not a way out of the tree; FTW_MOUNT: never
	 * onto another filesystem. */
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
		return -errno;
	return remove_err;
}
