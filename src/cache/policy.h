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
    PT_CC_SWR = 1u << 14,             /* stale-while-revalidate=swr */
    PT_CC_SIE = 1u << 15,             /* stale-if-error=sie */
    PT_CC_INVALID_AGE = 1u << 16,     /* a max-age / s-maxage that could not be used (malformed,
                                     or given twice with different values): the response is
                                     to be treated as stale (RFC 9111 §4.2.1) */
    PT_CC_PRAGMA_NO_CACHE = 1u << 17, /* no Cache-Control field, and Pragma: no-cache: no-cache
                                         in a request (§5.4); ignored in a response */
};

struct pt_cc {
    uint32_t flags;
    int64_t max_age, s_maxage, max_stale, min_fresh, swr, sie; /* seconds, each >= 0 */
};

/* Parses every Cache-Control field among f[0..n) (names ASCII case-insensitive; several fields
   and comma lists combine) into *cc. Unknown directives are ignored; delta-seconds over 2^31
   are 2^31 (§1.2.2); a value may be quoted (max-age="60"); quoted strings may hold commas. A
   malformed directive still counts when it restricts (no-store, no-cache, private,
   must-revalidate, proxy-revalidate, no-transform, only-if-cached) and is dropped when it
   permits (public, max-stale=, min-fresh, stale-*); a malformed max-age / s-maxage sets
   PT_CC_INVALID_AGE. With no Cache-Control field, Pragma: no-cache sets
   PT_CC_PRAGMA_NO_CACHE. Never fails. */
void pt_cc_parse(struct pt_cc *cc, const struct pt_field *f, size_t n);

/* The same for the CDN-Cache-Control fields among f[0..n) (RFC 9213): a response's
   directives for a CDN, which pt_cache_storable follows in place of Cache-Control and Expires
   when the response has any. */
void pt_cc_parse_targeted(struct pt_cc *cc, const struct pt_field *f, size_t n);

/* The value of the first field named name among f[0..n); p NULL when absent. */
struct pt_str pt_cache_field(const struct pt_field *f, size_t n, const char *name, size_t nlen);

/* ---- storing (RFC 9111 §3) and freshness (§4.2) ---- */

/* A route's overrides (config: route cache:). */
struct pt_cache_rules {
    int64_t default_ttl_s;     /* > 0: lifetime of a response that could have a heuristic one
                                (heuristically cacheable status, or public) but has neither
                                explicit freshness nor a heuristic lifetime (no usable
                                Last-Modified); 0: none. Never applied to other statuses
                                (302, 5xx...): ttl_status is the way to cache those. */
    const int16_t *ttl_status; /* n_ttl statuses whose lifetime is forced to ttl_s[i], over
                                  explicit freshness; an understood status listed here is
                                  storable without any freshness field (no-store, private,
                                  Authorization and Set-Cookie still apply) */
    const int64_t *ttl_s;
    size_t n_ttl;
    bool store_set_cookie;   /* responses with Set-Cookie may be stored (default false) */
    int64_t heuristic_max_s; /* cap of a heuristic lifetime (10% of Date - Last-Modified);
                                0: one day */
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
    PT_STORE_NO_FRESHNESS,    /* nothing makes it reusable: no explicit freshness and not
                                 heuristically cacheable (nor public), or a lifetime of 0
                                 with no validator and no stale window */
    PT_STORE_VARY_STAR,       /* Vary: * */
    PT_STORE_PARTIAL,         /* 206, or Content-Range */
    PT_STORE_MUST_UNDERSTAND, /* must-understand on a status not understood */
};

/* Decides whether the response (status, fields rf[0..rn)) to a request (method_id, enum
   pt_http_method; whether it carried Authorization; its Cache-Control req_cc, may be NULL) may
   be stored, and fills *m whatever the verdict (times in seconds: req_time/resp_time as
   measured by the caller). Lifetime: a ttl_status override, else s-maxage, else max-age, else
   Expires - Date (§4.2.1; an invalid max-age or Expires gives 0), else the heuristic (§4.2.2),
   else default_ttl_s. rules may be NULL. */
enum pt_store_verdict pt_cache_storable(int method_id, bool req_has_auth,
                                        const struct pt_cc *req_cc, int status,
                                        const struct pt_field *rf, size_t rn, int64_t req_time,
                                        int64_t resp_time, const struct pt_cache_rules *rules,
                                        struct pt_cache_meta *m);

