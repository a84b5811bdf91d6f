/*
 * policy.c - RFC 9111 (a shared cache), RFC 5861 and RFC 9110 §13 as pure functions.
 *
 * Nothing here keeps state, allocates, reads a clock or does I/O: each function reads the
 * header fields it is given (slices borrowed for the call) and the times the caller measured,
 * and returns a decision. So every rule is unit-tested on its own (tests/unit/
 * test_cache_policy.c) and the two parsers that see attacker bytes, Cache-Control and Vary,
 * are fuzzed (tests/fuzz/fuzz_cache_control.c, fuzz_vary.c). docs/internals/cache.md says
 * which RFC rule each decision follows and where the code chose between readings.
 *
 * Cache-Control is read in one pass per field line: a directive is a name, optionally "=" and
 * a token or a quoted string (whose commas do not split the list). A directive that breaks
 * the grammar is read the safe way: a restricting one (no-store, no-cache, private,
 * must-revalidate...) still restricts, a permitting one (public, max-stale, stale-*) is
 * dropped, and a max-age or s-maxage that cannot be used marks the response stale
 * (RFC 9111 §4.2.1, §1.2.2).
 *
 * Vary keys are built on the stack: each selected field's value is cut into its list
 * elements, normalised and (for the content-negotiation fields) sorted, in a fixed buffer;
 * too many elements or bytes, or a control byte (which no valid field holds, and which could
 * make two keys collide), is a key that cannot be made (-1), which the caller treats as "do
 * not store", never as a truncated key.
 */
#include "cache/policy.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/date.h"
#include "http/etag.h"
#include "http/h1_parse.h"

#define DELTA_MAX ((int64_t)1 << 31) /* RFC 9111 §1.2.2: larger delta-seconds are 2^31 */
#define HEURISTIC_MAX_DEFAULT 86400  /* a heuristic lifetime's cap when the route sets none */

#define VARY_NAMES_MAX 32    /* field names one Vary may select */
#define VARY_ELEMS_MAX 64    /* list elements of one selected field */
#define VARY_VALUE_MAX 4096u /* bytes of one selected field, normalised */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A control byte other than HTAB: never part of a field value. */
static bool is_ctl(char c)
{
    return ((unsigned char)c < 0x20 && c != '\t') || c == 0x7f;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

struct pt_str pt_cache_field(const struct pt_field *f, size_t n, const char *name, size_t nlen)
{
    for (size_t i = 0; i < n; i++)
        if (pt_str_caseeq(f[i].name, name, nlen))
            return f[i].value;
    return (struct pt_str){NULL, 0};
}

/* delta-seconds (RFC 9111 §1.2.2): 1*DIGIT, saturating at 2^31. False when v is empty or holds
   anything but digits. */
static bool read_delta(struct pt_str v, int64_t *out)
{
    if (v.n == 0)
        return false;
    int64_t x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        if (x < DELTA_MAX)
            x = x * 10 + (v.p[i] - '0');
    }
    *out = x < DELTA_MAX ? x : DELTA_MAX;
    return true;
}

/* An Age value: the first element of the first line, less any parameters ("7200, 0" and
   "7200;x=1" are 7200); digits only, else it is ignored ("7200.0", "-1", "abc"). */
static bool read_age(struct pt_str v, int64_t *out)
{
    if (!v.p)
        return false;
    const char *p = v.p, *end = v.p + v.n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    const char *e = p;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && *p != ',' && *p != ';')
        return false;
    return read_delta((struct pt_str){s, (size_t)(e - s)}, out);
}

/* max-age and s-maxage: an unusable value, or a second one that differs from the first,
   makes the response stale (§4.2.1: "considered stale" is the choice we make for conflicts). */
static void set_age(struct pt_cc *cc, uint32_t flag, int64_t *slot, bool ok, struct pt_str v)
{
    int64_t x;
    if (!ok || !read_delta(v, &x)) {
        cc->flags |= PT_CC_INVALID_AGE;
        return;
    }
    if (cc->flags & flag) {
        if (*slot != x)
            cc->flags |= PT_CC_INVALID_AGE;
        return;
    }
    cc->flags |= flag;
    *slot = x;
}

/* A permitting delta (min-fresh, stale-while-revalidate, stale-if-error): dropped when
   unusable; of two, the smaller (the stricter) wins. */
