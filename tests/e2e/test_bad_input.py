"""test_bad_input.py - bad requests get a clear 4xx problem+json, change
nothing, and never take the server down; slow clients are cut off."""

import json
import random
import socket
import threading
import time

from harness import (e2e_test, check, check_eq, slow_factor, scaled,
                     raw_exchange, parse_raw_response, TestFailure)
from ledger import (account, transfer, create, balances, check_request_id,
                    check_json_content_type, U128_MAX)

ACCOUNTS = (1, 2, 3)


def _setup(s):
    create(s, "accounts", [account(i) for i in ACCOUNTS], ["created"] * 3)
    create(s, "transfers", [transfer(1, 1, 2, 10), transfer(2, 2, 3, 4)],
           ["created"] * 2)


def _snapshot(s):
    return {i: balances(s, i) for i in ACCOUNTS}


def check_problem(r, status, slug, what):
    """r is a problem+json reply with this HTTP status and type."""
    check(r.status == status, "%s: expected HTTP %d, got %r"
          % (what, status, r))
    check_request_id(r)
    check_json_content_type(r, problem=True)
    doc = r.json()
    check(isinstance(doc, dict), "%s: problem is not an object" % what)
    for f in ("type", "title", "status", "instance"):
        check(f in doc, "%s: problem lacks %r: %r" % (what, f, doc))
    check_eq(doc["status"], status, "%s: problem.status" % what)
    check_eq(doc["type"], "/problems/" + slug, "%s: problem.type" % what)
    check(isinstance(doc["title"], str) and doc["title"],
          "%s: empty title" % what)
    return doc


def _t(**over):
    t = transfer(500, 1, 2, 1)
    t.update(over)
    return t


