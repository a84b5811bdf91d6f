"""TLS listeners end to end (issue 4): SNI selection, RSA+ECDSA side by side, ALPN, protocol
versions, resumption by tickets and by the session cache, HSTS and the https redirect,
X-Forwarded-Proto and the access log's scheme, client certificates, hot certificate swap under a
load loop, and clean handling of plain HTTP, garbage and unknown names on a TLS port.

Certificates come from helpers/certs.py (one throwaway CA per session); clients are curl,
`openssl s_client` and Python's ssl module (helpers/tlsclient.py)."""

import json
import os
import re
import shutil
import socket
import ssl
import threading
import time

import pytest

from helpers import backends as B
from helpers import certs
from helpers.client import Closed, RawConn, get
from helpers.common import free_port, scaled, wait_until
from helpers.tlsclient import TLSConn, context, curl, handshake, s_client, s_client_fingerprint

# --- certificates and configuration


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def chain(pki):
    """The certificate list the most tests use: a.test (RSA first: the default, then ECDSA),
    *.wild.test, b.test (ECDSA only), secure.test."""
    c = {
        "a_rsa": pki.server(["a.test"], "rsa"),
        "a_ec": pki.server(["a.test"], "ec"),
        "wild": pki.server(["*.wild.test"], "rsa"),
        "b": pki.server(["b.test"], "ec"),
        "secure": pki.server(["secure.test", "plain.test"], "ec"),
    }
    c["fp"] = {k: certs.fingerprint(v[0]) for k, v in c.items()}
    c["list"] = [{"cert": c[k][0], "key": c[k][1]}
                 for k in ("a_rsa", "a_ec", "wild", "b", "secure")]
    return c


def tls_start(portico, certificates, sites=None, tls=None, listener=None, plain=False,
              log=None, name=None):
    """Start Portico with a TLS listener on p.port (and, with plain=True, a plain one on
    p.plain_port). The TLS port is the first TLS listener, so https redirects name it."""
    memo = {}

    def cfg(port):
        if port not in memo:
            memo[port] = free_port() if plain else None
        lst = dict({"addr": "127.0.0.1:%d" % port, "tls": True}, **(listener or {}))
        listen = [lst]
        if plain:
            listen.append({"addr": "127.0.0.1:%d" % memo[port]})
        t = {"certificates": certificates}
        t.update(tls or {})
        c = {"listen": listen, "tls": t,
             "sites": sites or [{"routes": [{"match": "/*", "respond": {"body": "hello tls\n"}}]}]}
        if log:
            c["log"] = log
        return c

    p = portico(cfg, name=name)
    p.plain_port = memo[p.port]
    return p


def new_stderr(p, mark):
    return p.stderr()[mark:]


# --- SNI, key types, ALPN, versions


def test_sni_selects_exact_wildcard_and_default(portico, chain, pki):
    p = tls_start(portico, chain["list"])
    fp = chain["fp"]
    default = {fp["a_rsa"], fp["a_ec"]}
    # exact names, verified against the CA by Python's ssl (so the name in the cert matches)
    assert handshake(p.port, "b.test", cafile=pki.ca_cert)["fingerprint"] == fp["b"]
    assert handshake(p.port, "secure.test", cafile=pki.ca_cert)["fingerprint"] == fp["secure"]
    assert handshake(p.port, "plain.test", cafile=pki.ca_cert)["fingerprint"] == fp["secure"]
    assert handshake(p.port, "a.test", cafile=pki.ca_cert)["fingerprint"] in default
    # SNI is case-insensitive
    assert handshake(p.port, "B.TEST")["fingerprint"] == fp["b"]
    # *.wild.test covers exactly one label
    assert handshake(p.port, "x.wild.test", cafile=pki.ca_cert)["fingerprint"] == fp["wild"]
    assert handshake(p.port, "deep.x.wild.test")["fingerprint"] in default
    assert handshake(p.port, "wild.test")["fingerprint"] in default
    # unknown name and no SNI at all: the first certificate's group
    assert handshake(p.port, "unknown.example")["fingerprint"] in default
    assert handshake(p.port, None)["fingerprint"] in default
    # the same with openssl s_client -servername
    assert s_client_fingerprint(p.port, ["-servername", "b.test"]) == fp["b"]
    assert s_client_fingerprint(p.port, ["-servername", "y.wild.test"]) == fp["wild"]
    assert s_client_fingerprint(p.port, ["-servername", "nobody.test"]) in default
    # curl verifies the chain and the name with --cacert/--resolve
    r = curl(["-sS", "--cacert", pki.ca_cert, "--resolve", "z.wild.test:%d:127.0.0.1" % p.port,
              "https://z.wild.test:%d/" % p.port])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello tls\n"


