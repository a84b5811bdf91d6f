/*
 * api_rules.c - reads the rules store into a configuration's sites (issue #11).
 *
 * Every snapshot build (the start, SIGHUP and the other reloads, and an API change) calls
 * pt_api_rules_add() on the freshly loaded file, so the API's rules come from the store each
 * time and a YAML reload keeps them. The store lives in admin/, which config/ must not see:
 * this file, in server/, reads it and hands config/ plain descriptions (struct pt_api_site).
 *
 * Order. A project's site serves its enabled rules by `order`. An alias's site serves the
 * alias's enabled rules by order, then the project's enabled rules whose pathPattern none of
 * those has; the router takes the first match, so lower order wins and an alias rule hides
 * the project's rule of the same pattern on the alias's hostnames only. A disabled alias rule
 * hides nothing.
 */
#include "server/api_rules.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admin/secrets.h"
#include "admin/store.h"
#include "core/common.h"
#include "core/log.h"
#include "route/route.h"

/* What one build reads; freed whole by loaded_free. */
struct loaded {
    struct pt_store_project *projects;
    size_t n_projects;
    struct pt_store_alias **aliases; /* per project */
    size_t *n_aliases;
    struct pt_store_rule **prules; /* per project: its own rules */
    size_t *n_prules;
    struct pt_store_rule ***arules; /* per project, per alias */
    size_t **n_arules;
};

static void loaded_free(struct loaded *l)
{
    for (size_t p = 0; p < l->n_projects; p++) {
        if (l->arules && l->arules[p] && l->n_arules && l->n_arules[p] && l->n_aliases) {
            for (size_t a = 0; a < l->n_aliases[p]; a++)
                pt_store_rules_free(l->arules[p][a], l->n_arules[p][a]);
            free(l->arules[p]);
            free(l->n_arules[p]);
        }
        if (l->prules && l->n_prules)
            pt_store_rules_free(l->prules[p], l->n_prules[p]);
        if (l->aliases && l->n_aliases)
            pt_store_aliases_free(l->aliases[p], l->n_aliases[p]);
    }
    free(l->arules);
    free(l->n_arules);
    free(l->prules);
    free(l->n_prules);
    free(l->aliases);
    free(l->n_aliases);
    pt_store_projects_free(l->projects, l->n_projects);
}

static int read_store(struct pt_store *st, struct loaded *l)
{
    if (pt_store_project_list(st, &l->projects, &l->n_projects) < 0)
        return -1;
    size_t n = l->n_projects ? l->n_projects : 1;
    l->aliases = calloc(n, sizeof(*l->aliases));
    l->n_aliases = calloc(n, sizeof(*l->n_aliases));
    l->prules = calloc(n, sizeof(*l->prules));
    l->n_prules = calloc(n, sizeof(*l->n_prules));
    l->arules = calloc(n, sizeof(*l->arules));
    l->n_arules = calloc(n, sizeof(*l->n_arules));
    if (!l->aliases || !l->n_aliases || !l->prules || !l->n_prules || !l->arules || !l->n_arules)
        return -2;
    for (size_t p = 0; p < l->n_projects; p++) {
        const char *pid = l->projects[p].id;
        if (pt_store_rule_list(st, pid, NULL, PT_STORE_PLAIN, &l->prules[p], &l->n_prules[p]) < 0 ||
            pt_store_alias_list(st, pid, &l->aliases[p], &l->n_aliases[p]) < 0)
            return -1;
        size_t na = l->n_aliases[p] ? l->n_aliases[p] : 1;
        l->arules[p] = calloc(na, sizeof(**l->arules));
        l->n_arules[p] = calloc(na, sizeof(**l->n_arules));
        if (!l->arules[p] || !l->n_arules[p])
            return -2;
        for (size_t a = 0; a < l->n_aliases[p]; a++)
            if (pt_store_rule_list(st, pid, l->aliases[p][a].id, PT_STORE_PLAIN, &l->arules[p][a],
                                   &l->n_arules[p][a]) < 0)
                return -1;
    }
    return 0;
}

