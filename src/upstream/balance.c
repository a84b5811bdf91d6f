/*
 * balance.c - the balancer dispatch (pt_lb_pick) and smooth weighted round robin.
 *
 * pt_lb_pick filters, then delegates. Filtering is the same for every policy, so a policy only
 * ever sees targets it may choose: available (healthy, not ejected), not tried by this request,
 * under max_connections. Backups are candidates only when no primary is available (a primary
 * that is merely full is still available: the request queues for it rather than spilling onto
 * the backups). The candidate set lives on the stack (PT_MAX_TARGETS bounds it), so a pick
 * allocates nothing.
 *
 * Hash and cookie fall back to round robin when the request carries no key, or when the
 * cookie names no available target.
 */
#include "upstream/balance.h"

#include <string.h>

#include "upstream/lb_internal.h"

int pt_lb_rr_pick(const struct pt_upstream_cfg *ups, int64_t *scores, uint32_t skip_mask)
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < ups->n_targets; i++) {
        if (i < 32 && (skip_mask & (1u << i)))
            continue;
        int64_t w = ups->targets[i].weight ? ups->targets[i].weight : 1;
        scores[i] += w;
        total += w;
        if (best < 0 || scores[i] > scores[best])
            best = (int)i;
    }
    if (best >= 0)
        scores[best] -= total;
    return best;
}

int pt_lb_rr_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                    struct pt_lb_worker *lw)
{
    (void)us;
    int best = -1;
    for (size_t k = 0; k < c->n; k++) {
        size_t i = c->idx[k];
        lw->scores[i] += (int64_t)c->w[k];
        if (best < 0 || lw->scores[i] > lw->scores[best])
            best = (int)i;
    }
    lw->scores[best] -= (int64_t)c->total;
    return best;
}

size_t pt_lb_weighted_draw(const struct pt_lb_cand *c, struct pt_lb_worker *lw, size_t skip)
{
    uint64_t total = c->total - (skip < c->n ? c->w[skip] : 0);
    uint64_t r = pt_lb_rand_below(lw, total ? total : 1);
    size_t last = SIZE_MAX;
    for (size_t k = 0; k < c->n; k++) {
        if (k == skip)
            continue;
        last = k;
        if (r < c->w[k])
            return k;
        r -= c->w[k];
    }
    return last;
}

/* Adds the allowed targets (backups or primaries) to c; true when some available target was
   skipped only for being full. */
static bool collect(const struct pt_upstream_state *us, struct pt_lb_cand *c, bool backups,
                    uint32_t skip_mask, uint64_t now_ms)
{
    const struct pt_upstream_cfg *u = us->cfg;
    bool any_full = false;
    for (size_t i = 0; i < us->n_targets && i < PT_MAX_TARGETS; i++) {
        const struct pt_target_cfg *tc = &u->targets[i];
        const struct pt_target_state *t = us->targets[i];
        if (tc->is_backup != backups || (i < 32 && (skip_mask & (1u << i))))
            continue;
        if (!pt_target_available(t, now_ms))
            continue;
        if (tc->max_connections &&
            atomic_load_explicit(&t->in_flight, memory_order_relaxed) >= (int)tc->max_connections) {
            any_full = true;
            continue;
        }
        uint64_t w = pt_target_effective_weight(t, tc, u->slow_start_ms, now_ms);
        c->idx[c->n] = (uint16_t)i;
        c->w[c->n] = w;
        c->is_cand[i] = true;
        c->total += w;
        c->n++;
    }
    return any_full;
}

int pt_lb_pick(const struct pt_upstream_state *us, struct pt_lb_worker *lw,
               const struct pt_lb_key *key, uint32_t skip_mask, uint64_t now_ms)
{
    struct pt_lb_cand c;
    c.n = 0;
    c.total = 0;
    c.is_backup = false;
    memset(c.is_cand, 0,
           sizeof(c.is_cand[0]) *
               (us->n_targets < PT_MAX_TARGETS ? us->n_targets : PT_MAX_TARGETS));
    bool full = collect(us, &c, false, skip_mask, now_ms);
    if (c.n == 0 && !full) {
        c.is_backup = true;
        full = collect(us, &c, true, skip_mask, now_ms);
    }
    if (c.n == 0)
        return full ? PT_LB_FULL : PT_LB_NONE;
    if (c.n == 1)
        return c.idx[0];
    int idx = -1;
    switch (us->cfg->balance) {
    case PT_BALANCE_LEAST_CONN:
        return pt_lb_least_conn_choose(us, &c, lw);
    case PT_BALANCE_RANDOM:
        return pt_lb_random_choose(us, &c, lw);
    case PT_BALANCE_P2C:
        return pt_lb_p2c_choose(us, &c, lw);
    case PT_BALANCE_EWMA:
        return pt_lb_ewma_choose(us, &c, lw, now_ms);
    case PT_BALANCE_HASH:
        idx = key && key->len ? pt_lb_hash_choose(us, &c, key) : -1;
        break;
    case PT_BALANCE_COOKIE:
        idx = key && key->len ? pt_lb_cookie_target(us, key->data, key->len) : -1;
        if (idx >= 0 && !c.is_cand[idx])
            idx = -1; /* gone, down, tried or full: choose again */
        break;
    default:
        break;
    }
    return idx >= 0 ? idx : pt_lb_rr_choose(us, &c, lw);
}
