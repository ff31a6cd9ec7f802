"""test_vault.py - the card vault (issue 16, card vault; docs/vault.md):
test cards are tokenized (masked number, brand, fingerprint; a duplicate
found by its fingerprint; a format-preserving token), revealed with
vault:reveal and refused without it, the vault key rotated and every card
still revealed, a card erased and then unrevealable, also after an old
copy of the key store is put back under the new journal, and after the
whole data directory from before the erasure is restored; no test card
number is in any file under DATA, the log, or any reply but a reveal's.
Bad input (wrong Luhn, non-digits, overlong, expired, a CVV, an unknown
token) is a problem naming the field, and journals nothing."""

import json
import os
import shutil
import struct
import time

from harness import e2e_test, check, check_eq
import journal
import test_authz

VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
HOLDER = "Ada Vaultholder"
PANS = (VISA, MASTERCARD, AMEX)
YEAR = time.gmtime().tm_year + 2
JOURNAL_COMMAND = 4  # src/log/journal.h


def card(pan, **kw):
    body = {"pan": pan, "exp_month": 12, "exp_year": YEAR}
    body.update(kw)
    return body


def reveal(s, token, reason="customer asked for a refund"):
    return s.post("/v1/vault/cards/%s/reveal" % token, {"reason": reason})


def check_problem(r, status, slug, field, what):
    check_eq(r.status, status, "%s: %r" % (what, r))
    doc = r.json()
    check_eq(doc["type"].rsplit("/", 1)[-1], slug, "%s: type" % what)
    check_eq(doc.get("field"), field, "%s: field" % what)
    return doc


def files_holding(root, needles):
    """(path, needle) for every file under root holding a needle."""
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            with open(p, "rb") as f:
                data = f.read()
            found += [(p, x) for x in needles if x.encode() in data]
    return found


def vault_entries(data_dir):
    """The journal's vault commands (kinds 40-44)."""
    out = []
    for r in journal.all_records(data_dir):
        if r.type != JOURNAL_COMMAND or len(r.payload) < 2:
            continue
        kind = struct.unpack_from("<H", r.payload, 0)[0]
        if 40 <= kind <= 44:
            out.append(kind)
    return out