static void set_delta(struct pt_cc *cc, uint32_t flag, int64_t *slot, bool ok, struct pt_str v)
{
    int64_t x;
    if (!ok || !read_delta(v, &x))
        return;
    if (!(cc->flags & flag) || x < *slot)
        *slot = x;
    cc->flags |= flag;
}

#define NAME_IS(nm, lit) pt_str_caseeq((nm), (lit), sizeof(lit) - 1)

/* One directive. ok: it followed the grammar; has_val: it had "=value" (v, unquoted). */
static void apply(struct pt_cc *cc, struct pt_str nm, bool ok, bool has_val, struct pt_str v)
{
    static const struct {
        const char *name;
        uint32_t flag;
        bool restricts; /* applied even when malformed */
    } bare[] = {
        {"no-store", PT_CC_NO_STORE, true},
        {"no-cache", PT_CC_NO_CACHE, true},
        {"private", PT_CC_PRIVATE, true},
        {"must-revalidate", PT_CC_MUST_REVALIDATE, true},
        {"proxy-revalidate", PT_CC_PROXY_REVALIDATE, true},
        {"no-transform", PT_CC_NO_TRANSFORM, true},
        {"only-if-cached", PT_CC_ONLY_IF_CACHED, true},
        {"public", PT_CC_PUBLIC, false},
        {"immutable", PT_CC_IMMUTABLE, false},
        {"must-understand", PT_CC_MUST_UNDERSTAND, false},
    };
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
        if (pt_str_caseeq(nm, bare[i].name, strlen(bare[i].name))) {
            /* no-cache="f" and private="f" (qualified) count as unqualified */
            if (bare[i].restricts || ok)
                cc->flags |= bare[i].flag;
            return;
        }
    }
    if (NAME_IS(nm, "max-age")) {
        set_age(cc, PT_CC_MAX_AGE, &cc->max_age, ok && has_val, v);
    } else if (NAME_IS(nm, "s-maxage")) {
        set_age(cc, PT_CC_S_MAXAGE, &cc->s_maxage, ok && has_val, v);
    } else if (NAME_IS(nm, "max-stale")) {
        if (ok && !has_val) {
            if (!(cc->flags & PT_CC_MAX_STALE))
                cc->max_stale = INT64_MAX;
            cc->flags |= PT_CC_MAX_STALE;
        } else {
            set_delta(cc, PT_CC_MAX_STALE, &cc->max_stale, ok, v);
        }
    } else if (NAME_IS(nm, "min-fresh")) {
        /* of two, the larger is the stricter */
        int64_t x;
        if (ok && has_val && read_delta(v, &x)) {
            if (!(cc->flags & PT_CC_MIN_FRESH) || x > cc->min_fresh)
                cc->min_fresh = x;
            cc->flags |= PT_CC_MIN_FRESH;
        }
    } else if (NAME_IS(nm, "stale-while-revalidate")) {
        set_delta(cc, PT_CC_SWR, &cc->swr, ok && has_val, v);
    } else if (NAME_IS(nm, "stale-if-error")) {
        set_delta(cc, PT_CC_SIE, &cc->sie, ok && has_val, v);
    }
}

/* Skips a quoted string whose opening quote is at *p; false when it is not closed. */
static bool skip_quoted(const char **pp, const char *end)
{
    const char *p = *pp + 1;
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end)
            p++;
        p++;
    }
    *pp = p < end ? p + 1 : end;
    return p < end;
}

/* Skips to the next ',' that is outside a quoted string. */
static const char *to_comma(const char *p, const char *end)
{
    while (p < end && *p != ',') {
        if (*p == '"')
            skip_quoted(&p, end);
        else
            p++;
    }
    return p;
}

static void parse_line(struct pt_cc *cc, const char *p, const char *end)
{
    for (;;) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        if (p == end)
            return;
        const char *ns = p;
        while (p < end && *p != ',' && *p != '=' && *p != '"' && !is_ows(*p))
            p++;
        struct pt_str nm = {ns, (size_t)(p - ns)}, v = {NULL, 0};
        bool ok = nm.n > 0, has_val = false;
        if (p < end && *p == '=') {
            p++;
            has_val = true;
            const char *vs = p;
            if (p < end && *p == '"') {
                bool closed = skip_quoted(&p, end);
                v = (struct pt_str){vs + 1, (size_t)(p - vs) - (closed ? 2 : 1)};
                ok = ok && closed;
            } else {
                while (p < end && *p != ',' && !is_ows(*p) && *p != '"')
                    p++;
                v = (struct pt_str){vs, (size_t)(p - vs)};
            }
        }
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ',') {
            ok = false; /* "max-age =60", "max-age=6 0", 'max-age="6"x' */
            p = to_comma(p, end);
        }
        apply(cc, nm, ok, has_val, v);
    }
}

