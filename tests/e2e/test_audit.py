"""test_audit.py - the audit log over HTTP, checked by an independent
RFC 9162 implementation written here in Python: every entry's bytes hash
to its leaf, inclusion and consistency proofs verify against the heads,
a receipt leads from a transfer to the entry that holds it, a restart
rebuilds the same tree, and bad requests get their problems."""

import base64
import json
import hashlib
import time

from harness import (e2e_test, check, check_eq, wait_audit_size,
                     wait_checkpoint, wait_receipt)
from ledger import account, transfer, create
import auditleaf


leaf_hash = auditleaf.leaf_hash
root_from_inclusion = auditleaf.root_from_inclusion
verify_consistency = auditleaf.verify_consistency


def b64(s):
    return base64.b64decode(s, validate=True)


wait_size = wait_audit_size


@e2e_test(timeout=60)
def test_audit_entries_hash_to_leaves_and_proofs_verify_independently(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(i) for i in range(1, 5)])
    for k in range(12):
        create(s, "transfers", [transfer(1000 + 10 * k + j, 1 + j % 4,
                                         1 + (j + 1) % 4, 1 + j)
                                for j in range(1 + k % 3)])
    head = wait_size(s, 13)
    size = int(head["size"])
    check(size >= 13, "audit head size %d, want >= 13" % size)
    root = b64(head["root"])

    leaves = []
    for i in range(size):
        r = s.get("/v1/audit/entries/%d" % i)
        check_eq(r.status, 200, "GET entry %d" % i)
        e = r.json()
        data = b64(e["entry"])
        check_eq(leaf_hash(data), b64(e["leaf_hash"]),
                 "entry %d hashes to its leaf" % i)
        check_eq(int(e["seq"]), i + 1, "entry %d seq" % i)
        leaves.append(leaf_hash(data))

    for i in range(size):
        r = s.get("/v1/audit/proof/inclusion?index=%d&size=%d" % (i, size))
        check_eq(r.status, 200, "inclusion proof %d" % i)
        p = r.json()
        got = root_from_inclusion(i, size, leaves[i],
                                  [b64(h) for h in p["proof"]])
        check_eq(got, root, "inclusion proof of %d leads to the head" % i)

    for first in range(1, size + 1):
        r = s.get("/v1/audit/proof/consistency?from=%d&to=%d"
                  % (first, size))
        check_eq(r.status, 200, "consistency %d..%d" % (first, size))
        c = r.json()
        check(verify_consistency(first, size, b64(c["from_root"]), root,
                                 [b64(h) for h in c["proof"]]),
              "consistency proof %d..%d does not verify" % (first, size))

    # A changed proof fails the independent check.
    p = s.get("/v1/audit/proof/inclusion?index=3&size=%d" % size).json()
    bad = [b64(h) for h in p["proof"]]
    bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
    check(root_from_inclusion(3, size, leaves[3], bad) != root,
          "a flipped proof hash still led to the root")

    # Restart: the tree is rebuilt from the journal, same root at size.
    s.stop()
    s.start()
    head2 = wait_size(s, size)
    r = s.get("/v1/audit/proof/consistency?from=%d&to=%s"
              % (size, head2["size"]))
    c = r.json()
    check_eq(b64(c["from_root"]), root, "root at %d after restart" % size)


