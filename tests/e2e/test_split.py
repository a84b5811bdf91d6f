"""Traffic splitting on a route (issue 3, item 7): the weights hold over new clients, a client
keeping the portico_split cookie stays on its side, and a tester's force_header reaches the
canary arm whatever the weights. Counted on the backends' side."""

import http.cookies

import pytest

from helpers import lb
from helpers.client import RawConn
from helpers.common import scaled

N_CLIENTS = 4000


@pytest.fixture
def split_portico(portico):
    bs = lb.Backends(["v1", "v2"])
    cfg = lb.proxy_config(
        {"app_v1": lb.upstream([bs["v1"]]), "app_v2": lb.upstream([bs["v2"]])},
        workers=2,
        route={"split": [{"to": "app_v1", "weight": 90},
                         {"to": "app_v2", "weight": 10, "force_header": "X-Canary: always",
                          "force_cookie": "canary=1"}]})
    p = portico(cfg)
    yield p, bs
    bs.close()


def split_cookie(r):
    for v in r.header_all("Set-Cookie"):
        c = http.cookies.SimpleCookie()
        c.load(v)
        if "portico_split" in c:
            return c["portico_split"].value
    return None


def test_split_90_10_holds_within_5_percent_over_4000_new_clients(split_portico):
    p, bs = split_portico
    # Each request carries no cookie: a new client every time.
    res = lb.run_load(p.port, 8, total=N_CLIENTS, duration=scaled(60))
    assert res.statuses == {200: N_CLIENTS} and not res.errors, res.summary()
    counts = bs.counts()
    assert sum(counts.values()) == N_CLIENTS, counts
    share = lb.shares(counts)
    assert abs(share["v1"] - 0.90) <= 0.05 and abs(share["v2"] - 0.10) <= 0.05, counts


def test_split_new_client_gets_a_cookie_naming_its_side(split_portico):
    p, bs = split_portico
    with RawConn(p.port) as c:
        for i in range(20):
            r = c.request("GET", "/n%d" % i)
            assert r.status == 200, r
            side = split_cookie(r)
            assert side in ("app_v1", "app_v2"), r.headers
            assert r.header("X-Backend") == side[len("app_"):], r


@pytest.mark.parametrize("side", ["app_v1", "app_v2"])
def test_split_client_keeping_its_cookie_stays_on_its_side_for_100_requests(split_portico, side):
    p, bs = split_portico
    cookie = None
    with RawConn(p.port) as c:
        # New clients until one is drawn onto this side (10% for v2: bounded at 400 draws).
        for i in range(400):
            r = c.request("GET", "/draw%d" % i)
            assert r.status == 200, r
            if split_cookie(r) == side:
                cookie = side
                break
        assert cookie, "no client drawn onto %s in 400 tries" % side
        home = side[len("app_"):]
        before = bs.counts()
        for i in range(100):
            r = c.request("GET", "/stay%d" % i, [("Cookie", "a=1; portico_split=%s; z=2" % cookie)])
            assert r.status == 200 and r.header("X-Backend") == home, (i, r)
    after = bs.counts()
    assert after[home] - before[home] == 100, (before, after)


def test_split_force_header_sends_to_the_canary_arm(split_portico):
    p, bs = split_portico
    with RawConn(p.port) as c:
        for i in range(50):
            r = c.request("GET", "/canary%d" % i, [("X-Canary", "always")])
            assert r.status == 200 and r.header("X-Backend") == "v2", (i, r)
        # even against a cookie naming the other side
        r = c.request("GET", "/canary-cookie", [("X-Canary", "always"),
                                                ("Cookie", "portico_split=app_v1")])
        assert r.status == 200 and r.header("X-Backend") == "v2", r
        # another value of the header is not an override
        for i in range(20):
            r = c.request("GET", "/notcanary%d" % i, [("X-Canary", "sometimes"),
                                                      ("Cookie", "portico_split=app_v1")])
            assert r.status == 200 and r.header("X-Backend") == "v1", (i, r)
    assert bs["v2"].count >= 51


def test_split_force_cookie_sends_to_the_canary_arm(split_portico):
    p, bs = split_portico
    with RawConn(p.port) as c:
        for i in range(30):
            r = c.request("GET", "/fc%d" % i, [("Cookie", "a=b; canary=1")])
            assert r.status == 200 and r.header("X-Backend") == "v2", (i, r)
        for i in range(10):
            r = c.request("GET", "/nfc%d" % i, [("Cookie", "canary=0; portico_split=app_v1")])
            assert r.status == 200 and r.header("X-Backend") == "v1", (i, r)


def test_split_cookie_naming_no_arm_is_drawn_again(split_portico):
    p, bs = split_portico
    with RawConn(p.port) as c:
        r = c.request("GET", "/stale", [("Cookie", "portico_split=app_v9")])
        assert r.status == 200, r
        assert split_cookie(r) in ("app_v1", "app_v2"), r.headers
