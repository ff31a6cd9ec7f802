/*
 * policy.c - the client-version policy: strict parsing of the document,
 * canonical rendering, structural diff, overrides and the per-request
 * decision (see policy.h for the contract, docs/client-policy.md for the
 * document).
 *
 * Parsing goes through a jansson tree (duplicate keys refused) and copies
 * what it keeps into one arena owned by the policy, so the policy is a
 * single allocation graph freed at once and the tree is dropped before
 * policy_parse returns.  Every check runs with the JSON path of the value
 * at hand, so an error always says where it is.  Ranges are compiled at
 * parse time; the decision only matches and compares, so it never
 * allocates.  Rendering builds a jansson tree back from the parsed
 * structs (never from the source text), which is what makes it canonical.
 */
#include "core/policy.h"

#include "core/parse.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

/* --- names ---------------------------------------------------------------- */

static const char *const verdict_names[] = {
#define X(e, s) s,
	POLICY_VERDICT_MAP(X)
#undef X
};

static const char *const reason_names[] = {
#define X(e, s) s,
	POLICY_REASON_MAP(X)
#undef X
};

static const char *const severity_names[] = {"info", "warning", "critical"};
static const char *const missing_names[] = {"allow", "block"};
static const char *const mode_names[] = {"strict", "lenient"};

const char *policy_verdict_name(enum policy_verdict v)
{
	return (unsigned)v < POLICY_VERDICTS ? verdict_names[v] : "unknown";
}

const char *policy_reason_name(enum policy_reason r)
{
	return (unsigned)r < POLICY_REASONS ? reason_names[r] : "unknown";
}

/* --- arena -----------------------------------------------------------------
 * Chunks of ARENA_CHUNK bytes (or one chunk for a larger block), zeroed,
 * 16-byte aligned; freed all at once by policy_free. */

#define ARENA_CHUNK (64 * 1024)

struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