# (what, method, path, body bytes or object, headers, status, slug)
def _cases():
    J = {"Content-Type": "application/json"}
    cases = [
        ("malformed JSON", "POST", "/v1/transfers", b'{"id": "5", ', J,
         400, "invalid-json"),
        ("trailing garbage after JSON", "POST", "/v1/transfers",
         json.dumps(_t()).encode() + b" xyz", J, 400, "invalid-json"),
        ("amount as a JSON number", "POST", "/v1/transfers",
         _t(amount=1), J, 400, "invalid-field"),
        ("id as a JSON number", "POST", "/v1/transfers", _t(id=500), J, 400,
         "invalid-field"),
        ("ledger as a string", "POST", "/v1/transfers", _t(ledger="1"), J,
         400, "invalid-field"),
        ("code above u16", "POST", "/v1/transfers", _t(code=65536), J, 400,
         "invalid-field"),
        ("negative timeout", "POST", "/v1/transfers", _t(timeout=-1), J, 400,
         "invalid-field"),
        ("amount not decimal", "POST", "/v1/transfers", _t(amount="0x10"), J,
         400, "invalid-field"),
        ("negative amount", "POST", "/v1/transfers", _t(amount="-1"), J, 400,
         "invalid-field"),
        ("amount 2^128 (overflows u128)", "POST", "/v1/transfers",
         _t(amount=str(U128_MAX + 1)), J, 400, "invalid-field"),
        ("amount null", "POST", "/v1/transfers", _t(amount=None), J, 400,
         "invalid-field"),
        ("amount empty string", "POST", "/v1/transfers", _t(amount=""), J,
         400, "invalid-field"),
        ("amount with a plus sign", "POST", "/v1/transfers", _t(amount="+5"),
         J, 400, "invalid-field"),
        ("amount with a decimal point", "POST", "/v1/transfers",
         _t(amount="1.0"), J, 400, "invalid-field"),
        ("amount with spaces", "POST", "/v1/transfers", _t(amount=" 5"), J,
         400, "invalid-field"),
        ("ledger true", "POST", "/v1/transfers", _t(ledger=True), J, 400,
         "invalid-field"),
        ("ledger 1.5", "POST", "/v1/transfers", _t(ledger=1.5), J, 400,
         "invalid-field"),
        ("user_data_32 2^32", "POST", "/v1/transfers",
         _t(user_data_32=1 << 32), J, 400, "invalid-field"),
        ("user_data_64 2^64", "POST", "/v1/transfers",
         _t(user_data_64=str(1 << 64)), J, 400, "invalid-field"),
        ("unknown field", "POST", "/v1/transfers", _t(colour="red"), J, 400,
         "unknown-field"),
        ("unknown flag", "POST", "/v1/transfers", _t(flags=["fast"]), J, 400,
         "invalid-flag"),
        ("account flag on a transfer", "POST", "/v1/transfers",
         _t(flags=["history"]), J, 400, "invalid-flag"),
        ("flags not an array", "POST", "/v1/transfers", _t(flags="pending"),
         J, 400, "invalid-field"),
        ("unknown account flag", "POST", "/v1/accounts",
         account(9, flags=["pending"]), J, 400, "invalid-flag"),
        ("body is a string", "POST", "/v1/transfers", b'"hello"', J, 400,
         "invalid-body"),
        ("array of non-objects", "POST", "/v1/transfers", b"[1,2]", J, 400,
         "invalid-body"),
        ("empty array", "POST", "/v1/transfers", b"[]", J, 400,
         "empty-batch"),
        ("empty body", "POST", "/v1/transfers", b"", J, 400,
         "invalid-json"),
        ("8191 events", "POST", "/v1/transfers",
         [transfer(10000 + i, 1, 2, 1) for i in range(8191)], J, 413,
         "batch-too-large"),
        ("nesting depth 6", "POST", "/v1/transfers",
         b'[{"id": "5", "user_data_128": [[[[["1"]]]]]}]', J, 400,
         "nesting-too-deep"),
        ("nesting depth 1000", "POST", "/v1/transfers",
         b"[" * 1000 + b"]" * 1000, J, 400, "nesting-too-deep"),
        ("invalid UTF-8 in a string", "POST", "/v1/transfers",
         b'{"id": "5\xff\xfe", "amount": "1"}', J, 400, "invalid-json"),
        ("overlong UTF-8 encoding", "POST", "/v1/transfers",
         b'{"id": "\xc0\xaf", "amount": "1"}', J, 400, "invalid-json"),
        ("Content-Type text/plain", "POST", "/v1/transfers",
         json.dumps(_t()).encode(), {"Content-Type": "text/plain"}, 415,
         "unsupported-media-type"),
        ("no Content-Type", "POST", "/v1/transfers",
         json.dumps(_t()).encode(), {}, 415, "unsupported-media-type"),
        ("unknown route", "GET", "/v1/nothing-here", None, {}, 404,
         "not-found"),
        ("unknown route (POST)", "POST", "/v2/transfers", _t(), J, 404,
         "not-found"),
        ("malformed account id", "GET", "/v1/accounts/abc", None, {}, 400,
         "invalid-id"),
        ("account id 2^128", "GET", "/v1/accounts/%d" % (U128_MAX + 1),
         None, {}, 400, "invalid-id"),
        ("negative transfer id", "GET", "/v1/transfers/-1", None, {}, 400,
         "invalid-id"),
        ("absent account", "GET", "/v1/accounts/4242", None, {}, 404,
         "account-not-found"),
        ("absent transfer", "GET", "/v1/transfers/4242", None, {}, 404,
         "transfer-not-found"),
        ("limit=0", "GET", "/v1/accounts/1/transfers?limit=0", None, {}, 400,
         "invalid-query"),
        ("limit=8191", "GET", "/v1/accounts/1/transfers?limit=8191", None,
         {}, 400, "invalid-query"),
        ("limit=abc", "GET", "/v1/accounts/1/balances?limit=abc", None, {},
         400, "invalid-query"),
        ("order=sideways", "GET", "/v1/accounts/1/transfers?order=sideways",
         None, {}, 400, "invalid-query"),
        ("direction=up", "GET", "/v1/accounts/1/transfers?direction=up",
         None, {}, 400, "invalid-query"),
        ("timestamp_min not a number", "GET",
         "/v1/accounts/1/transfers?timestamp_min=yesterday", None, {}, 400,
         "invalid-query"),
        ("unknown query parameter", "GET",
         "/v1/accounts/1/transfers?colour=red", None, {}, 400,
         "invalid-query"),
    ]
    return cases


def _send(s, method, path, body, headers):
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body).encode()
    return s.request(method, path, body=body, headers=headers)


