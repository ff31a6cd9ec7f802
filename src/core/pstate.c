/*
 * pstate.c - the client-version policy as state of the log.  See
 * pstate.h.
 */
#include "core/pstate.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct version_rec {
	u64 timestamp;
	u8 author[32];
	u64 rollback_of;
	char reason[PSTATE_REASON_BYTES];
	char *text; /* canonical rendering, NUL-terminated */
	size_t text_len;
};

struct override_rec {
	u64 timestamp;
	struct pstate_override_cmd cmd;
	int64_t not_before_s, expires_at_s;
	bool ended_early;
	u64 end_timestamp; /* ended early: the end command's */
	u8 end_author[32];
	char end_reason[PSTATE_REASON_BYTES];
	u64 expired_timestamp; /* its expiry entry's, or 0 */
	u32 extensions;
	u64 last_extension;	/* index + 1 into pstate.extensions, or 0 */
	u16 kind;		/* 17 or 20 */
	int64_t expected_end_s; /* or POLICY_TIME_NONE */
	char *message_json;	/* canonical, NUL-terminated, or NULL */
	u32 message_len;
	struct policy_message *message; /* parsed message_json */
};

struct extension_rec {
	u64 timestamp;
	u64 id; /* the override's */
	u8 author[32];
	u32 duration_s;
	int64_t expires_at_s;
	char reason[PSTATE_REASON_BYTES];
	u64 prev; /* index + 1 of the override's one before, or 0 */
};

struct pstate {
	struct version_rec *versions;
	u64 nversions, cap_versions;
	struct policy *current; /* parsed text of the last version */
	struct override_rec *overrides;
	u64 noverrides, cap_overrides;
	struct extension_rec *extensions;
	u64 nextensions, cap_extensions;
	/* Every override before this index ended early or has its expiry
	 * entry: where the expiry scans start (derived, not in the digest). */
	u64 first_open;
	/* not yet expired at the last apply; each .id = index + 1 */
	struct policy_override live[POLICY_OVERRIDES_MAX];
	size_t nlive;
};

static int64_t seconds(u64 ts_ns)
{
	return (int64_t)(ts_ns / 1000000000u);
}

static bool grow(void **p, u64 *cap, u64 n, size_t size)
{
	if (n < *cap)
		return true;
	u64 c = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, c * size);
	if (!q)
		return false;
	*p = q;
	*cap = c;
	return true;
}

struct pstate *pstate_new(void)
{
	return calloc(1, sizeof(struct pstate));
}

void pstate_free(struct pstate *s)
{
	if (!s)
		return;
	for (u64 i = 0; i < s->nversions; i++)
		free(s->versions[i].text);
	free(s->versions);
	for (u64 i = 0; i < s->noverrides; i++) {
		free(s->overrides[i].message_json);
		policy_message_free(s->overrides[i].message);
	}
	free(s->overrides);
	free(s->extensions);
	policy_free(s->current);
	free(s);
}

/* Drop the live overrides expired at now (deterministic: now is the
 * record's time). */
static void prune_live(struct pstate *s, int64_t now)
{
	size_t k = 0;
	for (size_t i = 0; i < s->nlive; i++)
		if (s->live[i].expires_at_s > now)
			s->live[k++] = s->live[i];
	s->nlive = k;
}

static bool text_ok(const char *t, size_t n)
{
	return strnlen(t, n) < n; /* NUL-terminated within the field */
}

static bool override_cmd_ok(const struct pstate_override_cmd *c)
{
	return text_ok(c->platform, sizeof(c->platform)) &&
	       text_ok(c->range, sizeof(c->range)) &&
	       text_ok(c->reason, sizeof(c->reason)) && c->mode <= 1;
}

