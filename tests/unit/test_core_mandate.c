/*
 * test_core_mandate.c - delegation chains, DPoP proofs and revocation
 * statements (src/crypto/mandate.c) against docs/authz.md: a chain that
 * is accepted, every narrowing rule as a table row with its code, claim
 * path and link, every refusal of a link, the cache (same answers, still
 * honouring revocation, expiry and ownership), DPoP with its replay
 * cache, and revocation statements.
 *
 * Keys are derived from fixed seeds, so every token here is the same on
 * every run.  Hand-built tokens (alg none, unknown claims, wrong types)
 * are made by decoding a good link's payload, editing it and signing it
 * again with jose directly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "crypto/mandate.h"
#include "doc_status.h"

#include "banned.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define NOW INT64_C(1700000000)
#define AUD "https://wallet.example"

enum {
	ADMIN,
	OWNER,
	K2,
	K3,
	K4,
	K5,
	K6,
	K7,
	K8,
	K9,
	K10,
	K11,
	STRANGER,
	NKEYS
};

/* ---- the world: keys, principals, ownership, revocations -------------- */

struct world {
	struct jose_seckey *sk[NKEYS];
	struct jose_pubkey pk[NKEYS];
	uint8_t thumb[NKEYS][32];
	u128 owned[8];
	unsigned n_owned;
	uint8_t rev_iss[8][32], rev_jti[8][32];
	unsigned n_rev;
	uint8_t rev_all[4][32];
	unsigned n_rev_all;
	unsigned principal_calls;
};

static struct world W;

static void thumb_of(const struct jose_pubkey *k, uint8_t out[32])
{
	char t[JOSE_B64_32_BYTES];
	size_t n;

	assert_int_equal(jose_thumbprint(k, t), 0);
	assert_int_equal(b64url_decode(out, 32, t, strlen(t), &n), 0);
	assert_int_equal(n, 32);
}

static int w_principal(void *ctx, const uint8_t iss[32], uint8_t pub[32],
		       bool *is_admin)
{
	struct world *w = ctx;

	w->principal_calls++;
	for (int i = ADMIN; i <= OWNER; i++)
		if (memcmp(iss, w->thumb[i], 32) == 0) {
			memcpy(pub, w->pk[i].x, 32);
			*is_admin = i == ADMIN;
			return 0;
		}
	return -1;
}

static bool w_owns(void *ctx, const uint8_t iss[32], u128 account)
{
	struct world *w = ctx;

	if (memcmp(iss, w->thumb[OWNER], 32) != 0)
		return false;
	for (unsigned i = 0; i < w->n_owned; i++)
		if (w->owned[i] == account)
			return true;
	return false;
}

static bool w_revoked(void *ctx, const uint8_t iss[32],
		      const uint8_t jti_hash[32])
{
	struct world *w = ctx;

	for (unsigned i = 0; i < w->n_rev_all; i++)
		if (memcmp(w->rev_all[i], iss, 32) == 0)
			return true;
	for (unsigned i = 0; i < w->n_rev; i++)
		if (memcmp(w->rev_iss[i], iss, 32) == 0 &&
		    memcmp(w->rev_jti[i], jti_hash, 32) == 0)
			return true;
	return false;
}

static const struct mandate_root_ops ROOT = {.principal = w_principal,
					     .owns = w_owns,
					     .revoked = w_revoked,
					     .ctx = &W};

static void reset_world(void)
{
	static const u128 owned[] = {1001, 1002, 1003};

	W.n_owned = ARRAY_SIZE(owned);
	memcpy(W.owned, owned, sizeof(owned));
	W.n_rev = W.n_rev_all = 0;
	W.principal_calls = 0;
}

static void revoke_jti(int issuer, const char *jti)
{
	memcpy(W.rev_iss[W.n_rev], W.thumb[issuer], 32);
	crypto_hash_sha256(W.rev_jti[W.n_rev], (const unsigned char *)jti,
			   strlen(jti));
	W.n_rev++;
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(jose_init(), 0);
	for (int i = 0; i < NKEYS; i++) {
		unsigned char seed[32];
		memset(seed, 0x40 + i, sizeof(seed));
		assert_int_equal(jose_seckey_from_seed(seed, NULL, &W.sk[i]),
				 0);
		jose_seckey_public(W.sk[i], &W.pk[i]);
		thumb_of(&W.pk[i], W.thumb[i]);
	}
	reset_world();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NKEYS; i++)
		jose_seckey_free(W.sk[i]);
	return 0;
}

static int reset(void **state)
{
	(void)state;
	reset_world();
	return 0;
}

/* ---- building chains -------------------------------------------------- */

enum { PARENT_PREV = 0, PARENT_NONE, PARENT_WRONG };

struct spec {
	int issuer, delegate;
	const char *jti;
	int64_t iat, nbf, exp;
	const char *aud;
	int parent;
	struct mandate_right right;
};

static char toks[MANDATE_LINKS_MAX + 2][JOSE_TOKEN_BYTES_MAX + 1];
static size_t tok_len[MANDATE_LINKS_MAX + 2];
static char value[MANDATE_AUTHZ_BYTES_MAX + JOSE_TOKEN_BYTES_MAX + 16];
static size_t value_len;

static void join(unsigned n)
{
	value_len = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i)
			value[value_len++] = '~';
		memcpy(value + value_len, toks[i], tok_len[i]);
		value_len += tok_len[i];
	}
	value[value_len] = '\0';
}

static void sign_link(const struct spec *s, unsigned i)
{
	struct mandate_issue in = {.jti = s->jti,
				   .iat = s->iat,
				   .nbf = s->nbf,
				   .exp = s->exp,
				   .aud = s->aud,
				   .delegate = &W.pk[s->delegate],
				   .right = &s->right};

	if (i > 0 && s->parent == PARENT_PREV) {
		in.parent_compact = toks[i - 1];
		in.parent_len = tok_len[i - 1];
	} else if (s->parent == PARENT_WRONG) {
		in.parent_compact = "not the parent";
		in.parent_len = 14;
	}
	assert_int_equal(mandate_link_sign(W.sk[s->issuer], &in, toks[i],
					   sizeof(toks[i]), &tok_len[i]),
			 0);
	assert_int_equal(strlen(toks[i]), tok_len[i]);
}

static void build(const struct spec *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sign_link(&s[i], i);
	join(n);
}

static struct mandate_right right_of(unsigned ops, const u128 *acc,
				     unsigned nacc, const uint32_t *led,
				     unsigned nled, const u128 *cp,
				     unsigned ncp)
{
	struct mandate_right r;

	memset(&r, 0, sizeof(r));
	r.ops = ops;
	r.n_accounts = (uint8_t)nacc;
	for (unsigned i = 0; i < nacc; i++)
		r.accounts[i] = acc[i];
	r.n_ledgers = (uint8_t)nled;
	for (unsigned i = 0; i < nled; i++)
		r.ledgers[i] = led[i];
	r.n_counterparties = (uint8_t)ncp;
	for (unsigned i = 0; i < ncp; i++)
		r.counterparties[i] = cp[i];
	return r;
}

/* owner -> K2 -> K3 -> K4, each link narrower than the one before */
static void base3(struct spec s[3])
{
	static const u128 a1[] = {1001, 1002, 1003}, a2[] = {1001, 1002},
			  a3[] = {1001};
	static const uint32_t l1[] = {1, 2}, l3[] = {1};
	static const u128 c1[] = {2001, 2002, 2003}, c2[] = {2001, 2002},
			  c3[] = {2001};

	memset(s, 0, 3 * sizeof(*s));
	s[0] = (struct spec){.issuer = OWNER,
			     .delegate = K2,
			     .jti = "root-1",
			     .iat = NOW - 10,
			     .nbf = NOW - 100,
			     .exp = NOW + 3600};
	s[0].right = right_of(MANDATE_OP_TRANSFERS_CREATE |
				      MANDATE_OP_ACCOUNTS_READ |
				      MANDATE_OP_TRANSFERS_READ,
			      a1, 3, l1, 2, c1, 3);
	s[0].right.has_per_transfer_cap = s[0].right.has_total_cap =
		s[0].right.has_uses = true;
	s[0].right.per_transfer_cap = 5000;
	s[0].right.total_cap = 20000;
	s[0].right.uses = 100;

	s[1] = (struct spec){.issuer = K2,
			     .delegate = K3,
			     .jti = "mid.2",
			     .iat = NOW - 5,
			     .nbf = NOW - 100,
			     .exp = NOW + 1800};
	s[1].right =
		right_of(MANDATE_OP_TRANSFERS_CREATE | MANDATE_OP_ACCOUNTS_READ,
			 a2, 2, l1, 2, c2, 2);
	s[1].right.has_per_transfer_cap = s[1].right.has_total_cap =
		s[1].right.has_uses = true;
	s[1].right.per_transfer_cap = 4000;
	s[1].right.total_cap = 10000;
	s[1].right.uses = 50;

	s[2] = (struct spec){.issuer = K3,
			     .delegate = K4,
			     .jti = "leaf_3~x",
			     .iat = NOW,
			     .nbf = NOW - 50,
			     .exp = NOW + 900};
	s[2].right = right_of(MANDATE_OP_TRANSFERS_CREATE, a3, 1, l3, 1, c3, 1);
	s[2].right.has_per_transfer_cap = s[2].right.has_total_cap =
		s[2].right.has_uses = true;
	s[2].right.per_transfer_cap = 1000;
	s[2].right.total_cap = 5000;
	s[2].right.uses = 10;
}

static struct mandate_verify_opts opts_at(int64_t now)
{
	return (struct mandate_verify_opts){
		.now = now, .leeway_s = 0, .audience = AUD, .root = &ROOT};
}

static struct mandate_chain chain; /* large: not on the stack */

static int verify_value(const struct mandate_verify_opts *o,
			struct mandate_error *e)
{
	return mandate_chain_verify(value, value_len, o, &chain, e);
}

