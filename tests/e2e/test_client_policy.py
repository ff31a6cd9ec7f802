"""test_client_policy.py - the client-version policy end to end (issue 3,
docs/client-policy.md): the gate on /v1 routes (426 problem, Deprecation /
Sunset / Link headers, X-Client-Policy), emergency overrides and their
expiry, strict validation of the document, history / diff / rollback kept
in the journal across restarts, the signed manifest checked with npm `jose`
(tests/e2e/js/policy_client.mjs), feature-flag buckets checked against an
independent MurmurHash3, and the impact forecast checked against a
synthetic history (tests/e2e/synthetic_activity.py).

Problem types are compared on their last path segment.  Every request goes
through the harness, which authenticates as the administrator unless a
test says auth=None.
"""

import calendar
import email.utils
import json
import os
import re
import time
import urllib.parse

from harness import (e2e_test, check, check_eq, slow_factor, TestFailure,
                     raw_exchange, parse_raw_response, run_cli)
import synthetic_activity as synth
import test_authz

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, "js")
POLICY_CLIENT = os.path.join(JS_DIR, "policy_client.mjs")

DAY = 86400
UPGRADE_URL = "https://play.google.com/store/apps/details?id=tpwallet"
MSG_DEFAULT = "Please update tpwallet."
MSG_DE = "Bitte aktualisieren Sie tpwallet."
MSG_DEPRECATED = "This version stops working soon."


# -- helpers ------------------------------------------------------------------

def slug(t):
    """Last path segment of a problem type."""
    if not isinstance(t, str):
        return None
    return t.rstrip("/").rsplit("/", 1)[-1]


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_rfc3339(text):
    check(isinstance(text, str) and
          re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", text),
          "not an RFC 3339 UTC date: %r" % (text,))
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def midnight(t):
    return int(t) // DAY * DAY


def check_problem(r, status, name, what):
    """r is an RFC 9457 problem with this status and type slug."""
    check(r.status == status, "%s: expected HTTP %d, got %r"
          % (what, status, r))
    ct = (r.header("content-type") or "").split(";")[0].strip().lower()
    check_eq(ct, "application/problem+json", "%s: Content-Type" % what)
    doc = r.json()
    check(isinstance(doc, dict), "%s: problem is not an object" % what)
    check_eq(doc.get("status"), status, "%s: problem status" % what)
    check_eq(slug(doc.get("type")), name, "%s: problem type (%r)"
             % (what, r.body[:300]))
    return doc


def check_ok(r, status, what):
    check(r.status == status, "%s: expected HTTP %d, got %r"
          % (what, status, r))
    return r.json()


def put_policy(s, doc, reason=None, **kw):
    path = "/v1/client-policy"
    if reason is not None:
        path += "?reason=" + urllib.parse.quote(reason)
    body = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
    return s.request("PUT", path, body=body,
                     headers={"Content-Type": "application/json"}, **kw)


def gate(s, version, path="/v1/keys", **headers):
    """A gated request with X-Client-Version (None: no header)."""
    h = dict(headers)
    if version is not None:
        h["X-Client-Version"] = version
    auth = h.pop("auth", "default")
    if auth == "default":
        return s.request("GET", path, headers=h)
    return s.request("GET", path, headers=h, auth=auth)


def client_policy(r):
    """(verdict, policy version) of X-Client-Policy, or None."""
    v = r.header("x-client-policy")
    if v is None:
        return None
    m = re.match(r"^([a-z]+); policy-version=(\d+)$", v.strip())
    check(m, "X-Client-Policy %r is not '<verdict>; policy-version=N'" % v)
    return m.group(1), int(m.group(2))


def evaluate(s, **q):
    r = s.get("/v1/client-policy/evaluate?" + urllib.parse.urlencode(q))
    return check_ok(r, 200, "GET /v1/client-policy/evaluate %r" % (q,))


def metrics(s):
    """{'name' or 'name{labels}': value} of /metrics."""
    r = s.get("/metrics", auth=None)
    check_eq(r.status, 200, "GET /metrics")
    out = {}
    for line in r.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        out[k] = float(v)
    return out


def decisions_by_verdict(m):
    """tpwallet_client_policy_decisions_total summed over platform and
    line, by verdict (all four, 0 when absent)."""
    out = {v: 0.0 for v in ("supported", "deprecated", "compat", "blocked")}
    for k, v in m.items():
        mm = re.match(r'^tpwallet_client_policy_decisions_total\{.*'
                      r'verdict="([a-z]+)"\}$', k)
        if mm:
            check(mm.group(1) in out, "unknown verdict in %s" % k)
            out[mm.group(1)] += v
    return out


def current_version(s):
    r = s.get("/v1/client-policy/versions")
    return check_ok(r, 200, "GET /v1/client-policy/versions")["current"]


def base_policy(now=None):
    """The issue 3 policy: android 3.x blocked, min 4.0.0, <4.2.0
    deprecated since a month ago with a sunset in four months."""
    now = time.time() if now is None else now
    since = midnight(now) - 30 * DAY
    sunset = midnight(now) + 120 * DAY
    return {
        "platforms": {
            "android": {
                "min_supported": "4.0.0",
                "blocked": ["3.x"],
                "deprecated": [{"range": "<4.2.0", "since": rfc3339(since),
                                "sunset": rfc3339(sunset)}],
                "upgrade_url": UPGRADE_URL,
                "messages": {
                    "blocked": {"default": MSG_DEFAULT, "de": MSG_DE},
                    "deprecated": {"default": MSG_DEPRECATED},
                },
            },
            "ios": {"min_supported": "4.0.0", "missing_version": "block"},
        },
    }, since, sunset


node_js = test_authz.node_js


def policy_js(cmd, timeout=30):
    return node_js(POLICY_CLIENT, cmd, timeout)


# -- MurmurHash3 x86_32 (Austin Appleby's public domain reference) ------------

