"""test_incident_drill.py - the "version expired" day, end to end (issue
11, "Done when").

One scripted on-call drill, as an operator lives it, against the real
server with a gateway in front (tests/e2e/gateway_stub.py) that refuses
android/3.9 itself:

  1. a release bot, under its own mandate, tries to raise android's
     minimum to 4.0.0; the guard refuses it with the impact numbers
     (30 of 100 active android users newly blocked) and journals
     nothing; `tpwallet policy set` of the same document is refused the
     same way; the bot then confirms with accept_impact;
  2. the operator opens an override for 3.9.x with a message for users;
     tpwallet's own verdict for android/3.9.4 is "supported" again, and
     the probe through the gateway flags that the gateway still refuses
     it (tpwallet_probe_disagreement 1, verdict refused_by_gateway);
  3. the app's own credential (an account owner's mandate) gets the
     signed manifest, which expires when the override ends and carries
     the override's message for users, not its internal reason;
  4. the operator ends the override, and `tpwallet audit log` names who
     raised the minimum, who opened and who ended the override, and why.

That every documented command runs as documented is test_docs.py's part.
"""

import json
import time
import urllib.parse

import gateway_stub
import test_authz
from harness import e2e_test, check, check_eq, run_cli, slow_factor
from test_client_channel import jwt_payload
from test_client_policy import check_ok, evaluate, metrics, parse_rfc3339
from test_policy_guard import load_activity, rows

GATEWAY_REFUSES = "android/3.9"
PROBED = "android/3.9.4"
RAISE_REASON = "raise android min to 4.0.0 (REL-311)"
OVERRIDE_REASON = "INC-7: 3.9 users locked out by REL-311"
END_REASON = "3.9.5 shipped"
USER_MESSAGE = {"default": "Sign-in is back for 3.9; please update soon.",
                "de": "Die Anmeldung geht wieder; bitte bald aktualisieren."}


def wait_metric(s, name, want, timeout):
    """Scrape /metrics until `name` is `want` (bounded); the last value."""
    deadline = time.monotonic() + timeout * slow_factor()
    got = None
    while time.monotonic() < deadline:
        got = metrics(s).get(name)
        if got == want:
            return got
        time.sleep(0.1)
    check(False, "%s is %r, not %r, after %.0f s" % (name, got, want,
                                                     timeout))


def probe_series(gw, verdict=None):
    label = 'probe="%s:%s"' % (gw.url, PROBED)
    if verdict is None:
        return "tpwallet_probe_disagreement{%s}" % label
    return 'tpwallet_probe_verdict{%s,verdict="%s"}' % (label, verdict)


