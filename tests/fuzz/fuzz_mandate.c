/*
 * fuzz_mandate.c - libFuzzer driver for delegation chains, DPoP proofs,
 * revocation statements and rights (src/crypto/mandate.c).
 *
 * A mandate and its proof arrive before any authentication, so every
 * byte is hostile.  The first input byte picks a mode (modulo 7):
 *   0  the rest is an Authorization value for mandate_chain_verify, with
 *      a fixed root lookup (every iss maps to key 0; admin when the first
 *      byte of iss is odd), verified without a cache and twice with one:
 *      the three answers must be the same (a cache hit changes nothing);
 *   1  the rest is up to 8 claim sets separated by NUL; the harness signs
 *      set k with key k-1 (link 1 with the root key) as a link, after
 *      replacing the text $PRN with the previous link's hash, and verifies
 *      the chain: this reaches everything behind the signatures;
 *   2  the rest is a DPoP proof (fixed method, URL, access token, time);
 *   3  the rest is DPoP claims, which the harness signs with key 1 and a
 *      jwk header;
 *   4  the rest is a revocation statement;
 *   5  the rest is revocation claims, signed by the harness with key 2;
 *   6  the rest is JSON for mandate_right_from_json; an accepted right
 *      must serialise and parse back to the same struct.
 * Every refusal must carry a code of the table and a NUL-terminated
 * claim; an accepted chain must be consistent (hashes of its links, the
 * effective right is the last link's).
 *
 * Seed corpus: compiled with -DMANDATE_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DMANDATE_CORPUS_MAIN -Isrc \
 *     tests/fuzz/fuzz_mandate.c src/crypto/mandate.c src/crypto/jose.c \
 *     src/crypto/b64url.c src/core/u128.c \
 *     $(pkg-config --cflags --libs jansson libsodium) -lpthread -o gen && \
 *   ./gen tests/fuzz/corpus/mandate
 */
#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "crypto/mandate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_mandate: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define NOW   INT64_C(1700000000)
#define NKEYS (MANDATE_LINKS_MAX + 1)
#define HOST  "wallet.example"
#define PATH  "/v1/transfers"
#define AT    "the-access-token"
#define AUD   "https://wallet.example"

static struct jose_seckey *keys[NKEYS];
static struct jose_pubkey pubs[NKEYS];
static struct mandate_cache *cache;

static void init(void)
{
	static int done;

	if (done)
		return;
	CHECK(jose_init() == 0);
	for (int i = 0; i < NKEYS; i++) {
		unsigned char seed[32];
		memset(seed, 0x60 + i, sizeof(seed));
		CHECK(jose_seckey_from_seed(seed, NULL, &keys[i]) == 0);
		jose_seckey_public(keys[i], &pubs[i]);
	}
	cache = mandate_cache_new(256);
	CHECK(cache);
	done = 1;
}

static int root_principal(void *ctx, const uint8_t iss[32], uint8_t pub[32],
			  bool *is_admin)
{
	(void)ctx;
	memcpy(pub, pubs[0].x, 32);
	*is_admin = iss[0] & 1;
	return 0;
}

static bool root_owns(void *ctx, const uint8_t iss[32], u128 account)
{
	(void)ctx;
	(void)iss;
	return account < 5000;
}

static bool root_revoked(void *ctx, const uint8_t iss[32],
			 const uint8_t jti_hash[32])
{
	(void)ctx;
	(void)iss;
	return jti_hash[0] == 0xff;
}

static const struct mandate_root_ops root = {.principal = root_principal,
					     .owns = root_owns,
					     .revoked = root_revoked};

static void check_error(int ret, const struct mandate_error *e)
{
	if (ret == 0) {
		CHECK(e->code == MANDATE_ERR_ok);
		return;
	}
	CHECK(ret == -1);
	CHECK(e->code > 0 && e->code < MANDATE_ERR_COUNT);
	CHECK(mandate_err_name(e->code) != NULL);
	CHECK(memchr(e->claim, '\0', sizeof(e->claim)) != NULL);
	CHECK(e->link >= 0 && e->link <= MANDATE_LINKS_MAX + 1);
}

static struct mandate_chain c1, c2;

