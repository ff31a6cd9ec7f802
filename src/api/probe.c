/*
 * probe.c - probe targets, one probe request and the classification of
 * its answer (probe.h).  No thread and no server here: the server's
 * probe thread is in probe_routes.c, the command in cli/cmd_probe.c.
 */
#include "api/probe.h"
#include "engine/logger.h"
#include "core/parse.h"
#include "engine/trace.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "banned.h"

static const char *const verdict_names[PROBE_VERDICT_COUNT] = {
#define X(name, text) [PROBE_##name] = text,
	PROBE_VERDICTS(X)
#undef X
};

const char *probe_verdict_name(enum probe_verdict v)
{
	return (unsigned)v < PROBE_VERDICT_COUNT ? verdict_names[v] : "unknown";
}

/* ---- targets ------------------------------------------------------------- */

static bool all_of(const char *s, size_t n, const char *set, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, s[i]) || s[i] == '\0')
			return false;
	return true;
}

#define LOWER  "abcdefghijklmnopqrstuvwxyz"
#define UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGITS "0123456789"

bool probe_client_valid(const char *client)
{
	const char *slash = strchr(client, '/');
	if (!slash)
		return false;
	size_t pl = (size_t)(slash - client), vl = strlen(slash + 1);
	return all_of(client, pl, LOWER DIGITS "_-",
		      PROBE_PLATFORM_BYTES_MAX - 1) &&
	       all_of(slash + 1, vl, LOWER UPPER DIGITS ".+-",
		      PROBE_VERSION_BYTES_MAX - 1);
}

int probe_target_parse(const char *spec, struct probe_target *out)
{
	struct probe_target t;
	struct http_url u;
	size_t n = strnlen(spec, PROBE_SPEC_BYTES_MAX);

	if (n == PROBE_SPEC_BYTES_MAX)
		return -1;
	const char *colon = strrchr(spec, ':');
	if (!colon || (size_t)(colon - spec) >= sizeof(t.url) ||
	    strlen(colon + 1) >= sizeof(t.client))
		return -1;
	memset(&t, 0, sizeof(t));
	memcpy(t.url, spec, (size_t)(colon - spec));
	memcpy(t.client, colon + 1, strlen(colon + 1));
	if (!probe_client_valid(t.client) || http_url_parse(t.url, &u) != 0)
		return -1;
	size_t k = 0;
	for (; k < n && k + 1 < sizeof(t.name); k++) {
		char c = spec[k];
		t.name[k] = strchr(LOWER UPPER DIGITS "._:/@+-", c) && c != '\0'
				    ? c
				    : '_';
	}
	t.name[k] = '\0';
	*out = t;
	return 0;
}

/* ---- one answer ---------------------------------------------------------- */

