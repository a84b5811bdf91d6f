/*
 * test_cache_policy.c - the RFC 9111 / RFC 5861 / RFC 9110 §13 decisions of the edge cache
 * (src/cache/policy.c), one rule per test, with the cases the public cache-tests suite checks:
 * freshness from each source, heuristics per status, invalid Expires, Age, max-age=0 with
 * must-revalidate, s-maxage over max-age, private / no-store / no-cache, Authorization, the
 * request's max-stale / min-fresh / max-age, and Vary normalisation.
 *
 * Headers are written as "Name: value" strings; times are small integers (the functions take
 * the clock from the caller), T0 being when the response came.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/policy.h"
#include "http/h1_parse.h"

#define T0 1000000000
#define MAXF 16

/* Date values around T0 (2001-09-09 01:46:40 GMT). */
#define D_T0 "Sun, 09 Sep 2001 01:46:40 GMT"
#define D_T0_PLUS_100 "Sun, 09 Sep 2001 01:48:20 GMT"
#define D_T0_MINUS_1000 "Sun, 09 Sep 2001 01:30:00 GMT"
#define D_T0_MINUS_10_DAYS "Thu, 30 Aug 2001 01:46:40 GMT"
#define D_T0_MINUS_100_DAYS "Fri, 01 Jun 2001 01:46:40 GMT"

struct hdrs {
    struct pt_field f[MAXF];
    size_t n;
};

/* Fills h from NULL-terminated "Name: value" strings (borrowed). */
static void mk(struct hdrs *h, const char *const *lines)
{
    h->n = 0;
    for (; *lines; lines++) {
        const char *c = strchr(*lines, ':');
        assert_non_null(c);
        const char *v = c + 1;
        while (*v == ' ')
            v++;
        h->f[h->n].name = (struct pt_str){*lines, (size_t)(c - *lines)};
        h->f[h->n].value = (struct pt_str){v, strlen(v)};
        h->n++;
    }
}

#define H(var, ...)                                                                                \
    struct hdrs var;                                                                               \
    mk(&var, (const char *const[]){__VA_ARGS__, NULL})

static struct pt_cc cc_of(const char *value)
{
    struct pt_field f = {PT_STR("Cache-Control"), {value, strlen(value)}};
    struct pt_cc cc;
    pt_cc_parse(&cc, &f, 1);
    return cc;
}

/* The verdict for a GET with no request directives, response at T0 (request sent at T0). */
static enum pt_store_verdict store(int status, const struct hdrs *r,
                                   const struct pt_cache_rules *rules, struct pt_cache_meta *m)
{
    return pt_cache_storable(PT_METHOD_GET, false, NULL, status, r->f, r->n, T0, T0, rules, m);
}

/* ---- Cache-Control parsing ---- */

static void test_cc_basic(void **state)
{
    (void)state;
    struct pt_cc cc = cc_of("no-store, No-Cache, PRIVATE, public, must-revalidate, "
                            "proxy-revalidate, no-transform, only-if-cached, immutable, "
                            "must-understand");
    uint32_t all = PT_CC_NO_STORE | PT_CC_NO_CACHE | PT_CC_PRIVATE | PT_CC_PUBLIC |
                   PT_CC_MUST_REVALIDATE | PT_CC_PROXY_REVALIDATE | PT_CC_NO_TRANSFORM |
                   PT_CC_ONLY_IF_CACHED | PT_CC_IMMUTABLE | PT_CC_MUST_UNDERSTAND;
    assert_int_equal(cc.flags, all);

    cc = cc_of("max-age=60, s-maxage=30, min-fresh=5, stale-while-revalidate=7, "
               "stale-if-error=9, max-stale=3");
    assert_int_equal(cc.flags, PT_CC_MAX_AGE | PT_CC_S_MAXAGE | PT_CC_MIN_FRESH | PT_CC_SWR |
                                   PT_CC_SIE | PT_CC_MAX_STALE);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 30);
    assert_int_equal(cc.min_fresh, 5);
    assert_int_equal(cc.swr, 7);
    assert_int_equal(cc.sie, 9);
    assert_int_equal(cc.max_stale, 3);

    cc = cc_of("max-stale");
    assert_true(cc.flags & PT_CC_MAX_STALE);
    assert_true(cc.max_stale == INT64_MAX);

    cc = cc_of("");
    assert_int_equal(cc.flags, 0);
    cc = cc_of(" , ,, unknown, x=\"y\" ,");
    assert_int_equal(cc.flags, 0);
}

static void test_cc_quoted_and_whitespace(void **state)
{
    (void)state;
    /* a comma inside a quoted string does not split the list */
    struct pt_cc cc = cc_of("no-cache=\"a, max-age=5, b\", max-age=60");
    assert_int_equal(cc.flags, PT_CC_NO_CACHE | PT_CC_MAX_AGE);
    assert_int_equal(cc.max_age, 60);
    cc = cc_of("private=\"set-cookie, x\"");
    assert_int_equal(cc.flags, PT_CC_PRIVATE);
    /* cache-tests freshness-max-age-ignore-quoted(-rev) */
    cc = cc_of("extension=\"max-age=3600\", max-age=1");
    assert_int_equal(cc.flags, PT_CC_MAX_AGE);
    assert_int_equal(cc.max_age, 1);
    cc = cc_of("max-age=1, extension=\"max-age=3600\"");
    assert_int_equal(cc.max_age, 1);
    assert_false(cc.flags & PT_CC_INVALID_AGE);
    /* an escaped quote inside the string */
    cc = cc_of("x=\"a\\\", max-age=9\", max-age=2");
    assert_int_equal(cc.max_age, 2);
    assert_false(cc.flags & PT_CC_INVALID_AGE);
    /* quoted value accepted (freshness-max-age-quoted) */
    cc = cc_of("max-age=\"3600\"");
    assert_int_equal(cc.flags, PT_CC_MAX_AGE);
    assert_int_equal(cc.max_age, 3600);
    /* whitespace and tabs around elements, case-insensitive names */
    cc = cc_of("\t MAX-AGE=10 \t,\tS-MaxAge=20  ");
    assert_int_equal(cc.max_age, 10);
    assert_int_equal(cc.s_maxage, 20);
    /* leading zeros */
    cc = cc_of("max-age=003600");
    assert_int_equal(cc.max_age, 3600);
    /* several fields combine */
    struct pt_field f[3] = {{PT_STR("cache-control"), PT_STR("max-age=5")},
                            {PT_STR("X"), PT_STR("no-store")},
                            {PT_STR("Cache-Control"), PT_STR("no-cache")}};
    pt_cc_parse(&cc, f, 3);
    assert_int_equal(cc.flags, PT_CC_MAX_AGE | PT_CC_NO_CACHE);
}

