/*
 * audit_routes.c - the audit log's routes (docs/audit.md): the tree head,
 * entries, inclusion and consistency proofs, signed checkpoints, the log's
 * verifier keys, receipts of records (GET /v1/accounts/{id}/receipt,
 * /v1/transfers/{id}/receipt) and the server's JWKS.  The rows are in
 * routes.h; request_dispatch answers 503 before these run when the log is
 * missing or unhealthy (RF_AUDIT).
 */
#include "api/codec.h"
#include "api/internal.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/pstate.h"
#include "crypto/keyring.h"
#include "crypto/note.h"
#include "engine/audit.h"
#include "log/archive.h"
#include "log/journal.h"
#include "log/entry_view.h"
#include "log/leaf.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

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
	wbuf_put_u128_str(b, index);
	wbuf_puts(b, ",\"size\":");
	wbuf_put_u128_str(b, size);
	wbuf_puts(b, ",\"leaf_hash\":");
	put_b64(b, leaf, MERKLE_HASH_BYTES);
	wbuf_puts(b, ",\"root\":");
	put_b64(b, root, MERKLE_HASH_BYTES);
	put_proof(b, proof, np);
}

/* GET /v1/audit/head: the tree's size and root (unsigned until the
 * server key exists; then /v1/audit/checkpoint serves a signed note). */
/* A root, proof or tile the tree holds could not be read from its tiles
 * (a tile damaged on disk, an I/O error): 500, and the log says so. */
static enum MHD_Result tiles_failed(struct request *rq, int code)
{
	log_at(LOG_ERROR,
	       "cannot read the audit tree's tiles (docs/operations.md, "
	       "Recovery)",
	       LOG_STR("error", code == -EBADMSG ? "a tile does not hash to "
						   "its parent"
						 : "read failed"),
	       LOG_NUM("code", (u64)(-(int64_t)code)));
	return api_reply_problem(rq, PROBLEM_internal_error,
				 code == -EBADMSG
					 ? "an audit tile is damaged on disk"
					 : "the audit tiles cannot be read",
				 NULL, NULL);
}

enum MHD_Result audit_route_head(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX);
	struct audit *a = rq->srv->audit;
	u8 root[MERKLE_HASH_BYTES];
	u64 size = audit_size(a);

	int ret = audit_root(a, size, root);
	if (ret != 0)
		return tiles_failed(rq, ret);
	wbuf_puts(&b, "{\"size\":");
	wbuf_put_u128_str(&b, size);
	wbuf_puts(&b, ",\"root\":");
	put_b64(&b, root, sizeof(root));
	wbuf_puts(&b, "}");
	return api_reply_json(rq, 200, &b);
}

/* The query of GET /v1/audit/entries/{i}: view=decoded, or no view
 * (other names are ignored, as they always were).  Returns 1 decoded, 0
 * raw, -1 a view other than "decoded". */
static int entry_view_wanted(const char *q, size_t len)
{
	const char *p = q, *end = q + len;
	int want = 0;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		size_t n = (size_t)((amp ? amp : end) - p);
		if (n >= 5 && memcmp(p, "view=", 5) == 0) {
			if (n != 12 || memcmp(p + 5, "decoded", 7) != 0)
				return -1;
			want = 1;
		} else if (n == 4 && memcmp(p, "view", 4) == 0) {
			return -1;
		}
		p += n + 1;
	}
	return want;
}

/* The policy version a policy_set at timestamp made, or the id of the
 * override opened at it (versions and overrides are in journal order,
 * so in timestamp order): 0 when the command made none.  Under the read
 * lock. */
