"""test_durability.py - kill -9 under load, torn journal tails, and a
flipped byte in the middle of the journal."""

import http.client
import json
import os
import random
import re
import shlex
import shutil
import struct
import subprocess
import threading
import time

import journal
from harness import (CONFIG, build_shim, e2e_test, check, check_eq,
                     slow_factor, scaled, Client, TestFailure,
                     wait_audit_size, wait_checkpoint)
from ledger import (account, transfer, create, create_one, get_account,
                    get_transfer, account_transfers_all)

LEDGERS = {1: list(range(1, 9)), 2: list(range(101, 109))}


def _create_crash_accounts(s):
    evs = []
    for ledger, ids in LEDGERS.items():
        evs.extend(account(i, ledger=ledger, code=7) for i in ids)
    create(s, "accounts", evs, ["created"] * len(evs))


class Load:
    """Client threads sending valid transfers until told to stop (or the
    server dies), recording what was acknowledged."""

    def __init__(self, srv, round_no, threads, rate_per_thread, seed):
        self.srv = srv
        self.round_no = round_no
        self.rate = rate_per_thread
        self.lock = threading.Lock()
        self.acked = {}      # id -> (debit, credit, amount, ledger)
        self.attempted = {}  # id -> same, every id ever sent
        self.in_flight_lost = 0
        self.unanswered = []  # id lists of requests that got no reply
        self.errors = []     # unexpected replies while the server was up
        self.requests = 0
        self.outstanding = 0  # requests sent and not yet answered
        self.killing = threading.Event()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run,
                                         args=(t, seed * 100 + t),
                                         daemon=True)
                        for t in range(threads)]

    def start(self):
        for th in self.threads:
            th.start()

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(timeout=max(0.0, deadline - time.monotonic()))
        return all(not th.is_alive() for th in self.threads)

    def _run(self, tid, seed):
        rng = random.Random(seed)
        c = self.srv.new_client(timeout=10 * slow_factor())
        n = 0
        sent = 0
        t0 = time.monotonic()
        hard_deadline = t0 + 60 * slow_factor()
        try:
            while not self.stop.is_set() and time.monotonic() < hard_deadline:
                # Pace to `rate` transfers/s so verification stays cheap.
                ahead = sent / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.05))
                    continue
                single = rng.random() < 0.25
                k = 1 if single else rng.randint(1, 50)
                evs = []
                meta = []
                for _ in range(k):
                    tid_id = ((self.round_no + 1) << 48) | (tid << 40) | n
                    n += 1
                    ledger = rng.choice((1, 2))
                    d, cr = rng.sample(LEDGERS[ledger], 2)
                    amt = rng.randint(1, 1000)
                    evs.append(transfer(tid_id, d, cr, amt, ledger=ledger,
                                        code=3))
                    meta.append((tid_id, (d, cr, amt, ledger)))
                with self.lock:
                    for i, m in meta:
                        self.attempted[i] = m
                sent += k
                with self.lock:
                    self.outstanding += 1
                try:
                    r = c.post("/v1/transfers", evs[0] if single else evs)
                except (OSError, http.client.HTTPException) as e:
                    with self.lock:
                        self.outstanding -= 1
                        self.unanswered.append([i for i, _ in meta])
                    c.close()
                    if self.killing.is_set():
                        with self.lock:
                            self.in_flight_lost += k
                        return
                    with self.lock:
                        self.errors.append("connection error while the "
                                           "server was up: %r" % (e,))
                    time.sleep(0.05)
                    continue
                with self.lock:
                    self.outstanding -= 1
                    if r.status == 503 and self.killing.is_set():
                        # Shutting down (SIGTERM): refused, not applied.
                        self.in_flight_lost += k
                        return
                    self.requests += 1
                    if single:
                        st = None
                        if r.status == 201:
                            st = r.json().get("status")
                        if st == "created":
                            self.acked[meta[0][0]] = meta[0][1]
                        else:
                            self.errors.append("single transfer: %r" % r)
                    else:
                        res = r.json() if r.status == 200 else None
                        if not isinstance(res, list) or len(res) != k:
                            self.errors.append("batch of %d: %r" % (k, r))
                            continue
                        for (i, m), x in zip(meta, res):
                            if x.get("status") == "created":
                                self.acked[i] = m
                            else:
                                self.errors.append(
                                    "transfer %d in a batch: %r" % (i, x))
        finally:
            c.close()


