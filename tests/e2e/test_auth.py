"""Authentication at the edge: basic_auth (htpasswd, crypt(3) hashes) and jwt (HS256, RS256,
ES256, EdDSA; keys from a file, a secret or a JWKS URL), end to end (src/guard/auth_basic.c,
src/guard/jwt.c, src/server/guard_auth.c).

Hashes come from Python's crypt module (libxcrypt underneath: bcrypt and SHA-crypt); keys and
signatures from python3-cryptography. A refused request never reaches the backend, which counts
what it gets.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import admin as A
from helpers import backends as B
from helpers import certs
from helpers.client import get, request
from helpers.common import free_port, wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SECRET = b"0123456789abcdef0123456789abcdef-secret"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def sign(alg, key, claims, kid=None, header=None):
    h = {"alg": alg, "typ": "JWT"}
    if kid:
        h["kid"] = kid
    h.update(header or {})
    si = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    if alg == "HS256":
        sig = hmac.new(key, si, hashlib.sha256).digest()
    elif alg == "RS256":
        sig = key.sign(si, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(si, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        sig = key.sign(si)
    else:
        sig = b""
    return si.decode() + "." + b64u(sig)


def uint(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def jwk(kid, key):
    if isinstance(key, bytes):
        return {"kty": "oct", "kid": kid, "k": b64u(key)}
    pub = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        n = pub.public_numbers()
        return {"kty": "RSA", "kid": kid, "alg": "RS256", "n": uint(n.n), "e": uint(n.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        n = pub.public_numbers()
        return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(n.x.to_bytes(32, "big")),
                "y": b64u(n.y.to_bytes(32, "big"))}
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(raw)}


@pytest.fixture(scope="module")
def keys():
    return {"HS256": SECRET,
            "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1()),
            "EdDSA": ed25519.Ed25519PrivateKey.generate()}


def claims(**kw):
    now = int(time.time())
    c = {"sub": "alice", "iss": "https://issuer.test", "aud": "api", "exp": now + 300,
         "nbf": now - 10}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def site(route_auth, backend_url, site_auth=None):
    routes = [{"match": "/open/*", "respond": {"status": 200, "body": "open\n"}},
              dict({"match": "/*", "proxy": {"to": backend_url}}, **route_auth)]
    s = {"routes": routes}
    if site_auth:
        s.update(site_auth)
    return {"sites": [s]}


# ---- basic_auth ----


@pytest.fixture
def htpasswd(tmp_path):
    path = tmp_path / "users.htpasswd"
    path.write_text("# staff\nbob:%s\nsue:%s\n\n" % (
        crypt.crypt("bob-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5)),
        crypt.crypt("sue-pw", crypt.mksalt(crypt.METHOD_SHA512))))
    return str(path)


def test_basic_bcrypt_and_sha512_users_pass_and_failures_get_401_with_challenge(
        portico, backend, htpasswd):
    b = backend(B.echo())
    p = portico(site({"basic_auth": {"realm": "Staff", "htpasswd": htpasswd}}, b.url))
    assert get(p.port, "/x", headers=basic("bob", "bob-pw")).status == 200
    assert get(p.port, "/x", headers=basic("bob", "bob-pw")).status == 200  # cached
    assert get(p.port, "/x", headers=basic("sue", "sue-pw")).status == 200
    # nginx's default: the credentials go on to the backend
    assert b.requests[-1].header("authorization", "").startswith("Basic ")
    n = len(b.requests)
    for h in (basic("bob", "sue-pw"), basic("eve", "bob-pw"), {}, bearer("x"),
              {"Authorization": "Basic !!!"}):
        r = get(p.port, "/x", headers=h)
        assert r.status == 401, h
        assert r.header("www-authenticate") == 'Basic realm="Staff", charset="UTF-8"'
        assert b"pw" not in r.body
    assert len(b.requests) == n
    assert get(p.port, "/open/a").status == 200  # the site has none; only the route
    err = p.stderr()
    assert "refused by basic_auth: wrong user or password" in err
    assert "bob-pw" not in err and "sue-pw" not in err


def test_basic_site_guard_route_off_and_credentials_not_forwarded(portico, backend, htpasswd):
    b = backend(B.echo())
    cfg = site({"basic_auth": {"htpasswd": htpasswd, "forward_credentials": False}}, b.url,
               site_auth={"basic_auth": {"htpasswd": htpasswd}})
    cfg["sites"][0]["routes"].insert(0, {"match": "/public/*", "basic_auth": "off",
                                         "proxy": {"to": b.url}})
    p = portico(cfg)
    assert get(p.port, "/open/a").status == 401  # the site's guard
    assert get(p.port, "/open/a", headers=basic("bob", "bob-pw")).status == 200
    r = get(p.port, "/public/a")
    assert r.status == 200  # off lifts the site's
    assert get(p.port, "/x", headers=basic("sue", "sue-pw")).status == 200
    assert b.requests[-1].header("authorization") is None


# ---- basic_auth: the hash runs off the worker's loop (src/server/offload.c) ----


@pytest.fixture(scope="module")
def slow_htpasswd(tmp_path_factory):
    """A bcrypt user at cost 14 (about a second a hash) and a fast one."""
    path = tmp_path_factory.mktemp("slow") / "users.htpasswd"
    path.write_text("slow:%s\nfast:%s\n" % (
        crypt.crypt("slow-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 14)),
        crypt.crypt("fast-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))))
    return str(path)


def guesses(port, n, target="/x", user="slow"):
    """n concurrent wrong-password requests; returns [(status, monotonic time answered)] and
    the threads (joined by the caller through the list's filling)."""
    out = []

    def one(i):
        r = get(port, target, headers=basic(user, "wrong-%d" % i), timeout=60)
        out.append((r.status, time.monotonic()))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    return out, ts


def test_basic_hash_does_not_stall_the_worker(portico, backend, slow_htpasswd):
    b = backend(B.echo())
    p = portico(site({"basic_auth": {"htpasswd": slow_htpasswd}}, b.url))  # workers: 1
    out, ts = guesses(p.port, 4)
    time.sleep(0.1)  # the guesses are in (their hashes take two rounds of the two threads)
    r = get(p.port, "/open/a")
    plain_at = time.monotonic()
    assert r.status == 200
    for t in ts:
        t.join()
    assert sorted(s for s, _ in out) == [401] * 4
    # answered while the hashes ran: before the first of them ended (a worker that hashed on
    # its loop would have answered it after at least the first guess's hash)
    assert plain_at < min(at for _, at in out)
    assert get(p.port, "/x", headers=basic("slow", "slow-pw"), timeout=60).status == 200
    assert len(b.requests) == 1
    err = p.stderr()
    assert err.count("refused by basic_auth: wrong user or password") >= 1
    assert "wrong-" not in err and "slow-pw" not in err


def test_basic_client_gone_during_the_hash(portico, backend, slow_htpasswd):
    b = backend(B.echo())
    p = portico(site({"basic_auth": {"htpasswd": slow_htpasswd}}, b.url))
    socks = []
    for i in range(5):  # two hash, three wait in the queue: both ends are cut short
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n"
                  b"Authorization: Basic %s\r\n\r\n" %
                  base64.b64encode(b"slow:" + (b"slow-pw" if i % 2 else b"nope")))
        socks.append(s)
    time.sleep(0.1)
    for s in socks:
        s.close()
    assert get(p.port, "/open/a").status == 200
    assert get(p.port, "/x", headers=basic("fast", "fast-pw"), timeout=60).status == 200
    time.sleep(2)  # the hashes that ran finish for no one
    assert p.alive()
    assert [r.path for r in b.requests] == ["/x"]


