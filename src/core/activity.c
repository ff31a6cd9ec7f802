/*
 * activity.c - client versions in use, by user and by day.  See
 * activity.h.
 */
#include "core/activity.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define NAME_BYTES 33

struct user_rec {
	u64 user; /* 0: empty slot (a hash of 0 is stored as 1) */
	u32 day;
	u16 version; /* index into the platform's versions */
	u8 platform;
	u8 flags; /* USER_IMPORTED */
};

/* Known only from an import (activity_import); an observation of the
 * gate's makes it a seen user, which an import never changes. */
#define USER_IMPORTED 0x01u

/* One day's distinct users at one (platform, version). */
struct day_count {
	u32 day;
	u16 version;
	u8 platform;
	u8 reserved;
	u64 users;
};

struct platform_rec {
	char name[NAME_BYTES];
	u16 nversions;
	char (*versions)[SEMVER_TEXT_MAX + 1];
};

struct activity {
	struct platform_rec platforms[ACTIVITY_PLATFORMS_MAX];
	u8 nplatforms;
	struct user_rec *users; /* open addressing, power of two */
	u32 users_mask, nusers;
	struct day_count *days; /* sorted by (day, platform, version) */
	u32 ndays, cap_days;
	u64 dropped;
};

struct activity *activity_new(void)
{
	struct activity *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->users = calloc(1024, sizeof(*a->users));
	if (!a->users) {
		free(a);
		return NULL;
	}
	a->users_mask = 1023;
	return a;
}

void activity_free(struct activity *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->nplatforms; i++)
		free(a->platforms[i].versions);
	free(a->users);
	free(a->days);
	free(a);
}

u64 activity_dropped(const struct activity *a)
{
	return a->dropped;
}

