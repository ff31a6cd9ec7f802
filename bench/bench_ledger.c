/*
 * bench_ledger.c - in-process speed of the ledger state machine.
 *
 * Creates 100,000 accounts, then applies N transfers (default 4,000,000)
 * in batches of 8190 between random accounts, and prints ns per transfer
 * and the bytes held in indexes per transfer.  A figure, never a test:
 * nothing here passes or fails on time.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_ledger [transfers]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ledger.h"
#include "banned.h"

#define ACCOUNTS 100000u

static u64 rng_state = 0x9e3779b97f4a7c15ull;

/* splitmix64: deterministic, so runs are comparable. */
static u64 rnd(void)
{
	u64 z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	u64 total = argc > 1 ? strtoull(argv[1], NULL, 10) : 4000000ull;
	struct ledger_options o = {.accounts_hint = ACCOUNTS,
				   .transfers_hint = 0};
	struct ledger *l = ledger_new(&o);
	static struct account accts[BATCH_EVENTS_MAX];
	static struct transfer xs[BATCH_EVENTS_MAX];
	static u32 res[BATCH_EVENTS_MAX];
	u64 ts = 1000000000ull;
	u64 failed = 0;

	if (!l)
		return 1;
	for (u32 done = 0; done < ACCOUNTS;) {
		u32 n = ACCOUNTS - done < BATCH_EVENTS_MAX ? ACCOUNTS - done
							   : BATCH_EVENTS_MAX;
		memset(accts, 0, n * sizeof(accts[0]));
		for (u32 i = 0; i < n; i++) {
			accts[i].id = (u128)(done + i + 1) << 64 | 7;
			accts[i].ledger = 1;
			accts[i].code = 1;
		}
		ts += n;
		if (ledger_create_accounts(l, accts, n, ts, res))
			return 1;
		done += n;
	}

	double t0 = clock_s(CLOCK_MONOTONIC);
	double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	u64 id = 1;
	for (u64 done = 0; done < total;) {
		u32 n = total - done < BATCH_EVENTS_MAX ? (u32)(total - done)
							: BATCH_EVENTS_MAX;
		memset(xs, 0, n * sizeof(xs[0]));
		for (u32 i = 0; i < n; i++) {
			u64 r = rnd();
			u32 a = (u32)(r % ACCOUNTS),
			    b = (u32)((r >> 32) % ACCOUNTS);
			if (a == b)
				b = (b + 1) % ACCOUNTS;
			xs[i].id = (u128)rnd() << 64 | id++;
			xs[i].debit_account_id = (u128)(a + 1) << 64 | 7;
			xs[i].credit_account_id = (u128)(b + 1) << 64 | 7;
			xs[i].amount = 1 + (r & 0xff);
			xs[i].ledger = 1;
			xs[i].code = 1;
		}
		ts += n;
		if (ledger_create_transfers(l, xs, n, ts, res))
			return 1;
		for (u32 i = 0; i < n; i++)
			failed += res[i] != 0;
		done += n;
	}
	double dt = clock_s(CLOCK_MONOTONIC) - t0;
	double dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;

	struct ledger_stats st;
	ledger_stats(l, &st);
	printf("accounts %llu transfers %llu failed %llu\n",
	       (unsigned long long)st.accounts,
	       (unsigned long long)st.transfers, (unsigned long long)failed);
	printf("%.1f ns/transfer wall, %.1f ns/transfer cpu (%.2f M "
	       "transfers/s)\n",
	       dt * 1e9 / (double)total, dc * 1e9 / (double)total,
	       (double)total / dt / 1e6);
	printf("index bytes %llu (%.1f per transfer), record bytes %llu\n",
	       (unsigned long long)st.index_bytes,
	       (double)st.index_bytes /
		       (double)(st.transfers ? st.transfers : 1),
	       (unsigned long long)st.record_bytes);
	ledger_free(l);
	return 0;
}
