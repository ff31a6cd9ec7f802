/*
 * fuzz_settle.c - libFuzzer harness for the settlement file's reader
 * (core/settle.h, docs/acquirer.md "Settlement file").  The input is the
 * file.  Checks:
 *   - settle_parse returns 0 (or -ENOMEM / -E2BIG) and never reads past
 *     the input (ASan);
 *   - every row is valid as the format says: a date of 10 characters,
 *     a reference and a key of the allowed characters, a type, an
 *     amount above 0, a currency of three capitals;
 *   - rows are in line order, no two rows share a reference or a key,
 *     and no line is both a row and a bad line; bad lines are sorted and
 *     each says why;
 *   - the same bytes parse to the same rows twice.
 *
 * Build and run (see Makefile: make fuzz):
 *   build/fuzz/fuzz_settle -dict=tests/fuzz/settle.dict
 * tests/fuzz/corpus/settle
 */
#include "core/settle.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char KEYSET[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
			     "TUVWXYZ0123456789_.:-";

static void check_row(const struct settle_row *r)
{
	CHECK(strlen(r->date) == 10 && r->date[4] == '-' && r->date[7] == '-');
	CHECK(strlen(r->ref) >= 1 && strspn(r->ref, KEYSET) == strlen(r->ref));
	CHECK(strlen(r->key) >= 1 && strspn(r->key, KEYSET) == strlen(r->key));
	CHECK(r->type == SETTLE_TOPUP || r->type == SETTLE_PAYOUT);
	CHECK(r->amount > 0);
	CHECK(strlen(r->currency) == 3 &&
	      strspn(r->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3);
	CHECK(r->line >= 2);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct settle_file f, g;
	/* A copy of exactly size bytes: the reader must not need a NUL. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	int ret = settle_parse(text, size, &f);
	CHECK(ret == 0 || ret == -12 /* ENOMEM */ || ret == -7 /* E2BIG */);
	if (ret == 0) {
		for (size_t i = 0; i < f.nrows; i++) {
			check_row(&f.rows[i]);
			if (i)
				CHECK(f.rows[i].line > f.rows[i - 1].line);
			for (size_t j = 0; j < i; j++)
				CHECK(strcmp(f.rows[i].ref, f.rows[j].ref) &&
				      strcmp(f.rows[i].key, f.rows[j].key));
			for (size_t b = 0; b < f.nbad; b++)
				CHECK(f.bad[b].line != f.rows[i].line);
		}
		for (size_t b = 0; b < f.nbad; b++) {
			CHECK(f.bad[b].why && f.bad[b].why[0]);
			CHECK(f.bad[b].line >= 1);
			if (b)
				CHECK(f.bad[b].line >= f.bad[b - 1].line);
		}
		CHECK(settle_parse(text, size, &g) == 0);
		CHECK(g.nrows == f.nrows && g.nbad == f.nbad);
		CHECK(f.nrows == 0 ||
		      memcmp(g.rows, f.rows, f.nrows * sizeof(*f.rows)) == 0);
		settle_free(&g);
	}
	settle_free(&f);
	free(text);
	return 0;
}
