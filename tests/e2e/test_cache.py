"""The edge cache (issue 12, section 1): RFC 9111 freshness and storing rules, Vary, revalidation,
stale-while-revalidate and stale-if-error, request coalescing, ranges and HEAD from stored
responses, invalidation, purge through the admin API, Cache-Status, the disk tier, metrics.

Every test runs a real origin (helpers/backends.py) that counts the requests it gets: "served from
the cache" is asserted as "the origin saw one request"."""

import concurrent.futures
import email.utils
import json
import os
import threading
import time

import pytest

from helpers import admin as A
from helpers.client import RawConn, get, request
from helpers.common import IO_TIMEOUT, wait_until


class Origin:
    """An origin whose answers a test sets per path: routes[path] = (status, headers, body) or a
    function(req, n) -> (status, headers, body), n being the path's request number (1-based).
    hits[path] counts requests; seen[path] keeps them."""

    def __init__(self, backend, delay=0.0):
        self.routes = {}
        self.hits = {}
        self.seen = {}
        self.delay = delay
        self.lock = threading.Lock()
        self.b = backend(self.handle, "origin")

    def handle(self, req, w):
        with self.lock:
            n = self.hits.get(req.path, 0) + 1
            self.hits[req.path] = n
            self.seen.setdefault(req.path, []).append(req)
        if self.delay:
            time.sleep(self.delay)
        r = self.routes.get(req.path, (404, [("Cache-Control", "no-store")], b"none"))
        if callable(r):
            r = r(req, n)
        status, headers, body = r
        w.respond(status, list(headers), body)

    def n(self, path):
        with self.lock:
            return self.hits.get(path, 0)


def config(origin, cache=True, top=None, match="/*", extra_routes=(), hosts=None):
    route = {"match": match, "proxy": {"to": "app"}, "cache": cache}
    site = {"routes": list(extra_routes) + [route]}
    if hosts:
        site["hosts"] = hosts
    cfg = {"upstreams": {"app": {"targets": [{"url": origin.b.url}]}}, "sites": [site]}
    if top is not None:
        cfg["cache"] = top
    return cfg


@pytest.fixture
def cached(portico, backend):
    def start(cache=True, top=None, delay=0.0, **kw):
        o = Origin(backend, delay)
        p = portico(config(o, cache, top, **kw))
        return p, o

    return start


def cc(value, body=b"hello", extra=()):
    return (200, [("Cache-Control", value), ("Content-Type", "text/plain")] + list(extra), body)


def http_date(offset=0.0):
    return email.utils.formatdate(time.time() + offset, usegmt=True)


# --- freshness and storing


def test_a_fresh_response_is_served_from_the_cache_with_age_and_cache_status(cached):
    p, o = cached()
    o.routes["/a"] = cc("max-age=60")
    r1 = get(p.port, "/a")
    assert r1.status == 200 and r1.body == b"hello"
    assert "fwd=uri-miss" in r1.header("cache-status") and "stored" in r1.header("cache-status")
    r2 = get(p.port, "/a")
    assert r2.status == 200 and r2.body == b"hello"
    assert o.n("/a") == 1
    assert r2.header("age") is not None and int(r2.header("age")) >= 0
    assert r2.header("cache-status").startswith("Portico; hit; ttl=")
    assert r2.header("content-type") == "text/plain"


@pytest.mark.parametrize("value", ["no-store", "private", "max-age=60, no-store",
                                   "max-age=60, private"])
def test_no_store_and_private_responses_are_not_stored(cached, value):
    p, o = cached()
    o.routes["/a"] = cc(value)
    for _ in range(3):
        assert get(p.port, "/a").body == b"hello"
    assert o.n("/a") == 3


def test_s_maxage_wins_over_max_age_for_a_shared_cache(cached):
    p, o = cached()
    o.routes["/a"] = cc("max-age=0, s-maxage=60")
    get(p.port, "/a")
    assert get(p.port, "/a").header("cache-status").startswith("Portico; hit")
    assert o.n("/a") == 1


def test_expires_gives_freshness_and_an_invalid_expires_is_already_stale(cached):
    p, o = cached()
    o.routes["/e"] = (200, [("Date", http_date()), ("Expires", http_date(60))], b"x")
    o.routes["/bad"] = (200, [("Date", http_date()), ("Expires", "0")], b"x")
    for _ in range(2):
        get(p.port, "/e")
        get(p.port, "/bad")
    assert o.n("/e") == 1
    assert o.n("/bad") == 2


