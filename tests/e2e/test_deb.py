"""test_deb.py - the Debian package (make deb, scripts/deb.sh): built from
the binary under test, installed into this machine with dpkg -i, checked
(files, owners and modes, the user, the unit as systemd-analyze sees it
installed, the man pages where man finds them, and the installed binary
serving from the installed settings file as the tpwallet user), then
purged, leaving nothing behind.

It changes the machine, so it refuses (fails) to run where a tpwallet
package, user or directory exists that it did not make, and needs root
(CI runs as root). A suite of its own (heavy): run once by make test,
with the plain build, not under the sanitizers.
"""

import grp
import os
import pwd
import shutil
import stat
import subprocess
import time

from harness import (CONFIG, Client, e2e_test, check, check_eq, free_port,
                     TestFailure)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PATHS = ("/usr/bin/tpwallet", "/etc/tpwallet", "/var/lib/tpwallet",
         "/lib/systemd/system/tpwallet.service",
         "/usr/share/man/man1/tpwallet.1.gz", "/usr/share/doc/tpwallet")
DPKG_LOCK_WAIT_S = 120


def run(args, timeout=120, env=None):
    return subprocess.run(args, capture_output=True, text=True,
                          timeout=timeout, env=env)


def package_status():
    r = run(["dpkg-query", "-W", "-f=${Status}", "tpwallet"])
    return r.stdout.strip() if r.returncode == 0 else ""


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def leftovers():
    """What of the package is on the machine."""
    left = [p for p in PATHS if os.path.lexists(p)]
    if package_status() not in ("", "unknown ok not-installed"):
        left.append("package: " + package_status())
    if user_exists("tpwallet"):
        left.append("user tpwallet")
    if group_exists("tpwallet"):
        left.append("group tpwallet")
    return left


def dpkg(*args):
    """dpkg ARGS, waiting (bounded) while another dpkg or apt holds its
    lock."""
    deadline = time.monotonic() + DPKG_LOCK_WAIT_S
    while True:
        r = run(["dpkg"] + list(args), timeout=300)
        if r.returncode == 0 or "lock" not in r.stderr or \
                time.monotonic() > deadline:
            return r
        time.sleep(2)


def mode_owner(path):
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name)


