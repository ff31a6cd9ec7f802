"""test_gate_watch.py - a gate an operator can watch (issue 11, item 4;
docs/operations.md "Watching the client-version gate"): after a mix of
requests from allowed and blocked versions, authenticated and not, the
metrics count decisions by platform, version line and verdict under
bounded labels, blocked users are counted once each with verified apart
from unverified (and the impact figures stay verified, served users
only), request log lines carry the gate's fields, and the log lines of
policy activations and overrides name their author.
"""

import json
import re
import time

from harness import e2e_test, check, check_eq
import test_authz
from test_client_policy import base_policy, check_ok, metrics, put_policy

DECISIONS = "tpwallet_client_policy_decisions_total"
BLOCKED_USERS = "tpwallet_client_policy_blocked_users"
EXPIRY = "tpwallet_client_policy_override_expiry_timestamp_seconds"


def series(m, name):
    """{(labels...): value} of one metric, labels as a sorted tuple."""
    out = {}
    for k, v in m.items():
        mm = re.match(r"^%s\{(.*)\}$" % re.escape(name), k)
        if mm:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"',
                                             mm.group(1))))
            out[labels] = v
    return out


def decisions(m):
    return {(dict(k)["platform"], dict(k)["line"], dict(k)["verdict"]): v
            for k, v in series(m, DECISIONS).items()}


def blocked_users(m):
    return {(dict(k)["platform"], dict(k)["line"], dict(k)["verified"]): v
            for k, v in series(m, BLOCKED_USERS).items()}


def log_lines(s, msg):
    """The server's JSON log lines with this msg."""
    out = []
    for line in s.log_text().splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if isinstance(o, dict) and o.get("msg") == msg:
            out.append(o)
    return out


def wait_lines(s, msg, pred, what):
    """Log lines are written every 50 ms: wait (bounded) for one."""
    check(s.wait_log(re.escape('"msg":"%s"' % msg)) is not None,
          "no %r log line" % msg)
    for _ in range(100):
        got = [o for o in log_lines(s, msg) if pred(o)]
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("%s: no matching %r line in %r"
                         % (what, msg, log_lines(s, msg)[-5:]))


