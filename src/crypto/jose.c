/*
 * jose.c - Ed25519 JWKs, thumbprints, compact JWS with EdDSA, registered
 * JWT claims (see jose.h for the rules and limits).
 *
 * The verifier is written as a list of refusals: each check either passes
 * or returns its own code, in the order jose.h documents, and nothing is
 * accepted unless the signature verifies under a key the caller chose.
 * JSON goes through jansson with duplicate member names rejected, after a
 * nesting-depth scan so that the depth limit is ours, not the parser's.
 * Ed25519 is libsodium's (crypto_sign_verify_detached refuses
 * non-canonical S and small-order R and public keys).
 */
#include "crypto/jose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "crypto/b64url.h"

#include "banned.h"

#define ERR(name) (-JOSE_##name)

#define SIG_TEXT_BYTES	  B64URL_ENCODED_LEN(JOSE_ED25519_SIG_BYTES)
#define HEADER_TEXT_MAX	  B64URL_ENCODED_LEN(JOSE_HEADER_BYTES_MAX)
#define PAYLOAD_TEXT_MAX  B64URL_ENCODED_LEN(JOSE_PAYLOAD_BYTES_MAX)
#define APPLICATION	  "application/"
#define APPLICATION_BYTES (sizeof(APPLICATION) - 1)

_Static_assert(crypto_sign_PUBLICKEYBYTES == JOSE_ED25519_PUBLIC_BYTES,
	       "Ed25519 public key size");
_Static_assert(crypto_sign_SEEDBYTES == JOSE_ED25519_SEED_BYTES,
	       "Ed25519 seed size");
_Static_assert(crypto_sign_BYTES == JOSE_ED25519_SIG_BYTES,
	       "Ed25519 signature size");
_Static_assert(HEADER_TEXT_MAX + 1 + PAYLOAD_TEXT_MAX + 1 + SIG_TEXT_BYTES <=
		       JOSE_TOKEN_BYTES_MAX,
	       "a header and a payload within their limits fit in a token");
_Static_assert(B64URL_ENCODED_LEN(32) + 1 == JOSE_B64_32_BYTES,
	       "base64url of 32 bytes");

struct jose_seckey {
	unsigned char sk[crypto_sign_SECRETKEYBYTES]; /* seed || public */
	struct jose_pubkey pub;
};

static const char *const err_names[] = {
#define X(name, desc) #name,
	JOSE_ERRORS(X)
#undef X
};

static const char *const err_descs[] = {
#define X(name, desc) desc,
	JOSE_ERRORS(X)
#undef X
};

_Static_assert(sizeof(err_names) / sizeof(err_names[0]) == JOSE_ERR_COUNT,
	       "one name per JOSE error");

const char *jose_err_name(int ret)
{
	if (ret > 0 || ret <= -JOSE_ERR_COUNT)
		return NULL;
	return err_names[-ret];
}

const char *jose_err_desc(int ret)
{
	if (ret > 0 || ret <= -JOSE_ERR_COUNT)
		return NULL;
	return err_descs[-ret];
}

int jose_init(void)
{
	return sodium_init() < 0 ? ERR(internal) : 0;
}

/* ---- small helpers ---------------------------------------------------- */

/* kid and typ: 1..max characters of 0x21..0x7e except '"' and '\', so
 * they can be written into JSON without escaping. */
static bool token_chars_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];
		if (n >= max || c < 0x21 || c > 0x7e || c == '"' || c == '\\')
			return false;
	}
	return n > 0;
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

/* "application/" is optional on either side (RFC 7515 4.1.9). */
static bool typ_matches(const char *have, const char *want)
{
	size_t hn = strlen(have), wn = strlen(want);

	if (hn > APPLICATION_BYTES &&
	    ascii_case_equal(have, APPLICATION, APPLICATION_BYTES)) {
		have += APPLICATION_BYTES;
		hn -= APPLICATION_BYTES;
	}
	if (wn > APPLICATION_BYTES &&
	    ascii_case_equal(want, APPLICATION, APPLICATION_BYTES)) {
		want += APPLICATION_BYTES;
		wn -= APPLICATION_BYTES;
	}
	return hn == wn && ascii_case_equal(have, want, hn);
}