def murmur3_x86_32(data, seed=0):
    M = 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & M

    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & M
    n = len(data)
    nblocks = n // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = rotl((k * c1) & M, 15)
        h ^= (k * c2) & M
        h = (rotl(h, 13) * 5 + 0xE6546B64) & M
    tail = data[4 * nblocks:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = rotl((k * c1) & M, 15)
        h ^= (k * c2) & M
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M
    h ^= h >> 16
    return h


def in_rollout(group, user, rollout):
    """Unleash flexibleRollout: murmur3("<group>:<user>") % 100 + 1 <=
    rollout, i.e. murmur3 % 100 < rollout."""
    return (murmur3_x86_32(("%s:%s" % (group, user)).encode("utf-8"))
            % 100) < rollout


# -- 1. issue 3's Done-when ----------------------------------------------------

@e2e_test(timeout=300, waits=True)
def test_client_policy_done_when_block_deprecate_override_expiry_impact(ctx):
    s = ctx.start_server()
    s.require_admin_token()
    doc, since, sunset = base_policy()
    r = put_policy(s, doc, "issue 3: block 3.x, deprecate <4.2.0")
    out = check_ok(r, 201, "PUT the first policy")
    check_eq((out.get("version"), out.get("status")), (1, "activated"),
             "PUT reply")
    m = metrics(s)
    check_eq(m.get("tpwallet_client_policy_version"), 1.0,
             "tpwallet_client_policy_version")
    decisions = decisions_by_verdict(m)
    check(all(x == 0 for x in decisions.values()),
          "decisions before any gated request: %r" % decisions)
    sent = {"supported": 0, "deprecated": 0, "compat": 0, "blocked": 0}

    # Blocked: 426 with the decision, before authentication too.
    def blocked(what, lang=None, want_msg=MSG_DEFAULT, **kw):
        h = {"Accept-Language": lang} if lang is not None else {}
        r = gate(s, "android/3.9.0", **h, **kw)
        sent["blocked"] += 1
        p = check_problem(r, 426, "client-version-blocked", what)
        for k, want in (("decision", "blocked"), ("reason", "blocked_range"),
                        ("rule", "3.x"), ("min_supported", "4.0.0"),
                        ("upgrade_url", UPGRADE_URL), ("message", want_msg),
                        ("policy_version", 1)):
            check_eq(p.get(k), want, "%s: %s" % (what, k))
        check_eq(client_policy(r), ("blocked", 1), "%s: X-Client-Policy"
                 % what)
        check(r.header("deprecation") is None and
              r.header("sunset") is None,
              "%s: a refusal with Deprecation/Sunset headers" % what)
        return p

    blocked("android/3.9.0 GET /v1/keys")
    blocked("android/3.9.0, Accept-Language: de", lang="de", want_msg=MSG_DE)
    blocked("Accept-Language: de-CH-1996, en;q=0.5 (lookup shortens)",
            lang="de-CH-1996, en;q=0.5", want_msg=MSG_DE)
    blocked("Accept-Language: fr, de;q=0 (q=0 excludes de)",
            lang="fr, de;q=0", want_msg=MSG_DEFAULT)
    blocked("Accept-Language: DE (tags are case-insensitive)", lang="DE",
            want_msg=MSG_DE)
    blocked("android/3.9.0 without credentials (the gate runs first)",
            auth=None)
    r = gate(s, "android/3.9.0", path="/v1/accounts/1")
    sent["blocked"] += 1
    check_problem(r, 426, "client-version-blocked",
                  "android/3.9.0 on another /v1 route")
    # The policy's own routes are not gated: a blocked app must read them.
    r = gate(s, "android/3.9.0",
             path="/v1/client-policy/evaluate?platform=android&version=3.9.0")
    d = check_ok(r, 200, "blocked app reads its own evaluation")
    check_eq(d.get("decision"), "blocked", "evaluate android/3.9.0")

    # Deprecated: served, with the RFC 9745 / 8594 / 8288 headers.
    r = gate(s, "android/4.1.0")
    sent["deprecated"] += 1
    check_eq(r.status, 200, "android/4.1.0 GET /v1/keys: %r" % r)
    check_eq(client_policy(r), ("deprecated", 1), "X-Client-Policy of 4.1.0")
    check_eq(r.header("deprecation"), "@%d" % since,
             "Deprecation header (RFC 9745 @<since>)")
    sun = r.header("sunset")
    check(sun is not None, "no Sunset header: %r" % r.headers)
    check(re.match(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                   r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                   r"\d{4} \d\d:\d\d:\d\d GMT$", sun),
          "Sunset %r is not an IMF-fixdate HTTP-date" % sun)
    check_eq(int(email.utils.parsedate_to_datetime(sun).timestamp()), sunset,
             "Sunset header time")
    check_eq(r.header("link"), '<%s>; rel="deprecation"' % UPGRADE_URL,
             "Link header")
    d = evaluate(s, platform="android", version="4.1.0")
    check_eq((d.get("decision"), d.get("reason"), d.get("message"),
              d.get("sunset"), d.get("deprecated_since")),
             ("deprecated", "deprecated_range", MSG_DEPRECATED,
              rfc3339(sunset), rfc3339(since)), "evaluate android/4.1.0")

    # Supported: no deprecation headers.
    r = gate(s, "android/4.2.0")
    sent["supported"] += 1
    check_eq(r.status, 200, "android/4.2.0: %r" % r)
    check_eq(client_policy(r), ("supported", 1), "X-Client-Policy of 4.2.0")
    check(r.header("deprecation") is None and r.header("sunset") is None
          and r.header("link") is None,
          "supported reply with deprecation headers: %r" % r.headers)
    # Below min_supported (outside 3.x): blocked by rule 3.
    d = evaluate(s, platform="android", version="2.0.0")
    check_eq((d.get("decision"), d.get("reason"), d.get("status")),
             ("blocked", "below_min_supported", 426), "evaluate 2.0.0")

    # An emergency override: 3.9.x served again for 60 s.
    r = s.post("/v1/client-policy/overrides",
               {"platform": "android", "range": "3.9.x", "mode": "allow",
                "duration_s": 60, "reason": "INC-42: 3.9 cannot update"})
    ov = check_ok(r, 201, "POST /v1/client-policy/overrides")
    check_eq((ov.get("mode"), ov.get("range"), ov.get("active")),
             ("allow", "3.9.x", True), "override reply")
    t_start = parse_rfc3339(ov.get("starts_at"))
    t_exp = parse_rfc3339(ov.get("expires_at"))
    check_eq(t_exp - t_start, 60, "expires_at - starts_at")
    check(abs(t_start - time.time()) < 5, "starts_at %r is not now"
          % ov.get("starts_at"))
    r = gate(s, "android/3.9.0")
    sent["supported"] += 1
    check_eq(r.status, 200, "android/3.9.0 under an allow override: %r" % r)
    check_eq(client_policy(r), ("supported", 1),
             "X-Client-Policy under the override")
    r = gate(s, "android/3.8.0")
    sent["blocked"] += 1
    check_problem(r, 426, "client-version-blocked",
                  "android/3.8.0 is outside the override's 3.9.x")
    d = evaluate(s, platform="android", version="3.9.0")
    check_eq(d.get("decision"), "supported", "evaluate under the override")
    check_eq(d.get("decision_without_override"), "blocked",
             "decision_without_override")
    check_eq((d.get("override") or {}).get("id"), ov.get("id"),
             "evaluate's override id")
    check_eq(metrics(s).get("tpwallet_client_policy_overrides_active"), 1.0,
             "tpwallet_client_policy_overrides_active with the override")
    r = s.get("/v1/client-policy/overrides")
    lst = check_ok(r, 200, "GET overrides")["overrides"]
    check_eq([o.get("id") for o in lst], [ov.get("id")], "active overrides")

    # Wait for it to expire by itself: served until expires_at, refused
    # from then on (1 s of clock tolerance either side).
    limit = time.monotonic() + 75
    first_refusal = None
    while True:
        now = time.time()
        r = gate(s, "android/3.9.0")
        after = time.time()
        if r.status == 426:
            sent["blocked"] += 1
            if first_refusal is None:
                first_refusal = now
            check(after >= t_exp - 1,
                  "android/3.9.0 refused at %.1f, before the override's "
                  "expires_at %d" % (now, t_exp))
        else:
            sent["supported"] += 1
            check_eq(r.status, 200, "android/3.9.0 while waiting: %r" % r)
            check(first_refusal is None,
                  "android/3.9.0 served again at %.1f after a refusal at "
                  "%.1f" % (now, first_refusal or 0))
            check(now < t_exp + 1,
                  "android/3.9.0 still served at %.1f, the override "
                  "expired at %d" % (now, t_exp))
        if now >= t_exp + 2:
            break
        check(time.monotonic() < limit, "override not over within 75 s")
        time.sleep(0.5)
    check(first_refusal is not None, "3.9.0 never refused after expiry")
    r = gate(s, "android/3.9.0")
    sent["blocked"] += 1
    p = check_problem(r, 426, "client-version-blocked",
                      "android/3.9.0 after the override expired")
    check("override" not in p, "expired override still in the decision")
    check_eq(metrics(s).get("tpwallet_client_policy_overrides_active"), 0.0,
             "tpwallet_client_policy_overrides_active after expiry")
    lst = check_ok(s.get("/v1/client-policy/overrides"), 200,
                   "GET overrides")["overrides"]
    check_eq(lst, [], "active overrides after expiry")
    lst = check_ok(s.get("/v1/client-policy/overrides?all=true"), 200,
                   "GET overrides?all=true")["overrides"]
    check_eq([(o.get("id"), o.get("active")) for o in lst],
             [(ov.get("id"), False)], "all overrides after expiry")
    d = evaluate(s, platform="android", version="3.9.0")
    check("override" not in d and d.get("decision") == "blocked",
          "evaluate after expiry: %r" % d)

    m = metrics(s)
    got = decisions_by_verdict(m)
    check_eq(got, {k: float(v) for k, v in sent.items()},
             "tpwallet_client_policy_decisions_total by verdict")

    # Impact of raising android's minimum to 4.2.0 on a synthetic history.
    today = int(time.time() // DAY)
    hist = synth.History(users=1500, weeks=4, today=today, seed=11,
                         s0=0.9, decay=0.08)
    observed = 0
    for body in hist.batches(20000):
        r = s.post("/v1/client-policy/activity", body)
        a = check_ok(r, 200, "POST /v1/client-policy/activity")
        observed += a.get("observed", 0)
        check_eq(a.get("dropped"), 0, "activity dropped")
    check_eq(observed, len(hist.observations), "observations accepted")
    # One live user through the gate (X-Client-User), below 4.2.0.
    r = gate(s, "android/4.1.0", **{"X-Client-User": "live-user-1"})
    check_eq(r.status, 200, "live android/4.1.0 request: %r" % r)
    day_now = int(time.time() // DAY)
    r = s.get("/v1/client-policy/impact?platform=android&min_supported=4.2.0")
    imp = check_ok(r, 200, "GET /v1/client-policy/impact")
    if int(time.time() // DAY) != day_now or day_now != today:
        ctx.note("the UTC day changed during the test: impact not checked")
        s.stop()
        return
    want = hist.expected_impact("4.2.0")
    want["actives"] += 1
    want["blocked"] += 1
    got = {k: imp.get(k) for k in want}
    ctx.note("impact: %r of %d observations (expected %r)"
             % (got, len(hist.observations), want))
    check_eq(got, want, "impact blocked/actives/unparsed")
    check_eq(imp.get("window_days"), 7, "window_days")
    check(abs(imp.get("share", -1) - want["blocked"] / want["actives"])
          < 1e-9, "share %r" % imp.get("share"))
    rows = hist.daily_counts("4.2.0")
    rows = [(d, nb + (d == today), na + (d == today)) for d, nb, na in rows]
    check_eq([(x.get("day"), x.get("below"), x.get("all"))
              for x in imp.get("days") or []],
             [(synth.day_text(d), nb, na) for d, nb, na in rows],
             "impact days (per-day distinct users)")
    fc = imp.get("forecast") or {}
    fit = synth.fit_rows(rows, today, 4, 0.05)
    model_day = hist.model_day_below(0.05)
    ctx.note("forecast: r2 %.4f decay %.4f share_now %.4f date_below %s; "
             "python fit: r2 %.4f decay %.4f date_below %s; model %s"
             % (fc.get("r2") or -1, fc.get("daily_decay") or -1,
                fc.get("share_now") or -1, fc.get("date_below"),
                fit["r2"], fit["daily_decay"],
                synth.day_text(fit["day_below"]), synth.day_text(model_day)))
    check_eq(fc.get("days_used"), fit["days_used"], "forecast days_used")
    check(isinstance(fc.get("r2"), float) and fc["r2"] >= 0.97,
          "forecast r2 %r is not high for a clean exponential"
          % fc.get("r2"))
    check(abs(fc["r2"] - fit["r2"]) < 1e-3, "forecast r2 %r, python's fit "
          "of the same days %r" % (fc["r2"], fit["r2"]))
    check(abs(fc.get("daily_decay", 0) - fit["daily_decay"]) < 1e-4,
          "forecast daily_decay %r, python %r"
          % (fc.get("daily_decay"), fit["daily_decay"]))
    check(abs(fc.get("daily_decay", 0) - (1 - pow(2.718281828459045,
                                                  -0.08))) < 0.01,
          "forecast daily_decay %r, the generator's 1-e^-0.08"
          % fc.get("daily_decay"))
    check(abs(fc.get("share_now", 0) - fit["share_now"])
          < 1e-4 * fit["share_now"] + 1e-9,
          "forecast share_now %r, python %r" % (fc.get("share_now"),
                                                fit["share_now"]))
    db = fc.get("date_below")
    check(isinstance(db, str) and re.match(r"^\d{4}-\d\d-\d\d$", db),
          "date_below %r" % (db,))
    db_day = synth.day_number(db)
    check(db_day > today, "date_below %s is not in the future" % db)
    check(abs(db_day - fit["day_below"]) <= 1,
          "date_below %s, python's fit says %s" %
          (db, synth.day_text(fit["day_below"])))
    check(abs(db_day - model_day) <= 3,
          "date_below %s, the generator's decay says %s"
          % (db, synth.day_text(model_day)))
    # Another platform's users and another minimum.
    r = s.get("/v1/client-policy/impact?platform=ios&min_supported=4.0.0")
    imp = check_ok(r, 200, "impact on ios")
    want = hist.expected_impact("4.0.0", platform="ios")
    check_eq({k: imp.get(k) for k in want}, want, "ios impact")
    s.stop()


# -- 2. bad input never activates ---------------------------------------------

def _bad_policies(now):
    """(what, document (object or raw text), accepted field paths)."""
    def mut(fn):
        d, _, _ = base_policy(now)
        fn(d)
        return d
    A = lambda d: d["platforms"]["android"]  # noqa: E731
    dep = "platforms.android.deprecated[0]"

    def set_(key, value):
        return lambda d: A(d).__setitem__(key, value)

    def dep_set(key, value):
        return lambda d: A(d)["deprecated"][0].__setitem__(key, value)

    deep = {"default": "x"}
    inner = []
    for _ in range(14):
        inner = [inner]
    cases = [
        ("unknown key min_suported", mut(set_("min_suported", "4.0.0")),
         ("platforms.android.min_suported",)),
        ("unknown top-level key", mut(lambda d: d.__setitem__("plat", {})),
         ("plat",)),
        ("impossible date 2027-02-30", mut(dep_set(
            "sunset", "2027-02-30T00:00:00Z")), (dep + ".sunset",)),
        ("2100-02-29 (not a leap year)", mut(dep_set(
            "since", "2100-02-29T00:00:00Z")), (dep + ".since",)),
        ("hour 24", mut(dep_set("sunset", "2027-01-01T24:00:00Z")),
         (dep + ".sunset",)),
        ("second 60", mut(dep_set("sunset", "2027-01-01T12:00:60Z")),
         (dep + ".sunset",)),
        ("lower-case t", mut(dep_set("sunset", "2027-01-01t00:00:00Z")),
         (dep + ".sunset",)),
        ("fractional seconds", mut(dep_set(
            "sunset", "2027-01-01T00:00:00.5Z")), (dep + ".sunset",)),
        ("an offset instead of Z", mut(dep_set(
            "sunset", "2027-01-01T00:00:00+00:00")), (dep + ".sunset",)),
        ("sunset before since", mut(dep_set(
            "sunset", "2000-01-01T00:00:00Z")), (dep + ".sunset",)),
        ("a deprecation without range",
         mut(lambda d: A(d)["deprecated"][0].pop("range")),
         (dep, dep + ".range")),
        ("bad range 4.x.y.z", mut(set_("blocked", ["3.x", "4.x.y.z"])),
         ("platforms.android.blocked[1]",)),
        # "Strings are never empty": an empty npm range means "*", so an
        # empty blocked range would refuse every version.
        ("empty blocked range", mut(set_("blocked", [""])),
         ("platforms.android.blocked[0]",)),
        ("empty compat range", mut(set_("compat", [""])),
         ("platforms.android.compat[0]",)),
        ("empty deprecated range", mut(dep_set("range", "")),
         (dep + ".range",)),
        ("empty flag versions", mut(lambda d: d.__setitem__(
            "flags", {"f": {"rollout": 5, "versions": ""}})),
         ("flags.f.versions",)),
        ("empty message", mut(set_(
            "messages", {"blocked": {"default": ""}})),
         ("platforms.android.messages.blocked.default",)),
        ("min_supported a number", mut(set_("min_supported", 4)),
         ("platforms.android.min_supported",)),
        ("min_supported null", mut(set_("min_supported", None)),
         ("platforms.android.min_supported",)),
        ("min_supported not strict SemVer", mut(set_("min_supported",
                                                     "4.0")),
         ("platforms.android.min_supported",)),
        ("blocked a string", mut(set_("blocked", "3.x")),
         ("platforms.android.blocked",)),
        ("recommended_rollout a string", mut(set_("recommended_rollout",
                                                  "50")),
         ("platforms.android.recommended_rollout",)),
        ("recommended_rollout 101", mut(set_("recommended_rollout", 101)),
         ("platforms.android.recommended_rollout",)),
        ("blocked_status 500", mut(set_("blocked_status", 500)),
         ("platforms.android.blocked_status",)),
        ("missing_version maybe", mut(set_("missing_version", "maybe")),
         ("platforms.android.missing_version",)),
        ("unknown_platform true",
         mut(lambda d: d.__setitem__("unknown_platform", True)),
         ("unknown_platform",)),
        ("upgrade_url over plain http", mut(set_(
            "upgrade_url", "http://example.com/app")),
         ("platforms.android.upgrade_url",)),
        ("upgrade_url with a control character", mut(set_(
            "upgrade_url", "https://example.com/\u0001")),
         ("platforms.android.upgrade_url",)),
        ("message without default", mut(set_(
            "messages", {"blocked": {"de": "Bitte"}})),
         ("platforms.android.messages.blocked",
          "platforms.android.messages.blocked.default")),
        ("message with a bad language tag", mut(set_(
            "messages", {"blocked": {"default": "x", "d": "y"}})),
         ("platforms.android.messages.blocked.d",
          "platforms.android.messages.blocked")),
        ("message for an unknown verdict", mut(set_(
            "messages", {"expired": {"default": "x"}})),
         ("platforms.android.messages.expired",)),
        ("min_supported above recommended", mut(lambda d: A(d).update(
            {"min_supported": "4.3.0", "recommended": "4.2.0"})),
         ("platforms.android.min_supported",
          "platforms.android.recommended")),
        ("country in lower case", mut(set_(
            "countries", {"de": {"min_supported": "4.1.0"}})),
         ("platforms.android.countries.de",)),
        ("nested level", mut(set_(
            "channels", {"beta": {"countries": {}}})),
         ("platforms.android.channels.beta.countries",)),
        ("platform name with a capital", mut(lambda d: d["platforms"]
                                             .__setitem__("Android", {})),
         ("platforms.Android",)),
        ("no platforms", mut(lambda d: d.__setitem__("platforms", {})),
         ("platforms",)),
        ("flag name with a colon", mut(lambda d: d.__setitem__(
            "flags", {"a:b": {"rollout": 5}})), ("flags.a:b",)),
        ("flag rollout -1", mut(lambda d: d.__setitem__(
            "flags", {"f": {"rollout": -1}})), ("flags.f.rollout",)),
        ("notice ending before it starts", mut(lambda d: d.__setitem__(
            "notices", [{"id": "n1", "severity": "info",
                         "text": {"default": "x"},
                         "starts_at": "2027-01-02T00:00:00Z",
                         "ends_at": "2027-01-01T00:00:00Z"}])),
         ("notices[0].ends_at",)),
        ("too deep", mut(set_("messages", {"blocked": dict(
            deep, de=inner)})), ("$",)),
        ("not JSON", '{"platforms": {', ("$",)),
        ("an array", "[]", ("$",)),
        ("a key twice",
         '{"platforms": {"android": {"min_supported": "4.0.0", '
         '"min_supported": "4.1.0"}}}',
         ("platforms.android.min_supported", "platforms.android", "$")),
    ]
    return cases


@e2e_test(timeout=120)
def test_client_policy_bad_documents_and_overrides_never_activate(ctx):
    s = ctx.start_server()
    s.require_admin_token()
    now = time.time()
    doc, _, _ = base_policy(now)
    check_ok(put_policy(s, doc, "good"), 201, "PUT the good policy")
    before = check_ok(s.get("/v1/client-policy/current"), 200,
                      "GET current")
    # Every case is tried; the mismatches are reported together.  A bad
    # document that gets activated is undone by a rollback to version 1
    # so that the next cases start from the good policy again.
    problems = []
    activated = 0
    for what, bad, fields in _bad_policies(now):
        r = put_policy(s, bad, "bad: " + what)
        if r.status in (200, 201):
            problems.append("PUT with %s: accepted (HTTP %d %s)"
                            % (what, r.status, r.body[:200]))
            if r.status == 201:
                activated += 1
                check_ok(s.post("/v1/client-policy/rollback",
                                {"version": 1, "reason": "undo"}), 201,
                         "rollback after an accepted bad document")
                activated += 1
                before = check_ok(s.get("/v1/client-policy/current"), 200,
                                  "GET current")
            continue
        try:
            p = check_problem(r, 422, "invalid-policy", "PUT with " + what)
            check(p.get("field") in fields,
                  "PUT with %s: field %r, expected %s (detail %r)"
                  % (what, p.get("field"), " or ".join(fields),
                     p.get("detail")))
            check(isinstance(p.get("detail"), str) and p["detail"],
                  "PUT with %s: no detail" % what)
        except TestFailure as e:
            problems.append(str(e))
        after = check_ok(s.get("/v1/client-policy/current"), 200,
                         "GET current after " + what)
        check_eq(after, before, "the active policy after a PUT with " + what)
    # Too large: refused (256 KiB at most), nothing changes.
    big = dict(doc, notices=[{"id": "big", "severity": "info",
                              "text": {"default": "x" * 2000}}])
    text = json.dumps(big)
    text = text[:-1] + "," + " " * (300 * 1024) + "}"
    r = put_policy(s, text, "too big")
    check(r.status == 413 and
          r.json()["type"].endswith("/body-too-large"),
          "PUT of 300 KiB: %r" % r)
    # Empty body.
    r = put_policy(s, "", "empty")
    check_problem(r, 400, "invalid-json", "PUT with an empty body")
    # Without the admin right: no credential at all.
    r = put_policy(s, base_policy(now + 86400 * 400)[0], "anonymous",
                   auth=None)
    check_problem_any(r, 401, "PUT without a credential")
    check((r.header("www-authenticate") or "") != "",
          "401 without WWW-Authenticate")
    r = put_policy(s, doc, "bad token", auth="Bearer not-the-token")
    check_problem_any(r, 401, "PUT with a wrong bearer token")
    for method, path, body in (
            ("POST", "/v1/client-policy/rollback", {"version": 1}),
            ("POST", "/v1/client-policy/overrides",
             {"platform": "android", "range": "3.x", "mode": "allow",
              "duration_s": 600, "reason": "x"}),
            ("POST", "/v1/client-policy/activity", {"observations": []}),
            ("GET", "/v1/client-policy/current", None),
            ("GET", "/v1/client-policy/evaluate?platform=android&version=1.0.0",
             None)):
        r = s.request(method, path, body=body, auth=None)
        check_problem_any(r, 401, "%s %s without a credential"
                          % (method, path))
    after = check_ok(s.get("/v1/client-policy/current"), 200, "GET current")
    check_eq(after, before, "the active policy after refused PUTs")
    vs = check_ok(s.get("/v1/client-policy/versions"), 200, "versions")
    check_eq(vs.get("current"), 1 + activated, "versions after refused PUTs")

    # Bad overrides: refused, none opened, and the gate unchanged.
    good = {"platform": "android", "range": "3.x", "mode": "allow",
            "duration_s": 600, "reason": "INC-1"}
    ended_overrides = []  # accepted by mistake, then ended
    for what, change, field in (
            ("duration_s 59", {"duration_s": 59}, "duration_s"),
            ("duration_s 604801", {"duration_s": 604801}, "duration_s"),
            ("duration_s a string", {"duration_s": "600"}, "duration_s"),
            ("mode block", {"mode": "block"}, "mode"),
            ("range 4.x.y.z", {"range": "4.x.y.z"}, "range"),
            ("empty range", {"range": ""}, "range"),
            ("range of 257 bytes", {"range": "1.0.0 " * 42 + "1.0.0"},
             "range"),
            ("platform Android", {"platform": "Android"}, "platform"),
            ("empty reason", {"reason": ""}, "reason"),
            ("no reason", {"reason": None}, "reason"),
            ("reason with a newline", {"reason": "a\nb"}, "reason"),
            ("reason of 257 bytes", {"reason": "r" * 257}, "reason"),
            ("unknown key", {"scope": "all"}, "scope")):
        body = dict(good, **change)
        body = {k: v for k, v in body.items() if v is not None}
        r = s.post("/v1/client-policy/overrides", body)
        if r.status == 201:
            o = r.json()
            problems.append("override with %s: accepted (%r)" % (what, o))
            check_ok(s.request("DELETE", "/v1/client-policy/overrides/%s"
                               % o.get("id")), 200, "end it")
            ended_overrides.append(o.get("id"))
            continue
        try:
            p = check_problem(r, 422, "invalid-policy",
                              "override with " + what)
            check_eq(p.get("field"), field, "override with %s: field (%r)"
                     % (what, p.get("detail")))
        except TestFailure as e:
            problems.append(str(e))
    lst = check_ok(s.get("/v1/client-policy/overrides?all=true"), 200,
                   "GET overrides?all=true")["overrides"]
    check_eq(sorted(o.get("id") for o in lst), sorted(ended_overrides),
             "overrides after refused ones")
    r = gate(s, "android/3.9.0")
    check_problem(r, 426, "client-version-blocked",
                  "3.9.0 after refused overrides")
    check_eq(metrics(s).get("tpwallet_client_policy_version"),
             float(1 + activated), "policy version gauge")
    s.stop()
    check(not problems, "%d bad input(s) not refused as documented:\n%s"
          % (len(problems), "\n".join(problems)))


@e2e_test(timeout=60)
def test_client_policy_override_that_relaxes_nothing_is_refused(ctx):
    """docs/client-policy.md "Overrides that relax nothing": an override
    for a platform the policy does not name, or whose range meets no
    blocked range, minimum or sunset deprecation, is a 422 that says
    why; nothing is opened.  A good override is still a 201."""
    s = ctx.start_server()
    s.require_admin_token()
    good = {"platform": "android", "range": "3.9.x", "mode": "allow",
            "duration_s": 600, "reason": "INC-7"}

    def refused(change, status, name, field, detail, what):
        r = s.post("/v1/client-policy/overrides", dict(good, **change))
        p = check_problem(r, status, name, what)
        check_eq(p.get("field"), field, what + ": field")
        check_eq(p.get("detail"), detail, what + ": detail")

    refused({}, 422, "override-unknown-platform", "platform",
            "platform: no client policy is set, so no platform is "
            "configured and nothing is blocked", "before any policy")
    doc, _, _ = base_policy()
    doc["platforms"]["web"] = {}
    check_ok(put_policy(s, doc, "v1"), 201, "PUT the policy")
    refused({"platform": "andriod"}, 422, "override-unknown-platform",
            "platform", "platform: andriod is not in client policy "
            "version 1 (it names: android ios web)", "a misspelt platform")
    refused({"range": ">=4.2.0"}, 422, "override-relaxes-nothing", "range",
            "range: >=4.2.0 meets no blocked range, version below "
            "min_supported or deprecation with a sunset of android in "
            "client policy version 1, on any level",
            "a range above every restriction")
    refused({"platform": "web", "range": "1.x"}, 422,
            "override-relaxes-nothing", "platform",
            "platform: web has no blocked range, min_supported or "
            "deprecation with a sunset in client policy version 1, on "
            "any level", "a platform that blocks nothing")
    lst = check_ok(s.get("/v1/client-policy/overrides?all=true"), 200,
                   "GET overrides?all=true")["overrides"]
    check_eq(lst, [], "overrides after the refusals")
    check_problem(gate(s, "android/3.9.0"), 426, "client-version-blocked",
                  "3.9.0 before the good override")
    o = check_ok(s.post("/v1/client-policy/overrides", good), 201,
                 "the good override")
    check_eq((o["platform"], o["range"]), ("android", "3.9.x"), "opened")
    r = gate(s, "android/3.9.0")
    check_eq(r.status, 200, "3.9.0 under the override: %r" % r)


@e2e_test(timeout=60)
def test_client_policy_rollback_dry_run_prints_and_changes_nothing(ctx):
    """docs/cli.md: `policy rollback N --dry-run` prints what the
    rollback would activate (the new version and the changes), exits 0
    and changes nothing; the rollback that follows does what it said."""
    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")
    doc["platforms"]["android"]["min_supported"] = "4.1.0"
    check_ok(put_policy(s, doc, "v2"), 201, "PUT v2")
    before = check_ok(s.get("/v1/client-policy/versions"), 200, "versions")

    def cli(*args):
        return run_cli(["policy", "rollback"] + list(args) + s.cli_args())

    r = cli("1", "--dry-run")
    check_eq((r.returncode, r.stdout, r.stderr),
             (0, "dry run: a rollback would activate version 1's document "
              "as version 3: 1 change from version 2\n"
              "  platforms.android.min_supported: \"4.1.0\" -> "
              "\"4.0.0\"\n", ""), "dry run to version 1")
    r = cli("2", "--dry-run", "--reason", "check")
    check_eq((r.returncode, r.stdout, r.stderr),
             (0, "dry run: version 2 means the same as the current version "
              "2; a rollback would change nothing\n", ""),
             "dry run to the current version")
    r = cli("9", "--dry-run")
    check_eq((r.returncode, r.stdout), (1, ""), "dry run to version 9")
    check("policy-not-found" in r.stderr, "version 9: %r" % r.stderr)
    check_eq(check_ok(s.get("/v1/client-policy/versions"), 200, "versions"),
             before, "the history after three dry runs")
    check_eq(client_policy(gate(s, "android/4.0.5")), ("blocked", 2),
             "the gate after the dry runs")
    r = cli("1", "--reason", "undo v2")
    check_eq((r.returncode, r.stdout.splitlines()[0]),
             (0, "activated version 3 (a copy of version 1): 1 change "
              "from version 2"), "the rollback itself: %r" % r.stderr)


@e2e_test(timeout=60)
def test_client_policy_doctor_lists_each_override_with_its_expiry(ctx):
    """`tpwallet doctor` names every override in force on a line of its
    own: id, platform, range, mode, expiry (RFC 3339 and in how many
    minutes), author and reason; an ended one is not listed."""
    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    cur = check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")
    opened = []
    for rng, mode, dur, why in (("3.9.x", "allow", 1800, "INC-7: 3.9 stuck"),
                                ("3.8.x", "compat", 3600, "INC-8"),
                                ("3.7.x", "allow", 600, "INC-9")):
        opened.append(check_ok(s.post(
            "/v1/client-policy/overrides",
            {"platform": "android", "range": rng, "mode": mode,
             "duration_s": dur, "reason": why}), 201, "override " + rng))
    check_ok(s.request("DELETE", "/v1/client-policy/overrides/%d?reason=ok"
                       % opened[2]["id"]), 200, "end the third")
    set_at = check_ok(s.get("/v1/client-policy/current"), 200,
                      "current")["set_at"]
    r = run_cli(["doctor", "--data", s.data_dir], timeout=60)
    got = [ln for ln in r.stdout.splitlines()
           if ln.split(":")[0].split()[-1:] in (["policy"], ["override"])]
    check_eq(got, [
        "warn    client policy: version %d set %s: v1; 2 overrides in "
        "force (`tpwallet policy override list`)" % (cur["version"], set_at),
        "warn    override: %d: android 3.9.x (allow) until %s (in 30 "
        "minutes), opened by admin: INC-7: 3.9 stuck"
        % (opened[0]["id"], opened[0]["expires_at"]),
        "warn    override: %d: android 3.8.x (compat) until %s (in 60 "
        "minutes), opened by admin: INC-8"
        % (opened[1]["id"], opened[1]["expires_at"]),
    ], "doctor's policy lines (all output: %r)" % r.stdout)


def last_entry_is(s, command, timeout=10.0):
    """The audit head's size once its last entry is the journal command
    named (the audit thread follows the journal: bounded wait)."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        size = int(check_ok(s.get("/v1/audit/head"), 200, "head")["size"])
        if size > 0:
            e = check_ok(s.get("/v1/audit/entries/%d?view=decoded"
                               % (size - 1)), 200, "the last entry")
            if e["decoded"].get("command") == command:
                return size
        check(time.monotonic() < deadline, "the last audit entry is not "
              "%s within %.0fs" % (command, timeout))
        time.sleep(0.02)


@e2e_test(timeout=90)
def test_client_policy_override_extend_moves_the_end_and_survives_restart(ctx):
    """docs/client-policy.md "Extending an override": `policy override
    extend ID --for 2h` keeps it in force until 2 h from now; an ended one
    is 409 override-ended; a shorter end is refused; the new end
    survives a clean restart and a kill -9."""
    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")
    ids = []
    for rng in ("3.9.x", "3.8.x"):
        ids.append(check_ok(s.post(
            "/v1/client-policy/overrides",
            {"platform": "android", "range": rng, "mode": "allow",
             "duration_s": 600, "reason": "INC-7"}), 201, rng)["id"])
    check_ok(s.request("DELETE", "/v1/client-policy/overrides/%d?reason=ok"
                       % ids[1]), 200, "end the second")
    path = "/v1/client-policy/overrides/%d" % ids[0]
    before = time.time()
    r = run_cli(["policy", "override", "extend", str(ids[0]), "--for", "2h",
                 "--reason", "store still broken"] + s.cli_args())
    after = time.time()
    o = check_ok(s.get(path), 200, "the extended override")
    check_eq((r.returncode, r.stdout, r.stderr),
             (0, "override %d extended: in force until %s\n"
              % (ids[0], o["expires_at"]), ""), "extend --for 2h")
    end = calendar.timegm(time.strptime(o["expires_at"],
                                        "%Y-%m-%dT%H:%M:%SZ"))
    check(int(before) + 7200 <= end <= int(after) + 7200,
          "expires_at %s is 2 h after the extension" % o["expires_at"])
    check_eq((o["duration_s"], o["active"], o["ended_early"]),
             (600, True, False), "the rest of the override")
    check_eq(client_policy(gate(s, "android/3.9.0")), ("supported", 1),
             "3.9.0 under the extended override")
    # The audit head once it holds the extension: the refusals below
    # must add no entry to it (docs/api.md: a refused request changes
    # nothing).
    size_before = last_entry_is(s, "policy_override_extend")

    r = s.post("/v1/client-policy/overrides/%d/extend" % ids[1],
               {"duration_s": 3600})
    check_problem(r, 409, "override-ended", "extend an ended override")
    r = run_cli(["policy", "override", "extend", str(ids[1]), "--for",
                 "1h"] + s.cli_args())
    check_eq((r.returncode, r.stdout), (1, ""), "CLI extend of an ended one")
    check("override-ended" in r.stderr, "CLI names it: %r" % r.stderr)
    p = check_problem(s.post(path + "/extend", {"duration_s": 600}), 422,
                      "invalid-policy", "an end earlier than the current")
    check_eq(p.get("field"), "duration_s", "field of the shorter end")
    check_problem(s.post("/v1/client-policy/overrides/99/extend",
                         {"duration_s": 600}), 404, "policy-not-found",
                  "extend override 99")
    p = check_problem(s.post(path + "/extend", {"duration_s": 600,
                                                "until": "x"}),
                      400, "unknown-field", "an unknown member")
    check_eq(p.get("field"), "until", "the unknown member")
    check_problem(s.request("DELETE", "/v1/client-policy/overrides/99"
                            "?reason=x"), 404, "policy-not-found",
                  "end override 99")
    check_eq(check_ok(s.get(path), 200, "after the refusals"), o,
             "the override after the refusals")
    # One accepted command after them: the head grows by exactly one.
    doc2 = json.loads(json.dumps(doc))
    doc2["platforms"]["ios"]["min_supported"] = "4.0.1"
    check_ok(put_policy(s, doc2, "after the refusals"), 201, "PUT v2")
    check_eq(last_entry_is(s, "policy_set"), size_before + 1,
             "audit entries after six refusals and one accepted command")

    s.stop()
    s.start()
    check_eq(check_ok(s.get(path), 200, "after a restart"), o,
             "the override after a clean restart")
    s.kill9()
    s.start()
    check_eq(check_ok(s.get(path), 200, "after kill -9"), o,
             "the override after kill -9 and a restart")
    s.stop()


def check_problem_any(r, status, what):
    check(r.status == status, "%s: expected HTTP %d, got %r"
          % (what, status, r))
    ct = (r.header("content-type") or "").split(";")[0].strip().lower()
    check_eq(ct, "application/problem+json", "%s: Content-Type" % what)


@e2e_test(timeout=180)
def test_client_policy_rights_policy_read_evaluates_policy_admin_changes(ctx):
    """docs/client-policy.md "HTTP API": policy:read for reads, policy:admin
    for changes; a mandate with neither gets 403 on every policy route but
    the signed manifest, which any principal reads.
    Every (mandate, route) pair is tried, and all mismatches reported."""
    a = test_authz.Authz(ctx)  # npm ci when needed, or fail
    s = a.s
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT as the administrator")
    r = s.post("/v1/client-policy/overrides",
               {"platform": "android", "range": "3.x", "mode": "allow",
                "duration_s": 600, "reason": "by admin"})
    ov = check_ok(r, 201, "override by the administrator")
    reader, admin, other = a.keys(3)
    who = {
        "policy:read": (a.chain([{"ops": ["policy:read"]}], [reader]),
                        reader),
        "policy:admin": (a.chain([{"ops": ["policy:admin"]}], [admin]),
                         admin),
        "keys:read": (a.chain([{"ops": ["keys:read"]}], [other]), other),
    }
    doc2, _, _ = base_policy()
    doc2["platforms"]["android"]["min_supported"] = "4.1.0"
    day = synth.day_text(int(time.time() // DAY))
    reads = [
        ("GET", "/v1/client-policy/current", None),
        ("GET", "/v1/client-policy/versions", None),
        ("GET", "/v1/client-policy/versions/1", None),
        ("GET", "/v1/client-policy/diff?from=1&to=1", None),
        ("GET", "/v1/client-policy/evaluate?platform=android&version=3.9.0",
         None),
        ("GET", "/v1/client-policy?platform=android&version=3.9.0", None),
        ("GET", "/v1/client-policy/overrides", None),
        ("GET", "/v1/client-policy/overrides/%d" % ov["id"], None),
        ("GET", "/v1/client-policy/impact?platform=android&"
         "min_supported=4.2.0", None),
    ]
    changes = [
        ("PUT", "/v1/client-policy?reason=%s", doc2),
        ("POST", "/v1/client-policy/overrides",
         {"platform": "android", "range": "4.0.x", "mode": "compat",
          "duration_s": 600, "reason": "%s"}),
        ("POST", "/v1/client-policy/activity",
         {"observations": [{"day": day, "platform": "android",
                            "version": "4.1.0", "user": "%s"}]}),
        ("POST", "/v1/client-policy/rollback", {"version": 1,
                                                "reason": "%s"}),
        ("DELETE", "/v1/client-policy/overrides/%d?reason=%%s" % ov["id"],
         None),
    ]
    # The signed manifest (reads[5]) is any principal's (issue 11: an
    # app's own credential reads it); the other reads need policy:read.
    manifest = [r[1].startswith("/v1/client-policy?") for r in reads]
    check_eq(manifest.count(True), 1, "one manifest read")
    want = {"policy:read": ([200] * len(reads), [403] * len(changes)),
            "policy:admin": (None, [201, 201, 200, 201, 200]),
            "keys:read": ([200 if m else 403 for m in manifest],
                          [403] * len(changes))}
    bad = []
    # Changes by the mandates that must be refused first, then the admin's.
    for name in ("keys:read", "policy:read", "policy:admin"):
        links, key = who[name]
        want_reads, want_changes = want[name]
        tag = name.replace(":", "-")
        for i, (method, path, body) in enumerate(reads):
            r = a.call(links, key, method, path)
            if want_reads is not None and r["status"] != want_reads[i]:
                bad.append((name, method, path, want_reads[i], r["status"]))
        for i, (method, path, body) in enumerate(changes):
            p = path % tag if "%s" in path else path
            b = json.loads(json.dumps(body).replace("%s", tag)) \
                if body is not None else None
            r = a.call(links, key, method, p, body=b)
            if r["status"] != want_changes[i]:
                bad.append((name, method, path.split("?")[0],
                            want_changes[i], r["status"]))
    vs = check_ok(s.get("/v1/client-policy/versions"), 200, "versions")
    authors = [(v.get("version"), v.get("author"), v.get("reason"))
               for v in vs["versions"]]
    ctx.note("versions after the mandates: %r" % authors)
    check(not bad, "%d right(s) not enforced (mandate, method, route, "
          "expected, got): %r" % (len(bad), bad))
    check_eq(authors[0][1:], (admin["thumbprint"], "policy-admin"),
             "author and reason of the newest version")
    check_eq([v[0] for v in authors], [3, 2, 1], "versions")
    s.stop()


@e2e_test(timeout=90)
def test_client_policy_malformed_client_version_headers_are_handled(ctx):
    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")

    def served(value, what, verdict="supported"):
        r = gate(s, value)
        check_eq(r.status, 200, "%s: %r" % (what, r))
        check_eq(client_policy(r), (verdict, 1), "%s: X-Client-Policy"
                 % what)

    served(None, "no X-Client-Version (server to server)")
    served("", "X-Client-Version: ''")
    served("android", "'android' (no version: missing_version allow)")
    served("android/", "'android/'")
    served("/4.0.0", "'/4.0.0' (no platform)")
    served("android/not-a-version", "unparsable version")
    served("android/4.1.0.7", "4.1.0.7 (not strict)")
    served("android/" + "4." * 146 + "0", "300 characters")
    served("android/" + "9" * 292, "a 300-digit number")
    served("x" * 300, "300 characters without a slash (unknown platform)")
    served("windows/1.0.0", "platform the document does not name")
    served("Android/3.9.0", "platform names are case-sensitive")
    for v, what in (("ios", "'ios' (missing_version block)"),
                    ("ios/", "'ios/'"), ("ios/garbage", "'ios/garbage'")):
        r = gate(s, v)
        p = check_problem(r, 426, "client-version-blocked", what)
        check_eq(p.get("reason"), "missing_version_blocked", what + ": reason")
    for q, reason in ((dict(version=""), "missing_version_allowed"),
                      (dict(version="abc"), "missing_version_allowed")):
        d = evaluate(s, platform="android", **q)
        check_eq((d.get("decision"), d.get("reason")), ("supported", reason),
                 "evaluate android %r" % q)
    d = evaluate(s, platform="ios")
    check_eq((d.get("decision"), d.get("reason")),
             ("blocked", "missing_version_blocked"), "evaluate ios")

    # Raw bytes: non-ASCII, a control character, an over-long line.
    auth = s.auth_header_bytes()
    # obs-text (0x80-0xff) is allowed in a field value (RFC 9110, 5.5), a
    # control byte is not: 400 bad-framing (docs/api.md, Limits); 20 kB
    # is within the 32 KiB request head, so it is only an odd version.
    for value, what, status in (
            (b"android/\xff\xfe\x80", "non-ASCII version bytes", 200),
            (b"\xff\xfe/4.0.0", "non-ASCII platform bytes", 200),
            (b"android/4.0.0\x01", "a control character", 400),
            (b"android/" + b"\x80" * 292, "300 bytes of 0x80", 200),
            (b"android/" + b"1" * 20000, "20 kB of digits", 200)):
        raw = raw_exchange(s.port, b"GET /v1/keys HTTP/1.1\r\n"
                           b"Host: 127.0.0.1\r\n" + auth +
                           b"X-Client-Version: " + value + b"\r\n"
                           b"Connection: close\r\n\r\n",
                           timeout=5 * slow_factor())
        resp = parse_raw_response(raw)
        check(resp is not None, "%s: no HTTP response: %r" % (what, raw[:200]))
        check(resp.status == status, "%s: HTTP %d, expected %d: %r"
              % (what, resp.status, status, raw[:300]))
        if status == 400:
            check_problem(resp, 400, "bad-framing", what)
        else:
            check_eq(client_policy(resp), ("supported", 1),
                     what + ": X-Client-Policy")
        check(s.alive(), "the server died after " + what)
    r = s.get("/healthz", auth=None)
    check_eq(r.status, 200, "healthz after malformed headers")
    # Every gated reply carries the verdict, a refused credential's too.
    r = gate(s, "android/4.1.0", auth=None)
    check_eq(r.status, 401, "android/4.1.0 without a credential: %r" % r)
    check_eq(client_policy(r), ("deprecated", 1),
             "X-Client-Policy on a 401")
    check(r.header("deprecation") is not None,
          "no Deprecation header on a 401 of a deprecated version")

    # unknown_platform block: requests without a platform get 403.
    doc["unknown_platform"] = "block"
    check_ok(put_policy(s, doc, "block unknown"), 201, "PUT v2")
    for v, what in ((None, "no X-Client-Version"), ("", "empty"),
                    ("/4.0.0", "no platform"),
                    ("windows/1.0.0", "unknown platform")):
        r = gate(s, v)
        p = check_problem(r, 403, "client-version-blocked",
                          what + " with unknown_platform block")
        check_eq(p.get("reason"), "unknown_platform_blocked", what)
        check_eq(p.get("policy_version"), 2, what + ": policy_version")
    served_v2 = gate(s, "android/4.2.0")
    check_eq((served_v2.status, client_policy(served_v2)),
             (200, ("supported", 2)), "android/4.2.0 under v2")
    # The policy routes stay reachable without X-Client-Version.
    check_eq(current_version(s), 2, "GET versions without a platform")
    s.stop()


# -- the decision table --------------------------------------------------------

@e2e_test(timeout=60)
def test_client_policy_decision_table_levels_sunset_and_notices(ctx):
    """docs/client-policy.md "The decision" and its example table, with
    dates around now: rule order, channel and country levels, lenient
    versions, a past sunset, overrides that relax only blocked verdicts,
    and notices shown only while active."""
    s = ctx.start_server()
    s.require_admin_token()
    now = int(time.time())
    doc = {
        "unknown_platform": "allow",
        "platforms": {
            "android": {
                "min_supported": "4.0.0", "recommended": "4.2.0",
                "blocked": ["3.x", "4.1.3"], "compat": ["4.0.x"],
                "deprecated": [{"range": "<4.2.0",
                                "since": rfc3339(midnight(now) - 30 * DAY),
                                "sunset": rfc3339(midnight(now) + 90 * DAY)}],
                "upgrade_url": UPGRADE_URL,
                "channels": {"beta": {"min_supported": "4.2.0-beta.1",
                                      "blocked": []}},
                "countries": {"DE": {"min_supported": "4.1.0",
                                     "blocked_status": 403}},
            },
            "ios": {"min_supported": "4.0.0", "version_mode": "lenient",
                    "missing_version": "block",
                    "deprecated": [{"range": "<4.1.0",
                                    "since": rfc3339(now - 60 * DAY),
                                    "sunset": rfc3339(now - DAY)}]},
        },
        "notices": [
            {"id": "past", "severity": "info", "text": {"default": "old"},
             "ends_at": rfc3339(now - 3600)},
            {"id": "inc-42", "severity": "critical",
             "text": {"default": "Card payments are delayed.",
                      "de": "Kartenzahlungen verzoegern sich."},
             "starts_at": rfc3339(now - 3600),
             "expected_resolution_at": rfc3339(now + 7200),
             "ends_at": rfc3339(now + DAY)},
            {"id": "ios-only", "severity": "warning",
             "text": {"default": "iOS"}, "platforms": ["ios"]},
            {"id": "future", "severity": "info", "text": {"default": "later"},
             "starts_at": rfc3339(now + DAY)},
        ],
    }
    check_ok(put_policy(s, doc, "table"), 201, "PUT the table's policy")
    rows = [
        # (query, decision, reason, status)
        (dict(platform="android", version="3.9.0"), "blocked",
         "blocked_range", 426),
        (dict(platform="android", version="4.1.3"), "blocked",
         "blocked_range", 426),
        (dict(platform="android", version="2.0.0"), "blocked",
         "below_min_supported", 426),
        (dict(platform="android", version="4.0.5"), "compat",
         "compat_range", None),
        (dict(platform="android", version="4.1.0"), "deprecated",
         "deprecated_range", None),
        (dict(platform="android", version="4.2.0"), "supported", "no_rule",
         None),
        # npm's prerelease rule: <4.2.0 does not hold 4.2.0-beta.3.
        (dict(platform="android", version="4.2.0-beta.3"), "supported",
         "no_rule", None),
        (dict(platform="android", version="4.0.9", country="DE"), "blocked",
         "below_min_supported", 403),
        (dict(platform="android", version="4.0.9", country="de"), "blocked",
         "below_min_supported", 403),
        (dict(platform="android", version="3.9.0", channel="beta"),
         "blocked", "below_min_supported", 426),
        (dict(platform="android", version="4.2.0-beta.3", channel="beta"),
         "supported", "no_rule", None),
        (dict(platform="android", version="4.1.3", channel="beta",
              country="DE"), "deprecated", "deprecated_range", None),
        (dict(platform="ios", version="v4.2"), "supported", "no_rule", None),
        (dict(platform="ios", version="4.2.1.77"), "supported", "no_rule",
         None),
        (dict(platform="ios", version="4.0.5"), "blocked", "past_sunset",
         426),
        (dict(platform="ios"), "blocked", "missing_version_blocked", 426),
        (dict(platform="web", version="1.0.0"), "supported",
         "unknown_platform_allowed", None),
    ]
    bad = []
    for q, decision, reason, status in rows:
        d = evaluate(s, **q)
        got = (d.get("decision"), d.get("reason"), d.get("status"))
        if got != (decision, reason, status):
            bad.append((q, (decision, reason, status), got))
    check(not bad, "decisions (query, expected, got): %r" % bad)
    d = evaluate(s, platform="android", version="4.1.0", user="u1")
    check_eq((d.get("recommended"), d.get("update_available")),
             ("4.2.0", True), "recommended for android/4.1.0 at 100%")
    # The gate agrees, with the level's status.
    r = gate(s, "android/4.0.9", **{"X-Client-Country": "DE"})
    check_problem(r, 403, "client-version-blocked", "android/4.0.9 from DE")
    r = gate(s, "android/4.0.5")
    check_eq((r.status, client_policy(r)), (200, ("compat", 1)),
             "android/4.0.5 (compat)")
    r = gate(s, "ios/4.0.5")
    p = check_problem(r, 426, "client-version-blocked", "ios/4.0.5 past "
                      "its sunset")
    check_eq(p.get("reason"), "past_sunset", "ios/4.0.5 reason")
    # Notices: only the active ones, in document order, localised.
    d = evaluate(s, platform="android", version="4.2.0", lang="de")
    check_eq([(n.get("id"), n.get("severity"), n.get("text"))
              for n in d.get("notices") or []],
             [("inc-42", "critical", "Kartenzahlungen verzoegern sich.")],
             "android notices")
    check_eq(d["notices"][0].get("expected_resolution_at"),
             rfc3339(now + 7200), "expected_resolution_at")
    d = evaluate(s, platform="ios", version="4.2.0")
    check_eq([n.get("id") for n in d.get("notices") or []],
             ["inc-42", "ios-only"], "ios notices")
    # Overrides relax only blocked verdicts.
    for body in ({"platform": "ios", "range": "4.0.x", "mode": "compat",
                  "duration_s": 600, "reason": "sunset too early"},
                 {"platform": "android", "range": "4.x", "mode": "allow",
                  "duration_s": 600, "reason": "no effect on deprecated"}):
        check_ok(s.post("/v1/client-policy/overrides", body), 201,
                 "override %r" % body)
    d = evaluate(s, platform="ios", version="4.0.5")
    check_eq((d.get("decision"), d.get("decision_without_override")),
             ("compat", "blocked"), "ios/4.0.5 under a compat override")
    for v, want in (("4.1.0", "deprecated"), ("4.0.5", "compat"),
                    ("4.1.3", "supported"), ("3.9.0", "blocked")):
        d = evaluate(s, platform="android", version=v)
        check_eq(d.get("decision"), want,
                 "android/%s under an allow override of 4.x" % v)
    d = evaluate(s, platform="ios")
    check_eq(d.get("decision"), "blocked",
             "ios without a version: overrides never apply to rule 1")
    s.stop()


# -- 3. history, diff, rollback, restart ---------------------------------------

@e2e_test(timeout=120)
def test_client_policy_history_diff_rollback_survive_restart(ctx):
    s = ctx.start_server()
    s.require_admin_token()
    v1, _, _ = base_policy()
    v2 = json.loads(json.dumps(v1))
    v2["platforms"]["android"]["min_supported"] = "4.1.0"
    v3 = json.loads(json.dumps(v2))
    a3 = v3["platforms"]["android"]
    a3["upgrade_url"] = "https://apps.example.com/tpwallet"
    a3["recommended"] = "4.2.0"
    a3["blocked"] = ["3.x", "4.1.3"]

    out = check_ok(put_policy(s, v1, "first"), 201, "PUT v1")
    check_eq(out.get("version"), 1, "v1")
    out = check_ok(put_policy(s, v2, "raise min to 4.1.0"), 201, "PUT v2")
    check_eq((out.get("version"), out.get("previous"), out.get("status")),
             (2, 1, "activated"), "PUT v2 reply")
    check_eq(out.get("changes"),
             [{"path": "platforms.android.min_supported", "old": "4.0.0",
               "new": "4.1.0"}], "PUT v2 changes")
    out = check_ok(put_policy(s, v3, "block 4.1.3"), 201, "PUT v3")
    check_eq((out.get("version"), out.get("previous")), (3, 2),
             "PUT v3 reply")

    vs = check_ok(s.get("/v1/client-policy/versions"), 200, "versions")
    check_eq(vs.get("current"), 3, "current")
    check_eq([(v.get("version"), v.get("reason"), v.get("author"),
               v.get("rollback_of")) for v in vs.get("versions") or []],
             [(3, "block 4.1.3", "admin", None),
              (2, "raise min to 4.1.0", "admin", None),
              (1, "first", "admin", None)], "versions, newest first")
    for v in vs["versions"]:
        check(abs(parse_rfc3339(v.get("set_at")) - time.time()) < 60,
              "set_at %r" % v.get("set_at"))
    want13 = [
        {"path": "platforms.android.blocked[1]", "old": None,
         "new": "4.1.3"},
        {"path": "platforms.android.min_supported", "old": "4.0.0",
         "new": "4.1.0"},
        {"path": "platforms.android.recommended", "old": None,
         "new": "4.2.0"},
        {"path": "platforms.android.upgrade_url", "old": UPGRADE_URL,
         "new": "https://apps.example.com/tpwallet"},
    ]
    d = check_ok(s.get("/v1/client-policy/diff?from=1&to=3"), 200, "diff")
    check_eq((d.get("from"), d.get("to")), (1, 3), "diff from/to")
    check_eq(d.get("changes"), want13, "diff 1 3")
    d = check_ok(s.get("/v1/client-policy/diff?from=3&to=1"), 200, "diff")
    check_eq(d.get("changes"),
             [dict(c, old=c["new"], new=c["old"]) for c in want13],
             "diff 3 1")
    d = check_ok(s.get("/v1/client-policy/diff?from=2&to=2"), 200, "diff")
    check_eq(d.get("changes"), [], "diff 2 2")
    check_problem(s.get("/v1/client-policy/diff?from=1&to=9"), 404,
                  "policy-not-found", "diff to a version that is not")
    # Version numbers are canonical decimal: a leading zero or a space
    # (accepted before issue 10) is refused like a sign.
    for q in ("from=01&to=3", "from=1&to=%203", "from=1&to=3%20",
              "from=%2B1&to=3", "from=-1&to=3"):
        check_problem(s.get("/v1/client-policy/diff?" + q), 400,
                      "invalid-query", "diff?" + q)
    doc1 = check_ok(s.get("/v1/client-policy/versions/1"), 200,
                    "version 1")["document"]
    doc2 = check_ok(s.get("/v1/client-policy/versions/2"), 200,
                    "version 2")["document"]
    check_eq(doc2["platforms"]["android"]["min_supported"], "4.1.0",
             "version 2's min_supported")
    check_problem(s.get("/v1/client-policy/versions/7"), 404,
                  "policy-not-found", "GET version 7")
    r = gate(s, "android/4.0.5")
    check_problem(r, 426, "client-version-blocked", "4.0.5 under v3")

    # Rollback to 1: a new version 4 with v1's document.
    r = s.post("/v1/client-policy/rollback", {"version": 1,
                                              "reason": "undo 2 and 3"})
    out = check_ok(r, 201, "rollback to 1")
    check_eq((out.get("version"), out.get("status"), out.get("previous")),
             (4, "activated", 3), "rollback reply")
    cur = check_ok(s.get("/v1/client-policy/current"), 200, "current")
    check_eq((cur.get("version"), cur.get("rollback_of"), cur.get("reason")),
             (4, 1, "undo 2 and 3"), "current after the rollback")
    check_eq(cur.get("document"), doc1, "v4's document is v1's")
    d = check_ok(s.get("/v1/client-policy/diff?from=1&to=4"), 200, "diff")
    check_eq(d.get("changes"), [], "diff 1 4")
    r = gate(s, "android/4.0.5")
    check_eq((r.status, client_policy(r)), (200, ("deprecated", 4)),
             "4.0.5 after the rollback")
    # A rollback body is a request, not a policy document: its fields are
    # refused like any other body's (400, docs/client-policy.md).
    for body, status, name in (
            ({"version": 99}, 404, "policy-not-found"),
            ({"version": 0}, 400, "invalid-field"),
            ({"version": "1"}, 400, "invalid-field"),
            ({"version": 1, "extra": 1}, 400, "unknown-field")):
        r = s.post("/v1/client-policy/rollback", body)
        check_problem(r, status, name, "rollback %r" % (body,))
    # The same document again (other key order, spaces, explicit
    # defaults) means the same: 200 unchanged, no new version.
    same = json.loads(json.dumps(v1))
    a = same["platforms"]["android"]
    a.update({"blocked_status": 426, "missing_version": "allow",
              "compat": [], "version_mode": "strict",
              "recommended_rollout": 100})
    text = json.dumps({"unknown_platform": "allow",
                       "platforms": dict(reversed(list(
                           same["platforms"].items())))}, indent=3)
    for body, what in ((v1, "v1 as sent"), (text, "v1 reordered, defaults")):
        r = put_policy(s, body, "again")
        out = check_ok(r, 200, "PUT of %s" % what)
        check_eq(out.get("status"), "unchanged", "PUT of %s" % what)
        check_eq(current_version(s), 4, "version after PUT of %s" % what)

    # Overrides: one open, one ended early.
    r = s.post("/v1/client-policy/overrides",
               {"platform": "android", "range": "3.x", "mode": "compat",
                "duration_s": 3600, "reason": "INC-7"})
    o1 = check_ok(r, 201, "override 1")
    r = s.post("/v1/client-policy/overrides",
               {"platform": "android", "range": "2.x", "mode": "allow",
                "duration_s": 600, "reason": "INC-8"})
    o2 = check_ok(r, 201, "override 2")
    check(o1.get("id") != o2.get("id"), "two overrides, one id")
    r = s.request("DELETE", "/v1/client-policy/overrides/%s?reason=done"
                  % o2["id"])
    out = check_ok(r, 200, "DELETE override 2")
    check_eq(out.get("status"), "ended", "DELETE reply")
    check_problem(s.request("DELETE", "/v1/client-policy/overrides/%s"
                            % o2["id"]),
                  409, "override-ended", "DELETE override 2 again")
    check_problem(s.request("DELETE", "/v1/client-policy/overrides/999"),
                  404, "policy-not-found", "DELETE an unknown override")
    r = gate(s, "android/3.9.0")
    check_eq((r.status, client_policy(r)), (200, ("compat", 4)),
             "3.9.0 under the compat override")
    r = gate(s, "android/2.0.0")
    check_problem(r, 426, "client-version-blocked",
                  "2.0.0 after its override ended")
    # A little activity, written to DATA/activity at a clean stop.
    today = int(time.time() // DAY)
    obs = [{"day": synth.day_text(today), "platform": "android",
            "version": v, "user": "u%d" % i}
           for i, v in enumerate(("3.9.0", "4.1.0", "4.2.0"))]
    check_ok(s.post("/v1/client-policy/activity", {"observations": obs}),
             200, "POST activity")

    def snapshot():
        return {
            "versions": check_ok(s.get("/v1/client-policy/versions"), 200,
                                 "versions"),
            "current": check_ok(s.get("/v1/client-policy/current"), 200,
                                "current"),
            "v2": check_ok(s.get("/v1/client-policy/versions/2"), 200, "v2"),
            "diff13": check_ok(s.get("/v1/client-policy/diff?from=1&to=3"),
                               200, "diff"),
            "overrides": check_ok(
                s.get("/v1/client-policy/overrides?all=true"), 200,
                "overrides"),
            "active": [o["id"] for o in check_ok(
                s.get("/v1/client-policy/overrides"), 200,
                "overrides")["overrides"]],
            "gate": [(r.status, client_policy(r)) for r in
                     (gate(s, v) for v in ("android/3.9.0", "android/2.0.0",
                                           "android/4.0.5",
                                           "android/4.2.0"))],
            "gauges": {k: v for k, v in metrics(s).items()
                       if k in ("tpwallet_client_policy_version",
                                "tpwallet_client_policy_overrides_active")},
        }

    snap = snapshot()
    check_eq(snap["active"], [o1["id"]], "active overrides")
    check_eq(snap["gauges"], {"tpwallet_client_policy_version": 4.0,
                              "tpwallet_client_policy_overrides_active": 1.0},
             "gauges")
    imp = check_ok(s.get("/v1/client-policy/impact?platform=android&"
                         "min_supported=4.2.0"), 200, "impact")
    check_eq((imp.get("blocked"), imp.get("actives")), (2, 3), "impact")

    s.stop()
    s.start()
    check_eq(snapshot(), snap, "state after a clean restart")
    imp2 = check_ok(s.get("/v1/client-policy/impact?platform=android&"
                          "min_supported=4.2.0"), 200, "impact")
    check_eq((imp2.get("blocked"), imp2.get("actives")), (2, 3),
             "impact after a clean restart (DATA/activity)")
    s.kill9()
    s.start()
    check_eq(snapshot(), snap, "state after kill -9 and a restart")
    # Numbering goes on from the journal.
    out = check_ok(put_policy(s, v2, "after restarts"), 201, "PUT v5")
    check_eq((out.get("version"), out.get("previous")), (5, 4), "PUT v5")
    s.stop()


# -- 4. the signed manifest ------------------------------------------------------

@e2e_test(timeout=300)  # may run npm ci
def test_client_policy_signed_manifest_verifies_with_jose_across_rotation(ctx):
    test_authz.ensure_js()
    s = ctx.start_server()
    s.require_admin_token()
    base = "http://127.0.0.1:%d" % s.port
    doc, since, sunset = base_policy()
    check_ok(put_policy(s, doc, "v1"), 201, "PUT v1")
    keyline = s.get("/v1/audit/key").body.decode().splitlines()[0]
    origin = keyline.split("+")[0]
    path = "/v1/client-policy?platform=android&version=3.9.0&user=u1"
    t0 = time.time()
    m = policy_js({"op": "manifest", "base": base, "path": path,
                   "authorization": s.admin_authorization()})
    ct = (m.get("content_type") or "").split(";")[0].strip()
    check_eq(ct, "application/jwt", "manifest Content-Type")
    h, p = m["header"], m["payload"]
    check_eq((h.get("alg"), h.get("typ")),
             ("EdDSA", "tpwallet-client-policy+jwt"), "manifest header")
    kid1 = h.get("kid")
    check(kid1 in [k.get("kid") for k in m["jwks"]["keys"]],
          "manifest kid %r not in the JWKS" % kid1)
    for k, want in (("decision", "blocked"), ("reason", "blocked_range"),
                    ("policy_version", 1), ("min_supported", "4.0.0"),
                    ("upgrade_url", UPGRADE_URL), ("message", MSG_DEFAULT),
                    ("sub", "u1"), ("iss", origin), ("platform", "android"),
                    ("version", "3.9.0"), ("status", 426)):
        check_eq(p.get(k), want, "manifest claim %s" % k)
    check(isinstance(p.get("iat"), int) and isinstance(p.get("exp"), int)
          and p["exp"] > p["iat"], "iat %r exp %r" % (p.get("iat"),
                                                      p.get("exp")))
    check(abs(p["iat"] - t0) < 30, "iat %r is not now" % p["iat"])
    check_eq(p["exp"] - p["iat"], 86400, "exp - iat (a day)")
    ev = evaluate(s, platform="android", version="3.9.0", user="u1")
    for k, v in ev.items():
        check_eq(p.get(k), v, "manifest claim %s against evaluate" % k)
    for t in m["tampered"]:
        check(t["rejected"], "jose accepted a manifest with a tampered %s"
              % t["what"])
    codes = {t["what"]: t["code"] for t in m["tampered"]}
    check_eq(codes.get("decision rewritten"),
             "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
             "error of a rewritten decision")
    check_eq(codes.get("unknown kid"), "ERR_JWKS_NO_MATCHING_KEY",
             "error of an unknown kid")
    check(m["wrong_typ_rejected"], "jwtVerify with another typ accepted it")
    r = s.get(path, auth=None)
    check_problem_any(r, 401, "manifest without a credential")
    m41 = policy_js({"op": "manifest", "base": base,
                     "path": "/v1/client-policy?platform=android&"
                             "version=4.1.0",
                     "authorization": s.admin_authorization()})
    p41 = m41["payload"]
    check_eq((p41.get("decision"), p41.get("sunset"),
              p41.get("deprecated_since")),
             ("deprecated", rfc3339(sunset), rfc3339(since)),
             "manifest of 4.1.0")
    check("sub" not in p41, "sub without a user: %r" % p41.get("sub"))

    # Key rotation: the old manifest still verifies (overlap), new ones
    # carry the new kid.
    r = s.post("/v1/keys/rotate", None)
    rot = check_ok(r, 200, "POST /v1/keys/rotate")
    kid2 = rot.get("kid")
    check(kid2 and kid2 != kid1, "rotation kid %r (was %r)" % (kid2, kid1))
    old = policy_js({"op": "verify", "base": base, "token": m["token"]})
    check(old["ok"], "the pre-rotation manifest no longer verifies: %r"
          % old.get("error"))
    check_eq(old["header"].get("kid"), kid1, "old manifest kid")
    check_eq(sorted(k.get("kid") for k in old["jwks"]["keys"]),
             sorted([kid1, kid2]), "JWKS kids after the rotation")
    check_ok(put_policy(s, dict(doc, unknown_platform="allow",
                                flags={"f": {"rollout": 100}}), "v2"),
             201, "PUT v2")
    m2 = policy_js({"op": "manifest", "base": base, "path": path,
                    "authorization": s.admin_authorization()})
    check_eq(m2["header"].get("kid"), kid2, "kid of a new manifest")
    check_eq((m2["payload"].get("policy_version"),
              m2["payload"].get("flags")), (2, {"f": True}),
             "new manifest's policy_version and flags")
    # Across a restart the old one still verifies (the key ring is kept).
    s.stop()
    s.start()
    base = "http://127.0.0.1:%d" % s.port
    for tok, kid in ((m["token"], kid1), (m2["token"], kid2)):
        v = policy_js({"op": "verify", "base": base, "token": tok})
        check(v["ok"], "manifest of kid %s after a restart: %r"
              % (kid, v.get("error")))
    s.stop()


# -- 5. feature flags --------------------------------------------------------------

@e2e_test(timeout=120)
def test_client_policy_flag_buckets_match_murmur3_and_are_stable(ctx):
    for data, want in ((b"", 0), (b"hello", 0x248BFA47),
                       (b"The quick brown fox jumps over the lazy dog",
                        0x2E4FF723)):
        check_eq(murmur3_x86_32(data), want, "murmur3 self-test %r" % data)
    check_eq(murmur3_x86_32(b"", 1), 0x514E28B7, "murmur3 seed 1")

    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    a = doc["platforms"]["android"]
    a["recommended"] = "4.2.0"
    a["recommended_rollout"] = 30
    doc["flags"] = {
        "new-checkout": {"rollout": 50},
        "tenth": {"rollout": 10},
        "everyone": {"rollout": 100},
        "nobody": {"rollout": 0},
        "instant-payouts": {"rollout": 100, "platforms": ["android"],
                            "versions": ">=4.2.0",
                            "countries": ["DE", "FR"]},
    }
    check_ok(put_policy(s, doc, "flags"), 201, "PUT flags")
    users = ["u%03d" % i for i in range(200)] + [
        "alice@example.com", "Zo\u00eb", "a:b", "x y", "\u7528\u6237"]
    on = set()
    mismatches = []
    for u in users:
        d = evaluate(s, platform="android", version="4.2.0", user=u,
                     country="DE")
        f = d.get("flags") or {}
        check_eq(sorted(f), sorted(doc["flags"]), "flags of %r" % u)
        for name, rollout in (("new-checkout", 50), ("tenth", 10)):
            want = in_rollout(name, u, rollout)
            if f.get(name) is not want:
                mismatches.append((name, u, f.get(name), want))
        if f.get("new-checkout"):
            on.add(u)
        check_eq((f.get("everyone"), f.get("nobody"),
                  f.get("instant-payouts")), (True, False, True),
                 "flags everyone/nobody/instant-payouts of %r" % u)
        d = evaluate(s, platform="android", version="4.1.0", user=u)
        want = in_rollout("recommended.android", u, 30)
        if d.get("update_available") is not want:
            mismatches.append(("recommended_rollout", u,
                               d.get("update_available"), want))
        check_eq(d.get("recommended"), "4.2.0" if want else None,
                 "recommended of %r at 4.1.0" % u)
    check(not mismatches, "%d bucket(s) differ from murmur3 (flag, user, "
          "server, murmur3): %r" % (len(mismatches), mismatches[:10]))
    n = sum(1 for u in users[:200] if u in on)
    ctx.note("new-checkout at 50%%: %d of 200 users on" % n)
    check(70 <= n <= 130, "%d of 200 users on at 50%%" % n)
    # Stable: the same user, again and again, through evaluate and the
    # manifest's claims alike.
    for u in users[:20]:
        answers = {evaluate(s, platform="android", version="4.2.0", user=u,
                            country="DE")["flags"]["new-checkout"]
                   for _ in range(3)}
        check_eq(answers, {u in on}, "answers for %r" % u)
    # Targeting: country, version, no user.
    for q, want in ((dict(country="FR"), True), (dict(country="fr"), True),
                    (dict(country="US"), False), (dict(), False),
                    (dict(country="DE", version="4.1.0"), False)):
        qq = dict(dict(platform="android", version="4.2.0", user="u001"), **q)
        check_eq(evaluate(s, **qq)["flags"]["instant-payouts"], want,
                 "instant-payouts for %r" % q)
    d = evaluate(s, platform="android", version="4.2.0")
    check_eq((d["flags"]["new-checkout"], d["flags"]["everyone"]),
             (False, True), "flags without a user (only 100% is on)")
    # Raising 50 -> 80 keeps everyone who was in.
    doc["flags"]["new-checkout"]["rollout"] = 80
    check_ok(put_policy(s, doc, "80%"), 201, "PUT 80%")
    on80 = {u for u in users if evaluate(
        s, platform="android", version="4.2.0", user=u,
        country="DE")["flags"]["new-checkout"]}
    check(on <= on80, "users dropped when raising 50 -> 80: %r"
          % sorted(on - on80)[:10])
    check_eq(on80, {u for u in users if in_rollout("new-checkout", u, 80)},
             "users on at 80%")
    s.stop()
