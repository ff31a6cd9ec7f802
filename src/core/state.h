/*
 * state.h - the state machine the journal drives: the ledger, the
 * authorization state (core/auth) and the client-version policy state
 * (core/pstate), as one module.
 *
 * Every change of state is one journal record applied here, in journal
 * order, with the record's timestamp: state_apply validates and applies
 * a record (a batch, a pulse, or a command of the registry in
 * core/command.h) and fills its results.  Replay and the live path call
 * the same function, so they decide the same.  A snapshot is this
 * module's container of the three parts (state_snapshot_write/_read,
 * bytes through a sink; the engine's log/snapshot frames and checksums
 * them), and state_digest covers all three.
 *
 * Pure and deterministic: no I/O, no clock, no threads.  Time is a
 * parameter: the record's timestamp to apply; and the clock the engine
 * stamps records with is a struct state_clock it is given, so a test can
 * step it.  Not thread-safe: the engine serialises writers and holds a
 * read lock for readers; pointers from the getters stay valid as long as
 * the state.
 */
#ifndef TPW_CORE_STATE_H
#define TPW_CORE_STATE_H

#include "core/ledger.h"
#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

struct auth;
struct pstate;
struct vault;
struct state;

/* The kinds of record: the journal's record types (log/journal.h; the
 * engine asserts that the numbers are the same). */
enum state_record {
	STATE_CREATE_ACCOUNTS = 1,  /* payload: 128-byte accounts */
	STATE_CREATE_TRANSFERS = 2, /* payload: 128-byte transfers */
	STATE_PULSE = 3,	    /* empty: expire pending transfers */
	STATE_COMMAND = 4,	    /* a command (core/command.h) */
};

/* A clock in nanoseconds since the Unix epoch.  The engine reads time
 * only through one (engine_options.clock; CLOCK_REALTIME by default). */
struct state_clock {
	u64 (*now_ns)(void *ctx);
	void *ctx;
};

/* A new, empty state.  NULL when out of memory. */
struct state *state_new(const struct ledger_options *opts);
void state_free(struct state *s);

/*
 * Would state_apply take a record of this type and payload (not
 * -EBADMSG)?  The engine asks before journaling: a record that fails to
 * apply stops replay.  *events gets the events the record carries (a
 * command's count).  Returns 0 or -EBADMSG.
 */
int state_check(u16 type, const void *payload, u32 payload_bytes, u32 *events);

/*
 * Apply one journal record at its timestamp: results gets one code per
 * event (result.h), or an event-less command's outcome in results[0]
 * (room for max(events, 1)).  Returns 0; -EBADMSG for a record that
 * state_check refuses, or one the state cannot take (timestamps that do
 * not advance); -ENOMEM when the state could not grow (the record is
 * then not applied).
 */
int state_apply(struct state *s, u16 type, u64 timestamp, const void *payload,
		u32 payload_bytes, u32 *results);

/* ---- reading (under the engine's read lock) ----------------------- */

const struct ledger *state_ledger(const struct state *s);
const struct auth *state_auth(const struct state *s);
const struct pstate *state_pstate(const struct state *s);
const struct vault *state_vault(const struct state *s);
/* The earliest deadline of a pending transfer, 0 when none: when the
 * clock passes it, the engine journals a pulse. */
u64 state_next_expiry(const struct state *s);
/* The timestamp of the last event applied (0 for none). */
u64 state_last_timestamp(const struct state *s);

/* The ledger itself, for the engine's store (engine/history): drains,
 * evictions and restores (core/ledger.h, "The cold tier"). */
struct ledger *state_ledger_rw(struct state *s);

/* ---- digest and snapshot ------------------------------------------- */

/* BLAKE2b-256 over the digests of the ledger, the auth state and the
 * policy state: equal after replay, from any snapshot. */
void state_digest(const struct state *s, u8 out[32]);
/* The same for a ledger with a cold tier: its history's sums kept by the
 * store (ledger_digest_with). */
void state_digest_with(const struct state *s, const struct ledger_sums *sums,
		       u8 out[32]);

/* The auth and policy parts of the snapshot container alone (its first
 * two parts), and a state made of a ledger (restored from a store; taken
 * over, freed on failure) and such bytes: NULL when they are not valid
 * or out of memory. */
int state_parts_write(const struct state *s, ledger_sink_fn sink, void *ctx);
struct state *state_from_parts(struct ledger *l, const u8 *buf, size_t len);

/*
 * The snapshot container (SNAPSHOT_VERSION 4 of log/snapshot.h):
 *
 *   u64 n, then n bytes of the auth state (auth_snapshot_write)
 *   u64 m, then m bytes of the policy state (pstate_snapshot_write)
 *   the ledger (ledger_snapshot_write), to the end
 *
 * integers in host order (little-endian: x86-64, arm64).  Write streams through
 * sink (allocates nothing: the engine calls it in a forked child); read returns
 * NULL when the bytes are not a valid container (or out of memory).
 */
int state_snapshot_write(const struct state *s, ledger_sink_fn sink, void *ctx);
struct state *state_snapshot_read(const u8 *buf, size_t len);

#endif
