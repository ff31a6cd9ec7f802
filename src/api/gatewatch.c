/*
 * gatewatch.c - the gate's decisions and blocked users under bounded
 * labels, and their Prometheus series (see gatewatch.h).
 */
#include "api/gatewatch.h"
#include "core/activity.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

#define LOAD(x)	    atomic_load_explicit(&(x), memory_order_acquire)
#define STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_release)

static const char *const verdict_names[GATEWATCH_VERDICTS] = {
	"supported", "deprecated", "compat", "blocked"};

static void platform_reset(struct gatewatch_platform *p, const char *name)
{
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->rule_lines = p->seen_lines = 0;
	atomic_init(&p->seen_full, false);
	atomic_init(&p->nlines, 2); /* "unparsed", "other" */
}

int gatewatch_init(struct gatewatch *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->blocked_lock, NULL);
	atomic_init(&w->nplatforms, 0);
	atomic_init(&w->seeded_version, 0);
	platform_reset(&w->platforms[GATEWATCH_PLATFORMS_MAX], "other");
	w->blocked[0] = activity_new();
	w->blocked[1] = activity_new();
	if (!w->blocked[0] || !w->blocked[1]) {
		gatewatch_destroy(w);
		return -ENOMEM;
	}
	return 0;
}

void gatewatch_destroy(struct gatewatch *w)
{
	activity_free(w->blocked[0]);
	activity_free(w->blocked[1]);
	w->blocked[0] = w->blocked[1] = NULL;
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->blocked_lock);
}

/* A platform name as a label: [a-z0-9_-], as policies name them; any
 * other byte '_' (a policy cannot give one today: belt and braces). */
static void label_copy(char out[POLICY_NAME_MAX + 1], const char *name)
{
	size_t i = 0;
	for (; i < POLICY_NAME_MAX && name[i]; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '-';
		out[i] = ok ? c : '_';
	}
	out[i] = '\0';
}

/* The index of platform, adding it while there is room (lock held when
 * add); GATEWATCH_PLATFORMS_MAX when it has none. */
static unsigned platform_find(struct gatewatch *w, const char *name)
{
	unsigned n = LOAD(w->nplatforms);
	for (unsigned i = 0; i < n; i++)
		if (strcmp(w->platforms[i].name, name) == 0)
			return i;
	return GATEWATCH_PLATFORMS_MAX;
}

static unsigned platform_add(struct gatewatch *w, const char *name)
{
	char label[POLICY_NAME_MAX + 1];
	label_copy(label, name);
	pthread_mutex_lock(&w->lock);
	unsigned i = platform_find(w, label);
	unsigned n = LOAD(w->nplatforms);
	if (i == GATEWATCH_PLATFORMS_MAX && n < GATEWATCH_PLATFORMS_MAX &&
	    label[0] && strcmp(label, "other") != 0) {
		platform_reset(&w->platforms[n], label);
		STORE(w->nplatforms, n + 1);
		i = n;
	}
	pthread_mutex_unlock(&w->lock);
	return i;
}

static unsigned line_find(struct gatewatch_platform *p, u32 major, u32 minor)
{
	unsigned n = LOAD(p->nlines);
	for (unsigned i = 2; i < n; i++)
		if (p->lines[i].major == major && p->lines[i].minor == minor)
			return i;
	return GATEWATCH_LINE_OTHER;
}

/* Add a line (lock held) if its kind has room: rule or seen. */
static unsigned line_add(struct gatewatch_platform *p, u32 major, u32 minor,
			 bool rule)
{
	unsigned i = line_find(p, major, minor);
	unsigned n = LOAD(p->nlines);
	if (i != GATEWATCH_LINE_OTHER)
		return i;
	if (rule ? p->rule_lines >= GATEWATCH_RULE_LINES_MAX
		 : p->seen_lines >= GATEWATCH_SEEN_LINES_MAX)
		return GATEWATCH_LINE_OTHER;
	p->lines[n].major = major;
	p->lines[n].minor = minor;
	if (rule)
		p->rule_lines++;
	else if (++p->seen_lines == GATEWATCH_SEEN_LINES_MAX)
		STORE(p->seen_full, true);
	STORE(p->nlines, n + 1);
	return n;
}