@e2e_test(timeout=90)
def test_each_bad_request_gets_its_problem_and_changes_nothing(ctx):
    s = ctx.start_server()
    _setup(s)
    before = _snapshot(s)
    errors = []
    types = {}
    for what, method, path, body, headers, status, slug in _cases():
        try:
            r = _send(s, method, path, body, headers)
            doc = check_problem(r, status, slug, what)
            # Stable: the same request gives the same type again.
            r2 = _send(s, method, path, body, headers)
            check_eq(r2.json().get("type"), doc["type"],
                     "%s: type on a second try" % what)
            types[what] = doc["type"]
        except TestFailure as e:
            errors.append(str(e))
        except OSError as e:
            errors.append("%s: connection error %r" % (what, e))
            s.client.close()
    check(s.alive(), "server died during the bad requests")
    after = _snapshot(s)
    check_eq(after, before, "balances after the bad requests")
    r = s.get("/v1/transfers/500")
    check_eq(r.status, 404, "a transfer from a bad request exists: %r" % r)
    r = s.get("/healthz")
    check_eq(r.status, 200, "GET /healthz after the bad requests")
    if errors:
        raise TestFailure("%d of %d bad requests mishandled:\n  %s"
                          % (len(errors), len(_cases()),
                             "\n  ".join(errors)))
    s.stop()


@e2e_test(timeout=60)
def test_wrong_method_is_405_with_allow(ctx):
    s = ctx.start_server()
    _setup(s)
    for method, path, must_allow in (
            ("DELETE", "/v1/accounts", "POST"),
            ("GET", "/v1/transfers", "POST"),
            ("PUT", "/v1/accounts/1", "GET"),
            ("POST", "/v1/transfers/1", "GET"),
            ("POST", "/healthz", "GET"),
            ("PATCH", "/v1/accounts/1/transfers", "GET")):
        r = s.request(method, path, body=b"{}" if method != "GET" else None,
                      headers={"Content-Type": "application/json"})
        check_problem(r, 405, "method-not-allowed", "%s %s" % (method, path))
        allow = r.header("allow") or ""
        check(must_allow in [x.strip() for x in allow.split(",")],
              "%s %s: Allow header %r lacks %s" % (method, path, allow,
                                                  must_allow))
    check_eq(_snapshot(s), {1: (0, 10, 0, 0), 2: (0, 4, 0, 10),
                            3: (0, 0, 0, 4)}, "balances")
    s.stop()


@e2e_test(timeout=60)
def test_batch_of_exactly_8190_events_is_accepted(ctx):
    s = ctx.start_server()
    _setup(s)
    n = 8190
    st = create(s, "transfers", [transfer(100000 + i, 1, 3, 1)
                                 for i in range(n)])
    check_eq(set(st), {"created"}, "statuses of an 8190-event batch")
    check_eq(balances(s, 1), (0, 10 + n, 0, 0), "account 1 after the batch")
    s.stop()


