"""test_backup.py - backup, verify, point-in-time restore and the drill
(issue 14, docs/operations.md "Backups"): backups taken while the server
serves restore, after the data directory is gone, to an entry in the
middle, to a time and to the newest point with the state digests the
original had there; one changed byte in the location is named by verify
and refused by restore; the drill ends green with its figures; a
non-empty target, a wrong key, a key file others can read and another
server's backup in the chain are each refused by name."""

import json
import os
import re
import shutil
import time

from harness import e2e_test, check, check_eq, run_cli
from ledger import account, transfer, create, get_account

ENV = {"TPWALLET_STORE": "1", "TPWALLET_CACHE_BYTES": str(1 << 20)}
FLUSH_WAIT_S = 30


def metric(srv, name):
    r = srv.get("/metrics")
    check(r.status == 200, "GET /metrics: %r" % r)
    m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
    check(m is not None, "/metrics has no %s" % name)
    return int(m.group(1))


def write_transfers(srv, first, batches, per=50):
    for b in range(batches):
        evs = [transfer(first + b * per + k, 1 + k % 3, 4, 1 + k % 7)
               for k in range(per)]
        create(srv, "transfers", evs, ["created"] * per)


def wait_store_flushed(srv):
    """The store flushes every 5 s while it commits: wait until it holds
    the whole journal, so the next backup starts from a store
    checkpoint."""
    want = metric(srv, "tpwallet_store_committed_seq")
    deadline = time.monotonic() + FLUSH_WAIT_S
    while metric(srv, "tpwallet_store_flushed_seq") < want:
        check(time.monotonic() < deadline,
              "the store was not flushed to %d within %ds"
              % (want, FLUSH_WAIT_S))
        time.sleep(0.2)
    return want


def keygen(ctx, name="backup.key"):
    path = ctx.path(name)
    p = run_cli(["backup", "keygen", "--out", path])
    check_eq(p.returncode, 0, "backup keygen (stderr %r)" % p.stderr)
    check_eq(os.stat(path).st_mode & 0o777, 0o600, "the key file's mode")
    return path


def backup(srv, loc, key, expect=0):
    p = run_cli(["backup", "--data", srv.data_dir, "--to", loc,
                 "--key-file", key], timeout=60)
    check_eq(p.returncode, expect, "backup (stdout %r, stderr %r)"
             % (p.stdout, p.stderr[-600:]))
    return p


def listing(loc):
    p = run_cli(["backup", "list", "--from", loc, "--json"])
    check_eq(p.returncode, 0, "backup list (stderr %r)" % p.stderr)
    return [json.loads(line) for line in p.stdout.splitlines()]


def restore(loc, key, data, *extra, expect=0):
    p = run_cli(["restore", "--from", loc, "--key-file", key, "--data",
                 data, "--json"] + list(extra), timeout=120)
    check_eq(p.returncode, expect, "restore %s (stdout %r, stderr %r)"
             % (" ".join(extra), p.stdout, p.stderr[-800:]))
    return json.loads(p.stdout) if expect == 0 else p


def prefix_digests(data):
    """The state digest after every entry of DATA's journal."""
    p = run_cli(["recover", "--digests", data], timeout=120)
    check_eq(p.returncode, 0, "recover --digests (stderr %r)" % p.stderr)
    return {d["seq"]: d["digest"] for d in
            (json.loads(line) for line in p.stdout.splitlines())}


def rfc3339_ns(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) \
        + ".%09dZ" % (ns % 10**9)


def started_with_accounts(ctx, batches):
    """A server (store = 1) with accounts 1..4 and batches of transfers."""
    srv = ctx.server(env=ENV)
    srv.start()
    create(srv, "accounts", [account(i) for i in (1, 2, 3, 4)],
           ["created"] * 4)
    write_transfers(srv, 1000, batches)
    return srv


def served(ctx, srv, loc, key):
    """Two backups of srv (the second from a flushed store) with writes
    between and after them; returns the two listings."""
    backup(srv, loc, key)
    write_transfers(srv, 5000, 6)
    wait_store_flushed(srv)
    backup(srv, loc, key)
    write_transfers(srv, 9000, 2)  # after the last backup: not restored
    got = listing(loc)
    check_eq(len(got), 2, "backups listed")
    return got


