"""test_store.py - history on disk (store = 1, docs/store.md): the server
keeps a small window of transfers in memory and answers the rest from
DATA/store; after kill -9 it restarts from the store and answers the same;
a store that is corrupt or belongs to another data directory is rebuilt
from the journal, never trusted."""

import os
import re
import shutil

import journal
from harness import (e2e_test, check, check_eq, run_cli,
                     wait_audit_caught_up)
from ledger import (account, transfer, create, get_transfer,
                    account_transfers_all)

ENV = {"TPWALLET_STORE": "1", "TPWALLET_CACHE_BYTES": str(1 << 20)}
ACCOUNTS = list(range(1, 21))


def metric(srv, name):
    r = srv.get("/metrics")
    check(r.status == 200, "GET /metrics: %r" % r)
    m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
    check(m is not None, "/metrics has no %s" % name)
    return int(m.group(1))


def load(srv):
    """20 accounts (odd ones keep history), 12,000 transfers in batches
    (every tenth pending), then posts and voids of early pending ones and
    retries of early ids.  Returns the ids."""
    create(srv, "accounts",
           [account(i, flags=("history",) if i % 2 else ())
            for i in ACCOUNTS])
    ids = []
    for b in range(30):
        evs = []
        for k in range(400):
            i = 100000 + b * 400 + k
            evs.append(transfer(i, 1 + i % 20, 1 + (i + 3) % 20,
                                1 + i % 9,
                                flags=("pending",) if i % 10 == 0 else ()))
            ids.append(i)
        create(srv, "transfers", evs, ["created"] * len(evs))
    # The window is 3,276 transfers: these pending ones are pinned in
    # memory, their neighbours long gone to the store.
    posts = [transfer(900000 + k, 0, 0, 0, pending_id=str(100000 + 10 * k),
                      flags=("post_pending_transfer" if k % 2 else
                             "void_pending_transfer",))
             for k in range(1, 40)]
    for p in posts:
        for f in ("debit_account_id", "credit_account_id", "ledger",
                  "code"):
            p.pop(f, None)
    create(srv, "transfers", posts, ["created"] * len(posts))
    ids.extend(900000 + k for k in range(1, 40))
    # Retries of old ids answer from the store: exists, and a post of
    # a pending transfer voided long ago is refused as such.
    retry = [transfer(100001, 2, 5, 3), transfer(100002, 3, 6, 4)]
    create(srv, "transfers", retry, ["exists", "exists"])
    again = transfer(990001, 0, 0, 0, pending_id="100020",
                     flags=("post_pending_transfer",))
    for f in ("debit_account_id", "credit_account_id", "ledger", "code"):
        again.pop(f, None)
    create(srv, "transfers", [again], ["pending_transfer_already_voided"])
    return ids


def answers(srv, ids):
    """What the server says about every transfer and every account."""
    out = {}
    for i in ids[::7] + ids[-50:] + [100010, 100020, 100030]:
        out["t%d" % i] = get_transfer(srv, i)
    for a in ACCOUNTS:
        out["a%d" % a] = srv.get("/v1/accounts/%d" % a).json()
        out["x%d" % a] = account_transfers_all(srv, a, limit=500)
        r = srv.get("/v1/accounts/%d/transfers?limit=37&order=desc" % a)
        check(r.status == 200, "descending page: %r" % r)
        out["d%d" % a] = r.json()
        r = srv.get("/v1/accounts/%d/balances?limit=50" % a)
        check(r.status == 200, "balances: %r" % r)
        out["b%d" % a] = r.json()
    return out


