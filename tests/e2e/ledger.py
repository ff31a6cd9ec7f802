"""ledger.py - JSON shapes of the tpwallet HTTP API and helpers on them.

Wire format (docs/api.md): 128- and 64-bit values are decimal strings,
32- and 16-bit values JSON integers, flags an array of names.
"""

from harness import check, check_eq, TestFailure

U128_MAX = (1 << 128) - 1

ACCOUNT_FIELDS = ("id", "debits_pending", "debits_posted", "credits_pending",
                  "credits_posted", "user_data_128", "user_data_64",
                  "user_data_32", "ledger", "code", "flags", "timestamp")
TRANSFER_FIELDS = ("id", "debit_account_id", "credit_account_id", "amount",
                   "pending_id", "user_data_128", "user_data_64",
                   "user_data_32", "timeout", "ledger", "code", "flags",
                   "timestamp")
ACCOUNT_STRINGS = ("id", "debits_pending", "debits_posted", "credits_pending",
                   "credits_posted", "user_data_128", "user_data_64",
                   "timestamp")
ACCOUNT_INTS = ("user_data_32", "ledger", "code")
TRANSFER_STRINGS = ("id", "debit_account_id", "credit_account_id", "amount",
                    "pending_id", "user_data_128", "user_data_64",
                    "timestamp")
TRANSFER_INTS = ("user_data_32", "timeout", "ledger", "code")


def account(id, ledger=1, code=10, flags=(), **kw):
    a = {"id": str(id), "ledger": ledger, "code": code, "flags": list(flags)}
    a.update(kw)
    return a


def transfer(id, debit, credit, amount, ledger=1, code=1, flags=(), **kw):
    t = {"id": str(id), "debit_account_id": str(debit),
         "credit_account_id": str(credit), "amount": str(amount),
         "ledger": ledger, "code": code, "flags": list(flags)}
    t.update(kw)
    return t


def check_decimal(v, what):
    check(isinstance(v, str) and v.isdigit() and int(v) <= U128_MAX,
          "%s: expected a decimal string, got %r" % (what, v))


def check_account_shape(a, what="account"):
    check(isinstance(a, dict), "%s is not an object: %r" % (what, a))
    for f in ACCOUNT_FIELDS:
        check(f in a, "%s lacks field %r: %r" % (what, f, a))
    for f in ACCOUNT_STRINGS:
        check_decimal(a[f], "%s.%s" % (what, f))
    for f in ACCOUNT_INTS:
        check(isinstance(a[f], int) and not isinstance(a[f], bool),
              "%s.%s: expected a JSON integer, got %r" % (what, f, a[f]))
    check(isinstance(a["flags"], list) and
          all(isinstance(x, str) for x in a["flags"]),
          "%s.flags: expected an array of names, got %r" % (what, a["flags"]))


def check_transfer_shape(t, what="transfer"):
    check(isinstance(t, dict), "%s is not an object: %r" % (what, t))
    for f in TRANSFER_FIELDS:
        check(f in t, "%s lacks field %r: %r" % (what, f, t))
    for f in TRANSFER_STRINGS:
        check_decimal(t[f], "%s.%s" % (what, f))
    for f in TRANSFER_INTS:
        check(isinstance(t[f], int) and not isinstance(t[f], bool),
              "%s.%s: expected a JSON integer, got %r" % (what, f, t[f]))
    check(isinstance(t["flags"], list),
          "%s.flags: expected an array, got %r" % (what, t["flags"]))


def check_json_content_type(r, problem=False):
    ct = (r.header("content-type") or "").split(";")[0].strip().lower()
    want = "application/problem+json" if problem else "application/json"
    check_eq(ct, want, "Content-Type of %r" % (r,))


def check_request_id(r):
    rid = r.header("x-request-id")
    check(rid is not None and rid.strip() != "",
          "response has no X-Request-Id header: %r" % (r,))


