"""test_mtls.py - mutual TLS, organisation principals and certificate-bound
mandates (issue 15, items 5 and 6; docs/operations.md "Client
certificates", docs/authz.md "Organisation principals" and
"Certificate-bound mandates").

Every certificate is made here with Debian's openssl: a client CA (with
`openssl ca`, so that it can revoke and publish a CRL), the server's pair
(signed by the same CA), client certificates for org A and org D, one for
org B that the CRL revokes, an expired one, and one from another CA.
Requests go through curl, whose exit status says whether the handshake
was refused (no HTTP status at all) and whose -w says the status when
there was one."""

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import time

from harness import e2e_test, check, check_eq, run_cli, slow_factor
from test_tls import start_tls
from test_tls_expiry import expiry_lines


def _openssl(d, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=d, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def _key(d, name):
    _openssl(d, "genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", name)
    os.chmod(os.path.join(d, name), 0o600)


def _ca_config(d):
    os.makedirs(os.path.join(d, "db"), exist_ok=True)
    open(os.path.join(d, "db", "index.txt"), "w").close()
    with open(os.path.join(d, "db", "serial"), "w") as f:
        f.write("2001\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=c\n[c]\ndatabase=db/index.txt\n"
                "new_certs_dir=db\nserial=db/serial\ndefault_md=sha256\n"
                "policy=p\nunique_subject=no\ndefault_crl_days=7\n"
                "[p]\ncommonName=supplied\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")


def _sign(d, name, cn, ext="client.ext", dates=("-days", "10")):
    _key(d, name + ".key")
    _openssl(d, "req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn,
             "-out", name + ".csr")
    _openssl(d, "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem",
             "-keyfile", "ca.key", "-in", name + ".csr", "-extfile", ext,
             "-notext", "-out", name + ".pem", *dates)


def crl(d, out, revoke=()):
    """A CRL of the client CA that revokes the certificates named."""
    for name in revoke:
        _openssl(d, "ca", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile",
                 "ca.key", "-revoke", name + ".pem")
    _openssl(d, "ca", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile",
             "ca.key", "-gencrl", "-out", out)
    return os.path.join(d, out)


def make_mtls_pki(d):
    os.makedirs(d, exist_ok=True)
    _ca_config(d)
    _key(d, "ca.key")
    _openssl(d, "req", "-x509", "-new", "-key", "ca.key", "-days", "30",
             "-subj", "/CN=tpwallet client CA", "-out", "ca.pem")
    _sign(d, "server", "127.0.0.1", ext="server.ext")
    os.rename(os.path.join(d, "server.pem"), os.path.join(d, "server1.pem"))
    for name in ("a", "b", "d"):
        _sign(d, name, "org " + name)
    _sign(d, "expired", "org expired",
          dates=("-startdate", "20200101000000Z", "-enddate",
                 "20200201000000Z"))
    _sign(d, "future", "org future",
          dates=("-startdate", "20991231000000Z", "-enddate",
                 "21000131000000Z"))
    with open(os.path.join(d, "server-only.ext"), "w") as f:
        f.write("extendedKeyUsage=serverAuth\n")
    _sign(d, "serveronly", "org server only", ext="server-only.ext")
    _key(d, "self.key")
    _openssl(d, "req", "-x509", "-new", "-key", "self.key", "-days", "10",
             "-subj", "/CN=org self", "-addext",
             "extendedKeyUsage=clientAuth", "-out", "self.pem")
    # Another CA's client certificate.
    _key(d, "other-ca.key")
    _openssl(d, "req", "-x509", "-new", "-key", "other-ca.key", "-days",
             "30", "-subj", "/CN=another CA", "-out", "other-ca.pem")
    _key(d, "foreign.key")
    _openssl(d, "req", "-new", "-key", "foreign.key", "-subj",
             "/CN=org foreign", "-out", "foreign.csr")
    _openssl(d, "x509", "-req", "-in", "foreign.csr", "-CA", "other-ca.pem",
             "-CAkey", "other-ca.key", "-set_serial", "0x3001", "-days",
             "10", "-extfile", "client.ext", "-out", "foreign.pem")
    p = {n: os.path.join(d, n) for n in ("ca.pem", "server.key",
                                          "server1.pem")}
    p["dir"] = d
    return p


def spki_sha256(d, name):
    """The base64url SHA-256 of a certificate's SubjectPublicKeyInfo,
    computed by openssl (not by the server)."""
    pub = _openssl(d, "x509", "-in", name + ".pem", "-noout", "-pubkey")
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub.encode(), capture_output=True,
                         timeout=30).stdout
    check(len(der) > 0, "SPKI of %s" % name)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()) \
        .decode().rstrip("=")


