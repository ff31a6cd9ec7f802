/*
 * policy.h - the client-version policy: a strict parser of the policy
 * document, its canonical rendering and diff, the gate's decision for one
 * request, emergency overrides and feature flags (issue 3, items 2-5).
 *
 * Pure: no clock, no I/O, no threads.  Time is always a parameter, in
 * Unix seconds (int64_t, UTC), because every date in the document is whole
 * seconds (RFC 3339 "YYYY-MM-DDTHH:MM:SSZ").  docs/client-policy.md
 * describes the document for its authors; this header is the contract
 * for the code that calls it.
 *
 * Life cycle and ownership
 *   policy_parse() builds an immutable struct policy that the caller owns
 *   and releases with policy_free().  Every pointer found in it or in a
 *   struct policy_decision (names, texts, URLs, ranges) points into the
 *   policy and is valid until policy_free(); a decision must not outlive
 *   the policy that produced it.  A parsed policy is never modified, so
 *   any number of threads may evaluate against it at once.
 *
 * The decision (policy_evaluate) allocates nothing, takes no lock and
 * reads nothing but its arguments: it runs on every request.  Rules are
 * tried in this order, the first that applies decides:
 *   0. unknown platform       -> document's unknown_platform (allow, or
 *      (or none)                 block with status 403)
 *   1. missing or unparsable  -> rules' missing_version (allow|block)
 *      version
 *   2. in a `blocked` range   -> blocked
 *   3. below `min_supported`  -> blocked
 *   4. in a `compat` range    -> compat
 *   5. in a `deprecated`      -> deprecated, or blocked when now >= its
 *      range                     sunset (past_sunset)
 *   6. otherwise              -> supported
 * Then active overrides (not_before <= now < expires_at) for the
 * platform whose range holds the version may relax a `blocked` verdict
 * of rules 2, 3 and 5: `allow` serves it as supported, `compat` in
 * compatibility mode; when both kinds match, allow wins.  Overrides never
 * apply to rules 0 and 1 (there is no version to match).
 *
 * Rules of a platform come from three levels: the platform itself, then
 * `channels.<channel>`, then `countries.<country>`; a key present at a
 * later level replaces the earlier value whole (lists and message maps
 * are not merged).  So country beats channel beats platform.
 *
 * Parsing, rendering, diffing and override validation allocate and are
 * the slow, careful side; their errors fill a struct policy_err whose
 * msg is "<path>: <reason>", for instance
 *   platforms.android.deprecated[0].sunset: not an RFC 3339 UTC date-time
 * Paths are dotted keys and [index]es from the document root; an error
 * about the root itself, or a JSON syntax error, has path "$".
 *
 * Return values: 0, or a negative errno: -EINVAL (the input is wrong),
 * -E2BIG (past one of the limits below), -ENOMEM.
 */
#ifndef TPW_CORE_POLICY_H
#define TPW_CORE_POLICY_H

#include "core/rollout.h"
#include "core/semver.h"
#include "core/types.h"

/* --- limits ---------------------------------------------------------------
 * Every list, map and string of the document has a maximum; past it the
 * document is refused with -E2BIG and the path of the offending field. */
#define POLICY_DOC_BYTES_MAX	 (256 * 1024) /* document text */
#define POLICY_DEPTH_MAX	 12	      /* JSON nesting */
#define POLICY_PLATFORMS_MAX	 16
#define POLICY_CHANNELS_MAX	 8    /* per platform */
#define POLICY_COUNTRIES_MAX	 64   /* per platform, and per flag */
#define POLICY_RANGES_MAX	 32   /* per blocked, deprecated, compat list */
#define POLICY_RANGES_TOTAL_MAX	 1024 /* compiled ranges in one document */
#define POLICY_NOTICES_MAX	 16
#define POLICY_FLAGS_MAX	 64 /* fits a u64 bit set */
#define POLICY_LOCALES_MAX	 32 /* per localised text, "default" included */
#define POLICY_TARGETS_MAX	 16 /* platforms named by one flag or notice */
#define POLICY_NAME_MAX		 32 /* platform and channel names */
#define POLICY_ID_MAX		 64 /* flag names and notice ids */
#define POLICY_TAG_MAX		 35 /* BCP 47 language tag */
#define POLICY_URL_MAX		 512
#define POLICY_TEXT_MAX		 2048 /* one message, note or notice text */
#define POLICY_PATH_MAX		 160  /* error path, truncated with "..." */
#define POLICY_ERR_MSG_BYTES	 320
#define POLICY_OVERRIDES_MAX	 64  /* active overrides per evaluation */
#define POLICY_REASON_MAX	 256 /* override reason */
#define POLICY_OVERRIDE_MIN_S	 60
#define POLICY_OVERRIDE_MAX_S	 (7 * 24 * 3600)
#define POLICY_LANGUAGES_MAX	 256 /* Accept-Language text scanned */
#define POLICY_LANGUAGE_TAGS_MAX 8   /* of its tags, the first ones used */
/* An override's message (canonical JSON of its localised text) */
#define POLICY_MESSAGE_BYTES_MAX 8192

