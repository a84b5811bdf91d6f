/*
 * counters.c - the registry of per-thread counter blocks (see counters.h for the design).
 *
 * The registry keeps its series keys in a hash table of open addressing, touched only by the
 * thread that reserves series (the main thread, when it builds a snapshot); counting threads
 * and scrapers never look at it: they use slots. Chunks are allocated for every block at once
 * when the first slot of a chunk is handed out, and published with a release store; a
 * scraper loads a chunk pointer with acquire and skips a chunk that is not there yet (all its
 * counters are still zero).
 */
#include "core/counters.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

_Thread_local struct pt_ctr_block *pt_ctr_self;

static const uint64_t duration_bounds_us[PT_HIST_DURATION_N] = {PT_HIST_DURATION_BOUNDS};
const struct pt_hist_def pt_hist_duration_us = {
    duration_bounds_us, sizeof(duration_bounds_us) / sizeof(duration_bounds_us[0])};

struct series {
    char *key; /* owned; NULL: empty entry */
    uint32_t base, n;
};

struct pt_counters {
    struct pt_ctr_block *blocks; /* n_blocks of them */
    uint32_t n_blocks;
    uint32_t used;        /* slots handed out so far */
    struct series *table; /* open addressing, cap entries (a power of two) */
    size_t cap, n_series;
};

static bool chunk_ensure(struct pt_counters *reg, uint32_t ci)
{
    if (ci >= PT_CTR_MAX_CHUNKS)
        return false;
    for (uint32_t i = 0; i < reg->n_blocks; i++) {
        if (atomic_load_explicit(&reg->blocks[i].chunk[ci], memory_order_relaxed))
            continue;
        _Atomic uint64_t *c = calloc(PT_CTR_CHUNK, sizeof(*c));
        if (!c)
            return false;
        atomic_store_explicit(&reg->blocks[i].chunk[ci], c, memory_order_release);
    }
    return true;
}

struct pt_counters *pt_counters_create(uint32_t n_blocks)
{
    struct pt_counters *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    reg->blocks = calloc(n_blocks ? n_blocks : 1, sizeof(*reg->blocks));
    reg->n_blocks = n_blocks;
    if (!reg->blocks || !chunk_ensure(reg, 0)) {
        pt_counters_free(reg);
        return NULL;
    }
    reg->used = PT_CTR_N_FIXED;
    return reg;
}

void pt_counters_free(struct pt_counters *reg)
{
    if (!reg)
        return;
    for (uint32_t i = 0; reg->blocks && i < reg->n_blocks; i++)
        for (uint32_t c = 0; c < PT_CTR_MAX_CHUNKS; c++)
            free(atomic_load_explicit(&reg->blocks[i].chunk[c], memory_order_relaxed));
    for (size_t i = 0; i < reg->cap; i++)
        free(reg->table[i].key);
    free(reg->table);
    free(reg->blocks);
    free(reg);
}

uint32_t pt_counters_n_blocks(const struct pt_counters *reg)
{
    return reg->n_blocks;
}

struct pt_ctr_block *pt_counters_block(struct pt_counters *reg, uint32_t i)
{
    return i < reg->n_blocks ? &reg->blocks[i] : NULL;
}

void pt_ctr_bind(struct pt_ctr_block *b)
{
    pt_ctr_self = b;
}

static size_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static struct series *lookup(struct series *table, size_t cap, const char *key)
{
    size_t i = hash_key(key) & (cap - 1);
    while (table[i].key && strcmp(table[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &table[i];
}

static bool table_grow(struct pt_counters *reg)
{
    size_t cap = reg->cap ? reg->cap * 2 : 64;
    struct series *t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    for (size_t i = 0; i < reg->cap; i++)
        if (reg->table[i].key)
            *lookup(t, cap, reg->table[i].key) = reg->table[i];
    free(reg->table);
    reg->table = t;
    reg->cap = cap;
    return true;
}

uint32_t pt_counters_series(struct pt_counters *reg, const char *key, uint32_t n)
{
    if (n == 0 || n > PT_CTR_CHUNK)
        return PT_CTR_NONE;
    if ((reg->n_series + 1) * 2 > reg->cap && !table_grow(reg))
        return PT_CTR_NONE;
    struct series *e = lookup(reg->table, reg->cap, key);
    if (e->key)
        return e->n == n ? e->base : PT_CTR_NONE;
    uint32_t base = reg->used;
    if (base % PT_CTR_CHUNK + n > PT_CTR_CHUNK) /* never across a chunk */
        base = (base / PT_CTR_CHUNK + 1) * PT_CTR_CHUNK;
    if (!chunk_ensure(reg, (base + n - 1) / PT_CTR_CHUNK))
        return PT_CTR_NONE;
    char *k = strdup(key);
    if (!k)
        return PT_CTR_NONE;
    *e = (struct series){k, base, n};
    reg->n_series++;
    reg->used = base + n;
    return base;
}

uint64_t pt_counters_get(const struct pt_counters *reg, uint32_t i, uint32_t slot)
{
    if (i >= reg->n_blocks || slot / PT_CTR_CHUNK >= PT_CTR_MAX_CHUNKS)
        return 0;
    _Atomic uint64_t *c =
        atomic_load_explicit(&reg->blocks[i].chunk[slot / PT_CTR_CHUNK], memory_order_acquire);
    return c ? atomic_load_explicit(&c[slot % PT_CTR_CHUNK], memory_order_relaxed) : 0;
}

uint64_t pt_counters_sum(const struct pt_counters *reg, uint32_t slot)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < reg->n_blocks; i++)
        sum += pt_counters_get(reg, i, slot);
    return sum;
}