static void test_cc_invalid_numbers(void **state)
{
    (void)state;
    const char *bad[] = {"max-age=",       "max-age",       "max-age=-1",      "max-age=1.5",
                         "max-age=3600.0", "max-age=a3600", "max-age=3600a",   "max-age='3600'",
                         "max-age =3600",  "max-age= 3600", "max-age=\"36 \"", "max-age=\"3600",
                         "s-maxage=x",     "max-age=\"\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pt_cc cc = cc_of(bad[i]);
        if (!(cc.flags & PT_CC_INVALID_AGE) || (cc.flags & (PT_CC_MAX_AGE | PT_CC_S_MAXAGE)))
            fail_msg("not invalid: %s (flags %x)", bad[i], cc.flags);
    }
    /* duplicates: the same value is fine, different ones are a conflict */
    struct pt_cc cc = cc_of("max-age=5, max-age=5");
    assert_int_equal(cc.flags, PT_CC_MAX_AGE);
    cc = cc_of("max-age=1800, max-age=1");
    assert_true(cc.flags & PT_CC_INVALID_AGE);
    struct pt_field f[2] = {{PT_STR("Cache-Control"), PT_STR("max-age=1")},
                            {PT_STR("Cache-Control"), PT_STR("max-age=1800")}};
    pt_cc_parse(&cc, f, 2);
    assert_true(cc.flags & PT_CC_INVALID_AGE);
    /* huge values clamp to 2^31 */
    cc = cc_of("max-age=99999999999999999999999999999, s-maxage=2147483649");
    assert_true(cc.max_age == ((int64_t)1 << 31));
    assert_true(cc.s_maxage == ((int64_t)1 << 31));
    cc = cc_of("max-age=2147483647");
    assert_true(cc.max_age == 2147483647);
    /* permitting directives with bad values are dropped; restricting ones still count */
    cc = cc_of("max-stale=abc, min-fresh=, stale-while-revalidate=x, stale-if-error");
    assert_int_equal(cc.flags, 0);
    cc = cc_of("no-store junk, public junk");
    assert_int_equal(cc.flags, PT_CC_NO_STORE);
    /* of two max-stale values the smaller, of two min-fresh the larger */
    cc = cc_of("max-stale=10, max-stale=5, min-fresh=1, min-fresh=4");
    assert_int_equal(cc.max_stale, 5);
    assert_int_equal(cc.min_fresh, 4);
}

static void test_cc_pragma(void **state)
{
    (void)state;
    struct pt_cc cc;
    H(a, "Pragma: no-cache");
    pt_cc_parse(&cc, a.f, a.n);
    assert_int_equal(cc.flags, PT_CC_PRAGMA_NO_CACHE);
    H(b, "Pragma: foo, No-Cache");
    pt_cc_parse(&cc, b.f, b.n);
    assert_int_equal(cc.flags, PT_CC_PRAGMA_NO_CACHE);
    H(c, "Pragma: no-cache", "Cache-Control: max-age=5");
    pt_cc_parse(&cc, c.f, c.n);
    assert_int_equal(cc.flags, PT_CC_MAX_AGE);
    H(d, "Pragma: unrecognised-extension");
    pt_cc_parse(&cc, d.f, d.n);
    assert_int_equal(cc.flags, 0);
}

static void test_field(void **state)
{
    (void)state;
    H(h, "A: 1", "b: 2", "B: 3");
    struct pt_str v = pt_cache_field(h.f, h.n, "b", 1);
    assert_true(v.p && v.n == 1 && v.p[0] == '2');
    assert_null(pt_cache_field(h.f, h.n, "c", 1).p);
}

/* ---- freshness lifetime ---- */

