"""test_cli.py - the command line: help, version, usage errors, init, bench."""

import json
import os
import re
import socket
import subprocess
import time

from harness import (CONFIG, e2e_test, run_cli, check, check_eq, free_port,
                     run_daemon, scaled, slow_factor, wait_checkpoint,
                     wait_receipt)
from ledger import account, create, transfer

COMMANDS = ("init", "serve", "bench", "version", "help")


@e2e_test(timeout=30)
def test_cli_help_lists_every_command(ctx):
    p = run_cli(["help"])
    check_eq(p.returncode, 0, "tpwallet help exit status")
    out = p.stdout + p.stderr
    for c in COMMANDS:
        check(c in out, "tpwallet help does not list %r:\n%s" % (c, out))


@e2e_test(timeout=30)
def test_cli_every_command_answers_help_with_exit_0(ctx):
    for c in COMMANDS:
        p = run_cli([c, "--help"])
        check_eq(p.returncode, 0, "tpwallet %s --help exit status" % c)
        check(p.stdout.strip() != "", "tpwallet %s --help printed nothing on "
              "stdout (stderr: %r)" % (c, p.stderr[:200]))
        check("usage" in p.stdout.lower() or c in p.stdout,
              "tpwallet %s --help does not look like usage: %r"
              % (c, p.stdout[:200]))


@e2e_test(timeout=30)
def test_cli_version_prints_a_version(ctx):
    p = run_cli(["version"])
    check_eq(p.returncode, 0, "tpwallet version exit status")
    check(any(ch.isdigit() for ch in p.stdout),
          "tpwallet version printed no version: %r" % p.stdout)


@e2e_test(timeout=30)
def test_cli_unknown_command_and_option_exit_2(ctx):
    p = run_cli(["frobnicate"])
    check_eq(p.returncode, 2, "tpwallet frobnicate exit status")
    check(p.stderr.strip() != "", "unknown command: nothing on stderr")
    p = run_cli(["serve", "--no-such-option"])
    check_eq(p.returncode, 2, "tpwallet serve --no-such-option exit status")
    p = run_cli(["init", "--no-such-option"])
    check_eq(p.returncode, 2, "tpwallet init --no-such-option exit status")


@e2e_test(timeout=30)
def test_cli_init_creates_a_data_dir_and_serve_uses_it(ctx):
    d = ctx.path("fresh")
    p = run_cli(["init", "--data", d])
    check_eq(p.returncode, 0, "tpwallet init --data <absent dir> exit "
             "status (stderr %r)" % p.stderr)
    check(os.path.isfile(os.path.join(d, "tpwallet.data")),
          "init did not write the tpwallet.data marker")
    s = ctx.start_server(data_dir=d)
    r = s.get("/healthz")
    check_eq(r.status, 200, "GET /healthz on an init'ed dir")
    s.stop()


@e2e_test(timeout=30)
def test_cli_init_refuses_a_non_empty_foreign_dir(ctx):
    d = ctx.path("foreign")
    os.makedirs(d)
    with open(os.path.join(d, "precious.txt"), "w") as f:
        f.write("not tpwallet's\n")
    before = sorted(os.listdir(d))
    p = run_cli(["init", "--data", d])
    # docs/operations.md: a non-empty directory without the marker is
    # refused with exit 65.
    check_eq(p.returncode, 65, "tpwallet init on a non-empty foreign dir "
             "(stdout %r)" % p.stdout)
    check(p.stderr.strip() != "", "init refused without a message")
    check_eq(sorted(os.listdir(d)), before, "foreign dir contents after init")


