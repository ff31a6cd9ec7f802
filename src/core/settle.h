/*
 * settle.h - an acquirer's settlement file (docs/acquirer.md, "Settlement
 * file"): CSV, UTF-8, one header line
 *   settlement_date,acquirer_ref,idempotency_key,type,amount,currency
 * then one row per settled operation.  settle_parse reads it into rows,
 * and every line that is not a valid row (wrong column count, bad UTF-8,
 * a field that does not parse, a row that repeats an earlier row's
 * acquirer_ref or idempotency_key) into a list of bad lines with its
 * number and why: a bad line never becomes a row, so nothing is matched
 * or booked for it.  Pure: no I/O.
 */
#ifndef TPW_CORE_SETTLE_H
#define TPW_CORE_SETTLE_H

#include "core/types.h"

#include <stddef.h>

#define SETTLE_HEADER                                                          \
	"settlement_date,acquirer_ref,idempotency_key,type,amount,currency"
#define SETTLE_REF_BYTES_MAX 64u
#define SETTLE_KEY_BYTES_MAX 128u
#define SETTLE_LINES_MAX     1000000u

enum settle_type { SETTLE_TOPUP = 1, SETTLE_PAYOUT = 2 };

struct settle_row {
	unsigned line; /* 1-based, the header is line 1 */
	u8 type;       /* enum settle_type */
	char date[11];
	char ref[SETTLE_REF_BYTES_MAX + 1];
	char key[SETTLE_KEY_BYTES_MAX + 1];
	u128 amount;
	char currency[4];
};

struct settle_bad {
	unsigned line;
	const char *why; /* a static sentence */
};

struct settle_file {
	struct settle_row *rows;
	size_t nrows;
	struct settle_bad *bad;
	size_t nbad;
};

/* Reads text (len bytes, no NUL needed) into *out (free with settle_free,
 * also after a failure).  0; -ENOMEM; -E2BIG past SETTLE_LINES_MAX
 * lines.  A file whose first line is not SETTLE_HEADER is one bad line
 * (line 1) and no rows. */
int settle_parse(const char *text, size_t len, struct settle_file *out);
void settle_free(struct settle_file *f);

#endif
