/*
 * conn.c - client connections: accept, read and dispatch request heads, write responses,
 * keep-alive, pipelining, timeouts, lingering close.
 *
 * State machine of a client connection (one request at a time; pipelined requests wait in
 * c->in and are answered in order):
 *
 *     accept --> HEAD --(head complete)--> REQ --(response done, keep-alive)--> HEAD
 *                 |  \                      |
 *                 |   (bad head: 4xx) --> CLOSING --(flushed, peer drained)--> closed
 *                 +--(idle timeout / EOF)-------------------------------------> closed
 *
 * The single timer of a connection means, by state: HEAD with an empty buffer, keep-alive
 * (or, before the first request, header_timeout); HEAD with a partial head, the header_timeout
 * deadline fixed when its first byte arrived (a slow-loris client cannot extend it); REQ, the
 * body or send timeout the handler armed; CLOSING, the linger limit.
 *
 * A local answer (respond, redirect, static, error page) to a request with a body is queued at
 * once but held in REQ while the body is read and dropped (discard_body, at most
 * DISCARD_MAX_BYTES, within body_timeout), so the connection can serve the next request. When
 * the body cannot be dropped, the held head is rewritten to say Connection: close before it
 * goes out: a keep-alive client is never left to send into a silently closed connection.
 *
 * Every entry point (socket events, timers, the proxy's upstream events) goes through
 * pt_conn_run(), which steps the machine until nothing more can be done. Handlers end a request
 * with pt_conn_request_done(), which only sets state: pt_conn_run() then carries on with the
 * next pipelined request, so handlers never re-enter themselves. Freeing is deferred to the end
 * of the event batch, so a pointer to a closed connection stays readable (is_closed) until then,
 * and to the run of a queued post (pt_conn_yield) that has not come up yet: see conn_free().
 *
 * Every byte goes through the connection's transport (c->t, core/transport.h): plain TCP or TLS,
 * chosen at accept, with the same calls for both; the transport also keeps the edge-triggered
 * readiness flags, including the crossed waits of TLS (a read that needs the socket writable).
 * A TLS listener's connection starts in the handshake state; a plain one goes straight to HEAD.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "admin/metrics.h"
#include "core/log.h"
#include "core/sock.h"
#include "handler/handler.h"
#include "handler/netlify_rules.h"
#include "handler/static.h"
#include "server/conn.h"
#include "server/h2_conn.h"
#include "server/pipeline.h"
#include "server/worker.h"
#include "tls/acme.h"
#include "tls/tls_transport.h"

#define LINGER_MS 2000u
#define LINGER_MAX_BYTES (256u * 1024u)
/* A local answer (respond, redirect, error page, static) to a request with a body reads and
   drops up to this many body bytes, so the connection can serve the next request; a longer
   body gets Connection: close instead. */
#define DISCARD_MAX_BYTES (64u * 1024u)

static void conn_step(struct pt_conn *c);
static int version_status(const char *buf, size_t len);
static void head_rejected(struct pt_conn *c, int status);
static void discard_give_up(struct pt_conn *c);

#define REQ_CACHE_MAX 256

/* Request objects are recycled per worker: a request is ~2 KiB, and malloc's larger size
   classes cost more than a free-list pop. Only the part before the log fields is cleared. */
static struct pt_req *req_alloc(struct pt_worker *w)
{
    struct pt_req *r;
    (void)w;
#ifndef PT_SANITIZE
    if (w->free_reqs) {
        r = w->free_reqs;
        w->free_reqs = (struct pt_req *)(void *)r->c;
        w->n_free_reqs--;
    } else
#endif
    {
        r = malloc(sizeof(*r));
        if (!r)
            return NULL;
    }
    memset(r, 0, offsetof(struct pt_req, request_id));
    r->method[0] = r->uri[0] = r->host[0] = r->referer[0] = r->user_agent[0] = '\0';
    r->request_id[0] = '\0';
    return r;
}

static void req_free(struct pt_worker *w, struct pt_req *r)
{
    (void)w;
    if (!r)
        return;
#ifndef PT_SANITIZE
    if (w->n_free_reqs < REQ_CACHE_MAX) {
        r->c = (struct pt_conn *)(void *)w->free_reqs;
        w->free_reqs = r;
        w->n_free_reqs++;
        return;
    }
#endif
    free(r);
}

/* Takes a request object on the current snapshot for c (pt_conn_req_new's body, inlined into
   HTTP/1.1's request_begin). */
static inline struct pt_req *req_new(struct pt_conn *c)
{
    struct pt_worker *w = c->w;
    struct pt_wsnap *ws = pt_worker_snap_get(w);
    struct pt_req *r = ws ? req_alloc(w) : NULL;
    if (!r) {
        if (ws)
            pt_worker_snap_put(w, ws);
        return NULL;
    }
    r->c = c;
    r->stream = &pt_h1_stream;
    r->w = w;
    r->env = &w->env;
    r->peer = &c->peer;
    r->tls = pt_transport_tls(&c->t);
    r->listen_idx = c->listen_idx;
    r->is_tls = pt_transport_is_secure(&c->t);
    r->ws = ws;
    r->res = &ws->s->res;
    r->lb = ws->lb;
    r->cfg = ws->s->cfg;
    r->start_ms = w->loop.now_ms;
    r->minor_version = 1;
    return r;
}

struct pt_req *pt_conn_req_new(struct pt_conn *c)
{
    return req_new(c);
}

/* Starts a request on c: takes a use of the current snapshot and a request object. On
   failure closes c and returns NULL. */
