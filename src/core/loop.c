/*
 * loop.c - epoll loop, lazy timer heap, deferred frees (see loop.h for the design).
 *
 * Threading: a loop belongs to one thread; nothing here is thread-safe, by design. Other
 * threads reach a worker through an eventfd that the worker registers like any other fd.
 */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

#define MAX_EVENTS 256

int pt_loop_init(struct pt_loop *l)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -errno;
    l->heap = NULL;
    l->n_timers = l->cap_timers = 0;
    l->deferred = NULL;
    l->posted = NULL;
    l->is_stopping = false;
    pt_loop_update_time(l);
    return 0;
}

void pt_loop_destroy(struct pt_loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
    free(l->heap);
    l->heap = NULL;
}

uint64_t pt_loop_update_time(struct pt_loop *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    l->now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return l->now_ms;
}

int pt_loop_add(struct pt_loop *l, struct pt_io *io, uint32_t events, bool level)
{
    struct epoll_event ev = {.events = events | (level ? 0 : EPOLLET), .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -errno;
    return 0;
}

int pt_loop_del(struct pt_loop *l, struct pt_io *io)
{
    if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL) < 0)
        return -errno;
    return 0;
}

void pt_loop_close(struct pt_loop *l, struct pt_io *io)
{
    (void)l;
    if (io->fd >= 0) {
        /* close() removes the fd from the epoll set (we never dup registered fds). */
        close(io->fd);
        io->fd = -1;
    }
}

/* ---- timer heap ---- */

static void heap_swap(struct pt_loop *l, size_t a, size_t b)
{
    struct pt_timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->idx = a;
    l->heap[b]->idx = b;
}

static void heap_up(struct pt_loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->due_ms <= l->heap[i]->due_ms)
            break;
        heap_swap(l, i, p);
        i = p;
    }
}

static void heap_down(struct pt_loop *l, size_t i)
{
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->n_timers && l->heap[a]->due_ms < l->heap[m]->due_ms)
            m = a;
        if (b < l->n_timers && l->heap[b]->due_ms < l->heap[m]->due_ms)
            m = b;
        if (m == i)
            break;
        heap_swap(l, i, m);
        i = m;
    }
}

static void heap_remove(struct pt_loop *l, struct pt_timer *t)
{
    size_t i = t->idx;
    l->n_timers--;
    if (i != l->n_timers) {
        l->heap[i] = l->heap[l->n_timers];
        l->heap[i]->idx = i;
        heap_down(l, i);
        heap_up(l, i);
    }
    t->idx = SIZE_MAX;
}

static void heap_insert(struct pt_loop *l, struct pt_timer *t)
{
    if (l->n_timers == l->cap_timers) {
        size_t cap = l->cap_timers ? l->cap_timers * 2 : 256;
        struct pt_timer **h = realloc(l->heap, cap * sizeof(*h));
        /* Timers guard every connection; without memory for one we cannot run safely. */
        PT_BUG_ON(h == NULL);
        l->heap = h;
        l->cap_timers = cap;
    }
    t->idx = l->n_timers++;
    l->heap[t->idx] = t;
    heap_up(l, t->idx);
}

void pt_timer_init(struct pt_timer *t, pt_timer_cb cb)
{
    t->due_ms = t->deadline_ms = 0;
    t->idx = SIZE_MAX;
    t->cb = cb;
}

void pt_timer_set_at(struct pt_loop *l, struct pt_timer *t, uint64_t deadline)
{
    t->deadline_ms = deadline;
    if (t->idx != SIZE_MAX) {
        if (deadline >= t->due_ms)
            return; /* lazy: looked at again when due_ms comes up */
        t->due_ms = deadline;
        heap_up(l, t->idx);
        return;
    }
    t->due_ms = deadline;
    heap_insert(l, t);
}

void pt_timer_set(struct pt_loop *l, struct pt_timer *t, uint64_t ms)
{
    pt_timer_set_at(l, t, l->now_ms + ms);
}

void pt_timer_stop(struct pt_loop *l, struct pt_timer *t)
{
    if (t->idx != SIZE_MAX)
        heap_remove(l, t);
}

static void run_timers(struct pt_loop *l)
{
    while (l->n_timers > 0) {
        struct pt_timer *t = l->heap[0];
        if (t->due_ms > l->now_ms)
            break;
        if (t->deadline_ms > l->now_ms) {
            t->due_ms = t->deadline_ms; /* pushed back meanwhile: re-file it */
            heap_down(l, 0);
            continue;
        }
        heap_remove(l, t);
        t->cb(t);
    }
}

static int next_timeout(struct pt_loop *l, int max_wait_ms)
{
    if (l->n_timers == 0)
        return max_wait_ms;
    uint64_t due = l->heap[0]->due_ms;
    if (due <= l->now_ms)
        return 0;
    uint64_t d = due - l->now_ms;
    if (max_wait_ms >= 0 && d > (uint64_t)max_wait_ms)
        return max_wait_ms;
    return d > 60000 ? 60000 : (int)d;
}

void pt_loop_defer(struct pt_loop *l, struct pt_defer *d, pt_defer_cb cb)
{
    d->cb = cb;
    d->next = l->deferred;
    l->deferred = d;
}

void pt_loop_post(struct pt_loop *l, struct pt_defer *d, pt_defer_cb cb)
{
    d->cb = cb;
    d->next = l->posted;
    l->posted = d;
}

static void run_deferred(struct pt_loop *l)
{
    while (l->deferred) {
        struct pt_defer *d = l->deferred;
        l->deferred = NULL;
        while (d) {
            struct pt_defer *next = d->next;
            d->cb(d);
            d = next;
        }
    }
}

int pt_loop_run_once(struct pt_loop *l, int max_wait_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    struct pt_defer *posted = l->posted;
    l->posted = NULL;
    int n = epoll_wait(l->epfd, evs, MAX_EVENTS, posted ? 0 : next_timeout(l, max_wait_ms));
    pt_loop_update_time(l);
    for (int i = 0; i < n; i++) {
        struct pt_io *io = evs[i].data.ptr;
        if (io->fd >= 0)
            io->cb(io, evs[i].events);
    }
    while (posted) {
        struct pt_defer *next = posted->next;
        posted->cb(posted);
        posted = next;
    }
    run_deferred(l);
    run_timers(l);
    run_deferred(l);
    return n < 0 ? 0 : n;
}
