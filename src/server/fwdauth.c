/*
 * fwdauth.c - forward auth: before its handler, a request asks an auth service whether it may
 * go on (nginx auth_request, Traefik ForwardAuth).
 *
 * The call is a detached request (bg.c) on the proxy route config_fwdauth.c made to the auth
 * upstream, so it has everything a proxied request has: the keep-alive pool, TLS, balancing,
 * health, retries and the HTTP/1.1 (or HTTP/2) response parsing. Its head is the client's
 * method, the configured path, the request_headers the client sent, X-Forwarded-Method and
 * X-Forwarded-Uri (the proxy adds X-Forwarded-For, -Proto and -Host, and X-Request-Id), and
 * no body. The call is watched (pt_bg_req_watch): its final head and body bytes come here.
 *
 * While it runs, the client's request waits in PT_PS_AUTH_WAIT: neither protocol reads its
 * body for it (HTTP/2 holds what the window lets in), and the pipeline's state after the
 * route (struct pt_pipeline_ctx: the head, route match, path and query) is copied into one
 * allocation (struct fa_wait), since the protocol's head is gone when pt_pipeline_run
 * returns. The answer decides, from the call's end (the loop's post queue):
 *
 *   2xx            the request goes on (pt_pipeline_resume) with a head where the
 *                  response_headers the auth answer gave replace the client's copies (the
 *                  client's are removed even when the answer has none);
 *   401, 403, 3xx  returned to the client: status, body (at most BODY_MAX, else none), and its
 *                  WWW-Authenticate, Set-Cookie, Location and Content-Type fields;
 *   anything else, a call cut short, no answer within timeout: 503 (Portico's page).
 *
 * Every refusal counts PT_CTR_GUARD_AUTH_REFUSED and logs one rate-limited line with the
 * request id and the reason (never a credential). A client that goes away during the call
 * ends its request: the cleanup registered on it cancels the call and frees the wait.
 *
 * The cache (cache: {ttl}) is per worker, so it takes no lock: a direct-mapped table of
 * CACHE_SLOTS answers, each at most COPY_MAX bytes of copied header values, so its memory is
 * bounded whatever the keys (a new key takes its slot over). Only 2xx answers are kept: a
 * refusal may carry a Set-Cookie or a login state that must not be replayed, and a client
 * that just logged in must not wait a TTL. The key is two SipHash-2-4 values (keys drawn per
 * worker with getrandom) of the configuration's forward_auth, the method, the request target
 * and the values of the cache key's headers; the table is emptied when the worker's requests
 * run on another configuration. Each worker asks the service at most once per key and TTL.
 */
#include "server/fwdauth.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/counters.h"
#include "core/hash.h"
#include "core/log.h"
#include "handler/handler.h"
#include "server/bg.h"
#include "server/conn.h"
#include "server/worker.h"

#define CACHE_SLOTS 512
#define COPY_MAX 4096  /* bytes of a 2xx's copied fields ("name\0value\0" pairs) */
#define COPY_FIELDS 32 /* fields a 2xx may copy into the request */
#define LINES_MAX 4096 /* header lines of a refusal passed to the client */
#define BODY_MAX 65536 /* body of a refusal passed to the client */
#define KEY_MAX 16384  /* key material of one request: longer is not cached */
#define SENT_FIELDS 64 /* client fields sent to the auth service */

struct fa_slot {
    uint64_t h[2];
    uint64_t expires_ms;
    char *copy; /* the answer's copied fields, malloc'd; NULL when none */
    uint32_t copy_len;
};

struct pt_fwdauth_cache {
    const struct pt_config *cfg; /* the slots' configuration */
    uint64_t k1[2], k2[2];
    struct fa_slot slot[CACHE_SLOTS];
};

/* A request's forward auth: its call and the pipeline's state, copied. */
struct fa_wait {
    struct pt_req *r;   /* the client's request */
    struct pt_req *sub; /* the auth call until it ends; NULL after */
    const struct pt_fwdauth_cfg *fa;
    struct pt_timer timer;
    uint64_t key[2];
    bool is_cacheable;
    bool is_done;     /* decided: nothing more happens */
    bool in_resume;   /* pt_pipeline_resume runs: the cleanup leaves the freeing to it */
    bool is_dead;     /* the request ended during the resume */
    bool is_over;     /* the refusal's body was larger than BODY_MAX: none is sent */
    int status;       /* the call's final status; 0: none yet */
    size_t lines_len; /* lines[]: a refusal's fields, as lines */
    size_t copy_len;  /* copy[]: a 2xx's response_headers, "name\0value\0" */
    size_t n_copied;
    char *body; /* a refusal's body (malloc'd), body_len bytes */
    size_t body_len;
    struct pt_pipeline_ctx pc; /* the copy the pipeline resumes with */
    struct pt_route_match m;
    struct pt_req_head h;
    struct pt_field *fields; /* h's fields, with room for COPY_FIELDS more */
    size_t n_client;         /* the client's fields (before the auth answer's) */
    char lines[LINES_MAX];
    char copy[COPY_MAX];
    /* then the fields and the bytes of the head, path and query */
};

