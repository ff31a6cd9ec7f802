"""test_admins_guard.py - dual control cannot be talked out of by the
activity it counts (the eighth outside review, docs/security.md): a
named administrator's change that blocks any active user the current
document serves waits for a second administrator, whatever share of the
users that is (a share could be lowered by loading made-up users, or
reached in steps each under the threshold); and an import never moves a
user the gate saw (docs/authz.md, "Dual control")."""

import json

from harness import e2e_test, check_eq
from test_admins import admin_link, current, put, POLICY_OPS
from test_authz import Authz, check_status
from test_client_policy import gate
from test_policy_guard import load_activity  # noqa: F401 (same fixture)


def impact(a, links, key, minimum):
    r = a.call(links, key, "GET", "/v1/client-policy/impact?platform=android"
               "&min_supported=%s" % minimum)
    return check_status(r, 200, "impact of %s" % minimum)


@e2e_test(timeout=150)
def test_a_named_administrators_blocking_change_always_waits_for_a_second(ctx):
    a = Authz(ctx)
    s = a.s
    alice, bob = a.keys(2)
    for k, name in ((alice, "alice"), (bob, "bob")):
        a.register(k, name)
        check_status(s.post("/v1/admin/roles", {"principal": k["thumbprint"],
                                                "role": "operator"}),
                     200, "%s an operator" % name)
    la, lb = admin_link(a, alice, POLICY_OPS), admin_link(a, bob, POLICY_OPS)
    # The gate names android once a policy does; then 30 users on 4.1.0
    # and one on 3.5.0 come through it (the gateway's credential).
    v1 = {"platforms": {"android": {"min_supported": "3.0.0"}}}
    check_status(s.request("PUT", "/v1/client-policy?reason=v1",
                           body=json.dumps(v1),
                           headers={"Content-Type": "application/json"}),
                 201, "v1")
    for i in range(30):
        check_eq(gate(s, "android/4.1.0", **{"X-Client-User": "g%d" % i})
                 .status, 200, "gate user %d" % i)
    check_eq(gate(s, "android/3.5.0", **{"X-Client-User": "old"}).status,
             200, "the one user on 3.5.0")
    check_eq(impact(a, la, alice, "3.6.0")["blocked"], 1, "one user below")

    # A step that blocks that one user (1 of 31, under the 5% threshold)
    # is no longer alice's alone.
    v2 = {"platforms": {"android": {"min_supported": "3.6.0"}}}
    r = put(a, la, alice, v2, "v2-step", accept=False)
    req = check_status(r, 202, "a step under the threshold that blocks one")
    check_eq(req["status"], "pending", "pending")
    check_eq(current(a, la, alice), 1, "nothing active yet")

    # Made-up users change nothing: 200 imported on 9.9.9 lower the share
    # of 4.2.0 (31 blocked of 231), not the count.
    r = a.call(la, alice, "POST", "/v1/client-policy/activity",
               body=json.dumps({"observations": [
                   {"day": __import__("time").strftime("%Y-%m-%d"),
                    "platform": "android", "version": "9.9.9",
                    "user": "fake%d" % i} for i in range(200)]}))
    check_eq(check_status(r, 200, "the import")["observed"], 200, "imported")
    v3 = {"platforms": {"android": {"min_supported": "4.2.0"}}}
    r = put(a, la, alice, v3, "v3", accept=True)
    check_status(r, 202, "v3 after the made-up users")

    # An import never moves a user the gate saw: the same ids on 9.9.9
    # are known, and still counted where the gate saw them.
    r = a.call(la, alice, "POST", "/v1/client-policy/activity",
               body=json.dumps({"observations": [
                   {"day": __import__("time").strftime("%Y-%m-%d"),
                    "platform": "android", "version": "9.9.9",
                    "user": u} for u in ["old"] + ["g%d" % i
                                                   for i in range(30)]]}))
    doc = check_status(r, 200, "re-versioning import")
    check_eq((doc["observed"], doc["known"], doc["dropped"]), (0, 31, 0),
             "the gate's users are known, nothing moved")
    check_eq(impact(a, la, alice, "3.6.0")["blocked"], 1,
             "the user on 3.5.0 still counted there")

    # A change that blocks nobody is an operator's alone.
    v4 = {"platforms": {"android": {"min_supported": "3.0.0",
                                    "recommended": "4.1.0"}}}
    r = put(a, la, alice, v4, "v4", accept=False)
    check_eq(check_status(r, 201, "a change that blocks nobody")["version"],
             2, "v4 active")
    # Bob approves the first step (its target moved: refused as stale),
    # then alice asks again and bob approves.
    r = a.call(lb, bob, "POST", "/v1/admin/requests/%d/approve" % req["id"])
    check_eq(r["status"], 409, "a stale request")
    req = check_status(put(a, la, alice, v2, "v2-again", accept=False), 202,
                       "v2 again")
    r = a.call(lb, bob, "POST", "/v1/admin/requests/%d/approve" % req["id"])
    check_eq(check_status(r, 200, "bob approves")["status"], "approved",
             "approved")
    check_eq(current(a, lb, bob), 3, "v2 active after bob")
    s.stop()


@e2e_test(timeout=120)
def test_after_the_retirement_the_roles_run_the_card_vault(ctx):
    """The vault's ops belong to roles (docs/authz.md): once the
    bootstrap token is retired, an operator stores a card, support
    reveals it with a reason, the security officer erases it; a role
    without the op is refused."""
    import time
    a = Authz(ctx)
    s = a.s
    op, sup, sec = a.keys(3)
    for k, name, role in ((op, "op", "operator"), (sup, "sup", "support"),
                          (sec, "sec", "security_officer")):
        a.register(k, name)
        check_status(s.post("/v1/admin/roles", {"principal": k["thumbprint"],
                                                "role": role}),
                     200, "%s a %s" % (name, role))
    check_status(s.post("/v1/admin/bootstrap/retire", None), 200, "retired")
    lo = admin_link(a, op, ["vault:tokenize"])
    ls = admin_link(a, sup, ["vault:reveal"])
    le = admin_link(a, sec, ["vault:erase", "vault:admin"])
    card = {"pan": "4111111111111111", "exp_month": 12,
            "exp_year": time.gmtime().tm_year + 2}
    doc = check_status(a.call(lo, op, "POST", "/v1/vault/cards",
                              body=json.dumps(card)), 201, "tokenize")
    tok = doc["token"]
    r = a.call(ls, sup, "POST", "/v1/vault/cards/%s/reveal" % tok,
               body=json.dumps({"reason": "chargeback 7"}))
    check_eq(check_status(r, 200, "support reveals")["pan"],
             "4111111111111111", "the number")
    # An operator may not reveal, nor sign itself the op.
    r = a.call(admin_link(a, op, ["vault:reveal"]), op, "POST",
               "/v1/vault/cards/%s/reveal" % tok,
               body=json.dumps({"reason": "curious"}))
    check_eq(r["status"], 403, "an operator's reveal")
    r = a.call(le, sec, "POST", "/v1/vault/cards/%s/erase" % tok,
               body=json.dumps({"reason": "customer request"}))
    check_eq(check_status(r, 200, "the officer erases")["status"], "erased",
             "erased")
    check_status(a.call(le, sec, "POST", "/v1/vault/keys/rotate",
                        body="{}"), 200, "the officer rotates")
    r = a.call(ls, sup, "POST", "/v1/vault/cards/%s/reveal" % tok,
               body=json.dumps({"reason": "again"}))
    check_eq(r["status"], 410, "an erased card")
    s.stop()
