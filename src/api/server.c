/*
 * server.c - libmicrohttpd daemon, router and request life cycle (see
 * server.h).
 *
 * A request goes through these states, one libmicrohttpd callback each:
 *
 *   uri_log       request line read: allocate struct request, keep the query
 *   RS_NEW        headers read: route, method, ids; only refusals that must
 *                 not read the body are answered here (the connection then
 *                 closes)
 *   RS_BODY       body chunks appended (capped, create routes only); at the
 *                 end: GETs and refusals are answered, or the events are
 *                 decoded, the connection suspended, engine_submit() called
 *   RS_SUBMITTED  resumed by on_engine_done(): encode results, reply
 *   completed     log line, metrics, free
 */
#include "api/internal.h"
#include "api/route.h"
#include "engine/audit.h"
#include "log/leaf.h"
#include "crypto/keyring.h"
#include "crypto/note.h"
#include "log/journal.h"
#include "api/server.h"
#include "api/codec.h"
#include "api/metrics.h"
#include "api/problem.h"
#include "api/wbuf.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/policy.h"
#include "core/u128.h"
#include "engine/engine.h"
#include "engine/logger.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

/* ---- request ids and trace context ------------------------------------ */

static const char hexdigits[] = "0123456789abcdef";

/* 16 random hex digits.  Random bytes are drawn 256 at a time per thread:
 * one getrandom(2) per 32 requests instead of one each. */
static void request_id_generate(char out[REQUEST_ID_BYTES_MAX + 1])
{
	static _Thread_local u8 pool[256];
	static _Thread_local unsigned left;
	const u8 *p;

	if (left < 8) {
		randombytes_buf(pool, sizeof(pool));
		left = sizeof(pool);
	}
	p = pool + sizeof(pool) - left;
	left -= 8;
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hexdigits[p[i] >> 4];
		out[2 * i + 1] = hexdigits[p[i] & 15];
	}
	out[16] = '\0';
}

/* ---- replies ---------------------------------------------------------- */

static void free_body(void *p)
{
	free(p);
}

/* Queue b's bytes (taken over) as the reply.  Returns an MHD_Result. */
enum MHD_Result api_reply(struct request *rq, unsigned status, struct wbuf *b,
			  const char *content_type, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	size_t len;
	char *data;

	if (b->err) {
		/* Out of memory or a reply over its cap: say so briefly. */
		static const char fallback[] =
			"{\"type\":\"/problems/internal-error\",\"title\":"
			"\"Internal error\",\"status\":500}";
		wbuf_release(b);
		status = 500;
		content_type = PROBLEM_CONTENT_TYPE;
		resp = MHD_create_response_from_buffer(sizeof(fallback) - 1,
						       (void *)fallback,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		data = wbuf_detach(b, &len);
		resp = MHD_create_response_from_buffer_with_free_callback(
			len, data, free_body);
		if (!resp)
			free(data);
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				content_type);
	MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					AUTHZ_CHALLENGE);
	if (status == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (rq->close_after)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	policy_gate_headers(rq, resp);
	ok = MHD_queue_response(rq->conn, status, resp);
	MHD_destroy_response(resp);
	rq->status = status;
	rq->state = RS_REPLIED;
	return ok;
}

enum MHD_Result api_reply_problem(struct request *rq, enum problem p,
				  const char *detail, const char *field,
				  const char *allow)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);

	problem_write(&b, p, detail, rq->request_id, field);
	return api_reply(rq, problem_status(p), &b, PROBLEM_CONTENT_TYPE,
			 allow);
}

static enum MHD_Result reply_codec_error(struct request *rq,
					 const struct codec_error *ce)
{
	return api_reply_problem(rq, ce->problem, ce->detail, ce->path, NULL);
}

enum MHD_Result api_reply_json(struct request *rq, unsigned status,
			       struct wbuf *b)
{
	return api_reply(rq, status, b, "application/json", NULL);
}

/* ---- GET handlers ----------------------------------------------------- */

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

static enum MHD_Result get_account(struct request *rq)
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

static enum MHD_Result get_transfer(struct request *rq)
{
	struct wbuf b = WBUF_INIT(RECORD_JSON_BYTES_MAX);
	enum pending_status ps = PENDING_NONE;
	const struct ledger *l;
	struct transfer t;
	int r;

	l = engine_read_begin(rq->srv->e);
	r = ledger_lookup_transfer(l, rq->path_id, &t);
	if (r == 0 && (t.flags & TRANSFER_PENDING))
		ps = ledger_pending_status(l, t.id);
	engine_read_end(rq->srv->e);
	if (r)
		return api_reply_problem(rq, PROBLEM_transfer_not_found, NULL,
					 NULL, NULL);
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
	const struct ledger *l;
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
	l = engine_read_begin(rq->srv->e);
	if (f.account_id == 0 || f.account_id == U128_MAX) {
		n = 0;
	} else if (balances) {
		n = ledger_get_account_balances(l, &f, out, f.limit);
	} else {
		struct transfer *t = out;
		n = ledger_get_account_transfers(l, &f, t, f.limit);
		for (int i = 0; i < n; i++)
			if (t[i].flags & TRANSFER_PENDING)
				ps[i] = (u8)ledger_pending_status(l, t[i].id);
	}
	engine_read_end(rq->srv->e);
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

/* ---- audit log (issue 5) ---------------------------------------------- */

/* Standard base64 in quotes, encoded straight into the reply. */
static void put_b64(struct wbuf *b, const u8 *bin, size_t len)
{
	size_t cap =
		sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);

	if (wbuf_reserve(b, cap + 2) != 0)
		return;
	b->data[b->len++] = '"';
	sodium_bin2base64(b->data + b->len, cap, bin, len,
			  sodium_base64_VARIANT_ORIGINAL);
	b->len += cap - 1; /* cap counts the NUL */
	b->data[b->len++] = '"';
}

static void put_dec_str(struct wbuf *b, u64 v)
{
	wbuf_putc(b, '"');
	wbuf_put_u64(b, v);
	wbuf_putc(b, '"');
}

static const char *journal_type_name(u16 type)
{
	switch (type) {
	case JOURNAL_CREATE_ACCOUNTS: return "create_accounts";
	case JOURNAL_CREATE_TRANSFERS: return "create_transfers";
	case JOURNAL_PULSE: return "pulse";
	case JOURNAL_COMMAND: return "command";
	default: return "unknown";
	}
}

static void put_proof(struct wbuf *b, u8 proof[][MERKLE_HASH_BYTES], size_t n)
{
	wbuf_puts(b, ",\"proof\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			wbuf_putc(b, ',');
		put_b64(b, proof[i], MERKLE_HASH_BYTES);
	}
	wbuf_putc(b, ']');
}

/* The members an inclusion proof and a receipt share: index, size,
 * leaf_hash, root, proof. */
static void put_inclusion(struct wbuf *b, u64 index, u64 size,
			  const u8 leaf[MERKLE_HASH_BYTES],
			  const u8 root[MERKLE_HASH_BYTES],
			  u8 proof[][MERKLE_HASH_BYTES], size_t np)
{
	wbuf_puts(b, "\"index\":");
	put_dec_str(b, index);
	wbuf_puts(b, ",\"size\":");
	put_dec_str(b, size);
	wbuf_puts(b, ",\"leaf_hash\":");
	put_b64(b, leaf, MERKLE_HASH_BYTES);
	wbuf_puts(b, ",\"root\":");
	put_b64(b, root, MERKLE_HASH_BYTES);
	put_proof(b, proof, np);
}

/* GET /v1/audit/head: the tree's size and root (unsigned until the
 * server key exists; then /v1/audit/checkpoint serves a signed note). */
