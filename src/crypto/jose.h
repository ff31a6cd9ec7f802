/*
 * jose.h - Ed25519 JWKs (RFC 8037), JWK thumbprints (RFC 7638), compact
 * JWS signed with EdDSA (RFC 7515, RFC 8037, RFC 9864) and the registered
 * JWT claims (RFC 7519): the format of delegation proofs (issue 4).
 *
 * Pure functions over libsodium and jansson: no I/O, no clock (time is a
 * parameter), no global state beyond libsodium's.  Call jose_init() once
 * before anything else (it runs sodium_init()).
 *
 * One algorithm only.  A verifier accepts "alg":"EdDSA" (RFC 8037) and
 * "alg":"Ed25519" (RFC 9864) and refuses everything else: "none", every
 * HS/RS/ES/PS algorithm, unknown names.  The key is never chosen by the
 * token: a "jwk", "jku", "x5u" or "x5c" header is refused, and the key
 * comes from the caller's lookup callback by "kid".  A "crit" header is
 * refused (no extension is understood).  JSON with a duplicate member name
 * is refused (RFC 7515 section 5.2 allows that and it closes a class of
 * parser-differential attacks).
 *
 * Errors.  Every function returns 0 or the negative of a code in
 * JOSE_ERRORS; jose_err_name() gives its stable snake_case name, which is
 * safe to show to a client: no error ever carries token or key bytes.
 *
 * Secrets.  A private key lives only in a struct jose_seckey, allocated
 * with sodium_malloc (guard pages, mlock'd, read-only between uses, wiped
 * by jose_seckey_free); seeds passed in and decoded "d" members are wiped
 * with sodium_memzero.  Nothing here prints anything.
 *
 * Limits (all in bytes unless named otherwise):
 *   JOSE_TOKEN_BYTES_MAX    a compact JWS, all three segments and the dots
 *   JOSE_HEADER_BYTES_MAX   the decoded protected header
 *   JOSE_PAYLOAD_BYTES_MAX  the decoded payload
 *   JOSE_JSON_DEPTH_MAX     nesting of arrays/objects in header or payload
 *   JOSE_JWK_BYTES_MAX      a JWK's JSON text
 *   JOSE_KID_BYTES_MAX      a "kid"; characters 0x21..0x7e except '"', '\'
 *   JOSE_TYP_BYTES_MAX      a "typ"; same characters
 *   JOSE_CLAIM_BYTES_MAX    a string claim (iss, sub, jti, one aud entry)
 *   JOSE_AUD_ENTRIES_MAX    entries of an "aud" array
 *   JOSE_NUMERIC_DATE_MAX   NumericDate range is [0, this] seconds since
 *                           the epoch (9999-12-31T23:59:59Z); integers only
 *   JOSE_LEEWAY_MAX_S       the clock-skew leeway a caller may allow
 */
#ifndef TPW_CRYPTO_JOSE_H
#define TPW_CRYPTO_JOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define JOSE_TOKEN_BYTES_MAX   8192
#define JOSE_HEADER_BYTES_MAX  1024
#define JOSE_PAYLOAD_BYTES_MAX 4096
#define JOSE_JSON_DEPTH_MAX    16
#define JOSE_JWK_BYTES_MAX     1024
#define JOSE_KID_BYTES_MAX     64
#define JOSE_TYP_BYTES_MAX     64
#define JOSE_CLAIM_BYTES_MAX   256
#define JOSE_AUD_ENTRIES_MAX   16
#define JOSE_NUMERIC_DATE_MAX  INT64_C(253402300799)
#define JOSE_LEEWAY_MAX_S      300

#define JOSE_ED25519_PUBLIC_BYTES    32
#define JOSE_ED25519_SIGNATURE_BYTES 64
#define JOSE_ED25519_SEED_BYTES	     32
#define JOSE_ED25519_SIG_BYTES	     64
/* base64url of 32 bytes (x, d, a SHA-256 thumbprint), plus NUL */
#define JOSE_B64_32_BYTES 44

