/*
 * worker.c - a worker thread: its loop, listeners, snapshot handles, request ids and access-log
 * batching (see worker.h for the snapshot design). The upstream keep-alive pool it embeds is
 * upstream/pool.c.
 *
 * Threading: everything here runs on the worker's own thread except pt_worker_request_stop(),
 * which only sets an atomic flag and writes the worker's eventfd.
 *
 * Access log: lines are appended to a per-worker buffer and written with one write(2) at the
 * end of each loop iteration (or when the buffer fills), so a busy worker issues one log
 * syscall per batch of requests rather than one per request.
 *
 * Listeners: one listening socket per listen address, bound by the main thread without
 * SO_REUSEPORT and shared by all workers, each of which registers it in its own epoll set with
 * EPOLLEXCLUSIVE (the kernel wakes one waiting worker per new connection, not all of them).
 * Rejected: a SO_REUSEPORT socket per worker, as before. The kernel spread connections over
 * workers evenly, but any process of the same user could bind the same address with
 * SO_REUSEPORT and join the group: a second Portico started on the same port took part of the
 * traffic and no one noticed. With one plain socket, a second bind gets EADDRINUSE, and the
 * process that owns the port is the only one answering it. The price is that an idle worker
 * tends to be the one woken, so load is spread less evenly at low rates; at high rates every
 * worker is busy accepting anyway.
 *
 * The sockets belong to the snapshots (struct pt_lsock, worker.h): a reload hands kept
 * addresses' sockets to the new snapshot unchanged and binds added ones; each worker, when it
 * takes up a new snapshot, registers the sockets it does not have yet and lets go of the ones
 * the snapshot no longer lists (listeners_sync). Connections already accepted are never
 * touched. A removed socket closes once the main thread and every worker have let go of it.
 *
 * Listeners are level-triggered: a wake-up accepts a bounded batch (server/conn.c) and, while
 * the accept queue is not empty, the next epoll_wait reports the listener again, after the
 * worker's other events had their turn. Nothing waits for another client to arrive. (The
 * edge-triggered listeners before stranded whatever a batch or an EMFILE left behind.) A worker
 * stops accepting for a moment (EPOLL_CTL_DEL, then a timer) when the process runs out of file
 * descriptors or reaches limits.max_connections.
 */
#include "http/fields.h"
#include "server/worker.h"

#include "server/bg.h"
#include "server/fwdauth.h"
#include "server/offload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "admin/metrics.h"
#include "admin/admin.h"
#include "core/buf.h"
#include "core/counters.h"
#include "core/log.h"
#include "core/sock.h"
#include "core/time.h"
#include "guard/ip.h"
#include "guard/jwks_fetch.h"
#include "guard/jwt.h"
#include "guard/waf.h"
#include "handler/geoip.h"
#include "handler/static.h"
#include "server/h2_conn.h"
#include "tls/tls.h"

#define LOG_BUF_BYTES (64u * 1024u)

void pt_snapshot_ref(struct pt_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void pt_snapshot_unref(struct pt_snapshot *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    pt_router_free(s->router);
    pt_metrics_map_free(s->metrics);
    pt_upstreams_rt_free(s->res.urt);
    for (size_t i = 0; i < s->res.n_roots; i++)
        pt_static_root_free(s->res.roots[i]);
    free(s->res.roots);
    for (size_t i = 0; i < s->n_listen_tls; i++)
        if (s->listen_tls[i])
            pt_tls_ctx_unref(s->listen_tls[i]);
    free(s->listen_tls);
    for (size_t i = 0; i < s->res.n_ups_tls; i++)
        if (s->res.ups_tls[i])
            pt_tls_client_ctx_unref(s->res.ups_tls[i]);
    free(s->res.ups_tls);
    pt_geoip_close(s->res.geoip);
    for (size_t i = 0; i < s->n_lsocks; i++) {
        if (s->holds_opens)
            pt_lsock_open_put(s->lsocks[i]);
        pt_lsock_unref(s->lsocks[i]);
    }
    free(s->lsocks);
    pt_admin_state_unref(s->admin);
    for (struct pt_ip_cfg *ip = s->cfg ? s->cfg->ips : NULL; ip; ip = ip->next)
        pt_ip_rules_free(ip->rules);
    for (struct pt_jwt_cfg *j = s->cfg ? s->cfg->jwts : NULL; j; j = j->next) {
        pt_jwt_keyset_unref(j->keys);
        pt_jwks_src_put(j->src);
    }
    pt_waf_release(s->cfg);
    pt_config_free(s->cfg);
    if (s->owns_access_fd && s->access_fd >= 0)
        close(s->access_fd);
    free(s);
}

/* ---- snapshot handles ---- */

static void log_flush(struct pt_worker *w);
static void listeners_sync(struct pt_worker *w, const struct pt_snapshot *s);

static struct pt_wsnap *wsnap_new(struct pt_snapshot *s)
{
    struct pt_wsnap *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return NULL;
    /* One block: the per-upstream balancer states, then every upstream's scores. */
    const struct pt_config *cfg = s->cfg;
    size_t n_scores = 0;
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        n_scores += cfg->upstreams[i]->n_targets;
    ws->lb = calloc(1, (cfg->n_upstreams + 1) * sizeof(*ws->lb) + n_scores * sizeof(int64_t));
    if (!ws->lb) {
        free(ws);
        return NULL;
    }
    int64_t *p = (int64_t *)(void *)(ws->lb + cfg->n_upstreams + 1);
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)(uintptr_t)ws ^ (uint64_t)time(NULL);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        ws->lb[i].scores = p;
        ws->lb[i].rng = (seed + i * 0x9e3779b97f4a7c15ull) | 1;
        p += cfg->upstreams[i]->n_targets;
    }
    ws->s = s; /* the caller's reference passes to the handle */
    return ws;
}