def _verify(srv, acked, attempted, what):
    """Every acknowledged transfer exists as sent; nothing else exists that
    was not sent; balances are the sums of the transfers present; debits
    equal credits per ledger."""
    present = {}
    problems = []
    for ledger, ids in LEDGERS.items():
        for aid in ids:
            for t in account_transfers_all(srv, aid):
                tid = int(t["id"])
                v = (int(t["debit_account_id"]), int(t["credit_account_id"]),
                     int(t["amount"]), t["ledger"])
                check(aid in v[:2], "%s: account %d lists transfer %d that "
                      "is not its own: %r" % (what, aid, tid, t))
                if tid in present and present[tid] != v:
                    problems.append("transfer %d read back two ways: %r %r"
                                    % (tid, present[tid], v))
                present[tid] = v
    missing = [i for i in acked if i not in present]
    wrong = [i for i in acked if i in present and present[i] != acked[i]]
    invented = [i for i in present if i not in attempted]
    altered = [i for i in present if i in attempted
               and present[i] != attempted[i]]
    if missing:
        problems.append("%d acknowledged transfers missing, e.g. %r"
                        % (len(missing), missing[:5]))
    if wrong:
        problems.append("%d acknowledged transfers differ, e.g. %d: sent %r,"
                        " read %r" % (len(wrong), wrong[0], acked[wrong[0]],
                                      present[wrong[0]]))
    if invented:
        problems.append("%d transfers exist that were never sent, e.g. %r"
                        % (len(invented), invented[:5]))
    if altered:
        problems.append("%d transfers differ from what was sent, e.g. %d"
                        % (len(altered), altered[0]))
    for ledger, ids in LEDGERS.items():
        total_d = total_c = 0
        for aid in ids:
            a = get_account(srv, aid)
            want_d = sum(v[2] for v in present.values() if v[0] == aid)
            want_c = sum(v[2] for v in present.values() if v[1] == aid)
            got = (int(a["debits_pending"]), int(a["debits_posted"]),
                   int(a["credits_pending"]), int(a["credits_posted"]))
            if got != (0, want_d, 0, want_c):
                problems.append("account %d: balances %r, its transfers sum "
                                "to debits %d credits %d"
                                % (aid, got, want_d, want_c))
            total_d += got[1]
            total_c += got[3]
        if total_d != total_c:
            problems.append("ledger %d: debits_posted %d != credits_posted %d"
                            % (ledger, total_d, total_c))
    # Spot-check lookups by id.
    rng = random.Random(len(acked))
    for i in rng.sample(sorted(acked), min(30, len(acked))):
        t = get_transfer(srv, i)
        v = (int(t["debit_account_id"]), int(t["credit_account_id"]),
             int(t["amount"]), t["ledger"])
        if v != acked[i]:
            problems.append("GET /v1/transfers/%d: %r, sent %r"
                            % (i, v, acked[i]))
    if problems:
        raise TestFailure("%s:\n  %s" % (what, "\n  ".join(problems[:12])))
    return present


def _crash_rounds(ctx, rounds, env=None, how="kill9"):
    s = ctx.server(data_dir=ctx.path("data"), env=env)
    s.start()
    _create_crash_accounts(s)
    acked, attempted = {}, {}
    rng = random.Random(77)
    duration = 3.0
    rate = scaled(2500, 800)  # transfers/s per thread
    for rnd in range(rounds):
        load = Load(s, rnd, 4, rate, seed=rnd + 1)
        load.start()
        # Let it run, then kill -9 mid-stream (jittered so the kill lands
        # at different points of the group-commit cycle).
        time.sleep(duration - rng.uniform(0, 0.5))
        check(s.alive(), "round %d: server died under load" % rnd)
        # Kill while requests are in flight (bounded wait).
        wait_end = time.monotonic() + 2
        while time.monotonic() < wait_end:
            with load.lock:
                if load.outstanding >= 2:
                    break
            time.sleep(0.0005)
        with load.lock:
            reqs_before_kill = load.requests
            outstanding = load.outstanding
        load.killing.set()
        if how == "kill9":
            s.kill9()
        else:
            # SIGTERM under load: queued requests finish, exit status 0.
            s.stop()
        load.stop.set()
        check(load.join(15 * slow_factor()), "round %d: client threads hung"
              % rnd)
        check(reqs_before_kill > 10, "round %d: only %d requests answered "
              "before the kill" % (rnd, reqs_before_kill))
        if load.errors:
            raise TestFailure("round %d: unexpected replies under load:\n  %s"
                              % (rnd, "\n  ".join(load.errors[:8])))
        acked.update(load.acked)
        attempted.update(load.attempted)
        s.start()
        present = _verify(s, acked, attempted,
                          "round %d after %s" % (rnd, how))
        # A request is one journal record: after the crash it is there
        # whole or not at all.
        for ids in load.unanswered:
            there = [i in present for i in ids]
            check(all(there) or not any(there),
                  "round %d: a request of %d transfers that got no reply "
                  "is partly applied (%d of them present)"
                  % (rnd, len(ids), sum(there)))
        ctx.note("round %d: %d requests answered, %d transfers acked, %d "
                 "present in all, %d requests in flight at the kill"
                 % (rnd, load.requests, len(load.acked), len(present),
                    outstanding))
        # Idempotency survives the crash: a retry of acked ones is exists.
        sample = random.Random(rnd).sample(sorted(load.acked),
                                           min(50, len(load.acked)))
        evs = [transfer(i, *load.acked[i][:3], ledger=load.acked[i][3],
                        code=3) for i in sample]
        if evs:
            create(s, "transfers", evs, ["exists"] * len(evs))
    s.stop()


