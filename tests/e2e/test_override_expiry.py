"""test_override_expiry.py - an override's life in the audit trail
(issue 11, item 2): when an override reaches its end without being ended
early the server journals a policy_override_expired entry of its own
(author "server"), once, also for one that expired while the server was
down; the override routes and `tpwallet policy override list` show who
ended one and why, its extensions and when it expired; `tpwallet audit
log` names the override's platform and range for an end, an extension
and an expiry."""

import json
import time
import urllib.parse

from harness import e2e_test, check, check_eq, run_cli
import test_authz
from test_client_policy import base_policy, put_policy


def expiry_entries(data):
    """The policy_override_expired entries, oldest first, read offline
    from the journal by `tpwallet audit log --json`."""
    r = run_cli(["audit", "log", data, "--type", "policy_override_expired",
                 "--json"])
    check_eq(r.returncode, 0, "audit log: " + r.stderr)
    return [json.loads(l) for l in reversed(r.stdout.splitlines())]


def wait_expiry_entries(data, n, timeout):
    """Poll (bounded) until there are n expiry entries."""
    deadline = time.monotonic() + timeout
    while True:
        got = expiry_entries(data)
        if len(got) >= n or time.monotonic() >= deadline:
            return got
        time.sleep(0.5)


def open_override(s, rng, duration_s, reason):
    r = s.post("/v1/client-policy/overrides",
               {"platform": "android", "range": rng, "mode": "allow",
                "duration_s": duration_s, "reason": reason})
    check_eq(r.status, 201, "open override %s: %r" % (rng, r))
    return r.json()


def override(s, oid):
    r = s.get("/v1/client-policy/overrides/%d" % oid)
    check_eq(r.status, 200, "GET override %d: %r" % (oid, r))
    return r.json()


