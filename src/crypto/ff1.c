/*
 * ff1.c - FF1 (NIST SP 800-38G) over nettle's AES: the Feistel rounds
 * with the numbers kept as byte strings (big-endian) and numeral
 * strings, so no general big-integer library is needed: NUM_radix is a
 * multiply-and-add over bytes, and "y mod radix^m" is read off as the
 * last m numerals of y by long division, after which the round's sum
 * (or difference) is a numeral-wise add (subtract) that drops its final
 * carry (borrow).  See ff1.h for the contract.
 */
#include "crypto/ff1.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "banned.h"

#define BLOCK 16
/* radix^v for v <= FF1_NUMERALS_MAX / 2 and radix <= 36: 166 bits. */
#define NUM_BYTES_MAX 32
#define Q_BYTES_MAX   (FF1_TWEAK_BYTES_MAX + BLOCK + 1 + NUM_BYTES_MAX)

static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";

int ff1_init(struct ff1 *f, const u8 *key, size_t key_len, unsigned radix)
{
	if (radix < 2 || radix > FF1_RADIX_MAX)
		return -EINVAL;
	memset(f, 0, sizeof(*f));
	if (key_len == 16)
		aes128_set_encrypt_key(&f->aes.k128, key);
	else if (key_len == 32)
		aes256_set_encrypt_key(&f->aes.k256, key);
	else
		return -EINVAL;
	f->key_bytes = (unsigned)key_len;
	f->radix = radix;
	return 0;
}

void ff1_clear(struct ff1 *f)
{
	sodium_memzero(f, sizeof(*f));
}

static void ciph(const struct ff1 *f, const u8 in[BLOCK], u8 out[BLOCK])
{
	if (f->key_bytes == 16)
		aes128_encrypt(&f->aes.k128, BLOCK, out, in);
	else
		aes256_encrypt(&f->aes.k256, BLOCK, out, in);
}

/* x[0..len) = x * mul + add, big-endian. */
static void mul_add(u8 *x, size_t len, unsigned mul, unsigned add)
{
	unsigned carry = add;

	for (size_t i = len; i-- > 0;) {
		unsigned v = x[i] * mul + carry;
		x[i] = (u8)v;
		carry = v >> 8;
	}
}

/* b of the standard: ceil(ceil(v * log2(radix)) / 8), that is the bytes
 * of the bit length of radix^v - 1, computed exactly. */
static size_t num_bytes(unsigned radix, size_t v)
{
	u8 x[NUM_BYTES_MAX];
	size_t bits = 0;

	memset(x, 0, sizeof(x));
	x[NUM_BYTES_MAX - 1] = 1;
	for (size_t i = 0; i < v; i++)
		mul_add(x, sizeof(x), radix, 0);
	for (size_t i = NUM_BYTES_MAX; i-- > 0;) { /* minus 1 */
		if (x[i]--)
			break;
	}
	for (size_t i = 0; i < NUM_BYTES_MAX; i++) {
		if (x[i]) {
			unsigned top = x[i];
			bits = (NUM_BYTES_MAX - 1 - i) * 8;
			while (top) {
				bits++;
				top >>= 1;
			}
			break;
		}
	}
	return (bits + 7) / 8;
}

/* out[0..b) = NUM_radix(x[0..len)), big-endian. */
static void num_radix(const u8 *x, size_t len, unsigned radix, u8 *out,
		      size_t b)
{
	memset(out, 0, b);
	for (size_t i = 0; i < len; i++)
		mul_add(out, b, radix, x[i]);
}

/* out[0..m) = STR_radix^m(y mod radix^m) for y = NUM(y[0..len)); y is
 * consumed (divided down). */
static void digits_mod(u8 *y, size_t len, unsigned radix, u8 *out, size_t m)
{
	for (size_t j = m; j-- > 0;) {
		unsigned rem = 0;
		for (size_t i = 0; i < len; i++) {
			unsigned cur = (rem << 8) | y[i];
			y[i] = (u8)(cur / radix);
			rem = cur % radix;
		}
		out[j] = (u8)rem;
	}
}

static int check(const struct ff1 *f, size_t tweak_len, const u8 *in, size_t n)
{
	unsigned long long dom = 1;

	if (n < 2 || n > FF1_NUMERALS_MAX || tweak_len > FF1_TWEAK_BYTES_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n && dom < FF1_DOMAIN_MIN; i++)
		dom *= f->radix;
	if (dom < FF1_DOMAIN_MIN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (in[i] >= f->radix)
			return -ERANGE;
	}
	return 0;
}

/* The round function's y (d bytes into y) for round i over numerals
 * x[0..len) (B when encrypting, A when decrypting); ciph_p is CIPH(P). */
