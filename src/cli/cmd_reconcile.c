/*
 * cmd_reconcile.c - `tpwallet reconcile SETTLEMENT.csv --server URL`
 * (docs/cli.md, docs/acquirer.md "Reconciliation"): sends the acquirer's
 * settlement file (base64, so that a line in a bad encoding reaches the
 * server as it is and is reported by its number) to POST
 * /v1/reconciliations and prints the report: text (default), --json (the
 * server's answer) or --csv (one line per difference and bad line).
 * --book-suspense ACCOUNT --reason R books each difference to the
 * suspense account.  Exit 0 when the file and the ledger agree with no
 * bad line, 1 when there is any difference or bad line (or a refusal),
 * 2 on usage errors.
 */
#include "cli/cli.h"
#include "net/http.h"

#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define SETTLEMENT_BYTES_MAX ((size_t)4 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet reconcile SETTLEMENT.csv [options]\n\n"
		"Match an acquirer's settlement file against the ledger's "
		"top-ups\n(POST /v1/reconciliations, right "
		"acquirer:reconcile): matched, missing in\nthe ledger, "
		"missing at the acquirer, amount or currency mismatch, and "
		"each\nbad line by its number.\n\n"
		"options:\n"
		"  --json                 the report as the server's JSON\n"
		"  --csv                  the differences and bad lines as "
		"CSV\n"
		"  --book-suspense ID     book each difference to account ID "
		"(with --reason)\n"
		"  --reason R             why, kept as the bookings' "
		"user_data_128 (BLAKE2b)\n"
		"%s%s\n"
		"Exit 0 when nothing differs and no line is bad, 1 when "
		"something does\n(or the server refused), 2 on usage "
		"errors.\nSee docs/cli.md and docs/acquirer.md.\n\n"
		"Example:\n"
		"  tpwallet reconcile settlement-2026-12-07.csv\n",
		client_usage_common, client_usage_auth);
}