def test_basic_hash_queue_full_is_503(portico, backend, slow_htpasswd):
    b = backend(B.echo())
    cfg = site({"basic_auth": {"htpasswd": slow_htpasswd}}, b.url)
    cfg["limits"] = {"auth_hash_queue": 1}
    p = portico(cfg)
    out, ts = guesses(p.port, 6)
    for t in ts:
        t.join()
    statuses = sorted(s for s, _ in out)
    # at least the first is queued (and hashed); how many more depends on when the threads
    # take them, but six cannot fit in one queued and two running
    assert set(statuses) == {401, 503}, statuses
    assert "refused by basic_auth: too many password hashes waiting" in p.stderr()
    assert len(b.requests) == 0


def guarded_chain(auth_url, backend_url, htpasswd, secret_file, h2c=False):
    """basic_auth, jwt and forward_auth on one route: the three in their order."""
    def build(port):
        cfg = site({"basic_auth": {"htpasswd": htpasswd},
                    "jwt": {"secret_file": secret_file, "header": "X-Token", "require": []},
                    "forward_auth": {"url": auth_url + "/check", "request_headers": ["X-Key"],
                                     "response_headers": ["X-User"]}}, backend_url)
        if h2c:
            cfg["listen"] = [{"addr": "127.0.0.1:%d" % port, "http2": True}]
        return cfg
    return build


