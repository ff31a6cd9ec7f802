/*
 * auth.c - the authorization state beside the ledger.  See auth.h.
 */
#include "core/auth.h"
#include "core/admin.h"
#include "core/ledger.h"
#include "core/result.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* ---- growable arrays and an open-addressing index ------------------- */

struct vec {
	u8 *data;
	u32 n, cap;
	u32 size; /* element bytes */
};

static void *vec_at(const struct vec *v, u32 i)
{
	return v->data + (size_t)i * v->size;
}

static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		u32 cap = v->cap ? v->cap * 2 : 16;
		u8 *d = realloc(v->data, (size_t)cap * v->size);
		if (!d)
			return NULL;
		v->data = d;
		v->cap = cap;
	}
	void *p = vec_at(v, v->n++);
	memset(p, 0, v->size);
	return p;
}

/* Slots hold element index + 1 (0: empty).  Capacity a power of two, at
 * most half full. */
struct index {
	u32 *slots;
	u32 mask;
};

typedef u64 (*key_hash_fn)(const void *elem);

static bool index_grow(struct index *ix, const struct vec *v, key_hash_fn h)
{
	u32 cap = ix->slots ? (ix->mask + 1) * 2 : 64;
	u32 *s = calloc(cap, sizeof(*s));
	if (!s)
		return false;
	for (u32 i = 0; i < v->n; i++) {
		u32 j = (u32)h(vec_at(v, i)) & (cap - 1);
		while (s[j])
			j = (j + 1) & (cap - 1);
		s[j] = i + 1;
	}
	free(ix->slots);
	ix->slots = s;
	ix->mask = cap - 1;
	return true;
}

/* Insert element v->n - 1 (already pushed). */
static bool index_add(struct index *ix, const struct vec *v, key_hash_fn h)
{
	if (!ix->slots || (u64)v->n * 2 > (u64)ix->mask + 1)
		return index_grow(ix, v, h);
	u32 j = (u32)h(vec_at(v, v->n - 1)) & ix->mask;
	while (ix->slots[j])
		j = (j + 1) & ix->mask;
	ix->slots[j] = v->n;
	return true;
}

static u64 load64(const u8 *p)
{
	u64 x;
	memcpy(&x, p, 8);
	return x;
}

/* ---- the state ------------------------------------------------------- */

struct owner_rec {
	u128 account;
	u8 owner[AUTH_ID_BYTES];
};

struct principal_rec {
	struct auth_principal p;
	u64 timestamp;
};

struct revoke_rec {
	struct auth_revoke r;
	u64 timestamp;
};

struct counter_rec {
	u8 link[32];
	u128 spent;
	u64 uses;
	u64 reserved;
};

struct key_rec {
	struct auth_key_event k;
	u64 timestamp;
};

/* Quota-counted revocations per payer: derived (rebuilt on load, never
 * written). */
struct issuer_count {
	u8 iss[AUTH_ID_BYTES];
	u32 count[2]; /* own, delegates' */
};

struct auth {
	struct vec principals, owners, revocations, counters, keys;
	struct index principals_ix, owners_ix, revocations_ix, issuers_ix,
		counters_ix;
	struct vec by_issuer;
	struct index by_issuer_ix;
	struct admin *admin; /* written after the collections when not empty */
};

static u64 h_issuer_count(const void *e)
{
	return load64(((const struct issuer_count *)e)->iss);
}

static struct issuer_count *issuer_count_find(const struct auth *a,
					      const u8 iss[AUTH_ID_BYTES])
{
	const struct index *ix = &a->by_issuer_ix;
	if (!ix->slots)
		return NULL;
	for (u32 j = (u32)load64(iss) & ix->mask; ix->slots[j];
	     j = (j + 1) & ix->mask) {
		struct issuer_count *c =
			vec_at(&a->by_issuer, ix->slots[j] - 1);
		if (memcmp(c->iss, iss, AUTH_ID_BYTES) == 0)
			return c;
	}
	return NULL;
}

/* Count a quota-counted revocation against its payer's bucket. */
static bool issuer_count_add(struct auth *a, const struct auth_revoke *rv)
{
	unsigned b = (rv->flags & AUTH_REVOKE_DELEGATE) ? 1 : 0;
	struct issuer_count *c = issuer_count_find(a, rv->payer);
	if (c) {
		c->count[b]++;
		return true;
	}
	c = vec_push(&a->by_issuer);
	if (!c)
		return false;
	memcpy(c->iss, rv->payer, AUTH_ID_BYTES);
	c->count[0] = c->count[1] = 0;
	c->count[b] = 1;
	return index_add(&a->by_issuer_ix, &a->by_issuer, h_issuer_count);
}

