"""test_buildinfo.py - what the running binary is (issue 21, item 4: the
server logs and exports its version, the commit it was built from and
the versions of the libraries it runs on): `tpwallet version [--json]`,
/metrics, doctor and the start log line all say the same, and the
versions are the ones this machine's packages have."""

import json
import os
import re
import subprocess

from harness import e2e_test, check, check_eq, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
LIBS = ["libmicrohttpd", "gnutls", "libsodium", "jansson", "libcurl",
        "libpq", "nettle", "rocksdb"]


def git_head():
    p = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12",
                        "HEAD"], capture_output=True, text=True)
    check_eq(p.returncode, 0, "git rev-parse: %s" % p.stderr)
    return p.stdout.strip()


def pkg_version(name):
    p = subprocess.run(["pkg-config", "--modversion", name],
                       capture_output=True, text=True)
    check_eq(p.returncode, 0, "pkg-config %s: %s" % (name, p.stderr))
    return p.stdout.strip()


@e2e_test(timeout=60)
def test_version_metrics_doctor_and_the_start_line_name_the_same_build(ctx):
    r = run_cli(["version", "--json"])
    check_eq(r.returncode, 0, "version --json: %s" % r.stderr)
    v = json.loads(r.stdout)
    check_eq(sorted(v), ["commit", "formats", "libraries", "version"],
             "members (formats: tpwallet upgrade check, test_upgrade.py)")
    check_eq(v["version"], "0.1.0", "the release")
    # Built from this checkout (make builds before it tests).
    check_eq(v["commit"].split("-")[0], git_head(), "the commit")
    check_eq(list(v["libraries"]), LIBS, "the libraries, in order")
    # What the libraries say at run time is what this machine has.
    for lib, pc in (("libmicrohttpd", "libmicrohttpd"), ("gnutls", "gnutls"),
                    ("libsodium", "libsodium"), ("jansson", "jansson"),
                    ("libcurl", "libcurl"), ("rocksdb", "rocksdb")):
        check_eq(v["libraries"][lib], pkg_version(pc), lib)
    check(v["libraries"]["libpq"].split(".")[0] ==
          pkg_version("libpq").split(".")[0], "libpq's major version: %r"
          % v["libraries"]["libpq"])
    check_eq(v["libraries"]["nettle"],
             ".".join(pkg_version("nettle").split(".")[:2]), "nettle")
    text = run_cli(["version"]).stdout
    check_eq(text.splitlines()[0], "tpwallet 0.1.0 (commit %s)"
             % v["commit"], "the text form's first line")
    check("rocksdb %s (built with)" % v["libraries"]["rocksdb"] in text,
          "RocksDB's version is the one built with: %r" % text)

    s = ctx.start_server()
    m = s.get("/metrics").body.decode()
    check('tpwallet_build_info{version="0.1.0",commit="%s",'
          'signature="no_key"} 1' % v["commit"] in m.splitlines(),
          "tpwallet_build_info (no release key set: not checked)")
    got = dict(re.findall(r'^tpwallet_library_info\{library="([^"]+)",'
                          r'version="([^"]+)"\} 1$', m, re.M))
    check_eq(got, v["libraries"], "tpwallet_library_info")
    check("# TYPE tpwallet_build_info gauge" in m, "its TYPE")
    text = s.wait_log(r'"msg":"listening"')
    check(text is not None, "no listening line")
    doc = json.loads([x for x in text.splitlines()
                      if '"msg":"listening"' in x][0])
    check_eq(doc.get("commit"), v["commit"], "the start line's commit")
    check(doc.get("libraries", "").startswith(
        "libmicrohttpd %s, gnutls %s" % (v["libraries"]["libmicrohttpd"],
                                         v["libraries"]["gnutls"])),
          "the start line's libraries: %r" % doc.get("libraries"))
    s.stop()
    d = run_cli(["doctor", "--data", s.data_dir])
    build = [x for x in d.stdout.splitlines() if " build: " in x]
    check_eq(len(build), 1, "doctor's build line: %s" % d.stdout)
    check(build[0].startswith("ok      build: tpwallet 0.1.0, commit %s; "
                              "libmicrohttpd " % v["commit"]),
          "doctor's build line: %r" % build[0])
