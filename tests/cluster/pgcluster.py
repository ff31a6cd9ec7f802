"""pgcluster.py - a throwaway PostgreSQL 15 cluster for tests: one etcd,
three Patroni-managed PostgreSQL instances in synchronous mode (strict),
on free loopback ports, in one temporary directory.

Why: cluster mode (issue 13) stands on PostgreSQL's synchronous
replication and Patroni's failover; its tests need the real thing, killed
for real.  Standard library only (Patroni reads its YAML configuration
file, and JSON is YAML).

    c = PgCluster(base_dir, log=print)
    try:
        c.start()                      # bounded: raises ClusterError
        conninfo = c.conninfo()        # all three hosts, read-write
        leader, sync = c.wait_roles()  # names from Patroni's /cluster
        c.kill_node(leader)            # kill -9 its Patroni and postgres
    finally:
        c.stop()                       # everything it started, bounded

PostgreSQL refuses to run as root: when this runs as root (CI does), the
instances run as the user `tpwallet-test`, created here if missing
(`nobody` when it cannot be created); otherwise as the current user.
Only loopback ports and the base directory are used; a PostgreSQL the
system's packages may have started (Debian's on 5432) is never touched.
Every process is started in its own process group and stop() also runs
at exit, so a failing test leaves nothing running.
"""

import atexit
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e"))
from harness import free_port  # noqa: E402

TEST_USER = "tpwallet-test"
SCOPE = "tpw"


class ClusterError(Exception):
    pass


def pg_bin_dir():
    """The PostgreSQL 15 server binaries (Debian keeps them off PATH)."""
    for d in ["/usr/lib/postgresql/15/bin"] + sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "postgres")):
            return d
    raise ClusterError("no PostgreSQL server binaries (postgresql-15)")


def psql_path():
    p = shutil.which("psql")
    return p or os.path.join(pg_bin_dir(), "psql")


