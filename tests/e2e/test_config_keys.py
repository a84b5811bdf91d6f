"""Configuration behaviour end to end (issue 9): the top-level routes: shorthand, paths relative
to the configuration file, warnings in FILE:LINE:COL form, environment variables, custom error
pages and the Server header. `portico check` and `portico run` are driven as a user would."""

import os
import re
import socket
import subprocess
import time

from helpers import backends as B
from helpers.client import RawConn, get
from helpers.common import START_TIMEOUT, free_port
from helpers.portico import PORTICO_BIN


def run_cli(*args, env=None, cwd=None, timeout=START_TIMEOUT):
    full = dict(os.environ)
    if env:
        full.update(env)
    return subprocess.run([PORTICO_BIN] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=full, cwd=cwd)


def write(path, text):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "w") as f:
        f.write(text)
    return str(path)


def diags(out, path, kind=None):
    """(line, col, message) of each FILE:LINE:COL: diagnostic for path in out; kind "warning"
    keeps only warnings, "error" only the others."""
    pat = re.compile(r"^%s:(\d+):(\d+): (.*)$" % re.escape(str(path)))
    found = []
    for ln in out.splitlines():
        m = pat.match(ln)
        if not m:
            continue
        is_warn = m.group(3).startswith("warning: ")
        if kind == "warning" and not is_warn or kind == "error" and is_warn:
            continue
        found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return found


# ---- item 3: the routes: shorthand is a whole default site ----------------------------------

def test_routes_shorthand_applies_redirects_and_headers_files(portico, tmp_path):
    site = tmp_path / "site"
    write(site / "index.html", "<p>home</p>\n")
    write(site / "_redirects", "/old /index.html 301\n")
    write(site / "_headers", "/*\n  X-Site-Rule: on\n")
    p = portico({"routes": [{"match": "/*", "static": {"root": "site"}}]})
    r = get(p.port, "/old")
    assert r.status == 301, r
    assert r.header("Location") == "/index.html", r
    r = get(p.port, "/")
    assert r.status == 200, r
    assert r.header("X-Site-Rule") == "on", r


# ---- item 6: log.access is relative to the configuration file --------------------------------

def start_in(cwd, config_path, env=None):
    """Start `portico run -c config_path` with the working directory cwd; the caller stops it."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.Popen([PORTICO_BIN, "run", "-c", str(config_path)], cwd=str(cwd),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=full)


def wait_port(proc, port):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("portico did not listen on %d" % port)


def stop(proc):
    proc.terminate()
    try:
        return proc.wait(START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise


def test_access_log_path_is_relative_to_config_file_not_cwd(tmp_path):
    port = free_port()
    conf = tmp_path / "etc"
    os.makedirs(str(conf / "logs"))
    path = write(conf / "portico.yaml",
                 'workers: 1\nlisten:\n  - addr: "127.0.0.1:%d"\n'
                 "log:\n  access: logs/access.log\n"
                 "routes:\n  - match: /*\n    respond: {status: 200, body: hi}\n" % port)
    elsewhere = tmp_path / "cwd"
    os.makedirs(str(elsewhere))
    r = run_cli("check", "-c", path, cwd=str(elsewhere))
    assert r.returncode == 0, r
    proc = start_in(elsewhere, path)
    try:
        wait_port(proc, port)
        assert get(port, "/logged").status == 200
    finally:
        assert stop(proc) == 0
    with open(str(conf / "logs" / "access.log")) as f:
        assert "/logged" in f.read()
    assert not os.path.exists(str(elsewhere / "logs"))


def test_check_reports_access_log_directory_missing_at_its_position(tmp_path):
    path = write(tmp_path / "p.yaml",
                 'listen:\n  - addr: "127.0.0.1:%d"\nlog:\n  access: nowhere/access.log\n'
                 "routes:\n  - match: /*\n    respond: {status: 200}\n" % free_port())
    r = run_cli("check", "-c", path, cwd="/")
    assert r.returncode == 1, r
    d = diags(r.stderr, path, "error")
    assert d and d[0][:2] == (4, 11), r.stderr
    assert "nowhere/access.log" in d[0][2] and "does not exist" in d[0][2], d
    assert not os.path.exists(str(tmp_path / "nowhere"))


# ---- item 9: tabs, environment variables, a top-level acme: ---------------------------------

def test_check_says_tab_for_tab_indentation(tmp_path):
    path = write(tmp_path / "tab.yaml",
                 'listen:\n\t- addr: "127.0.0.1:%d"\nroutes:\n  - match: /\n'
                 "    respond: {}\n" % free_port())
    r = run_cli("check", "-c", path)
    assert r.returncode == 1, r
    d = diags(r.stderr, path)
    assert d and d[0][:2] == (2, 1), r.stderr
    assert "tabs are not allowed for indentation" in d[0][2] and "use spaces" in d[0][2], d


ENV_CONFIG = """\
workers: 1
listen:
  - addr: "127.0.0.1:${PT_E2E_PORT}"
