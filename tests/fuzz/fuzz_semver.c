/*
 * fuzz_semver.c - libFuzzer harness for src/core/semver.h.
 *
 * The input is split at newlines into up to three strings A, B, C.  Each
 * is parsed as a version in both modes and A as a range; then:
 *   - nothing crashes, and every error names a position inside the
 *     string with a message "at N: ...";
 *   - a strict version formats back to exactly its text, and strict
 *     success implies the same answer in lenient mode;
 *   - a lenient version formats to a strict version of equal precedence;
 *   - compare is reflexive, antisymmetric, transitive over A, B, C, and
 *     agrees with the parsed fields (numbers first, a release above its
 *     prereleases);
 *   - a compiled range respects its limits and its prerelease offsets
 *     stay inside its text; matching never crashes;
 *   - ranges built from a strict version V say what they must about V:
 *     "=V", ">=V", "<=V", "~V", "^V", "V - V" include it; "<V", ">V"
 *     do not.
 */
#include "core/semver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int sign(int c)
{
	return (c > 0) - (c < 0);
}

static void check_err(int r, const struct semver_err *err, size_t len,
		      size_t max)
{
	CHECK(r == -EINVAL || r == -ERANGE || r == -E2BIG);
	CHECK(err->pos <= (len > max ? max : len));
	CHECK(strncmp(err->msg, "at ", 3) == 0);
	CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
}

/* The precedence the fields imply, where they decide it alone. */
static void check_fields(const struct semver *a, const struct semver *b)
{
	int c = sign(semver_compare(a, b));

	if (a->major != b->major)
		CHECK(c == (a->major > b->major ? 1 : -1));
	else if (a->minor != b->minor)
		CHECK(c == (a->minor > b->minor ? 1 : -1));
	else if (a->patch != b->patch)
		CHECK(c == (a->patch > b->patch ? 1 : -1));
	else if (!a->pre_len != !b->pre_len)
		CHECK(c == (a->pre_len ? -1 : 1));
	else if (a->pre_len == b->pre_len &&
		 (a->pre_len == 0 || memcmp(a->pre, b->pre, a->pre_len) == 0))
		CHECK(c == 0);
	CHECK(c == -sign(semver_compare(b, a)));
}

static void check_range_invariants(const struct semver_range *r)
{
	CHECK(r->nsets >= 1 && r->nsets <= SEMVER_RANGE_SETS_MAX);
	for (u8 i = 0; i < r->nsets; i++) {
		const struct semver_comp_set *s = &r->set[i];
		CHECK(s->n <= SEMVER_RANGE_COMPS_MAX);
		for (u8 j = 0; j < s->n; j++) {
			const struct semver_comparator *k = &s->comp[j];
			CHECK(k->op <= SEMVER_OP_GE);
			CHECK((size_t)k->pre_off + k->pre_len <=
			      sizeof(r->text));
		}
	}
}

static bool range_says(const char *prefix, const char *text, const char *mid,
		       const struct semver *v)
{
	char buf[2 * SEMVER_FORMAT_BYTES + 8];
	struct semver_range r;
	int n = snprintf(buf, sizeof(buf), "%s%s%s%s", prefix, text, mid,
			 *mid ? text : "");
	int ret;

	CHECK(n > 0 && (size_t)n < sizeof(buf));
	ret = semver_range_compile(buf, (size_t)n, &r, NULL);
	if (ret == -E2BIG)
		return true; /* past the length limit: nothing to say */
	CHECK(ret == 0);
	return semver_range_match(&r, v);
}

static bool range_denies(const char *op, const char *text,
			 const struct semver *v)
{
	char buf[SEMVER_FORMAT_BYTES + 8];
	struct semver_range r;
	int n = snprintf(buf, sizeof(buf), "%s%s", op, text);

	CHECK(n > 0 && (size_t)n < sizeof(buf));
	if (semver_range_compile(buf, (size_t)n, &r, NULL) == -E2BIG)
		return true;
	return !semver_range_match(&r, v);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *s = (const char *)data;
	const char *part[3] = {s, s, s};
	size_t len[3] = {size, 0, 0};
	struct semver v[3], lv;
	bool ok[3];
	struct semver_range range;
	struct semver_err err;
	int np = 1;

	for (size_t i = 0; i < size && np < 3; i++) {
		if (s[i] == '\n') {
			len[np - 1] = (size_t)(s + i - part[np - 1]);
			part[np] = s + i + 1;
			len[np] = size - i - 1;
			np++;
		}
	}

	for (int i = 0; i < np; i++) {
		int r = semver_parse(part[i], len[i], SEMVER_STRICT, &v[i],
				     &err);
		int lr = semver_parse(part[i], len[i], SEMVER_LENIENT, &lv,
				      &err);
		char buf[SEMVER_FORMAT_BYTES];

		ok[i] = r == 0;
		if (r != 0) {
			check_err(r, &err, len[i], SEMVER_TEXT_MAX);
		} else {
			struct semver again;
			int n = semver_format(&v[i], buf, sizeof(buf));
			CHECK(n >= 0 && (size_t)n == len[i] &&
			      memcmp(buf, part[i], len[i]) == 0);
			CHECK(semver_parse(buf, (size_t)n, SEMVER_STRICT,
					   &again, NULL) == 0);
			CHECK(semver_compare(&again, &v[i]) == 0);
			CHECK(lr == 0 && semver_compare(&lv, &v[i]) == 0);
		}
		if (lr == 0) {
			struct semver again;
			int n = semver_format(&lv, buf, sizeof(buf));
			CHECK(n >= 0);
			CHECK(semver_parse(buf, (size_t)n, SEMVER_STRICT,
					   &again, NULL) == 0);
			CHECK(semver_compare(&again, &lv) == 0);
		} else {
			check_err(lr, &err, len[i], SEMVER_TEXT_MAX);
		}
		if (ok[i]) {
			CHECK(semver_compare(&v[i], &v[i]) == 0);
			CHECK(range_says("=", buf, "", &v[i]));
			CHECK(range_says(">=", buf, "", &v[i]));
			CHECK(range_says("<=", buf, "", &v[i]));
			CHECK(range_says("~", buf, "", &v[i]));
			CHECK(range_says("^", buf, "", &v[i]));
			CHECK(range_says("", buf, " - ", &v[i]));
			CHECK(range_denies("<", buf, &v[i]));
			CHECK(range_denies(">", buf, &v[i]));
		}
	}
	for (int i = 0; i < np; i++)
		for (int j = 0; j < np; j++)
			if (ok[i] && ok[j])
				check_fields(&v[i], &v[j]);
	if (np == 3 && ok[0] && ok[1] && ok[2]) {
		int ab = semver_compare(&v[0], &v[1]);
		int bc = semver_compare(&v[1], &v[2]);
		if (ab <= 0 && bc <= 0)
			CHECK(semver_compare(&v[0], &v[2]) <= 0);
		if (ab >= 0 && bc >= 0)
			CHECK(semver_compare(&v[0], &v[2]) >= 0);
	}

	/* A as a range, matched against every version we have. */
	{
		int r = semver_range_compile(part[0], len[0], &range, &err);
		if (r != 0) {
			check_err(r, &err, len[0], SEMVER_RANGE_TEXT_MAX);
		} else {
			check_range_invariants(&range);
			for (int i = 0; i < np; i++) {
				if (ok[i])
					(void)semver_range_match(&range, &v[i]);
				if (semver_parse(part[i], len[i],
						 SEMVER_LENIENT, &lv,
						 NULL) == 0)
					(void)semver_range_match(&range, &lv);
			}
		}
	}
	return 0;
}