def create(srv, kind, events, expect=None):
    """POST an array of events to /v1/<kind>; check it is 200 with one
    result per event, and (if expect is given) the statuses.  Returns the
    list of statuses."""
    r = srv.post("/v1/" + kind, list(events))
    check(r.status == 200, "POST /v1/%s (array of %d): expected 200, got %r"
          % (kind, len(events), r))
    check_json_content_type(r)
    check_request_id(r)
    res = r.json()
    check(isinstance(res, list) and len(res) == len(events),
          "POST /v1/%s: expected %d results, got %r" % (kind, len(events),
                                                       res))
    statuses = []
    for i, x in enumerate(res):
        check(isinstance(x, dict), "result %d not an object: %r" % (i, x))
        check_eq(x.get("index"), i, "result %d index" % i)
        st = x.get("status")
        statuses.append(st)
        if st in ("created", "exists"):
            check_decimal(x.get("timestamp"), "result %d timestamp" % i)
            check(int(x["timestamp"]) > 0, "result %d timestamp is 0" % i)
        else:
            check("timestamp" not in x or x["timestamp"] in (None, "0"),
                  "result %d (%s) carries a timestamp: %r" % (i, st, x))
    if expect is not None:
        check_eq(statuses, list(expect), "POST /v1/%s statuses" % kind)
    return statuses


def create_one(srv, kind, event, expect_status, expect_http):
    """POST a single object; check the HTTP status and result status."""
    r = srv.post("/v1/" + kind, event)
    check(r.status == expect_http,
          "POST /v1/%s %r: expected HTTP %d (%s), got %r"
          % (kind, event, expect_http, expect_status, r))
    check_json_content_type(r)
    res = r.json()
    check(isinstance(res, dict), "single reply is not an object: %r" % res)
    check_eq(res.get("status"), expect_status,
             "POST /v1/%s %s status" % (kind, event.get("id")))
    return res


def get_account(srv, id):
    r = srv.get("/v1/accounts/%s" % id)
    check(r.status == 200, "GET /v1/accounts/%s: expected 200, got %r"
          % (id, r))
    check_json_content_type(r)
    a = r.json()
    check_account_shape(a, "account %s" % id)
    check_eq(a["id"], str(id), "GET /v1/accounts/%s id" % id)
    return a


def get_transfer(srv, id, missing_ok=False):
    r = srv.get("/v1/transfers/%s" % id)
    if missing_ok and r.status == 404:
        return None
    check(r.status == 200, "GET /v1/transfers/%s: expected 200, got %r"
          % (id, r))
    t = r.json()
    check_transfer_shape(t, "transfer %s" % id)
    check_eq(t["id"], str(id), "GET /v1/transfers/%s id" % id)
    return t


def balances(srv, id):
    """(debits_pending, debits_posted, credits_pending, credits_posted)."""
    a = get_account(srv, id)
    return (int(a["debits_pending"]), int(a["debits_posted"]),
            int(a["credits_pending"]), int(a["credits_posted"]))


def check_balances(srv, id, dp=0, dpo=0, cp=0, cpo=0):
    got = balances(srv, id)
    want = (dp, dpo, cp, cpo)
    if got != want:
        raise TestFailure(
            "account %s balances (debits_pending, debits_posted, "
            "credits_pending, credits_posted): expected %r, got %r"
            % (id, want, got))


def account_transfers_all(srv, id, limit=8190, page_max=1000):
    """Every transfer of an account, paging ascending by timestamp_min."""
    out = []
    ts_min = 0
    for _ in range(page_max):
        q = "/v1/accounts/%s/transfers?limit=%d&order=asc" % (id, limit)
        if ts_min:
            q += "&timestamp_min=%d" % ts_min
        r = srv.get(q)
        check(r.status == 200, "GET %s: expected 200, got %r" % (q, r))
        page = r.json()
        check(isinstance(page, list), "GET %s: not an array" % q)
        out.extend(page)
        if len(page) < limit:
            return out
        ts_min = int(page[-1]["timestamp"]) + 1
    raise TestFailure("account %s: more than %d pages of transfers"
                      % (id, page_max))
