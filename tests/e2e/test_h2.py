"""HTTP/2 toward clients (issue 10, section 2): h2 by ALPN on TLS listeners (on unless
http2: false) and h2c by prior knowledge on plain ones (opt-in, http2: true); the local routes
over HTTP/2; stream states, flow control, header validation, GOAWAY on reload and drain; and
the defences (rapid reset, CONTINUATION flood, a header block that decodes huge,
PING/SETTINGS/empty-frame floods, the per-connection work budget, a window left at zero).

Frame-level clients are python3-h2 (the state machine) and python3-hyperframe (raw frames for
the floods, which h2 would refuse to send); curl --http2 and nghttp are the real clients."""

import hashlib
import json
import os
import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

from helpers import backends as B
from helpers import certs
from helpers.client import get, request
from helpers.common import free_port, gen_sha256, scaled

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB
PROTOCOL_ERROR = 0x1

# --- configuration and clients ------------------------------------------------------------


def write(path, data):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.session_pki(tmp_path_factory)


@pytest.fixture(autouse=True)
def site(tmp_path):
    """A static root: index.html, a 3 MB file, and Netlify _redirects."""
    big = os.urandom(3 * 1024 * 1024 + 123)
    write(tmp_path / "site" / "index.html", "<p>home</p>\n")
    write(tmp_path / "site" / "big.bin", big)
    write(tmp_path / "site" / "_redirects", "/old /index.html 301\n/pretty /index.html 200\n")
    return {"big": big}


def routes(proxy_to="http://127.0.0.1:9"):
    return [{"match": "/r", "respond": {"status": 200, "body": "hello h2\n",
                                        "headers": {"X-Route": "respond"}}},
            {"match": "/go", "redirect": {"to": "/r", "status": 302}},
            {"match": "/p/*", "proxy": {"to": proxy_to}},
            {"match": "/*", "static": {"root": "site"}}]


def start(portico, h2c=True, tls=None, extra=None, limits=None, proxy_to=None):
    """Portico with a plain listener on p.port (http2: h2c) and, with tls (a certificate
    list), a TLS listener with http2: true on p.tls_port."""
    memo = {}

    def cfg(port):
        if port not in memo:
            memo[port] = free_port() if tls else None
        listen = [{"addr": "127.0.0.1:%d" % port, "http2": h2c}]
        c = {"listen": listen,
             "routes": routes(proxy_to) if proxy_to else routes()}
        if tls:
            listen.append({"addr": "127.0.0.1:%d" % memo[port], "tls": True, "http2": True})
            c["tls"] = {"certificates": tls}
        if limits:
            c["limits"] = limits
        c.update(extra or {})
        return c

    p = portico(cfg)
    p.tls_port = memo[p.port]
    return p


