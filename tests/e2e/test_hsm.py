"""test_hsm.py - the key-encryption key in a PKCS#11 token (issue 19),
against SoftHSM2 initialised by each test in its own directory
(SOFTHSM2_CONF pointing to a config there).

The server starts with its KEK in the token (the key made by `tpwallet
init` when absent, sensitive and not extractable), seals its signing
keys there (key file format version 2), rotates, restarts, and what it
signs verifies with the existing verifiers (`tpwallet audit
verify-inclusion` for a checkpoint, npm jose for a manifest).  A wrong
PIN or a missing token is a clear error at start that names the
setting and never the PIN.  A token that refuses or stalls mid-run (a
thin PKCS#11 module in front of SoftHSM, tests/e2e/p11shim.c) makes the
signing routes answer 503 key-store-unavailable with Retry-After, and
they recover when the token answers again.  `tpwallet keys migrate`
moves the keys to a file KEK and back with the same public keys.

With `signing_pkcs11 = 1` the signing keys are generated in the token
and sign there (key file format version 3: the CKA_ID, no private
byte): the same verifiers accept what they sign, rotation and the
overlap work as before, a token that refuses or stalls C_Sign gives the
same 503s, and a token without EdDSA, a key gone from the token or the
setting without a token are clear errors at start.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import time

import harness
from harness import (e2e_test, check, check_eq, run_cli, build_shim,
                     slow_factor)
from ledger import account, transfer, create
import test_audit_cli as tac
import test_client_policy as tcp

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "tpw-test"
KEY_LABEL = "tpwallet-kek"
# Test PINs: never printed by the server, the shim or these tests.
USER_PIN = "81726354"
SO_PIN = "19283746"


def softhsm(ctx):
    """A fresh SoftHSM2 token in ctx's directory; the environment that
    reaches it."""
    tokens = ctx.path("softhsm-tokens")
    os.makedirs(tokens, exist_ok=True)
    conf = ctx.path("softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                "log.level = ERROR\n" % tokens)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    util = shutil.which("softhsm2-util")
    check(util, "softhsm2-util is missing (scripts/deps.sh installs "
          "softhsm2)")
    r = subprocess.run([util, "--init-token", "--free", "--label", TOKEN,
                        "--pin", USER_PIN, "--so-pin", SO_PIN],
                       env=env, capture_output=True, text=True,
                       timeout=30 * slow_factor())
    check_eq(r.returncode, 0, "softhsm2-util --init-token: %s" % r.stderr)
    return {"SOFTHSM2_CONF": conf}


# SoftHSM's own leaks (under ASan): tests/e2e/softhsm.lsan.supp.
LSAN_SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "softhsm.lsan.supp")


def token_env(hsm, module=SOFTHSM_MODULE, pin=USER_PIN, **more):
    lsan = os.environ.get("LSAN_OPTIONS", "")
    env = dict(hsm, TPWALLET_KEK_PKCS11_MODULE=module,
               TPWALLET_KEK_PKCS11_TOKEN=TOKEN,
               TPWALLET_KEK_PKCS11_KEY_LABEL=KEY_LABEL,
               TPWALLET_KEK_PKCS11_PIN=pin,
               LSAN_OPTIONS=(lsan + ":" if lsan else "") +
               "suppressions=" + LSAN_SUPPRESSIONS)
    env.update(more)
    return env


def init_with_token(ctx, **more):
    """A token, and `tpwallet init` of ctx/data with its KEK in it (the
    key made by init): (the token's environment, the data directory)."""
    hsm = softhsm(ctx)
    data = ctx.path("data")
    r = run_cli(["init", "--data", data], env=token_env(hsm, **more))
    check_eq(r.returncode, 0, "init with a token KEK: %s" % r.stderr)
    return hsm, data


def key_files(data):
    d = os.path.join(data, "keys")
    return sorted(os.path.join(d, n) for n in os.listdir(d)
                  if n.endswith(".key"))


def file_versions(data):
    out = set()
    for p in key_files(data):
        with open(p, "rb") as f:
            b = f.read()
        out.add(b[6] << 8 | b[7])
    return out


def kek_ids(data):
    """The KEK id each key file names (bytes 128..144)."""
    out = set()
    for p in key_files(data):
        with open(p, "rb") as f:
            out.add(f.read()[128:144].hex())
    return out


def jwks_kids(s):
    r = s.get("/.well-known/jwks.json")
    check_eq(r.status, 200, "JWKS")
    return sorted(k["kid"] for k in r.json()["keys"])


def checkpoint_verifies(ctx, s, tid):
    """A transfer, a checkpoint over it, and its receipt verified by
    `tpwallet audit verify-inclusion` with the key of GET
    /v1/audit/key."""
    create(s, "transfers", [transfer(tid, 1, 2, 3)])
    # The receipt answers 503 until a signed checkpoint covers the entry.
    deadline = time.monotonic() + 15 * slow_factor()
    while True:
        r = s.get("/v1/transfers/%d/receipt" % tid)
        if r.status == 200:
            break
        check(r.status == 503 and time.monotonic() < deadline,
              "receipt of transfer %d: %r" % (tid, r))
        time.sleep(0.1)
    rc = r.json()
    good = tac.write(ctx.path("receipt-%d.json" % tid), json.dumps(rc))
    key = tac.verifier_key(s)
    r = tac.audit(ctx, "verify-inclusion", "--receipt", good, "--key", key)
    check_eq(r.returncode, 0, "verify-inclusion of transfer %d: %s"
             % (tid, r.stdout + r.stderr))


def no_pin_anywhere(ctx, *texts):
    for t in texts:
        check(USER_PIN not in t and SO_PIN not in t,
              "a PIN appears in the output or a log")
    for name in os.listdir(ctx.dir):
        if name.endswith(".log"):
            with open(ctx.path(name), "rb") as f:
                data = f.read()
            check(USER_PIN.encode() not in data and
                  SO_PIN.encode() not in data,
                  "a PIN appears in %s" % name)


@e2e_test(timeout=240)
def test_hsm_token_kek_signs_rotates_restarts_and_verifies(ctx):
    hsm, data = init_with_token(ctx)
    check(not os.path.exists(data + ".kek"),
          "a KEK file was made although the KEK is in the token")
    check_eq(file_versions(data), {2}, "key file versions (2: sealed in "
             "the token)")
    s = ctx.start_server(data_dir=data, env=token_env(hsm))
    create(s, "accounts", [account(1), account(2)])
    checkpoint_verifies(ctx, s, 10)
    kids0 = jwks_kids(s)
    r = s.post("/v1/keys/rotate", None)
    check_eq(r.status, 200, "rotation: %r" % r)
    kid1 = r.json()["kid"]
    check(kid1 not in kids0, "the rotation made no new key")
    check_eq(file_versions(data), {2}, "key file versions after rotation")
    # The manifest, signed by the new key, verifies with npm jose.
    s.require_admin_token()
    doc, _, _ = tcp.base_policy()
    check_eq(tcp.put_policy(s, doc, "v1").status, 201, "PUT policy")
    base = "http://127.0.0.1:%d" % s.port
    path = "/v1/client-policy?platform=android&version=4.5.0&user=u1"
    m = tcp.policy_js({"op": "manifest", "base": base, "path": path,
                       "authorization": s.admin_authorization()})
    check_eq(m["header"].get("kid"), kid1, "manifest kid")
    check(all(t["rejected"] for t in m["tampered"]),
          "jose accepted a tampered manifest: %r" % m["tampered"])
    m_text = s.get("/metrics").body.decode()
    check("tpwallet_hsm_up 1" in m_text, "tpwallet_hsm_up is not 1")
    check('tpwallet_hsm_operation_duration_seconds_count{op="unwrap"}'
          in m_text, "no unwrap latency histogram")
    s.stop()
    s2 = ctx.start_server(data_dir=data, env=token_env(hsm))
    check_eq(jwks_kids(s2), sorted(kids0 + [kid1]), "JWKS after restart")
    checkpoint_verifies(ctx, s2, 11)
    v = tcp.policy_js({"op": "verify", "base": base.replace(
        str(s.port), str(s2.port)), "token": m["token"]})
    check(v["ok"], "the manifest no longer verifies after the restart: %r"
          % v.get("error"))
    s2.stop()
    # doctor names the token, its module and key, says it answers, and
    # where the signing keys live.
    r = run_cli(["doctor", "--data", data], env=token_env(hsm))
    line = [x for x in r.stdout.splitlines()
            if "key-encryption key:" in x]
    check(line and line[0].startswith("ok") and
          ("in token '%s' (module %s), key '%s' version 1, reachable"
           % (TOKEN, SOFTHSM_MODULE, KEY_LABEL)) in line[0] and
          "CKM_AES_GCM yes" in line[0],
          "doctor's KEK line: %r" % (line or r.stdout[-800:]))
    check("signing keys' home: sealed in DATA/keys by the token's KEK"
          in r.stdout, "doctor does not say where the keys live: %s"
          % r.stdout[-800:])
    r = run_cli(["doctor", "--data", data],
                env=token_env(hsm, pin="00000000"))
    check("action  key-encryption key: in a PKCS#11 token, not reachable: "
          "token '%s' refuses the PIN" % TOKEN in r.stdout,
          "doctor with a wrong PIN: %s" % r.stdout[-800:])
    no_pin_anywhere(ctx, r.stdout, r.stderr)


@e2e_test(timeout=120)
def test_hsm_wrong_pin_or_token_is_a_clear_start_error_without_the_pin(ctx):
    hsm, data = init_with_token(ctx)
    cases = [
        ("wrong PIN", token_env(hsm, pin="00000000"),
         "refuses the PIN (from TPWALLET_KEK_PKCS11_PIN)"),
        ("no such token", token_env(hsm, TPWALLET_KEK_PKCS11_TOKEN="nope"),
         "kek_pkcs11_token: no token labelled 'nope'"),
        ("no such key", token_env(hsm,
                                  TPWALLET_KEK_PKCS11_KEY_LABEL="other"),
         "kek_pkcs11_key_label: no secret key labelled 'other'"),
        ("no module", token_env(hsm, module=ctx.path("missing.so")),
         "kek_pkcs11_module %s cannot be loaded" % ctx.path("missing.so")),
    ]
    for name, env, words in cases:
        s = ctx.server(data_dir=data, env=env)
        served, exited, rc = s.start_expecting_refusal(timeout=20)
        check(served is None, "%s: the server served" % name)
        check(exited and rc != 0, "%s: exit %r" % (name, rc))
        log = s.log_text()
        check(words in log, "%s: the log does not say %r: %s"
              % (name, words, log[-600:]))
    # A PIN file must be the server's own, 0600: a wider one is refused
    # naming the setting; a good one works.
    pin_file = ctx.path("pin")
    with open(pin_file, "w") as f:
        f.write(USER_PIN + "\n")
    os.chmod(pin_file, 0o644)
    env = token_env(hsm, TPWALLET_KEK_PKCS11_PIN_FILE=pin_file)
    del env["TPWALLET_KEK_PKCS11_PIN"]
    s = ctx.server(data_dir=data, env=env)
    served, exited, rc = s.start_expecting_refusal(timeout=20)
    check(served is None and exited, "a 0644 PIN file was accepted")
    check("kek_pkcs11_pin_file %s has mode 0644" % pin_file in s.log_text(),
          "the refusal does not name the PIN file's mode")
    os.chmod(pin_file, 0o600)
    s = ctx.start_server(data_dir=data, env=env)
    check_eq(s.get("/v1/revocations").status, 200, "signed with a PIN file")
    s.stop()
    no_pin_anywhere(ctx)


def problem_503(r, what):
    check_eq(r.status, 503, "%s: %r" % (what, r))
    check(r.header("retry-after"), "%s: no Retry-After" % what)
    doc = r.json()
    check_eq(doc.get("type"), "/problems/key-store-unavailable",
             "%s: problem type" % what)


def refuse_stall_recover(s, flags, cp0, op):
    """Through the shim's flags: a token refusing, then stalling, gives
    503s with Retry-After on the signing routes, publishes no checkpoint
    unsigned, and recovers; the failed calls count under op."""
    fail = os.path.join(flags, "fail")
    open(fail, "w").close()
    problem_503(s.get("/v1/revocations"), "revocation list, token refusing")
    problem_503(s.post("/v1/keys/rotate", None), "rotation, token refusing")
    # Entries still commit; no checkpoint is published unsigned: the
    # checkpoint served stays a signed one, over the old size.
    since = s._log_size()
    create(s, "transfers", [transfer(20, 1, 2, 1)])
    check(s.wait_log("cannot sign a checkpoint", timeout=10, since=since),
          "the audit thread did not try (and fail) to sign")
    r = s.get("/v1/audit/checkpoint")
    check_eq(r.status, 200, "checkpoint while refusing")
    check_eq(r.body.decode(), cp0, "a checkpoint was published while the "
             "token refused")
    os.unlink(fail)
    check_eq(s.get("/v1/revocations").status, 200, "after the refusal")
    tac.wait_checkpoint(s, 3)

    stall = os.path.join(flags, "stall")
    open(stall, "w").close()
    t0 = time.monotonic()
    problem_503(s.get("/v1/revocations"), "revocation list, token stalled")
    check(time.monotonic() - t0 < 5 * slow_factor(),
          "the stalled call was not bounded by its deadline")
    # While the stuck call has not returned, the next fails at once.
    t0 = time.monotonic()
    problem_503(s.get("/v1/revocations"), "second call, token stalled")
    check(time.monotonic() - t0 < 2 * slow_factor(),
          "a call behind a stuck one waited")
    check_eq(s.get("/healthz").status, 200, "health while stalled")
    m = s.get("/metrics").body.decode()
    check("tpwallet_hsm_up 0" in m, "tpwallet_hsm_up is not 0 while stalled")
    os.unlink(stall)
    deadline = time.monotonic() + 10 * slow_factor()
    while True:
        r = s.get("/v1/revocations")
        if r.status == 200:
            break
        check(time.monotonic() < deadline, "no recovery after the stall: "
              "%r" % r)
        time.sleep(0.1)
    m = s.get("/metrics").body.decode()
    check("tpwallet_hsm_up 1" in m, "tpwallet_hsm_up is not 1 again")
    errs = [ln for ln in m.splitlines()
            if ln.startswith('tpwallet_hsm_errors_total{op="%s"}' % op)]
    check(errs and int(errs[0].split()[-1]) >= 4,
          "%s errors not counted: %r" % (op, errs))


def shim_token(ctx, **more):
    """A token behind tests/e2e/p11shim.c: (the token's environment, the
    shim's flag directory, the server's environment with more)."""
    hsm = softhsm(ctx)
    shim = build_shim(ctx, "p11shim.c",
                      cflags=["-I/usr/include/p11-kit-1"])
    flags = ctx.path("shim-flags")
    os.makedirs(flags)
    return hsm, flags, token_env(hsm, module=shim,
                                 TPW_P11SHIM_MODULE=SOFTHSM_MODULE,
                                 TPW_P11SHIM_DIR=flags, **more)


def serve_through_refusal_and_stall(ctx, op, versions, **more):
    """A server on a token behind the shim (key files of versions), then
    refuse_stall_recover with op."""
    _, flags, env = shim_token(ctx, TPWALLET_KEK_PKCS11_TIMEOUT_MS="500",
                               **more)
    s = ctx.start_server(env=env)
    check_eq(file_versions(s.data_dir), versions, "key file versions")
    check_eq(s.get("/v1/revocations").status, 200, "signed list, token up")
    create(s, "accounts", [account(1), account(2)])
    cp0 = tac.wait_checkpoint(s, 1)[0]
    refuse_stall_recover(s, flags, cp0, op)
    s.stop()
    no_pin_anywhere(ctx)


@e2e_test(timeout=240)
def test_hsm_token_that_refuses_or_stalls_gives_503_and_recovers(ctx):
    serve_through_refusal_and_stall(ctx, "unwrap", {2})


def migrate(data, to, env):
    r = run_cli(["keys", "migrate", "--to", to, "--data", data], env=env,
                timeout=60)
    check_eq(r.returncode, 0, "keys migrate --to %s: %s"
             % (to, r.stdout + r.stderr))
    return r.stdout


@e2e_test(timeout=240)
def test_hsm_migrate_to_a_file_kek_and_back_keeps_the_public_keys(ctx):
    hsm = softhsm(ctx)
    data = ctx.path("data")
    tenv = token_env(hsm)
    s = ctx.start_server(data_dir=data, env=tenv)
    check_eq(s.post("/v1/keys/rotate", None).status, 200, "rotation")
    kids = jwks_kids(s)
    check_eq(len(kids), 2, "keys before migration")
    # Not while the server runs.
    r = run_cli(["keys", "migrate", "--to", "file", "--data", data],
                env=tenv)
    check(r.returncode != 0 and "stop the server" in r.stderr,
          "migrate ran beside a running server: %s" % r.stderr)
    s.stop()
    out = migrate(data, "file", tenv)
    check_eq(out.count("rewrapped "), 2, "progress lines: %s" % out)
    check(os.path.exists(data + ".kek"), "no file KEK made")
    check_eq(file_versions(data), {1}, "versions after --to file")
    fenv = dict(hsm)
    s = ctx.start_server(data_dir=data, env=fenv)
    check_eq(jwks_kids(s), kids, "JWKS with the file KEK")
    check_eq(s.get("/v1/revocations").status, 200, "signs with a file KEK")
    s.stop()
    # And back: a second run finds nothing to do.
    out = migrate(data, "pkcs11", tenv)
    check_eq(out.count("rewrapped "), 2, "progress lines: %s" % out)
    check_eq(file_versions(data), {2}, "versions after --to pkcs11")
    out = migrate(data, "pkcs11", tenv)
    check_eq(out.count("rewrapped "), 0, "a second run rewrapped: %s" % out)
    check("already" in out, "a second run does not say so: %s" % out)
    with open(os.path.join(data, "keys", "kek-history")) as f:
        hist = f.read().splitlines()
    check_eq([json.loads(h)["to"] for h in hist], ["file", "pkcs11"],
             "kek-history")
    s = ctx.start_server(data_dir=data, env=tenv)
    check_eq(jwks_kids(s), kids, "JWKS back in the token")
    create(s, "accounts", [account(1), account(2)])
    checkpoint_verifies(ctx, s, 30)
    s.stop()
    no_pin_anywhere(ctx)



def kek_rotation_while_serving(ctx, version, **more):
    """The KEK's rotation inside the token re-seals every key file (of
    format version) while the server signs, and survives a restart."""
    hsm, data = init_with_token(ctx, **more)
    env = token_env(hsm, **more)
    s = ctx.start_server(data_dir=data, env=env)
    check_eq(s.post("/v1/keys/rotate", None).status, 200, "rotation")
    kids = jwks_kids(s)
    old = kek_ids(data)
    check_eq(len(old), 1, "KEK ids before: %r" % old)
    r = run_cli(["keys", "init-hsm", "--new-version"], env=env)
    check_eq(r.returncode, 0, "init-hsm --new-version: %s" % r.stderr)
    check("version 2, ready" in r.stdout, "init-hsm says: %s" % r.stdout)
    # Until the server looks, the keys stay under version 1 and it signs.
    check_eq(s.get("/v1/revocations").status, 200, "signing before")
    since = s._log_size()
    s.proc.send_signal(signal.SIGHUP)
    check(s.wait_log("key-encryption key rotated in the token",
                     timeout=15, since=since),
          "the server did not re-seal the keys after SIGHUP")
    new = kek_ids(data)
    check(len(new) == 1 and not new & old,
          "KEK ids after the rotation: %r (before %r)" % (new, old))
    check_eq(file_versions(data), {version}, "key file versions")
    check_eq(s.get("/v1/revocations").status, 200, "signing after")
    check_eq(s.post("/v1/keys/rotate", None).status, 200,
             "rotation after")
    check_eq(kek_ids(data), new, "a new key sealed by the old version")
    kids = jwks_kids(s)
    s.stop()
    s = ctx.start_server(data_dir=data, env=env)
    check_eq(jwks_kids(s), kids, "JWKS after restart")
    check_eq(s.get("/v1/revocations").status, 200, "signing after restart")
    s.stop()
    no_pin_anywhere(ctx)


@e2e_test(timeout=180)
def test_hsm_kek_rotation_in_the_token_reseals_every_key_while_serving(ctx):
    kek_rotation_while_serving(ctx, 2)


@e2e_test(timeout=180)
def test_hsm_kek_rotation_reseals_keys_made_in_the_token_too(ctx):
    kek_rotation_while_serving(ctx, 3, TPWALLET_SIGNING_PKCS11="1")


# ---- signing inside the token (signing_pkcs11 = 1) ---------------------

def p11objects(ctx, hsm, *args):
    """tests/e2e/p11objects.c (built once per test) against the token:
    its output lines."""
    tool = ctx.path("p11objects")
    if not os.path.exists(tool):
        here = os.path.dirname(os.path.abspath(__file__))
        cc = shutil.which("cc") or shutil.which("gcc")
        check(cc, "no C compiler for p11objects.c")
        subprocess.run([cc, "-O1", "-I/usr/include/p11-kit-1", "-o", tool,
                        os.path.join(here, "p11objects.c"), "-ldl"],
                       check=True)
    r = subprocess.run([tool, SOFTHSM_MODULE, TOKEN] + list(args),
                       env=dict(os.environ, TPW_P11_PIN=USER_PIN, **hsm),
                       capture_output=True, text=True,
                       timeout=30 * slow_factor())
    check_eq(r.returncode, 0, "p11objects %s: %s" % (args, r.stderr))
    return r.stdout.splitlines()


def token_keys(ctx, hsm, kind="private"):
    """The token's Ed25519 keys of kind (private or public): {label:
    (CKA_ID hex, sensitive, extractable, token[, point])}."""
    out = {}
    for ln in p11objects(ctx, hsm, "list"):
        f = ln.split()
        if f[0] == kind and len(f[1]) == 43:
            out[f[1]] = tuple(f[2:])
    return out


def check_key_files_in_token(ctx, hsm, data, kids):
    """Every key file is format version 3, names by its CKA_ID a
    sensitive, non-extractable key pair labelled with its kid in the
    token, and holds no other secret: after the clear metadata, the
    CKA_ID and zeros, then the IV, the sealed CKA_ID and its tag."""
    tok = token_keys(ctx, hsm)
    for kid in kids:
        with open(os.path.join(data, "keys", kid + ".key"), "rb") as f:
            b = f.read()
        check_eq(len(b), 248, "size of %s.key" % kid)
        check_eq(b[6] << 8 | b[7], 3, "format version of %s" % kid)
        check(kid in tok, "no private key labelled %s in the token: %r"
              % (kid, sorted(tok)))
        check_eq(tok[kid], (b[144:160].hex(), "sensitive=1",
                            "extractable=0", "token=1"),
                 "the token's key %s against its file" % kid)
        check_eq(b[160:176], bytes(16), "bytes after the CKA_ID of %s"
                 % kid)
        check_eq(b[188:200], bytes(12), "bytes after the IV of %s" % kid)


def jwks_x(s):
    r = s.get("/.well-known/jwks.json")
    check_eq(r.status, 200, "JWKS")
    return {k["kid"]: k["x"] for k in r.json()["keys"]}


def manifest_by(s):
    s.require_admin_token()
    base = "http://127.0.0.1:%d" % s.port
    path = "/v1/client-policy?platform=android&version=4.5.0&user=u1"
    return tcp.policy_js({"op": "manifest", "base": base, "path": path,
                          "authorization": s.admin_authorization()})


@e2e_test(timeout=300)
def test_hsm_signing_in_the_token_signs_rotates_restarts_and_verifies(ctx):
    hsm, data = init_with_token(ctx, TPWALLET_SIGNING_PKCS11="1")
    env = token_env(hsm, TPWALLET_SIGNING_PKCS11="1")
    kid0 = [os.path.basename(p)[:-4] for p in key_files(data)]
    check_eq(len(kid0), 1, "keys after init")
    kid0 = kid0[0]
    check_key_files_in_token(ctx, hsm, data, [kid0])
    s = ctx.start_server(data_dir=data, env=env)
    # The JWKS publishes the token's public key (its CKA_EC_POINT: on
    # SoftHSM 2.6.1 the DER OCTET STRING 04 20 and the 32 bytes), the one
    # the file records.
    with open(key_files(data)[0], "rb") as f:
        pub = f.read()[48:80]
    check_eq(token_keys(ctx, hsm, "public")[kid0][-1],
             "point=0420" + pub.hex(), "the token's public key")
    x = base64.urlsafe_b64encode(pub).decode().rstrip("=")
    check_eq(jwks_x(s), {kid0: x}, "JWKS before rotation")
    create(s, "accounts", [account(1), account(2)])
    checkpoint_verifies(ctx, s, 10)
    doc, _, _ = tcp.base_policy()
    check_eq(tcp.put_policy(s, doc, "v1").status, 201, "PUT policy")
    m0 = manifest_by(s)
    check_eq(m0["header"].get("kid"), kid0, "manifest kid before rotation")
    check(all(t["rejected"] for t in m0["tampered"]),
          "jose accepted a tampered manifest: %r" % m0["tampered"])
    # A rotation generates the next pair in the token.
    r = s.post("/v1/keys/rotate", None)
    check_eq(r.status, 200, "rotation: %r" % r)
    kid1 = r.json()["kid"]
    check(kid1 != kid0, "the rotation made no new key")
    check_key_files_in_token(ctx, hsm, data, [kid0, kid1])
    m1 = manifest_by(s)
    check_eq(m1["header"].get("kid"), kid1, "manifest kid after rotation")
    checkpoint_verifies(ctx, s, 11)
    # Identical manifest queries within one second share one signature
    # (docs/security.md, the sixth review): 40 requests, at most one
    # C_Sign for each second they span.
    def signs():
        for ln in s.get("/metrics").body.decode().splitlines():
            if ln.startswith('tpwallet_hsm_operation_duration_seconds_count'
                             '{op="sign"}'):
                return int(ln.split()[-1])
        return 0
    path = "/v1/client-policy?platform=android&version=4.5.0&user=u1"
    before, t0 = signs(), time.time()
    bodies = [s.get(path).body for _ in range(40)]
    t1 = time.time()
    check(all(b.count(b".") == 2 for b in bodies), "40 JWS answers")
    spanned = int(t1) - int(t0) + 1
    check(signs() - before <= spanned,
          "40 identical manifests cost %d signatures over %d second(s)"
          % (signs() - before, spanned))
    check(len(set(bodies)) <= spanned, "one manifest per second")
    m_text = s.get("/metrics").body.decode()
    counts = [ln for ln in m_text.splitlines() if ln.startswith(
        'tpwallet_hsm_operation_duration_seconds_count{op="sign"}')]
    check(counts and int(counts[0].split()[-1]) >= 3,
          "signatures in the token not measured: %r" % counts)
    s.stop()
    # After a restart both keys are loaded from the token; the manifest
    # the old key signed verifies in the overlap window.
    s2 = ctx.start_server(data_dir=data, env=env)
    check_eq(sorted(jwks_x(s2)), sorted([kid0, kid1]), "JWKS after restart")
    base2 = "http://127.0.0.1:%d" % s2.port
    for m, kid in ((m0, kid0), (m1, kid1)):
        v = tcp.policy_js({"op": "verify", "base": base2,
                           "token": m["token"]})
        check(v["ok"], "the manifest of %s does not verify after the "
              "restart: %r" % (kid, v.get("error")))
    checkpoint_verifies(ctx, s2, 12)
    s2.stop()
    r = run_cli(["doctor", "--data", data], env=env)
    check("signing keys' home: in the token: 2 of 2 key(s) generated "
          "there (CKM_EC_EDWARDS_KEY_PAIR_GEN, not extractable), the "
          "current one among them" in r.stdout, "doctor does not say the "
          "keys are in the token: %s" % r.stdout[-800:])
    # They cannot be migrated to a file KEK: refused, naming them, and
    # nothing changes.
    before = {p: open(p, "rb").read() for p in key_files(data)}
    r = run_cli(["keys", "migrate", "--to", "file", "--data", data],
                env=env, timeout=60)
    check(r.returncode != 0, "migrate --to file moved keys made in the "
          "token: %s" % r.stdout)
    check("generated in the token (signing_pkcs11) and cannot leave it"
          in r.stderr and kid0 in r.stderr and kid1 in r.stderr,
          "the refusal does not name the keys: %s" % r.stderr)
    check_eq({p: open(p, "rb").read() for p in key_files(data)}, before,
             "key files after the refused migration")
    check(not os.path.exists(data + ".kek"), "the refusal made a file KEK")
    no_pin_anywhere(ctx, r.stdout, r.stderr)


@e2e_test(timeout=240)
def test_hsm_signing_in_the_token_refusing_or_stalling_c_sign_gives_503(ctx):
    serve_through_refusal_and_stall(ctx, "sign", {3},
                                    TPWALLET_SIGNING_PKCS11="1")


@e2e_test(timeout=240)
def test_hsm_signing_in_the_token_start_errors_name_the_cause(ctx):
    # The setting without a token.
    s = ctx.server(env={"TPWALLET_SIGNING_PKCS11": "1"})
    served, exited, rc = s.start_expecting_refusal(timeout=20)
    check(served is None and exited and rc != 0,
          "signing_pkcs11 without a token: served or exit %r" % rc)
    check("signing_pkcs11 = 1 needs a PKCS#11 token: set kek_pkcs11_module"
          in s.log_text(), "the refusal does not say why: %s"
          % s.log_text()[-600:])
    # A token without CKM_EDDSA (the shim hides it): refused, naming the
    # mechanism; without the setting it starts, its keys sealed by the
    # token's KEK.
    hsm, flags, shim_env = shim_token(ctx)
    open(os.path.join(flags, "no-eddsa"), "w").close()
    data = ctx.path("data-no-eddsa")
    s = ctx.server(data_dir=data,
                   env=dict(shim_env, TPWALLET_SIGNING_PKCS11="1"))
    served, exited, rc = s.start_expecting_refusal(timeout=20)
    check(served is None and exited and rc != 0,
          "a token without EdDSA: served or exit %r" % rc)
    check("signing_pkcs11 = 1, but token '%s' does not offer CKM_EDDSA "
          "(C_GetMechanismList)" % TOKEN in s.log_text(),
          "the refusal does not name the mechanism: %s"
          % s.log_text()[-600:])
    # (a start refused at the keys leaves the data directory without
    # its origin: a fresh one for this start)
    data = ctx.path("data-no-eddsa-2")
    s = ctx.start_server(data_dir=data, env=shim_env)
    check_eq(file_versions(data), {2}, "key files without the setting")
    check_eq(s.get("/v1/revocations").status, 200, "signs without EdDSA")
    s.stop()
    # A key deleted from the token: the start names its kid.
    data = ctx.path("data")
    env = token_env(hsm, TPWALLET_SIGNING_PKCS11="1")
    r = run_cli(["init", "--data", data], env=env)
    check_eq(r.returncode, 0, "init: %s" % r.stderr)
    kid = os.path.basename(key_files(data)[0])[:-4]
    check_eq(p11objects(ctx, hsm, "delete", kid), ["deleted 2"],
             "deleting the pair from the token")
    s = ctx.server(data_dir=data, env=env)
    served, exited, rc = s.start_expecting_refusal(timeout=20)
    check(served is None and exited and rc != 0,
          "a key gone from the token: served or exit %r" % rc)
    check(("key %s: the token holds no key pair with its CKA_ID" % kid)
          in s.log_text(), "the start error does not name the kid: %s"
          % s.log_text()[-600:])
    no_pin_anywhere(ctx)


@e2e_test(timeout=120)
def test_hsm_make_run_with_a_settings_file_naming_the_token(ctx):
    """issue 19, Done when: `make run CONFIG=FILE` (scripts/run.sh with
    TPWALLET_CONFIG) with a file that names a SoftHSM token serves, signs
    and rotates with the KEK inside the token."""
    import http.client
    hsm = softhsm(ctx)
    port = harness.free_port()
    data = ctx.path("data-run")
    pin = ctx.path("token.pin")
    with open(pin, "w") as f:
        f.write(USER_PIN + "\n")
    os.chmod(pin, 0o600)
    conf = ctx.path("tpwallet.conf")
    with open(conf, "w") as f:
        f.write("data = %s\nlisten = 127.0.0.1:%d\n"
                "kek_pkcs11_module = %s\nkek_pkcs11_token = %s\n"
                "kek_pkcs11_key_label = %s\nkek_pkcs11_pin_file = %s\n"
                % (data, port, SOFTHSM_MODULE, TOKEN, KEY_LABEL, pin))
    run_sh = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "..", "scripts", "run.sh")
    env = dict(os.environ, TPWALLET_CONFIG=conf, **token_env(hsm))
    for k in ("TPWALLET_KEK_PKCS11_MODULE", "TPWALLET_KEK_PKCS11_TOKEN",
              "TPWALLET_KEK_PKCS11_KEY_LABEL", "TPWALLET_KEK_PKCS11_PIN"):
        env.pop(k)  # the file says it all
    log = open(ctx.path("run.log"), "w")
    p = subprocess.Popen(["sh", run_sh, harness.CONFIG["binary"]], env=env,
                         stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)

    def call(method, target, body=None, auth=True):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        h = {"Content-Type": "application/json"}
        if auth:
            with open(os.path.join(data, "admin.token")) as f:
                h["Authorization"] = "Bearer " + f.read().strip()
        c.request(method, target, body=body, headers=h)
        r = c.getresponse()
        out = (r.status, r.read())
        c.close()
        return out
    try:
        deadline = time.monotonic() + 30 * slow_factor()
        status = None
        while time.monotonic() < deadline and status != 200:
            check(p.poll() is None, "run.sh exited: %s"
                  % open(ctx.path("run.log")).read()[-1500:])
            try:
                status, _ = call("GET", "/readyz", auth=False)
            except OSError:
                time.sleep(0.1)
        check_eq(status, 200, "served from the settings file")
        check(not os.path.exists(data + ".kek"), "a KEK file was made")
        status, body = call("POST", "/v1/accounts", json.dumps(
            [{"id": "1", "ledger": 1, "code": 1}]))
        check_eq(status, 200, "a write: %r" % body)
        call("POST", "/v1/audit/checkpoint")
        for _ in range(100):
            status, body = call("GET", "/v1/audit/checkpoint")
            if status == 200:
                break
            time.sleep(0.1)
        check_eq(status, 200, "a signed checkpoint")
        check("\n\n\u2014 " in body.decode(),
              "a signature line: %r" % body[:200])
        status, body = call("POST", "/v1/keys/rotate", b"{}")
        check_eq(status, 200, "rotation: %r" % body)
        status, body = call("GET", "/.well-known/jwks.json", auth=False)
        check_eq(len(json.loads(body)["keys"]), 2, "two keys published")
        r = run_cli(["doctor", "--data", data, "--config", conf], env=env)
        check("token" in r.stdout, "doctor: %s" % r.stdout[-800:])
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()
