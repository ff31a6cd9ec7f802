/*
 * recfs.c - the crash explorer's recording layer (issue 20, item 1): an
 * LD_PRELOAD shim that writes, for every file-system call that changes
 * something under one directory, one line to a trace file, in the order
 * the calls happened.  tests/crash/explore.py replays the trace to build
 * the directories a crash after any prefix of it may leave
 * (docs/crash-model.md).
 *
 *   TPW_RECFS_ROOT   the directory watched (calls on paths outside it,
 *                    sockets and pipes are passed through unrecorded)
 *   TPW_RECFS_TRACE  the trace file (appended; made if absent)
 *   TPW_RECFS_FAIL   "K EIO", "K ENOSPC" or "K SHORT": error injection
 *                    (issue 20, item 2): the recorded call that would be
 *                    number K fails instead, once (SHORT: a write writes
 *                    half of its bytes and says so; any other call fails
 *                    with EIO), and line K reads "K inject KIND CALL
 *                    PATH" (PATH as the trace writes it, "-" for none)
 *
 * Order: one mutex serialises every recorded call with its line, and the
 * lines are numbered from 1 in that order, so the trace is one total
 * order even with RocksDB's background threads.  The real call is made
 * under the mutex too: a line is written only for a call that succeeded,
 * and no other recorded call slips between the two.
 *
 * The trace format (one record a line, fields separated by one space;
 * PATH relative to the root, with %, space and control bytes as %XX;
 * INO the file's inode number, which a `create` rebinds to a new file;
 * HEX the bytes written, lowercase hex):
 *
 *   N create INO PATH MODE     open/openat/creat made a new regular file
 *   N trunc INO SIZE           O_TRUNC at open, ftruncate, truncate
 *   N write INO OFFSET HEX     write, pwrite, writev, pwritev
 *   N fsync INO | N fdatasync INO      on a regular file
 *   N dirsync PATH             fsync or fdatasync of a directory (the
 *                              root itself: ".")
 *   N rename FROM TO | N link FROM TO
 *   N unlink PATH | N mkdir PATH MODE | N rmdir PATH
 *   N falloc INO MODE OFFSET LENGTH    fallocate, posix_fallocate
 *   N sfr INO OFFSET LENGTH FLAGS      sync_file_range (durable nothing)
 *   N msync INO OFFSET HEX     msync(MS_SYNC) of a shared writable
 *                              mapping: the bytes of the range then,
 *                              written and made durable
 *
 * Stores through a mapping are seen only when msync writes them; until
 * then the model keeps them out of every crash state (the strongest
 * loss).  A test-only tool: it never touches the data it records.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define FDS_MAX	     65536
#define MAPS_MAX     64
#define LINE_HEAD    (2 * PATH_MAX + 128)
#define IOV_COPY_MAX (64u << 20)

struct tracked {
	ino_t ino;
	unsigned char kind; /* 0 untracked, 1 regular file, 2 directory */
	char *path;	    /* relative to the root */
};