@e2e_test(timeout=150)
def test_kill9_under_load_loses_no_acknowledged_transfer(ctx):
    _crash_rounds(ctx, scaled(3, 2))


@e2e_test(timeout=150)
def test_kill9_under_load_with_frequent_snapshots_loses_nothing(ctx):
    _crash_rounds(ctx, 2, env={"TPWALLET_SNAPSHOT_EVERY": "3000"})
    # Prove snapshots were really taken and used by recovery.
    snaps = os.listdir(ctx.path("data", "snapshots"))
    check(snaps, "no snapshot written with snapshot_every=3000")
    log = ctx.servers[0].log_text()
    seqs = [int(x) for x in re.findall(r'"snapshot_seq":\s*"?(\d+)', log)]
    check(any(x > 0 for x in seqs), "recovery never started from a "
          "snapshot (snapshot_seq values %r)" % seqs)


@e2e_test(timeout=150)
def test_kill9_under_load_with_the_store_loses_nothing(ctx):
    # History in DATA/store with a window of 3,276 transfers: lookups,
    # pages and retries after each crash go to the store.
    _crash_rounds(ctx, 2, env={"TPWALLET_STORE": "1",
                               "TPWALLET_CACHE_BYTES": str(1 << 20)})
    log = ctx.servers[0].log_text()
    check('"store_seq"' in log, "recovery did not start from the store")


@e2e_test(timeout=90)
def test_sigterm_under_load_exits_0_and_loses_no_acknowledged_transfer(ctx):
    _crash_rounds(ctx, 1, how="term")


@e2e_test(timeout=60)
def test_second_server_on_the_same_data_dir_refuses_to_start(ctx):
    s1 = ctx.start_server()
    create(s1, "accounts", [account(1), account(2)], ["created"] * 2)
    create_one(s1, "transfers", transfer(1, 1, 2, 9), "created", 201)
    s2 = ctx.server(data_dir=s1.data_dir)
    limit = 10
    served, exited, rc = s2.start_expecting_refusal(limit)
    check(served is None, "a second server served on a data dir in use")
    check(exited, "the second server did not exit within %.0fs" % limit)
    # docs/operations.md: a data directory in use is exit 65.
    check_eq(rc, 65, "the second server's exit status")
    check("in use by another process" in s2.log_text(),
          "the second server does not say the directory is in use")
    # The first one is unharmed, before and after a restart.
    check_eq(get_account(s1, 2)["credits_posted"], "9", "account 2")
    create_one(s1, "transfers", transfer(2, 1, 2, 1), "created", 201)
    s1.stop()
    s1.start()
    check_eq(get_account(s1, 2)["credits_posted"], "10",
             "account 2 after restart")
    s1.stop()


# -- torn tail and corruption ---------------------------------------------

def _filled(ctx, n_transfers):
    """A running server on DIR/orig with accounts and n single-transfer
    requests (so, as many journal records).  Returns (server, acked
    map)."""
    s = ctx.server(data_dir=ctx.path("orig"))
    s.start()
    create(s, "accounts", [account(1), account(2), account(3)],
           ["created"] * 3)
    acked = {}
    for i in range(n_transfers):
        tid = 1000 + i
        d, c = (1, 2) if i % 2 == 0 else (2, 3)
        create_one(s, "transfers", transfer(tid, d, c, i + 1), "created", 201)
        acked[tid] = (d, c, i + 1)
    return s, acked


def _fill(ctx, n_transfers):
    """_filled, stopped cleanly.  Returns (dir, acked map)."""
    s, acked = _filled(ctx, n_transfers)
    s.stop()
    return s.data_dir, acked


def _copy(ctx, src, name):
    """Copy a data directory and its key-encryption key (DATA.kek lives
    beside the directory, not in it, so a copy must take both)."""
    dst = ctx.path(name)
    shutil.copytree(src, dst)
    shutil.copy2(src.rstrip("/") + ".kek", dst + ".kek")
    return dst


def _last_transfer_record(data_dir):
    segs = journal.segments(data_dir)
    check(segs, "no journal segment in %s/journal" % data_dir)
    recs = journal.read_segment(segs[-1])
    tr = [r for r in recs if r.type == journal.TYPE_TRANSFERS]
    check(tr, "no transfers record in the last segment %s (records: %r)"
          % (segs[-1], recs[-5:]))
    return segs[-1], tr[-1], recs


