"""test_docs.py - the documentation's shell walk-throughs, run as written.

Which blocks run: a ```sh block whose previous non-blank line is the
HTML comment `<!-- test: run -->` (invisible when the Markdown is
rendered).  Every other block is left alone: `make run` (the test starts
the server itself), reference examples that name files the reader has,
commands for a second machine.

How they run: the marked blocks of one document, in order, form one bash
script run with `set -eo pipefail`, so any command that fails fails the
test.  A command the docs show being refused is written
`COMMAND || echo "exit $?"` with the comment `# exit N` under it; the
script's `exit N` lines must be exactly those comments, in order, so a
refusal that stops happening fails the test too.  Other `# ...` comment
lines show sample output and are not compared (ids and times differ).

Where: a fresh directory holding `data` (the server's data directory,
started by the test on a free loopback port), `build` (the binary's
directory) and `tests` (this repository's), as the docs assume after
`make run`.  The server is reached through the variables the docs name:
TPWALLET_SERVER and TPWALLET_DATA are set, and the literal
`http://127.0.0.1:8080` of curl examples is replaced by the server's URL.

The README, docs/cli.md, docs/client-policy.md, docs/operations.md and
docs/keys.md run one after the other against the same server, as a
newcomer would follow them: ids (accounts, principals, files) must not
collide.  A block that cannot run as written (a production path, a
second machine, a stopped server) is mirrored by a test below, or in
test_durability.py, with its path and port replaced, and an HTML
comment beside it names that test.

Blocks that are not run are still checked: every `tpwallet ...` command
line in the README and docs/*.md must name a command, subcommand and
flags the CLI's --help texts know
(test_docs_command_lines_name_real_subcommands_and_flags).
"""

import json
import os
import re
import subprocess

from harness import (CONFIG, e2e_test, check, check_eq, free_port,
                     run_cli, run_daemon, slow_factor, TestFailure)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MARK = "<!-- test: run -->"
DOC_URL = "http://127.0.0.1:8080"


def marked_blocks(doc):
    """The ```sh blocks of doc (a path under the repository) marked to
    run, in order, as (first line number, text)."""
    lines = open(os.path.join(ROOT, doc)).read().split("\n")
    blocks, prev, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            start, body = i, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            check(i < len(lines), "%s:%d: unclosed code block"
                  % (doc, start + 1))
            if prev == MARK:
                check_eq(line, "```sh", "%s:%d: a block marked to run"
                         % (doc, start + 1))
                blocks.append((start + 1, "\n".join(body)))
            prev = ""
        elif line.strip():
            prev = line.strip()
        i += 1
    return blocks


def run_doc(ctx, s, work, doc):
    blocks = marked_blocks(doc)
    check(blocks, "%s has no block marked %s" % (doc, MARK))
    url = "http://127.0.0.1:%d" % s.port
    script = ["set -eo pipefail"]
    want = []
    for line_no, text in blocks:
        script.append("# %s:%d" % (doc, line_no))
        script.append(text.replace(DOC_URL, url))
        want += re.findall(r"^\s*# (exit \d+)$", text, re.M)
    env = dict(os.environ)
    env.update({"TPWALLET_SERVER": url,
                "TPWALLET_DATA": os.path.join(work, "data"),
                "HOME": work})
    env.pop("TPWALLET_CONFIG", None)
    try:
        p = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work,
                           env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace",
                           timeout=120 * slow_factor())
    except subprocess.TimeoutExpired:
        raise TestFailure("%s: the walk-through did not finish" % doc)
    check(p.returncode == 0,
          "%s: a command failed (exit %d); the last output:\n%s\n%s"
          % (doc, p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    got = re.findall(r"^(exit \d+)$", p.stdout, re.M)
    check_eq(got, want, "%s: the refusals ('exit N' lines)" % doc)
    return p


def workdir(ctx):
    work = ctx.path("work")
    os.makedirs(work)
    os.symlink(os.path.dirname(CONFIG["binary"]), os.path.join(work, "build"))
    os.symlink(os.path.join(ROOT, "tests"), os.path.join(work, "tests"))
    return work


WALK_THROUGHS = ("README.md", "docs/cli.md", "docs/client-policy.md",
                 "docs/operations.md", "docs/keys.md")


@e2e_test(timeout=300)
def test_docs_walk_throughs_run_as_written(ctx):
    work = workdir(ctx)
    s = ctx.server(data_dir=os.path.join(work, "data"))
    s.start()
    for doc in WALK_THROUGHS:
        run_doc(ctx, s, work, doc)
    s.stop()


def _block_after(doc, heading, fence="```"):
    """The first fenced block of doc after the line `heading` (its lines
    stripped of the fence's indentation)."""
    text = open(os.path.join(ROOT, doc)).read()
    check(heading in text, "%s: no %r" % (doc, heading))
    rest = text.split(heading, 1)[1].split("\n")
    start = [i for i, l in enumerate(rest) if l.strip().startswith(fence)][0]
    indent = len(rest[start]) - len(rest[start].lstrip())
    body = []
    for line in rest[start + 1:]:
        if line.strip().startswith("```"):
            return "\n".join(l[indent:] for l in body)
        body.append(line)
    raise TestFailure("%s: the block after %r is not closed" % (doc, heading))


def _sh(script, cwd, env=None, what="the documented commands"):
    p = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script],
                       cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, errors="replace",
                       timeout=60 * slow_factor())
    check_eq(p.returncode, 0, "%s (stderr %r)" % (what, p.stderr[-600:]))
    return p


