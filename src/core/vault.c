/*
 * vault.c - the card vault's state (vault.h): a growing array of cards
 * and an open-addressing index of their tokens; the appliers of kinds
 * 40-43; snapshot and digest over the cards' own bytes.
 */
#include "core/vault.h"
#include "core/command.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define SNAP_VERSION	  1u
#define SNAP_HEADER_BYTES 32

struct vault {
	struct vault_card *cards;
	u32 n, cap;
	u32 *slots; /* index + 1 into cards; 0: empty */
	u32 nslots; /* a power of two, at least twice n */
	u64 erased;
	u32 key_version, min_version;
};

static const char *const result_names[] = {
#define VAULT_RESULT_NAME_(name, code, text) [code] = text,
	VAULT_RESULTS(VAULT_RESULT_NAME_)
#undef VAULT_RESULT_NAME_
};

const char *vault_result_name(u32 result)
{
	if (result >= sizeof(result_names) / sizeof(result_names[0]))
		return "unknown";
	return result_names[result];
}

struct vault *vault_new(void)
{
	return calloc(1, sizeof(struct vault));
}

void vault_free(struct vault *v)
{
	if (!v)
		return;
	if (v->cards)
		sodium_memzero(v->cards, (size_t)v->cap * sizeof(*v->cards));
	free(v->cards);
	free(v->slots);
	free(v);
}

static bool token_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '_';
}

bool vault_token_valid(const char *s, size_t n)
{
	if (n == 0 || n >= VAULT_TOKEN_BYTES)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!token_char(s[i]))
			return false;
	}
	return true;
}

/* A NUL-padded field of [lo..hi) characters each passing ok(). */
static bool padded(const char *f, size_t size, size_t lo, bool (*ok)(char))
{
	size_t n = strnlen(f, size);

	if (n < lo || n >= size)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!ok(f[i]))
			return false;
	}
	for (size_t i = n; i < size; i++) {
		if (f[i])
			return false;
	}
	return true;
}

static bool masked_char(char c)
{
	return (c >= '0' && c <= '9') || c == '*';
}

