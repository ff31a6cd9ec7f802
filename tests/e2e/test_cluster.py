"""test_cluster.py - cluster mode (issue 13), first step: the PostgreSQL
cluster it stands on, and the journal's PostgreSQL mirror.

The cluster (tests/cluster/pgcluster.py) is one etcd and three
Patroni-managed PostgreSQL 15 instances in synchronous mode (strict), on
loopback, run as an unprivileged user, stopped when each test ends.
Figures (failover time) are printed as notes.
"""

import errno
import os
import struct
import subprocess
import sys
import threading
import time

import journal
from ledger import account, create, transfer

from harness import (CONFIG, TestFailure, e2e_test, check, check_eq,
                     free_port, run_cli)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

import pgcluster  # noqa: E402


def cluster(ctx, nodes=3):
    return pgcluster.PgCluster(ctx.path("pg"), nodes=nodes, log=print)


@e2e_test(timeout=180, heavy=True)
def test_cluster_patroni_promotes_the_sync_standby_with_a_committed_row(ctx):
    c = cluster(ctx)
    try:
        t0 = time.monotonic()
        c.start(timeout=90)
        leader, sync = c.roles()
        ctx.note("pgcluster: 3 nodes up with leader %s and sync standby %s "
                 "in %.1f s" % (leader, sync, time.monotonic() - t0))
        check(leader and sync and leader != sync,
              "a leader and a distinct sync standby: %r %r" % (leader, sync))
        # The setting the cluster runs with, as a client sees it.
        check_eq(c.psql("SHOW synchronous_commit").strip(), "on",
                 "synchronous_commit")
        check(c.psql("SHOW synchronous_standby_names").strip() != "",
              "a synchronous standby is named")
        c.psql("SET synchronous_commit = on; CREATE TABLE probe "
               "(id int PRIMARY KEY, note text); INSERT INTO probe "
               "VALUES (1, 'before the kill')")
        t_kill = time.monotonic()
        c.kill_node(leader)
        new_leader, _ = c.wait_roles(timeout=60, not_leader=leader)
        check_eq(new_leader, sync, "the promoted node is the sync standby")
        # The first write through the same multi-host string: libpq
        # finds the new primary by itself.
        deadline = time.monotonic() + 30
        while True:
            try:
                c.psql("INSERT INTO probe VALUES (2, 'after')")
                break
            except pgcluster.ClusterError:
                check(time.monotonic() < deadline,
                      "no write accepted 30 s after the promotion")
                time.sleep(0.2)
        rto = time.monotonic() - t_kill
        check_eq(c.psql("SELECT id, note FROM probe ORDER BY id").splitlines(),
                 ["1|before the kill", "2|after"],
                 "rows after the failover")
        ctx.note("pgcluster: kill -9 of the primary to the first accepted "
                 "write: %.1f s (Patroni ttl %d s, loop_wait %d s)"
                 % (rto, c.ttl, c.loop_wait))
    finally:
        c.stop()
    for n in c.nodes:
        check(n.postmaster_pid() is None, "%s postmaster stopped" % n.name)
    check(c.etcd.poll() is not None, "etcd stopped")


def probe_binary():
    """tests/cluster/pgjournal_probe, beside the binary under test (make
    e2e builds it), else the plain build's, made here."""
    beside = os.path.join(os.path.dirname(CONFIG["binary"]), "tests",
                          "pgjournal_probe")
    if os.path.exists(beside):
        return beside
    p = subprocess.run(["make", "--no-print-directory", "-s", "-C", ROOT,
                        "build/tests/pgjournal_probe"], capture_output=True,
                       text=True, timeout=600)
    check_eq(p.returncode, 0, "make build/tests/pgjournal_probe (%s)"
             % p.stderr[-500:])
    return os.path.join(ROOT, "build", "tests", "pgjournal_probe")