u32 auth_revocations_by(const struct auth *a, const u8 payer[AUTH_ID_BYTES],
			bool delegates)
{
	const struct issuer_count *c = issuer_count_find(a, payer);
	return c ? c->count[delegates ? 1 : 0] : 0;
}

static u64 h_principal(const void *e)
{
	return load64(((const struct principal_rec *)e)->p.id);
}

static u64 h_owner(const void *e)
{
	return ledger_hash_id(((const struct owner_rec *)e)->account);
}

static u64 h_counter(const void *e)
{
	return load64(((const struct counter_rec *)e)->link);
}

struct auth *auth_new(void)
{
	struct auth *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->principals.size = sizeof(struct principal_rec);
	a->owners.size = sizeof(struct owner_rec);
	a->revocations.size = sizeof(struct revoke_rec);
	a->counters.size = sizeof(struct counter_rec);
	a->keys.size = sizeof(struct key_rec);
	a->by_issuer.size = sizeof(struct issuer_count);
	a->admin = admin_new();
	if (!a->admin) {
		free(a);
		return NULL;
	}
	return a;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	free(a->principals.data);
	free(a->owners.data);
	free(a->revocations.data);
	free(a->counters.data);
	free(a->keys.data);
	free(a->principals_ix.slots);
	free(a->owners_ix.slots);
	free(a->revocations_ix.slots);
	free(a->issuers_ix.slots);
	free(a->counters_ix.slots);
	free(a->by_issuer.data);
	free(a->by_issuer_ix.slots);
	admin_free(a->admin);
	free(a);
}

/* ---- lookups ---------------------------------------------------------- */

static struct principal_rec *principal_find(const struct auth *a,
					    const u8 id[AUTH_ID_BYTES])
{
	const struct index *ix = &a->principals_ix;
	if (!ix->slots)
		return NULL;
	for (u32 j = (u32)load64(id) & ix->mask; ix->slots[j];
	     j = (j + 1) & ix->mask) {
		struct principal_rec *p =
			vec_at(&a->principals, ix->slots[j] - 1);
		if (memcmp(p->p.id, id, AUTH_ID_BYTES) == 0)
			return p;
	}
	return NULL;
}

static struct principal_rec *principal_by_name(const struct auth *a,
					       const char *name)
{
	/* Registrations are rare and names optional: a scan is enough. */
	for (u32 i = 0; i < a->principals.n; i++) {
		struct principal_rec *p = vec_at(&a->principals, i);
		if (p->p.name[0] &&
		    strncmp(p->p.name, name, AUTH_NAME_BYTES) == 0)
			return p;
	}
	return NULL;
}

static const struct owner_rec *owner_find(const struct auth *a, u128 account)
{
	const struct index *ix = &a->owners_ix;
	if (!ix->slots)
		return NULL;
	for (u32 j = (u32)ledger_hash_id(account) & ix->mask; ix->slots[j];
	     j = (j + 1) & ix->mask) {
		const struct owner_rec *o =
			vec_at(&a->owners, ix->slots[j] - 1);
		if (o->account == account)
			return o;
	}
	return NULL;
}

static const u8 zero32[32];

/* A link revocation (iss, jti_hash), or with jti_hash == zero32 an
 * issuer's (kept in issuers_ix, hashed by iss alone). */
static const struct revoke_rec *
revoke_find(const struct auth *a, const u8 iss[32], const u8 jti_hash[32])
{
	bool all = memcmp(jti_hash, zero32, 32) == 0;
	const struct index *ix = all ? &a->issuers_ix : &a->revocations_ix;
	if (!ix->slots)
		return NULL;
	u64 h = load64(iss) ^ load64(jti_hash);
	for (u32 j = (u32)h & ix->mask; ix->slots[j]; j = (j + 1) & ix->mask) {
		const struct revoke_rec *r =
			vec_at(&a->revocations, ix->slots[j] - 1);
		if (memcmp(r->r.iss, iss, 32) == 0 &&
		    memcmp(r->r.jti_hash, jti_hash, 32) == 0)
			return r;
	}
	return NULL;
}

