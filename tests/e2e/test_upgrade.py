"""test_upgrade.py - a release too old for its data refuses it by name,
never misreads it, and `tpwallet upgrade check` says so before anyone
tries (issue 21, items 1 and 3; docs/operations.md, "Upgrades and
rollbacks").

A newer release is played by records this one does not read, sealed
with a good checksum as a newer release would write them (a record
version 3; a command of a kind no row of this release has), and by a
stand-in binary whose `version --json` reads fewer formats (an older
release): the answers are this binary's, on real data directories.
"""

import json
import os
import stat
import struct

import journal
from harness import check, check_eq, e2e_test, run_cli
from ledger import account, create, create_one, transfer


def _served(ctx):
    """A stopped server's data directory holding accounts, a transfer
    and a command (a policy document), and the server (stopped)."""
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)], ["created"] * 2)
    create_one(s, "transfers", transfer(1, 1, 2, 7), "created", 201)
    s.stop()
    return s


def _append_like_last(data_dir, version=None, kind=None):
    """Append to the last segment a copy of its last record with the next
    seq (and a later timestamp), its version or its command kind changed,
    sealed with a good checksum: a whole record, as another release would
    write it.  Returns (the segment, its size before, the new seq)."""
    seg = journal.segments(data_dir)[-1]
    last = journal.read_segment(seg)[-1]
    with open(seg, "rb") as f:
        raw = bytearray(f.read()[last.offset:last.end])
    magic, crc, size, typ, ver, seq, ts = journal.HEADER.unpack_from(raw, 0)
    if kind is not None:
        # A command: a 16-byte command header (kind first), count 0, no
        # ext; the type says command (4).
        payload = struct.pack("<HHIII", kind, 0, 0, 0, 0)
        raw = bytearray(journal.HEADER.size) + payload
        size, typ = len(raw), 4
    journal.HEADER.pack_into(raw, 0, magic, 0, size, typ,
                             ver if version is None else version,
                             seq + 1, ts + 1)
    struct.pack_into("<I", raw, 4, journal.crc32c(bytes(raw[8:])))
    before = os.path.getsize(seg)
    journal.append_bytes(seg, bytes(raw))
    return seg, before, seq + 1


def _check_json(data_dir, *extra):
    p = run_cli(["upgrade", "check", "--data", data_dir, "--json"]
                + list(extra))
    out = json.loads(p.stdout)
    return p.returncode, out, {r["format"]: r for r in out["formats"]}


@e2e_test(timeout=60)
def test_upgrade_check_says_this_release_serves_what_it_wrote(ctx):
    s = _served(ctx)
    p = run_cli(["upgrade", "check", "--data", s.data_dir])
    check_eq(p.returncode, 0, "upgrade check: %s %s" % (p.stdout, p.stderr))
    check("can serve: yes" in p.stdout, "says yes: %r" % p.stdout)
    rc, out, rows = _check_json(s.data_dir)
    check_eq(rc, 0, "upgrade check --json exit status")
    check_eq(out["can_serve"], True, "can_serve")
    check_eq(out["last_seq"], len(journal.all_records(s.data_dir)),
             "the last seq read is the journal's")
    recs = journal.all_records(s.data_dir)
    check_eq(rows["journal_record"]["found"], [2], "record versions found")
    check_eq(rows["journal_type"]["found"], sorted({r.type for r in recs}),
             "record types found: the journal's, read from outside")
    check_eq(rows["command_kind"]["found"],
             sorted({struct.unpack_from("<H", r.payload)[0] for r in recs
                     if r.type == 4}), "command kinds found")
    v = json.loads(run_cli(["version", "--json"]).stdout)
    check_eq(v["formats"]["journal_record"], {"reads": [1, 2], "writes": 2},
             "version --json: journal record versions")
    check_eq(rows["command_kind"]["reads"], v["formats"]["command_kind"]
             ["reads"], "the kinds read are version --json's")
    check_eq(rows["key_file"]["found"], [1], "key file versions found")
    # A directory that is not there: 3; no --data: 2.
    check_eq(run_cli(["upgrade", "check", "--data",
                      ctx.path("none")]).returncode, 3, "missing DATA")
    check_eq(run_cli(["upgrade", "check"]).returncode, 2, "no --data")