/* Nesting depth of arrays and objects, counting outside strings only. */
static bool json_depth_ok(const unsigned char *s, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool in_str = false, esc = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				return false;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}

/* Parses an object; bad is the code for anything but an object. */
static int load_object(const void *buf, size_t len, int bad, json_t **out)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	if (!json_depth_ok(buf, len, JOSE_JSON_DEPTH_MAX))
		return ERR(too_deep);
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		return json_error_code(&jerr) == json_error_duplicate_key
			       ? ERR(duplicate_key)
			       : bad;
	if (!json_is_object(v)) {
		json_decref(v);
		return bad;
	}
	*out = v;
	return 0;
}

/* A member that must be a string when present: 1 present, 0 absent,
 * negative when it is there but not a string. */
static int get_string(const json_t *obj, const char *name, int bad,
		      const char **out)
{
	const json_t *v = json_object_get(obj, name);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad;
	*out = json_string_value(v);
	return 1;
}

/* ---- keys ------------------------------------------------------------- */

static const char *const private_members[] = {"d",  "p",  "q",	 "dp",
					      "dq", "qi", "oth", "k"};
static const char *const foreign_members[] = {"y", "n", "e"};

/*
 * crypto_core_ed25519_is_valid_point costs about as much as a signature
 * check (the subgroup test is a scalar multiplication), and the same
 * keys come back on every request (a device's DPoP key, a chain's
 * delegates).  Points found valid are remembered, by value, in a small
 * direct-mapped table; only "valid" is cached, so a refusal is always
 * recomputed.  The table holds public data only.
 */
#define VALID_POINTS 1024u
static struct {
	pthread_mutex_t lock;
	unsigned char x[VALID_POINTS][JOSE_ED25519_PUBLIC_BYTES];
	bool used[VALID_POINTS];
} valid_points = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool valid_point(const unsigned char x[JOSE_ED25519_PUBLIC_BYTES])
{
	uint32_t h;
	memcpy(&h, x + 8, sizeof(h));
	unsigned slot = h & (VALID_POINTS - 1);
	bool hit;

	pthread_mutex_lock(&valid_points.lock);
	hit = valid_points.used[slot] &&
	      memcmp(valid_points.x[slot], x, JOSE_ED25519_PUBLIC_BYTES) == 0;
	pthread_mutex_unlock(&valid_points.lock);
	if (hit)
		return true;
	if (!crypto_core_ed25519_is_valid_point(x))
		return false;
	pthread_mutex_lock(&valid_points.lock);
	memcpy(valid_points.x[slot], x, JOSE_ED25519_PUBLIC_BYTES);
	valid_points.used[slot] = true;
	pthread_mutex_unlock(&valid_points.lock);
	return true;
}

/*
 * Parses an OKP Ed25519 JWK into pub and, when seed is not NULL, its
 * 32-byte "d" into seed (wiped on failure).
 */
