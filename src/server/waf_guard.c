/*
 * waf_guard.c - the WAF's place in the request pipeline (the last guard of run_guards) and its
 * request-body stage; the engine is guard/waf.c.
 *
 * Per request with a waf: one transaction (guard/waf.h), freed by the request's end cleanup
 * (pt_req_on_end), whatever way the request ends. Its head (connection, request line, fields)
 * is judged at once (phase 1). A request without a body, or one whose body no handler reads
 * (a local answer: static, redirect, respond), runs phase 2 right after, on no body.
 *
 * A proxied request with a body must be judged before any of it leaves, so the guard pushes a
 * body filter on the request's chain (http/stream.h) and sets r->hold_body: the proxy builds
 * the upstream head, then waits in PT_PS_BODY_WAIT, calling hold() on each wake-up, and picks
 * a target only once hold() says PT_OK. hold() reads the body from the layer below and copies
 * it into one buffer of at most body_limit bytes (grown by doubling, so a small body costs a
 * small buffer), consuming it below so the protocol keeps reading (its own body timeout and
 * limits.body_size still apply). At the end of the body it runs phase 2 on the copy. Then the
 * filter's read_body serves the copy to the proxy as one view, and the layer below afterwards.
 * A body over body_limit (by Content-Length at once, or when the copy would overflow) is
 * refused with 413 (over_limit: refuse), or (over_limit: pass) judged without its body: the
 * bytes already copied are served first, the rest streams from below untouched.
 *
 * While the copy is served, r->req_body.pending and is_done describe the copy (the proxy frames
 * chunks and decides the end from them); the values of the layer below are saved and put back
 * when the copy is gone. The copy's view is the whole copy at once, so the proxy never asks
 * for more while pending is non-zero.
 *
 * A refusal counts PT_CTR_GUARD_WAF_BLOCKED, logs one rate-limited info line with the request
 * id and the rule ids, writes the audit line and answers Portico's 403 page (nothing about the
 * rules). Detect mode writes the audit line and the info line for what would have been
 * refused and lets it through; it counts nothing (the counter is for refusals).
 */
#include "server/waf_guard.h"

#include <stdlib.h>
#include <string.h>

#include "core/counters.h"
#include "core/log.h"
#include "core/sock.h"
#include "guard/waf.h"
#include "handler/geoip.h"
#include "handler/handler.h"
#include "server/pipeline.h"

struct waf_req {
    struct pt_waf_tx *tx;
    const struct pt_waf_cfg *w;
    char *buf;              /* the body's copy (at most w->body_limit bytes) */
    size_t len, cap, pos;   /* copied, allocated, served */
    bool is_held;           /* hold() finished: read_body serves the copy, then below */
    bool is_saved;          /* r->req_body describes the copy; below_* hold the layer below's */
    bool below_done;        /* the layer below's req_body.is_done and pending (a view it gave */
    uint32_t below_pending; /* and we did not take: over_limit pass) */
};

static const struct pt_stream_ops waf_ops;

static void waf_end(struct pt_req *r, void *arg)
{
    (void)r;
    struct waf_req *q = arg;
    pt_waf_tx_free(q->tx);
    free(q->buf);
    free(q);
}

/* The refusal of tx (status), or detect mode's note; returns the status to answer or 0. */
static int verdict(struct pt_req *r, struct waf_req *q, enum pt_waf_verdict v)
{
    char ids[128];
    if (v == PT_WAF_REFUSE) {
        pt_waf_tx_rule_ids(q->tx, ids, sizeof(ids));
        pt_ctr_add_self(PT_CTR_GUARD_WAF_BLOCKED, 1);
        pt_log_ratelimited(PT_LOG_INFO, "request %s: refused by waf (rules %s)", r->request_id,
                           ids[0] ? ids : "-");
        pt_waf_tx_audit(q->tx, r->method, r->uri, "blocked");
        return pt_waf_tx_status(q->tx);
    }
    if (pt_waf_tx_flagged(q->tx)) {
        pt_waf_tx_rule_ids(q->tx, ids, sizeof(ids));
        pt_log_ratelimited(PT_LOG_INFO, "request %s: waf detect mode: would refuse (rules %s)",
                           r->request_id, ids[0] ? ids : "-");
        pt_waf_tx_audit(q->tx, r->method, r->uri, "detected");
    }
    return 0;
}