/* Whether this cache understands status (RFC 9111 §3: 200, 203, 204, 300, 301, 302, 303, 307,
   308, 404, 405, 410, 414, 451, 500, 501, 502, 503, 504); others are never stored. */
bool pt_cache_status_understood(int status);

/* Whether status is heuristically cacheable (RFC 9110 §15.1: 200, 203, 204, 300, 301, 308, 404,
   405, 410, 414, 501). */
bool pt_cache_status_heuristic(int status);

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

/* Whether a stored response may answer a request whose origin attempt failed (502, 503, 504,
   500, or no connection) at now: never under the response's no-cache, must-revalidate,
   proxy-revalidate or s-maxage, nor the request's no-cache (§4.2.4); else when the request
   allows that staleness (its stale-if-error or max-stale), or when the response is fresh or
   within its stale-if-error (RFC 5861 §4) and the request's max-age allows its age. */
bool pt_cache_stale_if_error_ok(const struct pt_cache_meta *m, const struct pt_cc *req_cc,
                                int64_t now);

/* ---- validation (§4.3) ---- */

/* Whether a client's conditional request (If-None-Match, else If-Modified-Since, among the
   request fields qf[0..qn)) is satisfied by a stored response with fields sf[0..sn), so that
   304 is the answer (RFC 9110 §13.1.2, §13.1.3, weak comparison for If-None-Match; the
   stored Last-Modified, else its Date, for If-Modified-Since). */
bool pt_cache_not_modified(const struct pt_field *qf, size_t qn, const struct pt_field *sf,
                           size_t sn);

/* Whether a 304's fields nf[0..nn) select the stored response sf[0..sn) (§4.3.4): an ETag in
   the 304 must match the stored one (a strong one strongly, a weak one weakly); else a
   Last-Modified in the 304 must equal the stored one; a 304 with neither selects it. That
   last case goes beyond §4.3.4, which asks the stored response to lack validators too: we
   keep one response per variant and sent the conditional from it, and RFC 9110 §15.4.5 does
   not require a 304 to repeat Last-Modified. */
bool pt_cache_304_selects(const struct pt_field *nf, size_t nn, const struct pt_field *sf,
                          size_t sn);

/* Whether field name may be taken from a 304 into a stored response (§3.2): not
   Content-Length; not the hop-by-hop fields (Connection, Keep-Alive, Proxy-Connection, TE,
   Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization: §3.1); not
   Content-Encoding and Content-Range, which the stored bytes depend on. Fields that the
   304's Connection names are the caller's to skip. Everything else (Content-Type,
   Cache-Control, Expires, Set-Cookie...) is updated. */
bool pt_cache_304_updates(struct pt_str name);

/* ---- Vary (§4.1) ---- */

/* Writes into out the normalised values of the request fields qf[0..qn) that a response's
   Vary fields (among rf[0..rn)) select, as "name\0value\0" pairs in the order Vary names them
   (a name named twice, once), names lower-cased, each value the field lines' list elements
   trimmed of whitespace (none around ';' and '=' outside quotes) and joined with ','. For
   the content-negotiation fields (Accept, Accept-Encoding, Accept-Language, Accept-Charset)
   the elements are also lower-cased (outside quotes) and sorted, so that "gzip, br" and
   "BR ,GZIP" give the same bytes; other fields keep their case and order, since a Cookie or
   an Authorization that differs in case is another request (folding it would serve one
   client's variant to another). An absent field gives the value "\1"; a present empty one
   "". Allocates nothing (the work is on the stack: at most 32 names, 64 elements and 4 KiB
   per field). Returns the length; 0 when the response has no Vary; -1 when Vary holds "*",
   a name or value holds a control byte (none is valid in a field), or the result would
   exceed cap or those limits. */
ssize_t pt_cache_vary_key(const struct pt_field *rf, size_t rn, const struct pt_field *qf,
                          size_t qn, char *out, size_t cap);

/* Whether the request fields qf[0..qn) give the same normalised values for the names a stored
   vary key (as pt_cache_vary_key wrote it) holds. */
bool pt_cache_vary_match(const char *vkey, size_t vlen, const struct pt_field *qf, size_t qn);

#endif
