/*
 * mandate.c - delegation chains, DPoP proofs and revocation statements
 * (see mandate.h for the order of the checks and docs/authz.md for the
 * formats).
 *
 * Written as a list of refusals, like jose.c: each check passes or
 * reports its own code with the link and the claim path, and a chain is
 * accepted only when every link passed every check.  The signing key of
 * a link is chosen by its iss claim, which is read from the payload
 * before the signature is checked (inside jose's key lookup, so jose's
 * header checks still come first); nothing read that way is trusted
 * until the signature verifies and the claims are parsed again, strictly.
 */
#include "crypto/mandate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/u128.h"
#include "crypto/b64url.h"

#include "banned.h"

#define THUMB_TEXT_BYTES 43 /* base64url of 32 bytes */

_Static_assert(B64URL_ENCODED_LEN(32) == THUMB_TEXT_BYTES, "thumbprint");
_Static_assert(MANDATE_OP_COUNT <= MANDATE_OPS_LIST_MAX, "ops fit the list");
_Static_assert(MANDATE_LIST_MAX <= UINT8_MAX, "list counts fit uint8_t");

/* ---- errors ----------------------------------------------------------- */

static const char *const err_names[] = {
#define X(name, status, title) #name,
	MANDATE_ERRORS(X)
#undef X
};
static const char *const err_titles[] = {
#define X(name, status, title) title,
	MANDATE_ERRORS(X)
#undef X
};
static const int err_statuses[] = {
#define X(name, status, title) status,
	MANDATE_ERRORS(X)
#undef X
};
_Static_assert(sizeof(err_names) / sizeof(err_names[0]) == MANDATE_ERR_COUNT,
	       "one name per mandate error");

const char *mandate_err_name(int code)
{
	return code >= 0 && code < MANDATE_ERR_COUNT ? err_names[code] : NULL;
}

const char *mandate_err_title(int code)
{
	return code >= 0 && code < MANDATE_ERR_COUNT ? err_titles[code] : NULL;
}

int mandate_err_status(int code)
{
	return code >= 0 && code < MANDATE_ERR_COUNT ? err_statuses[code] : 500;
}

/* Fills *err (when not NULL) and returns -1. */
static int fail(struct mandate_error *err, int code, int link,
		const char *claim)
{
	if (err) {
		err->code = code;
		err->link = link;
		snprintf(err->claim, sizeof(err->claim), "%s",
			 claim ? claim : "");
	}
	return -1;
}

static void err_ok(struct mandate_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

/* ---- operations ------------------------------------------------------- */

static const char *const op_names[MANDATE_OP_COUNT] = {
	"accounts:create",  "accounts:read",
	"transfers:create", "transfers:post_void",
	"transfers:read",   "principals:read",
	"principals:admin", "keys:read",
	"keys:rotate",	    "revocations:read",
	"revoke",	    "audit:read",
	"policy:read",	    "policy:admin",
	"vault:tokenize",   "vault:reveal",
	"vault:erase",	    "vault:admin",
	"acquirer:topup",   "acquirer:reconcile",
};

const char *mandate_op_name(unsigned op_bit)
{
	if (op_bit == MANDATE_OP_ALL)
		return "*";
	for (unsigned i = 0; i < MANDATE_OP_COUNT; i++)
		if (op_bit == 1u << i)
			return op_names[i];
	return NULL;
}

int mandate_op_parse(const char *s, unsigned *bit)
{
	*bit = 0;
	if (!s)
		return -1;
	if (strcmp(s, "*") == 0) {
		*bit = MANDATE_OP_ALL;
		return 0;
	}
	for (unsigned i = 0; i < MANDATE_OP_COUNT; i++)
		if (strcmp(s, op_names[i]) == 0) {
			*bit = 1u << i;
			return 0;
		}
	return -1;
}

/* ---- small helpers ---------------------------------------------------- */

static void sha256(uint8_t out[32], const void *p, size_t n)
{
	crypto_hash_sha256(out, p, n);
}

/* A thumbprint or hash as 43 base64url characters -> 32 bytes. */
static bool b64_32_decode(const char *s, size_t n, uint8_t out[32])
{
	size_t got;

	if (n != THUMB_TEXT_BYTES)
		return false;
	return b64url_decode(out, 32, s, n, &got) == 0 && got == 32;
}

static bool b64_32_string(const json_t *v, uint8_t out[32])
{
	return json_is_string(v) &&
	       b64_32_decode(json_string_value(v), json_string_length(v), out);
}

static bool thumb_raw(const struct jose_pubkey *k, uint8_t out[32])
{
	char t[JOSE_B64_32_BYTES];

	return jose_thumbprint(k, t) == 0 && b64_32_decode(t, strlen(t), out);
}

/* A link's or statement's jti: 1..64 of A-Z a-z 0-9 - _ . ~ */
static bool jti_ok(const char *s, size_t n)
{
	if (n == 0 || n > MANDATE_JTI_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == '~'))
			return false;
	}
	return true;
}

