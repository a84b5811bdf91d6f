"""Netlify Country= conditions through a MaxMind DB file (geoip.database), end to end.

The databases are written by helpers/mmdb.py (from the format spec) and checked with Debian's
mmdblookup first, so a failure here is Portico's, not the writer's. Clients connect from
different loopback addresses (127.0.0.2 and so on: all of 127.0.0.0/8 is local on Linux), so
the peer address is what the database is asked about; behind a trusted proxy the right-most
X-Forwarded-For entry that is not itself trusted is. Rules (first match wins):

    /c  /a.html         302  Country=us
    /c  /b.html         302  Country=ca,fr
    /c  /fallback.html  302
"""

import os
import subprocess

import pytest

from helpers import mmdb, yamlgen
from helpers.client import RawConn
from helpers.common import scaled, wait_until
from helpers.portico import PORTICO_BIN

REDIRECTS = """\
/c  /a.html         302  Country=us
/c  /b.html         302  Country=ca,fr
/c  /fallback.html  302
"""

PROXY = "127.0.0.5"  # the trusted proxy's address

NETWORKS = [
    ("127.0.0.2/32", mmdb.country("US")),
    ("127.0.0.3/32", mmdb.country("FR")),
    # Only the registration country: not used, so no Country= rule holds.
    ("127.0.0.4/32", {"registered_country": {"iso_code": "CA"}}),
    ("10.9.0.0/16", mmdb.country("ca")),  # lower case in the file is fine too
    ("198.51.100.0/24", mmdb.country("US")),
]
NETWORKS_V6 = NETWORKS + [("2001:db8::/32", mmdb.country("CA")), ("::1/128", mmdb.country("FR"))]

# (ip_version, record_size) variants of the same database
FLAVOURS = [(6, 24), (4, 28), (6, 32)]


def nets_for(ip_version):
    return NETWORKS_V6 if ip_version == 6 else NETWORKS


def write_db(path, ip_version=6, record_size=24, networks=None):
    return mmdb.write(str(path), nets_for(ip_version) if networks is None else networks,
                      ip_version=ip_version, record_size=record_size)


def mmdblookup(path, ip):
    r = subprocess.run(["mmdblookup", "--file", str(path), "--ip", ip, "country", "iso_code"],
                       capture_output=True, text=True, timeout=20)
    return (r.stdout + r.stderr).strip()


def make_site(base):
    root = base / "public"
    root.mkdir(parents=True, exist_ok=True)
    for name in ("index.html", "a.html", "b.html", "fallback.html"):
        (root / name).write_text("<p>%s</p>\n" % name)
    (root / "_redirects").write_text(REDIRECTS)
    return root


def config(root, database="data/geo.mmdb", extra_listen=False, **top):
    def build(port):
        cfg = {"trusted_proxies": [PROXY],
               "sites": [{"routes": [{"match": "/*", "static": {"root": str(root)}}]}]}
        if database is not None:
            cfg["geoip"] = {"database": database}
        if extra_listen:
            cfg["listen"] = [{"addr": "127.0.0.1:%d" % port}, {"addr": "[::1]:%d" % port}]
        cfg.update(top)
        return cfg
    return build


def where(port, source=None, xff=None, host="127.0.0.1"):
    """Where /c redirects this client: "a", "b" or "fallback"."""
    headers = [("X-Forwarded-For", v) for v in ([xff] if isinstance(xff, str) else xff or [])]
    with RawConn(port, host=host, source=source) as c:
        r = c.request("GET", "/c", headers)
    assert r.status == 302, r
    loc = r.header("Location")
    assert loc.startswith("/") and loc.endswith(".html"), loc
    return loc[1:-5]


@pytest.fixture
def site(tmp_path):
    root = make_site(tmp_path)
    (tmp_path / "data").mkdir()
    return root


def check(cfg_path, cwd="/"):
    return subprocess.run([PORTICO_BIN, "check", "-c", str(cfg_path)], capture_output=True,
                          text=True, timeout=30, cwd=cwd)


def write_yaml(path, cfg):
    cfg = dict(cfg)
    cfg.setdefault("listen", [{"addr": "127.0.0.1:1"}])
    path.write_text(yamlgen.dump(cfg))
    return path


@pytest.mark.parametrize("ip_version,record_size", FLAVOURS)
def test_writer_output_is_read_by_mmdblookup(tmp_path, ip_version, record_size):
    db = write_db(tmp_path / "geo.mmdb", ip_version, record_size)
    assert '"US"' in mmdblookup(db, "127.0.0.2")
    assert '"FR"' in mmdblookup(db, "127.0.0.3")
    assert '"ca"' in mmdblookup(db, "10.9.8.7")
    assert "Could not find" in mmdblookup(db, "127.0.0.1")
    if ip_version == 6:
        assert '"CA"' in mmdblookup(db, "2001:db8::7")


