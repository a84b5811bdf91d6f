"""Netlify's documented redirect semantics, end to end: one `_redirects` file of 50 rules that
covers every documented feature, served by a static route, with every expected outcome written
by hand from Netlify's documentation (docs.netlify.com, "Redirects and rewrites", "Redirect
options", "Rewrites and proxies"). Each group of rules and each group of cases names the part of
the documentation it follows. Country= is left out: it needs a GeoIP database (its own tests).

The documented rules this file holds Portico to:

- Syntax: one rule per line, `from to [status][!] [conditions]`; a line starting with `#` is a
  comment; paths are case-sensitive and special characters in them are percent-encoded.
- Rule processing order: the first matching rule wins, reading from the top.
- Status: 301 by default; 301/302/303/307/308 redirect; 200 rewrites (a local path, the URL
  does not change) or proxies (an absolute URL); 404/410/451 show the `to` page with that status.
- Custom 404: a 404.html at the root is shown for any path that matches no rule and no file.
- Splats (`/*` captured as `:splat`) and placeholders (`:name`, one path segment).
- Query parameters: `name=:ph` requires the parameter and captures it; every listed parameter
  must be present; the request's query string is passed on to the destination unless the `to`
  sets a query of its own.
- Trailing slash: the edge normalises URLs before matching, so a rule matches its path with and
  without a trailing slash.
- Shadowing: an unforced rule does not apply when a file exists at the path; `!` forces it.
- Domain-level rules: an absolute `from` matches on the request's scheme and host.
- Language= (the browser's Accept-Language) and Cookie= (the cookie's presence) conditions.
"""

import json

import pytest

from helpers import backends as B
from helpers import certs
from helpers.backends import Backend
from helpers.client import get
from helpers.common import free_port
from helpers.portico import finish_module, module_portico
from helpers.tlsclient import https_get

FILES = {
    "index.html": b"<h1>home</h1>\n",
    "404.html": b"<p>site 404 page</p>\n",
    "about.html": b"<p>about</p>\n",
    "spa.html": b"<div id=app>spa shell</div>\n",
    "pages/foo.html": b"<p>pretty foo</p>\n",
    "errors/closed.html": b"<p>store closed</p>\n",
    "errors/gone.html": b"<p>gone for good</p>\n",
    "errors/legal.html": b"<p>unavailable for legal reasons</p>\n",
    "en/404.html": b"<p>english 404</p>\n",
    "exists.html": b"<p>a real file wins over an unforced rule</p>\n",
    "forced.html": b"<p>never served: the rule is forced</p>\n",
    "assets/app.js": b"console.log('app');\n",
    "static/real.css": b"body{}\n",
}

# Domain-level rules come first, as Netlify's examples put them: a request for another host
# falls through to the path rules below.
REDIRECTS = """\
# Netlify docs, "Redirects and rewrites" > "Syntax for the _redirects file": each rule on its
# own line, the original path followed by the new path or URL; lines starting with # are
# comments, and blank lines are skipped.

# "Redirect options" > "Domain-level redirects": an absolute from matches scheme and host.
https://old.example.com/*   https://example.com/:splat              301!
http://old.example.com/*    https://example.com/:splat              301!
http://blog.example.com/*   https://www.example.com/blog/:splat     301!

# "Redirects and rewrites" > syntax example; "Redirect options" > "HTTP status codes":
# 301 when no status is given.
/home                       /
/blog/my-post.php           /blog/my-post
/news                       /blog
/cuties                     https://www.petsofnetlify.com
    # an indented comment line
/my-redirect                /                                       302
/see-other                  /about.html                             303
/temp-307                   /about.html                             307
/perm-308                   /about.html                             308
/pass-through               /index.html                             200
/ecommerce                  /errors/closed.html                     404
/gone                       /errors/gone.html                       410
/legal                      /errors/legal.html                      451

# "Redirect options" > "Custom 404 page handling": a 404 rule per section.
/en/*                       /en/404.html                            404

# "Redirect options" > "Splats".
/news/*                     /blog/:splat
/shop/*                     /store/:splat                           302

# "Redirect options" > "Placeholders".
/archive/:month/:date/:year/:slug   /blog/:year/:month/:date/:slug
/product/:id/reviews        /reviews?product=:id                    302

# "Redirect options" > "Query parameters".
/store      id=:id                  /blog/:id                       301
/articles   id=:id  tag=:tag        /posts/:tag/:id                 301
/search     lang=fr                 /fr/search                      302
/promo      ref=:ref                /landing?src=:ref               302

# "Redirect options" > "Query parameters": the query string is passed on unless to sets one.
/keepq                      /about.html                             301
/setq                       /about.html?x=1                         301
/ext                        https://example.com/landing             302
/frag                       /about.html#team                        301

# "Redirects and rewrites" > "Trailing slash": matched with and without the final slash.
/trail/                     /about.html                             301
/notrail                    /about.html                             301
/ph/:id                     /p/:id                                  301

# Syntax: "Paths are case-sensitive and special characters in paths must be url-encoded."
/CaseSensitive              /about.html                             301
/authors/c%C3%A9line        /authors/about-c%C3%A9line              301

# "Rewrites and proxies" > "History pushstate and single-page apps"; a rewrite per name.
/spa/*                      /spa.html                               200
/pretty/:name               /pages/:name.html                       200

# "Rewrites and proxies" > "Proxy to another service".
/api/*                      http://127.0.0.1:{port}/v1/:splat        200
/api-item/:id               http://127.0.0.1:{port}/items?id=:id     200

# "Rewrites and proxies" > "Shadowing"; "Redirect options": ! forces a rule.
/exists.html                /about.html                             301
/forced.html                /about.html                             301!
/assets/*                   /spa.html                               200
/static/*                   /spa.html                               200!

# "Redirects and rewrites" > "Rule processing order": the first match wins.
/blog/my-old-title          /blog/my-new-title                      301
/blog/my-old-title          /blog/an-even-better-title              301
/compete/special            /c/special                              302
/compete/:x                 /c/ph/:x                                302
/compete/*                  /c/splat/:splat                         302

# "Redirect options" > "Redirect by country or language" (Language=).
/welcome                    /fr/welcome                             302   Language=fr
/welcome                    /de/welcome                             302   Language=de,nl
/welcome                    /en/welcome                             302

# "Redirect options" > "Redirect by cookie presence" (Cookie=).
/beta                       /beta/on                                302   Cookie=beta,preview
/beta                       /beta/off                               302
"""

