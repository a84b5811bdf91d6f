/*
 * target.h - runtime state of upstream targets, shared by every worker and the health checker.
 *
 * A struct pt_target_state holds what the process has learnt about one target: the active
 * health verdict, the outlier ejection, the requests in flight, a peak-EWMA of its latency.
 * Every field is an atomic that any thread reads and writes without a lock (see the design
 * in docs/internals/upstream.md). A struct pt_upstreams_rt is built beside each configuration
 * snapshot: one struct pt_upstream_state per upstream, each pointing at the states of its
 * targets. States are reference-counted and keyed by upstream name + target url (+ its
 * occurrence), so a new snapshot adopts the states of the targets that did not change and a
 * reload does not forget that a target is down.
 */
#ifndef PT_UPSTREAM_TARGET_H
#define PT_UPSTREAM_TARGET_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "upstream/budget.h"

struct pt_tls_client_ctx;
struct pt_tls_err;

/* How one attempt on a target ended (pt_upstream_on_request_end). */
enum pt_outcome {
    PT_OUTCOME_OK = 0,          /* a response (other than 5xx when include_5xx) */
    PT_OUTCOME_CONNECT_FAILURE, /* refused, unreachable, connect timeout */
    PT_OUTCOME_RESET,           /* connection closed or reset before a complete response */
    PT_OUTCOME_TIMEOUT,         /* no response head in time (per_try_timeout or route timeout) */
    PT_OUTCOME_STATUS_5XX,      /* a 5xx response (a failure only with outlier.include_5xx) */
    PT_OUTCOME_LOCAL,           /* never reached the target: Portico's own shortage (neither) */
};

/*
 * Whether errno err (positive) from a socket, connect, epoll or allocation call is Portico's
 * own resource shortage: out of file descriptors (EMFILE, ENFILE) or kernel or process memory
 * (ENOBUFS, ENOMEM). Such a failure says nothing about the target: it is never counted against
 * it (no passive ejection, no health verdict, no retry budget), the client gets 503 (Portico
 * is unavailable, not the backend bad) and the log names the shortage.
 */
static inline bool pt_upstream_is_local_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

#define PT_EWMA_DECAY_MS 10000   /* peak-EWMA time constant (Finagle's and Linkerd's default) */
#define PT_SLOW_START_MIN_PCT 10 /* weight at the start of a slow-start ramp, in percent */

struct pt_target_state {
    char *key;              /* "upstream\nurl\noccurrence", owned; identity across snapshots */
    atomic_int refs;        /* one per pt_upstreams_rt using it */
    atomic_bool is_healthy; /* active check verdict; true until checks fail */
    atomic_uint_fast64_t ejected_until_ms;   /* outlier ejection end (monotonic ms); 0: none */
    atomic_uint ejections;                   /* ejections in a row (doubles the next one) */
    atomic_uint_fast64_t ejections_total;    /* every ejection since it was created (metrics) */
    atomic_uint consecutive_failures;        /* passive: failed attempts in a row */
    atomic_int in_flight;                    /* attempts started, not yet ended */
    atomic_int conns;                        /* open upstream connections (all workers) */
    atomic_uint_fast64_t ewma_ns;            /* peak-EWMA of response latency, ns */
    atomic_uint_fast64_t ewma_stamp_ms;      /* when ewma_ns was last updated */
    atomic_uint_fast64_t available_since_ms; /* start of the slow-start ramp; 0: fully warm */
    atomic_uint hc_passes;                   /* health checker only: passes in a row */
    atomic_uint hc_fails;                    /* health checker only: failures in a row */
    atomic_uint_fast64_t requests;           /* attempts ended (statistics) */
    atomic_uint_fast64_t failures;           /* of which counted as failures */
};

struct pt_maglev; /* lb_hash.c */

struct pt_upstream_state {
    const struct pt_upstream_cfg *cfg; /* borrowed from the snapshot's configuration */
    struct pt_target_state **targets;  /* cfg->n_targets entries, each holding a reference */
    size_t n_targets;
    struct pt_maglev *maglev;  /* balance hash: lookup tables (primaries, backups) */
    char (*cookie_tokens)[33]; /* balance cookie: token per target (32 hex + NUL) */
    struct pt_budget budget;   /* retry budget of this upstream */
    atomic_int pending;        /* requests queued for a free target (max_pending), all workers */
};

