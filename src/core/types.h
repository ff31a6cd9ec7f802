/*
 * types.h - the ledger's wire and storage records.
 *
 * Accounts and transfers are fixed 128-byte records, laid out as
 * TigerBeetle lays them out, so a record is the same bytes in memory, in
 * the journal and in a snapshot.  Amounts are unsigned 128-bit integers in
 * minor units; every arithmetic on them is overflow-checked (see u128.h).
 *
 * Invariants kept by the ledger (src/core/ledger.c):
 *   - ids are never 0 and never 2^128-1;
 *   - per ledger, sum(debits_posted) == sum(credits_posted) and
 *     sum(debits_pending) == sum(credits_pending);
 *   - timestamps are unique and strictly increasing in commit order.
 */
#ifndef TPW_CORE_TYPES_H
#define TPW_CORE_TYPES_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

typedef unsigned __int128 u128;
typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;

#define U128_MAX (~(u128)0)

/* Account flags (bit positions as TigerBeetle's). */
#define ACCOUNT_LINKED			       ((u16)1 << 0)
#define ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS ((u16)1 << 1)
#define ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS ((u16)1 << 2)
#define ACCOUNT_HISTORY			       ((u16)1 << 3)
/* 1 << 4 is TigerBeetle's `imported`: not supported, reserved here. */
#define ACCOUNT_CLOSED ((u16)1 << 5)
#define ACCOUNT_FLAGS_KNOWN                                                    \
	(ACCOUNT_LINKED | ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS |             \
	 ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS | ACCOUNT_HISTORY |            \
	 ACCOUNT_CLOSED)

/* Transfer flags (bit positions as TigerBeetle's). */
#define TRANSFER_LINKED		       ((u16)1 << 0)
#define TRANSFER_PENDING	       ((u16)1 << 1)
#define TRANSFER_POST_PENDING_TRANSFER ((u16)1 << 2)
#define TRANSFER_VOID_PENDING_TRANSFER ((u16)1 << 3)
#define TRANSFER_BALANCING_DEBIT       ((u16)1 << 4)
#define TRANSFER_BALANCING_CREDIT      ((u16)1 << 5)
#define TRANSFER_CLOSING_DEBIT	       ((u16)1 << 6)
#define TRANSFER_CLOSING_CREDIT	       ((u16)1 << 7)
/* 1 << 8 is TigerBeetle's `imported`: not supported, reserved here. */
#define TRANSFER_FLAGS_KNOWN                                                   \
	(TRANSFER_LINKED | TRANSFER_PENDING | TRANSFER_POST_PENDING_TRANSFER | \
	 TRANSFER_VOID_PENDING_TRANSFER | TRANSFER_BALANCING_DEBIT |           \
	 TRANSFER_BALANCING_CREDIT | TRANSFER_CLOSING_DEBIT |                  \
	 TRANSFER_CLOSING_CREDIT)

/* On `post_pending_transfer`, amount == AMOUNT_MAX means "post the full
 * pending amount" (TigerBeetle's convention). */
#define AMOUNT_MAX U128_MAX

struct account {
	u128 id;
	u128 debits_pending;
	u128 debits_posted;
	u128 credits_pending;
	u128 credits_posted;
	u128 user_data_128;
	u64 user_data_64;
	u32 user_data_32;
	u32 reserved;
	u32 ledger;
	u16 code;
	u16 flags;
	u64 timestamp;
};

struct transfer {
	u128 id;
	u128 debit_account_id;
	u128 credit_account_id;
	u128 amount;
	u128 pending_id;
	u128 user_data_128;
	u64 user_data_64;
	u32 user_data_32;
	u32 timeout; /* seconds; only with TRANSFER_PENDING */
	u32 ledger;
	u16 code;
	u16 flags;
	u64 timestamp;
};

/* A point in an account's balance history (accounts with ACCOUNT_HISTORY). */
struct account_balance {
	u128 debits_pending;
	u128 debits_posted;
	u128 credits_pending;
	u128 credits_posted;
	u64 timestamp;
	u8 reserved[56];
};

_Static_assert(sizeof(struct account) == 128, "account is 128 bytes");
_Static_assert(sizeof(struct transfer) == 128, "transfer is 128 bytes");
_Static_assert(sizeof(struct account_balance) == 128, "balance is 128 bytes");

/* Query filter for account transfers and balances (TigerBeetle's
 * AccountFilter).  Zero means "any" for user_data_* and code;
 * timestamp_min/max of 0 mean unbounded. */
#define ACCOUNT_FILTER_DEBITS	((u32)1 << 0)
#define ACCOUNT_FILTER_CREDITS	((u32)1 << 1)
#define ACCOUNT_FILTER_REVERSED ((u32)1 << 2)

struct account_filter {
	u128 account_id;
	u128 user_data_128;
	u64 user_data_64;
	u32 user_data_32;
	u16 code;
	u64 timestamp_min;
	u64 timestamp_max;
	u32 limit;
	u32 flags;
};

/* Limits that apply to every batch, whatever carries it. */
#define BATCH_EVENTS_MAX 8190u
#define QUERY_LIMIT_MAX	 8190u

#endif
