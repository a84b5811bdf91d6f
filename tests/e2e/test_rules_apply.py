"""The rules API's store becomes routes (issue 11, sections 2 and 3): projects' and aliases'
hostnames are sites whose routes are the enabled rules in evaluation order; every rule proxies
through the SSRF guard (admin.allow_private, admin.ca_file); Cookie and Authorization are
stripped unless a rule sets them; header add (sealed in the store) and remove; the rule's
timeout; a SIGHUP keeps the rules and picks up changed rows; the live-apply signal rebuilds.

The tests write rows with Python's sqlite3 into a store Portico has created (the schema of
docs/internals/admin.md), sealing header values as secrets.c does, then ask for a rebuild."""

import base64
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helpers import admin as adm
from helpers import backends as bk
from helpers import certs
from helpers.client import RawConn
from helpers.common import scaled, wait_until
from helpers.dnsserver import DnsServer
from helpers.portico import PORTICO_BIN

LIVE = signal.SIGRTMIN  # PT_SIG_RULES (src/server/api_rules.h)


class Store:
    """Rows written straight into Portico's rules store."""

    def __init__(self, path, key_path):
        self.path = path
        with open(key_path, "rb") as f:
            self.key = f.read()
        self.now = int(time.time() * 1000)

    def db(self):
        c = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        c.execute("PRAGMA foreign_keys=ON")
        return c

    def tick(self):
        self.now += 1
        return self.now

    def project(self, hosts):
        pid = str(uuid.uuid4())
        with self.db() as c:
            t = self.tick()
            c.execute("INSERT INTO projects VALUES (?, ?, ?, ?)", (pid, "p-" + pid[:8], t, t))
            for i, h in enumerate(hosts):
                c.execute("INSERT INTO hostnames(hostname, project_id, pos) VALUES (?, ?, ?)",
                          (h, pid, i))
        return pid

    def alias(self, pid, hosts):
        aid = str(uuid.uuid4())
        with self.db() as c:
            t = self.tick()
            c.execute("INSERT INTO aliases VALUES (?, ?, ?, ?, ?)", (aid, pid, "a-" + aid[:8], t, t))
            for i, h in enumerate(hosts):
                c.execute("INSERT INTO hostnames(hostname, alias_id, pos) VALUES (?, ?, ?)",
                          (h, aid, i))
        return aid

    def seal(self, rid, name, value):
        nonce = os.urandom(12)
        aad = b"portico/header/v1\0" + rid.encode() + b"\0" + name.lower().encode()
        return "v1:" + base64.b64encode(nonce + AESGCM(self.key).encrypt(nonce, value.encode(),
                                                                          aad)).decode()

    def rule(self, pid, pattern, target, order, alias=None, strip=True, timeout=30000,
             enabled=True, preserve_host=False, add=None, remove=()):
        rid = str(uuid.uuid4())
        with self.db() as c:
            t = self.tick()
            c.execute("INSERT INTO rules(id, project_id, alias_id, path_pattern, target_url, "
                      "strip_prefix, ord, timeout_ms, preserve_host, is_enabled, description, "
                      "created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (rid, pid, alias, pattern, target, int(strip), order, timeout,
                       int(preserve_host), int(enabled), "", t, t))
            for i, (n, v) in enumerate((add or {}).items()):
                c.execute("INSERT INTO rule_header_add VALUES (?, ?, ?, ?)",
                          (rid, i, n, self.seal(rid, n, v)))
            for i, n in enumerate(remove):
                c.execute("INSERT INTO rule_header_remove VALUES (?, ?, ?)", (rid, i, n))
        return rid

    def set(self, rid, **cols):
        with self.db() as c:
            for k, v in cols.items():
                c.execute("UPDATE rules SET %s = ? WHERE id = ?" % k, (v, rid))


