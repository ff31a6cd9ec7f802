"""test_authz_routes.py - every /v1 route checks the right it documents.

For each route of the table in docs/api.md ("Authorization"), a mandate
rooted at the administrator that holds every operation but the route's
own is refused (GET /v1/audit/key is open to anyone: test_key_rotation.py) with 403 op_not_allowed, and one that holds only the
route's operation gets the route's own answer (the status in the
table: the requests run in this order, so each one's answer is fixed;
POST /v1/principals answers 200 "exists" because `principal create`
registered the device already).  The signed manifest needs no
particular operation: a mandate with an unrelated one reads it.  A
route missing from the server's
table, or checking another operation, fails here.  Requests are made with the CLI (`tpwallet call`), which
signs a fresh DPoP proof for each.
"""

import json
import time
import os

from harness import (e2e_test, check, check_eq, issue_mandate, run_cli,
                     wait_receipt)

OPS = ["accounts:create", "accounts:read", "transfers:create",
       "transfers:post_void", "transfers:read", "principals:read",
       "principals:admin", "keys:read", "keys:rotate", "revocations:read",
       "revoke", "audit:read", "policy:read", "policy:admin",
       "vault:tokenize", "vault:reveal", "vault:erase", "vault:admin"]

POLICY = json.dumps({"platforms": {"android": {"min_supported": "1.0.0"}}})


def routes(principal_id, jwk):
    transfer = json.dumps({"id": "7001", "debit_account_id": "1",
                           "credit_account_id": "2", "amount": "1",
                           "ledger": 1, "code": 1})
    return [
        ("POST", "/v1/accounts", '[{"id":"7900","ledger":1,"code":1}]',
         "accounts:create", 200),
        ("POST", "/v1/transfers", transfer, "transfers:create", 201),
        ("GET", "/v1/accounts/1", None, "accounts:read", 200),
        ("GET", "/v1/accounts/1/transfers", None, "accounts:read", 200),
        ("GET", "/v1/accounts/1/balances", None, "accounts:read", 200),
        ("GET", "/v1/accounts/1/receipt", None, "accounts:read", 200),
        ("GET", "/v1/transfers/100", None, "transfers:read", 200),
        ("GET", "/v1/transfers/100/receipt", None, "transfers:read", 200),
        ("GET", "/v1/audit/head", None, "audit:read", 200),
        ("GET", "/v1/audit/checkpoint", None, "audit:read", 200),
        ("POST", "/v1/audit/checkpoint", None, "audit:read", 202),
        ("GET", "/v1/audit/entries/0", None, "audit:read", 200),
        ("GET", "/v1/audit/proof/inclusion?index=0&size=1", None,
         "audit:read", 200),
        ("GET", "/v1/audit/proof/consistency?from=1&to=2", None,
         "audit:read", 200),
        ("GET", "/v1/principals", None, "principals:read", 200),
        ("GET", "/v1/principals/" + principal_id, None,
         "principals:read", 200),
        ("POST", "/v1/principals", json.dumps({"jwk": jwk}),
         "principals:admin", 200),
        ("GET", "/v1/keys", None, "keys:read", 200),
        ("POST", "/v1/keys/rotate", "{}", "keys:rotate", 200),
        ("GET", "/v1/revocations", None, "revocations:read", 200),
        ("GET", "/v1/revocations/nothing", None, "revocations:read", 200),
        ("POST", "/v1/revocations",
         json.dumps({"iss": principal_id, "jti": "never-issued"}),
         "revoke", 201),
        ("PUT", "/v1/client-policy", POLICY, "policy:admin", 201),
        # The signed manifest: any principal, whatever its right (None).
        ("GET", "/v1/client-policy?platform=android", None, None, 200),
        ("GET", "/v1/client-policy/current", None, "policy:read", 200),
        ("GET", "/v1/client-policy/versions", None, "policy:read", 200),
        ("GET", "/v1/client-policy/versions/1", None, "policy:read", 200),
        ("GET", "/v1/client-policy/diff?from=1&to=1", None,
         "policy:read", 200),
        ("GET", "/v1/client-policy/evaluate?platform=android", None,
         "policy:read", 200),
        ("GET", "/v1/client-policy/overrides", None, "policy:read", 200),
        ("POST", "/v1/client-policy/overrides",
         json.dumps({"platform": "android", "range": "0.x",
                     "mode": "allow", "duration_s": 60,
                     "reason": "route test"}), "policy:admin", 201),
        ("GET", "/v1/client-policy/overrides/1", None, "policy:read", 200),
        ("POST", "/v1/client-policy/overrides/1/extend",
         json.dumps({"duration_s": 120}), "policy:admin", 200),
        ("DELETE", "/v1/client-policy/overrides/1", None, "policy:admin", 200),
        ("GET", "/v1/client-policy/impact?platform=android"
         "&min_supported=2.0.0", None, "policy:read", 200),
        ("POST", "/v1/client-policy/rollback", '{"version":1}',
         "policy:admin", 200),
        # version 1 reverted on top of itself is the empty document,
        # not a valid policy: 422 once past the rights check
        ("POST", "/v1/client-policy/revert", '{"version":1}',
         "policy:admin", 422),
        ("POST", "/v1/client-policy/activity", '{"observations":[]}',
         "policy:admin", 200),
        ("POST", "/v1/vault/cards",
         json.dumps({"pan": "4111111111111111", "exp_month": 12,
                     "exp_year": time.gmtime().tm_year + 1}),
         "vault:tokenize", 201),
        # an unknown token: 404 once past the rights check
        ("POST", "/v1/vault/cards/tok_none/reveal",
         '{"reason":"route test"}', "vault:reveal", 404),
        ("POST", "/v1/vault/cards/tok_none/erase",
         '{"reason":"route test"}', "vault:erase", 404),
        ("POST", "/v1/vault/keys/rotate", "{}", "vault:admin", 200),
        # Named administrators (docs/authz.md): the device gets a role
        # without principals:admin, so no security officer exists and
        # the retirement is refused once past the rights check; no
        # request exists; a decision needs a named administrator's
        # mandate, not one the bootstrap key signed.
        ("POST", "/v1/admin/roles",
         json.dumps({"principal": principal_id, "role": "support"}),
         "principals:admin", 200),
        ("POST", "/v1/admin/bootstrap/retire", None, "principals:admin",
         409),
        ("GET", "/v1/admin/requests", None, "policy:read", 200),
        ("GET", "/v1/admin/requests/1", None, "policy:read", 404),
        # A decision: the decided operation's right, either of two (a
        # policy set's policy:admin, a role's principals:admin too),
        # checked before the request is looked up.
        ("POST", "/v1/admin/requests/1/approve", None,
         ("policy:admin", "principals:admin"), 403),
        ("POST", "/v1/admin/requests/1/reject", None,
         ("policy:admin", "principals:admin"), 403),
        ("POST", "/v1/admin/requests/1/break-glass",
         '{"reason":"route test"}', ("policy:admin", "principals:admin"),
         403),
    ]