#define expect_refusal(o, want_code, want_link, want_claim)                    \
	do {                                                                   \
		struct mandate_error e_;                                       \
		assert_int_equal(verify_value(o, &e_), -1);                    \
		if (e_.code != (want_code))                                    \
			fail_msg("code %s, want %s (link %d claim %s)",        \
				 mandate_err_name(e_.code),                    \
				 mandate_err_name(want_code), e_.link,         \
				 e_.claim);                                    \
		assert_int_equal(e_.link, want_link);                          \
		assert_string_equal(e_.claim, want_claim);                     \
		assert_int_equal(chain.n, 0);                                  \
	} while (0)

static void expect_ok(const struct mandate_verify_opts *o)
{
	struct mandate_error e;

	if (verify_value(o, &e) != 0)
		fail_msg("refused: %s link %d claim %s",
			 mandate_err_name(e.code), e.link, e.claim);
	assert_int_equal(e.code, MANDATE_ERR_ok);
}

/* ---- hand-built tokens ------------------------------------------------ */

static json_t *payload_of(const char *tok)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char buf[JOSE_PAYLOAD_BYTES_MAX + 1];
	size_t n;
	json_t *j;

	assert_int_equal(b64url_decode(buf, sizeof(buf), d1 + 1,
				       (size_t)(d2 - d1 - 1), &n),
			 0);
	j = json_loadb(buf, n, 0, NULL);
	assert_non_null(j);
	return j;
}

/* Re-signs toks[i] after mut edits its claims (typ as given). */
static void resign(unsigned i, int issuer, const char *typ, bool with_jwk,
		   void (*mut)(json_t *, const void *), const void *arg)
{
	struct jose_sign_opts so = {
		.alg = JOSE_ALG_EDDSA, .typ = typ, .with_jwk = with_jwk};
	json_t *c = payload_of(toks[i]);

	mut(c, arg);
	assert_int_equal(jose_jwt_sign(W.sk[issuer], &so, c, toks[i],
				       sizeof(toks[i]), &tok_len[i]),
			 0);
	json_decref(c);
}

/* A token from a header text and the payload of toks[i], signed or with
 * a junk signature. */
static void hand_token(unsigned i, const char *header, bool sign, int key)
{
	const char *d1 = strchr(toks[i], '.'), *d2 = strchr(d1 + 1, '.');
	char out[JOSE_TOKEN_BYTES_MAX + 1];
	char sig[JOSE_B64_32_BYTES * 2 + 4];
	size_t o;

	assert_int_equal(
		b64url_encode(out, sizeof(out), header, strlen(header)), 0);
	o = strlen(out);
	memcpy(out + o, d1, (size_t)(d2 - d1));
	o += (size_t)(d2 - d1);
	out[o] = '\0';
	if (sign) {
		unsigned char s[64], sk[64];
		unsigned char seed[32];
		unsigned char pk[32];
		memset(seed, 0x40 + key, sizeof(seed));
		crypto_sign_seed_keypair(pk, sk, seed);
		crypto_sign_detached(s, NULL, (unsigned char *)out, o, sk);
		assert_int_equal(b64url_encode(sig, sizeof(sig), s, 64), 0);
	} else {
		snprintf(sig, sizeof(sig), "%s", "c2lnbmF0dXJl");
	}
	snprintf(out + o, sizeof(out) - o, ".%s", sig);
	snprintf(toks[i], sizeof(toks[i]), "%s", out);
	tok_len[i] = strlen(toks[i]);
}

/* ---- accepted chains ------------------------------------------------- */

static void three_link_chain_is_accepted(void **state)
{
	struct spec s[3];
	struct mandate_verify_opts o = opts_at(NOW);
	uint8_t h[32];

	(void)state;
	base3(s);
	build(s, 3);
	expect_ok(&o);
	assert_int_equal(chain.n, 3);
	assert_false(chain.root_admin);
	assert_int_equal(chain.exp, NOW + 900);
	assert_int_equal(chain.nbf, NOW - 50);
	for (unsigned i = 0; i < 3; i++) {
		const struct mandate_link *l = &chain.links[i];
		crypto_hash_sha256(h, (const unsigned char *)toks[i],
				   tok_len[i]);
		assert_memory_equal(l->hash, h, 32);
		assert_memory_equal(l->iss, W.thumb[s[i].issuer], 32);
		assert_memory_equal(l->sub, W.thumb[s[i].delegate], 32);
		assert_memory_equal(l->sub_key, W.pk[s[i].delegate].x, 32);
		assert_string_equal(l->jti, s[i].jti);
		crypto_hash_sha256(h, (const unsigned char *)s[i].jti,
				   strlen(s[i].jti));
		assert_memory_equal(l->jti_hash, h, 32);
		assert_int_equal(l->has_prn, i > 0);
		if (i)
			assert_memory_equal(l->prn, chain.links[i - 1].hash,
					    32);
		assert_int_equal(l->exp, s[i].exp);
		assert_true(l->has_nbf);
		assert_false(l->has_aud);
		assert_memory_equal(&l->right, &s[i].right, sizeof(l->right));
	}
	assert_memory_equal(&chain.effective, &s[2].right,
			    sizeof(chain.effective));
	/* the signing is deterministic */
	{
		char again[JOSE_TOKEN_BYTES_MAX + 1];
		snprintf(again, sizeof(again), "%s", toks[0]);
		sign_link(&s[0], 0);
		assert_string_equal(again, toks[0]);
	}
}

/* Link i (its spec's delegate unused) bound to the certificate whose
 * DER hashes to x5t, below toks[i - 1]. */
static void sign_bound(const struct spec *sp, unsigned i, const uint8_t x5t[32])
{
	struct mandate_issue in = {.jti = sp->jti,
				   .iat = sp->iat,
				   .nbf = sp->nbf,
				   .exp = sp->exp,
				   .x5t_s256 = x5t,
				   .right = &sp->right,
				   .parent_compact = toks[i - 1],
				   .parent_len = tok_len[i - 1]};
	assert_int_equal(mandate_link_sign(W.sk[sp->issuer], &in, toks[i],
					   sizeof(toks[i]), &tok_len[i]),
			 0);
}

static void set_member(json_t *c, const void *arg)
{
	const char *const *kv = arg;
	json_object_set_new(c, kv[0], json_string(kv[1]));
}

static void certificate_bound_link_is_the_last_and_names_its_cert(void **state)
{
	struct spec s[3];
	struct mandate_verify_opts o = opts_at(NOW);
	uint8_t x5t[32], zero[32] = {0};
	char x5t_text[JOSE_B64_32_BYTES], other[JOSE_B64_32_BYTES];

	(void)state;
	memset(x5t, 0xa5, sizeof(x5t));
	b64url_encode(x5t_text, sizeof(x5t_text), x5t, 32);
	base3(s);
	sign_link(&s[0], 0);
	sign_link(&s[1], 1);
	sign_bound(&s[2], 2, x5t);
	join(3);
	expect_ok(&o);
	assert_true(chain.links[2].cert_bound);
	assert_false(chain.links[1].cert_bound);
	assert_memory_equal(chain.links[2].sub, x5t, 32);
	assert_memory_equal(chain.links[2].sub_key, zero, 32);
	json_t *c = payload_of(toks[2]);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(c, "cnf"), "x5t#S256")),
			    x5t_text);
	assert_string_equal(json_string_value(json_object_get(c, "sub")),
			    x5t_text);
	json_decref(c);

	/* sub must be the certificate's hash. */
	memset(x5t, 0x5a, sizeof(x5t));
	b64url_encode(other, sizeof(other), x5t, 32);
	const char *sub[2] = {"sub", other};
	resign(2, K3, MANDATE_TYP, false, set_member, sub);
	join(3);
	expect_refusal(&o, MANDATE_ERR_malformed, 3, "cnf.x5t#S256");

	/* A link below a bound one, even one that names it as iss, has no
	 * key to be verified with. */
	sign_bound(&s[2], 2, (memset(x5t, 0xa5, 32), x5t));
	s[2].delegate = K5;
	s[2].issuer = K4;
	s[2].jti = "below";
	sign_link(&s[2], 3);
	const char *iss[2] = {"iss", x5t_text};
	resign(3, K4, MANDATE_TYP, false, set_member, iss);
	join(4);
	expect_refusal(&o, MANDATE_ERR_chain_broken, 4, "iss");
}

static void admin_root_may_grant_everything(void **state)
{
	struct spec s[2];
	struct mandate_verify_opts o = opts_at(NOW);
	static const u128 acc[] = {9999};

	(void)state;
	memset(s, 0, sizeof(s));
	s[0] = (struct spec){.issuer = ADMIN,
			     .delegate = K2,
			     .jti = "adm",
			     .iat = NOW,
			     .exp = NOW + 60};
	s[0].right.ops = MANDATE_OP_ALL;
	s[0].right.all_ops = true;
	s[1] = (struct spec){.issuer = K2,
			     .delegate = K3,
			     .jti = "sub",
			     .iat = NOW,
			     .exp = NOW + 60};
	s[1].right =
		right_of(MANDATE_OP_ACCOUNTS_READ, acc, 1, NULL, 0, NULL, 0);
	build(s, 2);
	expect_ok(&o);
	assert_true(chain.root_admin);
	assert_true(chain.links[0].right.all_ops);
	assert_int_equal(chain.links[0].right.ops, MANDATE_OP_ALL);
	assert_int_equal(chain.nbf, 0);
	assert_int_equal(chain.exp, NOW + 60);

	/* a single admin link with a matching audience */
	s[0].aud = AUD;
	build(s, 1);
	expect_ok(&o);
	assert_true(chain.links[0].has_aud);
}

