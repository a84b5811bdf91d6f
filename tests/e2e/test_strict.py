"""HTTP/1.1 strictness (malformed requests get 400 and a closed connection) and the per-request
limits (431, 414, 413, 408, idle keep-alive close)."""

import json
import time

import pytest

from helpers import backends as B
from helpers.client import Closed, RawConn, build_request, chunked_body
from helpers.common import IO_TIMEOUT, scaled
from helpers.portico import finish_module, module_portico

LIMITS = {
    "header_size": "2k",
    "headers": 20,
    "uri_size": 512,
    "body_size": "1k",
    "header_timeout": "1s",
    "body_timeout": "1s",
    "keepalive_timeout": "1s",
}


@pytest.fixture(scope="module")
def echo_backend():
    b = B.Backend(B.echo(), "strict-echo")
    yield b
    b.close()


@pytest.fixture(scope="module")
def px(tmp_path_factory, echo_backend):
    cfg = {
        "limits": LIMITS,
        "upstreams": {"echo": {"targets": [{"url": echo_backend.url}]}},
        "sites": [{"routes": [
            {"match": "/up/*", "proxy": {"to": "echo"}},
            {"match": "/*", "respond": {"status": 200, "body": "fine"}},
        ]}],
    }
    p, f = module_portico(tmp_path_factory, "strict", cfg)
    yield p
    finish_module(f)