@e2e_test(timeout=60)
def test_a_newer_record_version_is_refused_by_name_and_never_cut(ctx):
    s = _served(ctx)
    seg, before, seq = _append_like_last(s.data_dir, version=3)
    after = os.path.getsize(seg)
    served, exited, rc = s.start_expecting_refusal(10)
    check(served is None, "a server served a journal with a version-3 "
          "record")
    check(exited and rc != 0, "the server did not refuse: %r" % rc)
    log = s.log_text()
    check("record version 3" in log and "newer release" in log
          and "upgrade check" in log,
          "the refusal names the version and the way out: %r" % log[-800:])
    # Not cut as a torn tail: the record is still there, whole.
    check_eq(os.path.getsize(seg), after, "the segment after the refusal")
    check(after > before, "the record was appended")
    check_eq(journal.read_segment(seg)[-1].seq, seq, "the last record")
    rc, out, rows = _check_json(s.data_dir)
    check_eq(rc, 1, "upgrade check exit status")
    check_eq(out["can_serve"], False, "can_serve")
    check_eq(rows["journal_record"]["unread"], [3], "the version not read")
    p = run_cli(["upgrade", "check", "--data", s.data_dir])
    check("can serve: NO" in p.stdout and "NOT READ" in p.stdout,
          "the text names it: %r" % p.stdout)


@e2e_test(timeout=60)
def test_a_command_of_an_unknown_kind_is_refused_by_name(ctx):
    s = _served(ctx)
    _append_like_last(s.data_dir, kind=999)
    served, exited, rc = s.start_expecting_refusal(10)
    check(served is None and exited and rc != 0,
          "a server served a journal with a kind-999 command: %r" % rc)
    log = s.log_text()
    check("kind 999" in log and "does not know" in log,
          "the refusal names the kind: %r" % log[-800:])
    rc, out, rows = _check_json(s.data_dir)
    check_eq((rc, rows["command_kind"]["unread"]), (1, [999]),
             "upgrade check names kind 999")


def _stand_in(ctx, name, formats):
    """An executable that answers `version --json` as an older release
    would (formats None: one that does not list them)."""
    path = ctx.path(name)
    doc = {"version": "0.0.9", "commit": "0000000"}
    if formats is not None:
        doc["formats"] = formats
    with open(path, "w") as f:
        f.write("#!/bin/sh\n[ \"$1 $2\" = 'version --json' ] || exit 2\n"
                "cat <<'EOF'\n%s\nEOF\n" % json.dumps(doc))
    os.chmod(path, stat.S_IRWXU)
    return path


@e2e_test(timeout=60)
def test_upgrade_check_asks_another_binary_what_it_reads(ctx):
    s = _served(ctx)
    mine = json.loads(run_cli(["version", "--json"]).stdout)["formats"]
    # This release's own table, from outside: yes.
    same = _stand_in(ctx, "same", mine)
    rc, out, _ = _check_json(s.data_dir, "--binary", same)
    check_eq((rc, out["can_serve"], out["release"]), (0, True, "0.0.9"),
             "a binary reading what this one reads")
    # An older one that reads record version 1 only and no store: no,
    # naming version 2.
    older = dict(mine, journal_record={"reads": [1], "writes": 1})
    old = _stand_in(ctx, "old", older)
    rc, out, rows = _check_json(s.data_dir, "--binary", old)
    check_eq((rc, out["can_serve"]), (1, False), "an older binary")
    check_eq(rows["journal_record"]["unread"], [2], "version 2 not read")
    # A snapshot version it does not read does not block (skipped, the
    # journal replays): an older one that reads no snapshot at all.
    os.makedirs(os.path.join(s.data_dir, "snapshots"), exist_ok=True)
    with open(os.path.join(s.data_dir, "snapshots",
                           "snapshot-%020d.snap" % 1), "wb") as f:
        f.write(b"TPWSNAP1" + struct.pack("<II", 4, 64) + bytes(48))
    nosnap = _stand_in(ctx, "nosnap", dict(mine, snapshot={"reads": []}))
    rc, out, rows = _check_json(s.data_dir, "--binary", nosnap)
    check_eq((rc, rows["snapshot"]["unread"], rows["snapshot"]["blocks"]),
             (0, [4], False), "an unread snapshot does not block")
    p = run_cli(["upgrade", "check", "--data", s.data_dir, "--binary",
                 nosnap])
    check("skipped: the journal replays" in p.stdout,
          "the text says what happens instead: %r" % p.stdout)
    # One that does not list its formats: cannot tell (1), said.
    silent = _stand_in(ctx, "silent", None)
    p = run_cli(["upgrade", "check", "--data", s.data_dir, "--binary",
                 silent])
    check_eq(p.returncode, 1, "a binary that does not say")
    check("cannot tell" in p.stdout, "says it cannot tell: %r" % p.stdout)
    # One that cannot be run: 1, named.
    p = run_cli(["upgrade", "check", "--data", s.data_dir, "--binary",
                 ctx.path("nothing-here")])
    check_eq(p.returncode, 1, "a binary that is not there")
    check("could not be run" in p.stderr, "named: %r" % p.stderr)
