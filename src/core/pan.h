/*
 * pan.h - card numbers (primary account numbers) as the card vault needs
 * them: the checks a PAN must pass before it is stored, the masked form
 * that may be shown (PCI DSS 3.4.1: at most the first six and the last
 * four digits), the brand read from the leading digits (the BIN), and
 * the expiry check.  See docs/vault.md.
 *
 * A PAN is 12 to 19 ASCII digits (ISO/IEC 7812) whose last digit is the
 * Luhn check digit.  No spaces or dashes are accepted: the API takes the
 * digits only, so a PAN has exactly one spelling and one fingerprint.
 *
 * Pure: no I/O, no clock (the current month is a parameter), no
 * allocation.  Nothing here keeps a copy of a PAN.
 */
#ifndef TPW_CORE_PAN_H
#define TPW_CORE_PAN_H

#include <stdbool.h>
#include <stddef.h>

#define PAN_DIGITS_MIN 12
#define PAN_DIGITS_MAX 19
/* The masked form keeps at most this many leading and trailing digits,
 * and always hides at least PAN_MASKED_MIN digits. */
#define PAN_MASK_LEAD_MAX   6
#define PAN_MASK_TAIL	    4
#define PAN_MASKED_MIN	    6
#define PAN_BRAND_BYTES_MAX 16

/* Why a PAN is refused: stable names, they travel in problem details. */
#define PAN_CHECKS(X)                                                          \
	X(OK, "ok")                                                            \
	X(NOT_DIGITS, "not_digits")                                            \
	X(LENGTH, "bad_length")                                                \
	X(LUHN, "bad_check_digit")

enum pan_check {
#define PAN_ENUM_(name, text) PAN_##name,
	PAN_CHECKS(PAN_ENUM_)
#undef PAN_ENUM_
};

/* The stable name of a pan_check. */
const char *pan_check_name(enum pan_check c);

/* Does s[0..n) pass the Luhn (mod 10) check?  s must be digits. */
bool pan_luhn_valid(const char *s, size_t n);

/* The Luhn check digit ('0'..'9') to append to the digits s[0..n). */
char pan_luhn_digit(const char *s, size_t n);

/* Is s[0..n) a PAN: digits only, PAN_DIGITS_MIN..PAN_DIGITS_MAX of them,
 * Luhn-valid?  The first failure in that order. */
enum pan_check pan_check(const char *s, size_t n);

/* The masked form of a PAN s[0..n) (pan_check said OK) into out (n + 1
 * bytes): the first min(6, n - 10) digits, '*' for the hidden ones, the
 * last four; at least PAN_MASKED_MIN digits are hidden. */
void pan_mask(const char *s, size_t n, char *out);

/* The brand by the leading digits: "visa", "mastercard", "amex",
 * "discover", "jcb", "diners", "unionpay", "maestro", or "unknown". */
const char *pan_brand(const char *s, size_t n);

/* Is the expiry (month 1..12, four-digit year) the current month or
 * later?  The card is valid to the end of its month. */
bool pan_expiry_current(unsigned month, unsigned year, unsigned now_month,
			unsigned now_year);

#endif
