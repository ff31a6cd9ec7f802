"""test_witness.py - `tpwallet witness` as a log would use it (C2SP
tlog-witness): the first checkpoint is cosigned from old size 0, the next
with a consistency proof; a rollback, a wrong old size, a tampered proof,
an unknown log and a forged signature are refused with the spec's
statuses; the witness remembers what it cosigned across a restart; and a
witness that accepts connections but never answers holds back neither
the log's checkpoints nor the other witnesses."""

import base64
import hashlib
import os
import select
import signal
import socket
import subprocess
import threading
import time

from harness import (e2e_test, check, check_eq, free_port, Client, CONFIG,
                     slow_factor, scaled, run_cli, TestFailure,
                     wait_checkpoint)
from ledger import account, transfer, create

EM_DASH = "\u2014"


class Witness:
    """A `tpwallet witness` process on 127.0.0.1:<free port>."""

    def __init__(self, ctx, state, name, logs):
        self.args = ["--state", state, "--name", name]
        for k in logs:
            self.args += ["--log", k]
        self.log_path = ctx.path("witness.log")
        self.proc = None
        self.port = None
        self.key = None

    def start(self):
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [CONFIG["binary"], "witness", "--listen",
                 "127.0.0.1:%d" % self.port] + self.args,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=log)
        # The key line is printed once the witness listens.
        deadline = time.time() + 10 * slow_factor()
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.time()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise TestFailure("the witness did not start: %s"
                                  % open(self.log_path, "rb").read()[-500:])
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                b = os.read(self.proc.stdout.fileno(), 1)
                if not b:
                    continue
                line += b
        self.key = line.decode().strip()
        return self

    def add(self, old, proof, note):
        body = "old %d\n" % old
        body += "".join(p + "\n" for p in proof) + "\n" + note
        c = Client(self.port)
        try:
            return c.request("POST", "/add-checkpoint", body=body.encode(),
                             headers={"Content-Type": "text/plain"})
        finally:
            c.close()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10 * slow_factor())
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()
        rc = self.proc.returncode
        self.proc = None
        check_eq(rc, 0, "witness exit status")


class SilentWitness:
    """A hung witness: 127.0.0.1:<port> accepts every connection, reads
    nothing and never answers.  Connections are held until close()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        # Until close(), and never more than 1000 connections.
        while not self.stopping.is_set() and len(self.conns) < 1000:
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if r:
                self.conns.append(self.sock.accept()[0])

    def spec(self, name):
        """A well-formed witness spec with a key nobody holds."""
        pub = os.urandom(32)
        key_id = hashlib.sha256(name.encode() + b"\n\x04" + pub).digest()[:4]
        return "http://127.0.0.1:%d %s+%s+%s" % (
            self.port, name, key_id.hex(),
            base64.b64encode(b"\x04" + pub).decode())

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def checkpoint_of_size(s, want):
    """The server's signed checkpoint once it covers want entries."""
    return wait_checkpoint(s, want)[0]


def check_cosignature(r, name, what):
    check_eq(r.status, 200, what)
    check(r.header("Content-Type").startswith("text/plain"),
          "%s: content type %r" % (what, r.header("Content-Type")))
    text = r.body.decode()
    check(text.endswith("\n") and text.count("\n") == 1,
          "%s: one cosignature line: %r" % (what, text))
    dash, who, blob = text[:-1].split(" ")
    check_eq(dash, EM_DASH, "%s: line starts with an em dash" % what)
    check_eq(who, name, "%s: cosigner name" % what)
    raw = base64.b64decode(blob, validate=True)
    check_eq(len(raw), 76, "%s: key id || timestamp || signature" % what)
    ts = int.from_bytes(raw[4:12], "big")
    check(abs(ts - time.time()) < 600, "%s: timestamp %d" % (what, ts))
    return raw


def grow(s, first_id, n):
    for k in range(n):
        create(s, "transfers", [transfer(first_id + k, 1, 2, 1)])


