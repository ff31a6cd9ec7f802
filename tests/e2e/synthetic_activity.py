#!/usr/bin/env python3
"""synthetic_activity.py - a synthetic client-version activity history for
`POST /v1/client-policy/activity` (docs/client-policy.md, "HTTP API"), and
the figures `GET /v1/client-policy/impact` must report for it.

Standard library only.  Usable as a module (tests/e2e/test_client_policy.py)
and as a script for demos:

    python3 tests/e2e/synthetic_activity.py --users 1500 --weeks 4 \\
        [--seed 7] [--s0 0.9] [--decay 0.08] [--summary] \\
        [--post http://127.0.0.1:PORT --token-file DATA/admin.token]

Without --post it writes {"observations": [...]} to stdout (or, with
--summary, the expected impact of raising the minimum to 4.2.0).

The model: `users` people use the app over `weeks` weeks ending `today`
(day numbers are days since the Unix epoch, UTC).  The share of users on a
version below `new_version` decays exponentially, s(t) = s0 * e^(-decay*t)
(t = days since the first day), by stratified quantiles rather than random
draws, so the daily share follows the curve closely.  Kinds of users:

  - regular: seen every day;
  - occasional: seen on a day with probability 0.35 (seeded);
  - churned: seen every day until a day in the first two weeks, then never
    (their last version is old: they must not count as actives);
  - unparsed: an app-store string that is not strict SemVer ("4.2", "v4.1");
  - relapsed: upgraded, then last seen again on an old build (the LAST
    observation counts, not the highest version);
  - other platform (ios): must not count for android.

Some users upgrade mid-day (old build, then the new one the same day): a
user counts once per day, at the last version seen that day.
"""

import argparse
import calendar
import json
import math
import random
import re
import sys
import time
import urllib.request

OLD_VERSIONS = ("3.9.0", "4.0.5", "4.1.0", "4.1.3", "4.2.0-beta.2")
NEW_VERSIONS = ("4.2.0", "4.2.1", "4.3.0")
UNPARSED_VERSIONS = ("4.2", "v4.1")

_SEMVER_RX = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")


def parse_semver(text):
    """(major, minor, patch, [prerelease ids]) of a strict SemVer 2.0.0
    version, or None when it does not parse."""
    m = _SEMVER_RX.match(text)
    if not m:
        return None
    pre = m.group(4).split(".") if m.group(4) else []
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), pre)


def semver_cmp(a, b):
    """semver.org section 11 precedence of two parsed versions: -1, 0, 1."""
    for x, y in zip(a[:3], b[:3]):
        if x != y:
            return -1 if x < y else 1
    pa, pb = a[3], b[3]
    if not pa or not pb:
        return (0 if not pa and not pb else (1 if not pa else -1))
    for x, y in zip(pa, pb):
        if x == y:
            continue
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            return -1 if int(x) < int(y) else 1
        if xn != yn:
            return -1 if xn else 1
        return -1 if x < y else 1
    if len(pa) != len(pb):
        return -1 if len(pa) < len(pb) else 1
    return 0


def below(version, minimum):
    """True / False, or None when version is not strict SemVer."""
    v = parse_semver(version)
    if v is None:
        return None
    return semver_cmp(v, parse_semver(minimum)) < 0


def day_text(day):
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