def key_service(req, w):
    if req.header("x-key") == "good":
        w.respond(200, [("X-User", "alice"), ("Content-Length", "0")])
    else:
        w.respond(403, [("Content-Type", "text/plain")], b"no key\n")


@pytest.mark.parametrize("h2c", [False, True], ids=["http1", "http2"])
def test_basic_hash_wait_then_jwt_then_forward_auth_wait(portico, backend, tmp_path, h2c):
    import subprocess
    auth = backend(B.slow(0.2, key_service), "auth")
    b = backend(B.echo())
    sec = tmp_path / "secret"
    sec.write_bytes(SECRET)
    path = tmp_path / "users.htpasswd"
    # a fresh password per request misses the success cache: every request waits for its hash
    users = ["u%d" % i for i in range(8)]
    path.write_text("".join("%s:%s\n" % (u, crypt.crypt(u + "-pw", crypt.mksalt(
        crypt.METHOD_BLOWFISH, rounds=1 << 8))) for u in users))
    p = portico(guarded_chain(auth.url, b.url, str(path), str(sec), h2c))
    tok = sign("HS256", SECRET, {"sub": "svc"})
    data = b"z" * 100000

    def call(user, pw, token=tok, key="good", body=None):
        hdrs = dict(basic(user, pw), **{"X-Token": token, "X-Key": key})
        if not h2c:
            r = request(p.port, "POST" if body else "GET", "/x", headers=hdrs, body=body,
                        timeout=30)
            return r.status, r.body
        cmd = ["curl", "-sS", "--http2-prior-knowledge", "-w", "\n%{http_code}"]
        for k, v in hdrs.items():
            cmd += ["-H", "%s: %s" % (k, v)]
        if body:
            cmd += ["-X", "POST", "--data-binary", "@-"]
        r = subprocess.run(cmd + ["http://127.0.0.1:%d/x" % p.port], input=body or b"",
                           capture_output=True, timeout=30)
        out, _, code = r.stdout.rpartition(b"\n")
        return int(code), out

    st, body = call("u0", "u0-pw")
    assert st == 200, body
    seen = json.loads(body)
    assert [v for k, v in seen["headers"] if k.lower() == "x-user"] == ["alice"]
    st, body = call("u1", "u1-pw", body=data)  # the body waits, unread, through both waits
    assert st == 200 and json.loads(body)["body_len"] == len(data)
    assert call("u2", "wrong")[0] == 401
    assert call("u3", "u3-pw", token="bad")[0] == 401  # jwt, after the hash's wait
    st, body = call("u4", "u4-pw", key="bad")          # forward_auth, after the hash's wait
    assert st == 403 and b"no key" in body
    assert call("u0", "u0-pw")[0] == 200  # cached: no hash wait, then the call's
    assert len(b.requests) == 3
    assert auth.last().header("x-forwarded-uri") == "/x"


@pytest.mark.parametrize("line", ["carl:plaintext", "carl:$apr1$abc$0123456789abcdefghijkl",
                                  "carl:abCDefGhIjKlM", "nocolon"])
def test_basic_refuses_weak_hashes_at_file_line(portico_bin, tmp_path, line):
    import subprocess
    path = tmp_path / "h"
    path.write_text("ok:$6$saltsalt$" + "a" * 86 + "\n" + line + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("listen: [{addr: '127.0.0.1:1'}]\nsites:\n- routes:\n  - match: /*\n"
                   "    respond: {status: 200}\n    basic_auth: {htpasswd: %s}\n" % path)
    r = subprocess.run([portico_bin, "check", "-c", str(cfg)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "%s:2:" % path in r.stderr


# ---- jwt ----


@pytest.fixture
def jwks_file(tmp_path, keys):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk("rs", keys["RS256"]), jwk("es", keys["ES256"]),
                                         jwk("ed", keys["EdDSA"]), jwk("hs", SECRET)]}))
    return str(path)