def curl(port, pki, path, cert=None, auth=None, body=None, extra=()):
    """(curl exit status, HTTP status (0: none), body as text)."""
    d = pki["dir"]
    args = ["curl", "-sS", "--max-time", "10", "--cacert", pki["ca.pem"],
            "-o", "-", "-w", "\n%{http_code}"]
    if cert:
        args += ["--cert", os.path.join(d, cert + ".pem"), "--key",
                 os.path.join(d, cert + ".key")]
    if auth:
        args += ["-H", "Authorization: " + auth]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary",
                 json.dumps(body)]
    args += list(extra)
    r = subprocess.run(args + ["https://127.0.0.1:%d%s" % (port, path)],
                       capture_output=True, text=True, timeout=30)
    text, _, code = r.stdout.rpartition("\n")
    return r.returncode, int(code or "0"), text


def start_mtls(ctx, pki, mode, crl_path=None):
    env = {"TPWALLET_TLS_CLIENT_CA_FILE": pki["ca.pem"],
           "TPWALLET_TLS_CLIENT_AUTH": mode}
    if crl_path:
        env["TPWALLET_TLS_CRL_FILE"] = crl_path
    if mode != "required":
        return start_tls(ctx, pki, pki["server1.pem"], env=env)
    # Required: only a client with a certificate gets an answer, so
    # readiness is asked with org A's.
    env.update({"TPWALLET_TLS_CERT_FILE": pki["server1.pem"],
                "TPWALLET_TLS_KEY_FILE": pki["server.key"]})
    s = ctx.server(env=env)
    s.spawn()
    deadline = time.monotonic() + 20 * slow_factor()
    while time.monotonic() < deadline:
        check(s.alive(), "the server exited: %s" % s.log_text()[-2000:])
        if curl(s.port, pki, "/readyz", cert="a")[1] == 200:
            return s
        time.sleep(0.05)
    raise AssertionError("not ready over mutual TLS")


def refused_at_handshake(s, pki, cert, reason_rx, what):
    since = s._log_size()
    rc, status, body = curl(s.port, pki, "/healthz", cert=cert)
    check(rc != 0 and status == 0,
          "%s: refused at the handshake, no HTTP answer (curl %d, status "
          "%d, %r)" % (what, rc, status, body[:200]))
    check(s.wait_log(r'"msg":"TLS client certificate refused at the '
                     r'handshake","reason":"[^"]*' + reason_rx, since=since),
          "%s: the log says why: %s" % (what, s.log_text()[-1500:]))


