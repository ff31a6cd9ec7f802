"""test_systemd.py - the systemd unit (deploy/systemd/tpwallet.service)
and what serve does for it.

- `systemd-analyze verify` finds nothing to say about the unit (its
  ExecStart pointed at the binary under test, its man pages found in
  BUILD/man);
- `systemd-analyze security --offline=yes` rates its exposure at most
  EXPOSURE_MAX (systemd's scale: 0 safest, 10 unprotected), and the
  sandboxing lines the issue asks for are there;
- serve speaks the sd_notify protocol of Type=notify: READY=1 on
  NOTIFY_SOCKET once /readyz answers 200, STOPPING=1 on SIGTERM.

systemd-analyze comes with Debian's systemd package (scripts/deps.sh
test); it runs here without systemd as PID 1.
"""

import os
import re
import shutil
import socket
import subprocess

from harness import CONFIG, Client, e2e_test, check, check_eq, scaled

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
UNIT = os.path.join(ROOT, "deploy", "systemd", "tpwallet.service")
# The bound docs/operations.md states ("Running under systemd").
EXPOSURE_MAX = 2.0


def analyze(*args, env=None):
    tool = shutil.which("systemd-analyze")
    check(tool is not None, "systemd-analyze is not installed: "
          "scripts/deps.sh test installs Debian's systemd")
    return subprocess.run([tool] + list(args), capture_output=True,
                          text=True, timeout=60, env=env)


def unit_for_test(ctx):
    """The unit with ExecStart on the binary under test (verify checks
    the command exists), in a directory of its own."""
    with open(UNIT) as f:
        text = f.read()
    check("ExecStart=/usr/bin/tpwallet serve" in text,
          "the unit runs /usr/bin/tpwallet serve")
    d = ctx.path("unit")
    os.makedirs(d)
    path = os.path.join(d, "tpwallet.service")
    with open(path, "w") as f:
        f.write(text.replace("/usr/bin/tpwallet",
                             os.path.abspath(CONFIG["binary"])))
    return path


@e2e_test(timeout=120)
def test_systemd_unit_verifies_and_its_exposure_is_low(ctx):
    path = unit_for_test(ctx)
    man = os.path.join(os.path.dirname(os.path.abspath(CONFIG["binary"])),
                       "man")
    check(os.path.exists(os.path.join(man, "man1", "tpwallet-serve.1")),
          "make builds the man pages the unit names (%s)" % man)
    r = analyze("verify", path, env=dict(os.environ, MANPATH=man))
    check_eq((r.returncode, r.stderr.strip()), (0, ""),
             "systemd-analyze verify")
    # verify does speak up: a bad line in a copy is a complaint.
    bad = path.replace("tpwallet.service", "bad.service")
    with open(path) as f, open(bad, "w") as g:
        g.write(f.read().replace("Type=notify", "Type=notified"))
    r = analyze("verify", bad, env=dict(os.environ, MANPATH=man))
    check("notified" in r.stderr, "verify on a bad Type=: %r" % r.stderr)

    r = analyze("security", "--offline=yes", path)
    m = re.search(r"Overall exposure level for tpwallet\.service: "
                  r"([0-9]+\.[0-9])", r.stdout)
    check(m is not None, "systemd-analyze security: %s %s"
          % (r.stdout[-500:], r.stderr))
    exposure = float(m.group(1))
    ctx.note("systemd exposure %.1f (at most %.1f)"
             % (exposure, EXPOSURE_MAX))
    check(exposure <= EXPOSURE_MAX, "exposure %.1f > %.1f"
          % (exposure, EXPOSURE_MAX))
    with open(UNIT) as f:
        lines = set(f.read().splitlines())
    for want in ("Type=notify", "User=tpwallet", "StateDirectory=tpwallet",
                 "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "CapabilityBoundingSet=",
                 "ProtectHome=yes"):
        check(want in lines, "the unit lacks %r" % want)


@e2e_test(timeout=120)
def test_systemd_serve_notifies_ready_when_ready_and_stopping(ctx):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # An abstract socket (@name), as systemd may hand one out.
    name = "tpwallet-notify-%d-%s" % (os.getpid(),
                                      os.path.basename(ctx.dir))
    sock.bind("\0" + name)
    sock.settimeout(scaled(20, 60))
    try:
        s = ctx.server(env={"NOTIFY_SOCKET": "@" + name})
        s.spawn()
        msg = sock.recv(4096)
        check_eq(msg, b"READY=1", "the first notification")
        c = Client(s.port)
        check_eq(c.get("/readyz", retry=False).status, 200,
                 "/readyz once READY=1 was sent")
        c.close()
        s.stop()
        check_eq(sock.recv(4096), b"STOPPING=1", "on SIGTERM")
    finally:
        sock.close()

    # A NOTIFY_SOCKET that is no address is a warning, not a failure to
    # serve.
    s = ctx.server(env={"NOTIFY_SOCKET": "relative/path"})
    s.start()
    s.stop()
    with open(s.log_path) as f:
        log = f.read()
    check("cannot notify the service manager" in log,
          "a bad NOTIFY_SOCKET is logged")