/* A DPoP jti: 1..64 visible ASCII characters (RFC 9449 sets no charset). */
static bool dpop_jti_ok(const char *s, size_t n)
{
	if (n == 0 || n > MANDATE_JTI_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* A JSON string that passes ok(): copied with its NUL into out. */
static bool jti_string(const json_t *v, bool (*ok)(const char *, size_t),
		       char out[MANDATE_JTI_BYTES_MAX + 1])
{
	size_t n;

	if (!json_is_string(v))
		return false;
	n = json_string_length(v);
	if (!ok(json_string_value(v), n))
		return false;
	memcpy(out, json_string_value(v), n);
	out[n] = '\0';
	return true;
}

/* Every member of obj is one of names (count n). */
static bool only_members(const json_t *obj, const char *const *names, size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;
		(void)v;
		for (i = 0; i < n; i++)
			if (strcmp(key, names[i]) == 0)
				break;
		if (i == n)
			return false;
	}
	return true;
}

#define ONLY_MEMBERS(obj, arr)                                                 \
	only_members(obj, arr, sizeof(arr) / sizeof(arr[0]))

/* A NumericDate member: 1 present, 0 absent, -1 wrong. */
static int date_member(const json_t *obj, const char *name, int64_t *out)
{
	*out = 0;
	if (!json_object_get(obj, name))
		return 0;
	return jose_claim_numeric_date(obj, name, out) == 0 ? 1 : -1;
}

static bool u128_string(const json_t *v, u128 *out)
{
	return json_is_string(v) &&
	       u128_parse_dec(json_string_value(v), json_string_length(v),
			      U128_MAX, out) == 0;
}

static bool ascii_case_equal(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* ---- rights ----------------------------------------------------------- */

/* An id list (accounts, counterparties): 1..16 canonical decimals, not 0
 * nor 2^128-1, no duplicates. */
static bool id_list(const json_t *a, u128 *out, uint8_t *n)
{
	size_t len = json_array_size(a);

	if (!json_is_array(a) || len == 0 || len > MANDATE_LIST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		u128 v;
		if (!u128_string(json_array_get(a, i), &v) || v == 0 ||
		    v == U128_MAX)
			return false;
		for (size_t j = 0; j < i; j++)
			if (out[j] == v)
				return false;
		out[i] = v;
	}
	*n = (uint8_t)len;
	return true;
}

static bool ledger_list(const json_t *a, uint32_t *out, uint8_t *n)
{
	size_t len = json_array_size(a);

	if (!json_is_array(a) || len == 0 || len > MANDATE_LIST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		const json_t *e = json_array_get(a, i);
		json_int_t v;
		if (!json_is_integer(e))
			return false;
		v = json_integer_value(e);
		if (v < 1 || v > (json_int_t)UINT32_MAX)
			return false;
		for (size_t j = 0; j < i; j++)
			if (out[j] == (uint32_t)v)
				return false;
		out[i] = (uint32_t)v;
	}
	*n = (uint8_t)len;
	return true;
}

static bool ops_list(const json_t *a, struct mandate_right *r)
{
	size_t len = json_array_size(a);

	if (!json_is_array(a) || len == 0 || len > MANDATE_OPS_LIST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		const json_t *e = json_array_get(a, i);
		unsigned bit;
		if (!json_is_string(e) ||
		    strlen(json_string_value(e)) != json_string_length(e) ||
		    mandate_op_parse(json_string_value(e), &bit) < 0)
			return false;
		/* "*" stands alone; a name appears once */
		if (bit == MANDATE_OP_ALL) {
			if (len != 1)
				return false;
			r->all_ops = true;
		}
		if (r->ops & bit)
			return false;
		r->ops |= bit;
	}
	return true;
}

int mandate_right_from_json(const json_t *j, struct mandate_right *out,
			    struct mandate_error *err)
{
	static const char *const members[] = {
		"ops",	"accounts",	    "ledgers",	"counterparties",
		"uses", "per_transfer_cap", "total_cap"};
	const json_t *v;

	err_ok(err);
	memset(out, 0, sizeof(*out));
	if (!json_is_object(j) || !ONLY_MEMBERS(j, members))
		return fail(err, MANDATE_ERR_malformed, 0, "right");
	if (!ops_list(json_object_get(j, "ops"), out))
		return fail(err, MANDATE_ERR_malformed, 0, "right.ops");
	if ((v = json_object_get(j, "accounts")) &&
	    !id_list(v, out->accounts, &out->n_accounts))
		return fail(err, MANDATE_ERR_malformed, 0, "right.accounts");
	if ((v = json_object_get(j, "ledgers")) &&
	    !ledger_list(v, out->ledgers, &out->n_ledgers))
		return fail(err, MANDATE_ERR_malformed, 0, "right.ledgers");
	if ((v = json_object_get(j, "counterparties")) &&
	    !id_list(v, out->counterparties, &out->n_counterparties))
		return fail(err, MANDATE_ERR_malformed, 0,
			    "right.counterparties");
	if ((v = json_object_get(j, "per_transfer_cap"))) {
		if (!u128_string(v, &out->per_transfer_cap))
			return fail(err, MANDATE_ERR_malformed, 0,
				    "right.per_transfer_cap");
		out->has_per_transfer_cap = true;
	}
	if ((v = json_object_get(j, "total_cap"))) {
		if (!u128_string(v, &out->total_cap))
			return fail(err, MANDATE_ERR_malformed, 0,
				    "right.total_cap");
		out->has_total_cap = true;
	}
	if ((v = json_object_get(j, "uses"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    (uint64_t)json_integer_value(v) > MANDATE_USES_MAX)
			return fail(err, MANDATE_ERR_malformed, 0,
				    "right.uses");
		out->uses = (uint64_t)json_integer_value(v);
		out->has_uses = true;
	}
	return 0;
}

/* Appends a decimal string; false when out of memory. */
static bool push_dec(json_t *a, u128 v)
{
	char buf[U128_DEC_BYTES];

	u128_format_dec(v, buf);
	return json_array_append_new(a, json_string(buf)) == 0;
}

static bool set_dec(json_t *o, const char *name, u128 v)
{
	char buf[U128_DEC_BYTES];

	u128_format_dec(v, buf);
	return json_object_set_new(o, name, json_string(buf)) == 0;
}

json_t *mandate_right_to_json(const struct mandate_right *r)
{
	json_t *o = json_object(), *a;
	bool ok = o != NULL;

	if (!ok || !r)
		goto cleanup;
	ok = (a = json_array()) && json_object_set_new(o, "ops", a) == 0;
	if (ok && r->all_ops)
		ok = json_array_append_new(a, json_string("*")) == 0;
	else
		for (unsigned i = 0; ok && i < MANDATE_OP_COUNT; i++)
			if (r->ops & (1u << i))
				ok = json_array_append_new(
					     a, json_string(op_names[i])) == 0;
	if (ok && r->n_accounts) {
		ok = (a = json_array()) &&
		     json_object_set_new(o, "accounts", a) == 0;
		for (unsigned i = 0; ok && i < r->n_accounts; i++)
			ok = push_dec(a, r->accounts[i]);
	}
	if (ok && r->n_ledgers) {
		ok = (a = json_array()) &&
		     json_object_set_new(o, "ledgers", a) == 0;
		for (unsigned i = 0; ok && i < r->n_ledgers; i++)
			ok = json_array_append_new(
				     a, json_integer(r->ledgers[i])) == 0;
	}
	if (ok && r->n_counterparties) {
		ok = (a = json_array()) &&
		     json_object_set_new(o, "counterparties", a) == 0;
		for (unsigned i = 0; ok && i < r->n_counterparties; i++)
			ok = push_dec(a, r->counterparties[i]);
	}
	if (ok && r->has_per_transfer_cap)
		ok = set_dec(o, "per_transfer_cap", r->per_transfer_cap);
	if (ok && r->has_total_cap)
		ok = set_dec(o, "total_cap", r->total_cap);
	if (ok && r->has_uses)
		ok = json_object_set_new(
			     o, "uses", json_integer((json_int_t)r->uses)) == 0;
cleanup:
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static bool has_id(const u128 *list, unsigned n, u128 v)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

static bool has_ledger(const uint32_t *list, unsigned n, uint32_t v)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

int mandate_right_check_op(const struct mandate_right *r, unsigned op,
			   bool has_account, u128 account,
			   struct mandate_error *err)
{
	err_ok(err);
	if (!r || op == 0 || (op & (op - 1)) ||
	    (op & ~(unsigned)MANDATE_OP_ALL))
		return fail(err, MANDATE_ERR_internal, 0, "");
	if (!(r->ops & op))
		return fail(err, MANDATE_ERR_op_not_allowed, 0, "right.ops");
	if (r->n_accounts &&
	    (!has_account || !has_id(r->accounts, r->n_accounts, account)))
		return fail(err, MANDATE_ERR_account_not_allowed, 0,
			    "right.accounts");
	return 0;
}

/* Is account in the right's accounts (a right without any covers all)? */
static bool covers(const struct mandate_right *r, u128 account)
{
	return !r->n_accounts || has_id(r->accounts, r->n_accounts, account);
}

int mandate_right_check_transfer(const struct mandate_right *r,
				 const struct transfer *t,
				 const struct transfer *p,
				 struct mandate_error *err)
{
	const uint16_t pv =
		TRANSFER_POST_PENDING_TRANSFER | TRANSFER_VOID_PENDING_TRANSFER;
	const char *acc = "right.accounts";

	err_ok(err);
	if (!r || !t)
		return fail(err, MANDATE_ERR_internal, 0, "");
	bool moves = !(t->flags & TRANSFER_VOID_PENDING_TRANSFER);
	unsigned op = (t->flags & pv) ? MANDATE_OP_TRANSFERS_POST_VOID
				      : MANDATE_OP_TRANSFERS_CREATE;
	if (!(r->ops & op))
		return fail(err, MANDATE_ERR_op_not_allowed, 0, "right.ops");

	u128 debit = t->debit_account_id, credit = t->credit_account_id;
	uint32_t ledger = t->ledger;
	u128 amount = t->amount;
	if (!(t->flags & pv)) {
		if (!covers(r, debit))
			return fail(err, MANDATE_ERR_account_not_allowed, 0,
				    acc);
		if ((t->flags &
		     (TRANSFER_CLOSING_CREDIT | TRANSFER_BALANCING_CREDIT)) &&
		    !covers(r, credit))
			return fail(err, MANDATE_ERR_account_not_allowed, 0,
				    acc);
	} else if (!p) {
		/* Unknown: only a right over every account may try (the
		 * ledger then answers pending_transfer_not_found). */
		if (r->n_accounts)
			return fail(err, MANDATE_ERR_account_not_allowed, 0,
				    acc);
	} else {
		debit = p->debit_account_id;
		credit = p->credit_account_id;
		ledger = p->ledger;
		if (amount == 0 || amount > p->amount)
			amount = p->amount;
		const uint16_t closing =
			TRANSFER_CLOSING_DEBIT | TRANSFER_CLOSING_CREDIT;
		/* The payee may refuse a payment, never undo a closing. */
		bool payee =
			!moves && !(p->flags & closing) && covers(r, credit);
		if (!(covers(r, debit) || payee) ||
		    ((p->flags & TRANSFER_CLOSING_CREDIT) &&
		     !covers(r, credit)))
			return fail(err, MANDATE_ERR_account_not_allowed, 0,
				    acc);
	}
	if (r->n_ledgers && !has_ledger(r->ledgers, r->n_ledgers, ledger))
		return fail(err, MANDATE_ERR_ledger_not_allowed, 0,
			    "right.ledgers");
	if (moves && r->n_counterparties &&
	    !has_id(r->counterparties, r->n_counterparties, credit))
		return fail(err, MANDATE_ERR_counterparty_not_allowed, 0,
			    "right.counterparties");
	if (moves && r->has_per_transfer_cap && amount > r->per_transfer_cap)
		return fail(err, MANDATE_ERR_per_transfer_cap_exceeded, 0,
			    "right.per_transfer_cap");
	/* A balancing transfer moves at most its amount, a post at most the
	 * pending amount (checked here too): the bound holds for what moves. */
	if (moves && !covers(r, credit) && amount > MANDATE_FOREIGN_AMOUNT_MAX)
		return fail(err, MANDATE_ERR_foreign_amount_too_large, 0,
			    "amount");
	return 0;
}

/* Child c may only narrow parent p: the claim that widens, or NULL. */
static const char *widening(const struct mandate_link *p,
			    const struct mandate_link *c)
{
	const struct mandate_right *pr = &p->right, *cr = &c->right;

	if ((cr->ops & ~pr->ops) || (cr->all_ops && !pr->all_ops))
		return "right.ops";
	if (pr->n_accounts) {
		if (!cr->n_accounts)
			return "right.accounts";
		for (unsigned i = 0; i < cr->n_accounts; i++)
			if (!has_id(pr->accounts, pr->n_accounts,
				    cr->accounts[i]))
				return "right.accounts";
	}
	if (pr->n_ledgers) {
		if (!cr->n_ledgers)
			return "right.ledgers";
		for (unsigned i = 0; i < cr->n_ledgers; i++)
			if (!has_ledger(pr->ledgers, pr->n_ledgers,
					cr->ledgers[i]))
				return "right.ledgers";
	}
	if (pr->n_counterparties) {
		if (!cr->n_counterparties)
			return "right.counterparties";
		for (unsigned i = 0; i < cr->n_counterparties; i++)
			if (!has_id(pr->counterparties, pr->n_counterparties,
				    cr->counterparties[i]))
				return "right.counterparties";
	}
	if (pr->has_per_transfer_cap &&
	    (!cr->has_per_transfer_cap ||
	     cr->per_transfer_cap > pr->per_transfer_cap))
		return "right.per_transfer_cap";
	if (pr->has_total_cap &&
	    (!cr->has_total_cap || cr->total_cap > pr->total_cap))
		return "right.total_cap";
	if (pr->has_uses && (!cr->has_uses || cr->uses > pr->uses))
		return "right.uses";
	if (c->exp > p->exp)
		return "exp";
	if (p->has_nbf && (!c->has_nbf || c->nbf < p->nbf))
		return "nbf";
	return NULL;
}

/* ---- link cache ------------------------------------------------------- */

struct cache_slot {
	bool used;
	struct mandate_link link;
};

struct mandate_cache {
	pthread_mutex_t mu;
	unsigned mask;
	_Atomic uint64_t hits, misses;
	struct cache_slot *slots;
};

struct mandate_cache *mandate_cache_new(unsigned capacity)
{
	struct mandate_cache *c;

	if (capacity == 0 || capacity > MANDATE_CACHE_CAPACITY_MAX ||
	    (capacity & (capacity - 1)))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->slots = calloc(capacity, sizeof(*c->slots));
	if (!c->slots || pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c->slots);
		free(c);
		return NULL;
	}
	c->mask = capacity - 1;
	return c;
}

void mandate_cache_free(struct mandate_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c->slots);
	free(c);
}

void mandate_cache_stats(const struct mandate_cache *c, uint64_t *hits,
			 uint64_t *misses)
{
	if (hits)
		*hits = c ? atomic_load(&c->hits) : 0;
	if (misses)
		*misses = c ? atomic_load(&c->misses) : 0;
}

static unsigned cache_index(const struct mandate_cache *c, const uint8_t h[32])
{
	uint32_t v;

	memcpy(&v, h, sizeof(v));
	return v & c->mask;
}

static bool cache_get(struct mandate_cache *c, const uint8_t h[32],
		      struct mandate_link *out)
{
	struct cache_slot *s;
	bool hit;

	pthread_mutex_lock(&c->mu);
	s = &c->slots[cache_index(c, h)];
	hit = s->used && memcmp(s->link.hash, h, 32) == 0;
	if (hit)
		*out = s->link;
	pthread_mutex_unlock(&c->mu);
	atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
	return hit;
}

static void cache_put(struct mandate_cache *c, const struct mandate_link *l)
{
	struct cache_slot *s;

	pthread_mutex_lock(&c->mu);
	s = &c->slots[cache_index(c, l->hash)];
	s->used = true;
	s->link = *l;
	pthread_mutex_unlock(&c->mu);
}

/* ---- links ------------------------------------------------------------ */

/* Maps a jose error of a link, proof or statement to ours. */
static int jose_fail(struct mandate_error *err, int ret, int link, int bad_sig,
		     int bad)
{
	switch (-ret) {
	case JOSE_bad_signature: return fail(err, bad_sig, link, "");
	case JOSE_alg_not_allowed:
		return fail(err,
			    bad == MANDATE_ERR_malformed
				    ? MANDATE_ERR_alg_not_allowed
				    : bad,
			    link, "alg");
	case JOSE_bad_header:
	case JOSE_crit_header:
	case JOSE_embedded_key:
	case JOSE_bad_typ:
	case JOSE_bad_kid: return fail(err, bad, link, "header");
	case JOSE_bad_payload: return fail(err, bad, link, "claims");
	case JOSE_key_bad_json:
	case JOSE_key_bad_kty:
	case JOSE_key_bad_crv:
	case JOSE_key_bad_x:
	case JOSE_key_private_member:
	case JOSE_key_foreign_member:
	case JOSE_key_not_for_signing:
	case JOSE_key_bad_d:
	case JOSE_key_mismatch: return fail(err, bad, link, "jwk");
	case JOSE_no_memory:
	case JOSE_internal:
	case JOSE_invalid_argument:
		return fail(err, MANDATE_ERR_internal, link, "");
	default: return fail(err, bad, link, "");
	}
}

/*
 * jose's key lookup for one link.  Reads iss from the (not yet verified)
 * payload: the root's key comes from the principal callback, a later
 * link's from the previous link's cnf.jwk once iss names its sub.  A
 * refusal is left in code/claim (jose then says unknown_kid).
 */
struct lookup_ctx {
	const char *token;
	size_t len;
	const struct mandate_link *parent; /* NULL for the root */
	const struct mandate_root_ops *root;
	bool is_admin;
	int code;
	const char *claim;
};

static int refuse(struct lookup_ctx *x, int code, const char *claim)
{
	x->code = code;
	x->claim = claim;
	return -1;
}

static int link_key(void *ctx, const char *kid, struct jose_pubkey *out)
{
	struct lookup_ctx *x = ctx;
	unsigned char payload[JOSE_PAYLOAD_BYTES_MAX];
	const char *d1, *d2;
	uint8_t iss[32];
	size_t n;
	json_t *claims;
	bool ok;

	(void)kid;
	/* jose has split the token and sized the segments already */
	d1 = memchr(x->token, '.', x->len);
	d2 = d1 ? memchr(d1 + 1, '.', x->len - (size_t)(d1 + 1 - x->token))
		: NULL;
	if (!d2 || b64url_decode(payload, sizeof(payload), d1 + 1,
				 (size_t)(d2 - d1 - 1), &n) < 0)
		return refuse(x, MANDATE_ERR_malformed, "claims");
	claims = json_loadb((const char *)payload, n, JSON_REJECT_DUPLICATES,
			    NULL);
	if (!json_is_object(claims)) {
		json_decref(claims);
		return refuse(x, MANDATE_ERR_malformed, "claims");
	}
	ok = b64_32_string(json_object_get(claims, "iss"), iss);
	json_decref(claims);
	if (!ok)
		return refuse(x, MANDATE_ERR_malformed, "iss");

	memset(out, 0, sizeof(*out));
	if (x->parent) {
		if (memcmp(iss, x->parent->sub, 32) != 0 ||
		    x->parent->cert_bound)
			return refuse(x, MANDATE_ERR_chain_broken, "iss");
		memcpy(out->x, x->parent->sub_key, 32);
		return 0;
	}
	if (x->root->principal(x->root->ctx, iss, out->x, &x->is_admin) != 0)
		return refuse(x, MANDATE_ERR_unknown_issuer, "iss");
	return 0;
}

/* The header of a token may hold only these members. */
static bool header_ok(const json_t *h, bool with_jwk)
{
	static const char *const plain[] = {"alg", "typ"};
	static const char *const jwk[] = {"alg", "typ", "jwk"};

	return with_jwk ? ONLY_MEMBERS(h, jwk) : ONLY_MEMBERS(h, plain);
}

/* The claims of a verified link, strictly, into l (hash already set). */
static int link_claims(const json_t *c, int k, const char *audience,
		       struct mandate_link *l, struct mandate_error *err)
{
	static const char *const members[] = {"iss", "sub",  "cnf", "iat",
					      "nbf", "exp",  "jti", "aud",
					      "prn", "right"};
	const json_t *cnf, *jwk, *v;
	struct jose_pubkey key;
	uint8_t thumb[32];
	char *text;
	int ret;

	if (!ONLY_MEMBERS(c, members))
		return fail(err, MANDATE_ERR_malformed, k, "claims");
	if (!b64_32_string(json_object_get(c, "iss"), l->iss))
		return fail(err, MANDATE_ERR_malformed, k, "iss");
	if (!b64_32_string(json_object_get(c, "sub"), l->sub))
		return fail(err, MANDATE_ERR_malformed, k, "sub");
	cnf = json_object_get(c, "cnf");
	if (!json_is_object(cnf) || json_object_size(cnf) != 1)
		return fail(err, MANDATE_ERR_malformed, k, "cnf");
	v = json_object_get(cnf, "x5t#S256");
	if (v) {
		if (!b64_32_string(v, thumb) || memcmp(thumb, l->sub, 32) != 0)
			return fail(err, MANDATE_ERR_malformed, k,
				    "cnf.x5t#S256");
		l->cert_bound = true;
		memset(l->sub_key, 0, 32);
		goto times;
	}
	jwk = json_object_get(cnf, "jwk");
	if (!json_is_object(jwk))
		return fail(err, MANDATE_ERR_malformed, k, "cnf.jwk");
	text = json_dumps(jwk, JSON_COMPACT);
	if (!text)
		return fail(err, MANDATE_ERR_internal, k, "");
	ret = jose_pubkey_parse_jwk(text, strlen(text), &key);
	free(text);
	if (ret < 0 || !thumb_raw(&key, thumb) ||
	    memcmp(thumb, l->sub, 32) != 0)
		return fail(err, MANDATE_ERR_malformed, k, "cnf.jwk");
	memcpy(l->sub_key, key.x, 32);

times:
	if (date_member(c, "iat", &l->iat) != 1)
		return fail(err, MANDATE_ERR_malformed, k, "iat");
	ret = date_member(c, "nbf", &l->nbf);
	if (ret < 0)
		return fail(err, MANDATE_ERR_malformed, k, "nbf");
	l->has_nbf = ret == 1;
	if (date_member(c, "exp", &l->exp) != 1 ||
	    (l->has_nbf && l->exp <= l->nbf))
		return fail(err, MANDATE_ERR_malformed, k, "exp");
	if (!jti_string(json_object_get(c, "jti"), jti_ok, l->jti))
		return fail(err, MANDATE_ERR_malformed, k, "jti");
	sha256(l->jti_hash, l->jti, strlen(l->jti));
	if ((v = json_object_get(c, "prn"))) {
		if (!b64_32_string(v, l->prn))
			return fail(err, MANDATE_ERR_malformed, k, "prn");
		l->has_prn = true;
	}
	if (mandate_right_from_json(json_object_get(c, "right"), &l->right,
				    err) < 0) {
		err->link = k;
		return -1;
	}
	if ((v = json_object_get(c, "aud"))) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > JOSE_CLAIM_BYTES_MAX)
			return fail(err, MANDATE_ERR_malformed, k, "aud");
		if (!audience || strlen(audience) != json_string_length(v) ||
		    strcmp(audience, json_string_value(v)) != 0)
			return fail(err, MANDATE_ERR_wrong_audience, k, "aud");
		l->has_aud = true;
	}
	return 0;
}

