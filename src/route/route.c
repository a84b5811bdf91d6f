/*
 * route.c - the router: site selection by Host, ordered route patterns, template expansion.
 *
 * Build (once per configuration snapshot, main thread) turns each site's routes into a
 * struct croute whose pattern is pre-classified:
 *
 *   exact    "/graphql"          length check, then memcmp
 *   prefix   "/api/" + '*'       "/api" or "/api/..." (lit = "/api", without the final '/')
 *   suffix   "*.json"            memcmp at the end of the path
 *   params   "/blog/:year/:slug" segment walk; ":name" takes one non-empty segment; an
 *                                optional final '/' + '*' takes the rest as the splat
 *   regex    "~^/v[0-9]+/(.*)$"  PCRE2, JIT-compiled when the library has a JIT
 *
 * Matching answers exactly what a scan of the site's routes in configuration order would: the
 * first route whose pattern and method both match (and *method_mismatch when an earlier route
 * matched the path only). So that this costs about the same with 1,000 routes as with 10, build
 * indexes each site's routes by the literal their pattern turns on, in one open-addressing
 * table keyed by (kind, literal) whose entries hold the numbers of the routes with that key,
 * ascending:
 *
 *   exact    key "/graphql"        looked up with the path (and, for Netlify's trailing
 *                                  slash, the path without its final '/')
 *   prefix   key "/api"            looked up with each leading run of the path that ends at a
 *                                  '/' or at its end: "", "/a", "/a/b", ... (an incremental
 *                                  FNV-1a, so the whole walk hashes the path once)
 *   suffix   key ".json"           looked up with the path's tail of each suffix length in use
 *   others   params, regex, Netlify "/blog*": one ascending list, always candidates
 *
 * A length set per kind (one bit per literal length) skips lookups for lengths no literal has.
 * Each lookup gives a sorted list; the lists are merged lowest number first, from the caller's
 * starting route on (a binary search finds it in each list), and each candidate goes through
 * the same pattern and method checks as before, so the first answer, the 405 signal and
 * pt_router_match_from's resumption are those of the plain scan. A candidate is only a
 * candidate: the index may over-approximate (a Netlify trailing-slash lookup finds non-Netlify
 * exact routes too) but never miss a route whose pattern could match. The merge keeps its list
 * cursors on the stack (MAX_SOURCES); a path with more candidate lists than that (dozens of
 * segments, each the literal of some prefix route) falls back to the plain scan, and so does a
 * site of at most LINEAR_MAX routes, where trying each pattern is cheaper than the lookups.
 * Rejected: a
 * segment trie for prefixes (more code and pointer chasing for the same one probe per '/'), and
 * a single per-path automaton over all kinds (regexes and placeholders would not fit, and the
 * order across kinds is the user's). tests/unit/test_route_index.c checks the index against an
 * independent linear scan over random route sets; bench/route_scale.sh measures the cost.
 *
 * Nothing is allocated while matching: results are slices of the caller's path. A regex needs
 * PCRE2 match data; each thread creates one on its first regex match, keeps it in a
 * thread-local, and a pthread key destructor frees it when the thread exits (it never depends
 * on the router, so a reload does not touch it). Every regex runs under a match and depth limit so a pathological
 * pattern fails that one request instead of burning a worker.
 *
 * Literal parts of patterns must already be in normalised form (see http/path.c): "/a//b" or
 * "/%61pi" could never match a normalised path, so build reports them as errors instead of
 * silently never matching.
 *
 * Sites: every host entry goes into one open-addressing hash table keyed by (lower-cased name,
 * port or 0 for any, wildcard flag); a wildcard "*.example.com" is stored as ".example.com".
 * Lookup lower-cases the request host into a stack buffer, tries (name, port), (name, any),
 * then for each '.' in the name from the left (so the longest wildcard first) the wildcard
 * entries for that suffix, then the default site. The router is immutable after build and
 * shared by all workers without locks.
 */
#include "route/route.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "http/h1_parse.h"

#define HOST_MAX 255              /* longest host name compared (DNS names are <= 253) */
#define REGEX_MATCH_LIMIT 1000000 /* pcre2_match steps per request before giving up */
#define REGEX_DEPTH_LIMIT 10000

enum pat_kind { PAT_EXACT, PAT_PREFIX, PAT_SUFFIX, PAT_PARAMS, PAT_REGEX };

struct pat_seg {
    const char *s; /* literal bytes, or the placeholder name without ':' */
    size_t n;
    bool is_param;
};

struct croute {
    const struct pt_route_cfg *cfg;
    int kind;        /* enum pat_kind */
    const char *lit; /* exact: the path; prefix: before the final '/'; suffix: after '*' */
    size_t lit_len;
    struct pat_seg *segs; /* params: one per segment after the leading '/' */
    size_t n_segs;
    bool has_splat;    /* params: ends in '/' + '*' */
    bool is_plain;     /* prefix of a Netlify rule written "/blog*": lit is "/blog" and the
                          splat is the rest, one leading '/' dropped */
    size_t n_params;   /* params: placeholders among segs */
    pcre2_code *re;    /* regex: owned, freed by pt_router_free */
    uint32_t n_groups; /* regex: capture groups in the pattern */
};

/* One distinct literal of one kind in a site's route index, with the routes that have it. */
struct rkey {
    const char *s; /* the literal (croute.lit); NULL marks a free slot */
    size_t n;
    int kind;      /* PAT_EXACT, PAT_PREFIX (not is_plain) or PAT_SUFFIX */
    uint32_t *idx; /* route numbers with this kind and literal, ascending */
    uint32_t n_idx;
};

