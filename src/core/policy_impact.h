/*
 * policy_impact.h - the guard rail of a new client-policy document (issue
 * 11, item 5): of the users seen in the last 7 days, by platform, how
 * many the new document blocks that the current one does not.  Pure: the
 * activity (core/activity.h, verified users only: the server counts a
 * user once the request authenticated) and both documents are
 * parameters, and so is the time.
 *
 * The approximation (docs/client-policy.md, "The impact of a new
 * document"): activity keeps, per user, the platform and version last
 * seen and the day, not the channel, country or user id.  So each
 * (platform, version) bucket is evaluated as a request without channel
 * or country (the platform's own rules: channel and country levels are
 * not seen), at now_s (a sunset already past blocks; one still ahead
 * does not yet), without overrides (they are temporary: the document's
 * own verdict is what stays).  Rollouts decide only the recommended
 * version and flags, never a block, so they do not change the counts.
 */
#ifndef TPW_CORE_POLICY_IMPACT_H
#define TPW_CORE_POLICY_IMPACT_H

#include "core/activity.h"
#include "core/policy.h"
#include "core/types.h"

#include <stdbool.h>
#include <stdint.h>

struct policy_impact_platform {
	char name[33];
	u64 actives;	    /* users of the platform seen in the window */
	u64 blocked_before; /* of them, blocked by the current document */
	u64 blocked_after;  /* blocked by the new document */
	u64 newly_blocked;  /* blocked by the new and not by the current */
};

struct policy_impact {
	u32 window_days; /* ACTIVITY_WINDOW_DAYS */
	u32 nplatforms;	 /* platforms with users in the window */
	struct policy_impact_platform p[ACTIVITY_PLATFORMS_MAX];
};

/* The impact of replacing cur (NULL: no policy, nothing blocked) with
 * next on the users of a seen in [today - 6, today].  Returns 0 or
 * -ENOMEM. */
int policy_impact_compute(const struct activity *a, const struct policy *cur,
			  const struct policy *next, int64_t now_s, u32 today,
			  struct policy_impact *out);

/* newly_blocked / actives, 0 with no actives. */
double policy_impact_share(const struct policy_impact_platform *p);

/* Does any platform's share exceed threshold (0..1)? */
bool policy_impact_over(const struct policy_impact *im, double threshold);

#endif