static void test_freshness_sources(void **state)
{
    (void)state;
    struct pt_cache_meta m;
    H(a, "Date: " D_T0, "Cache-Control: max-age=100, s-maxage=50", "Expires: " D_T0_PLUS_100);
    assert_int_equal(store(200, &a, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 50); /* s-maxage over max-age */
    H(b, "Date: " D_T0, "Cache-Control: max-age=30", "Expires: " D_T0_PLUS_100);
    assert_int_equal(store(200, &b, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 30); /* max-age over Expires */
    H(c, "Date: " D_T0, "Expires: " D_T0_PLUS_100);
    assert_int_equal(store(200, &c, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 100); /* Expires - Date */
    /* Expires before Date, or invalid ("0"): already expired, but stored */
    H(d, "Date: " D_T0_PLUS_100, "Expires: " D_T0, "ETag: \"x\"");
    assert_int_equal(store(200, &d, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0);
    H(e, "Date: " D_T0, "Expires: 0", "Last-Modified: " D_T0_MINUS_10_DAYS);
    assert_int_equal(store(200, &e, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0); /* no heuristic: Expires is explicit */
    /* an invalid Expires is ignored when max-age is there */
    H(f, "Date: " D_T0, "Expires: 0", "Cache-Control: max-age=10");
    assert_int_equal(store(200, &f, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 10);
    /* two conflicting Expires lines: stale */
    H(g, "Date: " D_T0, "Expires: " D_T0_PLUS_100, "Expires: " D_T0_MINUS_1000, "ETag: \"x\"");
    assert_int_equal(store(200, &g, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0);
    /* conflicting max-age: stale */
    H(h, "Cache-Control: max-age=1800, max-age=1", "ETag: \"x\"");
    assert_int_equal(store(200, &h, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0);
    assert_true(m.cc_flags & PT_CC_INVALID_AGE);
    /* no Date: resp_time stands for it */
    H(i, "Expires: " D_T0_PLUS_100);
    assert_int_equal(store(200, &i, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.date, T0);
    assert_int_equal(m.lifetime, 100);
    /* meta fields */
    H(j, "Date: " D_T0, "Age: 7", "Cache-Control: max-age=5, stale-while-revalidate=3",
      "Last-Modified: " D_T0_MINUS_1000);
    assert_int_equal(store(200, &j, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.status, 200);
    assert_int_equal(m.age, 7);
    assert_int_equal(m.swr, 3);
    assert_int_equal(m.sie, -1);
    assert_int_equal(m.last_modified, T0 - 1000);
    assert_true(m.has_validator);
    assert_int_equal(m.req_time, T0);
    assert_int_equal(m.resp_time, T0);
    H(k, "Age: x", "Cache-Control: max-age=5");
    assert_int_equal(store(200, &k, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.age, 0);
    assert_false(m.has_validator);
    assert_int_equal(m.last_modified, -1);
}

static void test_heuristic(void **state)
{
    (void)state;
    struct pt_cache_meta m;
    /* 10% of Date - Last-Modified, for each heuristically cacheable status */
    static const int ok[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    H(a, "Date: " D_T0, "Last-Modified: " D_T0_MINUS_1000);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(store(ok[i], &a, NULL, &m), PT_STORE_OK);
        assert_int_equal(m.lifetime, 100);
    }
    /* understood but not heuristically cacheable: not stored without freshness... */
    static const int no[] = {302, 303, 307, 451, 500, 502, 503, 504};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_int_equal(store(no[i], &a, NULL, &m), PT_STORE_NO_FRESHNESS);
    /* ...unless public, or explicit freshness */
    H(b, "Date: " D_T0, "Last-Modified: " D_T0_MINUS_1000, "Cache-Control: public");
    assert_int_equal(store(302, &b, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 100);
    H(c, "Cache-Control: max-age=5");
    assert_int_equal(store(503, &c, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 5);
    /* capped at one day by default, at heuristic_max_s when set */
    H(d, "Date: " D_T0, "Last-Modified: " D_T0_MINUS_100_DAYS);
    assert_int_equal(store(200, &d, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 86400);
    struct pt_cache_rules r = {.heuristic_max_s = 3600};
    assert_int_equal(store(200, &d, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 3600);
    H(e, "Date: " D_T0, "Last-Modified: " D_T0_MINUS_10_DAYS);
    assert_int_equal(store(200, &e, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 86400); /* 10 days / 10 = 1 day */
    /* Last-Modified in the future: no heuristic; stored for revalidation (a validator) */
    H(f, "Date: " D_T0, "Last-Modified: " D_T0_PLUS_100);
    assert_int_equal(store(200, &f, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0);
    /* nothing at all: 200 with no validator and no window is not worth storing */
    H(g, "Content-Type: text/html");
    assert_int_equal(store(200, &g, NULL, &m), PT_STORE_NO_FRESHNESS);
    H(g2, "ETag: \"v\"");
    assert_int_equal(store(200, &g2, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0);
    /* no heuristic with explicit freshness, even max-age=0 */
    H(h, "Date: " D_T0, "Last-Modified: " D_T0_MINUS_1000, "Cache-Control: max-age=0");
    assert_int_equal(store(200, &h, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0);
}

static void test_rules(void **state)
{
    (void)state;
    struct pt_cache_meta m;
    static const int16_t st[] = {404, 302, 500, 418};
    static const int64_t ttl[] = {60, 30, 5, 9};
    struct pt_cache_rules r = {.default_ttl_s = 120, .ttl_status = st, .ttl_s = ttl, .n_ttl = 4};
    /* default TTL only without explicit or heuristic freshness */
    H(a, "Content-Type: text/plain");
    assert_int_equal(store(200, &a, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 120);
    H(b, "Cache-Control: max-age=7");
    assert_int_equal(store(200, &b, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 7);
    H(c, "Date: " D_T0, "Last-Modified: " D_T0_MINUS_1000);
    assert_int_equal(store(200, &c, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 100);
    H(c2, "Cache-Control: max-age=0");
    assert_int_equal(store(200, &c2, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 0);
    /* not for statuses that are not heuristically cacheable */
    assert_int_equal(store(303, &a, &r, &m), PT_STORE_NO_FRESHNESS);
    /* ttl_status forces the lifetime, over explicit freshness, and makes understood statuses
       storable */
    assert_int_equal(store(404, &b, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 60);
    assert_int_equal(store(302, &a, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 30);
    assert_int_equal(store(500, &a, &r, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 5);
    assert_int_equal(store(418, &a, &r, &m), PT_STORE_STATUS); /* not understood */
    /* but not over no-store */
    H(d, "Cache-Control: no-store");
    assert_int_equal(store(404, &d, &r, &m), PT_STORE_NO_STORE);
    /* Set-Cookie */
    H(e, "Cache-Control: max-age=5", "Set-Cookie: a=b");
    assert_int_equal(store(200, &e, NULL, &m), PT_STORE_SET_COOKIE);
    assert_int_equal(store(200, &e, &r, &m), PT_STORE_SET_COOKIE);
    r.store_set_cookie = true;
    assert_int_equal(store(200, &e, &r, &m), PT_STORE_OK);
}

/* ---- storing ---- */

static void test_storable(void **state)
{
    (void)state;
    struct pt_cache_meta m;
    H(ok, "Cache-Control: max-age=60");
    assert_int_equal(
        pt_cache_storable(PT_METHOD_HEAD, false, NULL, 200, ok.f, ok.n, T0, T0, NULL, &m),
        PT_STORE_METHOD);
    assert_int_equal(
        pt_cache_storable(PT_METHOD_POST, false, NULL, 200, ok.f, ok.n, T0, T0, NULL, &m),
        PT_STORE_METHOD);
    assert_int_equal(m.lifetime, 60); /* meta is filled whatever the verdict */
    static const int understood[] = {200, 203, 204, 300, 301, 302, 303, 307, 308, 404,
                                     405, 410, 414, 451, 500, 501, 502, 503, 504};
    for (size_t i = 0; i < sizeof(understood) / sizeof(understood[0]); i++) {
        assert_true(pt_cache_status_understood(understood[i]));
        assert_int_equal(store(understood[i], &ok, NULL, &m), PT_STORE_OK);
    }
    static const int other[] = {100, 101, 103, 201, 202, 205, 304, 400, 401, 403, 409, 418, 599};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(store(other[i], &ok, NULL, &m), PT_STORE_STATUS);
    assert_int_equal(store(206, &ok, NULL, &m), PT_STORE_PARTIAL);
    H(cr, "Cache-Control: max-age=60", "Content-Range: bytes 0-1/2");
    assert_int_equal(store(200, &cr, NULL, &m), PT_STORE_PARTIAL);
    assert_false(pt_cache_status_heuristic(302));
    assert_true(pt_cache_status_heuristic(308));

    H(ns, "Cache-Control: max-age=60, no-store");
    assert_int_equal(store(200, &ns, NULL, &m), PT_STORE_NO_STORE);
    struct pt_cc q = cc_of("no-store");
    assert_int_equal(pt_cache_storable(PT_METHOD_GET, false, &q, 200, ok.f, ok.n, T0, T0, NULL, &m),
                     PT_STORE_NO_STORE);
    H(pv, "Cache-Control: max-age=60, private");
    assert_int_equal(store(200, &pv, NULL, &m), PT_STORE_PRIVATE);
    H(pq, "Cache-Control: max-age=60, private=\"x-user\"");
    assert_int_equal(store(200, &pq, NULL, &m), PT_STORE_PRIVATE);
    H(nc, "Cache-Control: max-age=60, no-cache");
    assert_int_equal(store(200, &nc, NULL, &m), PT_STORE_OK); /* stored, always revalidated */
    H(vs, "Cache-Control: max-age=60", "Vary: Accept, *");
    assert_int_equal(store(200, &vs, NULL, &m), PT_STORE_VARY_STAR);
    /* must-understand: overrides no-store on an understood status; refuses others */
    H(mu, "Cache-Control: max-age=60, no-store, must-understand");
    assert_int_equal(store(200, &mu, NULL, &m), PT_STORE_OK);
    assert_int_equal(store(299, &mu, NULL, &m), PT_STORE_MUST_UNDERSTAND);
    assert_string_equal(pt_cache_verdict_name(PT_STORE_NO_STORE), "no-store");
    assert_string_equal(pt_cache_verdict_name(PT_STORE_OK), "ok");
    for (int v = PT_STORE_OK; v <= PT_STORE_MUST_UNDERSTAND; v++)
        assert_string_not_equal(pt_cache_verdict_name((enum pt_store_verdict)v), "unknown");
}

static void test_authorization(void **state)
{
    (void)state;
    struct pt_cache_meta m;
    const char *allow[] = {"Cache-Control: max-age=60, public", "Cache-Control: s-maxage=60",
                           "Cache-Control: max-age=60, must-revalidate"};
    for (size_t i = 0; i < 3; i++) {
        struct hdrs h;
        mk(&h, (const char *const[]){allow[i], NULL});
        assert_int_equal(
            pt_cache_storable(PT_METHOD_GET, true, NULL, 200, h.f, h.n, T0, T0, NULL, &m),
            PT_STORE_OK);
    }
    H(no, "Cache-Control: max-age=60");
    assert_int_equal(
        pt_cache_storable(PT_METHOD_GET, true, NULL, 200, no.f, no.n, T0, T0, NULL, &m),
        PT_STORE_AUTH);
    H(pp, "Cache-Control: max-age=60, proxy-revalidate");
    assert_int_equal(
        pt_cache_storable(PT_METHOD_GET, true, NULL, 200, pp.f, pp.n, T0, T0, NULL, &m),
        PT_STORE_AUTH);
}

/* ---- age and reuse ---- */

static void test_age(void **state)
{
    (void)state;
    struct pt_cache_meta m = {.date = T0, .req_time = T0, .resp_time = T0};
    assert_int_equal(pt_cache_age(&m, T0), 0);
    assert_int_equal(pt_cache_age(&m, T0 + 10), 10);
    assert_int_equal(pt_cache_age(&m, T0 - 10), 0); /* clock went back */
    m.age = 30;                                     /* Age included */
    assert_int_equal(pt_cache_age(&m, T0 + 10), 40);
    m.req_time = T0 - 5; /* response_delay added to Age */
    assert_int_equal(pt_cache_age(&m, T0), 35);
    m.age = 0;
    m.date = T0 - 100; /* apparent age */
    assert_int_equal(pt_cache_age(&m, T0 + 1), 101);
    m.date = T0 + 100; /* Date in the future: apparent age 0, delay still counts */
    assert_int_equal(pt_cache_age(&m, T0), 5);
    /* through storable: Age: 50 and Date 1000 s before the response came */
    H(h, "Date: " D_T0_MINUS_1000, "Age: 50", "Cache-Control: max-age=2000");
    struct pt_cache_meta s;
    assert_int_equal(
        pt_cache_storable(PT_METHOD_GET, false, NULL, 200, h.f, h.n, T0 - 2, T0, NULL, &s),
        PT_STORE_OK);
    assert_int_equal(pt_cache_age(&s, T0 + 10), 1010);
}

/* Age: the first element of the first line, less parameters; anything else is ignored. */
static void test_age_field(void **state)
{
    (void)state;
    static const struct {
        const char *age;
        int64_t want;
    } cases[] = {
        {"7200, 0", 7200}, {"0, 7200", 0}, {"7200;foo=bar", 7200}, {"7200.0", 0},
        {"-7200", 0},      {"abc", 0},     {" 30 ", 30},           {"2147483649", 2147483648LL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "Age: %s", cases[i].age);
        H(h, line, "Cache-Control: max-age=3600");
        struct pt_cache_meta m;
        assert_int_equal(store(200, &h, NULL, &m), PT_STORE_OK);
        assert_int_equal(m.age, cases[i].want);
    }
}

/* RFC 9213: CDN-Cache-Control replaces Cache-Control and Expires; an invalid one is ignored. */
static void test_cdn_cache_control(void **state)
{
    (void)state;
    struct pt_cache_meta m;
    H(a, "CDN-Cache-Control: max-age=600", "Cache-Control: no-store");
    assert_int_equal(store(200, &a, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 600);
    H(b, "CDN-Cache-Control: private", "Cache-Control: max-age=600", "Expires: " D_T0_PLUS_100);
    assert_int_equal(store(200, &b, NULL, &m), PT_STORE_PRIVATE);
    H(c, "CDN-Cache-Control: no-store", "Cache-Control: max-age=600");
    assert_int_equal(store(200, &c, NULL, &m), PT_STORE_NO_STORE);
    H(d, "CDN-Cache-Control: no-cache", "Cache-Control: max-age=600", "ETag: \"e\"");
    assert_int_equal(store(200, &d, NULL, &m), PT_STORE_OK);
    assert_true(m.cc_flags & PT_CC_NO_CACHE);
    H(e, "CDN-Cache-Control: max-age=10000, &&&&&", "Cache-Control: no-store");
    assert_int_equal(store(200, &e, NULL, &m), PT_STORE_NO_STORE);
    H(f, "CDN-Cache-Control: max-age=\"10000\"", "Cache-Control: no-store");
    assert_int_equal(store(200, &f, NULL, &m), PT_STORE_NO_STORE);
    H(g, "CDN-Cache-Control: max-age=60, foo=\"bar\";x=?1, baz=1.5", "Cache-Control: no-store");
    assert_int_equal(store(200, &g, NULL, &m), PT_STORE_OK);
    assert_int_equal(m.lifetime, 60);
}

static struct pt_cache_meta meta(int64_t lifetime, uint32_t flags, bool validator)
{
    return (struct pt_cache_meta){.status = 200,
                                  .cc_flags = flags,
                                  .date = T0,
                                  .req_time = T0,
                                  .resp_time = T0,
                                  .lifetime = lifetime,
                                  .swr = -1,
                                  .sie = -1,
                                  .last_modified = -1,
                                  .has_validator = validator};
}

static void test_reuse_fresh_stale(void **state)
{
    (void)state;
    struct pt_cache_meta m = meta(10, PT_CC_MAX_AGE, true);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0), PT_REUSE_FRESH);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 9), PT_REUSE_FRESH);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 10), PT_REUSE_REVALIDATE);
    m.has_validator = false;
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 10), PT_REUSE_MISS);
    /* Age makes it stale sooner */
    m = meta(10, PT_CC_MAX_AGE, true);
    m.age = 8;
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 1), PT_REUSE_FRESH);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 2), PT_REUSE_REVALIDATE);
    /* max-age=0: stale at once */
    m = meta(0, PT_CC_MAX_AGE, true);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0), PT_REUSE_REVALIDATE);
    /* no-cache response: always revalidated, even fresh */
    m = meta(100, PT_CC_MAX_AGE | PT_CC_NO_CACHE, true);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0), PT_REUSE_REVALIDATE);
    m.has_validator = false;
    assert_int_equal(pt_cache_reuse(&m, NULL, T0), PT_REUSE_MISS);
    /* stale-while-revalidate window */
    m = meta(10, PT_CC_MAX_AGE | PT_CC_SWR, true);
    m.swr = 5;
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 12), PT_REUSE_STALE_SWR);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 15), PT_REUSE_STALE_SWR);
    assert_int_equal(pt_cache_reuse(&m, NULL, T0 + 16), PT_REUSE_REVALIDATE);
}

static void test_reuse_never_stale(void **state)
{
    (void)state;
    struct pt_cc q = cc_of("max-stale");
    const uint32_t strict[] = {PT_CC_MUST_REVALIDATE, PT_CC_PROXY_REVALIDATE, PT_CC_S_MAXAGE};
    for (size_t i = 0; i < 3; i++) {
        struct pt_cache_meta m = meta(0, PT_CC_MAX_AGE | strict[i], true);
        m.swr = 100;
        assert_int_equal(pt_cache_reuse(&m, &q, T0 + 1), PT_REUSE_REVALIDATE);
        m.sie = 100;
        assert_false(pt_cache_stale_if_error_ok(&m, NULL, T0 + 1));
    }
    /* end to end: max-age=0, must-revalidate */
    H(h, "Cache-Control: max-age=0, must-revalidate", "ETag: \"a\"");
    struct pt_cache_meta s;
    assert_int_equal(store(200, &h, NULL, &s), PT_STORE_OK);
    assert_int_equal(pt_cache_reuse(&s, &q, T0), PT_REUSE_REVALIDATE);
    /* s-maxage over max-age, and its proxy-revalidate meaning */
    H(g, "Cache-Control: max-age=3600, s-maxage=1", "ETag: \"a\"");
    assert_int_equal(store(200, &g, NULL, &s), PT_STORE_OK);
    assert_int_equal(pt_cache_reuse(&s, NULL, T0), PT_REUSE_FRESH);
    assert_int_equal(pt_cache_reuse(&s, &q, T0 + 2), PT_REUSE_REVALIDATE);
}

static void test_reuse_request_directives(void **state)
{
    (void)state;
    struct pt_cache_meta m = meta(100, PT_CC_MAX_AGE, true);
    struct pt_cc q = cc_of("max-age=10");
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 10), PT_REUSE_FRESH);
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 11), PT_REUSE_REVALIDATE);
    q = cc_of("max-age=0");
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 1), PT_REUSE_REVALIDATE);
    assert_int_equal(pt_cache_reuse(&m, &q, T0), PT_REUSE_REVALIDATE); /* even at age 0 */
    q = cc_of("min-fresh=20");
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 80), PT_REUSE_FRESH);
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 81), PT_REUSE_REVALIDATE);
    q = cc_of("no-cache");
    assert_int_equal(pt_cache_reuse(&m, &q, T0), PT_REUSE_REVALIDATE);
    struct pt_field pr = {PT_STR("Pragma"), PT_STR("no-cache")};
    pt_cc_parse(&q, &pr, 1);
    assert_int_equal(pt_cache_reuse(&m, &q, T0), PT_REUSE_REVALIDATE);
    /* max-stale with a value, and without */
    q = cc_of("max-stale=5");
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 105), PT_REUSE_FRESH);
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 106), PT_REUSE_REVALIDATE);
    q = cc_of("max-stale");
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 100000), PT_REUSE_FRESH);
    /* max-stale does not lift the request's max-age */
    q = cc_of("max-stale, max-age=5");
    assert_int_equal(pt_cache_reuse(&m, &q, T0 + 6), PT_REUSE_REVALIDATE);
    /* a response's Pragma: no-cache means nothing */
    H(h, "Cache-Control: max-age=60", "Pragma: no-cache");
    struct pt_cache_meta s;
    assert_int_equal(store(200, &h, NULL, &s), PT_STORE_OK);
    assert_int_equal(pt_cache_reuse(&s, NULL, T0), PT_REUSE_FRESH);
    H(h2, "Date: " D_T0, "Last-Modified: " D_T0_MINUS_1000, "Pragma: no-cache");
    assert_int_equal(store(200, &h2, NULL, &s), PT_STORE_OK);
    assert_int_equal(pt_cache_reuse(&s, NULL, T0 + 50), PT_REUSE_FRESH);
}

