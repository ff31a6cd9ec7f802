/*
 * fuzz_activity.c - libFuzzer driver for client version activity
 * (core/activity.h): the file decoder (DATA/activity is read at start)
 * and observations with the questions asked of them.
 *
 * The first input byte picks a mode:
 *   even  file: the rest goes to activity_read; NULL, or a table that
 *         answers impact, forecast and days without crashing, takes more
 *         observations, and whose file, read back, writes the same bytes.
 *   odd   program (see run()): observations (users from a small pool,
 *         platforms and versions from tables or raw input, days near a
 *         base or anywhere in u32) mixed with impact, forecast and days
 *         questions.  Impact is checked exactly against a model of each
 *         user's last (platform, version, day); days, while they stay
 *         within the days kept, against a model of each user's version
 *         per day.  Forecast returning 0 gives finite numbers in range.
 *         At the end the table round-trips through its file: the same
 *         bytes and the same answers.
 *
 * Build (see Makefile: make fuzz):
 *   make build/fuzz/fuzz_activity
 *   build/fuzz/fuzz_activity -dict=tests/fuzz/activity.dict \
 *     tests/fuzz/corpus/activity
 *
 * Seed corpus: compiled with -DACTIVITY_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DACTIVITY_CORPUS_MAIN -Isrc \
 *     tests/fuzz/fuzz_activity.c src/core/activity.c src/core/semver.c \
 *     -lm -o gen && ./gen tests/fuzz/corpus/activity
 */
#include "core/activity.h"
#include "core/semver.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define OPS_MAX	  256
#define USERS_MAX 24   /* the pool */
#define CELLS_MAX 2048 /* (user, day) pairs of the days model */
#define BASE_DAY  20468u

struct reader {
	const u8 *p;
	size_t n;
};

