"""Forward auth (forward_auth: on a site or route, src/server/fwdauth.c), end to end.

The auth service is a backend of the tests' own (helpers/backends.py) on a kernel-chosen port:
it lets "Bearer good" through with X-User, refuses the rest with 401 (or what a test asks),
and records what it was sent. The protected backend echoes what reaches it, so a test sees
which headers and body came through, and that a refused request never reached it.
"""

import socket
import subprocess
import time

from helpers import backends as B
from helpers.client import RawConn, get, request
from helpers.common import free_port


def auth_service(status=None, headers=(), body=b""):
    """Good token: 200 with X-User; else 401 with WWW-Authenticate and a body (or status)."""

    def h(req, w):
        if status is None and req.header("authorization") == "Bearer good":
            w.respond(200, [("X-User", "alice"), ("X-Other", "no"), ("Content-Length", "0")])
            return
        if status is None:
            w.respond(401, [("WWW-Authenticate", 'Bearer realm="app"'),
                            ("Content-Type", "text/plain"), ("X-Secret", "s")], b"log in first\n")
            return
        w.respond(status, list(headers), body)

    return h


def cfg_of(auth, backend_url, route_fa=None, h2c=False, **fa):
    def build(port):
        site_fa = {"url": auth.url + "/check", "response_headers": ["X-User"]}
        site_fa.update(fa)
        routes = [{"match": "/app/*", "proxy": {"to": backend_url}},
                  {"match": "/local", "respond": {"status": 200, "body": "local\n"}}]
        if route_fa is not None:
            routes.insert(0, {"match": "/open/*", "proxy": {"to": backend_url},
                              "forward_auth": route_fa})
        cfg = {"sites": [{"routes": routes, "forward_auth": site_fa}]}
        if h2c:
            cfg["listen"] = [{"addr": "127.0.0.1:%d" % port, "http2": True}]
        return cfg
    return build


GOOD = {"Authorization": "Bearer good"}


def test_2xx_lets_through_and_copies_the_chosen_headers(portico, backend):
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    r = get(p.port, "/app/x?q=1", headers={"Authorization": "Bearer good", "Cookie": "c=1",
                                          "X-User": "mallory", "X-Evil": "1"})
    assert r.status == 200, r
    seen = r.json()
    hdrs = {}
    for k, v in seen["headers"]:
        hdrs.setdefault(k.lower(), []).append(v)
    assert hdrs["x-user"] == ["alice"]  # the auth answer's, the client's copy replaced
    assert "x-other" not in hdrs        # not in response_headers
    assert hdrs["x-evil"] == ["1"]      # other client headers go on as usual
    assert seen["path"] == "/app/x" and seen["query"] == "q=1"
    a = auth.last()
    assert a.method == "GET" and a.target == "/check"
    assert a.header("x-forwarded-method") == "GET"
    assert a.header("x-forwarded-uri") == "/app/x?q=1"
    assert a.header("x-forwarded-host") == "localhost"
    assert a.header("x-forwarded-proto") == "http"
    assert a.header("x-forwarded-for") == "127.0.0.1"
    assert a.header("authorization") == "Bearer good" and a.header("cookie") == "c=1"
    assert a.header("x-evil") is None and a.header("x-user") is None
    assert a.body_len == 0
    assert a.header("x-request-id") == r.header("x-request-id")


def test_local_routes_are_guarded_too(portico, backend):
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    assert get(p.port, "/local").status == 401
    r = get(p.port, "/local", headers=GOOD)
    assert r.status == 200 and r.body == b"local\n"


def test_401_and_403_are_returned_as_they_are(portico, backend):
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    r = get(p.port, "/app/x", headers={"Authorization": "Bearer bad"})
    assert r.status == 401
    assert r.header("www-authenticate") == 'Bearer realm="app"'
    assert r.header("content-type") == "text/plain"
    assert r.header("x-secret") is None
    assert r.body == b"log in first\n"
    assert len(b.requests) == 0
    assert "refused by forward_auth: status 401" in p.stderr()
    assert "Bearer bad" not in p.stderr()

    auth.handler = auth_service(403, [("Set-Cookie", "s=1; Path=/")], b"no\n")
    r = get(p.port, "/app/x", headers=GOOD)
    assert r.status == 403 and r.body == b"no\n"
    assert r.header("set-cookie") == "s=1; Path=/"
    assert len(b.requests) == 0


