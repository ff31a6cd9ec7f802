"""test_probe.py - probes from the outside (issue 11, item 1;
docs/operations.md "Probes"): the refusal marker on every tpwallet
refusal, `tpwallet probe` telling a gateway's refusal from tpwallet's and
from served, `serve --probe` metrics and GET /v1/probes flagging a gateway
that refuses what the policy allows, `doctor --server` warning about it,
and targets that never answer, answer slowly or answer garbage: a result
within the deadline, a server that stays responsive and stops promptly.

The gateway is tests/e2e/gateway_stub.py: a loopback proxy in front of
tpwallet that refuses android/3.9.x itself with a plain 403 page.
"""

import json
import os
import re
import socket
import threading
import time

import gateway_stub
import test_docs
from harness import (e2e_test, check, check_eq, slow_factor, raw_exchange,
                     parse_raw_response, run_cli)
from test_client_policy import put_policy, metrics

MARKER = "tpwallet-problem"
# android: 2.x blocked, below 3.0.0 blocked; 3.9.4 and 4.1.0 supported.
POLICY = {"platforms": {"android": {"min_supported": "3.0.0",
                                    "blocked": ["2.x"]}}}
REFUSED_BY_GATEWAY = "android/3.9"


def check_marked(r, status, what):
    """r is a problem of this status whose marker is its type's slug."""
    check(r is not None, "%s: no answer" % what)
    check_eq(r.status, status, "%s: status (%r)" % (what, r))
    doc = json.loads(r.body)
    want = doc["type"].rsplit("/", 1)[-1]
    check_eq(r.header(MARKER), want, "%s: %s header" % (what, MARKER))
    return want


def policy_server(ctx, args=None, env=None):
    s = ctx.start_server(args=args, env=env)
    r = put_policy(s, POLICY)
    check(r.status in (200, 201), "PUT policy: %r" % (r,))
    return s


def probe_cli(s, public_url, client, *extra):
    r = run_cli(["probe", "--server", "http://127.0.0.1:%d" % s.port,
                 "--client-version", client] + list(extra) + [public_url],
                timeout=30)
    return r


# -- the marker -------------------------------------------------------------

@e2e_test(timeout=90)
def test_every_tpwallet_refusal_carries_the_marker_and_answers_do_not(ctx):
    s = policy_server(ctx, env={"TPWALLET_HEADER_TIMEOUT_S": "1"})
    seen = set()
    # Routing: unknown path, wrong method, bad id, bad query.
    seen.add(check_marked(s.get("/nope"), 404, "unknown path"))
    seen.add(check_marked(s.request("DELETE", "/v1/keys"), 405, "method"))
    seen.add(check_marked(s.get("/v1/accounts/007"), 400, "bad id"))
    # Credentials: none, and a wrong bearer token.
    seen.add(check_marked(s.get("/v1/keys", auth=None), 401, "no token"))
    seen.add(check_marked(s.get("/v1/keys", auth="Bearer nope"), 401,
                          "bad token"))
    # The client-version gate (426), before authentication.
    r = s.request("GET", "/v1/keys", auth=None,
                  headers={"X-Client-Version": "android/2.5.0"})
    check_eq(check_marked(r, 426, "gate"), "client-version-blocked",
             "the gate's marker")
    seen.add("client-version-blocked")
    # The body: not JSON, wrong media type.
    r = s.request("POST", "/v1/accounts", body="{nope",
                  headers={"Content-Type": "application/json"})
    seen.add(check_marked(r, 400, "invalid json"))
    r = s.request("POST", "/v1/accounts", body="[]",
                  headers={"Content-Type": "text/plain"})
    seen.add(check_marked(r, 415, "media type"))
    # Early refusals in front of the router: ambiguous framing, and the
    # netguard's raw 408 for a head that never ends.
    raw = raw_exchange(s.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n"
                       b"Host: b\r\n\r\n")
    seen.add(check_marked(parse_raw_response(raw), 400, "framing"))
    raw = raw_exchange(s.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n",
                       timeout=10 * slow_factor())
    r = parse_raw_response(raw)
    check_eq(check_marked(r, 408, "head deadline"), "request-timeout",
             "the 408's marker")
    check(len(seen) >= 8, "refusal kinds seen: %r" % sorted(seen))
    # What is not a refusal carries no marker.
    for path in ("/healthz", "/metrics", "/v1/keys"):
        r = s.get(path)
        check_eq(r.status, 200, "GET %s" % path)
        check_eq(r.header(MARKER), None, "GET %s: marker" % path)


