"""test_bench_store.py - bench/bench_store.c, the measurement of issue 12
(RocksDB against LMDB for the history store), runs both engines on both
id patterns and finds what it inserted: behaviour, never time.

The program is built by `make bench-build` (and by `make e2e`) beside the
binary under test (build/bench/bench_store); when it is not there, the
plain build's is made with `make build/bench/bench_store`.
"""

import json
import os
import subprocess

from harness import CONFIG, e2e_test, check, check_eq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def bench_store():
    beside = os.path.join(os.path.dirname(os.path.abspath(CONFIG["binary"])),
                          "bench", "bench_store")
    if os.path.exists(beside):
        return beside
    plain = os.path.join(ROOT, "build", "bench", "bench_store")
    p = subprocess.run(["make", "--no-print-directory", "-s", "-C", ROOT,
                        "build/bench/bench_store"], capture_output=True,
                       text=True, timeout=600)
    check_eq(p.returncode, 0, "make build/bench/bench_store (%s)"
             % p.stderr[-500:])
    return plain


@e2e_test(timeout=600)
def test_bench_store_runs_both_engines_and_finds_every_inserted_id(ctx):
    transfers, lookups = 30000, 500
    env = dict(os.environ, TMPDIR=ctx.dir)
    # The sanitizers' leak report is about RocksDB's process-wide state,
    # not this workload; the figures' behaviour is what is checked here.
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    p = subprocess.run([bench_store(), "--transfers", str(transfers),
                        "--lookups", str(lookups), "--verify", "--json"],
                       capture_output=True, text=True, timeout=540,
                       env=env, cwd=ctx.dir)
    check_eq(p.returncode, 0, "bench_store exit status (stderr %r)"
             % p.stderr[-800:])
    doc = json.loads(p.stdout)
    check_eq(doc["transfers"], transfers, "transfers")
    check_eq(doc["batch"], 8190, "batch size")
    runs = {(r["store"], r["ids"]): r for r in doc["runs"]}
    check_eq(sorted(runs), [("lmdb", "random"), ("lmdb", "time"),
                            ("rocksdb", "random"), ("rocksdb", "time")],
             "configurations run")
    for key, r in sorted(runs.items()):
        what = "%s ids=%s" % key
        check(r["ok"] is True, "%s did not finish" % what)
        check_eq(r["verified"], transfers,
                 "%s: inserted transfers found intact" % what)
        check_eq(r["found_existing"], lookups,
                 "%s: cold lookups of inserted ids that found them" % what)
        check_eq(r["found_absent"], 0,
                 "%s: lookups of absent ids that found one" % what)
        # 30,000 transfers over 3,000 accounts: two index entries each,
        # so an account holds 20 on average; pages are not empty.
        check(15 <= r["page_rows_avg"] <= 25,
              "%s: rows per account page %r" % (what, r["page_rows_avg"]))
        for name in ("insert_tps", "disk_bytes_per_transfer",
                     "get_cold_p99_us", "page_cold_p99_us",
                     "rss_anon_end_mib"):
            check(r[name] > 0, "%s: %s %r" % (what, name, r[name]))
        # The store's own bytes: at least the 128-byte records.
        check(r["disk_bytes_per_transfer"] >= 128,
              "%s: %r disk bytes per transfer" % (what,
                                                  r["disk_bytes_per_transfer"]))
    check_eq(os.listdir(ctx.dir), [], "bench_store left files in TMPDIR")
