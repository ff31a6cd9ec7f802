/*
 * witness.h - the log's side of C2SP tlog-witness: the witnesses a
 * server sends its checkpoints to, and the POST that does it (over
 * net/http.h: one kept connection per witness).
 *
 * A witness is named by "http[s]://HOST[:PORT][/PREFIX] NAME+<8 hex>+<base64>":
 * where it listens, and its cosigner verifier key (key type 0x04, as
 * `tpwallet witness` prints it).  An https witness is verified against
 * the system's certificate authorities.
 *
 * Nothing here is thread-safe: a witness's client belongs to one thread
 * (the audit module's witness thread), which opens it and posts on it.
 */
#ifndef TPW_ENGINE_WITNESS_H
#define TPW_ENGINE_WITNESS_H

#include "core/types.h"
#include "crypto/note.h"
#include "net/http.h"

#include <stdatomic.h>

#define WITNESSES_MAX	       8
#define WITNESS_SPEC_BYTES_MAX 1024
/* One exchange with a witness, connect (name lookup included) to last
 * byte. */
#define WITNESS_TIMEOUT_MS 500
/* Largest answer read from a witness (cosignature lines are ~150 bytes). */
#define WITNESS_RESPONSE_BYTES_MAX 8192

struct witness_peer {
	char url[WITNESS_SPEC_BYTES_MAX]; /* "http[s]://HOST[:PORT][/PREFIX]" */
	struct note_verifier key; /* name and public key; key_id unused */
	u64 size; /* the size it last cosigned for us; 0: none */
};

/* Why a witness did not cosign a checkpoint it was sent: a bounded set,
 * the `reason` label of tpwallet_witness_refusals_total and the words of
 * DATA/audit/witnesses (docs/operations.md, Witness). */
#define WITNESS_REFUSALS(X)                                                    \
	X(unreachable)	       /* no answer in time, or no connection */       \
	X(not_signed_by_log)   /* 403: not signed by a key it trusts */        \
	X(unknown_log)	       /* 404: it does not follow this origin */       \
	X(size_conflict)       /* 409 again after the retry, or no size */     \
	X(bad_proof)	       /* 422: the consistency proof did not verify */ \
	X(bad_request)	       /* 400 or 413 */                                \
	X(invalid_cosignature) /* 200 without a cosignature that verifies */   \
	X(other_status)	       /* any other status */                          \
	X(outbound_refused)    /* its address is private: outbound_allow */

enum witness_refusal {
#define WITNESS_REFUSAL_ENUM_(name) WITNESS_REFUSAL_##name,
	WITNESS_REFUSALS(WITNESS_REFUSAL_ENUM_)
#undef WITNESS_REFUSAL_ENUM_
		WITNESS_REFUSAL_COUNT
};

/* The stable name of r ("unreachable"...), or "other_status". */
const char *witness_refusal_name(unsigned r);
/* The refusal an answer's non-200 status means. */
enum witness_refusal witness_refusal_of_status(unsigned status);

/* Parse a witness spec (above).  Returns 0 or -EINVAL with a reason in
 * err. */
int witness_peer_parse(const char *spec, struct witness_peer *out, char *err,
		       size_t err_size);

/* A client for w (its deadline and answer cap set), to keep and reuse
 * for every checkpoint: the connection stays open between them.  Returns
 * 0 or a negative HTTP code (net/http.h). */
int witness_connect(const struct witness_peer *w, struct http_client **out);

/*
 * POST body to the witness's add-checkpoint and read its answer into
 * *out (cleared by the caller): 0 with any status, or a negative HTTP
 * code: -HTTP_timeout past WITNESS_TIMEOUT_MS, -HTTP_canceled within
 * HTTP_CANCEL_POLL_MS of *cancel turning true (cancel may be NULL).
 */
int witness_post(struct http_client *c, const char *body, size_t len,
		 const _Atomic bool *cancel, struct http_response *out);

/* The body of a 409: the size the witness last cosigned, in canonical
 * decimal with at most one newline after it ("0\n", "42"; never "-1",
 * "007", "+4", "4 " nor a value over 2^64 - 1).  Returns 0 or -EINVAL. */
int witness_parse_size(const char *body, size_t len, u64 *out);

#endif
