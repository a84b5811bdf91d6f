"""DNS names as upstream targets (issue 3, item 1): a name resolves (c-ares) to several
addresses and each address is a target of its own; the name is re-resolved every
resolve_interval and a changed answer moves traffic to the new address set without a failed
request. The names come from a DNS server of the test's own (helpers/dnsserver.py) named by
`resolver: {servers: [...]}`; the backends listen on 127.0.0.2 and 127.0.0.3 (both loopback on
Linux) on one port, so the only difference between the targets is the address DNS gave."""

import subprocess
import time

import pytest

from helpers import addrbackend, yamlgen
from helpers.common import scaled
from helpers.dnsserver import DnsServer


@pytest.fixture
def two_backends():
    """Backends on 127.0.0.2:P and 127.0.0.3:P (the same port P from the kernel)."""
    with addrbackend.pair() as made:
        yield made


def counts(backends):
    out = {}
    for s in backends:
        with s.lock:
            out[s.ip] = s.count
    return out


get = addrbackend.get


def config(dns_port, backend_port, interval="1s"):
    return {
        "resolver": {"servers": ["127.0.0.1:%d" % dns_port], "timeout": "1s"},
        "upstreams": {"api": {
            "resolve_interval": interval,
            "targets": [{"url": "http://api.test:%d" % backend_port}],
        }},
        "routes": [{"match": "/*", "proxy": {"to": "api"}}],
    }


def test_each_address_is_a_target_and_a_changed_answer_moves_traffic_without_errors(
        portico, two_backends):
    port = two_backends[0].server_address[1]
    with DnsServer({"api.test": ["127.0.0.2", "127.0.0.3"]}) as dns:
        p = portico(config(dns.port, port))
        assert dns.count("api.test") >= 1

        # Both addresses are targets: round robin alternates between them.
        for i in range(40):
            status, who, _ = get(p.port, "/a%d" % i)
            assert status == 200, (i, status)
        c = counts(two_backends)
        assert c["127.0.0.2"] >= 10 and c["127.0.0.3"] >= 10, c
        # The name stays the Host: each address is the same service.
        for s in two_backends:
            assert s.hosts == {"api.test:%d" % port}, s.hosts

        # The answer loses 127.0.0.2; within a few intervals every request goes to 127.0.0.3,
        # and none fails on the way.
        dns.set("api.test", ["127.0.0.3"])
        deadline = time.monotonic() + scaled(15)
        streak = 0
        sent = 0
        while streak < 30:
            assert time.monotonic() < deadline, ("traffic did not move", counts(two_backends),
                                                 p.stderr()[-2000:])
            status, who, _ = get(p.port, "/b%d" % sent)
            sent += 1
            assert status == 200, (sent, status)
            streak = streak + 1 if who == "127.0.0.3" else 0
            time.sleep(0.01)
        before = counts(two_backends)
        for i in range(20):
            status, who, _ = get(p.port, "/c%d" % i)
            assert status == 200 and who == "127.0.0.3", (i, status, who)
        after = counts(two_backends)
        assert after["127.0.0.2"] == before["127.0.0.2"], (before, after)
        assert "dns: api.test now resolves to 1 address" in p.stderr()

        # And back: the address returns to rotation.
        dns.set("api.test", ["127.0.0.2", "127.0.0.3"])
        deadline = time.monotonic() + scaled(15)
        seen = set()
        while len(seen) < 2:
            assert time.monotonic() < deadline, ("127.0.0.2 did not come back",
                                                 counts(two_backends))
            status, who, _ = get(p.port, "/d")
            assert status == 200, status
            seen.add(who)
            time.sleep(0.01)


def test_name_that_does_not_resolve_is_refused_at_start(tmp_path, portico_bin):
    with DnsServer({}) as dns:
        cfg = config(dns.port, 9)
        path = tmp_path / "nodns.yaml"
        cfg["listen"] = [{"addr": "127.0.0.1:1"}]
        path.write_text(yamlgen.dump(cfg))
        r = subprocess.run([portico_bin, "check", "-c", str(path)], capture_output=True,
                           text=True, timeout=scaled(20))
        assert r.returncode != 0
        assert 'cannot resolve host "api.test"' in (r.stdout + r.stderr), r.stderr
        assert dns.count("api.test") >= 1


def test_dns_outage_keeps_the_last_addresses(portico, two_backends):
    port = two_backends[0].server_address[1]
    dns = DnsServer({"api.test": ["127.0.0.3"]})
    try:
        p = portico(config(dns.port, port))
        for i in range(5):
            assert get(p.port)[0] == 200
    finally:
        dns.close()  # nothing answers from now on
    end = time.monotonic() + scaled(3)
    while time.monotonic() < end:
        status, who, _ = get(p.port)
        assert status == 200 and who == "127.0.0.3", (status, who)
        time.sleep(0.05)
    assert p.alive()
