/*
 * counters.h - per-thread counter blocks, fixed-bucket histograms and the registry a scraper
 * walks (the "Counters" seam: docs/internals/metrics.md).
 *
 * Every counting thread (each worker, the main thread, the admin thread) owns one struct
 * pt_ctr_block, an array of 64-bit counters indexed by slot. Only its owner writes it, with a
 * relaxed load and a relaxed store (a plain add on x86: no lock, no read-modify-write shared
 * between threads, no cache line written by two threads). A scraper sums a slot over every
 * block with relaxed atomic loads: each counter is read whole (never torn), and the sum is
 * exact once the writers are quiet. A gauge kept this way (+1 / -1) wraps per block; the sum
 * of all blocks, read as int64_t, is the right value.
 *
 * Slots: the first PT_CTR_N_FIXED are the process-wide counters named by enum pt_ctr_fixed.
 * The others belong to labelled series (a route's requests, a listener's connections...) that
 * the main thread reserves by key with pt_counters_series before it publishes the snapshot
 * that uses them. A key keeps its slots for the life of the process, so a series survives a
 * reload that keeps its key (the way target states are carried by upstream/target.c) and a
 * counter never goes back. Memory comes in chunks of PT_CTR_CHUNK slots; the main thread
 * allocates a chunk for every block before any slot in it is handed out, and publishes its
 * pointer with a release store, so writers never allocate and blocks never move.
 *
 * Histograms (struct pt_hist_def): a series of n_bounds + 1 per-bucket counts (the last is
 * +Inf) followed by one sum; the scraper makes them cumulative. Values are integers in the
 * unit the caller picks (microseconds for durations).
 *
 * Rejected: one atomic_fetch_add per counter (a locked instruction and a shared cache line per
 * request across workers); per-snapshot blocks (a reload would reset every series or need a
 * merge); growing blocks with realloc (a scraper could read freed memory).
 */
#ifndef PT_CORE_COUNTERS_H
#define PT_CORE_COUNTERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PT_CTR_CHUNK 4096u     /* slots per chunk (32 KiB per block) */
#define PT_CTR_MAX_CHUNKS 256u /* at most 1 Mi slots */
#define PT_CTR_NONE UINT32_MAX /* "no series": counting into it is skipped */

/* Process-wide counters, slots 0 .. PT_CTR_N_FIXED - 1. */
enum pt_ctr_fixed {
    PT_CTR_TLS_HANDSHAKES = 0, /* TLS handshakes with clients completed */
    PT_CTR_TLS_RESUMED,        /* of which resumed a session (ticket or cache) */
    PT_CTR_TLS_FAILED,         /* handshakes that failed */
    PT_CTR_RELOADS_OK,         /* configuration reloads applied */
    PT_CTR_RELOADS_FAILED,     /* reloads rejected (old configuration kept) */
    PT_CTR_API_CHANGES_OK,     /* admin API changes committed */
    PT_CTR_API_CHANGES_FAILED, /* admin API changes refused or failed */
    PT_CTR_POOL_IDLE,          /* gauge: idle upstream connections in the thread's pool */
    PT_CTR_CACHE_HITS,         /* requests answered from the cache (fresh) */
    PT_CTR_CACHE_MISSES,       /* cacheable requests that went to the origin (no usable entry) */
    PT_CTR_CACHE_STALE,        /* stale entries served (stale-while-revalidate, -if-error) */
    PT_CTR_CACHE_REVALIDATED,  /* conditional requests to the origin that got 304 */
    PT_CTR_CACHE_COALESCED,    /* requests that waited for another's fetch of their key */
    PT_CTR_CACHE_STORED,       /* responses stored */
    PT_CTR_CACHE_HIT_BYTES,    /* body bytes served from the cache */
    PT_CTR_GUARD_RATE_LIMITED, /* requests refused by a rate_limit (429) */
    PT_CTR_GUARD_IP_DENIED,    /* requests refused by IP rules (guard/ip.c) */
    PT_CTR_GUARD_IP_ACCEPT,    /* connections refused at accept by IP rules (before TLS) */
    PT_CTR_GUARD_CONN_LIMITED, /* connections or requests refused by a connection cap */
    PT_CTR_GUARD_SLOW_CLIENT,  /* connections closed for sending or reading too slowly */
    PT_CTR_GUARD_AUTH_REFUSED, /* requests refused by auth (401, 403, or 503 when it fails) */
    PT_CTR_GUARD_WAF_BLOCKED,  /* requests refused by the WAF (403) */
    PT_CTR_N_FIXED
};

struct pt_ctr_block {
    _Atomic(_Atomic uint64_t *) chunk[PT_CTR_MAX_CHUNKS]; /* NULL until reserved */
};

