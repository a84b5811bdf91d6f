"""Connection-level guards (server/connguard.c, guard/connlimit.c), end to end: the per-client
caps on connections (refused at accept) and on requests in flight (429), idle keep-alive
connections closed first at limits.max_connections, slow heads, bodies and readers closed
whatever they send, and a listener's ip: rules refusing at accept, before TLS.

Clients connect from different loopback addresses (all of 127.0.0.0/8 is local on Linux), so
each is its own client. Timeouts below only bound the tests; no test asserts a duration.
"""

import re
import socket
import ssl
import subprocess
import time

import pytest

from helpers import admin as A
from helpers import backends as B
from helpers import certs
from helpers.client import Closed, RawConn, get
from helpers.common import free_port, scaled, wait_until
from helpers.tlsclient import context

OK = {"match": "/*", "respond": {"status": 200, "body": "ok\n"}}


def with_admin(tf, build):
    def cfg(port):
        c = build(port)
        c["admin"] = {"listen": "127.0.0.1:%d" % A.admin_port(port), "tokens_file": tf}
        return c
    return cfg


def refusals(p, token):
    st, _, out = A.call(p, "GET", "/metrics", token)
    assert st == 200
    got = {}
    for m in re.finditer(r'portico_guard_refusals_total\{guard="([a-z_]+)"\} (\d+)', out.decode()):
        got[m.group(1)] = int(m.group(2))
    return got


