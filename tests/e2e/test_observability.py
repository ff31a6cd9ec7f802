"""test_observability.py - /metrics, /healthz, /readyz, request ids,
traceparent, structured logs."""

import json
import re

from harness import e2e_test, check, check_eq
from ledger import account, transfer, create, create_one

# name{labels} value [timestamp]
SAMPLE_RX = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*,?)?\})?'
    r' ([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf))'
    r'( -?[0-9]+)?$')
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """[(name, {labels}, value)], types {name: type}; fails on a bad line."""
    samples, types, bad = [], {}, []
    for n, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$",
                         line)
            if line.startswith("# TYPE") or line.startswith("# HELP"):
                if not m:
                    bad.append((n, line))
                elif m.group(1) == "TYPE":
                    check(m.group(3) in ("counter", "gauge", "histogram",
                                         "summary", "untyped"),
                          "line %d: bad TYPE %r" % (n, line))
                    types[m.group(2)] = m.group(3)
            continue
        m = SAMPLE_RX.match(line)
        if not m:
            bad.append((n, line))
            continue
        labels = dict(LABEL_RX.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    check(not bad, "lines that are not Prometheus text: %r" % bad[:5])
    return samples, types


def _values(samples, name, **want):
    return [(l, v) for n, l, v in samples
            if n == name and all(l.get(k) == x for k, x in want.items())]


def _check_histogram(samples, types, base):
    check_eq(types.get(base), "histogram", "# TYPE of %s" % base)
    buckets = [(l, v) for n, l, v in samples if n == base + "_bucket"]
    check(buckets, "%s has no buckets" % base)
    counts = [(l, v) for n, l, v in samples if n == base + "_count"]
    check(counts and any(v > 0 for _, v in counts),
          "%s_count is missing or zero: %r" % (base, counts))
    check(any(n == base + "_sum" for n, _, _ in samples),
          "%s_sum missing" % base)
    # Per series (labels without le): cumulative buckets, +Inf == _count.
    series = {}
    for l, v in buckets:
        key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
        series.setdefault(key, []).append((l.get("le"), v))
    for key, bs in series.items():
        check(any(le == "+Inf" for le, _ in bs),
              "%s%r has no le=\"+Inf\" bucket" % (base, key))
        finite = sorted((float(le), v) for le, v in bs if le != "+Inf")
        vals = [v for _, v in finite] + [v for le, v in bs if le == "+Inf"]
        check(vals == sorted(vals), "%s%r buckets not cumulative: %r"
              % (base, key, bs))
        cnt = [v for l, v in counts
               if tuple(sorted(l.items())) == key]
        inf = [v for le, v in bs if le == "+Inf"][0]
        check(cnt == [inf], "%s%r: _count %r != +Inf bucket %r"
              % (base, key, cnt, inf))


@e2e_test(timeout=60)
def test_metrics_is_prometheus_text_with_request_and_fsync_figures(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)], ["created"] * 2)
    for i in range(5):
        create_one(s, "transfers", transfer(10 + i, 1, 2, 1), "created", 201)
    create_one(s, "transfers", transfer(10, 1, 2, 2),
               "exists_with_different_amount", 409)
    s.get("/v1/accounts/1")
    s.get("/v1/accounts/999")
    s.get("/nowhere")
    r = s.get("/metrics")
    check_eq(r.status, 200, "GET /metrics")
    ct = (r.header("content-type") or "").lower()
    check(ct.startswith("text/plain"), "/metrics Content-Type %r" % ct)
    samples, types = parse_prometheus(r.body.decode("utf-8"))

    reqs = _values(samples, "tpwallet_http_requests_total")
    check(reqs, "tpwallet_http_requests_total missing")
    check_eq(types.get("tpwallet_http_requests_total"), "counter",
             "# TYPE tpwallet_http_requests_total")
    check(sum(v for _, v in reqs) >= 10,
          "tpwallet_http_requests_total sums to %r after >= 10 requests"
          % sum(v for _, v in reqs))
    labels = set()
    for l, _ in reqs:
        labels.update(l)
    check("status" in labels or "code" in labels,
          "tpwallet_http_requests_total has no status label: %r" % labels)
    statuses = set(l.get("status", l.get("code")) for l, _ in reqs)
    for st in ("201", "404", "409"):
        check(st in statuses, "no tpwallet_http_requests_total series for "
              "status %s: %r" % (st, sorted(statuses)))

    _check_histogram(samples, types, "tpwallet_http_request_duration_seconds")
    _check_histogram(samples, types, "tpwallet_fsync_duration_seconds")
    _check_histogram(samples, types, "tpwallet_batch_events")

    res = _values(samples, "tpwallet_results_total")
    check(res, "tpwallet_results_total missing")
    by = {}
    for l, v in res:
        for k in ("result", "status", "code"):
            if k in l:
                by[l[k]] = by.get(l[k], 0) + v
    check(by.get("created", by.get("ok", 0)) >= 7,
          "tpwallet_results_total created: %r" % by)
    check(by.get("exists_with_different_amount", 0) >= 1,
          "tpwallet_results_total exists_with_different_amount: %r" % by)

    jb = _values(samples, "tpwallet_journal_bytes")
    check(jb and jb[0][1] > 0, "tpwallet_journal_bytes: %r" % jb)
    s.stop()


@e2e_test(timeout=60)
def test_every_response_has_a_request_id_and_traceparent_is_logged(ctx):
    s = ctx.start_server()
    ids = set()
    for method, path in (("GET", "/healthz"), ("GET", "/readyz"),
                         ("GET", "/metrics"), ("GET", "/v1/accounts/1"),
                         ("GET", "/nope"), ("DELETE", "/v1/accounts")):
        r = s.request(method, path)
        rid = r.header("x-request-id")
        check(rid, "%s %s (%d): no X-Request-Id" % (method, path, r.status))
        ids.add(rid)
    check_eq(len(ids), 6, "distinct request ids over 6 requests")
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    tp = "00-%s-00f067aa0ba902b7-01" % trace
    r = s.request("POST", "/v1/accounts", body=json.dumps(account(5)),
                  headers={"Content-Type": "application/json",
                           "traceparent": tp})
    check_eq(r.status, 201, "POST with traceparent: %r" % r)
    check(s.wait_log(trace, timeout=3) is not None,
          "trace id %s from traceparent not in the server log" % trace)
    # A malformed traceparent is ignored, not an error.
    r = s.request("POST", "/v1/accounts", body=json.dumps(account(6)),
                  headers={"Content-Type": "application/json",
                           "traceparent": "garbage"})
    check_eq(r.status, 201, "POST with a malformed traceparent: %r" % r)
    s.stop()
    # Every log line is a JSON object (the harness' own marker lines start
    # with "--- harness").
    bad = []
    for line in s.log_text().splitlines():
        if not line.strip() or line.startswith("--- harness"):
            continue
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict):
                bad.append(line)
        except ValueError:
            bad.append(line)
    check(not bad, "log lines that are not JSON objects: %r" % bad[:5])


@e2e_test(timeout=60)
def test_health_and_ready_answer_200_and_sigterm_exits_0(ctx):
    s = ctx.start_server()
    for p in ("/healthz", "/readyz"):
        r = s.get(p)
        check_eq(r.status, 200, "GET %s" % p)
    rc = s.stop()
    check_eq(rc, 0, "exit status after SIGTERM")
