"""test_tls.py - HTTPS on the server (issue 15, first step; docs/operations.md,
"TLS"): a certificate chain and key from settings, served with TLS 1.3 and
1.2 only; the pairs refused at start (expired, not yet valid, a key that
does not match, a key readable by others, a missing file), each with a
message naming the file; SIGHUP serves a renewed certificate to new
connections while an open keep-alive connection keeps working, and a
half-written file keeps the old one; a handshake that stalls holds no
thread and is closed by connection_timeout_s; /metrics gives the
certificate's not_after; doctor warns 30, 14 and 3 days ahead.

Every certificate is made here with Debian's openssl: a CA, server
certificates for 127.0.0.1 (an IP subjectAltName) with serials 1001 and
2002, an expired one and a not-yet-valid one."""

import calendar
import http.client
import os
import re
import socket
import signal
import ssl
import subprocess
import time

import harness
from harness import e2e_test, check, check_eq, run_cli, slow_factor

SERIAL_1 = "1001"
SERIAL_2 = "2002"


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def _ec_key(d, name):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", name, cwd=d)
    os.chmod(os.path.join(d, name), 0o600)


def make_pki(d):
    """CA, server key, certificates; returns a dict of paths."""
    os.makedirs(d, exist_ok=True)
    _ec_key(d, "ca.key")
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-days", "30",
             "-subj", "/CN=tpwallet test CA", "-out", "ca.pem", cwd=d)
    _ec_key(d, "server.key")
    _ec_key(d, "other.key")
    _openssl("req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1",
             "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")

    def sign(out, serial, days):
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
                 "-CAkey", "ca.key", "-set_serial", "0x" + serial,
                 "-days", str(days), "-extfile", "san.ext", "-out", out,
                 cwd=d)

    sign("server1.pem", SERIAL_1, 20)
    sign("server2.pem", SERIAL_2, 25)
    sign("expired.pem", "3003", -1)  # not_after a day before now
    # Not yet valid: `openssl ca` sets the start date.
    os.makedirs(os.path.join(d, "ca.db"), exist_ok=True)
    open(os.path.join(d, "ca.db", "index.txt"), "w").close()
    with open(os.path.join(d, "ca.db", "serial"), "w") as f:
        f.write("4004\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=c\n[c]\ndatabase=ca.db/index.txt\n"
                "new_certs_dir=ca.db\nserial=ca.db/serial\ndefault_md=sha256\n"
                "policy=p\n"
                "unique_subject=no\n[p]\ncommonName=supplied\n")
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem",
             "-keyfile", "ca.key", "-in", "server.csr", "-startdate",
             "20991231000000Z", "-enddate", "21000131000000Z",
             "-extfile", "san.ext", "-out", "future.pem", "-notext", cwd=d)
    return {n: os.path.join(d, n) for n in (
        "ca.pem", "server.key", "other.key", "server1.pem", "server2.pem",
        "expired.pem", "future.pem")}


def not_after(path):
    out = _openssl("x509", "-in", path, "-noout", "-enddate",
                   cwd=os.path.dirname(path))
    t = time.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return calendar.timegm(t)


def tls_context(ca, version_max=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(ca)
    if version_max is not None:
        c.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        c.maximum_version = version_max
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
    return c


def https(port, ca, timeout=5.0):
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                       context=tls_context(ca))


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def served_serial(conn):
    return conn.sock.getpeercert()["serialNumber"].lower().lstrip("0")


def start_tls(ctx, pki, cert, env=None):
    """A server on the given pair (and more settings in env); waits
    (bounded) until it answers GET /readyz over HTTPS."""
    e = {"TPWALLET_TLS_CERT_FILE": cert,
         "TPWALLET_TLS_KEY_FILE": pki["server.key"]}
    e.update(env or {})
    s = ctx.server(env=e)
    s.spawn()
    deadline = time.monotonic() + 20 * slow_factor()
    last = None
    while time.monotonic() < deadline:
        check(s.alive(), "the server exited: %s" % s.log_text()[-2000:])
        try:
            c = https(s.port, pki["ca.pem"], timeout=2)
            status, _ = get(c, "/readyz")
            c.close()
            if status == 200:
                return s
            last = status
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError("not ready over HTTPS: %r" % (last,))


