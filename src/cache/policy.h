/*
 * policy.h - what RFC 9111 (HTTP caching, for a shared cache) and RFC 5861 decide, as pure
 * functions over header fields and times: no store, no I/O, no allocation, no clock of their
 * own (the caller passes "now"). handler/cache.c asks them; cache/store.c keeps what they
 * return.
 *
 * Times are seconds since the epoch (wall clock, as HTTP dates are), held in int64_t.
 */
#ifndef PT_CACHE_POLICY_H
#define PT_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"
#include "http/fields.h"

/* ---- Cache-Control (RFC 9111 §5.2; RFC 5861; RFC 8246) ---- */

enum {
    PT_CC_NO_STORE = 1u << 0,
    PT_CC_NO_CACHE = 1u << 1, /* unqualified, or qualified (treated as unqualified) */
    PT_CC_PRIVATE = 1u << 2,  /* unqualified, or qualified (treated as unqualified) */
    PT_CC_PUBLIC = 1u << 3,
    PT_CC_MUST_REVALIDATE = 1u << 4,
    PT_CC_PROXY_REVALIDATE = 1u << 5,
    PT_CC_NO_TRANSFORM = 1u << 6,
    PT_CC_ONLY_IF_CACHED = 1u << 7,
    PT_CC_IMMUTABLE = 1u << 8,
    PT_CC_MUST_UNDERSTAND = 1u << 9,
    PT_CC_MAX_AGE = 1u << 10,   /* max_age holds a value */
    PT_CC_S_MAXAGE = 1u << 11,  /* s_maxage holds a value */
    PT_CC_MAX_STALE = 1u << 12, /* max_stale holds a value (INT64_MAX: no value given) */
    PT_CC_MIN_FRESH = 1u << 13,
    PT_CC_SWR = 1u << 14,         /* stale-while-revalidate=swr */
    PT_CC_SIE = 1u << 15,         /* stale-if-error=sie */
    PT_CC_INVALID_AGE = 1u << 16, /* a max-age / s-maxage that could not be used (malformed,
                                     or given twice with different values): the response is
                                     to be treated as stale (RFC 9111 §4.2.1) */
};

struct pt_cc {
    uint32_t flags;
    int64_t max_age, s_maxage, max_stale, min_fresh, swr, sie; /* seconds, each >= 0 */
};

/* Parses every Cache-Control field among f[0..n) (names ASCII case-insensitive; several fields
   and comma lists combine) into *cc. Unknown directives are ignored; delta-seconds over 2^31
   are 2^31 (§1.2.2). Never fails. */
void pt_cc_parse(struct pt_cc *cc, const struct pt_field *f, size_t n);

/* The value of the first field named name among f[0..n); p NULL when absent. */
struct pt_str pt_cache_field(const struct pt_field *f, size_t n, const char *name, size_t nlen);

/* ---- storing (RFC 9111 §3) and freshness (§4.2) ---- */

/* A route's overrides (config: route cache:). */
struct pt_cache_rules {
    int64_t default_ttl_s;     /* > 0: lifetime of a storable response with no explicit
                                freshness and no heuristic one; 0: none */
    const int16_t *ttl_status; /* n_ttl statuses whose lifetime is forced to ttl_s[i] */
    const int64_t *ttl_s;
    size_t n_ttl;
    bool store_set_cookie;   /* responses with Set-Cookie may be stored (default false) */
    int64_t heuristic_max_s; /* cap of a heuristic lifetime (10% of Date - Last-Modified) */
};

/* What freshness and reuse need of a stored response, fixed when it is stored (or refreshed
   by a 304). */
struct pt_cache_meta {
    int16_t status;
    uint32_t cc_flags;     /* the response's pt_cc flags */
    int64_t date;          /* Date, or resp_time when absent or invalid */
    int64_t age;           /* Age field value, 0 when absent or invalid */
    int64_t req_time;      /* when the request that got it was sent upstream */
    int64_t resp_time;     /* when its head came */
    int64_t lifetime;      /* freshness lifetime (§4.2.1, heuristics, overrides), >= 0 */
    int64_t swr;           /* stale-while-revalidate window, -1 none */
    int64_t sie;           /* stale-if-error window, -1 none */
    int64_t last_modified; /* Last-Modified, -1 none */
    bool has_validator;    /* an ETag or a Last-Modified: it can be revalidated */
};

