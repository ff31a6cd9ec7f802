"""test_bench_history.py - `tpwallet bench --history N` (issue 12): at a
small N, with a cache small enough that the store answers the lookups,
it runs every phase (empty ledger, preload, batches at N, one entry per
transfer, lookups and pages cold and warm, a clean restart, a kill -9
restart), finds every old transfer it looks up, and the state digest is
the same after the restart.  Behaviour, never time.
"""

import json
import os

from harness import e2e_test, run_cli, check, check_eq

FIGURES = ("preload_transfers_per_second", "empty_transfers_per_second",
           "transfers_per_second", "ratio_to_empty",
           "single_transfers_per_second", "rss_anon_bytes",
           "restart_kill9_seconds", "restart_clean_seconds",
           "lookup_cold_us_p99", "lookup_warm_us_p99", "page_cold_us_p99",
           "page_warm_us_p99", "store_bytes", "journal_bytes")


def run_history(ctx, ids):
    history, measured, single, lookups = 20000, 5000, 300, 100
    # 1 MiB of cache keeps 3,276 transfers in memory: most of the
    # 25,300 made are read back from the store.
    p = run_cli(["bench", "--history", str(history), "--transfers",
                 str(measured), "--single", str(single), "--accounts", "200",
                 "--lookups", str(lookups), "--cache-bytes", "1048576",
                 "--ids", ids, "--json"], timeout=120,
                env={"TMPDIR": ctx.dir}, cwd=ctx.dir)
    check_eq(p.returncode, 0, "bench --history --ids %s exit status "
             "(stderr %r)" % (ids, p.stderr[-800:]))
    doc = json.loads(p.stdout)
    check_eq(doc["mode"], "history", "mode")
    check_eq(doc["path"], "engine", "preload path")
    check_eq(doc["ids"], ids, "id pattern")
    check_eq(doc["history"], history, "history")
    check_eq(doc["measured"], measured, "measured transfers")
    check_eq(doc["single"], single, "single-entry transfers")
    check_eq(doc["cache_bytes"], 1048576, "cache_bytes")
    for name in FIGURES:
        check(doc[name] > 0, "ids=%s: %s is %r" % (ids, name, doc[name]))
    check_eq(doc["lookups"], 2 * lookups, "lookups made")
    check_eq(doc["lookups_found"], 2 * lookups, "old transfers found")
    check_eq(doc["failed_events"], 0, "failed events")
    # 200 accounts, 25,300 transfers: 253 per account on average (a
    # standard deviation of about 16), so every page is full.
    check_eq(doc["page_rows_avg"], 100.0, "rows per account page")
    check(doc["disk_bytes_per_transfer"] >= 128,
          "disk bytes per transfer %r" % doc["disk_bytes_per_transfer"])
    check(doc["digest_equal_after_restart"] is True,
          "digest after the restart: %r" % doc["digest_equal_after_restart"])
    check_eq(os.listdir(ctx.dir), [], "bench left files in TMPDIR")


@e2e_test(timeout=300)
def test_bench_history_random_ids_reports_every_figure_and_equal_digest(ctx):
    run_history(ctx, "random")


@e2e_test(timeout=300)
def test_bench_history_time_ids_reports_every_figure_and_equal_digest(ctx):
    run_history(ctx, "time")