def test_rsa_and_ecdsa_for_the_same_name_are_both_served(portico, chain):
    p = tls_start(portico, chain["list"])
    fp = chain["fp"]
    # TLS 1.2: chosen by the cipher suite's authentication
    tls12 = dict(minv=ssl.TLSVersion.TLSv1_2, maxv=ssl.TLSVersion.TLSv1_2)
    i = handshake(p.port, "a.test", ciphers="ECDHE-RSA-AES128-GCM-SHA256", **tls12)
    assert (i["fingerprint"], i["version"]) == (fp["a_rsa"], "TLSv1.2")
    i = handshake(p.port, "a.test", ciphers="ECDHE-ECDSA-AES128-GCM-SHA256", **tls12)
    assert (i["fingerprint"], i["version"]) == (fp["a_ec"], "TLSv1.2")
    i = handshake(p.port, "a.test", ciphers="ECDHE-RSA-CHACHA20-POLY1305", **tls12)
    assert i["fingerprint"] == fp["a_rsa"]
    # TLS 1.3: chosen by the client's signature algorithms
    args = ["-servername", "a.test", "-tls1_3"]
    assert s_client_fingerprint(p.port, args + ["-sigalgs", "rsa_pss_rsae_sha256"]) == fp["a_rsa"]
    assert s_client_fingerprint(p.port, args + ["-sigalgs", "ecdsa_secp256r1_sha256"]) == fp["a_ec"]
    # and TLS 1.2 by s_client -cipher
    args = ["-servername", "a.test", "-tls1_2"]
    assert s_client_fingerprint(p.port, args + ["-cipher", "ECDHE-RSA-AES256-GCM-SHA384"]) \
        == fp["a_rsa"]
    assert s_client_fingerprint(p.port, args + ["-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"]) \
        == fp["a_ec"]
    # an ECDSA-only name cannot be served to an RSA-only TLS 1.2 client: no fallback to another
    # name's certificate
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(p.port, "b.test", ciphers="ECDHE-RSA-AES128-GCM-SHA256", **tls12)
    assert p.alive()


def test_alpn_http11_negotiated(portico, chain, pki):
    p = tls_start(portico, chain["list"])
    # h2 is offered by default (the server's preference); a client without it gets http/1.1
    with TLSConn(p.port, "a.test", cafile=pki.ca_cert, alpn=["http/1.1", "h2"]) as c:
        assert c.info()["alpn"] == "h2"
    with TLSConn(p.port, "a.test", cafile=pki.ca_cert, alpn=["http/1.1"]) as c:
        assert c.info()["alpn"] == "http/1.1"
        r = c.request("GET", "/", host="a.test")
        assert (r.status, r.body) == (200, b"hello tls\n")
        r = c.request("GET", "/again", host="a.test")  # keep-alive over TLS
        assert r.status == 200
    out = s_client(p.port, ["-servername", "a.test", "-alpn", "http/1.1"]).out
    assert "ALPN protocol: http/1.1" in out
    # no ALPN offered: none negotiated, HTTP/1.1 spoken
    with TLSConn(p.port, "a.test") as c:
        assert c.info()["alpn"] is None
        assert c.request("GET", "/", host="a.test").status == 200
    # only protocols Portico does not speak: no_application_protocol (RFC 7301 3.2)
    out = s_client(p.port, ["-servername", "a.test", "-alpn", "spdy/3.1"]).out
    assert "no application protocol" in out, out
    r = curl(["-sS", "-v", "--http1.1", "--cacert", pki.ca_cert,
              "--resolve", "a.test:%d:127.0.0.1" % p.port, "https://a.test:%d/" % p.port])
    assert r.returncode == 0, r.stderr
    assert b"ALPN: server accepted http/1.1" in r.stderr, r.stderr


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_tls10_and_tls11_refused(portico, chain, flag):
    p = tls_start(portico, chain["list"])
    # SECLEVEL=0 so the local OpenSSL really offers the old protocol; the refusal is the server's
    r = s_client(p.port, ["-servername", "a.test", flag, "-cipher", "DEFAULT@SECLEVEL=0"])
    assert r.returncode != 0
    assert "alert protocol version" in r.out, r.out
    assert "BEGIN CERTIFICATE" not in r.out
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(p.port, "a.test", minv=ssl.TLSVersion.TLSv1, maxv=ssl.TLSVersion.TLSv1_1,
                  ciphers="DEFAULT@SECLEVEL=0")
    r = curl(["-sS", "-k", "--tlsv1.1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
              "https://127.0.0.1:%d/" % p.port])
    assert r.returncode != 0
    # and the listener still works
    assert handshake(p.port, "a.test")["version"] == "TLSv1.3"
    assert wait_until(lambda: "unsupported protocol" in p.stderr(), scaled(3)), p.stderr()