class Probe:
    """One pgjournal_probe process: a writer as pgjournal sees it."""

    def __init__(self, ctx, conninfo, lease_ms=1500, reconnect_ms=60000):
        env = dict(os.environ, TPW_PGJOURNAL_CONNINFO=conninfo,
                   TPW_PGJOURNAL_LEASE_MS=str(lease_ms),
                   TPW_PGJOURNAL_RECONNECT_MS=str(reconnect_ms))
        self.secret = conninfo
        self.out = []  # every line it answered, for the secrets check
        self.proc = subprocess.Popen([probe_binary()], env=env,
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        check_eq(self.line(), "ok open", "probe opened")

    def line(self):
        s = self.proc.stdout.readline().rstrip("\n")
        self.out.append(s)
        return s

    def cmd(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.line()

    def ok(self, text):
        ans = self.cmd(text)
        check(ans.startswith("ok"), "%s: %s" % (text.split()[0], ans))
        return ans

    def err(self, text):
        """The negative errno of a failed command."""
        ans = self.cmd(text)
        check(ans.startswith("err "), "%s should fail: %s"
              % (text.split()[0], ans))
        return int(ans.split()[1])

    def read(self, from_seq, closing="ok"):
        """The rows read, and the closing line must start with
        `closing`."""
        self.proc.stdin.write("read %d\n" % from_seq)
        self.proc.stdin.flush()
        rows = []
        for _ in range(100000):
            ans = self.line()
            if not ans.startswith("row "):
                check(ans.startswith(closing), "read's closing line: %r"
                      % ans)
                return rows
            seq, last, term, data = ans.split()[1:]
            rows.append((int(seq), int(last), int(term), data))
        raise TestFailure("read did not end")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.out.append(self.proc.stdout.read() or "")
        password = self.secret.split("postgres:", 1)[1].split("@", 1)[0]
        check(all(password not in s for s in self.out),
              "the probe's answers never hold the password")


def table_seqs(db):
    return [tuple(int(x) for x in r.split("|"))
            for r in db.psql("SELECT seq, last_seq, term FROM tpw_journal "
                             "ORDER BY seq").splitlines()]


@e2e_test(timeout=120, heavy=True)
def test_pgjournal_fences_a_stale_writer_and_resolves_unknown_commits(ctx):
    db = pgcluster.PgSingle(ctx.path("pg"))
    probes = []
    try:
        db.start()
        a = Probe(ctx, db.conninfo())
        probes.append(a)
        b = Probe(ctx, db.conninfo())
        probes.append(b)
        check_eq(a.ok("acquire node-a"), "ok 1", "first term")
        a.ok("append 1 1 1 aa01")
        a.ok("append 2 3 1 aa02aa03")
        # The lease is A's until it expires: B waits.
        check_eq(b.err("acquire node-b"), -errno.EBUSY, "B before expiry")
        time.sleep(2.0)  # past A's 1.5 s lease, A idle
        check_eq(b.ok("acquire node-b"), "ok 2", "B after expiry")
        # A, paused past its lease, cannot append one more group.
        check_eq(a.err("append 4 4 1 aa04"), -errno.ESTALE, "A fenced")
        check_eq(a.err("renew 1"), -errno.ESTALE, "A's renewal fenced")
        check_eq(a.err("acquire node-a"), -errno.EBUSY, "A while B holds")
        check_eq(table_seqs(db), [(1, 1, 1), (2, 3, 1)],
                 "nothing of A after the take-over")
        b.ok("append 4 4 2 bb04")
        # The same holder takes its lease back at once, with a new term:
        # its own older term is fenced too.
        check_eq(b.ok("acquire node-b"), "ok 3", "B again")
        check_eq(b.err("append 5 5 2 bb05"), -errno.ESTALE, "old term")
        b.ok("append 5 5 3 bb05")
        # A seq already there: the same group is success (a commit whose
        # reply was lost), another group is divergence.  Never two rows.
        b.ok("append 5 5 3 bb05")
        check_eq(b.err("append 5 5 3 bb06"), -errno.EEXIST, "diverged")
        check_eq(b.ok("last"), "ok 5", "last seq")
        # The connection dropped under it: reconnected, appended once.
        db.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'tpwallet' AND pid <> "
                "pg_backend_pid()")
        b.ok("append 6 6 3 bb06")
        check_eq(table_seqs(db), [(1, 1, 1), (2, 3, 1), (4, 4, 2),
                                  (5, 5, 3), (6, 6, 3)], "the table")
        # Catch-up reads from the group holding the seq asked for.
        check_eq(a.read(3), [(2, 3, 1, "aa02aa03"), (4, 4, 2, "bb04"),
                             (5, 5, 3, "bb05"), (6, 6, 3, "bb06")],
                 "read from seq 3")
        check_eq(a.read(7), [], "read past the end")
        db.psql("UPDATE tpw_journal SET bytes = '\\xbb05' WHERE seq = 4")
        # A row off its checksum stops the read before it.
        check_eq(a.read(1, closing="err %d " % -errno.EBADMSG),
                 [(1, 1, 1, "aa01"), (2, 3, 1, "aa02aa03")],
                 "read up to a row off its checksum")
        # A wrong password: the reason names no secret.
        bad = db.conninfo().replace(db.password, "wrong" + db.password[5:])
        env = dict(os.environ, TPW_PGJOURNAL_CONNINFO=bad)
        p = subprocess.run([probe_binary()], env=env, capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        check(p.returncode != 0 and "password authentication failed"
              in p.stdout, "open with a wrong password fails: %r" % p.stdout)
        check(db.password[5:] not in p.stdout + p.stderr, "no password")
    finally:
        for p in probes:
            p.close()
        db.stop()


@e2e_test(timeout=180, heavy=True)
def test_pgjournal_appends_continue_through_a_primary_kill_with_rpo_0(ctx):
    c = cluster(ctx)
    probe = None
    try:
        c.start(timeout=90)
        leader, sync = c.roles()
        probe = Probe(ctx, c.conninfo(), lease_ms=10000)
        check_eq(probe.ok("acquire writer-1"), "ok 1", "term")
        acked = []
        times = []
        killed = []

        def kill():  # the time once both processes are gone
            c.kill_node(leader)
            killed.append(time.monotonic())

        killer = threading.Timer(1.0, kill)
        killer.start()
        deadline = time.monotonic() + 90
        seq = 0
        # Appends run while the primary is killed under them; after the
        # kill, twenty more must commit on the promoted standby.
        while time.monotonic() < deadline:
            if killed and sum(1 for t in times if t > killed[0]) >= 20:
                break
            seq += 1
            probe.ok("append %d %d 1 %016x" % (seq, seq, seq))
            acked.append(seq)
            times.append(time.monotonic())
        killer.join()
        t_kill = killed[0]
        after = [t for t in times if t > t_kill]
        check(len(after) >= 20, "20 appends after the kill (%d)"
              % len(after))
        new_leader, _ = c.wait_roles(timeout=30, not_leader=leader)
        check_eq(new_leader, sync, "the sync standby was promoted")
        rows = [int(r) for r in c.psql("SELECT seq FROM tpw_journal "
                                       "ORDER BY seq").splitlines()]
        check_eq(rows, acked, "every acknowledged append, once (RPO 0)")
        ctx.note("pgjournal: %d appends, %d acknowledged before the "
                 "kill; kill -9 of the primary to the next acknowledged "
                 "append: %.1f s; "
                 "acknowledged appends lost: 0"
                 % (len(acked), len(acked) - len(after),
                    after[0] - t_kill))
    finally:
        if probe:
            probe.close()
        c.stop()


# ---- the writer in cluster mode (tpwallet serve --cluster) -------------

LEDGER_ACCOUNTS = list(range(1, 9))


def parse_records(blob):
    """(seq, type, payload) of every journal record in blob, which must
    hold whole records only."""
    out, off = [], 0
    while off < len(blob):
        magic, _, size, typ, _, seq, _ = journal.HEADER.unpack_from(blob, off)
        check(magic == journal.MAGIC and size >= journal.HEADER.size,
              "a journal record at offset %d" % off)
        out.append((seq, typ, blob[off + journal.HEADER.size:off + size]))
        off += size
    check_eq(off, len(blob), "records end where the bytes end")
    return out


def table_bytes(conninfo):
    hexes = pgcluster.run_psql(conninfo, "SELECT encode(bytes, 'hex') FROM "
                               "tpw_journal ORDER BY seq", timeout=60)
    return b"".join(bytes.fromhex(h) for h in hexes.split())


def local_bytes(data_dir):
    out = b""
    for path in journal.segments(data_dir):
        with open(path, "rb") as f:
            out += f.read()
    return out


def transfer_ids(blob):
    ids = []
    for _, typ, payload in parse_records(blob):
        if typ == journal.TYPE_TRANSFERS:
            for off in range(0, len(payload), 128):
                lo, hi = struct.unpack_from("<QQ", payload, off)
                ids.append(lo | hi << 64)
    return ids


def cluster_server(ctx, conninfo, data_dir=None, lease_ms=None):
    """A writer in cluster mode; the connection string goes in the
    environment (argv is readable by every user)."""
    env = {"TPWALLET_CLUSTER": conninfo}
    if lease_ms:
        env["TPWALLET_CLUSTER_LEASE_MS"] = str(lease_ms)
    return ctx.server(data_dir=data_dir, env=env)


def check_no_password(srv, password):
    check(password not in srv.log_text(), "the server's log holds no "
          "password")


class TransferLoad:
    """Threads posting batches of transfers with unique ids; each reply
    recorded with the times it was sent and answered."""

    def __init__(self, srv, threads=2, batch=100, base=1 << 40):
        self.srv, self.batch, self.base = srv, batch, base
        self.lock = threading.Lock()
        self.acked = []     # (t_sent, t_replied, ids)
        self.failed = []    # (t_sent, status or error, ids)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(t,),
                                         daemon=True)
                        for t in range(threads)]
        for th in self.threads:
            th.start()

    def run(self, tid):
        c = self.srv.new_client(timeout=90)
        n = 0
        deadline = time.monotonic() + 120
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                ids = [self.base + (tid << 32) + n + i
                       for i in range(self.batch)]
                n += self.batch
                evs = [transfer(i, LEDGER_ACCOUNTS[i % 8],
                                LEDGER_ACCOUNTS[(i + 1) % 8], 1 + i % 97,
                                code=3) for i in ids]
                t0 = time.monotonic()
                try:
                    r = c.post("/v1/transfers", evs, retry=False)
                except OSError as e:
                    with self.lock:
                        self.failed.append((t0, repr(e), ids))
                    return
                ok = (r.status == 200 and [x.get("status") for x in r.json()]
                      == ["created"] * len(ids))
                with self.lock:
                    if ok:
                        self.acked.append((t0, time.monotonic(), ids))
                    else:
                        self.failed.append((t0, r.status, ids))
        finally:
            c.close()

    def acked_after(self, t):
        with self.lock:
            return [a for a in self.acked if a[0] > t]

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=100)
        check(all(not th.is_alive() for th in self.threads),
              "load threads ended")


