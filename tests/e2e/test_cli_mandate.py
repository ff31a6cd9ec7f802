"""test_cli_mandate.py - issue 4's Done-when with the CLI alone.

A merchant key is created and registered, given a mandate on an account
with a total cap of 300; its transfers of 100 are accepted up to the cap
and the next is refused (403 total-cap-exceeded) with the balance
exactly 300; the mandate is revoked and the next request is refused (401
revoked); the server key is rotated and nothing breaks: a new mandate
works, the JWKS lists both keys, and the revocation list still says the
old mandate is revoked.  Everything through `tpwallet` subcommands.
"""

import json
import os

from harness import e2e_test, check, check_eq, issue_mandate, run_cli


@e2e_test(timeout=120)
def test_cli_alone_mandate_cap_revoke_rotate(ctx):
    srv = ctx.start_server()
    data = srv.data_dir
    base = srv.cli_args()
    merchant = os.path.join(ctx.dir, "merchant.jwk")

    def cli(*args, ok=True):
        r = run_cli(list(args))
        if ok:
            check(r.returncode == 0, "tpwallet %s: %s" % (args[0],
                                                          r.stderr))
        return r

    cli("principal", "create", "--name", "merchant", "--key-out", merchant,
        *base)
    check_eq(os.stat(merchant).st_mode & 0o777, 0o600, "key file mode")
    cli("call", *base, "POST", "/v1/accounts",
        '[{"id":"10","ledger":1,"code":1},{"id":"11","ledger":1,"code":1}]')

    def issue(name, cap):
        return issue_mandate(os.path.join(ctx.dir, name),
                             os.path.join(data, "admin.jwk"), merchant,
                             ["transfers:create"], ["10"],
                             extra=["--total-cap", str(cap)])

    mandate = issue("mandate.txt", 300)
    r = cli("delegate", "inspect", "--json", mandate)
    inspected = json.loads(r.stdout)
    check(inspected["verified"] is False, "inspect says it verified nothing")
    jti = inspected["links"][0]["claims"]["jti"]
    check_eq(cli("delegate", "inspect", "--jti", mandate).stdout.strip(), jti,
             "inspect --jti")

    def pay(m, n, ok=True):
        body = json.dumps({"id": str(500 + n), "debit_account_id": "10",
                           "credit_account_id": "11", "amount": "100",
                           "ledger": 1, "code": 1})
        return cli("call", "--key", merchant, "--mandate", m, *base,
                   "POST", "/v1/transfers", body, ok=ok)

    for n in range(3):
        pay(mandate, n)
    r = pay(mandate, 3, ok=False)
    check(r.returncode == 1 and "403" in r.stderr and
          "total-cap-exceeded" in r.stderr, "4th payment: %s" % r.stderr)
    acc = json.loads(cli("call", *base, "GET", "/v1/accounts/10").stdout)
    check_eq(acc["debits_posted"], "300", "debited exactly the cap")

    cli("delegate", "revoke", "--key", os.path.join(data, "admin.jwk"),
        "--jti", jti, *base)
    r = pay(mandate, 4, ok=False)
    check(r.returncode == 1 and "401" in r.stderr and "revoked" in r.stderr,
          "after revocation: %s" % r.stderr)

    before = json.loads(cli("keys", "list", *base).stdout)["keys"]
    cli("keys", "rotate", *base)
    after = json.loads(cli("keys", "list", *base).stdout)["keys"]
    check_eq(len(after), len(before) + 1, "one key more")
    current = [k for k in after if k["status"] == "current"]
    check(len(current) == 1 and
          current[0]["kid"] not in {k["kid"] for k in before},
          "exactly one current key, the new one: %r" % after)
    check(any(k["kid"] == before[0]["kid"] and k["status"] == "verifying"
              for k in after), "the old key still verifies: %r" % after)
    jwks = json.loads(cli("keys", "jwks", *base).stdout)["keys"]
    check_eq({k["kid"] for k in jwks}, {k["kid"] for k in after},
             "JWKS publishes both")
    m2 = issue("mandate2.txt", 1000)
    pay(m2, 5)
    r = cli("call", *base, "GET", "/v1/revocations/" + jti)
    check_eq(json.loads(r.stdout)["status"], "revoked", "still revoked")
    r = pay(mandate, 6, ok=False)
    check(r.returncode == 1 and "401" in r.stderr and "revoked" in r.stderr,
          "old mandate still refused: %s" % r.stderr)