# -- tpwallet probe -----------------------------------------------------------

@e2e_test(timeout=120)
def test_probe_tells_the_gateways_refusal_from_tpwallets_and_from_served(ctx):
    s = policy_server(ctx)
    with gateway_stub.start(s.port, REFUSED_BY_GATEWAY) as gw:
        # The gateway refuses 3.9.4, which tpwallet serves: exit 1.
        r = probe_cli(s, gw.url, "android/3.9.4")
        check_eq(r.returncode, 1, "3.9.4: exit (%s %s)" % (r.stdout,
                                                            r.stderr))
        lines = r.stdout.splitlines()
        check(re.search(r"^  public http://127\.0\.0\.1:%d: "
                        r"refused_by_gateway \(HTTP 403" % gw.port,
                        r.stdout, re.M), "public line: %r" % lines)
        check(re.search(r"^  server \S+: served \(HTTP 401 malformed; "
                        r"gate supported, policy version 1\)$",
                        r.stdout, re.M), "server line: %r" % lines)
        check_eq(lines[-1], "disagreement: the gateway refuses what the "
                 "server serves", "3.9.4: last line")
        check_eq(gw.refused, 1, "requests the gateway refused")

        # tpwallet refuses 2.5.0 on both paths: its rule and version.
        r = probe_cli(s, gw.url, "android/2.5.0", "--json")
        check_eq(r.returncode, 3, "2.5.0: exit (%s %s)" % (r.stdout,
                                                            r.stderr))
        doc = json.loads(r.stdout)
        check_eq(doc["outcome"], "both_refused", "2.5.0 outcome")
        for side in ("public", "server"):
            got = doc[side]
            check_eq((got["verdict"], got["status"], got["problem"],
                      got["gate"], got["reason"], got["policy_version"]),
                     ("refused_by_tpwallet", 426, "client-version-blocked",
                      "blocked", "blocked_range", 1), "2.5.0 %s" % side)

        # 4.1.0 is served on both; with the administrator's token from a
        # file the answer is 200, and the token is printed nowhere.
        token_file = ctx.path("probe.token")
        with open(token_file, "w") as f:
            f.write(s.admin_token())
        os.chmod(token_file, 0o600)
        r = probe_cli(s, gw.url, "android/4.1.0", "--token-file",
                      token_file, "--json")
        check_eq(r.returncode, 0, "4.1.0: exit (%s %s)" % (r.stdout,
                                                            r.stderr))
        doc = json.loads(r.stdout)
        check_eq((doc["outcome"], doc["public"]["status"],
                  doc["server"]["status"]), ("served", 200, 200), "4.1.0")
        check(s.admin_token() not in r.stdout + r.stderr,
              "the token was printed")
        # The same from the environment.
        r = run_cli(["probe", "--server", "http://127.0.0.1:%d" % s.port,
                     "--client-version", "android/4.1.0", "--json",
                     gw.url], env={"TPWALLET_PROBE_TOKEN": s.admin_token()})
        check_eq(json.loads(r.stdout)["public"]["status"], 200,
                 "token from TPWALLET_PROBE_TOKEN")

    # The gateway is gone: unreachable, exit 4.
    r = probe_cli(s, gw.url, "android/4.1.0")
    check_eq(r.returncode, 4, "no gateway: exit (%s)" % r.stdout)
    check(re.search(r"^  public \S+: unreachable \(connect\)$", r.stdout,
                    re.M), "unreachable line: %r" % r.stdout)
    # Usage: a bad client version, no URL.
    check_eq(probe_cli(s, gw.url, "Android 3").returncode, 2, "bad client")
    r = run_cli(["probe", "--client-version", "android/1.0"])
    check_eq(r.returncode, 2, "no URL")


# -- serve --probe ------------------------------------------------------------

def wait_probes(s, want, timeout):
    """GET /v1/probes until want(list) is true; the last list."""
    deadline = time.monotonic() + timeout * slow_factor()
    last = None
    while time.monotonic() < deadline:
        r = s.get("/v1/probes")
        check_eq(r.status, 200, "GET /v1/probes")
        last = r.json()["probes"]
        if want(last):
            return last
        time.sleep(0.1)
    check(False, "probes never reached the expected state: %r" % (last,))


