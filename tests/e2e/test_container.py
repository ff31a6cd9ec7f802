"""test_container.py - the container recipe (deploy/container/Containerfile).

No image can be built here (no registry for debian:12, no podman), and
hadolint is not in Debian, so the recipe is checked for structure: two
stages from Debian 12 images, the second with no build tools, a numeric
non-root USER after every RUN, the state directory as the one VOLUME (the
root file system can then be read-only), EXPOSE matching the listen
address, exec-form ENTRYPOINT and HEALTHCHECK, apt installs without
recommends that drop their lists, nothing fetched from the network by
hand, only files of the tree copied; and the HEALTHCHECK command itself
succeeds against a ready server and fails once it is gone.
"""

import json
import os
import re
import subprocess

from harness import CONFIG, e2e_test, check, check_eq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RECIPE = os.path.join(ROOT, "deploy", "container", "Containerfile")


def instructions(path=RECIPE):
    """[(INSTRUCTION, arguments)], continuation lines joined, comments
    and blank lines dropped."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not cur and (not line.strip() or
                            line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    check_eq(cur, "", "a continuation at the end of the file")
    return out


def stages(ins):
    """[[(INSTRUCTION, args)...] per FROM]."""
    out = []
    for i in ins:
        if i[0] == "FROM":
            out.append([])
        check(out, "an instruction before the first FROM: %r" % (i,))
        out[-1].append(i)
    return out


def exec_form(args, what):
    try:
        v = json.loads(args)
    except ValueError:
        v = None
    check(isinstance(v, list) and all(isinstance(x, str) for x in v),
          "%s in exec form (a JSON array): %r" % (what, args))
    return v


def healthcheck_command(final):
    hc = [a for i, a in final if i == "HEALTHCHECK"]
    check_eq(len(hc), 1, "one HEALTHCHECK in the final stage")
    m = re.match(r"((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$", hc[0])
    check(m is not None, "HEALTHCHECK [options] CMD [...]: %r" % hc[0])
    for opt in ("--interval", "--timeout", "--retries"):
        check(opt + "=" in m.group(1), "HEALTHCHECK sets %s" % opt)
    return exec_form(m.group(2), "HEALTHCHECK CMD")


@e2e_test(timeout=60)
def test_container_recipe_is_multi_stage_non_root_and_read_only_ready(ctx):
    ins = instructions()
    st = stages(ins)
    check(len(st) >= 2, "a multi-stage build: %d stages" % len(st))
    for s in st:
        image = s[0][1].split()[0]
        check(image in ("debian:12", "debian:12-slim"),
              "FROM a Debian 12 image (a pinned release): %r" % s[0][1])
    check(re.search(r"\bAS build$", st[0][0][1]), "the first stage is "
          "named build: %r" % st[0][0][1])
    final = st[-1]
    names = [i for i, _ in final]

    for i, a in ins:
        check(i != "ADD", "ADD (COPY instead; nothing fetched): %r" % a)
        check(not re.search(r"\b(curl|wget)\b", a),
              "nothing fetched by hand: %s %s" % (i, a))
        check(":latest" not in a, "no :latest image: %r" % a)
        if i == "RUN" and "apt-get install" in a:
            check("--no-install-recommends" in a and
                  "rm -rf /var/lib/apt/lists" in a,
                  "apt-get install without recommends, lists dropped: %r"
                  % a)
        if i == "COPY" and "--from=" not in a:
            srcs = a.split()[:-1]
            check(srcs and "." not in srcs and "./" not in srcs,
                  "COPY names what it needs, not the whole context: %r"
                  % a)
            for src in srcs:
                check(os.path.exists(os.path.join(ROOT, src)),
                      "COPY of %s: not in the tree" % src)

    check(any(i == "COPY" and a.startswith("--from=build ")
              for i, a in final), "the final stage copies from build")
    for i, a in final:
        if i == "RUN" and "apt-get install" in a:
            pkgs = [w for w in a.split("apt-get install", 1)[1].split("&&")[0]
                    .split() if not w.startswith("-")]
            check_eq(pkgs, ["/tmp/tpwallet.deb"],
                     "the final stage installs the package only (its "
                     "runtime libraries come as its dependencies)")
    users = [a for i, a in final if i == "USER"]
    check_eq(len(users), 1, "one USER in the final stage")
    uid, _, gid = users[0].partition(":")
    check(uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0,
          "a numeric non-root USER (runAsNonRoot can check it): %r"
          % users[0])
    last_run = max(k for k, n in enumerate(names) if n == "RUN")
    check(names.index("USER") > last_run, "USER after the last RUN")
    check(any(i == "RUN" and "--uid %s" % uid in a for i, a in final),
          "the user is made with uid %s" % uid)
    vols = [exec_form(a, "VOLUME") for i, a in final if i == "VOLUME"]
    check_eq(vols, [["/var/lib/tpwallet"]], "the state directory is the "
             "one volume (all else can be read-only)")
    env = dict(a.split("=", 1) for i, a in final if i == "ENV")
    port = env.get("TPWALLET_LISTEN", "").rpartition(":")[2]
    check_eq([a for i, a in final if i == "EXPOSE"], [port],
             "EXPOSE the port of TPWALLET_LISTEN")
    entry = exec_form([a for i, a in final if i == "ENTRYPOINT"][0],
                      "ENTRYPOINT")
    check_eq(entry[:4], ["/usr/bin/tpwallet", "serve", "--config",
                         "/etc/tpwallet/tpwallet.conf"],
             "the entry point serves the package's settings")
    check_eq([a for i, a in final if i == "STOPSIGNAL"], ["SIGTERM"],
             "SIGTERM stops serve cleanly")
    hc = healthcheck_command(final)
    check(hc[0] == "/usr/bin/tpwallet" and "/readyz" in hc,
          "the health check asks /readyz with the binary: %r" % hc)


@e2e_test(timeout=60)
def test_container_healthcheck_command_follows_the_server(ctx):
    hc = healthcheck_command(stages(instructions())[-1])
    s = ctx.start_server()
    base = "http://127.0.0.1:%d" % s.port

    def run_hc():
        cmd = [os.path.abspath(CONFIG["binary"]) if a == "/usr/bin/tpwallet"
               else (base if a == "http://127.0.0.1:8080" else a)
               for a in hc]
        check(base in cmd, "the health check names its server: %r" % hc)
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=30, cwd=ctx.dir)

    r = run_hc()
    check_eq(r.returncode, 0, "the health check of a ready server: %s"
             % r.stderr)
    check_eq(json.loads(r.stdout), {"status": "ready"}, "its answer")
    s.stop()
    r = run_hc()
    check(r.returncode != 0, "the health check of a stopped server passed")
