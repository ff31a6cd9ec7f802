/*
 * note.c - C2SP signed notes with Ed25519 keys, and tlog checkpoints (see
 * note.h).
 *
 * Parsing is two passes over a note already bounded in size: the first
 * checks the shape of every line (so a malformed note is reported as
 * such, whatever its signatures), the second verifies the signatures of
 * known keys.  Base64 goes through libsodium's decoder with no ignored
 * characters, which also refuses non-zero padding bits: one encoding per
 * value.  Ed25519 is libsodium's (it refuses non-canonical signatures and
 * small-order keys, which Go's package accepts; honest signers never make
 * either).
 */
#include "crypto/note.h"

#include "core/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "banned.h"

#define ALG_ED25519 0x01
/* "— " : U+2014 in UTF-8, then a space. */
static const char sig_prefix[] = "\xe2\x80\x94 ";
#define SIG_PREFIX_BYTES 4
#define SIG_BYTES_MAX	 (NOTE_LINE_BYTES_MAX / 4 * 3)

const char *note_strerror(int code)
{
	switch (code) {
#define NOTE_NAME_(name, value, text)                                          \
	case value: return text;
		NOTE_ERRORS(NOTE_NAME_)
#undef NOTE_NAME_
	default: return "unknown";
	}
}

/* ---- text rules -------------------------------------------------------- */

/* Decode one UTF-8 sequence at s[0..len): its length, or 0 when it is not
 * well-formed (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_next(const u8 *s, size_t len, u32 *cp)
{
	u32 c = s[0];
	size_t n;
	u32 min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Unicode White_Space (Go's unicode.IsSpace). */
static bool unicode_space(u32 c)
{
	switch (c) {
	case '\t':
	case '\n':
	case '\v':
	case '\f':
	case '\r':
	case ' ':
	case 0x85:
	case 0xa0:
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202f:
	case 0x205f:
	case 0x3000: return true;
	default: return c >= 0x2000 && c <= 0x200a;
	}
}

/* s[0..len) is well-formed UTF-8 with no control character but newline,
 * and no line longer than NOTE_LINE_BYTES_MAX. */
static int text_check(const char *s, size_t len)
{
	const u8 *p = (const u8 *)s;
	size_t line = 0;

	for (size_t i = 0; i < len;) {
		u32 c;
		size_t n = utf8_next(p + i, len - i, &c);
		if (n == 0)
			return NOTE_E_BAD_UTF8;
		if (c == '\n') {
			line = 0;
		} else {
			if (c < 0x20)
				return NOTE_E_CONTROL_CHAR;
			line += n;
			if (line > NOTE_LINE_BYTES_MAX)
				return NOTE_E_LINE_TOO_LONG;
		}
		i += n;
	}
	return 0;
}

bool note_name_valid(const char *name, size_t len)
{
	const u8 *p = (const u8 *)name;

	if (len == 0 || len > NOTE_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len;) {
		u32 c;
		size_t n = utf8_next(p + i, len - i, &c);
		if (n == 0 || c < 0x20 || c == '+' || unicode_space(c))
			return false;
		i += n;
	}
	return true;
}

static int hex8(const char *s, u32 *out)
{
	u32 v = 0;

	for (int i = 0; i < 8; i++) {
		int d = parse_hex_digit(s[i]);
		if (d < 0)
			return -1;
		v = v << 4 | (u32)d;
	}
	*out = v;
	return 0;
}

/* ---- output buffer ----------------------------------------------------- */

struct out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void put(struct out *o, const void *p, size_t n)
{
	/* Keep one byte for the NUL. */
	if (o->full || n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void put_b64(struct out *o, const u8 *bin, size_t n)
{
	char tmp[SIG_BYTES_MAX / 3 * 4 + 8];
	size_t enc =
		sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	if (enc > sizeof(tmp)) {
		o->full = true;
		return;
	}
	sodium_bin2base64(tmp, sizeof(tmp), bin, n,
			  sodium_base64_VARIANT_ORIGINAL);
	put(o, tmp, enc - 1);
}

static int finish(struct out *o, size_t *len_out)
{
	if (o->full || o->cap == 0)
		return NOTE_E_NO_SPACE;
	o->buf[o->len] = '\0';
	if (len_out)
		*len_out = o->len;
	return 0;
}

/* ---- keys -------------------------------------------------------------- */

u32 note_key_id(const char *name, size_t len, const u8 public_key[32])
{
	return note__key_id_typed(name, len, ALG_ED25519, public_key);
}

u32 note__key_id_typed(const char *name, size_t len, u8 type,
		       const u8 public_key[32])
{
	crypto_hash_sha256_state st;
	u8 h[crypto_hash_sha256_BYTES];
	const u8 sep[2] = {'\n', type};

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const u8 *)name, len);
	crypto_hash_sha256_update(&st, sep, sizeof(sep));
	crypto_hash_sha256_update(&st, public_key, 32);
	crypto_hash_sha256_final(&st, h);
	return (u32)h[0] << 24 | (u32)h[1] << 16 | (u32)h[2] << 8 | h[3];
}

