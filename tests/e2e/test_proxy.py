"""Proxying: paths, hosts, header rules, hop-by-hop headers, forwarding headers, request ids,
bodies in both directions, interim responses, keep-alive and pipelining."""

import hashlib
import json
import os
import socket
import threading
import time

import pytest

from helpers import backends as B
from helpers.client import Closed, RawConn, build_request, chunked_body, get, request
from helpers.common import IO_TIMEOUT


def proxy_config(to, match="/*", upstreams=None, **proxy):
    proxy = dict(proxy)
    proxy["to"] = to
    cfg = {"sites": [{"routes": [{"match": match, "proxy": proxy}]}]}
    if upstreams:
        cfg["upstreams"] = upstreams
    return cfg


def upstream(*backends, **opts):
    u = {"targets": [{"url": b.url} for b in backends]}
    u.update(opts)
    return u


def seen(resp):
    """The request as the echo backend saw it (decoded from its JSON answer)."""
    assert resp.status == 200, resp
    d = json.loads(resp.body)
    d["hdr"] = {}
    for k, v in d["headers"]:
        d["hdr"].setdefault(k.lower(), []).append(v)
    return d


def one(d, name):
    vals = d["hdr"].get(name.lower(), [])
    assert len(vals) == 1, "backend saw %s: %r" % (name, vals)
    return vals[0]


def joined(d, name):
    return ", ".join(d["hdr"].get(name.lower(), []))


def start(portico, backend, handler=None, **proxy):
    b = backend(handler or B.echo())
    p = portico(proxy_config("app", upstreams={"app": upstream(b)}, **proxy))
    return p, b


# --- paths


def test_request_reaches_backend_with_path_and_query(portico, backend):
    p, b = start(portico, backend)
    d = seen(get(p.port, "/some/path?a=1&b=%20x"))
    assert d["method"] == "GET"
    assert d["path"] == "/some/path"
    assert d["query"] == "a=1&b=%20x"
    assert d["version"] == "HTTP/1.1"


def test_strip_prefix_removes_literal_prefix(portico, backend):
    b = backend(B.echo())
    p = portico(proxy_config("app", match="/api/*", upstreams={"app": upstream(b)},
                             strip_prefix=True))
    assert seen(get(p.port, "/api/users?x=1"))["target"] == "/users?x=1"
    assert seen(get(p.port, "/api/a/b"))["target"] == "/a/b"
    assert seen(get(p.port, "/api"))["target"] == "/"
    assert seen(get(p.port, "/api/"))["target"] == "/"


def test_without_strip_prefix_path_is_kept(portico, backend):
    b = backend(B.echo())
    p = portico(proxy_config("app", match="/api/*", upstreams={"app": upstream(b)}))
    assert seen(get(p.port, "/api/users?x=1"))["target"] == "/api/users?x=1"


def test_url_target_with_base_path(portico, backend):
    b = backend(B.echo())
    p = portico(proxy_config(b.url + "/base", match="/api/*", strip_prefix=True))
    d = seen(get(p.port, "/api/users?x=1"))
    assert d["path"] == "/base/users"
    assert d["query"] == "x=1"


def test_url_target_without_base_path(portico, backend):
    b = backend(B.echo())
    p = portico(proxy_config(b.url))
    assert seen(get(p.port, "/x/y?z"))["target"] == "/x/y?z"


# --- Host


def test_host_is_target_when_preserve_host_false(portico, backend):
    p, b = start(portico, backend, preserve_host=False)
    d = seen(get(p.port, "/", host="front.test"))
    assert one(d, "Host") == "127.0.0.1:%d" % b.port


def test_host_is_client_host_when_preserve_host_true(portico, backend):
    p, b = start(portico, backend, preserve_host=True)
    d = seen(get(p.port, "/", host="front.test"))
    assert one(d, "Host") == "front.test"


def absolute_get(port, url, host):
    """GET with an absolute-form target (RFC 9112 §3.2.2) and a Host header that disagrees."""
    with RawConn(port) as c:
        c.send(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (url, host)).encode())
        return c.read_response()


