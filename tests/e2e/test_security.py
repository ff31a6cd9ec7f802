"""test_security.py - issue 9's findings about what a credential may do,
each reproduced as the outside attack did it (docs/security.md lists them).

"A till" is a key holding only transfers:create (and here post_void) on
account 10, delegated by the principal who owns account 10; every call
it makes goes through `tpwallet call --key till --mandate ...`, the
documented client, so the tests use the interfaces an attacker has.
"""

import json
import os

from harness import (e2e_test, check, check_eq, issue_mandate, run_cli,
                     wait_audit_size)
import journal
from ledger import transfer


class Tenants:
    """A server with two tenants: `merchant` owns account 10 (and 11),
    the administrator owns 20 and 21.  `till` holds a mandate from the
    merchant over account 10 only."""

    def __init__(self, ctx, ops=("transfers:create", "transfers:post_void"),
                 accounts=("10",), srv=None):
        self.ctx = ctx
        self.srv = srv or ctx.start_server()
        self.base = self.srv.cli_args()
        self.merchant = os.path.join(ctx.dir, "merchant.jwk")
        self.till = os.path.join(ctx.dir, "till.jwk")
        r = self.cli("principal", "create", "--name", "merchant",
                     "--key-out", self.merchant)
        self.merchant_id = r.stdout.strip().splitlines()[-1]
        self.cli("principal", "create", "--name", "till", "--no-register",
                 "--key-out", self.till)
        self.cli("call", "POST", "/v1/accounts?owner=" + self.merchant_id,
                 '[{"id":"10","ledger":1,"code":1},'
                 '{"id":"11","ledger":1,"code":1}]')
        self.cli("call", "POST", "/v1/accounts",
                 '[{"id":"20","ledger":1,"code":1},'
                 '{"id":"21","ledger":1,"code":1}]')
        self.mandate = self.issue("mandate.txt", ops, accounts)

    def cli(self, *args, ok=True):
        args = list(args)
        if args[0] == "call":
            args = args[:1] + self.base + args[1:]
        elif args[:2] != ["delegate", "issue"]:
            args = args + self.base
        r = run_cli(args)
        if ok:
            check(r.returncode == 0, "tpwallet %s: %s %s"
                  % (" ".join(args[:3]), r.stdout, r.stderr))
        return r

    def issue(self, name, ops, accounts, key=None, to=None):
        return issue_mandate(os.path.join(self.ctx.dir, name),
                             key or self.merchant, to or self.till, ops,
                             accounts)

    def as_till(self, method, path, body=None, mandate=None):
        args = ["call", "--key", self.till, "--mandate",
                mandate or self.mandate, method, path]
        if body is not None:
            args.append(json.dumps(body))
        return self.cli(*args, ok=False)

    def admin(self, method, path, body=None):
        args = ["call", method, path]
        if body is not None:
            args.append(json.dumps(body))
        r = self.cli(*args)
        return json.loads(r.stdout)

    def admin_cli(self, method, path, body=None):
        return self.cli("call", method, path, json.dumps(body), ok=False)

    def account(self, id):
        return self.admin("GET", "/v1/accounts/%s" % id)


def tr(id, debit, credit, amount, flags=(), **kw):
    """A transfer on ledger 1, code 1, its flags the fifth argument."""
    return transfer(id, debit, credit, amount, flags=flags, **kw)


def check_refused_403(r, what, problem="account-not-allowed"):
    check(r.returncode == 1 and "403" in r.stderr and problem in r.stderr,
          "%s: expected 403 %s, got rc %d: %s %s"
          % (what, problem, r.returncode, r.stdout, r.stderr))


def created(r, what):
    check(r.returncode == 0, "%s: %s %s" % (what, r.stdout, r.stderr))
    res = json.loads(r.stdout)
    check_eq(res.get("status"), "created", what)


# -- finding 1: a till that could close any account -------------------------

