"""test_tls_ocsp.py - OCSP stapling (issue 15, item 5; docs/operations.md
"OCSP stapling"): a DER OCSP response for the served certificate is
stapled to every handshake that asks for one (openssl s_client -status);
a response that is not OCSP, for another certificate, or not signed by
the chain's issuer is refused at start naming the file; a primary whose
response says revoked is refused without a standby, and with one the
standby serves (a tls_switch entry, reason revoked) until a good
response comes with SIGHUP.  Responses are made here by `openssl ocsp`
from an index file, signed by test_tls.make_pki's CA."""

import os
import re
import subprocess
import time

from harness import e2e_test, check, check_eq, run_cli
import test_tls
from test_tls import _openssl, _ec_key, make_pki
from test_tls_standby import (STANDBY_SERIAL, make_standby, standby_env,
                              serial_now, switches, wait_switches, fields)


def chain(pki, leaf, name):
    """leaf then the CA: the issuer that checks the response."""
    d = os.path.dirname(pki["ca.pem"])
    with open(os.path.join(d, name), "w") as f:
        for p in (leaf, pki["ca.pem"]):
            with open(p) as g:
                f.write(g.read())
    return os.path.join(d, name)


def ocsp_response(pki, cert, serial, out, revoked=False, signer="ca"):
    """A response for cert (serial in hex) from an index file, signed by
    the CA (or signer.pem/.key), valid two days; its path."""
    d = os.path.dirname(pki["ca.pem"])
    exp = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 86400 * 30))
    rev = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 60))
    with open(os.path.join(d, out + ".idx"), "w") as f:
        f.write("%s\t%s\t%s\t%s\tunknown\t/CN=127.0.0.1\n"
                % ("R" if revoked else "V", exp, rev if revoked else "",
                   serial.upper()))
    _openssl("ocsp", "-issuer", "ca.pem", "-cert", cert, "-no_nonce",
             "-reqout", out + ".req", cwd=d)
    _openssl("ocsp", "-index", out + ".idx", "-rsigner", signer + ".pem",
             "-rkey", signer + ".key", "-CA", "ca.pem", "-reqin", out + ".req", "-respout",
             out, "-ndays", "2", cwd=d)
    return os.path.join(d, out)


def stapled(port, ca):
    """What openssl s_client -status says of the stapled response."""
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-status", "-CAfile", ca,
                        "-servername", "localhost"],
                       input="", capture_output=True, text=True,
                       timeout=30)
    out = r.stdout
    if "OCSP response: no response sent" in out:
        return None
    m = re.search(r"Cert Status: (\w+)", out)
    check("OCSP Response Status: successful" in out and m is not None,
          "s_client -status: %s" % out[:1500])
    return m.group(1)


