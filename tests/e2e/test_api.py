"""test_api.py - the ledger over HTTP: the newcomer's path and the
TigerBeetle-class semantics (idempotency, linked chains, two-phase
transfers, timeouts, balance constraints, queries)."""

import time

from harness import e2e_test, check, check_eq, slow_factor
from ledger import (account, transfer, create, create_one, get_account,
                    get_transfer, check_balances, check_account_shape,
                    check_transfer_shape, check_json_content_type,
                    check_request_id, check_decimal, U128_MAX)


@e2e_test(timeout=60)
def test_newcomer_creates_two_accounts_and_a_transfer_and_reads_balances(ctx):
    s = ctx.start_server()
    # Exactly the shapes docs/api.md shows a newcomer.
    r = s.post("/v1/accounts", [
        {"id": "1", "ledger": 700, "code": 10, "flags": []},
        {"id": "2", "ledger": 700, "code": 10, "flags": []},
    ])
    check_eq(r.status, 200, "POST /v1/accounts (array) status: %r" % r)
    check_json_content_type(r)
    check_request_id(r)
    res = r.json()
    check_eq([x.get("status") for x in res], ["created", "created"],
             "account results")
    check_eq([x.get("index") for x in res], [0, 1], "account result indexes")
    for x in res:
        check_decimal(x.get("timestamp"), "account result timestamp")

    r = s.post("/v1/transfers", {
        "id": "100", "debit_account_id": "1", "credit_account_id": "2",
        "amount": "250", "ledger": 700, "code": 1, "flags": []})
    check_eq(r.status, 201, "POST /v1/transfers (single) status: %r" % r)
    check_json_content_type(r)
    res = r.json()
    check_eq(res.get("status"), "created", "single transfer result %r" % res)
    check_decimal(res.get("timestamp"), "single transfer result timestamp")
    ts = res["timestamp"]

    a1 = get_account(s, 1)
    a2 = get_account(s, 2)
    check_eq((a1["debits_posted"], a1["credits_posted"],
              a1["debits_pending"], a1["credits_pending"]),
             ("250", "0", "0", "0"), "account 1 balances")
    check_eq((a2["debits_posted"], a2["credits_posted"]), ("0", "250"),
             "account 2 balances")
    check_eq((a1["ledger"], a1["code"], a1["flags"]), (700, 10, []),
             "account 1 ledger/code/flags")

    t = get_transfer(s, 100)
    check_eq((t["debit_account_id"], t["credit_account_id"], t["amount"],
              t["ledger"], t["code"], t["timestamp"]),
             ("1", "2", "250", 700, 1, ts), "transfer 100 as read back")

    r = s.get("/v1/accounts/1/transfers")
    check_eq(r.status, 200, "GET /v1/accounts/1/transfers: %r" % r)
    lst = r.json()
    check(isinstance(lst, list) and len(lst) == 1 and lst[0]["id"] == "100",
          "account 1 transfers: %r" % lst)
    check_transfer_shape(lst[0])

    # A clean restart keeps everything.
    s.stop()
    s.start()
    check_balances(s, 1, dpo=250)
    check_balances(s, 2, cpo=250)
    check_eq(get_transfer(s, 100)["timestamp"], ts,
             "transfer 100 timestamp after restart")
    s.stop()


@e2e_test(timeout=60)
def test_full_width_values_round_trip_as_decimal_strings(ctx):
    s = ctx.start_server()
    big = str(U128_MAX - 1)
    u64max = str((1 << 64) - 1)
    create(s, "accounts", [
        account(big, ledger=4294967295, code=65535, user_data_128=big,
                user_data_64=u64max, user_data_32=4294967295),
        account(7, ledger=4294967295, code=65535)], ["created", "created"])
    a = get_account(s, big)
    check_eq((a["user_data_128"], a["user_data_64"], a["user_data_32"],
              a["ledger"], a["code"]),
             (big, u64max, 4294967295, 4294967295, 65535),
             "full-width account fields")
    amount = str((1 << 127) + 12345)
    create(s, "transfers", [transfer(big, big, 7, amount, ledger=4294967295,
                                     code=65535, user_data_128=big)],
           ["created"])
    t = get_transfer(s, big)
    check_eq((t["amount"], t["user_data_128"]), (amount, big),
             "full-width transfer fields")
    check_eq(get_account(s, 7)["credits_posted"], amount,
             "u128 credits_posted")
    s.stop()


def _two_accounts(s, flags_a=(), flags_b=(), ledger=1):
    create(s, "accounts", [account(1, ledger=ledger, flags=flags_a),
                           account(2, ledger=ledger, flags=flags_b),
                           account(3, ledger=ledger)],
           ["created"] * 3)


