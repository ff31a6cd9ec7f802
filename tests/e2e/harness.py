"""harness.py - start the real tpwallet server on loopback and talk to it.

Standard library only.  Every server started here is registered in
ALL_SERVERS so the runner can kill whatever a failing test left behind;
tests still stop their own servers in try/finally (Server is a context
manager).

Conventions:
  - a server binds 127.0.0.1 on a port found free by binding port 0 first;
    if it still loses the race (EADDRINUSE) start() retries on a new port;
  - each server gets a fresh data dir unless a test passes one on purpose;
  - the server's stderr (JSON log lines) goes to a file; the runner prints
    its tail when a test fails;
  - every wait has a deadline;
  - every request sent through a Server (s.get, s.post, s.request,
    s.client, s.new_client()) authenticates as the administrator with
    `Authorization: Bearer <DATA/admin.token>`, read lazily since `serve`
    creates the data dir itself; nothing is sent while the file does not
    exist.  A test opts out with auth=None, sends another credential with
    auth="<Authorization value>" or its own Authorization header.  Raw
    sockets add s.auth_header_bytes() themselves.
"""

import errno
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

# Set by run.py from the command line.
CONFIG = {
    "binary": "build/tpwallet",
    "sanitized": False,
}

ALL_SERVERS = []  # every Server ever started in this process
_ALL_LOCK = threading.Lock()

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",  # UBSan
    "ERROR: ThreadSanitizer",
    "WARNING: ThreadSanitizer",  # a data race or a lock-order inversion
)


class TestFailure(AssertionError):
    pass


def slow_factor():
    """How much longer waits may take under the sanitizers."""
    return 3.0 if CONFIG["sanitized"] else 1.0


def scaled(normal, sanitized):
    return sanitized if CONFIG["sanitized"] else normal


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: expected %r, got %r" % (what, want, got))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def tail(path, lines=40, max_bytes=64 * 1024):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise TestFailure("response body is not JSON (%s): %r"
                              % (e, self.body[:300]))

    def __repr__(self):
        return "<HTTP %d %s %r>" % (self.status,
                                    self.header("content-type"),
                                    self.body[:400])


# `auth=` of Client.request: "use the client's default credential".
DEFAULT_AUTH = object()


def read_admin_token(data_dir):
    """The administrator's bearer token from DATA/admin.token (written by
    `tpwallet init` or by `serve` creating the data dir), or None while
    the file does not exist (servers without authorization)."""
    try:
        with open(os.path.join(data_dir, "admin.token"), "rb") as f:
            text = f.read(4096).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise TestFailure("cannot read %s/admin.token: %s" % (data_dir, e))
    return text.splitlines()[0].strip() if text else None


