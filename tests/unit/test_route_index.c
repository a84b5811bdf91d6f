/*
 * test_route_index.c - the router's per-site index (src/route/route.c) against a plain linear
 * scan: random route sets of every pattern kind (exact, "/p/" + '*' prefixes, "*.x" suffixes,
 * placeholders, regexes, Netlify rules with their trailing-slash and "/blog*" forms), with
 * duplicates and method lists, are asked about many random paths and methods. For each,
 * pt_router_match_from is followed from route 0 through every later answer (at + 1), and each
 * answer, the "at" it reports and the 405 signal must be what the first-match scan over the same
 * routes gives. The scan lives here, written from the pattern rules in docs/config.md, so it
 * shares no code with the index it checks. One case also has more candidate lists than the
 * matcher merges at once (a path 80 segments deep), where it falls back to the scan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/netlify.h"
#include "core/common.h"
#include "http/h1_parse.h"
#include "route/route.h"

#define MAX_ROUTES 400
#define PAT_MAX 200

static const struct pt_nf_rule nf_dummy; /* the router only asks whether nf is set */

/* Segments paths and patterns are made of: shared so that patterns often match. */
static const char *const words[] = {"a", "b", "svc1", "svc2", "x.json", "y.css", "1", "s1", "ab"};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

enum kind { K_EXACT, K_PREFIX, K_PLAIN, K_SUFFIX, K_PARAM, K_PARAM_SPLAT, K_REGEX_S, K_REGEX_JSON };

struct ref {
    enum kind kind;
    char lit[PAT_MAX]; /* exact: the path; prefix: without "/" + '*'; plain: without '*';
                          suffix: after '*'; param: the pattern */
    bool is_nf;
    uint32_t methods_mask;
};

struct fx {
    struct pt_config cfg;
    struct pt_site_cfg site;
    struct pt_route_cfg routes[MAX_ROUTES];
    char pats[MAX_ROUTES][PAT_MAX + 4];
    struct ref refs[MAX_ROUTES];
    size_t n;
    struct pt_router *rt;
    char err[1024];
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* "/w1/w2..." with 1..max words; empty string for zero words. */
static void rand_path(char *out, size_t cap, size_t min_words, size_t max_words)
{
    size_t n = min_words + rnd((uint32_t)(max_words - min_words + 1)), o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "/%s", words[rnd(N_WORDS)]);
}

/* Writes lit then tail into out (PAT_MAX + 4 bytes): lit and out may both live in one fx. */
static void set_pat(char *out, const char *lit, const char *tail)
{
    size_t l = strlen(lit), t = strlen(tail);
    memmove(out, lit, l);
    memcpy(out + l, tail, t + 1);
}

static void add_route(struct fx *f, enum kind kind, bool nf)
{
    size_t i = f->n++;
    struct ref *r = &f->refs[i];
    char *p = f->pats[i];
    r->kind = kind;
    r->is_nf = nf;
    switch (kind) {
    case K_EXACT:
        rand_path(r->lit, PAT_MAX, 0, 3);
        if (!r->lit[0])
            memcpy(r->lit, "/", 2);
        set_pat(p, r->lit, "");
        break;
    case K_PREFIX:
        rand_path(r->lit, PAT_MAX, 0, 2);
        set_pat(p, r->lit, "/*");
        break;
    case K_PLAIN: /* Netlify "/sv*": any path that starts with the text */
        snprintf(r->lit, PAT_MAX, "/%.*s", (int)(1 + rnd(3)), words[rnd(N_WORDS)]);
        set_pat(p, r->lit, "*");
        break;
    case K_SUFFIX: {
        static const char *const sfx[] = {".json", ".css", "json", "/a", "a/b", "1", "s1/1"};
        snprintf(r->lit, PAT_MAX, "%s", sfx[rnd(sizeof(sfx) / sizeof(sfx[0]))]);
        set_pat(p, "*", r->lit);
        break;
    }
    case K_PARAM: {
        static const char *const pp[] = {"/a/:id", "/:x/b", "/:x", "/svc1/:id/1"};
        snprintf(r->lit, PAT_MAX, "%s", pp[rnd(4)]);
        set_pat(p, r->lit, "");
        break;
    }
    case K_PARAM_SPLAT:
        snprintf(r->lit, PAT_MAX, "/svc1/:id");
        snprintf(p, PAT_MAX + 4, "/svc1/:id/*");
        break;
    case K_REGEX_S:
        snprintf(p, PAT_MAX + 4, "~^/s[0-9]/");
        break;
    case K_REGEX_JSON:
        snprintf(p, PAT_MAX + 4, "~\\.json$");
        break;
    }
    static const uint32_t masks[] = {0, 1u << PT_METHOD_GET, 1u << PT_METHOD_POST,
                                     1u << PT_METHOD_GET | 1u << PT_METHOD_PUT};
    r->methods_mask = masks[rnd(4)];
    struct pt_route_cfg *rc = &f->routes[i];
    memset(rc, 0, sizeof(*rc));
    rc->match = p;
    rc->action = PT_ACTION_RESPOND;
    rc->methods_mask = r->methods_mask;
    rc->nf = nf ? &nf_dummy : NULL;
}

