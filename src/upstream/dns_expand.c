/*
 * dns_expand.c - the step after loading a configuration: each target whose host is a name
 * becomes one target per address of that name.
 *
 * The loader (config/) only checks target URLs and marks a target whose host is a name
 * (is_dns); it sits below this layer and never resolves. main.c calls pt_dns_expand() on every
 * configuration it loads (run, reload, check, stop) before using it: once the whole file is
 * read, since the resolver: section may come after upstreams:. Every name is asked at once
 * through dns.c (c-ares, blocking the loading thread only, bounded by resolver.timeout; fresh
 * cached answers are reused, names no longer used are forgotten), then each target with a name
 * is replaced by one target per address (same url, weight and limits; the name kept for Host
 * and SNI). The main loop re-resolves (pt_dns_tick) and reloads when an address set changes,
 * and the reload expands the new addresses here.
 *
 * Errors are reported through config's collector (pt_config_report), so they read exactly like
 * the loader's: "FILE:LINE:COL: cannot resolve host ..." at the target's URL, sorted by
 * position, at most PT_CONFIG_MAX_ERRORS. New target arrays come from the configuration's
 * arena, which owns everything the configuration points to.
 */
#include "upstream/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"
#include "core/log.h"

struct names {
    struct pt_dns_name *v; /* malloc'ed */
    size_t n, cap;
};

/* Adds name (interval_ms) to the list, keeping the smallest interval per name. Returns false
   when out of memory. */
static bool add_name(struct names *l, const char *name, uint32_t interval_ms)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcasecmp(l->v[i].name, name) == 0) {
            if (interval_ms < l->v[i].interval_ms)
                l->v[i].interval_ms = interval_ms;
            return true;
        }
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        struct pt_dns_name *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return false;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (struct pt_dns_name){name, interval_ms};
    return true;
}

/* Records the out-of-memory error, making room for it as the loader does. */
static void report_oom(const struct pt_config *cfg, struct pt_config_errors *e)
{
    struct pt_cfg_pos none = {0, 0};
    if (e->n == PT_CONFIG_MAX_ERRORS)
        e->n--;
    pt_config_report(cfg, e, none, "out of memory while loading the configuration");
}

static void set_port(struct pt_sockaddr *sa, uint16_t port)
{
    if (sa->u.sa.sa_family == AF_INET)
        sa->u.in.sin_port = htons(port);
    else
        sa->u.in6.sin6_port = htons(port);
}

/*
 * Replaces u's targets with names by one target per cached address. Returns false when the
 * expansion must stop (too many errors, out of memory); an error that leaves u as it is but
 * lets the others go on returns true.
 */
static bool expand_upstream(struct pt_config *cfg, struct pt_upstream_cfg *u,
                            struct pt_config_errors *e)
{
    struct pt_sockaddr addrs[PT_DNS_MAX_ADDRS];
    size_t total = 0;
    bool has_dns = false, ok = true;
    for (size_t j = 0; j < u->n_targets; j++) {
        const struct pt_target_cfg *t = &u->targets[j];
        if (!t->is_dns) {
            total++;
            continue;
        }
        has_dns = true;
        const char *why = NULL;
        size_t k = pt_dns_lookup(t->host, addrs, PT_DNS_MAX_ADDRS, &why);
        if (k == 0 && u->is_dns_lenient) {
            /* Kept with no address: the SSRF guard refuses it at connect ("not an IP
               address"), and the next answer for the name (pt_dns_tick) reloads. */
            pt_log_warn("upstream \"%s\": cannot resolve host \"%s\": %s; its requests get 502",
                        u->name, t->host, why ? why : "no address");
            total++;
            continue;
        }
        if (k == 0) {
            if (!pt_config_report(cfg, e, t->pos, "cannot resolve host \"%s\": %s", t->host,
                                  why ? why : "no address"))
                return false;
            ok = false;
        }
        total += k;
    }
    if (!has_dns || !ok)
        return true;
    if (total > PT_MAX_TARGETS)
        return pt_config_report(cfg, e, u->pos,
                                "upstream \"%s\" has more than %d targets once its host names "
                                "are resolved (%zu)",
                                u->name, PT_MAX_TARGETS, total);
    struct pt_target_cfg *nt = pt_arena_alloc(&cfg->arena, total * sizeof(*nt));
    if (!nt) {
        report_oom(cfg, e);
        return false;
    }
    size_t m = 0;
    u->n_primary = 0;
    for (size_t j = 0; j < u->n_targets; j++) {
        const struct pt_target_cfg *t = &u->targets[j];
        size_t k = 1;
        bool is_resolved = false;
        if (t->is_dns) {
            k = pt_dns_lookup(t->host, addrs, PT_DNS_MAX_ADDRS, NULL);
            is_resolved = k > 0;
            if (!is_resolved)
                k = 1; /* lenient (above): the target stays, unresolved */
        }
        for (size_t a = 0; a < k && m < total; a++) {
            nt[m] = *t;
            if (is_resolved) {
                nt[m].addr = addrs[a];
                set_port(&nt[m].addr, t->port);
            }
            if (!nt[m].is_backup)
                u->n_primary++;
            m++;
        }
    }
    u->targets = nt;
    u->n_targets = m;
    return true;
}

int pt_dns_expand(struct pt_config *cfg, char *err, size_t errlen)
{
    struct pt_config_errors *e = calloc(1, sizeof(*e));
    struct names names = {0};
    int rc = PT_ERR;
    if (err && errlen)
        err[0] = '\0';
    if (!e) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory while loading the configuration", cfg->path);
        return PT_ERR;
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct pt_upstream_cfg *u = cfg->upstreams[i];
        for (size_t j = 0; j < u->n_targets; j++) {
            if (u->targets[j].is_dns &&
                !add_name(&names, u->targets[j].host, u->resolve_interval_ms)) {
                report_oom(cfg, e);
                goto out;
            }
        }
    }
    int qrc = pt_dns_resolve_now(cfg->resolver.servers, cfg->resolver.timeout_ms, names.v, names.n);
    if (qrc < 0) {
        pt_config_report(cfg, e, cfg->resolver.pos, "cannot set up the DNS resolver: %s",
                         qrc == -EINVAL ? "bad server list" : strerror(-qrc));
        goto out;
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        if (!expand_upstream(cfg, cfg->upstreams[i], e))
            break;
out:
    if (e->n == 0)
        rc = PT_OK;
    else
        pt_config_format_errors(cfg->path, e, err, errlen);
    free(names.v);
    free(e);
    return rc;
}