@e2e_test(timeout=30)
def test_cli_serve_refuses_a_non_empty_foreign_dir(ctx):
    d = ctx.path("foreign")
    os.makedirs(d)
    with open(os.path.join(d, "precious.txt"), "w") as f:
        f.write("not tpwallet's\n")
    s = ctx.server(data_dir=d)
    proc = s.spawn()
    try:
        rc = proc.wait(timeout=10 * slow_factor())
    except subprocess.TimeoutExpired:
        rc = None
    s.force_cleanup()
    check(rc is not None, "serve on a non-empty foreign dir did not exit "
          "within %.0fs" % (10 * slow_factor()))
    check_eq(rc, 65, "serve on a non-empty foreign dir: exit status")
    check_eq(sorted(os.listdir(d)), ["precious.txt"],
             "foreign dir contents after serve")


@e2e_test(timeout=120)
def test_cli_bench_json_reports_throughput_and_equal_digest(ctx):
    accounts = 1000
    transfers = scaled(20000, 20000)
    p = run_cli(["bench", "--accounts", str(accounts), "--transfers",
                 str(transfers), "--json"], timeout=60,
                env={"TMPDIR": ctx.dir}, cwd=ctx.dir)
    check_eq(p.returncode, 0, "tpwallet bench exit status (stderr %r)"
             % p.stderr[-500:])
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    check(lines, "bench --json printed nothing")
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        try:
            doc = json.loads(lines[-1])
        except ValueError:
            raise AssertionError("bench --json output is not JSON: %r"
                                 % p.stdout[:500])
    check(isinstance(doc, dict), "bench --json: not an object: %r" % doc)
    tps = doc.get("transfers_per_second")
    check(isinstance(tps, (int, float)) and not isinstance(tps, bool)
          and tps > 0, "transfers_per_second: %r" % tps)
    check(doc.get("digest_equal_after_recovery") is True,
          "digest_equal_after_recovery: %r" % doc.get(
              "digest_equal_after_recovery"))
    # Bench must clean up its temp data under TMPDIR.
    left = [x for x in os.listdir(ctx.dir)]
    check(left == [], "bench left files in TMPDIR: %r" % left)



@e2e_test(timeout=30)
def test_cli_config_errors_name_the_line_or_variable_and_flags_apply_last(ctx):
    conf = ctx.path("tpwallet.conf")
    with open(conf, "w") as f:
        f.write("# a comment\nlog_level = warn\nbogus_key = 1\n")
    p = run_cli(["serve", "--config", conf, "--data", ctx.path("d1")])
    check_eq(p.returncode, 2, "serve with an unknown config key: exit status")
    check("bogus_key" in p.stderr and ":3:" in p.stderr,
          "the refusal should name the key and line 3: %r" % p.stderr)
    # A bad value in the environment is refused too, naming the variable.
    env = dict(os.environ, TPWALLET_THREADS="many")
    p = run_cli(["serve", "--data", ctx.path("d2")], env=env)
    check_eq(p.returncode, 2, "serve with TPWALLET_THREADS=many: exit status")
    check("TPWALLET_THREADS" in p.stderr,
          "the refusal should name the variable: %r" % p.stderr)
    # Flags are applied after the file: a bad --listen is refused even
    # when the file's listen is valid.
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:1\n")
    p = run_cli(["serve", "--config", conf, "--listen", "nonsense",
                 "--data", ctx.path("d3")])
    check_eq(p.returncode, 2, "--listen nonsense over a valid file: exit")
    check("listen" in p.stderr, "the refusal should name listen: %r"
          % p.stderr)


# Every numeric setting and its largest accepted value (docs/operations.md).
NUMBER_SETTINGS = {
    "threads": 256, "body_bytes_max": 64 << 20, "connection_timeout_s": 3600,
    "connections_max": 65536, "body_budget_bytes": 64 << 30,
    "body_budget_per_address_bytes": 64 << 30,
    "body_budget_per_principal_bytes": 64 << 30, "header_timeout_s": 3600,
    "body_timeout_s": 86400, "body_rate_min_bytes_s": 1 << 30,
    "connections_per_address_max": 65536,
    "snapshot_every": (1 << 64) - 1, "key_rotation_days": 3660,
    "link_leeway_s": 300, "revocations_per_principal": 1 << 16,
    "manifest_public": 1, "manifest_ttl_max_s": 7 * 86400,
}


