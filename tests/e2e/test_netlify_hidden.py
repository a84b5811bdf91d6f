"""Rule files are never served (issue 9 item 2). Netlify never publishes `_redirects`, `_headers`
or `netlify.toml`; the first holds backend addresses. A static route answers a request for one
of them, for a file the configuration names as a rule file (whatever its name, however it is
reached: percent-encoded, through a symlink or hard link, as a precompressed copy), exactly as
for a file that does not exist: the same status, the same 404 page or SPA shell."""

import gzip
import os
import re

import pytest

from helpers.client import get, request

SECRET = "127.0.0.1:59999"  # the "backend address" that must never reach a client

REDIRECTS = """\
/api/*     http://%s/v1/:splat   200
/leak      /_redirects           404
/leak2     /my-rules.txt         410
""" % SECRET

CUSTOM = "/*\n  X-Secret: %s\n" % SECRET  # a _headers file under a name of its own


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "public"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "404.html").write_text("<p>site 404 page</p>\n")
    (root / "_redirects").write_text(REDIRECTS)
    (root / "_headers").write_text("/*\n  X-Frame-Options: DENY\n  X-Secret: %s\n" % SECRET)
    (root / "netlify.toml").write_text('[[redirects]]\nfrom = "/t"\nto = "http://%s/t"\n'
                                       'status = 200\n' % SECRET)
    (root / "my-rules.txt").write_text(CUSTOM)
    (root / ".rules").write_text(CUSTOM)
    (root / "sub" / "_redirects").write_text(REDIRECTS)
    for name in ("_redirects", "my-rules.txt"):
        (root / (name + ".gz")).write_bytes(gzip.compress((root / name).read_bytes()))
    os.symlink("my-rules.txt", root / "alias.txt")
    os.link(root / "my-rules.txt", root / "hard.txt")
    return {"root": root, "base": tmp_path}


def cfg(site, headers_file="my-rules.txt", **static):
    st = {"root": str(site["root"])}
    st.update(static)
    return {"sites": [{
        "headers_file": str(site["root"] / headers_file),
        "netlify_toml": str(site["root"] / "netlify.toml"),
        "routes": [{"match": "/*", "static": st}]}]}


def page(r):
    """Status and body, without the request id Portico's own error pages carry."""
    return r.status, re.sub(rb"[0-9a-f]{32}", b"ID", r.body)


def assert_as_missing(port, path, headers=None, method="GET"):
    """The answer for path is the one for a file that does not exist, and leaks nothing."""
    r = request(port, method, path, headers)
    want = request(port, method, "/no-such-file", headers)
    assert page(r) == page(want), (path, r)
    assert SECRET.encode() not in r.body, (path, r.body)
    return r


HIDDEN = ["/_redirects", "/_headers", "/netlify.toml", "/%5Fredirects", "/%5fheaders",
          "/netlify%2Etoml", "/_redirects.gz", "/sub/_redirects", "/sub/%5Fredirects",
          "/my-rules.txt", "/my%2Drules.txt", "/my-rules.txt.gz", "/alias.txt", "/hard.txt"]


@pytest.mark.parametrize("path", HIDDEN)
def test_rule_file_is_answered_as_missing(portico, site, path):
    srv = portico(cfg(site))
    r = assert_as_missing(srv.port, path)
    assert r.status == 404 and r.body == b"<p>site 404 page</p>\n"
    assert_as_missing(srv.port, path, method="HEAD")
    assert_as_missing(srv.port, path, {"Accept-Encoding": "gzip, br", "Range": "bytes=0-5"})


def test_other_files_are_still_served(portico, site):
    srv = portico(cfg(site))
    assert get(srv.port, "/index.html").body == b"<h1>home</h1>\n"
    assert get(srv.port, "/").status == 200


def test_spa_fallback_runs_as_for_a_missing_file(portico, site):
    srv = portico(cfg(site, spa=True))
    for path in ("/_redirects", "/my-rules.txt", "/alias.txt"):
        r = assert_as_missing(srv.port, path, {"Accept": "text/html"})
        assert r.status == 200 and r.body == b"<h1>home</h1>\n", path


@pytest.mark.parametrize("dotfiles", ["allow", "ignore", "deny"])
def test_dotfile_rule_file_is_answered_as_a_missing_dotfile(portico, site, dotfiles):
    srv = portico(cfg(site, headers_file=".rules", dotfiles=dotfiles))
    r = request(srv.port, "GET", "/.rules")
    want = request(srv.port, "GET", "/.no-such-file")
    assert page(r) == page(want)
    assert r.status == (403 if dotfiles == "deny" else 404)
    assert SECRET.encode() not in r.body


def test_rule_file_is_not_a_netlify_error_page(portico, site):
    srv = portico(cfg(site))
    for path, status in (("/leak", 404), ("/leak2", 410)):
        r = get(srv.port, path)
        assert r.status == status, r
        assert SECRET.encode() not in r.body, r.body


def test_rule_file_does_not_shadow_a_rule(portico, site):
    # The file is not published, so an unforced rule for its path is not shadowed by it.
    with open(site["root"] / "_redirects", "a") as f:
        f.write("/_redirects  /index.html  301\n/my-rules.txt  /index.html  302\n")
    srv = portico(cfg(site))
    r = get(srv.port, "/_redirects")
    assert r.status == 301 and r.header("location") == "/index.html", r
    r = get(srv.port, "/my-rules.txt")
    assert r.status == 302 and r.header("location") == "/index.html", r


def test_rule_file_of_another_site_is_hidden_too(portico, site, tmp_path):
    c = cfg(site)
    c["sites"][0]["hosts"] = ["a.example"]
    c["sites"].append({"routes": [{"match": "/*", "static": {"root": str(tmp_path)}}]})
    srv = portico(c)
    r = get(srv.port, "/public/my-rules.txt")
    assert r.status == 404 and SECRET.encode() not in r.body, r
    assert get(srv.port, "/public/index.html").status == 200
