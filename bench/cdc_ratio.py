#!/usr/bin/env python3
"""cdc_ratio.py - what `tpwallet cdc` costs the writer, and how fast and
how far behind it publishes (issue 17, "Measured"; docs/cdc.md):

    python3 bench/cdc_ratio.py BIN [--rounds 3] [--seconds 8] [--nice-brokers]

One server (its data directory under $TMPDIR) with 100,000 accounts, a
RabbitMQ and a NATS JetStream of tests/e2e/brokers.py on loopback.  Each
round runs the HTTP load of bench/run.sh (wrk -t2 -c64, one transfer per
request, bench/wrk_transfer.lua; the cdc at its default --nice 10)
three times, in turn: with no cdc
("off"), with a cdc to RabbitMQ (a durable queue bound to the exchange,
so every event is stored), and with a cdc to NATS (file storage).  Each
cdc starts from a fresh state file and first catches up with the
journal (the catch-up is not timed), then runs beside the load, then
until it has published all of it.  Per run: the server's requests/s;
for a cdc its events/s over the load (events confirmed during it / its
seconds), the largest lag sampled every 0.2 s (entries and seconds),
and the time to catch up after the load; the CPU each of server, cdc and
broker used during the load (cores: seconds per second).  Prints each run and the
medians, with the ratio of requests/s to "off" of the same round.
Prints figures; never passes or fails on time.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import brokers  # noqa: E402
from harness import free_port  # noqa: E402


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k.split("{")[0]] = float(v)
        return out


def cpu_s(pgid):
    """User + system seconds of the processes of a process group."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                f_ = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f_[2]) == pgid:
            total += int(f_[11]) + int(f_[12])
    return total / tck


