/*
 * health.h - active health checks: one thread for the whole process probes every target of
 * every upstream that has a health: section, and publishes up/down verdicts into the shared
 * target state (upstream/target.h), where every worker sees them with its next pick.
 *
 * Lifecycle (all calls from the thread that owns configuration, usually main):
 *
 *     h = pt_health_create(rt)      checks for rt's upstreams, not running yet
 *     pt_health_start(h)            starts the thread
 *     pt_health_update(h, rt2)      after a reload: adopt rt2 (returns once adopted; the old
 *                                   rt may be freed after it returns)
 *     pt_health_destroy(h)          stops the thread, joins it, frees everything
 *
 * The verdict counters (rise/fall streaks) live in the shared target state, so they survive
 * an update for targets that did not change.
 */
#ifndef PT_UPSTREAM_HEALTH_H
#define PT_UPSTREAM_HEALTH_H

#include "upstream/target.h"

struct pt_health;

/* Creates a checker for rt (borrowed: it must stay alive until pt_health_update replaces it or
   pt_health_destroy). Builds the checker's TLS client contexts for rt's https targets on the
   calling thread (reads files). Returns NULL when out of memory or when the event loop cannot
   be made. */
struct pt_health *pt_health_create(const struct pt_upstreams_rt *rt);

/* Starts the checker thread. Returns 0 or -errno. */
int pt_health_start(struct pt_health *h);

/* Makes the checker use rt from now on (checks in progress on the old one are abandoned);
   builds the checker's TLS client contexts for rt on the calling thread (reads files).
   Blocks until the checker thread has switched (at most one loop iteration). Returns 0. */
int pt_health_update(struct pt_health *h, const struct pt_upstreams_rt *rt);

/* Stops and joins the thread (when started) and frees h. NULL is fine. */
void pt_health_destroy(struct pt_health *h);

#endif
