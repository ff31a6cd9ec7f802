"""test_authz.py - authorization end to end (docs/authz.md): the admin
bearer token, mandates (JWS delegation chains) with DPoP proofs, caps,
revocation, and forged credentials, driven through an independent JOSE
implementation: the npm package `jose`, in tests/e2e/js/authz_client.mjs.

The JS client is installed here (npm ci into tests/e2e/js/node_modules,
pinned by its package-lock.json); without node or npm the tests fail
(scripts/deps.sh installs Debian's nodejs and npm).  Problem types are compared on their last path
segment, '-' and '_' alike, so "/problems/total-cap-exceeded" and
"urn:...:total_cap_exceeded" both match "total_cap_exceeded" (the names
of src/crypto/mandate.h).
"""

import json
import os
import re
import shutil
import stat
import subprocess
import threading
import time

from harness import (e2e_test, check, check_eq, slow_factor,
                     TestFailure)
from ledger import account, transfer, get_account

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "js")
JS_CLIENT = os.path.join(JS_DIR, "authz_client.mjs")
NPM_TIMEOUT_S = 240

_js_lock = threading.Lock()
_js_state = {"node": None}

TRANSFER_OPS = ["transfers:create", "accounts:read"]


# -- the JS client ----------------------------------------------------------

def _wanted_jose_version():
    with open(os.path.join(JS_DIR, "package-lock.json")) as f:
        lock = json.load(f)
    return lock["packages"]["node_modules/jose"]["version"]


