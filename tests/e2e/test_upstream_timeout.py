"""Upstream timeouts against slow clients (issue 9): the route `timeout` and the upstream's
`per_try_timeout` count from the moment the whole request has been sent to the target, not while
the client is still uploading. The upload is governed by `limits.body_timeout` alone: a client
that keeps sending, however slowly, gets the backend's answer; a client that stalls gets 408,
never a 504 that blames the backend. The same holds for `Expect: 100-continue` with the body held
back. Every gap below is twice the upstream timeout and a fifth of body_timeout."""

import json
import time

import pytest

from helpers import backends as B
from helpers.client import RawConn
from helpers.common import scaled

UPSTREAM_TIMEOUT = 0.5  # seconds: the route timeout, or per_try_timeout
BODY_TIMEOUT = 5.0      # seconds: limits.body_timeout
GAP = 1.0               # seconds between pieces of the upload


@pytest.fixture
def echo():
    b = B.Backend(B.echo(), "timeout-echo")
    yield b
    b.close()


def config(url, per_try=False, body_timeout=BODY_TIMEOUT):
    ups = {"targets": [{"url": url}], "retries": 0}
    proxy = {"to": "app"}
    if per_try:
        ups["per_try_timeout"] = "%dms" % (UPSTREAM_TIMEOUT * 1000)
        proxy["timeout"] = "30s"
    else:
        proxy["timeout"] = "%dms" % (UPSTREAM_TIMEOUT * 1000)
    return {"workers": 1, "limits": {"body_timeout": "%dms" % (body_timeout * 1000)},
            "upstreams": {"app": ups},
            "sites": [{"routes": [{"match": "/*", "proxy": proxy}]}]}


def slow_upload(port, pieces):
    """POSTs the pieces with GAP seconds before each; returns the response, the seconds the
    upload took and the seconds from its end to the response."""
    body = b"".join(pieces)
    with RawConn(port, timeout=scaled(15)) as c:
        t0 = time.monotonic()
        c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
        for piece in pieces:
            time.sleep(GAP)
            c.send(piece)
        t_end = time.monotonic()
        r = c.read_response(method="POST")
        return r, t_end - t0, time.monotonic() - t_end


@pytest.mark.parametrize("per_try", [False, True], ids=["route_timeout", "per_try_timeout"])
def test_slow_upload_longer_than_the_upstream_timeout_gets_the_backends_200(portico, echo,
                                                                          per_try):
    p = portico(config(echo.url, per_try=per_try))
    pieces = [b"first-", b"second-", b"third"]
    r, took, _ = slow_upload(p.port, pieces)
    assert took > 3 * UPSTREAM_TIMEOUT, took  # the upload outlasted the timeout several times
    assert r.status == 200, (r, p.stderr()[-2000:])
    got = json.loads(r.body)
    assert got["method"] == "POST" and got["body_len"] == len(b"".join(pieces)), got


def test_stalled_upload_gets_408_not_504(portico, echo):
    p = portico(config(echo.url, body_timeout=1.5))
    with RawConn(p.port, timeout=scaled(15)) as c:
        t0 = time.monotonic()
        c.send(b"POST /stall HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
        r = c.read_response(method="POST")
        took = time.monotonic() - t0
    # The client, not the backend, is late: body_timeout (1.5s) answers, not the 0.5s route
    # timeout.
    assert r.status == 408, r
    assert took >= 1.2, "answered after %.2fs, before body_timeout" % took
    assert took < scaled(6), took


def test_expect_100_continue_with_the_body_held_back_gets_200(portico, echo):
    p = portico(config(echo.url))
    with RawConn(p.port, timeout=scaled(15)) as c:
        c.send(b"PUT /held HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = c.read_response(method="PUT", allow_interim=True)
        assert interim.status == 100, interim
        time.sleep(2 * GAP)  # the client takes its time before sending the body
        c.send(b"data")
        r = c.read_response(method="PUT")
    assert r.status == 200, (r, p.stderr()[-2000:])
    assert json.loads(r.body)["body_len"] == 4


def test_route_timeout_still_counts_once_the_upload_has_ended(portico):
    """The other half of the contract: after a slow upload, a backend slower than the route
    timeout still gets its 504, within the timeout of the end of the request."""
    b = B.Backend(B.slow(scaled(5)), "timeout-slow")
    try:
        p = portico(config(b.url))
        r, _, waited = slow_upload(p.port, [b"ab", b"cd"])
        assert r.status == 504, r
        assert UPSTREAM_TIMEOUT * 0.8 <= waited < scaled(3), waited
    finally:
        b.close()