static enum MHD_Result get_audit_head(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	struct audit *a = rq->srv->audit;
	u8 root[MERKLE_HASH_BYTES];
	u64 size = audit_size(a);

	if (audit_root(a, size, root) != 0)
		return api_reply_problem(rq, PROBLEM_internal_error, NULL, NULL,
					 NULL);
	wbuf_puts(&b, "{\"size\":");
	put_dec_str(&b, size);
	wbuf_puts(&b, ",\"root\":");
	put_b64(&b, root, sizeof(root));
	wbuf_puts(&b, "}");
	return api_reply_json(rq, 200, &b);
}

static enum MHD_Result get_audit_entry(struct request *rq)
{
	struct audit *a = rq->srv->audit;
	struct audit_leaf leaf;
	struct wbuf b = WBUF_INIT(0);
	u64 index = (u64)rq->path_id;
	u8 *bytes = NULL;
	size_t len = 0;
	enum MHD_Result ret;

	if (audit_leaf(a, index, &leaf) != 0)
		return api_reply_problem(rq, PROBLEM_audit_out_of_range,
					 "no entry at this index yet", "index",
					 NULL);
	int r = audit_entry(a, index, &bytes, &len);
	if (r == -EBADMSG)
		return api_reply_problem(rq, PROBLEM_audit_entry_changed, NULL,
					 NULL, NULL);
	if (r != 0)
		return api_reply_problem(rq, PROBLEM_internal_error, NULL, NULL,
					 NULL);
	wbuf_init(&b, len * 4 / 3 + 512);
	wbuf_puts(&b, "{\"index\":");
	put_dec_str(&b, index);
	wbuf_puts(&b, ",\"seq\":");
	put_dec_str(&b, leaf.seq);
	wbuf_puts(&b, ",\"type\":\"");
	wbuf_puts(&b, journal_type_name(leaf.type));
	wbuf_puts(&b, "\",\"timestamp\":");
	put_dec_str(&b, leaf.timestamp);
	wbuf_puts(&b, ",\"leaf_hash\":");
	put_b64(&b, leaf.hash, sizeof(leaf.hash));
	wbuf_puts(&b, ",\"entry\":");
	put_b64(&b, bytes, len);
	wbuf_puts(&b, "}");
	ret = api_reply_json(rq, 200, &b);
	free(bytes);
	return ret;
}

/* Read the two u64 query parameters a proof route takes. */
static enum MHD_Result
audit_params(struct request *rq, const char *const names[2], u64 v[2], bool *ok)
{
	bool present[2];
	const char *bad = NULL;

	*ok = false;
	if (api_query_u64s(rq->query, rq->query_len, names, v, present, 2,
			   &bad) != 0 ||
	    !present[0] || !present[1]) {
		char detail[96];
		snprintf(detail, sizeof(detail),
			 "expected %s=<n>&%s=<n>, decimal integers", names[0],
			 names[1]);
		return api_reply_problem(rq, PROBLEM_invalid_query, detail, bad,
					 NULL);
	}
	*ok = true;
	return MHD_YES;
}

static enum MHD_Result get_audit_inclusion(struct request *rq)
{
	static const char *const names[2] = {"index", "size"};
	struct audit *a = rq->srv->audit;
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 root[MERKLE_HASH_BYTES];
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	struct audit_leaf leaf;
	size_t np = 0;
	u64 v[2];
	bool ok;

	enum MHD_Result r = audit_params(rq, names, v, &ok);
	if (!ok)
		return r;
	if (v[1] == 0 || v[0] >= v[1] || v[1] > audit_size(a) ||
	    audit_leaf(a, v[0], &leaf) != 0 || audit_root(a, v[1], root) != 0 ||
	    audit_inclusion_proof(a, v[0], v[1], proof, &np) != 0)
		return api_reply_problem(
			rq, PROBLEM_audit_out_of_range,
			"need 0 <= index < size <= the log's size", NULL, NULL);
	wbuf_putc(&b, '{');
	put_inclusion(&b, v[0], v[1], leaf.hash, root, proof, np);
	wbuf_putc(&b, '}');
	return api_reply_json(rq, 200, &b);
}

static enum MHD_Result get_audit_consistency(struct request *rq)
{
	static const char *const names[2] = {"from", "to"};
	struct audit *a = rq->srv->audit;
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 from_root[MERKLE_HASH_BYTES], to_root[MERKLE_HASH_BYTES];
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	size_t np = 0;
	u64 v[2];
	bool ok;

	enum MHD_Result r = audit_params(rq, names, v, &ok);
	if (!ok)
		return r;
	if (v[0] == 0 || v[0] > v[1] || v[1] > audit_size(a) ||
	    audit_root(a, v[0], from_root) != 0 ||
	    audit_root(a, v[1], to_root) != 0 ||
	    audit_consistency_proof(a, v[0], v[1], proof, &np) != 0)
		return api_reply_problem(
			rq, PROBLEM_audit_out_of_range,
			"need 0 < from <= to <= the log's size", NULL, NULL);
	wbuf_puts(&b, "{\"from\":");
	put_dec_str(&b, v[0]);
	wbuf_puts(&b, ",\"to\":");
	put_dec_str(&b, v[1]);
	wbuf_puts(&b, ",\"from_root\":");
	put_b64(&b, from_root, sizeof(from_root));
	wbuf_puts(&b, ",\"to_root\":");
	put_b64(&b, to_root, sizeof(to_root));
	put_proof(&b, proof, np);
	wbuf_puts(&b, "}");
	return api_reply_json(rq, 200, &b);
}

/* GET /v1/audit/checkpoint: the newest signed checkpoint, as the C2SP
 * signed-note text that transparency tooling reads. */
static enum MHD_Result get_audit_checkpoint(struct request *rq)
{
	struct wbuf b = WBUF_INIT(NOTE_BYTES_MAX);

	if (rq->method == METHOD_POST) {
		/* Asynchronous: no HTTP thread waits for a signature. */
		u64 size = audit_size(rq->srv->audit);
		audit_request_checkpoint(rq->srv->audit);
		wbuf_puts(&b, "{\"requested_size\":");
		put_dec_str(&b, size);
		wbuf_puts(&b, "}");
		return api_reply_json(rq, 202, &b);
	}
	char *buf = malloc(NOTE_BYTES_MAX);
	long n;

	if (!buf)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	n = audit_checkpoint(rq->srv->audit, buf, NOTE_BYTES_MAX);
	if (n <= 0) {
		free(buf);
		return api_reply_problem(rq, PROBLEM_audit_unavailable,
					 "no checkpoint signed yet", NULL,
					 NULL);
	}
	wbuf_put(&b, buf, (size_t)n);
	free(buf);
	return api_reply(rq, 200, &b, "text/plain; charset=utf-8", NULL);
}

/* GET /.well-known/jwks.json: the public keys that verify what the server
 * signs (current and still-verifying previous ones). */
static enum MHD_Result get_jwks(struct request *rq)
{
	struct wbuf b = WBUF_INIT(KEYRING_JWKS_BYTES_MAX);
	char *buf;
	size_t len = 0;

	if (!rq->srv->keyring)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "no keyring loaded", NULL, NULL);
	buf = malloc(KEYRING_JWKS_BYTES_MAX);
	if (!buf || keyring_jwks(rq->srv->keyring, (int64_t)time(NULL), buf,
				 KEYRING_JWKS_BYTES_MAX, &len) != 0) {
		free(buf);
		return api_reply_problem(rq, PROBLEM_internal_error, NULL, NULL,
					 NULL);
	}
	wbuf_put(&b, buf, len);
	free(buf);
	return api_reply(rq, 200, &b, "application/jwk-set+json", NULL);
}

/* GET /v1/audit/key: the note verifier key strings of the log (one line
 * per server key still verifying, newest first): what `tpwallet audit
 * verify-*` and any C2SP signed-note verifier take. */
