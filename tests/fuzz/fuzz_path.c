/*
 * fuzz_path.c - libFuzzer target for pt_path_normalize / pt_path_encode, and the matcher.
 *
 * Each input is normalised into a buffer of exactly len + 1 bytes (ASan catches any write past
 * the documented bound). When accepted, the result must start with '/', be no longer than the
 * input, hold no "//" and no "." or ".." segment, and survive the wire round trip:
 * normalise(encode(n)) == n. The normalised path is then matched against a fixed router
 * holding every pattern form and the match expanded through templates, which must not crash
 * and must produce a result or -1.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "http/h1_parse.h"
#include "http/path.h"
#include "route/route.h"

static struct pt_router *router;
static const struct pt_site *site;

static void setup(void)
{
    static struct pt_route_cfg routes[] = {
        {.match = "/graphql"},
        {.match = "/api/*"},
        {.match = "*.json"},
        {.match = "/blog/:year/:slug"},
        {.match = "/u/:id/*"},
        {.match = "~^/v([0-9]+)/(.*)$"},
        {.match = "~^/(a)?(b)?(c)?(d)?(e)?(f)?(g)?(h)?(i)?(j)?(k)?"},
        {.match = "/*"},
    };
    static struct pt_site_cfg sites[1];
    static struct pt_config cfg;
    sites[0].routes = routes;
    sites[0].n_routes = sizeof(routes) / sizeof(routes[0]);
    cfg.sites = sites;
    cfg.n_sites = 1;
    char err[512];
    if (pt_router_build(&cfg, &router, err, sizeof(err)) != PT_OK)
        abort();
    site = pt_router_site(router, "", 0);
    if (!site)
        abort();
}

static void check_match(const char *p, size_t n)
{
    static const char *const tmpls[] = {
        "/x/:splat", "/p/:year/:slug/:id", "/r/$0/$1/$2/$9", "https://h:1/:nope$", "",
    };
    struct pt_route_match m;
    int mm = 0;
    const struct pt_route_cfg *r =
        pt_router_match(router, site, PT_METHOD_GET, PT_STR("GET"), p, n, &m, &mm);
    if (!r)
        abort(); /* the last route, "/" then "*", matches every path */
    char out[256];
    for (size_t i = 0; i < sizeof(tmpls) / sizeof(tmpls[0]); i++) {
        ssize_t w = pt_route_expand(tmpls[i], &m, out, sizeof(out));
        if (w >= (ssize_t)sizeof(out) || (w >= 0 && out[w] != '\0'))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!router)
        setup();
    if (size > 4096)
        return 0;
    char *out = malloc(size + 1);
    if (!out)
        return 0;
    ssize_t n = pt_path_normalize((const char *)data, size, out, size + 1);
    if (n < 0)
        goto done;
    if ((size_t)n > size || out[0] != '/' || out[n] != '\0' || strlen(out) != (size_t)n)
        abort();
    if (strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../"))
        abort();
    if ((n >= 2 && memcmp(out + n - 2, "/.", 2) == 0) ||
        (n >= 3 && memcmp(out + n - 3, "/..", 3) == 0))
        abort();
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f)
            abort();
        if (c == '%' &&
            !(i + 2 < n && out[i + 1] == '2' && (out[i + 2] == 'F' || out[i + 2] == '5')))
            abort();
    }

    size_t elen = (size_t)n * 3 + 1;
    char *enc = malloc(elen);
    char *back = malloc(elen);
    if (!enc || !back)
        goto free2;
    ssize_t e = pt_path_encode(out, (size_t)n, enc, elen);
    if (e < 0)
        abort();
    ssize_t b = pt_path_normalize(enc, (size_t)e, back, elen);
    if (b != n || memcmp(back, out, (size_t)n) != 0)
        abort();
    check_match(out, (size_t)n);
free2:
    free(enc);
    free(back);
done:
    free(out);
    return 0;
}
