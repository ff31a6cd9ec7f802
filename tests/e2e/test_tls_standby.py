"""test_tls_standby.py - the standby certificate (issue 15, item 2;
docs/operations.md, "Standby certificate"): the server serves the primary
and switches to the standby by itself when the primary expires (a primary
made here to expire seconds after the start) or is not valid yet, back
once a renewed primary comes with SIGHUP, and by one command in an
incident (`tpwallet tls switch`); every switch is logged, is a tls_switch
journal entry (reason, from, to, serials) and shows in /metrics; bad
standby files are refused at start with a message naming the file.

Certificates are made here with openssl (test_tls.make_pki's CA): the
standby has its own key (other.key), serial 6006."""

import http.client
import json
import os
import re
import ssl
import time

from harness import e2e_test, check, check_eq, run_cli, slow_factor
import test_tls
from test_tls import _openssl, make_pki, https, get, served_serial

STANDBY_SERIAL = "6006"


def asn1_time(t):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))


def sign_window(pki, out, csr, start, end):
    """A certificate for csr valid from start to end (seconds since the
    epoch), signed by make_pki's CA with `openssl ca`; its path."""
    d = os.path.dirname(pki["ca.pem"])
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem",
             "-keyfile", "ca.key", "-in", csr, "-startdate",
             asn1_time(start), "-enddate", asn1_time(end), "-extfile",
             "san.ext", "-out", out, "-notext", cwd=d)
    return os.path.join(d, out)


def make_standby(pki):
    """The standby: other.key's own certificate, serial 6006, 25 days."""
    d = os.path.dirname(pki["ca.pem"])
    _openssl("req", "-new", "-key", "other.key", "-subj", "/CN=127.0.0.1",
             "-out", "other.csr", cwd=d)
    _openssl("x509", "-req", "-in", "other.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-set_serial", "0x" + STANDBY_SERIAL, "-days", "25",
             "-extfile", "san.ext", "-out", "standby.pem", cwd=d)
    return os.path.join(d, "standby.pem")


def standby_env(pki, standby):
    return {"TPWALLET_TLS_STANDBY_CERT_FILE": standby,
            "TPWALLET_TLS_STANDBY_KEY_FILE": pki["other.key"]}


def serial_now(s, pki):
    c = https(s.port, pki["ca.pem"])
    check_eq(get(c, "/healthz")[0], 200, "GET /healthz over HTTPS")
    serial = served_serial(c)
    c.close()
    return serial


def serving_metric(s, pki):
    c = https(s.port, pki["ca.pem"])
    status, body = get(c, "/metrics")
    c.close()
    check_eq(status, 200, "GET /metrics")
    m = dict(re.findall(r'^tpwallet_tls_serving\{role="(primary|standby)"\} '
                        r'([01])$', body.decode(), re.M))
    check_eq(sorted(m), ["primary", "standby"], "both serving rows")
    on = [r for r, v in m.items() if v == "1"]
    check_eq(len(on), 1, "one role serves: %r" % m)
    rows = re.findall(r'^tpwallet_tls_certificate_not_after_seconds\{role='
                      r'"(server|primary|standby)",serial="([0-9a-f]+)"',
                      body.decode(), re.M)
    return on[0], dict(rows)


def switches(data):
    """The journal's tls_switch entries, oldest first (audit log)."""
    r = run_cli(["audit", "log", data, "--type", "tls_switch", "--json"])
    check_eq(r.returncode, 0, "audit log: %r" % r.stderr)
    rows = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    return list(reversed(rows))


def wait_switches(s, n):
    """Wait (bounded) until the server logged its n-th journaled switch."""
    deadline = time.monotonic() + 15 * slow_factor()
    while time.monotonic() < deadline:
        if s.log_text().count('"msg":"TLS switch journaled"') >= n:
            return
        time.sleep(0.1)
    raise AssertionError("%d switches not journaled: %s"
                         % (n, s.log_text()[-1500:]))


def fields(row):
    f = row["fields"]
    return (f["reason"], f["from"], f["to"], f["from_serial"],
            f["to_serial"], row["author"]["name"])


