"""test_key_rotation.py - keys through a rotation (issue 11, item 6): the
overlap is a request field and a setting (0 for a leaked key stops the
replaced key at once; the default keeps it verifying), the journaled key
event carries the overlap used, GET /v1/audit/key is open to anyone and
lists the current key first, then the older ones newest first; doctor
and /metrics warn before a key stops verifying; a witness follows a
routine rotation through the log's signed announcement, refuses one with
overlap 0 (shown in /metrics and doctor) until its operator gives it the
new key."""

import base64
import calendar
import json
import os
import time

from harness import (e2e_test, check, check_eq, free_port, run_cli,
                     slow_factor)
from ledger import account, create, transfer
import test_witness
from test_witness import EM_DASH, Witness, grow

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


def key_event(s, kid, timeout=10):
    """The decoded journal entry that announced kid, once the audit tree
    (which follows the journal) holds it."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        size = int(s.get("/v1/audit/head").json()["size"])
        for i in range(size - 1, -1, -1):
            d = s.get("/v1/audit/entries/%d?view=decoded"
                      % i).json()["decoded"]
            if d.get("command") == "key" and d["fields"].get("kid") == kid:
                return d
        check(time.monotonic() < deadline,
              "no key event for %s in %d entries" % (kid, size))
        time.sleep(0.05)


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
        # Key times are whole seconds (keys made within one second are
        # ordered by kid): each rotation in a second of its own.
        time.sleep(1.05 - time.time() % 1)
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


def metric(s, series):
    """The value of one series of GET /metrics (None when absent)."""
    for line in s.get("/metrics").body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split(" ", 1)[1])
    return None


def rfc3339_s(text):
    return int(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


@e2e_test(timeout=120)
def test_doctor_and_metrics_warn_before_a_key_stops_verifying(ctx):
    s = ctx.start_server()
    kid0 = current_kid(s)
    doc = run_cli(["doctor", "--data", s.data_dir], timeout=60)
    check("ok    key verifying ends" in doc.stdout or
          "no key stops verifying" in doc.stdout,
          "doctor before any rotation: %s" % doc.stdout)
    check(metric(s, 'tpwallet_key_verify_until_timestamp_seconds'
                 '{purpose="signing",version="%s"}' % kid0) == float("inf"),
          "the current key verifies until a rotation (+Inf)")
    r = s.post("/v1/keys/rotate", {"overlap_s": 3 * 3600})
    kid1 = r.json()["kid"]
    until = rfc3339_s(keys_by_kid(s)[kid0]["expires_at"])
    check_eq(metric(s, 'tpwallet_key_verify_until_timestamp_seconds'
                    '{purpose="signing",version="%s"}' % kid0), until,
             "the replaced key's end in /metrics")
    check(metric(s, 'tpwallet_key_verify_until_timestamp_seconds'
                 '{purpose="signing",version="%s"}' % kid1) == float("inf"),
          "the new key: +Inf")
    doc = run_cli(["doctor", "--data", s.data_dir], timeout=60)
    check_eq(doc.returncode, 0, "doctor exit status (a warning)")
    line = [x for x in doc.stdout.splitlines() if "key verifying ends" in x]
    check_eq(len(line), 1, "one line: %s" % doc.stdout)
    check(line[0].startswith("warn") and kid0[:4] + "..." in line[0]
          and time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until))
          in line[0] and "(in 3 h)" in line[0],
          "the warning names the key and when it stops: %r" % line[0])
    # Past the warning window, no warning.
    doc = run_cli(["doctor", "--data", s.data_dir, "--warn-days", "0"],
                  timeout=60)
    check("no key stops verifying within 0 days" in doc.stdout,
          "--warn-days 0: %s" % doc.stdout)
    # Overlap 0: the key leaves /metrics with the keyring's live keys.
    r = s.post("/v1/keys/rotate", {"overlap_s": 0})
    check_eq(metric(s, 'tpwallet_key_verify_until_timestamp_seconds'
                    '{purpose="signing",version="%s"}' % kid1), None,
             "a key that verifies no more has no series")
    s.stop()


def wait_cosigned(s, want, name, timeout=10):
    """The served checkpoint once it covers want entries and carries
    name's cosignature: its lines."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        note = s.get("/v1/audit/checkpoint").body.decode()
        lines = note.split("\n")
        if (len(lines) > 1 and int(lines[1]) >= want and
                any(x.startswith(EM_DASH + " " + name + " ")
                    for x in lines)):
            return lines
        check(time.monotonic() < deadline,
              "no checkpoint of %d cosigned by %s: %r" % (want, name, note))
        time.sleep(0.05)


