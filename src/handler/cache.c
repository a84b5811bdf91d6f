/*
 * cache.c - the edge cache in front of a proxied route (RFC 9111 shared cache, RFC 5861,
 * RFC 9211 Cache-Status).
 *
 * What a request of a cached route goes through:
 *
 *   start    the key: "scheme://host/path?query" as routed (the query filtered by key.query),
 *            and the route's key headers as the extra key. GET and HEAD look the store up:
 *              fresh           answered here, as a local answer (head from the stored
 *                              fields, Age, Cache-Status; 304 for a satisfied conditional,
 *                              206 for one range; the body sent from the object, no copy)
 *              stale, swr      answered the same way; one background refresh (a detached
 *                              request whose answer only goes to the store) when the
 *                              server offers one and no fetch of the key is under way
 *              stale           revalidated: the origin gets If-None-Match/If-Modified-Since
 *                              made from the stored validators (the client's own are
 *                              dropped: the cache answers them itself)
 *              none            a miss: the first request for a key leads the fetch; others
 *                              wait for it (polling the store, at most lock_timeout) and are
 *                              then answered from what it stored, or go to the origin
 *            Unsafe methods go to the origin; a 2xx/3xx answer invalidates the URI and
 *            Location/Content-Location on the same host (§4.4).
 *   head     the origin's final head: a 304 to our validators refreshes the stored fields
 *            (§4.3.4) and the refreshed response is answered here; a 5xx with a stale copy
 *            within stale-if-error gets the stale copy. Else, when the response may be
 *            stored (policy.h), its fields (less tag fields, which are stripped for the
 *            client too) are kept and the tee is pushed on the stream chain.
 *   tee      a body filter under compression: every byte that goes to the client is also
 *            appended to the new object; the end of the body publishes it. A body over
 *            max_object, trailers, or a reset drop it. So a compressed variant is stored
 *            compressed, and served many times for one compression.
 *
 * Objects are shared by all workers (cache/store.h); a request holds a reference on what it
 * sends until it ends (pt_req_on_end), so bodies go out from the object itself.
 *
 * Rejected: storing in the proxy's response buffer and copying on completion (every miss
 * would hold its body twice); a lock per key across workers (the store's fill records do the
 * coalescing without blocking a worker's loop).
 */
#include "handler/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/policy.h"
#include "cache/store.h"
#include "core/counters.h"
#include "core/log.h"
#include "handler/handler.h"
#include "handler/resp_head.h"
#include "handler/static.h"
#include "http/date.h"

struct pt_cache *pt_cache_store;

#define WAIT_POLL_MS 5
#define PASS_S 30
#define URL_MAX 8192
#define EXTRA_MAX 2048
#define STATUS_MAX 160

enum role {
    ROLE_NONE = 0,
    ROLE_LEAD, /* this request's fetch fills the key: fill_end when done */
};

struct creq {
    struct pt_req *r;
    const struct pt_route_cache_cfg *rc;
    char *url; /* url_len bytes, then extra */
    size_t url_len;
    char *extra;
    size_t extra_len;
    char *qbuf; /* the request's fields, copied when the request outlives its head */
    struct pt_field *qf;
    size_t qn;
    struct pt_cc req_cc;
    bool req_has_auth;
    bool may_store; /* a GET the request side allows storing */
    bool is_reval;  /* a conditional request to the origin is under way for stale */
    bool is_stored; /* the tee publishes at the end */
    bool any_variant;
    int role;
    uint64_t epoch;
    int64_t req_time;
    uint64_t wait_deadline_ms;
    struct pt_timer wait;
    struct pt_cache_obj *stale;    /* a stored response being revalidated, or usable when the
                                      origin fails (referenced) */
    struct pt_cache_obj *serving;  /* the object whose body goes out (referenced) */
    struct pt_cache_obj *building; /* the tee's object, unpublished */
    struct pt_cache_meta meta;     /* of the answer to store (is_stored) */
    char *tags;
    size_t tags_len;
    char status[STATUS_MAX]; /* Cache-Status value */
    size_t status_len;
    char age[24];
    char crange[96];
    char cond[1024]; /* validators for the origin */
};

/* ---- small helpers ---- */

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static bool method_reads(int m)
{
    return m == PT_METHOD_GET || m == PT_METHOD_HEAD;
}

/* Unsafe (RFC 9110 §9.2.1): every method not known to be safe, extension methods too. */
static bool method_unsafe(int m)
{
    return m != PT_METHOD_GET && m != PT_METHOD_HEAD && m != PT_METHOD_OPTIONS &&
           m != PT_METHOD_TRACE && m != PT_METHOD_CONNECT;
}

/* Cache-Status (RFC 9211): "Portico; " then what, and "; ttl=N" when with_ttl. */
static void set_status(struct creq *cq, const char *what, bool with_ttl, long long ttl)
{
    int n = with_ttl ? snprintf(cq->status, sizeof(cq->status), "Portico; %s; ttl=%lld", what, ttl)
                     : snprintf(cq->status, sizeof(cq->status), "Portico; %s", what);
    cq->status_len = n > 0 && (size_t)n < sizeof(cq->status) ? (size_t)n : 0;
}

static void put_obj(struct pt_cache_obj **o)
{
    if (*o)
        pt_cache_obj_unref(*o);
    *o = NULL;
}

static void fill_done(struct creq *cq, bool stored, uint64_t pass_s)
{
    if (cq->role != ROLE_LEAD)
        return;
    cq->role = ROLE_NONE;
    pt_cache_fill_end(pt_cache_store, cq->url, cq->url_len, cq->extra, cq->extra_len, stored,
                      pass_s, cq->r->env->loop->now_ms);
}

