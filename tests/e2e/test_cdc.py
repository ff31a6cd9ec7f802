"""test_cdc.py - change data capture (issue 17, item 1; docs/cdc.md):
`tpwallet cdc` beside a server, publishing to a real RabbitMQ and a real
NATS JetStream on loopback (tests/e2e/brokers.py), through crashes of
each broker, of tpwallet cdc and of the server during a load of
transfers; and its refusals: a sink URL that does not parse, a broker
that is not there, wrong credentials.
"""

import json
import os
import subprocess
import threading
import time
import urllib.request

import brokers
from harness import (CONFIG, SANITIZER_MARKERS, e2e_test, check, check_eq,
                     free_port, run_cli)
from ledger import account, transfer

ACCOUNTS = 16


def metrics(port):
    """The gauges and counters of a cdc's /metrics, by name."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name.split("{")[0]] = float(value)
    return out


class Cdc:
    """One `tpwallet cdc` process; restartable on the same state file."""

    def __init__(self, ctx, name, data, sink, env=None, extra=()):
        self.ctx, self.name, self.data, self.sink = ctx, name, data, sink
        self.state = ctx.path(name + ".state")
        self.log = ctx.path(name + ".log")
        self.metrics_port = free_port()
        self.env = dict(os.environ, **(env or {}))
        self.extra = list(extra)
        self.proc = None

    def start(self):
        out = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [CONFIG["binary"], "cdc", "--data", self.data, "--sink",
                 self.sink, "--state", self.state, "--metrics-listen",
                 "127.0.0.1:%d" % self.metrics_port, "--timeout-ms", "3000"]
                + self.extra, stdin=subprocess.DEVNULL, stdout=out,
                stderr=out, env=self.env, start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + 60
        while True:
            check(self.proc.poll() is None, "%s exited: %s"
                  % (self.name, self.text()[-800:]))
            try:
                return metrics(self.metrics_port)
            except OSError:
                check(time.monotonic() < deadline,
                      "%s: no /metrics after 60 s" % self.name)
                time.sleep(0.1)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            check_eq(self.proc.returncode, 0, "%s: exit status on SIGTERM"
                     % self.name)
        text = self.text() if os.path.exists(self.log) else ""
        for m in SANITIZER_MARKERS:
            check(m not in text, "%s: sanitizer report (%s)" % (self.name, m))

    def metrics(self):
        return metrics(self.metrics_port)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait(self, cond, what, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if cond(m):
                return m
            check(time.monotonic() < deadline,
                  "%s: %s not within %d s: %r\n%s" % (
                      self.name, what, timeout, m, self.text()[-800:]))
            time.sleep(0.1)


class Load(threading.Thread):
    """Batches of 20 transfers between the accounts until stopped, through
    server restarts (srv.port is read for every batch): the ids the
    server acknowledged as created."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.acked = set()
        self.stop_flag = threading.Event()
        self.next_id = 1000
        self.errors = 0

    def run(self):
        while not self.stop_flag.is_set():
            batch = []
            for _ in range(20):
                self.next_id += 1
                i = self.next_id
                # debit i mod 16, credit 1 to 5 accounts further on
                batch.append(transfer(i, 1 + i % ACCOUNTS,
                                      1 + (i + 1 + i % 5) % ACCOUNTS,
                                      1 + i % 9))
            try:
                c = self.srv.new_client(timeout=5)
                r = c.request("POST", "/v1/transfers", batch, retry=False)
                c.close()
            except Exception:  # the server is down: try again later
                self.errors += 1
                time.sleep(0.05)
                continue
            if r.status != 200:
                continue
            for res, t in zip(r.json(), batch):
                if res.get("status") == "created":
                    self.acked.add(int(t["id"]))
            # Bounded: about 1,000 transfers a second.
            time.sleep(0.02)


def first_copies(events, what):
    """The events with duplicates (same id) dropped, checked: a copy says
    exactly what the first did; the first copies run in journal order."""
    seen, out = {}, []
    for msg_id, ev in events:
        check_eq(msg_id, ev["id"], "%s: the message id is the event id"
                 % what)
        if ev["id"] in seen:
            check_eq(ev, seen[ev["id"]], "%s: a redelivered copy of %s"
                     % (what, ev["id"]))
            continue
        seen[ev["id"]] = ev
        out.append(ev)
    keys = [(int(e["seq"]), e["index"]) for e in out]
    check(keys == sorted(keys), "%s: events in journal order" % what)
    check_eq(len(set(keys)), len(keys), "%s: one id per (seq, index)" % what)
    return out