def _check_state(s, acked, expect_missing=()):
    for tid, (d, c, amt) in acked.items():
        t = get_transfer(s, tid, missing_ok=True)
        if tid in expect_missing:
            check(t is None, "transfer %d of the cut record still exists"
                  % tid)
            continue
        check(t is not None, "acknowledged transfer %d lost" % tid)
        check_eq((int(t["debit_account_id"]), int(t["credit_account_id"]),
                  int(t["amount"])), (d, c, amt), "transfer %d" % tid)
    for aid in (1, 2, 3):
        a = get_account(s, aid)
        want_d = sum(v[2] for k, v in acked.items()
                     if v[0] == aid and k not in expect_missing)
        want_c = sum(v[2] for k, v in acked.items()
                     if v[1] == aid and k not in expect_missing)
        check_eq((int(a["debits_posted"]), int(a["credits_posted"])),
                 (want_d, want_c), "account %d posted balances" % aid)


def _log_line_matching(s, ignore, pattern, since=0):
    """First log line whose message matches pattern, ignoring string
    values that contain `ignore` (the temp dir path, whose name could
    match)."""
    rx = re.compile(pattern)
    for line in s._log_since(since).splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            if ignore not in line and rx.search(line):
                return line
            continue
        if not isinstance(doc, dict):
            continue
        text = " ".join(str(v) for v in doc.values() if ignore not in str(v))
        if rx.search(text):
            return line
    return None


def _restart_after_damage(ctx, data_dir, acked, expect_missing, seg_name):
    s = ctx.server(data_dir=data_dir)
    s.start()
    deadline = time.monotonic() + 3 * slow_factor()
    line = None
    while line is None and time.monotonic() < deadline:
        line = _log_line_matching(s, ctx.dir, r"(?i)(torn|cut|truncat)")
        if line is None:
            time.sleep(0.05)
    check(line is not None, "the server log does not mention cutting the "
          "torn tail")
    check(seg_name in line,
          "the torn-tail log line does not name the segment %s: %r"
          % (seg_name, line))
    _check_state(s, acked, expect_missing)
    # The journal is appendable after the cut, and a second restart is
    # clean (no second cut).
    create_one(s, "transfers", transfer(9999, 1, 3, 5), "created", 201)
    s.stop()
    mark = os.path.getsize(s.log_path)
    s.start()
    check(get_transfer(s, 9999, missing_ok=True) is not None,
          "transfer written after the cut lost on restart")
    again = _log_line_matching(s, ctx.dir, r"(?i)(torn|cut|truncat)",
                               since=mark)
    check(again is None, "a torn tail was cut again on the restart after "
          "the repair: %r" % again)
    s.stop()


@e2e_test(timeout=90)
def test_torn_tail_cut_by_a_few_bytes_is_cut_and_server_starts(ctx):
    orig, acked = _fill(ctx, 20)
    d = _copy(ctx, orig, "truncated")
    seg, rec, recs = _last_transfer_record(d)
    lost = set(rec.event_ids())
    check(lost and lost <= set(acked), "the last transfers record holds %r"
          % lost)
    # Cut 5 bytes off the last transfers record, dropping any record after
    # it (a crash mid-write of that record: the audit never saw it).
    journal.truncate_to(seg, rec.end - 5)
    journal.uncover(d, rec.seq)
    _restart_after_damage(ctx, d, acked, lost, os.path.basename(seg))


@e2e_test(timeout=90)
def test_torn_tail_with_20_garbage_bytes_appended_loses_nothing(ctx):
    orig, acked = _fill(ctx, 20)
    d = _copy(ctx, orig, "garbage")
    segs = journal.segments(d)
    rng = random.Random(5)
    junk = bytes(rng.randint(1, 255) for _ in range(20))
    journal.append_bytes(segs[-1], junk)
    _restart_after_damage(ctx, d, acked, (), os.path.basename(segs[-1]))


@e2e_test(timeout=90)
def test_torn_tail_cut_inside_the_header_is_cut(ctx):
    orig, acked = _fill(ctx, 10)
    d = _copy(ctx, orig, "header")
    seg, rec, recs = _last_transfer_record(d)
    journal.truncate_to(seg, rec.offset + 12)
    journal.uncover(d, rec.seq)
    _restart_after_damage(ctx, d, acked, set(rec.event_ids()),
                          os.path.basename(seg))