static void creq_free(struct pt_req *r, void *arg)
{
    struct creq *cq = arg;
    (void)r;
    pt_timer_stop(cq->r->env->loop, &cq->wait);
    fill_done(cq, false, 0);
    put_obj(&cq->stale);
    put_obj(&cq->serving);
    if (cq->building)
        pt_cache_obj_discard(pt_cache_store, cq->building);
    free(cq->qbuf);
    free(cq->tags);
    free(cq);
    if (r->cache == cq)
        r->cache = NULL;
}

/* Appends s to o (bounded); false when it does not fit. */
struct sb {
    char *p;
    size_t n, cap;
};

static bool sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->n + n > b->cap)
        return false;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

static int cmp_param(const void *a, const void *b)
{
    const struct pt_str *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n < y->n ? -1 : x->n > y->n);
}

/* The query as the key keeps it: all of it, none, or the listed parameters, sorted. */
static bool key_query(struct sb *b, const struct pt_route_cache_cfg *rc, struct pt_str q)
{
    if (!q.p)
        return true;
    if (rc->key_query_all)
        return sb_put(b, "?", 1) && sb_put(b, q.p, q.n);
    if (!rc->key_query || !rc->key_query[0])
        return true;
    struct pt_str kept[64];
    size_t nk = 0;
    const char *p = q.p, *end = q.p + q.n;
    while (p < end && nk < 64) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t nl = (size_t)((eq ? eq : e) - p);
        for (size_t i = 0; rc->key_query[i]; i++)
            if (strlen(rc->key_query[i]) == nl && memcmp(rc->key_query[i], p, nl) == 0) {
                kept[nk++] = (struct pt_str){p, (size_t)(e - p)};
                break;
            }
        p = e + (amp ? 1 : 0);
    }
    if (nk == 0)
        return true;
    qsort(kept, nk, sizeof(*kept), cmp_param);
    for (size_t i = 0; i < nk; i++)
        if (!sb_put(b, i ? "&" : "?", 1) || !sb_put(b, kept[i].p, kept[i].n))
            return false;
    return true;
}

/* "scheme://host/path?query" as routed: the Host the site was chosen by, lower-cased. */
static ssize_t build_url(const struct pt_req *r, const char *path, size_t path_len,
                         struct pt_str query, char *out, size_t cap)
{
    struct sb b = {out, 0, cap};
    const char *scheme = r->is_tls ? "https://" : "http://";
    if (!sb_put(&b, scheme, strlen(scheme)))
        return -1;
    size_t hn = strlen(r->host);
    if (b.n + hn > cap)
        return -1;
    for (size_t i = 0; i < hn; i++) {
        char ch = r->host[i];
        out[b.n++] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    if (!sb_put(&b, path, path_len) || !key_query(&b, &r->route->cache, query))
        return -1;
    return (ssize_t)b.n;
}

/* The route's key headers' values, "name\0value\0" each (several lines joined by ','). */
static ssize_t build_extra(const struct pt_route_cache_cfg *rc, const struct pt_req_head *h,
                           char *out, size_t cap)
{
    struct sb b = {out, 0, cap};
    for (size_t i = 0; rc->key_headers && rc->key_headers[i]; i++) {
        const char *name = rc->key_headers[i];
        size_t nl = strlen(name);
        if (!sb_put(&b, name, nl + 1))
            return -1;
        bool first = true;
        for (size_t j = 0; j < h->n_fields; j++) {
            struct pt_str n = h->fields[j].name;
            if (n.n != nl || strncasecmp(n.p, name, nl) != 0)
                continue;
            if ((!first && !sb_put(&b, ",", 1)) ||
                !sb_put(&b, h->fields[j].value.p, h->fields[j].value.n))
                return -1;
            first = false;
        }
        if (!sb_put(&b, "", 1))
            return -1;
    }
    return (ssize_t)b.n;
}

/* Copies the request's fields: the request outlives its head (a wait, a fetch to store). */
static bool copy_fields(struct creq *cq, const struct pt_req_head *h)
{
    size_t bytes = 0;
    for (size_t i = 0; i < h->n_fields; i++)
        bytes += h->fields[i].name.n + h->fields[i].value.n;
    cq->qbuf = malloc(h->n_fields * sizeof(struct pt_field) + bytes + 1);
    if (!cq->qbuf)
        return false;
    cq->qf = (struct pt_field *)(void *)cq->qbuf;
    char *p = cq->qbuf + h->n_fields * sizeof(struct pt_field);
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct pt_field *f = &h->fields[i];
        memcpy(p, f->name.p, f->name.n);
        cq->qf[i].name = (struct pt_str){p, f->name.n};
        p += f->name.n;
        if (f->value.n)
            memcpy(p, f->value.p, f->value.n);
        cq->qf[i].value = (struct pt_str){p, f->value.n};
        p += f->value.n;
    }
    cq->qn = h->n_fields;
    return true;
}

/* The stored fields of o as an array (malloc'd; *n set), for the policy's functions. */
static struct pt_field *obj_fields(const struct pt_cache_obj *o, size_t *n)
{
    size_t cap = 1;
    for (uint32_t i = 0; i < o->head_len; i++)
        cap += o->head[i] == '\n';
    struct pt_field *f = malloc(cap * sizeof(*f));
    if (!f)
        return NULL;
    struct pt_resp_head tmp = {.fields = f, .cap = (uint32_t)cap};
    pt_resp_add_lines(&tmp, o->head, o->head_len);
    *n = tmp.n_fields;
    return f;
}

