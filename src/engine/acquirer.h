/*
 * acquirer.h - the acquirer connector (docs/acquirer.md): a card top-up
 * as a two-phase transfer.  A pending transfer from the acquirer's
 * settlement account into the user's account is journaled first; then
 * the acquirer is asked to charge the card with an idempotency key
 * derived from the pending transfer's id; an approval posts it, a
 * decline voids it.  When the answer is lost (a timeout, a 5xx, a body
 * that is not the protocol's) the connector asks the acquirer again, by
 * the same key (a query, then the same charge, which the acquirer books
 * once), with exponential backoff and jitter, and leaves the transfer
 * pending until the acquirer says; it never guesses.  A resolver thread
 * keeps asking for the top-ups left pending, and at start finds every
 * pending top-up of the settlement account in the ledger (a restart
 * loses nothing).
 *
 * Around the calls: a bound on calls in flight (acquirer_inflight_max;
 * past it ACQ_BUSY), a circuit breaker (acquirer_breaker_failures
 * consecutive failures open it; after acquirer_breaker_cooldown_ms one
 * call is let through, half-open, whose outcome closes or reopens it;
 * while open ACQ_BREAKER_OPEN at once), the API version sent in
 * Acquirer-Version (a 426 is said plainly: ACQ_VERSION_REFUSED, the log
 * line, the metric), and counters for /metrics.
 *
 * The wire protocol is one file (acq_json.c, acq_proto.h): a second
 * protocol is one more file behind the same four functions.
 *
 * Threads: acquirer_topup runs on the caller's thread and blocks for the
 * call; the HTTP route hands top-ups to acquirer_submit's workers
 * (acquirer_inflight_max threads, as many jobs at most), so no HTTP
 * thread waits for the acquirer; the resolver is one thread of its own.
 * The card's number is read from the vault
 * under the connector's own right, kept only on the stack, wiped after
 * the call and never logged.
 */
#ifndef TPW_ENGINE_ACQUIRER_H
#define TPW_ENGINE_ACQUIRER_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

struct engine;
struct vaultkeys;
struct acquirer;

#define ACQ_VERSION_BYTES	  16u
#define ACQ_KEY_BYTES		  40u /* "tpw-" + 32 hex + NUL */
#define ACQ_IDEMPOTENCY_BYTES_MAX 128u
#define ACQ_LATENCY_BUCKETS	  10u

struct acquirer_options {
	const char *url;	      /* http[s]://HOST[:PORT][/PREFIX] */
	u128 settlement_account;      /* the acquirer's account in the ledger */
	const char *currency;	      /* ISO 4217, sent with every charge */
	const char *api_version;      /* Acquirer-Version: YYYY-MM */
	u16 code;		      /* the transfers' code (top-ups) */
	unsigned inflight_max;	      /* calls at once; 0: 4 */
	unsigned breaker_failures;    /* 0: 5 */
	unsigned breaker_cooldown_ms; /* 0: 5000 */
	unsigned timeout_ms;	      /* one call; 0: 2000 */
	unsigned resolve_interval_ms; /* the resolver's first wait; 0: 200 */
	const char *ca_file;	      /* NULL: the outbound policy's */
};

/* The outcome of a top-up. */
enum acq_result {
	ACQ_APPROVED = 0,    /* posted */
	ACQ_DECLINED,	     /* voided */
	ACQ_PENDING,	     /* unknown yet: left pending, the resolver asks */
	ACQ_BUSY,	     /* inflight_max calls already: nothing done */
	ACQ_BREAKER_OPEN,    /* the breaker is open: nothing done */
	ACQ_VERSION_REFUSED, /* 426: voided; minimum in the result */
	ACQ_REFUSED,	     /* another 4xx: voided; detail in the result */
	ACQ_NO_ACCOUNT,	     /* the account does not exist */
	ACQ_BAD_ACCOUNT,     /* not the settlement account's ledger */
	ACQ_NO_CARD,	     /* no card has this token */
	ACQ_CARD_ERASED,     /* the card was erased */
	ACQ_VAULT_UNAVAILABLE,
	ACQ_LEDGER_REFUSED, /* the pending transfer was refused: detail */
	ACQ_CONFLICT,	    /* the key was used for another top-up */
	ACQ_ENGINE,	    /* the engine failed: errno in result.err */
};

struct acq_topup_result {
	enum acq_result result;
	u128 transfer_id;	 /* the pending transfer */
	u128 final_id;		 /* its post or void, when one */
	char key[ACQ_KEY_BYTES]; /* the key sent to the acquirer */
	char acquirer_ref[64];	 /* the acquirer's id, when known */
	char detail[160];	 /* refusals: what was said */
	unsigned retry_after_s;	 /* ACQ_BUSY, ACQ_BREAKER_OPEN */
	int err;
};

