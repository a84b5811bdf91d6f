/*
 * proxy.c - forwards a request to an upstream target and streams the response back.
 *
 * One request drives one upstream connection (taken from the worker's keep-alive pool or newly
 * connected). Both sockets are edge-triggered; their events only record readiness and call
 * pt_conn_run(), which calls pt_proxy_run(): a pump that makes every move currently possible
 * and returns when each direction waits on a socket or on the other side.
 *
 *   client --c->in--> [request body slice] --writev(uout + slice)--> upstream
 *   client <--writev(c->out + slice)-- [response body slice] <--u->in-- upstream
 *
 * Bodies are never copied: a slice of the buffer they were read into is written with the
 * framing bytes (heads, chunk-size lines) in front of it in one writev. Each direction holds at
 * most one buffer of data, so a slow reader stops the reads on the other side (back-pressure)
 * instead of growing memory. Chunked bodies are decoded in place and re-encoded (chunk
 * extensions and trailers do not cross the proxy: they are a smuggling vector and nobody's
 * contract); a response without a length is re-chunked for HTTP/1.1 clients so their
 * connection survives.
 *
 * Failure policy (contract, "Errors Portico writes"): refused, reset or malformed -> 502; no
 * response head within the route's timeout -> 504. That timeout (and per_try_timeout) starts
 * when the whole request has been sent: while the pump waits on the client for body bytes no
 * upstream timer runs, and the client's body_timeout answers 408 if it stalls. A connect failure moves to the next target
 * (round robin, never the same one twice) up to `retries`; a pooled connection found dead
 * before any response byte is retried once on a fresh connection when the request is
 * idempotent and no body byte has been sent. Once a response head has gone to the client a
 * failure can only close the client connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sock.h"
#include "core/time.h"
#include "handler/geoip.h"
#include "handler/netlify_rules.h"
#include "handler/resp_head.h"
#include "server/worker.h"
#include "tls/tls.h"
#include "upstream/balance.h"

#define MAX_CONN_TOKENS 16
#define UOUT_SLACK 64 /* room kept after the head for chunk framing */

void pt_pool_idle_event(struct pt_uconn *u);

enum fail_kind { FAIL_CONNECT, FAIL_CONNECT_TIMEOUT, FAIL_RESET, FAIL_TIMEOUT, FAIL_BAD_RESPONSE };

static void uconn_io(struct pt_io *io, uint32_t events);
static bool start_tls(struct pt_req *r, struct pt_uconn *u);
static uint32_t tls_host_hash(const struct pt_req *r, const struct pt_target_cfg *t);
static void uconn_timeout(struct pt_timer *t);

/* ---- header classification ---- */

/* Hop-by-hop and rebuilt headers (RFC 9110 §7.6.1): never forwarded as received. */
static bool is_hop_by_hop(struct pt_str n)
{
    switch (n.n) {
    case 2:
        return PT_STR_CASEEQ_LIT(n, "te");
    case 7:
        return PT_STR_CASEEQ_LIT(n, "trailer") || PT_STR_CASEEQ_LIT(n, "upgrade");
    case 10:
        return PT_STR_CASEEQ_LIT(n, "connection") || PT_STR_CASEEQ_LIT(n, "keep-alive");
    case 14:
        return PT_STR_CASEEQ_LIT(n, "content-length");
    case 17:
        return PT_STR_CASEEQ_LIT(n, "transfer-encoding");
    default:
        break;
    }
    return n.n > 6 && strncasecmp(n.p, "proxy-", 6) == 0;
}

struct conn_tokens {
    struct pt_str t[MAX_CONN_TOKENS];
    size_t n;
};

/* Collects the options of every Connection header: headers they name are hop-by-hop. */
static void connection_tokens(const struct pt_field *hs, size_t nh, struct conn_tokens *ct)
{
    ct->n = 0;
    for (size_t i = 0; i < nh; i++) {
        if (!PT_STR_CASEEQ_LIT(hs[i].name, "connection"))
            continue;
        const char *p = hs[i].value.p, *end = p + hs[i].value.n;
        while (p < end && ct->n < MAX_CONN_TOKENS) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p > s)
                ct->t[ct->n++] = (struct pt_str){s, (size_t)(p - s)};
        }
    }
}

static bool in_tokens(const struct conn_tokens *ct, struct pt_str n)
{
    for (size_t i = 0; i < ct->n; i++)
        if (pt_str_caseeq(ct->t[i], n.p, n.n))
            return true;
    return false;
}

/* ---- building heads ---- */

struct out {
    char *p;
    size_t n, cap;
    bool overflow;
};