static void *arena_alloc(struct chunk **head, size_t size)
{
	struct chunk *c = *head;
	size_t need = (size + 15) & ~(size_t)15;
	void *p;

	if (need < size)
		return NULL;
	if (!c || c->cap - c->used < need) {
		size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
		c = calloc(1, sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->next = *head;
		*head = c;
	}
	p = c->data + c->used;
	c->used += need;
	return p;
}

static void arena_free(struct chunk *c)
{
	while (c) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
}

static char *arena_strndup(struct chunk **head, const char *s, size_t len)
{
	char *d = arena_alloc(head, len + 1);
	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

/* --- dates -----------------------------------------------------------------
 * RFC 3339 restricted to one form: YYYY-MM-DDTHH:MM:SSZ, years 1970..9999,
 * whole seconds, UTC, no leap second. */

#define DATE_LEN 20

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to January 1st of y (y >= 1970). */
static int64_t days_before_year(int64_t y)
{
	int64_t p = y - 1;
	return (y - 1970) * 365 + (p / 4 - p / 100 + p / 400) -
	       (1969 / 4 - 1969 / 100 + 1969 / 400);
}

static int64_t days_before_month(int64_t y, int m)
{
	int64_t d = 0;
	for (int i = 1; i < m; i++)
		d += days_in_month(y, i);
	return d;
}

/* A fixed-width field of n digits (zero-padded: "05"). */
static bool digits(const char *s, size_t n, int *out)
{
	u64 v;
	if (parse_digits(s, n, &v) != 0 || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

/* 0, or a reason the text is not a date. */
static const char *parse_date(const char *s, size_t len, int64_t *out)
{
	int y, mo, d, h, mi, se;

	if (len != DATE_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z' || !digits(s, 4, &y) ||
	    !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
	    !digits(s + 17, 2, &se))
		return "not an RFC 3339 UTC date-time (YYYY-MM-DDTHH:MM:SSZ)";
	if (y < 1970)
		return "year before 1970";
	if (mo < 1 || mo > 12)
		return "no such month";
	if (d < 1 || d > days_in_month(y, mo))
		return "no such day in that month";
	if (h > 23 || mi > 59 || se > 59)
		return "no such time of day";
	*out = ((days_before_year(y) + days_before_month(y, mo) + d - 1) * 24 +
		h) * 3600 +
	       mi * 60 + se;
	return NULL;
}

/* n decimal digits of v, zero-padded, at buf. */
static void put_digits(char *buf, int64_t v, int n)
{
	while (n-- > 0) {
		buf[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

static void format_date(int64_t t, char buf[DATE_LEN + 1]);

const char *policy_parse_time(const char *s, size_t len, int64_t *out)
{
	return parse_date(s, len, out);
}

int policy_format_time(int64_t t, char out[POLICY_TIME_TEXT_BYTES])
{
	if (t < 0 || t > INT64_C(253402300799)) /* 9999-12-31T23:59:59Z */
		return -ERANGE;
	format_date(t, out);
	return 0;
}

/* t is a time parse_date accepted: 1970..9999. */
static void format_date(int64_t t, char buf[DATE_LEN + 1])
{
	int64_t days = t / 86400, rem = t % 86400;
	int64_t y = 1970 + days / 366;
	int m = 1;

	while (days_before_year(y + 1) <= days)
		y++;
	days -= days_before_year(y);
	while (days >= days_in_month(y, m))
		days -= days_in_month(y, m++);
	memcpy(buf, "0000-00-00T00:00:00Z", DATE_LEN + 1);
	put_digits(buf, y, 4);
	put_digits(buf + 5, m, 2);
	put_digits(buf + 8, days + 1, 2);
	put_digits(buf + 11, rem / 3600, 2);
	put_digits(buf + 14, rem / 60 % 60, 2);
	put_digits(buf + 17, rem % 60, 2);
}

/* --- errors and paths ------------------------------------------------------
 */

struct ctx {
	struct chunk *arena;
	const struct policy *p; /* once its platforms are parsed */
	struct policy_err *err;
	size_t plen;
	unsigned nranges;
	char path[POLICY_PATH_MAX];
};

/* Messages go into problem+json bodies: keep them printable ASCII. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

static int bad(struct ctx *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct ctx *c, int code, const char *fmt, ...)
{
	struct policy_err *e = c->err;
	const char *path = c->plen ? c->path : "$";
	va_list ap;
	int n;

	if (!e)
		return code;
	snprintf(e->path, sizeof(e->path), "%s", path);
	n = snprintf(e->msg, sizeof(e->msg), "%s: ", path);
	if (n < 0 || (size_t)n >= sizeof(e->msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	sanitize(e->path);
	sanitize(e->msg);
	return code;
}

/* Append to the path, cut with "..." when it would not fit. */
static void path_append(struct ctx *c, const char *s, size_t len)
{
	size_t room = sizeof(c->path) - 1 - c->plen;

	if (len > room) {
		len = room > 3 ? room - 3 : 0;
		memcpy(c->path + c->plen, s, len);
		c->plen += len;
		room -= len;
		len = room < 3 ? room : 3;
		memcpy(c->path + c->plen, "...", len);
		c->plen += len;
	} else {
		memcpy(c->path + c->plen, s, len);
		c->plen += len;
	}
	c->path[c->plen] = '\0';
}

static size_t push_key(struct ctx *c, const char *key)
{
	size_t mark = c->plen;
	if (c->plen)
		path_append(c, ".", 1);
	path_append(c, key, strlen(key));
	return mark;
}

static size_t push_index(struct ctx *c, size_t i)
{
	size_t mark = c->plen;
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "[%zu]", i);
	path_append(c, buf, (size_t)n);
	return mark;
}

static void pop(struct ctx *c, size_t mark)
{
	c->plen = mark;
	c->path[mark] = '\0';
}

/* --- value checks ------------------------------------------------------------
 */

static bool is_lower(char ch)
{
	return ch >= 'a' && ch <= 'z';
}
static bool is_upper(char ch)
{
	return ch >= 'A' && ch <= 'Z';
}
static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}
static bool is_alnum(char ch)
{
	return is_lower(ch) || is_upper(ch) || is_digit(ch);
}

/* Platform and channel names: [a-z][a-z0-9_-]*, 1..POLICY_NAME_MAX. */
static bool valid_name(const char *s, size_t len)
{
	if (len == 0 || len > POLICY_NAME_MAX || !is_lower(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower(s[i]) && !is_digit(s[i]) && s[i] != '_' &&
		    s[i] != '-')
			return false;
	return true;
}

/* Flag names and notice ids: [A-Za-z0-9][A-Za-z0-9_-]*, 1..POLICY_ID_MAX
 * (no '.' or ':', so "recommended.<platform>" and "<flag>:<user>" keys
 * cannot collide). */
static bool valid_id(const char *s, size_t len)
{
	if (len == 0 || len > POLICY_ID_MAX || !is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static bool valid_country(const char *s, size_t len)
{
	return len == 2 && is_upper(s[0]) && is_upper(s[1]);
}

/* https://host..., or http://localhost[:port][/...] for tests. */
static const char *check_url(const char *s, size_t len)
{
	static const char https[] = "https://";
	static const char local[] = "http://localhost";
	size_t host;

	if (len > POLICY_URL_MAX)
		return "longer than POLICY_URL_MAX bytes";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return "contains a space, control or non-ASCII byte";
	if (len >= sizeof(https) - 1 &&
	    memcmp(s, https, sizeof(https) - 1) == 0) {
		host = sizeof(https) - 1;
		if (host == len || s[host] == '/' || s[host] == ':' ||
		    s[host] == '?' || s[host] == '#')
			return "has no host";
		return NULL;
	}
	if (len >= sizeof(local) - 1 &&
	    memcmp(s, local, sizeof(local) - 1) == 0 &&
	    (len == sizeof(local) - 1 || s[sizeof(local) - 1] == ':' ||
	     s[sizeof(local) - 1] == '/'))
		return NULL;
	return "must be an https:// URL (or http://localhost for tests)";
}

/* A JSON string of 1..max bytes without control characters (newline and
 * tab allowed when multiline). */
static int get_string(struct ctx *c, const json_t *v, size_t max,
		      bool multiline, const char **s, size_t *len)
{
	if (!json_is_string(v))
		return bad(c, -EINVAL, "not a string");
	*s = json_string_value(v);
	*len = json_string_length(v);
	if (*len == 0)
		return bad(c, -EINVAL, "empty string");
	if (*len > max)
		return bad(c, -E2BIG, "longer than %zu bytes", max);
	for (size_t i = 0; i < *len; i++) {
		unsigned char ch = (unsigned char)(*s)[i];
		if ((ch < 0x20 || ch == 0x7f) &&
		    !(multiline && (ch == '\n' || ch == '\t')))
			return bad(c, -EINVAL, "contains a control character");
	}
	return 0;
}

static int get_choice(struct ctx *c, const json_t *v, const char *const *names,
		      size_t n, u8 *out)
{
	if (json_is_string(v))
		for (size_t i = 0; i < n; i++)
			if (strcmp(json_string_value(v), names[i]) == 0) {
				*out = (u8)i;
				return 0;
			}
	if (n == 2)
		return bad(c, -EINVAL, "must be \"%s\" or \"%s\"", names[0],
			   names[1]);
	return bad(c, -EINVAL, "must be \"%s\", \"%s\" or \"%s\"", names[0],
		   names[1], names[2]);
}

static int get_date(struct ctx *c, const json_t *v, int64_t *out)
{
	const char *why;
	if (!json_is_string(v))
		return bad(c, -EINVAL, "not a string");
	why = parse_date(json_string_value(v), json_string_length(v), out);
	return why ? bad(c, -EINVAL, "%s", why) : 0;
}

static int get_version(struct ctx *c, const json_t *v, const char **text,
		       struct semver *out)
{
	struct semver_err se;
	const char *s;
	size_t len;
	char *copy;
	int ret = get_string(c, v, SEMVER_TEXT_MAX, false, &s, &len);

	if (ret)
		return ret;
	copy = arena_strndup(&c->arena, s, len);
	if (!copy)
		return bad(c, -ENOMEM, "out of memory");
	if (semver_parse(copy, len, SEMVER_STRICT, out, &se))
		return bad(c, -EINVAL, "not a SemVer 2.0.0 version (%s)",
			   se.msg);
	*text = copy;
	return 0;
}

/* npm reads an empty (or blank) range as "*": every version, and so an
 * empty alternative ("3.x ||", "||").  In a policy that is never what
 * was meant (a blocked "" would lock out every client), so a range and
 * each of its alternatives must say something. */
static bool range_blank(const char *s, size_t len)
{
	bool blank = true;
	for (size_t i = 0; i < len; i++) {
		if (i + 1 < len && s[i] == '|' && s[i + 1] == '|') {
			if (blank)
				return true;
			blank = true;
			i++;
		} else if (s[i] != ' ' && s[i] != '\t') {
			blank = false;
		}
	}
	return blank;
}

static int get_range(struct ctx *c, const json_t *v, struct policy_range *r)
{
	struct semver_err se;
	const char *s;
	size_t len;
	int ret;

	if (!json_is_string(v))
		return bad(c, -EINVAL, "not a string");
	s = json_string_value(v);
	len = json_string_length(v);
	if (len > SEMVER_RANGE_TEXT_MAX)
		return bad(c, -E2BIG, "longer than %d bytes",
			   SEMVER_RANGE_TEXT_MAX);
	if (range_blank(s, len))
		return bad(c, -EINVAL,
			   "empty: a range must name versions (\"*\" "
			   "for all)");
	if (++c->nranges > POLICY_RANGES_TOTAL_MAX)
		return bad(c, -E2BIG, "more than %d ranges in the document",
			   POLICY_RANGES_TOTAL_MAX);
	ret = semver_range_compile(s, len, &r->r, &se);
	if (ret)
		return bad(c, ret == -E2BIG ? -E2BIG : -EINVAL,
			   "not a version range (%s)", se.msg);
	r->text = arena_strndup(&c->arena, s, len);
	return r->text ? 0 : bad(c, -ENOMEM, "out of memory");
}

static int check_keys(struct ctx *c, const json_t *obj,
		      const char *const *allowed, size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;
		for (i = 0; i < n; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (i == n) {
			push_key(c, key);
			return bad(c, -EINVAL, "unknown key");
		}
	}
	return 0;
}

static int need_object(struct ctx *c, const json_t *v, size_t max)
{
	if (!json_is_object(v))
		return bad(c, -EINVAL, "not an object");
	if (json_object_size(v) > max)
		return bad(c, -E2BIG, "more than %zu entries", max);
	return 0;
}

/* An object whose keys are all in allowed (so its size is bounded). */
static int need_keys(struct ctx *c, const json_t *v, const char *const *allowed,
		     size_t n)
{
	if (!json_is_object(v))
		return bad(c, -EINVAL, "not an object");
	return check_keys(c, v, allowed, n);
}

static int need_array(struct ctx *c, const json_t *v, size_t max)
{
	if (!json_is_array(v))
		return bad(c, -EINVAL, "not an array");
	if (json_array_size(v) > max)
		return bad(c, -E2BIG, "more than %zu entries", max);
	return 0;
}

/* --- language tags -----------------------------------------------------------
 * The well-formed subset of RFC 5646 used here: subtags of 1..8 ASCII
 * letters and digits joined by '-', the first 2..3 letters.  Canonical
 * case (RFC 5646 2.1.1): language lower, 2-letter region upper, 4-letter
 * script title case, the rest lower; after a singleton all lower. */

static bool canon_tag(const char *s, size_t len, char out[POLICY_TAG_MAX + 1])
{
	size_t i = 0, nsub = 0;
	bool after_singleton = false;

	if (len == 0 || len > POLICY_TAG_MAX)
		return false;
	while (i < len) {
		size_t j = i;
		while (j < len && is_alnum(s[j]))
			j++;
		size_t n = j - i;
		if (n == 0 || n > 8 || (j < len && s[j] != '-') ||
		    (j + 1 == len))
			return false;
		for (size_t k = i; k < j; k++) {
			char ch = s[k];
			bool up;
			if (nsub == 0 && !is_lower(ch) && !is_upper(ch))
				return false;
			up = !after_singleton && nsub > 0 &&
			     (n == 2 || (n == 4 && k == i));
			if (up && is_lower(ch))
				ch = (char)(ch - 'a' + 'A');
			else if (!up && is_upper(ch))
				ch = (char)(ch - 'A' + 'a');
			out[k] = ch;
		}
		if (nsub == 0 && (n < 2 || n > 3))
			return false;
		if (n == 1)
			after_singleton = true;
		if (j < len)
			out[j] = '-';
		nsub++;
		i = j + 1;
	}
	out[len] = '\0';
	return true;
}

static int cmp_locale(const void *a, const void *b)
{
	return strcmp(((const struct policy_locale_text *)a)->tag,
		      ((const struct policy_locale_text *)b)->tag);
}

static int get_text(struct ctx *c, const json_t *v, struct policy_text *t)
{
	struct policy_locale_text *loc;
	const char *key;
	json_t *val;
	size_t n = 0;
	int ret;

	if ((ret = need_object(c, v, POLICY_LOCALES_MAX)))
		return ret;
	if (!json_object_get(v, "default"))
		return bad(c, -EINVAL, "no \"default\" text");
	loc = arena_alloc(&c->arena, json_object_size(v) * sizeof(*loc));
	if (!loc && json_object_size(v) > 0)
		return bad(c, -ENOMEM, "out of memory");
	json_object_foreach((json_t *)v, key, val)
	{
		char tag[POLICY_TAG_MAX + 1];
		size_t mark = push_key(c, key), len;
		const char *s;

		if ((ret = get_string(c, val, POLICY_TEXT_MAX, true, &s, &len)))
			return ret;
		if (strcmp(key, "default") == 0) {
			t->def = arena_strndup(&c->arena, s, len);
			if (!t->def)
				return bad(c, -ENOMEM, "out of memory");
			pop(c, mark);
			continue;
		}
		if (!canon_tag(key, strlen(key), tag))
			return bad(
				c, -EINVAL,
				"not a BCP 47 language tag (or \"default\")");
		for (size_t i = 0; i < n; i++)
			if (strcmp(loc[i].tag, tag) == 0)
				return bad(c, -EINVAL,
					   "same language tag as %s",
					   loc[i].tag);
		loc[n].tag = arena_strndup(&c->arena, tag, strlen(tag));
		loc[n].text = arena_strndup(&c->arena, s, len);
		if (!loc[n].tag || !loc[n].text)
			return bad(c, -ENOMEM, "out of memory");
		n++;
		pop(c, mark);
	}
	qsort(loc, n, sizeof(*loc), cmp_locale);
	t->n = (u16)n;
	t->loc = loc;
	return 0;
}

/* --- rules
 * ---------------------------------------------------------------------- */

static const char *const rule_keys[] = {
	"min_supported",  "recommended",     "recommended_rollout",
	"blocked",	  "deprecated",	     "compat",
	"upgrade_url",	  "messages",	     "release_notes",
	"blocked_status", "missing_version", "version_mode",
	"channels",	  "countries",
};
#define RULE_KEYS      12 /* the level keys; the platform adds two */
#define RULE_KEYS_BASE 14
#define POLICY_K_ALL   0xfffu

static int get_range_list(struct ctx *c, const json_t *v,
			  const struct policy_range **out, u16 *n)
{
	struct policy_range *r;
	size_t i;
	json_t *e;
	int ret;

	if ((ret = need_array(c, v, POLICY_RANGES_MAX)))
		return ret;
	r = arena_alloc(&c->arena, json_array_size(v) * sizeof(*r) + 1);
	if (!r)
		return bad(c, -ENOMEM, "out of memory");
	json_array_foreach(v, i, e)
	{
		size_t mark = push_index(c, i);
		if ((ret = get_range(c, e, &r[i])))
			return ret;
		pop(c, mark);
	}
	*out = r;
	*n = (u16)json_array_size(v);
	return 0;
}

static int get_deprecations(struct ctx *c, const json_t *v,
			    struct policy_rules *r)
{
	static const char *const keys[] = {"range", "since", "sunset"};
	struct policy_deprecation *d;
	size_t i;
	json_t *e;
	int ret;

	if ((ret = need_array(c, v, POLICY_RANGES_MAX)))
		return ret;
	d = arena_alloc(&c->arena, json_array_size(v) * sizeof(*d) + 1);
	if (!d)
		return bad(c, -ENOMEM, "out of memory");
	json_array_foreach(v, i, e)
	{
		size_t mark = push_index(c, i), m2;
		const json_t *f;

		if ((ret = need_keys(c, e, keys, 3)))
			return ret;
		d[i].since_s = d[i].sunset_s = POLICY_TIME_NONE;
		f = json_object_get(e, "range");
		if (!f)
			return bad(c, -EINVAL, "no \"range\"");
		m2 = push_key(c, "range");
		if ((ret = get_range(c, f, &d[i].range)))
			return ret;
		pop(c, m2);
		if ((f = json_object_get(e, "since"))) {
			m2 = push_key(c, "since");
			if ((ret = get_date(c, f, &d[i].since_s)))
				return ret;
			pop(c, m2);
		}
		if ((f = json_object_get(e, "sunset"))) {
			m2 = push_key(c, "sunset");
			if ((ret = get_date(c, f, &d[i].sunset_s)))
				return ret;
			if (d[i].since_s != POLICY_TIME_NONE &&
			    d[i].sunset_s < d[i].since_s)
				return bad(c, -EINVAL, "before \"since\"");
			pop(c, m2);
		}
		pop(c, mark);
	}
	r->deprecated = d;
	r->ndeprecated = (u16)json_array_size(v);
	return 0;
}

static int get_messages(struct ctx *c, const json_t *v, struct policy_rules *r)
{
	int ret;

	if ((ret = need_keys(c, v, verdict_names, POLICY_VERDICTS)))
		return ret;
	for (int i = 0; i < POLICY_VERDICTS; i++) {
		const json_t *t = json_object_get(v, verdict_names[i]);
		if (t) {
			size_t mark = push_key(c, verdict_names[i]);
			if ((ret = get_text(c, t, &r->messages[i])))
				return ret;
			pop(c, mark);
		}
	}
	return 0;
}

static int get_rule(struct ctx *c, int k, const json_t *v,
		    struct policy_rules *r)
{
	const char *s;
	size_t len;
	u8 choice = 0;
	int ret = 0;

	switch (k) {
	case 0:
		return get_version(c, v, &r->min_supported_text,
				   &r->min_supported);
	case 1: return get_version(c, v, &r->recommended_text, &r->recommended);
	case 2:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 100)
			return bad(c, -EINVAL,
				   "must be an integer from 0 to 100");
		r->recommended_rollout = (u8)json_integer_value(v);
		return 0;
	case 3: return get_range_list(c, v, &r->blocked, &r->nblocked);
	case 4: return get_deprecations(c, v, r);
	case 5: return get_range_list(c, v, &r->compat, &r->ncompat);
	case 6: {
		const char *why;
		if (!json_is_string(v))
			return bad(c, -EINVAL, "not a string");
		s = json_string_value(v);
		len = json_string_length(v);
		if ((why = check_url(s, len)))
			return bad(c, len > POLICY_URL_MAX ? -E2BIG : -EINVAL,
				   "%s", why);
		r->upgrade_url = arena_strndup(&c->arena, s, len);
		return r->upgrade_url ? 0 : bad(c, -ENOMEM, "out of memory");
	}
	case 7: return get_messages(c, v, r);
	case 8: return get_text(c, v, &r->release_notes);
	case 9:
		if (!json_is_integer(v) || (json_integer_value(v) != 426 &&
					    json_integer_value(v) != 403))
			return bad(c, -EINVAL, "must be 426 or 403");
		r->blocked_status = (u16)json_integer_value(v);
		return 0;
	case 10:
		ret = get_choice(c, v, missing_names, 2, &choice);
		r->missing_version = choice;
		return ret;
	case 11:
		ret = get_choice(c, v, mode_names, 2, &choice);
		r->version_mode = choice;
		return ret;
	}
	return ret;
}

static int get_rules(struct ctx *c, const json_t *v, struct policy_rules *r,
		     bool base)
{
	int ret;

	if (!json_is_object(v))
		return bad(c, -EINVAL, "not an object");
	if (!base) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val)
		{
			(void)val;
			if (strcmp(key, "channels") == 0 ||
			    strcmp(key, "countries") == 0) {
				push_key(c, key);
				return bad(c, -EINVAL,
					   "levels do not nest: only a "
					   "platform has channels and "
					   "countries");
			}
		}
	}
	if ((ret = check_keys(c, v, rule_keys,
			      base ? RULE_KEYS_BASE : RULE_KEYS)))
		return ret;
	if (base) {
		r->set = POLICY_K_ALL;
		r->recommended_rollout = 100;
		r->blocked_status = 426;
		r->missing_version = POLICY_MISSING_ALLOW;
		r->version_mode = SEMVER_STRICT;
	}
	for (int k = 0; k < RULE_KEYS; k++) {
		const json_t *f = json_object_get(v, rule_keys[k]);
		size_t mark;
		if (!f)
			continue;
		mark = push_key(c, rule_keys[k]);
		if ((ret = get_rule(c, k, f, r)))
			return ret;
		pop(c, mark);
		r->set |= 1u << k;
	}
	return 0;
}

static int cmp_level(const void *a, const void *b)
{
	return strcmp(((const struct policy_level *)a)->name,
		      ((const struct policy_level *)b)->name);
}

static int get_levels(struct ctx *c, const json_t *v, bool countries,
		      const struct policy_level **out, u16 *n)
{
	struct policy_level *l;
	const char *key;
	json_t *val;
	size_t i = 0;
	int ret;

	if ((ret = need_object(c, v,
			       countries ? POLICY_COUNTRIES_MAX
					 : POLICY_CHANNELS_MAX)))
		return ret;
	l = arena_alloc(&c->arena, json_object_size(v) * sizeof(*l) + 1);
	if (!l)
		return bad(c, -ENOMEM, "out of memory");
	json_object_foreach((json_t *)v, key, val)
	{
		size_t mark = push_key(c, key), len = strlen(key);
		if (countries ? !valid_country(key, len)
			      : !valid_name(key, len))
			return bad(c, -EINVAL, "%s",
				   countries
					   ? "not an ISO 3166-1 alpha-2 "
					     "country code (two capitals)"
					   : "not a channel name "
					     "([a-z][a-z0-9_-]*, at most 32)");
		l[i].name = arena_strndup(&c->arena, key, len);
		if (!l[i].name)
			return bad(c, -ENOMEM, "out of memory");
		if ((ret = get_rules(c, val, &l[i].rules, false)))
			return ret;
		pop(c, mark);
		i++;
	}
	qsort(l, i, sizeof(*l), cmp_level);
	*out = l;
	*n = (u16)i;
	return 0;
}

/* The rules of up to three levels, later ones first when picking. */
struct view {
	const struct policy_rules *lv[3];
	int n;
};

static const struct policy_rules *pick(const struct view *w, u32 key)
{
	for (int i = w->n - 1; i > 0; i--)
		if (w->lv[i]->set & key)
			return w->lv[i];
	return w->lv[0];
}

/* min_supported <= recommended must hold for every combination of
 * platform, channel and country that a request can pick. */
static int check_combination(struct ctx *c, const struct policy_platform *p,
			     const struct policy_level *ch,
			     const struct policy_level *co)
{
	struct view w = {{&p->rules}, 1};
	const struct policy_rules *rmin, *rrec;
	const char *kind[3] = {NULL, NULL, NULL};
	const char *name[3] = {NULL, NULL, NULL};
	int imin = 0, irec = 0, i;

	if (ch) {
		kind[w.n] = "channels";
		name[w.n] = ch->name;
		w.lv[w.n++] = &ch->rules;
	}
	if (co) {
		kind[w.n] = "countries";
		name[w.n] = co->name;
		w.lv[w.n++] = &co->rules;
	}
	rmin = pick(&w, POLICY_K_MIN_SUPPORTED);
	rrec = pick(&w, POLICY_K_RECOMMENDED);
	if (!rmin->min_supported_text || !rrec->recommended_text ||
	    semver_compare(&rmin->min_supported, &rrec->recommended) <= 0)
		return 0;
	for (i = 0; i < w.n; i++) {
		if (w.lv[i] == rmin)
			imin = i;
		if (w.lv[i] == rrec)
			irec = i;
	}
	/* Blame the later of the two levels: that is where it went wrong. */
	i = imin > irec ? imin : irec;
	if (i > 0) {
		push_key(c, kind[i]);
		push_key(c, name[i]);
	}
	push_key(c, imin > irec ? "min_supported" : "recommended");
	if (imin != irec)
		return bad(c, -EINVAL,
			   "min_supported %s is above recommended %s "
			   "(where both apply)",
			   rmin->min_supported_text, rrec->recommended_text);
	return bad(c, -EINVAL, "min_supported %s is above recommended %s",
		   rmin->min_supported_text, rrec->recommended_text);
}

static int check_platform(struct ctx *c, const struct policy_platform *p)
{
	int ret;
	for (int i = -1; i < (int)p->nchannels; i++)
		for (int j = -1; j < (int)p->ncountries; j++) {
			size_t mark = c->plen;
			ret = check_combination(
				c, p, i < 0 ? NULL : &p->channels[i],
				j < 0 ? NULL : &p->countries[j]);
			if (ret)
				return ret;
			pop(c, mark);
		}
	return 0;
}

/* The murmur3 state after "<group>:", so that a bucket per request only
 * hashes the user: the same value as rollout_bucket(group, user). */
static void hash_prefix(struct rollout_murmur3 *m, const char *group,
			size_t len)
{
	rollout_murmur3_init(m, 0);
	rollout_murmur3_update(m, group, len);
	rollout_murmur3_update(m, ":", 1);
}

static int get_platform(struct ctx *c, const char *name, const json_t *v,
			struct policy_platform *p)
{
	const json_t *f;
	size_t len = strlen(name), mark;
	char group[sizeof("recommended.") + POLICY_NAME_MAX];
	int ret, n;

	if (!valid_name(name, len))
		return bad(c, -EINVAL,
			   "not a platform name ([a-z][a-z0-9_-]*, at most "
			   "32)");
	p->name = arena_strndup(&c->arena, name, len);
	n = snprintf(group, sizeof(group), "recommended.%s", name);
	p->recommended_group = arena_strndup(&c->arena, group, (size_t)n);
	if (!p->name || !p->recommended_group)
		return bad(c, -ENOMEM, "out of memory");
	hash_prefix(&p->recommended_prefix, group, (size_t)n);
	if ((ret = get_rules(c, v, &p->rules, true)))
		return ret;
	if ((f = json_object_get(v, "channels"))) {
		mark = push_key(c, "channels");
		if ((ret = get_levels(c, f, false, &p->channels,
				      &p->nchannels)))
			return ret;
		pop(c, mark);
	}
	if ((f = json_object_get(v, "countries"))) {
		mark = push_key(c, "countries");
		if ((ret = get_levels(c, f, true, &p->countries,
				      &p->ncountries)))
			return ret;
		pop(c, mark);
	}
	return check_platform(c, p);
}

/* --- notices and flags
 * ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A non-empty set of platform names or country codes, sorted. */
static int get_name_set(struct ctx *c, const json_t *v, bool countries,
			const char *const **out, u16 *n)
{
	size_t max = countries ? POLICY_COUNTRIES_MAX : POLICY_TARGETS_MAX;
	const char **s;
	size_t i;
	json_t *e;
	int ret;

	if ((ret = need_array(c, v, max)))
		return ret;
	if (json_array_size(v) == 0)
		return bad(c, -EINVAL,
			   "empty list (leave the key out to target all)");
	s = arena_alloc(&c->arena, json_array_size(v) * sizeof(*s));
	if (!s)
		return bad(c, -ENOMEM, "out of memory");
	json_array_foreach(v, i, e)
	{
		size_t mark = push_index(c, i);
		const char *t = json_string_value(e);
		size_t len = json_string_length(e);
		if (!json_is_string(e) ||
		    (countries ? !valid_country(t, len) : !valid_name(t, len)))
			return bad(c, -EINVAL, "%s",
				   countries ? "not an ISO 3166-1 alpha-2 "
					       "country code (two capitals)"
					     : "not a platform name");
		for (size_t j = 0; j < i; j++)
			if (strcmp(s[j], t) == 0)
				return bad(c, -EINVAL, "listed twice");
		s[i] = arena_strndup(&c->arena, t, len);
		if (!s[i])
			return bad(c, -ENOMEM, "out of memory");
		pop(c, mark);
	}
	qsort(s, i, sizeof(*s), cmp_str);
	*out = s;
	*n = (u16)i;
	return 0;
}

/* The document's platforms among names, as a bit set, so that the
 * decision compares an index rather than strings. */
static u32 platform_mask(const struct ctx *c, const char *const *names, u16 n)
{
	u32 mask = 0;
	for (u16 i = 0; i < c->p->nplatforms; i++)
		for (u16 j = 0; j < n; j++)
			if (strcmp(c->p->platforms[i].name, names[j]) == 0)
				mask |= (u32)1 << i;
	return mask;
}

static int get_optional_date(struct ctx *c, const json_t *obj, const char *key,
			     int64_t *out)
{
	const json_t *f = json_object_get(obj, key);
	size_t mark;
	int ret;

	*out = POLICY_TIME_NONE;
	if (!f)
		return 0;
	mark = push_key(c, key);
	if ((ret = get_date(c, f, out)))
		return ret;
	pop(c, mark);
	return 0;
}

static int get_notice(struct ctx *c, const json_t *v, struct policy_notice *n)
{
	static const char *const keys[] = {
		"id",	     "severity", "text",
		"starts_at", "ends_at",	 "expected_resolution_at",
		"platforms",
	};
	const json_t *f;
	const char *s;
	size_t mark, len;
	int ret;

	if ((ret = need_keys(c, v, keys, 7)))
		return ret;
	if (!(f = json_object_get(v, "id")))
		return bad(c, -EINVAL, "no \"id\"");
	mark = push_key(c, "id");
	if ((ret = get_string(c, f, POLICY_ID_MAX, false, &s, &len)))
		return ret;
	if (!valid_id(s, len))
		return bad(c, -EINVAL, "not an id ([A-Za-z0-9][A-Za-z0-9_-]*)");
	if (!(n->id = arena_strndup(&c->arena, s, len)))
		return bad(c, -ENOMEM, "out of memory");
	pop(c, mark);
	if (!(f = json_object_get(v, "severity")))
		return bad(c, -EINVAL, "no \"severity\"");
	mark = push_key(c, "severity");
	if ((ret = get_choice(c, f, severity_names, 3, &n->severity)))
		return ret;
	pop(c, mark);
	if (!(f = json_object_get(v, "text")))
		return bad(c, -EINVAL, "no \"text\"");
	mark = push_key(c, "text");
	if ((ret = get_text(c, f, &n->text)))
		return ret;
	pop(c, mark);
	if ((ret = get_optional_date(c, v, "starts_at", &n->starts_at_s)) ||
	    (ret = get_optional_date(c, v, "ends_at", &n->ends_at_s)) ||
	    (ret = get_optional_date(c, v, "expected_resolution_at",
				     &n->expected_resolution_at_s)))
		return ret;
	if (n->starts_at_s != POLICY_TIME_NONE) {
		if (n->ends_at_s != POLICY_TIME_NONE &&
		    n->ends_at_s <= n->starts_at_s) {
			push_key(c, "ends_at");
			return bad(c, -EINVAL, "not after starts_at");
		}
		if (n->expected_resolution_at_s != POLICY_TIME_NONE &&
		    n->expected_resolution_at_s < n->starts_at_s) {
			push_key(c, "expected_resolution_at");
			return bad(c, -EINVAL, "before starts_at");
		}
	}
	if ((f = json_object_get(v, "platforms"))) {
		mark = push_key(c, "platforms");
		if ((ret = get_name_set(c, f, false, &n->platforms,
					&n->nplatforms)))
			return ret;
		n->platform_mask =
			platform_mask(c, n->platforms, n->nplatforms);
		pop(c, mark);
	}
	return 0;
}

static int get_flag(struct ctx *c, const char *name, const json_t *v,
		    struct policy_flag *fl)
{
	static const char *const keys[] = {"rollout", "platforms", "countries",
					   "versions"};
	const json_t *f;
	size_t mark, len = strlen(name);
	int ret;

	if (!valid_id(name, len))
		return bad(c, -EINVAL,
			   "not a flag name ([A-Za-z0-9][A-Za-z0-9_-]*, at "
			   "most 64)");
	if (!(fl->name = arena_strndup(&c->arena, name, len)))
		return bad(c, -ENOMEM, "out of memory");
	hash_prefix(&fl->prefix, name, len);
	if ((ret = need_keys(c, v, keys, 4)))
		return ret;
	if (!(f = json_object_get(v, "rollout")))
		return bad(c, -EINVAL, "no \"rollout\"");
	mark = push_key(c, "rollout");
	if (!json_is_integer(f) || json_integer_value(f) < 0 ||
	    json_integer_value(f) > 100)
		return bad(c, -EINVAL, "must be an integer from 0 to 100");
	fl->rollout = (u8)json_integer_value(f);
	pop(c, mark);
	if ((f = json_object_get(v, "platforms"))) {
		mark = push_key(c, "platforms");
		if ((ret = get_name_set(c, f, false, &fl->platforms,
					&fl->nplatforms)))
			return ret;
		fl->platform_mask =
			platform_mask(c, fl->platforms, fl->nplatforms);
		pop(c, mark);
	}
	if ((f = json_object_get(v, "countries"))) {
		mark = push_key(c, "countries");
		if ((ret = get_name_set(c, f, true, &fl->countries,
					&fl->ncountries)))
			return ret;
		pop(c, mark);
	}
	if ((f = json_object_get(v, "versions"))) {
		mark = push_key(c, "versions");
		if ((ret = get_range(c, f, &fl->versions)))
			return ret;
		fl->has_versions = true;
		pop(c, mark);
	}
	return 0;
}

/* --- the document
 * ------------------------------------------------------------------ */

static int cmp_platform(const void *a, const void *b)
{
	return strcmp(((const struct policy_platform *)a)->name,
		      ((const struct policy_platform *)b)->name);
}

static int cmp_flag(const void *a, const void *b)
{
	return strcmp(((const struct policy_flag *)a)->name,
		      ((const struct policy_flag *)b)->name);
}

/* jansson limits nesting itself, but only at 2048 levels: refuse deep
 * documents before building any tree. */
static bool depth_ok(const char *s, size_t len)
{
	unsigned depth = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > POLICY_DEPTH_MAX)
				return false;
		} else if ((ch == '}' || ch == ']') && depth > 0) {
			depth--;
		}
	}
	return true;
}

static int get_document(struct ctx *c, const json_t *root, struct policy *p)
{
	static const char *const keys[] = {"platforms", "notices", "flags",
					   "unknown_platform"};
	const json_t *f;
	const char *key;
	json_t *val;
	size_t mark, i = 0;
	int ret;

	if ((ret = need_keys(c, root, keys, 4)))
		return ret;
	if ((f = json_object_get(root, "unknown_platform"))) {
		mark = push_key(c, "unknown_platform");
		if ((ret = get_choice(c, f, missing_names, 2,
				      &p->unknown_platform)))
			return ret;
		pop(c, mark);
	}
	if (!(f = json_object_get(root, "platforms")))
		return bad(c, -EINVAL, "no \"platforms\"");
	mark = push_key(c, "platforms");
	if ((ret = need_object(c, f, POLICY_PLATFORMS_MAX)))
		return ret;
	if (json_object_size(f) == 0)
		return bad(c, -EINVAL, "no platform");
	struct policy_platform *pl =
		arena_alloc(&c->arena, json_object_size(f) * sizeof(*pl));
	if (!pl)
		return bad(c, -ENOMEM, "out of memory");
	json_object_foreach((json_t *)f, key, val)
	{
		size_t m2 = push_key(c, key);
		if ((ret = get_platform(c, key, val, &pl[i])))
			return ret;
		pop(c, m2);
		i++;
	}
	qsort(pl, i, sizeof(*pl), cmp_platform);
	p->platforms = pl;
	p->nplatforms = (u16)i;
	c->p = p;
	pop(c, mark);

	if ((f = json_object_get(root, "notices"))) {
		mark = push_key(c, "notices");
		if ((ret = need_array(c, f, POLICY_NOTICES_MAX)))
			return ret;
		struct policy_notice *n = arena_alloc(
			&c->arena, json_array_size(f) * sizeof(*n) + 1);
		if (!n)
			return bad(c, -ENOMEM, "out of memory");
		json_array_foreach(f, i, val)
		{
			size_t m2 = push_index(c, i);
			if ((ret = get_notice(c, val, &n[i])))
				return ret;
			for (size_t j = 0; j < i; j++)
				if (strcmp(n[j].id, n[i].id) == 0) {
					push_key(c, "id");
					return bad(c, -EINVAL,
						   "same id as notices[%zu]",
						   j);
				}
			pop(c, m2);
		}
		p->notices = n;
		p->nnotices = (u16)json_array_size(f);
		pop(c, mark);
	}

	if ((f = json_object_get(root, "flags"))) {
		mark = push_key(c, "flags");
		if ((ret = need_object(c, f, POLICY_FLAGS_MAX)))
			return ret;
		struct policy_flag *fl = arena_alloc(
			&c->arena, json_object_size(f) * sizeof(*fl) + 1);
		if (!fl)
			return bad(c, -ENOMEM, "out of memory");
		i = 0;
		json_object_foreach((json_t *)f, key, val)
		{
			size_t m2 = push_key(c, key);
			if ((ret = get_flag(c, key, val, &fl[i])))
				return ret;
			pop(c, m2);
			i++;
		}
		qsort(fl, i, sizeof(*fl), cmp_flag);
		p->flags = fl;
		p->nflags = (u16)i;
		pop(c, mark);
	}
	return 0;
}

/* text[0..len) as a JSON tree (*root, the caller's), refused past max
 * bytes (what names the text), POLICY_DEPTH_MAX deep or with a key
 * twice. */
static int load_json(struct ctx *c, const char *text, size_t len, size_t max,
		     const char *what, size_t flags, json_t **root)
{
	json_error_t jerr;

	*root = NULL;
	if (len > max)
		return bad(c, -E2BIG, "%s longer than %zu bytes", what, max);
	if (!depth_ok(text, len))
		return bad(c, -E2BIG, "nested deeper than %d levels",
			   POLICY_DEPTH_MAX);
	*root = json_loadb(text, len, JSON_REJECT_DUPLICATES | flags, &jerr);
	if (!*root)
		return bad(c, -EINVAL, "invalid JSON at line %d, column %d: %s",
			   jerr.line, jerr.column, jerr.text);
	return 0;
}

int policy_parse(const char *text, size_t len, struct policy **out,
		 struct policy_err *err)
{
	struct ctx c = {.err = err};
	struct policy *p = NULL;
	json_t *root = NULL;
	int ret;

	*out = NULL;
	if (err)
		err->path[0] = err->msg[0] = '\0';
	ret = load_json(&c, text, len, POLICY_DOC_BYTES_MAX, "document", 0,
			&root);
	if (ret)
		goto cleanup;
	p = arena_alloc(&c.arena, sizeof(*p));
	if (!p) {
		ret = bad(&c, -ENOMEM, "out of memory");
		goto cleanup;
	}
	ret = get_document(&c, root, p);
	if (ret)
		goto cleanup;
	p->arena = c.arena;
	c.arena = NULL;
	*out = p;
cleanup:
	json_decref(root);
	arena_free(c.arena);
	return ret;
}

void policy_free(struct policy *p)
{
	if (p)
		arena_free(p->arena);
}

/* --- rendering
 * ----------------------------------------------------------------------- One
 * jansson tree per policy; json_dumps with sorted keys and compact separators
 * is the canonical text.  Keys at their default (and empty lists) are left out
 * of a platform's own rules, so "absent" and "default" render alike; a channel
 * or country level keeps exactly the keys it sets, since there an empty list
 * means "none" rather than "inherit". */

struct jb {
	bool oom;
};

static void put(struct jb *b, json_t *o, const char *k, json_t *v)
{
	if (!v || json_object_set_new(o, k, v))
		b->oom = true;
}

static void append(struct jb *b, json_t *a, json_t *v)
{
	if (!v || json_array_append_new(a, v))
		b->oom = true;
}

static json_t *date_json(int64_t t)
{
	char buf[DATE_LEN + 1];
	format_date(t, buf);
	return json_string(buf);
}

static json_t *text_json(struct jb *b, const struct policy_text *t)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	put(b, o, "default", json_string(t->def));
	for (u16 i = 0; i < t->n; i++)
		put(b, o, t->loc[i].tag, json_string(t->loc[i].text));
	return o;
}

static json_t *ranges_json(struct jb *b, const struct policy_range *r, u16 n)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	for (u16 i = 0; i < n; i++)
		append(b, a, json_string(r[i].text));
	return a;
}

