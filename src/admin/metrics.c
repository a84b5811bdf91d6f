/*
 * metrics.c - the series of a snapshot and their Prometheus text rendering (see metrics.h).
 *
 * Series keys. A route's series is keyed "route" US site US pattern US occurrence, where site
 * is its first host name (or "" for the default site) and occurrence counts the routes of
 * that site with the same pattern before it; an upstream's "upstream" US name; a listener's
 * "listen" US address as written (US: the unit separator, 0x1f, which no name contains). A
 * reload that keeps a key keeps the counts; a route that is gone stops being rendered, and
 * comes back with its counts if a later reload brings it back. The keys stay reserved for the
 * life of the process (a few hundred bytes per route ever configured).
 *
 * Rendering walks the configuration the map was built for, so every label set it writes is
 * known and bounded; a series with nothing counted yet is left out (requests by method and
 * status class, histograms of routes that saw no request) to keep a large route table's page
 * small. Target states come from the upstream runtime's atomics, read at scrape time.
 *
 * Threads: pt_metrics_map_build runs on the thread that builds snapshots; pt_metrics_render on
 * any thread (the admin listener's), concurrently with the workers' counting.
 */
#include "admin/metrics.h"

#include "cache/store.h"
#include "guard/rate.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 1024

static const char *const method_names[PT_METRICS_N_METHODS] = {
    "other", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
};

static const char *site_name(const struct pt_site_cfg *s)
{
    return s->n_hosts ? s->hosts[0] : "";
}

/* How many routes of s before index i have the same pattern. */
static unsigned route_occurrence(const struct pt_site_cfg *s, size_t i)
{
    unsigned n = 0;
    const char *m = s->routes[i].match ? s->routes[i].match : "";
    for (size_t j = 0; j < i; j++)
        if (strcmp(s->routes[j].match ? s->routes[j].match : "", m) == 0)
            n++;
    return n;
}

static uint32_t series(struct pt_counters *reg, uint32_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static uint32_t series(struct pt_counters *reg, uint32_t n, const char *fmt, ...)
{
    char key[KEY_MAX];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(key, sizeof(key), fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof(key))
        return PT_CTR_NONE; /* a name too long to key: not counted */
    return pt_counters_series(reg, key, n);
}

struct pt_metrics_map *pt_metrics_map_build(struct pt_counters *reg, const struct pt_config *cfg)
{
    struct pt_metrics_map *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n_sites = cfg->n_sites;
    m->n_ups = cfg->n_upstreams;
    m->n_listens = cfg->n_listens;
    for (size_t i = 0; i < cfg->n_sites; i++)
        m->n_routes += cfg->sites[i].n_routes;
    m->site_first = calloc(m->n_sites + 1, sizeof(*m->site_first));
    m->route_base = calloc(m->n_routes + 1, sizeof(*m->route_base));
    m->ups_base = calloc(m->n_ups + 1, sizeof(*m->ups_base));
    m->listen_base = calloc(m->n_listens + 1, sizeof(*m->listen_base));
    if (!m->site_first || !m->route_base || !m->ups_base || !m->listen_base) {
        pt_metrics_map_free(m);
        return NULL;
    }
    uint32_t route_n = PT_METRICS_REQ_HIST + pt_hist_slots(&pt_hist_duration_us);
    size_t r = 0;
    for (size_t i = 0; i < cfg->n_sites; i++) {
        const struct pt_site_cfg *s = &cfg->sites[i];
        m->site_first[i] = (uint32_t)r;
        for (size_t j = 0; j < s->n_routes; j++)
            m->route_base[r++] =
                series(reg, route_n, "route\x1f%s\x1f%s\x1f%u", site_name(s),
                       s->routes[j].match ? s->routes[j].match : "", route_occurrence(s, j));
    }
    m->site_first[cfg->n_sites] = (uint32_t)r;
    m->unrouted_base = series(reg, route_n, "unrouted");
    uint32_t ups_n = PT_METRICS_UPS_HIST + pt_hist_slots(&pt_hist_duration_us);
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        m->ups_base[i] = series(reg, ups_n, "upstream\x1f%s", cfg->upstreams[i]->name);
    for (size_t i = 0; i < cfg->n_listens; i++)
        m->listen_base[i] = series(reg, 2, "listen\x1f%s", cfg->listens[i].addr_text);
    return m;
}

void pt_metrics_map_free(struct pt_metrics_map *m)
{
    if (!m)
        return;
    free(m->site_first);
    free(m->route_base);
    free(m->ups_base);
    free(m->listen_base);
    free(m);
}

/* ---- rendering ---- */

int pt_metrics_label_value(struct pt_gbuf *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        pt_gbuf_put(out, run, (size_t)(s - run));
        pt_gbuf_put(out, esc, 2);
        run = s + 1;
    }
    return pt_gbuf_put(out, run, (size_t)(s - run));
}