static struct pt_req *request_begin(struct pt_conn *c)
{
    struct pt_req *r = req_new(c);
    if (!r) {
        pt_conn_close(c);
        return NULL;
    }
    c->r = r;
    c->state = PT_CS_REQ;
    return r;
}

/* ---- lifecycle ---- */

/* Client connections open in the process, for limits.max_connections. Touched once per accept
   and once per close, not per request. */
static _Atomic uint32_t n_conns_total;

uint32_t pt_conn_count(void)
{
    return atomic_load_explicit(&n_conns_total, memory_order_relaxed);
}

static void conn_free_now(struct pt_conn *c)
{
    pt_buf_release(&c->in);
    pt_buf_release(&c->out);
    req_free(c->w, c->r);
    free(c);
}

/* A connection is freed once, after it is off every list the loop keeps: the deferred list
   (pt_conn_close queues it there, is_deferred) and the posted list (pt_conn_yield, is_posted).
   Whichever of conn_free() and conn_posted() takes it off the last one frees it. Either can
   come first: a post queued in this iteration comes up in the next, after the deferred list
   ran; but a post queued in the previous iteration is already in the batch the loop runs
   after this iteration's socket events, so a close there (the client's EOF as a drain begins)
   or in an earlier post of that batch leaves the connection on both lists, and the post
   comes up first. */
static void conn_free(struct pt_defer *d)
{
    struct pt_conn *c = PT_CONTAINER_OF(d, struct pt_conn, defer);
    c->is_deferred = false;
    if (!c->is_posted)
        conn_free_now(c);
}

static void conn_posted(struct pt_defer *d)
{
    struct pt_conn *c = PT_CONTAINER_OF(d, struct pt_conn, post);
    c->is_posted = false;
    if (!c->is_closed) {
        pt_conn_run(c);
        return;
    }
    if (!c->is_deferred)
        conn_free_now(c);
}

void pt_conn_yield(struct pt_conn *c)
{
    if (c->is_posted || c->is_closed)
        return;
    c->is_posted = true;
    pt_loop_post(&c->w->loop, &c->post, conn_posted);
}

/* Lets go of what r holds besides the connection's file body: the proxy's side, the upstream
   head buffer, the snapshot use. */
static inline void release_request(struct pt_worker *w, struct pt_req *r)
{
    if (r->pstate != PT_PS_NONE)
        pt_proxy_abort(r);
    if (r->cl_req_key)
        pt_connguard_request_end(r);
    pt_req_run_cleanups(r);
    pt_buf_release(&r->uout);
    pt_body_free_trailers(&r->req_body);
    pt_body_free_trailers(&r->resp_body);
    if (r->ws)
        pt_worker_snap_put(w, r->ws);
    r->ws = NULL;
}

void pt_conn_req_end(struct pt_worker *w, struct pt_req *r, bool log)
{
    if (log || r->is_tunnel)
        pt_worker_access_log(w, r);
    release_request(w, r);
    req_free(w, r);
}

static void free_request(struct pt_conn *c)
{
    struct pt_req *r = c->r;
    if (!r)
        return;
    release_request(c->w, r);
    if (c->file_fd >= 0) {
        if (c->file_ref)
            pt_static_file_unref(c->file_ref);
        else
            close(c->file_fd);
        c->file_ref = NULL;
        c->file_fd = -1;
        c->file_left = 0;
    }
}

void pt_conn_close(struct pt_conn *c)
{
    if (c->is_closed)
        return;
    c->is_closed = true;
    struct pt_worker *w = c->w;
    if (c->r && c->r->is_tunnel)
        pt_worker_access_log(w, c->r); /* a tunnel cut off (drain, reload): still logged */
    free_request(c);
    if (c->h2)
        pt_h2_conn_free(c);
    pt_timer_stop(&w->loop, &c->timer);
    if (!c->is_lingering)
        pt_transport_shutdown(&c->t, false); /* close_notify, best effort: never waits */
    pt_transport_free(&c->t);
    pt_loop_close(&w->loop, &c->io);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    w->n_conns--;
    atomic_fetch_sub_explicit(&n_conns_total, 1, memory_order_relaxed);
    if (c->cl_key)
        pt_connguard_conn_end(c->cl_key);
    if (w->ctr)
        pt_metrics_on_conn(w->ctr, c->ctr_base, false);
    if (w->is_at_cap) { /* room again: accept in the next loop iteration */
        w->is_at_cap = false;
        pt_timer_set(&w->loop, &w->accept_timer, 0);
    }
    c->is_deferred = true;
    pt_loop_defer(&w->loop, &c->defer, conn_free);
}