@e2e_test(timeout=180)
def test_tls_ocsp_staples_a_good_response_and_refuses_bad_ones(ctx):
    pki = make_pki(ctx.path("pki"))
    c1 = chain(pki, pki["server1.pem"], "chain1.pem")
    good = ocsp_response(pki, pki["server1.pem"], test_tls.SERIAL_1,
                         "good.der")
    other = ocsp_response(pki, pki["server2.pem"], test_tls.SERIAL_2,
                          "other.der")
    revoked = ocsp_response(pki, pki["server1.pem"], test_tls.SERIAL_1,
                            "revoked.der", revoked=True)

    plain = test_tls.start_tls(ctx, pki, c1)
    check_eq(stapled(plain.port, pki["ca.pem"]), None,
             "no OCSP file: nothing stapled")
    plain.stop()

    s = test_tls.start_tls(ctx, pki, c1, env={"TPWALLET_TLS_OCSP_FILE": good})
    check_eq(stapled(s.port, pki["ca.pem"]), "good", "stapled response")
    c = test_tls.https(s.port, pki["ca.pem"])
    status, body = test_tls.get(c, "/metrics")
    c.close()
    m = re.search(r'^tpwallet_tls_ocsp_next_update_seconds\{role="primary"\}'
                  r' (\d+)$', body.decode(), re.M)
    check(m is not None and 86400 < int(m.group(1)) - time.time() < 3 * 86400,
          "OCSP next update metric: %s" % (m and m.group(0)))
    s.stop()

    # The doctor says what the response says.
    r = run_cli(["doctor", "--data", s.data_dir],
                env={"TPWALLET_TLS_CERT_FILE": c1,
                     "TPWALLET_TLS_KEY_FILE": pki["server.key"],
                     "TPWALLET_TLS_OCSP_FILE": good})
    check(re.search(r"tls OCSP response: .*good.*signature checked",
                    r.stdout) is not None, "doctor: %s" % r.stdout)

    d = os.path.dirname(pki["ca.pem"])
    _ec_key(d, "ca2.key")
    _openssl("req", "-x509", "-new", "-key", "ca2.key", "-days", "30",
             "-subj", "/CN=another CA", "-out", "ca2.pem", cwd=d)
    foreign = ocsp_response(pki, pki["server1.pem"], test_tls.SERIAL_1,
                            "foreign.der", signer="ca2")
    garbage = ctx.path("pki", "garbage.der")
    with open(garbage, "wb") as f:
        f.write(b"\x30\x03\x02\x01\x01not ocsp")
    for ocsp, words in (
            (garbage, "not a DER-encoded OCSP response"),
            (other, "it is for another certificate"),
            (foreign, "it is not signed by the certificate's issuer"),
            (revoked, "is revoked"),
            (ctx.path("pki", "missing.der"), "missing.der")):
        r = run_cli(["serve", "--data", ctx.path("d"), "--listen",
                     "127.0.0.1:1"],
                    env={"TPWALLET_TLS_CERT_FILE": c1,
                         "TPWALLET_TLS_KEY_FILE": pki["server.key"],
                         "TPWALLET_TLS_OCSP_FILE": ocsp}, timeout=20)
        check_eq(r.returncode, 2, "%s: exit (%r)" % (words, r.stderr))
        check(words in r.stderr, "%s: %r" % (words, r.stderr))
    # A chain without the issuer: the response is stapled, its signature
    # left to the client (doctor says so).
    s = test_tls.start_tls(ctx, pki, pki["server1.pem"],
                           env={"TPWALLET_TLS_OCSP_FILE": good})
    check_eq(stapled(s.port, pki["ca.pem"]), "good", "leaf only: stapled")
    s.stop()
    r = run_cli(["doctor", "--data", s.data_dir],
                env={"TPWALLET_TLS_CERT_FILE": pki["server1.pem"],
                     "TPWALLET_TLS_KEY_FILE": pki["server.key"],
                     "TPWALLET_TLS_OCSP_FILE": good})
    check(re.search(r"tls OCSP response: .*good.*signature not checked "
                    r"\(the chain has no issuer\)", r.stdout) is not None,
          "doctor, leaf only: %s" % r.stdout)
    # An OCSP file without a certificate.
    r = run_cli(["serve", "--data", ctx.path("d"), "--listen",
                 "127.0.0.1:1"], env={"TPWALLET_TLS_OCSP_FILE": good},
                timeout=20)
    check_eq(r.returncode, 2, "OCSP file without tls_cert_file")


@e2e_test(timeout=180)
def test_tls_a_revoked_primary_hands_over_to_the_standby_until_a_good_response(
        ctx):
    pki = make_pki(ctx.path("pki"))
    standby = make_standby(pki)
    live = ctx.path("pki", "live.der")
    revoked = ocsp_response(pki, pki["server1.pem"], test_tls.SERIAL_1,
                            "revoked.der", revoked=True)
    good = ocsp_response(pki, pki["server1.pem"], test_tls.SERIAL_1,
                         "good.der")
    with open(revoked, "rb") as f, open(live, "wb") as g:
        g.write(f.read())
    env = standby_env(pki, standby)
    env["TPWALLET_TLS_OCSP_FILE"] = live
    s = test_tls.start_tls(ctx, pki, chain(pki, pki["server1.pem"],
                                           "chain1.pem"), env=env)
    check_eq(serial_now(s, pki), STANDBY_SERIAL, "the standby serves")
    wait_switches(s, 1)

    # A good response, SIGHUP: the primary serves again.
    with open(good, "rb") as f, open(live + ".new", "wb") as g:
        g.write(f.read())
    os.rename(live + ".new", live)
    s.proc.send_signal(1)
    wait_switches(s, 2)
    check_eq(serial_now(s, pki), test_tls.SERIAL_1, "the primary again")
    check_eq(stapled(s.port, pki["ca.pem"]), "good", "stapled after reload")
    s.stop()
    rows = switches(s.data_dir)
    check_eq([fields(r)[:3] for r in rows],
             [("revoked", "primary", "standby"),
              ("primary_valid", "standby", "primary")], "the two switches")