struct pt_site {
    const struct pt_site_cfg *cfg;
    struct croute *routes;
    size_t n_routes;
    struct rkey *keys;       /* open addressing, at least 2x the indexed routes; NULL: none */
    size_t keys_mask;        /* table size - 1 */
    uint64_t exact_lens[4];  /* bit n: an exact literal n bytes long (bit 255: 255 or more) */
    uint64_t prefix_lens[4]; /* the same for prefix literals: other lengths are not looked up */
    size_t *suffix_lens;     /* distinct suffix literal lengths, ascending */
    size_t n_suffix_lens;
    uint32_t *others; /* params, regex and "/blog*" prefixes: route numbers, ascending */
    size_t n_others;
};

struct host_ent {
    const char *name; /* lower-cased, no port; wildcard: ".example.com" */
    size_t len;
    uint16_t port; /* 0: any port */
    bool is_wild;
    const struct pt_site *site;
};

struct pt_router {
    struct pt_arena arena; /* owns sites, routes, segments, host names, the table */
    const struct pt_config *cfg;
    struct pt_site *sites;
    size_t n_sites;
    const struct pt_site *default_site;
    struct host_ent *table; /* open addressing; name == NULL marks a free slot */
    size_t table_mask;      /* table size - 1 (size a power of two, at least 2x entries) */
    pcre2_match_context *mctx;
};

/* ---- errors ---------------------------------------------------------------------------- */

struct errs {
    char *p;
    size_t cap;
    size_t len;
    const char *file;
    int count;
};

