/*
 * policy_impact.c - users a new client-policy document would newly
 * block.  See policy_impact.h.
 */
#include "core/policy_impact.h"

#include <errno.h>
#include <string.h>

#include "banned.h"

struct ctx {
	const struct policy *cur, *next;
	int64_t now_s;
	struct policy_impact *out;
};

/* The document's own verdict (no override) for platform/version. */
static bool blocks(const struct policy *p, const char *platform,
		   const char *version, int64_t now_s)
{
	struct policy_query q = {0};
	struct policy_decision d;
	if (!p)
		return false;
	q.platform = platform;
	q.platform_len = strlen(platform);
	q.version = version;
	q.version_len = strlen(version);
	q.now_s = now_s;
	return policy_evaluate(p, &q, NULL, 0, &d) == 0 &&
	       d.verdict == POLICY_BLOCKED;
}

static void bucket(void *vctx, const char *platform, const char *version,
		   u64 users)
{
	struct ctx *c = vctx;
	struct policy_impact *im = c->out;
	struct policy_impact_platform *row = NULL;
	for (u32 i = 0; i < im->nplatforms && !row; i++)
		if (strcmp(im->p[i].name, platform) == 0)
			row = &im->p[i];
	if (!row) {
		if (im->nplatforms == ACTIVITY_PLATFORMS_MAX ||
		    strlen(platform) >= sizeof(row->name))
			return; /* activity never holds more, nor longer */
		row = &im->p[im->nplatforms++];
		memcpy(row->name, platform, strlen(platform) + 1);
	}
	bool before = blocks(c->cur, platform, version, c->now_s);
	bool after = blocks(c->next, platform, version, c->now_s);
	row->actives += users;
	row->blocked_before += before ? users : 0;
	row->blocked_after += after ? users : 0;
	row->newly_blocked += after && !before ? users : 0;
}

int policy_impact_compute(const struct activity *a, const struct policy *cur,
			  const struct policy *next, int64_t now_s, u32 today,
			  struct policy_impact *out)
{
	struct ctx c = {cur, next, now_s, out};
	memset(out, 0, sizeof(*out));
	out->window_days = ACTIVITY_WINDOW_DAYS;
	return activity_buckets(a, today, bucket, &c);
}

double policy_impact_share(const struct policy_impact_platform *p)
{
	return p->actives ? (double)p->newly_blocked / (double)p->actives : 0;
}

bool policy_impact_over(const struct policy_impact *im, double threshold)
{
	for (u32 i = 0; i < im->nplatforms; i++)
		if (policy_impact_share(&im->p[i]) > threshold)
			return true;
	return false;
}
