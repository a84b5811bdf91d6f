/*
 * loop.h - one epoll event loop per worker thread, with timers and deferred frees.
 *
 * Sockets are registered once, edge-triggered, for both directions (EPOLLIN | EPOLLOUT |
 * EPOLLRDHUP | EPOLLET): no epoll_ctl call is needed as a connection changes from reading to
 * writing, and a callback records readiness and drives its state machine until EAGAIN.
 *
 * Timers live in a binary min-heap keyed by expiry. Re-arming a timer to a later time (the
 * common case: an idle timeout pushed back by activity) only stores the new deadline; the heap
 * is touched when the old expiry comes up and the timer is found not yet due. So timeouts cost
 * O(1) per I/O event and O(log n) only when one actually has to move earlier or fires.
 *
 * Objects that events may still reference in the current epoll batch are not freed at once:
 * pt_loop_defer() queues them and the loop frees them after the batch.
 */
#ifndef PT_CORE_LOOP_H
#define PT_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pt_loop;
struct pt_io;
struct pt_timer;
struct pt_defer;

typedef void (*pt_io_cb)(struct pt_io *io, uint32_t events);
typedef void (*pt_timer_cb)(struct pt_timer *t);
typedef void (*pt_defer_cb)(struct pt_defer *d);

struct pt_io {
    int fd;      /* -1 once closed: pending events for it are skipped */
    pt_io_cb cb; /* called with the epoll event mask */
};

struct pt_timer {
    uint64_t due_ms;      /* heap key: when the heap will look at this timer */
    uint64_t deadline_ms; /* when it really fires; >= due_ms while armed */
    size_t idx;           /* position in the heap; SIZE_MAX when not armed */
    pt_timer_cb cb;
};

struct pt_defer {
    struct pt_defer *next;
    pt_defer_cb cb;
};

struct pt_loop {
    int epfd;
    uint64_t now_ms;        /* CLOCK_MONOTONIC, refreshed after each epoll_wait */
    struct pt_timer **heap; /* min-heap on due_ms */
    size_t n_timers;
    size_t cap_timers;
    struct pt_defer *deferred; /* freed after the current batch */
    struct pt_defer *posted;   /* work yielded to the next iteration (pt_loop_post) */
    bool is_stopping;
};

/* Creates the epoll instance. Returns 0 or -errno. */
int pt_loop_init(struct pt_loop *l);
void pt_loop_destroy(struct pt_loop *l);

/* Registers fd for edge-triggered events (events: EPOLLIN|EPOLLOUT|... without EPOLLET, which is
   always added unless level is true). Returns 0 or -errno. */
int pt_loop_add(struct pt_loop *l, struct pt_io *io, uint32_t events, bool level);
/* Unregisters io->fd without closing it (a socket that other loops share). Returns 0 or -errno. */
int pt_loop_del(struct pt_loop *l, struct pt_io *io);
/* Unregisters and closes io->fd, setting it to -1. */
void pt_loop_close(struct pt_loop *l, struct pt_io *io);

/* Runs one iteration: waits for events (at most until the next timer), dispatches them, runs
   due timers and deferred frees. Returns the number of events handled. */
int pt_loop_run_once(struct pt_loop *l, int max_wait_ms);
uint64_t pt_loop_update_time(struct pt_loop *l);

void pt_timer_init(struct pt_timer *t, pt_timer_cb cb);
/* Arms (or re-arms) t to fire ms from now. */
void pt_timer_set(struct pt_loop *l, struct pt_timer *t, uint64_t ms);
/* Arms t to fire at an absolute loop time (pt_loop.now_ms scale). */
void pt_timer_set_at(struct pt_loop *l, struct pt_timer *t, uint64_t deadline_ms);
void pt_timer_stop(struct pt_loop *l, struct pt_timer *t);
static inline bool pt_timer_is_armed(const struct pt_timer *t)
{
    return t->idx != SIZE_MAX;
}

/* Queues d->cb(d) to run at the start of the next iteration, after that iteration's events:
   a busy stream yields this way so other connections of the worker get their turn. The loop
   does not sleep while posts are pending. */
void pt_loop_post(struct pt_loop *l, struct pt_defer *d, pt_defer_cb cb);

/* Queues d->cb(d) to run after the current event batch (frees objects safely). */
void pt_loop_defer(struct pt_loop *l, struct pt_defer *d, pt_defer_cb cb);

#endif