static void eight_links_pass_and_nine_are_too_deep(void **state)
{
	struct spec s[MANDATE_LINKS_MAX + 1];
	struct mandate_verify_opts o = opts_at(NOW);
	static const char *const jtis[] = {"j1", "j2", "j3", "j4", "j5",
					   "j6", "j7", "j8", "j9"};
	static const u128 acc[] = {1001};

	(void)state;
	memset(s, 0, sizeof(s));
	for (unsigned i = 0; i < ARRAY_SIZE(s); i++) {
		s[i] = (struct spec){.issuer = i ? (int)(K2 + i - 1) : OWNER,
				     .delegate = (int)(K2 + i),
				     .jti = jtis[i],
				     .iat = NOW,
				     .exp = NOW + 100};
		s[i].right = right_of(MANDATE_OP_ACCOUNTS_READ, acc, 1, NULL, 0,
				      NULL, 0);
	}
	build(s, MANDATE_LINKS_MAX);
	expect_ok(&o);
	assert_int_equal(chain.n, MANDATE_LINKS_MAX);
	build(s, MANDATE_LINKS_MAX + 1);
	expect_refusal(&o, MANDATE_ERR_chain_too_deep, 9, "");
	/* and the depth is checked before any link is looked at */
	W.principal_calls = 0;
	expect_refusal(&o, MANDATE_ERR_chain_too_deep, 9, "");
	assert_int_equal(W.principal_calls, 0);
}

/* ---- narrowing -------------------------------------------------------- */

struct narrow_row {
	const char *name;
	void (*mut)(struct spec *leaf);
	int code;
	const char *claim;
};

static void n_ops_wider(struct spec *l)
{
	l->right.ops |= MANDATE_OP_ACCOUNTS_CREATE;
}
static void n_ops_star(struct spec *l)
{
	l->right.ops = MANDATE_OP_ALL;
	l->right.all_ops = true;
}
static void n_ops_equal(struct spec *l)
{
	l->right.ops = MANDATE_OP_TRANSFERS_CREATE | MANDATE_OP_ACCOUNTS_READ;
}
static void n_acc_absent(struct spec *l)
{
	l->right.n_accounts = 0;
}
static void n_acc_superset(struct spec *l)
{
	l->right.n_accounts = 2;
	l->right.accounts[1] = 1003;
}
static void n_acc_equal(struct spec *l)
{
	l->right.n_accounts = 2;
	l->right.accounts[0] = 1002;
	l->right.accounts[1] = 1001;
}
static void n_led_absent(struct spec *l)
{
	l->right.n_ledgers = 0;
}
static void n_led_other(struct spec *l)
{
	l->right.ledgers[0] = 3;
}
static void n_cp_absent(struct spec *l)
{
	l->right.n_counterparties = 0;
}
static void n_cp_other(struct spec *l)
{
	l->right.counterparties[0] = 2003;
}
static void n_ptc_larger(struct spec *l)
{
	l->right.per_transfer_cap = 4001;
}
static void n_ptc_equal(struct spec *l)
{
	l->right.per_transfer_cap = 4000;
}
static void n_ptc_dropped(struct spec *l)
{
	l->right.has_per_transfer_cap = false;
}
static void n_tc_larger(struct spec *l)
{
	l->right.total_cap = 10001;
}
static void n_tc_dropped(struct spec *l)
{
	l->right.has_total_cap = false;
}
static void n_uses_larger(struct spec *l)
{
	l->right.uses = 51;
}
static void n_uses_dropped(struct spec *l)
{
	l->right.has_uses = false;
}
static void n_exp_later(struct spec *l)
{
	l->exp = NOW + 1801;
}
static void n_exp_equal(struct spec *l)
{
	l->exp = NOW + 1800;
}
static void n_nbf_earlier(struct spec *l)
{
	l->nbf = NOW - 101;
}
static void n_nbf_dropped(struct spec *l)
{
	l->nbf = 0;
}
static void n_nbf_equal(struct spec *l)
{
	l->nbf = NOW - 100;
}
/* two widenings: the first in docs/authz.md's order is reported */
static void n_two(struct spec *l)
{
	l->right.uses = 51;
	l->right.ledgers[0] = 3;
}

static const struct narrow_row narrow_rows[] = {
	{"ops wider", n_ops_wider, MANDATE_ERR_widened, "right.ops"},
	{"ops *", n_ops_star, MANDATE_ERR_widened, "right.ops"},
	{"ops equal", n_ops_equal, 0, ""},
	{"accounts absent", n_acc_absent, MANDATE_ERR_widened,
	 "right.accounts"},
	{"accounts superset", n_acc_superset, MANDATE_ERR_widened,
	 "right.accounts"},
	{"accounts equal", n_acc_equal, 0, ""},
	{"ledgers absent", n_led_absent, MANDATE_ERR_widened, "right.ledgers"},
	{"ledgers other", n_led_other, MANDATE_ERR_widened, "right.ledgers"},
	{"counterparties absent", n_cp_absent, MANDATE_ERR_widened,
	 "right.counterparties"},
	{"counterparties other", n_cp_other, MANDATE_ERR_widened,
	 "right.counterparties"},
	{"per_transfer_cap larger", n_ptc_larger, MANDATE_ERR_widened,
	 "right.per_transfer_cap"},
	{"per_transfer_cap equal", n_ptc_equal, 0, ""},
	{"per_transfer_cap dropped", n_ptc_dropped, MANDATE_ERR_widened,
	 "right.per_transfer_cap"},
	{"total_cap larger", n_tc_larger, MANDATE_ERR_widened,
	 "right.total_cap"},
	{"total_cap dropped", n_tc_dropped, MANDATE_ERR_widened,
	 "right.total_cap"},
	{"uses larger", n_uses_larger, MANDATE_ERR_widened, "right.uses"},
	{"uses dropped", n_uses_dropped, MANDATE_ERR_widened, "right.uses"},
	{"exp later", n_exp_later, MANDATE_ERR_widened, "exp"},
	{"exp equal", n_exp_equal, 0, ""},
	{"nbf earlier", n_nbf_earlier, MANDATE_ERR_widened, "nbf"},
	{"nbf dropped", n_nbf_dropped, MANDATE_ERR_widened, "nbf"},
	{"nbf equal", n_nbf_equal, 0, ""},
	{"ledgers before uses", n_two, MANDATE_ERR_widened, "right.ledgers"},
};

static void every_narrowing_rule_is_enforced(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(narrow_rows); i++) {
		const struct narrow_row *r = &narrow_rows[i];
		struct mandate_error e;
		struct spec s[3];
		int ret;

		base3(s);
		r->mut(&s[2]);
		build(s, 3);
		ret = verify_value(&o, &e);
		if (r->code == 0) {
			if (ret != 0)
				fail_msg("%s: refused %s %s", r->name,
					 mandate_err_name(e.code), e.claim);
			continue;
		}
		if (ret != -1 || e.code != r->code || e.link != 3 ||
		    strcmp(e.claim, r->claim) != 0)
			fail_msg("%s: got %d %s link %d claim %s", r->name, ret,
				 mandate_err_name(e.code), e.link, e.claim);
	}
}

/* The same rules between links 1 and 2 report link 2. */
static void narrowing_reports_the_middle_link(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	base3(s);
	s[1].right.total_cap = 20001;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_widened, 2, "right.total_cap");
}

/* ---- chain structure -------------------------------------------------- */

/* Changes one character in the middle of link k's signature. */
static void tamper_signature(unsigned k)
{
	char *sig = strrchr(toks[k], '.') + 1;

	sig[20] = sig[20] == 'A' ? 'B' : 'A';
}

static void tampered_signature_of_each_link_is_refused(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	for (unsigned k = 0; k < 3; k++) {
		base3(s);
		build(s, 3);
		tamper_signature(k);
		join(3);
		expect_refusal(&o, MANDATE_ERR_bad_signature, (int)k + 1, "");
	}
	/* a tampered payload: a character of its base64url changed breaks
	 * its JSON (the payload is read first, for the issuer whose key
	 * verifies the signature), so it is malformed */
	base3(s);
	build(s, 3);
	{
		char *p = strchr(toks[1], '.') + 5;
		*p = *p == 'x' ? 'y' : 'x';
	}
	join(3);
	{
		struct mandate_error e;
		assert_int_equal(verify_value(&o, &e), -1);
		assert_int_equal(e.link, 2);
		assert_int_equal(e.code, MANDATE_ERR_malformed);
	}
}

static void link_signed_by_another_key_is_refused(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	/* iss claims K3 (the parent's sub) but K5 signs */
	base3(s);
	build(s, 3);
	{
		static const char hdr[] =
			"{\"alg\":\"EdDSA\",\"typ\":\"tpwallet-mandate+jwt\"}";
		hand_token(2, hdr, true, K5);
	}
	join(3);
	expect_refusal(&o, MANDATE_ERR_bad_signature, 3, "");
	/* root claiming the owner, signed by a stranger */
	base3(s);
	build(s, 1);
	{
		static const char hdr[] =
			"{\"alg\":\"EdDSA\",\"typ\":\"tpwallet-mandate+jwt\"}";
		hand_token(0, hdr, true, STRANGER);
	}
	join(1);
	expect_refusal(&o, MANDATE_ERR_bad_signature, 1, "");
}

static void prn_and_iss_must_follow_the_parent(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	base3(s);
	s[1].parent = PARENT_WRONG;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_chain_broken, 2, "prn");

	base3(s);
	s[2].parent = PARENT_NONE;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_chain_broken, 3, "prn");

	base3(s);
	s[0].parent = PARENT_WRONG; /* a root must not have prn */
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_chain_broken, 1, "prn");

	/* link 3 issued by K2, whose sub is not K2 */
	base3(s);
	s[2].issuer = K2;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_chain_broken, 3, "iss");

	/* links swapped */
	base3(s);
	build(s, 3);
	{
		char t[JOSE_TOKEN_BYTES_MAX + 1];
		size_t n = tok_len[1];
		memcpy(t, toks[1], n + 1);
		memcpy(toks[1], toks[2], tok_len[2] + 1);
		tok_len[1] = tok_len[2];
		memcpy(toks[2], t, n + 1);
		tok_len[2] = n;
	}
	join(3);
	expect_refusal(&o, MANDATE_ERR_chain_broken, 2, "iss");
}

