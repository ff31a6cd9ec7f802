"""test_alert_rules.py - the ready-made Prometheus alert rules
(deploy/prometheus/tpwallet-alerts.yml, docs/operations.md "Alert
rules") are valid (`promtool check rules`), each alert fires on the
series of deploy/prometheus/tpwallet-alerts.test.yml and stays quiet on
the others (`promtool test rules`), and the series of the client policy
they use are the ones a running server exports.

promtool comes with Debian's prometheus package (scripts/deps.sh test).
"""

import os
import re
import shutil
import subprocess

from harness import e2e_test, check, check_eq
from test_client_policy import base_policy, check_ok, metrics, put_policy

HERE = os.path.dirname(os.path.abspath(__file__))
RULES_DIR = os.path.join(HERE, "..", "..", "deploy", "prometheus")
RULES = os.path.join(RULES_DIR, "tpwallet-alerts.yml")
RULE_TESTS = os.path.join(RULES_DIR, "tpwallet-alerts.test.yml")


def promtool(*args):
    tool = shutil.which("promtool")
    check(tool is not None, "promtool is not installed: scripts/deps.sh "
          "test installs Debian's prometheus package")
    return subprocess.run([tool] + list(args), capture_output=True,
                          text=True, timeout=120, cwd=RULES_DIR)


# heavy: promtool's run is most of it and no sanitizer changes its answer.
@e2e_test(timeout=180, heavy=True)
def test_alert_rules_are_valid_and_fire_only_on_their_series(ctx):
    r = promtool("check", "rules", RULES)
    check(r.returncode == 0, "promtool check rules: %s %s"
          % (r.stdout, r.stderr))
    check("SUCCESS: 12 rules found" in r.stdout,
          "twelve rules: %r" % r.stdout)
    r = promtool("test", "rules", RULE_TESTS)
    check(r.returncode == 0, "promtool test rules: %s %s"
          % (r.stdout, r.stderr))
    # Every alert of the file has a test that fires it.
    with open(RULES) as f:
        alerts = re.findall(r"^\s*- alert: (\w+)$", f.read(), re.M)
    with open(RULE_TESTS) as f:
        tested = set(re.findall(r"^\s*alertname: (\w+)$", f.read(), re.M))
    check_eq(sorted(set(alerts)), sorted(tested), "alerts with a test")

    # The client policy's series the rules use are what the server says.
    s = ctx.start_server()
    s.require_admin_token()
    doc, _, _ = base_policy()
    check_ok(put_policy(s, doc, "alerts"), 201, "PUT the policy")
    r = s.request("GET", "/v1/keys",
                  headers={"X-Client-Version": "android/3.9.4",
                           "X-Client-User": "u1"})
    check_eq(r.status, 426, "a blocked request")
    ov = check_ok(s.post("/v1/client-policy/overrides",
                         {"platform": "android", "range": "3.9.x",
                          "mode": "allow", "duration_s": 600,
                          "reason": "alerts"}), 201, "an override")
    names = {k.split("{")[0] for k in metrics(s)}
    with open(RULES) as f:
        used = set(re.findall(r"\b(tpwallet_client_policy_\w+)", f.read()))
    check(used, "the rules use client-policy series")
    check(used <= names, "series the rules use and the server lacks: %r"
          % sorted(used - names))
    check('tpwallet_client_policy_override_expiry_timestamp_seconds'
          '{id="%d"}' % ov["id"] in metrics(s), "the override's expiry")
    s.stop()


@e2e_test(timeout=120)
def test_alert_rules_tls_series_and_labels_are_what_the_server_exports(ctx):
    """The TLS rules select role!="server" and role="standby" of the
    series an HTTPS server with a standby certificate exports."""
    import test_tls
    import test_tls_standby
    pki = test_tls.make_pki(ctx.path("pki"))
    standby = test_tls_standby.make_standby(pki)
    s = test_tls.start_tls(ctx, pki, pki["server1.pem"],
                           env=test_tls_standby.standby_env(pki, standby))
    c = test_tls.https(s.port, pki["ca.pem"])
    status, body = test_tls.get(c, "/metrics")
    c.close()
    check_eq(status, 200, "GET /metrics over HTTPS")
    rows = re.findall(r'^(tpwallet_tls_\w+)\{role="(\w+)"', body.decode(),
                      re.M)
    check_eq(sorted(set(rows)), [
        ("tpwallet_tls_certificate_not_after_seconds", "primary"),
        ("tpwallet_tls_certificate_not_after_seconds", "server"),
        ("tpwallet_tls_certificate_not_after_seconds", "standby"),
        ("tpwallet_tls_serving", "primary"),
        ("tpwallet_tls_serving", "standby")], "the TLS series and roles")
    with open(RULES) as f:
        used = set(re.findall(r"\b(tpwallet_tls_\w+)", f.read()))
    check_eq(sorted(used), sorted({n for n, _ in rows}),
             "the rules use both TLS series")
    s.stop()