def metric_not_after(port, ca):
    c = https(port, ca)
    status, body = get(c, "/metrics")
    c.close()
    check_eq(status, 200, "GET /metrics")
    m = re.findall(r'^tpwallet_tls_certificate_not_after_seconds\{role='
                   r'"server",serial="([0-9a-f]+)",subject_cn="([^"]*)"\} '
                   r'(\d+)$', body.decode(), re.M)
    check_eq(len(m), 1, "one server certificate sample")
    return m[0][0], m[0][1], int(m[0][2])


@e2e_test(timeout=120)
def test_tls_serves_https_to_curl_and_the_cli_and_only_tls(ctx):
    pki = make_pki(ctx.path("pki"))
    s = start_tls(ctx, pki, pki["server1.pem"])
    url = "https://127.0.0.1:%d" % s.port

    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert",
                        pki["ca.pem"], url + "/healthz"],
                       capture_output=True, text=True, timeout=20)
    check_eq((r.returncode, r.stdout), (0, '{"status":"ok"}'),
             "curl over HTTPS (stderr %r)" % r.stderr)

    r = run_cli(["call", "--no-auth", "--timeout", "10", "--cacert",
                 pki["ca.pem"], "--server", url, "GET", "/healthz"])
    check_eq(r.returncode, 0, "tpwallet call over HTTPS: %r" % r.stderr)
    check_eq(r.stdout, '{"status":"ok"}\n', "tpwallet call: body")
    r = run_cli(["call", "--no-auth", "--timeout", "10", "--server", url,
                 "GET", "/healthz"])
    check_eq(r.returncode, 1, "the CLI without --cacert: %r" % r.stderr)

    # Plain HTTP to the TLS port: no HTTP answer, the connection closes.
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as p:
        p.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            for _ in range(64):
                chunk = p.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
    check(b"HTTP/1.1" not in got and b"status" not in got,
          "plain HTTP got no HTTP answer: %r" % got[:200])

    # TLS 1.1 refused by the server: the same client allowed 1.2 gets in.
    for version, ok in ((ssl.TLSVersion.TLSv1_1, False),
                        (ssl.TLSVersion.TLSv1_2, True)):
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        try:
            t = tls_context(pki["ca.pem"], version).wrap_socket(
                sock, server_hostname="127.0.0.1")
            got = t.version()
            t.close()
        except (ssl.SSLError, OSError) as e:
            got = None
            sock.close()
            check(not ok, "TLS up to %s refused: %r" % (version, e))
        if ok:
            check_eq(got, "TLSv1.2", "negotiated with a 1.2 client")
        else:
            check_eq(got, None, "a client of at most TLS 1.1")

    # The strict framing reads the plaintext: a control byte in a field
    # value is a 400 bad-framing, over TLS as over plain HTTP.
    with tls_context(pki["ca.pem"]).wrap_socket(
            socket.create_connection(("127.0.0.1", s.port), timeout=5),
            server_hostname="127.0.0.1") as t:
        t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n")
        got = b""
        for _ in range(64):
            chunk = t.recv(4096)
            if not chunk:
                break
            got += chunk
    check(got.startswith(b"HTTP/1.1 400 "), "bad framing: %r" % got[:100])
    check(b"bad-framing" in got, "the problem type: %r" % got[:400])

    # A default client gets TLS 1.3, and the server kept serving.
    c = https(s.port, pki["ca.pem"])
    check_eq(get(c, "/healthz")[0], 200, "after the refusals")
    check_eq(c.sock.version(), "TLSv1.3", "default version")
    c.close()

    serial, cn, value = metric_not_after(s.port, pki["ca.pem"])
    check_eq((serial, cn), (SERIAL_1, "127.0.0.1"), "metric labels")
    check_eq(value, not_after(pki["server1.pem"]), "metric = not_after")
    check(re.search(r'"msg":"TLS certificate loaded".*"serial":"1001"',
                    s.log_text()), "the start logs the certificate")
    check("PRIVATE KEY" not in s.log_text(), "no key in the log")
    s.stop()


