/*
 * metrics.h - Portico's metrics: the series a configuration snapshot counts into, the hooks
 * the server calls on the request path, and the Prometheus text rendering of every counter
 * (docs/internals/metrics.md, docs/operations.md "Metrics").
 *
 * The counting itself is core's (core/counters.h): per-thread blocks, no lock and no shared
 * read-modify-write. This module knows what the slots mean. pt_metrics_map_build reserves, for
 * a configuration, one series per route (requests by method and status class, a duration
 * histogram), per upstream (time to response head, retries, queue waits) and per listener
 * (connections accepted and closed), each keyed by names (site hosts, route pattern, upstream
 * name, listen address) so that a reload keeps the counts of what it keeps. The server keeps
 * the map beside its snapshot and counts with the inline hooks below; pt_metrics_render sums
 * the blocks when scraped.
 */
#ifndef PT_ADMIN_METRICS_H
#define PT_ADMIN_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/counters.h"
#include "http/h1_parse.h"
#include "upstream/target.h"

#define PT_METRICS_N_METHODS PT_METHOD__COUNT /* enum pt_http_method, OTHER first */
#define PT_METRICS_N_CLASSES 5                /* status 1xx .. 5xx */
#define PT_METRICS_REQ_HIST (PT_METRICS_N_METHODS * PT_METRICS_N_CLASSES)
#define PT_METRICS_UPS_RETRIES 0 /* upstream series: retries, queued, then the histogram */
#define PT_METRICS_UPS_QUEUED 1
#define PT_METRICS_UPS_HIST 2
#define PT_METRICS_LSN_ACCEPTED 0 /* listener series: accepted, closed */
#define PT_METRICS_LSN_CLOSED 1

/* Where a snapshot's series are: slot bases (PT_CTR_NONE when a series could not be had:
   counting into it is skipped). Immutable once built; freed with pt_metrics_map_free. */
struct pt_metrics_map {
    uint32_t *site_first;   /* n_sites + 1: index in route_base of each site's first route */
    uint32_t *route_base;   /* per route, sites in order: requests then duration histogram */
    uint32_t unrouted_base; /* requests answered before a route matched (400, 404, ...) */
    uint32_t *ups_base;     /* per upstream (cfg->upstreams order) */
    uint32_t *listen_base;  /* per listen entry */
    size_t n_sites, n_routes, n_ups, n_listens;
};

/*
 * Reserves cfg's series in reg and returns their map, or NULL when out of memory. Series that
 * exist (same keys, an earlier snapshot) are reused. Call it on the thread that builds
 * snapshots (pt_counters_series is not thread-safe). Borrows cfg and reg.
 */
struct pt_metrics_map *pt_metrics_map_build(struct pt_counters *reg, const struct pt_config *cfg);
/* Frees m. NULL is fine. */
void pt_metrics_map_free(struct pt_metrics_map *m);

/* The requests series of a request routed to site_idx/route_idx (route_idx < 0 or site_idx < 0:
   not routed). */
static inline uint32_t pt_metrics_route_base(const struct pt_metrics_map *m, long site_idx,
                                             long route_idx)
{
    if (site_idx < 0 || route_idx < 0 || (size_t)site_idx >= m->n_sites)
        return m->unrouted_base;
    return m->route_base[m->site_first[site_idx] + (size_t)route_idx];
}

/*
 * Counts a request that ended (the server calls it where the access-log line is written):
 * base from pt_metrics_route_base, method enum pt_http_method, status the final status (0:
 * none was sent: counted as 5xx), duration_us its whole time. Owner thread of b.
 */
static inline void pt_metrics_on_request(struct pt_ctr_block *b, uint32_t base, int method,
                                         int status, uint64_t duration_us)
{
    if (base == PT_CTR_NONE)
        return;
    unsigned cls = status >= 100 && status < 600 ? (unsigned)status / 100 - 1 : 4;
    unsigned mi = method > 0 && method < PT_METRICS_N_METHODS ? (unsigned)method : 0;
    _Atomic uint64_t *s = pt_ctr_at(b, base);
    pt_ctr_bump(s + mi * PT_METRICS_N_CLASSES + cls, 1);
    pt_hist_observe_duration(s + PT_METRICS_REQ_HIST, duration_us);
}

/* Counts what a proxied request did upstream: retries, whether it waited in the queue, and
   the time to the response head (0: no head came, not observed). Owner thread of b. */
static inline void pt_metrics_on_upstream(struct pt_ctr_block *b, uint32_t base, uint32_t retries,
                                          bool was_queued, uint64_t head_latency_us)
{
    if (base == PT_CTR_NONE)
        return;
    _Atomic uint64_t *s = pt_ctr_at(b, base);
    if (retries)
        pt_ctr_bump(s + PT_METRICS_UPS_RETRIES, retries);
    if (was_queued)
        pt_ctr_bump(s + PT_METRICS_UPS_QUEUED, 1);
    if (head_latency_us)
        pt_hist_observe_duration(s + PT_METRICS_UPS_HIST, head_latency_us);
}

/* Counts a connection accepted on (is_open) or closed from the listener whose series is base. */
static inline void pt_metrics_on_conn(struct pt_ctr_block *b, uint32_t base, bool is_open)
{
    if (base != PT_CTR_NONE)
        pt_ctr_add(b, base + (is_open ? PT_METRICS_LSN_ACCEPTED : PT_METRICS_LSN_CLOSED), 1);
}

/* What a scrape reads, all borrowed for the call. */
struct pt_cache;
struct pt_metrics_view {
    const struct pt_counters *reg;
    uint32_t n_workers;                /* blocks 0 .. n_workers - 1 are the workers' */
    const struct pt_config *cfg;       /* the current snapshot's */
    const struct pt_metrics_map *map;  /* built for cfg */
    const struct pt_upstreams_rt *urt; /* cfg's target states; NULL: no target metrics */
    uint64_t now_ms;                   /* monotonic ms (ejections end at their deadline) */
    struct pt_cache *cache;            /* the cache store; NULL: no cache metrics */
};

/*
 * Appends every metric of v to out in the Prometheus text exposition format (version 0.0.4:
 * Content-Type "text/plain; version=0.0.4; charset=utf-8"). Reads the counters with relaxed
 * loads; takes no lock and may run on any thread while the workers count. Returns 0, or -1
 * when out reached its maximum or memory ran out (out->is_failed).
 */
int pt_metrics_render(struct pt_gbuf *out, const struct pt_metrics_view *v);

/* Appends s to out as a label value (backslash, double quote and newline escaped). */
int pt_metrics_label_value(struct pt_gbuf *out, const char *s);

#endif
