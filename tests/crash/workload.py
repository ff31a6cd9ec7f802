"""workload.py - the crash explorer's workloads (issue 20, item 1).

record() starts `tpwallet serve` on an empty W/data with the recording
shim (tests/crash/recfs.c) watching W, runs one workload through the HTTP
API, stops the server cleanly, and returns the trace, the replies
received (for each: the calls the trace held when it arrived and the seq
of the journal record it acknowledged) and the digest of every journal
prefix (`tpwallet recover --digests`).

The workloads (every request waits for its reply, so each reply's record
is the journal's last when it arrives):
  small   four accounts; a transfer; a linked chain of two; a pending
          transfer posted and another voided; a client-policy change; a
          key rotation; an audit checkpoint awaited; a clean stop;
  medium  small, then 36 more transfers in batches of 1 to 8 (linked
          pairs), a pending transfer posted, another policy change, three
          batches of 200 transfers (the journal rolls to a second segment:
          segments of 64 KiB) and a second checkpoint.
"""

import json
import os
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import harness  # noqa: E402
from harness import Server, check, wait_checkpoint  # noqa: E402
from ledger import account, transfer  # noqa: E402

HEADER = struct.Struct("<IIIHHQQ")
MAGIC = 0x4C575054
POLICY_1 = {"platforms": {"android": {"min_supported": "1.0.0"}}}
POLICY_2 = {"platforms": {"android": {"min_supported": "1.2.0"}}}


def last_seq(data_dir):
    """The seq of the last whole record in DATA/journal (the one a reply
    that just arrived acknowledged: requests are sent one at a time)."""
    jd = os.path.join(data_dir, "journal")
    best = 0
    for name in sorted(os.listdir(jd)):
        if not name.endswith(".wal"):
            continue
        with open(os.path.join(jd, name), "rb") as f:
            data = f.read()
        off = 0
        while off + HEADER.size <= len(data):
            magic, _, size, _, _, seq, _ = HEADER.unpack_from(data, off)
            if magic != MAGIC or size < HEADER.size or off + size > len(data):
                break
            best = max(best, seq)
            off += size
    return best


def trace_calls(path):
    with open(path, "rb") as f:
        return f.read().count(b"\n")


class Stopped(Exception):
    """The server went away (error injection: it may stop)."""


class Recorder:
    """Sends the workload's requests and notes each reply.  tolerant
    (error injection): an answer other than the one wanted is noted in
    refusals instead of failing, and a server gone stops the workload."""

    def __init__(self, srv, trace, tolerant=False):
        self.srv, self.trace, self.tolerant = srv, trace, tolerant
        self.acks = []
        self.refusals = []

    def send(self, method, path, body, headers=None):
        try:
            return self.srv.request(method, path, body=body,
                                    headers=headers)
        except OSError as e:
            if self.tolerant:
                raise Stopped(str(e))
            raise

    def ack(self, what, r, want=(200, 201)):
        if self.tolerant and r.status not in want:
            self.refusals.append({
                "what": what, "status": r.status,
                "problem": r.header("tpwallet-problem"),
                "retry_after": r.header("retry-after")})
            return None
        check(r.status in want, "%s: expected %s, got %r" % (what, want, r))
        self.acks.append({"calls": trace_calls(self.trace),
                          "seq": last_seq(self.srv.data_dir),
                          "what": what})
        return r

    def post(self, what, path, body):
        r = self.ack(what, self.send("POST", path, body))
        if r is not None and isinstance(body, list):
            res = r.json()
            bad = [x for x in res if x.get("status") != "created"]
            check(not bad, "%s: not created: %r" % (what, bad))
        return r

    def put_json(self, what, path, doc):
        return self.ack(what, self.send(
            "PUT", path, json.dumps(doc).encode(),
            {"Content-Type": "application/json"}))

    def checkpoint(self):
        """Wait for a signed checkpoint of the whole journal (tolerant:
        for at most 3 s, and not failing without one)."""
        if not self.tolerant:
            wait_checkpoint(self.srv, 1, cover_head=True)
            return
        try:
            wait_checkpoint(self.srv, 1, cover_head=True, timeout=3)
        except (harness.TestFailure, OSError, ValueError, KeyError):
            pass