/* Signature and claims of link k (1-based): the part a cache hit skips. */
static int link_parse(const char *tok, size_t len, int k,
		      const struct mandate_link *parent,
		      const struct mandate_verify_opts *o,
		      struct mandate_link *l, bool *is_admin,
		      struct mandate_error *err)
{
	struct lookup_ctx x = {
		.token = tok, .len = len, .parent = parent, .root = o->root};
	struct jose_verify_opts vo = {
		.lookup = link_key, .lookup_ctx = &x, .typ = MANDATE_TYP};
	struct jose_jws jws;
	int ret;

	ret = jose_jwt_verify(tok, len, &vo, &jws);
	if (ret < 0) {
		if (ret == -JOSE_unknown_kid && x.code)
			return fail(err, x.code, k, x.claim);
		return jose_fail(err, ret, k, MANDATE_ERR_bad_signature,
				 MANDATE_ERR_malformed);
	}
	*is_admin = x.is_admin;
	if (!header_ok(jws.header, false))
		ret = fail(err, MANDATE_ERR_malformed, k, "header");
	else
		ret = link_claims(jws.claims, k, o->audience, l, err);
	jose_jws_clear(&jws);
	return ret;
}

/* The checks of link k that no cache skips (see mandate.h, step 4). */
static int link_check(struct mandate_chain *ch, unsigned i, bool is_admin,
		      const struct mandate_verify_opts *o,
		      struct mandate_error *err)
{
	const struct mandate_root_ops *root = o->root;
	const struct mandate_link *l = &ch->links[i];
	const struct mandate_link *p = i ? &ch->links[i - 1] : NULL;
	int k = (int)i + 1;
	const char *w;

