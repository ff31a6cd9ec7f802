/*
 * gatewatch.h - what an operator watches of the client-version gate
 * (issue 11, item 4): its decisions counted by platform, version line
 * (major.minor) and verdict under a bounded label set, and the distinct
 * users it blocked, verified (the request's credential authenticated)
 * apart from unverified (anyone may send any X-Client-User).
 *
 * Labels are bounded by construction, whatever the headers say:
 *   platform  a platform some policy version configured (at most
 *             GATEWATCH_PLATFORMS_MAX names, kept first come), else
 *             "other" (unknown platform, no header, the table full);
 *   line      "major.minor" for a line the current policy's rules name
 *             (min_supported, recommended, the bounds of blocked,
 *             deprecated and compat ranges, on any level; at most
 *             GATEWATCH_RULE_LINES_MAX per platform) or one of the first
 *             GATEWATCH_SEEN_LINES_MAX other lines seen per platform since
 *             the server started; "unparsed" for a missing or unparsable
 *             version; "other" for the rest.
 * A label once given is never taken back, so every counter only grows.
 *
 * The hot path (gatewatch_label, gatewatch_count) takes no lock once a
 * label exists: a scan of at most GATEWATCH_PLATFORMS_MAX names and
 * GATEWATCH_LINES_MAX integers, and a relaxed atomic add.  A new label
 * is added under `lock`, a leaf held for a few statements.
 *
 * Blocked users are held in two struct activity (core/activity.h), one
 * per verification, keyed by the caller's 64-bit keyed hash, with the
 * labels as platform and version; they are telemetry (kept in memory
 * only) and never what the impact computation reads (docs/client-policy.md).
 */
#ifndef TPW_API_GATEWATCH_H
#define TPW_API_GATEWATCH_H

#include "api/wbuf.h"
#include "core/policy.h"
#include "core/types.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define GATEWATCH_PLATFORMS_MAX	 POLICY_PLATFORMS_MAX
#define GATEWATCH_RULE_LINES_MAX 16
#define GATEWATCH_SEEN_LINES_MAX 8
/* "unparsed" and "other", then the named lines */
#define GATEWATCH_LINES_MAX                                                    \
	(2 + GATEWATCH_RULE_LINES_MAX + GATEWATCH_SEEN_LINES_MAX)
#define GATEWATCH_LINE_UNPARSED 0
#define GATEWATCH_LINE_OTHER	1
/* A line's numbers above this are "other": "99999.99999" at most. */
#define GATEWATCH_LINE_PART_MAX 99999u
#define GATEWATCH_LINE_BYTES	16
/* Sanitised header values in log lines: at most this many bytes. */
#define GATEWATCH_LOG_TEXT_BYTES 65
/* Verdicts counted (enum policy_verdict). */
#define GATEWATCH_VERDICTS 4

struct activity;

struct gatewatch_label {
	u8 platform; /* index; GATEWATCH_PLATFORMS_MAX is "other" */
	u8 line;     /* index into that platform's lines */
};

struct gatewatch_line {
	u32 major, minor; /* lines from index 2 */
	atomic_ullong decisions[GATEWATCH_VERDICTS];
};

struct gatewatch_platform {
	char name[POLICY_NAME_MAX + 1];
	atomic_uint nlines;	   /* published lines */
	atomic_bool seen_full;	   /* no room for another seen line */
	u8 rule_lines, seen_lines; /* under the lock */
	struct gatewatch_line lines[GATEWATCH_LINES_MAX];
};

/* A line a policy's rules name (gatewatch_rule_lines); a platform with
 * GATEWATCH_NO_LINE as major names the platform alone. */
struct gatewatch_rule_line {
	char platform[POLICY_NAME_MAX + 1];
	u8 policy_index; /* the platform's index in the policy */
	u32 major, minor;
};
#define GATEWATCH_NO_LINE	    UINT32_MAX
#define GATEWATCH_RULE_LINES_COPIED 256

