"""test_receipts.py - issue 9, finding 3: a receipt shows only the record
it is for.

The attack: a key that may read only account 10 fetched the receipt of a
transfer into 10 and read, in the whole journal entry the receipt
carried, the other transfers of the same batch (their accounts and
amounts) and, for a transfer made under a customer's mandate, the
mandate's guards (the customer's issuer thumbprint, caps and uses).
Receipts of version-2 entries now carry the one event and hashes
(leaf rule 2, docs/audit.md); they still verify offline, with the
independent Python implementation (auditleaf.py) and with `tpwallet
audit verify-inclusion`; an auditor with audit:read still reads whole
entries, whose leaf is the receipt's.
"""

import base64
import json
import os
import time

from harness import (e2e_test, check, check_eq, issue_mandate, run_cli,
                     slow_factor, wait_receipt)
from test_security import Tenants, tr
import auditleaf

# Ids and amounts that cannot turn up by chance in hashes or headers.
OURS = 7_310_000_001
THEIRS = (7_310_000_002, 7_310_000_003)
THEIR_AMOUNTS = (913_577_321, 804_411_977)
UNDER_MANDATE = (7_320_000_001, 7_320_000_002, 7_320_000_003)
CUSTOMER_TOTAL_CAP = 6_543_210_987
CUSTOMER_USES = 47


def le16(v):
    return v.to_bytes(16, "little")


def blobs(rc):
    """Every base64 string of a receipt, decoded: what a reader holds."""
    out = []

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            try:
                out.append(base64.b64decode(v, validate=True))
            except ValueError:
                pass
    walk(rc)
    return b"".join(out) + json.dumps(rc).encode()


def until_not_503(call, tries_s=10.0):
    """Run call() (a `tpwallet call` of a receipt route) until its answer
    is not 503: a receipt is served once a signed checkpoint covers the
    entry (docs/audit.md).  Returns the last CompletedProcess."""
    deadline = time.monotonic() + tries_s * slow_factor()
    while True:
        r = call()
        if "503" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def receipt_as(t, path, mandate=None, key=None, tries_s=10.0):
    """GET path through `tpwallet call` as the reader (503 until a
    checkpoint covers the entry); returns (exit status, stdout, stderr)."""
    args = ["call", "--key", key or t.till, "--mandate",
            mandate or t.mandate, "GET", path]
    return until_not_503(lambda: t.cli(*args, ok=False), tries_s)


def audit_key(t, ctx):
    k = t.admin_text("GET", "/v1/audit/key")
    path = os.path.join(ctx.dir, "key.txt")
    with open(path, "w") as f:
        f.write(k)
    return path


def verify_with_cli(ctx, rc, name, keyfile):
    path = os.path.join(ctx.dir, name)
    with open(path, "w") as f:
        json.dump(rc, f)
    r = run_cli(["audit", "verify-inclusion", "--receipt", path, "--key",
                 "@" + keyfile])
    check(r.returncode == 0, "verify-inclusion %s: %s %s"
          % (name, r.stdout, r.stderr))
    return r.stdout


def add_admin_text(t):
    def admin_text(method, path):
        r = t.cli("call", method, path)
        return r.stdout
    t.admin_text = admin_text