@e2e_test(timeout=120, waits=True)
def test_tls_standby_serves_when_the_primary_expires_and_a_renewal_returns(
        ctx):
    pki = make_pki(ctx.path("pki"))
    standby = make_standby(pki)
    now = int(time.time())
    life_s = int(8 * slow_factor())
    short = sign_window(pki, "short.pem", "server.csr", now - 3600,
                        now + life_s)
    short_serial = served_serial_of(short)
    live = ctx.path("pki", "live.pem")
    with open(short) as f, open(live, "w") as g:
        g.write(f.read())
    s = test_tls.start_tls(ctx, pki, live, env=standby_env(pki, standby))
    check(time.time() < now + life_s, "started before the primary expired")
    check_eq(serial_now(s, pki), short_serial, "the primary serves first")
    role, rows = serving_metric(s, pki)
    check_eq(role, "primary", "tpwallet_tls_serving before")
    check_eq(rows, {"server": short_serial, "primary": short_serial,
                    "standby": STANDBY_SERIAL}, "not_after rows")

    # No request, no SIGHUP: the server wakes at not_after by itself.
    check(s.wait_log(r'"msg":"TLS certificate switched".*"reason":"expired"'
                     r'.*"from":"primary".*"to":"standby"',
                     timeout=life_s + 10 * slow_factor()),
          "the switch at not_after is logged")
    check_eq(serial_now(s, pki), STANDBY_SERIAL, "the standby serves")
    role, rows = serving_metric(s, pki)
    check_eq((role, rows["server"]), ("standby", STANDBY_SERIAL),
             "metrics after the switch")

    # A renewed primary and SIGHUP: the primary serves again.
    with open(pki["server1.pem"]) as f, open(live + ".new", "w") as g:
        g.write(f.read())
    os.rename(live + ".new", live)
    s.proc.send_signal(1)
    check(s.wait_log(r'"msg":"TLS certificate switched".*'
                     r'"reason":"primary_valid".*"to":"primary"',
                     timeout=10), "back to the renewed primary")
    check_eq(serial_now(s, pki), test_tls.SERIAL_1, "the renewed primary")
    wait_switches(s, 2)
    got = [fields(r) for r in switches(s.data_dir)]
    check_eq(got, [("expired", "primary", "standby", short_serial,
                    STANDBY_SERIAL, "server"),
                   ("primary_valid", "standby", "primary", STANDBY_SERIAL,
                    test_tls.SERIAL_1, "server")], "the journal's entries")
    s.stop()


def served_serial_of(path):
    out = _openssl("x509", "-in", path, "-noout", "-serial",
                   cwd=os.path.dirname(path))
    return out.strip().split("=", 1)[1].lower().lstrip("0")


@e2e_test(timeout=90)
def test_tls_standby_serves_from_the_start_when_the_primary_is_not_valid_yet(
        ctx):
    pki = make_pki(ctx.path("pki"))
    standby = make_standby(pki)
    s = test_tls.start_tls(ctx, pki, pki["future.pem"],
                           env=standby_env(pki, standby))
    check_eq(serial_now(s, pki), STANDBY_SERIAL, "the standby serves")
    check_eq(serving_metric(s, pki)[0], "standby", "tpwallet_tls_serving")
    wait_switches(s, 1)
    check_eq([fields(r) for r in switches(s.data_dir)],
             [("not_yet_valid", "primary", "standby", "4004",
               STANDBY_SERIAL, "server")], "the entry")
    s.stop()


def tls_switch(s, pki, to):
    return run_cli(["tls", "switch", "--to", to, "--server",
                    "https://127.0.0.1:%d" % s.port, "--cacert",
                    pki["ca.pem"], "--data", s.data_dir, "--timeout", "10"])


