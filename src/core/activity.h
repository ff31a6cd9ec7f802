/*
 * activity.h - who uses which client version: the counts behind "raising
 * the minimum to X would block N users" and the adoption forecast
 * (issue 3, item 7).  Pure: days are parameters (days since the Unix
 * epoch, UTC), users are 64-bit keyed hashes made by the caller (no
 * personal data is ever held here), nothing is locked (the caller
 * serialises).
 *
 * For each user: the platform, version and day last seen.  For each day:
 * how many distinct users were seen at each (platform, version), a user
 * counted once per day at the last version seen that day.
 *
 * Not journaled: activity is telemetry, not state.  The server keeps it
 * in memory and in DATA/activity (activity_write/activity_read).
 */
#ifndef TPW_CORE_ACTIVITY_H
#define TPW_CORE_ACTIVITY_H

#include "core/semver.h"
#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACTIVITY_PLATFORMS_MAX 32
#define ACTIVITY_VERSIONS_MAX  2048 /* distinct versions per platform */
#define ACTIVITY_USERS_MAX     (1u << 22)
#define ACTIVITY_DAYS_KEPT     120
#define ACTIVITY_WINDOW_DAYS   7 /* "actives": seen in the last 7 days */

struct activity;

struct activity *activity_new(void);
void activity_free(struct activity *a);

/*
 * One request of user (a keyed hash) from platform at version v (its
 * text, as the client sent it, at most SEMVER_TEXT_MAX) on day.
 * Observations of a day older than the user's last are ignored (out of
 * order).  Returns 0, or -E2BIG (a limit: not counted; see
 * activity_dropped), -EINVAL (bad platform name), -ENOMEM.
 */
int activity_observe(struct activity *a, u64 user, const char *platform,
		     const char *version_text, u32 day);
u64 activity_dropped(const struct activity *a);

/*
 * The same for an import (POST /v1/client-policy/activity: an export of
 * the operator's analytics, in day order): it adds users and moves the
 * users imports made, but never changes a user the gate saw (its
 * observations are the ground truth), so an import cannot make users the
 * gate saw, who would be blocked, look as if they were on another
 * version: dual control counts on that (docs/authz.md).  Returns 1 for
 * such a user (nothing changed), else as activity_observe.
 */
int activity_import(struct activity *a, u64 user, const char *platform,
		    const char *version_text, u32 day);

/*
 * The same for telemetry that anyone holding a credential can send (not
 * the operator's own): it may add versions and users only while the
 * tables are at most half full, so that it can never take the room the
 * operator's traffic needs (docs/client-policy.md).
 */
#define ACTIVITY_SHARED_VERSIONS_MAX (ACTIVITY_VERSIONS_MAX / 2)
#define ACTIVITY_SHARED_USERS_MAX    (ACTIVITY_USERS_MAX / 2)
int activity_observe_shared(struct activity *a, u64 user, const char *platform,
			    const char *version_text, u32 day);

struct activity_impact {
	u64 actives;  /* users of the platform seen in the window */
	u64 blocked;  /* of them, last seen below the minimum */
	u64 unparsed; /* of them, at a version that does not parse */
	u32 window_days;
};

/* Raising platform's minimum to min (mode: how versions are parsed) on
 * day today: who, of the users seen in [today - 6, today], would be
 * refused.  Unparsable versions count in unparsed, not blocked. */
void activity_impact(const struct activity *a, const char *platform,
		     const struct semver *min, enum semver_mode mode, u32 today,
		     struct activity_impact *out);

/* The users seen in [today - 6, today], by the (platform, version) each
 * was last seen at: fn is called once per bucket with users > 0, in
 * platform then version order of first sight.  Each user is counted in
 * one bucket (the last version seen).  Nothing is held but the counts:
 * no channel, country or user id (docs/client-policy.md, "The impact of
 * a new document").  Returns 0 or -ENOMEM. */
int activity_buckets(const struct activity *a, u32 today,
		     void (*fn)(void *ctx, const char *platform,
				const char *version, u64 users),
		     void *ctx);

struct activity_forecast {
	u32 days_used;	    /* days with data in the fitted span */
	double share_now;   /* fitted share below min today, 0..1 */
	double daily_decay; /* fitted fraction lost per day (1 - e^b) */
	double r2;	    /* fit quality of ln(share) on day, 0..1 */
	bool decreasing;    /* b < 0: a date can be forecast */
	bool already_below; /* share_now already under the threshold */
	u32 day_below;	    /* forecast day the share falls under it */
};

/* Fit share(d) = e^(a + b d) of users below min, per day, over the
 * weeks before today (days with no data skipped; shares of 0 skipped as
 * ln is undefined), and forecast the day it falls under threshold
 * (0 < threshold < 1).  Returns 0, or -ENODATA with fewer than 3 days. */
int activity_forecast(const struct activity *a, const char *platform,
		      const struct semver *min, enum semver_mode mode,
		      u32 today, u32 weeks, double threshold,
		      struct activity_forecast *out);

/* Per-day counts of one platform, for reports: calls fn for each day
 * with data in [from, to], with the users below min and all users. */
void activity_days(const struct activity *a, const char *platform,
		   const struct semver *min, enum semver_mode mode, u32 from,
		   u32 to, void (*fn)(void *ctx, u32 day, u64 below, u64 all),
		   void *ctx);

/* Persistence (native byte order, checksummed by the caller's file). */
int activity_write(const struct activity *a,
		   int (*sink)(void *ctx, const void *buf, size_t len),
		   void *ctx);
struct activity *activity_read(const u8 *buf, size_t len);

#endif