	if (!p && l->has_prn)
		return fail(err, MANDATE_ERR_chain_broken, k, "prn");
	if (p) {
		if (memcmp(l->iss, p->sub, 32) != 0)
			return fail(err, MANDATE_ERR_chain_broken, k, "iss");
		if (!l->has_prn || memcmp(l->prn, p->hash, 32) != 0)
			return fail(err, MANDATE_ERR_chain_broken, k, "prn");
	}
	for (unsigned j = 0; j < i; j++) {
		if (memcmp(ch->links[j].sub, l->sub, 32) == 0)
			return fail(err, MANDATE_ERR_cycle, k, "sub");
		if (memcmp(ch->links[j].jti_hash, l->jti_hash, 32) == 0)
			return fail(err, MANDATE_ERR_cycle, k, "jti");
	}
	if (o->now >= l->exp + o->leeway_s)
		return fail(err, MANDATE_ERR_expired, k, "exp");
	if (l->has_nbf && o->now < l->nbf - o->leeway_s)
		return fail(err, MANDATE_ERR_not_yet_valid, k, "nbf");
	if (l->iat > o->now + o->leeway_s)
		return fail(err, MANDATE_ERR_issued_in_future, k, "iat");
	if (p && (w = widening(p, l)))
		return fail(err, MANDATE_ERR_widened, k, w);
	if (root->revoked && root->revoked(root->ctx, l->iss, l->jti_hash))
		return fail(err, MANDATE_ERR_revoked, k, "jti");
	if (!p && !is_admin && !l->right.all_ops && !l->right.n_accounts &&
	    root->role_ops) {
		unsigned role = root->role_ops(root->ctx, l->iss);
		if (role && !(l->right.ops & ~role))
			return 0; /* a named administrator, within its role */
		return fail(err, MANDATE_ERR_issuer_not_owner, k,
			    role ? "right.ops" : "right.accounts");
	}
	if (!p && !is_admin) {
		if (l->right.all_ops)
			return fail(err, MANDATE_ERR_issuer_not_owner, k,
				    "right.ops");
		if (!l->right.n_accounts || !root->owns)
			return fail(err, MANDATE_ERR_issuer_not_owner, k,
				    "right.accounts");
		for (unsigned j = 0; j < l->right.n_accounts; j++)
			if (!root->owns(root->ctx, l->iss,
					l->right.accounts[j]))
				return fail(err, MANDATE_ERR_issuer_not_owner,
					    k, "right.accounts");
	}
	return 0;
}

