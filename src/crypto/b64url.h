/*
 * b64url.h - base64url without padding (RFC 4648 section 5), strict.
 *
 * The only text form of bytes in JOSE: every segment of a compact JWS and
 * every key member of a JWK.  Decoding is strict so that one byte string
 * has exactly one accepted text (no malleable tokens): padding ('='),
 * whitespace and any character outside [A-Za-z0-9_-] are refused, a text
 * whose length is 1 modulo 4 is refused, and the unused low bits of the
 * last character must be zero (RFC 4648 section 3.5, "canonical").
 *
 * Both directions run in time that depends on the length only, never on
 * the bytes (no table lookups, no early exit), because private key members
 * ("d") pass through here.
 *
 * Ownership: the caller owns every buffer.  Nothing is allocated.
 * Limits: a text is at most B64URL_TEXT_BYTES_MAX characters, which bounds
 * the binary side to B64URL_BIN_BYTES_MAX bytes.
 */
#ifndef TPW_CRYPTO_B64URL_H
#define TPW_CRYPTO_B64URL_H

#include <stddef.h>

#define B64URL_TEXT_BYTES_MAX ((size_t)1 << 20)
#define B64URL_BIN_BYTES_MAX  (B64URL_TEXT_BYTES_MAX / 4 * 3)

/* Characters that bin_len bytes encode to (without a terminating NUL). */
#define B64URL_ENCODED_LEN(bin_len)                                            \
	((bin_len) / 3 * 4 + ((bin_len) % 3 ? (bin_len) % 3 + 1 : 0))

size_t b64url_encoded_len(size_t bin_len);

/*
 * Bytes that a text of text_len characters decodes to, or 0 for a length
 * no canonical text has (1 modulo 4).  Exact for every valid text.
 */
size_t b64url_decoded_len(size_t text_len);

/*
 * Writes the encoding of bin[0..bin_len) and a NUL to out, which must hold
 * b64url_encoded_len(bin_len) + 1 bytes.  Returns 0, -E2BIG when bin_len
 * exceeds B64URL_BIN_BYTES_MAX, -ENOSPC when out is too small (out is
 * then left empty if out_size > 0).
 */
int b64url_encode(char *out, size_t out_size, const void *bin, size_t bin_len);

/*
 * Decodes text[0..text_len) into out and sets *out_len.  Returns 0,
 * -E2BIG for a text longer than B64URL_TEXT_BYTES_MAX, -ENOSPC when out
 * is smaller than b64url_decoded_len(text_len), -EINVAL for a text that
 * is not canonical base64url (see above).  On any failure the first
 * min(out_size, decoded length) bytes of out are zeroed and *out_len is 0,
 * so a half-decoded secret never stays behind.  An empty text decodes to
 * zero bytes.
 */
int b64url_decode(void *out, size_t out_size, const char *text, size_t text_len,
		  size_t *out_len);

#endif
