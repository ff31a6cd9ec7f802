/*
 * cdcevent.h - committed journal records as change events in JSON: the
 * event format of change data capture (`tpwallet cdc`, docs/cdc.md) and
 * of the webhooks to come.
 *
 * An encoder owns a state machine (core/state) and is given the journal's
 * records in order, each exactly once (from the first after the state it
 * was given).  It applies each record with state_apply, as the server and
 * replay do, and emits the record's events in order, each with a stable
 * id, "<origin>/<seq>/<index>": the journal's origin (DATA/origin), the
 * record's seq and the event's index within the record.  Replaying the
 * same journal gives the same events with the same ids, so a consumer
 * deduplicates redeliveries by id.
 *
 *   transfer.expired   a pending transfer whose timeout passed (it is
 *                      voided by the ledger before the record's events
 *                      apply), with both accounts' balances after it
 *   transfer.created   each transfer the record created (result ok), with
 *                      both accounts' balances just after it, within the
 *                      batch (not at the batch's end)
 *   account.created    each account the record created, with its owner
 *                      when the command says one
 *   command.<name>     every command without events (policy versions and
 *                      overrides, principals, revocations, key events,
 *                      the vault's, the administrators', TLS switches),
 *                      by the decoded view of the audit log
 *                      (log/entry_view.h), so no kind is dropped
 *
 * Events in a record: first its expiries, then its events in batch order.
 * A record that changes nothing (a batch whose every event failed, a
 * pulse that expired nothing) has no event.
 *
 * The ledger is given a cold tier that never evicts (for ledger_drain: the
 * pending statuses a record changed are how expiries are found), so the
 * encoder holds the whole state in memory, as a server without the store
 * does.  Not thread-safe; allocates per record (the balances of the
 * accounts a batch touches) and grows one output buffer up to
 * CDC_EVENT_BYTES_MAX per event.
 */
#ifndef TPW_API_CDCEVENT_H
#define TPW_API_CDCEVENT_H

#include "core/types.h"
#include "log/journal.h"

#include <stdbool.h>
#include <stddef.h>

struct state;
struct cdc_encoder;

/* An origin ("tpwallet/<16 hex>") is shorter; an id adds two numbers. */
#define CDC_ORIGIN_BYTES_MAX 128
#define CDC_ID_BYTES_MAX     (CDC_ORIGIN_BYTES_MAX + 48)
/* The largest event: a command's decoded view with its fields. */
#define CDC_EVENT_BYTES_MAX (64u << 10)

struct cdc_event {
	u64 seq;	  /* the record's */
	u32 index;	  /* within the record, from 0 */
	const char *type; /* "transfer.created", ..., "command.policy_set" */
	const char *id;	  /* "<origin>/<seq>/<index>" */
	const char *json; /* the whole event, one JSON object */
	size_t json_bytes;
};

/* Called once per event, in order; the pointers are valid during the call
 * only.  A negative return stops the record (cdc_encoder_record returns
 * it; the record is then applied, but its remaining events are not
 * emitted). */
typedef int (*cdc_emit_fn)(void *ctx, const struct cdc_event *ev);

/*
 * A new encoder over st (taken over: freed with the encoder, also on
 * failure) for the journal named origin (at most CDC_ORIGIN_BYTES_MAX - 1
 * bytes).  Returns 0, -EINVAL (origin too long) or -ENOMEM.
 */
int cdc_encoder_new(struct cdc_encoder **out, struct state *st,
		    const char *origin);
void cdc_encoder_free(struct cdc_encoder *e);

/*
 * Apply the record r (raw[0..raw_bytes): the whole record as on disk, for
 * the decoded view) and emit its events through emit (NULL: apply only,
 * to reach a resume point).  Returns the number of events, -EBADMSG for
 * a record the state refuses, -ENOMEM, or emit's negative return.
 */
int cdc_encoder_record(struct cdc_encoder *e, const struct journal_record *r,
		       const u8 *raw, size_t raw_bytes, cdc_emit_fn emit,
		       void *ctx);

/* The state the encoder drives, after the last record given. */
const struct state *cdc_encoder_state(const struct cdc_encoder *e);

#endif
