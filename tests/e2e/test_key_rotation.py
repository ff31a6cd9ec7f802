"""test_key_rotation.py - keys through a rotation (issue 11, item 6): the
overlap is a request field and a setting (0 for a leaked key stops the
replaced key at once; the default keeps it verifying), the journaled key
event carries the overlap used, GET /v1/audit/key is open to anyone and
lists the current key first, then the older ones newest first."""

import base64
import json
import os

from harness import (e2e_test, check, check_eq, run_cli, wait_audit_size)

DEFAULT_OVERLAP_S = 30 * 86400


def keys_by_kid(s):
    return {k["kid"]: k for k in s.get("/v1/keys").json()["keys"]}


def current_kid(s):
    cur = [k for k, v in keys_by_kid(s).items() if v["status"] == "current"]
    check_eq(len(cur), 1, "one current key")
    return cur[0]


def jwks_pubs(s):
    """kid -> raw public key of the keys the JWKS publishes."""
    out = {}
    for k in s.get("/.well-known/jwks.json").json()["keys"]:
        out[k["kid"]] = base64.urlsafe_b64decode(k["x"] + "=")
    return out


def key_event(s, kid):
    """The decoded journal entry that announced kid (newest first)."""
    size = int(s.get("/v1/audit/head").json()["size"])
    for i in range(size - 1, -1, -1):
        d = s.get("/v1/audit/entries/%d?view=decoded" % i).json()["decoded"]
        if d.get("command") == "key" and d["fields"].get("kid") == kid:
            return d
    raise AssertionError("no key event for %s in %d entries" % (kid, size))


@e2e_test(timeout=120)
def test_rotation_overlap_default_keeps_the_old_key_zero_stops_it(ctx):
    s = ctx.start_server()
    kid0 = current_kid(s)
    # No body: the setting (default 30 days).  The old key verifies on.
    r = s.post("/v1/keys/rotate", None)
    check_eq(r.status, 200, "rotate: %r" % r)
    kid1 = r.json()["kid"]
    check_eq(r.json()["overlap_s"], DEFAULT_OVERLAP_S, "default overlap")
    keys = keys_by_kid(s)
    check_eq(keys[kid0]["status"], "verifying", "old key after a rotation")
    check(kid0 in jwks_pubs(s), "the old key left the JWKS at once")
    # An explicit overlap, through the CLI: --overlap 0 (a leaked key).
    r = run_cli(["keys", "rotate", "--overlap", "0"] + s.cli_args())
    check_eq(r.returncode, 0, "keys rotate --overlap 0: %s" % r.stderr)
    answer = json.loads(r.stdout)
    kid2 = answer["kid"]
    check_eq(answer["overlap_s"], 0, "overlap in the answer")
    keys = keys_by_kid(s)
    check_eq(keys[kid1]["status"], "expired",
             "the key replaced with overlap 0")
    check_eq(keys[kid2]["status"], "current", "the new key")
    check_eq(keys[kid0]["status"], "verifying",
             "a key retired before keeps its own window")
    pubs = jwks_pubs(s)
    check(kid1 not in pubs and kid0 in pubs and kid2 in pubs,
          "JWKS after overlap 0: %r" % sorted(pubs))
    # The journal says which overlap each rotation used.
    wait_audit_size(s, 1)
    check_eq(key_event(s, kid1)["fields"]["overlap_s"],
             str(DEFAULT_OVERLAP_S), "key event of the default rotation")
    check_eq(key_event(s, kid2)["fields"]["overlap_s"], "0",
             "key event of the overlap-0 rotation")
    # Bad overlaps are refused, naming the field; nothing rotates.
    for body, want in ((b'{"overlap_s":-1}', "invalid-field"),
                       (b'{"overlap_s":"0"}', "invalid-field"),
                       (b'{"overlap_s":316224001}', "invalid-field"),
                       (b'{"overlap_s":1.5}', "invalid-field"),
                       (b'{"overlap":0}', "unknown-field"),
                       (b'[0]', "invalid-json")):
        r = s.request("POST", "/v1/keys/rotate", body=body,
                      headers={"Content-Type": "application/json"})
        check_eq(r.status, 400, "rotate %r" % body)
        check_eq(r.json()["type"].rsplit("/", 1)[-1], want,
                 "rotate %r: problem type" % body)
    check_eq(current_kid(s), kid2, "a refused rotation rotated")
    r = run_cli(["keys", "rotate", "--overlap", "1y"] + s.cli_args())
    check_eq(r.returncode, 2, "--overlap 1y is a usage error")
    s.stop()