static u64 outcome_at(const struct pstate *ps, bool set, u64 ts)
{
	u64 lo = 0,
	    hi = set ? pstate_version_count(ps) : pstate_override_count(ps);

	while (lo < hi) {
		u64 mid = lo + (hi - lo) / 2, at;
		if (set) {
			struct pstate_version pv;
			at = pstate_version_get(ps, mid + 1, &pv) ? pv.timestamp
								  : 0;
		} else {
			struct pstate_override_info oi;
			pstate_override_at(ps, mid, &oi);
			at = oi.timestamp;
		}
		if (at == ts)
			return mid + 1;
		if (at < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* The "decoded" member (docs/audit.md, Decoded entries).  The author's
 * name is copied out of the auth state under the read lock. */
static void put_decoded(struct request *rq, struct wbuf *b, const u8 *bytes,
			size_t len, bool damaged)
{
	static _Thread_local struct entry_view v;
	struct auth_principal_info p;
	bool named = false;

	wbuf_puts(b, ",\"decoded\":{");
	if (entry_view_decode(bytes, len, &v) != 0 || damaged) {
		wbuf_puts(b, "\"error\":");
		const char *why = damaged ? "the entry's bytes on disk do not "
					    "match its leaf hash: it was "
					    "changed after it was logged"
					  : v.error;
		wbuf_put_json_str(b, why, strlen(why));
		wbuf_putc(b, '}');
		return;
	}
	bool set = v.command && strcmp(v.command, "policy_set") == 0;
	bool open = v.command && (strcmp(v.command, "policy_override") == 0 ||
				  strcmp(v.command, "policy_override_2") == 0);
	u64 id = 0, oid = entry_view_override_id(&v);
	struct pstate_override_cmd oc;
	bool known = false;
	if ((v.has_author && !entry_view_is_admin(v.author)) || set || open ||
	    oid) {
		engine_read_begin(rq->srv->e);
		const struct pstate *ps = engine_pstate(rq->srv->e);
		if (v.has_author && !entry_view_is_admin(v.author))
			named = auth_principal_get(engine_auth(rq->srv->e),
						   v.author, &p);
		if (set || open)
			id = outcome_at(ps, set, v.timestamp_ns);
		if (oid && oid <= pstate_override_count(ps)) {
			struct pstate_override_info oi;
			pstate_override_at(ps, oid - 1, &oi);
			oc = *oi.cmd;
			known = true;
		}
		engine_read_end(rq->srv->e);
	}
	entry_view_set_outcome(&v, id);
	if (known)
		entry_view_set_override(&v, oc.platform, oc.range);
	codec_write_entry_view(b, &v, named ? p.name : NULL);
	wbuf_putc(b, '}');
}

/* GET /v1/audit/entries/{index}: the entry's bytes (what the proofs
 * cover); with ?view=decoded also the entry decoded, and a damaged entry
 * then answers its bytes with "decoded": {"error": ...}. */
enum MHD_Result audit_route_entry(struct request *rq)
{
	struct audit *a = rq->srv->audit;
	struct audit_leaf leaf;
	struct wbuf b = WBUF_INIT(0);
	u64 index = (u64)rq->path_id;
	u8 *bytes = NULL;
	size_t len = 0;
	enum MHD_Result ret;

	int view = entry_view_wanted(rq->query, rq->query_len);
	if (view < 0)
		return api_reply_problem(rq, PROBLEM_invalid_query,
					 "view takes one value: decoded",
					 "view", NULL);
	if (audit_leaf(a, index, &leaf) != 0)
		return api_reply_problem(rq, PROBLEM_audit_out_of_range,
					 "no entry at this index yet", "index",
					 NULL);
	int r = view ? audit_entry_read(a, index, &bytes, &len)
		     : audit_entry(a, index, &bytes, &len);
	if (r == -EBADMSG && !bytes)
		return api_reply_problem(rq, PROBLEM_audit_entry_changed, NULL,
					 NULL, NULL);
	if (r == -ENOENT)
		return api_reply_problem(rq, PROBLEM_audit_entry_archived, NULL,
					 NULL, NULL);
	if (r != 0 && r != -EBADMSG) {
		free(bytes);
		return api_reply_problem(rq, PROBLEM_internal_error, NULL, NULL,
					 NULL);
	}
	wbuf_init(&b, len * 4 / 3 + 512 + (view ? 8192 : 0));
	wbuf_puts(&b, "{\"index\":");
	wbuf_put_u128_str(&b, index);
	wbuf_puts(&b, ",\"seq\":");
	wbuf_put_u128_str(&b, leaf.seq);
	wbuf_puts(&b, ",\"type\":\"");
	wbuf_puts(&b, entry_view_type_name(leaf.type));
	wbuf_puts(&b, "\",\"timestamp\":");
	wbuf_put_u128_str(&b, leaf.timestamp);
	wbuf_puts(&b, ",\"leaf_hash\":");
	put_b64(&b, leaf.hash, sizeof(leaf.hash));
	wbuf_puts(&b, ",\"entry\":");
	put_b64(&b, bytes, len);
	if (view)
		put_decoded(rq, &b, bytes, len, r == -EBADMSG);
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

enum MHD_Result audit_route_inclusion(struct request *rq)
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
	if (v[1] == 0 || v[0] >= v[1] || v[1] > audit_size(a))
		return api_reply_problem(
			rq, PROBLEM_audit_out_of_range,
			"need 0 <= index < size <= the log's size", NULL, NULL);
	int ret = audit_leaf(a, v[0], &leaf);
	if (ret == 0)
		ret = audit_root(a, v[1], root);
	if (ret == 0)
		ret = audit_inclusion_proof(a, v[0], v[1], proof, &np);
	if (ret != 0)
		return tiles_failed(rq, ret);
	wbuf_putc(&b, '{');
	put_inclusion(&b, v[0], v[1], leaf.hash, root, proof, np);
	wbuf_putc(&b, '}');
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result audit_route_consistency(struct request *rq)
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
	if (v[0] == 0 || v[0] > v[1] || v[1] > audit_size(a))
		return api_reply_problem(
			rq, PROBLEM_audit_out_of_range,
			"need 0 < from <= to <= the log's size", NULL, NULL);
	int ret = audit_root(a, v[0], from_root);
	if (ret == 0)
		ret = audit_root(a, v[1], to_root);
	if (ret == 0)
		ret = audit_consistency_proof(a, v[0], v[1], proof, &np);
	if (ret != 0)
		return tiles_failed(rq, ret);
	wbuf_puts(&b, "{\"from\":");
	wbuf_put_u128_str(&b, v[0]);
	wbuf_puts(&b, ",\"to\":");
	wbuf_put_u128_str(&b, v[1]);
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
enum MHD_Result audit_route_checkpoint(struct request *rq)
{
	struct wbuf b = WBUF_INIT(NOTE_BYTES_MAX);

	if (rq->method == METHOD_POST) {
		/* Asynchronous: no HTTP thread waits for a signature. */
		u64 size = audit_size(rq->srv->audit);
		audit_request_checkpoint(rq->srv->audit);
		wbuf_puts(&b, "{\"requested_size\":");
		wbuf_put_u128_str(&b, size);
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

/* GET /v1/audit/tile/<L>/<N>[.p/<W>]: a C2SP tlog-tiles hash tile of
 * the tree as hashed now (audit_size), its hashes back to back.  A full
 * tile never changes, and a partial one of width W neither (a longer one
 * has another URL), so both may be kept; a full tile is immutable. */
enum MHD_Result audit_route_tile(struct request *rq)
{
	unsigned level, width;
	u64 index;

	if (rq->bad_id ||
	    tilestore_path_parse(rq->text_id, &level, &index, &width) != 0)
		return api_reply_problem(
			rq, PROBLEM_invalid_id,
			"a tile path is <L>/<N>[.p/<W>] as C2SP tlog-tiles "
			"writes it (N in x-prefixed groups of three digits)",
			NULL, NULL);
	unsigned have = audit_tile_width(rq->srv->audit, level, index);
	unsigned want = width ? width : TILESTORE_WIDTH;
	if (have < want)
		return api_reply_problem(
			rq, PROBLEM_not_found,
			width ? "the tree has fewer hashes in this tile"
			      : "this tile is not full yet: ask for the "
				"partial tile (.p/<W>) the checkpoint names",
			NULL, NULL);
	struct wbuf b = WBUF_INIT((size_t)TILESTORE_WIDTH * MERKLE_HASH_BYTES);
	u8(*hashes)[MERKLE_HASH_BYTES] =
		malloc((size_t)want * MERKLE_HASH_BYTES);
	if (!hashes)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	int ret = audit_tile(rq->srv->audit, level, index, want, hashes);
	if (ret != 0) {
		free(hashes);
		return tiles_failed(rq, ret);
	}
	wbuf_put(&b, hashes, (size_t)want * MERKLE_HASH_BYTES);
	free(hashes);
	rq->cache_control = width ? "private, max-age=3600"
				  : "private, max-age=31536000, immutable";
	return api_reply(rq, 200, &b, "application/octet-stream", NULL);
}

/* GET /.well-known/jwks.json: the public keys that verify what the server
 * signs (current and still-verifying previous ones). */
enum MHD_Result audit_route_jwks(struct request *rq)
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

/* One key as a note verifier key line, "<origin>+<8 hex>+<base64>\n". */
static void put_verifier_line(struct wbuf *b, const char *origin,
			      const struct keyring_key *k)
{
	struct note_verifier v = {0};
	char line[NOTE_VERIFIER_KEY_BYTES_MAX + 1];
	size_t len;

	snprintf(v.name, sizeof(v.name), "%s", origin);
	v.name_len = strlen(v.name);
	memcpy(v.public_key, k->pub, sizeof(v.public_key));
	v.key_id = note_key_id(v.name, v.name_len, v.public_key);
	if (note_verifier_format(&v, line, sizeof(line), &len) != 0)
		return;
	wbuf_put(b, line, len);
	wbuf_putc(b, '\n');
}

/* GET /v1/audit/key, open to anyone (docs/authz.md): the note verifier
 * key strings of the log, what `tpwallet audit verify-*` and any C2SP
 * signed-note verifier take, one line per server key that still
 * verifies: the current signing key first, then the others newest first
 * (keyring order: activate_at, created_at, descending).  Public data
 * only, read from a copy of the keyring; no query, no body. */
enum MHD_Result audit_route_key(struct request *rq)
{
	struct wbuf b = WBUF_INIT(SMALL_REPLY_BYTES_MAX * 4);
	struct keyring *kr = rq->srv->keyring;
	const char *origin = rq->srv->origin;
	int64_t now = (int64_t)time(NULL);
	struct keyring_key cur;

	if (!kr || !origin)
		return api_reply_problem(rq, PROBLEM_audit_unavailable,
					 "no signing key loaded", NULL, NULL);
	static _Thread_local struct keyring_key keys[KEYRING_KEYS_MAX];
	size_t nkeys = keyring_keys_copy(kr, keys, KEYRING_KEYS_MAX);
	bool signing = keyring_current_copy(kr, now, &cur) == 0;
	if (signing)
		put_verifier_line(&b, origin, &cur);
	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].expires_at <= now ||
		    (signing && strcmp(keys[i].kid, cur.kid) == 0))
			continue;
		put_verifier_line(&b, origin, &keys[i]);
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
	wbuf_put_u128_str(b, k);
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
static enum MHD_Result get_receipt(struct request *rq, bool transfer)
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

	if (transfer) {
		struct transfer t;
		enum pending_status ps;
		r = engine_lookup_transfer(rq->srv->e, rq->path_id, &t, &ps);
		ts = t.timestamp;
	} else {
		struct account acc;
		r = ledger_lookup_account(engine_read_begin(rq->srv->e),
					  rq->path_id, &acc);
		engine_read_end(rq->srv->e);
		ts = acc.timestamp;
	}
	if (r == -EIO)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "the store could not be read", NULL,
					 NULL);
	if (r != 0)
		return api_reply_problem(rq,
					 transfer ? PROBLEM_transfer_not_found
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
		ret = api_reply_problem(
			rq,
			r == -EBADMSG  ? PROBLEM_audit_entry_changed
			: r == -ENOENT ? PROBLEM_audit_entry_archived
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

enum MHD_Result audit_route_account_receipt(struct request *rq)
{
	return get_receipt(rq, false);
}

enum MHD_Result audit_route_transfer_receipt(struct request *rq)
{
	return get_receipt(rq, true);
}

/* ---- metrics -------------------------------------------------------------
 */

/* A label value: the text with \\, " and newline escaped (Prometheus
 * text format). */
static void put_label(struct wbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			wbuf_putc(b, '\\');
		if (*s == '\n') {
			wbuf_puts(b, "\\n");
			continue;
		}
		wbuf_putc(b, *s);
	}
}

static void put_witness_series(struct wbuf *b, const char *series,
			       const char *name, u64 value)
{
	wbuf_puts(b, series);
	wbuf_puts(b, "{witness=\"");
	put_label(b, name);
	wbuf_puts(b, "\"} ");
	wbuf_put_u64(b, value);
	wbuf_putc(b, '\n');
}

/* Journal retention (docs/operations.md): segments in each place, those
 * moved since start, the oldest seq DATA/journal still holds. */
static void journal_metrics(const struct audit *a, struct wbuf *b)
{
	struct journal_archive_stats js;

	if (audit_journal_stats(a, &js) != 0)
		return;
	wbuf_puts(b, "# HELP tpwallet_journal_segments Journal segment files "
		     "in the data directory and in the archive directory "
		     "(journal_archive_dir).\n"
		     "# TYPE tpwallet_journal_segments gauge\n"
		     "tpwallet_journal_segments{place=\"data\"} ");
	wbuf_put_u64(b, js.data_segments);
	if (audit_archive_dir(a) && js.archive_readable) {
		wbuf_puts(b, "\ntpwallet_journal_segments{place=\"archive\"} ");
		wbuf_put_u64(b, js.archive_segments);
	}
	wbuf_puts(b, "\n# HELP tpwallet_journal_archived_segments_total "
		     "Journal segments moved to the archive directory since "
		     "start.\n"
		     "# TYPE tpwallet_journal_archived_segments_total counter\n"
		     "tpwallet_journal_archived_segments_total ");
	wbuf_put_u64(b, audit_archived_total(a));
	wbuf_puts(b, "\n# HELP tpwallet_journal_oldest_retained_seq The first "
		     "seq of the oldest segment in the data directory.\n"
		     "# TYPE tpwallet_journal_oldest_retained_seq gauge\n"
		     "tpwallet_journal_oldest_retained_seq ");
	wbuf_put_u64(b, js.oldest_data_seq);
	wbuf_putc(b, '\n');
}

/* The keys' verifying windows (one series per live key of the keyring:
 * at most KEYRING_KEYS_MAX) and the witnesses (at most WITNESSES_MAX,
 * each with the bounded set of refusal reasons). */
void audit_metrics(struct api_server *s, struct wbuf *b)
{
	static _Thread_local struct keyring_key keys[KEYRING_KEYS_MAX];
	static _Thread_local struct audit_witness_status ws[WITNESSES_MAX];
	int64_t now = (int64_t)time(NULL);

	if (s->keyring) {
		size_t n =
			keyring_keys_copy(s->keyring, keys, KEYRING_KEYS_MAX);
		wbuf_puts(b,
			  "# HELP tpwallet_key_verify_until_timestamp_seconds "
			  "When each live server key stops verifying "
			  "(+Inf: the current key, until a rotation).\n"
			  "# TYPE tpwallet_key_verify_until_timestamp_seconds "
			  "gauge\n");
		for (size_t i = 0; i < n; i++) {
			if (keys[i].expires_at <= now)
				continue;
			wbuf_puts(b, "tpwallet_key_verify_until_timestamp_"
				     "seconds{purpose=\"signing\",version=\"");
			wbuf_puts(b, keys[i].kid); /* base64url: no escape */
			wbuf_puts(b, "\"} ");
			if (keys[i].expires_at == KEYRING_NEVER)
				wbuf_puts(b, "+Inf");
			else
				wbuf_put_u64(b, (u64)keys[i].expires_at);
			wbuf_putc(b, '\n');
		}
	}
	if (s->audit) {
		struct tilestore_stats ts;
		audit_tile_stats(s->audit, &ts);
		wbuf_puts(b, "# HELP tpwallet_audit_tile_cache_hits_total "
			     "Audit tree tiles found in the cache.\n"
			     "# TYPE tpwallet_audit_tile_cache_hits_total "
			     "counter\ntpwallet_audit_tile_cache_hits_total ");
		wbuf_put_u64(b, ts.hits);
		wbuf_puts(b,
			  "\n# HELP tpwallet_audit_tile_cache_misses_total "
			  "Audit tree tiles read from disk (and checked "
			  "against their parent hash).\n"
			  "# TYPE tpwallet_audit_tile_cache_misses_total "
			  "counter\ntpwallet_audit_tile_cache_misses_total ");
		wbuf_put_u64(b, ts.misses);
		wbuf_puts(b, "\n# HELP tpwallet_audit_tile_cache_bytes Memory "
			     "of the audit tile cache (audit_cache_bytes).\n"
			     "# TYPE tpwallet_audit_tile_cache_bytes gauge\n"
			     "tpwallet_audit_tile_cache_bytes ");
		wbuf_put_u64(b, ts.cache_bytes);
		wbuf_putc(b, '\n');
		journal_metrics(s->audit, b);
	}
	size_t nw = audit_witnesses(s->audit, ws, WITNESSES_MAX);
	if (nw == 0)
		return;
	wbuf_puts(b, "# HELP tpwallet_witness_up 1 when the witness cosigned "
		     "the last checkpoint sent to it, 0 when it did not.\n"
		     "# TYPE tpwallet_witness_up gauge\n");
	for (size_t i = 0; i < nw; i++)
		if (ws[i].up >= 0)
			put_witness_series(b, "tpwallet_witness_up", ws[i].name,
					   (u64)ws[i].up);
	wbuf_puts(b, "# HELP tpwallet_witness_refusals_total Checkpoints a "
		     "witness did not cosign, by reason.\n"
		     "# TYPE tpwallet_witness_refusals_total counter\n");
	for (size_t i = 0; i < nw; i++)
		for (unsigned r = 0; r < WITNESS_REFUSAL_COUNT; r++) {
			wbuf_puts(b,
				  "tpwallet_witness_refusals_total{witness=\"");
			put_label(b, ws[i].name);
			wbuf_puts(b, "\",reason=\"");
			wbuf_puts(b, witness_refusal_name(r));
			wbuf_puts(b, "\"} ");
			wbuf_put_u64(b, ws[i].refusals[r]);
			wbuf_putc(b, '\n');
		}
	wbuf_puts(b, "# HELP tpwallet_witness_last_cosigned_timestamp_seconds "
		     "When the witness last cosigned a checkpoint (0: not "
		     "since the server started).\n"
		     "# TYPE tpwallet_witness_last_cosigned_timestamp_seconds "
		     "gauge\n");
	for (size_t i = 0; i < nw; i++)
		put_witness_series(
			b, "tpwallet_witness_last_cosigned_timestamp_seconds",
			ws[i].name, (u64)ws[i].last_cosigned_s);
}
