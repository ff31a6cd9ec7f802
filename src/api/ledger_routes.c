/*
 * ledger_routes.c - the ledger's routes: create accounts and transfers
 * (POST /v1/accounts, /v1/transfers, their results once the engine ran
 * the batch), look-ups (GET /v1/accounts/{id}, /v1/transfers/{id}) and
 * queries (GET /v1/accounts/{id}/transfers, /balances).  docs/api.md is
 * the contract; the rows are in routes.h.
 */
#include "api/internal.h"
#include "api/codec.h"
#include "core/u128.h"
#include "engine/audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static enum MHD_Result reply_codec_error(struct request *rq,
					 const struct codec_error *ce)
{
	return api_reply_problem(rq, ce->problem, ce->detail, ce->path, NULL);
}

/* Lookups tell which audit log entry created the record (the first
 * entry at or after its timestamp), so a receipt can be asked for and
 * proven.  b holds one JSON object; the field goes before its '}'. */
static void put_entry_index(struct request *rq, struct wbuf *b, u64 ts)
{
	u64 index;

	if (!rq->srv->audit || b->err || b->len == 0 ||
	    b->data[b->len - 1] != '}' ||
	    audit_index_of_timestamp(rq->srv->audit, ts, &index) != 0)
		return;
	b->len--;
	wbuf_puts(b, ",\"entry_index\":");
	wbuf_put_u128_str(b, index);
	wbuf_putc(b, '}');
}

enum MHD_Result ledger_route_account(struct request *rq)
{
	struct wbuf b = WBUF_INIT(RECORD_JSON_BYTES_MAX);
	struct account a;
	int r;

	r = ledger_lookup_account(engine_read_begin(rq->srv->e), rq->path_id,
				  &a);
	engine_read_end(rq->srv->e);
	if (r)
		return api_reply_problem(rq, PROBLEM_account_not_found, NULL,
					 NULL, NULL);
	codec_write_account(&b, &a);
	put_entry_index(rq, &b, a.timestamp);
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result ledger_route_transfer(struct request *rq)
{
	struct wbuf b = WBUF_INIT(RECORD_JSON_BYTES_MAX);
	enum pending_status ps = PENDING_NONE;
	struct transfer t;
	int r;

	r = engine_lookup_transfer(rq->srv->e, rq->path_id, &t, &ps);
	if (r == -ENOENT)
		return api_reply_problem(rq, PROBLEM_transfer_not_found, NULL,
					 NULL, NULL);
	if (r)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "the store could not be read", NULL,
					 NULL);
	codec_write_transfer(&b, &t, ps);
	put_entry_index(rq, &b, t.timestamp);
	return api_reply_json(rq, 200, &b);
}

/* GET /v1/accounts/{id}/transfers and /balances.  Records are copied out
 * under the read lock (with the pending statuses) and encoded after it,
 * so the writer is not held up by JSON formatting. */
static enum MHD_Result get_account_query(struct request *rq, bool balances)
{
	struct account_filter f = {.account_id = rq->path_id};
	struct wbuf b = WBUF_INIT(0);
	struct codec_error ce;
	void *out = NULL;
	u8 *ps = NULL;
	enum MHD_Result ret;
	int n;

	if (codec_parse_query(rq->query, rq->query_len, &f, &ce)) {
		ret = reply_codec_error(rq, &ce);
		goto cleanup;
	}
	out = malloc((size_t)f.limit * 128);
	ps = balances ? NULL : calloc(f.limit, 1);
	if (!out || (!balances && !ps)) {
		ret = api_reply_problem(rq, PROBLEM_internal_error,
					"out of memory", NULL, NULL);
		goto cleanup;
	}
	/* Ids 0 and 2^128-1 are never accounts (the ledger refuses them as
	 * a filter): an unknown account, so no records. */
	if (f.account_id == 0 || f.account_id == U128_MAX)
		n = 0;
	else if (balances)
		n = engine_account_balances(rq->srv->e, &f, out, f.limit);
	else
		n = engine_account_transfers(rq->srv->e, &f, out, ps, f.limit);
	if (n == -EIO) {
		ret = api_reply_problem(rq, PROBLEM_internal_error,
					"the store could not be read", NULL,
					NULL);
		goto cleanup;
	}
	if (n < 0) {
		ret = api_reply_problem(rq, PROBLEM_invalid_query,
					"the ledger refused this filter", NULL,
					NULL);
		goto cleanup;
	}
	wbuf_init(&b, (size_t)n * RECORD_JSON_BYTES_MAX + 16);
	wbuf_putc(&b, '[');
	for (int i = 0; i < n; i++) {
		if (i)
			wbuf_putc(&b, ',');
		if (balances)
			codec_write_balance(&b,
					    (struct account_balance *)out + i);
		else
			codec_write_transfer(&b, (struct transfer *)out + i,
					     (enum pending_status)ps[i]);
	}
	wbuf_putc(&b, ']');
	ret = api_reply_json(rq, 200, &b);
cleanup:
	free(out);
	free(ps);
	return ret;
}