bool gatewatch_label_find(struct gatewatch *w, const char *platform,
			  unsigned policy_index, u64 version, bool valid,
			  u64 major, u64 minor, struct gatewatch_label *out)
{
	struct gatewatch_label l = {GATEWATCH_PLATFORMS_MAX,
				    GATEWATCH_LINE_UNPARSED};
	u64 e = platform && policy_index < POLICY_PLATFORMS_MAX
			? atomic_load_explicit(&w->pmap[policy_index],
					       memory_order_relaxed)
			: 0;
	if (e && e >> 8 == version) {
		l.platform = (u8)(e & 0xff);
	} else if (platform) {
		l.platform = (u8)platform_find(w, platform);
		if (l.platform == GATEWATCH_PLATFORMS_MAX &&
		    LOAD(w->nplatforms) < GATEWATCH_PLATFORMS_MAX)
			return false;
	}
	if (valid && (major > GATEWATCH_LINE_PART_MAX ||
		      minor > GATEWATCH_LINE_PART_MAX)) {
		l.line = GATEWATCH_LINE_OTHER;
	} else if (valid) {
		struct gatewatch_platform *p = &w->platforms[l.platform];
		l.line = (u8)line_find(p, (u32)major, (u32)minor);
		if (l.line == GATEWATCH_LINE_OTHER && !LOAD(p->seen_full))
			return false;
	}
	*out = l;
	return true;
}

struct gatewatch_label gatewatch_label(struct gatewatch *w,
				       const char *platform, bool valid,
				       u64 major, u64 minor)
{
	struct gatewatch_label l = {GATEWATCH_PLATFORMS_MAX,
				    GATEWATCH_LINE_UNPARSED};
	if (platform) {
		l.platform = (u8)platform_find(w, platform);
		if (l.platform == GATEWATCH_PLATFORMS_MAX &&
		    LOAD(w->nplatforms) < GATEWATCH_PLATFORMS_MAX)
			l.platform = (u8)platform_add(w, platform);
	}
	if (!valid)
		return l;
	if (major > GATEWATCH_LINE_PART_MAX ||
	    minor > GATEWATCH_LINE_PART_MAX) {
		l.line = GATEWATCH_LINE_OTHER;
		return l;
	}
	struct gatewatch_platform *p = &w->platforms[l.platform];
	l.line = (u8)line_find(p, (u32)major, (u32)minor);
	if (l.line != GATEWATCH_LINE_OTHER || LOAD(p->seen_full))
		return l;
	pthread_mutex_lock(&w->lock);
	l.line = (u8)line_add(p, (u32)major, (u32)minor, false);
	pthread_mutex_unlock(&w->lock);
	return l;
}

/* ---- the lines a policy's rules name --------------------------------- */

struct collect {
	struct gatewatch_rule_line *out;
	size_t n, cap;
	const char *platform;
	u8 policy_index;
};

static void put_line(struct collect *c, u64 major, u64 minor)
{
	if (c->n == c->cap ||
	    (major > GATEWATCH_LINE_PART_MAX && major != GATEWATCH_NO_LINE) ||
	    minor > GATEWATCH_LINE_PART_MAX)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->out[i].major == major && c->out[i].minor == minor &&
		    strcmp(c->out[i].platform, c->platform) == 0)
			return;
	snprintf(c->out[c->n].platform, sizeof(c->out[c->n].platform), "%s",
		 c->platform);
	c->out[c->n].policy_index = c->policy_index;
	c->out[c->n].major = (u32)major;
	c->out[c->n].minor = (u32)minor;
	c->n++;
}

static void put_range(struct collect *c, const struct policy_range *r)
{
	for (unsigned s = 0; s < r->r.nsets; s++)
		for (unsigned k = 0; k < r->r.set[s].n; k++)
			put_line(c, r->r.set[s].comp[k].major,
				 r->r.set[s].comp[k].minor);
}

