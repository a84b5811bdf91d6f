/*
 * test_route.c - the router (src/route/route.c): every pattern form and its non-matches,
 * first-match-wins ordering, methods and the 405 signal, strip_len, splat/params/captures,
 * template checks and expansion, build errors with positions, and site selection by Host.
 *
 * Configurations are built by hand in static storage (the YAML loader is not needed): one
 * helper turns a list of patterns into a one-site configuration.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "http/h1_parse.h"
#include "route/route.h"

#define MAX_ROUTES 16

struct fx {
    struct pt_config cfg;
    struct pt_site_cfg sites[6];
    struct pt_route_cfg routes[MAX_ROUTES];
    struct pt_router *rt;
    char err[2048];
};

static struct pt_route_cfg route(const char *match)
{
    struct pt_route_cfg r;
    memset(&r, 0, sizeof(r));
    r.match = match;
    r.action = PT_ACTION_RESPOND;
    r.pos = (struct pt_cfg_pos){10, 7};
    r.match_pos = (struct pt_cfg_pos){10, 14};
    return r;
}

/* One default site holding f->routes[0..n). Returns pt_router_build's result. */
static int build1(struct fx *f, size_t n)
{
    f->cfg.path = "site.yaml";
    f->sites[0].routes = f->routes;
    f->sites[0].n_routes = n;
    f->sites[0].pos = (struct pt_cfg_pos){5, 3};
    f->cfg.sites = f->sites;
    f->cfg.n_sites = 1;
    return pt_router_build(&f->cfg, &f->rt, f->err, sizeof(f->err));
}

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    return f;
}

static void fx_free(struct fx *f)
{
    pt_router_free(f->rt);
    free(f);
}