static enum MHD_Result get_audit_key(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX * 4);
	struct keyring *kr = rq->srv->keyring;
	const char *origin = rq->srv->origin;
	int64_t now = (int64_t)time(NULL);

	if (!kr || !origin)
		return api_reply_problem(rq, PROBLEM_audit_unavailable,
					 "no signing key loaded", NULL, NULL);
	static _Thread_local struct keyring_key keys[KEYRING_KEYS_MAX];
	size_t nkeys = keyring_keys_copy(kr, keys, KEYRING_KEYS_MAX);
	for (size_t i = 0; i < nkeys; i++) {
		const struct keyring_key *k = &keys[i];
		struct note_verifier v = {0};
		char line[NOTE_VERIFIER_KEY_BYTES_MAX + 1];
		size_t len;

		if (k->expires_at <= now)
			continue;
		snprintf(v.name, sizeof(v.name), "%s", origin);
		v.name_len = strlen(v.name);
		memcpy(v.public_key, k->pub, sizeof(v.public_key));
		v.key_id = note_key_id(v.name, v.name_len, v.public_key);
		if (note_verifier_format(&v, line, sizeof(line), &len) != 0)
			continue;
		wbuf_put(&b, line, len);
		wbuf_putc(&b, '\n');
	}
	return api_reply(rq, 200, &b, "text/plain; charset=utf-8", NULL);
}

/* Would a version-1 entry's receipt show nothing but the record it is
 * for?  Rule 1 proves an entry only whole: so only an entry of one event
 * that is not a transfer under a mandate (whose guards name the chain's
 * issuers, caps and uses) may go to a caller without audit:read. */
static bool v1_entry_is_only(const u8 *entry, size_t len)
{
	struct journal_record r;
	struct command_view c;

	if (journal_decode(entry, len, &r) != (long)len)
		return false;
	if (r.type != JOURNAL_COMMAND)
		return r.payload_bytes == LEAF_EVENT_BYTES;
	return command_decode(r.payload, r.payload_bytes, &c) == 0 &&
	       c.h.kind == AUTH_CMD_ACCOUNTS_OWNED && c.h.count == 1;
}

/* The members of an event receipt (leaf rule 2, log/leaf.h) after the
 * inclusion members: the entry's header (checksum zeroed), command and
 * ext hash, the event, its chunk's hashes and the chunk's path. */
static int put_event_receipt(struct wbuf *b, const u8 *entry, size_t len,
			     u128 id, u64 ts)
{
	static _Thread_local struct leaf_event_proof pr;
	struct leaf_v2 p;
	const u8 *events;
	u64 entry_ts;
	u128 v;
	u32 n, k;

	if (leaf_v2_split(entry, len, &p, &events, &n) != 0)
		return -EBADMSG;
	/* Event i of n is stamped entry_ts - n + 1 + i: the record's own
	 * event, even when a failed event of the batch carried its id. */
	memcpy(&entry_ts, p.header + 24, sizeof(entry_ts));
	k = n;
	if (n > 0 && ts <= entry_ts && entry_ts - ts < n) {
		k = n - 1 - (u32)(entry_ts - ts);
		memcpy(&v, events + (size_t)k * LEAF_EVENT_BYTES, sizeof(v));
		if (v != id)
			k = n;
	}
	for (u32 i = 0; k == n && i < n; i++) {
		memcpy(&v, events + (size_t)i * LEAF_EVENT_BYTES, sizeof(v));
		if (v == id)
			k = i;
	}
	if (k == n || leaf_event_prove(events, n, k, &pr) != 0)
		return -ENOENT;
	wbuf_puts(b, ",\"header\":");
	put_b64(b, p.header, sizeof(p.header));
	wbuf_puts(b, ",\"command\":");
	put_b64(b, p.command, sizeof(p.command));
	wbuf_puts(b, ",\"ext_hash\":");
	put_b64(b, p.ext_hash, sizeof(p.ext_hash));
	wbuf_puts(b, ",\"event_index\":");
	put_dec_str(b, k);
	wbuf_puts(b, ",\"event\":");
	put_b64(b, events + (size_t)k * LEAF_EVENT_BYTES, LEAF_EVENT_BYTES);
	wbuf_puts(b, ",\"chunk\":[");
	for (u32 i = 0; i < pr.nchunk; i++) {
		if (i)
			wbuf_putc(b, ',');
		put_b64(b, pr.chunk[i], MERKLE_HASH_BYTES);
	}
	wbuf_puts(b, "],\"events_proof\":[");
	for (u32 i = 0; i < pr.npath; i++) {
		if (i)
			wbuf_putc(b, ',');
		put_b64(b, pr.path[i], MERKLE_HASH_BYTES);
	}
	wbuf_putc(b, ']');
	return 0;
}

/*
 * GET /v1/transfers/{id}/receipt, /v1/accounts/{id}/receipt: proof that
 * the record is in the signed log: the leaf hash of the entry that
 * created it, its inclusion proof in the tree of the newest checkpoint's
 * size, and that checkpoint.  A version-2 entry is proven by the record's
 * own event and hashes of the rest (leaf rule 2); a version-1 entry only
 * whole, so one that holds other records (or a mandate's guards) needs
 * audit:read.  Checkable offline with `tpwallet audit verify-inclusion`.
 * 503 (retry) until a checkpoint covers the entry.
 */
static enum MHD_Result get_receipt(struct request *rq)
{
	struct audit *a = rq->srv->audit;
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 root[MERKLE_HASH_BYTES];
	struct audit_leaf leaf;
	struct checkpoint c;
	struct wbuf b = WBUF_INIT(0);
	char *note = NULL;
	u8 *entry = NULL;
	size_t entry_len = 0, np = 0;
	enum MHD_Result ret;
	u64 ts = 0, index;
	int r;

	const struct ledger *l = engine_read_begin(rq->srv->e);
	if (rq->route == ROUTE_transfer_receipt) {
		struct transfer t;
		r = ledger_lookup_transfer(l, rq->path_id, &t);
		ts = t.timestamp;
	} else {
		struct account acc;
		r = ledger_lookup_account(l, rq->path_id, &acc);
		ts = acc.timestamp;
	}
	engine_read_end(rq->srv->e);
	if (r != 0)
		return api_reply_problem(rq,
					 rq->route == ROUTE_transfer_receipt
						 ? PROBLEM_transfer_not_found
						 : PROBLEM_account_not_found,
					 NULL, NULL, NULL);
	note = malloc(NOTE_BYTES_MAX);
	if (!note)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	long nlen = audit_checkpoint(a, note, NOTE_BYTES_MAX);
	const char *end =
		nlen > 0 ? memmem(note, (size_t)nlen, "\n\n", 2) : NULL;
	if (audit_index_of_timestamp(a, ts, &index) != 0 || !end ||
	    checkpoint_parse(note, (size_t)(end - note) + 1, &c) != 0 ||
	    index >= c.size) {
		ret = api_reply_problem(
			rq, PROBLEM_audit_unavailable,
			"the entry is not in a signed checkpoint "
			"yet: retry in a second",
			NULL, NULL);
		goto cleanup;
	}
	if (audit_leaf(a, index, &leaf) != 0 ||
	    audit_root(a, c.size, root) != 0 ||
	    memcmp(root, c.root, sizeof(root)) != 0 ||
	    audit_inclusion_proof(a, index, c.size, proof, &np) != 0) {
		ret = api_reply_problem(
			rq, PROBLEM_internal_error,
			"the tree does not match its checkpoint", NULL, NULL);
		goto cleanup;
	}
	r = audit_entry(a, index, &entry, &entry_len);
	if (r != 0) {
		ret = api_reply_problem(rq,
					r == -EBADMSG
						? PROBLEM_audit_entry_changed
						: PROBLEM_internal_error,
					NULL, NULL, NULL);
		goto cleanup;
	}
	bool whole = leaf_record_version(entry, entry_len) == 1;
	if (whole && !v1_entry_is_only(entry, entry_len) &&
	    !authz_may_read_audit(rq)) {
		ret = api_reply_problem(
			rq, PROBLEM_receipt_shows_others,
			"the record is in an entry of the first journal "
			"version with other records or a mandate's guards; "
			"such an entry is proven only whole",
			NULL, NULL);
		goto cleanup;
	}
	wbuf_init(&b,
		  (whole ? entry_len * 4 / 3 : 0) + (size_t)nlen * 2 + 8192);
	wbuf_putc(&b, '{');
	put_inclusion(&b, index, c.size, leaf.hash, root, proof, np);
	if (whole) {
		wbuf_puts(&b, ",\"entry\":");
		put_b64(&b, entry, entry_len);
	} else if (put_event_receipt(&b, entry, entry_len, rq->path_id, ts) !=
		   0) {
		wbuf_release(&b);
		ret = api_reply_problem(rq, PROBLEM_internal_error,
					"the entry does not hold the record",
					NULL, NULL);
		goto cleanup;
	}
	wbuf_puts(&b, ",\"checkpoint\":");
	wbuf_put_json_utf8(&b, note, (size_t)nlen);
	wbuf_puts(&b, "}");
	ret = api_reply_json(rq, 200, &b);
cleanup:
	free(entry);
	free(note);
	return ret;
}