static struct counter_rec *counter_find(const struct auth *a, const u8 link[32])
{
	const struct index *ix = &a->counters_ix;
	if (!ix->slots)
		return NULL;
	for (u32 j = (u32)load64(link) & ix->mask; ix->slots[j];
	     j = (j + 1) & ix->mask) {
		struct counter_rec *c = vec_at(&a->counters, ix->slots[j] - 1);
		if (memcmp(c->link, link, 32) == 0)
			return c;
	}
	return NULL;
}

/* ---- inserts (also used by snapshot_read) ---------------------------- */

static bool index_revocation(struct auth *a)
{
	const struct revoke_rec *r =
		vec_at(&a->revocations, a->revocations.n - 1);
	bool all = memcmp(r->r.jti_hash, zero32, 32) == 0;
	/* Both indexes hash iss ^ jti_hash over the same array; each only
	 * ever holds its own kind, the other kind's slots are never added. */
	struct index *ix = all ? &a->issuers_ix : &a->revocations_ix;
	u32 cap = ix->slots ? ix->mask + 1 : 0;
	if (!ix->slots || (u64)a->revocations.n * 2 > cap) {
		u32 ncap = cap ? cap * 2 : 64;
		while ((u64)a->revocations.n * 2 > ncap)
			ncap *= 2;
		u32 *s = calloc(ncap, sizeof(*s));
		if (!s)
			return false;
		for (u32 i = 0; i < a->revocations.n; i++) {
			const struct revoke_rec *e = vec_at(&a->revocations, i);
			if ((memcmp(e->r.jti_hash, zero32, 32) == 0) != all)
				continue;
			u32 j = (u32)(load64(e->r.iss) ^
				      load64(e->r.jti_hash)) &
				(ncap - 1);
			while (s[j])
				j = (j + 1) & (ncap - 1);
			s[j] = i + 1;
		}
		free(ix->slots);
		ix->slots = s;
		ix->mask = ncap - 1;
		return true;
	}
	u32 j = (u32)(load64(r->r.iss) ^ load64(r->r.jti_hash)) & ix->mask;
	while (ix->slots[j])
		j = (j + 1) & ix->mask;
	ix->slots[j] = a->revocations.n;
	return true;
}

/* ---- applying ---------------------------------------------------------- */

static int apply_principal(struct auth *a, const struct auth_principal *p,
			   u64 ts, u32 *outcome)
{
	const struct principal_rec *have = principal_find(a, p->id);
	if (have) {
		*outcome = AUTH_EXISTS;
		return 0;
	}
	char name[AUTH_NAME_BYTES + 1] = {0};
	memcpy(name, p->name, AUTH_NAME_BYTES);
	if (name[0] && principal_by_name(a, name)) {
		*outcome = AUTH_NAME_TAKEN;
		return 0;
	}
	if (a->principals.n >= AUTH_PRINCIPALS_MAX) {
		*outcome = AUTH_FULL;
		return 0;
	}
	struct principal_rec *r = vec_push(&a->principals);
	if (!r)
		return -ENOMEM;
	r->p = *p;
	r->timestamp = ts;
	if (!index_add(&a->principals_ix, &a->principals, h_principal))
		return -ENOMEM;
	*outcome = AUTH_OK;
	return 0;
}

static int apply_revoke(struct auth *a, const struct auth_revoke *rv, u64 ts,
			u32 *outcome)
{
	if (revoke_find(a, rv->iss, rv->jti_hash)) {
		*outcome = AUTH_ALREADY_REVOKED;
		return 0;
	}
	/* Decided here, in journal order, so concurrent statements of one
	 * payer cannot together pass the quota. */
	bool quota = rv->flags & AUTH_REVOKE_QUOTA;
	if (quota && (auth_revocations_by(a, rv->payer,
					  rv->flags & AUTH_REVOKE_DELEGATE) >=
			      rv->quota ||
		      a->revocations.n >= AUTH_REVOCATIONS_MAX -
						  AUTH_REVOCATIONS_RESERVE)) {
		*outcome = AUTH_FULL;
		return 0;
	}
	if (a->revocations.n >= AUTH_REVOCATIONS_MAX) {
		*outcome = AUTH_FULL;
		return 0;
	}
	struct revoke_rec *r = vec_push(&a->revocations);
	if (!r)
		return -ENOMEM;
	r->r = *rv;
	r->timestamp = ts;
	if (!index_revocation(a) || (quota && !issuer_count_add(a, rv)))
		return -ENOMEM;
	*outcome = AUTH_OK;
	return 0;
}