@e2e_test(timeout=600, heavy=True)
def test_deb_installs_checks_and_purges_without_a_trace(ctx):
    check(os.geteuid() == 0, "the package test installs into the machine "
          "and needs root (CI runs as root)")
    for tool in ("dpkg", "dpkg-deb", "dpkg-shlibdeps", "systemd-analyze",
                 "man", "setpriv", "useradd"):
        check(shutil.which(tool) is not None, "%s is not installed "
              "(scripts/deps.sh test)" % tool)
    # Someone else's tpwallet is never touched.
    check_eq(leftovers(), [], "a tpwallet package, user or files this "
             "test did not make: refusing to install over them")

    build = os.path.dirname(os.path.abspath(CONFIG["binary"]))
    r = run([os.path.join(ROOT, "scripts", "deb.sh"), build], timeout=300)
    check_eq(r.returncode, 0, "scripts/deb.sh: %s" % r.stderr)
    deb = r.stdout.strip().splitlines()[-1]
    check(deb.endswith(".deb") and os.path.exists(deb), "the package: %r"
          % deb)
    info = run(["dpkg-deb", "-f", deb, "Package", "Depends"]).stdout
    check("Package: tpwallet" in info and "libsodium" in info and
          "librocksdb" in info, "the control file: %r" % info)

    installed = False
    try:
        r = dpkg("-i", deb)
        installed = True
        check_eq(r.returncode, 0, "dpkg -i: %s %s" % (r.stdout, r.stderr))
        check_eq(package_status(), "install ok installed", "dpkg status")
        listed = set(run(["dpkg", "-L", "tpwallet"]).stdout.split())
        for path in ("/usr/bin/tpwallet", "/etc/tpwallet/tpwallet.conf",
                     "/var/lib/tpwallet",
                     "/lib/systemd/system/tpwallet.service",
                     "/usr/share/man/man1/tpwallet.1.gz",
                     "/usr/share/man/man1/tpwallet-serve.1.gz"):
            check(path in listed, "the package lacks %s" % path)
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}",
                         "tpwallet"]).stdout
        check("/etc/tpwallet/tpwallet.conf" in conffiles,
              "the settings file is a conffile: %r" % conffiles)

        u = pwd.getpwnam("tpwallet")
        check(u.pw_uid < 1000 and u.pw_shell.endswith("nologin"),
              "a system user without a shell: %r" % (u,))
        check_eq(mode_owner("/var/lib/tpwallet"),
                 (0o700, "tpwallet", "tpwallet"), "the state directory")
        check_eq(os.listdir("/var/lib/tpwallet"), [], "it is empty")
        check_eq(mode_owner("/etc/tpwallet/tpwallet.conf"),
                 (0o640, "root", "tpwallet"), "the settings file")
        check_eq(run(["/usr/bin/tpwallet", "version"]).returncode, 0,
                 "the installed binary runs")
        r = run(["man", "-w", "tpwallet-serve"])
        check_eq(r.stdout.strip(), "/usr/share/man/man1/tpwallet-serve.1.gz",
                 "man finds the installed page")
        r = run(["systemd-analyze", "verify",
                 "/lib/systemd/system/tpwallet.service"])
        check_eq((r.returncode, r.stderr.strip()), (0, ""),
                 "systemd-analyze verify of the installed unit")

        # The installed binary serves from the installed settings file, as
        # the service's user, in the state directory (another port: 8080
        # may be taken here).
        port = free_port()
        log = open(ctx.path("installed.log"), "wb")
        p = subprocess.Popen(
            ["setpriv", "--reuid=tpwallet", "--regid=tpwallet",
             "--clear-groups", "--", "/usr/bin/tpwallet", "serve",
             "--config", "/etc/tpwallet/tpwallet.conf",
             "--listen", "127.0.0.1:%d" % port],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"})
        try:
            status = None
            for _ in range(200):  # 20 s
                if p.poll() is not None:
                    break
                try:
                    c = Client(port, timeout=2)
                    status = c.get("/readyz", retry=False).status
                    c.close()
                    if status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            check_eq(status, 200, "the installed service's /readyz (log: "
                     "%s)" % ctx.path("installed.log"))
        finally:
            p.terminate()
            rc = p.wait(timeout=60)
            log.close()
        check_eq(rc, 0, "the installed server's exit status on SIGTERM")
        check_eq(mode_owner("/var/lib/tpwallet/data")[1], "tpwallet",
                 "the data directory's owner")
        # What the test's server wrote is the test's to remove: purge
        # keeps a state directory that holds a ledger.
        r = dpkg("-P", "tpwallet")
        check_eq(r.returncode, 0, "dpkg -P with a ledger: %s" % r.stderr)
        installed = False
        check(os.path.isdir("/var/lib/tpwallet/data") and
              user_exists("tpwallet"),
              "purge keeps a state directory that holds data, and its user")
        check("is not empty: kept" in r.stderr, "purge says so: %r"
              % r.stderr)
        shutil.rmtree("/var/lib/tpwallet")
        run(["userdel", "tpwallet"])
        if group_exists("tpwallet"):
            run(["groupdel", "tpwallet"])

        # Again without data: the purge then leaves nothing.
        r = dpkg("-i", deb)
        installed = True
        check_eq(r.returncode, 0, "dpkg -i again: %s" % r.stderr)
        r = dpkg("-P", "tpwallet")
        check_eq(r.returncode, 0, "dpkg -P: %s" % r.stderr)
        installed = False
        check_eq(leftovers(), [], "left behind by dpkg -P")
    finally:
        if installed and package_status().startswith("install"):
            dpkg("-P", "tpwallet")
        if os.path.isdir("/var/lib/tpwallet/data"):
            shutil.rmtree("/var/lib/tpwallet", ignore_errors=True)
        if not os.path.lexists("/var/lib/tpwallet"):
            if user_exists("tpwallet"):
                run(["userdel", "tpwallet"])
            if group_exists("tpwallet"):
                run(["groupdel", "tpwallet"])
    left = leftovers()
    if left:
        raise TestFailure("left on the machine: %r" % left)