@e2e_test(timeout=240)
def test_store_keeps_history_on_disk_and_restarts_from_it_after_kill9(ctx):
    srv = ctx.server(env=ENV)
    srv.start()
    ids = load(srv)
    check(metric(srv, "tpwallet_store_evictions_total") > 0,
          "nothing was evicted to the store")
    check_eq(metric(srv, "tpwallet_store_window_transfers"), 3276,
             "window of 1 MiB / 2 / 160 bytes")
    check_eq(metric(srv, "tpwallet_transfers"), len(ids), "transfers")
    before = answers(srv, ids)
    # Every account page holds every transfer of the account, in order.
    for a in ACCOUNTS:
        got = [int(t["id"]) for t in before["x%d" % a]]
        want = [i for i in ids if i < 900000 and
                a in (1 + i % 20, 1 + (i + 3) % 20)]
        check_eq(got[:len(want)], want, "account %d's first transfers" % a)
    check_eq(before["t100020"]["pending_status"], "voided",
             "a pending transfer voided after its neighbours left memory")
    check_eq(before["t100030"]["pending_status"], "posted",
             "a pending transfer posted after its neighbours left memory")

    off = srv._log_size()
    srv.kill9()
    srv.start()
    text = srv.wait_log(r'"msg":"recovered"', since=off)
    check(text is not None, "no recovered line after the restart")
    m = re.search(r'"store_seq":(\d+),"replayed_records":(\d+)', text)
    check(m is not None, "recovered line without store_seq: %s" % text)
    wait_audit_caught_up(srv, off)
    after = answers(srv, ids)
    for k in before:
        check_eq(after[k], before[k], "%s after kill -9" % k)

    # A clean stop flushes: the next start replays nothing.
    srv.stop()
    off = srv._log_size()
    srv.start()
    text = srv.wait_log(r'"msg":"recovered"', since=off)
    m = re.search(r'"replayed_records":(\d+)', text or "")
    check(m is not None and int(m.group(1)) == 0,
          "a clean restart replayed journal records: %s" % text)
    r = run_cli(["doctor", "--data", srv.data_dir], env=ENV)
    check(re.search(r"store: at seq \d+ on disk \(0 records after it",
                    r.stdout) is not None,
          "doctor does not show the store: %s" % r.stdout)
    srv.stop()


@e2e_test(timeout=240)
def test_store_that_is_corrupt_or_foreign_is_rebuilt_from_the_journal(ctx):
    srv = ctx.server(env=ENV)
    srv.start()
    ids = load(srv)
    before = answers(srv, ids)
    srv.stop()
    store = os.path.join(srv.data_dir, "store")

    # Garbage in every file of the store.
    for name in os.listdir(store):
        with open(os.path.join(store, name), "r+b") as f:
            f.write(b"\xde\xad" * 64)
    off = srv._log_size()
    srv.start()
    check(srv.wait_log(r'"msg":"store rebuilt from the journal"',
                       since=off) is not None,
          "a corrupt store was not rebuilt")
    wait_audit_caught_up(srv, off)
    after = answers(srv, ids)
    for k in before:
        check_eq(after[k], before[k], "%s after a rebuild" % k)
    srv.stop()

    # Another data directory's store, put in its place.
    other = ctx.server(env=ENV)
    other.start()
    create(other, "accounts", [account(7)])
    other.stop()
    shutil.rmtree(store)
    shutil.copytree(os.path.join(other.data_dir, "store"), store)
    off = srv._log_size()
    srv.start()
    text = srv.wait_log(r'"msg":"store rebuilt from the journal"',
                        since=off)
    check(text is not None and "another journal" in text,
          "a foreign store was not refused: %s" % text)
    wait_audit_caught_up(srv, off)
    after = answers(srv, ids)
    for k in before:
        check_eq(after[k], before[k], "%s after a foreign store" % k)
    srv.stop()


