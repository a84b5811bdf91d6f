"""Balancers, end to end (issue 3, "Done when"): weights over 10,000 requests for round_robin and
random (and random's weights under eight concurrent clients, issue 9), least_conn, p2c and ewma
avoiding a slow backend, consistent hashing when a fourth target is added (and every hash_key
kind), cookie affinity (and its fallback when the target dies), slow start of a target added by
a reload. Every count is taken on the backends' side
(CountingBackend) unless a test reads the X-Backend header of each response; every run is
bounded by a request count and a time limit."""

import http.cookies
import re
import time

import pytest

from helpers import lb
from helpers.client import RawConn
from helpers.common import scaled

N_WEIGHTED = 10000
WEIGHTS = (5, 3, 2)


@pytest.fixture
def three():
    bs = lb.Backends(["a", "b", "c"])
    yield bs
    bs.close()


def weighted_run(portico, bs, balance):
    p = portico(lb.proxy_config(lb.upstream(list(bs), WEIGHTS, balance=balance), workers=2))
    res = lb.run_load(p.port, threads=8, total=N_WEIGHTED, duration=scaled(60))
    assert res.statuses == {200: N_WEIGHTED} and not res.errors, res.summary()
    counts = bs.counts()
    assert sum(counts.values()) == N_WEIGHTED, counts
    return counts


def assert_weights(counts, tolerance):
    total = sum(WEIGHTS)
    got = lb.shares(counts)
    for name, w in zip(("a", "b", "c"), WEIGHTS):
        assert abs(got[name] - w / total) <= tolerance, (name, got, counts)


def test_round_robin_respects_weights_within_5_percent_over_10000_requests(portico, three):
    counts = weighted_run(portico, three, "round_robin")
    # ±5 points of share, as the issue asks; smooth weighted round robin is deterministic per
    # worker, so each count is also within 5% of its own expected value.
    assert_weights(counts, 0.05)
    for name, w in zip(("a", "b", "c"), WEIGHTS):
        expect = N_WEIGHTED * w / sum(WEIGHTS)
        assert abs(counts[name] - expect) <= 0.05 * expect, (name, counts)


def test_random_respects_weights_within_5_percent_over_10000_requests(portico, three):
    counts = weighted_run(portico, three, "random")
    assert_weights(counts, 0.05)


N_RANDOM = 24000


def test_random_keeps_weights_2_1_1_within_5_percent_of_each_share_with_8_clients(portico, three):
    # Issue 9 item 12: power of two choices gave 47/26/26 here. Weighted random draws on weight
    # alone, so each share must be within 5% of itself (50 +-2.5, 25 +-1.25). Over 24,000
    # requests one standard deviation of a 25% share is 0.28 points: the bound is 4.5 of them.
    # (p2c, the old `random`, fails this: with eight clients it lands near 47/26/26.)
    weights = (2, 1, 1)
    p = portico(lb.proxy_config(lb.upstream(list(three), weights, balance="random"), workers=2))
    res = lb.run_load(p.port, threads=8, total=N_RANDOM, duration=scaled(120))
    assert res.statuses == {200: N_RANDOM} and not res.errors, res.summary()
    counts = three.counts()
    assert sum(counts.values()) == N_RANDOM, counts
    got = lb.shares(counts)
    for name, w in zip(("a", "b", "c"), weights):
        want = w / sum(weights)
        assert abs(got[name] - want) <= 0.05 * want, (name, got, counts)


def slow_backend_share(portico, balance):
    bs = lb.Backends(["fast1", "fast2", "slow"])
    try:
        bs["slow"].mode = "slow"
        bs["slow"].delay = 0.2
        p = portico(lb.proxy_config(lb.upstream(list(bs), balance=balance), workers=2))
        res = lb.run_load(p.port, threads=8, total=1200, duration=scaled(30))
        assert res.statuses == {200: res.requests} and not res.errors, res.summary()
        counts = bs.counts()
        return lb.shares(counts)["slow"], counts
    finally:
        bs.close()


def test_least_conn_steers_traffic_away_from_a_backend_200ms_slower(portico):
    share, counts = slow_backend_share(portico, "least_conn")
    assert share < 0.20, counts


def test_p2c_steers_traffic_away_from_a_backend_200ms_slower(portico):
    share, counts = slow_backend_share(portico, "p2c")
    assert share < 0.20, counts


def test_ewma_steers_traffic_away_from_a_backend_200ms_slower(portico):
    share, counts = slow_backend_share(portico, "ewma")
    assert share < 0.20, counts