def _doc_env(work, url=None):
    env = dict(os.environ)
    env.pop("TPWALLET_CONFIG", None)
    env["HOME"] = work
    if url:
        env["TPWALLET_SERVER"] = url
    return env


@e2e_test(timeout=60)
def test_docs_client_policy_example_decides_as_its_table_says(ctx):
    """docs/client-policy.md, "A complete example": the document lints,
    and `tpwallet policy evaluate --offline` gives each row of the table
    under it its decision and status.  Two rows need what an offline
    evaluation now cannot give (a request without X-Client-Version, the
    clock on 1 March 2027): test_client_policy.py covers those rules."""
    doc = "docs/client-policy.md"
    work = workdir(ctx)
    with open(os.path.join(work, "complete.json"), "w") as f:
        f.write(_block_after(doc, "## A complete example\n", "```json"))
    p = run_cli(["policy", "lint", "complete.json"], cwd=work)
    check_eq(p.returncode, 0, "lint of the complete example (%r)"
             % p.stderr)
    table = open(os.path.join(ROOT, doc)).read().split(
        "With this policy, on 15 January 2027:")[1].split("\n\n")[1]
    rows = re.findall(r"^\| `([a-z]+)(?:/([^`]+))?`([^|]*)\| ([a-z]+)"
                      r"(?:, (\d+))?[^|]* \|", table, re.M)
    check_eq(len(rows), 9, "rows with a platform in the table")
    checked = 0
    for platform, version, extra, decision, status in rows:
        args = ["policy", "evaluate", "--offline", "complete.json",
                "--platform", platform, "--json"]
        if version:
            args += ["--version", version]
        m = re.search(r"from ([A-Z]{2})", extra)
        if m:
            args += ["--country", m.group(1)]
        elif re.search(r"\bon \d", extra):
            continue  # "on 1 March 2027": another day than today
        p = run_cli(args, cwd=work)
        check_eq(p.returncode, 0, "tpwallet %s" % " ".join(args))
        got = json.loads(p.stdout)
        row = "%s/%s%s" % (platform, version, extra)
        check_eq(got["decision"], decision, "the decision for %s" % row)
        if status:
            check_eq(got.get("status"), int(status), "the status for %s"
                     % row)
        checked += 1
    check_eq(checked, 8, "rows evaluated")


def _set(path, value):
    """A change to a policy document: the value at path (keys and list
    indexes) becomes value; a key None renames the last key to value."""
    def change(d):
        for k in path[:-1]:
            d = d[k]
        if value is None:
            d[path[-1][1]] = d.pop(path[-1][0])
        else:
            d[path[-1]] = value
    return change


