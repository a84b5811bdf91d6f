/*
 * store.c - the shared cache store's memory tier, its coalescing of misses and its purges
 * (store.h). disk.c holds the optional disk tier.
 *
 * Shards. The store is cut into PT_SHARDS (64) shards, chosen by the top bits of a SipHash-2-4
 * of the URL under a key drawn at open (getrandom), so nobody can aim URLs at one bucket. Each
 * shard has its own mutex, a chained hash table of objects (all variants of one URL sit in one
 * chain: same hash), a table of tag links, its eviction queues, its fill records and its purge
 * epochs. A lock is held for index work only: lookups, links, unlinks. Bodies are copied, files
 * read and written, and objects freed, with no lock held (a dead object goes on a list that is
 * released after the unlock).
 *
 * Objects. One malloc per object: struct entry (whose first member is the public struct
 * pt_cache_obj), its tag links, the strings, then the body. Unpublished, the body grows by
 * realloc (doubling, up to max_object_bytes; exactly once when body_hint is right) and is
 * trimmed to its length at publish. The reference count is atomic; the index holds one
 * reference, each reader one; the last unref frees, so a reader keeps an evicted or purged
 * object alive while it sends it.
 *
 * Eviction: S3-FIFO (Yang et al., SOSP 2023) per shard, against one global byte budget. New
 * objects enter the small FIFO (about 10% of the shard's bytes); a hit bumps a 2-bit frequency.
 * Evicting from the small FIFO moves an object that was read to the main FIFO, and forgets one
 * that was not, leaving its key hash in the ghost set; an object whose key is in the ghost set
 * when it comes back enters the main FIFO directly. The main FIFO reinserts an object that was
 * read (frequency - 1) and evicts one that was not. One-hit wonders therefore pass through the
 * small FIFO without touching what is read often. The ghost set is a fixed array of key hashes
 * indexed by their low bits (a newer hash overwrites an older one in its slot): bounded, O(1),
 * a FIFO in effect. The budget (memory_bytes) is global rather than memory_bytes / shards, so
 * an object up to max_object_bytes fits whatever the shard count: a publish evicts from its own
 * shard first and then from the others, round robin, one lock at a time.
 *
 * Purge epochs. pt_cache_epoch(url) is (global counter << 32) | a per-shard slot chosen by the
 * URL hash (256 slots a shard). A purge by URL bumps the URL's slot, by prefix, tag or all the
 * global counter, before it takes any lock; a publish compares under the shard lock, so a
 * response whose fetch started before a purge never lands after it. Two URLs sharing a slot
 * only cost an extra drop.
 *
 * Coalescing: fill records keyed by (url, extra) in a small per-shard hash (FILL_BUCKETS
 * chains); a record is a lead (with its start time; 60 s without fill_end and the next caller
 * leads) or a hit-for-miss marker (until its expiry). Expired markers are dropped when their
 * chain is walked.
 *
 * Rejected: one global LRU list (a lock for every hit); CLOCK or LRU per shard (a scan of
 * one-hit wonders flushes them); per-shard caps of memory_bytes / 64 (a 256 MiB cache could not
 * keep an 8 MiB object); a hash map of per-URL epochs (unbounded growth).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cache/store.h"
#include "cache/store_internal.h"
#include "core/hash.h"
#include "core/common.h"

#define PT_SHARDS 64
#define SHARD_OF(h) ((size_t)((h) >> 58))
#define EPOCH_SLOTS 256
#define FILL_BUCKETS 64
#define FILL_ABANDON_MS 60000
#define GHOST_MIN 64
#define GHOST_MAX (1u << 16)
#define FREQ_MAX 3

enum { Q_NONE = 0, Q_SMALL, Q_MAIN };

struct entry;

struct taglink {
    struct taglink *next, **pprev; /* in the shard's tag table chain */
    struct entry *e;
    uint64_t h; /* keyed hash of the tag */
    const char *tag;
    uint32_t len;
};

struct entry {
    struct pt_cache_obj o; /* first: the public part */
    _Atomic uint32_t refs;
    uint8_t q;    /* Q_NONE (not indexed), Q_SMALL, Q_MAIN */
    uint8_t freq; /* hits since last looked at by eviction, 0..FREQ_MAX */
    bool is_from_disk;
    atomic_bool is_on_disk;
    uint32_t ntags;
    uint64_t uhash; /* keyed hash of the URL: shard, bucket, epoch slot */
    uint64_t khash; /* keyed hash of url, extra, vary: the ghost set's key */
    uint64_t epoch; /* the purge epoch it was published under */
    size_t size;    /* bytes of the allocation: what the cap counts */
    size_t body_cap;
    struct entry *hnext;         /* hash chain */
    struct entry *qprev, *qnext; /* FIFO */
    struct entry *dnext;         /* the dead list of one operation */
    struct taglink tl[];         /* ntags */
};

