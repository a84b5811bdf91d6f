/*
 * health.c - the active health checker (see health.h).
 *
 * One thread, one pt_loop, one struct check per (upstream, target) with health enabled. A
 * check is a small state machine driven by edge-triggered events and two timers:
 *
 *     IDLE --interval timer--> CONNECTING --connected--> HANDSHAKE --done--> EXCHANGE
 *       ^                        |  (tcp, plain: pass)     |  (tcp, TLS: pass)    |
 *       +------ verdict: pass / fail (error, timeout timer, bad status, body) ----+
 *
 * The check speaks the upstream's protocol over the same kind of connection its requests use
 * (core/transport.h): plain TCP for http:// targets, TLS for https:// ones, with a client TLS
 * context built from the upstream's settings (ca_file, tls_verify, cert/key), the target's host
 * as SNI and verified name, and ALPN h2 for protocol h2 (a target that does not select h2 fails
 * the check). HANDSHAKE is a no-op on plain transports.
 *
 * HTTP/1.1 checks (protocol http1.1) send one "METHOD path HTTP/1.1" request with Host and
 * Connection: close, wait for the complete head (pt_h1_find_head_end, then the strict
 * pt_h1_parse_response: a malformed response fails the check), test the status against the
 * expect ranges and, when body is set, look for the substring in the first CHECK_BUF_MAX bytes
 * of the body (raw bytes: with a chunked body a chunk boundary may split the text; keep health
 * bodies short). HTTP/2 checks (protocol h2 and h2c) send the connection preface, SETTINGS and
 * one HEADERS request (health_h2.c, an nghttp2 client session driven from memory) and judge
 * the response's :status and its DATA the same way; bytes that are not HTTP/2 (an HTTP/1.1-only
 * target behind h2c), a GOAWAY or a reset stream before the response fail the check.
 *
 * tcp checks are a connect on plain targets, and a connect plus a verified TLS handshake
 * (with ALPN h2 for protocol h2) on https ones: a target whose certificate Portico refuses, or
 * that cannot speak h2, could serve no request, so a bare connect would call it up wrongly.
 * h2c tcp checks stay a connect: the preface would make them an HTTP check.
 *
 * An upstream with ssrf_guard has its addresses checked before each probe (upstream/ssrf.h): a
 * forbidden one fails without a connect, so it goes down with the guard's reason in the log.
 *
 * Verdicts: fall failures in a row take an up target down, rise passes in a row bring it
 * back; both are logged once per change. The counters and the verdict are atomics in the
 * shared target state; only this thread writes the counters.
 *
 * Why one thread and not per worker: N workers would multiply the probes by N and could
 * disagree; one checker gives one verdict that all workers read at once. Why a thread and not
 * the main thread: main blocks in configuration loading (DNS) and signal handling.
 *
 * TLS contexts: the checker has its own (not the workers'), one per upstream with health and
 * https targets, built from the configuration on the caller's thread by pt_health_create and
 * pt_health_update (building reads files and may block; the checker thread must not), handed
 * over with the runtime state, and released with the check set that uses them. Its own because
 * the ALPN offer is the check's (h2 for protocol h2) and because health.h takes the runtime
 * state alone. Sessions resume across checks of one target (the context's session store).
 *
 * Reload: pt_health_update hands the new runtime state (and TLS contexts) over under a mutex
 * and waits on a condition variable until this thread has switched, so the caller knows when
 * the old state is no longer referenced. In-flight checks of the old state are closed at once
 * and freed after the current event batch (pt_loop_defer).
 */
#include "upstream/health.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/transport.h"
#include "upstream/ssrf.h"
#include "http/h1_parse.h"
#include "tls/tls.h"
#include "tls/tls_transport.h"
#include "upstream/health_h2.h"

#define CHECK_BUF_MAX 16384
#define CHECK_REQ_MAX 1024

enum check_state { CK_IDLE = 0, CK_CONNECTING, CK_HANDSHAKE, CK_EXCHANGE };

struct check {
    struct pt_health *h;
    const struct pt_upstream_cfg *u;
    const struct pt_target_cfg *tc;
    struct pt_target_state *t;
    struct pt_tls_client_ctx *cc; /* https targets: the set's context (borrowed), or NULL */
    struct pt_io io;
    struct pt_transport tr;   /* valid from HANDSHAKE on (is_tr) */
    bool is_tr;               /* tr holds a transport to free */
    struct pt_timer interval; /* next check */
    struct pt_timer timeout;  /* this check's deadline */
    int state;                /* enum check_state */
    char req[CHECK_REQ_MAX];  /* HTTP/1.1: the request */
    size_t req_len, sent;
    char *buf; /* HTTP/1.1: CHECK_BUF_MAX bytes of response, during EXCHANGE */
    size_t len, scanned;
    struct pt_health_h2 *h2; /* HTTP/2: the exchange, during EXCHANGE */
};

