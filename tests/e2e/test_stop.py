"""test_stop.py - a server that stops gracefully and keeps its secrets out
of core dumps (issue 23, item 5; docs/operations.md, "Stopping").

SIGTERM: /readyz answers "draining" for shutdown_drain_s while every
other route still serves; then new requests are refused, the accepted
ones finish, and the process exits 0.  A request stuck in the engine (a
disk that stopped answering: tests/e2e/failsync.c's stall) holds the
stop no longer than shutdown_timeout_s.  Core dumps are off unless
core_dumps = 1.
"""

import os
import resource
import signal
import threading
import time

from harness import build_shim, check, check_eq, e2e_test, slow_factor
from ledger import account, create, transfer


def _core_limit(pid):
    """The soft and hard 'Max core file size' of a process, as text."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    return None


@e2e_test(timeout=60)
def test_sigterm_drains_readyz_first_serves_meanwhile_and_exits_0(ctx):
    s = ctx.start_server(env={"TPWALLET_SHUTDOWN_DRAIN_S": "3"})
    create(s, "accounts", [account(1), account(2)])
    check_eq(s.get("/readyz").status, 200, "/readyz before")
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    # Within the drain: /readyz says draining, everything else serves,
    # a change included.
    deadline = t0 + 2 * slow_factor()
    r = s.get("/readyz")
    while r.status == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        r = s.get("/readyz")
    check_eq(r.status, 503, "/readyz while draining")
    check("draining" in r.json().get("detail", ""),
          "/readyz says why: %r" % r.json())
    check_eq(s.get("/healthz").status, 200, "/healthz while draining")
    r = s.post("/v1/transfers", transfer(5, 1, 2, 3))
    check_eq(r.status, 201, "a transfer while draining: %r" % r)
    # A SIGHUP while draining still reloads (the ninth review's F5: it
    # was taken by the drain's wait and lost).
    s.proc.send_signal(signal.SIGHUP)
    check(time.monotonic() - t0 < 3, "the drain did not last its 3 s")
    # Then it stops, exit 0, having said so.
    check(s._exited_unreaped(15 * slow_factor()),
          "the server did not exit after its drain")
    rc = s.stop()
    check_eq(rc, 0, "exit status after the drain")
    took = time.monotonic() - t0
    check(took >= 3, "exited after %.1f s, before its 3 s drain" % took)
    log = s.log_text()
    check('"draining"' in log and '"stopping"' in log,
          "the log says draining, then stopping")
    check("SIGHUP: no TLS files to reload" in log,
          "the SIGHUP during the drain was handled")
    # The transfer accepted while draining is there after a restart.
    s.start()
    check_eq(s.get("/v1/transfers/5").status, 200, "the drained transfer")
    s.stop()


@e2e_test(timeout=90)
def test_a_stuck_request_holds_the_stop_no_longer_than_its_bound(ctx):
    shim = build_shim(ctx, "failsync.c")
    stall = ctx.path("stall-now")
    s = ctx.start_server(env={"LD_PRELOAD": shim,
                              "TPW_STALL_SYNC_FLAG": stall,
                              "TPWALLET_SHUTDOWN_TIMEOUT_S": "2"})
    create(s, "accounts", [account(1), account(2)])
    open(stall, "w").close()
    got = {}

    def stuck():
        try:
            c = s.new_client(timeout=30 * slow_factor())
            got["r"] = c.post("/v1/transfers", transfer(9, 1, 2, 4))
        except OSError as e:
            got["error"] = e

    t = threading.Thread(target=stuck, daemon=True)
    t.start()
    time.sleep(0.5)  # the request reaches the engine's stalled commit
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    check(s._exited_unreaped(20 * slow_factor()),
          "the server did not exit with a request stuck")
    took = time.monotonic() - t0
    rc = s.stop(expect_clean=False)
    check_eq(rc, 70, "exit status past shutdown_timeout_s")
    check(took >= 2, "exited after %.1f s, before its 2 s bound" % took)
    t.join(10)
    check("r" not in got or got["r"].status >= 500,
          "the stuck request was acknowledged: %r" % got)
    log = s.log_text()
    check("not done within shutdown_timeout_s" in log and
          '"waiting_for":"the requests accepted"' in log,
          "the log names what the stop waited for: %r" % log[-600:])
    os.unlink(stall)
    s.env.pop("LD_PRELOAD", None)
    s.start()
    a1 = s.get("/v1/accounts/1").json()
    a2 = s.get("/v1/accounts/2").json()
    check_eq(a1["debits_posted"], a2["credits_posted"],
             "debits equal credits after the cut-short stop")
    s.stop()


@e2e_test(timeout=60)
def test_core_dumps_are_off_unless_core_dumps_is_1(ctx):
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    want = hard if hard != 0 else 1 << 20
    if (soft, hard) != (want, want):
        # Raise this process's limit (children inherit it), so that a
        # server leaving it alone is told apart from one setting 0.
        resource.setrlimit(resource.RLIMIT_CORE, (want, want))
    try:
        s = ctx.start_server()
        check_eq(_core_limit(s.proc.pid), ["0", "0"],
                 "a server's core size limits")
        s.stop()
        s2 = ctx.start_server(env={"TPWALLET_CORE_DUMPS": "1"})
        lim = _core_limit(s2.proc.pid)
        check(lim != ["0", "0"], "core_dumps = 1 left the limit: %r" % lim)
        check("core_dumps = 1" in s2.log_text(),
              "core_dumps = 1 is warned about")
        s2.stop()
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