/* ---- answering from a stored response ---- */

static struct pt_str field_of(const struct pt_field *f, size_t n, const char *name)
{
    return pt_cache_field(f, n, name, strlen(name));
}

/* Answers r from o (a local answer): 304 when the client's conditional holds, 206 for one
   satisfiable range, the head alone for HEAD. qf: the request's fields. */
static int serve(struct pt_req *r, struct creq *cq, struct pt_cache_obj *o,
                 const struct pt_field *qf, size_t qn, int64_t now)
{
    int status = o->meta.status;
    uint64_t off = 0, len = o->body_len;
    struct pt_str range = pt_cache_field(qf, qn, "range", 5);
    /* The stored fields as an array only for a request that has something to compare with
       them (a conditional, a range): a plain hit parses them once, into its head. */
    bool asks = range.p || pt_cache_field(qf, qn, "if-none-match", 13).p ||
                pt_cache_field(qf, qn, "if-modified-since", 17).p;
    size_t sn = 0;
    struct pt_field *sf = asks && status == 200 ? obj_fields(o, &sn) : NULL;
    if (asks && status == 200 && !sf)
        return 503;
    bool not_modified = sf && pt_cache_not_modified(qf, qn, sf, sn);
    bool ranged = false, unsat = false;
    if (!not_modified && sf && range.p) {
        struct pt_str ir = pt_cache_field(qf, qn, "if-range", 8);
        bool ok = true;
        if (ir.p) {
            struct pt_str et = field_of(sf, sn, "etag");
            struct pt_str lm = field_of(sf, sn, "last-modified");
            time_t mt = 0;
            bool has_lm = lm.p && pt_http_date_parse(lm.p, lm.n, &mt) == 0;
            ok = pt_static_if_range_ok(ir.p, ir.n, et.p ? et.p : "", et.p ? et.n : 0,
                                       has_lm ? mt : (time_t)-1);
        }
        if (ok) {
            int rr = pt_static_parse_range(range.p, range.n, o->body_len, &off, &len);
            ranged = rr == PT_STATIC_RANGE_PARTIAL;
            unsat = rr == PT_STATIC_RANGE_UNSATISFIABLE;
            if (!ranged)
                off = 0, len = o->body_len;
        }
    }
    free(sf);
    if (unsat) {
        int n = snprintf(cq->crange, sizeof(cq->crange), "Content-Range: bytes */%llu\r\n",
                         (unsigned long long)o->body_len);
        return pt_respond_error_extra(r, 416, r->wants_json, cq->crange, (size_t)n) < 0 ? 503
                                                                                        : PT_OK;
    }
    if (cq->serving != o) {
        put_obj(&cq->serving);
        pt_cache_obj_ref(o);
        cq->serving = o;
    }
    struct pt_resp_head h;
    pt_resp_head_init(&h, not_modified ? 304 : ranged ? 206 : status);
    pt_resp_add_lines(&h, o->head, o->head_len);
    int an = snprintf(cq->age, sizeof(cq->age), "%lld", (long long)pt_cache_age(&o->meta, now));
    pt_resp_add(&h, (struct pt_str){"Age", 3}, (struct pt_str){cq->age, (size_t)an});
    if (ranged) {
        int n = snprintf(cq->crange, sizeof(cq->crange), "bytes %llu-%llu/%llu",
                         (unsigned long long)off, (unsigned long long)(off + len - 1),
                         (unsigned long long)o->body_len);
        pt_resp_add(&h, (struct pt_str){"Content-Range", 13},
                    (struct pt_str){cq->crange, (size_t)n});
    }
    if (pt_cache_store && r->cfg->cache.status_header && cq->status_len)
        pt_resp_add(&h, (struct pt_str){"Cache-Status", 12},
                    (struct pt_str){cq->status, cq->status_len});
    pt_resp_head_stage(r, &h, true);
    bool body = !not_modified && status != 204 && status != 304;
    h.content_length = body ? (int64_t)len : -1;
    r->status = h.status;
    if (r->stream->send_head(r, &h) < 0)
        return 503;
    r->response_started = true;
    if (body && !r->is_head && len) {
        if (r->stream->send_data(r, o->body + off, (size_t)len, true) < 0)
            return 503;
        pt_ctr_add_self(PT_CTR_CACHE_HIT_BYTES, len);
    }
    return PT_OK;
}

/* ---- start ---- */

/* The request's cache state, with room for its key (key_len bytes after it). */
static struct creq *creq_new(struct pt_req *r, size_t key_len)
{
    struct creq *cq = calloc(1, sizeof(*cq) + key_len + 1);
    if (!cq)
        return NULL;
    if (pt_req_on_end(r, creq_free, cq) < 0) {
        free(cq);
        return NULL;
    }
    cq->r = r;
    cq->rc = &r->route->cache;
    pt_timer_init(&cq->wait, NULL);
    r->cache = cq;
    return cq;
}

/* Whether o may answer a request that carries Authorization (§3.5). */
static bool auth_ok(const struct pt_cache_obj *o)
{
    return (o->meta.cc_flags & (PT_CC_PUBLIC | PT_CC_MUST_REVALIDATE | PT_CC_S_MAXAGE)) != 0;
}

