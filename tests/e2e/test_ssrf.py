"""The SSRF guard at connect time (issue 11, section 2, "Validation"): an upstream with
`ssrf_guard: true` refuses, after DNS resolution and before any connect, an address in a
forbidden range (here loopback, the only traffic these tests ever send), answers 502 without
saying why to the client, and logs the reason. `allow_private` lifts the guard for the
operator's prefixes only. A DNS answer that changes from an allowed address to a forbidden one
(rebinding) is refused on the first connect after the change. Health checks of a guarded
upstream obey the guard too. The names come from the test's own DNS server
(helpers/dnsserver.py), as in test_dns.py; every backend counts the TCP connections it
accepts, so "the backend sees no connection" is measured, not assumed."""

import time

import pytest

from helpers import addrbackend
from helpers.common import scaled
from helpers.dnsserver import DnsServer

REASON_LOOPBACK = "refused by the SSRF guard: %s is a loopback address"


def accepted(s):
    with s.lock:
        return s.accepted


@pytest.fixture
def backends():
    """Backends on 127.0.0.2:P and 127.0.0.3:P (one port P, so that only DNS tells them
    apart); each counts the connections it accepts."""
    with addrbackend.pair() as made:
        yield made


get = addrbackend.get


def config(dns_port, backend_port, guard=True, allow=None, health=None, interval="1s"):
    ups = {
        "resolve_interval": interval,
        "targets": [{"url": "http://api.test:%d" % backend_port}],
    }
    if guard is not None:
        ups["ssrf_guard"] = guard
    if allow is not None:
        ups["allow_private"] = allow
    if health is not None:
        ups["health"] = health
    return {
        "resolver": {"servers": ["127.0.0.1:%d" % dns_port], "timeout": "1s"},
        "upstreams": {"api": ups},
        "routes": [{"match": "/*", "proxy": {"to": "api"}}],
    }


def assert_not_leaked(body, addr):
    text = body.decode("latin-1")
    assert "SSRF" not in text and addr not in text and "loopback" not in text, text


def test_name_resolving_to_loopback_is_refused_with_502_and_the_reason_in_the_log(
        portico, backends):
    port = backends[0].server_address[1]
    with DnsServer({"api.test": ["127.0.0.2"]}) as dns:
        p = portico(config(dns.port, port))
        for i in range(3):
            status, who, body = get(p.port, "/x%d" % i)
            assert status == 502, (status, body)
            assert who is None
            assert_not_leaked(body, "127.0.0.2")
        assert REASON_LOOPBACK % "127.0.0.2" in p.stderr(), p.stderr()[-2000:]
        assert 'upstream "api" target http://api.test:%d refused' % port in p.stderr()
    assert accepted(backends[0]) == 0 and accepted(backends[1]) == 0


def test_without_ssrf_guard_yaml_targets_stay_trusted(portico, backends):
    port = backends[0].server_address[1]
    with DnsServer({"api.test": ["127.0.0.2"]}) as dns:
        p = portico(config(dns.port, port, guard=None))
        status, who, _ = get(p.port)
        assert (status, who) == (200, "127.0.0.2")
        assert "SSRF" not in p.stderr()


def test_allow_private_lets_the_operators_prefix_through(portico, backends):
    port = backends[0].server_address[1]
    with DnsServer({"api.test": ["127.0.0.2", "127.0.0.3"]}) as dns:
        p = portico(config(dns.port, port, allow=["127.0.0.0/8"]))
        seen = set()
        for i in range(10):
            status, who, _ = get(p.port, "/ok%d" % i)
            assert status == 200, status
            seen.add(who)
        assert seen == {"127.0.0.2", "127.0.0.3"}
        assert "SSRF" not in p.stderr()


def test_allow_private_covers_only_its_prefix(portico, backends):
    """127.0.0.2/32 allowed, 127.0.0.3 not: of one name's two addresses, only the allowed one
    ever gets a connection; the other fails over to it (a refused connect is retried on
    another target)."""
    port = backends[0].server_address[1]
    with DnsServer({"api.test": ["127.0.0.2", "127.0.0.3"]}) as dns:
        p = portico(config(dns.port, port, allow=["127.0.0.2/32"]))
        for i in range(10):
            status, who, _ = get(p.port, "/p%d" % i)
            assert (status, who) == (200, "127.0.0.2"), (i, status, who)
        assert REASON_LOOPBACK % "127.0.0.3" in p.stderr()
    assert accepted(backends[0]) > 0
    assert accepted(backends[1]) == 0


def test_dns_rebinding_to_a_forbidden_address_is_caught_at_connect_time(portico, backends):
    port = backends[0].server_address[1]
    with DnsServer({"api.test": ["127.0.0.2"]}) as dns:
        p = portico(config(dns.port, port, allow=["127.0.0.2/32"]))
        for i in range(3):
            status, who, _ = get(p.port, "/before%d" % i)
            assert (status, who) == (200, "127.0.0.2")
        # The name now answers an address outside the allow-list: after the next
        # re-resolution (resolve_interval 1s), every request is refused before any connect.
        dns.set("api.test", ["127.0.0.3"])
        deadline = time.monotonic() + scaled(15)
        while True:
            status, who, body = get(p.port, "/after")
            if status == 502:
                break
            assert (status, who) == (200, "127.0.0.2"), (status, who)
            assert time.monotonic() < deadline, ("the new answer was never used",
                                                 p.stderr()[-2000:])
            time.sleep(0.05)
        assert_not_leaked(body, "127.0.0.3")
        for i in range(5):
            status, _, body = get(p.port, "/later%d" % i)
            assert status == 502, status
        assert REASON_LOOPBACK % "127.0.0.3" in p.stderr(), p.stderr()[-2000:]
    assert accepted(backends[1]) == 0


def test_health_checks_obey_the_guard_and_mark_the_target_down_with_the_reason(
        portico, backends):
    port = backends[0].server_address[1]
    health = {"path": "/health", "interval": "200ms", "timeout": "150ms", "fall": 1, "rise": 1}
    with DnsServer({"api.test": ["127.0.0.2"]}) as dns:
        p = portico(config(dns.port, port, health=health))
        deadline = time.monotonic() + scaled(10)
        want = "is down: " + REASON_LOOPBACK % "127.0.0.2"
        while want not in p.stderr():
            assert time.monotonic() < deadline, p.stderr()[-2000:]
            time.sleep(0.05)
        status, _, body = get(p.port)
        assert status in (502, 503), status
        assert_not_leaked(body, "127.0.0.2")
    assert accepted(backends[0]) == 0


def test_guard_also_holds_for_http2_upstreams(portico, backends):
    """protocol: h2c opens streams on shared connections, not pooled HTTP/1.1 ones: the guard
    runs before either, so the (HTTP/1.1) backend never even sees a connection attempt."""
    port = backends[0].server_address[1]
    with DnsServer({"api.test": ["127.0.0.2"]}) as dns:
        cfg = config(dns.port, port)
        cfg["upstreams"]["api"]["protocol"] = "h2c"
        p = portico(cfg)
        status, _, body = get(p.port)
        assert status == 502, status
        assert_not_leaked(body, "127.0.0.2")
        assert REASON_LOOPBACK % "127.0.0.2" in p.stderr()
    assert accepted(backends[0]) == 0