static void test_stale_if_error(void **state)
{
    (void)state;
    struct pt_cache_meta m = meta(10, PT_CC_MAX_AGE | PT_CC_SIE, true);
    m.sie = 20;
    assert_true(pt_cache_stale_if_error_ok(&m, NULL, T0 + 5));
    assert_true(pt_cache_stale_if_error_ok(&m, NULL, T0 + 30));
    assert_false(pt_cache_stale_if_error_ok(&m, NULL, T0 + 31));
    m.sie = -1;
    assert_false(pt_cache_stale_if_error_ok(&m, NULL, T0 + 11));
    /* the request's own stale-if-error or max-stale */
    struct pt_cc q = cc_of("stale-if-error=100");
    assert_true(pt_cache_stale_if_error_ok(&m, &q, T0 + 110));
    assert_false(pt_cache_stale_if_error_ok(&m, &q, T0 + 111));
    q = cc_of("max-stale");
    assert_true(pt_cache_stale_if_error_ok(&m, &q, T0 + 1000));
    /* prohibited by no-cache (either side) */
    m.sie = 20;
    q = cc_of("no-cache");
    assert_false(pt_cache_stale_if_error_ok(&m, &q, T0 + 12));
    m.cc_flags |= PT_CC_NO_CACHE;
    assert_false(pt_cache_stale_if_error_ok(&m, NULL, T0 + 12));
    /* the request's max-age still bounds the origin's permission */
    m = meta(10, PT_CC_MAX_AGE | PT_CC_SIE, true);
    m.sie = 20;
    q = cc_of("max-age=5");
    assert_false(pt_cache_stale_if_error_ok(&m, &q, T0 + 12));
    /* through storable */
    H(h, "Cache-Control: max-age=1, stale-if-error=60");
    struct pt_cache_meta s;
    assert_int_equal(store(200, &h, NULL, &s), PT_STORE_OK);
    assert_int_equal(s.sie, 60);
    assert_true(pt_cache_stale_if_error_ok(&s, NULL, T0 + 30));
}