@e2e_test(timeout=60)
def test_content_type_with_charset_is_accepted(ctx):
    s = ctx.start_server()
    _setup(s)
    r = s.request("POST", "/v1/transfers",
                  body=json.dumps(transfer(9, 1, 2, 1)).encode(),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    check_eq(r.status, 201, "application/json; charset=utf-8: %r" % r)
    s.stop()


def _send_body_while_reading(port, head, body, timeout):
    """Send head+body from a thread while reading the reply here, so a
    reply sent before the body is consumed is not lost to a reset."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    stop = threading.Event()

    def writer():
        try:
            sock.sendall(head)
            view = memoryview(body)
            for off in range(0, len(view), 1 << 16):
                if stop.is_set():
                    return
                sock.sendall(view[off:off + (1 << 16)])
        except OSError:
            pass

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            out += chunk
            r = parse_raw_response(out)
            if r is not None:
                cl = r.header("content-length")
                if cl is not None and len(r.body) >= int(cl):
                    break
    finally:
        stop.set()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        th.join(timeout=5)
    return parse_raw_response(out), out


@e2e_test(timeout=90)
def test_body_over_8_mib_is_413_and_server_keeps_serving(ctx):
    s = ctx.start_server()
    _setup(s)
    before = _snapshot(s)
    # A syntactically valid batch just over 8 MiB: padded user data would
    # not fit, so pad with whitespace between events.
    size = 8 * 1024 * 1024 + 4096
    ev = json.dumps(transfer(700, 1, 2, 1)).encode()
    body = b"[" + ev + b" " * (size - len(ev) - 2) + b"]"
    head = (b"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + s.auth_header_bytes() +
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    r, raw = _send_body_while_reading(s.port, head, body,
                                      timeout=20 * slow_factor())
    check(r is not None, "no HTTP reply to an over-size body: %r" % raw[:200])
    check_problem(r, 413, "body-too-large", "8 MiB + 4 KiB body")
    # Chunked transfer encoding must hit the same limit.
    chunk = b" " * (1 << 20)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                       for _ in range(9)) + b"0\r\n\r\n"
    head = (b"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + s.auth_header_bytes() +
            b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    r, raw = _send_body_while_reading(s.port, head, chunked,
                                      timeout=20 * slow_factor())
    check(r is not None, "no HTTP reply to an over-size chunked body: %r"
          % raw[:200])
    check_problem(r, 413, "body-too-large", "9 MiB chunked body")
    check(s.alive(), "server died")
    check_eq(_snapshot(s), before, "balances after over-size bodies")
    check_eq(s.get("/healthz").status, 200, "healthz after over-size bodies")
    s.stop()


@e2e_test(timeout=60)
def test_stalled_half_requests_are_disconnected_after_the_timeout(ctx):
    timeout_s = 2
    s = ctx.start_server(env={"TPWALLET_CONNECTION_TIMEOUT_S":
                              str(timeout_s)})
    _setup(s)
    auth = s.auth_header_bytes()  # so only the stall can end these
    stalls = {
        "idle connection": b"",
        "half a request line": b"POST /v1/tran",
        "half the headers": b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\n"
                            + auth +
                            b"Content-Type: application/json\r\n",
        "half the body": b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\n"
                         + auth +
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"id\": \"9",
    }
    socks = {}
    t0 = time.monotonic()
    limit = timeout_s + 6 * slow_factor()
    try:
        for what, data in stalls.items():
            c = socket.create_connection(("127.0.0.1", s.port), timeout=2)
            if data:
                c.sendall(data)
            c.settimeout(0.2)
            socks[what] = c
        closed = {}
        replies = {}
        while len(closed) < len(socks) and time.monotonic() - t0 < limit:
            for what, c in socks.items():
                if what in closed:
                    continue
                try:
                    d = c.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    d = b""
                if not d:
                    closed[what] = time.monotonic() - t0
                else:
                    replies[what] = replies.get(what, b"") + d
            # Meanwhile the server keeps answering others.
            check_eq(s.get("/healthz").status, 200,
                     "healthz while connections stall")
            time.sleep(0.1)
    finally:
        for c in socks.values():
            c.close()
    missing = [w for w in stalls if w not in closed]
    check(not missing, "still open %.1fs after a %ds connection timeout: %s"
          % (limit, timeout_s, ", ".join(missing)))
    # Nothing arrives for connection_timeout_s (2 s), which comes before
    # the head's and the body's own deadlines (10 s, 60 s): libmicrohttpd
    # closes each of them without a reply (docs/operations.md,
    # "Connections and slow clients"); a 408 would mean another deadline
    # fired first.
    check(not replies, "a stalled connection got a reply: %r" % replies)
    # libmicrohttpd may count the timeout in whole seconds, so a close
    # up to ~1 s early is within its contract; "at once" is not.
    early = {w: round(t, 2) for w, t in closed.items()
             if t < timeout_s - 1.1}
    check(not early, "closed well before the %ds timeout: %r"
          % (timeout_s, early))
    check(s.alive(), "server died")
    s.stop()


def _garbage(rng, i, auth=b""):
    """auth: the Authorization header line sent with the /v1 requests, so
    their garbage reaches the parsers instead of stopping at a 401."""
    kind = i % 8
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600)))
    if kind == 1:
        return b"GET /" + bytes(rng.getrandbits(8) for _ in range(200)) + \
            b" HTTP/1.1\r\n\r\n"
    if kind == 2:
        return (b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\n" + auth +
                b"Content-Type: application/json\r\nContent-Length: 40\r\n"
                b"\r\n" + bytes(rng.getrandbits(8) for _ in range(40)))
    if kind == 3:
        return (b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\n" + auth +
                b"Content-Length: -5\r\n\r\n")
    if kind == 4:
        return (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                + b"A" * rng.randint(1000, 100000) + b"\r\n\r\n")
    if kind == 5:
        body = json.dumps([{"id": str(rng.getrandbits(130)),
                            "amount": rng.choice([1, "1", None, [], {}]),
                            "flags": rng.choice([[], ["linked"], "x", [1]])}
                           ]).encode()
        return (b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\n" + auth +
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
    if kind == 6:
        return (b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\n" + auth +
                b"Content-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
                + bytes(rng.getrandbits(8) for _ in range(50)))
    return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + \
        bytes(rng.getrandbits(8) for _ in range(100))  # a TLS ClientHello


@e2e_test(timeout=120)
def test_flood_of_200_garbage_requests_does_not_kill_the_server(ctx):
    # The connection timeout set through the config file this time.
    conf = ctx.path("tpwallet.conf")
    with open(conf, "w") as f:
        f.write("# e2e flood\nconnection_timeout_s = 2\n")
    s = ctx.start_server(args=["--config", conf])
    _setup(s)
    before = _snapshot(s)
    rng = random.Random(20240607)
    n = 200
    t_end = time.monotonic() + scaled(60, 150)
    auth = s.auth_header_bytes()
    payloads = [_garbage(rng, i, auth) for i in range(n)]
    bad = []
    lock = threading.Lock()
    next_i = [0]

    def worker():
        # Every other request half-closes (EOF after the garbage); the
        # rest leave the connection open and rely on the server's reply,
        # close, or its 2 s connection timeout.
        while time.monotonic() < t_end:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= n:
                return
            try:
                raw = raw_exchange(s.port, payloads[i],
                                   timeout=4 * slow_factor(),
                                   half_close=(i // 8) % 2 == 0)
            except OSError as e:
                with lock:
                    bad.append("request %d: cannot connect: %r" % (i, e))
                continue
            r = parse_raw_response(raw)
            if r is not None and r.status >= 500:
                with lock:
                    bad.append("garbage request %d (kind %d) got %r"
                               % (i, i % 8, r))

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=max(0.1, t_end - time.monotonic()) + 10)
    check(all(not th.is_alive() for th in threads), "flood workers hung")
    check(next_i[0] >= n, "flood did not finish in time (%d of %d sent)"
          % (next_i[0], n))
    check(not bad, "\n  ".join(bad[:10]))
    check(s.alive(), "server died during the flood")
    check_eq(s.get("/healthz").status, 200, "healthz after the flood")
    check_eq(_snapshot(s), before, "balances after the flood")
    s.stop()


@e2e_test(timeout=60)
def test_a_small_body_that_is_not_json_says_why_and_where(ctx):
    """A request body that jansson refuses gets invalid-json naming why
    (a member twice, a number out of range, \\u0000, a cut body, two
    values) and where (line, column: the last character of the token
    the parser stopped at), never the text near it; a JSON
    value that is not an object keeps its own detail (docs/api.md)."""
    s = ctx.start_server()
    c = s.new_client()
    try:
        cases = [
            ('{"platform":"a",\n "platform":"b"}',
             "a member is given twice at line 2, column 11"),
            ('{"duration_s": 99999999999999999999}',
             "a number is out of range (integers: 64 bits) at line 1, "
             "column 35"),
            ('{"reason": "a\\u0000b"}',
             "\\u0000 is not allowed in a string at line 1, column 21"),
            ('{"reason": "SECRET-abc',
             "the body ends inside a JSON value at line 1, column 22"),
            ('{} {}', "more than one JSON value at line 1, column 4"),
            ('nope SECRET', "not JSON at line 1, column 4"),
            ('[]', "the body must be a JSON object"),
        ]
        for body, detail in cases:
            r = c.request("POST", "/v1/client-policy/overrides", body=body,
                          headers={"Content-Type": "application/json"})
            check_eq(r.status, 400, "POST %r" % body)
            doc = r.json()
            check_eq((doc["type"], doc.get("detail")),
                     ("/problems/invalid-json", detail), "POST %r" % body)
            check("SECRET" not in r.body.decode(),
                  "the body's text came back: %r" % doc)
    finally:
        c.close()
