/*
 * dns.h - asynchronous name resolution for upstream targets (c-ares) and the process-wide cache
 * of what each name resolved to.
 *
 * Only the thread that loads configurations (the main thread) calls these functions; workers
 * never resolve, they use the addresses a snapshot was built with. See dns.c for the design.
 */
#ifndef PT_UPSTREAM_DNS_H
#define PT_UPSTREAM_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define PT_DNS_MAX_ADDRS 64 /* addresses kept per name (sorted; the rest are dropped) */
#define PT_DNS_TICK_MS 250  /* how often the main loop calls pt_dns_tick while names exist */
#define PT_DNS_TIMEOUT_MS PT_CONFIG_RESOLVER_TIMEOUT_MS /* default resolver.timeout */

/*
 * Expands cfg's target host names (dns_expand.c), the step between pt_config_load and any use
 * of the configuration: resolves every name at once (pt_dns_resolve_now, blocking the calling
 * thread for at most resolver.timeout) and replaces each target whose host is a name (is_dns)
 * by one target per address, allocated in cfg->arena. Returns PT_OK, or PT_ERR with the
 * errors written into err as pt_config_load writes its own ("FILE:LINE:COL: cannot resolve
 * host ..."); cfg then stays the caller's to free and must not be used. Main thread only.
 */
int pt_dns_expand(struct pt_config *cfg, char *err, size_t errlen);

/* One name to resolve and how long its answer stays fresh. */
struct pt_dns_name {
    const char *name;     /* NUL-terminated host name (not an address literal) */
    uint32_t interval_ms; /* re-resolution interval (the smallest resolve_interval using it) */
};

/*
 * Resolves names, blocking the calling thread (the main thread, never a worker) for at most
 * timeout_ms in all. servers is a c-ares server list ("127.0.0.1:5353,[::1]:53") or NULL for
 * the system's /etc/resolv.conf (/etc/hosts is read first either way). A name whose cached
 * answer is younger than its interval is not asked again. A failed lookup keeps the previous
 * answer when there was one. Names of the cache that are not in the list are forgotten (the
 * configuration no longer uses them). Returns 0, or -ENOMEM / -EINVAL (the resolver could not
 * be set up: bad server list); a name that resolved to nothing is not an error here (see
 * pt_dns_lookup).
 */
int pt_dns_resolve_now(const char *servers, uint32_t timeout_ms, const struct pt_dns_name *names,
                       size_t n);

/*
 * Copies the cached addresses of name (sorted, port 0) into out (up to max). Returns the count
 * (0 when the name is unknown or resolved to nothing); *why (may be NULL) receives the last
 * error text when the count is 0. Does not block.
 */
size_t pt_dns_lookup(const char *name, struct pt_sockaddr *out, size_t max, const char **why);

/*
 * Re-resolution, called by the main loop about every PT_DNS_TICK_MS: starts a query for each
 * cached name whose interval has passed at now_ms and processes answers that arrived, without
 * blocking. Returns true when some name's address set changed since the last call that
 * returned true (the caller reloads so that the new snapshot expands the new addresses).
 */
bool pt_dns_tick(uint64_t now_ms);

/* True when the cache holds at least one name (the main loop needs to tick). */
bool pt_dns_is_active(void);

/* Sorts addrs (family, then address bytes, then port) and removes duplicates; returns the
   new count. Exposed for tests. */
size_t pt_dns_sort_unique(struct pt_sockaddr *addrs, size_t n);

/* True when a and b (both sorted) hold the same addresses. Exposed for tests. */
bool pt_dns_same_addrs(const struct pt_sockaddr *a, size_t na, const struct pt_sockaddr *b,
                       size_t nb);

/*
 * Tests only: records addrs as name's fresh answer at now_ms (as if a query had just returned
 * it), returning true when it differs from the cached one. Does not block.
 */
bool pt_dns_cache_set(const char *name, const struct pt_sockaddr *addrs, size_t n,
                      uint32_t interval_ms, uint64_t now_ms);

/* Cancels queries, frees the cache and the c-ares channel. Safe to call more than once. */
void pt_dns_shutdown(void);

#endif