static void wsnap_free(struct pt_wsnap *ws)
{
    pt_snapshot_unref(ws->s);
    free(ws->lb);
    free(ws);
}

static void wsnap_retire(struct pt_worker *w, struct pt_wsnap *ws)
{
    if (ws->users == 0) {
        wsnap_free(ws);
        return;
    }
    ws->next = w->old_ws;
    w->old_ws = ws;
}

static void refresh(struct pt_worker *w)
{
    if (PT_LIKELY(atomic_load_explicit(&w->pending, memory_order_relaxed) == NULL))
        return;
    struct pt_snapshot *s = atomic_exchange_explicit(&w->pending, NULL, memory_order_acquire);
    struct pt_wsnap *ws = s ? wsnap_new(s) : NULL;
    if (ws) {
        bool is_reload = w->ws != NULL;
        if (w->ws) {
            log_flush(w);
            wsnap_retire(w, w->ws);
        }
        w->ws = ws;
        listeners_sync(w, s);
        if (is_reload) {
            pt_h2_reload(w); /* new streams go to new connections, on the new settings */
            pt_timer_set(&w->loop, &w->reload_timer, s->cfg->shutdown_timeout_ms);
        }
    } else if (s) {
        atomic_store(&w->pending, s); /* out of memory: try again on the next request */
    }
}

const struct pt_config *pt_worker_cfg(struct pt_worker *w)
{
    refresh(w);
    return w->ws ? w->ws->s->cfg : NULL;
}

struct pt_wsnap *pt_worker_snap_get(struct pt_worker *w)
{
    refresh(w);
    if (PT_UNLIKELY(!w->ws))
        return NULL;
    w->ws->users++;
    return w->ws;
}

void pt_worker_snap_put(struct pt_worker *w, struct pt_wsnap *ws)
{
    PT_BUG_ON(ws->users == 0);
    ws->users--;
    if (ws->users == 0 && ws != w->ws) {
        struct pt_wsnap **pp = &w->old_ws;
        while (*pp && *pp != ws)
            pp = &(*pp)->next;
        if (*pp) {
            *pp = ws->next;
            wsnap_free(ws);
        }
    }
}

/* ---- request ids ---- */

static uint64_t xorshift128p(uint64_t s[2])
{
    uint64_t a = s[0];
    const uint64_t b = s[1];
    s[0] = b;
    a ^= a << 23;
    s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return s[1] + b;
}

uint64_t pt_worker_random(struct pt_worker *w)
{
    return xorshift128p(w->rid_seed);
}

/* pt_handler_env.random for the worker's requests. */
static uint64_t env_random(void *arg)
{
    return pt_worker_random(arg);
}

size_t pt_worker_request_id(struct pt_worker *w, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {xorshift128p(w->rid_seed), xorshift128p(w->rid_seed)};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 16; j++)
            out[i * 16 + j] = hex[(v[i] >> (60 - 4 * j)) & 15];
    out[32] = '\0';
    return 32;
}