def jwt_cfg(**kw):
    c = {"issuer": "https://issuer.test", "audience": "api",
         "claims_to_headers": {"sub": "X-User-Id", "email": "X-User-Email", "roles": "X-Roles"}}
    c.update(kw)
    return {"jwt": {k: v for k, v in c.items() if v is not None}}


KIDS = {"HS256": "hs", "RS256": "rs", "ES256": "es", "EdDSA": "ed"}


def test_jwt_each_algorithm_passes_and_claims_reach_the_backend(portico, backend, jwks_file,
                                                              keys):
    b = backend(B.echo())
    p = portico(site(jwt_cfg(jwks_file=jwks_file), b.url))
    for alg, key in keys.items():
        tok = sign(alg, key, claims(roles=["a", "b"]), kid=KIDS[alg])
        r = get(p.port, "/x", headers=dict(bearer(tok), **{"X-User-Id": "mallory",
                                                           "X-User-Email": "m@evil"}))
        assert r.status == 200, (alg, r)
        got = b.requests[-1]
        assert got.header_all("x-user-id") == ["alice"]
        assert got.header_all("x-user-email") == []  # absent claim: the client's copy is gone
        assert got.header("x-roles") == '["a","b"]'
    # without a kid, every key of the token's alg is tried
    assert get(p.port, "/x", headers=bearer(sign("ES256", keys["ES256"], claims()))).status == 200


def test_jwt_failures_get_401_invalid_token(portico, backend, jwks_file, keys):
    b = backend(B.echo())
    p = portico(site(jwt_cfg(jwks_file=jwks_file, clock_skew="30s"), b.url))
    rs, now = keys["RS256"], int(time.time())
    good = sign("RS256", rs, claims(), kid="rs")
    h, pl, s = good.split(".")
    bad = {
        "expired": sign("RS256", rs, claims(exp=now - 31), kid="rs"),
        "nbf future": sign("RS256", rs, claims(nbf=now + 31), kid="rs"),
        "wrong iss": sign("RS256", rs, claims(iss="https://other"), kid="rs"),
        "wrong aud": sign("RS256", rs, claims(aud=["web", "mobile"]), kid="rs"),
        "no exp": sign("RS256", rs, claims(exp=None), kid="rs"),
        "alg none": sign("none", None, claims(), kid="rs"),
        "alg none no kid": sign("none", None, claims()),
        "tampered": h + "." + b64u(json.dumps(claims(sub="root")).encode()) + "." + s,
        "padded": good + "=",
        "two parts": h + "." + pl,
        "unknown kid": sign("RS256", rs, claims(), kid="nope"),
        "crit": sign("RS256", rs, claims(), kid="rs", header={"crit": ["exp"]}),
        # the RSA public key used as an HMAC secret (algorithm confusion)
        "confusion": sign("HS256", rs.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            claims(), kid="rs"),
        "es with hs kid": sign("ES256", keys["ES256"], claims(), kid="hs"),
    }
    n = len(b.requests)
    for what, tok in bad.items():
        r = get(p.port, "/x", headers=bearer(tok))
        assert r.status == 401, what
        assert r.header("www-authenticate") == 'Bearer error="invalid_token"', what
    r = get(p.port, "/x")
    assert r.status == 401 and r.header("www-authenticate") == "Bearer"
    assert get(p.port, "/x", headers={"Authorization": "Basic " + good}).status == 401
    assert len(b.requests) == n
    # within the skew: still fine
    assert get(p.port, "/x", headers=bearer(sign("RS256", rs, claims(exp=now - 20),
                                                 kid="rs"))).status == 200
    assert get(p.port, "/x", headers=bearer(sign("RS256", rs, claims(aud=["web", "api"]),
                                                 kid="rs"))).status == 200
    err = p.stderr()
    assert "refused by jwt: expired" in err and "refused by jwt: not yet valid" in err
    assert good not in err


def test_jwt_cookie_source_and_secret_file(portico, backend, tmp_path):
    b = backend(B.echo())
    sec = tmp_path / "secret"
    sec.write_bytes(SECRET + b"\n")
    p = portico(site(jwt_cfg(secret_file=str(sec), cookie="session", audience=None,
                             require=[]), b.url))
    tok = sign("HS256", SECRET, claims(exp=None))
    assert get(p.port, "/x", headers={"Cookie": "a=b; session=" + tok}).status == 200
    assert b.requests[-1].header("x-user-id") == "alice"
    assert get(p.port, "/x", headers=bearer(tok)).status == 401  # the cookie is the source
    assert get(p.port, "/x", headers={"Cookie": "session=" + tok[:-2]}).status == 401