static int over_limit(struct pt_req *r, struct waf_req *q)
{
    pt_ctr_add_self(PT_CTR_GUARD_WAF_BLOCKED, 1);
    pt_log_ratelimited(PT_LOG_INFO, "request %s: refused by waf (body over body_limit %llu)",
                       r->request_id, (unsigned long long)q->w->body_limit);
    pt_waf_tx_audit(q->tx, r->method, r->uri, "refused_over_limit");
    return 413;
}

/* Copies v into q's buffer; false when out of memory. */
static bool copy_in(struct waf_req *q, struct pt_str v)
{
    if (q->len + v.n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + v.n)
            cap *= 2;
        if (cap > q->w->body_limit)
            cap = (size_t)q->w->body_limit;
        char *b = realloc(q->buf, cap);
        if (!b)
            return false;
        q->buf = b;
        q->cap = cap;
    }
    memcpy(q->buf + q->len, v.p, v.n);
    q->len += v.n;
    return true;
}

/* r->hold_body: reads the body into the copy, then judges it (see the top). */
static int hold(struct pt_req *r)
{
    struct waf_req *q = pt_stream_filter_state(r, &waf_ops);
    const struct pt_stream_ops *below = pt_stream_below(r, &waf_ops);
    bool is_over = false;
    for (;;) {
        struct pt_str v;
        int rc = below->read_body(r, &v);
        if (rc != PT_OK)
            return rc;
        if (v.n == 0)
            break;
        if (q->len + v.n > q->w->body_limit) {
            if (!q->w->is_over_limit_pass)
                return over_limit(r, q);
            is_over = true; /* judged without its body; what is copied goes first */
            break;
        }
        if (!copy_in(q, v))
            return 503;
        below->consume_body(r, v.n);
    }
    if (!is_over && q->len && pt_waf_tx_body(q->tx, q->buf, q->len) < 0)
        return 503;
    int status = verdict(r, q, pt_waf_tx_end_body(q->tx));
    if (status)
        return status;
    q->is_held = true;
    q->below_done = r->req_body.is_done;
    q->below_pending = r->req_body.pending;
    if (q->len || q->below_pending) {
        /* The proxy pulls only when nothing is pending and the body is not done. */
        q->is_saved = true;
        r->req_body.is_done = false;
        r->req_body.pending = 0;
    }
    return PT_OK;
}

/* The copy is gone: the layer below's state again. */
static void restore(struct pt_req *r, struct waf_req *q)
{
    if (!q->is_saved)
        return;
    q->is_saved = false;
    r->req_body.pending = q->below_pending;
    r->req_body.is_done = q->below_done;
    free(q->buf);
    q->buf = NULL;
    q->len = q->pos = q->cap = 0;
}

static int waf_read_body(struct pt_req *r, struct pt_str *view)
{
    struct waf_req *q = pt_stream_filter_state(r, &waf_ops);
    if (q->is_held && q->pos < q->len) {
        *view = (struct pt_str){q->buf + q->pos, q->len - q->pos};
        r->req_body.pending = (uint32_t)view->n;
        if (q->below_done && q->below_pending == 0)
            r->req_body.is_done = true; /* this view is the rest of the body */
        return PT_OK;
    }
    restore(r, q);
    return pt_stream_below(r, &waf_ops)->read_body(r, view);
}

static void waf_consume_body(struct pt_req *r, size_t n)
{
    struct waf_req *q = pt_stream_filter_state(r, &waf_ops);
    if (q->is_held && q->pos < q->len) {
        q->pos += n;
        r->req_body.pending -= (uint32_t)n;
        if (q->pos == q->len && q->below_pending == 0)
            restore(r, q);
        return;
    }
    pt_stream_below(r, &waf_ops)->consume_body(r, n);
}

#define BELOW pt_stream_below(r, &waf_ops)

