/*
 * test_core_policy_revert.c - undoing one version's change of the client
 * policy document (core/policy_revert.h): a clean revert keeps the later
 * changes, a key N added is removed again, a later change of what N
 * changed is a conflict naming its path (a list is one value), the first
 * version reverts against the empty document, reverting the newest
 * version gives the one before, and texts that are not JSON objects are
 * refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/policy_revert.h"
#include "banned.h"

#define V1                                                                     \
	"{\"platforms\":{\"android\":{\"min_supported\":\"4.0.0\","            \
	"\"blocked\":[\"3.x\"]}}}"
/* v2: android's minimum raised */
#define V2                                                                     \
	"{\"platforms\":{\"android\":{\"min_supported\":\"4.1.0\","            \
	"\"blocked\":[\"3.x\"]}}}"
/* v3: v2 and ios added */
#define V3                                                                     \
	"{\"platforms\":{\"android\":{\"min_supported\":\"4.1.0\","            \
	"\"blocked\":[\"3.x\"]},\"ios\":{\"min_supported\":\"2.0.0\"}}}"

static struct policy_revert revert(const char *base, const char *theirs,
				   const char *ours)
{
	struct policy_revert rv;
	memset(&rv, 0xA5, sizeof(rv));
	assert_int_equal(policy_revert(base, base ? strlen(base) : 0, theirs,
				       strlen(theirs), ours, strlen(ours), &rv),
			 0);
	return rv;
}

/* rv is clean and its text means want. */
static void assert_result(struct policy_revert *rv, const char *want)
{
	assert_int_equal(rv->nconflicts, 0);
	assert_non_null(rv->text);
	assert_int_equal(rv->len, strlen(rv->text));
	json_t *got = json_loads(rv->text, 0, NULL);
	json_t *w = json_loads(want, 0, NULL);
	assert_non_null(got);
	assert_non_null(w);
	if (!json_equal(got, w))
		fail_msg("got %s, want %s", rv->text, want);
	json_decref(got);
	json_decref(w);
	free(rv->text);
}

static void clean_revert_undoes_n_and_keeps_later_changes(void **state)
{
	(void)state;
	struct policy_revert rv = revert(V1, V2, V3);
	assert_result(&rv, "{\"platforms\":{\"android\":{\"min_supported\":"
			   "\"4.0.0\",\"blocked\":[\"3.x\"]},\"ios\":{"
			   "\"min_supported\":\"2.0.0\"}}}");
	/* The text is compact with sorted keys. */
	rv = revert(V1, V2, V3);
	assert_string_equal(
		rv.text, "{\"platforms\":{\"android\":{\"blocked\":[\"3.x\"],"
			 "\"min_supported\":\"4.0.0\"},\"ios\":{"
			 "\"min_supported\":\"2.0.0\"}}}");
	free(rv.text);
}

static void a_key_n_added_is_removed_and_one_it_removed_comes_back(void **state)
{
	(void)state;
	/* v2 adds recommended and removes blocked; v3 adds ios. */
	const char *v2 = "{\"platforms\":{\"android\":{\"min_supported\":"
			 "\"4.0.0\",\"recommended\":\"4.2.0\"}}}";
	const char *v3 = "{\"platforms\":{\"android\":{\"min_supported\":"
			 "\"4.0.0\",\"recommended\":\"4.2.0\"},\"ios\":{}}}";
	struct policy_revert rv = revert(V1, v2, v3);
	assert_result(&rv, "{\"platforms\":{\"android\":{\"min_supported\":"
			   "\"4.0.0\",\"blocked\":[\"3.x\"]},\"ios\":{}}}");
}

static void a_later_change_of_the_same_key_is_a_conflict(void **state)
{
	(void)state;
	/* v3 raised the minimum again and changed the list v2 changed. */
	const char *v2 = "{\"platforms\":{\"android\":{\"min_supported\":"
			 "\"4.1.0\",\"blocked\":[\"3.x\",\"4.0.1\"]}}}";
	const char *v3 = "{\"platforms\":{\"android\":{\"min_supported\":"
			 "\"4.2.0\",\"blocked\":[\"3.x\",\"4.0.1\","
			 "\"4.1.2\"]},\"ios\":{}}}";
	struct policy_revert rv = revert(V1, v2, v3);
	assert_int_equal(rv.nconflicts, 2);
	assert_null(rv.text);
	assert_string_equal(rv.conflicts[0], "platforms.android.blocked");
	assert_string_equal(rv.conflicts[1], "platforms.android.min_supported");
	/* A key N changed that was removed since is a conflict too. */
	const char *v3b = "{\"platforms\":{\"android\":{\"blocked\":[\"3.x\","
			  "\"4.0.1\"]}}}";
	rv = revert(V1, v2, v3b);
	assert_int_equal(rv.nconflicts, 1);
	assert_string_equal(rv.conflicts[0], "platforms.android.min_supported");
}

static void the_first_version_reverts_against_the_empty_document(void **state)
{
	(void)state;
	/* What v1 set goes; what came after it stays. */
	struct policy_revert rv = revert(NULL, V1, V3 /* v1 + 2 changes */);
	assert_int_equal(rv.nconflicts, 1);
	assert_string_equal(rv.conflicts[0], "platforms.android.min_supported");
	const char *v2 = "{\"platforms\":{\"android\":{\"min_supported\":"
			 "\"4.0.0\",\"blocked\":[\"3.x\"]},\"ios\":{"
			 "\"min_supported\":\"2.0.0\"}},"
			 "\"unknown_platform\":\"block\"}";
	rv = revert(NULL, V1, v2);
	assert_result(&rv, "{\"platforms\":{\"ios\":{\"min_supported\":"
			   "\"2.0.0\"}},\"unknown_platform\":\"block\"}");
	/* Nothing after it: the empty document. */
	rv = revert(NULL, V1, V1);
	assert_result(&rv, "{}");
}

static void reverting_the_newest_version_gives_the_one_before(void **state)
{
	(void)state;
	struct policy_revert rv = revert(V2, V3, V3);
	assert_result(&rv, V2);
	/* A version that changed nothing reverts to the current one. */
	rv = revert(V2, V2, V3);
	assert_result(&rv, V3);
}

static void texts_that_are_not_json_objects_are_refused(void **state)
{
	(void)state;
	struct policy_revert rv;
	const char *bad[] = {"[]", "{", "\"x\"", "{\"a\":1,\"a\":2}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(policy_revert(bad[i], strlen(bad[i]), V1,
					       strlen(V1), V2, strlen(V2), &rv),
				 -EINVAL);
		assert_null(rv.text);
		assert_int_equal(policy_revert(V1, strlen(V1), V2, strlen(V2),
					       bad[i], strlen(bad[i]), &rv),
				 -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clean_revert_undoes_n_and_keeps_later_changes),
		cmocka_unit_test(
			a_key_n_added_is_removed_and_one_it_removed_comes_back),
		cmocka_unit_test(a_later_change_of_the_same_key_is_a_conflict),
		cmocka_unit_test(
			the_first_version_reverts_against_the_empty_document),
		cmocka_unit_test(
			reverting_the_newest_version_gives_the_one_before),
		cmocka_unit_test(texts_that_are_not_json_objects_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
