"""test_admins.py - issue 23's Done-when for named administrators, the
bootstrap token's retirement and dual control (docs/authz.md, "Named
administrators" and "Dual control"; docs/api.md, "Administrators").

Two operators (alice, bob) and a security officer (carol) are given
their roles with the bootstrap token, which is then retired (401
bootstrap-retired, also after a restart).  Each administrator signs its
own first link, without accounts, with DPoP proofs from the JS client.
A policy activation above the impact threshold by alice waits (202, a
pending request) until bob approves it, and takes effect only then; her
self-approval, an approval after the policy moved and one of a former
administrator's request are refused and journaled (the window is the
unit test's, test_core_admin); a last request is carried out
by break-glass, which raises tpwallet_break_glass_total and makes
`tpwallet doctor` warn; every entry names the administrator who caused
it.
"""

import json
import time

from harness import e2e_test, check, check_eq, run_cli, slow_factor
from test_authz import (Authz, check_refused, check_status, js,
                        _past_the_horizon, _restart_on_the_same_port)
from test_client_policy import metrics
from ledger import account
from test_policy_guard import load_activity

POLICY_OPS = ["policy:admin", "policy:read"]


def admin_link(a, key, ops):
    """An administrator's own first link: to itself, no accounts."""
    return [a.link(key["private_jwk"], key, {"ops": list(ops)})]


def put(a, links, key, doc, reason, accept=True):
    path = "/v1/client-policy?reason=%s%s" % (
        reason, "&accept_impact=true" if accept else "")
    return a.call(links, key, "PUT", path, body=json.dumps(doc))


def current(a, links, key):
    r = a.call(links, key, "GET", "/v1/client-policy/versions")
    return check_status(r, 200, "GET versions")["current"]