static void family(struct pt_gbuf *out, const char *name, const char *type, const char *help)
{
    pt_gbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Up to three label pairs; names NULL end the list. */
struct labels {
    const char *name[4];
    const char *value[4];
};

static void put_labels(struct pt_gbuf *out, const struct labels *l, const char *extra_name,
                       const char *extra_value)
{
    bool any = false;
    for (int i = 0; i < 4 && l && l->name[i]; i++) {
        pt_gbuf_printf(out, "%s%s=\"", any ? "," : "{", l->name[i]);
        pt_metrics_label_value(out, l->value[i]);
        pt_gbuf_put(out, "\"", 1);
        any = true;
    }
    if (extra_name) {
        pt_gbuf_printf(out, "%s%s=\"%s\"", any ? "," : "{", extra_name, extra_value);
        any = true;
    }
    if (any)
        pt_gbuf_put(out, "}", 1);
}

static void sample(struct pt_gbuf *out, const char *name, const struct labels *l, uint64_t v)
{
    pt_gbuf_printf(out, "%s", name);
    put_labels(out, l, NULL, NULL);
    pt_gbuf_printf(out, " %llu\n", (unsigned long long)v);
}

static void sample_signed(struct pt_gbuf *out, const char *name, const struct labels *l, int64_t v)
{
    pt_gbuf_printf(out, "%s", name);
    put_labels(out, l, NULL, NULL);
    pt_gbuf_printf(out, " %lld\n", (long long)v);
}

/* A histogram in microseconds at base, rendered in seconds; nothing when it has no sample. */
static void histogram(struct pt_gbuf *out, const char *name, const struct pt_counters *reg,
                      uint32_t base, const struct labels *l)
{
    const struct pt_hist_def *d = &pt_hist_duration_us;
    uint64_t counts[64];
    uint64_t total = 0;
    for (uint32_t i = 0; i <= d->n_bounds && i < 64; i++) {
        counts[i] = pt_counters_sum(reg, base + i);
        total += counts[i];
    }
    if (total == 0)
        return;
    uint64_t cum = 0;
    for (uint32_t i = 0; i <= d->n_bounds && i < 64; i++) {
        cum += counts[i];
        char le[32];
        if (i < d->n_bounds)
            snprintf(le, sizeof(le), "%g", (double)d->bounds[i] / 1e6);
        else
            memcpy(le, "+Inf", 5);
        pt_gbuf_printf(out, "%s_bucket", name);
        put_labels(out, l, "le", le);
        pt_gbuf_printf(out, " %llu\n", (unsigned long long)cum);
    }
    uint64_t sum_us = pt_counters_sum(reg, base + d->n_bounds + 1);
    pt_gbuf_printf(out, "%s_sum", name);
    put_labels(out, l, NULL, NULL);
    pt_gbuf_printf(out, " %.6f\n", (double)sum_us / 1e6);
    pt_gbuf_printf(out, "%s_count", name);
    put_labels(out, l, NULL, NULL);
    pt_gbuf_printf(out, " %llu\n", (unsigned long long)cum);
}

/* The label value of route j of s: its pattern, "#N" added for its N-th repeat in s. */
static const char *route_label(const struct pt_site_cfg *s, size_t j, char *buf, size_t len)
{
    const char *m = s->routes[j].match ? s->routes[j].match : "";
    unsigned occ = route_occurrence(s, j);
    if (occ == 0)
        return m;
    snprintf(buf, len, "%s#%u", m, occ);
    return buf;
}

/* Requests by method and status class of one route's series at base, labels l (site, route). */
static void route_requests(struct pt_gbuf *out, const struct pt_counters *reg, uint32_t base,
                           struct labels *l)
{
    l->name[2] = "method";
    l->name[3] = "code";
    for (unsigned me = 0; me < PT_METRICS_N_METHODS; me++)
        for (unsigned c = 0; c < PT_METRICS_N_CLASSES; c++) {
            uint64_t n = pt_counters_sum(reg, base + me * PT_METRICS_N_CLASSES + c);
            if (!n)
                continue;
            char code[4] = {(char)('1' + c), 'x', 'x', '\0'};
            l->value[2] = method_names[me];
            l->value[3] = code;
            sample(out, "portico_requests_total", l, n);
        }
}

/* Two passes over every route (the not-routed series last): the requests family, then the
   duration histograms (a family's samples must be together). */
static void render_requests(struct pt_gbuf *out, const struct pt_metrics_view *v)
{
    const struct pt_config *cfg = v->cfg;
    const struct pt_metrics_map *m = v->map;
    char rbuf[KEY_MAX];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            family(out, "portico_requests_total", "counter",
                   "Requests answered, by site (first host name; empty: the default site, or not "
                   "routed), route (its match pattern), method and status class.");
        else
            family(out, "portico_request_duration_seconds", "histogram",
                   "Time from a request's start to its end, by site and route.");
        for (size_t i = 0; i <= cfg->n_sites; i++) {
            const struct pt_site_cfg *s = i < cfg->n_sites ? &cfg->sites[i] : NULL;
            size_t nr = s ? s->n_routes : 1;
            for (size_t j = 0; j < nr; j++) {
                uint32_t base = s ? m->route_base[m->site_first[i] + j] : m->unrouted_base;
                if (base == PT_CTR_NONE)
                    continue;
                struct labels l = {
                    {"site", "route"},
                    {s ? site_name(s) : "", s ? route_label(s, j, rbuf, sizeof(rbuf)) : ""}};
                if (pass == 0)
                    route_requests(out, v->reg, base, &l);
                else
                    histogram(out, "portico_request_duration_seconds", v->reg,
                              base + PT_METRICS_REQ_HIST, &l);
            }
        }
    }
}

