#!/usr/bin/env python3
"""inject.py - errors at every call (issue 20, item 2).

  inject.py --binary build/tpwallet --shim build/tests/recfs.so \\
            [--workload small] [--store 0|1] [--kinds rotate|all] \\
            [--jobs 2] [--from K] [--to K]

A clean run of the workload under the recorder counts its calls (N).
Then, for each k in 1..N, the workload runs again with the k-th recorded
call failing once (recfs.c's TPW_RECFS_FAIL): EIO, ENOSPC, or a short
write (a call that does not write fails with EIO there).  --kinds all
runs the three at every k; rotate (make crash) one per k, in turn.
Each run is tolerant: a refusal is noted, a server that stops ends it.
Then the server is stopped and its directory recovered
(`tpwallet recover --check --in-place`), and:
  - a reply acknowledged (2xx) is durable: the recovered seq is at least
    its seq, and the directory recovers (exit 0) once any was
    acknowledged; debits equal credits;
  - a refusal is one of tpwallet's problems (a Tpwallet-Problem header)
    with status 503 and a Retry-After header (docs/api.md: commit-unknown
    for the batch whose write failed, unavailable for every later change
    and for a key file that could not be written).
The refusals are summed by status, problem and Retry-After.
Exit 0 all green, 1 a check failed.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import workload  # noqa: E402

KINDS = ("EIO", "ENOSPC", "SHORT")


def judge(args, run):
    """None when the run passed, else why not."""
    acked = max([a["seq"] for a in run["acks"]] or [0])
    for r in run["refusals"]:
        if not r["problem"] or r["status"] != 503 or not r["retry_after"]:
            return ("refusal that is not a tpwallet problem with 503 and "
                    "Retry-After: %r" % r)
    if not os.path.isdir(run["data"]):
        return ("no data directory after %d acknowledged replies" % len(
            run["acks"])) if acked else None
    p = subprocess.run([args.binary, "recover", "--check", "--in-place",
                        run["data"]], env=run["env"], capture_output=True,
                       text=True, timeout=120)
    try:
        got = json.loads(p.stdout.strip().split("\n")[-1])
    except (ValueError, IndexError):
        got = None
    if p.returncode == 65:
        if acked:
            return ("refused to recover after seq %d was acknowledged: %s"
                    % (acked, got.get("error") if got else p.stderr))
        return None
    if p.returncode not in (0, 1) or not got or not got.get("ok"):
        return "recover exited %d: %r %s" % (p.returncode, got, p.stderr)
    if not got["balanced"]:
        return "debits differ from credits: %r" % got
    if got["seq"] < acked:
        return ("acknowledged seq %d lost: recovered only to seq %d"
                % (acked, got["seq"]))
    return None


def one(args, base, k, kind):
    where = tempfile.mkdtemp(prefix="k%d-" % k, dir=base)
    try:
        env = dict(os.environ, TPWALLET_STORE=str(args.store))
        env.pop("LD_PRELOAD", None)
        env.pop("TPWALLET_CONFIG", None)
        run = workload.run_injected(args.binary, args.shim, where,
                                    args.workload, env, "%d %s" % (k, kind))
        why = judge(args, run)
        if why:
            with open(run["log"], errors="replace") as f:
                why += "\nserver log (end):\n" + f.read()[-1500:]
        return k, kind, run, why
    finally:
        shutil.rmtree(where, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--workload", default="small",
                    choices=sorted(workload.WORKLOADS))
    ap.add_argument("--store", type=int, default=0, choices=[0, 1])
    ap.add_argument("--kinds", default="rotate", choices=["rotate", "all"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--from", dest="first", type=int, default=1)
    ap.add_argument("--to", dest="last", type=int, default=0)
    ap.add_argument("--verbose", action="store_true",
                    help="list the runs where the server stopped")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.shim = os.path.abspath(args.shim)

    base = tempfile.mkdtemp(prefix="tpw-inject-")
    try:
        env = dict(os.environ, TPWALLET_STORE=str(args.store))
        env.pop("LD_PRELOAD", None)
        env.pop("TPWALLET_CONFIG", None)
        clean = workload.record(args.binary, args.shim,
                                os.path.join(base, "clean"), args.workload,
                                env)
        last = args.last or clean["calls"]
        cases = []
        for k in range(args.first, last + 1):
            kinds = KINDS if args.kinds == "all" else (KINDS[k % 3],)
            cases.extend((k, kind) for kind in kinds)
        t0 = time.monotonic()
        seen = collections.Counter()
        stops = failed = 0
        stopped = collections.Counter()  # injected call -> stops
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futs = [pool.submit(one, args, base, k, kind)
                    for k, kind in cases]
            for fut in futs:
                k, kind, run, why = fut.result()
                for r in run["refusals"]:
                    seen[(r["status"], r["problem"],
                          "Retry-After" if r["retry_after"] else
                          "no Retry-After")] += 1
                if run["stopped"] is not None:
                    stops += 1
                    where = run["injected"][0] if run["injected"] else "-"
                    stopped[where.split(" ", 1)[-1][:48]] += 1
                if why:
                    failed += 1
                    print("FAILED: %s at call %d (%s): %s"
                          % (kind, k, "; ".join(run["injected"]) or
                             "never reached", why))
        took = time.monotonic() - t0
        if args.verbose:
            for what, n in sorted(stopped.items()):
                print("stopped %d x after injecting at %s" % (n, what))
        print("refusals seen: " + (", ".join(
            "%d x %s %s (%s)" % (n, s, p, ra)
            for (s, p, ra), n in sorted(seen.items())) or "none"))
        print("error injection (%s, store = %d, %s): %d calls in the clean "
              "run, %d runs (calls %d..%d), %d where the server stopped, "
              "in %.1f s (%.0f runs/min): %d passed, %d failed"
              % (args.workload, args.store, args.kinds, clean["calls"],
                 len(cases), args.first, last, stops, took,
                 60.0 * len(cases) / took if took else 0,
                 len(cases) - failed, failed))
        return 1 if failed else 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