void pt_conn_abort_slow(struct pt_conn *c)
{
    if (c->is_closed)
        return;
    pt_connguard_slow("response reading", c->id, &c->peer);
    /* A reset, not a FIN behind the queued bytes: the client would take as long to reach the
       FIN as it took not to read them, while the kernel kept them for it. */
    struct linger lg = {1, 0};
    (void)setsockopt(c->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    c->is_lingering = true; /* no close_notify: it would only queue behind the same bytes */
    pt_conn_close(c);
}

void pt_conn_close_idle(struct pt_worker *w)
{
    struct pt_conn *c = w->conns.next;
    while (c != &w->conns) {
        struct pt_conn *next = c->next;
        if (c->state == PT_CS_HEAD && pt_buf_len(&c->in) == 0)
            pt_conn_close(c);
        else if (c->state == PT_CS_H2)
            pt_h2_conn_goaway(c);
        c = next;
    }
}

static void conn_io(struct pt_io *io, uint32_t events)
{
    struct pt_conn *c = PT_CONTAINER_OF(io, struct pt_conn, io);
    pt_transport_events(&c->t, events);
    pt_conn_run(c);
}

/* The timer of a proxied request fired: the client did not take the response within
   send_timeout (close), or did not send body bytes within body_timeout (the proxy answers 408,
   or closes once its response began). */
static void proxy_timeout(struct pt_conn *c)
{
    struct pt_req *r = c->r;
    bool write_blocked = (pt_buf_len(&c->out) || c->slice_len) && !c->t.can_write;
    bool body_wait =
        !r->req_body.is_done && !r->req_body.pending && pt_buf_len(&c->in) == 0 && !c->t.can_read;
    if (write_blocked) {
        pt_conn_abort_slow(c);
    } else if (body_wait) {
        pt_connguard_slow("request body", c->id, &c->peer);
        pt_proxy_client_timeout(r);
    }
}

static void conn_timeout(struct pt_timer *t)
{
    struct pt_conn *c = PT_CONTAINER_OF(t, struct pt_conn, timer);
    if (c->is_closed)
        return;
    switch (c->state) {
    case PT_CS_HANDSHAKE:
        pt_connguard_slow("TLS handshake", c->id, &c->peer);
        pt_conn_close(c); /* no TLS handshake within header_timeout */
        return;
    case PT_CS_HEAD:
        if (pt_buf_len(&c->in) == 0) {
            pt_conn_close(c); /* idle keep-alive connection: close quietly */
            return;
        }
        /* A head still incomplete at its deadline: 408 (RFC 9110 §15.5.9), then close. */
        pt_connguard_slow("request head", c->id, &c->peer);
        head_rejected(c, 408);
        pt_conn_run(c);
        return;
    case PT_CS_REQ:
        if (c->r && c->r->pstate != PT_PS_NONE) {
            proxy_timeout(c);
            pt_conn_run(c);
            return;
        }
        if (c->r && c->r->is_discarding) {
            pt_connguard_slow("request body", c->id, &c->peer);
            discard_give_up(c); /* the body did not come within body_timeout */
            pt_conn_run(c);
            return;
        }
        pt_conn_abort_slow(c); /* the client did not take its response in time */
        return;
    case PT_CS_H2:
        pt_h2_conn_timeout(c);
        return;
    default:
        pt_conn_close(c);
        return;
    }
}

/* The TLS context of listener idx in the worker's current snapshot (the connection keeps its
   own reference). */
static struct pt_tls_ctx *tls_ctx_for(struct pt_worker *w, uint8_t idx)
{
    if (!pt_worker_cfg(w) || !w->ws)
        return NULL;
    const struct pt_snapshot *s = w->ws->s;
    return idx < s->n_listen_tls ? s->listen_tls[idx] : NULL;
}

/* Connections accepted per listener wake-up: the listener is level-triggered (worker.c), so
   what is left is reported again at once, after the worker's other events had their turn. */
#define ACCEPT_BATCH 64
/* While at limits.max_connections with nothing idle to close, a worker looks again this often
   (a close in another worker does not wake it; one of its own re-arms it at once). */
#define CAP_RECHECK_MS 100u

/* This worker's idle keep-alive connection that has waited longest, or NULL: an HTTP/1.1
   connection between requests, or an HTTP/2 one with no stream open. An HTTP/1.1 connection
   moves to the list's tail each time it turns idle (pt_conn_request_done), so the first idle
   one in list order is the longest idle; an HTTP/2 one keeps its place (accept order). */
static struct pt_conn *oldest_idle(struct pt_worker *w)
{
    for (struct pt_conn *c = w->conns.next; c != &w->conns; c = c->next) {
        if (c->is_closed)
            continue;
        if (c->state == PT_CS_HEAD && c->n_requests > 0 && pt_buf_len(&c->in) == 0)
            return c;
        if (c->state == PT_CS_H2 && pt_h2_conn_is_idle(c))
            return c;
    }
    return NULL;
}

/* At limits.max_connections, a new connection takes the place of the oldest idle keep-alive
   one (closed once the new one is accepted, so an empty queue closes nothing). With none idle,
   accepting pauses until one of w's connections closes (or CAP_RECHECK_MS): no accept-and-drop.
   Returns whether w may accept; *make_room: close the oldest idle one after accepting. */
static bool cap_allows(struct pt_worker *w, const struct pt_config *cfg, bool *make_room)
{
    uint32_t max = pt_worker_max_connections(cfg);
    *make_room = pt_conn_count() >= max;
    if (!*make_room || oldest_idle(w))
        return true;
    pt_log_ratelimited(PT_LOG_WARN,
                       "worker %d: limits.max_connections (%u) reached, no idle connection to "
                       "close: not accepting until one closes",
                       w->id, max);
    pt_worker_pause_accept(w, CAP_RECHECK_MS);
    w->is_at_cap = true;
    return false;
}

void pt_conn_accept(struct pt_listener *l)
{
    struct pt_worker *w = l->w;
    /* A newer snapshot first: it may renumber this listener or take it away (worker.c). */
    (void)pt_worker_cfg(w);
    for (int i = 0; i < ACCEPT_BATCH && l->io.fd >= 0 && l->is_armed; i++) {
        bool make_room;
        if (!cap_allows(w, pt_worker_cfg(w), &make_room))
            return;
        struct pt_sockaddr peer;
        peer.len = sizeof(peer.u);
        int fd = accept4(l->io.fd, &peer.u.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED)
                continue;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                pt_worker_accept_exhausted(w, l, e);
            } else if (e != EAGAIN) {
                pt_log_ratelimited(PT_LOG_WARN, "worker %d: accept: %s", w->id, strerror(e));
                pt_worker_pause_accept(w, PT_ACCEPT_RETRY_MS);
            }
            return;
        }
        const struct pt_config *cfg = pt_worker_cfg(w);
        uint64_t cl_key = 0;
        if (!cfg || !pt_connguard_accept(w, cfg, l->idx, &peer, &cl_key)) {
            close(fd); /* refused before a byte is read or a TLS handshake spent */
            continue;
        }
        if (make_room) {
            struct pt_conn *idle = oldest_idle(w);
            if (idle)
                pt_conn_close(idle);
        }
        struct pt_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            if (cl_key)
                pt_connguard_conn_end(cl_key);
            close(fd);
            continue;
        }
        c->cl_key = cl_key;
        c->io.fd = fd;
        c->io.cb = conn_io;
        c->w = w;
        c->peer = peer;
        c->file_fd = -1;
        c->listen_idx = l->idx;
        c->may_h2c = !l->is_tls && l->idx < cfg->n_listens && cfg->listens[l->idx].is_http2;
        if (l->is_tls) {
            struct pt_tls_ctx *ctx = tls_ctx_for(w, l->idx);
            if (!ctx || pt_tls_transport_server_init(&c->t, ctx, fd) < 0) {
                if (cl_key)
                    pt_connguard_conn_end(cl_key);
                close(fd);
                free(c);
                continue;
            }
        } else {
            pt_transport_plain_init(&c->t, fd);
        }
        c->id = ++w->next_conn_id;
        pt_timer_init(&c->timer, conn_timeout);
        if (pt_loop_add(&w->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP, false) < 0) {
            if (cl_key)
                pt_connguard_conn_end(cl_key);
            pt_transport_free(&c->t);
            close(fd);
            free(c);
            continue;
        }
        c->next = &w->conns;
        c->prev = w->conns.prev;
        w->conns.prev->next = c;
        w->conns.prev = c;
        w->n_conns++;
        atomic_fetch_add_explicit(&n_conns_total, 1, memory_order_relaxed);
        c->ctr_base = PT_CTR_NONE;
        {
            const struct pt_metrics_map *m = w->ws ? w->ws->s->metrics : NULL;
            if (m && w->ctr && l->idx < m->n_listens) {
                c->ctr_base = m->listen_base[l->idx];
                pt_metrics_on_conn(w->ctr, c->ctr_base, true);
            }
        }
        c->state = c->t.is_handshaking ? PT_CS_HANDSHAKE : PT_CS_HEAD;
        pt_timer_set(&w->loop, &c->timer, cfg->limits.header_timeout_ms);
    }
}

