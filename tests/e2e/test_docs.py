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

The README and docs/cli.md run one after the other against the same
server, as a newcomer would follow them: ids must not collide.
"""

import os
import re
import subprocess

from harness import (CONFIG, e2e_test, check, check_eq, slow_factor,
                     TestFailure)

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


@e2e_test(timeout=300)
def test_docs_readme_then_cli_walk_throughs_run_as_written(ctx):
    work = workdir(ctx)
    s = ctx.server(data_dir=os.path.join(work, "data"))
    s.start()
    run_doc(ctx, s, work, "README.md")
    run_doc(ctx, s, work, "docs/cli.md")
    s.stop()


@e2e_test(timeout=120)
def test_docs_keys_leaked_key_walk_through_runs_as_written(ctx):
    work = workdir(ctx)
    s = ctx.server(data_dir=os.path.join(work, "data"))
    s.start()
    before = [k["kid"] for k in s.get("/v1/keys").json()["keys"]
              if k["status"] == "current"]
    run_doc(ctx, s, work, "docs/keys.md")
    keys = {k["kid"]: k["status"] for k in s.get("/v1/keys").json()["keys"]}
    check_eq(len(before), 1, "one current key before")
    check_eq(keys[before[0]], "expired",
             "the key the walk-through rotated out with overlap 0")
    s.stop()