def test_heuristic_freshness_only_for_heuristically_cacheable_statuses(cached):
    p, o = cached()
    old = http_date(-100000)
    o.routes["/h"] = (200, [("Last-Modified", old), ("Date", http_date())], b"x")
    o.routes["/r"] = (302, [("Last-Modified", old), ("Location", "/h")], b"")
    for _ in range(2):
        get(p.port, "/h")
        get(p.port, "/r")
    assert o.n("/h") == 1
    assert o.n("/r") == 2


def test_set_cookie_responses_are_stored_only_when_the_route_says_so(cached):
    p, o = cached()
    o.routes["/c"] = cc("max-age=60", extra=[("Set-Cookie", "s=1")])
    for _ in range(2):
        get(p.port, "/c")
    assert o.n("/c") == 2
    p2, o2 = cached(cache={"cookies": True})
    o2.routes["/c"] = cc("max-age=60", extra=[("Set-Cookie", "s=1")])
    get(p2.port, "/c")
    r = get(p2.port, "/c")
    assert o2.n("/c") == 1 and r.header("set-cookie") == "s=1"


def test_a_request_with_authorization_is_answered_from_the_cache_only_when_allowed(cached):
    p, o = cached()
    o.routes["/plain"] = cc("max-age=60")
    o.routes["/pub"] = cc("public, max-age=60")
    auth = {"Authorization": "Bearer x"}
    for _ in range(2):
        get(p.port, "/plain", auth)
        get(p.port, "/pub", auth)
    assert o.n("/plain") == 2
    assert o.n("/pub") == 1


def test_route_ttls_default_and_by_status(cached):
    p, o = cached(cache={"default_ttl": "60s", "ttl": {404: "30s"}})
    o.routes["/d"] = (200, [("Content-Type", "text/plain")], b"d")
    o.routes["/nf"] = (404, [("Cache-Control", "max-age=0")], b"nf")
    for _ in range(2):
        get(p.port, "/d")
        assert get(p.port, "/nf").status == 404
    assert o.n("/d") == 1
    assert o.n("/nf") == 1


def test_request_no_cache_and_max_age_zero_go_to_the_origin(cached):
    p, o = cached()
    o.routes["/a"] = cc("max-age=60", extra=[("ETag", '"v1"')])
    get(p.port, "/a")
    get(p.port, "/a", {"Cache-Control": "no-cache"})
    get(p.port, "/a", {"Cache-Control": "max-age=0"})
    assert o.n("/a") == 3
    r = get(p.port, "/a", {"Cache-Control": "max-stale=1000"})
    assert r.status == 200


def test_only_if_cached_without_a_stored_response_is_504(cached):
    p, o = cached()
    o.routes["/a"] = cc("max-age=60")
    assert get(p.port, "/a", {"Cache-Control": "only-if-cached"}).status == 504
    assert o.n("/a") == 0
    get(p.port, "/a")
    assert get(p.port, "/a", {"Cache-Control": "only-if-cached"}).status == 200


# --- keys and Vary


def test_vary_keeps_variants_and_normalises_the_selecting_header(cached):
    p, o = cached()
    o.routes["/v"] = lambda req, n: (200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"),
                                           ("X-N", str(n))], b"v%d" % n)
    a = get(p.port, "/v", {"Accept-Encoding": "gzip, br"})
    b = get(p.port, "/v", {"Accept-Encoding": "br,gzip"})
    c = get(p.port, "/v", {"Accept-Encoding": "BR ,  GZIP"})
    d = get(p.port, "/v", {"Accept-Encoding": "identity"})
    e = get(p.port, "/v")
    assert a.body == b.body == c.body == b"v1"
    assert d.body == b"v2" and e.body == b"v3"
    assert get(p.port, "/v", {"Accept-Encoding": "identity"}).body == b"v2"
    assert get(p.port, "/v").body == b"v3"
    assert o.n("/v") == 3
    assert "vary-miss" in d.header("cache-status")


def test_vary_star_is_never_served_from_the_cache(cached):
    p, o = cached()
    o.routes["/s"] = (200, [("Cache-Control", "max-age=60"), ("Vary", "*")], b"s")
    for _ in range(3):
        get(p.port, "/s")
    assert o.n("/s") == 3