@e2e_test(timeout=60)
def test_audit_transfer_is_found_in_the_entry_its_timestamp_names(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    create(s, "transfers", [transfer(501, 1, 2, 7), transfer(502, 2, 1, 3)])
    t = s.get("/v1/transfers/502").json()
    ts = int(t["timestamp"])
    # The entry holding the transfer is the first with timestamp >= ts.
    # Wait until the tree holds it: the journal may begin with entries of
    # the server's own (its key events), so a size cannot tell.
    found = None
    deadline = time.time() + 5
    while found is None:
        head = s.get("/v1/audit/head").json()
        for i in range(int(head["size"])):
            e = s.get("/v1/audit/entries/%d" % i).json()
            if int(e["timestamp"]) >= ts:
                found = e
                break
        if found is not None or time.time() > deadline:
            break
        time.sleep(0.02)
    check(found is not None and found["type"] == "create_transfers",
          "no create_transfers entry at or after the transfer's timestamp")
    data = b64(found["entry"])
    ids = [int.from_bytes(data[off:off + 16], "little")
           for off in range(32, len(data), 128)]
    check(502 in ids, "transfer 502 not in its entry (ids %r)" % ids)


@e2e_test(timeout=30)
def test_audit_bad_requests_get_their_problems(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1)])
    wait_size(s, 1)
    cases = [
        ("/v1/audit/entries/999", 400, "/problems/audit-out-of-range"),
        ("/v1/audit/entries/01", 400, "/problems/invalid-id"),
        ("/v1/audit/entries/18446744073709551616", 400,
         "/problems/invalid-id"),
        ("/v1/audit/proof/inclusion?index=0&size=0", 400,
         "/problems/audit-out-of-range"),
        ("/v1/audit/proof/inclusion?index=1&size=1", 400,
         "/problems/audit-out-of-range"),
        ("/v1/audit/proof/inclusion?index=0&size=999", 400,
         "/problems/audit-out-of-range"),
        ("/v1/audit/proof/inclusion?index=0", 400, "/problems/invalid-query"),
        ("/v1/audit/proof/inclusion?index=0&size=1&x=1", 400,
         "/problems/invalid-query"),
        ("/v1/audit/proof/inclusion?index=-1&size=1", 400,
         "/problems/invalid-query"),
        ("/v1/audit/proof/consistency?from=2&to=1", 400,
         "/problems/audit-out-of-range"),
        ("/v1/audit/proof/consistency?from=0&to=1", 400,
         "/problems/audit-out-of-range"),
        ("/v1/audit/proof/consistency?from=1&from=1", 400,
         "/problems/invalid-query"),
    ]
    for path, status, ptype in cases:
        r = s.get(path)
        check_eq(r.status, status, "GET %s status" % path)
        check_eq(r.json().get("type"), ptype, "GET %s problem type" % path)
    check_eq(s.get("/healthz").status, 200, "server still serving")


@e2e_test(timeout=60)
def test_audit_checkpoint_is_a_signed_note_of_the_head_and_keys_are_published(ctx):
    import os
    import stat
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    create(s, "transfers", [transfer(9, 1, 2, 5)])
    # Three entries: the server's signing key (journaled at start), the
    # accounts, the transfer.  Waiting for fewer could catch a head that
    # the next checkpoint has already passed.
    head = wait_size(s, 3)
    check_eq(head["size"], "3", "key event, accounts, transfer")
    # A checkpoint is signed at most a second after the tree grows.
    text, size = wait_checkpoint(s, 3)
    check_eq(size, 3, "the checkpoint's size (nothing was written since)")
    r = s.get("/v1/audit/checkpoint")
    check_eq(r.body.decode(), text, "the checkpoint served again")
    lines = text.split("\n")
    check(r.header("Content-Type").startswith("text/plain"),
          "checkpoint content type %r" % r.header("Content-Type"))
    origin, size, root = lines[0], lines[1], lines[2]
    check(origin.startswith("tpwallet/"), "origin %r" % origin)
    check_eq(root, head["root"], "checkpoint root is the head's root")
    check_eq(lines[3], "", "blank line before the signatures")
    sig = lines[4]
    check(sig.startswith("\u2014 " + origin + " "),
          "signature line names the origin: %r" % sig)
    blob = b64(sig.split(" ")[2])
    check_eq(len(blob), 4 + 64, "key id and Ed25519 signature")

    jwks = s.get("/.well-known/jwks.json")
    check_eq(jwks.status, 200, "GET /.well-known/jwks.json")
    keys = jwks.json()["keys"]
    check(len(keys) == 1 and keys[0]["kty"] == "OKP" and
          keys[0]["crv"] == "Ed25519" and "d" not in keys[0],
          "one public Ed25519 key: %r" % keys)
    # The note key id is SHA-256(name || "\n" || 0x01 || public key)[:4].
    pub = base64.urlsafe_b64decode(keys[0]["x"] + "=")
    kid = hashlib.sha256(origin.encode() + b"\n\x01" + pub).digest()[:4]
    check_eq(blob[:4], kid, "the signature's key id is the published key's")

    # The key-encryption key sits beside the data directory, mode 0600.
    kek = s.data_dir.rstrip("/") + ".kek"
    st = os.stat(kek)
    check_eq(stat.S_IMODE(st.st_mode), 0o600, "KEK file mode")