/* Split "<name>+<8 hex>+<base64>" and decode the key bytes. */
static int parse_key(const char *s, size_t len, struct note_verifier *v,
		     u32 *id, u8 key[33])
{
	const char *plus1 = memchr(s, '+', len);
	if (!plus1)
		return NOTE_E_BAD_KEY;
	size_t name_len = (size_t)(plus1 - s);
	const char *hex = plus1 + 1;
	size_t rest = len - name_len - 1;
	if (rest < 10 || hex[8] != '+')
		return NOTE_E_BAD_KEY;
	if (!note_name_valid(s, name_len))
		return NOTE_E_BAD_NAME;
	if (hex8(hex, id) != 0)
		return NOTE_E_BAD_KEY;
	/* raw may hold a private seed (signer keys): wiped on every path. */
	u8 raw[64];
	long n = parse_base64(hex + 9, rest - 9, raw, sizeof(raw));
	int ret = 0;
	if (n < 0)
		ret = NOTE_E_BAD_BASE64;
	else if (n < 1 || raw[0] != ALG_ED25519)
		ret = NOTE_E_UNKNOWN_ALGORITHM;
	else if (n != 33)
		ret = NOTE_E_BAD_KEY;
	else
		memcpy(key, raw, 33);
	sodium_memzero(raw, sizeof(raw));
	if (ret != 0)
		return ret;
	memcpy(v->name, s, name_len);
	v->name[name_len] = '\0';
	v->name_len = name_len;
	return 0;
}

int note_verifier_parse(const char *s, size_t len, struct note_verifier *out)
{
	struct note_verifier v;
	u32 id;
	u8 key[33];

	if (len > NOTE_VERIFIER_KEY_BYTES_MAX)
		return NOTE_E_BAD_KEY;
	int ret = parse_key(s, len, &v, &id, key);
	if (ret != 0)
		return ret;
	memcpy(v.public_key, key + 1, 32);
	v.key_id = note_key_id(v.name, v.name_len, v.public_key);
	if (v.key_id != id)
		return NOTE_E_KEY_ID_MISMATCH;
	*out = v;
	return 0;
}

static const char private_prefix[] = "PRIVATE+KEY+";

int note_signer_parse(const char *s, size_t len, struct note_signer *out)
{
	struct note_signer sg;
	u32 id;
	u8 key[33];
	size_t pl = sizeof(private_prefix) - 1;
	int ret;

	if (len > NOTE_SIGNER_KEY_BYTES_MAX || len < pl ||
	    memcmp(s, private_prefix, pl) != 0)
		return NOTE_E_BAD_KEY;
	ret = parse_key(s + pl, len - pl, &sg.pub, &id, key);
	if (ret != 0)
		goto cleanup;
	crypto_sign_seed_keypair(sg.pub.public_key, sg.secret_key, key + 1);
	sg.sign = NULL;
	sg.sign_ctx = NULL;
	memset(sg.sign_ref, 0, sizeof(sg.sign_ref));
	sg.pub.key_id =
		note_key_id(sg.pub.name, sg.pub.name_len, sg.pub.public_key);
	if (sg.pub.key_id != id) {
		ret = NOTE_E_KEY_ID_MISMATCH;
		goto cleanup;
	}
	*out = sg;
cleanup:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(&sg, sizeof(sg));
	return ret;
}

int note_signer_from_seed(const char *name, size_t len, const u8 seed[32],
			  struct note_signer *out)
{
	if (!note_name_valid(name, len))
		return NOTE_E_BAD_NAME;
	memcpy(out->pub.name, name, len);
	out->pub.name[len] = '\0';
	out->pub.name_len = len;
	crypto_sign_seed_keypair(out->pub.public_key, out->secret_key, seed);
	out->pub.key_id = note_key_id(name, len, out->pub.public_key);
	out->sign = NULL;
	out->sign_ctx = NULL;
	memset(out->sign_ref, 0, sizeof(out->sign_ref));
	return 0;
}