/* A copy of text made of [a-z0-9_-] only (else ""), for the report. */
static void copy_word(char *dst, size_t cap, const char *src, size_t n)
{
	dst[0] = '\0';
	if (n == 0 || n >= cap || !all_of(src, n, LOWER DIGITS "_-", cap - 1))
		return;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* "supported; policy-version=3": the verdict and the version. */
static void read_client_policy(const char *v, struct probe_result *r)
{
	size_t n = strcspn(v, "; ");
	copy_word(r->gate, sizeof(r->gate), v, n);
	const char *pv = strstr(v, "policy-version=");
	if (!pv)
		return;
	char digits[24];
	const char *d = pv + strlen("policy-version=");
	size_t dl = strspn(d, DIGITS);
	if (dl == 0 || dl >= sizeof(digits))
		return;
	memcpy(digits, d, dl);
	digits[dl] = '\0';
	u64 ver;
	if (parse_u64(digits, UINT64_MAX, &ver) == 0)
		r->policy_version = ver;
}

/* The gate's refusal body: its "reason" (a word), when it is JSON. */
static void read_reason(const struct probe_answer *a, struct probe_result *r)
{
	if (!a->body || a->body_len == 0)
		return;
	json_t *o = json_loadb(a->body, a->body_len, 0, NULL);
	const char *reason = json_string_value(json_object_get(o, "reason"));
	if (reason)
		copy_word(r->reason, sizeof(r->reason), reason, strlen(reason));
	json_decref(o);
}

void probe_classify(const struct probe_answer *a, struct probe_result *out)
{
	memset(out, 0, sizeof(*out));
	if (a->err != 0 || a->status < 100 || a->status > 599) {
		out->verdict = PROBE_unreachable;
		out->error = a->err ? http_err_name(a->err) : "protocol";
		if (!out->error)
			out->error = "unknown";
		return;
	}
	out->up = true;
	out->status = a->status;
	if (a->marker)
		copy_word(out->problem, sizeof(out->problem), a->marker,
			  strlen(a->marker));
	else if (a->body && a->content_type &&
		 strncasecmp(a->content_type, PROBLEM_CONTENT_TYPE,
			     strlen(PROBLEM_CONTENT_TYPE)) == 0)
		(void)problem_slug_find(a->body, a->body_len, out->problem);
	if (a->client_policy)
		read_client_policy(a->client_policy, out);

	bool tpwallet = out->problem[0] || a->client_policy;
	bool gate_refused =
		strcmp(out->problem, "client-version-blocked") == 0 ||
		strcmp(out->gate, "blocked") == 0;
	bool own_state =
		a->status == 408 || a->status == 429 || a->status >= 500;
	if (gate_refused) {
		out->verdict = PROBE_refused_by_tpwallet;
		read_reason(a, out);
	} else if (tpwallet) {
		out->verdict = own_state && out->problem[0]
				       ? PROBE_refused_by_tpwallet
				       : PROBE_served;
	} else {
		out->verdict = a->status < 300 ? PROBE_served
					       : PROBE_refused_by_gateway;
	}
}

/* ---- sending ------------------------------------------------------------- */

int probe_client_open(struct http_client **out, const char *url,
		      unsigned connect_ms, unsigned total_ms,
		      const char *ca_file)
{
	if (!total_ms)
		total_ms = PROBE_TOTAL_TIMEOUT_MS;
	if (!connect_ms)
		connect_ms = PROBE_CONNECT_TIMEOUT_MS;
	struct http_options o = {
		.connect_timeout_ms =
			connect_ms < total_ms ? connect_ms : total_ms,
		.total_timeout_ms = total_ms,
		.body_bytes_max = PROBE_BODY_BYTES_MAX,
		.head_bytes_max = 16u * 1024u,
		.user_agent = "tpwallet-probe",
		.ca_file = ca_file,
	};
	return http_client_open(out, url, &o);
}

int probe_send(struct http_client *c, const char *path, const char *client,
	       const char *token, const _Atomic bool *cancel,
	       struct probe_result *out)
{
	static const char *const capture[] = {PROBLEM_MARKER_HEADER,
					      "X-Client-Policy"};
	char auth[1100], tp[TRACEPARENT_BYTES + 1];
	struct http_header h[3] = {{"X-Client-Version", client}};
	size_t nh = 1;
	/* A CLIENT span, its context in traceparent (engine/trace.h). */
	struct trace_span span;
	bool traced = trace_client_begin(&span, NULL, "GET", c, tp);
	if (tp[0])
		h[nh++] = (struct http_header){"traceparent", tp};
	if (token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		h[nh++] = (struct http_header){"Authorization", auth};
	}
	struct http_request req = {.method = "GET",
				   .target = path,
				   .headers = h,
				   .nheaders = nh,
				   .cancel = cancel,
				   .capture = capture,
				   .ncapture = 2};
	struct http_response r = {0};
	int ret = http_client_do(c, &req, &r);
	if (traced)
		trace_client_end(&span, ret, r.status);
	if (ret == -HTTP_outbound_refused)
		log_at(LOG_WARN, "probe refused by outbound_allow",
		       LOG_STR("error", http_err_name(ret)),
		       LOG_STR("detail", r.refused));
	struct probe_answer a = {
		.err = ret,
		.status = r.status,
		.marker = r.captured_seen[0] ? r.captured[0] : NULL,
		.client_policy = r.captured_seen[1] ? r.captured[1] : NULL,
		.content_type = r.content_type,
		.body = r.body,
		.body_len = r.body_len,
	};
	probe_classify(&a, out);
	http_response_clear(&r);
	explicit_bzero(auth, sizeof(auth));
	return ret;
}

/* ,"key":"value" or ,"key":null for "" and NULL. */
static void text_member(struct wbuf *b, const char *key, const char *val)
{
	wbuf_puts(b, key);
	if (val && *val)
		wbuf_put_json_str(b, val, strlen(val));
	else
		wbuf_puts(b, "null");
}

void probe_result_json(struct wbuf *b, const struct probe_result *r)
{
	wbuf_puts(b, "\"verdict\":\"");
	wbuf_puts(b, probe_verdict_name((enum probe_verdict)r->verdict));
	wbuf_puts(b, r->up ? "\",\"up\":true,\"status\":"
			   : "\",\"up\":false,\"status\":null");
	if (r->up)
		wbuf_put_u64(b, (u64)r->status);
	text_member(b, ",\"problem\":", r->problem);
	text_member(b, ",\"gate\":", r->gate);
	wbuf_puts(b, ",\"policy_version\":");
	if (r->policy_version)
		wbuf_put_u64(b, r->policy_version);
	else
		wbuf_puts(b, "null");
	text_member(b, ",\"reason\":", r->reason);
	text_member(b, ",\"error\":", r->error);
}