def send_expect(px, data, statuses, close=True):
    """Send data on a fresh connection; the response status must be in statuses, and the
    connection must then be closed by Portico."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    with RawConn(px.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status in statuses, "sent %r, got %r" % (data[:200], r)
        if close:
            assert c.wait_closed(IO_TIMEOUT), "connection left open after %d" % r.status
        return r


def test_valid_request_is_fine(px):
    with RawConn(px.port) as c:
        r = c.request("GET", "/x")
        assert (r.status, r.body) == (200, b"fine")
        r = c.request("POST", "/x", body=b"abc")
        assert (r.status, r.body) == (200, b"fine")


BAD_REQUESTS = {
    "content-length-and-transfer-encoding":
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
    "two-content-lengths":
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "content-length-list":
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "content-length-alpha": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
    "content-length-negative": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    "content-length-plus": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
    "content-length-hex": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello",
    "content-length-space-inside":
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\nhello",
    "content-length-empty": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
    "transfer-encoding-gzip":
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
    "transfer-encoding-chunked-then-gzip":
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "transfer-encoding-unknown":
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo : bar\r\n\r\n",
    "space-before-colon-host": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n  folded\r\n\r\n",
    "obs-fold-tab": b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n\tfolded\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare-lf-in-headers": b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n",
    "bare-cr": b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\rb\r\n\r\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\x00b\r\n\r\n",
    "nul-in-header-name": b"GET / HTTP/1.1\r\nHost: a\r\nX-F\x00oo: ab\r\n\r\n",
    "control-char-in-target": b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
    "del-in-target": b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "invalid-method": b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "empty-method": b" / HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-not-origin-form": b"GET abc HTTP/1.1\r\nHost: a\r\n\r\n",
    "fragment-in-target": b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    "fragment-in-query": b"GET /a?b=1#c HTTP/1.1\r\nHost: a\r\n\r\n",
    "fragment-in-absolute-target": b"GET http://a/x#y HTTP/1.1\r\nHost: a\r\n\r\n",
    "lowercase-version": b"GET / http/1.1\r\nHost: a\r\n\r\n",
    "missing-host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad-host-value": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "http-0.9": b"GET /\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n",
    "empty-header-name": b"GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n",
    "bad-char-in-header-name": b"GET / HTTP/1.1\r\nHost: a\r\nX(Foo): bar\r\n\r\n",
    "leading-whitespace-header": b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_malformed_request_gets_400_and_close(px, name):
    send_expect(px, BAD_REQUESTS[name], 400)


@pytest.mark.parametrize("version", [b"HTTP/1.2", b"HTTP/2.0", b"HTTP/3.0", b"HTTP/1.10"])
def test_unsupported_version_gets_400_or_505(px, version):
    send_expect(px, b"GET / " + version + b"\r\nHost: a\r\n\r\n", (400, 505))


def test_content_length_overflowing_64_bits_is_rejected(px):
    send_expect(px, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999"
                    b"\r\n\r\n", (400, 413))


@pytest.mark.parametrize("te", [b"gzip, chunked", b"x-unknown, chunked",
                                b"gzip\r\nTransfer-Encoding: chunked"])
def test_request_coding_before_chunked_gets_501_and_close(px, echo_backend, te):
    """Transfer-Encoding: gzip, chunked was forwarded as plain chunked with gzip bytes inside:
    the backend read another body than the client sent. A coding Portico cannot decode is
    501 (RFC 9112 §6.1), the connection closed, and the backend never contacted."""
    before = len(echo_backend.requests)
    send_expect(px, b"POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te +
                b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501)
    assert len(echo_backend.requests) == before


def test_raw_hash_in_target_is_refused_not_forwarded(px, echo_backend):
    """A raw '#' was percent-encoded into the path and forwarded, so the backend was asked for
    /up/x%23frag, a resource the client never named. It is 400 now; an encoded %23 is a path
    byte like any other and still reaches the backend as %23."""
    before = len(echo_backend.requests)
    send_expect(px, b"GET /up/x#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400)
    assert len(echo_backend.requests) == before
    with RawConn(px.port) as c:
        r = c.request("GET", "/up/x%23frag")
        assert r.status == 200, r
        assert json.loads(r.body)["path"] == "/up/x%23frag"


@pytest.mark.parametrize("body", [b"5\r\nhelloX\n0\r\n\r\n", b"5\r\nhello\rX0\r\n\r\n"],
                         ids=["wrong-byte-for-cr", "wrong-byte-for-lf"])
def test_chunk_data_not_followed_by_crlf_gets_400(px, body):
    """The CR and the LF after a chunk's data are both checked: with the CR check removed,
    5\\r\\nhelloX\\n0... was accepted as "hello"."""
    send_expect(px, b"POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
                body, 400)


def test_bad_chunk_size_gets_400(px):
    send_expect(px, b"POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"zz\r\nhello\r\n0\r\n\r\n", 400)


def test_bad_request_after_good_one_on_same_connection(px):
    with RawConn(px.port) as c:
        assert c.request("GET", "/x").status == 200
        c.send(BAD_REQUESTS["two-hosts"])
        assert c.read_response().status == 400
        assert c.wait_closed(IO_TIMEOUT)


def test_400_response_has_no_backend_contact(px, echo_backend):
    before = len(echo_backend.requests)
    send_expect(px, b"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
    assert len(echo_backend.requests) == before


# --- limits


def test_header_section_too_big_gets_431(px):
    send_expect(px, build_request("GET", "/x", [("X-Big", "a" * 3000)]), 431)


def test_header_section_just_under_limit_is_fine(px):
    with RawConn(px.port) as c:
        r = c.request("GET", "/x", [("X-Big", "a" * 1500)])
        assert r.status == 200


def test_too_many_headers_gets_431(px):
    send_expect(px, build_request("GET", "/x", [("X-H%d" % i, "v") for i in range(30)]), 431)


def test_header_count_at_limit_is_fine(px):
    # Host plus 19 more: 20 headers, the limit
    with RawConn(px.port) as c:
        r = c.request("GET", "/x", [("X-H%d" % i, "v") for i in range(19)])
        assert r.status == 200


def test_uri_too_long_gets_414(px):
    send_expect(px, build_request("GET", "/" + "u" * 600), 414, close=False)


def test_uri_under_limit_is_fine(px):
    with RawConn(px.port) as c:
        assert c.request("GET", "/" + "u" * 400).status == 200


def test_declared_body_over_limit_gets_413(px, echo_backend):
    before = len(echo_backend.requests)
    with RawConn(px.port) as c:
        c.send(b"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n")
        r = c.read_response()
        assert r.status == 413, r
    assert len(echo_backend.requests) == before


def test_declared_body_at_limit_is_accepted(px):
    with RawConn(px.port) as c:
        r = c.request("POST", "/up/x", body=b"b" * 1024)
        assert r.status == 200
        assert json.loads(r.body)["body_len"] == 1024


def test_streamed_chunked_body_over_limit_gets_413(px):
    with RawConn(px.port) as c:
        c.send(b"POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            c.send(chunked_body([b"c" * 600, b"c" * 600, b"c" * 600]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 413, r


def test_slow_request_head_gets_408_and_close(px):
    with RawConn(px.port) as c:
        t0 = time.monotonic()
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n")
        r = c.read_response()
        took = time.monotonic() - t0
        assert r.status == 408, r
        assert c.wait_closed(IO_TIMEOUT)
        assert 0.8 <= took < scaled(3), "408 after %.2fs for header_timeout 1s" % took


def test_trickled_request_head_still_times_out(px):
    # a byte every 200 ms keeps the connection busy but the head must arrive within 1s in all
    with RawConn(px.port) as c:
        t0 = time.monotonic()
        data = b"GET /x HTTP/1.1\r\nHost: a\r\n" + b"X-Slow: " + b"s" * 100
        got = None
        for i in range(len(data)):
            try:
                c.send(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.2)
            if time.monotonic() - t0 > scaled(4):
                break
        took = time.monotonic() - t0
        try:
            got = c.read_response()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            got = None
        assert took < scaled(4), "trickling went on for %.1fs without Portico closing" % took
        if got is not None:
            assert got.status == 408, got


def test_idle_body_gets_closed_after_body_timeout(px):
    with RawConn(px.port) as c:
        t0 = time.monotonic()
        c.send(b"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
        try:
            r = c.read_response(method="POST")
            assert r.status >= 400, r
            closed = c.wait_closed(IO_TIMEOUT)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        took = time.monotonic() - t0
        assert closed
        assert took < scaled(4), "closed after %.2fs for body_timeout 1s" % took


def test_idle_keepalive_connection_closed_after_timeout(px):
    with RawConn(px.port) as c:
        assert c.request("GET", "/x").status == 200
        t0 = time.monotonic()
        assert c.wait_closed(scaled(5)), "idle connection not closed"
        took = time.monotonic() - t0
        assert 0.8 <= took < scaled(3), "closed after %.2fs for keepalive_timeout 1s" % took


def test_connection_open_without_request_is_closed(px):
    with RawConn(px.port, timeout=scaled(5)) as c:
        t0 = time.monotonic()
        try:
            r = c.read_response()
            assert r.status == 408, r
            assert c.wait_closed(scaled(5))
        except (Closed, ConnectionResetError):
            pass
        assert time.monotonic() - t0 < scaled(3)