static enum MHD_Result get_audit(struct request *rq)
{
	if (!rq->srv->audit || !audit_healthy(rq->srv->audit))
		return api_reply_problem(rq, PROBLEM_audit_unavailable, NULL,
					 NULL, NULL);
	switch (rq->route) {
	case ROUTE_audit_head: return get_audit_head(rq);
	case ROUTE_audit_checkpoint: return get_audit_checkpoint(rq);
	case ROUTE_audit_key: return get_audit_key(rq);
	case ROUTE_account_receipt:
	case ROUTE_transfer_receipt: return get_receipt(rq);
	case ROUTE_audit_entry: return get_audit_entry(rq);
	case ROUTE_audit_inclusion: return get_audit_inclusion(rq);
	default: return get_audit_consistency(rq);
	}
}

static enum MHD_Result get_simple(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	struct api_server *s = rq->srv;

	switch (rq->route) {
	case ROUTE_healthz:
		wbuf_puts(&b, "{\"status\":\"ok\"}");
		return api_reply_json(rq, 200, &b);
	case ROUTE_readyz:
		if (!atomic_load(&s->ready) || atomic_load(&s->stopping))
			return api_reply_problem(rq, PROBLEM_unavailable, NULL,
						 NULL, NULL);
		if (!engine_healthy(s->e))
			return api_reply_problem(
				rq, PROBLEM_unavailable,
				"the journal failed: every change "
				"is refused until a restart",
				NULL, NULL);
		wbuf_puts(&b, "{\"status\":\"ready\"}");
		return api_reply_json(rq, 200, &b);
	case ROUTE_metrics:
		wbuf_init(&b, (size_t)4 << 20);
		metrics_render(&s->metrics, s->e, &b);
		policy_metrics(s, &b);
		netguard_metrics(s->ng, &b);
		return api_reply(rq, 200, &b, METRICS_CONTENT_TYPE, NULL);
	default:
		return api_reply_problem(rq, PROBLEM_not_found, NULL, NULL,
					 NULL);
	}
}

/* ---- create requests -------------------------------------------------- */

/* Sequencer thread: must not block.  After MHD_resume_connection the
 * request may be replied to and freed at any moment: touch only s. */
static void on_engine_done(struct engine_request *er)
{
	struct request *rq = er->ctx;
	struct api_server *s = rq->srv;
	struct MHD_Connection *c = rq->conn;

	atomic_store_explicit(&rq->ready, true, memory_order_release);
	MHD_resume_connection(c);
	atomic_fetch_sub(&s->inflight, 1);
}

static bool content_type_json(const char *ct)
{
	static const char want[] = "application/json";
	size_t n;

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = sizeof(want) - 1;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* The largest body a route reads: the batches and the activity load
 * take body_bytes_max; a policy document 256 KiB; the other JSON
 * objects 16 KiB.  No request reserves more of the shared budget. */
static size_t route_body_max(const struct request *rq)
{
	switch (rq->route) {
	case ROUTE_accounts:
	case ROUTE_transfers:
	case ROUTE_cp_activity: return rq->srv->body_bytes_max;
	case ROUTE_cp_manifest:
		return rq->srv->body_bytes_max < POLICY_DOC_BYTES_MAX
			       ? rq->srv->body_bytes_max
			       : POLICY_DOC_BYTES_MAX;
	default: return API_SMALL_BODY_BYTES_MAX;
	}
}

/* A create request's headers: refuse what can be refused unread. */
static enum MHD_Result create_begin(struct request *rq)
{
	const char *cl;

	if (!content_type_json(MHD_lookup_connection_value(
		    rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
		return api_reply_problem(rq, PROBLEM_unsupported_media_type,
					 "send Content-Type: application/json",
					 NULL, NULL);
	cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		unsigned long long n;
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno == 0 && end != cl && n > route_body_max(rq))
			return api_reply_problem(
				rq, PROBLEM_body_too_large,
				"Content-Length is over the limit", NULL, NULL);
		if (errno == 0 && end != cl)
			rq->body_expected = (size_t)n;
	}
	rq->state = RS_BODY;
	return MHD_YES;
}

/* A body chunk: keep it if under the cap, else drop it and remember. */
/* Free the body buffer and give its bytes back to the global budget. */
static void release_body(struct request *rq)
{
	if (rq->body_cap)
		netguard_release(rq->nc, rq->body_cap);
	free(rq->body);
	rq->body = NULL;
	rq->body_len = rq->body_cap = 0;
}

static enum MHD_Result create_chunk(struct request *rq, const char *data,
				    size_t n)
{
	size_t max = route_body_max(rq);

	if (rq->body_too_large || rq->over_budget)
		return MHD_YES;
	if (n > max - rq->body_len) {
		rq->body_too_large = true;
		release_body(rq);
		return MHD_YES;
	}
	if (rq->body_len + n > rq->body_cap) {
		size_t cap = rq->body_cap ? rq->body_cap * 2 : 16384;
		char *p;
		while (cap < rq->body_len + n)
			cap *= 2;
		/* The buffer grows with the bytes that came, never ahead of
		 * them to a promised Content-Length: at most twice what was
		 * received (and no more than Content-Length, when given). */
		if (rq->body_expected >= rq->body_len + n &&
		    cap > rq->body_expected)
			cap = rq->body_expected;
		if (cap > max)
			cap = max;
		/* Every growth is held against the budgets of all bodies,
		 * of this address and of this principal (netguard.h): past
		 * one the request is refused (503), and what one client may
		 * hold leaves room for the others. */
		size_t grow = cap - rq->body_cap;
		enum netguard_refusal over = netguard_hold(rq->nc, grow);
		if (over != NETGUARD_OK) {
			rq->over_budget = true;
			rq->over = over;
			release_body(rq);
			return MHD_YES;
		}
		p = realloc(rq->body, cap);
		if (!p) {
			netguard_release(rq->nc, grow);
			return MHD_NO;
		}
		rq->body = p;
		rq->body_cap = cap;
	}
	memcpy(rq->body + rq->body_len, data, n);
	rq->body_len += n;
	return MHD_YES;
}

static const char *over_budget_detail(const struct request *rq)
{
	switch (rq->over) {
	case NETGUARD_OVER_ADDRESS:
		return "this address holds its share of buffered request "
		       "bodies; retry when its other uploads are done";
	case NETGUARD_OVER_PRINCIPAL:
		return "this principal holds its share of buffered request "
		       "bodies; retry when its other uploads are done";
	default: return "too many large requests at once; retry";
	}
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
			rq->want_entry = true;
		else if (strcmp(p, "entry_index=false") == 0)
			rq->want_entry = false;
		else if (rq->route == ROUTE_accounts &&
			 strncmp(p, "owner=", 6) == 0 &&
			 strlen(p + 6) < sizeof(rq->owner_param))
			memcpy(rq->owner_param, p + 6, strlen(p + 6) + 1);
		else
			return rq->route == ROUTE_accounts
				       ? "parameters are entry_index=true and "
					 "owner=<principal id>"
				       : "the only parameter is "
					 "entry_index=true";
	}
	return NULL;
}

/* The whole body is in: decode and hand to the engine. */
static enum MHD_Result create_submit(struct request *rq)
{
	struct codec_error ce;
	int r;

	if (rq->body_too_large)
		return api_reply_problem(rq, PROBLEM_body_too_large,
					 "the body is over the limit", NULL,
					 NULL);
	const char *qerr = create_query(rq);
	if (qerr) {
		release_body(rq);
		return api_reply_problem(rq, PROBLEM_invalid_query, qerr, NULL,
					 NULL);
	}
	if (rq->over_budget) {
		release_body(rq);
		return api_reply_problem(rq, PROBLEM_unavailable,
					 over_budget_detail(rq), NULL, NULL);
	}
	r = codec_decode_events(rq->route == ROUTE_accounts ? CODEC_ACCOUNT
							    : CODEC_TRANSFER,
				rq->body ? rq->body : "", rq->body_len,
				&rq->events, &rq->count, &rq->is_array, &ce);
	/* The body is not needed past this point: give it back early. */
	release_body(rq);
	if (r == -ENOMEM)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	if (r)
		return reply_codec_error(rq, &ce);
	rq->results = calloc(rq->count, sizeof(u32));
	if (!rq->results)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	rq->base_op = rq->route == ROUTE_accounts ? ENGINE_CREATE_ACCOUNTS
						  : ENGINE_CREATE_TRANSFERS;
	/* A mandate's rights per event; its links and an owner go into a
	 * command record, so the state machine counts caps at apply. */
	if (rq->route == ROUTE_transfers && authz_check_transfers(rq) != 0)
		return api_reply_auth(rq);
	switch (authz_build_command(rq)) {
	case 0: break;
	case -2:
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "owner is a principal id (43 "
					 "base64url characters)",
					 "owner", NULL);
	case -3:
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "only the administrator may create "
					 "accounts for another owner",
					 "owner", NULL);
	case -4:
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "owner is not a registered principal",
					 "owner", NULL);
	default:
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	}

	rq->ereq = (struct engine_request){
		.op = rq->payload ? ENGINE_COMMAND : rq->base_op,
		.count = rq->count,
		.payload_bytes = rq->payload_bytes,
		.events = rq->payload ? rq->payload : rq->events,
		.results = rq->results,
	};
	return api_submit(rq);
}

