/*
 * admin.c - named administrators, the bootstrap's retirement and dual
 * control, as state the journal drives.  See admin.h.
 */
#include "core/admin.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/pstate.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct role_rec {
	u8 id[32];
	u8 author[32];
	u32 role;
	u32 reserved;
	u64 timestamp;
};

struct request_rec {
	u8 author[32];
	u8 decider[32];
	u64 timestamp;
	u64 decided_at;
	u64 target;
	u32 op, window_s, status, payload_bytes;
	char reason[ADMIN_REASON_BYTES];
	u64 id; /* 1.., ascending in the table (kept in the v2 snapshot) */
};

_Static_assert(sizeof(struct request_rec) == 240, "request record");
/* A record as the v1 snapshot held it: ids were the positions. */
#define REQUEST_REC_V1_BYTES offsetof(struct request_rec, id)

struct admin {
	u64 retired_at;
	u8 retired_by[32];
	u32 nroles, nrequests;
	u64 glass_dropped; /* break-glass requests dropped from the table */
	struct role_rec roles[ADMIN_ROLES_MAX];
	struct request_rec *requests; /* ADMIN_REQUESTS_MAX */
	u8 **payloads;		      /* per request, NULL once decided */
};

static const u8 zero32[32];

static const char *const role_names[] = {"none", "operator", "security_officer",
					 "support", "auditor"};

const char *admin_role_name(u32 role)
{
	return role <= ADMIN_ROLE_MAX ? role_names[role] : NULL;
}