static const char *str(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static void print_text(json_t *rep)
{
	json_t *counts = json_object_get(rep, "counts");
	json_t *items = json_object_get(rep, "items");
	json_t *bad = json_object_get(rep, "bad_lines");
	size_t i;
	json_t *x;

	printf("rows %lld, matched %lld, missing in the ledger %lld, "
	       "missing at the acquirer %lld, amount mismatch %lld, currency "
	       "mismatch %lld, bad lines %lld%s\n",
	       (long long)json_integer_value(json_object_get(rep, "rows")),
	       (long long)json_integer_value(
		       json_object_get(counts, "matched")),
	       (long long)json_integer_value(
		       json_object_get(counts, "missing_in_ledger")),
	       (long long)json_integer_value(
		       json_object_get(counts, "missing_at_acquirer")),
	       (long long)json_integer_value(
		       json_object_get(counts, "amount_mismatch")),
	       (long long)json_integer_value(
		       json_object_get(counts, "currency_mismatch")),
	       (long long)json_integer_value(
		       json_object_get(rep, "bad_line_count")),
	       json_is_true(json_object_get(rep, "booked"))
		       ? "; differences booked to suspense"
		       : "");
	json_array_foreach(items, i, x)
	{
		json_t *line = json_object_get(x, "line");
		char where[32] = "ledger";
		if (json_is_integer(line))
			snprintf(where, sizeof(where), "line %lld",
				 (long long)json_integer_value(line));
		printf("%s: %s: key ", str(x, "kind"), where);
		client_print_clean(stdout, str(x, "idempotency_key"));
		printf(" ref ");
		client_print_clean(stdout, str(x, "acquirer_ref")[0]
						   ? str(x, "acquirer_ref")
						   : "-");
		printf(" file %s ledger %s %s", str(x, "amount_file"),
		       str(x, "amount_ledger"), str(x, "currency"));
		if (strcmp(str(x, "booked_transfer_id"), "0") != 0)
			printf(" booked %s", str(x, "booked_transfer_id"));
		printf("\n");
	}
	json_array_foreach(bad, i, x)
	{
		printf("bad line %lld: ", (long long)json_integer_value(
						  json_object_get(x, "line")));
		client_print_clean(stdout, str(x, "error"));
		printf("\n");
	}
}

static void print_csv(json_t *rep)
{
	size_t i;
	json_t *x;

	printf("kind,line,idempotency_key,acquirer_ref,amount_file,"
	       "amount_ledger,currency,booked_transfer_id,error\n");
	json_t *items = json_object_get(rep, "items");
	json_array_foreach(items, i, x)
	{
		json_t *line = json_object_get(x, "line");
		printf("%s,", str(x, "kind"));
		if (json_is_integer(line))
			printf("%lld", (long long)json_integer_value(line));
		printf(",%s,%s,%s,%s,%s,%s,\n", str(x, "idempotency_key"),
		       str(x, "acquirer_ref"), str(x, "amount_file"),
		       str(x, "amount_ledger"), str(x, "currency"),
		       str(x, "booked_transfer_id"));
	}
	json_t *bad = json_object_get(rep, "bad_lines");
	json_array_foreach(bad, i, x)
	{
		printf("bad_line,%lld,,,,,,,\"%s\"\n",
		       (long long)json_integer_value(
			       json_object_get(x, "line")),
		       str(x, "error"));
	}
}

/* The request's body: the file in base64, and the booking's members. */
static char *request_body(const char *file, size_t len, const char *suspense,
			  const char *reason)
{
	size_t cap =
		sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(cap);
	char *out = NULL;
	if (!b64)
		return NULL;
	sodium_bin2base64(b64, cap, (const unsigned char *)file, len,
			  sodium_base64_VARIANT_ORIGINAL);
	json_t *o = json_object();
	json_object_set_new(o, "settlement_base64", json_string(b64));
	if (suspense) {
		json_object_set_new(o, "book_suspense", json_string(suspense));
		json_object_set_new(o, "reason", json_string(reason));
	}
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(b64);
	return out;
}

int cmd_reconcile(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_LONG_OPTIONS,
		CLIENT_AUTH_LONG_OPTIONS,
		{"json", no_argument, NULL, 'J'},
		{"csv", no_argument, NULL, 'C'},
		{"book-suspense", required_argument, NULL, 'B'},
		{"reason", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct client c;
	const char *suspense = NULL, *reason = NULL;
	bool as_json = false, as_csv = false;
	int opt, r;

	client_init(&c, "tpwallet reconcile");
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vk:h", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 'J') {
			as_json = true;
		} else if (opt == 'C') {
			as_csv = true;
		} else if (opt == 'B') {
			suspense = optarg;
		} else if (opt == 'R') {
			reason = optarg;
		} else if ((r = client_option(&c, opt, optarg, true)) <= 0) {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || (as_json && as_csv) ||
	    (suspense && (!reason || !*reason)) || (reason && !suspense)) {
		if (suspense && (!reason || !*reason))
			fprintf(stderr, "tpwallet reconcile: --book-suspense "
					"needs --reason\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	char *file = NULL;
	size_t len = 0;
	if (client_read_file(argv[optind], SETTLEMENT_BYTES_MAX, &file, &len) <
	    0) {
		fprintf(stderr, "tpwallet reconcile: cannot read %s\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	char *body = request_body(file, len, suspense, reason);
	free(file);
	if (!body)
		return EXIT_SOFTWARE;
	struct http_response resp = {0};
	r = client_send(&c, "POST", "/v1/reconciliations", body, strlen(body),
			&resp);
	free(body);
	if (r != 0) {
		http_response_clear(&resp);
		return r;
	}
	json_t *rep =
		json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
	if (!json_is_object(rep)) {
		fprintf(stderr,
			"tpwallet reconcile: the answer is not a report\n");
		json_decref(rep);
		http_response_clear(&resp);
		return 1;
	}
	if (as_json)
		client_print_body(resp.body, resp.body_len);
	else if (as_csv)
		print_csv(rep);
	else
		print_text(rep);
	bool clean =
		json_integer_value(json_object_get(rep, "differences")) == 0 &&
		json_integer_value(json_object_get(rep, "bad_line_count")) == 0;
	json_decref(rep);
	http_response_clear(&resp);
	return clean ? 0 : 1;
}
