"""test_tls_expiry.py - what expires, in view (issue 15, item 4;
docs/operations.md, "Expiry in view"): `tpwallet doctor` lists the TLS
certificates, the signing key's rotation and the KEK's age in one list,
soonest first, each line starting with the days left; with --url it
looks at what an endpoint serves: this server (and which of its two
certificates), or a gateway in front whose certificate has expired
(an `openssl s_server` here)."""

import socket
import subprocess
import time

from harness import (e2e_test, check, check_eq, free_port, run_cli,
                     slow_factor)
import test_tls
import test_tls_standby
from test_tls import make_pki

LIST = ("tls certificate", "tls standby certificate", "remote certificate",
        "signing key rotation", "signing key verifying",
        "key-encryption key age", "organisation certificate",
        "tls client CA", "tls CRL")


def expiry_lines(out):
    """(status, name, detail) of the expiry list's lines, in order; the
    list is one block (no other check's line between its lines)."""
    rows = []
    for i, ln in enumerate(out.split("\n")):
        head, _, detail = ln.partition(": ")
        parts = head.split(None, 1)
        if len(parts) == 2 and parts[1] in LIST:
            rows.append((i, parts[0], parts[1], detail))
    check(rows, "no expiry list in %r" % out)
    check_eq([r[0] for r in rows],
             list(range(rows[0][0], rows[0][0] + len(rows))),
             "the list is one block: %r" % out)
    return [r[1:] for r in rows]


def doctor(data, env, *args):
    return run_cli(["doctor", "--data", data] + list(args), env=env)


@e2e_test(timeout=120)
def test_tls_doctor_lists_what_expires_soonest_first_and_what_a_url_serves(
        ctx):
    pki = make_pki(ctx.path("pki"))
    standby = test_tls_standby.make_standby(pki)
    env = dict(test_tls_standby.standby_env(pki, standby),
               TPWALLET_TLS_CERT_FILE=pki["server1.pem"],
               TPWALLET_TLS_KEY_FILE=pki["server.key"])
    s = test_tls.start_tls(ctx, pki, pki["server1.pem"], env=env)
    url = "https://127.0.0.1:%d" % s.port

    # server1 ends in 20 days (and is what --url serves: a tie, in the
    # order the lines were made), the standby in 25; then the signing
    # key's rotation (90 days) and the KEK (no end date).
    r = doctor(s.data_dir, env, "--url", url, "--cacert", pki["ca.pem"])
    check_eq(r.returncode, 0, "nothing needs action: %r" % r.stdout)
    rows = expiry_lines(r.stdout)
    check_eq([(st, name) for st, name, _ in rows],
             [("warn", "tls certificate"), ("warn", "remote certificate"),
              ("warn", "tls standby certificate"),
              ("ok", "signing key rotation"),
              ("ok", "key-encryption key age")], "the list's order")
    check_eq([d.split(":", 1)[0] for _, _, d in rows],
             ["in 20 days", "in 20 days", "in 25 days", "in 90 days",
              "no end date"],
             "each line starts with the days left")
    check(rows[0][2].startswith("in 20 days: %s (serial 1001) expires "
                                "within 30 days, at " % pki["server1.pem"]),
          "the primary: %r" % rows[0][2])
    check(rows[2][2].startswith("in 25 days: %s (serial 6006) expires "
                                "within 30 days, at " % standby),
          "the standby: %r" % rows[2][2])
    check_eq(rows[1][2].split(", issued by")[0],
             'in 20 days: %s serves "CN=127.0.0.1" (serial 1001)' % url,
             "the remote line names the endpoint, subject and serial")
    check(('issued by "CN=tpwallet test CA", valid until ' in rows[1][2])
          and rows[1][2].endswith("; verifies against %s; this server's "
                                  "primary (tls_cert_file)" % pki["ca.pem"]),
          "issuer, verification and which: %r" % rows[1][2])
    check(rows[4][2].startswith("no end date: %s.kek: " % s.data_dir),
          "the KEK's age: %r" % rows[4][2])

    # Switched to the standby: --url says so, and warns.
    r = run_cli(["tls", "switch", "--to", "standby", "--server", url,
                 "--cacert", pki["ca.pem"], "--data", s.data_dir])
    check_eq(r.returncode, 0, "switch: %r" % r.stderr)
    r = doctor(s.data_dir, env, "--url", url, "--cacert", pki["ca.pem"])
    remote = [x for x in expiry_lines(r.stdout)
              if x[1] == "remote certificate"]
    check_eq(len(remote), 1, "one remote line")
    check("(serial 6006)" in remote[0][2] and
          "this server's standby (tls_standby_cert_file) serves" in
          remote[0][2], "the standby serves: %r" % remote[0][2])

    # Without --cacert the private CA is unknown: action, exit 1.
    r = doctor(s.data_dir, env, "--url", url)
    remote = [x for x in expiry_lines(r.stdout)
              if x[1] == "remote certificate"]
    check_eq((r.returncode, remote[0][0]), (1, "action"),
             "unverified: %r" % r.stdout)
    check("does not verify against the system's CAs: " in remote[0][2],
          "why: %r" % remote[0][2])

    r = run_cli(["doctor", "--data", s.data_dir, "--url",
                 "http://127.0.0.1:%d" % s.port])
    check_eq(r.returncode, 2, "--url wants https: %r" % r.stderr)
    s.stop()