def run_psql(conninfo, sql, timeout=20):
    """Run sql with psql (-At); returns stdout, raises ClusterError
    (without the connection string) on failure."""
    p = subprocess.run([psql_path(), "-X", "-At", "-v", "ON_ERROR_STOP=1",
                        "-d", conninfo, "-c", sql], capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise ClusterError("psql failed: %s" % p.stderr.strip()[-400:])
    return p.stdout


def run_as_user():
    """(uid, gid) the PostgreSQL instances run as."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", TEST_USER],
                       capture_output=True, timeout=30)
        try:
            pw = pwd.getpwnam(TEST_USER)
        except KeyError:
            pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def let_traverse(path):
    """Let the instances' user reach `path`: each ancestor this process
    owns gets o+x (search, not listing), as mkdtemp made them 0700."""
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
            os.chmod(path, (st.st_mode & 0o7777) | 0o001)
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def http_json(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def kill_group(pid, sig=signal.SIGKILL):
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie of ours is dead
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Node:
    def __init__(self, name, base):
        self.name = name
        self.dir = os.path.join(base, name)
        self.data_dir = os.path.join(self.dir, "data")
        self.pg_port = free_port()
        self.api_port = free_port()
        self.log_path = os.path.join(self.dir, "patroni.log")
        self.proc = None

    def postmaster_pid(self):
        """The postmaster's pid from its pid file, or None."""
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None


class PgCluster:
    def __init__(self, base_dir, nodes=3, log=None, ttl=10, loop_wait=1,
                 retry_timeout=3):
        self.base = base_dir
        self.log = log or (lambda line: None)
        self.ttl, self.loop_wait, self.retry_timeout = \
            ttl, loop_wait, retry_timeout
        self.password = secrets.token_hex(16)
        self.repl_password = secrets.token_hex(16)
        self.uid, self.gid = run_as_user()
        self.etcd_client = free_port()
        self.etcd_peer = free_port()
        self.etcd = None
        self.nodes = [Node("pg%d" % i, base_dir) for i in range(nodes)]
        self.postmasters = set()  # every postmaster pid seen, for stop()
        self.stopped = False
        atexit.register(self.stop)

    # -- start --------------------------------------------------------

    def start(self, timeout=120):
        os.makedirs(self.base, exist_ok=True)
        let_traverse(self.base)
        os.chown(self.base, self.uid, self.gid)
        self._start_etcd()
        for n in self.nodes:
            self._start_node(n)
        self.wait_roles(timeout)

    def _spawn(self, argv, log_path, as_user, env=None):
        out = open(log_path, "ab")
        kw = {}
        if as_user and os.geteuid() == 0:
            kw = dict(user=self.uid, group=self.gid, extra_groups=[])
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=env,
                                    cwd=self.base, **kw)
        finally:
            out.close()

    def _start_etcd(self):
        d = os.path.join(self.base, "etcd")
        os.makedirs(d, mode=0o700)
        peer = "http://127.0.0.1:%d" % self.etcd_peer
        client = "http://127.0.0.1:%d" % self.etcd_client
        self.etcd = self._spawn([
            shutil.which("etcd") or "/usr/bin/etcd", "--name", "e0",
            "--data-dir", os.path.join(d, "data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "e0=" + peer,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", "tpw-" + secrets.token_hex(4),
        ], os.path.join(d, "etcd.log"), as_user=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if http_json(client + "/health").get("health") == "true":
                    return
            except (OSError, ValueError):
                pass
            if self.etcd.poll() is not None:
                break
            time.sleep(0.1)
        raise ClusterError("etcd did not become healthy:\n" +
                           self.tail(os.path.join(d, "etcd.log")))

    def _config(self, n):
        pg_params = {
            "max_connections": 40,
            "shared_buffers": "32MB",
            "wal_level": "replica",
            "hot_standby": "on",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "wal_log_hints": "on",
            "synchronous_commit": "on",
            "unix_socket_directories": "",
        }
        return {
            "scope": SCOPE,
            "name": n.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": "127.0.0.1:%d" % n.api_port,
                        "connect_address": "127.0.0.1:%d" % n.api_port},
            "etcd3": {"hosts": "127.0.0.1:%d" % self.etcd_client},
            "bootstrap": {
                "dcs": {
                    "ttl": self.ttl,
                    "loop_wait": self.loop_wait,
                    "retry_timeout": self.retry_timeout,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": True,
                    "synchronous_mode_strict": True,
                    "postgresql": {"use_pg_rewind": True,
                                   "use_slots": True,
                                   "parameters": pg_params},
                },
                "initdb": [{"encoding": "UTF8"}, "data-checksums",
                           {"auth": "scram-sha-256"}],
            },
            "postgresql": {
                "listen": "127.0.0.1:%d" % n.pg_port,
                "connect_address": "127.0.0.1:%d" % n.pg_port,
                "data_dir": n.data_dir,
                "bin_dir": pg_bin_dir(),
                "pgpass": os.path.join(n.dir, "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres",
                                  "password": self.password},
                    "replication": {"username": "replicator",
                                    "password": self.repl_password},
                    "rewind": {"username": "postgres",
                               "password": self.password},
                },
                "pg_hba": [
                    "local all all scram-sha-256",
                    "host all all 127.0.0.1/32 scram-sha-256",
                    "host replication replicator 127.0.0.1/32 "
                    "scram-sha-256",
                ],
                "parameters": pg_params,
            },
            "watchdog": {"mode": "off"},
            "tags": {"nofailover": False, "noloadbalance": False,
                     "clonefrom": False, "nosync": False},
        }

    def _start_node(self, n):
        os.makedirs(n.dir, mode=0o700, exist_ok=True)
        os.chown(n.dir, self.uid, self.gid)
        cfg = os.path.join(n.dir, "patroni.yml")
        with open(cfg, "w") as f:
            json.dump(self._config(n), f, indent=1)
        os.chmod(cfg, 0o600)
        os.chown(cfg, self.uid, self.gid)
        env = {"PATH": "/usr/bin:/bin", "HOME": n.dir, "LC_ALL": "C.UTF-8",
               "LANG": "C.UTF-8"}
        n.proc = self._spawn([shutil.which("patroni") or "/usr/bin/patroni",
                              cfg], n.log_path, as_user=True, env=env)

    # -- state --------------------------------------------------------

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def members(self):
        """Patroni's /cluster members from the first node that answers."""
        for n in self.nodes:
            if n.proc is None or n.proc.poll() is not None:
                continue
            try:
                return http_json("http://127.0.0.1:%d/cluster"
                                 % n.api_port)["members"]
            except (OSError, ValueError, KeyError):
                continue
        return []

    def roles(self):
        """(leader, sync standby) names, either None while absent.  A
        leader counts once its postgres is running, a sync standby once
        it streams."""
        leader = sync = None
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                leader = m["name"]
            elif (m.get("role") == "sync_standby"
                  and m.get("state") in ("streaming", "running")):
                sync = m["name"]
        for n in self.nodes:
            pid = n.postmaster_pid()
            if pid:
                self.postmasters.add(pid)
        return leader, sync

    def wait_roles(self, timeout=60, not_leader=None):
        """Wait (bounded) for a leader other than not_leader and a
        synchronous standby; returns their names."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader, sync = self.roles()
            if leader and sync and leader != not_leader:
                return leader, sync
            time.sleep(0.2)
        raise ClusterError("no leader and synchronous standby after %.0f s: "
                           "%r\n%s" % (timeout, self.members(),
                                       self.tails()))

    def conninfo(self, dbname="postgres", connect_timeout=2):
        """A libpq URI naming every node; libpq picks the read-write
        one.  Holds the superuser password: never log it."""
        hosts = ",".join("127.0.0.1:%d" % n.pg_port for n in self.nodes)
        return ("postgresql://postgres:%s@%s/%s?target_session_attrs="
                "read-write&connect_timeout=%d"
                % (self.password, hosts, dbname, connect_timeout))

    def psql(self, sql, timeout=20):
        return run_psql(self.conninfo(), sql, timeout)

    # -- faults -------------------------------------------------------

    def kill_node(self, name):
        """kill -9 a node's Patroni and its postgres (the whole process
        groups: the postmaster and its backends)."""
        n = self.node(name)
        pm = n.postmaster_pid()
        if n.proc is not None:
            kill_group(n.proc.pid)
            n.proc.wait(timeout=10)
        if pm:
            self.postmasters.add(pm)
            kill_group(pm)
        self.log("pgcluster: killed %s (patroni and postgres, SIGKILL)"
                 % name)

    # -- stop ---------------------------------------------------------

    def stop(self):
        """Stop everything this cluster started; bounded, idempotent."""
        if self.stopped:
            return
        self.stopped = True
        for n in self.nodes:
            pid = n.postmaster_pid()
            if pid:
                self.postmasters.add(pid)
        # Patroni first, so none restarts its postgres; then each
        # postmaster's fast shutdown, then SIGKILL for what is left.
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                kill_group(n.proc.pid)
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        for pid in self.postmasters:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGINT)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 15
        while (time.monotonic() < deadline
               and any(alive(p) for p in self.postmasters)):
            time.sleep(0.1)
        for pid in self.postmasters:
            if alive(pid):
                kill_group(pid)
        if self.etcd is not None and self.etcd.poll() is None:
            kill_group(self.etcd.pid)
            try:
                self.etcd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._remove_orphan_shm()

    def _remove_orphan_shm(self):
        """A postmaster killed with SIGKILL leaves its small System V
        segment behind; remove those of the dedicated test user that no
        process holds (never another user's)."""
        try:
            if pwd.getpwuid(self.uid).pw_name != TEST_USER:
                return
            with open("/proc/sysvipc/shm") as f:
                rows = f.read().splitlines()[1:]
        except (KeyError, OSError):
            return
        for row in rows:
            col = row.split()
            # key shmid perms size cpid lpid nattch uid ...
            if len(col) > 7 and col[6] == "0" and int(col[7]) == self.uid:
                subprocess.run(["ipcrm", "-m", col[1]], capture_output=True,
                               timeout=10)

    # -- logs ---------------------------------------------------------

    @staticmethod
    def tail(path, lines=25):
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(cannot read %s: %s)" % (path, e)
        return "\n".join(text.splitlines()[-lines:])

    def tails(self):
        out = []
        for n in self.nodes:
            out.append("--- %s (%s)\n%s" % (n.name, n.log_path,
                                            self.tail(n.log_path)))
        return "\n".join(out)


class PgSingle:
    """One plain PostgreSQL (no Patroni, no replication) for the tests of
    what runs on any PostgreSQL: initdb and postgres as the unprivileged
    user, a free loopback port, scram-sha-256 with a random password."""

    def __init__(self, base_dir):
        self.base = base_dir
        self.data_dir = os.path.join(base_dir, "data")
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.uid, self.gid = run_as_user()
        self.proc = None
        self.log_path = os.path.join(base_dir, "postgres.log")
        atexit.register(self.stop)

    def _as_user(self):
        if os.geteuid() == 0:
            return dict(user=self.uid, group=self.gid, extra_groups=[])
        return {}

    def start(self, timeout=60):
        os.makedirs(self.base, exist_ok=True)
        let_traverse(self.base)
        os.chown(self.base, self.uid, self.gid)
        pwfile = os.path.join(self.base, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        os.chmod(pwfile, 0o600)
        os.chown(pwfile, self.uid, self.gid)
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8",
               "HOME": self.base}
        p = subprocess.run([os.path.join(pg_bin_dir(), "initdb"), "-D",
                            self.data_dir, "-U", "postgres", "--pwfile",
                            pwfile, "--auth", "scram-sha-256", "-E", "UTF8"],
                           capture_output=True, text=True, timeout=timeout,
                           env=env, cwd=self.base, **self._as_user())
        os.unlink(pwfile)
        if p.returncode != 0:
            raise ClusterError("initdb failed: %s" % p.stderr[-800:])
        out = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(pg_bin_dir(), "postgres"), "-D",
                 self.data_dir, "-p", str(self.port), "-c",
                 "listen_addresses=127.0.0.1", "-c",
                 "unix_socket_directories=", "-c", "shared_buffers=32MB",
                 "-c", "max_connections=20"],
                stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, env=env,
                cwd=self.base, **self._as_user())
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                self.psql("SELECT 1")
                return
            except (OSError, ClusterError):
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise ClusterError("postgres did not start:\n" +
                           PgCluster.tail(self.log_path))

    def conninfo(self, dbname="postgres"):
        """Holds the password: never log it."""
        return ("postgresql://postgres:%s@127.0.0.1:%d/%s?connect_timeout=2"
                % (self.password, self.port, dbname))

    def psql(self, sql, timeout=20):
        return run_psql(self.conninfo(), sql, timeout)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid)
            self.proc.wait(timeout=10)