int note_signer_external(const char *name, size_t len, const u8 public_key[32],
			 note_sign_fn sign, void *ctx, const u8 ref[32],
			 struct note_signer *out)
{
	if (!note_name_valid(name, len) || !sign)
		return NOTE_E_BAD_NAME;
	memset(out, 0, sizeof(*out));
	memcpy(out->pub.name, name, len);
	out->pub.name[len] = '\0';
	out->pub.name_len = len;
	memcpy(out->pub.public_key, public_key, 32);
	out->pub.key_id = note_key_id(name, len, public_key);
	out->sign = sign;
	out->sign_ctx = ctx;
	memcpy(out->sign_ref, ref, sizeof(out->sign_ref));
	return 0;
}

int note_keygen(const char *name, size_t len, struct note_signer *out)
{
	u8 seed[32];
	int ret;

	if (!note_name_valid(name, len))
		return NOTE_E_BAD_NAME;
	randombytes_buf(seed, sizeof(seed));
	ret = note_signer_from_seed(name, len, seed, out);
	sodium_memzero(seed, sizeof(seed));
	return ret;
}

void note_signer_clear(struct note_signer *s)
{
	sodium_memzero(s, sizeof(*s));
}

static void put_key(struct out *o, const struct note_verifier *v,
		    const u8 key32[32])
{
	char hex[9];
	u8 raw[33];

	snprintf(hex, sizeof(hex), "%08x", (unsigned)v->key_id);
	raw[0] = ALG_ED25519;
	memcpy(raw + 1, key32, 32);
	put(o, v->name, v->name_len);
	put(o, "+", 1);
	put(o, hex, 8);
	put(o, "+", 1);
	put_b64(o, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}

int note_verifier_format(const struct note_verifier *v, char *buf, size_t cap,
			 size_t *len_out)
{
	struct out o = {buf, cap, 0, false};

	put_key(&o, v, v->public_key);
	return finish(&o, len_out);
}

int note_signer_format(const struct note_signer *s, char *buf, size_t cap,
		       size_t *len_out)
{
	struct out o = {buf, cap, 0, false};

	put(&o, private_prefix, sizeof(private_prefix) - 1);
	put_key(&o, &s->pub, s->secret_key); /* the seed: first 32 bytes */
	int ret = finish(&o, len_out);
	if (ret != 0 && cap > 0)
		sodium_memzero(buf, cap);
	return ret;
}

/* ---- notes ------------------------------------------------------------- */

static bool same_key(const char *a, size_t alen, u32 aid, const char *b,
		     size_t blen, u32 bid)
{
	return aid == bid && alen == blen && memcmp(a, b, alen) == 0;
}

int note_sign(const char *text, size_t len,
	      const struct note_signer *const *signers, size_t n, char *buf,
	      size_t cap, size_t *len_out)
{
	struct out o = {buf, cap, 0, false};
	int ret;

	if (len == 0 || len > NOTE_BYTES_MAX)
		return len == 0 ? NOTE_E_MALFORMED : NOTE_E_TOO_LARGE;
	if (text[len - 1] != '\n')
		return NOTE_E_NO_FINAL_NEWLINE;
	ret = text_check(text, len);
	if (ret != 0)
		return ret;
	if (n == 0)
		return NOTE_E_NO_SIGNATURES;
	if (n > NOTE_SIGS_MAX)
		return NOTE_E_TOO_MANY_SIGS;
	for (size_t i = 0; i < n; i++) {
		const struct note_verifier *v = &signers[i]->pub;
		if (!note_name_valid(v->name, v->name_len))
			return NOTE_E_BAD_NAME;
		for (size_t j = 0; j < i; j++) {
			const struct note_verifier *w = &signers[j]->pub;
			if (same_key(v->name, v->name_len, v->key_id, w->name,
				     w->name_len, w->key_id))
				return NOTE_E_DUPLICATE_SIG;
		}
	}
	put(&o, text, len);
	put(&o, "\n", 1);
	for (size_t i = 0; i < n; i++) {
		const struct note_signer *s = signers[i];
		u8 sig[4 + crypto_sign_BYTES];
		sig[0] = (u8)(s->pub.key_id >> 24);
		sig[1] = (u8)(s->pub.key_id >> 16);
		sig[2] = (u8)(s->pub.key_id >> 8);
		sig[3] = (u8)s->pub.key_id;
		if (s->sign ? s->sign(s->sign_ctx, s->sign_ref,
				      (const u8 *)text, len, sig + 4) != 0
			    : crypto_sign_detached(sig + 4, NULL,
						   (const u8 *)text, len,
						   s->secret_key) != 0)
			return NOTE_E_SIGN_FAILED;
		put(&o, sig_prefix, SIG_PREFIX_BYTES);
		put(&o, s->pub.name, s->pub.name_len);
		put(&o, " ", 1);
		put_b64(&o, sig, sizeof(sig));
		put(&o, "\n", 1);
	}
	if (!o.full && o.len > NOTE_BYTES_MAX)
		return NOTE_E_TOO_LARGE;
	return finish(&o, len_out);
}

struct sigline {
	const char *name;
	size_t name_len;
	u32 id;
	const char *b64;
	size_t b64_len;
};

/* Parse one signature line s[0..len) (without its "\n"). */
static int parse_sigline(const char *s, size_t len, struct sigline *sl,
			 u8 *scratch)
{
	if (len < SIG_PREFIX_BYTES ||
	    memcmp(s, sig_prefix, SIG_PREFIX_BYTES) != 0)
		return NOTE_E_MALFORMED;
	s += SIG_PREFIX_BYTES;
	len -= SIG_PREFIX_BYTES;
	const char *sp = memchr(s, ' ', len);
	if (!sp)
		return NOTE_E_MALFORMED;
	sl->name = s;
	sl->name_len = (size_t)(sp - s);
	if (!note_name_valid(sl->name, sl->name_len))
		return NOTE_E_BAD_NAME;
	sl->b64 = sp + 1;
	sl->b64_len = len - sl->name_len - 1;
	long n = parse_base64(sl->b64, sl->b64_len, scratch, SIG_BYTES_MAX);
	if (n < 0)
		return NOTE_E_BAD_BASE64;
	/* A key id and at least one byte of signature. */
	if (n < 5)
		return NOTE_E_MALFORMED;
	sl->id = (u32)scratch[0] << 24 | (u32)scratch[1] << 16 |
		 (u32)scratch[2] << 8 | scratch[3];
	return 0;
}

int note_open(const char *msg, size_t len,
	      const struct note_verifier *verifiers, size_t n,
	      struct note_opened *out)
{
	struct sigline sl[NOTE_SIGS_MAX];
	u8 scratch[SIG_BYTES_MAX];
	struct note_opened r = {0};
	size_t nsig = 0;
	int ret;

	if (n > NOTE_VERIFIERS_MAX)
		return NOTE_E_TOO_MANY_KEYS;
	if (len > NOTE_BYTES_MAX)
		return NOTE_E_TOO_LARGE;
	ret = text_check(msg, len);
	if (ret != 0)
		return ret;
	if (len == 0 || msg[len - 1] != '\n')
		return NOTE_E_NO_FINAL_NEWLINE;
	/* The text ends at the last blank line. */
	size_t split = len;
	for (size_t i = len - 1; i > 0; i--) {
		if (msg[i] == '\n' && msg[i - 1] == '\n') {
			split = i - 1;
			break;
		}
	}
	if (split == len || split + 2 >= len)
		return NOTE_E_NO_SIGNATURES;
	r.text = msg;
	r.text_len = split + 1;

	/* Pass 1: the shape of every signature line. */
	for (size_t at = split + 2; at < len;) {
		const char *nl = memchr(msg + at, '\n', len - at);
		size_t ll = (size_t)(nl - (msg + at));
		if (nsig == NOTE_SIGS_MAX)
			return NOTE_E_TOO_MANY_SIGS;
		ret = parse_sigline(msg + at, ll, &sl[nsig], scratch);
		if (ret != 0)
			return ret;
		for (size_t j = 0; j < nsig; j++)
			if (same_key(sl[j].name, sl[j].name_len, sl[j].id,
				     sl[nsig].name, sl[nsig].name_len,
				     sl[nsig].id))
				return NOTE_E_DUPLICATE_SIG;
		nsig++;
		at += ll + 1;
	}
	r.sigs = (u32)nsig;

	/* Pass 2: every signature of a known key must verify. */
	for (size_t i = 0; i < nsig; i++) {
		size_t match = n;
		for (size_t k = 0; k < n; k++) {
			if (!same_key(sl[i].name, sl[i].name_len, sl[i].id,
				      verifiers[k].name, verifiers[k].name_len,
				      verifiers[k].key_id))
				continue;
			if (match != n)
				return NOTE_E_AMBIGUOUS_KEY;
			match = k;
		}
		if (match == n)
			continue; /* unknown key: ignored, as the spec says */
		long sn = parse_base64(sl[i].b64, sl[i].b64_len, scratch,
				       SIG_BYTES_MAX);
		if (sn != 4 + crypto_sign_BYTES ||
		    crypto_sign_verify_detached(
			    scratch + 4, (const u8 *)r.text, r.text_len,
			    verifiers[match].public_key) != 0)
			return NOTE_E_BAD_SIGNATURE;
		r.verified++;
		r.verified_by |= (u64)1 << match;
	}
	if (r.verified == 0)
		return NOTE_E_UNVERIFIED;
	*out = r;
	return 0;
}

/* ---- checkpoints ------------------------------------------------------- */

/* The next line of s[*at..len): its start and length; false at the end. */
static bool next_line(const char *s, size_t len, size_t *at, const char **line,
		      size_t *ll)
{
	if (*at >= len)
		return false;
	const char *nl = memchr(s + *at, '\n', len - *at);
	*line = s + *at;
	*ll = (size_t)(nl - *line);
	*at += *ll + 1;
	return true;
}

/* The extension lines ext[0..len): each non-empty, "\n"-terminated. */
static int check_extensions(const char *ext, size_t len, unsigned *count)
{
	const char *line;
	size_t ll, at = 0;
	unsigned nx = 0;

	if (len > 0 && ext[len - 1] != '\n')
		return NOTE_E_BAD_EXTENSION;
	while (next_line(ext, len, &at, &line, &ll)) {
		if (ll == 0 || nx == CHECKPOINT_EXTENSIONS_MAX)
			return NOTE_E_BAD_EXTENSION;
		nx++;
	}
	*count = nx;
	return 0;
}

int checkpoint_parse(const char *text, size_t len, struct checkpoint *out)
{
	struct checkpoint c = {0};
	const char *line;
	size_t ll, at = 0;
	int ret;

	if (len > NOTE_BYTES_MAX)
		return NOTE_E_TOO_LARGE;
	ret = text_check(text, len);
	if (ret != 0)
		return ret;
	if (len == 0 || text[len - 1] != '\n')
		return NOTE_E_NO_FINAL_NEWLINE;
	if (!next_line(text, len, &at, &line, &ll) || ll == 0 ||
	    ll > CHECKPOINT_ORIGIN_BYTES_MAX)
		return NOTE_E_BAD_ORIGIN;
	memcpy(c.origin, line, ll);
	c.origin[ll] = '\0';
	c.origin_len = ll;
	if (!next_line(text, len, &at, &line, &ll) ||
	    parse_u64_n(line, ll, UINT64_MAX, &c.size) != 0)
		return NOTE_E_BAD_SIZE;
	if (!next_line(text, len, &at, &line, &ll) || ll != 44 ||
	    parse_base64(line, ll, c.root, sizeof(c.root)) != 32)
		return NOTE_E_BAD_ROOT;
	if (at < len) {
		c.extensions = text + at;
		c.extensions_len = len - at;
		ret = check_extensions(c.extensions, c.extensions_len,
				       &c.nextensions);
		if (ret != 0)
			return ret;
	}
	*out = c;
	return 0;
}

int checkpoint_format(const struct checkpoint *c, char *buf, size_t cap,
		      size_t *len_out)
{
	struct out o = {buf, cap, 0, false};
	char dec[24];
	unsigned nx;
	int ret;

	if (c->origin_len > CHECKPOINT_ORIGIN_BYTES_MAX ||
	    !note_name_valid(c->origin, c->origin_len))
		return NOTE_E_BAD_ORIGIN;
	if (c->extensions_len > 0) {
		if (text_check(c->extensions, c->extensions_len) != 0)
			return NOTE_E_BAD_EXTENSION;
		ret = check_extensions(c->extensions, c->extensions_len, &nx);
		if (ret != 0)
			return ret;
	}
	int dl =
		snprintf(dec, sizeof(dec), "%llu", (unsigned long long)c->size);
	put(&o, c->origin, c->origin_len);
	put(&o, "\n", 1);
	put(&o, dec, (size_t)dl);
	put(&o, "\n", 1);
	put_b64(&o, c->root, sizeof(c->root));
	put(&o, "\n", 1);
	if (c->extensions_len > 0)
		put(&o, c->extensions, c->extensions_len);
	return finish(&o, len_out);
}