def test_key_query_parameters_and_key_headers(cached):
    p, o = cached(cache={"key": {"query": ["a", "b"], "headers": ["X-Tenant"]}})
    o.routes["/q"] = lambda req, n: (200, [("Cache-Control", "max-age=60")], b"q%d" % n)
    assert get(p.port, "/q?a=1&b=2&utm=x").body == b"q1"
    assert get(p.port, "/q?b=2&a=1&utm=y").body == b"q1"
    assert get(p.port, "/q?a=2").body == b"q2"
    assert get(p.port, "/q?a=1&b=2", {"X-Tenant": "t2"}).body == b"q3"
    assert get(p.port, "/q?a=1&b=2", {"X-Tenant": "t2"}).body == b"q3"
    assert o.n("/q") == 3


def test_the_key_has_the_host_as_routed_and_unkeyed_headers_change_nothing(cached):
    p, o = cached(hosts=["*.example.test"])
    o.routes["/k"] = lambda req, n: (200, [("Cache-Control", "max-age=60")],
                                      ("%s %s" % (req.header("host"), n)).encode())
    r1 = get(p.port, "/k", {"X-Forwarded-Host": "evil.test"}, host="a.example.test")
    r2 = get(p.port, "/k", host="a.example.test")
    r3 = get(p.port, "/k", host="b.example.test")
    assert r1.body == r2.body
    assert r3.body != r1.body
    assert o.n("/k") == 2


# --- validation


def test_a_stale_response_is_revalidated_and_a_304_refreshes_its_fields(cached):
    p, o = cached()

    def h(req, n):
        if n == 1:
            return (200, [("Cache-Control", "max-age=1"), ("ETag", '"e1"'), ("X-Version", "1")],
                    b"body")
        assert req.header("if-none-match") == '"e1"', req.headers
        return (304, [("Cache-Control", "max-age=60"), ("ETag", '"e1"'), ("X-Version", "2")], b"")

    o.routes["/r"] = h
    get(p.port, "/r")
    time.sleep(1.6)
    r = get(p.port, "/r")
    assert r.status == 200 and r.body == b"body" and r.header("x-version") == "2"
    assert "fwd=stale" in r.header("cache-status")
    r = get(p.port, "/r")
    assert r.body == b"body" and r.header("x-version") == "2"
    assert o.n("/r") == 2


def test_a_clients_conditional_request_is_answered_from_the_cache(cached):
    p, o = cached()
    lm = http_date(-3600)
    o.routes["/c"] = cc("max-age=60", extra=[("ETag", 'W/"t1"'), ("Last-Modified", lm)])
    get(p.port, "/c")
    r = get(p.port, "/c", {"If-None-Match": '"t1"'})
    assert r.status == 304 and r.body == b""
    r = get(p.port, "/c", {"If-Modified-Since": http_date()})
    assert r.status == 304
    r = get(p.port, "/c", {"If-None-Match": '"other"'})
    assert r.status == 200 and r.body == b"hello"
    assert o.n("/c") == 1