int mandate_chain_verify(const char *value, size_t len,
			 const struct mandate_verify_opts *o,
			 struct mandate_chain *out, struct mandate_error *err)
{
	const char *tok[MANDATE_LINKS_MAX + 1];
	size_t tlen[MANDATE_LINKS_MAX + 1];
	unsigned n = 0;
	const char *s, *end;
	struct mandate_error spare;
	bool is_admin = false;
	int ret = 0;

	if (!err)
		err = &spare;
	err_ok(err);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!value || !o || !out || !o->root || !o->root->principal ||
	    o->leeway_s < 0 || o->leeway_s > JOSE_LEEWAY_MAX_S || o->now < 0 ||
	    o->now > JOSE_NUMERIC_DATE_MAX)
		return fail(err, MANDATE_ERR_internal, 0, "");
	if (len == 0 || len > MANDATE_AUTHZ_BYTES_MAX)
		return fail(err, MANDATE_ERR_malformed, 0, "");

	/* split on '~' and count before any cryptography */
	for (s = value, end = value + len;;) {
		const char *t = memchr(s, '~', (size_t)(end - s));
		const char *e = t ? t : end;
		if (n == MANDATE_LINKS_MAX)
			return fail(err, MANDATE_ERR_chain_too_deep,
				    MANDATE_LINKS_MAX + 1, "");
		tok[n] = s;
		tlen[n++] = (size_t)(e - s);
		if (!t)
			break;
		s = t + 1;
	}
	for (unsigned i = 0; i < n; i++)
		if (tlen[i] == 0)
			return fail(err, MANDATE_ERR_malformed, (int)i + 1, "");

	for (unsigned i = 0; i < n; i++) {
		struct mandate_link *l = &out->links[i];
		uint8_t h[32];
		bool admin = false;

		sha256(h, tok[i], tlen[i]);
		if (o->cache && cache_get(o->cache, h, l)) {
			out->cached++;
			if (i == 0) {
				uint8_t pub[32];
				if (o->root->principal(o->root->ctx, l->iss,
						       pub, &admin) != 0) {
					ret = fail(err,
						   MANDATE_ERR_unknown_issuer,
						   1, "iss");
					goto cleanup;
				}
			}
		} else {
			memset(l, 0, sizeof(*l));
			memcpy(l->hash, h, 32);
			ret = link_parse(tok[i], tlen[i], (int)i + 1,
					 i ? &out->links[i - 1] : NULL, o, l,
					 &admin, err);
			if (ret < 0)
				goto cleanup;
			if (o->cache)
				cache_put(o->cache, l);
		}
		if (i == 0)
			is_admin = admin;
		ret = link_check(out, i, is_admin, o, err);
		if (ret < 0)
			goto cleanup;
	}

	out->n = n;
	out->root_admin = is_admin;
	out->effective = out->links[n - 1].right;
	out->exp = out->links[0].exp;
	for (unsigned i = 0; i < n; i++) {
		if (out->links[i].exp < out->exp)
			out->exp = out->links[i].exp;
		if (out->links[i].has_nbf && out->links[i].nbf > out->nbf)
			out->nbf = out->links[i].nbf;
	}