N_RULES = sum(1 for ln in REDIRECTS.splitlines() if ln.strip() and not ln.strip().startswith("#"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.session_pki(tmp_path_factory)


@pytest.fixture(scope="module")
def backend_echo():
    b = Backend(B.echo(), "docs-backend")
    yield b
    b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, backend_echo, pki):
    """One Portico for the module: a plain listener (p.port) and a TLS one (p.tls_port) with a
    certificate for the domain-level hosts, one site whose static root holds FILES and the
    _redirects file."""
    base = tmp_path_factory.mktemp("nfdocs-site")
    root = base / "public"
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    port = backend_echo.url.rsplit(":", 1)[1]
    (root / "_redirects").write_text(REDIRECTS.replace("{port}", port))
    crt, key = pki.server(["old.example.com", "blog.example.com", "localhost"], "ec")
    memo = {}

    def config(p):
        if p not in memo:
            memo[p] = free_port()
        return {"listen": [{"addr": "127.0.0.1:%d" % p},
                           {"addr": "127.0.0.1:%d" % memo[p], "tls": True}],
                "tls": {"certificates": [{"cert": crt, "key": key}]},
                "sites": [{"routes": [{"match": "/*", "static": {"root": str(root)}}]}]}

    p, f = module_portico(tmp_path_factory, "nfdocs", config)
    p.tls_port = memo[p.port]
    yield p
    finish_module(f)


def test_the_file_covers_at_least_45_rules_and_all_load(site):
    assert N_RULES >= 45
    # Every rule here is valid for Netlify, so Portico must load all of them: no line warned.
    assert "_redirects:" not in site.stderr(), site.stderr()[-3000:]


# (request path, extra headers, expected status, expected Location), all over plain HTTP with
# Host: localhost unless the headers name another.
REDIRECT_CASES = [
    # "HTTP status codes": default 301, and each redirect status as written.
    ("/home", {}, 301, "/"),
    ("/blog/my-post.php", {}, 301, "/blog/my-post"),
    ("/news", {}, 301, "/blog"),
    ("/cuties", {}, 301, "https://www.petsofnetlify.com"),
    ("/my-redirect", {}, 302, "/"),
    ("/see-other", {}, 303, "/about.html"),
    ("/temp-307", {}, 307, "/about.html"),
    ("/perm-308", {}, 308, "/about.html"),
    # "Splats": the rest of the path after /news/ lands in :splat.
    ("/news/2004/01/10/my-story", {}, 301, "/blog/2004/01/10/my-story"),
    ("/shop/shoes/red", {}, 302, "/store/shoes/red"),
    # "Placeholders": each :name is one segment, reordered freely in to.
    ("/archive/01/10/2004/my-story", {}, 301, "/blog/2004/01/10/my-story"),
    ("/product/42/reviews", {}, 302, "/reviews?product=42"),
    # to sets its own query: the request's is not passed on.
    ("/product/42/reviews?page=2", {}, 302, "/reviews?product=42"),
    # "Query parameters": /store?id=my-blog-post goes to /blog/my-blog-post, and the query
    # string is passed on (to has none of its own).
    ("/store?id=my-blog-post", {}, 301, "/blog/my-blog-post?id=my-blog-post"),
    # Several parameters: all must be present, in any order; extra ones do not matter.
    ("/articles?id=my-blog-post&tag=my-tag", {}, 301,
     "/posts/my-tag/my-blog-post?id=my-blog-post&tag=my-tag"),
    ("/articles?tag=my-tag&x=1&id=my-blog-post", {}, 301,
     "/posts/my-tag/my-blog-post?tag=my-tag&x=1&id=my-blog-post"),
    # A literal value must be equal.
    ("/search?lang=fr", {}, 302, "/fr/search?lang=fr"),
    ("/promo?ref=mail&utm=x", {}, 302, "/landing?src=mail"),
    # Query string passing: kept when to has no query, to's own query replaces it; an
    # absolute to works the same; the query goes before a fragment (RFC 3986 section 3).
    ("/keepq?a=1&b=2", {}, 301, "/about.html?a=1&b=2"),
    ("/keepq", {}, 301, "/about.html"),
    ("/setq?a=1", {}, 301, "/about.html?x=1"),
    ("/ext?a=1", {}, 302, "https://example.com/landing?a=1"),
    ("/frag", {}, 301, "/about.html#team"),
    ("/frag?a=1", {}, 301, "/about.html?a=1#team"),
    # "Trailing slash": both spellings match the rule, whichever the rule was written with.
    ("/trail/", {}, 301, "/about.html"),
    ("/trail", {}, 301, "/about.html"),
    ("/notrail", {}, 301, "/about.html"),
    ("/notrail/", {}, 301, "/about.html"),
    ("/ph/7", {}, 301, "/p/7"),
    ("/ph/7/", {}, 301, "/p/7"),
    # Syntax: paths are case-sensitive, special characters percent-encoded.
    ("/CaseSensitive", {}, 301, "/about.html"),
    ("/authors/c%C3%A9line", {}, 301, "/authors/about-c%C3%A9line"),
    # "Shadowing": a forced rule applies although /forced.html exists.
    ("/forced.html", {}, 301, "/about.html"),
    # "Rule processing order": the first matching rule wins; the exact /news rule above
    # the /news/* splat; a literal path before a placeholder before a splat.
    ("/blog/my-old-title", {}, 301, "/blog/my-new-title"),
    ("/compete/special", {}, 302, "/c/special"),
    ("/compete/other", {}, 302, "/c/ph/other"),
    ("/compete/a/b", {}, 302, "/c/splat/a/b"),
    # "Redirect by country or language": Language= matches the browser's language, a
    # region subtag included; no match falls to the next rule for the path.
    ("/welcome", {"Accept-Language": "fr"}, 302, "/fr/welcome"),
    ("/welcome", {"Accept-Language": "fr-CA"}, 302, "/fr/welcome"),
    ("/welcome", {"Accept-Language": "nl"}, 302, "/de/welcome"),
    ("/welcome", {"Accept-Language": "de-AT"}, 302, "/de/welcome"),
    ("/welcome", {"Accept-Language": "es"}, 302, "/en/welcome"),
    ("/welcome", {}, 302, "/en/welcome"),
    # "Redirect by cookie presence": any of the listed cookies.
    ("/beta", {"Cookie": "beta=1"}, 302, "/beta/on"),
    ("/beta", {"Cookie": "a=b; preview=yes"}, 302, "/beta/on"),
    ("/beta", {"Cookie": "betas=1"}, 302, "/beta/off"),
    ("/beta", {}, 302, "/beta/off"),
    # "Domain-level redirects": an http:// rule matches plain HTTP requests for its host.
    ("/a/b?q=1", {"Host": "old.example.com"}, 301, "https://example.com/a/b?q=1"),
    ("/", {"Host": "old.example.com"}, 301, "https://example.com/"),
    ("/post/1", {"Host": "blog.example.com"}, 301, "https://www.example.com/blog/post/1"),
    # A domain rule takes its host's whole site, even a path that another rule names.
    ("/home", {"Host": "blog.example.com"}, 301, "https://www.example.com/blog/home"),
]


def _get(port, target, headers):
    hs = dict(headers)
    host = hs.pop("Host", "localhost")
    return get(port, target, headers=hs, host=host)


@pytest.mark.parametrize("target,headers,status,location", REDIRECT_CASES,
                         ids=["%s%s" % (c[0], "|" + ";".join("%s=%s" % kv for kv in c[1].items())
                                        if c[1] else "") for c in REDIRECT_CASES])
def test_redirects(site, target, headers, status, location):
    r = _get(site.port, target, headers)
    assert (r.status, r.header("location")) == (status, location), r


# (request path, expected status, expected body): rewrites, 404/410/451 rules and no-match.
PAGE_CASES = [
    # "HTTP status codes": 200 rewrites, the URL stays; 404/410/451 show the page with the
    # status ("Show a custom 404 for this path").
    ("/pass-through", 200, FILES["index.html"]),
    ("/pass-through?x=1", 200, FILES["index.html"]),
    ("/ecommerce", 404, FILES["errors/closed.html"]),
    ("/gone", 410, FILES["errors/gone.html"]),
    ("/legal", 451, FILES["errors/legal.html"]),
    # "Custom 404 page handling": a 404 rule per section, the root 404.html elsewhere.
    ("/en/missing/page", 404, FILES["en/404.html"]),
    ("/nothing/here", 404, FILES["404.html"]),
    # "History pushstate and single-page apps".
    ("/spa/any/client/route", 200, FILES["spa.html"]),
    ("/spa/", 200, FILES["spa.html"]),
    # A rewrite target that does not exist is a 404 (the site's page).
    ("/pretty/foo", 200, FILES["pages/foo.html"]),
    ("/pretty/nope", 404, FILES["404.html"]),
    # "Shadowing": an existing file wins over an unforced rule, the rule serves the rest; a
    # forced splat rewrite covers existing files too.
    ("/exists.html", 200, FILES["exists.html"]),
    ("/assets/app.js", 200, FILES["assets/app.js"]),
    ("/assets/none.js", 200, FILES["spa.html"]),
    ("/static/real.css", 200, FILES["spa.html"]),
    ("/static/other.css", 200, FILES["spa.html"]),
    # Near misses: no rule applies and no file exists, so the custom 404 page shows.
    ("/casesensitive", 404, FILES["404.html"]),             # paths are case-sensitive
    ("/store", 404, FILES["404.html"]),                     # the id parameter is required
    ("/store?ID=1", 404, FILES["404.html"]),                # parameter names are exact
    ("/articles?id=1", 404, FILES["404.html"]),             # tag is missing
    ("/search?lang=de", 404, FILES["404.html"]),            # the literal value differs
    ("/archive/01/10/2004", 404, FILES["404.html"]),        # one placeholder short
    ("/archive/01/10/2004/slug/extra", 404, FILES["404.html"]),  # one segment too many
    ("/shopping", 404, FILES["404.html"]),                  # /shop/* needs /shop or /shop/...
]


@pytest.mark.parametrize("target,status,body", PAGE_CASES, ids=[c[0] for c in PAGE_CASES])
def test_pages(site, target, status, body):
    r = get(site.port, target)
    assert (r.status, r.body) == (status, body), r
    assert r.header("location") is None


def test_proxy_passes_the_expanded_path_and_the_query(site, backend_echo):
    # "Rewrites and proxies" > "Proxy to another service": /api/* to an absolute URL with 200;
    # the request's query string is passed on.
    r = get(site.port, "/api/users/7?q=1&r=2")
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["path"], d["query"]) == ("/v1/users/7", "q=1&r=2")
    # to with its own query: that query, not the request's.
    r = get(site.port, "/api-item/9?other=1")
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["path"], d["query"]) == ("/items", "id=9")


def test_domain_rules_match_the_scheme(site):
    # "Domain-level redirects": the https:// rule answers TLS requests for its host...
    r = https_get(site.tls_port, "/a/b?q=1", server_name="old.example.com")
    assert (r.status, r.header("location")) == (301, "https://example.com/a/b?q=1"), r
    # ...and the http:// rule only plain ones: over TLS blog.example.com has no domain rule,
    # so its requests go on to the path rules and the files.
    r = https_get(site.tls_port, "/home", server_name="blog.example.com")
    assert (r.status, r.header("location")) == (301, "/"), r
    r = https_get(site.tls_port, "/about.html", server_name="blog.example.com")
    assert (r.status, r.body) == (200, FILES["about.html"]), r
    # Hosts that no domain rule names use the path rules on either scheme.
    r = https_get(site.tls_port, "/home", server_name="localhost")
    assert (r.status, r.header("location")) == (301, "/"), r
