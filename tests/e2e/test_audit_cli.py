"""test_audit_cli.py - `tpwallet audit` against a real server's output.

verify-inclusion accepts a genuine receipt and refuses each way of
tampering with one, naming the check; verify-consistency accepts two
checkpoints taken before and after more writes and refuses them swapped
or with a faked root; `audit check` finds a journal changed on disk (one
byte with its CRC-32C fixed up, a record removed, two swapped, one
inserted: seqs renumbered and CRCs rewritten so the journal still
opens) and names the entry, or the range between two signed checkpoints
when the stored leaf hashes are not there to narrow it down.
"""

import base64
import hashlib
import json
import os
import re
import shutil

from harness import e2e_test, check, check_eq, run_cli, TestFailure
import harness
from ledger import account, transfer, create
import journal
import auditleaf



def b64(s):
    return base64.b64decode(s, validate=True)


def b64e(b):
    return base64.b64encode(b).decode()


def leaf_hash(data):
    """The leaf rule the record's version names (auditleaf.py)."""
    return auditleaf.leaf_hash(data)


def head(s):
    return s.get("/v1/audit/head").json()


def wait_checkpoint(s, min_size):
    """The newest signed checkpoint once it covers the head (and at least
    min_size entries): its text and size."""
    return harness.wait_checkpoint(s, min_size, cover_head=True)


def verifier_key(s):
    """GET /v1/audit/key."""
    r = s.get("/v1/audit/key")
    check_eq(r.status, 200, "GET /v1/audit/key")
    return r.body.decode().rstrip("\n")


def note_key(origin, pub):
    kid = hashlib.sha256(origin.encode() + b"\n\x01" + pub).digest()[:4]
    return "%s+%s+%s" % (origin, kid.hex(), b64e(b"\x01" + pub))


def receipt(s, transfer_id, cp_text, cp_size):
    """GET /v1/transfers/{id}/receipt (cp_text and cp_size: the checkpoint
    the caller waited for; the receipt must be against one at least as
    large)."""
    r = s.get("/v1/transfers/%d/receipt" % transfer_id)
    check_eq(r.status, 200, "GET /v1/transfers/%d/receipt" % transfer_id)
    rc = r.json()
    check(int(rc["size"]) >= cp_size, "receipt against size %s < %d"
          % (rc["size"], cp_size))
    return rc


def audit(ctx, *args):
    return run_cli(["audit"] + list(args), timeout=60)


def expect_refused(ctx, name, args, words):
    r = audit(ctx, *args)
    out = r.stdout + r.stderr
    check(r.returncode == 1, "%s: expected exit 1, got %d: %s"
          % (name, r.returncode, out.strip()))
    check("FAILED" in r.stdout and re.search(words, out),
          "%s: the refusal does not name the check (%r): %s"
          % (name, words, out.strip()))


def write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