static void add_err(struct errs *e, struct pt_cfg_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_err(struct errs *e, struct pt_cfg_pos pos, const char *fmt, ...)
{
    e->count++;
    if (!e->p || e->cap == 0 || e->len + 1 >= e->cap)
        return;
    /* No file: one bare message (pt_route_pattern_check). */
    int n = e->file ? snprintf(e->p + e->len, e->cap - e->len, "%s%s:%d:%d: ", e->len ? "\n" : "",
                               e->file, pos.line, pos.col)
                    : 0;
    if (n < 0 || (size_t)n >= e->cap - e->len) {
        e->len = e->cap - 1;
        return;
    }
    e->len += (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(e->p + e->len, e->cap - e->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= e->cap - e->len)
        e->len = e->cap - 1;
    else
        e->len += (size_t)n;
}

/* ---- patterns -------------------------------------------------------------------------- */

static bool is_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* True when p[0..n) is already normalised, i.e. a normalised path could contain it. */
static bool literal_is_normal(struct pt_arena *a, const char *p, size_t n)
{
    char *buf = pt_arena_alloc(a, n + 2);
    if (!buf)
        return false;
    ssize_t r = pt_path_normalize(p, n, buf, n + 2);
    return r >= 0 && (size_t)r == n && memcmp(buf, p, n) == 0;
}

static int compile_regex(struct errs *e, const struct pt_route_cfg *r, struct croute *cr)
{
    const char *pat = r->match + 1;
    int ecode = 0;
    PCRE2_SIZE eoff = 0;
    cr->re = pcre2_compile((PCRE2_SPTR)pat, strlen(pat), 0, &ecode, &eoff, NULL);
    if (!cr->re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ecode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ecode);
        add_err(e, r->match_pos, "invalid regex: %s at offset %zu", (const char *)msg,
                (size_t)eoff);
        return PT_ERR;
    }
    /* Not every build of libpcre2 has a JIT (or may use it: SELinux, no exec memory): the
     * interpreter gives the same answers, only slower. */
    (void)pcre2_jit_compile(cr->re, PCRE2_JIT_COMPLETE);
    uint32_t groups = 0;
    if (pcre2_pattern_info(cr->re, PCRE2_INFO_CAPTURECOUNT, &groups) != 0)
        groups = 0;
    cr->n_groups = groups;
    return PT_OK;
}

static int compile_params(struct pt_router *rt, struct errs *e, const struct pt_route_cfg *r,
                          struct croute *cr, size_t body_len)
{
    const char *p = r->match;
    size_t nseg = 0;
    for (size_t i = 0; i < body_len; i++)
        nseg += p[i] == '/';
    cr->segs = pt_arena_alloc(&rt->arena, nseg * sizeof(*cr->segs));
    if (!cr->segs) {
        add_err(e, r->match_pos, "out of memory");
        return PT_ERR;
    }
    size_t i = 1;
    while (cr->n_segs < nseg) {
        size_t j = i;
        while (j < body_len && p[j] != '/')
            j++;
        struct pat_seg *s = &cr->segs[cr->n_segs++];
        if (j > i && p[i] == ':') {
            s->is_param = true;
            s->s = p + i + 1;
            s->n = j - i - 1;
            if (s->n == 0) {
                add_err(e, r->match_pos, "route pattern \"%s\": empty placeholder name at '/:'", p);
                return PT_ERR;
            }
            bool ok = is_name_start((unsigned char)s->s[0]);
            for (size_t k = 1; ok && k < s->n; k++)
                ok = is_name_char((unsigned char)s->s[k]);
            if (!ok) {
                add_err(e, r->match_pos,
                        "route pattern \"%s\": bad placeholder \":%.*s\" (a name is a letter "
                        "or '_' then letters, digits or '_')",
                        p, (int)s->n, s->s);
                return PT_ERR;
            }
            if (s->n == 5 && memcmp(s->s, "splat", 5) == 0) {
                add_err(e, r->match_pos,
                        "route pattern \"%s\": \":splat\" is reserved for the rest matched by "
                        "'*'",
                        p);
                return PT_ERR;
            }
            for (size_t k = 0; k + 1 < cr->n_segs; k++) {
                const struct pat_seg *o = &cr->segs[k];
                if (o->is_param && o->n == s->n && memcmp(o->s, s->s, s->n) == 0) {
                    add_err(e, r->match_pos,
                            "route pattern \"%s\": placeholder \":%.*s\" used "
                            "twice",
                            p, (int)s->n, s->s);
                    return PT_ERR;
                }
            }
            if (++cr->n_params > PT_ROUTE_MAX_PARAMS) {
                add_err(e, r->match_pos, "route pattern \"%s\": more than %d placeholders", p,
                        PT_ROUTE_MAX_PARAMS);
                return PT_ERR;
            }
        } else {
            s->s = p + i;
            s->n = j - i;
        }
        i = j + 1;
    }
    cr->kind = PAT_PARAMS;
    return PT_OK;
}

static int compile_pattern(struct pt_router *rt, struct errs *e, const struct pt_route_cfg *r,
                           struct croute *cr)
{
    const char *p = r->match;
    if (!p || !*p) {
        add_err(e, r->match_pos, "empty route pattern");
        return PT_ERR;
    }
    size_t len = strlen(p);
    if (p[0] == '~') {
        cr->kind = PAT_REGEX;
        return compile_regex(e, r, cr);
    }
    if (p[0] == '*') {
        cr->kind = PAT_SUFFIX;
        cr->lit = p + 1;
        cr->lit_len = len - 1;
        if (cr->lit_len == 0) {
            add_err(e, r->match_pos,
                    "route pattern \"*\": a suffix is needed after '*' (\"/*\" matches "
                    "every path)");
            return PT_ERR;
        }
        for (size_t i = 1; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            bool bad_pct = c == '%' && !(i + 2 < len && p[i + 1] == '2' &&
                                         (p[i + 2] == 'F' || p[i + 2] == '5'));
            if (c == '*' || c < 0x20 || c == 0x7f || bad_pct) {
                add_err(e, r->match_pos,
                        "route pattern \"%s\": unexpected '%c' at offset %zu in a suffix "
                        "pattern",
                        p, c >= 0x20 && c != 0x7f ? c : '?', i);
                return PT_ERR;
            }
        }
        return PT_OK;
    }
    if (p[0] != '/') {
        add_err(e, r->match_pos,
                "route pattern \"%s\": must start with '/' (path), '*' (suffix) or '~' (regex)", p);
        return PT_ERR;
    }
    const char *star = memchr(p, '*', len);
    /* Netlify rules also take a final '*' right after other characters ("/blog*"). */
    bool plain = star && star == p + len - 1 && star[-1] != '/' && r->nf;
    if (star && !plain && (star != p + len - 1 || star[-1] != '/')) {
        add_err(e, r->match_pos,
                "route pattern \"%s\": '*' at offset %zu: it may only end a pattern, after "
                "'/' (\"/api/*\"), or start one (\"*.json\")",
                p, (size_t)(star - p));
        return PT_ERR;
    }
    size_t lit_len = star ? (size_t)(star - p) : len; /* up to the '*': "/api/" */
    if (!literal_is_normal(&rt->arena, p, lit_len)) {
        add_err(e, r->match_pos,
                "route pattern \"%s\" can never match: paths are matched decoded and "
                "normalised (no \"//\", \".\" or \"..\" segments, no %%-escapes but %%2F and "
                "%%25, no control characters)",
                p);
        return PT_ERR;
    }
    bool has_param = false;
    for (size_t i = 0; i + 1 < lit_len; i++)
        has_param |= p[i] == '/' && p[i + 1] == ':';
    if (has_param && plain) {
        add_err(e, r->match_pos, "route pattern \"%s\": a '*' after placeholders must follow a '/'",
                p);
        return PT_ERR;
    }
    if (has_param) {
        cr->has_splat = star != NULL;
        /* The body is the pattern without a final '/' + '*'; a segment follows each '/'. */
        return compile_params(rt, e, r, cr, star ? lit_len - 1 : len);
    }
    cr->lit = p;
    if (star) {
        cr->kind = PAT_PREFIX;
        cr->is_plain = plain;
        cr->lit_len = plain ? lit_len : lit_len - 1;
    } else {
        cr->kind = PAT_EXACT;
        cr->lit_len = len;
    }
    return PT_OK;
}

static bool has_param_named(const struct croute *cr, const char *s, size_t n)
{
    for (size_t i = 0; i < cr->n_segs; i++)
        if (cr->segs[i].is_param && cr->segs[i].n == n && memcmp(cr->segs[i].s, s, n) == 0)
            return true;
    return false;
}

/* Reports every ":name", ":splat" and "$N" in t that the pattern of cr cannot supply. */
static void check_template(struct errs *e, const struct pt_route_cfg *r, const struct croute *cr,
                           const char *what, const char *t)
{
    if (!t)
        return;
    for (size_t i = 0; t[i]; i++) {
        if (t[i] == ':' && is_name_start((unsigned char)t[i + 1])) {
            size_t j = i + 1;
            while (is_name_char((unsigned char)t[j]))
                j++;
            const char *name = t + i + 1;
            size_t n = j - i - 1;
            if (n == 5 && memcmp(name, "splat", 5) == 0) {
                if (cr->kind != PAT_PREFIX && cr->kind != PAT_SUFFIX && !cr->has_splat)
                    add_err(e, r->pos, "%s \"%s\" uses :splat but the pattern \"%s\" has no '*'",
                            what, t, r->match);
            } else if (!has_param_named(cr, name, n)) {
                add_err(e, r->pos,
                        "%s \"%s\" uses :%.*s but the pattern \"%s\" has no such placeholder", what,
                        t, (int)n, name, r->match);
            }
            i = j - 1;
        } else if (t[i] == '$' && t[i + 1] >= '0' && t[i + 1] <= '9') {
            unsigned k = (unsigned)(t[i + 1] - '0');
            if (cr->kind != PAT_REGEX)
                add_err(e, r->pos,
                        "%s \"%s\" uses $%u but the pattern \"%s\" is not a regex (\"~...\")", what,
                        t, k, r->match);
            else if (k > cr->n_groups)
                add_err(e, r->pos,
                        "%s \"%s\" uses $%u but the regex \"%s\" has %u capture group(s)", what, t,
                        k, r->match + 1, (unsigned)cr->n_groups);
            i++;
        }
    }
}

/* ---- the route index ------------------------------------------------------------------- */

#define FNV_INIT 14695981039346656037ull
#define FNV_PRIME 1099511628211ull
#define MAX_SOURCES 64 /* candidate lists merged per match; more: plain linear scan */
/* Sites with at most this many routes are scanned in order: hashing the path's prefixes costs
   more than trying a handful of patterns (bench/callgrind.sh: +280 instructions per request
   for a one-route site when it went through the index). */
#define LINEAR_MAX 8

/* Length sets: one bit per length 0..254, bit 255 for every longer one. */
static inline void lens_add(uint64_t *set, size_t n)
{
    n = PT_MIN(n, (size_t)255);
    set[n >> 6] |= 1ull << (n & 63);
}

static inline bool lens_has(const uint64_t *set, size_t n)
{
    n = PT_MIN(n, (size_t)255);
    return (set[n >> 6] >> (n & 63)) & 1;
}

static inline uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static inline uint64_t key_final(uint64_t h, int kind)
{
    h = (h ^ (uint64_t)kind) * FNV_PRIME;
    return h ^ (h >> 29);
}

static uint64_t key_hash(const char *s, size_t n, int kind)
{
    uint64_t h = FNV_INIT;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, (unsigned char)s[i]);
    return key_final(h, kind);
}