def _has_header(hdrs, name):
    name = name.lower()
    return any(k.lower() == name for k in hdrs)


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when needed.

    auth: the default credential of every request, as the value of the
    Authorization header: a string, a callable returning one (or None),
    or None for no credential.  A request overrides it with auth= (None:
    send no credential; a string: that Authorization value) or by
    passing its own Authorization header."""

    def __init__(self, port, timeout=None, auth=None):
        self.port = port
        self.timeout = timeout if timeout is not None else 10 * slow_factor()
        self.conn = None
        self.last_used = 0.0
        self.auth = auth

    def authorization(self, auth=DEFAULT_AUTH):
        """The Authorization value a request with this auth= would send."""
        if auth is DEFAULT_AUTH:
            auth = self.auth
        if callable(auth):
            auth = auth()
        return auth

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, retry=True,
                auth=DEFAULT_AUTH):
        """Send one request.  body: bytes, str, or a JSON-able object.
        Retries once on a stale keep-alive connection only when asked and
        the method is idempotent (GET).  auth: see the class."""
        hdrs = {}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode("utf-8")
        if headers:
            hdrs.update(headers)
        if not _has_header(hdrs, "Authorization"):
            value = self.authorization(auth)
            if value is not None:
                hdrs["Authorization"] = value
        attempts = 2 if (retry and method == "GET") else 1
        # A connection idle for longer than the server keeps one (30 s by
        # default) is closed by now: a fresh one, as pooling clients do,
        # rather than a POST that meets a closed socket.
        if self.conn is not None and \
                time.monotonic() - self.last_used > IDLE_REUSE_S:
            self.close()
        for attempt in range(attempts):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                resp = Response(r.status,
                                {k.lower(): v for k, v in r.getheaders()},
                                data)
                self.last_used = time.monotonic()
                if r.will_close:
                    self.close()
                return resp
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt + 1 >= attempts:
                    raise
        raise AssertionError("unreachable")

    # Convenience wrappers
    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, obj, **kw):
        return self.request("POST", path, body=obj, **kw)


class Server:
    """A `tpwallet serve` process on 127.0.0.1:<free port>."""

    def __init__(self, data_dir, log_path, env=None, extra_args=None,
                 binary=None):
        self.binary = binary or CONFIG["binary"]
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = dict(os.environ)
        # The server's outbound calls refuse loopback unless allowed
        # (setting outbound_allow): the tests' witnesses, probes and
        # collectors listen on 127.0.0.1.  A test of the refusal itself
        # passes TPWALLET_OUTBOUND_ALLOW="" (unset for the server).
        self.env.setdefault("TPWALLET_OUTBOUND_ALLOW", "127.0.0.1")
        if env:
            self.env.update(env)
        self.extra_args = list(extra_args or [])
        self.proc = None
        self.port = None
        self.log_file = None
        self._client = None
        self._token = None  # (stat key, token) of DATA/admin.token
        with _ALL_LOCK:
            ALL_SERVERS.append(self)

    # -- lifecycle -------------------------------------------------------
    def spawn(self, port=None):
        """Start the process without waiting for readiness."""
        check(self.proc is None or self.proc.poll() is not None,
              "server already running")
        self.port = port or free_port()
        self.log_file = open(self.log_path, "ab")
        self.log_file.write(("--- harness: starting on port %d ---\n"
                             % self.port).encode())
        self.log_file.flush()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data", self.data_dir,
             "--listen", "127.0.0.1:%d" % self.port] + self.extra_args,
            stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=self.log_file, env=self.env,
            # Its own process group, so a kill also reaches any child it
            # forked (snapshot writers): no orphans.
            start_new_session=True)
        return self.proc

    def start(self, timeout=None):
        """Start and wait for GET /readyz == 200.  Retries on a new port
        when the chosen one was taken meanwhile."""
        timeout = timeout or 20 * slow_factor()
        for attempt in range(3):
            start_size = self._log_size()
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except TestFailure:
                if self.proc.poll() is not None and attempt < 2:
                    text = self._log_since(start_size)
                    if re.search(r"(?i)address already in use|EADDRINUSE",
                                 text):
                        continue  # lost the port race; try another port
                raise
        raise TestFailure("could not start the server")

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self._exited_unreaped(0):
                self._killpg()
                rc = self.proc.wait(timeout=30)
                raise TestFailure("server exited with status %d before it "
                                  "was ready" % rc)
            try:
                c = Client(self.port, timeout=2 * slow_factor())
                r = c.get("/readyz", retry=False)
                c.close()
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise TestFailure("server not ready within %.0fs (last: %r)"
                          % (timeout, last))

    def start_expecting_refusal(self, timeout=10):
        """Spawn a server that must refuse to start: ask GET /readyz until
        the process exits (the explicit event that it has decided), for at
        most timeout seconds.  Returns (the 200 /readyz Response if it
        ever served, else None; whether it exited; its exit status or
        None).  The process is gone afterwards either way."""
        self.spawn()
        deadline = time.monotonic() + timeout * slow_factor()
        served = None
        try:
            while time.monotonic() < deadline and served is None:
                if self._exited_unreaped(0):
                    break
                try:
                    c = Client(self.port, timeout=1)
                    r = c.get("/readyz", retry=False)
                    c.close()
                    if r.status == 200:
                        served = r
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            exited = self._exited_unreaped(0)
        finally:
            self.force_cleanup()
        return served, exited, self.proc.returncode if exited else None

    def alive(self):
        return self.proc is not None and not self._exited_unreaped(0)

    def kill9(self):
        """SIGKILL and reap.  Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            # Kill the whole group while the leader is unreaped (its pid,
            # hence the group id, cannot have been reused).
            self._killpg()
        rc = self.proc.wait(timeout=30)
        self._closed()
        return rc

    def _exited_unreaped(self, timeout):
        """Wait up to timeout for the process to exit, without reaping it.
        Returns True when it has exited."""
        if self.proc.returncode is not None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = os.waitid(os.P_PID, self.proc.pid,
                                 os.WEXITED | os.WNOWAIT | os.WNOHANG)
            except ChildProcessError:
                return True
            if info is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _killpg(self):
        """SIGKILL the server's process group (the server and any child it
        forked).  Only called while the leader is not yet reaped."""
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def stop(self, timeout=None, expect_clean=True):
        """SIGTERM; SIGKILL if it does not exit in time.  With
        expect_clean, a status other than 0 or a sanitizer report fails."""
        if self.proc is None:
            return None
        timeout = timeout or 15 * slow_factor()
        killed = False
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            if not self._exited_unreaped(timeout):
                killed = True
        # Exited (or about to be killed) but not reaped yet: kill what is
        # left of its group (a forked snapshot writer), then reap.
        self._killpg()
        rc = self.proc.wait(timeout=30)
        self._closed()
        if expect_clean:
            check(not killed, "server did not stop within %.0fs of SIGTERM"
                  % timeout)
            check(rc == 0, "server exited with status %r after SIGTERM"
                  % rc)
            self.check_no_sanitizer_report()
        return rc

    def _closed(self):
        if self._client:
            self._client.close()
            self._client = None
        if self.log_file:
            self.log_file.close()
            self.log_file = None

    def force_cleanup(self):
        """Used by the runner: kill without checks."""
        try:
            if self.proc is not None and self.proc.returncode is None:
                self._killpg()
                self.proc.wait(timeout=30)
        except Exception:
            pass
        try:
            self._closed()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.force_cleanup()
        return False

    # -- logs ------------------------------------------------------------
    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def _log_since(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_text(self):
        return self._log_since(0)

    def check_no_sanitizer_report(self):
        text = self.log_text()
        for m in SANITIZER_MARKERS:
            check(m not in text, "sanitizer report in the server log (%s)"
                  % m)

    def wait_log(self, pattern, timeout=5.0, since=0):
        """Wait until the log (from byte `since`) matches the regex."""
        deadline = time.monotonic() + timeout * slow_factor()
        rx = re.compile(pattern)
        while True:
            text = self._log_since(since)
            if rx.search(text):
                return text
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    # -- HTTP ------------------------------------------------------------
    def admin_token(self):
        """DATA/admin.token, read lazily: `serve` creates the data dir
        (and the token) itself, so it exists only once the server is up.
        None when there is none (a server without authorization)."""
        path = os.path.join(self.data_dir, "admin.token")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._token = None
            return None
        except OSError as e:
            raise TestFailure("cannot stat %s: %s" % (path, e))
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._token is None or self._token[0] != key:
            self._token = (key, read_admin_token(self.data_dir))
        return self._token[1]

    def require_admin_token(self):
        """DATA/admin.token of a server that is ready: `serve` writes it
        before it listens, so it exists once /readyz has answered 200
        (no wait: its absence is a failure)."""
        token = self.admin_token()
        check(token, "%s/admin.token does not exist once the server is "
              "ready: the server has no authorization (docs/authz.md)"
              % self.data_dir)
        return token

    def admin_authorization(self):
        """`Bearer <token>`, or None when the data dir has no token."""
        token = self.admin_token()
        return "Bearer " + token if token else None

    def auth_header_bytes(self):
        """The admin Authorization header line for raw-socket requests
        (b"" when there is no token)."""
        value = self.admin_authorization()
        if value is None:
            return b""
        return b"Authorization: " + value.encode("ascii") + b"\r\n"

    def cli_args(self):
        """What a CLI command needs to call this server as its
        administrator (docs/cli.md): --server and --data."""
        return ["--server", "http://127.0.0.1:%d" % self.port,
                "--data", self.data_dir]

    def new_client(self, timeout=None, auth=DEFAULT_AUTH):
        """A new connection to this server; by default it authenticates
        as the administrator (auth=None: no credential)."""
        if auth is DEFAULT_AUTH:
            auth = self.admin_authorization
        return Client(self.port, timeout=timeout, auth=auth)

    @property
    def client(self):
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, obj, **kw):
        return self.client.post(path, obj, **kw)

    def request(self, method, path, **kw):
        return self.client.request(method, path, **kw)