/* Whether the comma list v holds the token tok (ASCII case-insensitive). */
static bool list_has(struct pt_str v, const char *tok, size_t tn)
{
    const char *p = v.p, *end = v.p + v.n;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',' && *p != ';' && *p != '=' && !is_ows(*p))
            p++;
        if (pt_str_caseeq((struct pt_str){s, (size_t)(p - s)}, tok, tn))
            return true;
        p = to_comma(p, end);
    }
    return false;
}

/* Whether v is a Structured Field Dictionary (RFC 8941 §3.2) whose members are what RFC 9213
   allows: lower-case keys, integer values for the delta-seconds directives, and bare items
   (token, integer, string, boolean) with parameters elsewhere. An invalid field is ignored
   whole (RFC 9213 §2.1). */
static bool sf_key_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || c == '*' ||
           (!first && ((c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'));
}

static const char *sf_item(const char *p, const char *end, bool want_int)
{
    if (p < end && (*p == '-' || (*p >= '0' && *p <= '9'))) {
        if (*p == '-')
            p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d || p - d > 15)
            return NULL;
        if (p < end && *p == '.') { /* a decimal: never where an integer is wanted */
            const char *f = ++p;
            while (p < end && *p >= '0' && *p <= '9')
                p++;
            return want_int || p == f || p - f > 3 ? NULL : p;
        }
        return p;
    }
    if (want_int)
        return NULL;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++)
            if (*p == '\\' && ++p == end)
                return NULL;
        return p < end ? p + 1 : NULL;
    }
    if (p + 1 < end && *p == '?' && (p[1] == '0' || p[1] == '1'))
        return p + 2;
    if (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '*')) {
        while (p < end && (*p > ' ' && *p < 127 && *p != ',' && *p != ';' && *p != '"' &&
                           *p != '(' && *p != ')' && *p != '=' && *p != '\\'))
            p++;
        return p;
    }
    return NULL;
}

static bool sf_dictionary_ok(struct pt_str v)
{
    const char *p = v.p, *end = v.p + v.n;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *k = p;
        while (p < end && sf_key_char(*p, p == k))
            p++;
        if (p == k)
            return false;
        size_t kn = (size_t)(p - k);
        bool delta = (kn == 7 && memcmp(k, "max-age", 7) == 0) ||
                     (kn == 8 && memcmp(k, "s-maxage", 8) == 0) ||
                     (kn == 22 && memcmp(k, "stale-while-revalidate", 22) == 0) ||
                     (kn == 14 && memcmp(k, "stale-if-error", 14) == 0);
        if (p < end && *p == '=') {
            p = sf_item(p + 1, end, delta);
            if (!p)
                return false;
        } else if (delta) {
            return false;
        }
        while (p < end && *p == ';') { /* parameters */
            const char *pk = ++p;
            while (p < end && sf_key_char(*p, p == pk))
                p++;
            if (p == pk)
                return false;
            if (p < end && *p == '=' && !(p = sf_item(p + 1, end, false)))
                return false;
        }
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            return true;
        if (*p != ',')
            return false;
        p++;
    }
}

void pt_cc_parse_targeted(struct pt_cc *cc, const struct pt_field *f, size_t n)
{
    memset(cc, 0, sizeof(*cc));
    for (size_t i = 0; i < n; i++)
        if (PT_STR_CASEEQ_LIT(f[i].name, "cdn-cache-control"))
            parse_line(cc, f[i].value.p, f[i].value.p + f[i].value.n);
}

void pt_cc_parse(struct pt_cc *cc, const struct pt_field *f, size_t n)
{
    memset(cc, 0, sizeof(*cc));
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        if (!PT_STR_CASEEQ_LIT(f[i].name, "cache-control"))
            continue;
        seen = true;
        parse_line(cc, f[i].value.p, f[i].value.p + f[i].value.n);
    }
    if (seen)
        return;
    /* RFC 9111 §5.4: without Cache-Control, a request's Pragma: no-cache is no-cache */
    for (size_t i = 0; i < n; i++)
        if (PT_STR_CASEEQ_LIT(f[i].name, "pragma") && list_has(f[i].value, "no-cache", 8))
            cc->flags |= PT_CC_PRAGMA_NO_CACHE;
}