/* ---- validation ---- */

/* One validation case: a request's (or a 304's) fields, a stored response's, the answer. */
struct vcase {
    bool want;
    const char *a[4]; /* NULL-terminated */
    const char *s[4];
};

static void run_vcases(const struct vcase *c, size_t n,
                       bool (*fn)(const struct pt_field *, size_t, const struct pt_field *, size_t))
{
    for (size_t i = 0; i < n; i++) {
        struct hdrs a, s;
        mk(&a, c[i].a);
        mk(&s, c[i].s);
        if (fn(a.f, a.n, s.f, s.n) != c[i].want)
            fail_msg("case %zu (%s / %s): want %d", i, c[i].a[0] ? c[i].a[0] : "-",
                     c[i].s[0] ? c[i].s[0] : "-", c[i].want);
    }
}

#define STORED_ETAG_LM                                                                             \
    {                                                                                              \
        "ETag: \"abc\"", "Last-Modified: " D_T0_MINUS_1000, "Date: " D_T0                          \
    }

static void test_not_modified(void **state)
{
    (void)state;
    static const struct vcase c[] = {
        {true, {"If-None-Match: \"abc\""}, STORED_ETAG_LM},
        {true, {"If-None-Match: \"x\", W/\"abc\""}, STORED_ETAG_LM}, /* weak comparison */
        {true, {"If-None-Match: *"}, STORED_ETAG_LM},
        /* If-Modified-Since is not evaluated when If-None-Match is there */
        {false, {"If-None-Match: \"x\"", "If-Modified-Since: " D_T0}, STORED_ETAG_LM},
        {true, {"If-None-Match: \"x\"", "If-None-Match: \"abc\""}, STORED_ETAG_LM},
        {true, {"If-None-Match: \"abc\""}, {"ETag: W/\"abc\""}},
        {true, {"If-None-Match: W/\"abc\""}, {"ETag: W/\"abc\""}},
        {false, {"If-None-Match: \"abc"}, STORED_ETAG_LM},
        /* If-Modified-Since against Last-Modified, else Date */
        {true, {"If-Modified-Since: " D_T0_MINUS_1000}, STORED_ETAG_LM},
        {false, {"If-Modified-Since: " D_T0_MINUS_10_DAYS}, STORED_ETAG_LM},
        {false, {"If-Modified-Since: yesterday"}, STORED_ETAG_LM},
        {true, {"If-Modified-Since: " D_T0_PLUS_100}, {"Date: " D_T0}},
        {false, {"If-Modified-Since: " D_T0_MINUS_1000}, {"Date: " D_T0}},
        {false, {"X: y"}, STORED_ETAG_LM},
        {false, {"If-Modified-Since: " D_T0_MINUS_1000}, {"X: y"}},
        /* no stored ETag: only "*" matches */
        {false, {"If-None-Match: \"abc\""}, {"Date: " D_T0}},
        {true, {"If-None-Match: *"}, {"Date: " D_T0}},
    };
    run_vcases(c, sizeof(c) / sizeof(c[0]), pt_cache_not_modified);
}