@e2e_test(timeout=300)
def test_incident_drill_gateway_audit_trail_app_channel_and_guard(ctx):
    gw = gateway_stub.start(None, GATEWAY_REFUSES)
    try:
        a = test_authz.Authz(
            ctx, env={"TPWALLET_PROBE_INTERVAL_S": "1"},
            args=["--probe", "%s:%s" % (gw.url, PROBED)])
        s = a.s
        gw.upstream_port = s.port
        data = s.data_dir

        # Before: android from 3.0.0; 100 android users active this
        # week, 30 of them on 3.9.x (verified activity).
        v1 = {"platforms": {"android": {"min_supported": "3.0.0"}}}
        r = s.request("PUT", "/v1/client-policy?reason=baseline",
                      body=json.dumps(v1),
                      headers={"Content-Type": "application/json"})
        check_ok(r, 201, "PUT the baseline policy")
        load_activity(s, {("android", "3.9.4"): 30,
                          ("android", "4.1.0"): 70})
        # The gateway refuses 3.9.4 and so would tpwallet's policy once
        # raised; today the policy serves it: the probe already shows the
        # gateway as the one refusing.
        wait_metric(s, probe_series(gw), 1.0, 15)

        # 1. The release bot raises the minimum: refused by the guard.
        [bot, owner] = a.keys(2)
        a.register(bot, "release-bot")
        a.register(owner, "wallet-app")
        bot_links = a.chain([{"ops": ["policy:admin"]}], [bot])
        v2 = {"platforms": {"android": {"min_supported": "4.0.0"}}}
        path = "/v1/client-policy?reason=" + urllib.parse.quote(RAISE_REASON)
        before = int(check_ok(s.get("/v1/audit/head"), 200, "head")["size"])
        r = a.call(bot_links, bot, "PUT", path, body=v2)
        check_eq(r["status"], 409, "the bot's raise without confirmation: "
                 "%r" % r)
        doc = r["json"]
        check_eq(doc["type"].rsplit("/", 1)[-1], "policy-impact-too-high",
                 "the refusal's type")
        check_eq(rows(doc["impact"])["android"], (100, 30, 0, 30, 0.3),
                 "the refusal names 30 of 100 android users newly blocked")
        # The CLI says the same, with the command that confirms.
        pfile = ctx.path("raise.json")
        with open(pfile, "w") as f:
            json.dump(v2, f)
        r = run_cli(["policy", "set", pfile, "--reason", RAISE_REASON]
                    + s.cli_args())
        check_eq(r.returncode, 1, "policy set over the threshold: %s%s"
                 % (r.stdout, r.stderr))
        out = r.stdout + r.stderr
        check("android: 30 of 100 (30.0%)" in out,
              "policy set prints the impact: %r" % out)
        check("--accept-impact" in out, "and how to confirm: %r" % out)
        time.sleep(0.3)  # what a journaled refusal would have added
        check_eq(int(s.get("/v1/audit/head").json()["size"]), before,
                 "the refusals journaled nothing")
        r = a.call(bot_links, bot, "PUT", path + "&accept_impact=true",
                   body=v2)
        check_eq(r["status"], 201, "the bot's raise, confirmed: %r" % r)
        check_eq(evaluate(s, platform="android", version="3.9.4")
                 .get("decision"), "blocked", "3.9.4 after the raise")
        # Both refuse it now: the probe agrees with the policy again.
        wait_metric(s, probe_series(gw), 0.0, 15)

        # 2. The operator lets 3.9.x in again for ten minutes, with a
        # message for its users.
        r = s.post("/v1/client-policy/overrides",
                   {"platform": "android", "range": "3.9.x",
                    "mode": "allow", "duration_s": 600,
                    "reason": OVERRIDE_REASON, "message": USER_MESSAGE})
        ov = check_ok(r, 201, "open the override")
        ov_end = int(parse_rfc3339(ov["expires_at"]))
        check_eq(evaluate(s, platform="android", version="3.9.4")
                 .get("decision"), "supported", "3.9.4 under the override")
        # ...and the probe shows that the gateway still refuses it.
        wait_metric(s, probe_series(gw), 1.0, 15)
        check_eq(metrics(s).get(probe_series(gw, "refused_by_gateway")),
                 1.0, "the probe's verdict: refused by the gateway")
        check(gw.refused > 0, "the gateway refused the probes")

        # 3. The app's own credential (the owner of account 10, reading
        # it) gets the signed manifest: valid until the override ends,
        # with the override's message for users and not its reason.
        a.accounts([10], owner=owner["thumbprint"])
        app_links = a.chain([{"ops": ["accounts:read"],
                              "accounts": ["10"]}], [owner])
        r = a.call(app_links, owner, "GET",
                   "/v1/client-policy?platform=android&version=3.9.4",
                   headers={"Accept-Language": "de"})
        check_eq(r["status"], 200, "the manifest with the app's mandate: "
                 "%r" % (r.get("body"),))
        m = jwt_payload(r["body"])
        check_eq((m.get("decision"), m.get("exp")), ("supported", ov_end),
                 "the app's manifest: served, valid until the override's "
                 "end")
        check_eq(m["override"].get("message"), USER_MESSAGE["de"],
                 "the override's message, in the app's language")
        check(OVERRIDE_REASON not in r["body"] and
              OVERRIDE_REASON not in json.dumps(m),
              "the override's internal reason reached the app: %r" % m)

        # 4. The override ends; the audit trail says who did what and why.
        r = s.request("DELETE", "/v1/client-policy/overrides/%d?reason=%s"
                      % (ov["id"], urllib.parse.quote(END_REASON)))
        check_ok(r, 200, "end the override")
        deadline = time.monotonic() + 10 * slow_factor()
        while True:
            r = run_cli(["audit", "log", data, "--json"])
            check_eq(r.returncode, 0, "audit log: " + r.stderr)
            entries = [json.loads(ln) for ln in r.stdout.splitlines()]
            cmds = [e.get("command") for e in entries]
            if "policy_override_end" in cmds:
                break
            check(time.monotonic() < deadline,
                  "the override's end is not in the audit log: %r" % cmds)
            time.sleep(0.1)

        def who(e):
            return (e.get("author") or {}).get("name")

        sets = [e for e in entries if e.get("command") == "policy_set"]
        check_eq([(who(e), e["fields"]["reason"]) for e in sets],
                 [("release-bot", RAISE_REASON),
                  ("administrator", "baseline")],
                 "policy sets, newest first: who and why")
        check_eq(sets[0]["author"].get("thumbprint"), bot["thumbprint"],
                 "the bot's thumbprint")
        # (an override with a message for users is journaled as kind 20)
        [opened] = [e for e in entries if e.get("command") ==
                    "policy_override_2"]
        check_eq((who(opened), opened["fields"]["reason"],
                  opened["fields"]["override_id"]),
                 ("administrator", OVERRIDE_REASON, str(ov["id"])),
                 "who opened the override and why")
        [ended] = [e for e in entries if e.get("command") ==
                   "policy_override_end"]
        check_eq((who(ended), ended["fields"]["reason"],
                  ended["fields"]["override_id"]),
                 ("administrator", END_REASON, str(ov["id"])),
                 "who ended the override and why")
        check(cmds.index("policy_override_end") <
              cmds.index("policy_override_2") < cmds.index("policy_set"),
              "newest first: %r" % cmds)
        s.stop()
    finally:
        gw.stop()