@e2e_test(timeout=240, heavy=True)
def test_cluster_writer_keeps_every_acknowledged_transfer_through_a_primary_kill(ctx):
    c = cluster(ctx)
    srv = follower = None
    try:
        c.start(timeout=90)
        leader, sync = c.roles()
        # The lease outlasts the PostgreSQL failover (about 15 s): else
        # the follower would rightly take the writer's place after it.
        srv = cluster_server(ctx, c.conninfo(), lease_ms=30000)
        srv.start(timeout=60)
        follower = start_node(ctx, c.conninfo(), lease_ms=30000)
        create(srv, "accounts", [account(i, code=7)
                                 for i in LEDGER_ACCOUNTS],
               ["created"] * len(LEDGER_ACCOUNTS))
        load = TransferLoad(srv)
        time.sleep(2.0)
        check(len(load.acked) > 0, "transfers acknowledged before the kill")
        c.kill_node(leader)
        t_kill = time.monotonic()
        # Bounded: the load keeps going until 20 requests sent after the
        # kill are acknowledged.
        deadline = t_kill + 90
        while time.monotonic() < deadline and len(load.acked_after(t_kill)) \
                < 20:
            time.sleep(0.2)
        load.finish()
        after = load.acked_after(t_kill)
        check(len(after) >= 20, "writes accepted after the primary's kill "
              "(%d; failures %r)" % (len(after), load.failed[:3]))
        check_eq(load.failed, [], "no request failed")
        rto = min(a[1] for a in after) - t_kill
        new_leader, _ = c.wait_roles(timeout=30, not_leader=leader)
        check_eq(new_leader, sync, "the sync standby was promoted")
        r = srv.get("/readyz")
        check_eq(r.status, 200, "ready after the failover")
        # The follower listens again on the new primary and catches up.
        same_state(srv, follower, "the follower after the primary's kill")
        check_eq(role_of(follower)["role"], "follower", "still a follower")
        follower.stop()
        srv.stop()
        acked = sorted(i for a in load.acked for i in a[2])
        table = table_bytes(c.conninfo())
        local = local_bytes(srv.data_dir)
        # RPO 0: every acknowledged transfer is in the table, and the
        # table is the local journal, byte for byte.
        check_eq(len(table), len(local), "table and local journal sizes")
        check(table == local, "the table holds the local journal's bytes")
        in_table = set(transfer_ids(table))
        missing = [i for i in acked if i not in in_table]
        check_eq(missing[:5], [], "acknowledged transfers missing from the "
                 "table (of %d)" % len(acked))
        check_no_password(srv, c.password)
        ctx.note("cluster writer: %d transfers acknowledged, %d after the "
                 "kill -9 of the PostgreSQL primary; first write "
                 "acknowledged %.1f s after it (RTO); acknowledged "
                 "transfers lost: 0 (RPO 0)"
                 % (len(acked), sum(len(a[2]) for a in after), rto))
    finally:
        for s in (srv, follower):
            if s:
                s.force_cleanup()
        c.stop()


