/*
 * acq_proto.h - one acquirer wire protocol behind four functions
 * (docs/acquirer.md, "The protocol"): build and send a charge, send a
 * query by idempotency key, and read an answer into a verdict.  The
 * connector (acquirer.c) knows nothing of the bytes on the wire; a
 * second protocol is one more file with these functions.  The reading
 * of an answer is pure (no I/O), so the fuzzer (tests/fuzz/fuzz_acq_reply.c)
 * drives it with any bytes.
 */
#ifndef TPW_ENGINE_ACQ_PROTO_H
#define TPW_ENGINE_ACQ_PROTO_H

#include "core/types.h"
#include "engine/acquirer.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct http_client;

/* What one answer (or its absence) means. */
struct acq_answer {
	enum acq_outcome outcome;
	char acquirer_ref[64];		 /* approved, declined */
	char minimum[ACQ_VERSION_BYTES]; /* version_refused */
	char detail[160];		 /* refused, bad_answer: why */
};

/* What was asked, for reading the answer: the key, the amount and the
 * currency the answer must repeat. */
struct acq_asked {
	const char *key;
	u128 amount;
	const char *currency;
	bool query; /* a 404 is "unknown", not "refused" */
};

/*
 * Reads one exchange: http_err (0 or -HTTP_x from http_client_do), the
 * status and body of the answer.  Never fails: an answer that is not the
 * protocol's is ACQ_OUT_bad_answer with detail saying what is wrong.
 */
void acq_proto_read(const struct acq_asked *asked, int http_err, int status,
		    const char *body, size_t body_len, struct acq_answer *out);

/* POST the charge of pan (a top-up) and read the answer. */
void acq_proto_charge(struct http_client *c, const char *version,
		      const struct acq_asked *asked, const char *pan,
		      const _Atomic bool *cancel, struct acq_answer *out);

/* GET the operation booked under asked->key and read the answer. */
void acq_proto_query(struct http_client *c, const char *version,
		     const struct acq_asked *asked, const _Atomic bool *cancel,
		     struct acq_answer *out);

#endif