static void chain_consistent(const char *v, size_t len,
			     const struct mandate_chain *c)
{
	const char *s = v;

	CHECK(c->n >= 1 && c->n <= MANDATE_LINKS_MAX);
	for (unsigned i = 0; i < c->n; i++) {
		const char *t = memchr(s, '~', len - (size_t)(s - v));
		size_t n = t ? (size_t)(t - s) : len - (size_t)(s - v);
		uint8_t h[32];
		crypto_hash_sha256(h, (const unsigned char *)s, n);
		CHECK(memcmp(h, c->links[i].hash, 32) == 0);
		CHECK(c->links[i].exp > NOW - 300);
		s = t ? t + 1 : s + n;
	}
	CHECK(memcmp(&c->effective, &c->links[c->n - 1].right,
		     sizeof(c->effective)) == 0);
}

static void verify_chain(const char *v, size_t len)
{
	struct mandate_verify_opts o = {
		.now = NOW, .leeway_s = 60, .audience = AUD, .root = &root};
	struct mandate_error e1, e2;
	int r1, r2;

	r1 = mandate_chain_verify(v, len, &o, &c1, &e1);
	check_error(r1, &e1);
	if (r1 == 0)
		chain_consistent(v, len, &c1);
	o.cache = cache;
	for (int pass = 0; pass < 2; pass++) {
		r2 = mandate_chain_verify(v, len, &o, &c2, &e2);
		CHECK(r1 == r2);
		CHECK(e1.code == e2.code && e1.link == e2.link);
		CHECK(strcmp(e1.claim, e2.claim) == 0);
		if (r1 == 0)
			CHECK(c1.n == c2.n &&
			      memcmp(c1.links, c2.links,
				     c1.n * sizeof(c1.links[0])) == 0);
	}
}

static void sign_chain(const unsigned char *data, size_t size)
{
	static char value[MANDATE_AUTHZ_BYTES_MAX + 1];
	char tok[JOSE_TOKEN_BYTES_MAX + 1], prn[JOSE_B64_32_BYTES] = "";
	char payload[JOSE_PAYLOAD_BYTES_MAX + 64];
	struct jose_sign_opts so = {.alg = JOSE_ALG_EDDSA, .typ = MANDATE_TYP};
	size_t vlen = 0, off = 0;

	for (unsigned k = 0; k < MANDATE_LINKS_MAX && off <= size; k++) {
		const unsigned char *nul = memchr(data + off, '\0', size - off);
		size_t n = nul ? (size_t)(nul - data) - off : size - off;
		size_t pl = 0, tl;
		uint8_t h[32];

		/* the payload with $PRN replaced */
		for (size_t i = 0; i < n && pl < JOSE_PAYLOAD_BYTES_MAX; i++) {
			if (i + 4 <= n &&
			    memcmp(data + off + i, "$PRN", 4) == 0 && prn[0]) {
				memcpy(payload + pl, prn, 43);
				pl += 43;
				i += 3;
				continue;
			}
			payload[pl++] = (char)data[off + i];
		}
		if (pl == 0 || pl > JOSE_PAYLOAD_BYTES_MAX)
			break;
		if (jose_jws_sign(keys[k], &so, payload, pl, tok, sizeof(tok),
				  &tl) != 0)
			break;
		if (vlen)
			value[vlen++] = '~';
		memcpy(value + vlen, tok, tl);
		vlen += tl;
		crypto_hash_sha256(h, (const unsigned char *)tok, tl);
		CHECK(b64url_encode(prn, sizeof(prn), h, 32) == 0);
		if (!nul)
			break;
		off += n + 1;
	}
	if (vlen)
		verify_chain(value, vlen);
}

static void verify_dpop(const char *p, size_t len)
{
	struct mandate_dpop_opts o = {.now = NOW,
				      .method = "POST",
				      .host = HOST,
				      .path = PATH,
				      .access_token = AT,
				      .access_token_len = strlen(AT)};
	struct mandate_dpop d;
	struct mandate_error e;
	int r = mandate_dpop_verify(p, len, &o, &d, &e);

	check_error(r, &e);
	if (r == 0) {
		static struct mandate_replay *rp;
		if (!rp)
			rp = mandate_replay_new(64);
		CHECK(rp);
		CHECK(strlen(d.jti) >= 1 && d.iat >= NOW - 60 &&
		      d.iat <= NOW + 60);
		r = mandate_replay_check_and_add(rp, &d, NOW, &e);
		check_error(r, &e);
		/* the same proof right after is a replay */
		CHECK(mandate_replay_check_and_add(rp, &d, NOW, &e) == -1);
		CHECK(e.code == MANDATE_ERR_replay);
	}
}

static void verify_revocation(const char *p, size_t len)
{
	struct mandate_revocation rv;
	struct mandate_error e;
	int r = mandate_revocation_verify(p, len, NOW, &rv, &e);

	check_error(r, &e);
	if (r == 0)
		CHECK(rv.all == (rv.jti[0] == '\0'));
}

