/*
 * fuzz_ff1.c - libFuzzer harness for src/crypto/ff1.h.
 *
 * The input picks the key length and radix (byte 0), the key (the next
 * 32 bytes), the tweak's length (byte 33) and the tweak, and the rest
 * are numerals (reduced to the radix, or kept raw when byte 0 says so).
 * Properties: nothing crashes; a refusal is -EINVAL or -ERANGE and
 * happens exactly outside the documented domain; an accepted input
 * encrypts to numerals of the radix, and decrypts back to itself, in
 * place and out of place.
 */
#include "crypto/ff1.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	u8 x[FF1_NUMERALS_MAX + 8], y[FF1_NUMERALS_MAX + 8],
		z[FF1_NUMERALS_MAX + 8];
	struct ff1 f;
	unsigned radix;
	size_t key_len, tlen, n;
	const u8 *key, *tweak;
	unsigned long long dom = 1;
	bool raw, in_range = true;
	int r;

	if (size < 34)
		return 0;
	radix = 2 + (data[0] & 0x3f) % 35;
	key_len = (data[0] & 0x40) ? 32 : 16;
	raw = data[0] & 0x80;
	key = data + 1;
	tlen = data[33];
	data += 34;
	size -= 34;
	if (tlen > size)
		tlen = size;
	tweak = data;
	data += tlen;
	size -= tlen;
	n = size > sizeof(x) ? sizeof(x) : size;
	for (size_t i = 0; i < n; i++) {
		x[i] = raw ? data[i] : (u8)(data[i] % radix);
		in_range = in_range && x[i] < radix;
	}
	CHECK(ff1_init(&f, key, key_len, radix) == 0);
	for (size_t i = 0; i < n && dom < FF1_DOMAIN_MIN; i++)
		dom *= radix;
	r = ff1_encrypt(&f, tweak, tlen, x, n, y);
	if (n < 2 || n > FF1_NUMERALS_MAX || dom < FF1_DOMAIN_MIN) {
		CHECK(r == -EINVAL);
		return 0;
	}
	if (!in_range) {
		CHECK(r == -ERANGE);
		return 0;
	}
	CHECK(r == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(y[i] < radix);
	CHECK(ff1_decrypt(&f, tweak, tlen, y, n, z) == 0);
	CHECK(memcmp(x, z, n) == 0);
	memcpy(z, x, n);
	CHECK(ff1_encrypt(&f, tweak, tlen, z, n, z) == 0);
	CHECK(memcmp(y, z, n) == 0);
	ff1_clear(&f);
	return 0;
}