/* The validators of o as request lines for the origin (§4.3.1). */
static void make_conditional(struct creq *cq, const struct pt_cache_obj *o)
{
    size_t sn = 0;
    struct pt_field *sf = obj_fields(o, &sn);
    if (!sf)
        return;
    struct pt_str et = field_of(sf, sn, "etag"), lm = field_of(sf, sn, "last-modified");
    int n = 0;
    if (et.p && et.n < 400)
        n += snprintf(cq->cond + n, sizeof(cq->cond) - (size_t)n, "If-None-Match: %.*s\r\n",
                      (int)et.n, et.p);
    if (lm.p && lm.n < 100)
        n += snprintf(cq->cond + n, sizeof(cq->cond) - (size_t)n, "If-Modified-Since: %.*s\r\n",
                      (int)lm.n, lm.p);
    free(sf);
    cq->r->ureq_extra = (struct pt_str){cq->cond, (size_t)n};
    cq->r->ureq_drop_conditionals = true;
}

/* Looks (url, extra) up for the request fields qf; sets cq->any_variant. */
static struct pt_cache_obj *lookup(struct creq *cq, const struct pt_field *qf, size_t qn)
{
    return pt_cache_get(pt_cache_store, cq->url, cq->url_len, cq->extra, cq->extra_len, qf, qn,
                        &cq->any_variant);
}

/* What a stored response allows for this request now: serve it (PT_DONE), revalidate it
   (PT_DECLINED with the conditional set), or nothing (PT_DECLINED; o kept for
   stale-if-error). *swr is set when it was served stale under stale-while-revalidate. A
   detached request (a background refresh) never serves: it revalidates. */
static int consider(struct creq *cq, struct pt_cache_obj *o, const struct pt_field *qf, size_t qn,
                    int64_t now, bool *swr)
{
    struct pt_req *r = cq->r;
    if (cq->req_has_auth && !auth_ok(o)) {
        pt_cache_obj_unref(o);
        return PT_DECLINED;
    }
    enum pt_reuse ru = pt_cache_reuse(&o->meta, &cq->req_cc, now);
    int64_t ttl = o->meta.lifetime - pt_cache_age(&o->meta, now);
    if (r->is_detached && ru == PT_REUSE_FRESH) {
        pt_cache_obj_unref(o); /* refreshed meanwhile: nothing to do */
        return PT_DONE;
    }
    if (!r->is_detached && (ru == PT_REUSE_FRESH || ru == PT_REUSE_STALE_SWR)) {
        set_status(cq, "hit", true, (long long)ttl);
        pt_ctr_add_self(ru == PT_REUSE_FRESH ? PT_CTR_CACHE_HITS : PT_CTR_CACHE_STALE, 1);
        *swr = ru == PT_REUSE_STALE_SWR;
        int rc = serve(r, cq, o, qf, qn, now);
        pt_cache_obj_unref(o);
        return rc == PT_OK ? PT_DONE : rc;
    }
    cq->stale = o; /* revalidated when it can be; else kept for stale-if-error */
    if (o->meta.has_validator && ru != PT_REUSE_MISS) {
        cq->is_reval = true;
        make_conditional(cq, o);
    }
    set_status(cq, "fwd=stale", false, 0);
    return PT_DECLINED;
}

/* Stale-while-revalidate: one background request refreshes the key while the stale copy
   answers (the first request to see it stale leads; the others find the fill busy). */
static void refresh_in_background(struct creq *cq, const struct pt_req_head *h,
                                  const struct pt_route_match *m, const char *path, size_t path_len,
                                  struct pt_str query)
{
    struct pt_req *r = cq->r;
    enum pt_fill f = pt_cache_fill_begin(pt_cache_store, cq->url, cq->url_len, cq->extra,
                                         cq->extra_len, r->env->loop->now_ms);
    if (f == PT_FILL_WAIT)
        return;
    struct pt_req *bg = r->env->detach ? r->env->detach(r) : NULL;
    if (!bg) {
        if (f == PT_FILL_LEAD)
            pt_cache_fill_end(pt_cache_store, cq->url, cq->url_len, cq->extra, cq->extra_len, false,
                              0, r->env->loop->now_ms);
        return;
    }
    bg->is_fill_leader = f == PT_FILL_LEAD;
    bg->ureq_drop_conditionals = true; /* the client's If-* and Range are not the refresh's */
    struct pt_req_head bh = *h;
    bh.method = (struct pt_str){"GET", 3};
    bh.method_id = PT_METHOD_GET;
    bh.content_length = -1;
    int rc = pt_proxy_start(bg, &bh, m, path, path_len, query);
    if (rc != PT_OK)
        bg->pstate = PT_PS_NONE; /* nothing runs: its protocol ends it */
    bg->stream->resume(bg);
}

static void on_wait(struct pt_timer *t);

