"""Errors Portico writes: 502 for refused, reset, closed or malformed upstream responses, 504 for
a slow one, 404 for no route; error pages carry status and request id, never backend details."""

import json
import time

import pytest

from helpers import backends as B
from helpers.client import RawConn, get, request
from helpers.common import free_port, scaled

SECRET_VALUE = "t0p-s3cret-hdr-value"


def proxy_to(url, **proxy):
    proxy = dict(proxy)
    proxy["to"] = url
    return {"sites": [{"routes": [{"match": "/*", "proxy": proxy}]}]}


def assert_no_backend_detail(r, port):
    rid = r.header("X-Request-Id") or ""
    texts = [r.body.decode("latin-1").replace(rid, "<rid>") if rid else r.body.decode("latin-1")]
    texts += ["%s: %s" % (k, v.replace(rid, "<rid>") if rid else v) for k, v in r.headers]
    for t in texts:
        assert "127.0.0.1" not in t, t
        assert str(port) not in t, t
        assert SECRET_VALUE not in t, t
        assert B.SECRET_HEADER[1] not in t, t
        assert "backend-server" not in t, t


def assert_error_page(r, status, port):
    assert r.status == status, r
    rid = r.header("X-Request-Id")
    assert rid, "error response without X-Request-Id: %r" % r
    assert str(status) in r.text, r
    assert rid in r.text, "request id %r not in error page %r" % (rid, r.text)
    assert_no_backend_detail(r, port)


def test_502_when_target_refuses(portico):
    port = free_port()  # nothing listens there
    p = portico(proxy_to("http://127.0.0.1:%d" % port))
    assert_error_page(get(p.port, "/x"), 502, port)


def test_502_when_target_resets(portico, backend):
    b = backend(B.reset())
    p = portico(proxy_to(b.url))
    assert_error_page(get(p.port, "/x"), 502, b.port)


def test_502_when_target_closes_without_response(portico, backend):
    b = backend(B.close_now())
    p = portico(proxy_to(b.url))
    assert_error_page(get(p.port, "/x"), 502, b.port)


@pytest.mark.parametrize("resp", [
    b"HTTP/1.1 2x0 Weird\r\nX-Secret: %s\r\nContent-Length: 0\r\n\r\n",
    b"HTTZ/1.1 200 OK\r\nX-Secret: %s\r\nContent-Length: 0\r\n\r\n",
    b"garbage garbage %s\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Secret: %s\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nX-Secret: %s\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Secret: %s\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    b"zz\r\n",
], ids=["bad-status-code", "bad-version", "garbage", "two-content-length", "negative-length",
        "bad-chunk-size"])
def test_502_when_target_sends_malformed_response(portico, backend, resp):
    b = backend(B.raw(resp % SECRET_VALUE.encode()))
    p = portico(proxy_to(b.url))
    r = get(p.port, "/x")
    assert_error_page(r, 502, b.port)


def test_malformed_upstream_connection_is_not_reused(portico, backend):
    # /bad answers with a malformed head followed by a well-formed response the client must never
    # see, and keeps the connection open; reusing it would deliver "WRONG".
    bad = (b"HTTP/1.1 abc Bad\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG")
    b = backend(B.by_path({"/bad": B.raw(bad, keep=True)}))
    p = portico(proxy_to(b.url, timeout="5s"))
    r = get(p.port, "/bad")
    assert r.status == 502, r
    for i in range(3):
        r = get(p.port, "/good%d" % i)
        assert r.status == 200, r
        assert b"WRONG" not in r.body
        assert json.loads(r.body)["path"] == "/good%d" % i
    bad_conn = [q.conn_id for q in b.requests if q.path == "/bad"]
    good_conns = [q.conn_id for q in b.requests if q.path.startswith("/good")]
    assert bad_conn and not set(bad_conn) & set(good_conns), (bad_conn, good_conns)


def test_504_when_backend_slower_than_route_timeout(portico, backend):
    b = backend(B.slow(scaled(4)))
    p = portico(proxy_to(b.url, timeout="1s"))
    t0 = time.monotonic()
    r = get(p.port, "/slow", timeout=scaled(10))
    took = time.monotonic() - t0
    assert_error_page(r, 504, b.port)
    assert 0.8 <= took < scaled(3.5), "504 after %.2fs, route timeout 1s" % took


def test_504_when_backend_hangs(portico, backend):
    b = backend(B.hang())
    p = portico(proxy_to(b.url, timeout="1s"))
    r = get(p.port, "/hang", timeout=scaled(10))
    assert_error_page(r, 504, b.port)


def test_client_connection_usable_after_502(portico, backend):
    b = backend(B.by_path({"/reset": B.reset()}))
    p = portico(proxy_to(b.url))
    with RawConn(p.port) as c:
        r = c.request("GET", "/reset")
        assert r.status == 502
        r = c.request("GET", "/fine")
        assert r.status == 200, r
        assert json.loads(r.body)["path"] == "/fine"


def test_error_page_is_json_when_accept_json(portico):
    port = free_port()
    p = portico(proxy_to("http://127.0.0.1:%d" % port))
    r = get(p.port, "/x", [("Accept", "application/json")])
    assert_error_page(r, 502, port)
    assert "json" in (r.header("Content-Type") or ""), r.headers
    doc = json.loads(r.body)
    flat = json.dumps(doc)
    assert "502" in flat and r.header("X-Request-Id") in flat


def test_error_page_is_html_by_default(portico):
    port = free_port()
    p = portico(proxy_to("http://127.0.0.1:%d" % port))
    r = get(p.port, "/x", [("Accept", "text/html,*/*")])
    assert_error_page(r, 502, port)
    assert "html" in (r.header("Content-Type") or ""), r.headers


def test_error_page_carries_client_request_id(portico):
    port = free_port()
    p = portico(proxy_to("http://127.0.0.1:%d" % port))
    r = get(p.port, "/x", [("X-Request-Id", "client-req-4242")])
    assert r.status == 502
    assert r.header("X-Request-Id") == "client-req-4242"
    assert "client-req-4242" in r.text


def test_404_page_for_no_route(portico):
    p = portico({"sites": [{"routes": [{"match": "/only", "respond": {"body": "x"}}]}]})
    r = get(p.port, "/nope")
    assert r.status == 404
    rid = r.header("X-Request-Id")
    assert rid and rid in r.text and "404" in r.text
    r = get(p.port, "/nope", [("Accept", "application/json")])
    assert r.status == 404
    json.loads(r.body)


def test_error_does_not_leak_backend_response_headers(portico, backend):
    # the backend sends a head that starts well and then breaks: nothing of it may reach the client
    resp = (b"HTTP/1.1 200 OK\r\nX-Secret: " + SECRET_VALUE.encode() + b"\r\nBad Header\r\n\r\n")
    b = backend(B.raw(resp))
    p = portico(proxy_to(b.url))
    r = request(p.port, "GET", "/x")
    assert_error_page(r, 502, b.port)
    assert not r.has_header("X-Secret")