@e2e_test(timeout=240)
def test_vault_tokenize_reveal_rotate_erase_and_restore(ctx):
    a = test_authz.Authz(ctx)
    s = a.s
    data = s.data_dir
    replies = []  # every reply but a reveal's: no PAN may be in them

    def keep(r):
        replies.append(r.body)
        return r

    r = keep(s.post("/v1/vault/cards", card(VISA)))
    check_eq(r.status, 201, "tokenize visa: %r" % r)
    v1 = r.json()
    check(v1["token"].startswith("tok_") and len(v1["token"]) == 28,
          "a random token: %r" % v1["token"])
    check_eq(v1["masked_pan"], "411111******1111", "masked visa")
    check_eq(v1["brand"], "visa", "visa brand")
    check_eq(len(v1["fingerprint"]), 64, "fingerprint hex")
    check_eq(v1["duplicate_of"], [], "first visa: no duplicate")

    r = keep(s.post("/v1/vault/cards", card(MASTERCARD, holder_name=HOLDER)))
    check_eq(r.status, 201, "tokenize mastercard: %r" % r)
    mc = r.json()
    check_eq((mc["brand"], mc["masked_pan"]),
             ("mastercard", "555555******4444"), "mastercard")
    check(mc["fingerprint"] != v1["fingerprint"], "fingerprints differ")

    r = keep(s.post("/v1/vault/cards", card(AMEX, format_preserving=True)))
    check_eq(r.status, 201, "tokenize amex format-preserving: %r" % r)
    ax = r.json()
    t = ax["token"]
    check(len(t) == len(AMEX) + 1 and t.isdigit() and t[0] == "0" and
          t.endswith(AMEX[-4:]) and t[1:-4] != AMEX[:-4],
          "FPE token: '0', digits, last four kept: %r" % t)

    # The same card again: a new token, found as a duplicate.
    r = keep(s.post("/v1/vault/cards", card(VISA)))
    check_eq(r.status, 201, "tokenize visa again: %r" % r)
    v2 = r.json()
    check(v2["token"] != v1["token"], "a new token")
    check_eq(v2["fingerprint"], v1["fingerprint"], "same card, same print")
    check_eq(v2["duplicate_of"], [v1["token"]], "duplicate by fingerprint")

    # Reveal with the right (the administrator's), and under a mandate.
    r = reveal(s, v1["token"])
    check_eq(r.status, 200, "reveal: %r" % r)
    check_eq((r.json()["pan"], r.json()["exp_year"]), (VISA, YEAR), "pan")
    r = reveal(s, mc["token"])
    check_eq((r.json()["pan"], r.json()["holder_name"]), (MASTERCARD, HOLDER),
             "mastercard revealed with its holder")
    r = reveal(s, ax["token"])
    check_eq(r.json()["pan"], AMEX, "FPE card revealed")
    [clerk, auditor] = a.keys(2)
    a.register(clerk, "vault-clerk")
    a.register(auditor, "vault-auditor")
    no_reveal = a.chain([{"ops": ["vault:tokenize"]}], [clerk])
    r = a.call(no_reveal, clerk, "POST",
               "/v1/vault/cards/%s/reveal" % v1["token"],
               body={"reason": "curious"})
    check_eq(r["status"], 403, "reveal without vault:reveal: %r" % r)
    replies.append(json.dumps(r).encode())
    may_reveal = a.chain([{"ops": ["vault:reveal"]}], [auditor])
    r = a.call(may_reveal, auditor, "POST",
               "/v1/vault/cards/%s/reveal" % v1["token"],
               body={"reason": "chargeback 77"})
    check_eq(r["status"], 200, "reveal with vault:reveal: %r" % r)
    check_eq(json.loads(r["body"])["pan"], VISA, "pan under a mandate")
    check_problem(keep(s.post("/v1/vault/cards/%s/reveal" % v1["token"], {})),
                  400, "invalid-field", "reason", "reveal without a reason")

    # Rotation rewraps every data key; every card still opens.
    r = keep(s.post("/v1/vault/keys/rotate", None))
    check_eq(r.status, 200, "rotate: %r" % r)
    check_eq((r.json()["version"], r.json()["min_version"],
              r.json()["rewrapped"]), (2, 2, 4), "rotation")
    for tok, pan in ((v1["token"], VISA), (mc["token"], MASTERCARD),
                     (ax["token"], AMEX)):
        r = reveal(s, tok)
        check_eq((r.status, r.json().get("pan")), (200, pan),
                 "reveal after rotation")

    # A copy of everything before the erasure (the wrap file beside the
    # data directory is the server's, as the KEK is).
    s.stop()
    before = ctx.path("before-erase")
    shutil.copytree(data, before)
    s.start()

    r = keep(s.post("/v1/vault/cards/%s/erase" % v1["token"],
                    {"reason": "GDPR erasure request 12"}))
    check_eq(r.status, 200, "erase: %r" % r)
    check_eq(r.json()["status"], "erased", "erased")
    check_problem(keep(reveal(s, v1["token"])), 410, "card-erased", "token",
                  "reveal after erase")
    check_problem(keep(s.post("/v1/vault/cards/%s/erase" % v1["token"],
                              {"reason": "again"})),
                  410, "card-erased", "token", "erase twice")
    r = reveal(s, mc["token"])
    check_eq(r.json().get("pan"), MASTERCARD, "others still reveal")
    kinds = vault_entries(data)
    check_eq(sorted(set(kinds)), [40, 41, 42, 43], "journaled kinds")

    # The old key store under the new journal: the erasure holds (the
    # journal says so), and the old store does not open at all (its
    # wrapping key was destroyed by the erasure).
    s.stop()
    current_store = ctx.path("current-vault")
    shutil.copytree(os.path.join(data, "vault"), current_store)
    shutil.rmtree(os.path.join(data, "vault"))
    shutil.copytree(os.path.join(before, "vault"), os.path.join(data, "vault"))
    s.start()
    check_problem(keep(reveal(s, v1["token"])), 410, "card-erased", "token",
                  "erased card with the old key store")
    check_problem(keep(reveal(s, mc["token"])), 503, "vault-unavailable",
                  None, "the old key store opens nothing")
    check("wrapping key was destroyed" in s.log_text(),
          "the log says why the key store is unusable")

    # The current key store back: cards not erased reveal again.
    s.stop()
    shutil.rmtree(os.path.join(data, "vault"))
    shutil.copytree(current_store, os.path.join(data, "vault"))
    s.start()
    check_eq(reveal(s, mc["token"]).json().get("pan"), MASTERCARD,
             "restored with the current key store")
    check_problem(keep(reveal(s, v1["token"])), 410, "card-erased", "token",
                  "still erased")
    s.stop()

    # The whole data directory from before the erasure, restored in its
    # place (its journal does not know the erasure): its key store does
    # not open, so the erased card's number cannot come back from it.
    shutil.move(data, ctx.path("after-erase"))
    shutil.copytree(before, data)
    s.start()
    check_problem(keep(reveal(s, v1["token"])), 503, "vault-unavailable",
                  None, "the erased card from a backup taken before it")
    s.stop()

    # No test card number anywhere but in the reveals' replies.
    needles = list(PANS) + [HOLDER]
    check_eq(files_holding(ctx.dir, needles), [], "PANs in logs and files")
    for body in replies:
        for x in needles:
            check(x.encode() not in body, "a PAN in a reply: %r" % body[:200])


