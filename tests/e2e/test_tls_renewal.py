"""test_tls_renewal.py - the tpwallet side of certificate renewal (issue
15, item 3; docs/operations.md, "Renewal with certbot or uacme"): the
deploy hook deploy/tls/tpwallet-tls-deploy-hook, run as certbot or uacme
would run it against a running server, installs a renewed pair (a new
certificate, and a new key too) and the server serves it to new
connections; a bad new pair (a key of another certificate, half a file,
expired, not valid yet) is refused by the hook, the installed files stay
byte for byte and the old certificate keeps serving.  No ACME server is
contacted: the "renewals" are certificates made here."""

import json
import os
import re
import shutil
import stat
import subprocess
import time

from harness import e2e_test, check, check_eq, read_admin_token
import test_tls
import test_tls_standby
from test_tls import make_pki
from test_tls_standby import serial_now

HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "deploy", "tls", "tpwallet-tls-deploy-hook")


def run_hook(args, env):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("TPWALLET_", "RENEWED_"))}
    e.update(env)
    return subprocess.run([HOOK] + list(args), env=e, capture_output=True,
                          text=True, timeout=60)


def read(path):
    with open(path, "rb") as f:
        return f.read()


@e2e_test(timeout=120)
def test_tls_renewal_hook_installs_a_renewed_pair_and_refuses_a_bad_one(ctx):
    pki = make_pki(ctx.path("pki"))
    d = os.path.dirname(pki["ca.pem"])
    standby = test_tls_standby.make_standby(pki)  # other.key's, 6006
    live = ctx.path("live")
    os.makedirs(live)
    cert, key = os.path.join(live, "tls.pem"), os.path.join(live, "tls.key")
    shutil.copy(pki["server1.pem"], cert)
    shutil.copy(pki["server.key"], key)
    os.chmod(key, 0o600)
    s = test_tls.start_tls(ctx, pki, cert,
                           env={"TPWALLET_TLS_KEY_FILE": key})
    check_eq(serial_now(s, pki), test_tls.SERIAL_1, "before")
    env = {"TPWALLET_TLS_CERT_FILE": cert, "TPWALLET_TLS_KEY_FILE": key,
           "TPWALLET_PID": str(s.proc.pid)}

    # uacme style: the new pair as two arguments (same key, new cert).
    mark = len(s.log_text().encode())
    r = run_hook([pki["server2.pem"], pki["server.key"]], env)
    check_eq(r.returncode, 0, "the hook: %r" % r.stderr)
    check("installed serial 2002 " in r.stdout, "it says: %r" % r.stdout)
    check(s.wait_log(r'"msg":"TLS certificate reloaded".*"serial":"2002"',
                     timeout=10, since=mark), "the server reloaded")
    check_eq(serial_now(s, pki), test_tls.SERIAL_2, "the renewed one")

    # certbot style: RENEWED_LINEAGE with a new key as well.
    lineage = ctx.path("lineage")
    os.makedirs(lineage)
    shutil.copy(standby, os.path.join(lineage, "fullchain.pem"))
    shutil.copy(pki["other.key"], os.path.join(lineage, "privkey.pem"))
    mark = len(s.log_text().encode())
    r = run_hook([], dict(env, RENEWED_LINEAGE=lineage))
    check_eq(r.returncode, 0, "the hook, certbot style: %r" % r.stderr)
    check(s.wait_log(r'"msg":"TLS certificate reloaded".*"serial":"6006"',
                     timeout=10, since=mark), "reloaded with the new key")
    check_eq(serial_now(s, pki), test_tls_standby.STANDBY_SERIAL,
             "served with its new key")
    check_eq(stat.S_IMODE(os.stat(key).st_mode), 0o600, "the key's mode")
    check_eq(read(key), read(pki["other.key"]), "the new key installed")
    check_eq(sorted(os.listdir(live)), ["tls.key", "tls.pem"],
             "no temporary file left")

    # Bad pairs: refused by the hook, nothing replaced, nothing sent.
    half = os.path.join(d, "half.pem")
    with open(pki["server1.pem"]) as f:
        text = f.read()
    with open(half, "w") as g:
        g.write(text[:len(text) // 2])
    cases = [
        ((pki["server1.pem"], pki["other.key"]),
         "%s does not match the certificate in %s; nothing installed"
         % (pki["other.key"], pki["server1.pem"])),
        ((half, pki["server.key"]),
         "%s: no PEM certificate openssl can read; nothing installed"
         % half),
        ((pki["expired.pem"], pki["server.key"]),
         "%s: expired; nothing installed" % pki["expired.pem"]),
        ((pki["future.pem"], pki["server.key"]),
         "%s: not valid before Dec 31 00:00:00 2099 GMT (is the clock "
         "right?); nothing installed" % pki["future.pem"]),
    ]
    before = (read(cert), read(key))
    mark = len(s.log_text().encode())
    for i, (args, want) in enumerate(cases):
        r = run_hook(args, env)
        check_eq((r.returncode, r.stdout), (1, ""), "case %d refused" % i)
        check_eq(r.stderr, "tpwallet-tls-deploy-hook: %s\n" % want,
                 "case %d: why" % i)
        check_eq((read(cert), read(key)), before,
                 "case %d: the installed files stay" % i)
    check("SIGHUP" not in s.log_text()[mark:] and
          "TLS certificate reloaded" not in s.log_text()[mark:],
          "nothing signalled")
    check_eq(serial_now(s, pki), test_tls_standby.STANDBY_SERIAL,
             "the old certificate keeps serving")
    r = run_hook(["only-one"], env)
    check_eq(r.returncode, 2, "usage")
    s.stop()


@e2e_test(timeout=120)
def test_tls_certificates_replaced_under_wrk_load_fail_no_request(ctx):
    """Issue 15's test: a bounded wrk run (a new TLS connection for every
    request, so handshakes meet each reload, and keep-alive connections
    beside them) sees no failed request while the certificate file is
    replaced and SIGHUP sent four times; afterwards new connections get
    the last certificate."""
    pki = make_pki(ctx.path("pki"))
    live = ctx.path("pki", "live.pem")
    shutil.copyfile(pki["server1.pem"], live)
    s = test_tls.start_tls(ctx, pki, live)
    token = read_admin_token(s.data_dir)
    url = "https://127.0.0.1:%d/v1/accounts/1" % s.port
    c = test_tls.https(s.port, pki["ca.pem"])
    c.request("POST", "/v1/accounts", body=json.dumps(
        [{"id": "1", "ledger": 1, "code": 1}]),
        headers={"Authorization": "Bearer " + token,
                 "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    check_eq(r.status, 200, "account 1")
    c.close()

    runs = []
    for close in (True, False):
        args = ["wrk", "-t1", "-c4", "-d5s", "--latency", "-H",
                "Authorization: Bearer " + token]
        if close:
            args += ["-H", "Connection: close"]
        runs.append(subprocess.Popen(args + [url], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True))
    try:
        serials = []
        for i in range(4):
            time.sleep(0.8)
            src = pki["server2.pem"] if i % 2 == 0 else pki["server1.pem"]
            shutil.copyfile(src, live + ".new")
            os.rename(live + ".new", live)
            mark = len(s.log_text().encode())
            s.proc.send_signal(1)  # SIGHUP
            want = test_tls.SERIAL_2 if i % 2 == 0 else test_tls.SERIAL_1
            check(s.wait_log(r'"msg":"TLS certificate reloaded".*'
                             r'"serial":"%s"' % want, timeout=10,
                             since=mark), "reload %d logged" % i)
            serials.append(want)
        outs = [p.communicate(timeout=30) for p in runs]
    finally:
        for p in runs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (out, err), p, what in zip(outs, runs, ("Connection: close",
                                                "keep-alive")):
        print("      wrk %s: %s" % (what, " ".join(
            ln.strip() for ln in out.splitlines() if "requests in" in ln)))
        check_eq(p.returncode, 0, "wrk %s exit: %s" % (what, err))
        m = re.search(r"(\d+) requests in", out)
        check(m is not None and int(m.group(1)) > 20,
              "%s made too few requests: %s" % (what, out))
        check("Socket errors" not in out, "%s: %s" % (what, out))
        check("Non-2xx or 3xx" not in out, "%s: %s" % (what, out))
    c = test_tls.https(s.port, pki["ca.pem"])
    check_eq(test_tls.get(c, "/healthz")[0], 200, "after the reloads")
    check_eq(test_tls.served_serial(c), serials[-1], "the last certificate")
    c.close()
    s.stop()