/*
 * The error table: name and what it means.  Names are wire-stable;
 * values are not (compare with the enum, show the name).  The order in
 * which jose_jws_verify checks is documented there.
 */
#define JOSE_ERRORS(X)                                                         \
	X(ok, "accepted")                                                      \
	X(invalid_argument, "the caller passed an invalid argument")           \
	X(too_large, "token, header, payload or JWK over its size limit")      \
	X(bad_format, "not three non-empty segments separated by two dots")    \
	X(bad_base64, "a segment or member is not canonical base64url")        \
	X(too_deep, "JSON nested deeper than the limit")                       \
	X(duplicate_key, "JSON object with a duplicate member name")           \
	X(bad_header, "header is not a JSON object with well-typed members")   \
	X(alg_not_allowed, "alg is not EdDSA or Ed25519")                      \
	X(crit_header, "header has crit: no extension is understood")          \
	X(embedded_key, "header names its own key (jwk, jku, x5u or x5c)")     \
	X(bad_typ, "typ is missing or not the one required")                   \
	X(bad_kid, "kid is missing when required, or malformed")               \
	X(bad_signature, "signature does not verify")                          \
	X(unknown_kid, "no key for this kid")                                  \
	X(bad_payload, "payload is not a JSON object")                         \
	X(claim_missing, "a required claim is absent")                         \
	X(claim_type, "a claim has the wrong JSON type")                       \
	X(claim_range, "a claim is out of range or too long")                  \
	X(expired, "now is at or after exp (plus leeway)")                     \
	X(not_yet_valid, "now is before nbf (minus leeway)")                   \
	X(issued_in_future, "iat is after now (plus leeway)")                  \
	X(wrong_audience, "aud does not name this audience")                   \
	X(wrong_issuer, "iss is not the expected issuer")                      \
	X(key_bad_json, "JWK is not a JSON object")                            \
	X(key_bad_kty, "JWK kty is not OKP")                                   \
	X(key_bad_crv, "JWK crv is not Ed25519")                               \
	X(key_bad_x, "JWK x is not a valid 32-byte Ed25519 public key")        \
	X(key_bad_d, "JWK d is missing or not 32 bytes")                       \
	X(key_private_member, "private key member in a public JWK")            \
	X(key_foreign_member, "JWK member of another key type (y, n, e)")      \
	X(key_mismatch, "JWK d does not derive x")                             \
	X(key_not_for_signing, "JWK use is not sig or alg is not EdDSA")       \
	X(buffer_too_small, "output buffer too small")                         \
	X(no_memory, "out of memory")                                          \
	X(internal, "libsodium failed")

enum jose_err {
#define X(name, desc) JOSE_##name,
	JOSE_ERRORS(X)
#undef X
		JOSE_ERR_COUNT
};

/* Stable name of a return value (0 or -JOSE_x): "ok", "bad_signature"...
 * NULL for a value outside the table.  jose_err_desc: one sentence. */
const char *jose_err_name(int ret);
const char *jose_err_desc(int ret);

/* sodium_init(); 0 or -JOSE_internal.  Idempotent and thread-safe. */
int jose_init(void);

/* ---- keys ------------------------------------------------------------ */

/*
 * A public key: plain bytes, freely copied.  kid is "" when the key has
 * none; otherwise JOSE_KID_BYTES_MAX characters at most (see above).
 */
struct jose_pubkey {
	unsigned char x[JOSE_ED25519_PUBLIC_BYTES];
	char kid[JOSE_KID_BYTES_MAX + 1];
};

/* A private key; opaque, owned by whoever created it, freed with
 * jose_seckey_free.  Read-only memory between uses; usable from several
 * threads at once (signing only reads it). */
struct jose_seckey;

