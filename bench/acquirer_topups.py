"""Top-ups per second through the acquirer simulator (issue 17,
"Measured"; docs/benchmarks.md "Top-ups through the acquirer simulator").

Starts tools/acqsim/acqsim.py (seeded: 5% declines, 1% timeouts that
book and never answer) and `tpwallet serve` with the connector on a fresh
data directory, stores one card, then sends N top-ups from C client
threads (each a keep-alive connection, unique idempotency keys).  At the
end it waits for the resolver to settle the timed-out ones, closes the
simulator's day and checks that the money in the ledger equals the
settlement file, to the unit.  Prints figures; never passes or fails on
time (it fails only when the money disagrees).

  python3 bench/acquirer_topups.py --binary build/tpwallet --topups 3000
"""
import argparse
import csv
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SETTLEMENT = 9000
USERS = 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(conn, token, method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None
                 else None, headers={"Authorization": "Bearer " + token,
                                     "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


def wait_file(path, proc, what):
    for _ in range(400):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            sys.exit("%s exited" % what)
        time.sleep(0.05)
    sys.exit("%s did not start" % what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/tpwallet")
    ap.add_argument("--topups", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tpwallet-bench-acq-")
    data = os.path.join(work, "data")
    port_file = os.path.join(work, "acqsim.port")
    settlement = os.path.join(work, "settlement.csv")
    slog = open(os.path.join(work, "acqsim.log"), "wb")
    sim = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools/acqsim/acqsim.py"),
         "--port-file", port_file, "--settlement", settlement,
         "--seed", str(a.seed), "--decline-rate", "0.05",
         "--timeout-rate", "0.01", "--hang-s", "2"],
        stdout=slog, stderr=slog)
    wait_file(port_file, sim, "acqsim")
    sim_port = int(open(port_file).read())
    port = free_port()
    env = dict(os.environ,
               TPWALLET_ACQUIRER="http://127.0.0.1:%d" % sim_port,
               TPWALLET_ACQUIRER_SETTLEMENT_ACCOUNT=str(SETTLEMENT),
               TPWALLET_ACQUIRER_TIMEOUT_MS="1000",
               TPWALLET_ACQUIRER_INFLIGHT_MAX=str(a.inflight),
               TPWALLET_OUTBOUND_ALLOW="127.0.0.1")
    log = open(os.path.join(work, "serve.log"), "wb")
    srv = subprocess.Popen([os.path.abspath(a.binary), "serve", "--data",
                            data, "--listen", "127.0.0.1:%d" % port],
                           stdout=log, stderr=log, env=env)
    try:
        wait_file(os.path.join(data, "admin.token"), srv, "tpwallet")
        time.sleep(0.3)
        token = open(os.path.join(data, "admin.token")).read().split()[0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        st, _ = request(conn, token, "POST", "/v1/accounts",
                        [{"id": str(SETTLEMENT + i), "ledger": 1,
                          "code": 1} for i in range(USERS + 1)])
        assert st == 200, st
        st, body = request(conn, token, "POST", "/v1/vault/cards",
                           {"pan": "4111111111111111", "exp_month": 12,
                            "exp_year": time.gmtime().tm_year + 2})
        assert st == 201, body
        card = json.loads(body)["token"]
        outcomes = {}
        lock = threading.Lock()

        def client(k):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for i in range(k, a.topups, a.clients):
                while True:
                    st, body = request(c, token, "POST", "/v1/topups", {
                        "account": str(SETTLEMENT + 1 + i % USERS),
                        "amount": str(100 + i % 900), "card_token": card,
                        "idempotency_key": "bench-%d" % i})
                    if st != 503:
                        break
                    time.sleep(0.01)  # in-flight bound: try again
                key = json.loads(body).get("status", "refused %d" % st)
                with lock:
                    outcomes[key] = outcomes.get(key, 0) + 1

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        # The resolver settles the timed-out ones.
        for _ in range(600):
            st, body = request(conn, token, "GET",
                               "/v1/accounts/%d" % SETTLEMENT)
            if json.loads(body)["debits_pending"] == "0":
                break
            time.sleep(0.1)
        settled_s = time.monotonic() - t0
        debited = int(json.loads(body)["debits_posted"])
        sc = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=60)
        sc.request("POST", "/acqsim/settle", body="{}")
        sc.getresponse().read()
        with open(settlement, newline="") as f:
            rows = list(csv.DictReader(f))
        file_sum = sum(int(r["amount"]) for r in rows)
        print("top-ups %d in %.2f s: %.0f/s (clients %d, "
              "acquirer_inflight_max %d); outcomes %s; all settled after "
              "%.2f s" % (a.topups, took, a.topups / took, a.clients,
                          a.inflight, json.dumps(outcomes, sort_keys=True),
                          settled_s))
        print("ledger: settlement account debited %d; settlement file: "
              "%d rows, %d; %s" % (debited, len(rows), file_sum,
                                   "EQUAL" if debited == file_sum
                                   else "DIFFERENT"))
        if debited != file_sum:
            sys.exit(1)
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()