/* ---- storing and freshness ---- */

static bool status_in(int status, const int16_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == status)
            return true;
    return false;
}

/* §3: the statuses this cache understands (may store, with a freshness source). */
static const int16_t understood[] = {200, 203, 204, 300, 301, 302, 303, 307, 308, 404,
                                     405, 410, 414, 451, 500, 501, 502, 503, 504};
/* RFC 9110 §15.1: heuristically cacheable statuses. */
static const int16_t heuristic_ok[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};

bool pt_cache_status_understood(int status)
{
    return status_in(status, understood, sizeof(understood) / sizeof(understood[0]));
}

bool pt_cache_status_heuristic(int status)
{
    return status_in(status, heuristic_ok, sizeof(heuristic_ok) / sizeof(heuristic_ok[0]));
}

/* The first field named name as an HTTP-date; false when absent or invalid. */
static bool field_date(const struct pt_field *f, size_t n, const char *name, size_t nlen,
                       int64_t *out)
{
    struct pt_str v = pt_cache_field(f, n, name, nlen);
    time_t t;
    if (!v.p || pt_http_date_parse(v.p, v.n, &t) != 0)
        return false;
    *out = (int64_t)t;
    return true;
}

#define FIELD(f, n, lit) pt_cache_field((f), (n), (lit), sizeof(lit) - 1)

/* Expires - Date (§4.2.1): an Expires that is not a valid date ("0"), or two Expires lines
   that disagree, is a time in the past. */
static int64_t expires_lifetime(const struct pt_field *f, size_t n, int64_t date)
{
    struct pt_str first = {NULL, 0};
    for (size_t i = 0; i < n; i++) {
        if (!PT_STR_CASEEQ_LIT(f[i].name, "expires"))
            continue;
        if (!first.p)
            first = f[i].value;
        else if (first.n != f[i].value.n || memcmp(first.p, f[i].value.p, first.n) != 0)
            return 0;
    }
    time_t t;
    if (pt_http_date_parse(first.p, first.n, &t) != 0)
        return 0;
    return (int64_t)t > date ? (int64_t)t - date : 0;
}

static bool has_field(const struct pt_field *f, size_t n, const char *name, size_t nlen)
{
    return pt_cache_field(f, n, name, nlen).p != NULL;
}

static bool vary_star(const struct pt_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (PT_STR_CASEEQ_LIT(f[i].name, "vary") && list_has(f[i].value, "*", 1))
            return true;
    return false;
}

/*
 * The freshness lifetime (§4.2.1, §4.2.2, the route's overrides) into m->lifetime; false when
 * nothing gives the response one (no explicit freshness, not heuristically cacheable).
 */
static bool lifetime(const struct pt_cc *cc, int status, const struct pt_field *rf, size_t rn,
                     const struct pt_cache_rules *rules, struct pt_cache_meta *m, bool use_expires)
{
    for (size_t i = 0; rules && i < rules->n_ttl; i++) {
        if (rules->ttl_status[i] == status) {
            m->lifetime = rules->ttl_s[i] > 0 ? rules->ttl_s[i] : 0;
            return true;
        }
    }
    if (cc->flags & PT_CC_INVALID_AGE) {
        m->lifetime = 0;
        return true;
    }
    if (cc->flags & PT_CC_S_MAXAGE) {
        m->lifetime = cc->s_maxage;
        return true;
    }
    if (cc->flags & PT_CC_MAX_AGE) {
        m->lifetime = cc->max_age;
        return true;
    }
    if (use_expires && has_field(rf, rn, "expires", 7)) {
        m->lifetime = expires_lifetime(rf, rn, m->date);
        return true;
    }
    if (!pt_cache_status_heuristic(status) && !(cc->flags & PT_CC_PUBLIC))
        return false;
    int64_t h = 0;
    if (m->last_modified >= 0 && m->last_modified < m->date) {
        int64_t cap =
            rules && rules->heuristic_max_s > 0 ? rules->heuristic_max_s : HEURISTIC_MAX_DEFAULT;
        h = (m->date - m->last_modified) / 10;
        if (h > cap)
            h = cap;
    }
    if (h == 0 && rules && rules->default_ttl_s > 0)
        h = rules->default_ttl_s;
    m->lifetime = h;
    /* a lifetime of 0 with no validator and no stale window can never be reused */
    return h > 0 || m->has_validator || m->swr > 0 || m->sie > 0;
}