/*
 * Parses a public JWK: {"kty":"OKP","crv":"Ed25519","x":...}, optional
 * "kid" (string, the limits above: bad_kid), "use" (must be "sig") and
 * "alg" (must be EdDSA or Ed25519: key_not_for_signing); other unknown members
 * are ignored as RFC 7517 requires, except private members of any key type (d,
 * p, q, dp, dq, qi, oth, k -> key_private_member) and public members of other
 * types (y, n, e -> key_foreign_member).  x must be a canonical point of the
 * main subgroup, not of small order (key_bad_x).
 */
int jose_pubkey_parse_jwk(const char *json, size_t len,
			  struct jose_pubkey *out);

/*
 * Canonical public JWK: members in lexicographic order, no whitespace:
 * {"crv":"Ed25519","kid":"...","kty":"OKP","x":"..."} ("kid" only when
 * set).  Writes a NUL-terminated text; -JOSE_buffer_too_small if it does
 * not fit (JOSE_JWK_BYTES_MAX always does).
 */
int jose_pubkey_to_jwk(const struct jose_pubkey *key, char *out,
		       size_t out_size);

/*
 * RFC 7638 thumbprint: base64url(SHA-256({"crv":"Ed25519","kty":"OKP",
 * "x":"..."})), 43 characters and a NUL into out.  The kid is not part of
 * it.  This is a principal's identity (issue 4, item 1).
 */
int jose_thumbprint(const struct jose_pubkey *key, char out[JOSE_B64_32_BYTES]);

/*
 * New private keys.  _generate draws from libsodium's CSPRNG; _from_seed
 * derives from the 32-byte RFC 8032 seed (the JWK "d") and does not wipe
 * the caller's copy; _parse_jwk reads a private JWK (the public rules
 * above plus a 32-byte "d" that must derive "x": key_bad_d,
 * key_mismatch).  kid may be NULL or "".  On success *out is the caller's.
 *
 * NEEDSWORK: jansson's parser keeps a transient copy of the text of "d"
 * that it frees without wiping; the decoded string in the tree is wiped.
 * Key files should hold the encrypted seed, not a private JWK.
 */
int jose_seckey_generate(const char *kid, struct jose_seckey **out);
int jose_seckey_from_seed(const unsigned char seed[JOSE_ED25519_SEED_BYTES],
			  const char *kid, struct jose_seckey **out);
int jose_seckey_parse_jwk(const char *json, size_t len,
			  struct jose_seckey **out);
void jose_seckey_free(struct jose_seckey *key);

/* The public half (with the kid). */
void jose_seckey_public(const struct jose_seckey *key, struct jose_pubkey *out);

/*
 * Canonical private JWK {"crv","d","kid"?,"kty","x"}.  The text holds the
 * secret: the caller wipes out (sodium_memzero) when done with it.
 */
int jose_seckey_to_jwk(const struct jose_seckey *key, char *out,
		       size_t out_size);

/* ---- compact JWS ------------------------------------------------------ */

enum jose_alg {
	JOSE_ALG_EDDSA,	 /* "EdDSA", RFC 8037 */
	JOSE_ALG_ED25519 /* "Ed25519", RFC 9864 */
};

struct jose_sign_opts {
	enum jose_alg alg;
	const char *typ; /* NULL: no typ header; else JOSE_TYP_BYTES_MAX */
	bool with_kid;	 /* put the key's kid in the header */
	/* put the public key in a "jwk" header (canonical, without kid):
	 * for self-proving tokens such as DPoP proofs (RFC 9449) */
	bool with_jwk;
	/* Documents the server signs for others (revocation lists, client
	 * manifests) may exceed what it accepts: true lifts the payload
	 * bound to JOSE_SIGN_LARGE_BYTES_MAX (the token then needs
	 * JOSE_SIGN_LARGE_TOKEN_BYTES + 1 of out). */
	bool large;
};

#define JOSE_SIGN_LARGE_BYTES_MAX (1024 * 1024)
#define JOSE_SIGN_LARGE_TOKEN_BYTES                                            \
	(JOSE_SIGN_LARGE_BYTES_MAX / 3 * 4 + 4 + 2048)

