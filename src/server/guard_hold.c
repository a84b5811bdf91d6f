/*
 * guard_hold.c - holding a request for a guard (rate_limit's delay:), without blocking the
 * worker.
 *
 * A held request keeps its connection in the request state with r->is_held set (conn.c does
 * nothing for it meanwhile: pipelined bytes and a body wait in the input buffer); one loop
 * timer per hold brings it back. The protocol's head (its slices point into the connection's
 * buffer and the worker's scratch field array, both reused as soon as the pipeline returns)
 * is copied into the hold, one malloc for the whole of it; only a held request pays for it.
 * When the timer fires, the pipeline is run again from the top on the copy with the guard
 * steps already passed skipped (r->guards_done): routing is a pure function of the head and
 * the request's snapshot, so it lands on the same route, and nothing is counted twice.
 *
 * The hold lives until the request ends (a cleanup frees it), so a client that goes away while
 * held only stops the timer. The worker's holds are counted in a thread-local: over the cap,
 * the caller refuses.
 *
 * HTTP/2 streams are not held: the session takes a request that is neither answered nor
 * proxied when the pipeline returns for a failed one (h2_conn.c); they go on at once, counted.
 *
 * Rejected: sleeping in the worker (every connection of the worker would wait); re-parsing the
 * head from the connection's buffer at resume (HTTP/1.1 only, and the buffer moves).
 */
#include "server/guard_hold.h"

#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "server/pipeline.h"

struct hold {
    struct pt_timer timer;
    struct pt_req *r;
    bool is_waiting;      /* the timer is armed: counted in n_held */
    struct pt_req_head h; /* the copy; its slices point into fields[] and bytes after it */
    struct pt_field *fields;
};

static __thread uint64_t n_held; /* this worker's requests held now */

static struct pt_str copy_str(char **at, struct pt_str s)
{
    if (!s.p)
        return s;
    struct pt_str d = {*at, s.n};
    if (s.n)
        memcpy(*at, s.p, s.n);
    *at += s.n;
    return d;
}

/* r ended (finished, or the client went away while held). */
static void hold_end(struct pt_req *r, void *arg)
{
    (void)r;
    struct hold *hd = arg;
    if (hd->is_waiting) {
        pt_timer_stop(hd->r->env->loop, &hd->timer);
        hd->r->is_held = false;
        n_held--;
    }
    free(hd);
}

static void hold_due(struct pt_timer *t)
{
    struct hold *hd = PT_CONTAINER_OF(t, struct hold, timer);
    struct pt_req *r = hd->r;
    hd->is_waiting = false;
    n_held--;
    r->is_held = false;
    pt_pipeline_rerun(r, &hd->h);
    r->stream->resume(r);
}

int pt_guard_hold(struct pt_req *r, const struct pt_req_head *h, uint64_t delay_ms,
                  uint64_t max_held)
{
    if (r->h2s)
        return PT_DECLINED;
    if (n_held >= max_held)
        return PT_ERR;
    size_t bytes = h->method.n + h->authority.n + h->target.n + h->path.n + h->query.n;
    for (size_t i = 0; i < h->n_fields; i++)
        bytes += h->fields[i].name.n + h->fields[i].value.n;
    size_t head = sizeof(struct hold) + h->n_fields * sizeof(struct pt_field);
    struct hold *hd = malloc(head + bytes);
    if (!hd)
        return PT_ERR;
    if (pt_req_on_end(r, hold_end, hd) < 0) {
        free(hd);
        return PT_ERR;
    }
    hd->fields = (struct pt_field *)(void *)(hd + 1);
    char *at = (char *)hd + head;
    hd->h = *h;
    hd->h.method = copy_str(&at, h->method);
    hd->h.authority = copy_str(&at, h->authority);
    hd->h.target = copy_str(&at, h->target);
    hd->h.path = copy_str(&at, h->path);
    hd->h.query = copy_str(&at, h->query);
    for (size_t i = 0; i < h->n_fields; i++) {
        hd->fields[i].name = copy_str(&at, h->fields[i].name);
        hd->fields[i].value = copy_str(&at, h->fields[i].value);
    }
    hd->h.fields = hd->fields;
    hd->r = r;
    hd->is_waiting = true;
    r->is_held = true;
    n_held++;
    pt_timer_init(&hd->timer, hold_due);
    pt_timer_set(r->env->loop, &hd->timer, delay_ms);
    return PT_OK;
}
