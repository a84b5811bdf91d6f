"""gRPC through Portico (issue 10, section 5): the errors Portico writes itself for a gRPC request
are trailers-only gRPC answers (HTTP 200, content-type application/grpc, grpc-status and
grpc-message in one HEADERS frame that ends the stream), never an HTML page; grpc-timeout is the
call's deadline, capped by the route's timeout.

Clients: python3-grpcio (a real gRPC client over h2c, prior knowledge) and python3-h2 for what
grpcio hides (the frames, the exact fields, a grpc-timeout of our choosing). Real calls to a gRPC
target need an h2c upstream and are tested with it."""

import time

import grpc
import h2.events
import pytest

from helpers import backends as B
from helpers import certs
from helpers.client import RawConn, build_request
from helpers.common import scaled
from test_h2 import H2

METHOD = "/portico.test.Echo/Say"
DEAD = "http://127.0.0.1:9"  # nothing listens there: connection refused


def start(portico, to=DEAD, match="/portico.test.Echo/*", timeout=None, limits=None):
    def cfg(port):
        proxy = {"to": to}
        if timeout:
            proxy["timeout"] = timeout
        c = {"listen": [{"addr": "127.0.0.1:%d" % port, "http2": True}],
             "sites": [{"routes": [{"match": match, "proxy": proxy}]}]}
        if limits:
            c["limits"] = limits
        return c

    return portico(cfg)


def call(port, method=METHOD, timeout=5.0):
    """A unary call with grpcio (raw bytes, no protobuf): the RpcError it ends with, or None."""
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        f = ch.unary_unary(method)
        try:
            f(b"hello", timeout=scaled(timeout))
        except grpc.RpcError as e:
            return e
    return None


def grpc_h2(port, path=METHOD, extra=(), timeout=10.0):
    """A unary gRPC request with python3-h2: (ResponseReceived event, other events of the
    stream, elapsed seconds)."""
    c = H2(port)
    t0 = time.monotonic()
    sid = c.request(path, method="POST",
                    headers=[("content-type", "application/grpc"), ("te", "trailers")] +
                    list(extra),
                    body=b"\x00\x00\x00\x00\x05hello")
    assert c.until(lambda: c.ended(sid), timeout), c.events
    elapsed = time.monotonic() - t0
    evs = [e for e in c.events if getattr(e, "stream_id", None) == sid]
    c.close()
    head = [e for e in evs if isinstance(e, h2.events.ResponseReceived)]
    assert len(head) == 1, evs
    return head[0], [e for e in evs if e is not head[0]], elapsed


def fields(ev):
    return dict(ev.headers)


def assert_trailers_only(ev, rest, code):
    """One HEADERS frame with END_STREAM: status 200, gRPC fields, nothing else."""
    h = fields(ev)
    assert h[":status"] == "200" and h["content-type"] == "application/grpc", h
    assert h["grpc-status"] == str(code), h
    assert h.get("grpc-message"), h
    assert ev.stream_ended is not None, "the HEADERS frame did not end the stream"
    assert not [e for e in rest if isinstance(e, (h2.events.DataReceived,
                                                  h2.events.TrailersReceived))], rest


def test_grpcio_call_to_a_dead_target_is_unavailable(portico):
    p = start(portico)
    e = call(p.port)
    assert e is not None and e.code() == grpc.StatusCode.UNAVAILABLE, e
    assert "502" in (e.details() or ""), e.details()  # Portico's answer, not the client's
    ev, rest, _ = grpc_h2(p.port)
    assert_trailers_only(ev, rest, 14)


def test_grpcio_over_tls_negotiates_h2_by_default_and_gets_unavailable(portico,
                                                                         tmp_path_factory):
    pki = certs.session_pki(tmp_path_factory)
    cert, key = pki.server(["grpc.test"], "ec")

    def cfg(port):
        return {"listen": [{"addr": "127.0.0.1:%d" % port, "tls": True}],
                "tls": {"certificates": [{"cert": cert, "key": key}]},
                "sites": [{"routes": [{"match": "/*", "proxy": {"to": DEAD}}]}]}

    p = portico(cfg)
    with open(pki.ca_cert, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    opts = [("grpc.ssl_target_name_override", "grpc.test")]
    with grpc.secure_channel("127.0.0.1:%d" % p.port, creds, options=opts) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary(METHOD)(b"hello", timeout=scaled(5))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
    assert "502" in (e.value.details() or ""), e.value.details()


def test_grpcio_call_without_a_route_is_unimplemented(portico):
    p = start(portico, match="/other/*")
    e = call(p.port)
    assert e is not None and e.code() == grpc.StatusCode.UNIMPLEMENTED, e
    assert "404" in (e.details() or ""), e.details()
    ev, rest, _ = grpc_h2(p.port)
    assert_trailers_only(ev, rest, 12)


def test_grpc_timeout_is_the_deadline_of_the_proxied_call(portico, backend):
    b = backend(B.slow(3))
    p = start(portico, to=b.url, timeout="10s")
    ev, rest, elapsed = grpc_h2(p.port, extra=[("grpc-timeout", "300m")])
    assert_trailers_only(ev, rest, 4)
    assert elapsed < scaled(2.5), elapsed
    # grpcio sends its deadline as grpc-timeout: DEADLINE_EXCEEDED, whoever says it first
    e = call(p.port, timeout=0.5)
    assert e is not None and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e


def test_route_timeout_caps_a_longer_grpc_timeout_and_a_malformed_one_is_ignored(portico, backend):
    b = backend(B.slow(5))
    p = start(portico, to=b.url, timeout="500ms")
    for value in ("20S", "1x", "123456789m", ""):
        extra = [("grpc-timeout", value)] if value else []
        ev, rest, elapsed = grpc_h2(p.port, extra=extra)
        assert_trailers_only(ev, rest, 4)
        assert 0.4 <= elapsed < scaled(3), (value, elapsed)


def test_grpc_head_over_the_header_list_limit_is_resource_exhausted(portico):
    p = start(portico, limits={"header_size": "4k"})
    ev, rest, _ = grpc_h2(p.port, extra=[("x-big", "a" * 5000)])
    assert_trailers_only(ev, rest, 8)


@pytest.mark.parametrize("ctype", ["application/grpc+proto", "application/grpc;charset=x"])
def test_grpc_content_type_variants_get_grpc_errors(portico, ctype):
    p = start(portico)
    c = H2(p.port)
    sid = c.request(METHOD, method="POST", headers=[("content-type", ctype)])
    status, hdrs, body = c.response(sid)
    c.close()
    assert status == 200 and hdrs["grpc-status"] == "14" and body == b""


def test_grpc_web_and_other_types_still_get_error_pages(portico):
    p = start(portico)
    for ctype in ("application/grpc-web", "text/plain"):
        c = H2(p.port)
        sid = c.request(METHOD, method="POST", headers=[("content-type", ctype)])
        status, hdrs, body = c.response(sid)
        c.close()
        assert status == 502 and "grpc-status" not in hdrs and b"502" in body


def test_grpc_error_over_http11_has_no_html_body(portico):
    p = start(portico)
    with RawConn(p.port) as c:
        c.send(build_request("POST", METHOD, [("Content-Type", "application/grpc")], body=b""))
        r = c.read_response()
    assert r.status == 200 and r.header("grpc-status") == "14" and r.body == b""
    assert r.header("content-type") == "application/grpc"