def test_redirect_goes_to_the_client(portico, backend):
    auth = backend(auth_service(302, [("Location", "https://login.example/?rd=1")]), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    r = get(p.port, "/app/x")
    assert r.status == 302 and r.header("location") == "https://login.example/?rd=1"
    assert len(b.requests) == 0


def test_auth_errors_are_503_never_an_open_door(portico, backend):
    auth = backend(auth_service(500, [], b"boom"), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url, timeout="300ms"))
    r = get(p.port, "/app/x", headers=GOOD)
    assert r.status == 503 and b"boom" not in r.body
    auth.handler = auth_service(404)
    assert get(p.port, "/app/x", headers=GOOD).status == 503
    auth.handler = B.slow(2.0, auth_service())
    t = time.monotonic()
    assert get(p.port, "/app/x", headers=GOOD).status == 503
    assert time.monotonic() - t < 1.5
    assert len(b.requests) == 0
    assert "refused by forward_auth: timeout" in p.stderr()


def test_auth_service_down_is_503(portico, backend):
    b = backend(B.echo())

    class Down:
        url = "http://127.0.0.1:%d" % free_port()

    p = portico(cfg_of(Down, b.url))
    assert get(p.port, "/app/x", headers=GOOD).status == 503
    assert len(b.requests) == 0


def test_named_upstream_and_route_off(portico, backend):
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())

    def build(port):
        cfg = cfg_of(auth, b.url, route_fa="off")(port)
        cfg["upstreams"] = {"authsvc": {"targets": [{"url": auth.url}]}}
        cfg["sites"][0]["forward_auth"] = {"upstream": "authsvc", "path": "/verify"}
        return cfg

    p = portico(build)
    assert get(p.port, "/app/x").status == 401
    assert auth.last().target == "/verify"
    n = len(auth.requests)
    assert get(p.port, "/open/x").status == 200  # off at the route lifts the site's
    assert len(auth.requests) == n


def test_cache_avoids_a_second_call_within_the_ttl(portico, backend):
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url, cache={"ttl": "1s"}))
    r = get(p.port, "/app/x", headers=GOOD)
    assert r.status == 200
    r = get(p.port, "/app/x", headers={"Authorization": "Bearer good", "X-User": "mallory"})
    assert r.status == 200
    assert [v for k, v in r.json()["headers"] if k.lower() == "x-user"] == ["alice"]
    assert len(auth.requests) == 1
    assert get(p.port, "/app/y", headers=GOOD).status == 200  # another URI: another key
    assert len(auth.requests) == 2
    assert get(p.port, "/app/x", headers={"Authorization": "Bearer bad"}).status == 401
    assert get(p.port, "/app/x", headers={"Authorization": "Bearer bad"}).status == 401
    assert len(auth.requests) == 4  # refusals are not cached
    time.sleep(1.2)
    assert get(p.port, "/app/x", headers=GOOD).status == 200
    assert len(auth.requests) == 5


