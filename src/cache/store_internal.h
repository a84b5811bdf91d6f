/*
 * store_internal.h - what store.c and disk.c share inside the cache layer: the keyed hash,
 * the few facts about an object the disk tier needs, and the disk tier's entry points.
 * Nothing outside src/cache/ includes it.
 */
#ifndef PT_CACHE_STORE_INTERNAL_H
#define PT_CACHE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/store.h"

/* SipHash-2-4 of p[0..n) under the 128-bit key k. */
uint64_t pt_cache_hash(const uint64_t k[2], const void *p, size_t n);
/* The store's own random hash key (the index's and the disk index's). */
const uint64_t *pt_cache_key(const struct pt_cache *c);

/* The purge epoch o was published under. */
uint64_t pt_cache_obj_epoch(const struct pt_cache_obj *o);
/* Marks o as having a copy on disk (purge counts it once, through the disk tier). */
void pt_cache_obj_set_on_disk(struct pt_cache_obj *o);

struct pt_cache_disk;

/* Opens (creating it when missing) the directory path, indexes the files found there (their
   headers only) and starts the writer thread. NULL with err set on failure. */
struct pt_cache_disk *pt_cache_disk_open(struct pt_cache *c, const char *path, uint64_t cap,
                                         char *err, size_t errlen);
/* Writes the queue out, stops the writer thread and frees the index (files stay). */
void pt_cache_disk_close(struct pt_cache_disk *d);
/* A new cap; a smaller one evicts oldest files first. */
void pt_cache_disk_set_cap(struct pt_cache_disk *d, uint64_t cap);
/* Queues a published object for writing (takes a reference of its own). */
void pt_cache_disk_write(struct pt_cache_disk *d, struct pt_cache_obj *o);
/* The newest file for (url, extra) whose vary key matches qf[0..qn), read whole and checked;
   a new unpublished object (the caller publishes or discards it), or NULL. A file that fails a
   check is removed. *any_variant is set when variants exist but none matched. */
struct pt_cache_obj *pt_cache_disk_get(struct pt_cache_disk *d, const char *url, size_t url_len,
                                       const char *extra, size_t extra_len,
                                       const struct pt_field *qf, size_t qn, bool *any_variant);

enum pt_cache_purge_kind { PT_PURGE_URL, PT_PURGE_PREFIX, PT_PURGE_TAG, PT_PURGE_ALL };
/* Removes the files that match; returns how many. */
size_t pt_cache_disk_purge(struct pt_cache_disk *d, enum pt_cache_purge_kind kind, const char *s,
                           size_t n);
/* Adds the disk tier's figures (objects, bytes, evictions, index bytes) to *st. */
void pt_cache_disk_stats(struct pt_cache_disk *d, struct pt_cache_stats *st);

#endif