@e2e_test(timeout=180)
def test_mtls_required_refuses_no_expired_foreign_and_revoked_certificates(
        ctx):
    pki = make_mtls_pki(ctx.path("pki"))
    d = pki["dir"]
    crl_path = crl(d, "cur.crl", revoke=("b",))

    # Settings that cannot work: refused at start, with the reason.
    other_crl = os.path.join(d, "other.crl")
    with open(other_crl, "w") as f:
        f.write("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    plain = ctx.server(env={"TPWALLET_TLS_CLIENT_CA_FILE": pki["ca.pem"],
                            "TPWALLET_TLS_CLIENT_AUTH": "required"})
    served, exited, rc = plain.start_expecting_refusal()
    check(served is None and exited and rc == 2 and
          "need tls_cert_file: client certificates come with HTTPS" in
          plain.log_text(), "client CAs without HTTPS: refused (%r): %s"
          % (rc, plain.log_text()[-600:]))
    for env, reason in (
            ({"TPWALLET_TLS_CLIENT_AUTH": "required"},
             "tls_client_auth required needs tls_client_ca_file"),
            ({"TPWALLET_TLS_CRL_FILE": crl_path},
             "tls_crl_file needs tls_client_ca_file"),
            ({"TPWALLET_TLS_CLIENT_CA_FILE": pki["ca.pem"],
              "TPWALLET_TLS_CRL_FILE": other_crl},
             "no PEM CRL that GnuTLS can read"),
            ({"TPWALLET_TLS_CLIENT_CA_FILE": pki["ca.pem"],
              "TPWALLET_TLS_CLIENT_AUTH": "sometimes"},
             "TPWALLET_TLS_CLIENT_AUTH")):
        env.update({"TPWALLET_TLS_CERT_FILE": pki["server1.pem"],
                    "TPWALLET_TLS_KEY_FILE": pki["server.key"]})
        bad = ctx.server(env=env)
        served, exited, rc = bad.start_expecting_refusal()
        check(served is None and exited and rc == 2,
              "%s: exit 2 (%r %r)" % (reason, exited, rc))
        check(reason in bad.log_text(), "the reason %r: %s"
              % (reason, bad.log_text()[-800:]))

    s = start_mtls(ctx, pki, "required", crl_path)
    check(s.wait_log(r'"msg":"TLS client CAs loaded".*"cas":1,"crls":1,'
                     r'"client_auth":"required"'), "CAs and CRL loaded")
    refused_at_handshake(s, pki, None, r"no client certificate", "no cert")
    refused_at_handshake(s, pki, "expired", r"expired", "expired cert")
    refused_at_handshake(s, pki, "foreign", r"issuer is unknown",
                         "another CA's cert")
    refused_at_handshake(s, pki, "b", r"revoked", "revoked cert")
    refused_at_handshake(s, pki, "future", r"not yet valid",
                         "a cert not valid yet")
    refused_at_handshake(s, pki, "self", r"issuer is unknown",
                         "a self-signed cert")
    refused_at_handshake(s, pki, "serveronly", r"purpose",
                         "a cert for servers only")

    # A good certificate gets in; the bearer token decides who it is.
    token = "Bearer " + s.admin_token()
    rc, status, body = curl(s.port, pki, "/v1/principals", cert="a",
                            auth=token)
    check_eq((rc, status), (0, 200), "org A's cert with the bearer: %s"
             % body)
    # Without an Authorization header, an unregistered certificate is
    # nobody: 401, and the problem says what to do.
    rc, status, body = curl(s.port, pki, "/v1/principals", cert="a")
    check_eq(status, 401, "unregistered cert, no credential: %s" % body)
    p = json.loads(body)
    check_eq((p["type"], p["claim"]), ("/problems/malformed", "certificate"),
             "the problem")
    check("names no registered principal" in p["detail"], "detail: %r" % p)
    s.stop()  # a clean exit, and no sanitizer report in its log


