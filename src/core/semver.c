/*
 * semver.c - Semantic Versioning 2.0.0 versions and npm-style ranges (see
 * semver.h for the grammar, the lenient rules and the npm semantics).
 *
 * Parsing walks the string once with an index, so every error can name
 * the byte where it happened.  A range is compiled to primitive
 * comparators (tilde, caret, x-ranges and hyphens expanded as node-semver
 * expands them) so that matching is a few integer comparisons per
 * comparator and touches prerelease text only when the numbers tie.
 */
#include "core/semver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

/* --- errors ------------------------------------------------------------ */

static int fail(struct semver_err *err, int code, size_t pos, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static int fail(struct semver_err *err, int code, size_t pos, const char *fmt,
		...)
{
	if (err) {
		va_list ap;
		int n;

		err->pos = pos;
		n = snprintf(err->msg, sizeof(err->msg), "at %zu: ", pos);
		if (n < 0 || (size_t)n >= sizeof(err->msg))
			n = 0;
		va_start(ap, fmt);
		vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* A printable rendering of the byte at s[i] (or "end"), for messages. */
static const char *show(const char *s, size_t len, size_t i, char buf[8])
{
	unsigned char c;

	if (i >= len)
		return "end of input";
	c = (unsigned char)s[i];
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "\\x%02x", c);
	return buf;
}

/* --- characters -------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '-';
}

/* \s of JavaScript regexes, restricted to ASCII. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* --- numbers and identifiers ------------------------------------------- */

/* A numeric identifier at s[*i]: digits, no leading zero unless lz_ok,
 * value <= UINT64_MAX.  what names the field in messages. */
static int parse_num(const char *s, size_t len, size_t *i, bool lz_ok,
		     const char *what, u64 *out, struct semver_err *err)
{
	size_t start = *i, j = *i;
	u64 v = 0;
	char b[8];

	if (j >= len || !is_digit(s[j]))
		return fail(err, -EINVAL, j, "expected a number for %s, got %s",
			    what, show(s, len, j, b));
	if (s[j] == '0' && j + 1 < len && is_digit(s[j + 1]) && !lz_ok)
		return fail(err, -EINVAL, j, "leading zero in %s", what);
	for (; j < len && is_digit(s[j]); j++) {
		if (__builtin_mul_overflow(v, (u64)10, &v) ||
		    __builtin_add_overflow(v, (u64)(s[j] - '0'), &v))
			return fail(err, -ERANGE, start,
				    "%s does not fit in 64 bits", what);
	}
	*i = j;
	*out = v;
	return 0;
}

/* Dot-separated identifiers at s[*i] (after the '-' or '+').  Prerelease
 * numeric identifiers may not have leading zeros; build ones may. */
static int parse_idents(const char *s, size_t len, size_t *i, bool prerelease,
			u16 *out_len, struct semver_err *err)
{
	const char *what = prerelease ? "prerelease" : "build metadata";
	size_t start = *i, j = *i;
	char b[8];

	for (;;) {
		size_t id = j;
		bool numeric = true;

		while (j < len && is_ident_char(s[j])) {
			numeric = numeric && is_digit(s[j]);
			j++;
		}
		if (j == id)
			return fail(err, -EINVAL, j,
				    "empty identifier in %s, got %s", what,
				    show(s, len, j, b));
		if (prerelease && numeric && j - id > 1 && s[id] == '0')
			return fail(err, -EINVAL, id,
				    "leading zero in numeric prerelease "
				    "identifier");
		if (j >= len || s[j] != '.')
			break;
		j++;
	}
	*i = j;
	*out_len = (u16)(j - start);
	return 0;
}

/* --- versions ---------------------------------------------------------- */

static size_t digits(u64 n)
{
	size_t d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/* Length of semver_format's text for v. */
static size_t canonical_len(const struct semver *v)
{
	return digits(v->major) + digits(v->minor) + digits(v->patch) + 2 +
	       (v->pre_len ? 1u + v->pre_len : 0) +
	       (v->build_len ? 1u + v->build_len : 0);
}

int semver_parse(const char *s, size_t len, enum semver_mode mode,
		 struct semver *out, struct semver_err *err)
{
	bool lenient = mode == SEMVER_LENIENT;
	size_t i = 0, end = len;
	struct semver v = {0};
	char b[8];
	int ret;

	if (len > SEMVER_TEXT_MAX)
		return fail(err, -E2BIG, SEMVER_TEXT_MAX,
			    "version longer than %d bytes", SEMVER_TEXT_MAX);
	if (lenient) {
		while (i < end && is_space(s[i]))
			i++;
		while (end > i && is_space(s[end - 1]))
			end--;
		if (i < end && s[i] == '=')
			i++;
		if (i < end && (s[i] == 'v' || s[i] == 'V'))
			i++;
	}
	ret = parse_num(s, end, &i, lenient, "major", &v.major, err);
	if (ret)
		return ret;
	if (i < end && s[i] == '.') {
		i++;
		ret = parse_num(s, end, &i, lenient, "minor", &v.minor, err);
		if (ret)
			return ret;
	} else if (!lenient) {
		return fail(err, -EINVAL, i, "expected '.' after major, got %s",
			    show(s, end, i, b));
	}
	if (i < end && s[i] == '.') {
		i++;
		ret = parse_num(s, end, &i, lenient, "patch", &v.patch, err);
		if (ret)
			return ret;
	} else if (!lenient) {
		return fail(err, -EINVAL, i, "expected '.' after minor, got %s",
			    show(s, end, i, b));
	}
	/* Lenient rule 5: "4.2.1.77" keeps 77 as the build metadata. */
	if (lenient && i < end && s[i] == '.' && i + 1 < end &&
	    is_digit(s[i + 1])) {
		size_t j = i + 1;
		while (j < end && is_digit(s[j]))
			j++;
		if (j != end)
			return fail(err, -EINVAL, j,
				    "a fourth version component must end the "
				    "version, got %s",
				    show(s, end, j, b));
		v.build = s + i + 1;
		v.build_len = (u16)(j - i - 1);
		i = j;
	}
	if (i < end && s[i] == '-') {
		i++;
		v.pre = s + i;
		ret = parse_idents(s, end, &i, true, &v.pre_len, err);
		if (ret)
			return ret;
	}
	if (i < end && s[i] == '+') {
		i++;
		v.build = s + i;
		ret = parse_idents(s, end, &i, false, &v.build_len, err);
		if (ret)
			return ret;
	}
	if (i != end)
		return fail(err, -EINVAL, i, "unexpected %s after the version",
			    show(s, end, i, b));
	/* A lenient version must print as a strict one: "1.0-" plus 253
	 * bytes would print as 258. */
	if (lenient && canonical_len(&v) > SEMVER_TEXT_MAX)
		return fail(err, -E2BIG, 0,
			    "version longer than %d bytes once written out",
			    SEMVER_TEXT_MAX);
	*out = v;
	return 0;
}

/* Precedence of two prerelease strings (both valid, either may be empty:
 * empty means a release, which ranks above any prerelease). */
static int cmp_pre(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0;

	if (alen == 0 || blen == 0)
		return (alen == 0) - (blen == 0);
	for (;;) {
		size_t ai = i, bj = j;
		bool anum = true, bnum = true;
		size_t al, bl;
		int c;

		for (; i < alen && a[i] != '.'; i++)
			anum = anum && is_digit(a[i]);
		for (; j < blen && b[j] != '.'; j++)
			bnum = bnum && is_digit(b[j]);
		al = i - ai;
		bl = j - bj;
		if (anum && bnum) {
			/* No leading zeros: the longer number is larger. */
			if (al != bl)
				return al < bl ? -1 : 1;
			c = memcmp(a + ai, b + bj, al);
		} else if (anum != bnum) {
			return anum ? -1 : 1;
		} else {
			c = memcmp(a + ai, b + bj, al < bl ? al : bl);
			if (c == 0 && al != bl)
				c = al < bl ? -1 : 1;
		}
		if (c != 0)
			return c < 0 ? -1 : 1;
		if (i >= alen || j >= blen)
			return (i < alen) - (j < blen);
		i++;
		j++;
	}
}

static int cmp_u64(u64 a, u64 b)
{
	return (a > b) - (a < b);
}

int semver_compare(const struct semver *a, const struct semver *b)
{
	int c = cmp_u64(a->major, b->major);

	if (c == 0)
		c = cmp_u64(a->minor, b->minor);
	if (c == 0)
		c = cmp_u64(a->patch, b->patch);
	if (c == 0)
		c = cmp_pre(a->pre, a->pre_len, b->pre, b->pre_len);
	return c;
}

int semver_format(const struct semver *v, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%llu.%llu.%llu%s%.*s%s%.*s",
			 (unsigned long long)v->major,
			 (unsigned long long)v->minor,
			 (unsigned long long)v->patch, v->pre_len ? "-" : "",
			 (int)v->pre_len, v->pre_len ? v->pre : "",
			 v->build_len ? "+" : "", (int)v->build_len,
			 v->build_len ? v->build : "");

	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

/* --- ranges: compiling ------------------------------------------------- */

/* A partial version of a range: the first `fixed` of major, minor, patch
 * are numbers, the rest wildcards or missing. */
struct partial {
	u64 n[3];
	int fixed;
	u16 pre_off;
	u16 pre_len;
	size_t pos;
};

enum term_kind { T_PLAIN, T_LT, T_LE, T_GT, T_GE, T_EQ, T_TILDE, T_CARET };

/* Compilation state: the range text (semver_range.text + 1). */
struct rc {
	const char *s;
	struct semver_err *err;
};

/* The lowest major.minor.patch above every version that shares the first
 * `level` numbers (1: major, 2: minor, 3: patch) of n, carrying into the
 * next level at the u64 edge; false when there is none. */
static bool bump(u64 n[3], int level)
{
	for (int k = level - 1; k >= 0; k--) {
		if (n[k] != UINT64_MAX) {
			n[k]++;
			for (int z = k + 1; z < 3; z++)
				n[z] = 0;
			return true;
		}
	}
	return false;
}

static int emit(struct rc *c, struct semver_comp_set *set, enum semver_op op,
		const u64 n[3], u16 pre_off, u16 pre_len, size_t pos)
{
	struct semver_comparator *k;

	/* ">=0.0.0" is every release, as node-semver's replaceGTE0 says:
	 * it does not take part in the prerelease rule either. */
	if (op == SEMVER_OP_GE && n[0] == 0 && n[1] == 0 && n[2] == 0 &&
	    pre_len == 0)
		return 0;
	if (set->n >= SEMVER_RANGE_COMPS_MAX)
		return fail(c->err, -E2BIG, pos,
			    "more than %d comparators in one alternative",
			    SEMVER_RANGE_COMPS_MAX);
	k = &set->comp[set->n++];
	k->major = n[0];
	k->minor = n[1];
	k->patch = n[2];
	k->pre_off = pre_off;
	k->pre_len = pre_len;
	k->op = (u8)op;
	return 0;
}

/* ">= the partial, wildcards as 0" (the prerelease only when full). */
static int emit_floor(struct rc *c, struct semver_comp_set *set,
		      const struct partial *p)
{
	u64 n[3] = {p->n[0], p->fixed > 1 ? p->n[1] : 0,
		    p->fixed > 2 ? p->n[2] : 0};
	return emit(c, set, SEMVER_OP_GE, n, p->pre_off, p->pre_len, p->pos);
}

/* "< the next version after the first `level` numbers, -0", or nothing
 * when there is no such version (no upper bound). */
static int emit_ceiling(struct rc *c, struct semver_comp_set *set,
			const struct partial *p, int level)
{
	u64 n[3] = {p->n[0], p->n[1], p->n[2]};

	if (!bump(n, level))
		return 0;
	return emit(c, set, SEMVER_OP_LT, n, 0, 1, p->pos);
}

/* Expand one term into primitive comparators (node-semver's
 * replaceTilde, replaceCaret, replaceXRange and replaceStars). */
static int expand(struct rc *c, struct semver_comp_set *set,
		  enum term_kind kind, const struct partial *p)
{
	static const enum semver_op ops[] = {
		[T_PLAIN] = SEMVER_OP_EQ, [T_EQ] = SEMVER_OP_EQ,
		[T_LT] = SEMVER_OP_LT,	  [T_LE] = SEMVER_OP_LE,
		[T_GT] = SEMVER_OP_GT,	  [T_GE] = SEMVER_OP_GE,
	};
	int ret = 0;
	u64 n[3];

	if (p->fixed == 0) {
		if (kind == T_LT || kind == T_GT)
			set->never = 1;
		return 0;
	}
	switch (kind) {
	case T_TILDE:
		ret = emit_floor(c, set, p);
		if (ret == 0)
			ret = emit_ceiling(c, set, p, p->fixed == 1 ? 1 : 2);
		return ret;
	case T_CARET: {
		/* The first non-zero number of a full version is the one
		 * that may not change; ^0.0 and ^0.0.x keep the minor. */
		int level = 1;
		if (p->n[0] == 0 && p->fixed >= 2)
			level = (p->fixed == 3 && p->n[1] == 0) ? 3 : 2;
		ret = emit_floor(c, set, p);
		if (ret == 0)
			ret = emit_ceiling(c, set, p, level);
		return ret;
	}
	case T_PLAIN:
	case T_EQ:
		if (p->fixed == 3)
			break;
		ret = emit_floor(c, set, p);
		if (ret == 0)
			ret = emit_ceiling(c, set, p, p->fixed);
		return ret;
	case T_GE:
		if (p->fixed == 3)
			break;
		return emit_floor(c, set, p);
	case T_GT:
		if (p->fixed == 3)
			break;
		/* >1 is >=2.0.0, >1.2 is >=1.3.0 */
		n[0] = p->n[0];
		n[1] = p->fixed > 1 ? p->n[1] : 0;
		n[2] = 0;
		if (!bump(n, p->fixed)) {
			set->never = 1;
			return 0;
		}
		return emit(c, set, SEMVER_OP_GE, n, 0, 0, p->pos);
	case T_LE:
		if (p->fixed == 3)
			break;
		/* <=0.7.x is <0.8.0-0 */
		return emit_ceiling(c, set, p, p->fixed);
	case T_LT:
		if (p->fixed == 3)
			break;
		/* <1.2 is <1.2.0-0 */
		n[0] = p->n[0];
		n[1] = p->fixed > 1 ? p->n[1] : 0;
		n[2] = 0;
		return emit(c, set, SEMVER_OP_LT, n, 0, 1, p->pos);
	}
	return emit(c, set, ops[kind], p->n, p->pre_off, p->pre_len, p->pos);
}

static const char *const part_name[3] = {"major", "minor", "patch"};

/* A partial version at c->s[*i], which ends at a space or at `end`. */
static int parse_partial(struct rc *c, size_t *i, size_t end, struct partial *p)
{
	const char *s = c->s;
	size_t j = *i;
	char b[8];
	int ret;

	memset(p, 0, sizeof(*p));
	p->pos = j;
	if (j < end && s[j] == 'v')
		j++;
	for (int k = 0; k < 3; k++) {
		if (k > 0) {
			if (j >= end || s[j] != '.')
				break;
			j++;
		}
		if (j < end && (s[j] == 'x' || s[j] == 'X' || s[j] == '*')) {
			j++;
			continue;
		}
		if (p->fixed < k)
			return fail(c->err, -EINVAL, j,
				    "%s after a wildcard, got %s", part_name[k],
				    show(s, end, j, b));
		ret = parse_num(s, end, &j, false, part_name[k], &p->n[k],
				c->err);
		if (ret)
			return ret;
		p->fixed = k + 1;
	}
	if (j < end && s[j] == '-') {
		size_t at = j++;
		if (p->fixed < 3)
			return fail(c->err, -EINVAL, at,
				    "prerelease needs a full "
				    "major.minor.patch");
		p->pre_off = (u16)(j + 1); /* text[0] is the "0" */
		ret = parse_idents(s, end, &j, true, &p->pre_len, c->err);
		if (ret)
			return ret;
	}
	if (j < end && s[j] == '+') {
		u16 ignored;
		j++;
		ret = parse_idents(s, end, &j, false, &ignored, c->err);
		if (ret)
			return ret;
	}
	if (j < end && !is_space(s[j]))
		return fail(c->err, -EINVAL, j, "unexpected %s in a version",
			    show(s, end, j, b));
	*i = j;
	return 0;
}

static size_t skip_space(const char *s, size_t i, size_t end)
{
	while (i < end && is_space(s[i]))
		i++;
	return i;
}

/* The operator of a term at s[*i], then any spaces after it. */
static enum term_kind parse_op(const char *s, size_t *i, size_t end)
{
	size_t j = *i;
	enum term_kind k = T_PLAIN;

	if (j < end) {
		switch (s[j]) {
		case '<':
			k = T_LT;
			j++;
			if (j < end && s[j] == '=') {
				k = T_LE;
				j++;
			}
			break;
		case '>':
			k = T_GT;
			j++;
			if (j < end && s[j] == '=') {
				k = T_GE;
				j++;
			}
			break;
		case '=':
			k = T_EQ;
			j++;
			break;
		case '~':
			k = T_TILDE;
			j++;
			if (j < end && s[j] == '>')
				j++;
			break;
		case '^':
			k = T_CARET;
			j++;
			break;
		default: break;
		}
	}
	*i = k == T_PLAIN ? j : skip_space(s, j, end);
	return k;
}

/* Is s[i] the '-' of a hyphen range (spaces on both sides)? */
static bool at_hyphen(const char *s, size_t i, size_t end)
{
	return i < end && s[i] == '-' && (i + 1 == end || is_space(s[i + 1]));
}

/* One "||" alternative: s[start..end). */
static int compile_set(struct rc *c, size_t start, size_t end,
		       struct semver_comp_set *set)
{
	const char *s = c->s;
	size_t i = skip_space(s, start, end);
	bool first = true;
	char b[8];
	int ret;

	while (i < end) {
		size_t at = i;
		enum term_kind kind;
		struct partial p;

		if (at_hyphen(s, i, end))
			return fail(c->err, -EINVAL, i,
				    "'-' must stand between the two versions "
				    "of a hyphen range");
		kind = parse_op(s, &i, end);
		if (i >= end)
			return fail(c->err, -EINVAL, at,
				    "operator without a version");
		ret = parse_partial(c, &i, end, &p);
		if (ret)
			return ret;
		i = skip_space(s, i, end);
		if (first && kind == T_PLAIN && at_hyphen(s, i, end)) {
			struct partial to;

			i = skip_space(s, i + 1, end);
			if (i >= end)
				return fail(c->err, -EINVAL, i,
					    "hyphen range without an upper "
					    "version");
			if (s[i] != 'v' && !is_digit(s[i]) && s[i] != 'x' &&
			    s[i] != 'X' && s[i] != '*')
				return fail(c->err, -EINVAL, i,
					    "expected a version after '-', "
					    "got %s",
					    show(s, end, i, b));
			ret = parse_partial(c, &i, end, &to);
			if (ret)
				return ret;
			i = skip_space(s, i, end);
			if (i < end)
				return fail(c->err, -EINVAL, i,
					    "a hyphen range must be the whole "
					    "alternative, got %s",
					    show(s, end, i, b));
			if (p.fixed > 0)
				ret = emit_floor(c, set, &p);
			if (ret == 0 && to.fixed == 3)
				ret = emit(c, set, SEMVER_OP_LE, to.n,
					   to.pre_off, to.pre_len, to.pos);
			else if (ret == 0 && to.fixed > 0)
				ret = emit_ceiling(c, set, &to, to.fixed);
			return ret;
		}
		p.pos = at; /* limits name the whole term */
		ret = expand(c, set, kind, &p);
		if (ret)
			return ret;
		first = false;
	}
	return 0;
}

int semver_range_compile(const char *s, size_t len, struct semver_range *out,
			 struct semver_err *err)
{
	struct rc c = {.err = err};
	size_t start = 0;
	int ret;

	if (len > SEMVER_RANGE_TEXT_MAX)
		return fail(err, -E2BIG, SEMVER_RANGE_TEXT_MAX,
			    "range longer than %d bytes",
			    SEMVER_RANGE_TEXT_MAX);
	memset(out, 0, sizeof(*out));
	out->text[0] = '0';
	if (len)
		memcpy(out->text + 1, s, len);
	c.s = out->text + 1;

	for (size_t i = 0; i <= len; i++) {
		struct semver_comp_set *set;

		if (i < len && c.s[i] != '|')
			continue;
		if (i < len && (i + 1 >= len || c.s[i + 1] != '|'))
			return fail(err, -EINVAL, i,
				    "single '|' (alternatives are separated "
				    "by \"||\")");
		if (out->nsets >= SEMVER_RANGE_SETS_MAX)
			return fail(err, -E2BIG, start,
				    "more than %d \"||\" alternatives",
				    SEMVER_RANGE_SETS_MAX);
		set = &out->set[out->nsets++];
		ret = compile_set(&c, start, i, set);
		if (ret)
			return ret;
		if (set->never)
			set->n = 0;
		i++;
		start = i + 1;
	}
	/* As node-semver: when one alternative is "any version", the whole
	 * range is just that one (so "* || 1.2.3-beta" admits no
	 * prerelease, as "*" alone does). */
	if (out->nsets > 1) {
		for (u8 k = 0; k < out->nsets; k++) {
			if (out->set[k].n == 0 && !out->set[k].never) {
				out->set[0] = out->set[k];
				out->nsets = 1;
				break;
			}
		}
	}
	return 0;
}

/* --- ranges: matching -------------------------------------------------- */

static int cmp_comp(const struct semver_range *r,
		    const struct semver_comparator *k, const struct semver *v)
{
	int c = cmp_u64(v->major, k->major);

	if (c == 0)
		c = cmp_u64(v->minor, k->minor);
	if (c == 0)
		c = cmp_u64(v->patch, k->patch);
	if (c == 0 && (v->pre_len | k->pre_len))
		c = cmp_pre(v->pre, v->pre_len, r->text + k->pre_off,
			    k->pre_len);
	return c;
}

static bool comp_test(const struct semver_range *r,
		      const struct semver_comparator *k, const struct semver *v)
{
	int c = cmp_comp(r, k, v);

	switch (k->op) {
	case SEMVER_OP_EQ: return c == 0;
	case SEMVER_OP_LT: return c < 0;
	case SEMVER_OP_LE: return c <= 0;
	case SEMVER_OP_GT: return c > 0;
	default: return c >= 0;
	}
}

bool semver_range_match(const struct semver_range *r, const struct semver *v)
{
	for (u8 i = 0; i < r->nsets; i++) {
		const struct semver_comp_set *set = &r->set[i];
		bool ok = !set->never;

		for (u8 j = 0; ok && j < set->n; j++)
			ok = comp_test(r, &set->comp[j], v);
		if (!ok)
			continue;
		if (v->pre_len == 0)
			return true;
		/* npm's prerelease rule (semver.h). */
		for (u8 j = 0; j < set->n; j++) {
			const struct semver_comparator *k = &set->comp[j];
			if (k->pre_len && k->major == v->major &&
			    k->minor == v->minor && k->patch == v->patch)
				return true;
		}
	}
	return false;
}