@e2e_test(timeout=120)
def test_a_failed_store_write_refuses_changes_and_readyz_until_restart(ctx):
    """DATA/store replaced by a plain file while serving: the writer's next
    flush fails, the server refuses every change (503 unavailable, as
    after a journal failure) and /readyz is 503; what was acknowledged is
    all there after a restart, which builds the store again."""
    import time
    from harness import slow_factor
    srv = ctx.server(env=ENV)
    srv.start()
    create(srv, "accounts", [account(1), account(2)])
    store = os.path.join(srv.data_dir, "store")
    # Renamed away, not removed: RocksDB may be adding a file to it at
    # this moment, which a recursive removal would race with.
    os.rename(store, os.path.join(ctx.dir, "store-gone"))
    with open(store, "w") as f:
        f.write("not a store\n")
    acked, n, refused = [], 0, None
    deadline = time.monotonic() + 30 * slow_factor()
    while time.monotonic() < deadline:
        n += 1
        r = srv.post("/v1/transfers", [transfer(5000 + n, 1, 2, 1)])
        if r.status == 200:
            acked.append(5000 + n)
            time.sleep(0.05)
            continue
        refused = r
        break
    check(refused is not None, "no change was refused within the deadline "
          "after DATA/store became a file (%d acknowledged)" % len(acked))
    check_eq(refused.status, 503, "a change after the store failed: %r"
             % refused)
    check(srv.wait_log(r'"msg":"store write failed') is not None,
          "no store write failed line")
    check_eq(srv.get("/readyz").status, 503, "/readyz after a store failure")
    r = srv.post("/v1/transfers", [transfer(999999, 1, 2, 1)])
    check_eq(r.status, 503, "another change: %r" % r)
    check_eq(r.json().get("type"), "/problems/unavailable",
             "another change's problem")
    srv.kill9()
    srv.start()
    for i in acked:
        check_eq(srv.get("/v1/transfers/%d" % i).status, 200,
                 "acknowledged transfer %d after the restart" % i)
    check_eq(srv.get("/v1/transfers/999999").status, 404,
             "the refused change is absent")
    a1 = srv.get("/v1/accounts/1").json()
    got = len(acked) + (1 if srv.get("/v1/transfers/%d" % (5000 + n))
                        .status == 200 else 0)
    check_eq(int(a1["debits_posted"]), got, "balance matches the transfers")
    srv.stop()


@e2e_test(timeout=240)
def test_a_restart_with_the_store_reads_only_the_journal_after_it(ctx):
    """docs/store.md, "In the server": with the store, sealed journal
    segments wholly before its seq are not read at start; a damaged
    record in one of them does not stop the start (the store holds that
    state), doctor still names it, and a start that must rebuild the
    store from the journal reads it and refuses."""
    env = dict(ENV, TPWALLET_JOURNAL_SEGMENT_BYTES=str(64 << 10))
    srv = ctx.server(env=env)
    srv.start()
    ids = load(srv)
    before = answers(srv, ids)
    srv.stop()
    segs = journal.segments(srv.data_dir)
    check(len(segs) >= 10, "64 KiB segments: only %d" % len(segs))
    # A byte in the middle of the first segment's second record.
    recs = journal.read_segment(segs[0])
    check(len(recs) >= 2, "segment 1 holds %d records" % len(recs))
    journal.flip_byte(segs[0], recs[1].offset + recs[1].size // 2)

    off = srv._log_size()
    srv.start()
    text = srv.wait_log(r'"msg":"recovered"', since=off)
    m = re.search(r'"segments_not_read":(\d+)', text or "")
    check(m is not None, "recovered line: %s" % text)
    # All but the last, and the one before it if the last is empty.
    read = 2 if os.path.getsize(segs[-1]) == 0 else 1
    check_eq(int(m.group(1)), len(segs) - read,
             "sealed segments not read at start")
    after = answers(srv, ids)
    for k in before:
        check_eq(after[k], before[k], "%s after the restart" % k)
    srv.stop()

    r = run_cli(["doctor", "--data", srv.data_dir], env=env)
    check(re.search(r"journal.*00000000000000000001\.wal.*bad checksum",
                    r.stdout) is not None,
          "doctor does not name the damaged segment: %s" % r.stdout)

    # Without the store the journal is read from its first record.
    os.rename(os.path.join(srv.data_dir, "store"),
              os.path.join(ctx.dir, "store-aside"))
    served, exited, rc = srv.start_expecting_refusal()
    check(served is None and exited, "a rebuild over a damaged journal "
          "served: %r" % (served,))
    check_eq(rc, 65, "exit status of a rebuild over a damaged journal")
