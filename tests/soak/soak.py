#!/usr/bin/env python3
"""soak.py - a bounded long run that holds memory flat (issue 20, item 4).

  soak.py --binary build/tpwallet [--duration-s 3600] [--sample-s 5]
          [--restart-every-s 600] [--rotate-every-s 120] [--fraction 0.5]
          [--cache-bytes 8388608] [--workers 2] [--out DIR] [--json]

Starts `tpwallet serve` (store = 1 with a small cache, so the history
tier's bound is reached early) on a loopback port and drives it at a
steady fraction of what the driver measured as capacity in a calibration
burst, with mixed requests: batches of transfers, transfer lookups,
account pages and balances.  On the way it rotates the signing key,
changes the client policy and restarts the server, alternately with
SIGTERM and SIGKILL.  Every sample_s seconds it records the server's
resident memory (RssAnon and VmRSS from /proc), open descriptors,
threads, the requests done and their latency (p50, p99).

Verdict (exit 1 on a failure, naming it):
  - every acknowledged transfer is found after the run (sampled: at most
    2000 lookups), and debits equal credits;
  - no request failed but while the server restarted;
  - nothing grows without bound.  A lifetime (one process, from a start
    to a restart) is judged on its steady part (after its first third):
    the peaks of descriptors and threads in its second half may not
    exceed those of its first half by more than 8 and 2; memory's
    (RssAnon's, which rises and falls with each store flush) by more
    than 10% plus 16 MiB; and across lifetimes the steady peak of the last may
    not exceed the first's by more than 20% plus 16 MiB.  Latency is
    reported and plotted, never a pass or fail.

Writes DIR/soak.json (every sample, the events and the verdict) and
DIR/soak.svg (memory, descriptors, threads and p99 latency over time,
events marked).  Prints a line per sample and a summary.
"""

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import harness  # noqa: E402
from harness import Server  # noqa: E402
from ledger import account, transfer  # noqa: E402

ACCOUNTS = 1000
BATCH = 1  # transfers per write request: a wallet's one payment
POLICIES = [{"platforms": {"android": {"min_supported": "1.%d.0" % k}}}
            for k in range(4)]


