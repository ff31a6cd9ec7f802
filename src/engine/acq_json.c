/*
 * acq_json.c - the JSON-over-HTTP(S) acquirer protocol, version 2026-01
 * (acq_proto.h, docs/acquirer.md "The protocol"): POST /v1/charges with
 * {"idempotency_key","card_number","amount","currency"}, GET
 * /v1/operations/{key}, the Acquirer-Version header, and the answers'
 * reading: an operation is believed only when it names the key, the
 * amount and the currency that were asked, so an answer about another
 * operation can never post or void this one.  The request body holds
 * the card's number: it is built in a stack buffer that is wiped after
 * the call, and nothing here logs.
 */
#include "engine/acq_proto.h"
#include "core/u128.h"
#include "net/http.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

#define BODY_BYTES_MAX 512u

static void set_detail(struct acq_answer *out, const char *what)
{
	snprintf(out->detail, sizeof(out->detail), "%s", what);
}

/* A string member of o into buf (cut to cap - 1, printable ASCII only),
 * or "" when absent. */
static void member(json_t *o, const char *key, char *buf, size_t cap)
{
	const char *v = json_string_value(json_object_get(o, key));
	size_t n = 0;
	for (; v && v[n] && n + 1 < cap; n++)
		buf[n] = (v[n] >= 0x20 && v[n] < 0x7f) ? v[n] : '?';
	buf[n] = '\0';
}

static void read_operation(const struct acq_asked *asked, json_t *o,
			   struct acq_answer *out)
{
	const char *key =
		json_string_value(json_object_get(o, "idempotency_key"));
	const char *status = json_string_value(json_object_get(o, "status"));
	const char *amount = json_string_value(json_object_get(o, "amount"));
	const char *cur = json_string_value(json_object_get(o, "currency"));
	u128 a;

	out->outcome = ACQ_OUT_bad_answer;
	if (!key || !status || !amount || !cur) {
		set_detail(out, "an operation without idempotency_key, status, "
				"amount or currency");
		return;
	}
	if (strcmp(key, asked->key) != 0) {
		set_detail(out, "the answer is about another idempotency key");
		return;
	}
	if (u128_parse_dec(amount, strlen(amount), AMOUNT_MAX, &a) != 0 ||
	    a != asked->amount || strcmp(cur, asked->currency) != 0) {
		set_detail(out, "the answer's amount or currency is not what "
				"was asked");
		return;
	}
	member(o, "acquirer_ref", out->acquirer_ref, sizeof(out->acquirer_ref));
	if (strcmp(status, "approved") == 0 || strcmp(status, "paid") == 0)
		out->outcome = ACQ_OUT_approved;
	else if (strcmp(status, "declined") == 0)
		out->outcome = ACQ_OUT_declined;
	else
		set_detail(out, "an operation whose status is not approved, "
				"paid or declined");
}

void acq_proto_read(const struct acq_asked *asked, int http_err, int status,
		    const char *body, size_t body_len, struct acq_answer *out)
{
	json_t *o = NULL;

	memset(out, 0, sizeof(*out));
	if (http_err == -HTTP_timeout || http_err == -HTTP_connect_timeout) {
		out->outcome = ACQ_OUT_timeout;
		return;
	}
	if (http_err) {
		/* A cut answer may have been an approval: not refused. */
		out->outcome = ACQ_OUT_transport;
		set_detail(out, http_err_name(http_err)
					? http_err_name(http_err)
					: "unknown");
		return;
	}
	if (status >= 500) {
		out->outcome = ACQ_OUT_server_error;
		snprintf(out->detail, sizeof(out->detail), "HTTP %d", status);
		return;
	}
	if (body && body_len)
		o = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, NULL);
	if (status == 200 && json_is_object(o)) {
		read_operation(asked, o, out);
	} else if (status == 426) {
		out->outcome = ACQ_OUT_version_refused;
		member(o, "minimum", out->minimum, sizeof(out->minimum));
		member(o, "detail", out->detail, sizeof(out->detail));
	} else if (status == 404 && asked->query && json_is_object(o) &&
		   json_is_string(json_object_get(o, "error")) &&
		   strcmp(json_string_value(json_object_get(o, "error")),
			  "unknown_operation") == 0) {
		out->outcome = ACQ_OUT_unknown;
	} else if (status >= 400 && status < 500) {
		/* Refused before booking (docs/acquirer.md): the error and
		 * its detail, as the acquirer wrote them. */
		char err[48] = "", det[100] = "";
		member(o, "error", err, sizeof(err));
		member(o, "detail", det, sizeof(det));
		out->outcome = ACQ_OUT_refused;
		snprintf(out->detail, sizeof(out->detail), "HTTP %d %s%s%s",
			 status, err[0] ? err : "(no error)",
			 det[0] ? ": " : "", det);
	} else {
		out->outcome = ACQ_OUT_bad_answer;
		snprintf(out->detail, sizeof(out->detail), "HTTP %d %s", status,
			 o ? "with another JSON shape" : "without a JSON body");
	}
	json_decref(o);
}

static void exchange(struct http_client *c, const char *version,
		     const struct acq_asked *asked, const char *method,
		     const char *target, const char *body, size_t body_len,
		     const _Atomic bool *cancel, struct acq_answer *out)
{
	const struct http_header h[] = {
		{"Acquirer-Version", version},
		{"Content-Type", "application/json"},
		{"Accept", "application/json"},
	};
	struct http_request req = {.method = method,
				   .target = target,
				   .headers = h,
				   .nheaders = body ? 3 : 1,
				   .body = body,
				   .body_len = body_len,
				   .has_body = body != NULL,
				   .cancel = cancel};
	struct http_response r = {0};
	int ret = http_client_do(c, &req, &r);
	acq_proto_read(asked, ret, r.status, r.body, r.body_len, out);
	if (ret == -HTTP_outbound_refused)
		snprintf(out->detail, sizeof(out->detail), "%.159s", r.refused);
	http_response_clear(&r);
}

void acq_proto_charge(struct http_client *c, const char *version,
		      const struct acq_asked *asked, const char *pan,
		      const _Atomic bool *cancel, struct acq_answer *out)
{
	char body[BODY_BYTES_MAX], amount[U128_DEC_BYTES];

	u128_format_dec(asked->amount, amount);
	int n = snprintf(body, sizeof(body),
			 "{\"idempotency_key\":\"%s\",\"card_number\":\"%s\","
			 "\"amount\":\"%s\",\"currency\":\"%s\"}",
			 asked->key, pan, amount, asked->currency);
	if (n < 0 || (size_t)n >= sizeof(body)) {
		memset(out, 0, sizeof(*out));
		out->outcome = ACQ_OUT_transport;
		set_detail(out, "the request does not fit");
	} else {
		exchange(c, version, asked, "POST", "/v1/charges", body,
			 (size_t)n, cancel, out);
	}
	sodium_memzero(body, sizeof(body));
}

void acq_proto_query(struct http_client *c, const char *version,
		     const struct acq_asked *asked, const _Atomic bool *cancel,
		     struct acq_answer *out)
{
	char target[32 + ACQ_KEY_BYTES];
	struct acq_asked q = *asked;

	q.query = true;
	snprintf(target, sizeof(target), "/v1/operations/%s", asked->key);
	exchange(c, version, &q, "GET", target, NULL, 0, cancel, out);
}