/* ---- writing ---- */

ssize_t pt_conn_read(struct pt_conn *c, void *buf, size_t len)
{
    return pt_transport_read(&c->t, buf, len);
}

/* A small file body follows (sendfile): MSG_MORE lets the head share its first segment instead of
   going out as a packet of its own (sendfile then pushes both); that packet is a large part of a
   small response's cost. For a large file it is noise, and the bench measured no gain there, so
   its head goes at once. */
#define HEAD_COALESCE_MAX (64u << 10)

#define FILE_YIELD_BYTES (4u << 20) /* a file send yields to the worker's others after this */

/* n bytes of a response went out: they pay for the time the client kept the socket full. */
static inline void sent_bytes(struct pt_conn *c, uint64_t n)
{
    if (!c->send_cr.wait_us && !c->send_cr.debt_us)
        return; /* never kept waiting: nothing to pay (the common case costs one test) */
    const struct pt_config *cfg = c->r ? c->r->cfg : pt_worker_cfg(c->w);
    if (cfg)
        pt_credit_bytes(&c->send_cr, c->w->loop.now_ms, n, cfg->limits.send_min_rate,
                        cfg->limits.send_timeout_ms);
}

/* Sends the next piece of the file body (sendfile(2) on plain connections, record by record on
   TLS: core/transport.h). Returns bytes sent, -EAGAIN or another negative value. */
static ssize_t send_file_piece(struct pt_conn *c)
{
    size_t want = (size_t)PT_MIN(c->file_left, (uint64_t)FILE_YIELD_BYTES);
    ssize_t n = pt_transport_send_file(&c->t, c->file_fd, c->file_off, want);
    if (n <= 0)
        return n;
    sent_bytes(c, (uint64_t)n);
    c->file_off += (uint64_t)n;
    c->file_left -= (uint64_t)n;
    if (c->r)
        c->r->bytes_out += (uint64_t)n;
    return n;
}

/* The socket is full: the client has until its send credit (send_timeout, refilled by what
   it takes at send_min_rate: connguard.h) is spent to make room. */
static int flush_blocked(struct pt_conn *c)
{
    const struct pt_config *cfg = c->r ? c->r->cfg : pt_worker_cfg(c->w);
    uint32_t ms = cfg ? cfg->limits.send_timeout_ms : 30000;
    pt_timer_set_at(&c->w->loop, &c->timer, pt_credit_wait(&c->send_cr, c->w->loop.now_ms, ms));
    return PT_AGAIN;
}