enum pt_store_verdict pt_cache_storable(int method_id, bool req_has_auth,
                                        const struct pt_cc *req_cc, int status,
                                        const struct pt_field *rf, size_t rn, int64_t req_time,
                                        int64_t resp_time, const struct pt_cache_rules *rules,
                                        struct pt_cache_meta *m)
{
    /* RFC 9213: a CDN-Cache-Control field is the directives for this cache, in place of
       Cache-Control (and Expires). */
    struct pt_cc cc;
    bool targeted = false;
    for (size_t i = 0; i < rn; i++)
        if (PT_STR_CASEEQ_LIT(rf[i].name, "cdn-cache-control")) {
            targeted = sf_dictionary_ok(rf[i].value);
            if (!targeted)
                break;
        }
    if (targeted)
        pt_cc_parse_targeted(&cc, rf, rn);
    else
        pt_cc_parse(&cc, rf, rn);
    memset(m, 0, sizeof(*m));
    m->status = (int16_t)(status >= 0 && status < 1000 ? status : 0);
    m->cc_flags = cc.flags & ~(uint32_t)PT_CC_PRAGMA_NO_CACHE; /* Pragma means nothing here */
    m->req_time = req_time;
    m->resp_time = resp_time >= req_time ? resp_time : req_time;
    if (!field_date(rf, rn, "date", 4, &m->date))
        m->date = m->resp_time;
    if (!read_age(FIELD(rf, rn, "age"), &m->age))
        m->age = 0;
    if (!field_date(rf, rn, "last-modified", 13, &m->last_modified))
        m->last_modified = -1;
    m->has_validator = m->last_modified >= 0 || has_field(rf, rn, "etag", 4);
    m->swr = cc.flags & PT_CC_SWR ? cc.swr : -1;
    m->sie = cc.flags & PT_CC_SIE ? cc.sie : -1;
    bool fresh_source = lifetime(&cc, status, rf, rn, rules, m, !targeted);

    if (method_id != PT_METHOD_GET)
        return PT_STORE_METHOD;
    if (status == 206 || has_field(rf, rn, "content-range", 13))
        return PT_STORE_PARTIAL;
    if (!pt_cache_status_understood(status))
        return cc.flags & PT_CC_MUST_UNDERSTAND ? PT_STORE_MUST_UNDERSTAND : PT_STORE_STATUS;
    if (req_cc && (req_cc->flags & PT_CC_NO_STORE))
        return PT_STORE_NO_STORE;
    /* §5.2.2.3: must-understand on an understood status overrides no-store */
    if ((cc.flags & PT_CC_NO_STORE) && !(cc.flags & PT_CC_MUST_UNDERSTAND))
        return PT_STORE_NO_STORE;
    if (cc.flags & PT_CC_PRIVATE)
        return PT_STORE_PRIVATE;
    if (req_has_auth &&
        !(cc.flags & (PT_CC_S_MAXAGE | PT_CC_MUST_REVALIDATE | PT_CC_PUBLIC))) /* §3.5 */
        return PT_STORE_AUTH;
    if (!(rules && rules->store_set_cookie) && has_field(rf, rn, "set-cookie", 10))
        return PT_STORE_SET_COOKIE;
    if (vary_star(rf, rn))
        return PT_STORE_VARY_STAR;
    if (!fresh_source)
        return PT_STORE_NO_FRESHNESS;
    return PT_STORE_OK;
}

const char *pt_cache_verdict_name(enum pt_store_verdict v)
{
    switch (v) {
    case PT_STORE_OK:
        return "ok";
    case PT_STORE_METHOD:
        return "method";
    case PT_STORE_STATUS:
        return "status";
    case PT_STORE_NO_STORE:
        return "no-store";
    case PT_STORE_PRIVATE:
        return "private";
    case PT_STORE_AUTH:
        return "authorization";
    case PT_STORE_SET_COOKIE:
        return "set-cookie";
    case PT_STORE_NO_FRESHNESS:
        return "no-freshness";
    case PT_STORE_VARY_STAR:
        return "vary-star";
    case PT_STORE_PARTIAL:
        return "partial";
    case PT_STORE_MUST_UNDERSTAND:
        return "must-understand";
    }
    return "unknown";
}