@e2e_test(timeout=180)
def test_receipt_shows_only_its_transfer_not_the_batch_nor_a_mandates_guards(ctx):
    t = Tenants(ctx, ops=("accounts:read", "transfers:read"))
    add_admin_text(t)
    # A customer with an account of its own, and a shopper key that pays
    # from it under the customer's mandate (caps and uses: the guards).
    customer = os.path.join(ctx.dir, "customer.jwk")
    shopper = os.path.join(ctx.dir, "shopper.jwk")
    r = t.cli("principal", "create", "--name", "customer",
              "--key-out", customer)
    customer_id = r.stdout.strip().splitlines()[-1]
    t.cli("principal", "create", "--name", "shopper", "--no-register",
          "--key-out", shopper)
    t.cli("call", "POST", "/v1/accounts?owner=" + customer_id,
          '[{"id":"30","ledger":1,"code":1}]')
    shop_mandate = os.path.join(ctx.dir, "shop.txt")
    issue_mandate(shop_mandate, customer, shopper, ["transfers:create"],
                  ["30"], extra=["--total-cap", str(CUSTOMER_TOTAL_CAP),
                                 "--uses", str(CUSTOMER_USES)])
    t.admin("POST", "/v1/transfers", tr(1, 20, 30, 10_000))

    # One batch over several owners' accounts: ours into 10 (merchant),
    # the others between 11 (merchant) and 20, 21 (the administrator).
    res = t.admin("POST", "/v1/transfers", [
        tr(OURS, 20, 10, 5),
        tr(THEIRS[0], 21, 11, THEIR_AMOUNTS[0]),
        tr(THEIRS[1], 20, 21, THEIR_AMOUNTS[1])])
    check(all(x["status"] == "created" for x in res), "batch: %r" % res)
    # Under the customer's mandate: a batch of two, and one alone.
    for body in ([tr(UNDER_MANDATE[0], 30, 10, 40),
                  tr(UNDER_MANDATE[1], 30, 20, 60)],
                 tr(UNDER_MANDATE[2], 30, 10, 7)):
        r = t.cli("call", "--key", shopper, "--mandate", shop_mandate,
                  "POST", "/v1/transfers", json.dumps(body), ok=False)
        check(r.returncode == 0, "shopper pays: %s %s" % (r.stdout, r.stderr))
    issuer = base64.urlsafe_b64decode(customer_id + "=")
    keyfile = audit_key(t, ctx)

    for tid, others in ((OURS, THEIRS), (UNDER_MANDATE[0],
                                          (UNDER_MANDATE[1],)),
                        (UNDER_MANDATE[2], ())):
        r = receipt_as(t, "/v1/transfers/%d/receipt" % tid)
        check(r.returncode == 0, "the reader's receipt of %d: %s %s"
              % (tid, r.stdout, r.stderr))
        rc = json.loads(r.stdout)
        seen = blobs(rc)
        for other in others:
            check(le16(other) not in seen,
                  "receipt of %d shows transfer %d" % (tid, other))
        for amount in THEIR_AMOUNTS:
            check(le16(amount) not in seen,
                  "receipt of %d shows amount %d" % (tid, amount))
        for acc in (11, 21):
            check(le16(acc) not in seen,
                  "receipt of %d shows account %d" % (tid, acc))
        check(issuer not in seen,
              "receipt of %d shows the customer's issuer" % tid)
        check(le16(CUSTOMER_TOTAL_CAP) not in seen,
              "receipt of %d shows the mandate's total cap" % tid)
        check("entry" not in rc, "receipt of %d carries the whole entry "
              "(%d bytes)" % (tid, len(base64.b64decode(rc["entry"]))
                              if "entry" in rc else 0))
        # What it proves: its own transfer, in the signed tree.
        got = auditleaf.verify_receipt(rc)
        check_eq(got["event"][:16], le16(tid),
                 "the receipt's event is transfer %d" % tid)
        out = verify_with_cli(ctx, rc, "receipt-%d.json" % tid, keyfile)
        check("(id %d)" % tid in out, "verdict names %d: %r" % (tid, out))

        # The auditor (audit:read) reads the whole entry, and it is the
        # one the reader's receipt proves.
        e = json.loads(t.admin_text("GET", "/v1/audit/entries/%s"
                                    % rc["index"]))
        entry = base64.b64decode(e["entry"])
        check_eq(auditleaf.leaf_hash(entry), base64.b64decode(rc["leaf_hash"]),
                 "the whole entry hashes to the receipt's leaf")
        for other in others:
            check(le16(other) in entry,
                  "the auditor's entry holds transfer %d" % other)
        if tid in UNDER_MANDATE:
            check(issuer in entry and le16(CUSTOMER_TOTAL_CAP) in entry,
                  "the auditor's entry holds the mandate's guards")

    # The reader's own account receipt: one event as well.
    r = receipt_as(t, "/v1/accounts/10/receipt")
    check(r.returncode == 0, "account receipt: %s %s" % (r.stdout, r.stderr))
    rc = json.loads(r.stdout)
    check("entry" not in rc, "the account receipt carries the whole entry")
    check(le16(11) not in blobs(rc),
          "the account receipt shows account 11, created with it")
    check_eq(auditleaf.verify_receipt(rc)["event"][:16], le16(10),
             "the account receipt proves account 10")
    # The other receipt routes still refuse the reader.
    r = receipt_as(t, "/v1/transfers/%d/receipt" % THEIRS[0])
    # docs/cli.md: a refusal is exit status 1
    check(r.returncode == 1 and "403" in r.stderr,
          "the receipt of a transfer outside 10: %s %s"
          % (r.stdout, r.stderr))
    for path in ("/v1/audit/entries/1", "/v1/audit/proof/inclusion?"
                 "index=0&size=1", "/v1/audit/head"):
        r = receipt_as(t, path)
        check(r.returncode == 1 and "403" in r.stderr,
              "%s without audit:read: %s %s" % (path, r.stdout, r.stderr))


# -- a log written before leaf rule 2 ----------------------------------------

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "fixtures", "v1-journal")


