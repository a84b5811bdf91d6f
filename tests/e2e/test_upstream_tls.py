"""TLS to backends: https targets verified against ca_file (or the system store), with the
target's host name; tls_verify: false only when written; connections verified for one upstream
never serve another."""

import subprocess

import pytest

from helpers.client import RawConn


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("upstream-tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / "key.pem"), "-out",
                    str(d / "cert.pem"), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    (d / "www").mkdir()
    (d / "www" / "hello.txt").write_bytes(b"hello over tls\n")
    return d


@pytest.fixture
def tls_backend(portico, tls_files):
    """A Portico serving files over TLS for name 'localhost': the https target."""
    def cfg(port):
        return {
            "listen": [{"addr": "127.0.0.1:%d" % port, "tls": True}],
            "tls": {"certificates": [{"cert": str(tls_files / "cert.pem"),
                                      "key": str(tls_files / "key.pem")}]},
            "sites": [{"routes": [{"match": "/*", "static": {"root": str(tls_files / "www")}}]}],
        }
    return portico(cfg, name="tlsbackend")


def front(portico, port, **upstreams):
    ups = {name: dict({"targets": [{"url": "https://localhost:%d" % port}]}, **extra)
           for name, extra in upstreams.items()}
    routes = [{"match": "/%s/*" % name, "proxy": {"to": name, "strip_prefix": True}}
              for name in upstreams]
    return portico({"upstreams": ups, "sites": [{"routes": routes}]}, name="front")


def get(p, path):
    with RawConn(p.port) as c:
        return c.request("GET", path)


def test_https_target_verified_with_ca_file(portico, tls_files, tls_backend):
    p = front(portico, tls_backend.port, good={"ca_file": str(tls_files / "cert.pem")})
    r = get(p, "/good/hello.txt")
    assert r.status == 200 and r.body == b"hello over tls\n", r


def test_https_target_with_unknown_ca_is_refused_with_502(portico, tls_backend):
    p = front(portico, tls_backend.port, bad={})
    r = get(p, "/bad/hello.txt")
    assert r.status == 502, r
    assert "certificate verify failed" in p.stderr()
    assert b"certificate" not in r.body  # the reason is logged, never sent to the client


def test_verified_connection_is_not_reused_for_an_upstream_that_does_not_trust_it(
        portico, tls_files, tls_backend):
    """Regression: the keep-alive pool was keyed by address and host only, so an upstream
    without the CA reused a connection verified for another upstream with the CA."""
    p = front(portico, tls_backend.port, good={"ca_file": str(tls_files / "cert.pem")}, bad={})
    assert get(p, "/good/hello.txt").status == 200
    assert get(p, "/bad/hello.txt").status == 502
    assert get(p, "/good/hello.txt").status == 200
    assert get(p, "/bad/hello.txt").status == 502


def test_tls_verify_false_connects_and_warns_at_start(portico, tls_backend):
    p = front(portico, tls_backend.port, lax={"tls_verify": False})
    assert "tls_verify is false" in p.stderr()
    r = get(p, "/lax/hello.txt")
    assert r.status == 200 and r.body == b"hello over tls\n", r


def test_https_target_name_must_match_certificate(portico, tls_files, tls_backend):
    """The certificate names localhost; the target is addressed as 127.0.0.1."""
    p = portico({
        "upstreams": {"ip": {"targets": [{"url": "https://127.0.0.1:%d" % tls_backend.port}],
                             "ca_file": str(tls_files / "cert.pem")}},
        "sites": [{"routes": [{"match": "/*", "proxy": {"to": "ip"}}]}],
    }, name="front")
    assert get(p, "/hello.txt").status == 502
