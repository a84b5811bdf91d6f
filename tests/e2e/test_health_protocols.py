"""Health checks speak the upstream's protocol (issue 10, section 3): to an https target they go
over TLS with the upstream's client settings (ca_file, verification, SNI = the target's host); with
`protocol: h2c` they are one HTTP/2 request by prior knowledge, with `protocol: h2` one HTTP/2
request over TLS that must negotiate ALPN h2. The verdict comes from the status and, when `body`
is set, the body. The backends here are the test's own (python3-h2 for HTTP/2), and count the
checks they receive on their side."""

import re
import socket
import ssl
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest

from helpers import certs, lb
from helpers.common import scaled, wait_until

HEALTH = {"path": "/healthz", "interval": "400ms", "timeout": "400ms", "fall": 2, "rise": 2}


class ProtoBackend:
    """A threaded backend on 127.0.0.1 speaking HTTP/1.1 (proto "h1") or HTTP/2 ("h2", the
    server side of a python3-h2 connection), over TLS when cert_key is given (offering alpn).
    mode: "ok" (200, body "healthy"), "500" (500, body "sick"), "close" (closes every
    connection at once, before any byte). `hits` counts the requests it answered; `last` holds
    the last request's fields (HTTP/2: with the pseudo-headers)."""

    def __init__(self, proto, cert_key=None, alpn=None):
        self.proto = proto
        self.mode = "ok"
        self.hits = 0
        self.last = {}
        self.handshake_errors = 0
        self.lock = threading.Lock()
        self.ctx = None
        if cert_key:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*cert_key)
            if alpn:
                self.ctx.set_alpn_protocols(alpn)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.05)
        self.port = self.lsock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.lsock.close()

    def _accept(self):
        while not self.stop.is_set():
            try:
                s, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._conn, args=(s,), daemon=True).start()

    def _answer(self):
        with self.lock:
            self.hits += 1
        return (500, b"sick") if self.mode == "500" else (200, b"healthy")

    def _conn(self, s):
        try:
            s.settimeout(5)
            if self.mode == "close":
                return
            if self.ctx:
                try:
                    s = self.ctx.wrap_socket(s, server_side=True)
                except (ssl.SSLError, OSError):
                    with self.lock:
                        self.handshake_errors += 1
                    return
            (self._h2 if self.proto == "h2" else self._h1)(s)
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            s.close()

    def _h1(self, s):
        data = b""
        while b"\r\n\r\n" not in data:
            got = s.recv(4096)
            if not got:
                return
            data += got
        lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        self.last = {"request-line": lines[0]}
        self.last.update((k.strip().lower(), v.strip())
                         for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln))
        status, body = self._answer()
        s.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                  % (status, len(body), body))

    def _h2(self, s):
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        while True:
            data = s.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    self.last = dict(ev.headers)
                    status, body = self._answer()
                    conn.send_headers(ev.stream_id, [(":status", str(status)),
                                                     ("content-length", str(len(body)))])
                    conn.send_data(ev.stream_id, body, end_stream=True)
            out = conn.data_to_send()
            if out:
                s.sendall(out)


