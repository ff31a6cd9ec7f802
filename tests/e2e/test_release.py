"""test_release.py - signed release artifacts (issue 21, item 4;
docs/releases.md): scripts/release.sh signs the binary and SHA256SUMS
with a minisign key made here; `tpwallet version --verify` accepts them
and refuses a changed byte, another key, an edited trusted comment, the
legacy form and a missing signature, each by name; a server started from
a signed copy says signature="verified" in /metrics, an unsigned copy
"unsigned" with a warning, a changed one "bad", and doctor agrees."""

import os
import shutil
import subprocess

from harness import (CONFIG, Server, e2e_test, check, check_eq, free_port,
                     run_cli)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def minisign(*args, cwd=None):
    p = subprocess.run(["minisign"] + list(args), capture_output=True,
                       text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                       timeout=30)
    check_eq(p.returncode, 0, "minisign %s: %s%s" % (" ".join(args),
                                                    p.stdout, p.stderr))
    return p


def keypair(ctx, name):
    pub, sec = ctx.path(name + ".pub"), ctx.path(name + ".key")
    minisign("-G", "-W", "-p", pub, "-s", sec)
    return pub, sec


def verify(path, key, sig=None):
    args = ["version", "--verify", path, "--key", key]
    if sig:
        args += ["--signature", sig]
    return run_cli(args)


def build_info(srv):
    for line in srv.get("/metrics").body.decode().splitlines():
        if line.startswith("tpwallet_build_info{"):
            return line
    return None


@e2e_test(timeout=120)
def test_release_artifacts_verify_and_every_change_is_refused_by_name(ctx):
    pub, sec = keypair(ctx, "release")
    out = ctx.path("release")
    env = dict(os.environ, RELEASE_SECRET_KEY=sec, RELEASE_PUBLIC_KEY=pub)
    p = subprocess.run([os.path.join(ROOT, "scripts", "release.sh"),
                        CONFIG["binary"], out], capture_output=True,
                       text=True, env=env, cwd=ctx.path(), timeout=120)
    check_eq(p.returncode, 0, "release.sh: %s%s" % (p.stdout, p.stderr))
    names = sorted(os.listdir(out))
    check_eq(names, ["SHA256SUMS", "SHA256SUMS.minisig", "tpwallet",
                     "tpwallet.minisig"], "the artifacts")
    r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out,
                       capture_output=True, text=True)
    check_eq(r.returncode, 0, "SHA256SUMS: %s" % r.stdout)
    ver = run_cli(["version", "--json"]).stdout
    commit = ver.split('"commit":"')[1].split('"')[0]
    binary = os.path.join(out, "tpwallet")
    r = verify(binary, pub)
    check_eq(r.returncode, 0, "verify: %s" % r.stderr)
    check(r.stdout.startswith("%s: verified by key " % binary) and
          r.stdout.rstrip().endswith(
              "trusted comment: tpwallet 0.1.0 commit %s file tpwallet"
              % commit), "what verify says: %r" % r.stdout)
    # minisign itself agrees (the format is the tool's).
    minisign("-V", "-p", pub, "-m", binary)

    # A changed byte.
    bad = ctx.path("changed")
    shutil.copy(binary, bad)
    shutil.copy(binary + ".minisig", bad + ".minisig")
    with open(bad, "r+b") as f:
        f.seek(4096)
        c = f.read(1)
        f.seek(4096)
        f.write(bytes([c[0] ^ 1]))
    r = verify(bad, pub)
    check_eq(r.returncode, 1, "a changed byte: %s" % r.stdout)
    check("the signature does not match the file" in r.stderr, r.stderr)
    # Another key.
    other, _ = keypair(ctx, "other")
    r = verify(binary, other)
    check_eq(r.returncode, 1, "another key")
    check("signed by key" in r.stderr and ", not " in r.stderr, r.stderr)
    # The trusted comment edited.
    sig = open(binary + ".minisig").read()
    edited = ctx.path("edited.minisig")
    with open(edited, "w") as f:
        f.write(sig.replace("tpwallet 0.1.0 commit", "tpwallet 9.9.9 commit"))
    r = verify(binary, pub, edited)
    check_eq(r.returncode, 1, "an edited trusted comment")
    check("trusted comment was changed" in r.stderr, r.stderr)
    # The legacy form.
    leg = ctx.path("legacy")
    shutil.copy(ctx.path("release.pub"), leg)
    minisign("-S", "-l", "-s", sec, "-m", leg)
    r = verify(leg, pub)
    check_eq(r.returncode, 1, "a legacy signature")
    check("legacy" in r.stderr, r.stderr)
    # No signature, no key.
    nosig = ctx.path("nosig")
    shutil.copy(binary, nosig)
    r = verify(nosig, pub)
    check_eq(r.returncode, 66, "no signature file: %s" % r.stderr)
    check("nosig.minisig" in r.stderr, r.stderr)
    r = run_cli(["version", "--verify", binary],
                env={"TPWALLET_RELEASE_PUBLIC_KEY_FILE": ""})
    check_eq(r.returncode, 2, "no key")
    check("never from beside the artifact" in r.stderr, r.stderr)
    # A release directory is never written over.
    p = subprocess.run([os.path.join(ROOT, "scripts", "release.sh"),
                        CONFIG["binary"], out], capture_output=True,
                       text=True, env=env, timeout=60)
    check_eq(p.returncode, 2, "release.sh into a full directory")


