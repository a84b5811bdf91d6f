"""HTTP/2 toward upstreams (issue 10, section 3): upstreams with protocol h2c (prior knowledge)
and h2 (TLS, ALPN h2) carry requests from HTTP/1.1 and HTTP/2 clients as streams of a few shared
connections; bodies flow both ways under flow control; 64 concurrent requests use at most 4
connections; refused streams and GOAWAY are retried; a dead target answers as for HTTP/1.1; a
client that goes away cancels only its stream; trailers pass both ways.

Backends are python3-h2 servers started by the tests (helpers/h2backend.py); clients are the
raw HTTP/1.1 client, curl --http2-prior-knowledge and python3-h2."""

import hashlib
import socket
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.events
import pytest

from helpers import certs
from helpers.client import RawConn, get, request
from helpers.common import closing_maker, free_port, scaled
from helpers.h2backend import H2Answer, H2Backend, echo

CANCEL = 0x8


@pytest.fixture
def h2b():
    yield from closing_maker(H2Backend)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(cert, key, ca) for a target named localhost, from the session's CA."""
    pki = certs.session_pki(tmp_path_factory)
    cert, key = pki.server(["localhost"], kind="ec")
    return cert, key, pki.ca_cert


def front(portico, targets, protocol="h2c", extra=None, route=None):
    """Portico with an h2c-capable plain listener proxying /* (and /api/* with strip_prefix)
    to an upstream of the given protocol."""
    ups = {"targets": [{"url": t} for t in targets], "protocol": protocol}
    ups.update(extra or {})

    def cfg(port):
        proxy = {"to": "app"}
        proxy.update(route or {})
        return {
            "listen": [{"addr": "127.0.0.1:%d" % port, "http2": True}],
            "upstreams": {"app": ups},
            "sites": [{"routes": [
                {"match": "/api/*", "proxy": {"to": "app", "strip_prefix": True}},
                {"match": "/*", "proxy": proxy}]}],
        }
    return portico(cfg)


def h2c_url(b):
    return "http://127.0.0.1:%d" % b.port