@e2e_test(timeout=120)
def test_rotation_overlap_setting_applies_when_the_request_says_nothing(ctx):
    s = ctx.start_server(env={"TPWALLET_KEY_OVERLAP_S": "0"})
    kid0 = current_kid(s)
    r = s.post("/v1/keys/rotate", {})
    check_eq(r.status, 200, "rotate {}")
    check_eq(r.json()["overlap_s"], 0, "overlap from the setting")
    check_eq(keys_by_kid(s)[kid0]["status"], "expired",
             "old key with key_overlap_s = 0")
    r = s.post("/v1/keys/rotate", {"overlap_s": 3600})
    check_eq(r.json()["overlap_s"], 3600, "the request overrides it")
    check_eq(keys_by_kid(s)[r.json()["kid"]]["status"], "current", "new")
    s.stop()


def audit_key_lines(s, **kw):
    r = s.request("GET", "/v1/audit/key", **kw)
    check_eq(r.status, 200, "GET /v1/audit/key: %r" % r)
    return r.body.decode().splitlines()


def line_pub(line):
    """The raw public key of a note verifier key line."""
    raw = base64.b64decode(line.split("+", 2)[2])
    check_eq(raw[0], 1, "Ed25519 key type")
    return raw[1:]


@e2e_test(timeout=120)
def test_audit_key_is_public_and_lists_current_then_newest_first(ctx):
    s = ctx.start_server()
    anon = s.new_client(auth=None)
    kids = [current_kid(s)]
    for _ in range(2):
        r = s.post("/v1/keys/rotate", None)
        check_eq(r.status, 200, "rotate")
        kids.append(r.json()["kid"])
    pubs = jwks_pubs(s)
    lines = audit_key_lines(anon)
    check_eq([line_pub(x) for x in lines],
             [pubs[kids[2]], pubs[kids[1]], pubs[kids[0]]],
             "current key first, then the older ones newest first")
    origin = open(s.data_dir + "/origin").read().strip()
    check(all(x.startswith(origin + "+") for x in lines),
          "each line names the log's origin: %r" % lines)
    # With a credential, a wrong one or none: the same answer.
    check_eq(audit_key_lines(s.client), lines, "with the admin token")
    check_eq(audit_key_lines(anon, headers={"Authorization": "Bearer x"}),
             lines, "with a bogus credential")
    r = anon.request("HEAD", "/v1/audit/key")
    check_eq(r.status, 200, "HEAD without credential")
    r = anon.request("POST", "/v1/audit/key", body=b"{}",
                     headers={"Content-Type": "application/json"})
    check_eq(r.status, 405, "POST /v1/audit/key")
    # Exactly that route: its neighbours still need audit:read.
    for path in ("/v1/audit/head", "/v1/audit/checkpoint",
                 "/v1/audit/entries/0", "/v1/keys"):
        check_eq(anon.get(path).status, 401, "%s without credential" % path)
    # A key rotated out with overlap 0 leaves the list at once.
    r = s.post("/v1/keys/rotate", {"overlap_s": 0})
    kids.append(r.json()["kid"])
    pubs = jwks_pubs(s)
    check_eq([line_pub(x) for x in audit_key_lines(anon)],
             [pubs[kids[3]], pubs[kids[1]], pubs[kids[0]]],
             "after an overlap-0 rotation")
    s.stop()


@e2e_test(timeout=120)
def test_leaked_kek_procedure_leaves_only_the_new_key(ctx):
    """docs/keys.md, "When the KEK leaks", steps 1 and 2."""
    s = ctx.start_server()
    r = s.post("/v1/keys/rotate", None)  # a retired key in its overlap
    old = set(keys_by_kid(s))
    check_eq(len(old), 2, "keys before")
    s.stop()
    os.rename(os.path.join(s.data_dir, "keys"),
              os.path.join(s.data_dir, "keys.leaked"))
    # A new KEK where the old one was (docs/keys.md's recipe: 32 random
    # bytes as 43 base64url characters and a newline, mode 0600).
    os.unlink(s.data_dir + ".kek")
    fd = os.open(s.data_dir + ".kek", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 0o600)
    os.write(fd, base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=")
             + b"\n")
    os.close(fd)
    s.start()
    keys = keys_by_kid(s)
    check_eq(len(keys), 1, "keys after: %r" % keys)
    new = list(keys)[0]
    check(new not in old, "the new key is new")
    check_eq(list(jwks_pubs(s)), [new], "the JWKS")
    lines = audit_key_lines(s.new_client(auth=None))
    check_eq([line_pub(x) for x in lines], [jwks_pubs(s)[new]],
             "GET /v1/audit/key")
    r = s.post("/v1/accounts", [{"id": "1", "ledger": 1, "code": 1}])
    check_eq(r.status, 200, "writes after the new KEK")
    s.stop()