def is_closed_without_answer(port, source, request=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
    """Connects from source and sends request: True when the connection ends (EOF or reset)
    with no byte of a response."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5),
                                 source_address=(source, 0))
    try:
        try:
            s.sendall(request)
            return s.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    finally:
        s.close()


# --- per-client caps


def test_per_client_connection_cap_refuses_at_accept_across_workers(portico, tmp_path):
    def served_from(source):  # refused (reset) until Portico has seen the close
        try:
            return get(p.port, "/", source=source).status == 200
        except (ConnectionResetError, BrokenPipeError, Closed):
            return False

    client = "127.0.0.11"  # not the harness's own 127.0.0.1 (its start-up check connects)
    toks, tf = A.tokens(tmp_path, [("r", "read")])
    p = portico(with_admin(tf, lambda port: {
        "workers": 2, "limits": {"max_connections_per_client": 2}, "routes": [OK]}))
    held = [RawConn(p.port, source=client) for _ in range(2)]
    try:
        for c in held:  # both accepted, on whichever worker
            assert c.request("GET", "/").status == 200
        assert is_closed_without_answer(p.port, client), "a third connection was served"
        # another address has its own count
        assert get(p.port, "/", source="127.0.0.12").status == 200
        # one of the two goes: the client may connect again
        held.pop().close()
        assert wait_until(lambda: served_from(client), scaled(5), interval=0.1)
    finally:
        for c in held:
            c.close()
    assert refusals(p, toks[0]).get("connection_limit", 0) >= 1
    assert "max_connections_per_client reached" in p.stderr()


def test_per_client_requests_in_flight_cap_answers_429(portico, backend):
    b = backend(B.by_path({"/slow": B.slow(scaled(2), B.fixed(200, b"slow\n"))},
                          default=B.fixed(200, b"fast\n")))
    p = portico({"limits": {"max_requests_per_client": 1},
                 "routes": [{"match": "/*", "proxy": {"to": b.url}}]})
    first = RawConn(p.port, source="127.0.0.3")
    try:
        first.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: len(b.requests) == 1, scaled(5))
        r = get(p.port, "/x", source="127.0.0.3")  # a second request while the first runs
        assert r.status == 429
        assert b"max_requests" not in r.body  # the cap is not revealed
        assert get(p.port, "/x", source="127.0.0.4").status == 200  # another client
        assert first.read_response().status == 200
    finally:
        first.close()
    assert get(p.port, "/x", source="127.0.0.3").status == 200  # given back when it ended
    assert len(b.requests) == 3
    assert "refused by connection_limit" in p.stderr()


def test_http2_streams_count_as_requests_in_flight(portico, backend):
    from test_h2 import H2  # the python3-h2 client of the HTTP/2 tests

    b = backend(B.by_path({"/slow": B.slow(scaled(2), B.fixed(200, b"slow\n"))},
                          default=B.fixed(200, b"fast\n")))
    p = portico(lambda port: {"listen": [{"addr": "127.0.0.1:%d" % port, "http2": True}],
                              "limits": {"max_requests_per_client": 1},
                              "routes": [{"match": "/*", "proxy": {"to": b.url}}]})
    h = H2(p.port)
    try:
        slow = h.request("/slow")
        assert wait_until(lambda: len(b.requests) == 1, scaled(5))
        assert h.response(h.request("/x"))[0] == 429  # a second stream while the first runs
        assert h.response(slow, timeout=10)[0] == 200
        assert h.response(h.request("/x"))[0] == 200  # given back when the stream ended
    finally:
        h.sock.close()


def test_requests_in_flight_cap_uses_the_client_behind_trusted_proxies(portico, backend):
    b = backend(B.by_path({"/slow": B.slow(scaled(2), B.fixed(200, b"slow\n"))},
                          default=B.fixed(200, b"fast\n")))
    p = portico({"trusted_proxies": ["127.0.0.5"], "limits": {"max_requests_per_client": 1},
                 "routes": [{"match": "/*", "proxy": {"to": b.url}}]})
    first = RawConn(p.port, source="127.0.0.5")
    try:
        first.send(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
        assert wait_until(lambda: len(b.requests) == 1, scaled(5))
        xff = {"X-Forwarded-For": "10.0.0.1"}
        assert get(p.port, "/x", headers=xff, source="127.0.0.5").status == 429
        # the same proxy for another client: not its count
        assert get(p.port, "/x", headers={"X-Forwarded-For": "10.0.0.2"},
                   source="127.0.0.5").status == 200
        assert first.read_response().status == 200
    finally:
        first.close()


# --- the global cap


def test_global_cap_closes_the_longest_idle_keepalive_connection_first(portico):
    p = portico({"workers": 1, "limits": {"max_connections": 3}, "routes": [OK]})
    a, b, c = (RawConn(p.port) for _ in range(3))
    try:
        for x in (a, b, c):
            assert x.request("GET", "/").status == 200
        # a was accepted first but has just served a request: b has been idle longest
        assert a.request("GET", "/").status == 200
        with RawConn(p.port) as d:
            assert d.request("GET", "/").status == 200
        assert b.wait_closed(scaled(5)), "the longest idle connection was not closed"
        assert a.request("GET", "/").status == 200
        assert c.request("GET", "/").status == 200
    finally:
        for x in (a, b, c):
            x.close()


def test_global_cap_closes_an_idle_http2_connection_to_make_room(portico):
    from test_h2 import H2  # the python3-h2 client of the HTTP/2 tests

    p = portico(lambda port: {"workers": 1, "listen": [{"addr": "127.0.0.1:%d" % port,
                                                        "http2": True}],
                              "limits": {"max_connections": 2, "header_timeout": "60s"},
                              "routes": [OK]})
    h = H2(p.port)
    busy = socket.create_connection(("127.0.0.1", p.port), timeout=scaled(5))
    try:
        status, _, _ = h.response(h.request("/"))
        assert status == 200  # the HTTP/2 connection is now idle: no stream open
        busy.sendall(b"GET / HTTP/1.1\r\n")  # in the middle of a head: not idle
        with RawConn(p.port) as c:
            assert c.request("GET", "/").status == 200
        assert h.until(lambda: h.closed, 5), "the idle HTTP/2 connection was not closed"
    finally:
        busy.close()
        h.sock.close()


# --- slow clients


def test_a_trickled_head_is_closed_at_its_deadline_whatever_it_sends(portico, tmp_path):
    toks, tf = A.tokens(tmp_path, [("r", "read")])
    p = portico(with_admin(tf, lambda port: {"limits": {"header_timeout": "1s"}, "routes": [OK]}))
    # a header line every 0.2 s, never the end
    got = trickle(plain(p.port), b"GET / HTTP/1.1\r\nHost: x\r\n", lambda i: b"X-%d: y\r\n" % i,
                  0.2, scaled(20))
    assert got.startswith(b"HTTP/1.1 408"), got[:100]
    assert refusals(p, toks[0]).get("slow_client", 0) >= 1
    assert "request head too slow" in p.stderr()


def plain(port):
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=scaled(10))


def trickle(connect, head, piece, every, bound):
    """On a connection from connect(), sends head, then piece(i) every `every` seconds;
    returns what came back before the connection ended (or bound passed)."""
    s = connect()
    got = b""
    end = time.monotonic() + bound
    try:
        s.sendall(head)
        s.settimeout(every)
        i = 0
        while time.monotonic() < end:
            try:
                s.sendall(piece(i))
                i += 1
                d = s.recv(4096)
                if not d:
                    break
                got += d
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                break
    finally:
        s.close()
    return got


def trickle_body(port, every, bound):
    """POSTs a 100,000-byte body 10 bytes at a time."""
    return trickle(plain(port), b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
                   lambda i: b"0123456789", every, bound)


def test_a_trickled_body_is_refused_below_body_min_rate(portico, backend):
    b = backend(B.echo())
    p = portico({"limits": {"body_timeout": "2s", "body_min_rate": "1k"},
                 "routes": [{"match": "/*", "proxy": {"to": b.url}}]})
    got = trickle_body(p.port, 0.2, scaled(30))  # 50 bytes/s, a byte well within body_timeout
    assert got.startswith(b"HTTP/1.1 408"), got[:100]
    assert "request body too slow" in p.stderr()


def test_without_body_min_rate_bytes_within_body_timeout_keep_the_body_going(portico, backend):
    b = backend(B.echo())
    p = portico({"limits": {"body_timeout": "2s", "body_min_rate": 0},
                 "routes": [{"match": "/*", "proxy": {"to": b.url}}]})
    got = trickle_body(p.port, 0.2, 4.0)  # longer than body_timeout: never refused
    assert got == b""
    assert "too slow" not in p.stderr()


def test_a_slow_reader_is_closed_below_send_min_rate(portico, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    size = 32 << 20
    with open(site / "big.bin", "wb") as f:
        f.truncate(size)
    p = portico({"limits": {"send_timeout": "1s", "send_min_rate": "100k"},
                 "routes": [{"match": "/*", "static": {"root": str(site)}}]})
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(scaled(10))
    s.connect(("127.0.0.1", p.port))
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        # 100 bytes every 0.2 s: 500 bytes/s, taken until Portico gives up on it
        end = time.monotonic() + scaled(30)
        while time.monotonic() < end and "response reading too slow" not in p.stderr():
            s.recv(100)
            time.sleep(0.2)
        assert "response reading too slow" in p.stderr()
        # what was already queued drains; the body ends short
        total = 0
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                total += len(d)
        except (ConnectionResetError, socket.timeout):
            pass
        assert total < size
    finally:
        s.close()


# --- accept-time IP rules


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory):
    return certs.session_pki(tmp_path_factory).server(["a.test"], "ec")


def tls_handshake_from(port, source):
    """A TLS handshake from source: True when it completed."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(5),
                                   source_address=(source, 0))
    try:
        with context().wrap_socket(raw, server_hostname="a.test") as t:
            t.do_handshake()
            return True
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
        return False
    finally:
        raw.close()