@e2e_test(timeout=150, heavy=True)
def test_cluster_writer_stops_when_fenced_and_a_new_node_catches_up(ctx):
    db = pgcluster.PgSingle(ctx.path("pg"))
    a = b = None
    try:
        db.start()
        a = cluster_server(ctx, db.conninfo(), lease_ms=2000)
        a.start(timeout=30)
        create(a, "accounts", [account(i, code=7) for i in LEDGER_ACCOUNTS],
               ["created"] * len(LEDGER_ACCOUNTS))
        ids = list(range(1000, 1300))
        for k in range(0, len(ids), 100):
            create(a, "transfers", [transfer(i, 1 + i % 8, 1 + (i + 1) % 8,
                                             5, code=3)
                                    for i in ids[k:k + 100]],
                   ["created"] * 100)
        rows = db.psql("SELECT count(*) FROM tpw_journal").strip()
        last = db.psql("SELECT max(last_seq) FROM tpw_journal").strip()
        m = a.get("/metrics")
        check_eq(m.status, 200, "/metrics")
        text = m.body.decode()
        for line in ("tpwallet_cluster_term 1",
                     "tpwallet_cluster_appended_seq " + last,
                     "tpwallet_cluster_append_duration_seconds_count "
                     + rows):
            check(line in text.splitlines(), "/metrics has %r" % line)
        # Another writer takes the lease (as after this one paused past
        # it): A's next group is refused by the table, and A stops.
        db.psql("UPDATE tpw_lease SET term = term + 1, holder = 'other', "
                "expires = now() + interval '1 hour'")
        r = a.post("/v1/transfers", [transfer(5000, 1, 2, 5, code=3)])
        check_eq(r.status, 503, "a change after the lease was lost")
        check_eq(r.json().get("type", "").rsplit("/", 1)[-1],
                 "commit-unknown", "its problem type")
        r = a.get("/readyz")
        check_eq(r.status, 503, "/readyz once fenced")
        check("cluster's journal table" in r.json().get("detail", ""),
              "/readyz names the table: %r" % r.json())
        r = a.post("/v1/transfers", [transfer(5001, 1, 2, 5, code=3)])
        check_eq(r.status, 503, "changes stay refused")
        check_eq(r.json().get("type", "").rsplit("/", 1)[-1],
                 "unavailable", "their problem type")
        check("cluster's journal table" in r.json().get("detail", ""),
              "the problem names the table: %r" % r.json())
        check_eq(db.psql("SELECT count(*) FROM tpw_journal").strip(), rows,
                 "no row appended by the fenced writer")
        a.kill9()
        # A new node with an empty data directory takes the expired
        # lease, pulls the table into its journal and serves it.
        db.psql("UPDATE tpw_lease SET expires = now() - interval '1 s'")
        b = cluster_server(ctx, db.conninfo(), lease_ms=2000)
        b.start(timeout=30)
        for i in (ids[0], ids[-1]):
            r = b.get("/v1/transfers/%d" % i)
            check_eq(r.status, 200, "transfer %d on the new node" % i)
        check_eq(b.post("/v1/transfers", [transfer(5000, 1, 2, 5, code=3)])
                 .json()[0].get("status"), "created", "B writes")
        b.stop()
        check(table_bytes(db.conninfo()) == local_bytes(b.data_dir),
              "B's journal is the table's")
        # A's journal holds its refused group at the seq B wrote: A
        # diverged and must not start.
        served, exited, rc = a.start_expecting_refusal(timeout=30)
        check(served is None and exited and rc == 65,
              "A refuses to start (%r %r %r)" % (served, exited, rc))
        check("diverged" in a.log_text(), "A says it diverged")
        for s in (a, b):
            check_no_password(s, db.password)
    finally:
        for s in (a, b):
            if s:
                s.force_cleanup()
        db.stop()