int pt_cache_start(struct pt_req *r, const struct pt_req_head *h, const struct pt_route_match *m,
                   const char *path, size_t path_len, struct pt_str query)
{
    if (!pt_cache_store)
        return PT_DECLINED;
    char url[URL_MAX], extra[EXTRA_MAX];
    ssize_t ul = build_url(r, path, path_len, query, url, sizeof(url));
    ssize_t el = build_extra(&r->route->cache, h, extra, sizeof(extra));
    if (ul < 0 || el < 0)
        return PT_DECLINED; /* too long to key: not cached */
    struct creq *cq = creq_new(r, (size_t)ul + (size_t)el);
    if (!cq)
        return PT_DECLINED; /* no memory: the origin answers, nothing is stored */
    cq->url = (char *)(cq + 1);
    memcpy(cq->url, url, (size_t)ul);
    cq->url_len = (size_t)ul;
    cq->extra = cq->url + ul;
    if (el)
        memcpy(cq->extra, extra, (size_t)el);
    cq->extra_len = (size_t)el;
    int64_t now = wall_now();
    cq->req_time = now;
    if (method_unsafe(r->method_id) || !method_reads(r->method_id))
        return PT_DECLINED; /* invalidation happens when its answer comes */
    pt_cc_parse(&cq->req_cc, h->fields, h->n_fields);
    cq->req_has_auth = pt_req_field(h, "authorization", 13).p != NULL;
    struct pt_cache_obj *o = lookup(cq, h->fields, h->n_fields);
    if (o) {
        bool swr = false;
        int rc = consider(cq, o, h->fields, h->n_fields, now, &swr);
        if (swr)
            refresh_in_background(cq, h, m, path, path_len, query);
        if (rc != PT_DECLINED)
            return rc;
    } else {
        set_status(cq, cq->any_variant ? "fwd=vary-miss" : "fwd=uri-miss", false, 0);
    }
    if (cq->req_cc.flags & PT_CC_ONLY_IF_CACHED)
        return 504;
    bool has_range = pt_req_field(h, "range", 5).p != NULL;
    cq->may_store =
        r->method_id == PT_METHOD_GET && !(cq->req_cc.flags & PT_CC_NO_STORE) && !has_range;
    cq->epoch = pt_cache_epoch(pt_cache_store, cq->url, cq->url_len);
    if (!copy_fields(cq, h))
        return PT_DECLINED;
    if (r->is_detached) {
        if (r->is_fill_leader)
            cq->role = ROLE_LEAD;
        return PT_DECLINED;
    }
    pt_ctr_add_self(PT_CTR_CACHE_MISSES, 1);
    if (!cq->may_store || !cq->rc->is_coalescing || cq->is_reval)
        return PT_DECLINED;
    enum pt_fill f = pt_cache_fill_begin(pt_cache_store, cq->url, cq->url_len, cq->extra,
                                         cq->extra_len, r->env->loop->now_ms);
    if (f == PT_FILL_LEAD) {
        cq->role = ROLE_LEAD;
        return PT_DECLINED;
    }
    if (f == PT_FILL_PASS)
        return PT_DECLINED;
    pt_ctr_add_self(PT_CTR_CACHE_COALESCED, 1);
    cq->wait_deadline_ms = r->env->loop->now_ms + cq->rc->lock_timeout_ms;
    pt_timer_init(&cq->wait, on_wait);
    pt_timer_set(r->env->loop, &cq->wait, WAIT_POLL_MS);
    return PT_AGAIN;
}

/* A waiter's poll: the leader is done (or the bound passed): answer from what it stored, or
   go to the origin. */
static void on_wait(struct pt_timer *t)
{
    struct creq *cq = PT_CONTAINER_OF(t, struct creq, wait);
    struct pt_req *r = cq->r;
    const struct pt_handler_env *env = r->env;
    bool busy = pt_cache_fill_busy(pt_cache_store, cq->url, cq->url_len, cq->extra, cq->extra_len);
    if (busy && env->loop->now_ms < cq->wait_deadline_ms) {
        pt_timer_set(env->loop, &cq->wait, WAIT_POLL_MS);
        return;
    }
    struct pt_cache_obj *o = lookup(cq, cq->qf, cq->qn);
    int64_t now = wall_now();
    if (o) {
        bool swr = false;
        int rc = consider(cq, o, cq->qf, cq->qn, now, &swr);
        if (rc == PT_DONE) {
            r->pstate = PT_PS_NONE;
            r->stream->resume(r);
            return;
        }
        if (rc != PT_DECLINED) {
            r->pstate = PT_PS_NONE;
            pt_respond_error(r, rc, r->wants_json);
            r->stream->resume(r);
            return;
        }
        if (cq->is_reval) {
            /* The head was built without validators: go without them (a full answer). */
            r->ureq_extra = (struct pt_str){NULL, 0};
            cq->is_reval = false;
        }
    }
    if (!busy) {
        /* The leader's answer was not stored: this one may lead the next fill. */
        enum pt_fill f = pt_cache_fill_begin(pt_cache_store, cq->url, cq->url_len, cq->extra,
                                             cq->extra_len, env->loop->now_ms);
        if (f == PT_FILL_LEAD)
            cq->role = ROLE_LEAD;
        else if (f == PT_FILL_WAIT && env->loop->now_ms < cq->wait_deadline_ms) {
            pt_timer_set(env->loop, &cq->wait, WAIT_POLL_MS);
            return;
        }
    }
    pt_proxy_launch(r);
}

void pt_cache_abort_wait(struct pt_req *r)
{
    struct creq *cq = r->cache;
    if (cq)
        pt_timer_stop(r->env->loop, &cq->wait);
}

/* ---- the origin's answer ---- */

/* A URI from Location/Content-Location as a key URL on the request's host, or -1 (another
   host, or unusable). */
static ssize_t same_host_url(const struct creq *cq, struct pt_str v, char *out, size_t cap)
{
    /* the "scheme://host" part of our own URL */
    const char *sl = memchr(cq->url + 8, '/', cq->url_len > 8 ? cq->url_len - 8 : 0);
    size_t origin = sl ? (size_t)(sl - cq->url) : cq->url_len;
    struct sb b = {out, 0, cap};
    if (v.n && v.p[0] == '/' && !(v.n > 1 && v.p[1] == '/')) {
        if (!sb_put(&b, cq->url, origin) || !sb_put(&b, v.p, v.n))
            return -1;
        return (ssize_t)b.n;
    }
    if (v.n > origin && strncasecmp(v.p, cq->url, origin) == 0 && v.p[origin] == '/') {
        if (!sb_put(&b, cq->url, origin) || !sb_put(&b, v.p + origin, v.n - origin))
            return -1;
        return (ssize_t)b.n;
    }
    return -1;
}