struct check_set {
    struct pt_defer d;
    struct check *checks;
    size_t n;
    struct pt_tls_client_ctx **tls; /* per upstream of the rt (NULL entries: none), owned */
    size_t n_tls;
};

struct pt_health {
    pthread_t thread;
    bool is_started;
    struct pt_loop loop;
    struct pt_io wake; /* eventfd */
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const struct pt_upstreams_rt *pending;  /* guarded by mu */
    struct pt_tls_client_ctx **pending_tls; /* its TLS contexts (owned); guarded by mu */
    bool has_pending;                       /* guarded by mu */
    struct check_set *set;                  /* this thread's checks */
};

static void verdict(struct check *ck, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool is_h2(const struct check *ck)
{
    return ck->u->protocol == PT_UPROTO_H2 || ck->u->protocol == PT_UPROTO_H2C;
}

static void end_check(struct check *ck)
{
    if (ck->is_tr) {
        pt_transport_shutdown(&ck->tr, false); /* TLS close_notify, best effort */
        pt_transport_free(&ck->tr);
        ck->is_tr = false;
    }
    if (ck->io.fd >= 0)
        pt_loop_close(&ck->h->loop, &ck->io);
    pt_timer_stop(&ck->h->loop, &ck->timeout);
    free(ck->buf);
    ck->buf = NULL;
    pt_health_h2_free(ck->h2);
    ck->h2 = NULL;
    ck->state = CK_IDLE;
}

/* Gives the check's verdict and ends it. The reason is formatted first: its arguments may
   point into the check's transport or HTTP/2 session, which end_check frees. */
static void verdict(struct check *ck, bool ok, const char *fmt, ...)
{
    struct pt_target_state *t = ck->t;
    uint64_t now = ck->h->loop.now_ms;
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    end_check(ck);
    if (ok) {
        atomic_store_explicit(&t->hc_fails, 0, memory_order_relaxed);
        unsigned p = atomic_fetch_add_explicit(&t->hc_passes, 1, memory_order_relaxed) + 1;
        if (p >= ck->u->health.rise && pt_target_set_healthy(t, true, now))
            pt_log_info("upstream %s target %s is up", ck->u->name, ck->tc->url);
        return;
    }
    atomic_store_explicit(&t->hc_passes, 0, memory_order_relaxed);
    unsigned f = atomic_fetch_add_explicit(&t->hc_fails, 1, memory_order_relaxed) + 1;
    if (f >= ck->u->health.fall && atomic_load(&t->is_healthy)) {
        if (pt_target_set_healthy(t, false, now))
            pt_log_warn("upstream %s target %s is down: %s", ck->u->name, ck->tc->url, why);
    }
}

/* Ends a check that could not run because Portico itself is short of file descriptors or
   memory (err: positive errno; what: the call that failed). No verdict: a shortage of ours
   says nothing about the target, so neither counter moves and the state stays as it was. */
static void skip_local(struct check *ck, const char *what, int err)
{
    end_check(ck);
    pt_log_ratelimited(PT_LOG_WARN,
                       "health check of upstream %s target %s skipped: local resource shortage "
                       "in Portico (%s: %s); the target's state is unchanged",
                       ck->u->name, ck->tc->url, what, strerror(err));
}

static bool status_ok(const struct pt_health_cfg *hc, int status)
{
    for (size_t i = 0; i < hc->n_expect; i++)
        if (status >= hc->expect[i].lo && status <= hc->expect[i].hi)
            return true;
    return false;
}

/* The verdict on a final response with this status and the body received so far (body_done:
   no more of it will come, or no more fits). Returns true when a verdict was given. */
static bool judge_final(struct check *ck, int status, const char *body, size_t bl, bool body_done)
{
    const struct pt_health_cfg *hc = &ck->u->health;
    if (!status_ok(hc, status)) {
        verdict(ck, false, "status %d", status);
        return true;
    }
    if (!hc->body || strcmp(hc->method, "HEAD") == 0 ||
        memmem(body, bl, hc->body, strlen(hc->body))) {
        verdict(ck, true, "ok");
        return true;
    }
    if (body_done) {
        verdict(ck, false, "body does not contain \"%.40s\"", hc->body);
        return true;
    }
    return false;
}

/* HTTP/1.1: looks at what was read so far. Returns true when a verdict was given. */
static bool judge_h1(struct check *ck, bool at_eof)
{
    size_t scanned = ck->scanned;
    ssize_t head = pt_h1_find_head_end(ck->buf, ck->len, &scanned);
    ck->scanned = scanned;
    if (head == PT_H1_INCOMPLETE) {
        if (at_eof || ck->len == CHECK_BUF_MAX) {
            verdict(ck, false,
                    at_eof ? "connection closed before a response" : "response head too large");
            return true;
        }
        return false;
    }
    struct pt_field hdrs[100];
    struct pt_h1_response r;
    memset(&r, 0, sizeof(r));
    r.headers = hdrs;
    r.num_headers = PT_ARRAY_LEN(hdrs);
    if (pt_h1_parse_response(ck->buf, (size_t)head, &r) < 0) {
        verdict(ck, false, "malformed response");
        return true;
    }
    if (r.status < 200) {
        /* 1xx interim: drop it and wait for the final head. */
        memmove(ck->buf, ck->buf + head, ck->len - (size_t)head);
        ck->len -= (size_t)head;
        ck->scanned = 0;
        return judge_h1(ck, at_eof);
    }
    size_t bl = ck->len - (size_t)head;
    bool complete = r.framing.content_length >= 0 && bl >= (uint64_t)r.framing.content_length;
    return judge_final(ck, r.status, ck->buf + head, bl,
                       at_eof || complete || ck->len == CHECK_BUF_MAX);
}

/* HTTP/2: looks at the session's state after a read. Returns true when a verdict was given. */
static bool judge_h2(struct check *ck, bool at_eof)
{
    struct pt_health_h2 *x = ck->h2;
    int status = pt_health_h2_status(x);
    const char *why = pt_health_h2_error(x);
    if (status) {
        size_t bl;
        const char *body = pt_health_h2_body(x, &bl);
        return judge_final(ck, status, body, bl,
                           at_eof || why || pt_health_h2_is_ended(x) || bl == CHECK_BUF_MAX);
    }
    if (why || at_eof) {
        verdict(ck, false, "%s", why ? why : "connection closed before a response");
        return true;
    }
    return false;
}

/* The reason of a failed transport operation (rc < 0). */
static const char *io_error(struct check *ck, ssize_t rc)
{
    return rc == -EIO && ck->tr.ops->is_secure ? pt_transport_error(&ck->tr) : strerror((int)-rc);
}

/* Makes the connected socket a transport (TLS for https targets). Returns false when the check
   ended (skipped for want of memory). */
static bool start_transport(struct check *ck)
{
    if (!ck->tc->is_https) {
        pt_transport_plain_init(&ck->tr, ck->io.fd);
    } else if (pt_tls_transport_client_init(&ck->tr, ck->cc, ck->io.fd, ck->tc->host,
                                            ck->tc->host_header) < 0) {
        skip_local(ck, "TLS", ENOMEM);
        return false;
    }
    ck->is_tr = true;
    return true;
}

/* Whether the TLS handshake chose ALPN h2 (RFC 9113 §3.2). */
static bool alpn_is_h2(const struct check *ck)
{
    struct pt_tls_conn *tc = pt_transport_tls(&ck->tr);
    size_t len = 0;
    const char *p = tc ? pt_tls_alpn(tc, &len) : NULL;
    return p && len == 2 && memcmp(p, "h2", 2) == 0;
}

/* Prepares the request. Returns false when the check ended (skipped for want of memory). */
static bool start_exchange(struct check *ck)
{
    const struct pt_health_cfg *hc = &ck->u->health;
    if (is_h2(ck)) {
        ck->h2 = pt_health_h2_new(hc->method, hc->path, ck->tc->is_https ? "https" : "http",
                                  hc->host ? hc->host : ck->tc->host_header, CHECK_BUF_MAX);
    } else {
        ck->buf = malloc(CHECK_BUF_MAX);
    }
    if (!ck->h2 && !ck->buf) {
        skip_local(ck, "malloc", ENOMEM);
        return false;
    }
    ck->state = CK_EXCHANGE;
    return true;
}

/* Sends what waits: the rest of the HTTP/1.1 request, or the HTTP/2 session's frames. Returns
   true when all of it went, false when the socket is full or the check ended. */
static bool flush(struct check *ck)
{
    for (;;) {
        const char *p;
        size_t n;
        if (ck->h2) {
            if (pt_health_h2_output(ck->h2, &p, &n) < 0) {
                skip_local(ck, "HTTP/2 output", ENOMEM);
                return false;
            }
        } else {
            p = ck->req + ck->sent;
            n = ck->req_len - ck->sent;
        }
        if (n == 0)
            return true;
        struct iovec v = {.iov_base = (void *)p, .iov_len = n};
        ssize_t w = pt_transport_writev(&ck->tr, &v, 1, false);
        if (w == -EAGAIN)
            return false;
        if (w < 0 && pt_upstream_is_local_shortage((int)-w)) {
            skip_local(ck, "send", (int)-w);
            return false;
        }
        if (w < 0) {
            verdict(ck, false, "send: %s", io_error(ck, w));
            return false;
        }
        if (ck->h2)
            pt_health_h2_sent(ck->h2, (size_t)w);
        else
            ck->sent += (size_t)w;
    }
}

/* Reads until the socket is drained or a verdict is given. */
static void exchange(struct check *ck)
{
    char tmp[CHECK_BUF_MAX];
    for (;;) {
        if (!flush(ck) && ck->state == CK_IDLE)
            return;
        char *into = ck->h2 ? tmp : ck->buf + ck->len;
        size_t room = ck->h2 ? sizeof(tmp) : CHECK_BUF_MAX - ck->len;
        ssize_t r = pt_transport_read(&ck->tr, into, room);
        if (r == -EAGAIN)
            return;
        if (r < 0) {
            verdict(ck, false, "read: %s", io_error(ck, r));
            return;
        }
        if (ck->h2) {
            if (r > 0)
                (void)pt_health_h2_feed(ck->h2, tmp, (size_t)r); /* judge_h2 reads the error */
            if (judge_h2(ck, r == 0))
                return;
        } else {
            ck->len += (size_t)r;
            if (judge_h1(ck, r == 0))
                return;
        }
    }
}

static void drive(struct check *ck, uint32_t events)
{
    if (ck->state == CK_IDLE)
        return;
    if (ck->state == CK_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(ck->io.fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err && pt_upstream_is_local_shortage(err)) {
            skip_local(ck, "connect", err);
            return;
        }
        if (err) {
            verdict(ck, false, "connect: %s", strerror(err));
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN | EPOLLHUP | EPOLLERR)))
            return;
        if (ck->u->health.type == PT_HEALTH_TCP && !ck->tc->is_https) {
            verdict(ck, true, "ok");
            return;
        }
        if (!start_transport(ck))
            return;
        ck->state = CK_HANDSHAKE;
    }
    pt_transport_events(&ck->tr, events);
    if (ck->state == CK_HANDSHAKE) {
        int rc = pt_transport_handshake(&ck->tr);
        if (rc == PT_AGAIN)
            return;
        if (rc != PT_OK) {
            verdict(ck, false, "TLS handshake: %s", pt_transport_error(&ck->tr));
            return;
        }
        if (ck->u->protocol == PT_UPROTO_H2 && !alpn_is_h2(ck)) {
            verdict(ck, false, "the target did not select ALPN h2");
            return;
        }
        if (ck->u->health.type == PT_HEALTH_TCP) {
            verdict(ck, true, "ok");
            return;
        }
        if (!start_exchange(ck))
            return;
    }
    if (ck->state == CK_EXCHANGE)
        exchange(ck);
}