# The documents behind the refusals docs/client-policy.md's "Errors"
# shows: the complete example, with one change each.
ERROR_CHANGES = {
    "platforms.android.deprecated[0].sunset": _set(
        ("platforms", "android", "deprecated", 0, "sunset"),
        "2027-02-30T00:00:00Z"),
    "platforms.android.min_suported": _set(
        ("platforms", "android", ("min_supported", "min_suported")), None),
    "platforms.android.blocked[1]": _set(
        ("platforms", "android", "blocked", 1), "4.a"),
    "platforms.android.countries.DE.min_supported": _set(
        ("platforms", "android", "countries", "DE", "min_supported"),
        "4.3.0"),
}


@e2e_test(timeout=60)
def test_docs_client_policy_errors_are_the_linters(ctx):
    """docs/client-policy.md, "Errors": each refusal it shows is what
    `tpwallet policy lint` says of the complete example with the one
    change that causes it (a '...' in the docs stands for the rest)."""
    doc = "docs/client-policy.md"
    work = workdir(ctx)
    example = json.loads(_block_after(doc, "## A complete example\n",
                                      "```json"))
    sec = open(os.path.join(ROOT, doc)).read().split("\n## Errors\n")[1]
    shown = [l.strip() for l in sec.split("\n## ")[0].split("\n")
             if l.startswith("    ") and ": " in l]
    check_eq(sorted(l.split(": ")[0] for l in shown), sorted(ERROR_CHANGES),
             "the refusals shown")
    for line in shown:
        d = json.loads(json.dumps(example))
        ERROR_CHANGES[line.split(": ")[0]](d)
        with open(os.path.join(work, "bad.json"), "w") as f:
            json.dump(d, f)
        p = run_cli(["policy", "lint", "bad.json"], cwd=work)
        check_eq(p.returncode, 1, "lint exit status for %s" % line)
        want = "bad.json: " + line.split("...")[0]
        check(want in p.stderr, "lint says %r, the docs %r"
              % (p.stderr.strip(), line))


@e2e_test(timeout=60)
def test_docs_operations_running_and_config_examples_start_a_server(ctx):
    """docs/operations.md, "Running": the init line, then the serve line,
    with /var/lib/tpwallet under the test's directory and a free port:
    init exits 0 and serve listens (and exits 0 on SIGTERM); the
    "Example config file", so replaced, starts a server with --config."""
    doc = "docs/operations.md"
    work = workdir(ctx)
    run = _block_after(doc, "## Running\n").split("\n")
    check_eq(run[0].split()[:2], ["make", "run"], "the first line")
    data = os.path.join(work, "var-lib-tpwallet")

    def local(line, port):
        return line.replace("/var/lib/tpwallet", data).replace(
            "127.0.0.1:8080", "127.0.0.1:%d" % port)

    serve = [l for l in run if l.startswith("build/tpwallet serve ")]
    init = [l for l in run if l.startswith("build/tpwallet init ")]
    check(len(serve) == 1 and len(init) == 1, "one serve and one init "
          "line: %r" % run)
    _sh(local(init[0], 0), work, _doc_env(work), "the init line")
    check(os.path.exists(os.path.join(data, "tpwallet.data")),
          "init made no data directory")
    port = free_port()
    run_daemon(ctx, local(serve[0], port), port, work, _doc_env(work))
    conf = _block_after(doc, "Example config file:\n")
    port = free_port()
    with open(os.path.join(work, "tpwallet.conf"), "w") as f:
        f.write(local(conf, port))
    run_daemon(ctx, "build/tpwallet serve --config tpwallet.conf", port,
               work, _doc_env(work))


