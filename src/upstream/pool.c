/*
 * pool.c - upstream connections and the per-worker keep-alive pool (see uconn.h).
 *
 * The pool is an array of buckets, each a doubly linked list of idle connections whose key
 * hash (address, then tls_host_hash) falls in it, newest first: a get takes the most recently
 * used connection of a key (the one least likely to have been closed by the peer), a put past
 * `keepalive` evicts the oldest. Lists stay short (a few keys per bucket times keepalive), so a
 * scan costs less than a hash table per key would.
 *
 * The event handler and the timer of a connection live here: readiness is recorded in the
 * connection's flags and the owner's callback runs; an idle connection is simply closed. The
 * upstream layer never knows what the owner is (the proxy's request), so it never calls into
 * the handler or the server.
 *
 * Threading: one worker's loop; nothing shared.
 */
#include "upstream/uconn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/common.h"
#include "core/counters.h"
#include "tls/tls.h"
#include "upstream/h2_client.h"

static uint32_t addr_hash(const struct pt_sockaddr *a)
{
    uint32_t h = 2166136261u;
    const unsigned char *p = (const unsigned char *)&a->u;
    for (socklen_t i = 0; i < a->len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void pool_unlink(struct pt_upool *p, struct pt_uconn *u)
{
    if (u->pool_prev)
        u->pool_prev->pool_next = u->pool_next;
    else
        p->bucket[u->pool_hash % PT_UPOOL_BUCKETS] = u->pool_next;
    if (u->pool_next)
        u->pool_next->pool_prev = u->pool_prev;
    u->pool_prev = u->pool_next = NULL;
    pt_ctr_add_self(PT_CTR_POOL_IDLE, (uint64_t)-1); /* a gauge: wraps per block, sums right */
}

/* An idle pooled connection's event or idle timer: any readiness while idle means the peer
   closed (or sent garbage); either way the connection is done. */
static void idle_event(struct pt_uconn *u)
{
    pool_unlink(u->pool, u);
    pt_uconn_close(u);
}

static void uconn_io(struct pt_io *io, uint32_t events)
{
    struct pt_uconn *u = PT_CONTAINER_OF(io, struct pt_uconn, io);
    if (!u->owner) {
        /* Idle in the pool: input, hang-up or error mean the peer closed it or is out of
           step; becoming writable means nothing. */
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            idle_event(u);
        return;
    }
    pt_transport_events(&u->t, events);
    u->on_ready(u->owner);
}

static void uconn_timeout(struct pt_timer *t)
{
    struct pt_uconn *u = PT_CONTAINER_OF(t, struct pt_uconn, timer);
    if (!u->owner) {
        idle_event(u);
        return;
    }
    u->on_timeout(u->owner);
}

static void uconn_free(struct pt_defer *d)
{
    struct pt_uconn *u = PT_CONTAINER_OF(d, struct pt_uconn, defer);
    pt_buf_release(&u->in);
    free(u);
}

struct pt_uconn *pt_uconn_new(struct pt_upool *p, int fd, const struct pt_sockaddr *addr,
                              uint32_t tls_host_hash, bool in_progress, int *err, const char **what)
{
    struct pt_uconn *u = calloc(1, sizeof(*u));
    if (!u) {
        close(fd);
        *err = ENOMEM;
        *what = "calloc";
        return NULL;
    }
    u->io.fd = fd;
    u->io.cb = uconn_io;
    u->pool = p;
    u->addr = *addr;
    u->tls_host_hash = tls_host_hash;
    u->is_connecting = in_progress;
    pt_transport_plain_init(&u->t, fd);
    u->t.can_write = !in_progress;
    u->n_requests = 1;
    pt_timer_init(&u->timer, uconn_timeout);
    int lrc = pt_loop_add(p->loop, &u->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP, false);
    if (lrc < 0) {
        close(fd);
        free(u);
        *err = -lrc; /* ENOMEM or ENOSPC: ours either way */
        *what = "epoll";
        return NULL;
    }
    return u;
}

void pt_uconn_close(struct pt_uconn *u)
{
    if (u->is_closed)
        return;
    u->is_closed = true;
    struct pt_loop *loop = u->pool->loop;
    pt_timer_stop(loop, &u->timer);
    if (!u->t.is_handshaking)
        pt_transport_shutdown(&u->t, false); /* TLS close_notify, best effort */
    pt_transport_free(&u->t);
    pt_loop_close(loop, &u->io);
    pt_loop_defer(loop, &u->defer, uconn_free);
}

void pt_upool_init(struct pt_upool *p, struct pt_loop *loop)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
}

static void close_idle(struct pt_upool *p)
{
    for (unsigned i = 0; i < PT_UPOOL_BUCKETS; i++)
        while (p->bucket[i]) {
            struct pt_uconn *u = p->bucket[i];
            pool_unlink(p, u);
            pt_uconn_close(u);
        }
}

void pt_upool_destroy(struct pt_upool *p)
{
    pt_h2c_pool_close(p, true);
    close_idle(p);
}

void pt_upool_drain(struct pt_upool *p)
{
    p->is_draining = true;
    pt_h2c_pool_close(p, false); /* streams in flight finish; GOAWAY says no more */
    close_idle(p);
}

struct pt_uconn *pt_upool_get(struct pt_upool *p, const struct pt_sockaddr *addr,
                              uint32_t tls_host_hash)
{
    uint32_t h = addr_hash(addr) ^ tls_host_hash;
    for (struct pt_uconn *u = p->bucket[h % PT_UPOOL_BUCKETS]; u; u = u->pool_next) {
        if (u->pool_hash == h && u->tls_host_hash == tls_host_hash &&
            pt_sockaddr_eq(&u->addr, addr)) {
            pool_unlink(p, u);
            pt_timer_stop(p->loop, &u->timer);
            return u;
        }
    }
    return NULL;
}

void pt_upool_put(struct pt_upool *p, struct pt_uconn *u, uint32_t keepalive)
{
    u->owner = NULL;
    pt_buf_release(&u->in);
    if (p->is_draining || keepalive == 0 || u->is_eof) {
        pt_uconn_close(u);
        return;
    }
    u->pool_hash = addr_hash(&u->addr) ^ u->tls_host_hash;
    struct pt_uconn **head = &p->bucket[u->pool_hash % PT_UPOOL_BUCKETS];
    uint32_t same = 0;
    struct pt_uconn *last = NULL;
    for (struct pt_uconn *q = *head; q; q = q->pool_next)
        if (q->pool_hash == u->pool_hash && q->tls_host_hash == u->tls_host_hash &&
            pt_sockaddr_eq(&q->addr, &u->addr)) {
            same++;
            last = q;
        }
    if (same >= keepalive && last) { /* evict the least recently used of this key */
        pool_unlink(p, last);
        pt_uconn_close(last);
    }
    u->pool_prev = NULL;
    u->pool_next = *head;
    if (*head)
        (*head)->pool_prev = u;
    *head = u;
    pt_ctr_add_self(PT_CTR_POOL_IDLE, 1);
    pt_timer_set(p->loop, &u->timer, PT_UPOOL_IDLE_MS);
}