static void on_io(struct pt_io *io, uint32_t events)
{
    drive(PT_CONTAINER_OF(io, struct check, io), events);
}

static void on_timeout(struct pt_timer *tm)
{
    struct check *ck = PT_CONTAINER_OF(tm, struct check, timeout);
    if (ck->state != CK_IDLE)
        verdict(ck, false, "no answer in %ums", (unsigned)ck->u->health.timeout_ms);
}

static void on_interval(struct pt_timer *tm)
{
    struct check *ck = PT_CONTAINER_OF(tm, struct check, interval);
    struct pt_loop *l = &ck->h->loop;
    pt_timer_set(l, &ck->interval, ck->u->health.interval_ms);
    if (ck->state != CK_IDLE)
        return; /* cannot happen while timeout <= interval; stay safe */
    if (ck->tc->is_https && !ck->cc) {
        skip_local(ck, "TLS context", ENOMEM); /* see make_tls: logged when it failed */
        return;
    }
    if (ck->u->ssrf_guard) {
        /* The checker obeys the guard too: a forbidden address is down, and says why. */
        struct pt_ssrf_verdict v =
            pt_ssrf_check(&ck->tc->addr.u.sa, ck->u->allow_private, ck->u->n_allow_private);
        if (v.why) {
            char why[160];
            pt_ssrf_explain(&ck->tc->addr.u.sa, v, why, sizeof(why));
            verdict(ck, false, "refused by the SSRF guard: %s", why);
            return;
        }
    }
    int in_progress = 0;
    int fd = pt_sock_connect(&ck->tc->addr.u.sa, ck->tc->addr.len, &in_progress);
    if (fd < 0 && pt_upstream_is_local_shortage(-fd)) {
        skip_local(ck, "socket", -fd);
        return;
    }
    if (fd < 0) {
        verdict(ck, false, "connect: %s", strerror(-fd));
        return;
    }
    ck->io.fd = fd;
    ck->io.cb = on_io;
    ck->sent = 0;
    ck->len = 0;
    ck->scanned = 0;
    ck->state = CK_CONNECTING;
    int rc = pt_loop_add(l, &ck->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP, false);
    if (rc < 0) {
        /* epoll_ctl fails only for want of memory (ENOMEM) or of watches (ENOSPC): ours. */
        skip_local(ck, "epoll", -rc);
        return;
    }
    pt_timer_set(l, &ck->timeout, ck->u->health.timeout_ms);
    if (!in_progress)
        drive(ck, EPOLLOUT);
}