# ---- followers and failover between tpwallet nodes (second step) -------

def start_node(ctx, conninfo, data_dir=None, lease_ms=2000):
    """A cluster node on a port chosen here, advertising it
    (cluster_advertise): the writer, or a follower when another node
    holds the lease."""
    s = cluster_server(ctx, conninfo, data_dir=data_dir, lease_ms=lease_ms)
    port = free_port()
    s.url = "http://127.0.0.1:%d" % port
    s.env["TPWALLET_CLUSTER_ADVERTISE"] = s.url
    s.env["TPWALLET_CLUSTER_READ_WAIT_MS"] = "500"
    s.spawn(port)
    s.wait_ready(30)
    return s


def role_of(srv):
    r = srv.get("/readyz")
    check_eq(r.status, 200, "/readyz of %s" % srv.url)
    return r.json()


def metric(srv, name):
    for line in srv.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise TestFailure("%s not in /metrics of %s" % (name, srv.url))


def same_state(writer, follower, what):
    """The two nodes' digests at the same seq (bounded: the follower
    catches up within 10 s of the load's end)."""
    deadline = time.monotonic() + 10
    while True:
        w = writer.get("/v1/cluster").json()
        f = follower.get("/v1/cluster").json()
        if w["digest_seq"] == f["digest_seq"]:
            break
        check(time.monotonic() < deadline, "%s: the follower reached the "
              "writer's seq (%r %r)" % (what, w, f))
        time.sleep(0.1)
    check_eq(f["digest"], w["digest"], "%s: digests at seq %d"
             % (what, w["digest_seq"]))
    return w["digest_seq"]


def first_write(srv, base, deadline_s=30):
    """Post one new transfer to srv until it is created: the time it
    was (bounded)."""
    c = srv.new_client(timeout=30)
    deadline = time.monotonic() + deadline_s
    n = 0
    try:
        while True:
            r = c.post("/v1/transfers", [transfer(base + n, 1, 2, 1,
                                                  code=3)], retry=False)
            n += 1
            if r.status == 200 and r.json()[0].get("status") == "created":
                return time.monotonic(), base + n - 1
            check(time.monotonic() < deadline, "no write accepted by %s "
                  "(last %r)" % (srv.url, r))
            time.sleep(0.05)
    finally:
        c.close()


