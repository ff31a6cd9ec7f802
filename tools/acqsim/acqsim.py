#!/usr/bin/env python3
"""acqsim - a reference acquirer for tpwallet's tests and docs (issue 17,
item 4): it speaks the one JSON-over-HTTP shape of docs/acquirer.md
(charges for top-ups, payouts, a query by idempotency key, the
Acquirer-Version header), misbehaves on demand, and writes the day's
settlement file.

Faults, per request (header Acqsim-Fault) or drawn by rate from a seeded
generator (--decline-rate, --timeout-rate, --error-rate, --duplicate-rate,
--garbage-rate, --delay-rate with --delay-ms):
  approve    approve (the default outcome)
  decline    decline (status "declined", reason "do_not_honor")
  delay      answer after --delay-ms
  timeout    book the operation, then never answer in time: hold the
             connection for --hang-s and close it without a word (the
             query by idempotency key tells what happened)
  5xx        answer 503 before booking anything
  duplicate  book once, write the answer twice on the connection
  garbage    book the operation, answer 200 with a body that is not JSON
The same idempotency key always gets the operation booked the first time
(approved or declined), never a second booking; the same key with another
amount, currency, card or kind is a 409.

The settlement file (CSV, docs/acquirer.md "Settlement file") lists every
approved charge and every paid payout, in booking order; it is written on
POST /acqsim/settle, on SIGTERM/SIGINT, and at exit when --settlement is
set.  Python 3 standard library only.
"""

import argparse
import csv
import http.server
import json
import os
import random
import re
import signal
import sys
import threading
import time

VERSION_RE = re.compile(r"^(\d{4})-(\d{2})$")
FAULTS = ("approve", "decline", "delay", "timeout", "5xx", "duplicate",
          "garbage")
SETTLEMENT_COLUMNS = ("settlement_date", "acquirer_ref", "idempotency_key",
                      "type", "amount", "currency")


