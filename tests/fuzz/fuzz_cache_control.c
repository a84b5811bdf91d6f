/*
 * fuzz_cache_control.c - libFuzzer target for the cache policy's Cache-Control parser and the
 * freshness decisions that read it (src/cache/policy.c).
 *
 * Input: '\n'-separated lines, each one response field; its first byte picks the name
 * (Cache-Control most often, else Expires, Date, Age, Last-Modified, ETag, Vary, Pragma,
 * Content-Range, Set-Cookie) and the rest is the value, copied into a buffer of exactly its
 * length (ASan catches any read past it). Checked: every parsed delta is within 0..2^31
 * (max-stale may be "no limit"); only known flags are set; the stored meta has a lifetime and
 * an age >= 0; age never decreases with time; reuse and stale-if-error answer for any clock;
 * the request view of the same fields never makes a fresh entry less fresh than no request
 * directives at all would, except through no-cache, max-age or min-fresh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/policy.h"
#include "http/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINES_MAX 8

static const struct pt_str names[] = {
    PT_STR("Cache-Control"), PT_STR("Cache-Control"), PT_STR("Cache-Control"),
    PT_STR("Cache-Control"), PT_STR("Expires"),       PT_STR("Date"),
    PT_STR("Age"),           PT_STR("Last-Modified"), PT_STR("ETag"),
    PT_STR("Vary"),          PT_STR("Pragma"),        PT_STR("Content-Range"),
    PT_STR("Set-Cookie"),
};

static void check_deltas(const struct pt_cc *cc)
{
    const int64_t lim = (int64_t)1 << 31;
    if (cc->flags >> 18)
        abort();
    if ((cc->flags & PT_CC_MAX_AGE) && (cc->max_age < 0 || cc->max_age > lim))
        abort();
    if ((cc->flags & PT_CC_S_MAXAGE) && (cc->s_maxage < 0 || cc->s_maxage > lim))
        abort();
    if ((cc->flags & PT_CC_MAX_STALE) &&
        (cc->max_stale < 0 || (cc->max_stale > lim && cc->max_stale != INT64_MAX)))
        abort();
    if ((cc->flags & PT_CC_MIN_FRESH) && (cc->min_fresh < 0 || cc->min_fresh > lim))
        abort();
    if ((cc->flags & PT_CC_SWR) && (cc->swr < 0 || cc->swr > lim))
        abort();
    if ((cc->flags & PT_CC_SIE) && (cc->sie < 0 || cc->sie > lim))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    struct pt_field f[LINES_MAX];
    char *bufs[LINES_MAX];
    size_t n = 0, i = 0;
    while (i < size && n < LINES_MAX) {
        size_t j = i;
        while (j < size && data[j] != '\n')
            j++;
        size_t len = j - i;
        uint8_t pick = len ? data[i] : 0;
        size_t vlen = len ? len - 1 : 0;
        char *b = malloc(vlen ? vlen : 1);
        if (!b)
            abort();
        memcpy(b, data + i + (len ? 1 : 0), vlen);
        bufs[n] = b;
        f[n].name = names[pick % (sizeof(names) / sizeof(names[0]))];
        f[n].value = (struct pt_str){b, vlen};
        n++;
        i = j + 1;
    }

    struct pt_cc cc;
    pt_cc_parse(&cc, f, n);
    check_deltas(&cc);

    const int64_t t0 = 1000000000;
    struct pt_cache_meta m;
    enum pt_store_verdict v =
        pt_cache_storable(PT_METHOD_GET, size & 1, &cc, 200, f, n, t0 - 1, t0, NULL, &m);
    if (!pt_cache_verdict_name(v) || m.lifetime < 0 || m.age < 0 || m.resp_time < m.req_time)
        abort();
    int64_t prev = -1;
    static const int64_t dt[] = {-100, 0, 1, 59, 3600, 86400 * 400, (int64_t)1 << 32};
    static const struct pt_cc none;
    for (size_t k = 0; k < sizeof(dt) / sizeof(dt[0]); k++) {
        int64_t a = pt_cache_age(&m, t0 + dt[k]);
        if (a < 0 || a < prev)
            abort();
        prev = a;
        enum pt_reuse r = pt_cache_reuse(&m, &cc, t0 + dt[k]);
        enum pt_reuse r0 = pt_cache_reuse(&m, &none, t0 + dt[k]);
        if (r > PT_REUSE_MISS || r0 > PT_REUSE_MISS)
            abort();
        if (r0 == PT_REUSE_FRESH && r != PT_REUSE_FRESH &&
            !(cc.flags &
              (PT_CC_NO_CACHE | PT_CC_PRAGMA_NO_CACHE | PT_CC_MAX_AGE | PT_CC_MIN_FRESH)))
            abort();
        (void)pt_cache_stale_if_error_ok(&m, &cc, t0 + dt[k]);
    }
    for (size_t k = 0; k < n; k++)
        free(bufs[k]);
    return 0;
}
