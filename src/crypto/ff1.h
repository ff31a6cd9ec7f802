/*
 * ff1.h - format-preserving encryption: FF1 of NIST SP 800-38G (and its
 * first revision), over AES-128 or AES-256, for radixes 2..36.
 *
 * Why: the card vault (docs/vault.md) can hand out tokens that look like
 * the digits they stand for; FF1 is the one FPE mode NIST still
 * approves (FF3-1 left the revision).  A numeral string of n numerals in
 * [0, radix) encrypts to another of the same length; the tweak (public,
 * up to FF1_TWEAK_BYTES_MAX bytes) separates domains.
 *
 * Domain (SP 800-38G Rev. 1): radix^n >= FF1_DOMAIN_MIN (10^6) and
 * 2 <= n <= FF1_NUMERALS_MAX (a bound of this implementation; the
 * standard allows 2^32).  Anything else is -EINVAL (-ERANGE for a
 * numeral >= radix), and the output is untouched.
 *
 * Pure: no I/O, no clock, no allocation.  AES is nettle's (linked
 * already, see the Makefile's PKGS); the key schedule lives in the
 * struct ff1 and ff1_clear wipes it.  A struct ff1 is read-only after
 * ff1_init, so any number of threads may encrypt with one at once.
 */
#ifndef TPW_CRYPTO_FF1_H
#define TPW_CRYPTO_FF1_H

#include <stddef.h>

#include <nettle/aes.h>

#include "core/types.h"

#define FF1_NUMERALS_MAX    64
#define FF1_TWEAK_BYTES_MAX 256
#define FF1_RADIX_MAX	    36
#define FF1_DOMAIN_MIN	    1000000u

struct ff1 {
	union {
		struct aes128_ctx k128;
		struct aes256_ctx k256;
	} aes;
	unsigned key_bytes; /* 16 or 32 */
	unsigned radix;
};

/* Keys f with key[0..key_len) (16 or 32 bytes) for radix: 0 or -EINVAL. */
int ff1_init(struct ff1 *f, const u8 *key, size_t key_len, unsigned radix);

/* Wipes the key schedule. */
void ff1_clear(struct ff1 *f);

/* Numerals in[0..n) (each < radix) to out[0..n) (may be in): 0, -EINVAL
 * (n or tweak out of bounds, domain too small), -ERANGE (a numeral). */
int ff1_encrypt(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		const u8 *in, size_t n, u8 *out);
int ff1_decrypt(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		const u8 *in, size_t n, u8 *out);

/* The same over text: the numerals are "0-9a-z" (lower case), the first
 * radix of them; out gets n characters and a NUL (n + 1 bytes). */
int ff1_encrypt_text(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		     const char *in, size_t n, char *out);
int ff1_decrypt_text(const struct ff1 *f, const u8 *tweak, size_t tweak_len,
		     const char *in, size_t n, char *out);

#endif