def _expect_refusal(ctx, data_dir, seg_path, offsets, what):
    s = ctx.server(data_dir=data_dir)
    limit = 10
    served, exited, rc = s.start_expecting_refusal(limit)
    check(served is None, "%s: the server served /readyz 200 on a corrupt "
          "journal" % what)
    check(exited, "%s: the server did not exit within %.0fs" % (what, limit))
    # docs/operations.md, Recovery: a corrupt record stops start-up with
    # exit status 65.
    check_eq(rc, 65, "%s: exit status on a corrupt journal" % what)
    text = s.log_text()
    name = os.path.basename(seg_path)
    check(name in text, "%s: stderr does not name %s:\n%s"
          % (what, name, text[-1500:]))
    nums = set(int(x) for x in re.findall(r"\d+", text))
    check(any(o in nums for o in offsets),
          "%s: stderr names none of the offsets %r:\n%s"
          % (what, sorted(offsets), text[-1500:]))
    return rc


@e2e_test(timeout=90)
def test_flipped_byte_in_an_early_record_refuses_to_start(ctx):
    orig, acked = _fill(ctx, 30)
    segs = journal.segments(orig)
    recs = journal.read_segment(segs[0])
    check(len(recs) >= 20, "expected >= 20 records, got %d" % len(recs))
    rec = recs[3]
    # In the payload (the debit account id of the first event).
    d = _copy(ctx, orig, "payload")
    at = rec.offset + journal.HEADER.size + 17
    journal.flip_byte(os.path.join(d, "journal", os.path.basename(segs[0])),
                      at)
    _expect_refusal(ctx, d, segs[0], {rec.offset, at}, "payload byte flipped")
    # In the header (the size field).
    d = _copy(ctx, orig, "size")
    at = rec.offset + 8
    journal.flip_byte(os.path.join(d, "journal", os.path.basename(segs[0])),
                      at, mask=0x40)
    _expect_refusal(ctx, d, segs[0], {rec.offset, at}, "size byte flipped")
    # In the checksum field.
    d = _copy(ctx, orig, "crc")
    at = rec.offset + 5
    journal.flip_byte(os.path.join(d, "journal", os.path.basename(segs[0])),
                      at)
    _expect_refusal(ctx, d, segs[0], {rec.offset, at}, "checksum flipped")
    # The undamaged original still starts and holds everything.
    s = ctx.server(data_dir=orig)
    s.start()
    _check_state(s, acked)
    s.stop()


# -- an acknowledged record damaged at the end (issue 9, finding 6) -------

def _acked_last(ctx, n=12):
    """A stopped data dir whose audit leaves and newest signed checkpoint
    cover every record, and its last record (acknowledged: its reply came
    after its fdatasync)."""
    s, acked = _filled(ctx, n)
    want = journal.all_records(s.data_dir)[-1].seq
    r = s.request("POST", "/v1/audit/checkpoint")
    check_eq(r.status, 202, "POST /v1/audit/checkpoint")
    deadline = time.monotonic() + 10 * slow_factor()
    while max(journal.checkpoint_sizes(s.data_dir) or [0]) < want:
        check(time.monotonic() < deadline, "no checkpoint of size %d" % want)
        time.sleep(0.05)
        s.request("POST", "/v1/audit/checkpoint")
    s.stop()
    orig = s.data_dir
    last = journal.all_records(orig)[-1]
    leaves = os.path.getsize(os.path.join(orig, "audit", "leaves")) // 32
    check(leaves >= last.seq, "the audit leaves cover %d of %d records"
          % (leaves, last.seq))
    check(max(journal.checkpoint_sizes(orig)) >= last.seq,
          "no checkpoint covers record %d" % last.seq)
    return orig, acked, last


def _refused_naming(ctx, d, last, what, expect_seq=None):
    rc = _expect_refusal(ctx, d, last.path, {last.offset}, what)
    check_eq(rc, 65, "%s: exit status" % what)
    text = ctx.servers[-1].log_text()
    seq = expect_seq if expect_seq is not None else last.seq
    check(re.search(r"seq %d\b" % seq, text),
          "%s: stderr does not name record seq %d:\n%s"
          % (what, seq, text[-1500:]))
    check("--truncate-corrupt-tail" in text and "backup" in text,
          "%s: stderr does not say how to recover:\n%s" % (what, text[-1500:]))
    check("torn tail cut" not in text,
          "%s: cut as a torn tail:\n%s" % (what, text[-1500:]))