def _installed_jose_version():
    try:
        with open(os.path.join(JS_DIR, "node_modules", "jose",
                               "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def ensure_js():
    """node's path, once `jose` is installed in tests/e2e/js/node_modules
    (npm ci from the lock file when it is not, or is another version)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        # a missing tool fails the test: `make deps` installs both
        raise TestFailure("node and npm are needed for the jose client "
                          "(node: %s, npm: %s); run `make deps`"
                          % (node, npm))
    with _js_lock:
        if _js_state["node"]:
            return _js_state["node"]
        want = _wanted_jose_version()
        if _installed_jose_version() != want:
            env = dict(os.environ, npm_config_update_notifier="false",
                       npm_config_fund="false", npm_config_audit="false")
            try:
                p = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund",
                     "--ignore-scripts"],
                    cwd=JS_DIR, env=env, stdin=subprocess.DEVNULL,
                    capture_output=True, text=True, errors="replace",
                    timeout=NPM_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise TestFailure("npm ci in %s did not finish within %ds"
                                  % (JS_DIR, NPM_TIMEOUT_S))
            check(p.returncode == 0, "npm ci in %s failed (%d):\n%s"
                  % (JS_DIR, p.returncode, (p.stdout + p.stderr)[-2000:]))
            check_eq(_installed_jose_version(), want,
                     "jose version installed by npm ci")
        _js_state["node"] = node
        return node


def node_js(script, cmd, timeout=30):
    """Run one command (a JSON object on stdin) of a script in
    tests/e2e/js; returns its JSON answer (the last line it prints)."""
    node = ensure_js()  # npm ci when needed, or fail
    limit = timeout * slow_factor()
    name = os.path.basename(script)
    try:
        p = subprocess.run([node, script], input=json.dumps(cmd),
                           cwd=JS_DIR, capture_output=True, text=True,
                           errors="replace", timeout=limit)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s %s did not finish within %.0fs"
                          % (name, cmd.get("op"), limit))
    lines = p.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1]) if lines else None
    except ValueError:
        out = None
    if p.returncode != 0 or not isinstance(out, dict):
        raise TestFailure("%s %s failed (%d): %s %s"
                          % (name, cmd.get("op"), p.returncode,
                             (out or {}).get("error", p.stdout[-1500:]),
                             p.stderr[-1500:]))
    return out


def js(cmd, timeout=30):
    """Run one command of authz_client.mjs; returns its JSON answer."""
    return node_js(JS_CLIENT, cmd, timeout)


# -- problems ---------------------------------------------------------------

def problem_name(t):
    """Last segment of a problem type URI, with '-' read as '_'."""
    if not isinstance(t, str):
        return None
    return re.split(r"[/#:]", t.rstrip("/"))[-1].replace("-", "_")


def _parts(r):
    """(status, headers, body text, JSON or None) of a harness Response or
    a JS client answer."""
    if isinstance(r, dict):
        return r["status"], r.get("headers") or {}, r.get("body") or "", \
            r.get("json")
    try:
        doc = json.loads(r.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        doc = None
    return r.status, r.headers, r.body.decode("utf-8", "replace"), doc


def check_refused(r, status, name, what, link=None, claim=None,
                  secrets=()):
    """r is an RFC 9457 refusal: this status, the type of the check
    `name` (docs/authz.md, Refusals), WWW-Authenticate on 401, and link /
    claim when given.  No secret appears in the reply."""
    st, headers, body, doc = _parts(r)
    check(st == status, "%s: expected HTTP %d, got %d %s"
          % (what, status, st, body[:500]))
    ct = (headers.get("content-type") or "").split(";")[0].strip().lower()
    check_eq(ct, "application/problem+json", "%s: Content-Type" % what)
    check(isinstance(doc, dict), "%s: problem is not a JSON object: %r"
          % (what, body[:300]))
    check_eq(doc.get("status"), status, "%s: problem status" % what)
    check(problem_name(doc.get("type")) == name,
          "%s: expected problem type %s, got %r (%s)"
          % (what, name, doc.get("type"), body[:400]))
    if status == 401:
        check((headers.get("www-authenticate") or "").strip() != "",
              "%s: 401 without WWW-Authenticate: %r" % (what, headers))
    if link is not None:
        check_eq(doc.get("link"), link, "%s: problem link (%s)"
                 % (what, body[:300]))
    if claim is not None:
        check_eq(doc.get("claim"), claim, "%s: problem claim (%s)"
                 % (what, body[:300]))
    reply = body + json.dumps(headers)
    for sec in secrets:
        # A whole token, or its signature, must never come back.
        for piece in {sec, sec.rsplit(".", 1)[-1]}:
            check(len(piece) < 20 or piece not in reply,
                  "%s: a credential is echoed in the reply" % what)
    return doc


def check_status(r, status, what):
    """The one status the docs name for this request."""
    st, _, body, doc = _parts(r)
    check(st == status, "%s: expected HTTP %d, got %d %s"
          % (what, status, st, body[:500]))
    return doc


def check_revoked(r, what):
    """A first revocation: 201 {"status":"revoked"} (docs/api.md,
    Revocations; 200 "already_revoked" is for a repeat)."""
    doc = check_status(r, 201, what)
    check_eq(doc.get("status"), "revoked", what + ": status")
    return doc


# -- a server with authorization --------------------------------------------

class Authz:
    """A started server, its admin credentials and the JS client."""

    def __init__(self, ctx, env=None, args=None):
        ensure_js()  # install (or fail) before starting anything
        self.s = ctx.start_server(env=env, args=args)
        s = self.s
        self.token = s.require_admin_token()
        path = os.path.join(s.data_dir, "admin.jwk")
        check(os.path.exists(path), "%s does not exist" % path)
        with open(path) as f:
            self.admin_jwk = json.load(f)
        check(isinstance(self.admin_jwk, dict) and
              isinstance(self.admin_jwk.get("d"), str),
              "admin.jwk is not a private JWK")
        self.admin_tp = js({"op": "thumbprint",
                            "jwk": self.admin_jwk})["thumbprint"]
        self.base = "http://127.0.0.1:%d" % s.port
        self._n = 0
        # One iat and exp for every link by default, so that a child
        # never outlives its parent by a clock tick (that is widening).
        self.iat = int(time.time()) - 5
        self.exp = self.iat + 3600

    def jti(self, prefix):
        self._n += 1
        return "%s-%d-%d" % (prefix, os.getpid(), self._n)

    def keys(self, n):
        return js({"op": "keygen", "count": n})["keys"]

    def register(self, key, name):
        r = self.s.post("/v1/principals", {"jwk": key["jwk"], "name": name})
        # A key registered for the first time: 201 "registered"
        # (docs/api.md, Principals; 200 "exists" is for a repeat).
        doc = check_status(r, 201, "POST /v1/principals %s" % name)
        check_eq(doc.get("status"), "registered",
                 "POST /v1/principals %s: status" % name)
        check_eq(doc.get("id"), key["thumbprint"],
                 "registered principal id (RFC 7638 thumbprint)")
        return doc

    def accounts(self, ids, owner=None, ledger=1):
        path = "/v1/accounts"
        if owner:
            path += "?owner=" + owner
        r = self.s.post(path, [account(i, ledger=ledger) for i in ids])
        check_eq(r.status, 200, "POST %s: %r" % (path, r))
        check_eq([x.get("status") for x in r.json()],
                 ["created"] * len(ids), "POST %s statuses" % path)

    def link(self, issuer_jwk, delegate, right, parent=None, **kw):
        cmd = {"op": "link", "issuer": issuer_jwk,
               "delegate": delegate["jwk"], "right": right,
               "jti": kw.pop("jti", None) or self.jti("l"),
               "iat": self.iat, "exp": self.exp}
        if parent is not None:
            cmd["parent"] = parent["compact"]
        cmd.update(kw)
        return js(cmd)

    def chain(self, rights, keys, **kw):
        """Links admin -> keys[0] -> keys[1] ... with rights[i]."""
        out = []
        issuer = self.admin_jwk
        for right, key in zip(rights, keys):
            out.append(self.link(issuer, key, right,
                                 out[-1] if out else None, **kw))
            issuer = key["private_jwk"]
        return out

    def call(self, links, key, method, path, body=None, **kw):
        """One request under the mandate `links`, proven with `key`."""
        cmd = {"op": "mandate_request", "base": self.base,
               "chain": [l["compact"] if isinstance(l, dict) else l
                         for l in links],
               "key": key["private_jwk"], "method": method, "path": path}
        if body is not None:
            cmd["body"] = body
        cmd.update(kw)
        return js(cmd)

    def debits_posted(self, id):
        return int(get_account(self.s, id)["debits_posted"])

    def transfer_absent(self, id, what):
        r = self.s.get("/v1/transfers/%s" % id)
        check_eq(r.status, 404, "%s: transfer %s exists: %r" % (what, id, r))


def _right(accounts, per=None, total=None, ops=None, **extra):
    r = {"ops": list(ops or TRANSFER_OPS),
         "accounts": [str(a) for a in accounts]}
    if per is not None:
        r["per_transfer_cap"] = str(per)
    if total is not None:
        r["total_cap"] = str(total)
    r.update(extra)
    return r


def _flip(text, at):
    """text with the base64url character at index `at` replaced."""
    c = text[at]
    return text[:at] + ("A" if c != "A" else "B") + text[at + 1:]


def _tamper_signature(compact):
    h, p, sig = compact.split(".")
    return "%s.%s.%s" % (h, p, _flip(sig, 10))


# -- tests ------------------------------------------------------------------

@e2e_test(timeout=300)  # the first one may run npm ci
def test_authz_v1_needs_a_credential_while_health_and_jwks_stay_public(ctx):
    a = Authz(ctx)
    s = a.s
    for name in ("admin.token", "admin.jwk"):
        mode = stat.S_IMODE(os.stat(os.path.join(s.data_dir, name)).st_mode)
        check_eq(oct(mode), oct(0o600), "mode of DATA/%s" % name)
    a.accounts([1, 2])  # as the administrator, through the harness
    check_eq(s.get("/v1/accounts/1").status, 200, "admin reads account 1")

    for method, path, body in (
            ("GET", "/v1/accounts/1", None),
            ("POST", "/v1/transfers", transfer(7, 1, 2, 5)),
            ("POST", "/v1/accounts", [account(3)]),
            ("GET", "/v1/principals", None),
            ("GET", "/v1/revocations", None),
            ("GET", "/v1/audit/head", None)):
        what = "%s %s" % (method, path)
        r = s.request(method, path, body=body, auth=None)
        check_refused(r, 401, "malformed", what + " without a credential")
        r = s.request(method, path, body=body,
                      auth="Bearer " + "x" * len(a.token))
        check_refused(r, 401, "bad_signature",
                      what + " with a wrong bearer token")
        r = s.request(method, path, body=body,
                      auth="Bearer " + a.token[:-1] +
                      ("A" if a.token[-1] != "A" else "B"))
        check_refused(r, 401, "bad_signature", what + " with a "
                      "one-character-off bearer token", secrets=(a.token,))
        r = s.request(method, path, body=body, auth="Basic " + a.token)
        check_refused(r, 401, "malformed", what + " with Basic",
                      secrets=(a.token,))
        r = s.request(method, path, body=body, auth="DPoP " + a.token)
        check_refused(r, 401, "dpop_missing", what + " with the token as DPoP",
                      secrets=(a.token,))
    a.transfer_absent(7, "unauthenticated POST /v1/transfers")
    r = s.get("/v1/accounts/3")
    check_eq(r.status, 404, "account 3 from an unauthenticated POST: %r" % r)

    for path in ("/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"):
        r = s.get(path, auth=None)
        check_eq(r.status, 200, "GET %s without a credential: %r"
                 % (path, r))
    jwks = s.get("/.well-known/jwks.json", auth=None).json()
    check(isinstance(jwks.get("keys"), list) and jwks["keys"],
          "JWKS without keys: %r" % jwks)
    s.stop()


@e2e_test(timeout=120)
def test_authz_jose_verifies_the_signed_revocation_list_with_the_jwks(ctx):
    a = Authz(ctx)
    s = a.s
    m, k = a.keys(2)
    # Two revocations by the administrator's plain body, so the list has
    # content: one link, and every link of an issuer.
    r = s.post("/v1/revocations", {"iss": m["thumbprint"], "jti": "gone-1"})
    check_revoked(r, "admin revokes a link")
    r = s.post("/v1/revocations", {"iss": k["thumbprint"], "all": True})
    check_revoked(r, "admin revokes an issuer")

    v = js({"op": "verify_signed", "base": a.base, "path": "/v1/revocations",
            "authorization": "Bearer " + a.token})
    check_eq((v["content_type"] or "").split(";")[0].strip(),
             "application/jwt", "GET /v1/revocations Content-Type")
    kid = v["header"].get("kid")
    check(isinstance(kid, str) and kid, "no kid in %r" % v["header"])
    check(kid in [k.get("kid") for k in v["jwks"]["keys"]],
          "kid %r is not in the JWKS %r" % (kid, v["jwks"]))
    check(v["header"].get("alg") in ("EdDSA", "Ed25519"),
          "alg of the revocation list: %r" % v["header"])
    check(v["tampered_rejected"], "jose accepted a changed revocation list")
    check(v["unknown_kid_rejected"], "jose verified with another key")
    p = v["payload"]
    for f in ("seq", "this_update", "next_update", "revoked",
              "issuers_revoked"):
        check(f in p, "revocation list lacks %r: %r" % (f, p))
    check_eq(p["seq"], 2, "seq after two revocations")
    check(isinstance(p["this_update"], int) and
          isinstance(p["next_update"], int) and
          p["next_update"] > p["this_update"],
          "this_update / next_update: %r" % p)
    check(abs(p["next_update"] - p["this_update"] - 86400) <= 60,
          "next_update is not a day after this_update: %r" % p)
    check_eq([(x.get("iss"), x.get("jti")) for x in p["revoked"]],
             [(m["thumbprint"], "gone-1")], "revoked")
    check(all("at" in x for x in p["revoked"] + p["issuers_revoked"]),
          "an entry without at: %r" % p)
    check_eq([x.get("iss") for x in p["issuers_revoked"]],
             [k["thumbprint"]], "issuers_revoked")
    s.stop()


def _merchant_setup(a):
    """admin -> merchant -> device -> session; accounts 1001..1003 and
    2001 (admin-owned).  Returns (merchant, device, session)."""
    merchant, device, session = a.keys(3)
    a.register(merchant, "merchant")
    a.register(device, "till-1")
    a.accounts([1001, 1002, 1003, 2001])
    return merchant, device, session


@e2e_test(timeout=120)
def test_authz_three_link_chain_with_dpop_moves_money_within_its_right(ctx):
    a = Authz(ctx)
    merchant, device, session = _merchant_setup(a)
    links = a.chain([_right([1001], per=5000, total=50000),
                     _right([1001], per=5000, total=40000),
                     _right([1001], per=3000, total=30000)],
                    [merchant, device, session])
    secrets = [l["compact"] for l in links]

    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(1, 1001, 2001, 1500))
    doc = check_status(r, 201, "transfer under the 3-link mandate")
    check_eq(doc.get("status"), "created", "transfer result")
    proof = r["proof"]

    # The same proof again (even for another transfer): replay.
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(2, 1001, 2001, 10), proof=proof)
    check_refused(r, 401, "replay", "the same DPoP proof twice",
                  secrets=secrets + [proof])
    a.transfer_absent(2, "replayed proof")

    # Another account: not in the right.
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(3, 1002, 2001, 10))
    check_refused(r, 403, "account_not_allowed", "debit of account 1002",
                  secrets=secrets)
    a.transfer_absent(3, "account not allowed")

    # Over the last link's per-transfer cap (3000), within the others'.
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(4, 1001, 2001, 3001))
    check_refused(r, 403, "per_transfer_cap_exceeded", "amount 3001 > 3000",
                  secrets=secrets)
    a.transfer_absent(4, "over the per-transfer cap")
    # Exactly the cap is fine.
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(5, 1001, 2001, 3000))
    check_status(r, 201, "amount == per_transfer_cap")

    # accounts:read of the named account only.
    r = a.call(links, session, "GET", "/v1/accounts/1001")
    doc = check_status(r, 200, "GET /v1/accounts/1001 under the mandate")
    check_eq(doc.get("debits_posted"), "4500", "debits_posted read by the "
             "device")
    r = a.call(links, session, "GET", "/v1/accounts/1002")
    check_refused(r, 403, "account_not_allowed", "GET /v1/accounts/1002")
    # An operation the right lacks.
    r = a.call(links, session, "GET", "/v1/principals")
    check_refused(r, 403, "op_not_allowed", "GET /v1/principals")

    # The mandate without its key is worthless: the delegate above the
    # last one cannot prove it either.
    r = a.call(links, device, "POST", "/v1/transfers",
               transfer(6, 1001, 2001, 1))
    check_refused(r, 401, "dpop_wrong_key", "proof by the device, not the "
                  "session key")
    a.transfer_absent(6, "proof by the wrong key")

    check_eq(a.debits_posted(1001), 4500, "account 1001 debits_posted")
    check_eq(a.debits_posted(1002), 0, "account 1002 debits_posted")

    # uses: at most two transfers under this link.
    counted = a.chain([_right([1002], uses=2)], [merchant])
    for id in (10, 11):
        r = a.call(counted, merchant, "POST", "/v1/transfers",
                   transfer(id, 1002, 2001, 1))
        check_status(r, 201, "transfer %d of 2 uses" % id)
    r = a.call(counted, merchant, "POST", "/v1/transfers",
               transfer(12, 1002, 2001, 1))
    check_refused(r, 403, "uses_exceeded", "a third use")
    check_eq(a.debits_posted(1002), 2, "account 1002 after 2 uses")
    a.s.stop()


@e2e_test(timeout=120)
def test_authz_a_link_that_widens_its_parent_is_refused_naming_the_claim(ctx):
    a = Authz(ctx)
    merchant, device, session = _merchant_setup(a)
    base = _right([1001], per=5000, total=10000)
    cases = (
        ("right.total_cap", _right([1001], per=5000, total=10001)),
        ("right.per_transfer_cap", _right([1001], per=5001, total=10000)),
        ("right.accounts", _right([1001, 1002], per=5000, total=10000)),
        ("right.ops", _right([1001], per=5000, total=10000,
                             ops=TRANSFER_OPS + ["transfers:read"])),
        # A capped parent: the child must keep the cap.
        ("right.total_cap", _right([1001], per=5000)),
    )
    for claim, wide in cases:
        links = a.chain([base, wide], [merchant, device])
        r = a.call(links, device, "POST", "/v1/transfers",
                   transfer(9, 1001, 2001, 1))
        check_refused(r, 401, "widened", "child with a wider %s" % claim,
                      link=2, claim=claim)
    # A longer life than the parent.
    l1 = a.link(a.admin_jwk, merchant, base, exp=a.exp - 1)
    l2 = a.link(merchant["private_jwk"], device, base, parent=l1,
                exp=a.exp)
    r = a.call([l1, l2], device, "POST", "/v1/transfers",
               transfer(9, 1001, 2001, 1))
    check_refused(r, 401, "widened", "child that outlives its parent",
                  link=2, claim="exp")
    a.transfer_absent(9, "widened chains")
    # The same chain, narrowed, works: the refusals were the widening.
    links = a.chain([base, _right([1001], per=5000, total=10000)],
                    [merchant, device])
    r = a.call(links, device, "POST", "/v1/transfers",
               transfer(9, 1001, 2001, 1))
    check_status(r, 201, "equal child")
    a.s.stop()


@e2e_test(timeout=120)
def test_authz_total_cap_holds_under_20_concurrent_transfers(ctx):
    a = Authz(ctx)
    merchant, device, session = _merchant_setup(a)
    links = a.chain([_right([1003], total=10000),
                     _right([1003], per=1000, total=10000),
                     _right([1003], per=1000, total=10000)],
                    [merchant, device, session])
    n = 20
    reqs = [{"method": "POST", "path": "/v1/transfers",
             "body": transfer(5000 + i, 1003, 2001, 1000)} for i in range(n)]
    out = js({"op": "concurrent", "base": a.base,
              "chain": [l["compact"] for l in links],
              "key": session["private_jwk"], "requests": reqs}, timeout=90)
    res = out["results"]
    check_eq(len(res), n, "answers")
    accepted = [i for i, x in enumerate(res) if x["status"] == 201]
    refused = [i for i, x in enumerate(res) if x["status"] != 201]
    ctx.note("20 concurrent transfers of 1000 under total_cap 10000: "
             "%d accepted" % len(accepted))
    check_eq(len(accepted), 10, "accepted transfers (statuses %r)"
             % sorted(x["status"] for x in res))
    for i in accepted:
        check_eq((res[i].get("json") or {}).get("status"), "created",
                 "result of accepted transfer %d" % i)
    for i in refused:
        check_refused(res[i], 403, "total_cap_exceeded",
                      "concurrent transfer %d" % i)
        a.transfer_absent(5000 + i, "refused concurrent transfer")
    check_eq(a.debits_posted(1003), 10000, "account 1003 debits_posted")
    check_eq(int(get_account(a.s, 2001)["credits_posted"]), 10000,
             "account 2001 credits_posted")

    # Spent is spent: one more, and one through a sibling chain that
    # shares the capped root link, are refused too.
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(6000, 1003, 2001, 1))
    check_refused(r, 403, "total_cap_exceeded", "transfer after the cap")
    other, = a.keys(1)
    sibling = [links[0], a.link(merchant["private_jwk"], other,
                                _right([1003], total=5000),
                                parent=links[0])]
    r = a.call(sibling, other, "POST", "/v1/transfers",
               transfer(6001, 1003, 2001, 1))
    check_refused(r, 403, "total_cap_exceeded",
                  "sibling chain under the spent root link")
    check_eq(a.debits_posted(1003), 10000, "debits_posted after the cap")
    # The cap is kept across a restart (journal entries, not memory).
    a.s.stop()
    a.s.start()
    a.base = "http://127.0.0.1:%d" % a.s.port
    _past_the_horizon(a.s)
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(6002, 1003, 2001, 1))
    check_refused(r, 403, "total_cap_exceeded", "after a restart")
    check_eq(a.debits_posted(1003), 10000, "debits_posted after restart")
    a.s.stop()


@e2e_test(timeout=120)
def test_authz_revoking_the_middle_link_refuses_the_chain_below_it(ctx):
    a = Authz(ctx)
    merchant, device, session = _merchant_setup(a)
    right = _right([1001], per=5000, total=50000)
    links = a.chain([right, right, right], [merchant, device, session])
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(1, 1001, 2001, 100))
    check_status(r, 201, "transfer before the revocation")

    # A statement naming the merchant but signed by another key, and a
    # stale one, revoke nothing.
    forged = js({"op": "revocation", "key": device["private_jwk"],
                 "revoke": {"jti": links[1]["claims"]["jti"]},
                 "claims": {"iss": merchant["thumbprint"]}})["statement"]
    r = a.s.post("/v1/revocations", {"statement": forged}, auth=None)
    check_refused(r, 401, "wrong_issuer", "statement with another iss",
                  secrets=(forged,))
    stale = js({"op": "revocation", "key": merchant["private_jwk"],
                "revoke": {"jti": links[1]["claims"]["jti"]},
                "iat": int(time.time()) - 600})["statement"]
    r = a.s.post("/v1/revocations", {"statement": stale}, auth=None)
    check_refused(r, 401, "stale", "statement 600 s old")
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(2, 1001, 2001, 100))
    check_status(r, 201, "transfer after refused statements")

    # The merchant revokes the link it signed (link 2): the statement
    # proves itself, no other credential.
    jti2 = links[1]["claims"]["jti"]
    stmt = js({"op": "revocation", "key": merchant["private_jwk"],
               "revoke": {"jti": jti2}})["statement"]
    r = a.s.post("/v1/revocations", {"statement": stmt}, auth=None)
    check_revoked(r, "POST /v1/revocations (statement)")

    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(3, 1001, 2001, 100))
    check_refused(r, 401, "revoked", "chain with a revoked middle link",
                  link=2)
    a.transfer_absent(3, "revoked chain")
    r = a.call(links[:2], device, "POST", "/v1/transfers",
               transfer(4, 1001, 2001, 100))
    check_refused(r, 401, "revoked", "the revoked link as the last one",
                  link=2)
    # The root link is untouched.
    r = a.call(links[:1], merchant, "POST", "/v1/transfers",
               transfer(5, 1001, 2001, 100))
    check_status(r, 201, "the merchant's own (root) link still works")

    r = a.s.get("/v1/revocations/%s" % jti2)
    doc = check_status(r, 200, "GET /v1/revocations/{jti}")
    check_eq((doc.get("jti"), doc.get("status")), (jti2, "revoked"),
             "revocation status of link 2")
    check_eq([x.get("iss") for x in doc.get("revocations") or []],
             [merchant["thumbprint"]], "revocations of link 2")
    r = a.s.get("/v1/revocations/%s" % links[0]["claims"]["jti"])
    doc = check_status(r, 200, "GET /v1/revocations/{root jti}")
    check_eq(doc.get("status"), "good", "status of the root link")
    v = js({"op": "verify_signed", "base": a.base, "path": "/v1/revocations",
            "authorization": "Bearer " + a.token})
    check_eq([(x.get("iss"), x.get("jti")) for x in v["payload"]["revoked"]],
             [(merchant["thumbprint"], jti2)], "signed revocation list")

    # Revocation survives a restart (a journal entry).
    a.s.stop()
    a.s.start()
    a.base = "http://127.0.0.1:%d" % a.s.port
    _past_the_horizon(a.s)
    r = a.call(links, session, "POST", "/v1/transfers",
               transfer(6, 1001, 2001, 100))
    check_refused(r, 401, "revoked", "revoked chain after a restart", link=2)
    check_eq(a.debits_posted(1001), 300, "account 1001 debits_posted")
    a.s.stop()


@e2e_test(timeout=120)
def test_authz_forged_links_and_bad_dpop_proofs_are_refused(ctx):
    a = Authz(ctx)
    merchant, device, session = _merchant_setup(a)
    stranger, = a.keys(1)
    right = _right([1001], per=5000)
    links = a.chain([right, right, right], [merchant, device, session])
    T = lambda id: transfer(id, 1001, 2001, 1)  # noqa: E731
    secrets = [l["compact"] for l in links]

    # A tampered signature on link 2.
    bad = [links[0], dict(links[1], compact=_tamper_signature(
        links[1]["compact"])), links[2]]
    r = a.call(bad, session, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "bad_signature", "tampered link 2 signature",
                  link=2, secrets=secrets)
    # A changed payload under the original signature (a wider right).
    h, p, sig = links[0]["compact"].split(".")
    wider = a.link(a.admin_jwk, merchant, _right([1001, 1002], per=5000),
                   jti=links[0]["claims"]["jti"])
    forged = "%s.%s.%s" % (h, wider["compact"].split(".")[1], sig)
    r = a.call([forged], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "bad_signature", "payload swapped under link 1's "
                  "signature", link=1)

    # alg none: without a signature (a malformed JWS to this server) and
    # with one (refused for its alg).
    none = a.link(a.admin_jwk, merchant, right, alg_none=True)
    r = a.call([none], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "malformed", "alg none, empty signature", link=1)
    none = a.link(a.admin_jwk, merchant, right, alg_none=True,
                  signature_text=links[0]["compact"].split(".")[2])
    r = a.call([none], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "alg_not_allowed", "alg none with a signature",
                  link=1)
    hs = a.link(a.admin_jwk, merchant, right, header={"alg": "HS256"},
                alg_none=True, signature_text=links[0]["compact"]
                .split(".")[2])
    r = a.call([hs], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "alg_not_allowed", "alg HS256", link=1)
    # A root signed by a key the server does not know.
    rogue = a.link(stranger["private_jwk"], merchant, right)
    r = a.call([rogue], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "unknown_issuer", "root by an unregistered key",
                  link=1)
    # An expired link.
    old = a.link(a.admin_jwk, merchant, right, iat=int(time.time()) - 7200,
                 exp=int(time.time()) - 3600)
    r = a.call([old], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "expired", "expired link 1", link=1)
    # Not valid yet.
    early = a.link(a.admin_jwk, merchant, right, nbf=int(time.time()) + 600)
    r = a.call([early], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "not_yet_valid", "link with nbf in 10 min",
                  link=1)
    # An unknown claim.
    odd = a.link(a.admin_jwk, merchant, right, claims={"scope": "all"})
    r = a.call([odd], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "malformed", "link with an unknown claim", link=1)
    # A jti outside its character set.
    odd = a.link(a.admin_jwk, merchant, right, jti="a b")
    r = a.call([odd], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "malformed", "link with jti 'a b'", link=1,
                  claim="jti")
    # Another audience (the server's is its log origin).
    keyline = a.s.get("/v1/audit/key").body.decode().splitlines()[0]
    origin = keyline.split("+")[0]
    other_aud = a.link(a.admin_jwk, merchant, right, aud=origin + "x")
    r = a.call([other_aud], merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "wrong_audience", "link for another audience",
                  link=1, claim="aud")
    # A key twice in the chain: a cycle.
    loop = a.chain([right, right, right], [merchant, device, merchant])
    r = a.call(loop, merchant, "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "cycle", "merchant -> device -> merchant",
                  link=3, claim="sub")
    # Nine links: one too many.
    nine = a.keys(9)
    deep = a.chain([right] * 9, nine)
    r = a.call(deep, nine[-1], "POST", "/v1/transfers", T(1))
    check_refused(r, 401, "chain_too_deep", "a 9-link mandate", link=9)
    r = a.call(deep[:8], nine[7], "POST", "/v1/transfers", T(11))
    check_status(r, 201, "an 8-link mandate")
    aimed = a.link(a.admin_jwk, merchant, right, aud=origin)
    r = a.call([aimed], merchant, "POST", "/v1/transfers", T(12))
    check_status(r, 201, "link for this server's audience")

    # DPoP proofs.
    cases = (
        ("no DPoP header", {"proof": ""}, "dpop_missing"),
        ("proof by another key (its own jwk)",
         {"dpop": {"sign_key": stranger["private_jwk"],
                   "header_jwk": stranger["jwk"]}}, "dpop_wrong_key"),
        ("proof with the delegate's jwk, signed by another key",
         {"dpop": {"sign_key": stranger["private_jwk"]}},
         "dpop_bad_signature"),
        ("stale proof (iat 120 s ago)",
         {"dpop": {"iat": int(time.time()) - 120}}, "dpop_stale"),
        ("proof from the future (iat in 120 s)",
         {"dpop": {"iat": int(time.time()) + 120}}, "dpop_stale"),
        # dated ahead, it would raise the restart horizon for everyone
        ("proof dated 30 s ahead (at most 5)",
         {"dpop": {"iat": int(time.time()) + 30}}, "dpop_stale"),
        ("proof for GET", {"dpop": {"htm": "GET"}}, "dpop_wrong_method"),
        ("proof for another URL",
         {"dpop": {"htu": a.base + "/v1/accounts"}}, "dpop_wrong_url"),
        ("proof for another credential",
         {"dpop": {"access_token": "~".join(secrets[:2])}},
         "dpop_wrong_ath"),
        ("proof without ath", {"dpop": {"access_token": None}},
         "dpop_malformed"),
    )
    for what, kw, name in cases:
        if kw.get("proof") == "":
            # The JS client always sends a DPoP header: send none from here.
            r = a.s.post("/v1/transfers", T(1), headers={
                "Authorization": "DPoP " + "~".join(secrets)})
        else:
            r = a.call(links, session, "POST", "/v1/transfers", T(1), **kw)
        check_refused(r, 401, name, what, secrets=secrets)
    a.transfer_absent(1, "forged credentials")

    # The same chain with a good proof works: the refusals were the
    # forgeries.
    r = a.call(links, session, "POST", "/v1/transfers", T(1))
    check_status(r, 201, "the genuine chain")
    check_eq(a.debits_posted(1001), 3, "account 1001 debits_posted "
             "(transfers 11, 12 and 1)")
    a.s.stop()


@e2e_test(timeout=120)
def test_authz_owner_rooted_mandates_cover_only_owned_accounts(ctx):
    a = Authz(ctx)
    merchant, device = a.keys(2)
    a.register(merchant, "shop")
    a.accounts([3001], owner=merchant["thumbprint"])
    a.accounts([1001, 2001])  # the administrator's
    link = a.link(merchant["private_jwk"], device, _right([3001], per=100))
    r = a.call([link], device, "POST", "/v1/transfers",
               transfer(1, 3001, 2001, 100))
    check_status(r, 201, "owner-rooted mandate on an owned account")
    check_eq(a.debits_posted(3001), 100, "account 3001 debits_posted")
    # The owner cannot grant an account it does not own...
    link = a.link(merchant["private_jwk"], device, _right([3001, 1001]))
    r = a.call([link], device, "POST", "/v1/transfers",
               transfer(2, 3001, 2001, 1))
    check_refused(r, 403, "issuer_not_owner", "root naming account 1001",
                  link=1, claim="right.accounts")
    # ...nor every account, nor every operation.
    link = a.link(merchant["private_jwk"], device,
                  {"ops": ["transfers:create"]})
    r = a.call([link], device, "POST", "/v1/transfers",
               transfer(3, 3001, 2001, 1))
    check_refused(r, 403, "issuer_not_owner", "root without accounts",
                  link=1, claim="right.accounts")
    link = a.link(merchant["private_jwk"], device,
                  {"ops": ["*"], "accounts": ["3001"]})
    r = a.call([link], device, "POST", "/v1/transfers",
               transfer(4, 3001, 2001, 1))
    check_refused(r, 403, "issuer_not_owner", "root with ops *",
                  link=1, claim="right.ops")
    for id in (2, 3, 4):
        a.transfer_absent(id, "refused owner-rooted mandates")
    a.s.stop()


def _read_horizon(s):
    with open(os.path.join(s.data_dir, "dpop.horizon")) as f:
        return int(f.read().split()[0])


def _past_the_horizon(s):
    """After a restart, proofs dated at or before DATA/dpop.horizon are
    refused (dpop-before-restart): wait until a proof dated now passes."""
    h = _read_horizon(s)
    check(h <= int(time.time()) + 70, "the horizon is within the window")
    while int(time.time()) <= h:
        time.sleep(0.2)


def _restart_on_the_same_port(s, kill=False):
    """The same data and port: a proof's htu names the port."""
    port = s.port
    if kill:
        s.kill9()
    else:
        s.stop()
    s.spawn(port=port)
    s.wait_ready(20 * slow_factor())


@e2e_test(timeout=120)
def test_authz_a_dpop_proof_used_before_a_restart_is_refused_after_it(ctx):
    # issue 9, finding 7: the replay cache is memory, the horizon is not
    a = Authz(ctx)
    merchant, device, session = _merchant_setup(a)
    links = a.chain([_right([1001])], [merchant])
    r = a.call(links, merchant, "POST", "/v1/transfers",
               transfer(1, 1001, 2001, 5))
    check_status(r, 201, "the first use of the proof")
    proof = r["proof"]
    for kill in (False, True):
        _restart_on_the_same_port(a.s, kill=kill)
        if not kill:
            # a clean stop brings the horizon down from the lease (iat +
            # 10 s) to the latest iat accepted
            check(_read_horizon(a.s) <= int(time.time()),
                  "the horizon after a clean stop is not ahead of now")
        # the same proof, another body: the attack
        r = a.call(links, merchant, "POST", "/v1/transfers",
                   transfer(2, 1001, 2001, 500), proof=proof)
        check_refused(r, 401, "dpop_before_restart",
                      "a proof used before the restart (kill=%s)" % kill)
        a.transfer_absent(2, "replayed after a restart")
    check_eq(a.debits_posted(1001), 5, "only the first transfer moved")
    # what a proof made after the restart needs: an iat past the horizon
    horizon = _read_horizon(a.s)
    check(horizon >= int(time.time()) - 60,
          "the horizon covers the proof used: %d" % horizon)
    _past_the_horizon(a.s)
    r = a.call(links, merchant, "POST", "/v1/transfers",
               transfer(3, 1001, 2001, 7))
    check_status(r, 201, "a proof dated after the horizon")
    check_eq(a.debits_posted(1001), 12, "the new proof moved money")