bool pstate_command_valid(u16 kind, const void *ext, u32 ext_bytes)
{
	switch (kind) {
	case PSTATE_CMD_SET: {
		struct pstate_set h;
		if (ext_bytes < sizeof(h))
			return false;
		memcpy(&h, ext, sizeof(h));
		u64 padded = ((u64)h.text_bytes + 15) / 16 * 16;
		return sizeof(h) + padded == ext_bytes && h.text_bytes > 0 &&
		       h.text_bytes <= POLICY_DOC_BYTES_MAX &&
		       text_ok(h.reason, sizeof(h.reason));
	}
	case PSTATE_CMD_OVERRIDE: {
		struct pstate_override_cmd c;
		if (ext_bytes != sizeof(c))
			return false;
		memcpy(&c, ext, sizeof(c));
		return override_cmd_ok(&c);
	}
	case PSTATE_CMD_OVERRIDE_2: {
		struct pstate_override_2 c;
		if (ext_bytes < sizeof(c))
			return false;
		memcpy(&c, ext, sizeof(c));
		u64 padded = ((u64)c.message_bytes + 15) / 16 * 16;
		return c.message_bytes <= POLICY_MESSAGE_BYTES_MAX &&
		       sizeof(c) + padded == ext_bytes && c.reserved == 0 &&
		       c.expected_end_s >= 0 &&
		       c.expected_end_s <= PSTATE_EXPECTED_END_MAX_S &&
		       override_cmd_ok(&c.base);
	}
	case PSTATE_CMD_OVERRIDE_END: {
		struct pstate_override_end e;
		if (ext_bytes != sizeof(e))
			return false;
		memcpy(&e, ext, sizeof(e));
		return text_ok(e.reason, sizeof(e.reason));
	}
	case PSTATE_CMD_OVERRIDE_EXTEND: {
		struct pstate_override_extend x;
		if (ext_bytes != sizeof(x))
			return false;
		memcpy(&x, ext, sizeof(x));
		return text_ok(x.reason, sizeof(x.reason)) && x.reserved == 0 &&
		       x.duration_s >= POLICY_OVERRIDE_MIN_S &&
		       x.duration_s <= POLICY_OVERRIDE_MAX_S;
	}
	case PSTATE_CMD_OVERRIDE_EXPIRED: {
		struct pstate_override_expired x;
		if (ext_bytes != sizeof(x))
			return false;
		memcpy(&x, ext, sizeof(x));
		return x.id != 0 && x.expires_at_s > 0;
	}
	default: return false;
	}
}

static int apply_set(struct pstate *s, const u8 *ext, u32 ext_bytes, u64 ts,
		     u32 *outcome)
{
	struct pstate_set h;
	if (!pstate_command_valid(PSTATE_CMD_SET, ext, ext_bytes))
		return -EBADMSG;
	memcpy(&h, ext, sizeof(h));
	if (s->nversions >= PSTATE_VERSIONS_MAX) {
		*outcome = PSTATE_FULL;
		return 0;
	}
	prune_live(s, seconds(ts));
	if (h.rollback_of && h.rollback_of > s->nversions) {
		*outcome = PSTATE_NOT_FOUND;
		return 0;
	}
	struct policy *p = NULL;
	struct policy_err err;
	int ret = policy_parse((const char *)ext + sizeof(h), h.text_bytes, &p,
			       &err);
	if (ret == -ENOMEM)
		return ret;
	if (ret != 0) {
		*outcome = PSTATE_INVALID;
		return 0;
	}
	char *text = NULL;
	size_t len = 0;
	if (policy_render(p, &text, &len) != 0) {
		policy_free(p);
		return -ENOMEM;
	}
	if (len > POLICY_DOC_BYTES_MAX) {
		/* the canonical form must fit where the text did: snapshots
		 * read back at most this */
		free(text);
		policy_free(p);
		*outcome = PSTATE_INVALID;
		return 0;
	}
	if (s->nversions && s->versions[s->nversions - 1].text_len == len &&
	    memcmp(s->versions[s->nversions - 1].text, text, len) == 0) {
		free(text);
		policy_free(p);
		*outcome = PSTATE_UNCHANGED;
		return 0;
	}
	if (!grow((void **)&s->versions, &s->cap_versions, s->nversions,
		  sizeof(*s->versions))) {
		free(text);
		policy_free(p);
		return -ENOMEM;
	}
	struct version_rec *v = &s->versions[s->nversions++];
	memset(v, 0, sizeof(*v));
	v->timestamp = ts;
	memcpy(v->author, h.author, 32);
	v->rollback_of = h.rollback_of;
	memcpy(v->reason, h.reason, sizeof(v->reason));
	v->text = text;
	v->text_len = len;
	policy_free(s->current);
	s->current = p;
	*outcome = PSTATE_OK;
	return 0;
}