int pt_conn_flush(struct pt_conn *c)
{
    uint64_t sent = 0;
    for (;;) {
        uint32_t olen = pt_buf_len(&c->out);
        if (olen == 0 && c->slice_len == 0) {
            if (c->file_left == 0)
                return PT_OK;
            if (!c->t.can_write)
                return PT_AGAIN;
            if (sent >= FILE_YIELD_BYTES) {
                pt_conn_yield(c); /* a big file must not starve the worker's others */
                return PT_AGAIN;
            }
            ssize_t n = send_file_piece(c);
            if (n == -EAGAIN)
                return flush_blocked(c);
            if (n < 0)
                return PT_ERR;
            sent += (uint64_t)n;
            continue;
        }
        if (!c->t.can_write)
            return PT_AGAIN;
        struct iovec iov[2];
        int n_iov = 0;
        if (olen)
            iov[n_iov++] = (struct iovec){pt_buf_rpos(&c->out), olen};
        if (c->slice_len)
            iov[n_iov++] = (struct iovec){(void *)c->slice, c->slice_len};
        bool more = c->file_left && c->file_left <= HEAD_COALESCE_MAX;
        ssize_t n = pt_transport_writev(&c->t, iov, n_iov, more);
        if (n == -EAGAIN)
            return flush_blocked(c);
        if (n < 0)
            return PT_ERR;
        sent_bytes(c, (uint64_t)n);
        size_t k = PT_MIN((size_t)n, (size_t)olen);
        pt_buf_consume(&c->out, (uint32_t)k);
        k = (size_t)n - k;
        if (k) {
            c->slice += k;
            c->slice_len -= (uint32_t)k;
            if (c->r)
                c->r->bytes_out += k;
        }
    }
}

/* ---- requests ---- */

void pt_conn_request_done(struct pt_conn *c)
{
    struct pt_req *r = c->r;
    struct pt_worker *w = c->w;
    PT_BUG_ON(r == NULL);
    pt_worker_access_log(w, r);
    bool keep = r->is_keepalive && !w->is_draining && !c->is_eof;
    free_request(c);
    req_free(w, r);
    c->r = NULL;
    c->slice = NULL;
    c->slice_len = 0;
    if (pt_buf_len(&c->out) == 0)
        pt_buf_release(&c->out);
    if (!keep) {
        c->state = PT_CS_CLOSING; /* flush what is left, then linger */
        c->again = true;
        return;
    }
    c->state = PT_CS_HEAD;
    c->head_scan = 0;
    c->body_cr.wait_us = 0; /* between requests Portico waits on nobody's body */
    if (pt_buf_len(&c->in) == 0) {
        pt_buf_release(&c->in);
        if (c->next != &w->conns) { /* idle from now: to the tail (oldest_idle) */
            c->prev->next = c->next;
            c->next->prev = c->prev;
            c->next = &w->conns;
            c->prev = w->conns.prev;
            w->conns.prev->next = c;
            w->conns.prev = c;
        }
        const struct pt_config *cfg = pt_worker_cfg(w);
        pt_timer_set(&w->loop, &c->timer, cfg ? cfg->limits.keepalive_timeout_ms : 60000);
    } else {
        pt_buf_compact(&c->in);
        /* Pipelined bytes are already here: their header_timeout starts now. */
        const struct pt_config *cfg = pt_worker_cfg(w);
        c->head_deadline_ms = w->loop.now_ms + (cfg ? cfg->limits.header_timeout_ms : 10000);
        pt_timer_set_at(&w->loop, &c->timer, c->head_deadline_ms);
    }
    c->again = true;
}

static inline bool ensure_scratch(struct pt_worker *w, const struct pt_config *cfg)
{
    size_t nh = cfg->limits.headers ? cfg->limits.headers : 1;
    if (w->env.hdrs_cap < nh) {
        struct pt_field *h = realloc(w->env.hdrs, nh * sizeof(*h));
        if (!h)
            return false;
        w->env.hdrs = h;
        w->env.hdrs_cap = nh;
    }
    size_t np = (size_t)cfg->limits.uri_size + 2;
    if (w->path_cap < np) {
        char *p = realloc(w->path_buf, np);
        if (!p)
            return false;
        w->path_buf = p;
        w->path_cap = np;
    }
    return true;
}

bool pt_conn_ensure_scratch(struct pt_worker *w, const struct pt_config *cfg)
{
    return ensure_scratch(w, cfg);
}

/* Splits the request-target into host override (absolute-form), path and query. Returns false
   for a target Portico does not serve (asterisk- and authority-form). */
static bool split_target(struct pt_str t, struct pt_str *host, struct pt_str *path,
                         struct pt_str *query)
{
    const char *p = t.p, *end = t.p + t.n;
    if (t.n > 0 && p[0] != '/') {
        /* absolute-form (RFC 9112 §3.2.2): the authority replaces Host */
        const char *s = memchr(p, ':', t.n);
        if (!s || end - s < 3 || s[1] != '/' || s[2] != '/')
            return false;
        const char *a = s + 3, *ae = a;
        while (ae < end && *ae != '/' && *ae != '?')
            ae++;
        *host = (struct pt_str){a, (size_t)(ae - a)};
        p = ae;
        if (p == end || *p == '?') {
            path->p = "/";
            path->n = 1;
            *query =
                p == end ? (struct pt_str){NULL, 0} : (struct pt_str){p + 1, (size_t)(end - p - 1)};
            return true;
        }
    }
    if (p == end || *p != '/')
        return false;
    const char *q = memchr(p, '?', (size_t)(end - p));
    if (q) {
        *path = (struct pt_str){p, (size_t)(q - p)};
        *query = (struct pt_str){q + 1, (size_t)(end - q - 1)};
    } else {
        *path = (struct pt_str){p, (size_t)(end - p)};
        *query = (struct pt_str){NULL, 0};
    }
    return true;
}

/* Called before a local answer to r, whose head is well framed. A body the answer leaves unread
   would be taken for the next request's head, so: a body of at most DISCARD_MAX_BYTES is read
   and dropped before the answer goes out (conn_step), keeping the connection; a longer one, or
   one the client holds back until it hears from us (Expect: 100-continue), makes the answer
   say Connection: close (RFC 9112 §9.6), and the lingering close drains what follows. */