def test_absolute_form_authority_replaces_host_for_backend_and_log(portico, backend):
    """Routing used the URL's host while Host (preserve_host), X-Forwarded-Host and the access
    log used the Host header: the backend was told another host than the one routed on."""
    b = backend(B.echo())
    p = portico({
        "log": {"format": "json"},
        "upstreams": {"app": upstream(b)},
        "sites": [
            {"hosts": ["public.example"],
             "routes": [{"match": "/*", "proxy": {"to": "app", "preserve_host": True}}]},
            {"hosts": ["internal.example"],
             "routes": [{"match": "/*", "respond": {"status": 200, "body": "internal"}}]},
        ],
    })
    d = seen(absolute_get(p.port, "http://public.example/x?y=1", "internal.example"))
    assert (d["path"], d["query"]) == ("/x", "y=1")
    assert one(d, "Host") == "public.example"
    assert one(d, "X-Forwarded-Host") == "public.example"
    # with a port in the authority, the port travels too
    d = seen(absolute_get(p.port, "http://public.example:8080/z", "internal.example"))
    assert one(d, "Host") == "public.example:8080"
    assert one(d, "X-Forwarded-Host") == "public.example:8080"
    # the other way round: the URL names the internal site, Host the public one
    r = absolute_get(p.port, "http://internal.example/x", "public.example")
    assert (r.status, r.body) == (200, b"internal")
    assert p.stop() == 0
    hosts = [json.loads(ln)["host"] for ln in p.access_log()]
    assert hosts == ["public.example", "public.example:8080", "internal.example"], hosts