static u8 take8(struct reader *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

static u32 take32(struct reader *r)
{
	u32 v = 0;
	for (int i = 0; i < 4; i++)
		v |= (u32)take8(r) << (8 * i);
	return v;
}

static const char *const platforms[] = {"android", "ios",   "web",
					"Bad",	   "a-b_c", ""};
static const char *const versions[] = {
	"1.0.0",    "3.9.0",
	"4.0.0",    "4.0.0-beta.1",
	"4.2.0",    "v4.2",
	"4.2.1.77", "garbage",
	" 4.1 ",    "99999999999999999999.0.0",
};
static const char *const mins[] = {"0.0.0", "4.0.0", "4.2.0", "4.0.0-beta.2",
				   "5.0.0"};

static struct semver min_of(u8 b)
{
	struct semver m;
	const char *t = mins[b % 5];
	CHECK(semver_parse(t, strlen(t), SEMVER_STRICT, &m, NULL) == 0);
	return m;
}

/* ---- growing buffer ----------------------------------------------------- */

struct buf {
	u8 *p;
	size_t len, cap;
};

static int buf_sink(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		u8 *p = realloc(b->p, cap);
		CHECK(p);
		b->p = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static struct buf write_all(const struct activity *a)
{
	struct buf b = {0};
	CHECK(activity_write(a, buf_sink, &b) == 0);
	return b;
}

/* ---- answers ------------------------------------------------------------ */

static void check_forecast(int ret, const struct activity_forecast *f,
			   u32 today, double threshold)
{
	CHECK(ret == 0 || ret == -ENODATA || ret == -EINVAL);
	if (ret != 0)
		return;
	CHECK(f->days_used >= 3);
	CHECK(isfinite(f->r2) && f->r2 >= 0 && f->r2 <= 1);
	CHECK(!isnan(f->share_now) && f->share_now >= 0);
	CHECK(!isnan(f->daily_decay) && f->daily_decay <= 1);
	CHECK(f->decreasing == (f->daily_decay > 0));
	if (f->already_below)
		CHECK(f->day_below == today && f->share_now < threshold);
	else if (f->decreasing)
		CHECK(f->day_below >= today);
	else
		CHECK(f->day_below == 0);
}

struct days_ck {
	bool any;
	u32 last, from, to;
	u32 calls;
	u64 below[8], all[8]; /* the first 8 days of the span */
};

static void days_cb(void *ctx, u32 day, u64 below, u64 all)
{
	struct days_ck *d = ctx;
	CHECK(day >= d->from && day <= d->to);
	CHECK(!d->any || day > d->last);
	CHECK(below <= all);
	d->any = true;
	d->last = day;
	d->calls++;
	if (day - d->from < 8) {
		d->below[day - d->from] = below;
		d->all[day - d->from] = all;
	}
}

static const double thresholds[] = {0.001, 0.01, 0.1, 0.5, 0.99, 0.0, 1.0, NAN};

/* Ask everything of a table; the answers go to out (for comparing). */
static size_t ask_all(const struct activity *a, u32 today, u8 *out, size_t cap)
{
	size_t k = 0;
	for (size_t p = 0; p < 4; p++)
		for (u8 m = 0; m < 5; m++) {
			struct semver min = min_of(m);
			struct activity_impact im;
			struct activity_forecast f;
			activity_impact(a, platforms[p], &min, m % 2, today,
					&im);
			CHECK(im.blocked + im.unparsed <= im.actives);
			memset(&f, 0, sizeof(f));
			int ret =
				activity_forecast(a, platforms[p], &min, m % 2,
						  today, 1 + m * 3, 0.05, &f);
			check_forecast(ret, &f, today, 0.05);
			CHECK(k + sizeof(im) + sizeof(f) + sizeof(ret) <= cap);
			memcpy(out + k, &im, sizeof(im));
			k += sizeof(im);
			memcpy(out + k, &f, sizeof(f));
			k += sizeof(f);
			memcpy(out + k, &ret, sizeof(ret));
			k += sizeof(ret);
		}
	return k;
}

/* write -> read -> write: the same bytes, the same answers. */
static void round_trip(const struct activity *a, u32 today)
{
	static u8 ans1[4 * 5 * 160], ans2[4 * 5 * 160];
	struct buf b1 = write_all(a);
	struct activity *r = activity_read(b1.p, b1.len);
	CHECK(r);
	struct buf b2 = write_all(r);
	CHECK(b1.len == b2.len && memcmp(b1.p, b2.p, b1.len) == 0);
	CHECK(activity_dropped(a) == activity_dropped(r));
	size_t n1 = ask_all(a, today, ans1, sizeof(ans1));
	size_t n2 = ask_all(r, today, ans2, sizeof(ans2));
	CHECK(n1 == n2 && memcmp(ans1, ans2, n1) == 0);
	activity_free(r);
	free(b1.p);
	free(b2.p);
}

/* ---- file mode ------------------------------------------------------------
 */

static void file_mode(const u8 *p, size_t n)
{
	struct activity *a = activity_read(p, n);
	if (!a)
		return;
	static u8 ans[4 * 5 * 160];
	(void)ask_all(a, BASE_DAY, ans, sizeof(ans));
	round_trip(a, BASE_DAY);
	int ret = activity_observe(a, 5, "android", "4.0.1", BASE_DAY);
	CHECK(ret == 0 || ret == -E2BIG);
	round_trip(a, BASE_DAY);
	activity_free(a);
}

/* ---- program mode ---------------------------------------------------------
 */

struct muser {
	u64 user;
	u8 platform; /* index into platforms[], or 255 for a generated one */
	char name[34];
	char version[SEMVER_TEXT_MAX + 1];
	u32 day;
};

struct cell { /* the days model: user's version on day */
	u64 user;
	u32 day;
	char name[34];
	char version[SEMVER_TEXT_MAX + 1];
};

struct model {
	struct muser u[USERS_MAX];
	size_t nu;
	struct cell *cells;
	size_t ncells;
	bool ok;       /* false once there are more users than modelled */
	bool cells_ok; /* false once days leave the kept span */
};

/* False when the model is out of room for users. */
static bool model_observe(struct model *m, u64 user, const char *name,
			  const char *version, u32 day)
{
	if (user == 0)
		user = 1;
	struct muser *u = NULL;
	for (size_t i = 0; i < m->nu; i++)
		if (m->u[i].user == user)
			u = &m->u[i];
	if (u && u->day > day)
		return true;
	if (!u) {
		if (m->nu == USERS_MAX)
			return false;
		u = &m->u[m->nu++];
		u->user = user;
	}
	u->day = day;
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->version, sizeof(u->version), "%s", version);
	struct cell *c = NULL;
	for (size_t i = 0; i < m->ncells; i++)
		if (m->cells[i].user == user && m->cells[i].day == day)
			c = &m->cells[i];
	if (!c) {
		if (m->ncells == CELLS_MAX) {
			m->cells_ok = false;
			return true;
		}
		c = &m->cells[m->ncells++];
		c->user = user;
		c->day = day;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->version, sizeof(c->version), "%s", version);
	return true;
}

static int classify(const char *v, const struct semver *min,
		    enum semver_mode mode)
{
	struct semver sv;
	if (semver_parse(v, strlen(v), mode, &sv, NULL) != 0)
		return -1;
	return semver_compare(&sv, min) < 0;
}

static void model_impact(const struct model *m, const char *name,
			 const struct semver *min, enum semver_mode mode,
			 u32 today, struct activity_impact *out)
{
	memset(out, 0, sizeof(*out));
	out->window_days = ACTIVITY_WINDOW_DAYS;
	u32 from = today >= 6 ? today - 6 : 0;
	for (size_t i = 0; i < m->nu; i++) {
		const struct muser *u = &m->u[i];
		if (strcmp(u->name, name) != 0 || u->day < from ||
		    u->day > today)
			continue;
		out->actives++;
		int c = classify(u->version, min, mode);
		if (c > 0)
			out->blocked++;
		else if (c < 0)
			out->unparsed++;
	}
}

static void run(const u8 *p, size_t n)
{
	struct reader r = {p, n};
	struct activity *a = activity_new();
	struct model *m = calloc(1, sizeof(*m));
	CHECK(a && m);
	m->cells = calloc(CELLS_MAX, sizeof(*m->cells));
	CHECK(m->cells);
	m->ok = m->cells_ok = true;
	u32 today = BASE_DAY;
	char name[34], version[SEMVER_TEXT_MAX + 8];

	for (int i = 0; i < OPS_MAX && r.n; i++) {
		u8 op = take8(&r);
		switch (op % 4) {
		case 0:
		case 1: { /* observe */
			u8 ub = take8(&r), pb = take8(&r), vb = take8(&r),
			   db = take8(&r);
			u64 user = ub % USERS_MAX;
			if (ub >= 0xf0) {
				u64 hi = take32(&r);
				user = hi << 32 | take32(&r);
			}
			if (pb < 0xc0)
				snprintf(name, sizeof(name), "%s",
					 platforms[pb % 6]);
			else
				snprintf(name, sizeof(name), "p%u", pb & 0x3f);
			if (vb < 0xf0) {
				snprintf(version, sizeof(version), "%s",
					 versions[vb % 10]);
			} else {
				size_t len = take8(&r) + (vb & 0xf) * 16;
				if (len > r.n)
					len = r.n;
				if (len > sizeof(version) - 1)
					len = sizeof(version) - 1;
				memcpy(version, r.p, len);
				version[len] = '\0';
				r.p += len;
				r.n -= len;
			}
			u32 day;
			if (db == 0xff) {
				day = take32(&r); /* anywhere */
				m->cells_ok = false;
			} else {
				day = BASE_DAY + db % 100;
			}
			int ret = activity_observe(a, user, name, version, day);
			CHECK(ret == 0 || ret == -EINVAL || ret == -E2BIG);
			if (ret == 0 && m->ok)
				m->ok = model_observe(m, user, name, version,
						      day);
			break;
		}
		case 2: { /* impact */
			u8 pb = take8(&r), mb = take8(&r), tb = take8(&r);
			today = tb == 0xff ? take32(&r) : BASE_DAY + tb % 110;
			struct semver min = min_of(mb);
			enum semver_mode mode = (mb >> 4) & 1;
			struct activity_impact im, want;
			activity_impact(a, platforms[pb % 6], &min, mode, today,
					&im);
			CHECK(im.blocked + im.unparsed <= im.actives);
			if (m->ok) {
				model_impact(m, platforms[pb % 6], &min, mode,
					     today, &want);
				CHECK(memcmp(&im, &want, sizeof(im)) == 0);
			}
			break;
		}
		default: { /* forecast and days */
			u8 pb = take8(&r), mb = take8(&r), wb = take8(&r),
			   tb = take8(&r);
			today = tb == 0xff ? take32(&r) : BASE_DAY + tb % 110;
			struct semver min = min_of(mb);
			enum semver_mode mode = (mb >> 4) & 1;
			double th = thresholds[(mb >> 5) & 7];
			struct activity_forecast f;
			int ret =
				activity_forecast(a, platforms[pb % 6], &min,
						  mode, today, wb % 19, th, &f);
			check_forecast(ret, &f, today, th);

			struct days_ck d = {0};
			d.from = today >= 7 ? today - 7 : 0;
			d.to = today;
			activity_days(a, platforms[pb % 6], &min, mode, d.from,
				      d.to, days_cb, &d);
			if (!m->ok || !m->cells_ok)
				break;
			for (u32 k = 0; k < 8 && d.from + k <= d.to; k++) {
				u64 below = 0, all = 0;
				for (size_t j = 0; j < m->ncells; j++) {
					const struct cell *c = &m->cells[j];
					if (c->day != d.from + k ||
					    strcmp(c->name,
						   platforms[pb % 6]) != 0)
						continue;
					all++;
					below += classify(c->version, &min,
							  mode) > 0;
				}
				CHECK(d.all[k] == all && d.below[k] == below);
			}
			break;
		}
		}
	}
	round_trip(a, today);
	free(m->cells);
	free(m);
	activity_free(a);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		file_mode(data + 1, size - 1);
	else
		run(data + 1, size - 1);
	return 0;
}

#ifdef ACTIVITY_CORPUS_MAIN
static void write_seed(const char *dir, const char *name, u8 mode, const u8 *p,
		       size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f);
	CHECK(fwrite(&mode, 1, 1, f) == 1);
	CHECK(n == 0 || fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	/* observe: op 0, user, platform, version, day (BASE + day % 100);
	 * impact: op 2, platform, min, today; forecast: op 3, platform,
	 * min | mode << 4 | threshold << 5, weeks, today. */
	static const u8
		prog[] =
			{
				0,   1,	  0,	1,    10, 0,   1,   0,
				4,   12, /* user 1 upgrades */
				0,   2,	  0,	3,    12, 0,   2,   0,
				2,   12, /* same day change */
				0,   3,	  0,	0,    15, 0,   3,   0,
				2,   14, /* older: ignored */
				0,   4,	  1,	5,    15, 0,   5,   1,
				6,   15, /* lenient texts */
				0,   6,	  0,	7,    9,  0,   7,   0,
				0,   8,			  /* garbage; edge */
				0,   0,	  0,	1,    15, /* user 0 */
				0,   8,	  3,	1,    15, 0,   9,   5,
				1,   15,		  /* bad platforms */
				0,   9,	  0xc5, 1,    15, /* generated platform
							   */
				0,   10,  0,	0xf1, 4,  '4', '.', '1',
				'.', '0', 15, /* raw */
				2,   0,	  1,	15,   2,  0,   1,   16,
				2,   0,	  1,	21,   2,  0,   1,   22,
				2,   1,	  0x12, 15,   2,  1,   2,   15,
				3,   0,	  0x21, 1,    15,
			};
	write_seed(argv[1], "prog-mixed", 1, prog, sizeof(prog));
	/* A halving share over 7 days, then the forecast. */
	u8 decay[7 * 8 * 5 + 20];
	size_t k = 0;
	for (u8 d = 0; d < 7; d++)
		for (u8 i = 0; i < 8; i++) {
			decay[k++] = 0;
			decay[k++] = (u8)(d * 3 + i % 3);
			decay[k++] = 0;
			decay[k++] = i < (8 >> (d / 2)) / 2 ? 0 : 4;
			decay[k++] = (u8)(20 + d);
		}
	static const u8 ask[] = {3, 0, 0x21, 1, 26, 3, 0, 0x41, 2, 26,
				 3, 0, 0x01, 0, 26, 3, 0, 0xc1, 3, 26};
	memcpy(decay + k, ask, sizeof(ask));
	k += sizeof(ask);
	write_seed(argv[1], "prog-decay", 1, decay, k);
	static const u8 wild[] = {
		0, 1,	 0,    1,    0xff, 0xf0, 0xff, 0xff, 0xff, /* day near
								      2^32 */
		0, 2,	 0,    1,    0xff, 0,	 0,    0,    0,	   /* day 0 */
		0, 0xf0, 1,    2,    3,	   4,	 5,    6,    7,	   8,
		0, 0,	 10, /* wide user */
		3, 0,	 0x21, 1,    0xff, 0xff, 0xff, 0xff, 0xff, 2,
		0, 1,	 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	write_seed(argv[1], "prog-wild", 1, wild, sizeof(wild));
	/* Users 1023, 2047 and 3071 share the last slot of the first
	 * table: a run that wraps to its start. */
	static const u8 wrap[] = {
		0,    0xf0, 0,	  0,	10, 0,	  0,  0, 0,  0xff, 0x03,
		0,    0,    0,	  0xf0, 0,  1,	  10, 0, 0,  0,	   0,
		0xff, 0x07, 0,	  0,	0,  0xf0, 0,  2, 10, 0,	   0,
		0,    0,    0xff, 0x0b, 0,  0,	  2,  0, 1,  10,
	};
	write_seed(argv[1], "prog-wrap", 1, wrap, sizeof(wrap));

	/* Files. */
	struct activity *a = activity_new();
	struct buf b = write_all(a);
	write_seed(argv[1], "file-empty", 0, b.p, b.len);
	free(b.p);
	const char *vs[] = {"1.0.0", "4.2.0", "v4.2", "junk"};
	for (u64 u = 1; u <= 40; u++)
		CHECK(activity_observe(a, u * 1023, u % 2 ? "android" : "ios",
				       vs[u % 4],
				       BASE_DAY + (u32)(u % 9)) == 0);
	b = write_all(a);
	write_seed(argv[1], "file-small", 0, b.p, b.len);
	free(b.p);
	activity_free(a);
	return 0;
}
#endif