@e2e_test(timeout=60)
def test_tls_a_stalled_handshake_holds_no_thread_and_times_out(ctx):
    pki = make_pki(ctx.path("pki"))
    s = start_tls(ctx, pki, pki["server1.pem"],
                  env={"TPWALLET_CONNECTION_TIMEOUT_S": "2",
                       "TPWALLET_THREADS": "1"})
    stalled = []
    try:
        for _ in range(8):  # the first 5 bytes of a ClientHello, no more
            p = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            p.sendall(b"\x16\x03\x01\x00\x50")
            stalled.append(p)
        t0 = time.monotonic()
        c = https(s.port, pki["ca.pem"], timeout=5)
        check_eq(get(c, "/healthz")[0], 200, "served beside 8 stalled")
        c.close()
        check(time.monotonic() - t0 < 2, "served at once, not after them")
        got = stalled[0].recv(16)  # bounded by the socket's 10 s
        waited = time.monotonic() - t0
        check_eq(got, b"", "the stalled connection is closed")
        check(waited < 8, "closed by the 2 s timeout (%.1fs)" % waited)
    finally:
        for p in stalled:
            p.close()
    s.stop()


@e2e_test(timeout=120)
def test_tls_refuses_to_start_on_a_bad_pair_naming_the_file(ctx):
    pki = make_pki(ctx.path("pki"))
    loose = ctx.path("pki", "loose.key")
    with open(pki["server.key"]) as f, open(loose, "w") as g:
        g.write(f.read())
    os.chmod(loose, 0o644)
    missing = ctx.path("pki", "missing.pem")
    cases = [
        (pki["expired.pem"], pki["server.key"],
         pki["expired.pem"] + " expired at "),
        (pki["future.pem"], pki["server.key"],
         pki["future.pem"] + " is not valid before 2099-12-31T00:00:00Z"),
        (pki["server1.pem"], pki["other.key"],
         "key %s does not match the certificate in %s"
         % (pki["other.key"], pki["server1.pem"])),
        (pki["server1.pem"], loose,
         "key %s: must be a regular file of ours with mode 0600" % loose),
        (missing, pki["server.key"],
         "certificate %s: No such file or directory" % missing),
        (pki["server1.pem"], "", "tls_cert_file and tls_key_file go "
         "together"),
    ]
    check_refused_at_start(ctx, [
        (dict({"TPWALLET_TLS_CERT_FILE": cert},
              **({"TPWALLET_TLS_KEY_FILE": key} if key else {})), want)
        for cert, key, want in cases])


def check_refused_at_start(ctx, cases):
    """Each (env, message): a server with env exits 2 before serving and
    its log holds message."""
    for i, (env, want) in enumerate(cases):
        s = ctx.server(env=env)
        served, exited, rc = s.start_expecting_refusal()
        check_eq((served, exited, rc), (None, True, 2),
                 "case %d: refused at start" % i)
        check(want in s.log_text(), "case %d: message %r in %r"
              % (i, want, s.log_text()[-600:]))


