"""Regression tests for bugs found after the first cut: each failed before its fix."""

import json

from helpers import backends as B
from helpers.client import RawConn


def test_recycled_request_does_not_inherit_upstream_name_in_json_log(portico):
    """Request objects are recycled per worker; the upstream name of a proxied request once
    leaked into the access-log line of the next (local) request on the same connection."""
    b = B.Backend(B.fixed(200, b"from-backend"), "regress")
    try:
        cfg = {
            "log": {"format": "json"},
            "upstreams": {"app": {"targets": [{"url": b.url}]}},
            "sites": [{"routes": [
                {"match": "/proxied", "proxy": {"to": "app"}},
                {"match": "/local", "respond": {"status": 200, "body": "here"}},
            ]}],
        }
        p = portico(cfg)
        with RawConn(p.port) as c:
            assert c.request("GET", "/proxied").body == b"from-backend"
            assert c.request("GET", "/local").body == b"here"
        assert p.stop() == 0
        docs = [json.loads(ln) for ln in p.access_log()]
        by_path = {d["path"]: d for d in docs}
        assert by_path["/proxied"]["upstream"] == "app", docs
        assert by_path["/local"]["upstream"] == "", docs
    finally:
        b.close()



def test_response_finished_while_draining_says_connection_close(portico):
    """During a graceful stop the connection is closed after the response in flight; the
    response must say so, or a client sending its next request meanwhile gets a reset."""
    import signal
    import threading

    b = B.Backend(B.slow(1.5), "drain")
    try:
        p = portico({"upstreams": {"app": {"targets": [{"url": b.url}]}},
                     "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}]})
        result = {}

        def client():
            with RawConn(p.port, timeout=15) as c:
                result["resp"] = c.request("GET", "/slow")

        t = threading.Thread(target=client)
        t.start()
        assert b.wait_requests(1, 10)
        p.signal(signal.SIGTERM)
        t.join(20)
        r = result["resp"]
        assert r.status == 200
        assert (r.header("Connection") or "").lower() == "close", r
        assert p.wait_exit(15) == 0
    finally:
        b.close()