/* ---- access log ---- */

static void log_flush(struct pt_worker *w)
{
    if (w->log_len == 0)
        return;
    int fd = w->ws ? w->ws->s->access_fd : -1;
    size_t off = 0;
    while (fd >= 0 && off < w->log_len) {
        ssize_t n = write(fd, w->log_buf + off, w->log_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk or closed pipe must not stop serving; lines are dropped */
        off += (size_t)n;
    }
    w->log_len = 0;
}

/* Appends s with JSON string escaping (or, for combined, with '"' and controls escaped). */
static size_t esc(char *dst, size_t room, const char *s, bool json)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; *s && n + 6 < room; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f || (json && ch >= 0x80)) {
            if (json) {
                memcpy(dst + n, "\\u00", 4);
                dst[n + 4] = hex[ch >> 4];
                dst[n + 5] = hex[ch & 15];
                n += 6;
            } else {
                dst[n++] = '\\';
                dst[n++] = 'x';
                dst[n++] = hex[ch >> 4];
                dst[n++] = hex[ch & 15];
            }
        } else {
            dst[n++] = (char)ch;
        }
    }
    return n;
}

/* Counts r's request and its upstream part in w's block (admin/metrics.h). */
static void count_request(struct pt_worker *w, const struct pt_req *r)
{
    const struct pt_metrics_map *m = r->ws->s->metrics;
    if (!m || !w->ctr)
        return;
    uint32_t base = m->unrouted_base;
    if (r->route && r->site) { /* a route of the site's table (compared as addresses) */
        size_t si = ((uintptr_t)r->site - (uintptr_t)r->cfg->sites) / sizeof(*r->site);
        size_t ri = ((uintptr_t)r->route - (uintptr_t)r->site->routes) / sizeof(*r->route);
        if (si < m->n_sites && ri < r->site->n_routes)
            base = m->route_base[m->site_first[si] + ri];
    }
    pt_metrics_on_request(w->ctr, base, r->method_id, r->status,
                          (w->loop.now_ms - r->start_ms) * 1000);
    const struct pt_attempt *a = &r->at;
    if (a->ups && a->ups->index < m->n_ups)
        pt_metrics_on_upstream(w->ctr, m->ups_base[a->ups->index], a->retries, a->was_queued,
                               a->head_latency_us);
}

/* Writes r's access-log line (kept out of line: with the log off, pt_worker_access_log stays a
   leaf that saves no registers). */
