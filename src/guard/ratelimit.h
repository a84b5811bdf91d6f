/*
 * ratelimit.h - request rate limiters whose state every worker shares (ratelimit.c has the
 * design): GCRA (the generic cell rate algorithm), which is a token bucket kept as one time
 * stamp per key.
 *
 * The table is the process's: a limit counted per worker would let N workers take N times the
 * rate. Its memory is fixed when it is made (max_keys), whatever the number of distinct keys
 * clients send: see pt_rl_new for what a full table does.
 */
#ifndef PT_GUARD_RATELIMIT_H
#define PT_GUARD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pt_rl;

/* A limit: burst requests at once, one more each interval_us (rate = 1 / interval); with
   delay_us, a request over the burst whose slot comes within delay_us is allowed late (its
   verdict says how late) instead of refused. */
struct pt_rl_limit {
    uint64_t interval_us; /* >= 1 */
    uint32_t burst;       /* >= 1 */
    uint64_t delay_us;    /* the longest a request may wait for its slot; 0: none waits */
};

struct pt_rl_verdict {
    bool is_ok;              /* the request is within the limit (and was counted) */
    uint32_t remaining;      /* requests the key may still make now */
    uint64_t retry_after_us; /* refused: how long until one request is allowed */
    uint64_t reset_us;       /* how long until the key's whole burst is back */
    uint64_t delay_us;       /* is_ok: how long it must wait for its slot (<= the limit's) */
};

/*
 * A table for at most max_keys keys (rounded up; at least 1,024), each 16 bytes, in 64 shards
 * with a lock each. When the slots a key may take are all held by keys that are still
 * limited, the one nearest to its full burst is dropped (and counted): that key starts again
 * with its whole burst, so a flood of distinct keys can only make the limiter more lenient for
 * the keys it pushes out, never grow memory or refuse a request it should let through.
 * Returns NULL when out of memory.
 */
struct pt_rl *pt_rl_new(size_t max_keys);
void pt_rl_free(struct pt_rl *t);

/* Counts one request of key (n bytes: the limit's name and the client's value, as the caller
   builds them) at now_us (a monotonic clock) against lim, and says whether it is allowed.
   Thread-safe. */
void pt_rl_take(struct pt_rl *t, const void *key, size_t n, const struct pt_rl_limit *lim,
                uint64_t now_us, struct pt_rl_verdict *v);

/* Keys whose state was dropped to make room (since the table was made). */
uint64_t pt_rl_evictions(struct pt_rl *t);
/* The table's memory in bytes (fixed at pt_rl_new). */
size_t pt_rl_bytes(const struct pt_rl *t);

/*
 * The store seam: where the guard counts (guard/rate.c holds one store for the process). The
 * local table above is the one store today; a store shared by several instances (Redis, a
 * later issue) plugs in here with the same four operations and the same GCRA contract, and
 * nothing above this interface changes. take must not block the worker: a remote store
 * answers from state it keeps in the process and reconciles in the background (or, when it
 * must wait, the pipeline's pause and resume, server/guard_hold.c, is the way to hold the
 * request meanwhile).
 */
struct pt_rl_store;
struct pt_rl_store_ops {
    const char *name; /* "local" */
    /* pt_rl_take's contract, on this store. Thread-safe. */
    void (*take)(struct pt_rl_store *s, const void *key, size_t n, const struct pt_rl_limit *lim,
                 uint64_t now_us, struct pt_rl_verdict *v);
    /* Keys whose state this process dropped to make room. */
    uint64_t (*evictions)(struct pt_rl_store *s);
    /* This process's memory for the store, in bytes. */
    size_t (*bytes)(const struct pt_rl_store *s);
    void (*free)(struct pt_rl_store *s);
};
struct pt_rl_store {
    const struct pt_rl_store_ops *ops;
};

/* A store on a new local table of max_keys keys (pt_rl_new's rules); NULL when out of memory.
   The caller owns it: pt_rl_store_free. */
struct pt_rl_store *pt_rl_store_local(size_t max_keys);

static inline void pt_rl_store_take(struct pt_rl_store *s, const void *key, size_t n,
                                    const struct pt_rl_limit *lim, uint64_t now_us,
                                    struct pt_rl_verdict *v)
{
    s->ops->take(s, key, n, lim, now_us, v);
}
static inline uint64_t pt_rl_store_evictions(struct pt_rl_store *s)
{
    return s->ops->evictions(s);
}
static inline size_t pt_rl_store_bytes(const struct pt_rl_store *s)
{
    return s->ops->bytes(s);
}
static inline void pt_rl_store_free(struct pt_rl_store *s)
{
    if (s)
        s->ops->free(s);
}

#endif