@e2e_test(timeout=90)
def test_audit_cli_verifies_a_receipt_and_refuses_each_tampering(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2), account(3)])
    create(s, "transfers", [transfer(11, 1, 2, 5)])
    create(s, "transfers", [transfer(21, 1, 2, 7), transfer(22, 2, 3, 1),
                            transfer(23, 3, 1, 2)])
    create(s, "transfers", [transfer(31, 2, 1, 9)])
    cp_text, cp_size = wait_checkpoint(s, 4)
    key = verifier_key(s)
    rc = receipt(s, 22, cp_text, cp_size)
    index = int(rc["index"])
    cp_size = int(rc["size"])  # the checkpoint the receipt carries
    origin = cp_text.split("\n")[0]

    good = write(ctx.path("receipt.json"), json.dumps(rc))
    keyfile = write(ctx.path("key.txt"), key + "\n")
    for k in (key, "@" + keyfile):
        r = audit(ctx, "verify-inclusion", "--receipt", good, "--key", k)
        check_eq(r.returncode, 0, "genuine receipt (%s): %s"
                 % (k[:1], r.stdout + r.stderr))
        want = ("event 1 (id 22) of entry %d (seq %d, create_transfers, "
                "3 events) is in %s at size %d"
                % (index, index + 1, origin, cp_size))
        check(want in r.stdout, "verdict %r, want %r" % (r.stdout, want))

    def tampered(name, change, words, key_arg=key):
        bad = json.loads(json.dumps(rc))
        change(bad)
        path = write(ctx.path("receipt-%s.json" % name), json.dumps(bad))
        expect_refused(ctx, name, ["verify-inclusion", "--receipt", path,
                                   "--key", key_arg], words)

    def flip_event(b):
        e = bytearray(b64(b["event"]))
        e[40] ^= 1  # the event's amount
        b["event"] = b64e(bytes(e))

    def flip_event_and_chunk(b):
        flip_event(b)
        b["chunk"][int(b["event_index"]) % 32] = b64e(
            auditleaf.event_hash(b64(b["event"])))

    def flip_sibling(b):
        h = bytearray(b64(b["chunk"][0]))
        h[3] ^= 1
        b["chunk"][0] = b64e(bytes(h))

    def flip_header(b):
        h = bytearray(b64(b["header"]))
        h[24] ^= 1  # the timestamp
        b["header"] = b64e(bytes(h))

    def flip_proof(b):
        check(b["proof"], "the receipt's proof is empty")
        h = bytearray(b64(b["proof"][0]))
        h[0] ^= 0x80
        b["proof"][0] = b64e(bytes(h))

    def flip_sig(b):
        text, sig = b["checkpoint"].rsplit(" ", 1)
        raw = bytearray(b64(sig.strip()))
        raw[10] ^= 1  # inside the Ed25519 signature, after the key id
        b["checkpoint"] = text + " " + b64e(bytes(raw)) + "\n"

    def other_index(b):
        b["index"] = str((index + 1) % cp_size)

    def other_size(b):
        b["size"] = str(cp_size + 1)

    tampered("event-byte", flip_event, r"event: its hash is not")
    tampered("event-byte-and-chunk", flip_event_and_chunk, r"leaf_hash")
    tampered("sibling-hash", flip_sibling, r"leaf_hash")
    tampered("header-byte", flip_header, r"leaf_hash")
    tampered("chunk-short", lambda b: b["chunk"].pop(),
             r"event: |\"chunk\"")
    tampered("event-index", lambda b: b.update(event_index="0"),
             r"event: its hash is not")
    tampered("version-1-header",
             lambda b: b.update(header=b64e(b64(b["header"])[:14] + b"\x01\x00"
                                            + b64(b["header"])[16:])),
             r"header: version 1")
    tampered("proof-hash", flip_proof, r"inclusion proof: root_mismatch")
    tampered("index", other_index, r"header: its seq|inclusion proof")
    tampered("size", other_size, r"size: the receipt says")
    tampered("signature", flip_sig, r"checkpoint signature: invalid_sig")
    tampered("root", lambda b: b.update(root=b64e(b"\x01" * 32)),
             r"root: ")
    tampered("unknown-member", lambda b: b.update(extra="1"),
             r"unknown member \"extra\"")
    tampered("missing-proof", lambda b: b.pop("proof"),
             r"member \"proof\" missing")
    tampered("non-canonical-size", lambda b: b.update(size="0%d" % cp_size),
             r"canonical decimal")
    tampered("number-size", lambda b: b.update(size=cp_size),
             r"canonical decimal")
    # A key of the same name that did not sign: no verifiable signature.
    wrong = note_key(origin, hashlib.sha256(b"not the key").digest())
    tampered("wrong-key", lambda b: None, r"no_verifiable_signature",
             key_arg=wrong)
    # Several keys of the log, one per line (as GET /v1/audit/key lists
    # them after a rotation): the one that signed verifies.
    both = write(ctx.path("keys.txt"), wrong + "\n" + key + "\n")
    r = audit(ctx, "verify-inclusion", "--receipt", good, "--key",
              "@" + both)
    check_eq(r.returncode, 0, "key file of two keys: %s"
             % (r.stdout + r.stderr))
    # A key of another name: its signature lines are not this key's.
    tampered("other-name", lambda b: None, r"checkpoint signature",
             key_arg=note_key("someone/else", b"\x02" * 32))

    r = audit(ctx, "verify-inclusion", "--receipt", good, "--key",
              "not-a-key")
    check_eq(r.returncode, 2, "a malformed key is a usage error")
    r = audit(ctx, "verify-inclusion", "--receipt", ctx.path("none.json"),
              "--key", key)
    check_eq(r.returncode, 2, "a missing receipt file is a usage error")
    r = audit(ctx, "verify-inclusion", "--help")
    check(r.returncode == 0 and "--receipt" in r.stdout,
          "verify-inclusion --help")
    s.stop()