/* What an override record adds to the parsed form the gate reads. */
static void live_extras(const struct override_rec *r, struct policy_override *o)
{
	o->message = r->message ? policy_message_text(r->message) : NULL;
	o->expected_end_s = r->expected_end_s;
}

/* Open an override (kinds 17 and 20): c as journaled, and kind 20's
 * message (msg_len bytes, 0: none) and expected end (0: none). */
static int open_override(struct pstate *s, u16 kind,
			 const struct pstate_override_cmd *c, const char *msg,
			 u32 msg_len, int64_t expected_end_s, u64 ts,
			 u32 *outcome)
{
	int64_t now = seconds(ts);
	prune_live(s, now);
	if (s->noverrides >= PSTATE_OVERRIDES_MAX ||
	    s->nlive >= POLICY_OVERRIDES_MAX) {
		*outcome = PSTATE_FULL;
		return 0;
	}
	struct policy_override o;
	struct policy_err err;
	if (policy_override_init(
		    &o, c->platform, c->range,
		    c->mode == POLICY_OVERRIDE_ALLOW ? "allow" : "compat",
		    (int64_t)c->duration_s, c->reason, now, &err) != 0) {
		*outcome = PSTATE_INVALID;
		return 0;
	}
	struct policy_message *m = NULL;
	char *json = NULL;
	if (msg_len) {
		int ret = policy_message_parse(msg, msg_len, &m, &err);
		if (ret == -ENOMEM)
			return ret;
		if (ret != 0) {
			*outcome = PSTATE_INVALID;
			return 0;
		}
		json = malloc(msg_len + 1);
		if (!json) {
			policy_message_free(m);
			return -ENOMEM;
		}
		memcpy(json, msg, msg_len);
		json[msg_len] = '\0';
	}
	if (!grow((void **)&s->overrides, &s->cap_overrides, s->noverrides,
		  sizeof(*s->overrides))) {
		free(json);
		policy_message_free(m);
		return -ENOMEM;
	}
	struct override_rec *r = &s->overrides[s->noverrides++];
	memset(r, 0, sizeof(*r));
	r->timestamp = ts;
	r->cmd = *c;
	r->not_before_s = o.not_before_s;
	r->expires_at_s = o.expires_at_s;
	r->kind = kind;
	r->expected_end_s = expected_end_s ? expected_end_s : POLICY_TIME_NONE;
	r->message_json = json;
	r->message_len = msg_len;
	r->message = m;
	o.id = s->noverrides;
	live_extras(r, &o);
	s->live[s->nlive++] = o;
	*outcome = PSTATE_OK;
	return 0;
}

/* Move first_open past the overrides that need no expiry entry. */
static void advance_open(struct pstate *s)
{
	while (s->first_open < s->noverrides &&
	       (s->overrides[s->first_open].ended_early ||
		s->overrides[s->first_open].expired_timestamp))
		s->first_open++;
}

static int apply_override(struct pstate *s, u16 kind, const u8 *ext,
			  u32 ext_bytes, u64 ts, u32 *outcome)
{
	if (!pstate_command_valid(kind, ext, ext_bytes))
		return -EBADMSG;
	if (kind == PSTATE_CMD_OVERRIDE) {
		struct pstate_override_cmd c;
		memcpy(&c, ext, sizeof(c));
		return open_override(s, kind, &c, NULL, 0, 0, ts, outcome);
	}
	struct pstate_override_2 c;
	memcpy(&c, ext, sizeof(c));
	return open_override(s, kind, &c.base, (const char *)ext + sizeof(c),
			     c.message_bytes, c.expected_end_s, ts, outcome);
}

/* The override id names, if it is still running at now (after pruning);
 * else NULL with *outcome PSTATE_NOT_FOUND or PSTATE_ENDED. */
static struct override_rec *running_override(struct pstate *s, u64 id,
					     int64_t now, u32 *outcome)
{
	prune_live(s, now);
	if (id == 0 || id > s->noverrides) {
		*outcome = PSTATE_NOT_FOUND;
		return NULL;
	}
	struct override_rec *r = &s->overrides[id - 1];
	if (r->expires_at_s <= now) {
		*outcome = PSTATE_ENDED;
		return NULL;
	}
	return r;
}

