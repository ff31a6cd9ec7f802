/*
 * failsync.c - an LD_PRELOAD shim for the journal-failure test: once the
 * file named by TPW_FAIL_SYNC_FLAG exists, every fdatasync fails with EIO,
 * as a dying disk would make it; while the file named by
 * TPW_STALL_SYNC_FLAG exists, every fdatasync waits (a disk that stopped
 * answering; test_stop.py), checking every 10 ms.  Built by
 * test_durability.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int fdatasync(int fd)
{
	static int (*real)(int);
	const char *flag = getenv("TPW_FAIL_SYNC_FLAG");
	const char *stall = getenv("TPW_STALL_SYNC_FLAG");
	struct timespec tick = {0, 10 * 1000 * 1000};

	while (stall && access(stall, F_OK) == 0)
		nanosleep(&tick, NULL);

	if (flag && access(flag, F_OK) == 0) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return real(fd);
}
