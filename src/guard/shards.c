/*
 * shards.c - making and measuring the guards' sharded tables (shards.h). The slots are
 * allocated once, per shard, so a shard's lock and its slots never share a cache line with
 * another shard's; nothing here runs per request.
 */
#include "guard/shards.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int pt_shards_init(struct pt_shards *t, size_t min_slots, size_t slot_size)
{
    memset(t, 0, sizeof(*t));
    t->slot_size = slot_size;
    size_t per = 64;
    while (per * PT_SHARDS < min_slots)
        per <<= 1;
    t->per_shard = per;
    for (int i = 0; i < PT_SHARDS; i++) {
        pthread_mutex_init(&t->sh[i].lock, NULL);
        t->sh[i].mask = per - 1;
    }
    if (getrandom(t->key, sizeof t->key, 0) != sizeof t->key)
        return -1;
    for (int i = 0; i < PT_SHARDS; i++)
        if (!(t->sh[i].slots = calloc(per, slot_size)))
            return -1;
    return 0;
}

void pt_shards_fini(struct pt_shards *t)
{
    for (int i = 0; i < PT_SHARDS; i++) {
        free(t->sh[i].slots);
        t->sh[i].slots = NULL;
        pthread_mutex_destroy(&t->sh[i].lock);
    }
}

uint64_t pt_shards_dropped(struct pt_shards *t)
{
    uint64_t n = 0;
    for (int i = 0; i < PT_SHARDS; i++) {
        pthread_mutex_lock(&t->sh[i].lock);
        n += t->sh[i].dropped;
        pthread_mutex_unlock(&t->sh[i].lock);
    }
    return n;
}

size_t pt_shards_bytes(const struct pt_shards *t)
{
    return sizeof(*t) + PT_SHARDS * t->per_shard * t->slot_size;
}
