"""Netlify rule files end to end (issue 5 items 2, 3, 4, 6): a site folder with a _redirects
file, a _headers file and a netlify.toml beside it, served by a static route. Each expected
outcome follows Netlify's documented semantics: first matching rule wins; default status 301;
splats and :placeholders; query-parameter conditions; the request's query string passed on
unless the target sets one; 200 to a path rewrites (URL unchanged), 200 to an absolute URL
proxies; 404/410/451 to a path answer that file with the status; an unforced rule yields to a
static file at the path (shadowing) and '!' forces it; Language= and Cookie= conditions;
netlify.toml rules come after _redirects rules; bad lines are skipped and the rest loads."""

import json
import subprocess

import pytest

from helpers import backends as B
from helpers.client import get
from helpers.portico import PORTICO_BIN

FILES = {
    "index.html": b"<h1>home</h1>\n",
    "about.html": b"<p>about page</p>\n",
    "shadow.html": b"<p>the real shadow file</p>\n",
    "forced.html": b"<p>never served: forced rule</p>\n",
    "404.html": b"<p>site 404 page</p>\n",
    "custom404.html": b"<p>custom missing page</p>\n",
    "gone.html": b"<p>this is gone</p>\n",
    "app/index.html": b"<p>spa shell</p>\n",
    "docs/index.html": b"<p>docs index</p>\n",
}

REDIRECTS = """\
# Netlify _redirects used by the tests (comments and blank lines are skipped)

/yaml-first        /about.html               301
/old-home          /                         301
/temp              /about.html               302
/see-other         /about.html               303
/tmp307            /about.html               307
/perm308           /about.html               308
/default-status    /about.html
/blog/:year/:slug  /posts/:slug?y=:year      301
/news/*            /articles/:splat          301
/store   id=:id    /product/:id              301
/lang    lang=fr   /fr/                      302
/ext               https://example.com/landing 301
/keepq             /about.html               301
/setq              /about.html?x=1           301
/api/*             http://127.0.0.1:{port}/v1/:splat 200
/exact-proxy       http://127.0.0.1:{port}/health    200
/pretty            /about.html               200
/app/*             /app/index.html           200
/shadow.html       /about.html               301
/forced.html       /about.html               301!
/docs/             /about.html               301
/missing/*         /custom404.html           404
/gone              /gone.html                410
/legal             /about.html               451
/nopage            /does-not-exist.html      404
/en-only           /about.html               302   Language=en
/en-only           /index.html               302
/vip               /about.html               302   Cookie=vip,gold
/vip               /index.html               302
/first             /one                      301
/first             /two                      301
this line is bad
/item/:id          /items/:id                301!
/caf%C3%A9         /about.html               301
/trail/            /about.html               301
http://old.example.com/*   https://example.com/:splat   301!
https://tls.example.com/*  https://example.com/tls/:splat 301!
"""

HEADERS = """\
/*
  X-Frame-Options: DENY
/api/*
  X-Api: proxied
  Content-Type: application/x-test
/about.html
  Cache-Control: public, max-age=60
  X-Multi: a
  X-Multi: b
"""

TOML = """\
[build]
publish = "public"

[[redirects]]
from = "/toml-rule"
to = "/about.html"
status = 302

[[redirects]]
from = "/first"
to = "/from-toml"
status = 301

[[redirects]]
from = "/toml-search"
to = "/search/:q"
status = 302
query = {q = ":q"}

[[redirects]]
from = "/toml-proxy/*"
to = "http://127.0.0.1:{port}/t/:splat"
status = 200
headers = {X-From-Toml = "yes", Authorization = "Bearer abc"}

[[headers]]
for = "/gone.html"
[headers.values]
X-Toml = "yes"
"""


@pytest.fixture
def site(tmp_path, backend):
    b = backend(B.echo())
    root = tmp_path / "public"
    for name, data in FILES.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    port = b.url.rsplit(":", 1)[1]
    (root / "_redirects").write_text(REDIRECTS.format(port=port))
    (root / "_headers").write_text(HEADERS)
    (tmp_path / "netlify.toml").write_text(TOML.replace("{port}", port))
    return {"root": root, "base": tmp_path, "backend": b}


def cfg(site, **extra):
    s = {"netlify_toml": str(site["base"] / "netlify.toml"),
         "routes": [
             {"match": "/yaml-first", "respond": {"status": 200, "body": "yaml route"}},
             {"match": "/*", "static": {"root": str(site["root"])}}]}
    s.update(extra)
    return {"sites": [s]}


@pytest.fixture
def srv(portico, site):
    return portico(cfg(site))


def loc(r):
    return r.header("location")