enum MHD_Result ledger_route_account_transfers(struct request *rq)
{
	return get_account_query(rq, false);
}

enum MHD_Result ledger_route_account_balances(struct request *rq)
{
	return get_account_query(rq, true);
}

/* The query of a create request: entry_index=true|false, and for
 * accounts owner=<principal id>.  NULL, or what is wrong. */
static const char *create_query(struct request *rq)
{
	char q[sizeof(rq->text_id) + 64];
	char *save = NULL;

	if (rq->query_len == 0)
		return NULL;
	if (rq->query_len >= sizeof(q))
		return "unknown query parameters";
	memcpy(q, rq->query, rq->query_len + 1);
	for (char *p = strtok_r(q, "&", &save); p;
	     p = strtok_r(NULL, "&", &save)) {
		if (strcmp(p, "entry_index=true") == 0)
			rq->eng.want_entry = true;
		else if (strcmp(p, "entry_index=false") == 0)
			rq->eng.want_entry = false;
		else if (rq->eng.base_op == ENGINE_CREATE_ACCOUNTS &&
			 strncmp(p, "owner=", 6) == 0 &&
			 strlen(p + 6) < sizeof(rq->auth.owner_param))
			memcpy(rq->auth.owner_param, p + 6, strlen(p + 6) + 1);
		else
			return rq->eng.base_op == ENGINE_CREATE_ACCOUNTS
				       ? "parameters are entry_index=true and "
					 "owner=<principal id>"
				       : "the only parameter is "
					 "entry_index=true";
	}
	return NULL;
}

static enum MHD_Result create_reply(struct request *rq);

/* The whole body is in: decode and hand to the engine. */
static enum MHD_Result create_submit(struct request *rq, enum engine_op op)
{
	struct codec_error ce;
	int r;

	rq->eng.base_op = op;
	if (rq->body.too_large)
		return api_reply_problem(rq, PROBLEM_body_too_large,
					 "the body is over the limit", NULL,
					 NULL);
	const char *qerr = create_query(rq);
	if (qerr) {
		api_release_body(rq);
		return api_reply_problem(rq, PROBLEM_invalid_query, qerr, NULL,
					 NULL);
	}
	if (rq->body.over_budget) {
		api_release_body(rq);
		return api_reply_problem(rq, PROBLEM_unavailable,
					 api_over_budget_detail(rq), NULL,
					 NULL);
	}
	r = codec_decode_events(
		op == ENGINE_CREATE_ACCOUNTS ? CODEC_ACCOUNT : CODEC_TRANSFER,
		rq->body.data ? rq->body.data : "", rq->body.len,
		&rq->eng.events, &rq->eng.count, &rq->eng.is_array, &ce);
	/* The body is not needed past this point: give it back early. */
	api_release_body(rq);
	if (r == -ENOMEM)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	if (r)
		return reply_codec_error(rq, &ce);
	rq->eng.results = calloc(rq->eng.count, sizeof(u32));
	if (!rq->eng.results)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	/* A mandate's rights per event; its links and an owner go into a
	 * command record, so the state machine counts caps at apply. */
	if (op == ENGINE_CREATE_TRANSFERS && authz_check_transfers(rq) != 0)
		return api_reply_auth(rq);
	switch (authz_build_command(rq)) {
	case AUTHZ_BUILT: break;
	case AUTHZ_OWNER_MALFORMED:
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "owner is a principal id (43 "
					 "base64url characters)",
					 "owner", NULL);
	case AUTHZ_OWNER_NOT_YOURS:
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "only the administrator may create "
					 "accounts for another owner",
					 "owner", NULL);
	case AUTHZ_OWNER_ADMINISTRATOR:
		return api_reply_problem(
			rq, PROBLEM_invalid_query,
			"a named administrator creates accounts "
			"for the server or for a principal "
			"without a role, never for an "
			"administrator",
			"owner", NULL);
	case AUTHZ_OWNER_UNKNOWN:
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "owner is not a registered principal",
					 "owner", NULL);
	case AUTHZ_BUILD_NO_MEMORY:
	default:
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	}

	rq->eng.ereq = (struct engine_request){
		.op = rq->eng.payload ? ENGINE_COMMAND : rq->eng.base_op,
		.count = rq->eng.count,
		.payload_bytes = rq->eng.payload_bytes,
		.events = rq->eng.payload ? rq->eng.payload : rq->eng.events,
		.results = rq->eng.results,
	};
	return api_submit(rq, create_reply);
}

