"""test_authz_limits.py - what anonymous callers cannot do.

A revocation statement needs no credential, so it must come from a key
the server knows: an unregistered key's statement is refused (403
unknown-revoker) and writes nothing to the journal; a repeated
revocation is answered without a journal entry; the routes that read
small JSON objects refuse a large Content-Length before reading (413),
so anonymous requests cannot fill the shared body budget; and requests
that do not authenticate are never counted in the client-version
activity that impact figures come from.
"""

import json
import os
import socket

from harness import e2e_test, check, check_eq, run_cli
import journal


def journal_size(srv):
    """Records in the journal on disk: a write is there (synced) before
    its reply, so the count is exact once the replies are in (the audit
    head would lag behind it)."""
    return len(journal.all_records(srv.data_dir))


@e2e_test(timeout=90)
def test_anonymous_revocations_come_only_from_known_keys(ctx):
    srv = ctx.start_server()
    base = srv.cli_args()
    stranger = os.path.join(ctx.dir, "stranger.jwk")
    r = run_cli(["principal", "create", "--name", "stranger", "--no-register",
                 "--key-out", stranger] + base)
    check(r.returncode == 0, "principal create: %s" % r.stderr)
    stranger_id = r.stdout.strip().splitlines()[-1]
    before = journal_size(srv)
    r = run_cli(["delegate", "revoke", "--key", stranger, "--jti", "abc"]
                + base)
    check(r.returncode == 1 and "403" in r.stderr and
          "unknown-revoker" in r.stderr, "stranger: %s" % r.stderr)
    r = run_cli(["delegate", "revoke", "--key", stranger, "--all"] + base)
    check("unknown-revoker" in r.stderr, "stranger --all: %s" % r.stderr)

    # the same key, registered, may revoke what it signed; twice is
    # answered from the state, without a second journal entry
    r = run_cli(["principal", "register", stranger] + base)
    check(r.returncode == 0, "register: %s" % r.stderr)
    r = run_cli(["delegate", "revoke", "--key", stranger, "--jti", "abc"]
                + base)
    check(r.returncode == 0 and '"revoked"' in r.stdout,
          "registered: %s %s" % (r.stdout, r.stderr))
    r = run_cli(["delegate", "revoke", "--key", stranger, "--jti", "abc"]
                + base)
    check(r.returncode == 0 and "already_revoked" in r.stdout,
          "again: %s %s" % (r.stdout, r.stderr))
    r = srv.get("/v1/revocations/abc")
    doc = json.loads(r.body)
    check_eq(doc["status"], "revoked", "status")
    check_eq(len(doc["revocations"]), 1, "one revocation, not two")
    # one link is (issuer, jti): another issuer's "abc" is good
    r = srv.get("/v1/revocations/abc?iss=" + stranger_id)
    check_eq(json.loads(r.body)["status"], "revoked", "that issuer's link")
    r = srv.get("/v1/revocations/abc?iss=" + "A" * 43)
    check_eq(json.loads(r.body)["status"], "good", "another issuer's link")
    r = srv.get("/v1/revocations/abc?iss=nope")
    check_eq(r.status, 400, "a malformed issuer")
    # register + revoke: two entries; the refused and repeated ones none
    check_eq(journal_size(srv), before + 2,
             "journal entries: only the registration and one revocation")


@e2e_test(timeout=60)
def test_small_json_routes_refuse_large_bodies_unread(ctx):
    srv = ctx.start_server()
    # a revocation statement needs no credential: its size refuses it;
    # the others refuse the missing credential first
    for path, want in (("/v1/revocations", b"413"),
                       ("/v1/principals", b"401"),
                       ("/v1/client-policy/overrides", b"401")):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/json\r\n"
                    "Content-Length: 1048576\r\n\r\n" % path).encode()
            s.sendall(head)
            data = s.recv(4096)
        finally:
            s.close()
        status = data.split(b" ", 2)[1] if data else b""
        # refused at the headers, the body never read
        check(status == want, "%s: %r" % (path, data[:120]))
    # with the administrator's credential the size is what refuses
    r = srv.request("POST", "/v1/principals", body=b"{" + b" " * 20000 + b"}",
                    headers={"Content-Type": "application/json"})
    check_eq(r.status, 413, "16 KiB limit on /v1/principals")


@e2e_test(timeout=60)
def test_unauthenticated_requests_are_not_counted_as_activity(ctx):
    srv = ctx.start_server()
    policy = {"platforms": {"android": {"min_supported": "1.0.0"}}}
    r = srv.request("PUT", "/v1/client-policy",
                    body=json.dumps(policy).encode(),
                    headers={"Content-Type": "application/json"})
    check(r.status == 201, "policy: %d %r" % (r.status, r.body[:200]))

    def actives():
        r = srv.get("/v1/client-policy/impact?platform=android"
                    "&min_supported=2.0.0")
        return json.loads(r.body)["actives"]

    check_eq(actives(), 0, "nobody yet")
    for i in range(5):
        r = srv.request("GET", "/v1/keys", auth=None,
                        headers={"X-Client-Version": "android/1.5.0",
                                 "X-Client-User": "anon-%d" % i})
        check_eq(r.status, 401, "anonymous")
    check_eq(actives(), 0, "anonymous requests are not counted")
    # a platform the policy does not name is not counted either
    r = srv.request("GET", "/v1/keys",
                    headers={"X-Client-Version": "tizen/1.0.0",
                             "X-Client-User": "u-tizen"})
    check_eq(r.status, 200, "unknown platform allowed")
    r = srv.request("GET", "/v1/keys",
                    headers={"X-Client-Version": "android/1.5.0",
                             "X-Client-User": "u1"})
    check_eq(r.status, 200, "authenticated")
    check_eq(actives(), 1, "the authenticated one is counted")


def jws_claims(text):
    import base64
    payload = text.strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@e2e_test(timeout=120)
def test_revocation_list_is_signed_in_pages(ctx):
    srv = ctx.start_server()
    iss = "A" * 43  # the plain form names any issuer
    for i in range(2001):
        r = srv.post("/v1/revocations", {"iss": iss, "jti": "r%d" % i})
        check(r.status == 201, "revocation %d: %d" % (i, r.status))
    first = jws_claims(srv.get("/v1/revocations").body.decode())
    check_eq(first["seq"], 2001, "seq counts them all")
    check_eq(first["from"], 0, "first page")
    check_eq(len(first["revoked"]), 2000, "a full page")
    check_eq(first["next"], 2000, "where the next page starts")
    check_eq(first["revoked"][0]["jti"], "r0", "journal order")
    last = jws_claims(srv.get("/v1/revocations?from=2000").body.decode())
    check_eq(last["from"], 2000, "second page")
    check_eq([x["jti"] for x in last["revoked"]], ["r2000"], "the rest")
    check("next" not in last, "no page after the last")
    r = srv.get("/v1/revocations?from=2002")
    check_eq(r.status, 400, "past the end")
