/*
 * lb_least_conn.c - weighted least connections: the candidate with the fewest attempts in
 * flight per unit of (effective) weight, ties broken uniformly at random.
 *
 * In-flight counts are the shared atomics of target.h, so the comparison sees every worker's
 * requests, not only this worker's. Comparing a/wa < b/wb is done as a*wb < b*wa (no division,
 * exact). Ties are common (an idle pool has every count at 0); breaking them by index would
 * send every worker's first request to target 0, so a tie is resolved by reservoir sampling:
 * the k-th equal candidate replaces the current choice with probability 1/k.
 */
#include "upstream/lb_internal.h"

int pt_lb_least_conn_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                            struct pt_lb_worker *lw)
{
    size_t best = 0, ties = 1;
    uint64_t best_in = 0, best_w = 1;
    for (size_t k = 0; k < c->n; k++) {
        int f = atomic_load_explicit(&us->targets[c->idx[k]]->in_flight, memory_order_relaxed);
        uint64_t in = f > 0 ? (uint64_t)f : 0, w = c->w[k];
        if (k == 0) {
            best_in = in;
            best_w = w;
            continue;
        }
        unsigned __int128 lhs = (unsigned __int128)in * best_w;
        unsigned __int128 rhs = (unsigned __int128)best_in * w;
        if (lhs < rhs) {
            best = k;
            best_in = in;
            best_w = w;
            ties = 1;
        } else if (lhs == rhs) {
            ties++;
            if (pt_lb_rand_below(lw, ties) == 0) {
                best = k;
                best_in = in;
                best_w = w;
            }
        }
    }
    return c->idx[best];
}
