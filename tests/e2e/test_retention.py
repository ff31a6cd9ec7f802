"""test_retention.py - journal retention and an audit start-up that does
not grow with history (docs/operations.md, "Journal retention").

A server with the store, 64 KiB journal segments and an archive directory
moves sealed segments out of DATA/journal; after a clean restart and
after kill -9 it answers the same and its audit tree starts from its
files; entry 0 (seq 1) answers from the archive and, once the archive's
copy is gone, with the documented 410 problem while its inclusion proof
still answers.  Audit files that are short, corrupt, missing or of
another data directory are rebuilt from the journal (the log says why)
to the same tree head.  Without the store the setting is refused."""

import hashlib
import os
import re
import shutil
import struct
import time

import journal
from harness import (e2e_test, check, check_eq, slow_factor,
                     wait_audit_caught_up,
                     wait_checkpoint, run_cli)
from ledger import account, transfer, create, get_transfer, \
    account_transfers_all

SEGMENT = 65536
ACCOUNTS = list(range(1, 9))


def env_for(ctx, archive=True):
    env = {"TPWALLET_STORE": "1", "TPWALLET_CACHE_BYTES": str(1 << 20),
           "TPWALLET_JOURNAL_SEGMENT_BYTES": str(SEGMENT)}
    if archive:
        env["TPWALLET_JOURNAL_ARCHIVE_DIR"] = ctx.path("archive")
    return env


def metric(srv, series):
    r = srv.get("/metrics")
    check(r.status == 200, "GET /metrics: %r" % r)
    m = re.search(r"^%s (\d+)$" % re.escape(series), r.body.decode(), re.M)
    return int(m.group(1)) if m else None


def segments(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".wal"))


def batch(srv, first, n):
    create(srv, "transfers",
           [transfer(first + k, 1 + (first + k) % 8, 1 + (first + k + 3) % 8,
                     1 + k % 5) for k in range(n)], ["created"] * n)


def answers(srv, ids):
    out = {"head": srv.get("/v1/audit/head").json()}
    for i in ids[::37] + ids[-5:]:
        out["t%d" % i] = get_transfer(srv, i)
    for a in ACCOUNTS:
        out["a%d" % a] = srv.get("/v1/accounts/%d" % a).json()
        out["x%d" % a] = account_transfers_all(srv, a, limit=500)
    return out


def entry0(srv):
    return srv.get("/v1/audit/entries/0")


