"""brokers.py - throwaway RabbitMQ and NATS brokers for the CDC tests
(tests/e2e/test_cdc.py), and small consumers of what they hold.

Why: `tpwallet cdc` (docs/cdc.md) promises at-least-once delivery across
broker crashes; only the real brokers, killed for real, test that.  Each
broker runs in a directory of the test's, on free loopback ports, as the
unprivileged user the cluster tests use when this runs as root (RabbitMQ
and its Erlang refuse nothing as root, but no test server should run as
root), in its own process group; the system's services of both packages
are never used.  RabbitMQ gets its own epmd on a free port (never 4369,
where a system epmd or another test may sit), a fresh Erlang cookie and
HOME, its own config, data and log directories; kill9() kills the node's
process group, restart() starts it again on the same ports and data.
stop() stops everything started, with bounded waits.

    r = Rabbit(ctx.path("rabbit")); r.start()   # bounded: BrokerError
    ... r.kill9(); r.restart() ...
    r.stop()

Consumers: amqp_drain (python3-pika) and NatsStream (the NATS text
protocol over a socket, JetStream's API by request and reply).
"""

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cluster"))
from harness import free_port  # noqa: E402
import pgcluster  # noqa: E402

RABBIT_BIN = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class BrokerError(Exception):
    pass


def import_pika():
    """Debian's python3-pika, also from a python3 that is not Debian's
    (pyenv's, say): pika is pure Python."""
    try:
        import pika
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        import pika
    return pika


def port_open(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class _Broker:
    """A process (group) started as the test user, with a log."""

    def __init__(self, base):
        self.base = os.path.abspath(base)
        self.uid, self.gid = pgcluster.run_as_user()
        self.procs = []

    def _prepare(self):
        os.makedirs(self.base, exist_ok=True)
        pgcluster.let_traverse(self.base)
        os.chown(self.base, self.uid, self.gid)

    def _spawn(self, argv, log_name, env):
        out = open(os.path.join(self.base, log_name), "ab")
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.uid, group=self.gid, extra_groups=[])
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True, env=env,
                                 cwd=self.base, **kw)
        finally:
            out.close()
        self.procs.append(p)
        return p

    def _kill(self, p):
        if p is None or p.poll() is not None:
            return
        pgcluster.kill_group(p.pid)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass

    def _wait_port(self, port, p, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise BrokerError("%s exited (%s) before it listened:\n%s"
                                  % (what, p.returncode, self.tails()))
            if port_open(port):
                return
            time.sleep(0.2)
        raise BrokerError("%s not listening on %d after %d s:\n%s"
                          % (what, port, timeout, self.tails()))

    def tails(self):
        out = []
        for name in sorted(os.listdir(self.base)):
            if name.endswith(".log"):
                out.append("--- %s\n%s" % (name, pgcluster.PgCluster.tail(
                    os.path.join(self.base, name), 15)))
        return "\n".join(out)

    def stop(self):
        for p in reversed(self.procs):
            self._kill(p)
        self.procs = []


class Rabbit(_Broker):
    """One RabbitMQ node on loopback: AMQP on self.port, guest/guest."""

    def __init__(self, base):
        super().__init__(base)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = None
        self.epmd = None

    def _env(self):
        b = self.base
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.path.join(b, "home"),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": "rabbit@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": os.path.join(b, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(b, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(b, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(b,
                                                          "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(b, "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(b,
                                                          "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(b, "rabbit.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-start_epmd false",
            "RABBITMQ_CTL_ERL_ARGS": "-start_epmd false",
        }
        return env

    def start(self, timeout=90):
        self._prepare()
        b = self.base
        home = os.path.join(b, "home")
        for d in (home, os.path.join(b, "mnesia"), os.path.join(b, "log")):
            os.makedirs(d, exist_ok=True)
        files = {
            "rabbitmq.conf": "listeners.tcp.1 = 127.0.0.1:%d\n"
                             "loopback_users.guest = true\n"
                             "disk_free_limit.absolute = 1MB\n"
                             % self.port,
            "advanced.config": "[].\n",
            "rabbitmq-env.conf": "",
            "enabled_plugins": "[].\n",
            "home/.erlang.cookie": secrets.token_hex(20),
        }
        for name, text in files.items():
            p = os.path.join(b, name)
            with open(p, "w") as f:
                f.write(text)
            os.chmod(p, 0o400 if name.endswith("cookie") else 0o644)
        for root, dirs, fs in os.walk(b):
            for n in dirs + fs:
                os.chown(os.path.join(root, n), self.uid, self.gid)
        self.restart(timeout)

    def restart(self, timeout=90):
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = self._spawn(["epmd", "-port", str(self.epmd_port),
                                     "-address", "127.0.0.1"], "epmd.log",
                                    self._env())
            self._wait_port(self.epmd_port, self.epmd, 20, "epmd")
        self.node = self._spawn([RABBIT_BIN], "rabbit.log", self._env())
        self._wait_port(self.port, self.node, timeout, "rabbitmq")
        # The listener opens before the node accepts logins: wait for one.
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = self.connect()
                c.close()
                return
            except Exception as e:  # pika's errors are many
                if time.monotonic() > deadline:
                    raise BrokerError("rabbitmq takes no login: %s\n%s"
                                      % (e, self.tails()))
                time.sleep(0.3)

    def connect(self):
        pika = import_pika()
        return pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=self.port, socket_timeout=5,
            blocked_connection_timeout=5, connection_attempts=1))

    def kill9(self):
        self._kill(self.node)
        self.procs.remove(self.node)
        self.node = None