@pytest.mark.parametrize("ip_version,record_size", FLAVOURS)
def test_country_rules_follow_the_client_address(portico, site, ip_version, record_size):
    write_db(site.parent / "data" / "geo.mmdb", ip_version, record_size)
    p = portico(config(site))
    assert where(p.port, "127.0.0.2") == "a"          # US
    assert where(p.port, "127.0.0.3") == "b"          # FR, second code of Country=ca,fr
    assert where(p.port, "127.0.0.1") == "fallback"   # not in the database
    assert where(p.port, "127.0.0.4") == "fallback"   # registered_country only
    # The same connection's answer does not stick to the next client.
    assert where(p.port, "127.0.0.2") == "a"


def test_ipv6_client(portico, site):
    write_db(site.parent / "data" / "geo.mmdb", 6, 24)
    p = portico(config(site, extra_listen=True))
    assert where(p.port, host="::1") == "b"            # ::1 is FR in the IPv6 database
    assert where(p.port, "127.0.0.2") == "a"


def test_ipv6_client_with_ipv4_only_database_matches_no_country(portico, site):
    write_db(site.parent / "data" / "geo.mmdb", 4, 24)
    p = portico(config(site, extra_listen=True))
    assert where(p.port, host="::1") == "fallback"
    assert where(p.port, "127.0.0.2") == "a"


def test_trusted_proxy_forwarded_for_decides(portico, site):
    write_db(site.parent / "data" / "geo.mmdb", 6, 28)
    p = portico(config(site))
    assert where(p.port, PROXY) == "fallback"                          # no header: the proxy
    assert where(p.port, PROXY, "10.9.8.7") == "b"                     # CA
    assert where(p.port, PROXY, "127.0.0.2") == "a"                    # US
    # Right-most entry that is not a trusted proxy: the proxy's own hop is skipped, and what
    # the client claimed further left is not believed.
    assert where(p.port, PROXY, "127.0.0.3, 127.0.0.2, %s" % PROXY) == "a"
    assert where(p.port, PROXY, "127.0.0.2,127.0.0.3") == "b"
    # Several header lines are one list, in order.
    assert where(p.port, PROXY, ["127.0.0.2", "127.0.0.3"]) == "b"
    assert where(p.port, PROXY, ["127.0.0.3", "127.0.0.2, " + PROXY]) == "a"
    # Ports and IPv6 forms.
    assert where(p.port, PROXY, "198.51.100.7:4711") == "a"
    assert where(p.port, PROXY, "[2001:db8::9]:443") == "b"
    assert where(p.port, PROXY, "2001:db8::9") == "b"
    # Every hop trusted: the left-most one is the client (here not in the database).
    assert where(p.port, PROXY, "%s, %s" % (PROXY, PROXY)) == "fallback"
    # A hop that is not an address makes the client unknown, not the next one to its left.
    assert where(p.port, PROXY, "127.0.0.2, unknown") == "fallback"


def test_untrusted_peer_forwarded_for_is_ignored(portico, site):
    write_db(site.parent / "data" / "geo.mmdb", 6, 24)
    p = portico(config(site))
    assert where(p.port, "127.0.0.2", "127.0.0.3") == "a"
    assert where(p.port, "127.0.0.1", "127.0.0.2") == "fallback"
    assert where(p.port, "127.0.0.3", "10.9.8.7, 127.0.0.2") == "b"