static int apply_key(struct auth *a, const struct auth_key_event *k, u64 ts,
		     u32 *outcome)
{
	/* A key is created once: a second record of it (the upkeep and a
	 * rotation request racing) changes nothing. */
	for (u32 i = 0; k->kind == AUTH_KEY_CREATED && i < a->keys.n; i++) {
		const struct key_rec *r = vec_at(&a->keys, i);
		if (r->k.kind == AUTH_KEY_CREATED &&
		    strncmp(r->k.kid, k->kid, AUTH_KID_BYTES) == 0) {
			*outcome = AUTH_EXISTS;
			return 0;
		}
	}
	if (a->keys.n >= AUTH_KEY_EVENTS_MAX) {
		*outcome = AUTH_FULL;
		return 0;
	}
	struct key_rec *r = vec_push(&a->keys);
	if (!r)
		return -ENOMEM;
	r->k = *k;
	r->timestamp = ts;
	*outcome = AUTH_OK;
	return 0;
}

bool auth_principal_x509(const u8 pub[32], struct auth_x509_pub *x)
{
	struct auth_x509_pub v;
	static const char magic[8] = AUTH_X509_MAGIC;

	memcpy(&v, pub, sizeof(v));
	if (memcmp(v.magic, magic, sizeof(magic)) != 0)
		return false;
	if (x)
		*x = v;
	return true;
}

bool auth_command_valid(u16 kind, const void *ext, u32 ext_bytes)
{
	switch (kind) {
	case AUTH_CMD_PRINCIPAL:
		return ext_bytes == sizeof(struct auth_principal);
	case AUTH_CMD_PRINCIPAL_X509: {
		struct auth_principal p;
		struct auth_x509_pub x;
		static const u8 zero8[8];
		if (ext_bytes != sizeof(p))
			return false;
		memcpy(&p, ext, sizeof(p));
		return auth_principal_x509(p.pub, &x) && x.not_before >= 0 &&
		       x.not_after >= 0 &&
		       memcmp(x.reserved, zero8, sizeof(zero8)) == 0;
	}
	case AUTH_CMD_REVOKE: {
		struct auth_revoke r = {0};
		if (ext_bytes != sizeof(r) && ext_bytes != AUTH_REVOKE_V1_BYTES)
			return false;
		memcpy(&r, ext, ext_bytes);
		bool all = r.flags & AUTH_REVOKE_ALL;
		u32 known = AUTH_REVOKE_ALL | AUTH_REVOKE_QUOTA;
		if (ext_bytes == sizeof(r)) /* the payer's fields */
			known |= AUTH_REVOKE_DELEGATE;
		bool quota = r.flags & AUTH_REVOKE_QUOTA;
		return !(r.flags & ~known) &&
		       (quota || !(r.flags & AUTH_REVOKE_DELEGATE)) &&
		       (ext_bytes != sizeof(r) || !quota || r.quota > 0) &&
		       all == (memcmp(r.jti_hash, zero32, 32) == 0);
	}
	case AUTH_CMD_KEY: {
		struct auth_key_event k;
		if (ext_bytes != sizeof(k))
			return false;
		memcpy(&k, ext, sizeof(k));
		return k.kind == AUTH_KEY_CREATED || k.kind == AUTH_KEY_RETIRED;
	}
	default: return false;
	}
}

int auth_apply(struct auth *a, u16 kind, const void *ext, u32 ext_bytes,
	       u64 timestamp, u32 *outcome)
{
	/* Sizes, kinds and flags: checked once, here and before journaling. */
	if (!auth_command_valid(kind, ext, ext_bytes))
		return -EBADMSG;
	switch (kind) {
	case AUTH_CMD_PRINCIPAL:
	case AUTH_CMD_PRINCIPAL_X509: {
		struct auth_principal p;
		memcpy(&p, ext, sizeof(p));
		return apply_principal(a, &p, timestamp, outcome);
	}
	case AUTH_CMD_REVOKE: {
		struct auth_revoke r = {0};
		memcpy(&r, ext, ext_bytes);
		if (ext_bytes == AUTH_REVOKE_V1_BYTES) {
			memcpy(r.payer, r.iss, AUTH_ID_BYTES);
			r.quota = AUTH_REVOCATIONS_PER_KEY_V1;
		}
		return apply_revoke(a, &r, timestamp, outcome);
	}
	default: {
		struct auth_key_event k;
		memcpy(&k, ext, sizeof(k));
		return apply_key(a, &k, timestamp, outcome);
	}
	}
}

