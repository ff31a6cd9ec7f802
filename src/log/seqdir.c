/*
 * seqdir.c - list the sequence-numbered files of a directory (seqdir.h).
 */
#include "log/seqdir.h"

#include <errno.h>
#include <stdlib.h>

#include "banned.h"

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return (x > y) - (x < y);
}

int seqdir_list(DIR *d, seqdir_parse_fn parse, u64 **out, size_t *n_out)
{
	u64 *seqs = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int ret = 0;

	*out = NULL;
	*n_out = 0;
	while ((errno = 0, e = readdir(d)) != NULL) {
		u64 seq;
		if (!parse(e->d_name, &seq))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			u64 *p = realloc(seqs, ncap * sizeof(*p));
			if (!p) {
				ret = -ENOMEM;
				goto cleanup;
			}
			seqs = p;
			cap = ncap;
		}
		seqs[n++] = seq;
	}
	if (errno != 0) {
		ret = -errno;
		goto cleanup;
	}
	if (n > 1)
		qsort(seqs, n, sizeof(*seqs), cmp_u64);
	*out = seqs;
	*n_out = n;
	seqs = NULL;
cleanup:
	free(seqs);
	return ret;
}