def wait_metric(s, series, want, timeout=10):
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        got = metric(s, series)
        if got is not None and want(got):
            return got
        check(time.monotonic() < deadline, "%s: %r" % (series, got))
        time.sleep(0.05)


def entry_after(s, transfer_id):
    """Create transfer transfer_id (1 -> 2, amount 1) and return the
    index of the audit entry that holds it."""
    r = s.request("POST", "/v1/transfers?entry_index=true",
                  body=json.dumps(transfer(transfer_id, 1, 2, 1)).encode(),
                  headers={"Content-Type": "application/json"})
    check_eq(r.status, 201, "create with entry_index=true")
    return int(r.json()["entry_index"])


def restart_witness(w, log_key=None):
    """Stop w and start it again on the port the server knows, with
    --log log_key when given."""
    port = w.port
    w.stop()
    if log_key:
        w.args[w.args.index("--log") + 1] = log_key
    test_witness.free_port = lambda: port
    try:
        w.start()
    finally:
        test_witness.free_port = free_port


@e2e_test(timeout=180)
def test_witness_follows_a_rotation_and_its_refusal_shows(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    k1 = audit_key_lines(s.new_client(auth=None))[0]
    s.stop()
    name = "witness.test/w1"
    w = Witness(ctx, ctx.path("wstate"), name, [k1])
    w.start()
    try:
        s.extra_args = ["--witness", "http://127.0.0.1:%d %s"
                        % (w.port, w.key)]
        s.start()
        anon = s.new_client(auth=None)
        up = 'tpwallet_witness_up{witness="%s"}' % name
        refused = ('tpwallet_witness_refusals_total{witness="%s",'
                   'reason="not_signed_by_log"}' % name)
        grow(s, 100, 1)
        wait_cosigned(s, 2, name)
        wait_metric(s, up, lambda v: v == 1)
        check(metric(s, 'tpwallet_witness_last_cosigned_timestamp_seconds'
                     '{witness="%s"}' % name) > time.time() - 600,
              "last cosigned")
        # A routine rotation: the checkpoints announce the new key under
        # the old one, and the witness follows it.
        r = s.post("/v1/keys/rotate", None)
        check_eq(r.status, 200, "rotate")
        k2 = audit_key_lines(anon)[0]
        check(k2 != k1, "a new key")
        grow(s, 200, 2)
        # The audit head follows the journal in its own thread: the size
        # to wait for is the last write's own entry, not the head now.
        size = entry_after(s, 202) + 1
        lines = wait_cosigned(s, size, name)
        ann = [x for x in lines[3:] if x.startswith("tpwallet-log-key ")]
        check_eq(len(ann), 1, "one announcement: %r" % lines)
        _, index, key = ann[0].split(" ")
        check_eq(key, k2, "the announced key is the current one")
        d = s.get("/v1/audit/entries/%s?view=decoded" % index).json()
        check_eq(d["decoded"].get("command"), "key",
                 "the announcement names the key event: %r" % d)
        origin = lines[0]
        own = [x for x in lines if x.startswith(EM_DASH + " " + origin + " ")]
        check_eq(len(own), 2, "signed by the new and the old key: %r" % lines)
        check_eq(open(ctx.path("wstate", "logkeys")).read(),
                 "%s %s\n" % (k1, k2), "the witness's logkeys")
        check_eq(metric(s, refused), 0, "no refusal through the rotation")
        check_eq(metric(s, up), 1, "the witness is up")
        # Restarted as it was first started (--log k1), it still follows
        # k2 (DATA/logkeys), and cosigns on.
        restart_witness(w)
        grow(s, 250, 1)
        wait_cosigned(s, size + 1, name)
        check_eq(metric(s, refused), 0, "no refusal after the restart")
        # A leaked key (the one the witness follows now): overlap 0.  The
        # witness must not follow that rotation by itself: it refuses.
        r = s.post("/v1/keys/rotate", {"overlap_s": 0})
        k3 = audit_key_lines(anon)[0]
        grow(s, 300, 1)
        wait_metric(s, refused, lambda v: v >= 1)
        wait_metric(s, up, lambda v: v == 0)
        doc = run_cli(["doctor", "--data", s.data_dir], timeout=60)
        line = [x for x in doc.stdout.splitlines()
                if x.startswith("warn") and "witness " + name in x]
        check_eq(len(line), 1, "doctor's witness warning: %s" % doc.stdout)
        check("not_signed_by_log (HTTP 403)" in line[0],
              "the last refusal: %r" % line[0])
        # The one documented command: restart the witness with the key
        # from GET /v1/audit/key (the port the server knows).
        restart_witness(w, k3)
        size = entry_after(s, 400) + 1
        wait_cosigned(s, size, name)
        wait_metric(s, up, lambda v: v == 1)
        doc = run_cli(["doctor", "--data", s.data_dir], timeout=60)
        check("1 cosigning" in doc.stdout, "doctor after: %s" % doc.stdout)
    finally:
        w.stop()
    s.stop()


def without_signature(note, key_line):
    """note with the signature line of key_line's key removed."""
    key_id = bytes.fromhex(key_line.split("+", 2)[1])
    text, sigs = note.split("\n\n", 1)
    kept = [x for x in sigs.split("\n") if x and
            base64.b64decode(x.split(" ")[2])[:4] != key_id]
    check(len(kept) < len([x for x in sigs.split("\n") if x]),
          "no signature of %s in %r" % (key_line, note))
    return text + "\n\n" + "".join(x + "\n" for x in kept)


@e2e_test(timeout=120)
def test_witness_follows_only_an_announcement_the_new_key_signed(ctx):
    """The announcement alone (the new key's signature stripped) is
    cosigned but not followed; a note signed by the new key alone is
    refused; the whole announcement is followed."""
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    anon = s.new_client(auth=None)
    k1 = audit_key_lines(anon)[0]
    check_eq(s.post("/v1/keys/rotate", None).status, 200, "rotate")
    k2 = audit_key_lines(anon)[0]
    grow(s, 100, 1)
    deadline = time.monotonic() + 10 * slow_factor()
    while True:
        note = s.get("/v1/audit/checkpoint").body.decode()
        if "\ntpwallet-log-key " in note:
            break
        check(time.monotonic() < deadline, "no announcement: %r" % note)
        time.sleep(0.05)
    size = int(note.split("\n")[1])
    w = Witness(ctx, ctx.path("wstate"), "witness.test/w2", [k1])
    w.start()
    try:
        logkeys = ctx.path("wstate", "logkeys")
        r = w.add(0, [], without_signature(note, k2))
        check_eq(r.status, 200, "the announcement without k2's signature")
        check(not os.path.exists(logkeys), "followed an unsigned key")
        r = w.add(size, [], without_signature(note, k1))
        check_eq(r.status, 403, "signed by the announced key alone")
        check(not os.path.exists(logkeys), "followed after a 403")
        r = w.add(size, [], note)
        check_eq(r.status, 200, "the whole announcement")
        check_eq(open(logkeys).read(), "%s %s\n" % (k1, k2), "followed")
        # From now on k2 alone is enough, and k1 alone is not.
        r = w.add(size, [], without_signature(note, k1))
        check_eq(r.status, 200, "k2 alone, once followed")
        r = w.add(size, [], without_signature(note, k2))
        check_eq(r.status, 403, "k1 alone, once k2 is followed")
    finally:
        w.stop()
    s.stop()
