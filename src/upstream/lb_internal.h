/*
 * lb_internal.h - what the balancing policies share (upstream/ only).
 *
 * pt_lb_pick() builds a candidate set and hands it to one policy function. Candidates are
 * the targets allowed for this attempt, with their effective weights in thousandths.
 */
#ifndef PT_UPSTREAM_LB_INTERNAL_H
#define PT_UPSTREAM_LB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "upstream/balance.h"

struct pt_lb_cand {
    uint16_t idx[PT_MAX_TARGETS]; /* target indexes */
    uint64_t w[PT_MAX_TARGETS];   /* effective weights (thousandths), > 0 */
    bool is_cand[PT_MAX_TARGETS]; /* by target index */
    size_t n;                     /* >= 1 when a policy is called */
    uint64_t total;               /* sum of w */
    bool is_backup;               /* the candidates are backups */
};

/* Each returns a target index chosen among c (never fails: c->n >= 1). */
int pt_lb_rr_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                    struct pt_lb_worker *lw);
int pt_lb_least_conn_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                            struct pt_lb_worker *lw);
int pt_lb_random_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                        struct pt_lb_worker *lw);
int pt_lb_p2c_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                     struct pt_lb_worker *lw);
int pt_lb_ewma_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                      struct pt_lb_worker *lw, uint64_t now_ms);
/* -1 when the key is empty (the caller falls back). */
int pt_lb_hash_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                      const struct pt_lb_key *key);

/* xorshift64* step. */
static inline uint64_t pt_lb_rand(struct pt_lb_worker *lw)
{
    uint64_t x = lw->rng ? lw->rng : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    lw->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n), n > 0 (multiply-shift; bias negligible for n far below 2^32). */
static inline uint64_t pt_lb_rand_below(struct pt_lb_worker *lw, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)pt_lb_rand(lw) * n) >> 64);
}

/* A position in c drawn with probability proportional to weight, skipping position skip
   (SIZE_MAX: none). */
size_t pt_lb_weighted_draw(const struct pt_lb_cand *c, struct pt_lb_worker *lw, size_t skip);

#endif