enum MHD_Result ledger_route_accounts(struct request *rq)
{
	return create_submit(rq, ENGINE_CREATE_ACCOUNTS);
}

enum MHD_Result ledger_route_transfers(struct request *rq)
{
	return create_submit(rq, ENGINE_CREATE_TRANSFERS);
}

static const char *result_name(enum engine_op op, u32 code)
{
	const char *n;

	if (code == 0)
		return "created";
	n = op == ENGINE_CREATE_ACCOUNTS ? create_account_result_name(code)
					 : create_transfer_result_name(code);
	return n ? n : "unknown";
}

/*
 * The own timestamps of the records an "exists" result names, looked up
 * into the timestamp field of those events (the engine is done with
 * them; 0 when not found), so that the results are formatted after it.
 */
static void existing_timestamps(struct request *rq)
{
	u32 n = rq->eng.count;

	if (rq->eng.base_op == ENGINE_CREATE_ACCOUNTS) {
		struct account *ev = (struct account *)rq->eng.events;
		const struct ledger *l = NULL;
		for (u32 i = 0; i < n; i++) {
			struct account a;
			if (rq->eng.results[i] != CREATE_ACCOUNT_exists)
				continue;
			if (!l)
				l = engine_read_begin(rq->srv->e);
			ev[i].timestamp =
				ledger_lookup_account(l, ev[i].id, &a) == 0
					? a.timestamp
					: 0;
		}
		if (l)
			engine_read_end(rq->srv->e);
		return;
	}
	/* Transfers: one batched lookup (old ones from the store). */
	struct transfer *ev = (struct transfer *)rq->eng.events;
	u128 *ids = malloc((size_t)n * sizeof(*ids) + 1);
	u32 *at = malloc((size_t)n * sizeof(*at) + 1);
	struct transfer *got = malloc((size_t)n * sizeof(*got) + 1);
	u8 *st = malloc((size_t)n + 1);
	bool *found = malloc((size_t)n * sizeof(*found) + 1);
	u32 k = 0;

	for (u32 i = 0; ids && at && i < n; i++) {
		if (rq->eng.results[i] != CREATE_TRANSFER_exists)
			continue;
		ev[i].timestamp = 0;
		ids[k] = ev[i].id;
		at[k++] = i;
	}
	if (k && got && st && found &&
	    engine_lookup_transfers(rq->srv->e, ids, k, got, st, found) == 0)
		for (u32 j = 0; j < k; j++)
			if (found[j])
				ev[at[j]].timestamp = got[j].timestamp;
	free(ids);
	free(at);
	free(got);
	free(st);
	free(found);
}

/* A batch is done: one result per event. */
static enum MHD_Result create_reply(struct request *rq)
{
	struct api_server *s = rq->srv;
	struct engine_request *er = &rq->eng.ereq;
	struct wbuf b;
	unsigned status = 200;

	metrics_observe_results(&s->metrics, (int)rq->eng.base_op,
				rq->eng.results, rq->eng.count);
	api_span_results(rq);
	/* A mandate's cap or a revocation refuses the whole batch. */
	if (rq->eng.base_op == ENGINE_CREATE_TRANSFERS && rq->eng.payload &&
	    authz_guard_refused(rq))
		return api_reply_auth(rq);

	existing_timestamps(rq);
	wbuf_init(&b, (size_t)rq->eng.count * CODEC_RESULT_BYTES_MAX + 16);
	if (rq->eng.is_array)
		wbuf_putc(&b, '[');
	for (u32 i = 0; i < rq->eng.count; i++) {
		const char *name =
			result_name(rq->eng.base_op, rq->eng.results[i]);
		u64 ts = 0;

		if (rq->eng.results[i] == 0) {
			/* Event i of a batch is stamped ts - count + 1 + i. */
			ts = er->timestamp - rq->eng.count + 1 + i;
		} else if (strcmp(name, "exists") == 0) {
			ts = rq->eng.base_op == ENGINE_CREATE_ACCOUNTS
				     ? ((const struct account *)
						rq->eng.events)[i]
					       .timestamp
				     : ((const struct transfer *)
						rq->eng.events)[i]
					       .timestamp;
		}
		if (i)
			wbuf_putc(&b, ',');
		/* Created by this request: its entry is the journal record
		 * of the batch, leaf seq - 1 of the audit log. */
		codec_write_result_entry(&b, i, name, ts,
					 rq->eng.want_entry &&
							 rq->eng.results[i] == 0
						 ? er->seq - 1
						 : UINT64_MAX);
		if (!rq->eng.is_array)
			status = codec_result_http_status(name);
	}
	if (rq->eng.is_array)
		wbuf_putc(&b, ']');
	return api_reply_json(rq, status, &b);
}
