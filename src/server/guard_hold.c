/*
 * guard_hold.c - holding a request for a guard (rate_limit's delay:), without blocking the
 * worker.
 *
 * A held request waits as any request a guard makes wait (forward_auth's call too): in
 * PT_PS_GUARD_WAIT, which both protocols treat as a proxied request that waits (HTTP/1.1's
 * connection runs nothing for it, a body and pipelined requests stay in its input buffer;
 * HTTP/2 keeps the stream and holds its DATA within the window), with the pipeline's context
 * copied (pt_pipeline_copy: the protocol's head is gone once the pipeline returns) into the
 * hold, one malloc for the whole of it; only a held request pays for it. One loop timer per
 * hold brings it back: pt_pipeline_resume goes on with the guards after the step that held
 * it (so nothing is counted twice, and forward_auth may make it wait again), then the
 * handler, then wakes the protocol.
 *
 * The hold lives until the request ends (a cleanup frees it), so a client that goes away
 * while held (a connection closed, an HTTP/2 stream reset, a shutdown) only stops the timer.
 * A request that ends inside the resume (HTTP/1.1 runs the connection from the wake-up)
 * leaves the freeing to the resume. The worker's holds are counted in a thread-local: over the
 * cap, the caller refuses.
 *
 * Rejected: sleeping in the worker (every connection of the worker would wait); running the
 * whole pipeline again on a copied head at the end of the hold (routing twice, and a state of
 * its own that HTTP/2 did not know, so its streams went on at once).
 */
#include "server/guard_hold.h"

#include <stdlib.h>

#include "core/loop.h"

struct hold {
    struct pt_timer timer;
    struct pt_req *r;
    enum pt_guard_step step; /* the step that held it: the resume goes on after it */
    bool is_waiting;         /* the timer is armed: counted in n_held */
    bool in_resume;          /* pt_pipeline_resume runs: the cleanup leaves the freeing to it */
    bool is_dead;            /* r ended during the resume */
    struct pt_pipeline_copy cp;
    /* then cp's fields and bytes */
};

static __thread uint64_t n_held; /* this worker's requests held now */

/* r ended (finished, or the client went away while held). */
static void hold_end(struct pt_req *r, void *arg)
{
    struct hold *hd = arg;
    if (hd->is_waiting) {
        pt_timer_stop(r->env->loop, &hd->timer);
        hd->is_waiting = false;
        n_held--;
    }
    if (hd->in_resume) {
        hd->is_dead = true;
        return;
    }
    free(hd);
}

static void hold_due(struct pt_timer *t)
{
    struct hold *hd = PT_CONTAINER_OF(t, struct hold, timer);
    struct pt_req *r = hd->r;
    hd->is_waiting = false;
    n_held--;
    if (r->pstate != PT_PS_GUARD_WAIT)
        return; /* its protocol let it go (pt_proxy_abort: an HTTP/2 stream reset); it ends */
    r->pstate = PT_PS_NONE;
    hd->in_resume = true;
    pt_pipeline_resume(r, &hd->cp.pc, hd->step);
    hd->in_resume = false;
    if (hd->is_dead) /* the request ended inside: its cleanup left hd to us */
        free(hd);
}

int pt_guard_hold(struct pt_req *r, const struct pt_pipeline_ctx *pc, enum pt_guard_step step,
                  uint64_t delay_ms, uint64_t max_held)
{
    if (n_held >= max_held)
        return PT_ERR;
    struct hold *hd = malloc(sizeof(*hd) + pt_pipeline_copy_room(pc, 0));
    if (!hd)
        return PT_ERR;
    if (pt_req_on_end(r, hold_end, hd) < 0) {
        free(hd);
        return PT_ERR;
    }
    pt_pipeline_copy(&hd->cp, pc, 0, hd + 1);
    hd->r = r;
    hd->step = step;
    hd->is_waiting = true;
    hd->in_resume = false;
    hd->is_dead = false;
    n_held++;
    r->pstate = PT_PS_GUARD_WAIT;
    pt_timer_init(&hd->timer, hold_due);
    pt_timer_set(r->env->loop, &hd->timer, delay_ms);
    return PT_OK;
}