@e2e_test(timeout=60)
def test_retry_is_idempotent_and_a_changed_retry_is_refused(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    t = transfer(10, 1, 2, 100)
    first = create_one(s, "transfers", t, "created", 201)
    again = create_one(s, "transfers", t, "exists", 200)
    check_eq(again.get("timestamp"), first.get("timestamp"),
             "exists carries the original timestamp")
    create_one(s, "transfers", transfer(10, 1, 2, 101),
               "exists_with_different_amount", 409)
    create_one(s, "transfers", transfer(10, 1, 3, 100),
               "exists_with_different_credit_account_id", 409)
    # Accounts too.
    create_one(s, "accounts", account(1), "exists", 200)
    create_one(s, "accounts", account(1, code=11),
               "exists_with_different_code", 409)
    # In an array the same id twice: the second is `exists`.
    create(s, "transfers", [transfer(11, 1, 2, 5), transfer(11, 1, 2, 5)],
           ["created", "exists"])
    check_balances(s, 1, dpo=105)
    check_balances(s, 2, cpo=105)
    check_balances(s, 3)
    s.stop()


@e2e_test(timeout=60)
def test_linked_chain_fails_as_one_and_leaves_no_trace(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    st = create(s, "transfers", [
        transfer(20, 1, 2, 10, flags=["linked"]),
        transfer(21, 2, 3, 10, flags=["linked"]),
        transfer(22, 3, 999, 10),  # closes the chain; 999 does not exist
        transfer(23, 1, 3, 7),     # independent: must still apply
    ])
    check_eq(st, ["linked_event_failed", "linked_event_failed",
                  "credit_account_not_found", "created"],
             "statuses of a chain whose last event fails")
    for id in (20, 21, 22):
        check(get_transfer(s, id, missing_ok=True) is None,
              "transfer %d of the failed chain exists" % id)
    check_balances(s, 1, dpo=7)
    check_balances(s, 2)
    check_balances(s, 3, cpo=7)
    # The event that failed on its own (a transient error) has its id
    # remembered; the events that only failed with it do not.
    create_one(s, "transfers", transfer(22, 3, 1, 10), "id_already_failed",
               409)
    create(s, "transfers", [
        transfer(20, 1, 2, 10, flags=["linked"]),
        transfer(21, 2, 3, 10, flags=["linked"]),
        transfer(24, 3, 1, 10),
    ], ["created"] * 3)
    check_balances(s, 1, dpo=17, cpo=10)
    check_balances(s, 2, dpo=10, cpo=10)
    check_balances(s, 3, dpo=10, cpo=17)
    # A chain left open at the end of the batch fails.
    st = create(s, "transfers", [transfer(30, 1, 2, 1, flags=["linked"])])
    check_eq(st, ["linked_event_chain_open"], "open chain")
    s.stop()


@e2e_test(timeout=60)
def test_pending_then_partial_post_moves_only_the_posted_amount(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    create_one(s, "transfers", transfer(40, 1, 2, 100, flags=["pending"]),
               "created", 201)
    check_balances(s, 1, dp=100)
    check_balances(s, 2, cp=100)
    check_eq(get_transfer(s, 40).get("pending_status"), "pending",
             "pending_status before post")
    create_one(s, "transfers",
               transfer(41, 1, 2, 60, pending_id="40",
                        flags=["post_pending_transfer"]), "created", 201)
    check_balances(s, 1, dpo=60)
    check_balances(s, 2, cpo=60)
    check_eq(get_transfer(s, 40).get("pending_status"), "posted",
             "pending_status after post")
    create_one(s, "transfers",
               transfer(42, 1, 2, 40, pending_id="40",
                        flags=["post_pending_transfer"]),
               "pending_transfer_already_posted", 422)
    create_one(s, "transfers",
               transfer(43, 1, 2, 0, pending_id="40",
                        flags=["void_pending_transfer"]),
               "pending_transfer_already_posted", 422)
    check_balances(s, 1, dpo=60)
    check_balances(s, 2, cpo=60)
    # Posting more than was reserved is refused.
    create_one(s, "transfers", transfer(44, 1, 2, 10, flags=["pending"]),
               "created", 201)
    create_one(s, "transfers",
               transfer(45, 1, 2, 11, pending_id="44",
                        flags=["post_pending_transfer"]),
               "exceeds_pending_transfer_amount", 422)
    check_balances(s, 1, dp=10, dpo=60)
    s.stop()


@e2e_test(timeout=60)
def test_pending_then_void_releases_the_reservation(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    create_one(s, "transfers", transfer(50, 1, 2, 70, flags=["pending"]),
               "created", 201)
    create_one(s, "transfers",
               transfer(51, 1, 2, 70, pending_id="50",
                        flags=["void_pending_transfer"]), "created", 201)
    check_balances(s, 1)
    check_balances(s, 2)
    check_eq(get_transfer(s, 50).get("pending_status"), "voided",
             "pending_status after void")
    create_one(s, "transfers",
               transfer(52, 1, 2, 70, pending_id="50",
                        flags=["post_pending_transfer"]),
               "pending_transfer_already_voided", 422)
    create_one(s, "transfers",
               transfer(53, 1, 2, 1, pending_id="999",
                        flags=["post_pending_transfer"]),
               "pending_transfer_not_found", 422)
    s.stop()


@e2e_test(timeout=60)
def test_pending_with_1s_timeout_expires_and_cannot_be_posted(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    create_one(s, "transfers",
               transfer(60, 1, 2, 30, flags=["pending"], timeout=1),
               "created", 201)
    check_balances(s, 1, dp=30)
    t0 = time.monotonic()
    deadline = t0 + 5 * slow_factor()
    status = None
    while time.monotonic() < deadline:
        status = get_transfer(s, 60).get("pending_status")
        if status == "expired":
            break
        time.sleep(0.1)
    waited = time.monotonic() - t0
    check_eq(status, "expired", "pending_status %.1fs after a 1s timeout"
             % waited)
    check_balances(s, 1)
    check_balances(s, 2)
    create_one(s, "transfers",
               transfer(61, 1, 2, 30, pending_id="60",
                        flags=["post_pending_transfer"]),
               "pending_transfer_expired", 422)
    # Expiry is journalled: it survives a restart.
    s.stop()
    s.start()
    check_eq(get_transfer(s, 60).get("pending_status"), "expired",
             "pending_status after restart")
    check_balances(s, 1)
    s.stop()


@e2e_test(timeout=60)
def test_debits_must_not_exceed_credits_refuses_overdraft(ctx):
    s = ctx.start_server()
    _two_accounts(s, flags_a=["debits_must_not_exceed_credits"])
    check_eq(get_account(s, 1)["flags"], ["debits_must_not_exceed_credits"],
             "account 1 flags")
    create_one(s, "transfers", transfer(70, 3, 1, 100), "created", 201)
    create_one(s, "transfers", transfer(71, 1, 2, 150), "exceeds_credits",
               422)
    create_one(s, "transfers", transfer(72, 1, 2, 100), "created", 201)
    create_one(s, "transfers", transfer(73, 1, 2, 1), "exceeds_credits", 422)
    check_balances(s, 1, dpo=100, cpo=100)
    check_balances(s, 2, cpo=100)
    # A failed id is remembered: retrying it is id_already_failed.
    create_one(s, "transfers", transfer(71, 1, 2, 150), "id_already_failed",
               409)
    # A pending reservation counts too.
    create_one(s, "transfers", transfer(74, 3, 1, 50), "created", 201)
    create_one(s, "transfers", transfer(75, 1, 2, 50, flags=["pending"]),
               "created", 201)
    create_one(s, "transfers", transfer(76, 1, 2, 1), "exceeds_credits", 422)
    s.stop()


@e2e_test(timeout=60)
def test_account_transfers_query_honours_limit_order_direction_range(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    # 6 debits of account 1 (to 2) and 4 credits (from 3), interleaved.
    ids = []
    for i in range(10):
        if i % 5 in (1, 3):
            t = transfer(100 + i, 3, 1, i + 1)
        else:
            t = transfer(100 + i, 1, 2, i + 1)
        create_one(s, "transfers", t, "created", 201)
        ids.append(str(100 + i))

    def q(params):
        r = s.get("/v1/accounts/1/transfers" + params)
        check_eq(r.status, 200, "GET /v1/accounts/1/transfers%s: %r"
                 % (params, r))
        lst = r.json()
        check(isinstance(lst, list), "not an array: %r" % lst)
        return lst

    every = q("")
    check_eq([t["id"] for t in every], ids, "default query (asc, both)")
    stamps = [int(t["timestamp"]) for t in every]
    check(stamps == sorted(stamps) and len(set(stamps)) == len(stamps),
          "timestamps not strictly increasing: %r" % stamps)
    check_eq([t["id"] for t in q("?limit=3")], ids[:3], "limit=3 asc")
    check_eq([t["id"] for t in q("?limit=3&order=desc")],
             ids[::-1][:3], "limit=3 desc")
    check_eq([t["id"] for t in q("?direction=debits")],
             [x for i, x in enumerate(ids) if i % 5 not in (1, 3)],
             "direction=debits")
    check_eq([t["id"] for t in q("?direction=credits&order=desc")],
             [x for i, x in enumerate(ids) if i % 5 in (1, 3)][::-1],
             "direction=credits order=desc")
    check_eq([t["id"] for t in q("?timestamp_min=%d&timestamp_max=%d"
                                 % (stamps[2], stamps[5]))],
             ids[2:6], "timestamp range (inclusive)")
    check_eq(q("?timestamp_min=%d" % (stamps[-1] + 1)), [],
             "range after the last transfer")
    check_eq([t["id"] for t in q("?limit=8190")], ids, "limit=8190")
    check_eq(q("?direction=both")[0]["id"], ids[0], "direction=both")
    r = s.get("/v1/accounts/424242/transfers")
    check_eq(r.status, 200, "transfers of an unknown account")
    check_eq(r.json(), [], "transfers of an unknown account")
    s.stop()


@e2e_test(timeout=60)
def test_balances_query_on_history_account_returns_running_balances(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1, flags=["history"]), account(2)],
           ["created", "created"])
    running = []
    debit = credit = 0
    for i in range(5):
        if i == 3:
            create_one(s, "transfers", transfer(200 + i, 2, 1, 7), "created",
                       201)
            credit += 7
        else:
            create_one(s, "transfers", transfer(200 + i, 1, 2, 10 * (i + 1)),
                       "created", 201)
            debit += 10 * (i + 1)
        running.append((str(debit), str(credit)))
    r = s.get("/v1/accounts/1/balances")
    check_eq(r.status, 200, "GET /v1/accounts/1/balances: %r" % r)
    lst = r.json()
    check(isinstance(lst, list) and len(lst) == 5,
          "expected 5 balances, got %r" % lst)
    for b in lst:
        for f in ("debits_pending", "debits_posted", "credits_pending",
                  "credits_posted", "timestamp"):
            check_decimal(b.get(f), "balance.%s" % f)
    check_eq([(b["debits_posted"], b["credits_posted"]) for b in lst],
             running, "running balances (asc)")
    r = s.get("/v1/accounts/1/balances?limit=2&order=desc")
    check_eq(r.status, 200, "balances limit=2 desc: %r" % r)
    check_eq([(b["debits_posted"], b["credits_posted"]) for b in r.json()],
             running[::-1][:2], "running balances (limit=2, desc)")
    r = s.get("/v1/accounts/1/transfers")
    stamps = [t["timestamp"] for t in r.json()]
    check_eq([b["timestamp"] for b in lst], stamps,
             "balance timestamps are the transfers' timestamps")
    s.stop()


@e2e_test(timeout=60)
def test_ids_zero_and_max_are_ledger_results_not_400(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    create(s, "accounts", [account(0), account(U128_MAX)],
           ["id_must_not_be_zero", "id_must_not_be_int_max"])
    create(s, "transfers", [transfer(0, 1, 2, 1), transfer(U128_MAX, 1, 2, 1)],
           ["id_must_not_be_zero", "id_must_not_be_int_max"])
    create_one(s, "transfers", transfer(0, 1, 2, 1), "id_must_not_be_zero",
               422)
    check_balances(s, 1)
    s.stop()


@e2e_test(timeout=60)
def test_amount_overflow_is_a_result_and_changes_nothing(ctx):
    s = ctx.start_server()
    _two_accounts(s)
    create_one(s, "transfers", transfer(80, 1, 2, 5), "created", 201)
    res = create_one_any(s, transfer(81, 1, 2, U128_MAX))
    check(res.startswith("overflows_"),
          "u128 overflow of a balance: expected overflows_*, got %r" % res)
    check_balances(s, 1, dpo=5)
    check_balances(s, 2, cpo=5)
    s.stop()


def create_one_any(s, t):
    r = s.post("/v1/transfers", t)
    check_eq(r.status, 422, "status for %r: %r" % (t, r))
    return r.json().get("status")


@e2e_test(timeout=60)
def test_account_read_back_has_every_field_and_404_when_absent(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(5, ledger=3, code=4, user_data_32=9,
                                   flags=["linked"]),
                           account(6, ledger=3, code=4)],
           ["created", "created"])
    a = get_account(s, 5)
    check_account_shape(a)
    check_eq(a["flags"], ["linked"], "account 5 flags")
    check_eq(a["user_data_32"], 9, "user_data_32")
    r = s.get("/v1/accounts/77")
    check_eq(r.status, 404, "GET absent account: %r" % r)
    check_json_content_type(r, problem=True)
    r = s.get("/v1/transfers/77")
    check_eq(r.status, 404, "GET absent transfer: %r" % r)
    check_json_content_type(r, problem=True)
    s.stop()
