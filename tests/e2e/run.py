#!/usr/bin/env python3
"""run.py - black-box tests that start the real `tpwallet serve`.

    python3 tests/e2e/run.py --binary build/tpwallet [-k PATTERN]
                             [--sanitized] [--keep] [--one-process]
                             [--skip-heavy] [--jobs N] [-v]

Standard library only.  Each test gets its own temp dir; every server it
starts binds 127.0.0.1 on a free port and is killed when the test ends,
passed or failed.  On failure the tail of each server's log is printed.
The last line is always `e2e: N passed, M failed`; the exit
status is non-zero when anything failed.

Tests registered with waits=True spend their time waiting for the wall
clock (an override's or a certificate's end): they run in a second
process beside the others (its output is printed, prefixed `side|`, at
the end, and counted), unless --one-process.

--jobs N: the other tests are dealt in turn to N processes (the extra
ones' output prefixed `w1|`...); the heavy suites run last, once the
workers ended.  `make test` uses 2: most of a test's time is spent
waiting (a server's start, fsync, a deadline), not on a core.  Each
failure is repeated shortly before the closing line.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import TestFailure  # noqa: E402

# Test modules register themselves with @e2e_test on import.
import test_cli  # noqa: E402,F401
import test_buildinfo  # noqa: E402,F401
import test_release  # noqa: E402,F401
import test_upgrade  # noqa: E402,F401
import test_stop  # noqa: E402,F401
import test_openapi  # noqa: E402,F401
import test_console  # noqa: E402,F401
import test_man  # noqa: E402,F401
import test_systemd  # noqa: E402,F401
import test_deb  # noqa: E402,F401
import test_grafana  # noqa: E402,F401
import test_container  # noqa: E402,F401
import test_kubernetes  # noqa: E402,F401
import test_cli_https  # noqa: E402,F401
import test_tls  # noqa: E402,F401
import test_outbound_tls  # noqa: E402,F401
import test_outbound_allow  # noqa: E402,F401
import test_acquirer  # noqa: E402,F401
import test_tls_ocsp  # noqa: E402,F401
import test_tls_standby  # noqa: E402,F401
import test_tls_expiry  # noqa: E402,F401
import test_tls_renewal  # noqa: E402,F401
import test_mtls  # noqa: E402,F401
import test_api  # noqa: E402,F401
import test_bad_input  # noqa: E402,F401
import test_vault  # noqa: E402,F401
import test_durability  # noqa: E402,F401
import test_store  # noqa: E402,F401
import test_backup  # noqa: E402,F401
import test_observability  # noqa: E402,F401
import test_audit  # noqa: E402,F401
import test_audit_tiles  # noqa: E402,F401
import test_audit_cli  # noqa: E402,F401
import test_audit_decoded  # noqa: E402,F401
import test_override_expiry  # noqa: E402,F401
import test_doctor  # noqa: E402,F401
import test_keyring  # noqa: E402,F401
import test_key_rotation  # noqa: E402,F401
import test_hsm  # noqa: E402,F401
import test_witness  # noqa: E402,F401
import test_authz  # noqa: E402,F401
import test_authz_routes  # noqa: E402,F401
import test_cli_mandate  # noqa: E402,F401
import test_authz_limits  # noqa: E402,F401
import test_client_policy  # noqa: E402,F401
import test_policy_guard  # noqa: E402,F401
import test_admins  # noqa: E402,F401
import test_admins_guard  # noqa: E402,F401
import test_client_channel  # noqa: E402,F401
import test_gate_watch  # noqa: E402,F401
import test_alert_rules  # noqa: E402,F401
import test_security  # noqa: E402,F401
import test_netguard  # noqa: E402,F401
import test_receipts  # noqa: E402,F401
import test_probe  # noqa: E402,F401
import test_tracing  # noqa: E402,F401
import test_docs  # noqa: E402,F401
import test_incident_drill  # noqa: E402,F401
import test_bench_store  # noqa: E402,F401
import test_bench_history  # noqa: E402,F401
import test_cluster  # noqa: E402,F401
import test_retention  # noqa: E402,F401
import test_cdc  # noqa: E402,F401


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


def _on_term(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def kill_leftovers():
    n = 0
    for s in list(harness.ALL_SERVERS):
        if s.alive():
            n += 1
        s.force_cleanup()
    return n


def start_side(args, names, label="side", why="waiting test(s) run beside "
               "the others"):
    """Tests in a second run.py beside this one (the waiting ones, or a
    worker's share with --jobs); its output goes to a file, printed when
    it ends."""
    cmd = [sys.executable, os.path.abspath(__file__),
           "--side" if label == "side" else "--one-process",
           "--binary", harness.CONFIG["binary"]]
    if args.sanitized:
        cmd.append("--sanitized")
    if args.keep:
        cmd.append("--keep")
    if args.skip_heavy:
        cmd.append("--skip-heavy")
    for n in names:
        cmd += ["-k", "^%s$" % re.escape(n)]
    out = tempfile.TemporaryFile(mode="w+")
    print("e2e: %d %s: %s" % (len(names), why, ", ".join(names)))
    sys.stdout.flush()
    return (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT),
            out, names, label)


def finish_side(side):
    """Wait for the second process (its tests bound their own time),
    print its output and return (passed, failed, names failed)."""
    proc, out, names, label = side
    status = proc.wait()
    out.seek(0)
    text = out.read()
    out.close()
    passed = failed = 0
    failures = []
    for line in text.splitlines():
        print("%s| %s" % (label, line))
        m = re.match(r"e2e: (\d+) passed, (\d+) failed$", line)
        if m:
            passed, failed = int(m.group(1)), int(m.group(2))
        m = re.match(r"FAIL  (\S+)", line)
        if m:
            failures.append(m.group(1))
    if passed + failed != len(names) or (status != 0 and failed == 0):
        # It died before its summary: every test it did not pass failed.
        failed = max(failed, len(names) - passed, 1)
        failures.append("(the %s process, status %d)" % (label, status))
    sys.stdout.flush()
    return passed, failed, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/tpwallet")
    ap.add_argument("--sanitized", action="store_true",
                    help="sanitizer build: scale loops down, waits up")
    ap.add_argument("-k", dest="pattern", action="append", default=[],
                    help="run tests whose name contains PATTERN (or "
                         "matches it as a regex); repeatable")
    ap.add_argument("--keep", action="store_true",
                    help="keep every test's temp dir (failed ones are "
                         "always kept)")
    ap.add_argument("--list", action="store_true", help="list tests")
    ap.add_argument("--skip-heavy", action="store_true",
                    help="leave out the heavy suites (heavy=True: a "
                         "PostgreSQL cluster): make test runs them once")
    ap.add_argument("--one-process", action="store_true",
                    help="run the waiting tests in this process too")
    ap.add_argument("--jobs", type=int, default=1,
                    help="run the tests that do not wait in N processes "
                         "(the heavy ones stay in the first)")
    ap.add_argument("--side", action="store_true",
                    help=argparse.SUPPRESS)  # the second process itself
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    harness.CONFIG["binary"] = os.path.abspath(args.binary)
    harness.CONFIG["sanitized"] = args.sanitized

    tests = harness.TESTS
    if args.pattern:
        def wanted(name):
            for p in args.pattern:
                if p in name:
                    return True
                try:
                    if re.search(p, name):
                        return True
                except re.error:
                    pass
            return False
        tests = [t for t in tests if wanted(t[0])]
    if args.skip_heavy:
        tests = [t for t in tests if not t[4]]
    if args.list:
        for name, _, _, _, _ in tests:
            print(name)
        return 0
    side = None
    if args.side:
        tests = [t for t in tests if t[3]]
    elif not args.one_process and any(t[3] for t in tests) and \
            not all(t[3] for t in tests):
        side = start_side(args, [t[0] for t in tests if t[3]])
        tests = [t for t in tests if not t[3]]
    # --jobs N: N-1 workers take every Nth test that neither waits nor is
    # heavy (a heavy suite runs outside processes that one at a time
    # fits: a PostgreSQL cluster, dpkg), in the declared order.
    workers = []
    if args.jobs > 1 and not args.side and not args.one_process:
        light = [t for t in tests if not t[4]]
        shares = [light[i::args.jobs] for i in range(1, args.jobs)]
        given = set()
        for i, share in enumerate(shares):
            if share:
                workers.append(start_side(
                    args, [t[0] for t in share], "w%d" % (i + 1),
                    "test(s) in worker w%d" % (i + 1)))
                given.update(t[0] for t in share)
        # The heavy ones last, alone but for the waiting side: the
        # workers are joined before the first (a cluster's leases and
        # failover times would feel two more processes' load).
        tests = [t for t in tests if t[0] not in given and not t[4]] + \
            [t for t in tests if t[4]]

    passed = failed = 0
    failures = []
    reasons = []  # (name, detail) of each failure, for the summary
    took = []
    if not os.access(harness.CONFIG["binary"], os.X_OK):
        print("e2e: binary %s not found or not executable"
              % harness.CONFIG["binary"])
        print("e2e: 0 passed, %d failed" % max(1, len(tests)))
        return 1

    root = tempfile.mkdtemp(prefix="tpwallet-e2e-")
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    t_suite = time.monotonic()
    print("e2e: %d tests, binary %s%s, temp %s"
          % (len(tests), harness.CONFIG["binary"],
             " (sanitized)" if args.sanitized else "", root))
    sys.stdout.flush()
    interrupted = False
    try:
        for name, fn, limit, _, heavy in tests:
            if heavy and workers:
                for w in workers:
                    p, f, names = finish_side(w)
                    passed += p
                    failed += f
                    failures += names
                workers = []
            limit = limit * harness.slow_factor()
            ctx = harness.Ctx(name, root)
            t0 = time.monotonic()
            outcome, detail = "ok", ""
            try:
                signal.setitimer(signal.ITIMER_REAL, limit)
                try:
                    fn(ctx)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                outcome, detail = "FAIL", "interrupted"
                interrupted = True
            except TestTimeout:
                outcome = "FAIL"
                detail = "timed out after %.0fs\n%s" % (
                    limit, traceback.format_exc(limit=-4))
            except TestFailure as e:
                outcome = "FAIL"
                tb = traceback.extract_tb(e.__traceback__)
                where = ""
                for fr in reversed(tb):
                    if os.path.basename(fr.filename).startswith("test_"):
                        where = " (%s:%d)" % (os.path.basename(fr.filename),
                                              fr.lineno)
                        break
                detail = str(e) + where
            except Exception:
                outcome, detail = "FAIL", traceback.format_exc()
            finally:
                for s in ctx.servers:
                    s.force_cleanup()
            dt = time.monotonic() - t0
            took.append((dt, name))
            if outcome == "ok":
                passed += 1
                print("ok    %-62s %6.2fs" % (name, dt))
                for line in ctx.notes:
                    print("      " + line)
                if not args.keep:
                    shutil.rmtree(ctx.dir, ignore_errors=True)
            else:
                failed += 1
                failures.append(name)
                reasons.append((name, detail))
                print("FAIL  %-62s %6.2fs" % (name, dt))
                for line in ctx.notes:
                    print("      " + line)
                for line in detail.rstrip().splitlines():
                    print("      " + line)
                for i, s in enumerate(ctx.servers):
                    print("      --- tail of server %d log (%s) ---"
                          % (i, s.log_path))
                    for line in harness.tail(s.log_path, 30).splitlines():
                        print("      | " + line[:400])
                print("      (temp dir kept: %s)" % ctx.dir)
            sys.stdout.flush()
            if interrupted:
                break
    finally:
        if interrupted:
            for w in workers + ([side] if side is not None else []):
                w[0].terminate()
        left = kill_leftovers()
        if left:
            print("e2e: killed %d server(s) left running" % left)
        try:
            os.rmdir(root)  # only when every test dir was removed
        except OSError:
            pass

    for w in workers + ([side] if side is not None else []):
        p, f, names = finish_side(w)
        passed += p
        failed += f
        failures += names
    print("e2e: suite took %.1fs%s" % (
        time.monotonic() - t_suite,
        ("; failed: " + ", ".join(failures)) if failures else ""))
    # Where the suite's time goes: the ten slowest tests, for keeping
    # `make test` within its budget.
    took.sort(reverse=True)
    print("e2e: slowest: " + ", ".join(
        "%s %.1fs" % (name, dt) for dt, name in took[:10]))
    # Each failure again, shortly, beside the summary: a log cut to its
    # head and tail (CI keeps only those) still says why.
    for name, detail in reasons:
        lines = [l.strip() for l in detail.strip().splitlines() if l.strip()]
        print("e2e: FAILED %s: %s" % (name, " | ".join(lines[:6])[:1200]))
    summary = "e2e: %d passed, %d failed" % (passed, failed)
    print(summary)
    sys.stdout.flush()
    return 1 if failed or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
