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

/* A limit: burst requests at once, one more each interval_us (rate = 1 / interval). */
struct pt_rl_limit {
    uint64_t interval_us; /* >= 1 */
    uint32_t burst;       /* >= 1 */
};

struct pt_rl_verdict {
    bool is_ok;              /* the request is within the limit (and was counted) */
    uint32_t remaining;      /* requests the key may still make now */
    uint64_t retry_after_us; /* refused: how long until one request is allowed */
    uint64_t reset_us;       /* how long until the key's whole burst is back */
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

#endif