# A running server signs a checkpoint within a second of its tree growing
# (docs/audit.md); the audit thread may first have to catch up with the
# journal, so a wait allows ten (times slow_factor under the sanitizers).
CHECKPOINT_WAIT_S = 10.0


def wait_audit_caught_up(srv, since):
    """A transfer's entry_index and the audit head come from the audit
    tree, which catches up with the records a start replayed in its own
    thread: wait for that event (logged once per start, after since)."""
    check(srv.wait_log(r'"msg":"audit tree caught up with the journal"',
                       since=since, timeout=30) is not None,
          "the audit tree never caught up")


def wait_checkpoint(s, min_size, cover_head=False, timeout=CHECKPOINT_WAIT_S):
    """The newest signed checkpoint once it covers at least min_size
    entries (and, with cover_head, the audit head as it is then): its
    note text and size."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        want = min_size
        if cover_head:
            want = max(want, int(s.get("/v1/audit/head").json()["size"]))
        r = s.get("/v1/audit/checkpoint")
        if r.status == 200:
            text = r.body.decode()
            size = int(text.split("\n")[1])
            if size >= want:
                return text, size
        check(time.monotonic() < deadline,
              "no checkpoint of size >= %d within %.0fs (last %r)"
              % (want, timeout * slow_factor(), r))
        time.sleep(0.05)


def wait_audit_size(s, size, timeout=CHECKPOINT_WAIT_S):
    """GET /v1/audit/head until the tree holds at least size entries (the
    audit thread follows the journal: it may lag behind the replies).
    Returns the head."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        r = s.get("/v1/audit/head")
        check(r.status == 200, "GET /v1/audit/head: %r" % r)
        head = r.json()
        if int(head["size"]) >= size:
            return head
        check(time.monotonic() < deadline, "the audit tree did not reach "
              "%d within %.0fs: %r" % (size, timeout * slow_factor(), head))
        time.sleep(0.02)