struct fifo {
    struct entry *head, *tail; /* evict at head, insert at tail */
    uint64_t bytes;
};

struct fill {
    struct fill *next;
    uint64_t h;        /* keyed hash of url, extra */
    bool is_lead;      /* else a hit-for-miss marker */
    uint64_t until_ms; /* lead: start time; marker: expiry */
    uint32_t url_len;  /* key bytes follow the struct: url, then extra */
    uint32_t extra_len;
    char key[];
};

struct shard {
    pthread_mutex_t mu;
    struct entry **b; /* nb chains (power of two) */
    size_t nb, n;
    struct taglink **tb; /* ntb chains (power of two) */
    size_t ntb, ntl;
    struct fifo small, main;
    uint64_t *ghost; /* ghost_mask + 1 key hashes, 0 = empty */
    size_t ghost_mask;
    struct fill *fb[FILL_BUCKETS];
    size_t nfill, fill_bytes;
    uint64_t evictions, purged;
    _Atomic uint32_t epoch[EPOCH_SLOTS];
} __attribute__((aligned(64)));

struct pt_cache {
    uint64_t key[2];
    _Atomic uint64_t bytes; /* sum of indexed entries' size */
    _Atomic uint64_t cap;
    _Atomic uint64_t max_object;
    _Atomic uint32_t gepoch;
    _Atomic size_t cursor; /* round robin of global eviction */
    struct pt_cache_disk *disk;
    char *disk_path;
    struct shard sh[PT_SHARDS];
};

/* ---- hashing ---- */

uint64_t pt_cache_hash(const uint64_t k[2], const void *data, size_t n)
{
    return pt_siphash24(k, data, n);
}

const uint64_t *pt_cache_key(const struct pt_cache *c)
{
    return c->key;
}

static uint64_t hash2(const uint64_t k[2], const char *a, size_t an, const char *b, size_t bn)
{
    uint64_t h[2] = {pt_cache_hash(k, a, an), pt_cache_hash(k, b, bn)};
    return pt_cache_hash(k, h, sizeof h);
}

static struct entry *E(struct pt_cache_obj *o)
{
    return (struct entry *)o;
}

uint64_t pt_cache_obj_epoch(const struct pt_cache_obj *o)
{
    return ((const struct entry *)o)->epoch;
}

void pt_cache_obj_set_on_disk(struct pt_cache_obj *o)
{
    atomic_store(&E(o)->is_on_disk, true);
}

/* ---- objects ---- */

static size_t count_tags(const char *t, size_t n)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || t[i] == '\0') {
            if (i > start)
                k++;
            start = i + 1;
        }
    }
    return k;
}

/* Sets the string pointers of e from its layout (after a realloc moved it). */
static void lay_out(struct entry *e)
{
    char *p = (char *)&e->tl[e->ntags];
    struct pt_cache_obj *o = &e->o;
    o->url = p;
    p += o->url_len + 1;
    o->extra = p;
    p += o->extra_len + 1;
    o->vary = p;
    p += o->vary_len + 1;
    o->head = p;
    p += o->head_len + 1;
    o->tags = p;
    p += o->tags_len + 1;
    o->body = p;
    o->priv = e;
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= o->tags_len && k < e->ntags; i++) {
        if (i == o->tags_len || o->tags[i] == '\0') {
            if (i > start) {
                e->tl[k].e = e;
                e->tl[k].tag = o->tags + start;
                e->tl[k].len = (uint32_t)(i - start);
                k++;
            }
            start = i + 1;
        }
    }
}

