/*
 * failwritev.c - an LD_PRELOAD shim for the disk-full doctor test: once
 * the file named by TPW_FAIL_WRITEV_FLAG exists, writev to a regular file
 * fails with ENOSPC.  Only the audit log's checkpoints are appended with
 * writev (the journal uses write(2), sockets are left alone), so the
 * server goes on journaling while it cannot record a signed checkpoint:
 * a disk full at the wrong moment.  Built by test_doctor.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	static ssize_t (*real)(int, const struct iovec *, int);
	const char *flag = getenv("TPW_FAIL_WRITEV_FLAG");
	struct stat st;

	if (flag && access(flag, F_OK) == 0 && fstat(fd, &st) == 0 &&
	    S_ISREG(st.st_mode)) {
		errno = ENOSPC;
		return -1;
	}
	if (!real)
		real = (ssize_t(*)(int, const struct iovec *, int))dlsym(
			RTLD_NEXT, "writev");
	return real(fd, iov, iovcnt);
}
