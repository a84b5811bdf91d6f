/*
 * balance.h - choosing a target of an upstream for one request.
 *
 * pt_lb_pick() is the one entry point: it filters the targets that may take the request
 * (available: healthy and not ejected; not already tried; under max_connections; primaries,
 * or the backups when no primary is available), weighs them (slow start) and hands the
 * candidates to the upstream's policy, one file each:
 *
 *   round_robin  balance.c        smooth weighted round robin (nginx), per-worker scores
 *   least_conn   lb_least_conn.c  fewest in-flight per unit of weight, ties at random
 *   random       lb_random.c      weighted random: one draw in proportion to weight
 *   p2c          lb_p2c.c         power of two choices over weighted random draws
 *   ewma         lb_ewma.c        P2C over peak-EWMA latency x (in-flight + 1)
 *   hash         lb_hash.c        Maglev consistent hashing of a request key
 *   cookie       lb_cookie.c      sticky: an HMAC-signed opaque token names the target
 *
 * Smooth weighted round robin (the scheme nginx uses): every pick adds each candidate's weight
 * to its running score, takes the highest score, and subtracts the candidates' total from the
 * winner. Over any window of sum(weights) picks each target is chosen exactly weight times, and
 * the picks are interleaved (weights 5,1,1 give a a b a c a a, not a a a a a b c).
 *
 * The scores and the random generator are per worker (struct pt_lb_worker, no sharing, no
 * atomics); everything else a policy reads is the shared target state (upstream/target.h).
 */
#ifndef PT_UPSTREAM_BALANCE_H
#define PT_UPSTREAM_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "upstream/target.h"

/* pt_lb_pick results besides a target index. */
#define PT_LB_NONE (-1) /* no target available (answer 503 with Retry-After) */
#define PT_LB_FULL (-2) /* targets available but all at max_connections (queue, max_pending) */

/* What hash and cookie policies look at; data may be NULL when len is 0. */
struct pt_lb_key {
    const char *data; /* hash: the key's bytes (hash_key); cookie: the cookie's value */
    size_t len;
};

/* Per-worker, per-upstream balancer state. Zero it, then seed rng (any non-zero value). */
struct pt_lb_worker {
    int64_t *scores; /* round robin (and fallbacks): n_targets running scores, zeroed */
    uint64_t rng;    /* xorshift64* state, non-zero */
};

/*
 * Picks a target of us for one attempt. lw: this worker's state for us. key: hash input or
 * cookie value (NULL or empty: none). skip_mask: targets (by index, first 32) already tried by
 * this request. now_ms: monotonic. Returns the target index, PT_LB_NONE or PT_LB_FULL. Never
 * blocks, takes no lock. The caller then counts the attempt with pt_upstream_on_request_start
 * (which may still refuse a target that just filled up: pick again with it skipped).
 */
int pt_lb_pick(const struct pt_upstream_state *us, struct pt_lb_worker *lw,
               const struct pt_lb_key *key, uint32_t skip_mask, uint64_t now_ms);

/*
 * Picks a target of ups. scores: this worker's running scores for ups (n_targets entries,
 * zero-initialised once). skip_mask: targets (by index, first 32) already tried for this
 * request. Returns the target index, or -1 when every target is skipped. (Static weights, no
 * health: the core proxy's original policy.)
 */
int pt_lb_rr_pick(const struct pt_upstream_cfg *ups, int64_t *scores, uint32_t skip_mask);

/* ---- cookie stickiness (lb_cookie.c) ---- */

#define PT_LB_COOKIE_TOKEN_LEN 32 /* hex characters of a token */

/*
 * Sets the HMAC key for cookie tokens (copied; 16..64 bytes). Without a call, a random key is
 * drawn once per process, so tokens survive reloads but not restarts, and differ between
 * instances. Call before building runtime states (tokens are computed then). Returns 0 or -1.
 */
int pt_lb_cookie_set_key(const void *key, size_t len);

/* The token naming target idx of us (32 hex characters, NUL-terminated; borrowed from us), or
   NULL when us does not balance by cookie. Set it as the cookie value after a pick. */
const char *pt_lb_cookie_token(const struct pt_upstream_state *us, size_t idx);

/* The target a cookie value names (constant-time comparison), or -1. */
int pt_lb_cookie_target(const struct pt_upstream_state *us, const char *value, size_t len);

/* ---- hash keys (lb_hash.c) ---- */

/* 64-bit hash of bytes (FNV-1a with a final avalanche), seedable. */
uint64_t pt_lb_hash64(const void *data, size_t len, uint64_t seed);

/* ---- internal: table building, called by target.c ---- */

int pt_lb_hash_build(struct pt_upstream_state *us);
void pt_lb_hash_free(struct pt_upstream_state *us);
int pt_lb_cookie_build(struct pt_upstream_state *us);

#endif