static void sign_and_verify(int key, const char *typ, const unsigned char *data,
			    size_t size, void (*verify)(const char *, size_t))
{
	struct jose_sign_opts so = {
		.alg = JOSE_ALG_EDDSA, .typ = typ, .with_jwk = true};
	char tok[JOSE_TOKEN_BYTES_MAX + 1];
	size_t n;

	if (jose_jws_sign(keys[key], &so, data, size, tok, sizeof(tok), &n) ==
	    0)
		verify(tok, n);
}

static void right_round_trip(const unsigned char *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	struct mandate_right r, back;
	struct mandate_error e;
	json_t *out;
	int ret;

	if (!j)
		return;
	ret = mandate_right_from_json(j, &r, &e);
	check_error(ret, &e);
	json_decref(j);
	if (ret < 0)
		return;
	out = mandate_right_to_json(&r);
	CHECK(out);
	CHECK(mandate_right_from_json(out, &back, &e) == 0);
	CHECK(memcmp(&r, &back, sizeof(r)) == 0);
	json_decref(out);
	/* the request checks never fail on a well-formed right */
	struct transfer t = {.debit_account_id = 1,
			     .credit_account_id = 2,
			     .ledger = 1,
			     .amount = 100};
	ret = mandate_right_check_transfer(&r, &t, NULL, &e);
	check_error(ret, &e);
	ret = mandate_right_check_op(&r, MANDATE_OP_ACCOUNTS_READ, false, 0,
				     &e);
	check_error(ret, &e);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *rest = (const char *)data + 1;

	init();
	if (size < 1 || size > MANDATE_AUTHZ_BYTES_MAX + 1)
		return 0;
	switch (data[0] % 7) {
	case 0: verify_chain(rest, size - 1); break;
	case 1: sign_chain(data + 1, size - 1); break;
	case 2: verify_dpop(rest, size - 1); break;
	case 3:
		if (size > 1)
			sign_and_verify(1, MANDATE_DPOP_TYP, data + 1, size - 1,
					verify_dpop);
		break;
	case 4: verify_revocation(rest, size - 1); break;
	case 5:
		if (size > 1)
			sign_and_verify(2, MANDATE_REVOCATION_TYP, data + 1,
					size - 1, verify_revocation);
		break;
	default: right_round_trip(data + 1, size - 1); break;
	}
	return 0;
}

#ifdef MANDATE_CORPUS_MAIN
/* ---- seed generator --------------------------------------------------- */

static const char *dir;