@e2e_test(timeout=120)
def test_vault_refuses_bad_cards_naming_the_field_and_stores_nothing(ctx):
    s = ctx.start_server(env={"TPWALLET_VAULT_REVEALS_PER_MINUTE": "2"})
    before = len(journal.all_records(s.data_dir))
    store = os.path.join(s.data_dir, "vault", "keystore")
    with open(store, "rb") as f:
        store_before = f.read()
    cases = [
        (card("4111111111111112"), 400, "invalid-field", "pan",
         "bad_check_digit"),
        (card("4111-1111-1111-1111"), 400, "invalid-field", "pan",
         "not_digits"),
        (card("4111111111111111111111"), 400, "invalid-field", "pan",
         "bad_length"),
        (card("41111111111"), 400, "invalid-field", "pan", "bad_length"),
        (card(VISA, exp_year=time.gmtime().tm_year - 1), 400,
         "invalid-field", "exp_year", "expired"),
        (card(VISA, exp_month=13), 400, "invalid-field", "exp_month",
         "1..12"),
        (card(VISA, cvv="123"), 422, "card-data-refused", "cvv", "never"),
        (card(VISA, Track2=";4111111111111111=2912?"), 422,
         "card-data-refused", "Track2", "never"),
        (card(VISA, colour="blue"), 400, "unknown-field", "colour",
         "members"),
    ]
    for body, status, slug, field, words in cases:
        r = s.post("/v1/vault/cards", body)
        doc = check_problem(r, status, slug, field, "card %r" % field)
        check(words in doc.get("detail", ""),
              "%s: detail says %r: %r" % (field, words, doc))
        for x in PANS + ("4111111111111112",):
            check(x.encode() not in r.body, "PAN echoed: %r" % r.body)
    check_problem(reveal(s, "tok_000000000000000000000000"), 404,
                  "card-not-found", "token", "unknown token")
    check_problem(s.post("/v1/vault/cards/%s/erase" % "tok_nope",
                         {"reason": "x"}),
                  404, "card-not-found", "token", "erase unknown token")
    check_eq(len(journal.all_records(s.data_dir)), before,
             "nothing journaled by refused requests")
    with open(store, "rb") as f:
        check(f.read() == store_before, "the key store changed")

    # Reveals per principal and minute (the setting, 2 here).
    t = s.post("/v1/vault/cards", card(VISA)).json()["token"]
    if time.gmtime().tm_sec >= 55:  # not across a minute's edge
        time.sleep(61 - time.gmtime().tm_sec)
    check_eq(reveal(s, t).status, 200, "first reveal")
    check_eq(reveal(s, t).status, 200, "second reveal")
    check_problem(reveal(s, t), 429, "reveal-rate-limited", None,
                  "third reveal in a minute")
    s.stop()
    check_eq(files_holding(ctx.dir, [VISA, "4111111111111112"]), [],
             "PANs in files and logs")