def test_post_body_reaches_the_backend_only_after_a_2xx(portico, backend):
    auth = backend(B.slow(0.3, auth_service()), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    body = b"x" * 200000
    with RawConn(p.port) as c:
        r = c.request("POST", "/app/p", {**GOOD, "Content-Type": "application/octet-stream"},
                      body)
        assert r.status == 200
        assert r.json()["body_len"] == len(body) and r.json()["method"] == "POST"
        a = auth.last()
        assert a.method == "POST" and a.body_len == 0 and a.header("content-length") is None
        # refused: the body is dropped, and the connection serves the next request
        r = c.request("POST", "/app/p", {"Authorization": "Bearer bad"}, b"y" * 1000)
        assert r.status == 401
        r = c.request("GET", "/app/q", GOOD)
        assert r.status == 200 and r.json()["path"] == "/app/q"
    assert len(b.requests) == 2


def test_over_http2(portico, backend):
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url, h2c=True))
    url = "http://127.0.0.1:%d" % p.port
    base = ["curl", "-sS", "--http2-prior-knowledge"]
    r = subprocess.run(base + ["-w", "\n%{http_code}", url + "/app/x"], capture_output=True,
                       timeout=30)
    assert r.stdout.endswith(b"\n401"), r
    assert b"log in first" in r.stdout
    data = b"z" * 100000
    r = subprocess.run(base + ["-H", "Authorization: Bearer good", "-X", "POST",
                               "--data-binary", "@-", url + "/app/p"],
                       input=data, capture_output=True, timeout=30)
    assert r.returncode == 0, r
    assert b'"body_len": %d' % len(data) in r.stdout
    assert auth.last().header("x-forwarded-method") == "POST"


def test_client_gone_during_the_call(portico, backend):
    auth = backend(B.slow(0.5, auth_service()), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"POST /app/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer good\r\n"
                  b"Content-Length: 10\r\n\r\n")
        time.sleep(0.05)
        s.close()
    time.sleep(0.8)
    assert get(p.port, "/app/x", headers=GOOD).status == 200
    assert p.alive()
    assert len(b.requests) == 1


def test_config_errors(portico, tmp_path):
    from helpers.portico import PORTICO_BIN
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [{addr: 127.0.0.1:1}]\nsites:\n  - forward_auth: {timeout: 1s}\n"
                   "    routes: [{match: /, respond: {status: 200}}]\n"
                   "  - hosts: [b]\n    forward_auth: {upstream: nope}\n"
                   "    routes: [{match: /, respond: {status: 200}}]\n")
    r = subprocess.run([PORTICO_BIN, "check", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "forward_auth needs url" in r.stderr + r.stdout
    assert 'unknown upstream "nope"' in r.stderr + r.stdout


def test_http2_stream_reset_and_close_during_the_call(portico, backend):
    from test_h2 import H2
    auth = backend(B.slow(0.5, auth_service()), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url, h2c=True))
    c = H2(p.port)
    gone = c.request("/app/gone", method="POST", headers=[("authorization", "Bearer good")],
                     body=b"q" * 1000)
    kept = c.request("/app/kept", headers=[("authorization", "Bearer good")])
    time.sleep(0.1)
    c.conn.reset_stream(gone)
    c.flush()
    status, _, body = c.response(kept)
    assert status == 200 and b"/app/kept" in body
    time.sleep(0.6)
    assert [r.path for r in b.requests] == ["/app/kept"]
    c2 = H2(p.port)
    c2.request("/app/x", headers=[("authorization", "Bearer good")])
    time.sleep(0.1)
    c2.sock.close()  # the whole connection goes during the call
    time.sleep(0.6)
    assert get(p.port, "/app/x", headers=GOOD).status == 200


def test_refusals_are_counted(portico, backend, tmp_path):
    from helpers import admin as A
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())
    token, tokens_file = A.tokens(tmp_path, [("scraper", "read")])

    def build(port):
        cfg = cfg_of(auth, b.url)(port)
        cfg["admin"] = {"listen": "127.0.0.1:%d" % A.admin_port(port), "tokens_file": tokens_file}
        return cfg

    p = portico(build)
    assert get(p.port, "/app/x").status == 401
    assert get(p.port, "/app/x", headers=GOOD).status == 200
    auth.handler = auth_service(500)
    assert get(p.port, "/app/x", headers=GOOD).status == 503
    st, _, body = A.call(p, "GET", "/metrics", token[0])
    assert st == 200
    assert 'portico_guard_refusals_total{guard="auth"} 2' in body.decode()