json_t *api_body_object(struct request *rq, size_t max_bytes,
			enum MHD_Result *reply)
{
	json_error_t je;
	json_t *j = NULL;
	char detail[64];

	*reply = MHD_NO;
	if (rq->over_budget) {
		*reply = api_reply_problem(rq, PROBLEM_unavailable,
					   over_budget_detail(rq), NULL, NULL);
		return NULL;
	}
	if (rq->body_too_large || rq->body_len > max_bytes) {
		snprintf(detail, sizeof(detail), "at most %zu bytes",
			 max_bytes);
		*reply = api_reply_problem(rq, PROBLEM_body_too_large, detail,
					   NULL, NULL);
		return NULL;
	}
	if (rq->body_len)
		j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
			       &je);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		*reply = api_reply_problem(rq, PROBLEM_invalid_json,
					   "the body must be a JSON object",
					   NULL, NULL);
		return NULL;
	}
	return j;
}

void *api_command(struct request *rq, u16 kind, u32 ext_bytes,
		  const void *events, u32 count)
{
	struct command_header h = {
		.kind = kind, .ext_bytes = ext_bytes, .count = count};
	size_t bytes = sizeof(h) + ext_bytes + (size_t)count * 128u;
	/* zeroed: every byte of it is journaled */
	u8 *p = calloc(1, bytes);
	if (!p)
		return NULL;
	memcpy(p, &h, sizeof(h));
	if (count)
		memcpy(p + sizeof(h) + ext_bytes, events, (size_t)count * 128u);
	free(rq->payload);
	rq->payload = p;
	rq->payload_bytes = (u32)bytes;
	return p + sizeof(h);
}

enum MHD_Result api_submit_command(struct request *rq)
{
	rq->results = calloc(1, sizeof(u32));
	if (!rq->results)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	rq->ereq = (struct engine_request){.op = ENGINE_COMMAND,
					   .count = 0,
					   .payload_bytes = rq->payload_bytes,
					   .events = rq->payload,
					   .results = rq->results};
	return api_submit(rq);
}

/* Hand rq->ereq to the engine; the reply comes in create_reply. */
enum MHD_Result api_submit(struct request *rq)
{
	struct api_server *s = rq->srv;
	int r;

	/* Count first, then look at `stopping`: with api_server_stop doing
	 * the reverse, one of the two always sees the other (seq_cst). */
	atomic_fetch_add(&s->inflight, 1);
	if (atomic_load(&s->stopping)) {
		atomic_fetch_sub(&s->inflight, 1);
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "the server is shutting down", NULL,
					 NULL);
	}
	atomic_fetch_add(&s->submitted, 1);
	rq->ereq.done = on_engine_done; /* also: counted in submitted */
	rq->ereq.ctx = rq;
	rq->state = RS_SUBMITTED;
	/* Suspend before submitting: the done callback may run before this
	 * function returns, and resuming needs a suspended connection. */
	MHD_suspend_connection(rq->conn);
	r = engine_submit(s->e, &rq->ereq);
	if (r) {
		rq->ereq.status = r;
		on_engine_done(&rq->ereq);
	}
	return MHD_YES;
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

/* Resumed after the engine ran the batch: one result per event. */
static enum MHD_Result create_reply(struct request *rq)
{
	struct api_server *s = rq->srv;
	struct engine_request *er = &rq->ereq;
	const struct ledger *l = NULL;
	struct wbuf b;
	unsigned status = 200;

	if (!atomic_load_explicit(&rq->ready, memory_order_acquire)) {
		/* Cannot happen: we are only resumed once ready. */
		log_at(LOG_ERROR, "request resumed before its batch was done",
		       LOG_STR("request_id", rq->request_id));
		return MHD_NO;
	}
	if (er->status == -EIO)
		return api_reply_problem(rq, PROBLEM_commit_unknown, NULL, NULL,
					 NULL);
	if (er->status == -ESHUTDOWN)
		return api_reply_problem(rq, PROBLEM_unavailable,
					 "the engine is shutting down", NULL,
					 NULL);
	if (er->status)
		return api_reply_problem(rq, PROBLEM_engine_error, NULL, NULL,
					 NULL);
	if (rq->route >= ROUTE_cp_manifest && rq->route <= ROUTE_cp_activity)
		return policy_command_reply(rq);
	if (rq->route != ROUTE_accounts && rq->route != ROUTE_transfers)
		return authz_command_reply(rq);
	metrics_observe_results(&s->metrics, (int)rq->base_op, rq->results,
				rq->count);
	/* A mandate's cap or a revocation refuses the whole batch. */
	if (rq->route == ROUTE_transfers && rq->payload &&
	    authz_guard_refused(rq))
		return api_reply_auth(rq);