@pytest.mark.parametrize("ver", ["1.2", "1.3"])
def test_tls12_and_tls13_work(portico, chain, pki, ver):
    p = tls_start(portico, chain["list"])
    v = ssl.TLSVersion.TLSv1_2 if ver == "1.2" else ssl.TLSVersion.TLSv1_3
    with TLSConn(p.port, "a.test", cafile=pki.ca_cert, minv=v, maxv=v) as c:
        info = c.info()
        assert info["version"] == "TLSv" + ver
        # forward secrecy and AEAD only
        if ver == "1.2":
            assert info["cipher"].startswith("ECDHE-"), info
            assert "GCM" in info["cipher"] or "CHACHA20" in info["cipher"], info
        r = c.request("GET", "/v", host="a.test")
        assert (r.status, r.body) == (200, b"hello tls\n")
    r = curl(["-sS", "--tlsv" + ver, "--tls-max", ver, "--cacert", pki.ca_cert,
              "--resolve", "a.test:%d:127.0.0.1" % p.port, "-w", "%{http_code}",
              "-o", "/dev/null", "https://a.test:%d/" % p.port])
    assert (r.returncode, r.stdout) == (0, b"200"), r.stderr


def test_min_version_13_refuses_tls12(portico, chain):
    p = tls_start(portico, chain["list"], tls={"min_version": "1.3"})
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(p.port, "a.test", maxv=ssl.TLSVersion.TLSv1_2)
    assert handshake(p.port, "a.test")["version"] == "TLSv1.3"


# --- resumption


def test_resumption_with_tickets(portico, chain, tmp_path):
    p = tls_start(portico, chain["list"])
    sess = str(tmp_path / "sess.pem")
    first = s_client(p.port, ["-servername", "a.test", "-tls1_2", "-sess_out", sess]).out
    assert "New, TLSv1.2" in first, first
    assert "TLS session ticket:" in first, first
    second = s_client(p.port, ["-servername", "a.test", "-tls1_2", "-sess_in", sess]).out
    assert "Reused, TLSv1.2" in second, second
    # -reconnect: five more handshakes, all resumed
    out = s_client(p.port, ["-servername", "a.test", "-tls1_2", "-reconnect"]).out
    assert out.count("Reused, TLSv1.2") == 5, out
    # TLS 1.3 tickets, with Python (the ticket arrives after the handshake: read a response)
    ctx = context()
    with TLSConn(p.port, "a.test", ctx=ctx) as c:
        assert c.request("GET", "/", host="a.test").status == 200
        session = c.sock.session
        assert session.has_ticket
    with TLSConn(p.port, "a.test", ctx=ctx, session=session) as c:
        assert c.info()["reused"] and c.info()["version"] == "TLSv1.3"
        assert c.request("GET", "/", host="a.test").status == 200


def test_resumption_with_session_cache_when_tickets_off(portico, chain, tmp_path):
    p = tls_start(portico, chain["list"], tls={"session_tickets": False})
    sess = str(tmp_path / "sess.pem")
    first = s_client(p.port, ["-servername", "a.test", "-tls1_2", "-sess_out", sess]).out
    assert "New, TLSv1.2" in first, first
    assert "TLS session ticket:" not in first, first  # no ticket: a session id in the cache
    assert re.search(r"Session-ID: [0-9A-F]{16,}", first), first
    second = s_client(p.port, ["-servername", "a.test", "-tls1_2", "-sess_in", sess]).out
    assert "Reused, TLSv1.2" in second, second
    out = s_client(p.port, ["-servername", "a.test", "-tls1_2", "-reconnect", "-no_ticket"]).out
    assert out.count("Reused, TLSv1.2") == 5, out
    # TLS 1.3 with tickets off on the server: stateful tickets backed by the cache
    out = s_client(p.port, ["-servername", "a.test", "-tls1_3", "-sess_out", sess + "13",
                            "-ign_eof"], stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\n"
                                               b"Connection: close\r\n\r\n").out
    assert "New, TLSv1.3" in out and "HTTP/1.1 200" in out, out
    out = s_client(p.port, ["-servername", "a.test", "-tls1_3", "-sess_in", sess + "13"]).out
    assert "Reused, TLSv1.3" in out, out
    # Python, closing with close_notify
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = context(maxv=v)
        with TLSConn(p.port, "a.test", ctx=ctx) as c:
            assert c.request("GET", "/", host="a.test").status == 200
            session = c.sock.session
            c.sock.unwrap()
        with TLSConn(p.port, "a.test", ctx=ctx, session=session) as c:
            assert c.info()["reused"], v


