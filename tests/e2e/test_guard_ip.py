"""IP rules (ip: on a site or route, src/guard/ip.c), end to end.

Clients connect from different loopback addresses (all of 127.0.0.0/8 is local on Linux), so
the peer address is what the rules judge; behind a trusted proxy the right-most
X-Forwarded-For entry that is not itself trusted is. A refused request gets Portico's 403 page
and never reaches the backend, which counts what it gets.
"""

import subprocess

from helpers import admin as A
from helpers import backends as B
from helpers import mmdb, yamlgen
from helpers.client import RawConn, get
from helpers.common import wait_until
from helpers.portico import PORTICO_BIN

PROXY = "127.0.0.5"


def cfg_of(backend_url, site_ip=None, route_ip=None, admin=None, **top):
    def build(port):
        route = {"match": "/*", "proxy": {"to": backend_url}}
        if route_ip is not None:
            route["ip"] = route_ip
        site = {"routes": [{"match": "/open/*", "respond": {"status": 200, "body": "open\n"}},
                           route]}
        if site_ip is not None:
            site["ip"] = site_ip
        cfg = {"trusted_proxies": [PROXY], "sites": [site]}
        if admin:
            cfg["admin"] = {"listen": "127.0.0.1:%d" % A.admin_port(port), "tokens_file": admin}
        cfg.update(top)
        return cfg
    return build


def status(p, source, path="/x", xff=None):
    headers = {"X-Forwarded-For": xff} if xff else None
    return get(p.port, path, headers=headers, source=source).status


def test_deny_list_refuses_with_portico_page_and_never_reaches_backend(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, site_ip={"deny": ["127.0.0.2", "127.0.1.0/24"]}))
    assert status(p, "127.0.0.1") == 200
    n = len(b.requests)
    r = get(p.port, "/x", source="127.0.0.2")
    assert r.status == 403
    assert b"403" in r.body and b"127.0.0" not in r.body  # the rules are not revealed
    assert status(p, "127.0.1.9") == 403
    assert status(p, "127.0.2.1") == 200
    assert len(b.requests) == n + 1
    assert "guard ip: refused client 127.0.0.2: in the deny list" in p.stderr()


def test_allow_list_and_both(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, site_ip={"allow": ["127.0.0.0/30"], "deny": ["127.0.0.3"]}))
    assert status(p, "127.0.0.1") == 200
    assert status(p, "127.0.0.2") == 200
    assert status(p, "127.0.0.3") == 403  # allowed, but deny wins
    assert status(p, "127.0.0.4") == 403  # in no allow entry


def test_route_replaces_site_rules(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, site_ip={"deny": ["127.0.0.2"]}, route_ip={"deny": ["127.0.0.3"]}))
    assert status(p, "127.0.0.2", "/x") == 200   # the route's rules replace the site's whole
    assert status(p, "127.0.0.3", "/x") == 403
    assert status(p, "127.0.0.2", "/open/a") == 403  # a route without ip: takes the site's
    assert status(p, "127.0.0.3", "/open/a") == 200


def test_trusted_proxy_forwarded_for(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, site_ip={"deny": ["10.1.0.0/16"]}))
    assert status(p, PROXY, xff="10.1.2.3") == 403
    assert status(p, PROXY, xff="10.2.2.3") == 200
    assert status(p, PROXY, xff="10.1.2.3, %s" % PROXY) == 403
    assert status(p, PROXY, xff="garbage") == 403  # the client cannot be known
    # From an untrusted peer the header is not believed.
    assert status(p, "127.0.0.1", xff="10.1.2.3") == 200


def test_files_and_reload(portico, backend, tmp_path):
    b = backend(B.echo())
    deny = tmp_path / "deny.txt"
    deny.write_text("# bad clients\n\n127.0.0.2   # one host\n")
    p = portico(cfg_of(b.url, site_ip={"deny_files": [str(deny)]}))
    assert status(p, "127.0.0.2") == 403
    assert status(p, "127.0.0.3") == 200
    deny.write_text("127.0.0.3/32\n")
    p.reload()
    assert wait_until(lambda: status(p, "127.0.0.3") == 403, 10, what="the reloaded deny file")
    assert status(p, "127.0.0.2") == 200


def test_many_entries_from_file(portico, backend, tmp_path):
    b = backend(B.echo())
    allow = tmp_path / "allow.txt"
    allow.write_text("".join("10.%d.%d.%d\n" % (i >> 16, (i >> 8) & 255, i & 255)
                             for i in range(0, 200000, 2)) + "127.0.0.1\n")
    p = portico(cfg_of(b.url, site_ip={"allow_files": [str(allow)]}))
    assert status(p, "127.0.0.1") == 200
    assert status(p, "127.0.0.2") == 403
    assert status(p, PROXY) == 403  # the proxy itself is not allowed
    assert status(p, PROXY, xff="10.0.0.4") == 200
    assert status(p, PROXY, xff="10.0.0.5") == 403
    assert status(p, PROXY, xff="10.3.13.62") == 200  # the last entry, 199,998
    assert status(p, PROXY, xff="10.3.13.64") == 403