/* ---- the cache ---- */

static struct pt_fwdauth_cache *cache_of(struct pt_req *r)
{
    struct pt_worker *wk = r->w;
    struct pt_fwdauth_cache *c = wk->fwdauth;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        uint64_t k[4];
        if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
            free(c);
            return NULL; /* no keys: no cache, every request asks */
        }
        memcpy(c->k1, k, sizeof(c->k1));
        memcpy(c->k2, k + 2, sizeof(c->k2));
        c->cfg = r->cfg;
        wk->fwdauth = c;
    }
    if (c->cfg != r->cfg) {
        for (size_t i = 0; i < CACHE_SLOTS; i++) {
            free(c->slot[i].copy);
            memset(&c->slot[i], 0, sizeof(c->slot[i]));
        }
        c->cfg = r->cfg;
    }
    return c;
}

void pt_fwdauth_cache_free(struct pt_worker *w)
{
    struct pt_fwdauth_cache *c = w->fwdauth;
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(c->slot[i].copy);
    free(c);
    w->fwdauth = NULL;
}

struct keybuf {
    char *p;
    size_t n;
    bool is_over;
};

static void key_put(struct keybuf *k, const void *p, size_t n)
{
    if (k->is_over || n > KEY_MAX - k->n) {
        k->is_over = true;
        return;
    }
    memcpy(k->p + k->n, p, n);
    k->n += n;
}

/* r's cache key under c; false when it is too long to key (not cached). */
static bool make_key(const struct pt_fwdauth_cache *c, const struct pt_fwdauth_cfg *fa,
                     const struct pt_req_head *h, uint64_t out[2])
{
    static __thread char buf[KEY_MAX];
    struct keybuf k = {buf, 0, false};
    key_put(&k, &fa, sizeof(fa));
    key_put(&k, h->method.p, h->method.n);
    key_put(&k, "", 1);
    key_put(&k, h->target.p, h->target.n);
    key_put(&k, "", 1);
    for (size_t i = 0; i < fa->n_cache_key; i++) {
        const char *name = fa->cache_key[i];
        size_t nl = strlen(name);
        key_put(&k, name, nl + 1);
        for (size_t j = 0; j < h->n_fields; j++)
            if (pt_str_caseeq(h->fields[j].name, name, nl)) {
                key_put(&k, h->fields[j].value.p, h->fields[j].value.n);
                key_put(&k, "\n", 1);
            }
    }
    if (k.is_over)
        return false;
    out[0] = pt_siphash24(c->k1, buf, k.n);
    out[1] = pt_siphash24(c->k2, buf, k.n);
    return true;
}

static struct fa_slot *slot_of(struct pt_fwdauth_cache *c, const uint64_t key[2])
{
    return &c->slot[key[0] % CACHE_SLOTS];
}

static void cache_put(struct pt_req *r, const struct fa_wait *w)
{
    struct pt_fwdauth_cache *c = cache_of(r);
    if (!c)
        return;
    struct fa_slot *s = slot_of(c, w->key);
    char *copy = NULL;
    if (w->copy_len) {
        copy = malloc(w->copy_len);
        if (!copy)
            return;
        memcpy(copy, w->copy, w->copy_len);
    }
    free(s->copy);
    s->h[0] = w->key[0];
    s->h[1] = w->key[1];
    s->expires_ms = r->env->loop->now_ms + w->fa->cache_ttl_ms;
    s->copy = copy;
    s->copy_len = (uint32_t)w->copy_len;
}

/* ---- the wait: the pipeline's state, copied ---- */

static size_t str_bytes(struct pt_str s)
{
    return s.p ? s.n : 0;
}

static struct pt_str keep(char **at, struct pt_str s)
{
    if (!s.p)
        return s;
    struct pt_str k = {*at, s.n};
    if (s.n)
        memcpy(*at, s.p, s.n);
    *at += s.n;
    return k;
}