@e2e_test(timeout=240)
def test_retention_moves_sealed_segments_and_old_entries_still_answer(ctx):
    srv = ctx.server(env=env_for(ctx))
    srv.start()
    create(srv, "accounts", [account(i) for i in ACCOUNTS])
    first = entry0(srv)
    check_eq(first.status, 200, "entry 0 before retention")
    ids = []
    # 40 entries of 300 transfers (38 KiB each): about 20 segments.
    for b in range(40):
        batch(srv, 10000 + b * 300, 300)
        ids.extend(range(10000 + b * 300, 10000 + b * 300 + 300))
    # Segments move once the store's flush and DATA/audit/state cover
    # them; both follow new entries, so keep writing (bounded).
    archive = ctx.path("archive")
    jdir = os.path.join(srv.data_dir, "journal")
    deadline = time.monotonic() + 40 * slow_factor()
    k = 0
    while time.monotonic() < deadline:
        moved = metric(srv, "tpwallet_journal_archived_segments_total")
        if moved and moved >= 10:
            break
        create(srv, "transfers", [transfer(900000 + k, 1, 2, 1)])
        ids.append(900000 + k)
        k += 1
        time.sleep(0.2)
    moved = metric(srv, "tpwallet_journal_archived_segments_total")
    check(moved is not None and moved >= 10,
          "segments moved to the archive: %r" % moved)
    in_archive = segments(archive)
    check("%020d.wal" % 1 in in_archive, "segment 1 not in the archive: %r"
          % in_archive)
    check("%020d.wal" % 1 not in segments(jdir),
          "segment 1 still in DATA/journal")
    check_eq(metric(srv, 'tpwallet_journal_segments{place="archive"}'),
             len(in_archive), "archive segments metric")
    check_eq(metric(srv, 'tpwallet_journal_segments{place="data"}'),
             len(segments(jdir)), "data segments metric")
    check(srv.wait_log(r'"msg":"journal segments moved to the archive"')
          is not None, "no log line for the move")
    # Entry 0 now comes from the archive: the same bytes.
    r = entry0(srv)
    check_eq(r.status, 200, "entry 0 from the archive")
    check_eq(r.json()["entry"], first.json()["entry"], "entry 0's bytes")
    wait_checkpoint(srv, 1, cover_head=True)
    before = answers(srv, ids)
    size = int(before["head"]["size"])

    # A clean restart: the store and the audit files, no archive read.
    srv.stop()
    off = srv._log_size()
    srv.start()
    text = srv.wait_log(r'"msg":"audit tree loaded from its files"',
                        since=off)
    check(text is not None, "the audit tree did not start from its files")
    after = answers(srv, ids)
    for key in before:
        check_eq(after[key], before[key], "%s after a restart" % key)

    # kill -9, then again.
    srv.kill9()
    off = srv._log_size()
    srv.start()
    wait_audit_caught_up(srv, off)
    after = answers(srv, ids)
    for key in before:
        check_eq(after[key], before[key], "%s after kill -9" % key)
    check_eq(entry0(srv).status, 200, "entry 0 after kill -9")
    # doctor reads the journal through the archive and says what is where.
    r = run_cli(["doctor", "--data", srv.data_dir], env=env_for(ctx))
    m = re.search(r"journal retention: DATA/journal holds seq (\d+) on "
                  r"\((\d+) segments?, [^)]*\); archive (\S+): (\d+) "
                  r"segments?", r.stdout)
    check(m is not None, "doctor does not show retention: %s" % r.stdout)
    check_eq(m.group(3), archive, "doctor's archive directory")
    check_eq(int(m.group(2)), len(segments(jdir)), "doctor's data segments")
    check_eq(int(m.group(4)), len(segments(archive)),
             "doctor's archive segments")
    check_eq(int(m.group(1)), int(segments(jdir)[0][:-4]),
             "doctor's oldest retained seq")
    check(re.search(r"journal: \d+ records, last seq", r.stdout) is not None,
          "doctor did not read the whole journal: %s" % r.stdout)
    # So does `tpwallet audit check`, with the setting's environment form.
    r = run_cli(["audit", "check", srv.data_dir], env=env_for(ctx))
    check_eq(r.returncode, 0, "audit check through the archive: %s%s"
             % (r.stdout[-400:], r.stderr[-400:]))

    # A store that is gone is rebuilt from the journal: the archive's
    # segments, then DATA/journal's.
    srv.stop()
    shutil.rmtree(os.path.join(srv.data_dir, "store"))
    off = srv._log_size()
    srv.start()
    text = srv.wait_log(r'"msg":"recovered"', since=off) or ""
    m = re.search(r'"store_seq":0,"replayed_records":(\d+),"last_seq":(\d+)',
                  text)
    check(m is not None and m.group(1) == m.group(2),
          "the store was not rebuilt from every record: %s" % text)
    wait_audit_caught_up(srv, off)
    after = answers(srv, ids)
    for key in before:
        check_eq(after[key], before[key], "%s after a rebuild" % key)

    # The archive's copy gone: the documented problem, and the proof,
    # which needs no segment, still answers.
    os.unlink(os.path.join(archive, "%020d.wal" % 1))
    r = entry0(srv)
    check_eq(r.status, 410, "entry 0 without its segment")
    check_eq(r.json()["type"], "/problems/audit-entry-archived",
             "problem type")
    p = srv.get("/v1/audit/proof/inclusion?index=0&size=%d" % size)
    check_eq(p.status, 200, "inclusion proof of entry 0")
    # The first batch is in segment 1 too: its receipts say the same.
    check(int(segments(jdir)[0][:-4]) > 3, "entry 2 still in DATA/journal")
    r = srv.get("/v1/transfers/10000/receipt")
    check_eq(r.status, 410, "receipt of a transfer in segment 1")
    check_eq(r.json()["type"], "/problems/audit-entry-archived",
             "receipt problem type")
    # And start-up does not need it either.
    srv.stop()
    off = srv._log_size()
    srv.start()
    wait_audit_caught_up(srv, off)
    after = answers(srv, ids)
    for key in before:
        check_eq(after[key], before[key], "%s without segment 1" % key)
    srv.stop()
    # But a rebuild of the store does, and says so.
    shutil.rmtree(os.path.join(srv.data_dir, "store"))
    served, exited, rc = srv.start_expecting_refusal(10)
    check(served is None and exited, "started without segment 1")
    check_eq(rc, 65, "exit status (data)")
    check("records are missing (not in the archive directory %s either)"
          % archive in srv.log_text(),
          "no message naming the archive: %s" % srv.log_text()[-600:])