static void a_delegate_key_or_jti_may_not_repeat(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[4];

	(void)state;
	base3(s);
	s[3] = s[2];
	s[2].delegate = K2; /* K3 -> K2 again: owner->K2->K3->K2 */
	s[3].issuer = K2;
	s[3].delegate = K5;
	s[3].jti = "four";
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_cycle, 3, "sub");

	base3(s);
	s[2].jti = "mid.2";
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_cycle, 3, "jti");

	/* the root issuer may be a later delegate (not a cycle of delegates) */
	base3(s);
	s[2].delegate = OWNER;
	build(s, 3);
	expect_ok(&o);
}

static void empty_or_oversized_values_are_malformed(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct mandate_error e;
	struct spec s[3];

	(void)state;
	assert_int_equal(mandate_chain_verify("", 0, &o, &chain, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_malformed);
	base3(s);
	build(s, 2);
	value[value_len++] = '~';
	value[value_len] = '\0';
	expect_refusal(&o, MANDATE_ERR_malformed, 3, "");
	memmove(value + 1, value, value_len + 1);
	value[0] = '~';
	value_len++;
	expect_refusal(&o, MANDATE_ERR_malformed, 1, "");
	assert_int_equal(mandate_chain_verify(value,
					      MANDATE_AUTHZ_BYTES_MAX + 1, &o,
					      &chain, &e),
			 -1);
	assert_int_equal(e.code, MANDATE_ERR_malformed);
	assert_int_equal(mandate_chain_verify("abc", 3, &o, &chain, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_malformed);
	assert_int_equal(e.link, 1);
	/* caller mistakes are internal, not the client's */
	o.leeway_s = JOSE_LEEWAY_MAX_S + 1;
	assert_int_equal(mandate_chain_verify("abc", 3, &o, &chain, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_internal);
	assert_int_equal(mandate_err_status(e.code), 500);
}

/* ---- time ------------------------------------------------------------- */

static void time_of_every_link_is_checked(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	/* expired middle link (its child may not outlive it) */
	base3(s);
	s[1].exp = NOW;
	s[2].exp = NOW;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_expired, 2, "exp");
	o.leeway_s = 1;
	expect_ok(&o);
	o.leeway_s = 0;

	/* not yet valid middle link */
	base3(s);
	s[1].nbf = NOW + 10;
	s[2].nbf = NOW + 10;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_not_yet_valid, 2, "nbf");
	o.leeway_s = 10;
	expect_ok(&o);
	assert_int_equal(chain.nbf, NOW + 10);
	o.leeway_s = 0;

	/* issued in the future */
	base3(s);
	s[1].iat = NOW + 1;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_issued_in_future, 2, "iat");
	o.leeway_s = 1;
	expect_ok(&o);
}

static void audience_is_checked(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	base3(s);
	s[1].aud = AUD;
	build(s, 3);
	expect_ok(&o);
	assert_true(chain.links[1].has_aud);
	assert_false(chain.links[2].has_aud);
	o.audience = "https://other.example";
	expect_refusal(&o, MANDATE_ERR_wrong_audience, 2, "aud");
	o.audience = NULL;
	expect_refusal(&o, MANDATE_ERR_wrong_audience, 2, "aud");
}

/* ---- revocation and ownership ----------------------------------------- */

static void revoked_middle_link_kills_the_chain(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	base3(s);
	build(s, 3);
	expect_ok(&o);
	revoke_jti(K2, "mid.2");
	expect_refusal(&o, MANDATE_ERR_revoked, 2, "jti");
	/* the same jti from another issuer is not revoked */
	reset_world();
	revoke_jti(K3, "mid.2");
	expect_ok(&o);
	/* every link of an issuer */
	reset_world();
	memcpy(W.rev_all[W.n_rev_all++], W.thumb[K3], 32);
	expect_refusal(&o, MANDATE_ERR_revoked, 3, "jti");
	assert_string_equal(mandate_err_name(MANDATE_ERR_revoked), "revoked");
	assert_int_equal(mandate_err_status(MANDATE_ERR_revoked), 401);
}

static void root_must_own_every_account(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);
	struct spec s[3];

	(void)state;
	base3(s);
	s[0].right.accounts[2] = 1009;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_issuer_not_owner, 1, "right.accounts");
	assert_int_equal(mandate_err_status(MANDATE_ERR_issuer_not_owner), 403);

	base3(s);
	s[0].right.n_accounts = 0;
	build(s, 1);
	expect_refusal(&o, MANDATE_ERR_issuer_not_owner, 1, "right.accounts");

	base3(s);
	s[0].right.ops = MANDATE_OP_ALL;
	s[0].right.all_ops = true;
	build(s, 1);
	expect_refusal(&o, MANDATE_ERR_issuer_not_owner, 1, "right.ops");

	/* every op listed by name is not "*" */
	base3(s);
	s[0].right.ops = MANDATE_OP_ALL;
	build(s, 1);
	expect_ok(&o);
	assert_false(chain.links[0].right.all_ops);

	/* an unregistered root */
	base3(s);
	s[0].issuer = STRANGER;
	build(s, 3);
	expect_refusal(&o, MANDATE_ERR_unknown_issuer, 1, "iss");
}

/* ---- strict claims ---------------------------------------------------- */

struct claim_row {
	const char *name;
	const char *path; /* NULL: delete; else set to json */
	const char *json;
	int code;
	const char *claim;
};

static void set_path(json_t *c, const void *arg)
{
	const struct claim_row *r = arg;
	char path[64];
	char *dot;
	json_t *obj = c;

	snprintf(path, sizeof(path), "%s", r->path);
	dot = strchr(path, '.');
	if (dot) {
		*dot = '\0';
		obj = json_object_get(c, path);
		assert_non_null(obj);
		memmove(path, dot + 1, strlen(dot + 1) + 1);
	}
	if (!r->json) {
		assert_int_equal(json_object_del(obj, path), 0);
	} else {
		json_t *v = json_loads(r->json, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		json_object_set_new(obj, path, v);
	}
}

static const struct claim_row claim_rows[] = {
	{"unknown claim", "foo", "1", MANDATE_ERR_malformed, "claims"},
	{"iss missing", "iss", NULL, MANDATE_ERR_malformed, "iss"},
	{"iss number", "iss", "1", MANDATE_ERR_malformed, "iss"},
	{"sub short", "sub", "\"abc\"", MANDATE_ERR_malformed, "sub"},
	{"sub padded", "sub",
	 "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
	 MANDATE_ERR_malformed, "sub"},
	{"cnf extra", "cnf.x", "1", MANDATE_ERR_malformed, "cnf"},
	{"cnf string", "cnf", "\"k\"", MANDATE_ERR_malformed, "cnf"},
	{"cnf.jwk other key", "cnf.jwk",
	 "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	 "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
	 MANDATE_ERR_malformed, "cnf.jwk"},
	{"cnf.jwk rsa", "cnf.jwk", "{\"kty\":\"RSA\",\"n\":\"AQAB\"}",
	 MANDATE_ERR_malformed, "cnf.jwk"},
	{"iat string", "iat", "\"1700000000\"", MANDATE_ERR_malformed, "iat"},
	{"iat missing", "iat", NULL, MANDATE_ERR_malformed, "iat"},
	{"exp missing", "exp", NULL, MANDATE_ERR_malformed, "exp"},
	{"exp real", "exp", "1700000100.5", MANDATE_ERR_malformed, "exp"},
	{"exp negative", "exp", "-1", MANDATE_ERR_malformed, "exp"},
	{"exp before nbf", "nbf", "1700009999", MANDATE_ERR_malformed, "exp"},
	{"nbf bool", "nbf", "true", MANDATE_ERR_malformed, "nbf"},
	{"jti empty", "jti", "\"\"", MANDATE_ERR_malformed, "jti"},
	{"jti slash", "jti", "\"a/b\"", MANDATE_ERR_malformed, "jti"},
	{"jti space", "jti", "\"a b\"", MANDATE_ERR_malformed, "jti"},
	{"jti 65", "jti",
	 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "\"",
	 MANDATE_ERR_malformed, "jti"},
	{"jti 64 ok", "jti",
	 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
	 0, ""},
	{"jti number", "jti", "7", MANDATE_ERR_malformed, "jti"},
	{"aud array", "aud", "[\"" AUD "\"]", MANDATE_ERR_malformed, "aud"},
	{"prn on root", "prn",
	 "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
	 MANDATE_ERR_chain_broken, "prn"},
	{"prn bad", "prn", "\"xyz\"", MANDATE_ERR_malformed, "prn"},
	{"right missing", "right", NULL, MANDATE_ERR_malformed, "right"},
	{"right array", "right", "[]", MANDATE_ERR_malformed, "right"},
	{"right unknown", "right.max", "1", MANDATE_ERR_malformed, "right"},
	{"ops missing", "right.ops", NULL, MANDATE_ERR_malformed, "right.ops"},
	{"ops empty", "right.ops", "[]", MANDATE_ERR_malformed, "right.ops"},
	{"ops unknown", "right.ops", "[\"transfers:delete\"]",
	 MANDATE_ERR_malformed, "right.ops"},
	{"ops duplicate", "right.ops",
	 "[\"transfers:create\",\"transfers:create\"]", MANDATE_ERR_malformed,
	 "right.ops"},
	{"ops star mixed", "right.ops", "[\"*\",\"transfers:create\"]",
	 MANDATE_ERR_malformed, "right.ops"},
	{"ops string", "right.ops", "\"transfers:create\"",
	 MANDATE_ERR_malformed, "right.ops"},
	{"accounts numbers", "right.accounts", "[1001]", MANDATE_ERR_malformed,
	 "right.accounts"},
	{"accounts leading zero", "right.accounts", "[\"01001\"]",
	 MANDATE_ERR_malformed, "right.accounts"},
	{"accounts zero", "right.accounts", "[\"0\"]", MANDATE_ERR_malformed,
	 "right.accounts"},
	{"accounts empty", "right.accounts", "[]", MANDATE_ERR_malformed,
	 "right.accounts"},
	{"accounts 17", "right.accounts",
	 "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
	 "\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]",
	 MANDATE_ERR_malformed, "right.accounts"},
	{"accounts 2^128", "right.accounts",
	 "[\"340282366920938463463374607431768211456\"]", MANDATE_ERR_malformed,
	 "right.accounts"},
	{"ledgers zero", "right.ledgers", "[0]", MANDATE_ERR_malformed,
	 "right.ledgers"},
	{"ledgers 2^32", "right.ledgers", "[4294967296]", MANDATE_ERR_malformed,
	 "right.ledgers"},
	{"ledgers string", "right.ledgers", "[\"1\"]", MANDATE_ERR_malformed,
	 "right.ledgers"},
	{"counterparties dup", "right.counterparties", "[\"5\",\"5\"]",
	 MANDATE_ERR_malformed, "right.counterparties"},
	{"cap number", "right.per_transfer_cap", "5000", MANDATE_ERR_malformed,
	 "right.per_transfer_cap"},
	{"cap sign", "right.total_cap", "\"+5\"", MANDATE_ERR_malformed,
	 "right.total_cap"},
	{"uses zero", "right.uses", "0", MANDATE_ERR_malformed, "right.uses"},
	{"uses 2^53", "right.uses", "9007199254740992", MANDATE_ERR_malformed,
	 "right.uses"},
	{"uses 2^53-1 ok", "right.uses", "9007199254740991", 0, ""},
	{"uses real", "right.uses", "1.0", MANDATE_ERR_malformed, "right.uses"},
};

static void claims_are_strict(void **state)
{
	struct mandate_verify_opts o = opts_at(NOW);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(claim_rows); i++) {
		const struct claim_row *r = &claim_rows[i];
		struct mandate_error e;
		struct spec s[3];
		int ret;

		base3(s);
		build(s, 1);
		resign(0, OWNER, MANDATE_TYP, false, set_path, r);
		join(1);
		ret = verify_value(&o, &e);
		if (r->code == 0) {
			if (ret != 0)
				fail_msg("%s: refused %s %s", r->name,
					 mandate_err_name(e.code), e.claim);
			continue;
		}
		if (ret != -1 || e.code != r->code || e.link != 1 ||
		    strcmp(e.claim, r->claim) != 0)
			fail_msg("%s: got %d %s link %d claim %s", r->name, ret,
				 mandate_err_name(e.code), e.link, e.claim);
	}
}