/*
 * Signs payload[0..len) (any bytes, 1..JOSE_PAYLOAD_BYTES_MAX) into a
 * compact JWS whose header is {"alg":...,"kid":...,"typ":...} (members in
 * lexicographic order, kid and typ only when asked for).  Writes a
 * NUL-terminated token into out (JOSE_TOKEN_BYTES_MAX + 1 always
 * suffices) and its length, without the NUL, into *out_len.
 * Deterministic (Ed25519): the same key, options and payload give the
 * same token.
 */
int jose_jws_sign(const struct jose_seckey *key,
		  const struct jose_sign_opts *opts, const void *payload,
		  size_t len, char *out, size_t out_size, size_t *out_len);

/*
 * Signs a JWT: claims must be a JSON object; it is serialised compactly
 * with sorted keys.
 */
int jose_jwt_sign(const struct jose_seckey *key,
		  const struct jose_sign_opts *opts, const json_t *claims,
		  char *out, size_t out_size, size_t *out_len);

/*
 * The same two with a key held elsewhere (a PKCS#11 token): pub is its
 * public key and kid, and sign(ctx, msg, len, sig) makes the Ed25519
 * signature of the signing input (0, or nonzero for a refusal, then
 * reported as -JOSE_internal and out wiped; ctx keeps the reason).
 */
typedef int (*jose_sign_fn)(void *ctx, const unsigned char *msg, size_t len,
			    unsigned char sig[JOSE_ED25519_SIGNATURE_BYTES]);
int jose_jws_sign_with(const struct jose_pubkey *pub, jose_sign_fn sign,
		       void *ctx, const struct jose_sign_opts *opts,
		       const void *payload, size_t len, char *out,
		       size_t out_size, size_t *out_len);
int jose_jwt_sign_with(const struct jose_pubkey *pub, jose_sign_fn sign,
		       void *ctx, const struct jose_sign_opts *opts,
		       const json_t *claims, char *out, size_t out_size,
		       size_t *out_len);

/*
 * The key for a token, by the header's kid (NULL when the header has
 * none).  Returns 0 and fills *out, or -JOSE_unknown_kid (any other
 * negative value is reported as unknown_kid too).  Called at most once
 * per verification, on the verifying thread; a keyring with rotation
 * answers for the current and the still-overlapping previous keys.
 */
typedef int (*jose_key_lookup_fn)(void *ctx, const char *kid,
				  struct jose_pubkey *out);

struct jose_verify_opts {
	jose_key_lookup_fn lookup;
	void *lookup_ctx;
	/* NULL: typ is not checked (if present it must still be a string).
	 * Else the header's typ must equal it, ASCII case-insensitively,
	 * with an optional "application/" prefix (RFC 7515 4.1.9). */
	const char *typ;
	bool require_kid;
	/*
	 * Opt-in for self-proving tokens (DPoP proofs, revocation
	 * statements).  NULL (the default): a "jwk" header is refused
	 * (embedded_key) and the key comes from lookup.  Non-NULL: a "jwk"
	 * header is required (bad_header when absent or not an object),
	 * parsed with jose_pubkey_parse_jwk (its key_* codes), used as the
	 * verification key without calling lookup (which may then be NULL),
	 * and copied here on success.  jku, x5u and x5c stay refused.  The
	 * caller decides what the key is allowed to prove (e.g. that its
	 * thumbprint is the expected one).
	 */
	struct jose_pubkey *embedded_jwk_out;
};

/*
 * A verified token.  Owns header, payload and claims; release with
 * jose_jws_clear (safe on a zeroed or already-cleared struct).  kid points
 * into header and lives as long as it.  payload has payload_len bytes and
 * a NUL after them.  claims is set by jose_jwt_verify only.
 */
struct jose_jws {
	json_t *header;
	unsigned char *payload;
	size_t payload_len;
	json_t *claims;
	const char *kid;
	enum jose_alg alg;
};

void jose_jws_clear(struct jose_jws *jws);

