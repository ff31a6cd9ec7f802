"""test_outbound_tls.py - the server's outbound calls over TLS (issue 15,
item 7; docs/operations.md "Outbound TLS"): a probe to an HTTPS endpoint
trusts the CA bundle of outbound_ca_file instead of the system's, and an
outbound_pin accepts only a server whose public key is pinned; bad
settings are refused at start; doctor lists the bundle's expiry.

The endpoint is another tpwallet serving HTTPS with test_tls.py's
certificates (made by openssl at test time)."""

import base64
import hashlib
import subprocess

from harness import e2e_test, check, check_eq, run_cli
from test_probe import wait_probes
from test_tls import make_pki, start_tls

CLIENT = "android/4.1.0"


def spki_pin(key_path):
    """sha256// and the base64 of the SHA-256 of the key's public half
    (SubjectPublicKeyInfo, DER), as curl and HPKP write it."""
    der = subprocess.run(["openssl", "pkey", "-in", key_path, "-pubout",
                          "-outform", "DER"], capture_output=True,
                         timeout=30, check=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()
                                         ).decode()


def probe_of(ctx, target_url, env):
    e = {"TPWALLET_PROBE_INTERVAL_S": "1"}
    e.update(env)
    s = ctx.start_server(args=["--probe", "%s:%s" % (target_url, CLIENT)],
                         env=e)
    [p] = wait_probes(s, lambda ps: len(ps) == 1 and
                      ps[0]["runs"] > 0, 20)
    s.stop()
    return p


@e2e_test(timeout=180)
def test_outbound_calls_trust_the_ca_file_and_only_pinned_keys(ctx):
    pki = make_pki(ctx.path("pki"))
    target = start_tls(ctx, pki, pki["server1.pem"])
    url = "https://127.0.0.1:%d" % target.port
    good = spki_pin(pki["server.key"])
    other = spki_pin(pki["other.key"])

    # The system's CAs do not know the test CA.
    p = probe_of(ctx, url, {})
    check_eq((p["verdict"], p["error"]), ("unreachable", "tls"),
             "without outbound_ca_file")
    # With the bundle: served.
    p = probe_of(ctx, url, {"TPWALLET_OUTBOUND_CA_FILE": pki["ca.pem"]})
    check_eq(p["verdict"], "served", "with outbound_ca_file: %r" % p)
    # Pinned to the server's key (and a backup key): served.
    p = probe_of(ctx, url, {"TPWALLET_OUTBOUND_CA_FILE": pki["ca.pem"],
                            "TPWALLET_OUTBOUND_PIN": "%s %s;%s" % (
                                url, other, good)})
    check_eq(p["verdict"], "served", "pinned to its key: %r" % p)
    # Pinned to another key: the chain verifies, the pin does not.
    p = probe_of(ctx, url, {"TPWALLET_OUTBOUND_CA_FILE": pki["ca.pem"],
                            "TPWALLET_OUTBOUND_PIN": "%s %s" % (url, other)})
    check_eq((p["verdict"], p["error"]), ("unreachable", "pinned_key"),
             "pinned to another key")
    # A pin for another port does not apply.
    p = probe_of(ctx, url, {"TPWALLET_OUTBOUND_CA_FILE": pki["ca.pem"],
                            "TPWALLET_OUTBOUND_PIN": "https://127.0.0.1:%d %s"
                            % (target.port + 1, other)})
    check_eq(p["verdict"], "served", "a pin for another port")
    target.stop()

    # doctor lists the bundle among what expires.
    r = run_cli(["doctor", "--data", target.data_dir],
                env={"TPWALLET_OUTBOUND_CA_FILE": pki["ca.pem"]})
    check(any(ln.split(":", 1)[0].split(None, 1)[-1] == "outbound CA"
              for ln in r.stdout.splitlines()),
          "doctor does not list the outbound CA: %s" % r.stdout)


@e2e_test(timeout=120)
def test_bad_outbound_settings_are_refused_at_start(ctx):
    pki = make_pki(ctx.path("pki"))
    pin = spki_pin(pki["server.key"])
    cases = [
        ({"TPWALLET_OUTBOUND_PIN": "127.0.0.1:8443 " + pin}, [],
         "is not https://HOST[:PORT]"),
        ({"TPWALLET_OUTBOUND_PIN": "https://127.0.0.1:8443 sha256//abc="},
         [], "a key is not sha256// and the base64 of 32 bytes"),
        ({"TPWALLET_OUTBOUND_PIN": "https://127.0.0.1:8443 " + pin[:-2] +
          "B="}, [], "a key is not sha256// and the base64 of 32 bytes"),
        ({"TPWALLET_OUTBOUND_PIN": "https://127.0.0.1:8443 " +
          ";".join([pin] * 5)}, [], "more than 4 keys"),
        ({"TPWALLET_OUTBOUND_PIN": "https://127.0.0.1:8443 " + pin},
         ["--probe", "http://127.0.0.1:8443:" + CLIENT],
         "a pin is checked on https only"),
        ({"TPWALLET_OUTBOUND_CA_FILE": pki["server.key"]}, [],
         "outbound_ca_file: "),
        ({"TPWALLET_OUTBOUND_CA_FILE": ctx.path("missing.pem")}, [],
         "outbound_ca_file: "),
    ]
    for env, args, words in cases:
        r = run_cli(["serve", "--data", ctx.path("d"), "--listen",
                     "127.0.0.1:1"] + args, env=env, timeout=20)
        check_eq(r.returncode, 2, "%r: exit" % (env,))
        check(words in r.stderr, "%r: %r" % (env, r.stderr))
