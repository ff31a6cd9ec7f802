"""test_audit_decoded.py - the readable audit trail (issue 11, item 2):
GET /v1/audit/entries/{i}?view=decoded names each entry's type, time,
author and what changed; `tpwallet audit log` lists the same decoded
entries newest first with its filters; a damaged entry says so and
still shows its bytes."""

import base64
import json
import urllib.parse

from harness import (e2e_test, check, check_eq, run_cli, wait_audit_size)
import journal
import test_authz
from test_client_policy import base_policy, put_policy


def decoded(s, i):
    r = s.get("/v1/audit/entries/%d?view=decoded" % i)
    check_eq(r.status, 200, "GET entry %d decoded: %r" % (i, r))
    return r.json()


def audit_log(data, *args):
    return run_cli(["audit", "log", data] + list(args))


def text_line(index, d):
    """The line `tpwallet audit log` prints for a decoded view d."""
    a = d.get("author")
    if a is None:
        who = "-"
    elif "thumbprint" not in a:
        who = a["name"]
    elif "name" in a:
        who = "%s (%s)" % (a["name"], a["thumbprint"])
    else:
        who = a["thumbprint"]
    return "%d\t%s\t%s\t%s\t%s" % (index, d["time"], d.get("command", d["type"]),
                                   who, d["summary"])