def luhn_ok(pan):
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class Acquirer:
    """The books of the simulated acquirer: operations by idempotency key,
    in booking order, and the fault generator."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.ops = {}      # idempotency_key -> record
        self.order = []    # idempotency keys in booking order
        self.requests = 0
        self.faults = {f: 0 for f in FAULTS}
        self.settled = False
        self.queue = []      # faults for the next charges and payouts
        self.sticky = None   # a fault for every request, queries too

    def draw(self):
        """The fault of one request: the sticky one, the next queued
        one, else one drawn by the configured rates."""
        a = self.args
        with self.lock:
            if self.sticky:
                return self.sticky
            if self.queue:
                return self.queue.pop(0)
            x = self.rng.random()
        for name, rate in (("decline", a.decline_rate),
                           ("timeout", a.timeout_rate),
                           ("5xx", a.error_rate),
                           ("duplicate", a.duplicate_rate),
                           ("garbage", a.garbage_rate),
                           ("delay", a.delay_rate)):
            if x < rate:
                return name
            x -= rate
        return "approve"

    def book(self, kind, body, decline):
        """The record of this key: booked now, or the one booked before.
        Returns (status, record or error object)."""
        key = body["idempotency_key"]
        with self.lock:
            old = self.ops.get(key)
            if old is not None:
                if (old["type"], old["amount"], old["currency"],
                        old["card_last4"]) != (kind, body["amount"],
                                               body["currency"],
                                               body["card_number"][-4:]):
                    return 409, {"error": "idempotency_key_reused",
                                 "detail": "this key was used for another "
                                           "operation"}
                return 200, old
            n = len(self.order) + 1
            ok = not decline
            rec = {
                "acquirer_ref": "acq_%08d" % n,
                "idempotency_key": key,
                "type": kind,
                "status": ("approved" if kind == "topup" else "paid")
                if ok else "declined",
                "amount": body["amount"],
                "currency": body["currency"],
                "card_last4": body["card_number"][-4:],
                "booked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                           time.gmtime()),
            }
            if not ok:
                rec["decline_reason"] = "do_not_honor"
            self.ops[key] = rec
            self.order.append(key)
            return 200, rec

    def settle(self):
        """Writes the settlement file; the number of rows."""
        path = self.args.settlement
        if not path:
            return 0
        day = self.args.settlement_date or time.strftime("%Y-%m-%d",
                                                         time.gmtime())
        with self.lock:
            rows = [self.ops[k] for k in self.order
                    if self.ops[k]["status"] in ("approved", "paid")]
            tmp = path + ".tmp"
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(SETTLEMENT_COLUMNS)
                for r in rows:
                    w.writerow((day, r["acquirer_ref"], r["idempotency_key"],
                                r["type"], r["amount"], r["currency"]))
            os.replace(tmp, path)
            self.settled = True
        return len(rows)


def version_ok(text, minimum):
    m = VERSION_RE.match(text or "")
    return bool(m) and text >= minimum


def check_body(kind, b):
    """None when b is a valid charge or payout request, else why."""
    if not isinstance(b, dict):
        return "the body is not a JSON object"
    for k in ("idempotency_key", "card_number", "amount", "currency"):
        if not isinstance(b.get(k), str):
            return "%s: a string is required" % k
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", b["idempotency_key"]):
        return "idempotency_key: 1..128 of [A-Za-z0-9_.:-]"
    if not re.fullmatch(r"[1-9][0-9]{0,37}", b["amount"]):
        return "amount: a positive integer in minor units, as a string"
    if not re.fullmatch(r"[A-Z]{3}", b["currency"]):
        return "currency: ISO 4217 code"
    pan = b["card_number"]
    if not (re.fullmatch(r"[0-9]{12,19}", pan) and luhn_ok(pan)):
        return "card_number: 12..19 digits passing the Luhn check"
    return None


def make_handler(acq):
    args = acq.args

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            if args.verbose:
                sys.stderr.write("acqsim: " + (a[0] % a[1:]) + "\n")

        def send_json(self, status, obj, twice=False, raw=None):
            body = raw if raw is not None else (
                json.dumps(obj, separators=(",", ":")) + "\n").encode()
            head = ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n"
                    % (status, self.responses.get(status, ("x",))[0],
                       len(body))).encode()
            self.wfile.write(head + body)
            if twice:
                self.wfile.write(head + body)
            self.wfile.flush()

        def read_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > 65536:
                return None
            return self.rfile.read(n)

        def gate(self):
            """False (after answering) when the version is refused."""
            v = self.headers.get("Acquirer-Version")
            if version_ok(v, args.min_version):
                return True
            self.send_json(426, {"error": "version_unsupported",
                                 "minimum": args.min_version,
                                 "detail": "Acquirer-Version %s is not "
                                           "supported; the minimum is %s"
                                           % (v or "(none)",
                                              args.min_version)})
            return False

        def do_GET(self):
            with acq.lock:
                acq.requests += 1
            if self.path == "/acqsim/stats":
                with acq.lock:
                    self.send_json(200, {"requests": acq.requests,
                                         "faults": acq.faults,
                                         "operations": len(acq.order)})
                return
            if not self.gate():
                return
            m = re.fullmatch(r"/v1/operations/([A-Za-z0-9_.:-]{1,128})",
                             self.path)
            if not m:
                self.send_json(404, {"error": "not_found"})
                return
            fault = self.headers.get("Acqsim-Fault") or acq.sticky or ""
            if fault == "timeout":
                time.sleep(args.hang_s)
                self.close_connection = True
                return
            if fault == "5xx":
                self.send_json(503, {"error": "unavailable"})
                return
            with acq.lock:
                rec = acq.ops.get(m.group(1))
            if rec is None:
                self.send_json(404, {"error": "unknown_operation",
                                     "idempotency_key": m.group(1)})
            else:
                self.send_json(200, rec)

        def do_POST(self):
            with acq.lock:
                acq.requests += 1
            raw = self.read_body()
            if self.path == "/acqsim/settle":
                n = acq.settle()
                self.send_json(200, {"rows": n,
                                     "settlement": args.settlement})
                return
            if self.path == "/acqsim/faults":
                try:
                    ctl = json.loads(raw or b"{}")
                    nxt = list(ctl.get("next", []))
                    sticky = ctl.get("sticky", acq.sticky)
                    mv = ctl.get("min_version", args.min_version)
                    ok = (all(f in FAULTS for f in nxt) and
                          (sticky is None or sticky in FAULTS) and
                          VERSION_RE.match(mv))
                except (ValueError, AttributeError, TypeError):
                    ok = False
                if not ok:
                    self.send_json(400, {"error": "invalid_request"})
                    return
                with acq.lock:
                    acq.queue.extend(nxt)
                    acq.sticky = sticky
                    args.min_version = mv
                self.send_json(200, {"queued": len(acq.queue),
                                     "sticky": acq.sticky,
                                     "min_version": mv})
                return
            if not self.gate():
                return
            kind = {"/v1/charges": "topup",
                    "/v1/payouts": "payout"}.get(self.path)
            if kind is None:
                self.send_json(404, {"error": "not_found"})
                return
            try:
                body = json.loads(raw or b"")
            except ValueError:
                body = None
            why = check_body(kind, body)
            if why:
                self.send_json(400, {"error": "invalid_request",
                                     "detail": why})
                return
            fault = self.headers.get("Acqsim-Fault") or acq.draw()
            if fault not in FAULTS:
                self.send_json(400, {"error": "invalid_request",
                                     "detail": "unknown Acqsim-Fault"})
                return
            with acq.lock:
                acq.faults[fault] += 1
            if fault == "5xx":
                self.send_json(503, {"error": "unavailable"})
                return
            status, rec = acq.book(kind, body, fault == "decline")
            if fault == "timeout":
                time.sleep(args.hang_s)
                self.close_connection = True
                return
            if fault == "delay":
                time.sleep(args.delay_ms / 1000.0)
            if fault == "garbage" and status == 200:
                self.send_json(200, None, raw=b"<html>oops</html>\n")
                return
            self.send_json(status, rec, twice=fault == "duplicate")
            if fault == "duplicate":
                self.close_connection = True

    return Handler


def main(argv=None):
    ap = argparse.ArgumentParser(prog="acqsim", description=__doc__,
                                 formatter_class=argparse.
                                 RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:0",
                    help="HOST:PORT (default 127.0.0.1 and a free port)")
    ap.add_argument("--port-file",
                    help="write the port listened on to this file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-version", default="2026-01",
                    help="the oldest Acquirer-Version accepted (YYYY-MM)")
    for name in ("decline", "timeout", "error", "duplicate", "garbage",
                 "delay"):
        ap.add_argument("--%s-rate" % name, type=float, default=0.0)
    ap.add_argument("--delay-ms", type=int, default=200)
    ap.add_argument("--hang-s", type=float, default=5.0,
                    help="how long a timeout holds the connection")
    ap.add_argument("--settlement", help="the settlement file to write")
    ap.add_argument("--settlement-date",
                    help="YYYY-MM-DD of the file (default: today, UTC)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not VERSION_RE.match(args.min_version):
        ap.error("--min-version: YYYY-MM")
    host, _, port = args.listen.rpartition(":")
    acq = Acquirer(args)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server((host or "127.0.0.1", int(port)), make_handler(acq))
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.replace(args.port_file + ".tmp", args.port_file)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.server_close()
        acq.settle()
    return 0


if __name__ == "__main__":
    sys.exit(main())
