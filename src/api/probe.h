/*
 * probe.h - probes from the outside: one request as a given client
 * (X-Client-Version) to a URL, usually the public one behind a gateway,
 * and what its answer says about who decided (docs/operations.md,
 * "Probes").
 *
 * The classification is the contract: an answer is
 *   - unreachable: no complete HTTP answer within the deadlines (nothing
 *     listens, nothing answers, a slow answer, bytes that are not HTTP);
 *   - refused_by_tpwallet: tpwallet's client-version gate refused it
 *     (`client-version-blocked`, or X-Client-Policy says blocked), or
 *     tpwallet turned it away for its own state (408, 429, 5xx with the
 *     refusal marker of api/problem.h);
 *   - served: tpwallet answered and its gate let the client through
 *     (any other answer that carries tpwallet's marker or X-Client-Policy;
 *     a 401 for a probe without a credential is served: the gate runs
 *     before authentication), or a 1xx-2xx answer with neither;
 *   - refused_by_gateway: a 3xx-5xx answer with no tpwallet marker, no
 *     tpwallet problem type and no X-Client-Policy: something in front
 *     of tpwallet answered.
 *
 * Used by `tpwallet probe` (cli/cmd_probe.c) and by the server's probe
 * thread (`serve --probe`): one thread runs every target in turn each
 * interval, each request under connect and total deadlines and a body
 * cap, and the stop flag cancels a request within HTTP_CANCEL_POLL_MS.
 * Results are kept under the probes' own lock (a leaf) and read by
 * /metrics and GET /v1/probes.
 */
#ifndef TPW_API_PROBE_H
#define TPW_API_PROBE_H

#include "api/problem.h"
#include "api/wbuf.h"
#include "core/types.h"
#include "net/http.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define PROBE_TARGETS_MAX	 16u
#define PROBE_INTERVAL_S_DEFAULT 30u
#define PROBE_INTERVAL_S_MIN	 1u
#define PROBE_INTERVAL_S_MAX	 86400u
#define PROBE_CONNECT_TIMEOUT_MS 2000u
#define PROBE_TOTAL_TIMEOUT_MS	 5000u
#define PROBE_BODY_BYTES_MAX	 ((size_t)64 << 10)
#define PROBE_PATH_DEFAULT	 "/v1/principals"
/* "URL:platform/version": the whole spec, at most. */
#define PROBE_SPEC_BYTES_MAX	 1024u
#define PROBE_PLATFORM_BYTES_MAX 33u /* policy names: 32 bytes */
#define PROBE_VERSION_BYTES_MAX	 65u
#define PROBE_CLIENT_BYTES_MAX                                                 \
	(PROBE_PLATFORM_BYTES_MAX + PROBE_VERSION_BYTES_MAX)
/* The metric label: the spec, sanitised, cut to this many bytes - 1. */
#define PROBE_NAME_BYTES_MAX   97u
#define PROBE_GATE_BYTES_MAX   16u
#define PROBE_REASON_BYTES_MAX 48u

#define PROBE_VERDICTS(X)                                                      \
	X(served, "served")                                                    \
	X(refused_by_gateway, "refused_by_gateway")                            \
	X(refused_by_tpwallet, "refused_by_tpwallet")                          \
	X(unreachable, "unreachable")

enum probe_verdict {
#define X(name, text) PROBE_##name,
	PROBE_VERDICTS(X)
#undef X
		PROBE_VERDICT_COUNT
};

/* "served"...; "unknown" outside the enum. */
const char *probe_verdict_name(enum probe_verdict v);

/* One target of `serve --probe`: "URL:platform/version". */
struct probe_target {
	char url[HTTP_URL_BYTES_MAX];
	char client[PROBE_CLIENT_BYTES_MAX]; /* "platform/version" */
	char name[PROBE_NAME_BYTES_MAX];     /* the metric label value */
};

/*
 * Parse "URL:platform/version" (the client after the last ':'): URL as
 * http_url_parse takes it, platform 1..32 of [a-z0-9_-], version 1..64
 * of [0-9A-Za-z.+-].  name: the spec with every byte outside
 * [A-Za-z0-9._:/@+-] made '_', cut to PROBE_NAME_BYTES_MAX - 1 bytes.
 * Returns 0 or -1 (out untouched).  Fuzzed by tests/fuzz/fuzz_probe.c.
 */
int probe_target_parse(const char *spec, struct probe_target *out);

/* A "platform/version" as the parser above takes it: true or false. */
bool probe_client_valid(const char *client);

/* What one answer showed, as the classifier reads it. */
struct probe_answer {
	int err;		   /* 0, or -HTTP_x: no complete answer */
	int status;		   /* when err is 0 */
	const char *marker;	   /* Tpwallet-Problem, NULL when absent */
	const char *client_policy; /* X-Client-Policy, NULL when absent */
	const char *content_type;  /* "" when absent */
	const char *body;	   /* may be NULL */
	size_t body_len;
};

struct probe_result {
	u8 verdict; /* enum probe_verdict */
	bool up;    /* an HTTP answer came back */
	int status; /* 0 when unreachable */
	/* tpwallet's problem slug (marker, else the body's type), or "". */
	char problem[PROBLEM_SLUG_BYTES_MAX];
	/* tpwallet's gate: the X-Client-Policy verdict, or "". */
	char gate[PROBE_GATE_BYTES_MAX];
	u64 policy_version; /* from X-Client-Policy, 0 when absent */
	/* The gate's reason when it refused ("below_min_supported"), or "". */
	char reason[PROBE_REASON_BYTES_MAX];
	const char *error; /* http_err_name when unreachable, else NULL */
};

/* Classify one answer (see the top of this file). */
void probe_classify(const struct probe_answer *a, struct probe_result *out);

/*
 * Open a client for url with the probe's deadlines and body cap
 * (connect_ms and total_ms: 0 for the defaults above; ca_file NULL: the
 * system's CAs).  0 or -HTTP_x.
 */
int probe_client_open(struct http_client **out, const char *url,
		      unsigned connect_ms, unsigned total_ms,
		      const char *ca_file);

/*
 * Send GET path with X-Client-Version: client (and Authorization:
 * Bearer token when token is not NULL) on c and classify the answer
 * into *out.  cancel may be NULL.  Returns the http_client_do code (also
 * recorded as the result's error when negative).
 */
int probe_send(struct http_client *c, const char *path, const char *client,
	       const char *token, const _Atomic bool *cancel,
	       struct probe_result *out);

/* The result as the members of a JSON object (no braces), for
 * GET /v1/probes and `tpwallet probe --json`. */
void probe_result_json(struct wbuf *b, const struct probe_result *r);

#endif
