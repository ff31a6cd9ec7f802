"""test_cli_https.py - the client commands over https (src/net/http.h on
libcurl): a server whose certificate nobody vouches for is refused before
any request is sent; with --cacert naming its certificate the request goes
through; a scheme other than http and https is a usage error.

The server is Python's http.server behind the ssl module, on loopback,
with the certificate in tests/e2e/fixtures/tls (see its README)."""

import http.server
import os
import ssl
import threading

from harness import e2e_test, run_cli, check, check_eq

TLS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "fixtures", "tls")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.seen.append((self.path, dict(self.headers)))
        body = b'{"status":"ok"}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _https_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.seen = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(os.path.join(TLS, "cert.pem"),
                        os.path.join(TLS, "key.pem"))
    srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever,
                         kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return srv, t


@e2e_test(timeout=60)
def test_cli_https_verifies_the_server_and_cacert_trusts_one(ctx):
    srv, t = _https_server()
    try:
        url = "https://127.0.0.1:%d" % srv.server_address[1]
        base = ["call", "--no-auth", "--timeout", "5", "--server", url]

        r = run_cli(base + ["GET", "/healthz"])
        check_eq(r.returncode, 1, "untrusted certificate: exit status "
                 "(stderr %r)" % r.stderr)
        check("the TLS handshake failed or the certificate is not "
              "trusted" in r.stderr, "untrusted: %r" % r.stderr)
        check_eq(srv.seen, [], "no request sent to an untrusted server")

        r = run_cli(["call", "--no-auth", "--cacert",
                     os.path.join(TLS, "cert.pem"), "-v", "--server", url,
                     "GET", "/healthz"])
        check_eq(r.returncode, 0, "--cacert: exit status (stderr %r)"
                 % r.stderr)
        check_eq(r.stdout, '{"status":"ok"}\n', "--cacert: body")
        check("HTTP/1.1 200 OK" in r.stderr, "-v status line: %r" % r.stderr)
        check_eq(len(srv.seen), 1, "one request")
        path, headers = srv.seen[0]
        check_eq(path, "/healthz", "request target")
        check_eq(headers.get("Host"), "127.0.0.1:%d" % srv.server_address[1],
                 "Host names the port")
        check("Authorization" not in headers, "--no-auth sends none")
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


@e2e_test(timeout=30)
def test_cli_refuses_a_server_url_that_is_not_http_or_https(ctx):
    for url in ("ftp://127.0.0.1:21", "file:///etc/passwd"):
        r = run_cli(["call", "--no-auth", "--server", url, "GET", "/healthz"])
        check_eq(r.returncode, 2, "%s: exit status" % url)
        check_eq(r.stderr, "tpwallet call: --server %s: only http:// and "
                 "https:// URLs are allowed\n" % url, "%s: message" % url)