static void copy_str(char *dst, const char *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static size_t head_size(const struct entry *e)
{
    const struct pt_cache_obj *o = &e->o;
    return sizeof *e + e->ntags * sizeof(struct taglink) + o->url_len + o->extra_len + o->vary_len +
           o->head_len + o->tags_len + 5;
}

struct pt_cache_obj *pt_cache_obj_new(struct pt_cache *c, const struct pt_cache_meta *m,
                                      const char *url, size_t url_len, const char *extra,
                                      size_t extra_len, const char *vary, size_t vary_len,
                                      const char *head, size_t head_len, const char *tags,
                                      size_t tags_len, uint64_t body_hint)
{
    if (body_hint > atomic_load(&c->max_object) || url_len > UINT32_MAX || extra_len > UINT32_MAX ||
        vary_len > UINT32_MAX || head_len > UINT32_MAX || tags_len > UINT32_MAX)
        return NULL;
    size_t ntags = count_tags(tags, tags_len);
    size_t hs = sizeof(struct entry) + ntags * sizeof(struct taglink) + url_len + extra_len +
                vary_len + head_len + tags_len + 5;
    struct entry *e = malloc(hs + body_hint);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    atomic_init(&e->refs, 1);
    atomic_init(&e->is_on_disk, false);
    e->ntags = (uint32_t)ntags;
    e->body_cap = body_hint;
    struct pt_cache_obj *o = &e->o;
    o->meta = *m;
    o->url_len = (uint32_t)url_len;
    o->extra_len = (uint32_t)extra_len;
    o->vary_len = (uint32_t)vary_len;
    o->head_len = (uint32_t)head_len;
    o->tags_len = (uint32_t)tags_len;
    lay_out(e);
    copy_str((char *)o->url, url, url_len);
    copy_str((char *)o->extra, extra, extra_len);
    copy_str((char *)o->vary, vary, vary_len);
    copy_str((char *)o->head, head, head_len);
    copy_str((char *)o->tags, tags, tags_len);
    lay_out(e); /* tag links point into the copied tags */
    e->size = hs + body_hint;
    return o;
}

int pt_cache_obj_append(struct pt_cache *c, struct pt_cache_obj **op, const char *p, size_t n)
{
    struct entry *e = E(*op);
    uint64_t max = atomic_load(&c->max_object);
    if (n > max || e->o.body_len > max - n)
        return -1;
    uint64_t need = e->o.body_len + n;
    if (need > e->body_cap) {
        uint64_t cap = e->body_cap ? e->body_cap : 256;
        while (cap < need)
            cap *= 2;
        if (cap > max)
            cap = max;
        size_t hs = head_size(e);
        struct entry *ne = realloc(e, hs + cap);
        if (!ne)
            return -1;
        e = ne;
        e->body_cap = cap;
        e->size = hs + cap;
        lay_out(e);
        *op = &e->o;
    }
    memcpy(e->o.body + e->o.body_len, p, n);
    e->o.body_len += n;
    return 0;
}

void pt_cache_obj_discard(struct pt_cache *c, struct pt_cache_obj *o)
{
    (void)c;
    pt_cache_obj_unref(o);
}

void pt_cache_obj_ref(struct pt_cache_obj *o)
{
    atomic_fetch_add_explicit(&E(o)->refs, 1, memory_order_relaxed);
}

void pt_cache_obj_unref(struct pt_cache_obj *o)
{
    if (!o)
        return;
    struct entry *e = E(o);
    uint32_t was = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
    PT_BUG_ON(was == 0);
    if (was == 1)
        free(e);
}

/* ---- the index (shard lock held) ---- */

static struct shard *shard_of(struct pt_cache *c, uint64_t uhash)
{
    return &c->sh[SHARD_OF(uhash)];
}

static void fifo_push(struct fifo *f, struct entry *e)
{
    e->qnext = NULL;
    e->qprev = f->tail;
    if (f->tail)
        f->tail->qnext = e;
    else
        f->head = e;
    f->tail = e;
    f->bytes += e->size;
}

static void fifo_remove(struct fifo *f, struct entry *e)
{
    if (e->qprev)
        e->qprev->qnext = e->qnext;
    else
        f->head = e->qnext;
    if (e->qnext)
        e->qnext->qprev = e->qprev;
    else
        f->tail = e->qprev;
    e->qprev = e->qnext = NULL;
    f->bytes -= e->size;
}

static void grow_buckets(struct shard *s)
{
    size_t nb = s->nb * 2;
    struct entry **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nb; i++) {
        struct entry *e = s->b[i];
        while (e) {
            struct entry *next = e->hnext;
            /* keep the order of variants (newest first) within a URL's chain */
            struct entry **pp = &b[e->uhash & (nb - 1)];
            while (*pp)
                pp = &(*pp)->hnext;
            e->hnext = NULL;
            *pp = e;
            e = next;
        }
    }
    free(s->b);
    s->b = b;
    s->nb = nb;
}

static void grow_tags(struct shard *s)
{
    size_t ntb = s->ntb * 2;
    struct taglink **tb = calloc(ntb, sizeof *tb);
    if (!tb)
        return;
    for (size_t i = 0; i < s->ntb; i++) {
        struct taglink *l = s->tb[i];
        while (l) {
            struct taglink *next = l->next;
            struct taglink **head = &tb[l->h & (ntb - 1)];
            l->next = *head;
            if (*head)
                (*head)->pprev = &l->next;
            *head = l;
            l->pprev = head;
            l = next;
        }
    }
    free(s->tb);
    s->tb = tb;
    s->ntb = ntb;
}