def test_country_without_database_fails_check(site, tmp_path):
    cfg_path = write_yaml(tmp_path / "nodb.yaml", config(site, database=None)(1))
    r = check(cfg_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "%s:1: Country= needs a GeoIP database" % (site / "_redirects") in out, out
    assert "geoip.database" in out, out


def test_database_path_is_relative_to_the_config_file(site, tmp_path):
    write_db(tmp_path / "data" / "geo.mmdb")
    r = check(write_yaml(tmp_path / "rel.yaml", config(site)(1)), cwd="/")
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r.stdout + r.stderr


def test_missing_database_fails_check(site, tmp_path):
    r = check(write_yaml(tmp_path / "missing.yaml", config(site)(1)))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert str(tmp_path / "data" / "geo.mmdb") in out, out
    assert "No such file" in out, out
    # Reported once, at the key: not a second time as "set geoip.database" for the rule.
    assert "Country=" not in out, out


@pytest.mark.parametrize("content,reason", [
    (b"this is not a MaxMind database\n" * 10, "invalid metadata"),
    (b"", "the file is empty"),
])
def test_corrupt_database_fails_check_naming_file_and_reason(site, tmp_path, content, reason):
    db = tmp_path / "data" / "geo.mmdb"
    db.write_bytes(content)
    r = check(write_yaml(tmp_path / "bad.yaml", config(site)(1)))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert str(db) in out and "geoip database" in out, out
    assert reason in out, out


def test_truncated_database_fails_check(site, tmp_path):
    full = mmdb.build(nets_for(6), ip_version=6, record_size=24)
    db = tmp_path / "data" / "geo.mmdb"
    # Keep the metadata, drop most of the search tree: node_count no longer fits the file.
    marker = full.rindex(mmdb.MARKER)
    db.write_bytes(full[:40] + full[marker:])
    r = check(write_yaml(tmp_path / "trunc.yaml", config(site)(1)))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert str(db) in out, out


def test_database_without_country_data_fails_check(site, tmp_path):
    db = tmp_path / "data" / "geo.mmdb"
    mmdb.write(str(db), [("127.0.0.0/8", {"autonomous_system_number": 64500}),
                         ("10.0.0.0/8", {"registered_country": {"iso_code": "US"}})],
               ip_version=6, database_type="GeoLite2-ASN")
    r = check(write_yaml(tmp_path / "asn.yaml", config(site)(1)))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert str(db) in out and "country.iso_code" in out and "GeoLite2-ASN" in out, out


def test_database_with_no_networks_fails_check(site, tmp_path):
    db = tmp_path / "data" / "geo.mmdb"
    mmdb.write(str(db), [("127.0.0.2/32", mmdb.country("US"))], ip_version=4)
    # Point the only record at "no data": a tree that maps nothing.
    blob = bytearray(db.read_bytes())
    tree_bytes = 32 * 6
    for i in range(0, tree_bytes, 6):
        for half in (0, 3):
            v = int.from_bytes(blob[i + half:i + half + 3], "big")
            if v > 32:
                blob[i + half:i + half + 3] = (32).to_bytes(3, "big")
    db.write_bytes(bytes(blob))
    assert "Could not find" in mmdblookup(db, "127.0.0.2")
    r = check(write_yaml(tmp_path / "empty.yaml", config(site)(1)))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "maps no address" in out, out


def test_geoip_key_is_checked(site, tmp_path):
    cfg = config(site)(1)
    cfg["geoip"] = {"databse": "data/geo.mmdb"}
    r = check(write_yaml(tmp_path / "typo.yaml", cfg))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert 'unknown key "databse"; did you mean "database"?' in out, out
    assert 'geoip needs "database"' in out, out


def test_database_without_country_rules_is_still_checked(tmp_path):
    (tmp_path / "geo.mmdb").write_bytes(b"garbage")
    cfg = {"geoip": {"database": "geo.mmdb"},
           "routes": [{"match": "/*", "respond": {"body": "x"}}]}
    r = check(write_yaml(tmp_path / "plain.yaml", cfg))
    assert r.returncode == 1 and "geo.mmdb" in r.stderr, r.stdout + r.stderr


def test_reload_picks_up_a_replaced_database(portico, site):
    data = site.parent / "data"
    write_db(data / "geo.mmdb", 6, 24)
    p = portico(config(site))
    assert where(p.port, "127.0.0.2") == "a"
    # Replace the file the way updaters do (write aside, rename over): 127.0.0.2 is now FR.
    swapped = [(n, mmdb.country("FR") if n == "127.0.0.2/32" else r) for n, r in NETWORKS_V6]
    write_db(data / "geo.mmdb.new", 6, 28, swapped)
    os.replace(data / "geo.mmdb.new", data / "geo.mmdb")
    assert where(p.port, "127.0.0.2") == "a"  # mapped once per configuration: no change yet
    p.reload()
    assert wait_until(lambda: where(p.port, "127.0.0.2") == "b", scaled(10)), p.stderr()[-2000:]
    assert where(p.port, "127.0.0.3") == "b"


def test_reload_with_a_broken_database_keeps_the_old_one(portico, site):
    data = site.parent / "data"
    write_db(data / "geo.mmdb", 6, 24)
    p = portico(config(site))
    assert where(p.port, "127.0.0.2") == "a"
    err_before = len(p.stderr())
    (data / "geo.mmdb.new").write_bytes(b"broken")
    os.replace(data / "geo.mmdb.new", data / "geo.mmdb")
    p.reload()
    assert wait_until(lambda: "reload failed" in p.stderr()[err_before:], scaled(10))
    assert str(data / "geo.mmdb") in p.stderr()[err_before:]
    assert where(p.port, "127.0.0.2") == "a"
    assert where(p.port, "127.0.0.3") == "b"