/* The slot holding (s, n, kind), or the free slot where it would go. */
static struct rkey *key_slot(const struct pt_site *site, uint64_t h, const char *s, size_t n,
                             int kind)
{
    size_t i = (size_t)h & site->keys_mask;
    for (;;) {
        struct rkey *k = &site->keys[i];
        if (!k->s || (k->n == n && k->kind == kind && memcmp(k->s, s, n) == 0))
            return k;
        i = (i + 1) & site->keys_mask;
    }
}

/* Whether cr goes into the hash (else into the linear others list). */
static bool is_keyed(const struct croute *cr)
{
    return cr->kind == PAT_EXACT || cr->kind == PAT_SUFFIX ||
           (cr->kind == PAT_PREFIX && !cr->is_plain);
}

/* Builds site's index from its compiled routes. Returns PT_OK, or PT_ERR when out of memory. */
static int index_site(struct pt_router *rt, struct pt_site *site)
{
    size_t n_keyed = 0;
    for (size_t i = 0; i < site->n_routes; i++)
        n_keyed += is_keyed(&site->routes[i]);
    site->n_others = site->n_routes - n_keyed;
    site->others = pt_arena_alloc(&rt->arena, (site->n_others + 1) * sizeof(*site->others));
    site->suffix_lens = pt_arena_alloc(&rt->arena, (n_keyed + 1) * sizeof(*site->suffix_lens));
    if (!site->others || !site->suffix_lens)
        return PT_ERR;
    size_t tsize = 16;
    while (tsize < 2 * n_keyed + 2)
        tsize *= 2;
    if (n_keyed) {
        site->keys = pt_arena_alloc(&rt->arena, tsize * sizeof(*site->keys));
        if (!site->keys)
            return PT_ERR;
        site->keys_mask = tsize - 1;
    }
    /* Pass 1: the distinct keys and how many routes each has. */
    size_t o = 0;
    for (size_t i = 0; i < site->n_routes; i++) {
        const struct croute *cr = &site->routes[i];
        if (!is_keyed(cr)) {
            site->others[o++] = (uint32_t)i;
            continue;
        }
        struct rkey *k = key_slot(site, key_hash(cr->lit, cr->lit_len, cr->kind), cr->lit,
                                  cr->lit_len, cr->kind);
        if (!k->s) {
            k->s = cr->lit;
            k->n = cr->lit_len;
            k->kind = cr->kind;
            if (cr->kind == PAT_EXACT)
                lens_add(site->exact_lens, cr->lit_len);
            else if (cr->kind == PAT_PREFIX)
                lens_add(site->prefix_lens, cr->lit_len);
            if (cr->kind == PAT_SUFFIX) {
                size_t j = site->n_suffix_lens;
                bool seen = false;
                for (size_t l = 0; l < j && !seen; l++)
                    seen = site->suffix_lens[l] == cr->lit_len;
                if (!seen) { /* insertion keeps them ascending */
                    while (j > 0 && site->suffix_lens[j - 1] > cr->lit_len) {
                        site->suffix_lens[j] = site->suffix_lens[j - 1];
                        j--;
                    }
                    site->suffix_lens[j] = cr->lit_len;
                    site->n_suffix_lens++;
                }
            }
        }
        k->n_idx++;
    }
    /* Pass 2: each key's route numbers, in configuration order. */
    for (size_t t = 0; site->keys && t < tsize; t++) {
        struct rkey *k = &site->keys[t];
        if (!k->s)
            continue;
        k->idx = pt_arena_alloc(&rt->arena, k->n_idx * sizeof(*k->idx));
        if (!k->idx)
            return PT_ERR;
        k->n_idx = 0;
    }
    for (size_t i = 0; i < site->n_routes; i++) {
        const struct croute *cr = &site->routes[i];
        if (!is_keyed(cr))
            continue;
        struct rkey *k = key_slot(site, key_hash(cr->lit, cr->lit_len, cr->kind), cr->lit,
                                  cr->lit_len, cr->kind);
        k->idx[k->n_idx++] = (uint32_t)i;
    }
    return PT_OK;
}

/* ---- hosts ----------------------------------------------------------------------------- */

static uint64_t host_hash(const char *s, size_t n, uint16_t port, bool wild)
{
    uint64_t h = FNV_INIT;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, (unsigned char)s[i]);
    h ^= (uint64_t)port << 1 | wild;
    h *= FNV_PRIME;
    return h ^ (h >> 29);
}

static struct host_ent *host_slot(const struct pt_router *rt, const char *s, size_t n,
                                  uint16_t port, bool wild)
{
    size_t i = (size_t)host_hash(s, n, port, wild) & rt->table_mask;
    for (;;) {
        struct host_ent *h = &rt->table[i];
        if (!h->name ||
            (h->len == n && h->port == port && h->is_wild == wild && memcmp(h->name, s, n) == 0))
            return h;
        i = (i + 1) & rt->table_mask;
    }
}