static int parse_okp(const char *json, size_t len, struct jose_pubkey *pub,
		     unsigned char *seed)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	const char *s;
	json_t *root = NULL, *d;
	size_t n;
	int ret;

	memset(pub, 0, sizeof(*pub));
	if (!json)
		return ERR(invalid_argument);
	if (len > JOSE_JWK_BYTES_MAX)
		return ERR(too_large);
	ret = load_object(json, len, ERR(key_bad_json), &root);
	if (ret < 0)
		return ret;

	if (get_string(root, "kty", -1, &s) != 1 || strcmp(s, "OKP") != 0) {
		ret = ERR(key_bad_kty);
		goto cleanup;
	}
	if (get_string(root, "crv", -1, &s) != 1 || strcmp(s, "Ed25519") != 0) {
		ret = ERR(key_bad_crv);
		goto cleanup;
	}
	for (size_t i = 0; i < sizeof(private_members) / sizeof(char *); i++) {
		if (seed && i == 0)
			continue; /* "d" is expected in a private key */
		if (json_object_get(root, private_members[i])) {
			ret = seed ? ERR(key_foreign_member)
				   : ERR(key_private_member);
			goto cleanup;
		}
	}
	for (size_t i = 0; i < sizeof(foreign_members) / sizeof(char *); i++) {
		if (json_object_get(root, foreign_members[i])) {
			ret = ERR(key_foreign_member);
			goto cleanup;
		}
	}
	if (get_string(root, "x", -1, &s) != 1 ||
	    b64url_decode(pub->x, sizeof(pub->x), s, strlen(s), &n) < 0 ||
	    n != sizeof(pub->x) || !valid_point(pub->x)) {
		ret = ERR(key_bad_x);
		goto cleanup;
	}
	ret = get_string(root, "kid", ERR(bad_kid), &s);
	if (ret < 0)
		goto cleanup;
	if (ret == 1) {
		if (!token_chars_ok(s, JOSE_KID_BYTES_MAX)) {
			ret = ERR(bad_kid);
			goto cleanup;
		}
		memcpy(pub->kid, s, strlen(s) + 1);
	}
	ret = get_string(root, "use", ERR(key_not_for_signing), &s);
	if (ret < 0 || (ret == 1 && strcmp(s, "sig") != 0)) {
		ret = ERR(key_not_for_signing);
		goto cleanup;
	}
	ret = get_string(root, "alg", ERR(key_not_for_signing), &s);
	if (ret < 0 || (ret == 1 && strcmp(s, "EdDSA") != 0 &&
			strcmp(s, "Ed25519") != 0)) {
		ret = ERR(key_not_for_signing);
		goto cleanup;
	}
	ret = 0;
	if (!seed)
		goto cleanup;

	d = json_object_get(root, "d");
	if (!d || !json_is_string(d) ||
	    b64url_decode(seed, JOSE_ED25519_SEED_BYTES, json_string_value(d),
			  json_string_length(d), &n) < 0 ||
	    n != JOSE_ED25519_SEED_BYTES) {
		ret = ERR(key_bad_d);
		goto cleanup;
	}
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
		ret = ERR(internal);
		goto cleanup;
	}
	if (sodium_memcmp(pk, pub->x, sizeof(pk)) != 0)
		ret = ERR(key_mismatch);

cleanup:
	if (root) {
		/* The tree's copy of "d" is ours to wipe before it is freed. */
		d = json_object_get(root, "d");
		if (d && json_is_string(d))
			sodium_memzero((char *)json_string_value(d),
				       json_string_length(d));
		json_decref(root);
	}
	sodium_memzero(sk, sizeof(sk));
	if (ret < 0 && seed)
		sodium_memzero(seed, JOSE_ED25519_SEED_BYTES);
	return ret;
}

int jose_pubkey_parse_jwk(const char *json, size_t len, struct jose_pubkey *out)
{
	return parse_okp(json, len, out, NULL);
}

int jose_pubkey_to_jwk(const struct jose_pubkey *key, char *out,
		       size_t out_size)
{
	char x[JOSE_B64_32_BYTES];
	int n;

	if (out_size > 0)
		out[0] = '\0';
	if (b64url_encode(x, sizeof(x), key->x, sizeof(key->x)) < 0)
		return ERR(internal);
	if (key->kid[0])
		n = snprintf(out, out_size,
			     "{\"crv\":\"Ed25519\",\"kid\":\"%s\","
			     "\"kty\":\"OKP\",\"x\":\"%s\"}",
			     key->kid, x);
	else
		n = snprintf(
			out, out_size,
			"{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}",
			x);
	if (n < 0 || (size_t)n >= out_size) {
		if (out_size > 0)
			out[0] = '\0';
		return ERR(buffer_too_small);
	}
	return 0;
}

