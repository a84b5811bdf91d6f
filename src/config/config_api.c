/*
 * config_api.c - the sites of the rules API (issue #11), appended to a loaded configuration.
 *
 * The admin layer's store holds projects, aliases and proxy rules; server/ reads it and hands
 * this file plain descriptions (struct pt_api_site, config.h), so that the config layer never
 * sees admin/. Each description becomes what a YAML site with proxy routes would have been:
 * a struct pt_site_cfg whose routes proxy to an inline upstream of one target. Those upstreams
 * differ from YAML ones in what the operator cannot be asked about per rule: the SSRF guard is
 * on, with admin.allow_private as its exceptions, and admin.ca_file verifies https targets.
 * Rules naming the same origin share one upstream ("api:https://host:port"); an API upstream
 * is never shared with a YAML one, whose targets are trusted.
 *
 * Everything goes into cfg->arena. The caller runs pt_dns_expand() afterwards, as after a load.
 */
#include "config/config_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"

/* The upstream of an API rule's target URL, made on first use; NULL after an error. */
static struct pt_upstream_cfg *api_upstream(struct pt_cfg_ctx *x, size_t first_api,
                                            const struct pt_api_rule *ar, const char **to_path)
{
    struct pt_config *cfg = x->cfg;
    struct pt_cfg_url u;
    size_t n = strlen(ar->target_url);
    if (pt_config_parse_url(ar->target_url, n, &u) || (u.rest_len && u.rest[0] != '/') ||
        memchr(u.rest, '#', u.rest_len) || memchr(u.rest, '?', u.rest_len))
        return NULL;
    size_t w;
    char *name = pt_config_origin_name(x, "api", &u, &w);
    *to_path = pt_config_strndup(x, &cfg->arena, u.rest, u.rest_len);
    for (size_t i = first_api; i < cfg->n_upstreams; i++)
        if (strcmp(cfg->upstreams[i]->name, name) == 0)
            return cfg->upstreams[i];
    struct pt_ynode v;
    memset(&v, 0, sizeof(v));
    v.kind = PT_YNODE_SCALAR;
    v.s = ar->target_url;
    v.len = n;
    struct pt_target_cfg t;
    memset(&t, 0, sizeof(t));
    size_t before = x->errs.n;
    if (!pt_config_make_target(x, &v, "targetUrl", true, &t)) {
        x->errs.n = before; /* the caller reports the rule */
        return NULL;
    }
    struct pt_cfg_pos pos = {0, 0};
    struct pt_upstream_cfg *up = pt_config_new_upstream(x, name, w, pos);
    up->targets = pt_config_alloc(x, &cfg->arena, sizeof(*up->targets));
    up->targets[0] = t;
    up->n_targets = 1;
    up->ssrf_guard = true;
    up->allow_private = cfg->admin.allow_private;
    up->n_allow_private = cfg->admin.n_allow_private;
    up->ca_file = cfg->admin.ca_file;
    up->is_dns_lenient = true;
    return up;
}

static struct pt_kv kv_of(struct pt_cfg_ctx *x, const char *name, const char *value)
{
    struct pt_kv kv;
    kv.name_len = strlen(name);
    kv.name = pt_config_strndup(x, &x->cfg->arena, name, kv.name_len);
    kv.value_len = value ? strlen(value) : 0;
    kv.value = value ? pt_config_strndup(x, &x->cfg->arena, value, kv.value_len) : NULL;
    return kv;
}

/* Headers a rule may not set or remove: Portico writes the request's framing, its Host and its
   hop-by-hop fields itself; a rule that could add a second Content-Length would let an API
   user smuggle requests to the target. */
