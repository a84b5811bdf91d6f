/*
 * balance.c - smooth weighted round robin (see balance.h).
 */
#include "upstream/balance.h"

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
