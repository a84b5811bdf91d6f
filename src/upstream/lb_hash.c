/*
 * lb_hash.c - consistent hashing with a Maglev lookup table (Eisenbud et al., NSDI 2016).
 *
 * Each target gets a pseudo-random permutation of the table's M slots (offset and skip from
 * two hashes of its identity, M prime so every skip walks all slots); targets take turns
 * claiming their next free slot until the table is full, a target of weight w taking w turns
 * per round. A key maps to slot hash(key) mod M. Adding or removing one of N targets changes
 * about 1/N of the slots, and the table gives near-perfect balance, which a ketama ring only
 * approaches with hundreds of points per target.
 *
 * Tables are built once per configuration snapshot (pt_upstreams_rt_create), one over the
 * primaries and one over the backups, from the targets' identities (upstream, url), so a key
 * maps to the same target across reloads that keep the target set. At pick time a slot whose
 * target may not take the request (down, ejected, tried, full) passes to the next slot's
 * target: the keys of a dead target spread over the others while everyone else's keys stay.
 *
 * Size: M = 65537 slots of 2 bytes (128 KiB per hashed upstream per snapshot); building costs
 * about M log M steps. Rejected: the ring (needs ~100 virtual nodes per target and a binary
 * search per pick for worse balance); rendezvous hashing (O(N) per pick).
 */
#include <stdlib.h>
#include <string.h>

#include "upstream/lb_internal.h"

#define MAGLEV_M 65537u
#define EMPTY 0xffffu

struct pt_maglev {
    uint16_t *primary; /* MAGLEV_M slots; target index each */
    uint16_t *backup;  /* NULL when the upstream has no backup */
};

uint64_t pt_lb_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    /* splitmix64 finaliser: FNV alone leaves the low bits poorly mixed for short keys. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static int build_table(const struct pt_upstream_state *us, bool backups, uint16_t **out)
{
    size_t n = 0;
    *out = NULL;
    for (size_t i = 0; i < us->n_targets; i++)
        n += us->cfg->targets[i].is_backup == backups;
    if (n == 0)
        return 0;
    int rc = -1;
    uint16_t *table = malloc(MAGLEV_M * sizeof(*table));
    uint16_t *idx = malloc(n * sizeof(*idx));
    uint32_t *pos = malloc(n * sizeof(*pos));
    uint32_t *skip = malloc(n * sizeof(*skip));
    if (!table || !idx || !pos || !skip)
        goto out;
    n = 0;
    for (size_t i = 0; i < us->n_targets; i++) {
        if (us->cfg->targets[i].is_backup != backups)
            continue;
        const char *k = us->targets[i]->key;
        idx[n] = (uint16_t)i;
        pos[n] = (uint32_t)(pt_lb_hash64(k, strlen(k), 1) % MAGLEV_M);
        skip[n] = (uint32_t)(pt_lb_hash64(k, strlen(k), 2) % (MAGLEV_M - 1) + 1);
        n++;
    }
    for (size_t s = 0; s < MAGLEV_M; s++)
        table[s] = EMPTY;
    size_t filled = 0;
    while (filled < MAGLEV_M) {
        for (size_t j = 0; j < n && filled < MAGLEV_M; j++) {
            uint32_t turns = us->cfg->targets[idx[j]].weight ? us->cfg->targets[idx[j]].weight : 1;
            for (uint32_t t = 0; t < turns && filled < MAGLEV_M; t++) {
                while (table[pos[j]] != EMPTY)
                    pos[j] = (pos[j] + skip[j]) % MAGLEV_M;
                table[pos[j]] = idx[j];
                pos[j] = (pos[j] + skip[j]) % MAGLEV_M;
                filled++;
            }
        }
    }
    *out = table;
    table = NULL;
    rc = 0;
out:
    free(table);
    free(idx);
    free(pos);
    free(skip);
    return rc;
}

int pt_lb_hash_build(struct pt_upstream_state *us)
{
    struct pt_maglev *m = calloc(1, sizeof(*m));
    if (!m)
        return -1;
    us->maglev = m;
    if (build_table(us, false, &m->primary) < 0 || build_table(us, true, &m->backup) < 0)
        return -1; /* the caller frees us, maglev included */
    return 0;
}

void pt_lb_hash_free(struct pt_upstream_state *us)
{
    if (!us->maglev)
        return;
    free(us->maglev->primary);
    free(us->maglev->backup);
    free(us->maglev);
    us->maglev = NULL;
}

int pt_lb_hash_choose(const struct pt_upstream_state *us, const struct pt_lb_cand *c,
                      const struct pt_lb_key *key)
{
    if (!us->maglev || !key || key->len == 0)
        return -1;
    const uint16_t *table = c->is_backup ? us->maglev->backup : us->maglev->primary;
    if (!table)
        return -1;
    size_t s = (size_t)(pt_lb_hash64(key->data, key->len, 0) % MAGLEV_M);
    for (size_t i = 0; i < MAGLEV_M; i++) {
        uint16_t t = table[s];
        if (c->is_cand[t])
            return t;
        s = s + 1 == MAGLEV_M ? 0 : s + 1;
    }
    return -1;
}
