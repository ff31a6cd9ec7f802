/*
 * pan.c - card number checks, masking and brands (pan.h).  The brand
 * table is ranges of the leading digits as the networks publish them;
 * the first matching row wins, so narrower ranges come first.
 */
#include "core/pan.h"

#include "banned.h"

static const char *const check_names[] = {
#define PAN_NAME_(name, text) text,
	PAN_CHECKS(PAN_NAME_)
#undef PAN_NAME_
};

const char *pan_check_name(enum pan_check c)
{
	if ((size_t)c >= sizeof(check_names) / sizeof(check_names[0]))
		return "unknown";
	return check_names[c];
}

static unsigned luhn_sum(const char *s, size_t n, bool double_last)
{
	unsigned sum = 0;
	bool dbl = double_last;

	for (size_t i = n; i-- > 0;) {
		unsigned d = (unsigned)(s[i] - '0');
		if (dbl) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
		dbl = !dbl;
	}
	return sum;
}

bool pan_luhn_valid(const char *s, size_t n)
{
	return n > 0 && luhn_sum(s, n, false) % 10 == 0;
}

char pan_luhn_digit(const char *s, size_t n)
{
	return (char)('0' + (10 - luhn_sum(s, n, true) % 10) % 10);
}

enum pan_check pan_check(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PAN_NOT_DIGITS;
	}
	if (n < PAN_DIGITS_MIN || n > PAN_DIGITS_MAX)
		return PAN_LENGTH;
	if (!pan_luhn_valid(s, n))
		return PAN_LUHN;
	return PAN_OK;
}

void pan_mask(const char *s, size_t n, char *out)
{
	size_t lead = n - PAN_MASK_TAIL - PAN_MASKED_MIN;

	if (lead > PAN_MASK_LEAD_MAX)
		lead = PAN_MASK_LEAD_MAX;
	for (size_t i = 0; i < n; i++)
		out[i] = (i < lead || i >= n - PAN_MASK_TAIL) ? s[i] : '*';
	out[n] = '\0';
}

/* The number formed by the first k digits of s, or -1 if n < k. */
static long prefix(const char *s, size_t n, size_t k)
{
	long v = 0;

	if (n < k)
		return -1;
	for (size_t i = 0; i < k; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

struct brand_row {
	unsigned digits;
	long lo, hi;
	const char *brand;
};

static const struct brand_row brands[] = {
	{2, 34, 34, "amex"},
	{2, 37, 37, "amex"},
	{6, 622126, 622925, "discover"},
	{4, 6011, 6011, "discover"},
	{3, 644, 649, "discover"},
	{2, 65, 65, "discover"},
	{4, 3528, 3589, "jcb"},
	{3, 300, 305, "diners"},
	{2, 36, 36, "diners"},
	{2, 38, 39, "diners"},
	{4, 2221, 2720, "mastercard"},
	{2, 51, 55, "mastercard"},
	{2, 62, 62, "unionpay"},
	{1, 4, 4, "visa"},
	{2, 50, 50, "maestro"},
	{2, 56, 58, "maestro"},
	{1, 6, 6, "maestro"},
};

const char *pan_brand(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(brands) / sizeof(brands[0]); i++) {
		long p = prefix(s, n, brands[i].digits);
		if (p >= brands[i].lo && p <= brands[i].hi)
			return brands[i].brand;
	}
	return "unknown";
}

bool pan_expiry_current(unsigned month, unsigned year, unsigned now_month,
			unsigned now_year)
{
	if (month < 1 || month > 12)
		return false;
	return year > now_year || (year == now_year && month >= now_month);
}