@e2e_test(timeout=180)
def test_audit_decoded_view_and_log_name_who_changed_what(ctx):
    a = test_authz.Authz(ctx)
    s = a.s
    [bot] = a.keys(1)
    tp = bot["thumbprint"]
    a.register(bot, "release-bot")
    links = a.chain([{"ops": ["policy:admin"]}], [bot])
    doc, _, _ = base_policy()
    r = a.call(links, bot, "PUT",
               "/v1/client-policy?reason=" +
               urllib.parse.quote("raise android min to 4.0.0"), body=doc)
    check_eq(r["status"], 201, "PUT policy as release-bot: %r" % r)
    r = s.post("/v1/client-policy/overrides",
               {"platform": "android", "range": "3.9.x", "mode": "allow",
                "duration_s": 600, "reason": "locked out by REL-311"})
    check_eq(r.status, 201, "override: %r" % r)
    ov = r.json()["id"]
    r = s.request("DELETE", "/v1/client-policy/overrides/%d?reason=%s"
                  % (ov, urllib.parse.quote("3.9.5 shipped")))
    check_eq(r.status, 200, "end override: %r" % r)
    r = s.post("/v1/revocations", {"iss": tp, "jti": "gone-1"})
    check_eq(r.status // 100, 2, "revocation: %r" % r)
    size = len(journal.all_records(s.data_dir))
    check_eq(int(wait_audit_size(s, size)["size"]), size, "audit size")

    views = [decoded(s, i) for i in range(size)]
    for i, e in enumerate(views):
        raw = s.get("/v1/audit/entries/%d" % i).json()
        check_eq({k: v for k, v in e.items() if k != "decoded"}, raw,
                 "entry %d: the decoded answer adds only 'decoded'" % i)
        d = e["decoded"]
        check_eq((d["seq"], d["timestamp_ns"], d["type"]),
                 (e["seq"], e["timestamp"], e["type"]),
                 "entry %d: seq, time and type" % i)
    cmds = [e["decoded"].get("command") for e in views]
    ctx.note("commands: %r" % cmds)
    want_cmds = ["principal", "policy_set", "policy_override",
                 "policy_override_end", "revoke"]
    check_eq([c for c in cmds if c in want_cmds], want_cmds,
             "the commands in journal order")
    at = {c: i for i, c in enumerate(cmds) if c in want_cmds}
    by = {c: views[at[c]]["decoded"] for c in want_cmds}
    admin = {"name": "administrator"}
    check_eq({k: by["principal"][k] for k in ("summary", "fields")},
             {"summary": 'principal "release-bot" registered (thumbprint '
              '%s)' % tp,
              "fields": {"name": "release-bot", "thumbprint": tp}},
             "the registration")
    check("author" not in by["principal"], "a registration has no author")
    doc_bytes = by["policy_set"]["fields"]["document_bytes"]
    check(int(doc_bytes) > 100, "document_bytes %r" % doc_bytes)
    check_eq({k: by["policy_set"][k] for k in ("author", "summary",
                                                "fields")},
             {"author": {"name": "release-bot", "thumbprint": tp},
              "summary": "client policy version 1 set: raise android min "
              "to 4.0.0",
              "fields": {"reason": "raise android min to 4.0.0",
                         "document_bytes": doc_bytes, "version": "1"}},
             "the policy set by release-bot")
    check_eq({k: by["policy_override"][k] for k in ("author", "summary",
                                                     "fields")},
             {"author": admin,
              "summary": "override %d opened: android 3.9.x -> allow for "
              "600 s: locked out by REL-311" % ov,
              "fields": {"platform": "android", "range": "3.9.x",
                         "reason": "locked out by REL-311", "mode": "allow",
                         "duration_s": "600", "override_id": str(ov)}},
             "the override")
    check_eq({k: by["policy_override_end"][k] for k in ("author", "summary",
                                                         "fields")},
             {"author": admin,
              "summary": "override %d (android 3.9.x) ended: 3.9.5 shipped"
              % ov,
              "fields": {"override_id": str(ov), "reason": "3.9.5 shipped",
                         "platform": "android", "range": "3.9.x"}},
             "the override's end (with the override's platform and range)")
    check_eq({k: by["revoke"][k] for k in ("summary", "fields")},
             {"summary": 'mandate link jti "gone-1" of issuer %s revoked'
              % tp,
              "fields": {"issuer": tp, "jti": "gone-1", "scope": "jti"}},
             "the revocation")
    check_eq(by["policy_set"]["time"][:2], "20", "RFC 3339 time")

    r = s.get("/v1/audit/entries/0?view=raw")
    check_eq((r.status, r.json().get("type", "").split("/")[-1]),
             (400, "invalid-query"), "view=raw")

    # tpwallet audit log: the same views, newest first.
    data = s.data_dir
    lines = [text_line(i, views[i]["decoded"]) for i in range(size)]
    r = audit_log(data)
    check_eq((r.returncode, r.stdout), (0, "".join(
        l + "\n" for l in reversed(lines))), "audit log: " + r.stderr)
    r = audit_log(data, "--json")
    want = []
    for i in reversed(range(size)):
        o = {"index": str(i)}
        o.update(views[i]["decoded"])
        want.append(o)
    check_eq([json.loads(l) for l in r.stdout.splitlines()], want,
             "audit log --json")
    r = audit_log(data, "--type", "policy_override_end")
    check_eq(r.stdout, lines[at["policy_override_end"]] + "\n", "--type")
    for who in ("release-bot", tp[:8]):
        r = audit_log(data, "--author", who)
        check_eq(r.stdout, lines[at["policy_set"]] + "\n", "--author " + who)
    r = audit_log(data, "--author", "administrator")
    check_eq(r.stdout, lines[at["policy_override_end"]] + "\n" +
             lines[at["policy_override"]] + "\n", "--author administrator")
    r = audit_log(data, "--grep", "REL-311")
    check_eq(r.stdout, lines[at["policy_override"]] + "\n", "--grep")
    r = audit_log(data, "--limit", "2")
    check_eq(r.stdout, "".join(l + "\n" for l in reversed(lines[-2:])),
             "--limit 2")
    since = views[at["policy_override"]]["decoded"]["time"]
    until = views[-1]["decoded"]["timestamp_ns"]
    until_s = str(int(until) // 10**9 + 1)
    r = audit_log(data, "--since", since, "--type", "command")
    check_eq(r.stdout, "".join(
        lines[i] + "\n" for i in reversed(range(size))
        if i >= at["policy_override"] and views[i]["decoded"]["type"] ==
        "command"), "--since " + since)
    r = audit_log(data, "--until", since, "--type", "command")
    check_eq(r.stdout, "".join(
        lines[i] + "\n" for i in reversed(range(size))
        if i <= at["policy_override"] and views[i]["decoded"]["type"] ==
        "command"), "--until " + since)
    # Unix seconds: the second of the first entry keeps all; the second
    # before it keeps none for --until, the second after the last none
    # for --since.
    first_s = int(views[0]["decoded"]["timestamp_ns"]) // 10**9
    r = audit_log(data, "--since", str(first_s))
    check_eq(r.stdout, "".join(l + "\n" for l in reversed(lines)),
             "--since %d" % first_s)
    r = audit_log(data, "--until", str(first_s - 1))
    check_eq((r.returncode, r.stdout), (0, ""), "--until before the first")
    r = audit_log(data, "--since", until_s)
    check_eq((r.returncode, r.stdout), (0, ""), "--since after the last")
    for bad in (["--limit", "0"], ["--since", "yesterday"],
                ["--limit", "x"]):
        r = audit_log(data, *bad)
        check_eq(r.returncode, 2, "%r: exit" % bad)
    r = run_cli(["audit", "log", "--help"])
    check("Example:\n  tpwallet audit log " in r.stdout, "--help example")

    # A damaged entry: a byte of the override's range changed on disk
    # under the running server.  The decoded view says so and still shows
    # the bytes; the raw view keeps its problem; `audit log` lists the
    # entries before it and the damage, and exits 1.
    k = at["policy_override"]
    rec = journal.all_records(data)[k]
    check_eq(rec.seq, k + 1, "the override's record")
    journal.flip_byte(rec.path, rec.offset + (rec.size - len(rec.payload)) +
                      16 + 32 + 48)
    r = s.get("/v1/audit/entries/%d" % k)
    check_eq((r.status, r.json().get("type", "").split("/")[-1]),
             (500, "audit-entry-changed"), "raw view of the damaged entry")
    e = decoded(s, k)
    check_eq(e["decoded"], {"error": "the entry's bytes on disk do not "
                            "match its leaf hash: it was changed after it "
                            "was logged"}, "decoded view of the damage")
    check_eq(base64.b64decode(e["entry"]),
             open(rec.path, "rb").read()[rec.offset:rec.end],
             "the damaged entry's bytes as they are on disk")
    check_eq({x: y for x, y in e.items() if x not in ("decoded", "entry")},
             {x: y for x, y in views[k].items()
              if x not in ("decoded", "entry")},
             "the damaged entry's other members")
    r = audit_log(data)
    out = r.stdout.splitlines()
    check_eq(r.returncode, 1, "audit log of a damaged journal: exit")
    check(out[0].startswith("%d\t-\tdamaged\t-\tthe journal cannot be "
                            "read past here: " % k),
          "the damaged entry's line: %r" % out[0])
    check_eq(out[1:], list(reversed(lines[:k])), "the entries before it")
    check("the journal is damaged: run tpwallet audit check" in r.stderr,
          "stderr: %r" % r.stderr)
    s.stop()
