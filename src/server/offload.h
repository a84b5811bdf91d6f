/*
 * offload.h - a small process-wide pool of threads for slow pure work (password hashes) that
 * must not run on a worker's event loop (offload.c).
 */
#ifndef PT_SERVER_OFFLOAD_H
#define PT_SERVER_OFFLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct pt_worker;
struct pt_offload_job;

#define PT_OFFLOAD_THREADS 2 /* the pool's threads (fixed) */

typedef void (*pt_offload_fn)(struct pt_offload_job *j);

/* One piece of work: embedded by its owner, which must keep it alive until done runs or
   pt_offload_cancel took it back. */
struct pt_offload_job {
    pt_offload_fn work; /* on a pool thread: may touch only what the job owns */
    pt_offload_fn done; /* then on the submitting worker's thread, from its loop */
    struct pt_worker *w;
    struct pt_offload_job *next, *prev; /* the pool's queue, then the worker's inbox */
    bool is_queued;                     /* in the pool's queue (under the pool's lock) */
};

/* A worker's inbox of finished jobs (embedded in struct pt_worker). */
struct pt_offload_inbox {
    pthread_mutex_t mu;
    struct pt_offload_job *head; /* finished, not yet delivered (under mu) */
    uint32_t n_out;              /* submitted and not yet delivered nor cancelled (worker) */
};

/* Readies w's inbox. Returns 0 or -errno. */
int pt_offload_inbox_init(struct pt_worker *w);
/* Frees w's inbox (no job out: n_out 0). */
void pt_offload_inbox_destroy(struct pt_worker *w);

/* Queues j (work and done set) for w's thread to hear back. Starts the pool on first use.
   Returns true, or false without queueing when max_queued jobs already wait (none running
   counted) or the pool cannot start: the caller answers at once. Worker thread. */
bool pt_offload_submit(struct pt_worker *w, struct pt_offload_job *j, uint32_t max_queued);

/* Takes j back before it starts: true when it was still queued (done will not run; the owner
   may free it), false when it runs or ran (done will run; the owner waits for it). Worker
   thread of j. */
bool pt_offload_cancel(struct pt_offload_job *j);

/* Runs done for each of w's finished jobs (from w's wake-up). Worker thread. */
void pt_offload_deliver(struct pt_worker *w);

/* Stops and joins the pool's threads (the process's end, after the workers). */
void pt_offload_stop(void);

#endif
