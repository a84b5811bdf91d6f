/*
 * connlimit.c - per-client connection and in-flight request counts in a shared, fixed-size
 * table.
 *
 * The table: 64 shards, each an open-addressing array of {hash, connections, requests}
 * (16 bytes) behind its own mutex, keyed by SipHash-2-4 of the client's address under a random
 * key drawn when the table is made (clients cannot aim addresses at one shard or one run of
 * slots). A key looks at PROBE consecutive slots from its hash: its own, else the first free
 * one (never used, or both counts at zero). Unlike the rate limiter's stamps, these counts
 * must be given back exactly, so a busy slot is never taken over: when all PROBE slots are
 * busy with other clients the new one is admitted uncounted (PT_CL_UNTRACKED, counted as an
 * overflow). A slot is busy only while its client has a connection or a request open, so with
 * the table sized at twice the connection cap that needs PROBE busy neighbours in one run,
 * which a random key makes vanishingly rare; and it fails open, which is the right side for a
 * cap whose purpose is fairness, not access control.
 *
 * A freed slot keeps its hash: a key's own slot always sits before the first never-used slot
 * of its run, so the lookup may stop there.
 *
 * Rejected: a per-worker table (a client's connections spread over workers by SO_REUSEPORT,
 * so a per-worker cap would be N times the configured one); a growing hash map (a flood of
 * distinct addresses would take the process's memory); lock-free counters per slot (taking a
 * slot for a new key and counting in it must be one step).
 */
#include "guard/connlimit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "guard/shards.h"

#define PROBE 16

struct slot {
    uint64_t h;    /* 0: never used */
    uint32_t n[2]; /* by enum pt_cl_kind; both 0: free */
};

struct pt_cl {
    struct pt_shards t; /* of struct slot; a shard's dropped counts its overflows */
};

struct pt_cl *pt_guard_cl;

struct pt_cl *pt_cl_new(size_t max_clients)
{
    struct pt_cl *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    if (pt_shards_init(&t->t, 2 * (max_clients < 4096 ? 4096 : max_clients), sizeof(struct slot)) <
        0) {
        pt_cl_free(t);
        return NULL;
    }
    return t;
}

void pt_cl_free(struct pt_cl *t)
{
    if (!t)
        return;
    pt_shards_fini(&t->t);
    free(t);
}

uint64_t pt_cl_key(const struct pt_cl *t, const struct sockaddr *sa)
{
    const void *p;
    size_t n;
    if (sa->sa_family == AF_INET) {
        p = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        n = 4;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        p = a6;
        n = 16;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            p = &a6->s6_addr[12];
            n = 4;
        }
    } else {
        return 0;
    }
    return pt_shards_hash(&t->t, p, n); /* never 0: 0 marks "no key" and an unused slot */
}

/* h's own slot in s, or (when make) the first free one claimed for h; NULL when none. */
static struct slot *find(struct pt_shard *s, uint64_t h, bool make)
{
    struct slot *slots = s->slots;
    size_t i = (size_t)(h >> 6) & s->mask;
    struct slot *free_slot = NULL;
    for (int k = 0; k < PROBE; k++, i = (i + 1) & s->mask) {
        struct slot *sl = &slots[i];
        if (sl->h == h)
            return sl;
        if (sl->h == 0 || (sl->n[0] == 0 && sl->n[1] == 0)) {
            if (!free_slot)
                free_slot = sl;
            if (sl->h == 0)
                break; /* never used: h is not further on */
        }
    }
    if (free_slot && make)
        free_slot->h = h;
    return make ? free_slot : NULL;
}

enum pt_cl_verdict pt_cl_take(struct pt_cl *t, uint64_t key, enum pt_cl_kind kind, uint32_t max)
{
    struct pt_shard *s = pt_shards_of(&t->t, key);
    enum pt_cl_verdict v = PT_CL_TAKEN;
    pthread_mutex_lock(&s->lock);
    struct slot *sl = find(s, key, true);
    if (!sl) {
        s->dropped++; /* an overflow */
        v = PT_CL_UNTRACKED;
    } else if (sl->n[kind] >= max) {
        v = PT_CL_OVER;
    } else {
        sl->n[kind]++;
    }
    pthread_mutex_unlock(&s->lock);
    return v;
}

void pt_cl_put(struct pt_cl *t, uint64_t key, enum pt_cl_kind kind)
{
    struct pt_shard *s = pt_shards_of(&t->t, key);
    pthread_mutex_lock(&s->lock);
    struct slot *sl = find(s, key, false);
    if (sl && sl->n[kind] > 0)
        sl->n[kind]--;
    pthread_mutex_unlock(&s->lock);
}

uint32_t pt_cl_count(struct pt_cl *t, uint64_t key, enum pt_cl_kind kind)
{
    struct pt_shard *s = pt_shards_of(&t->t, key);
    pthread_mutex_lock(&s->lock);
    const struct slot *sl = find(s, key, false);
    uint32_t n = sl ? sl->n[kind] : 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

uint64_t pt_cl_overflows(struct pt_cl *t)
{
    return pt_shards_dropped(&t->t);
}

size_t pt_cl_bytes(const struct pt_cl *t)
{
    return pt_shards_bytes(&t->t);
}
