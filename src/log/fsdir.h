/*
 * fsdir.h - making directory entries durable.
 *
 * A file created, renamed or removed survives a crash only once its
 * directory is fsynced; a directory created, once its parent is.  One
 * place for that, used by the journal, snapshots, the audit log's files
 * the keyring's files (log/keyfile.c) and the commands that write files
 * of their own.
 */
#ifndef TPW_LOG_FSDIR_H
#define TPW_LOG_FSDIR_H

/* fsync the directory at path.  Returns 0 or -errno. */
int fsdir_sync(const char *path);

/* mkdir(path, 0700); when it created the directory, fsync its parent.
 * An existing directory is fine.  Returns 0 or -errno. */
int fsdir_make(const char *path);

/* Remove the directory at path and everything below it, as `rm -rf`
 * would, without a shell: symbolic links are removed, never followed, and
 * the walk stays on path's filesystem.  For directories a caller made
 * itself (mkdtemp): the bench's scratch directory, the tests'.  Returns 0
 * or the first -errno met (it goes on removing what it can). */
int fsdir_remove_tree(const char *path);

#endif