static void link_entry(struct pt_cache *c, struct shard *s, struct entry *e)
{
    struct entry **pp = &s->b[e->uhash & (s->nb - 1)];
    e->hnext = *pp;
    *pp = e;
    s->n++;
    for (uint32_t i = 0; i < e->ntags; i++) {
        struct taglink *l = &e->tl[i];
        l->h = pt_cache_hash(c->key, l->tag, l->len);
        struct taglink **head = &s->tb[l->h & (s->ntb - 1)];
        l->next = *head;
        if (*head)
            (*head)->pprev = &l->next;
        *head = l;
        l->pprev = head;
        s->ntl++;
    }
    uint64_t *g = &s->ghost[e->khash & s->ghost_mask];
    if (*g == (e->khash | 1)) {
        *g = 0;
        e->q = Q_MAIN;
        fifo_push(&s->main, e);
    } else {
        e->q = Q_SMALL;
        fifo_push(&s->small, e);
    }
    atomic_fetch_add(&c->bytes, e->size);
    if (s->n > s->nb)
        grow_buckets(s);
    if (s->ntl > s->ntb)
        grow_tags(s);
}

/* Takes e out of the index and puts it on *dead (its reference is dropped after unlock). */
static void unlink_entry(struct pt_cache *c, struct shard *s, struct entry *e, struct entry **dead)
{
    struct entry **pp = &s->b[e->uhash & (s->nb - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    s->n--;
    for (uint32_t i = 0; i < e->ntags; i++) {
        struct taglink *l = &e->tl[i];
        *l->pprev = l->next;
        if (l->next)
            l->next->pprev = l->pprev;
        s->ntl--;
    }
    if (e->q == Q_SMALL)
        fifo_remove(&s->small, e);
    else if (e->q == Q_MAIN)
        fifo_remove(&s->main, e);
    e->q = Q_NONE;
    atomic_fetch_sub(&c->bytes, e->size);
    e->dnext = *dead;
    *dead = e;
}

static void release(struct entry *dead)
{
    while (dead) {
        struct entry *next = dead->dnext;
        pt_cache_obj_unref(&dead->o);
        dead = next;
    }
}

/* One S3-FIFO eviction in s; false when s holds nothing. */
static bool evict_one(struct pt_cache *c, struct shard *s, struct entry **dead)
{
    for (;;) {
        uint64_t total = s->small.bytes + s->main.bytes;
        if (s->small.head && (s->small.bytes * 10 > total || !s->main.head)) {
            struct entry *e = s->small.head;
            fifo_remove(&s->small, e);
            if (e->freq > 0) {
                e->q = Q_MAIN;
                fifo_push(&s->main, e);
                continue;
            }
            s->ghost[e->khash & s->ghost_mask] = e->khash | 1;
            e->q = Q_NONE; /* off its queue already */
            unlink_entry(c, s, e, dead);
            s->evictions++;
            return true;
        }
        if (!s->main.head)
            return false;
        struct entry *e = s->main.head;
        if (e->freq > 0) {
            e->freq--;
            fifo_remove(&s->main, e);
            fifo_push(&s->main, e);
            continue;
        }
        unlink_entry(c, s, e, dead);
        s->evictions++;
        return true;
    }
}

static bool over_cap(struct pt_cache *c)
{
    return atomic_load(&c->bytes) > atomic_load(&c->cap);
}

/* Evicts across shards, one lock at a time, until the memory tier is within its cap: a first
   round takes each shard down to its share (cap / PT_SHARDS) so that no shard is emptied for
   the others, a second takes what is still needed from any. */
static void shrink(struct pt_cache *c)
{
    for (size_t round = 0; round < 2 && over_cap(c); round++) {
        uint64_t share = round == 0 ? atomic_load(&c->cap) / PT_SHARDS : 0;
        for (size_t i = 0; i < PT_SHARDS && over_cap(c); i++) {
            struct shard *s = &c->sh[atomic_fetch_add(&c->cursor, 1) % PT_SHARDS];
            struct entry *dead = NULL;
            pthread_mutex_lock(&s->mu);
            while (over_cap(c) && s->small.bytes + s->main.bytes > share && evict_one(c, s, &dead))
                ;
            pthread_mutex_unlock(&s->mu);
            release(dead);
        }
    }
}

/* ---- open, limits, close ---- */

static size_t ghost_slots(uint64_t cap)
{
    uint64_t want = cap / PT_SHARDS / 512;
    size_t n = GHOST_MIN;
    while (n < want && n < GHOST_MAX)
        n *= 2;
    return n;
}

struct pt_cache *pt_cache_open(const struct pt_cache_limits *lim, char *err, size_t errlen)
{
    struct pt_cache *c = aligned_alloc(64, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "cache: out of memory");
        return NULL;
    }
    memset(c, 0, sizeof *c);
    if (getrandom(c->key, sizeof c->key, 0) != sizeof c->key) {
        /* no entropy source: still a working store, with a weaker key */
        c->key[0] = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull;
        c->key[1] = (uint64_t)(uintptr_t)&c ^ 0xc2b2ae3d27d4eb4full;
    }
    atomic_init(&c->cap, lim->memory_bytes);
    atomic_init(&c->max_object, lim->max_object_bytes);
    size_t ng = ghost_slots(lim->memory_bytes);
    for (size_t i = 0; i < PT_SHARDS; i++) {
        struct shard *s = &c->sh[i];
        pthread_mutex_init(&s->mu, NULL);
        s->nb = 64;
        s->ntb = 16;
        s->ghost_mask = ng - 1;
        s->b = calloc(s->nb, sizeof *s->b);
        s->tb = calloc(s->ntb, sizeof *s->tb);
        s->ghost = calloc(ng, sizeof *s->ghost);
        if (!s->b || !s->tb || !s->ghost) {
            snprintf(err, errlen, "cache: out of memory");
            goto fail;
        }
    }
    if (lim->disk_path) {
        c->disk_path = strdup(lim->disk_path);
        if (!c->disk_path) {
            snprintf(err, errlen, "cache: out of memory");
            goto fail;
        }
        c->disk = pt_cache_disk_open(c, lim->disk_path, lim->disk_bytes, err, errlen);
        if (!c->disk)
            goto fail;
    }
    return c;
fail:
    pt_cache_close(c);
    return NULL;
}

int pt_cache_set_limits(struct pt_cache *c, const struct pt_cache_limits *lim, char *err,
                        size_t errlen)
{
    bool same = (!lim->disk_path && !c->disk_path) ||
                (lim->disk_path && c->disk_path && strcmp(lim->disk_path, c->disk_path) == 0);
    if (!same) {
        snprintf(err, errlen, "cache: the disk path cannot change on reload (%s); restart",
                 c->disk_path ? c->disk_path : "none");
        return -1;
    }
    atomic_store(&c->max_object, lim->max_object_bytes);
    atomic_store(&c->cap, lim->memory_bytes);
    shrink(c);
    if (c->disk)
        pt_cache_disk_set_cap(c->disk, lim->disk_bytes);
    return 0;
}

void pt_cache_close(struct pt_cache *c)
{
    if (!c)
        return;
    if (c->disk)
        pt_cache_disk_close(c->disk);
    for (size_t i = 0; i < PT_SHARDS; i++) {
        struct shard *s = &c->sh[i];
        struct entry *dead = NULL;
        if (s->b) {
            while (evict_one(c, s, &dead))
                ;
        }
        release(dead);
        for (size_t j = 0; j < FILL_BUCKETS; j++) {
            struct fill *f = s->fb[j];
            while (f) {
                struct fill *next = f->next;
                free(f);
                f = next;
            }
        }
        free(s->b);
        free(s->tb);
        free(s->ghost);
        pthread_mutex_destroy(&s->mu);
    }
    free(c->disk_path);
    free(c);
}

/* ---- reading ---- */

static bool same_key(const struct pt_cache_obj *o, const char *url, size_t url_len,
                     const char *extra, size_t extra_len)
{
    return o->url_len == url_len && o->extra_len == extra_len &&
           memcmp(o->url, url, url_len) == 0 && memcmp(o->extra, extra, extra_len) == 0;
}

static int publish(struct pt_cache *c, struct entry *e, uint64_t purge_epoch, struct entry **kept);

struct pt_cache_obj *pt_cache_get(struct pt_cache *c, const char *url, size_t url_len,
                                  const char *extra, size_t extra_len, const struct pt_field *qf,
                                  size_t qn, bool *any_variant)
{
    uint64_t h = pt_cache_hash(c->key, url, url_len);
    struct shard *s = shard_of(c, h);
    struct entry *hit = NULL;
    bool any = false;
    pthread_mutex_lock(&s->mu);
    for (struct entry *e = s->b[h & (s->nb - 1)]; e; e = e->hnext) {
        if (e->uhash != h || !same_key(&e->o, url, url_len, extra, extra_len))
            continue;
        any = true;
        if (pt_cache_vary_match(e->o.vary, e->o.vary_len, qf, qn)) {
            hit = e;
            break;
        }
    }
    if (hit) {
        if (hit->freq < FREQ_MAX)
            hit->freq++;
        atomic_fetch_add_explicit(&hit->refs, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->mu);
    if (hit || !c->disk) {
        if (any_variant)
            *any_variant = any && !hit;
        return hit ? &hit->o : NULL;
    }
    /* a memory miss: the disk tier, then promotion to memory */
    uint64_t ep = pt_cache_epoch(c, url, url_len);
    bool dany = false;
    struct pt_cache_obj *o =
        pt_cache_disk_get(c->disk, url, url_len, extra, extra_len, qf, qn, &dany);
    if (any_variant)
        *any_variant = (any || dany) && !o;
    if (!o)
        return NULL;
    struct entry *e = E(o);
    e->is_from_disk = true;
    atomic_store(&e->is_on_disk, true);
    struct entry *kept = NULL;
    if (publish(c, e, ep, &kept) < 0)
        return NULL; /* purged while it was read */
    return &kept->o;
}

/* ---- writing ---- */

uint64_t pt_cache_epoch(struct pt_cache *c, const char *url, size_t url_len)
{
    uint64_t h = pt_cache_hash(c->key, url, url_len);
    struct shard *s = shard_of(c, h);
    uint32_t slot = atomic_load(&s->epoch[(h >> 40) & (EPOCH_SLOTS - 1)]);
    return (uint64_t)atomic_load(&c->gepoch) << 32 | slot;
}

/* Indexes e (the caller's reference passes to the index) unless a purge since purge_epoch
   covers its URL. An object read from disk (kept non-NULL) never replaces a variant stored
   in memory meanwhile, which is newer: *kept gets a reference to the object that stays
   indexed (e or that one). */
static int publish(struct pt_cache *c, struct entry *e, uint64_t purge_epoch, struct entry **kept)
{
    if (e->body_cap > e->o.body_len) { /* give back what the doubling reserved */
        size_t hs = head_size(e), len = e->o.body_len;
        struct entry *ne = realloc(e, hs + len);
        if (ne) {
            ne->body_cap = len;
            ne->size = hs + len;
            lay_out(ne);
            e = ne;
        }
    }
    struct pt_cache_obj *o = &e->o;
    if (e->size > atomic_load(&c->cap)) {
        pt_cache_obj_unref(o);
        return -1;
    }
    e->uhash = pt_cache_hash(c->key, o->url, o->url_len);
    uint64_t hv[3] = {e->uhash, pt_cache_hash(c->key, o->extra, o->extra_len),
                      pt_cache_hash(c->key, o->vary, o->vary_len)};
    e->khash = pt_cache_hash(c->key, hv, sizeof hv);
    e->epoch = purge_epoch;
    struct shard *s = shard_of(c, e->uhash);
    struct entry *dead = NULL;
    pthread_mutex_lock(&s->mu);
    if (pt_cache_epoch(c, o->url, o->url_len) != purge_epoch) {
        pthread_mutex_unlock(&s->mu);
        pt_cache_obj_unref(o);
        return -1;
    }
    for (struct entry *x = s->b[e->uhash & (s->nb - 1)]; x; x = x->hnext) {
        if (x->uhash == e->uhash && same_key(&x->o, o->url, o->url_len, o->extra, o->extra_len) &&
            x->o.vary_len == o->vary_len && memcmp(x->o.vary, o->vary, o->vary_len) == 0) {
            if (kept) {
                atomic_fetch_add_explicit(&x->refs, 1, memory_order_relaxed);
                *kept = x;
                pthread_mutex_unlock(&s->mu);
                pt_cache_obj_unref(o);
                return 0;
            }
            unlink_entry(c, s, x, &dead);
            break;
        }
    }
    link_entry(c, s, e);
    if (kept) {
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        *kept = e;
    }
    bool to_disk = c->disk && !e->is_from_disk;
    if (to_disk)
        pt_cache_obj_ref(o); /* the disk queue's, taken while the index still holds one */
    while (over_cap(c) && (s->small.head != e || s->main.head) && evict_one(c, s, &dead))
        ;
    pthread_mutex_unlock(&s->mu);
    release(dead);
    shrink(c);
    if (to_disk) {
        pt_cache_disk_write(c->disk, o);
        pt_cache_obj_unref(o);
    }
    return 0;
}

int pt_cache_publish(struct pt_cache *c, struct pt_cache_obj *o, uint64_t purge_epoch)
{
    return publish(c, E(o), purge_epoch, NULL);
}

/* ---- coalescing ---- */

static struct fill **fill_find(struct shard *s, uint64_t h, const char *url, size_t url_len,
                               const char *extra, size_t extra_len, uint64_t now_ms)
{
    struct fill **pp = &s->fb[h % FILL_BUCKETS];
    while (*pp) {
        struct fill *f = *pp;
        if (f->h == h && f->url_len == url_len && f->extra_len == extra_len &&
            memcmp(f->key, url, url_len) == 0 && memcmp(f->key + url_len, extra, extra_len) == 0)
            return pp;
        if (now_ms && !f->is_lead && f->until_ms <= now_ms) { /* an expired marker */
            *pp = f->next;
            s->nfill--;
            s->fill_bytes -= sizeof *f + f->url_len + f->extra_len;
            free(f);
            continue;
        }
        pp = &f->next;
    }
    return pp;
}

enum pt_fill pt_cache_fill_begin(struct pt_cache *c, const char *url, size_t url_len,
                                 const char *extra, size_t extra_len, uint64_t now_ms)
{
    uint64_t h = hash2(c->key, url, url_len, extra, extra_len);
    struct shard *s = shard_of(c, pt_cache_hash(c->key, url, url_len));
    enum pt_fill rc = PT_FILL_LEAD;
    pthread_mutex_lock(&s->mu);
    struct fill **pp = fill_find(s, h, url, url_len, extra, extra_len, now_ms ? now_ms : 1);
    struct fill *f = *pp;
    if (f) {
        if (f->is_lead && now_ms < f->until_ms + FILL_ABANDON_MS)
            rc = PT_FILL_WAIT;
        else if (!f->is_lead && now_ms < f->until_ms)
            rc = PT_FILL_PASS;
        else { /* an abandoned lead or an expired marker: this caller leads */
            f->is_lead = true;
            f->until_ms = now_ms;
        }
    } else if ((f = malloc(sizeof *f + url_len + extra_len)) != NULL) {
        f->next = NULL;
        f->h = h;
        f->is_lead = true;
        f->until_ms = now_ms;
        f->url_len = (uint32_t)url_len;
        f->extra_len = (uint32_t)extra_len;
        memcpy(f->key, url, url_len);
        memcpy(f->key + url_len, extra, extra_len);
        *pp = f;
        s->nfill++;
        s->fill_bytes += sizeof *f + url_len + extra_len;
    } /* no memory: lead without coalescing */
    pthread_mutex_unlock(&s->mu);
    return rc;
}

bool pt_cache_fill_busy(struct pt_cache *c, const char *url, size_t url_len, const char *extra,
                        size_t extra_len)
{
    uint64_t h = hash2(c->key, url, url_len, extra, extra_len);
    struct shard *s = shard_of(c, pt_cache_hash(c->key, url, url_len));
    pthread_mutex_lock(&s->mu);
    struct fill *f = *fill_find(s, h, url, url_len, extra, extra_len, 0);
    bool busy = f && f->is_lead;
    pthread_mutex_unlock(&s->mu);
    return busy;
}

void pt_cache_fill_end(struct pt_cache *c, const char *url, size_t url_len, const char *extra,
                       size_t extra_len, bool stored, uint64_t pass_s, uint64_t now_ms)
{
    uint64_t h = hash2(c->key, url, url_len, extra, extra_len);
    struct shard *s = shard_of(c, pt_cache_hash(c->key, url, url_len));
    pthread_mutex_lock(&s->mu);
    struct fill **pp = fill_find(s, h, url, url_len, extra, extra_len, 0);
    struct fill *f = *pp;
    if (f) {
        if (!stored && pass_s > 0) {
            f->is_lead = false;
            f->until_ms = now_ms + pass_s * 1000;
        } else {
            *pp = f->next;
            s->nfill--;
            s->fill_bytes -= sizeof *f + f->url_len + f->extra_len;
            free(f);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- purge ---- */

/* Counts what a memory purge dropped: an object with a disk copy counts through the disk. */
static size_t count_dead(struct entry *dead)
{
    size_t n = 0;
    for (; dead; dead = dead->dnext)
        n += !atomic_load(&dead->is_on_disk);
    return n;
}

static size_t finish_purge(struct pt_cache *c, struct shard *s, struct entry *dead, size_t n,
                           bool have_lock)
{
    size_t k = count_dead(dead);
    if (have_lock) {
        s->purged += n;
        pthread_mutex_unlock(&s->mu);
    }
    (void)c;
    release(dead);
    return k;
}

size_t pt_cache_purge_url(struct pt_cache *c, const char *url, size_t url_len)
{
    uint64_t h = pt_cache_hash(c->key, url, url_len);
    struct shard *s = shard_of(c, h);
    atomic_fetch_add(&s->epoch[(h >> 40) & (EPOCH_SLOTS - 1)], 1);
    struct entry *dead = NULL;
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    struct entry *e = s->b[h & (s->nb - 1)];
    while (e) {
        struct entry *next = e->hnext;
        if (e->uhash == h && e->o.url_len == url_len && memcmp(e->o.url, url, url_len) == 0) {
            unlink_entry(c, s, e, &dead);
            n++;
        }
        e = next;
    }
    size_t k = finish_purge(c, s, dead, n, true);
    if (c->disk)
        k += pt_cache_disk_purge(c->disk, PT_PURGE_URL, url, url_len);
    return k;
}

static size_t purge_queue(struct pt_cache *c, struct shard *s, struct fifo *q, const char *p,
                          size_t n, struct entry **dead)
{
    size_t k = 0;
    struct entry *e = q->head;
    while (e) {
        struct entry *next = e->qnext;
        if (!p || (e->o.url_len >= n && memcmp(e->o.url, p, n) == 0)) {
            unlink_entry(c, s, e, dead);
            k++;
        }
        e = next;
    }
    return k;
}

static size_t purge_scan(struct pt_cache *c, const char *prefix, size_t n)
{
    atomic_fetch_add(&c->gepoch, 1);
    size_t k = 0;
    for (size_t i = 0; i < PT_SHARDS; i++) {
        struct shard *s = &c->sh[i];
        struct entry *dead = NULL;
        pthread_mutex_lock(&s->mu);
        size_t m = purge_queue(c, s, &s->small, prefix, n, &dead);
        m += purge_queue(c, s, &s->main, prefix, n, &dead);
        k += finish_purge(c, s, dead, m, true);
    }
    return k;
}

size_t pt_cache_purge_prefix(struct pt_cache *c, const char *prefix, size_t n)
{
    size_t k = purge_scan(c, prefix, n);
    if (c->disk)
        k += pt_cache_disk_purge(c->disk, PT_PURGE_PREFIX, prefix, n);
    return k;
}

size_t pt_cache_purge_all(struct pt_cache *c)
{
    size_t k = purge_scan(c, NULL, 0);
    if (c->disk)
        k += pt_cache_disk_purge(c->disk, PT_PURGE_ALL, NULL, 0);
    return k;
}

size_t pt_cache_purge_tag(struct pt_cache *c, const char *tag, size_t n)
{
    atomic_fetch_add(&c->gepoch, 1);
    uint64_t h = pt_cache_hash(c->key, tag, n);
    size_t k = 0;
    for (size_t i = 0; i < PT_SHARDS; i++) {
        struct shard *s = &c->sh[i];
        struct entry *dead = NULL;
        size_t m = 0;
        pthread_mutex_lock(&s->mu);
        struct taglink *l = s->tb[h & (s->ntb - 1)];
        while (l) {
            if (l->h == h && l->len == n && memcmp(l->tag, tag, n) == 0) {
                /* unlinking drops all of the entry's links: walk again from the head */
                unlink_entry(c, s, l->e, &dead);
                m++;
                l = s->tb[h & (s->ntb - 1)];
                continue;
            }
            l = l->next;
        }
        k += finish_purge(c, s, dead, m, true);
    }
    if (c->disk)
        k += pt_cache_disk_purge(c->disk, PT_PURGE_TAG, tag, n);
    return k;
}

/* ---- statistics ---- */

void pt_cache_stats(struct pt_cache *c, struct pt_cache_stats *st)
{
    memset(st, 0, sizeof *st);
    st->index_bytes = sizeof *c;
    for (size_t i = 0; i < PT_SHARDS; i++) {
        struct shard *s = &c->sh[i];
        pthread_mutex_lock(&s->mu);
        st->objects += s->n;
        st->bytes += s->small.bytes + s->main.bytes;
        st->evictions += s->evictions;
        st->purged += s->purged;
        st->index_bytes += s->nb * sizeof *s->b + s->ntb * sizeof *s->tb +
                           (s->ghost_mask + 1) * sizeof *s->ghost + s->fill_bytes;
        pthread_mutex_unlock(&s->mu);
    }
    if (c->disk)
        pt_cache_disk_stats(c->disk, st);
}