int64_t pt_cache_age(const struct pt_cache_meta *m, int64_t now)
{
    /* §4.2.3, each term kept >= 0 (clocks may disagree) */
    int64_t apparent = m->resp_time > m->date ? m->resp_time - m->date : 0;
    int64_t delay = m->resp_time > m->req_time ? m->resp_time - m->req_time : 0;
    int64_t corrected_age = (m->age > 0 ? m->age : 0) + delay;
    int64_t initial = apparent > corrected_age ? apparent : corrected_age;
    int64_t resident = now > m->resp_time ? now - m->resp_time : 0;
    return initial + resident;
}

enum pt_reuse pt_cache_reuse(const struct pt_cache_meta *m, const struct pt_cc *req_cc, int64_t now)
{
    static const struct pt_cc none;
    const struct pt_cc *q = req_cc ? req_cc : &none;
    enum pt_reuse revalidate = m->has_validator ? PT_REUSE_REVALIDATE : PT_REUSE_MISS;
    int64_t age = pt_cache_age(m, now);
    if (m->cc_flags & PT_CC_NO_CACHE) /* §5.2.2.4 */
        return revalidate;
    if (q->flags & (PT_CC_NO_CACHE | PT_CC_PRAGMA_NO_CACHE)) /* §5.2.1.4, §5.4 */
        return revalidate;
    /* §5.2.1.1; max-age=0 asks for validation even within the second the response came
       (ages are whole seconds, so "age <= 0" would still serve it) */
    if ((q->flags & PT_CC_MAX_AGE) && (age > q->max_age || q->max_age == 0))
        return revalidate;
    int64_t left = m->lifetime - age;                        /* > 0: fresh (§4.2) */
    if ((q->flags & PT_CC_MIN_FRESH) && left < q->min_fresh) /* §5.2.1.3 */
        return revalidate;
    if (left > 0)
        return PT_REUSE_FRESH;
    int64_t stale = -left;
    /* §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10: never served stale */
    if (m->cc_flags & (PT_CC_MUST_REVALIDATE | PT_CC_PROXY_REVALIDATE | PT_CC_S_MAXAGE))
        return revalidate;
    if ((q->flags & PT_CC_MAX_STALE) && stale <= q->max_stale) /* §5.2.1.2 */
        return PT_REUSE_FRESH;
    if (m->swr >= 0 && stale <= m->swr) /* RFC 5861 §3 */
        return PT_REUSE_STALE_SWR;
    return revalidate;
}

bool pt_cache_stale_if_error_ok(const struct pt_cache_meta *m, const struct pt_cc *req_cc,
                                int64_t now)
{
    static const struct pt_cc none;
    const struct pt_cc *q = req_cc ? req_cc : &none;
    if (m->cc_flags &
        (PT_CC_NO_CACHE | PT_CC_MUST_REVALIDATE | PT_CC_PROXY_REVALIDATE | PT_CC_S_MAXAGE))
        return false;
    if (q->flags & (PT_CC_NO_CACHE | PT_CC_PRAGMA_NO_CACHE))
        return false;
    int64_t age = pt_cache_age(m, now);
    int64_t stale = age - m->lifetime;
    /* the client's own permission (RFC 5861 §4 in a request; max-stale, §5.2.1.2) */
    if ((q->flags & PT_CC_SIE) && stale <= q->sie)
        return true;
    if ((q->flags & PT_CC_MAX_STALE) && stale <= q->max_stale)
        return true;
    if ((q->flags & PT_CC_MAX_AGE) && age > q->max_age)
        return false;
    if (stale < 0)
        return true;
    return m->sie >= 0 && stale <= m->sie; /* the origin's permission */
}

/* ---- validation ---- */

/* An entity-tag without its weakness prefix; *weak says whether it had one. */
static struct pt_str opaque_tag(struct pt_str t, bool *weak)
{
    *weak = t.n >= 2 && t.p[0] == 'W' && t.p[1] == '/';
    if (*weak) {
        t.p += 2;
        t.n -= 2;
    }
    return t;
}

