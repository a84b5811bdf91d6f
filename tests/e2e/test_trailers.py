"""Trailer fields through the proxy, both ways (issue 10, sections 2 and 5): a chunked upstream
response's trailers reach HTTP/1.1 clients in the last chunk and HTTP/2 clients in a trailing
HEADERS frame; a client's trailers (HTTP/1.1 chunked body, HTTP/2 trailing HEADERS) reach the
upstream in the last chunk of its body. Only fields that may be trailers cross: no framing,
routing or connection fields, which a hop that merges trailers into the head would take for its
own (request smuggling)."""

import json

import h2.events

from helpers import backends as B
from helpers.client import RawConn, build_request, chunked_body
from test_h2 import H2, auto_ack
from test_proxy import proxy_config, upstream

BAD = "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil.test\r\nConnection: close\r\n"


def start(portico, backend, handler, http2=False):
    b = backend(handler)

    def cfg(port):
        c = proxy_config("app", upstreams={"app": upstream(b)})
        c["listen"] = [{"addr": "127.0.0.1:%d" % port, "http2": http2}]
        return c

    return portico(cfg), b


def names(fields):
    return [k.lower() for k, _ in fields]


def test_h1_chunked_response_trailers_reach_the_client_filtered(portico, backend):
    p, _ = start(portico, backend,
                 B.chunked([b"abc", b"de"], trailers="X-Checksum: 42\r\n" + BAD + "grpc-status: 0\r\n"))
    with RawConn(p.port) as c:
        c.send(build_request("GET", "/t"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"abcde"
        assert r.trailers == [("X-Checksum", "42"), ("grpc-status", "0")], r.trailers
        # the connection stays in sync after the trailer section
        c.send(build_request("GET", "/again"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"abcde"


def test_h1_response_trailers_are_dropped_for_an_http10_client(portico, backend):
    p, _ = start(portico, backend, B.chunked([b"abc"], trailers="X-Checksum: 42\r\n"))
    with RawConn(p.port) as c:
        c.send(build_request("GET", "/t", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"abc" and r.trailers == []


def test_h1_request_trailers_reach_the_upstream_filtered(portico, backend):
    p, b = start(portico, backend, B.echo())
    with RawConn(p.port) as c:
        c.send(build_request("POST", "/t", [("Transfer-Encoding", "chunked")],
                             chunked_body([b"abc", b"defg"], trailers="X-Sum: 7\r\n" + BAD)))
        r = c.read_response()
        d = json.loads(r.body)
        assert r.status == 200 and d["body_len"] == 7 and d["chunked"]
        assert d["trailers"] == [["X-Sum", "7"]], d["trailers"]
        # trailer section split across reads, and a next request on the same connection
        data = build_request("POST", "/t2", [("Transfer-Encoding", "chunked")],
                             chunked_body([b"xy"], trailers="X-A: 1\r\nX-B:  two \r\n"))
        cut = data.index(b"X-B") + 2
        c.send(data[:cut])
        c.send(data[cut:])
        d = json.loads(c.read_response().body)
        assert d["trailers"] == [["X-A", "1"], ["X-B", "two"]], d["trailers"]


def test_h1_request_trailers_over_the_limit_are_refused(portico, backend):
    p, b = start(portico, backend, B.echo())
    with RawConn(p.port) as c:
        big = "".join("X-T%d: %s\r\n" % (i, "v" * 100) for i in range(100))  # > 8 KiB
        c.send(build_request("POST", "/t", [("Transfer-Encoding", "chunked")],
                             chunked_body([b"abc"], trailers=big)))
        r = c.read_response()
        assert r.status == 400
    assert all(not rq.trailers for rq in b.requests)


def test_h2_response_trailers_come_in_a_trailing_headers_frame(portico, backend):
    p, _ = start(portico, backend,
                 B.chunked([b"abc", b"de"], trailers="X-Checksum: 42\r\n" + BAD), http2=True)
    c = H2(p.port)
    sid = c.request("/t")
    c.until(lambda: c.ended(sid) or (auto_ack(c) and False), 10)
    status, _, body = c.response(sid)
    assert status == 200 and body == b"abcde"
    tr = [e for e in c.events if isinstance(e, h2.events.TrailersReceived) and e.stream_id == sid]
    assert len(tr) == 1, c.events
    assert dict(tr[0].headers) == {"x-checksum": "42"}
    ended = [e for e in c.events if isinstance(e, h2.events.StreamEnded)]
    assert ended and c.events.index(ended[0]) > c.events.index(tr[0])
    c.close()


def test_h2_request_trailers_reach_the_upstream(portico, backend):
    p, b = start(portico, backend, B.echo(), http2=True)
    c = H2(p.port)
    sid = c.request("/t", method="POST", headers=[("te", "trailers")], end=False)
    c.send_body_open(sid, b"hello")
    c.conn.send_headers(sid, [("x-sum", "5"), ("grpc-status", "0")], end_stream=True)
    c.flush()
    status, _, body = c.response(sid, 10)
    d = json.loads(body)
    assert status == 200 and d["body_len"] == 5 and d["chunked"]
    assert d["trailers"] == [["x-sum", "5"], ["grpc-status", "0"]], d["trailers"]
    c.close()


def test_h2_request_trailers_over_the_header_list_limit_reset_the_stream(portico, backend):
    b = backend(B.echo())

    def cfg(port):
        c = proxy_config("app", upstreams={"app": upstream(b)})
        c["listen"] = [{"addr": "127.0.0.1:%d" % port, "http2": True}]
        c["http2"] = {"max_header_list_size": 4096}
        return c

    p = portico(cfg)
    c = H2(p.port)
    sid = c.request("/t", method="POST", end=False)
    c.send_body_open(sid, b"hello")
    c.conn.send_headers(sid, [("x-t%d" % i, "v" * 200) for i in range(30)], end_stream=True)
    c.flush()
    assert c.until(lambda: c.ended(sid), 10)
    assert c.reset_code(sid) is not None
    c.close()
    assert all(not rq.trailers for rq in b.requests)