static void put(struct out *o, const void *s, size_t n)
{
    if (o->overflow || o->cap - o->n < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_str(struct out *o, struct pt_str s)
{
    put(o, s.p, s.n);
}

static void put_header(struct out *o, const char *name, size_t nlen, const char *val, size_t vlen)
{
    put(o, name, nlen);
    PUT_LIT(o, ": ");
    put(o, val, vlen);
    PUT_LIT(o, "\r\n");
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    put(o, tmp, (size_t)n);
}

static void put_ops(struct out *o, const struct pt_header_ops *ops)
{
    for (size_t i = 0; i < ops->n_set; i++)
        put_header(o, ops->set[i].name, ops->set[i].name_len, ops->set[i].value,
                   ops->set[i].value_len);
    for (size_t i = 0; i < ops->n_add; i++)
        put_header(o, ops->add[i].name, ops->add[i].name_len, ops->add[i].value,
                   ops->add[i].value_len);
}

static bool has_template(const char *s)
{
    return strchr(s, ':') || strchr(s, '$');
}

/* Writes the path (and query) to send upstream into o. */
static int build_path(struct out *o, const struct pt_req *r, const struct pt_route_match *m,
                      const char *path, size_t path_len, struct pt_str query)
{
    const struct pt_proxy_cfg *pc = &r->route->proxy;
    char tmp[8192];
    /* A Netlify proxy rule's URL path is the whole target path, template or not. */
    if (pc->to_path && pc->to_path[0] && (has_template(pc->to_path) || r->route->nf)) {
        ssize_t n = pt_route_expand(pc->to_path, m, tmp, sizeof(tmp));
        if (n < 0)
            return 414;
        put(o, tmp, (size_t)n);
        if (memchr(tmp, '?', (size_t)n))
            return PT_OK;
    } else {
        const char *prefix = pc->to_path && pc->to_path[0] ? pc->to_path : r->target->base_path;
        put(o, prefix, strlen(prefix));
        const char *rest = path;
        size_t rest_len = path_len;
        if (pc->strip_prefix && m->strip_len <= path_len) {
            rest += m->strip_len;
            rest_len -= m->strip_len;
        }
        if (rest_len == 0 || rest[0] != '/') {
            if (rest_len == 0) {
                rest = "/";
                rest_len = 1;
            } else {
                PUT_LIT(o, "/");
            }
        }
        ssize_t n = pt_path_encode(rest, rest_len, tmp, sizeof(tmp));
        if (n < 0)
            return 414;
        put(o, tmp, (size_t)n);
    }
    if (query.p) {
        PUT_LIT(o, "?");
        put_str(o, query);
    }
    return PT_OK;
}

static const struct pt_listen_cfg *listen_of(const struct pt_req *r)
{
    return r->c->listen_idx < r->cfg->n_listens ? &r->cfg->listens[r->c->listen_idx] : NULL;
}

static bool is_client_cert_header(const struct pt_req *r, struct pt_str n)
{
    const struct pt_listen_cfg *l = listen_of(r);
    if (!l)
        return false;
    return (l->client_subject_header &&
            pt_str_caseeq(n, l->client_subject_header, strlen(l->client_subject_header))) ||
           (l->client_fingerprint_header &&
            pt_str_caseeq(n, l->client_fingerprint_header, strlen(l->client_fingerprint_header)));
}

/* The verified client certificate's subject and fingerprint, in the headers the listener
   names (mTLS). Nothing when no certificate was verified. */
static void put_client_cert(struct out *o, const struct pt_req *r)
{
    const struct pt_listen_cfg *l = listen_of(r);
    if (!l || !r->c->tls || !pt_tls_peer_verified(r->c->tls))
        return;
    char subject[512], fp[65];
    if (l->client_subject_header && pt_tls_peer_subject(r->c->tls, subject, sizeof(subject)) >= 0)
        put_header(o, l->client_subject_header, strlen(l->client_subject_header), subject,
                   strnlen(subject, sizeof(subject)));
    if (l->client_fingerprint_header && pt_tls_peer_fingerprint(r->c->tls, fp) >= 0)
        put_header(o, l->client_fingerprint_header, strlen(l->client_fingerprint_header), fp,
                   strnlen(fp, sizeof(fp)));
}

static int build_request_head(struct pt_req *r, const struct pt_req_head *h,
                              const struct pt_route_match *m, const char *path, size_t path_len,
                              struct pt_str query)
{
    const struct pt_proxy_cfg *pc = &r->route->proxy;
    const struct pt_config *cfg = r->cfg;
    struct out o = {r->uout.data, 0, r->uout.cap - UOUT_SLACK, false};

    put_str(&o, h->method);
    PUT_LIT(&o, " ");
    int rc = build_path(&o, r, m, path, path_len, query);
    if (rc != PT_OK)
        return rc;
    PUT_LIT(&o, " HTTP/1.1\r\nHost: ");
    if (pc->preserve_host && r->host[0])
        put(&o, r->host, strlen(r->host));
    else
        put(&o, r->target->host_header, strlen(r->target->host_header));
    PUT_LIT(&o, "\r\n");

    struct conn_tokens ct;
    connection_tokens(h->fields, h->n_fields, &ct);
    bool trusted = pt_config_is_trusted_proxy(cfg, &r->c->peer.u.sa);
    struct pt_str xff[8];
    size_t n_xff = 0;
    const struct pt_header_ops *ops = &pc->request;
    for (size_t i = 0; i < h->n_fields; i++) {
        struct pt_str n = h->fields[i].name;
        if (is_hop_by_hop(n) || in_tokens(&ct, n))
            continue;
        switch (n.n) {
        case 4:
            if (PT_STR_CASEEQ_LIT(n, "host"))
                continue;
            break;
        case 6:
            if (PT_STR_CASEEQ_LIT(n, "expect") ||
                (pc->strip_credentials && PT_STR_CASEEQ_LIT(n, "cookie")))
                continue;
            break;
        case 12:
            if (PT_STR_CASEEQ_LIT(n, "x-request-id"))
                continue;
            break;
        case 13:
            if (pc->strip_credentials && PT_STR_CASEEQ_LIT(n, "authorization"))
                continue;
            break;
        case 15:
            if (PT_STR_CASEEQ_LIT(n, "x-forwarded-for")) {
                /* Believed only from trusted peers; else replaced by the peer address. */
                if (trusted && h->fields[i].value.n && n_xff < (size_t)PT_ARRAY_LEN(xff))
                    xff[n_xff++] = h->fields[i].value;
                continue;
            }
            break;
        case 16:
            if (PT_STR_CASEEQ_LIT(n, "x-forwarded-host"))
                continue;
            break;
        case 17:
            if (PT_STR_CASEEQ_LIT(n, "x-forwarded-proto"))
                continue;
            break;
        default:
            break;
        }
        if (pt_kv_has(ops->remove, ops->n_remove, n) || pt_kv_has(ops->set, ops->n_set, n))
            continue;
        if (is_client_cert_header(r, n))
            continue; /* only Portico may say who the client certificate belongs to */
        put_str(&o, n);
        PUT_LIT(&o, ": ");
        put_str(&o, h->fields[i].value);
        PUT_LIT(&o, "\r\n");
    }
    char peer[64];
    size_t pn = pt_sock_ntop(&r->c->peer.u.sa, peer, sizeof(peer));
    PUT_LIT(&o, "X-Forwarded-For: ");
    for (size_t i = 0; i < n_xff; i++) {
        put_str(&o, xff[i]);
        PUT_LIT(&o, ", ");
    }
    put(&o, peer, pn);
    PUT_LIT(&o, "\r\nX-Forwarded-Proto: ");
    if (r->c->tls)
        PUT_LIT(&o, "https\r\n");
    else
        PUT_LIT(&o, "http\r\n");
    put_client_cert(&o, r);
    if (r->host[0]) {
        PUT_LIT(&o, "X-Forwarded-Host: ");
        put(&o, r->host, strlen(r->host));
        PUT_LIT(&o, "\r\n");
    }
    PUT_LIT(&o, "X-Request-Id: ");
    put(&o, r->request_id, r->request_id_len);
    PUT_LIT(&o, "\r\n");
    put_ops(&o, ops);
    if (r->req_body.is_chunked) {
        PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
    } else if (h->content_length >= 0) {
        PUT_LIT(&o, "Content-Length: ");
        put_u64(&o, (uint64_t)h->content_length);
        PUT_LIT(&o, "\r\n");
    }
    PUT_LIT(&o, "\r\n");
    if (o.overflow)
        return 431;
    r->uout.head = 0;
    r->uout.tail = (uint32_t)o.n;
    r->uhead_len = (uint32_t)o.n;
    return PT_OK;
}

/* Gives the client's stream the response head made from the upstream's: the upstream's fields
   less hop-by-hop ones, its Server and X-Request-Id, then (final heads) the response-header
   stage and our framing. */
static int build_response_head(struct pt_req *r, const struct pt_h1_response *resp, bool interim)
{
    struct conn_tokens ct;
    connection_tokens(resp->headers, resp->num_headers, &ct);
    struct pt_resp_head h;
    pt_resp_head_init(&h, resp->status);
    h.reason = resp->reason;
    for (size_t i = 0; i < resp->num_headers; i++) {
        struct pt_str n = resp->headers[i].name;
        if (is_hop_by_hop(n) || in_tokens(&ct, n) || PT_STR_CASEEQ_LIT(n, "server") ||
            PT_STR_CASEEQ_LIT(n, "x-request-id"))
            continue;
        pt_resp_add(&h, n, resp->headers[i].value);
    }
    if (!interim) {
        pt_resp_head_stage(r, &h, true);
        h.is_chunked = r->resp_body.rechunk;
        if (!h.is_chunked && resp->framing.content_length >= 0 && !resp->framing.is_chunked &&
            resp->status != 204 && !(resp->status >= 100 && resp->status < 200))
            h.content_length = resp->framing.content_length;
    }
    return r->stream->send_head(r, &h) < 0 ? PT_ERR : PT_OK;
}

/* ---- upstream connections ---- */

static bool is_idempotent(int method)
{
    return method == PT_METHOD_GET || method == PT_METHOD_HEAD || method == PT_METHOD_PUT ||
           method == PT_METHOD_DELETE || method == PT_METHOD_OPTIONS || method == PT_METHOD_TRACE;
}

static void release_upstream(struct pt_req *r, bool reusable)
{
    struct pt_uconn *u = r->u;
    if (!u)
        return;
    r->u = NULL;
    struct pt_conn *c = r->c;
    if (c->slice && u->in.data && c->slice >= u->in.data && c->slice < u->in.data + u->in.cap) {
        c->slice = NULL; /* never leave the client pointing into a buffer that goes away */
        c->slice_len = 0;
    }
    pt_timer_stop(&u->w->loop, &u->timer);
    if (reusable)
        pt_pool_put(u->w, u, r->ups->keepalive);
    else
        pt_uconn_close(u);
}

/* The timer for the response head of this attempt: per_try_timeout when set (and shorter),
   else the route's timeout. */
static uint32_t head_timeout(struct pt_req *r)
{
    uint32_t pt = r->ups->per_try_timeout_ms;
    r->head_timer_is_per_try = pt && pt < r->timeout_ms;
    return r->head_timer_is_per_try ? pt : r->timeout_ms;
}

#define AFFINITY_COOKIE "portico_affinity"
#define SPLIT_COOKIE "portico_split"

/* Appends "Set-Cookie: name=value; Path=/; HttpOnly; SameSite=Lax" to the response's extra
   lines (split and cookie affinity). */
static void add_set_cookie(struct pt_req *r, const char *name, const char *value, size_t vlen)
{
    size_t room = sizeof(r->set_cookie) - r->set_cookie_len;
    int n =
        snprintf(r->set_cookie + r->set_cookie_len, room,
                 "Set-Cookie: %s=%.*s; Path=/; HttpOnly; SameSite=Lax\r\n", name, (int)vlen, value);
    if (n > 0 && (size_t)n < room)
        r->set_cookie_len += (uint16_t)n;
}

/* Ends the balancer's view of the attempt in progress (in-flight count, latency, outlier
   verdict); once per attempt. */
static void attempt_end(struct pt_req *r, int outcome)
{
    if (!r->attempt_open)
        return;
    r->attempt_open = false;
    uint64_t now = r->c->w->loop.now_ms;
    uint64_t lat_us = (outcome == PT_OUTCOME_OK || outcome == PT_OUTCOME_STATUS_5XX)
                          ? r->head_latency_us
                          : (now - r->attempt_start_ms) * 1000u;
    pt_upstream_on_request_end(r->us, (size_t)r->target_idx, lat_us, outcome, now);
}

#define PICK_FULL 1 /* pick_target: targets are up but all at max_connections */
#define QUEUE_POLL_MS 10

/* Chooses the next untried target with the upstream's balancer. Returns PT_OK, PICK_FULL when
   every available target is at max_connections, or 503 when none is available (all down,
   ejected or tried). */
static int pick_target(struct pt_req *r)
{
    const struct pt_upstream_cfg *ups = r->ups;
    uint64_t now = r->c->w->loop.now_ms;
    struct pt_lb_key key = {r->lb_key, r->lb_key_len};
    for (int tries = 0; tries < 8; tries++) {
        int idx = pt_lb_pick(r->us, &r->ws->lb[ups->index], &key, r->tried_mask, now);
        if (idx == PT_LB_FULL)
            return PICK_FULL;
        if (idx < 0)
            return 503;
        if (idx < 32)
            r->tried_mask |= 1u << idx;
        if (!pt_upstream_on_request_start(r->us, (size_t)idx))
            continue; /* reached max_connections since the pick: choose again */
        r->target_idx = idx;
        r->target = &ups->targets[idx];
        r->attempt_open = true;
        r->attempt_start_ms = now;
        if (ups->balance == PT_BALANCE_COOKIE) {
            const char *tok = pt_lb_cookie_token(r->us, (size_t)idx);
            if (tok && (r->lb_key_len != strlen(tok) || memcmp(r->lb_key, tok, r->lb_key_len)))
                add_set_cookie(r, AFFINITY_COOKIE, tok, strlen(tok));
        }
        return PT_OK;
    }
    return 503;
}

/* Ends the attempt on r->target without a verdict: it never left Portico, which is short of
   file descriptors or memory (err: positive errno of the call named by what). Not the target's
   fault, so nothing counts against it (no ejection, no retry: another target would meet the
   same shortage) and the client gets 503, Portico being unavailable, rather than 502. */
static int local_shortage(struct pt_req *r, const char *what, int err)
{
    pt_log_ratelimited(PT_LOG_WARN,
                       "request %s: upstream \"%s\" target %s not tried: local resource shortage "
                       "in Portico (%s: %s), not the target's fault",
                       r->request_id, r->ups->name, r->target ? r->target->url : "-", what,
                       strerror(err));
    attempt_end(r, PT_OUTCOME_LOCAL);
    return 503;
}

/* Opens (or reuses) a connection to r->target, or to the next untried target when next is
   set. Returns PT_OK or a status: 502 when the target refused at once, 503 when nothing is
   left to try or Portico is short of resources. */
static int connect_next(struct pt_req *r, bool next)
{
    struct pt_worker *w = r->c->w;
    const struct pt_upstream_cfg *ups = r->ups;
    if (next) {
        int rc = pick_target(r);
        if (rc != PT_OK)
            return 503; /* nothing free to retry on (a retry does not queue) */
    }
    const struct pt_target_cfg *t = r->target;
    bool fresh_same_target = !next && r->attempts > 0;
    r->attempts++;
    struct pt_uconn *u = fresh_same_target ? NULL : pt_pool_get(w, &t->addr, tls_host_hash(r, t));
    if (u) {
        u->r = r;
        u->n_requests++;
        r->u = u;
        r->pstate = PT_PS_ACTIVE;
        pt_timer_set(&w->loop, &u->timer, head_timeout(r));
        return PT_OK;
    }
    int in_progress = 0;
    int fd = pt_sock_connect(&t->addr.u.sa, t->addr.len, &in_progress);
    if (fd < 0 && pt_upstream_is_local_shortage(-fd))
        return local_shortage(r, "connect", -fd);
    if (fd < 0) {
        pt_log_ratelimited(PT_LOG_WARN,
                           "request %s: connect to upstream \"%s\" target %s failed: %s",
                           r->request_id, ups->name, t->url, strerror(-fd));
        attempt_end(r, PT_OUTCOME_CONNECT_FAILURE);
        return 502;
    }
    u = calloc(1, sizeof(*u));
    if (!u) {
        close(fd);
        return local_shortage(r, "calloc", ENOMEM);
    }
    u->io.fd = fd;
    u->io.cb = uconn_io;
    u->w = w;
    u->r = r;
    u->addr = t->addr;
    u->tls_host_hash = tls_host_hash(r, t);
    u->is_connecting = in_progress != 0;
    u->can_write = !in_progress;
    u->n_requests = 1;
    pt_timer_init(&u->timer, uconn_timeout);
    int lrc = pt_loop_add(&w->loop, &u->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP, false);
    if (lrc < 0) {
        close(fd);
        free(u);
        return local_shortage(r, "epoll", -lrc); /* ENOMEM or ENOSPC: ours either way */
    }
    r->u = u;
    r->pstate = u->is_connecting ? PT_PS_CONNECTING : PT_PS_ACTIVE;
    if (!u->is_connecting && t->is_https && !start_tls(r, u)) {
        r->u = NULL;
        u->r = NULL;
        pt_uconn_close(u);
        attempt_end(r, PT_OUTCOME_CONNECT_FAILURE);
        return 502;
    }
    /* A TLS handshake counts as connecting: connect_timeout covers it. */
    pt_timer_set(&w->loop, &u->timer,
                 u->is_connecting || u->is_handshaking ? ups->connect_timeout_ms : head_timeout(r));
    return PT_OK;
}

/* Sends Portico's error page instead of a proxied response (nothing was sent yet). */
static void leave_queue(struct pt_req *r);

static void answer_locally(struct pt_req *r, int status)
{
    leave_queue(r);
    attempt_end(r, PT_OUTCOME_OK); /* whatever is still open was not the target's fault */
    r->pstate = PT_PS_NONE;
    if (!r->req_body.is_done)
        r->is_keepalive = false; /* the rest of the request body is never read */
    pt_respond_error(r, status, r->wants_json);
    r->c->again = true; /* pt_conn_run flushes it as a local response */
}

/* Whether a failure of this kind may be retried on another target (upstream retry_on,
   retries and retry budget; never once a body byte went upstream). Consumes budget. */
static bool may_retry(struct pt_req *r, enum fail_kind kind)
{
    const struct pt_upstream_cfg *ups = r->ups;
    if (r->req_body_started || r->retries >= ups->retries)
        return false;
    bool idem = is_idempotent(r->method_id);
    bool ok;
    switch (kind) {
    case FAIL_CONNECT:
    case FAIL_CONNECT_TIMEOUT:
        ok = ups->retry_on & PT_RETRY_CONNECT_FAILURE;
        break;
    case FAIL_RESET:
        ok = (ups->retry_on & PT_RETRY_RESET) && idem;
        break;
    case FAIL_TIMEOUT:
        /* A per-try timeout exists to be retried; the route timeout only with retry_on. */
        ok = ((ups->retry_on & PT_RETRY_TIMEOUT) || r->head_timer_is_per_try) && idem;
        break;
    default:
        ok = false;
    }
    if (!ok)
        return false;
    /* A refused connect sent the target nothing: retrying it elsewhere adds no load anywhere,
       so the budget (which exists to stop retry storms from piling onto backends) does not
       apply. Without this, losing a target under load turned its share into 502s until the
       health check caught up. */
    if (kind == FAIL_CONNECT)
        return true;
    return pt_budget_try_retry(&r->us->budget, ups->retry_budget_pct, r->c->w->loop.now_ms);
}

/* Rewinds the exchange for another attempt: the head is still at the front of uout. */
static void restart_request(struct pt_req *r)
{
    r->uout.head = 0;
    r->uout.tail = r->uhead_len;
    r->head_sent = false;
    r->resp_head_seen = false;
    r->resp_scan = 0;
    memset(&r->resp_body, 0, sizeof(r->resp_body));
}

/* Handles an upstream failure: retry, answer 502/503/504, or (response under way) close. */
static void upstream_failed(struct pt_req *r, enum fail_kind kind)
{
    struct pt_uconn *u = r->u;
    bool was_reused = u && u->n_requests > 1;
    const char *what = kind == FAIL_CONNECT           ? "connect failed"
                       : kind == FAIL_CONNECT_TIMEOUT ? "connect timed out"
                       : kind == FAIL_RESET           ? "connection closed or reset"
                       : kind == FAIL_TIMEOUT         ? "timed out"
                                                      : "malformed response";
    release_upstream(r, false);
    if (!r->req_body_started && kind == FAIL_RESET && was_reused && !r->response_started &&
        is_idempotent(r->method_id)) {
        /* A pooled connection the peer had closed: once, on a fresh connection to the same
           target; not that target's fault, so not counted against it. */
        if (connect_next(r, false) == PT_OK) {
            restart_request(r);
            return;
        }
    }
    int outcome = kind == FAIL_CONNECT || kind == FAIL_CONNECT_TIMEOUT ? PT_OUTCOME_CONNECT_FAILURE
                  : kind == FAIL_TIMEOUT                               ? PT_OUTCOME_TIMEOUT
                                                                       : PT_OUTCOME_RESET;
    attempt_end(r, outcome);
    pt_log_ratelimited(PT_LOG_WARN, "request %s: upstream \"%s\" target %s %s", r->request_id,
                       r->ups->name, r->target ? r->target->url : "-", what);
    if (r->response_started) {
        pt_conn_close(r->c); /* the head went out: closing is the only signal left */
        return;
    }
    int status = kind == FAIL_TIMEOUT || kind == FAIL_CONNECT_TIMEOUT ? 504 : 502;
    while (may_retry(r, kind)) {
        r->retries++;
        int rc = connect_next(r, true);
        if (rc == PT_OK) {
            restart_request(r);
            return;
        }
        if (rc == 503)
            break;           /* nothing left to try: answer for the failure seen */
        kind = FAIL_CONNECT; /* refused at once: on to the next one */
        status = 502;
    }
    answer_locally(r, status);
}

static void uconn_io(struct pt_io *io, uint32_t events)
{
    struct pt_uconn *u = PT_CONTAINER_OF(io, struct pt_uconn, io);
    if (!u->r) {
        /* Idle in the pool: input, hang-up or error mean the peer closed it or is out of
           step; becoming writable means nothing. */
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            pt_pool_idle_event(u);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        u->can_read = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        u->saw_hup = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        u->can_write = true;
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && u->tls_read_wants_write) {
        u->tls_read_wants_write = false;
        u->can_read = true;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && u->tls_write_wants_read) {
        u->tls_write_wants_read = false;
        u->can_write = true;
    }
    pt_conn_run(u->r->c);
}

static void uconn_timeout(struct pt_timer *t)
{
    struct pt_uconn *u = PT_CONTAINER_OF(t, struct pt_uconn, timer);
    if (!u->r) {
        pt_pool_idle_event(u);
        return;
    }
    struct pt_req *r = u->r;
    struct pt_conn *c = r->c;
    if (u->is_connecting || u->is_handshaking)
        upstream_failed(r, FAIL_CONNECT_TIMEOUT);
    else if (!r->resp_head_seen)
        upstream_failed(r, FAIL_TIMEOUT);
    else
        upstream_failed(r, FAIL_RESET); /* idle mid-body: the response cannot be completed */
    pt_conn_run(c);
}

/* ---- upstream I/O (plain or TLS) ---- */

/* Reads from the upstream. Returns bytes, 0 at EOF, -EAGAIN (flags updated) or -errno. */
static ssize_t uconn_read(struct pt_uconn *u, void *buf, size_t len)
{
    for (;;) {
        ssize_t n;
        if (u->tls) {
            n = pt_tls_read(u->tls, buf, len);
            if (n == -EAGAIN) {
                if (pt_tls_conn_want(u->tls) == PT_TLS_WANT_WRITE) {
                    u->tls_read_wants_write = true;
                    u->can_write = false;
                }
                u->can_read = false;
            }
            return n >= 0 || n == -EAGAIN ? n : -EIO;
        }
        n = read(u->io.fd, buf, len);
        if (n >= 0) {
            if (n > 0 && (size_t)n < len && !u->saw_hup)
                u->can_read = false; /* drained; edge-triggered epoll reports the next byte */
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            u->can_read = false;
        return -errno;
    }
}

static ssize_t uconn_writev(struct pt_uconn *u, const struct iovec *iov, int n_iov)
{
    for (;;) {
        ssize_t n;
        if (u->tls) {
            n = pt_tls_writev(u->tls, iov, n_iov);
            if (n == -EAGAIN) {
                if (pt_tls_conn_want(u->tls) == PT_TLS_WANT_READ) {
                    u->tls_write_wants_read = true;
                    u->can_read = false;
                }
                u->can_write = false;
            }
            return n >= 0 || n == -EAGAIN ? n : -EIO;
        }
        n = writev(u->io.fd, iov, n_iov);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            u->can_write = false;
        return -errno;
    }
}

/* Starts TLS on a connected https target (SNI and verification against the URL's host). */
static bool start_tls(struct pt_req *r, struct pt_uconn *u)
{
    const struct pt_snapshot *snap = r->ws->s;
    struct pt_tls_client_ctx *cc =
        r->ups->index < snap->n_ups_tls ? snap->ups_tls[r->ups->index] : NULL;
    if (!cc)
        return false;
    u->tls = pt_tls_client_new(cc, u->io.fd, r->target->host, r->target->host_header);
    u->is_handshaking = u->tls != NULL;
    return u->tls != NULL;
}

/* Drives the upstream TLS handshake. Returns PT_OK when done, PT_AGAIN, or PT_ERR. */
static int upstream_handshake(struct pt_req *r, struct pt_uconn *u)
{
    int rc = pt_tls_handshake(u->tls);
    if (rc == PT_OK) {
        u->is_handshaking = false;
        return PT_OK;
    }
    if (rc == PT_TLS_WANT_READ) {
        u->can_read = false;
        return PT_AGAIN;
    }
    if (rc == PT_TLS_WANT_WRITE) {
        u->can_write = false;
        return PT_AGAIN;
    }
    pt_log_ratelimited(PT_LOG_WARN, "request %s: TLS to upstream \"%s\" target %s failed: %s",
                       r->request_id, r->ups->name, r->target->url, pt_tls_conn_error(u->tls));
    return PT_ERR;
}

/* Pool key part of a TLS connection: the SNI host and the client context (trust anchors,
   verification, client certificate). A connection verified for one upstream must never serve
   another whose settings differ, even to the same address and name. */
static uint32_t tls_host_hash(const struct pt_req *r, const struct pt_target_cfg *t)
{
    if (!t->is_https)
        return 0;
    const struct pt_snapshot *snap = r->ws->s;
    uintptr_t cc = r->ups->index < snap->n_ups_tls ? (uintptr_t)snap->ups_tls[r->ups->index] : 0;
    uint32_t h = 2166136261u;
    for (const char *p = t->host; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (size_t i = 0; i < sizeof(cc); i++)
        h = (h ^ (unsigned char)(cc >> (8 * i))) * 16777619u;
    return h | 1;
}

/* ---- request direction ---- */

static void put_chunk_size(struct pt_buf *b, uint32_t n)
{
    char tmp[16];
    int k = snprintf(tmp, sizeof(tmp), "%x\r\n", n);
    bool ok = pt_buf_put(b, tmp, (size_t)k);
    PT_BUG_ON(!ok);
}

/* Reads request body bytes from the client into c->in and decides the next slice. Returns
   PT_OK (maybe with a slice), PT_AGAIN (wait for the client) or a status to fail with. */
static int pull_request_body(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    struct pt_body *b = &r->req_body;
    if (b->pending || b->is_done)
        return PT_OK;
    if (pt_buf_len(&c->in) == 0) {
        if (c->is_eof)
            return 400;
        if (!c->can_read) {
            pt_timer_set(&c->w->loop, &c->timer, r->cfg->limits.body_timeout_ms);
            return PT_AGAIN;
        }
        if (!c->in.data && pt_buf_alloc(&c->in, PT_BUF_SMALL) < 0)
            return 503;
        c->in.head = c->in.tail = 0;
        ssize_t n = pt_conn_read(c, c->in.data, c->in.cap);
        if (n == 0) {
            c->is_eof = true;
            return 400;
        }
        if (n == -EAGAIN) {
            pt_timer_set(&c->w->loop, &c->timer, r->cfg->limits.body_timeout_ms);
            return PT_AGAIN;
        }
        if (n < 0)
            return 400;
        c->in.tail = (uint32_t)n;
        pt_timer_set(&c->w->loop, &c->timer, r->cfg->limits.body_timeout_ms);
    }
    uint32_t len = pt_buf_len(&c->in);
    if (b->is_chunked) {
        size_t dlen = len;
        ssize_t rc = pt_h1_chunked_decode(&b->dec, pt_buf_rpos(&c->in), &dlen);
        if (rc == PT_H1_EBAD)
            return 400;
        c->in.tail = c->in.head + (uint32_t)dlen + (rc > 0 ? (uint32_t)rc : 0);
        b->pending = (uint32_t)dlen;
        b->left += dlen; /* for chunked bodies: total decoded so far */
        if (b->left > r->cfg->limits.body_size)
            return 413;
        if (rc >= 0)
            b->is_done = true;
        if (b->pending)
            put_chunk_size(&r->uout, b->pending);
        if (b->is_done && !b->pending)
            pt_buf_put(&r->uout, "0\r\n\r\n", 5);
    } else {
        b->pending = (uint32_t)PT_MIN((uint64_t)len, b->left);
        b->left -= b->pending;
        if (b->left == 0)
            b->is_done = true;
    }
    if (pt_buf_len(&c->in) == 0)
        c->in.head = c->in.tail = 0;
    return PT_OK;
}

/* Writes the upstream head and body slices. Returns PT_OK (progress or waiting), or a fail
   kind + 1000 for a dead upstream, or a status (4xx/5xx) to answer the client with. */
static int push_upstream(struct pt_req *r, bool *progress)
{
    struct pt_conn *c = r->c;
    struct pt_uconn *u = r->u;
    struct pt_body *b = &r->req_body;
    for (;;) {
        if (r->head_sent && !b->pending && !b->is_done) {
            int rc = pull_request_body(r);
            if (rc == PT_AGAIN) {
                /* Waiting on the client, whose body_timeout runs (408 when it stalls). The
                   target is not late for a request it has not had yet: no upstream timer
                   runs until the request is sent (an early response still arrives). */
                if (!r->resp_head_seen)
                    pt_timer_stop(&c->w->loop, &u->timer);
                return PT_OK;
            }
            if (rc != PT_OK)
                return rc;
        }
        uint32_t ulen = pt_buf_len(&r->uout);
        uint32_t slen = r->head_sent || ulen == 0 ? b->pending : 0;
        if (ulen == 0 && slen == 0)
            return PT_OK;
        if (!u->can_write)
            return PT_OK;
        struct iovec iov[2];
        int n_iov = 0;
        if (ulen)
            iov[n_iov++] = (struct iovec){pt_buf_rpos(&r->uout), ulen};
        if (slen)
            iov[n_iov++] = (struct iovec){pt_buf_rpos(&c->in), slen};
        ssize_t n = uconn_writev(u, iov, n_iov);
        if (n == -EAGAIN)
            return PT_OK;
        if (n < 0)
            return 1000 + FAIL_RESET;
        *progress = true;
        size_t k = PT_MIN((size_t)n, (size_t)ulen);
        pt_buf_consume(&r->uout, (uint32_t)k);
        if (pt_buf_len(&r->uout) == 0)
            r->head_sent = true;
        k = (size_t)n - k;
        if (k) {
            r->req_body_started = true;
            pt_buf_consume(&c->in, (uint32_t)k);
            b->pending -= (uint32_t)k;
            if (b->pending == 0 && b->is_chunked) {
                pt_buf_put(&r->uout, "\r\n", 2);
                if (b->is_done)
                    pt_buf_put(&r->uout, "0\r\n\r\n", 5);
            }
        }
        if (r->head_sent && !b->pending && b->is_done && pt_buf_len(&r->uout) == 0) {
            /* Whole request sent: the response-head timeout (route timeout or
               per_try_timeout) starts now, and only now. */
            if (!r->resp_head_seen)
                pt_timer_set(&c->w->loop, &u->timer, head_timeout(r));
            pt_timer_stop(&c->w->loop, &c->timer);
            return PT_OK;
        }
        /* Part of the request went: the same span bounds how long the target may take to
           accept the rest (it is idle, not late, only while we wait on the client above). */
        if (!r->resp_head_seen)
            pt_timer_set(&c->w->loop, &u->timer, head_timeout(r));
    }
}

/* ---- response direction ---- */

/* A final status the upstream lists in retry_on, for a request that can be replayed whole
   (idempotent, no body), with a retry, the budget and an untried target left. */
static bool retry_on_status(struct pt_req *r, int status)
{
    const struct pt_upstream_cfg *ups = r->ups;
    bool listed = false;
    for (size_t i = 0; i < ups->n_retry_statuses && !listed; i++)
        listed = ups->retry_statuses[i] == status;
    if (!listed || r->has_body || !is_idempotent(r->method_id) || r->retries >= ups->retries)
        return false;
    if (ups->n_targets <= 32 && (r->tried_mask | ((1u << ups->n_targets) - 1u)) == r->tried_mask)
        return false; /* every target tried */
    return pt_budget_try_retry(&r->us->budget, ups->retry_budget_pct, r->c->w->loop.now_ms);
}

static int handle_response_head(struct pt_req *r, size_t hl)
{
    struct pt_uconn *u = r->u;
    struct pt_worker *w = r->c->w;
    struct pt_h1_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.headers = w->hdrs;
    resp.num_headers = w->hdrs_cap;
    int rc = pt_h1_parse_response(pt_buf_rpos(&u->in), hl, &resp);
    if (rc < 0 || resp.status == 101)
        return 1000 + FAIL_BAD_RESPONSE;
    if (resp.status < 200) {
        /* Interim responses: 100 is ours to give (we removed Expect); others go to HTTP/1.1
           clients as they are (RFC 9110 §15.2). */
        if (resp.status != 100 && r->minor_version == 1 &&
            build_response_head(r, &resp, true) != PT_OK)
            return 1000 + FAIL_BAD_RESPONSE;
        pt_buf_consume(&u->in, (uint32_t)hl);
        return PT_OK;
    }
    r->head_latency_us = (w->loop.now_ms - r->attempt_start_ms) * 1000u;
    if (retry_on_status(r, resp.status)) {
        /* Another target may do better: drop this response (its connection with it). */
        attempt_end(r, PT_OUTCOME_STATUS_5XX);
        pt_log_ratelimited(PT_LOG_WARN,
                           "request %s: upstream \"%s\" target %s answered %d; retrying",
                           r->request_id, r->ups->name, r->target->url, resp.status);
        release_upstream(r, false);
        r->retries++;
        rc = connect_next(r, true);
        if (rc != PT_OK)
            return rc == 503 ? 503 : 502;
        restart_request(r);
        return PT_OK;
    }
    struct pt_body *b = &r->resp_body;
    bool no_body = r->is_head || resp.status == 204 || resp.status == 304;
    if (no_body) {
        b->is_done = true;
    } else if (resp.framing.is_chunked) {
        b->is_chunked = true;
    } else if (resp.framing.content_length >= 0) {
        b->left = (uint64_t)resp.framing.content_length;
        b->is_done = b->left == 0;
    } else {
        b->is_close_delimited = true;
    }
    r->upstream_reusable = !resp.framing.conn_close && !b->is_close_delimited &&
                           (resp.minor_version == 1 || resp.framing.conn_keepalive);
    if (!no_body && (b->is_chunked || b->is_close_delimited)) {
        if (r->minor_version == 1)
            b->rechunk = true;
        else
            r->is_keepalive = false;
    }
    if (!r->req_body.is_done)
        r->is_keepalive = false; /* answered before the body ended: the rest is never read */
    if (r->c->w->is_draining)
        r->is_keepalive = false; /* shutting down: say so rather than reset a next request */
    if (build_response_head(r, &resp, false) != PT_OK)
        return 1000 + FAIL_BAD_RESPONSE;
    pt_buf_consume(&u->in, (uint32_t)hl);
    r->resp_head_seen = true;
    r->response_started = true;
    r->status = resp.status;
    pt_timer_set(&w->loop, &u->timer, r->timeout_ms);
    if (b->is_done && b->rechunk)
        pt_buf_put(&r->c->out, "0\r\n\r\n", 5);
    return PT_OK;
}

/* Sets the next response body slice from u->in. */
static int next_response_slice(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    struct pt_uconn *u = r->u;
    struct pt_body *b = &r->resp_body;
    uint32_t len = pt_buf_len(&u->in);
    if (len == 0 || b->pending || b->is_done)
        return PT_OK;
    if (b->is_chunked) {
        size_t dlen = len;
        ssize_t rc = pt_h1_chunked_decode(&b->dec, pt_buf_rpos(&u->in), &dlen);
        if (rc == PT_H1_EBAD)
            return 1000 + FAIL_BAD_RESPONSE;
        u->in.tail = u->in.head + (uint32_t)dlen + (rc > 0 ? (uint32_t)rc : 0);
        b->pending = (uint32_t)dlen;
        if (rc >= 0) {
            b->is_done = true;
            if (rc > 0)
                r->upstream_reusable = false; /* bytes after the body: out of sync */
        }
    } else if (b->is_close_delimited) {
        b->pending = len;
    } else {
        b->pending = (uint32_t)PT_MIN((uint64_t)len, b->left);
        b->left -= b->pending;
        if (b->left == 0) {
            b->is_done = true;
            if (len > b->pending)
                r->upstream_reusable = false;
        }
    }
    if (b->pending) {
        if (b->rechunk)
            put_chunk_size(&c->out, b->pending);
        c->slice = pt_buf_rpos(&u->in);
        c->slice_len = b->pending;
    } else if (b->is_done && b->rechunk) {
        pt_buf_put(&c->out, "0\r\n\r\n", 5);
    }
    if (b->pending == 0 && pt_buf_len(&u->in) == 0)
        u->in.head = u->in.tail = 0;
    return PT_OK;
}

/* Reads from the upstream while there is room and a use for the bytes. */
static int pull_upstream(struct pt_req *r, bool *progress)
{
    struct pt_uconn *u = r->u;
    struct pt_body *b = &r->resp_body;
    for (;;) {
        if (r->resp_head_seen) {
            int rc = next_response_slice(r);
            if (rc != PT_OK)
                return rc;
            if (b->pending || b->is_done)
                return PT_OK; /* wait for the client to take the slice */
        } else if (pt_buf_len(&u->in)) {
            ssize_t hl =
                pt_h1_find_head_end(pt_buf_rpos(&u->in), pt_buf_len(&u->in), &r->resp_scan);
            if (hl > 0) {
                r->resp_scan = 0;
                int rc = handle_response_head(r, (size_t)hl);
                if (rc != PT_OK)
                    return rc;
                *progress = true;
                if (r->u != u)
                    return PT_OK; /* retried on another target: the pump starts over */
                continue;
            }
            if (pt_buf_room(&u->in) == 0 && u->in.head == 0)
                return 1000 + FAIL_BAD_RESPONSE; /* head larger than the buffer */
        }
        if (!u->can_read)
            return PT_OK;
        if (!u->in.data && pt_buf_alloc(&u->in, PT_BUF_LARGE) < 0)
            return 503;
        if (pt_buf_room(&u->in) == 0)
            pt_buf_compact(&u->in);
        ssize_t n = uconn_read(u, u->in.data + u->in.tail, pt_buf_room(&u->in));
        if (n > 0) {
            u->in.tail += (uint32_t)n;
            *progress = true;
            if (r->resp_head_seen)
                pt_timer_set(&r->c->w->loop, &u->timer, r->timeout_ms);
            continue;
        }
        if (n == 0) {
            u->is_eof = true;
            u->can_read = false;
            if (r->resp_head_seen && b->is_close_delimited) {
                b->is_done = true;
                if (b->rechunk)
                    pt_buf_put(&r->c->out, "0\r\n\r\n", 5);
                *progress = true;
                return PT_OK;
            }
            return 1000 + FAIL_RESET;
        }
        if (n == -EAGAIN)
            return PT_OK;
        return 1000 + FAIL_RESET;
    }
}

/* ---- the pump ---- */

static bool check_connected(struct pt_req *r)
{
    struct pt_uconn *u = r->u;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        pt_log_ratelimited(PT_LOG_WARN,
                           "request %s: connect to upstream \"%s\" target %s failed: %s",
                           r->request_id, r->ups->name, r->target->url, strerror(err));
        return false;
    }
    u->is_connecting = false;
    r->pstate = PT_PS_ACTIVE;
    if (r->target->is_https) {
        if (!start_tls(r, u))
            return false;
        u->can_read = true; /* try the handshake at once */
        return true;        /* connect_timeout keeps running through the handshake */
    }
    pt_timer_set(&r->c->w->loop, &u->timer, head_timeout(r));
    return true;
}

static void finish(struct pt_req *r)
{
    attempt_end(r, r->status >= 500 ? PT_OUTCOME_STATUS_5XX : PT_OUTCOME_OK);
    bool reusable = r->upstream_reusable && r->req_body.is_done && !r->req_body.pending &&
                    r->head_sent && pt_buf_len(&r->uout) == 0 && r->u &&
                    pt_buf_len(&r->u->in) == 0 && !r->u->is_eof;
    release_upstream(r, reusable);
    r->pstate = PT_PS_DONE;
    if (!r->req_body.is_done)
        r->is_keepalive = false;
    pt_timer_stop(&r->c->w->loop, &r->c->timer);
    pt_conn_request_done(r->c);
}

void pt_proxy_run(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    if (r->expect_continue && !r->req_body.is_done && r->minor_version == 1 &&
        pt_buf_len(&c->in) == 0 && !r->response_started) {
        r->expect_continue = false;
        if (c->out.data || pt_buf_alloc(&c->out, PT_BUF_SMALL) == 0)
            pt_buf_put(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    /* Bounded: a stream whose both sockets stay ready yields after a few buffers so the
       worker's other connections are served; the post resumes it (edge-triggered epoll would
       not report the sockets again). */
    for (int round = 0;; round++) {
        if (round == 64) {
            pt_conn_yield(c);
            return;
        }
        if (c->is_closed || c->r != r || r->pstate == PT_PS_NONE)
            return;
        bool progress = false;
        struct pt_uconn *u = r->u;
        int rc = PT_OK;
        if (u && u->is_connecting) {
            if (!u->can_write && !u->can_read)
                goto client_side;
            if (!check_connected(r)) {
                upstream_failed(r, FAIL_CONNECT);
                continue;
            }
            progress = true;
        }
        if (u && !u->is_connecting && u->is_handshaking) {
            if (!u->can_write && !u->can_read)
                goto client_side;
            int hs = upstream_handshake(r, u);
            if (hs == PT_ERR) {
                upstream_failed(r, FAIL_CONNECT);
                continue;
            }
            if (hs == PT_AGAIN)
                goto client_side;
            pt_timer_set(&r->c->w->loop, &u->timer, head_timeout(r));
            progress = true;
        }
        if (u && !u->is_connecting && !u->is_handshaking) {
            rc = push_upstream(r, &progress);
            if (rc == PT_OK)
                rc = pull_upstream(r, &progress);
            if (rc >= 1000) {
                upstream_failed(r, (enum fail_kind)(rc - 1000));
                continue;
            }
            if (rc != PT_OK) {
                if (r->response_started) {
                    pt_conn_close(c);
                    return;
                }
                release_upstream(r, false);
                answer_locally(r, rc);
                return;
            }
        }
    client_side:;
        uint32_t had_slice = c->slice_len;
        int fr = pt_conn_flush(c);
        if (fr == PT_ERR) {
            pt_conn_close(c);
            return;
        }
        if (fr == PT_OK && r->u) {
            struct pt_body *b = &r->resp_body;
            if (b->pending) {
                pt_buf_consume(&r->u->in, b->pending);
                b->pending = 0;
                c->slice = NULL;
                if (b->rechunk) {
                    pt_buf_put(&c->out, "\r\n", 2);
                    if (b->is_done)
                        pt_buf_put(&c->out, "0\r\n\r\n", 5);
                }
                progress = true;
            }
            if (b->is_done && pt_buf_len(&c->out) == 0 && r->resp_head_seen) {
                finish(r);
                return;
            }
        } else if (fr == PT_OK && !r->u && r->resp_head_seen && r->resp_body.is_done) {
            finish(r);
            return;
        }
        if (had_slice != c->slice_len)
            progress = true;
        if (!progress)
            return;
    }
}

/* ---- the max_pending queue ---- */

static void leave_queue(struct pt_req *r)
{
    if (r->pstate != PT_PS_QUEUED)
        return;
    pt_timer_stop(&r->c->w->loop, &r->queue_timer);
    atomic_fetch_sub_explicit(&r->us->pending, 1, memory_order_relaxed);
    r->pstate = PT_PS_NONE;
}

/* The queue is polled, not signalled: a slot may free up on any worker, and a 10 ms look at a
   few atomics is cheaper than cross-thread wake-ups for what is an overload path. */
static void queue_poll(struct pt_timer *t)
{
    struct pt_req *r = PT_CONTAINER_OF(t, struct pt_req, queue_timer);
    struct pt_conn *c = r->c;
    int rc = pick_target(r);
    if (rc == PICK_FULL && c->w->loop.now_ms < r->start_ms + r->timeout_ms) {
        pt_timer_set(&c->w->loop, &r->queue_timer, QUEUE_POLL_MS);
        return;
    }
    leave_queue(r);
    if (rc == PT_OK)
        rc = connect_next(r, false);
    if (rc == PICK_FULL)
        pt_log_ratelimited(PT_LOG_WARN, "request %s: upstream \"%s\": no target freed up in time",
                           r->request_id, r->ups->name);
    if (rc != PT_OK)
        answer_locally(r, 503);
    pt_conn_run(c);
}

static int enqueue(struct pt_req *r)
{
    int n = atomic_fetch_add_explicit(&r->us->pending, 1, memory_order_relaxed);
    if ((uint32_t)n >= r->ups->max_pending) {
        atomic_fetch_sub_explicit(&r->us->pending, 1, memory_order_relaxed);
        return 503;
    }
    r->pstate = PT_PS_QUEUED;
    pt_timer_init(&r->queue_timer, queue_poll);
    pt_timer_set(&r->c->w->loop, &r->queue_timer, QUEUE_POLL_MS);
    return PT_OK;
}

/* ---- request start: split, balancer keys ---- */

/* Finds "name=value" in a "; "-separated list (Cookie) or an "&"-separated one (query). */
static bool find_pair(struct pt_str list, char sep, const char *name, size_t n, struct pt_str *val)
{
    const char *p = list.p, *end = list.p + list.n;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == sep))
            p++;
        const char *e = memchr(p, sep, (size_t)(end - p));
        if (!e)
            e = end;
        if ((size_t)(e - p) > n && p[n] == '=' && memcmp(p, name, n) == 0) {
            *val = (struct pt_str){p + n + 1, (size_t)(e - p - n - 1)};
            return true;
        }
        p = e;
    }
    return false;
}

static bool find_cookie(const struct pt_req_head *h, const char *name, size_t n, struct pt_str *val)
{
    for (size_t i = 0; i < h->n_fields; i++)
        if (PT_STR_CASEEQ_LIT(h->fields[i].name, "cookie") &&
            find_pair(h->fields[i].value, ';', name, n, val))
            return true;
    return false;
}

/* Picks the arm of a split route: a tester's override (force_header, force_cookie), then the
   arm the client's split cookie names, then a weighted random draw remembered in that cookie so
   the user stays on one side. */
static const struct pt_upstream_cfg *choose_split(struct pt_req *r, const struct pt_req_head *h)
{
    const struct pt_proxy_cfg *pc = &r->route->proxy;
    for (size_t i = 0; i < pc->n_split; i++) {
        const struct pt_split_cfg *a = &pc->split[i];
        struct pt_str v;
        if (a->force_header) {
            v = pt_req_field(h, a->force_header, a->force_header_len);
            if (v.p && pt_str_eq(v, a->force_header_value, a->force_header_value_len))
                return a->upstream;
        }
        if (a->force_cookie && find_cookie(h, a->force_cookie, a->force_cookie_len, &v) &&
            (!a->force_cookie_value ||
             pt_str_eq(v, a->force_cookie_value, a->force_cookie_value_len)))
            return a->upstream;
    }
    struct pt_str v;
    if (find_cookie(h, SPLIT_COOKIE, sizeof(SPLIT_COOKIE) - 1, &v))
        for (size_t i = 0; i < pc->n_split; i++)
            if (pc->split[i].weight && pt_str_eq(v, pc->split[i].to, strlen(pc->split[i].to)))
                return pc->split[i].upstream;
    uint64_t total = 0;
    for (size_t i = 0; i < pc->n_split; i++)
        total += pc->split[i].weight;
    uint64_t x = pt_worker_random(r->c->w) % (total ? total : 1);
    size_t pick = 0;
    for (size_t i = 0; i < pc->n_split; i++) {
        if (x < pc->split[i].weight) {
            pick = i;
            break;
        }
        x -= pc->split[i].weight;
    }
    add_set_cookie(r, SPLIT_COOKIE, pc->split[pick].to, strlen(pc->split[pick].to));
    return pc->split[pick].upstream;
}

static void set_lb_key(struct pt_req *r, struct pt_str v)
{
    size_t n = PT_MIN(v.n, sizeof(r->lb_key));
    if (n)
        memcpy(r->lb_key, v.p, n);
    r->lb_key_len = (uint16_t)n;
}

/* Captures what the hash or cookie balancer needs from the request, which is gone by the time
   a retry picks again. */
static void capture_lb_key(struct pt_req *r, const struct pt_req_head *h, const char *path,
                           size_t path_len, struct pt_str query)
{
    const struct pt_upstream_cfg *ups = r->ups;
    struct pt_str v = {NULL, 0};
    r->lb_key_len = 0;
    if (ups->balance == PT_BALANCE_COOKIE) {
        if (find_cookie(h, AFFINITY_COOKIE, sizeof(AFFINITY_COOKIE) - 1, &v))
            set_lb_key(r, v);
        return;
    }
    if (ups->balance != PT_BALANCE_HASH)
        return;
    const struct pt_hash_key_cfg *k = &ups->hash_key;
    switch (k->kind) {
    case PT_HASH_KEY_IP: {
        /* the client behind trusted_proxies (X-Forwarded-For), as for Country= */
        struct pt_sockaddr client;
        if (!pt_geoip_client_addr(r->cfg, &r->c->peer, h, &client))
            client = r->c->peer;
        char ip[64];
        size_t n = pt_sock_ntop(&client.u.sa, ip, sizeof(ip));
        set_lb_key(r, (struct pt_str){ip, n});
        return;
    }
    case PT_HASH_KEY_PATH:
        set_lb_key(r, (struct pt_str){path, path_len});
        return;
    case PT_HASH_KEY_HEADER:
        v = pt_req_field(h, k->name, k->name_len);
        break;
    case PT_HASH_KEY_COOKIE:
        find_cookie(h, k->name, k->name_len, &v);
        break;
    case PT_HASH_KEY_QUERY:
        if (query.p)
            find_pair(query, '&', k->name, k->name_len, &v);
        break;
    default:
        break;
    }
    set_lb_key(r, v);
}

int pt_proxy_start(struct pt_req *r, const struct pt_req_head *h, const struct pt_route_match *m,
                   const char *path, size_t path_len, struct pt_str query)
{
    const struct pt_proxy_cfg *pc = &r->route->proxy;
    r->ups = pc->n_split ? choose_split(r, h) : pc->upstream;
    r->us = &r->ws->s->urt->ups[r->ups->index];
    r->upstream_name = r->ups->name;
    r->timeout_ms = pc->timeout_ms ? pc->timeout_ms : 30000;
    pt_budget_on_request(&r->us->budget, r->c->w->loop.now_ms);
    capture_lb_key(r, h, path, path_len, query);
    /* The rewritten head may grow by what Portico adds (X-Forwarded-*, set/add rules). */
    uint32_t cap =
        pt_buf_class((uint32_t)PT_MIN((uint64_t)r->cfg->limits.header_size + 8192u, 1u << 24));
    if (pt_buf_alloc(&r->uout, cap) < 0)
        return 503;
    /* Target first: the head names its Host and base path. */
    int rc = pick_target(r);
    if (rc == PICK_FULL) {
        /* Wait for a free target in the upstream's bounded queue. The head is built for the
           first target now: the request's headers are gone by the time one frees up. */
        r->target = &r->ups->targets[0];
        rc = build_request_head(r, h, m, path, path_len, query);
        if (rc != PT_OK)
            return rc;
        return enqueue(r);
    }
    if (rc != PT_OK)
        return rc;
    rc = build_request_head(r, h, m, path, path_len, query);
    if (rc != PT_OK)
        return rc;
    rc = connect_next(r, false);
    while (rc == 502 && r->retries < r->ups->retries &&
           pt_budget_try_retry(&r->us->budget, r->ups->retry_budget_pct, r->c->w->loop.now_ms)) {
        r->retries++;
        rc = connect_next(r, true);
    }
    return rc;
}

void pt_proxy_abort(struct pt_req *r)
{
    leave_queue(r);
    attempt_end(r, PT_OUTCOME_OK); /* the client went away: not the target's fault */
    release_upstream(r, false);
    r->pstate = PT_PS_NONE;
}

void pt_proxy_client_timeout(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    bool write_blocked = (pt_buf_len(&c->out) || c->slice_len) && !c->can_write;
    bool body_wait =
        !r->req_body.is_done && !r->req_body.pending && pt_buf_len(&c->in) == 0 && !c->can_read;
    if (write_blocked) {
        pt_conn_close(c);
        return;
    }
    if (body_wait) {
        if (r->response_started) {
            pt_conn_close(c);
            return;
        }
        release_upstream(r, false);
        answer_locally(r, 408);
    }
}