static int platform_index(const struct activity *a, const char *name)
{
	for (unsigned i = 0; i < a->nplatforms; i++)
		if (strcmp(a->platforms[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int version_index(const struct platform_rec *p, const char *v)
{
	for (unsigned i = 0; i < p->nversions; i++)
		if (strcmp(p->versions[i], v) == 0)
			return (int)i;
	return -1;
}

static struct user_rec *user_slot(const struct activity *a, u64 user)
{
	u32 j = (u32)(user ^ (user >> 32)) & a->users_mask;
	while (a->users[j].user && a->users[j].user != user)
		j = (j + 1) & a->users_mask;
	return &a->users[j];
}

static bool users_grow(struct activity *a)
{
	u32 cap = (a->users_mask + 1) * 2;
	struct user_rec *old = a->users;
	u32 old_cap = a->users_mask + 1;
	a->users = calloc(cap, sizeof(*a->users));
	if (!a->users) {
		a->users = old;
		return false;
	}
	a->users_mask = cap - 1;
	for (u32 i = 0; i < old_cap; i++)
		if (old[i].user)
			*user_slot(a, old[i].user) = old[i];
	free(old);
	return true;
}

static int day_cmp(const struct day_count *x, u32 day, u8 p, u16 v)
{
	if (x->day != day)
		return x->day < day ? -1 : 1;
	if (x->platform != p)
		return x->platform < p ? -1 : 1;
	if (x->version != v)
		return x->version < v ? -1 : 1;
	return 0;
}

/* Find or insert the count of (day, p, v); NULL when out of memory. */
static struct day_count *day_count(struct activity *a, u32 day, u8 p, u16 v)
{
	u32 lo = 0, hi = a->ndays;
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		if (day_cmp(&a->days[mid], day, p, v) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < a->ndays && day_cmp(&a->days[lo], day, p, v) == 0)
		return &a->days[lo];
	/* Forget days past the window kept, oldest first. */
	u32 cut = 0;
	while (cut < a->ndays && a->days[cut].day + ACTIVITY_DAYS_KEPT < day)
		cut++;
	if (cut) {
		memmove(a->days, a->days + cut,
			(a->ndays - cut) * sizeof(*a->days));
		a->ndays -= cut;
		lo -= cut < lo ? cut : lo;
	}
	if (a->ndays == a->cap_days) {
		u32 cap = a->cap_days ? a->cap_days * 2 : 256;
		struct day_count *d = realloc(a->days, cap * sizeof(*d));
		if (!d)
			return NULL;
		a->days = d;
		a->cap_days = cap;
	}
	memmove(a->days + lo + 1, a->days + lo,
		(a->ndays - lo) * sizeof(*a->days));
	a->ndays++;
	struct day_count *c = &a->days[lo];
	memset(c, 0, sizeof(*c));
	c->day = day;
	c->platform = p;
	c->version = v;
	return c;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= NAME_BYTES)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* versions_max, users_max: how full the tables may be for this one to
 * add a version or a user. */
static int observe(struct activity *a, u64 user, const char *platform,
		   const char *version_text, u32 day, u32 versions_max,
		   u32 users_max, bool imported)
{
	if (!name_ok(platform) || strlen(version_text) > SEMVER_TEXT_MAX ||
	    version_text[0] == '\0')
		return -EINVAL;
	if (user == 0)
		user = 1;
	int pi = platform_index(a, platform);
	if (pi < 0) {
		if (a->nplatforms == ACTIVITY_PLATFORMS_MAX) {
			a->dropped++;
			return -E2BIG;
		}
		pi = a->nplatforms++;
		memcpy(a->platforms[pi].name, platform, strlen(platform) + 1);
	}
	struct platform_rec *p = &a->platforms[pi];
	int vi = version_index(p, version_text);
	if (vi < 0) {
		if (p->nversions >= versions_max) {
			a->dropped++;
			return -E2BIG;
		}
		if (!p->versions) {
			p->versions = calloc(ACTIVITY_VERSIONS_MAX,
					     sizeof(*p->versions));
			if (!p->versions)
				return -ENOMEM;
		}
		vi = p->nversions++;
		memcpy(p->versions[vi], version_text, strlen(version_text) + 1);
	}
	struct user_rec *u = user_slot(a, user);
	if (imported && u->user && !(u->flags & USER_IMPORTED))
		return 1; /* what the gate saw is never moved by an import */
	if (!u->user) {
		if (a->nusers >= users_max) {
			a->dropped++;
			return -E2BIG;
		}
		if ((u64)(a->nusers + 1) * 2 > (u64)a->users_mask + 1) {
			if (!users_grow(a))
				return -ENOMEM;
			u = user_slot(a, user);
		}
		a->nusers++;
	} else if (u->day > day) {
		return 0; /* older than what we know of this user */
	} else if (u->day == day && u->platform == pi && u->version == vi) {
		return 0; /* already counted today at this version */
	} else if (u->day == day) {
		/* A new version the same day: counted at the last one. */
		struct day_count *old =
			day_count(a, day, u->platform, u->version);
		if (!old)
			return -ENOMEM;
		if (old->users)
			old->users--;
	}
	struct day_count *c = day_count(a, day, (u8)pi, (u16)vi);
	if (!c)
		return -ENOMEM;
	c->users++;
	u->user = user;
	u->day = day;
	u->platform = (u8)pi;
	u->version = (u16)vi;
	u->flags = imported ? USER_IMPORTED : 0;
	return 0;
}

int activity_observe(struct activity *a, u64 user, const char *platform,
		     const char *version_text, u32 day)
{
	return observe(a, user, platform, version_text, day,
		       ACTIVITY_VERSIONS_MAX, ACTIVITY_USERS_MAX, false);
}

int activity_import(struct activity *a, u64 user, const char *platform,
		    const char *version_text, u32 day)
{
	return observe(a, user, platform, version_text, day,
		       ACTIVITY_VERSIONS_MAX, ACTIVITY_USERS_MAX, true);
}

int activity_observe_shared(struct activity *a, u64 user, const char *platform,
			    const char *version_text, u32 day)
{
	return observe(a, user, platform, version_text, day,
		       ACTIVITY_SHARED_VERSIONS_MAX, ACTIVITY_SHARED_USERS_MAX,
		       false);
}

/* Below min?  1 yes, 0 no, -1 the version does not parse. */
static int below(const struct platform_rec *p, u16 v, const struct semver *min,
		 enum semver_mode mode)
{
	struct semver sv;
	struct semver_err err;
	const char *t = p->versions[v];
	if (semver_parse(t, strlen(t), mode, &sv, &err) != 0)
		return -1;
	return semver_compare(&sv, min) < 0;
}

void activity_impact(const struct activity *a, const char *platform,
		     const struct semver *min, enum semver_mode mode, u32 today,
		     struct activity_impact *out)
{
	memset(out, 0, sizeof(*out));
	out->window_days = ACTIVITY_WINDOW_DAYS;
	int pi = platform_index(a, platform);
	if (pi < 0)
		return;
	const struct platform_rec *p = &a->platforms[pi];
	signed char cls[ACTIVITY_VERSIONS_MAX];
	for (u16 v = 0; v < p->nversions; v++)
		cls[v] = (signed char)below(p, v, min, mode);
	u32 from = today >= ACTIVITY_WINDOW_DAYS - 1
			   ? today - (ACTIVITY_WINDOW_DAYS - 1)
			   : 0;
	for (u32 i = 0; i <= a->users_mask; i++) {
		const struct user_rec *u = &a->users[i];
		if (!u->user || u->platform != pi || u->day < from ||
		    u->day > today)
			continue;
		out->actives++;
		if (cls[u->version] > 0)
			out->blocked++;
		else if (cls[u->version] < 0)
			out->unparsed++;
	}
}

int activity_buckets(const struct activity *a, u32 today,
		     void (*fn)(void *ctx, const char *platform,
				const char *version, u64 users),
		     void *ctx)
{
	if (a->nplatforms == 0)
		return 0;
	u64 *n = calloc((size_t)a->nplatforms * ACTIVITY_VERSIONS_MAX,
			sizeof(*n));
	if (!n)
		return -ENOMEM;
	u32 from = today >= ACTIVITY_WINDOW_DAYS - 1
			   ? today - (ACTIVITY_WINDOW_DAYS - 1)
			   : 0;
	for (u32 i = 0; i <= a->users_mask; i++) {
		const struct user_rec *u = &a->users[i];
		if (u->user && u->day >= from && u->day <= today)
			n[(size_t)u->platform * ACTIVITY_VERSIONS_MAX +
			  u->version]++;
	}
	for (u32 p = 0; p < a->nplatforms; p++)
		for (u32 v = 0; v < a->platforms[p].nversions; v++)
			if (n[(size_t)p * ACTIVITY_VERSIONS_MAX + v])
				fn(ctx, a->platforms[p].name,
				   a->platforms[p].versions[v],
				   n[(size_t)p * ACTIVITY_VERSIONS_MAX + v]);
	free(n);
	return 0;
}

void activity_days(const struct activity *a, const char *platform,
		   const struct semver *min, enum semver_mode mode, u32 from,
		   u32 to, void (*fn)(void *ctx, u32 day, u64 below, u64 all),
		   void *ctx)
{
	int pi = platform_index(a, platform);
	if (pi < 0)
		return;
	const struct platform_rec *p = &a->platforms[pi];
	signed char cls[ACTIVITY_VERSIONS_MAX];
	for (u16 v = 0; v < p->nversions; v++)
		cls[v] = (signed char)below(p, v, min, mode);
	u32 day = 0;
	u64 nb = 0, na = 0;
	bool any = false;
	for (u32 i = 0; i < a->ndays; i++) {
		const struct day_count *c = &a->days[i];
		if (c->platform != pi || c->day < from || c->day > to)
			continue;
		if (any && c->day != day) {
			fn(ctx, day, nb, na);
			nb = na = 0;
		}
		any = true;
		day = c->day;
		na += c->users;
		if (cls[c->version] > 0)
			nb += c->users;
	}
	if (any)
		fn(ctx, day, nb, na);
}

/* Sums for least squares of y = ln(share) on x = day - today: small x
 * (at most 119 in magnitude) keep the sums exact enough that a flat
 * share comes out flat, where x = day (~20000, squared ~4e8) left b a
 * rounding error away from 0 and forecast a date. */
struct fit {
	double sx, sy, sxx, sxy, syy;
	u32 n;
	u32 today;
};

static void fit_day(void *ctx, u32 day, u64 below_n, u64 all)
{
	struct fit *f = ctx;
	if (all == 0 || below_n == 0)
		return;
	double x = (double)day - (double)f->today;
	double y = log((double)below_n / (double)all);
	f->sx += x;
	f->sy += y;
	f->sxx += x * x;
	f->sxy += x * y;
	f->syy += y * y;
	f->n++;
}

int activity_forecast(const struct activity *a, const char *platform,
		      const struct semver *min, enum semver_mode mode,
		      u32 today, u32 weeks, double threshold,
		      struct activity_forecast *out)
{
	memset(out, 0, sizeof(*out));
	if (!(threshold > 0 && threshold < 1) || weeks == 0 || weeks > 17)
		return -EINVAL;
	struct fit f = {.today = today};
	u32 from = today >= weeks * 7 ? today - weeks * 7 : 0;
	activity_days(a, platform, min, mode, from, today, fit_day, &f);
	out->days_used = f.n;
	if (f.n < 3)
		return -ENODATA;
	double n = f.n;
	double den = n * f.sxx - f.sx * f.sx;
	if (den <= 0)
		return -ENODATA;
	double b = (n * f.sxy - f.sx * f.sy) / den;
	double c = (f.sy - b * f.sx) / n; /* ln(share) today */
	/* R^2 = 1 - SSres/SStot, from the sums. */
	double sstot = f.syy - f.sy * f.sy / n;
	double ssres = f.syy - c * f.sy - b * f.sxy;
	out->r2 = sstot > 1e-12 ? 1.0 - ssres / sstot : 1.0;
	if (out->r2 < 0)
		out->r2 = 0;
	if (out->r2 > 1)
		out->r2 = 1;
	/* Slopes this small are rounding, not a trend (a halving would
	 * take over a billion days). */
	if (fabs(b) < 1e-9)
		b = 0;
	out->share_now = exp(c);
	out->daily_decay = 1.0 - exp(b);
	out->decreasing = b < 0;
	out->already_below = out->share_now < threshold;
	if (out->already_below) {
		out->day_below = today;
	} else if (out->decreasing) {
		double d = (log(threshold) - c) / b; /* days after today */
		if (d < 0)
			d = 0;
		out->day_below = d > 4e9 - (double)today ? UINT32_MAX
							 : today + (u32)ceil(d);
	}
	return 0;
}

/* ---- persistence --------------------------------------------------------
 * "TPWACT01", u32 platforms, each: name[33], u16 nversions, the version
 * texts (SEMVER_TEXT_MAX + 1 each); u32 users, the user records in use;
 * u32 day counts, the counts; u64 dropped.
 */
static const char act_magic[8] = {'T', 'P', 'W', 'A', 'C', 'T', '0', '1'};

int activity_write(const struct activity *a,
		   int (*sink)(void *ctx, const void *buf, size_t len),
		   void *ctx)
{
	u32 np = a->nplatforms;
	int rc = sink(ctx, act_magic, 8);
	if (rc == 0)
		rc = sink(ctx, &np, 4);
	for (u32 i = 0; rc == 0 && i < np; i++) {
		const struct platform_rec *p = &a->platforms[i];
		rc = sink(ctx, p->name, NAME_BYTES);
		if (rc == 0)
			rc = sink(ctx, &p->nversions, 2);
		if (rc == 0 && p->nversions)
			rc = sink(ctx, p->versions,
				  (size_t)p->nversions * sizeof(*p->versions));
	}
	if (rc == 0)
		rc = sink(ctx, &a->nusers, 4);
	/* Users in slot order starting after an empty slot (there is one:
	 * the table is at most half full), so that no run of colliding
	 * users is split at the end of the table: activity_read, inserting
	 * in file order into a table of the same size, puts each one back
	 * in its slot, and writing again gives the same bytes. */
	u32 start = 0;
	while (start < a->users_mask && a->users[start].user)
		start++;
	for (u32 k = 1; rc == 0 && k <= a->users_mask + 1; k++) {
		const struct user_rec *u =
			&a->users[(start + k) & a->users_mask];
		if (u->user)
			rc = sink(ctx, u, sizeof(*u));
	}
	if (rc == 0)
		rc = sink(ctx, &a->ndays, 4);
	if (rc == 0 && a->ndays)
		rc = sink(ctx, a->days, (size_t)a->ndays * sizeof(*a->days));
	if (rc == 0)
		rc = sink(ctx, &a->dropped, 8);
	return rc;
}

struct rd {
	const u8 *p, *end;
};

static bool take(struct rd *r, void *out, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	memcpy(out, r->p, n);
	r->p += n;
	return true;
}

struct activity *activity_read(const u8 *buf, size_t len)
{
	struct rd r = {buf, buf + len};
	char magic[8];
	u32 np, nusers, ndays;
	struct activity *a = activity_new();
	if (!a)
		return NULL;
	if (!take(&r, magic, 8) || memcmp(magic, act_magic, 8) != 0 ||
	    !take(&r, &np, 4) || np > ACTIVITY_PLATFORMS_MAX)
		goto fail;
	for (u32 i = 0; i < np; i++) {
		struct platform_rec *p = &a->platforms[i];
		a->nplatforms++;
		if (!take(&r, p->name, NAME_BYTES) ||
		    p->name[NAME_BYTES - 1] != '\0' || !name_ok(p->name) ||
		    !take(&r, &p->nversions, 2) ||
		    p->nversions > ACTIVITY_VERSIONS_MAX)
			goto fail;
		p->versions =
			calloc(ACTIVITY_VERSIONS_MAX, sizeof(*p->versions));
		if (!p->versions ||
		    !take(&r, p->versions,
			  (size_t)p->nversions * sizeof(*p->versions)))
			goto fail;
		for (u16 v = 0; v < p->nversions; v++)
			if (p->versions[v][SEMVER_TEXT_MAX] != '\0')
				goto fail;
	}
	if (!take(&r, &nusers, 4) || nusers > ACTIVITY_USERS_MAX ||
	    (size_t)(r.end - r.p) / sizeof(struct user_rec) < nusers)
		goto fail;
	/* The table size activity_observe had reached with that many
	 * users, before inserting (see activity_write). */
	while ((u64)nusers * 2 > (u64)a->users_mask + 1)
		if (!users_grow(a))
			goto fail;
	for (u32 i = 0; i < nusers; i++) {
		struct user_rec u;
		if (!take(&r, &u, sizeof(u)) || !u.user ||
		    u.platform >= a->nplatforms ||
		    u.version >= a->platforms[u.platform].nversions)
			goto fail;
		if ((u64)(a->nusers + 1) * 2 > (u64)a->users_mask + 1 &&
		    !users_grow(a))
			goto fail;
		struct user_rec *s = user_slot(a, u.user);
		if (s->user)
			goto fail; /* a user twice */
		*s = u;
		a->nusers++;
	}
	if (!take(&r, &ndays, 4) || ndays > (u32)1 << 24)
		goto fail;
	if (ndays) {
		a->days = malloc((size_t)ndays * sizeof(*a->days));
		if (!a->days)
			goto fail;
		a->cap_days = ndays;
		if (!take(&r, a->days, (size_t)ndays * sizeof(*a->days)))
			goto fail;
		a->ndays = ndays;
		for (u32 i = 0; i < ndays; i++) {
			const struct day_count *c = &a->days[i];
			if (c->platform >= a->nplatforms ||
			    c->version >= a->platforms[c->platform].nversions ||
			    (i && day_cmp(&a->days[i - 1], c->day, c->platform,
					  c->version) >= 0))
				goto fail;
		}
	}
	if (!take(&r, &a->dropped, 8) || r.p != r.end)
		goto fail;
	return a;
fail:
	activity_free(a);
	return NULL;
}