/* §4.4: a non-error answer to an unsafe method invalidates the URI and the Location and
   Content-Location on the same host. */
static void invalidate(struct creq *cq, int status, const struct pt_resp_head *h)
{
    if (status < 200 || status >= 400)
        return;
    pt_cache_purge_url(pt_cache_store, cq->url, cq->url_len);
    static const char *const names[] = {"location", "content-location"};
    for (size_t i = 0; i < 2; i++) {
        struct pt_str v = pt_cache_field(h->fields, h->n_fields, names[i], strlen(names[i]));
        char u[URL_MAX];
        ssize_t n = v.p ? same_host_url(cq, v, u, sizeof(u)) : -1;
        if (n > 0)
            pt_cache_purge_url(pt_cache_store, u, (size_t)n);
    }
}

/* The policy's view of a route's cache settings. */
static struct pt_cache_rules rules_of(const struct pt_route_cache_cfg *rc)
{
    return (struct pt_cache_rules){
        .default_ttl_s = rc->default_ttl_s,
        .ttl_status = rc->ttl_status,
        .ttl_s = rc->ttl_s,
        .n_ttl = rc->n_ttl,
        .store_set_cookie = rc->store_set_cookie,
    };
}

/* Builds the refreshed stored response: o's fields, with those the 304 carries replacing
   theirs (§3.2, §4.3.4), and o's body. Publishes it; returns a reference, or NULL. */
static struct pt_cache_obj *refresh(struct creq *cq, struct pt_cache_obj *o,
                                    const struct pt_resp_head *nh, int64_t now)
{
    size_t sn = 0;
    struct pt_field *sf = obj_fields(o, &sn);
    if (!sf)
        return NULL;
    size_t cap = o->head_len + 64;
    for (uint32_t i = 0; i < nh->n_fields; i++)
        cap += nh->fields[i].name.n + nh->fields[i].value.n + 4;
    char *lines = malloc(cap);
    struct pt_field *all = malloc((sn + nh->n_fields + 1) * sizeof(*all));
    struct pt_cache_obj *n = NULL;
    if (!lines || !all)
        goto out;
    size_t na = 0, ln = 0;
    for (size_t i = 0; i < sn; i++) {
        bool replaced = false;
        for (uint32_t j = 0; j < nh->n_fields && !replaced; j++)
            replaced = pt_cache_304_updates(nh->fields[j].name) &&
                       nh->fields[j].name.n == sf[i].name.n &&
                       strncasecmp(nh->fields[j].name.p, sf[i].name.p, sf[i].name.n) == 0;
        if (!replaced)
            all[na++] = sf[i];
    }
    for (uint32_t j = 0; j < nh->n_fields; j++)
        if (pt_cache_304_updates(nh->fields[j].name))
            all[na++] = nh->fields[j];
    for (size_t i = 0; i < na; i++)
        ln += (size_t)snprintf(lines + ln, cap - ln, "%.*s: %.*s\r\n", (int)all[i].name.n,
                               all[i].name.p, (int)all[i].value.n, all[i].value.p);
    struct pt_cache_meta m;
    struct pt_cache_rules rules = rules_of(cq->rc);
    enum pt_store_verdict v =
        pt_cache_storable(PT_METHOD_GET, cq->req_has_auth, &cq->req_cc, o->meta.status, all, na,
                          cq->req_time, now, &rules, &m);
    if (v != PT_STORE_OK && v != PT_STORE_NO_FRESHNESS)
        goto out;
    n = pt_cache_obj_new(pt_cache_store, &m, o->url, o->url_len, o->extra, o->extra_len, o->vary,
                         o->vary_len, lines, ln, o->tags, o->tags_len, o->body_len);
    if (n && o->body_len && pt_cache_obj_append(pt_cache_store, &n, o->body, o->body_len) < 0) {
        pt_cache_obj_discard(pt_cache_store, n);
        n = NULL;
    }
    if (n) {
        pt_cache_obj_ref(n);
        if (pt_cache_publish(pt_cache_store, n, cq->epoch) < 0) {
            /* purged meanwhile: serve this answer, keep nothing */
        }
    }
out:
    free(lines);
    free(all);
    free(sf);
    return n;
}

/* Whether name is one of the configured tag fields. */
static bool is_tag_field(const struct pt_config *cfg, struct pt_str name)
{
    for (size_t i = 0; cfg->cache.tag_headers && cfg->cache.tag_headers[i]; i++) {
        const char *t = cfg->cache.tag_headers[i];
        if (strlen(t) == name.n && strncasecmp(t, name.p, name.n) == 0)
            return true;
    }
    return false;
}

/* Moves the tag fields out of h into cq->tags ("tag\0tag\0"; tags split on blanks and
   commas). */
static void take_tags(struct creq *cq, struct pt_resp_head *h)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < h->n_fields; i++) {
        struct pt_field f = h->fields[i];
        if (!is_tag_field(cq->r->cfg, f.name)) {
            h->fields[k++] = f;
            continue;
        }
        char *t = realloc(cq->tags, cq->tags_len + f.value.n + 2);
        if (!t)
            continue;
        cq->tags = t;
        const char *p = f.value.p, *end = p + f.value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
                p++;
            const char *s = p;
            while (p < end && *p != ' ' && *p != ',' && *p != '\t')
                p++;
            if (p > s) {
                memcpy(cq->tags + cq->tags_len, s, (size_t)(p - s));
                cq->tags_len += (size_t)(p - s);
                cq->tags[cq->tags_len++] = '\0';
            }
        }
    }
    h->n_fields = k;
}

