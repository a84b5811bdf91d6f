/*
 * target.c - shared runtime state of targets: availability, slow start, passive outlier
 * detection, peak-EWMA latency, and adoption of that state across configuration reloads.
 *
 * Threading: every worker and the health checker touch the same struct pt_target_state with
 * atomics only. Counters use relaxed order (they are statistics or hints for a balancer; a pick
 * made on a value one request old is as good as any). The verdicts that gate traffic
 * (is_healthy, ejected_until_ms) are published with release and read with acquire, so a worker
 * that sees a target up also sees the slow-start stamp written before it. Read-modify-write
 * sequences that must not double-count (ejection, the EWMA) are compare-and-exchange loops.
 * No lock sits here: a worker never waits on another thread to pick a target.
 *
 * Adoption on reload: pt_upstreams_rt_create() looks each new target's key up in the previous
 * runtime state and takes a reference on the state it finds; the old snapshot keeps its own
 * reference until its last request ends. Keys are "upstream\nurl\noccurrence" (plus
 * "\naddress" for the targets a DNS name expanded into): renaming an upstream or changing a
 * target's URL makes a new target (fresh state), changing its weight or the health settings
 * keeps the state, and an address that stays in DNS keeps its state across re-resolutions.
 *
 * Ejection bound: the percentage of ejected targets is counted when an ejection is decided
 * (a scan of the upstream's targets, rare); two workers ejecting two targets at the same
 * instant may overshoot by one. Rejected: a per-upstream counter of ejected targets, which
 * would need a timer to decrement when an ejection expires.
 */
#include "upstream/target.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "tls/tls.h"
#include "upstream/balance.h"

uint64_t pt_upstream_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "upstream\nurl\noccurrence", and "\naddress" for a target expanded from a DNS name, so
   that each address keeps its own state for as long as the name resolves to it. */
static char *make_key(const struct pt_upstream_cfg *u, const struct pt_target_cfg *tc)
{
    char ip[INET6_ADDRSTRLEN + 3] = "";
    if (tc->is_dns) {
        const struct pt_sockaddr *a = &tc->addr;
        ip[0] = '\n';
        if (a->u.sa.sa_family == AF_INET6)
            inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip + 1, sizeof(ip) - 1);
        else
            inet_ntop(AF_INET, &a->u.in.sin_addr, ip + 1, sizeof(ip) - 1);
    }
    size_t n = strlen(u->name) + strlen(tc->url ? tc->url : "") + strlen(ip) + 16;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\n%s\n%u%s", u->name, tc->url ? tc->url : "", (unsigned)tc->occurrence,
                 ip);
    return k;
}

static struct pt_target_state *state_new(char *key, uint64_t since_ms)
{
    struct pt_target_state *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->key = key;
    atomic_init(&t->refs, 1);
    atomic_init(&t->is_healthy, true);
    atomic_init(&t->available_since_ms, since_ms);
    return t;
}

static void state_unref(struct pt_target_state *t)
{
    if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        free(t->key);
        free(t);
    }
}

/* The state with this key in prev's upstream of the same name, or NULL. */
static struct pt_target_state *find_prev(const struct pt_upstreams_rt *prev, const char *name,
                                         const char *key)
{
    if (!prev)
        return NULL;
    for (size_t i = 0; i < prev->n_ups; i++) {
        const struct pt_upstream_state *ps = &prev->ups[i];
        if (strcmp(ps->cfg->name, name) != 0)
            continue;
        for (size_t j = 0; j < ps->n_targets; j++)
            if (strcmp(ps->targets[j]->key, key) == 0)
                return ps->targets[j];
    }
    return NULL;
}

static int init_upstream(struct pt_upstream_state *us, const struct pt_upstream_cfg *u,
                         const struct pt_upstreams_rt *prev, uint64_t now_ms)
{
    us->cfg = u;
    pt_budget_init(&us->budget);
    us->targets = calloc(u->n_targets ? u->n_targets : 1, sizeof(*us->targets));
    if (!us->targets)
        return -1;
    for (size_t i = 0; i < u->n_targets; i++) {
        char *key = make_key(u, &u->targets[i]);
        if (!key)
            return -1;
        struct pt_target_state *t = find_prev(prev, u->name, key);
        if (t) {
            free(key);
            atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        } else {
            t = state_new(key, prev ? (now_ms ? now_ms : 1) : 0);
            if (!t) {
                free(key);
                return -1;
            }
        }
        us->targets[us->n_targets++] = t;
        /* Settings removed by the reload must not leave a target stuck out of rotation. */
        if (!u->health.is_enabled && !atomic_load(&t->is_healthy))
            pt_target_set_healthy(t, true, now_ms);
        if (!u->outlier.is_enabled)
            atomic_store_explicit(&t->ejected_until_ms, 0, memory_order_release);
    }
    if (u->balance == PT_BALANCE_HASH && pt_lb_hash_build(us) < 0)
        return -1;
    if (u->balance == PT_BALANCE_COOKIE && pt_lb_cookie_build(us) < 0)
        return -1;
    return 0;
}