def amqp_drain(rabbit, queue, idle_s=3.0, max_s=120.0):
    """Every message in queue, in delivery order: (message_id, body dict,
    redelivered).  Acknowledged as read; stops after idle_s without one."""
    conn = rabbit.connect()
    out = []
    try:
        ch = conn.channel()
        deadline = time.monotonic() + max_s
        for method, props, body in ch.consume(queue,
                                              inactivity_timeout=idle_s):
            if method is None or time.monotonic() > deadline:
                break
            out.append((props.message_id, json.loads(body),
                        method.redelivered))
            ch.basic_ack(method.delivery_tag)
        ch.cancel()
    finally:
        conn.close()
    return out


class Nats(_Broker):
    """One nats-server with JetStream on loopback (self.port)."""

    def __init__(self, base):
        super().__init__(base)
        self.port = free_port()
        self.proc = None

    def start(self, timeout=30):
        self._prepare()
        os.makedirs(os.path.join(self.base, "js"), exist_ok=True)
        os.chown(os.path.join(self.base, "js"), self.uid, self.gid)
        self.restart(timeout)

    def restart(self, timeout=30):
        self.proc = self._spawn(
            ["nats-server", "-js", "-sd", os.path.join(self.base, "js"),
             "-a", "127.0.0.1", "-p", str(self.port)], "nats.log",
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        self._wait_port(self.port, self.proc, timeout, "nats-server")

    def kill9(self):
        self._kill(self.proc)
        self.procs.remove(self.proc)
        self.proc = None


class NatsStream:
    """A JetStream stream read by its API (request and reply over the
    NATS text protocol): stream info, then each message by sequence."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""
        self.inbox = "_INBOX.cdc%s" % secrets.token_hex(6)
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,'
                          b'"headers":true,"protocol":1}\r\n')
        self.sock.sendall(("SUB %s.* 1\r\n" % self.inbox).encode())
        self.n = 0

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BrokerError("nats closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BrokerError("nats closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def request(self, subject, obj):
        self.n += 1
        reply = "%s.%d" % (self.inbox, self.n)
        data = json.dumps(obj).encode()
        self.sock.sendall(("PUB %s %s %d\r\n" % (subject, reply, len(data)))
                          .encode() + data + b"\r\n")
        while True:
            line = self._line()
            if line == "PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            parts = line.split()
            if parts[0] == "MSG":
                body = self._bytes(int(parts[-1]))
            elif parts[0] == "HMSG":
                body = self._bytes(int(parts[-1]))[int(parts[-2]):]
            elif parts[0] == "-ERR":
                raise BrokerError("nats: %s" % line)
            else:
                continue
            if parts[1] == reply:
                return json.loads(body)

    def messages(self, stream):
        """(Nats-Msg-Id, body dict) of every message, in stream order."""
        info = self.request("$JS.API.STREAM.INFO." + stream, {})
        if "error" in info:
            raise BrokerError("stream info: %r" % info["error"])
        st = info["state"]
        out = []
        for seq in range(st["first_seq"], st["last_seq"] + 1):
            r = self.request("$JS.API.STREAM.MSG.GET." + stream,
                             {"seq": seq})
            if "error" in r:
                continue  # deleted: none are, but a gap is no message
            m = r["message"]
            hdrs = base64.b64decode(m.get("hdrs", "")).decode()
            msg_id = None
            for h in hdrs.split("\r\n"):
                if h.lower().startswith("nats-msg-id:"):
                    msg_id = h.split(":", 1)[1].strip()
            out.append((msg_id, json.loads(base64.b64decode(m["data"]))))
        return out


def stop_all(*brokers):
    for b in brokers:
        if b is not None:
            b.stop()


