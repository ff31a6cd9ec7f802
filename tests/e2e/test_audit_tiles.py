"""test_audit_tiles.py - the audit tree's hashes as C2SP tlog-tiles hash
tiles: GET /v1/audit/tile/<L>/<N>[.p/<W>] answers full and partial tiles
whose hashes give the signed root and the server's own proofs (computed
here from the fetched tiles alone), with their cache headers and
refusals; a restart with the tiles intact rebuilds none of them (the
log says so), and a tile file corrupted or deleted is rebuilt at start
to the same tree."""

import json
import os
import time

from harness import (e2e_test, check, check_eq, slow_factor,
                     wait_checkpoint, wait_audit_size)
from ledger import account, transfer, create
import auditleaf
import base64


def b64(s):
    return base64.b64decode(s, validate=True)


def tile_path(level, index, width=0):
    """The tlog-tiles path of tile (level, index), written here from the
    spec: N in groups of three digits, all but the last x-prefixed."""
    groups = []
    while True:
        groups.append(index % 1000)
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    n = "/".join(["x%03d" % g for g in groups[:-1]] + ["%03d" % groups[-1]])
    p = "%d/%s" % (level, n)
    if width:
        p += ".p/%d" % width
    return "/v1/audit/tile/" + p


def fill(s, entries):
    """Accounts 1..4 (one entry), then single-transfer entries."""
    create(s, "accounts", [account(i) for i in range(1, 5)])
    for k in range(entries - 1):
        create(s, "transfers", [transfer(5000 + k, 1 + k % 4,
                                         1 + (k + 1) % 4, 1)])