def test_ranges_and_head_are_served_from_a_stored_response(cached):
    p, o = cached()
    o.routes["/big"] = cc("max-age=60", body=bytes(range(256)) * 40, extra=[("ETag", '"b"')])
    get(p.port, "/big")
    r = get(p.port, "/big", {"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == bytes(range(10, 20))
    assert r.header("content-range") == "bytes 10-19/10240"
    r = get(p.port, "/big", {"Range": "bytes=-5"})
    assert r.status == 206 and r.body == bytes(range(251, 256))
    r = get(p.port, "/big", {"Range": "bytes=99999-"})
    assert r.status == 416
    r = get(p.port, "/big", {"Range": "bytes=0-3", "If-Range": '"other"'})
    assert r.status == 200 and len(r.body) == 10240
    r = request(p.port, "HEAD", "/big")
    assert r.status == 200 and r.header("content-length") == "10240" and r.body == b""
    assert o.n("/big") == 1


# --- stale-while-revalidate and stale-if-error


def test_stale_while_revalidate_answers_stale_and_refreshes_once_in_the_background(cached):
    p, o = cached()
    o.routes["/w"] = lambda req, n: (200, [("Cache-Control", "max-age=%d, stale-while-revalidate=60"
                                            % (1 if n == 1 else 600))], b"w%d" % n)
    assert get(p.port, "/w").body == b"w1"
    time.sleep(1.6)
    r = get(p.port, "/w")
    assert r.body == b"w1"  # the stale copy, at once
    wait_until(lambda: o.n("/w") == 2, IO_TIMEOUT, what="the background refresh")
    wait_until(lambda: get(p.port, "/w").body == b"w2", IO_TIMEOUT, what="the refreshed copy")
    time.sleep(0.2)
    assert o.n("/w") == 2


def test_stale_if_error_answers_with_the_stale_copy_when_the_origin_fails(cached):
    p, o = cached()
    o.routes["/s"] = lambda req, n: (cc("max-age=1, stale-if-error=60", body=b"good") if n == 1
                                     else (503, [], b"down"))
    assert get(p.port, "/s").body == b"good"
    time.sleep(1.6)
    r = get(p.port, "/s")
    assert r.status == 200 and r.body == b"good"
    assert o.n("/s") == 2
    o.routes["/t"] = lambda req, n: (cc("max-age=1", body=b"good") if n == 1 else (503, [], b"down"))
    get(p.port, "/t")
    time.sleep(1.6)
    assert get(p.port, "/t").status == 503  # no stale-if-error: the origin's answer


def test_stale_if_error_when_the_origin_is_unreachable(portico, backend):
    o = Origin(backend)
    o.routes["/s"] = cc("max-age=1, stale-if-error=60", body=b"kept")
    p = portico(config(o))
    assert get(p.port, "/s").body == b"kept"
    o.b.close()
    time.sleep(1.6)
    r = get(p.port, "/s")
    assert r.status == 200 and r.body == b"kept"


# --- coalescing


def test_concurrent_misses_for_one_key_reach_the_origin_once(cached):
    """PORTICO_CACHE_COALESCE=1000 runs the issue's figure: 1,000 concurrent requests (one
    connection each) for one cold key; make test runs 100."""
    n = int(os.environ.get("PORTICO_CACHE_COALESCE", "100"))
    # The origin holds its answer until every client has connected and sent its request.
    p, o = cached(delay=1.0 + n / 1000.0)  # within lock_timeout (5s)
    o.routes["/hot"] = cc("max-age=60", body=b"x" * 5000)
    sent = threading.Semaphore(0)
    out = [None] * n

    def one(i):
        with RawConn(p.port, timeout=IO_TIMEOUT * 3) as c:
            c.send(b"GET /hot HTTP/1.1\r\nHost: localhost\r\n\r\n")
            sent.release()
            out[i] = c.read_response("GET")

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(IO_TIMEOUT * 4)
    assert all(r is not None and r.status == 200 and r.body == b"x" * 5000 for r in out)
    assert o.n("/hot") == 1


def test_uncacheable_answers_release_the_waiters_to_the_origin(cached):
    p, o = cached(delay=0.3)
    o.routes["/u"] = cc("no-store", body=b"u")
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        rs = list(ex.map(lambda _: get(p.port, "/u"), range(8)))
    assert all(r.body == b"u" for r in rs)
    assert o.n("/u") == 8


# --- invalidation and purge


def test_unsafe_methods_invalidate_the_uri_and_location(cached):
    p, o = cached()
    o.routes["/item"] = lambda req, n: (201, [("Location", "/other")], b"made") \
        if req.method == "POST" else cc("max-age=60", body=b"i%d" % n)
    o.routes["/other"] = lambda req, n: cc("max-age=60", body=b"o%d" % n)
    assert get(p.port, "/item").body == b"i1"
    assert get(p.port, "/other").body == b"o1"
    assert request(p.port, "POST", "/item", body=b"x").status == 201
    assert get(p.port, "/item").body == b"i3"
    assert get(p.port, "/other").body == b"o2"


def admin_up(p):
    try:
        return A.call(p, "GET", "/live")[0] == 200
    except OSError:
        return False


def with_admin(portico, o, tmp_path):
    """Portico caching o's answers, with an admin listener; returns (portico, a write token)."""
    toks, tf = A.tokens(tmp_path, [("w", "write")])

    def build(port):
        c = config(o)
        c["admin"] = {"listen": "127.0.0.1:%d" % A.admin_port(port), "tokens_file": tf}
        return c

    p = portico(build)
    wait_until(lambda: admin_up(p), 10, what="admin")
    return p, toks[0]


def test_purge_by_url_prefix_tag_and_all_through_the_admin_api(portico, backend, tmp_path):
    o = Origin(backend)
    for path in ("/p/1", "/p/2", "/q/1"):
        o.routes[path] = (lambda pth: lambda req, n: cc("max-age=600", body=("%s %d" % (pth, n)).encode(),
                                                       extra=[("Cache-Tag", "all t" + pth[1])]))(path)
    p, tok = with_admin(portico, o, tmp_path)
    for path in ("/p/1", "/p/2", "/q/1"):
        r = get(p.port, path)
        assert r.header("cache-tag") is None  # tag fields are stripped
    assert [get(p.port, x).body for x in ("/p/1", "/p/2", "/q/1")] == [b"/p/1 1", b"/p/2 1", b"/q/1 1"]

    def purge(body):
        st, _, out = A.call(p, "POST", "/api/cache/purge", tok, json.dumps(body))
        assert st == 200, out
        return json.loads(out)["purged"]

    assert purge({"url": "http://LOCALHOST/p/1"}) == 1
    assert get(p.port, "/p/1").body == b"/p/1 2"
    assert purge({"prefix": "http://localhost/p/"}) == 2
    assert get(p.port, "/p/2").body == b"/p/2 2"
    assert purge({"tag": "tq"}) == 1
    assert get(p.port, "/q/1").body == b"/q/1 2"
    assert purge({"all": True}) == 2  # /p/2 and /q/1: /p/1 was not fetched again
    assert get(p.port, "/q/1").body == b"/q/1 3"
    st, _, out = A.call(p, "POST", "/api/cache/purge", tok, json.dumps({"url": 3}))
    assert st == 400 and b"url" in out
    st, _, out = A.call(p, "POST", "/api/cache/purge", tok, json.dumps({"tag": "a", "all": True}))
    assert st == 400
    st, _, out = A.call(p, "GET", "/api/cache", tok)
    assert st == 200 and json.loads(out)["objects"] == 1


# --- limits, tiers, metrics


def test_responses_over_max_object_stream_through_and_are_not_stored(cached):
    p, o = cached(top={"memory": "8m", "max_object": 1000})
    o.routes["/big"] = cc("max-age=60", body=b"z" * 5000)
    o.routes["/small"] = cc("max-age=60", body=b"z" * 500)
    for _ in range(2):
        assert get(p.port, "/big").body == b"z" * 5000
        assert get(p.port, "/small").body == b"z" * 500
    assert o.n("/big") == 2 and o.n("/small") == 1


def test_a_chunked_response_is_stored_whole(portico, backend):
    def h(req, w):
        w.head(200, [("Transfer-Encoding", "chunked"), ("Cache-Control", "max-age=60")])
        for part in (b"abc", b"defg", b"h" * 3000):
            w.raw(b"%x\r\n" % len(part) + part + b"\r\n")
        w.raw(b"0\r\n\r\n")

    o = Origin(backend)
    p = portico(config(o))
    o.b.handler = h
    want = b"abcdefg" + b"h" * 3000
    assert get(p.port, "/c").body == want
    r = get(p.port, "/c")
    assert r.body == want and r.header("content-length") == str(len(want))
    assert len(o.b.requests) == 1


def test_the_disk_tier_survives_a_restart_and_a_corrupt_file_is_a_miss(portico, backend, tmp_path):
    o = Origin(backend)
    o.routes["/d"] = lambda req, n: cc("max-age=600", body=b"disk %d" % n)
    o.routes["/e"] = lambda req, n: cc("max-age=600", body=b"edisk %d" % n)
    d = tmp_path / "cache"
    cfg = config(o, top={"disk": {"path": str(d)}})
    p = portico(cfg)
    assert get(p.port, "/d").body == b"disk 1"
    assert get(p.port, "/e").body == b"edisk 1"

    def files():
        return sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs
                      if not f.startswith("."))

    wait_until(lambda: len(files()) >= 2, IO_TIMEOUT, what="the disk tier's files")
    p.stop()
    found = [f for f in files() if b"edisk" in open(f, "rb").read()]
    assert len(found) == 1
    with open(found[0], "r+b") as f:  # flip one body byte of /e
        data = f.read()
        i = data.index(b"edisk")
        f.seek(i)
        f.write(b"X")
    p2 = portico(cfg)
    assert get(p2.port, "/d").body == b"disk 1"
    assert get(p2.port, "/e").body == b"edisk 2"
    assert o.n("/d") == 1 and o.n("/e") == 2


def test_cache_metrics_count_hits_misses_and_stored(portico, backend, tmp_path):
    o = Origin(backend)
    o.routes["/m"] = cc("max-age=60")
    p, tok = with_admin(portico, o, tmp_path)
    for _ in range(3):
        get(p.port, "/m")
    st, _, out = A.call(p, "GET", "/metrics", tok)
    text = out.decode()
    assert 'portico_cache_requests_total{outcome="hit"} 2' in text
    assert 'portico_cache_requests_total{outcome="miss"} 1' in text
    assert "portico_cache_stored_total 1" in text
    assert 'portico_cache_objects{tier="memory"} 1' in text


def test_a_route_without_cache_is_untouched(portico, backend):
    o = Origin(backend)
    o.routes["/a"] = cc("max-age=60")
    p = portico(config(o, cache=False))
    for _ in range(2):
        r = get(p.port, "/a")
        assert r.header("cache-status") is None
    assert o.n("/a") == 2


def test_cache_config_errors_name_the_key(portico_bin, tmp_path):
    import subprocess
    bad = [
        ("routes:\n  - match: /\n    respond: {status: 200}\n    cache: true\n", "proxy routes"),
        ("cache: {memory: 1m, max_object: 2m}\nroutes:\n  - match: /\n    respond: {status: 200}\n",
         "max_object"),
        ("upstreams: {a: {targets: [{url: 'http://127.0.0.1:9'}]}}\nroutes:\n  - match: /\n"
         "    proxy: {to: a}\n    cache: {ttl: {99: 1s}}\n", "statuses"),
        ("upstreams: {a: {targets: [{url: 'http://127.0.0.1:9'}]}}\nroutes:\n  - match: /\n"
         "    proxy: {to: a}\n    cache: {key: {query: some}}\n", "key.query"),
    ]
    for text, want in bad:
        f = tmp_path / "c.yaml"
        f.write_text("listen: [{addr: '127.0.0.1:0'}]\n" + text)
        r = subprocess.run([portico_bin, "check", "-c", str(f)], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode != 0 and want in r.stderr, (text, r.stderr)


def test_http2_clients_get_hits_ranges_and_304s_from_the_cache(portico, backend):
    import subprocess
    o = Origin(backend)
    o.routes["/h2"] = cc("max-age=60", body=b"0123456789" * 100, extra=[("ETag", '"h"')])

    def build(port):
        c = config(o)
        c["listen"] = [{"addr": "127.0.0.1:%d" % port, "http2": True}]
        return c

    p = portico(build)

    def curl(*args):
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-D", "-"] + list(args) +
                           ["http://127.0.0.1:%d/h2" % p.port], capture_output=True, timeout=20)
        assert r.returncode == 0, r
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        return head.decode().lower(), body

    head, body = curl()
    assert head.startswith("http/2 200") and body == b"0123456789" * 100
    head, body = curl()
    assert "cache-status: portico; hit" in head and body == b"0123456789" * 100
    head, body = curl("-H", "Range: bytes=5-14")
    assert head.startswith("http/2 206") and body == b"5678901234"
    head, body = curl("-H", 'If-None-Match: "h"')
    assert head.startswith("http/2 304") and body == b""
    assert o.n("/h2") == 1


def test_compressed_variants_are_stored_once_and_served_many_times(portico, backend):
    import gzip
    o = Origin(backend)
    body = json.dumps([{"id": i, "name": "item %d" % i} for i in range(300)]).encode()
    o.routes["/j"] = (200, [("Cache-Control", "max-age=60"), ("Content-Type", "application/json"),
                            ("ETag", '"j1"')], body)
    cfg = config(o)
    cfg["sites"][0]["routes"][0]["compress"] = {"algorithms": ["gzip"]}
    p = portico(cfg)
    a = get(p.port, "/j", {"Accept-Encoding": "gzip"})
    b = get(p.port, "/j", {"Accept-Encoding": "gzip"})
    assert a.header("content-encoding") == b.header("content-encoding") == "gzip"
    assert gzip.decompress(a.body) == gzip.decompress(b.body) == body
    assert b.header("cache-status").startswith("Portico; hit")
    assert "accept-encoding" in b.header("vary").lower()
    assert b.header("etag") == 'W/"j1"'
    c = get(p.port, "/j")
    assert c.header("content-encoding") is None and c.body == body
    assert get(p.port, "/j").body == body
    assert o.n("/j") == 2


def test_a_304_refresh_keeps_the_routes_ttls(cached):
    """A response with no freshness of its own lives by the route's default_ttl, also after a
    304 refreshed it."""
    p, o = cached(cache={"default_ttl": "60s"})
    o.routes["/d"] = lambda req, n: ((200, [("ETag", '"d"')], b"dd") if n == 1
                                     else (304, [("ETag", '"d"')], b""))
    assert get(p.port, "/d").body == b"dd"
    r = get(p.port, "/d", {"Cache-Control": "no-cache"})
    assert r.status == 200 and r.body == b"dd"
    r = get(p.port, "/d")
    assert r.body == b"dd" and r.header("cache-status").startswith("Portico; hit")
    assert o.n("/d") == 2