static json_t *names_json(struct jb *b, const char *const *s, u16 n)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	for (u16 i = 0; i < n; i++)
		append(b, a, json_string(s[i]));
	return a;
}

static json_t *rules_json(struct jb *b, const struct policy_rules *r, bool base)
{
	json_t *o = json_object();
	u32 set = r->set;

	if (!o)
		return NULL;
	if (base) {
		set = 0;
		set |= r->min_supported_text ? POLICY_K_MIN_SUPPORTED : 0;
		set |= r->recommended_text ? POLICY_K_RECOMMENDED : 0;
		set |= r->recommended_rollout != 100
			       ? POLICY_K_RECOMMENDED_ROLLOUT
			       : 0;
		set |= r->nblocked ? POLICY_K_BLOCKED : 0;
		set |= r->ndeprecated ? POLICY_K_DEPRECATED : 0;
		set |= r->ncompat ? POLICY_K_COMPAT : 0;
		set |= r->upgrade_url ? POLICY_K_UPGRADE_URL : 0;
		for (int i = 0; i < POLICY_VERDICTS; i++)
			set |= r->messages[i].def ? POLICY_K_MESSAGES : 0;
		set |= r->release_notes.def ? POLICY_K_RELEASE_NOTES : 0;
		set |= r->blocked_status != 426 ? POLICY_K_BLOCKED_STATUS : 0;
		set |= r->missing_version ? POLICY_K_MISSING_VERSION : 0;
		set |= r->version_mode ? POLICY_K_VERSION_MODE : 0;
	}
	if (set & POLICY_K_MIN_SUPPORTED)
		put(b, o, "min_supported", json_string(r->min_supported_text));
	if (set & POLICY_K_RECOMMENDED)
		put(b, o, "recommended", json_string(r->recommended_text));
	if (set & POLICY_K_RECOMMENDED_ROLLOUT)
		put(b, o, "recommended_rollout",
		    json_integer(r->recommended_rollout));
	if (set & POLICY_K_BLOCKED)
		put(b, o, "blocked", ranges_json(b, r->blocked, r->nblocked));
	if (set & POLICY_K_COMPAT)
		put(b, o, "compat", ranges_json(b, r->compat, r->ncompat));
	if (set & POLICY_K_DEPRECATED) {
		json_t *a = json_array();
		for (u16 i = 0; a && i < r->ndeprecated; i++) {
			const struct policy_deprecation *d = &r->deprecated[i];
			json_t *e = json_object();
			if (e) {
				put(b, e, "range", json_string(d->range.text));
				if (d->since_s != POLICY_TIME_NONE)
					put(b, e, "since",
					    date_json(d->since_s));
				if (d->sunset_s != POLICY_TIME_NONE)
					put(b, e, "sunset",
					    date_json(d->sunset_s));
			}
			append(b, a, e);
		}
		put(b, o, "deprecated", a);
	}
	if (set & POLICY_K_UPGRADE_URL)
		put(b, o, "upgrade_url", json_string(r->upgrade_url));
	if (set & POLICY_K_MESSAGES) {
		json_t *m = json_object();
		for (int i = 0; m && i < POLICY_VERDICTS; i++)
			if (r->messages[i].def)
				put(b, m, verdict_names[i],
				    text_json(b, &r->messages[i]));
		put(b, o, "messages", m);
	}
	if (set & POLICY_K_RELEASE_NOTES)
		put(b, o, "release_notes", text_json(b, &r->release_notes));
	if (set & POLICY_K_BLOCKED_STATUS)
		put(b, o, "blocked_status", json_integer(r->blocked_status));
	if (set & POLICY_K_MISSING_VERSION)
		put(b, o, "missing_version",
		    json_string(missing_names[r->missing_version]));
	if (set & POLICY_K_VERSION_MODE)
		put(b, o, "version_mode",
		    json_string(mode_names[r->version_mode]));
	return o;
}