static void render_upstreams(struct pt_gbuf *out, const struct pt_metrics_view *v)
{
    const struct pt_config *cfg = v->cfg;
    const struct pt_metrics_map *m = v->map;
    static const struct {
        const char *name, *help;
        uint32_t off;
    } ctrs[] = {
        {"portico_upstream_retries_total", "Retries on another target.", PT_METRICS_UPS_RETRIES},
        {"portico_upstream_queued_total",
         "Requests that waited in the upstream's queue for a free target (max_connections).",
         PT_METRICS_UPS_QUEUED},
    };
    for (size_t k = 0; k < sizeof(ctrs) / sizeof(ctrs[0]); k++) {
        family(out, ctrs[k].name, "counter", ctrs[k].help);
        for (size_t i = 0; i < cfg->n_upstreams; i++)
            if (m->ups_base[i] != PT_CTR_NONE)
                sample(out, ctrs[k].name, &(struct labels){{"upstream"}, {cfg->upstreams[i]->name}},
                       pt_counters_sum(v->reg, m->ups_base[i] + ctrs[k].off));
    }
    family(out, "portico_upstream_duration_seconds", "histogram",
           "Time from an attempt's start to the upstream's response head, by upstream.");
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        if (m->ups_base[i] != PT_CTR_NONE)
            histogram(out, "portico_upstream_duration_seconds", v->reg,
                      m->ups_base[i] + PT_METRICS_UPS_HIST,
                      &(struct labels){{"upstream"}, {cfg->upstreams[i]->name}});
    if (!v->urt)
        return;
    family(out, "portico_upstream_queue_pending", "gauge",
           "Requests waiting in the upstream's queue now.");
    for (size_t i = 0; i < v->urt->n_ups; i++)
        sample_signed(out, "portico_upstream_queue_pending",
                      &(struct labels){{"upstream"}, {v->urt->ups[i].cfg->name}},
                      atomic_load_explicit(&v->urt->ups[i].pending, memory_order_relaxed));
    static const char *const states[] = {"up", "down", "ejected"};
    family(out, "portico_upstream_target_state", "gauge",
           "1 for the target's state (up; down: failing its health checks; ejected: by outlier "
           "detection), 0 for the others.");
    for (size_t i = 0; i < v->urt->n_ups; i++) {
        const struct pt_upstream_state *us = &v->urt->ups[i];
        for (size_t t = 0; t < us->n_targets; t++) {
            const struct pt_target_state *ts = us->targets[t];
            int st = atomic_load_explicit(&ts->ejected_until_ms, memory_order_relaxed) > v->now_ms
                         ? 2
                     : !atomic_load_explicit(&ts->is_healthy, memory_order_relaxed) ? 1
                                                                                    : 0;
            for (int k = 0; k < 3; k++)
                sample(out, "portico_upstream_target_state",
                       &(struct labels){{"upstream", "target", "state"},
                                        {us->cfg->name, us->cfg->targets[t].url, states[k]}},
                       k == st);
        }
    }
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } tctrs[] = {
        {"portico_upstream_target_ejections_total", "counter", "Outlier ejections of the target.",
         offsetof(struct pt_target_state, ejections_total)},
        {"portico_upstream_target_requests_total", "counter", "Attempts on the target that ended.",
         offsetof(struct pt_target_state, requests)},
        {"portico_upstream_target_failures_total", "counter",
         "Attempts on the target counted as failures.", offsetof(struct pt_target_state, failures)},
    };
    for (size_t k = 0; k < sizeof(tctrs) / sizeof(tctrs[0]); k++) {
        family(out, tctrs[k].name, tctrs[k].type, tctrs[k].help);
        for (size_t i = 0; i < v->urt->n_ups; i++) {
            const struct pt_upstream_state *us = &v->urt->ups[i];
            for (size_t t = 0; t < us->n_targets; t++) {
                const atomic_uint_fast64_t *p =
                    (const atomic_uint_fast64_t *)((const char *)us->targets[t] + tctrs[k].off);
                sample(out, tctrs[k].name,
                       &(struct labels){{"upstream", "target"},
                                        {us->cfg->name, us->cfg->targets[t].url}},
                       atomic_load_explicit(p, memory_order_relaxed));
            }
        }
    }
    family(out, "portico_upstream_target_in_flight", "gauge", "Attempts on the target now.");
    for (size_t i = 0; i < v->urt->n_ups; i++) {
        const struct pt_upstream_state *us = &v->urt->ups[i];
        for (size_t t = 0; t < us->n_targets; t++)
            sample_signed(
                out, "portico_upstream_target_in_flight",
                &(struct labels){{"upstream", "target"}, {us->cfg->name, us->cfg->targets[t].url}},
                atomic_load_explicit(&us->targets[t]->in_flight, memory_order_relaxed));
    }
}