@e2e_test(timeout=90)
def test_tls_doctor_url_finds_an_expired_certificate_on_a_gateway(ctx):
    pki = make_pki(ctx.path("pki"))
    data = ctx.path("data")
    check_eq(run_cli(["init", "--data", data]).returncode, 0, "init")
    port = free_port()
    gw = subprocess.Popen(
        ["openssl", "s_server", "-quiet", "-accept", str(port),
         "-cert", pki["expired.pem"], "-key", pki["server.key"], "-www"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10 * slow_factor()
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                check(time.monotonic() < deadline and gw.poll() is None,
                      "the openssl gateway did not listen")
                time.sleep(0.05)
        r = doctor(data, None, "--url", "https://127.0.0.1:%d" % port,
                   "--cacert", pki["ca.pem"])
    finally:
        gw.terminate()
        gw.wait(timeout=10)
    check_eq(r.returncode, 1, "action needed: %r" % r.stdout)
    rows = expiry_lines(r.stdout)
    check_eq((rows[0][0], rows[0][1]), ("action", "remote certificate"),
             "the expired one comes first: %r" % rows)
    check(rows[0][2].startswith("1 days ago: https://127.0.0.1:%d serves "
                                '"CN=127.0.0.1" (serial 3003)' % port),
          "days and serial: %r" % rows[0][2])
    check("expired at " in rows[0][2] and
          "does not verify against %s: " % pki["ca.pem"] in rows[0][2],
          "expired, and does not verify: %r" % rows[0][2])


@e2e_test(timeout=90, waits=True)
def test_tls_doctor_url_gives_up_on_an_endpoint_that_dribbles(ctx):
    # The outside review: a peer sending one byte of a TLS record every
    # 2 s kept `doctor --url` running for minutes (each read had 10 s,
    # the whole check had none).  Now the check has one deadline.
    import threading
    stop = threading.Event()
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    lst.settimeout(0.5)
    port = lst.getsockname()[1]

    def dribble(c):
        # A plausible ServerHello record header, then its body, a byte
        # every 2 s (bounded: at most 60 bytes).
        rec = b"\x16\x03\x03\x40\x00\x02\x00\x3f\xfc\x03\x03" + \
            b"\x00" * 49
        try:
            c.settimeout(5)
            c.recv(4096)
            for x in rec:
                if stop.is_set():
                    break
                c.send(bytes([x]))
                stop.wait(2.0)
        except OSError:
            pass
        c.close()

    def serve():
        while not stop.is_set():
            try:
                c, _ = lst.accept()
            except socket.timeout:
                continue
            threading.Thread(target=dribble, args=(c,), daemon=True).start()
        lst.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        s = ctx.start_server()
        s.stop()
        r = doctor(s.data_dir, {}, "--url", "https://127.0.0.1:%d" % port)
        check(r.returncode != 0, "doctor succeeded against a dribbler")
        check("timed out" in r.stdout,
              "doctor does not say it timed out: %s" % r.stdout[-600:])
    finally:
        stop.set()
        th.join(timeout=10)