def trail(a, links, key, timeout=10.0):
    """Every decoded audit entry, once the audit log holds the journal's
    last entry, an admin_decide (bounded wait; the entries fetched in one
    go by the JS client)."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        size = int(check_status(a.call(links, key, "GET", "/v1/audit/head"),
                                200, "head")["size"])
        last = check_status(a.call(links, key, "GET",
                                   "/v1/audit/entries/%d?view=decoded"
                                   % (size - 1)), 200, "the last entry")
        if last["decoded"].get("command") == "admin_decide":
            break
        check(time.monotonic() < deadline, "the audit log does not end "
              "with an admin_decide entry within %.0fs" % timeout)
        time.sleep(0.05)
    out = js({"op": "concurrent", "base": a.base,
              "chain": [l["compact"] for l in links],
              "key": key["private_jwk"],
              "requests": [{"method": "GET",
                            "path": "/v1/audit/entries/%d?view=decoded" % i}
                           for i in range(size)]})["results"]
    return [check_status(r, 200, "entry %d" % i)["decoded"]
            for i, r in enumerate(out)]


@e2e_test(timeout=180)
def test_admins_dual_control_retirement_and_break_glass(ctx):
    a = Authz(ctx)
    s = a.s
    alice, bob, carol, dave = a.keys(4)
    for k, name in ((alice, "alice"), (bob, "bob"), (carol, "carol"),
                    (dave, "dave")):
        a.register(k, name)

    # Retirement is refused while no security officer exists.
    r = s.post("/v1/admin/bootstrap/retire", None)
    check_refused(r, 409, "no_security_officer", "retire without an officer")
    for k, role in ((alice, "operator"), (bob, "operator"),
                    (carol, "security_officer")):
        r = s.post("/v1/admin/roles", {"principal": k["thumbprint"],
                                       "role": role})
        doc = check_status(r, 200, "give %s" % role)
        check_eq((doc["role"], doc["status"]), (role, "changed"),
                 "role given")
    r = s.post("/v1/admin/roles", {"principal": alice["thumbprint"],
                                   "role": "owner"})
    check_refused(r, 400, "invalid_field", "an unknown role")
    listed = {p["name"]: p.get("role")
              for p in check_status(s.get("/v1/principals"), 200,
                                    "principals")["principals"]}
    check_eq(listed, {"alice": "operator", "bob": "operator",
                      "carol": "security_officer", "dave": None},
             "roles in GET /v1/principals")

    la = admin_link(a, alice, POLICY_OPS)
    lb = admin_link(a, bob, POLICY_OPS)
    lc = admin_link(a, carol, ["principals:admin", "principals:read",
                               "audit:read"])
    # A role's ops bound its links: alice holds no principals:admin, and
    # dave, with no role, may not sign a link without accounts.
    r = a.call(admin_link(a, alice, ["principals:admin"]), alice, "GET",
               "/v1/principals")
    check_refused(r, 403, "issuer_not_owner", "ops beyond the role",
                  claim="right.ops")
    r = a.call(admin_link(a, dave, ["policy:read"]), dave, "GET",
               "/v1/client-policy/versions")
    check_refused(r, 403, "issuer_not_owner", "no role",
                  claim="right.accounts")

    # An operator's accounts are the server's, never its own: it cannot
    # root a transfer mandate over them, nor name an administrator owner.
    lacc = admin_link(a, alice, ["accounts:create"])
    r = a.call(lacc, alice, "POST", "/v1/accounts",
               body=json.dumps([account(77)]))
    check_eq([x.get("status") for x in check_status(r, 200, "accounts")],
             ["created"], "alice creates account 77")
    own = [a.link(alice["private_jwk"], alice,
                  {"ops": ["transfers:create"], "accounts": ["77"]})]
    r = a.call(own, alice, "POST", "/v1/transfers",
               body=json.dumps({"id": "1", "debit_account_id": "77",
                                "credit_account_id": "78", "amount": "1",
                                "ledger": 1, "code": 1}))
    check_refused(r, 403, "issuer_not_owner", "alice over account 77",
                  claim="right.accounts")
    r = a.call(lacc, alice, "POST", "/v1/accounts?owner=" + bob["thumbprint"],
               body=json.dumps([account(79)]))
    check_refused(r, 400, "invalid_query", "an administrator as owner")

    # The bootstrap token is retired: refused, also after a restart.
    doc = check_status(s.post("/v1/admin/bootstrap/retire", None), 200,
                       "retire")
    check_eq(doc["status"], "retired", "retired")
    r = s.get("/v1/principals")
    check_refused(r, 401, "bootstrap_retired", "the token after retirement")
    r = a.call(a.chain([{"ops": ["principals:read"]}], [dave]), dave,
               "GET", "/v1/principals")
    check_refused(r, 401, "bootstrap_retired",
                  "a chain the bootstrap key signed", link=1, claim="iss")
    _restart_on_the_same_port(s)
    _past_the_horizon(s)  # DPoP proofs of now are new after it
    check_refused(s.get("/v1/principals"), 401, "bootstrap_retired",
                  "the token after a restart")

    # Activity of yesterday, so that raising the minimum blocks half.
    r = a.call(la, alice, "POST", "/v1/client-policy/activity",
               body=json.dumps({"observations": [
                   {"day": time.strftime("%Y-%m-%d", time.gmtime(
                       time.time() - 86400)),
                    "platform": "android", "version": v, "user": "u%s%d"
                    % (v, i)} for v in ("3.9.0", "4.1.0")
                   for i in range(5)]}))
    check_status(r, 200, "activity")
    v1 = {"platforms": {"android": {"min_supported": "3.0.0"}}}
    v2 = {"platforms": {"android": {"min_supported": "4.0.0"}}}
    v3 = {"platforms": {"android": {"min_supported": "4.2.0"}}}
    # Below the threshold an operator activates alone.
    doc = check_status(put(a, la, alice, v1, "v1", accept=False), 201,
                       "v1 below the threshold")
    check_eq(doc["version"], 1, "v1 active")

    # Above it, accepted: a pending request, nothing active yet.
    r = put(a, la, alice, v2, "v2")
    req = check_status(r, 202, "v2 above the threshold")
    check_eq(r["headers"].get("location"),
             "/v1/admin/requests/%d" % req["id"], "Location")
    check_eq((req["status"], req["requested_by"], req["target_version"]),
             ("pending", alice["thumbprint"], 1), "the request")
    check_eq(current(a, lb, bob), 1, "v2 waits")
    listed = check_status(a.call(lb, bob, "GET", "/v1/admin/requests"),
                          200, "GET requests")["requests"]
    check_eq([x["id"] for x in listed], [req["id"]], "pending requests")

    # Self-approval: refused (and journaled), still pending.
    r = a.call(la, alice, "POST",
               "/v1/admin/requests/%d/approve" % req["id"])
    check_refused(r, 403, "self_approval", "alice approves her own")
    check_eq(current(a, lb, bob), 1, "v2 still waits")
    # A break-glass needs a reason (refused before anything is
    # journaled).
    r = a.call(la, alice, "POST",
               "/v1/admin/requests/%d/break-glass" % req["id"])
    check_refused(r, 400, "invalid_field", "break-glass without a reason")

    # Bob approves: v2 takes effect, named after both.
    r = a.call(lb, bob, "POST", "/v1/admin/requests/%d/approve" % req["id"])
    doc = check_status(r, 200, "bob approves")
    check_eq((doc["status"], doc["decided_by"]),
             ("approved", bob["thumbprint"]), "approved")
    check_eq(current(a, lb, bob), 2, "v2 active after the approval")
    r = a.call(lb, bob, "POST", "/v1/admin/requests/%d/approve" % req["id"])
    check_refused(r, 409, "request_not_pending", "approved twice")

    # The target moved since the request: bob sets a document below the
    # threshold first, then his approval is refused (journaled).
    reqt = check_status(put(a, la, alice, v3, "v3-early"), 202,
                        "a request that will go stale")
    v2b = {"platforms": {"android": {"min_supported": "4.0.0"}, "ios": {}}}
    doc = check_status(put(a, lb, bob, v2b, "v2b", accept=False), 201,
                       "bob's document below the threshold")
    check_eq(doc["version"], 3, "v2b active")
    r = a.call(lb, bob, "POST", "/v1/admin/requests/%d/approve" % reqt["id"])
    check_refused(r, 409, "request_target_changed", "a stale request")
    check_eq(current(a, lb, bob), 3, "the stale request changed nothing")

    # A requester no longer an administrator: carol takes alice's role
    # away, bob's approval is refused; her role back, her link works.
    reqr = check_status(put(a, la, alice, v3, "v3-revoked"), 202,
                        "a request of alice's")
    for role in ("none", "operator"):
        r = a.call(lc, carol, "POST", "/v1/admin/roles",
                   body=json.dumps({"principal": alice["thumbprint"],
                                    "role": role}))
        if role == "operator":
            # A grant waits for a second administrator (not alice).
            grant = check_status(r, 202, "carol asks for alice's role")
            r = a.call(lb, bob, "POST",
                       "/v1/admin/requests/%d/approve" % grant["id"])
        check_status(r, 200, "carol sets alice's role to %s" % role)
        if role == "none":
            r = a.call(lb, bob, "POST",
                       "/v1/admin/requests/%d/approve" % reqr["id"])
            check_refused(r, 403, "not_an_administrator",
                          "approving a former administrator's request")
            r = a.call(la, alice, "GET", "/v1/client-policy/versions")
            check_refused(r, 403, "issuer_not_owner",
                          "alice's link without her role")
    check_eq(current(a, la, alice), 3, "nothing changed")

    # Break-glass: alice alone, with a reason; the metric counts it.
    before = metrics(s).get("tpwallet_break_glass_total")
    check_eq(before, 0.0, "no break-glass yet")
    req3 = check_status(put(a, la, alice, v3, "v3"), 202, "v3 request")
    r = a.call(lb, bob, "POST",
               "/v1/admin/requests/%d/break-glass" % req3["id"],
               body=json.dumps({"reason": "not mine"}))
    check_refused(r, 403, "break_glass_not_requester", "bob breaks alice's")
    r = a.call(la, alice, "POST",
               "/v1/admin/requests/%d/break-glass" % req3["id"],
               body=json.dumps({"reason": "INC-42 outage"}))
    doc = check_status(r, 200, "break-glass")
    check_eq((doc["status"], doc["reason"]), ("break_glass",
                                                "INC-42 outage"), "broken")
    check_eq(current(a, lb, bob), 4, "v3 active by break-glass")
    check_eq(metrics(s).get("tpwallet_break_glass_total"), 1.0,
             "the break-glass counter")

    # The trail names the administrators, never "the administrator".
    views = trail(a, lc, carol)

    def named(command):
        return [v for v in views if v.get("command") == command]
    got = [(v["fields"]["decision"], v["author"].get("thumbprint"))
           for v in named("admin_decide")]
    check_eq(got, [("approve", alice["thumbprint"]),
                   ("approve", bob["thumbprint"]),
                   ("approve", bob["thumbprint"]),
                   ("approve", bob["thumbprint"]),
                   ("approve", bob["thumbprint"]),
                   ("approve", bob["thumbprint"]),  # alice's role back
                   ("break_glass", bob["thumbprint"]),
                   ("break_glass", alice["thumbprint"])],
             "decisions journaled with their authors (refusals too)")
    check_eq([(v["author"].get("name"), v["fields"]["operation"])
              for v in named("admin_request")],
             [("alice", "policy_set")] * 3 + [("carol", "role")] +
             [("alice", "policy_set")],
             "requests named after their authors: alice's policies, "
             "carol's grant of alice's role")
    check_eq([v["author"].get("name") for v in named("policy_set")],
             ["alice", "bob"], "v1 by alice, v2b by bob")
    check_eq([(v["fields"]["role"], v["author"].get("name"))
              for v in named("admin_role")],
             [("operator", "administrator"), ("operator", "administrator"),
              ("security_officer", "administrator"), ("none", "carol")],
             "role entries (carol's grant back is her request, which "
             "bob's approval carried out)")
    check_eq([v["author"].get("name") for v in named("bootstrap_retire")],
             ["administrator", "administrator"],
             "the refused retirement and the retirement")

    # doctor warns about the break-glass of the last 24 hours.
    s.stop()
    r = run_cli(["doctor", "--data", s.data_dir])
    line = [l for l in r.stdout.splitlines() if "break-glass" in l]
    check(len(line) == 1 and line[0].startswith("warn"),
          "doctor: %r %r" % (line, r.stdout))
    check("request %d" % req3["id"] in line[0], "doctor names the request")


# ---- the outside attack's findings (issue 23, second step) ----------------

V1 = {"platforms": {"android": {"min_supported": "3.0.0"}}}
V2 = {"platforms": {"android": {"min_supported": "4.0.0"}}}


class Admins:
    """alice and bob operators, carol the security officer, dave a
    registered principal without a role; the bootstrap token retired
    (unless retire=False); yesterday's activity makes V2 block half the
    android users, so that V2 needs dual control; V1 active."""

    def __init__(self, ctx, retire=True):
        self.a = a = Authz(ctx)
        self.s = a.s
        self.alice, self.bob, self.carol, self.dave = a.keys(4)
        for k, name in ((self.alice, "alice"), (self.bob, "bob"),
                        (self.carol, "carol"), (self.dave, "dave")):
            a.register(k, name)
        for k, role in ((self.alice, "operator"), (self.bob, "operator"),
                        (self.carol, "security_officer")):
            check_status(self.s.post("/v1/admin/roles",
                                     {"principal": k["thumbprint"],
                                      "role": role}), 200, "give " + role)
        self.la = admin_link(a, self.alice, POLICY_OPS)
        self.lb = admin_link(a, self.bob, POLICY_OPS)
        self.lc = admin_link(a, self.carol, ["principals:admin",
                                             "principals:read",
                                             "audit:read"])
        if retire:
            check_status(self.s.post("/v1/admin/bootstrap/retire", None),
                         200, "retire")
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        check_status(self.call(self.la, self.alice, "POST",
                               "/v1/client-policy/activity",
                               {"observations": [
                                   {"day": day, "platform": "android",
                                    "version": v, "user": "u%s%d" % (v, i)}
                                   for v in ("3.9.0", "4.1.0")
                                   for i in range(5)]}), 200, "activity")
        check_status(put(a, self.la, self.alice, V1, "v1", accept=False),
                     201, "v1")

    def call(self, links, key, method, path, body=None):
        if body is not None:
            body = json.dumps(body)
        return self.a.call(links, key, method, path, body=body)

    def request(self, links, key, doc, what):
        """A pending request for doc: its answer."""
        return check_status(put(self.a, links, key, doc, what), 202, what)

    def get(self, rid):
        return self.call(self.lb, self.bob, "GET",
                         "/v1/admin/requests/%d" % rid)


@e2e_test(timeout=120)
def test_admins_delegated_power_neither_requests_nor_decides(ctx):
    """F8: alice hands policy:admin on to bob's key; bob's request and
    bob's approval under alice's delegation do not make two people."""
    x = Admins(ctx)
    a = x.a
    la2b = x.la + [a.link(x.alice["private_jwk"], x.bob,
                          {"ops": ["policy:admin", "policy:read"]},
                          parent=x.la[0])]
    req = x.request(x.lb, x.bob, V2, "bob-asks")
    r = x.call(la2b, x.bob, "POST", "/v1/admin/requests/%d/approve" % req["id"])
    check_refused(r, 403, "not_an_administrator",
                  "an approval under alice's delegation to bob")
    r = put(a, la2b, x.bob, V2, "delegated-request")
    check_refused(r, 403, "not_an_administrator",
                  "a request under alice's delegation to bob")
    check_eq(check_status(x.get(req["id"]), 200, "GET")["status"],
             "pending", "nothing decided")
    check_eq(current(a, x.lb, x.bob), 1, "v2 waits")
    # alice's own sign-in approves, named after her.
    doc = check_status(x.call(x.la, x.alice, "POST",
                              "/v1/admin/requests/%d/approve" % req["id"]),
                       200, "alice approves")
    check_eq((doc["status"], doc["decided_by"]),
             ("approved", x.alice["thumbprint"]), "decided by alice")


@e2e_test(timeout=120)
def test_admins_last_security_officer_keeps_its_role(ctx):
    """F11: after the retirement carol, the only security officer, cannot
    give up (or lose) her role: nobody could give a role again."""
    x = Admins(ctx)
    for role in ("operator", "none"):
        r = x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
                   {"principal": x.carol["thumbprint"], "role": role})
        check_refused(r, 409, "no_security_officer",
                      "the last officer's role to %s" % role)
    listed = check_status(x.call(x.lc, x.carol, "GET", "/v1/principals"),
                          200, "principals")["principals"]
    check_eq([p.get("role") for p in listed if p["name"] == "carol"],
             ["security_officer"], "carol keeps her role")
    # With bob a second officer (a grant: alice approves it), carol may
    # step down (to operator: a grant too, which bob approves).
    req = check_status(x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
                              {"principal": x.bob["thumbprint"],
                               "role": "security_officer"}), 202,
                       "bob officer, asked")
    check_status(x.call(x.la, x.alice, "POST",
                        "/v1/admin/requests/%d/approve" % req["id"]), 200,
                 "bob officer, approved by alice")
    req = check_status(x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
                              {"principal": x.carol["thumbprint"],
                               "role": "operator"}), 202,
                       "carol steps down, asked")
    # bob signs in as the officer he now is (his operator link's ops
    # are no longer his role's).
    lbo = admin_link(x.a, x.bob, ["principals:admin", "principals:read",
                                  "policy:read"])
    doc = check_status(x.call(lbo, x.bob, "POST",
                              "/v1/admin/requests/%d/approve" % req["id"]),
                       200, "carol steps down, approved by bob")
    check_eq(doc["status"], "approved", "carol's request approved")
    listed = check_status(x.call(lbo, x.bob, "GET", "/v1/principals"),
                          200, "principals")["principals"]
    check_eq([p.get("role") for p in listed if p["name"] == "carol"],
             ["operator"], "carol now an operator")


@e2e_test(timeout=120)
def test_admins_one_requester_cannot_take_every_pending_slot(ctx):
    """F6: alice holds at most 4 pending requests (507 state-full after),
    and bob can still ask."""
    x = Admins(ctx)
    for i in range(4):
        x.request(x.la, x.alice, V2, "alice-%d" % i)
    r = put(x.a, x.la, x.alice, V2, "alice-5th")
    check_refused(r, 507, "state_full", "alice's fifth pending request")
    req = x.request(x.lb, x.bob, V2, "bob-asks")
    check_eq(req["status"], "pending", "bob's request waits")


@e2e_test(timeout=120)
def test_admins_an_account_owner_is_given_no_role(ctx):
    """F10: dave owns an account; a role for him is refused 409
    role-for-account-owner (before and after the retirement), so his own
    links never move money beside a role."""
    x = Admins(ctx, retire=False)
    r = x.s.post("/v1/accounts?owner=" + x.dave["thumbprint"],
                 [account(5)])
    check_eq([e.get("status") for e in check_status(r, 200, "accounts")],
             ["created"], "account 5 owned by dave")
    r = x.s.post("/v1/admin/roles", {"principal": x.dave["thumbprint"],
                                     "role": "operator"})
    check_refused(r, 409, "role_for_account_owner", "bootstrap gives dave")
    check_status(x.s.post("/v1/admin/bootstrap/retire", None), 200, "retire")
    r = x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
               {"principal": x.dave["thumbprint"], "role": "support"})
    check_refused(r, 409, "role_for_account_owner", "carol gives dave")
    listed = check_status(x.call(x.lc, x.carol, "GET", "/v1/principals"),
                          200, "principals")["principals"]
    check_eq([p.get("role") for p in listed if p["name"] == "dave"],
             [None], "dave holds no role")


def slow_send(a, method, path, auth, dpop, body):
    """Send the headers and 3 bytes of body now; a function that sends the
    rest and returns (status, parsed problem or document)."""
    import socket
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: %s\r\n" % (
        method, path, a.s.port, auth)
    if dpop:
        head += "DPoP: %s\r\n" % dpop
    head += ("Content-Type: application/json\r\nContent-Length: %d\r\n"
             "Connection: close\r\n\r\n" % len(body))
    c = socket.create_connection(("127.0.0.1", a.s.port), timeout=10)
    c.sendall(head.encode() + body[:3])

    def rest():
        c.sendall(body[3:])
        out = b""
        for _ in range(1000):  # bounded: the server closes after one
            d = c.recv(65536)
            if not d:
                break
            out += d
        c.close()
        status = int(out.split(b" ", 2)[1])
        return status, json.loads(out.split(b"\r\n\r\n", 1)[1] or b"null")
    return rest


def problem_of(doc):
    return (doc or {}).get("type", "").rsplit("/", 1)[-1]


@e2e_test(timeout=120)
def test_admins_changes_whose_body_comes_after_the_authority_ended(ctx):
    """F4, F5: a change whose headers were checked before the retirement
    (or the removal of the role) and whose body came after is refused,
    and changes nothing."""
    x = Admins(ctx, retire=False)
    a = x.a
    # The bootstrap token's role grant, its body after the retirement.
    body = json.dumps({"principal": x.dave["thumbprint"],
                       "role": "operator"}).encode()
    rest = slow_send(a, "POST", "/v1/admin/roles", "Bearer " + a.token, None,
                     body)
    time.sleep(0.2)
    check_status(x.s.post("/v1/admin/bootstrap/retire", None), 200, "retire")
    st, doc = rest()
    check_eq((st, problem_of(doc)), (401, "bootstrap-retired"),
             "the token's role grant completed after the retirement")
    listed = check_status(x.call(x.lc, x.carol, "GET", "/v1/principals"),
                          200, "principals")["principals"]
    check_eq([p.get("role") for p in listed if p["name"] == "dave"],
             [None], "dave holds no role")
    # alice's activation, her role taken away while its body comes.
    chain = "~".join(l["compact"] for l in x.la)
    proof = js({"op": "dpop", "key": x.alice["private_jwk"], "htm": "PUT",
                "htu": "%s/v1/client-policy" % a.base,
                "access_token": chain})["proof"]
    v15 = {"platforms": {"android": {"min_supported": "3.5.0"}}}
    rest = slow_send(a, "PUT", "/v1/client-policy?reason=late",
                     "DPoP " + chain, proof, json.dumps(v15).encode())
    time.sleep(0.2)
    check_status(x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
                        {"principal": x.alice["thumbprint"], "role": "none"}),
                 200, "alice's role taken away")
    st, doc = rest()
    check_eq((st, problem_of(doc)), (401, "revoked"),
             "alice's activation completed after her role went")
    check_eq(current(a, x.lb, x.bob), 1, "nothing activated")


@e2e_test(timeout=120)
def test_admins_the_approver_sees_what_it_approves(ctx):
    """F3: GET /v1/admin/requests/{id} shows the held document and its
    changes against the current policy (as GET /v1/client-policy/diff
    would show them); the decoded admin_request entry shows it too."""
    x = Admins(ctx)
    req = x.request(x.la, x.alice, V2, "alice-asks")
    doc = check_status(x.get(req["id"]), 200, "GET the request")
    check_eq(doc["document"], V2, "the held document")
    check_eq(doc["current_version"], 1, "compared with version 1")
    # The same changes as the diff of v1 to v2 once v2 is set: bob
    # approves, then the diff route answers for versions 1..2.
    check_status(x.call(x.lb, x.bob, "POST",
                        "/v1/admin/requests/%d/approve" % req["id"]),
                 200, "bob approves")
    diff = check_status(x.call(x.lb, x.bob, "GET",
                               "/v1/client-policy/diff?from=1&to=2"),
                        200, "diff 1..2")
    check(len(diff["changes"]) > 0, "v2 changes something: %r" % diff)
    check_eq(doc["changes"], diff["changes"], "the request's changes")
    # Once decided, the document is no longer held.
    done = check_status(x.get(req["id"]), 200, "GET decided")
    check_eq(("document" in done, done["status"]), (False, "approved"),
             "no document once decided")
    views = trail(x.a, x.lc, x.carol)
    held = [v["fields"] for v in views if v.get("command") == "admin_request"]
    check_eq(len(held), 1, "one admin_request entry")
    check_eq(json.loads(held[0]["document"]), V2, "the entry's document")


@e2e_test(timeout=120)
def test_a_role_grant_waits_for_a_second_administrator_not_the_grantee(ctx):
    """The eighth review's last finding: one security officer could give
    a second key of its own a role and approve its own requests with it.
    Now a named administrator's grant is a request that neither the
    requester nor the principal it is for may approve; taking a role away
    acts at once; a grant whose principal's role changed meanwhile is
    stale."""
    x = Admins(ctx)

    def ask(who, role):
        return check_status(x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
                                   {"principal": who["thumbprint"],
                                    "role": role}), 202,
                            "carol asks %s for %s" % (role, who["thumbprint"]))

    def approve(links, key, rid):
        return x.call(links, key, "POST", "/v1/admin/requests/%d/approve"
                      % rid)

    def role_of(name):
        listed = check_status(x.call(x.lc, x.carol, "GET",
                                     "/v1/principals"),
                              200, "principals")["principals"]
        return [p.get("role") for p in listed if p["name"] == name][0]

    # dave (no role: carol's second key, say) asked operator: pending,
    # and shown as such.
    req = ask(x.dave, "operator")
    check_eq((req["operation"], req["status"], req["principal"],
              req["role"], req["target_role"]),
             ("role", "pending", x.dave["thumbprint"], "operator", "none"),
             "the request")
    check_eq(role_of("dave"), None, "dave holds no role while it waits")
    r = approve(x.lc, x.carol, req["id"])
    check_refused(r, 403, "self_approval", "carol approves her own grant")
    # alice promoted to security_officer: alice may not approve it.
    req2 = ask(x.alice, "security_officer")
    r = approve(x.la, x.alice, req2["id"])
    check_refused(r, 403, "self_approval", "alice approves her own grant")
    check_eq(role_of("alice"), "operator", "alice still an operator")
    # bob approves both: named after him.
    for rid, name, role in ((req["id"], "dave", "operator"),
                            (req2["id"], "alice", "security_officer")):
        doc = check_status(approve(x.lb, x.bob, rid), 200, "bob approves")
        check_eq((doc["status"], doc["decided_by"]),
                 ("approved", x.bob["thumbprint"]), "approved by bob")
        check_eq(role_of(name), role, "%s's role after bob's approval"
                 % name)
    # Taking a role away acts at once.
    doc = check_status(x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
                              {"principal": x.dave["thumbprint"],
                               "role": "none"}), 200, "dave's role taken")
    check_eq(doc["status"], "changed", "taken at once")
    # Stale: dave asked support, then given operator by another request
    # first; the older request, approved, finds his role changed.
    old = ask(x.dave, "support")
    new = ask(x.dave, "auditor")
    check_status(approve(x.lb, x.bob, new["id"]), 200, "auditor approved")
    r = approve(x.lb, x.bob, old["id"])
    check_refused(r, 409, "request_target_changed", "the older grant")
    check_eq(role_of("dave"), "auditor", "the newer grant holds")
    # A support or an auditor decides nothing: dave (auditor) is refused
    # before the request is looked up.
    ld = admin_link(x.a, x.dave, ["policy:read", "audit:read"])
    req3 = ask(x.dave, "support")
    r = approve(ld, x.dave, req3["id"])
    check_refused(r, 403, "op_not_allowed", "an auditor's approval")


def _raw(x, links, key, method, path, body):
    """One HTTP/1.1 request under links proven with key, as bytes made in
    advance (its DPoP proof signed now), to send at a moment of ours."""
    a = x.a
    at = "~".join(l["compact"] if isinstance(l, dict) else l for l in links)
    proof = js({"op": "dpop", "key": key["private_jwk"], "htm": method,
                "htu": a.base + path, "access_token": at})["proof"]
    data = json.dumps(body).encode()
    head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Authorization: DPoP %s\r\nDPoP: %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (method, path, a.s.port, at,
                                             proof, len(data)))
    return head.encode() + data


def _status(sock):
    sock.settimeout(10 * slow_factor())
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return int(buf.split(b" ", 2)[1]), buf.partition(b"\r\n\r\n")[2]


@e2e_test(timeout=180)
def test_a_grant_sent_with_its_registration_still_waits_for_approval(ctx):
    """The ninth review's F1: the API decided by a look at the state
    whether a grant needed dual control; a grant of a principal whose
    registration was journaled just before it was seen as refused, sent
    plainly and given (200) alone.  Now every grant of a named
    administrator is a request the state machine checks when journaled:
    sent together with the registration, it is a request (202) or, when
    the grant comes first, refused (404), never given."""
    import socket
    x = Admins(ctx)
    keys = x.a.keys(8)
    seen = []
    for i, y in enumerate(keys):
        reg = _raw(x, x.lc, x.carol, "POST", "/v1/principals",
                   {"jwk": y["jwk"], "name": "y%d" % i})
        grant = _raw(x, x.lc, x.carol, "POST", "/v1/admin/roles",
                     {"principal": y["thumbprint"],
                      "role": "security_officer"})
        s1 = socket.create_connection(("127.0.0.1", x.s.port))
        s2 = socket.create_connection(("127.0.0.1", x.s.port))
        try:
            s1.sendall(reg)
            s2.sendall(grant)
            r1, (st, body) = _status(s1), _status(s2)
        finally:
            s1.close()
            s2.close()
        check_eq(r1[0], 201, "registration %d" % i)
        check(st in (202, 404), "grant %d sent with its registration: %d %r"
              % (i, st, body[:300]))
        seen.append(st)
        if st == 202:  # its slot freed: at most 4 wait per requester
            check_status(x.call(x.lc, x.carol, "POST",
                                "/v1/admin/requests/%d/reject"
                                % json.loads(body)["id"]), 200,
                         "carol withdraws grant %d" % i)
    listed = check_status(x.call(x.lc, x.carol, "GET", "/v1/principals"),
                          200, "principals")["principals"]
    given = [p["name"] for p in listed
             if p["name"].startswith("y") and p.get("role")]
    check_eq(given, [], "roles given without a second administrator")
    check(202 in seen, "no grant was held as a request: %r" % seen)


@e2e_test(timeout=120)
def test_a_policy_request_waits_on_its_requester_still_being_an_operator(ctx):
    """The ninth review's F4: alice (operator) asks for a blocking policy,
    then is made support; bob's approval applied it (any role was
    enough).  Now the requester must still hold the role the operation
    needs (operator), as a role request's must hold security_officer."""
    x = Admins(ctx)
    req = x.request(x.la, x.alice, V2, "alice-v2")
    grant = check_status(x.call(x.lc, x.carol, "POST", "/v1/admin/roles",
                                {"principal": x.alice["thumbprint"],
                                 "role": "support"}), 202, "alice support")
    check_status(x.call(x.lb, x.bob, "POST", "/v1/admin/requests/%d/approve"
                        % grant["id"]), 200, "bob approves it")
    r = x.call(x.lb, x.bob, "POST", "/v1/admin/requests/%d/approve"
               % req["id"])
    check_refused(r, 403, "not_an_administrator",
                  "approving a demoted operator's policy")
    check_eq(current(x.a, x.lb, x.bob), 1, "V2 not applied")