@pytest.fixture
def env(tmp_path, portico):
    """(start(allow_private, ca_file) -> Portico, Store): a Portico with an empty store."""
    key = str(tmp_path / "store.key")
    r = subprocess.run([PORTICO_BIN, "keygen", key], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r
    _, tokens = adm.tokens(tmp_path, [("ops", "write")])
    dbpath = str(tmp_path / "rules.db")

    def start(allow=("127.0.0.0/8",), ca=None, dns_port=None):
        def cfg(port):
            a = {"listen": "127.0.0.1:%d" % adm.admin_port(port), "tokens_file": tokens,
                 "store": dbpath, "key_file": key, "allow_private": list(allow)}
            if ca:
                a["ca_file"] = ca
            c = {"admin": a, "sites": [{"hosts": ["yaml.test"], "routes": [
                {"match": "/*", "respond": {"status": 200, "body": "yaml"}}]}]}
            if dns_port:
                c["resolver"] = {"servers": ["127.0.0.1:%d" % dns_port], "timeout": "1s"}
            return c
        return portico(cfg)

    return start, lambda: Store(dbpath, key)


def get(p, path, host, headers=None):
    with RawConn(p.port) as c:
        return c.request("GET", path, headers=headers, host=host)


def seen(r):
    return json.loads(r.body)


def apply(p, sig=LIVE):
    """Asks for a rebuild and waits until it is logged."""
    n = p.stderr().count("configuration reloaded")
    p.signal(sig)
    wait_until(lambda: p.stderr().count("configuration reloaded") > n, 5, what="rebuild")


def served(env, backend, host):
    """(Portico, Store, project id, backend): a project on host whose one rule /* reaches an
    echo backend, applied."""
    start, store = env
    a = backend(bk.echo())
    p = start()
    s = store()
    pid = s.project([host])
    s.rule(pid, "/*", a.url, 0)
    apply(p)
    return p, s, pid, a


def test_project_and_alias_rules_become_routes_in_evaluation_order(env, backend):
    start, store = env
    a, b, c = backend(bk.echo(headers=[("X-Who", "a")]), "a"), \
        backend(bk.echo(headers=[("X-Who", "b")]), "b"), backend(bk.echo(headers=[("X-Who", "c")]), "c")
    p = start()
    s = store()
    pid = s.project(["app.test"])
    aid = s.alias(pid, ["staging.app.test"])
    s.rule(pid, "/api/v1/*", b.url, 0)
    s.rule(pid, "/api/*", a.url + "/base", 1)
    s.rule(pid, "/off/*", a.url, 2, enabled=False)
    s.rule(pid, "/other/*", b.url, 3)
    s.rule(pid, "/api/*", c.url, 0, alias=aid, strip=False)
    apply(p)
    r = get(p, "/api/x/y?q=1", "app.test")
    assert r.status == 200 and r.header("x-who") == "a", r
    assert seen(r)["path"] == "/base/x/y", seen(r)
    r = get(p, "/api/v1/z", "app.test")
    assert r.header("x-who") == "b" and seen(r)["path"] == "/z", r  # order 0 wins
    assert get(p, "/off/x", "app.test").status == 404
    # The alias: its rules come first (so /api/* takes /api/v1/ too) and hide the project's
    # /api/* there only; the project's other rules follow.
    r = get(p, "/api/x", "staging.app.test")
    assert r.header("x-who") == "c" and seen(r)["path"] == "/api/x", r
    assert get(p, "/api/v1/z", "staging.app.test").header("x-who") == "c"
    assert get(p, "/other/z", "staging.app.test").header("x-who") == "b"
    assert get(p, "/api/x", "app.test").header("x-who") == "a"
    assert get(p, "/", "yaml.test").body == b"yaml"


def test_headers_credentials_and_forwarded(env, backend):
    start, store = env
    b = backend(bk.echo())
    p = start()
    s = store()
    pid = s.project(["h.test"])
    s.rule(pid, "/plain/*", b.url, 0, remove=["X-Drop"])
    s.rule(pid, "/auth/*", b.url, 1, add={"Authorization": "Bearer s3cret-value", "X-Key": "k1",
                                         "Content-Length": "5", "Host": "evil.test"})
    apply(p)
    hs = {"Cookie": "sid=1", "Authorization": "Basic dXNlcg==", "X-Drop": "1", "X-Keep": "2"}
    r = get(p, "/plain/x", "h.test", hs)
    req = seen(r)
    names = {k.lower(): v for k, v in req["headers"]}
    assert "cookie" not in names and "authorization" not in names and "x-drop" not in names, req
    assert names["x-keep"] == "2"
    assert names["x-forwarded-for"] == "127.0.0.1" and names["x-forwarded-proto"] == "http"
    assert names["x-forwarded-host"] == "h.test"
    r = get(p, "/auth/x", "h.test", hs)
    names = {k.lower(): v for k, v in seen(r)["headers"]}
    assert names["authorization"] == "Bearer s3cret-value" and names["x-key"] == "k1"
    # Framing and Host are Portico's to write: a rule cannot add a second one.
    hdrs = [k.lower() for k, _ in seen(r)["headers"]]
    assert hdrs.count("host") == 1 and "content-length" not in hdrs, hdrs
    assert names["host"] != "evil.test"
    assert "cookie" not in names
    assert "s3cret-value" not in p.stderr()


def test_rule_timeout_is_a_504(env, backend):
    start, store = env
    b = backend(bk.slow(3))
    p = start()
    s = store()
    pid = s.project(["t.test"])
    s.rule(pid, "/*", b.url, 0, timeout=300)
    apply(p)
    t0 = time.monotonic()
    assert get(p, "/x", "t.test").status == 504
    assert time.monotonic() - t0 < 2.5


def test_private_target_needs_allow_private(env, backend):
    start, store = env
    b = backend(bk.echo())
    p = start(allow=())
    s = store()
    pid = s.project(["g.test"])
    s.rule(pid, "/*", b.url, 0)
    apply(p)
    assert get(p, "/x", "g.test").status == 502
    assert "refused" in p.stderr() and "127.0.0.1" in p.stderr()
    assert not b.requests


def test_https_target_on_loopback_with_allow_private_and_ca_file(tmp_path_factory, env, portico):
    tls, ca = tls_target(tmp_path_factory, portico, "tls ok")
    start, store = env
    p = start(ca=ca)
    s = store()
    pid = s.project(["s.test"])
    s.rule(pid, "/*", "https://127.0.0.1:%d" % tls.port, 0)
    apply(p)
    r = get(p, "/x", "s.test")
    assert r.status == 200 and r.body == b"tls ok", r
    # Without the CA: verification fails; without the prefix: the guard refuses.
    q = start()
    apply(q)
    assert get(q, "/x", "s.test").status == 502
    assert "certificate verify failed" in q.stderr()
    g = start(allow=(), ca=ca)
    apply(g)
    assert get(g, "/x", "s.test").status == 502
    assert "refused" in g.stderr() and "127.0.0.1" in g.stderr()


def test_sighup_keeps_rules_and_reads_changed_rows(env, backend):
    start, store = env
    a, b = backend(bk.echo(headers=[("X-Who", "a")]), "a"), backend(bk.echo(headers=[("X-Who", "b")]), "b")
    p = start()
    s = store()
    pid = s.project(["r.test"])
    ra = s.rule(pid, "/*", a.url, 0)
    apply(p)
    assert get(p, "/x", "r.test").header("x-who") == "a"
    apply(p, signal.SIGHUP)
    assert get(p, "/x", "r.test").header("x-who") == "a"
    s.set(ra, target_url=b.url)
    apply(p, signal.SIGHUP)
    assert get(p, "/x", "r.test").header("x-who") == "b"
    s.set(ra, is_enabled=0)
    apply(p)
    assert get(p, "/x", "r.test").status == 404


def test_burst_of_live_apply_signals_coalesces_and_a_bad_key_keeps_the_old_rules(env, backend,
                                                                               tmp_path):
    p, s, pid, a = served(env, backend, "b.test")
    n = p.stderr().count("configuration reloaded")
    for _ in range(50):
        os.kill(p.pid, LIVE)
    time.sleep(1)
    assert get(p, "/x", "b.test").status == 200
    # Realtime signals queue: each is one rebuild from outside. The API's changes go through
    # pt_rules_changed(), which sends one only when none is pending (unit-tested).
    assert p.stderr().count("configuration reloaded") <= n + 50
    # The signal alone makes a change live (how fast: make bench-live-apply).
    s.rule(pid, "/new/*", a.url, 1)
    p.signal(LIVE)
    assert wait_until(lambda: get(p, "/new/x", "b.test").status == 200, scaled(5),
                      interval=0.005, what="the new rule")
    assert p.alive()
    os.rename(str(tmp_path / "store.key"), str(tmp_path / "gone.key"))
    p.signal(LIVE)
    wait_until(lambda: "reload failed" in p.stderr(), 5, what="failed rebuild")
    assert "admin.key_file" in p.stderr()
    assert get(p, "/x", "b.test").status == 200


def test_a_pattern_the_router_refuses_is_skipped_with_a_warning(env, backend):
    p, s, pid, a = served(env, backend, "x.test")
    s.rule(pid, "/a*b", a.url, 1)
    apply(p)
    assert 'the rule of x.test for "/a*b" is skipped: route pattern "/a*b"' in p.stderr()
    assert get(p, "/x", "x.test").status == 200
    assert get(p, "/a-b", "x.test").status == 200


def test_a_target_name_that_does_not_resolve_is_a_502_and_the_other_rules_serve(env, backend):
    start, store = env
    a = backend(bk.echo())
    with DnsServer({"api.test": ["127.0.0.1"]}) as dns:
        p = start(dns_port=dns.port)
        s = store()
        pid = s.project(["d.test"])
        s.rule(pid, "/gone/*", "http://no-such.test:%d" % a.port, 0)
        s.rule(pid, "/named/*", "http://api.test:%d" % a.port, 1)
        s.rule(pid, "/*", a.url, 2)
        apply(p)
        assert get(p, "/x", "d.test").status == 200
        assert get(p, "/named/x", "d.test").status == 200
        assert get(p, "/gone/x", "d.test").status == 502
        assert 'cannot resolve host "no-such.test"' in p.stderr()


def tls_target(tmp_path_factory, portico, body, action=None):
    """(Portico serving body over TLS on 127.0.0.1 with a certificate for that IP, the CA); with
    action (a route action mapping), that action instead of the fixed body."""
    pki = certs.session_pki(tmp_path_factory)
    crt, key = pki._issue("srv-ip-127", "ec", "/CN=127.0.0.1",
                          ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
                           "extendedKeyUsage=serverAuth", "subjectAltName=IP:127.0.0.1"])
    t = portico(lambda port: {
        "listen": [{"addr": "127.0.0.1:%d" % port, "tls": True}],
        "tls": {"certificates": [{"cert": crt, "key": key}]},
        "sites": [{"routes": [dict({"match": "/*"},
                                   **(action or {"respond": {"status": 200, "body": body}}))]}]},
        name="tls-" + body)
    return t, pki.ca_cert