@e2e_test(timeout=90)
def test_audit_cli_verifies_consistency_and_refuses_swapped_or_faked(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    create(s, "transfers", [transfer(1, 1, 2, 3)])
    old_text, old_size = wait_checkpoint(s, 2)
    for k in range(3):
        create(s, "transfers", [transfer(100 + k, 2, 1, 1)])
    new_text, new_size = wait_checkpoint(s, old_size + 3)
    check(new_size > old_size, "the log grew")
    key = verifier_key(s)
    proof = s.get("/v1/audit/proof/consistency?from=%d&to=%d"
                  % (old_size, new_size)).json()
    old = write(ctx.path("old.txt"), old_text)
    new = write(ctx.path("new.txt"), new_text)
    pf = write(ctx.path("proof.json"), json.dumps(proof))

    r = audit(ctx, "verify-consistency", "--old", old, "--new", new,
              "--proof", pf, "--key", key)
    check_eq(r.returncode, 0, "genuine consistency: %s"
             % (r.stdout + r.stderr))
    check("at size %d extends size %d: consistent" % (new_size, old_size)
          in r.stdout, "verdict: %r" % r.stdout)

    expect_refused(ctx, "swapped", ["verify-consistency", "--old", new,
                                    "--new", old, "--proof", pf,
                                    "--key", key], r"sizes: ")

    faked = dict(proof)
    faked["from_root"] = b64e(b"\x07" * 32)
    fp = write(ctx.path("faked.json"), json.dumps(faked))
    expect_refused(ctx, "faked-old-root", ["verify-consistency", "--old",
                                           old, "--new", new, "--proof", fp,
                                           "--key", key], r"from_root")

    # An old checkpoint re-signed with another root cannot be made; one
    # with a changed root line fails its signature.
    lines = old_text.split("\n")
    lines[2] = b64e(b"\x07" * 32)
    forged = write(ctx.path("forged.txt"), "\n".join(lines))
    expect_refused(ctx, "forged-old", ["verify-consistency", "--old", forged,
                                       "--new", new, "--proof", pf,
                                       "--key", key],
                   r"old checkpoint signature")

    if proof["proof"]:
        bent = json.loads(json.dumps(proof))
        h = bytearray(b64(bent["proof"][-1]))
        h[5] ^= 1
        bent["proof"][-1] = b64e(bytes(h))
        bp = write(ctx.path("bent.json"), json.dumps(bent))
        expect_refused(ctx, "proof-hash", ["verify-consistency", "--old",
                                           old, "--new", new, "--proof", bp,
                                           "--key", key],
                       r"consistency proof: ")
    s.stop()


# ---- on-disk tampering ----------------------------------------------------

def record_bytes(typ, ver, seq, ts, payload):
    size = journal.HEADER.size + len(payload)
    body = journal.HEADER.pack(journal.MAGIC, 0, size, typ, ver, seq,
                               ts)[8:] + payload
    return journal.HEADER.pack(journal.MAGIC, journal.crc32c(body), size,
                               typ, ver, seq, ts)[:8] + body


def rewrite_journal(data_dir, edit, renumber=True):
    """Apply edit(list of [type, version, seq, ts, payload]) to the
    journal's records, then write them back with seqs renumbered from 1
    (unless told not to) and every CRC-32C made good."""
    segs = journal.segments(data_dir)
    check_eq(len(segs), 1, "journal segments")
    recs = [[r.type, r.version, r.seq, r.timestamp, bytes(r.payload)]
            for r in journal.read_segment(segs[0])]
    edit(recs)
    out = b""
    for i, (typ, ver, seq, ts, payload) in enumerate(recs):
        out += record_bytes(typ, ver, i + 1 if renumber else seq, ts,
                            payload)
    write(segs[0], out)


def leaves_of(data_dir):
    return b"".join(leaf_hash(
        open(r.path, "rb").read()[r.offset:r.end])
        for r in journal.all_records(data_dir))


def check_found(r, name, index, leaves):
    """audit check refused, naming index (with the stored leaves) or a
    range of entries that holds it (with checkpoints only)."""
    out = r.stdout + r.stderr
    check(r.returncode == 1, "%s: expected exit 1, got %d: %s"
          % (name, r.returncode, out.strip()))
    if leaves:
        check(re.search(r"TAMPERED: (entry|entries|a record inserted at "
                        r"entry) %d\b" % index, r.stdout),
              "%s: entry %d not named: %s" % (name, index, out.strip()))
        return
    for m in re.finditer(r"TAMPERED: entries (\d+)\.\.(\d+)", r.stdout):
        if int(m.group(1)) <= index <= int(m.group(2)):
            return
    raise TestFailure("%s: no range holding entry %d: %s"
                      % (name, index, out.strip()))


@e2e_test(timeout=150)
def test_audit_check_names_each_tampered_entry_even_with_crcs_rewritten(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(i) for i in range(1, 5)])
    wait_checkpoint(s, 1)
    # Rounds of two batches, each round signed before the next: entries
    # 1..8, checkpoints at (at least) sizes 1, 3, 5, 7, 9.
    for k in range(4):
        create(s, "transfers", [transfer(100 + 10 * k, 1, 2, 1 + k)])
        create(s, "transfers", [transfer(101 + 10 * k, 3, 4, 2),
                                transfer(102 + 10 * k, 4, 3, 1)])
        wait_checkpoint(s, 3 + 2 * k)
    key = verifier_key(s)
    s.stop()
    data = s.data_dir
    n = len(journal.all_records(data))
    check(n >= 9, "%d journal records" % n)

    # The server's leaf hashes, or (until it writes them) the same file
    # computed here from the untouched journal.
    leaves_path = os.path.join(data, "audit", "leaves")
    if not os.path.exists(leaves_path):
        write(leaves_path, leaves_of(data))
        ctx.note("DATA/audit/leaves not written by the server: made here")

    r = audit(ctx, "check", data)
    check_eq(r.returncode, 0, "untouched data: %s" % (r.stdout + r.stderr))
    check(re.search(r"%d entries, \d+ checkpoints, newest size %d: "
                    r"consistent" % (n, n), r.stdout),
          "verdict: %r" % r.stdout)
    keyfile = write(ctx.path("key.txt"), key)
    r = audit(ctx, "check", data, "--key", "@" + keyfile)
    check_eq(r.returncode, 0, "untouched data, --key: %s"
             % (r.stdout + r.stderr))
    r = audit(ctx, "check", data, "--key",
              note_key(key.split("+")[0], b"\x05" * 32))
    check_eq(r.returncode, 1, "checkpoints against a key that did not sign")
    check("warning: keys taken from DATA/keys" in
          audit(ctx, "check", data).stderr,
          "check without --key warns that DATA/keys is not independent")
    # The signed history emptied: a finding, not "consistent".
    emptied = ctx.path("emptied")
    shutil.copytree(data, emptied)
    write(os.path.join(emptied, "audit", "checkpoints"), b"")
    r = audit(ctx, "check", emptied, "--key", "@" + keyfile)
    check_eq(r.returncode, 1, "an emptied checkpoints file: %s"
             % (r.stdout + r.stderr))

    K = 4  # an old entry, between the checkpoints of sizes 3 and 5

    def change_byte(recs):
        p = bytearray(recs[K][4])
        p[24] ^= 0x01  # the transfer's amount
        recs[K][4] = bytes(p)

    def remove(recs):
        del recs[K]

    def swap(recs):
        recs[K], recs[K + 1] = recs[K + 1], recs[K]

    def insert(recs):
        forged = list(recs[K])
        p = bytearray(forged[4])
        p[0] ^= 0x55  # a new transfer id
        forged[4] = bytes(p)
        recs.insert(K, forged)

    cases = [
        ("changed", change_byte, True, r"entry %d changed" % K),
        ("removed", remove, True, r"entry %d removed" % K),
        ("swapped", swap, True, r"entries %d and %d reordered" % (K, K + 1)),
        ("inserted", insert, True, r"a record inserted at entry %d" % K),
        ("removed-not-renumbered", remove, False,
         r"entry %d: the journal cannot be read past it" % K),
    ]
    for name, edit, renumber, words in cases:
        for with_leaves in (True, False):
            label = "%s%s" % (name, "" if with_leaves else "-no-leaves")
            copy = ctx.path("copy-" + label)
            shutil.copytree(data, copy, symlinks=True)
            shutil.copy2(data + ".kek", copy + ".kek")
            rewrite_journal(copy, edit, renumber)
            if not with_leaves:
                os.unlink(os.path.join(copy, "audit", "leaves"))
            r = audit(ctx, "check", copy)
            if with_leaves or not renumber:
                check_found(r, label, K, True)
                check(re.search(words, r.stdout), "%s: %r not in %s"
                      % (label, words, r.stdout))
            else:
                check_found(r, label, K, False)

    # A byte changed without fixing its CRC: the journal itself says so.
    copy = ctx.path("copy-crc")
    shutil.copytree(data, copy, symlinks=True)
    rec = journal.all_records(copy)[K]
    journal.flip_byte(rec.path, rec.offset + 40)
    r = audit(ctx, "check", copy)
    check_found(r, "crc-not-fixed", K, True)
    check("bad checksum" in r.stdout, "names the checksum: %s" % r.stdout)

    # The newest records cut off: the signed checkpoints still cover them.
    copy = ctx.path("copy-cut")
    shutil.copytree(data, copy, symlinks=True)
    recs = journal.all_records(copy)
    journal.truncate_to(recs[-2].path, recs[-2].offset)
    r = audit(ctx, "check", copy)
    check_eq(r.returncode, 1, "cut journal: %s" % r.stdout)
    check(re.search(r"entries %d\.\.%d removed" % (n - 2, n - 1), r.stdout),
          "cut journal: %s" % r.stdout)

    # A checkpoint's signature changed; a stored leaf changed.
    copy = ctx.path("copy-sig")
    shutil.copytree(data, copy, symlinks=True)
    cpf = os.path.join(copy, "audit", "checkpoints")
    raw = bytearray(open(cpf, "rb").read())
    # A base64 digit inside the first signature (past the key id).
    sig_at = raw.index(b" ", raw.index(b"\xe2\x80\x94") + 4) + 10
    raw[sig_at] = ord("A") if raw[sig_at] != ord("A") else ord("B")
    write(cpf, bytes(raw))
    r = audit(ctx, "check", copy)
    check_eq(r.returncode, 1, "changed signature: %s" % r.stdout)
    check("signature refused" in r.stdout, "names the signature: %s"
          % r.stdout)

    copy = ctx.path("copy-leaf")
    shutil.copytree(data, copy, symlinks=True)
    journal.flip_byte(os.path.join(copy, "audit", "leaves"), 32 * 2)
    r = audit(ctx, "check", copy)
    check_eq(r.returncode, 1, "changed stored leaf: %s" % r.stdout)
    check("audit/leaves" in r.stdout, "names the leaves file: %s"
          % r.stdout)

    r = audit(ctx, "check", ctx.path("nowhere"))
    check_eq(r.returncode, 2, "a missing data directory is a usage error")