class JwksServer:
    """A JWKS served over plain HTTP from a thread; .jwks can be replaced at any time."""

    def __init__(self, port, cert=None):
        self.jwks = {"keys": []}
        self.hits = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", port), H)
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_jwt_jwks_url_down_at_start_is_503_then_rotation_is_picked_up(portico, backend, keys):
    b = backend(B.echo())
    port = free_port()
    p = portico(site(jwt_cfg(jwks_url="http://127.0.0.1:%d/jwks" % port, jwks_refresh="1h"),
                     b.url))
    es = keys["ES256"]
    r = get(p.port, "/x", headers=bearer(sign("ES256", es, claims(), kid="one")))
    assert r.status == 503  # never fetched: not an open door
    srv = JwksServer(port)
    try:
        srv.jwks = {"keys": [jwk("one", es)]}
        assert wait_until(lambda: get(p.port, "/x", headers=bearer(
            sign("ES256", es, claims(), kid="one"))).status == 200, 15)
        # rotation: a new key with a new kid; the old one is gone from the set
        ed = keys["EdDSA"]
        srv.jwks = {"keys": [jwk("two", ed)]}
        hits = srv.hits
        tok = sign("EdDSA", ed, claims(), kid="two")
        assert wait_until(lambda: get(p.port, "/x", headers=bearer(tok)).status == 200, 5)
        assert srv.hits == hits + 1  # one early fetch, on the unknown kid
        # the server going away keeps the keys fetched
        srv.close()
        srv = None
        assert get(p.port, "/x", headers=bearer(tok)).status == 200
    finally:
        if srv:
            srv.close()


def test_jwt_route_off_and_bad_jwks_file_is_a_config_error(portico, backend, jwks_file,
                                                           tmp_path, portico_bin):
    import subprocess
    b = backend(B.echo())
    cfg = site({}, b.url, site_auth=jwt_cfg(jwks_file=jwks_file))
    cfg["sites"][0]["routes"].insert(0, {"match": "/public/*", "jwt": "off",
                                         "proxy": {"to": b.url}})
    p = portico(cfg)
    assert get(p.port, "/public/a").status == 200
    assert get(p.port, "/x").status == 401
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]}))
    c = tmp_path / "c.yaml"
    c.write_text("listen: [{addr: '127.0.0.1:1'}]\nsites:\n- routes:\n  - match: /*\n"
                 "    respond: {status: 200}\n    jwt: {jwks_file: %s}\n" % bad)
    r = subprocess.run([portico_bin, "check", "-c", str(c)], capture_output=True, text=True)
    assert r.returncode != 0 and "JWKS key 1" in r.stderr, r.stderr
    assert os.path.exists(jwks_file)