static int apply_override_end(struct pstate *s, const u8 *ext, u32 ext_bytes,
			      u64 ts, u32 *outcome)
{
	struct pstate_override_end e;
	if (!pstate_command_valid(PSTATE_CMD_OVERRIDE_END, ext, ext_bytes))
		return -EBADMSG;
	memcpy(&e, ext, sizeof(e));
	int64_t now = seconds(ts);
	struct override_rec *r = running_override(s, e.id, now, outcome);
	if (!r)
		return 0;
	r->expires_at_s = now;
	r->ended_early = true;
	r->end_timestamp = ts;
	memcpy(r->end_author, e.author, sizeof(r->end_author));
	memcpy(r->end_reason, e.reason, sizeof(r->end_reason));
	advance_open(s);
	for (size_t i = 0; i < s->nlive; i++)
		if (s->live[i].id == e.id)
			s->live[i].expires_at_s = now;
	prune_live(s, now);
	*outcome = PSTATE_OK;
	return 0;
}

static int apply_override_extend(struct pstate *s, const u8 *ext, u32 ext_bytes,
				 u64 ts, u32 *outcome)
{
	struct pstate_override_extend x;
	if (!pstate_command_valid(PSTATE_CMD_OVERRIDE_EXTEND, ext, ext_bytes))
		return -EBADMSG;
	memcpy(&x, ext, sizeof(x));
	int64_t now = seconds(ts);
	struct override_rec *r = running_override(s, x.id, now, outcome);
	if (!r)
		return 0;
	int64_t end = now + (int64_t)x.duration_s;
	if (end <= r->expires_at_s) {
		*outcome = PSTATE_INVALID;
		return 0;
	}
	if (!grow((void **)&s->extensions, &s->cap_extensions, s->nextensions,
		  sizeof(*s->extensions)))
		return -ENOMEM;
	struct extension_rec *xr = &s->extensions[s->nextensions++];
	memset(xr, 0, sizeof(*xr));
	xr->timestamp = ts;
	xr->id = x.id;
	memcpy(xr->author, x.author, sizeof(xr->author));
	xr->duration_s = x.duration_s;
	xr->expires_at_s = end;
	memcpy(xr->reason, x.reason, sizeof(xr->reason));
	xr->prev = r->last_extension;
	r->last_extension = s->nextensions;
	r->extensions++;
	r->expires_at_s = end;
	for (size_t i = 0; i < s->nlive; i++)
		if (s->live[i].id == x.id)
			s->live[i].expires_at_s = end;
	*outcome = PSTATE_OK;
	return 0;
}

/* Informational: the gate already treats the override as over (its
 * expires_at_s has passed); this records that the expiry is an entry. */
static int apply_override_expired(struct pstate *s, const u8 *ext,
				  u32 ext_bytes, u64 ts, u32 *outcome)
{
	struct pstate_override_expired x;
	if (!pstate_command_valid(PSTATE_CMD_OVERRIDE_EXPIRED, ext, ext_bytes))
		return -EBADMSG;
	memcpy(&x, ext, sizeof(x));
	int64_t now = seconds(ts);
	prune_live(s, now);
	if (x.id > s->noverrides) {
		*outcome = PSTATE_NOT_FOUND;
		return 0;
	}
	struct override_rec *r = &s->overrides[x.id - 1];
	if (r->ended_early)
		*outcome = PSTATE_ENDED;
	else if (r->expired_timestamp)
		*outcome = PSTATE_UNCHANGED;
	else if (r->expires_at_s != x.expires_at_s || r->expires_at_s > now)
		*outcome = PSTATE_INVALID;
	else {
		r->expired_timestamp = ts;
		advance_open(s);
		*outcome = PSTATE_OK;
	}
	return 0;
}

