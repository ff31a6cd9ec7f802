#!/usr/bin/env python3
"""cluster_ratio.py - durable transfers/s in cluster mode against a single
node, in one run (issue 13, first step).

    TMPDIR=DIR python3 bench/cluster_ratio.py [--binary build/tpwallet]
        [--batches 120] [--accounts 10000] [--connections 4]

Starts the test cluster of tests/cluster/pgcluster.py (one etcd, three
Patroni-managed PostgreSQL 15 nodes, synchronous_mode_strict) in TMPDIR,
then, one after the other, a single-node `tpwallet serve` and one with
`--cluster` (the setting, in the environment), each given the same
accounts and the same HTTP batches of 8190 transfers
(bench/http_batch.py).  Data directories are in TMPDIR, on disk: every
fdatasync is real.  Everything runs on this machine, sharing its cores
and disk.  Prints one JSON line per mode and the ratio; never passes or
fails on time.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
import pgcluster  # noqa: E402


def serve(binary, data, log, env):
    port = pgcluster.free_port()
    proc = subprocess.Popen([binary, "serve", "--data", data, "--listen",
                             "127.0.0.1:%d" % port],
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT,
                            env=dict(os.environ, **env),
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port,
                                        timeout=2) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit("tpwallet serve did not start (see %s)" % log.name)


def measure(args, work, name, env):
    data = os.path.join(work, name)
    with open(os.path.join(work, name + ".log"), "ab") as log:
        proc, port = serve(args.binary, data, log, env)
        try:
            token = open(os.path.join(data, "admin.token")).read().strip()
            benv = dict(os.environ, TPWALLET_TOKEN=token)
            batch = [sys.executable, os.path.join(HERE, "http_batch.py"),
                     "--port", str(port), "--accounts", str(args.accounts)]
            subprocess.run(batch + ["--create-accounts"], env=benv,
                           check=True, timeout=300)
            out = subprocess.run(batch + ["--batches", str(args.batches),
                                          "--connections",
                                          str(args.connections)],
                                 env=benv, check=True, timeout=900,
                                 capture_output=True, text=True).stdout
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    fig = json.loads(out.strip().splitlines()[-1])
    fig["mode"] = name
    print(json.dumps(fig))
    sys.stdout.flush()
    return fig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/tpwallet")
    ap.add_argument("--batches", type=int, default=120)
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="tpwallet-cluster-bench-")
    c = pgcluster.PgCluster(os.path.join(work, "pg"))
    try:
        c.start(timeout=120)
        print(json.dumps({"cpus": os.cpu_count(), "work": work,
                          "note": "etcd, 3 PostgreSQL, Patroni, the server "
                          "and the load share this machine"}))
        single = measure(args, work, "single", {})
        cluster = measure(args, work, "cluster",
                          {"TPWALLET_CLUSTER": c.conninfo()})
        rows = c.psql("SELECT count(*), coalesce(sum(length(bytes)), 0) "
                      "FROM tpw_journal").strip().split("|")
        print(json.dumps({
            "cluster_over_single": round(cluster["transfers_per_second"]
                                         / single["transfers_per_second"],
                                         3),
            "table_rows": int(rows[0]), "table_bytes": int(rows[1])}))
    finally:
        c.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
