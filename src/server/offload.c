/*
 * offload.c - a small process-wide pool of threads for slow pure work: basic_auth's password
 * hashes (server/guard_auth.c), which take tens to hundreds of milliseconds each (bcrypt cost
 * 10 to 12) and would stall every connection of a worker if its loop ran them.
 *
 * PT_OFFLOAD_THREADS threads, started on the first job (a configuration without basic_auth
 * never starts them), take jobs from one FIFO queue under one mutex. The queue is bounded by
 * the caller's max_queued (limits.auth_hash_queue): a job over it is refused at once, so a
 * flood of password guesses costs a fixed amount of memory and CPU, and the requests over the
 * bound are answered (503) instead of waiting. A job's work touches only the job; its done
 * runs on the worker that submitted it, never on a pool thread: a finished job goes into that
 * worker's inbox (a mutex-protected list) and the worker's eventfd is written, under the
 * inbox's lock, so the worker (on_wake in worker.c, pt_offload_deliver) runs done from its own
 * loop. A job still queued can be taken back (pt_offload_cancel: a client that went away); one
 * already running cannot, and its owner waits for done. A worker that stops waits for its
 * jobs out (n_out) before it closes its eventfd, so a pool thread never writes to a closed fd.
 *
 * Rejected: a thread per worker (hashes of one busy worker could not use another's idle
 * thread, and the thread count would grow with workers), and an unbounded queue (the memory
 * and the wait of a guess flood would grow without limit).
 */
#include "server/offload.h"

#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "server/worker.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pt_offload_job *head, *tail; /* queued, FIFO */
    uint32_t n_queued;
    bool is_started, is_stopping;
    unsigned n_threads;
    pthread_t threads[PT_OFFLOAD_THREADS];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

int pt_offload_inbox_init(struct pt_worker *w)
{
    w->offload.head = NULL;
    w->offload.n_out = 0;
    return -pthread_mutex_init(&w->offload.mu, NULL);
}

void pt_offload_inbox_destroy(struct pt_worker *w)
{
    pthread_mutex_destroy(&w->offload.mu);
}

/* Pops the queue's first job (under pool.mu). */
static struct pt_offload_job *pop(void)
{
    struct pt_offload_job *j = pool.head;
    pool.head = j->next;
    if (pool.head)
        pool.head->prev = NULL;
    else
        pool.tail = NULL;
    j->next = j->prev = NULL;
    j->is_queued = false;
    pool.n_queued--;
    return j;
}

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.head && !pool.is_stopping)
            pthread_cond_wait(&pool.cv, &pool.mu);
        if (!pool.head)
            break;
        struct pt_offload_job *j = pop();
        pthread_mutex_unlock(&pool.mu);
        j->work(j);
        struct pt_worker *w = j->w;
        pthread_mutex_lock(&w->offload.mu);
        j->next = w->offload.head;
        w->offload.head = j;
        uint64_t one = 1;
        ssize_t n = write(w->wake.fd, &one, sizeof(one)); /* under the lock: see above */
        (void)n;
        pthread_mutex_unlock(&w->offload.mu);
        pthread_mutex_lock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Starts the threads (under pool.mu); false when none could start. */
static bool start(void)
{
    pool.is_started = true;
    for (unsigned i = 0; i < PT_OFFLOAD_THREADS; i++) {
        int e = pthread_create(&pool.threads[pool.n_threads], NULL, pool_main, NULL);
        if (e) {
            pt_log_error("offload: cannot start a hashing thread: %s", strerror(e));
            break;
        }
        pool.n_threads++;
    }
    return pool.n_threads > 0;
}

bool pt_offload_submit(struct pt_worker *w, struct pt_offload_job *j, uint32_t max_queued)
{
    j->w = w;
    pthread_mutex_lock(&pool.mu);
    bool ok = !pool.is_stopping && pool.n_queued < max_queued &&
              (pool.is_started ? pool.n_threads > 0 : start());
    if (ok) {
        j->next = NULL;
        j->prev = pool.tail;
        if (pool.tail)
            pool.tail->next = j;
        else
            pool.head = j;
        pool.tail = j;
        j->is_queued = true;
        pool.n_queued++;
        pthread_cond_signal(&pool.cv);
    }
    pthread_mutex_unlock(&pool.mu);
    if (ok)
        w->offload.n_out++;
    return ok;
}

bool pt_offload_cancel(struct pt_offload_job *j)
{
    pthread_mutex_lock(&pool.mu);
    bool was_queued = j->is_queued;
    if (was_queued) {
        if (j->prev)
            j->prev->next = j->next;
        else
            pool.head = j->next;
        if (j->next)
            j->next->prev = j->prev;
        else
            pool.tail = j->prev;
        j->next = j->prev = NULL;
        j->is_queued = false;
        pool.n_queued--;
    }
    pthread_mutex_unlock(&pool.mu);
    if (was_queued)
        j->w->offload.n_out--;
    return was_queued;
}

void pt_offload_deliver(struct pt_worker *w)
{
    pthread_mutex_lock(&w->offload.mu);
    struct pt_offload_job *list = w->offload.head, *fifo = NULL;
    w->offload.head = NULL;
    pthread_mutex_unlock(&w->offload.mu);
    while (list) { /* pushed at the head: reverse into finishing order */
        struct pt_offload_job *next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        struct pt_offload_job *j = fifo;
        fifo = j->next;
        j->next = NULL;
        w->offload.n_out--;
        j->done(j); /* may free j */
    }
}

void pt_offload_stop(void)
{
    pthread_mutex_lock(&pool.mu);
    pool.is_stopping = true;
    pthread_cond_broadcast(&pool.cv);
    unsigned n = pool.n_threads;
    pthread_mutex_unlock(&pool.mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool.threads[i], NULL);
    pthread_mutex_lock(&pool.mu);
    pool.n_threads = 0;
    pthread_mutex_unlock(&pool.mu);
}