/*
 * Verifies a compact JWS of len bytes (need not be NUL-terminated).
 * Checks, in this order, and the first that fails is returned:
 *   size (too_large), three non-empty segments (bad_format), segment
 *   sizes (too_large), header base64url (bad_base64), header JSON
 *   (too_deep, duplicate_key, bad_header), alg (bad_header when absent or
 *   not a string, alg_not_allowed), crit (crit_header), jwk/jku/x5u/x5c
 *   (embedded_key), typ (bad_header, bad_typ), kid (bad_kid), payload
 *   and signature base64url (bad_base64; a signature that is not 64 bytes
 *   is bad_signature), the key (unknown_kid), the signature
 *   (bad_signature).
 * On success *out holds the header and payload; on failure *out is
 * cleared.  The payload is only decoded, never interpreted.
 */
int jose_jws_verify(const char *token, size_t len,
		    const struct jose_verify_opts *opts, struct jose_jws *out);

/*
 * jose_jws_verify, then the payload must be a JSON object (too_deep,
 * duplicate_key, bad_payload), which is left in out->claims.  Claims are
 * not checked: see jose_claims_* below.
 */
int jose_jwt_verify(const char *token, size_t len,
		    const struct jose_verify_opts *opts, struct jose_jws *out);

/* ---- registered claims ------------------------------------------------ */

#define JOSE_CLAIM_ISS (1u << 0)
#define JOSE_CLAIM_SUB (1u << 1)
#define JOSE_CLAIM_AUD (1u << 2)
#define JOSE_CLAIM_IAT (1u << 3)
#define JOSE_CLAIM_NBF (1u << 4)
#define JOSE_CLAIM_EXP (1u << 5)
#define JOSE_CLAIM_JTI (1u << 6)

/*
 * The registered claims of one JWT, typed.  Strings point into the json_t
 * they came from and live as long as it; NULL when absent.  Dates are
 * seconds since the epoch; valid when the matching bit is in present.
 */
struct jose_claims {
	unsigned present;
	const char *iss, *sub, *jti;
	int64_t iat, nbf, exp;
};

/*
 * A string claim: must be a JSON string of 1..JOSE_CLAIM_BYTES_MAX bytes
 * (claim_type, claim_range).  Absent: claim_missing.
 */
int jose_claim_string(const json_t *claims, const char *name, const char **out);

/*
 * A NumericDate: must be a JSON integer (a real such as 1.5 or 1e9 is
 * claim_type) in [0, JOSE_NUMERIC_DATE_MAX] (claim_range).
 */
int jose_claim_numeric_date(const json_t *claims, const char *name,
			    int64_t *out);

/*
 * Reads iss, sub, iat, nbf, exp, jti (those present; aud is checked by
 * jose_claims_check_aud).  Every bit of required must be present
 * (claim_missing).  If exp and nbf are both present, exp must be after
 * nbf (claim_range).
 */
int jose_claims_extract(const json_t *claims, unsigned required,
			struct jose_claims *out);

/*
 * The time checks of RFC 7519 at now (seconds; the caller reads the
 * clock), with leeway_s in [0, JOSE_LEEWAY_MAX_S] of tolerated skew:
 *   exp: valid while now < exp + leeway  (exp == now is expired);
 *   nbf: valid from now >= nbf - leeway;
 *   iat: refused when iat > now + leeway.
 * Absent claims are not checked (require them in jose_claims_extract).
 * now outside [0, JOSE_NUMERIC_DATE_MAX] or leeway out of range:
 * invalid_argument.
 */
int jose_claims_check_time(const struct jose_claims *c, int64_t now,
			   int64_t leeway_s);

/*
 * aud names audience: a string equal to it, or an array of 1..
 * JOSE_AUD_ENTRIES_MAX strings one of which is.  claim_missing,
 * claim_type, claim_range (an entry too long or the array too big),
 * wrong_audience.
 */
int jose_claims_check_aud(const json_t *claims, const char *audience);

/* iss equals issuer: claim_missing, claim_type, claim_range,
 * wrong_issuer. */
int jose_claims_check_iss(const json_t *claims, const char *issuer);

#endif