/* s moved to the copy of [from, from + n) at to, when it lies there (route match slices). */
static void rebase(struct pt_str *s, const char *from, size_t n, const char *to)
{
    if (s->p && s->p >= from && s->p + s->n <= from + n)
        s->p = to + (s->p - from);
}

static void on_req_end(struct pt_req *r, void *arg);
static void on_timeout(struct pt_timer *t);

/* A wait for r with a copy of pc; NULL when no memory (or no cleanup slot). */
static struct fa_wait *wait_new(struct pt_req *r, const struct pt_pipeline_ctx *pc,
                                const struct pt_fwdauth_cfg *fa)
{
    const struct pt_req_head *h = pc->h;
    size_t bytes = str_bytes(h->method) + str_bytes(h->authority) + str_bytes(h->target) +
                   str_bytes(h->path) + str_bytes(h->query) + str_bytes(pc->query) + pc->mlen;
    for (size_t i = 0; i < h->n_fields; i++)
        bytes += h->fields[i].name.n + h->fields[i].value.n;
    size_t nf = h->n_fields + COPY_FIELDS;
    struct fa_wait *w = malloc(sizeof(*w) + nf * sizeof(struct pt_field) + bytes);
    if (!w)
        return NULL;
    memset(w, 0, offsetof(struct fa_wait, lines));
    if (pt_req_on_end(r, on_req_end, w) < 0) {
        free(w);
        return NULL;
    }
    w->r = r;
    w->fa = fa;
    pt_timer_init(&w->timer, on_timeout);
    w->fields = (struct pt_field *)(void *)(w + 1);
    char *at = (char *)(w->fields + nf);
    w->h = *h;
    w->h.method = keep(&at, h->method);
    w->h.authority = keep(&at, h->authority);
    w->h.target = keep(&at, h->target);
    w->h.path = keep(&at, h->path);
    w->h.query = keep(&at, h->query);
    for (size_t i = 0; i < h->n_fields; i++) {
        w->fields[i].name = keep(&at, h->fields[i].name);
        w->fields[i].value = keep(&at, h->fields[i].value);
    }
    w->n_client = h->n_fields;
    w->h.fields = w->fields;
    char *mpath = at;
    memcpy(at, pc->mpath, pc->mlen);
    at += pc->mlen;
    w->m = *pc->m;
    struct pt_route_match *m = &w->m;
    rebase(&m->splat, pc->mpath, pc->mlen, mpath);
    for (size_t i = 0; i < m->n_params && i < PT_ROUTE_MAX_PARAMS; i++)
        rebase(&m->param_values[i], pc->mpath, pc->mlen, mpath);
    for (size_t i = 0; i < m->n_captures && i < PT_ROUTE_MAX_CAPTURES; i++)
        rebase(&m->captures[i], pc->mpath, pc->mlen, mpath);
    w->pc = (struct pt_pipeline_ctx){.h = &w->h,
                                     .m = &w->m,
                                     .mpath = mpath,
                                     .mlen = pc->mlen,
                                     .query = keep(&at, pc->query),
                                     .is_acme = pc->is_acme};
    return w;
}

static bool listed(const char *const *names, size_t n, struct pt_str name)
{
    for (size_t i = 0; i < n; i++)
        if (pt_str_caseeq(name, names[i], strlen(names[i])))
            return true;
    return false;
}

/* w's head: the client's fields less the response_headers, then copy's ("name\0value\0"). */
static void edit_head(struct fa_wait *w, const char *copy, size_t copy_len)
{
    const struct pt_fwdauth_cfg *fa = w->fa;
    size_t n = 0;
    for (size_t i = 0; i < w->n_client; i++)
        if (!listed(fa->response_headers, fa->n_response_headers, w->fields[i].name))
            w->fields[n++] = w->fields[i];
    const char *p = copy, *end = copy + copy_len;
    while (p < end && n < w->n_client + COPY_FIELDS) {
        size_t nl = strlen(p);
        const char *v = p + nl + 1;
        size_t vl = strlen(v);
        w->fields[n++] = (struct pt_field){{p, nl}, {v, vl}};
        p = v + vl + 1;
    }
    w->h.fields = w->fields;
    w->h.n_fields = n;
}

/* ---- the answer ---- */

static void refuse(struct pt_req *r, int status, const char *why)
{
    pt_ctr_add_self(PT_CTR_GUARD_AUTH_REFUSED, 1);
    pt_log_ratelimited(PT_LOG_INFO, "request %s: refused by forward_auth: %s", r->request_id, why);
    pt_conn_plan_discard(r);
    pt_pipeline_fail(r, status, false);
}