static const struct pt_site *host_find(const struct pt_router *rt, const char *s, size_t n,
                                       uint16_t port, bool wild)
{
    if (!rt->table)
        return NULL;
    const struct host_ent *h = host_slot(rt, s, n, port, wild);
    return h->name ? h->site : NULL;
}

/* Parses "1".."65535"; false otherwise. */
static bool parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/*
 * Splits "name", "name:port", "[v6]", "[v6]:port" (and, in configuration entries, a bare
 * "v6" with several colons) into the name (brackets and one trailing dot removed) and the
 * port (0 when absent). Returns false when malformed.
 */
static bool split_host(const char *h, size_t n, bool bare_v6, const char **name, size_t *name_len,
                       uint16_t *port)
{
    *port = 0;
    const char *rest = NULL;
    size_t rest_len = 0;
    if (n > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        if (!rb)
            return false;
        *name = h + 1;
        *name_len = (size_t)(rb - h - 1);
        rest = rb + 1;
        rest_len = n - (size_t)(rest - h);
        if (rest_len > 0 && rest[0] != ':')
            return false;
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon && bare_v6 && memchr(colon + 1, ':', n - (size_t)(colon + 1 - h))) {
            colon = NULL; /* "::1": an IPv6 literal without brackets, so without a port */
        }
        *name = h;
        *name_len = colon ? (size_t)(colon - h) : n;
        rest = colon;
        rest_len = colon ? n - (size_t)(colon - h) : 0;
    }
    /* "host:" has an empty port (RFC 3986 §3.2.3 allows it): the same as none. */
    if (rest_len > 1 && !parse_port(rest + 1, rest_len - 1, port))
        return false;
    if (*name_len > 0 && (*name)[*name_len - 1] == '.')
        (*name_len)--;
    return *name_len > 0 && *name_len <= HOST_MAX;
}