@pytest.mark.parametrize("ver", ["1.2", "1.3"])
def test_session_cache_keeps_sessions_of_clients_closing_without_close_notify(portico, chain,
                                                                             ver):
    """docs/internals/tls.md: "A connection freed without a failure keeps its session (OpenSSL
    would otherwise drop sessions of connections closed without close_notify, which is how most
    clients close)". With tickets off the session lives in the server cache only."""
    p = tls_start(portico, chain["list"], tls={"session_tickets": False})
    v = ssl.TLSVersion.TLSv1_2 if ver == "1.2" else ssl.TLSVersion.TLSv1_3
    ctx = context(maxv=v)
    with TLSConn(p.port, "a.test", ctx=ctx) as c:
        assert c.request("GET", "/", host="a.test").status == 200
        session = c.sock.session
    # closed with a bare TCP FIN, as browsers and many HTTP clients do
    time.sleep(0.2)
    with TLSConn(p.port, "a.test", ctx=ctx, session=session) as c:
        assert c.info()["reused"], "session not resumed from the cache (TLS %s)" % ver
        assert c.request("GET", "/", host="a.test").status == 200


def test_no_resumption_with_tickets_off_and_cache_off(portico, chain, tmp_path):
    """The control for the test above: with neither mechanism nothing is resumed."""
    p = tls_start(portico, chain["list"], tls={"session_tickets": False, "session_cache_size": 0})
    sess = str(tmp_path / "sess.pem")
    s_client(p.port, ["-servername", "a.test", "-tls1_2", "-sess_out", sess])
    if os.path.exists(sess):
        second = s_client(p.port, ["-servername", "a.test", "-tls1_2", "-sess_in", sess]).out
        assert "Reused" not in second, second
        assert "New, TLSv1.2" in second, second


# --- HSTS, https_redirect, X-Forwarded-Proto, access log


def hsts_sites(backend_url=None):
    body = {"respond": {"body": "ok here\n"}}
    return [
        {"hosts": ["secure.test"], "https_redirect": True,
         "hsts": {"max_age": "1d", "include_subdomains": True},
         "routes": [{"match": "/*", **body}]},
        {"hosts": ["plain.test"], "hsts": {"max_age": 600},
         "routes": [{"match": "/*", **body}]},
        {"routes": [{"match": "/*", **body}]},
    ]


def test_hsts_only_on_https_responses(portico, chain, pki):
    p = tls_start(portico, chain["list"], sites=hsts_sites(), plain=True)
    # https: the header, with include_subdomains
    r = TLSConn(p.port, "secure.test", cafile=pki.ca_cert).request("GET", "/x", host="secure.test")
    assert r.status == 200
    assert r.header_all("Strict-Transport-Security") == ["max-age=86400; includeSubDomains"], r
    r = TLSConn(p.port, "plain.test", cafile=pki.ca_cert).request("GET", "/x", host="plain.test")
    assert r.header_all("Strict-Transport-Security") == ["max-age=600"], r
    # plain http: never (the 308 of the redirecting site, the 200 of the other)
    r = get(p.plain_port, "/x", host="secure.test")
    assert r.status == 308 and not r.has_header("Strict-Transport-Security"), r
    r = get(p.plain_port, "/x", host="plain.test")
    assert r.status == 200 and not r.has_header("Strict-Transport-Security"), r
    # a site without hsts: no header over https either
    r = TLSConn(p.port, "a.test").request("GET", "/x", host="other.test")
    assert r.status == 200 and not r.has_header("Strict-Transport-Security"), r
    # curl sees it over https only
    res = curl(["-sS", "-D", "-", "-o", "/dev/null", "--cacert", pki.ca_cert,
                "--resolve", "plain.test:%d:127.0.0.1" % p.port, "https://plain.test:%d/" % p.port])
    assert b"strict-transport-security: max-age=600" in res.stdout.lower(), res
    res = curl(["-sS", "-D", "-", "-o", "/dev/null", "http://127.0.0.1:%d/" % p.plain_port,
                "-H", "Host: plain.test"])
    assert b"strict-transport-security" not in res.stdout.lower(), res