static void render_process(struct pt_gbuf *out, const struct pt_metrics_view *v)
{
    const struct pt_config *cfg = v->cfg;
    const struct pt_metrics_map *m = v->map;
    family(out, "portico_connections_accepted_total", "counter",
           "Client connections accepted, by listener (its listen address as written).");
    for (size_t i = 0; i < cfg->n_listens; i++)
        if (m->listen_base[i] != PT_CTR_NONE)
            sample(out, "portico_connections_accepted_total",
                   &(struct labels){{"listener"}, {cfg->listens[i].addr_text}},
                   pt_counters_sum(v->reg, m->listen_base[i] + PT_METRICS_LSN_ACCEPTED));
    family(out, "portico_connections_open", "gauge", "Client connections open, by listener.");
    for (size_t i = 0; i < cfg->n_listens; i++)
        if (m->listen_base[i] != PT_CTR_NONE)
            sample_signed(
                out, "portico_connections_open",
                &(struct labels){{"listener"}, {cfg->listens[i].addr_text}},
                (int64_t)(pt_counters_sum(v->reg, m->listen_base[i] + PT_METRICS_LSN_ACCEPTED) -
                          pt_counters_sum(v->reg, m->listen_base[i] + PT_METRICS_LSN_CLOSED)));
    family(out, "portico_upstream_pool_idle_connections", "gauge",
           "Idle upstream HTTP/1.1 connections kept for reuse, by worker.");
    for (uint32_t w = 0; w < v->n_workers && w < pt_counters_n_blocks(v->reg); w++) {
        char id[16];
        snprintf(id, sizeof(id), "%u", w);
        sample_signed(out, "portico_upstream_pool_idle_connections",
                      &(struct labels){{"worker"}, {id}},
                      (int64_t)pt_counters_get(v->reg, w, PT_CTR_POOL_IDLE));
    }
    family(out, "portico_tls_handshakes_total", "counter",
           "TLS handshakes with clients completed, resumed ones included.");
    sample(out, "portico_tls_handshakes_total", NULL,
           pt_counters_sum(v->reg, PT_CTR_TLS_HANDSHAKES));
    family(out, "portico_tls_resumptions_total", "counter",
           "TLS handshakes with clients that resumed a session (ticket or session cache).");
    sample(out, "portico_tls_resumptions_total", NULL, pt_counters_sum(v->reg, PT_CTR_TLS_RESUMED));
    family(out, "portico_tls_handshake_failures_total", "counter",
           "TLS handshakes with clients that failed.");
    sample(out, "portico_tls_handshake_failures_total", NULL,
           pt_counters_sum(v->reg, PT_CTR_TLS_FAILED));
    family(out, "portico_reloads_total", "counter",
           "Configuration reloads, by outcome (success: applied; failure: the previous "
           "configuration kept serving).");
    sample(out, "portico_reloads_total", &(struct labels){{"outcome"}, {"success"}},
           pt_counters_sum(v->reg, PT_CTR_RELOADS_OK));
    sample(out, "portico_reloads_total", &(struct labels){{"outcome"}, {"failure"}},
           pt_counters_sum(v->reg, PT_CTR_RELOADS_FAILED));
    family(out, "portico_api_changes_total", "counter",
           "Changes made through the admin API, by outcome.");
    sample(out, "portico_api_changes_total", &(struct labels){{"outcome"}, {"success"}},
           pt_counters_sum(v->reg, PT_CTR_API_CHANGES_OK));
    sample(out, "portico_api_changes_total", &(struct labels){{"outcome"}, {"failure"}},
           pt_counters_sum(v->reg, PT_CTR_API_CHANGES_FAILED));
    family(out, "portico_guard_refusals_total", "counter",
           "Requests refused by a guard (docs/config.md, Guards), by guard.");
    sample(out, "portico_guard_refusals_total", &(struct labels){{"guard"}, {"ip"}},
           pt_counters_sum(v->reg, PT_CTR_GUARD_IP_DENIED));
    sample(out, "portico_guard_refusals_total", &(struct labels){{"guard"}, {"rate_limit"}},
           pt_counters_sum(v->reg, PT_CTR_GUARD_RATE_LIMITED));
    sample(out, "portico_guard_refusals_total", &(struct labels){{"guard"}, {"ip_accept"}},
           pt_counters_sum(v->reg, PT_CTR_GUARD_IP_ACCEPT));
    sample(out, "portico_guard_refusals_total", &(struct labels){{"guard"}, {"connection_limit"}},
           pt_counters_sum(v->reg, PT_CTR_GUARD_CONN_LIMITED));
    sample(out, "portico_guard_refusals_total", &(struct labels){{"guard"}, {"slow_client"}},
           pt_counters_sum(v->reg, PT_CTR_GUARD_SLOW_CLIENT));
    sample(out, "portico_guard_refusals_total", &(struct labels){{"guard"}, {"auth"}},
           pt_counters_sum(v->reg, PT_CTR_GUARD_AUTH_REFUSED));
    sample(out, "portico_guard_refusals_total", &(struct labels){{"guard"}, {"waf"}},
           pt_counters_sum(v->reg, PT_CTR_GUARD_WAF_BLOCKED));
    if (pt_guard_rl) { /* the rate-limit store, once a configuration made it */
        family(out, "portico_rate_limit_evictions_total", "counter",
               "Rate-limit keys dropped to make room in the bounded table (those keys start "
               "again with their whole burst).");
        sample(out, "portico_rate_limit_evictions_total", NULL, pt_rl_store_evictions(pt_guard_rl));
        family(out, "portico_rate_limit_table_bytes", "gauge",
               "Memory of the rate-limit table, fixed by rate_limits.max_keys.");
        sample(out, "portico_rate_limit_table_bytes", NULL, pt_rl_store_bytes(pt_guard_rl));
    }
}