def two_phase(rec, pid, tid, debit, credit, amount, how):
    """A pending transfer, then its post or void, each its own request."""
    rec.post("pending %d" % pid, "/v1/transfers",
             [transfer(pid, debit, credit, amount, flags=["pending"])])
    rec.post("%s %d of pending %d" % (how, tid, pid), "/v1/transfers",
             [transfer(tid, debit, credit, amount, pending_id=str(pid),
                       flags=["%s_pending_transfer" % how])])


def small(rec):
    rec.post("accounts 1-4", "/v1/accounts",
             [account(i, ledger=1, code=10) for i in range(1, 5)])
    rec.post("transfer 1", "/v1/transfers", [transfer(1, 1, 2, 10)])
    rec.post("linked chain 2-3", "/v1/transfers",
             [transfer(2, 1, 3, 5, flags=["linked"]),
              transfer(3, 3, 4, 2)])
    two_phase(rec, 4, 5, 2, 4, 7, "post")
    two_phase(rec, 6, 7, 4, 1, 3, "void")
    rec.put_json("client policy 1", "/v1/client-policy", POLICY_1)
    rec.ack("key rotation", rec.send("POST", "/v1/keys/rotate", {}))
    rec.checkpoint()


def medium(rec):
    small(rec)
    tid = 100
    for n in range(1, 9):
        evs = []
        for i in range(n):
            tid += 1
            if i % 3 == 0 and i + 1 < n:
                evs.append(transfer(tid, 1 + i % 4, 1 + (i + 1) % 4, 1 + i,
                                    flags=["linked"]))
            else:
                evs.append(transfer(tid, 1 + i % 4, 1 + (i + 2) % 4, 1 + i))
        rec.post("batch of %d from transfer %d" % (n, tid - n + 1),
                 "/v1/transfers", evs)
    two_phase(rec, 200, 201, 1, 2, 4, "post")
    # Three batches of 200 (25,600 bytes each, 4 KiB pieces to tear):
    # the journal, rolling past 64 KiB (WORKLOAD_ENV), starts a segment.
    for b in range(3):
        first = 1000 + 200 * b
        rec.post("batch of 200 from transfer %d" % first, "/v1/transfers",
                 [transfer(first + i, 1 + i % 4, 1 + (i + 1) % 4, 1)
                  for i in range(200)])
    rec.put_json("client policy 2", "/v1/client-policy", POLICY_2)
    rec.checkpoint()


def retention(rec):
    """Journal retention (store = 1): sealed segments the store's flush
    and the audit files cover move to W/archive (archive.c: copy, fsync,
    rename, directory fsync, unlink, directory fsync)."""
    rec.post("accounts 1-8", "/v1/accounts",
             [account(i, ledger=1, code=10) for i in range(1, 9)])
    for b in range(6):
        first = 10000 + 300 * b
        rec.post("batch of 300 from transfer %d" % first, "/v1/transfers",
                 [transfer(first + k, 1 + (first + k) % 8,
                           1 + (first + k + 3) % 8, 1 + k % 5)
                  for k in range(300)])
    # The move follows the store's flush and DATA/audit/state: keep
    # writing until one segment moved (bounded).
    archive = os.path.join(os.path.dirname(rec.srv.data_dir), "archive")
    deadline = time.monotonic() + 40
    k = 0
    while not [n for n in os.listdir(archive) if n.endswith(".wal")]:
        check(time.monotonic() < deadline, "no segment archived in 40 s")
        rec.post("transfer %d" % (900000 + k), "/v1/transfers",
                 [transfer(900000 + k, 1, 2, 1)])
        k += 1
        time.sleep(0.2)
    rec.checkpoint()


WORKLOADS = {"small": small, "medium": medium, "retention": retention}
# Settings a workload runs with (the server's and recovery's); {W} is the
# traced directory (for a crash state, the directory it is written to).
WORKLOAD_ENV = {
    "medium": {"TPWALLET_JOURNAL_SEGMENT_BYTES": "65536"},
    "retention": {"TPWALLET_STORE": "1",
                  "TPWALLET_CACHE_BYTES": str(1 << 20),
                  "TPWALLET_JOURNAL_SEGMENT_BYTES": "65536",
                  "TPWALLET_JOURNAL_ARCHIVE_DIR": "{W}/archive"},
}


def settings_in(env, w):
    """env with {W} replaced by w."""
    return {k: v.replace("{W}", w) for k, v in env.items()}


