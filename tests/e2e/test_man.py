"""test_man.py - the man pages (scripts/man.sh, which make runs into
BUILD/man/man1): tpwallet(1) and one tpwallet-CMD(1) per command that
`tpwallet help` lists, each rendered by man and groff without a warning,
each holding every line of the help it was written from, so a page
cannot drift from `--help`.

man (man-db) and groff come from Debian (scripts/deps.sh test).
"""

import os
import shutil
import subprocess

from harness import CONFIG, e2e_test, run_cli, check, check_eq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def listed_commands():
    p = run_cli(["help"])
    check_eq(p.returncode, 0, "tpwallet help")
    lines = p.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in lines.splitlines()]


def tool(name):
    path = shutil.which(name)
    check(path is not None, "%s is not installed: scripts/deps.sh test "
          "installs it (Debian man-db, groff-base)" % name)
    return path


def render(page):
    """The page as man shows it on an 80-column terminal; fails on any
    warning of man or groff."""
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    env.pop("MAN_KEEP_FORMATTING", None)
    p = subprocess.run([tool("man"), "--warnings", "-l", page],
                       capture_output=True, text=True, env=env, timeout=60)
    check_eq(p.returncode, 0, "man -l %s: %s" % (page, p.stderr))
    check_eq(p.stderr, "", "man --warnings -l %s" % page)
    g = subprocess.run([tool("groff"), "-ww", "-man", "-Tutf8", "-z",
                        page], capture_output=True, text=True, timeout=60)
    check_eq((g.returncode, g.stderr), (0, ""), "groff -ww %s" % page)
    # groff may draw an ASCII hyphen as U+2010 or U+2212: compare text.
    return p.stdout.replace("\u2010", "-").replace("\u2212", "-")


@e2e_test(timeout=120)
def test_man_pages_render_cleanly_and_hold_each_commands_help(ctx):
    out = ctx.path("man1")
    p = subprocess.run([os.path.join(ROOT, "scripts", "man.sh"),
                        CONFIG["binary"], out], capture_output=True,
                       text=True, timeout=60)
    check_eq(p.returncode, 0, "scripts/man.sh: %s" % p.stderr)
    commands = listed_commands()
    check("serve" in commands and "routes" in commands,
          "tpwallet help lists: %r" % commands)
    pages = {"tpwallet-%s.1" % c for c in commands if c != "help"}
    check_eq(sorted(os.listdir(out)), sorted(pages | {"tpwallet.1"}),
             "one page per command and tpwallet(1)")
    main = render(os.path.join(out, "tpwallet.1"))
    help_text = run_cli(["help"]).stdout
    for line in help_text.splitlines():
        check(line.strip() in main, "tpwallet(1) lacks %r" % line)
    for c in commands:
        if c == "help":
            continue
        check("tpwallet-%s(1)" % c in main, "tpwallet(1) names tpwallet-%s"
              % c)
        text = render(os.path.join(out, "tpwallet-%s.1" % c))
        usage = run_cli([c, "--help"])
        check_eq(usage.returncode, 0, "tpwallet %s --help" % c)
        for line in usage.stdout.splitlines():
            check(line.strip() in text, "tpwallet-%s(1) lacks the help "
                  "line %r" % (c, line))
        check(text.startswith("TPWALLET-%s(1)" % c.upper()),
              "tpwallet-%s(1)'s title: %r" % (c, text[:60]))


@e2e_test(timeout=60)
def test_man_pages_install_where_man_finds_them(ctx):
    """make install DESTDIR=... PREFIX=/usr puts the binary and the pages
    in place; man -M finds tpwallet-serve(1) there.  `-o all`: what the
    suite tests is installed as built (a sanitizer build's flags are not
    make install's, and a relink would replace the binary under test)."""
    dest = ctx.path("dest")
    build = os.path.dirname(os.path.abspath(CONFIG["binary"]))
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT,
                        "BUILD=" + os.path.relpath(build, ROOT),
                        "-o", "all", "DESTDIR=" + dest, "PREFIX=/usr",
                        "install"],
                       capture_output=True, text=True, timeout=300)
    check_eq(p.returncode, 0, "make install: %s %s" % (p.stdout, p.stderr))
    check(os.access(os.path.join(dest, "usr", "bin", "tpwallet"), os.X_OK),
          "the installed binary")
    env = dict(os.environ, MANWIDTH="80")
    m = subprocess.run([tool("man"), "-M",
                        os.path.join(dest, "usr", "share", "man"),
                        "tpwallet-serve"], capture_output=True, text=True,
                       env=env, timeout=60)
    check_eq(m.returncode, 0, "man -M ... tpwallet-serve: %s" % m.stderr)
    check("--listen HOST:PORT" in m.stdout.replace("\u2010", "-"),
          "tpwallet-serve(1) as installed: %r" % m.stdout[:300])
