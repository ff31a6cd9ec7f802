/*
 * failsync.c - an LD_PRELOAD shim for the journal-failure test: once the
 * file named by TPW_FAIL_SYNC_FLAG exists, every fdatasync fails with EIO,
 * as a dying disk would make it.  Built by test_durability.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int fdatasync(int fd)
{
	static int (*real)(int);
	const char *flag = getenv("TPW_FAIL_SYNC_FLAG");

	if (flag && access(flag, F_OK) == 0) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return real(fd);
}
