/*
 * acquirer_routes.c - POST /v1/topups (acquirer:topup; docs/api.md
 * "Top-ups", docs/acquirer.md): a card top-up through the acquirer
 * connector (engine/acquirer.h).  The body names the account to credit,
 * the amount in minor units, the card's vault token and the client's
 * idempotency key; the connector journals a pending transfer, charges
 * the card, and posts or voids, on one of the connector's workers while
 * the request waits suspended (api_defer): no HTTP thread waits for the
 * acquirer.  At most acquirer_inflight_max top-ups run or wait at once:
 * past it, and while the breaker is open, 503 acquirer-unavailable with
 * Retry-After.
 *
 * POST /v1/reconciliations (acquirer:reconcile): the acquirer's
 * settlement file (core/settle.h) matched against the ledger
 * (engine/reconcile.h), the differences optionally booked to a suspense
 * account with a reason; the report as JSON (tpwallet reconcile prints
 * it as text, JSON or CSV).
 *
 * Answers: 200 {"status":"approved"|"declined", ...} once the ledger
 * says so; 202 {"status":"pending"} when the acquirer's answer is not
 * known yet (the resolver settles it; the same request again, same key,
 * answers the state then); the refusals below.
 */
#include "api/internal.h"
#include "api/problem.h"
#include "api/wbuf.h"
#include "api/authz.h"
#include "core/ledger.h"
#include "core/u128.h"
#include "engine/acquirer.h"
#include "engine/reconcile.h"
#include "engine/logger.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

#define TOPUP_REPLY_BYTES 1024u

/* A decimal u128 member (a JSON string or integer): 0 or -1. */
static int dec_member(json_t *o, const char *key, u128 *out)
{
	json_t *x = json_object_get(o, key);
	char buf[48];
	const char *s = NULL;

	if (json_is_string(x)) {
		s = json_string_value(x);
	} else if (json_is_integer(x) && json_integer_value(x) > 0) {
		snprintf(buf, sizeof(buf), "%lld",
			 (long long)json_integer_value(x));
		s = buf;
	}
	return s && u128_parse_dec(s, strlen(s), AMOUNT_MAX - 1, out) == 0 &&
			       *out != 0
		       ? 0
		       : -1;
}

static void put_u128(struct wbuf *b, const char *key, u128 v)
{
	char d[U128_DEC_BYTES];
	u128_format_dec(v, d);
	wbuf_puts(b, key);
	wbuf_putc(b, '"');
	wbuf_puts(b, d);
	wbuf_putc(b, '"');
}

static enum MHD_Result reply_result(struct request *rq,
				    const struct acq_topup_result *r)
{
	struct wbuf b = WBUF_INIT(TOPUP_REPLY_BYTES);
	const char *status = r->result == ACQ_APPROVED	 ? "approved"
			     : r->result == ACQ_DECLINED ? "declined"
							 : "pending";

	wbuf_puts(&b, "{\"status\":\"");
	wbuf_puts(&b, status);
	wbuf_putc(&b, '"');
	put_u128(&b, ",\"transfer_id\":", r->transfer_id);
	if (r->result != ACQ_PENDING)
		put_u128(&b, ",\"final_transfer_id\":", r->final_id);
	wbuf_puts(&b, ",\"acquirer_key\":");
	wbuf_put_json_str(&b, r->key, strlen(r->key));
	wbuf_puts(&b, ",\"acquirer_ref\":");
	if (r->acquirer_ref[0])
		wbuf_put_json_str(&b, r->acquirer_ref, strlen(r->acquirer_ref));
	else
		wbuf_puts(&b, "null");
	wbuf_putc(&b, '}');
	return api_reply_json(rq, r->result == ACQ_PENDING ? 202 : 200, &b);
}

