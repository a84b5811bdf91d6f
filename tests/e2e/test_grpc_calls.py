"""gRPC calls through Portico to a real grpcio server (python3-grpcio): the four call kinds,
metadata and trailers both ways, status codes from the target, deadlines, and per-call load
balancing over two targets behind one upstream with protocol: h2c.

The server uses grpcio's generic handlers with bytes in and out (no generated stubs): the
messages are opaque to Portico anyway. Clients connect to Portico's plain listener with
http2: true (h2c by prior knowledge, which is what grpcio's insecure channel speaks).
"""

import threading
import time
from concurrent import futures

import grpc
import pytest

from helpers.common import scaled

SVC = "portico.test.Echo"


def _ident(b):
    return b


class EchoServer:
    """A grpcio server on a free 127.0.0.1 port. name tags each answer, so a client can see
    which target served a call; calls counts the calls it took."""

    def __init__(self, name="a"):
        self.name = name.encode()
        self.calls = 0
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(
                self.unary, request_deserializer=_ident, response_serializer=_ident),
            "Server": grpc.unary_stream_rpc_method_handler(
                self.server_stream, request_deserializer=_ident, response_serializer=_ident),
            "Client": grpc.stream_unary_rpc_method_handler(
                self.client_stream, request_deserializer=_ident, response_serializer=_ident),
            "Bidi": grpc.stream_stream_rpc_method_handler(
                self.bidi, request_deserializer=_ident, response_serializer=_ident),
            "Sleep": grpc.unary_unary_rpc_method_handler(
                self.sleep, request_deserializer=_ident, response_serializer=_ident),
            "Fail": grpc.unary_unary_rpc_method_handler(
                self.fail, request_deserializer=_ident, response_serializer=_ident),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SVC, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def count(self):
        with self.lock:
            self.calls += 1

    def unary(self, req, ctx):
        self.count()
        md = dict(ctx.invocation_metadata())
        ctx.set_trailing_metadata((("x-trailer", "t-" + md.get("x-meta", "")),))
        return self.name + b":" + req

    def server_stream(self, req, ctx):
        self.count()
        for i in range(int(req)):
            yield b"%d" % i

    def client_stream(self, it, ctx):
        self.count()
        return b"+".join(it)

    def bidi(self, it, ctx):
        self.count()
        for m in it:
            yield m.upper()

    def sleep(self, req, ctx):
        self.count()
        time.sleep(float(req))
        return b"woke"

    def fail(self, req, ctx):
        self.count()
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + req.decode())

    def close(self):
        self.server.stop(0)


@pytest.fixture
def servers():
    made = []

    def make(name="a"):
        s = EchoServer(name)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def start(portico, targets, timeout=None):
    route = {"match": "/*", "proxy": {"to": "g"}}
    if timeout:
        route["proxy"]["timeout"] = timeout
    return portico(lambda port: {
        "listen": [{"addr": "127.0.0.1:%d" % port, "http2": True}],
        "upstreams": {"g": {"protocol": "h2c",
                            "targets": [{"url": "http://127.0.0.1:%d" % t.port} for t in targets]}},
        "routes": [route]})


def method(ch, kind, name):
    make = {"uu": ch.unary_unary, "us": ch.unary_stream, "su": ch.stream_unary,
            "ss": ch.stream_stream}[kind]
    return make("/%s/%s" % (SVC, name), request_serializer=_ident, response_deserializer=_ident)


def channel(p):
    return grpc.insecure_channel("127.0.0.1:%d" % p.port)


def test_four_call_kinds_with_metadata_and_trailers(portico, servers):
    s = servers()
    p = start(portico, [s])
    with channel(p) as ch:
        resp, call = method(ch, "uu", "Unary").with_call(b"hi", metadata=(("x-meta", "m1"),),
                                                          timeout=scaled(10))
        assert resp == b"a:hi"
        assert dict(call.trailing_metadata())["x-trailer"] == "t-m1"
        assert call.code() == grpc.StatusCode.OK
        got = list(method(ch, "us", "Server")(b"50", timeout=scaled(10)))
        assert got == [b"%d" % i for i in range(50)]
        assert method(ch, "su", "Client")(iter([b"x", b"y", b"z"]),
                                          timeout=scaled(10)) == b"x+y+z"
        msgs = [b"m%d" % i for i in range(100)]
        assert list(method(ch, "ss", "Bidi")(iter(msgs), timeout=scaled(10))) == \
            [m.upper() for m in msgs]
    log = "\n".join(p.access_log())
    assert "/%s/Bidi" % SVC in log and " HTTP/2.0\" 200 " in log


def test_large_messages_cross_whole(portico, servers):
    s = servers()
    p = start(portico, [s])
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB: many windows' worth both ways
    with channel(p) as ch:
        assert method(ch, "uu", "Unary")(big, timeout=scaled(20)) == b"a:" + big


def test_target_status_and_message_pass_through(portico, servers):
    s = servers()
    p = start(portico, [s])
    with channel(p) as ch:
        with pytest.raises(grpc.RpcError) as e:
            method(ch, "uu", "Fail")(b"x42", timeout=scaled(10))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "no such thing: x42"


def test_client_deadline_ends_the_call_and_the_connection_survives(portico, servers):
    s = servers()
    p = start(portico, [s])
    with channel(p) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            method(ch, "uu", "Sleep")(b"3", timeout=0.5)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 2.5
        # the connection is still good for the next call
        assert method(ch, "uu", "Unary")(b"again", timeout=scaled(10)) == b"a:again"


def test_route_timeout_caps_a_longer_deadline(portico, servers):
    s = servers()
    p = start(portico, [s], timeout="500ms")
    with channel(p) as ch:
        with pytest.raises(grpc.RpcError) as e:
            method(ch, "uu", "Sleep")(b"3", timeout=scaled(20))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "http2 header with status" not in e.value.details(), e.value.details()


def test_dead_target_gives_unavailable(portico, servers):
    s = servers()
    p = start(portico, [s])
    s.close()
    with channel(p) as ch:
        with pytest.raises(grpc.RpcError) as e:
            method(ch, "uu", "Unary")(b"x", timeout=scaled(10))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    # Portico's own trailers-only answer, not an HTTP error status the client had to map
    assert "http2 header with status" not in e.value.details(), e.value.details()


def test_calls_on_one_client_connection_are_balanced_per_call(portico, servers):
    a, b = servers("a"), servers("b")
    p = start(portico, [a, b])
    with channel(p) as ch:
        seen = [method(ch, "uu", "Unary")(b"x", timeout=scaled(10))[:1] for _ in range(20)]
    # round robin over one client connection: each target takes half of the calls
    assert seen.count(b"a") == 10 and seen.count(b"b") == 10, seen
    assert a.calls == 10 and b.calls == 10


def test_concurrent_streaming_calls(portico, servers):
    s = servers()
    p = start(portico, [s])
    errors = []

    def one(i):
        try:
            with channel(p) as ch:
                msgs = [b"c%d-%d" % (i, j) for j in range(20)]
                got = list(method(ch, "ss", "Bidi")(iter(msgs), timeout=scaled(20)))
                if got != [m.upper() for m in msgs]:
                    errors.append((i, got[:3]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(60))
    assert not errors, errors[:3]
    assert s.calls == 16
