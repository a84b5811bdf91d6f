"""Rate limits (issue 13, section 2): GCRA with a burst, shared by all workers, keyed by the
client address (behind trusted_proxies), a header, a cookie, a query parameter or the route;
429 with Retry-After and the IETF RateLimit fields; a site's limit is one budget for its
routes; a request the limit refuses never reaches the backend."""

import subprocess

from helpers import admin as A
from helpers import backends as B
from helpers.client import RawConn, build_request, get


def start(portico, backend, route_limit=None, site_limit=None, workers=1, extra=None):
    b = backend(B.echo())
    route = {"match": "/*", "proxy": {"to": "app"}}
    if route_limit is not None:
        route["rate_limit"] = route_limit
    other = {"match": "/other/*", "proxy": {"to": "app"}}
    site = {"routes": [other, route]}
    if site_limit is not None:
        site["rate_limit"] = site_limit
    cfg = {"workers": workers, "upstreams": {"app": {"targets": [{"url": b.url}]}},
           "sites": [site]}
    cfg.update(extra or {})
    return portico(cfg), b


def statuses(p, n, path="/x", headers=None):
    return [get(p.port, path, headers).status for _ in range(n)]


def test_a_burst_then_429_with_retry_after_and_ratelimit_fields(portico, backend):
    p, b = start(portico, backend, {"rate": "1/m", "burst": 3, "name": "api"})
    assert statuses(p, 3) == [200, 200, 200]
    r = get(p.port, "/x")
    assert r.status == 429, r
    assert 1 <= int(r.header("retry-after")) <= 60
    assert r.header("ratelimit-policy") == '"api";q=3;w=180'
    assert r.header("ratelimit").startswith('"api";r=0;t=')
    assert len(b.requests) == 3  # the refused one never reached the backend


def test_keys_by_header_and_a_request_without_it_is_not_counted(portico, backend):
    p, b = start(portico, backend, {"rate": "1/h", "burst": 1, "key": ["header:X-Api-Key"]})
    assert statuses(p, 2, headers={"X-Api-Key": "a"}) == [200, 429]
    assert statuses(p, 2, headers={"X-Api-Key": "b"}) == [200, 429]
    assert statuses(p, 3) == [200, 200, 200]


def test_keys_by_cookie_query_and_combined_parts(portico, backend):
    p, _ = start(portico, backend, {"rate": "1/h", "key": ["cookie:sid", "query:page"]})
    assert get(p.port, "/x?page=1", {"Cookie": "a=b; sid=s1"}).status == 200
    assert get(p.port, "/x?page=1", {"Cookie": "sid=s1"}).status == 429
    assert get(p.port, "/x?page=2", {"Cookie": "sid=s1"}).status == 200
    assert get(p.port, "/x?page=1", {"Cookie": "sid=s2"}).status == 200


def test_the_client_address_is_the_one_behind_trusted_proxies(portico, backend):
    p, _ = start(portico, backend, {"rate": "1/h"},
                 extra={"trusted_proxies": ["127.0.0.1/32"]})
    xff = lambda a: {"X-Forwarded-For": a}  # noqa: E731
    assert get(p.port, "/x", xff("192.0.2.1")).status == 200
    assert get(p.port, "/x", xff("192.0.2.1")).status == 429
    assert get(p.port, "/x", xff("192.0.2.2")).status == 200


def test_the_limit_is_shared_by_all_workers(portico, backend):
    p, b = start(portico, backend, {"rate": "1/h", "burst": 5, "key": ["route"]}, workers=4)
    got = []
    for _ in range(20):  # a connection each: the kernel spreads them over the workers
        with RawConn(p.port) as c:
            c.send(build_request("GET", "/x"))
            got.append(c.read_response().status)
    assert got.count(200) == 5 and got.count(429) == 15
    assert len(b.requests) == 5


def test_a_sites_limit_is_one_budget_and_a_routes_replaces_it(portico, backend):
    p, _ = start(portico, backend, site_limit={"rate": "1/h", "burst": 2})
    assert get(p.port, "/x").status == 200
    assert get(p.port, "/other/y").status == 200
    assert get(p.port, "/x").status == 429
    q, _ = start(portico, backend, route_limit={"rate": "1/h", "burst": 1},
                 site_limit={"rate": "1/h", "burst": 5})
    assert statuses(q, 2) == [200, 429]
    assert statuses(q, 4, "/other/z") == [200] * 4
    r, _ = start(portico, backend, route_limit=False, site_limit={"rate": "1/h", "burst": 1})
    assert statuses(r, 3) == [200] * 3
    assert statuses(r, 2, "/other/z") == [200, 429]


def test_refusals_are_counted_in_the_metrics(portico, backend, tmp_path):
    toks, tf = A.tokens(tmp_path, [("r", "read")])
    b = backend(B.echo())

    def cfg(port):
        return {"admin": {"listen": "127.0.0.1:%d" % A.admin_port(port), "tokens_file": tf},
                "upstreams": {"app": {"targets": [{"url": b.url}]}},
                "routes": [{"match": "/*", "proxy": {"to": "app"}, "rate_limit": {"rate": "1/h"}}]}

    p = portico(cfg)
    assert statuses(p, 3) == [200, 429, 429]
    st, _, out = A.call(p, "GET", "/metrics", toks[0])
    assert st == 200 and 'portico_guard_refusals_total{guard="rate_limit"} 2' in out.decode()


def test_rate_limit_config_errors_name_the_key(portico_bin, tmp_path):
    bad = [("{rate: 10/x}", "N/s, N/m or N/h"), ("{burst: 3}", '"rate"'),
           ("{rate: 1/s, key: [body]}", "rate_limit.key parts"),
           ("{rate: 1/s, key: ['header:']}", "rate_limit.key parts"),
           ("{rate: 1/s, name: 'a b'}", "token"), ("true", "needs a rate")]
    for text, want in bad:
        f = tmp_path / "c.yaml"
        f.write_text("listen: [{addr: '127.0.0.1:0'}]\nroutes:\n  - match: /\n"
                     "    respond: {status: 200}\n    rate_limit: %s\n" % text)
        r = subprocess.run([portico_bin, "check", "-c", str(f)], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode != 0 and want in r.stderr, (text, r.stderr)
