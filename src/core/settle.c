/*
 * settle.c - the settlement file's reader (settle.h).  Lines end in "\n"
 * ("\r\n" is accepted); a UTF-8 byte order mark before the header is
 * skipped; the last line may lack its "\n"; an empty last line is the
 * file's end, any other empty line is a bad line.  Fields are split on
 * ',' with no quoting (no field of the format may hold a comma or a
 * quote).  Duplicates are found by sorting (acquirer_ref, line) and
 * (idempotency_key, line) pairs: the later row of two is the bad one.
 */
#include "core/settle.h"
#include "core/u128.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define COLUMNS 6u

/* Is [s, s+n) well-formed UTF-8 (no overlong forms, no surrogates)? */
static bool utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1fu;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0fu;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07u;
		} else {
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3fu);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool all_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, s[i]) || s[i] == '\0')
			return false;
	return true;
}

#define DIGITS "0123456789"
#define UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define KEYSET "abcdefghijklmnopqrstuvwxyz" UPPER DIGITS "_.:-"

/* One data line into r: NULL, or why it is not a row. */
static const char *parse_row(const char *s, size_t n, struct settle_row *r)
{
	const char *f[COLUMNS];
	size_t fl[COLUMNS], nf = 0, start = 0;

	if (n == 0)
		return "an empty line";
	if (!utf8_ok((const unsigned char *)s, n))
		return "not UTF-8 (bad encoding)";
	if (memchr(s, '"', n))
		return "a quoted field (the format has none)";
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ',')
			continue;
		if (nf == COLUMNS)
			return "the wrong number of columns (6 expected)";
		f[nf] = s + start;
		fl[nf++] = i - start;
		start = i + 1;
	}
	if (nf != COLUMNS)
		return "the wrong number of columns (6 expected)";
	memset(r, 0, sizeof(*r));
	if (fl[0] != 10 || !all_of(f[0], 4, DIGITS) || f[0][4] != '-' ||
	    !all_of(f[0] + 5, 2, DIGITS) || f[0][7] != '-' ||
	    !all_of(f[0] + 8, 2, DIGITS))
		return "settlement_date is not YYYY-MM-DD";
	if (fl[1] == 0 || fl[1] > SETTLE_REF_BYTES_MAX ||
	    !all_of(f[1], fl[1], KEYSET))
		return "acquirer_ref is not 1..64 of [A-Za-z0-9_.:-]";
	if (fl[2] == 0 || fl[2] > SETTLE_KEY_BYTES_MAX ||
	    !all_of(f[2], fl[2], KEYSET))
		return "idempotency_key is not 1..128 of [A-Za-z0-9_.:-]";
	if (fl[3] == 5 && memcmp(f[3], "topup", 5) == 0)
		r->type = SETTLE_TOPUP;
	else if (fl[3] == 6 && memcmp(f[3], "payout", 6) == 0)
		r->type = SETTLE_PAYOUT;
	else
		return "type is not topup or payout";
	if (u128_parse_dec(f[4], fl[4], AMOUNT_MAX - 1, &r->amount) != 0 ||
	    r->amount == 0)
		return "amount is not a positive integer (minor units)";
	if (fl[5] != 3 || !all_of(f[5], 3, UPPER))
		return "currency is not an ISO 4217 code";
	memcpy(r->date, f[0], 10);
	memcpy(r->ref, f[1], fl[1]);
	memcpy(r->key, f[2], fl[2]);
	memcpy(r->currency, f[5], 3);
	return NULL;
}

static int add_bad(struct settle_file *out, size_t *cap, unsigned line,
		   const char *why)
{
	if (out->nbad == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct settle_bad *b = realloc(out->bad, c * sizeof(*b));
		if (!b)
			return -ENOMEM;
		out->bad = b;
		*cap = c;
	}
	out->bad[out->nbad++] = (struct settle_bad){line, why};
	return 0;
}

struct dup_ref {
	const char *text;
	size_t row;
};

static int cmp_dup(const void *a, const void *b)
{
	const struct dup_ref *x = a, *y = b;
	int c = strcmp(x->text, y->text);
	return c ? c : (x->row > y->row) - (x->row < y->row);
}

static int cmp_bad(const void *a, const void *b)
{
	const struct settle_bad *x = a, *y = b;
	return (x->line > y->line) - (x->line < y->line);
}

/* Rows that repeat an earlier row's ref or key: marked (line 0) and
 * reported; the rows kept are compacted. */
static int drop_duplicates(struct settle_file *out, size_t *bad_cap)
{
	size_t n = out->nrows;
	if (n == 0)
		return 0; /* nothing to sort (qsort of NULL is undefined) */
	struct dup_ref *d = calloc(n, sizeof(*d));
	bool *dup = calloc(n, sizeof(*dup));
	int ret = 0;

	if (!d || !dup) {
		free(d);
		free(dup);
		return -ENOMEM;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++)
			d[i] = (struct dup_ref){
				pass ? out->rows[i].key : out->rows[i].ref, i};
		qsort(d, n, sizeof(*d), cmp_dup);
		for (size_t i = 1; i < n; i++)
			if (strcmp(d[i].text, d[i - 1].text) == 0)
				dup[d[i].row] = true;
	}
	size_t k = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (dup[i])
			ret = add_bad(out, bad_cap, out->rows[i].line,
				      "a duplicated row (its acquirer_ref or "
				      "idempotency_key is on an earlier line)");
		else
			out->rows[k++] = out->rows[i];
	}
	out->nrows = k;
	free(d);
	free(dup);
	return ret;
}

int settle_parse(const char *text, size_t len, struct settle_file *out)
{
	size_t pos = 0, rows_cap = 0, bad_cap = 0;
	unsigned line = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len && ret == 0) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t n = end - pos;
		if (n && text[pos + n - 1] == '\r')
			n--;
		if (++line > SETTLE_LINES_MAX) {
			ret = -E2BIG;
			break;
		}
		if (line == 1) {
			if (n != strlen(SETTLE_HEADER) ||
			    memcmp(text + pos, SETTLE_HEADER, n) != 0) {
				ret = add_bad(
					out, &bad_cap, 1,
					"the header is not " SETTLE_HEADER);
				break;
			}
		} else {
			struct settle_row r;
			const char *why = parse_row(text + pos, n, &r);
			if (why) {
				ret = add_bad(out, &bad_cap, line, why);
			} else {
				if (out->nrows == rows_cap) {
					size_t c = rows_cap ? rows_cap * 2 : 64;
					struct settle_row *p = realloc(
						out->rows, c * sizeof(*p));
					if (!p) {
						ret = -ENOMEM;
						break;
					}
					out->rows = p;
					rows_cap = c;
				}
				r.line = line;
				out->rows[out->nrows++] = r;
			}
		}
		pos = nl ? end + 1 : len;
	}
	if (line == 0 && ret == 0)
		ret = add_bad(out, &bad_cap, 1, "the file is empty");
	if (ret == 0)
		ret = drop_duplicates(out, &bad_cap);
	if (ret == 0 && out->nbad > 1)
		qsort(out->bad, out->nbad, sizeof(*out->bad), cmp_bad);
	return ret;
}

void settle_free(struct settle_file *f)
{
	free(f->rows);
	free(f->bad);
	memset(f, 0, sizeof(*f));
}