struct mapping {
	uintptr_t base;
	size_t len;
	ino_t ino;
	off_t offset;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tracked fds[FDS_MAX];
static struct mapping maps[MAPS_MAX];
static char root[PATH_MAX];
static size_t root_len;
static int trace_fd = -1;
static unsigned long long counter;
static unsigned long long fail_at; /* TPW_RECFS_FAIL's call number */
static int fail_errno;		   /* its error; SHORT_WRITE: a short write */
#define SHORT_WRITE (-1)

#define REAL(name) static __typeof__(name) *real_##name
REAL(open);
REAL(openat);
REAL(creat);
REAL(close);
REAL(write);
REAL(pwrite);
REAL(writev);
REAL(pwritev);
REAL(fsync);
REAL(fdatasync);
REAL(rename);
REAL(renameat);
REAL(link);
REAL(linkat);
REAL(unlink);
REAL(unlinkat);
REAL(ftruncate);
REAL(truncate);
REAL(fallocate);
REAL(posix_fallocate);
REAL(mkdir);
REAL(mkdirat);
REAL(rmdir);
REAL(sync_file_range);
REAL(mmap);
REAL(munmap);
REAL(msync);

__attribute__((constructor)) static void recfs_init(void)
{
#define LOAD(name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)
	LOAD(open);
	LOAD(openat);
	LOAD(creat);
	LOAD(close);
	LOAD(write);
	LOAD(pwrite);
	LOAD(writev);
	LOAD(pwritev);
	LOAD(fsync);
	LOAD(fdatasync);
	LOAD(rename);
	LOAD(renameat);
	LOAD(link);
	LOAD(linkat);
	LOAD(unlink);
	LOAD(unlinkat);
	LOAD(ftruncate);
	LOAD(truncate);
	LOAD(fallocate);
	LOAD(posix_fallocate);
	LOAD(mkdir);
	LOAD(mkdirat);
	LOAD(rmdir);
	LOAD(sync_file_range);
	LOAD(mmap);
	LOAD(munmap);
	LOAD(msync);
#undef LOAD
	const char *r = getenv("TPW_RECFS_ROOT");
	const char *t = getenv("TPW_RECFS_TRACE");
	if (!r || !t || !realpath(r, root))
		return;
	root_len = strlen(root);
	const char *f = getenv("TPW_RECFS_FAIL");
	char *kind = NULL;
	if (f) {
		fail_at = strtoull(f, &kind, 10);
		kind += strspn(kind, " ");
		fail_errno = !strcmp(kind, "ENOSPC")  ? ENOSPC
			     : !strcmp(kind, "SHORT") ? SHORT_WRITE
						      : EIO;
	}
	trace_fd =
		real_open(t, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* An absolute, normalised form of dirfd + path (the last component need
 * not exist); 0, or -1 when it cannot be made. */
static int resolve(int dirfd, const char *path, char *out, size_t cap)
{
	char joined[2 * PATH_MAX], parent[PATH_MAX];

	if (path[0] == '/') {
		if (strlen(path) >= sizeof(joined))
			return -1;
		memcpy(joined, path, strlen(path) + 1);
	} else {
		char base[PATH_MAX];
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof(base)))
				return -1;
		} else {
			char link[64];
			snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
			ssize_t n = readlink(link, base, sizeof(base) - 1);
			if (n < 0)
				return -1;
			base[n] = '\0';
		}
		snprintf(joined, sizeof(joined), "%s/%s", base, path);
	}
	char *slash = strrchr(joined, '/');
	const char *leaf = slash + 1;
	*slash = '\0';
	if (!realpath(joined[0] ? joined : "/", parent))
		return -1;
	int n = snprintf(out, cap, "%s/%s", parent, leaf);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The path below the root, or NULL when abs is not under it. */
static const char *below_root(const char *abs)
{
	if (trace_fd < 0 || strncmp(abs, root, root_len) != 0 ||
	    abs[root_len] != '/' || !abs[root_len + 1])
		return NULL;
	return abs + root_len + 1;
}

/* PATH as the trace writes it: %, space and control bytes as %XX. */
static void put_path(char *out, size_t cap, const char *p)
{
	size_t o = 0;
	for (; *p && o + 4 < cap; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == '%' || c >= 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

/* One line: "N " + head + (" " + hex of data, when data) + "\n", with
 * one write(2).  Called with the lock held. */
static void emit(const void *data, size_t len, const char *fmt, ...)
{
	char head[LINE_HEAD];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	size_t hl = strlen(head);
	size_t cap = hl + 32 + (data ? 2 * len + 1 : 0);
	char *line = malloc(cap);
	if (!line)
		abort(); /* a trace with a hole would mislead the explorer */
	size_t o = (size_t)snprintf(line, cap, "%llu %s", ++counter, head);
	if (data) {
		static const char digits[] = "0123456789abcdef";
		const unsigned char *b = data;
		line[o++] = ' ';
		for (size_t i = 0; i < len; i++) {
			line[o++] = digits[b[i] >> 4];
			line[o++] = digits[b[i] & 15];
		}
	}
	line[o++] = '\n';
	size_t done = 0;
	while (done < o) {
		ssize_t w = real_write(trace_fd, line + done, o - done);
		if (w <= 0)
			abort();
		done += (size_t)w;
	}
	free(line);
}

/* Error injection: the recorded call that would be number fail_at
 * fails instead, once, recorded as "N inject KIND" (that number).
 * Returns the error to fail with (SHORT_WRITE: a write writes half,
 * other calls fail with EIO), or 0.  Called with the lock held. */
static int inject(const char *call, const char *path)
{
	char p[PATH_MAX];
	if (!fail_at || counter + 1 != fail_at)
		return 0;
	put_path(p, sizeof(p), path ? path : "-");
	emit(NULL, 0, "inject %s %s %s",
	     fail_errno == ENOSPC	 ? "ENOSPC"
	     : fail_errno == SHORT_WRITE ? "SHORT"
					 : "EIO",
	     call, p);
	return fail_errno;
}

/* inject() for a call that is not a write: the error to fail with. */
static int inject_errno(const char *call, const char *path)
{
	int e = inject(call, path);
	return e == SHORT_WRITE ? EIO : e;
}

static struct tracked *tracked(int fd)
{
	if (fd < 0 || fd >= FDS_MAX || !fds[fd].kind)
		return NULL;
	return &fds[fd];
}

/* After a successful open of a path that is under the root: remember
 * the descriptor, and record a new file or a truncation. */
static void opened(int fd, int flags, mode_t mode, bool existed)
{
	char link[64], abs[PATH_MAX], rel[PATH_MAX];
	struct stat st;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, abs, sizeof(abs) - 1);
	if (n < 0 || fd >= FDS_MAX || fstat(fd, &st) != 0)
		return;
	abs[n] = '\0';
	/* The root itself is "." (its fsync makes its entries durable). */
	const char *r = strcmp(abs, root) == 0 ? "." : below_root(abs);
	if (!r || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return;
	put_path(rel, sizeof(rel), r);
	free(fds[fd].path);
	fds[fd] = (struct tracked){.ino = st.st_ino,
				   .kind = S_ISDIR(st.st_mode) ? 2 : 1,
				   .path = strdup(rel)};
	if (!S_ISREG(st.st_mode))
		return;
	if (!existed)
		emit(NULL, 0, "create %lu %s %o", (unsigned long)st.st_ino, rel,
		     (unsigned)(mode & 07777));
	else if (flags & O_TRUNC)
		emit(NULL, 0, "trunc %lu 0", (unsigned long)st.st_ino);
}

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
	char abs[PATH_MAX];
	struct stat st;
	bool watch = trace_fd >= 0 &&
		     resolve(dirfd, path, abs, sizeof(abs)) == 0 &&
		     (below_root(abs) || strcmp(abs, root) == 0);

	if (!watch)
		return real_openat(dirfd, path, flags, mode);
	pthread_mutex_lock(&lock);
	bool existed = lstat(abs, &st) == 0;
	int e = (flags & O_CREAT && !existed) || (flags & O_TRUNC && existed)
			? inject_errno("create", below_root(abs))
			: 0;
	int fd = e ? -1 : real_openat(dirfd, path, flags, mode);
	int saved = e ? e : errno;
	if (fd >= 0)
		opened(fd, flags, mode, existed);
	pthread_mutex_unlock(&lock);
	errno = saved;
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* open, open64, openat and openat64: the mode only with O_CREAT or
 * O_TMPFILE, as the C library reads it. */
#define OPEN_WRAPPER(name, params, dirfd)                                      \
	int name params                                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, flags);                                           \
		mode_t mode = mode_arg(flags, ap);                             \
		va_end(ap);                                                    \
		return do_open(dirfd, path, flags, mode);                      \
	}
OPEN_WRAPPER(open, (const char *path, int flags, ...), AT_FDCWD)
OPEN_WRAPPER(open64, (const char *path, int flags, ...), AT_FDCWD)
OPEN_WRAPPER(openat, (int dirfd, const char *path, int flags, ...), dirfd)
OPEN_WRAPPER(openat64, (int dirfd, const char *path, int flags, ...), dirfd)

/* _FORTIFY_SOURCE's checked forms (never with O_CREAT). */
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags, 0);
}
int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags, 0);
}
int __openat_2(int dirfd, const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags)
{
	return do_open(dirfd, path, flags, 0);
}