static bool is_reserved(const char *name)
{
    static const char *const names[] = {"host",
                                        "content-length",
                                        "transfer-encoding",
                                        "connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "upgrade",
                                        "te",
                                        "trailer",
                                        "expect"};
    for (size_t i = 0; i < PT_ARRAY_LEN(names); i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Fills r from ar; false (r untouched otherwise) when the target URL is unusable. Headers
   is_reserved() names are left out. */
static bool api_route(struct pt_cfg_ctx *x, size_t first_api, const struct pt_api_rule *ar,
                      struct pt_route_cfg *r)
{
    struct pt_arena *a = &x->cfg->arena;
    memset(r, 0, sizeof(*r));
    struct pt_proxy_cfg *p = &r->proxy;
    p->upstream = api_upstream(x, first_api, ar, &p->to_path);
    if (!p->upstream)
        return false;
    r->match = pt_config_strndup(x, a, ar->pattern, strlen(ar->pattern));
    r->action = PT_ACTION_PROXY;
    p->to = pt_config_strndup(x, a, ar->target_url, strlen(ar->target_url));
    p->strip_prefix = ar->strip_prefix;
    p->preserve_host = ar->preserve_host;
    p->timeout_ms = ar->timeout_ms ? ar->timeout_ms : 30000;
    /* Cookie and Authorization go only where a rule sets them itself (request.set wins). */
    p->strip_credentials = true;
    if (ar->n_add) {
        p->request.set = pt_config_alloc(x, a, ar->n_add * sizeof(*p->request.set));
        for (size_t i = 0; i < ar->n_add; i++)
            if (!is_reserved(ar->add[i].name))
                p->request.set[p->request.n_set++] = kv_of(x, ar->add[i].name, ar->add[i].value);
    }
    if (ar->n_remove) {
        p->request.remove = pt_config_alloc(x, a, ar->n_remove * sizeof(*p->request.remove));
        for (size_t i = 0; i < ar->n_remove; i++)
            if (!is_reserved(ar->remove[i]))
                p->request.remove[p->request.n_remove++] = kv_of(x, ar->remove[i], NULL);
    }
    return true;
}

static int append(struct pt_cfg_ctx *x, const struct pt_api_site *sites, size_t n_sites, char *err,
                  size_t errlen)
{
    struct pt_config *cfg = x->cfg;
    if (setjmp(x->jb)) {
        snprintf(err, errlen, "admin.store: out of memory building the API's routes");
        return PT_ERR;
    }
    size_t first_api = cfg->n_upstreams;
    size_t n_new = 0;
    for (size_t i = 0; i < n_sites; i++)
        n_new += sites[i].n_hosts && sites[i].n_rules;
    if (!n_new)
        return PT_OK;
    struct pt_site_cfg *all =
        pt_config_alloc(x, &cfg->arena, (cfg->n_sites + n_new) * sizeof(*all));
    /* The default site (no hosts) stays last: the router takes it for unknown hosts only. */
    memcpy(all, cfg->sites, cfg->n_sites * sizeof(*all));
    size_t n_all = cfg->n_sites;
    for (size_t i = 0; i < n_sites; i++) {
        const struct pt_api_site *as = &sites[i];
        if (!as->n_hosts || !as->n_rules)
            continue;
        struct pt_site_cfg *s = &all[n_all++];
        memset(s, 0, sizeof(*s));
        s->is_api = true;
        s->hosts = pt_config_alloc(x, &cfg->arena, as->n_hosts * sizeof(*s->hosts));
        for (size_t h = 0; h < as->n_hosts; h++) {
            size_t l = strlen(as->hosts[h]);
            char *c = pt_config_strndup(x, &cfg->arena, as->hosts[h], l);
            for (size_t k = 0; k < l; k++)
                if (c[k] >= 'A' && c[k] <= 'Z')
                    c[k] = (char)(c[k] - 'A' + 'a');
            s->hosts[s->n_hosts++] = c;
        }
        s->routes = pt_config_alloc(x, &cfg->arena, as->n_rules * sizeof(*s->routes));
        for (size_t r = 0; r < as->n_rules; r++) {
            if (api_route(x, first_api, &as->rules[r], &s->routes[s->n_routes]))
                s->n_routes++;
            else if (x->errs.n < PT_CONFIG_MAX_ERRORS) {
                struct pt_config_errmsg *m = &x->errs.items[x->errs.n++];
                m->pos.line = 0;
                snprintf(m->msg, sizeof(m->msg), "rule %s: unusable targetUrl \"%.120s\"",
                         as->rules[r].id ? as->rules[r].id : "?", as->rules[r].target_url);
            }
        }
        if (!s->n_routes)
            n_all--;
    }
    cfg->sites = all;
    cfg->n_sites = n_all;
    return PT_OK;
}

int pt_config_add_api_sites(struct pt_config *cfg, const struct pt_api_site *sites, size_t n_sites,
                            char *err, size_t errlen)
{
    struct pt_cfg_ctx x;
    memset(&x, 0, sizeof(x));
    x.name = "admin.store";
    x.cfg = cfg;
    x.n_named_ups = cfg->n_upstreams;
    x.ups_cap = cfg->n_upstreams; /* the first push copies the array into a larger one */
    pt_arena_init(&x.tmp, 4096);
    err[0] = '\0';
    int rc = append(&x, sites, n_sites, err, errlen);
    if (rc == PT_OK && x.errs.n) {
        /* Rules skipped for their target: the rest serves, the reasons go to the log. */
        size_t off = 0;
        for (size_t i = 0; i < x.errs.n && off + 1 < errlen; i++) {
            int w = snprintf(err + off, errlen - off, "%s%s", i ? "; " : "", x.errs.items[i].msg);
            off = w < 0 ? errlen : PT_MIN(off + (size_t)w, errlen);
        }
    }
    pt_arena_free(&x.tmp);
    return rc;
}