bool pt_cache_not_modified(const struct pt_field *qf, size_t qn, const struct pt_field *sf,
                           size_t sn)
{
    bool has_inm = false;
    struct pt_str etag = FIELD(sf, sn, "etag");
    bool weak;
    struct pt_str op = etag.p ? opaque_tag(etag, &weak) : (struct pt_str){"", 0};
    for (size_t i = 0; i < qn; i++) {
        if (!PT_STR_CASEEQ_LIT(qf[i].name, "if-none-match"))
            continue;
        has_inm = true; /* RFC 9110 §13.1.2: weak comparison; "*" matches any stored one */
        if (pt_http_etag_list_match(qf[i].value, op.p, op.n, false))
            return true;
    }
    if (has_inm)
        return false; /* §13.2.2: If-Modified-Since is not evaluated then */
    int64_t ims, lm;
    if (!field_date(qf, qn, "if-modified-since", 17, &ims))
        return false; /* absent or not a valid date: ignored (§13.1.3) */
    if (!field_date(sf, sn, "last-modified", 13, &lm) && !field_date(sf, sn, "date", 4, &lm))
        return false;
    return lm <= ims;
}

bool pt_cache_304_selects(const struct pt_field *nf, size_t nn, const struct pt_field *sf,
                          size_t sn)
{
    struct pt_str ne = FIELD(nf, nn, "etag");
    if (ne.p) {
        struct pt_str se = FIELD(sf, sn, "etag");
        if (!se.p)
            return false;
        bool nweak, sweak;
        struct pt_str no = opaque_tag(ne, &nweak), so = opaque_tag(se, &sweak);
        if (no.n != so.n || memcmp(no.p, so.p, no.n) != 0)
            return false;
        /* a strong validator selects only the same strong one (§4.3.4) */
        return nweak || !sweak;
    }
    int64_t nlm, slm;
    if (field_date(nf, nn, "last-modified", 13, &nlm))
        return field_date(sf, sn, "last-modified", 13, &slm) && slm == nlm;
    return true;
}