static void put(const char *name, char mode, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f);
	CHECK(fputc(mode, f) == mode);
	CHECK(fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

static void right_of(struct mandate_right *r, unsigned ops, u128 acc)
{
	memset(r, 0, sizeof(*r));
	r->ops = ops;
	r->n_accounts = 1;
	r->accounts[0] = acc;
	r->n_ledgers = 1;
	r->ledgers[0] = 1;
	r->n_counterparties = 1;
	r->counterparties[0] = 2001;
	r->has_per_transfer_cap = r->has_total_cap = r->has_uses = true;
	r->per_transfer_cap = 500;
	r->total_cap = 5000;
	r->uses = 10;
}

int main(int argc, char **argv)
{
	static char value[MANDATE_AUTHZ_BYTES_MAX];
	static char toks[3][JOSE_TOKEN_BYTES_MAX + 1];
	size_t tl[3], vlen = 0, n;
	struct mandate_right r[3];
	char buf[JOSE_TOKEN_BYTES_MAX + 1];
	static const char *const jtis[] = {"root-1", "mid-2", "leaf-3"};

	CHECK(argc == 2);
	dir = argv[1];
	init();

	/* mode 0: a good 3-link chain signed by keys 0, 1, 2 */
	right_of(&r[0], MANDATE_OP_TRANSFERS_CREATE | MANDATE_OP_ACCOUNTS_READ,
		 1001);
	r[1] = r[0];
	r[1].ops = MANDATE_OP_TRANSFERS_CREATE;
	r[2] = r[1];
	r[2].per_transfer_cap = 100;
	for (int i = 0; i < 3; i++) {
		struct mandate_issue in = {.jti = jtis[i],
					   .iat = NOW - 10,
					   .nbf = NOW - 20,
					   .exp = NOW + 3600 - i,
					   .delegate = &pubs[i + 1],
					   .right = &r[i],
					   .aud = i == 1 ? AUD : NULL,
					   .parent_compact =
						   i ? toks[i - 1] : NULL,
					   .parent_len = i ? tl[i - 1] : 0};
		CHECK(mandate_link_sign(keys[i], &in, toks[i], sizeof(toks[i]),
					&tl[i]) == 0);
		if (i)
			value[vlen++] = '~';
		memcpy(value + vlen, toks[i], tl[i]);
		vlen += tl[i];
	}
	put("chain3", 0, value, vlen);
	put("chain1", 0, toks[0], tl[0]);
	{
		/* an administrator root: "*" and no accounts */
		struct mandate_right all = {.ops = MANDATE_OP_ALL,
					    .all_ops = true};
		struct mandate_issue in = {.jti = "adm",
					   .iat = NOW,
					   .exp = NOW + 60,
					   .delegate = &pubs[1],
					   .right = &all};
		CHECK(mandate_link_sign(keys[0], &in, buf, sizeof(buf), &n) ==
		      0);
		put("chain_admin", 0, buf, n);
	}

	/* mode 1: claim sets, $PRN for the parent */
	{
		char sets[4096];
		int len = 0;
		for (int i = 0; i < 3; i++) {
			char tp[JOSE_B64_32_BYTES];
			json_t *c;
			char *t;
			CHECK(jose_thumbprint(&pubs[i], tp) == 0);
			{
				char jwk[JOSE_JWK_BYTES_MAX];
				char sub[JOSE_B64_32_BYTES];
				CHECK(jose_pubkey_to_jwk(&pubs[i + 1], jwk,
							 sizeof(jwk)) == 0);
				CHECK(jose_thumbprint(&pubs[i + 1], sub) == 0);
				c = json_pack(
					"{s:s,s:s,s:{s:o},s:I,s:I,s:s,s:o}",
					"iss", tp, "sub", sub, "cnf", "jwk",
					json_loads(jwk, 0, NULL), "iat",
					(json_int_t)NOW, "exp",
					(json_int_t)(NOW + 100 - i), "jti",
					jtis[i], "right",
					mandate_right_to_json(&r[i]));
			}
			CHECK(c);
			if (i)
				json_object_set_new(c, "prn",
						    json_string("$PRN"));
			t = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
			CHECK(t);
			len += snprintf(sets + len, sizeof(sets) - (size_t)len,
					"%s%c", t, 0);
			free(t);
			json_decref(c);
		}
		put("claims3", 1, sets, (size_t)len - 1);
	}

	/* modes 2 and 3: a good proof and its claims */
	CHECK(mandate_dpop_sign(keys[1], "proof-1", "POST", "http://" HOST PATH,
				NOW, AT, strlen(AT), buf, sizeof(buf),
				&n) == 0);
	put("dpop", 2, buf, n);
	{
		char ath[JOSE_B64_32_BYTES], claims[512];
		uint8_t h[32];
		int len;
		crypto_hash_sha256(h, (const unsigned char *)AT, strlen(AT));
		CHECK(b64url_encode(ath, sizeof(ath), h, 32) == 0);
		len = snprintf(claims, sizeof(claims),
			       "{\"ath\":\"%s\",\"htm\":\"POST\",\"htu\":"
			       "\"http://" HOST PATH "\",\"iat\":1700000000,"
			       "\"jti\":\"proof-2\"}",
			       ath);
		put("dpop_claims", 3, claims, (size_t)len);
	}

	/* modes 4 and 5: statements and their claims */
	CHECK(mandate_revocation_sign(keys[2], "st-1", NOW, "mid-2", false, buf,
				      sizeof(buf), &n) == 0);
	put("revoke_jti", 4, buf, n);
	CHECK(mandate_revocation_sign(keys[2], "st-2", NOW, NULL, true, buf,
				      sizeof(buf), &n) == 0);
	put("revoke_all", 4, buf, n);
	{
		char tp[JOSE_B64_32_BYTES], claims[256];
		int len;
		CHECK(jose_thumbprint(&pubs[2], tp) == 0);
		len = snprintf(claims, sizeof(claims),
			       "{\"iat\":1700000000,\"iss\":\"%s\",\"jti\":"
			       "\"st-3\",\"revoke\":{\"jti\":\"x\"}}",
			       tp);
		put("revoke_claims", 5, claims, (size_t)len);
	}

	/* mode 6: rights */
	{
		json_t *j = mandate_right_to_json(&r[0]);
		char *t = json_dumps(j, JSON_COMPACT);
		put("right", 6, t, strlen(t));
		free(t);
		json_decref(j);
		put("right_star", 6, "{\"ops\":[\"*\"]}", 13);
	}
	return 0;
}
#endif