@e2e_test(timeout=180)
def test_gate_watch_metrics_blocked_users_and_log_fields(ctx):
    a = test_authz.Authz(ctx)  # npm ci when needed, or fail
    s = a.s
    (device,) = a.keys(1)
    a.register(device, "device-app")  # before the policy: not gated
    links = a.chain([{"ops": ["keys:read"]}], [device])
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "block 3.x"), 201, "PUT the policy")

    def get(version, user=None, auth="admin", want=200):
        h = {"X-Client-Version": version} if version is not None else {}
        if user is not None:
            h["X-Client-User"] = user
        if auth == "admin":
            r = s.request("GET", "/v1/keys", headers=h)
        else:
            r = s.request("GET", "/v1/keys", headers=h, auth=auth)
        check_eq(r.status, want, "GET /v1/keys as %r %r (%r)"
                 % (version, user, r.body[:200]))

    get("android/4.5.0", "served-1")
    get("android/4.5.1", "served-2")
    get("android/4.1.0", "old-1")  # deprecated, served
    # blocked, authenticated: verified
    get("android/3.9.4", "verified-1", want=426)
    get("android/3.9.0", "verified-1", want=426)  # the same user
    get("android/3.9.4", "verified-2", want=426)
    r = a.call(links, device, "GET", "/v1/keys",
               headers={"X-Client-Version": "android/3.9.4",
                        "X-Client-User": "verified-3"})
    check_eq(r["status"], 426, "blocked under a principal's mandate")
    # blocked, no credential or a bad one: unverified
    get("android/3.9.4", "anon-1", auth=None, want=426)
    get("android/3.9.4", "anon-2", auth="Bearer not-a-token", want=426)
    get("android/3.8.1", "anon-1", auth=None, want=426)  # moves to 3.8
    # blocked without a user: counted as a decision, not as a user
    get("android/3.9.4", None, auth=None, want=426)
    # unparsable and unknown: bounded labels
    get("android/banana", "weird-1")
    get("windows/1.0.0", "weird-2")
    get('android/3.9.4"}{\\', "weird-3")
    get(None, "weird-4")  # no header: unknown_platform, allow
    get("ios", "ios-1", want=426)  # ios blocks a missing version

    m = metrics(s)
    d = decisions(m)
    want = {
        ("android", "4.5", "supported"): 2.0,
        ("android", "4.1", "deprecated"): 1.0,
        ("android", "3.9", "blocked"): 7.0,
        ("android", "3.8", "blocked"): 1.0,
        ("android", "unparsed", "supported"): 2.0,
        ("other", "1.0", "supported"): 1.0,
        ("ios", "unparsed", "blocked"): 1.0,
    }
    for k, v in want.items():
        check_eq(d.get(k), v, "%s%r" % (DECISIONS, k))
    # the request without X-Client-Version: no platform, no line
    check_eq(d.get(("other", "unparsed", "supported")), 1.0,
             "%s without a header" % DECISIONS)
    check_eq(sum(d.values()), 16.0, "every gated request counted once")
    for (platform, line, verdict) in d:
        check(re.match(r"^([0-9]+\.[0-9]+|unparsed|other)$", line),
              "line label %r" % line)
        check(re.match(r"^[a-z0-9_-]+$", platform), "platform %r" % platform)

    b = blocked_users(m)
    check_eq(b, {("android", "3.9", "true"): 3.0,
                 ("android", "3.9", "false"): 1.0,
                 ("android", "3.8", "false"): 1.0,
                 ("ios", "unparsed", "true"): 1.0},
             BLOCKED_USERS)

    # The impact figures: served, authenticated users only.
    imp = check_ok(s.get("/v1/client-policy/impact?platform=android"
                         "&min_supported=4.2.0"), 200, "impact")
    check_eq((imp.get("actives"), imp.get("blocked")), (5, 1),
             "impact actives and blocked (served users only)")
    check_eq(imp.get("blocked_users"),
             {"verified": 3, "unverified": 2, "window_days": 7},
             "impact blocked_users")

    # Request log lines of gated requests carry the gate's fields.
    def is_blocked_394(o):
        return (o.get("client_version") == "android/3.9.4" and
                o.get("status") == 426)
    lines = wait_lines(s, "request", is_blocked_394, "blocked request line")
    o = lines[0]
    check_eq((o.get("client_platform"), o.get("verdict"), o.get("rule"),
              o.get("rule_text"), o.get("policy_version"), o.get("route")),
             ("android", "blocked", "blocked_range", "3.x", 1, "/v1/keys"),
             "the blocked request's log line")
    junk = wait_lines(s, "request",
                      lambda o: (o.get("client_version") or "")
                      .startswith("android/3.9.4?"), "sanitised version")
    check_eq(junk[0].get("client_version"), "android/3.9.4????",
             "a header's quote, braces and backslash are not logged")
    served = wait_lines(s, "request",
                        lambda o: o.get("client_version") ==
                        "android/4.5.0", "served request line")
    check_eq((served[0].get("verdict"), served[0].get("rule"),
              served[0].get("rule_text"), served[0].get("status")),
             ("supported", "no_rule", None, 200),
             "the served request's line")
    # The log is written in buffered lines: wait for the line itself.
    ungated = wait_lines(s, "request", lambda o: o.get("route") == "/metrics",
                         "an ungated request's line")
    check(all("verdict" not in o for o in ungated),
          "an ungated request's line has no gate fields")
    s.stop()


