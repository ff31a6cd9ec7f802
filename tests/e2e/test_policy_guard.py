"""test_policy_guard.py - the guard rails of issue 11, item 5 that come
with a new client-policy document (docs/client-policy.md, "The impact of
a new document" and "Reverting one version"): `PUT /v1/client-policy` and
`tpwallet policy set` report the users of the last 7 days a document
newly blocks, per platform, and are refused above
client_policy_max_blocked_share unless confirmed, before anything is
journaled; `POST /v1/client-policy/revert` and `tpwallet policy revert N`
undo one version's change on top of the current document, through the
same guard, with a dry run and a 409 on a conflict.

Activity comes from `POST /v1/client-policy/activity` (verified: the
administrator's credential), dated yesterday so that it is in the window
whichever side of midnight the server reads the clock.
"""

import json
import os
import time
import urllib.parse

from harness import e2e_test, check, check_eq, run_cli, slow_factor
from test_client_policy import (check_ok, check_problem, put_policy,
                                current_version)

DAY = 86400


def load_activity(s, counts):
    """counts: {(platform, version): users}; user ids are unique."""
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - DAY))
    obs, n = [], 0
    for (platform, version), users in sorted(counts.items()):
        for _ in range(users):
            n += 1
            obs.append({"day": day, "platform": platform,
                        "version": version, "user": "guard-u%d" % n})
    r = check_ok(s.post("/v1/client-policy/activity",
                        {"observations": obs}), 200, "POST activity")
    check_eq((r["observed"], r["dropped"]), (n, 0), "activity loaded")


