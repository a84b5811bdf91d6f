/*
 * budget.h - retry budget: retries are allowed while they stay under a percentage of requests
 * over a sliding window, so that a failing upstream does not see its load multiplied.
 *
 * The window (PT_BUDGET_WINDOW_MS) is cut into PT_BUDGET_SLOTS one-second slots; each slot
 * holds atomic counters of requests and retries and the second it belongs to. A slot is
 * recycled (zeroed) by the first thread that touches it in a new second. Every worker updates
 * the same counters with relaxed atomic adds (one cache line per upstream on the request path,
 * touched once per request); a reading sums the slots still inside the window.
 */
#ifndef PT_UPSTREAM_BUDGET_H
#define PT_UPSTREAM_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PT_BUDGET_SLOTS 10
#define PT_BUDGET_WINDOW_MS (PT_BUDGET_SLOTS * 1000)
#define PT_BUDGET_MIN_RETRIES                                                                      \
    10 /* retries always allowed per window, so that a quiet
                                    upstream can still retry its rare failures */

struct pt_budget_slot {
    atomic_uint_fast64_t second; /* now_ms / 1000 that the counts belong to */
    atomic_uint requests;
    atomic_uint retries;
};

struct pt_budget {
    struct pt_budget_slot slots[PT_BUDGET_SLOTS];
};

/* Zeroes b. */
void pt_budget_init(struct pt_budget *b);

/* Counts one client request (not a retry) at now_ms. Thread-safe, lock-free. */
void pt_budget_on_request(struct pt_budget *b, uint64_t now_ms);

/*
 * Asks for one retry at now_ms: allowed when the retries of the window plus this one stay
 * within pct percent of its requests, or within PT_BUDGET_MIN_RETRIES (pct 0 refuses all). An allowed retry is
 * counted at once; a refused one is not. Thread-safe, lock-free (two threads racing at the
 * edge may both be allowed: the budget is a bound on storms, not an exact quota).
 */
bool pt_budget_try_retry(struct pt_budget *b, uint32_t pct, uint64_t now_ms);

/* Sums of the window at now_ms (tests, statistics). */
void pt_budget_counts(struct pt_budget *b, uint64_t now_ms, uint64_t *requests, uint64_t *retries);

#endif
