"""Backends that differ only by their loopback address, for the tests where DNS decides which
one a request reaches (test_dns.py, test_ssrf.py): a pair on 127.0.0.2:P and 127.0.0.3:P (one
port P from the kernel; both addresses are loopback on Linux). Each answers every GET with 200,
its address as the body and in X-Backend, and counts the requests it served (`count`), the
Host headers it saw (`hosts`) and the TCP connections it accepted (`accepted`, so a test can
prove that nothing connected), under `lock`."""

import contextlib
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from helpers.common import IO_TIMEOUT


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        with srv.lock:
            srv.count += 1
            srv.hosts.add(self.headers.get("Host", ""))
        body = srv.ip.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", srv.ip)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def verify_request(self, request, client_address):
        with self.lock:
            self.accepted += 1
        return True


def start(ip, port):
    """A backend listening on ip:port (0: the kernel chooses), serving in a thread."""
    s = _Server((ip, port), _Handler)
    s.ip = ip
    s.count = 0
    s.accepted = 0
    s.hosts = set()
    s.lock = threading.Lock()
    t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    s.thread = t
    return s


def stop(s):
    s.shutdown()
    s.server_close()
    s.thread.join(5)


@contextlib.contextmanager
def pair():
    """[backend on 127.0.0.2:P, backend on 127.0.0.3:P], both stopped on leaving."""
    made = None
    for _ in range(20):
        a = start("127.0.0.2", 0)
        try:
            made = [a, start("127.0.0.3", a.server_address[1])]
            break
        except OSError:
            stop(a)
    assert made, "no port free on both 127.0.0.2 and 127.0.0.3"
    try:
        yield made
    finally:
        for s in made:
            stop(s)


def get(port, path="/"):
    """GET path from 127.0.0.1:port on a fresh connection: (status, X-Backend, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("X-Backend"), r.read()
    finally:
        c.close()