static void free_upstream(struct pt_upstream_state *us)
{
    for (size_t i = 0; i < us->n_targets; i++)
        state_unref(us->targets[i]);
    free(us->targets);
    pt_lb_hash_free(us);
    free(us->cookie_tokens);
}

struct pt_upstreams_rt *pt_upstreams_rt_create(const struct pt_config *cfg,
                                               const struct pt_upstreams_rt *prev, uint64_t now_ms)
{
    struct pt_upstreams_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    rt->cfg = cfg;
    rt->ups = calloc(cfg->n_upstreams ? cfg->n_upstreams : 1, sizeof(*rt->ups));
    if (!rt->ups)
        goto fail;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        rt->n_ups++;
        if (init_upstream(&rt->ups[i], cfg->upstreams[i], prev, now_ms) < 0)
            goto fail;
    }
    return rt;
fail:
    pt_upstreams_rt_free(rt);
    return NULL;
}

void pt_upstreams_rt_free(struct pt_upstreams_rt *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->n_ups; i++)
        free_upstream(&rt->ups[i]);
    free(rt->ups);
    free(rt);
}

bool pt_target_available(const struct pt_target_state *t, uint64_t now_ms)
{
    return atomic_load_explicit(&t->is_healthy, memory_order_acquire) &&
           now_ms >= atomic_load_explicit(&t->ejected_until_ms, memory_order_acquire);
}

uint64_t pt_target_effective_weight(const struct pt_target_state *t, const struct pt_target_cfg *tc,
                                    uint32_t slow_start_ms, uint64_t now_ms)
{
    uint64_t full = (uint64_t)(tc->weight ? tc->weight : 1) * 1000u;
    if (slow_start_ms == 0)
        return full;
    /* The ramp starts at the later of "became healthy / was added" and "ejection ended". */
    uint64_t since = atomic_load_explicit(&t->available_since_ms, memory_order_acquire);
    uint64_t ej = atomic_load_explicit(&t->ejected_until_ms, memory_order_acquire);
    if (ej > since)
        since = ej;
    if (since == 0 || now_ms >= since + slow_start_ms)
        return full;
    uint64_t elapsed = now_ms > since ? now_ms - since : 0;
    uint64_t min = full * PT_SLOW_START_MIN_PCT / 100;
    uint64_t w = min + (full - min) * elapsed / slow_start_ms;
    return w ? w : 1;
}