static void free_tls(struct pt_tls_client_ctx **tls, size_t n)
{
    for (size_t i = 0; tls && i < n; i++)
        pt_tls_client_ctx_unref(tls[i]);
    free(tls);
}

/* Builds the checker's TLS client contexts for rt: one per upstream with health and an https
   target, from its ca_file, tls_verify and cert/key, offering ALPN h2 for protocol h2 and
   http/1.1 otherwise. Reads files (may block): the caller's thread, never the checker's. An
   entry that cannot be built is logged and left NULL (its checks are skipped); the result is
   NULL only when out of memory (all https checks skipped). Returns an owned array of rt->n_ups
   entries. */
static struct pt_tls_client_ctx **make_tls(const struct pt_upstreams_rt *rt)
{
    struct pt_tls_client_ctx **tls = calloc(rt->n_ups ? rt->n_ups : 1, sizeof(*tls));
    if (!tls) {
        pt_log_error("health checks: out of memory building TLS contexts");
        return NULL;
    }
    for (size_t i = 0; i < rt->n_ups; i++) {
        const struct pt_upstream_cfg *u = rt->ups[i].cfg;
        if (!u->health.is_enabled || !pt_upstream_has_https(u))
            continue;
        struct pt_tls_err te;
        tls[i] = pt_upstream_tls_new(u, &te);
        if (!tls[i])
            pt_log_error("health checks of upstream %s: no TLS context, checks skipped: %s",
                         u->name, te.msg);
    }
    return tls;
}