def test_site_hsts_replaces_the_backends_own(portico, backend, chain, pki):
    """A site that sets hsts sends its policy alone: a backend's Strict-Transport-Security is
    dropped (two policies would leave the browser to pick one). A site without hsts passes the
    backend's through."""
    b = backend(B.fixed(200, b"ok", headers=[("Strict-Transport-Security", "max-age=5")]))
    sites = [{"hosts": ["secure.test"], "hsts": {"max_age": 600},
              "routes": [{"match": "/*", "proxy": {"to": b.url}}]},
             {"routes": [{"match": "/*", "proxy": {"to": b.url}}]}]
    p = tls_start(portico, chain["list"], sites=sites)
    r = TLSConn(p.port, "secure.test", cafile=pki.ca_cert).request("GET", "/", host="secure.test")
    assert r.status == 200, r
    assert r.header_all("Strict-Transport-Security") == ["max-age=600"], r
    r = TLSConn(p.port, "other.test").request("GET", "/", host="other.test")
    assert r.header_all("Strict-Transport-Security") == ["max-age=5"], r


def test_https_redirect_308_except_acme_challenges(portico, chain, pki):
    p = tls_start(portico, chain["list"], sites=hsts_sites(), plain=True)
    r = get(p.plain_port, "/p/a%20b/c?x=1&y=two", host="secure.test:%d" % p.plain_port)
    assert r.status == 308, r
    assert r.header("Location") == "https://secure.test:%d/p/a%%20b/c?x=1&y=two" % p.port, r
    r = get(p.plain_port, "/", host="SECURE.test")
    assert r.status == 308
    assert r.header("Location").lower() == "https://secure.test:%d/" % p.port, r
    # other methods too: 308 keeps the method and body
    with RawConn(p.plain_port) as c:
        r = c.request("POST", "/form?q", body=b"abc", host="secure.test")
        assert r.status == 308
        assert r.header("Location") == "https://secure.test:%d/form?q" % p.port
    # ACME HTTP-01 challenges are not redirected (no pending token here: the route answers)
    r = get(p.plain_port, "/.well-known/acme-challenge/sometoken", host="secure.test")
    assert r.status != 308 and not r.has_header("Location"), r
    # a site without https_redirect is served over plain http
    r = get(p.plain_port, "/x", host="plain.test")
    assert (r.status, r.body) == (200, b"ok here\n")
    # https requests to the redirecting site are served, not redirected
    r = TLSConn(p.port, "secure.test", cafile=pki.ca_cert).request("GET", "/x", host="secure.test")
    assert (r.status, r.body) == (200, b"ok here\n")
    # curl -L follows the redirect from plain to https and verifies the certificate
    res = curl(["-sS", "-L", "--cacert", pki.ca_cert,
                "--resolve", "secure.test:%d:127.0.0.1" % p.port,
                "--resolve", "secure.test:%d:127.0.0.1" % p.plain_port,
                "-w", "\n%{http_code} %{num_redirects} %{url_effective}",
                "http://secure.test:%d/deep/path?k=v" % p.plain_port])
    assert res.returncode == 0, res.stderr
    want = "ok here\n\n200 1 https://secure.test:%d/deep/path?k=v" % p.port
    assert res.stdout == want.encode(), res.stdout


def test_forwarded_proto_and_access_log_scheme(portico, backend, chain):
    b = backend(B.echo())
    sites = [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}]

    # upstreams need to be in the config: wrap tls_start's config
    memo = {}

    def cfg(port):
        if port not in memo:
            memo[port] = free_port()
        return {"listen": [{"addr": "127.0.0.1:%d" % port, "tls": True},
                           {"addr": "127.0.0.1:%d" % memo[port]}],
                "tls": {"certificates": chain["list"]},
                "upstreams": {"app": {"targets": [{"url": b.url}]}},
                "log": {"format": "json"}, "sites": sites}

    p = portico(cfg)
    plain_port = memo[p.port]
    with TLSConn(p.port, "a.test") as c:
        r = c.request("GET", "/over-tls", host="a.test",
                      headers=[("X-Forwarded-Proto", "http")])  # a client's claim is replaced
        assert r.status == 200, r
        seen = r.json()
    hdrs = [(k.lower(), v) for k, v in seen["headers"]]
    assert [v for k, v in hdrs if k == "x-forwarded-proto"] == ["https"], hdrs
    r = get(plain_port, "/over-plain", host="a.test",
            headers=[("X-Forwarded-Proto", "https")])
    hdrs = [(k.lower(), v) for k, v in r.json()["headers"]]
    assert [v for k, v in hdrs if k == "x-forwarded-proto"] == ["http"], hdrs

    def lines():
        out = {}
        for ln in p.access_log():
            try:
                d = json.loads(ln)
            except ValueError:
                continue
            out[d.get("path") or d.get("uri")] = d
        return out if "/over-tls" in out and "/over-plain" in out else None

    got = wait_until(lines, scaled(5))
    assert got, p.access_log()
    assert got["/over-tls"]["scheme"] == "https", got
    assert got["/over-plain"]["scheme"] == "http", got
    assert got["/over-tls"]["upstream"] == "app"