@e2e_test(timeout=420, heavy=True)
def test_cdc_delivers_every_committed_transfer_through_crashes(ctx):
    srv = ctx.start_server()
    check_eq(srv.post("/v1/accounts", [account(i) for i in
                                       range(1, ACCOUNTS + 1)]).status, 200,
             "accounts")
    rabbit = brokers.Rabbit(ctx.path("rabbit"))
    nats = brokers.Nats(ctx.path("nats"))
    cdcs, load = [], None
    try:
        rabbit.start()
        nats.start()
        amqp = Cdc(ctx, "cdc-amqp", srv.data_dir,
                   "amqp://127.0.0.1:%d?exchange=tpw&queue=ledger"
                   % rabbit.port)
        jet = Cdc(ctx, "cdc-nats", srv.data_dir,
                  "nats://127.0.0.1:%d?stream=TPW&subject=tpw" % nats.port)
        cdcs = [amqp, jet]
        for c in cdcs:
            c.start()
        load = Load(srv)
        load.start()
        faults = [
            ("kill -9 RabbitMQ", rabbit.kill9, rabbit.restart),
            ("kill -9 cdc (amqp)", amqp.kill9, amqp.start),
            ("kill -9 nats-server", nats.kill9, nats.restart),
            ("kill -9 cdc (nats)", jet.kill9, jet.start),
            ("kill -9 the server", srv.kill9, srv.start),
        ]
        for what, kill, restart in faults:
            time.sleep(1.5)
            before = len(load.acked)
            kill()
            time.sleep(1.0)
            restart()
            ctx.note("cdc: %s during the load (%d transfers acknowledged "
                     "before it)" % (what, before))
        time.sleep(1.5)
        load.stop_flag.set()
        load.join(timeout=30)
        check(len(load.acked) > 200, "a load: %d transfers acknowledged"
              % len(load.acked))
        # Both caught up with the journal's end.
        for c in cdcs:
            c.wait(lambda m: m["tpwallet_cdc_lag_entries"] == 0
                   and m["tpwallet_cdc_journal_end_seq"] > 0,
                   "caught up", timeout=90)
        end = max(c.metrics()["tpwallet_cdc_journal_end_seq"] for c in cdcs)
        got = {
            "amqp": brokers.amqp_drain(rabbit, "ledger"),
        }
        stream = brokers.NatsStream(nats.port)
        try:
            got["nats"] = stream.messages("TPW")
        finally:
            stream.close()
        for sink, raw in got.items():
            evs = first_copies([(m[0], m[1]) for m in raw], sink)
            created = {int(e["transfer"]["id"]): e for e in evs
                       if e["type"] == "transfer.created"}
            missing = sorted(load.acked - set(created))
            check(not missing, "%s: every acknowledged transfer delivered; "
                  "missing %d, e.g. %r" % (sink, len(missing), missing[:5]))
            # Nothing uncommitted: each one is in the ledger after the
            # run, as delivered, and its seq within the journal.
            c = srv.new_client()
            for tid, e in created.items():
                check(int(e["seq"]) <= end, "%s: seq %s <= %d"
                      % (sink, e["seq"], end))
                if tid in load.acked:
                    continue
                r = c.get("/v1/transfers/%d" % tid)
                check_eq(r.status, 200, "%s: delivered transfer %d is in "
                         "the ledger" % (sink, tid))
                check_eq(r.json()["amount"], e["transfer"]["amount"],
                         "%s: transfer %d's amount" % (sink, tid))
            c.close()
            # The balances after the last transfer of an account are the
            # ledger's (no transfer after the load).
            last = {}
            for e in evs:
                if e["type"] == "transfer.created":
                    for side in ("debit_account", "credit_account"):
                        last[e[side]["account_id"]] = e[side]["balance"]
            for aid, bal in last.items():
                a = srv.get("/v1/accounts/%s" % aid).json()
                for k in ("debits_posted", "credits_posted"):
                    check_eq(bal[k], a[k], "%s: account %s %s after its "
                             "last event" % (sink, aid, k))
            dups = len(raw) - len(evs)
            ctx.note("cdc %s: %d events (%d transfers, %d acknowledged by "
                     "the server), %d redelivered copies" % (
                         sink, len(evs), len(created), len(load.acked),
                         dups))
        # The crashes were seen and survived, in words.
        check("connect to" in amqp.text() and "(retrying)" in amqp.text(),
              "the amqp cdc said it lost the broker and retried")
    finally:
        if load:
            load.stop_flag.set()
        for c in cdcs:
            c.stop()
        brokers.stop_all(rabbit, nats)


