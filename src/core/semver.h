/*
 * semver.h - Semantic Versioning 2.0.0 versions, precedence, and npm-style
 * ranges, for the client-version gate (issue 3).
 *
 * Every request's X-Client-Version is parsed and matched against the
 * compiled ranges of the active policy, so matching is pure, allocation
 * free and a few tens of nanoseconds; parsing and compiling are the slow,
 * careful side and say exactly where and why a string is refused.
 *
 * Versions (semver_parse)
 *   SEMVER_STRICT accepts exactly the grammar of semver.org 2.0.0:
 *   MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]; numeric identifiers without
 *   leading zeros; identifiers non-empty, of ASCII alphanumerics and '-';
 *   major, minor and patch each fit in a u64 (larger is -ERANGE).
 *   Numeric prerelease identifiers have no size limit: they are compared
 *   as decimal strings, which is exact because they have no leading zeros.
 *   Build metadata is kept (semver.build) and ignored for precedence.
 *
 *   SEMVER_LENIENT is for app-store and user-agent strings.  On top of the
 *   strict grammar, and nothing else:
 *     1. ASCII whitespace around the version is trimmed;
 *     2. one prefix of "v", "V", "=", "=v" or "=V" is skipped;
 *     3. a missing minor or patch is 0: "4" is 4.0.0, "v4.2" is 4.2.0
 *        (a prerelease or build may follow: "4.2-beta" is 4.2.0-beta);
 *     4. leading zeros in major, minor and patch are dropped: "4.02" is
 *        4.2.0 (prerelease identifiers stay strict);
 *     5. a fourth numeric component becomes the build metadata:
 *        "4.2.1.77" is 4.2.1+77; it must end the string.
 *   The result is always a valid strict version (semver_format prints
 *   it): one that would print longer than SEMVER_TEXT_MAX is -E2BIG.
 *
 * Precedence (semver_compare) is semver.org section 11: major, minor,
 * patch numerically; a prerelease version is lower than the release;
 * prerelease identifiers left to right, numeric ones numerically, numeric
 * lower than alphanumeric, alphanumeric ones in ASCII order, and a shorter
 * list lower when all its identifiers equal the longer one's.
 *
 * Ranges (semver_range_compile), the syntax of npm's node-semver (v7):
 *   range-set  := range ( ws* "||" ws* range )*
 *   range      := hyphen | simple ( ws+ simple )* | ""
 *   hyphen     := partial ws+ "-" ws+ partial          (the whole range)
 *   simple     := primitive | partial | tilde | caret
 *   primitive  := ( "<" | ">" | ">=" | "<=" | "=" ) ws* partial
 *   tilde      := ( "~" | "~>" ) ws* partial
 *   caret      := "^" ws* partial
 *   partial    := ["v"] xr ( "." xr ( "." xr ["-" pre] ["+" build] )? )?
 *   xr         := "x" | "X" | "*" | numeric identifier
 * with node-semver's meanings:
 *   1.2.3 - 2.3.4  >=1.2.3 <=2.3.4      1.2 - 2.3   >=1.2.0 <2.4.0-0
 *   1.x, 1.*, 1    >=1.0.0 <2.0.0-0     *, x, ""    any version
 *   ~1.2.3         >=1.2.3 <1.3.0-0     ~1.2, ~1    >=1.2.0 <1.3.0-0, <2.0.0-0
 *   ^1.2.3         >=1.2.3 <2.0.0-0     ^0.2.3      >=0.2.3 <0.3.0-0
 *   ^0.0.3         >=0.0.3 <0.0.4-0     ^0.0, ^0.0.x >=0.0.0 <0.1.0-0
 *   >1.2  >=1.3.0   <=1.2  <1.3.0-0   <1.2  <1.2.0-0   >x, <x  nothing
 * Whitespace-separated comparators are ANDed; "||" alternatives are ORed;
 * an empty alternative ("", "1.x ||") matches every release, as in npm.
 *
 *   npm's prerelease rule: a version with a prerelease tag satisfies an
 *   alternative only if it satisfies every comparator AND some comparator
 *   of that alternative has the same major.minor.patch and a prerelease
 *   itself.  So ">=1.2.3-beta <2.0.0" admits 1.2.3-rc.1 but not
 *   1.5.0-rc.1, and "*" admits no prerelease at all.
 *
 *   Not supported: node-semver's `loose` option (e.g. "1.2.3beta",
 *   "~1.0.3alpha") and `includePrerelease` option.  Stricter than npm,
 *   which accepts some strings only as side effects of its regular
 *   expressions: a prerelease on a wildcard ("1.2.x-beta", npm drops
 *   it), a number after a wildcard ("x.1"), a '*' inside a version
 *   ("2.10.*1", npm deletes it), "~=" and "~>=", and an operator or '='
 *   in a hyphen range are errors here.  Whatever both accept, both
 *   match alike (checked against node-semver 7.8 on 600,000 random
 *   range/version pairs when this was written).
 *   Numbers past the u64 edge never wrap: ~18446744073709551615.0 has no
 *   upper bound, >18446744073709551615 matches nothing.
 *
 * Errors: parse and compile return 0 or a negative errno: -EINVAL for a
 * syntax error, -ERANGE for a number past u64, -E2BIG past one of the
 * limits below.  With a non-NULL err they also fill err->msg with the
 * byte offset (0-based, into the string as given) and the reason, e.g.
 * "at 5: leading zero in minor".  *out is unspecified after an error.
 *
 * Ownership: a struct semver points into the string it was parsed from
 * (prerelease and build text); it is valid as long as that string is.
 * A struct semver_range owns a copy of everything it needs: it may be
 * copied by value, kept after the string is freed, and read by any number
 * of threads at once.  Nothing here allocates.
 */