def renice_group(pgid, n):
    """Every thread of every process of a process group to nice n."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                if int(f.read().rsplit(")", 1)[1].split()[2]) != pgid:
                    continue
            for tid in os.listdir("/proc/%s/task" % pid):
                os.setpriority(os.PRIO_PROCESS, int(tid), n)
        except OSError:
            continue


def wait_for(cond, what, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = cond()
            if v:
                return v
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit("cdc_ratio: %s not within %d s" % (what, timeout))
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--nice-brokers", action="store_true",
                    help="run the brokers at nice 19, as a stand-in for "
                    "brokers on other machines: the writer then pays for "
                    "the cdc, not for a broker on its own cores")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    work = tempfile.mkdtemp(prefix="cdc-bench-")
    data = os.path.join(work, "data")
    port = free_port()
    srv = subprocess.Popen([binary, "serve", "--data", data, "--listen",
                            "127.0.0.1:%d" % port, "--log-level", "warn"],
                           stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(work, "server.log"), "w"),
                           start_new_session=True)
    rabbit = brokers.Rabbit(os.path.join(work, "rabbit"))
    nats = brokers.Nats(os.path.join(work, "nats"))
    cdc = None
    try:
        wait_for(lambda: urllib.request.urlopen(
            "http://127.0.0.1:%d/readyz" % port, timeout=2).status == 200,
            "the server", 30)
        token = open(os.path.join(data, "admin.token")).read().strip()
        env = dict(os.environ, TPWALLET_TOKEN=token)
        subprocess.run([sys.executable, os.path.join(HERE, "http_batch.py"),
                        "--port", str(port), "--accounts", "100000",
                        "--create-accounts"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        rabbit.start()
        nats.start()
        if a.nice_brokers:
            for p in rabbit.procs + nats.procs:
                renice_group(p.pid, 19)
        sinks = {
            "amqp": "amqp://127.0.0.1:%d?exchange=bench&queue=bench"
                    % rabbit.port,
            "nats": "nats://127.0.0.1:%d?stream=BENCH&subject=bench"
                    % nats.port,
        }
        runs = {"off": [], "amqp": [], "nats": []}
        run_no = 0
        for rnd in range(a.rounds):
            off_rps = None
            for kind in ("off", "amqp", "nats"):
                run_no += 1
                mport = free_port()
                if kind != "off":
                    state = os.path.join(work, "%s-%d.state" % (kind, rnd))
                    cdc = subprocess.Popen(
                        [binary, "cdc", "--data", data, "--sink",
                         sinks[kind], "--state", state, "--metrics-listen",
                         "127.0.0.1:%d" % mport],
                        stdout=subprocess.DEVNULL,
                        stderr=open(os.path.join(work, kind + ".log"), "a"),
                        start_new_session=True)
                    wait_for(lambda: metrics(mport)[
                        "tpwallet_cdc_lag_entries"] == 0 and metrics(mport)[
                        "tpwallet_cdc_journal_end_seq"] > 0,
                        "%s catching up before the load" % kind, 600)
                    m0 = metrics(mport)
                w = subprocess.Popen(
                    ["wrk", "-t2", "-c64", "-d%ds" % a.seconds, "-s",
                     os.path.join(HERE, "wrk_transfer.lua"),
                     "http://127.0.0.1:%d" % port],
                    env=dict(env, RUN=str(900 + run_no), ACCOUNTS="100000"),
                    stdout=subprocess.PIPE, text=True)
                t0 = time.monotonic()
                broker = {"off": None, "amqp": rabbit.node,
                          "nats": nats.proc}[kind]
                cpu0 = [cpu_s(srv.pid), cpu_s(cdc.pid) if cdc else 0,
                        cpu_s(broker.pid) if broker else 0]
                lag_e = lag_s = 0.0
                while w.poll() is None:
                    if kind != "off":
                        m = metrics(mport)
                        lag_e = max(lag_e, m["tpwallet_cdc_lag_entries"])
                        lag_s = max(lag_s, m["tpwallet_cdc_lag_seconds"])
                    time.sleep(0.2)
                t_load = time.monotonic() - t0
                cpu = [(cpu_s(srv.pid) - cpu0[0]) / t_load,
                       (cpu_s(cdc.pid) - cpu0[1]) / t_load if cdc else 0,
                       (cpu_s(broker.pid) - cpu0[2]) / t_load
                       if broker else 0]
                out = w.stdout.read()
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)",
                                      out).group(1))
                line = ("round %d %-4s %8.0f requests/s  CPU: server %.2f "
                        "cdc %.2f broker %.2f" % (rnd + 1, kind, rps, *cpu))
                if kind == "off":
                    off_rps = rps
                    runs["off"].append((rps, 1.0, 0, 0, 0, 0))
                else:
                    m1 = metrics(mport)
                    ev = m1["tpwallet_cdc_events_published_total"] - \
                        m0["tpwallet_cdc_events_published_total"]
                    t1 = time.monotonic()
                    wait_for(lambda: metrics(mport)[
                        "tpwallet_cdc_lag_entries"] == 0,
                        "%s catching up after the load" % kind, 600)
                    catch = time.monotonic() - t1
                    eps = ev / t_load
                    ratio = rps / off_rps
                    runs[kind].append((rps, ratio, eps, lag_e, lag_s, catch))
                    line += ("  ratio %.3f  cdc %7.0f events/s  max lag "
                             "%5.0f entries %5.2f s  caught up %.1f s later"
                             % (ratio, eps, lag_e, lag_s, catch))
                    cdc.terminate()
                    cdc.wait(timeout=30)
                    cdc = None
                print(line, flush=True)
        print("medians over %d rounds (%d s of load each):" % (a.rounds,
                                                                a.seconds))
        for kind, rs in runs.items():
            med = [statistics.median(x) for x in zip(*rs)]
            print("  %-4s %8.0f requests/s  ratio %.3f  cdc %7.0f events/s"
                  "  max lag %5.0f entries %5.2f s  caught up %.1f s"
                  % (kind, *med))
    finally:
        if cdc is not None:
            cdc.kill()
        brokers.stop_all(rabbit, nats)
        srv.terminate()
        srv.wait(timeout=30)


if __name__ == "__main__":
    main()