@e2e_test(timeout=120)
def test_a_till_cannot_close_or_probe_someone_elses_account(ctx):
    t = Tenants(ctx)
    # the attack: a zero-amount pending transfer that closes the credit side
    r = t.as_till("POST", "/v1/transfers",
                  tr(100, 10, 20, 0, ["pending", "closing_credit"]))
    check_refused_403(r, "closing_credit on another tenant's account")
    check_eq(t.account(20)["flags"], [], "account 20 is still open")
    res = t.admin("POST", "/v1/transfers", tr(101, 21, 20, 5))
    check_eq(res.get("status"), "created", "a payment into 20 still works")
    # balancing_credit would cut the amount to 20's balance: a probe
    r = t.as_till("POST", "/v1/transfers",
                  tr(102, 10, 20, 1000, ["balancing_credit"]))
    check_refused_403(r, "balancing_credit against another tenant")
    # what stays allowed: moving money out of its own account, closing it
    created(t.as_till("POST", "/v1/transfers", tr(103, 10, 20, 7)),
            "a plain payment")
    created(t.as_till("POST", "/v1/transfers",
                      tr(104, 10, 20, 0, ["pending", "closing_debit"])),
            "closing its own account")
    check_eq(t.account(10)["flags"], ["closed"], "account 10 closed")
    created(t.as_till("POST", "/v1/transfers",
                      tr(105, 0, 0, 0, ["void_pending_transfer"],
                         pending_id="104", ledger=0, code=0)),
            "reopening it")
    check_eq(t.account(10)["flags"], [], "account 10 reopened")



@e2e_test(timeout=120)
def test_a_till_can_neither_probe_nor_saturate_another_accounts_credits(ctx):
    # the fresh review: amounts near 2^128 to another tenant's account
    # told its credits by overflow (a binary search, nothing moved), or
    # pushed them so high that every later payment to it overflowed
    t = Tenants(ctx)
    created(t.admin_cli("POST", "/v1/transfers", tr(1, 21, 20, 100000)),
            "account 20 holds 100000")
    top = 2 ** 128 - 1
    for flags in ([], ["pending"]):
        r = t.as_till("POST", "/v1/transfers",
                      tr(200, 10, 20, top - 50000, flags))
        check_refused_403(r, "an overflow probe %s" % flags,
                          "foreign-amount-too-large")
    r = t.as_till("POST", "/v1/transfers", tr(201, 10, 20, top - 1))
    check_refused_403(r, "saturating 20's credits", "foreign-amount-too-large")
    res = t.admin("POST", "/v1/transfers", tr(202, 21, 20, 5))
    check_eq(res.get("status"), "created", "a payment into 20 still works")
    check_eq(t.account(20)["credits_posted"], "100005", "20's credits")
    # what stays allowed: up to 2^64-1 to someone else, anything between
    # accounts the right holds
    created(t.as_till("POST", "/v1/transfers", tr(203, 10, 20, 2 ** 64 - 1)),
            "2^64-1 to another tenant")
    both = t.issue("both.txt", ("transfers:create",), ("10", "11"))
    created(t.as_till("POST", "/v1/transfers", tr(204, 10, 11, 2 ** 100),
                      mandate=both), "2^100 between its own accounts")



@e2e_test(timeout=120)
def test_a_retry_under_a_used_up_mandate_answers_exists(ctx):
    # the fresh review: the reply of a transfer was lost, the client
    # retried it and was told 403 uses-exceeded, so it would pay again
    t = Tenants(ctx)
    path = os.path.join(ctx.dir, "once.txt")
    issue_mandate(path, t.merchant, t.till, ["transfers:create"], ["10"],
                  extra=["--uses", "1", "--total-cap", "50"])
    created(t.as_till("POST", "/v1/transfers", tr(300, 10, 20, 50),
                      mandate=path), "the one use")
    for attempt in (1, 2):
        r = t.as_till("POST", "/v1/transfers", tr(300, 10, 20, 50),
                      mandate=path)
        check(r.returncode == 0, "retry %d: %s %s"
              % (attempt, r.stdout, r.stderr))
        check_eq(json.loads(r.stdout).get("status"), "exists",
                 "retry %d of the acknowledged transfer" % attempt)
    # a new transfer is still refused, and so is a retry with it
    r = t.as_till("POST", "/v1/transfers", tr(301, 10, 20, 1), mandate=path)
    check_refused_403(r, "a second use", "total-cap-exceeded")
    check_eq(t.account(20)["credits_posted"], "50", "one payment moved")