static __attribute__((noinline)) void log_line(struct pt_worker *w, const struct pt_req *r)
{
    if (w->log_len > LOG_BUF_BYTES - 4096)
        log_flush(w);
    const struct pt_wallclock *wc = pt_wallclock_now();
    char peer[64];
    if (!pt_sock_ntop(&r->c->peer.u.sa, peer, sizeof(peer)))
        memcpy(peer, "-", 2);
    double secs = (double)(w->loop.now_ms - r->start_ms) / 1000.0;
    char *p = w->log_buf + w->log_len;
    size_t room = LOG_BUF_BYTES - w->log_len - 2, n = 0;
    bool json = r->cfg->log.format == PT_LOG_FORMAT_JSON;
#define PUT_LIT(s)                                                                                 \
    do {                                                                                           \
        size_t l_ = sizeof(s) - 1;                                                                 \
        if (n + l_ < room) {                                                                       \
            memcpy(p + n, s, l_);                                                                  \
            n += l_;                                                                               \
        }                                                                                          \
    } while (0)
#define PUT_ESC(s) (n += esc(p + n, room - n, (s), json))
#define PUT_FMT(...)                                                                               \
    do {                                                                                           \
        int k_ = snprintf(p + n, room - n, __VA_ARGS__);                                           \
        if (k_ > 0)                                                                                \
            n += PT_MIN((size_t)k_, room - n - 1);                                                 \
    } while (0)
    if (json) {
        PUT_FMT("{\"time\":\"%s\",\"remote_addr\":\"%s\",\"method\":\"", wc->iso_date, peer);
        PUT_ESC(r->method);
        PUT_LIT("\",\"uri\":\"");
        PUT_ESC(r->uri);
        PUT_LIT("\",\"path\":\"");
        {
            char path[sizeof(r->uri)];
            size_t k = strcspn(r->uri, "?");
            memcpy(path, r->uri, k);
            path[k] = '\0';
            PUT_ESC(path);
        }
        if (r->h2s) /* a format each: one conversion more costs HTTP/1.1 a hundred instructions */
            PUT_FMT("\",\"protocol\":\"HTTP/2.0\",\"status\":%d,\"bytes\":%llu,\"host\":\"",
                    r->status, (unsigned long long)r->bytes_out);
        else
            PUT_FMT("\",\"protocol\":\"HTTP/1.%d\",\"status\":%d,\"bytes\":%llu,\"host\":\"",
                    r->minor_version, r->status, (unsigned long long)r->bytes_out);
        PUT_ESC(r->host);
        PUT_LIT("\",\"referer\":\"");
        PUT_ESC(r->referer);
        PUT_LIT("\",\"user_agent\":\"");
        PUT_ESC(r->user_agent);
        PUT_FMT("\",\"duration_ms\":%.3f,\"request_id\":\"%s\",\"scheme\":\"%s\","
                "\"upstream\":\"",
                secs * 1000.0, r->request_id, r->is_tls ? "https" : "http");
        PUT_ESC(r->upstream_name ? r->upstream_name : "");
        PUT_LIT("\"}\n");
    } else {
        PUT_FMT("%s - - [%s] \"", peer, wc->clf_date);
        PUT_ESC(r->method);
        PUT_LIT(" ");
        PUT_ESC(r->uri);
        if (r->h2s)
            PUT_FMT(" HTTP/2.0\" %d %llu \"", r->status, (unsigned long long)r->bytes_out);
        else
            PUT_FMT(" HTTP/1.%d\" %d %llu \"", r->minor_version, r->status,
                    (unsigned long long)r->bytes_out);
        PUT_ESC(r->referer[0] ? r->referer : "-");
        PUT_LIT("\" \"");
        PUT_ESC(r->user_agent[0] ? r->user_agent : "-");
        PUT_FMT("\" %.3f %s %s\n", secs, r->request_id, r->is_tls ? "https" : "http");
    }
#undef PUT_LIT
#undef PUT_ESC
#undef PUT_FMT
    if (n == 0 || p[n - 1] != '\n')
        p[n++] = '\n';
    w->log_len += n;
}

void pt_worker_access_log(struct pt_worker *w, const struct pt_req *r)
{
    if (!r->ws)
        return;
    count_request(w, r);
    if (r->ws->s->access_fd >= 0)
        log_line(w, r);
}

/* ---- lifecycle ---- */

/* ---- listening sockets ---- */

void pt_lsock_ref(struct pt_lsock *l)
{
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
}

void pt_lsock_unref(struct pt_lsock *l)
{
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    PT_BUG_ON(atomic_load(&l->opens) != 0);
    free(l);
}