static json_t *levels_json(struct jb *b, const struct policy_level *l, u16 n)
{
	json_t *o = json_object();
	for (u16 i = 0; o && i < n; i++)
		put(b, o, l[i].name, rules_json(b, &l[i].rules, false));
	return o;
}

static json_t *policy_json(const struct policy *p)
{
	struct jb b = {false};
	json_t *root = json_object(), *pl = json_object();

	if (!root || !pl) {
		json_decref(root);
		json_decref(pl);
		return NULL;
	}
	for (u16 i = 0; i < p->nplatforms; i++) {
		const struct policy_platform *x = &p->platforms[i];
		json_t *o = rules_json(&b, &x->rules, true);
		if (o && x->nchannels)
			put(&b, o, "channels",
			    levels_json(&b, x->channels, x->nchannels));
		if (o && x->ncountries)
			put(&b, o, "countries",
			    levels_json(&b, x->countries, x->ncountries));
		put(&b, pl, x->name, o);
	}
	put(&b, root, "platforms", pl);
	if (p->unknown_platform != POLICY_MISSING_ALLOW)
		put(&b, root, "unknown_platform",
		    json_string(missing_names[p->unknown_platform]));
	if (p->nnotices) {
		json_t *a = json_array();
		for (u16 i = 0; a && i < p->nnotices; i++) {
			const struct policy_notice *n = &p->notices[i];
			json_t *o = json_object();
			if (o) {
				put(&b, o, "id", json_string(n->id));
				put(&b, o, "severity",
				    json_string(severity_names[n->severity]));
				put(&b, o, "text", text_json(&b, &n->text));
				if (n->starts_at_s != POLICY_TIME_NONE)
					put(&b, o, "starts_at",
					    date_json(n->starts_at_s));
				if (n->ends_at_s != POLICY_TIME_NONE)
					put(&b, o, "ends_at",
					    date_json(n->ends_at_s));
				if (n->expected_resolution_at_s !=
				    POLICY_TIME_NONE)
					put(&b, o, "expected_resolution_at",
					    date_json(
						    n->expected_resolution_at_s));
				if (n->nplatforms)
					put(&b, o, "platforms",
					    names_json(&b, n->platforms,
						       n->nplatforms));
			}
			append(&b, a, o);
		}
		put(&b, root, "notices", a);
	}
	if (p->nflags) {
		json_t *fo = json_object();
		for (u16 i = 0; fo && i < p->nflags; i++) {
			const struct policy_flag *f = &p->flags[i];
			json_t *o = json_object();
			if (o) {
				put(&b, o, "rollout", json_integer(f->rollout));
				if (f->nplatforms)
					put(&b, o, "platforms",
					    names_json(&b, f->platforms,
						       f->nplatforms));
				if (f->ncountries)
					put(&b, o, "countries",
					    names_json(&b, f->countries,
						       f->ncountries));
				if (f->has_versions)
					put(&b, o, "versions",
					    json_string(f->versions.text));
			}
			put(&b, fo, f->name, o);
		}
		put(&b, root, "flags", fo);
	}
	if (b.oom) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static int dump(const json_t *v, char **out, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		return -ENOMEM;
	*out = s;
	if (len)
		*len = strlen(s);
	return 0;
}

int policy_render(const struct policy *p, char **out, size_t *len)
{
	json_t *root = policy_json(p);
	int ret;

	*out = NULL;
	if (!root)
		return -ENOMEM;
	ret = dump(root, out, len);
	json_decref(root);
	return ret;
}

/* --- diff
 * ------------------------------------------------------------------------------
 */

#define DIFF_PATH_MAX 512

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int diff_value(json_t *out, char *path, size_t plen, json_t *a,
		      json_t *b);

static int diff_object(json_t *out, char *path, size_t plen, json_t *a,
		       json_t *b)
{
	size_t n = json_object_size(a) + json_object_size(b), k = 0;
	const char **keys = malloc((n ? n : 1) * sizeof(*keys));
	const char *key;
	json_t *v;
	int ret = 0;

	if (!keys)
		return -ENOMEM;
	json_object_foreach(a, key, v)
	{
		keys[k++] = key;
	}
	json_object_foreach(b, key, v)
	{
		keys[k++] = key;
	}
	qsort(keys, k, sizeof(*keys), cmp_key);
	for (size_t i = 0; i < k && ret == 0; i++) {
		int m;
		if (i > 0 && strcmp(keys[i], keys[i - 1]) == 0)
			continue;
		m = snprintf(path + plen, DIFF_PATH_MAX - plen, "%s%s",
			     plen ? "." : "", keys[i]);
		if (m < 0 || (size_t)m >= DIFF_PATH_MAX - plen)
			m = (int)(DIFF_PATH_MAX - 1 - plen);
		ret = diff_value(out, path, plen + (size_t)m,
				 json_object_get(a, keys[i]),
				 json_object_get(b, keys[i]));
	}
	path[plen] = '\0';
	free(keys);
	return ret;
}

static int diff_value(json_t *out, char *path, size_t plen, json_t *a,
		      json_t *b)
{
	json_t *e;

	if (a && b && json_is_object(a) && json_is_object(b))
		return diff_object(out, path, plen, a, b);
	if (a && b && json_is_array(a) && json_is_array(b)) {
		size_t na = json_array_size(a), nb = json_array_size(b);
		for (size_t i = 0; i < (na > nb ? na : nb); i++) {
			int m = snprintf(path + plen, DIFF_PATH_MAX - plen,
					 "[%zu]", i),
			    ret;
			if (m < 0 || (size_t)m >= DIFF_PATH_MAX - plen)
				m = (int)(DIFF_PATH_MAX - 1 - plen);
			ret = diff_value(out, path, plen + (size_t)m,
					 json_array_get(a, i),
					 json_array_get(b, i));
			if (ret)
				return ret;
		}
		path[plen] = '\0';
		return 0;
	}
	if (a && b && json_equal(a, b))
		return 0;
	e = json_pack("{s:s, s:O, s:O}", "path", path, "old",
		      a ? a : json_null(), "new", b ? b : json_null());
	if (!e || json_array_append_new(out, e))
		return -ENOMEM;
	return 0;
}

int policy_diff(const struct policy *a, const struct policy *b, char **out,
		size_t *nchanges)
{
	json_t *ja = policy_json(a), *jb = policy_json(b), *list = json_array();
	char path[DIFF_PATH_MAX] = "";
	int ret = -ENOMEM;

	*out = NULL;
	if (!ja || !jb || !list)
		goto cleanup;
	ret = diff_value(list, path, 0, ja, jb);
	if (ret)
		goto cleanup;
	if (nchanges)
		*nchanges = json_array_size(list);
	ret = dump(list, out, NULL);
cleanup:
	json_decref(ja);
	json_decref(jb);
	json_decref(list);
	return ret;
}

/* --- overrides
 * ------------------------------------------------------------------------- */

int policy_override_init(struct policy_override *o, const char *platform,
			 const char *range, const char *mode,
			 int64_t duration_s, const char *reason, int64_t now_s,
			 struct policy_err *err)
{
	struct ctx c = {.err = err};
	struct semver_err se;
	size_t len;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	o->expected_end_s = POLICY_TIME_NONE;
	if (err)
		err->path[0] = err->msg[0] = '\0';
	push_key(&c, "platform");
	if (!platform || !valid_name(platform, strlen(platform)))
		return bad(&c, -EINVAL,
			   "not a platform name ([a-z][a-z0-9_-]*, at most "
			   "32)");
	pop(&c, 0);
	memcpy(o->platform, platform, strlen(platform) + 1);
	push_key(&c, "range");
	if (!range)
		return bad(&c, -EINVAL, "missing");
	len = strlen(range);
	if (len > SEMVER_RANGE_TEXT_MAX)
		return bad(&c, -E2BIG, "longer than %d bytes",
			   SEMVER_RANGE_TEXT_MAX);
	if (range_blank(range, len))
		return bad(&c, -EINVAL,
			   "empty: a range must name versions (\"*\" for "
			   "all)");
	if ((ret = semver_range_compile(range, len, &o->range, &se)))
		return bad(&c, ret == -E2BIG ? -E2BIG : -EINVAL,
			   "not a version range (%s)", se.msg);
	memcpy(o->range_text, range, len + 1);
	pop(&c, 0);
	push_key(&c, "mode");
	if (mode && strcmp(mode, "compat") == 0)
		o->mode = POLICY_OVERRIDE_COMPAT;
	else if (mode && strcmp(mode, "allow") == 0)
		o->mode = POLICY_OVERRIDE_ALLOW;
	else
		return bad(&c, -EINVAL, "must be \"compat\" or \"allow\"");
	pop(&c, 0);
	push_key(&c, "duration_s");
	if (duration_s < POLICY_OVERRIDE_MIN_S ||
	    duration_s > POLICY_OVERRIDE_MAX_S)
		return bad(&c, -EINVAL,
			   "must be from %d to %d seconds (1 minute to 7 "
			   "days)",
			   POLICY_OVERRIDE_MIN_S, POLICY_OVERRIDE_MAX_S);
	if (now_s > INT64_MAX - duration_s)
		return bad(&c, -EINVAL, "ends past the end of time");
	o->not_before_s = now_s;
	o->expires_at_s = now_s + duration_s;
	pop(&c, 0);
	push_key(&c, "reason");
	if (!reason || !*reason)
		return bad(&c, -EINVAL, "required: say why");
	len = strlen(reason);
	if (len > POLICY_REASON_MAX)
		return bad(&c, -E2BIG, "longer than %d bytes",
			   POLICY_REASON_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)reason[i] < 0x20 ||
		    (unsigned char)reason[i] == 0x7f)
			return bad(&c, -EINVAL, "contains a control character");
	memcpy(o->reason, reason, len + 1);
	return 0;
}