# --- client certificates


def mtls_start(portico, backend, chain, pki, auth, headers=True):
    b = backend(B.echo())
    listener = {"client_ca": pki.ca_cert, "client_auth": auth}
    if headers:
        listener["client_cert_headers"] = {"subject": "X-Client-Subject",
                                           "fingerprint": "X-Client-Fingerprint"}

    def cfg(port):
        return {"listen": [dict({"addr": "127.0.0.1:%d" % port, "tls": True}, **listener)],
                "tls": {"certificates": chain["list"]},
                "upstreams": {"app": {"targets": [{"url": b.url}]}},
                "sites": [{"routes": [{"match": "/*", "proxy": {"to": "app"}}]}]}

    return portico(cfg)


FORGED = [("X-Client-Subject", "CN=admin"), ("x-client-fingerprint", "00" * 32)]


def seen_headers(r):
    return [(k.lower(), v) for k, v in r.json()["headers"]]


def request_or_fail(port, **kw):
    """A GET over TLS; the Response, or the exception that ended it."""
    try:
        with TLSConn(port, "a.test", **kw) as c:
            return c.request("GET", "/", host="a.test", headers=FORGED)
    except (ssl.SSLError, OSError, Closed) as e:
        return e


def norm_fp(v):
    return v.replace(":", "").lower() if v else v


def test_client_auth_required(portico, backend, chain, pki, tmp_path_factory):
    p = mtls_start(portico, backend, chain, pki, "required")
    # no certificate: refused (TLS 1.3 reports it on the first read, 1.2 in the handshake)
    for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        r = request_or_fail(p.port, maxv=v)
        assert isinstance(r, Exception), r
    # a certificate from another CA: refused
    other = certs.session_pki(tmp_path_factory, "other")
    crt, key = other.client("mallory")
    r = request_or_fail(p.port, cert=crt, key=key)
    assert isinstance(r, Exception), r
    # curl without a certificate fails, with one succeeds
    res = curl(["-sS", "-k", "https://127.0.0.1:%d/" % p.port])
    assert res.returncode != 0
    crt, key = pki.client("alice")
    for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        r = request_or_fail(p.port, cert=crt, key=key, maxv=v)
        assert not isinstance(r, Exception), r
        assert r.status == 200
        h = seen_headers(r)
        assert [v for k, v in h if k == "x-client-subject"] == ["CN=alice,O=Portico Tests"], h
        assert [norm_fp(v) for k, v in h if k == "x-client-fingerprint"] == \
            [certs.fingerprint(crt)], h
    res = curl(["-sS", "-k", "--cert", crt, "--key", key, "-o", "/dev/null", "-w",
                "%{http_code}", "https://127.0.0.1:%d/" % p.port])
    assert (res.returncode, res.stdout) == (0, b"200"), res.stderr
    assert p.alive()


def test_client_auth_optional_and_forged_headers_removed(portico, backend, chain, pki):
    p = mtls_start(portico, backend, chain, pki, "optional")
    # without a certificate: served, and the client's forged copies never reach the backend
    r = request_or_fail(p.port)
    assert not isinstance(r, Exception), r
    assert r.status == 200
    h = seen_headers(r)
    assert not [v for k, v in h if k in ("x-client-subject", "x-client-fingerprint")], h
    # with one: the verified identity, once, and not the forged one
    crt, key = pki.client("bob")
    r = request_or_fail(p.port, cert=crt, key=key)
    assert not isinstance(r, Exception), r
    h = seen_headers(r)
    assert [v for k, v in h if k == "x-client-subject"] == ["CN=bob,O=Portico Tests"], h
    assert [norm_fp(v) for k, v in h if k == "x-client-fingerprint"] == \
        [certs.fingerprint(crt)], h
    # a resumed session keeps the identity
    ctx = context(cert=crt, key=key)
    with TLSConn(p.port, "a.test", ctx=ctx) as c:
        assert c.request("GET", "/", host="a.test").status == 200
        sess = c.sock.session
    with TLSConn(p.port, "a.test", ctx=ctx, session=sess) as c:
        assert c.info()["reused"]
        r = c.request("GET", "/", host="a.test", headers=FORGED)
        h = seen_headers(r)
        assert [v for k, v in h if k == "x-client-subject"] == ["CN=bob,O=Portico Tests"], \
            (c.info(), h)