static void headers_and_algorithms_are_strict(void **state)
{
	static const struct {
		const char *header;
		bool sign;
		int code;
		const char *claim;
	} rows[] = {
		{"{\"alg\":\"none\",\"typ\":\"tpwallet-mandate+jwt\"}", false,
		 MANDATE_ERR_alg_not_allowed, "alg"},
		{"{\"alg\":\"HS256\",\"typ\":\"tpwallet-mandate+jwt\"}", false,
		 MANDATE_ERR_alg_not_allowed, "alg"},
		{"{\"alg\":\"ES256\",\"typ\":\"tpwallet-mandate+jwt\"}", true,
		 MANDATE_ERR_alg_not_allowed, "alg"},
		{"{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", true,
		 MANDATE_ERR_malformed, "header"},
		{"{\"alg\":\"EdDSA\"}", true, MANDATE_ERR_malformed, "header"},
		{"{\"alg\":\"EdDSA\",\"typ\":\"tpwallet-mandate+jwt\","
		 "\"kid\":\"k1\"}",
		 true, MANDATE_ERR_malformed, "header"},
		{"{\"alg\":\"EdDSA\",\"typ\":\"tpwallet-mandate+jwt\","
		 "\"crit\":[\"exp\"]}",
		 true, MANDATE_ERR_malformed, "header"},
		{"{\"alg\":\"EdDSA\",\"typ\":\"tpwallet-mandate+jwt\","
		 "\"jwk\":{}}",
		 true, MANDATE_ERR_malformed, "header"},
		{"{\"alg\":\"EdDSA\",\"typ\":\"tpwallet-mandate+jwt\","
		 "\"zip\":\"DEF\"}",
		 true, MANDATE_ERR_malformed, "header"},
		{"{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\","
		 "\"typ\":\"tpwallet-mandate+jwt\"}",
		 true, MANDATE_ERR_malformed, ""},
		/* both alg names and a case-insensitive typ are fine */
		{"{\"alg\":\"Ed25519\",\"typ\":\"tpwallet-mandate+jwt\"}", true,
		 0, ""},
		{"{\"alg\":\"EdDSA\","
		 "\"typ\":\"application/TPWALLET-mandate+JWT\"}",
		 true, 0, ""},
	};
	struct mandate_verify_opts o = opts_at(NOW);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct mandate_error e;
		struct spec s[3];
		int ret;

		base3(s);
		build(s, 1);
		hand_token(0, rows[i].header, rows[i].sign, OWNER);
		join(1);
		ret = verify_value(&o, &e);
		if (rows[i].code == 0) {
			if (ret != 0)
				fail_msg("row %zu refused %s %s", i,
					 mandate_err_name(e.code), e.claim);
			continue;
		}
		if (ret != -1 || e.code != rows[i].code || e.link != 1 ||
		    strcmp(e.claim, rows[i].claim) != 0)
			fail_msg("row %zu: %s link %d claim %s", i,
				 mandate_err_name(e.code), e.link, e.claim);
	}
}

/* ---- the cache -------------------------------------------------------- */

static void cached_chain_gives_the_same_answers(void **state)
{
	struct mandate_cache *c = mandate_cache_new(64);
	struct mandate_verify_opts o = opts_at(NOW);
	struct mandate_chain first;
	struct spec s[3];
	uint64_t hits, misses;

	(void)state;
	assert_null(mandate_cache_new(0));
	assert_null(mandate_cache_new(48));
	assert_non_null(c);
	o.cache = c;
	base3(s);
	build(s, 3);
	expect_ok(&o);
	first = chain;
	mandate_cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 0);
	assert_int_equal(misses, 3);
	expect_ok(&o);
	mandate_cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 3);
	assert_int_equal(misses, 3);
	assert_int_equal(first.n, chain.n);
	assert_memory_equal(&first.effective, &chain.effective,
			    sizeof(chain.effective));
	for (unsigned i = 0; i < 3; i++)
		assert_memory_equal(&first.links[i], &chain.links[i],
				    sizeof(chain.links[i]));
	assert_int_equal(first.exp, chain.exp);
	assert_int_equal(first.nbf, chain.nbf);

	/* revocation, expiry, ownership and chaining are still checked */
	revoke_jti(K2, "mid.2");
	expect_refusal(&o, MANDATE_ERR_revoked, 2, "jti");
	reset_world();
	o.now = NOW + 900;
	expect_refusal(&o, MANDATE_ERR_expired, 3, "exp");
	o.now = NOW;
	W.n_owned = 1;
	expect_refusal(&o, MANDATE_ERR_issuer_not_owner, 1, "right.accounts");
	reset_world();
	expect_ok(&o);
	/* cached links in the wrong order */
	{
		char t[JOSE_TOKEN_BYTES_MAX + 1];
		size_t n = tok_len[1];
		memcpy(t, toks[1], n + 1);
		memcpy(toks[1], toks[2], tok_len[2] + 1);
		tok_len[1] = tok_len[2];
		memcpy(toks[2], t, n + 1);
		tok_len[2] = n;
	}
	join(3);
	expect_refusal(&o, MANDATE_ERR_chain_broken, 2, "iss");
	/* a tampered link is a miss and still refused */
	base3(s);
	build(s, 3);
	tamper_signature(1);
	join(3);
	expect_refusal(&o, MANDATE_ERR_bad_signature, 2, "");
	/* the cached root's issuer is still looked up */
	base3(s);
	build(s, 3);
	W.principal_calls = 0;
	expect_ok(&o);
	assert_int_equal(W.principal_calls, 1);
	mandate_cache_free(c);
	mandate_cache_free(NULL);
}

/* ---- rights ----------------------------------------------------------- */