void pt_conn_plan_discard(struct pt_req *r)
{
    if (!r->has_body || r->req_body.is_done || !r->is_keepalive)
        return;
    if (r->expect_continue || (!r->req_body.is_chunked && r->req_body.left > DISCARD_MAX_BYTES)) {
        r->is_keepalive = false;
        return;
    }
    r->is_discarding = true;
}

/* Reads the head of c's next request (head_len bytes in c->in) into a protocol-neutral head,
   answers what HTTP/1.1 itself refuses, and hands the rest to the pipeline. */
static void dispatch(struct pt_conn *c, size_t head_len)
{
    struct pt_worker *w = c->w;
    struct pt_req *r = request_begin(c);
    if (!r)
        return;
    const struct pt_config *cfg = r->cfg;
    c->n_requests++;
    pt_timer_stop(&w->loop, &c->timer);
    if (!ensure_scratch(w, cfg)) {
        pt_pipeline_note(r, NULL);
        pt_pipeline_fail(r, 503, true);
        pt_buf_consume(&c->in, (uint32_t)head_len);
        return;
    }

    struct pt_h1_request h;
    memset(&h, 0, sizeof(h));
    h.headers = w->env.hdrs;
    h.num_headers = cfg->limits.headers;
    int rc = pt_h1_parse_request(pt_buf_rpos(&c->in), head_len, &h, cfg->limits.uri_size);
    /* The host is kept whole or refused, never cut: a shortened name would reach the backend
       (preserve_host, X-Forwarded-Host) as another host than the one routed on. r->host holds
       any DNS name (253 bytes) with a port. */
    if (rc >= 0 && h.host.n >= sizeof(r->host))
        rc = PT_H1_EBAD;
    if (rc < 0) {
        int status = rc == PT_H1_ETOOMANY   ? 431
                     : rc == PT_H1_EURI     ? 414
                     : rc == PT_H1_ECODING  ? 501
                     : rc == PT_H1_EVERSION ? version_status(pt_buf_rpos(&c->in), head_len)
                                            : 400;
        pt_pipeline_note(r, NULL);
        pt_pipeline_fail(r, status, true);
        pt_buf_consume(&c->in, (uint32_t)head_len);
        return;
    }
    struct pt_req_head rh = {.method = h.method,
                             .method_id = h.method_id,
                             .authority = h.host,
                             .target = h.target,
                             .content_length = h.framing.content_length,
                             .fields = h.headers,
                             .n_fields = h.num_headers};
    pt_pipeline_note(r, &rh);
    r->minor_version = (uint8_t)h.minor_version;
    r->is_keepalive = h.minor_version == 1 ? !h.framing.conn_close : h.framing.conn_keepalive;
    r->expect_continue = h.expect_continue;
    if (h.framing.is_chunked) {
        r->has_body = true;
        r->req_body.is_chunked = true;
    } else if (h.framing.content_length > 0) {
        r->has_body = true;
        r->req_body.left = (uint64_t)h.framing.content_length;
    }
    if (!r->has_body)
        r->req_body.is_done = true;
    if (!h.framing.is_chunked && h.framing.content_length > 0 &&
        (uint64_t)h.framing.content_length > cfg->limits.body_size) {
        pt_pipeline_fail(r, 413, true);
    } else if (!split_target(h.target, &rh.authority, &rh.path, &rh.query)) {
        pt_pipeline_fail(r, h.method_id == PT_METHOD_CONNECT ? 405 : 400, true);
    } else {
        pt_pipeline_run(r, &rh);
    }
    pt_buf_consume(&c->in, (uint32_t)head_len);
}

/* ---- reading heads ---- */

/* The request line of buf, without a leading empty line (RFC 9112 §2.2) or its CR LF. */
static bool first_line(const char *buf, size_t len, struct pt_str *line)
{
    if (len >= 2 && buf[0] == '\r' && buf[1] == '\n') {
        buf += 2;
        len -= 2;
    }
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return false;
    size_t n = (size_t)(nl - buf);
    if (n && buf[n - 1] == '\r')
        n--;
    *line = (struct pt_str){buf, n};
    return true;
}

/* A complete request line without "method SP target SP version" is HTTP/0.9 or garbage: it
   gets 400 at once instead of waiting for a blank line that will never come. */
static bool request_line_hopeless(const char *buf, size_t len)
{
    struct pt_str l;
    if (!first_line(buf, len, &l))
        return false;
    const char *sp = memchr(l.p, ' ', l.n);
    return !sp || !memchr(sp + 1, ' ', l.n - (size_t)(sp + 1 - l.p));
}

/* 505 for a well-formed version Portico does not speak ("HTTP/2.0"), 400 for anything else
   ("http/1.1", "HTTP/1", none at all). */
static int version_status(const char *buf, size_t len)
{
    struct pt_str l;
    if (!first_line(buf, len, &l) || l.n < 8)
        return 400;
    const char *v = l.p + l.n - 8;
    bool ok = memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
              v[7] >= '0' && v[7] <= '9' && l.n > 8 && v[-1] == ' ';
    return ok ? 505 : 400;
}

/* Answers status to a head that cannot be parsed, then closes. */
static void head_rejected(struct pt_conn *c, int status)
{
    struct pt_req *r = request_begin(c);
    if (!r)
        return;
    r->request_id_len = (uint8_t)pt_worker_request_id(c->w, r->request_id);
    memcpy(r->method, "-", 2);
    memcpy(r->uri, "-", 2);
    c->in.head = c->in.tail = 0;
    pt_pipeline_fail(r, status, true);
}

