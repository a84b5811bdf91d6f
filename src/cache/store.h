/*
 * store.h - the shared cache store: stored responses (objects) that every worker reads, in
 * memory with a size cap and optionally on disk, with coalescing of concurrent misses, and
 * invalidation and purge. Thread-safe: sharded locks (one per shard, never held across I/O to
 * a client or upstream); an object, once published, is immutable and reference-counted, so a
 * worker sends its bytes without holding any lock.
 *
 * Objects are found by URL ("scheme://host[:port]/path?query", as the handler builds it): all
 * variants of one URL sit together, told apart by their extra key (the route's key headers,
 * normalised by the handler) and their vary key (policy.h pt_cache_vary_key). Invalidation
 * and purge by URL drop every variant of the URL.
 */
#ifndef PT_CACHE_STORE_H
#define PT_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/policy.h"
#include "http/fields.h"

struct pt_cache;

/* Limits (config: cache:). */
struct pt_cache_limits {
    uint64_t memory_bytes;     /* cap of the memory tier: objects' bytes and their headers
                                 (pt_cache_obj_size); the index adds the documented overhead */
    uint64_t max_object_bytes; /* larger bodies are not stored (they stream through) */
    const char *disk_path;     /* directory of the disk tier, or NULL: memory only */
    uint64_t disk_bytes;       /* cap of the disk tier */
};

/* One stored response. Published objects are immutable; readers hold a reference
   (pt_cache_obj_ref / pt_cache_obj_unref). All strings are inside the object's allocation. */
struct pt_cache_obj {
    struct pt_cache_meta meta;
    const char *url; /* the URL it was stored under */
    uint32_t url_len;
    const char *extra; /* the route's key extra (may be empty) */
    uint32_t extra_len;
    const char *vary; /* pt_cache_vary_key output (may be empty) */
    uint32_t vary_len;
    const char *head; /* the stored response's fields as "Name: value\r\n" lines (no status
                         line, no framing or hop-by-hop fields) */
    uint32_t head_len;
    const char *tags; /* tags as "tag\0tag\0..." */
    uint32_t tags_len;
    char *body;
    uint64_t body_len;
    /* the store's own from here (refs, queues, disk state) */
    void *priv;
};

/* Opens the store. err gets a message (with the path and errno text) on failure. With a disk
   tier, the directory is created when missing and the entries found there are indexed (a
   torn or corrupt file is removed when read, and is a miss). Returns NULL on failure. */
struct pt_cache *pt_cache_open(const struct pt_cache_limits *lim, char *err, size_t errlen);
/* Applies new limits (reload): a smaller cap evicts down to it. disk_path cannot change
   (returns -1 with err set; the old tier stays). */
int pt_cache_set_limits(struct pt_cache *c, const struct pt_cache_limits *lim, char *err,
                        size_t errlen);
/* Frees everything (no reference may be held). */
void pt_cache_close(struct pt_cache *c);

/* ---- reading ---- */

/* The variant stored under (url, extra) whose vary key matches the request fields qf[0..qn)
   (pt_cache_vary_match), the most recently stored when several do; a new reference, or NULL.
   A miss in memory looks in the disk tier, and what it finds there is checked whole
   (length, checksum, key) before it is promoted to memory and returned. *any_variant (may be
   NULL) is set when the URL has variants but none matched. */
struct pt_cache_obj *pt_cache_get(struct pt_cache *c, const char *url, size_t url_len,
                                  const char *extra, size_t extra_len, const struct pt_field *qf,
                                  size_t qn, bool *any_variant);
void pt_cache_obj_ref(struct pt_cache_obj *o);
void pt_cache_obj_unref(struct pt_cache_obj *o);

/* ---- writing ---- */

/* A new unpublished object for a response to store: copies every string; body_hint is the
   body's announced length (0: unknown). NULL when no memory, or body_hint is over the
   object limit. */
struct pt_cache_obj *pt_cache_obj_new(struct pt_cache *c, const struct pt_cache_meta *m,
                                      const char *url, size_t url_len, const char *extra,
                                      size_t extra_len, const char *vary, size_t vary_len,
                                      const char *head, size_t head_len, const char *tags,
                                      size_t tags_len, uint64_t body_hint);
/* Appends body bytes to an unpublished object (it may move: *o is updated). Returns 0, or -1
   when the body would exceed the object limit or no memory is left: the caller discards it. */
int pt_cache_obj_append(struct pt_cache *c, struct pt_cache_obj **o, const char *p, size_t n);
/* Drops an unpublished object. */
void pt_cache_obj_discard(struct pt_cache *c, struct pt_cache_obj *o);
/* Publishes o (the caller's reference passes to the store): it replaces the variant with the
   same (url, extra, vary) and, when the disk tier is on, is written there by the store's own
   thread. purge_epoch is what pt_cache_epoch returned when the response was requested: a
   purge or an invalidation of its URL since then drops o instead (so nothing purged comes
   back from a fetch that was under way). Returns 0, or -1 when it was dropped. */
int pt_cache_publish(struct pt_cache *c, struct pt_cache_obj *o, uint64_t purge_epoch);
/* The current purge epoch of url (see pt_cache_publish). */
uint64_t pt_cache_epoch(struct pt_cache *c, const char *url, size_t url_len);

/* ---- coalescing concurrent misses ---- */

enum pt_fill {
    PT_FILL_LEAD = 0, /* the caller fetches; it calls pt_cache_fill_end when the response is
                         stored or known not to be */
    PT_FILL_WAIT,     /* another request is fetching: poll pt_cache_fill_busy, then look again */
    PT_FILL_PASS,     /* recent fetches of this URL were not storable: fetch without waiting
                         and without leading (hit-for-miss, kept pass_s seconds) */
};
/* Registers interest in fetching (url, extra) at now_ms. */
enum pt_fill pt_cache_fill_begin(struct pt_cache *c, const char *url, size_t url_len,
                                 const char *extra, size_t extra_len, uint64_t now_ms);
/* Whether a fetch of (url, extra) is still under way (waiters poll this). */
bool pt_cache_fill_busy(struct pt_cache *c, const char *url, size_t url_len, const char *extra,
                        size_t extra_len);
/* The leader is done: stored says whether the response was stored; when not, later requests
   get PT_FILL_PASS for pass_s seconds. */
void pt_cache_fill_end(struct pt_cache *c, const char *url, size_t url_len, const char *extra,
                       size_t extra_len, bool stored, uint64_t pass_s, uint64_t now_ms);

/* ---- invalidation and purge (take effect at once, for every worker) ---- */

/* Each returns how many objects were dropped (memory and disk). */
size_t pt_cache_purge_url(struct pt_cache *c, const char *url, size_t url_len);
size_t pt_cache_purge_prefix(struct pt_cache *c, const char *prefix, size_t n);
size_t pt_cache_purge_tag(struct pt_cache *c, const char *tag, size_t n);
size_t pt_cache_purge_all(struct pt_cache *c);

/* ---- statistics ---- */

struct pt_cache_stats {
    uint64_t objects, bytes;                    /* memory tier now */
    uint64_t disk_objects, disk_bytes;          /* disk tier now */
    uint64_t evictions, disk_evictions, purged; /* since open */
    uint64_t index_bytes; /* the memory the index itself uses now (the documented overhead) */
};
void pt_cache_stats(struct pt_cache *c, struct pt_cache_stats *s);

#endif