@e2e_test(timeout=240, heavy=True)
def test_cdc_refuses_bad_sinks_and_retries_a_broker_that_is_down(ctx):
    srv = ctx.start_server()
    data = srv.data_dir
    # A URL that does not parse: usage error 2, naming the part.
    for url, part in [
            ("amqp://127.0.0.1:port?exchange=x", "port"),
            ("amqp://127.0.0.1:5672", "exchange"),
            ("nats://127.0.0.1:4222?stream=S", "subject"),
            ("nats://127.0.0.1:4222?stream=S&subject=a.*", "subject"),
            ("kafka://127.0.0.1:9092", "scheme"),
            ("amqp://127.0.0.1:5672?exchange=x&colour=blue", "query"),
            ("amqp://guest:hunter2@127.0.0.1:5672?exchange=x", "password")]:
        r = run_cli(["cdc", "--data", data, "--sink", url, "--state",
                     ctx.path("never.state")])
        check_eq(r.returncode, 2, "exit status for %s" % url)
        check(("--sink: %s:" % part) in r.stderr,
              "%s: the error names %s: %r" % (url, part, r.stderr))
        check("hunter2" not in r.stderr + r.stdout, "no password printed")
        check(not os.path.exists(ctx.path("never.state")), "no state file")

    check_eq(srv.post("/v1/accounts", [account(1), account(2)]).status, 200,
             "accounts")
    # A broker that is not there: said, retried, and the lag grows.
    dead = free_port()
    c = Cdc(ctx, "cdc-dead", data,
            "amqp://127.0.0.1:%d?exchange=tpw" % dead)
    rabbit = brokers.Rabbit(ctx.path("rabbit"))
    try:
        c.start()
        check_eq(srv.post("/v1/transfers", [transfer(5, 1, 2, 3)]).status,
                 200, "a transfer")
        m1 = c.wait(lambda m: m["tpwallet_cdc_failures_total"] >= 2
                    and m["tpwallet_cdc_lag_entries"] >= 2,
                    "retries with lag")
        check_eq(m1["tpwallet_cdc_broker_up"], 0.0, "broker down")
        check_eq(m1["tpwallet_cdc_confirmed_seq"], 0.0, "nothing confirmed")
        time.sleep(1.2)
        m2 = c.metrics()
        check(m2["tpwallet_cdc_lag_seconds"] >= 1.0 and
              m2["tpwallet_cdc_lag_seconds"] > m1["tpwallet_cdc_lag_seconds"],
              "lag in seconds grows: %r then %r" % (
                  m1["tpwallet_cdc_lag_seconds"],
                  m2["tpwallet_cdc_lag_seconds"]))
        check(m2["tpwallet_cdc_failures_total"] >
              m1["tpwallet_cdc_failures_total"], "still retried")
        text = c.text()
        check("connect to amqp://127.0.0.1:%d" % dead in text
              and "(retrying)" in text, "the error in words: %r" % text)
        check_eq(text.count("(retrying)"), 1,
                 "one line per distinct error, not one per retry")
        c.stop()
        check(not os.path.exists(c.state), "nothing confirmed, no state")

        # Wrong credentials: refused in words, retried, never printed.
        rabbit.start()
        pw = ctx.path("password")
        with open(pw, "w") as f:
            f.write("not-the-password\n")
        os.chmod(pw, 0o600)
        sink = ("amqp://guest@127.0.0.1:%d?exchange=tpw&queue=q"
                % rabbit.port)
        bad = Cdc(ctx, "cdc-badpw", data, sink, extra=["--password-file",
                                                       pw])
        bad.start()
        bad.wait(lambda m: m["tpwallet_cdc_failures_total"] >= 2,
                 "refused logins")
        bad.stop()
        text = bad.text()
        check("403" in text and "ACCESS_REFUSED" in text,
              "the broker's refusal in words: %r" % text[-600:])
        check("not-the-password" not in text, "the password not printed")
        # The same with the right password, from the environment.
        good = Cdc(ctx, "cdc-goodpw", data, sink,
                   env={"TPWALLET_CDC_PASSWORD": "guest"})
        good.start()
        good.wait(lambda m: m["tpwallet_cdc_lag_entries"] == 0
                  and m["tpwallet_cdc_confirmed_seq"] >= 3, "caught up")
        good.stop()
        evs = brokers.amqp_drain(rabbit, "q", idle_s=1)
        check_eq([e[1]["type"] for e in evs],
                 ["command.key", "account.created", "account.created",
                  "transfer.created"], "the events, in order")
        check_eq(evs[3][1]["debit_account"]["balance"]["debits_posted"],
                 "3", "the balance after the transfer")
        with open(good.state) as f:
            lines = f.read().splitlines()
        check_eq(lines[0], "tpwallet-cdc 1", "the state file's first line")
        check_eq(lines[2:], ["seq " + evs[3][1]["seq"], "sink " + sink],
                 "the state file: the seq confirmed and the sink, no "
                 "password")
    finally:
        c.stop()
        brokers.stop_all(rabbit)