@e2e_test(timeout=120)
def test_tls_sighup_serves_a_renewed_certificate_to_new_connections(ctx):
    pki = make_pki(ctx.path("pki"))
    live = ctx.path("pki", "live.pem")
    with open(pki["server1.pem"]) as f, open(live, "w") as g:
        g.write(f.read())
    s = start_tls(ctx, pki, live)

    old = https(s.port, pki["ca.pem"])
    check_eq(get(old, "/healthz")[0], 200, "keep-alive connection")
    check_eq(served_serial(old), SERIAL_1, "first certificate")

    # The renewed file is put in place whole (rename), then SIGHUP.
    with open(pki["server2.pem"]) as f, open(live + ".new", "w") as g:
        g.write(f.read())
    os.rename(live + ".new", live)
    mark = len(s.log_text().encode())
    s.proc.send_signal(1)  # SIGHUP
    check(s.wait_log(r'"msg":"TLS certificate reloaded".*"serial":"2002"',
                     timeout=10, since=mark), "reload logged")

    new = https(s.port, pki["ca.pem"])
    check_eq(get(new, "/healthz")[0], 200, "new connection")
    check_eq(served_serial(new), SERIAL_2, "a new connection: new serial")
    new.close()
    for i in range(3):
        status, _ = get(old, "/healthz")
        check_eq(status, 200, "the open connection, request %d" % i)
    check_eq(served_serial(old), SERIAL_1, "the open connection's own")
    old.close()
    check_eq(metric_not_after(s.port, pki["ca.pem"])[::2],
             (SERIAL_2, not_after(pki["server2.pem"])), "metric reloaded")

    # Half a renewed file (a copy cut short): refused, 2002 stays.
    with open(pki["server1.pem"]) as f:
        text = f.read()
    with open(live, "w") as g:
        g.write(text[:len(text) // 2])
    mark = len(s.log_text().encode())
    s.proc.send_signal(1)
    check(s.wait_log(r'"msg":"TLS reload refused: the current certificate '
                     r'stays".*live\.pem', timeout=10, since=mark),
          "refusal logged")
    c = https(s.port, pki["ca.pem"])
    check_eq(get(c, "/healthz")[0], 200, "after the refused reload")
    check_eq(served_serial(c), SERIAL_2, "the old certificate serves")
    c.close()

    s.stop()


@e2e_test(timeout=120)
def test_tls_doctor_warns_30_14_and_3_days_before_expiry(ctx):
    pki = make_pki(ctx.path("pki"))
    d = pki["ca.pem"].rsplit("/", 1)[0]
    data = ctx.path("data")
    r = run_cli(["init", "--data", data])
    check_eq(r.returncode, 0, "init: %r" % r.stderr)
    for days in (40, 20, 10, 2):
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
                 "-CAkey", "ca.key", "-set_serial", "0x50%02d" % days,
                 "-days", str(days), "-extfile", "san.ext", "-out",
                 "d%d.pem" % days, cwd=d)
    cases = [
        ("d40.pem", 0, "ok", "(serial 5040, CN 127.0.0.1) valid until "),
        ("d20.pem", 0, "warn", "(serial 5020) expires within 30 days, at "),
        ("d10.pem", 0, "warn", "(serial 5010) expires within 14 days, at "),
        ("d2.pem", 1, "action", "(serial 5002) expires within 3 days, at "),
        ("expired.pem", 1, "action", "(serial 3003) expired at "),
    ]
    for name, rc, status, want in cases:
        cert = os.path.join(d, name)
        r = run_cli(["doctor", "--data", data],
                    env={"TPWALLET_TLS_CERT_FILE": cert})
        check_eq(r.returncode, rc, "%s: exit status (%r)" % (name, r.stdout))
        lines = [ln for ln in r.stdout.split("\n")
                 if ln.split(":", 1)[0].split()[1:] == ["tls",
                                                       "certificate"]]
        check_eq(len(lines), 1, "%s: one tls line in %r" % (name, r.stdout))
        check_eq(lines[0].split()[0], status, "%s: status" % name)
        check(cert + " " + want in lines[0], "%s: %r" % (name, lines[0]))
    # Without TLS settings there is nothing to say about certificates.
    r = run_cli(["doctor", "--data", data])
    check("tls certificate" not in r.stdout, "plain HTTP: %r" % r.stdout)


@e2e_test(timeout=60)
def test_tls_make_run_serves_https_from_a_settings_file(ctx):
    """issue 15, Done when: `make run CONFIG=FILE` (scripts/run.sh with
    TPWALLET_CONFIG) serves HTTPS with the file's listen, data and pair
    (docs/operations.md, TLS)."""
    pki = make_pki(ctx.path("pki"))
    port = harness.free_port()
    conf = ctx.path("https.conf")
    with open(conf, "w") as f:
        f.write("data = %s\nlisten = 127.0.0.1:%d\ntls_cert_file = %s\n"
                "tls_key_file = %s\n" % (ctx.path("data-https"), port,
                                         pki["server1.pem"],
                                         pki["server.key"]))
    run_sh = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "..", "scripts", "run.sh")
    log = open(ctx.path("run.log"), "w")
    p = subprocess.Popen(["sh", run_sh, harness.CONFIG["binary"]],
                         env=dict(os.environ, TPWALLET_CONFIG=conf),
                         stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 20 * slow_factor()
        status = None
        while time.monotonic() < deadline and status is None:
            check(p.poll() is None, "run.sh exited: %s"
                  % open(ctx.path("run.log")).read()[-1500:])
            try:
                c = https(port, pki["ca.pem"], timeout=2)
                status, _ = get(c, "/readyz")
                check_eq(served_serial(c), SERIAL_1, "the file's pair")
                c.close()
            except OSError:
                time.sleep(0.05)
        check_eq(status, 200, "HTTPS from the settings file")
        check(os.path.exists(ctx.path("data-https", "admin.token")),
              "the file's data directory")
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()