@e2e_test(timeout=120)
def test_retention_crash_mid_move_keeps_both_copies_usable(ctx):
    """A segment in both places (a crash between the archive's rename and
    the unlink) and a stale .tmp: the server starts, serves the same, and
    the next move leaves one copy."""
    srv = ctx.server(env=env_for(ctx))
    srv.start()
    create(srv, "accounts", [account(i) for i in ACCOUNTS])
    for b in range(12):
        batch(srv, 10000 + b * 300, 300)
    archive = ctx.path("archive")
    jdir = os.path.join(srv.data_dir, "journal")
    deadline = time.monotonic() + 40 * slow_factor()
    k = 0
    while time.monotonic() < deadline and not segments(archive):
        create(srv, "transfers", [transfer(900000 + k, 1, 2, 1)])
        k += 1
        time.sleep(0.2)
    check(segments(archive), "nothing moved")
    srv.kill9()
    # Moves go oldest first: a crash before the unlink leaves the newest
    # archived segment in both places; one during the next copy, a
    # partial .tmp of the oldest left in DATA/journal.
    name = segments(archive)[-1]
    nxt = segments(jdir)[0]
    shutil.copy(os.path.join(archive, name), os.path.join(jdir, name))
    with open(os.path.join(jdir, nxt), "rb") as f:
        half = f.read(1000)
    with open(os.path.join(archive, nxt + ".tmp"), "wb") as f:
        f.write(half)
    srv.start()
    check_eq(entry0(srv).status, 200, "entry 0 with both copies")
    check_eq(get_transfer(srv, 10000)["amount"], "1", "transfer 10000")
    deadline = time.monotonic() + 40 * slow_factor()
    while time.monotonic() < deadline and name in segments(jdir):
        create(srv, "transfers", [transfer(950000 + k, 1, 2, 1)])
        k += 1
        time.sleep(0.2)
    check(name not in segments(jdir), "the copy in DATA/journal stayed")
    check(name in segments(archive), "the archive lost the segment")
    srv.stop()


@e2e_test(timeout=60)
def test_retention_without_the_store_is_refused(ctx):
    env = env_for(ctx)
    env["TPWALLET_STORE"] = "0"
    srv = ctx.server(env=env)
    served, exited, rc = srv.start_expecting_refusal(10)
    check(served is None and exited, "the server started")
    check_eq(rc, 2, "exit status (usage)")
    check("journal_archive_dir needs store = 1" in srv.log_text(),
          "no clear message: %s" % srv.log_text()[-500:])


