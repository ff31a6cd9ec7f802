"""test_netguard.py - issue 9's findings about slow and greedy clients
and lenient framing (2, 4, 8 and 9), each reproduced as the outside
attack did it, scaled down through the settings so it runs in seconds.

Attackers connect from other loopback addresses (127.0.0.2, .3, ...:
Linux routes all of 127/8 to lo), so "another client" is another
address, as it would be on a network.  Every socket is closed by the
test, every loop is bounded in count and time.
"""

import json
import os
import re
import socket
import time

from harness import (e2e_test, check, check_eq, free_port,
                     parse_raw_response, run_cli, slow_factor)

ATTACKER = "127.0.0.2"
PROXY = "127.0.0.6"


def connect(port, src=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_reply(s, timeout):
    """Read until EOF or the timeout: (bytes, closed)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return out, False
        except OSError:
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def exchange(port, data, src=None, timeout=3.0):
    s = connect(port, src, timeout)
    try:
        s.sendall(data)
        return read_reply(s, timeout)
    finally:
        s.close()


def healthz_from(port, src, timeout=2.0):
    """GET /healthz on a new connection from src: the status, or None."""
    try:
        raw, _ = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
                          b"Connection: close\r\n\r\n", src, timeout)
    except OSError:
        return None
    r = parse_raw_response(raw)
    return r.status if r else None


def post_head(s, path, length, extra=b""):
    return (b"POST %s HTTP/1.1\r\nHost: t\r\n" % path.encode() +
            s.auth_header_bytes() +
            b"Content-Type: application/json\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % length)


def close_all(socks):
    for x in socks:
        try:
            x.close()
        except OSError:
            pass


def accounts_body(first_id, n, pad=0):
    body = json.dumps([{"id": str(first_id + i), "ledger": 1, "code": 1}
                       for i in range(n)]).encode()
    return body + b" " * pad


def net_metrics(s):
    m = s.get("/metrics").body.decode()
    out = {}
    for name in ("tpwallet_net_body_bytes_held", "tpwallet_net_tracked"):
        g = re.search(r"^%s (\d+)$" % name, m, re.M)
        out[name] = int(g.group(1)) if g else None
    return out


def wait_held(s, at_least, what, timeout=5.0):
    """Wait until the server has buffered at least at_least body bytes
    (tpwallet_net_body_bytes_held): the explicit event that the uploads
    a test just started are in the server's hands, before it checks
    what they do to others."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        held = net_metrics(s)["tpwallet_net_body_bytes_held"]
        if held is not None and held >= at_least:
            return held
        check(time.monotonic() < deadline, "%s: %r body bytes held, want "
              "at least %d" % (what, held, at_least))
        time.sleep(0.02)


# A slowloris sends a byte every TRICKLE_S: well inside every head
# deadline the tests set (2 s, the witness's 5 s), so a deadline that
# restarted on each byte (the flaw found) would never fire.  The pace is
# the attack's own: wall time is what these tests are about.
TRICKLE_S = 0.5


def slowloris(port, head, count, duration_s, probe, socks):
    """count connections from ATTACKER (appended to socks, which the
    caller closes), each sending head, then a byte every TRICKLE_S for
    duration_s; probe() runs once a round and asks the server something
    from another address.  Returns (answers {i: bytes}, closed_at {i:
    seconds after the trickle began}, rounds)."""
    for _ in range(count):
        try:
            x = connect(port, ATTACKER, timeout=1.0)
            x.sendall(head)
            socks.append(x)
        except OSError:
            pass  # refused at accept: beyond the per-address limit
    t0 = time.monotonic()
    answers = {}
    closed_at = {}
    rounds = 0
    while time.monotonic() - t0 < duration_s:
        for i, x in enumerate(socks):
            if i in closed_at:
                continue
            try:
                x.sendall(b"a")
                x.setblocking(False)
                d = x.recv(65536)
                if d:
                    answers[i] = answers.get(i, b"") + d
                else:
                    closed_at[i] = time.monotonic() - t0
            except (BlockingIOError, socket.timeout):
                pass
            except OSError:
                closed_at[i] = time.monotonic() - t0
            finally:
                x.setblocking(True)
        probe()
        rounds += 1
        time.sleep(TRICKLE_S)
    return answers, closed_at, rounds


def check_all_given_back(s, timeout=3.0):
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        m = net_metrics(s)
        if m == {"tpwallet_net_body_bytes_held": 0,
                 "tpwallet_net_tracked": 1}:
            return
        if time.monotonic() > deadline:
            check(False, "holds and entries left after the clients went: "
                  "%r" % m)
        time.sleep(0.1)



def is_bad_framing(r):
    """The server's refusal of bad framing: a 400 bad-framing problem."""
    return r.json().get("type") == "/problems/bad-framing"


def is_witness_bad_framing(r):
    """The witness's: a 400 whose text says "bad framing: <why>"."""
    return r.body.startswith(b"bad framing: ")


def refused_with_one_400(port, cases, pipelined=None, refusal=is_bad_framing):
    """Each raw request of cases ({what: bytes}) must get one 400 that is
    the refusal of bad framing (a single status line) and the connection
    closed; every case is tried and the failures are listed together.
    The case named by pipelined starts with a good request, answered 200
    first."""
    wrong = []
    for what, data in cases.items():
        raw, closed = exchange(port, data)
        if what == pipelined:
            first = parse_raw_response(raw)
            if first is None or first.status != 200:
                wrong.append("%s: the good one first: %r" % (what, raw[:120]))
                continue
            raw = raw[raw.find(b"HTTP/1.", 5):]
        r = parse_raw_response(raw)
        if raw.count(b"HTTP/1.") != 1 or r is None or r.status != 400 or \
                not refusal(r) or not closed:
            wrong.append("%s: %s%r" % (what, "" if closed else "(left open) ",
                                       raw[:160]))
    check(not wrong, "not refused with one 400 bad-framing and closed:\n"
          + "\n".join(wrong))

# -- finding 2 -------------------------------------------------------------

@e2e_test(timeout=60)
def test_66_slow_8mib_uploads_leave_writes_to_others_and_are_cut_at_the_body_deadline(ctx):  # noqa: E501
    # The attack as found: 66 connections each declare 8 MiB and send a
    # byte now and then.  Before the fix each reserved its whole
    # Content-Length (66 x 8 MiB > the 512 MiB budget) and every write
    # answered 503.  Now only received bytes are held, and the body
    # deadline (lowered to 4 s here) closes them with a 408.
    s = ctx.start_server(env={"TPWALLET_BODY_TIMEOUT_S": "4"})
    head = post_head(s, "/v1/accounts", 8 << 20)
    socks = []
    try:
        for _ in range(66):
            x = connect(s.port, ATTACKER)
            x.sendall(head + b"[")
            socks.append(x)
        wait_held(s, 66, "66 slow uploads, a byte each")
        for i in range(3):
            r = s.post("/v1/accounts", [{"id": str(100 + i), "ledger": 1,
                                         "code": 1}])
            check_eq(r.status, 200, "a write from another client while 66 "
                     "slow uploads are open: %r" % r)
        t0 = time.monotonic()
        # One byte a second keeps a resetting timeout alive, not this one.
        limit = 4 + 2.5 * slow_factor()
        got = b""
        closed = False
        while time.monotonic() - t0 < limit and not closed:
            try:
                socks[0].sendall(b" ")
            except OSError:
                pass
            out, closed = read_reply(socks[0], 1.0)
            got += out
        took = time.monotonic() - t0
        check(closed, "the slow upload is still open after %.1fs" % took)
        r = parse_raw_response(got)
        check(r is not None and r.status == 408,
              "the slow upload's answer: %r" % got[:200])
        check_eq(r.json()["type"], "/problems/request-timeout", "type")
        close_all(socks)
        check_all_given_back(s)
    finally:
        close_all(socks)


@e2e_test(timeout=60)
def test_one_address_holds_at_most_its_body_budget_and_others_still_write(ctx):
    # Bodies that really arrive, fast, but never end: the budget of one
    # address (1 MiB here) bounds them, so a second upload from it is
    # refused (503, naming the address) while a client from another
    # address writes.  Then one principal's budget (2 MiB) across two
    # addresses.
    mib = 1 << 20
    s = ctx.start_server(env={
        "TPWALLET_BODY_BUDGET_BYTES": str(8 * mib),
        "TPWALLET_BODY_BUDGET_PER_ADDRESS_BYTES": str(mib),
        "TPWALLET_BODY_BUDGET_PER_PRINCIPAL_BYTES": str(2 * mib),
        "TPWALLET_BODY_TIMEOUT_S": "30",
        "TPWALLET_BODY_RATE_MIN_BYTES_S": "1"})
    socks = []
    try:
        a = connect(s.port, ATTACKER)
        socks.append(a)
        a.sendall(post_head(s, "/v1/accounts", 4 * mib) + b" " * (700 << 10))
        wait_held(s, 700 << 10, "the first upload")
        body = accounts_body(1, 1, pad=20 << 10)
        raw, _ = exchange(s.port, post_head(s, "/v1/accounts", len(body)) +
                          body, ATTACKER)
        r = parse_raw_response(raw)
        check(r is not None and r.status == 503,
              "a second upload from the same address: %r" % raw[:300])
        check("this address" in r.json().get("detail", ""),
              "the refusal names the address: %r" % r.json())
        raw, _ = exchange(s.port, post_head(s, "/v1/accounts", len(body)) +
                          body, "127.0.0.1")
        r = parse_raw_response(raw)
        check(r is not None and r.status == 200,
              "an upload from another address: %r" % raw[:300])

        b = connect(s.port, "127.0.0.3")
        socks.append(b)
        b.sendall(post_head(s, "/v1/accounts", 4 * mib) + b" " * (700 << 10))
        # Each upload's buffer doubles as its bytes come, never past twice
        # them: 700 KiB in is a 1 MiB buffer held.  Both whole is 2 MiB,
        # the principal's budget (1,400 KiB could be one whole and one
        # still at 512 KiB, leaving room for a third: flaky under load).
        wait_held(s, 2 * mib, "the uploads from two addresses")
        body = accounts_body(5, 1, pad=20 << 10)
        raw, _ = exchange(s.port, post_head(s, "/v1/accounts", len(body)) +
                          body, "127.0.0.4")
        r = parse_raw_response(raw)
        check(r is not None and r.status == 503,
              "the principal's third upload: %r" % raw[:300])
        check("this principal" in r.json().get("detail", ""),
              "the refusal names the principal: %r" % r.json())
        # Everything held comes back when the uploads go: no bytes held,
        # and only this client's own address still tracked.
        close_all(socks)
        check_all_given_back(s)
    finally:
        close_all(socks)



@e2e_test(timeout=90)
def test_an_administrator_rooted_mandate_holds_only_its_own_body_share(ctx):
    # The fresh review: every mandate the administrator signed shared the
    # administrator's body budget, so one till's slow uploads made the
    # administrator's own writes (and every other such mandate's) 503.
    from test_authz import Authz, _right, js
    mib = 1 << 20
    a = Authz(ctx, env={
        "TPWALLET_BODY_BUDGET_BYTES": str(16 * mib),
        "TPWALLET_BODY_BUDGET_PER_ADDRESS_BYTES": str(16 * mib),
        "TPWALLET_BODY_BUDGET_PER_PRINCIPAL_BYTES": str(mib),
        "TPWALLET_BODY_TIMEOUT_S": "30",
        "TPWALLET_BODY_RATE_MIN_BYTES_S": "1"})
    s = a.s
    a.accounts([1, 2, 3])
    till, other = a.keys(2)
    chain = [a.chain([_right([1])], [till])[0]["compact"]]
    text = "~".join(chain)

    def till_head(length):
        proof = js({"op": "dpop", "key": till["private_jwk"], "htm": "POST",
                    "htu": "http://t/v1/transfers",
                    "access_token": text})["proof"]
        return (b"POST /v1/transfers HTTP/1.1\r\nHost: t\r\n"
                b"Authorization: DPoP " + text.encode() + b"\r\n"
                b"DPoP: " + proof.encode() + b"\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % length)

    socks = []
    try:
        x = connect(s.port, ATTACKER)
        socks.append(x)
        x.sendall(till_head(4 * mib) + b" " * (900 << 10))
        wait_held(s, 900 << 10, "the till's upload")
        # the till's own share is nearly used: its next upload is refused
        raw, _ = exchange(s.port, till_head(256 << 10) + b" " * (256 << 10),
                          "127.0.0.3")
        r = parse_raw_response(raw)
        check(r is not None and r.status == 503 and
              "this principal" in r.json().get("detail", ""),
              "the till's second upload: %r" % raw[:300])
        # the administrator's own write, from another address, is not
        body = accounts_body(10, 1, pad=64 << 10)
        raw, _ = exchange(s.port, post_head(s, "/v1/accounts", len(body)) +
                          body, "127.0.0.4")
        r = parse_raw_response(raw)
        check(r is not None and r.status == 200,
              "the administrator's upload beside the till's: %r"
              % raw[:300])
        # nor another administrator-rooted mandate's
        other_chain = a.chain([_right([2])], [other])
        r = a.call(other_chain, other, "POST", "/v1/transfers",
                   [{"id": "7", "debit_account_id": "2",
                     "credit_account_id": "3", "amount": "1",
                     "ledger": 1, "code": 1}])
        check_eq(r["status"], 200, "another mandate's transfer: %r" % r)
        close_all(socks)
        check_all_given_back(s)
    finally:
        close_all(socks)


# -- finding 4 -------------------------------------------------------------

@e2e_test(timeout=60)
def test_slowloris_from_one_address_leaves_healthz_to_others_and_heads_time_out(ctx):  # noqa: E501
    # 80 unauthenticated connections from one address, each a partial
    # head and a byte every 0.5 s (the attack at 4,100 x 5 s, scaled to a
    # server of 64 connections).  Before: the 64 slots stayed taken and
    # /healthz from anyone else failed.  Now: 16 per address, the head
    # deadline (2 s here) is not reset by the bytes, and a 408 closes
    # each.
    s = ctx.start_server(env={
        "TPWALLET_CONNECTIONS_MAX": "64",
        "TPWALLET_CONNECTIONS_PER_ADDRESS_MAX": "16",
        "TPWALLET_HEADER_TIMEOUT_S": "2"})
    socks = []

    def probe():
        st = healthz_from(s.port, "127.0.0.1", timeout=2.0)
        check_eq(st, 200, "GET /healthz from another address during "
                 "the slowloris")

    try:
        # Trickle for 6 s; ask /healthz from another address on the way,
        # each on a new connection.
        answers, closed_at, ok = slowloris(
            s.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: ", 80, 6.0,
            probe, socks)
        check(ok >= 5, "asked /healthz only %d times" % ok)
        timed_out = [i for i, d in answers.items()
                     if (parse_raw_response(d) or
                         parse_raw_response(b"HTTP/1.1 000 x\r\n\r\n")).status
                     == 408]
        # Each of the 16 admitted heads is answered 408 and closed; the
        # reply of one can be lost to the reset that a close with our
        # unread trickle in its buffer makes (RFC 9112, 9.6: "the reset
        # packet might erase the client's unacknowledged input buffers"),
        # so not every 408 is ours to read.  Whatever we read, every
        # attacker connection must be closed by the end (below).
        check(len(timed_out) >= 12,
              "heads cut with 408: %d of the admitted (answers %r)"
              % (len(timed_out), list(answers.values())[:2]))
        check(all(closed_at.get(i, 99) < 2 + 2.5 * slow_factor()
                  for i in timed_out),
              "a trickling head outlived its deadline: %r" % closed_at)
        check(len(socks) - len(closed_at) == 0,
              "%d attacker connections still open after 6 s"
              % (len(socks) - len(closed_at)))
        m = s.get("/metrics").body.decode()
        heads = re.search(r'^tpwallet_net_closed_total\{deadline="head"\} '
                          r'(\d+)$', m, re.M)
        refused = re.search(r"^tpwallet_net_refused_total (\d+)$", m, re.M)
        check(heads and int(heads.group(1)) >= len(timed_out),
              "closed heads in /metrics: %r" % (heads and heads.group(0)))
        check(refused and int(refused.group(1)) >= len(socks) - 16,
              "refused connections in /metrics: %r"
              % (refused and refused.group(0)))
    finally:
        close_all(socks)


@e2e_test(timeout=60)
def test_behind_a_trusted_proxy_the_forwarded_address_is_limited_not_the_proxy(ctx):  # noqa: E501
    # The proxy (127.0.0.6 here) is exempt from the per-address limit;
    # requests it forwards count against the X-Forwarded-For client.  The
    # same header from an address that is not a proxy is ignored.
    s = ctx.start_server(env={
        "TPWALLET_TRUSTED_PROXIES": "127.0.0.6/32, ::1",
        "TPWALLET_CONNECTIONS_PER_ADDRESS_MAX": "2",
        "TPWALLET_BODY_TIMEOUT_S": "30",
        "TPWALLET_BODY_RATE_MIN_BYTES_S": "1"})
    fwd = b"X-Forwarded-For: 203.0.113.9, 198.51.100.7\r\n"
    socks = []
    try:
        for _ in range(2):
            x = connect(s.port, PROXY)
            x.sendall(post_head(s, "/v1/accounts", 1000, fwd) + b"[")
            socks.append(x)
        wait_held(s, 2, "two forwarded uploads, a byte each")
        raw, closed = exchange(s.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
                               + fwd + b"\r\n", PROXY)
        r = parse_raw_response(raw)
        check(r is not None and r.status == 429 and closed,
              "a third request of the forwarded client: %r" % raw[:300])
        check_eq(r.json()["type"], "/problems/too-many-requests", "type")
        for src, hdr in ((PROXY, b"X-Forwarded-For: 198.51.100.8\r\n"),
                         ("127.0.0.5", fwd)):
            raw, _ = exchange(s.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
                              + hdr + b"Connection: close\r\n\r\n", src)
            r = parse_raw_response(raw)
            check(r is not None and r.status == 200,
                  "from %s with %r: %r" % (src, hdr, raw[:200]))
        # A request through the proxy must say who the client is.
        raw, closed = exchange(s.port, b"GET /healthz HTTP/1.1\r\n"
                               b"Host: t\r\n\r\n", PROXY)
        r = parse_raw_response(raw)
        check(r is not None and r.status == 400 and closed,
              "no X-Forwarded-For through the proxy: %r" % raw[:200])
    finally:
        close_all(socks)


# -- finding 8 -------------------------------------------------------------

@e2e_test(timeout=60)
def test_ambiguous_framing_is_refused_with_400_and_the_connection_closed(ctx):
    s = ctx.start_server()
    a = s.auth_header_bytes()
    ok = s.post("/v1/accounts", [{"id": "1", "ledger": 1, "code": 1}])
    check_eq(ok.status, 200, "account 1")
    one = b'[{"id":"2","ledger":1,"code":1}]'
    smuggled = b"GET /v1/accounts/1 HTTP/1.1\r\nHost: t\r\n" + a + b"\r\n"
    cases = {
        "two differing Content-Length":
            b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\nContent-Length: %d\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(one), len(one) +
                                             len(smuggled)) + one + smuggled,
        "Content-Length with Transfer-Encoding: chunked":
            b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
        "Transfer-Encoding other than chunked":
            b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "a NUL in the Authorization value":
            b"GET /v1/accounts/1 HTTP/1.1\r\nHost: t\r\n" + a[:-2] +
            b"\x00junk\r\n\r\n",
        "a bare LF ending the lines":
            b"GET /v1/accounts/1 HTTP/1.1\nHost: t\n" + a[:-2] + b"\n\n",
        "a folded header line":
            b"GET /v1/accounts/1 HTTP/1.1\r\nHost: t\r\n" + a +
            b"X-A: a\r\n b\r\n\r\n",
        "a Content-Length that is not a decimal":
            b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\nContent-Length: +2\r\n"
            b"\r\n[]",
        "a Content-Length past 2^64 (libmicrohttpd's 413 had two "
        "status lines)":
            b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\n"
            b"Content-Length: 18446744073709551616\r\n\r\n[]",
        "two numbers in one Content-Length":
            b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\nContent-Length: 1 2\r\n"
            b"\r\n[]",
        "a bad line pipelined after a good request":
            b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\x00\r\n\r\n",
        "%00 in the path":
            b"GET /v1/accounts/1%00/transfers HTTP/1.1\r\nHost: t\r\n" + a +
            b"\r\n",
        "a control character in a header value":
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n",
        "a space before the colon":
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n",
    }
    refused_with_one_400(s.port, cases,
                         pipelined="a bad line pipelined after a good request")
    r = s.get("/v1/accounts/2")
    check_eq(r.status, 404, "nothing was created by a refused request")



@e2e_test(timeout=60)
def test_the_second_reviews_framing_cases_are_refused_with_one_400(ctx):
    # The fresh review after the fixes: a Content-Length with a trailing
    # blank got two status lines from libmicrohttpd; %2F in the path was
    # routed as a slash (past a proxy matching the written path); no Host,
    # or two, was served (the first naming DPoP's htu); absolute-form.
    s = ctx.start_server()
    a = s.auth_header_bytes()
    one = b'[{"id":"2","ledger":1,"code":1}]'
    cases = {
        "a Content-Length with a trailing blank":
            b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d \r\n\r\n" % len(one) + one,
        "%2F in the path":
            b"GET /v1%2Faudit/head HTTP/1.1\r\nHost: t\r\n" + a + b"\r\n",
        "%2f before an id's segment":
            b"GET /v1/accounts/1%2freceipt HTTP/1.1\r\nHost: t\r\n" + a +
            b"\r\n",
        "%5C in the path":
            b"GET /v1/accounts%5C1 HTTP/1.1\r\nHost: t\r\n" + a + b"\r\n",
        "an HTTP/1.1 request without Host":
            b"GET /v1/accounts/1 HTTP/1.1\r\n" + a + b"\r\n",
        "two Host fields":
            b"GET /v1/accounts/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + a +
            b"\r\n",
        "absolute-form":
            b"GET http://t/v1/accounts/1 HTTP/1.1\r\nHost: t\r\n" + a +
            b"\r\n",
    }
    refused_with_one_400(s.port, cases)
    check_eq(s.get("/v1/accounts/2").status, 404, "nothing was created")
    # what stays: %2F in the query, HTTP/1.0 without Host
    ok = s.post("/v1/accounts", [{"id": "1", "ledger": 1, "code": 1}])
    check_eq(ok.status, 200, "account 1")
    raw, _ = exchange(s.port, b"GET /v1/accounts/1 HTTP/1.0\r\n" + a +
                      b"\r\n")
    r = parse_raw_response(raw)
    check(r is not None and r.status == 200, "HTTP/1.0 without Host: %r"
          % raw[:160])


# -- finding 9 -------------------------------------------------------------

@e2e_test(timeout=60)
def test_witness_keeps_answering_others_through_70_slow_sockets(ctx):
    # The attack as found: 70 sockets (the witness serves 64), each a
    # partial head and a byte every 0.5 s.  Before, every slot stayed
    # taken (the timeout restarted on each byte) and the log's own
    # requests were refused.  Now one address gets 8 connections, and a
    # head has 5 s from its request line, whatever trickles.
    from test_witness import Witness
    srv = ctx.start_server()
    key = srv.get("/v1/audit/key")
    check_eq(key.status, 200, "GET /v1/audit/key")
    srv.stop()
    w = Witness(ctx, ctx.path("witness"), "witness.example/w1",
                [key.body.decode().strip()]).start()
    socks = []

    def probe():
        raw, _ = exchange(w.port, b"GET /add-checkpoint HTTP/1.1\r\n"
                          b"Host: t\r\nConnection: close\r\n\r\n",
                          "127.0.0.1", 2.0)
        r = parse_raw_response(raw)
        check(r is not None and r.status == 405,
              "the witness to another address during the attack: %r"
              % raw[:200])

    try:
        answers, closed_at, asked = slowloris(
            w.port, b"POST /add-checkpoint HTTP/1.1\r\nHost: t\r\nX-A: ",
            70, 7.0, probe, socks)
        check(asked >= 5, "asked the witness only %d times" % asked)
        cut = [i for i, d in answers.items() if d.startswith(
            b"HTTP/1.1 408 ")]
        # 8 admitted; a 408 may be lost to the reset (RFC 9112, 9.6), as
        # in the server's slowloris test above.
        check(len(cut) >= 6, "heads cut with 408: %d (answers %r)"
              % (len(cut), list(answers.values())[:2]))
        check(all(closed_at.get(i, 99) < 5 + 2.5 * slow_factor()
                  for i in cut),
              "a trickling head outlived its deadline: %r" % closed_at)
        check_eq(len(socks) - len(closed_at), 0,
                 "attacker connections still open after 7 s")
    finally:
        close_all(socks)
        w.stop()


@e2e_test(timeout=30)
def test_strict_reading_keeps_well_framed_pipelines_and_closes_after_chunked(ctx):  # noqa: E501
    # The strict reading in front of libmicrohttpd must not cost a good
    # client anything: pipelined requests with bodies are all answered on
    # one connection; a chunked upload is answered and the connection
    # closed after it (the bytes after a chunked body are not read).
    s = ctx.start_server()
    a = s.auth_header_bytes()
    one = b'[{"id":"7","ledger":1,"code":1}]'
    data = (b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
            b"Content-Type: application/json\r\nContent-Length: %d\r\n"
            b"\r\n" % len(one) + one +
            b"\r\nGET /v1/accounts/7 HTTP/1.1\r\nHost: t\r\n" + a +
            b"\r\n")
    x = connect(s.port)
    try:
        x.sendall(data)
        got = b""
        deadline = time.monotonic() + 5
        while got.count(b"HTTP/1.1 ") < 2 and time.monotonic() < deadline:
            out, closed = read_reply(x, 0.5)
            got += out
            if closed:
                break
        check_eq(got.count(b"HTTP/1.1 200 "), 2,
                 "two pipelined requests answered: %r" % got[:400])
    finally:
        x.close()
    chunked = (b"POST /v1/accounts HTTP/1.1\r\nHost: t\r\n" + a +
               b"Content-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" +
               b"%x\r\n" % len(one.replace(b'"7"', b'"8"')) +
               one.replace(b'"7"', b'"8"') + b"\r\n0\r\n\r\n" +
               b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    raw, closed = exchange(s.port, chunked)
    r = parse_raw_response(raw)
    check(r is not None and r.status == 200, "chunked upload: %r" % raw[:300])
    check_eq(r.header("connection"), "close", "Connection after chunked")
    check(closed and raw.count(b"HTTP/1.1 ") == 1,
          "nothing after the chunked body was served: %r" % raw[:500])
    check_eq(s.get("/v1/accounts/8").status, 200, "account 8")


@e2e_test(timeout=60)
def test_witness_refuses_ambiguous_framing_with_400_and_closes(ctx):
    # The witness reads request heads as strictly as the server (finding
    # 8's reading, through finding 9's machinery).
    from test_witness import Witness
    srv = ctx.start_server()
    key = srv.get("/v1/audit/key")
    check_eq(key.status, 200, "GET /v1/audit/key")
    srv.stop()
    w = Witness(ctx, ctx.path("witness"), "witness.example/w1",
                [key.body.decode().strip()]).start()
    try:
        cases = {
            "bare LF": b"GET /add-checkpoint HTTP/1.1\nHost: t\n\n",
            "folded": b"GET /add-checkpoint HTTP/1.1\r\nHost: t\r\nX-A: a"
                      b"\r\n b\r\n\r\n",
            "NUL": b"GET /add-checkpoint HTTP/1.1\r\nHost: t\x00x\r\n\r\n",
            "two lengths": b"POST /add-checkpoint HTTP/1.1\r\nHost: t\r\n"
                           b"Content-Length: 1\r\nContent-Length: 2\r\n"
                           b"\r\nxx",
        }
        refused_with_one_400(w.port, cases, refusal=is_witness_bad_framing)
    finally:
        w.stop()


@e2e_test(timeout=60)
def test_witness_refuses_an_open_state_dir_and_a_long_body_up_front(ctx):
    # The fresh review after the fixes: a state directory of mode 0777
    # was accepted (any local user could replace what it cosigned), and a
    # Content-Length over 64 KiB got "100 Continue", then 408 five
    # seconds later, instead of 413 at once.
    from test_witness import Witness
    srv = ctx.start_server()
    key = srv.get("/v1/audit/key")
    check_eq(key.status, 200, "GET /v1/audit/key")
    srv.stop()
    state = ctx.path("witness")
    os.mkdir(state)
    os.chmod(state, 0o777)
    p = run_cli(["witness", "--listen", "127.0.0.1:%d" % free_port(),
                 "--state", state, "--name", "witness.example/w1",
                 "--log", key.body.decode().strip()], timeout=10)
    check_eq(p.returncode, 65, "witness with a 0777 state: %s" % p.stderr)
    check(("%s is mode 0777" % state) in p.stderr and
          ("chmod 700 %s" % state) in p.stderr, "names it: %s" % p.stderr)
    os.chmod(state, 0o700)
    w = Witness(ctx, state, "witness.example/w1",
                [key.body.decode().strip()]).start()
    try:
        t0 = time.monotonic()
        raw, closed = exchange(
            w.port, b"POST /add-checkpoint HTTP/1.1\r\nHost: t\r\n"
            b"Expect: 100-continue\r\nContent-Length: 70000\r\n\r\n")
        r = parse_raw_response(raw)
        check(r is not None and r.status == 413 and closed and
              b"100 Continue" not in raw and
              time.monotonic() - t0 < 2 * slow_factor(),
              "a long body declared: %r" % raw[:200])
    finally:
        w.stop()


@e2e_test(timeout=60)
def test_an_open_file_limit_below_connections_max_is_raised_or_said(ctx):
    # The fresh review: under an open-file limit of 128 the server
    # stopped accepting at 115 connections, and nothing said why.
    from harness import CONFIG
    import subprocess
    log = ctx.path("nofile.log")
    port = free_port()
    with open(log, "wb") as f:
        p = subprocess.Popen(
            ["prlimit", "--nofile=128:128", CONFIG["binary"], "serve",
             "--data", ctx.path("nofile"), "--listen",
             "127.0.0.1:%d" % port], stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10 * slow_factor()
        text = ""
        while time.monotonic() < deadline and "open-file" not in text:
            time.sleep(0.1)
            with open(log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        check("the open-file limit is below connections_max" in text,
              "no warning under a limit of 128: %s" % text[-800:])
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