def test_long_host_reaches_the_backend_whole_or_is_refused(portico, backend):
    """The host was copied into a 128-byte field: a longer Host (legal: a DNS name has up to
    253 bytes) reached the backend cut short under preserve_host, a host other than the one
    routed on. It now travels whole up to a DNS name with a port, and beyond that is a 400."""
    b = backend(B.echo())
    p = portico({"upstreams": {"app": upstream(b)},
                 "routes": [{"match": "/*", "proxy": {"to": "app", "preserve_host": True}}]})
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57])  # 249 bytes
    host = name + ":8080"
    d = seen(get(p.port, "/", host=host))
    assert one(d, "Host") == host
    assert one(d, "X-Forwarded-Host") == host
    with RawConn(p.port) as c:
        c.send(("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % ("x" * 300 + ".example")).encode())
        r = c.read_response()
    assert r.status == 400


def test_absolute_form_authority_decides_netlify_host_rules(portico, tmp_path):
    """A domain-level _redirects rule (absolute from) looks at the host routed on, which for an
    absolute-form target is the URL's, not the Host header's."""
    root = tmp_path / "public"
    root.mkdir()
    (root / "page.html").write_bytes(b"page")
    (root / "_redirects").write_text("http://old.example/*  https://new.example/:splat  301!\n")
    p = portico({"sites": [{"routes": [{"match": "/*", "static": {"root": str(root)}}]}]})
    r = absolute_get(p.port, "http://old.example/page.html", "other.example")
    assert (r.status, r.header("location")) == (301, "https://new.example/page.html"), r
    r = absolute_get(p.port, "http://other.example/page.html", "old.example")
    assert (r.status, r.body) == (200, b"page"), r


def test_hsts_on_proxied_responses_over_tls_only(portico, backend, tmp_path_factory):
    """Every other HSTS test answers with a respond route; the proxy builds its own response
    head, and must add the site's Strict-Transport-Security there too, over TLS only, once."""
    from helpers import certs
    from helpers.common import free_port
    from helpers.tlsclient import TLSConn

    pki = certs.session_pki(tmp_path_factory)
    cert, key = pki.server(["secure.test"], "ec")
    b = backend(B.by_path({"/missing": B.fixed(404, b"nope")}, default=B.echo()))
    plain = free_port()
    p = portico(lambda port: {
        "listen": [{"addr": "127.0.0.1:%d" % port, "tls": True},
                   {"addr": "127.0.0.1:%d" % plain}],
        "tls": {"certificates": [{"cert": cert, "key": key}]},
        "upstreams": {"app": upstream(b)},
        "sites": [{"hosts": ["secure.test"],
                   "hsts": {"max_age": "1d", "include_subdomains": True},
                   "routes": [{"match": "/*", "proxy": {"to": "app"}}]}],
    })
    want = ["max-age=86400; includeSubDomains"]
    for path, status in (("/x", 200), ("/missing", 404)):
        with TLSConn(p.port, "secure.test", cafile=pki.ca_cert) as c:
            r = c.request("GET", path, host="secure.test")
        assert r.status == status, r
        assert r.header_all("Strict-Transport-Security") == want, r
    r = get(plain, "/x", host="secure.test")
    assert r.status == 200 and not r.has_header("Strict-Transport-Security"), r


# --- header rules


def test_request_header_set_add_remove(portico, backend):
    p, b = start(portico, backend, headers={"request": {
        "set": {"X-Req-Set": "new"}, "add": {"X-Req-Add": "two"}, "remove": ["X-Req-Remove"]}})
    d = seen(get(p.port, "/", [("X-Req-Set", "old"), ("X-Req-Add", "one"),
                               ("X-Req-Remove", "gone"), ("X-Other", "kept")]))
    assert d["hdr"].get("x-req-set") == ["new"]
    assert joined(d, "X-Req-Add") == "one, two"
    assert "x-req-remove" not in d["hdr"]
    assert one(d, "X-Other") == "kept"


def test_response_header_set_add_remove(portico, backend):
    handler = B.echo(headers=[("X-Powered-By", "php/5"), ("X-Set", "original"),
                              ("X-Add", "a1"), ("X-Keep", "k")])
    p, b = start(portico, backend, handler, headers={"response": {
        "set": {"X-Set": "v"}, "add": {"X-Add": "a2"}, "remove": ["X-Powered-By"]}})
    r = get(p.port, "/")
    assert r.status == 200
    assert r.header_all("X-Set") == ["v"]
    assert ", ".join(r.header_all("X-Add")) == "a1, a2"
    assert not r.has_header("X-Powered-By")
    assert r.header("X-Keep") == "k"


def test_strip_credentials_drops_cookie_and_authorization(portico, backend):
    p, b = start(portico, backend, strip_credentials=True)
    d = seen(get(p.port, "/", [("Cookie", "session=abc"), ("Authorization", "Bearer t"),
                               ("X-Other", "1")]))
    assert "cookie" not in d["hdr"]
    assert "authorization" not in d["hdr"]
    assert one(d, "X-Other") == "1"


def test_credentials_pass_by_default(portico, backend):
    p, b = start(portico, backend)
    d = seen(get(p.port, "/", [("Cookie", "session=abc"), ("Authorization", "Bearer t")]))
    assert one(d, "Cookie") == "session=abc"
    assert one(d, "Authorization") == "Bearer t"


def test_strip_credentials_keeps_authorization_set_by_rule(portico, backend):
    p, b = start(portico, backend, strip_credentials=True,
                 headers={"request": {"set": {"Authorization": "Bearer from-config"}}})
    d = seen(get(p.port, "/", [("Authorization", "Bearer client")]))
    assert one(d, "Authorization") == "Bearer from-config"


# --- hop-by-hop


def test_hop_by_hop_request_headers_removed(portico, backend):
    p, b = start(portico, backend)
    d = seen(get(p.port, "/", [
        ("Connection", "X-Hop, keep-alive"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Trailer", "X-T"), ("Proxy-Authorization", "Basic eDp5"),
        ("Proxy-Foo", "y"), ("Upgrade", "websocket"), ("X-End-To-End", "yes")]))
    for h in ("x-hop", "keep-alive", "te", "trailer", "proxy-authorization", "proxy-foo",
              "upgrade"):
        assert h not in d["hdr"], (h, d["hdr"])
    assert "x-hop" not in joined(d, "Connection").lower()
    assert one(d, "X-End-To-End") == "yes"


def test_hop_by_hop_response_headers_removed(portico, backend):
    handler = B.echo(headers=[("Connection", "X-Hop-Resp"), ("X-Hop-Resp", "1"),
                              ("Keep-Alive", "timeout=5"), ("Proxy-Authenticate", "Basic"),
                              ("Proxy-Foo", "z"), ("Upgrade", "h2c"), ("Trailer", "X-T"),
                              ("X-E2E-Resp", "yes")])
    p, b = start(portico, backend, handler)
    r = get(p.port, "/")
    assert r.status == 200
    for h in ("x-hop-resp", "proxy-authenticate", "proxy-foo", "upgrade", "trailer"):
        assert not r.has_header(h), (h, r.headers)
    assert "timeout=5" not in r.header_all("Keep-Alive")
    assert "x-hop-resp" not in ", ".join(r.header_all("Connection")).lower()
    assert r.header("X-E2E-Resp") == "yes"


# --- forwarding headers


def test_xff_replaced_by_peer_when_peer_untrusted(portico, backend):
    p, b = start(portico, backend)
    d = seen(get(p.port, "/", [("X-Forwarded-For", "1.2.3.4")]))
    assert one(d, "X-Forwarded-For") == "127.0.0.1"


def test_xff_set_to_peer_when_absent(portico, backend):
    p, b = start(portico, backend)
    d = seen(get(p.port, "/"))
    assert one(d, "X-Forwarded-For") == "127.0.0.1"


def test_xff_appended_when_peer_trusted(portico, backend):
    b = backend(B.echo())
    cfg = proxy_config("app", upstreams={"app": upstream(b)})
    cfg["trusted_proxies"] = ["127.0.0.0/8"]
    p = portico(cfg)
    d = seen(get(p.port, "/", [("X-Forwarded-For", "1.2.3.4")]))
    assert one(d, "X-Forwarded-For").replace(" ", "") == "1.2.3.4,127.0.0.1"


def test_xff_trusted_as_single_address(portico, backend):
    b = backend(B.echo())
    cfg = proxy_config("app", upstreams={"app": upstream(b)})
    cfg["trusted_proxies"] = ["127.0.0.1"]
    p = portico(cfg)
    d = seen(get(p.port, "/", [("X-Forwarded-For", "1.2.3.4")]))
    assert one(d, "X-Forwarded-For").replace(" ", "") == "1.2.3.4,127.0.0.1"


def test_x_forwarded_proto_and_host(portico, backend):
    p, b = start(portico, backend)
    d = seen(get(p.port, "/", [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil")],
                 host="front.test:8080"))
    assert one(d, "X-Forwarded-Proto") == "http"
    assert one(d, "X-Forwarded-Host") == "front.test:8080"


def test_request_id_generated_echoed_and_seen_by_backend(portico, backend):
    p, b = start(portico, backend)
    r = get(p.port, "/")
    d = seen(r)
    rid = r.header("X-Request-Id")
    assert rid and rid.strip(), r.headers
    assert one(d, "X-Request-Id") == rid
    r2 = get(p.port, "/")
    assert r2.header("X-Request-Id") != rid, "request ids must differ between requests"


def test_well_formed_client_request_id_is_kept(portico, backend):
    p, b = start(portico, backend)
    r = get(p.port, "/", [("X-Request-Id", "abc-123_DEF.456")])
    d = seen(r)
    assert one(d, "X-Request-Id") == "abc-123_DEF.456"
    assert r.header("X-Request-Id") == "abc-123_DEF.456"


def test_malformed_client_request_id_is_replaced(portico, backend):
    p, b = start(portico, backend)
    bad = '<script>alert("x")</script> and spaces'
    r = get(p.port, "/", [("X-Request-Id", bad)])
    d = seen(r)
    rid = one(d, "X-Request-Id")
    assert rid and rid != bad
    assert r.header("X-Request-Id") == rid


def test_server_header_is_portico(portico, backend):
    p, b = start(portico, backend)
    r = get(p.port, "/")
    assert r.status == 200
    servers = r.header_all("Server")
    assert len(servers) == 1, r.headers
    assert "portico" in servers[0].lower()
    assert "backend-server" not in servers[0]


# --- bodies


def test_post_body_with_content_length_arrives_intact(portico, backend):
    p, b = start(portico, backend)
    body = os.urandom(300_000)
    d = seen(request(p.port, "POST", "/upload", [("Content-Type", "application/x-foo")], body))
    assert d["method"] == "POST"
    assert d["body_len"] == len(body)
    assert d["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_request_body_arrives_intact(portico, backend):
    p, b = start(portico, backend)
    parts = [os.urandom(n) for n in (1, 100, 70_000, 5, 200_000)]
    whole = b"".join(parts)
    with RawConn(p.port) as c:
        c.send(build_request("POST", "/up", [("Transfer-Encoding", "chunked")],
                             chunked_body(parts)))
        d = seen(c.read_response())
    assert d["body_len"] == len(whole)
    assert d["body_sha256"] == hashlib.sha256(whole).hexdigest()


def test_empty_post_body(portico, backend):
    p, b = start(portico, backend)
    d = seen(request(p.port, "POST", "/e", body=b""))
    assert d["body_len"] == 0


def test_chunked_response_passes_through(portico, backend):
    parts = [b"first ", os.urandom(50_000), b"", b" last"]
    p, b = start(portico, backend, B.chunked([x for x in parts if x]))
    with RawConn(p.port) as c:
        r = c.request("GET", "/c")
        assert r.status == 200
        assert r.body == b"".join(parts)
        r2 = c.request("GET", "/c")  # the connection is still usable
        assert r2.body == b"".join(parts)


def test_response_with_coding_before_chunked_is_502_not_relabelled(portico, backend):
    """A backend's Transfer-Encoding: gzip, chunked reached the client as plain chunked, the
    gzip bytes inside presented as the body. Portico decodes only chunked and no client here
    announced gzip in TE, so the response is refused as malformed (see h1_parse.c)."""
    gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
    b = backend(B.raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                      b"8\r\n" + gz + b"\r\n0\r\n\r\n"))
    p = portico(proxy_config("app", upstreams={"app": upstream(b)}))
    r = get(p.port, "/")
    assert r.status == 502, r
    assert gz not in r.body
    assert "gzip" not in (r.header("Transfer-Encoding") or "")


@pytest.mark.parametrize("body", [b"5\r\nhelloX\n0\r\n\r\n", b"5\r\nhello\rX0\r\n\r\n"],
                         ids=["wrong-byte-for-cr", "wrong-byte-for-lf"])
def test_response_chunk_data_not_followed_by_crlf_is_not_passed_on(portico, backend, body):
    """An upstream chunk whose data is followed by a wrong byte and LF (or CR and a wrong byte)
    is malformed: the client gets a 502, or, when the head already went out, a body cut short
    by a close; never a complete response as if the chunk had been well formed."""
    b = backend(B.raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body))
    p = portico(proxy_config("app", upstreams={"app": upstream(b)}))
    with RawConn(p.port) as c:
        c.send(build_request("GET", "/"))
        try:
            r = c.read_response()
        except (Closed, ConnectionResetError):
            r = None
        assert r is None or r.status == 502, r


def test_response_without_length_read_to_close(portico, backend):
    body = os.urandom(100_000)
    p, b = start(portico, backend, B.no_length(body))
    r = get(p.port, "/")
    assert r.status == 200
    assert r.body == body


def test_204_and_304_have_no_body_and_connection_stays_usable(portico, backend):
    handler = B.by_path({
        "/204": B.raw(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", keep=True),
        # a 304 may carry the Content-Length of the representation: no body follows
        "/304": B.raw(b"HTTP/1.1 304 Not Modified\r\nETag: \"e1\"\r\nContent-Length: 10\r\n\r\n",
                      keep=True),
    })
    p, b = start(portico, backend, handler)
    with RawConn(p.port) as c:
        r = c.request("GET", "/204")
        assert r.status == 204 and r.body == b""
        assert r.header("Transfer-Encoding") is None
        r = c.request("GET", "/304", [("If-None-Match", '"e1"')])
        assert r.status == 304 and r.body == b""
        assert r.header("ETag") == '"e1"'
        r = c.request("GET", "/after")
        d = seen(r)
        assert d["path"] == "/after"


def test_head_gets_no_body(portico, backend):
    p, b = start(portico, backend, B.stream(5000))
    with RawConn(p.port) as c:
        r = c.request("HEAD", "/")
        assert r.status == 200
        assert r.body == b""
        assert r.header("Content-Length") in (None, "5000")
        r = c.request("GET", "/")
        assert r.status == 200 and len(r.body) == 5000


def test_early_hints_forwarded_before_final_response(portico, backend):
    p, b = start(portico, backend, B.early_hints())
    with RawConn(p.port) as c:
        c.send(build_request("GET", "/eh"))
        first = c.read_response(allow_interim=True)
        assert first.status == 103, first
        assert "/style.css" in (first.header("Link") or ""), first
        final = c.read_response()
        assert seen(final)["path"] == "/eh"


def test_expect_100_continue(portico, backend):
    p, b = start(portico, backend)
    body = b"0123456789" * 100
    with RawConn(p.port) as c:
        c.send(build_request("POST", "/cont", [("Expect", "100-continue"),
                                               ("Content-Length", str(len(body)))]))
        interim = c.read_response(method="POST", allow_interim=True)
        assert interim.status == 100, interim
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.raw_head
        c.send(body)
        d = seen(c.read_response(method="POST"))
        assert d["body_len"] == len(body)
        assert d["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_expect_with_body_sent_at_once(portico, backend):
    # a client that does not wait for 100 Continue must also work
    p, b = start(portico, backend)
    body = b"x" * 5000
    with RawConn(p.port) as c:
        c.send(build_request("POST", "/cont", [("Expect", "100-continue")], body))
        d = seen(c.read_response(method="POST"))
        assert d["body_len"] == len(body)


# --- connections


def test_many_requests_on_one_client_connection(portico, backend):
    p, b = start(portico, backend)
    with RawConn(p.port) as c:
        for i in range(50):
            d = seen(c.request("GET", "/ka/%d" % i))
            assert d["path"] == "/ka/%d" % i
        r = c.request("POST", "/ka/post", body=b"abc")
        assert seen(r)["body_len"] == 3


def test_upstream_keepalive_reuses_connections(portico, backend):
    p, b = start(portico, backend)
    n = 20
    for i in range(n):
        assert get(p.port, "/u/%d" % i).status == 200
    assert b.wait_requests(n)
    assert b.connections <= n // 4, "backend saw %d TCP connections for %d requests" % (
        b.connections, n)


def test_pipelined_requests_answered_in_order(portico, backend):
    p, b = start(portico, backend)
    with RawConn(p.port) as c:
        c.send(b"".join(build_request("GET", "/p%d" % i) for i in (1, 2, 3)))
        for i in (1, 2, 3):
            assert seen(c.read_response())["path"] == "/p%d" % i


def test_pipelined_mixed_with_body(portico, backend):
    p, b = start(portico, backend)
    with RawConn(p.port) as c:
        c.send(build_request("POST", "/a", body=b"hello") + build_request("GET", "/b")
               + build_request("POST", "/c", [("Transfer-Encoding", "chunked")],
                               chunked_body([b"xy", b"z"])))
        d = seen(c.read_response())
        assert (d["path"], d["body_len"]) == ("/a", 5)
        d = seen(c.read_response())
        assert (d["path"], d["body_len"]) == ("/b", 0)
        d = seen(c.read_response())
        assert (d["path"], d["body_len"]) == ("/c", 3)


def test_connection_close_from_client_is_honoured(portico, backend):
    p, b = start(portico, backend)
    with RawConn(p.port) as c:
        r = c.request("GET", "/", [("Connection", "close")])
        assert r.status == 200
        assert c.wait_closed(IO_TIMEOUT)


def test_http10_client_gets_response_and_close(portico, backend):
    p, b = start(portico, backend)
    with RawConn(p.port) as c:
        c.send(b"GET /old HTTP/1.0\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert json.loads(r.body)["path"] == "/old"
        assert c.wait_closed(IO_TIMEOUT)


def test_concurrent_clients(portico, backend):
    p, b = start(portico, backend, B.slow(0.2))
    results = []

    def one_client(i):
        try:
            r = get(p.port, "/c/%d" % i)
            results.append(seen(r)["path"] == "/c/%d" % i)
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    ts = [threading.Thread(target=one_client, args=(i,)) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(IO_TIMEOUT * 2)
    assert results == [True] * 20


def test_weighted_targets_all_receive_traffic(portico, backend):
    b1 = backend(B.echo(headers=[("X-Which", "1")]), "b1")
    b2 = backend(B.echo(headers=[("X-Which", "2")]), "b2")
    p = portico(proxy_config("app", upstreams={"app": {"targets": [
        {"url": b1.url, "weight": 1}, {"url": b2.url, "weight": 3}]}}))
    counts = {"1": 0, "2": 0}
    for i in range(40):
        counts[get(p.port, "/").header("X-Which")] += 1
    assert counts["1"] > 0 and counts["2"] > counts["1"], counts


# --- more edges


def test_repeated_response_headers_stay_separate(portico, backend):
    handler = B.echo(headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2, c; Path=/x")])
    p, b = start(portico, backend, handler)
    r = get(p.port, "/")
    assert r.header_all("Set-Cookie") == ["a=1; Path=/", "b=2, c; Path=/x"]


def test_large_response_header_passes(portico, backend):
    big = "v" * 6000
    p, b = start(portico, backend, B.echo(headers=[("X-Big", big)]))
    r = get(p.port, "/")
    assert r.header("X-Big") == big


def test_encoded_slash_stays_encoded_to_backend(portico, backend):
    b = backend(B.echo())
    p = portico(proxy_config("app", match="/api/*", upstreams={"app": upstream(b)},
                             strip_prefix=True))
    d = seen(get(p.port, "/api/a%2Fb?q=%2F"))
    assert d["path"].lower() == "/a%2fb", d["target"]
    assert d["query"] == "q=%2F"


def test_chunked_request_with_trailers(portico, backend):
    p, b = start(portico, backend)
    with RawConn(p.port) as c:
        c.send(build_request("POST", "/t", [("Transfer-Encoding", "chunked")],
                             chunked_body([b"abc", b"defg"], trailers="X-Trailer: 1\r\n")))
        d = seen(c.read_response())
        assert d["body_len"] == 7
        assert d["body_sha256"] == hashlib.sha256(b"abcdefg").hexdigest()
        assert seen(c.request("GET", "/after"))["path"] == "/after"


def test_request_then_half_close_still_answered(portico, backend):
    p, b = start(portico, backend)
    with RawConn(p.port) as c:
        c.send(build_request("GET", "/half"))
        c.sock.shutdown(1)  # SHUT_WR: the client sends FIN after its request
        r = c.read_response()
        assert seen(r)["path"] == "/half"


def test_client_gone_mid_request_does_not_hurt(portico, backend):
    p, b = start(portico, backend, B.slow(0.5))
    for i in range(5):
        c = RawConn(p.port)
        c.send(build_request("GET", "/gone/%d" % i))
        c.close()
    assert b.wait_requests(1)
    assert seen(get(p.port, "/still"))["path"] == "/still"
    assert p.alive()


def test_client_gone_mid_upload_does_not_hurt(portico, backend):
    p, b = start(portico, backend)
    c = RawConn(p.port)
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
    c.close()
    d = seen(request(p.port, "POST", "/after", body=b"12345"))
    assert d["body_len"] == 5
    assert p.alive()


def test_slow_reading_client_backpressure_bounds_memory(portico, backend):
    from helpers.common import SANITIZE, gen_sha256
    n = 256 << 20
    p, b = start(portico, backend, B.stream(n))
    h = hashlib.sha256()
    with RawConn(p.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        c.send(build_request("GET", "/big"))
        r = c.read_head()
        assert r.status == 200
        assert int(r.header("Content-Length")) == n
        time.sleep(1.0)  # the client stalls: Portico must stop reading from the backend
        if not SANITIZE:
            rss = p.status_kb("VmRSS")
            assert rss < 64 * 1024, "Portico RSS %d KiB while its client stalls" % rss
        got = 0
        if c.buf:
            h.update(bytes(c.buf))
            got += len(c.buf)
            c.buf.clear()
        while got < n:
            d = c.sock.recv(1 << 20)
            assert d, "connection closed after %d of %d bytes" % (got, n)
            h.update(d)
            got += len(d)
    assert got == n
    assert h.hexdigest() == gen_sha256(n)