routes:
  - match: /secret
    respond:
      body: "token=${PT_E2E_TOKEN} mode=${PT_E2E_MODE:-dev} literal=$${PT_E2E_TOKEN}"
"""


def test_environment_variables_are_expanded_at_load(portico, tmp_path):
    port = free_port()
    path = write(tmp_path / "env.yaml", ENV_CONFIG)
    env = {"PT_E2E_PORT": str(port), "PT_E2E_TOKEN": "tok-123"}
    r = run_cli("check", "-c", path, env=env)
    assert r.returncode == 0, r
    proc = start_in(tmp_path, path, env=env)
    try:
        wait_port(proc, port)
        resp = get(port, "/secret")
        assert resp.status == 200
        assert resp.body == b"token=tok-123 mode=dev literal=${PT_E2E_TOKEN}"
    finally:
        assert stop(proc) == 0
        err = proc.stderr.read().decode()
    assert "tok-123" not in err


def test_check_reports_unset_environment_variable_at_its_position(tmp_path):
    path = write(tmp_path / "env.yaml", ENV_CONFIG)
    r = run_cli("check", "-c", path, env={"PT_E2E_PORT": str(free_port())})
    assert r.returncode == 1, r
    d = diags(r.stderr, path)
    assert [x[:2] for x in d] == [(7, 13)], r.stderr
    assert 'environment variable "PT_E2E_TOKEN" is not set' in d[0][2], d


def test_environment_values_stay_out_of_error_messages(tmp_path):
    path = write(tmp_path / "env.yaml",
                 'listen:\n  - addr: "127.0.0.1:%d"\nupstreams:\n  a:\n    targets:\n'
                 '      - url: "${PT_E2E_URL}"\nroutes:\n  - match: /\n    proxy: {to: a}\n'
                 % free_port())
    r = run_cli("check", "-c", path, env={"PT_E2E_URL": "gopher://u:pa55word@h"})
    assert r.returncode == 1, r
    assert "pa55word" not in r.stderr + r.stdout
    d = diags(r.stderr, path)
    assert d and d[0][:2] == (6, 14) and "${PT_E2E_URL}" in d[0][2], r.stderr


def test_top_level_acme_points_to_tls_acme(tmp_path):
    path = write(tmp_path / "acme.yaml",
                 'listen:\n  - addr: "127.0.0.1:%d"\nacme: {email: a@example.com}\n'
                 "routes:\n  - match: /\n    respond: {}\n" % free_port())
    r = run_cli("check", "-c", path)
    assert r.returncode == 1, r
    d = diags(r.stderr, path)
    assert d and d[0][:2] == (3, 1) and "use tls.acme" in d[0][2], r.stderr


# ---- item 8: warnings are FILE:LINE:COL, check counts them, --strict fails on them ------------

def warned_site(tmp_path):
    site = tmp_path / "site"
    write(site / "index.html", "<p>home</p>\n")
    write(site / "_redirects", "/good /index.html 301\nthis-line-is-bad\n")
    return write(tmp_path / "w.yaml",
                 'workers: 1\nlisten:\n  - addr: "127.0.0.1:%d"\n'
                 "routes:\n  - match: /*\n    static: {root: site}\n" % free_port())


def test_check_prints_warnings_in_file_line_col_form_and_counts_them(tmp_path):
    path = warned_site(tmp_path)
    rules = str(tmp_path / "site" / "_redirects")
    r = run_cli("check", "-c", path)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "ok (1 warning)", r
    d = diags(r.stderr, rules, "warning")
    assert [x[:2] for x in d] == [(2, 1)], r.stderr
    assert d[0][2].startswith("warning: ") and "skipped" in d[0][2], d
    # every line of stderr is a positioned diagnostic
    assert all(re.match(r"^\S+:\d+:\d+: warning: ", ln) for ln in r.stderr.splitlines()), r


def test_check_strict_turns_warnings_into_errors(tmp_path):
    path = warned_site(tmp_path)
    r = run_cli("check", "-c", path, "--strict")
    assert r.returncode == 1, r
    assert "ok" not in r.stdout, r
    assert diags(r.stderr, str(tmp_path / "site" / "_redirects"), "warning"), r.stderr
    assert "--strict" in r.stderr, r
    # without warnings, --strict is plain ok
    good = write(tmp_path / "g.yaml", 'listen:\n  - addr: "127.0.0.1:%d"\n'
                 "routes:\n  - match: /\n    respond: {}\n" % free_port())
    r = run_cli("check", "-c", good, "--strict")
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r


def test_run_logs_the_same_warnings(portico, tmp_path):
    site = tmp_path / "site"
    write(site / "index.html", "<p>home</p>\n")
    write(site / "_redirects", "/good /index.html 301\nthis-line-is-bad\n")
    p = portico({"routes": [{"match": "/*", "static": {"root": "site"}}]})
    assert get(p.port, "/good").status == 301
    assert re.search(r"%s:2:1: warning: " % re.escape(str(site / "_redirects")), p.stderr()), \
        p.stderr()


# ---- item 7: settings that would do nothing are refused or warned; server_header -------------

def test_check_refuses_https_redirect_without_tls_listener(tmp_path):
    path = write(tmp_path / "r.yaml",
                 'listen:\n  - addr: "127.0.0.1:%d"\nsites:\n  - https_redirect: true\n'
                 "    routes:\n      - match: /\n        respond: {}\n" % free_port())
    r = run_cli("check", "-c", path)
    assert r.returncode == 1, r
    d = diags(r.stderr, path)
    assert d and d[0][:2] == (4, 21) and "needs a listener with tls: true" in d[0][2], r.stderr


def test_check_warns_at_routes_after_a_catch_all(tmp_path):
    path = write(tmp_path / "c.yaml",
                 'listen:\n  - addr: "127.0.0.1:%d"\nroutes:\n'
                 '  - match: "/*"\n    respond: {body: all}\n'
                 "  - match: /api/*\n    respond: {body: never}\n" % free_port())
    r = run_cli("check", "-c", path)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "ok (1 warning)", r
    d = diags(r.stderr, path, "warning")
    assert [x[:2] for x in d] == [(6, 5)], r.stderr
    assert "can never match" in d[0][2] and "line 4" in d[0][2], d
    r = run_cli("check", "-c", path, "--strict")
    assert r.returncode == 1, r


def server_values(resp):
    return resp.header_all("Server")


def test_server_header_default_custom_and_off(portico, backend, tmp_path):
    b = backend(B.fixed(200, b"from backend", headers=[("Server", "backend/9.9")]))
    write(tmp_path / "www" / "f.txt", "file\n")
    routes = [{"match": "/p/*", "proxy": {"to": b.url}},
              {"match": "/r", "respond": {"body": "local"}},
              {"match": "/old", "redirect": {"to": "/r"}},
              {"match": "/s/*", "static": {"root": "www"}, "methods": ["GET"]}]
    paths = (("/r", 200), ("/p/x", 200), ("/nothing", 404), ("/old", 301), ("/s/f.txt", 200))
    # default: Portico's own name, on local answers, errors, files and proxied responses alike
    p = portico({"routes": routes})
    for path, status in paths:
        r = get(p.port, path)
        assert (r.status, server_values(r)) == (status, ["portico"]), (path, r)
    p.stop()
    # a string of one's own
    p = portico({"server_header": "edge/1.0 (test)", "routes": routes})
    for path, status in paths:
        r = get(p.port, path)
        assert (r.status, server_values(r)) == (status, ["edge/1.0 (test)"]), (path, r)
    p.stop()
    # off: no Server at all, the backend's included
    for off in ("off", False):
        p = portico({"server_header": off, "routes": routes})
        for path, status in paths:
            r = get(p.port, path)
            assert r.status == status and not r.has_header("Server"), (path, r)
        assert get(p.port, "/p/x").body == b"from backend"
        p.stop()


def test_proxy_header_rules_remove_or_set_server(portico, backend):
    b = backend(B.fixed(200, b"ok", headers=[("Server", "backend/9.9")]))
    dead = "http://127.0.0.1:%d" % free_port()
    p = portico({"routes": [
        {"match": "/rm/*", "proxy": {"to": b.url,
                                     "headers": {"response": {"remove": ["Server"]}}}},
        {"match": "/set/*", "proxy": {"to": b.url,
                                      "headers": {"response": {"set": {"Server": "mine"}}}}},
        {"match": "/down/*", "proxy": {"to": dead, "timeout": "5s",
                                       "headers": {"response": {"remove": ["server"]}}}},
    ]})
    r = get(p.port, "/rm/x")
    assert r.status == 200 and not r.has_header("Server"), r
    r = get(p.port, "/set/x")
    assert r.status == 200 and server_values(r) == ["mine"], r
    # Portico's own error page on that route goes without one too
    r = get(p.port, "/down/x")
    assert r.status == 502 and not r.has_header("Server"), r


def test_respond_route_with_its_own_server_header_sends_one(portico):
    """A respond route that names Server in its headers sends that one instead of ours (it
    used to send both)."""
    p = portico({"routes": [{"match": "/", "respond": {"body": "x", "headers": {"Server": "mine"}}}]})
    r = get(p.port, "/")
    assert r.status == 200 and server_values(r) == ["mine"], r


# ---- custom error pages: errors: {STATUS: FILE} ---------------------------------------------

def test_error_pages_for_404_and_502_with_status_and_type(portico, backend, tmp_path):
    write(tmp_path / "pages" / "404.html", "<h1>Lost?</h1>\n")
    write(tmp_path / "pages" / "502.json", '{"error": "upstream down"}\n')
    write(tmp_path / "pages" / "400.txt", "bad request, says the top level\n")
    b = backend(B.fixed(502, b"the backend's own 502", headers=[("Content-Type", "text/x-be")]))
    dead = "http://127.0.0.1:%d" % free_port()
    p = portico({
        "errors": {400: "pages/400.txt", 404: "pages/400.txt"},
        "sites": [{"errors": {404: "pages/404.html", 502: "pages/502.json"},
                   "routes": [{"match": "/down/*", "proxy": {"to": dead, "timeout": "5s"}},
                              {"match": "/be/*", "proxy": {"to": b.url}},
                              {"match": "/", "respond": {"body": "home"}}]}]})
    r = get(p.port, "/missing", headers={"Accept": "application/json"})
    assert r.status == 404, r
    assert r.body == b"<h1>Lost?</h1>\n"
    assert r.header("Content-Type") == "text/html; charset=utf-8", r
    assert int(r.header("Content-Length")) == len(r.body)
    r = get(p.port, "/down/x")
    assert r.status == 502, r
    assert r.body == b'{"error": "upstream down"}\n'
    assert r.header("Content-Type").startswith("application/json"), r
    # a HEAD gets the head only
    with RawConn(p.port) as c:
        r = c.request("HEAD", "/missing")
    assert r.status == 404 and r.body == b"", r
    # a backend's own error response is passed on as it is
    r = get(p.port, "/be/x")
    assert (r.status, r.body) == (502, b"the backend's own 502"), r
    assert r.header("Content-Type") == "text/x-be"
    # an error answered before any site is chosen gets the top-level page
    with RawConn(p.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n")
        r = c.read_response()
    assert r.status == 400, r
    assert r.body == b"bad request, says the top level\n"
    assert r.header("Content-Type").startswith("text/plain"), r


def test_check_reports_missing_error_page_at_its_position(tmp_path):
    path = write(tmp_path / "e.yaml",
                 'listen:\n  - addr: "127.0.0.1:%d"\nsites:\n'
                 "  - errors:\n      502: pages/nope.html\n"
                 "    routes:\n      - match: /\n        respond: {}\n" % free_port())
    r = run_cli("check", "-c", path, cwd="/")
    assert r.returncode == 1, r
    d = diags(r.stderr, path)
    assert d and d[0][:2] == (5, 12), r.stderr
    assert str(tmp_path / "pages" / "nope.html") in d[0][2], d