@e2e_test(timeout=120)
def test_cli_a_number_that_does_not_parse_is_refused_with_exit_2(ctx):
    # Not a number in the file, a sign in the environment, one past the
    # largest value as a flag or in the file: each is refused, naming the
    # key and the value, before anything is served.
    def refused(p, key, value, where):
        check_eq(p.returncode, 2, "%s %s=%r: exit status" % (where, key, value))
        want = "invalid value for '%s': '%s'" % (key, value)
        check(want in p.stderr, "%s: stderr should say %r: %r"
              % (where, want, p.stderr))

    conf = ctx.path("tpwallet.conf")
    for i, (key, top) in enumerate(sorted(NUMBER_SETTINGS.items())):
        data = ctx.path("d%d" % i)
        for value in ("12x", str(top + 1)):
            with open(conf, "w") as f:
                f.write("%s = %s\n" % (key, value))
            p = run_cli(["serve", "--config", conf, "--data", data])
            refused(p, key, value, "config file")
            check(":1:" in p.stderr, "the refusal should name line 1: %r"
                  % p.stderr)
        env = {"TPWALLET_" + key.upper(): "-1"}
        p = run_cli(["serve", "--data", data], env=env)
        refused(p, key, "-1", "environment")
    p = run_cli(["serve", "--threads", "257", "--data", ctx.path("f")])
    refused(p, "threads", "257", "flag")


@e2e_test(timeout=60)
def test_cli_numbers_have_one_spelling_leading_zeros_refused(ctx):
    # Every number a flag, a setting or the environment gives is read by
    # core/parse's canonical decimal: "08" and "007" are refused as
    # "-1" and " 5" always were (they were accepted before issue 10).
    p = run_cli(["call", "--timeout", "05", "--server",
                 "http://127.0.0.1:1", "GET", "/v1/keys"], timeout=10)
    check_eq(p.returncode, 2, "call --timeout 05: exit status")
    check("--timeout" in p.stderr, "names --timeout: %r" % p.stderr)
    p = run_cli(["delegate", "issue", "--expires", "090s"], timeout=10)
    check_eq(p.returncode, 2, "delegate --expires 090s: exit status")
    check("--expires 090s is not a duration" in p.stderr,
          "names --expires: %r" % p.stderr)
    env = dict(os.environ, TPWALLET_THREADS="08")
    p = run_cli(["serve", "--data", ctx.path("d1")], env=env, timeout=10)
    check_eq(p.returncode, 2, "serve with TPWALLET_THREADS=08: exit status")
    check("TPWALLET_THREADS" in p.stderr, "names the variable: %r" % p.stderr)
    conf = ctx.path("zeros.conf")
    with open(conf, "w") as f:
        f.write("threads = 007\n")
    p = run_cli(["serve", "--config", conf, "--data", ctx.path("d2")],
                timeout=10)
    check_eq(p.returncode, 2, "serve with threads = 007: exit status")
    check("threads" in p.stderr and ":1:" in p.stderr,
          "names the key and line 1: %r" % p.stderr)
    p = run_cli(["serve", "--listen", "127.0.0.1:08080", "--data",
                 ctx.path("d3")], timeout=10)
    check_eq(p.returncode, 2, "serve --listen 127.0.0.1:08080: exit status")
    check("listen" in p.stderr, "names listen: %r" % p.stderr)