bool pt_lsock_open_get(struct pt_lsock *l)
{
    int n = atomic_load_explicit(&l->opens, memory_order_relaxed);
    while (n > 0)
        if (atomic_compare_exchange_weak_explicit(&l->opens, &n, n + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

void pt_lsock_open_put(struct pt_lsock *l)
{
    if (atomic_fetch_sub_explicit(&l->opens, 1, memory_order_acq_rel) == 1)
        close(l->fd);
}

static struct pt_lsock *lsock_find(const struct pt_snapshot *s, const struct pt_sockaddr *a)
{
    for (size_t i = 0; s && i < s->n_lsocks; i++)
        if (pt_sockaddr_eq(&s->lsocks[i]->addr, a))
            return s->lsocks[i];
    return NULL;
}

int pt_snapshot_listen(struct pt_snapshot *s, const struct pt_snapshot *prev, char *err,
                       size_t errlen)
{
    const struct pt_config *cfg = s->cfg;
    if (!prev || !prev->holds_opens)
        prev = NULL;
    s->lsocks = calloc(cfg->n_listens ? cfg->n_listens : 1, sizeof(*s->lsocks));
    if (!s->lsocks) {
        snprintf(err, errlen, "%s: out of memory", cfg->path);
        return -1;
    }
    s->holds_opens = true;
    for (size_t j = 0; j < cfg->n_listens; j++) {
        const struct pt_listen_cfg *lc = &cfg->listens[j];
        struct pt_lsock *l = lsock_find(prev, &lc->addr);
        if (l && pt_lsock_open_get(l)) {
            pt_lsock_ref(l);
            s->lsocks[s->n_lsocks++] = l;
            continue;
        }
        int fd = pt_sock_listen(&lc->addr.u.sa, lc->addr.len, 4096);
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", lc->addr_text, strerror(-fd));
            return -1;
        }
        l = calloc(1, sizeof(*l));
        if (!l) {
            close(fd);
            snprintf(err, errlen, "%s: out of memory", cfg->path);
            return -1;
        }
        atomic_init(&l->refs, 1);
        atomic_init(&l->opens, 1);
        l->fd = fd;
        l->addr = lc->addr;
        s->lsocks[s->n_lsocks++] = l;
        if (prev)
            pt_log_info("listening on %s", lc->addr_text);
    }
    for (size_t i = 0; prev && i < prev->n_lsocks; i++)
        if (!lsock_find(s, &prev->lsocks[i]->addr)) {
            char a[80] = "?";
            pt_sock_ntop_port(&prev->lsocks[i]->addr.u.sa, a, sizeof(a));
            pt_log_info("no longer listening on %s", a);
        }
    return 0;
}

void pt_snapshot_release_listeners(struct pt_snapshot *s)
{
    if (!s->holds_opens)
        return;
    s->holds_opens = false;
    for (size_t i = 0; i < s->n_lsocks; i++)
        pt_lsock_open_put(s->lsocks[i]);
}

/* ---- a worker's listeners ---- */

static void on_listener(struct pt_io *io, uint32_t events)
{
    (void)events;
    pt_conn_accept(PT_CONTAINER_OF(io, struct pt_listener, io));
}

static int listener_arm(struct pt_worker *w, struct pt_listener *l)
{
    if (l->is_armed || l->io.fd < 0)
        return 0;
    int rc = pt_loop_add(&w->loop, &l->io, EPOLLIN | EPOLLEXCLUSIVE, true);
    if (rc == 0)
        l->is_armed = true;
    return rc;
}

static void listener_disarm(struct pt_worker *w, struct pt_listener *l)
{
    if (!l->is_armed)
        return;
    (void)pt_loop_del(&w->loop, &l->io);
    l->is_armed = false;
}

static void listener_free(struct pt_defer *d)
{
    struct pt_listener *l = PT_CONTAINER_OF(d, struct pt_listener, defer);
    pt_lsock_unref(l->ls);
    free(l);
}

/* Takes l out of the loop and lets go of its socket; freed after the event batch. */
static void listener_drop(struct pt_worker *w, struct pt_listener *l)
{
    listener_disarm(w, l);
    l->io.fd = -1; /* events still queued for it in this batch are skipped */
    pt_lsock_open_put(l->ls);
    pt_loop_defer(&w->loop, &l->defer, listener_free);
}

/* Makes w's listeners those of snapshot s (none once draining): registers the sockets w does
   not have yet, drops those s no longer lists, and renumbers the kept ones. */
static void listeners_sync(struct pt_worker *w, const struct pt_snapshot *s)
{
    for (struct pt_listener *l = w->listeners; l; l = l->next)
        l->is_seen = false;
    for (size_t j = 0; !w->is_draining && j < s->n_lsocks; j++) {
        struct pt_lsock *ls = s->lsocks[j];
        struct pt_listener *l = w->listeners;
        while (l && l->ls != ls)
            l = l->next;
        if (!l) {
            if (!pt_lsock_open_get(ls))
                continue; /* already removed by a newer configuration */
            l = calloc(1, sizeof(*l));
            if (!l) {
                pt_lsock_open_put(ls);
                pt_log_error("worker %d: out of memory for a listener", w->id);
                continue;
            }
            pt_lsock_ref(ls);
            l->ls = ls;
            l->io.fd = ls->fd;
            l->io.cb = on_listener;
            l->w = w;
            l->next = w->listeners;
            w->listeners = l;
            /* While accepting is paused the accept timer arms every listener. */
            if (!pt_timer_is_armed(&w->accept_timer) && listener_arm(w, l) < 0)
                pt_timer_set(&w->loop, &w->accept_timer, PT_ACCEPT_RETRY_MS);
        }
        l->is_seen = true;
        l->idx = (uint8_t)j;
        l->is_tls = s->cfg->listens[j].is_tls;
    }
    for (struct pt_listener **pp = &w->listeners; *pp;) {
        struct pt_listener *l = *pp;
        if (l->is_seen) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        listener_drop(w, l);
    }
}

void pt_worker_pause_accept(struct pt_worker *w, uint32_t ms)
{
    for (struct pt_listener *l = w->listeners; l; l = l->next)
        listener_disarm(w, l);
    pt_timer_set(&w->loop, &w->accept_timer, ms);
}

static void on_accept_timer(struct pt_timer *t)
{
    struct pt_worker *w = PT_CONTAINER_OF(t, struct pt_worker, accept_timer);
    if (w->is_draining)
        return;
    for (struct pt_listener *l = w->listeners; l; l = l->next)
        if (listener_arm(w, l) < 0)
            pt_timer_set(&w->loop, &w->accept_timer, PT_ACCEPT_RETRY_MS);
}

void pt_worker_accept_exhausted(struct pt_worker *w, struct pt_listener *l, int err)
{
    pt_log_ratelimited(PT_LOG_WARN,
                       "worker %d: accept: %s: out of file descriptors, pausing accepts for "
                       "%u ms",
                       w->id, strerror(err), PT_ACCEPT_RETRY_MS);
    if (w->reserve_fd >= 0) {
        close(w->reserve_fd);
        int fd = accept4(l->io.fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd); /* a prompt close tells this client more than a queue that never moves */
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    pt_worker_pause_accept(w, PT_ACCEPT_RETRY_MS);
}

static void close_listeners(struct pt_worker *w)
{
    pt_timer_stop(&w->loop, &w->accept_timer);
    while (w->listeners) {
        struct pt_listener *l = w->listeners;
        w->listeners = l->next;
        listener_drop(w, l);
    }
}

static void start_drain(struct pt_worker *w)
{
    if (w->is_draining)
        return;
    w->is_draining = true;
    close_listeners(w);
    pt_conn_close_idle(w);
    pt_upool_drain(&w->upool);
    const struct pt_config *cfg = pt_worker_cfg(w);
    uint32_t ms = cfg ? cfg->shutdown_timeout_ms : 30000;
    pt_timer_set(&w->loop, &w->drain_timer, ms);
}

static void on_drain_timeout(struct pt_timer *t)
{
    struct pt_worker *w = PT_CONTAINER_OF(t, struct pt_worker, drain_timer);
    pt_log_warn("worker %d: shutdown_timeout reached, closing %zu connection(s)", w->id,
                w->n_conns);
    while (w->conns.next != &w->conns) {
        struct pt_conn *c = w->conns.next;
        if (c->state == PT_CS_H2)
            pt_h2_conn_shut(c); /* RST_STREAM for what is open, GOAWAY */
        pt_conn_close(c);
    }
}

/* shutdown_timeout after the last reload: a tunnel opened on an older snapshot would keep it
   (and its old targets) alive for as long as the tunnel lasts, so it is ended as a drain
   would (HTTP/1.1: its connection closes; HTTP/2: RST_STREAM). Each is logged. */
static void on_reload_timeout(struct pt_timer *t)
{
    struct pt_worker *w = PT_CONTAINER_OF(t, struct pt_worker, reload_timer);
    size_t n = 0;
    for (struct pt_conn *c = w->conns.next, *next; c != &w->conns; c = next) {
        next = c->next;
        if (c->state == PT_CS_H2) {
            pt_h2_end_old_tunnels(c, w->ws);
        } else if (c->r && c->r->pstate == PT_PS_TUNNEL && c->r->ws != w->ws) {
            pt_conn_close(c);
            n++;
        }
    }
    if (n)
        pt_log_info("worker %d: shutdown_timeout after reload: closed %zu tunnel(s)", w->id, n);
}

static void on_wake(struct pt_io *io, uint32_t events)
{
    (void)events;
    struct pt_worker *w = PT_CONTAINER_OF(io, struct pt_worker, wake);
    uint64_t v;
    ssize_t n = read(io->fd, &v, sizeof(v));
    (void)n;
    pt_offload_deliver(w); /* finished password hashes (server/offload.c) */
    refresh(w);            /* a new snapshot may bring or take listeners */
    if (atomic_load(&w->stop_requested))
        start_drain(w);
}

/* The default of limits.max_connections: three quarters of RLIMIT_NOFILE (which main raised to
   the hard limit), keeping a quarter, at least 256 or half of a smaller limit, for upstream
   connections, health checks, listeners, logs and static files. */
static _Atomic uint32_t default_max_connections;

static uint32_t derive_max_connections(void)
{
    struct rlimit rl;
    uint64_t nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_cur == RLIM_INFINITY ? (1u << 24) : (uint64_t)rl.rlim_cur;
    uint64_t reserve = PT_MAX(nofile / 4, PT_MIN(256, nofile / 2));
    uint64_t n = nofile > reserve ? nofile - reserve : 1;
    return (uint32_t)PT_MIN(n, 1u << 24);
}

uint32_t pt_worker_max_connections(const struct pt_config *cfg)
{
    if (cfg && cfg->limits.max_connections)
        return cfg->limits.max_connections;
    return atomic_load_explicit(&default_max_connections, memory_order_relaxed);
}

int pt_worker_init(struct pt_worker *w, int id)
{
    if (atomic_load(&default_max_connections) == 0)
        atomic_store(&default_max_connections, derive_max_connections());
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->conns.next = w->conns.prev = &w->conns;
    int rc = pt_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    pt_upool_init(&w->upool, &w->loop);
    w->env.loop = &w->loop;
    w->env.upool = &w->upool;
    w->env.random = env_random;
    w->env.random_arg = w;
    w->env.n_tunnels = &w->n_tunnels;
    w->env.detach = pt_bg_req_new;
    pt_timer_init(&w->drain_timer, on_drain_timeout);
    pt_timer_init(&w->reload_timer, on_reload_timeout);
    pt_timer_init(&w->accept_timer, on_accept_timer);
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->log_buf = malloc(LOG_BUF_BYTES);
    if (!w->log_buf)
        return -ENOMEM;
    if (getrandom(w->rid_seed, sizeof(w->rid_seed), 0) != sizeof(w->rid_seed))
        w->rid_seed[0] = (uint64_t)time(NULL) ^ ((uint64_t)id << 32), w->rid_seed[1] = 0x9e37;
    w->rid_seed[0] |= 1;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0)
        return -errno;
    w->wake.fd = efd;
    w->wake.cb = on_wake;
    if ((rc = pt_loop_add(&w->loop, &w->wake, EPOLLIN, true)) < 0)
        return rc;
    return pt_offload_inbox_init(w);
}

static void *worker_main(void *arg)
{
    struct pt_worker *w = arg;
    pt_ctr_bind(w->ctr);
    for (;;) {
        pt_loop_run_once(&w->loop, 1000);
        log_flush(w);
        if (w->is_draining && w->n_conns == 0 && w->offload.n_out == 0)
            break; /* a hash out still writes w's eventfd when it ends */
    }
    pt_timer_stop(&w->loop, &w->drain_timer);
    pt_timer_stop(&w->loop, &w->reload_timer);
    close_listeners(w);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    /* Release what the loop still holds. */
    pt_upool_destroy(&w->upool);
    pt_loop_run_once(&w->loop, 0);
    log_flush(w);
    if (w->ws) {
        PT_BUG_ON(w->ws->users != 0);
        wsnap_free(w->ws);
        w->ws = NULL;
    }
    struct pt_snapshot *pend = atomic_exchange(&w->pending, NULL);
    if (pend)
        pt_snapshot_unref(pend);
    while (w->old_ws) {
        struct pt_wsnap *ws = w->old_ws;
        w->old_ws = ws->next;
        wsnap_free(ws);
    }
    close(w->wake.fd);
    pt_offload_inbox_destroy(w);
    pt_loop_destroy(&w->loop);
    while (w->free_reqs) {
        struct pt_req *r = w->free_reqs;
        w->free_reqs = (struct pt_req *)(void *)r->c;
        free(r);
    }
    pt_fwdauth_cache_free(w);
    free(w->env.hdrs);
    free(w->path_buf);
    free(w->log_buf);
    pt_buf_cache_drain();
    pt_resp_fields_drain();
    return NULL;
}

int pt_worker_start(struct pt_worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    return rc ? -rc : 0;
}

void pt_worker_publish(struct pt_worker *w, struct pt_snapshot *s)
{
    pt_snapshot_ref(s);
    struct pt_snapshot *old = atomic_exchange_explicit(&w->pending, s, memory_order_acq_rel);
    if (old)
        pt_snapshot_unref(old);
    uint64_t one = 1;
    ssize_t n = write(w->wake.fd, &one, sizeof(one));
    (void)n;
}

void pt_worker_request_stop(struct pt_worker *w)
{
    atomic_store(&w->stop_requested, true);
    uint64_t one = 1;
    ssize_t n = write(w->wake.fd, &one, sizeof(one));
    (void)n;
}

void pt_worker_join(struct pt_worker *w)
{
    pthread_join(w->thread, NULL);
}