#ifndef TPW_CORE_SEMVER_H
#define TPW_CORE_SEMVER_H

#include "core/types.h"

/* Longest version string accepted (as node-semver's MAX_LENGTH). */
#define SEMVER_TEXT_MAX 256
/* Longest range string accepted. */
#define SEMVER_RANGE_TEXT_MAX 256
/* Most "||" alternatives in one range. */
#define SEMVER_RANGE_SETS_MAX 8
/* Most comparators in one alternative, after expansion: a tilde, caret,
 * hyphen or x-range term counts as the (up to) two it stands for. */
#define SEMVER_RANGE_COMPS_MAX 8
/* Size of an error message, NUL included. */
#define SEMVER_ERR_MSG_BYTES 96

enum semver_mode {
	SEMVER_STRICT = 0,
	SEMVER_LENIENT = 1,
};

struct semver {
	u64 major;
	u64 minor;
	u64 patch;
	const char *pre;   /* prerelease without '-': pre_len bytes, or NULL */
	const char *build; /* build metadata without '+', or NULL */
	u16 pre_len;
	u16 build_len;
};

struct semver_err {
	size_t pos; /* byte offset of the offending token */
	char msg[SEMVER_ERR_MSG_BYTES];
};

/* Parse s[0..len).  See the top of this file for the two modes. */
int semver_parse(const char *s, size_t len, enum semver_mode mode,
		 struct semver *out, struct semver_err *err);

/* Precedence: <0, 0 or >0 as a is lower, equal or higher than b.  Build
 * metadata is ignored: 1.0.0+a and 1.0.0+b compare equal. */
int semver_compare(const struct semver *a, const struct semver *b);

/* Write the canonical text (with build metadata) and a NUL into buf;
 * returns the length, or -ENOSPC when it does not fit in size bytes.
 * 3 * 20 digits + 2 dots + 2 signs + SEMVER_TEXT_MAX always suffice. */
#define SEMVER_FORMAT_BYTES (64 + 2 * SEMVER_TEXT_MAX)
int semver_format(const struct semver *v, char *buf, size_t size);

enum semver_op {
	SEMVER_OP_EQ = 0,
	SEMVER_OP_LT,
	SEMVER_OP_LE,
	SEMVER_OP_GT,
	SEMVER_OP_GE,
};

/* One primitive comparator; its prerelease is pre_len bytes at
 * semver_range.text + pre_off. */
struct semver_comparator {
	u64 major;
	u64 minor;
	u64 patch;
	u16 pre_off;
	u16 pre_len;
	u8 op; /* enum semver_op */
};

struct semver_comp_set {
	u8 n;	  /* comparators; 0 means any version (before the rule) */
	u8 never; /* matches nothing (">x", "<0.0.0-0") */
	struct semver_comparator comp[SEMVER_RANGE_COMPS_MAX];
};

/* A compiled range.  text holds "0" (the prerelease of the "-0" bounds
 * that tilde, caret and x-ranges produce) then a copy of the source. */
struct semver_range {
	u8 nsets;
	struct semver_comp_set set[SEMVER_RANGE_SETS_MAX];
	char text[SEMVER_RANGE_TEXT_MAX + 2];
};

/* Compile s[0..len) into *out. */
int semver_range_compile(const char *s, size_t len, struct semver_range *out,
			 struct semver_err *err);

/* Does v satisfy r (npm semantics, prerelease rule included)? */
bool semver_range_match(const struct semver_range *r, const struct semver *v);

#endif