def retry_batches(srv, batches):
    """Post every batch again with the same ids: an acknowledged one must
    answer exists for each; one whose outcome was unknown is created or
    exists.  Returns every id now applied."""
    c = srv.new_client(timeout=60)
    out = []
    try:
        for acked, ids in batches:
            evs = [transfer(i, LEDGER_ACCOUNTS[i % 8],
                            LEDGER_ACCOUNTS[(i + 1) % 8], 1 + i % 97, code=3)
                   for i in ids]
            r = c.post("/v1/transfers", evs, retry=False)
            check_eq(r.status, 200, "a retried batch")
            got = {x.get("status") for x in r.json()}
            if acked:
                check_eq(got, {"exists"}, "an acknowledged batch retried")
            else:
                check(got <= {"exists", "created"}, "a batch of unknown "
                      "outcome retried: %r" % got)
            out += ids
    finally:
        c.close()
    return out


def check_balances(srv, amounts):
    """Debits equal credits, and their total is the amounts' sum: no id
    applied twice."""
    deb = cred = 0
    for a in LEDGER_ACCOUNTS:
        r = srv.get("/v1/accounts/%d" % a)
        check_eq(r.status, 200, "account %d" % a)
        deb += int(r.json()["debits_posted"])
        cred += int(r.json()["credits_posted"])
    check_eq(deb, cred, "debits = credits")
    check_eq(deb, amounts, "posted total (each transfer once)")


def key_entries(conninfo):
    """Signing-key entries in the table (journal commands of kind 5,
    "key"): each writer journals its own."""
    return sum(1 for _, typ, payload in parse_records(table_bytes(conninfo))
               if typ == 4 and struct.unpack_from("<H", payload)[0] == 5)


def wait_key_entries(conninfo, n, what):
    deadline = time.monotonic() + 10
    while key_entries(conninfo) != n:
        check(time.monotonic() < deadline, "%s: %d signing-key entries, "
              "not %d" % (what, key_entries(conninfo), n))
        time.sleep(0.2)


def load_batches(load):
    return [(True, a[2]) for a in load.acked] + \
        [(False, f[2]) for f in load.failed]