@e2e_test(timeout=180)
def test_mtls_organisation_principal_acts_with_owner_rights_and_crl_reload(
        ctx):
    pki = make_mtls_pki(ctx.path("pki"))
    d = pki["dir"]
    crl_path = crl(d, "cur.crl")
    s = start_mtls(ctx, pki, "optional", crl_path)
    port = s.port
    token = "Bearer " + s.admin_token()

    # /metrics has the client CA's not_after.
    rc, status, body = curl(port, pki, "/metrics")
    check(re.search(r'^tpwallet_tls_certificate_not_after_seconds\{role='
                    r'"client_ca",serial="[0-9a-f]+",subject_cn='
                    r'"tpwallet_client_CA"\} \d+$', body, re.M),
          "client_ca in /metrics")

    # Optional mode: a client without a certificate uses the bearer.
    rc, status, body = curl(port, pki, "/v1/principals", auth=token)
    check_eq((rc, status), (0, 200), "no cert, bearer: %s" % body)

    # Org A registered by its key's thumbprint (computed by openssl),
    # org D by its certificate (the server keeps its not_after).
    a_id = spki_sha256(d, "a")
    rc, status, body = curl(port, pki, "/v1/principals", auth=token,
                            body={"spki_sha256": a_id, "name": "org-a"})
    check_eq((status, json.loads(body)), (201, {"id": a_id,
                                                "status": "registered"}),
             "org A registered")
    with open(os.path.join(d, "d.pem")) as f:
        rc, status, body = curl(port, pki, "/v1/principals", auth=token,
                                body={"certificate": f.read(),
                                      "name": "org-d"})
    check_eq(status, 201, "org D registered: %s" % body)
    check_eq(json.loads(body)["id"], spki_sha256(d, "d"), "org D's id")
    rc, status, body = curl(port, pki, "/v1/principals/" + json.loads(
        body)["id"], auth=token)
    got = json.loads(body)
    check_eq((got["type"], got["jwk"], got["name"]), ("x509", None, "org-d"),
             "org D as listed")
    check(got["not_after"].endswith("Z"), "org D's not_after: %r" % got)
    # Neither or both of the forms: refused.
    rc, status, body = curl(port, pki, "/v1/principals", auth=token,
                            body={"spki_sha256": a_id, "certificate": "x"})
    check_eq(status, 400, "two forms at once: %s" % body)
    rc, status, body = curl(port, pki, "/v1/principals", auth=token,
                            body={"certificate": "not a certificate"})
    check_eq((status, json.loads(body)["field"]), (400, "certificate"),
             "a bad certificate: %s" % body)

    # Accounts 1001 (org A's) and 2001 (the administrator's); money in.
    rc, status, body = curl(port, pki, "/v1/accounts?owner=" + a_id,
                            auth=token,
                            body=[{"id": "1001", "ledger": 1, "code": 1}])
    check_eq(status, 200, "org A's account: %s" % body)
    rc, status, body = curl(port, pki, "/v1/accounts", auth=token,
                            body=[{"id": "2001", "ledger": 1, "code": 1}])
    check_eq(status, 200, "the administrator's account: %s" % body)
    rc, status, body = curl(port, pki, "/v1/transfers", auth=token, body=[
        {"id": "1", "debit_account_id": "2001", "credit_account_id": "1001",
         "amount": "100", "ledger": 1, "code": 1}])
    check_eq(json.loads(body)[0]["status"], "created", "funding")

    # Org A, by its certificate alone: its own account, not another's.
    rc, status, body = curl(port, pki, "/v1/accounts/1001", cert="a")
    check_eq((status, json.loads(body)["credits_posted"]), (200, "100"),
             "org A reads its account")
    rc, status, body = curl(port, pki, "/v1/accounts/2001", cert="a")
    check_eq((status, json.loads(body)["type"]),
             (403, "/problems/account-not-allowed"), "another's account")
    rc, status, body = curl(port, pki, "/v1/transfers", cert="a", body=[
        {"id": "2", "debit_account_id": "1001", "credit_account_id": "2001",
         "amount": "10", "ledger": 1, "code": 1}])
    check_eq((status, json.loads(body)[0]["status"]), (200, "created"),
             "org A pays from its account")
    rc, status, body = curl(port, pki, "/v1/transfers", cert="a", body=[
        {"id": "3", "debit_account_id": "2001", "credit_account_id": "1001",
         "amount": "10", "ledger": 1, "code": 1}])
    check_eq((status, json.loads(body)["type"]),
             (403, "/problems/account-not-allowed"),
             "org A cannot debit another's account")
    rc, status, body = curl(port, pki, "/v1/accounts", cert="a",
                            body=[{"id": "3001", "ledger": 1, "code": 1}])
    check_eq((status, json.loads(body)["type"]),
             (403, "/problems/op-not-allowed"), "no accounts:create")
    rc, status, body = curl(port, pki, "/v1/principals", cert="a")
    check_eq((status, json.loads(body)["type"]),
             (403, "/problems/op-not-allowed"), "no principals:read")
    # An Authorization header takes precedence over the certificate.
    rc, status, body = curl(port, pki, "/v1/accounts/1001", cert="a",
                            auth="Bearer tpw_admin_wrong")
    check_eq((status, json.loads(body)["type"]),
             (401, "/problems/bad-signature"), "a bad header is not "
             "rescued by the certificate")
    # The decoded audit view names both registrations (bounded wait for
    # the audit tree to hold them).
    found = {}
    for _ in range(100):
        for i in range(12):
            rc, status, body = curl(port, pki, "/v1/audit/entries/%d?view="
                                    "decoded" % i, auth=token)
            if status != 200:
                break
            dv = json.loads(body)["decoded"]
            if dv.get("command") == "principal_x509":
                found[dv["fields"]["name"]] = dv
        if len(found) == 2:
            break
        time.sleep(0.1)
    check_eq(sorted(found), ["org-a", "org-d"], "kind 24 in the audit view")
    check_eq(found["org-a"]["summary"],
             'organisation principal "org-a" registered (certificate key '
             '%s)' % a_id, "org A's entry")
    check_eq((found["org-a"]["fields"]["spki_sha256"],
              found["org-a"]["fields"]["not_after"]), (a_id, "0"),
             "by thumbprint: no date")
    check(int(found["org-d"]["fields"]["not_after"]) > time.time(),
          "org D's not_after: %r" % found["org-d"])

    # doctor lists org D's certificate (registered with it: 10 days
    # left), not org A's (registered by thumbprint: its date unknown).
    r = run_cli(["doctor", "--data", s.data_dir],
                env={"TPWALLET_TLS_CLIENT_CA_FILE": pki["ca.pem"],
                     "TPWALLET_TLS_CRL_FILE": crl_path})
    rows = expiry_lines(r.stdout)
    crls = [x for x in rows if x[1] == "tls CRL"]
    check_eq(len(crls), 1, "the CRL's line: %r" % r.stdout)
    check_eq(crls[0][0], "ok", "a CRL good for 7 days")
    check(crls[0][2].startswith("in 7 days: %s: nextUpdate " % crl_path),
          "the CRL: %r" % crls[0][2])
    cas = [x for x in rows if x[1] == "tls client CA"]
    check_eq(len(cas), 1, "the client CA's line: %r" % r.stdout)
    check("%s (serial " % pki["ca.pem"] in cas[0][2] and
          "expires within 30 days" in cas[0][2], "the CA: %r" % cas[0][2])
    orgs = [x for x in rows if x[1] == "organisation certificate"]
    check_eq(len(orgs), 1, "one organisation line: %r" % r.stdout)
    check_eq(orgs[0][0], "warn", "within 14 days: warn")
    check(orgs[0][2].startswith("in 10 days: org-d (principal %s) expires "
                                "within 14 days, at " % spki_sha256(d, "d")),
          "org D's line: %r" % orgs[0][2])

    # Org D owns none of these accounts.
    rc, status, body = curl(port, pki, "/v1/accounts/1001", cert="d")
    check_eq((status, json.loads(body)["type"]),
             (403, "/problems/account-not-allowed"), "org D: not its account")
    # The administrator cuts org D off (docs/authz.md, "Organisations"):
    # an issuer-wide revocation, and its certificate no longer
    # authenticates it, on a new connection; org A is untouched.
    d_id = spki_sha256(d, "d")
    rc, status, body = curl(port, pki, "/v1/revocations", auth=token,
                            body={"iss": d_id, "all": True})
    check_eq(status, 201, "org D revoked: %s" % body)
    rc, status, body = curl(port, pki, "/v1/accounts/1001", cert="d")
    check_eq((status, json.loads(body)["type"]),
             (401, "/problems/revoked"), "org D after its revocation")
    rc, status, body = curl(port, pki, "/v1/accounts/1001", cert="a")
    check_eq(status, 200, "org A is not revoked")

    # The CRL revokes org A's certificate: after SIGHUP new connections
    # with it are refused at the handshake; org D still gets in.
    since = s._log_size()
    new_crl = crl(d, "next.crl", revoke=("a",))
    os.replace(new_crl, crl_path)
    s.proc.send_signal(signal.SIGHUP)
    check(s.wait_log(r'"msg":"TLS client CAs reloaded".*"crls":1',
                     since=since), "CRL reloaded: %s" % s.log_text()[-800:])
    refused_at_handshake(s, pki, "a", r"revoked", "org A after the CRL")
    rc, status, body = curl(port, pki, "/v1/accounts/1001", cert="d")
    check_eq(status, 401, "org D still connects (and is still revoked)")
    # A CRL the client CA did not sign is refused; the last one stays.
    since = s._log_size()
    with open(crl_path, "w") as f:
        f.write("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    s.proc.send_signal(signal.SIGHUP)
    check(s.wait_log(r'"msg":"TLS client CA reload refused: the current CAs '
                     r'and CRLs stay"', since=since), "bad CRL refused")
    refused_at_handshake(s, pki, "a", r"revoked", "org A still revoked")
    # A CRL past its nextUpdate is refused at reload, and said so.
    _openssl(d, "ca", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile",
             "ca.key", "-gencrl", "-crlsec", "1", "-out", "stale.crl")
    time.sleep(2.2)  # past its nextUpdate
    os.replace(os.path.join(d, "stale.crl"), crl_path)
    since = s._log_size()
    s.proc.send_signal(signal.SIGHUP)
    check(s.wait_log(r'"msg":"TLS client CA reload refused: the current CAs '
                     r'and CRLs stay","reason":"tls_crl_file [^"]*: a CRL '
                     r'is past its nextUpdate', since=since),
          "stale CRL refused: %s" % s.log_text()[-600:])
    refused_at_handshake(s, pki, "a", r"revoked", "org A still revoked")
    s.stop()


def issue_bound(s, d, out):
    """The administrator's link to org A's certificate (accounts:read on
    2001), with the CLI; its text."""
    r = run_cli(["delegate", "issue", "--key",
                 os.path.join(s.data_dir, "admin.jwk"), "--to-cert",
                 os.path.join(d, "a.pem"), "--op", "accounts:read",
                 "--account", "2001", "--expires", "1h", "--out", out])
    check_eq(r.returncode, 0, "issue --to-cert: %s" % r.stderr)
    with open(out) as f:
        return f.read().strip()


@e2e_test(timeout=180)
def test_mtls_certificate_bound_mandate_only_on_its_certificate(ctx):
    pki = make_mtls_pki(ctx.path("pki"))
    d = pki["dir"]
    s = start_mtls(ctx, pki, "optional")
    port = s.port
    token = "Bearer " + s.admin_token()
    rc, status, body = curl(port, pki, "/v1/accounts", auth=token,
                            body=[{"id": "2001", "ledger": 1, "code": 1},
                                  {"id": "2002", "ledger": 1, "code": 1}])
    check_eq(status, 200, "accounts: %s" % body)

    chain = ctx.path("bound.chain")
    text = issue_bound(s, d, chain)
    # cnf is RFC 8705's x5t#S256: base64url SHA-256 of the DER.
    der = subprocess.run(["openssl", "x509", "-in", os.path.join(d, "a.pem"),
                          "-outform", "DER"], capture_output=True,
                         timeout=30).stdout
    payload = text.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(
        payload) % 4)))
    want = base64.urlsafe_b64encode(hashlib.sha256(der).digest()) \
        .decode().rstrip("=")
    check_eq((claims["cnf"], claims["sub"]), ({"x5t#S256": want}, want),
             "the link's cnf and sub")

    bearer = "Bearer " + text
    rc, status, body = curl(port, pki, "/v1/accounts/2001", cert="a",
                            auth=bearer)
    check_eq(status, 200, "on its certificate: %s" % body)
    # Keep-alive: two requests on one connection, both accepted.
    rc, status, body = curl(port, pki, "/v1/accounts/2001", cert="a",
                            auth=bearer,
                            extra=["https://127.0.0.1:%d/v1/accounts/2001"
                                   % port])
    check_eq(rc, 0, "two requests on one connection")
    # On one keep-alive connection the chain is verified once, then only
    # what can change is looked at again: a revocation between two
    # requests is seen by the second.
    ctxt = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctxt.load_verify_locations(pki["ca.pem"])
    ctxt.load_cert_chain(os.path.join(d, "a.pem"), os.path.join(d, "a.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                       context=ctxt)
    for _ in range(3):
        conn.request("GET", "/v1/accounts/2001",
                     headers={"Authorization": bearer})
        r = conn.getresponse()
        check_eq(r.status, 200, "keep-alive: %s" % r.read())
        r.read()
    rc, status, body = curl(port, pki, "/v1/revocations", auth=token,
                            body={"iss": claims["iss"],
                                  "jti": claims["jti"]})
    check_eq(status, 201, "revoked: %s" % body)
    conn.request("GET", "/v1/accounts/2001",
                 headers={"Authorization": bearer})
    r = conn.getresponse()
    p = json.loads(r.read())
    check_eq((r.status, p["type"]), (401, "/problems/revoked"),
             "the same connection after the revocation")
    conn.close()
    # A new chain, not revoked, for what follows.
    bearer = "Bearer " + issue_bound(s, d, chain)
    rc, status, body = curl(port, pki, "/v1/accounts/2002", cert="a",
                            auth=bearer)
    check_eq((status, json.loads(body)["type"]),
             (403, "/problems/account-not-allowed"), "outside its right")
    for cert, detail in (("d", "bound to another client certificate"),
                         (None, "this connection has none")):
        rc, status, body = curl(port, pki, "/v1/accounts/2001", cert=cert,
                                auth=bearer)
        p = json.loads(body)
        check_eq((status, p["type"], p["claim"]),
                 (401, "/problems/dpop-wrong-key", "cnf.x5t#S256"),
                 "on %s: %s" % (cert or "no certificate", body))
        check(detail in p["detail"], "detail: %r" % p)
    # The CLI: --mandate with a client certificate sends it as a bearer.
    url = "https://127.0.0.1:%d" % port
    cli = ["call", "--server", url, "--cacert", pki["ca.pem"], "--cert",
           os.path.join(d, "a.pem"), "--cert-key", os.path.join(d, "a.key")]
    r = run_cli(cli + ["--mandate", chain, "GET", "/v1/accounts/2001"])
    check_eq((r.returncode, json.loads(r.stdout)["id"]), (0, "2001"),
             "tpwallet call --cert --mandate: %s" % r.stderr)
    r = run_cli(cli + ["--mandate", chain, "GET", "/v1/accounts/2002"])
    check_eq(r.returncode, 1, "outside the right: %s" % r.stderr)
    check("account-not-allowed" in r.stderr + r.stdout, "the refusal: %r"
          % ((r.stdout, r.stderr),))
    r = run_cli(cli[:-2] + ["--mandate", chain, "GET", "/v1/accounts/2001"])
    check_eq(r.returncode, 2, "--cert without --cert-key: %s" % r.stderr)
    check("--cert and --cert-key go together" in r.stderr, r.stderr)

    # Sent as DPoP, it has no proof to check: dpop-missing.
    rc, status, body = curl(port, pki, "/v1/accounts/2001", cert="a",
                            auth="DPoP" + bearer[6:])
    check_eq((status, json.loads(body)["type"]),
             (401, "/problems/dpop-missing"), "as DPoP")
    # A key-bound mandate sent as a bearer needs its DPoP proof.
    jwk = ctx.path("k.jwk")
    r = run_cli(["principal", "create", "--name", "k", "--key-out", jwk,
                 "--no-register"])
    check_eq(r.returncode, 0, "a key: %s" % r.stderr)
    keyed = ctx.path("keyed.chain")
    r = run_cli(["delegate", "issue", "--key",
                 os.path.join(s.data_dir, "admin.jwk"), "--to", jwk,
                 "--op", "accounts:read", "--account", "2001", "--expires",
                 "1h", "--out", keyed])
    check_eq(r.returncode, 0, "issue --to: %s" % r.stderr)
    with open(keyed) as f:
        rc, status, body = curl(port, pki, "/v1/accounts/2001", cert="a",
                                auth="Bearer " + f.read().strip())
    p = json.loads(body)
    check_eq((status, p["type"], p["claim"]),
             (401, "/problems/dpop-missing", "cnf.jwk"), "key-bound as bearer")
    # A link below a certificate-bound one: chain-broken (no key).
    r = run_cli(["delegate", "issue", "--key", jwk, "--to", jwk, "--op",
                 "accounts:read", "--account", "2001", "--parent", chain,
                 "--out", ctx.path("below.chain")])
    check(r.returncode != 0, "the CLI refuses to extend a certificate-"
          "bound link: %s" % r.stderr)
    s.stop()