static void test_304(void **state)
{
    (void)state;
    static const struct vcase c[] = {
        {true, {"ETag: \"abc\""}, STORED_ETAG_LM},
        {false, {"ETag: \"abd\""}, STORED_ETAG_LM},
        {true, {"ETag: W/\"abc\""}, STORED_ETAG_LM},     /* weak selects weakly */
        {false, {"ETag: \"abc\""}, {"ETag: W/\"abc\""}}, /* strong needs strong */
        {true, {"ETag: W/\"abc\""}, {"ETag: W/\"abc\""}},
        {true, {"Last-Modified: " D_T0_MINUS_1000}, STORED_ETAG_LM},
        {false, {"Last-Modified: " D_T0}, STORED_ETAG_LM},
        {true, {"Cache-Control: max-age=5"}, STORED_ETAG_LM},
        {true, {"Last-Modified: x"}, STORED_ETAG_LM}, /* not a validator */
        {false, {"ETag: \"abc\""}, {"Last-Modified: " D_T0_MINUS_1000}},
    };
    run_vcases(c, sizeof(c) / sizeof(c[0]), pt_cache_304_selects);

    const char *keep[] = {"Content-Length",
                          "content-encoding",
                          "Content-Range",
                          "Transfer-Encoding",
                          "Connection",
                          "Keep-Alive",
                          "TE",
                          "Trailer",
                          "Upgrade",
                          "Proxy-Connection"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        assert_false(pt_cache_304_updates((struct pt_str){keep[i], strlen(keep[i])}));
    /* the fields the cache-tests update304 suite expects updated */
    const char *upd[] = {
        "Test-Header",   "X-Content-Foo", "Content-Type", "Content-MD5", "Content-Location",
        "Cache-Control", "Expires",       "Set-Cookie",   "ETag",        "Last-Modified",
        "Date",          "Age",           "Content-Foo"};
    for (size_t i = 0; i < sizeof(upd) / sizeof(upd[0]); i++)
        assert_true(pt_cache_304_updates((struct pt_str){upd[i], strlen(upd[i])}));
}

/* ---- Vary ---- */

static ssize_t vkey(const struct hdrs *r, const struct hdrs *q, char *out, size_t cap)
{
    return pt_cache_vary_key(r->f, r->n, q->f, q->n, out, cap);
}

static void test_vary_key(void **state)
{
    (void)state;
    char a[256], b[256];
    H(r, "Vary: Accept-Encoding");
    H(q1, "Accept-Encoding: gzip, br");
    H(q2, "accept-encoding: br,gzip");
    H(q3, "Accept-Encoding: BR , GZIP");
    H(q4, "Accept-Encoding: br", "Accept-Encoding: gzip");
    ssize_t n = vkey(&r, &q1, a, sizeof(a));
    assert_int_equal(n, (ssize_t)sizeof("accept-encoding\0br,gzip"));
    assert_memory_equal(a, "accept-encoding\0br,gzip\0", (size_t)n);
    const struct hdrs *same[] = {&q2, &q3, &q4};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(vkey(&r, same[i], b, sizeof(b)), n);
        assert_memory_equal(a, b, (size_t)n);
        assert_true(pt_cache_vary_match(a, (size_t)n, same[i]->f, same[i]->n));
    }
    /* parameters: no whitespace around ';' and '=' */
    H(p1, "Accept-Encoding: gzip;q=1.0, br ; q = 0.5");
    H(p2, "Accept-Encoding: BR;Q=0.5,gzip; q=1.0");
    n = vkey(&r, &p1, a, sizeof(a));
    assert_int_equal(vkey(&r, &p2, b, sizeof(b)), n);
    assert_memory_equal(a, b, (size_t)n);
    /* a different value, an absent and an empty field are three different keys */
    H(q5, "Accept-Encoding: gzip");
    H(none, "X: y");
    H(empty, "Accept-Encoding: ");
    assert_false(pt_cache_vary_match(a, (size_t)n, q5.f, q5.n));
    n = vkey(&r, &none, a, sizeof(a));
    assert_memory_equal(a, "accept-encoding\0\1\0", (size_t)n);
    ssize_t m = vkey(&r, &empty, b, sizeof(b));
    assert_memory_equal(b, "accept-encoding\0\0", (size_t)m);
    assert_true(pt_cache_vary_match(a, (size_t)n, none.f, none.n));
    assert_false(pt_cache_vary_match(a, (size_t)n, empty.f, empty.n));
    assert_false(pt_cache_vary_match(b, (size_t)m, none.f, none.n));
    assert_true(pt_cache_vary_match(b, (size_t)m, empty.f, empty.n));
    /* no Vary: empty key, matches anything */
    H(nv, "Cache-Control: max-age=5");
    assert_int_equal(vkey(&nv, &q1, a, sizeof(a)), 0);
    assert_true(pt_cache_vary_match(a, 0, q1.f, q1.n));
    /* Vary: * */
    H(star, "Vary: Accept, *");
    assert_int_equal(vkey(&star, &q1, a, sizeof(a)), -1);
}