static const struct pt_stream_ops tee_ops;

bool pt_cache_answer_error(struct pt_req *r, int status)
{
    struct creq *cq = r->cache;
    if (!cq || !cq->stale || r->response_started)
        return false;
    int64_t now = wall_now();
    struct pt_cache_meta m = cq->stale->meta;
    if (cq->rc->stale_if_error_s > 0 && m.sie < cq->rc->stale_if_error_s)
        m.sie = cq->rc->stale_if_error_s;
    if (!pt_cache_stale_if_error_ok(&m, &cq->req_cc, now))
        return false;
    fill_done(cq, false, 0);
    set_status(cq,
               status == 502   ? "hit; fwd=stale; fwd-status=502"
               : status == 503 ? "hit; fwd=stale; fwd-status=503"
               : status == 504 ? "hit; fwd=stale; fwd-status=504"
                               : "hit; fwd=stale; fwd-status=500",
               false, 0);
    pt_ctr_add_self(PT_CTR_CACHE_STALE, 1);
    const struct pt_field *qf = cq->qf;
    return serve(r, cq, cq->stale, qf, cq->qn, now) == PT_OK;
}

bool pt_cache_response(struct pt_req *r, int status, struct pt_resp_head *h)
{
    struct creq *cq = r->cache;
    if (!cq)
        return false;
    int64_t now = wall_now();
    take_tags(cq, h);
    if (method_unsafe(r->method_id)) {
        invalidate(cq, status, h);
        return false;
    }
    if (status >= 500 && cq->stale && pt_cache_answer_error(r, status))
        return true;
    if (status == 304 && cq->is_reval && cq->stale) {
        size_t sn = 0;
        struct pt_field *sf = obj_fields(cq->stale, &sn);
        bool sel = sf && pt_cache_304_selects(h->fields, h->n_fields, sf, sn);
        free(sf);
        if (sel) {
            struct pt_cache_obj *n = refresh(cq, cq->stale, h, now);
            fill_done(cq, n != NULL, 0);
            pt_ctr_add_self(PT_CTR_CACHE_REVALIDATED, 1);
            set_status(cq, "fwd=stale; fwd-status=304", false, 0);
            int rc = serve(r, cq, n ? n : cq->stale, cq->qf, cq->qn, now);
            if (n)
                pt_cache_obj_unref(n);
            return rc == PT_OK;
        }
    }
    if (!cq->may_store)
        return false;
    struct pt_cache_rules rules = rules_of(cq->rc);
    struct pt_cache_meta m;
    enum pt_store_verdict v =
        pt_cache_storable(r->method_id, cq->req_has_auth, &cq->req_cc, status, h->fields,
                          h->n_fields, cq->req_time, now, &rules, &m);
    if (v != PT_STORE_OK) {
        /* Later requests for the key skip the wait when the resource says so itself; not for
           an answer to this request's own conditional or range. */
        bool about_resource = status != 304 && v != PT_STORE_PARTIAL && v != PT_STORE_METHOD;
        fill_done(cq, false, about_resource ? PASS_S : 0);
        int n = snprintf(cq->status + cq->status_len, sizeof(cq->status) - cq->status_len,
                         "; detail=%s", pt_cache_verdict_name(v));
        if (n > 0 && cq->status_len + (size_t)n < sizeof(cq->status))
            cq->status_len += (size_t)n;
        return false;
    }
    cq->meta = m;
    /* The tee goes on the chain now, under the compression filter that may follow: what it
       keeps is what the client gets. Its object is made once the head is final. */
    if (pt_stream_push_filter(r, &tee_ops, cq) < 0) {
        fill_done(cq, false, 0);
        return false;
    }
    cq->is_stored = true;
    return false;
}

/* ---- the tee ---- */

static void tee_drop(struct creq *cq)
{
    if (cq->building) {
        pt_cache_obj_discard(pt_cache_store, cq->building);
        cq->building = NULL;
    }
    fill_done(cq, false, 0);
}

static void tee_append(struct pt_req *r, const char *p, size_t n)
{
    struct creq *cq = pt_stream_filter_state(r, &tee_ops);
    if (cq->building && n && pt_cache_obj_append(pt_cache_store, &cq->building, p, n) < 0) {
        pt_cache_obj_discard(pt_cache_store, cq->building);
        cq->building = NULL;
        fill_done(cq, false, PASS_S);
    }
}

static int tee_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    return pt_stream_below(r, &tee_ops)->send_head(r, h);
}

static int tee_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    tee_append(r, p, n);
    return pt_stream_below(r, &tee_ops)->send_data(r, p, n, is_stable);
}

static void tee_send_file(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                          uint64_t len)
{
    tee_drop(pt_stream_filter_state(r, &tee_ops));
    pt_stream_below(r, &tee_ops)->send_file(r, fd, ref, off, len);
}

static int tee_read_body(struct pt_req *r, struct pt_str *view)
{
    return pt_stream_below(r, &tee_ops)->read_body(r, view);
}

static void tee_consume_body(struct pt_req *r, size_t n)
{
    pt_stream_below(r, &tee_ops)->consume_body(r, n);
}

static void tee_continue_body(struct pt_req *r)
{
    pt_stream_below(r, &tee_ops)->continue_body(r);
}