struct pt_upstreams_rt {
    const struct pt_config *cfg;   /* borrowed; must outlive this */
    struct pt_upstream_state *ups; /* cfg->n_upstreams entries, in cfg->upstreams order */
    size_t n_ups;
};

/*
 * Builds the runtime state for cfg (borrowed: keep cfg alive while the result lives). Targets
 * whose key exists in prev (may be NULL) share prev's state (health, ejection, EWMA survive a
 * reload); new ones start healthy, and when prev is not NULL start a slow-start ramp at now_ms.
 * Also builds the hash tables and cookie tokens. Returns NULL when out of memory. Does not
 * block; call it on the thread that loads configurations.
 */
struct pt_upstreams_rt *pt_upstreams_rt_create(const struct pt_config *cfg,
                                               const struct pt_upstreams_rt *prev, uint64_t now_ms);

/* Drops rt's references (a state shared with a newer rt lives on). NULL is fine. */
void pt_upstreams_rt_free(struct pt_upstreams_rt *rt);

/* True when t may receive requests: healthy and not ejected at now_ms. */
bool pt_target_available(const struct pt_target_state *t, uint64_t now_ms);

/*
 * Weight of target tc in thousandths (weight * 1000 when fully warm). During slow start
 * (slow_start_ms after the target became available: health up, ejection over, or added by a
 * reload) it ramps linearly from PT_SLOW_START_MIN_PCT percent to the full weight.
 */
uint64_t pt_target_effective_weight(const struct pt_target_state *t, const struct pt_target_cfg *tc,
                                    uint32_t slow_start_ms, uint64_t now_ms);

/*
 * Counts an attempt starting on target idx of us. max_connections (from the target's config,
 * 0 = none) is enforced here: returns false, counting nothing, when the target already has that
 * many attempts in flight across workers (queue the request or try another target).
 */
bool pt_upstream_on_request_start(struct pt_upstream_state *us, size_t idx);

/*
 * Ends an attempt started with pt_upstream_on_request_start: updates the in-flight count, the
 * peak-EWMA (latency_us, except for connect failures), the consecutive-failure count, and
 * ejects the target (outlier detection, when configured) for base * 2^(n-1) capped at
 * max_ejection_time after consecutive_failures failures, unless that would eject more than
 * max_ejection_percent of the upstream's targets. outcome: enum pt_outcome; PT_OUTCOME_LOCAL
 * only gives the in-flight slot back. Returns true when this call ejected the target (the
 * caller may log it).
 */
bool pt_upstream_on_request_end(struct pt_upstream_state *us, size_t idx, uint64_t latency_us,
                                int outcome, uint64_t now_ms);

/* Peak-EWMA latency of t in ns, decayed to now_ms (0 when never measured). */
double pt_target_ewma_ns(const struct pt_target_state *t, uint64_t now_ms);

/* Connection accounting for statistics (the proxy calls them as it opens and closes). */
static inline void pt_target_conn_opened(struct pt_target_state *t)
{
    atomic_fetch_add_explicit(&t->conns, 1, memory_order_relaxed);
}
static inline void pt_target_conn_closed(struct pt_target_state *t)
{
    atomic_fetch_sub_explicit(&t->conns, 1, memory_order_relaxed);
}

/*
 * Publishes an active health verdict (the health checker's thread). Marks t up (starting its
 * slow-start ramp at now_ms) or down. Returns true when the verdict changed.
 */
bool pt_target_set_healthy(struct pt_target_state *t, bool is_healthy, uint64_t now_ms);

/* Monotonic milliseconds (CLOCK_MONOTONIC), the same scale as pt_loop.now_ms. */
uint64_t pt_upstream_now_ms(void);

/* Whether any target of u is an https:// one (u then needs a client TLS context). */
bool pt_upstream_has_https(const struct pt_upstream_cfg *u);
/* A new client TLS context for u's https targets: its ca_file, tls_verify, cert and key, and
   ALPN h2 alone for protocol h2 (a target that does not select it fails the handshake).
   Returns it (one reference, the caller's), or NULL with *err set. Reads files. */
struct pt_tls_client_ctx *pt_upstream_tls_new(const struct pt_upstream_cfg *u,
                                              struct pt_tls_err *err);

#endif