int jose_thumbprint(const struct jose_pubkey *key, char out[JOSE_B64_32_BYTES])
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char x[JOSE_B64_32_BYTES];
	char canon[96];
	int n;

	out[0] = '\0';
	if (b64url_encode(x, sizeof(x), key->x, sizeof(key->x)) < 0)
		return ERR(internal);
	/* RFC 7638 3.2: required members only, sorted, no whitespace. */
	n = snprintf(canon, sizeof(canon),
		     "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
	if (n < 0 || (size_t)n >= sizeof(canon))
		return ERR(internal);
	crypto_hash_sha256(hash, (const unsigned char *)canon, (size_t)n);
	if (b64url_encode(out, JOSE_B64_32_BYTES, hash, sizeof(hash)) < 0)
		return ERR(internal);
	return 0;
}

int jose_seckey_from_seed(const unsigned char seed[JOSE_ED25519_SEED_BYTES],
			  const char *kid, struct jose_seckey **out)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	struct jose_seckey *k;

	*out = NULL;
	if (!seed)
		return ERR(invalid_argument);
	if (kid && kid[0] && !token_chars_ok(kid, JOSE_KID_BYTES_MAX))
		return ERR(bad_kid);
	if (sodium_init() < 0)
		return ERR(internal);
	k = sodium_malloc(sizeof(*k));
	if (!k)
		return ERR(no_memory);
	memset(&k->pub, 0, sizeof(k->pub));
	if (crypto_sign_seed_keypair(pk, k->sk, seed) != 0) {
		sodium_free(k);
		return ERR(internal);
	}
	memcpy(k->pub.x, pk, sizeof(pk));
	if (kid)
		memcpy(k->pub.kid, kid, strlen(kid) + 1);
	/* Nothing writes the key again until sodium_free wipes it. */
	sodium_mprotect_readonly(k);
	*out = k;
	return 0;
}

int jose_seckey_generate(const char *kid, struct jose_seckey **out)
{
	unsigned char seed[JOSE_ED25519_SEED_BYTES];
	int ret;

	*out = NULL;
	if (sodium_init() < 0)
		return ERR(internal);
	randombytes_buf(seed, sizeof(seed));
	ret = jose_seckey_from_seed(seed, kid, out);
	sodium_memzero(seed, sizeof(seed));
	return ret;
}

int jose_seckey_parse_jwk(const char *json, size_t len,
			  struct jose_seckey **out)
{
	unsigned char seed[JOSE_ED25519_SEED_BYTES];
	struct jose_pubkey pub;
	int ret;

	*out = NULL;
	ret = parse_okp(json, len, &pub, seed);
	if (ret == 0)
		ret = jose_seckey_from_seed(seed, pub.kid, out);
	sodium_memzero(seed, sizeof(seed));
	return ret;
}

void jose_seckey_free(struct jose_seckey *key)
{
	if (key)
		sodium_free(key);
}

void jose_seckey_public(const struct jose_seckey *key, struct jose_pubkey *out)
{
	*out = key->pub;
}

int jose_seckey_to_jwk(const struct jose_seckey *key, char *out,
		       size_t out_size)
{
	char x[JOSE_B64_32_BYTES], d[JOSE_B64_32_BYTES];
	int n, ret = 0;

	if (out_size > 0)
		out[0] = '\0';
	if (b64url_encode(x, sizeof(x), key->pub.x, sizeof(key->pub.x)) < 0 ||
	    b64url_encode(d, sizeof(d), key->sk, JOSE_ED25519_SEED_BYTES) < 0) {
		ret = ERR(internal);
		goto cleanup;
	}
	n = snprintf(out, out_size,
		     "{\"crv\":\"Ed25519\",\"d\":\"%s\",%s%s%s\"kty\":\"OKP\","
		     "\"x\":\"%s\"}",
		     d, key->pub.kid[0] ? "\"kid\":\"" : "", key->pub.kid,
		     key->pub.kid[0] ? "\"," : "", x);
	if (n < 0 || (size_t)n >= out_size) {
		if (out_size > 0)
			sodium_memzero(out, out_size);
		ret = ERR(buffer_too_small);
	}
cleanup:
	sodium_memzero(d, sizeof(d));
	return ret;
}

