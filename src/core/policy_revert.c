/*
 * policy_revert.c - the three-way merge that undoes one version's change
 * of the client-policy document.  See policy_revert.h.
 */
#include "core/policy_revert.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct merge {
	struct policy_revert *out;
	bool nomem;
};

static bool same(json_t *a, json_t *b)
{
	if (!a || !b)
		return a == b;
	return json_equal(a, b) != 0;
}

static json_t *ref(json_t *v)
{
	return v ? json_incref(v) : NULL;
}

static void conflict(struct merge *m, const char *path)
{
	struct policy_revert *o = m->out;
	if (o->nconflicts < POLICY_REVERT_CONFLICTS_MAX)
		snprintf(o->conflicts[o->nconflicts], sizeof(o->conflicts[0]),
			 "%s", path[0] ? path : "$");
	o->nconflicts++;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *merge(struct merge *m, json_t *theirs, json_t *ours,
		     json_t *base, const char *path);

/* Member by member: the keys of all three, in sorted order. */
static json_t *merge_objects(struct merge *m, json_t *theirs, json_t *ours,
			     json_t *base, const char *path)
{
	json_t *objs[3] = {theirs, ours, base};
	size_t cap = json_object_size(ours) +
		     (base ? json_object_size(base) : 0) +
		     (theirs ? json_object_size(theirs) : 0);
	const char **keys = malloc((cap ? cap : 1) * sizeof(*keys));
	json_t *res = json_object();
	size_t n = 0;
	if (!keys || !res) {
		m->nomem = true;
		free(keys);
		json_decref(res);
		return NULL;
	}
	for (int i = 0; i < 3; i++) {
		const char *k;
		json_t *v;
		if (!objs[i])
			continue;
		json_object_foreach(objs[i], k, v)
		{
			(void)v;
			keys[n++] = k;
		}
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (size_t i = 0; i < n && !m->nomem; i++) {
		if (i && strcmp(keys[i], keys[i - 1]) == 0)
			continue;
		char sub[POLICY_PATH_MAX + 1];
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "",
			 keys[i]);
		json_t *v = merge(
			m, theirs ? json_object_get(theirs, keys[i]) : NULL,
			json_object_get(ours, keys[i]),
			base ? json_object_get(base, keys[i]) : NULL, sub);
		if (v && json_object_set_new(res, keys[i], v) != 0)
			m->nomem = true;
	}
	free(keys);
	return res;
}

/* The value at path after the revert (a new reference), or NULL when
 * absent (or on a conflict, which is recorded). */
static json_t *merge(struct merge *m, json_t *theirs, json_t *ours,
		     json_t *base, const char *path)
{
	if (same(ours, base))
		return ref(ours);
	if (same(theirs, ours))
		return ref(base);
	if (same(theirs, base))
		return ref(ours);
	if (json_is_object(ours) && (!base || json_is_object(base)) &&
	    (!theirs || json_is_object(theirs)))
		return merge_objects(m, theirs, ours, base, path);
	conflict(m, path);
	return NULL;
}

static json_t *load(const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int policy_revert(const char *base, size_t base_len, const char *theirs,
		  size_t theirs_len, const char *ours, size_t ours_len,
		  struct policy_revert *out)
{
	memset(out, 0, sizeof(*out));
	json_t *b = base ? load(base, base_len) : json_object();
	json_t *t = load(theirs, theirs_len);
	json_t *o = load(ours, ours_len);
	int rc = -EINVAL;
	if (b && t && o) {
		struct merge m = {out, false};
		json_t *res = merge(&m, t, o, b, "");
		rc = 0;
		if (m.nomem) {
			rc = -ENOMEM;
		} else if (out->nconflicts == 0) {
			/* The root is an object in all three: never absent. */
			out->text =
				res ? json_dumps(res,
						 JSON_COMPACT | JSON_SORT_KEYS)
				    : NULL;
			if (!out->text)
				rc = -ENOMEM;
			else
				out->len = strlen(out->text);
		}
		json_decref(res);
	}
	json_decref(b);
	json_decref(t);
	json_decref(o);
	return rc;
}