static void describe(const struct pt_store_rule *r, struct pt_api_rule *out)
{
    out->id = r->id;
    out->pattern = r->path_pattern;
    out->target_url = r->target_url;
    out->strip_prefix = r->strip_prefix;
    out->preserve_host = r->preserve_host;
    out->timeout_ms = r->timeout_ms;
    /* struct pt_store_header is {name, value} like struct pt_api_header: copied field by field
       so that neither layer depends on the other's layout. */
    out->add = NULL;
    out->n_add = 0;
    out->remove = (const char *const *)r->remove;
    out->n_remove = r->n_remove;
}

static bool has_enabled_pattern(const struct pt_store_rule *v, size_t n, const char *pattern)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].is_enabled && strcmp(v[i].path_pattern, pattern) == 0)
            return true;
    return false;
}

/* Whether host is one of the file's own sites' (the first n_file sites). */
static bool is_file_host(const struct pt_config *cfg, size_t n_file, const char *host)
{
    for (size_t s = 0; s < n_file; s++)
        for (size_t h = 0; h < cfg->sites[s].n_hosts; h++)
            if (strcasecmp(cfg->sites[s].hosts[h], host) == 0)
                return true;
    return false;
}

/* Fills site from the rules (NULL-separated lists: first, then second minus first's enabled
   patterns) and hostnames; the arrays are malloc'ed into *rules, *hosts, *adds. */
static int make_site(const struct pt_config *cfg, const char *owner, char **hostnames,
                     size_t n_hostnames, const struct pt_store_rule *first, size_t n_first,
                     const struct pt_store_rule *second, size_t n_second, struct pt_api_site *site)
{
    memset(site, 0, sizeof(*site));
    const char **hosts = calloc(n_hostnames ? n_hostnames : 1, sizeof(*hosts));
    struct pt_api_rule *rules = calloc(n_first + n_second + 1, sizeof(*rules));
    if (!hosts || !rules) {
        free(hosts);
        free(rules);
        return -1;
    }
    site->hosts = hosts;
    site->rules = rules;
    for (size_t h = 0; h < n_hostnames; h++) {
        if (is_file_host(cfg, cfg->n_sites, hostnames[h])) {
            pt_log_warn("admin.store: hostname %s of %s is a site of the configuration file, "
                        "which keeps it",
                        hostnames[h], owner);
            continue;
        }
        hosts[site->n_hosts++] = hostnames[h];
    }
    for (int pass = 0; pass < 2; pass++) {
        const struct pt_store_rule *v = pass ? second : first;
        size_t n = pass ? n_second : n_first;
        for (size_t i = 0; i < n; i++) {
            if (!v[i].is_enabled ||
                (pass && has_enabled_pattern(first, n_first, v[i].path_pattern)))
                continue;
            struct pt_api_rule *ar = &rules[site->n_rules];
            describe(&v[i], ar);
            if (v[i].n_add) {
                struct pt_api_header *add = calloc(v[i].n_add, sizeof(*add));
                if (!add)
                    return -1;
                for (size_t k = 0; k < v[i].n_add; k++) {
                    add[k].name = v[i].add[k].name;
                    add[k].value = v[i].add[k].value;
                }
                ar->add = add;
                ar->n_add = v[i].n_add;
            }
            site->n_rules++;
        }
    }
    return 0;
}

static void sites_free(struct pt_api_site *sites, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < sites[i].n_rules; r++)
            free((void *)sites[i].rules[r].add);
        free((void *)sites[i].rules);
        free((void *)sites[i].hosts);
    }
    free(sites);
}

/* Leaves out of the API's sites (cfg->sites[n_file..]) each route whose pattern the router
   refuses (pt_route_pattern_check: the rules it compiles a route's "match" with), with a
   warning naming the site and the pattern, so that one bad row cannot fail every build. Sites
   left without routes go too. */