static void head_too_large(struct pt_conn *c, const struct pt_config *cfg)
{
    /* 414 when the request line alone is over uri_size, else 431 (RFC 6585 §5). */
    uint32_t len = pt_buf_len(&c->in);
    const char *nl = memchr(pt_buf_rpos(&c->in), '\n', len);
    head_rejected(c, (!nl && len > cfg->limits.uri_size) ? 414 : 431);
}

static void read_head(struct pt_conn *c)
{
    struct pt_worker *w = c->w;
    const struct pt_config *cfg = pt_worker_cfg(w);
    if (!cfg) {
        pt_conn_close(c);
        return;
    }
    size_t limit = cfg->limits.header_size;
    for (;;) {
        uint32_t len = pt_buf_len(&c->in);
        if (len > 0 && c->may_h2c) {
            int p = pt_h2_preface(pt_buf_rpos(&c->in), len);
            if (p > 0) {
                pt_h2_conn_start(c);
                return;
            }
            c->may_h2c = p == 0; /* a prefix of it: read on; anything else is HTTP/1.1 */
        }
        if (len > 0 && !c->may_h2c) {
            ssize_t hl =
                pt_h1_find_head_end(pt_buf_rpos(&c->in), PT_MIN(len, limit), &c->head_scan);
            if (hl > 0) {
                dispatch(c, (size_t)hl);
                c->again = true;
                return;
            }
            if (len >= limit) {
                head_too_large(c, cfg);
                c->again = true;
                return;
            }
            if (request_line_hopeless(pt_buf_rpos(&c->in), len)) {
                head_rejected(c, 400);
                c->again = true;
                return;
            }
        }
        if (!c->t.can_read)
            return;
        if (!c->in.data) {
            uint32_t cap = limit + 1 > PT_BUF_SMALL ? (uint32_t)limit + 1 : PT_BUF_SMALL;
            if (pt_buf_alloc(&c->in, cap) < 0) {
                pt_conn_close(c);
                return;
            }
        }
        if (pt_buf_room(&c->in) == 0)
            pt_buf_compact(&c->in);
        ssize_t n = pt_conn_read(c, c->in.data + c->in.tail, pt_buf_room(&c->in));
        if (n > 0) {
            if (len == 0) {
                c->head_deadline_ms = w->loop.now_ms + cfg->limits.header_timeout_ms;
                pt_timer_set_at(&w->loop, &c->timer, c->head_deadline_ms);
            }
            c->in.tail += (uint32_t)n;
            continue;
        }
        if (n == 0) {
            c->is_eof = true;
            pt_conn_close(c); /* idle or partial head: nothing to answer */
            return;
        }
        if (n != -EAGAIN) {
            pt_conn_close(c);
            return;
        }
        if (len == 0)
            pt_buf_release(&c->in); /* idle: hold no buffer */
        return;
    }
}

/* ---- dropping the body of a locally answered request ---- */

/* Makes the queued response head in c->out say Connection: close. The head is still whole and
   unsent: conn_step holds the response until the body is dropped. Returns false when out of
   memory. */
static bool head_say_close(struct pt_conn *c)
{
    static const char ka[] = "\r\nConnection: keep-alive\r\n", cl[] = "Connection: close\r\n";
    char *h = pt_buf_rpos(&c->out);
    uint32_t len = pt_buf_len(&c->out);
    char *end = memmem(h, len, "\r\n\r\n", 4);
    char *eol = memmem(h, len, "\r\n", 2);
    if (!end || !eol)
        return false;
    char *k = memmem(h, (size_t)(end + 2 - h), ka, sizeof(ka) - 1);
    if (k) { /* HTTP/1.0 keep-alive: the line becomes "Connection: close" */
        memcpy(k + 14, "close\r\n", 7);
        memmove(k + 21, k + 26, (size_t)(h + len - (k + 26)));
        c->out.tail -= 5;
        return true;
    }
    if (pt_buf_room(&c->out) < sizeof(cl) - 1)
        pt_buf_compact(&c->out);
    if (pt_buf_room(&c->out) < sizeof(cl) - 1) {
        struct pt_buf nb = {0};
        if (pt_buf_alloc(&nb, c->out.cap + (uint32_t)sizeof(cl)) < 0)
            return false;
        pt_buf_put(&nb, pt_buf_rpos(&c->out), pt_buf_len(&c->out));
        pt_buf_release(&c->out);
        c->out = nb;
    }
    size_t at = (size_t)(eol - h) + 2; /* just after the status line */
    h = pt_buf_rpos(&c->out);
    memmove(h + at + sizeof(cl) - 1, h + at, pt_buf_len(&c->out) - at);
    memcpy(h + at, cl, sizeof(cl) - 1);
    c->out.tail += (uint32_t)(sizeof(cl) - 1);
    return true;
}

/* The body could not be dropped (too long, malformed, too slow, the client stopped sending):
   the response goes out saying Connection: close, and the lingering close follows. */
static void discard_give_up(struct pt_conn *c)
{
    struct pt_req *r = c->r;
    r->is_discarding = false;
    r->is_keepalive = false;
    pt_timer_stop(&c->w->loop, &c->timer);
    if (!head_say_close(c))
        pt_conn_close(c);
}

/* Reads and drops the request body of a locally answered request (plan_discard). Returns PT_OK
   when the body is gone or given up on (the response may go out), PT_AGAIN to wait for bytes
   (body_timeout armed), or PT_ERR when the connection failed. Bytes after the body (a pipelined
   request) stay in c->in. */