def fetch_leaves(s, size):
    """Every leaf hash of the tree of `size`, from level-0 tiles only."""
    hashes = b""
    for n in range(size // 256):
        r = s.get(tile_path(0, n))
        check_eq(r.status, 200, "full tile 0/%d" % n)
        check_eq(len(r.body), 8192, "a full tile's bytes")
        hashes += r.body
    if size % 256:
        r = s.get(tile_path(0, size // 256, size % 256))
        check_eq(r.status, 200, "partial tile 0/%d.p/%d"
                 % (size // 256, size % 256))
        hashes += r.body
    return [hashes[32 * i:32 * i + 32] for i in range(size)]


def caught_up_lines(s):
    return [json.loads(line) for line in s.log_text().splitlines()
            if "audit tree caught up with the journal" in line]


def reopen_lines(s):
    return [json.loads(line) for line in s.log_text().splitlines()
            if "audit tree reopened from tiles" in line]


@e2e_test(timeout=120)
def test_tiles_give_the_signed_root_and_the_servers_proofs(ctx):
    s = ctx.start_server()
    fill(s, 300)
    text, size = wait_checkpoint(s, 300, cover_head=True)
    check(size >= 300, "checkpoint size %d" % size)
    root = b64(text.split("\n")[2])
    leaves = fetch_leaves(s, size)
    check_eq(auditleaf.mth(leaves), root,
             "the root computed from the fetched tiles is the signed one")

    # Level 1: hash 0 is the root of the first 256 leaves.
    r = s.get(tile_path(1, 0, size // 256))
    check_eq(r.status, 200, "level-1 partial tile")
    check_eq(r.body[:32], auditleaf.mth(leaves[:256]), "level-1 hash 0")

    # The server's proofs are those computed here from the tiles.
    for i in (0, 1, 255, 256, 257, size - 1):
        p = s.get("/v1/audit/proof/inclusion?index=%d&size=%d"
                  % (i, size)).json()
        mine = auditleaf.path(leaves, i)
        check_eq([b64(h) for h in p["proof"]], mine,
                 "inclusion proof of %d from the tiles" % i)
        check_eq(auditleaf.root_from_inclusion(i, size, leaves[i], mine),
                 root, "the proof of %d leads to the signed root" % i)
    e = s.get("/v1/audit/entries/200").json()
    check_eq(b64(e["leaf_hash"]), leaves[200], "entry 200's leaf")

    # Headers: a full tile never changes.
    full = s.get(tile_path(0, 0))
    check_eq(full.header("content-type"), "application/octet-stream",
             "content type")
    check_eq(full.header("cache-control"),
             "private, max-age=31536000, immutable", "full tile cache")
    part = s.get(tile_path(0, size // 256, 1))
    check_eq(part.status, 200, "a narrower partial tile")
    check_eq(part.body, leaves[256 * (size // 256)], "its one hash")
    check_eq(part.header("cache-control"), "private, max-age=3600",
             "partial tile cache")
    # A partial read of a full tile is its prefix.
    r = s.get(tile_path(0, 0, 3))
    check_eq(r.body, b"".join(leaves[:3]), "0/000.p/3")

    # Refusals.
    for bad in ("0/1", "0/x000/001", "01/000", "0/000.p/0", "0/000.p/256",
                "0/000.p/07", "entries/000", "0/000/"):
        r = s.get("/v1/audit/tile/" + bad)
        check_eq(r.status, 400, "tile path %r" % bad)
        check_eq(r.json()["type"], "/problems/invalid-id", bad)
    r = s.get(tile_path(0, size // 256))
    check_eq(r.status, 404, "the partial tile asked for as full")
    r = s.get(tile_path(0, size // 256, size % 256 + 1))
    check_eq(r.status, 404, "wider than the tree")
    r = s.get(tile_path(5, 0, 1))
    check_eq(r.status, 404, "a level the tree does not reach")
    anon = s.new_client(auth=None)
    check_eq(anon.get(tile_path(0, 0)).status, 401, "without a credential")
    check_eq(s.request("POST", tile_path(0, 0)).status, 405, "POST")
    m = s.get("/metrics").body.decode()
    check("tpwallet_audit_tile_cache_misses_total " in m, "cache metrics")


@e2e_test(timeout=180)
def test_restart_reopens_the_tiles_and_rebuilds_a_damaged_one(ctx):
    s = ctx.start_server()
    fill(s, 520)
    text, size = wait_checkpoint(s, 520, cover_head=True)
    root = b64(text.split("\n")[2])
    audit = os.path.join(s.data_dir, "audit")
    s.stop()
    check_eq(os.path.getsize(os.path.join(audit, "tiles-1")) // 32,
             os.path.getsize(os.path.join(audit, "leaves")) // 256 // 32,
             "tiles-1 holds a hash per 256 leaves")

    def restart_and_check(what, want_rebuilt, compared=None):
        before = len(reopen_lines(s))
        caught = len(caught_up_lines(s))
        s.start()
        wait_audit_size(s, size)
        deadline = time.monotonic() + 10 * slow_factor()
        while (len(caught_up_lines(s)) == caught
               and time.monotonic() < deadline):
            time.sleep(0.05)
        lines = reopen_lines(s)
        check_eq(len(lines), before + 1, "one reopen line (%s)" % what)
        done = caught_up_lines(s)
        check_eq(len(done), caught + 1, "one caught-up line (%s)" % what)
        if compared is not None:
            check_eq(int(done[-1]["compared_with_stored_leaves"]), compared,
                     "entries compared with the stored leaves (%s)" % what)
            check(int(done[-1]["leaves_appended"]) >= size - compared,
                  "leaves appended (%s): %r" % (what, done[-1]))
        got = int(lines[-1]["tile_hashes_rebuilt"])
        if want_rebuilt == 0:
            check_eq(got, 0, "tile hashes rebuilt (%s)" % what)
        else:
            check(got >= want_rebuilt, "tile hashes rebuilt (%s): %d"
                  % (what, got))
        r = s.get("/v1/audit/proof/consistency?from=%d&to=%d"
                  % (size, size))
        check_eq(b64(r.json()["from_root"]), root, "root (%s)" % what)
        check_eq(auditleaf.mth(fetch_leaves(s, size)), root,
                 "root from the tiles (%s)" % what)
        s.stop()

    restart_and_check("intact", 0, compared=size)

    # The last level-1 hash changed on disk: rebuilt from the leaves.
    t1 = os.path.join(audit, "tiles-1")
    with open(t1, "r+b") as f:
        f.seek(os.path.getsize(t1) - 5)
        b = f.read(1)
        f.seek(os.path.getsize(t1) - 5)
        f.write(bytes([b[0] ^ 0x20]))
    restart_and_check("tiles-1 corrupted", 1)

    os.unlink(t1)
    restart_and_check("tiles-1 deleted", size // 256)

    # The leaves gone too: the tree is rebuilt from the journal (and
    # tiles-1 with it, as leaves arrive), to the same root.
    os.unlink(os.path.join(audit, "leaves"))
    os.unlink(t1)
    restart_and_check("leaves and tiles-1 deleted", 0, compared=0)