/* ---- compact JWS ------------------------------------------------------ */

/* The signature of msg with a seckey (a jose_sign_fn). */
static int seckey_sign(void *ctx, const unsigned char *msg, size_t len,
		       unsigned char sig[JOSE_ED25519_SIGNATURE_BYTES])
{
	const struct jose_seckey *key = ctx;
	return crypto_sign_detached(sig, NULL, msg, len, key->sk);
}

int jose_jws_sign(const struct jose_seckey *key,
		  const struct jose_sign_opts *opts, const void *payload,
		  size_t len, char *out, size_t out_size, size_t *out_len)
{
	*out_len = 0;
	if (out_size > 0)
		out[0] = '\0';
	if (!key)
		return ERR(invalid_argument);
	return jose_jws_sign_with(&key->pub, seckey_sign, (void *)key, opts,
				  payload, len, out, out_size, out_len);
}

int jose_jws_sign_with(const struct jose_pubkey *pub, jose_sign_fn sign,
		       void *ctx, const struct jose_sign_opts *opts,
		       const void *payload, size_t len, char *out,
		       size_t out_size, size_t *out_len)
{
	unsigned char sig[crypto_sign_BYTES];
	char header[JOSE_HEADER_BYTES_MAX];
	char jwk[7 + 128];
	const char *alg;
	size_t o, need;
	int n;

	*out_len = 0;
	if (out_size > 0)
		out[0] = '\0';
	if (!pub || !sign || !opts || !payload || len == 0)
		return ERR(invalid_argument);
	if (opts->typ && !token_chars_ok(opts->typ, JOSE_TYP_BYTES_MAX))
		return ERR(invalid_argument);
	size_t token_max = opts->large ? JOSE_SIGN_LARGE_TOKEN_BYTES
				       : JOSE_TOKEN_BYTES_MAX;
	if (len > (opts->large ? (size_t)JOSE_SIGN_LARGE_BYTES_MAX
			       : (size_t)JOSE_PAYLOAD_BYTES_MAX))
		return ERR(too_large);
	alg = opts->alg == JOSE_ALG_ED25519 ? "Ed25519" : "EdDSA";
	jwk[0] = '\0';
	if (opts->with_jwk) {
		struct jose_pubkey bare = *pub;

		bare.kid[0] = '\0';
		if (jose_pubkey_to_jwk(&bare, jwk + 7, sizeof(jwk) - 7) < 0)
			return ERR(internal);
		memcpy(jwk, ",\"jwk\":", 7);
	}
	n = snprintf(header, sizeof(header), "{\"alg\":\"%s\"%s%s%s%s%s%s%s}",
		     alg, jwk,
		     opts->with_kid && pub->kid[0] ? ",\"kid\":\"" : "",
		     opts->with_kid ? pub->kid : "",
		     opts->with_kid && pub->kid[0] ? "\"" : "",
		     opts->typ ? ",\"typ\":\"" : "", opts->typ ? opts->typ : "",
		     opts->typ ? "\"" : "");
	if (n < 0 || (size_t)n >= sizeof(header))
		return ERR(internal);

	need = b64url_encoded_len((size_t)n) + 1 + b64url_encoded_len(len) + 1 +
	       SIG_TEXT_BYTES;
	if (need > token_max)
		return ERR(too_large);
	if (out_size < need + 1)
		return ERR(buffer_too_small);

	b64url_encode(out, out_size, header, (size_t)n);
	o = strlen(out);
	out[o++] = '.';
	b64url_encode(out + o, out_size - o, payload, len);
	o += b64url_encoded_len(len);
	if (sign(ctx, (const unsigned char *)out, o, sig) != 0) {
		sodium_memzero(out, out_size);
		return ERR(internal);
	}
	out[o++] = '.';
	b64url_encode(out + o, out_size - o, sig, sizeof(sig));
	o += SIG_TEXT_BYTES;
	*out_len = o;
	return 0;
}