static void round_y(const struct ff1 *f, const u8 ciph_p[BLOCK],
		    const u8 *tweak, size_t t, size_t b, size_t d, unsigned i,
		    const u8 *x, size_t len, u8 *y)
{
	u8 q[Q_BYTES_MAX], r[BLOCK], blk[BLOCK];
	size_t pad = (BLOCK - (t + b + 1) % BLOCK) % BLOCK;
	size_t qlen = t + pad + 1 + b;

	if (t)
		memcpy(q, tweak, t);
	memset(q + t, 0, pad);
	q[t + pad] = (u8)i;
	num_radix(x, len, f->radix, q + t + pad + 1, b);
	memcpy(r, ciph_p, BLOCK);
	for (size_t off = 0; off < qlen; off += BLOCK) {
		for (size_t k = 0; k < BLOCK; k++)
			blk[k] = r[k] ^ q[off + k];
		ciph(f, blk, r);
	}
	for (size_t j = 0; j * BLOCK < d; j++) {
		u8 s[BLOCK];
		size_t take = d - j * BLOCK < BLOCK ? d - j * BLOCK : BLOCK;
		if (j == 0) {
			memcpy(s, r, BLOCK);
		} else {
			memcpy(blk, r, BLOCK);
			for (size_t k = 0; k < 8; k++) /* R xor [j]^16 */
				blk[BLOCK - 1 - k] ^= (u8)((u64)j >> (8 * k));
			ciph(f, blk, s);
		}
		memcpy(y + j * BLOCK, s, take);
	}
	sodium_memzero(q, sizeof(q));
	sodium_memzero(r, sizeof(r));
	sodium_memzero(blk, sizeof(blk));
}

static int feistel(const struct ff1 *f, const u8 *tweak, size_t t, const u8 *in,
		   size_t n, u8 *out, int enc)
{
	u8 a[FF1_NUMERALS_MAX], bb[FF1_NUMERALS_MAX], c[FF1_NUMERALS_MAX];
	u8 p[BLOCK], ciph_p[BLOCK], y[NUM_BYTES_MAX + BLOCK],
		ym[FF1_NUMERALS_MAX];
	size_t u = n / 2, v = n - u, b, d;
	int ret = check(f, t, in, n);

	if (ret)
		return ret;
	b = num_bytes(f->radix, v);
	d = 4 * ((b + 3) / 4) + 4;
	p[0] = 1;
	p[1] = 2;
	p[2] = 1;
	p[3] = (u8)(f->radix >> 16);
	p[4] = (u8)(f->radix >> 8);
	p[5] = (u8)f->radix;
	p[6] = 10;
	p[7] = (u8)(u % 256);
	for (unsigned k = 0; k < 4; k++) {
		p[8 + k] = (u8)((u64)n >> (24 - 8 * k));
		p[12 + k] = (u8)((u64)t >> (24 - 8 * k));
	}
	ciph(f, p, ciph_p);
	memcpy(a, in, u);
	memcpy(bb, in + u, v);
	for (unsigned r = 0; r < 10; r++) {
		unsigned i = enc ? r : 9 - r;
		size_t m = (i % 2 == 0) ? u : v;
		/* the numerals the round hashes: B when encrypting, A
		 * when decrypting; the other half has m numerals */
		const u8 *src = enc ? bb : a;
		size_t srclen = (i % 2 == 0) ? v : u;
		unsigned carry = 0;

		round_y(f, ciph_p, tweak, t, b, d, i, src, srclen, y);
		digits_mod(y, d, f->radix, ym, m);
		if (enc) { /* C = (A + y) mod radix^m */
			for (size_t k = m; k-- > 0;) {
				unsigned s = a[k] + ym[k] + carry;
				carry = s >= f->radix;
				c[k] = (u8)(carry ? s - f->radix : s);
			}
			memcpy(a, bb, srclen);
			memcpy(bb, c, m);
		} else { /* C = (B - y) mod radix^m */
			for (size_t k = m; k-- > 0;) {
				int s = (int)bb[k] - (int)ym[k] - (int)carry;
				carry = s < 0;
				c[k] = (u8)(carry ? s + (int)f->radix : s);
			}
			memcpy(bb, a, srclen);
			memcpy(a, c, m);
		}
	}
	memcpy(out, a, u);
	memcpy(out + u, bb, v);
	sodium_memzero(a, sizeof(a));
	sodium_memzero(bb, sizeof(bb));
	sodium_memzero(c, sizeof(c));
	sodium_memzero(y, sizeof(y));
	sodium_memzero(ym, sizeof(ym));
	return 0;
}

int ff1_encrypt(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		const u8 *in, size_t n, u8 *out)
{
	return feistel(f, tweak, tweak_len, in, n, out, 1);
}

int ff1_decrypt(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		const u8 *in, size_t n, u8 *out)
{
	return feistel(f, tweak, tweak_len, in, n, out, 0);
}

static int text_crypt(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		      const char *in, size_t n, char *out, int enc)
{
	u8 x[FF1_NUMERALS_MAX] = {0};
	int ret;

	if (n > FF1_NUMERALS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *at =
			in[i] ? memchr(alphabet, in[i], f->radix) : NULL;
		if (!at)
			return -ERANGE;
		x[i] = (u8)(at - alphabet);
	}
	ret = feistel(f, tweak, tweak_len, x, n, x, enc);
	if (ret == 0) {
		for (size_t i = 0; i < n; i++)
			out[i] = alphabet[x[i]];
		out[n] = '\0';
	}
	sodium_memzero(x, sizeof(x));
	return ret;
}

int ff1_encrypt_text(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		     const char *in, size_t n, char *out)
{
	return text_crypt(f, tweak, tweak_len, in, n, out, 1);
}

int ff1_decrypt_text(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		     const char *in, size_t n, char *out)
{
	return text_crypt(f, tweak, tweak_len, in, n, out, 0);
}