bool pt_cache_304_updates(struct pt_str name)
{
    static const char *const keep[] = {
        "content-length", "content-encoding", "content-range",      "transfer-encoding",
        "connection",     "keep-alive",       "proxy-connection",   "te",
        "trailer",        "upgrade",          "proxy-authenticate", "proxy-authorization",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (pt_str_caseeq(name, keep[i], strlen(keep[i])))
            return false;
    return true;
}

/* ---- Vary ---- */

/* Fields whose list elements are case-insensitive and unordered (RFC 9110 §12.5: the order of
   elements of equal weight carries no preference): their values are lower-cased and sorted. */
static bool is_negotiation(struct pt_str name)
{
    return NAME_IS(name, "accept") || NAME_IS(name, "accept-encoding") ||
           NAME_IS(name, "accept-language") || NAME_IS(name, "accept-charset");
}

struct elem {
    uint16_t off, len;
};

static int elem_cmp(const char *buf, struct elem a, struct elem b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(buf + a.off, buf + b.off, n);
    return c ? c : (int)a.len - (int)b.len;
}

/*
 * Writes the normalised value of the request fields named name among qf[0..qn) into out
 * (cap bytes): "\1" when there is none; else the elements of every such field line, trimmed,
 * with no whitespace around ';' and '=' outside quotes, joined by ','; lower-cased and sorted
 * for the negotiation fields. Returns the length, or -1 when it does not fit.
 */
static ssize_t vary_value(struct pt_str name, const struct pt_field *qf, size_t qn, char *out,
                          size_t cap)
{
    char tmp[VARY_VALUE_MAX];
    struct elem el[VARY_ELEMS_MAX];
    size_t ne = 0, tn = 0;
    bool present = false, fold = is_negotiation(name);
    for (size_t i = 0; i < qn; i++) {
        if (!pt_str_caseeq(qf[i].name, name.p, name.n))
            continue;
        present = true;
        const char *p = qf[i].value.p, *end = p + qf[i].value.n;
        while (p < end) {
            while (p < end && (is_ows(*p) || *p == ','))
                p++;
            if (p == end)
                break;
            size_t start = tn;
            bool quoted = false, space = false;
            for (; p < end && (quoted || *p != ','); p++) {
                char c = *p;
                if (is_ctl(c))
                    return -1; /* not a field value (RFC 9110 §5.5); keeps "\1" and the
                                  key's NULs unambiguous */
                if (!quoted && is_ows(c)) {
                    space = true;
                    continue;
                }
                bool sep = !quoted && (c == ';' || c == '=');
                bool after_sep = tn > start && (tmp[tn - 1] == ';' || tmp[tn - 1] == '=');
                if (space && !sep && !after_sep && tn > start) {
                    if (tn >= sizeof(tmp))
                        return -1;
                    tmp[tn++] = ' ';
                }
                space = false;
                if (c == '"')
                    quoted = !quoted;
                else if (quoted && c == '\\' && p + 1 < end) {
                    if (tn >= sizeof(tmp))
                        return -1;
                    tmp[tn++] = c;
                    c = *++p;
                    if (is_ctl(c))
                        return -1;
                }
                if (tn >= sizeof(tmp))
                    return -1;
                tmp[tn++] = fold && !quoted ? lower(c) : c;
            }
            if (tn == start)
                continue;
            if (ne >= VARY_ELEMS_MAX)
                return -1;
            el[ne++] = (struct elem){(uint16_t)start, (uint16_t)(tn - start)};
        }
    }
    if (!present) {
        if (cap < 1)
            return -1;
        out[0] = '\1';
        return 1;
    }
    if (fold) {
        for (size_t i = 1; i < ne; i++) /* insertion sort: a handful of elements */
            for (size_t j = i; j > 0 && elem_cmp(tmp, el[j - 1], el[j]) > 0; j--) {
                struct elem t = el[j];
                el[j] = el[j - 1];
                el[j - 1] = t;
            }
    }
    size_t n = 0;
    for (size_t i = 0; i < ne; i++) {
        if (n + el[i].len + (i > 0) > cap)
            return -1;
        if (i > 0)
            out[n++] = ',';
        memcpy(out + n, tmp + el[i].off, el[i].len);
        n += el[i].len;
    }
    return (ssize_t)n;
}

ssize_t pt_cache_vary_key(const struct pt_field *rf, size_t rn, const struct pt_field *qf,
                          size_t qn, char *out, size_t cap)
{
    struct pt_str seen[VARY_NAMES_MAX];
    size_t ns = 0, n = 0;
    for (size_t i = 0; i < rn; i++) {
        if (!PT_STR_CASEEQ_LIT(rf[i].name, "vary"))
            continue;
        const char *p = rf[i].value.p, *end = p + rf[i].value.n;
        while (p < end) {
            while (p < end && (is_ows(*p) || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',' && !is_ows(*p))
                p++;
            struct pt_str nm = {s, (size_t)(p - s)};
            while (p < end && *p != ',')
                p++;
            if (nm.n == 0)
                continue;
            if (nm.n == 1 && nm.p[0] == '*')
                return -1;
            for (size_t k = 0; k < nm.n; k++)
                if (is_ctl(nm.p[k]))
                    return -1;
            bool dup = false;
            for (size_t k = 0; k < ns && !dup; k++)
                dup = pt_str_caseeq(seen[k], nm.p, nm.n);
            if (dup)
                continue;
            if (ns >= VARY_NAMES_MAX || n + nm.n + 1 > cap)
                return -1;
            seen[ns++] = nm;
            for (size_t k = 0; k < nm.n; k++)
                out[n++] = lower(nm.p[k]);
            out[n++] = '\0';
            ssize_t vn = vary_value(nm, qf, qn, out + n, cap - n);
            if (vn < 0 || n + (size_t)vn + 1 > cap)
                return -1;
            n += (size_t)vn;
            out[n++] = '\0';
        }
    }
    return (ssize_t)n;
}

bool pt_cache_vary_match(const char *vkey, size_t vlen, const struct pt_field *qf, size_t qn)
{
    char buf[VARY_VALUE_MAX];
    const char *p = vkey, *end = vkey + vlen;
    while (p < end) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        if (!z)
            return false;
        struct pt_str nm = {p, (size_t)(z - p)};
        p = z + 1;
        z = memchr(p, '\0', (size_t)(end - p));
        if (!z)
            return false;
        ssize_t vn = vary_value(nm, qf, qn, buf, sizeof(buf));
        if (vn < 0 || (size_t)vn != (size_t)(z - p) || memcmp(buf, p, (size_t)vn) != 0)
            return false;
        p = z + 1;
    }
    return true;
}