def test_listener_ip_rules_refuse_at_accept_before_tls(portico, tmp_path, server_cert):
    toks, tf = A.tokens(tmp_path, [("r", "read")])
    plain = free_port()

    def build(port):
        return {"listen": [{"addr": "127.0.0.1:%d" % port, "tls": True,
                            "ip": {"deny": ["127.0.0.2", "127.0.3.0/24"]}},
                           {"addr": "127.0.0.1:%d" % plain, "ip": {"allow": ["127.0.0.1"]}}],
                "tls": {"certificates": [{"cert": server_cert[0], "key": server_cert[1]}]},
                "routes": [OK]}

    p = portico(with_admin(tf, build))
    assert tls_handshake_from(p.port, "127.0.0.1")
    assert not tls_handshake_from(p.port, "127.0.0.2")
    assert not tls_handshake_from(p.port, "127.0.3.9")
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % p.port],
                       input=b"", capture_output=True, timeout=scaled(20))
    assert b"BEGIN CERTIFICATE" in r.stdout  # an allowed address gets the handshake
    # the plain listener's allow list
    assert get(plain, "/", source="127.0.0.1").status == 200
    assert is_closed_without_answer(plain, "127.0.0.7")
    got = refusals(p, toks[0])
    assert got.get("ip_accept", 0) == 3
    assert "guard ip (accept): refused client 127.0.0.2: in the deny list" in p.stderr()


def test_limits_config_errors_name_the_key(portico_bin, tmp_path):
    bad = [("limits: {max_connections_per_client: -1}", "max_connections_per_client"),
           ("limits: {body_min_rate: fast}", "body_min_rate"),
           ("limits: {send_min_rat: 1k}", "send_min_rate")]
    for text, want in bad:
        f = tmp_path / "c.yaml"
        f.write_text("listen: [{addr: '127.0.0.1:0'}]\n%s\nroutes:\n  - match: /\n"
                     "    respond: {status: 200}\n" % text)
        r = subprocess.run([portico_bin, "check", "-c", str(f)], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode != 0 and want in r.stderr, (text, r.stderr)
    f = tmp_path / "c.yaml"
    f.write_text("listen: [{addr: '127.0.0.1:0', ip: {deny: [not-an-ip]}}]\nroutes:\n"
                 "  - match: /\n    respond: {status: 200}\n")
    r = subprocess.run([portico_bin, "check", "-c", str(f)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0 and "CIDR" in r.stderr, r.stderr


def test_a_trickled_head_is_refused_over_tls_too(portico, server_cert):
    p = portico(lambda port: {
        "listen": [{"addr": "127.0.0.1:%d" % port, "tls": True}],
        "tls": {"certificates": [{"cert": server_cert[0], "key": server_cert[1]}]},
        "limits": {"header_timeout": "1s"}, "routes": [OK]})

    def connect():
        raw = socket.create_connection(("127.0.0.1", p.port), timeout=scaled(10))
        return context().wrap_socket(raw, server_hostname="a.test")

    got = trickle(connect, b"GET / HTTP/1.1\r\nHost: x\r\n", lambda i: b"X-%d: y\r\n" % i, 0.2,
                  scaled(20))
    assert got.startswith(b"HTTP/1.1 408"), got[:100]
    assert "request head too slow" in p.stderr()
