/*
 * shards.h - the guards' shared tables (ratelimit.c, connlimit.c): a fixed number of slots,
 * made once, split over 64 shards with a mutex each and keyed by SipHash-2-4 under a key
 * drawn at random when the table is made (clients cannot aim keys at one shard or one run of
 * slots). What a slot holds, and how a key finds its slot, is the table's own.
 */
#ifndef PT_GUARD_SHARDS_H
#define PT_GUARD_SHARDS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"

#define PT_SHARDS 64

struct pt_shard {
    pthread_mutex_t lock;
    void *slots;      /* per_shard slots of slot_size bytes, zeroed at the start */
    size_t mask;      /* per_shard - 1 */
    uint64_t dropped; /* the table's count of keys it could not keep (under lock) */
} __attribute__((aligned(64)));

struct pt_shards {
    uint64_t key[2];
    size_t per_shard; /* a power of two, at least 64 */
    size_t slot_size;
    struct pt_shard sh[PT_SHARDS];
};

/* Makes t's slots: at least min_slots in all, each slot_size bytes, zeroed, and its random
   key. Returns 0, or -1 (no memory, no randomness) with t left as pt_shards_fini leaves it. */
int pt_shards_init(struct pt_shards *t, size_t min_slots, size_t slot_size);
/* Frees t's slots and locks (t itself is the caller's); safe on a failed init. */
void pt_shards_fini(struct pt_shards *t);

/* The hash of a key's n bytes under t's key; never 0 (0 marks an unused slot). */
static inline uint64_t pt_shards_hash(const struct pt_shards *t, const void *p, size_t n)
{
    return pt_siphash24(t->key, p, n) | 1;
}

/* The shard of hash h; a slot's index within it starts at (h >> 6) & mask. */
static inline struct pt_shard *pt_shards_of(struct pt_shards *t, uint64_t h)
{
    return &t->sh[h & (PT_SHARDS - 1)];
}

/* The sum of the shards' dropped counts, each read under its lock. */
uint64_t pt_shards_dropped(struct pt_shards *t);
/* The slots' memory in bytes (fixed at init). */
size_t pt_shards_bytes(const struct pt_shards *t);

#endif