static void free_set(struct pt_defer *d)
{
    struct check_set *s = PT_CONTAINER_OF(d, struct check_set, d);
    free(s->checks);
    free_tls(s->tls, s->n_tls);
    free(s);
}

/* Builds (and arms, staggered) the checks of rt, with tls from make_tls(rt) (owned: kept by
   the set, or freed here when out of memory). NULL when out of memory. */
static struct check_set *make_set(struct pt_health *h, const struct pt_upstreams_rt *rt,
                                  struct pt_tls_client_ctx **tls)
{
    struct check_set *s = calloc(1, sizeof(*s));
    if (!s) {
        free_tls(tls, rt->n_ups);
        return NULL;
    }
    s->tls = tls;
    s->n_tls = rt->n_ups;
    size_t n = 0;
    for (size_t i = 0; i < rt->n_ups; i++)
        if (rt->ups[i].cfg->health.is_enabled)
            n += rt->ups[i].n_targets;
    s->checks = calloc(n ? n : 1, sizeof(*s->checks));
    if (!s->checks) {
        free_tls(tls, rt->n_ups);
        free(s);
        return NULL;
    }
    pt_loop_update_time(&h->loop);
    for (size_t i = 0; i < rt->n_ups; i++) {
        const struct pt_upstream_state *us = &rt->ups[i];
        const struct pt_health_cfg *hc = &us->cfg->health;
        if (!hc->is_enabled)
            continue;
        for (size_t j = 0; j < us->n_targets; j++) {
            struct check *ck = &s->checks[s->n++];
            ck->h = h;
            ck->u = us->cfg;
            ck->tc = &us->cfg->targets[j];
            ck->t = us->targets[j];
            ck->cc = tls ? tls[i] : NULL;
            ck->io.fd = -1;
            pt_timer_init(&ck->interval, on_interval);
            pt_timer_init(&ck->timeout, on_timeout);
            int w = snprintf(ck->req, sizeof(ck->req),
                             "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-health\r\n"
                             "Accept: */*\r\nConnection: close\r\n\r\n",
                             hc->method, hc->path, hc->host ? hc->host : ck->tc->host_header);
            ck->req_len = w > 0 && (size_t)w < sizeof(ck->req) ? (size_t)w : 0;
            /* Spread the first checks over the first tenth of the interval. */
            uint64_t first = s->n * 7919u % (hc->interval_ms / 10 + 1);
            pt_timer_set(&h->loop, &ck->interval, first);
        }
    }
    return s;
}