def keys_by_backend(bs):
    where = {}
    for b in bs:
        with b.lock:
            for k in b.keys:
                where.setdefault(k, set()).add(b.name)
            b.keys.clear()
    return where


def test_hash_keeps_keys_in_place_and_moves_about_a_quarter_to_an_added_fourth_target(portico):
    names = ["h1", "h2", "h3", "h4"]
    bs = lb.Backends(names, key_header="X-User")
    try:
        keys = ["user-%05d" % i for i in range(2000)]
        ups3 = lb.upstream([bs[n] for n in names[:3]], balance="hash", hash_key="header:X-User")
        p = portico(lb.proxy_config(ups3, workers=2))
        # Every key twice: the same key always lands on the same backend.
        res = lb.run_load(p.port, 4, total=2 * len(keys), duration=scaled(60),
                          headers=lambda i: [("X-User", keys[i % len(keys)])])
        assert res.statuses == {200: 2 * len(keys)} and not res.errors, res.summary()
        before = keys_by_backend(bs)
        assert len(before) == len(keys)
        split = {k: v for k, v in before.items() if len(v) != 1}
        assert not split, "keys seen on more than one backend: %r" % list(split.items())[:5]
        before = {k: next(iter(v)) for k, v in before.items()}
        per = {n: sum(1 for v in before.values() if v == n) for n in names[:3]}
        assert all(c > 2000 * 0.2 for c in per.values()), per  # all three used, roughly evenly

        mark = len(p.stderr())
        p.reload(lb.proxy_config(lb.upstream([bs[n] for n in names], balance="hash",
                                             hash_key="header:X-User"), workers=2))
        assert lb.wait_log(p, r"configuration reloaded", scaled(10), after=mark), p.stderr()[-2000:]
        # fresh connections, so no request runs on the old snapshot
        res = lb.run_load(p.port, 4, total=len(keys), duration=scaled(60),
                          headers=lambda i: [("X-User", keys[i])])
        assert res.statuses == {200: len(keys)}, res.summary()
        after = keys_by_backend(bs)
        assert all(len(v) == 1 for v in after.values())
        after = {k: next(iter(v)) for k, v in after.items()}
        moved_to_new = [k for k in keys if after[k] == "h4"]
        stayed_out = [k for k in keys if after[k] != "h4"]
        kept = sum(1 for k in stayed_out if after[k] == before[k])
        frac_new = len(moved_to_new) / len(keys)
        assert 0.15 <= frac_new <= 0.35, (frac_new, per)
        assert kept >= 0.95 * len(stayed_out), (kept, len(stayed_out))
    finally:
        bs.close()


def affinity_cookie(r):
    for v in r.header_all("Set-Cookie"):
        c = http.cookies.SimpleCookie()
        c.load(v)
        if "portico_affinity" in c:
            return c["portico_affinity"].value
    return None


def test_cookie_affinity_holds_for_100_requests_and_clients_without_it_are_spread(portico,
                                                                                 three):
    p = portico(lb.proxy_config(lb.upstream(list(three), balance="cookie"), workers=2))
    with RawConn(p.port) as c:
        r = c.request("GET", "/first")
        assert r.status == 200, r
        token = affinity_cookie(r)
        assert token, "no portico_affinity cookie in %r" % r.headers
        home = r.header("X-Backend")
        before = three.counts()
        for i in range(100):
            r = c.request("GET", "/again%d" % i, [("Cookie", "portico_affinity=%s" % token)])
            assert r.status == 200 and r.header("X-Backend") == home, (i, r)
            # the same target: no new cookie needed
            assert affinity_cookie(r) in (None, token), r.headers
    after = three.counts()
    assert after[home] - before[home] == 100, (before, after)
    # Clients that drop the cookie are balanced, not pinned.
    res = lb.run_load(p.port, 2, total=300, duration=scaled(30))
    assert res.statuses == {200: 300}, res.summary()
    assert len([n for n, k in res.by_backend.items() if k >= 50]) == 3, res.by_backend
    # A forged or stale token falls back to the balancer.
    with RawConn(p.port) as c:
        r = c.request("GET", "/forged", [("Cookie", "portico_affinity=00112233445566778899")])
        assert r.status == 200, r