static void rights_round_trip_and_check_requests(void **state)
{
	struct spec s[3];
	struct mandate_right back;
	struct mandate_error e;
	json_t *j;
	char *text;

	(void)state;
	base3(s);
	s[0].right.accounts[0] = ~(u128)0 - 1;
	j = mandate_right_to_json(&s[0].right);
	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(
		text,
		"{\"accounts\":[\"340282366920938463463374607431768211454\","
		"\"1002\",\"1003\"],\"counterparties\":[\"2001\",\"2002\","
		"\"2003\"],\"ledgers\":[1,2],\"ops\":[\"accounts:read\","
		"\"transfers:create\",\"transfers:read\"],\"per_transfer_cap\":"
		"\"5000\",\"total_cap\":\"20000\",\"uses\":100}");
	free(text);
	assert_int_equal(mandate_right_from_json(j, &back, &e), 0);
	assert_memory_equal(&back, &s[0].right, sizeof(back));
	json_decref(j);

	/* ops by name */
	for (unsigned i = 0; i < MANDATE_OP_COUNT; i++) {
		unsigned bit;
		const char *n = mandate_op_name(1u << i);
		assert_non_null(n);
		assert_int_equal(mandate_op_parse(n, &bit), 0);
		assert_int_equal(bit, 1u << i);
	}
	{
		unsigned bit;
		assert_string_equal(
			mandate_op_name(MANDATE_OP_TRANSFERS_CREATE),
			"transfers:create");
		assert_string_equal(mandate_op_name(MANDATE_OP_REVOKE),
				    "revoke");
		assert_null(mandate_op_name(3));
		assert_int_equal(mandate_op_parse("*", &bit), 0);
		assert_int_equal(bit, MANDATE_OP_ALL);
		assert_int_equal(mandate_op_parse("Transfers:create", &bit),
				 -1);
	}

	/* requests against the leaf right */
	{
		const struct mandate_right *r = &s[2].right;
		static const struct {
			u16 flags;
			u128 debit, credit;
			uint32_t ledger;
			u128 amount;
			int code;
			const char *claim;
		} rows[] = {
			{0, 1001, 2001, 1, 1000, 0, ""},
			{TRANSFER_POST_PENDING_TRANSFER, 1001, 2001, 1, 1,
			 MANDATE_ERR_op_not_allowed, "right.ops"},
			{0, 1002, 2001, 1, 1, MANDATE_ERR_account_not_allowed,
			 "right.accounts"},
			{0, 1001, 2001, 2, 1, MANDATE_ERR_ledger_not_allowed,
			 "right.ledgers"},
			{0, 1001, 2002, 1, 1,
			 MANDATE_ERR_counterparty_not_allowed,
			 "right.counterparties"},
			{0, 1001, 2001, 1, 1001,
			 MANDATE_ERR_per_transfer_cap_exceeded,
			 "right.per_transfer_cap"},
		};
		for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
			struct transfer t = {.flags = rows[i].flags,
					     .debit_account_id = rows[i].debit,
					     .credit_account_id =
						     rows[i].credit,
					     .ledger = rows[i].ledger,
					     .amount = rows[i].amount};
			int ret = mandate_right_check_transfer(r, &t, NULL, &e);
			assert_int_equal(ret, rows[i].code ? -1 : 0);
			assert_int_equal(e.code, rows[i].code);
			assert_string_equal(e.claim, rows[i].claim);
			if (rows[i].code)
				assert_int_equal(
					mandate_err_status(rows[i].code), 403);
		}
		assert_int_equal(
			mandate_right_check_op(r, MANDATE_OP_TRANSFERS_CREATE,
					       true, 1001, &e),
			0);
		assert_int_equal(
			mandate_right_check_op(r, MANDATE_OP_TRANSFERS_CREATE,
					       true, 1002, &e),
			-1);
		assert_int_equal(e.code, MANDATE_ERR_account_not_allowed);
		/* a query over unnamed accounts needs a right without them */
		assert_int_equal(
			mandate_right_check_op(r, MANDATE_OP_TRANSFERS_CREATE,
					       false, 0, &e),
			-1);
		assert_int_equal(e.code, MANDATE_ERR_account_not_allowed);
		assert_int_equal(mandate_right_check_op(r,
							MANDATE_OP_AUDIT_READ,
							true, 1001, &e),
				 -1);
		assert_int_equal(e.code, MANDATE_ERR_op_not_allowed);
	}
	{
		struct mandate_right any = {.ops = MANDATE_OP_ALL,
					    .all_ops = true};
		assert_int_equal(
			mandate_right_check_op(&any, MANDATE_OP_ACCOUNTS_READ,
					       false, 0, &e),
			0);
		struct transfer t = {.flags = TRANSFER_VOID_PENDING_TRANSFER,
				     .debit_account_id = 5,
				     .credit_account_id = 6,
				     .ledger = 7,
				     .amount = ~(u128)0};
		assert_int_equal(
			mandate_right_check_transfer(&any, &t, NULL, &e), 0);
		/* two bits at once is the caller's mistake */
		assert_int_equal(mandate_right_check_op(&any, 3, false, 0, &e),
				 -1);
		assert_int_equal(e.code, MANDATE_ERR_internal);
	}
}

/* Which account each flag of a transfer needs (docs/authz.md): a till
 * over account 10 only. */