int jose_jwt_sign(const struct jose_seckey *key,
		  const struct jose_sign_opts *opts, const json_t *claims,
		  char *out, size_t out_size, size_t *out_len)
{
	*out_len = 0;
	if (out_size > 0)
		out[0] = '\0';
	if (!key)
		return ERR(invalid_argument);
	return jose_jwt_sign_with(&key->pub, seckey_sign, (void *)key, opts,
				  claims, out, out_size, out_len);
}

int jose_jwt_sign_with(const struct jose_pubkey *pub, jose_sign_fn sign,
		       void *ctx, const struct jose_sign_opts *opts,
		       const json_t *claims, char *out, size_t out_size,
		       size_t *out_len)
{
	char *text;
	int ret;

	*out_len = 0;
	if (out_size > 0)
		out[0] = '\0';
	if (!json_is_object(claims))
		return ERR(invalid_argument);
	text = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return ERR(no_memory);
	ret = jose_jws_sign_with(pub, sign, ctx, opts, text, strlen(text), out,
				 out_size, out_len);
	free(text);
	return ret;
}

void jose_jws_clear(struct jose_jws *jws)
{
	if (!jws)
		return;
	json_decref(jws->header);
	json_decref(jws->claims);
	free(jws->payload);
	memset(jws, 0, sizeof(*jws));
}

static int check_header(const json_t *h, const struct jose_verify_opts *opts,
			struct jose_jws *out)
{
	static const char *const key_members[] = {"jwk", "jku", "x5u", "x5c"};
	const char *s;
	int ret;

	if (get_string(h, "alg", -1, &s) != 1)
		return ERR(bad_header);
	if (strcmp(s, "EdDSA") == 0)
		out->alg = JOSE_ALG_EDDSA;
	else if (strcmp(s, "Ed25519") == 0)
		out->alg = JOSE_ALG_ED25519;
	else
		return ERR(alg_not_allowed);
	if (json_object_get(h, "crit"))
		return ERR(crit_header);
	/* RFC 7797's b64 is only meaningful under crit; a lone one would
	 * make other libraries read the payload differently. */
	if (json_object_get(h, "b64"))
		return ERR(bad_header);
	for (size_t i = 0; i < sizeof(key_members) / sizeof(char *); i++) {
		/* "jwk" only when the caller opted in (embedded_jwk_out) */
		if (i == 0 && opts->embedded_jwk_out)
			continue;
		if (json_object_get(h, key_members[i]))
			return ERR(embedded_key);
	}
	if (opts->embedded_jwk_out &&
	    !json_is_object(json_object_get(h, "jwk")))
		return ERR(bad_header);

	ret = get_string(h, "typ", ERR(bad_header), &s);
	if (ret < 0)
		return ret;
	if (opts->typ && (ret == 0 || !typ_matches(s, opts->typ)))
		return ERR(bad_typ);

	ret = get_string(h, "kid", ERR(bad_kid), &s);
	if (ret < 0)
		return ret;
	if (ret == 1 && !token_chars_ok(s, JOSE_KID_BYTES_MAX))
		return ERR(bad_kid);
	if (ret == 0 && opts->require_kid)
		return ERR(bad_kid);
	out->kid = s;
	return 0;
}

/* The "jwk" header member of a self-proving token, as a public key. */
static int embedded_key(const json_t *jwk, struct jose_pubkey *key)
{
	char *text = json_dumps(jwk, JSON_COMPACT);
	int ret;

	if (!text)
		return ERR(no_memory);
	ret = jose_pubkey_parse_jwk(text, strlen(text), key);
	free(text);
	return ret;
}