static int build(struct fx *f)
{
    f->cfg.path = "index.yaml";
    f->site.routes = f->routes;
    f->site.n_routes = f->n;
    f->cfg.sites = &f->site;
    f->cfg.n_sites = 1;
    return pt_router_build(&f->cfg, &f->rt, f->err, sizeof(f->err));
}

static bool starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

/* Placeholder pattern pat against p[0..n): "/:x" takes one non-empty segment; with splat a
 * final "/rest" (or nothing) may follow. */
static bool ref_params(const char *pat, const char *p, size_t n, bool splat)
{
    size_t i = 0, j = 0, pl = strlen(pat);
    while (j < pl) {
        if (i >= n || p[i] != '/' || pat[j] != '/')
            return false;
        i++, j++;
        size_t pe = j, e = i;
        while (pe < pl && pat[pe] != '/')
            pe++;
        while (e < n && p[e] != '/')
            e++;
        if (pat[j] == ':') {
            if (e == i)
                return false;
        } else if (pe - j != e - i || memcmp(pat + j, p + i, e - i) != 0) {
            return false;
        }
        i = e, j = pe;
    }
    return i == n || (splat && p[i] == '/');
}

static bool ref_pattern(const struct ref *r, const char *p, size_t n)
{
    size_t l = strlen(r->lit);
    switch (r->kind) {
    case K_EXACT:
        return (n == l && memcmp(p, r->lit, n) == 0) ||
               (r->is_nf && n > 1 && p[n - 1] == '/' && n - 1 == l && memcmp(p, r->lit, l) == 0);
    case K_PREFIX:
        return starts(p, n, r->lit) && (n == l || p[l] == '/');
    case K_PLAIN:
        return starts(p, n, r->lit);
    case K_SUFFIX:
        return n >= l && memcmp(p + n - l, r->lit, l) == 0;
    case K_PARAM:
        return ref_params(r->lit, p, n, false) ||
               (r->is_nf && n > 1 && p[n - 1] == '/' && ref_params(r->lit, p, n - 1, false));
    case K_PARAM_SPLAT:
        return ref_params(r->lit, p, n, true);
    case K_REGEX_S:
        return n >= 4 && p[0] == '/' && p[1] == 's' && p[2] >= '0' && p[2] <= '9' && p[3] == '/';
    case K_REGEX_JSON:
        return n >= 5 && memcmp(p + n - 5, ".json", 5) == 0;
    }
    return false;
}

static bool ref_method(const struct ref *r, int method)
{
    if (r->methods_mask == 0 || (r->methods_mask & (1u << method)))
        return true;
    return method == PT_METHOD_HEAD && (r->methods_mask & (1u << PT_METHOD_GET));
}

/* The linear first-match scan from route from: the route number or f->n; *mm the 405 flag. */
static size_t ref_match(const struct fx *f, size_t from, const char *p, size_t n, int method,
                        int *mm)
{
    *mm = 0;
    for (size_t i = from; i < f->n; i++) {
        if (!ref_pattern(&f->refs[i], p, n))
            continue;
        if (ref_method(&f->refs[i], method))
            return i;
        *mm = 1;
    }
    return f->n;
}

/* The methods asked about, and their tokens (only extension methods are compared by token). */
static const int methods[] = {PT_METHOD_GET, PT_METHOD_HEAD, PT_METHOD_POST, PT_METHOD_PUT};
static const char *const method_toks[] = {"GET", "HEAD", "POST", "PUT"};

static const char *method_tok(int method)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i] == method)
            return method_toks[i];
    return "?";
}

/* Follows the matcher and the scan through every answer for one request; fails on the first
 * difference. Returns the number of answers. */