/* "No date": a sunset, starts_at... that the document leaves out. */
#define POLICY_TIME_NONE INT64_MIN

struct policy_err {
	char path[POLICY_PATH_MAX];
	char msg[POLICY_ERR_MSG_BYTES]; /* "<path>: <reason>" */
};

/* --- verdicts and reasons ------------------------------------------------ */

#define POLICY_VERDICT_MAP(X)                                                  \
	X(SUPPORTED, "supported")                                              \
	X(DEPRECATED, "deprecated")                                            \
	X(COMPAT, "compat")                                                    \
	X(BLOCKED, "blocked")

enum policy_verdict {
#define X(e, s) POLICY_##e,
	POLICY_VERDICT_MAP(X)
#undef X
		POLICY_VERDICTS
};

/* Which rule decided; the stable name goes in the decision body. */
#define POLICY_REASON_MAP(X)                                                   \
	X(NO_RULE, "no_rule")                                                  \
	X(UNKNOWN_PLATFORM_ALLOWED, "unknown_platform_allowed")                \
	X(UNKNOWN_PLATFORM_BLOCKED, "unknown_platform_blocked")                \
	X(MISSING_VERSION_ALLOWED, "missing_version_allowed")                  \
	X(MISSING_VERSION_BLOCKED, "missing_version_blocked")                  \
	X(BLOCKED_RANGE, "blocked_range")                                      \
	X(BELOW_MIN_SUPPORTED, "below_min_supported")                          \
	X(COMPAT_RANGE, "compat_range")                                        \
	X(DEPRECATED_RANGE, "deprecated_range")                                \
	X(PAST_SUNSET, "past_sunset")

enum policy_reason {
#define X(e, s) POLICY_REASON_##e,
	POLICY_REASON_MAP(X)
#undef X
		POLICY_REASONS
};

const char *policy_verdict_name(enum policy_verdict v);
const char *policy_reason_name(enum policy_reason r);

/* --- the document model ---------------------------------------------------
 * Read-only for callers; docs/client-policy.md gives each key's meaning. */

enum policy_missing { POLICY_MISSING_ALLOW = 0, POLICY_MISSING_BLOCK = 1 };
enum policy_severity {
	POLICY_SEVERITY_INFO = 0,
	POLICY_SEVERITY_WARNING,
	POLICY_SEVERITY_CRITICAL,
};

/* A range as written (text) and compiled. */
struct policy_range {
	const char *text;
	struct semver_range r;
};

struct policy_deprecation {
	struct policy_range range;
	int64_t since_s;  /* or POLICY_TIME_NONE */
	int64_t sunset_s; /* or POLICY_TIME_NONE */
};

/* A localised text: "default" and up to POLICY_LOCALES_MAX - 1 tags,
 * kept in canonical case (RFC 5646 2.1.1) and sorted. */
struct policy_locale_text {
	const char *tag;
	const char *text;
};
struct policy_text {
	const char *def; /* NULL when the text is absent */
	u16 n;
	const struct policy_locale_text *loc;
};

/* Bits of policy_rules.set: which keys this level of rules gives. */
enum policy_rule_key {
	POLICY_K_MIN_SUPPORTED = 1u << 0,
	POLICY_K_RECOMMENDED = 1u << 1,
	POLICY_K_RECOMMENDED_ROLLOUT = 1u << 2,
	POLICY_K_BLOCKED = 1u << 3,
	POLICY_K_DEPRECATED = 1u << 4,
	POLICY_K_COMPAT = 1u << 5,
	POLICY_K_UPGRADE_URL = 1u << 6,
	POLICY_K_MESSAGES = 1u << 7,
	POLICY_K_RELEASE_NOTES = 1u << 8,
	POLICY_K_BLOCKED_STATUS = 1u << 9,
	POLICY_K_MISSING_VERSION = 1u << 10,
	POLICY_K_VERSION_MODE = 1u << 11,
};