class Api:
    def __init__(self, p, token):
        self.port = adm.admin_port(p.port)
        self.token = token

    def ok(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Authorization": "Bearer " + self.token,
                               "Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            assert r.status in (200, 201), (r.status, raw)
            return json.loads(raw) if raw.strip() else None
        finally:
            c.close()


def test_api_changes_go_live_and_steady_load_sees_no_failure(
        tmp_path_factory, tmp_path, portico):
    ta, ca = tls_target(tmp_path_factory, portico, "A")
    tb, _ = tls_target(tmp_path_factory, portico, "B")
    (token,), tokens = adm.tokens(tmp_path, [("ops", "write")])
    key = str(tmp_path / "k")
    subprocess.run([PORTICO_BIN, "keygen", key], check=True, capture_output=True, timeout=10)
    p = portico(lambda port: {
        "admin": {"listen": "127.0.0.1:%d" % adm.admin_port(port), "tokens_file": tokens,
                  "store": str(tmp_path / "rules.db"), "key_file": key,
                  "allow_private": ["127.0.0.0/8"], "ca_file": ca},
        "routes": [{"match": "/*", "respond": {"status": 200, "body": "yaml"}}]})
    api = Api(p, token)
    wait_until(lambda: get(p, "/", "x").status == 200, 5, what="portico")
    pid = api.ok("POST", "/api/projects", {"name": "shop", "hostnames": ["shop.test"]})["id"]
    aid = api.ok("POST", "/api/projects/%s/aliases" % pid,
                 {"name": "staging", "hostnames": ["staging.shop.test"]})["id"]
    url_a, url_b = "https://127.0.0.1:%d" % ta.port, "https://127.0.0.1:%d" % tb.port
    r1 = api.ok("POST", "/api/proxy-rules/project/%s" % pid,
                {"pathPattern": "/api/*", "targetUrl": url_a, "stripPrefix": True,
                 "timeout": 5000, "description": "Backend API"})
    assert wait_until(lambda: get(p, "/api/x", "shop.test").body == b"A", scaled(5),
                      interval=0.002, what="the new rule")
    # How long a committed change takes to reach traffic: the time from the API's answer to
    # the first request served by the new rule. Printed, not asserted against 100 ms (the
    # machines are shared and noisy): `make bench-live-apply` runs 50 changes and reports the
    # median; here a change must only go live by itself, within seconds.
    lat = []
    for i in range(int(os.environ.get("PORTICO_LIVE_APPLY_ROUNDS", "5"))):
        url, body = (url_b, b"B") if i % 2 == 0 else (url_a, b"A")
        api.ok("PATCH", "/api/proxy-rules/%s" % r1["id"], {"targetUrl": url})
        t0 = time.monotonic()
        assert wait_until(lambda: get(p, "/api/x", "shop.test").body == body, scaled(5),
                          interval=0.001, what="change %d" % i)
        lat.append(time.monotonic() - t0)
    lat.sort()
    print("live apply: %d changes, median %.1f ms, max %.1f ms"
          % (len(lat), 1000 * lat[len(lat) // 2], 1000 * lat[-1]))
    if len(lat) % 2 == 1:  # an odd number of flips leaves the rule on B: back to A
        api.ok("PATCH", "/api/proxy-rules/%s" % r1["id"], {"targetUrl": url_a})
        assert wait_until(lambda: get(p, "/api/x", "shop.test").body == b"A", scaled(5),
                          interval=0.002, what="the rule back on A")
    r2 = api.ok("POST", "/api/proxy-rules/project/%s" % pid,
                {"pathPattern": "/api/v1/*", "targetUrl": url_b})
    time.sleep(0.2)
    assert get(p, "/api/v1/x", "shop.test").body == b"A"  # order 0 wins
    api.ok("PUT", "/api/proxy-rules/project/%s/reorder" % pid, {"ruleIds": [r2["id"], r1["id"]]})
    time.sleep(0.2)
    assert get(p, "/api/v1/x", "shop.test").body == b"B"
    api.ok("POST", "/api/proxy-rules/alias/%s" % aid, {"pathPattern": "/api/v1/*",
                                                      "targetUrl": url_a})
    time.sleep(0.2)
    assert get(p, "/api/v1/x", "staging.shop.test").body == b"A"
    assert get(p, "/api/v1/x", "shop.test").body == b"B"

    # 100 changes in a row under steady load: no request fails.
    stop, results = threading.Event(), []

    def load():
        while not stop.is_set():
            try:
                results.append(get(p, "/api/x", "shop.test").status)
            except OSError as e:
                results.append(repr(e))
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    n = p.stderr().count("configuration reloaded")
    for i in range(100):
        api.ok("PATCH", "/api/proxy-rules/%s" % r1["id"], {"description": "change %d" % i})
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(10)
    assert results and all(s == 200 for s in results), [s for s in results if s != 200][:5]
    rebuilds = p.stderr().count("configuration reloaded") - n
    assert 1 <= rebuilds <= 100, rebuilds


def test_a_secret_header_set_through_the_api_reaches_the_backend_intact(
        tmp_path_factory, tmp_path, portico, backend):
    secret = "Bearer sk-live-4f1c9e-" + uuid.uuid4().hex
    b = backend(bk.echo())
    # The https target the rule needs: a TLS Portico on 127.0.0.1 in front of the echo backend.
    t, ca = tls_target(tmp_path_factory, portico, "echo", {"proxy": {"to": b.url}})
    (token,), tokens = adm.tokens(tmp_path, [("ops", "write")])
    kf = str(tmp_path / "k")
    subprocess.run([PORTICO_BIN, "keygen", kf], check=True, capture_output=True, timeout=10)
    p = portico(lambda port: {
        "admin": {"listen": "127.0.0.1:%d" % adm.admin_port(port), "tokens_file": tokens,
                  "store": str(tmp_path / "rules.db"), "key_file": kf,
                  "allow_private": ["127.0.0.0/8"], "ca_file": ca},
        "routes": [{"match": "/*", "respond": {"status": 200, "body": "yaml"}}]})
    api = Api(p, token)
    pid = api.ok("POST", "/api/projects", {"name": "s", "hostnames": ["sec.test"]})["id"]
    rule = api.ok("POST", "/api/proxy-rules/project/%s" % pid, {
        "pathPattern": "/api/*", "targetUrl": "https://127.0.0.1:%d" % t.port,
        "stripPrefix": True, "headerConfig": {"add": {"Authorization": secret}}})
    assert rule["headerConfig"]["add"]["Authorization"] != secret
    assert wait_until(lambda: get(p, "/api/who", "sec.test").body.startswith(b"{"), scaled(5),
                      what="the rule")
    r = get(p, "/api/who", "sec.test", headers={"Authorization": "Basic client-own"})
    sent = {k.lower(): v for k, v in seen(r)["headers"]}
    assert seen(r)["path"] == "/who"
    assert sent["authorization"] == secret  # the rule's value, decrypted, not the client's
    assert secret not in p.stderr() and secret not in "\n".join(p.access_log())
    for f in os.listdir(str(tmp_path)):
        if f.startswith("rules.db"):
            with open(str(tmp_path / f), "rb") as fh:
                assert secret.encode() not in fh.read(), f