static enum MHD_Result reply_refusal(struct request *rq,
				     const struct acq_topup_result *r)
{
	char detail[400];

	switch (r->result) {
	case ACQ_BUSY:
	case ACQ_BREAKER_OPEN:
		rq->retry_after_s = r->retry_after_s;
		return api_reply_problem(
			rq, PROBLEM_acquirer_unavailable,
			r->result == ACQ_BUSY
				? "acquirer_inflight_max calls are in flight"
				: "the acquirer's circuit breaker is open "
				  "after "
				  "consecutive failures",
			NULL, NULL);
	case ACQ_VERSION_REFUSED:
		snprintf(detail, sizeof(detail),
			 "the acquirer refuses Acquirer-Version (426); its "
			 "minimum is %s: raise acquirer_api_version; the "
			 "top-up was voided",
			 r->detail[0] ? r->detail : "not said");
		return api_reply_problem(rq, PROBLEM_acquirer_version_refused,
					 detail, NULL, NULL);
	case ACQ_REFUSED:
		snprintf(detail, sizeof(detail), "%s; the top-up was voided",
			 r->detail);
		return api_reply_problem(rq, PROBLEM_acquirer_refused, detail,
					 NULL, NULL);
	case ACQ_NO_ACCOUNT:
		return api_reply_problem(rq, PROBLEM_account_not_found, NULL,
					 "account", NULL);
	case ACQ_BAD_ACCOUNT:
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "the account must be on the "
					 "settlement account's ledger, and "
					 "not the settlement account",
					 "account", NULL);
	case ACQ_NO_CARD:
		return api_reply_problem(rq, PROBLEM_card_not_found, NULL,
					 "card_token", NULL);
	case ACQ_CARD_ERASED:
		return api_reply_problem(rq, PROBLEM_card_erased, NULL,
					 "card_token", NULL);
	case ACQ_VAULT_UNAVAILABLE:
		return api_reply_problem(rq, PROBLEM_vault_unavailable, NULL,
					 NULL, NULL);
	case ACQ_CONFLICT:
		return api_reply_problem(rq, PROBLEM_idempotency_conflict,
					 r->detail[0] ? r->detail : NULL,
					 "idempotency_key", NULL);
	case ACQ_LEDGER_REFUSED:
		return api_reply_problem(rq, PROBLEM_topup_refused, r->detail,
					 NULL, NULL);
	default:
		return api_reply_problem(rq, PROBLEM_engine_error, NULL, NULL,
					 NULL);
	}
}

/* On the connector's worker: the top-up is done, the request goes on. */
static void topup_done(struct acq_job *job)
{
	api_resume(job->ctx);
}

static enum MHD_Result topup_reply(struct request *rq)
{
	const struct acq_job *job = rq->deferred;
	const struct acq_topup_result *r = &job->result;

	if (r->result == ACQ_CONFLICT && !r->detail[0])
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "1..128 of [A-Za-z0-9_.:-]",
					 "idempotency_key", NULL);
	if (r->result == ACQ_APPROVED || r->result == ACQ_DECLINED ||
	    r->result == ACQ_PENDING)
		return reply_result(rq, r);
	return reply_refusal(rq, r);
}

static bool topup_refuse(struct request *rq, int code, const char *claim)
{
	rq->auth.err.code = code;
	rq->auth.err.link = 0;
	snprintf(rq->auth.err.claim, sizeof(rq->auth.err.claim), "%s", claim);
	return false;
}

/* The caller's right over what a top-up moves (the tenth review's F1: the
 * route checked the op alone, so a right capped at 100 for one
 * counterparty and ledger credited any account with millions): the
 * amount within its per-transfer cap, the credited account among its
 * counterparties, that account's ledger among its ledgers.  A right that
 * counts spending (total_cap, uses) is refused: top-ups keep no such
 * count.  The route admits only rights over every account (RA_ANY). */
static bool topup_within_right(struct request *rq, u128 account, u128 amount)
{
	const struct mandate_right *r = api_caller_right(&rq->auth.caller);
	if (!r)
		return true; /* the bootstrap credential: every right */
	if (r->has_total_cap)
		return topup_refuse(rq, MANDATE_ERR_total_cap_exceeded,
				    "right.total_cap");
	if (r->has_uses)
		return topup_refuse(rq, MANDATE_ERR_uses_exceeded,
				    "right.uses");
	if (r->has_per_transfer_cap && amount > r->per_transfer_cap)
		return topup_refuse(rq, MANDATE_ERR_per_transfer_cap_exceeded,
				    "right.per_transfer_cap");
	bool listed = r->n_counterparties == 0;
	for (unsigned i = 0; !listed && i < r->n_counterparties; i++)
		listed = r->counterparties[i] == account;
	if (!listed)
		return topup_refuse(rq, MANDATE_ERR_counterparty_not_allowed,
				    "right.counterparties");
	if (r->n_ledgers) {
		struct account a;
		const struct ledger *l = engine_read_begin(rq->srv->e);
		int found = ledger_lookup_account(l, account, &a);
		engine_read_end(rq->srv->e);
		bool in = false;
		for (unsigned i = 0; found == 0 && !in && i < r->n_ledgers; i++)
			in = r->ledgers[i] == a.ledger;
		if (!in)
			return topup_refuse(rq, MANDATE_ERR_ledger_not_allowed,
					    "right.ledgers");
	}
	return true;
}

