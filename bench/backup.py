#!/usr/bin/env python3
"""backup.py - backup throughput against `cp -r` and the drill's RTO at N
transfers of history (issue 14, docs/benchmarks.md "Backup and restore").

Starts `tpwallet serve` (store = 1) on a fresh data directory under
$TMPDIR, creates 1,000 accounts and N transfers in batches of 8,190
through HTTP, waits until the store has flushed everything, then in the
same run: `cp -r DATA` (the baseline, once as it is and once followed
by `sync -f` on the copy, as the backup fsyncs every file), `tpwallet backup` of the running
server into an empty location (encrypted), and `tpwallet drill` of that
location (restore, verify, serve, sample).  Prints one JSON object;
never passes or fails on time.

    TMPDIR=/work/tmp python3 bench/backup.py --binary build/tpwallet \
        --transfers 1000000
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BATCH = 8190
ACCOUNTS = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, token, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, body=body,
              headers={"Content-Type": "application/json",
                       "Authorization": "Bearer " + token})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("%s %s: HTTP %d %r" % (method, path, r.status,
                                                  data[:200]))
    return data


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, fs in os.walk(path) for f in fs)


def metric(port, token, name):
    text = request(port, token, "GET", "/metrics").decode()
    return int(re.search(r"^%s (\d+)$" % name, text, re.M).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/tpwallet")
    ap.add_argument("--transfers", type=int, default=1000000)
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    work = tempfile.mkdtemp(prefix="tpwallet-bench-backup-")
    data = os.path.join(work, "data")
    port = free_port()
    env = dict(os.environ, TPWALLET_STORE="1")
    log = open(os.path.join(work, "serve.log"), "wb")
    srv = subprocess.Popen([binary, "serve", "--data", data, "--listen",
                            "127.0.0.1:%d" % port], stdout=log,
                           stderr=log, env=env)
    try:
        for _ in range(200):
            if os.path.exists(os.path.join(data, "admin.token")):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        token = open(os.path.join(data, "admin.token")).read().split()[0]
        request(port, token, "POST", "/v1/accounts", json.dumps(
            [{"id": str(i), "ledger": 1, "code": 1}
             for i in range(1, ACCOUNTS + 1)]))
        t0 = time.monotonic()
        done = 0
        while done < a.transfers:
            n = min(BATCH, a.transfers - done)
            body = json.dumps([
                {"id": str(10**6 + done + k),
                 "debit_account_id": str(1 + (done + k) % ACCOUNTS),
                 "credit_account_id": str(1 + (done + k + 1) % ACCOUNTS),
                 "amount": "1", "ledger": 1, "code": 1}
                for k in range(n)])
            request(port, token, "POST", "/v1/transfers", body)
            done += n
        load_s = time.monotonic() - t0
        want = metric(port, token, "tpwallet_store_committed_seq")
        while metric(port, token, "tpwallet_store_flushed_seq") < want:
            time.sleep(0.2)
        size = dir_bytes(data)

        t0 = time.monotonic()
        subprocess.run(["cp", "-r", data, os.path.join(work, "copy")],
                       check=True)
        cp_s = time.monotonic() - t0
        shutil.rmtree(os.path.join(work, "copy"))
        # The same with the copy synced (the backup fsyncs every file).
        subprocess.run(["sync"], check=True)
        t0 = time.monotonic()
        subprocess.run(["cp", "-r", data, os.path.join(work, "copy")],
                       check=True)
        subprocess.run(["sync", "-f", os.path.join(work, "copy")],
                       check=True)
        cp_sync_s = time.monotonic() - t0
        shutil.rmtree(os.path.join(work, "copy"))

        key = os.path.join(work, "backup.key")
        subprocess.run([binary, "backup", "keygen", "--out", key],
                       check=True, capture_output=True)
        loc = os.path.join(work, "loc")
        t0 = time.monotonic()
        subprocess.run([binary, "backup", "--data", data, "--to", loc,
                        "--key-file", key], check=True, capture_output=True)
        backup_s = time.monotonic() - t0
        backup_bytes = dir_bytes(loc)

        t0 = time.monotonic()
        p = subprocess.run([binary, "drill", "--from", loc, "--key-file",
                            key, "--live", "http://127.0.0.1:%d" % port,
                            "--token-file",
                            os.path.join(data, "admin.token"), "--json"],
                           capture_output=True, text=True, env=dict(
                               os.environ, TMPDIR=work))
        drill_s = time.monotonic() - t0
        drill = json.loads(p.stdout)
        if p.returncode != 0:
            sys.stderr.write(p.stderr[-2000:])
        print(json.dumps({
            "transfers": a.transfers, "load_s": round(load_s, 2),
            "data_bytes": size,
            "cp_r_s": round(cp_s, 3),
            "cp_r_mb_s": round(size / 1e6 / cp_s, 1),
            "cp_r_sync_s": round(cp_sync_s, 3),
            "cp_r_sync_mb_s": round(size / 1e6 / cp_sync_s, 1),
            "backup_s": round(backup_s, 3),
            "backup_bytes": backup_bytes,
            "backup_mb_s": round(size / 1e6 / backup_s, 1),
            "drill_exit": p.returncode, "drill_s": round(drill_s, 3),
            "rto_s": drill["rto_s"], "rpo_entries": drill["rpo_entries"],
            "restored_seq": drill["restored_seq"],
        }))
    finally:
        srv.terminate()
        srv.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