def by_client(probes):
    return {p["client_version"]: p for p in probes}


@e2e_test(timeout=120)
def test_serve_probe_flags_the_gateways_refusal_while_tpwallet_supports(ctx):
    gw = gateway_stub.start(None, REFUSED_BY_GATEWAY)
    try:
        args = []
        for client in ("android/3.9.4", "android/4.1.0", "android/2.5.0"):
            args += ["--probe", "%s:%s" % (gw.url, client)]
        s = ctx.start_server(args=args,
                             env={"TPWALLET_PROBE_INTERVAL_S": "1"})
        r = put_policy(s, POLICY)
        check(r.status in (200, 201), "PUT policy: %r" % (r,))
        gw.upstream_port = s.port

        def settled(ps):
            b = by_client(ps)
            return (len(ps) == 3 and
                    b["android/4.1.0"]["verdict"] == "served" and
                    b["android/2.5.0"]["verdict"] == "refused_by_tpwallet"
                    and b["android/3.9.4"]["verdict"] ==
                    "refused_by_gateway")
        b = by_client(wait_probes(s, settled, 15))
        p = b["android/3.9.4"]
        check_eq((p["tpwallet_verdict"], p["disagreement"], p["up"],
                  p["status"]), ("supported", True, True, 403), "3.9.4")
        check_eq((b["android/2.5.0"]["tpwallet_verdict"],
                  b["android/2.5.0"]["disagreement"],
                  b["android/2.5.0"]["reason"]),
                 ("blocked", False, "blocked_range"), "2.5.0")
        check_eq(b["android/4.1.0"]["disagreement"], False, "4.1.0")

        m = metrics(s)
        for client, verdict, disagree in (
                ("android/3.9.4", "refused_by_gateway", 1),
                ("android/4.1.0", "served", 0),
                ("android/2.5.0", "refused_by_tpwallet", 0)):
            label = 'probe="%s:%s"' % (gw.url, client)
            check_eq(m.get("tpwallet_probe_up{%s}" % label), 1.0,
                     "up %s" % client)
            check_eq(m.get("tpwallet_probe_disagreement{%s}" % label),
                     float(disagree), "disagreement %s" % client)
            for v in ("served", "refused_by_gateway",
                      "refused_by_tpwallet", "unreachable"):
                check_eq(m.get('tpwallet_probe_verdict{%s,verdict="%s"}'
                               % (label, v)), 1.0 if v == verdict else 0.0,
                         "verdict %s %s" % (client, v))
            d = m.get("tpwallet_probe_duration_seconds{%s}" % label)
            check(d is not None and 0 < d < 5, "duration %r" % d)
            t = m.get("tpwallet_probe_last_run_timestamp_seconds{%s}"
                      % label)
            check(t is not None and abs(t - time.time()) < 30,
                  "last run %r" % t)

        # doctor asks the running server and warns about the one probe
        # whose gateway refuses what the policy serves.
        r = run_cli(["doctor", "--data", s.data_dir, "--server",
                     "http://127.0.0.1:%d" % s.port])
        warn = [ln for ln in r.stdout.splitlines()
                if ln.startswith("warn    probe:")]
        check_eq(len(warn), 1, "doctor probe warnings: %r" % r.stdout)
        check("android/3.9.4" in warn[0] and "supported" in warn[0],
              "doctor warning: %r" % warn[0])
        check(re.search(r"^ok      probes: 3 probe\(s\) of \S+: 1 served, "
                        r"1 refused by the gateway, 1 refused by tpwallet",
                        r.stdout, re.M), "doctor summary: %r" % r.stdout)
        # GET /v1/probes is an operator's read: no credential, no list.
        check_eq(s.get("/v1/probes", auth=None).status, 401, "no token")
        s.stop()
    finally:
        gw.stop()


# -- targets that misbehave ---------------------------------------------------