@e2e_test(timeout=90)
def test_witness_cosigns_consistent_checkpoints_and_refuses_the_rest(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    grow(s, 100, 2)
    key = s.get("/v1/audit/key")
    check_eq(key.status, 200, "GET /v1/audit/key")
    log_key = key.body.decode().strip()
    cp1 = checkpoint_of_size(s, 3)
    m = int(cp1.split("\n")[1])
    origin = cp1.split("\n")[0]
    name = "witness.example/w1"
    w = Witness(ctx, ctx.path("witness"), name, [log_key])
    try:
        w.start()
        check(w.key.startswith(name + "+"), "witness key %r" % w.key)
        check_eq(base64.b64decode(w.key.split("+", 2)[2])[0], 4,
                 "the cosigner key type is 0x04")
        check(os.stat(ctx.path("witness", "witness.key")).st_mode & 0o777
              == 0o600, "witness.key is mode 0600")

        raw1 = check_cosignature(w.add(0, [], cp1), name, "first checkpoint")
        check_eq(raw1[:4], bytes.fromhex(w.key.split("+", 2)[1]),
                 "the blob starts with the key id of the printed key")
        # The same checkpoint again is fine (same size, same root).
        check_cosignature(w.add(m, [], cp1), name, "same checkpoint again")

        grow(s, 200, 3)
        cp2 = checkpoint_of_size(s, m + 3)
        n = int(cp2.split("\n")[1])
        cons = s.get("/v1/audit/proof/consistency?from=%d&to=%d" % (m, n))
        check_eq(cons.status, 200, "consistency proof")
        proof = cons.json()["proof"]
        check(len(proof) > 0, "a non-empty proof %d..%d" % (m, n))

        # A tampered proof: 422, and nothing stored.
        bad = list(proof)
        h = bytearray(base64.b64decode(bad[0]))
        h[0] ^= 1
        bad[0] = base64.b64encode(bytes(h)).decode()
        check_eq(w.add(m, bad, cp2).status, 422, "tampered proof")
        check_eq(w.add(m, proof[:-1], cp2).status, 422, "truncated proof")
        # Wrong old size: 409 with the stored size.
        r = w.add(1, proof, cp2)
        check_eq(r.status, 409, "wrong old size")
        check_eq(r.header("Content-Type"), "text/x.tlog.size",
                 "409 content type")
        check_eq(r.body, b"%d\n" % m, "409 body is the stored size")
        check_eq(w.add(0, [], cp2).status, 409, "old 0 once a size is known")

        check_cosignature(w.add(m, proof, cp2), name, "next checkpoint")

        # Rollback: the older checkpoint, whatever old size is claimed.
        check_eq(w.add(n, [], cp1).status, 400, "rollback with old = stored")
        check_eq(w.add(m, [], cp1).status, 409, "rollback with old = its size")

        # Unknown origin: 404; a known origin signed by another key: 403.
        lines = cp2.split("\n")
        other = "\n".join(["example.com/other"] + lines[1:])
        check_eq(w.add(n, [], other).status, 404, "unknown origin")
        sig = lines[4].split(" ")
        blob = bytearray(base64.b64decode(sig[2]))
        blob[-1] ^= 1
        forged = "\n".join(lines[:4] + [" ".join(
            sig[:2] + [base64.b64encode(bytes(blob)).decode()])] + lines[5:])
        check_eq(w.add(n, [], forged).status, 403, "bad log signature")
        blob = bytearray(base64.b64decode(sig[2]))
        blob[0] ^= 1  # another key id: the only signature is unknown
        unknown = "\n".join(lines[:4] + [" ".join(
            sig[:2] + [base64.b64encode(bytes(blob)).decode()])] + lines[5:])
        check_eq(w.add(n, [], unknown).status, 403, "unknown signer key")

        # Malformed bodies: a clear 400, never a crash (docs/operations.md,
        # the witness).  The last one is cut inside the note's first line:
        # the origin is read first, and that text names no log the witness
        # knows, so it is the spec's 404 (C2SP tlog-witness: an unknown
        # origin), decided before the note is parsed.
        for body, status, answer in [
                ("", 400, "malformed_old_size_line"),
                ("old\n\n" + cp2, 400, "malformed_old_size_line"),
                ("old 01\n\n" + cp2, 400, "malformed_old_size_line"),
                ("old %d\nnot base64\n\n%s" % (n, cp2), 400,
                 "malformed_proof_line"),
                ("old %d\n" % n, 400, "missing_checkpoint"),
                ("old %d\n\n" % n, 400, "missing_checkpoint"),
                ("old %d\n\n%s" % (n, cp2[:20]), 404, "unknown log origin")]:
            c = Client(w.port)
            try:
                r = c.request("POST", "/add-checkpoint", body=body.encode())
            finally:
                c.close()
            check(r.status == status and answer.encode() in r.body,
                  "malformed %r: want %d %s, got %r"
                  % (body, status, answer, r))
        c = Client(w.port)
        try:
            r = c.request("POST", "/add-checkpoint", body=b"x" * 70000)
            check_eq(r.status, 413, "body over 64 KiB")
            check_eq(c.request("GET", "/add-checkpoint").status, 405, "GET")
            check_eq(c.request("GET", "/nope").status, 404, "unknown path")
        finally:
            c.close()

        # Restart: the stored size survives.
        w.stop()
        w.start()
        r = w.add(0, [], cp2)
        check_eq(r.status, 409, "after restart, old 0")
        check_eq(r.body, b"%d\n" % n, "after restart, stored size")
        check_cosignature(w.add(n, [], cp2), name, "after restart, same")
        check_eq(origin, lines[0], "origin")
    finally:
        w.stop()


@e2e_test(timeout=90)
def test_server_sends_checkpoints_to_its_witness_and_publishes_cosignatures(
        ctx):
    """serve --witness: each new checkpoint goes to the witness with a
    consistency proof from the size it last cosigned, and the served
    checkpoint carries the witness's cosignature line after the log's
    own signature; with the witness gone, the log goes on unwitnessed."""
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    log_key = s.get("/v1/audit/key").body.decode().split("\n")[0]
    s.stop()
    w = Witness(ctx, ctx.path("wstate"), "witness.test/w1", [log_key])
    w.start()
    try:
        s.extra_args = ["--witness", "http://127.0.0.1:%d %s"
                        % (w.port, w.key)]
        s.start()
        sizes = []
        for round_ in range(3):
            grow(s, 1000 + 10 * round_, 2)
            # One entry for the accounts, then one per transfer request.
            want = 1 + 2 * (round_ + 1)
            deadline = time.time() + 5 * slow_factor()
            while True:
                note = s.get("/v1/audit/checkpoint").body.decode()
                lines = note.split("\n")
                sigs = [ln for ln in lines[4:] if ln]
                if int(lines[1]) >= want and any(
                        ln.split(" ")[1] == "witness.test/w1"
                        for ln in sigs):
                    break
                check(time.time() < deadline,
                      "no cosigned checkpoint of size %d: %r" % (want, note))
                time.sleep(0.05)
            check(sigs[0].split(" ")[1] == lines[0],
                  "the log's own signature comes first: %r" % sigs)
            sizes.append(int(lines[1]))
        check(sizes == sorted(sizes) and sizes[0] < sizes[-1],
              "cosigned sizes grow: %r" % sizes)
    finally:
        w.stop()
    # The witness is gone: checkpoints go on, without its cosignature.
    grow(s, 2000, 2)
    note = checkpoint_of_size(s, 1 + 2 * 4)
    check(note.count("\n") >= 5, "still a signed checkpoint: %r" % note)
    check_eq(s.get("/healthz").status, 200, "server serving without witness")


@e2e_test(timeout=90)
def test_a_silent_witness_holds_back_neither_checkpoints_nor_other_witnesses(
        ctx):
    """A witness that accepts the connection and never answers, listed
    before a working one: 20 transfers over 3 s each get a receipt (are
    in a signed checkpoint) at the checkpoint pace, about a second, while
    the silent one times out in the background; the working witness still
    cosigns the newest checkpoint; the server stops promptly; and the
    checkpoints file, cosigned copies and all, passes `audit check`."""
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    log_key = s.get("/v1/audit/key").body.decode().split("\n")[0]
    s.stop()
    w = Witness(ctx, ctx.path("wstate"), "witness.test/w1", [log_key])
    w.start()
    dead = SilentWitness()
    try:
        s.extra_args = ["--witness", dead.spec("silent.test/w0"),
                        "--witness", "http://127.0.0.1:%d %s"
                        % (w.port, w.key)]
        s.start()
        # Before the witness thread, each checkpoint waited 500 ms for
        # the silent witness: up to 2 s from a transfer to its receipt.
        limit = scaled(1.5, 2.0)
        made, waited = [], []
        t0 = time.time()
        deadline = t0 + 3 + 10 * slow_factor()
        while len(waited) < 20:
            check(time.time() < deadline,
                  "only %d of 20 transfers got a receipt" % len(waited))
            if len(made) < 20 and time.time() >= t0 + 0.15 * len(made):
                tid = 5000 + len(made)
                create(s, "transfers", [transfer(tid, 1, 2, 1)])
                made.append((tid, time.time()))
            # In journal order: a receipt for one means every earlier
            # one is covered too; ask for the oldest still waiting.
            while len(waited) < len(made):
                tid, at = made[len(waited)]
                r = s.get("/v1/transfers/%d/receipt" % tid)
                if r.status != 200:
                    check_eq(r.status, 503, "receipt not there yet")
                    break
                waited.append(time.time() - at)
                last_size = int(r.json()["size"])
            time.sleep(0.02)
        ctx.note("silent witness: receipts within %.2f s (limit %.1f)"
                 % (max(waited), limit))
        check(max(waited) <= limit,
              "a transfer waited %.2f s for its checkpoint: %s"
              % (max(waited), ["%.2f" % x for x in waited]))

        # The working witness, after the silent one in every round,
        # cosigns the newest checkpoint all the same.
        deadline = time.time() + 5 * slow_factor()
        while True:
            lines = s.get("/v1/audit/checkpoint").body.decode().split("\n")
            if int(lines[1]) >= last_size and any(
                    ln.split(" ")[1] == "witness.test/w1"
                    for ln in lines[4:] if ln):
                break
            check(time.time() < deadline,
                  "the working witness did not cosign size %d: %r"
                  % (last_size, lines))
            time.sleep(0.05)
        check(not any(ln.split(" ")[1] == "silent.test/w0"
                      for ln in lines[4:] if ln),
              "no cosignature from the silent witness")
        check(len(dead.conns) >= 2,
              "the silent witness was tried %d times" % len(dead.conns))

        # Shutdown abandons the exchange in progress.
        t = time.time()
        s.stop()
        check(time.time() - t < 5 * slow_factor(),
              "the server took %.1f s to stop" % (time.time() - t))
    finally:
        dead.close()
        w.stop()
    r = run_cli(["audit", "check", s.data_dir])
    check_eq(r.returncode, 0, "audit check: %s" % (r.stdout + r.stderr))
    check("consistent" in r.stdout, "audit check verdict: %r" % r.stdout)
