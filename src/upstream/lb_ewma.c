/*
 * lb_ewma.c - latency-aware balancing as in Finagle and Linkerd: power of two choices where a
 * target's load is its peak-EWMA latency times (attempts in flight + 1), divided by its weight.
 *
 * The peak-EWMA (target.c) jumps up to a slow sample at once and decays towards faster ones,
 * so a target that turns slow is avoided within one response and comes back gradually. A
 * target never measured has cost 0 and is tried first (that is how it gets measured); while
 * such a target has attempts in flight and still no sample, it is charged a large penalty so
 * that a target which never answers does not attract everything (Finagle's "penalty").
 * Picks are uniform (not weighted) as in Linkerd; weights scale the load instead.
 */
#include "upstream/lb_internal.h"

#define EWMA_PENALTY_NS 1e12 /* 1000 s: "unknown but busy" */

static double load_of(const struct pt_upstream_state *us, const struct pt_lb_cand *c, size_t k,
                      uint64_t now_ms)
{
    const struct pt_target_state *t = us->targets[c->idx[k]];
    int f = atomic_load_explicit(&t->in_flight, memory_order_relaxed);
    double pending = f > 0 ? (double)f : 0;
    double cost = pt_target_ewma_ns(t, now_ms);
    if (cost <= 0 && pending > 0)
        cost = EWMA_PENALTY_NS;
    return cost * (pending + 1) / (double)c->w[k];
}

int pt_lb_ewma_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                      struct pt_lb_worker *lw, uint64_t now_ms)
{
    size_t a = (size_t)pt_lb_rand_below(lw, c->n);
    size_t b = (size_t)pt_lb_rand_below(lw, c->n - 1);
    if (b >= a)
        b++;
    return load_of(us, c, b, now_ms) < load_of(us, c, a, now_ms) ? c->idx[b] : c->idx[a];
}