class BadTarget:
    """A loopback listener: 'silent' reads and never answers, 'slow'
    answers a plain 403 after delay_s, 'garbage' answers bytes that are
    not HTTP."""

    def __init__(self, kind, delay_s=0.0):
        self.kind, self.delay_s = kind, delay_s
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.stopping = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _serve(self, c):
        try:
            c.settimeout(1.0)
            c.recv(65536)
            if self.kind == "garbage":
                c.sendall(b"\x00\x01 SURPRISE \xff\xfe\r\n\r\nnot http")
            elif self.kind == "slow":
                if self.stopping.wait(self.delay_s):
                    return
                page = b"<html>403</html>"
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d"
                          b"\r\nContent-Type: text/html\r\n\r\n%s"
                          % (len(page), page))
            else:
                self.stopping.wait(60)
        except OSError:
            pass

    def _run(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


@e2e_test(timeout=120)
def test_silent_slow_and_garbage_targets_are_results_and_stop_is_prompt(ctx):
    targets = {
        "silent": BadTarget("silent"),
        "slow": BadTarget("slow", delay_s=30),
        "quick403": BadTarget("slow", delay_s=0.2),
        "garbage": BadTarget("garbage"),
    }
    try:
        args = []
        for i, name in enumerate(sorted(targets)):
            args += ["--probe", "%s:android/1.%d" % (targets[name].url, i)]
        # A 2 s interval bounds each request to 2 s.
        s = ctx.start_server(args=args,
                             env={"TPWALLET_PROBE_INTERVAL_S": "2"})
        url_of = {t.url: n for n, t in targets.items()}

        def all_run(ps):
            return all(p["runs"] >= 1 for p in ps)
        t0 = time.monotonic()
        ps = wait_probes(s, all_run, 20)
        took = time.monotonic() - t0
        got = {url_of[p["url"]]: p for p in ps}
        check_eq(got["silent"]["verdict"], "unreachable", "silent")
        check_eq(got["silent"]["error"], "timeout", "silent error")
        check_eq(got["slow"]["verdict"], "unreachable", "slow")
        check_eq(got["garbage"]["verdict"], "unreachable", "garbage")
        check_eq((got["quick403"]["verdict"], got["quick403"]["status"]),
                 ("refused_by_gateway", 403), "an answer within the "
                 "deadline")
        for name in ("silent", "slow"):
            check(got[name]["duration_seconds"] < 3.0 * slow_factor(),
                  "%s took %r s" % (name, got[name]["duration_seconds"]))
        # Two targets cost their 2 s deadline each: the round is bounded.
        check(took < 12 * slow_factor(), "first round took %.1fs" % took)
        # Meanwhile the server answers at once.
        for _ in range(20):
            t = time.monotonic()
            check_eq(s.get("/healthz").status, 200, "healthz")
            check(time.monotonic() - t < 1.0 * slow_factor(),
                  "healthz took %.2fs" % (time.monotonic() - t))
            time.sleep(0.05)
        # Stop while a probe waits on the silent target: prompt.
        t = time.monotonic()
        s.stop()
        check(time.monotonic() - t < 4 * slow_factor(),
              "stop took %.1fs" % (time.monotonic() - t))
    finally:
        for t in targets.values():
            t.stop()


@e2e_test(timeout=60)
def test_bad_probe_settings_are_refused_at_start(ctx):
    for args in (["--probe", "http://127.0.0.1:1"],
                 ["--probe", "ftp://h:android/1.0"],
                 ["--probe", "http://h:android/1 0"]):
        r = run_cli(["serve", "--data", ctx.path("d"), "--listen",
                     "127.0.0.1:1"] + args, timeout=20)
        check_eq(r.returncode, 2, "serve %r: exit" % (args,))
        check("invalid value for 'probe'" in r.stderr,
              "serve %r: %r" % (args, r.stderr))
    many = []
    for i in range(17):
        many += ["--probe", "http://127.0.0.1:1:web/1.%d" % i]
    r = run_cli(["serve", "--data", ctx.path("d"), "--listen",
                 "127.0.0.1:1"] + many, timeout=20)
    check_eq(r.returncode, 2, "17 probes: exit")
    r = run_cli(["serve", "--data", ctx.path("d"), "--listen",
                 "127.0.0.1:1"], timeout=20,
                env={"TPWALLET_PROBE_INTERVAL_S": "0"})
    check_eq(r.returncode, 2, "interval 0: exit")


@e2e_test(timeout=120)
def test_the_operations_guides_marked_commands_run_as_written(ctx):
    # docs/operations.md's marked blocks (the refusal marker seen with
    # curl), run as tests/e2e/test_docs.py runs the README's.
    work = test_docs.workdir(ctx)
    s = ctx.server(data_dir=os.path.join(work, "data"))
    s.start()
    test_docs.run_doc(ctx, s, work, "docs/operations.md")
    s.stop()
