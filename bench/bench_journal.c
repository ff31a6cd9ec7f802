/*
 * bench_journal.c - figures for the journal: group-commit append+sync
 * throughput, and recovery scan speed.  Prints numbers; never fails on
 * time.
 *
 *   1. append+sync: groups of 8190 transfer records (one 128-byte event
 *      each, 160 bytes on disk), one journal_sync (write + fdatasync) per
 *      group, for ~1 GB by default;
 *   2. recovery: journal_open over the journal just written (CRC-32C of
 *      every byte, seq/timestamp checks, a replay callback), page cache
 *      warm.  Drop caches (echo 3 > /proc/sys/vm/drop_caches) before a
 *      second run with BENCH_SCAN_ONLY=1 to measure a cold disk.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_journal [dir [megabytes]]    (default /tmp/tpw-bench,
 * 1024)
 */
#include "log/journal.h"
#include "log/fsdir.h"
#include "core/strerror.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

#define GROUP_RECORDS 8190u
#define EVENT_BYTES   128u

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count(void *ctx, const struct journal_record *r)
{
	u64 *n = ctx;
	(*n) += r->payload_bytes / EVENT_BYTES;
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/tpw-bench";
	u64 mb = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
	u64 records = mb * 1024 * 1024 / (JOURNAL_HEADER_BYTES + EVENT_BYTES);
	u64 groups = (records + GROUP_RECORDS - 1) / GROUP_RECORDS;
	struct journal *j = NULL;
	const char *err = NULL;
	u8 ev[EVENT_BYTES];
	u64 seen = 0;
	int rc;

	if (!getenv("BENCH_SCAN_ONLY")) {
		char jdir[4200];
		snprintf(jdir, sizeof(jdir), "%s/journal", dir);
		rc = fsdir_remove_tree(jdir);
		if (rc != 0 && rc != -ENOENT)
			return 1;
		rc = journal_open(&j, dir, NULL, 0, NULL, NULL, &err);
		if (rc != 0) {
			fprintf(stderr, "open: %s\n",
				err ? err : tpw_strerror(-rc));
			return 1;
		}
		memset(ev, 0x5a, sizeof(ev));
		double t0 = now_s(), sync_max = 0;
		u64 ts = 1;
		for (u64 g = 0; g < groups; g++) {
			for (u32 i = 0; i < GROUP_RECORDS; i++) {
				memcpy(ev, &ts, sizeof(ts));
				rc = journal_append(j, JOURNAL_CREATE_TRANSFERS,
						    ts++, ev, EVENT_BYTES,
						    NULL);
				if (rc != 0)
					return 1;
			}
			double s0 = now_s();
			rc = journal_sync(j);
			if (rc != 0) {
				fprintf(stderr, "sync: %s\n",
					tpw_strerror(-rc));
				return 1;
			}
			if (now_s() - s0 > sync_max)
				sync_max = now_s() - s0;
		}
		double t = now_s() - t0;
		u64 n = groups * GROUP_RECORDS;
		printf("append+sync: %llu records in %llu groups of %u, "
		       "%.2f s: %.0f records/s, %.0f MB/s, %.0f syncs/s, "
		       "slowest sync %.1f ms\n",
		       (unsigned long long)n, (unsigned long long)groups,
		       GROUP_RECORDS, t, (double)n / t,
		       (double)journal_size_bytes(j) / t / 1e6,
		       (double)groups / t, sync_max * 1e3);
		journal_close(j);
	}

	double t0 = now_s();
	rc = journal_open(&j, dir, NULL, 0, count, &seen, &err);
	double t = now_s() - t0;
	if (rc != 0) {
		fprintf(stderr, "recovery: %s\n",
			err ? err : tpw_strerror(-rc));
		return 1;
	}
	printf("recovery scan: %llu records, %.0f MB in %.2f s: %.0f "
	       "records/s, %.0f MB/s\n",
	       (unsigned long long)seen, (double)journal_size_bytes(j) / 1e6, t,
	       (double)seen / t, (double)journal_size_bytes(j) / t / 1e6);
	journal_close(j);
	return 0;
}
