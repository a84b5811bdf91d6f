"""A local answer (respond, redirect, 404, 405, error page) to a request that carries a body:
the body is read and dropped up to a bound and the connection stays usable, or the response
says `Connection: close` (issue #9, item 1). Never a silent close."""

import socket

from helpers import backends as B
from helpers.client import RawConn, build_request, chunked_body


def config(static_root=None):
    routes = [
        {"match": "/api/hello", "respond": {"status": 200, "body": "hello\n"}},
        {"match": "/old", "redirect": {"to": "/new", "status": 301}},
        {"match": "/get-only", "methods": ["GET"], "respond": {"status": 200, "body": "g"}},
    ]
    return {"sites": [{"routes": routes}]}


BODY = b'{"a":1}'


def test_post_with_body_to_local_answers_keeps_the_connection(portico):
    p = portico(config())
    with RawConn(p.port) as c:
        for i in range(5):
            r = c.request("POST", "/api/hello", {"Content-Type": "application/json"}, BODY)
            assert r.status == 200 and r.body == b"hello\n", (i, r)
            assert (r.header("Connection") or "").lower() != "close", (i, r)
            r = c.request("POST", "/nowhere", None, BODY)
            assert r.status == 404, (i, r)
            assert (r.header("Connection") or "").lower() != "close", (i, r)
            r = c.request("POST", "/old", None, BODY)
            assert r.status == 301 and r.header("Location") == "/new", (i, r)
            r = c.request("POST", "/get-only", None, BODY)
            assert r.status == 405, (i, r)
            assert (r.header("Connection") or "").lower() != "close", (i, r)
        r = c.request("GET", "/api/hello")
        assert r.status == 200


def test_chunked_body_to_local_answer_keeps_the_connection(portico):
    p = portico(config())
    with RawConn(p.port) as c:
        for i in range(4):
            body = chunked_body([b"x" * 100, b"y" * 3000, b"z"])
            r = c.request("POST", "/api/hello", {"Transfer-Encoding": "chunked"}, body)
            assert r.status == 200 and r.body == b"hello\n", (i, r)
            r = c.request("PUT", "/nowhere", {"Transfer-Encoding": "chunked"}, body)
            assert r.status == 404, (i, r)
            assert (r.header("Connection") or "").lower() != "close", (i, r)


def test_body_sent_after_the_head_is_waited_for(portico):
    """The head alone first, the body a moment later (as curl may send them): still drained."""
    p = portico(config())
    with RawConn(p.port) as c:
        for i in range(3):
            c.send(b"POST /api/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
            c.sock.settimeout(0.2)
            try:
                early = c.sock.recv(1)
            except socket.timeout:
                early = b""
            c.sock.settimeout(c.timeout)
            c.buf += early
            c.send(b"0123456789")
            r = c.read_response()
            assert r.status == 200 and r.body == b"hello\n", (i, r)
            c.send(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            c.send(b"5\r\nhello\r\n")
            c.send(b"0\r\n\r\n")
            r = c.read_response()
            assert r.status == 404, (i, r)
        r = c.request("GET", "/api/hello")
        assert r.status == 200


def test_pipelined_request_after_a_dropped_body_is_answered(portico):
    p = portico(config())
    with RawConn(p.port) as c:
        c.send(build_request("POST", "/api/hello", None, b"A" * 5000) +
               build_request("POST", "/nowhere", {"Transfer-Encoding": "chunked"},
                             chunked_body([b"B" * 70])) +
               build_request("GET", "/api/hello"))
        assert c.read_response().status == 200
        assert c.read_response().status == 404
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello\n"


def test_large_content_length_to_local_answer_says_close(portico):
    p = portico(config())
    with RawConn(p.port) as c:
        n = 1 << 20
        c.send(b"POST /api/hello HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % n)
        r = c.read_response()
        assert r.status == 200
        assert (r.header("Connection") or "").lower() == "close", r


def test_large_chunked_body_to_local_answer_says_close(portico):
    p = portico(config())
    with RawConn(p.port) as c:
        c.send(b"POST /api/hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % 16384 + b"q" * 16384 + b"\r\n"
        try:
            for _ in range(16):  # 256 KiB, well past the bound; Portico may stop reading
                c.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello\n"
        assert (r.header("Connection") or "").lower() == "close", r


def test_expect_continue_to_local_answer_says_close(portico):
    """The client holds the body back until it hears from us: it cannot be drained."""
    p = portico(config())
    with RawConn(p.port) as c:
        c.send(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert r.status == 404
        assert (r.header("Connection") or "").lower() == "close", r


def test_proxied_post_then_local_post_on_one_connection(portico, backend):
    b = backend(B.echo())
    p = portico({"upstreams": {"app": {"targets": [{"url": b.url}]}},
                 "sites": [{"routes": [
                     {"match": "/api/*", "proxy": {"to": "app"}},
                     {"match": "/local", "respond": {"status": 200, "body": "l"}}]}]})
    with RawConn(p.port) as c:
        for i in range(3):
            r = c.request("POST", "/api/x", None, BODY)
            assert r.status == 200, (i, r)
            r = c.request("POST", "/local", None, BODY)
            assert r.status == 200 and r.body == b"l", (i, r)


def test_stalled_body_is_answered_with_close_after_body_timeout(portico):
    p = portico(dict(config(), limits={"body_timeout": "300ms"}))
    for version, extra in (("HTTP/1.1", b""), ("HTTP/1.0", b"Connection: keep-alive\r\n")):
        with RawConn(p.port) as c:
            c.send(b"POST /api/hello " + version.encode() + b"\r\nHost: x\r\n" + extra +
                   b"Content-Length: 10\r\n\r\nabc")
            r = c.read_response()
            assert r.status == 200 and r.body == b"hello\n", (version, r)
            assert r.header_all("Connection") == ["close"], (version, r)
            assert c.wait_closed(5), version