/* Ends the set's checks now (sockets closed, TLS and HTTP/2 state freed) and frees the set
   after the current event batch, which may still name its checks. */
static void drop_set(struct pt_health *h, struct check_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        struct check *ck = &s->checks[i];
        end_check(ck);
        pt_timer_stop(&h->loop, &ck->interval);
    }
    pt_loop_defer(&h->loop, &s->d, free_set);
}

static void on_wake(struct pt_io *io, uint32_t events)
{
    (void)events;
    struct pt_health *h = PT_CONTAINER_OF(io, struct pt_health, wake);
    uint64_t v;
    while (read(io->fd, &v, sizeof(v)) > 0) {
    }
    pthread_mutex_lock(&h->mu);
    if (h->has_pending) {
        struct check_set *s = make_set(h, h->pending, h->pending_tls);
        h->pending_tls = NULL;
        if (s) {
            drop_set(h, h->set);
            h->set = s;
        } else {
            pt_log_error("health checks: out of memory adopting the new configuration");
            drop_set(h, h->set);
            h->set = NULL;
        }
        h->has_pending = false;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
}

static void *run(void *arg)
{
    struct pt_health *h = arg;
    while (!atomic_load_explicit(&h->stop, memory_order_acquire))
        pt_loop_run_once(&h->loop, 1000);
    return NULL;
}

struct pt_health *pt_health_create(const struct pt_upstreams_rt *rt)
{
    struct pt_health *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->wake.fd = -1;
    if (pt_loop_init(&h->loop) < 0) {
        free(h);
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    atomic_init(&h->stop, false);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        goto fail;
    h->wake.fd = fd;
    h->wake.cb = on_wake;
    if (pt_loop_add(&h->loop, &h->wake, EPOLLIN, false) < 0)
        goto fail;
    h->set = make_set(h, rt, make_tls(rt));
    if (!h->set)
        goto fail;
    return h;
fail:
    pt_health_destroy(h);
    return NULL;
}

int pt_health_start(struct pt_health *h)
{
    int rc = pthread_create(&h->thread, NULL, run, h);
    if (rc != 0)
        return -rc;
    h->is_started = true;
    return 0;
}

int pt_health_update(struct pt_health *h, const struct pt_upstreams_rt *rt)
{
    struct pt_tls_client_ctx **tls = make_tls(rt); /* here: it may block */
    if (!h->is_started) {
        struct check_set *s = make_set(h, rt, tls);
        if (!s)
            return -ENOMEM;
        drop_set(h, h->set);
        h->set = s;
        pt_loop_run_once(&h->loop, 0); /* frees the old set */
        return 0;
    }
    pthread_mutex_lock(&h->mu);
    h->pending = rt;
    h->pending_tls = tls;
    h->has_pending = true;
    uint64_t one = 1;
    if (write(h->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        pt_log_error("health checks: cannot wake the checker: %s", strerror(errno));
    while (h->has_pending)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void pt_health_destroy(struct pt_health *h)
{
    if (!h)
        return;
    if (h->is_started) {
        atomic_store_explicit(&h->stop, true, memory_order_release);
        uint64_t one = 1;
        if (write(h->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            pt_log_error("health checks: cannot wake the checker: %s", strerror(errno));
        pthread_join(h->thread, NULL);
    }
    drop_set(h, h->set);
    h->set = NULL;
    if (h->wake.fd >= 0)
        pt_loop_close(&h->loop, &h->wake);
    pt_loop_run_once(&h->loop, 0); /* runs the deferred frees */
    pt_loop_destroy(&h->loop);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