def utc_today():
    return int(time.time() // 86400)


class History:
    """A generated history: .observations (day order) and the figures the
    server must derive from it."""

    def __init__(self, users=1500, weeks=4, today=None, seed=7, s0=0.9,
                 decay=0.08, new_version="4.2.0", platform="android"):
        self.users = users
        self.weeks = weeks
        self.today = utc_today() if today is None else today
        self.days = weeks * 7
        self.start = self.today - self.days + 1
        self.s0 = s0
        self.decay = decay
        self.new_version = new_version
        self.platform = platform
        self.observations = self._generate(random.Random(seed))

    # -- the model -------------------------------------------------------
    def model_share(self, day):
        """s(t) of the model on a day (t = day - start)."""
        return self.s0 * math.exp(-self.decay * (day - self.start))

    def model_day_below(self, threshold=0.05):
        """The first day the model's share is under threshold."""
        t = math.log(self.s0 / threshold) / self.decay
        return self.start + int(math.ceil(t))

    def _upgrade_offset(self, q):
        """Day offset from which a user at quantile q (0..1) runs the new
        version: share below at offset t = P(offset > t) = s0*e^(-k t)."""
        if q < 1.0 - self.s0:
            return 0  # upgraded before the history starts
        return int(math.ceil(math.log(self.s0 / (1.0 - q)) / self.decay))

    def _generate(self, rng):
        n = self.users
        kinds = []
        for i in range(n):
            r = i % 100
            if r < 70:
                kinds.append("regular")
            elif r < 82:
                kinds.append("occasional")
            elif r < 90:
                kinds.append("churned")
            elif r < 92:
                kinds.append("unparsed")
            elif r < 93:
                kinds.append("relapsed")
            else:
                kinds.append("ios")
        rng.shuffle(kinds)
        # Stratified quantiles over the users that follow the curve.
        pool = [i for i, k in enumerate(kinds)
                if k in ("regular", "occasional", "churned")]
        order = list(range(len(pool)))
        rng.shuffle(order)
        quantile = {}
        for rank, j in enumerate(order):
            quantile[pool[j]] = (rank + 0.5) / len(pool)

        plan = []  # per user: (name, platform, active days, t -> versions)
        for i, kind in enumerate(kinds):
            name = "user-%05d" % i
            old = OLD_VERSIONS[rng.randrange(len(OLD_VERSIONS))]
            new = NEW_VERSIONS[rng.randrange(len(NEW_VERSIONS))]
            if kind == "ios":
                days = list(range(self.days))
                plan.append((name, "ios", days, lambda t, o=old: [o]))
                continue
            if kind == "unparsed":
                u = UNPARSED_VERSIONS[i % len(UNPARSED_VERSIONS)]
                days = list(range(self.days))
                plan.append((name, self.platform, days, lambda t, u=u: [u]))
                continue
            if kind == "relapsed":
                # New build for most of the window, an old one at the end.
                days = list(range(self.days))
                last = self.days - 1 - (i % 3)
                days = [t for t in days if t <= last]
                plan.append((name, self.platform, days,
                             lambda t, o=old, w=new, last=last:
                             [w] if t < last - 4 else
                             ([w, o] if t == last else [o])))
                continue
            up = self._upgrade_offset(quantile[i])
            if kind == "regular":
                days = list(range(self.days))
            elif kind == "occasional":
                days = [t for t in range(self.days) if rng.random() < 0.35]
            else:  # churned
                gone = rng.randrange(3, 14)
                days = list(range(gone))
            midday = (i % 3 == 0)

            def versions(t, o=old, w=new, up=up, midday=midday):
                if t < up:
                    return [o]
                if t == up and midday and up > 0:
                    return [o, w]  # upgraded during the day
                return [w]
            plan.append((name, self.platform, days, versions))

        plan = [(n, p, frozenset(d), f) for n, p, d, f in plan]
        obs = []
        for t in range(self.days):
            day = day_text(self.start + t)
            for name, platform, days, versions in plan:
                if t in days:
                    for v in versions(t):
                        obs.append({"day": day, "platform": platform,
                                    "version": v, "user": name})
        return obs

    # -- what the server must report --------------------------------------
    def _last_seen(self, upto):
        """user -> (day number, platform, version) of the last observation
        on or before day `upto`."""
        last = {}
        for o in self.observations:
            d = day_number(o["day"])
            if d <= upto:
                last[o["user"]] = (d, o["platform"], o["version"])
        return last

    def expected_impact(self, minimum, platform=None, today=None,
                        window=7):
        """{"actives", "blocked", "unparsed"}: users of platform whose last
        observation is within [today - window + 1, today]; blocked when
        that version is below minimum, unparsed when it is not SemVer."""
        platform = platform or self.platform
        today = self.today if today is None else today
        out = {"actives": 0, "blocked": 0, "unparsed": 0}
        for d, p, v in self._last_seen(today).values():
            if p != platform or d < today - window + 1 or d > today:
                continue
            out["actives"] += 1
            b = below(v, minimum)
            if b is None:
                out["unparsed"] += 1
            elif b:
                out["blocked"] += 1
        return out

    def daily_counts(self, minimum, platform=None):
        """[(day number, below, all)] per day with data: the distinct users
        of the day, each at the last version seen that day."""
        platform = platform or self.platform
        per_day = {}
        for o in self.observations:
            if o["platform"] != platform:
                continue
            per_day.setdefault(day_number(o["day"]), {})[o["user"]] = \
                o["version"]
        rows = []
        for d in sorted(per_day):
            users = per_day[d]
            nb = sum(1 for v in users.values() if below(v, minimum))
            rows.append((d, nb, len(users)))
        return rows

    def fit(self, minimum, threshold=0.05, platform=None):
        """fit_rows over this history's daily counts."""
        return fit_rows(self.daily_counts(minimum, platform), self.today,
                        self.weeks, threshold)

    def batches(self, size=25000):
        """The observations as request bodies of at most `size` each (day
        order kept across batches)."""
        for i in range(0, len(self.observations), size):
            yield {"observations": self.observations[i:i + size]}


def day_number(text):
    """Days since the Unix epoch of "YYYY-MM-DD" (UTC)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d")) // 86400


def fit_rows(rows, today, weeks=4, threshold=0.05):
    """The forecast of docs/client-policy.md from per-day counts
    [(day, below, all)]: least squares of ln(below/all) on day over the
    days of [today - 7*weeks, today] with users below; {"b", "c", "r2",
    "share_now", "daily_decay", "day_below", "days_used"} (day_below None
    when the share is not falling), or None with fewer than 3 days."""
    xs, ys = [], []
    for d, nb, na in rows:
        if d < today - weeks * 7 or d > today:
            continue
        if nb and na:
            xs.append(float(d))
            ys.append(math.log(nb / na))
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    b = sxy / sxx
    c = my - b * mx
    ssres = sum((y - (c + b * x)) ** 2 for x, y in zip(xs, ys))
    r2 = 1.0 - ssres / syy if syy > 1e-12 else 1.0
    share_now = math.exp(c + b * today)
    if share_now < threshold:
        day_below = today
    elif b < 0:
        day_below = int(math.ceil((math.log(threshold) - c) / b))
    else:
        day_below = None
    return {"b": b, "c": c, "r2": max(r2, 0.0), "share_now": share_now,
            "daily_decay": 1.0 - math.exp(b), "day_below": day_below,
            "days_used": n}


def post(history, base, token, size=25000, timeout=60):
    """POST every batch to base + /v1/client-policy/activity; returns the
    sum of the servers' "observed"."""
    observed = 0
    for body in history.batches(size):
        req = urllib.request.Request(
            base.rstrip("/") + "/v1/client-policy/activity",
            data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            observed += json.loads(r.read().decode())["observed"]
    return observed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--s0", type=float, default=0.9)
    ap.add_argument("--decay", type=float, default=0.08)
    ap.add_argument("--min-supported", default="4.2.0")
    ap.add_argument("--summary", action="store_true",
                    help="print the expected impact instead of the body")
    ap.add_argument("--post", metavar="BASE_URL",
                    help="POST the history to this server")
    ap.add_argument("--token-file", help="DATA/admin.token (with --post)")
    a = ap.parse_args(argv)
    h = History(users=a.users, weeks=a.weeks, seed=a.seed, s0=a.s0,
                decay=a.decay)
    if a.post:
        if not a.token_file:
            ap.error("--post needs --token-file")
        with open(a.token_file) as f:
            token = f.read().strip()
        n = post(h, a.post, token)
        print("posted %d observations (%d observed)"
              % (len(h.observations), n))
    if a.summary or a.post:
        fit = h.fit(a.min_supported)
        print(json.dumps({
            "today": day_text(h.today),
            "observations": len(h.observations),
            "impact": h.expected_impact(a.min_supported),
            "model_date_below": day_text(h.model_day_below()),
            "fit": dict(fit, day_below=day_text(fit["day_below"])
                        if fit and fit["day_below"] is not None else None)
            if fit else None,
        }, indent=2))
        return 0
    json.dump({"observations": h.observations}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