struct pt_counters;

/* The block of the calling thread, or NULL (a thread that counts nothing). Set once by the
   thread itself (pt_ctr_bind). */
extern _Thread_local struct pt_ctr_block *pt_ctr_self;

/*
 * A registry of n_blocks blocks with the fixed slots reserved. Returns NULL when out of
 * memory. Blocks are handed to threads by index (pt_counters_block); which index is which
 * thread is the caller's convention (server: workers first, then main, then admin).
 */
struct pt_counters *pt_counters_create(uint32_t n_blocks);
/* Frees reg and every block: no thread may count or read any more. NULL is fine. */
void pt_counters_free(struct pt_counters *reg);
uint32_t pt_counters_n_blocks(const struct pt_counters *reg);
/* Block i (< n_blocks), borrowed for reg's life. */
struct pt_ctr_block *pt_counters_block(struct pt_counters *reg, uint32_t i);
/* Makes b the calling thread's block (pt_ctr_self); NULL unbinds. */
void pt_ctr_bind(struct pt_ctr_block *b);

/*
 * The first slot of the series named key, n slots long (n <= PT_CTR_CHUNK; a series never
 * crosses a chunk): the slots key already has, or new zeroed ones. Returns PT_CTR_NONE when
 * out of memory or slots, or when key exists with another n. Not thread-safe: one thread (the
 * one that builds snapshots) calls it; counting threads may run meanwhile.
 */
uint32_t pt_counters_series(struct pt_counters *reg, const char *key, uint32_t n);

/* Sum of slot over every block (relaxed loads; any thread). */
uint64_t pt_counters_sum(const struct pt_counters *reg, uint32_t slot);
/* Slot's value in block i alone (any thread). */
uint64_t pt_counters_get(const struct pt_counters *reg, uint32_t i, uint32_t slot);

/* Pointer to the first counter of the series at base in b (owner thread; base reserved). */
static inline _Atomic uint64_t *pt_ctr_at(struct pt_ctr_block *b, uint32_t base)
{
    _Atomic uint64_t *c =
        atomic_load_explicit(&b->chunk[base / PT_CTR_CHUNK], memory_order_relaxed);
    return c + base % PT_CTR_CHUNK;
}

/* Adds v to *p: owner thread only (a load and a store, no read-modify-write). */
static inline void pt_ctr_bump(_Atomic uint64_t *p, uint64_t v)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* Adds v to slot of b (owner thread only). */
static inline void pt_ctr_add(struct pt_ctr_block *b, uint32_t slot, uint64_t v)
{
    pt_ctr_bump(pt_ctr_at(b, slot), v);
}

/* Adds v to fixed counter id of the calling thread's block; nothing on a thread without. */
static inline void pt_ctr_add_self(enum pt_ctr_fixed id, uint64_t v)
{
    struct pt_ctr_block *b = pt_ctr_self;
    if (b)
        pt_ctr_add(b, (uint32_t)id, v);
}

/* Bucket upper bounds of a histogram, ascending (the +Inf bucket is implied). */
struct pt_hist_def {
    const uint64_t *bounds;
    uint32_t n_bounds;
};

/* Slots a histogram of def takes: a count per bucket, +Inf included, then the sum. */
static inline uint32_t pt_hist_slots(const struct pt_hist_def *def)
{
    return def->n_bounds + 2;
}

/* Records value v in the histogram whose series starts at h (owner thread only). */
static inline void pt_hist_observe(_Atomic uint64_t *h, const struct pt_hist_def *def, uint64_t v)
{
    uint32_t i = 0;
    while (i < def->n_bounds && v > def->bounds[i])
        i++;
    pt_ctr_bump(h + i, 1);
    pt_ctr_bump(h + def->n_bounds + 1, v);
}

/* The request-duration buckets, in microseconds: 1 ms .. 60 s. */
extern const struct pt_hist_def pt_hist_duration_us;
#define PT_HIST_DURATION_BOUNDS                                                                    \
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,      \
        10000000, 30000000, 60000000
#define PT_HIST_DURATION_N 15

/* pt_hist_observe for pt_hist_duration_us, with its bounds known to the compiler (the request
   path: most values fall in the first buckets, a compare or two). */
static inline void pt_hist_observe_duration(_Atomic uint64_t *h, uint64_t v_us)
{
    static const uint64_t bounds[PT_HIST_DURATION_N] = {PT_HIST_DURATION_BOUNDS};
    uint32_t i = 0;
    while (i < PT_HIST_DURATION_N && v_us > bounds[i])
        i++;
    pt_ctr_bump(h + i, 1);
    pt_ctr_bump(h + PT_HIST_DURATION_N + 1, v_us);
}

#endif