static void test_vary_names(void **state)
{
    (void)state;
    char a[256], b[256];
    /* names lower-cased in Vary's order, duplicates once, several Vary lines */
    H(r, "Vary: Accept-Language, X-Foo", "vary: accept-language , ACCEPT");
    H(q, "X-Foo: Bar, baz", "Accept: text/html", "Accept-Language: en");
    ssize_t n = vkey(&r, &q, a, sizeof(a));
    const char want[] = "accept-language\0en\0x-foo\0Bar,baz\0accept\0text/html\0";
    assert_int_equal(n, (ssize_t)sizeof(want) - 1);
    assert_memory_equal(a, want, sizeof(want) - 1);
    /* other fields keep case and order: a Cookie differing in case is another variant */
    H(rc, "Vary: Cookie");
    H(c1, "Cookie: session=ABC");
    H(c2, "Cookie: session=abc");
    n = vkey(&rc, &c1, a, sizeof(a));
    assert_true(n > 0);
    assert_false(pt_cache_vary_match(a, (size_t)n, c2.f, c2.n));
    assert_true(pt_cache_vary_match(a, (size_t)n, c1.f, c1.n));
    H(o1, "X-Foo: baz, Bar");
    n = vkey(&r, &q, a, sizeof(a));
    assert_false(pt_cache_vary_match(a, (size_t)n, o1.f, o1.n));
    /* quoted strings keep their case and inner commas */
    H(rq, "Vary: Accept");
    H(aq, "Accept: text/plain;x=\"A, B\", TEXT/HTML");
    n = vkey(&rq, &aq, a, sizeof(a));
    const char wq[] = "accept\0text/html,text/plain;x=\"A, B\"\0";
    assert_int_equal(n, (ssize_t)sizeof(wq) - 1);
    assert_memory_equal(a, wq, sizeof(wq) - 1);
    /* caps: every size below the key's is refused, never truncated */
    n = vkey(&r, &q, a, sizeof(a));
    for (size_t cap = 0; cap < (size_t)n; cap++)
        assert_int_equal(vkey(&r, &q, b, cap), -1);
    assert_int_equal(vkey(&r, &q, b, (size_t)n), n);
    /* a malformed key does not match */
    assert_false(pt_cache_vary_match("accept", 6, q.f, q.n));
    assert_false(pt_cache_vary_match("accept\0text/html", 16, q.f, q.n));
}