void auth_set_owners(struct auth *a, const struct auth_owner *o,
		     const struct account *accounts, const u32 *results,
		     u32 count)
{
	if (memcmp(o->owner, zero32, 32) == 0)
		return; /* the administrator: the default, nothing stored */
	for (u32 i = 0; i < count; i++) {
		if (results[i] != CREATE_ACCOUNT_ok)
			continue;
		struct owner_rec *r = vec_push(&a->owners);
		if (!r)
			abort(); /* the ledger grew; so must this (as ledger
				    does) */
		r->account = accounts[i].id;
		memcpy(r->owner, o->owner, 32);
		if (!index_add(&a->owners_ix, &a->owners, h_owner))
			abort();
	}
}

static bool counts(const struct transfer *t)
{
	return !(t->flags & (TRANSFER_POST_PENDING_TRANSFER |
			     TRANSFER_VOID_PENDING_TRANSFER));
}

u32 auth_guard_check(const struct auth *a, const struct auth_guard *g,
		     u32 n_guard, const struct transfer *t, u32 count,
		     const u8 *skip)
{
	u128 sum = 0;
	u64 n = 0;
	bool overflow = false;
	for (u32 i = 0; i < count; i++) {
		if (!counts(&t[i]) || (skip && skip[i]))
			continue;
		if (sum + t[i].amount < sum)
			overflow = true;
		sum += t[i].amount;
		n++;
	}
	for (u32 k = 0; k < n_guard; k++) {
		if (revoke_find(a, g[k].iss, g[k].jti_hash) ||
		    revoke_find(a, g[k].iss, zero32))
			return CREATE_TRANSFER_mandate_revoked;
	}
	for (u32 k = 0; k < n_guard; k++) {
		u128 spent = 0;
		u64 uses = 0;
		const struct counter_rec *c = counter_find(a, g[k].link);
		if (c) {
			spent = c->spent;
			uses = c->uses;
		}
		if ((g[k].flags & AUTH_GUARD_TOTAL_CAP) &&
		    (overflow || spent > g[k].total_cap ||
		     sum > g[k].total_cap - spent))
			return CREATE_TRANSFER_exceeds_mandate_total_cap;
		if ((g[k].flags & AUTH_GUARD_USES) &&
		    (uses > g[k].uses_max || n > g[k].uses_max - uses))
			return CREATE_TRANSFER_exceeds_mandate_uses;
	}
	/* The commit must not fail once the record is durable: refuse now
	 * if it could need counters past the limit. */
	u32 fresh = 0;
	for (u32 k = 0; k < n_guard; k++)
		if ((g[k].flags & (AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES)) &&
		    !counter_find(a, g[k].link))
			fresh++;
	if ((u64)a->counters.n + fresh > AUTH_COUNTERS_MAX)
		return CREATE_TRANSFER_mandate_counters_full;
	return 0;
}

int auth_guard_commit(struct auth *a, const struct auth_guard *g, u32 n_guard,
		      const struct transfer *t, const u32 *results, u32 count)
{
	u128 sum = 0;
	u64 n = 0;
	for (u32 i = 0; i < count; i++) {
		if (results[i] != CREATE_TRANSFER_ok || !counts(&t[i]))
			continue;
		/* A total cap was checked, so it cannot overflow; a link
		 * with only a uses limit (or none) may: saturate, so its
		 * spent amount never wraps to a small one. */
		sum = sum + t[i].amount < sum ? U128_MAX : sum + t[i].amount;
		n++;
	}
	if (n == 0)
		return 0;
	for (u32 k = 0; k < n_guard; k++) {
		if (!(g[k].flags & (AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES)))
			continue;
		/* The check saw the batch once per distinct link: a link
		 * given twice is counted once, or its counter would run
		 * ahead of what was made (past its cap). */
		bool seen = false;
		for (u32 j = 0; j < k && !seen; j++)
			seen = memcmp(g[j].link, g[k].link, 32) == 0 &&
			       (g[j].flags &
				(AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES));
		if (seen)
			continue;
		struct counter_rec *c = counter_find(a, g[k].link);
		if (!c) {
			if (a->counters.n >= AUTH_COUNTERS_MAX)
				return -ENOSPC;
			c = vec_push(&a->counters);
			if (!c)
				return -ENOMEM;
			memcpy(c->link, g[k].link, 32);
			if (!index_add(&a->counters_ix, &a->counters,
				       h_counter))
				return -ENOMEM;
		}
		c->spent =
			c->spent + sum < c->spent ? U128_MAX : c->spent + sum;
		c->uses += n;
	}
	return 0;
}