@e2e_test(timeout=300, waits=True)
def test_override_expiry_is_an_entry_once_and_the_routes_show_its_life(ctx):
    a = test_authz.Authz(ctx)
    s = a.s
    data = s.data_dir
    [bot] = a.keys(1)
    tp = bot["thumbprint"]
    a.register(bot, "oncall-bot")
    links = a.chain([{"ops": ["policy:admin"]}], [bot])
    doc, _, _ = base_policy()
    r = put_policy(s, doc, reason="raise android min to 4.0.0")
    check_eq(r.status, 201, "PUT policy: %r" % r)

    # A: the minimum duration, left to expire while the server runs.
    ov_a = open_override(s, "3.9.x", 60, "REL-311 lockout")
    # C: extended by the administrator, ended early by oncall-bot.
    ov_c = open_override(s, "3.8.x", 600, "REL-312")
    r = s.post("/v1/client-policy/overrides/%d/extend" % ov_c["id"],
               {"duration_s": 900, "reason": "still rolling out"})
    check_eq(r.status, 200, "extend C: %r" % r)
    r = a.call(links, bot, "DELETE",
               "/v1/client-policy/overrides/%d?reason=%s"
               % (ov_c["id"], urllib.parse.quote("3.9.5 shipped")))
    check_eq(r["status"], 200, "oncall-bot ends C: %r" % r)
    c = override(s, ov_c["id"])
    check_eq((c["ended_early"], c["ended_by"], c["end_reason"],
              c["expired_at"]),
             (True, {"name": "oncall-bot", "thumbprint": tp},
              "3.9.5 shipped", None), "C: who ended it and why")
    check_eq(len(c["extensions"]), 1, "C: one extension")
    x = c["extensions"][0]
    check_eq((x["by"], x["duration_s"], x["reason"]),
             ({"name": "administrator"}, 900, "still rolling out"),
             "C's extension")
    check(x["at"] <= x["expires_at"], "extension times: %r" % x)
    r = s.get("/v1/client-policy/overrides?all=true")
    check_eq(r.status, 200, "list: %r" % r)
    listed = {o["id"]: o for o in r.json()["overrides"]}
    check_eq(listed[ov_c["id"]], c, "the list shows what GET {id} shows")
    fresh = override(s, ov_a["id"])
    check_eq((fresh["ended_by"], fresh["end_reason"], fresh["expired_at"],
              fresh["extensions"]), (None, None, None, []),
             "A before its end")
    r = run_cli(["policy", "override", "list", "--all"] + s.cli_args())
    check_eq(r.returncode, 0, "override list: " + r.stderr)
    check("        ended at %s by oncall-bot (%s): 3.9.5 shipped\n"
          % (c["expires_at"], tp) in r.stdout, "list: the end: %r"
          % r.stdout)
    check("        extended at %s by administrator for 900 s, until %s: "
          "still rolling out\n" % (x["at"], x["expires_at"]) in r.stdout,
          "list: the extension: %r" % r.stdout)

    # B, opened 10 s after A, must expire while the server is down.
    time.sleep(10)
    ov_b = open_override(s, "3.7.x", 60, "REL-313")

    # A's end passes: one entry, the server's, within seconds.
    wait_s = max(0.0, end_s(ov_a) - time.time()) + 15
    got = wait_expiry_entries(data, 1, wait_s)
    check_eq(len(got), 1, "one expiry entry after A's end")
    e = got[0]
    check_eq((e["author"], e["fields"]),
             ({"name": "server"},
              {"override_id": str(ov_a["id"]),
               "expires_at": ov_a["expires_at"], "platform": "android",
               "range": "3.9.x"}), "A's expiry entry, decoded")
    check_eq(e["summary"], "override %d (android 3.9.x) expired: its end, "
             "%s, passed" % (ov_a["id"], ov_a["expires_at"]), "summary")
    check(int(e["timestamp_ns"]) >= end_s(ov_a) * 10**9,
          "the entry is not before the end")
    # The server's decoded view says the same.
    r = s.get("/v1/audit/entries/%s?view=decoded" % e["index"])
    check_eq(r.status, 200, "decoded entry: %r" % r)
    d = r.json()["decoded"]
    check_eq((d["command"], d["author"], d["fields"], d["summary"]),
             ("policy_override_expired", {"name": "server"}, e["fields"],
              e["summary"]), "GET /v1/audit/entries/{i}?view=decoded")
    check(s.wait_log(r'"msg":"client-policy override expired","id":%d,'
                     r'"platform":"android","range":"3\.9\.x",'
                     r'"author":"administrator"' % ov_a["id"], 5),
          "the expiry's log line")
    check_eq(override(s, ov_a["id"])["expired_at"], ov_a["expires_at"],
             "A: expired_at")
    r = run_cli(["audit", "log", data, "--author", "server"])
    check_eq(r.stdout.count("\tpolicy_override_expired\tserver\t"), 1,
             "--author server: %r" % r.stdout)
    # An end and an extension name the override's platform and range.
    r = run_cli(["audit", "log", data, "--grep", "3.8.x"])
    check("override %d (android 3.8.x) ended: 3.9.5 shipped\n"
          % ov_c["id"] in r.stdout, "audit log, the end: %r" % r.stdout)
    check("override %d (android 3.8.x) extended by 900 s: still rolling "
          "out\n" % ov_c["id"] in r.stdout,
          "audit log, the extension: %r" % r.stdout)
    b_now = override(s, ov_b["id"])
    check_eq(b_now["expired_at"], None, "B not yet expired at the stop")
    s.stop()
    check_eq(len(expiry_entries(data)), 1, "no entry for B before the stop")

    # Down past B's end, then up: B's entry once, at start.
    time.sleep(max(0.0, end_s(ov_b) - time.time()) + 2)
    s.start()
    got = wait_expiry_entries(data, 2, 15)
    check_eq([g["fields"]["override_id"] for g in got],
             [str(ov_a["id"]), str(ov_b["id"])],
             "B's entry after the restart")
    check_eq(override(s, ov_b["id"])["expired_at"], ov_b["expires_at"],
             "B: expired_at")
    s.stop()
    # Once: a second restart writes none.
    s.start()
    time.sleep(3)
    s.stop()
    check_eq([g["fields"]["override_id"] for g in expiry_entries(data)],
             [str(ov_a["id"]), str(ov_b["id"])],
             "no second entry after another restart")


def end_s(ov):
    """An override's expires_at in unix seconds."""
    import calendar
    return calendar.timegm(time.strptime(ov["expires_at"],
                                         "%Y-%m-%dT%H:%M:%SZ"))
