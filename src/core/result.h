/*
 * result.h - result codes of create_accounts and create_transfers.
 *
 * One table per operation, in order of descending precedence: when more
 * than one error applies to an event, the first listed is returned.  The
 * table generates the enum, the stable names used on the wire, and the
 * checks in tests (X-macro, as libuv's UV_ERRNO_MAP).
 *
 * TODO(ledger): complete both lists to TigerBeetle's documented set.
 */
#ifndef TPW_CORE_RESULT_H
#define TPW_CORE_RESULT_H

#define CREATE_ACCOUNT_RESULTS(X)                                              \
	X(ok)                                                                  \
	X(linked_event_failed)                                                 \
	X(linked_event_chain_open)

#define CREATE_TRANSFER_RESULTS(X)                                             \
	X(ok)                                                                  \
	X(linked_event_failed)                                                 \
	X(linked_event_chain_open)

enum create_account_result {
#define X(name) CREATE_ACCOUNT_##name,
	CREATE_ACCOUNT_RESULTS(X)
#undef X
	CREATE_ACCOUNT_RESULT_COUNT
};

enum create_transfer_result {
#define X(name) CREATE_TRANSFER_##name,
	CREATE_TRANSFER_RESULTS(X)
#undef X
	CREATE_TRANSFER_RESULT_COUNT
};

/* Stable wire names ("exists", "exceeds_credits", ...); "created" is not
 * here: the API renders ok as "created".  NULL for an unknown code. */
const char *create_account_result_name(unsigned code);
const char *create_transfer_result_name(unsigned code);

#endif