int pstate_apply(struct pstate *s, u16 kind, const void *ext, u32 ext_bytes,
		 u64 timestamp, u32 *outcome)
{
	switch (kind) {
	case PSTATE_CMD_SET:
		return apply_set(s, ext, ext_bytes, timestamp, outcome);
	case PSTATE_CMD_OVERRIDE:
	case PSTATE_CMD_OVERRIDE_2:
		return apply_override(s, kind, ext, ext_bytes, timestamp,
				      outcome);
	case PSTATE_CMD_OVERRIDE_END:
		return apply_override_end(s, ext, ext_bytes, timestamp,
					  outcome);
	case PSTATE_CMD_OVERRIDE_EXTEND:
		return apply_override_extend(s, ext, ext_bytes, timestamp,
					     outcome);
	case PSTATE_CMD_OVERRIDE_EXPIRED:
		return apply_override_expired(s, ext, ext_bytes, timestamp,
					      outcome);
	default: return -EBADMSG;
	}
}

/* ---- reading ------------------------------------------------------------ */

const struct policy *pstate_current(const struct pstate *s, u64 *version)
{
	if (version)
		*version = s->nversions;
	return s->current;
}

u64 pstate_version_count(const struct pstate *s)
{
	return s->nversions;
}

bool pstate_version_get(const struct pstate *s, u64 v,
			struct pstate_version *out)
{
	if (v == 0 || v > s->nversions)
		return false;
	const struct version_rec *r = &s->versions[v - 1];
	out->version = v;
	out->timestamp = r->timestamp;
	memcpy(out->author, r->author, 32);
	out->rollback_of = r->rollback_of;
	memcpy(out->reason, r->reason, PSTATE_REASON_BYTES);
	out->reason[PSTATE_REASON_BYTES] = '\0';
	out->text = r->text;
	out->text_len = r->text_len;
	return true;
}

u64 pstate_override_count(const struct pstate *s)
{
	return s->noverrides;
}

void pstate_override_at(const struct pstate *s, u64 i,
			struct pstate_override_info *out)
{
	const struct override_rec *r = &s->overrides[i];
	out->id = i + 1;
	out->timestamp = r->timestamp;
	out->cmd = &r->cmd;
	out->not_before_s = r->not_before_s;
	out->expires_at_s = r->expires_at_s;
	out->ended_early = r->ended_early;
	out->end_timestamp = r->end_timestamp;
	memcpy(out->end_author, r->end_author, 32);
	memcpy(out->end_reason, r->end_reason, PSTATE_REASON_BYTES);
	out->end_reason[PSTATE_REASON_BYTES] = '\0';
	out->expired_timestamp = r->expired_timestamp;
	out->extensions = r->extensions;
	out->last_extension = r->last_extension;
	out->kind = r->kind;
	out->message = r->message_json;
	out->message_len = r->message_len;
	out->expected_end_s = r->expected_end_s;
}

bool pstate_extension_get(const struct pstate *s, u64 handle,
			  struct pstate_extension *out)
{
	if (handle == 0 || handle > s->nextensions)
		return false;
	const struct extension_rec *x = &s->extensions[handle - 1];
	out->timestamp = x->timestamp;
	memcpy(out->author, x->author, 32);
	out->duration_s = x->duration_s;
	out->expires_at_s = x->expires_at_s;
	memcpy(out->reason, x->reason, PSTATE_REASON_BYTES);
	out->reason[PSTATE_REASON_BYTES] = '\0';
	out->prev = x->prev;
	return true;
}

static bool expiry_open(const struct override_rec *r)
{
	return !r->ended_early && !r->expired_timestamp;
}

size_t pstate_expiry_due(const struct pstate *s, int64_t now_s, u64 *ids,
			 size_t max)
{
	size_t n = 0;
	for (u64 i = s->first_open; i < s->noverrides && n < max; i++)
		if (expiry_open(&s->overrides[i]) &&
		    s->overrides[i].expires_at_s <= now_s)
			ids[n++] = i + 1;
	return n;
}

int64_t pstate_expiry_next(const struct pstate *s)
{
	int64_t next = INT64_MAX;
	for (u64 i = s->first_open; i < s->noverrides; i++)
		if (expiry_open(&s->overrides[i]) &&
		    s->overrides[i].expires_at_s < next)
			next = s->overrides[i].expires_at_s;
	return next;
}

const struct policy_override *pstate_overrides_live(const struct pstate *s,
						    size_t *n)
{
	*n = s->nlive;
	return s->live;
}