def wait_receipt(s, path, timeout=CHECKPOINT_WAIT_S):
    """GET path (a receipt route) until it is no longer 503: a receipt is
    served once a signed checkpoint covers the entry, 503 before
    (docs/audit.md).  Returns the first other answer; still 503 at the
    deadline fails."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        r = s.get(path)
        if r.status != 503:
            return r
        check(time.monotonic() < deadline, "%s still 503 after %.0fs: %r"
              % (path, timeout * slow_factor(), r))
        time.sleep(0.05)


def wait_file(path_ok, what, timeout=10.0):
    """Until path_ok() is true: a file the server writes on its own."""
    deadline = time.monotonic() + timeout * slow_factor()
    while not path_ok():
        check(time.monotonic() < deadline, "%s within %.0fs"
              % (what, timeout * slow_factor()))
        time.sleep(0.05)


def build_shim(ctx, source, cflags=()):
    """Compile tests/e2e/<source> (an LD_PRELOAD shim, or a library a test
    loads otherwise) into the test's directory with cflags; returns the
    .so path.  A missing compiler is a failure (scripts/deps.sh installs
    build-essential)."""
    here = os.path.dirname(os.path.abspath(__file__))
    cc = shutil.which("cc") or shutil.which("gcc")
    check(cc, "no C compiler for the shim %s" % source)
    out = ctx.path(os.path.splitext(source)[0] + ".so")
    subprocess.run([cc, "-shared", "-fPIC", "-O1"] + list(cflags) +
                   ["-o", out, os.path.join(here, source), "-ldl"],
                   check=True)
    return out


def run_cli(args, timeout=30, env=None, cwd=None):
    """Run the binary with args; returns CompletedProcess (text)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    try:
        return subprocess.run([CONFIG["binary"]] + list(args),
                              stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout * slow_factor(),
                              env=e, cwd=cwd, text=True, errors="replace")
    except subprocess.TimeoutExpired:
        raise TestFailure("tpwallet %s did not finish within %.0fs"
                          % (" ".join(args), timeout * slow_factor()))