@e2e_test(timeout=120)
def test_acknowledged_last_record_cut_or_flipped_refuses_to_start_exit_65(
        ctx):
    orig, acked, last = _acked_last(ctx)
    seg = os.path.basename(last.path)
    # Seven bytes cut off the last journal file.
    d = _copy(ctx, orig, "cut7")
    journal.truncate_to(os.path.join(d, "journal", seg), last.end - 7)
    _refused_naming(ctx, d, last, "7 bytes cut")
    # One byte flipped near its end.
    d = _copy(ctx, orig, "flip")
    journal.flip_byte(os.path.join(d, "journal", seg), last.end - 3)
    _refused_naming(ctx, d, last, "byte flipped near the end")
    # The whole last record gone (cut at a record boundary): nothing is
    # torn, yet an acknowledged record is missing.
    d = _copy(ctx, orig, "whole")
    journal.truncate_to(os.path.join(d, "journal", seg), last.offset)
    _refused_naming(ctx, d, last, "last record removed")
    # The leaves file gone too: the signed checkpoint alone covers it.
    d = _copy(ctx, orig, "noleaves")
    journal.truncate_to(os.path.join(d, "journal", seg), last.end - 7)
    os.unlink(os.path.join(d, "audit", "leaves"))
    _refused_naming(ctx, d, last, "7 bytes cut, no leaves file")
    # The undamaged original still starts and holds everything.
    s = ctx.server(data_dir=orig)
    s.start()
    _check_state(s, acked)
    s.stop()


@e2e_test(timeout=120)
def test_truncate_corrupt_tail_drops_the_record_moves_checkpoints_aside(ctx):
    orig, acked, last = _acked_last(ctx)
    seg = os.path.basename(last.path)
    recs = journal.all_records(orig)
    tr = [r for r in recs if r.type == journal.TYPE_TRANSFERS][-1]
    lost = set(tr.event_ids())
    d = _copy(ctx, orig, "accepted")
    journal.truncate_to(os.path.join(d, "journal", seg), tr.end - 7)
    s = ctx.server(data_dir=d, args=["--truncate-corrupt-tail"])
    s.start()
    text = s.log_text()
    check(re.search(r"ACKNOWLEDGED RECORDS DROPPED", text),
          "no loud line for the records dropped:\n%s" % text[-2000:])
    for name in ("checkpoints", "leaves"):
        aside = [n for n in os.listdir(os.path.join(d, "audit"))
                 if n.startswith(name + ".before-cut-")]
        check_eq(len(aside), 1, "%s moved aside (%r)"
                 % (name, os.listdir(os.path.join(d, "audit"))))
    check_eq(os.path.getsize(os.path.join(d, "audit", "leaves")),
             32 * (tr.seq - 1), "leaves kept for the records kept")
    check(max(journal.checkpoint_sizes(d) or [0]) < tr.seq,
          "a checkpoint still covers the dropped record seq %d: %r"
          % (tr.seq, journal.checkpoint_sizes(d)))
    _check_state(s, acked, lost)
    # The log keeps serving: a write, then its entry and a checkpoint.
    create_one(s, "transfers", transfer(9999, 1, 3, 5), "created", 201)
    want = journal.all_records(d)[-1].seq
    wait_audit_size(s, want)
    r = s.get("/v1/audit/entries/%d" % (want - 1))
    check_eq(r.status, 200, "GET the new entry: %r" % r)
    _, size = wait_checkpoint(s, want)
    check_eq(size, want, "the checkpoint after the cut (nothing written "
             "since)")
    s.stop()
    # A later start without the flag is clean.
    s2 = ctx.server(data_dir=d)
    s2.start()
    check(get_transfer(s2, 9999, missing_ok=True) is not None,
          "the transfer written after the cut is lost")
    s2.stop()


@e2e_test(timeout=90)
def test_failed_fsync_answers_outcome_unknown_then_refuses_until_restart(ctx):
    """The journal's fdatasync fails (an LD_PRELOAD shim): the request in
    that commit gets 503 commit-unknown (its bytes may be on disk), later
    writes get 503 unavailable with Retry-After (nothing applied), /readyz
    turns 503;
    after a restart the state is consistent and the refused write is
    absent."""
    shim = build_shim(ctx, "failsync.c")
    flag = ctx.path("fail-now")
    s = ctx.start_server(env={"LD_PRELOAD": shim,
                              "TPW_FAIL_SYNC_FLAG": flag})
    create(s, "accounts", [account(1), account(2)])
    r = s.post("/v1/transfers", transfer(77, 1, 2, 10))
    check_eq(r.status, 201, "transfer before the failure")

    open(flag, "w").close()
    r = s.post("/v1/transfers", transfer(78, 1, 2, 20))
    check_eq(r.status, 503, "transfer whose commit failed: %r" % r)
    check_eq(r.json().get("type"), "/problems/commit-unknown",
             "problem type of the failed commit")
    check_eq(s.get("/readyz").status, 503, "/readyz after a journal failure")
    r = s.post("/v1/transfers", transfer(79, 1, 2, 30))
    check_eq(r.status, 503, "transfer after the failure: %r" % r)
    check_eq(r.json().get("type"), "/problems/unavailable",
             "problem type after the failure")
    check_eq(r.json().get("detail"), "the journal failed: every change is "
             "refused until a restart", "the refusal says why")
    check_eq(r.header("retry-after"), "1", "Retry-After after the failure")

    s.kill9()
    os.unlink(flag)
    s.env.pop("LD_PRELOAD", None)
    s.start()
    check_eq(s.get("/v1/transfers/77").status, 200, "acknowledged 77 kept")
    check_eq(s.get("/v1/transfers/79").status, 404, "refused 79 absent")
    got78 = s.get("/v1/transfers/78").status == 200
    a1 = s.get("/v1/accounts/1").json()
    a2 = s.get("/v1/accounts/2").json()
    want = 10 + (20 if got78 else 0)
    check_eq((int(a1["debits_posted"]), int(a2["credits_posted"])),
             (want, want), "balances match the transfers present "
             "(78 present: %s)" % got78)