static bool passes_to_client(int status)
{
    return status == 401 || status == 403 || (status >= 300 && status < 400 && status != 304);
}

/* The call's verdict on w's request (once): it goes on, or it is answered. */
static void conclude(struct fa_wait *w, int status, const char *why)
{
    struct pt_req *r = w->r;
    w->is_done = true;
    pt_timer_stop(r->env->loop, &w->timer);
    if (r->pstate != PT_PS_AUTH_WAIT)
        return; /* its protocol let it go (pt_proxy_abort: an HTTP/2 stream reset); it ends */
    r->pstate = PT_PS_NONE;
    if (status >= 200 && status < 300) {
        if (w->is_cacheable)
            cache_put(r, w);
        edit_head(w, w->copy, w->copy_len);
        w->in_resume = true;
        pt_pipeline_resume(r, &w->pc);
        w->in_resume = false;
        if (w->is_dead) { /* the request ended inside: its cleanup left w to us */
            free(w->body);
            free(w);
        }
        return;
    }
    if (passes_to_client(status)) {
        pt_ctr_add_self(PT_CTR_GUARD_AUTH_REFUSED, 1);
        pt_log_ratelimited(PT_LOG_INFO, "request %s: refused by forward_auth: status %d",
                           r->request_id, status);
        pt_conn_plan_discard(r);
        bool has_body = w->body && !w->is_over;
        pt_respond_copy(r, status, w->lines, w->lines_len, has_body ? w->body : "",
                        has_body ? w->body_len : 0);
    } else {
        refuse(r, 503, why);
    }
    r->stream->resume(r);
}

static void call_head(void *arg, const struct pt_resp_head *h)
{
    struct fa_wait *w = arg;
    const struct pt_fwdauth_cfg *fa = w->fa;
    w->status = h->status;
    bool ok = h->status >= 200 && h->status < 300;
    for (uint32_t i = 0; i < h->n_fields; i++) {
        struct pt_str n = h->fields[i].name, v = h->fields[i].value;
        if (ok) {
            if (!listed(fa->response_headers, fa->n_response_headers, n))
                continue;
            if (w->n_copied == COPY_FIELDS || n.n + v.n + 2 > COPY_MAX - w->copy_len)
                continue; /* beyond the bounds: left out */
            /* names and values hold no NUL (both parsers refuse them) */
            for (size_t j = 0; j < n.n; j++) /* the configured (lower-case) spelling */
                w->copy[w->copy_len + j] =
                    (char)(n.p[j] | (n.p[j] >= 'A' && n.p[j] <= 'Z' ? 0x20 : 0));
            w->copy_len += n.n;
            w->copy[w->copy_len++] = '\0';
            memcpy(w->copy + w->copy_len, v.p, v.n);
            w->copy_len += v.n;
            w->copy[w->copy_len++] = '\0';
            w->n_copied++;
        } else if (PT_STR_CASEEQ_LIT(n, "www-authenticate") || PT_STR_CASEEQ_LIT(n, "set-cookie") ||
                   PT_STR_CASEEQ_LIT(n, "location") || PT_STR_CASEEQ_LIT(n, "content-type")) {
            if (n.n + v.n + 4 > LINES_MAX - w->lines_len)
                continue;
            memcpy(w->lines + w->lines_len, n.p, n.n);
            w->lines_len += n.n;
            memcpy(w->lines + w->lines_len, ": ", 2);
            w->lines_len += 2;
            memcpy(w->lines + w->lines_len, v.p, v.n);
            w->lines_len += v.n;
            memcpy(w->lines + w->lines_len, "\r\n", 2);
            w->lines_len += 2;
        }
    }
}

static void call_data(void *arg, const char *p, size_t n)
{
    struct fa_wait *w = arg;
    if (!passes_to_client(w->status) || w->is_over)
        return;
    if (n > BODY_MAX - w->body_len) {
        w->is_over = true;
        return;
    }
    if (!w->body) {
        w->body = malloc(BODY_MAX);
        if (!w->body) {
            w->is_over = true;
            return;
        }
    }
    memcpy(w->body + w->body_len, p, n);
    w->body_len += n;
}

static void call_end(void *arg, bool finished)
{
    struct fa_wait *w = arg;
    w->sub = NULL;
    if (w->is_done)
        return;
    if (!finished)
        conclude(w, 0, "the auth call failed");
    else
        conclude(w, w->status,
                 w->status >= 500 ? "auth service error"
                 : w->status      ? "unexpected status"
                                  : "no answer");
}

static const struct pt_bg_watch call_watch = {call_head, call_data, call_end};