@e2e_test(timeout=60)
def test_cli_call_batch_exit_status_reads_every_event(ctx):
    """docs/cli.md, `tpwallet call`: a batch is answered 200 whatever its
    events' results; the exit status is 0 when every event is created or
    exists, 1 when every event failed, 3 when some did."""
    s = ctx.start_server()
    base = s.cli_args()

    def call(path, body):
        return run_cli(["call"] + base + ["POST", path, json.dumps(body)])

    acc = [{"id": str(i), "ledger": 1, "code": 10} for i in (1, 2)]
    p = call("/v1/accounts", acc)
    check_eq(p.returncode, 0, "a batch of new accounts: exit status")
    check_eq(p.stderr, "", "a batch that fully succeeded: stderr")
    p = call("/v1/accounts", acc)
    check_eq(p.returncode, 0, "the same batch again (every event exists)")
    # Every event failed: one with a different code, one with id 0.
    p = call("/v1/accounts", [{"id": "1", "ledger": 1, "code": 11},
                              {"id": "0", "ledger": 1, "code": 10}])
    check_eq([r["status"] != "created" for r in json.loads(p.stdout)],
             [True, True], "results printed on stdout")
    check_eq(p.returncode, 1, "a batch whose every event failed: exit status")
    check_eq(p.stderr, "tpwallet call: 2 of 2 events failed\n", "stderr")
    # Some failed.
    p = call("/v1/transfers", [
        {"id": "7", "debit_account_id": "1", "credit_account_id": "2",
         "amount": "5", "ledger": 1, "code": 1},
        {"id": "8", "debit_account_id": "1", "credit_account_id": "404",
         "amount": "5", "ledger": 1, "code": 1}])
    check_eq(p.returncode, 3, "a batch with some events failed: exit status")
    check_eq(p.stderr, "tpwallet call: 1 of 2 events failed\n", "stderr")
    # A single object keeps its own statuses: 422 exits 1.
    p = call("/v1/transfers", {"id": "9", "debit_account_id": "1",
                               "credit_account_id": "404", "amount": "5",
                               "ledger": 1, "code": 1})
    check_eq(p.returncode, 1, "one failed transfer (422): exit status")
    s.stop()


def _commands():
    """The commands `tpwallet help` lists (its command table)."""
    p = run_cli(["help"])
    check_eq(p.returncode, 0, "tpwallet help exit status")
    table = p.stdout.split("commands:\n")[1].split("\n\n")[0]
    names = re.findall(r"^  ([a-z]+) +\S", table, re.M)
    check(len(names) >= len(COMMANDS), "tpwallet help lists %r" % names)
    return names


def _examples(name, text):
    """The commands under the 'Example...:' line of a usage text, a
    trailing backslash joining a line to the next."""
    lines = text.split("\n")
    at = [i for i, l in enumerate(lines) if re.match(r"Examples?\b.*:$", l)]
    check_eq(len(at), 1, "tpwallet %s --help: 'Example:' lines" % name)
    out, cur = [], ""
    for l in lines[at[0] + 1:]:
        if not l.startswith("  "):
            break
        cur += l.strip()
        if cur.endswith("\\"):
            cur = cur[:-1]
            continue
        out.append(cur)
        cur = ""
    check(out, "tpwallet %s --help: an empty example" % name)
    for e in out:
        check(e.startswith("tpwallet %s" % name),
              "tpwallet %s --help: the example %r runs another command"
              % (name, e))
    return out


# Subcommands the usage texts must list (so that a parse that finds
# none, or drops a group, fails instead of checking nothing).
KNOWN_SUBCOMMANDS = ("audit verify-inclusion", "audit log", "keys rotate",
                     "principal create", "principal id", "delegate revoke",
                     "policy override open", "policy override extend",
                     "policy activity load")


def _subcommands(name, text):
    """The subcommands a 'usage: tpwallet NAME <subcommand>' text lists,
    in order: an indented lower-case word at the start of a line (before
    the options and the example), and a second word after one space when
    it is lower-case too ("override open"; "list    the keys" is a word
    and its description)."""
    if "<subcommand>" not in text.split("\n")[0]:
        return []
    out = []
    for line in text.split("\n")[1:]:
        if line.startswith(("Example", "options")):
            break
        m = re.match(r"^  ([a-z][a-z-]*)(?: ([a-z]+)(?= |$))?", line)
        if m:
            sub = " ".join(w for w in m.groups() if w)
            if sub not in out:
                out.append(sub)
    return out