@e2e_test(timeout=60)
def test_data_directory_without_its_key_refuses_to_start(ctx):
    import shutil
    s = ctx.start_server()
    create(s, "accounts", [account(1)])
    s.stop()
    moved = ctx.path("moved")
    shutil.copytree(s.data_dir, moved)  # the KEK stays behind
    t = ctx.server(data_dir=moved)
    served, exited, rc = t.start_expecting_refusal()
    check(served is None and exited, "server started without its KEK")
    check_eq(rc, 65, "exit status without a KEK")
    check("key-encryption key" in t.log_text(),
          "the refusal names the key-encryption key")


@e2e_test(timeout=60)
def test_receipt_proves_the_transfer_entry_is_in_the_signed_checkpoint(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    create(s, "transfers", [transfer(31, 1, 2, 4), transfer(32, 2, 1, 1)])
    r = wait_receipt(s, "/v1/transfers/32/receipt")
    check_eq(r.status, 200, "receipt of 32 once a checkpoint covers it")
    rc = r.json()
    note_lines = rc["checkpoint"].split("\n")
    check_eq(note_lines[1], rc["size"], "receipt size is the checkpoint's")
    check_eq(note_lines[2], rc["root"], "receipt root is the checkpoint's")
    # A version-2 entry is proven by the transfer's own event (leaf rule
    # 2): the other transfer of the batch is not in the receipt.
    check("entry" not in rc, "the receipt carries the whole entry")
    got = auditleaf.verify_receipt(rc)
    check_eq(int.from_bytes(got["event"][:16], "little"), 32,
             "the receipt's event is transfer 32")
    check_eq(int(rc["event_index"]), 1, "transfer 32 is event 1")
    check_eq(len(rc["chunk"]), 2, "the chunk holds both events' hashes")
    t = s.get("/v1/transfers/32").json()
    check_eq(t.get("entry_index"), rc["index"],
             "the lookup names the entry the receipt proves")
    key = s.get("/v1/audit/key")
    check_eq(key.status, 200, "GET /v1/audit/key")
    check(key.body.decode().startswith(note_lines[0] + "+"),
          "the verifier key is named after the origin: %r" % key.body)
    check_eq(s.get("/v1/transfers/999/receipt").status, 404,
             "receipt of an unknown transfer")


@e2e_test(timeout=30)
def test_create_reply_names_the_entry_on_request(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    r = s.request("POST", "/v1/transfers?entry_index=true",
                  body=json.dumps({"id": "41", "debit_account_id": "1",
                                   "credit_account_id": "2", "amount": "3",
                                   "ledger": 1, "code": 1}).encode(),
                  headers={"Content-Type": "application/json"})
    check_eq(r.status, 201, "create with entry_index=true")
    idx = r.json().get("entry_index")
    check(idx is not None, "no entry_index in %r" % r.json())
    wait_size(s, int(idx) + 1)
    e = s.get("/v1/audit/entries/%s" % idx).json()
    data = b64(e["entry"])
    ids = [int.from_bytes(data[off:off + 16], "little")
           for off in range(32, len(data), 128)]
    check(41 in ids, "transfer 41 in entry %s" % idx)
    plain = s.post("/v1/transfers", transfer(42, 1, 2, 1)).json()
    check("entry_index" not in plain, "entry_index only on request")
    bad = s.request("POST", "/v1/transfers?nope=1",
                    body=b'{"id":"43"}',
                    headers={"Content-Type": "application/json"})
    check_eq(bad.status, 400, "unknown query parameter on a create")


@e2e_test(timeout=30)
def test_checkpoint_on_request_is_accepted_and_then_served(ctx):
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2), account(3)])
    r = s.request("POST", "/v1/audit/checkpoint")
    check_eq(r.status, 202, "POST /v1/audit/checkpoint")
    want = int(r.json()["requested_size"])
    wait_checkpoint(s, want)
    check_eq(s.request("DELETE", "/v1/audit/checkpoint").status, 405,
             "DELETE /v1/audit/checkpoint")