bool pt_upstream_on_request_start(struct pt_upstream_state *us, size_t idx)
{
    struct pt_target_state *t = us->targets[idx];
    uint32_t max = us->cfg->targets[idx].max_connections;
    if (max == 0) {
        atomic_fetch_add_explicit(&t->in_flight, 1, memory_order_relaxed);
        return true;
    }
    int cur = atomic_load_explicit(&t->in_flight, memory_order_relaxed);
    do {
        if (cur >= (int)max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&t->in_flight, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

double pt_target_ewma_ns(const struct pt_target_state *t, uint64_t now_ms)
{
    double cost = (double)atomic_load_explicit(&t->ewma_ns, memory_order_relaxed);
    uint64_t stamp = atomic_load_explicit(&t->ewma_stamp_ms, memory_order_relaxed);
    if (cost <= 0 || now_ms <= stamp)
        return cost;
    return cost * exp(-(double)(now_ms - stamp) / PT_EWMA_DECAY_MS);
}

/* Peak-EWMA (Finagle): a slower sample replaces the cost at once, a faster one is averaged in
   with a weight that grows with the time since the last sample. */
static void ewma_observe(struct pt_target_state *t, uint64_t latency_us, uint64_t now_ms)
{
    double rtt = (double)latency_us * 1000.0;
    uint_fast64_t old = atomic_load_explicit(&t->ewma_ns, memory_order_relaxed);
    uint_fast64_t next;
    do {
        uint64_t stamp = atomic_load_explicit(&t->ewma_stamp_ms, memory_order_relaxed);
        double cost = (double)old;
        if (rtt > cost || old == 0) {
            cost = rtt;
        } else {
            double td = now_ms > stamp ? (double)(now_ms - stamp) : 0;
            double w = exp(-td / PT_EWMA_DECAY_MS);
            cost = cost * w + rtt * (1 - w);
        }
        next = (uint_fast64_t)(cost < 1 ? 1 : cost);
    } while (!atomic_compare_exchange_weak_explicit(&t->ewma_ns, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    atomic_store_explicit(&t->ewma_stamp_ms, now_ms, memory_order_relaxed);
}

/* Ejects target idx when the upstream's bound allows. True when it did. */
static bool try_eject(struct pt_upstream_state *us, size_t idx, uint64_t now_ms)
{
    const struct pt_outlier_cfg *o = &us->cfg->outlier;
    struct pt_target_state *t = us->targets[idx];
    size_t ejected = 0;
    for (size_t i = 0; i < us->n_targets; i++)
        if (i != idx &&
            atomic_load_explicit(&us->targets[i]->ejected_until_ms, memory_order_acquire) > now_ms)
            ejected++;
    if ((ejected + 1) * 100 > (size_t)o->max_ejection_percent * us->n_targets)
        return false;
    uint_fast64_t until = atomic_load_explicit(&t->ejected_until_ms, memory_order_acquire);
    if (until > now_ms)
        return false; /* already ejected (another worker was first) */
    unsigned n = atomic_load_explicit(&t->ejections, memory_order_relaxed);
    uint64_t dur = o->base_ejection_time_ms;
    for (unsigned i = 0; i < n && dur < o->max_ejection_time_ms; i++)
        dur *= 2;
    if (dur > o->max_ejection_time_ms)
        dur = o->max_ejection_time_ms;
    if (!atomic_compare_exchange_strong_explicit(&t->ejected_until_ms, &until, now_ms + dur,
                                                 memory_order_acq_rel, memory_order_acquire))
        return false;
    atomic_fetch_add_explicit(&t->ejections, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->ejections_total, 1, memory_order_relaxed);
    atomic_store_explicit(&t->consecutive_failures, 0, memory_order_relaxed);
    pt_log_warn("upstream %s target %s is ejected for %llums after %u failures in a row",
                us->cfg->name, us->cfg->targets[idx].url, (unsigned long long)dur,
                (unsigned)o->consecutive_failures);
    return true;
}

bool pt_upstream_on_request_end(struct pt_upstream_state *us, size_t idx, uint64_t latency_us,
                                int outcome, uint64_t now_ms)
{
    struct pt_target_state *t = us->targets[idx];
    const struct pt_outlier_cfg *o = &us->cfg->outlier;
    atomic_fetch_sub_explicit(&t->in_flight, 1, memory_order_relaxed);
    if (outcome == PT_OUTCOME_LOCAL)
        return false; /* nothing reached the target: no latency, no verdict either way */
    atomic_fetch_add_explicit(&t->requests, 1, memory_order_relaxed);
    if (outcome != PT_OUTCOME_CONNECT_FAILURE)
        ewma_observe(t, latency_us, now_ms);
    bool failed = outcome == PT_OUTCOME_CONNECT_FAILURE || outcome == PT_OUTCOME_RESET ||
                  outcome == PT_OUTCOME_TIMEOUT ||
                  (outcome == PT_OUTCOME_STATUS_5XX && o->include_5xx);
    if (!failed) {
        if (atomic_load_explicit(&t->consecutive_failures, memory_order_relaxed))
            atomic_store_explicit(&t->consecutive_failures, 0, memory_order_relaxed);
        /* The doubling forgets a target that has behaved for max_ejection_time since. */
        uint64_t until = atomic_load_explicit(&t->ejected_until_ms, memory_order_relaxed);
        if (until && now_ms >= until + o->max_ejection_time_ms &&
            atomic_load_explicit(&t->ejections, memory_order_relaxed))
            atomic_store_explicit(&t->ejections, 0, memory_order_relaxed);
        return false;
    }
    atomic_fetch_add_explicit(&t->failures, 1, memory_order_relaxed);
    unsigned cf = atomic_fetch_add_explicit(&t->consecutive_failures, 1, memory_order_relaxed) + 1;
    if (!o->is_enabled || cf < o->consecutive_failures)
        return false;
    return try_eject(us, idx, now_ms);
}

bool pt_target_set_healthy(struct pt_target_state *t, bool is_healthy, uint64_t now_ms)
{
    bool was = atomic_load_explicit(&t->is_healthy, memory_order_acquire);
    if (was == is_healthy)
        return false;
    if (is_healthy)
        atomic_store_explicit(&t->available_since_ms, now_ms ? now_ms : 1, memory_order_release);
    atomic_store_explicit(&t->is_healthy, is_healthy, memory_order_release);
    return true;
}

bool pt_upstream_has_https(const struct pt_upstream_cfg *u)
{
    for (size_t t = 0; t < u->n_targets; t++)
        if (u->targets[t].is_https)
            return true;
    return false;
}

struct pt_tls_client_ctx *pt_upstream_tls_new(const struct pt_upstream_cfg *u,
                                              struct pt_tls_err *err)
{
    static const char *const alpn_h2[] = {"h2"};
    struct pt_tls_client_settings cs;
    pt_tls_client_settings_init(&cs);
    cs.ca_file = u->ca_file;
    cs.verify = u->tls_verify;
    cs.cert_file = u->cert;
    cs.key_file = u->key;
    if (u->protocol == PT_UPROTO_H2) {
        cs.alpn = alpn_h2;
        cs.n_alpn = 1;
    }
    memset(err, 0, sizeof(*err));
    return pt_tls_client_ctx_new(&cs, err);
}