static void test_vary_limits(void **state)
{
    (void)state;
    static char big[6000];
    memset(big, 'a', sizeof(big) - 1);
    struct pt_field r = {PT_STR("Vary"), PT_STR("X")};
    struct pt_field q = {PT_STR("X"), {big, sizeof(big) - 1}};
    static char out[16384];
    assert_int_equal(pt_cache_vary_key(&r, 1, &q, 1, out, sizeof(out)), -1);
    /* too many elements */
    static char many[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        many[n++] = 'x';
        many[n++] = ',';
    }
    struct pt_field r2 = {PT_STR("Vary"), PT_STR("Accept")};
    struct pt_field q2 = {PT_STR("Accept"), {many, n}};
    assert_int_equal(pt_cache_vary_key(&r2, 1, &q2, 1, out, sizeof(out)), -1);
    /* control bytes (never valid in a field) make no key: a NUL would break the framing,
       a leading \1 would read as "absent" */
    struct pt_field r3 = {PT_STR("Vary"), PT_STR("Accept")};
    struct pt_field q3[2] = {{PT_STR("Accept"), {"a\0b", 3}}, {PT_STR("X"), PT_STR("y")}};
    assert_int_equal(pt_cache_vary_key(&r3, 1, q3, 2, out, sizeof(out)), -1);
    q3[0].value = (struct pt_str){"\"\\\0\"", 4}; /* escaped, inside quotes */
    assert_int_equal(pt_cache_vary_key(&r3, 1, q3, 2, out, sizeof(out)), -1);
    q3[0].value = (struct pt_str){"\1", 1};
    assert_int_equal(pt_cache_vary_key(&r3, 1, q3, 2, out, sizeof(out)), -1);
    assert_false(pt_cache_vary_match("accept\0\1", 9, q3, 1));
    assert_true(pt_cache_vary_match("accept\0\1", 9, q3 + 1, 1));
    struct pt_field r4 = {PT_STR("Vary"), {"Acc\0ept", 7}};
    assert_int_equal(pt_cache_vary_key(&r4, 1, q3 + 1, 1, out, sizeof(out)), -1);
    /* a stored key against a request whose value is too long: no match */
    assert_false(pt_cache_vary_match("x\0\1", 4, &q, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cc_basic),
        cmocka_unit_test(test_cc_quoted_and_whitespace),
        cmocka_unit_test(test_cc_invalid_numbers),
        cmocka_unit_test(test_cc_pragma),
        cmocka_unit_test(test_field),
        cmocka_unit_test(test_freshness_sources),
        cmocka_unit_test(test_heuristic),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_storable),
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_age_field),
        cmocka_unit_test(test_cdn_cache_control),
        cmocka_unit_test(test_reuse_fresh_stale),
        cmocka_unit_test(test_reuse_never_stale),
        cmocka_unit_test(test_reuse_request_directives),
        cmocka_unit_test(test_stale_if_error),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_304),
        cmocka_unit_test(test_vary_key),
        cmocka_unit_test(test_vary_names),
        cmocka_unit_test(test_vary_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