def _hsm_example_env(ctx, env, work):
    """env for the `tpwallet keys init-hsm` and `keys migrate` examples: a
    SoftHSM2 token (test_hsm's) named by work/hsm.conf, its PIN in the
    environment, and work/old-data, a stopped server's data directory
    with a file KEK, for the migration."""
    import test_hsm
    hsm = test_hsm.softhsm(ctx)
    with open(os.path.join(work, "hsm.conf"), "w") as f:
        f.write("kek_pkcs11_module = %s\nkek_pkcs11_token = %s\n"
                "kek_pkcs11_key_label = %s\n"
                % (test_hsm.SOFTHSM_MODULE, test_hsm.TOKEN,
                   test_hsm.KEY_LABEL))
    r = run_cli(["init", "--data", os.path.join(work, "old-data")])
    check_eq(r.returncode, 0, "init old-data: %s" % r.stderr)
    return dict(env, TPWALLET_KEK_PKCS11_PIN=test_hsm.USER_PIN, **hsm)


def _tls_example_env(ctx, env):
    """env for the `tpwallet tls` examples: an HTTPS server with a
    standby certificate (test_tls_standby's), as TPWALLET_SERVER,
    TPWALLET_DATA and TPWALLET_CACERT."""
    import test_tls
    import test_tls_standby
    pki = test_tls.make_pki(ctx.path("tls-pki"))
    standby = test_tls_standby.make_standby(pki)
    t = test_tls.start_tls(ctx, pki, pki["server1.pem"],
                           env=test_tls_standby.standby_env(pki, standby))
    out = dict(env)
    out.update({"TPWALLET_SERVER": "https://127.0.0.1:%d" % t.port,
                "TPWALLET_DATA": t.data_dir,
                "TPWALLET_CACERT": pki["ca.pem"]})
    return out


def _help_example_files(s, work):
    """What the subcommands' examples name, made as a reader would have
    them: a receipt (receipt.json), two checkpoints and the consistency
    proof between them (old.note, new.note, proof.txt), a policy in force
    (version 1) and another document (policy.json), activity to load
    (history.json), an acquirer's settlement file of a quiet day
    (settlement-2026-12-07.csv, reconciled against a server whose
    settlement account is 901)."""
    create(s, "accounts", [account(901), account(902)], ["created"] * 2)
    create(s, "transfers", [transfer(901, 901, 902, 5)], ["created"])
    old, old_size = wait_checkpoint(s, 1, cover_head=True)
    r = wait_receipt(s, "/v1/transfers/901/receipt")
    check_eq(r.status, 200, "GET /v1/transfers/901/receipt")
    files = {"receipt.json": r.body.decode(), "old.note": old}
    create(s, "transfers", [transfer(902, 902, 901, 1)], ["created"])
    new, new_size = wait_checkpoint(s, old_size + 1, cover_head=True)
    files["new.note"] = new
    r = s.get("/v1/audit/proof/consistency?from=%d&to=%d"
              % (old_size, new_size))
    check_eq(r.status, 200, "GET /v1/audit/proof/consistency")
    files["proof.txt"] = r.body.decode()
    first = {"platforms": {"android": {"min_supported": "3.0.0",
                                       "blocked": ["3.x"]}}}
    r = s.request("PUT", "/v1/client-policy?reason=first", body=first)
    check_eq(r.status, 201, "PUT /v1/client-policy (version 1)")
    files["policy.json"] = json.dumps(
        {"platforms": {"android": {"min_supported": "4.0.0",
                                   "blocked": ["3.x"]}}})
    files["history.json"] = json.dumps({"observations": [
        {"day": time.strftime("%Y-%m-%d", time.gmtime()),
         "platform": "android", "version": "4.1.0", "user": "u1"}]})
    files["settlement-2026-12-07.csv"] = (
        "settlement_date,acquirer_ref,idempotency_key,type,amount,"
        "currency\n")
    for name, text in files.items():
        with open(os.path.join(work, name), "w") as f:
            f.write(text)