@e2e_test(timeout=240, heavy=True)
def test_cluster_followers_serve_reads_and_take_over_from_a_dead_or_paused_writer(ctx):
    db = pgcluster.PgSingle(ctx.path("pg"))
    a = b = c = None
    try:
        db.start()
        a = start_node(ctx, db.conninfo())
        b = start_node(ctx, db.conninfo())
        check_eq(role_of(a)["role"], "writer", "A's role")
        rb = role_of(b)
        check_eq((rb["role"], rb["writer"]), ("follower", a.url),
                 "B's role and the writer it names")
        create(a, "accounts", [account(i, code=7) for i in LEDGER_ACCOUNTS],
               ["created"] * len(LEDGER_ACCOUNTS))
        load = TransferLoad(a, base=1 << 40)
        time.sleep(2.0)
        load.finish()
        check(len(load.acked) > 0 and load.failed == [],
              "the load on A (%d acked, failures %r)"
              % (len(load.acked), load.failed[:3]))

        # (a) B serves reads at A's state; a write to B names A.
        seq = same_state(a, b, "follower B")
        m = b.get("/metrics").body.decode().splitlines()
        for line in ('tpwallet_cluster_role{role="follower"} 1',
                     'tpwallet_cluster_role{role="writer"} 0',
                     "tpwallet_cluster_term 1",
                     "tpwallet_cluster_applied_seq %d" % seq,
                     "tpwallet_cluster_appended_seq %d" % seq,
                     "tpwallet_cluster_lag_seq 0",
                     "tpwallet_cluster_lag_seconds 0.000000"):
            check(line in m, "B's /metrics has %r" % line)
        some = load.acked[0][2][0]
        r = b.get("/v1/transfers/%d" % some)
        check_eq(r.status, 200, "a transfer read on B")
        check(int(r.header("tpwallet-seq")) >= seq, "B's reply says its "
              "seq: %r" % r.header("tpwallet-seq"))
        r = b.post("/v1/transfers", [transfer(7, 1, 2, 1, code=3)])
        check_eq(r.status, 503, "a write to the follower")
        p = r.json()
        check_eq(p["type"], "/problems/not-the-writer", "its problem")
        check(a.url in p["detail"], "it names the writer: %r" % p)
        check_eq(r.header("location"), a.url, "Location")
        r = a.post("/v1/transfers", [transfer(8, 1, 2, 1, code=3)])
        check_eq(r.status, 200, "a write to the writer")
        wseq = int(r.header("tpwallet-seq"))
        check(wseq > seq, "the write's seq")
        # Read-your-writes on the follower: held until it applied wseq.
        r = b.get("/v1/transfers/8", headers={"Tpwallet-Min-Seq": str(wseq)})
        check_eq(r.status, 200, "the write read on B at its seq")
        check(int(r.header("tpwallet-seq")) >= wseq, "B's reply seq")
        t0 = time.monotonic()
        r = b.get("/v1/transfers/8",
                  headers={"Tpwallet-Min-Seq": str(wseq + 10 ** 9)})
        waited = time.monotonic() - t0
        check_eq(r.status, 503, "a seq B will not reach")
        check_eq(r.json()["type"], "/problems/seq-not-reached", "its type")
        check("%d behind" % (wseq + 10 ** 9 - int(r.header("tpwallet-seq")))
              in r.json()["detail"], "it names the lag: %r" % r.json())
        check_eq(r.header("retry-after"), "1", "Retry-After")
        check(0.45 <= waited < 5, "held about cluster_read_wait_ms "
              "(%.2f s)" % waited)
        amounts = 1 + sum(1 + i % 97 for x in load.acked for i in x[2])

        # (b) kill -9 of the writer under load: B takes over.
        load = TransferLoad(a, base=2 << 40)
        time.sleep(1.5)
        t_kill = time.monotonic()
        a.kill9()
        t_first, first_id = first_write(b, 3 << 40)
        amounts += 1
        rto_kill = t_first - t_kill
        load.finish()
        # The new writer stamps after everything the old one journaled.
        old_last = max(int(b.get("/v1/transfers/%d" % x[2][-1])
                           .json()["timestamp"]) for x in load.acked)
        check(int(b.get("/v1/transfers/%d" % first_id).json()["timestamp"])
              > old_last, "timestamps increase across the failover")
        check_eq(role_of(b)["role"], "writer", "B's role after the kill")
        check_eq(role_of(b)["term"], 2, "B's term")
        # A's key, then B's once it writes (a follower journals none).
        wait_key_entries(db.conninfo(), 2, "after B took over")
        check(len(load.acked) > 0, "writes acknowledged before the kill")
        ids = retry_batches(b, load_batches(load))
        amounts += sum(1 + i % 97 for i in ids)

        # (d) A again, from an empty data directory: a follower that
        # catches up, with its progress in its log; killed under load
        # and restarted from nothing, it catches up again.
        a = start_node(ctx, db.conninfo(), data_dir=ctx.path("a-again"))
        check_eq(role_of(a)["role"], "follower", "A's role on its return")
        same_state(b, a, "follower A from nothing")
        load = TransferLoad(b, base=7 << 40)
        time.sleep(1.0)
        a.kill9()
        time.sleep(0.5)
        load.finish()
        check_eq(load.failed, [], "the writer's load while its follower "
                 "died")
        amounts += sum(1 + i % 97 for x in load.acked for i in x[2])
        t_restart = time.monotonic()
        a = start_node(ctx, db.conninfo(), data_dir=ctx.path("a-third"))
        seq = same_state(b, a, "follower A restarted from nothing")
        check("cluster catch-up" in a.log_text(), "A's catch-up in its log")
        ctx.note("cluster follower: restarted from an empty data directory, "
                 "caught up to seq %d in %.1f s" % (seq, time.monotonic()
                                                    - t_restart))

        # (c) SIGSTOP of the writer (B) past its lease under load: A
        # takes over; B, resumed, appends nothing and takes no write.
        b_term = role_of(b)["term"]
        load = TransferLoad(b, base=4 << 40)
        time.sleep(1.0)
        t_stop = time.monotonic()
        os.kill(b.proc.pid, 19)  # SIGSTOP
        t_first, _ = first_write(a, 5 << 40)
        amounts += 1
        rto_pause = t_first - t_stop
        rows_b = db.psql("SELECT count(*) FROM tpw_journal WHERE term = %d"
                         % b_term).strip()
        os.kill(b.proc.pid, 18)  # SIGCONT
        load.finish()
        r = b.post("/v1/transfers", [transfer(6 << 40, 1, 2, 1, code=3)])
        check_eq(r.status, 503, "a write to the resumed old writer")
        time.sleep(1.0)
        check_eq(db.psql("SELECT count(*) FROM tpw_journal WHERE term = %d"
                         % b_term).strip(), rows_b,
                 "no row appended by the old writer once resumed")
        a_term = role_of(a)["term"]
        check_eq(a_term, b_term + 1, "A's term")
        check_eq(db.psql("SELECT count(*) FROM tpw_journal WHERE term <> %d"
                         " AND seq > (SELECT min(seq) FROM tpw_journal "
                         "WHERE term = %d)" % (a_term, a_term)).strip(), "0",
                 "every row after the takeover carries the new term")
        ids = retry_batches(a, load_batches(load))
        amounts += sum(1 + i % 97 for i in ids)
        r = a.get("/v1/transfers/%d" % (6 << 40))
        check_eq(r.status, 404, "the write refused by the old writer")
        check_balances(a, amounts)
        wait_key_entries(db.conninfo(), 3, "after A took over")
        # Clean stops: a follower, the fenced old writer, the writer.
        c = start_node(ctx, db.conninfo())
        check_eq(role_of(c)["role"], "follower", "C's role")
        same_state(a, c, "follower C")
        for s in (c, b, a):
            s.stop()
        for s in (a, b, c):
            check_no_password(s, db.password)
        ctx.note("cluster failover: kill -9 of the writer to the first "
                 "write accepted by the follower (RTO) %.1f s; SIGSTOP "
                 "past the lease %.1f s (lease 2 s)" % (rto_kill, rto_pause))
    finally:
        for s in (a, b, c):
            if s:
                s.force_cleanup()
        db.stop()


