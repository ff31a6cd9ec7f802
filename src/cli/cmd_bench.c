/*
 * cmd_bench.c - `tpwallet bench`: the engine measured in process.
 *
 * Creates accounts, then pushes random transfers through the real engine
 * (sequencer, journal with fdatasync, ledger) in batches, keeping a few
 * batches in flight so group commit works as it does under load.  Then
 * closes the engine and recovers it from the journal, timing the replay
 * and checking that the recovered state has the same digest.  Prints
 * figures; never passes or fails on time.  docs/benchmarks.md records the
 * runs.
 */
#include "cli/cli.h"
#include "core/u128.h"
#include "engine/audit.h"
#include "engine/engine.h"
#include "log/fsdir.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define WINDOW_MAX 64

struct slot {
	struct engine_request req;
	struct transfer *events;
	u32 *results;
	u64 submitted_ns;
	bool busy;
};

struct bench {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned in_flight;
	u64 failures; /* events with a result other than ok */
	int status;   /* first engine error */
	u64 *latencies_ns;
	u64 latencies_n;
	u32 batch;
};

static u64 mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

static u64 splitmix(u64 *s)
{
	u64 z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void on_done(struct engine_request *req)
{
	struct slot *sl = (struct slot *)req;
	struct bench *b = req->ctx;
	u64 fails = 0;

	for (u32 i = 0; i < req->count; i++)
		fails += req->results[i] != 0;
	u64 lat = mono_ns() - sl->submitted_ns;
	pthread_mutex_lock(&b->lock);
	b->failures += fails;
	if (req->status < 0 && b->status == 0)
		b->status = req->status;
	b->latencies_ns[b->latencies_n++] = lat;
	sl->busy = false;
	b->in_flight--;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return x < y ? -1 : x > y;
}

static u64 rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0, resident = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return (u64)resident * (u64)sysconf(_SC_PAGESIZE);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet bench [--accounts N] [--transfers N] "
		"[--batch N] [--window N]\n"
		"                      [--data DIR] [--no-sync] [--seed N] "
		"[--json] [--audit]\n\n"
		"Measure the engine in process: create N accounts, apply "
		"random\n"
		"transfers in batches through the durable journal (fdatasync "
		"per\n"
		"group), then recover from the journal and compare state "
		"digests.\n\n"
		"  --accounts N   accounts (default 100000)\n"
		"  --transfers N  transfers (default 10000000)\n"
		"  --batch N      transfers per batch, 1..8190 (default 8190)\n"
		"  --window N     batches in flight, 1..64 (default 4)\n"
		"  --data DIR     empty directory to use (default: a new one "
		"under $TMPDIR, removed after)\n"
		"  --no-sync      skip fdatasync (to see what durability "
		"costs)\n"
		"  --json         print one JSON object\n"
		"  --audit        run the audit thread beside the engine, as "
		"serve does\n                 (docs/benchmarks.md)\n\n"
		"Example:\n"
		"  tpwallet bench --transfers 100000 --json\n");
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{"accounts", required_argument, NULL, 'a'},
		{"transfers", required_argument, NULL, 't'},
		{"batch", required_argument, NULL, 'b'},
		{"window", required_argument, NULL, 'w'},
		{"data", required_argument, NULL, 'd'},
		{"seed", required_argument, NULL, 's'},
		{"no-sync", no_argument, NULL, 'n'},
		{"audit", no_argument, NULL, 'A'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	u64 accounts = 100000, transfers = 10000000, batch = 8190, window = 4;
	u64 seed = 42;
	const char *data = NULL;
	bool json = false, no_sync = false, with_audit = false;
	struct audit *audit = NULL;
	u64 audit_lag_ms = 0;
	char tmpdir[4096] = "";
	int c, ret = EXIT_SOFTWARE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "a:t:b:w:d:s:nAjh", opts, NULL)) !=
	       -1) {
		int bad = 0;
		switch (c) {
		case 'a':
			bad = parse_u64(optarg, 100000000, &accounts) ||
			      accounts < 2;
			break;
		case 't':
			bad = parse_u64(optarg, 1000000000, &transfers);
			break;
		case 'b':
			bad = parse_u64(optarg, BATCH_EVENTS_MAX, &batch) ||
			      batch == 0;
			break;
		case 'w':
			bad = parse_u64(optarg, WINDOW_MAX, &window) ||
			      window == 0;
			break;
		case 's': bad = parse_u64(optarg, UINT64_MAX, &seed); break;
		case 'd': data = optarg; break;
		case 'n': no_sync = true; break;
		case 'A': with_audit = true; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
		if (bad) {
			fprintf(stderr, "tpwallet bench: invalid value '%s'\n",
				optarg);
			return EXIT_USAGE;
		}
	}
	if (!data) {
		const char *t = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/tpwallet-bench-XXXXXX",
			 t && *t ? t : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("tpwallet bench: mkdtemp");
			return EXIT_SOFTWARE;
		}
		data = tmpdir;
	}

	struct engine_options eo = {
		.data_dir = data,
		.accounts_hint = accounts,
		.transfers_hint = transfers,
		.no_sync = no_sync,
		.quiet = true,
		/* No snapshot during the run: recovery then measures a
		 * replay of the whole journal. */
		.snapshot_every_records = UINT64_MAX,
	};
	struct engine *e = NULL;
	const char *err = NULL;
	struct slot *slots = calloc(window, sizeof(*slots));
	struct bench b = {.batch = (u32)batch};
	u64 batches_total = (transfers + batch - 1) / batch;
	b.latencies_ns = calloc(batches_total + 1, sizeof(u64));
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	if (!slots || !b.latencies_ns)
		goto cleanup;
	for (u64 i = 0; i < window; i++) {
		slots[i].events =
			calloc(BATCH_EVENTS_MAX, sizeof(struct transfer));
		slots[i].results = calloc(BATCH_EVENTS_MAX, sizeof(u32));
		if (!slots[i].events || !slots[i].results)
			goto cleanup;
	}
	if (engine_open(&e, &eo, &err) < 0) {
		fprintf(stderr, "tpwallet bench: %s\n",
			err ? err : "cannot open");
		goto cleanup;
	}

	if (with_audit && audit_open(&audit, data, e, NULL, &err) < 0) {
		fprintf(stderr, "tpwallet bench: audit: %s\n", err ? err : "?");
		goto cleanup;
	}

	/* Accounts, in full batches, one at a time. */
	u64 t_acc = mono_ns();
	{
		struct account *acc = calloc(BATCH_EVENTS_MAX, sizeof(*acc));
		u32 *res = calloc(BATCH_EVENTS_MAX, sizeof(u32));
		if (!acc || !res) {
			free(acc);
			free(res);
			goto cleanup;
		}
		for (u64 done = 0; done < accounts;) {
			u32 n = (u32)(accounts - done < BATCH_EVENTS_MAX
					      ? accounts - done
					      : BATCH_EVENTS_MAX);
			for (u32 i = 0; i < n; i++) {
				memset(&acc[i], 0, sizeof(acc[i]));
				acc[i].id = (u128)(done + i + 1);
				acc[i].ledger = 1;
				acc[i].code = 1;
			}
			struct engine_request r = {.op = ENGINE_CREATE_ACCOUNTS,
						   .count = n,
						   .events = acc,
						   .results = res};
			if (engine_execute(e, &r) < 0) {
				fprintf(stderr, "tpwallet bench: create "
						"accounts failed\n");
				free(acc);
				free(res);
				goto cleanup;
			}
			done += n;
		}
		free(acc);
		free(res);
	}
	t_acc = mono_ns() - t_acc;

	/* Transfers: keep `window` batches in flight. */
	u64 rng = seed, sent = 0;
	u64 t0 = mono_ns();
	while (sent < transfers) {
		pthread_mutex_lock(&b.lock);
		while (b.in_flight == window)
			pthread_cond_wait(&b.cond, &b.lock);
		struct slot *sl = NULL;
		for (u64 i = 0; i < window; i++)
			if (!slots[i].busy) {
				sl = &slots[i];
				break;
			}
		/* in_flight < window, so a slot is free. */
		if (!sl)
			abort();
		sl->busy = true;
		b.in_flight++;
		pthread_mutex_unlock(&b.lock);

		u32 n = (u32)(transfers - sent < batch ? transfers - sent
						       : batch);
		for (u32 i = 0; i < n; i++) {
			struct transfer *t = &sl->events[i];
			u64 r = splitmix(&rng);
			u64 d = r % accounts, k = (r >> 32) % (accounts - 1);
			memset(t, 0, sizeof(*t));
			t->id = ((u128)splitmix(&rng) << 64) | (sent + i + 1);
			t->debit_account_id = d + 1;
			t->credit_account_id = (d + 1 + k) % accounts + 1;
			t->amount = 1 + (r >> 48) % 1000;
			t->ledger = 1;
			t->code = 1;
		}
		sl->req = (struct engine_request){.op = ENGINE_CREATE_TRANSFERS,
						  .count = n,
						  .events = sl->events,
						  .results = sl->results,
						  .done = on_done,
						  .ctx = &b};
		sl->submitted_ns = mono_ns();
		if (engine_submit(e, &sl->req) < 0) {
			fprintf(stderr, "tpwallet bench: submit failed\n");
			goto cleanup;
		}
		sent += n;
	}
	pthread_mutex_lock(&b.lock);
	while (b.in_flight > 0)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	u64 t_transfers = mono_ns() - t0;

	struct engine_stats es;
	struct ledger_stats ls;
	if (audit) {
		/* How long the tree takes to catch up with the journal. */
		struct engine_stats now;
		engine_stats(e, &now);
		u64 t_audit = mono_ns();
		while (audit_size(audit) < now.last_seq &&
		       audit_healthy(audit)) {
			struct timespec ms = {0, 1000000L};
			nanosleep(&ms, NULL);
		}
		audit_lag_ms = (mono_ns() - t_audit) / 1000000u;
		audit_close(audit);
		audit = NULL;
	}
	u8 digest_before[32], digest_after[32];
	engine_stats(e, &es);
	const struct ledger *l = engine_read_begin(e);
	ledger_stats(l, &ls);
	ledger_digest(l, digest_before);
	bool invariants = ledger_check_invariants(l);
	engine_read_end(e);
	u64 rss = rss_bytes();
	engine_close(e);
	e = NULL;

	/* Recovery: replay the whole journal. */
	u64 t_rec = mono_ns();
	if (engine_open(&e, &eo, &err) < 0) {
		fprintf(stderr, "tpwallet bench: recovery failed: %s\n",
			err ? err : "?");
		goto cleanup;
	}
	t_rec = mono_ns() - t_rec;
	struct engine_stats rs;
	engine_stats(e, &rs);
	l = engine_read_begin(e);
	ledger_digest(l, digest_after);
	engine_read_end(e);
	bool same = memcmp(digest_before, digest_after, 32) == 0;

	qsort(b.latencies_ns, b.latencies_n, sizeof(u64), cmp_u64);
	double secs = (double)t_transfers / 1e9;
	double tps = (double)transfers / secs;
	double p50 = b.latencies_n
			     ? (double)b.latencies_ns[b.latencies_n / 2] / 1e6
			     : 0;
	double p99 =
		b.latencies_n
			? (double)b.latencies_ns[b.latencies_n * 99 / 100] / 1e6
			: 0;
	u64 entries = accounts + transfers;
	double rec_eps = (double)entries / ((double)t_rec / 1e9);
	double idx_per_transfer =
		ls.transfers ? (double)ls.index_bytes /
				       (double)(ls.transfers + ls.accounts)
			     : 0;
	double sync_avg =
		es.sync_count ? (double)es.sync_sum_us / (double)es.sync_count
			      : 0;

	if (json) {
		printf("{\"accounts\":%llu,\"transfers\":%llu,\"batch\":%llu,"
		       "\"window\":%llu,\"durable\":%s,"
		       "\"transfers_per_second\":%.0f,\"seconds\":%.3f,"
		       "\"batch_latency_ms_p50\":%.3f,\"batch_latency_ms_p99\":"
		       "%.3f,"
		       "\"journal_groups\":%llu,\"fsync_us_avg\":%.1f,"
		       "\"failed_events\":%llu,"
		       "\"accounts_seconds\":%.3f,"
		       "\"recovery_entries\":%llu,\"recovery_seconds\":%.3f,"
		       "\"recovery_entries_per_second\":%.0f,"
		       "\"digest_equal_after_recovery\":%s,\"invariants_hold\":"
		       "%s,"
		       "\"index_bytes\":%llu,\"index_bytes_per_record\":%.1f,"
		       "\"record_bytes\":%llu,\"rss_bytes\":%llu,"
		       "\"journal_bytes\":%llu,\"audit\":%s,"
		       "\"audit_catch_up_ms\":%llu}\n",
		       (unsigned long long)accounts,
		       (unsigned long long)transfers, (unsigned long long)batch,
		       (unsigned long long)window, no_sync ? "false" : "true",
		       tps, secs, p50, p99, (unsigned long long)es.batches,
		       sync_avg, (unsigned long long)b.failures,
		       (double)t_acc / 1e9, (unsigned long long)entries,
		       (double)t_rec / 1e9, rec_eps, same ? "true" : "false",
		       invariants ? "true" : "false",
		       (unsigned long long)ls.index_bytes, idx_per_transfer,
		       (unsigned long long)ls.record_bytes,
		       (unsigned long long)rss,
		       (unsigned long long)es.journal_bytes,
		       with_audit ? "true" : "false",
		       (unsigned long long)audit_lag_ms);
	} else {
		printf("tpwallet bench: %llu accounts, %llu transfers in "
		       "batches "
		       "of %llu, %llu in flight, %s\n",
		       (unsigned long long)accounts,
		       (unsigned long long)transfers, (unsigned long long)batch,
		       (unsigned long long)window,
		       no_sync ? "NO fdatasync"
			       : "durable (fdatasync per group)");
		printf("  transfers/s            %12.0f  (%.2f s)\n", tps,
		       secs);
		printf("  batch latency p50/p99  %8.2f / %.2f ms\n", p50, p99);
		printf("  journal groups         %12llu  (fdatasync avg %.0f "
		       "us)\n",
		       (unsigned long long)es.batches, sync_avg);
		printf("  failed events          %12llu\n",
		       (unsigned long long)b.failures);
		printf("  recovery               %12.0f entries/s  (%llu "
		       "entries, %.2f s)\n",
		       rec_eps, (unsigned long long)entries,
		       (double)t_rec / 1e9);
		printf("  digest after recovery  %12s\n",
		       same ? "equal" : "DIFFERENT");
		printf("  invariants             %12s\n",
		       invariants ? "hold" : "BROKEN");
		printf("  index bytes/record     %12.1f  (%llu index, %llu "
		       "record bytes)\n",
		       idx_per_transfer, (unsigned long long)ls.index_bytes,
		       (unsigned long long)ls.record_bytes);
		printf("  resident memory        %12.1f MiB\n",
		       (double)rss / 1048576.0);
		if (with_audit)
			printf("  audit tree caught up   %12llu ms after the "
			       "last batch\n",
			       (unsigned long long)audit_lag_ms);
	}
	ret = (same && invariants && b.status == 0) ? 0 : EXIT_SOFTWARE;

cleanup:
	audit_close(audit);
	if (e)
		engine_close(e);
	if (slots)
		for (u64 i = 0; i < window; i++) {
			free(slots[i].events);
			free(slots[i].results);
		}
	free(slots);
	free(b.latencies_ns);
	/* Only the directory this command made with mkdtemp. */
	if (tmpdir[0])
		(void)fsdir_remove_tree(tmpdir);
	return ret;
}