int policy_override_parse(const char *json, size_t len, int64_t now_s,
			  struct policy_override *o, struct policy_err *err)
{
	static const char *const keys[] = {"platform", "range", "mode",
					   "duration_s", "reason"};
	struct ctx c = {.err = err};
	const char *s[5] = {NULL};
	json_error_t jerr;
	json_t *root;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	if (err)
		err->path[0] = err->msg[0] = '\0';
	if (len > 4096)
		return bad(&c, -E2BIG, "request longer than 4096 bytes");
	if (!depth_ok(json, len))
		return bad(&c, -E2BIG, "nested too deep");
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return bad(&c, -EINVAL,
			   "invalid JSON at line %d, column %d: %s", jerr.line,
			   jerr.column, jerr.text);
	if ((ret = need_keys(&c, root, keys, 5)))
		goto cleanup;
	for (int i = 0; i < 5; i++) {
		const json_t *f = json_object_get(root, keys[i]);
		size_t mark = push_key(&c, keys[i]);
		if (!f) {
			ret = bad(&c, -EINVAL, "missing");
			goto cleanup;
		}
		if (i == 3 ? !json_is_integer(f) : !json_is_string(f)) {
			ret = bad(&c, -EINVAL,
				  i == 3 ? "not an integer" : "not a string");
			goto cleanup;
		}
		/* A NUL inside would cut the C string short silently. */
		if (i != 3 &&
		    strlen(json_string_value(f)) != json_string_length(f)) {
			ret = bad(&c, -EINVAL, "contains a NUL character");
			goto cleanup;
		}
		if (i != 3)
			s[i] = json_string_value(f);
		pop(&c, mark);
	}
	ret = policy_override_init(
		o, s[0], s[1], s[2],
		(int64_t)json_integer_value(json_object_get(root, keys[3])),
		s[4], now_s, err);
cleanup:
	json_decref(root);
	return ret;
}

