/*
 * fuzz_policy.c - libFuzzer harness for src/core/policy.h.
 *
 * The input is a policy document (arbitrary bytes).  Then:
 *   - nothing crashes or leaks, and an error always has a path and a
 *     message "<path>: <reason>" of printable ASCII;
 *   - a document that parses renders to canonical text that parses
 *     again and renders to the same bytes (a fixed point), and the diff
 *     between the two parsed policies is empty;
 *   - evaluating a few requests (every platform of the document and an
 *     unknown one, with and without a version, channel, country, user,
 *     languages and overrides) never crashes and gives a consistent
 *     decision (a status only when blocked, notices and flags in range);
 *   - the same bytes as an override request never crash.
 */
#include "core/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_err(int ret, const struct policy_err *err)
{
	size_t plen = strlen(err->path);

	CHECK(ret == -EINVAL || ret == -E2BIG || ret == -ENOMEM);
	CHECK(plen > 0);
	CHECK(strncmp(err->msg, err->path, plen) == 0);
	CHECK(err->msg[plen] == ':');
	for (const char *s = err->msg; *s; s++)
		CHECK(*s >= 0x20 && *s < 0x7f);
}

static void check_decision(const struct policy *p,
			   const struct policy_decision *d)
{
	CHECK(d->verdict < POLICY_VERDICTS);
	CHECK(d->reason < POLICY_REASONS);
	CHECK((d->status != 0) == (d->verdict == POLICY_BLOCKED));
	CHECK(d->status == 0 || d->status == 426 || d->status == 403);
	CHECK(d->nnotices <= p->nnotices);
	for (u8 i = 0; i < d->nnotices; i++)
		CHECK(d->notice_text[i] != NULL);
	if (p->nflags < 64)
		CHECK((d->flags >> p->nflags) == 0);
	if (d->override)
		CHECK(d->verdict_without_override == POLICY_BLOCKED);
}

static void evaluate_some(const struct policy *p)
{
	static const char *const versions[] = {"1.0.0", "4.2.0-beta.1", "v4.2",
					       ""};
	struct policy_override ov[2];
	struct policy_decision d;
	struct policy_query q = {0};
	int nov = 0;

	if (policy_override_init(&ov[nov], "android", "*", "compat", 3600, "f",
				 1700000000, NULL) == 0)
		nov++;
	if (policy_override_init(&ov[nov], "ios", "<5", "allow", 60, "f",
				 1700000000, NULL) == 0)
		nov++;
	for (u16 i = 0; i <= p->nplatforms; i++) {
		const char *name =
			i < p->nplatforms ? p->platforms[i].name : "unknown";
		for (size_t v = 0; v < sizeof(versions) / sizeof(*versions);
		     v++) {
			q.platform = name;
			q.platform_len = strlen(name);
			q.version = versions[v];
			q.version_len = strlen(versions[v]);
			q.channel = v & 1 ? "beta" : NULL;
			q.country = v & 2 ? "DE" : "us";
			q.user = v & 1 ? "user-1" : NULL;
			q.languages = v & 2 ? "de-CH, en;q=0.5" : "fr";
			q.now_s = v & 1 ? 1700000000 : 1900000000;
			CHECK(policy_evaluate(p, &q, ov, (size_t)nov, &d) == 0);
			check_decision(p, &d);
		}
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct policy *p = NULL, *p2 = NULL;
	struct policy_err err;
	struct policy_override o;
	char *a = NULL, *b = NULL, *diff = NULL;
	size_t alen, blen, n;
	int ret;

	ret = policy_override_parse((const char *)data, size, 1700000000, &o,
				    &err);
	if (ret)
		check_err(ret, &err);
	else
		CHECK(policy_override_active(&o, 1700000000));

	ret = policy_parse((const char *)data, size, &p, &err);
	if (ret) {
		CHECK(p == NULL);
		check_err(ret, &err);
		return 0;
	}
	CHECK(policy_render(p, &a, &alen) == 0);
	ret = policy_parse(a, alen, &p2, &err);
	if (ret) {
		fprintf(stderr, "rendering does not parse: %s\n%s\n", err.msg,
			a);
		abort();
	}
	CHECK(policy_render(p2, &b, &blen) == 0);
	CHECK(alen == blen && memcmp(a, b, alen) == 0);
	CHECK(policy_diff(p, p2, &diff, &n) == 0);
	CHECK(n == 0 && strcmp(diff, "[]") == 0);
	evaluate_some(p);
	free(a);
	free(b);
	free(diff);
	policy_free(p);
	policy_free(p2);
	return 0;
}