@e2e_test(timeout=120)
def test_an_entry_edited_in_place_with_its_crc_is_served_by_nothing(ctx):
    # The fresh review: an acknowledged transfer's amount rewritten in the
    # journal, its CRC-32C recomputed, was replayed and served (balances
    # and new writes), with only the audit routes answering 503.
    orig, acked, last = _acked_last(ctx)
    d = _copy(ctx, orig, "edited")
    recs = [r for r in journal.all_records(d)
            if r.type == journal.TYPE_TRANSFERS and 1004 in r.event_ids()]
    check_eq(len(recs), 1, "the record of transfer 1004")
    rec = recs[0]
    k = rec.event_ids().index(1004)
    hdr = journal.HEADER.size
    with open(rec.path, "r+b") as f:
        f.seek(rec.offset)
        raw = bytearray(f.read(rec.size))
        # the event's amount (bytes 48..63 of a transfer) -> 1,000,000
        at = hdr + (len(rec.payload) - 128 * len(rec.event_ids())) + \
            128 * k + 48
        raw[at:at + 16] = (1000000).to_bytes(16, "little")
        struct.pack_into("<I", raw, 4, journal.crc32c(bytes(raw[8:])))
        f.seek(rec.offset)
        f.write(raw)
    s = ctx.server(data_dir=d)
    s.spawn()
    deadline = time.monotonic() + 20 * slow_factor()
    r = None
    while time.monotonic() < deadline:
        try:
            r = s.request("GET", "/v1/accounts/2")
        except OSError:
            r = None  # not listening yet
        if r is not None and r.status == 503:
            break
        time.sleep(0.1)
    check(r is not None and r.status == 503,
          "the edited balance is still served: %r" % r)
    check_eq(r.json()["type"], "/problems/journal-changed", "the problem")
    r = s.post("/v1/transfers", [transfer(5000, 1, 2, 1)])
    check_eq(r.status, 503, "a new write")
    check_eq(s.request("GET", "/readyz").status, 503, "readyz")
    check_eq(s.request("GET", "/healthz").status, 200, "healthz")
    check("no longer matches the audit log" in s.log_text(),
          "the log says why")
    s.stop()


# -- the refusal's advice runs as written (issue 11, item 7) ---------------