@e2e_test(timeout=120)
def test_posting_and_voiding_need_the_right_over_what_they_touch(ctx):
    t = Tenants(ctx)
    # the administrator holds 21 -> 10 pending: the payee may refuse it
    res = t.admin("POST", "/v1/transfers", tr(200, 21, 10, 50, ["pending"]))
    check_eq(res["status"], "created", "pending into the till's account")
    r = t.as_till("POST", "/v1/transfers",
                  tr(201, 0, 0, 0, ["post_pending_transfer"],
                     pending_id="200", ledger=0, code=0))
    check_refused_403(r, "the payee posting a payment to itself")
    created(t.as_till("POST", "/v1/transfers",
                      tr(202, 0, 0, 0, ["void_pending_transfer"],
                         pending_id="200", ledger=0, code=0)),
            "the payee refusing it")
    check_eq(t.account(21)["debits_pending"], "0", "the hold released")
    # the administrator closes account 10 with a pending transfer from
    # 21: the till may not undo that closing, neither way
    res = t.admin("POST", "/v1/transfers",
                  tr(203, 21, 10, 0, ["pending", "closing_credit"]))
    check_eq(res["status"], "created", "the administrator closes 10")
    for i, flag in enumerate(("void_pending_transfer",
                              "post_pending_transfer")):
        r = t.as_till("POST", "/v1/transfers",
                      tr(204 + i, 0, 0, 0, [flag], pending_id="203",
                         ledger=0, code=0))
        check_refused_403(r, "%s of a closing made by someone else" % flag)
    check_eq(t.account(10)["flags"], ["closed"], "10 stays closed")
    # someone else's pending between two other accounts: as unknown
    res = t.admin("POST", "/v1/transfers", tr(206, 21, 20, 9, ["pending"]))
    r = t.as_till("POST", "/v1/transfers",
                  tr(207, 10, 0, 0, ["void_pending_transfer"],
                     pending_id="206", ledger=0, code=0))
    check_refused_403(r, "voiding a pending between two other accounts")
    r = t.as_till("POST", "/v1/transfers",
                  tr(208, 10, 0, 0, ["void_pending_transfer"],
                     pending_id="999", ledger=0, code=0))
    check_refused_403(r, "voiding a pending that does not exist")


# -- finding 5: the revocation table filled by minting child keys -----------

@e2e_test(timeout=120)
def test_minted_child_keys_share_their_root_principals_revocation_quota(ctx):
    srv = ctx.start_server(env={"TPWALLET_REVOCATIONS_PER_PRINCIPAL": "3"})
    t = Tenants(ctx, ops=("accounts:read",), srv=srv)
    outcomes = []
    # the attack: the till mints a fresh child key for every statement,
    # and each child revokes a made-up link with its own chain
    for i in range(5):
        child = os.path.join(ctx.dir, "child%d.jwk" % i)
        t.cli("principal", "create", "--name", "c%d" % i, "--no-register",
              "--key-out", child)
        chain = os.path.join(ctx.dir, "child%d.txt" % i)
        # --parent: a link below the till's own mandate
        issue_mandate(chain, t.till, child, ["accounts:read"], ["10"],
                      expires="30m", extra=["--parent", t.mandate])
        r = t.cli("delegate", "revoke", "--key", child, "--mandate", chain,
                  "--jti", "made-up-%d" % i, ok=False)
        outcomes.append((r.returncode, r.stdout, r.stderr))
    for i in range(3):
        check(outcomes[i][0] == 0 and '"revoked"' in outcomes[i][1],
              "child %d within the quota: %r" % (i, outcomes[i]))
    for i in (3, 4):
        check(outcomes[i][0] == 1 and "507" in outcomes[i][2]
              and "state-full" in outcomes[i][2],
              "child %d over its root's quota: %r" % (i, outcomes[i]))
    # the till itself pays from the same bucket
    r = t.cli("delegate", "revoke", "--key", t.till, "--mandate", t.mandate,
              "--jti", "made-up-till", ok=False)
    check(r.returncode == 1 and "state-full" in r.stderr,
          "the till: %s %s" % (r.stdout, r.stderr))
    # the merchant's own revocations are its own bucket: still accepted,
    # and another tenant is not affected at all
    r = t.cli("delegate", "revoke", "--key", t.merchant, "--jti",
              "merchant-link")
    check('"revoked"' in r.stdout, "merchant: %s %s" % (r.stdout, r.stderr))
    other = os.path.join(ctx.dir, "other.jwk")
    t.cli("principal", "create", "--name", "other", "--key-out", other)
    r = t.cli("delegate", "revoke", "--key", other, "--jti", "other-link")
    check('"revoked"' in r.stdout, "other tenant: %s %s"
          % (r.stdout, r.stderr))
    listed = json.loads(srv.get("/v1/revocations/made-up-2").body)
    check_eq(listed["status"], "revoked", "an accepted child statement")
    listed = json.loads(srv.get("/v1/revocations/made-up-3").body)
    check_eq(listed["status"], "good", "a refused one wrote nothing")