class H2:
    """A python3-h2 client connection over a plain socket (h2c prior knowledge)."""

    def __init__(self, port, settings=None, validate=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate,
                                        validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read(self, timeout=None):
        """Reads once (up to timeout); returns the new events. Sets closed at EOF."""
        self.sock.settimeout(scaled(5) if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return []
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return []
        ev = self.conn.receive_data(data)
        self.flush()
        self.events.extend(ev)
        return ev

    def until(self, pred, timeout=5.0):
        deadline = time.monotonic() + scaled(timeout)
        while not pred() and not self.closed and time.monotonic() < deadline:
            self.read(timeout=0.2)
        return pred()

    def request(self, path, method="GET", headers=None, body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", "localhost"),
                (":path", path)] + list(headers or [])
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            for i in range(0, max(len(body), 1), 16384):
                last = i + 16384 >= len(body)
                self.conn.send_data(sid, body[i:i + 16384], end_stream=end and last)
        self.flush()
        return sid

    def send_body(self, sid, body, timeout=10.0):
        """Sends body on sid as the windows allow, then END_STREAM."""
        self.send_body_open(sid, body, timeout)
        self.conn.end_stream(sid)
        self.flush()

    def send_body_open(self, sid, body, timeout=10.0):
        """Sends body on sid as the windows allow, leaving the stream open."""
        deadline = time.monotonic() + scaled(timeout)
        while body and not self.closed and self.reset_code(sid) is None:
            n = min(len(body), 16384, self.conn.local_flow_control_window(sid))
            if n <= 0:
                assert time.monotonic() < deadline, "the window never reopened"
                self.read(timeout=0.2)
                continue
            self.conn.send_data(sid, body[:n])
            body = body[n:]
            self.flush()

    def response(self, sid, timeout=5.0):
        """(status, headers dict, body bytes) once the stream ended; acknowledges data."""
        self.until(lambda: self.ended(sid), timeout)
        hdrs, body = {}, b""
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                hdrs = dict(e.headers)
            elif isinstance(e, h2.events.DataReceived) and e.stream_id == sid:
                body += e.data
        assert self.ended(sid), "stream %d did not end: %r" % (sid, self.events[-5:])
        return int(hdrs.get(":status", 0)), hdrs, body

    def ended(self, sid):
        return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                   and e.stream_id == sid for e in self.events)

    def reset_code(self, sid):
        for e in self.events:
            if isinstance(e, h2.events.StreamReset) and e.stream_id == sid:
                return e.error_code
        return None

    def goaway(self):
        for e in self.events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return e
        return None

    def close(self):
        self.sock.close()


def auto_ack(c):
    """Acknowledge received data so that windows reopen (h2 leaves that to the caller)."""
    for e in c.events:
        if isinstance(e, h2.events.DataReceived) and not getattr(e, "_acked", False):
            c.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            e._acked = True
    c.flush()


def get_h2(port, path, **kw):
    c = H2(port)
    try:
        sid = c.request(path, **kw)
        c.until(lambda: c.ended(sid) or (auto_ack(c) and False), 10)
        return c.response(sid)
    finally:
        c.close()


def curl(args, timeout=30):
    return subprocess.run(["curl", "-sS"] + args, capture_output=True, timeout=scaled(timeout))


# --- raw frames (floods) ------------------------------------------------------------------


class Raw:
    """A socket speaking raw frames: preface and SETTINGS sent, the server's frames parsed."""

    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        self.sock.sendall(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())
        self.buf = b""
        self.frames = []
        self.closed = False

    def send(self, data):
        """Sends data; False once the server has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
            return False

    def drain(self, timeout=0.0):
        """Reads what has arrived (waiting up to timeout for the first byte)."""
        self.sock.settimeout(timeout if timeout > 0 else 0.000001)
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except (socket.timeout, BlockingIOError):
                break
            except ConnectionResetError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            self.buf += data
            self.sock.settimeout(0.000001)
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self.frames.append(f)

    def goaway(self):
        for f in self.frames:
            if isinstance(f, GoAwayFrame):
                return f
        return None

    def wait_end(self, timeout=5.0):
        """Reads until the connection closes or timeout; returns the GOAWAY frame or None."""
        deadline = time.monotonic() + scaled(timeout)
        while not self.closed and time.monotonic() < deadline:
            self.drain(0.2)
        return self.goaway()

    def close(self):
        self.sock.close()


def flood(port, make, n, batch=200, settings=None):
    """Sends n frames from make(i) in batches, reading between them. Returns the Raw
    connection (closed or not) with the server's frames."""
    r = Raw(port, settings)
    for start_i in range(0, n, batch):
        data = b"".join(make(i) for i in range(start_i, min(n, start_i + batch)))
        if not r.send(data):
            break
        r.drain()
        if r.closed:
            break
    r.wait_end(3.0)
    return r


def enc_headers(path="/r", extra=()):
    e = hpack.Encoder()
    return e.encode([(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
                     (":path", path)] + list(extra))


# --- switching protocols ------------------------------------------------------------------


def test_h2c_prior_knowledge_answers_with_settings_and_respond_route(portico):
    p = start(portico)
    c = H2(p.port)
    sid = c.request("/r")
    status, hdrs, body = c.response(sid)
    assert (status, body) == (200, b"hello h2\n")
    assert hdrs["x-route"] == "respond" and hdrs["content-length"] == "9"
    assert "connection" not in hdrs and "transfer-encoding" not in hdrs
    s = [e for e in c.events if isinstance(e, h2.events.RemoteSettingsChanged)][0]
    got = {k: v.new_value for k, v in s.changed_settings.items()}
    assert got[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 100
    assert got[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 65535
    assert got[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == 16384
    assert got[h2.settings.SettingCodes.ENABLE_PUSH] == 0
    # several requests on the one connection
    for i in range(5):
        assert c.response(c.request("/r"))[0] == 200
    c.close()
    assert any(" HTTP/2.0\" 200 9 " in ln for ln in p.access_log())


def test_http2_settings_come_from_the_config(portico):
    p = start(portico, extra={"http2": {"max_concurrent_streams": 7,
                                        "initial_window_size": "128k",
                                        "max_header_list_size": "32k"}})
    c = H2(p.port)
    c.until(lambda: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in c.events))
    s = [e for e in c.events if isinstance(e, h2.events.RemoteSettingsChanged)][0]
    got = {k: v.new_value for k, v in s.changed_settings.items()}
    assert got[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 7
    assert got[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 128 * 1024
    assert got[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == 32 * 1024
    c.close()


def test_h2c_is_off_by_default_and_tls_offers_h2_unless_http2_false(portico, pki):
    cert, key = pki.server(["a.test"], "ec")
    p = start(portico, h2c=False)
    s = socket.create_connection(("127.0.0.1", p.port), timeout=scaled(5))
    s.sendall(PREFACE)
    data = s.recv(4096)
    s.close()
    assert data.startswith(b"HTTP/1.1 "), data  # an HTTP/1.1 answer, not SETTINGS
    # a TLS listener offers h2 (ALPN) without http2: true; http2: false turns it off

    def cfg(http2):
        def make(port):
            listen = {"addr": "127.0.0.1:%d" % port, "tls": True}
            if http2 is not None:
                listen["http2"] = http2
            return {"listen": [listen], "tls": {"certificates": [{"cert": cert, "key": key}]},
                    "routes": routes()}
        return make

    for http2, want in ((None, b"2"), (False, b"1.1")):
        q = portico(cfg(http2), name="tls-%s" % http2)
        r = curl(["-k", "--http2", "-o", "/dev/null", "-w", "%{http_version}",
                  "https://127.0.0.1:%d/r" % q.port])
        assert r.stdout == want, (http2, r)


def test_tls_alpn_h2_with_curl_serves_static_ranges_and_head(portico, pki, site):
    cert, key = pki.server(["a.test"], "ec")
    p = start(portico, tls=[{"cert": cert, "key": key}])
    base = ["--cacert", pki.ca_cert, "--resolve", "a.test:%d:127.0.0.1" % p.tls_port, "--http2"]
    url = "https://a.test:%d" % p.tls_port
    r = curl(base + ["-w", "\n%{http_version} %{http_code}", url + "/r"])
    assert r.stdout == b"hello h2\n\n2 200", r
    r = curl(base + [url + "/big.bin"])
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(site["big"]).digest()
    r = curl(base + ["-r", "1000-1999", "-D", "-", url + "/big.bin"])
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 206") and body == site["big"][1000:2000], head
    assert b"content-range: bytes 1000-1999/" in head
    r = curl(base + ["-I", url + "/index.html"])
    assert r.stdout.startswith(b"HTTP/2 200") and b"content-length: 12" in r.stdout
    # HTTP/1.1 still works on the same listener
    r = curl(base[:-1] + ["--http1.1", "-w", "%{http_version}", "-o", "/dev/null", url + "/r"])
    assert r.stdout == b"1.1"


def test_static_file_over_h2c_is_whole_and_head_has_no_body(portico, site):
    p = start(portico)
    r = curl(["--http2-prior-knowledge", "http://127.0.0.1:%d/big.bin" % p.port])
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(site["big"]).digest()
    status, hdrs, body = get_h2(p.port, "/big.bin", method="HEAD")
    assert status == 200 and body == b"" and hdrs["content-length"] == str(len(site["big"]))
    status, hdrs, body = get_h2(p.port, "/big.bin", headers=[("range", "bytes=-10")])
    assert status == 206 and body == site["big"][-10:]


def test_nghttp_many_concurrent_streams(portico, site):
    p = start(portico)
    r = subprocess.run(["nghttp", "-n", "-s", "-m", "30", "http://127.0.0.1:%d/index.html"
                        % p.port], capture_output=True, timeout=scaled(30))
    assert r.returncode == 0, r
    lines = [ln for ln in r.stdout.decode().splitlines() if "/index.html" in ln]
    assert len(lines) == 30 and all(" 200 " in ln for ln in lines), r.stdout


def test_local_routes_match_http11(portico, site):
    p = start(portico)
    for path in ("/r", "/go", "/old", "/pretty", "/missing", "/index.html"):
        h1 = get(p.port, path)
        status, hdrs, body = get_h2(p.port, path)
        assert status == h1.status, path
        if status < 400:  # error pages differ by their request id
            assert body == h1.body, path
        if h1.header("Location"):
            assert hdrs["location"] == h1.header("Location")
    status, hdrs, body = get_h2(p.port, "/r", method="DELETE")
    assert status == request(p.port, "DELETE", "/r").status


# --- proxy routes -----------------------------------------------------------------------------


def test_proxy_get_over_h2c_and_tls_h2(portico, pki, backend):
    b = backend(B.echo())
    cert, key = pki.server(["a.test"], "ec")
    p = start(portico, tls=[{"cert": cert, "key": key}], proxy_to=b.url)
    status, hdrs, body = get_h2(p.port, "/p/x?q=1")
    assert status == 200, (hdrs, body)
    seen = json.loads(body)
    assert seen["method"] == "GET" and seen["target"] == "/p/x?q=1" and seen["body_len"] == 0
    sent = {k.lower(): v for k, v in seen["headers"]}
    assert "content-length" not in sent and "transfer-encoding" not in sent
    assert sent["x-forwarded-proto"] == "http" and sent["x-request-id"] == hdrs["x-request-id"]
    # the response-header stage applies: our Server, our X-Request-Id, no hop-by-hop fields
    assert hdrs["server"] != "backend-server/1.0" and hdrs["x-request-id"]
    assert "connection" not in hdrs and "transfer-encoding" not in hdrs
    base = ["--cacert", pki.ca_cert, "--resolve", "a.test:%d:127.0.0.1" % p.tls_port, "--http2"]
    r = curl(base + ["-w", "\n%{http_version} %{http_code}",
                     "https://a.test:%d/p/tls" % p.tls_port])
    body, _, tail = r.stdout.rpartition(b"\n")
    assert tail == b"2 200", r
    seen = json.loads(body)
    assert seen["path"] == "/p/tls"
    assert dict((k.lower(), v) for k, v in seen["headers"])["x-forwarded-proto"] == "https"


def test_proxy_post_bodies_with_and_without_length(portico, backend):
    b = backend(B.echo())
    p = start(portico, proxy_to=b.url)
    data = os.urandom(300000)
    c = H2(p.port)
    sid = c.request("/p/len", method="POST", headers=[("content-length", str(len(data)))],
                    end=False)
    c.send_body(sid, data)
    c.until(lambda: c.ended(sid) or (auto_ack(c) and False), 10)
    status, _, body = c.response(sid)
    seen = json.loads(body)
    assert status == 200 and seen["body_len"] == len(data) and not seen["chunked"]
    assert seen["body_sha256"] == hashlib.sha256(data).hexdigest()
    sid = c.request("/p/nolen", method="POST", end=False)
    c.send_body(sid, data)
    status, _, body = c.response(sid, 10)
    seen = json.loads(body)
    assert status == 200 and seen["body_len"] == len(data) and seen["chunked"]
    assert seen["body_sha256"] == hashlib.sha256(data).hexdigest()
    c.close()
    # curl streams a body of unknown length too
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "-T", "-",
                        "http://127.0.0.1:%d/p/curl" % p.port], input=data,
                       capture_output=True, timeout=scaled(30))
    seen = json.loads(r.stdout)
    assert seen["body_len"] == len(data) and seen["chunked"], r
    assert seen["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_proxy_large_response_is_whole(portico, backend):
    n = 5 * 1024 * 1024 + 17
    b = backend(B.stream(n))
    p = start(portico, proxy_to=b.url)
    r = curl(["--http2-prior-knowledge", "http://127.0.0.1:%d/p/big" % p.port], timeout=60)
    assert len(r.stdout) == n and hashlib.sha256(r.stdout).hexdigest() == gen_sha256(n)


def test_proxy_many_concurrent_streams_on_one_connection(portico, backend):
    b = backend(B.echo())
    p = start(portico, proxy_to=b.url)
    c = H2(p.port)
    sids = [c.request("/p/s%d" % i) for i in range(50)]
    c.until(lambda: all(c.ended(s) for s in sids), 20)
    for i, sid in enumerate(sids):
        status, _, body = c.response(sid)
        assert status == 200 and json.loads(body)["path"] == "/p/s%d" % i
    c.close()
    r = subprocess.run(["nghttp", "-n", "-s", "-m", "50", "http://127.0.0.1:%d/p/n" % p.port],
                       capture_output=True, timeout=scaled(30))
    assert r.returncode == 0, r
    lines = [ln for ln in r.stdout.decode().splitlines() if "/p/n" in ln]
    assert len(lines) == 50 and all(" 200 " in ln for ln in lines), r.stdout


def test_client_reset_cancels_the_upstream_request(portico, backend):
    closed = []

    def h(req, w):
        w.head(200, [("Content-Length", str(1 << 30))])
        try:
            while True:
                w.sock.sendall(b"x" * 65536)
        except OSError:
            closed.append(True)
        w.keep = False

    b = backend(h)
    p = start(portico, proxy_to=b.url)
    c = H2(p.port)
    sid = c.request("/p/endless")
    c.until(lambda: any(isinstance(e, h2.events.DataReceived) for e in c.events), 5)
    c.conn.reset_stream(sid)
    c.flush()
    deadline = time.monotonic() + scaled(5)
    while not closed and time.monotonic() < deadline:
        c.read(timeout=0.1)
    assert closed, "the upstream request was not cancelled"
    assert c.response(c.request("/r"))[0] == 200  # the connection goes on
    c.close()


def test_slow_reader_with_a_small_window_gets_the_whole_response(portico, backend):
    n = 3 * 1024 * 1024
    b = backend(B.stream(n))
    p = start(portico, proxy_to=b.url)
    c = H2(p.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    sid = c.request("/p/big")
    c.until(lambda: False, 1.0)
    got = sum(len(e.data) for e in c.events if isinstance(e, h2.events.DataReceived))
    assert got == 1000, got  # the window bounds what is sent; the upstream waits
    c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    c.conn.increment_flow_control_window(1 << 24)
    c.flush()
    c.until(lambda: c.ended(sid) or (auto_ack(c) and False), 30)
    status, _, body = c.response(sid)
    assert status == 200 and len(body) == n and hashlib.sha256(body).hexdigest() == gen_sha256(n)
    c.close()


def test_proxy_upstream_failure_is_502_over_h2(portico):
    p = start(portico)  # /p/* goes to port 9: refused
    status, hdrs, body = get_h2(p.port, "/p/x")
    assert status == 502 and b"502 Bad Gateway" in body
    assert "not served over HTTP/2" not in p.stderr()


def test_proxy_body_over_body_size_is_413(portico, backend):
    b = backend(B.echo())
    p = start(portico, proxy_to=b.url, limits={"body_size": "10k"})
    c = H2(p.port)
    sid = c.request("/p/big", method="POST", body=b"z" * 50000)
    assert c.response(sid)[0] == 413
    c.close()


def test_proxy_request_body_that_stalls_is_408(portico, backend):
    b = backend(B.echo())
    p = start(portico, proxy_to=b.url, limits={"body_timeout": "1s"})
    c = H2(p.port)
    sid = c.request("/p/stall", method="POST", headers=[("content-length", "1000")], end=False)
    c.conn.send_data(sid, b"a" * 10)
    c.flush()
    t0 = time.monotonic()
    status, _, _ = c.response(sid, 10)
    assert status == 408 and time.monotonic() - t0 < scaled(5)
    assert c.response(c.request("/r"))[0] == 200  # the connection goes on
    c.close()


def test_hsts_on_proxied_responses_over_h2(portico, pki, backend):
    b = backend(B.echo())
    cert, key = pki.server(["secure.test"], "ec")
    p = portico(lambda port: {
        "listen": [{"addr": "127.0.0.1:%d" % port, "tls": True, "http2": True}],
        "tls": {"certificates": [{"cert": cert, "key": key}]},
        "sites": [{"hosts": ["secure.test"], "hsts": {"max_age": "1d"},
                   "routes": [{"match": "/*", "proxy": {"to": b.url}}]}],
    })
    r = curl(["--cacert", pki.ca_cert, "--resolve", "secure.test:%d:127.0.0.1" % p.port,
              "--http2", "-D", "-", "-o", "/dev/null", "https://secure.test:%d/x" % p.port])
    head = r.stdout.decode().lower()
    assert head.startswith("http/2 200"), r
    assert "strict-transport-security: max-age=86400" in head and "x-request-id:" in head


# --- header validation ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[("connection", "keep-alive")], [("te", "gzip")],
                                 [("X-Upper", "1")], [("x-v", "a\x01b")],
                                 [("transfer-encoding", "chunked")]])
def test_malformed_request_head_is_a_stream_error(portico, bad):
    p = start(portico)
    c = H2(p.port, validate=False)
    sid = c.request("/r", headers=bad)
    c.until(lambda: c.ended(sid))
    assert c.reset_code(sid) == PROTOCOL_ERROR, c.events
    # the connection lives on
    assert c.response(c.request("/r"))[0] == 200
    c.close()


def test_header_list_over_the_limit_gets_431(portico):
    p = start(portico, limits={"header_size": "4k"})
    c = H2(p.port)
    sid = c.request("/r", headers=[("x-big", "a" * 5000)])
    status, _, _ = c.response(sid)
    assert status == 431
    c.close()


def test_cookie_crumbs_reach_handlers_joined(portico, tmp_path):
    # a Netlify Cookie condition sees the joined crumbs (RFC 9113 §8.2.3)
    write(tmp_path / "site" / "index.html", "home")
    write(tmp_path / "site" / "_redirects", "/c /index.html 302! Cookie=b\n")
    p = start(portico)
    status, _, _ = get_h2(p.port, "/c", headers=[("cookie", "a=1"), ("cookie", "b=2")])
    assert status == 302
    status, _, _ = get_h2(p.port, "/c", headers=[("cookie", "a=1")])
    assert status == 404


# --- flow control and bodies ----------------------------------------------------------------


def test_flow_control_window_bounds_what_is_sent(portico, site):
    p = start(portico)
    c = H2(p.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    sid = c.request("/big.bin")
    time.sleep(scaled(0.5))
    c.until(lambda: False, 1.0)
    got = sum(len(e.data) for e in c.events if isinstance(e, h2.events.DataReceived))
    assert got == 1000, got  # exactly the stream window, no more
    c.conn.increment_flow_control_window(5000, stream_id=sid)
    c.conn.increment_flow_control_window(5000)
    c.flush()
    c.until(lambda: sum(len(e.data) for e in c.events
                        if isinstance(e, h2.events.DataReceived)) >= 6000, 3.0)
    got = sum(len(e.data) for e in c.events if isinstance(e, h2.events.DataReceived))
    assert got == 6000, got
    c.close()


def test_request_body_of_a_local_route_is_dropped(portico):
    p = start(portico)
    c = H2(p.port)
    sid = c.request("/r", method="POST", body=b"x" * 30000)
    status, _, body = c.response(sid)
    assert (status, body) == (200, b"hello h2\n")
    # a small body still coming: the answer waits for the request to end (the head is held)
    sid = c.request("/r", method="POST", body=b"y" * 1000, end=False)
    c.until(lambda: c.ended(sid), timeout=0.5)
    assert not c.ended(sid), c.events[-3:]
    c.conn.end_stream(sid)
    c.flush()
    status, _, body = c.response(sid)
    assert (status, body, c.reset_code(sid)) == (200, b"hello h2\n", None)
    # a large body still coming: answered at once, then RST_STREAM NO_ERROR (RFC 9113 §8.1)
    sid = c.request("/r", method="POST", end=False)
    c.send_body_open(sid, b"z" * (70 * 1024))
    c.until(lambda: c.reset_code(sid) is not None)
    assert c.reset_code(sid) == 0
    assert any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid
               for e in c.events)
    assert c.response(c.request("/r"))[0] == 200
    c.close()


def test_local_answer_waits_for_the_whole_request(portico):
    """A content-length that the DATA frames contradict is a stream error (RFC 9113 §8.1.1),
    not a 200 sent before the body was seen: the answer of a local route waits for the
    request's end."""
    p = start(portico)
    c = H2(p.port, validate=False)
    sid = c.request("/r", method="POST", headers=[("content-length", "10")], end=False)
    c.until(lambda: c.ended(sid), timeout=0.5)  # the head alone: nothing answers yet
    c.conn.send_data(sid, b"abc", end_stream=True)
    c.flush()
    c.until(lambda: c.ended(sid))
    assert c.reset_code(sid) == 1, c.events  # PROTOCOL_ERROR
    assert not any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid
                   for e in c.events)
    assert c.response(c.request("/r"))[0] == 200
    c.close()


def test_body_over_body_size_is_413(portico):
    p = start(portico, limits={"body_size": "1k"})
    c = H2(p.port)
    sid = c.request("/r", method="POST", headers=[("content-length", "5000")], body=b"z" * 5000)
    assert c.response(sid)[0] == 413
    c.close()


# --- GOAWAY ---------------------------------------------------------------------------------


def test_goaway_on_reload_lets_the_stream_in_flight_finish(portico, site):
    p = start(portico)
    # python3-h2 stops at the first GOAWAY, so raw frames: a stream held by a window of 0
    r = Raw(p.port, settings={4: 0})
    r.send(HeadersFrame(1, data=enc_headers("/big.bin"),
                        flags=["END_HEADERS", "END_STREAM"]).serialize())
    deadline = time.monotonic() + scaled(5)
    while not any(isinstance(f, HeadersFrame) for f in r.frames) and time.monotonic() < deadline:
        r.drain(0.2)
    p.reload()
    while r.goaway() is None and not r.closed and time.monotonic() < deadline + scaled(5):
        r.drain(0.2)
    g = r.goaway()
    assert g is not None and g.error_code == 0 and g.last_stream_id == 1, r.frames
    # the stream in flight still gets its whole body once the window opens
    r.send(SettingsFrame(0, settings={4: (1 << 31) - 1}).serialize()
           + WindowUpdateFrame(0, window_increment=(1 << 31) - 1 - 65535).serialize())
    r.wait_end(15)
    got = sum(len(f.data) for f in r.frames if isinstance(f, DataFrame) and f.stream_id == 1)
    assert got == len(site["big"])
    assert "END_STREAM" in [f for f in r.frames if isinstance(f, DataFrame)][-1].flags
    assert r.closed  # and the connection ends after it
    r.close()
    # new connections are served
    assert get_h2(p.port, "/r")[0] == 200


def test_goaway_on_drain(portico):
    p = start(portico)
    c = H2(p.port)
    assert c.response(c.request("/r"))[0] == 200
    p.signal(15)
    assert c.until(lambda: c.goaway() is not None), c.events
    assert c.goaway().error_code == 0
    assert c.until(lambda: c.closed, 5)
    assert p.stop() == 0


def test_clients_closing_as_the_drain_begins_are_freed_once(portico):
    # SIGTERM makes the worker queue a GOAWAY run (pt_conn_yield) for every HTTP/2
    # connection; a client that closes at that moment is closed by its EOF in the next loop
    # iteration, before the queued run comes up. Each connection must still be freed once,
    # after it is off the loop's lists (the sanitizer build reports a use after free
    # otherwise). Closing over a few milliseconds straddles the loop iteration that
    # starts the drain; a few rounds make that all but certain.
    for _ in range(5):
        p = start(portico)
        conns = [H2(p.port) for _ in range(150)]
        for c in conns:
            c.request("/r")
        for c in conns:
            assert c.until(lambda c=c: c.ended(1), 10)
        p.signal(15)
        for c in conns:
            c.close()
            time.sleep(0.0001)
        assert p.stop() == 0
        assert p.sanitizer_report() is None, p.stderr()[-6000:]


# --- defences -------------------------------------------------------------------------------


def test_rapid_reset_is_cut_off(portico):
    p = start(portico)
    block = enc_headers()

    def pair(i):
        sid = 1 + 2 * i
        return (HeadersFrame(sid, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize()
                + RstStreamFrame(sid, error_code=8).serialize())
    r = flood(p.port, pair, 5000)
    g = r.goaway()
    # nghttp2's reset rate limit (INTERNAL_ERROR) or the work budget, whichever comes first
    assert r.closed and g is not None and g.error_code in (ENHANCE_YOUR_CALM, 2), r.frames[-3:]
    assert g.last_stream_id < 2 * 5000
    r.close()


def test_continuation_flood_is_cut_off(portico):
    p = start(portico)
    e = hpack.Encoder()
    first = HeadersFrame(1, data=e.encode([(":method", "GET"), (":scheme", "http"),
                                           (":authority", "l"), (":path", "/r")]))

    def cont(i):
        return (first.serialize() if i == 0 else b"") + ContinuationFrame(
            1, data=e.encode([("x-a", "b")])).serialize()
    r = flood(p.port, cont, 2000, batch=50)
    assert r.closed, "connection still open after 2000 CONTINUATION frames"
    r.close()


def test_header_block_that_decodes_huge_is_cut_off(portico):
    p = start(portico)
    # one 4000-byte field put in the dynamic table, then referenced by 1-byte indexes: 16 KB
    # on the wire that decode to 48 MB
    lit = b"\x40" + bytes([0x05]) + b"x-big" + b"\x7f" + bytes([0x81, 0x1e]) + b"v" * 4000
    idx = b"\xbe" * 12000  # index 62: the field just added
    block = enc_headers() + lit + idx
    r = Raw(p.port)
    frames = HeadersFrame(1, data=block[:16000]).serialize()
    rest = block[16000:]
    frames += ContinuationFrame(1, data=rest, flags=["END_HEADERS"]).serialize()
    r.send(frames)
    g = r.wait_end()
    assert r.closed and g is not None and g.error_code == ENHANCE_YOUR_CALM, r.frames
    assert "decodes huge" in p.stderr()
    r.close()


@pytest.mark.parametrize("kind", ["ping", "settings", "empty_data", "window_update"])
def test_control_and_empty_frame_floods_are_cut_off(portico, kind):
    p = start(portico)

    def make(i):
        if kind == "ping":
            return PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize()
        if kind == "settings":
            return SettingsFrame(0).serialize()
        if kind == "window_update":
            return WindowUpdateFrame(0, window_increment=1).serialize()
        if i == 0:  # a POST stream kept open (our answer waits on a window of 0), then DATA
            return HeadersFrame(1, data=enc_headers("/r", [("x", "1")]),  # frames with nothing
                                flags=["END_HEADERS"]).serialize()
        return DataFrame(1, data=b"").serialize()
    r = flood(p.port, make, 20000, settings={4: 0} if kind == "empty_data" else None)
    g = r.goaway()
    assert r.closed and g is not None and g.error_code == ENHANCE_YOUR_CALM, r.frames[-3:]
    # PING and SETTINGS are acked: when the acks queue up faster than this client reads them
    # (a loaded machine, 9-byte SETTINGS), nghttp2's max_outbound_ack ends the session first;
    # frames without an answer (empty DATA, tiny WINDOW_UPDATE) always meet the work budget
    acked = kind in ("ping", "settings")
    assert "too much work" in p.stderr() or (acked and "Flooding" in p.stderr())
    r.close()


def test_modest_control_traffic_is_not_cut_off(portico):
    p = start(portico)
    c = H2(p.port)
    for i in range(200):
        c.conn.ping(i.to_bytes(8, "big"))
        c.flush()
        assert c.response(c.request("/r"))[0] == 200
    assert c.goaway() is None and not c.closed
    c.close()


def test_window_left_at_zero_times_out(portico, site):
    p = start(portico, limits={"send_timeout": "1s", "body_timeout": "1s"})
    c = H2(p.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.request("/big.bin")
    t0 = time.monotonic()
    assert c.until(lambda: c.closed, 10)
    assert time.monotonic() - t0 < scaled(6)
    assert c.goaway() is not None


def test_precompressed_sibling_and_headers_rules_over_h2(portico, tmp_path):
    import gzip
    text = b"body { color: red }\n" * 200
    write(tmp_path / "site" / "app.css", text)
    write(tmp_path / "site" / "app.css.gz", gzip.compress(text))
    write(tmp_path / "site" / "_headers", "/app.css\n  X-Rule: on\n")
    p = start(portico)
    status, hdrs, body = get_h2(p.port, "/app.css", headers=[("accept-encoding", "gzip")])
    assert status == 200 and hdrs.get("content-encoding") == "gzip"
    assert gzip.decompress(body) == text and hdrs["x-rule"] == "on"
    status, hdrs, body = get_h2(p.port, "/app.css")
    assert status == 200 and "content-encoding" not in hdrs and body == text