/* ---- snapshot and digest -------------------------------------------------
 * "TPWPOL02", u64 versions, each: u64 timestamp, author[32], u64
 * rollback_of, reason[208], u64 text_len, text; then u64 overrides, each:
 * u64 timestamp, the command (kind 17's struct; kind 20's base), i64
 * expires_at_s, u64 ended_early, u64 kind (17 or 20), i64 expected_end_s
 * (0: none), u64 message_len, the message JSON, u64 end_timestamp,
 * end_author[32], end_reason[208], u64 expired_timestamp; then u64
 * extensions, each: u64 timestamp, u64 override id, author[32], u64
 * duration_s, i64 expires_at_s, reason[208].  Applying the same commands
 * gives the same bytes.  "TPWPOL01" (before kind 20, the end's author and
 * reason, the expiry entries and the extensions were kept) is read too:
 * its overrides have none of those.
 */
static const char pstate_magic[8] = {'T', 'P', 'W', 'P', 'O', 'L', '0', '2'};
/* One extension in a snapshot. */
#define EXTENSION_SNAPSHOT_BYTES (4 * 8 + 32 + PSTATE_REASON_BYTES)
static const char pstate_magic_v1[8] = {'T', 'P', 'W', 'P', 'O', 'L', '0', '1'};

typedef int (*sink_fn)(void *ctx, const void *buf, size_t len);

static int put(sink_fn sink, void *ctx, const void *p, size_t n, int rc)
{
	return rc ? rc : sink(ctx, p, n);
}

int pstate_snapshot_write(const struct pstate *s, sink_fn sink, void *ctx)
{
	int rc = put(sink, ctx, pstate_magic, 8, 0);
	rc = put(sink, ctx, &s->nversions, 8, rc);
	for (u64 i = 0; i < s->nversions; i++) {
		const struct version_rec *v = &s->versions[i];
		u64 len = v->text_len;
		rc = put(sink, ctx, &v->timestamp, 8, rc);
		rc = put(sink, ctx, v->author, 32, rc);
		rc = put(sink, ctx, &v->rollback_of, 8, rc);
		rc = put(sink, ctx, v->reason, PSTATE_REASON_BYTES, rc);
		rc = put(sink, ctx, &len, 8, rc);
		rc = put(sink, ctx, v->text, v->text_len, rc);
	}
	rc = put(sink, ctx, &s->noverrides, 8, rc);
	for (u64 i = 0; i < s->noverrides; i++) {
		const struct override_rec *r = &s->overrides[i];
		u64 ended = r->ended_early, kind = r->kind,
		    mlen = r->message_len;
		int64_t expected = r->expected_end_s == POLICY_TIME_NONE
					   ? 0
					   : r->expected_end_s;
		rc = put(sink, ctx, &r->timestamp, 8, rc);
		rc = put(sink, ctx, &r->cmd, sizeof(r->cmd), rc);
		rc = put(sink, ctx, &r->expires_at_s, 8, rc);
		rc = put(sink, ctx, &ended, 8, rc);
		rc = put(sink, ctx, &kind, 8, rc);
		rc = put(sink, ctx, &expected, 8, rc);
		rc = put(sink, ctx, &mlen, 8, rc);
		if (mlen)
			rc = put(sink, ctx, r->message_json, mlen, rc);
		rc = put(sink, ctx, &r->end_timestamp, 8, rc);
		rc = put(sink, ctx, r->end_author, 32, rc);
		rc = put(sink, ctx, r->end_reason, PSTATE_REASON_BYTES, rc);
		rc = put(sink, ctx, &r->expired_timestamp, 8, rc);
	}
	rc = put(sink, ctx, &s->nextensions, 8, rc);
	for (u64 i = 0; i < s->nextensions; i++) {
		const struct extension_rec *x = &s->extensions[i];
		u64 duration = x->duration_s;
		rc = put(sink, ctx, &x->timestamp, 8, rc);
		rc = put(sink, ctx, &x->id, 8, rc);
		rc = put(sink, ctx, x->author, 32, rc);
		rc = put(sink, ctx, &duration, 8, rc);
		rc = put(sink, ctx, &x->expires_at_s, 8, rc);
		rc = put(sink, ctx, x->reason, PSTATE_REASON_BYTES, rc);
	}
	return rc;
}

static int count_sink(void *ctx, const void *buf, size_t len)
{
	(void)buf;
	*(u64 *)ctx += len;
	return 0;
}