static void on_timeout(struct pt_timer *t)
{
    struct fa_wait *w = PT_CONTAINER_OF(t, struct fa_wait, timer);
    if (w->sub)
        pt_bg_req_cancel(w->sub);
    w->sub = NULL;
    conclude(w, 0, "timeout");
}

static void on_req_end(struct pt_req *r, void *arg)
{
    struct fa_wait *w = arg;
    if (w->sub)
        pt_bg_req_cancel(w->sub); /* the client went away during the call */
    w->sub = NULL;
    w->is_done = true;
    pt_timer_stop(r->env->loop, &w->timer);
    if (w->in_resume) {
        w->is_dead = true;
        return;
    }
    free(w->body);
    free(w);
}

/* Starts w's call; false when it cannot be made (no memory, no target). */
static bool start_call(struct fa_wait *w)
{
    struct pt_req *r = w->r;
    const struct pt_fwdauth_cfg *fa = w->fa;
    const struct pt_req_head *h = &w->h;
    struct pt_req *sub = r->env->detach ? r->env->detach(r) : NULL;
    if (!sub)
        return false;
    sub->route = fa->route;
    sub->method_id = r->method_id;
    sub->is_head = r->is_head;
    memcpy(sub->method, r->method, sizeof(sub->method));
    struct pt_field f[SENT_FIELDS + 2];
    size_t n = 0;
    for (size_t i = 0; i < h->n_fields && n < SENT_FIELDS; i++) {
        struct pt_str name = h->fields[i].name;
        if (listed(fa->request_headers, fa->n_request_headers, name) ||
            PT_STR_CASEEQ_LIT(name, "x-forwarded-for")) /* believed from trusted peers only */
            f[n++] = h->fields[i];
    }
    f[n++] = (struct pt_field){PT_STR("X-Forwarded-Method"), h->method};
    f[n++] = (struct pt_field){PT_STR("X-Forwarded-Uri"), h->target};
    size_t pl = strlen(fa->path);
    struct pt_req_head sh = {.method = h->method,
                             .method_id = h->method_id,
                             .authority = h->authority,
                             .target = {fa->path, pl},
                             .path = {fa->path, pl},
                             .query = {NULL, 0},
                             .content_length = -1,
                             .fields = f,
                             .n_fields = n};
    static const struct pt_route_match m0;
    w->sub = sub;
    pt_bg_req_watch(sub, &call_watch, w);
    int rc = pt_proxy_start(sub, &sh, &m0, fa->path, pl, (struct pt_str){NULL, 0});
    if (rc != PT_OK) {
        pt_bg_req_watch(sub, NULL, NULL);
        w->sub = NULL;
        sub->pstate = PT_PS_NONE; /* nothing runs: its protocol ends it */
        sub->stream->resume(sub);
        return false;
    }
    sub->stream->resume(sub);
    pt_timer_set(r->env->loop, &w->timer, fa->timeout_ms);
    return true;
}

int pt_fwdauth_check(struct pt_req *r, struct pt_pipeline_ctx *pc, const struct pt_fwdauth_cfg *fa)
{
    uint64_t key[2] = {0, 0};
    struct pt_fwdauth_cache *c = fa->cache_ttl_ms ? cache_of(r) : NULL;
    bool cacheable = c && make_key(c, fa, pc->h, key);
    const struct fa_slot *hit = NULL;
    if (cacheable) {
        const struct fa_slot *s = slot_of(c, key);
        if (s->h[0] == key[0] && s->h[1] == key[1] && s->expires_ms > r->env->loop->now_ms)
            hit = s;
    }
    if (hit && !fa->n_response_headers)
        return PT_OK; /* the head goes on as it is */
    struct fa_wait *w = wait_new(r, pc, fa);
    if (!w) {
        refuse(r, 503, "no memory");
        return PT_DONE;
    }
    if (hit) { /* goes on now, with the cached answer's headers */
        w->is_done = true;
        if (hit->copy_len)
            memcpy(w->copy, hit->copy, hit->copy_len);
        w->copy_len = hit->copy_len;
        edit_head(w, w->copy, w->copy_len);
        pc->h = &w->h;
        return PT_OK;
    }
    w->is_cacheable = cacheable;
    if (cacheable) {
        w->key[0] = key[0];
        w->key[1] = key[1];
    }
    if (!start_call(w)) {
        w->is_done = true;
        refuse(r, 503, "the auth call could not start");
        return PT_DONE;
    }
    r->pstate = PT_PS_AUTH_WAIT;
    return PT_AGAIN;
}