@e2e_test(timeout=60)
def test_docs_operations_witness_recipe_starts_a_witness(ctx):
    """docs/operations.md, "Witness": the block's commands, with the log
    served on a free port, the state directory under the test's
    directory and the witness on a free port: the key is fetched, the
    witness starts, listens and prints its cosigner key under the
    documented name."""
    work = workdir(ctx)
    s = ctx.start_server(data_dir=os.path.join(work, "data"))
    env = _doc_env(work, "http://127.0.0.1:%d" % s.port)
    block = _block_after("docs/operations.md", "## Witness\n")
    lines = [l for l in re.sub(r"\\\n\s*", " ", block).split("\n")
             if l.strip() and not l.startswith("#")]
    check(lines[-1].startswith("build/tpwallet witness "),
          "the last command starts the witness: %r" % lines)
    _sh("\n".join(lines[:-1]).replace("127.0.0.1:8080",
                                       "127.0.0.1:%d" % s.port),
        work, env, "the commands before the witness")
    port = free_port()
    cmd = lines[-1].replace("/var/lib/tpwitness",
                            os.path.join(work, "tpwitness")).replace(
        "127.0.0.1:8090", "127.0.0.1:%d" % port)
    os.makedirs(os.path.join(work, "tpwitness"), mode=0o700)
    log = open(run_daemon(ctx, cmd, port, work, env)).read()
    check(re.search(r"^witness\.example/w1\+[0-9a-f]{8}\+\S+$", log, re.M),
          "the witness printed no cosigner key: %r" % log[-600:])
    s.stop()


@e2e_test(timeout=60)
def test_docs_keys_kek_recipe_makes_a_kek_the_server_takes(ctx):
    """docs/keys.md, "The key-encryption key": the by-hand recipe, with
    /etc/tpwallet/kek under the test's directory, makes a file of mode
    0600 holding 43 base64url characters and a newline, which `init
    --kek-file` takes and `doctor` then finds all clear."""
    work = workdir(ctx)
    kek = os.path.join(work, "kek")
    block = _block_after("docs/keys.md", "Create one with")
    _sh(block.replace("/etc/tpwallet/kek", kek), work, _doc_env(work),
        "the KEK recipe")
    check_eq(os.stat(kek).st_mode & 0o777, 0o600, "the KEK file's mode")
    check(re.match(r"^[A-Za-z0-9_-]{43}\n$", open(kek).read()),
          "the KEK file is not 43 base64url characters and a newline")
    for args in (["init", "--data", "d", "--kek-file", kek],
                 ["doctor", "--data", "d", "--kek-file", kek]):
        p = run_cli(args, cwd=work)
        check_eq(p.returncode, 0, "tpwallet %s (%r)"
                 % (" ".join(args), p.stdout[-400:] + p.stderr[-400:]))
    check(not os.path.exists(os.path.join(work, "d.kek")),
          "init made its own KEK beside the data directory")


# -- documented command lines name real subcommands and flags -------------

# A `tpwallet` command where a shell line or a quoted mention starts one:
# at the start of a line or code span, after `$(`, a pipe, `;`, `&&`, an
# opening quote or parenthesis.  Its words run to the first shell
# operator, quote, comment or redirection.
CMD_RE = re.compile(r"(?:^\s*|\$\(|[|;&]\s*|['\"(])(?:build/)?tpwallet"
                    r"((?:[ \t]+[^\s|;&>)'\"`#]+)*)")
FLAG_RE = re.compile(r"^(--[a-z][a-z0-9-]*)(?:=.*)?$")


def documented_command_lines(doc):
    """(line number, text) of each place in doc (a path under the
    repository) that may hold a `tpwallet` command line: every line of a
    fenced block (a trailing backslash joins it to the next) and every
    inline code span."""
    out, block, cont = [], False, ""
    for n, line in enumerate(open(os.path.join(ROOT, doc)).read()
                             .split("\n"), 1):
        if line.startswith("```"):
            block, cont = not block, ""
            continue
        if block:
            if line.rstrip().endswith("\\"):
                cont += line.rstrip()[:-1] + " "
                continue
            out.append((n, cont + line))
            cont = ""
        else:
            out += [(n, m.group(1)) for m in re.finditer(r"`([^`]+)`", line)]
    return out


