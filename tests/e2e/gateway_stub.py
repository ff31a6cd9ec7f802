"""gateway_stub.py - a small gateway in front of tpwallet, for tests.

A loopback HTTP/1.1 reverse proxy (standard library only) that refuses one
client version itself, as the gateway of the "version expired" drill did
(issue 11): a request whose X-Client-Version is the configured
PLATFORM/VERSION, or a version under it ("android/3.9" refuses
android/3.9.4 and android/3.9), gets a plain 403 HTML page with none of
tpwallet's signs (no Tpwallet-Problem, no X-Client-Policy, no problem
type).  Every other request is passed to the upstream tpwallet and its
answer passed back (hop-by-hop headers dropped).  While no upstream is
set, the stub answers 502 with a plain page, as a gateway does.

    gw = gateway_stub.start(upstream_port, refuse="android/3.9")
    ... gw.url, gw.port, gw.refused, gw.passed ...
    gw.upstream_port = other_port  # may change at any time
    gw.stop()

Reused by the probe tests and by the drill (tests/e2e/test_probe.py).
"""

import http.client
import http.server
import threading

REFUSAL_PAGE = (b"<html><head><title>403 Forbidden</title></head>"
                b"<body><h1>403 Forbidden</h1><p>This app version is not "
                b"allowed.</p></body></html>\n")
BAD_GATEWAY_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate",
              "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}
UPSTREAM_TIMEOUT_S = 10
BODY_BYTES_MAX = 16 << 20


def refuses(refuse, client_version):
    """Does the rule `refuse` ("android/3.9") cover this client?"""
    if not refuse or client_version is None:
        return False
    v = client_version.strip()
    return v == refuse or v.startswith(refuse + ".")


class Gateway:
    def __init__(self, upstream_port, refuse):
        self.upstream_port = upstream_port
        self.refuse = refuse
        self.refused = 0
        self.passed = 0
        self._lock = threading.Lock()
        gw = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _plain(self, status, page):
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Server", "gateway-stub")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(page)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n < 0 or n > BODY_BYTES_MAX:
                    self.close_connection = True
                    return self._plain(413, BAD_GATEWAY_PAGE)
                body = self.rfile.read(n) if n else None
                if refuses(gw.refuse, self.headers.get("X-Client-Version")):
                    with gw._lock:
                        gw.refused += 1
                    return self._plain(403, REFUSAL_PAGE)
                port = gw.upstream_port
                if port is None:
                    return self._plain(502, BAD_GATEWAY_PAGE)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP}
                try:
                    c = http.client.HTTPConnection(
                        "127.0.0.1", port, timeout=UPSTREAM_TIMEOUT_S)
                    try:
                        c.request(self.command, self.path, body=body,
                                  headers=headers)
                        r = c.getresponse()
                        data = r.read()
                        status, rheaders = r.status, r.getheaders()
                    finally:
                        c.close()
                except (OSError, http.client.HTTPException):
                    return self._plain(502, BAD_GATEWAY_PAGE)
                with gw._lock:
                    gw.passed += 1
                self.send_response(status)
                for k, v in rheaders:
                    if k.lower() not in HOP_BY_HOP and \
                            k.lower() not in ("date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._srv = Server(("127.0.0.1", 0), Handler)
        self.port = self._srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self._srv.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(upstream_port, refuse):
    """A gateway on a free loopback port in front of 127.0.0.1:
    upstream_port (None: none yet), refusing the client versions under
    `refuse` ("platform/version" or a prefix of whole version parts)."""
    return Gateway(upstream_port, refuse)