# -- finding 10: version telemetry forged for someone else's user ----------

@e2e_test(timeout=120)
def test_a_mandate_cannot_rewrite_the_version_counted_for_another_user(ctx):
    t = Tenants(ctx, ops=("accounts:read",))
    policy = {"platforms": {"android": {"min_supported": "1.0.0"}}}
    t.cli("call", "PUT", "/v1/client-policy", json.dumps(policy))

    def impact():
        return t.admin("GET", "/v1/client-policy/impact?platform=android"
                       "&min_supported=2.0.0")

    # the gateway (the administrator's token) reports user u1 on 1.5.0
    t.cli("call", "-H", "X-Client-Version: android/1.5.0",
          "-H", "X-Client-User: u1", "GET", "/v1/accounts/20")
    im = impact()
    check_eq((im["actives"], im["blocked"]), (1, 1), "u1 counted, blocked")
    # the till claims to be u1 on 3.0.0: the attack would hide u1 from
    # the impact of raising the minimum
    for v in ("3.0.0", "3.0.1"):
        r = t.cli("call", "--key", t.till, "--mandate", t.mandate,
                  "-H", "X-Client-Version: android/" + v,
                  "-H", "X-Client-User: u1", "GET", "/v1/accounts/10")
    im = impact()
    check_eq(im["blocked"], 1, "the gateway's u1 is still blocked")
    check_eq(im["actives"], 2, "the merchant's u1 is its own user")
    check_eq(im["user_scope"], "root-principal", "what a user is")


# -- finding 10: the override limit, and what its refusal says -------------

@e2e_test(timeout=120)
def test_the_65th_open_override_is_refused_with_the_limit_named(ctx):
    srv = ctx.start_server()
    c = srv.new_client()
    try:
        # Overrides must relax something of the policy (issue 11, item 5).
        r = c.request("PUT", "/v1/client-policy",
                      body=json.dumps({"platforms": {
                          "android": {"min_supported": "5.0.0"}}}),
                      headers={"Content-Type": "application/json"})
        check_eq(r.status, 201, "policy: %r" % r)
        for i in range(64):
            r = c.post("/v1/client-policy/overrides",
                       {"platform": "android", "range": "3.%d.x" % i,
                        "mode": "allow", "duration_s": 600,
                        "reason": "INC-%d" % i})
            check_eq(r.status, 201, "override %d: %r" % (i, r))
        r = c.post("/v1/client-policy/overrides",
                   {"platform": "android", "range": "4.x", "mode": "allow",
                    "duration_s": 600, "reason": "one too many"})
        check_eq(r.status, 507, "the 65th")
        doc = r.json()
        check_eq(doc["type"], "/problems/state-full", "problem type")
        check("authorization" not in doc["title"] + doc.get("detail", ""),
              "names the authorization state: %r" % doc)
        check("64 overrides" in doc["detail"], "the limit: %r" % doc)
        # ending one makes room
        r = c.request("DELETE", "/v1/client-policy/overrides/1?reason=done")
        check_eq(r.status, 200, "end override 1: %r" % r)
        r = c.post("/v1/client-policy/overrides",
                   {"platform": "android", "range": "4.x", "mode": "allow",
                    "duration_s": 600, "reason": "room again"})
        check_eq(r.status, 201, "after ending one: %r" % r)
        # Both lists, newest first, each override once (the reply's
        # copies grow as they are found: past 16, 32 and 64 here).
        r = c.get("/v1/client-policy/overrides?all=true")
        check_eq(r.status, 200, "all overrides: %r" % r)
        ids = [o["id"] for o in r.json()["overrides"]]
        check_eq(ids, list(range(65, 0, -1)), "every override, newest first")
        r = c.get("/v1/client-policy/overrides")
        check_eq(r.status, 200, "active overrides: %r" % r)
        ids = [o["id"] for o in r.json()["overrides"]]
        check_eq(ids, list(range(65, 1, -1)), "the active ones, not 1")
    finally:
        c.close()