def journaled_reasons(s, last, timeout=10.0):
    """The reasons of every policy_set entry of the audit log, once its
    last entry is the policy_set whose reason is `last` (the audit thread
    follows the journal: bounded wait)."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        size = int(check_ok(s.get("/v1/audit/head"), 200, "head")["size"])
        views = [check_ok(s.get("/v1/audit/entries/%d?view=decoded" % i),
                          200, "entry %d" % i)["decoded"]
                 for i in range(size)]
        if views and views[-1].get("command") == "policy_set" and \
                views[-1]["fields"].get("reason") == last:
            return [v["fields"].get("reason") for v in views
                    if v.get("command") == "policy_set"]
        check(time.monotonic() < deadline, "the last audit entry is not "
              "the policy_set %r within %.0fs" % (last, timeout))
        time.sleep(0.05)


def rows(impact):
    """{platform: (actives, newly_blocked, blocked_before, blocked_after,
    share)} of an impact object."""
    return {p["platform"]: (p["actives"], p["newly_blocked"],
                            p["blocked_before"], p["blocked_after"],
                            round(p["share"], 6))
            for p in impact["platforms"]}


def android(min_supported, **more):
    rules = {"min_supported": min_supported}
    rules.update(more)
    return rules


@e2e_test(timeout=90)
def test_policy_guard_set_over_threshold_is_refused_unless_accepted(ctx):
    """A document that newly blocks 20% of android's active users is
    refused 409 policy-impact-too-high with the numbers per platform and
    the threshold (PUT and `policy set`, which prints the table and the
    command that confirms), adds no audit entry, and is activated with
    ?accept_impact=true or --accept-impact; a dry run shows the impact
    and activates nothing; a document below the threshold passes and
    reports its impact."""
    s = ctx.start_server()
    s.require_admin_token()
    load_activity(s, {("android", "3.9.0"): 10, ("android", "4.0.5"): 10,
                      ("android", "4.1.0"): 80, ("ios", "2.0.0"): 20})
    v1 = {"platforms": {"android": android("3.0.0"), "ios": {}}}
    out = check_ok(put_policy(s, v1, "v1"), 201, "PUT v1")
    check_eq(rows(out["impact"]), {"android": (100, 0, 0, 0, 0.0),
                                   "ios": (20, 0, 0, 0, 0.0)},
             "v1's impact")
    check_eq((out["impact"]["window_days"], out["impact"]["threshold"],
              out["impact"]["against_version"],
              out["impact"]["over_threshold"]), (7, 0.05, 0, False),
             "v1's impact: window, threshold, against")

    v2 = {"platforms": {"android": android("4.1.0"), "ios": {}}}
    p = check_problem(put_policy(s, v2, "v2"), 409,
                      "policy-impact-too-high", "PUT v2 over 5%")
    check_eq(rows(p["impact"]), {"android": (100, 20, 0, 20, 0.2),
                                 "ios": (20, 0, 0, 0, 0.0)},
             "the refusal's numbers")
    check_eq((p["threshold"], p["impact"]["against_version"],
              p["impact"]["over_threshold"]), (0.05, 1, True),
             "the refusal's threshold")
    check_eq(current_version(s), 1, "the version after the refusal")
    check_problem(s.request("PUT", "/v1/client-policy?accept_impact=yes",
                            body=json.dumps(v2),
                            headers={"Content-Type": "application/json"}),
                  400, "invalid-query", "accept_impact=yes")

    path = os.path.join(ctx.path("guard"), "v2.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(v2, f)
    args = ["policy", "set", path, "--reason", "raise to 4.1.0"]
    r = run_cli(args + s.cli_args())
    table = ("impact: users active in the last 7 days newly blocked "
             "(threshold 5%):\n  android: 20 of 100 (20.0%)\n"
             "  ios: 0 of 20 (0.0%)\n")
    check_eq((r.returncode, r.stdout),
             (1, table + "not activated; to activate it anyway:\n"
              "  tpwallet policy set %s --reason 'raise to 4.1.0' "
              "--server %s --data %s --accept-impact\n"
              % (path, s.cli_args()[1], s.cli_args()[3])),
             "policy set over the threshold (stderr %r)" % r.stderr)
    check("policy-impact-too-high" in r.stderr, "stderr: %r" % r.stderr)

    r = run_cli(["policy", "set", path, "--dry-run"] + s.cli_args())
    check_eq((r.returncode, r.stdout),
             (0, "dry run: this document would be version 2: 1 change "
              "from version 1\n  platforms.android.min_supported: "
              "\"3.0.0\" -> \"4.1.0\"\n" + table), "set --dry-run")
    d = check_ok(s.request("PUT", "/v1/client-policy?dry_run=true",
                           body=json.dumps(v2),
                           headers={"Content-Type": "application/json"}),
                 200, "PUT ?dry_run=true")
    check_eq((d["status"], d["current"], rows(d["impact"])["android"],
              d["document"]), ("dry_run", 1, (100, 20, 0, 20, 0.2), v2),
             "the dry run's answer")
    check_eq(current_version(s), 1, "the version after the dry runs")

    r = run_cli(args + ["--accept-impact"] + s.cli_args())
    check_eq((r.returncode, r.stdout),
             (0, "activated version 2: 1 change from version 1\n"
              "  platforms.android.min_supported: \"3.0.0\" -> \"4.1.0\"\n"
              + table), "set --accept-impact (stderr %r)" % r.stderr)
    # The refusals and the dry runs journaled nothing.
    check_eq(journaled_reasons(s, "raise to 4.1.0"), ["v1", "raise to 4.1.0"],
             "policy_set entries after the refusals and one accepted set")

    v3 = {"platforms": {"android": android("4.1.0"),
                        "ios": {"blocked": ["<3.0.0"]}}}
    check_problem(put_policy(s, v3, "v3"), 409, "policy-impact-too-high",
                  "PUT v3 blocks every ios user")
    r = s.request("PUT", "/v1/client-policy?reason=v3&accept_impact=true",
                  body=json.dumps(v3),
                  headers={"Content-Type": "application/json"})
    out = check_ok(r, 201, "PUT v3 ?accept_impact=true")
    check_eq((out["version"], rows(out["impact"])),
             (3, {"android": (100, 0, 20, 20, 0.0),
                  "ios": (20, 20, 0, 20, 1.0)}), "v3's impact")


@e2e_test(timeout=60)
def test_policy_guard_threshold_is_a_setting_and_no_activity_passes(ctx):
    """client_policy_max_blocked_share moves the threshold (at 25%, 20%
    passes unconfirmed and 100% does not); with no activity recorded a
    document that blocks versions passes with a note."""
    s = ctx.start_server(env={"TPWALLET_CLIENT_POLICY_MAX_BLOCKED_SHARE":
                              "0.25"})
    s.require_admin_token()
    out = check_ok(put_policy(s, {"platforms": {"android":
                                                android("9.0.0")}}, "v1"),
                   201, "PUT with no activity")
    check_eq((out["impact"]["platforms"], out["impact"]["note"],
              out["impact"]["threshold"]),
             ([], "no activity in the window: no user is known to be "
              "blocked", 0.25), "the impact with no activity")
    load_activity(s, {("android", "9.0.0"): 2, ("android", "9.1.0"): 8})
    out = check_ok(put_policy(s, {"platforms": {"android":
                                                android("9.1.0")}}, "v2"),
                   201, "PUT blocking 20% under a 25% threshold")
    check_eq(rows(out["impact"]), {"android": (10, 2, 0, 2, 0.2)},
             "v2's impact")
    p = check_problem(put_policy(s, {"platforms": {"android":
                                                   android("9.2.0")}},
                                 "v3"), 409, "policy-impact-too-high",
                      "PUT blocking the other 80%")
    check_eq((rows(p["impact"]), p["threshold"]),
             ({"android": (10, 8, 2, 10, 0.8)}, 0.25), "v3's refusal")
    check_eq(current_version(s), 2, "the version after the refusal")
    # A value that is not a decimal from 0 to 1 stops the server at
    # start (exit 2, the setting named), before it listens.
    for i, bad in enumerate(("1.5", "5%", ".5", "0.05.1", "-0", "1e-2",
                             " 0.1")):
        r = run_cli(["serve", "--data", ctx.path("never-%d" % i),
                     "--listen", "127.0.0.1:0"],
                    env={"TPWALLET_CLIENT_POLICY_MAX_BLOCKED_SHARE": bad})
        check_eq(r.returncode, 2, "serve with the setting %r" % bad)
        check("invalid value for 'client_policy_max_blocked_share'"
              in r.stderr, "the refusal of %r: %r" % (bad, r.stderr))


def document(s, version=None):
    path = ("/v1/client-policy/versions/%d" % version if version
            else "/v1/client-policy/current")
    return check_ok(s.get(path), 200, "GET " + path)


@e2e_test(timeout=90)
def test_policy_guard_revert_undoes_one_version_and_keeps_later_ones(ctx):
    """`policy revert 2` on top of v3 puts android's minimum back and
    keeps v3's ios (a new version whose reason names version 2); a
    revert whose keys changed again since is 409 policy-revert-conflict
    with the paths, and activates nothing; --dry-run prints the changes
    without activating; a revert that newly blocks active users goes
    through the impact guard (409, then accept_impact)."""
    s = ctx.start_server()
    s.require_admin_token()
    v1 = {"platforms": {"android": android("4.0.0", blocked=["3.x"])}}
    v2 = {"platforms": {"android": android("4.1.0", blocked=["3.x"])}}
    v3 = {"platforms": {"android": android("4.1.0", blocked=["3.x"]),
                        "ios": {"min_supported": "2.0.0"}}}
    for n, doc in enumerate((v1, v2, v3), 1):
        check_eq(check_ok(put_policy(s, doc, "v%d" % n), 201,
                          "PUT v%d" % n)["version"], n, "version")

    def cli(*args):
        return run_cli(["policy", "revert"] + list(args) + s.cli_args())

    r = cli("2", "--reason", "4.1.0 was too soon")
    check_eq((r.returncode, r.stdout),
             (0, "activated version 4 (reverts version 2): 1 change from "
              "version 3\n  platforms.android.min_supported: \"4.1.0\" -> "
              "\"4.0.0\"\nimpact: users active in the last 7 days newly "
              "blocked (threshold 5%):\n  (no activity recorded: no user "
              "is known to be blocked)\n"), "revert 2 (stderr %r)" % r.stderr)
    cur = document(s)
    check_eq((cur["version"], cur["document"], cur["reason"]),
             (4, {"platforms": {"android": android("4.0.0", blocked=["3.x"]),
                                "ios": {"min_supported": "2.0.0"}}},
              "revert of version 2: 4.1.0 was too soon"),
             "the current document after revert 2")

    # v5 raises the minimum again: reverting 2 now conflicts with it.
    v5 = {"platforms": {"android": android("4.2.0", blocked=["3.x"]),
                        "ios": {"min_supported": "2.0.0"}}}
    check_ok(put_policy(s, v5, "v5"), 201, "PUT v5")
    p = check_problem(s.post("/v1/client-policy/revert", {"version": 2}),
                      409, "policy-revert-conflict", "revert 2 over v5")
    check_eq((p["version"], p["current"], p["conflict_count"],
              p["conflicts"]),
             (2, 5, 1, ["platforms.android.min_supported"]),
             "the conflict's paths")
    r = cli("2")
    check_eq((r.returncode, r.stdout), (1, ""), "CLI revert 2 over v5")
    check("policy-revert-conflict" in r.stderr and
          "conflict: platforms.android.min_supported\n" in r.stderr,
          "the CLI names the conflict: %r" % r.stderr)
    check_problem(s.post("/v1/client-policy/revert", {"version": 9}), 404,
                  "policy-not-found", "revert 9")
    p = check_problem(s.post("/v1/client-policy/revert",
                             {"version": 3, "force": True}), 400,
                      "unknown-field", "an unknown member")
    check_eq(p.get("field"), "force", "the unknown member")

    # The dry run of reverting 3 (ios goes) changes nothing.
    r = cli("3", "--dry-run")
    check_eq((r.returncode, r.stdout),
             (0, "dry run: reverting version 3 would be version 6: 1 change "
              "from version 5\n  platforms.ios: {\"min_supported\":"
              "\"2.0.0\"} -> absent\nimpact: users active in the last 7 "
              "days newly blocked (threshold 5%):\n  (no activity "
              "recorded: no user is known to be blocked)\n"),
             "revert 3 --dry-run (stderr %r)" % r.stderr)
    check_eq(current_version(s), 5, "the version after the dry run")

    # v6 lowers ios's minimum; reverting it would block the 1.5.0 users.
    load_activity(s, {("ios", "1.5.0"): 10, ("ios", "2.0.0"): 10,
                      ("android", "4.2.0"): 10})
    v6 = {"platforms": {"android": android("4.2.0", blocked=["3.x"]),
                        "ios": {"min_supported": "1.0.0"}}}
    check_ok(put_policy(s, v6, "v6"), 201, "PUT v6")
    p = check_problem(s.post("/v1/client-policy/revert",
                             {"version": 6, "reason": "1.0.0 is broken"}),
                      409, "policy-impact-too-high", "revert 6")
    check_eq(rows(p["impact"]), {"android": (10, 0, 0, 0, 0.0),
                                 "ios": (20, 10, 0, 10, 0.5)},
             "revert 6's impact")
    r = cli("6", "--reason", "1.0.0 is broken")
    check_eq(r.returncode, 1, "CLI revert 6")
    check(r.stdout.endswith(
        "not activated; to activate it anyway:\n  tpwallet policy revert "
        "6 --reason '1.0.0 is broken' --server %s --data %s "
        "--accept-impact\n" % (s.cli_args()[1], s.cli_args()[3])),
        "the command to confirm: %r" % r.stdout)
    out = check_ok(s.post("/v1/client-policy/revert",
                          {"version": 6, "reason": "1.0.0 is broken",
                           "accept_impact": True}), 201,
                   "revert 6 accepted")
    check_eq((out["version"], out["reverted"], out["previous"],
              rows(out["impact"])["ios"]),
             (7, 6, 6, (20, 10, 0, 10, 0.5)), "revert 6's answer")
    check_eq(document(s)["document"], v5, "after revert 6: v5 again")
    # Conflicts, a dry run and impact refusals journaled nothing.
    check_eq(journaled_reasons(s, "revert of version 6: 1.0.0 is broken"),
             ["v1", "v2", "v3", "revert of version 2: 4.1.0 was too soon",
              "v5", "v6", "revert of version 6: 1.0.0 is broken"],
             "policy_set entries of the revert test")
    # The history shows the reverted version in the reason.
    r = run_cli(["policy", "history"] + s.cli_args())
    check("revert of version 6: 1.0.0 is broken" in r.stdout,
          "history: %r" % r.stdout)