static void add_host(struct pt_router *rt, struct errs *e, const struct pt_site *site,
                     const char *entry)
{
    const struct pt_site_cfg *sc = site->cfg;
    const char *name;
    size_t n;
    uint16_t port;
    if (!entry || !split_host(entry, strlen(entry), true, &name, &n, &port)) {
        add_err(e, sc->pos, "bad host \"%s\" (expected name, name:port, *.domain or [v6]:port)",
                entry ? entry : "");
        return;
    }
    bool wild = false;
    if (n >= 2 && name[0] == '*' && name[1] == '.') {
        wild = true;
        name++; /* stored as ".example.com" */
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '*' || c == '/' || c == ' ' || c < 0x20 || c == 0x7f || c == '[' || c == ']') {
            add_err(e, sc->pos, "bad host \"%s\" ('*' only as a leading \"*.\" label)", entry);
            return;
        }
    }
    char *low = pt_arena_strndup(&rt->arena, name, n);
    if (!low) {
        add_err(e, sc->pos, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (low[i] >= 'A' && low[i] <= 'Z')
            low[i] = (char)(low[i] - 'A' + 'a');
    struct host_ent *h = host_slot(rt, low, n, port, wild);
    if (h->name) {
        add_err(e, sc->pos, "host \"%s\" is listed twice (first at line %d)", entry,
                h->site->cfg->pos.line);
        return;
    }
    h->name = low;
    h->len = n;
    h->port = port;
    h->is_wild = wild;
    h->site = site;
}

/* ---- build and free -------------------------------------------------------------------- */

void pt_router_free(struct pt_router *rt)
{
    if (!rt)
        return;
    for (size_t s = 0; rt->sites && s < rt->n_sites; s++)
        for (size_t i = 0; i < rt->sites[s].n_routes; i++)
            pcre2_code_free(rt->sites[s].routes[i].re);
    pcre2_match_context_free(rt->mctx);
    pt_arena_free(&rt->arena);
    free(rt);
}

int pt_router_build(const struct pt_config *cfg, struct pt_router **out, char *err, size_t errlen)
{
    struct errs e = {.p = err, .cap = errlen, .file = cfg && cfg->path ? cfg->path : "config"};
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if (!cfg) {
        add_err(&e, (struct pt_cfg_pos){0, 0}, "no configuration");
        return PT_ERR;
    }
    struct pt_router *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        add_err(&e, (struct pt_cfg_pos){0, 0}, "out of memory");
        return PT_ERR;
    }
    pt_arena_init(&rt->arena, 4096);
    rt->cfg = cfg;
    rt->mctx = pcre2_match_context_create(NULL);
    if (!rt->mctx)
        goto oom;
    pcre2_set_match_limit(rt->mctx, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(rt->mctx, REGEX_DEPTH_LIMIT);

    size_t n_hosts = 0;
    for (size_t s = 0; s < cfg->n_sites; s++)
        n_hosts += cfg->sites[s].n_hosts;
    size_t tsize = 16;
    while (tsize < 2 * n_hosts + 2)
        tsize *= 2;
    rt->table = pt_arena_alloc(&rt->arena, tsize * sizeof(*rt->table));
    rt->table_mask = tsize - 1;
    rt->sites = pt_arena_alloc(&rt->arena, (cfg->n_sites + 1) * sizeof(*rt->sites));
    if (!rt->table || !rt->sites)
        goto oom;
    rt->n_sites = cfg->n_sites;

    for (size_t s = 0; s < cfg->n_sites; s++) {
        const struct pt_site_cfg *sc = &cfg->sites[s];
        struct pt_site *site = &rt->sites[s];
        site->cfg = sc;
        if (sc->n_hosts == 0) {
            if (rt->default_site)
                add_err(&e, sc->pos, "a second default site (no hosts); the first is at line %d",
                        rt->default_site->cfg->pos.line);
            else
                rt->default_site = site;
        }
        for (size_t h = 0; h < sc->n_hosts; h++)
            add_host(rt, &e, site, sc->hosts[h]);
        site->routes = pt_arena_alloc(&rt->arena, (sc->n_routes + 1) * sizeof(*site->routes));
        if (!site->routes)
            goto oom;
        for (size_t i = 0; i < sc->n_routes; i++) {
            const struct pt_route_cfg *r = &sc->routes[i];
            struct croute *cr = &site->routes[site->n_routes++];
            cr->cfg = r;
            if (compile_pattern(rt, &e, r, cr) != PT_OK)
                continue;
            if (r->nf)
                continue; /* Netlify templates may also use query placeholders */
            if (r->action == PT_ACTION_REDIRECT)
                check_template(&e, r, cr, "redirect to", r->redirect.to);
            else if (r->action == PT_ACTION_PROXY)
                check_template(&e, r, cr, "proxy path", r->proxy.to_path);
        }
        if (sc->n_routes >= UINT32_MAX) {
            add_err(&e, sc->pos, "more than %u routes in one site", (unsigned)UINT32_MAX - 1);
            continue;
        }
        if (!e.count && index_site(rt, site) != PT_OK)
            goto oom;
    }
    if (e.count)
        goto fail;
    *out = rt;
    return PT_OK;
oom:
    add_err(&e, (struct pt_cfg_pos){0, 0}, "out of memory building the router");
fail:
    pt_router_free(rt);
    return PT_ERR;
}

/* ---- site selection -------------------------------------------------------------------- */

const struct pt_site *pt_router_site(const struct pt_router *rt, const char *host, size_t len)
{
    if (!rt)
        return NULL;
    const char *name;
    size_t n;
    uint16_t port;
    if (!host || !split_host(host, len, false, &name, &n, &port))
        return rt->default_site;
    char low[HOST_MAX] = {0};
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        low[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    const struct pt_site *site = NULL;
    if (port && (site = host_find(rt, low, n, port, false)))
        return site;
    if ((site = host_find(rt, low, n, 0, false)))
        return site;
    /* Wildcards: the suffix after each '.' that has a non-empty label before it, leftmost
     * (longest) first, so "*.b.example.com" beats "*.example.com" for "a.b.example.com". */
    for (size_t i = 1; i < n; i++) {
        if (low[i] != '.')
            continue;
        if (port && (site = host_find(rt, low + i, n - i, port, true)))
            return site;
        if ((site = host_find(rt, low + i, n - i, 0, true)))
            return site;
    }
    return rt->default_site;
}

const struct pt_site_cfg *pt_router_site_cfg(const struct pt_site *site)
{
    return site ? site->cfg : NULL;
}

/* ---- matching -------------------------------------------------------------------------- */

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pthread_key_t md_key;
static bool md_key_ok;
static _Thread_local pcre2_match_data *tl_md;

static void md_destroy(void *md)
{
    pcre2_match_data_free(md);
}

static void md_key_init(void)
{
    md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

/* This thread's match data, created on first use; NULL when out of memory. */
static pcre2_match_data *thread_match_data(void)
{
    if (PT_LIKELY(tl_md != NULL))
        return tl_md;
    pthread_once(&md_once, md_key_init);
    pcre2_match_data *md = pcre2_match_data_create(PT_ROUTE_MAX_CAPTURES, NULL);
    if (!md)
        return NULL;
    if (md_key_ok)
        (void)pthread_setspecific(md_key, md);
    tl_md = md;
    return md;
}

static bool match_regex(const struct pt_router *rt, const struct croute *cr, const char *path,
                        size_t len, struct pt_route_match *m)
{
    pcre2_match_data *md = thread_match_data();
    if (!md)
        return false;
    int rc = pcre2_match(cr->re, (PCRE2_SPTR)path, len, 0, 0, md, rt->mctx);
    if (rc < 0)
        return false; /* no match, or a limit hit: treated as no match */
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t n = PT_MIN((size_t)cr->n_groups + 1, (size_t)PT_ROUTE_MAX_CAPTURES);
    /* rc == 0: more groups than the ovector holds; all of its pairs are filled. */
    size_t set = rc == 0 ? n : PT_MIN(n, (size_t)rc);
    for (size_t k = 0; k < n; k++) {
        PCRE2_SIZE a = ov[2 * k], b = ov[2 * k + 1];
        if (k < set && a != PCRE2_UNSET && a <= b && b <= len)
            m->captures[k] = (struct pt_str){path + a, b - a};
        else
            m->captures[k] = (struct pt_str){path, 0};
    }
    m->n_captures = n;
    return true;
}

static bool match_params(const struct croute *cr, const char *path, size_t len,
                         struct pt_route_match *m)
{
    size_t i = 0; /* at a '/' */
    for (size_t k = 0; k < cr->n_segs; k++) {
        const struct pat_seg *s = &cr->segs[k];
        if (i >= len || path[i] != '/')
            return false;
        size_t a = ++i;
        const char *slash = memchr(path + a, '/', len - a);
        size_t b = slash ? (size_t)(slash - path) : len;
        if (s->is_param) {
            if (b == a)
                return false;
            m->param_names[m->n_params] = (struct pt_str){s->s, s->n};
            m->param_values[m->n_params++] = (struct pt_str){path + a, b - a};
        } else if (b - a != s->n || memcmp(path + a, s->s, s->n) != 0) {
            return false;
        }
        i = b;
    }
    if (i == len) {
        if (cr->has_splat)
            m->strip_len = i;
        return true;
    }
    if (!cr->has_splat || path[i] != '/')
        return false;
    m->strip_len = i;
    m->splat = (struct pt_str){path + i + 1, len - i - 1};
    return true;
}

static bool match_kind(const struct pt_router *rt, const struct croute *cr, const char *path,
                       size_t len, struct pt_route_match *m)
{
    m->splat = (struct pt_str){path, 0};
    m->n_params = 0;
    m->n_captures = 0;
    m->strip_len = 0;
    switch (cr->kind) {
    case PAT_EXACT:
        return len == cr->lit_len && memcmp(path, cr->lit, len) == 0;
    case PAT_PREFIX:
        if (len < cr->lit_len || memcmp(path, cr->lit, cr->lit_len) != 0)
            return false;
        if (cr->is_plain) {
            size_t k = cr->lit_len + (len > cr->lit_len && path[cr->lit_len] == '/');
            m->strip_len = cr->lit_len;
            m->splat = (struct pt_str){path + k, len - k};
            return true;
        }
        if (len == cr->lit_len) {
            m->strip_len = len;
            return true;
        }
        if (path[cr->lit_len] != '/')
            return false;
        m->strip_len = cr->lit_len;
        m->splat = (struct pt_str){path + cr->lit_len + 1, len - cr->lit_len - 1};
        return true;
    case PAT_SUFFIX:
        if (len < cr->lit_len || memcmp(path + len - cr->lit_len, cr->lit, cr->lit_len) != 0)
            return false;
        m->splat = (struct pt_str){path, len - cr->lit_len};
        return true;
    case PAT_PARAMS:
        return match_params(cr, path, len, m);
    case PAT_REGEX:
        return match_regex(rt, cr, path, len, m);
    default:
        return false;
    }
}

static bool match_pattern(const struct pt_router *rt, const struct croute *cr, const char *path,
                          size_t len, struct pt_route_match *m)
{
    if (match_kind(rt, cr, path, len, m))
        return true;
    /* Netlify rules ignore a trailing slash: "/about" (stored without one) takes "/about/". */
    return cr->cfg->nf && len > 1 && path[len - 1] == '/' &&
           (cr->kind == PAT_EXACT || (cr->kind == PAT_PARAMS && !cr->has_splat)) &&
           match_kind(rt, cr, path, len - 1, m);
}

/* RFC 9110 §9.3.2: HEAD is answered wherever GET is, so a GET route takes HEAD too. */
static bool method_ok(const struct pt_route_cfg *r, int method, struct pt_str tok)
{
    bool has_other = r->methods_other && r->methods_other[0];
    if (r->methods_mask == 0 && !has_other)
        return true;
    if (method > PT_METHOD_OTHER && method < PT_METHOD__COUNT) {
        if (r->methods_mask & (1u << method))
            return true;
        return method == PT_METHOD_HEAD && (r->methods_mask & (1u << PT_METHOD_GET));
    }
    for (size_t i = 0; has_other && r->methods_other[i]; i++)
        if (pt_str_eq(tok, r->methods_other[i], strlen(r->methods_other[i])))
            return true;
    return false;
}

const struct pt_route_cfg *pt_router_match(const struct pt_router *rt, const struct pt_site *site,
                                           int method, struct pt_str method_tok, const char *path,
                                           size_t path_len, struct pt_route_match *m,
                                           int *method_mismatch)
{
    size_t at = 0;
    return pt_router_match_from(rt, site, method, method_tok, path, path_len, m, method_mismatch,
                                &at);
}

/* A sorted list of candidate route numbers, consumed from the front. */
struct source {
    const uint32_t *p;
    const uint32_t *end;
};

/* Adds the part of idx[0..n) at or after route number from to the sources; false when full. */
static bool add_source(struct source *src, size_t *n_src, const uint32_t *idx, size_t n,
                       size_t from)
{
    size_t lo = 0, hi = n; /* first element >= from */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx[mid] < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n)
        return true;
    if (*n_src == MAX_SOURCES)
        return false;
    src[(*n_src)++] = (struct source){idx + lo, idx + n};
    return true;
}

static bool add_key(const struct pt_site *site, struct source *src, size_t *n_src, uint64_t h,
                    const char *s, size_t n, int kind, size_t from)
{
    const struct rkey *k = key_slot(site, h, s, n, kind);
    return !k->s || add_source(src, n_src, k->idx, k->n_idx, from);
}

/*
 * Gathers every route at or after from whose pattern could match path: the exact routes for
 * the path (and, for Netlify's trailing slash, for the path without it), the prefix routes for
 * each of the path's leading segment runs ("", "/a", "/a/b", ... and the whole path), the
 * suffix routes for each suffix length in use, and the unindexed others. A candidate is only a
 * candidate: match_pattern decides. Returns false when the lists do not fit in src.
 */
static bool gather(const struct pt_site *site, const char *path, size_t len, size_t from,
                   struct source *src, size_t *n_src)
{
    *n_src = 0;
    if (!add_source(src, n_src, site->others, site->n_others, from))
        return false;
    if (!site->keys)
        return true;
    if (lens_has(site->exact_lens, len) &&
        !add_key(site, src, n_src, key_hash(path, len, PAT_EXACT), path, len, PAT_EXACT, from))
        return false;
    if (len > 1 && path[len - 1] == '/' && lens_has(site->exact_lens, len - 1) &&
        !add_key(site, src, n_src, key_hash(path, len - 1, PAT_EXACT), path, len - 1, PAT_EXACT,
                 from))
        return false;
    if (site->prefix_lens[0] | site->prefix_lens[1] | site->prefix_lens[2] | site->prefix_lens[3]) {
        uint64_t h = FNV_INIT;
        for (size_t i = 0; i <= len; i++) {
            if ((i == len || path[i] == '/') && lens_has(site->prefix_lens, i) &&
                !add_key(site, src, n_src, key_final(h, PAT_PREFIX), path, i, PAT_PREFIX, from))
                return false;
            if (i < len)
                h = fnv_step(h, (unsigned char)path[i]);
        }
    }
    for (size_t l = 0; l < site->n_suffix_lens && site->suffix_lens[l] <= len; l++) {
        size_t n = site->suffix_lens[l];
        const char *s = path + len - n;
        if (!add_key(site, src, n_src, key_hash(s, n, PAT_SUFFIX), s, n, PAT_SUFFIX, from))
            return false;
    }
    return true;
}

/* Tries route i: true when it is the answer; notes a pattern match refused by its methods. */
static bool try_route(const struct pt_router *rt, const struct croute *cr, int method,
                      struct pt_str method_tok, const char *path, size_t path_len,
                      struct pt_route_match *m, int *method_mismatch)
{
    if (!match_pattern(rt, cr, path, path_len, m))
        return false;
    if (!method_ok(cr->cfg, method, method_tok)) {
        if (method_mismatch)
            *method_mismatch = 1;
        return false;
    }
    m->route = cr->cfg;
    return true;
}

const struct pt_route_cfg *pt_router_match_from(const struct pt_router *rt,
                                                const struct pt_site *site, int method,
                                                struct pt_str method_tok, const char *path,
                                                size_t path_len, struct pt_route_match *m,
                                                int *method_mismatch, size_t *at)
{
    if (method_mismatch)
        *method_mismatch = 0;
    m->route = NULL;
    if (!rt || !site || path_len == 0)
        return NULL;
    struct source src[MAX_SOURCES];
    size_t n_src = 0;
    if (site->n_routes > LINEAR_MAX && gather(site, path, path_len, *at, src, &n_src)) {
        /* Merge the sorted lists: candidates are tried in configuration order, as the plain
           scan below would meet them, so the first match and the 405 signal are the same. */
        for (;;) {
            size_t best = SIZE_MAX, bk = 0;
            for (size_t k = 0; k < n_src; k++) {
                if (src[k].p < src[k].end && *src[k].p < best) {
                    best = *src[k].p;
                    bk = k;
                }
            }
            if (best == SIZE_MAX)
                break;
            src[bk].p++;
            if (try_route(rt, &site->routes[best], method, method_tok, path, path_len, m,
                          method_mismatch)) {
                *at = best;
                return m->route;
            }
        }
    } else {
        for (size_t i = *at; i < site->n_routes; i++) {
            if (try_route(rt, &site->routes[i], method, method_tok, path, path_len, m,
                          method_mismatch)) {
                *at = i;
                return m->route;
            }
        }
    }
    *at = site->n_routes;
    m->splat = (struct pt_str){path, 0};
    m->n_params = 0;
    m->n_captures = 0;
    m->strip_len = 0;
    return NULL;
}

/* ---- templates ------------------------------------------------------------------------- */

static bool put_raw(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    if (n >= outlen - *o)
        return false;
    memcpy(out + *o, s, n);
    *o += n;
    return true;
}

static bool put_value(char *out, size_t outlen, size_t *o, struct pt_str v)
{
    ssize_t w = pt_path_encode(v.p, v.n, out + *o, outlen - *o);
    if (w < 0)
        return false;
    *o += (size_t)w;
    return true;
}

ssize_t pt_route_expand(const char *tmpl, const struct pt_route_match *m, char *out, size_t outlen)
{
    if (outlen == 0)
        return -1;
    size_t o = 0;
    size_t i = 0;
    while (tmpl[i]) {
        if (tmpl[i] == ':' && is_name_start((unsigned char)tmpl[i + 1])) {
            size_t j = i + 1;
            while (is_name_char((unsigned char)tmpl[j]))
                j++;
            const char *name = tmpl + i + 1;
            size_t n = j - i - 1;
            bool done = false;
            for (size_t k = 0; k < m->n_params && !done; k++) {
                if (pt_str_eq(m->param_names[k], name, n)) {
                    if (!put_value(out, outlen, &o, m->param_values[k]))
                        return -1;
                    done = true;
                }
            }
            if (!done && n == 5 && memcmp(name, "splat", 5) == 0 && m->splat.p) {
                if (!put_value(out, outlen, &o, m->splat))
                    return -1;
                done = true;
            }
            if (!done && !put_raw(out, outlen, &o, tmpl + i, j - i))
                return -1;
            i = j;
        } else if (tmpl[i] == '$' && tmpl[i + 1] >= '0' && tmpl[i + 1] <= '9') {
            size_t k = (size_t)(tmpl[i + 1] - '0');
            if (k < m->n_captures) {
                if (!put_value(out, outlen, &o, m->captures[k]))
                    return -1;
            } else if (!put_raw(out, outlen, &o, tmpl + i, 2)) {
                return -1;
            }
            i += 2;
        } else {
            size_t j = i + 1;
            while (tmpl[j] && tmpl[j] != ':' && tmpl[j] != '$')
                j++;
            if (!put_raw(out, outlen, &o, tmpl + i, j - i))
                return -1;
            i = j;
        }
    }
    out[o] = '\0';
    return (ssize_t)o;
}

int pt_route_pattern_check(const char *pattern, char *msg, size_t cap)
{
    static const int kinds[] = {
        [PAT_EXACT] = PT_ROUTE_PAT_EXACT,   [PAT_PREFIX] = PT_ROUTE_PAT_PREFIX,
        [PAT_SUFFIX] = PT_ROUTE_PAT_SUFFIX, [PAT_PARAMS] = PT_ROUTE_PAT_PARAMS,
        [PAT_REGEX] = PT_ROUTE_PAT_REGEX,
    };
    struct errs e = {.p = msg, .cap = cap, .file = NULL};
    struct pt_router rt;
    memset(&rt, 0, sizeof(rt));
    pt_arena_init(&rt.arena, 1024);
    struct pt_route_cfg r;
    memset(&r, 0, sizeof(r));
    r.match = pattern;
    struct croute cr;
    memset(&cr, 0, sizeof(cr));
    cr.cfg = &r;
    if (cap)
        msg[0] = '\0';
    int rc = compile_pattern(&rt, &e, &r, &cr);
    if (cr.re)
        pcre2_code_free(cr.re);
    pt_arena_free(&rt.arena);
    return rc == PT_OK ? kinds[cr.kind] : -1;
}