static bool brand_char(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool reason_char(char c)
{
	return c >= 0x20 && c < 0x7f;
}

static bool zero(const u8 *p, size_t n)
{
	u8 acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

bool vault_command_valid(u16 kind, const void *ext, u32 ext_bytes)
{
	switch (kind) {
	case VAULT_CMD_CARD: {
		struct vault_card_cmd c;
		if (ext_bytes != sizeof(c))
			return false;
		memcpy(&c, ext, sizeof(c));
		return padded(c.token, sizeof(c.token), 1, token_char) &&
		       padded(c.masked, sizeof(c.masked), 12, masked_char) &&
		       padded(c.brand, sizeof(c.brand), 1, brand_char) &&
		       c.exp_month >= 1 && c.exp_month <= 12 &&
		       c.exp_year >= 2000 && c.exp_year <= 9999 &&
		       c.reserved == 0;
	}
	case VAULT_CMD_REVEAL:
	case VAULT_CMD_ERASE: {
		struct vault_use_cmd u;
		if (ext_bytes != sizeof(u))
			return false;
		memcpy(&u, ext, sizeof(u));
		return padded(u.token, sizeof(u.token), 1, token_char) &&
		       padded(u.reason, sizeof(u.reason), 1, reason_char);
	}
	case VAULT_CMD_ROTATE: {
		struct vault_rotate_cmd r;
		if (ext_bytes != sizeof(r))
			return false;
		memcpy(&r, ext, sizeof(r));
		return r.version >= 1 && r.min_version >= 1 &&
		       r.min_version <= r.version && r.reserved == 0;
	}
	default: return false;
	}
}

static u32 hash_token(const char *t)
{
	u32 h = 2166136261u;

	for (size_t i = 0; i < VAULT_TOKEN_BYTES && t[i]; i++)
		h = (h ^ (u8)t[i]) * 16777619u;
	return h;
}

/* The slot of token: where it is, or the empty one where it would go. */
static u32 slot_of(const struct vault *v, const char *token)
{
	u32 mask = v->nslots - 1, i = hash_token(token) & mask;

	while (v->slots[i] && strncmp(v->cards[v->slots[i] - 1].token, token,
				      VAULT_TOKEN_BYTES) != 0)
		i = (i + 1) & mask;
	return i;
}

static int grow(struct vault *v)
{
	if (v->n + 1 > v->cap) {
		u32 cap = v->cap ? v->cap * 2 : 64;
		struct vault_card *c = calloc(cap, sizeof(*c));
		if (!c)
			return -ENOMEM;
		if (v->n)
			memcpy(c, v->cards, (size_t)v->n * sizeof(*c));
		if (v->cards)
			sodium_memzero(v->cards,
				       (size_t)v->cap * sizeof(*v->cards));
		free(v->cards);
		v->cards = c;
		v->cap = cap;
	}
	if ((u64)(v->n + 1) * 2 > v->nslots) {
		u32 ns = v->nslots ? v->nslots * 2 : 128;
		u32 *s = calloc(ns, sizeof(*s));
		if (!s)
			return -ENOMEM;
		free(v->slots);
		v->slots = s;
		v->nslots = ns;
		for (u32 k = 0; k < v->n; k++)
			v->slots[slot_of(v, v->cards[k].token)] = k + 1;
	}
	return 0;
}

static struct vault_card *lookup(const struct vault *v, const char *token)
{
	if (!v->nslots)
		return NULL;
	u32 s = v->slots[slot_of(v, token)];
	return s ? &v->cards[s - 1] : NULL;
}

static int add_card(struct vault *v, const struct vault_card_cmd *c,
		    u64 timestamp, u32 *result)
{
	struct vault_card *x;

	if (lookup(v, c->token)) {
		*result = VAULT_R_EXISTS;
		return 0;
	}
	if (v->n >= VAULT_CARDS_MAX) {
		*result = VAULT_R_FULL;
		return 0;
	}
	int ret = grow(v);
	if (ret)
		return ret;
	x = &v->cards[v->n];
	memset(x, 0, sizeof(*x));
	x->created_ns = timestamp;
	x->exp_year = c->exp_year;
	x->exp_month = c->exp_month;
	memcpy(x->token, c->token, sizeof(x->token));
	memcpy(x->fingerprint, c->fingerprint, sizeof(x->fingerprint));
	memcpy(x->masked, c->masked, sizeof(x->masked));
	memcpy(x->brand, c->brand, sizeof(x->brand));
	memcpy(x->nonce, c->nonce, sizeof(x->nonce));
	memcpy(x->ct, c->ct, sizeof(x->ct));
	v->slots[slot_of(v, x->token)] = ++v->n;
	*result = VAULT_R_OK;
	return 0;
}

int vault_apply(struct vault *v, u16 kind, const void *ext, u32 ext_bytes,
		u64 timestamp, u32 *results)
{
	if (!vault_command_valid(kind, ext, ext_bytes))
		return -EBADMSG;
	if (kind == VAULT_CMD_CARD) {
		struct vault_card_cmd c;
		memcpy(&c, ext, sizeof(c));
		return add_card(v, &c, timestamp, results);
	}
	if (kind == VAULT_CMD_ROTATE) {
		struct vault_rotate_cmd r;
		memcpy(&r, ext, sizeof(r));
		if (r.version <= v->key_version ||
		    r.min_version < v->min_version) {
			results[0] = VAULT_R_STALE_VERSION;
			return 0;
		}
		v->key_version = r.version;
		v->min_version = r.min_version;
		results[0] = VAULT_R_OK;
		return 0;
	}
	struct vault_use_cmd u;
	memcpy(&u, ext, sizeof(u));
	struct vault_card *x = lookup(v, u.token);
	if (!x) {
		results[0] = VAULT_R_UNKNOWN;
		return 0;
	}
	if (x->erased) {
		results[0] = VAULT_R_ERASED;
		return 0;
	}
	if (kind == VAULT_CMD_REVEAL) {
		x->reveals++;
	} else {
		x->erased = 1;
		x->erased_ns = timestamp;
		memset(x->nonce, 0, sizeof(x->nonce));
		memset(x->ct, 0, sizeof(x->ct));
		v->erased++;
	}
	results[0] = VAULT_R_OK;
	return 0;
}

int vault_find(const struct vault *v, const char *token, struct vault_card *out)
{
	char t[VAULT_TOKEN_BYTES] = {0};
	size_t n = strnlen(token, VAULT_TOKEN_BYTES);

	if (!vault_token_valid(token, n))
		return -ENOENT;
	memcpy(t, token, n);
	const struct vault_card *x = lookup(v, t);
	if (!x)
		return -ENOENT;
	*out = *x;
	return 0;
}

size_t vault_by_fingerprint(const struct vault *v, const u8 *fp,
			    char (*tokens)[VAULT_TOKEN_BYTES], size_t max)
{
	size_t found = 0;

	for (u32 i = 0; i < v->n; i++) {
		const struct vault_card *x = &v->cards[i];
		if (x->erased ||
		    sodium_memcmp(x->fingerprint, fp, VAULT_FINGERPRINT_BYTES))
			continue;
		if (found < max)
			memcpy(tokens[found], x->token, VAULT_TOKEN_BYTES);
		found++;
	}
	return found;
}

int vault_each(const struct vault *v,
	       int (*fn)(void *ctx, const struct vault_card *c), void *ctx)
{
	for (u32 i = 0; i < v->n; i++) {
		int ret = fn(ctx, &v->cards[i]);
		if (ret)
			return ret;
	}
	return 0;
}

void vault_counts(const struct vault *v, u64 *cards, u64 *erased,
		  u32 *key_version, u32 *min_version)
{
	*cards = v->n;
	*erased = v->erased;
	*key_version = v->key_version;
	*min_version = v->min_version;
}

bool vault_empty(const struct vault *v)
{
	return v->n == 0 && v->key_version == 0;
}

static void header(const struct vault *v, u8 h[SNAP_HEADER_BYTES])
{
	u64 magic = VAULT_SNAP_MAGIC, n = v->n;
	u32 version = SNAP_VERSION, reserved = 0;

	memcpy(h, &magic, 8);
	memcpy(h + 8, &version, 4);
	memcpy(h + 12, &reserved, 4);
	memcpy(h + 16, &n, 8);
	memcpy(h + 24, &v->key_version, 4);
	memcpy(h + 28, &v->min_version, 4);
}

u64 vault_snapshot_bytes(const struct vault *v)
{
	return SNAP_HEADER_BYTES + (u64)v->n * sizeof(struct vault_card);
}

int vault_snapshot_write(const struct vault *v, ledger_sink_fn sink, void *ctx)
{
	u8 h[SNAP_HEADER_BYTES];

	header(v, h);
	int rc = sink(ctx, h, sizeof(h));
	if (rc == 0 && v->n)
		rc = sink(ctx, v->cards, (size_t)v->n * sizeof(*v->cards));
	return rc;
}

struct vault *vault_snapshot_read(const u8 *buf, size_t len)
{
	u64 magic, n;
	u32 version, reserved;
	struct vault *v;

	if (len < SNAP_HEADER_BYTES)
		return NULL;
	memcpy(&magic, buf, 8);
	memcpy(&version, buf + 8, 4);
	memcpy(&reserved, buf + 12, 4);
	memcpy(&n, buf + 16, 8);
	if (magic != VAULT_SNAP_MAGIC || version != SNAP_VERSION || reserved ||
	    n > VAULT_CARDS_MAX ||
	    len != SNAP_HEADER_BYTES + n * sizeof(struct vault_card))
		return NULL;
	v = vault_new();
	if (!v)
		return NULL;
	memcpy(&v->key_version, buf + 24, 4);
	memcpy(&v->min_version, buf + 28, 4);
	for (u64 i = 0; i < n; i++) {
		struct vault_card c;
		memcpy(&c, buf + SNAP_HEADER_BYTES + i * sizeof(c), sizeof(c));
		if (!padded(c.token, sizeof(c.token), 1, token_char) ||
		    lookup(v, c.token) || c.erased > 1 ||
		    (c.erased && !(zero(c.nonce, sizeof(c.nonce)) &&
				   zero(c.ct, sizeof(c.ct)))) ||
		    !zero(c.reserved, sizeof(c.reserved)) || grow(v)) {
			vault_free(v);
			return NULL;
		}
		v->cards[v->n] = c;
		v->slots[slot_of(v, c.token)] = ++v->n;
		v->erased += c.erased;
	}
	return v;
}

void vault_digest(const struct vault *v, u8 out[32])
{
	crypto_generichash_state st;
	u8 h[SNAP_HEADER_BYTES];

	header(v, h);
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, h, sizeof(h));
	if (v->n)
		crypto_generichash_update(&st, (const u8 *)v->cards,
					  (size_t)v->n * sizeof(*v->cards));
	crypto_generichash_final(&st, out, 32);
}