/* One level of rules.  A platform's own level holds every key (defaults
 * filled in); channel and country levels only those in `set`. */
struct policy_rules {
	u32 set;
	struct semver min_supported; /* points into min_supported_text */
	struct semver recommended;
	const char *min_supported_text; /* NULL: no minimum */
	const char *recommended_text;	/* NULL: none */
	u8 recommended_rollout;		/* percent, default 100 */
	u8 missing_version;		/* enum policy_missing */
	u8 version_mode;		/* enum semver_mode */
	u16 blocked_status;		/* 426 (default) or 403 */
	u16 nblocked, ndeprecated, ncompat;
	const struct policy_range *blocked;
	const struct policy_deprecation *deprecated;
	const struct policy_range *compat;
	const char *upgrade_url;		      /* or NULL */
	struct policy_text messages[POLICY_VERDICTS]; /* per verdict */
	struct policy_text release_notes;
};

struct policy_level {
	const char *name; /* channel name, or country code "DE" */
	struct policy_rules rules;
};

struct policy_platform {
	const char *name;
	const char *recommended_group; /* "recommended.<name>" for buckets */
	struct rollout_murmur3
		recommended_prefix; /* hash state of "<group>:" */
	struct policy_rules rules;
	u16 nchannels, ncountries;
	const struct policy_level *channels;  /* sorted by name */
	const struct policy_level *countries; /* sorted by code */
};

struct policy_notice {
	const char *id;
	u8 severity; /* enum policy_severity */
	struct policy_text text;
	int64_t starts_at_s; /* or POLICY_TIME_NONE: from the start */
	int64_t ends_at_s;   /* or POLICY_TIME_NONE: until removed */
	int64_t expected_resolution_at_s; /* or POLICY_TIME_NONE */
	u16 nplatforms;			  /* 0: every platform */
	const char *const *platforms;
	u32 platform_mask; /* bit i: platforms[] names policy->platforms[i] */
};

struct policy_flag {
	const char *name;
	struct rollout_murmur3 prefix; /* hash state of "<name>:" */
	u8 rollout;		       /* percent */
	u16 nplatforms, ncountries;
	const char *const *platforms; /* 0: any platform */
	const char *const *countries; /* 0: any country */
	u32 platform_mask; /* bit i: platforms[] names policy->platforms[i] */
	bool has_versions;
	struct policy_range versions; /* when has_versions */
};

struct policy {
	u8 unknown_platform; /* enum policy_missing */
	u16 nplatforms, nnotices, nflags;
	const struct policy_platform *platforms; /* sorted by name */
	const struct policy_notice *notices;	 /* document order */
	const struct policy_flag *flags;	 /* sorted by name */
	void *arena;				 /* private */
};

/* Parse and validate text[0..len) (UTF-8 JSON).  On success *out is a new
 * policy owned by the caller; on failure *out is NULL and err (if not
 * NULL) says where and why. */
int policy_parse(const char *text, size_t len, struct policy **out,
		 struct policy_err *err);

void policy_free(struct policy *p);

/* The canonical JSON text of p: keys sorted, no whitespace, dates and
 * language tags in canonical form, keys equal to their default left out.
 * Two documents that mean the same render byte-identically, and the
 * rendering parses back to a policy that renders the same.  *out is
 * malloc'd, NUL-terminated, *len bytes; the caller frees it with free(). */
int policy_render(const struct policy *p, char **out, size_t *len);

/* The structural difference between a and b, as a JSON array of
 * {"path": "...", "old": v, "new": v} in path order, where null stands
 * for "absent" (the document has no nulls).  Lists are compared index by
 * index.  *out is malloc'd (free()); *nchanges may be NULL. */
int policy_diff(const struct policy *a, const struct policy *b, char **out,
		size_t *nchanges);

/* --- overrides -----------------------------------------------------------
 * An operator's time-limited relaxation (issue 3, item 4).  Plain data,
 * copyable by value; the caller keeps the list (the journal will). */

enum policy_override_mode {
	POLICY_OVERRIDE_COMPAT = 0, /* blocked -> compat */
	POLICY_OVERRIDE_ALLOW = 1,  /* blocked -> supported */
};

