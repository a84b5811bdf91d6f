/*
 * cache_api.h - the cache's endpoints on the admin listener (cache_api.c): purge and figures.
 */
#ifndef PT_ADMIN_CACHE_API_H
#define PT_ADMIN_CACHE_API_H

#include "admin/admin.h"

struct pt_cache;

/* Routes POST /api/cache/purge and GET /api/cache on a (before pt_admin_start). *store is read
   at each request (NULL: 503, no cache configured); it is borrowed for a's life. Returns 0 or
   -1 (no memory). */
int pt_cache_api_attach(struct pt_admin *a, struct pt_cache **store);

#endif
