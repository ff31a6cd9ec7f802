/*
 * fsfile.h - whole small files: a bounded read, and the one atomic
 * replace of the project.
 *
 * Every file the server or a command reads whole (keys, tokens, receipts,
 * policy documents, request bodies, state files) has a maximum size, and
 * a larger file is refused, never cut.  Every file replaced in place
 * (the log's origin, a witness's state, the client activity, key files)
 * is written the one way that survives a crash whole or not at all:
 * a temporary beside it, fsync, rename over it, fsync the directory.
 */
#ifndef TPW_LOG_FSFILE_H
#define TPW_LOG_FSFILE_H

#include <stddef.h>

/* The whole of fd (read to its end), at most max bytes, with a NUL after;
 * *out is malloc'd (the caller frees it).  Returns 0, -EFBIG (more than
 * max bytes), -ENOMEM or -errno. */
int fsfile_read_fd(int fd, size_t max, char **out, size_t *len);

/* The same for the file at path. */
int fsfile_read(const char *path, size_t max, char **out, size_t *len);

/* The words for one of those codes: "file too large" or strerror's. */
const char *fsfile_strerror(int code);

/* Replace dir/name with data[0..len), mode 0600: write dir/name.tmp
 * (a leftover from a crash is removed first; never through a symbolic
 * link), fsync it, rename it over dir/name, fsync dir.  A crash leaves
 * the old file or the new one, never a mix or an empty file; on failure
 * the temporary is removed.  Returns 0 or -errno. */
int fsfile_replace(const char *dir, const char *name, const void *data,
		   size_t len);

#endif