	wbuf_init(&b, (size_t)rq->count * CODEC_RESULT_BYTES_MAX + 16);
	if (rq->is_array)
		wbuf_putc(&b, '[');
	for (u32 i = 0; i < rq->count; i++) {
		const char *name = result_name(rq->base_op, rq->results[i]);
		u64 ts = 0;

		if (rq->results[i] == 0) {
			/* Event i of a batch is stamped ts - count + 1 + i. */
			ts = er->timestamp - rq->count + 1 + i;
		} else if (strcmp(name, "exists") == 0) {
			/* The existing record's own timestamp. */
			if (!l)
				l = engine_read_begin(s->e);
			if (rq->base_op == ENGINE_CREATE_ACCOUNTS) {
				struct account a;
				const struct account *ev =
					(const struct account *)rq->events + i;
				if (ledger_lookup_account(l, ev->id, &a) == 0)
					ts = a.timestamp;
			} else {
				struct transfer t;
				const struct transfer *ev =
					(const struct transfer *)rq->events + i;
				if (ledger_lookup_transfer(l, ev->id, &t) == 0)
					ts = t.timestamp;
			}
		}
		if (i)
			wbuf_putc(&b, ',');
		/* Created by this request: its entry is the journal record
		 * of the batch, leaf seq - 1 of the audit log. */
		codec_write_result_entry(&b, i, name, ts,
					 rq->want_entry && rq->results[i] == 0
						 ? er->seq - 1
						 : UINT64_MAX);
		if (!rq->is_array)
			status = codec_result_http_status(name);
	}
	if (l)
		engine_read_end(s->e);
	if (rq->is_array)
		wbuf_putc(&b, ']');
	return api_reply_json(rq, status, &b);
}

/* ---- routing ---------------------------------------------------------- */

static enum api_method method_of(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return METHOD_GET;
	if (strcmp(m, "HEAD") == 0)
		return METHOD_HEAD;
	if (strcmp(m, "POST") == 0)
		return METHOD_POST;
	if (strcmp(m, "PUT") == 0)
		return METHOD_PUT;
	if (strcmp(m, "DELETE") == 0)
		return METHOD_DELETE;
	return METHOD_OTHER;
}

/* Routes whose body is read (the others' is discarded unread).  A
 * request refused by authentication is not read either. */
static bool reads_body(const struct request *rq)
{
	bool route =
		rq->route == ROUTE_accounts || rq->route == ROUTE_transfers ||
		(rq->method == METHOD_POST &&
		 (rq->route == ROUTE_principals ||
		  rq->route == ROUTE_revocations ||
		  rq->route == ROUTE_cp_rollback ||
		  rq->route == ROUTE_cp_overrides ||
		  rq->route == ROUTE_cp_activity)) ||
		(rq->method == METHOD_PUT && rq->route == ROUTE_cp_manifest);
	bool blocked = rq->gated && rq->gate_verdict == POLICY_BLOCKED;
	return route && !blocked &&
	       (!rq->auth_checked || rq->auth_err.code == 0);
}

static bool has_body(struct request *rq)
{
	const char *cl = MHD_lookup_connection_value(
		rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0") != 0) ||
	       MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* The refusal that routing alone decides, or PROBLEM_COUNT for none. */
static enum problem route_check(struct request *rq, const char **allow)
{
	bool is_create =
		rq->route == ROUTE_accounts || rq->route == ROUTE_transfers;

	*allow = NULL;
	if (rq->route == ROUTE_unmatched)
		return PROBLEM_not_found;
	/* Fail closed: balances replayed from a changed entry are not the
	 * ones acknowledged (docs/operations.md, Recovery). */
	if (rq->srv->audit && audit_journal_changed(rq->srv->audit) &&
	    rq->route != ROUTE_healthz && rq->route != ROUTE_metrics &&
	    rq->route != ROUTE_jwks)
		return PROBLEM_journal_changed;
	if ((is_create || rq->route == ROUTE_keys_rotate) &&
	    rq->method != METHOD_POST) {
		*allow = "POST";
		return PROBLEM_method_not_allowed;
	}
	bool rd = rq->method == METHOD_GET || rq->method == METHOD_HEAD;
	const char *only = NULL;
	switch (rq->route) {
	case ROUTE_cp_manifest:
		only = rd || rq->method == METHOD_PUT ? NULL : "GET, HEAD, PUT";
		break;
	case ROUTE_cp_overrides:
		only = rd || rq->method == METHOD_POST ? NULL
						       : "GET, HEAD, POST";
		break;
	case ROUTE_cp_override:
		only = rd || rq->method == METHOD_DELETE ? NULL
							 : "GET, HEAD, DELETE";
		break;
	case ROUTE_cp_rollback:
	case ROUTE_cp_activity:
		only = rq->method == METHOD_POST ? NULL : "POST";
		break;
	default: break;
	}
	if (only) {
		*allow = only;
		return PROBLEM_method_not_allowed;
	}
	if (rq->route == ROUTE_keys_rotate || rq->route == ROUTE_cp_manifest ||
	    rq->route == ROUTE_cp_overrides || rq->route == ROUTE_cp_override ||
	    rq->route == ROUTE_cp_rollback || rq->route == ROUTE_cp_activity) {
		/* methods checked above */
	} else if (rq->route == ROUTE_audit_checkpoint ||
		   rq->route == ROUTE_principals ||
		   rq->route == ROUTE_revocations) {
		/* GET the newest; POST asks for one now. */
		if (!rd && rq->method != METHOD_POST) {
			*allow = "GET, HEAD, POST";
			return PROBLEM_method_not_allowed;
		}
	} else if (!is_create && rq->method != METHOD_GET &&
		   rq->method != METHOD_HEAD) {
		*allow = "GET, HEAD";
		return PROBLEM_method_not_allowed;
	}
	if (rq->bad_id)
		return PROBLEM_invalid_id;
	rq->query_repeat =
		api_query_repeated(rq->query, rq->query_len, rq->repeated_param,
				   sizeof(rq->repeated_param));
	if (rq->query_repeat != 0)
		return PROBLEM_invalid_query;
	if (is_create && atomic_load(&rq->srv->stopping))
		return PROBLEM_unavailable;
	return PROBLEM_COUNT;
}

static enum MHD_Result reply_route_problem(struct request *rq, enum problem p,
					   const char *allow)
{
	if (p == PROBLEM_invalid_id && rq->route == ROUTE_audit_entry)
		return api_reply_problem(
			rq, p,
			"entry indexes are decimal integers from "
			"0 to 2^64-1 without leading zeros",
			"index", NULL);
	if (p == PROBLEM_invalid_id)
		return api_reply_problem(rq, p,
					 "ids are decimal integers from 0 to "
					 "2^128-1 without leading zeros",
					 "id", NULL);
	_Static_assert(API_QUERY_PARAMS_MAX == 64, "the reply names 64");
	if (p == PROBLEM_invalid_query)
		return api_reply_problem(
			rq, p,
			rq->query_repeat > 0
				? "a query parameter is given more than once"
				: "at most 64 query parameters",
			rq->repeated_param[0] ? rq->repeated_param : NULL,
			NULL);
	return api_reply_problem(rq, p, NULL, NULL, allow);
}

/* What the header fields say about framing and the forwarded client. */
struct head_scan {
	struct netguard_framing framing;
	bool bad_field;
	unsigned hosts;	       /* Host fields */
	const char *forwarded; /* the last X-Forwarded-For */
	size_t forwarded_len;
};

static enum MHD_Result head_field(void *cls, enum MHD_ValueKind kind,
				  const char *key, size_t key_size,
				  const char *value, size_t value_size)
{
	struct head_scan *hs = cls;

	(void)kind;
	if (!netguard_field_ok(key, key_size, value, value_size)) {
		hs->bad_field = true;
		return MHD_NO;
	}
	netguard_framing_add(&hs->framing, key, key_size, value, value_size);
	if (key_size == 4 && strncasecmp(key, "Host", 4) == 0)
		hs->hosts++;
	if (key_size == 15 && strncasecmp(key, "X-Forwarded-For", 15) == 0) {
		hs->forwarded = value;
		hs->forwarded_len = value_size;
	}
	return MHD_YES;
}

/*
 * Headers are in.  libmicrohttpd 0.9.75 closes the connection after any
 * reply queued in this first call (it cannot know the body was read), so
 * only refusals that must not read the body are answered here: a create
 * request with the wrong Content-Type or too long a Content-Length, and a
 * refused request that carries a body.  Everything else is answered once
 * the (empty or buffered) body is in, keeping the connection alive.
 */
static enum MHD_Result request_begin(struct request *rq, const char *url,
				     const char *method, const char *version)
{
	const char *v, *allow;
	enum problem p;

	v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					"X-Request-Id");
	if (v && api_request_id_valid(v))
		snprintf(rq->request_id, sizeof(rq->request_id), "%s", v);
	else
		request_id_generate(rq->request_id);
	v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					"traceparent");
	if (!v || !api_traceparent_parse(v, rq->trace_id))
		rq->trace_id[0] = '\0';

	rq->method = method_of(method);
	/* The framing first: an ambiguous request is not routed at all.
	 * The raw bytes (netguard.h, framing.h), then what libmicrohttpd
	 * parsed of them. */
	enum framing_error fe = netguard_framing_error(rq->nc, rq->req_index);
	rq->close_after = netguard_close_after(rq->nc);
	if (fe != FRAMING_OK) {
		netguard_head_done(rq->nc, NULL, 0, false);
		return api_reply_problem(rq, PROBLEM_bad_framing,
					 framing_error_text(fe), NULL, NULL);
	}
	struct head_scan hs = {0};
	MHD_get_connection_values_n(rq->conn, MHD_HEADER_KIND, head_field, &hs);
	/* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host field (a
	 * second one could name another origin for DPoP's htu). */
	bool bad_host = hs.hosts > 1 ||
			(hs.hosts == 0 && strcmp(version, "HTTP/1.0") != 0);
	if (rq->bad_target || hs.bad_field || bad_host ||
	    !netguard_framing_ok(&hs.framing)) {
		netguard_head_done(rq->nc, NULL, 0, false);
		return api_reply_problem(
			rq, PROBLEM_bad_framing,
			rq->bad_target
				? "the request target is not origin-form, or "
				  "has a control character, a non-ASCII byte, "
				  "%00 or an encoded slash (%2F, %5C) in its "
				  "path"
			: hs.bad_field ? "a header field has a bad name or a "
					 "control character in its value"
			: bad_host     ? "exactly one Host field is needed "
					 "(RFC 9112, section 3.2)"
				       : "Content-Length and "
					 "Transfer-Encoding must frame the "
					 "body one way only",
			NULL, NULL);
	}
	switch (netguard_head_done(rq->nc, hs.forwarded, hs.forwarded_len,
				   has_body(rq))) {
	case NETGUARD_OK: break;
	case NETGUARD_OVER_CONNECTIONS:
		return api_reply_problem(rq, PROBLEM_too_many_requests,
					 "this client address has too many "
					 "requests in progress",
					 NULL, NULL);
	default:
		return api_reply_problem(rq, PROBLEM_bad_framing,
					 "a request through a trusted proxy "
					 "must carry one X-Forwarded-For "
					 "that names the client",
					 NULL, NULL);
	}
	rq->route = api_route_match(url, &rq->path_id, &rq->bad_id);
	const char *tid = api_route_text_id(url);
	if (tid && !rq->bad_id)
		snprintf(rq->text_id, sizeof(rq->text_id), "%s", tid);
	p = route_check(rq, &allow);
	if (p != PROBLEM_COUNT && has_body(rq))
		return reply_route_problem(rq, p, allow);
	rq->state = RS_BODY;
	/* Who is calling and may they: decided before any body is read
	 * (a refused request's body is discarded unread). */
	if (p == PROBLEM_COUNT && strncmp(url, "/v1/", 4) == 0) {
		/* The client-version gate first: a blocked app learns what
		 * to do whatever else is wrong.  Not on the policy's own
		 * routes, which an app must reach to learn it. */
		if (strncmp(url, "/v1/client-policy", 17) != 0)
			policy_gate(rq);
		bool blocked = rq->gated && rq->gate_verdict == POLICY_BLOCKED;
		/* A refused request with a body is answered now, unread
		 * (the connection then closes): no waiting for an upload
		 * that would be thrown away. */
		if (blocked)
			return has_body(rq) ? policy_gate_reply(rq) : MHD_YES;
		authz_begin(rq, url, method);
		if (rq->auth_err.code == 0 && rq->caller.authenticated)
			netguard_set_principal(rq->nc, rq->caller.tenant);
		if (rq->auth_err.code == 0)
			authz_route(rq);
		if (rq->auth_err.code != 0 && has_body(rq))
			return api_reply_auth(rq);
	}
	if (p == PROBLEM_COUNT && reads_body(rq))
		return create_begin(rq);
	return MHD_YES;
}