def curl_h2(port, path, *args):
    r = subprocess.run(["curl", "-sS", "-m", str(scaled(20)), "--http2-prior-knowledge", "-o",
                        "-", "-w", "\n%{http_code} %{http_version}", *args,
                        "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, check=True)
    body, _, tail = r.stdout.rpartition(b"\n")
    code, version = tail.decode().split()
    return int(code), version, body


class H2Client:
    """A python3-h2 client on a prior-knowledge connection to Portico's plain listener."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        self.events = []

    def headers(self, path, method="GET", end_stream=True, extra=()):
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, [(":method", method), (":scheme", "http"),
                                   (":authority", "localhost"), (":path", path)] + list(extra),
                             end_stream=end_stream)
        self.sock.sendall(self.h2.data_to_send())
        return sid

    def send(self):
        self.sock.sendall(self.h2.data_to_send())

    def pump(self, until, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while not until() and time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            for ev in self.h2.receive_data(data):
                self.events.append(ev)
                if isinstance(ev, h2.events.DataReceived):
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            self.send()
        return until()

    def ended(self, sid):
        return any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                   and e.stream_id == sid for e in self.events)

    def of(self, sid, kind):
        return [e for e in self.events if isinstance(e, kind) and e.stream_id == sid]

    def close(self):
        self.sock.close()


# --- requests and bodies ----------------------------------------------------------------


def test_h2c_upstream_gets_http2_request_with_forwarded_fields(portico, h2b):
    b = h2b()
    p = front(portico, [h2c_url(b)])
    r = get(p.port, "/api/hello?x=1", headers=[("X-Custom", "yes"), ("Connection", "close")])
    assert r.status == 200, r
    assert r.body == b"GET /hello?x=1\n"
    req = b.requests[0]
    assert req.header(":scheme") == "http"
    assert req.header(":authority") == "127.0.0.1:%d" % b.port
    assert req.header("x-custom") == "yes"
    assert req.header("x-forwarded-for") == "127.0.0.1"
    assert req.header("x-forwarded-proto") == "http"
    assert req.header("connection") is None and req.header("host") is None
    assert b.accepted == 1


def test_post_bodies_both_ways_from_http1_and_http2_clients(portico, h2b):
    b = h2b()
    p = front(portico, [h2c_url(b)])
    r = request(p.port, "POST", "/up", body=b"hello body")
    assert r.status == 200 and r.body == b"POST /up\nhello body", r
    code, version, body = curl_h2(p.port, "/up2", "--data-binary", "from h2")
    assert (code, version, body) == (200, "2", b"POST /up2\nfrom h2")
    r = subprocess.run(["curl", "-sS", "-m", str(scaled(20)), "-H", "Transfer-Encoding: chunked",
                        "--data-binary", "chunked body", "http://127.0.0.1:%d/up3" % p.port],
                       capture_output=True, check=True)
    assert r.stdout == b"POST /up3\nchunked body"
    assert b.accepted == 1  # both on the one connection


def test_large_bodies_cross_under_flow_control(portico, h2b, tmp_path):
    big = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MB: many windows of 256 KiB
    b = h2b(handler=lambda req: H2Answer(200, [("content-length", str(len(big)))], big)
            if req.method == "GET" else echo(req))
    p = front(portico, [h2c_url(b)])
    r = get(p.port, "/big")
    assert r.status == 200 and r.body == big
    code, version, body = curl_h2(p.port, "/big")
    assert code == 200 and hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
    f = tmp_path / "up.bin"
    f.write_bytes(big)
    code, version, body = curl_h2(p.port, "/bigpost", "--data-binary", "@%s" % f)
    assert code == 200 and body == b"POST /bigpost\n" + big
    r = request(p.port, "POST", "/bigpost1", body=big)
    assert r.status == 200 and r.body == b"POST /bigpost1\n" + big


def test_slow_client_holds_the_target_back_through_flow_control(portico, h2b):
    big = b"z" * (64 * 1024 * 1024)
    b = h2b(handler=lambda req: H2Answer(200, [("content-length", str(len(big)))], big))
    p = front(portico, [h2c_url(b)])
    s = socket.create_connection(("127.0.0.1", p.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /huge HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    time.sleep(scaled(1.5))  # the client reads nothing more: windows stay closed
    sent = b.requests[0].sent
    s.close()
    print("target sent %d bytes to a client that stopped reading" % sent)
    assert sent < 16 * 1024 * 1024, sent  # socket buffers and one 256 KiB window, not 64 MB


def test_h2_over_tls_negotiates_alpn_h2(portico, h2b, tls):
    b = h2b(cert=tls[0], key=tls[1])
    p = front(portico, ["https://localhost:%d" % b.port], protocol="h2",
              extra={"ca_file": tls[2]})
    r = get(p.port, "/tls")
    assert r.status == 200 and r.body == b"GET /tls\n", r
    r = request(p.port, "POST", "/tls", body=b"x" * 100000)
    assert r.status == 200 and r.body == b"POST /tls\n" + b"x" * 100000
    assert b.requests[0].header(":scheme") == "https"
    assert b.accepted == 1


def test_h2_target_that_does_not_select_alpn_h2_is_502(portico, h2b, tls):
    b = h2b(cert=tls[0], key=tls[1], alpn=("http/1.1",))
    p = front(portico, ["https://localhost:%d" % b.port], protocol="h2",
              extra={"ca_file": tls[2]})
    r = get(p.port, "/x")
    assert r.status == 502, r
    assert "ALPN h2" in p.stderr()


# --- multiplexing ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["h2c", "h2"])
def test_64_concurrent_requests_use_at_most_4_upstream_connections(portico, h2b, tls, protocol):
    answer = lambda req: H2Answer(200, [], b"ok " + req.path.encode(), delay=0.5)  # noqa: E731
    if protocol == "h2":
        b = h2b(handler=answer, max_streams=16, cert=tls[0], key=tls[1])
        p = front(portico, ["https://localhost:%d" % b.port], protocol="h2",
                  extra={"ca_file": tls[2]})
    else:
        b = h2b(handler=answer, max_streams=16)
        p = front(portico, [h2c_url(b)])
    assert get(p.port, "/warm").status == 200  # the target's SETTINGS are known from here on
    results = {}

    def one(i):
        results[i] = get(p.port, "/c%d" % i, timeout=scaled(30))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i].status == 200 and results[i].body == b"ok /c%d" % i
               for i in range(64)), results
    print("%s: upstream connections accepted for 64 concurrent requests: %d"
          % (protocol, b.accepted))
    assert 2 <= b.accepted <= 4  # full connections made new ones, never more than 4


def test_64_streams_of_one_http2_client_use_at_most_4_upstream_connections(portico, h2b):
    b = h2b(handler=lambda req: H2Answer(200, [], b"ok", delay=0.3), max_streams=16)
    p = front(portico, [h2c_url(b)])
    c = H2Client(p.port)
    sids = [c.headers("/s%d" % i) for i in range(64)]
    assert c.pump(lambda: all(c.ended(s) for s in sids), timeout=30)
    for s in sids:
        (resp,) = c.of(s, h2.events.ResponseReceived)
        assert dict(resp.headers)[":status"] == "200"
    c.close()
    print("upstream connections accepted for 64 client streams: %d" % b.accepted)
    assert 1 <= b.accepted <= 4


# --- retries and failures ----------------------------------------------------------------


def test_refused_stream_is_retried_even_for_post(portico, h2b):
    b = h2b(refuse_first=1)
    p = front(portico, [h2c_url(b)])
    r = request(p.port, "POST", "/once", headers=[("Content-Length", "0")])
    assert r.status == 200 and r.body == b"POST /once\n", r
    assert len(b.refused) == 1 and len(b.requests) == 1


def test_stream_above_goaway_last_stream_id_is_retried(portico, h2b):
    b = h2b(goaway_first=True)
    p = front(portico, [h2c_url(b)])
    r = request(p.port, "POST", "/after-goaway", headers=[("Content-Length", "0")])
    assert r.status == 200 and r.body == b"POST /after-goaway\n", r
    assert len(b.refused) == 1 and b.accepted == 2


def test_connection_the_target_closed_under_a_request_is_retried_on_a_new_one(portico, h2b):
    b = h2b(drop_first_after=1)
    p = front(portico, [h2c_url(b)])
    assert get(p.port, "/first").status == 200
    r = get(p.port, "/second")  # its stream dies with the first connection
    assert r.status == 200 and r.body == b"GET /second\n", r
    assert b.accepted == 2


def test_dead_target_answers_502_and_the_next_target_serves(portico, h2b):
    dead = "http://127.0.0.1:%d" % free_port()
    p = front(portico, [dead])
    assert get(p.port, "/x").status == 502
    b = h2b()
    p2 = front(portico, [dead, h2c_url(b)], extra={"balance": "round_robin"})
    for _ in range(4):
        r = get(p2.port, "/y")
        assert r.status == 200, r


def test_no_response_head_within_timeout_is_504(portico, h2b):
    b = h2b(handler=lambda req: H2Answer(hang=True))
    p = front(portico, [h2c_url(b)], route={"timeout": "1s"})
    t0 = time.monotonic()
    r = get(p.port, "/slow", timeout=scaled(10))
    assert r.status == 504, r
    assert time.monotonic() - t0 < scaled(5)


def test_client_reset_cancels_only_its_upstream_stream(portico, h2b):
    b = h2b(handler=lambda req: H2Answer(hang=True) if req.path == "/hang" else echo(req))
    p = front(portico, [h2c_url(b)])
    c = H2Client(p.port)
    sid = c.headers("/hang")
    deadline = time.monotonic() + scaled(5)
    while not b.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.requests, "the request never reached the target"
    c.h2.reset_stream(sid)
    c.send()
    deadline = time.monotonic() + scaled(5)
    while not b.resets and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.resets and b.resets[0][1] == CANCEL, b.resets
    c.close()
    assert get(p.port, "/after").status == 200
    assert b.accepted == 1  # the shared connection survived the cancel


# --- trailers -----------------------------------------------------------------------------


def test_trailers_pass_both_ways_with_an_http1_client(portico, h2b):
    """Chunked both ways: the client's trailers go upstream after the body, the target's come
    back in the last chunk."""
    b = h2b(handler=lambda req: H2Answer(200, [], b"body", trailers=[("grpc-status", "0")]))
    p = front(portico, [h2c_url(b)])
    with RawConn(p.port) as c:
        c.send(b"POST /t HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
               b"TE: trailers\r\n\r\n2\r\nup\r\n0\r\nx-req-trailer: 1\r\n\r\n")
        r = c.read_response(method="POST")
    assert r.status == 200 and r.body == b"body", r
    assert ("grpc-status", "0") in r.trailers, r.trailers
    assert b.requests[0].body == b"up"
    assert ("x-req-trailer", "1") in b.requests[0].trailers


def test_response_with_trailers_ends_for_an_http2_client(portico, h2b):
    b = h2b(handler=lambda req: H2Answer(200, [], b"body", trailers=[("x-done", "yes")]))
    p = front(portico, [h2c_url(b)])
    c = H2Client(p.port)
    sid = c.headers("/tr")
    assert c.pump(lambda: c.ended(sid))
    assert b"".join(e.data for e in c.of(sid, h2.events.DataReceived)) == b"body"
    assert not c.of(sid, h2.events.StreamReset)
    c.close()


def test_trailers_pass_both_ways_with_an_http2_client(portico, h2b):
    b = h2b(handler=lambda req: H2Answer(200, [], b"body", trailers=[("x-done", "yes")]))
    p = front(portico, [h2c_url(b)])
    c = H2Client(p.port)
    sid = c.headers("/tr", method="POST", end_stream=False, extra=[("te", "trailers")])
    c.h2.send_data(sid, b"up")
    c.h2.send_headers(sid, [("x-req-trailer", "1")], end_stream=True)
    c.send()
    assert c.pump(lambda: c.ended(sid))
    assert b.requests[0].body == b"up"
    assert ("x-req-trailer", "1") in b.requests[0].trailers
    tr = c.of(sid, h2.events.TrailersReceived)
    assert tr and ("x-done", "yes") in tr[0].headers
    c.close()


# --- gRPC over an h2c upstream ------------------------------------------------------------


@pytest.fixture
def grpc_target():
    """A real grpcio server (raw bytes, no protobuf) with the four call kinds and a slow one."""
    from concurrent import futures

    import grpc

    def slow(req, ctx):
        time.sleep(2)
        return req

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"u:" + req),
        "ServerStream": grpc.unary_stream_rpc_method_handler(
            lambda req, ctx: (b"s%d:" % i + req for i in range(3))),
        "ClientStream": grpc.stream_unary_rpc_method_handler(
            lambda it, ctx: b"c:" + b"+".join(it)),
        "Bidi": grpc.stream_stream_rpc_method_handler(lambda it, ctx: (b"b:" + m for m in it)),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("portico.test.Echo", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


def test_grpc_call_kinds_through_an_h2c_upstream(portico, grpc_target):
    import grpc
    p = front(portico, ["http://127.0.0.1:%d" % grpc_target])
    with grpc.insecure_channel("127.0.0.1:%d" % p.port) as ch:
        m = "/portico.test.Echo/"
        assert ch.unary_unary(m + "Unary")(b"x", timeout=scaled(10)) == b"u:x"
        assert list(ch.unary_stream(m + "ServerStream")(b"y", timeout=scaled(10))) == \
            [b"s0:y", b"s1:y", b"s2:y"]
        assert ch.stream_unary(m + "ClientStream")(iter([b"a", b"b", b"c"]),
                                                   timeout=scaled(10)) == b"c:a+b+c"
        assert list(ch.stream_stream(m + "Bidi")(iter([b"1", b"2"]), timeout=scaled(10))) == \
            [b"b:1", b"b:2"]


def test_grpc_call_past_the_route_timeout_is_deadline_exceeded(portico, grpc_target):
    import grpc
    p = front(portico, ["http://127.0.0.1:%d" % grpc_target], route={"timeout": "500ms"})
    with grpc.insecure_channel("127.0.0.1:%d" % p.port) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/portico.test.Echo/Slow")(b"z", timeout=scaled(10))
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < scaled(5)  # Portico's deadline, not the client's


def test_the_cache_over_an_h2c_upstream_hits_revalidates_and_serves_stale_on_error(portico, h2b):
    """A cached route whose upstream speaks h2c: a hit, a 304 to the stored validators that
    refreshes it, and a stale copy for a 503 within stale-if-error (issue 12 on HTTP/2)."""
    n = {"k": 0}

    def handler(req):
        n["k"] += 1
        if n["k"] == 1:
            return H2Answer(200, [("cache-control", "max-age=1, stale-if-error=60"),
                                  ("etag", '"v1"'), ("x-n", "1")], b"stored body")
        if n["k"] == 2:
            assert req.header("if-none-match") == '"v1"', req.headers
            return H2Answer(304, [("cache-control", "max-age=1, stale-if-error=60"),
                                  ("etag", '"v1"'), ("x-n", "2")])
        return H2Answer(503, [], b"down")

    b = H2Backend(handler)
    try:
        ups = {"targets": [{"url": h2c_url(b)}], "protocol": "h2c"}
        p = portico({"upstreams": {"app": ups},
                     "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"},
                                            "cache": True}]}]})
        r = get(p.port, "/c")
        assert r.status == 200 and r.body == b"stored body"
        r = get(p.port, "/c")
        assert r.header("cache-status").startswith("Portico; hit") and n["k"] == 1
        time.sleep(1.6)
        r = get(p.port, "/c")
        assert r.status == 200 and r.body == b"stored body" and r.header("x-n") == "2", r
        assert n["k"] == 2
        time.sleep(1.6)
        r = get(p.port, "/c")
        assert r.status == 200 and r.body == b"stored body", r
        assert "fwd-status=503" in r.header("cache-status") and n["k"] == 3
    finally:
        b.close()