cleanup:
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* ---- DPoP ------------------------------------------------------------- */

/* htu (query and fragment dropped) == origin path, where origin is the
 * server's configured public origin, else "http://" host. */
static bool htu_matches(const char *htu, size_t n, const char *origin,
			const char *host, const char *path)
{
	static const char http[] = "http://";
	const char *scheme = origin ? origin : http;
	size_t sl = strlen(scheme), hl = origin ? 0 : strlen(host),
	       pl = strlen(path);

	for (size_t i = 0; i < n; i++)
		if (htu[i] == '?' || htu[i] == '#') {
			n = i;
			break;
		}
	return n == sl + hl + pl && ascii_case_equal(htu, scheme, sl) &&
	       ascii_case_equal(htu + sl, host, hl) &&
	       memcmp(htu + sl + hl, path, pl) == 0;
}

static bool string_at_most(const json_t *v, size_t max)
{
	return json_is_string(v) && json_string_length(v) > 0 &&
	       json_string_length(v) <= max &&
	       strlen(json_string_value(v)) == json_string_length(v);
}

int mandate_dpop_verify(const char *proof, size_t len,
			const struct mandate_dpop_opts *o,
			struct mandate_dpop *out, struct mandate_error *err)
{
	static const char *const members[] = {"jti", "htm", "htu", "iat",
					      "ath"};
	struct jose_pubkey key;
	struct jose_verify_opts vo = {.typ = MANDATE_DPOP_TYP,
				      .embedded_jwk_out = &key};
	struct jose_jws jws = {0};
	const json_t *c, *htm, *htu, *ath;
	int ret = 0;

	err_ok(err);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!o || !out || !o->method || !o->host || !o->path)
		return fail(err, MANDATE_ERR_internal, 0, "");
	if (!proof || len == 0)
		return fail(err, MANDATE_ERR_dpop_missing, 0, "");
	ret = jose_jwt_verify(proof, len, &vo, &jws);
	if (ret < 0)
		return jose_fail(err, ret, 0, MANDATE_ERR_dpop_bad_signature,
				 MANDATE_ERR_dpop_malformed);
	c = jws.claims;
	if (!header_ok(jws.header, true)) {
		ret = fail(err, MANDATE_ERR_dpop_malformed, 0, "header");
		goto cleanup;
	}
	if (!ONLY_MEMBERS(c, members)) {
		ret = fail(err, MANDATE_ERR_dpop_malformed, 0, "claims");
		goto cleanup;
	}
	if (!jti_string(json_object_get(c, "jti"), dpop_jti_ok, out->jti)) {
		ret = fail(err, MANDATE_ERR_dpop_malformed, 0, "jti");
		goto cleanup;
	}
	htm = json_object_get(c, "htm");
	if (!string_at_most(htm, MANDATE_HTM_BYTES_MAX)) {
		ret = fail(err, MANDATE_ERR_dpop_malformed, 0, "htm");
		goto cleanup;
	}
	htu = json_object_get(c, "htu");
	if (!string_at_most(htu, MANDATE_HTU_BYTES_MAX)) {
		ret = fail(err, MANDATE_ERR_dpop_malformed, 0, "htu");
		goto cleanup;
	}
	if (date_member(c, "iat", &out->iat) != 1) {
		ret = fail(err, MANDATE_ERR_dpop_malformed, 0, "iat");
		goto cleanup;
	}
	ath = json_object_get(c, "ath");
	if ((ath && !string_at_most(ath, THUMB_TEXT_BYTES)) ||
	    (!ath && o->access_token)) {
		ret = fail(err, MANDATE_ERR_dpop_malformed, 0, "ath");
		goto cleanup;
	}
	if (strcmp(json_string_value(htm), o->method) != 0) {
		ret = fail(err, MANDATE_ERR_dpop_wrong_method, 0, "htm");
		goto cleanup;
	}
	if (!htu_matches(json_string_value(htu), json_string_length(htu),
			 o->origin, o->host ? o->host : "", o->path)) {
		ret = fail(err, MANDATE_ERR_dpop_wrong_url, 0, "htu");
		goto cleanup;
	}
	if (out->iat > o->now + MANDATE_DPOP_AHEAD_S ||
	    out->iat < o->now - MANDATE_DPOP_WINDOW_S) {
		ret = fail(err, MANDATE_ERR_dpop_stale, 0, "iat");
		goto cleanup;
	}
	if (o->access_token) {
		uint8_t want[32], have[32];
		sha256(want, o->access_token, o->access_token_len);
		if (!b64_32_decode(json_string_value(ath),
				   json_string_length(ath), have) ||
		    sodium_memcmp(want, have, 32) != 0) {
			ret = fail(err, MANDATE_ERR_dpop_wrong_ath, 0, "ath");
			goto cleanup;
		}
	}
	if (!thumb_raw(&key, out->jkt))
		ret = fail(err, MANDATE_ERR_internal, 0, "");
cleanup:
	jose_jws_clear(&jws);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

int mandate_dpop_check_key(const struct mandate_dpop *d,
			   const struct mandate_chain *c,
			   struct mandate_error *err)
{
	err_ok(err);
	if (!d || !c || c->n == 0 || c->n > MANDATE_LINKS_MAX)
		return fail(err, MANDATE_ERR_internal, 0, "");
	if (sodium_memcmp(d->jkt, c->links[c->n - 1].sub, 32) != 0)
		return fail(err, MANDATE_ERR_dpop_wrong_key, (int)c->n, "sub");
	return 0;
}

/* ---- replay cache ----------------------------------------------------- */

/*
 * A FIFO ring of the pairs in insertion order (at most capacity), indexed
 * by an open-addressing table (linear probing, at least twice as many
 * slots as pairs, deletion by backward shift so no tombstones).  A pair
 * is kept until max(iat, now) + MANDATE_DPOP_WINDOW_S; eviction pops the
 * ring's head while it is past its window, so a pair inserted after a
 * longer-lived one may stay a little longer than needed (never shorter).
 * A pair still in the ring is a replay even if its window has passed: its
 * proof is stale anyway, and a jti is unique per key (RFC 9449).
 */
/* A proof's key: SHA-256(jkt || jti) cut to 128 bits (a false "replay"
 * would need a 128-bit collision); half the memory of the whole hash. */
#define REPLAY_KEY_BYTES 16