int jose_jws_verify(const char *token, size_t len,
		    const struct jose_verify_opts *opts, struct jose_jws *out)
{
	unsigned char header[JOSE_HEADER_BYTES_MAX];
	unsigned char sig[crypto_sign_BYTES];
	struct jose_pubkey key;
	const char *d1, *d2, *end;
	size_t hlen, plen, slen, n;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!token || !opts || (!opts->lookup && !opts->embedded_jwk_out))
		return ERR(invalid_argument);
	if (len > JOSE_TOKEN_BYTES_MAX)
		return ERR(too_large);
	end = token + len;
	d1 = len ? memchr(token, '.', len) : NULL;
	if (!d1)
		return ERR(bad_format);
	d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
	if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
		return ERR(bad_format);
	hlen = (size_t)(d1 - token);
	plen = (size_t)(d2 - d1 - 1);
	slen = (size_t)(end - d2 - 1);
	if (hlen == 0 || plen == 0 || slen == 0)
		return ERR(bad_format);
	if (hlen > HEADER_TEXT_MAX || plen > PAYLOAD_TEXT_MAX)
		return ERR(too_large);

	if (b64url_decode(header, sizeof(header), token, hlen, &n) < 0)
		return ERR(bad_base64);
	ret = load_object(header, n, ERR(bad_header), &out->header);
	if (ret < 0)
		goto fail;
	ret = check_header(out->header, opts, out);
	if (ret < 0)
		goto fail;

	n = b64url_decoded_len(plen);
	out->payload = malloc(n + 1);
	if (!out->payload) {
		ret = ERR(no_memory);
		goto fail;
	}
	if (b64url_decode(out->payload, n, d1 + 1, plen, &out->payload_len) <
	    0) {
		ret = ERR(bad_base64);
		goto fail;
	}
	out->payload[out->payload_len] = '\0';
	ret = b64url_decode(sig, sizeof(sig), d2 + 1, slen, &n);
	if (ret == -EINVAL) {
		ret = ERR(bad_base64);
		goto fail;
	}
	if (ret < 0 || n != sizeof(sig)) {
		ret = ERR(bad_signature);
		goto fail;
	}

	memset(&key, 0, sizeof(key));
	if (opts->embedded_jwk_out) {
		ret = embedded_key(json_object_get(out->header, "jwk"), &key);
		if (ret < 0)
			goto fail;
	} else if (opts->lookup(opts->lookup_ctx, out->kid, &key) != 0) {
		ret = ERR(unknown_kid);
		goto fail;
	}
	if (crypto_sign_verify_detached(sig, (const unsigned char *)token,
					(size_t)(d2 - token), key.x) != 0) {
		ret = ERR(bad_signature);
		goto fail;
	}
	if (opts->embedded_jwk_out)
		*opts->embedded_jwk_out = key;
	return 0;

fail:
	jose_jws_clear(out);
	return ret;
}

int jose_jwt_verify(const char *token, size_t len,
		    const struct jose_verify_opts *opts, struct jose_jws *out)
{
	int ret = jose_jws_verify(token, len, opts, out);

	if (ret < 0)
		return ret;
	ret = load_object(out->payload, out->payload_len, ERR(bad_payload),
			  &out->claims);
	if (ret < 0)
		jose_jws_clear(out);
	return ret;
}

/* ---- registered claims ------------------------------------------------ */

static int claim_string_value(const json_t *v, const char **out)
{
	size_t n;

	if (!json_is_string(v))
		return ERR(claim_type);
	n = json_string_length(v);
	if (n == 0 || n > JOSE_CLAIM_BYTES_MAX)
		return ERR(claim_range);
	*out = json_string_value(v);
	return 0;
}

int jose_claim_string(const json_t *claims, const char *name, const char **out)
{
	const json_t *v = json_object_get(claims, name);

	*out = NULL;
	if (!v)
		return ERR(claim_missing);
	return claim_string_value(v, out);
}

int jose_claim_numeric_date(const json_t *claims, const char *name,
			    int64_t *out)
{
	const json_t *v = json_object_get(claims, name);
	json_int_t t;

	*out = 0;
	if (!v)
		return ERR(claim_missing);
	if (!json_is_integer(v))
		return ERR(claim_type);
	t = json_integer_value(v);
	if (t < 0 || t > JOSE_NUMERIC_DATE_MAX)
		return ERR(claim_range);
	*out = (int64_t)t;
	return 0;
}