@e2e_test(timeout=120)
def test_tls_switch_command_moves_new_connections_and_is_journaled(ctx):
    pki = make_pki(ctx.path("pki"))
    standby = make_standby(pki)
    s = test_tls.start_tls(ctx, pki, pki["server1.pem"],
                           env=standby_env(pki, standby))
    old = https(s.port, pki["ca.pem"])
    check_eq(get(old, "/healthz")[0], 200, "an open connection")

    r = tls_switch(s, pki, "standby")
    check_eq(r.returncode, 0, "tls switch --to standby: %r" % r.stderr)
    got = json.loads(r.stdout)
    check_eq((got["serving"], got["from"], got["from_serial"],
              got["to_serial"], got["status"]),
             ("standby", "primary", test_tls.SERIAL_1, STANDBY_SERIAL,
              "switched"), "the answer")
    check(got["seq"] > 0, "the entry's seq: %r" % got)
    check_eq(serial_now(s, pki), STANDBY_SERIAL, "new connections")
    check_eq(get(old, "/healthz")[0], 200, "the open connection stays")
    check_eq(served_serial(old), test_tls.SERIAL_1, "with its certificate")
    old.close()
    check_eq(serving_metric(s, pki)[0], "standby", "tpwallet_tls_serving")
    check(re.search(r'"msg":"TLS certificate switched".*"reason":"operator"'
                    r'.*"to":"standby"', s.log_text()), "logged")

    r = tls_switch(s, pki, "standby")
    check_eq((r.returncode, json.loads(r.stdout)),
             (0, {"serving": "standby", "status": "unchanged"}),
             "asked twice: %r" % r.stderr)
    # A SIGHUP does not undo the operator's choice.
    mark = len(s.log_text().encode())
    s.proc.send_signal(1)
    check(s.wait_log(r'"msg":"TLS certificate reloaded".*"role":"standby"',
                     timeout=10, since=mark), "reloaded")
    check_eq(serial_now(s, pki), STANDBY_SERIAL, "still the standby")

    r = tls_switch(s, pki, "primary")
    check_eq(r.returncode, 0, "tls switch --to primary: %r" % r.stderr)
    check_eq(json.loads(r.stdout)["serving"], "primary", "back")
    check_eq(serial_now(s, pki), test_tls.SERIAL_1, "the primary again")

    check_eq([fields(x) for x in switches(s.data_dir)],
             [("operator", "primary", "standby", test_tls.SERIAL_1,
               STANDBY_SERIAL, "administrator"),
              ("operator", "standby", "primary", STANDBY_SERIAL,
               test_tls.SERIAL_1, "administrator")], "the entries")

    r = run_cli(["tls", "switch", "--to", "sideways", "--server",
                 "https://127.0.0.1:%d" % s.port])
    check_eq(r.returncode, 2, "a bad role is a usage error")
    c = https(s.port, pki["ca.pem"])
    c.request("POST", "/v1/tls/switch", body=b'{"to":"standby"}',
              headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    check_eq(resp.status, 401, "no credential: %r" % resp.read())
    c.close()
    s.stop()


@e2e_test(timeout=90)
def test_tls_switch_without_a_standby_is_refused_409(ctx):
    pki = make_pki(ctx.path("pki"))
    s = test_tls.start_tls(ctx, pki, pki["server1.pem"])
    r = tls_switch(s, pki, "standby")
    check_eq((r.returncode, r.stdout), (1, ""), "refused")
    check_eq(r.stderr, "tpwallet tls switch: 409 The served TLS certificate "
             "cannot be switched: no standby certificate is configured "
             "(tls_standby_cert_file) [/problems/tls-switch-refused]\n",
             "the problem, as the CLI says it")
    c = https(s.port, pki["ca.pem"])
    c.request("POST", "/v1/tls/switch", body=b'{"to":"standby"}',
              headers={"Content-Type": "application/json",
                       "Authorization": s.admin_authorization()})
    resp = c.getresponse()
    got = json.loads(resp.read())
    c.close()
    check_eq((resp.status, got["type"].rsplit("/", 1)[-1], got["field"]),
             (409, "tls-switch-refused", "to"), "the problem: %r" % got)
    check_eq(serial_now(s, pki), test_tls.SERIAL_1, "the primary serves")
    check_eq(switches(s.data_dir), [], "nothing journaled")
    s.stop()


@e2e_test(timeout=120)
def test_tls_bad_standby_files_are_refused_at_start_naming_the_file(ctx):
    pki = make_pki(ctx.path("pki"))
    standby = make_standby(pki)
    d = os.path.dirname(pki["ca.pem"])
    loose = os.path.join(d, "loose-other.key")
    with open(pki["other.key"]) as f, open(loose, "w") as g:
        g.write(f.read())
    os.chmod(loose, 0o644)
    missing = os.path.join(d, "missing.pem")
    cases = [
        (pki["expired.pem"], pki["server.key"],
         "standby certificate %s expired at " % pki["expired.pem"]),
        (standby, pki["server.key"],
         "standby key %s does not match the certificate in %s"
         % (pki["server.key"], standby)),
        (standby, loose, "standby key %s: must be a regular file of ours "
         "with mode 0600" % loose),
        (missing, pki["other.key"],
         "standby certificate %s: No such file or directory" % missing),
        (standby, "", "tls_standby_cert_file and tls_standby_key_file go "
         "together"),
    ]
    primary = {"TPWALLET_TLS_CERT_FILE": pki["server1.pem"],
               "TPWALLET_TLS_KEY_FILE": pki["server.key"]}
    test_tls.check_refused_at_start(ctx, [
        (dict(primary, TPWALLET_TLS_STANDBY_CERT_FILE=cert,
              **({"TPWALLET_TLS_STANDBY_KEY_FILE": key} if key else {})),
         want) for cert, key, want in cases])


@e2e_test(timeout=90, waits=True)
def test_tls_no_switch_to_a_standby_that_expired_too_and_an_error_says_so(
        ctx):
    pki = make_pki(ctx.path("pki"))
    make_standby(pki)  # other.csr
    now = int(time.time())
    life_s = int(8 * slow_factor())
    primary = sign_window(pki, "short.pem", "server.csr", now - 3600,
                          now + life_s)
    standby = sign_window(pki, "short-standby.pem", "other.csr",
                          now - 3600, now + life_s - 3)
    s = test_tls.start_tls(ctx, pki, primary, env=standby_env(pki, standby))
    check(s.wait_log(r'"msg":"TLS: neither the primary nor the standby '
                     r'certificate is valid: the one serving still serves; '
                     r'renew one and send SIGHUP","serving":"primary",'
                     r'"primary_serial":"%s","standby_serial":"%s"'
                     % (served_serial_of(primary), served_serial_of(standby)),
                     timeout=life_s + 10 * slow_factor()), "the error")
    check("TLS certificate switched" not in s.log_text(), "no switch")
    # The expired primary still serves: read /metrics without verifying.
    c = http.client.HTTPSConnection(
        "127.0.0.1", s.port, timeout=5,
        context=ssl._create_unverified_context())
    status, body = get(c, "/metrics")
    c.close()
    check_eq(status, 200, "GET /metrics")
    check('tpwallet_tls_serving{role="primary"} 1\n' in body.decode(),
          "tpwallet_tls_serving says primary")
    check('tpwallet_tls_certificate_not_after_seconds{role="server",'
          'serial="%s",' % served_serial_of(primary) in body.decode(),
          "the one serving is the primary")
    check_eq(s.log_text().count('"msg":"TLS: neither the primary nor the '
                                'standby certificate is valid'), 1,
             "logged once")
    s.stop()


@e2e_test(timeout=120, waits=True)
def test_tls_an_operators_standby_is_not_served_past_its_end(ctx):
    # The outside review: a standby chosen with `tls switch` kept serving
    # after it expired, with a valid primary at hand and nothing logged.
    pki = make_pki(ctx.path("pki"))
    make_standby(pki)
    now = int(time.time())
    life_s = int(8 * slow_factor())
    short = sign_window(pki, "short-standby.pem", "other.csr", now - 3600,
                        now + life_s)
    short_serial = served_serial_of(short)
    s = test_tls.start_tls(ctx, pki, pki["server1.pem"],
                           env=standby_env(pki, short))
    r = tls_switch(s, pki, "standby")
    check_eq(r.returncode, 0, "tls switch --to standby: %r" % r.stderr)
    check_eq(serial_now(s, pki), short_serial, "the standby serves")
    check(s.wait_log(r'"msg":"TLS certificate switched".*"reason":"expired"'
                     r'.*"from":"standby".*"to":"primary"',
                     timeout=life_s + 10 * slow_factor()),
          "back to the primary when the operator's standby expires")
    check_eq(serial_now(s, pki), test_tls.SERIAL_1, "the primary serves")
    check_eq(serving_metric(s, pki)[0], "primary", "tpwallet_tls_serving")
    # The operator's switch is journaled by its request; the server's
    # own by its watcher.
    wait_switches(s, 1)
    got = [fields(r) for r in switches(s.data_dir)]
    check_eq(len(got), 2, "two entries: %r" % got)
    check_eq(got[0][:5], ("operator", "primary", "standby",
                          test_tls.SERIAL_1, short_serial), "the first")
    check_eq(got[1], ("expired", "standby", "primary", short_serial,
                      test_tls.SERIAL_1, "server"), "the second entry")
    s.stop()