bool policy_override_active(const struct policy_override *o, int64_t now_s)
{
	return o->not_before_s <= now_s && now_s < o->expires_at_s;
}

/* --- an override's message --------------------------------------------------
 * A localised text outside a document, read by the document's own reader
 * (get_text), so its rules are the document's messages' rules. */

struct policy_message {
	struct policy_text text;
	struct chunk *arena;
};

int policy_message_parse(const char *json, size_t len,
			 struct policy_message **out, struct policy_err *err)
{
	struct ctx c = {.err = err};
	struct policy_message *m = NULL;
	json_t *root = NULL;
	int ret;

	*out = NULL;
	if (err)
		err->path[0] = err->msg[0] = '\0';
	push_key(&c, "message");
	ret = load_json(&c, json, len, POLICY_MESSAGE_BYTES_MAX, "text",
			JSON_DECODE_ANY, &root);
	if (ret)
		goto cleanup;
	m = arena_alloc(&c.arena, sizeof(*m));
	if (!m) {
		ret = bad(&c, -ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((ret = get_text(&c, root, &m->text)))
		goto cleanup;
	m->arena = c.arena;
	c.arena = NULL;
	*out = m;
cleanup:
	json_decref(root);
	arena_free(c.arena);
	return ret;
}

void policy_message_free(struct policy_message *m)
{
	if (m)
		arena_free(m->arena);
}

const struct policy_text *policy_message_text(const struct policy_message *m)
{
	return &m->text;
}

int policy_message_render(const struct policy_message *m, char **out,
			  size_t *len)
{
	struct jb b = {false};
	json_t *o = text_json(&b, &m->text);
	int ret;

	*out = NULL;
	if (!o || b.oom) {
		json_decref(o);
		return -ENOMEM;
	}
	ret = dump(o, out, len);
	json_decref(o);
	return ret;
}

/* --- does an override relax anything? ----------------------------------- */

static const struct policy_platform *find_platform(const struct policy *p,
						   const char *s, size_t len);

/* An interval of versions by precedence, narrowed one bound at a time. */
struct span {
	bool empty, has_lo, has_hi, lo_incl, hi_incl;
	struct semver lo, hi;
};

static void span_lo(struct span *s, const struct semver *v, bool incl)
{
	int c = s->has_lo ? semver_compare(v, &s->lo) : 1;
	if (c > 0 || (c == 0 && !incl)) {
		s->lo = *v;
		s->lo_incl = incl;
		s->has_lo = true;
	}
}

static void span_hi(struct span *s, const struct semver *v, bool incl)
{
	int c = s->has_hi ? semver_compare(v, &s->hi) : -1;
	if (c < 0 || (c == 0 && !incl)) {
		s->hi = *v;
		s->hi_incl = incl;
		s->has_hi = true;
	}
}

static void span_add(struct span *s, const struct semver_range *r,
		     const struct semver_comp_set *set)
{
	s->empty |= set->never != 0;
	for (u8 i = 0; i < set->n; i++) {
		const struct semver_comparator *k = &set->comp[i];
		struct semver v = {
			.major = k->major,
			.minor = k->minor,
			.patch = k->patch,
			.pre = k->pre_len ? r->text + k->pre_off : NULL,
			.pre_len = k->pre_len,
		};
		switch (k->op) {
		case SEMVER_OP_EQ:
			span_lo(s, &v, true);
			span_hi(s, &v, true);
			break;
		case SEMVER_OP_LT: span_hi(s, &v, false); break;
		case SEMVER_OP_LE: span_hi(s, &v, true); break;
		case SEMVER_OP_GT: span_lo(s, &v, false); break;
		default: span_lo(s, &v, true); break;
		}
	}
}

static bool span_holds_some(const struct span *s)
{
	if (s->empty)
		return false;
	if (!s->has_lo || !s->has_hi)
		return true;
	int c = semver_compare(&s->lo, &s->hi);
	return c < 0 || (c == 0 && s->lo_incl && s->hi_incl);
}

/* Does range o meet range r, or (r NULL) the versions below *below? */
static bool ranges_meet(const struct semver_range *o,
			const struct semver_range *r,
			const struct semver *below)
{
	for (u8 i = 0; i < o->nsets; i++) {
		for (u8 j = 0; j < (r ? r->nsets : 1); j++) {
			struct span s = {0};
			span_add(&s, o, &o->set[i]);
			if (r)
				span_add(&s, r, &r->set[j]);
			else
				span_hi(&s, below, false);
			if (span_holds_some(&s))
				return true;
		}
	}
	return false;
}

/* Count the restrictions of one level of rules, and whether o meets one. */
static bool rules_meet(const struct policy_rules *ru,
		       const struct semver_range *o, u32 *restrictions)
{
	bool met = false;
	if (ru->min_supported_text) {
		++*restrictions;
		met |= ranges_meet(o, NULL, &ru->min_supported);
	}
	for (u16 i = 0; i < ru->nblocked; i++) {
		++*restrictions;
		met |= ranges_meet(o, &ru->blocked[i].r, NULL);
	}
	for (u16 i = 0; i < ru->ndeprecated; i++) {
		if (ru->deprecated[i].sunset_s == POLICY_TIME_NONE)
			continue;
		++*restrictions;
		met |= ranges_meet(o, &ru->deprecated[i].range.r, NULL);
	}
	return met;
}

enum policy_override_fit policy_override_fit(const struct policy *p,
					     const struct policy_override *o)
{
	if (!p)
		return POLICY_OVERRIDE_NO_POLICY;
	const struct policy_platform *pl =
		find_platform(p, o->platform, strlen(o->platform));
	if (!pl)
		return POLICY_OVERRIDE_NO_PLATFORM;
	u32 restrictions = 0;
	bool met = rules_meet(&pl->rules, &o->range, &restrictions);
	for (u16 i = 0; i < pl->nchannels; i++)
		met |= rules_meet(&pl->channels[i].rules, &o->range,
				  &restrictions);
	for (u16 i = 0; i < pl->ncountries; i++)
		met |= rules_meet(&pl->countries[i].rules, &o->range,
				  &restrictions);
	if (met)
		return POLICY_OVERRIDE_FITS;
	return restrictions ? POLICY_OVERRIDE_NO_OVERLAP
			    : POLICY_OVERRIDE_NOTHING_BLOCKED;
}

/* --- the decision
 * -------------------------------------------------------------------------
 * Everything below runs per request: no allocation, no locale or clock,
 * bounded loops over the document's (bounded) lists. */

void policy_query_set_client_version(struct policy_query *q, const char *value,
				     size_t len)
{
	const char *slash = value ? memchr(value, '/', len) : NULL;
	size_t plen = slash ? (size_t)(slash - value) : (value ? len : 0);

	q->platform = plen ? value : NULL;
	q->platform_len = plen;
	q->version = NULL;
	q->version_len = 0;
	if (plen && slash && (size_t)(slash - value) + 1 < len) {
		q->version = slash + 1;
		q->version_len = len - plen - 1;
	}
}

/* strcmp of s[0..len) against the NUL-terminated t. */
static int cmp_len(const char *s, size_t len, const char *t)
{
	size_t i;
	for (i = 0; i < len && t[i]; i++)
		if (s[i] != t[i])
			return (unsigned char)s[i] - (unsigned char)t[i];
	if (i < len)
		return 1;
	return t[i] ? -1 : 0;
}

static const struct policy_platform *find_platform(const struct policy *p,
						   const char *s, size_t len)
{
	size_t lo = 0, hi = p->nplatforms;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_len(s, len, p->platforms[mid].name);
		if (c == 0)
			return &p->platforms[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static const struct policy_level *find_level(const struct policy_level *l,
					     u16 n, const char *s, size_t len)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_len(s, len, l[mid].name);
		if (c == 0)
			return &l[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static char ascii_upper(char ch)
{
	return is_lower(ch) ? (char)(ch - 'a' + 'A') : ch;
}

static char ascii_lower(char ch)
{
	return is_upper(ch) ? (char)(ch - 'A' + 'a') : ch;
}

/* The country in upper case, or "" when it is not two letters. */
static void country_of(const char *s, char out[3])
{
	out[0] = '\0';
	if (s && s[0] && s[1] && !s[2]) {
		out[0] = ascii_upper(s[0]);
		out[1] = ascii_upper(s[1]);
		out[2] = '\0';
		if (!is_upper(out[0]) || !is_upper(out[1]))
			out[0] = '\0';
	}
}

static bool tag_eq(const char *s, size_t len, const char *tag)
{
	size_t i;
	for (i = 0; i < len && tag[i]; i++)
		if (ascii_lower(s[i]) != ascii_lower(tag[i]))
			return false;
	return i == len && !tag[i];
}

/* RFC 4647 lookup of one tag: the tag, then shorter by a subtag. */
static const char *lookup_tag(const struct policy_text *t, const char *s,
			      size_t len)
{
	while (len > 0) {
		for (u16 i = 0; i < t->n; i++)
			if (tag_eq(s, len, t->loc[i].tag))
				return t->loc[i].text;
		while (len > 0 && s[len - 1] != '-')
			len--;
		if (len > 0)
			len--; /* the '-' */
		/* A singleton left at the end goes with its subtag. */
		if (len >= 2 && s[len - 2] == '-')
			len -= 2;
	}
	return NULL;
}

/* q=0, q=0.0, q=0.00, q=0.000 exclude a tag (RFC 9110 12.4.2). */
static bool q_is_zero(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i + 2 >= len || ascii_lower(s[i]) != 'q' || s[i + 1] != '=')
		return false;
	i += 2;
	if (i >= len || s[i] != '0')
		return false;
	for (i++; i < len; i++)
		if (s[i] != '.' && s[i] != '0' && s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* The caller's language preferences, split once per evaluation (and only
 * when some text has translations). */
struct langs {
	const char *src;
	bool split;
	u8 n;
	const char *tag[POLICY_LANGUAGE_TAGS_MAX];
	u8 len[POLICY_LANGUAGE_TAGS_MAX];
};

static void split_langs(struct langs *l)
{
	const char *s = l->src;
	size_t len = strnlen(s, POLICY_LANGUAGES_MAX), i = 0;

	l->split = true;
	while (i < len && l->n < POLICY_LANGUAGE_TAGS_MAX) {
		size_t start, tag_end, end;
		const char *semi;
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		start = i;
		while (i < len && s[i] != ',' && s[i] != ';' && s[i] != ' ' &&
		       s[i] != '\t')
			i++;
		tag_end = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		if (tag_end == start || tag_end - start > POLICY_TAG_MAX)
			continue;
		semi = memchr(s + tag_end, ';', end - tag_end);
		if (semi && q_is_zero(semi + 1, (size_t)(s + end - semi - 1)))
			continue;
		l->tag[l->n] = s + start;
		l->len[l->n++] = (u8)(tag_end - start);
	}
}

static const char *localise(const struct policy_text *t, struct langs *l)
{
	if (!t->def)
		return NULL;
	if (!l->src || t->n == 0)
		return t->def;
	if (!l->split)
		split_langs(l);
	for (u8 i = 0; i < l->n; i++) {
		const char *hit;
		if (l->len[i] == 1 && l->tag[i][0] == '*')
			return t->def;
		if ((hit = lookup_tag(t, l->tag[i], l->len[i])))
			return hit;
	}
	return t->def;
}

/* Unleash's flexibleRollout from a prefix state (see hash_prefix). */
static bool in_rollout(u8 percentage, const struct rollout_murmur3 *prefix,
		       const char *user, size_t ulen)
{
	struct rollout_murmur3 m;

	if (percentage == 0)
		return false;
	if (percentage >= 100)
		return true;
	if (!user)
		return false;
	m = *prefix;
	rollout_murmur3_update(&m, user, ulen);
	return rollout_murmur3_final(&m) % 100 + 1 <= percentage;
}

static bool in_set(const char *const *set, u16 n, const char *s, size_t len)
{
	for (u16 i = 0; i < n; i++)
		if (cmp_len(s, len, set[i]) == 0)
			return true;
	return false;
}

/* Does a target list (names and their mask) hold the request's platform?
 * A platform of the document is one bit; any other is looked up by name
 * (a flag may target a platform the document does not list). */
static bool targets_platform(const char *const *set, u16 n, u32 mask,
			     const struct policy_query *q, int index)
{
	if (n == 0)
		return true;
	if (index >= 0)
		return (mask >> index) & 1;
	return q->platform && in_set(set, n, q->platform, q->platform_len);
}

static bool in_countries(const char *const *set, u16 n, const char c[3])
{
	for (u16 i = 0; i < n; i++)
		if (set[i][0] == c[0] && set[i][1] == c[1])
			return true;
	return false;
}

int policy_evaluate(const struct policy *p, const struct policy_query *q,
		    const struct policy_override *overrides, size_t n,
		    struct policy_decision *out)
{
	const struct policy_platform *pl;
	const struct policy_rules *r;
	struct view w;
	struct langs langs;
	char country[3];
	size_t ulen;
	int index = -1;

	if (!p || !q || !out)
		return -EINVAL;
	out->verdict = POLICY_SUPPORTED;
	out->reason = POLICY_REASON_NO_RULE;
	out->version_valid = false;
	out->update_available = false;
	out->status = 0;
	out->platform = NULL;
	out->channel_applied = out->country_applied = NULL;
	out->rule = NULL;
	out->deprecated_since_s = out->sunset_s = POLICY_TIME_NONE;
	out->min_supported = out->recommended = out->upgrade_url = NULL;
	out->message = out->release_notes = NULL;
	out->override = NULL;
	out->override_message = NULL;
	out->nnotices = 0;
	out->flags = 0;
	langs.src = q->languages;
	langs.split = false;
	langs.n = 0;
	country_of(q->country, country);
	ulen = q->user ? strlen(q->user) : 0;

	pl = q->platform ? find_platform(p, q->platform, q->platform_len)
			 : NULL;
	if (!pl) {
		if (p->unknown_platform == POLICY_MISSING_BLOCK) {
			out->verdict = POLICY_BLOCKED;
			out->reason = POLICY_REASON_UNKNOWN_PLATFORM_BLOCKED;
			out->status = 403;
		} else {
			out->reason = POLICY_REASON_UNKNOWN_PLATFORM_ALLOWED;
		}
		/* No rules; a version may still target flags. */
		if (q->version && q->version_len)
			out->version_valid =
				semver_parse(q->version, q->version_len,
					     SEMVER_LENIENT, &out->version,
					     NULL) == 0;
		out->verdict_without_override = out->verdict;
		goto extras;
	}

	out->platform = pl;
	index = (int)(pl - p->platforms);
	w.lv[0] = &pl->rules;
	w.n = 1;
	if (q->channel && pl->nchannels) {
		const struct policy_level *l =
			find_level(pl->channels, pl->nchannels, q->channel,
				   strlen(q->channel));
		if (l) {
			w.lv[w.n++] = &l->rules;
			out->channel_applied = l->name;
		}
	}
	if (country[0] && pl->ncountries) {
		const struct policy_level *l =
			find_level(pl->countries, pl->ncountries, country, 2);
		if (l) {
			w.lv[w.n++] = &l->rules;
			out->country_applied = l->name;
		}
	}

	r = pick(&w, POLICY_K_VERSION_MODE);
	out->version_valid = q->version && q->version_len &&
			     semver_parse(q->version, q->version_len,
					  (enum semver_mode)r->version_mode,
					  &out->version, NULL) == 0;
	out->min_supported =
		pick(&w, POLICY_K_MIN_SUPPORTED)->min_supported_text;
	out->upgrade_url = pick(&w, POLICY_K_UPGRADE_URL)->upgrade_url;

	if (!out->version_valid) {
		r = pick(&w, POLICY_K_MISSING_VERSION);
		if (r->missing_version == POLICY_MISSING_BLOCK) {
			out->verdict = POLICY_BLOCKED;
			out->reason = POLICY_REASON_MISSING_VERSION_BLOCKED;
		} else {
			out->reason = POLICY_REASON_MISSING_VERSION_ALLOWED;
		}
		goto decided;
	}

	r = pick(&w, POLICY_K_BLOCKED);
	for (u16 i = 0; i < r->nblocked; i++)
		if (semver_range_match(&r->blocked[i].r, &out->version)) {
			out->verdict = POLICY_BLOCKED;
			out->reason = POLICY_REASON_BLOCKED_RANGE;
			out->rule = r->blocked[i].text;
			goto decided;
		}
	r = pick(&w, POLICY_K_MIN_SUPPORTED);
	if (r->min_supported_text &&
	    semver_compare(&out->version, &r->min_supported) < 0) {
		out->verdict = POLICY_BLOCKED;
		out->reason = POLICY_REASON_BELOW_MIN_SUPPORTED;
		out->rule = r->min_supported_text;
		goto decided;
	}
	r = pick(&w, POLICY_K_COMPAT);
	for (u16 i = 0; i < r->ncompat; i++)
		if (semver_range_match(&r->compat[i].r, &out->version)) {
			out->verdict = POLICY_COMPAT;
			out->reason = POLICY_REASON_COMPAT_RANGE;
			out->rule = r->compat[i].text;
			goto decided;
		}
	r = pick(&w, POLICY_K_DEPRECATED);
	for (u16 i = 0; i < r->ndeprecated; i++) {
		const struct policy_deprecation *d = &r->deprecated[i];
		if (!semver_range_match(&d->range.r, &out->version))
			continue;
		out->rule = d->range.text;
		out->sunset_s = d->sunset_s;
		out->deprecated_since_s = d->since_s;
		if (d->sunset_s != POLICY_TIME_NONE &&
		    q->now_s >= d->sunset_s) {
			out->verdict = POLICY_BLOCKED;
			out->reason = POLICY_REASON_PAST_SUNSET;
		} else {
			out->verdict = POLICY_DEPRECATED;
			out->reason = POLICY_REASON_DEPRECATED_RANGE;
		}
		goto decided;
	}

decided:
	out->verdict_without_override = out->verdict;
	if (out->verdict == POLICY_BLOCKED && out->version_valid) {
		const struct policy_override *hit = NULL;
		if (n > POLICY_OVERRIDES_MAX)
			n = POLICY_OVERRIDES_MAX;
		for (size_t i = 0; i < n; i++) {
			const struct policy_override *o = &overrides[i];
			if (!policy_override_active(o, q->now_s) ||
			    strcmp(o->platform, pl->name) != 0 ||
			    !semver_range_match(&o->range, &out->version))
				continue;
			if (!hit || o->mode == POLICY_OVERRIDE_ALLOW)
				hit = o;
			if (o->mode == POLICY_OVERRIDE_ALLOW)
				break;
		}
		if (hit) {
			out->override = hit;
			if (hit->message)
				out->override_message =
					localise(hit->message, &langs);
			out->verdict = hit->mode == POLICY_OVERRIDE_ALLOW
					       ? POLICY_SUPPORTED
					       : POLICY_COMPAT;
		}
	}
	if (out->verdict == POLICY_BLOCKED)
		out->status = pick(&w, POLICY_K_BLOCKED_STATUS)->blocked_status;
	out->message = localise(
		&pick(&w, POLICY_K_MESSAGES)->messages[out->verdict], &langs);
	out->release_notes = localise(
		&pick(&w, POLICY_K_RELEASE_NOTES)->release_notes, &langs);
	r = pick(&w, POLICY_K_RECOMMENDED);
	if (r->recommended_text) {
		const struct policy_rules *ro =
			pick(&w, POLICY_K_RECOMMENDED_ROLLOUT);
		if (in_rollout(ro->recommended_rollout, &pl->recommended_prefix,
			       q->user, ulen)) {
			out->recommended = r->recommended_text;
			out->update_available =
				out->version_valid &&
				semver_compare(&out->version, &r->recommended) <
					0;
		}
	}

extras:
	for (u16 i = 0; i < p->nnotices; i++) {
		const struct policy_notice *nt = &p->notices[i];
		if ((nt->starts_at_s != POLICY_TIME_NONE &&
		     q->now_s < nt->starts_at_s) ||
		    (nt->ends_at_s != POLICY_TIME_NONE &&
		     q->now_s >= nt->ends_at_s))
			continue;
		if (!targets_platform(nt->platforms, nt->nplatforms,
				      nt->platform_mask, q, index))
			continue;
		out->notice[out->nnotices] = nt;
		out->notice_text[out->nnotices++] = localise(&nt->text, &langs);
	}
	for (u16 i = 0; i < p->nflags; i++) {
		const struct policy_flag *f = &p->flags[i];
		if (f->rollout == 0)
			continue;
		if (!targets_platform(f->platforms, f->nplatforms,
				      f->platform_mask, q, index))
			continue;
		if (f->ncountries &&
		    (!country[0] ||
		     !in_countries(f->countries, f->ncountries, country)))
			continue;
		if (f->has_versions &&
		    (!out->version_valid ||
		     !semver_range_match(&f->versions.r, &out->version)))
			continue;
		if (in_rollout(f->rollout, &f->prefix, q->user, ulen))
			out->flags |= (u64)1 << i;
	}
	return 0;
}

static bool names_platform(const struct policy_notice *nt, const char *name)
{
	if (nt->nplatforms == 0)
		return true;
	for (u16 i = 0; i < nt->nplatforms; i++)
		if (strcmp(nt->platforms[i], name) == 0)
			return true;
	return false;
}

static void sooner(int64_t *best, int64_t t, int64_t now_s)
{
	if (t != POLICY_TIME_NONE && t > now_s &&
	    (*best == POLICY_TIME_NONE || t < *best))
		*best = t;
}

static void rules_next_change(const struct policy_rules *r, int64_t now_s,
			      int64_t *best)
{
	for (u16 i = 0; i < r->ndeprecated; i++)
		sooner(best, r->deprecated[i].sunset_s, now_s);
}

int64_t policy_next_change(const struct policy *p, const char *platform,
			   const struct policy_override *overrides, size_t n,
			   int64_t now_s)
{
	int64_t best = POLICY_TIME_NONE;

	for (size_t i = 0; i < n && i < POLICY_OVERRIDES_MAX; i++) {
		const struct policy_override *o = &overrides[i];
		if (platform && strcmp(o->platform, platform) != 0)
			continue;
		sooner(&best, o->not_before_s, now_s);
		sooner(&best, o->expires_at_s, now_s);
	}
	if (!p)
		return best;
	for (u16 i = 0; i < p->nplatforms; i++) {
		const struct policy_platform *pl = &p->platforms[i];
		if (platform && strcmp(pl->name, platform) != 0)
			continue;
		rules_next_change(&pl->rules, now_s, &best);
		for (u16 k = 0; k < pl->nchannels; k++)
			rules_next_change(&pl->channels[k].rules, now_s, &best);
		for (u16 k = 0; k < pl->ncountries; k++)
			rules_next_change(&pl->countries[k].rules, now_s,
					  &best);
	}
	for (u16 i = 0; i < p->nnotices; i++) {
		const struct policy_notice *nt = &p->notices[i];
		if (platform && !names_platform(nt, platform))
			continue;
		sooner(&best, nt->starts_at_s, now_s);
		sooner(&best, nt->ends_at_s, now_s);
	}
	return best;
}

int policy_flag_index(const struct policy *p, const char *name)
{
	for (u16 i = 0; i < p->nflags; i++)
		if (strcmp(p->flags[i].name, name) == 0)
			return i;
	return -1;
}

/* ---- the decision as JSON ------------------------------------------------ */

static json_t *time_json(int64_t t)
{
	char buf[POLICY_TIME_TEXT_BYTES];
	if (t == POLICY_TIME_NONE || policy_format_time(t, buf) != 0)
		return json_null();
	return json_string(buf);
}

static json_t *str_json(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *policy_decision_json(const struct policy *p,
			     const struct policy_decision *d)
{
	static const char *const sev[] = {"info", "warning", "critical"};
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "decision",
			    json_string(policy_verdict_name(d->verdict)));
	json_object_set_new(o, "reason",
			    json_string(policy_reason_name(d->reason)));
	json_object_set_new(o, "rule", str_json(d->rule));
	json_object_set_new(o, "min_supported", str_json(d->min_supported));
	json_object_set_new(o, "recommended", str_json(d->recommended));
	json_object_set_new(o, "update_available",
			    json_boolean(d->update_available));
	json_object_set_new(o, "upgrade_url", str_json(d->upgrade_url));
	json_object_set_new(o, "message", str_json(d->message));
	json_object_set_new(o, "release_notes", str_json(d->release_notes));
	if (d->verdict == POLICY_BLOCKED)
		json_object_set_new(o, "status", json_integer(d->status));
	if (d->deprecated_since_s != POLICY_TIME_NONE)
		json_object_set_new(o, "deprecated_since",
				    time_json(d->deprecated_since_s));
	if (d->sunset_s != POLICY_TIME_NONE)
		json_object_set_new(o, "sunset", time_json(d->sunset_s));
	if (d->channel_applied)
		json_object_set_new(o, "channel",
				    json_string(d->channel_applied));
	if (d->country_applied)
		json_object_set_new(o, "country",
				    json_string(d->country_applied));
	if (d->override) {
		const struct policy_override *ov = d->override;
		/* Not its reason: that is the operators' own note (issue
		 * 11); the app gets the message written for its users. */
		json_t *j = json_pack(
			"{s:I, s:s, s:s, s:s, s:o, s:o}", "id",
			(json_int_t)ov->id, "platform", ov->platform, "range",
			ov->range_text, "mode",
			ov->mode == POLICY_OVERRIDE_ALLOW ? "allow" : "compat",
			"expires_at", time_json(ov->expires_at_s), "message",
			str_json(d->override_message));
		if (j && ov->expected_end_s != POLICY_TIME_NONE)
			json_object_set_new(j, "expected_end",
					    time_json(ov->expected_end_s));
		json_object_set_new(o, "override", j);
		json_object_set_new(o, "decision_without_override",
				    json_string(policy_verdict_name(
					    d->verdict_without_override)));
	}
	json_t *notices = json_array();
	for (unsigned i = 0; i < d->nnotices; i++) {
		const struct policy_notice *n = d->notice[i];
		json_t *j =
			json_pack("{s:s, s:s, s:o}", "id", n->id, "severity",
				  n->severity < 3 ? sev[n->severity] : "info",
				  "text", str_json(d->notice_text[i]));
		if (j && n->expected_resolution_at_s != POLICY_TIME_NONE)
			json_object_set_new(
				j, "expected_resolution_at",
				time_json(n->expected_resolution_at_s));
		json_array_append_new(notices, j);
	}
	json_object_set_new(o, "notices", notices);
	json_t *flags = json_object();
	for (unsigned i = 0; p && i < p->nflags; i++)
		json_object_set_new(flags, p->flags[i].name,
				    json_boolean(d->flags >> i & 1));
	json_object_set_new(o, "flags", flags);
	return o;
}