def traced_server(binary, shim, where, name, env, extra):
    """A server (not started) on the empty where/w/data, with the
    recorder watching where/w: the workload's settings, its trace path and
    the Server."""
    w = os.path.join(where, "w")
    os.makedirs(w)
    env = dict(env, **WORKLOAD_ENV.get(name, {}))
    trace = os.path.join(where, "trace")
    harness.CONFIG["binary"] = binary
    senv = dict(settings_in(env, w), LD_PRELOAD=shim, TPW_RECFS_ROOT=w,
                TPW_RECFS_TRACE=trace, **extra)
    srv = Server(os.path.join(w, "data"), os.path.join(where, "server.log"),
                 env=senv, binary=binary)
    return env, trace, srv


def record(binary, shim, where, name, env):
    """Run workload name with the recorder; its results (module doc)."""
    env, trace, srv = traced_server(binary, shim, where, name, env, {})
    srv.start()
    try:
        rec = Recorder(srv, trace)
        WORKLOADS[name](rec)
    finally:
        srv.stop()
    w = os.path.dirname(srv.data_dir)
    p = subprocess.run([binary, "recover", "--digests", srv.data_dir],
                       env=settings_in(env, w), capture_output=True,
                       text=True, timeout=300)
    check(p.returncode == 0, "recover --digests: %s" % p.stderr)
    digests = {}
    for line in p.stdout.split("\n"):
        if line:
            o = json.loads(line)
            digests[o["seq"]] = o["digest"]
    # The digest of the empty state (seq 0): recover an empty directory.
    empty = os.path.join(where, "empty")
    os.makedirs(empty)
    p = subprocess.run([binary, "recover", "--check", "--in-place", empty],
                       env=settings_in(env, where), capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0, "recover an empty directory: %s %s"
          % (p.stdout, p.stderr))
    digests[0] = json.loads(p.stdout)["digest"]
    return {"trace": trace, "acks": rec.acks, "digests": digests, "env": env,
            "final_seq": max(digests), "calls": trace_calls(trace)}


def start_or_refuse(srv, timeout=15):
    """Start srv and wait until /readyz answers 200 ("ready"), answers
    503 for a failed journal ("refused": it stays so until a restart),
    or the process exits (a message)."""
    srv.spawn()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            return "before it was ready (status %d)" % srv.proc.returncode
        try:
            c = harness.Client(srv.port, timeout=2)
            r = c.get("/readyz", retry=False)
            c.close()
            if r.status == 200:
                return "ready"
            if r.status == 503 and b"journal failed" in r.body:
                return "refused"
        except OSError:
            pass
        time.sleep(0.02)
    raise harness.TestFailure("server neither ready nor refusing in %d s"
                              % timeout)


def run_injected(binary, shim, where, name, env, fail):
    """Run workload name with the call the recorder would number k
    failing (fail: "k KIND", recfs.c's TPW_RECFS_FAIL), tolerating
    refusals and a server that stops; then stop it.  The replies
    acknowledged and refused, and whether the server stopped by itself."""
    env, trace, srv = traced_server(binary, shim, where, name, env,
                                    {"TPW_RECFS_FAIL": fail})
    rec = Recorder(srv, trace, tolerant=True)
    stopped = None
    try:
        why = start_or_refuse(srv)
        if why == "ready":
            WORKLOADS[name](rec)
        elif why == "refused":
            # Up but never ready (the journal failed at start: /readyz
            # answers 503 until a restart): the workload is not run.
            c = harness.Client(srv.port, timeout=2)
            r = c.get("/readyz", retry=False)
            c.close()
            rec.refusals.append({"what": "GET /readyz", "status": r.status,
                                 "problem": r.header("tpwallet-problem"),
                                 "retry_after": r.header("retry-after")})
        else:
            stopped = why
    except Stopped as e:
        stopped = "during the workload: %s" % e
    finally:
        rc = srv.stop(expect_clean=False)
    if stopped is None and rc != 0:
        stopped = "at the stop (status %s)" % rc
    with open(trace, "rb") as f:
        injected = [line.decode(errors="replace").strip()
                    for line in f if b" inject " in line]
    return {"acks": rec.acks, "refusals": rec.refusals, "stopped": stopped,
            "data": srv.data_dir, "injected": injected,
            "env": settings_in(env, os.path.dirname(srv.data_dir)),
            "log": os.path.join(where, "server.log")}
