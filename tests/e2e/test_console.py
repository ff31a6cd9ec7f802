"""test_console.py - the operator's console (docs/console.md, issue 18).

Served by the binary itself: GET /console and /console/<file> need no
credential, carry a strict Content-Security-Policy and the other page
headers, a strong ETag answered 304, and the media type of each file;
GET /v1/session tells a signed-in page who it is and what it may do.

The browser test (heavy: run once, not under the sanitizers) drives
Debian's chromium with playwright-core and checks accessibility with
axe-core, both pinned in tests/console/package-lock.json and installed by
scripts/npm-deps.sh; nothing is downloaded at test time.  Chromium runs
with --no-sandbox because CI runs as root (its sandbox refuses root).
The Node script tests/console/browser.mjs does the walk; it prints one
JSON line per step, and the screenshots it takes stay in the suite's
temporary directory (console-screenshots/, named in the output).
"""

import json
import os
import shutil
import subprocess

from harness import (e2e_test, check, check_eq, issue_mandate, run_cli,
                     wait_receipt)
from test_openapi import tools_node

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CONSOLE_DIR = os.path.join(ROOT, "console")
TESTS_DIR = os.path.join(ROOT, "tests", "console")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       "img-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
TYPES = {".html": "text/html; charset=utf-8",
         ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml"}


def check_page_headers(r, what):
    check_eq(r.header("content-security-policy"), CSP, what + ": CSP")
    check_eq(r.header("x-content-type-options"), "nosniff", what)
    check_eq(r.header("referrer-policy"), "no-referrer", what)
    check_eq(r.header("x-frame-options"), "DENY", what)
    check_eq(r.header("cache-control"), "no-cache", what)


@e2e_test(timeout=60)
def test_console_files_are_served_without_credential_with_page_headers(ctx):
    srv = ctx.start_server()
    files = sorted(os.listdir(CONSOLE_DIR))
    check("index.html" in files and len(files) >= 3,
          "console/ holds the page and its modules: %r" % files)
    r = srv.get("/console", auth=None)
    check_eq(r.status, 200, "GET /console without credential")
    check_page_headers(r, "/console")
    check_eq(r.header("content-type"), TYPES[".html"], "/console type")
    with open(os.path.join(CONSOLE_DIR, "index.html"), "rb") as f:
        index = f.read()
    check_eq(r.body, index, "/console is console/index.html")
    for name in files:
        with open(os.path.join(CONSOLE_DIR, name), "rb") as f:
            want = f.read()
        r = srv.get("/console/" + name, auth=None)
        check_eq(r.status, 200, name)
        check_eq(r.body, want, name + ": the file's bytes")
        check_eq(r.header("content-type"),
                 TYPES[os.path.splitext(name)[1]], name + ": media type")
        check_page_headers(r, name)
        etag = r.header("etag")
        check(etag and etag.startswith('"') and len(etag) == 34,
              "%s: a strong ETag: %r" % (name, etag))
        r = srv.get("/console/" + name, auth=None,
                    headers={"If-None-Match": etag})
        check_eq(r.status, 304, name + " with its ETag")
        check_eq(r.body, b"", name + ": 304 has no body")
        check_eq(r.header("etag"), etag, name + ": 304 names the ETag")
        r = srv.get("/console/" + name, auth=None,
                    headers={"If-None-Match": '"0123"'})
        check_eq(r.status, 200, name + " with another ETag")
    r = srv.request("HEAD", "/console", auth=None)
    check_eq((r.status, r.body), (200, b""), "HEAD /console")
    r = srv.get("/console/nothere.js", auth=None)
    check_eq(r.status, 404, "a file the console lacks")
    check(r.header("content-security-policy") is None,
          "a problem is no page: %r" % r.headers)
    r = srv.get("/console/", auth=None)
    check_eq((r.status, r.body), (200, index), "/console/ is the page too")
    r = srv.get("/console/Index.html", auth=None)
    check_eq(r.status, 400, "a name outside [0-9a-z./]")
    r = srv.request("POST", "/console", body=b"", auth=None)
    check_eq(r.status, 405, "POST /console")
    check_eq(r.header("allow"), "GET, HEAD", "Allow")


@e2e_test(timeout=60)
def test_session_answers_the_callers_principal_and_right(ctx):
    srv = ctx.start_server()
    r = srv.get("/v1/session", auth=None)
    check_eq(r.status, 401, "no credential")
    r = srv.get("/v1/session")
    check_eq(r.status, 200, "the administrator's token")
    s = r.json()
    check_eq(s["credential"], "bearer", "credential")
    check_eq(s["right"], {"ops": ["*"]}, "the administrator's right")
    check_eq(s["principal"], s["root"], "the administrator is its root")
    check_eq((s["root_admin"], s["role"], s["expires"]), (True, None, None),
             "root_admin, role, expires")
    base = srv.cli_args()
    key = ctx.path("reader.jwk")
    r = run_cli(["principal", "create", "--name", "reader", "--key-out",
                 key] + base)
    check_eq(r.returncode, 0, "principal create: %s" % r.stderr)
    m = issue_mandate(ctx.path("reader.txt"),
                      os.path.join(srv.data_dir, "admin.jwk"), key,
                      ["accounts:read"], ["77"])
    r = run_cli(["call", "--key", key, "--mandate", m] + base +
                ["GET", "/v1/session"])
    check_eq(r.returncode, 0, "session with a mandate: %s" % r.stderr)
    s2 = json.loads(r.stdout)
    check_eq(s2["credential"], "mandate", "credential")
    check_eq(s2["right"], {"ops": ["accounts:read"], "accounts": ["77"]},
             "the mandate's right")
    check_eq(s2["root"], s["principal"], "rooted at the administrator")
    check(s2["principal"] != s2["root"], "the delegate acts: %r" % s2)
    check(isinstance(s2["expires"], int) and s2["expires"] > 0,
          "a mandate expires: %r" % s2)


XSS = "<img src=x onerror=alert(1)>"
BROWSER_STEPS = [
    "first load", "axe sign-in", "sign in by keyboard", "overview",
    "axe overview", "operator text is text", "blocked users", "countdown",
    "axe policy", "end override by keyboard", "extend override",
    "editor lints", "impact warning",
    "verify receipt", "audit entries", "axe audit",
    "page through transfers", "axe ledger", "phone width",
    "pages follow the right", "no page errors", "screenshots"]


def browser_scenario(ctx, srv):
    """What the browser walk finds: a policy, 20 active users its
    blocking successor would block, two overrides (one with an operator's
    reason that is HTML), an account with 25 transfers and a receipt."""
    import datetime
    r = srv.request("PUT", "/v1/client-policy?reason=console+test", body={
        "platforms": {"android": {"min_supported": "4.0.0",
                                  "blocked": ["3.x"]}}})
    check_eq(r.status, 201, "policy: %r" % r)
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    r = srv.post("/v1/client-policy/activity", {"observations": [
        {"day": day, "platform": "android", "version": "4.0.1",
         "user": "u%d" % i} for i in range(20)]})
    check_eq(r.status, 200, "activity: %r" % r)
    ids = []
    for rng, reason in (("3.x", XSS), ("3.9.x", "INC-7: login loop")):
        r = srv.post("/v1/client-policy/overrides", {
            "platform": "android", "range": rng, "mode": "compat",
            "duration_s": 1800, "reason": reason,
            "message": {"default": "<b>we are on it</b>"}})
        check_eq(r.status, 201, "override: %r" % r)
        ids.append(r.json()["id"])
    r = srv.post("/v1/accounts", [{"id": "7", "ledger": 1, "code": 1},
                                  {"id": "8", "ledger": 1, "code": 1}])
    check_eq(r.status, 200, "accounts: %r" % r)
    transfers = [str(5001 + i) for i in range(25)]
    r = srv.post("/v1/transfers", [
        {"id": t, "debit_account_id": "7", "credit_account_id": "8",
         "amount": "3", "ledger": 1, "code": 1} for t in transfers])
    check_eq(r.status, 200, "transfers: %r" % r)
    check_eq(wait_receipt(srv, "/v1/transfers/5001/receipt").status, 200,
             "the receipt is served")
    return {"xss_override": ids[0], "xss_reason": XSS,
            "end_override": ids[1], "policy_version": 1,
            "blocking_document": {"platforms": {"android": {
                "min_supported": "4.1.0", "blocked": ["3.x"]}}},
            "receipt_transfer": "5001", "account": "7",
            # android: 20 active users, none refused yet (7 days)
            "blocked_row": ["android", "20", "0", "0", "7"],
            "transfer_ids": transfers}


def run_browser(ctx, srv, scenario):
    """tests/console/browser.mjs against srv: its steps, by name."""
    tools_node()  # installs tests/tools and tests/console
    chromium = shutil.which("chromium")
    check(chromium is not None, "Debian's chromium is needed: run "
          "`make deps` (scripts/deps.sh installs it)")
    # Beside the test's own directory, in the suite's: the runner removes
    # a passed test's directory, and the screenshots are to be looked at.
    shots = os.path.join(os.path.dirname(ctx.dir), "console-screenshots")
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    p = subprocess.run(
        ["node", os.path.join(TESTS_DIR, "browser.mjs"),
         "http://127.0.0.1:%d" % srv.port,
         os.path.join(srv.data_dir, "admin.token"), shots,
         json.dumps(scenario)],
        capture_output=True, text=True, timeout=150,
        env=dict(os.environ, CHROMIUM=chromium))
    steps = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            s = json.loads(line)
            steps[s["step"]] = s
    check("run" not in steps, "the browser run failed: %r (stderr %s)"
          % (steps.get("run"), p.stderr[-2000:]))
    check_eq(p.returncode, 0, "browser.mjs: %s" % p.stderr[-2000:])
    return steps, shots


@e2e_test(timeout=240, heavy=True)
def test_console_in_a_browser_signs_in_ends_an_override_verifies_pages(ctx):
    srv = ctx.start_server()
    srv.require_admin_token()
    steps, shots = run_browser(ctx, srv, browser_scenario(ctx, srv))
    check_eq(sorted(steps), sorted(BROWSER_STEPS), "the steps run")
    bad = {k: v for k, v in steps.items() if not v["ok"]}
    check_eq(bad, {}, "failed browser steps")
    load = steps["first load"]
    ctx.note("console first load: %d bytes, interactive in %d ms; "
             "screenshots in %s" % (load["bytes"], load["interactive_ms"],
                                    shots))
    check(sorted(os.listdir(shots)) == sorted(
        ["overview.png", "policy.png", "policy-impact.png", "audit.png",
         "ledger.png", "overview-phone.png"]),
        "screenshots: %r" % os.listdir(shots))


@e2e_test(timeout=60)
def test_console_receipt_check_passes_the_served_receipt_and_no_change(ctx):
    """console/verify.js, the console's "verify this receipt", on a
    transfer's receipt from the server and on copies with one thing
    changed (tests/console/verify_check.mjs): only the receipt as served
    verifies, and it proves the transfer asked for."""
    srv = ctx.start_server()
    r = srv.post("/v1/accounts", [{"id": "1", "ledger": 1, "code": 1},
                                  {"id": "2", "ledger": 1, "code": 1}])
    check_eq(r.status, 200, "accounts: %r" % r)
    r = srv.post("/v1/transfers", [
        {"id": str(900 + i), "debit_account_id": "1",
         "credit_account_id": "2", "amount": "1", "ledger": 1, "code": 1}
        for i in range(40)])
    check_eq(r.status, 200, "transfers: %r" % r)
    r = wait_receipt(srv, "/v1/transfers/935/receipt")
    check_eq(r.status, 200, "receipt: %r" % r)
    receipt = r.json()
    check(len(receipt["chunk"]) == 8 and receipt["event_index"] == "35",
          "event 35 of 40: the second chunk, of 8: %r" % receipt)
    with open(ctx.path("receipt.json"), "wb") as f:
        f.write(r.body)
    r = srv.get("/v1/audit/key")
    check_eq(r.status, 200, "audit key")
    with open(ctx.path("key.txt"), "wb") as f:
        f.write(r.body)
    node = shutil.which("node")
    check(node is not None, "node is needed: run `make deps`")
    p = subprocess.run([node, os.path.join(TESTS_DIR, "verify_check.mjs"),
                        ctx.path("receipt.json"), ctx.path("key.txt")],
                       capture_output=True, text=True, timeout=30)
    check_eq(p.returncode, 0, "verify_check.mjs: %s" % p.stderr)
    check_eq(json.loads(p.stdout), {
        "as_served": True, "proven_id": "935", "event_changed": False,
        "other_chunk_hash": False, "header_seq": False, "leaf_hash": False,
        "proof_step": False, "proof_shorter": False, "other_index": False,
        "root": False, "checkpoint_root": False,
        "checkpoint_signature": False, "other_key": False}, "what verifies")