int admin_role_parse(const char *name)
{
	for (u32 i = 0; i <= ADMIN_ROLE_MAX; i++)
		if (strcmp(name, role_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *admin_status_name(u32 status)
{
	static const char *const names[] = {"pending",	"approved",
					    "rejected", "break_glass",
					    "expired",	"stale"};
	return status < sizeof(names) / sizeof(names[0]) ? names[status]
							 : "unknown";
}

struct admin *admin_new(void)
{
	struct admin *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->requests = calloc(ADMIN_REQUESTS_MAX, sizeof(*d->requests));
	d->payloads = calloc(ADMIN_REQUESTS_MAX, sizeof(*d->payloads));
	if (!d->requests || !d->payloads) {
		admin_free(d);
		return NULL;
	}
	return d;
}

void admin_free(struct admin *d)
{
	if (!d)
		return;
	for (u32 i = 0; d->payloads && i < d->nrequests; i++)
		free(d->payloads[i]);
	free(d->payloads);
	free(d->requests);
	free(d);
}

bool admin_empty(const struct admin *d)
{
	return d->retired_at == 0 && d->nroles == 0 && d->nrequests == 0;
}

static bool text_ok(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i])
		i++;
	for (size_t k = i; k < n; k++)
		if (s[k])
			return false; /* NUL-padded */
	return true;
}

static bool role_cmd_valid(const struct admin_role_cmd *c)
{
	return c->role <= ADMIN_ROLE_MAX && memcmp(c->id, zero32, 32) != 0 &&
	       !c->reserved[0] && !c->reserved[1] && !c->reserved[2];
}

/* A request's payload as its op wants it: the document of a policy
 * set; a role given (not taken) by the requester itself. */
static bool payload_valid(u32 op, const u8 author[32], const u8 *payload,
			  u32 bytes)
{
	struct admin_role_cmd r;

	switch (op) {
	case ADMIN_OP_POLICY_SET:
		return pstate_command_valid(PSTATE_CMD_SET, payload, bytes);
	case ADMIN_OP_ROLE:
		if (bytes != sizeof(r))
			return false;
		memcpy(&r, payload, sizeof(r));
		return role_cmd_valid(&r) && r.role != ADMIN_ROLE_NONE &&
		       memcmp(r.author, author, 32) == 0;
	default: return false;
	}
}

bool admin_command_valid(u16 kind, const void *ext, u32 ext_bytes)
{
	switch (kind) {
	case ADMIN_CMD_ROLE: {
		struct admin_role_cmd c;
		if (ext_bytes != sizeof(c))
			return false;
		memcpy(&c, ext, sizeof(c));
		return role_cmd_valid(&c);
	}
	case ADMIN_CMD_RETIRE:
		return ext_bytes == sizeof(struct admin_retire_cmd);
	case ADMIN_CMD_REQUEST: {
		struct admin_request_cmd c;
		if (ext_bytes < sizeof(c))
			return false;
		memcpy(&c, ext, sizeof(c));
		return c.window_s >= ADMIN_WINDOW_MIN_S &&
		       c.window_s <= ADMIN_WINDOW_MAX_S &&
		       (u64)sizeof(c) + c.payload_bytes == ext_bytes &&
		       !c.reserved[0] && !c.reserved[1] && !c.reserved[2] &&
		       payload_valid(c.op, c.author,
				     (const u8 *)ext + sizeof(c),
				     c.payload_bytes);
	}
	case ADMIN_CMD_DECIDE: {
		struct admin_decide_cmd c;
		if (ext_bytes != sizeof(c))
			return false;
		memcpy(&c, ext, sizeof(c));
		return c.decision >= ADMIN_APPROVE &&
		       c.decision <= ADMIN_BREAK_GLASS && c.request > 0 &&
		       !c.reserved && text_ok(c.reason, sizeof(c.reason)) &&
		       (c.decision != ADMIN_BREAK_GLASS || c.reason[0]);
	}
	default: return false;
	}
}

static struct role_rec *role_find(const struct admin *d, const u8 id[32])
{
	for (u32 i = 0; i < d->nroles; i++)
		if (memcmp(d->roles[i].id, id, 32) == 0)
			return (struct role_rec *)&d->roles[i];
	return NULL;
}

u32 admin_role_of(const struct admin *d, const u8 id[32])
{
	const struct role_rec *r = role_find(d, id);
	return r ? r->role : ADMIN_ROLE_NONE;
}

bool admin_is_active(const struct admin *d, const struct auth *a,
		     const u8 id[32])
{
	return admin_role_of(d, id) != ADMIN_ROLE_NONE &&
	       !auth_revoked(a, id, zero32);
}

bool admin_author_holds(const struct admin *d, const struct auth *a,
			const u8 author[32], u32 role)
{
	/* Before the retirement the bootstrap credential holds every
	 * right, also through a chain it rooted, whose author is the
	 * chain's delegate whatever role that key holds: not decided here
	 * (the API checks again when the body completes). */
	if (d->retired_at == 0)
		return true;
	return admin_role_of(d, author) == role &&
	       admin_is_active(d, a, author);
}

u64 admin_retired_at(const struct admin *d)
{
	return d->retired_at;
}

/* Is an administrator other than `but` (NULL: none) an active security
 * officer? */
static bool officer_besides(const struct admin *d, const struct auth *a,
			    const u8 *but)
{
	for (u32 i = 0; i < d->nroles; i++)
		if (d->roles[i].role == ADMIN_ROLE_SECURITY_OFFICER &&
		    (!but || memcmp(d->roles[i].id, but, 32) != 0) &&
		    admin_is_active(d, a, d->roles[i].id))
			return true;
	return false;
}

/* What giving c would answer now (ADMIN_OK: it would be given), the
 * state unchanged. */
static u32 role_check(const struct admin *d, const struct auth *a,
		      const struct admin_role_cmd *c)
{
	struct auth_principal_info p;
	if (!auth_principal_get(a, c->id, &p) ||
	    auth_principal_x509(p.pub, NULL))
		return ADMIN_UNKNOWN; /* an organisation signs nothing */
	if (!admin_author_holds(d, a, c->author, ADMIN_ROLE_SECURITY_OFFICER))
		return ADMIN_AUTHOR_ENDED;
	const struct role_rec *r = role_find(d, c->id);
	if (r && r->role == c->role)
		return ADMIN_EXISTS;
	if (c->role != ADMIN_ROLE_NONE && auth_owns_any(a, c->id))
		return ADMIN_OWNS_ACCOUNTS;
	if (!r)
		return c->role == ADMIN_ROLE_NONE     ? ADMIN_EXISTS
		       : d->nroles >= ADMIN_ROLES_MAX ? ADMIN_FULL
						      : ADMIN_OK;
	if (d->retired_at && r->role == ADMIN_ROLE_SECURITY_OFFICER &&
	    !officer_besides(d, a, c->id))
		return ADMIN_NO_OFFICER; /* the last: nobody could give a
					  * role again */
	return ADMIN_OK;
}

static int apply_role(struct admin *d, const struct auth *a,
		      const struct admin_role_cmd *c, u64 ts, u32 *outcome)
{
	*outcome = role_check(d, a, c);
	if (*outcome != ADMIN_OK)
		return 0;
	struct role_rec *r = role_find(d, c->id);
	if (r && c->role == ADMIN_ROLE_NONE) {
		/* Taken away: the record goes, so that the table is never
		 * filled for good by roles given and taken (the journal
		 * keeps who held what). */
		u32 i = (u32)(r - d->roles);
		memmove(&d->roles[i], &d->roles[i + 1],
			(d->nroles - i - 1) * sizeof(d->roles[0]));
		d->nroles--;
		return 0;
	}
	if (!r) {
		r = &d->roles[d->nroles++];
		memcpy(r->id, c->id, 32);
	}
	r->role = c->role;
	memcpy(r->author, c->author, 32);
	r->timestamp = ts;
	return 0;
}

static void apply_retire(struct admin *d, const struct auth *a,
			 const struct admin_retire_cmd *c, u64 ts, u32 *outcome)
{
	if (d->retired_at) {
		*outcome = ADMIN_EXISTS;
		return;
	}
	if (!admin_author_holds(d, a, c->author, ADMIN_ROLE_SECURITY_OFFICER)) {
		*outcome = ADMIN_AUTHOR_ENDED;
		return;
	}
	if (!officer_besides(d, a, NULL)) {
		*outcome = ADMIN_NO_OFFICER;
		return;
	}
	d->retired_at = ts;
	memcpy(d->retired_by, c->author, 32);
	*outcome = ADMIN_OK;
}

/* The table's index of request id, or -1 (never made, or dropped). */
static long request_index(const struct admin *d, u64 id)
{
	u32 lo = 0, hi = d->nrequests;
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		if (d->requests[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->nrequests && d->requests[lo].id == id ? (long)lo : -1;
}

static u64 last_id(const struct admin *d)
{
	/* Never empty again once a request was made: one is dropped only
	 * to make room for another. */
	return d->nrequests ? d->requests[d->nrequests - 1].id : 0;
}

/* The table is full: drop the oldest request that is not pending (its
 * payload is gone already).  False when all are pending. */
static bool drop_oldest_decided(struct admin *d)
{
	for (u32 i = 0; i < d->nrequests; i++) {
		if (d->requests[i].status == ADMIN_PENDING)
			continue;
		d->glass_dropped += d->requests[i].status == ADMIN_BROKEN_GLASS;
		memmove(&d->requests[i], &d->requests[i + 1],
			(d->nrequests - i - 1) * sizeof(d->requests[0]));
		memmove(&d->payloads[i], &d->payloads[i + 1],
			(d->nrequests - i - 1) * sizeof(d->payloads[0]));
		d->nrequests--;
		d->payloads[d->nrequests] = NULL;
		return true;
	}
	return false;
}

static u64 window_end(const struct request_rec *r)
{
	return r->timestamp + (u64)r->window_s * 1000000000u;
}

static void drop_payload(struct admin *d, u32 i)
{
	free(d->payloads[i]);
	d->payloads[i] = NULL;
	d->requests[i].payload_bytes = 0;
}

/* The pending requests whose window passed at ts are expired (decided
 * at the window's end, by nobody): their slots are free. */
static void expire_passed(struct admin *d, u64 ts)
{
	for (u32 i = 0; i < d->nrequests; i++) {
		struct request_rec *r = &d->requests[i];
		if (r->status == ADMIN_PENDING && ts > window_end(r)) {
			r->status = ADMIN_EXPIRED;
			r->decided_at = window_end(r);
			drop_payload(d, i);
		}
	}
}

/* Pending requests, in all (author NULL) or of author. */
static u32 pending_count(const struct admin *d, const u8 *author)
{
	u32 n = 0;
	for (u32 i = 0; i < d->nrequests; i++)
		n += d->payloads[i] != NULL &&
		     (!author ||
		      memcmp(d->requests[i].author, author, 32) == 0);
	return n;
}

static int apply_request(struct admin *d, const struct auth *a, const u8 *ext,
			 u64 ts, u32 *outcome)
{
	struct admin_request_cmd c;
	memcpy(&c, ext, sizeof(c));
	if (!admin_is_active(d, a, c.author)) {
		*outcome = ADMIN_NOT_ADMIN;
		return 0;
	}
	expire_passed(d, ts);
	if (c.payload_bytes > ADMIN_PAYLOAD_BYTES_MAX) {
		*outcome = ADMIN_TOO_LARGE;
		return 0;
	}
	if (c.op == ADMIN_OP_ROLE) {
		/* A grant the state would refuse (or that changes nothing)
		 * is answered so now, at the entry's time, not held: the
		 * API sends every named administrator's grant here, so no
		 * check of its own decides whether dual control applies. */
		struct admin_role_cmd g;
		memcpy(&g, ext + sizeof(c), sizeof(g));
		u32 would = role_check(d, a, &g);
		if (would != ADMIN_OK) {
			*outcome = would;
			return 0;
		}
	}
	if (pending_count(d, NULL) >= ADMIN_PENDING_MAX ||
	    pending_count(d, c.author) >= ADMIN_PENDING_PER_REQUESTER_MAX ||
	    (d->nrequests >= ADMIN_REQUESTS_MAX && !drop_oldest_decided(d))) {
		*outcome = ADMIN_FULL;
		return 0;
	}
	u8 *payload = malloc(c.payload_bytes);
	if (!payload)
		return -ENOMEM;
	memcpy(payload, ext + sizeof(c), c.payload_bytes);
	struct request_rec *r = &d->requests[d->nrequests];
	u64 id = last_id(d) + 1;
	memset(r, 0, sizeof(*r));
	r->id = id;
	memcpy(r->author, c.author, 32);
	r->timestamp = ts;
	r->target = c.target;
	r->op = c.op;
	r->window_s = c.window_s;
	r->status = ADMIN_PENDING;
	r->payload_bytes = c.payload_bytes;
	d->payloads[d->nrequests++] = payload;
	*outcome = ADMIN_OK;
	return 0;
}

static void close_request(struct admin *d, long i, u32 status,
			  const struct admin_decide_cmd *c, u64 ts)
{
	struct request_rec *r = &d->requests[i];
	r->status = status;
	r->decided_at = ts;
	memcpy(r->decider, c->author, 32);
	memcpy(r->reason, c->reason, sizeof(r->reason));
	drop_payload(d, (u32)i);
}

/* The checks of a decision, in the order docs/authz.md lists them;
 * ADMIN_OK when the request may be decided so. */
static u32 decide_check(struct admin *d, const struct auth *a,
			const struct pstate *ps,
			const struct admin_decide_cmd *c, u64 ts)
{
	long i = request_index(d, c->request);
	if (i < 0)
		return ADMIN_UNKNOWN;
	struct request_rec *r = &d->requests[i];
	if (memcmp(r->author, c->requester, 32) != 0)
		return ADMIN_UNKNOWN;
	if (r->status != ADMIN_PENDING)
		return ADMIN_NOT_PENDING;
	if (!admin_is_active(d, a, c->author))
		return ADMIN_NOT_ADMIN;
	bool mine = memcmp(r->author, c->author, 32) == 0;
	if (c->decision == ADMIN_REJECT)
		return ADMIN_OK; /* any administrator, the requester too */
	if (c->decision == ADMIN_APPROVE && mine)
		return ADMIN_SELF;
	struct admin_role_cmd role;
	if (r->op == ADMIN_OP_ROLE)
		memcpy(&role, d->payloads[i], sizeof(role));
	if (r->op == ADMIN_OP_ROLE && c->decision == ADMIN_APPROVE &&
	    memcmp(role.id, c->author, 32) == 0)
		return ADMIN_GRANTEE;
	if (c->decision == ADMIN_BREAK_GLASS && !mine)
		return ADMIN_NOT_REQUESTER;
	/* The requester must still hold the role its operation needs
	 * (operator for a policy, security_officer for a role), not only
	 * some role. */
	if (!admin_is_active(d, a, r->author) ||
	    !admin_author_holds(d, a, r->author,
				r->op == ADMIN_OP_ROLE
					? ADMIN_ROLE_SECURITY_OFFICER
					: ADMIN_ROLE_OPERATOR))
		return ADMIN_NOT_ADMIN;
	if (ts > window_end(r)) {
		close_request(d, i, ADMIN_EXPIRED, c, ts);
		return ADMIN_WINDOW_PASSED;
	}
	if ((r->op == ADMIN_OP_ROLE ? admin_role_of(d, role.id)
				    : pstate_version_count(ps)) != r->target) {
		close_request(d, i, ADMIN_STALE, c, ts);
		return ADMIN_TARGET_CHANGED;
	}
	return ADMIN_OK;
}

static int apply_decide(struct admin *d, const struct auth *a,
			struct pstate *ps, const struct admin_decide_cmd *c,
			u64 ts, u32 *outcome)
{
	*outcome = decide_check(d, a, ps, c, ts);
	if (*outcome != ADMIN_OK)
		return 0;
	long i = request_index(d, c->request);
	if (c->decision == ADMIN_REJECT) {
		close_request(d, i, ADMIN_REJECTED, c, ts);
		return 0;
	}
	bool done;
	if (d->requests[i].op == ADMIN_OP_ROLE) {
		/* Given as its requester gives a role now: the requester
		 * must still hold security_officer (after the retirement),
		 * the principal own no account, ... (apply_role). */
		struct admin_role_cmd role;
		u32 ro = 0;
		memcpy(&role, d->payloads[i], sizeof(role));
		int ret = apply_role(d, a, &role, ts, &ro);
		if (ret != 0)
			return ret;
		done = ro == ADMIN_OK;
	} else {
		u32 po = 0;
		int ret = pstate_apply(ps, PSTATE_CMD_SET, d->payloads[i],
				       d->requests[i].payload_bytes, ts, &po);
		if (ret != 0)
			return ret;
		done = po == PSTATE_OK || po == PSTATE_UNCHANGED;
	}
	close_request(d, i,
		      !done			     ? ADMIN_REJECTED
		      : c->decision == ADMIN_APPROVE ? ADMIN_APPROVED
						     : ADMIN_BROKEN_GLASS,
		      c, ts);
	*outcome = done ? ADMIN_OK : ADMIN_REFUSED;
	return 0;
}

int admin_apply(struct admin *d, const struct auth *a, struct pstate *ps,
		u16 kind, const void *ext, u32 ext_bytes, u64 timestamp,
		u32 *outcome)
{
	if (!admin_command_valid(kind, ext, ext_bytes))
		return -EBADMSG;
	switch (kind) {
	case ADMIN_CMD_ROLE: {
		struct admin_role_cmd c;
		memcpy(&c, ext, sizeof(c));
		return apply_role(d, a, &c, timestamp, outcome);
	}
	case ADMIN_CMD_RETIRE: {
		struct admin_retire_cmd c;
		memcpy(&c, ext, sizeof(c));
		apply_retire(d, a, &c, timestamp, outcome);
		return 0;
	}
	case ADMIN_CMD_REQUEST:
		return apply_request(d, a, ext, timestamp, outcome);
	default: {
		struct admin_decide_cmd c;
		memcpy(&c, ext, sizeof(c));
		return apply_decide(d, a, ps, &c, timestamp, outcome);
	}
	}
}

/* ---- reading ---------------------------------------------------------- */

u32 admin_role_count(const struct admin *d)
{
	return d->nroles;
}

void admin_role_at(const struct admin *d, u32 i, struct admin_role_info *out)
{
	const struct role_rec *r = &d->roles[i];
	memcpy(out->id, r->id, 32);
	memcpy(out->author, r->author, 32);
	out->role = r->role;
	out->timestamp = r->timestamp;
}

u32 admin_request_count(const struct admin *d)
{
	return d->nrequests;
}

u64 admin_request_last_id(const struct admin *d)
{
	return last_id(d);
}

u64 admin_break_glass_count(const struct admin *d)
{
	u64 n = d->glass_dropped;
	for (u32 i = 0; i < d->nrequests; i++)
		n += d->requests[i].status == ADMIN_BROKEN_GLASS;
	return n;
}

bool admin_request_get(const struct admin *d, u64 id,
		       struct admin_request_info *out)
{
	long i = request_index(d, id);
	if (i < 0)
		return false;
	admin_request_at(d, (u32)i, out);
	return true;
}

void admin_request_at(const struct admin *d, u32 i,
		      struct admin_request_info *out)
{
	const struct request_rec *r = &d->requests[i];
	out->id = r->id;
	out->timestamp = r->timestamp;
	memcpy(out->author, r->author, 32);
	out->op = r->op;
	out->window_s = r->window_s;
	out->status = r->status;
	out->target = r->target;
	out->decided_at = r->decided_at;
	memcpy(out->decider, r->decider, 32);
	memcpy(out->reason, r->reason, ADMIN_REASON_BYTES);
	out->reason[ADMIN_REASON_BYTES] = '\0';
	out->payload = d->payloads[i];
	out->payload_bytes = r->payload_bytes;
}

/* ---- snapshot ----------------------------------------------------------
 * "TPWADMN2", u64 retired_at, retired_by[32], u32 roles, u32 requests,
 * u64 break-glass requests dropped, the role records, then each request
 * record (with its id) followed by its payload (payload_bytes, 0 once
 * decided).  "TPWADMN1" (read only) had no dropped count and records
 * without the id, which was the position.
 */

static const char admin_magic[8] = {'T', 'P', 'W', 'A', 'D', 'M', 'N', '2'};
static const char admin_magic_v1[8] = {'T', 'P', 'W', 'A', 'D', 'M', 'N', '1'};

u64 admin_snapshot_bytes(const struct admin *d)
{
	u64 n = sizeof(admin_magic) + 8 + 32 + 8 + 8 +
		(u64)d->nroles * sizeof(struct role_rec) +
		(u64)d->nrequests * sizeof(struct request_rec);
	for (u32 i = 0; i < d->nrequests; i++)
		n += d->requests[i].payload_bytes;
	return n;
}

int admin_snapshot_write(const struct admin *d,
			 int (*sink)(void *ctx, const void *buf, size_t len),
			 void *ctx)
{
	u32 counts[2] = {d->nroles, d->nrequests};
	int rc = sink(ctx, admin_magic, sizeof(admin_magic));
	if (rc == 0)
		rc = sink(ctx, &d->retired_at, sizeof(d->retired_at));
	if (rc == 0)
		rc = sink(ctx, d->retired_by, sizeof(d->retired_by));
	if (rc == 0)
		rc = sink(ctx, counts, sizeof(counts));
	if (rc == 0)
		rc = sink(ctx, &d->glass_dropped, sizeof(d->glass_dropped));
	if (rc == 0 && d->nroles)
		rc = sink(ctx, d->roles, d->nroles * sizeof(d->roles[0]));
	for (u32 i = 0; rc == 0 && i < d->nrequests; i++) {
		rc = sink(ctx, &d->requests[i], sizeof(d->requests[i]));
		if (rc == 0 && d->requests[i].payload_bytes)
			rc = sink(ctx, d->payloads[i],
				  d->requests[i].payload_bytes);
	}
	return rc;
}

static bool take(const u8 **p, const u8 *end, void *out, size_t n)
{
	if ((size_t)(end - *p) < n)
		return false;
	memcpy(out, *p, n);
	*p += n;
	return true;
}

struct admin *admin_snapshot_read(const u8 *buf, size_t len)
{
	const u8 *p = buf, *end = buf + len;
	char magic[8];
	u32 counts[2];
	struct admin *d = admin_new();

	if (!d || !take(&p, end, magic, sizeof(magic)))
		goto fail;
	bool v1 = memcmp(magic, admin_magic_v1, sizeof(magic)) == 0;
	if ((!v1 && memcmp(magic, admin_magic, sizeof(magic)) != 0) ||
	    !take(&p, end, &d->retired_at, 8) ||
	    !take(&p, end, d->retired_by, 32) ||
	    !take(&p, end, counts, sizeof(counts)) ||
	    (!v1 && !take(&p, end, &d->glass_dropped, 8)) ||
	    counts[0] > ADMIN_ROLES_MAX || counts[1] > ADMIN_REQUESTS_MAX ||
	    !take(&p, end, d->roles, counts[0] * sizeof(d->roles[0])))
		goto fail;
	d->nroles = counts[0];
	for (u32 i = 0; i < d->nroles; i++)
		if (d->roles[i].role > ADMIN_ROLE_MAX)
			goto fail;
	for (u32 i = 0; i < counts[1]; i++) {
		struct request_rec *r = &d->requests[i];
		if (!take(&p, end, r, v1 ? REQUEST_REC_V1_BYTES : sizeof(*r)))
			goto fail;
		if (v1)
			r->id = (u64)i + 1;
		if (r->id <= (i ? d->requests[i - 1].id : 0) ||
		    r->payload_bytes > COMMAND_EXT_BYTES_MAX ||
		    (r->payload_bytes != 0) != (r->status == ADMIN_PENDING))
			goto fail;
		d->nrequests = i + 1;
		/* A pending request's payload is what an approval applies:
		 * as valid as when it was journaled. */
		if (r->payload_bytes &&
		    (!(d->payloads[i] = malloc(r->payload_bytes)) ||
		     !take(&p, end, d->payloads[i], r->payload_bytes) ||
		     !payload_valid(r->op, r->author, d->payloads[i],
				    r->payload_bytes)))
			goto fail;
	}
	/* Written only when not empty: an empty part is not one of ours
	 * (each state has exactly one encoding). */
	if (p != end || admin_empty(d))
		goto fail;
	return d;
fail:
	admin_free(d);
	return NULL;
}