class _Cli:
    """The CLI's own account of itself: `tpwallet help`'s commands, and
    each (sub)command's --help text and the subcommands it lists."""

    def __init__(self):
        self.helps = {}
        p = subprocess.run([CONFIG["binary"], "help"], capture_output=True,
                           text=True, timeout=30)
        check_eq(p.returncode, 0, "tpwallet help")
        table = p.stdout.split("commands:\n")[1].split("\n\n")[0]
        self.commands = re.findall(r"^  ([a-z]+) +\S", table, re.M)
        check(len(self.commands) >= 10, "tpwallet help lists %r"
              % self.commands)

    def help(self, words):
        if words not in self.helps:
            p = subprocess.run([CONFIG["binary"]] + list(words) + ["--help"],
                               capture_output=True, text=True, timeout=30)
            check_eq(p.returncode, 0, "tpwallet %s --help" % " ".join(words))
            self.helps[words] = p.stdout
        return self.helps[words]

    def subcommands(self, words):
        """The subcommands (tuples of words: ("override", "open")) that
        `tpwallet WORDS --help` lists, or None when its usage takes no
        subcommand."""
        text = self.help(words)
        if "<subcommand>" not in text.split("\n")[0]:
            return None
        subs = set()
        for line in text.split("\n")[1:]:
            if line.startswith(("Example", "options")):
                break
            m = re.match(r"^  ([a-z][a-z-]*)(?: ([a-z]+)(?= |$))?", line)
            if m:
                subs.add(tuple(w for w in m.groups() if w))
        return subs


def drift(cli, doc):
    """Each documented `tpwallet` command line of doc whose command,
    subcommand or `--flag` the CLI does not know, with why."""
    bad = []
    for n, text in documented_command_lines(doc):
        for m in CMD_RE.finditer(text):
            toks = m.group(1).split()
            # `tpwallet <command> --help`, `tpwallet COMMAND`: a
            # placeholder; `tpwallet call: 426 ...`: a message.
            if not toks or not re.match(r"^[a-z][a-z-]*$", toks[0]) or \
                    any(t.endswith(":") for t in toks[:3]):
                continue
            where = "%s:%d: `tpwallet%s`" % (doc, n, m.group(1))
            if toks[0] not in cli.commands:
                bad.append("%s: no command %r" % (where, toks[0]))
                continue
            words, rest = (toks[0],), toks[1:]
            subs = cli.subcommands(words)
            if subs is not None and rest and re.match(r"^[a-z]", rest[0]):
                found = [sub for sub in subs
                         if tuple(rest[:len(sub)]) == sub]
                if not found:
                    bad.append("%s: no subcommand %r of %r"
                               % (where, rest[0], words[0]))
                    continue
                sub = max(found, key=len)
                words, rest = words + sub, rest[len(sub):]
            text_help = cli.help(words)
            for tok in rest:
                f = FLAG_RE.match(tok)
                if f and not re.search(r"(?<![\w-])%s(?![\w-])"
                                       % re.escape(f.group(1)), text_help):
                    bad.append("%s: `tpwallet %s --help` has no %s"
                               % (where, " ".join(words), f.group(1)))
    return bad


@e2e_test(timeout=60)
def test_docs_command_lines_name_real_subcommands_and_flags(ctx):
    """Every `tpwallet ...` command line in the README and docs/*.md, in
    a code block or a code span, run or not: its command is one `tpwallet
    help` lists, its subcommand one the command's usage lists, and each
    `--flag` appears in that (sub)command's --help.  So the docs cannot
    drift from the CLI even where a block is not run (a second machine,
    a production path)."""
    cli = _Cli()
    docs = ["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT,
                                                                 "docs"))
        if f.endswith(".md"))
    seen, bad = 0, []
    for doc in docs:
        seen += sum(len(CMD_RE.findall(t))
                    for _, t in documented_command_lines(doc))
        bad += drift(cli, doc)
    check(seen >= 100, "only %d documented command lines found" % seen)
    check(not bad, "documented command lines the CLI does not know:\n"
          + "\n".join(bad))


@e2e_test(timeout=120)
def test_docs_keys_leaked_key_walk_through_runs_as_written(ctx):
    """docs/keys.md's blocks on their own server: after them, the key the
    last rotation (--overlap 0, "a signing key leaked") replaced is
    expired at once, while the one the first, default rotation replaced
    still verifies."""
    work = workdir(ctx)
    s = ctx.server(data_dir=os.path.join(work, "data"))
    s.start()
    run_doc(ctx, s, work, "docs/keys.md")
    # (created_at has seconds: the three keys may share one.)
    keys = s.get("/v1/keys").json()["keys"]
    check_eq(sorted(k["status"] for k in keys),
             ["current", "expired", "verifying"],
             "the keys after two rotations, the second with overlap 0")
    s.stop()