/* Breaker states, also the value of tpwallet_acquirer_breaker_state. */
enum acq_breaker { ACQ_CLOSED = 0, ACQ_OPEN = 1, ACQ_HALF_OPEN = 2 };

/* Call outcomes, the `outcome` label of tpwallet_acquirer_calls_total. */
#define ACQ_OUTCOMES(X)                                                        \
	X(approved)                                                            \
	X(declined)                                                            \
	X(unknown) /* a query: the acquirer has no such operation */           \
	X(timeout)                                                             \
	X(server_error)	   /* 5xx */                                           \
	X(bad_answer)	   /* not the protocol's JSON */                       \
	X(transport)	   /* no connection, refused by outbound_allow... */   \
	X(version_refused) /* 426 */                                           \
	X(refused)	   /* another 4xx */

enum acq_outcome {
#define ACQ_OUTCOME_ENUM_(n) ACQ_OUT_##n,
	ACQ_OUTCOMES(ACQ_OUTCOME_ENUM_)
#undef ACQ_OUTCOME_ENUM_
		ACQ_OUT_COUNT
};
const char *acq_outcome_name(unsigned o);

struct acquirer_stats {
	unsigned long long calls[ACQ_OUT_COUNT];
	unsigned long long latency_buckets[ACQ_LATENCY_BUCKETS]; /* le */
	unsigned long long latency_count;
	double latency_sum_s;
	unsigned inflight, inflight_max;
	unsigned breaker; /* enum acq_breaker */
	unsigned long long breaker_opened;
	unsigned long long rejected_busy, rejected_open;
	unsigned pending;     /* top-ups the resolver is asking about */
	bool version_refused; /* the last answer was a 426 */
	char minimum[ACQ_VERSION_BYTES]; /* what it said, "" when none */
	char version[ACQ_VERSION_BYTES]; /* acquirer_api_version */
};

/* The upper bounds (s) of the latency buckets, ACQ_LATENCY_BUCKETS. */
extern const double acq_latency_bounds_s[ACQ_LATENCY_BUCKETS];

/* Checks o (URL, version, currency): 0 or -EINVAL with err. */
int acquirer_options_check(const struct acquirer_options *o, char *err,
			   size_t err_len);

/* Opens the connector over e and vault (both outlive it) and starts the
 * resolver, which first looks for pending top-ups in the ledger.  0, or
 * a negative errno with err. */
int acquirer_open(struct acquirer **out, const struct acquirer_options *o,
		  struct engine *e, struct vaultkeys *vault, char *err,
		  size_t err_len);

/* Stops the resolver (a call in progress ends within its timeout) and
 * frees; NULL is fine. */
void acquirer_close(struct acquirer *a);

/*
 * One top-up of amount (minor units) into account with the card of
 * token, under the client's idempotency_key (1..128 of
 * [A-Za-z0-9_.:-]): the same key gives the same transfer, so a retried
 * request answers the first one's outcome without a second charge.
 */
void acquirer_topup(struct acquirer *a, u128 account, u128 amount,
		    const char *token, const char *idempotency_key,
		    struct acq_topup_result *out);

/* A top-up to run on one of the connector's acquirer_inflight_max
 * worker threads (so that no HTTP thread waits for the acquirer). */
struct acq_job {
	u128 account, amount;
	char token[72];
	char key[ACQ_IDEMPOTENCY_BYTES_MAX + 1];
	struct acq_topup_result result;
	/* Called on the worker once result is set; j is the caller's. */
	void (*done)(struct acq_job *j);
	void *ctx;
	struct acq_job *next; /* internal */
};

/* Queues j: 0, or ACQ_BUSY (retry_after_s in *retry_s) when
 * acquirer_inflight_max top-ups are queued or running already (done is
 * then not called). */
int acquirer_submit(struct acquirer *a, struct acq_job *j, unsigned *retry_s);

void acquirer_stats(struct acquirer *a, struct acquirer_stats *out);

/* The key sent to the acquirer for pending transfer id ("tpw-" and 32
 * lower-case hex digits), and back: 0, or -EINVAL for another key. */
void acquirer_key_of(u128 id, char out[ACQ_KEY_BYTES]);

/* A transfer id derived from two byte strings: BLAKE2b-128 of a then b
 * (never 0 nor 2^128-1).  The connector's and the reconciliation's ids. */
u128 acquirer_derive_id(const void *a, size_t al, const void *b, size_t bl);
int acquirer_key_id(const char *key, u128 *id);

/* The settings the reconciliation needs: the settlement account, the
 * top-ups' code, the currency (valid while a is open). */
void acquirer_config(const struct acquirer *a, u128 *settlement, u16 *code,
		     const char **currency);

#endif