/* The body is in (create requests) or there is none: answer. */
static enum MHD_Result request_dispatch(struct request *rq)
{
	const char *allow;
	enum problem p = route_check(rq, &allow);

	if (p != PROBLEM_COUNT)
		return reply_route_problem(rq, p, allow);
	if (rq->gated && rq->gate_verdict == POLICY_BLOCKED)
		return policy_gate_reply(rq);
	if (rq->auth_checked && rq->auth_err.code != 0) {
		release_body(rq);
		return api_reply_auth(rq);
	}
	policy_observe(rq);
	switch (rq->route) {
	case ROUTE_cp_manifest:
	case ROUTE_cp_current:
	case ROUTE_cp_versions:
	case ROUTE_cp_version:
	case ROUTE_cp_diff:
	case ROUTE_cp_rollback:
	case ROUTE_cp_evaluate:
	case ROUTE_cp_overrides:
	case ROUTE_cp_override:
	case ROUTE_cp_impact:
	case ROUTE_cp_activity: return policy_dispatch(rq);
	case ROUTE_principals:
	case ROUTE_principal:
	case ROUTE_keys:
	case ROUTE_keys_rotate:
	case ROUTE_revocations:
	case ROUTE_revocation: return authz_dispatch(rq);
	case ROUTE_accounts:
	case ROUTE_transfers: return create_submit(rq);
	case ROUTE_account: return get_account(rq);
	case ROUTE_transfer: return get_transfer(rq);
	case ROUTE_account_transfers: return get_account_query(rq, false);
	case ROUTE_account_balances: return get_account_query(rq, true);
	case ROUTE_jwks: return get_jwks(rq);
	case ROUTE_audit_key:
	case ROUTE_account_receipt:
	case ROUTE_transfer_receipt:
	case ROUTE_audit_head:
	case ROUTE_audit_checkpoint:
	case ROUTE_audit_entry:
	case ROUTE_audit_inclusion:
	case ROUTE_audit_consistency: return get_audit(rq);
	default: return get_simple(rq);
	}
}

/* ---- libmicrohttpd callbacks ------------------------------------------ */