def issue_mandate(out, key, to, ops=(), accounts=(), expires="1h",
                  extra=()):
    """`tpwallet delegate issue` (docs/cli.md): a link signed by the
    private JWK in key, to the key in to, granting ops over accounts (none:
    any account), written to out; extra: more flags (--total-cap N,
    --parent FILE...).  A refusal fails the test.  Returns out."""
    args = ["delegate", "issue", "--key", key, "--to", to,
            "--expires", expires, "--out", out]
    for op in ops:
        args += ["--op", op]
    for a in accounts:
        args += ["--account", str(a)]
    r = run_cli(args + list(extra))
    check(r.returncode == 0, "delegate issue %s: %s %s"
          % (os.path.basename(out), r.stdout, r.stderr))
    return out


def raw_exchange(port, data, timeout=5.0, read_max=1 << 20,
                 half_close=False):
    """Send raw bytes (then shut down the write side if half_close), read
    until EOF, one whole response, or the timeout.  Returns the bytes read
    (b'' if the peer closed at once)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < read_max and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            # Stop once one full response is in (headers + Content-Length).
            m = re.search(rb"\r\n\r\n", out)
            if m:
                cl = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", out[:m.end()])
                if cl and len(out) >= m.end() + int(cl.group(1)):
                    break
        return out
    finally:
        s.close()


def parse_raw_response(raw):
    """Parse 'HTTP/1.1 400 ...' bytes into a Response (or None)."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n", raw)
    if not m:
        return None
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    headers = {}
    for line in raw[m.end():head_end].split(b"\r\n"):
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.decode("latin-1").strip().lower()] = \
                v.decode("latin-1").strip()
    return Response(int(m.group(1)), headers, raw[head_end + 4:])


def is_addr_in_use(e):
    return isinstance(e, OSError) and e.errno == errno.EADDRINUSE


# -- test registry ---------------------------------------------------------

TESTS = []  # (name, function, timeout seconds, waits, heavy)

# Reuse a keep-alive connection only while it is younger than this: the
# server closes one idle for API_CONNECTION_TIMEOUT_S_DEFAULT (30 s).
IDLE_REUSE_S = 20.0


def run_daemon(ctx, cmd, port, cwd, env):
    """Run a serving example on its own port until it accepts a
    connection, then stop it: exit 0 on SIGTERM.  Returns the path of
    the file holding its stdout and stderr."""
    path = ctx.path("daemon-%d.log" % port)
    log = open(path, "wb")
    p = subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=cwd, env=env,
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 20 * slow_factor()
        while True:
            check(p.poll() is None, "%r exited with %r" % (cmd, p.returncode))
            check(time.monotonic() < deadline, "%r does not listen" % cmd)
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
    finally:
        p.terminate()
        p.wait(timeout=30)
        log.close()
    check_eq(p.returncode, 0, "%r: exit status on SIGTERM" % cmd)
    return path


def e2e_test(timeout=60, waits=False, heavy=False):
    """Register a test: def test_<what_it_proves>(ctx).  waits=True: the
    test spends most of its time waiting for the wall clock (an override's
    or a certificate's end), so run.py runs it beside the others, in a
    second process, instead of making the suite wait for it.  heavy=True:
    a suite of real outside processes (a PostgreSQL cluster, dpkg, promtool,
brokers, a browser), run once by
    `make test` with the plain build, not again under each sanitizer
    (run.py --skip-heavy)."""
    def wrap(fn):
        TESTS.append((fn.__name__, fn, timeout, waits, heavy))
        return fn
    return wrap


class Ctx:
    """Per-test temp dir and the servers the test started."""

    def __init__(self, name, root):
        import tempfile
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=name[:40] + "-", dir=root)
        self.servers = []
        self.notes = []  # one-line figures the runner prints

    def note(self, line):
        self.notes.append(line)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def server(self, data_dir=None, env=None, args=None):
        """A Server, not yet started, with a fresh data dir by default."""
        n = len(self.servers)
        if data_dir is None:
            data_dir = self.path("data%d" % n)
        s = Server(data_dir, self.path("server%d.log" % n), env=env,
                   extra_args=args)
        self.servers.append(s)
        return s

    def start_server(self, data_dir=None, env=None, args=None):
        s = self.server(data_dir, env, args)
        s.start()
        return s
