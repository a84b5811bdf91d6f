/*
 * lb_random.c - weighted random: each pick draws one candidate with probability proportional to
 * its (effective) weight, independently of load.
 *
 * This is what a user who writes weights 2/1/1 expects: over many picks the shares converge on
 * the weights whatever the concurrency, because nothing but the weights enters the draw. The
 * load-aware variant (two draws, keep the less loaded) pulls shares towards equal under
 * concurrency, since in-flight counts even out across targets; it is offered separately as
 * `p2c` (lb_p2c.c). The generator is per worker, so a pick touches no shared state.
 */
#include "upstream/lb_internal.h"

int pt_lb_random_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                        struct pt_lb_worker *lw)
{
    (void)us;
    return c->idx[pt_lb_weighted_draw(c, lw, SIZE_MAX)];
}
