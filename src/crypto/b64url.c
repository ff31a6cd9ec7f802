/*
 * b64url.c - strict, constant-time base64url without padding (see
 * b64url.h).  libsodium's sodium_base642bin is not used: with the
 * URLSAFE_NO_PADDING variant it stops at a '=' and reports success when
 * asked where it stopped, and accepting "AA==" as "AA" is exactly the
 * malleability a JWS verifier must not have.  The character arithmetic
 * follows the same branch-free idea (masks instead of a table).
 */
#include "crypto/b64url.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "banned.h"

/* All ones when a < b, else 0; a and b are below 2^31. */
static unsigned mask_lt(unsigned a, unsigned b)
{
	return 0U - ((a - b) >> 31);
}

static unsigned mask_ge(unsigned a, unsigned b)
{
	return ~mask_lt(a, b);
}

static unsigned mask_in(unsigned c, unsigned lo, unsigned hi)
{
	return mask_ge(c, lo) & mask_lt(c, hi + 1);
}

/* Sextet 0..63 to its character, without branches. */
static char encode_sextet(unsigned x)
{
	unsigned c = x + 'A';

	c += mask_ge(x, 26) & 6U;	  /* 'a' - 'A' - 26 */
	c += mask_ge(x, 52) & (0U - 75U); /* '0' - 'a' - 26 */
	c += mask_ge(x, 62) & (0U - 13U); /* '-' - '0' - 10 */
	c += mask_in(x, 63, 63) & 49U;	  /* '_' - '-' - 1 */
	return (char)c;
}

/* Character to sextet in bits 0..5; bit 8 set when c is not in the
 * alphabet. */
static unsigned decode_char(unsigned c)
{
	unsigned v = 0, ok = 0, m;

	m = mask_in(c, 'A', 'Z');
	v |= m & (c - 'A');
	ok |= m;
	m = mask_in(c, 'a', 'z');
	v |= m & (c - 'a' + 26);
	ok |= m;
	m = mask_in(c, '0', '9');
	v |= m & (c - '0' + 52);
	ok |= m;
	m = mask_in(c, '-', '-');
	v |= m & 62U;
	ok |= m;
	m = mask_in(c, '_', '_');
	v |= m & 63U;
	ok |= m;
	return (v & 63U) | (~ok & 0x100U);
}

size_t b64url_encoded_len(size_t bin_len)
{
	return B64URL_ENCODED_LEN(bin_len);
}

size_t b64url_decoded_len(size_t text_len)
{
	if (text_len % 4 == 1)
		return 0;
	return text_len / 4 * 3 + (text_len % 4 ? text_len % 4 - 1 : 0);
}

int b64url_encode(char *out, size_t out_size, const void *bin, size_t bin_len)
{
	const unsigned char *in = bin;
	size_t need, o = 0, i = 0;

	if (out_size > 0)
		out[0] = '\0';
	if (bin_len > B64URL_BIN_BYTES_MAX)
		return -E2BIG;
	need = b64url_encoded_len(bin_len);
	if (out_size < need + 1)
		return -ENOSPC;
	for (; i + 3 <= bin_len; i += 3) {
		unsigned w = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 |
			     in[i + 2];
		out[o++] = encode_sextet(w >> 18);
		out[o++] = encode_sextet((w >> 12) & 63U);
		out[o++] = encode_sextet((w >> 6) & 63U);
		out[o++] = encode_sextet(w & 63U);
	}
	if (bin_len - i == 1) {
		unsigned w = (unsigned)in[i] << 16;
		out[o++] = encode_sextet(w >> 18);
		out[o++] = encode_sextet((w >> 12) & 63U);
	} else if (bin_len - i == 2) {
		unsigned w = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = encode_sextet(w >> 18);
		out[o++] = encode_sextet((w >> 12) & 63U);
		out[o++] = encode_sextet((w >> 6) & 63U);
	}
	out[o] = '\0';
	return 0;
}

int b64url_decode(void *out, size_t out_size, const char *text, size_t text_len,
		  size_t *out_len)
{
	unsigned char *o = out;
	unsigned bad = 0, acc = 0, bits = 0;
	size_t need, n = 0;
	int ret;

	*out_len = 0;
	if (text_len > B64URL_TEXT_BYTES_MAX)
		return -E2BIG;
	if (text_len % 4 == 1)
		return -EINVAL;
	need = b64url_decoded_len(text_len);
	if (out_size < need)
		return -ENOSPC;
	for (size_t i = 0; i < text_len; i++) {
		unsigned d = decode_char((unsigned char)text[i]);
		bad |= d;
		acc = (acc << 6 | (d & 63U)) & 0xffffU;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* The bits left over must be zero: one text per byte string. */
	bad |= ((0U - (acc & ((1U << bits) - 1U))) >> 31) << 8;
	if (bad & 0x100U) {
		sodium_memzero(o, need);
		ret = -EINVAL;
		goto out;
	}
	*out_len = n;
	ret = 0;
out:
	return ret;
}