# -- the issue 11 review: pages, ends and sets that change nothing ----------

def audit_size(c):
    r = c.get("/v1/audit/head")
    check_eq(r.status, 200, "audit head")
    return int(r.json()["size"])


@e2e_test(timeout=120)
def test_override_list_pages_and_nothing_is_journaled_for_no_change(ctx):
    """Outside review after issue 11: GET .../overrides?all=true answered
    up to 1000 overrides of some 9 KB each to any policy:read caller (F1);
    ending an ended or expired override answered 200 and journaled an
    entry each time, with any reason (F2); a PUT or rollback that changed
    nothing journaled an entry (F3).  Now: pages of at most 100 with a
    `next`; 409 override-ended, nothing journaled; 200 unchanged, nothing
    journaled."""
    srv = ctx.start_server()
    c = srv.new_client()
    try:
        doc = json.dumps({"platforms": {"android": {"min_supported":
                                                    "5.0.0"}}})
        r = c.request("PUT", "/v1/client-policy?reason=v1", body=doc,
                      headers={"Content-Type": "application/json"})
        check_eq(r.status, 201, "policy: %r" % r)
        for i in range(103):  # opened and ended: at most 64 run at once
            r = c.post("/v1/client-policy/overrides",
                       {"platform": "android", "range": "3.%d.x" % i,
                        "mode": "allow", "duration_s": 600,
                        "reason": "INC-%d" % i})
            check_eq(r.status, 201, "override %d: %r" % (i, r))
            if i < 100:
                r = c.request("DELETE", "/v1/client-policy/overrides/%d"
                              "?reason=done" % (i + 1))
                check_eq(r.status, 200, "end %d: %r" % (i + 1, r))
        # F1: pages, newest first, each override once.
        r = c.get("/v1/client-policy/overrides?all=true")
        check_eq(r.status, 200, "all overrides: %r" % r)
        page = r.json()
        check_eq([o["id"] for o in page["overrides"]],
                 list(range(103, 3, -1)), "the first page: 100, newest first")
        check_eq(page.get("next"),
                 "/v1/client-policy/overrides?all=true&before=4&limit=100",
                 "the next page")
        r = c.get(page["next"])
        check_eq(r.status, 200, "next page: %r" % r)
        check_eq(([o["id"] for o in r.json()["overrides"]],
                  "next" in r.json()), ([3, 2, 1], False), "the last page")
        ids, path = [], "/v1/client-policy/overrides?all=true&limit=40"
        for _ in range(10):
            r = c.get(path)
            check_eq(r.status, 200, "GET %s: %r" % (path, r))
            ids += [o["id"] for o in r.json()["overrides"]]
            path = r.json().get("next")
            if not path:
                break
        check_eq(ids, list(range(103, 0, -1)), "pages of 40 cover all")
        r = c.get("/v1/client-policy/overrides")
        check_eq(([o["id"] for o in r.json()["overrides"]],
                  "next" in r.json()), ([103, 102, 101], False),
                 "the active ones")
        for q in ("limit=0", "limit=101", "limit=x", "before=0",
                  "before=-1"):
            r = c.get("/v1/client-policy/overrides?all=true&" + q)
            check_eq((r.status, r.json().get("field")),
                     (400, q.split("=")[0]), "?%s" % q)
        p = run_cli(["policy", "override", "list", "--all", "--json"]
                    + srv.cli_args())
        check_eq(p.returncode, 0, "override list --all: " + p.stderr)
        check_eq([o["id"] for o in json.loads(p.stdout)["overrides"]],
                 list(range(103, 0, -1)), "the CLI follows the pages")

        # F2: an ended override is not ended again.
        before = len(journal.all_records(srv.data_dir))
        wait_audit_size(srv, before)
        for path in ("/v1/client-policy/overrides/1?reason=again",
                     "/v1/client-policy/overrides/1"):
            r = c.request("DELETE", path)
            check_eq((r.status, r.json()["type"]),
                     (409, "/problems/override-ended"), "DELETE %s" % path)
        # F3: a set or a rollback that changes nothing.
        r = c.request("PUT", "/v1/client-policy?reason=again", body=doc,
                      headers={"Content-Type": "application/json"})
        check_eq((r.status, r.json().get("status"), r.json().get("version")),
                 (200, "unchanged", 1), "the same document again")
        r = c.post("/v1/client-policy/rollback",
                   {"version": 1, "reason": "x"})
        check_eq((r.status, r.json().get("status")), (200, "unchanged"),
                 "a rollback to the current version")
        check_eq(len(journal.all_records(srv.data_dir)), before,
                 "nothing journaled for any of them")
        check_eq(audit_size(c), before, "nor in the audit log")
    finally:
        c.close()