def test_forged_client_cert_headers_removed_without_client_auth_headers_named(portico, backend,
                                                                              chain, pki):
    """Headers named in client_cert_headers are removed even on a listener where no client
    certificate was sent; other headers pass."""
    p = mtls_start(portico, backend, chain, pki, "optional")
    with TLSConn(p.port, "a.test") as c:
        r = c.request("GET", "/", host="a.test",
                      headers=FORGED + [("X-Client-Subject", "second"), ("X-Other", "kept")])
    h = seen_headers(r)
    assert not [v for k, v in h if k in ("x-client-subject", "x-client-fingerprint")], h
    assert ("x-other", "kept") in h


# --- hot certificate swap


def install(src, dst):
    """Replace dst atomically with a copy of src."""
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class LoadLoop(threading.Thread):
    """Keep-alive HTTPS requests (a fresh connection every `per_conn` requests) until stopped or
    `max_requests`/`max_seconds` are reached; counts successes and records failures."""

    def __init__(self, port, sni, per_conn=20, max_requests=20000, max_seconds=60):
        super().__init__(daemon=True)
        self.port, self.sni, self.per_conn = port, sni, per_conn
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.ok = 0
        self.handshakes = 0
        self.failures = []
        self.fingerprints = set()
        self.stop_flag = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        n = 0
        while not self.stop_flag.is_set() and n < self.max_requests \
                and time.monotonic() < deadline:
            try:
                with TLSConn(self.port, self.sni, timeout=scaled(10)) as c:
                    self.handshakes += 1
                    self.fingerprints.add(c.info()["fingerprint"])
                    for _ in range(self.per_conn):
                        n += 1
                        r = c.request("GET", "/load", host=self.sni)
                        if r.status != 200 or r.body != b"hello tls\n":
                            self.failures.append("status %s body %r" % (r.status, r.body[:80]))
                        else:
                            self.ok += 1
                        if self.stop_flag.is_set():
                            break
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self.failures.append(repr(e))
                n += 1


def test_hot_swap_on_sighup_under_load_with_zero_failures(portico, pki, tmp_path):
    one = pki.server(["swap.test"], "ec", tag="one")
    two = pki.server(["swap.test"], "ec", tag="two")
    live_crt, live_key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    install(one[0], live_crt)
    install(one[1], live_key)
    p = tls_start(portico, [{"cert": live_crt, "key": live_key}])
    fp1, fp2 = certs.fingerprint(one[0]), certs.fingerprint(two[0])
    assert handshake(p.port, "swap.test", cafile=pki.ca_cert)["fingerprint"] == fp1

    load = LoadLoop(p.port, "swap.test")
    load.start()
    try:
        assert wait_until(lambda: load.ok >= 50 or load.failures, scaled(10))
        # a keep-alive connection opened before the swap keeps working after it
        held = TLSConn(p.port, "swap.test")
        assert held.request("GET", "/", host="swap.test").status == 200
        install(two[1], live_key)
        install(two[0], live_crt)
        before = load.ok
        p.reload()  # SIGHUP
        got = wait_until(lambda: handshake(p.port, "swap.test",
                                           cafile=pki.ca_cert)["fingerprint"] == fp2, scaled(10))
        assert got, "new certificate not served after SIGHUP; stderr:\n" + p.stderr()[-2000:]
        # keep the load running a while after the swap: new handshakes see the new certificate
        assert wait_until(lambda: load.ok >= before + 300 and fp2 in load.fingerprints
                          or load.failures, scaled(15))
        time.sleep(0.5)
        r = held.request("GET", "/", host="swap.test")
        assert r.status == 200
        held.close()
        # a few more swaps back and forth, each by SIGHUP, under the same load
        for i in range(4):
            src = one if i % 2 == 0 else two
            want = certs.fingerprint(src[0])
            install(src[1], live_key)
            install(src[0], live_crt)
            p.reload()
            assert wait_until(lambda: handshake(p.port, "swap.test")["fingerprint"] == want,
                              scaled(10)), p.stderr()[-2000:]
            mark = load.ok
            assert wait_until(lambda: load.ok >= mark + 100 or load.failures, scaled(10))
    finally:
        load.stop_flag.set()
        load.join(scaled(30))
    assert not load.is_alive()
    assert load.failures == [], load.failures[:10]
    assert fp1 in load.fingerprints and fp2 in load.fingerprints, load.fingerprints
    assert load.ok > before + 300
    print("load loop: %d requests ok, %d handshakes, %d before the swap"
          % (load.ok, load.handshakes, before))
    assert p.alive()