def test_jwt_jwks_url_https_verifies_the_certificate(portico, backend, keys, tmp_path_factory):
    b = backend(B.echo())
    pki = certs.session_pki(tmp_path_factory)
    other = certs.session_pki(tmp_path_factory, "other")
    port = free_port()
    srv = JwksServer(port, cert=pki.server(["localhost"], kind="ec"))
    try:
        ed = keys["EdDSA"]
        srv.jwks = {"keys": [jwk("k", ed), {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}
        url = "https://localhost:%d/jwks" % port
        cfg = site({}, b.url)
        cfg["sites"][0]["routes"] = [
            {"match": "/good/*", "proxy": {"to": b.url},
             "jwt": {"jwks_url": url, "jwks_ca": pki.ca_cert, "require": []}},
            {"match": "/bad/*", "proxy": {"to": b.url},
             "jwt": {"jwks_url": url, "jwks_ca": other.ca_cert, "require": []}},
            {"match": "/system/*", "proxy": {"to": b.url}, "jwt": {"jwks_url": url}}]
        p = portico(cfg)
        tok = sign("EdDSA", ed, {"sub": "x"}, kid="k")
        # the enc key of the fetched set is skipped, the usable one kept
        assert wait_until(lambda: get(p.port, "/good/a", headers=bearer(tok)).status == 200, 10)
        # a server the CA file (or the system's store) does not vouch for is never believed
        time.sleep(1.5)
        assert get(p.port, "/bad/a", headers=bearer(tok)).status == 503
        assert get(p.port, "/system/a", headers=bearer(tok)).status == 503
        assert "TLS with localhost failed" in p.stderr()
    finally:
        srv.close()


def test_basic_htpasswd_and_jwks_file_are_read_again_on_reload(portico, backend, tmp_path, keys,
                                                               jwks_file):
    b = backend(B.echo())
    path = tmp_path / "h"
    path.write_text("ann:%s\n" % crypt.crypt("a-pw", crypt.mksalt(crypt.METHOD_SHA256)))
    cfg = site({"basic_auth": {"htpasswd": str(path)}}, b.url)
    cfg["sites"][0]["routes"].insert(0, {"match": "/j/*", "proxy": {"to": b.url},
                                         "jwt": {"jwks_file": jwks_file, "require": []}})
    p = portico(cfg)
    assert get(p.port, "/x", headers=basic("ann", "a-pw")).status == 200
    assert get(p.port, "/x", headers=basic("ben", "b-pw")).status == 401
    rs = keys["RS256"]
    tok = sign("RS256", rs, {"sub": "x"}, kid="new")
    assert get(p.port, "/j/a", headers=bearer(tok)).status == 401
    path.write_text("ben:%s\n" % crypt.crypt("b-pw", crypt.mksalt(crypt.METHOD_SHA256)))
    with open(jwks_file, "w") as f:
        json.dump({"keys": [jwk("new", rs)]}, f)
    p.reload()
    assert wait_until(lambda: get(p.port, "/x", headers=basic("ben", "b-pw")).status == 200, 10)
    assert get(p.port, "/x", headers=basic("ann", "a-pw")).status == 401
    assert get(p.port, "/j/a", headers=bearer(tok)).status == 200


def test_both_guards_on_one_route_and_refusals_are_counted(portico, backend, tmp_path, htpasswd):
    b = backend(B.echo())
    token, tokens_file = A.tokens(tmp_path, [("scraper", "read")])

    def build(port):
        cfg = site({"basic_auth": {"htpasswd": htpasswd},
                    "jwt": {"secret_file": str(sec), "header": "X-Token", "require": []}},
                   b.url)
        cfg["admin"] = {"listen": "127.0.0.1:%d" % A.admin_port(port), "tokens_file": tokens_file}
        return cfg

    sec = tmp_path / "secret"
    sec.write_bytes(SECRET)
    p = portico(build)
    tok = sign("HS256", SECRET, {"sub": "svc"})
    both = dict(basic("bob", "bob-pw"), **{"X-Token": tok})
    assert get(p.port, "/x", headers=both).status == 200
    assert b.requests[-1].header("x-user-id") is None  # no claims_to_headers here
    assert get(p.port, "/x", headers=basic("bob", "bob-pw")).status == 401  # no token
    assert get(p.port, "/x", headers={"X-Token": tok}).status == 401  # no Basic
    assert get(p.port, "/x", headers=dict(basic("bob", "bob-pw"),
                                          **{"X-Token": "Bearer " + tok})).status == 401
    st, _, body = A.call(p, "GET", "/metrics", token[0])
    assert st == 200
    assert 'portico_guard_refusals_total{guard="auth"} 3' in body.decode()


def test_top_level_routes_shorthand_off_and_claim_stripping(portico, backend, tmp_path):
    b = backend(B.echo())
    sec = tmp_path / "secret"
    sec.write_bytes(SECRET)
    p = portico({"routes": [
        {"match": "/off/*", "basic_auth": "off", "jwt": "off", "proxy": {"to": b.url}},
        {"match": "/*", "proxy": {"to": b.url},
         "jwt": {"secret_file": str(sec), "require": [],
                 "claims_to_headers": {"sub": "X-User-Id"}}}]})
    assert get(p.port, "/off/a", headers={"X-User-Id": "root"}).status == 200
    tok = sign("HS256", SECRET, {"role": "x"})
    assert get(p.port, "/a", headers=dict(bearer(tok), **{"X-User-Id": "root"})).status == 200
    assert b.requests[-1].header("x-user-id") is None  # no sub claim: the client's copy is gone