int creat(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int close(int fd)
{
	if (fd >= 0 && fd < FDS_MAX && fds[fd].kind) {
		pthread_mutex_lock(&lock);
		free(fds[fd].path);
		fds[fd] = (struct tracked){0};
		pthread_mutex_unlock(&lock);
	}
	return real_close(fd);
}

/* The bytes of iov, up to len (what a vectored write wrote). */
static void *gather(const struct iovec *iov, int iovcnt, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	size_t o = 0;
	if (!buf)
		abort();
	for (int i = 0; i < iovcnt && o < len; i++) {
		size_t n = iov[i].iov_len < len - o ? iov[i].iov_len : len - o;
		memcpy(buf + o, iov[i].iov_base, n);
		o += n;
	}
	return buf;
}

/* write, pwrite, writev and pwritev in one: off < 0 writes at the
 * descriptor's offset, iov NULL writes buf. */
static ssize_t do_write(int fd, const void *buf, size_t n,
			const struct iovec *iov, int iovcnt, off_t off)
{
	struct tracked *t = tracked(fd);
	bool traced = t && t->kind == 1;
	int e = 0;
	void *half = NULL;
	if (traced) {
		pthread_mutex_lock(&lock);
		e = inject("write", t->path);
	}
	if (e == SHORT_WRITE) {
		/* Half of what was asked (at least a byte short). */
		size_t total = 0;
		for (int i = 0; iov && i < iovcnt; i++)
			total += iov[i].iov_len;
		n = iov ? total : n;
		if (iov && n <= IOV_COPY_MAX)
			buf = half = gather(iov, iovcnt, n);
		iov = NULL;
		n /= 2;
		e = 0;
	}
	ssize_t w = e	  ? -1
		    : iov ? (off < 0 ? real_writev(fd, iov, iovcnt)
				     : real_pwritev(fd, iov, iovcnt, off))
			  : (off < 0 ? real_write(fd, buf, n)
				     : real_pwrite(fd, buf, n, off));
	if (!traced)
		return w;
	int saved = e ? e : errno;
	if (w > 0 && (size_t)w <= IOV_COPY_MAX) {
		void *b = iov ? gather(iov, iovcnt, (size_t)w) : NULL;
		off_t at = off >= 0 ? off : lseek(fd, 0, SEEK_CUR) - w;
		emit(b ? b : buf, (size_t)w, "write %lu %lld",
		     (unsigned long)t->ino, (long long)at);
		free(b);
	}
	free(half);
	pthread_mutex_unlock(&lock);
	errno = saved;
	return w;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return do_write(fd, buf, n, NULL, 0, -1);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return do_write(fd, buf, n, NULL, 0, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return do_write(fd, buf, n, NULL, 0, off);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	return do_write(fd, NULL, 0, iov, iovcnt, -1);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return do_write(fd, NULL, 0, iov, iovcnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return do_write(fd, NULL, 0, iov, iovcnt, off);
}

static int do_sync(int fd, bool data_only)
{
	struct tracked *t = tracked(fd);
	if (!t)
		return data_only ? real_fdatasync(fd) : real_fsync(fd);
	pthread_mutex_lock(&lock);
	int e = inject_errno(data_only ? "fdatasync" : "fsync", t->path);
	int ret = e ? -1 : data_only ? real_fdatasync(fd) : real_fsync(fd);
	int saved = e ? e : errno;
	if (ret == 0 && t->kind == 2)
		emit(NULL, 0, "dirsync %s", t->path);
	else if (ret == 0)
		emit(NULL, 0, "%s %lu", data_only ? "fdatasync" : "fsync",
		     (unsigned long)t->ino);
	pthread_mutex_unlock(&lock);
	errno = saved;
	return ret;
}

int fsync(int fd)
{
	return do_sync(fd, false);
}

int fdatasync(int fd)
{
	return do_sync(fd, true);
}

/* A call on one or two paths: the real call made under the lock, and
 * "op REL [REL2] [extra]" recorded when it succeeded and either path is
 * under the root. */
enum path_op { P_RENAME, P_LINK, P_UNLINK, P_MKDIR, P_RMDIR };

static int path_call(enum path_op op, int dfd1, const char *p1, int dfd2,
		     const char *p2, int flags, mode_t mode)
{
	static const char *const names[] = {"rename", "link", "unlink", "mkdir",
					    "rmdir"};
	char a1[PATH_MAX], a2[PATH_MAX], r1[PATH_MAX], r2[PATH_MAX];
	const char *b1 = NULL, *b2 = NULL;

	if (trace_fd >= 0 && resolve(dfd1, p1, a1, sizeof(a1)) == 0)
		b1 = below_root(a1);
	if (p2 && trace_fd >= 0 && resolve(dfd2, p2, a2, sizeof(a2)) == 0)
		b2 = below_root(a2);
	bool watch = b1 || b2;
	int ret;

	int e = 0;
	if (watch) {
		pthread_mutex_lock(&lock);
		e = inject_errno(names[op], b1 ? b1 : b2);
	}
	switch (e ? -1 : (int)op) {
	case -1: ret = -1; break;
	case P_RENAME: ret = real_renameat(dfd1, p1, dfd2, p2); break;
	case P_LINK: ret = real_linkat(dfd1, p1, dfd2, p2, flags); break;
	case P_UNLINK: ret = real_unlinkat(dfd1, p1, flags); break;
	case P_MKDIR: ret = real_mkdirat(dfd1, p1, mode); break;
	default: ret = real_unlinkat(dfd1, p1, AT_REMOVEDIR); break;
	}
	if (!watch)
		return ret;
	int saved = e ? e : errno;
	if (ret == 0) {
		/* A path outside the root is "-": the explorer sees a file
		 * arrive from, or leave to, the outside. */
		put_path(r1, sizeof(r1), b1 ? b1 : "-");
		put_path(r2, sizeof(r2), b2 ? b2 : "-");
		if (op == P_RENAME || op == P_LINK)
			emit(NULL, 0, "%s %s %s", names[op], r1, r2);
		else if (op == P_MKDIR)
			emit(NULL, 0, "mkdir %s %o", r1,
			     (unsigned)(mode & 07777));
		else
			emit(NULL, 0, "%s %s", names[op], r1);
	}
	pthread_mutex_unlock(&lock);
	errno = saved;
	return ret;
}

int rename(const char *from, const char *to)
{
	return path_call(P_RENAME, AT_FDCWD, from, AT_FDCWD, to, 0, 0);
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
	return path_call(P_RENAME, fd1, from, fd2, to, 0, 0);
}

int link(const char *from, const char *to)
{
	return path_call(P_LINK, AT_FDCWD, from, AT_FDCWD, to, 0, 0);
}

int linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	return path_call(P_LINK, fd1, from, fd2, to, flags, 0);
}

int unlink(const char *path)
{
	return path_call(P_UNLINK, AT_FDCWD, path, AT_FDCWD, NULL, 0, 0);
}

int unlinkat(int fd, const char *path, int flags)
{
	return path_call((flags & AT_REMOVEDIR) ? P_RMDIR : P_UNLINK, fd, path,
			 AT_FDCWD, NULL, flags & ~AT_REMOVEDIR, 0);
}

int mkdir(const char *path, mode_t mode)
{
	return path_call(P_MKDIR, AT_FDCWD, path, AT_FDCWD, NULL, 0, mode);
}

int mkdirat(int fd, const char *path, mode_t mode)
{
	return path_call(P_MKDIR, fd, path, AT_FDCWD, NULL, 0, mode);
}

int rmdir(const char *path)
{
	return path_call(P_RMDIR, AT_FDCWD, path, AT_FDCWD, NULL, 0, 0);
}

int ftruncate(int fd, off_t len)
{
	struct tracked *t = tracked(fd);
	if (!t || t->kind != 1)
		return real_ftruncate(fd, len);
	pthread_mutex_lock(&lock);
	int e = inject_errno("ftruncate", t->path);
	int ret = e ? -1 : real_ftruncate(fd, len);
	int saved = e ? e : errno;
	if (ret == 0)
		emit(NULL, 0, "trunc %lu %lld", (unsigned long)t->ino,
		     (long long)len);
	pthread_mutex_unlock(&lock);
	errno = saved;
	return ret;
}

int ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

int truncate(const char *path, off_t len)
{
	int fd = do_open(AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return real_truncate(path, len);
	int ret = ftruncate(fd, len);
	int saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

static int do_fallocate(int fd, int mode, off_t off, off_t len, bool posix)
{
	struct tracked *t = tracked(fd);
	if (!t || t->kind != 1)
		return posix ? real_posix_fallocate(fd, off, len)
			     : real_fallocate(fd, mode, off, len);
	pthread_mutex_lock(&lock);
	int e = inject_errno("fallocate", t->path);
	/* posix_fallocate returns the error instead of setting errno. */
	int ret = e	  ? (posix ? e : -1)
		  : posix ? real_posix_fallocate(fd, off, len)
			  : real_fallocate(fd, mode, off, len);
	int saved = e ? e : errno;
	if (ret == 0)
		emit(NULL, 0, "falloc %lu %d %lld %lld", (unsigned long)t->ino,
		     mode, (long long)off, (long long)len);
	pthread_mutex_unlock(&lock);
	errno = saved;
	return ret;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	return do_fallocate(fd, mode, off, len, false);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
	return do_fallocate(fd, mode, off, len, false);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	return do_fallocate(fd, 0, off, len, true);
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
	return do_fallocate(fd, 0, off, len, true);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	struct tracked *t = tracked(fd);
	if (!t || t->kind != 1)
		return real_sync_file_range(fd, off, n, flags);
	pthread_mutex_lock(&lock);
	int e = inject_errno("sync_file_range", t->path);
	int ret = e ? -1 : real_sync_file_range(fd, off, n, flags);
	int saved = e ? e : errno;
	if (ret == 0)
		emit(NULL, 0, "sfr %lu %lld %lld %u", (unsigned long)t->ino,
		     (long long)off, (long long)n, flags);
	pthread_mutex_unlock(&lock);
	errno = saved;
	return ret;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *m = real_mmap(addr, len, prot, flags, fd, off);
	struct tracked *t = tracked(fd);
	if (m == MAP_FAILED || !t || t->kind != 1 || !(prot & PROT_WRITE) ||
	    !(flags & MAP_SHARED))
		return m;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAPS_MAX; i++)
		if (!maps[i].len) {
			maps[i] = (struct mapping){.base = (uintptr_t)m,
						   .len = len,
						   .ino = t->ino,
						   .offset = off};
			break;
		}
	pthread_mutex_unlock(&lock);
	return m;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAPS_MAX; i++)
		if (maps[i].len && maps[i].base == (uintptr_t)addr)
			maps[i] = (struct mapping){0};
	pthread_mutex_unlock(&lock);
	return real_munmap(addr, len);
}

int msync(void *addr, size_t len, int flags)
{
	uintptr_t a = (uintptr_t)addr;
	pthread_mutex_lock(&lock);
	int e = (flags & MS_SYNC) ? inject_errno("msync", NULL) : 0;
	int ret = e ? -1 : real_msync(addr, len, flags);
	int saved = e ? e : errno;
	for (int i = 0; ret == 0 && (flags & MS_SYNC) && i < MAPS_MAX; i++) {
		const struct mapping *m = &maps[i];
		if (!m->len || a < m->base || a + len > m->base + m->len)
			continue;
		emit(addr, len, "msync %lu %lld", (unsigned long)m->ino,
		     (long long)(m->offset + (off_t)(a - m->base)));
		break;
	}
	pthread_mutex_unlock(&lock);
	errno = saved;
	return ret;
}