def status_of(r):
    """The HTTP status `tpwallet call -v` printed on stderr."""
    for line in r.stderr.splitlines():
        if line.startswith("HTTP/1."):
            return int(line.split()[1])
    raise AssertionError("no status line: %r" % r.stderr[-300:])


@e2e_test(timeout=240)
def test_every_v1_route_checks_its_documented_right(ctx):
    srv = ctx.start_server()
    data = srv.data_dir
    base = srv.cli_args()
    r = srv.post("/v1/accounts", [{"id": "1", "ledger": 1, "code": 1},
                                  {"id": "2", "ledger": 1, "code": 1}])
    check(r.status == 200, "accounts: %d" % r.status)
    r = srv.post("/v1/transfers", {"id": "100", "debit_account_id": "1",
                                   "credit_account_id": "2", "amount": "5",
                                   "ledger": 1, "code": 1})
    check(r.status == 201, "transfer: %d" % r.status)
    # receipts need a signed checkpoint that covers the transfer
    check_eq(wait_receipt(srv, "/v1/transfers/100/receipt").status, 200,
             "the receipt of 100")

    dev = os.path.join(ctx.dir, "device.jwk")
    r = run_cli(["principal", "create", "--name", "device", "--key-out",
                 dev] + base)
    check(r.returncode == 0, "principal create: %s" % r.stderr)
    principal_id = r.stdout.strip().splitlines()[-1]
    with open(dev) as f:
        jwk = {k: v for k, v in json.load(f).items() if k != "d"}

    def mandate(name, ops):
        return issue_mandate(os.path.join(ctx.dir, name),
                             os.path.join(data, "admin.jwk"), dev, ops)

    def call(m, method, path, body):
        args = ["call", "-v", "--key", dev, "--mandate", m] + base + \
            [method, path]
        if body is not None:
            args.append(body)
        return run_cli(args)

    table = routes(principal_id, jwk)
    check(len({(m, p.split("?")[0]) for m, p, _, _, _ in table}) ==
          len(table),
          "the table lists each route once")
    for method, path, body, op, want in table:
        if op is None:  # any valid credential: one with an unrelated op
            r = call(mandate("any-principal", ["transfers:read"]), method,
                     path, body)
            st = status_of(r)
            check(st == want, "%s %s with any right: want %d, got %d %s"
                  % (method, path, want, st, r.stderr.strip()[-200:]))
            continue
        # op: the right, or a tuple of rights any one of which will do.
        ops = op if isinstance(op, tuple) else (op,)
        tag = "_".join(o.replace(":", "_") for o in ops)
        without = mandate("without-" + tag, [o for o in OPS if o not in ops])
        r = call(without, method, path, body)
        st = status_of(r)
        check(st == 403 and "op-not-allowed" in r.stderr,
              "%s %s without %s: want 403 op_not_allowed, got %d %s"
              % (method, path, op, st, r.stderr.strip()[-200:]))
        for one in ops:
            only = mandate("only-" + one.replace(":", "_"), [one])
            r = call(only, method, path, body)
            st = status_of(r)
            check(st == want, "%s %s with only %s: want %d, got %d %s"
                  % (method, path, one, want, st, r.stderr.strip()[-200:]))
    # One route, two rights: posting a pending transfer needs
    # transfers:post_void, creating one transfers:create.
    r = srv.post("/v1/transfers", {"id": "101", "debit_account_id": "1",
                                   "credit_account_id": "2", "amount": "5",
                                   "ledger": 1, "code": 1,
                                   "flags": ["pending"], "timeout": 3600})
    check(r.status == 201, "pending transfer: %d" % r.status)
    post = json.dumps({"id": "102", "pending_id": "101",
                       "flags": ["post_pending_transfer"]})
    r = call(mandate("create-only", ["transfers:create"]), "POST",
             "/v1/transfers", post)
    check(status_of(r) == 403 and "op-not-allowed" in r.stderr,
          "post with transfers:create only: %s" % r.stderr.strip())
    r = call(mandate("post-void-only", ["transfers:post_void"]), "POST",
             "/v1/transfers", post)
    check_eq(status_of(r), 201, "post with transfers:post_void")
    ctx.note("%d routes: each refused without its right, let through "
             "with it alone; post/void needs its own right" % len(table))
