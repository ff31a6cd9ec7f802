"""test_outbound_allow.py - the outbound allow-list (issue 17, item 3;
docs/operations.md "Outbound allow-list"): the server's outbound calls
never reach a loopback, link-local, unspecified, multicast or private
address unless setting outbound_allow covers it.  A probe aimed at a
listener on 127.0.0.1 is refused without a rule (no connection reaches the
listener; the probe says outbound_refused, the log names the host and the
rule, the metric counts it, doctor names why) and served with one.

The harness's servers allow 127.0.0.1 by default (TPWALLET_OUTBOUND_ALLOW
in harness.Server); these tests set the variable themselves.
"""

import http.server
import threading
import time

from harness import e2e_test, check, check_eq, slow_factor, run_cli
from test_client_policy import metrics
from test_probe import wait_probes


class Target:
    """A loopback HTTP listener that answers 200 and counts requests."""

    def __init__(self):
        self.hits = 0
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                target.hits += 1
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def probe_server(ctx, target, allow):
    """A server whose one probe aims at target, with outbound_allow =
    allow ("" none), its config file shared with doctor."""
    conf = ctx.path("tpwallet-%d.conf" % len(ctx.servers))
    with open(conf, "w") as f:
        f.write("probe = %s:web/1.0\n" % target.url)
    env = {"TPWALLET_CONFIG": conf, "TPWALLET_OUTBOUND_ALLOW": allow,
           "TPWALLET_PROBE_INTERVAL_S": "1"}
    return ctx.start_server(env=env), env


def doctor_outbound(s, env):
    r = run_cli(["doctor", "--data", s.data_dir], env=env)
    return [ln for ln in r.stdout.splitlines() if " outbound: " in ln]


@e2e_test(timeout=90)
def test_a_loopback_probe_is_refused_without_a_rule_and_doctor_says_why(ctx):
    target = Target()
    try:
        s, env = probe_server(ctx, target, "")
        ps = wait_probes(s, lambda ps: ps and ps[0].get("verdict"), 15)
        check_eq((ps[0]["verdict"], ps[0]["error"]),
                 ("unreachable", "outbound_refused"), "the probe's result")
        check_eq(target.hits, 0, "requests that reached the listener")
        m = metrics(s)
        check(m.get('tpwallet_outbound_refused_total{class="loopback"}', 0)
              >= 1, "refusal metric: %r" %
              m.get('tpwallet_outbound_refused_total{class="loopback"}'))
        check_eq(m.get('tpwallet_outbound_refused_total{class="private"}'),
                 0.0, "private refusals")
        want = ("127.0.0.1 (127.0.0.1:%d) is loopback; no outbound_allow "
                "rule covers it" % target.port)
        log = open(s.log_path, encoding="utf-8", errors="replace").read()
        check("probe refused by outbound_allow" in log and want in log,
              "the log names the host and the rule")
        lines = doctor_outbound(s, env)
        check_eq(len(lines), 1, "doctor's outbound lines: %r" % lines)
        check(lines[0].startswith("warn    outbound: probe %s is refused "
                                  "(outbound_refused): %s"
                                  % (target.url, want)),
              "doctor's line: %r" % lines[0])
        s.stop()
    finally:
        target.stop()


@e2e_test(timeout=90)
def test_an_allowed_loopback_probe_is_served(ctx):
    target = Target()
    try:
        s, env = probe_server(ctx, target, "127.0.0.1:%d" % target.port)
        ps = wait_probes(s, lambda ps: ps and ps[0].get("verdict"), 15)
        check_eq((ps[0]["verdict"], ps[0]["status"]), ("served", 200),
                 "the probe's result")
        check(target.hits >= 1, "the listener was reached")
        m = metrics(s)
        check_eq(m.get('tpwallet_outbound_refused_total{class="loopback"}'),
                 0.0, "loopback refusals")
        lines = doctor_outbound(s, env)
        check_eq(lines, ["ok      outbound: 1 destination(s) allowed (1 "
                         "outbound_allow rule(s))"], "doctor's outbound line")
        s.stop()
    finally:
        target.stop()


@e2e_test(timeout=30)
def test_a_bad_allow_rule_is_refused_at_start(ctx):
    s = ctx.server(env={"TPWALLET_OUTBOUND_ALLOW": "10.0.0.0/40"})
    served, exited, rc = s.start_expecting_refusal()
    check(served is None and exited, "the server did not start")
    check_eq(rc, 2, "exit status")
    log = open(s.log_path, encoding="utf-8", errors="replace").read()
    check('outbound_allow "10.0.0.0/40": not ADDR/BITS' in log,
          "the message names the rule: %r" % log[-400:])