@e2e_test(timeout=60)
def test_cluster_password_is_never_printed_and_where_it_is_seen_is_said(ctx):
    """The sixth review: libpq quotes a malformed connection string, and
    the flag's value is in the process's arguments.  The password is
    written nowhere, and the start says when it was given where others
    can read it (no PostgreSQL needed: every string here fails)."""
    cases = [
        (["--cluster", "postgresql://tpw:SECRETPW1@[::1/db"], {}, None,
         "not one libpq accepts"),
        (["--cluster", "postgresql://tpw:SECRET%zzPW2@127.0.0.1:1/x"], {},
         None, "not one libpq accepts"),
        (["--cluster",
          "postgresql://tpw:SECRETPW3@127.0.0.1:1/x?connect_timeout=1"],
         {}, None, "holds a password, which every local user can read"),
        ([], {"TPWALLET_CLUSTER":
              "host=127.0.0.1 port=1 password=SECRETPW4 connect_timeout=1"},
         None, "PostgreSQL connection failed"),
        ([], {}, "cluster = postgresql://tpw:SECRETPW5@127.0.0.1:1/x?"
         "connect_timeout=1\n", "group or others may read it"),
    ]
    for i, (args, env, conf, words) in enumerate(cases):
        if conf is not None:
            path = ctx.path("c%d.conf" % i)
            with open(path, "w") as f:
                f.write(conf)
            os.chmod(path, 0o644)
            args = args + ["--config", path]
        r = run_cli(["serve", "--data", ctx.path("d%d" % i), "--listen",
                     "127.0.0.1:1"] + args, env=env, timeout=30)
        out = r.stdout + r.stderr
        check(r.returncode != 0, "case %d started" % i)
        check(words in out, "case %d: %r" % (i, out[-600:]))
        check("SECRET" not in out and "PW%d" % (i + 1) not in out,
              "case %d printed the password: %r" % (i, out[-600:]))


@e2e_test(timeout=120, heavy=True)
def test_a_cluster_writers_transfer_shows_its_postgresql_append_span(ctx):
    """Tracing in cluster mode (issue 22): the group's PostgreSQL commit
    is a span of its own beside the fdatasync, the SERVER span names the
    node's role, and the resource names the node (cluster_node)."""
    from test_tracing import Receiver, attrs, env_for, in_trace, one
    rx = Receiver()
    db = pgcluster.PgSingle(ctx.path("pg"))
    a = None
    try:
        db.start()
        a = cluster_server(ctx, db.conninfo())
        a.env.update(env_for(rx, TPWALLET_CLUSTER_NODE="node-a"))
        a.start(timeout=30)
        create(a, "accounts", [account(1), account(2)], ["created"] * 2)
        trace = "6" * 32
        r = a.post("/v1/transfers", transfer(10, 1, 2, 5),
                   headers={"traceparent": "00-%s-%s-01"
                            % (trace, "7" * 16)})
        check_eq(r.status, 201, "the traced transfer")
        names = ("POST /v1/transfers", "engine.group", "engine.fdatasync",
                 "engine.cluster_append", "engine.commit")
        spans = rx.wait(lambda sp: all(any(x["name"] == n for x in
                                           in_trace(sp, trace))
                                       for n in names),
                        "the cluster transfer's spans")
        t = in_trace(spans, trace)
        server, group = one(t, "POST /v1/transfers"), one(t, "engine.group")
        check_eq(attrs(server)["tpwallet.cluster.role"], "writer",
                 "the server span's role")
        check_eq(server["_resource"]["service.instance.id"], "node-a",
                 "service.instance.id is the cluster node's name")
        app, sync = one(t, "engine.cluster_append"), one(t,
                                                         "engine.fdatasync")
        check_eq((app["parentSpanId"], sync["parentSpanId"]),
                 (group["spanId"], group["spanId"]),
                 "the append and the fdatasync are the group's")
        check(attrs(app)["tpwallet.group.bytes"] >= 32 + 128,
              "the append's bytes: %r" % attrs(app))
        # Both start together; the group is durable when both are done.
        check_eq(app["startTimeUnixNano"], sync["startTimeUnixNano"],
                 "the append starts with the fdatasync")
        check(int(app["endTimeUnixNano"]) <= int(group["endTimeUnixNano"])
              and int(sync["endTimeUnixNano"]) <=
              int(group["endTimeUnixNano"]),
              "the group ends when both are done")
        a.stop()
    finally:
        if a is not None:
            a.force_cleanup()
        db.stop()
        rx.close()