@pytest.mark.parametrize("kind", ["path", "cookie:sess", "query:u", "ip"])
def test_hash_key_kinds_pin_each_key_to_one_backend(portico, three, kind):
    p = portico(lb.proxy_config(lb.upstream(list(three), balance="hash", hash_key=kind),
                                workers=2))

    def req(c, key):
        if kind == "path":
            return c.request("GET", "/k/%s" % key)
        if kind.startswith("cookie:"):
            return c.request("GET", "/k", [("Cookie", "x=1; sess=%s" % key)])
        if kind.startswith("query:"):
            return c.request("GET", "/k?a=1&u=%s" % key)
        return c.request("GET", "/k/%s" % key)  # ip: every key is the same client

    where = {}
    with RawConn(p.port) as c:
        for rnd in range(3):
            for i in range(60):
                r = req(c, "key%d" % i)
                assert r.status == 200, r
                where.setdefault(i, set()).add(r.header("X-Backend"))
    assert all(len(v) == 1 for v in where.values()), where
    used = {next(iter(v)) for v in where.values()}
    if kind == "ip":
        assert len(used) == 1, used  # one client address: one target
    else:
        assert len(used) == 3, used  # 60 keys spread over the three


def test_hash_ip_uses_the_client_behind_trusted_proxies(portico, three):
    # Regression: hash_key ip hashed the peer (the trusted proxy), so every client behind it
    # went to one target. X-Forwarded-For from a trusted peer names the client.
    cfg = lb.proxy_config(lb.upstream(list(three), balance="hash", hash_key="ip"))
    cfg["trusted_proxies"] = ["127.0.0.1/32"]
    p = portico(cfg)
    where = {}
    with RawConn(p.port) as c:
        for rnd in range(2):
            for i in range(60):
                xff = "198.51.100.%d" % (i + 1)
                r = c.request("GET", "/k", [("X-Forwarded-For", xff)])
                assert r.status == 200, r
                where.setdefault(xff, set()).add(r.header("X-Backend"))
    assert all(len(v) == 1 for v in where.values()), where
    assert len({next(iter(v)) for v in where.values()}) == 3


def test_hash_request_without_the_key_is_balanced(portico, three):
    p = portico(lb.proxy_config(lb.upstream(list(three), balance="hash",
                                            hash_key="header:X-User"), workers=1))
    res = lb.run_load(p.port, 2, total=300, duration=scaled(20))
    assert res.statuses == {200: 300}, res.summary()
    assert all(res.by_backend[n] >= 60 for n in ("a", "b", "c")), res.by_backend


def test_cookie_affinity_to_a_dead_target_falls_back_to_another(portico, three):
    health = {"path": lb.HEALTH_PATH, "interval": "200ms", "timeout": "150ms", "fall": 2,
              "rise": 2}
    p = portico(lb.proxy_config(lb.upstream(list(three), balance="cookie", health=health),
                                workers=2))
    with RawConn(p.port) as c:
        r = c.request("GET", "/pin")
        token, home = affinity_cookie(r), r.header("X-Backend")
        assert token and home, r
    three[home].kill()
    assert lb.wait_log(p, r"target %s is down" % re.escape(three[home].url), scaled(2)), \
        p.stderr()[-2000:]
    with RawConn(p.port) as c:
        r = c.request("GET", "/pin2", [("Cookie", "portico_affinity=%s" % token)])
        assert r.status == 200 and r.header("X-Backend") not in (None, home), r
        new = affinity_cookie(r)
        assert new and new != token, r.headers
        new_home = r.header("X-Backend")
        for i in range(20):
            r = c.request("GET", "/pin3-%d" % i, [("Cookie", "portico_affinity=%s" % new)])
            assert r.status == 200 and r.header("X-Backend") == new_home, (i, r)


def test_target_added_by_reload_ramps_up_over_slow_start(portico, three):
    a, b, c = list(three)
    p = portico(lb.proxy_config(lb.upstream([a, b], slow_start="2s"), workers=1))
    res = lb.run_load(p.port, 2, total=200, duration=scaled(20))
    assert res.statuses == {200: 200}, res.summary()
    mark = len(p.stderr())
    p.reload(lb.proxy_config(lb.upstream([a, b, c], slow_start="2s"), workers=1))
    assert lb.wait_log(p, r"configuration reloaded", scaled(5), after=mark)
    # Right after the reload the new target has about 10% of its weight: ~5% of requests.
    res = lb.run_load(p.port, 2, total=600, duration=scaled(20))
    assert res.statuses == {200: 600}, res.summary()
    early = res.by_backend["c"] / 600
    assert 0 < early < 0.15, res.by_backend
    # Once slow start is over it has its full third.
    time.sleep(2.2)
    res = lb.run_load(p.port, 2, total=600, duration=scaled(20))
    assert res.statuses == {200: 600}, res.summary()
    assert abs(res.by_backend["c"] / 600 - 1 / 3) <= 0.05, res.by_backend
