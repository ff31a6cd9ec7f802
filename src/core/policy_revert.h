/*
 * policy_revert.h - undo one version's change of the client-policy
 * document on top of the current one (issue 11, item 5: `tpwallet policy
 * revert N`).  Pure: three JSON texts in, one out.
 *
 * A three-way merge over the documents' JSON: base = version N-1's
 * document (none for version 1: the empty object), theirs = version N's,
 * ours = the current one.  The inverse of N's change (theirs -> base) is
 * applied to ours, key by key from the root:
 *   - ours equals base: kept;
 *   - ours still holds N's value: base's value (absent when base has
 *     none: the key is removed);
 *   - N did not change it (base equals theirs): ours is kept;
 *   - ours is an object, and N's and N-1's are objects or absent: merged
 *     member by member;
 *   - otherwise ours changed what N changed since: a conflict at that
 *     path.
 * Arrays and other values are compared whole (an array is one value), so
 * a later change anywhere in a list N changed is a conflict on the list.
 * Paths are dotted member names from the root, as policy_diff writes
 * them ("platforms.android.min_supported").
 *
 * The result is the merged text (keys sorted, compact); it is not
 * validated here (the caller parses it with policy_parse: a merge of
 * valid documents need not be one).
 */
#ifndef TPW_CORE_POLICY_REVERT_H
#define TPW_CORE_POLICY_REVERT_H

#include "core/policy.h"
#include "core/types.h"

#include <stddef.h>

#define POLICY_REVERT_CONFLICTS_MAX 16 /* paths kept */

struct policy_revert {
	char *text; /* malloc'd, NUL-terminated, when nconflicts == 0 */
	size_t len;
	u32 nconflicts; /* all found; the first ones' paths below */
	char conflicts[POLICY_REVERT_CONFLICTS_MAX][POLICY_PATH_MAX + 1];
};

/* base may be NULL (reverting version 1).  Returns 0 (out->text set, or
 * out->nconflicts > 0 and out->text NULL), -EINVAL (a text is not a JSON
 * object), -ENOMEM.  The caller free()s out->text. */
int policy_revert(const char *base, size_t base_len, const char *theirs,
		  size_t theirs_len, const char *ours, size_t ours_len,
		  struct policy_revert *out);

#endif