enum MHD_Result acquirer_route_topups(struct request *rq)
{
	static const char *const members[] = {"account", "amount", "card_token",
					      "idempotency_key"};
	enum MHD_Result reply;
	const char *k;
	json_t *x;
	u128 account, amount;

	if (!rq->srv->acquirer)
		return api_reply_problem(rq, PROBLEM_acquirer_unavailable,
					 "no acquirer is configured (setting "
					 "acquirer)",
					 NULL, NULL);
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, &reply);
	if (!j)
		return reply;
	json_object_foreach(j, k, x)
	{
		bool known = false;
		for (size_t i = 0; i < 4; i++)
			known = known || strcmp(k, members[i]) == 0;
		if (!known) {
			json_decref(j);
			return api_reply_problem(rq, PROBLEM_unknown_field,
						 NULL, k, NULL);
		}
	}
	const char *token = json_string_value(json_object_get(j, "card_token"));
	const char *key =
		json_string_value(json_object_get(j, "idempotency_key"));
	const char *bad =
		dec_member(j, "account", &account)	  ? "account"
		: dec_member(j, "amount", &amount)	  ? "amount"
		: !token || !*token || strlen(token) > 64 ? "card_token"
		: !key || !*key || strlen(key) > ACQ_IDEMPOTENCY_BYTES_MAX
			? "idempotency_key"
			: NULL;
	if (bad) {
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_invalid_field, NULL, bad,
					 NULL);
	}
	if (!topup_within_right(rq, account, amount)) {
		json_decref(j);
		return api_reply_auth(rq);
	}
	struct acq_job *job = calloc(1, sizeof(*job));
	if (!job) {
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	}
	job->account = account;
	job->amount = amount;
	snprintf(job->token, sizeof(job->token), "%s", token);
	snprintf(job->key, sizeof(job->key), "%s", key);
	job->done = topup_done;
	job->ctx = rq;
	json_decref(j);
	rq->deferred = job;
	/* Suspended first: the worker may be done (topup_done resumes)
	 * before acquirer_submit returns.  topup_reply answers on the HTTP
	 * thread. */
	enum MHD_Result out;
	if (!api_defer(rq, topup_reply, &out))
		return out;
	unsigned retry_s = 0;
	if (acquirer_submit(rq->srv->acquirer, job, &retry_s) != 0) {
		job->result = (struct acq_topup_result){
			.result = ACQ_BUSY, .retry_after_s = retry_s};
		api_resume(rq);
	}
	return out;
}

/* ---- reconciliation ----------------------------------------------------- */

static void put_item(struct wbuf *b, const struct recon_item *it)
{
	wbuf_puts(b, "{\"kind\":\"");
	wbuf_puts(b, recon_kind_name(it->kind));
	wbuf_puts(b, "\",\"line\":");
	if (it->line)
		wbuf_put_u64(b, it->line);
	else
		wbuf_puts(b, "null");
	wbuf_puts(b, ",\"idempotency_key\":");
	wbuf_put_json_str(b, it->key, strlen(it->key));
	wbuf_puts(b, ",\"acquirer_ref\":");
	if (it->ref[0])
		wbuf_put_json_str(b, it->ref, strlen(it->ref));
	else
		wbuf_puts(b, "null");
	wbuf_puts(b, ",\"currency\":");
	wbuf_put_json_str(b, it->currency, strlen(it->currency));
	put_u128(b, ",\"amount_file\":", it->amount_file);
	put_u128(b, ",\"amount_ledger\":", it->amount_ledger);
	put_u128(b, ",\"transfer_id\":", it->transfer_id);
	put_u128(b, ",\"booked_transfer_id\":", it->booked_id);
	wbuf_putc(b, '}');
}

