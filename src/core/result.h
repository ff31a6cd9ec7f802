/*
 * result.h - result codes of create_accounts and create_transfers.
 *
 * One table per operation, in order of descending precedence: when more
 * than one error applies to an event, the first listed is returned, so the
 * enum value order IS the precedence order (ok == 0 first).  The tables
 * follow TigerBeetle's documented result sets (0.16.x) minus the
 * `imported_*` codes: the `imported` flag is not supported here (its bit is
 * reserved and yields `reserved_flag`).  `amount_must_not_be_zero` is not
 * listed either: since TigerBeetle 0.16 zero-amount transfers are valid.
 *
 * Transient transfer errors (see create_transfer_result_transient()) are
 * remembered by id: a later event with the same id gets `id_already_failed`
 * so that a retry never changes an outcome.
 *
 * The table generates the enum, the stable names used on the wire, and the
 * checks in tests (X-macro, as libuv's UV_ERRNO_MAP).
 */
#ifndef TPW_CORE_RESULT_H
#define TPW_CORE_RESULT_H

#include <stdbool.h>

#define CREATE_ACCOUNT_RESULTS(X)                                              \
	X(ok)                                                                  \
	X(linked_event_failed)                                                 \
	X(linked_event_chain_open)                                             \
	X(timestamp_must_be_zero)                                              \
	X(reserved_field)                                                      \
	X(reserved_flag)                                                       \
	X(id_must_not_be_zero)                                                 \
	X(id_must_not_be_int_max)                                              \
	X(exists_with_different_flags)                                         \
	X(exists_with_different_user_data_128)                                 \
	X(exists_with_different_user_data_64)                                  \
	X(exists_with_different_user_data_32)                                  \
	X(exists_with_different_ledger)                                        \
	X(exists_with_different_code)                                          \
	X(exists)                                                              \
	X(flags_are_mutually_exclusive)                                        \
	X(debits_pending_must_be_zero)                                         \
	X(debits_posted_must_be_zero)                                          \
	X(credits_pending_must_be_zero)                                        \
	X(credits_posted_must_be_zero)                                         \
	X(ledger_must_not_be_zero)                                             \
	X(code_must_not_be_zero)

#define CREATE_TRANSFER_RESULTS(X)                                             \
	X(ok)                                                                  \
	X(linked_event_failed)                                                 \
	X(linked_event_chain_open)                                             \
	X(timestamp_must_be_zero)                                              \
	X(reserved_flag)                                                       \
	X(id_must_not_be_zero)                                                 \
	X(id_must_not_be_int_max)                                              \
	X(exists_with_different_flags)                                         \
	X(exists_with_different_pending_id)                                    \
	X(exists_with_different_timeout)                                       \
	X(exists_with_different_debit_account_id)                              \
	X(exists_with_different_credit_account_id)                             \
	X(exists_with_different_amount)                                        \
	X(exists_with_different_user_data_128)                                 \
	X(exists_with_different_user_data_64)                                  \
	X(exists_with_different_user_data_32)                                  \
	X(exists_with_different_ledger)                                        \
	X(exists_with_different_code)                                          \
	X(exists)                                                              \
	X(id_already_failed)                                                   \
	X(flags_are_mutually_exclusive)                                        \
	X(debit_account_id_must_not_be_zero)                                   \
	X(debit_account_id_must_not_be_int_max)                                \
	X(credit_account_id_must_not_be_zero)                                  \
	X(credit_account_id_must_not_be_int_max)                               \
	X(accounts_must_be_different)                                          \
	X(pending_id_must_be_zero)                                             \
	X(pending_id_must_not_be_zero)                                         \
	X(pending_id_must_not_be_int_max)                                      \
	X(pending_id_must_be_different)                                        \
	X(timeout_reserved_for_pending_transfer)                               \
	X(closing_transfer_must_be_pending)                                    \
	X(ledger_must_not_be_zero)                                             \
	X(code_must_not_be_zero)                                               \
	X(debit_account_not_found)                                             \
	X(credit_account_not_found)                                            \
	X(accounts_must_have_the_same_ledger)                                  \
	X(transfer_must_have_the_same_ledger_as_accounts)                      \
	X(pending_transfer_not_found)                                          \
	X(pending_transfer_not_pending)                                        \
	X(pending_transfer_has_different_debit_account_id)                     \
	X(pending_transfer_has_different_credit_account_id)                    \
	X(pending_transfer_has_different_ledger)                               \
	X(pending_transfer_has_different_code)                                 \
	X(exceeds_pending_transfer_amount)                                     \
	X(pending_transfer_has_different_amount)                               \
	X(pending_transfer_already_posted)                                     \
	X(pending_transfer_already_voided)                                     \
	X(pending_transfer_expired)                                            \
	X(debit_account_already_closed)                                        \
	X(credit_account_already_closed)                                       \
	X(overflows_debits_pending)                                            \
	X(overflows_credits_pending)                                           \
	X(overflows_debits_posted)                                             \
	X(overflows_credits_posted)                                            \
	X(overflows_debits)                                                    \
	X(overflows_credits)                                                   \
	X(overflows_timeout)                                                   \
	X(exceeds_credits)                                                     \
	X(exceeds_debits)                                                      \
	/* not the ledger's: a mandate's guard refused the whole batch         \
	 * (core/auth.h, auth_guard_check); they come after every ledger       \
	 * code, so they never change its precedence */                        \
	X(mandate_revoked)                                                     \
	X(exceeds_mandate_total_cap)                                           \
	X(exceeds_mandate_uses)                                                \
	X(mandate_counters_full)

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

/* True for the errors TigerBeetle documents as transient (they depend on
 * the state at the time, not on the event): debit/credit_account_not_found,
 * pending_transfer_not_found, exceeds_credits, exceeds_debits,
 * debit/credit_account_already_closed.  Their ids are remembered. */
bool create_transfer_result_transient(unsigned code);

#endif
