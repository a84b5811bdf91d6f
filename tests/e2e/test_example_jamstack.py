"""examples/jamstack, run the way the README says (its run.sh: the API backend, then Portico),
from a copy whose fixed ports (8080 for the site, 9001 for the API) are replaced by free ones.
Every path the example's rule files and pages promise is checked: the static pages, the API on
the same origin through a _redirects proxy rule, the netlify.toml proxy with its request header,
the _headers rules, the rewrites, the SPA shell, 404.html, 410 and the Language redirect."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from helpers.client import get, request
from helpers.common import START_TIMEOUT, free_port, scaled, wait_until
from helpers.portico import PORTICO_BIN

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "jamstack")
# Only the listener is rewritten: the API's address reaches the example through API_ADDR, as
# run.sh documents, never by editing its files.
TEXT_FILES = ("portico.yaml",)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if not os.path.exists(PORTICO_BIN):
        pytest.skip("no Portico binary at " + PORTICO_BIN)
    d = tmp_path_factory.mktemp("jamstack") / "jamstack"
    shutil.copytree(EXAMPLE, d)
    site_port, api_port = free_port(), free_port()
    for name in TEXT_FILES:
        p = d / name
        text = p.read_text()
        assert "127.0.0.1:8080" in text, name
        p.write_text(text.replace("127.0.0.1:8080", "127.0.0.1:%d" % site_port))
    env = dict(os.environ, PORTICO_BIN=PORTICO_BIN, API_ADDR="127.0.0.1:%d" % api_port)
    log = open(d / "run.log", "wb")
    proc = subprocess.Popen([str(d / "run.sh")], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def ready():
        try:
            return (get(site_port, "/healthz", timeout=1).status == 200
                    and get(site_port, "/api/hello", timeout=1).status == 200)
        except OSError:
            return False

    try:
        if not wait_until(ready, START_TIMEOUT, interval=0.1):
            raise AssertionError("example did not start:\n" + (d / "run.log").read_text())
        yield {"port": site_port, "api_port": api_port, "dir": d, "proc": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # run.sh stops Portico and the API, then exits
            try:
                proc.wait(timeout=scaled(15))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the group this test created
                proc.wait()
        log.close()


def page(name):
    with open(os.path.join(EXAMPLE, "public", name), "rb") as f:
        return f.read()


def test_static_pages_and_headers(example):
    r = get(example["port"], "/")
    assert (r.status, r.body) == (200, page("index.html"))
    assert r.header("x-frame-options") == "DENY"
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header_all("cache-control") == ["public, max-age=60"]
    r = get(example["port"], "/assets/app.js")
    assert (r.status, r.body) == (200, page("assets/app.js"))
    # _headers' Cache-Control replaces the static route's
    assert r.header_all("cache-control") == ["public, max-age=31536000, immutable"]


def test_api_on_the_same_origin(example):
    port = example["port"]
    r = get(port, "/api/hello")
    assert r.status == 200
    d = json.loads(r.body)
    assert d["path"] == "/v1/hello"
    assert d["x_forwarded_for"] == "127.0.0.1"
    assert r.header("cache-control") == "no-store"  # netlify.toml [[headers]] for /api/*
    body = json.dumps({"title": "written by the test"}).encode()
    r = request(port, "POST", "/api/todos", {"Content-Type": "application/json"}, body)
    assert r.status == 201, r
    r = get(port, "/api/todos")
    assert "written by the test" in [t["title"] for t in json.loads(r.body)["todos"]]
    r = get(port, "/api/nope")
    assert r.status == 404


def test_api_addr_reaches_every_proxy_rule_and_no_rule_file_names_it(example):
    # The API listens on a free port, not the default 9001: /api/* and /status answering
    # (above and below) shows API_ADDR got there. The public build folder and netlify.toml
    # name no backend address, and the rule files are not served.
    for name in ("public/_redirects", "public/_headers", "netlify.toml"):
        text = (example["dir"] / name).read_text()
        assert "9001" not in text and str(example["api_port"]) not in text, name
    for path in ("/_redirects", "/_headers", "/netlify.toml"):
        r = get(example["port"], path)
        assert (r.status, r.body) == (404, page("404.html")), path


def test_proxy_rule_sends_its_header(example):
    r = get(example["port"], "/status")
    assert r.status == 200
    assert json.loads(r.body) == {"ok": True, "site": "jamstack-example"}


def test_rules(example):
    port = example["port"]
    r = get(port, "/about")
    assert (r.status, r.body) == (200, page("about.html"))
    r = get(port, "/app/settings/profile")
    assert (r.status, r.body) == (200, page("app/index.html"))
    r = get(port, "/home?ref=x")
    assert (r.status, r.header("location")) == (301, "/?ref=x")
    r = get(port, "/blog/2019/launch")
    assert (r.status, r.header("location")) == (301, "/posts/launch")
    r = get(port, "/old-pricing")
    assert (r.status, r.body) == (410, page("gone.html"))
    r = get(port, "/search?q=cats")
    assert (r.status, r.header("location")) == (302, "/?q=cats")
    r = get(port, "/", headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert (r.status, r.header("location")) == (302, "/fr/")
    r = get(port, "/fr/")
    assert (r.status, r.body) == (200, page("fr/index.html"))
    r = get(port, "/no/such/page")
    assert (r.status, r.body) == (404, page("404.html"))


def test_sigterm_stops_both(example):
    # last in the file: it ends the module's example
    proc = example["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=scaled(15)) == 0
    time.sleep(0.2)
    for port in (example["port"], example["api_port"]):
        with pytest.raises(OSError):
            get(port, "/v1/health", timeout=1)
    log = (example["dir"] / "run.log").read_text()
    assert "stopped" in log