@pytest.mark.parametrize("breakage", ["garbage_cert", "mismatched_key", "garbage_key"])
def test_broken_certificate_on_sighup_refused_old_keeps_serving(portico, pki, tmp_path,
                                                                 breakage):
    one = pki.server(["swap.test"], "rsa", tag="keep")
    other = pki.server(["unrelated.test"], "rsa")
    live_crt, live_key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    install(one[0], live_crt)
    install(one[1], live_key)
    p = tls_start(portico, [{"cert": live_crt, "key": live_key}])
    fp1 = certs.fingerprint(one[0])
    assert handshake(p.port, "swap.test")["fingerprint"] == fp1
    mark = len(p.stderr())
    if breakage == "garbage_cert":
        with open(live_crt, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
        bad = live_crt
    elif breakage == "garbage_key":
        with open(live_key, "w") as f:
            f.write("this is not a key\n")
        bad = live_key
    else:
        install(other[1], live_key)  # a valid key that is not the certificate's
        bad = live_key
    p.reload()
    errs = wait_until(lambda: [ln for ln in new_stderr(p, mark).splitlines()
                               if " error " in ln and os.path.basename(bad) in ln], scaled(8))
    assert errs, new_stderr(p, mark)
    if breakage == "mismatched_key":
        assert any("does not match" in ln for ln in errs), errs
    for _ in range(3):
        assert handshake(p.port, "swap.test")["fingerprint"] == fp1
    r = TLSConn(p.port, "swap.test").request("GET", "/", host="swap.test")
    assert (r.status, r.body) == (200, b"hello tls\n")
    assert p.alive()


# --- clean errors


def raw_exchange(port, data, read=True):
    """Send data on a plain TCP connection to port; what came back before close (or reset)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    got = b""
    try:
        if data:
            s.sendall(data)
        if read:
            while len(got) < 65536:
                d = s.recv(4096)
                if not d:
                    break
                got += d
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return got


def junk(n):
    """n random bytes that never start like a TLS handshake record (0x16): such a header makes
    the server wait, rightly, for the rest of a record that never comes."""
    b = bytearray(os.urandom(n))
    b[0] = 0x42
    return bytes(b)


def test_plain_http_garbage_and_unknown_sni_are_clean(portico, chain, pki):
    p = tls_start(portico, chain["list"], plain=True)
    mark = len(p.stderr())
    # plain HTTP to the TLS port: closed, and no HTTP response leaks a TLS-port answer
    got = raw_exchange(p.port, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert not got.startswith(b"HTTP/1.1 200"), got
    # garbage: random bytes, a TLS record header with a huge length, a truncated ClientHello
    raw_exchange(p.port, junk(4096))
    raw_exchange(p.port, b"\x16\x03\x01\xff\xff" + b"\x01" * 300)
    raw_exchange(p.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20, read=False)
    raw_exchange(p.port, b"", read=False)  # connect and close
    # a client that aborts a real handshake half-way: half a real ClientHello, then close
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context().wrap_bio(incoming, outgoing, server_hostname="a.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"
    raw_exchange(p.port, hello[:len(hello) // 2], read=False)
    # a whole ClientHello, then close without reading the answer
    raw_exchange(p.port, hello, read=False)
    # unknown SNI: the default certificate, a working connection
    with TLSConn(p.port, "nobody.invalid") as c:
        assert c.info()["fingerprint"] in {chain["fp"]["a_rsa"], chain["fp"]["a_ec"]}
        assert c.request("GET", "/", host="nobody.invalid").status == 200
    # many of each, then the process still serves both listeners
    for i in range(20):
        raw_exchange(p.port, b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        raw_exchange(p.port, junk(64 + i * 37))
    with TLSConn(p.port, "a.test", cafile=pki.ca_cert) as c:
        assert c.request("GET", "/", host="a.test").status == 200
    assert get(p.plain_port, "/", host="a.test").status == 200
    assert p.alive()
    # each failure is logged at info level, none at error
    assert wait_until(lambda: "plain HTTP request on a TLS port" in new_stderr(p, mark),
                      scaled(3)), new_stderr(p, mark)
    text = new_stderr(p, mark)
    plain = [ln for ln in text.splitlines() if "plain HTTP request on a TLS port" in ln]
    assert len(plain) == 21, plain  # one line per attempt, no more
    fails = [ln for ln in text.splitlines() if "TLS handshake" in ln]
    assert fails and all(" info " in ln for ln in fails), fails
    assert not [ln for ln in text.splitlines() if " error " in ln], text
    # the sanitizer check (PORTICO_SANITIZE=1) runs when the fixture stops the process