struct gatewatch {
	pthread_mutex_t lock;	/* adding platforms and lines */
	atomic_uint nplatforms; /* published platforms */
	struct gatewatch_platform platforms[GATEWATCH_PLATFORMS_MAX + 1];
	_Atomic u64 seeded_version; /* the policy whose rule lines are in */
	/* policy platform index -> label index, for the seeded version:
	 * version << 8 | index (0: none), so the gate needs no strcmp */
	_Atomic u64 pmap[POLICY_PLATFORMS_MAX];
	pthread_mutex_t blocked_lock;
	struct activity *blocked[2]; /* [verified] */
};

int gatewatch_init(struct gatewatch *w);
void gatewatch_destroy(struct gatewatch *w);

/* The label of a decision, if it needs no new label: platform is the
 * configured platform's name (NULL: unknown or none), policy_index its
 * index in policy version `version`; valid says the version parsed.  Takes no
 * lock: the gate asks under the state read lock, and only when it answers false
 * copies the name out and calls gatewatch_label after it. */
bool gatewatch_label_find(struct gatewatch *w, const char *platform,
			  unsigned policy_index, u64 version, bool valid,
			  u64 major, u64 minor, struct gatewatch_label *out);
/* The same, adding the platform or line when the bounds leave room. */
struct gatewatch_label gatewatch_label(struct gatewatch *w,
				       const char *platform, bool valid,
				       u64 major, u64 minor);
/* Count one decision under l: a relaxed atomic add, inline. */
static inline void gatewatch_count(struct gatewatch *w,
				   struct gatewatch_label l, unsigned verdict)
{
	if (verdict >= GATEWATCH_VERDICTS ||
	    l.platform > GATEWATCH_PLATFORMS_MAX ||
	    l.line >= GATEWATCH_LINES_MAX)
		return;
	atomic_fetch_add_explicit(
		&w->platforms[l.platform].lines[l.line].decisions[verdict], 1,
		memory_order_relaxed);
}

/* The lines policy p's rules name (at most cap), for gatewatch_seed:
 * copied under the state read lock, seeded after it.  Returns how many. */
size_t gatewatch_rule_lines(const struct policy *p,
			    struct gatewatch_rule_line *out, size_t cap);
/* Give the lines their labels (as far as the bounds allow) and remember
 * that policy version's are in. */
void gatewatch_seed(struct gatewatch *w,
		    const struct gatewatch_rule_line *lines, size_t n,
		    u64 version);

/* The label texts. */
const char *gatewatch_platform_name(const struct gatewatch *w,
				    struct gatewatch_label l);
void gatewatch_line_name(const struct gatewatch *w, struct gatewatch_label l,
			 char out[GATEWATCH_LINE_BYTES]);

/* A raw copy of at most GATEWATCH_LOG_TEXT_BYTES - 1 of the len bytes
 * of in, cheap enough for the gate; sanitised when logged. */
static inline void gatewatch_copy(const char *in, size_t len,
				  char out[GATEWATCH_LOG_TEXT_BYTES])
{
	if (len > GATEWATCH_LOG_TEXT_BYTES - 1)
		len = GATEWATCH_LOG_TEXT_BYTES - 1;
	if (len)
		memcpy(out, in, len);
	out[len] = '\0';
}
/* A header value or rule for a log line: at most
 * GATEWATCH_LOG_TEXT_BYTES - 1 bytes of letters, digits and the
 * characters of versions and ranges (".+_/-<>=^~|*, "), any other '?'. */
void gatewatch_sanitize(const char *in, size_t len,
			char out[GATEWATCH_LOG_TEXT_BYTES]);

/* A blocked request of user (a keyed hash) under label l on day. */
void gatewatch_blocked(struct gatewatch *w, struct gatewatch_label l, u64 user,
		       bool verified, u32 day);
/* Distinct users of platform blocked in [today - 6, today]: out[0]
 * unverified, out[1] verified. */
void gatewatch_blocked_users(struct gatewatch *w, const char *platform,
			     u32 today, u64 out[2]);

/* The series tpwallet_client_policy_decisions_total{platform,line,verdict}
 * and tpwallet_client_policy_blocked_users{platform,line,verified}. */
void gatewatch_render(struct gatewatch *w, u32 today, struct wbuf *b);

#endif