int jose_claims_extract(const json_t *claims, unsigned required,
			struct jose_claims *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} strings[] = {{"iss", JOSE_CLAIM_ISS},
		       {"sub", JOSE_CLAIM_SUB},
		       {"jti", JOSE_CLAIM_JTI}},
	  dates[] = {{"iat", JOSE_CLAIM_IAT},
		     {"nbf", JOSE_CLAIM_NBF},
		     {"exp", JOSE_CLAIM_EXP}};
	const char **string_out[] = {&out->iss, &out->sub, &out->jti};
	int64_t *date_out[] = {&out->iat, &out->nbf, &out->exp};
	int ret;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(claims))
		return ERR(invalid_argument);
	for (size_t i = 0; i < 3; i++) {
		if (!json_object_get(claims, strings[i].name))
			continue;
		ret = jose_claim_string(claims, strings[i].name, string_out[i]);
		if (ret < 0)
			goto fail;
		out->present |= strings[i].bit;
	}
	for (size_t i = 0; i < 3; i++) {
		if (!json_object_get(claims, dates[i].name))
			continue;
		ret = jose_claim_numeric_date(claims, dates[i].name,
					      date_out[i]);
		if (ret < 0)
			goto fail;
		out->present |= dates[i].bit;
	}
	if (json_object_get(claims, "aud"))
		out->present |= JOSE_CLAIM_AUD;
	if (required & ~out->present) {
		ret = ERR(claim_missing);
		goto fail;
	}
	if ((out->present & JOSE_CLAIM_EXP) &&
	    (out->present & JOSE_CLAIM_NBF) && out->exp <= out->nbf) {
		ret = ERR(claim_range);
		goto fail;
	}
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return ret;
}

int jose_claims_check_time(const struct jose_claims *c, int64_t now,
			   int64_t leeway_s)
{
	if (now < 0 || now > JOSE_NUMERIC_DATE_MAX || leeway_s < 0 ||
	    leeway_s > JOSE_LEEWAY_MAX_S)
		return ERR(invalid_argument);
	/* Bounded above, so none of these sums overflows. */
	if ((c->present & JOSE_CLAIM_EXP) && now >= c->exp + leeway_s)
		return ERR(expired);
	if ((c->present & JOSE_CLAIM_NBF) && now + leeway_s < c->nbf)
		return ERR(not_yet_valid);
	if ((c->present & JOSE_CLAIM_IAT) && c->iat > now + leeway_s)
		return ERR(issued_in_future);
	return 0;
}

int jose_claims_check_aud(const json_t *claims, const char *audience)
{
	const json_t *v = json_object_get(claims, "aud"), *e;
	const char *s;
	bool found = false;
	size_t i;
	int ret;

	if (!audience)
		return ERR(invalid_argument);
	if (!v)
		return ERR(claim_missing);
	if (json_is_string(v)) {
		ret = claim_string_value(v, &s);
		if (ret < 0)
			return ret;
		return strcmp(s, audience) == 0 ? 0 : ERR(wrong_audience);
	}
	if (!json_is_array(v))
		return ERR(claim_type);
	if (json_array_size(v) == 0 ||
	    json_array_size(v) > JOSE_AUD_ENTRIES_MAX)
		return ERR(claim_range);
	json_array_foreach(v, i, e)
	{
		ret = claim_string_value(e, &s);
		if (ret < 0)
			return ret;
		if (strcmp(s, audience) == 0)
			found = true;
	}
	return found ? 0 : ERR(wrong_audience);
}

int jose_claims_check_iss(const json_t *claims, const char *issuer)
{
	const char *s;
	int ret;

	if (!issuer)
		return ERR(invalid_argument);
	ret = jose_claim_string(claims, "iss", &s);
	if (ret < 0)
		return ret;
	return strcmp(s, issuer) == 0 ? 0 : ERR(wrong_issuer);
}
