"""Routing: sites by Host, path patterns, methods, redirects, respond, path normalisation."""

import pytest

from helpers.client import RawConn, get, request
from helpers.portico import finish_module, module_portico


def respond(body, status=200, headers=None):
    r = {"status": status, "body": body}
    if headers:
        r["headers"] = headers
    return {"respond": r}


def route(match, action, methods=None):
    r = {"match": match}
    if methods:
        r["methods"] = methods
    r.update(action)
    return r


ROUTES = [
    route("/hello", respond("hello world\n", 201, {"Content-Type": "text/plain",
                                                    "X-Custom": "custom-value"})),
    route("/graphql", respond("graphql")),
    route("/api/*", respond("api")),
    route("*.json", respond("json")),
    route("/blog/:year/:slug", {"redirect": {"to": "/posts/:year/:slug", "status": 301}}),
    route("~^/v([0-9]+)/(.*)$", {"redirect": {"to": "/version/$1/$2", "status": 302}}),
    route("/old/*", {"redirect": {"to": "/new/:splat", "status": 301}}),
    route("/r301", {"redirect": {"to": "/target301", "status": 301}}),
    route("/r302", {"redirect": {"to": "/target302", "status": 302}}),
    route("/r303", {"redirect": {"to": "/target303", "status": 303}}),
    route("/r307", {"redirect": {"to": "/target307", "status": 307}}),
    route("/r308", {"redirect": {"to": "/target308", "status": 308}}),
    route("/rdefault", {"redirect": {"to": "/targetdefault"}}),
    # order: the first match wins
    route("/order/first", respond("first")),
    route("/order/*", respond("second")),
    # methods
    route("/only-get", respond("got"), methods=["GET"]),
    route("/getpost", respond("get-or-post-1"), methods=["POST"]),
    route("/getpost", respond("get-or-post-2"), methods=["GET"]),
]


def make_config(port):
    return {
        "sites": [
            {"hosts": ["exact.test"], "routes": [route("/*", respond("site-exact"))]},
            {"hosts": ["*.wild.test"], "routes": [route("/*", respond("site-wild"))]},
            {"hosts": ["porty.test:%d" % port], "routes": [route("/*", respond("site-porty"))]},
            {"routes": ROUTES},
        ]
    }


@pytest.fixture(scope="module")
def px(tmp_path_factory):
    p, f = module_portico(tmp_path_factory, "routing", make_config)
    yield p
    finish_module(f)


def body_of(px, path, host="localhost", method="GET"):
    r = request(px.port, method, path, host=host)
    return r.status, r.body.decode("latin-1")


def test_respond_route_sends_exact_status_body_and_headers(px):
    r = get(px.port, "/hello")
    assert r.status == 201
    assert r.body == b"hello world\n"
    assert r.header("Content-Type") == "text/plain"
    assert r.header("X-Custom") == "custom-value"
    assert r.header("Content-Length") == str(len(b"hello world\n"))


def test_head_on_respond_route_has_no_body(px):
    with RawConn(px.port) as c:
        r = c.request("HEAD", "/hello")
        assert r.status == 201 and r.body == b""
        r2 = c.request("GET", "/graphql")
        assert r2.status == 200 and r2.body == b"graphql"


@pytest.mark.parametrize("path,want", [("/graphql", 200), ("/graphql/", 404),
                                       ("/graphql/v2", 404), ("/graphq", 404),
                                       ("/GRAPHQL", 404)])
def test_exact_pattern_matches_only_itself(px, path, want):
    status, body = body_of(px, path)
    assert status == want, body
    if want == 200:
        assert body == "graphql"


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/x", "/api/users/1", "/api/x?y=1"])
def test_prefix_pattern_matches_prefix_and_below(px, path):
    assert body_of(px, path) == (200, "api")


@pytest.mark.parametrize("path", ["/apix", "/apix/y", "/ap", "/xapi/"])
def test_prefix_pattern_does_not_match_longer_segment(px, path):
    status, body = body_of(px, path)
    assert status == 404 and body != "api"