static void drop_bad_patterns(struct pt_config *cfg, size_t n_file)
{
    size_t n_sites = n_file;
    for (size_t i = n_file; i < cfg->n_sites; i++) {
        struct pt_site_cfg *sc = &cfg->sites[i];
        size_t kept = 0;
        for (size_t r = 0; r < sc->n_routes; r++) {
            char msg[256];
            if (pt_route_pattern_check(sc->routes[r].match, msg, sizeof(msg)) < 0) {
                pt_log_warn("admin.store: the rule of %s for \"%s\" is skipped: %s", sc->hosts[0],
                            sc->routes[r].match, msg);
                continue;
            }
            sc->routes[kept++] = sc->routes[r];
        }
        sc->n_routes = kept;
        if (kept)
            cfg->sites[n_sites++] = *sc;
    }
    cfg->n_sites = n_sites;
}

static int add_sites(struct pt_config *cfg, const struct loaded *l, char *err, size_t errlen)
{
    size_t n = l->n_projects;
    for (size_t p = 0; p < l->n_projects; p++)
        n += l->n_aliases[p];
    struct pt_api_site *sites = calloc(n ? n : 1, sizeof(*sites));
    if (!sites)
        goto oom;
    size_t k = 0;
    for (size_t p = 0; p < l->n_projects; p++) {
        const struct pt_store_project *pr = &l->projects[p];
        char owner[PT_STORE_ID_LEN + 16];
        for (size_t a = 0; a < l->n_aliases[p]; a++) {
            const struct pt_store_alias *al = &l->aliases[p][a];
            snprintf(owner, sizeof(owner), "alias %s", al->id);
            if (make_site(cfg, owner, al->hostnames, al->n_hostnames, l->arules[p][a],
                          l->n_arules[p][a], l->prules[p], l->n_prules[p], &sites[k++]) < 0)
                goto oom_sites;
        }
        snprintf(owner, sizeof(owner), "project %s", pr->id);
        if (make_site(cfg, owner, pr->hostnames, pr->n_hostnames, l->prules[p], l->n_prules[p],
                      NULL, 0, &sites[k++]) < 0)
            goto oom_sites;
    }
    size_t n_file = cfg->n_sites;
    int rc = pt_config_add_api_sites(cfg, sites, k, err, errlen);
    if (rc == PT_OK && err[0]) {
        pt_log_warn("admin.store: rules skipped: %s", err);
        err[0] = '\0';
    }
    if (rc == PT_OK)
        drop_bad_patterns(cfg, n_file);
    sites_free(sites, k);
    return rc;
oom_sites:
    sites_free(sites, k);
oom:
    snprintf(err, errlen, "admin.store: out of memory");
    return PT_ERR;
}

int pt_api_rules_add(struct pt_config *cfg, char *err, size_t errlen)
{
    const struct pt_admin_cfg *ac = &cfg->admin;
    if (!ac->store)
        return PT_OK;
    struct pt_secret_key key;
    char kerr[512];
    if (ac->key_file && pt_secret_key_load(ac->key_file, &key, kerr, sizeof(kerr)) < 0) {
        snprintf(err, errlen, "admin.key_file: %s", kerr);
        return PT_ERR;
    }
    struct pt_store *st = NULL;
    int rc = pt_store_open(ac->store, ac->key_file ? &key : NULL, &st, kerr, sizeof(kerr));
    if (ac->key_file)
        pt_secret_key_wipe(&key);
    if (rc < 0) {
        snprintf(err, errlen, "admin.store: %s", kerr);
        return PT_ERR;
    }
    struct loaded l;
    memset(&l, 0, sizeof(l));
    rc = read_store(st, &l);
    if (rc == -1)
        snprintf(err, errlen, "admin.store %s: %s", ac->store, pt_store_error(st));
    else if (rc == -2)
        snprintf(err, errlen, "admin.store: out of memory");
    else
        rc = add_sites(cfg, &l, err, errlen);
    loaded_free(&l);
    pt_store_close(st);
    return rc == 0 ? PT_OK : PT_ERR;
}

static atomic_bool rules_pending;

void pt_rules_changed(void)
{
    if (!atomic_exchange(&rules_pending, true))
        kill(getpid(), PT_SIG_RULES); /* async-signal-safe; only the main thread waits for it */
}

void pt_rules_changed_cb(void *arg)
{
    (void)arg;
    pt_rules_changed();
}

bool pt_rules_change_take(void)
{
    return atomic_exchange(&rules_pending, false);
}