u64 pstate_snapshot_bytes(const struct pstate *s)
{
	u64 n = 0;
	pstate_snapshot_write(s, count_sink, &n);
	return n;
}

static int digest_sink(void *ctx, const void *buf, size_t len)
{
	crypto_generichash_update(ctx, buf, len);
	return 0;
}

void pstate_digest(const struct pstate *s, u8 out[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	pstate_snapshot_write(s, digest_sink, &st);
	crypto_generichash_final(&st, out, 32);
}

struct reader {
	const u8 *p, *end;
};

static bool take(struct reader *r, void *out, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	memcpy(out, r->p, n);
	r->p += n;
	return true;
}

/* Rebuild by re-applying: the snapshot holds the commands' content, so
 * the parsed forms come out exactly as they did the first time. */
struct pstate *pstate_snapshot_read(const u8 *buf, size_t len)
{
	struct reader r = {buf, buf + len};
	char magic[8];
	u64 n;
	struct pstate *s = pstate_new();
	if (!s)
		return NULL;
	if (!take(&r, magic, 8))
		goto fail;
	bool v1 = memcmp(magic, pstate_magic_v1, 8) == 0;
	if ((!v1 && memcmp(magic, pstate_magic, 8) != 0) || !take(&r, &n, 8) ||
	    n > PSTATE_VERSIONS_MAX)
		goto fail;
	for (u64 i = 0; i < n; i++) {
		struct pstate_set h = {0};
		u64 ts, tlen;
		if (!take(&r, &ts, 8) || !take(&r, h.author, 32) ||
		    !take(&r, &h.rollback_of, 8) ||
		    !take(&r, h.reason, PSTATE_REASON_BYTES) ||
		    !take(&r, &tlen, 8) || tlen == 0 ||
		    tlen > POLICY_DOC_BYTES_MAX || (u64)(r.end - r.p) < tlen)
			goto fail;
		size_t ext_bytes = sizeof(h) + (size_t)(tlen + 15) / 16 * 16;
		u8 *ext = calloc(1, ext_bytes);
		if (!ext)
			goto fail;
		h.text_bytes = (u32)tlen;
		memcpy(ext, &h, sizeof(h));
		memcpy(ext + sizeof(h), r.p, tlen);
		const u8 *text = r.p;
		r.p += tlen;
		u32 outcome = 0;
		int ret = apply_set(s, ext, (u32)ext_bytes, ts, &outcome);
		free(ext);
		/* A rendered text renders to itself: anything else is not
		 * a snapshot this code wrote. */
		if (ret != 0 || outcome != PSTATE_OK ||
		    s->versions[s->nversions - 1].text_len != tlen ||
		    memcmp(s->versions[s->nversions - 1].text, text, tlen) != 0)
			goto fail;
	}
	if (!take(&r, &n, 8) || n > PSTATE_OVERRIDES_MAX)
		goto fail;
	for (u64 i = 0; i < n; i++) {
		struct pstate_override_cmd c;
		u64 ts, ended, kind = PSTATE_CMD_OVERRIDE, mlen = 0;
		int64_t expires, expected = 0;
		if (!take(&r, &ts, 8) || !take(&r, &c, sizeof(c)) ||
		    !take(&r, &expires, 8) || !take(&r, &ended, 8) ||
		    ended > 1 || !override_cmd_ok(&c))
			goto fail;
		if (!v1 &&
		    (!take(&r, &kind, 8) || !take(&r, &expected, 8) ||
		     !take(&r, &mlen, 8) ||
		     (kind != PSTATE_CMD_OVERRIDE &&
		      kind != PSTATE_CMD_OVERRIDE_2) ||
		     (kind == PSTATE_CMD_OVERRIDE && (mlen || expected)) ||
		     expected < 0 || expected > PSTATE_EXPECTED_END_MAX_S ||
		     mlen > POLICY_MESSAGE_BYTES_MAX ||
		     (u64)(r.end - r.p) < mlen))
			goto fail;
		const char *msg = (const char *)r.p;
		r.p += mlen;
		/* Overrides that had expired by now were pruned from the
		 * live list already: replay at their own time, then end. */
		u32 outcome = 0;
		s->nlive = 0; /* rebuilt below */
		if (open_override(s, (u16)kind, &c, msg, (u32)mlen, expected,
				  ts, &outcome) != 0 ||
		    outcome != PSTATE_OK)
			goto fail;
		struct override_rec *o = &s->overrides[s->noverrides - 1];
		o->expires_at_s = expires;
		o->ended_early = ended;
		if (!v1 && (!take(&r, &o->end_timestamp, 8) ||
			    !take(&r, o->end_author, 32) ||
			    !take(&r, o->end_reason, PSTATE_REASON_BYTES) ||
			    !text_ok(o->end_reason, PSTATE_REASON_BYTES) ||
			    !take(&r, &o->expired_timestamp, 8)))
			goto fail;
	}
	if (!v1 && (!take(&r, &n, 8) ||
		    n > (u64)(r.end - r.p) / EXTENSION_SNAPSHOT_BYTES))
		goto fail;
	for (u64 i = 0; !v1 && i < n; i++) {
		struct extension_rec x = {0};
		u64 duration;
		if (!take(&r, &x.timestamp, 8) || !take(&r, &x.id, 8) ||
		    !take(&r, x.author, 32) || !take(&r, &duration, 8) ||
		    !take(&r, &x.expires_at_s, 8) ||
		    !take(&r, x.reason, PSTATE_REASON_BYTES) ||
		    !text_ok(x.reason, PSTATE_REASON_BYTES) || x.id == 0 ||
		    x.id > s->noverrides || duration < POLICY_OVERRIDE_MIN_S ||
		    duration > POLICY_OVERRIDE_MAX_S ||
		    !grow((void **)&s->extensions, &s->cap_extensions,
			  s->nextensions, sizeof(*s->extensions)))
			goto fail;
		struct override_rec *o = &s->overrides[x.id - 1];
		x.duration_s = (u32)duration;
		x.prev = o->last_extension;
		s->extensions[s->nextensions++] = x;
		o->last_extension = s->nextensions;
		o->extensions++;
	}
	if (r.p != r.end)
		goto fail;
	advance_open(s);
	/* The live list: every override not expired as of the newest
	 * command, in order (the same list the applier kept).  An end
	 * leaves no record of its own, but its time is the expiry it set
	 * (format 2 keeps it, and the times of extensions and expiry
	 * entries).
	 * NEEDSWORK: commands that change nothing (unchanged, invalid, not
	 * found...) prune too and leave no trace, so after one of those the
	 * list read back may still hold overrides that had expired; the
	 * gate skips them (policy_evaluate checks now). */
	s->nlive = 0;
	u64 newest = 0;
	for (u64 i = 0; i < s->nversions; i++)
		if (s->versions[i].timestamp > newest)
			newest = s->versions[i].timestamp;
	for (u64 i = 0; i < s->noverrides; i++) {
		if (s->overrides[i].timestamp > newest)
			newest = s->overrides[i].timestamp;
		if (s->overrides[i].expired_timestamp > newest)
			newest = s->overrides[i].expired_timestamp;
	}
	for (u64 i = 0; i < s->nextensions; i++)
		if (s->extensions[i].timestamp > newest)
			newest = s->extensions[i].timestamp;
	int64_t newest_s = seconds(newest);
	for (u64 i = 0; i < s->noverrides; i++)
		if (s->overrides[i].ended_early &&
		    s->overrides[i].expires_at_s > newest_s)
			newest_s = s->overrides[i].expires_at_s;
	for (u64 i = 0; i < s->noverrides && s->nlive < POLICY_OVERRIDES_MAX;
	     i++) {
		const struct override_rec *o = &s->overrides[i];
		if (o->expires_at_s <= newest_s)
			continue;
		struct policy_override po;
		struct policy_err err;
		if (policy_override_init(
			    &po, o->cmd.platform, o->cmd.range,
			    o->cmd.mode == POLICY_OVERRIDE_ALLOW ? "allow"
								 : "compat",
			    (int64_t)o->cmd.duration_s, o->cmd.reason,
			    seconds(o->timestamp), &err) != 0)
			goto fail;
		po.expires_at_s = o->expires_at_s;
		po.id = i + 1;
		live_extras(o, &po);
		s->live[s->nlive++] = po;
	}
	return s;
fail:
	pstate_free(s);
	return NULL;
}