@e2e_test(timeout=180)
def test_gate_watch_activation_and_override_lines_name_the_author(ctx):
    a = test_authz.Authz(ctx)
    s = a.s
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "first, by the admin"), 201, "PUT v1")
    (bot,) = a.keys(1)
    a.register(bot, "release-bot")
    links = a.chain([{"ops": ["policy:admin", "policy:read"]}], [bot])
    doc2, _, _ = base_policy()
    doc2["platforms"]["android"]["min_supported"] = "4.1.0"
    r = a.call(links, bot, "PUT",
               "/v1/client-policy?reason=REL-311%20raise", body=doc2)
    check_eq(r["status"], 201, "PUT v2 by release-bot")

    acts = wait_lines(s, "client policy activated",
                      lambda o: o.get("version") == 2, "activation v2")
    check_eq({k: acts[0].get(k) for k in
              ("author", "author_thumbprint", "reason", "change")},
             {"author": "release-bot", "author_thumbprint": bot["thumbprint"],
              "reason": "REL-311 raise", "change": "set"},
             "v2's activation line")
    v1 = [o for o in log_lines(s, "client policy activated")
          if o.get("version") == 1]
    check_eq((v1[0].get("author"), v1[0].get("author_thumbprint"),
              v1[0].get("reason")),
             ("administrator", None, "first, by the admin"),
             "v1's activation line")
    check_ok(s.post("/v1/client-policy/rollback",
                    {"version": 1, "reason": "undo REL-311"}), 201,
             "rollback to 1")
    rb = wait_lines(s, "client policy activated",
                    lambda o: o.get("version") == 3, "rollback line")
    check_eq((rb[0].get("change"), rb[0].get("rollback_of"),
              rb[0].get("reason"), rb[0].get("author")),
             ("rollback", 1, "undo REL-311", "administrator"),
             "the rollback's line")

    r = a.call(links, bot, "POST", "/v1/client-policy/overrides",
               body={"platform": "android", "range": "3.9.x",
                     "mode": "allow", "duration_s": 600,
                     "reason": "locked out by REL-311"})
    check_eq(r["status"], 201, "override by release-bot")
    ov = r["json"]
    opened = wait_lines(s, "client policy override opened",
                        lambda o: o.get("id") == ov["id"], "open line")[0]
    check_eq({k: opened.get(k) for k in ("platform", "range", "mode",
                                         "author", "author_thumbprint",
                                         "reason", "ends_at")},
             {"platform": "android", "range": "3.9.x", "mode": "allow",
              "author": "release-bot", "author_thumbprint": bot["thumbprint"],
              "reason": "locked out by REL-311",
              "ends_at": ov.get("expires_at")},
             "the override's open line")
    m = metrics(s)
    exp = m.get('%s{id="%d"}' % (EXPIRY, ov["id"]))
    want_end = time.mktime(time.strptime(ov["expires_at"],
                                         "%Y-%m-%dT%H:%M:%SZ")) - \
        time.timezone
    check_eq(exp, float(int(want_end)), EXPIRY)

    r = s.post("/v1/client-policy/overrides/%d/extend" % ov["id"],
               {"duration_s": 1200, "reason": "still rolling out"})
    ext = check_ok(r, 200, "extend")
    line = wait_lines(s, "client policy override extended",
                      lambda o: o.get("id") == ov["id"], "extend line")[0]
    check_eq((line.get("author"), line.get("reason"), line.get("ends_at")),
             ("administrator", "still rolling out", ext.get("expires_at")),
             "the extend line")
    r = s.request("DELETE", "/v1/client-policy/overrides/%d?reason=fixed"
                  % ov["id"])
    check_ok(r, 200, "end the override")
    line = wait_lines(s, "client policy override ended",
                      lambda o: o.get("id") == ov["id"], "end line")[0]
    check_eq((line.get("author"), line.get("reason"), line.get("platform"),
              line.get("range")),
             ("administrator", "fixed", "android", "3.9.x"), "the end line")
    check(EXPIRY + '{id="%d"}' % ov["id"] not in metrics(s),
          "an ended override has no expiry series")
    # No secret in any of these lines: the admin token is nowhere.
    check(a.token not in s.log_text(), "the admin token in the log")
    s.stop()