/* ---- reading ---------------------------------------------------------- */

static void principal_info(const struct principal_rec *r,
			   struct auth_principal_info *out)
{
	memcpy(out->id, r->p.id, 32);
	memcpy(out->pub, r->p.pub, 32);
	memcpy(out->name, r->p.name, AUTH_NAME_BYTES);
	out->name[AUTH_NAME_BYTES] = '\0';
	out->timestamp = r->timestamp;
}

bool auth_principal_get(const struct auth *a, const u8 id[AUTH_ID_BYTES],
			struct auth_principal_info *out)
{
	const struct principal_rec *r = principal_find(a, id);
	if (!r)
		return false;
	if (out)
		principal_info(r, out);
	return true;
}

u32 auth_principal_count(const struct auth *a)
{
	return a->principals.n;
}

void auth_principal_at(const struct auth *a, u32 i,
		       struct auth_principal_info *out)
{
	principal_info(vec_at(&a->principals, i), out);
}

bool auth_owner_get(const struct auth *a, u128 account, u8 owner[AUTH_ID_BYTES])
{
	const struct owner_rec *o = owner_find(a, account);
	if (!o)
		return false;
	memcpy(owner, o->owner, 32);
	return true;
}

bool auth_owns_any(const struct auth *a, const u8 id[AUTH_ID_BYTES])
{
	for (u32 i = 0; i < a->owners.n; i++) {
		const struct owner_rec *o = vec_at(&a->owners, i);
		if (memcmp(o->owner, id, AUTH_ID_BYTES) == 0)
			return true;
	}
	return false;
}

bool auth_revoked(const struct auth *a, const u8 iss[AUTH_ID_BYTES],
		  const u8 jti_hash[32])
{
	return revoke_find(a, iss, zero32) ||
	       (memcmp(jti_hash, zero32, 32) != 0 &&
		revoke_find(a, iss, jti_hash));
}

u32 auth_revocation_count(const struct auth *a)
{
	return a->revocations.n;
}

void auth_revocation_at(const struct auth *a, u32 i,
			struct auth_revocation *out)
{
	const struct revoke_rec *r = vec_at(&a->revocations, i);
	memcpy(out->iss, r->r.iss, 32);
	memcpy(out->jti_hash, r->r.jti_hash, 32);
	memcpy(out->jti, r->r.jti, AUTH_JTI_BYTES);
	out->jti[AUTH_JTI_BYTES] = '\0';
	out->all = r->r.flags & AUTH_REVOKE_ALL;
	out->timestamp = r->timestamp;
}

void auth_counter_get(const struct auth *a, const u8 link[32], u128 *spent,
		      u64 *uses)
{
	const struct counter_rec *c = counter_find(a, link);
	*spent = c ? c->spent : 0;
	*uses = c ? c->uses : 0;
}

u32 auth_key_event_count(const struct auth *a)
{
	return a->keys.n;
}

void auth_key_event_at(const struct auth *a, u32 i, struct auth_key_event *out,
		       u64 *timestamp)
{
	const struct key_rec *r = vec_at(&a->keys, i);
	*out = r->k;
	if (timestamp)
		*timestamp = r->timestamp;
}

/* ---- snapshot and digest ---------------------------------------------
 * Format (native byte order, like the ledger's snapshot):
 *   "TPWAUTH1", then for each collection in the order principals,
 *   owners, revocations, counters, keys: u32 count, u32 element bytes,
 *   the elements; then, only when there is any, the administrators'
 *   part (admin_snapshot_write, to the end), so a state without named
 *   administrators keeps the bytes and digest it had before them.
 */

const struct admin *auth_admin(const struct auth *a)
{
	return a->admin;
}

struct admin *auth_admin_rw(struct auth *a)
{
	return a->admin;
}

static const char auth_magic[8] = {'T', 'P', 'W', 'A', 'U', 'T', 'H', '1'};

static const struct vec *collection(const struct auth *a, int i)
{
	const struct vec *v[] = {&a->principals, &a->owners, &a->revocations,
				 &a->counters, &a->keys};
	return v[i];
}
#define COLLECTIONS 5