def proc_figures(pid):
    """RssAnon and VmRSS (bytes), threads, descriptors of pid."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "VmRSS"):
                out[k] = int(v.split()[0]) * 1024
            elif k == "Threads":
                out["threads"] = int(v)
    out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    return out


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


class Driver:
    """Worker threads sending the mixed load at a paced rate; each keeps
    the ids it had acknowledged and the latencies of the current
    interval."""

    def __init__(self, srv, workers, seed):
        self.srv = srv
        self.workers = workers
        self.rate = None  # requests/s over all workers; None: flat out
        self.lock = threading.Lock()
        self.lat = []
        self.done = 0
        self.errors = 0
        self.errors_in_restart = 0
        self.restarting = threading.Event()
        self.stop = threading.Event()
        self.acked = []
        self.next_id = 1 << 40
        self.rng = random.Random(seed)
        self.threads = []

    def new_ids(self, n):
        with self.lock:
            first = self.next_id
            self.next_id += n
        return list(range(first, first + n))

    def one(self, c, rng):
        k = rng.random()
        if k < 0.5 or not self.acked:
            ids = self.new_ids(BATCH)
            body = []
            for i in ids:
                d = rng.randrange(1, ACCOUNTS + 1)
                cr = d % ACCOUNTS + 1
                body.append(transfer(i, d, cr, rng.randrange(1, 100)))
            r = c.post("/v1/transfers", body, retry=False)
            ok = r.status == 200 and all(
                x.get("status") == "created" for x in r.json())
            if ok:
                with self.lock:
                    self.acked.extend(ids)
            return ok
        if k < 0.8:
            with self.lock:
                i = self.acked[rng.randrange(len(self.acked))]
            return c.get("/v1/transfers/%d" % i, retry=False).status == 200
        a = rng.randrange(1, ACCOUNTS + 1)
        if k < 0.9:
            path = "/v1/accounts/%d/transfers?limit=10" % a
        else:
            path = "/v1/accounts/%d/balances?limit=10" % a
        return c.get(path, retry=False).status == 200

    def work(self, w):
        rng = random.Random(self.rng.random())
        c = None
        next_at = time.monotonic()
        while not self.stop.is_set():
            if self.rate:
                gap = self.workers / self.rate
                next_at += gap
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -1.0:
                    next_at = time.monotonic()  # fell behind: no burst
            if self.restarting.is_set():
                if c is not None:  # the server goes away: reconnect after
                    c.close()
                    c = None
                time.sleep(0.05)
                continue
            try:
                if c is None:
                    c = self.srv.new_client(timeout=10)
                t0 = time.monotonic()
                ok = self.one(c, rng)
                dt = time.monotonic() - t0
            except (OSError, harness.TestFailure, ValueError):
                ok, dt = False, None
                if c is not None:
                    c.close()
                c = None
            with self.lock:
                if ok:
                    self.done += 1
                    self.lat.append(dt)
                elif self.restarting.is_set():
                    self.errors_in_restart += 1
                else:
                    self.errors += 1
        if c is not None:
            c.close()

    def start(self):
        for w in range(self.workers):
            t = threading.Thread(target=self.work, args=(w,), daemon=True)
            t.start()
            self.threads.append(t)

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def take(self):
        with self.lock:
            lat, done = self.lat, self.done
            self.lat, self.done = [], 0
        return lat, done


def svg_plot(samples, events, path):
    """Four stacked panels over time: RssAnon (MiB), descriptors,
    threads, p99 latency (ms); restarts and rotations as vertical
    lines."""
    w, ph, left, top = 900, 150, 70, 30
    panels = [("RssAnon (MiB)", lambda s: s["RssAnon"] / 1048576.0),
              ("open descriptors", lambda s: s["fds"]),
              ("threads", lambda s: s["threads"]),
              ("p99 latency (ms)",
               lambda s: None if s["p99_ms"] is None else s["p99_ms"])]
    t_end = max([s["t"] for s in samples] + [1])
    h = top + len(panels) * (ph + 40) + 20
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" '
           'height="%d" font-family="sans-serif" font-size="11">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="13">tpwallet soak: %d s, '
           '%d samples</text>' % (left, t_end, len(samples))]
    for k, (name, fn) in enumerate(panels):
        y0 = top + k * (ph + 40)
        pts = [(s["t"], fn(s)) for s in samples if fn(s) is not None]
        vmax = max([v for _, v in pts] + [1e-9]) * 1.1
        out.append('<text x="%d" y="%d">%s</text>' % (left, y0 - 4, name))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" '
                   'stroke="#999"/>' % (left, y0, w - left - 20, ph))
        for frac in (0, 0.5, 1):
            yy = y0 + ph - frac * ph
            out.append('<text x="%d" y="%d" text-anchor="end">%.1f</text>'
                       % (left - 4, yy + 4, frac * vmax))

        def xy(t, v):
            return (left + (w - left - 20) * t / t_end,
                    y0 + ph - ph * v / vmax)
        for e in events:
            x, _ = xy(e["t"], 0)
            colour = "#c33" if e["what"].startswith("restart") else "#39c"
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" '
                       'stroke="%s" stroke-dasharray="3,3"/>'
                       % (x, y0, x, y0 + ph, colour))
        if pts:
            d = " ".join("%.1f,%.1f" % xy(t, v) for t, v in pts)
            out.append('<polyline fill="none" stroke="#222" '
                       'stroke-width="1.5" points="%s"/>' % d)
    out.append('<text x="%d" y="%d">time (s); red: restarts, blue: key '
               'rotations and policy changes</text>' % (left, h - 6))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def judge(samples, lifetimes):
    """The growth verdicts: a list of failures (empty: green)."""
    fails = []
    peaks = []
    for n, (t0, t1) in enumerate(lifetimes):
        steady = [s for s in samples
                  if t0 + (t1 - t0) / 3.0 <= s["t"] <= t1]
        if len(steady) < 4:
            continue
        # Memory rises and falls with each store flush: compare the
        # peaks of the steady part's two halves, not single samples.
        half = len(steady) // 2
        early, late = steady[:half], steady[half:]
        for what, slack in (("fds", 8), ("threads", 2)):
            a = max(s[what] for s in early)
            b = max(s[what] for s in late)
            if b > a + slack:
                fails.append("lifetime %d: %s peak %d in the first half of "
                             "its steady part, %d in the second"
                             % (n, what, a, b))
        a = max(s["RssAnon"] for s in early)
        b = max(s["RssAnon"] for s in late)
        bound = a * 1.10 + (16 << 20)
        if b > bound:
            fails.append("lifetime %d: RssAnon peak %.1f MiB in the first "
                         "half of its steady part, %.1f in the second "
                         "(bound %.1f)" % (n, a / 1048576.0, b / 1048576.0,
                                           bound / 1048576.0))
        peaks.append(max(s["RssAnon"] for s in steady))
    if len(peaks) >= 2 and peaks[-1] > peaks[0] * 1.2 + (16 << 20):
        fails.append("steady peak RssAnon %.1f MiB in the first lifetime, "
                     "%.1f in the last" % (peaks[0] / 1048576.0,
                                           peaks[-1] / 1048576.0))
    if not peaks:
        fails.append("no lifetime long enough to judge (duration too short "
                     "for the sample interval)")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duration-s", type=float, default=3600)
    ap.add_argument("--sample-s", type=float, default=5)
    ap.add_argument("--restart-every-s", type=float, default=600)
    ap.add_argument("--rotate-every-s", type=float, default=120)
    ap.add_argument("--fraction", type=float, default=0.5)
    ap.add_argument("--calibrate-s", type=float, default=5)
    ap.add_argument("--cache-bytes", type=int, default=8 << 20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-level", default="warn",
                    help="the server's log_level (default warn: a line per "
                    "request would write about 1 GB an hour here)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", action="store_true",
                    help="print the summary as one JSON line")
    args = ap.parse_args()
    if not 0 < args.fraction <= 1:
        ap.error("--fraction must be in (0, 1]")
    if args.sample_s <= 0 or args.duration_s <= 0:
        ap.error("--sample-s and --duration-s must be positive")
    harness.CONFIG["binary"] = os.path.abspath(args.binary)
    out = args.out or tempfile.mkdtemp(prefix="tpw-soak-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tpw-soak-run-")
    data = os.path.join(work, "data")
    srv = Server(data, os.path.join(out, "server.log"),
                 env={"TPWALLET_STORE": "1",
                      "TPWALLET_CACHE_BYTES": str(args.cache_bytes),
                      "TPWALLET_LOG_LEVEL": args.log_level,
                      # Not dumpable (the default) puts /proc/PID/fd out
                      # of a user's reach: the samples count descriptors.
                      "TPWALLET_CORE_DUMPS": "0" if os.getuid() == 0
                      else "1",
                      "TPWALLET_CONFIG": ""})
    srv.start(timeout=60)
    drv = Driver(srv, args.workers, args.seed)
    samples, events, fails = [], [], []
    lifetimes = []
    try:
        c = srv.new_client()
        for first in range(1, ACCOUNTS + 1, 100):
            r = c.post("/v1/accounts", [account(i) for i in
                                        range(first, first + 100)])
            if r.status != 200:
                raise harness.TestFailure("accounts: %r" % r)
        c.close()
        drv.start()
        time.sleep(args.calibrate_s)
        _, done = drv.take()
        capacity = done / args.calibrate_s
        drv.rate = max(1.0, capacity * args.fraction)
        print("soak: calibration %.0f requests/s flat out; driving at %.0f "
              "(%.0f%%) for %.0f s" % (capacity, drv.rate,
                                       args.fraction * 100, args.duration_s),
              flush=True)
        t_start = time.monotonic()
        life_start = 0.0
        next_sample = args.sample_s
        next_restart = args.restart_every_s
        next_rotate = args.rotate_every_s
        kills = 0
        while True:
            now = time.monotonic() - t_start
            if now >= args.duration_s:
                break
            time.sleep(max(0.0, min(next_sample, next_restart,
                                    next_rotate, args.duration_s) - now))
            now = time.monotonic() - t_start
            if now >= next_sample:
                next_sample += args.sample_s
                lat, done = drv.take()
                fig = proc_figures(srv.proc.pid)
                s = dict(fig, t=round(now, 1),
                         rps=round(done / args.sample_s, 1),
                         p50_ms=None if not lat else
                         round(percentile(lat, 50) * 1000, 2),
                         p99_ms=None if not lat else
                         round(percentile(lat, 99) * 1000, 2))
                samples.append(s)
                print("soak: t=%6.0fs rss_anon=%7.1fMiB fds=%3d threads=%2d "
                      "rps=%6.0f p50=%sms p99=%sms"
                      % (now, s["RssAnon"] / 1048576.0, s["fds"],
                         s["threads"], s["rps"], s["p50_ms"], s["p99_ms"]),
                      flush=True)
            if now >= args.duration_s:
                break  # the last sample is taken; no event at the end
            if now >= next_rotate:
                next_rotate += args.rotate_every_s
                r = srv.post("/v1/keys/rotate", None)
                pol = POLICIES[len(events) % len(POLICIES)]
                p = srv.request("PUT", "/v1/client-policy?reason=soak",
                                body=json.dumps(pol),
                                headers={"Content-Type": "application/json"})
                events.append({"t": round(now, 1),
                               "what": "rotate %d, policy %d"
                               % (r.status, p.status)})
                if r.status != 200 or p.status not in (200, 201):
                    fails.append("rotation %d / policy change %d at %.0f s"
                                 % (r.status, p.status, now))
            if now >= next_restart:
                next_restart += args.restart_every_s
                drv.restarting.set()
                time.sleep(0.2)  # let requests in flight finish
                how = "SIGKILL" if kills % 2 else "SIGTERM"
                kills += 1
                t0 = time.monotonic()
                if how == "SIGKILL":
                    srv.kill9()
                else:
                    srv.stop(timeout=60)
                srv.start(timeout=120)
                lifetimes.append((life_start, now))
                life_start = time.monotonic() - t_start
                events.append({"t": round(now, 1),
                               "what": "restart (%s), ready in %.2f s"
                               % (how, time.monotonic() - t0)})
                drv.restarting.clear()
        lifetimes.append((life_start, time.monotonic() - t_start))
        drv.join()
        # Every acknowledged transfer is there (a sample), and the sums
        # agree.
        c = srv.new_client()
        rng = random.Random(args.seed)
        pick = drv.acked if len(drv.acked) <= 2000 else rng.sample(
            drv.acked, 2000)
        missing = [i for i in pick
                   if c.get("/v1/transfers/%d" % i).status != 200]
        if missing:
            fails.append("%d of %d acknowledged transfers sampled are "
                         "missing, e.g. %d" % (len(missing), len(pick),
                                               missing[0]))
        deb = cred = 0
        for first in range(1, ACCOUNTS + 1, 100):
            for i in range(first, first + 100):
                a = c.get("/v1/accounts/%d" % i).json()
                deb += int(a["debits_posted"])
                cred += int(a["credits_posted"])
        c.close()
        if deb != cred:
            fails.append("debits %d != credits %d" % (deb, cred))
        if drv.errors:
            fails.append("%d requests failed outside restarts" % drv.errors)
    finally:
        drv.join()
        srv.stop(timeout=60, expect_clean=False)
    fails += judge(samples, lifetimes)
    steady = [s for s in samples if s["p99_ms"] is not None]
    summary = {
        "duration_s": args.duration_s, "samples": len(samples),
        "rate_rps": round(drv.rate or 0, 1),
        "acknowledged_transfers": len(drv.acked),
        "errors_during_restarts": drv.errors_in_restart,
        "restarts": sum(1 for e in events if e["what"].startswith("restart")),
        "rotations": sum(1 for e in events if e["what"].startswith("rotate")),
        "rss_anon_mib_first": round(samples[0]["RssAnon"] / 1048576.0, 1)
        if samples else None,
        "rss_anon_mib_last": round(samples[-1]["RssAnon"] / 1048576.0, 1)
        if samples else None,
        "p99_ms_first": steady[0]["p99_ms"] if steady else None,
        "p99_ms_last": steady[-1]["p99_ms"] if steady else None,
        "p99_ms_median": statistics.median(s["p99_ms"] for s in steady)
        if steady else None,
        "failures": fails,
    }
    with open(os.path.join(out, "soak.json"), "w") as f:
        json.dump({"summary": summary, "samples": samples, "events": events,
                   "lifetimes": lifetimes}, f, indent=1)
    svg_plot(samples, events, os.path.join(out, "soak.svg"))
    if args.json:
        print(json.dumps(summary))
    for e in events:
        print("soak: event at %6.0fs: %s" % (e["t"], e["what"]))
    print("soak: %d acknowledged transfers at %.0f requests/s; RssAnon "
          "%s -> %s MiB; p99 %s -> %s ms; %d restarts; plot %s"
          % (len(drv.acked), drv.rate or 0, summary["rss_anon_mib_first"],
             summary["rss_anon_mib_last"], summary["p99_ms_first"],
             summary["p99_ms_last"], summary["restarts"],
             os.path.join(out, "soak.svg")))
    for f in fails:
        print("soak: FAIL %s" % f)
    print("soak: %s" % ("green" if not fails else "%d failures" % len(fails)))
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return 1 if fails else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