struct policy_override {
	u64 id; /* the caller's; not used here */
	int64_t not_before_s;
	int64_t expires_at_s; /* exclusive */
	u8 mode;	      /* enum policy_override_mode */
	char platform[POLICY_NAME_MAX + 1];
	char range_text[SEMVER_RANGE_TEXT_MAX + 1];
	char reason[POLICY_REASON_MAX + 1]; /* operators' only: never shown
					     * to clients */
	struct semver_range range;
	/* For the users of the versions it relaxes (NULL: none), owned by
	 * whoever keeps the override (core/pstate); and when the operator
	 * expects the cause fixed (informational: POLICY_TIME_NONE when not
	 * said; expires_at_s is what ends it). */
	const struct policy_text *message;
	int64_t expected_end_s;
};

/* Validate an override request and fill *o, active from now_s for
 * duration_s (POLICY_OVERRIDE_MIN_S .. POLICY_OVERRIDE_MAX_S).  platform
 * is a valid platform name (policy_override_fit checks it against a policy),
 * range compiles, mode is "compat" or "allow", reason is 1..POLICY_REASON_MAX
 * bytes of UTF-8 without control characters.  Error paths name the
 * request's keys ("duration_s: ..."). */
int policy_override_init(struct policy_override *o, const char *platform,
			 const char *range, const char *mode,
			 int64_t duration_s, const char *reason, int64_t now_s,
			 struct policy_err *err);

/* The same from a request body {"platform", "range", "mode",
 * "duration_s", "reason"} (all required, no other key). */
int policy_override_parse(const char *json, size_t len, int64_t now_s,
			  struct policy_override *o, struct policy_err *err);

bool policy_override_active(const struct policy_override *o, int64_t now_s);

/* An override's user-facing message: a localised text ({"default": ...,
 * "<BCP 47 tag>": ...}) under the rules of the document's messages
 * (POLICY_LOCALES_MAX, POLICY_TEXT_MAX each), at most
 * POLICY_MESSAGE_BYTES_MAX bytes of JSON; error paths start "message".
 * The parsed form owns its memory (policy_message_free); the text it
 * gives is valid until then.  policy_message_render writes the
 * canonical JSON (sorted keys, canonical tags; malloc'd, free()). */
struct policy_message;
int policy_message_parse(const char *json, size_t len,
			 struct policy_message **out, struct policy_err *err);
void policy_message_free(struct policy_message *m);
const struct policy_text *policy_message_text(const struct policy_message *m);
int policy_message_render(const struct policy_message *m, char **out,
			  size_t *len);

/* Would the override relax anything under policy p (NULL: none set)?
 * The guard rail of POST /v1/client-policy/overrides (issue 11, item 5;
 * docs/client-policy.md, "Overrides that relax nothing").  An override
 * can only relax a blocked verdict of rules 2, 3 and 5, so it fits when
 * its platform is in p and its range meets one of that platform's
 * restricting ranges, on any level (platform, channel, country): a
 * `blocked` range, "below min_supported", or a `deprecated` range that
 * has a sunset.  Two ranges meet when an alternative of each bounds a
 * common interval of versions by precedence (npm's prerelease rule is
 * not considered, so the check errs towards accepting). */
enum policy_override_fit {
	POLICY_OVERRIDE_FITS = 0,
	POLICY_OVERRIDE_NO_POLICY,	 /* no policy is set */
	POLICY_OVERRIDE_NO_PLATFORM,	 /* the platform is not in p */
	POLICY_OVERRIDE_NOTHING_BLOCKED, /* the platform restricts nothing */
	POLICY_OVERRIDE_NO_OVERLAP,	 /* the range meets no restriction */
};
enum policy_override_fit policy_override_fit(const struct policy *p,
					     const struct policy_override *o);

/* --- the decision -------------------------------------------------------- */

struct policy_query {
	const char *platform; /* platform_len bytes; NULL: none */
	size_t platform_len;
	const char *version; /* version_len bytes; NULL: header missing */
	size_t version_len;
	const char *channel;   /* NUL-terminated or NULL */
	const char *country;   /* ISO 3166-1 alpha-2, any case, or NULL */
	const char *user;      /* NUL-terminated or NULL (see rollout.h) */
	const char *languages; /* Accept-Language value, one tag, or NULL */
	int64_t now_s;
};