def rfc9162_root(hashes):
    """The Merkle tree hash (RFC 9162, 2.1.1) of leaf hashes."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc9162_root(hashes[:k]) +
                          rfc9162_root(hashes[k:])).digest()


def forge_leaf(audit, k):
    """What someone who can write DATA could do: change leaf k, recompute
    the level-1 tiles over it and the head, and write audit/state with
    its CRC-32C (format: src/log/auditstate.h), so that every check of
    the files against themselves passes."""
    with open(os.path.join(audit, "state"), "rb") as f:
        st = f.read()
    n = struct.unpack_from("<Q", st, 16)[0]
    with open(os.path.join(audit, "leaves"), "rb") as f:
        raw = bytearray(f.read())
    leaves = [bytes(raw[32 * i:32 * i + 32]) for i in range(len(raw) // 32)]
    check_eq(rfc9162_root(leaves[:n]), st[24:56], "state's head")
    leaves[k] = hashlib.sha256(b"\x00forged entry").digest()
    raw[32 * k:32 * k + 32] = leaves[k]
    with open(os.path.join(audit, "leaves"), "wb") as f:
        f.write(raw)
    check(len(leaves) < 256 * 256, "forge_leaf redoes tiles-1 only")
    with open(os.path.join(audit, "tiles-1"), "wb") as f:
        f.write(b"".join(rfc9162_root(leaves[256 * j:256 * j + 256])
                         for j in range(len(leaves) // 256)))
    body = st[:24] + rfc9162_root(leaves[:n]) + st[56:92]
    with open(os.path.join(audit, "state"), "wb") as f:
        f.write(body + struct.pack("<I", journal.crc32c(body)))


def flip(path, at):
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x40]))


@e2e_test(timeout=240)
def test_audit_files_short_corrupt_missing_or_foreign_are_rebuilt(ctx):
    # With the store a clean restart replays no journal record, so every
    # entry may come from the audit files (without it, the records the
    # engine replays are compared with their leaves: docs/audit.md).
    srv = ctx.server(env=env_for(ctx, archive=False))
    srv.start()
    create(srv, "accounts", [account(i) for i in ACCOUNTS])
    for k in range(300):
        create(srv, "transfers", [transfer(5000 + k, 1 + k % 8,
                                           1 + (k + 1) % 8, 1)])
    wait_checkpoint(srv, 301, cover_head=True)
    head = srv.get("/v1/audit/head").json()
    e5 = srv.get("/v1/audit/entries/5").json()
    srv.stop()
    audit = os.path.join(srv.data_dir, "audit")

    other = ctx.server()
    other.start()
    create(other, "accounts", [account(i) for i in range(1, 400)])
    for k in range(40):
        create(other, "transfers", [transfer(7000 + k, 1, 2, 1)])
    other.stop()
    other_audit = os.path.join(other.data_dir, "audit")

    def positions_flip():
        flip(os.path.join(audit, "positions"), 32 * 7 + 3)

    def leaves_short():
        with open(os.path.join(audit, "leaves"), "r+b") as f:
            f.truncate(32 * 100)

    def state_missing():
        os.unlink(os.path.join(audit, "state"))

    def state_flip():
        flip(os.path.join(audit, "state"), 20)

    def tail_leaf_flip():
        # A leaf of the partial tile: its level-1 hash is rebuilt from
        # it at open, so the recomputed head differs from the state's.
        flip(os.path.join(audit, "leaves"), 32 * 260 + 1)

    def foreign():
        for n in ("leaves", "tiles-1", "tiles-2", "tiles-3", "tiles-4",
                  "positions", "state"):
            shutil.copy(os.path.join(other_audit, n),
                        os.path.join(audit, n))

    def rewritten_with_checksums():
        forge_leaf(audit, 10)

    cases = [(rewritten_with_checksums,
              "changed: the tree at the newest signed checkpoint's size"),
             (positions_flip, "audit/positions does not match"),
             (leaves_short, "short: audit/leaves"),
             (state_missing, "audit/state is missing"),
             (state_flip, "corrupt: audit/state"),
             (tail_leaf_flip, "tree head recomputed from the tiles"),
             (foreign, "foreign")]
    for damage, reason in cases:
        damage()
        off = srv._log_size()
        srv.start()
        text = srv.wait_log(r'"msg":"audit files not trusted', since=off)
        check(text is not None and reason in text,
              "%s: not rebuilt, or another reason: %s"
              % (damage.__name__, text))
        check(srv.wait_log(r'"msg":"audit tree caught up with the journal"',
                           since=off) is not None,
              "%s: no catch-up line" % damage.__name__)
        wait_checkpoint(srv, int(head["size"]))
        got = srv.get("/v1/audit/head").json()
        check_eq(got["size"], head["size"], "%s: size" % damage.__name__)
        check_eq(got["root"], head["root"], "%s: head" % damage.__name__)
        check_eq(srv.get("/v1/audit/entries/5").json(), e5,
                 "%s: entry 5" % damage.__name__)
        srv.stop()
        # The files written back at the stop are trusted again.
        off = srv._log_size()
        srv.start()
        check(srv.wait_log(r'"msg":"audit tree loaded from its files"',
                           since=off) is not None,
              "%s: the rebuilt files are not loaded" % damage.__name__)
        srv.stop()


@e2e_test(timeout=60)
def test_an_archive_directory_others_can_write_is_refused(ctx):
    """The archive holds history the audit routes serve: like
    DATA/journal, a directory or segment others can write is refused at
    start (exit 65) and named by doctor."""
    env = env_for(ctx)
    arch = env["TPWALLET_JOURNAL_ARCHIVE_DIR"]
    os.makedirs(arch, mode=0o700, exist_ok=True)
    srv = ctx.server(env=env)
    srv.start()
    srv.stop()
    for mode_dir, planted in ((0o777, None), (0o700, 0o666)):
        os.chmod(arch, mode_dir)
        seg = os.path.join(arch, "00000000000000000001.wal")
        if planted is not None:
            with open(seg, "wb") as f:
                f.write(b"x")
            os.chmod(seg, planted)
        served, exited, rc = srv.start_expecting_refusal(10)
        check(served is None and exited, "served with %o" % mode_dir)
        check_eq(rc, 65, "exit status")
        check("group or others can write it" in srv.log_text(),
              "no clear message: %s" % srv.log_text()[-400:])
        r = run_cli(["doctor", "--data", srv.data_dir], env=env)
        check(re.search(r"^action  journal retention: .*group or others "
                        r"can write it", r.stdout, re.M) is not None,
              "doctor: %s" % r.stdout)
        if planted is not None:
            os.unlink(seg)
    os.chmod(arch, 0o700)
    # Owned by another user, or in a parent others can write (they could
    # rename it away and put their own in its place): refused too.
    parent = os.path.dirname(arch)
    mode = os.stat(parent).st_mode & 0o7777
    for setup, undo, words in (
            (lambda: os.chown(arch, 65534, 65534),
             lambda: os.chown(arch, os.geteuid(), os.getegid()),
             "is owned by uid 65534"),
            (lambda: os.chmod(parent, 0o777),
             lambda: os.chmod(parent, mode),
             "group or others can rename it")):
        setup()
        try:
            served, exited, rc = srv.start_expecting_refusal(10)
            check(served is None and exited and rc == 65,
                  "%s: served or exit %r" % (words, rc))
            check(words in srv.log_text(),
                  "no clear message: %s" % srv.log_text()[-400:])
        finally:
            undo()
    srv.start()
    srv.stop()