/* Why a response is not stored (PT_STORE_OK: it may be). */
enum pt_store_verdict {
    PT_STORE_OK = 0,
    PT_STORE_METHOD,          /* not GET (HEAD responses are never stored either) */
    PT_STORE_STATUS,          /* not final, or a status not understood / not cacheable */
    PT_STORE_NO_STORE,        /* no-store in the request or the response */
    PT_STORE_PRIVATE,         /* private */
    PT_STORE_AUTH,            /* the request had Authorization; the response does not allow it */
    PT_STORE_SET_COOKIE,      /* Set-Cookie and the route does not store those */
    PT_STORE_NO_FRESHNESS,    /* nothing makes it reusable (no explicit freshness, not
                             heuristically cacheable, no default TTL) */
    PT_STORE_VARY_STAR,       /* Vary: * */
    PT_STORE_PARTIAL,         /* 206, or Content-Range */
    PT_STORE_MUST_UNDERSTAND, /* must-understand on a status not understood */
};

/* Decides whether the response (status, fields rf[0..rn)) to a request (method_id, whether it
   carried Authorization, its Cache-Control req_cc) may be stored, and fills *m (times in
   seconds: req_time/resp_time as measured by the caller). rules may be NULL. */
enum pt_store_verdict pt_cache_storable(int method_id, bool req_has_auth,
                                        const struct pt_cc *req_cc, int status,
                                        const struct pt_field *rf, size_t rn, int64_t req_time,
                                        int64_t resp_time, const struct pt_cache_rules *rules,
                                        struct pt_cache_meta *m);

/* A short name of a verdict for logs and Cache-Status details ("no-store"). */
const char *pt_cache_verdict_name(enum pt_store_verdict v);

/* The current age of a stored response at now (§4.2.3), >= 0. */
int64_t pt_cache_age(const struct pt_cache_meta *m, int64_t now);

/* How a stored response may serve a request at now (§4.2, §4.3, §5.2.1, RFC 5861). */
enum pt_reuse {
    PT_REUSE_FRESH = 0,  /* serve it */
    PT_REUSE_STALE_SWR,  /* stale within stale-while-revalidate: serve it, refresh it once in
                            the background */
    PT_REUSE_REVALIDATE, /* send a conditional request (it has validators) */
    PT_REUSE_MISS,       /* it cannot serve this request: fetch anew */
};
/* req_cc: the request's Cache-Control (max-age, min-fresh, max-stale, no-cache; Pragma:
   no-cache without Cache-Control counts as no-cache). */
enum pt_reuse pt_cache_reuse(const struct pt_cache_meta *m, const struct pt_cc *req_cc,
                             int64_t now);

/* Whether a stale response may answer a request whose origin attempt failed (502, 503, 504,
   500, or no connection) at now: within stale-if-error (the response's, or the request's),
   and not must-revalidate / proxy-revalidate / no-cache... (§4.2.4, RFC 5861 §4). */
bool pt_cache_stale_if_error_ok(const struct pt_cache_meta *m, const struct pt_cc *req_cc,
                                int64_t now);

/* ---- validation (§4.3) ---- */

/* Whether a client's conditional request (If-None-Match, else If-Modified-Since, among the
   request fields qf[0..qn)) is satisfied by a stored response with fields sf[0..sn), so that
   304 is the answer (RFC 9110 §13.1.2, §13.1.3, weak comparison for If-None-Match; the
   stored Last-Modified, else its Date, for If-Modified-Since). */
bool pt_cache_not_modified(const struct pt_field *qf, size_t qn, const struct pt_field *sf,
                           size_t sn);

/* Whether a 304's fields nf[0..nn) select the stored response sf[0..sn) (§4.3.4: the strong
   ETag matches; or neither has one and Last-Modified matches; or the 304 carries no
   validator at all). */
bool pt_cache_304_selects(const struct pt_field *nf, size_t nn, const struct pt_field *sf,
                          size_t sn);

/* Whether field name may be taken from a 304 into a stored response (§3.2: not
   Content-Length, Content-Encoding, Content-Range, Transfer-Encoding, hop-by-hop...). */
bool pt_cache_304_updates(struct pt_str name);

/* ---- Vary (§4.1) ---- */

/* Writes into out the normalised values of the request fields qf[0..qn) that a response's
   Vary fields (among rf[0..rn)) select, as "name\0value\0" pairs in the order Vary names them,
   names lower-cased, each value the field lines joined with ',', its list elements trimmed of
   whitespace (also around ';' and '='), lower-cased and sorted, so that two requests that
   differ only in spacing, case or order give the same bytes. An absent field gives an empty
   value marked absent ("\1"). Returns the length; 0 when the response has no Vary; -1 when
   Vary holds "*" or the result would exceed cap. */
ssize_t pt_cache_vary_key(const struct pt_field *rf, size_t rn, const struct pt_field *qf,
                          size_t qn, char *out, size_t cap);

/* Whether the request fields qf[0..qn) give the same normalised values for the names a stored
   vary key (as pt_cache_vary_key wrote it) holds. */
bool pt_cache_vary_match(const char *vkey, size_t vlen, const struct pt_field *qf, size_t qn);

#endif