/* The cache: requests by outcome (per-thread counters) and the store's figures. */
static void render_cache(struct pt_gbuf *out, const struct pt_metrics_view *v)
{
    if (!v->cache)
        return;
    static const struct {
        const char *outcome;
        enum pt_ctr_fixed id;
    } outcomes[] = {
        {"hit", PT_CTR_CACHE_HITS},
        {"miss", PT_CTR_CACHE_MISSES},
        {"stale", PT_CTR_CACHE_STALE},
    };
    family(out, "portico_cache_requests_total", "counter",
           "Requests of cached routes by outcome: hit (fresh), miss (went to the origin), stale "
           "(a stale response served: stale-while-revalidate or stale-if-error).");
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
        sample(out, "portico_cache_requests_total",
               &(struct labels){{"outcome"}, {outcomes[i].outcome}},
               pt_counters_sum(v->reg, outcomes[i].id));
    family(out, "portico_cache_revalidations_total", "counter",
           "Conditional requests to the origin answered 304 (the stored response refreshed).");
    sample(out, "portico_cache_revalidations_total", NULL,
           pt_counters_sum(v->reg, PT_CTR_CACHE_REVALIDATED));
    family(out, "portico_cache_coalesced_total", "counter",
           "Requests that waited for another request's fetch of the same key.");
    sample(out, "portico_cache_coalesced_total", NULL,
           pt_counters_sum(v->reg, PT_CTR_CACHE_COALESCED));
    family(out, "portico_cache_stored_total", "counter", "Responses stored.");
    sample(out, "portico_cache_stored_total", NULL, pt_counters_sum(v->reg, PT_CTR_CACHE_STORED));
    family(out, "portico_cache_hit_bytes_total", "counter", "Body bytes served from the cache.");
    sample(out, "portico_cache_hit_bytes_total", NULL,
           pt_counters_sum(v->reg, PT_CTR_CACHE_HIT_BYTES));
    struct pt_cache_stats st;
    pt_cache_stats(v->cache, &st);
    family(out, "portico_cache_objects", "gauge", "Objects stored, by tier.");
    sample(out, "portico_cache_objects", &(struct labels){{"tier"}, {"memory"}}, st.objects);
    sample(out, "portico_cache_objects", &(struct labels){{"tier"}, {"disk"}}, st.disk_objects);
    family(out, "portico_cache_bytes", "gauge", "Bytes stored, by tier.");
    sample(out, "portico_cache_bytes", &(struct labels){{"tier"}, {"memory"}}, st.bytes);
    sample(out, "portico_cache_bytes", &(struct labels){{"tier"}, {"disk"}}, st.disk_bytes);
    family(out, "portico_cache_evictions_total", "counter",
           "Objects evicted to stay within the tier's cap, by tier.");
    sample(out, "portico_cache_evictions_total", &(struct labels){{"tier"}, {"memory"}},
           st.evictions);
    sample(out, "portico_cache_evictions_total", &(struct labels){{"tier"}, {"disk"}},
           st.disk_evictions);
    family(out, "portico_cache_purged_total", "counter",
           "Objects dropped by purges and invalidations.");
    sample(out, "portico_cache_purged_total", NULL, st.purged);
}

int pt_metrics_render(struct pt_gbuf *out, const struct pt_metrics_view *v)
{
    render_requests(out, v);
    render_upstreams(out, v);
    render_process(out, v);
    render_cache(out, v);
    return out->is_failed ? -1 : 0;
}
