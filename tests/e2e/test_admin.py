"""The admin listener (issue 11, section 1): /live and /ready, bearer tokens from a file of
hashes with read and write scopes, the 401/403 answers, TLS and client certificates on the admin
listener, the tokens file re-read on reload, the strict parser's 400 that closes the connection,
idle timeouts, and the configuration errors (a non-loopback address without TLS)."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from helpers import certs
from helpers.common import free_port, scaled, wait_until
from helpers.portico import PORTICO_BIN


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.session_pki(tmp_path_factory)


def make_token(name, scope="read"):
    """(token, tokens-file line) from `portico token`."""
    r = subprocess.run([PORTICO_BIN, "token", name, "--scope", scope], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r
    token, line = r.stdout.splitlines()
    return token, line


def write(path, text):
    with open(str(path), "w") as f:
        f.write(text)
    return str(path)


def raw(port, data, timeout=5.0, read_all=True):
    """Send data on a new connection; return everything read until the peer closes (or the
    first answer when read_all is False)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            out += b
            if not read_all and b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
        return out
    finally:
        s.close()


def read_to_close(s):
    """Everything s receives until the peer closes it."""
    out = b""
    while True:
        b = s.recv(4096)
        if not b:
            return out
        out += b


class Admin:
    """An HTTP/1.1 client for the admin port (one request per connection)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, token=None, body=None, headers=None):
        h = {"Host": "admin", "Connection": "close"}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
            h["Content-Length"] = str(len(data))
        h.update(headers or {})
        req = "%s %s HTTP/1.1\r\n" % (method, path)
        req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        out = raw(self.port, req.encode() + data)
        head, _, rest = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        doc = json.loads(rest) if rest.strip() else None
        return status, hdrs, doc


@pytest.fixture
def admin_setup(portico, tmp_path):
    """Starts Portico with an admin listener; returns (portico, Admin, tokens dict, paths)."""

    def start(extra=None, tokens=(("reader", "read"), ("writer", "write")), limits=None):
        toks = {}
        lines = ["# admin tokens", ""]
        for name, scope in tokens:
            t, ln = make_token(name, scope)
            toks[name] = t
            lines.append(ln)
        tf = write(tmp_path / "tokens", "\n".join(lines) + "\n")
        aport = free_port()
        adm = {"listen": "127.0.0.1:%d" % aport, "tokens_file": tf,
               "audit_log": str(tmp_path / "audit.log")}
        adm.update(extra or {})
        cfg = {"admin": adm, "routes": [{"match": "/*", "respond": {"status": 200,
                                                                     "body": "site"}}]}
        if limits:
            cfg["limits"] = limits
        p = portico(cfg)
        wait_until(lambda: can_connect(aport), 10, what="admin port")
        return p, Admin(aport), toks, tf

    return start


def can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_live_and_ready_answer_without_a_token(admin_setup):
    p, a, _, _ = admin_setup()
    st, h, doc = a.request("GET", "/live")
    assert st == 200 and doc == {"status": "live"}
    assert h["content-type"] == "application/json"
    wait_until(lambda: a.request("GET", "/ready")[0] == 200, 10, what="/ready 200")
    assert a.request("GET", "/ready")[2] == {"status": "ready"}
    st, h, doc = a.request("HEAD", "/live")
    assert st == 200 and doc is None
    # The traffic listener is untouched by the admin one.
    out = raw(p.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"site")


def test_missing_or_bad_token_is_401_with_www_authenticate(admin_setup):
    _, a, toks, _ = admin_setup()
    st, h, doc = a.request("GET", "/api/anything")
    assert st == 401
    assert h["www-authenticate"].startswith("Bearer")
    assert "error=" not in h["www-authenticate"]
    assert doc["errors"][0]["field"] is None and "token" in doc["errors"][0]["message"]
    st, h, doc = a.request("GET", "/api/anything", token=toks["reader"] + "x")
    assert st == 401 and 'error="invalid_token"' in h["www-authenticate"]
    assert list(doc) == ["errors"]
    st, h, _ = a.request("GET", "/api/anything", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert st == 401


def test_the_stored_hash_is_not_accepted_as_a_token(admin_setup):
    _, a, _, tf = admin_setup()
    hashes = [ln.split()[2] for ln in open(tf) if ln.strip() and not ln.startswith("#")]
    for hx in hashes:
        assert a.request("GET", "/nope", token=hx)[0] == 401


def test_valid_tokens_reach_routing_and_read_scope_cannot_write(admin_setup):
    _, a, toks, _ = admin_setup()
    st, _, doc = a.request("GET", "/nope", token=toks["reader"])
    assert st == 404 and doc["errors"][0]["message"] == "no such endpoint"
    # A write method on a route that exists: 405 for a method it lacks, same for both scopes.
    st, h, _ = a.request("POST", "/live", token=toks["writer"])
    assert st == 405 and "GET" in h["allow"]
    # /live is public: a bad token does not matter there.
    assert a.request("GET", "/live", token="garbage")[0] == 200


def test_read_token_on_write_method_is_403(admin_setup):
    _, a, toks, _ = admin_setup()
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        st, h, doc = a.request(method, "/api/x", token=toks["reader"], body={})
        assert st == 403, method
        assert 'error="insufficient_scope"' in h["www-authenticate"]
        assert doc["errors"][0]["field"] is None and "write" in doc["errors"][0]["message"]
        assert a.request(method, "/api/x", token=toks["writer"], body={})[0] == 404
    assert a.request("GET", "/api/x", token=toks["reader"])[0] == 404


def test_malformed_request_is_400_and_the_connection_closes(admin_setup):
    _, a, _, _ = admin_setup()
    # Whitespace before the colon (RFC 9112 §5.1): the strict parser refuses it.
    out = raw(a.port, b"GET /live HTTP/1.1\r\nHost: a\r\nFoo : bar\r\n\r\n"
                      b"GET /live HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert b"Connection: close" in out
    assert out.count(b"HTTP/1.1") == 1  # the pipelined second request is not answered
    body = json.loads(out.partition(b"\r\n\r\n")[2])
    assert body["errors"][0]["message"]
    # Bare LF, chunked body, HTTP/1.1 without Host.
    assert raw(a.port, b"GET /live HTTP/1.1\nHost: a\n\n").startswith(b"HTTP/1.1 400 ")
    out = raw(a.port, b"POST /live HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411 ")
    assert raw(a.port, b"GET /live HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_keep_alive_serves_several_requests_on_one_connection(admin_setup):
    _, a, toks, _ = admin_setup()
    req = b"GET /live HTTP/1.1\r\nHost: a\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    try:
        for _ in range(3):
            s.sendall(req)
            got = b""
            while b"\r\n\r\n" not in got or not got.endswith(b"}\n"):
                got += s.recv(4096)
            assert got.startswith(b"HTTP/1.1 200 ")
        # Pipelined: two answers, in order.
        s.sendall(req + b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        got = b""
        while got.count(b"HTTP/1.1 ") < 2 or not got.endswith(b"}\n"):
            got += s.recv(4096)
        assert got.index(b"200 OK") < got.index(b"401 Unauthorized")
    finally:
        s.close()


def test_large_body_and_head_limits(admin_setup):
    _, a, toks, _ = admin_setup()
    big = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (2 << 20)
    assert raw(a.port, big).startswith(b"HTTP/1.1 413 ")
    head = b"GET /live HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert raw(a.port, head).startswith(b"HTTP/1.1 431 ")


def test_idle_connection_is_closed_after_keepalive_timeout(admin_setup):
    _, a, _, _ = admin_setup(limits={"keepalive_timeout": "1s", "header_timeout": "1s"})
    s = socket.create_connection(("127.0.0.1", a.port), timeout=scaled(5))
    try:
        t0 = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - t0 < scaled(4)
    finally:
        s.close()
    # A request that starts and stalls gets 408 and the connection closes.
    s = socket.create_connection(("127.0.0.1", a.port), timeout=scaled(5))
    try:
        s.sendall(b"GET /live HTTP/1.1\r\nHost: a\r\n")
        out = read_to_close(s)
        assert out.startswith(b"HTTP/1.1 408 "), out
    finally:
        s.close()


def test_tokens_file_is_reread_on_reload(admin_setup):
    p, a, toks, tf = admin_setup(tokens=(("old", "read"),))
    assert a.request("GET", "/nope", token=toks["old"])[0] == 404
    t_new, l_new = make_token("new", "write")
    write(tf, l_new + "\n")
    p.reload()
    wait_until(lambda: a.request("GET", "/nope", token=t_new)[0] == 404, 10,
               what="new token accepted")
    assert a.request("GET", "/nope", token=toks["old"])[0] == 401
    # A broken tokens file fails the reload; the tokens in use stay.
    write(tf, "new write nothex\n")
    p.reload()
    wait_until(lambda: "reload failed" in p.stderr(), 10, what="reload failure logged")
    assert re.search(r"%s:1: expected the token's SHA-256" % re.escape(tf), p.stderr())
    assert a.request("GET", "/nope", token=t_new)[0] == 404


def test_audit_log_reopens_on_sigusr1(admin_setup, tmp_path):
    p, a, _, _ = admin_setup()
    log = tmp_path / "audit.log"
    assert os.path.exists(str(log))
    os.rename(str(log), str(tmp_path / "audit.log.1"))
    p.signal(signal.SIGUSR1)
    wait_until(lambda: os.path.exists(str(log)), 10, what="audit log reopened")
    assert "reopened audit log" in p.stderr()


# ---- TLS on the admin listener ------------------------------------------------------------

def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), capture_output=True,
                          text=True, timeout=20)


def test_tls_admin_listener_with_curl(admin_setup, pki):
    cert, key = pki.server(["admin.test"])
    _, a, toks, _ = admin_setup({"tls": {"cert": cert, "key": key}})
    url = "https://admin.test:%d" % a.port
    resolve = "admin.test:%d:127.0.0.1" % a.port
    r = curl("--cacert", pki.ca_cert, "--resolve", resolve, url + "/live")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"status": "live"}
    r = curl("--cacert", pki.ca_cert, "--resolve", resolve, "-w", "%{http_code}", "-o",
             os.devnull, "-H", "Authorization: Bearer " + toks["reader"], url + "/nope")
    assert r.stdout == "404"
    # Plain HTTP on the TLS port gets nothing useful.
    out = raw(a.port, b"GET /live HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not out.startswith(b"HTTP/1.1 200")


def test_client_certificate_required_when_client_ca_is_set(admin_setup, pki):
    cert, key = pki.server(["admin.test"])
    _, a, _, _ = admin_setup({"tls": {"cert": cert, "key": key}, "client_ca": pki.ca_cert})
    url = "https://admin.test:%d/live" % a.port
    resolve = "admin.test:%d:127.0.0.1" % a.port
    r = curl("--cacert", pki.ca_cert, "--resolve", resolve, url)
    assert r.returncode != 0
    ccert, ckey = pki.client("operator")
    r = curl("--cacert", pki.ca_cert, "--resolve", resolve, "--cert", ccert, "--key", ckey, url)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"status": "live"}


# ---- configuration ------------------------------------------------------------------------

def check(path):
    return subprocess.run([PORTICO_BIN, "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=30)


def base_config(tmp_path, admin_lines):
    tf = write(tmp_path / "tokens", make_token("ops")[1] + "\n")
    text = ('listen:\n  - addr: "127.0.0.1:%d"\nadmin:\n%s'
            "routes:\n  - match: /*\n    respond: {status: 204}\n" % (free_port(), admin_lines))
    return write(tmp_path / "portico.yaml", text.replace("TOKENS", tf))


def test_non_loopback_admin_without_tls_is_refused_at_check(tmp_path):
    path = base_config(tmp_path, '  listen: "0.0.0.0:9901"\n  tokens_file: TOKENS\n')
    r = check(path)
    assert r.returncode == 1
    assert re.search(r"^%s:4:11: admin listen address \"0.0.0.0:9901\" is not a loopback "
                     r"address: it needs tls" % re.escape(path), r.stderr, re.M), r.stderr


def test_admin_defaults_to_loopback_and_needs_tokens_file(tmp_path):
    path = base_config(tmp_path, "  audit_log: audit.log\n")
    r = check(path)
    assert r.returncode == 1
    assert re.search(r"^%s:4:\d+: .*tokens_file" % re.escape(path), r.stderr, re.M), r.stderr
    path = base_config(tmp_path, "  tokens_file: TOKENS\n")
    assert check(path).stdout.strip() == "ok"


def test_bad_tokens_file_lines_are_reported_with_file_and_line(tmp_path):
    tf = write(tmp_path / "bad-tokens", "# c\nops read %s\nops write %s\nx admin %s\n"
               % ("a" * 64, "b" * 64, "c" * 64))
    path = base_config(tmp_path, "  tokens_file: %s\n" % tf)
    r = check(path)
    assert r.returncode == 1
    assert "%s:3: token name \"ops\" is used twice" % tf in r.stderr, r.stderr
    assert "%s:4: the scope must be read or write" % tf in r.stderr, r.stderr


def test_admin_settings_for_the_rules_api_are_checked(tmp_path):
    path = base_config(tmp_path, "  tokens_file: TOKENS\n  store: rules.db\n  key_file: k.key\n"
                                 "  allow_private: [127.0.0.1/32, \"::1\", nope]\n")
    r = check(path)
    assert r.returncode == 1
    assert re.search(r":7:\d+: expected an IP address or a CIDR block.*\"nope\"", r.stderr), r
    path = base_config(tmp_path, "  tokens_file: TOKENS\n  bogus: 1\n")
    r = check(path)
    assert r.returncode == 1 and 'unknown key "bogus"' in r.stderr


def test_admin_port_clashing_with_a_listener_is_an_error(tmp_path):
    tf = write(tmp_path / "tokens", make_token("ops")[1] + "\n")
    port = free_port()
    path = write(tmp_path / "portico.yaml",
                 'listen:\n  - addr: ":%d"\nadmin:\n  listen: "127.0.0.1:%d"\n'
                 "  tokens_file: %s\nroutes:\n  - match: /*\n    respond: {status: 204}\n"
                 % (port, port, tf))
    r = check(path)
    assert r.returncode == 1 and "clashes with listener" in r.stderr, r.stderr


def test_token_command_prints_token_and_hash_line():
    token, line = make_token("deploy-bot", "write")
    name, scope, hx = line.split()
    assert (name, scope) == ("deploy-bot", "write")
    import hashlib
    assert hashlib.sha256(token.encode()).hexdigest() == hx
    assert token.startswith("pt_") and len(token) == 46
    assert make_token("deploy-bot")[0] != token
    r = subprocess.run([PORTICO_BIN, "token", "bad name!"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([PORTICO_BIN, "token", "x", "--scope", "admin"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    r = subprocess.run([PORTICO_BIN, "help", "token"], capture_output=True, text=True)
    assert r.returncode == 0 and "tokens_file" in r.stdout


def test_expect_100_continue_gets_an_interim_answer(admin_setup):
    _, a, toks, _ = admin_setup()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    try:
        s.sendall(b"POST /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
                  % toks["writer"].encode())
        got = s.recv(4096)
        assert got == b"HTTP/1.1 100 Continue\r\n\r\n", got
        s.sendall(b"{}")
        out = read_to_close(s)
        assert out.startswith(b"HTTP/1.1 404 "), out
    finally:
        s.close()


def test_body_arriving_after_the_head_is_read(admin_setup):
    _, a, toks, _ = admin_setup()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    try:
        s.sendall(b"PUT /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Length: 6\r\nConnection: close\r\n\r\n{" % toks["writer"].encode())
        time.sleep(0.2)
        s.sendall(b'"a"')
        time.sleep(0.2)
        s.sendall(b":1}")
        out = read_to_close(s)
        assert out.startswith(b"HTTP/1.1 404 "), out
    finally:
        s.close()


def test_client_ca_without_tls_is_an_error(tmp_path, pki):
    path = base_config(tmp_path, "  tokens_file: TOKENS\n  client_ca: %s\n" % pki.ca_cert)
    r = check(path)
    assert r.returncode == 1
    assert re.search(r":5:3: \"client_ca\" is only used with admin.tls", r.stderr), r.stderr


def test_taken_admin_port_fails_the_start_with_one_line(tmp_path):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    try:
        port = held.getsockname()[1]
        path = base_config(tmp_path, '  listen: "127.0.0.1:%d"\n  tokens_file: TOKENS\n' % port)
        r = subprocess.run([PORTICO_BIN, "run", "-c", path], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1
        assert "portico: cannot listen on admin address 127.0.0.1:%d: Address already in use" \
            % port in r.stderr, r.stderr
    finally:
        held.close()