static enum MHD_Result reconcile_reply(struct request *rq,
				       const struct settle_file *f,
				       const struct recon_report *r,
				       bool booked)
{
	struct wbuf b = WBUF_INIT((size_t)64 << 20);
	size_t diffs = r->n - r->counts[RECON_matched];

	wbuf_puts(&b, "{\"rows\":");
	wbuf_put_u64(&b, f->nrows);
	wbuf_puts(&b, ",\"differences\":");
	wbuf_put_u64(&b, diffs);
	wbuf_puts(&b, ",\"bad_line_count\":");
	wbuf_put_u64(&b, f->nbad);
	wbuf_puts(&b, ",\"counts\":{");
	for (unsigned k = 0; k < RECON_KIND_COUNT; k++) {
		wbuf_puts(&b, k ? ",\"" : "\"");
		wbuf_puts(&b, recon_kind_name(k));
		wbuf_puts(&b, "\":");
		wbuf_put_u64(&b, r->counts[k]);
	}
	wbuf_puts(&b, "},\"booked\":");
	wbuf_puts(&b, booked ? "true" : "false");
	wbuf_puts(&b, ",\"items\":[");
	bool first = true;
	for (size_t i = 0; i < r->n; i++) {
		if (r->items[i].kind == RECON_matched)
			continue;
		if (!first)
			wbuf_putc(&b, ',');
		first = false;
		put_item(&b, &r->items[i]);
	}
	wbuf_puts(&b, "],\"bad_lines\":[");
	for (size_t i = 0; i < f->nbad; i++) {
		wbuf_puts(&b, i ? ",{\"line\":" : "{\"line\":");
		wbuf_put_u64(&b, f->bad[i].line);
		wbuf_puts(&b, ",\"error\":");
		wbuf_put_json_str(&b, f->bad[i].why, strlen(f->bad[i].why));
		wbuf_putc(&b, '}');
	}
	wbuf_puts(&b, "]}");
	return api_reply_json(rq, 200, &b);
}

/* The body's members: the file's text, and the suspense account and
 * reason when booking.  0, or -1 with the refusal queued. */
static int reconcile_body(struct request *rq, json_t *j, const char **text,
			  size_t *len, char **bin, u128 *suspense,
			  const char **reason, enum MHD_Result *reply)
{
	const char *k;
	json_t *x;

	json_object_foreach(j, k, x)
	{
		if (strcmp(k, "settlement") && strcmp(k, "book_suspense") &&
		    strcmp(k, "reason") && strcmp(k, "settlement_base64")) {
			*reply = api_reply_problem(rq, PROBLEM_unknown_field,
						   NULL, k, NULL);
			return -1;
		}
	}
	x = json_object_get(j, "settlement");
	json_t *b64 = json_object_get(j, "settlement_base64");
	if (json_is_string(b64) && !x) {
		/* Any bytes, so that bad encodings reach the reader. */
		size_t bl = json_string_length(b64);
		*bin = malloc(bl / 4 * 3 + 3);
		if (!*bin ||
		    sodium_base642bin((unsigned char *)*bin, bl / 4 * 3 + 3,
				      json_string_value(b64), bl, NULL, len,
				      NULL, sodium_base64_VARIANT_ORIGINAL)) {
			*reply = api_reply_problem(
				rq, PROBLEM_invalid_field,
				"the settlement file in base64",
				"settlement_base64", NULL);
			return -1;
		}
		*text = *bin;
	} else if (json_is_string(x) && !b64) {
		*text = json_string_value(x);
		*len = json_string_length(x);
	} else {
		*reply = api_reply_problem(rq, PROBLEM_invalid_field,
					   "the settlement file's text (or "
					   "settlement_base64)",
					   "settlement", NULL);
		return -1;
	}
	*suspense = 0;
	*reason = json_string_value(json_object_get(j, "reason"));
	if (!json_object_get(j, "book_suspense"))
		return 0;
	size_t rl = *reason ? strlen(*reason) : 0;
	if (dec_member(j, "book_suspense", suspense) != 0) {
		*reply = api_reply_problem(rq, PROBLEM_invalid_field,
					   "an account id", "book_suspense",
					   NULL);
		return -1;
	}
	if (rl < 1 || rl > 200) {
		*reply = api_reply_problem(rq, PROBLEM_invalid_field,
					   "a reason (1..200 bytes) is "
					   "required to book",
					   "reason", NULL);
		return -1;
	}
	return 0;
}

enum MHD_Result acquirer_route_reconcile(struct request *rq)
{
	enum MHD_Result reply;
	struct settle_file f;
	struct recon_report r = {0};
	struct recon_options o;
	const char *text, *reason, *result_name = NULL;
	char *bin = NULL;
	size_t len;
	u128 suspense;