static void transfer_flags_need_the_accounts_they_touch(void **state)
{
	(void)state;
	struct mandate_right till = {.ops = MANDATE_OP_TRANSFERS_CREATE |
					    MANDATE_OP_TRANSFERS_POST_VOID,
				     .n_accounts = 1,
				     .accounts = {10}};
	struct mandate_error e;
	const u16 post = TRANSFER_POST_PENDING_TRANSFER;
	const u16 vd = TRANSFER_VOID_PENDING_TRANSFER;
	static const struct {
		u16 flags;
		u128 debit, credit;
		int code;
	} creates[] = {
		{0, 10, 20, 0},
		{TRANSFER_PENDING, 10, 20, 0},
		{TRANSFER_PENDING | TRANSFER_CLOSING_DEBIT, 10, 20, 0},
		{TRANSFER_BALANCING_DEBIT, 10, 20, 0},
		/* closing someone else's account */
		{TRANSFER_PENDING | TRANSFER_CLOSING_CREDIT, 10, 20,
		 MANDATE_ERR_account_not_allowed},
		/* an amount cut to someone else's balance reveals it */
		{TRANSFER_BALANCING_CREDIT, 10, 20,
		 MANDATE_ERR_account_not_allowed},
		{TRANSFER_PENDING | TRANSFER_CLOSING_DEBIT, 20, 10,
		 MANDATE_ERR_account_not_allowed},
	};
	for (size_t i = 0; i < ARRAY_SIZE(creates); i++) {
		struct transfer t = {.flags = creates[i].flags,
				     .debit_account_id = creates[i].debit,
				     .credit_account_id = creates[i].credit,
				     .ledger = 1,
				     .amount = 0};
		assert_int_equal(
			mandate_right_check_transfer(&till, &t, NULL, &e),
			creates[i].code ? -1 : 0);
		assert_int_equal(e.code, creates[i].code);
	}

	/* posts and voids, against the pending transfer they name */
	static const struct {
		u16 pending_flags;
		u128 debit, credit;
		u16 flags;
		int code;
	} pv[] = {
		{0, 10, 20, post, 0},
		{0, 10, 20, vd, 0},
		/* the payee may refuse (void), never take (post) */
		{0, 20, 10, vd, 0},
		{0, 20, 10, post, MANDATE_ERR_account_not_allowed},
		{0, 20, 30, vd, MANDATE_ERR_account_not_allowed},
		/* posting makes a closing final, voiding reopens: both
		 * need the closed account */
		{TRANSFER_CLOSING_CREDIT, 10, 20, post,
		 MANDATE_ERR_account_not_allowed},
		{TRANSFER_CLOSING_CREDIT, 10, 20, vd,
		 MANDATE_ERR_account_not_allowed},
		{TRANSFER_CLOSING_DEBIT, 20, 10, vd,
		 MANDATE_ERR_account_not_allowed},
		{TRANSFER_CLOSING_DEBIT, 10, 20, vd, 0},
		{TRANSFER_CLOSING_CREDIT, 20, 10, vd,
		 MANDATE_ERR_account_not_allowed},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pv); i++) {
		struct transfer p = {.id = 7,
				     .flags = TRANSFER_PENDING |
					      pv[i].pending_flags,
				     .debit_account_id = pv[i].debit,
				     .credit_account_id = pv[i].credit,
				     .ledger = 1,
				     .amount = 5};
		struct transfer t = {
			.id = 8, .flags = pv[i].flags, .pending_id = 7};
		assert_int_equal(
			mandate_right_check_transfer(&till, &t, &p, &e),
			pv[i].code ? -1 : 0);
		assert_int_equal(e.code, pv[i].code);
	}
	/* an unknown pending looks like someone else's */
	struct transfer t = {.id = 8,
			     .flags = post,
			     .pending_id = 7,
			     .debit_account_id = 10};
	assert_int_equal(mandate_right_check_transfer(&till, &t, NULL, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_account_not_allowed);
	/* a void moves nothing: neither counterparties nor the cap apply */
	struct mandate_right capped = till;
	capped.has_per_transfer_cap = true;
	capped.per_transfer_cap = 1;
	capped.n_counterparties = 1;
	capped.counterparties[0] = 30;
	struct transfer p = {.id = 7,
			     .flags = TRANSFER_PENDING,
			     .debit_account_id = 10,
			     .credit_account_id = 20,
			     .ledger = 1,
			     .amount = 5};
	t.flags = vd;
	assert_int_equal(mandate_right_check_transfer(&capped, &t, &p, &e), 0);
	t.flags = post;
	assert_int_equal(mandate_right_check_transfer(&capped, &t, &p, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_counterparty_not_allowed);
}

/* ---- DPoP ------------------------------------------------------------- */

#define HOST "wallet.example:8080"
#define PATH "/v1/transfers"
#define HTU  "http://" HOST PATH

static char proof[JOSE_TOKEN_BYTES_MAX + 1];
static size_t proof_len;

static void make_proof(int key, const char *jti, const char *method,
		       const char *htu, int64_t iat, const char *at)
{
	assert_int_equal(mandate_dpop_sign(W.sk[key], jti, method, htu, iat, at,
					   at ? strlen(at) : 0, proof,
					   sizeof(proof), &proof_len),
			 0);
}

static int verify_proof(int64_t now, const char *at, struct mandate_dpop *d,
			struct mandate_error *e)
{
	struct mandate_dpop_opts o = {.now = now,
				      .method = "POST",
				      .host = HOST,
				      .path = PATH,
				      .access_token = at,
				      .access_token_len = at ? strlen(at) : 0};

	return mandate_dpop_verify(proof, proof_len, &o, d, e);
}

static void dpop_good_proof_and_each_refusal(void **state)
{
	struct mandate_verify_opts vo = opts_at(NOW);
	struct mandate_dpop d;
	struct mandate_error e;
	struct spec s[3];

	(void)state;
	base3(s);
	build(s, 3);
	expect_ok(&vo);

	make_proof(K4, "p-1", "POST", HTU, NOW, value);
	assert_int_equal(verify_proof(NOW, value, &d, &e), 0);
	assert_memory_equal(d.jkt, W.thumb[K4], 32);
	assert_string_equal(d.jti, "p-1");
	assert_int_equal(d.iat, NOW);
	assert_int_equal(mandate_dpop_check_key(&d, &chain, &e), 0);
	/* window edges */
	assert_int_equal(verify_proof(NOW + 60, value, &d, &e), 0);
	assert_int_equal(verify_proof(NOW - 5, value, &d, &e), 0);
	assert_int_equal(verify_proof(NOW + 61, value, &d, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_stale);
	assert_string_equal(e.claim, "iat");
	/* dated ahead: at most MANDATE_DPOP_AHEAD_S */
	assert_int_equal(verify_proof(NOW - 6, value, &d, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_stale);
	/* another credential */
	assert_int_equal(verify_proof(NOW, "other", &d, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_wrong_ath);
	assert_string_equal(e.claim, "ath");

	/* signed by the middle delegate: verifies, but is not the leaf's */
	make_proof(K3, "p-2", "POST", HTU, NOW, value);
	assert_int_equal(verify_proof(NOW, value, &d, &e), 0);
	assert_int_equal(mandate_dpop_check_key(&d, &chain, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_wrong_key);
	assert_int_equal(e.link, 3);

	make_proof(K4, "p-3", "GET", HTU, NOW, value);
	assert_int_equal(verify_proof(NOW, value, &d, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_wrong_method);
	make_proof(K4, "p-3", "post", HTU, NOW, value);
	assert_int_equal(verify_proof(NOW, value, &d, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_wrong_method);

	{
		static const struct {
			const char *htu;
			bool ok;
		} urls[] = {
			{HTU, true},
			{"HTTP://WALLET.example:8080" PATH, true},
			{HTU "?x=1", true},
			{HTU "#frag", true},
			{"https://" HOST PATH, false},
			{"http://" HOST "/v1/Transfers", false},
			{"http://" HOST PATH "/", false},
			{"http://wallet.example" PATH, false},
			{"http://evil.example:8080" PATH, false},
			{"http://" HOST, false},
			{PATH, false},
		};
		for (size_t i = 0; i < ARRAY_SIZE(urls); i++) {
			make_proof(K4, "p-4", "POST", urls[i].htu, NOW, value);
			assert_int_equal(verify_proof(NOW, value, &d, &e),
					 urls[i].ok ? 0 : -1);
			if (!urls[i].ok) {
				assert_int_equal(e.code,
						 MANDATE_ERR_dpop_wrong_url);
				assert_string_equal(e.claim, "htu");
			}
		}
	}

	/* missing, tampered, no ath, no jwk, wrong typ, extra claim */
	assert_int_equal(mandate_dpop_verify(
				 NULL, 0,
				 &(struct mandate_dpop_opts){.now = NOW,
							     .method = "POST",
							     .host = HOST,
							     .path = PATH},
				 &d, &e),
			 -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_missing);
	make_proof(K4, "p-5", "POST", HTU, NOW, value);
	{
		char *sig = strrchr(proof, '.') + 1;
		sig[10] = sig[10] == 'A' ? 'B' : 'A';
	}
	assert_int_equal(verify_proof(NOW, value, &d, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_bad_signature);
	make_proof(K4, "p-6", "POST", HTU, NOW, NULL);
	assert_int_equal(verify_proof(NOW, value, &d, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_dpop_malformed);
	assert_string_equal(e.claim, "ath");
	{
		json_t *c =
			json_pack("{s:s,s:s,s:s,s:I}", "jti", "p-7", "htm",
				  "POST", "htu", HTU, "iat", (json_int_t)NOW);
		struct jose_sign_opts so = {.alg = JOSE_ALG_EDDSA,
					    .typ = "dpop+jwt"};
		assert_int_equal(jose_jwt_sign(W.sk[K4], &so, c, proof,
					       sizeof(proof), &proof_len),
				 0);
		assert_int_equal(verify_proof(NOW, NULL, &d, &e), -1);
		assert_int_equal(e.code, MANDATE_ERR_dpop_malformed);
		assert_string_equal(e.claim, "header");
		so.with_jwk = true;
		so.typ = "JWT";
		assert_int_equal(jose_jwt_sign(W.sk[K4], &so, c, proof,
					       sizeof(proof), &proof_len),
				 0);
		assert_int_equal(verify_proof(NOW, NULL, &d, &e), -1);
		assert_int_equal(e.code, MANDATE_ERR_dpop_malformed);
		so.typ = "dpop+jwt";
		assert_int_equal(jose_jwt_sign(W.sk[K4], &so, c, proof,
					       sizeof(proof), &proof_len),
				 0);
		assert_int_equal(verify_proof(NOW, NULL, &d, &e), 0);
		json_object_set_new(c, "nonce", json_string("n"));
		assert_int_equal(jose_jwt_sign(W.sk[K4], &so, c, proof,
					       sizeof(proof), &proof_len),
				 0);
		assert_int_equal(verify_proof(NOW, NULL, &d, &e), -1);
		assert_int_equal(e.code, MANDATE_ERR_dpop_malformed);
		assert_string_equal(e.claim, "claims");
		json_decref(c);
	}
	assert_int_equal(mandate_err_status(MANDATE_ERR_dpop_wrong_url), 401);
}

static void dpop_replays_are_refused_within_the_window(void **state)
{
	struct mandate_replay *r = mandate_replay_new(2);
	struct mandate_dpop a = {.iat = NOW}, b = {.iat = NOW},
			    c = {.iat = NOW};
	struct mandate_error e;

	(void)state;
	assert_null(mandate_replay_new(0));
	assert_non_null(r);
	memcpy(a.jkt, W.thumb[K4], 32);
	memcpy(b.jkt, W.thumb[K4], 32);
	memcpy(c.jkt, W.thumb[K5], 32);
	snprintf(a.jti, sizeof(a.jti), "one");
	snprintf(b.jti, sizeof(b.jti), "two");
	snprintf(c.jti, sizeof(c.jti), "one"); /* same jti, other key */

	assert_int_equal(mandate_replay_check_and_add(r, &a, NOW, &e), 0);
	assert_int_equal(mandate_replay_check_and_add(r, &a, NOW + 30, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_replay);
	assert_int_equal(mandate_replay_check_and_add(r, &b, NOW, &e), 0);
	/* full of live pairs: refused, not forgotten */
	assert_int_equal(mandate_replay_check_and_add(r, &c, NOW + 1, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_replay_cache_full);
	assert_int_equal(mandate_err_status(e.code), 503);
	assert_int_equal(mandate_replay_check_and_add(r, &a, NOW + 60, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_replay);
	/* past the window the oldest are evicted */
	assert_int_equal(mandate_replay_check_and_add(r, &c, NOW + 61, &e), 0);
	assert_int_equal(mandate_replay_check_and_add(r, &c, NOW + 62, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_replay);
	assert_int_equal(mandate_replay_check_and_add(r, &a, NOW + 62, &e), 0);
	mandate_replay_free(r);
	mandate_replay_free(NULL);
}

/* The table against a plain list: random keys, times and evictions.  Small
 * tables make clusters that wrap around the end (backward-shift delete). */
static void replay_model_run(unsigned cap, unsigned keys, unsigned steps,
			     uint32_t rnd)
{
	struct mandate_replay *r = mandate_replay_new(cap);
	struct {
		unsigned key;
		int64_t until;
	} model[64];
	unsigned n = 0;
	int64_t now = NOW;

	assert_true(cap <= ARRAY_SIZE(model));
	assert_non_null(r);
	for (unsigned step = 0; step < steps; step++) {
		struct mandate_dpop d;
		struct mandate_error e;
		unsigned key, i;
		int want, got;

		rnd = rnd * 1103515245u + 12345u;
		now += (rnd >> 16) % 4;
		rnd = rnd * 1103515245u + 12345u;
		key = (rnd >> 16) % keys;
		memset(&d, 0, sizeof(d));
		d.jkt[0] = (uint8_t)(key & 1);
		snprintf(d.jti, sizeof(d.jti), "k%u", key);
		d.iat = now;

		/* the model: drop the expired head entries (FIFO) */
		while (n && model[0].until < now) {
			memmove(model, model + 1, (n - 1) * sizeof(model[0]));
			n--;
		}
		for (i = 0; i < n && model[i].key != key; i++)
			;
		if (i < n)
			want = MANDATE_ERR_replay;
		else if (n == cap)
			want = MANDATE_ERR_replay_cache_full;
		else {
			want = 0;
			model[n].key = key;
			model[n].until = now + MANDATE_DPOP_WINDOW_S;
			n++;
		}
		got = mandate_replay_check_and_add(r, &d, now, &e);
		if (got != (want ? -1 : 0) || e.code != want)
			fail_msg("cap %u step %u key %u: got %s want %s", cap,
				 step, key, mandate_err_name(e.code),
				 mandate_err_name(want));
	}
	mandate_replay_free(r);
}

static void dpop_replay_cache_matches_a_model(void **state)
{
	(void)state;
	replay_model_run(37, 60, 20000, 12345);
	for (uint32_t seed = 1; seed <= 20; seed++) {
		replay_model_run(3, 40, 3000, seed);
		replay_model_run(5, 300, 3000, seed);
		replay_model_run(16, 100, 3000, seed);
	}
}

/* ---- revocation statements -------------------------------------------- */

static char stmt[JOSE_TOKEN_BYTES_MAX + 1];
static size_t stmt_len;

static void revocation_statements(void **state)
{
	struct mandate_revocation rv;
	struct mandate_error e;
	uint8_t h[32];

	(void)state;
	assert_int_equal(mandate_revocation_sign(W.sk[K2], "st-1", NOW, "mid.2",
						 false, stmt, sizeof(stmt),
						 &stmt_len),
			 0);
	assert_int_equal(
		mandate_revocation_verify(stmt, stmt_len, NOW + 300, &rv, &e),
		0);
	assert_memory_equal(rv.iss, W.thumb[K2], 32);
	assert_false(rv.all);
	assert_string_equal(rv.jti, "mid.2");
	crypto_hash_sha256(h, (const unsigned char *)"mid.2", 5);
	assert_memory_equal(rv.jti_hash, h, 32);
	assert_string_equal(rv.stmt_jti, "st-1");
	assert_int_equal(rv.iat, NOW);
	/* stale on both sides */
	assert_int_equal(
		mandate_revocation_verify(stmt, stmt_len, NOW + 301, &rv, &e),
		-1);
	assert_int_equal(e.code, MANDATE_ERR_stale);
	assert_string_equal(e.claim, "iat");
	assert_int_equal(
		mandate_revocation_verify(stmt, stmt_len, NOW - 301, &rv, &e),
		-1);
	assert_int_equal(e.code, MANDATE_ERR_stale);
	/* bad signature */
	{
		char *sig = strrchr(stmt, '.') + 1;
		sig[5] = sig[5] == 'A' ? 'B' : 'A';
	}
	assert_int_equal(
		mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e), -1);
	assert_int_equal(e.code, MANDATE_ERR_bad_signature);
	/* all */
	assert_int_equal(mandate_revocation_sign(W.sk[K3], "st-2", NOW, NULL,
						 true, stmt, sizeof(stmt),
						 &stmt_len),
			 0);
	assert_int_equal(
		mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e), 0);
	assert_true(rv.all);
	assert_string_equal(rv.jti, "");
	assert_memory_equal(rv.iss, W.thumb[K3], 32);
	/* a statement that names another issuer than its key */
	{
		char iss[JOSE_B64_32_BYTES];
		struct jose_sign_opts so = {.alg = JOSE_ALG_EDDSA,
					    .typ = MANDATE_REVOCATION_TYP,
					    .with_jwk = true};
		json_t *c;

		assert_int_equal(jose_thumbprint(&W.pk[OWNER], iss), 0);
		c = json_pack("{s:s,s:I,s:s,s:{s:b}}", "iss", iss, "iat",
			      (json_int_t)NOW, "jti", "st-3", "revoke", "all",
			      1);
		assert_int_equal(jose_jwt_sign(W.sk[K3], &so, c, stmt,
					       sizeof(stmt), &stmt_len),
				 0);
		assert_int_equal(
			mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e),
			-1);
		assert_int_equal(e.code, MANDATE_ERR_wrong_issuer);
		assert_string_equal(e.claim, "iss");
		/* malformed revoke members */
		json_object_set_new(c, "iss", json_string(iss));
		json_object_set_new(c, "revoke", json_pack("{s:b}", "all", 0));
		assert_int_equal(jose_jwt_sign(W.sk[OWNER], &so, c, stmt,
					       sizeof(stmt), &stmt_len),
				 0);
		assert_int_equal(
			mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e),
			-1);
		assert_int_equal(e.code, MANDATE_ERR_malformed);
		assert_string_equal(e.claim, "revoke.all");
		json_object_set_new(
			c, "revoke",
			json_pack("{s:b,s:s}", "all", 1, "jti", "x"));
		assert_int_equal(jose_jwt_sign(W.sk[OWNER], &so, c, stmt,
					       sizeof(stmt), &stmt_len),
				 0);
		assert_int_equal(
			mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e),
			-1);
		assert_string_equal(e.claim, "revoke");
		json_object_set_new(c, "revoke",
				    json_pack("{s:s}", "jti", "a b"));
		assert_int_equal(jose_jwt_sign(W.sk[OWNER], &so, c, stmt,
					       sizeof(stmt), &stmt_len),
				 0);
		assert_int_equal(
			mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e),
			-1);
		assert_string_equal(e.claim, "revoke.jti");
		json_object_set_new(c, "revoke",
				    json_pack("{s:s}", "jti", "ok"));
		json_object_set_new(c, "extra", json_true());
		assert_int_equal(jose_jwt_sign(W.sk[OWNER], &so, c, stmt,
					       sizeof(stmt), &stmt_len),
				 0);
		assert_int_equal(
			mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e),
			-1);
		assert_string_equal(e.claim, "claims");
		json_object_del(c, "extra");
		assert_int_equal(jose_jwt_sign(W.sk[OWNER], &so, c, stmt,
					       sizeof(stmt), &stmt_len),
				 0);
		assert_int_equal(
			mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e),
			0);
		/* without the jwk header: refused */
		so.with_jwk = false;
		assert_int_equal(jose_jwt_sign(W.sk[OWNER], &so, c, stmt,
					       sizeof(stmt), &stmt_len),
				 0);
		assert_int_equal(
			mandate_revocation_verify(stmt, stmt_len, NOW, &rv, &e),
			-1);
		assert_int_equal(e.code, MANDATE_ERR_malformed);
		json_decref(c);
	}
	/* the signer refuses nonsense */
	assert_int_equal(mandate_revocation_sign(W.sk[K3], "st", NOW, "x", true,
						 stmt, sizeof(stmt), &stmt_len),
			 -1);
	assert_int_equal(mandate_revocation_sign(W.sk[K3], "s t", NOW, "x",
						 false, stmt, sizeof(stmt),
						 &stmt_len),
			 -1);
}

/* ---- the jose opt-in for embedded keys -------------------------------- */

static void jose_embedded_jwk_is_opt_in(void **state)
{
	struct jose_pubkey got;
	struct jose_verify_opts vo = {.embedded_jwk_out = &got};
	struct jose_sign_opts so = {.alg = JOSE_ALG_EDDSA, .with_jwk = true};
	char tok[JOSE_TOKEN_BYTES_MAX + 1];
	struct jose_jws jws;
	size_t n;

	(void)state;
	assert_int_equal(
		jose_jws_sign(W.sk[K5], &so, "hi", 2, tok, sizeof(tok), &n), 0);
	assert_int_equal(jose_jws_verify(tok, n, &vo, &jws), 0);
	assert_memory_equal(got.x, W.pk[K5].x, 32);
	jose_jws_clear(&jws);
	/* without the opt-in it is still refused */
	vo.embedded_jwk_out = NULL;
	vo.lookup = NULL;
	assert_int_equal(jose_jws_verify(tok, n, &vo, &jws),
			 -JOSE_invalid_argument);
	so.with_jwk = false;
	assert_int_equal(
		jose_jws_sign(W.sk[K5], &so, "hi", 2, tok, sizeof(tok), &n), 0);
	vo.embedded_jwk_out = &got;
	assert_int_equal(jose_jws_verify(tok, n, &vo, &jws), -JOSE_bad_header);
}

/* ---- the error table -------------------------------------------------- */

static void every_error_has_a_stable_name_and_status(void **state)
{
	(void)state;
	assert_string_equal(mandate_err_name(MANDATE_ERR_ok), "ok");
	assert_string_equal(mandate_err_name(MANDATE_ERR_widened), "widened");
	assert_null(mandate_err_name(MANDATE_ERR_COUNT));
	assert_null(mandate_err_name(-1));
	assert_int_equal(mandate_err_status(-1), 500);
	for (int i = 1; i < MANDATE_ERR_COUNT; i++) {
		const char *n = mandate_err_name(i);
		int st = mandate_err_status(i);
		assert_non_null(n);
		assert_non_null(mandate_err_title(i));
		/* the one status docs/authz.md ("Refusals") gives it */
		char slug[64];
		size_t k = 0;
		for (; n[k] && k + 1 < sizeof(slug); k++)
			slug[k] = n[k] == '_' ? '-' : n[k];
		slug[k] = '\0';
		assert_int_equal(st, doc_status("docs/authz.md", slug));
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n, mandate_err_name(j));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(three_link_chain_is_accepted, reset),
		cmocka_unit_test_setup(admin_root_may_grant_everything, reset),
		cmocka_unit_test_setup(
			certificate_bound_link_is_the_last_and_names_its_cert,
			reset),
		cmocka_unit_test_setup(eight_links_pass_and_nine_are_too_deep,
				       reset),
		cmocka_unit_test_setup(every_narrowing_rule_is_enforced, reset),
		cmocka_unit_test_setup(narrowing_reports_the_middle_link,
				       reset),
		cmocka_unit_test_setup(
			tampered_signature_of_each_link_is_refused, reset),
		cmocka_unit_test_setup(link_signed_by_another_key_is_refused,
				       reset),
		cmocka_unit_test_setup(prn_and_iss_must_follow_the_parent,
				       reset),
		cmocka_unit_test_setup(a_delegate_key_or_jti_may_not_repeat,
				       reset),
		cmocka_unit_test_setup(empty_or_oversized_values_are_malformed,
				       reset),
		cmocka_unit_test_setup(time_of_every_link_is_checked, reset),
		cmocka_unit_test_setup(audience_is_checked, reset),
		cmocka_unit_test_setup(revoked_middle_link_kills_the_chain,
				       reset),
		cmocka_unit_test_setup(root_must_own_every_account, reset),
		cmocka_unit_test_setup(claims_are_strict, reset),
		cmocka_unit_test_setup(headers_and_algorithms_are_strict,
				       reset),
		cmocka_unit_test_setup(cached_chain_gives_the_same_answers,
				       reset),
		cmocka_unit_test_setup(rights_round_trip_and_check_requests,
				       reset),
		cmocka_unit_test_setup(
			transfer_flags_need_the_accounts_they_touch, reset),
		cmocka_unit_test_setup(dpop_good_proof_and_each_refusal, reset),
		cmocka_unit_test_setup(
			dpop_replays_are_refused_within_the_window, reset),
		cmocka_unit_test_setup(dpop_replay_cache_matches_a_model,
				       reset),
		cmocka_unit_test_setup(revocation_statements, reset),
		cmocka_unit_test_setup(jose_embedded_jwk_is_opt_in, reset),
		cmocka_unit_test(every_error_has_a_stable_name_and_status),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
