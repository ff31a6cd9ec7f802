"""test_acquirer.py - the acquirer connector against the reference
simulator (issue 17, items 3 and 4; docs/acquirer.md): a top-up is a
pending transfer posted on approval and voided on decline; an answer that
is lost (a timeout, a 5xx, garbage) is resolved by asking the acquirer by
the idempotency key, never guessed; a restart leaves nothing pending;
the circuit breaker opens against a failing acquirer and closes when it
recovers; a 426 is said plainly; and a simulated day with faults leaves
the ledger equal to the simulator's settlement file, to the unit.
"""

import csv
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

from harness import e2e_test, check, check_eq, slow_factor, run_cli
from ledger import account
from test_client_policy import metrics
from test_vault import card, VISA, MASTERCARD

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ACQSIM = os.path.join(ROOT, "tools", "acqsim", "acqsim.py")
SETTLEMENT = 9000   # the acquirer's settlement account
USERS = range(9001, 9011)


class Sim:
    """tools/acqsim/acqsim.py on a free loopback port."""

    def __init__(self, ctx, *args):
        self.port_file = ctx.path("acqsim-%d.port" % os.getpid())
        self.settlement = ctx.path("settlement.csv")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(ctx.path("acqsim.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, ACQSIM, "--port-file", self.port_file,
             "--settlement", self.settlement,
             "--settlement-date", "2026-12-07"] + list(args),
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10 * slow_factor()
        while not os.path.exists(self.port_file):
            check(time.monotonic() < deadline and self.proc.poll() is None,
                  "acqsim did not start")
            time.sleep(0.02)
        self.port = int(open(self.port_file).read())
        self.url = "http://127.0.0.1:%d" % self.port

    def post(self, path, obj):
        req = urllib.request.Request(self.url + path,
                                     data=json.dumps(obj).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def faults(self, **kw):
        return self.post("/acqsim/faults", kw)

    def stats(self):
        with urllib.request.urlopen(self.url + "/acqsim/stats",
                                    timeout=10) as r:
            return json.loads(r.read())

    def settle(self):
        """The settlement file's rows (dicts)."""
        self.post("/acqsim/settle", {})
        with open(self.settlement, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


class Day:
    """A simulator and a server that calls it, stopped at the end:
    `with Day(ctx, sim args...) as (sim, s, token):`."""

    def __init__(self, ctx, *args, **env):
        self.ctx, self.args, self.env = ctx, args, env

    def __enter__(self):
        self.sim = Sim(self.ctx, *self.args)
        try:
            self.s = self.ctx.start_server(
                env=acquirer_env(self.sim, **self.env))
            return self.sim, self.s, setup_ledger(self.s)
        except BaseException:
            self.sim.stop()
            raise

    def __exit__(self, *exc):
        try:
            if not exc[0]:
                self.s.stop()
        finally:
            self.sim.stop()
        return False


def acquirer_env(sim, **kw):
    env = {"TPWALLET_ACQUIRER": sim.url,
           "TPWALLET_ACQUIRER_SETTLEMENT_ACCOUNT": str(SETTLEMENT),
           "TPWALLET_ACQUIRER_SUSPENSE_ACCOUNT": "9500",
           "TPWALLET_ACQUIRER_TIMEOUT_MS": "600",
           "TPWALLET_ACQUIRER_BREAKER_FAILURES": "3",
           "TPWALLET_ACQUIRER_BREAKER_COOLDOWN_MS": "1000"}
    env.update({k: str(v) for k, v in kw.items()})
    return env


def setup_ledger(s):
    """The settlement account, the users' accounts and a card; the
    card's token."""
    r = s.post("/v1/accounts", [account(SETTLEMENT)] +
               [account(u) for u in USERS])
    check_eq(r.status, 200, "create accounts: %r" % (r,))
    r = s.post("/v1/vault/cards", card(VISA))
    check_eq(r.status, 201, "store a card: %r" % (r,))
    return r.json()["token"]


def topup(s, user, amount, token, key):
    return s.post("/v1/topups", {"account": str(user), "amount": str(amount),
                                 "card_token": token,
                                 "idempotency_key": key})


def balance(s, acc):
    r = s.get("/v1/accounts/%d" % acc)
    check_eq(r.status, 200, "GET account %d" % acc)
    a = r.json()
    return int(a["credits_posted"]), int(a["credits_pending"]), \
        int(a["debits_posted"]), int(a["debits_pending"])


def doctor_acquirer(s):
    r = run_cli(["doctor", "--data", s.data_dir, "--server",
                 "http://127.0.0.1:%d" % s.port])
    return [ln for ln in r.stdout.splitlines() if " acquirer: " in ln]


def wait_settled(s, timeout=20):
    """Until the resolver has nothing pending; the last metrics."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        m = metrics(s)
        if m.get("tpwallet_acquirer_pending") == 0 and \
                balance(s, SETTLEMENT)[3] == 0:
            return m
        check(time.monotonic() < deadline,
              "top-ups still pending: %r" % m.get("tpwallet_acquirer_pending"))
        time.sleep(0.1)


@e2e_test(timeout=120)
def test_topups_post_on_approval_void_on_decline_and_resolve_lost_answers(ctx):
    with Day(ctx, "--hang-s", "1.5") as (sim, s, token):
        u = USERS[0]

        r = topup(s, u, 1000, token, "order-1")
        check_eq((r.status, r.json()["status"]), (200, "approved"),
                 "approved: %r" % (r,))
        check(r.json()["acquirer_ref"].startswith("acq_"), "ref")
        check_eq(balance(s, u)[:2], (1000, 0), "posted")

        sim.faults(next=["decline"])
        r = topup(s, u, 500, token, "order-2")
        check_eq((r.status, r.json()["status"]), (200, "declined"),
                 "declined: %r" % (r,))
        check_eq(balance(s, u)[:2], (1000, 0), "voided: nothing moved")

        # The same key again: the first outcome, no second charge.
        ops = sim.stats()["operations"]
        r = topup(s, u, 1000, token, "order-1")
        check_eq((r.status, r.json()["status"]), (200, "approved"), "replay")
        check_eq(sim.stats()["operations"], ops, "no second booking")
        r = topup(s, u, 999, token, "order-1")
        check_eq((r.status, r.json()["type"].rsplit("/", 1)[-1]),
                 (409, "idempotency-conflict"), "same key, other amount")

        # Garbage (booked): asked by query at once.  5xx (not booked):
        # charged again with the same key.  Duplicate answer: one
        # booking.
        sim.faults(next=["garbage", "5xx", "duplicate"])
        r = topup(s, u, 10, token, "order-3")
        check_eq((r.status, r.json()["status"]), (200, "approved"),
                 "garbage: %r" % (r,))
        r = topup(s, u, 20, token, "order-4")
        check_eq((r.status, r.json()["status"]), (200, "approved"),
                 "5xx then approve: %r" % (r,))
        r = topup(s, u, 40, token, "order-5")
        check_eq((r.status, r.json()["status"]), (200, "approved"),
                 "duplicate: %r" % (r,))
        check_eq(balance(s, u)[:2], (1070, 0), "three more posted")

        # A timeout (booked, never answered): 202 pending, then the
        # resolver asks and posts.
        sim.faults(next=["timeout"])
        r = topup(s, u, 5, token, "order-6")
        check_eq((r.status, r.json()["status"]), (202, "pending"),
                 "timeout: %r" % (r,))
        check_eq(balance(s, u)[1], 5, "pending meanwhile")
        m = wait_settled(s)
        check_eq(balance(s, u)[:2], (1075, 0), "resolved by query")
        check(m['tpwallet_acquirer_calls_total{outcome="timeout"}'] >= 1,
              "timeout counted")
        r = topup(s, u, 5, token, "order-6")
        check_eq((r.status, r.json()["status"]), (200, "approved"),
                 "the key again after resolution")

        # The card is never in the log.
        log = open(s.log_path, encoding="utf-8", errors="replace").read()
        check(VISA not in log, "the card number is not logged")
        rows = sim.settle()
        check_eq(sum(int(x["amount"]) for x in rows), 1075,
                 "settled = posted")
        check_eq(balance(s, SETTLEMENT)[2], 1075, "settlement debited")


@e2e_test(timeout=120)
def test_the_breaker_opens_on_a_failing_acquirer_and_closes_when_it_recovers(ctx):
    with Day(ctx) as (sim, s, token):
        u = USERS[1]
        sim.faults(sticky="5xx")
        r = topup(s, u, 100, token, "b-1")
        check_eq((r.status, r.json()["status"]), (202, "pending"),
                 "three 5xx: left pending: %r" % (r,))
        m = metrics(s)
        check_eq(m["tpwallet_acquirer_breaker_state"], 1.0, "open")
        check_eq(m['tpwallet_acquirer_calls_total{outcome="server_error"}'],
                 3.0, "three calls")
        t0 = time.monotonic()
        r = topup(s, u, 100, token, "b-2")
        check(time.monotonic() - t0 < 0.5, "fails fast")
        check_eq((r.status, r.json()["type"].rsplit("/", 1)[-1]),
                 (503, "acquirer-unavailable"), "open: %r" % (r,))
        check_eq(r.header("retry-after"), "1", "Retry-After")
        check("circuit breaker" in r.json()["detail"], "said")
        check_eq(balance(s, u)[1], 100, "only b-1 pending")
        lines = doctor_acquirer(s)
        check(any(ln.startswith("warn    acquirer: the circuit breaker is "
                                "open") for ln in lines), "doctor: %r" % lines)

        sim.faults(sticky=None)
        time.sleep(1.2)
        r = topup(s, u, 7, token, "b-3")
        check_eq((r.status, r.json()["status"]), (200, "approved"),
                 "half-open call succeeds: %r" % (r,))
        check_eq(metrics(s)["tpwallet_acquirer_breaker_state"], 0.0,
                 "closed")
        # b-1 was never booked (5xx): once no charge can be on its way,
        # the resolver's query says so and it is voided.
        wait_settled(s)
        check_eq(balance(s, u)[:2], (7, 0), "b-1 voided, b-3 posted")
        check_eq(doctor_acquirer(s), [
            "ok      acquirer: breaker closed, no top-up pending, version "
            "accepted (opened 1 time(s) since start)"], "doctor, closed")
        log = open(s.log_path, encoding="utf-8", errors="replace").read()
        check("acquirer breaker opened" in log and
              "acquirer breaker closed" in log, "the log says both")


@e2e_test(timeout=60)
def test_an_acquirer_refusing_our_version_is_said_plainly(ctx):
    with Day(ctx) as (sim, s, token):
        sim.faults(min_version="2027-03")
        r = topup(s, USERS[2], 100, token, "v-1")
        check_eq((r.status, r.json()["type"].rsplit("/", 1)[-1]),
                 (502, "acquirer-version-refused"), "426: %r" % (r,))
        check("its minimum is 2027-03: raise acquirer_api_version" in
              r.json()["detail"], "the detail names the minimum")
        check_eq(balance(s, USERS[2])[:2], (0, 0), "voided")
        m = metrics(s)
        check_eq(m['tpwallet_acquirer_version_refused{version="2026-01",'
                   'minimum="2027-03"}'], 1.0, "gauge")
        check_eq(m['tpwallet_acquirer_calls_total{outcome="version_refused"}'],
                 1.0, "counted")
        log = open(s.log_path, encoding="utf-8", errors="replace").read()
        check("the acquirer refuses our API version (426)" in log and
              '"minimum":"2027-03"' in log, "the log line")
        check_eq(doctor_acquirer(s), [
            "action  acquirer: the acquirer refuses our API version "
            "2026-01 (426); its minimum is 2027-03: raise "
            "acquirer_api_version (docs/acquirer.md)"], "doctor")


@e2e_test(timeout=240, heavy=True)
def test_a_day_of_topups_with_faults_and_a_restart_equals_the_settlement(ctx):
    with Day(ctx, "--seed", "17", "--decline-rate", "0.05",
             "--timeout-rate", "0.01", "--hang-s", "1") as (sim, s, token):
        r = s.post("/v1/vault/cards", card(MASTERCARD))
        token2 = r.json()["token"]
        statuses = {}
        n = 300
        for i in range(n):
            if i == 100:
                sim.faults(next=["duplicate"])
            if i == 150:
                # Every call times out (the charge is booked, the
                # resolver's queries hang) until after the restart.
                sim.faults(sticky="timeout")
            user = USERS[i % len(USERS)]
            r = topup(s, user, 100 + i, token if i % 2 else token2,
                      "day-%d" % i)
            check(r.status in (200, 202), "top-up %d: %r" % (i, r))
            statuses[r.json()["status"]] = \
                statuses.get(r.json()["status"], 0) + 1
            if i == 150:
                # A restart with the timed-out top-up still pending.
                check_eq(r.json()["status"], "pending", "the timeout")
                s.stop()
                sim.faults(sticky=None)
                s.start()
        wait_settled(s, timeout=30)
        rows = sim.settle()
        settled = sum(int(x["amount"]) for x in rows)
        credited = sum(balance(s, u)[0] for u in USERS)
        check_eq(credited, settled, "the users' money = the settlement")
        check_eq(balance(s, SETTLEMENT)[2], settled, "the settlement "
                 "account's debits = the settlement file")
        check(statuses.get("declined", 0) >= 5, "declines: %r" % statuses)
        check(statuses["approved"] <= len(rows) <=
              n - statuses["declined"], "rows: %d, %r" % (len(rows),
                                                          statuses))
        log = open(s.log_path, encoding="utf-8", errors="replace").read()
        check("pending top-ups found at start" in log,
              "the restart found the pending top-up")
        r = reconcile(s, sim.settlement)
        check_eq(r.returncode, 0, "reconcile: %s %s" % (r.stdout, r.stderr))
        check(r.stdout.startswith("rows %d, matched %d, missing in the "
                                  "ledger 0, missing at the acquirer 0, "
                                  "amount mismatch 0, currency mismatch 0, "
                                  "bad lines 0" % (len(rows), len(rows))),
              "zero differences: %r" % r.stdout)


def reconcile(s, path, *extra):
    return run_cli(["reconcile", path, "--server",
                    "http://127.0.0.1:%d" % s.port, "--data", s.data_dir] +
                   list(extra), timeout=60)


@e2e_test(timeout=120)
def test_reconcile_finds_and_names_each_difference_and_bad_line(ctx):
    with Day(ctx) as (sim, s, token):
        for i in range(12):
            if i == 3:
                sim.faults(next=["decline"])
            r = topup(s, USERS[i % 3], 1000 + i, token, "rec-%d" % i)
            check_eq(r.status, 200, "top-up %d: %r" % (i, r))
        rows = sim.settle()
        check_eq(len(rows), 11, "11 approved")
        r = reconcile(s, sim.settlement, "--json")
        check_eq(r.returncode, 0, "agree: %s %s" % (r.stdout, r.stderr))
        rep = json.loads(r.stdout)
        check_eq((rep["rows"], rep["differences"], rep["counts"]["matched"]),
                 (11, 0, 11), "zero differences")

        # One row's amount edited, one row dropped, one foreign row, one
        # in another currency, and bad lines: wrong column count, bad
        # encoding, a non-numeric amount, a duplicated row.
        lines = open(sim.settlement, "rb").read().split(b"\n")
        head, body = lines[0], [x for x in lines[1:] if x]
        edited = body[0].split(b",")
        edited[4] = str(int(edited[4]) + 1).encode()
        dropped = body[1].split(b",")
        cur = body[2].split(b",")
        cur[5] = b"USD"
        out = [head, b",".join(edited)] + body[3:] + [
            b",".join(cur),
            b"2026-12-07,acq_99999999,foreign-key,topup,5,EUR",
            b"2026-12-07,acq_1,k,topup,5",
            b"2026-12-07,acq_\xff\xfe,k2,topup,5,EUR",
            b"2026-12-07,acq_2,k3,topup,12x,EUR",
            body[4]]
        bad_path = ctx.path("edited.csv")
        open(bad_path, "wb").write(b"\n".join(out) + b"\n")
        r = reconcile(s, bad_path, "--json")
        check_eq(r.returncode, 1, "differences: exit 1")
        rep = json.loads(r.stdout)
        by = {}
        for it in rep["items"]:
            by.setdefault(it["kind"], []).append(it)
        check_eq(sorted((k, len(v)) for k, v in by.items()),
                 [("amount_mismatch", 1), ("currency_mismatch", 1),
                  ("missing_at_acquirer", 1), ("missing_in_ledger", 1)],
                 "the differences: %r" % rep["items"])
        am = by["amount_mismatch"][0]
        check_eq((am["line"], am["idempotency_key"], am["amount_file"],
                  am["amount_ledger"]),
                 (2, edited[2].decode(), edited[4].decode(),
                  str(int(edited[4]) - 1)), "the edited row, named")
        check_eq(by["missing_at_acquirer"][0]["idempotency_key"],
                 dropped[2].decode(), "the dropped row")
        check_eq(by["missing_in_ledger"][0]["acquirer_ref"], "acq_99999999",
                 "the foreign row")
        n = len(out)
        check_eq([(b["line"], b["error"].split(" (")[0])
                  for b in rep["bad_lines"]],
                 [(n - 3, "the wrong number of columns"),
                  (n - 2, "not UTF-8"),
                  (n - 1, "amount is not a positive integer"),
                  (n, "a duplicated row")], "bad lines by number")

        # The text report names them too.
        r = reconcile(s, bad_path)
        check("amount_mismatch: line 2: key %s" % edited[2].decode()
              in r.stdout, "text: %r" % r.stdout)

        # Booked to suspense, idempotently.
        suspense = 9500
        check_eq(s.post("/v1/accounts", [account(suspense)]).status, 200,
                 "suspense account")
        r = reconcile(s, bad_path, "--book-suspense", str(suspense),
                      "--reason", "settlement 2026-12-07 review")
        check_eq(r.returncode, 1, "booked, still differences")
        check("differences booked to suspense" in r.stdout, r.stdout)
        after = balance(s, suspense)
        # missing_in_ledger 5 and the amount +1 credit suspense; the
        # dropped row's amount debits it.
        check_eq((after[0], after[2]), (5 + 1, int(dropped[4])),
                 "suspense postings")
        r = reconcile(s, bad_path, "--book-suspense", str(suspense),
                      "--reason", "settlement 2026-12-07 review")
        check_eq(balance(s, suspense), after, "a second run books nothing")
        # The tenth review's F2: only the configured suspense account;
        # one key is booked once, whatever amount a later file says.
        check_eq(s.post("/v1/accounts", [account(9501)]).status, 200,
                 "another account")
        r = reconcile(s, bad_path, "--book-suspense", "9501",
                      "--reason", "elsewhere")
        check(r.returncode != 0 and "acquirer_suspense_account" in r.stderr,
              "booking to another account refused: %r" % r.stderr)
        check_eq(balance(s, 9501), (0, 0, 0, 0), "nothing booked to 9501")
        lines = open(bad_path, "rb").read().split(b"\n")
        for i, l in enumerate(lines):
            if b"acq_99999999" in l:
                f = l.split(b",")
                f[4] = str(int(f[4]) + 1000).encode()
                lines[i] = b",".join(f)
        again = ctx.path("settle-more.csv")
        with open(again, "wb") as f:
            f.write(b"\n".join(lines))
        r = reconcile(s, again, "--book-suspense", str(suspense),
                      "--reason", "a larger amount for a booked key")
        check_eq(balance(s, suspense), after,
                 "a booked key is not booked again with another amount")
        r = reconcile(s, bad_path, "--csv")
        check(r.stdout.splitlines()[0].startswith("kind,line,"), "csv")
        check_eq(len(r.stdout.splitlines()), 1 + 4 + 4, "csv rows")
        m = metrics(s)
        check(m['tpwallet_reconciliation_rows_total{result="bad_line"}']
              >= 4, "metric")


@e2e_test(timeout=60)
def test_the_inflight_bound_answers_503_and_no_http_thread_waits(ctx):
    with Day(ctx, "--hang-s", "1",
             TPWALLET_ACQUIRER_INFLIGHT_MAX=1) as (sim, s, token):
        sim.faults(next=["timeout"])
        first = {}
        slow_client = s.new_client()

        def slow():
            first["r"] = slow_client.post("/v1/topups", {
                "account": str(USERS[3]), "amount": "50",
                "card_token": token, "idempotency_key": "slow-1"})
        t = threading.Thread(target=slow)
        t.start()
        try:
            deadline = time.monotonic() + 5 * slow_factor()
            while metrics(s).get("tpwallet_acquirer_inflight") != 1.0:
                check(time.monotonic() < deadline, "the first top-up calls")
                time.sleep(0.02)
            # The bound: one call at once; the server itself answers.
            t0 = time.monotonic()
            r = topup(s, USERS[3], 60, token, "busy-1")
            check(time.monotonic() - t0 < 0.3, "refused at once")
            check_eq((r.status, r.json()["type"].rsplit("/", 1)[-1]),
                     (503, "acquirer-unavailable"), "busy: %r" % (r,))
            check("acquirer_inflight_max" in r.json()["detail"], "said")
            check_eq(s.get("/healthz", auth=None).status, 200, "healthz")
            check(time.monotonic() - t0 < 0.3,
                  "no HTTP thread waits for the acquirer")
        finally:
            t.join(timeout=10 * slow_factor())
        check_eq((first["r"].status, first["r"].json()["status"]),
                 (202, "pending"), "the slow one")
        m = metrics(s)
        check_eq(m['tpwallet_acquirer_rejected_total{reason="inflight"}'],
                 1.0, "counted")


@e2e_test(timeout=120)
def test_a_topup_right_holds_its_caps_counterparties_and_ledgers(ctx):
    """The tenth review's F1: /v1/topups checked the op alone; a right
    capped at 100 for one counterparty credited any account with
    millions.  Now the amount is held to the per-transfer cap, the
    credited account to the counterparties, its ledger to the ledgers,
    and a right that counts spending (total_cap, uses) is refused."""
    with Day(ctx) as (sim, s, token):
        dev = ctx.path("till.jwk")
        r = run_cli(["principal", "create", "--name", "till", "--key-out",
                     dev] + s.cli_args())
        check_eq(r.returncode, 0, "principal create: %s" % r.stderr)

        def under(name, *right):
            chain = ctx.path(name)
            r = run_cli(["delegate", "issue", "--key",
                         os.path.join(s.data_dir, "admin.jwk"), "--to", dev,
                         "--op", "acquirer:topup", "--out", chain]
                        + list(right))
            check_eq(r.returncode, 0, "delegate issue: %s" % r.stderr)
            return chain

        def call(chain, acc, amount, key):
            r = run_cli(["call", "-v", "--key", dev, "--mandate", chain]
                        + s.cli_args() + ["POST", "/v1/topups", json.dumps(
                            {"account": str(acc), "amount": str(amount),
                             "card_token": token,
                             "idempotency_key": key})])
            return r.stderr + r.stdout

        capped = under("capped", "--per-transfer-cap", "100",
                       "--counterparty", "9001", "--ledger", "1")
        out = call(capped, 9001, 1000000, "f1-over-cap")
        check("per-transfer-cap-exceeded" in out, "over the cap: %r"
              % out[-300:])
        out = call(capped, 9005, 50, "f1-other-account")
        check("counterparty-not-allowed" in out, "another account: %r"
              % out[-300:])
        out = call(under("ledger2", "--ledger", "2"), 9001, 50,
                   "f1-ledger")
        check("ledger-not-allowed" in out, "another ledger: %r"
              % out[-300:])
        out = call(under("total", "--total-cap", "1000"), 9001, 50,
                   "f1-total")
        check("total-cap-exceeded" in out, "a counting right: %r"
              % out[-300:])
        check_eq(balance(s, 9005), (0, 0, 0, 0), "9005 not credited")
        out = call(capped, 9001, 100, "f1-within")
        check("HTTP/1.1 200" in out, "within the right: %r" % out[-300:])
        check_eq(balance(s, 9001)[0], 100, "9001 credited 100")