	if (!rq->srv->acquirer)
		return api_reply_problem(rq, PROBLEM_acquirer_unavailable,
					 "no acquirer is configured (setting "
					 "acquirer)",
					 NULL, NULL);
	json_t *j = api_body_object(rq, rq->srv->body_bytes_max, &reply);
	if (!j)
		return reply;
	if (reconcile_body(rq, j, &text, &len, &bin, &suspense, &reason,
			   &reply)) {
		json_decref(j);
		free(bin);
		return reply;
	}
	acquirer_config(rq->srv->acquirer, &o.settlement, &o.code, &o.currency);
	/* Booking (the tenth review's F2 and F4): only to the account the
	 * operator named (acquirer_suspense_account), never one the caller
	 * names; and not while a top-up is pending or in flight, whose
	 * posting would book the same money a second time. */
	if (suspense && suspense != rq->srv->acquirer_suspense) {
		json_decref(j);
		free(bin);
		return api_reply_problem(
			rq, PROBLEM_invalid_field,
			rq->srv->acquirer_suspense
				? "differences are booked only to the account "
				  "the setting acquirer_suspense_account names"
				: "booking needs the setting "
				  "acquirer_suspense_account",
			"book_suspense", NULL);
	}
	if (suspense) {
		struct acquirer_stats st;
		acquirer_stats(rq->srv->acquirer, &st);
		if (st.pending || st.inflight) {
			json_decref(j);
			free(bin);
			return api_reply_problem(
				rq, PROBLEM_reconcile_pending,
				"a top-up is pending or in flight: its posting "
				"would book the same money again; book once "
				"none is",
				"book_suspense", NULL);
		}
	}
	int ret = settle_parse(text, len, &f);
	if (ret == 0)
		ret = reconcile_run(rq->srv->e, &o, &f, &r);
	if (ret == 0 && suspense) {
		ret = reconcile_book(rq->srv->e, &o, suspense, reason, &r,
				     &result_name);
		if (ret == 0)
			log_at(LOG_INFO,
			       "reconciliation: differences booked to suspense",
			       LOG_NUM("differences",
				       r.n - r.counts[RECON_matched]),
			       LOG_STR("reason", reason));
	}
	json_decref(j);
	free(bin);
	if (ret != 0) {
		settle_free(&f);
		recon_report_free(&r);
		if (result_name)
			return api_reply_problem(rq, PROBLEM_topup_refused,
						 result_name, "book_suspense",
						 NULL);
		return api_reply_problem(rq,
					 ret == -ENOMEM ? PROBLEM_internal_error
					 : ret == -E2BIG
						 ? PROBLEM_body_too_large
						 : PROBLEM_engine_error,
					 NULL, NULL, NULL);
	}
	atomic_fetch_add(&rq->srv->recon_runs, 1);
	for (unsigned k = 0; k < RECON_KIND_COUNT; k++)
		atomic_fetch_add(&rq->srv->recon_rows[k], r.counts[k]);
	atomic_fetch_add(&rq->srv->recon_rows[RECON_KIND_COUNT], f.nbad);
	enum MHD_Result out = reconcile_reply(rq, &f, &r, suspense != 0);
	settle_free(&f);
	recon_report_free(&r);
	return out;
}

_Static_assert(RECON_KIND_COUNT + 1 <=
		       sizeof(((struct api_server *)0)->recon_rows) /
			       sizeof(u64),
	       "recon_rows holds every kind and bad lines");

void reconcile_metrics(struct api_server *s, struct wbuf *b)
{
	wbuf_puts(b, "# HELP tpwallet_reconciliations_total Settlement files "
		     "reconciled (POST /v1/reconciliations).\n"
		     "# TYPE tpwallet_reconciliations_total counter\n"
		     "tpwallet_reconciliations_total ");
	wbuf_put_u64(b, atomic_load(&s->recon_runs));
	wbuf_puts(b, "\n# HELP tpwallet_reconciliation_rows_total Rows and "
		     "ledger top-ups by outcome, and bad lines.\n"
		     "# TYPE tpwallet_reconciliation_rows_total counter\n");
	for (unsigned k = 0; k <= RECON_KIND_COUNT; k++) {
		wbuf_puts(b, "tpwallet_reconciliation_rows_total{result=\"");
		wbuf_puts(b, k < RECON_KIND_COUNT ? recon_kind_name(k)
						  : "bad_line");
		wbuf_puts(b, "\"} ");
		wbuf_put_u64(b, atomic_load(&s->recon_rows[k]));
		wbuf_putc(b, '\n');
	}
}