static void put_rules(struct collect *c, const struct policy_rules *r)
{
	if (r->min_supported_text)
		put_line(c, r->min_supported.major, r->min_supported.minor);
	if (r->recommended_text)
		put_line(c, r->recommended.major, r->recommended.minor);
	for (unsigned i = 0; i < r->nblocked; i++)
		put_range(c, &r->blocked[i]);
	for (unsigned i = 0; i < r->ndeprecated; i++)
		put_range(c, &r->deprecated[i].range);
	for (unsigned i = 0; i < r->ncompat; i++)
		put_range(c, &r->compat[i]);
}

size_t gatewatch_rule_lines(const struct policy *p,
			    struct gatewatch_rule_line *out, size_t cap)
{
	struct collect c = {out, 0, cap, NULL, 0};
	for (unsigned i = 0; p && i < p->nplatforms; i++) {
		const struct policy_platform *pl = &p->platforms[i];
		c.platform = pl->name;
		c.policy_index = (u8)i;
		put_line(&c, GATEWATCH_NO_LINE, 0);
		put_rules(&c, &pl->rules);
		for (unsigned k = 0; k < pl->nchannels; k++)
			put_rules(&c, &pl->channels[k].rules);
		for (unsigned k = 0; k < pl->ncountries; k++)
			put_rules(&c, &pl->countries[k].rules);
	}
	return c.n;
}

void gatewatch_seed(struct gatewatch *w,
		    const struct gatewatch_rule_line *lines, size_t n,
		    u64 version)
{
	for (size_t i = 0; i < n; i++) {
		unsigned pi = platform_find(w, lines[i].platform);
		if (pi == GATEWATCH_PLATFORMS_MAX)
			pi = platform_add(w, lines[i].platform);
		if (lines[i].policy_index < POLICY_PLATFORMS_MAX)
			atomic_store_explicit(&w->pmap[lines[i].policy_index],
					      version << 8 | pi,
					      memory_order_relaxed);
		if (pi == GATEWATCH_PLATFORMS_MAX ||
		    lines[i].major == GATEWATCH_NO_LINE)
			continue;
		pthread_mutex_lock(&w->lock);
		line_add(&w->platforms[pi], lines[i].major, lines[i].minor,
			 true);
		pthread_mutex_unlock(&w->lock);
	}
	STORE(w->seeded_version, version);
}

/* ---- label texts -------------------------------------------------------- */

const char *gatewatch_platform_name(const struct gatewatch *w,
				    struct gatewatch_label l)
{
	return l.platform <= GATEWATCH_PLATFORMS_MAX
		       ? w->platforms[l.platform].name
		       : "other";
}

void gatewatch_line_name(const struct gatewatch *w, struct gatewatch_label l,
			 char out[GATEWATCH_LINE_BYTES])
{
	if (l.line == GATEWATCH_LINE_UNPARSED) {
		snprintf(out, GATEWATCH_LINE_BYTES, "unparsed");
		return;
	}
	if (l.line == GATEWATCH_LINE_OTHER ||
	    l.platform > GATEWATCH_PLATFORMS_MAX ||
	    l.line >= GATEWATCH_LINES_MAX) {
		snprintf(out, GATEWATCH_LINE_BYTES, "other");
		return;
	}
	const struct gatewatch_line *ln =
		&w->platforms[l.platform].lines[l.line];
	snprintf(out, GATEWATCH_LINE_BYTES, "%u.%u", ln->major, ln->minor);
}

