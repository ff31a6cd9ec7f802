"""test_client_channel.py - the app's channel (issue 11, item 3;
docs/client-policy.md, "The signed manifest", "Overrides" and "Notices"):
the signed manifest read with an app's own credential, and without one
only where the operator allows it; its exp bounded by the next change the
server knows of and by manifest_ttl_max_s, with a Cache-Control that
agrees; an override's user message in the client's language, and its
internal reason kept from every client-visible answer; the Client-Notice
header on gated replies while a notice is active.

The payload of a manifest is read here without verifying its signature:
test_client_policy.py verifies manifests with npm `jose`.
"""

import base64
import json
import os
import re
import time

from harness import e2e_test, check, check_eq, run_cli
import test_authz
from test_client_policy import (base_policy, check_ok, check_problem,
                                check_problem_any, parse_rfc3339,
                                put_policy, rfc3339, MSG_DEFAULT)

REASON = "locked out by REL-311"
MSG = {"default": "We are fixing sign-in. Back soon.",
       "de": "Wir beheben die Anmeldung. Bald wieder da."}
MANIFEST = "/v1/client-policy?platform=android&version=3.9.0"


def jwt_payload(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def max_age(cache_control):
    """(directive, max-age) of 'private, max-age=N'."""
    m = re.match(r"^(public|private), max-age=(\d+)$", cache_control or "")
    check(m, "Cache-Control %r is not '<public|private>, max-age=N'"
          % (cache_control,))
    return m.group(1), int(m.group(2))


def manifest(s, path=MANIFEST, **kw):
    """(payload, Cache-Control) of the manifest at path."""
    r = s.get(path, **kw)
    check_eq(r.status, 200, "GET %s: %r" % (path, r))
    check_eq((r.header("content-type") or "").split(";")[0],
             "application/jwt", "manifest Content-Type")
    return jwt_payload(r.body.decode()), r.header("cache-control"), r


def open_override(s, duration_s, **extra):
    body = {"platform": "android", "range": "3.x", "mode": "allow",
            "duration_s": duration_s, "reason": REASON}
    body.update(extra)
    return check_ok(s.post("/v1/client-policy/overrides", body), 201,
                    "POST override %r" % (extra,))


@e2e_test(timeout=240)  # may run npm ci
def test_channel_app_credential_reads_manifest_anonymous_only_if_public(ctx):
    """Any principal reads the manifest (here an account owner's mandate,
    accounts:read on one account); without a credential it is 401 until
    the operator sets manifest_public, and then only the manifest opens:
    the other policy routes still want a credential."""
    a = test_authz.Authz(ctx)
    s = a.s
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")
    app, = a.keys(1)
    links = a.chain([{"ops": ["accounts:read"], "accounts": ["10"]}], [app])
    r = a.call(links, app, "GET", MANIFEST)
    check_eq(r["status"], 200, "manifest with the app's mandate: %r"
             % (r.get("body"),))
    check_eq(r["headers"].get("content-type"), "application/jwt",
             "manifest Content-Type (app)")
    p = jwt_payload(r["body"])
    check_eq((p.get("decision"), p.get("message")), ("blocked", MSG_DEFAULT),
             "the app's manifest")
    directive, age = max_age(r["headers"].get("cache-control"))
    check_eq(directive, "private", "a credentialed manifest is private")
    check_eq(age, p["exp"] - p["iat"], "max-age is exp - iat")
    # The app's mandate is still no policy reader.
    r = a.call(links, app, "GET",
               "/v1/client-policy/evaluate?platform=android&version=3.9.0")
    check_eq(r["status"], 403, "evaluate with the app's mandate")
    check_problem_any(s.get(MANIFEST, auth=None), 401,
                      "manifest without a credential (default)")
    s.stop()

    pub = ctx.start_server(env={"TPWALLET_MANIFEST_PUBLIC": "1"})
    pub.require_admin_token()
    check_ok(put_policy(pub, doc, "v1"), 201, "PUT v1 (public)")
    p, cc, r = manifest(pub, auth=None)
    check_eq(p.get("decision"), "blocked", "anonymous manifest decision")
    directive, age = max_age(cc)
    check_eq(directive, "public", "an anonymous manifest is public")
    check_eq(age, p["exp"] - p["iat"], "max-age is exp - iat (public)")
    check_eq(r.header("vary"), "Accept-Language", "Vary")
    _, cc, _ = manifest(pub)
    check_eq(max_age(cc)[0], "private", "the admin's manifest is private")
    for path in ("/v1/client-policy/evaluate?platform=android",
                 "/v1/client-policy/current",
                 "/v1/client-policy/overrides"):
        check_problem_any(pub.get(path, auth=None), 401,
                          "%s without a credential (public manifest)" % path)
    check_problem_any(pub.request("PUT", "/v1/client-policy", body="{}",
                                  auth=None), 401,
                      "PUT without a credential (public manifest)")
    r = pub.get(MANIFEST, auth="Bearer not-a-token")
    check_problem_any(r, 401, "manifest with a bad credential (public)")
    pub.stop()


@e2e_test(timeout=90)
def test_channel_manifest_exp_is_the_next_change_and_max_age_agrees(ctx):
    """manifest_ttl_max_s bounds exp; an override ending in 120 s makes
    exp its end and max-age at most 120; a notice ending sooner, for the
    platform, bounds it again; one for another platform does not."""
    s = ctx.start_server(env={"TPWALLET_MANIFEST_TTL_MAX_S": "3600"})
    s.require_admin_token()
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")
    p, cc, _ = manifest(s)
    check_eq(p["exp"] - p["iat"], 3600, "exp - iat with the maximum 3600")
    check_eq(max_age(cc), ("private", 3600), "Cache-Control at the maximum")

    ov = open_override(s, 120)
    end = parse_rfc3339(ov["expires_at"])
    p, cc, _ = manifest(s)
    check_eq(p.get("decision"), "supported", "decision under the override")
    check_eq(p["exp"], end, "exp is the override's end")
    directive, age = max_age(cc)
    check(0 < age <= 120, "max-age %d is not within the override's 120 s"
          % age)
    check_eq(age, p["exp"] - p["iat"], "max-age is exp - iat")
    # Notices bound it too, each for the platforms it names.
    ios_doc = dict(doc)
    ios_doc["platforms"] = dict(doc["platforms"])
    now = int(time.time())
    ios_doc["notices"] = [
        {"id": "soon-android", "severity": "info",
         "text": {"default": "Maintenance"},
         "ends_at": rfc3339(now + 90), "platforms": ["android"]},
        {"id": "sooner-ios", "severity": "info",
         "text": {"default": "iOS maintenance"},
         "ends_at": rfc3339(now + 70), "platforms": ["ios"]}]
    check_ok(put_policy(s, ios_doc, "notices"), 201, "PUT notices")
    p, cc, _ = manifest(s)
    check_eq(p["exp"], now + 90, "exp is the android notice's end")
    p, _, _ = manifest(s, "/v1/client-policy?platform=ios&version=4.0.0")
    check_eq(p["exp"], now + 70, "ios: exp is the ios notice's end")
    s.stop()


@e2e_test(timeout=90)
def test_channel_override_message_in_the_client_language_reason_kept(ctx):
    """The override's message reaches the manifest and the evaluate answer
    in the language asked for (lang, else Accept-Language, else
    default), with the expected end; its reason is in no client-visible
    answer (manifest, evaluate, the gated reply) but the operators'
    override routes show it; a bad message or expected end is refused
    with the field named and opens nothing."""
    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")
    now = int(time.time())
    bad = [
        ({"message": {"de": "nur Deutsch"}}, "message"),
        ({"message": {"default": ""}}, "message.default"),
        ({"message": "text"}, "message"),
        ({"message": {"default": "x", "not a tag": "y"}}, "message.not a tag"),
        ({"message": {"default": "x" * 2049}}, "message.default"),
        ({"expected_end": rfc3339(now - 60)}, "expected_end"),
        ({"expected_end": "tomorrow"}, "expected_end"),
    ]
    for extra, field in bad:
        body = {"platform": "android", "range": "3.x", "mode": "allow",
                "duration_s": 600, "reason": REASON}
        body.update(extra)
        doc_p = check_problem(s.post("/v1/client-policy/overrides", body),
                              422, "invalid-policy", "override %r" % extra)
        check_eq(doc_p.get("field"), field, "field of %r" % (extra,))
    lst = check_ok(s.get("/v1/client-policy/overrides?all=true"), 200,
                   "overrides after the refusals")["overrides"]
    check_eq(lst, [], "no override opened by a refused request")

    expected = rfc3339(now + 7200)
    ov = open_override(s, 600, message=MSG, expected_end=expected)
    check_eq((ov.get("message"), ov.get("expected_end"), ov.get("reason")),
             (MSG, expected, REASON), "the override as operators see it")

    def evaluate(**headers):
        q = "/v1/client-policy/evaluate?platform=android&version=3.9.0"
        if "lang" in headers:
            q += "&lang=" + headers.pop("lang")
        r = s.get(q, headers=headers)
        check_eq(r.status, 200, "evaluate %r" % headers)
        return r

    cases = [({}, MSG["default"]),
             ({"Accept-Language": "de-AT, en;q=0.5"}, MSG["de"]),
             ({"Accept-Language": "fr"}, MSG["default"]),
             ({"lang": "de", "Accept-Language": "en"}, MSG["de"])]
    for headers, want in cases:
        r = evaluate(**dict(headers))
        d = r.json()
        check_eq(d["override"].get("message"), want,
                 "evaluate's override message for %r" % headers)
        check_eq(d["override"].get("expected_end"), expected,
                 "evaluate's expected_end")
        check(REASON not in r.body.decode() and "reason" not in d["override"],
              "the reason is in the evaluate answer: %r" % r.body)
        path = MANIFEST + ("&lang=" + headers["lang"]
                           if "lang" in headers else "")
        h = {k: v for k, v in headers.items() if k != "lang"}
        p, _, raw = manifest(s, path, headers=h)
        check_eq((p["override"].get("message"),
                  p["override"].get("expected_end")), (want, expected),
                 "manifest's override for %r" % headers)
        check(REASON not in json.dumps(p) and REASON not in raw.body.decode(),
              "the reason is in the manifest")
    r = s.get("/v1/keys", headers={"X-Client-Version": "android/3.9.0"})
    check_eq(r.status, 200, "gated request relaxed by the override")
    check(REASON not in r.body.decode() and
          all(REASON not in v for v in r.headers.values()),
          "the reason is in the gated reply")
    # The CLI sends the message and expected end, and the audit log
    # shows the kind 20 entry with them.
    r = run_cli(["policy", "override", "open", *s.cli_args(),
                 "--platform", "android", "--range", "3.8.x",
                 "--mode", "compat", "--duration", "10m",
                 "--reason", "REL-312", "--message", "default=Soon fixed",
                 "--message", "de=Bald behoben", "--expected-end", expected])
    check_eq(r.returncode, 0, "policy override open --message: %s"
             % r.stderr)
    m = re.match(r"^override (\d+) opened", r.stdout)
    check(m, "override open printed %r" % r.stdout)
    got = check_ok(s.get("/v1/client-policy/overrides/" + m.group(1)), 200,
                   "GET the CLI's override")
    check_eq((got.get("message"), got.get("expected_end")),
             ({"de": "Bald behoben", "default": "Soon fixed"}, expected),
             "the CLI's override")
    r = run_cli(["policy", "override", "open", *s.cli_args(),
                 "--platform", "android", "--range", "3.8.x",
                 "--mode", "compat", "--duration", "10m",
                 "--reason", "REL-312", "--message", "de=nur Deutsch"])
    check_eq(r.returncode, 2, "a message without default is a usage error")
    check("default" in r.stderr, "it says why: %r" % r.stderr)
    # Replayed from the journal after a restart: the same message, the
    # same decision.
    s.stop()
    s.start()
    got = check_ok(s.get("/v1/client-policy/overrides/%d" % ov["id"]), 200,
                   "GET the override after a restart")
    check_eq((got.get("message"), got.get("expected_end")), (MSG, expected),
             "the override after a restart")
    d = evaluate(**{"Accept-Language": "de"}).json()
    check_eq(d["override"].get("message"), MSG["de"],
             "the German message after a restart")
    r = run_cli(["audit", "log", s.data_dir, "--type",
                 "policy_override_2", "--json"])
    check_eq(r.returncode, 0, "audit log --type policy_override_2: %s"
             % r.stderr)
    rows = [json.loads(line) for line in r.stdout.splitlines() if line]
    check_eq(len(rows), 2, "kind 20 entries: %r" % rows)
    fields = rows[0].get("fields") or {}
    check("Bald behoben" in json.dumps(rows[0]) and
          expected in json.dumps(rows[0]),
          "the newest kind 20 entry shows its message and expected end: %r"
          % (fields,))
    s.stop()


@e2e_test(timeout=60)
def test_channel_client_notice_header_only_with_a_client_version(ctx):
    """A gated reply to a client that says its version carries
    Client-Notice naming its most severe active notice; none without
    X-Client-Version, none for a platform no notice targets, none once
    the notice ended, none on the policy's own routes."""
    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    now = int(time.time())
    doc["notices"] = [
        {"id": "slow-payouts", "severity": "info",
         "text": {"default": "Payouts are slow"}, "platforms": ["android"]},
        {"id": "outage-7", "severity": "critical",
         "text": {"default": "Sign-in is down"}, "platforms": ["android"]},
        {"id": "ended", "severity": "critical",
         "text": {"default": "Over"}, "ends_at": rfc3339(now - 60)},
        {"id": "later", "severity": "critical",
         "text": {"default": "Soon"}, "starts_at": rfc3339(now + 3600)},
    ]
    check_ok(put_policy(s, doc, "notices"), 201, "PUT notices")
    want = '"outage-7"; severity=critical; url="/v1/client-policy"'
    r = s.get("/v1/keys", headers={"X-Client-Version": "android/4.2.0"})
    check_eq(r.status, 200, "gated request")
    check_eq(r.header("client-notice"), want, "Client-Notice (android)")
    r = s.get("/v1/keys", headers={"X-Client-Version": "android/3.9.0"})
    check_eq(r.status, 426, "blocked request")
    check_eq(r.header("client-notice"), want, "Client-Notice on a refusal")
    for what, headers, path in (
            ("no X-Client-Version", {}, "/v1/keys"),
            ("ios: no notice targets it", {"X-Client-Version": "ios/4.0.0"},
             "/v1/keys"),
            ("a policy route", {"X-Client-Version": "android/4.2.0"},
             "/v1/client-policy/current")):
        r = s.get(path, headers=headers)
        check_eq(r.status, 200, what)
        check_eq(r.header("client-notice"), None, "Client-Notice: " + what)
    doc["notices"] = doc["notices"][2:]
    check_ok(put_policy(s, doc, "only ended and later notices"), 201, "PUT")
    r = s.get("/v1/keys", headers={"X-Client-Version": "android/4.2.0"})
    check_eq(r.header("client-notice"), None,
             "Client-Notice with no active notice")
    s.stop()