static int discard_body(struct pt_conn *c)
{
    struct pt_req *r = c->r;
    struct pt_body *b = &r->req_body;
    for (;;) {
        uint32_t len = pt_buf_len(&c->in);
        if (len) {
            uint32_t used = len;
            if (b->is_chunked) {
                size_t dlen = len;
                ssize_t rc = pt_h1_chunked_decode(&b->dec, pt_buf_rpos(&c->in), &dlen);
                if (rc == PT_H1_EBAD) {
                    discard_give_up(c);
                    return PT_OK;
                }
                if (rc >= 0) { /* the last chunk: what follows it moved to just after the data */
                    b->is_done = true;
                    used = len - (uint32_t)rc;
                    c->in.tail = c->in.head + (uint32_t)dlen + (uint32_t)rc;
                    pt_buf_consume(&c->in, (uint32_t)dlen);
                } else {
                    c->in.head = c->in.tail = 0;
                }
            } else {
                used = (uint32_t)PT_MIN((uint64_t)len, b->left);
                b->left -= used;
                pt_buf_consume(&c->in, used);
                b->is_done = b->left == 0;
            }
            r->discarded_bytes += used;
            if (b->is_done) {
                r->is_discarding = false;
                pt_timer_stop(&c->w->loop, &c->timer);
                return PT_OK;
            }
            if (r->discarded_bytes > DISCARD_MAX_BYTES) {
                discard_give_up(c);
                return PT_OK;
            }
        }
        if (!c->t.can_read) {
            if (!pt_timer_is_armed(&c->timer))
                pt_timer_set(&c->w->loop, &c->timer, r->cfg->limits.body_timeout_ms);
            return PT_AGAIN;
        }
        if (!c->in.data && pt_buf_alloc(&c->in, PT_BUF_SMALL) < 0)
            return PT_ERR;
        if (pt_buf_room(&c->in) == 0)
            pt_buf_compact(&c->in);
        ssize_t n = pt_conn_read(c, c->in.data + c->in.tail, pt_buf_room(&c->in));
        if (n > 0) {
            c->in.tail += (uint32_t)n;
            continue;
        }
        if (n == 0) {
            c->is_eof = true; /* the client may still read the answer */
            discard_give_up(c);
            return PT_OK;
        }
        if (n != -EAGAIN)
            return PT_ERR;
    }
}

/* ---- the pump ---- */

static void linger(struct pt_conn *c)
{
    int rc = pt_conn_flush(c);
    if (rc == PT_ERR) {
        pt_conn_close(c);
        return;
    }
    if (rc == PT_AGAIN)
        return;
    if (!c->is_lingering) {
        c->is_lingering = true;
        pt_transport_shutdown(&c->t, true); /* close_notify on TLS, then FIN */
        pt_timer_set(&c->w->loop, &c->timer, LINGER_MS);
    }
    /* Read and drop what the client still sends so closing does not reset the connection and
       destroy the response in flight (RFC 9112 §9.6). */
    char sink[4096];
    size_t total = 0;
    while (c->t.can_read && total < LINGER_MAX_BYTES) {
        ssize_t n = read(c->io.fd, sink, sizeof(sink)); /* under TLS too: nothing is decrypted */
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            c->t.can_read = false;
            return;
        }
        break; /* EOF or error */
    }
    pt_conn_close(c);
}

static void handshake(struct pt_conn *c)
{
    int rc = pt_transport_handshake(&c->t);
    if (rc == PT_OK) {
        struct pt_tls_conn *tc = pt_transport_tls(&c->t);
        size_t alen = 0;
        const char *alpn = tc ? pt_tls_alpn(tc, &alen) : NULL;
        if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
            pt_h2_conn_start(c); /* RFC 9113 §3.2: ALPN chose HTTP/2 */
            return;
        }
        c->state = PT_CS_HEAD;
        c->again = true;
        return;
    }
    if (rc == PT_DONE) {
        /* A TLS-ALPN-01 validation (RFC 8737 §3): the handshake was the whole answer. */
        pt_log_debug("connection %llu: ACME TLS-ALPN-01 validation done",
                     (unsigned long long)c->id);
        pt_conn_close(c);
        return;
    }
    if (rc == PT_AGAIN)
        return;
    char peer[64];
    if (!pt_sock_ntop(&c->peer.u.sa, peer, sizeof(peer)))
        memcpy(peer, "-", 2);
    pt_log_info("%s handshake with %s failed: %s", c->t.ops->name, peer, pt_transport_error(&c->t));
    pt_conn_close(c);
}

static void conn_step(struct pt_conn *c)
{
    switch (c->state) {
    case PT_CS_HANDSHAKE:
        handshake(c);
        return;
    case PT_CS_HEAD:
        read_head(c);
        return;
    case PT_CS_REQ: {
        struct pt_req *r = c->r;
        if (r->pstate != PT_PS_NONE) {
            pt_proxy_run(r);
            if (!c->is_closed && c->r == r && r->pstate == PT_PS_NONE)
                c->again = true; /* the proxy answered locally: flush it as such */
            return;
        }
        if (r->is_discarding) {
            int drc = r->is_keepalive ? discard_body(c) : PT_OK;
            r->is_discarding = drc == PT_AGAIN;
            if (drc == PT_ERR)
                pt_conn_close(c);
            if (drc != PT_OK || c->is_closed)
                return;
        }
        int rc = pt_conn_flush(c);
        if (rc == PT_ERR)
            pt_conn_close(c);
        else if (rc == PT_OK)
            pt_conn_request_done(c);
        return;
    }
    case PT_CS_CLOSING:
        linger(c);
        return;
    case PT_CS_H2:
        pt_h2_conn_step(c);
        return;
    default:
        pt_conn_close(c);
    }
}

void pt_conn_run(struct pt_conn *c)
{
    do {
        c->again = false;
        if (c->is_closed)
            return;
        conn_step(c);
    } while (c->again && !c->is_closed);
}