@e2e_test(timeout=240)
def test_backup_restores_to_an_index_a_time_and_the_newest_point_with_equal_digests_and_drills_green(ctx):
    loc, key = ctx.path("loc"), keygen(ctx)
    srv = started_with_accounts(ctx, 6)
    first, second = served(ctx, srv, loc, key)
    check_eq(second["base"], "store", "the second backup's base")
    check(second["base_seq"] > first["last_seq"],
          "the second backup starts from a store checkpoint past the "
          "first (%r, %r)" % (first, second))
    srv.stop()
    digests = prefix_digests(srv.data_dir)
    # The disaster: the data directory is gone.
    shutil.rmtree(srv.data_dir)

    p = run_cli(["backup", "verify", "--from", loc, "--key-file", key],
                timeout=120)
    check_eq(p.returncode, 0, "verify (stdout %r)" % p.stdout)
    check("newest restorable point: entry %d" % second["last_seq"]
          in p.stdout, "verify names the newest point: %r" % p.stdout)

    # An entry in the middle: below the second backup's store checkpoint,
    # so the first backup (replaying from its start) serves it.
    mid = (first["base_seq"] + first["last_seq"]) // 2
    check(mid >= 1, "first backup: %r" % first)
    r = restore(loc, key, ctx.path("mid"), "--to-index", str(mid))
    check_eq((r["seq"], r["digest"]), (mid, digests[mid]),
             "restored to entry %d" % mid)
    check_eq(r["backup"], first["id"], "the backup used for entry %d" % mid)

    # A time: the first backup's last entry's.
    r = restore(loc, key, ctx.path("at-time"), "--to-time",
                rfc3339_ns(first["last_time_ns"]))
    check_eq((r["seq"], r["digest"]),
             (first["last_seq"], digests[first["last_seq"]]),
             "restored to the first backup's time")

    # The newest point: from the store checkpoint, replaying only after it.
    newest = second["last_seq"]
    r = restore(loc, key, ctx.path("new"))
    check_eq((r["seq"], r["digest"], r["backup"]),
             (newest, digests[newest], second["id"]), "restored newest")
    check_eq(r["replayed"], newest - second["base_seq"],
             "entries replayed after the store checkpoint")
    # It serves, with the balances of entry `newest`.
    back = ctx.server(data_dir=ctx.path("new"), env=ENV)
    back.start()
    a4 = get_account(back, 4)
    want = sum(1 + k % 7 for k in range(50)) * 12
    check_eq(int(a4["credits_posted"]), want, "account 4 after the restore")

    # The drill, against the restored server as the live one.
    p = run_cli(["drill", "--from", loc, "--key-file", key, "--live",
                 "http://127.0.0.1:%d" % back.port, "--token-file",
                 os.path.join(back.data_dir, "admin.token"),
                 "--rto-objective-s", "120", "--rpo-objective-entries",
                 "100", "--json"], timeout=180)
    check_eq(p.returncode, 0, "drill (stdout %r, stderr %r)"
             % (p.stdout, p.stderr[-800:]))
    d = json.loads(p.stdout)
    check(d["ok"] is True and d["serving"] is True and
          d["mismatches"] == 0, "drill: %r" % d)
    check(0 < d["rto_s"] < 120, "drill RTO: %r" % d["rto_s"])
    check(d["sampled_transfers"] > 0 and d["sampled_accounts"] > 0,
          "drill sampled nothing: %r" % d)
    check(d["rpo_entries"] is not None and d["live_seq"] >= newest,
          "drill RPO: %r" % d)
    ctx.note("drill: RTO %.3f s, RPO %d entries" % (d["rto_s"],
                                                    d["rpo_entries"]))
    # The live server moves on: an RPO objective of 0 entries is missed,
    # exit 1 with the figures printed.
    write_transfers(back, 20000, 1)
    deadline = time.monotonic() + 10
    while back.get("/v1/cluster").json()["digest_seq"] <= newest + 1:
        check(time.monotonic() < deadline, "digest_seq did not move on")
        time.sleep(0.2)
    p = run_cli(["drill", "--from", loc, "--key-file", key, "--live",
                 "http://127.0.0.1:%d" % back.port, "--token-file",
                 os.path.join(back.data_dir, "admin.token"),
                 "--rpo-objective-entries", "0"], timeout=180)
    check_eq(p.returncode, 1, "drill over its RPO objective")
    check(re.search(r"RPO \d+ entries.*OVER objective", p.stdout)
          and "RTO" in p.stdout and "drill: FAILED" in p.stdout,
          "drill prints its figures: %r" % p.stdout)
    back.stop()

    # One changed byte in the location: verify names the file, restore
    # refuses and leaves nothing.
    seg = os.path.join(loc, second["id"], "journal",
                       "%020d.wal" % 1)
    with open(seg, "r+b") as f:
        f.seek(os.path.getsize(seg) // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x20]))
    p = run_cli(["backup", "verify", "--from", loc, "--key-file", key],
                timeout=120)
    check_eq(p.returncode, 1, "verify of a changed byte")
    check("%s/journal/%020d.wal: SHA-256 differs" % (second["id"], 1)
          in p.stdout, "verify names the segment: %r" % p.stdout)
    p = restore(loc, key, ctx.path("broken"), expect=1)
    check("journal/%020d.wal" % 1 in p.stdout,
          "restore names the segment: %r" % p.stdout)
    check(not os.path.exists(ctx.path("broken")),
          "a refused restore left the data directory")
    check(not [n for n in os.listdir(ctx.dir) if n.startswith("broken")],
          "a refused restore left its temporary directory")


@e2e_test(timeout=120)
def test_restore_refuses_a_non_empty_directory_a_wrong_key_and_an_unrestorable_entry(ctx):
    loc, key = ctx.path("loc"), keygen(ctx)
    other = keygen(ctx, "other.key")
    srv = started_with_accounts(ctx, 3)
    backup(srv, loc, key)
    got = listing(loc)[0]
    srv.stop()

    full = ctx.path("full")
    os.makedirs(full)
    with open(os.path.join(full, "keep"), "w") as f:
        f.write("mine\n")
    p = restore(loc, key, full, expect=1)
    check("not an empty directory" in p.stderr, "refusal: %r" % p.stderr)
    check_eq(os.listdir(full), ["keep"], "the non-empty directory")

    p = run_cli(["backup", "verify", "--from", loc, "--key-file", other])
    check_eq(p.returncode, 1, "verify with another key")
    check("made with another key" in p.stdout, "names the key: %r"
          % p.stdout)
    restore(loc, other, ctx.path("wrong"), expect=1)
    check(not os.path.exists(ctx.path("wrong")), "restored with a wrong key")

    p = restore(loc, key, ctx.path("late"), "--to-index",
                str(got["last_seq"] + 1), expect=1)
    check("newest restorable point, entry %d" % got["last_seq"] in p.stderr,
          "names the newest point: %r" % p.stderr)

    os.chmod(key, 0o644)
    p = run_cli(["backup", "verify", "--from", loc, "--key-file", key])
    check_eq(p.returncode, 2, "a key file others can read")
    check("chmod 600" in p.stderr, "says the fix: %r" % p.stderr)
    os.chmod(key, 0o600)

    # An interrupted backup (no manifest) is listed as such and skipped.
    os.makedirs(os.path.join(loc, "20990101T000000000Z-00000000", "journal"))
    rows = listing(loc)
    check_eq([r["complete"] for r in rows], [True, False], "listing")
    os.makedirs(ctx.path("ok"))  # an empty directory, named with a "/"
    r = restore(loc, key, ctx.path("ok") + "/")
    check_eq(r["seq"], got["last_seq"], "restore beside an interrupted one")
    check(os.path.exists(ctx.path("ok", "tpwallet.data")),
          "the restore is not in the directory named")


@e2e_test(timeout=120)
def test_verify_names_another_servers_backup_and_a_deleted_one_in_the_chain(ctx):
    loc, key = ctx.path("loc"), keygen(ctx)
    a = started_with_accounts(ctx, 2)
    backup(a, loc, key)
    write_transfers(a, 3000, 2)
    backup(a, loc, key)
    b = ctx.server(env=ENV)
    b.start()
    create(b, "accounts", [account(i) for i in (7, 8)], ["created"] * 2)
    # backup refuses to add another server's backup to the location...
    p = backup(b, loc, key, expect=1)
    check("another server" in p.stderr, "refusal: %r" % p.stderr)
    # ...and verify names one put there by other means.
    backup(b, ctx.path("loc-b"), key)
    (bid,) = os.listdir(ctx.path("loc-b"))
    shutil.copytree(os.path.join(ctx.path("loc-b"), bid),
                    os.path.join(loc, bid))
    p = run_cli(["backup", "verify", "--from", loc, "--key-file", key],
                timeout=60)
    check_eq(p.returncode, 1, "verify of a mixed location")
    check("%s: a backup of another server" % bid in p.stdout,
          "names the foreign backup: %r" % p.stdout)
    shutil.rmtree(os.path.join(loc, bid))
    # The oldest backup deleted: the chain says so.
    oldest = listing(loc)[0]["id"]
    shutil.rmtree(os.path.join(loc, oldest))
    p = run_cli(["backup", "verify", "--from", loc, "--key-file", key],
                timeout=60)
    check_eq(p.returncode, 1, "verify after a deletion")
    check("no longer holds (deleted?)" in p.stdout,
          "names the deletion: %r" % p.stdout)
    a.stop()
    b.stop()


def restored_digest_is_the_originals(ctx, srv, loc, key, name, env=None,
                                     *extra):
    """Restore LOC into ctx/name (with extra options); its seq and digest
    are the original's there (recover --digests of srv's directory, with
    env for the settings recovery reads)."""
    r = restore(loc, key, ctx.path(name), *extra)
    p = run_cli(["recover", "--digests", srv.data_dir], timeout=120,
                env=env)
    check_eq(p.returncode, 0, "recover --digests (stderr %r)" % p.stderr)
    digests = {d["seq"]: d["digest"] for d in
               (json.loads(line) for line in p.stdout.splitlines())}
    check_eq(r["digest"], digests[r["seq"]], "digest at entry %d" % r["seq"])
    return r


@e2e_test(timeout=180)
def test_backup_takes_archived_segments_and_a_snapshot_when_there_is_no_store(ctx):
    key = keygen(ctx)
    # Journal retention: small segments, the sealed ones moved out.
    archive = ctx.path("archive")
    os.makedirs(archive, mode=0o700)
    env = dict(ENV, TPWALLET_JOURNAL_SEGMENT_BYTES=str(65536),
               TPWALLET_JOURNAL_ARCHIVE_DIR=archive)
    srv = ctx.server(env=env)
    srv.start()
    create(srv, "accounts", [account(i) for i in (1, 2, 3, 4)],
           ["created"] * 4)
    write_transfers(srv, 1000, 60)
    wait_store_flushed(srv)
    # Segments move after a checkpoint signed once the store is flushed
    # past them: a write after the flush brings one.
    deadline = time.monotonic() + FLUSH_WAIT_S
    k = 0
    while not [n for n in os.listdir(archive) if n.endswith(".wal")]:
        check(time.monotonic() < deadline, "no segment was archived")
        write_transfers(srv, 100000 + 100 * k, 1, per=1)
        k += 1
        time.sleep(0.5)
    loc = ctx.path("loc")
    p = run_cli(["backup", "--data", srv.data_dir, "--to", loc,
                 "--key-file", key, "--archive-dir", archive], timeout=60)
    check_eq(p.returncode, 0, "backup with an archive (%r)" % p.stderr)
    (got,) = listing(loc)
    segs = os.listdir(os.path.join(loc, got["id"], "journal"))
    check(len(segs) >= 3, "journal segments in the backup: %r" % segs)
    srv.stop()
    r = restored_digest_is_the_originals(ctx, srv, loc, key, "r1", env)
    check_eq(r["seq"], got["last_seq"], "restored entry")
    # The restored directory holds every segment itself.
    check_eq(sorted(os.listdir(os.path.join(ctx.path("r1"), "journal"))),
             sorted(segs), "the restored journal")

    # Without the store: the newest snapshot is the base.
    plain = ctx.server(env={"TPWALLET_SNAPSHOT_EVERY": "1000"})
    plain.start()
    create(plain, "accounts", [account(i) for i in (1, 2, 3, 4)],
           ["created"] * 4)
    write_transfers(plain, 1000, 30)
    deadline = time.monotonic() + FLUSH_WAIT_S
    while not os.listdir(os.path.join(plain.data_dir, "snapshots")):
        check(time.monotonic() < deadline, "no snapshot written")
        time.sleep(0.2)
    loc2 = ctx.path("loc2")
    backup(plain, loc2, key)
    (got,) = listing(loc2)
    check_eq(got["base"], "snapshot", "the base without a store")
    check(0 < got["base_seq"] < got["last_seq"], "listing: %r" % got)
    plain.stop()
    r = restored_digest_is_the_originals(ctx, plain, loc2, key, "r2", None,
                                         "--to-index",
                                         str(got["base_seq"] + 1))
    check_eq((r["base"], r["replayed"]), ("snapshot", 1),
             "restored from the snapshot")
    r = restored_digest_is_the_originals(ctx, plain, loc2, key, "r3")
    check_eq(r["seq"], got["last_seq"], "the newest point")
