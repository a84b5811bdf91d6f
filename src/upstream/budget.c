/*
 * budget.c - retry budget over a sliding window of one-second slots (see budget.h).
 *
 * Why slots and not an exponentially decaying rate: the issue and operators speak of "20% of
 * requests over 10 s", which slots give exactly (to a second), and summing ten slots on a
 * retry (rare) costs nothing on the normal path, where a request is one relaxed add.
 *
 * Recycling a slot: the first thread to see a slot whose second is stale swaps the second with
 * a compare-and-exchange and zeroes the counters. A count that another thread adds between the
 * swap and the zeroing may be lost; that is a miscount of one request at a slot boundary, which
 * a budget tolerates, and the price of staying lock-free.
 */
#include "upstream/budget.h"

#include <string.h>

void pt_budget_init(struct pt_budget *b)
{
    for (int i = 0; i < PT_BUDGET_SLOTS; i++) {
        atomic_init(&b->slots[i].second, 0);
        atomic_init(&b->slots[i].requests, 0);
        atomic_init(&b->slots[i].retries, 0);
    }
}

/* The slot for now_ms, recycled when it still holds an older second. */
static struct pt_budget_slot *slot_for(struct pt_budget *b, uint64_t now_ms)
{
    uint64_t sec = now_ms / 1000 + 1; /* + 1: second 0 is "never used" */
    struct pt_budget_slot *s = &b->slots[sec % PT_BUDGET_SLOTS];
    uint_fast64_t cur = atomic_load_explicit(&s->second, memory_order_acquire);
    if (cur != sec && cur < sec &&
        atomic_compare_exchange_strong_explicit(&s->second, &cur, sec, memory_order_acq_rel,
                                                memory_order_acquire)) {
        atomic_store_explicit(&s->requests, 0, memory_order_relaxed);
        atomic_store_explicit(&s->retries, 0, memory_order_relaxed);
    }
    return s;
}

void pt_budget_on_request(struct pt_budget *b, uint64_t now_ms)
{
    atomic_fetch_add_explicit(&slot_for(b, now_ms)->requests, 1, memory_order_relaxed);
}

void pt_budget_counts(struct pt_budget *b, uint64_t now_ms, uint64_t *requests, uint64_t *retries)
{
    uint64_t sec = now_ms / 1000 + 1, rq = 0, rt = 0;
    for (int i = 0; i < PT_BUDGET_SLOTS; i++) {
        const struct pt_budget_slot *s = &b->slots[i];
        uint64_t ss = atomic_load_explicit(&s->second, memory_order_acquire);
        if (ss == 0 || ss > sec || sec - ss >= PT_BUDGET_SLOTS)
            continue;
        rq += atomic_load_explicit(&s->requests, memory_order_relaxed);
        rt += atomic_load_explicit(&s->retries, memory_order_relaxed);
    }
    *requests = rq;
    *retries = rt;
}

bool pt_budget_try_retry(struct pt_budget *b, uint32_t pct, uint64_t now_ms)
{
    uint64_t rq, rt;
    if (pct == 0)
        return false; /* "retry_budget: 0%": no retries at all */
    struct pt_budget_slot *s = slot_for(b, now_ms);
    pt_budget_counts(b, now_ms, &rq, &rt);
    uint64_t allowed = rq * pct / 100;
    if (allowed < PT_BUDGET_MIN_RETRIES)
        allowed = PT_BUDGET_MIN_RETRIES;
    if (rt + 1 > allowed)
        return false;
    atomic_fetch_add_explicit(&s->retries, 1, memory_order_relaxed);
    return true;
}