@pytest.fixture
def backends():
    made = []

    def make(*args, **kw):
        b = ProtoBackend(*args, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.session_pki(tmp_path_factory)


def config(url, **keys):
    ups = {"targets": [{"url": url}], "health": dict(HEALTH)}
    ups.update(keys)
    return lb.proxy_config(ups)


def line(url, what):
    return r"target %s is %s" % (re.escape(url), what)


def goes_down(p, url, why, after=0):
    got = lb.wait_log(p, line(url, "down") + ".*" + why, scaled(4), after=after)
    assert got, p.stderr()[-3000:]
    return len(p.stderr())


def comes_up(p, url, after):
    assert lb.wait_log(p, line(url, "up"), scaled(4), after=after), p.stderr()[-3000:]
    return len(p.stderr())


def down_and_up(p, b, url):
    """b answers 500, then 200, then closes every connection, then answers 200 again: the
    target goes down, up, down and up."""
    b.mode = "500"
    mark = goes_down(p, url, "status 500")
    b.mode = "ok"
    mark = comes_up(p, url, mark)
    b.mode = "close"
    mark = goes_down(p, url, "", after=mark)
    b.mode = "ok"
    comes_up(p, url, mark)


def passes(p, b, url, n=3):
    """b answers n checks in a row and the target is never marked down."""
    start = b.hits
    assert wait_until(lambda: b.hits >= start + n, scaled(5)), (b.hits, p.stderr()[-3000:])
    assert not lb.log_lines(p, line(url, "down")), p.stderr()[-3000:]


def test_https_target_checks_go_over_tls_and_follow_the_status(portico, backends, pki):
    """Regression: checks of https targets were plain HTTP, so a TLS backend never saw one
    and was marked down at once."""
    b = backends("h1", pki.server(["localhost"]))
    url = "https://localhost:%d" % b.port
    p = portico(config(url, ca_file=pki.ca_cert))
    passes(p, b, url)
    assert b.last["request-line"] == "GET /healthz HTTP/1.1", b.last
    assert b.last["host"] == "localhost:%d" % b.port, b.last
    b.mode = "500"
    mark = goes_down(p, url, "status 500")
    b.mode = "ok"
    comes_up(p, url, mark)


def test_https_target_whose_certificate_is_not_trusted_is_down(portico, backends, pki,
                                                               tmp_path_factory):
    other = certs.session_pki(tmp_path_factory, "other")
    b = backends("h1", other.server(["localhost"]))
    url = "https://localhost:%d" % b.port
    p = portico(config(url, ca_file=pki.ca_cert))
    goes_down(p, url, "certificate verify failed")
    assert b.hits == 0


def test_tcp_check_of_https_target_is_a_tls_handshake(portico, backends, pki, tmp_path_factory):
    """type: tcp to an https target passes on a verified handshake, not on a bare connect: a
    target whose certificate Portico refuses could serve no request."""
    other = certs.session_pki(tmp_path_factory, "other")
    good = backends("h1", pki.server(["localhost"]))
    bad = backends("h1", other.server(["localhost"]))
    ups = {"good": {"targets": [{"url": "https://localhost:%d" % good.port}],
                    "ca_file": pki.ca_cert, "health": dict(HEALTH, type="tcp")},
           "bad": {"targets": [{"url": "https://localhost:%d" % bad.port}],
                   "ca_file": pki.ca_cert, "health": dict(HEALTH, type="tcp")}}
    p = portico(lb.proxy_config(ups, route={"to": "good"}))
    goes_down(p, "https://localhost:%d" % bad.port, "certificate verify failed")
    assert wait_until(lambda: bad.handshake_errors >= 2, scaled(3))
    assert not lb.log_lines(p, line("https://localhost:%d" % good.port, "down"))
    assert good.hits == 0  # a handshake, no request


def test_h2c_target_checks_are_http2_and_follow_status_and_close(portico, backends):
    b = backends("h2")
    url = "http://127.0.0.1:%d" % b.port
    p = portico(config(url, protocol="h2c"))
    passes(p, b, url)
    assert b.last[":method"] == "GET" and b.last[":path"] == "/healthz", b.last
    assert b.last[":scheme"] == "http", b.last
    assert b.last[":authority"] == "127.0.0.1:%d" % b.port, b.last
    down_and_up(p, b, url)


def test_h2c_check_reads_the_body_from_data_frames(portico, backends):
    b = backends("h2")
    url = "http://127.0.0.1:%d" % b.port
    p = portico(config(url, protocol="h2c", health=dict(HEALTH, body="healthy")))
    passes(p, b, url)
    p2 = portico(config(url, protocol="h2c", health=dict(HEALTH, body="elsewhere")),
                 name="wrong-body")
    goes_down(p2, url, "body does not contain")


def test_http1_only_backend_behind_h2c_is_down(portico, backends):
    b = backends("h1")
    url = "http://127.0.0.1:%d" % b.port
    p = portico(config(url, protocol="h2c"))
    goes_down(p, url, "no HTTP/2 from the target")


def test_h2_target_checks_are_http2_over_tls_and_follow_the_status(portico, backends, pki):
    b = backends("h2", pki.server(["localhost"]), alpn=["h2"])
    url = "https://localhost:%d" % b.port
    p = portico(config(url, protocol="h2", ca_file=pki.ca_cert))
    passes(p, b, url)
    assert b.last[":scheme"] == "https", b.last
    assert b.last[":authority"] == "localhost:%d" % b.port, b.last
    down_and_up(p, b, url)


def test_h2_target_that_does_not_select_alpn_h2_is_down(portico, backends, pki):
    """Also with type: tcp, which is the handshake and its ALPN for an h2 upstream."""
    b = backends("h1", pki.server(["localhost"]), alpn=["http/1.1"])
    url = "https://localhost:%d" % b.port
    p = portico(config(url, protocol="h2", ca_file=pki.ca_cert))
    goes_down(p, url, "ALPN")
    tcp = portico(config(url, protocol="h2", ca_file=pki.ca_cert, health=dict(HEALTH, type="tcp")),
                  name="tcp")
    goes_down(tcp, url, "ALPN")
    assert b.hits == 0


def test_reload_hands_the_checker_new_tls_settings(portico, backends, pki, tmp_path_factory):
    """The checker's TLS contexts are rebuilt with each configuration: a reload to a CA that
    does not sign the target's certificate takes it down, the reload back brings it up."""
    other = certs.session_pki(tmp_path_factory, "other")
    b = backends("h1", pki.server(["localhost"]))
    url = "https://localhost:%d" % b.port
    p = portico(config(url, ca_file=pki.ca_cert))
    passes(p, b, url)
    mark = len(p.stderr())
    p.reload(config(url, ca_file=other.ca_cert))
    mark = goes_down(p, url, "certificate verify failed", after=mark)
    p.reload(config(url, ca_file=pki.ca_cert))
    comes_up(p, url, mark)