def test_head_request_refused_and_let_through(portico, backend):
    auth = backend(auth_service(), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    with RawConn(p.port) as c:
        r = c.request("HEAD", "/app/x")
        assert r.status == 401 and not r.body
        r = c.request("HEAD", "/app/x", GOOD)
        assert r.status == 200
        r = c.request("GET", "/app/x", GOOD)
        assert r.status == 200 and r.json()["method"] == "GET"
    assert auth.requests[0].method == "HEAD"


def test_route_match_survives_the_wait(portico, backend):
    """The route's captures point into the matched path: they are copied for the wait."""
    auth = backend(B.slow(0.1, auth_service()), "auth")
    b = backend(B.echo())

    def build(port):
        cfg = cfg_of(auth, b.url)(port)
        cfg["sites"][0]["routes"].insert(0, {"match": "/tmpl/*",
                                             "proxy": {"to": b.url + "/base/:splat"}})
        return cfg

    p = portico(build)
    r = get(p.port, "/tmpl/a/b%20c?x=1", headers=GOOD)
    assert r.status == 200
    assert r.json()["target"] == "/base/a/b%20c?x=1"


def test_large_refusal_body_is_dropped(portico, backend):
    auth = backend(auth_service(401, [("WWW-Authenticate", "Basic")], b"x" * 70000), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    r = get(p.port, "/app/x")
    assert r.status == 401 and r.header("www-authenticate") == "Basic" and r.body == b""


def test_reload_during_the_call(portico, backend):
    import threading
    auth = backend(B.slow(0.6, auth_service()), "auth")
    b = backend(B.echo())
    build = cfg_of(auth, b.url)
    p = portico(build)
    out = {}
    t = threading.Thread(target=lambda: out.update(r=get(p.port, "/app/x", headers=GOOD)))
    t.start()
    time.sleep(0.2)
    p.reload(build)
    t.join(10)
    assert out["r"].status == 200 and out["r"].json()["path"] == "/app/x"
    assert get(p.port, "/app/y", headers=GOOD).status == 200


def test_shutdown_during_the_call(portico, backend):
    import threading
    auth = backend(B.slow(0.8, auth_service()), "auth")
    b = backend(B.echo())
    p = portico(cfg_of(auth, b.url))
    out = {}

    def call():
        try:
            out["r"] = get(p.port, "/app/x", headers=GOOD)
        except Exception as e:  # the connection may close with the process
            out["e"] = e

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.2)
    p.stop()
    t.join(10)
    assert "r" in out or "e" in out
    assert not p.sanitizer_report()


def test_https_auth_service_verified_with_its_upstream_ca(portico, backend, tmp_path):
    """The call is a proxied request: an https upstream's TLS and verification apply."""
    d = tmp_path
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / "key.pem"), "-out",
                    str(d / "cert.pem"), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost"], check=True, capture_output=True)

    def tls_auth(port):
        return {"listen": [{"addr": "127.0.0.1:%d" % port, "tls": True}],
                "tls": {"certificates": [{"cert": str(d / "cert.pem"),
                                          "key": str(d / "key.pem")}]},
                "sites": [{"routes": [{"match": "/check", "respond": {
                    "status": 200, "headers": {"X-User": "over-tls"}}}]}]}

    a = portico(tls_auth, name="tlsauth")
    b = backend(B.echo())

    def front(port):
        return {
            "upstreams": {
                "good": {"targets": [{"url": "https://localhost:%d" % a.port}],
                         "ca_file": str(d / "cert.pem")},
                "bad": {"targets": [{"url": "https://localhost:%d" % a.port}]}},
            "sites": [{"forward_auth": {"upstream": "good", "path": "/check",
                                        "response_headers": ["X-User"]},
                       "routes": [{"match": "/bad/*", "proxy": {"to": b.url},
                                   "forward_auth": {"upstream": "bad", "path": "/check"}},
                                  {"match": "/*", "proxy": {"to": b.url}}]}]}

    p = portico(front, name="front")
    r = get(p.port, "/x")
    assert r.status == 200, r
    assert [v for k, v in r.json()["headers"] if k.lower() == "x-user"] == ["over-tls"]
    assert get(p.port, "/bad/x").status == 503  # an unverified certificate is an error
    assert len(b.requests) == 1