struct replay_entry {
	uint8_t key[REPLAY_KEY_BYTES];
	int64_t until;
};

struct replay_slot {
	uint8_t key[REPLAY_KEY_BYTES];
	bool used;
};

struct mandate_replay {
	pthread_mutex_t mu;
	unsigned capacity, head, count, mask;
	struct replay_entry *ring;
	struct replay_slot *table;
};

struct mandate_replay *mandate_replay_new(unsigned capacity)
{
	struct mandate_replay *r;
	unsigned slots = 2;

	if (capacity == 0 || capacity > MANDATE_REPLAY_CAPACITY_MAX)
		return NULL;
	while (slots < 2 * capacity)
		slots <<= 1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ring = calloc(capacity, sizeof(*r->ring));
	r->table = calloc(slots, sizeof(*r->table));
	if (!r->ring || !r->table || pthread_mutex_init(&r->mu, NULL) != 0) {
		free(r->ring);
		free(r->table);
		free(r);
		return NULL;
	}
	r->capacity = capacity;
	r->mask = slots - 1;
	return r;
}

void mandate_replay_free(struct mandate_replay *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->ring);
	free(r->table);
	free(r);
}

static unsigned replay_home(const struct mandate_replay *r,
			    const uint8_t key[REPLAY_KEY_BYTES])
{
	uint32_t v;

	memcpy(&v, key, sizeof(v));
	return v & r->mask;
}

/* The slot holding key, or the empty slot where it would go. */
static unsigned replay_find(const struct mandate_replay *r,
			    const uint8_t key[REPLAY_KEY_BYTES], bool *found)
{
	unsigned i = replay_home(r, key);

	while (r->table[i].used &&
	       memcmp(r->table[i].key, key, REPLAY_KEY_BYTES) != 0)
		i = (i + 1) & r->mask;
	*found = r->table[i].used;
	return i;
}