static const char *method_name(int method)
{
    switch (method) {
    case PT_METHOD_GET:
        return "GET";
    case PT_METHOD_HEAD:
        return "HEAD";
    case PT_METHOD_POST:
        return "POST";
    case PT_METHOD_PUT:
        return "PUT";
    case PT_METHOD_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

/* Matches path with GET (or method) on the first site; returns the index of the route or -1. */
static int match_m(struct fx *f, int method, const char *tok, const char *path,
                   struct pt_route_match *m, int *mm)
{
    const struct pt_site *site = pt_router_site(f->rt, "", 0);
    assert_non_null(site);
    struct pt_str t = {tok ? tok : method_name(method), strlen(tok ? tok : method_name(method))};
    const struct pt_route_cfg *r =
        pt_router_match(f->rt, site, method, t, path, strlen(path), m, mm);
    if (!r)
        return -1;
    assert_ptr_equal(m->route, r);
    return (int)(r - f->routes);
}

static int match(struct fx *f, const char *path, struct pt_route_match *m)
{
    int mm = -1;
    int i = match_m(f, PT_METHOD_GET, NULL, path, m, &mm);
    assert_int_equal(mm, 0);
    return i;
}

static void assert_slice(struct pt_str s, const char *want)
{
    if (s.n != strlen(want) || memcmp(s.p, want, s.n) != 0)
        fail_msg("slice \"%.*s\" != \"%s\"", (int)s.n, s.p, want);
}

/* ---- pattern forms --------------------------------------------------------------------- */

static void test_exact(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("/graphql");
    assert_int_equal(build1(f, 1), PT_OK);
    struct pt_route_match m;
    assert_int_equal(match(f, "/graphql", &m), 0);
    assert_int_equal(m.splat.n, 0);
    assert_int_equal(m.strip_len, 0);
    assert_int_equal(m.n_params, 0);
    assert_int_equal(m.n_captures, 0);
    assert_int_equal(match(f, "/graphql/", &m), -1);
    assert_int_equal(match(f, "/graphql/v2", &m), -1);
    assert_int_equal(match(f, "/graphq", &m), -1);
    assert_int_equal(match(f, "/Graphql", &m), -1);
    assert_int_equal(match(f, "/", &m), -1);
    fx_free(f);
}

static void test_prefix(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("/api/*");
    assert_int_equal(build1(f, 1), PT_OK);
    struct pt_route_match m;
    assert_int_equal(match(f, "/api", &m), 0);
    assert_slice(m.splat, "");
    assert_int_equal(m.strip_len, 4);
    assert_int_equal(match(f, "/api/", &m), 0);
    assert_slice(m.splat, "");
    assert_int_equal(m.strip_len, 4);
    assert_int_equal(match(f, "/api/users/1", &m), 0);
    assert_slice(m.splat, "users/1");
    assert_int_equal(m.strip_len, 4);
    assert_int_equal(match(f, "/apix", &m), -1);
    assert_int_equal(match(f, "/ap", &m), -1);
    assert_int_equal(match(f, "/API/x", &m), -1);
    assert_int_equal(match(f, "/", &m), -1);
    fx_free(f);
}

static void test_prefix_deep_and_root(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("/a/b/*");
    f->routes[1] = route("/*");
    assert_int_equal(build1(f, 2), PT_OK);
    struct pt_route_match m;
    assert_int_equal(match(f, "/a/b/c", &m), 0);
    assert_slice(m.splat, "c");
    assert_int_equal(m.strip_len, 4);
    assert_int_equal(match(f, "/a/bc", &m), 1);
    assert_slice(m.splat, "a/bc");
    assert_int_equal(m.strip_len, 0);
    assert_int_equal(match(f, "/", &m), 1);
    assert_slice(m.splat, "");
    assert_int_equal(match(f, "/anything/at/all?", &m), 1);
    fx_free(f);
}

static void test_suffix(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("*.json");
    assert_int_equal(build1(f, 1), PT_OK);
    struct pt_route_match m;
    assert_int_equal(match(f, "/a/b.json", &m), 0);
    assert_slice(m.splat, "/a/b");
    assert_int_equal(m.strip_len, 0);
    assert_int_equal(match(f, "/.json", &m), 0);
    assert_slice(m.splat, "/");
    assert_int_equal(match(f, "/x.jsonp", &m), -1);
    assert_int_equal(match(f, "/x.JSON", &m), -1);
    assert_int_equal(match(f, "/json", &m), -1);
    fx_free(f);
}

static void test_placeholders(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("/blog/:year/:slug");
    f->routes[1] = route("/u/:id/*");
    f->routes[2] = route("/t/:a/");
    f->routes[3] = route("/:x");
    assert_int_equal(build1(f, 4), PT_OK);
    struct pt_route_match m;
    assert_int_equal(match(f, "/blog/2024/hello", &m), 0);
    assert_int_equal(m.n_params, 2);
    assert_slice(m.param_names[0], "year");
    assert_slice(m.param_values[0], "2024");
    assert_slice(m.param_names[1], "slug");
    assert_slice(m.param_values[1], "hello");
    assert_int_equal(m.splat.n, 0);
    assert_int_equal(m.strip_len, 0);
    assert_int_equal(match(f, "/blog/2024/hello/", &m), -1);
    assert_int_equal(match(f, "/blog/2024/hello/x", &m), -1);
    assert_int_equal(match(f, "/Blog/2024/hello", &m), -1);

    /* "/blog/2024" has two segments: only "/:x" cannot take it either. */
    assert_int_equal(match(f, "/blog/2024", &m), -1);

    assert_int_equal(match(f, "/u/5", &m), 1);
    assert_slice(m.param_values[0], "5");
    assert_slice(m.splat, "");
    assert_int_equal(m.strip_len, 4);
    assert_int_equal(match(f, "/u/5/", &m), 1);
    assert_slice(m.splat, "");
    assert_int_equal(match(f, "/u/5/a/b", &m), 1);
    assert_slice(m.splat, "a/b");
    assert_int_equal(m.strip_len, 4);
    assert_int_equal(match(f, "/u/", &m), -1); /* a placeholder needs a non-empty segment */

    assert_int_equal(match(f, "/t/1/", &m), 2);
    assert_slice(m.param_values[0], "1");
    assert_int_equal(match(f, "/t/1", &m), -1);

    assert_int_equal(match(f, "/hello", &m), 3);
    assert_slice(m.param_names[0], "x");
    assert_slice(m.param_values[0], "hello");
    assert_int_equal(match(f, "/", &m), -1);
    fx_free(f);
}

static void test_regex(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("~^/v([0-9]+)/(.*)$");
    f->routes[1] = route("~^/o(x)?(y)?$");
    f->routes[2] = route("~^/m(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)$");
    f->routes[3] = route("~\\.php$");
    assert_int_equal(build1(f, 4), PT_OK);
    struct pt_route_match m;
    assert_int_equal(match(f, "/v2/users/1", &m), 0);
    assert_int_equal(m.n_captures, 3);
    assert_slice(m.captures[0], "/v2/users/1");
    assert_slice(m.captures[1], "2");
    assert_slice(m.captures[2], "users/1");
    assert_int_equal(m.strip_len, 0);
    assert_int_equal(match(f, "/vx/users", &m), -1);
    assert_int_equal(match(f, "/V2/users", &m), -1);

    assert_int_equal(match(f, "/oy", &m), 1);
    assert_int_equal(m.n_captures, 3);
    assert_slice(m.captures[1], ""); /* unset group */
    assert_slice(m.captures[2], "y");

    assert_int_equal(match(f, "/mabcdefghijk", &m), 2);
    assert_int_equal(m.n_captures, PT_ROUTE_MAX_CAPTURES);
    assert_slice(m.captures[1], "a");
    assert_slice(m.captures[9], "i");

    assert_int_equal(match(f, "/x/index.php", &m), 3);
    assert_slice(m.captures[0], ".php");
    fx_free(f);
}

/* ---- ordering and methods -------------------------------------------------------------- */

static void test_first_match_wins(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("/api/special");
    f->routes[1] = route("/api/*");
    f->routes[2] = route("/api/other");
    f->routes[3] = route("*.json");
    f->routes[4] = route("/*");
    assert_int_equal(build1(f, 5), PT_OK);
    struct pt_route_match m;
    assert_int_equal(match(f, "/api/special", &m), 0);
    assert_int_equal(match(f, "/api/other", &m), 1); /* the prefix comes first */
    assert_int_equal(match(f, "/api/x.json", &m), 1);
    assert_int_equal(match(f, "/x.json", &m), 3);
    assert_int_equal(match(f, "/x", &m), 4);
    fx_free(f);
}

static void test_methods(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    static const char *purge[] = {"PURGE", NULL};
    f->routes[0] = route("/x");
    f->routes[0].methods_mask = 1u << PT_METHOD_GET;
    f->routes[1] = route("/x");
    f->routes[1].methods_mask = 1u << PT_METHOD_POST;
    f->routes[1].methods_other = purge;
    f->routes[2] = route("/any");
    f->routes[3] = route("/only-purge");
    f->routes[3].methods_other = purge;
    assert_int_equal(build1(f, 4), PT_OK);
    struct pt_route_match m;
    int mm = -1;
    assert_int_equal(match_m(f, PT_METHOD_GET, NULL, "/x", &m, &mm), 0);
    assert_int_equal(mm, 0);
    assert_int_equal(match_m(f, PT_METHOD_HEAD, NULL, "/x", &m, &mm), 0); /* HEAD with GET */
    assert_int_equal(match_m(f, PT_METHOD_POST, NULL, "/x", &m, &mm), 1);
    assert_int_equal(mm, 1); /* route 0 matched the path but not POST */
    assert_int_equal(match_m(f, PT_METHOD_OTHER, "PURGE", "/x", &m, &mm), 1);
    assert_int_equal(match_m(f, PT_METHOD_DELETE, NULL, "/x", &m, &mm), -1);
    assert_int_equal(mm, 1); /* 405 */
    assert_null(m.route);
    assert_int_equal(match_m(f, PT_METHOD_OTHER, "BREW", "/x", &m, &mm), -1);
    assert_int_equal(mm, 1);
    assert_int_equal(match_m(f, PT_METHOD_OTHER, "purge", "/x", &m, &mm), -1); /* case */
    assert_int_equal(match_m(f, PT_METHOD_DELETE, NULL, "/nothing", &m, &mm), -1);
    assert_int_equal(mm, 0); /* 404 */
    assert_int_equal(match_m(f, PT_METHOD_OTHER, "BREW", "/any", &m, &mm), 2);
    assert_int_equal(match_m(f, PT_METHOD_PATCH, NULL, "/any", &m, &mm), 2);
    assert_int_equal(match_m(f, PT_METHOD_GET, NULL, "/only-purge", &m, &mm), -1);
    assert_int_equal(mm, 1);
    assert_int_equal(match_m(f, PT_METHOD_OTHER, "PURGE", "/only-purge", &m, &mm), 3);
    /* A NULL method_mismatch is allowed. */
    const struct pt_site *site = pt_router_site(f->rt, NULL, 0);
    assert_null(
        pt_router_match(f->rt, site, PT_METHOD_DELETE, PT_STR("DELETE"), "/x", 2, &m, NULL));
    fx_free(f);
}

/* ---- templates ------------------------------------------------------------------------- */

static void test_expand(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("/old/*");
    f->routes[0].action = PT_ACTION_REDIRECT;
    f->routes[0].redirect.to = "/new/:splat";
    f->routes[1] = route("/blog/:year/:slug");
    f->routes[1].action = PT_ACTION_REDIRECT;
    f->routes[1].redirect.to = "https://example.com:8443/posts/:year-:slug?x=$";
    f->routes[2] = route("~^/v([0-9]+)/(.*)$");
    f->routes[2].action = PT_ACTION_PROXY;
    f->routes[2].proxy.to_path = "/api/$2/version/$1/$0";
    assert_int_equal(build1(f, 3), PT_OK);
    struct pt_route_match m;
    char out[256];

    assert_int_equal(match(f, "/old/a b/c?d", &m), 0);
    assert_int_equal(pt_route_expand(f->routes[0].redirect.to, &m, out, sizeof(out)), 16);
    assert_string_equal(out, "/new/a%20b/c%3Fd");

    assert_int_equal(match(f, "/blog/2024/h\xc3\xa9llo", &m), 1);
    ssize_t n = pt_route_expand(f->routes[1].redirect.to, &m, out, sizeof(out));
    assert_string_equal(out, "https://example.com:8443/posts/2024-h%C3%A9llo?x=$");
    assert_int_equal(n, (ssize_t)strlen(out));

    assert_int_equal(match(f, "/v3/a%2Fb", &m), 2);
    pt_route_expand(f->routes[2].proxy.to_path, &m, out, sizeof(out));
    assert_string_equal(out, "/api/a%2Fb/version/3//v3/a%2Fb");

    /* Unknown names and groups are copied literally; a too small buffer gives -1. */
    assert_int_equal(pt_route_expand("/:nope/$7/:splat", &m, out, sizeof(out)), 10);
    assert_string_equal(out, "/:nope/$7/");
    m.splat = (struct pt_str){NULL, 0}; /* no splat at all (a Netlify rule without '*') */
    assert_int_equal(pt_route_expand("/:nope/:splat", &m, out, sizeof(out)), 13);
    assert_string_equal(out, "/:nope/:splat");
    assert_int_equal(pt_route_expand("/api/$2", &m, out, 8), -1);
    assert_int_equal(pt_route_expand("/api/$2", &m, out, 11), 10);
    assert_string_equal(out, "/api/a%2Fb");
    assert_int_equal(pt_route_expand("/api/$2", &m, out, 10), -1);
    assert_int_equal(pt_route_expand("0123456789", &m, out, 10), -1);
    assert_int_equal(pt_route_expand("", &m, out, 1), 0);
    fx_free(f);
}

/* ---- build errors ---------------------------------------------------------------------- */

/* Builds one route with pattern match (and optional redirect template) and expects an error
 * containing want. */
static void expect_error(const char *match_, const char *redirect_to, const char *want)
{
    struct fx *f = fx_new();
    f->routes[0] = route(match_);
    if (redirect_to) {
        f->routes[0].action = PT_ACTION_REDIRECT;
        f->routes[0].redirect.to = redirect_to;
    }
    if (build1(f, 1) != PT_ERR)
        fail_msg("pattern \"%s\" to \"%s\" built", match_, redirect_to ? redirect_to : "");
    assert_null(f->rt);
    if (!strstr(f->err, want))
        fail_msg("pattern \"%s\": error \"%s\" lacks \"%s\"", match_, f->err, want);
    fx_free(f);
}

static void test_build_errors(void **state)
{
    (void)state;
    expect_error("~^(/a", NULL, "site.yaml:10:14: invalid regex: ");
    expect_error("~^(/a", NULL, "at offset 4");
    expect_error("~a[", NULL, "site.yaml:10:14: invalid regex: missing terminating ]");
    expect_error("api/*", NULL, "site.yaml:10:14: route pattern \"api/*\": must start with");
    expect_error("/a/*/b", NULL, "site.yaml:10:14: route pattern \"/a/*/b\": '*' at offset 3");
    expect_error("/a*", NULL, "'*' at offset 2");
    expect_error("*", NULL, "a suffix is needed");
    expect_error("*.j*", NULL, "unexpected '*'");
    expect_error("", NULL, "site.yaml:10:14: empty route pattern");
    expect_error("/blog/:/x", NULL, "empty placeholder name");
    expect_error("/blog/:1y", NULL, "bad placeholder \":1y\"");
    expect_error("/blog/:a-b", NULL, "bad placeholder");
    expect_error("/:a/:a", NULL, "placeholder \":a\" used twice");
    expect_error("/:splat", NULL, "reserved");
    expect_error("/a//b", NULL, "can never match");
    expect_error("/a/../b", NULL, "can never match");
    expect_error("/%61pi", NULL, "can never match");
    expect_error("/a/./*", NULL, "can never match");

    expect_error("/blog/:year", "/x/:slug", "site.yaml:10:7: redirect to \"/x/:slug\" uses :slug");
    expect_error("/blog/:year", "/x/:splat", "uses :splat but the pattern");
    expect_error("/exact", "/x/:splat", "has no '*'");
    expect_error("/exact", "/x/$1", "uses $1 but the pattern \"/exact\" is not a regex");
    expect_error("~^/a(b)$", "/x/$2", "uses $2 but the regex \"^/a(b)$\" has 1 capture group");

    /* Proxy paths are checked too. */
    struct fx *f = fx_new();
    f->routes[0] = route("/a/*");
    f->routes[0].action = PT_ACTION_PROXY;
    f->routes[0].proxy.to_path = "/b/:id";
    assert_int_equal(build1(f, 1), PT_ERR);
    assert_non_null(strstr(f->err, "proxy path \"/b/:id\" uses :id"));
    fx_free(f);

    /* Every error is reported, one line each. */
    f = fx_new();
    f->routes[0] = route("nope");
    f->routes[1] = route("~(");
    f->routes[1].match_pos.line = 11;
    f->routes[2] = route("/fine/*");
    assert_int_equal(build1(f, 3), PT_ERR);
    assert_non_null(strstr(f->err, "site.yaml:10:14: route pattern \"nope\""));
    assert_non_null(strstr(f->err, "\nsite.yaml:11:14: invalid regex"));
    fx_free(f);

    /* A tiny error buffer is truncated, NUL-terminated. */
    f = fx_new();
    f->routes[0] = route("nope");
    f->cfg.path = "x";
    f->sites[0].routes = f->routes;
    f->sites[0].n_routes = 1;
    f->cfg.sites = f->sites;
    f->cfg.n_sites = 1;
    char small[8];
    assert_int_equal(pt_router_build(&f->cfg, &f->rt, small, sizeof(small)), PT_ERR);
    assert_true(strlen(small) < sizeof(small));
    fx_free(f);

    /* Valid templates build: the check accepts what the pattern defines. */
    f = fx_new();
    f->routes[0] = route("/u/:id/*");
    f->routes[0].action = PT_ACTION_REDIRECT;
    f->routes[0].redirect.to = "http://h:80/users/:id/:splat";
    f->routes[1] = route("~^/(a)(b)$");
    f->routes[1].action = PT_ACTION_REDIRECT;
    f->routes[1].redirect.to = "/$0/$1/$2/$";
    f->routes[2] = route("*.html");
    f->routes[2].action = PT_ACTION_PROXY;
    f->routes[2].proxy.to_path = ":splat.htm";
    assert_int_equal(build1(f, 3), PT_OK);
    fx_free(f);
}

/* ---- sites ----------------------------------------------------------------------------- */

struct site_fx {
    struct fx f;
};

static const char *hosts_a[] = {"example.com", "www.example.com"};
static const char *hosts_b[] = {"*.example.com"};
static const char *hosts_c[] = {"*.b.example.com", "api.example.com:8443"};
static const char *hosts_d[] = {"[::1]:8080", "127.0.0.1", "*.Example.ORG."};
static const char *hosts_e[] = {"::1", "*.example.com:9000"};

static void build_sites(struct fx *f, bool with_default)
{
    static const char *const *lists[] = {hosts_a, hosts_b, hosts_c, hosts_d, hosts_e};
    static const size_t counts[] = {2, 1, 2, 3, 2};
    for (size_t i = 0; i < 5; i++) {
        f->sites[i].hosts = (const char **)lists[i];
        f->sites[i].n_hosts = counts[i];
        f->sites[i].pos = (struct pt_cfg_pos){(int)(i + 1) * 10, 3};
    }
    f->sites[5].pos = (struct pt_cfg_pos){60, 3};
    f->cfg.path = "sites.yaml";
    f->cfg.sites = f->sites;
    f->cfg.n_sites = with_default ? 6 : 5;
    assert_int_equal(pt_router_build(&f->cfg, &f->rt, f->err, sizeof(f->err)), PT_OK);
}

static int site_of(struct fx *f, const char *host)
{
    const struct pt_site *s = pt_router_site(f->rt, host, strlen(host));
    if (!s)
        return -1;
    return (int)(pt_router_site_cfg(s) - f->sites);
}

static void test_sites(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    build_sites(f, true);
    assert_int_equal(site_of(f, "example.com"), 0);
    assert_int_equal(site_of(f, "www.example.com"), 0);
    assert_int_equal(site_of(f, "EXAMPLE.Com"), 0);      /* case */
    assert_int_equal(site_of(f, "example.com."), 0);     /* trailing dot */
    assert_int_equal(site_of(f, "example.com:8080"), 0); /* any port */
    assert_int_equal(site_of(f, "www.example.com.:80"), 0);
    assert_int_equal(site_of(f, "a.example.com"), 1);     /* wildcard */
    assert_int_equal(site_of(f, "x.y.z.example.com"), 1); /* any depth */
    assert_int_equal(site_of(f, "a.b.example.com"), 2);   /* longest wildcard */
    assert_int_equal(site_of(f, "b.example.com"), 1);     /* "*.b" needs a label before */
    assert_int_equal(site_of(f, "api.example.com"), 1);   /* port-only entry, no port */
    assert_int_equal(site_of(f, "api.example.com:8443"), 2);
    assert_int_equal(site_of(f, "api.example.com:8444"), 1);
    assert_int_equal(site_of(f, "q.example.com:9000"), 4);   /* wildcard with port first */
    assert_int_equal(site_of(f, "q.b.example.com:9000"), 2); /* but longer wildcard wins */
    assert_int_equal(site_of(f, "[::1]:8080"), 3);           /* IPv6 */
    assert_int_equal(site_of(f, "[::1]"), 4);
    assert_int_equal(site_of(f, "[::1]:9"), 4);
    assert_int_equal(site_of(f, "[::2]:8080"), 5);
    assert_int_equal(site_of(f, "127.0.0.1:80"), 3);
    assert_int_equal(site_of(f, "x.example.org"), 3);
    assert_int_equal(site_of(f, "example.org"), 5); /* wildcard needs a deeper name */
    assert_int_equal(site_of(f, "xexample.com"), 5);
    assert_int_equal(site_of(f, "other.net"), 5); /* default */
    assert_int_equal(site_of(f, ""), 5);
    assert_int_equal(site_of(f, "example.com:abc"), 5); /* malformed: default */
    assert_int_equal(site_of(f, "[::1"), 5);
    assert_int_equal(site_of(f, "example.com:"), 0); /* empty port */
    char longhost[400];
    memset(longhost, 'a', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    assert_int_equal(site_of(f, longhost), 5);
    fx_free(f);

    f = fx_new();
    build_sites(f, false);
    assert_int_equal(site_of(f, "other.net"), -1); /* none */
    assert_int_equal(site_of(f, "example.com"), 0);
    assert_null(pt_router_site_cfg(NULL));
    fx_free(f);
}

static void test_site_errors(void **state)
{
    (void)state;
    static const char *dup1[] = {"a.com", "b.com"};
    static const char *dup2[] = {"B.com"};
    static const char *bad[] = {"a.*.com", "x.com:99999", "", "*."};
    struct fx *f = fx_new();
    f->cfg.path = "s.yaml";
    f->sites[0].hosts = dup1;
    f->sites[0].n_hosts = 2;
    f->sites[0].pos = (struct pt_cfg_pos){3, 5};
    f->sites[1].hosts = dup2;
    f->sites[1].n_hosts = 1;
    f->sites[1].pos = (struct pt_cfg_pos){9, 5};
    f->sites[2].pos = (struct pt_cfg_pos){12, 5};
    f->sites[3].pos = (struct pt_cfg_pos){15, 5};
    f->sites[4].hosts = bad;
    f->sites[4].n_hosts = 4;
    f->sites[4].pos = (struct pt_cfg_pos){20, 5};
    f->cfg.sites = f->sites;
    f->cfg.n_sites = 5;
    assert_int_equal(pt_router_build(&f->cfg, &f->rt, f->err, sizeof(f->err)), PT_ERR);
    assert_null(f->rt);
    assert_non_null(strstr(f->err, "s.yaml:9:5: host \"B.com\" is listed twice"));
    assert_non_null(strstr(f->err, "s.yaml:15:5: a second default site"));
    assert_non_null(strstr(f->err, "s.yaml:20:5: bad host \"a.*.com\""));
    assert_non_null(strstr(f->err, "s.yaml:20:5: bad host \"x.com:99999\""));
    assert_non_null(strstr(f->err, "s.yaml:20:5: bad host \"\""));
    assert_non_null(strstr(f->err, "s.yaml:20:5: bad host \"*.\""));
    fx_free(f);
}

/* ---- threads --------------------------------------------------------------------------- */

static void *regex_thread(void *arg)
{
    struct fx *f = arg;
    struct pt_route_match m;
    for (int i = 0; i < 100; i++)
        if (match(f, "/v7/x", &m) != 0 || m.captures[1].n != 1)
            return (void *)1;
    return NULL;
}

/* Regex match data is per thread and freed when the thread exits (ASan checks for leaks). */
static void test_regex_threads(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->routes[0] = route("~^/v([0-9]+)/");
    assert_int_equal(build1(f, 1), PT_OK);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, regex_thread, f), 0);
    for (int i = 0; i < 3; i++) {
        void *rv = (void *)1;
        assert_int_equal(pthread_join(t[i], &rv), 0);
        assert_null(rv);
    }
    fx_free(f);
}

static void test_null_inputs(void **state)
{
    (void)state;
    struct pt_route_match m;
    int mm = 7;
    assert_null(pt_router_site(NULL, "a", 1));
    assert_null(pt_router_match(NULL, NULL, PT_METHOD_GET, PT_STR("GET"), "/", 1, &m, &mm));
    assert_int_equal(mm, 0);
    pt_router_free(NULL);
    struct pt_router *rt = (struct pt_router *)1;
    char err[128];
    assert_int_equal(pt_router_build(NULL, &rt, err, sizeof(err)), PT_ERR);
    assert_null(rt);

    /* An empty configuration builds and routes nothing. */
    struct pt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(pt_router_build(&cfg, &rt, err, sizeof(err)), PT_OK);
    assert_null(pt_router_site(rt, "x", 1));
    pt_router_free(rt);
}

/* pt_route_pattern_check: the kinds the router compiles, and its refusals as bare messages. */
static void test_pattern_check(void **state)
{
    (void)state;
    char msg[256];
    assert_int_equal(pt_route_pattern_check("/graphql", msg, sizeof(msg)), PT_ROUTE_PAT_EXACT);
    assert_int_equal(pt_route_pattern_check("/api/*", msg, sizeof(msg)), PT_ROUTE_PAT_PREFIX);
    assert_int_equal(pt_route_pattern_check("*.json", msg, sizeof(msg)), PT_ROUTE_PAT_SUFFIX);
    assert_int_equal(pt_route_pattern_check("/u/:id", msg, sizeof(msg)), PT_ROUTE_PAT_PARAMS);
    assert_int_equal(pt_route_pattern_check("~^/v[0-9]+/", msg, sizeof(msg)), PT_ROUTE_PAT_REGEX);
    static const char *const bad[] = {"", "api", "/a/*/b", "/a//b", "/a/../b", "*", "~(", "/x*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = 'z';
        assert_int_equal(pt_route_pattern_check(bad[i], msg, sizeof(msg)), -1);
        assert_true(msg[0] != '\0' && msg[0] != 'z');
        assert_null(strstr(msg, ":0:0:"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_prefix_deep_and_root),
        cmocka_unit_test(test_suffix),
        cmocka_unit_test(test_placeholders),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_sites),
        cmocka_unit_test(test_site_errors),
        cmocka_unit_test(test_regex_threads),
        cmocka_unit_test(test_null_inputs),
        cmocka_unit_test(test_pattern_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
