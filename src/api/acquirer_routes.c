/*
 * acquirer_routes.c - POST /v1/topups (acquirer:topup; docs/api.md
 * "Top-ups", docs/acquirer.md): a card top-up through the acquirer
 * connector (engine/acquirer.h).  The body names the account to credit,
 * the amount in minor units, the card's vault token and the client's
 * idempotency key; the connector journals a pending transfer, charges
 * the card, and posts or voids.  The request's thread waits for the
 * acquirer (at most acquirer_inflight_max of them at once: past it, and
 * while the breaker is open, 503 acquirer-unavailable with Retry-After).
 *
 * Answers: 200 {"status":"approved"|"declined", ...} once the ledger
 * says so; 202 {"status":"pending"} when the acquirer's answer is not
 * known yet (the resolver settles it; the same request again, same key,
 * answers the state then); the refusals below.
 */
#include "api/internal.h"
#include "api/problem.h"
#include "api/wbuf.h"
#include "core/u128.h"
#include "engine/acquirer.h"
#include "engine/logger.h"

#include <jansson.h>
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
		wbuf_put_json_str(&b, r->acquirer_ref,
				  strlen(r->acquirer_ref));
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
				: "the acquirer's circuit breaker is open after "
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
		snprintf(detail, sizeof(detail),
			 "%s; the top-up was voided", r->detail);
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

enum MHD_Result acquirer_route_topups(struct request *rq)
{
	static const char *const members[] = {"account", "amount", "card_token",
					      "idempotency_key"};
	enum MHD_Result reply;
	struct acq_topup_result r;
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
	const char *token =
		json_string_value(json_object_get(j, "card_token"));
	const char *key =
		json_string_value(json_object_get(j, "idempotency_key"));
	const char *bad = dec_member(j, "account", &account) ? "account"
			  : dec_member(j, "amount", &amount) ? "amount"
			  : !token || !*token || strlen(token) > 64
				  ? "card_token"
			  : !key || !*key || strlen(key) >
						     ACQ_IDEMPOTENCY_BYTES_MAX
				  ? "idempotency_key"
				  : NULL;
	if (bad) {
		json_decref(j);
		return api_reply_problem(rq, PROBLEM_invalid_field, NULL, bad,
					 NULL);
	}
	acquirer_topup(rq->srv->acquirer, account, amount, token, key, &r);
	json_decref(j);
	if (r.result == ACQ_CONFLICT && !r.detail[0])
		return api_reply_problem(rq, PROBLEM_invalid_field,
					 "1..128 of [A-Za-z0-9_.:-]",
					 "idempotency_key", NULL);
	if (r.result == ACQ_APPROVED || r.result == ACQ_DECLINED ||
	    r.result == ACQ_PENDING)
		return reply_result(rq, &r);
	return reply_refusal(rq, &r);
}