void gatewatch_sanitize(const char *in, size_t len,
			char out[GATEWATCH_LOG_TEXT_BYTES])
{
	size_t i = 0;
	for (; in && i < len && i < GATEWATCH_LOG_TEXT_BYTES - 1; i++) {
		char c = in[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '+' ||
			  c == '_' || c == '-' || c == '/' ||
			  (c && strchr("<>=^~|*, ", c));
		out[i] = ok ? c : '?';
	}
	out[i] = '\0';
}

/* ---- blocked users ------------------------------------------------------ */

void gatewatch_blocked(struct gatewatch *w, struct gatewatch_label l, u64 user,
		       bool verified, u32 day)
{
	char line[GATEWATCH_LINE_BYTES];
	gatewatch_line_name(w, l, line);
	pthread_mutex_lock(&w->blocked_lock);
	/* Anyone may send unverified ones: they get the shared half of the
	 * tables, so they can never crowd out the verified. */
	if (verified)
		activity_observe(w->blocked[1], user,
				 gatewatch_platform_name(w, l), line, day);
	else
		activity_observe_shared(w->blocked[0], user,
					gatewatch_platform_name(w, l), line,
					day);
	pthread_mutex_unlock(&w->blocked_lock);
}

void gatewatch_blocked_users(struct gatewatch *w, const char *platform,
			     u32 today, u64 out[2])
{
	static const struct semver zero;
	struct activity_impact im;
	pthread_mutex_lock(&w->blocked_lock);
	for (unsigned v = 0; v < 2; v++) {
		activity_impact(w->blocked[v], platform, &zero, SEMVER_LENIENT,
				today, &im);
		out[v] = im.actives;
	}
	pthread_mutex_unlock(&w->blocked_lock);
}

/* ---- exposition --------------------------------------------------------- */

struct render_ctx {
	struct wbuf *b;
	const char *verified;
};

static void blocked_row(void *ctx, const char *platform,
			const char *version_text, u64 users)
{
	struct render_ctx *r = ctx;
	wbuf_puts(r->b, "tpwallet_client_policy_blocked_users{platform=\"");
	wbuf_puts(r->b, platform);
	wbuf_puts(r->b, "\",line=\"");
	wbuf_puts(r->b, version_text);
	wbuf_puts(r->b, "\",verified=\"");
	wbuf_puts(r->b, r->verified);
	wbuf_puts(r->b, "\"} ");
	wbuf_put_u64(r->b, users);
	wbuf_putc(r->b, '\n');
}

static void render_platform(struct wbuf *b, const struct gatewatch *w,
			    unsigned pi)
{
	const struct gatewatch_platform *p = &w->platforms[pi];
	unsigned n = LOAD(p->nlines);
	char line[GATEWATCH_LINE_BYTES];
	for (unsigned i = 0; i < n; i++) {
		struct gatewatch_label l = {(u8)pi, (u8)i};
		gatewatch_line_name(w, l, line);
		for (unsigned v = 0; v < GATEWATCH_VERDICTS; v++) {
			u64 c = atomic_load_explicit(&p->lines[i].decisions[v],
						     memory_order_relaxed);
			if (!c)
				continue;
			wbuf_puts(b, "tpwallet_client_policy_decisions_total{"
				     "platform=\"");
			wbuf_puts(b, p->name);
			wbuf_puts(b, "\",line=\"");
			wbuf_puts(b, line);
			wbuf_puts(b, "\",verdict=\"");
			wbuf_puts(b, verdict_names[v]);
			wbuf_puts(b, "\"} ");
			wbuf_put_u64(b, c);
			wbuf_putc(b, '\n');
		}
	}
}

void gatewatch_render(struct gatewatch *w, u32 today, struct wbuf *b)
{
	wbuf_puts(b, "# HELP tpwallet_client_policy_decisions_total Gate "
		     "decisions by platform, version line (major.minor) and "
		     "verdict.\n"
		     "# TYPE tpwallet_client_policy_decisions_total counter\n");
	unsigned n = LOAD(w->nplatforms);
	for (unsigned pi = 0; pi < n; pi++)
		render_platform(b, w, pi);
	render_platform(b, w, GATEWATCH_PLATFORMS_MAX);

	wbuf_puts(b, "# HELP tpwallet_client_policy_blocked_users Distinct "
		     "users the gate refused in the last 7 days (today "
		     "included), each at the line last refused; verified: "
		     "the request's credential authenticated.\n"
		     "# TYPE tpwallet_client_policy_blocked_users gauge\n");
	struct render_ctx r = {b, "true"};
	pthread_mutex_lock(&w->blocked_lock);
	activity_buckets(w->blocked[1], today, blocked_row, &r);
	r.verified = "false";
	activity_buckets(w->blocked[0], today, blocked_row, &r);
	pthread_mutex_unlock(&w->blocked_lock);
}
