"""max_connections and max_pending: beyond a target's limit requests wait in a bounded queue
and are served when a slot frees; past the queue's bound they get 503 at once."""

import threading
import time

from helpers import backends as B
from helpers.client import RawConn


def test_requests_beyond_max_connections_queue_then_overflow_gets_503(portico):
    b = B.Backend(B.slow(0.6, B.fixed(200, b"done")), "queued")
    try:
        p = portico({
            "workers": 1,
            "upstreams": {"app": {"targets": [{"url": b.url, "max_connections": 1}],
                                  "max_pending": 1}},
            "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app", "timeout": "10s"}}]}],
        })
        results = {}

        def client(i):
            with RawConn(p.port, timeout=15) as c:
                t0 = time.monotonic()
                r = c.request("GET", "/r%d" % i)
                results[i] = (r.status, time.monotonic() - t0)

        first = threading.Thread(target=client, args=(0,))
        first.start()
        time.sleep(0.2)  # the first holds the only connection slot
        second = threading.Thread(target=client, args=(1,))
        second.start()
        time.sleep(0.1)  # the second waits in the queue, which is now full
        client(2)
        first.join(15)
        second.join(15)
        assert results[2][0] == 503, results
        assert results[2][1] < 0.5, results  # refused at once, not after waiting
        assert results[0][0] == 200 and results[1][0] == 200, results
        assert results[1][1] > 0.5, results  # it waited for the first to finish
        assert len(b.requests) == 2
    finally:
        b.close()


def test_request_refused_while_building_its_head_frees_the_target_slot(portico):
    """A request whose upstream head cannot be built (a path too long once encoded: 414) had
    already taken the target's max_connections slot, and kept it: with max_connections 1 the
    target then refused every later request with 503."""
    b = B.Backend(B.fixed(200, b"ok"), "one-slot")
    try:
        p = portico({
            "workers": 1,
            "limits": {"uri_size": "16k"},
            "upstreams": {"app": {"targets": [{"url": b.url, "max_connections": 1}],
                                  "max_pending": 0}},
            "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}],
        })
        for _ in range(3):
            with RawConn(p.port, timeout=5) as c:
                assert c.request("GET", "/" + "a" * 8300).status == 414
        with RawConn(p.port, timeout=5) as c:
            r = c.request("GET", "/ok")
            assert r.status == 200, r.status
        assert len(b.requests) == 1
    finally:
        b.close()