# -- finding 10: repeated query parameters, account 0 -----------------------

@e2e_test(timeout=60)
def test_a_repeated_query_parameter_is_refused_naming_it(ctx):
    srv = ctx.start_server()
    c = srv.new_client()
    try:
        cases = [("POST", "/v1/transfers?entry_index=true&entry_index=false",
                  [], "entry_index"),
                 ("POST", "/v1/accounts?owner=a&owner=b",
                  [{"id": "1", "ledger": 1, "code": 1}], "owner"),
                 ("GET", "/v1/revocations/abc?iss=a&iss=b", None, "iss"),
                 ("GET", "/v1/accounts/1/transfers?limit=5&limit=6", None,
                  "limit")]
        for method, path, body, name in cases:
            if body is None:
                r = c.request(method, path)
            else:
                r = c.post(path, body)
            check_eq(r.status, 400, "%s %s" % (method, path))
            doc = r.json()
            check_eq((doc["type"], doc.get("field")),
                     ("/problems/invalid-query", name), "%s problem" % path)
            check("more than once" in doc["detail"], "detail: %r" % doc)
        # nothing was created by the refused POST
        r = c.request("GET", "/v1/accounts/1")
        check_eq(r.status, 404, "account 1 after a refused create")
        many = "&".join("p%d=1" % i for i in range(65))
        r = c.request("GET", "/v1/accounts/1/transfers?" + many)
        check_eq(r.status, 400, "65 parameters")
        check_eq(r.json()["type"], "/problems/invalid-query", "65 parameters")
        check("at most 64" in r.json()["detail"], "names the limit")
    finally:
        c.close()


@e2e_test(timeout=60)
def test_account_zero_has_no_transfers_rather_than_a_bad_filter(ctx):
    srv = ctx.start_server()
    c = srv.new_client()
    try:
        for path in ("/v1/accounts/0/transfers", "/v1/accounts/0/balances",
                     "/v1/accounts/%d/transfers" % (2 ** 128 - 1)):
            r = c.request("GET", path)
            check_eq((r.status, r.json()), (200, []), path)
        r = c.request("GET", "/v1/accounts/0/transfers?limit=0")
        check_eq(r.status, 400, "a bad parameter is still refused")
    finally:
        c.close()


@e2e_test(timeout=60)
def test_a_malformed_revocation_statement_is_named_not_the_header(ctx):
    # the fresh review: the detail blamed a missing Authorization header
    srv = ctx.start_server()
    c = srv.new_client(auth=None)
    try:
        r = c.post("/v1/revocations", {"statement": "abc"})
        check_eq(r.status, 401, "a malformed statement")
        doc = r.json()
        check_eq((doc["type"], doc.get("claim")),
                 ("/problems/malformed", "statement"), "the problem")
        check("Authorization" not in doc.get("detail", ""),
              "blames the header: %r" % doc)
    finally:
        c.close()