def test_countries(portico, backend, tmp_path):
    b = backend(B.echo())
    (tmp_path / "data").mkdir()
    mmdb.write(str(tmp_path / "data" / "geo.mmdb"),
               [("127.0.0.2/32", mmdb.country("US")), ("127.0.0.3/32", mmdb.country("FR"))],
               ip_version=6, record_size=24)
    geo = {"database": str(tmp_path / "data" / "geo.mmdb")}
    p = portico(cfg_of(b.url, site_ip={"countries": {"deny": ["us"]}}, geoip=geo))
    assert status(p, "127.0.0.2") == 403
    assert status(p, "127.0.0.3") == 200
    assert status(p, "127.0.0.1") == 200  # no country: only an allow list refuses it
    p.stop()
    p = portico(cfg_of(b.url, site_ip={"countries": {"allow": ["FR"]}}, geoip=geo))
    assert status(p, "127.0.0.3") == 200
    assert status(p, "127.0.0.2") == 403
    assert status(p, "127.0.0.1") == 403


def check(path):
    return subprocess.run([PORTICO_BIN, "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=30)


def write(path, ip, **top):
    cfg = {"listen": [{"addr": "127.0.0.1:1"}],
           "sites": [{"ip": ip, "routes": [{"match": "/", "respond": {"status": 200}}]}]}
    cfg.update(top)
    path.write_text(yamlgen.dump(cfg))
    return path


def test_config_errors_with_positions(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.0/8\n# fine\n10.0.0.300\n")
    r = check(write(tmp_path / "a.yaml", {"deny_files": [str(bad)]}))
    assert r.returncode != 0 and "%s:3: expected an IP address" % bad in r.stderr, r.stderr
    r = check(write(tmp_path / "b.yaml", {"allow": ["10.0.0.0/33"]}))
    assert r.returncode != 0 and "b.yaml:" in r.stderr and "10.0.0.0/33" in r.stderr, r.stderr
    r = check(write(tmp_path / "c.yaml", {"countries": {"deny": ["DE"]}}))
    assert r.returncode != 0 and "geoip" in r.stderr, r.stderr
    r = check(write(tmp_path / "d.yaml", {"countries": {"deny": ["DEU"]}}))
    assert r.returncode != 0 and "two-letter" in r.stderr, r.stderr
    r = check(write(tmp_path / "e.yaml", {"deny_files": [str(tmp_path / "missing.txt")]}))
    assert r.returncode != 0 and "missing.txt" in r.stderr, r.stderr
    r = check(write(tmp_path / "f.yaml", {"denny": ["10.0.0.1"]}))
    assert r.returncode != 0 and "denny" in r.stderr, r.stderr
    assert check(write(tmp_path / "ok.yaml", {"deny": ["10.0.0.1", "::ffff:1.2.3.4/128"]})
                 ).returncode == 0


def test_metric_counts_refusals(portico, backend, tmp_path):
    b = backend(B.echo())
    token, tokens_file = A.tokens(tmp_path, [("scraper", "read")])
    p = portico(cfg_of(b.url, site_ip={"deny": ["127.0.0.2"]}, admin=tokens_file))
    for _ in range(3):
        assert status(p, "127.0.0.2") == 403
    st, _, body = A.call(p, "GET", "/metrics", token[0])
    assert st == 200
    assert 'portico_guard_refusals_total{guard="ip"} 3' in body.decode()


def test_empty_route_rules_lift_the_sites(portico, backend):
    b = backend(B.echo())
    p = portico(cfg_of(b.url, site_ip={"deny": ["127.0.0.2"]}, route_ip={}))
    assert status(p, "127.0.0.2", "/x") == 200
    assert status(p, "127.0.0.2", "/open/a") == 403


def test_ipv6_client_and_mapped_entries(portico, backend):
    b = backend(B.echo())

    def build(port):
        cfg = cfg_of(b.url, site_ip={"deny": ["::1/128", "::ffff:127.0.0.2"]})(port)
        cfg["listen"] = [{"addr": "127.0.0.1:%d" % port}, {"addr": "[::1]:%d" % port}]
        return cfg

    p = portico(build)
    with RawConn(p.port, host="::1") as c:
        assert c.request("GET", "/x").status == 403
    assert status(p, "127.0.0.2") == 403  # a mapped entry is the IPv4 address
    assert status(p, "127.0.0.3") == 200
