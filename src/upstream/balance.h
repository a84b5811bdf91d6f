/*
 * balance.h - choosing a target of an upstream for one request.
 *
 * Smooth weighted round robin (the scheme nginx uses): every pick adds each candidate's weight
 * to its running score, takes the highest score, and subtracts the candidates' total from the
 * winner. Over any window of sum(weights) picks each target is chosen exactly weight times, and
 * the picks are interleaved (weights 5,1,1 give a a b a c a a, not a a a a a b c).
 *
 * The scores are per worker (no sharing, no atomics), so across workers the proportions hold
 * in aggregate while each worker's sequence is independent.
 */
#ifndef PT_UPSTREAM_BALANCE_H
#define PT_UPSTREAM_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/*
 * Picks a target of ups. scores: this worker's running scores for ups (n_targets entries,
 * zero-initialised once). skip_mask: targets (by index, first 32) already tried for this
 * request. Returns the target index, or -1 when every target is skipped.
 */
int pt_lb_rr_pick(const struct pt_upstream_cfg *ups, int64_t *scores, uint32_t skip_mask);

#endif