/* Split an X-Client-Version value "<platform>/<version>" at its first
 * '/' into q->platform and q->version (pointing into value).  A value
 * without '/' ("ios") or with nothing after it ("ios/") is a platform
 * without version (rule 1); an empty platform ("/4.2.0", "") leaves
 * both NULL (rule 0). */
void policy_query_set_client_version(struct policy_query *q, const char *value,
				     size_t len);

struct policy_decision {
	u8 verdict;		     /* enum policy_verdict */
	u8 verdict_without_override; /* what the rules alone decided */
	u8 reason;		     /* enum policy_reason */
	bool version_valid;	     /* version parsed */
	bool update_available;	     /* version < recommended shown */
	u16 status;		     /* refusal status when blocked, else 0 */
	struct semver version;	     /* when version_valid; into q->version */
	const struct policy_platform *platform; /* NULL when unknown */
	const char *channel_applied;		/* level names used, or NULL */
	const char *country_applied;
	const char *rule; /* text of the deciding range/min, or NULL */
	int64_t deprecated_since_s; /* or POLICY_TIME_NONE */
	int64_t sunset_s;	    /* deprecated or past_sunset, else NONE */
	const char *min_supported;  /* effective rules' texts, or NULL */
	const char *recommended;    /* NULL outside its rollout */
	const char *upgrade_url;
	const char *message;	   /* for the verdict, best locale, or NULL */
	const char *release_notes; /* best locale, or NULL */
	const struct policy_override *override; /* relaxed it, or NULL */
	const char *override_message; /* its message, best locale, or NULL */
	u8 nnotices;
	const struct policy_notice *notice[POLICY_NOTICES_MAX];
	const char *notice_text[POLICY_NOTICES_MAX];
	u64 flags; /* bit i: policy->flags[i] is on for this request */
};

/* Decide for one request (see the order at the top).  overrides[0..n)
 * may hold inactive or other platforms' overrides: they are skipped; at
 * most POLICY_OVERRIDES_MAX are looked at.  Locale choice: the first
 * POLICY_LANGUAGE_TAGS_MAX tags of q->languages are tried in the order
 * written (q-values other than 0 are ignored, q=0 excludes a tag), each
 * by RFC 4647 lookup ("de-CH" then "de"), then "default".  For an
 * unknown platform the version (read leniently) only serves flag
 * targeting.  Flags are on when their targeting matches and
 * rollout_enabled(rollout, "<flag>", user).  Returns 0, or -EINVAL when
 * p, q or out is NULL. */
int policy_evaluate(const struct policy *p, const struct policy_query *q,
		    const struct policy_override *overrides, size_t n,
		    struct policy_decision *out);

/* The earliest time after now_s at which a decision for platform (NULL:
 * any platform) may change as already scheduled: an override's start or
 * end (overrides[0..n), as policy_evaluate takes them), and in p (may
 * be NULL) a deprecation's sunset on any level or a notice's start or
 * end.  POLICY_TIME_NONE when none.  What bounds a signed manifest's
 * lifetime. */
int64_t policy_next_change(const struct policy *p, const char *platform,
			   const struct policy_override *overrides, size_t n,
			   int64_t now_s);

/* Index of flag `name` in p->flags, or -1. */
int policy_flag_index(const struct policy *p, const char *name);

/* t (seconds since the epoch, 1970..9999) as RFC 3339 UTC
 * "YYYY-MM-DDTHH:MM:SSZ", the one form this project writes (documents,
 * replies, the CLI).  0, or -ERANGE (out is then untouched). */
#define POLICY_TIME_TEXT_BYTES 21
int policy_format_time(int64_t t, char out[POLICY_TIME_TEXT_BYTES]);
/* The reverse: s[0..len) in that form into *out.  NULL, or why it is
 * not such a date (a static string). */
const char *policy_parse_time(const char *s, size_t len, int64_t *out);

/* The decision as a JSON object (jansson; the caller json_decref()s
 * it), as GET /v1/client-policy/evaluate answers it and the manifest
 * signs it: decision, reason, rule, min_supported, recommended,
 * update_available, upgrade_url, message, release_notes, status (when
 * blocked), deprecated_since, sunset, channel, country, override (id, platform,
 * range, mode, expires_at, message, expected_end: never its reason) and
 * decision_without_override (when one relaxed it), notices, flags.
 * Times are RFC 3339.  NULL when out of memory.  p may be NULL (no
 * policy: no flags). */
struct json_t;
struct json_t *policy_decision_json(const struct policy *p,
				    const struct policy_decision *d);

#endif