@e2e_test(timeout=120)
def test_corrupt_mid_journal_message_names_a_command_that_starts_the_server(
        ctx):
    """A byte flipped in a record in the middle of the last journal
    segment: the refusal names a command in backquotes; run exactly
    that command (tpwallet serve with its flags, on a free port) and the
    server starts, serving every record before the damaged one."""
    orig, acked = _fill(ctx, 20)
    d = _copy(ctx, orig, "midfile")
    seg = journal.segments(d)[-1]
    recs = [r for r in journal.read_segment(seg)
            if r.type == journal.TYPE_TRANSFERS]
    rec = recs[len(recs) // 2]
    journal.flip_byte(seg, rec.offset + journal.HEADER.size + 17)
    s = ctx.server(data_dir=d)
    served, exited, rc = s.start_expecting_refusal(10)
    check(served is None and exited, "the server started on a corrupt "
          "journal")
    check_eq(rc, 65, "exit status on a corrupt journal")
    text = s.log_text()
    cmds = re.findall(r"`(tpwallet [^`]*)`", text)
    check_eq(len(cmds), 1, "commands named by the refusal:\n%s"
             % text[-1500:])
    argv = shlex.split(cmds[0])
    check_eq(argv[:2], ["tpwallet", "serve"], "the command named")
    check("--truncate-corrupt-tail" in argv, "the command %r does not "
          "drop the damaged tail" % cmds[0])
    # Exactly what it says (the harness ran `serve --data D --listen
    # 127.0.0.1:PORT`, so the command names the same port).
    port = int(argv[argv.index("--listen") + 1].rsplit(":", 1)[1])
    log = open(ctx.path("fixed.log"), "wb")
    p = subprocess.Popen([s.binary] + argv[1:], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, start_new_session=True)
    try:
        ready = None
        deadline = time.monotonic() + 20 * slow_factor()
        while ready is None and time.monotonic() < deadline:
            check(p.poll() is None, "the named command exited with %r:\n%s"
                  % (p.returncode, open(ctx.path("fixed.log")).read()))
            try:
                c = Client(port, timeout=2)
                if c.get("/readyz", retry=False).status == 200:
                    ready = True
                c.close()
            except OSError:
                time.sleep(0.05)
        check(ready, "the named command did not serve /readyz")
    finally:
        p.terminate()
        p.wait(timeout=30)
        log.close()
    check_eq(p.returncode, 0, "exit status of the named command on SIGTERM")
    # A plain start afterwards serves every record before the damage.
    fixed = ctx.server(data_dir=d)
    fixed.start()
    lost = set(t for r in recs[len(recs) // 2:] for t in r.event_ids())
    _check_state(fixed, acked, lost)
    fixed.stop()


# -- the documented backup restores (issue 11, item 7) --------------------

def _backup_block():
    """docs/operations.md, Backups: the sh block, split at its '# To
    restore' comment into (backup commands, restore commands), and the
    doctor command the section gives to check a copy."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    text = open(os.path.join(root, "docs", "operations.md")).read()
    sec = text.split("\n## Backups\n")[1].split("\n## ")[0]
    blocks = [b.split("```")[0] for b in sec.split("```sh\n")[1:]]
    (block,) = [b for b in blocks if "# To restore" in b]
    backup, restore = block.split("# To restore")
    doctor = re.findall(r"`(tpwallet doctor [^`]*)`", sec)
    check_eq(len(doctor), 1, "doctor commands in the Backups section")
    return backup, restore, " ".join(doctor[0].split())


@e2e_test(timeout=120)
def test_backup_as_documented_restores_the_same_state(ctx):
    """The Backups section's commands, run as written (its /backup and
    /vault under the test's directory) with the server stopped: the copy,
    restored after later writes, starts with the state of the backup."""
    backup, restore, doctor = _backup_block()
    work = ctx.path("work")
    os.makedirs(os.path.join(work, "vault"))
    os.makedirs(os.path.join(work, "backup"))
    s = ctx.server(data_dir=os.path.join(work, "data"),
                   env={"TPWALLET_SNAPSHOT_EVERY": "1000"})
    s.start()
    create(s, "accounts", [account(1), account(2), account(3)],
           ["created"] * 3)
    acked = {}
    for b in range(12):
        evs = [transfer(1000 + b * 100 + k, 1 + k % 2, 3, k + 1)
               for k in range(100)]
        create(s, "transfers", evs, ["created"] * 100)
        acked.update({e["id"]: (1 + k % 2, 3, k + 1)
                      for k, e in enumerate(evs)})
    s.stop()
    check(os.listdir(os.path.join(work, "data", "snapshots")),
          "no snapshot in the backed-up directory")
    shutil.copy2(os.path.join(work, "data.kek"),
                 os.path.join(work, "vault", "tpwallet-data.kek"))

    def run(script):
        # Only the paths the block names (after a space): the binary's
        # own path may hold "/backup/" too.
        script = script.replace(" /backup/", " " + work + "/backup/")
        script = script.replace(" /vault/", " " + work + "/vault/")
        p = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script],
                           cwd=work, capture_output=True, text=True,
                           timeout=60 * slow_factor())
        check_eq(p.returncode, 0, "the documented commands (stderr %r)"
                 % p.stderr[-600:])

    run(backup)
    # The section's check of the copy finds nothing to act on.
    run(doctor.replace("tpwallet ", "%s " % os.path.abspath(CONFIG["binary"]),
                       1))
    # After the backup: the server runs on and takes a write.
    s.start()
    create_one(s, "transfers", transfer(9999, 1, 2, 7), "created", 201)
    s.stop()
    run(restore)
    r = ctx.server(data_dir=os.path.join(work, "data"))
    r.start()
    check(get_transfer(r, 9999, missing_ok=True) is None,
          "a transfer written after the backup survived the restore")
    for aid in (1, 2, 3):
        a = get_account(r, aid)
        want_d = sum(v[2] for v in acked.values() if v[0] == aid)
        want_c = sum(v[2] for v in acked.values() if v[1] == aid)
        check_eq((int(a["debits_posted"]), int(a["credits_posted"])),
                 (want_d, want_c), "account %d after the restore" % aid)
    check(get_transfer(r, 2111, missing_ok=True) is not None,
          "the last transfer of the backup is missing")
    create_one(r, "transfers", transfer(9999, 1, 2, 7), "created", 201)
    r.stop()