/* Removes key (present) from the table, shifting its cluster back. */
static void replay_delete(struct mandate_replay *r,
			  const uint8_t key[REPLAY_KEY_BYTES])
{
	bool found;
	unsigned i = replay_find(r, key, &found), j = i;

	if (!found)
		return;
	for (;;) {
		unsigned k;
		j = (j + 1) & r->mask;
		if (!r->table[j].used)
			break;
		k = replay_home(r, r->table[j].key);
		/* the entry at j stays if its home is cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		r->table[i] = r->table[j];
		i = j;
	}
	r->table[i].used = false;
}

int mandate_replay_check_and_add(struct mandate_replay *r,
				 const struct mandate_dpop *d, int64_t now,
				 struct mandate_error *err)
{
	crypto_hash_sha256_state st;
	struct replay_entry *e;
	uint8_t key[32];
	unsigned i;
	bool found;
	int ret = 0;

	err_ok(err);
	if (!r || !d)
		return fail(err, MANDATE_ERR_internal, 0, "");
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, d->jkt, 32);
	crypto_hash_sha256_update(&st, (const unsigned char *)d->jti,
				  strnlen(d->jti, sizeof(d->jti)));
	crypto_hash_sha256_final(&st, key);

	pthread_mutex_lock(&r->mu);
	while (r->count && r->ring[r->head].until < now) {
		replay_delete(r, r->ring[r->head].key);
		r->head = (r->head + 1) % r->capacity;
		r->count--;
	}
	i = replay_find(r, key, &found);
	if (found) {
		ret = fail(err, MANDATE_ERR_replay, 0, "jti");
		goto cleanup;
	}
	if (r->count == r->capacity) {
		ret = fail(err, MANDATE_ERR_replay_cache_full, 0, "");
		goto cleanup;
	}
	memcpy(r->table[i].key, key, REPLAY_KEY_BYTES);
	r->table[i].used = true;
	e = &r->ring[(r->head + r->count) % r->capacity];
	memcpy(e->key, key, REPLAY_KEY_BYTES);
	e->until = (d->iat > now ? d->iat : now) + MANDATE_DPOP_WINDOW_S;
	r->count++;
cleanup:
	pthread_mutex_unlock(&r->mu);
	return ret;
}

/* ---- revocation statements -------------------------------------------- */

int mandate_revocation_verify(const char *jws_text, size_t len, int64_t now,
			      struct mandate_revocation *out,
			      struct mandate_error *err)
{
	static const char *const members[] = {"iss", "iat", "jti", "revoke"};
	struct jose_pubkey key;
	struct jose_verify_opts vo = {.typ = MANDATE_REVOCATION_TYP,
				      .embedded_jwk_out = &key};
	struct jose_jws jws = {0};
	const json_t *c, *rv, *v;
	uint8_t thumb[32];
	int ret = 0;

	err_ok(err);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!jws_text || !out)
		return fail(err, MANDATE_ERR_internal, 0, "");
	ret = jose_jwt_verify(jws_text, len, &vo, &jws);
	if (ret < 0)
		return jose_fail(err, ret, 0, MANDATE_ERR_bad_signature,
				 MANDATE_ERR_malformed);
	c = jws.claims;
	if (!header_ok(jws.header, true)) {
		ret = fail(err, MANDATE_ERR_malformed, 0, "header");
		goto cleanup;
	}
	if (!ONLY_MEMBERS(c, members)) {
		ret = fail(err, MANDATE_ERR_malformed, 0, "claims");
		goto cleanup;
	}
	if (!b64_32_string(json_object_get(c, "iss"), out->iss)) {
		ret = fail(err, MANDATE_ERR_malformed, 0, "iss");
		goto cleanup;
	}
	if (date_member(c, "iat", &out->iat) != 1) {
		ret = fail(err, MANDATE_ERR_malformed, 0, "iat");
		goto cleanup;
	}
	if (!jti_string(json_object_get(c, "jti"), jti_ok, out->stmt_jti)) {
		ret = fail(err, MANDATE_ERR_malformed, 0, "jti");
		goto cleanup;
	}
	rv = json_object_get(c, "revoke");
	if (!json_is_object(rv) || json_object_size(rv) != 1) {
		ret = fail(err, MANDATE_ERR_malformed, 0, "revoke");
		goto cleanup;
	}
	if ((v = json_object_get(rv, "all"))) {
		if (!json_is_true(v)) {
			ret = fail(err, MANDATE_ERR_malformed, 0, "revoke.all");
			goto cleanup;
		}
		out->all = true;
	} else if (!jti_string(json_object_get(rv, "jti"), jti_ok, out->jti)) {
		ret = fail(err, MANDATE_ERR_malformed, 0, "revoke.jti");
		goto cleanup;
	} else {
		sha256(out->jti_hash, out->jti, strlen(out->jti));
	}
	if (!thumb_raw(&key, thumb) || sodium_memcmp(thumb, out->iss, 32)) {
		ret = fail(err, MANDATE_ERR_wrong_issuer, 0, "iss");
		goto cleanup;
	}
	if (out->iat > now + MANDATE_REVOCATION_WINDOW_S ||
	    out->iat < now - MANDATE_REVOCATION_WINDOW_S) {
		ret = fail(err, MANDATE_ERR_stale, 0, "iat");
		goto cleanup;
	}
cleanup:
	jose_jws_clear(&jws);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* ---- issuing ---------------------------------------------------------- */

static bool set_thumb(json_t *o, const char *name, const struct jose_pubkey *k)
{
	char t[JOSE_B64_32_BYTES];

	return jose_thumbprint(k, t) == 0 &&
	       json_object_set_new(o, name, json_string(t)) == 0;
}

static bool set_int(json_t *o, const char *name, int64_t v)
{
	return json_object_set_new(o, name, json_integer((json_int_t)v)) == 0;
}

/* Signs claims (consumed) with the given typ; 0 or -1. */
static int sign_claims(const struct jose_seckey *key, json_t *claims,
		       const char *typ, bool with_jwk, char *out,
		       size_t out_size, size_t *out_len,
		       struct mandate_error *err)
{
	struct jose_sign_opts so = {
		.alg = JOSE_ALG_EDDSA, .typ = typ, .with_jwk = with_jwk};
	int ret;

	ret = jose_jwt_sign(key, &so, claims, out, out_size, out_len);
	json_decref(claims);
	return ret < 0 ? fail(err, MANDATE_ERR_internal, 0, "") : 0;
}

static bool date_ok(int64_t t)
{
	return t >= 0 && t <= JOSE_NUMERIC_DATE_MAX;
}

int mandate_link_sign(const struct jose_seckey *issuer,
		      const struct mandate_issue *in, char *out,
		      size_t out_size, size_t *out_len)
{
	struct mandate_error e;
	struct mandate_right back;
	struct jose_pubkey me, del;
	char jwk[JOSE_JWK_BYTES_MAX], prn[JOSE_B64_32_BYTES];
	json_t *c, *r, *cnf, *jk;
	bool ok;

	if (out_len)
		*out_len = 0;
	if (out && out_size)
		out[0] = '\0';
	if (!issuer || !in || !out || !out_len || !in->jti ||
	    !in->delegate == !in->x5t_s256 || !in->right ||
	    !jti_ok(in->jti, strlen(in->jti)) || !date_ok(in->iat) ||
	    !date_ok(in->exp) || !date_ok(in->nbf) ||
	    (in->nbf && in->exp <= in->nbf))
		return -1;
	r = mandate_right_to_json(in->right);
	if (!r || mandate_right_from_json(r, &back, &e) < 0) {
		json_decref(r);
		return -1;
	}
	jose_seckey_public(issuer, &me);
	memset(&del, 0, sizeof(del));
	if (in->delegate)
		del = *in->delegate;
	del.kid[0] = '\0';
	c = json_object();
	cnf = json_object();
	if (in->x5t_s256)
		jk = b64url_encode(prn, sizeof(prn), in->x5t_s256, 32) == 0
			     ? json_string(prn)
			     : NULL;
	else
		jk = jose_pubkey_to_jwk(&del, jwk, sizeof(jwk)) == 0
			     ? json_loads(jwk, 0, NULL)
			     : NULL;
	if (!c || !cnf || !jk) {
		json_decref(c);
		json_decref(cnf);
		json_decref(jk);
		json_decref(r);
		return -1;
	}
	/* the _new setters take their value even when they fail */
	ok = json_object_set_new(cnf, in->x5t_s256 ? "x5t#S256" : "jwk", jk) ==
	     0;
	ok = json_object_set_new(c, "cnf", cnf) == 0 && ok;
	ok = json_object_set_new(c, "right", r) == 0 && ok;
	ok = ok && set_thumb(c, "iss", &me) &&
	     (in->x5t_s256
		      ? json_object_set_new(c, "sub", json_string(prn)) == 0
		      : set_thumb(c, "sub", &del)) &&
	     set_int(c, "iat", in->iat) && set_int(c, "exp", in->exp) &&
	     json_object_set_new(c, "jti", json_string(in->jti)) == 0;
	if (ok && in->nbf)
		ok = set_int(c, "nbf", in->nbf);
	if (ok && in->aud)
		ok = json_object_set_new(c, "aud", json_string(in->aud)) == 0;
	if (ok && in->parent_compact) {
		uint8_t h[32];
		sha256(h, in->parent_compact, in->parent_len);
		ok = b64url_encode(prn, sizeof(prn), h, 32) == 0 &&
		     json_object_set_new(c, "prn", json_string(prn)) == 0;
	}
	if (!ok) {
		json_decref(c);
		return -1;
	}
	return sign_claims(issuer, c, MANDATE_TYP, false, out, out_size,
			   out_len, &e);
}

int mandate_dpop_sign(const struct jose_seckey *key, const char *jti,
		      const char *method, const char *htu, int64_t iat,
		      const char *access_token, size_t at_len, char *out,
		      size_t out_size, size_t *out_len)
{
	struct mandate_error e;
	char ath[JOSE_B64_32_BYTES];
	json_t *c;
	bool ok;

	if (out_len)
		*out_len = 0;
	if (!key || !jti || !method || !htu || !out || !out_len ||
	    !dpop_jti_ok(jti, strlen(jti)) || !date_ok(iat))
		return -1;
	ok = (c = json_object()) &&
	     json_object_set_new(c, "jti", json_string(jti)) == 0 &&
	     json_object_set_new(c, "htm", json_string(method)) == 0 &&
	     json_object_set_new(c, "htu", json_string(htu)) == 0 &&
	     set_int(c, "iat", iat);
	if (ok && access_token) {
		uint8_t h[32];
		sha256(h, access_token, at_len);
		ok = b64url_encode(ath, sizeof(ath), h, 32) == 0 &&
		     json_object_set_new(c, "ath", json_string(ath)) == 0;
	}
	if (!ok) {
		json_decref(c);
		return -1;
	}
	return sign_claims(key, c, MANDATE_DPOP_TYP, true, out, out_size,
			   out_len, &e);
}

int mandate_revocation_sign(const struct jose_seckey *key, const char *stmt_jti,
			    int64_t iat, const char *revoke_jti, bool all,
			    char *out, size_t out_size, size_t *out_len)
{
	struct mandate_error e;
	struct jose_pubkey me;
	json_t *c = NULL, *rv;
	bool ok;

	if (out_len)
		*out_len = 0;
	if (!key || !stmt_jti || !out || !out_len ||
	    !jti_ok(stmt_jti, strlen(stmt_jti)) || !date_ok(iat) ||
	    all == (revoke_jti != NULL) ||
	    (revoke_jti && !jti_ok(revoke_jti, strlen(revoke_jti))))
		return -1;
	rv = all ? json_pack("{s:b}", "all", 1)
		 : json_pack("{s:s}", "jti", revoke_jti);
	jose_seckey_public(key, &me);
	ok = rv && (c = json_object()) &&
	     json_object_set_new(c, "revoke", rv) == 0;
	if (!ok && !c)
		json_decref(rv);
	ok = ok && set_thumb(c, "iss", &me) && set_int(c, "iat", iat) &&
	     json_object_set_new(c, "jti", json_string(stmt_jti)) == 0;
	if (!ok) {
		json_decref(c);
		return -1;
	}
	return sign_claims(key, c, MANDATE_REVOCATION_TYP, true, out, out_size,
			   out_len, &e);
}
