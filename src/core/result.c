/*
 * result.c - stable names of the create_accounts/create_transfers result
 * codes, generated from the tables in result.h.
 */
#include "core/result.h"

#include <stddef.h>

#include "banned.h"

static const char *const account_names[] = {
#define X(name) #name,
	CREATE_ACCOUNT_RESULTS(X)
#undef X
};

static const char *const transfer_names[] = {
#define X(name) #name,
	CREATE_TRANSFER_RESULTS(X)
#undef X
};

_Static_assert(sizeof(account_names) / sizeof(account_names[0]) ==
		       CREATE_ACCOUNT_RESULT_COUNT,
	       "one name per account result");
_Static_assert(sizeof(transfer_names) / sizeof(transfer_names[0]) ==
		       CREATE_TRANSFER_RESULT_COUNT,
	       "one name per transfer result");

const char *create_account_result_name(unsigned code)
{
	if (code >= CREATE_ACCOUNT_RESULT_COUNT)
		return NULL;
	return account_names[code];
}

const char *create_transfer_result_name(unsigned code)
{
	if (code >= CREATE_TRANSFER_RESULT_COUNT)
		return NULL;
	return transfer_names[code];
}

bool create_transfer_result_transient(unsigned code)
{
	switch (code) {
	case CREATE_TRANSFER_debit_account_not_found:
	case CREATE_TRANSFER_credit_account_not_found:
	case CREATE_TRANSFER_pending_transfer_not_found:
	case CREATE_TRANSFER_exceeds_credits:
	case CREATE_TRANSFER_exceeds_debits:
	case CREATE_TRANSFER_debit_account_already_closed:
	case CREATE_TRANSFER_credit_account_already_closed: return true;
	default: return false;
	}
}
