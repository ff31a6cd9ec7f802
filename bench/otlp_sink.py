"""bench/otlp_sink.py - an OTLP/HTTP receiver for benchmarks: answers
every POST 200 "{}" after reading its body, keeps nothing.  Prints its
port on the first line, then serves on 127.0.0.1 until killed.

    python3 bench/otlp_sink.py
"""

import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)) or b"x" * n)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def main():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
