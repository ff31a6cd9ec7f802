#!/usr/bin/env python3
"""HTTP batch benchmark: create accounts, then POST batches of transfers.

Bodies are generated before the clock starts, so the figure is the
server's, not this script's JSON encoding.  Several keep-alive connections
send at once (one thread each).  Prints figures; never passes or fails on
time.  Used by bench/run.sh.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time


# The administrator's bearer token (docs/authz.md): TPWALLET_TOKEN.
AUTH = {"Authorization": "Bearer " + os.environ["TPWALLET_TOKEN"]} \
    if os.environ.get("TPWALLET_TOKEN") else {}


def post(conn, path, body):
    conn.request("POST", path, body=body,
                 headers={"Content-Type": "application/json", **AUTH})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: HTTP {r.status}: {data[:300]!r}")
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--accounts", type=int, default=100000)
    ap.add_argument("--create-accounts", action="store_true")
    ap.add_argument("--batches", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8190)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--run", type=int, default=1)
    args = ap.parse_args()

    if args.create_accounts:
        conn = http.client.HTTPConnection(args.host, args.port, timeout=60)
        for start in range(0, args.accounts, 8190):
            n = min(8190, args.accounts - start)
            body = json.dumps([{"id": str(start + i + 1), "ledger": 1, "code": 1}
                               for i in range(n)])
            res = json.loads(post(conn, "/v1/accounts", body))
            bad = [r for r in res if r["status"] not in ("created", "exists")]
            if bad:
                sys.exit(f"account creation failed: {bad[:3]}")
        conn.close()

    if args.batches == 0:
        return
    import random
    rnd = random.Random(args.run)
    bodies = []
    for b in range(args.batches):
        evs = []
        for i in range(args.batch):
            d = rnd.randrange(1, args.accounts + 1)
            c = d % args.accounts + 1
            evs.append('{"id":"%d%06d%05d","debit_account_id":"%d",'
                       '"credit_account_id":"%d","amount":"1","ledger":1,"code":1}'
                       % (args.run, b, i, d, c))
        bodies.append(("[" + ",".join(evs) + "]").encode())

    lock = threading.Lock()
    next_body = [0]
    failures = [0]
    latencies = []

    def worker():
        conn = http.client.HTTPConnection(args.host, args.port, timeout=120)
        while True:
            with lock:
                k = next_body[0]
                next_body[0] += 1
            if k >= len(bodies):
                break
            t = time.perf_counter()
            res = json.loads(post(conn, "/v1/transfers", bodies[k]))
            dt = time.perf_counter() - t
            bad = sum(1 for r in res if r["status"] != "created")
            with lock:
                failures[0] += bad
                latencies.append(dt)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    latencies.sort()
    total = args.batches * args.batch
    print(json.dumps({
        "transfers": total, "batch": args.batch, "connections": args.connections,
        "seconds": round(secs, 3), "transfers_per_second": round(total / secs),
        "batch_latency_ms_p50": round(latencies[len(latencies) // 2] * 1000, 2),
        "batch_latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "failed_events": failures[0]}))


if __name__ == "__main__":
    main()