static int waf_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    return BELOW->send_head(r, h);
}
static int waf_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    return BELOW->send_data(r, p, n, is_stable);
}
static void waf_send_file(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                          uint64_t len)
{
    BELOW->send_file(r, fd, ref, off, len);
}
static void waf_continue_body(struct pt_req *r)
{
    BELOW->continue_body(r);
}
static int waf_send_borrowed(struct pt_req *r, const char *p, size_t n)
{
    return BELOW->send_borrowed(r, p, n);
}
static void waf_send_end(struct pt_req *r)
{
    BELOW->send_end(r);
}
static void waf_send_trailers(struct pt_req *r, const struct pt_field *f, size_t n)
{
    BELOW->send_trailers(r, f, n);
}
static size_t waf_req_trailers(struct pt_req *r, const struct pt_field **f)
{
    return BELOW->req_trailers(r, f);
}
static int waf_flush(struct pt_req *r)
{
    return BELOW->flush(r);
}
static void waf_finish(struct pt_req *r)
{
    BELOW->finish(r);
}
static void waf_reset(struct pt_req *r)
{
    BELOW->reset(r);
}
static void waf_resume(struct pt_req *r)
{
    BELOW->resume(r);
}
static void waf_yield(struct pt_req *r)
{
    BELOW->yield(r);
}
static int waf_tunnel(struct pt_req *r)
{
    return BELOW->tunnel(r);
}
static int waf_read_raw(struct pt_req *r, struct pt_str *view)
{
    return BELOW->read_raw(r, view);
}
static void waf_consume_raw(struct pt_req *r, size_t n)
{
    BELOW->consume_raw(r, n);
}

static const struct pt_stream_ops waf_ops = {
    .send_head = waf_send_head,
    .send_data = waf_send_data,
    .send_file = waf_send_file,
    .read_body = waf_read_body,
    .consume_body = waf_consume_body,
    .continue_body = waf_continue_body,
    .send_borrowed = waf_send_borrowed,
    .send_end = waf_send_end,
    .send_trailers = waf_send_trailers,
    .req_trailers = waf_req_trailers,
    .flush = waf_flush,
    .finish = waf_finish,
    .reset = waf_reset,
    .resume = waf_resume,
    .yield = waf_yield,
    .tunnel = waf_tunnel,
    .read_raw = waf_read_raw,
    .consume_raw = waf_consume_raw,
};

static int port_of(const struct pt_sockaddr *a)
{
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in.sin_port);
    return 0;
}

bool pt_waf_guard(struct pt_req *r, const struct pt_req_head *h, const struct pt_waf_cfg *w)
{
    struct pt_sockaddr client;
    if (!pt_geoip_client_addr(r->cfg, r->peer, h, &client))
        client = *r->peer;
    char cip[64] = "-", sip[64] = "-";
    if (!pt_sock_ntop(&client.u.sa, cip, sizeof(cip)))
        memcpy(cip, "-", 2);
    const struct pt_sockaddr *local = &r->cfg->listens[r->listen_idx].addr;
    if (!pt_sock_ntop(&local->u.sa, sip, sizeof(sip)))
        memcpy(sip, "-", 2);
    struct pt_waf_conn conn = {cip,           port_of(&client),
                               sip,           port_of(local),
                               r->request_id, r->h2s ? "2.0" : (r->minor_version ? "1.1" : "1.0")};
    struct waf_req *q = calloc(1, sizeof(*q));
    if (q)
        q->tx = pt_waf_tx_new(w, &conn);
    if (!q || !q->tx || pt_req_on_end(r, waf_end, q) < 0) {
        if (q)
            waf_end(r, q);
        /* Never an open door: no transaction, no request. */
        pt_log_ratelimited(PT_LOG_WARN, "request %s: waf: out of memory", r->request_id);
        pt_conn_plan_discard(r);
        pt_pipeline_fail(r, 503, false);
        return false;
    }
    q->w = w;
    int status = verdict(r, q, pt_waf_tx_head(q->tx, h->method, h->target, h));
    bool wants_body = r->has_body && r->route->action == PT_ACTION_PROXY && !r->is_ext_connect;
    if (!status && wants_body && h->content_length > (int64_t)w->body_limit &&
        !w->is_over_limit_pass) {
        status = over_limit(r, q);
    } else if (!status && wants_body &&
               !(h->content_length > (int64_t)w->body_limit && w->is_over_limit_pass)) {
        if (pt_stream_push_filter(r, &waf_ops, q) == 0) {
            r->hold_body = hold;
            return true;
        }
        status = 503;
    } else if (!status) {
        status = verdict(r, q, pt_waf_tx_end_body(q->tx));
    }
    if (!status)
        return true;
    pt_conn_plan_discard(r);
    pt_pipeline_fail(r, status, false); /* plan_discard closes after a large body */
    return false;
}