@e2e_test(timeout=120)
def test_a_server_says_whether_its_own_binary_is_signed(ctx):
    pub, sec = keypair(ctx, "release")
    signed = ctx.path("signed", "tpwallet")
    os.makedirs(os.path.dirname(signed))
    shutil.copy(CONFIG["binary"], signed)
    minisign("-S", "-s", sec, "-m", signed, "-t", "test")
    unsigned = ctx.path("unsigned", "tpwallet")
    os.makedirs(os.path.dirname(unsigned))
    shutil.copy(CONFIG["binary"], unsigned)
    changed = ctx.path("changed", "tpwallet")
    os.makedirs(os.path.dirname(changed))
    shutil.copy(signed, changed)
    shutil.copy(signed + ".minisig", changed + ".minisig")
    with open(changed, "ab") as f:
        f.write(b"\0")
    env = {"TPWALLET_RELEASE_PUBLIC_KEY_FILE": pub}
    for binary, want, doctor_status in ((signed, "verified", "ok"),
                                        (unsigned, "unsigned", "warn"),
                                        (changed, "bad", "action")):
        s = Server(ctx.path("data-" + want), ctx.path(want + ".log"),
                   env=env, binary=binary)
        s.start()
        line = build_info(s)
        check(line is not None and 'signature="%s"' % want in line,
              "%s: %r" % (want, line))
        warned = s.wait_log(r"release signature does not verify",
                            timeout=0.5)
        check_eq(warned is not None, want != "verified",
                 "%s: the warning line" % want)
        s.stop()
        d = subprocess.run([binary, "doctor", "--data", s.data_dir],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, **env))
        got = [x for x in d.stdout.splitlines()
               if " release signature: " in x]
        check_eq(len(got), 1, "doctor: %s" % d.stdout)
        check(got[0].startswith("%-7s release signature: %s: "
                                % (doctor_status, want)),
              "doctor's line: %r" % got[0])
    # Without a key nothing is checked, and that is said.
    s = Server(ctx.path("data-nokey"), ctx.path("nokey.log"),
               binary=unsigned)
    s.env.pop("TPWALLET_RELEASE_PUBLIC_KEY_FILE", None)
    s.start()
    check('signature="no_key"' in build_info(s), "no key")
    s.stop()
    check(free_port() > 0, "ports")