/* Called once per request with the raw request target: the one place
 * the query string is seen before libmicrohttpd splits it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct api_server *s = cls;
	const char *q = strchr(uri, '?');
	size_t qlen = q ? strlen(q + 1) : 0;
	struct request *rq;

	rq = calloc(1, sizeof(*rq) + qlen + 1);
	if (!rq)
		return NULL;
	rq->srv = s;
	rq->conn = c;
	rq->start_ns = now_ns();
	rq->route = ROUTE_unmatched;
	rq->method = METHOD_OTHER;
	rq->query_len = qlen;
	if (qlen)
		memcpy(rq->query, q + 1, qlen);
	rq->query[qlen] = '\0';
	atomic_init(&rq->ready, false);
	rq->bad_target = !netguard_target_ok(uri);
	rq->nc = netguard_conn_of(c);
	rq->req_index = netguard_request_line(rq->nc);
	return rq;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **req_cls)
{
	struct request *rq = *req_cls;

	(void)cls;
	(void)version;
	if (!rq)
		return MHD_NO; /* out of memory in on_uri: drop the connection
				*/
	rq->conn = c;
	switch (rq->state) {
	case RS_NEW: return request_begin(rq, url, method, version);
	case RS_BODY:
		if (*upload_data_size) {
			size_t n = *upload_data_size;
			*upload_data_size = 0;
			netguard_body_bytes(rq->nc, n);
			if (!reads_body(rq))
				return MHD_YES; /* a body we do not read */
			return create_chunk(rq, upload_data, n);
		}
		netguard_body_done(rq->nc);
		return request_dispatch(rq);
	case RS_SUBMITTED: return create_reply(rq);
	case RS_REPLIED:
	default: *upload_data_size = 0; return MHD_YES;
	}
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	struct request *rq = *req_cls;
	u64 us;

	(void)c;
	(void)toe;
	if (!rq)
		return;
	*req_cls = NULL;
	if (rq->state == RS_SUBMITTED &&
	    !atomic_load_explicit(&rq->ready, memory_order_acquire)) {
		/* The engine still holds pointers into rq: leaking it is the
		 * only safe choice.  api_server_stop prevents this. */
		log_at(LOG_ERROR, "request completed while in the engine",
		       LOG_STR("request_id", rq->request_id));
		return;
	}
	if (rq->ereq.done) /* counted in create_submit */
		atomic_fetch_sub(&s->submitted, 1);
	us = (now_ns() - rq->start_ns) / 1000;
	metrics_observe_request(&s->metrics, rq->route, rq->method, rq->status,
				us);
	log_at(LOG_INFO, "request",
	       LOG_STR("method", metrics_method_name(rq->method)),
	       LOG_STR("route", metrics_route_template(rq->route)),
	       LOG_NUM("status", rq->status), LOG_NUM("duration_us", us),
	       LOG_STR("request_id", rq->request_id),
	       LOG_STR("trace_id", rq->trace_id[0] ? rq->trace_id : NULL),
	       LOG_NUM("events", rq->count));
	release_body(rq);
	netguard_request_done(rq->nc);
	free(rq->events);
	free(rq->results);
	free(rq->payload);
	free(rq->gate_body);
	api_caller_clear(&rq->caller);
	free(rq);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(msg, sizeof(msg), fmt, ap);
#pragma GCC diagnostic pop
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
		msg[--n] = '\0';
	log_at(LOG_WARN, "libmicrohttpd", LOG_STR("detail", msg));
}

/* ---- start and stop --------------------------------------------------- */

static int resolve(const char *host, unsigned short port,
		   struct sockaddr_storage *ss, socklen_t *len,
		   const char **err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	char service[8];
	int r;

	snprintf(service, sizeof(service), "%u", (unsigned)port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r || !res) {
		*err = "cannot resolve the listen address";
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static struct MHD_Daemon *daemon_start(struct api_server *s, unsigned poll_flag,
				       unsigned threads,
				       const struct api_options *o,
				       const struct sockaddr *sa, bool v6)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | poll_flag |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			 (v6 ? MHD_USE_IPv6 : 0);
	/* One thread is the polling thread itself: a pool of 1 (or 0) is
	 * refused with a warning, so the option is left out then. */
	struct MHD_OptionItem pool[] = {
		{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	if (threads <= 1)
		pool[0].option = MHD_OPTION_END;

	return MHD_start_daemon(
		flags, 0, netguard_accept, s->ng, on_access, s,
		/* First, so that every message goes through logger.h. */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_ARRAY, pool,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)(o->connection_timeout_s
				   ? o->connection_timeout_s
				   : API_CONNECTION_TIMEOUT_S_DEFAULT),
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)(o->connections_max ? o->connections_max
					      : API_CONNECTIONS_MAX_DEFAULT),
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, netguard_notify, s->ng,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
		MHD_OPTION_END);
}

int api_server_start(struct api_server **out, struct engine *e,
		     const struct api_options *o, const char **err)
{
	struct sockaddr_storage ss;
	struct api_server *s = NULL;
	const union MHD_DaemonInfo *info;
	const char *dummy;
	unsigned threads;
	socklen_t sslen;
	int ret;

	if (!err)
		err = &dummy;
	*out = NULL;
	if (sodium_init() < 0) {
		*err = "libsodium failed to initialise";
		ret = -EIO;
		goto cleanup;
	}
	ret = resolve(o->host ? o->host : "127.0.0.1", o->port, &ss, &sslen,
		      err);
	if (ret)
		goto cleanup;
	s = calloc(1, sizeof(*s));
	if (!s) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto cleanup;
	}
	s->e = e;
	s->audit = o->audit;
	s->keyring = o->keyring;
	s->origin = o->origin;
	s->authz = o->authz;
	s->data_dir = o->data_dir;
	if (policy_activity_open(s) != 0) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto cleanup;
	}
	s->body_bytes_max = o->body_bytes_max ? o->body_bytes_max
					      : API_BODY_BYTES_MAX_DEFAULT;
	struct netguard_limits nl = o->net;
	nl.idle_timeout_s = o->connection_timeout_s
				    ? o->connection_timeout_s
				    : API_CONNECTION_TIMEOUT_S_DEFAULT;
	nl.connections_max = o->connections_max ? o->connections_max
						: API_CONNECTIONS_MAX_DEFAULT;
	s->ng = netguard_create(&nl);
	if (!s->ng) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto cleanup;
	}
	metrics_init(&s->metrics);
	atomic_init(&s->ready, true);
	atomic_init(&s->stopping, false);
	atomic_init(&s->inflight, 0);
	atomic_init(&s->submitted, 0);
	threads = o->threads;
	if (!threads) {
		/* One core is left to the engine's sequencer and applier:
		 * on 2 cores, 1 HTTP thread serves 8% more single-transfer
		 * requests than 2 (docs/benchmarks.md). */
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 1 ? (unsigned)n - 1 : 1;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		s->d = daemon_start(s, MHD_USE_EPOLL | MHD_USE_TURBO, threads,
				    o, (struct sockaddr *)&ss,
				    ss.ss_family == AF_INET6);
	if (!s->d)
		s->d = daemon_start(s, MHD_USE_POLL, threads, o,
				    (struct sockaddr *)&ss,
				    ss.ss_family == AF_INET6);
	if (!s->d) {
		*err = "cannot start the HTTP server (address in use?)";
		ret = -EADDRINUSE;
		goto cleanup;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : o->port;
	*out = s;
	s = NULL;
	ret = 0;
cleanup:
	if (s && s->activity)
		policy_activity_close(s);
	if (s)
		netguard_destroy(s->ng);
	free(s);
	return ret;
}

int api_server_save_activity(struct api_server *s)
{
	return policy_activity_save(s);
}

unsigned short api_server_port(const struct api_server *s)
{
	return s->port;
}

void api_server_set_ready(struct api_server *s, bool ready)
{
	atomic_store(&s->ready, ready);
}

void api_server_stop(struct api_server *s)
{
	struct timespec ms = {0, 1000000};

	if (!s)
		return;
	/* New requests are answered 503 from here on.  No
	 * MHD_quiesce_daemon: in libmicrohttpd 0.9.75 with a thread pool on
	 * epoll it races the workers removing the listen socket from their
	 * epoll sets, and the loser aborts the process ("Failed to remove
	 * listen FD from epoll set"); MHD_stop_daemon closes the socket. */
	atomic_store(&s->stopping, true);
	/* Mandatory: the engine holds pointers into these requests. */
	while (atomic_load(&s->inflight))
		nanosleep(&ms, NULL);
	/* Courtesy: let resumed requests send their replies. */
	for (int i = 0; i < STOP_REPLY_GRACE_MS && atomic_load(&s->submitted);
	     i++)
		nanosleep(&ms, NULL);
	MHD_stop_daemon(s->d);
	netguard_destroy(s->ng);
	policy_activity_close(s);
	free(s);
}
