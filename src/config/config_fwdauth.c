/*
 * config_fwdauth.c - the `forward_auth:` key of a site and of a route (struct
 * pt_fwdauth_cfg): a subrequest to an auth service decides whether a request goes on
 * (server/fwdauth.c runs it).
 *
 *     forward_auth: {url: URL | upstream: NAME, path: /PATH, timeout: 5s,
 *                    request_headers: [NAME...], response_headers: [NAME...],
 *                    cache: {ttl: 10s, key: [NAME...]}}
 *     forward_auth: off      (a route: its site's does not apply)
 *
 * The auth call is an ordinary proxied request: this file makes a proxy route for it (no
 * cache, no header rules, timeout: the auth timeout) on the named upstream, or on an upstream
 * made for the URL as a route's `proxy: URL` makes one, so the call has the upstream
 * machinery's connections, pool, TLS, balancing and health. Header names are kept
 * lower-case.
 */
#include <ctype.h>

#include "config/config_internal.h"

#define FWDAUTH_TIMEOUT_MS 5000u

/* A list of header names (tokens), lower-cased, into *out and *n. */
static void load_names(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                       const char ***out, size_t *n)
{
    if (!pt_config_want_seq(x, v, key))
        return;
    const char **names = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*names));
    size_t k = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, key);
        if (!s)
            continue;
        if (!pt_config_is_token(s, it->len)) {
            pt_config_error(x, it->pos,
                            "expected a header name like X-User in \"%s\", found \"%.*s\"", key,
                            shown(it->len), s);
            continue;
        }
        char *low = pt_config_strndup(x, &x->cfg->arena, s, it->len);
        for (char *c = low; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        names[k++] = low;
    }
    names[k] = NULL;
    *out = names;
    *n = k;
}

static void load_cache(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_fwdauth_cfg *fa,
                       bool *has_key)
{
    static const char *const keys[] = {"ttl", "key", NULL};
    if (!pt_config_want_map(x, v, "cache"))
        return;
    bool has_ttl = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "forward_auth.cache"))
            continue;
        if (is(k, "ttl")) {
            has_ttl = pt_config_get_ms(x, val, "ttl", 1, 3600u * 1000u, &fa->cache_ttl_ms);
        } else {
            *has_key = true;
            load_names(x, val, "key", &fa->cache_key, &fa->n_cache_key);
        }
    }
    if (!has_ttl)
        pt_config_missing(x, v, "ttl", "forward_auth.cache");
}

void pt_config_load_fwdauth(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                            const struct pt_fwdauth_cfg **out, bool *is_set)
{
    static const char *const keys[] = {
        "url", "upstream", "path", "timeout", "request_headers", "response_headers", "cache", NULL};
    static const char *const defaults[] = {"authorization", "cookie", NULL};
    *is_set = true;
    *out = NULL;
    if (is(v, "off"))
        return;
    if (v->kind != PT_YNODE_MAP) {
        pt_config_error(x, v->pos,
                        "expected forward_auth: {url: http://auth:9000/check} (or "
                        "{upstream: NAME}) or off, found %s",
                        what_is(v));
        return;
    }
    struct pt_config *cfg = x->cfg;
    struct pt_fwdauth_cfg *fa = pt_config_alloc(x, &cfg->arena, sizeof(*fa));
    struct pt_route_cfg *rt = pt_config_alloc(x, &cfg->arena, sizeof(*rt));
    memset(fa, 0, sizeof(*fa));
    memset(rt, 0, sizeof(*rt));
    fa->pos = v->pos;
    fa->route = rt;
    fa->timeout_ms = FWDAUTH_TIMEOUT_MS;
    fa->request_headers = (const char **)defaults;
    fa->n_request_headers = 2;
    rt->match = "forward_auth";
    rt->action = PT_ACTION_PROXY;
    rt->pos = rt->match_pos = v->pos;
    const struct pt_ynode *target = NULL;
    bool has_key = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "forward_auth"))
            continue;
        if (is(k, "url") || is(k, "upstream")) {
            if (target) {
                pt_config_error(x, k->pos,
                                "forward_auth takes one of url or upstream (\"%s\" already at "
                                "line %d)",
                                target->s, target->pos.line);
                continue;
            }
            target = k;
            const char *s = pt_config_get_str(x, val, k->s);
            if (!s)
                continue;
            rt->proxy.to = pt_config_strndup(x, &cfg->arena, s, val->len);
            rt->proxy.to_path = "";
            if (is(k, "upstream")) {
                rt->proxy.upstream = pt_config_named_upstream(x, val, s);
            } else if (!memmem(s, val->len, "://", 3)) {
                pt_config_error(x, val->pos,
                                "expected a URL like http://127.0.0.1:9000/check for \"url\"");
            } else {
                rt->proxy.upstream = pt_config_inline_upstream(x, val, &rt->proxy);
                if (rt->proxy.upstream && rt->proxy.to_path[0] && !fa->path)
                    fa->path = rt->proxy.to_path; /* its path is the call's; path: may say it */
                rt->proxy.to_path = "";
            }
        } else if (is(k, "path")) {
            const char *s = pt_config_get_str(x, val, "path");
            if (s && (val->len == 0 || s[0] != '/' || memchr(s, '?', val->len)))
                pt_config_error(x, val->pos, "\"path\" must start with '/' (no query)");
            else if (s)
                fa->path = pt_config_strndup(x, &cfg->arena, s, val->len);
        } else if (is(k, "timeout")) {
            pt_config_get_ms(x, val, "timeout", 1, 60000, &fa->timeout_ms);
        } else if (is(k, "request_headers")) {
            load_names(x, val, "request_headers", &fa->request_headers, &fa->n_request_headers);
        } else if (is(k, "response_headers")) {
            load_names(x, val, "response_headers", &fa->response_headers, &fa->n_response_headers);
        } else {
            load_cache(x, val, fa, &has_key);
        }
    }
    if (!target)
        pt_config_error(x, v->pos, "forward_auth needs url (http://...) or upstream (a name)");
    if (!fa->path || !fa->path[0])
        fa->path = "/";
    if (!has_key) {
        fa->cache_key = fa->request_headers;
        fa->n_cache_key = fa->n_request_headers;
    }
    rt->proxy.timeout_ms = fa->timeout_ms;
    *out = fa;
}
