/*
 * seqdir.h - the files of a directory that are named by a sequence number
 * (journal segments, snapshots), as a sorted array of those numbers.
 */
#ifndef TPW_LOG_SEQDIR_H
#define TPW_LOG_SEQDIR_H

#include "core/types.h"

#include <dirent.h>

/* parse: true when name is one of ours, with its number in *seq. */
typedef bool (*seqdir_parse_fn)(const char *name, u64 *seq);

/*
 * Read every entry of d (from where it stands; the caller rewinds) and
 * return the numbers of those parse accepts, ascending, in a malloc'd
 * array the caller frees (NULL when there are none).  d stays open.
 * Returns 0, -ENOMEM, or -errno from readdir.
 */
int seqdir_list(DIR *d, seqdir_parse_fn parse, u64 **out, size_t *n_out);

#endif