def copy_fixture(ctx):
    """tests/e2e/fixtures/v1-journal (see its README) into the test's
    directory, with the modes `serve` demands (git keeps none)."""
    import shutil
    data = ctx.path("v1data")
    shutil.copytree(os.path.join(FIXTURE, "data"), data)
    shutil.copy(os.path.join(FIXTURE, "data.kek"), data + ".kek")
    for name in ("merchant.jwk", "till.jwk"):
        shutil.copy(os.path.join(FIXTURE, name), ctx.path(name))
    for p in [data + ".kek", ctx.path("merchant.jwk"), ctx.path("till.jwk")]:
        os.chmod(p, 0o600)
    for d, dirs, files in os.walk(data):
        os.chmod(d, 0o700)
        for f in files:
            os.chmod(os.path.join(d, f), 0o600)
    return data


def last_checkpoint(data):
    """The newest note of DATA/audit/checkpoints ("<bytes>\\n" + note)."""
    with open(os.path.join(data, "audit", "checkpoints"), "rb") as f:
        raw = f.read()
    notes, off = [], 0
    while off < len(raw):
        nl = raw.index(b"\n", off)
        n = int(raw[off:nl])
        notes.append(raw[nl + 1:nl + 1 + n].decode())
        off = nl + 1 + n
    return notes[-1]


class V1Log:
    """The fixture served by this build: the administrator and a reader
    of account 10 (the merchant's till, accounts:read + transfers:read)."""

    def __init__(self, ctx, data):
        self.ctx = ctx
        self.srv = ctx.start_server(data_dir=data)
        self.data = data
        self.mandate = ctx.path("reader.txt")
        issue_mandate(self.mandate, ctx.path("merchant.jwk"),
                      ctx.path("till.jwk"),
                      ["accounts:read", "transfers:read"], ["10"])

    def call(self, *args, reader=False, key=None, mandate=None):
        pre = ["call"] + self.srv.cli_args()
        if reader:
            key, mandate = self.ctx.path("till.jwk"), self.mandate
        if key:
            pre += ["--key", key, "--mandate", mandate]
        return run_cli(pre + list(args))

    def auditor(self, accounts=()):
        """A key holding audit:read from the administrator (over the
        given accounts: a scoped right is not an auditor's)."""
        key = self.ctx.path("auditor.jwk")
        if not os.path.exists(key):
            r = run_cli(["principal", "create", "--name", "auditor",
                         "--no-register", "--key-out", key] +
                        self.srv.cli_args())
            check(r.returncode == 0, "auditor key: %s" % r.stderr)
        m = self.ctx.path("auditor-%d.txt" % len(accounts))
        issue_mandate(m, os.path.join(self.data, "admin.jwk"), key,
                      ["audit:read", "transfers:read"], accounts)
        return key, m


