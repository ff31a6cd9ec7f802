/*
 * witness.c - send checkpoints to witnesses (witness.h): the spec parser,
 * the POST of one add-checkpoint request over net/http.h, and the
 * reading of a 409's size.
 */
#include "engine/witness.h"
#include "engine/trace.h"
#include "core/parse.h"
#include "crypto/cosig.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

static int fail(char *err, size_t cap, const char *why)
{
	snprintf(err, cap, "%s", why);
	return -EINVAL;
}

static const char *const refusal_names[WITNESS_REFUSAL_COUNT] = {
#define WITNESS_REFUSAL_NAME_(name) #name,
	WITNESS_REFUSALS(WITNESS_REFUSAL_NAME_)
#undef WITNESS_REFUSAL_NAME_
};

const char *witness_refusal_name(unsigned r)
{
	return refusal_names[r < WITNESS_REFUSAL_COUNT
				     ? r
				     : WITNESS_REFUSAL_other_status];
}

enum witness_refusal witness_refusal_of_status(unsigned status)
{
	switch (status) {
	case 400:
	case 413: return WITNESS_REFUSAL_bad_request;
	case 403: return WITNESS_REFUSAL_not_signed_by_log;
	case 404: return WITNESS_REFUSAL_unknown_log;
	case 409: return WITNESS_REFUSAL_size_conflict;
	case 422: return WITNESS_REFUSAL_bad_proof;
	default: return WITNESS_REFUSAL_other_status;
	}
}

int witness_peer_parse(const char *spec, struct witness_peer *out, char *err,
		       size_t err_size)
{
	struct http_url url;
	const char *sp;

	memset(out, 0, sizeof(*out));
	if (strlen(spec) >= WITNESS_SPEC_BYTES_MAX)
		return fail(err, err_size, "witness spec too long");
	sp = strchr(spec, ' ');
	if (!sp)
		return fail(err, err_size,
			    "expected 'http[s]://HOST[:PORT] KEY' (a space, "
			    "then the witness's cosigner key)");
	memcpy(out->url, spec, (size_t)(sp - spec));
	int r = http_url_parse(out->url, &url);
	if (r == -HTTP_unsupported_scheme)
		return fail(err, err_size,
			    "witness URL must start http:// or https://");
	if (r < 0)
		return fail(err, err_size,
			    "witness URL must be http[s]://HOST[:PORT][/PATH]");
	if (sp[-1] == '/')
		return fail(err, err_size, "witness URL ends in '/'");

	/* NAME+<8 hex>+<base64(0x04 || key)> */
	const char *key = sp + 1;
	const char *p1 = strchr(key, '+');
	const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	if (!p1 || !p2 || p2 - p1 != 9 || p1 == key ||
	    (size_t)(p1 - key) > NOTE_NAME_BYTES_MAX ||
	    !note_name_valid(key, (size_t)(p1 - key)))
		return fail(err, err_size,
			    "witness key must be NAME+<8 hex>+<base64>");
	u8 raw[33];
	if (parse_base64(p2 + 1, strlen(p2 + 1), raw, sizeof(raw)) != 33 ||
	    raw[0] != COSIG_ALG_ED25519)
		return fail(err, err_size,
			    "witness key is not a cosigner (0x04) Ed25519 key");
	memcpy(out->key.name, key, (size_t)(p1 - key));
	out->key.name_len = (size_t)(p1 - key);
	memcpy(out->key.public_key, raw + 1, 32);
	char hex[9];
	snprintf(hex, sizeof(hex), "%08x",
		 (unsigned)cosig_key_id(out->key.name, out->key.name_len,
					out->key.public_key));
	if (memcmp(hex, p1 + 1, 8) != 0)
		return fail(err, err_size,
			    "witness key id does not match its key");
	return 0;
}

int witness_connect(const struct witness_peer *w, struct http_client **out)
{
	const struct http_options opt = {
		.connect_timeout_ms = WITNESS_TIMEOUT_MS,
		.total_timeout_ms = WITNESS_TIMEOUT_MS,
		.body_bytes_max = WITNESS_RESPONSE_BYTES_MAX,
		.user_agent = "tpwallet"};
	return http_client_open(out, w->url, &opt);
}

int witness_post(struct http_client *c, const char *body, size_t len,
		 const _Atomic bool *cancel, struct http_response *out)
{
	char tp[TRACEPARENT_BYTES + 1];
	struct http_header h[2] = {{"Content-Type", "text/plain"}};
	/* A CLIENT span, its context in traceparent (engine/trace.h). */
	struct trace_span span;
	bool traced = trace_client_begin(&span, NULL, "POST", c, tp);
	if (tp[0])
		h[1] = (struct http_header){"traceparent", tp};
	const struct http_request req = {.method = "POST",
					 .target = "/add-checkpoint",
					 .headers = h,
					 .nheaders = tp[0] ? 2 : 1,
					 .body = body,
					 .body_len = len,
					 .has_body = true,
					 .cancel = cancel};
	int ret = http_client_do(c, &req, out);
	if (traced)
		trace_client_end(&span, ret, out->status);
	return ret;
}

int witness_parse_size(const char *body, size_t len, u64 *out)
{
	if (len > 0 && body[len - 1] == '\n')
		len--;
	return parse_u64_n(body, len, UINT64_MAX, out) == 0 ? 0 : -EINVAL;
}