@pytest.mark.parametrize("path,status,location", [
    ("/old-home", 301, "/"),
    ("/temp", 302, "/about.html"),
    ("/see-other", 303, "/about.html"),
    ("/tmp307", 307, "/about.html"),
    ("/perm308", 308, "/about.html"),
    ("/default-status", 301, "/about.html"),
    ("/blog/2020/hello", 301, "/posts/hello?y=2020"),
    ("/news/a/b.html", 301, "/articles/a/b.html"),
    ("/lang?lang=fr", 302, "/fr/?lang=fr"),
    ("/ext", 301, "https://example.com/landing"),
    ("/keepq?a=1&b=2", 301, "/about.html?a=1&b=2"),
    ("/setq?a=1", 301, "/about.html?x=1"),
    ("/forced.html", 301, "/about.html"),
    ("/item/42", 301, "/items/42"),
    ("/trail/", 301, "/about.html"),
    ("/en-only", 302, "/index.html"),
    ("/vip", 302, "/index.html"),
    ("/first", 301, "/one"),
    ("/toml-rule", 302, "/about.html"),
    ("/toml-search?q=cats", 302, "/search/cats?q=cats"),
])
def test_redirects(srv, path, status, location):
    r = get(srv.port, path)
    assert r.status == status, r
    assert loc(r) == location


def test_query_placeholder(srv):
    r = get(srv.port, "/store?id=42")
    assert r.status == 301
    assert loc(r).startswith("/product/42")
    # the condition is not met: no rule, no file -> the site's 404 page
    r = get(srv.port, "/store")
    assert r.status == 404
    r = get(srv.port, "/lang?lang=de")
    assert r.status == 404


def test_conditions(srv):
    r = get(srv.port, "/en-only", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert (r.status, loc(r)) == (302, "/about.html")
    # Netlify reads the value whole: a list that does not start with "en-" is not English.
    r = get(srv.port, "/en-only", headers={"Accept-Language": "fr;q=0.9, en-GB;q=0.8"})
    assert (r.status, loc(r)) == (302, "/index.html")
    r = get(srv.port, "/en-only", headers={"Accept-Language": "fr", "Cookie": "nf_lang=en"})
    assert (r.status, loc(r)) == (302, "/about.html")
    r = get(srv.port, "/en-only", headers={"Accept-Language": "de"})
    assert (r.status, loc(r)) == (302, "/index.html")
    r = get(srv.port, "/vip", headers={"Cookie": "a=1; gold=yes"})
    assert (r.status, loc(r)) == (302, "/about.html")
    r = get(srv.port, "/vip", headers={"Cookie": "golden=1"})
    assert (r.status, loc(r)) == (302, "/index.html")


def test_yaml_routes_before_netlify_rules(srv):
    r = get(srv.port, "/yaml-first")
    assert (r.status, r.body) == (200, b"yaml route")


def test_shadowing(srv):
    r = get(srv.port, "/shadow.html")
    assert (r.status, r.body) == (200, FILES["shadow.html"])
    # a directory with an index shadows too
    r = get(srv.port, "/docs/")
    assert (r.status, r.body) == (200, FILES["docs/index.html"])


def test_rewrites(srv):
    r = get(srv.port, "/pretty")
    assert (r.status, r.body) == (200, FILES["about.html"])
    assert loc(r) is None
    r = get(srv.port, "/app/some/client/route")
    assert (r.status, r.body) == (200, FILES["app/index.html"])


def test_error_pages(srv):
    r = get(srv.port, "/missing/thing")
    assert (r.status, r.body) == (404, FILES["custom404.html"])
    assert r.header("content-type").startswith("text/html")
    r = get(srv.port, "/gone")
    assert (r.status, r.body) == (410, FILES["gone.html"])
    r = get(srv.port, "/legal")
    assert (r.status, r.body) == (451, FILES["about.html"])
    r = get(srv.port, "/nopage")
    assert r.status == 404
    assert b"404" in r.body


def test_proxy(srv):
    r = get(srv.port, "/api/users/7?q=1")
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["path"], d["query"]) == ("/v1/users/7", "q=1")
    assert r.header("x-api") == "proxied"
    assert r.header("x-frame-options") == "DENY"
    r = get(srv.port, "/exact-proxy")
    assert r.status == 200
    assert json.loads(r.body)["path"] == "/health"


def test_toml_proxy_headers(srv):
    r = get(srv.port, "/toml-proxy/x?y=1", headers={"X-From-Toml": "client"})
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["path"], d["query"]) == ("/t/x", "y=1")
    h = {k.lower(): v for k, v in d["headers"]}
    # the rule's headers replace what the client sent under those names
    assert h["x-from-toml"] == "yes"
    assert h["authorization"] == "Bearer abc"