@e2e_test(timeout=180)
def test_a_v1_log_from_the_previous_build_opens_and_its_receipts_verify(ctx):
    # Written by the build before leaf rule 2 (6d5a177): entries 1..10 at
    # journal version 1, with transfer 101 in a batch of three (with 102,
    # 103), 104 alone, 105 alone under the customer's mandate, and a
    # signed checkpoint of size 10.
    data = copy_fixture(ctx)
    old_cp = last_checkpoint(data)
    old_cp_path = ctx.path("old-checkpoint.txt")
    with open(old_cp_path, "w") as f:
        f.write(old_cp)
    check_eq(old_cp.split("\n")[1], "10", "the fixture's checkpoint size")
    # The fixture's signing key, recorded beside it: it leaves the
    # server's key list once rotated and expired (docs/keys.md), and
    # the old checkpoints must verify with it whenever this runs.
    old_key = os.path.join(FIXTURE, "key.txt")
    r = run_cli(["audit", "check", data, "--key", "@" + old_key])
    check(r.returncode == 0, "audit check of the v1 log before serving it: "
          "%s %s" % (r.stdout, r.stderr))

    log = V1Log(ctx, data)
    keyfile = ctx.path("key.txt")
    with open(old_key) as f:
        keys = [f.read().strip()]
    for line in log.call("GET", "/v1/audit/key").stdout.split("\n"):
        if line.strip() and line.strip() not in keys:
            keys.append(line.strip())
    with open(keyfile, "w") as f:
        f.write("\n".join(keys) + "\n")

    def receipt(tid, reader, want=0):
        r = until_not_503(lambda: log.call(
            "GET", "/v1/transfers/%d/receipt" % tid, reader=reader))
        check(r.returncode == want, "receipt of %d (%s): %s %s"
              % (tid, "reader" if reader else "admin", r.stdout, r.stderr))
        return json.loads(r.stdout) if want == 0 else r

    # One event alone: its whole version-1 entry, as before.
    rc = receipt(104, True)
    check_eq(auditleaf.record_version(base64.b64decode(rc["entry"])), 1,
             "104's entry version")
    check_eq(auditleaf.verify_receipt(rc)["index"], 8, "104's entry index")
    out = verify_with_cli(ctx, rc, "r104.json", keyfile)
    check("create_transfers, 1 events" in out, "verdict: %r" % out)
    # A batch, or one transfer under a mandate: the whole entry would
    # show the rest, so the reader is refused, the auditor is not.
    auditor = log.auditor()
    scoped = log.auditor(accounts=("10",))
    for tid in (101, 105):
        r = receipt(tid, True, want=1)
        check("403" in r.stderr and "receipt-shows-others" in r.stderr,
              "reader's receipt of %d in a v1 entry: %s" % (tid, r.stderr))
        r = log.call("GET", "/v1/transfers/%d/receipt" % tid,
                     key=scoped[0], mandate=scoped[1])
        check(r.returncode == 1 and "receipt-shows-others" in r.stderr,
              "audit:read over account 10 only is no auditor's right: "
              "%s %s" % (r.stdout, r.stderr))
        r = log.call("GET", "/v1/transfers/%d/receipt" % tid,
                     key=auditor[0], mandate=auditor[1])
        check(r.returncode == 0 and "entry" in json.loads(r.stdout),
              "the auditor's receipt of %d: %s %s"
              % (tid, r.stdout, r.stderr))
        rc = receipt(tid, False)
        entry = base64.b64decode(rc["entry"])
        check_eq(auditleaf.record_version(entry), 1, "v1 entry of %d" % tid)
        auditleaf.verify_receipt(rc)
        verify_with_cli(ctx, rc, "r%d.json" % tid, keyfile)

    # New entries are version 2 and proven event by event; the signed
    # history goes on from the old checkpoint.
    r = log.call("POST", "/v1/transfers", json.dumps(
        [tr(201, 20, 10, 3), tr(202, 21, 11, 4)]))
    check(r.returncode == 0, "a batch after the upgrade: %s" % r.stderr)
    rc = receipt(201, True)
    check("entry" not in rc and
          auditleaf.verify_receipt(rc)["event"][:16] == le16(201),
          "201's receipt is of its event alone")
    verify_with_cli(ctx, rc, "r201.json", keyfile)
    new_cp_path = ctx.path("new-checkpoint.txt")
    with open(new_cp_path, "w") as f:
        f.write(rc["checkpoint"])
    proof_path = ctx.path("consistency.json")
    with open(proof_path, "w") as f:
        f.write(log.call("GET", "/v1/audit/proof/consistency?from=10&to=%s"
                         % rc["size"]).stdout)
    r = run_cli(["audit", "verify-consistency", "--old", old_cp_path,
                 "--new", new_cp_path, "--proof", proof_path, "--key",
                 "@" + keyfile])
    check(r.returncode == 0, "the old checkpoint is extended by the new: "
          "%s %s" % (r.stdout, r.stderr))
    # Stopped and restarted: both versions re-hash to the stored leaves
    # and every checkpoint, the old and the new.
    log.srv.stop()
    r = run_cli(["audit", "check", data, "--key", "@" + keyfile])
    check(r.returncode == 0 and "consistent" in r.stdout,
          "audit check of the mixed log: %s %s" % (r.stdout, r.stderr))
    log.srv.start()
    check_eq(log.call("GET", "/v1/transfers/104").returncode, 0,
             "the restarted server serves the v1 history")


@e2e_test(timeout=60)
def test_receipt_proves_the_created_event_not_a_failed_one_with_its_id(ctx):
    from ledger import account, transfer, create
    s = ctx.start_server()
    create(s, "accounts", [account(1), account(2)])
    # Event 0 carries id 77 and fails (same account on both sides); event
    # 1 carries id 77 again and is the one created.
    st = create(s, "transfers", [transfer(77, 1, 1, 5), transfer(77, 1, 2, 6),
                                 transfer(78, 2, 1, 1)])
    check(st[0] != "created" and st[1] == "created", "statuses %r" % st)
    r = wait_receipt(s, "/v1/transfers/77/receipt")
    check_eq(r.status, 200, "receipt of 77")
    rc = r.json()
    got = auditleaf.verify_receipt(rc)
    check_eq(int(rc["event_index"]), 1, "the receipt's event is the created one")
    check_eq(int.from_bytes(got["event"][16:32], "little"), 1, "its debit")
    check_eq(int.from_bytes(got["event"][32:48], "little"), 2, "its credit")