u64 auth_snapshot_bytes(const struct auth *a)
{
	u64 n = sizeof(auth_magic);
	for (int i = 0; i < COLLECTIONS; i++) {
		const struct vec *v = collection(a, i);
		n += 8 + (u64)v->n * v->size;
	}
	if (!admin_empty(a->admin))
		n += admin_snapshot_bytes(a->admin);
	return n;
}

int auth_snapshot_write(const struct auth *a,
			int (*sink)(void *ctx, const void *buf, size_t len),
			void *ctx)
{
	int rc = sink(ctx, auth_magic, sizeof(auth_magic));
	for (int i = 0; rc == 0 && i < COLLECTIONS; i++) {
		const struct vec *v = collection(a, i);
		u32 head[2] = {v->n, v->size};
		rc = sink(ctx, head, sizeof(head));
		if (rc == 0 && v->n)
			rc = sink(ctx, v->data, (size_t)v->n * v->size);
	}
	if (rc == 0 && !admin_empty(a->admin))
		rc = admin_snapshot_write(a->admin, sink, ctx);
	return rc;
}

static int digest_sink(void *ctx, const void *buf, size_t len)
{
	crypto_generichash_update(ctx, buf, len);
	return 0;
}

void auth_digest(const struct auth *a, u8 out[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	auth_snapshot_write(a, digest_sink, &st);
	crypto_generichash_final(&st, out, 32);
}

static bool read_vec(struct vec *v, const u8 **p, const u8 *end)
{
	u32 head[2];
	if ((size_t)(end - *p) < sizeof(head))
		return false;
	memcpy(head, *p, sizeof(head));
	*p += sizeof(head);
	if (head[1] != v->size || (u64)head[0] * v->size > (u64)(end - *p))
		return false;
	for (u32 i = 0; i < head[0]; i++) {
		void *e = vec_push(v);
		if (!e)
			return false;
		memcpy(e, *p, v->size);
		*p += v->size;
	}
	return true;
}

struct auth *auth_snapshot_read(const u8 *buf, size_t len)
{
	const u8 *p = buf, *end = buf + len;
	struct auth *a = auth_new();
	if (!a)
		return NULL;
	if (len < sizeof(auth_magic) ||
	    memcmp(buf, auth_magic, sizeof(auth_magic)) != 0)
		goto fail;
	p += sizeof(auth_magic);
	struct vec tmp[COLLECTIONS];
	for (int i = 0; i < COLLECTIONS; i++) {
		tmp[i] = *collection(a, i);
		if (!read_vec(&tmp[i], &p, end)) {
			for (int k = 0; k <= i; k++)
				free(tmp[k].data);
			goto fail;
		}
	}
	if (p != end) {
		struct admin *d = admin_snapshot_read(p, (size_t)(end - p));
		if (!d) {
			for (int k = 0; k < COLLECTIONS; k++)
				free(tmp[k].data);
			goto fail;
		}
		admin_free(a->admin);
		a->admin = d;
	}
	a->principals = tmp[0];
	a->owners = tmp[1];
	a->revocations = tmp[2];
	a->counters = tmp[3];
	a->keys = tmp[4];
	/* Rebuild the indexes. */
	struct vec part = a->principals;
	for (part.n = 1; part.n <= a->principals.n; part.n++)
		if (!index_add(&a->principals_ix, &part, h_principal))
			goto fail;
	part = a->owners;
	for (part.n = 1; part.n <= a->owners.n; part.n++)
		if (!index_add(&a->owners_ix, &part, h_owner))
			goto fail;
	part = a->counters;
	for (part.n = 1; part.n <= a->counters.n; part.n++)
		if (!index_add(&a->counters_ix, &part, h_counter))
			goto fail;
	u32 nrev = a->revocations.n;
	for (a->revocations.n = 1; a->revocations.n <= nrev;
	     a->revocations.n++) {
		const struct auth_revoke *rv =
			&((const struct revoke_rec *)vec_at(
				  &a->revocations, a->revocations.n - 1))
				 ->r;
		if (!index_revocation(a) || ((rv->flags & AUTH_REVOKE_QUOTA) &&
					     !issuer_count_add(a, rv)))
			goto fail;
	}
	a->revocations.n = nrev;
	return a;
fail:
	auth_free(a);
	return NULL;
}
