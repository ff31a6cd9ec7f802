"""test_grafana.py - the Grafana dashboard (deploy/grafana/tpwallet.json;
Grafana is not in Debian, so its JSON is checked here instead of loaded):
it parses and has the structure Grafana needs (unique panel ids, a grid
of 24 columns, a Prometheus datasource variable every query uses, a
refId and an expr per query); every PromQL expression parses (promtool
check rules, on recording rules made of them with Grafana's variables
replaced); and every tpwallet series it queries, with each label its
selectors name, is one that a running server exports (store = 1, so the
store's series are there too; a policy, a blocked request and an
override, so the client policy's series have samples).
"""

import json
import os
import re
import shutil
import subprocess

from harness import e2e_test, check, check_eq
from test_client_policy import base_policy, check_ok, put_policy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "tpwallet.json")
# What the dashboard's variables stand for when the expressions are
# parsed outside Grafana.
VARIABLES = {"$__rate_interval": "5m", "$instance": ".*"}
SELECTOR = re.compile(r"\b(tpwallet_[a-z0-9_]+)(?:\{([^}]*)\})?")


def queries(doc):
    """(panel title, target) of every query of every panel."""
    out = []
    for p in doc["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t))
    return out


def exported(s):
    """{series name: set of label names} of the server's /metrics."""
    r = s.get("/metrics")
    check_eq(r.status, 200, "GET /metrics")
    series = {}
    for line in r.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s", line)
        check(m is not None, "a /metrics line: %r" % line)
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2)
                                or ""))
        series.setdefault(m.group(1), set()).update(labels)
    return series


@e2e_test(timeout=120)
def test_grafana_dashboard_is_well_formed_and_queries_parse(ctx):
    with open(DASHBOARD) as f:
        doc = json.load(f)
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        check(key in doc, "the dashboard has %r" % key)
    check(isinstance(doc["schemaVersion"], int), "schemaVersion")
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    check_eq((variables["datasource"]["type"],
              variables["datasource"]["query"]),
             ("datasource", "prometheus"), "the datasource variable")
    ids = [p["id"] for p in doc["panels"]]
    check_eq(len(ids), len(set(ids)), "unique panel ids")
    for p in doc["panels"]:
        g = p["gridPos"]
        check(all(isinstance(g[k], int) for k in "xywh") and
              g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24,
              "panel %r: gridPos %r within 24 columns" % (p["title"], g))
        check(p["title"], "panel %r: a title" % p["id"])
        if p["type"] == "row":
            continue
        check_eq(p["datasource"]["uid"], "${datasource}",
                 "panel %r: datasource" % p["title"])
        refs = [t["refId"] for t in p["targets"]]
        check(refs and len(refs) == len(set(refs)),
              "panel %r: unique refIds %r" % (p["title"], refs))
    qs = queries(doc)
    check(len(qs) >= 20, "queries: %d" % len(qs))

    # Every expression parses as PromQL: promtool checks them as
    # recording rules.
    tool = shutil.which("promtool")
    check(tool is not None, "promtool is not installed: scripts/deps.sh "
          "test installs Debian's prometheus package")
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, t) in enumerate(qs):
        expr = t["expr"]
        for var, value in VARIABLES.items():
            expr = expr.replace(var, value)
        check("$" not in expr, "an unknown variable in %r" % t["expr"])
        rules += ["      - record: dashboard:query_%d" % i,
                  "        expr: %s" % json.dumps(expr)]
    path = ctx.path("dashboard-rules.yml")
    with open(path, "w") as f:
        f.write("\n".join(rules) + "\n")
    r = subprocess.run([tool, "check", "rules", path], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0 and "SUCCESS: %d rules found" % len(qs)
          in r.stdout, "promtool check rules: %s %s" % (r.stdout, r.stderr))


@e2e_test(timeout=120)
def test_grafana_dashboard_queries_only_series_the_server_exports(ctx):
    with open(DASHBOARD) as f:
        doc = json.load(f)
    s = ctx.start_server(env={"TPWALLET_STORE": "1"})
    s.require_admin_token()
    doc_, _, _ = base_policy()
    check_ok(put_policy(s, doc_, "dashboard"), 201, "PUT the policy")
    r = s.request("GET", "/v1/keys",
                  headers={"X-Client-Version": "android/3.9.4",
                           "X-Client-User": "u1"})
    check_eq(r.status, 426, "a blocked request")
    check_ok(s.post("/v1/client-policy/overrides",
                    {"platform": "android", "range": "3.9.x",
                     "mode": "allow", "duration_s": 600,
                     "reason": "dashboard"}), 201, "an override")
    series = exported(s)
    s.stop()
    used = 0
    for title, t in queries(doc):
        found = SELECTOR.findall(t["expr"])
        check(found, "panel %r: no tpwallet series in %r"
              % (title, t["expr"]))
        for name, selector in found:
            used += 1
            check(name in series, "panel %r queries %s, which the server "
                  "does not export" % (title, name))
            for label in re.findall(r"([a-zA-Z_]\w*)\s*[=!]~?", selector):
                # instance is Prometheus's own, added at scrape.
                check(label == "instance" or label in series[name],
                      "panel %r: %s has no label %r (it has %r)"
                      % (title, name, label, sorted(series[name])))
        for by in re.findall(r"by \(([^)]*)\)", t["expr"]):
            for label in (x.strip() for x in by.split(",")):
                check(label == "le" or any(label in series[n]
                                           for n, _ in found),
                      "panel %r: by (%s): no series has label %r"
                      % (title, by, label))
    check(used >= 25, "series references checked: %d" % used)