def test_domain_level_rules(srv):
    # an absolute `from` matches on the request's scheme and host (port and case aside)
    for host in ("old.example.com", "OLD.example.com:8080"):
        r = get(srv.port, "/some/page?x=1", host=host)
        assert (r.status, loc(r)) == (301, "https://example.com/some/page?x=1"), host
    # forced: it wins over the static file at the path
    r = get(srv.port, "/about.html", host="old.example.com")
    assert (r.status, loc(r)) == (301, "https://example.com/about.html")
    # another host: the rule does not apply
    r = get(srv.port, "/about.html", host="new.example.com")
    assert (r.status, r.body) == (200, FILES["about.html"])
    # an https:// rule does not apply to a plain-HTTP request
    r = get(srv.port, "/about.html", host="tls.example.com")
    assert (r.status, r.body) == (200, FILES["about.html"])


def test_domain_rule_for_a_host_the_site_lacks_is_warned(portico, site):
    srv = portico(cfg(site, hosts=["localhost", "*.example.com"]))
    assert "never applies" not in srv.stderr()
    (site["root"] / "_redirects").write_text("http://other.test/* /about.html 302\n")
    srv.reload()
    import time
    deadline = time.monotonic() + 10
    while "never applies" not in srv.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "other.test" in srv.stderr() and "never applies" in srv.stderr()


def test_headers(srv):
    r = get(srv.port, "/about.html")
    assert r.status == 200
    assert r.header("cache-control") == "public, max-age=60"
    assert r.header("x-frame-options") == "DENY"
    assert r.header("x-multi") == "a, b"
    r = get(srv.port, "/index.html")
    assert r.header("x-frame-options") == "DENY"
    assert r.header("cache-control") is None
    r = get(srv.port, "/gone.html")
    assert r.header("x-toml") == "yes"


def test_headers_replace_the_response_own(portico, site):
    c = cfg(site)
    c["sites"][0]["routes"][1]["static"]["cache_control"] = "public, max-age=5"
    srv = portico(c)
    r = get(srv.port, "/about.html")
    assert r.header_all("cache-control") == ["public, max-age=60"]
    r = get(srv.port, "/index.html")
    assert r.header_all("cache-control") == ["public, max-age=5"]
    # a proxied response's own header of that name gives way too
    r = get(srv.port, "/api/x")
    assert r.status == 200
    assert r.header_all("content-type") == ["application/x-test"]


def test_headers_that_portico_writes_are_refused(portico, site):
    (site["root"] / "_headers").write_text("/*\n  Content-Length: 5\n  Server: x\n  X-Ok: 1\n")
    srv = portico(cfg(site))
    err = srv.stderr()
    assert "_headers:2:1: " in err and "_headers:3:1: " in err and "cannot be set" in err
    r = get(srv.port, "/about.html")
    assert r.header("x-ok") == "1"
    assert r.header_all("server") == ["portico"]
    assert int(r.header("content-length")) == len(FILES["about.html"])


def test_bad_line_is_warned_and_rest_loads(srv):
    line = REDIRECTS.splitlines().index("this line is bad") + 1
    assert "_redirects:%d:1: warning: " % line in srv.stderr()
    assert get(srv.port, "/item/1").status == 301
    # a percent-encoded from matches the request however its escapes are spelt
    line = REDIRECTS.splitlines().index("/caf%C3%A9         /about.html               301") + 1
    assert "_redirects:%d:" % line not in srv.stderr()
    for target in ("/caf%C3%A9", "/caf%c3%a9"):
        r = get(srv.port, target)
        assert (r.status, loc(r)) == (301, "/about.html"), target


def test_explicit_missing_file_is_an_error(portico, site, tmp_path):
    c = cfg(site, redirects_file=str(tmp_path / "nope"))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"listen": [{"addr": "127.0.0.1:0"}], **c}))
    r = subprocess.run([PORTICO_BIN, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0
    assert "nope" in r.stdout + r.stderr


def test_country_without_geoip_database_is_refused(portico, site, tmp_path):
    # Country= works only with geoip.database (test_geoip.py); without one the rule is a
    # configuration error at its line, not a rule that silently never (or always) applies.
    (site["root"] / "_redirects").write_text("/x /y 302 Country=us\n")
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"listen": [{"addr": "127.0.0.1:0"}], **cfg(site)}))
    r = subprocess.run([PORTICO_BIN, "check", "-c", str(path)], capture_output=True, text=True,
                       timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "_redirects:1: Country= needs a GeoIP database" in out, out
    assert "geoip.database" in out, out


def test_reload_picks_up_changes(srv, site):
    assert get(srv.port, "/temp").status == 302
    (site["root"] / "_redirects").write_text("/temp /index.html 307\n")
    srv.reload()
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = get(srv.port, "/temp")
        if r.status == 307:
            break
        time.sleep(0.1)
    assert (r.status, loc(r)) == (307, "/index.html")