@pytest.mark.parametrize("path,want", [("/data.json", 200), ("/deep/dir/file.json", 200),
                                       ("/file.jsonx", 404), ("/file.json?x=1", 200)])
def test_suffix_pattern(px, path, want):
    status, body = body_of(px, path)
    assert status == want
    if want == 200:
        assert body == "json"


def test_placeholders_fill_redirect_template(px):
    r = get(px.port, "/blog/2024/hello-world")
    assert r.status == 301
    assert r.header("Location") == "/posts/2024/hello-world"


def test_placeholder_is_one_segment_only(px):
    r = get(px.port, "/blog/2024/hello/extra")
    assert r.status == 404
    r = get(px.port, "/blog/2024")
    assert r.status == 404


def test_regex_captures_fill_redirect_template(px):
    r = get(px.port, "/v2/foo/bar")
    assert r.status == 302
    assert r.header("Location") == "/version/2/foo/bar"


def test_regex_non_match(px):
    assert get(px.port, "/vx/foo").status == 404


def test_prefix_splat_fills_redirect_template(px):
    r = get(px.port, "/old/a/b")
    assert r.status == 301
    assert r.header("Location") == "/new/a/b"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_status_and_location(px, status):
    r = get(px.port, "/r%d" % status)
    assert r.status == status
    assert r.header("Location") == "/target%d" % status


def test_redirect_default_status_is_301(px):
    r = get(px.port, "/rdefault")
    assert r.status == 301
    assert r.header("Location") == "/targetdefault"


def test_first_matching_route_wins(px):
    assert body_of(px, "/order/first") == (200, "first")
    assert body_of(px, "/order/other") == (200, "second")


def test_methods_mismatch_gives_405(px):
    assert body_of(px, "/only-get") == (200, "got")
    r = request(px.port, "POST", "/only-get", body=b"x")
    assert r.status == 405
    assert "GET" in (r.header("Allow") or "GET"), r


def test_methods_select_between_routes_of_same_path(px):
    assert body_of(px, "/getpost", method="GET") == (200, "get-or-post-2")
    r = request(px.port, "POST", "/getpost", body=b"")
    assert (r.status, r.body) == (200, b"get-or-post-1")


def test_no_route_gives_404(px):
    r = get(px.port, "/nothing/here")
    assert r.status == 404


# --- hosts


def test_host_exact(px):
    assert body_of(px, "/", host="exact.test") == (200, "site-exact")


def test_host_is_case_insensitive(px):
    assert body_of(px, "/", host="EXACT.Test") == (200, "site-exact")


def test_host_with_port_matches_site_without_port(px):
    assert body_of(px, "/", host="exact.test:%d" % px.port) == (200, "site-exact")


def test_host_wildcard(px):
    assert body_of(px, "/", host="a.wild.test") == (200, "site-wild")
    assert body_of(px, "/", host="b.wild.test:%d" % px.port) == (200, "site-wild")


def test_site_with_host_port_entry(px):
    assert body_of(px, "/", host="porty.test:%d" % px.port) == (200, "site-porty")


def test_unknown_host_goes_to_default_site(px):
    assert body_of(px, "/graphql", host="unknown.test") == (200, "graphql")


def test_unknown_host_without_default_site_is_404(portico):
    p = portico({"sites": [{"hosts": ["only.test"], "routes": [route("/*", respond("only"))]}]})
    assert body_of(p, "/", host="only.test") == (200, "only")
    r = get(p.port, "/", host="other.test")
    assert r.status == 404


# --- path normalisation


@pytest.mark.parametrize("path", ["/a/../api/x", "/%61pi/x", "//api//x", "/api/./x",
                                  "/api/x/../y", "/api/%2e/x"])
def test_normalised_path_reaches_prefix_route(px, path):
    assert body_of(px, path) == (200, "api")


@pytest.mark.parametrize("path", ["/../x", "/../../etc/passwd", "/api/../../x"])
def test_dot_segments_above_root_are_400(px, path):
    with RawConn(px.port) as c:
        r = c.request("GET", path)
        assert r.status == 400, r