static size_t check_path(const struct fx *f, const char *p, int method)
{
    size_t n = strlen(p), answers = 0;
    const struct pt_site *site = pt_router_site(f->rt, "any.example", 11);
    assert_non_null(site);
    struct pt_str tok = {method_tok(method), strlen(method_tok(method))};
    size_t from = 0;
    for (;;) {
        int mm = -1, want_mm = 0;
        size_t at = from;
        struct pt_route_match m;
        const struct pt_route_cfg *got =
            pt_router_match_from(f->rt, site, method, tok, p, n, &m, &mm, &at);
        size_t want = ref_match(f, from, p, n, method, &want_mm);
        if (at != want || mm != want_mm || got != (want < f->n ? &f->routes[want] : NULL) ||
            m.route != got) {
            fail_msg("seed %llu, path \"%s\", %s, from %zu: got route %zu (405 flag %d), "
                     "scan says %zu (405 flag %d)",
                     (unsigned long long)rng_state, p, tok.p, from, at, mm, want, want_mm);
        }
        if (!got)
            return answers;
        answers++;
        from = at + 1;
    }
}

/* Routes and asks about n_paths random requests; returns the answers seen (all must agree). */
static size_t run_random(uint64_t seed, size_t n_routes, size_t n_paths)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    rng_state = seed;
    for (size_t i = 0; i < n_routes; i++) {
        enum kind k = (enum kind)rnd(K_REGEX_JSON + 1);
        bool nf = rnd(4) == 0 || k == K_PLAIN;
        if (k == K_PARAM_SPLAT)
            nf = false;
        if (i > 0 && rnd(8) == 0) { /* a duplicate pattern, perhaps with other methods */
            size_t j = rnd((uint32_t)i);
            add_route(f, f->refs[j].kind, f->refs[j].is_nf);
            f->refs[i] = f->refs[j];
            f->refs[i].methods_mask = f->routes[i].methods_mask;
            memcpy(f->pats[i], f->pats[j], sizeof(f->pats[i]));
            f->routes[i].nf = f->routes[j].nf;
            continue;
        }
        add_route(f, k, nf);
    }
    if (build(f) != PT_OK)
        fail_msg("seed %llu: build failed: %s", (unsigned long long)seed, f->err);
    size_t answers = 0;
    char path[PAT_MAX + 2];
    for (size_t i = 0; i < n_paths; i++) {
        rand_path(path, PAT_MAX, 0, 4);
        if (!path[0] || rnd(5) == 0)
            memcpy(path + strlen(path), "/", 2);
        answers += check_path(f, path, methods[rnd(4)]);
    }
    pt_router_free(f->rt);
    free(f);
    return answers;
}

static void test_random_small(void **state)
{
    (void)state;
    size_t answers = 0;
    for (uint64_t seed = 1; seed <= 300; seed++)
        answers += run_random(seed * 0x9E3779B97F4A7C15ull, 1 + (size_t)(seed % 40), 200);
    assert_true(answers > 1000);
}

static void test_random_large(void **state)
{
    (void)state;
    size_t answers = 0;
    for (uint64_t seed = 1; seed <= 20; seed++)
        answers += run_random(seed * 0xD1B54A32D192ED03ull, MAX_ROUTES, 2000);
    assert_true(answers > 10000);
}

/* A path deeper than the merge holds lists for: the matcher scans instead, with the same
 * answers. */
static void test_deep_path(void **state)
{
    (void)state;
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    char path[PAT_MAX * 2];
    size_t o = 0;
    for (size_t i = 0; i < 80; i++) {
        size_t k = f->n++;
        snprintf(f->pats[k], sizeof(f->pats[k]), "%.*s/*", (int)o, path);
        f->refs[k].kind = K_PREFIX;
        snprintf(f->refs[k].lit, PAT_MAX, "%.*s", (int)o, path);
        f->routes[k].match = f->pats[k];
        f->routes[k].action = PT_ACTION_RESPOND;
        o += (size_t)snprintf(path + o, sizeof(path) - o, "/a");
    }
    /* 81 prefix lists for the path "/a" x 80 (one per leading run, "" included), more than the
       64 the merge holds; exact POST routes for the shorter runs are never candidates. */
    size_t n_prefix = f->n;
    for (size_t i = 0; i < n_prefix; i++) {
        size_t k = f->n++;
        snprintf(f->pats[k], sizeof(f->pats[k]), "%s/a", f->refs[i].lit);
        f->refs[k].kind = K_EXACT;
        snprintf(f->refs[k].lit, PAT_MAX, "%s/a", f->refs[i].lit);
        f->routes[k].match = f->pats[k];
        f->routes[k].action = PT_ACTION_RESPOND;
        f->routes[k].methods_mask = 1u << PT_METHOD_POST;
        f->refs[k].methods_mask = 1u << PT_METHOD_POST;
    }
    assert_int_equal(build(f), PT_OK);
    assert_int_equal(check_path(f, path, PT_METHOD_GET), n_prefix);
    assert_int_equal(check_path(f, "/a/a/a", PT_METHOD_POST), 5);
    pt_router_free(f->rt);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_small),
        cmocka_unit_test(test_random_large),
        cmocka_unit_test(test_deep_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
