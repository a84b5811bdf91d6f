/*
 * ratelimit.c - GCRA limiters in a shared, fixed-size table.
 *
 * GCRA keeps one "theoretical arrival time" (tat) per key: the moment the key's bucket would be
 * full again. A request at now moves it to max(tat, now) + interval; it is allowed when that is
 * at most burst intervals ahead of now. One stamp per key stands for a whole token bucket, and
 * a key whose tat is in the past is exactly a key never seen: its slot is free. So the table
 * needs no timer and no sweep: stale slots are reused as they are met.
 *
 * The table: 64 shards, each an open-addressing array of {hash, tat} (16 bytes) behind its own
 * mutex, keyed by SipHash-2-4 under a random key drawn when the table is made (clients cannot
 * aim keys at one shard or one run of slots). A key looks at PROBE consecutive slots from its
 * hash: its own, else the first free (empty, or idle: tat <= now), else the one whose tat is
 * the earliest (the nearest to a full bucket) is taken over and counted as an eviction. The
 * lock covers a few loads and stores; nothing else runs under it.
 *
 * Delay (nginx's limit_req without nodelay): a limit with delay_us lets tat run delay_us
 * further ahead than the burst; a request that lands there is counted and told to wait
 * tat - burst - now, the moment its slot comes. The caller does the waiting.
 *
 * The store seam (ratelimit.h, struct pt_rl_store_ops): the table is wrapped as the "local"
 * store; the guard sees only the store, so a shared one (Redis) replaces it without touching
 * the guard.
 *
 * Rejected: a per-worker table (N workers would allow N times the rate); a global LRU list
 * (a shared cache line written by every request); growing the table on demand (a flood of
 * distinct addresses would take the process's memory).
 */
#include "guard/ratelimit.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "guard/shards.h"

#define PROBE 16

struct slot {
    uint64_t h;   /* 0: never used */
    uint64_t tat; /* microseconds, the caller's clock */
};

struct pt_rl {
    struct pt_shards t; /* of struct slot; a shard's dropped counts its evictions */
};

struct pt_rl *pt_rl_new(size_t max_keys)
{
    struct pt_rl *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    if (pt_shards_init(&t->t, max_keys < 1024 ? 1024 : max_keys, sizeof(struct slot)) < 0) {
        pt_rl_free(t);
        return NULL;
    }
    return t;
}

void pt_rl_free(struct pt_rl *t)
{
    if (!t)
        return;
    pt_shards_fini(&t->t);
    free(t);
}

/* The slot of h in s at now: its own, a free one, or the earliest one taken over. */
static struct slot *find(struct pt_shard *s, uint64_t h, uint64_t now)
{
    struct slot *slots = s->slots;
    size_t i = (size_t)(h >> 6) & s->mask;
    struct slot *free_slot = NULL, *oldest = NULL;
    for (int k = 0; k < PROBE; k++, i = (i + 1) & s->mask) {
        struct slot *sl = &slots[i];
        if (sl->h == h)
            return sl;
        if (sl->h == 0 || sl->tat <= now) {
            if (!free_slot)
                free_slot = sl;
            if (sl->h == 0)
                break; /* never used: h is not further on */
            continue;
        }
        if (!oldest || sl->tat < oldest->tat)
            oldest = sl;
    }
    struct slot *sl = free_slot;
    if (!sl) {
        sl = oldest;
        s->dropped++; /* an eviction */
    }
    sl->h = h;
    sl->tat = now;
    return sl;
}

void pt_rl_take(struct pt_rl *t, const void *key, size_t n, const struct pt_rl_limit *lim,
                uint64_t now_us, struct pt_rl_verdict *v)
{
    uint64_t h = pt_shards_hash(&t->t, key, n);
    struct pt_shard *s = pt_shards_of(&t->t, h);
    uint64_t iv = lim->interval_us ? lim->interval_us : 1;
    uint64_t span = iv * (lim->burst ? lim->burst : 1); /* how far ahead tat may go at once */
    uint64_t reach = span + lim->delay_us;              /* ... and by waiting */
    pthread_mutex_lock(&s->lock);
    struct slot *sl = find(s, h, now_us);
    uint64_t tat = sl->tat > now_us ? sl->tat : now_us;
    uint64_t next = tat + iv;
    v->is_ok = next - now_us <= reach;
    if (v->is_ok)
        sl->tat = next;
    pthread_mutex_unlock(&s->lock);
    uint64_t ahead = (v->is_ok ? next : tat) - now_us; /* the bucket's debt now */
    v->remaining = (uint32_t)(ahead >= span ? 0 : (span - ahead) / iv);
    v->retry_after_us = v->is_ok ? 0 : next - now_us - reach;
    v->delay_us = v->is_ok && ahead > span ? ahead - span : 0;
    v->reset_us = ahead;
}

uint64_t pt_rl_evictions(struct pt_rl *t)
{
    return pt_shards_dropped(&t->t);
}

size_t pt_rl_bytes(const struct pt_rl *t)
{
    return pt_shards_bytes(&t->t);
}

/* ---- the local store (ratelimit.h, struct pt_rl_store_ops) ---- */

struct local_store {
    struct pt_rl_store base;
    struct pt_rl *t;
};

static void local_take(struct pt_rl_store *s, const void *key, size_t n,
                       const struct pt_rl_limit *lim, uint64_t now_us, struct pt_rl_verdict *v)
{
    pt_rl_take(((struct local_store *)s)->t, key, n, lim, now_us, v);
}

static uint64_t local_evictions(struct pt_rl_store *s)
{
    return pt_rl_evictions(((struct local_store *)s)->t);
}

static size_t local_bytes(const struct pt_rl_store *s)
{
    return sizeof(struct local_store) + pt_rl_bytes(((const struct local_store *)s)->t);
}

static void local_free(struct pt_rl_store *s)
{
    pt_rl_free(((struct local_store *)s)->t);
    free(s);
}

static const struct pt_rl_store_ops local_ops = {
    .name = "local",
    .take = local_take,
    .evictions = local_evictions,
    .bytes = local_bytes,
    .free = local_free,
};

struct pt_rl_store *pt_rl_store_local(size_t max_keys)
{
    struct local_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->t = pt_rl_new(max_keys);
    if (!s->t) {
        free(s);
        return NULL;
    }
    s->base.ops = &local_ops;
    return &s->base;
}