static int tee_send_borrowed(struct pt_req *r, const char *p, size_t n)
{
    tee_append(r, p, n);
    return pt_stream_below(r, &tee_ops)->send_borrowed(r, p, n);
}

static void publish(struct pt_req *r)
{
    struct creq *cq = pt_stream_filter_state(r, &tee_ops);
    if (!cq->building)
        return;
    struct pt_cache_obj *o = cq->building;
    cq->building = NULL;
    bool ok = pt_cache_publish(pt_cache_store, o, cq->epoch) == 0;
    if (ok)
        pt_ctr_add_self(PT_CTR_CACHE_STORED, 1);
    fill_done(cq, ok, 0);
}

static void tee_send_end(struct pt_req *r)
{
    publish(r);
    pt_stream_below(r, &tee_ops)->send_end(r);
}

static void tee_send_trailers(struct pt_req *r, const struct pt_field *f, size_t n)
{
    if (n)
        tee_drop(pt_stream_filter_state(r, &tee_ops)); /* trailers are not stored */
    else
        publish(r);
    pt_stream_below(r, &tee_ops)->send_trailers(r, f, n);
}

static size_t tee_req_trailers(struct pt_req *r, const struct pt_field **f)
{
    return pt_stream_below(r, &tee_ops)->req_trailers(r, f);
}

static int tee_flush(struct pt_req *r)
{
    return pt_stream_below(r, &tee_ops)->flush(r);
}

static void tee_finish(struct pt_req *r)
{
    pt_stream_below(r, &tee_ops)->finish(r);
}

static void tee_reset(struct pt_req *r)
{
    tee_drop(pt_stream_filter_state(r, &tee_ops));
    pt_stream_below(r, &tee_ops)->reset(r);
}

static void tee_resume(struct pt_req *r)
{
    pt_stream_below(r, &tee_ops)->resume(r);
}

static void tee_yield(struct pt_req *r)
{
    pt_stream_below(r, &tee_ops)->yield(r);
}

static int tee_tunnel(struct pt_req *r)
{
    tee_drop(pt_stream_filter_state(r, &tee_ops));
    return pt_stream_below(r, &tee_ops)->tunnel(r);
}

static int tee_read_raw(struct pt_req *r, struct pt_str *view)
{
    return pt_stream_below(r, &tee_ops)->read_raw(r, view);
}

static void tee_consume_raw(struct pt_req *r, size_t n)
{
    pt_stream_below(r, &tee_ops)->consume_raw(r, n);
}

static const struct pt_stream_ops tee_ops = {
    .send_head = tee_send_head,
    .send_data = tee_send_data,
    .send_file = tee_send_file,
    .read_body = tee_read_body,
    .consume_body = tee_consume_body,
    .continue_body = tee_continue_body,
    .send_borrowed = tee_send_borrowed,
    .send_end = tee_send_end,
    .send_trailers = tee_send_trailers,
    .req_trailers = tee_req_trailers,
    .flush = tee_flush,
    .finish = tee_finish,
    .reset = tee_reset,
    .resume = tee_resume,
    .yield = tee_yield,
    .tunnel = tee_tunnel,
    .read_raw = tee_read_raw,
    .consume_raw = tee_consume_raw,
};

void pt_cache_response_filters(struct pt_req *r, struct pt_resp_head *h)
{
    struct creq *cq = r->cache;
    if (!cq)
        return;
    if (cq->is_stored) {
        /* The stored head: h's fields less what is the client's alone. */
        size_t cap = 1;
        for (uint32_t i = 0; i < h->n_fields; i++)
            cap += h->fields[i].name.n + h->fields[i].value.n + 4;
        char *lines = malloc(cap);
        char vkey[4096];
        ssize_t vl = pt_cache_vary_key(h->fields, h->n_fields, cq->qf, cq->qn, vkey, sizeof(vkey));
        bool ok = lines && vl >= 0;
        size_t ln = 0;
        for (uint32_t i = 0; ok && i < h->n_fields; i++) {
            struct pt_str n = h->fields[i].name;
            if (PT_STR_CASEEQ_LIT(n, "age") ||
                (!cq->rc->store_set_cookie && PT_STR_CASEEQ_LIT(n, "set-cookie")))
                continue;
            ln += (size_t)snprintf(lines + ln, cap - ln, "%.*s: %.*s\r\n", (int)n.n, n.p,
                                   (int)h->fields[i].value.n, h->fields[i].value.p);
        }
        struct pt_cache_obj *o = NULL;
        if (ok)
            o = pt_cache_obj_new(pt_cache_store, &cq->meta, cq->url, cq->url_len, cq->extra,
                                 cq->extra_len, vkey, (size_t)vl, lines, ln, cq->tags, cq->tags_len,
                                 h->content_length > 0 ? (uint64_t)h->content_length : 0);
        free(lines);
        cq->building = o;
        if (!o) {
            fill_done(cq, false, vl < 0 ? PASS_S : 0); /* Vary: *, over max_object: the tee
                                                          passes everything through */
            cq->is_stored = false;
        }
    }
    if (cq->is_stored) {
        int n =
            snprintf(cq->status + cq->status_len, sizeof(cq->status) - cq->status_len, "; stored");
        if (n > 0 && cq->status_len + (size_t)n < sizeof(cq->status))
            cq->status_len += (size_t)n;
    }
    if (r->cfg->cache.status_header && cq->status_len && method_reads(r->method_id))
        pt_resp_add(h, (struct pt_str){"Cache-Status", 12},
                    (struct pt_str){cq->status, cq->status_len});
}