@e2e_test(timeout=180)
def test_cli_every_command_help_has_an_example_that_runs(ctx):
    """Every command in `tpwallet help`, and every subcommand its usage
    lists (`tpwallet policy override open`, `keys rotate`...), answers
    --help with exit 0, its own usage line and an 'Example:' block; each
    example runs as printed (cwd holding the `data` a server serves,
    TPWALLET_SERVER naming it, and the files the examples name) and exits
    0, a command's examples first, then its subcommands' in the order its
    usage lists them; the two that serve (serve, witness) run on a free
    port until they listen."""
    work = ctx.path("work")
    os.makedirs(os.path.join(work, "fresh"))
    # An acquirer connector (never called: `reconcile`'s example only
    # reads the ledger) whose settlement account is 901.
    s = ctx.start_server(data_dir=os.path.join(work, "data"), env={
        "TPWALLET_ACQUIRER": "http://127.0.0.1:9",
        "TPWALLET_ACQUIRER_SETTLEMENT_ACCOUNT": "901"})
    env = dict(os.environ)
    env.update({"TPWALLET_SERVER": "http://127.0.0.1:%d" % s.port,
                "TPWALLET_DATA": os.path.join(work, "data"),
                "PATH": os.path.dirname(CONFIG["binary"]) + os.pathsep
                + env.get("PATH", "")})
    env.pop("TPWALLET_CONFIG", None)
    key = s.get("/v1/audit/key").body.decode().split("\n")[0]
    with open(os.path.join(work, "log.vkey"), "w") as f:
        f.write(key + "\n")
    _help_example_files(s, work)
    names = _commands()
    for c in COMMANDS:
        check(c in names, "tpwallet help does not list %r" % c)
    helps = []
    for name in names:
        p = run_cli([name, "--help"])
        check_eq(p.returncode, 0, "tpwallet %s --help exit status" % name)
        helps.append((name, p.stdout))
        for sub in _subcommands(name, p.stdout):
            full = "%s %s" % (name, sub)
            q = run_cli(full.split() + ["--help"])
            check_eq(q.returncode, 0, "tpwallet %s --help exit status"
                     % full)
            check(q.stdout.startswith("usage: tpwallet %s" % full),
                  "tpwallet %s --help shows another usage: %r"
                  % (full, q.stdout[:200]))
            helps.append((full, q.stdout))
    listed = [n for n, _ in helps]
    for known in KNOWN_SUBCOMMANDS:
        check(known in listed, "no usage lists %r (found %r)"
              % (known, listed))
    tls_env = None
    hsm_env = None
    for name, text in helps:
        for cmd in _examples(name, text):
            run_env = env
            if name in ("keys init-hsm", "keys migrate"):
                hsm_env = hsm_env or _hsm_example_env(ctx, env, work)
                run_env = hsm_env
            if name.split()[0] == "tls":
                # `tpwallet tls` needs an HTTPS server with a standby.
                tls_env = tls_env or _tls_example_env(ctx, env)
                run_env = tls_env
            if name in ("serve", "witness", "cdc"):
                # cdc runs until stopped: its --metrics-listen port says
                # it is up (publishing to no broker, it retries).
                m = re.search(r"--((?:metrics-)?listen) 127\.0\.0\.1:(\d+)",
                              cmd)
                check(m, "%r listens on no loopback port" % cmd)
                port = free_port()
                cmd = cmd.replace(m.group(0), "--%s 127.0.0.1:%d"
                                  % (m.group(1), port))
                run_daemon(ctx, cmd, port,
                            os.path.join(work, "fresh") if name == "serve"
                            else work, env)
                continue
            r = subprocess.run(["bash", "-c", cmd], cwd=work, env=run_env,
                               stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, errors="replace",
                               timeout=60 * slow_factor())
            check_eq(r.returncode, 0, "the example %r (stderr %r)"
                     % (cmd, r.stderr[-600:]))
    s.stop()
