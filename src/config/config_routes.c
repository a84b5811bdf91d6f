/*
 * config_routes.c - a site's routes: match and methods, and the four actions with their keys
 * (proxy with header rules, split and inline upstreams; redirect; respond; static with index
 * and not-found pages).
 *
 * proxy.to names an upstream (looked up among the named ones, with a did-you-mean) or is a URL,
 * for which an upstream of one target is made on the spot. A route takes exactly one action.
 */
#include "config/config_internal.h"

#include <string.h>
#include <strings.h>

#include "core/common.h"
#include "http/h1_parse.h"

#define PROXY_TIMEOUT_MAX_MS 60000u

/* ---- routes ------------------------------------------------------------------------------- */

/* A mapping of header name -> value into an array of pt_kv. */
static void load_kvs(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                     bool is_respond, struct pt_kv **out, size_t *n_out)
{
    struct pt_arena *a = &x->cfg->arena;
    if (is_null(v))
        return;
    if (!pt_config_want_map(x, v, key))
        return;
    *out = pt_config_alloc(x, a, (v->len / 2) * sizeof(**out));
    FOR_PAIRS(v, k, val)
    {
        if (k->is_dup)
            continue;
        if (k->kind != PT_YNODE_SCALAR || !pt_config_is_token(k->s, k->len)) {
            pt_config_error(x, k->pos,
                            "bad header name in \"%s\": expected a token like "
                            "X-Request-Id",
                            key);
            continue;
        }
        if (is_respond && (strcasecmp(k->s, "content-length") == 0 ||
                           strcasecmp(k->s, "transfer-encoding") == 0)) {
            pt_config_error(x, k->pos,
                            "\"%s\" cannot be set on a respond: Portico frames the body itself",
                            k->s);
            continue;
        }
        const char *s = pt_config_get_str(x, val, k->s);
        if (!s)
            continue;
        struct pt_kv *kv = &(*out)[(*n_out)++];
        kv->name = pt_config_strndup(x, a, k->s, k->len);
        kv->name_len = k->len;
        kv->value = pt_config_strndup(x, a, s, val->len);
        kv->value_len = val->len;
    }
}

static void load_header_ops(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                            struct pt_header_ops *ops)
{
    static const char *const keys[] = {"set", "add", "remove", NULL};
    struct pt_arena *a = &x->cfg->arena;
    if (is_null(v))
        return;
    if (!pt_config_want_map(x, v, key))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, key))
            continue;
        if (is(k, "set")) {
            load_kvs(x, val, "set", false, &ops->set, &ops->n_set);
        } else if (is(k, "add")) {
            load_kvs(x, val, "add", false, &ops->add, &ops->n_add);
        } else {
            if (is_null(val) || !pt_config_want_seq(x, val, "remove"))
                continue;
            ops->remove = pt_config_alloc(x, a, val->len * sizeof(*ops->remove));
            FOR_ITEMS(val, it)
            {
                if (it->kind != PT_YNODE_SCALAR || !pt_config_is_token(it->s, it->len)) {
                    pt_config_error(x, it->pos,
                                    "bad header name in \"remove\": expected a "
                                    "token like X-Powered-By");
                    continue;
                }
                struct pt_kv *kv = &ops->remove[ops->n_remove++];
                kv->name = pt_config_strndup(x, a, it->s, it->len);
                kv->name_len = it->len;
                kv->value = "";
            }
        }
    }
    for (size_t i = 0; i < ops->n_remove; i++)
        ops->is_server_removed |= strcasecmp(ops->remove[i].name, "server") == 0;
    for (size_t i = 0; i < ops->n_set; i++)
        ops->is_server_set |= strcasecmp(ops->set[i].name, "server") == 0;
}

static void load_proxy_headers(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                               struct pt_proxy_cfg *p)
{
    static const char *const keys[] = {"request", "response", NULL};
    if (is_null(v))
        return;
    if (!pt_config_want_map(x, v, "headers"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "headers"))
            continue;
        if (is(k, "request"))
            load_header_ops(x, val, "request", &p->request);
        else
            load_header_ops(x, val, "response", &p->response);
    }
}

char *pt_config_origin_name(struct pt_cfg_ctx *x, const char *prefix, const struct pt_cfg_url *u,
                            size_t *len)
{
    size_t nn = strlen(prefix) + u->host_len + 32;
    char *name = pt_config_alloc(x, &x->tmp, nn);
    int w = snprintf(name, nn, "%s:%s://%s%.*s%s:%u", prefix, u->is_https ? "https" : "http",
                     u->is_v6 ? "[" : "", (int)u->host_len, u->host, u->is_v6 ? "]" : "",
                     (unsigned)u->port);
    for (int i = (int)strlen(prefix); i < w; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] - 'A' + 'a');
    *len = (size_t)w;
    return name;
}

struct pt_upstream_cfg *pt_config_inline_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                                  struct pt_proxy_cfg *p)
{
    struct pt_config *cfg = x->cfg;
    struct pt_cfg_url u;
    const char *why = pt_config_parse_url(v->s, v->len, &u);
    if (why) {
        pt_config_error(x, v->pos, "bad URL \"%.*s\" for \"to\": %s", shown(v->len), v->s, why);
        return NULL;
    }
    if (u.rest_len > 0 && u.rest[0] != '/') {
        pt_config_error(x, v->pos, "the path after the host in \"to\" must start with '/'");
        return NULL;
    }
    if (memchr(u.rest, '#', u.rest_len)) {
        pt_config_error(x, v->pos, "\"to\" cannot have a fragment (#...)");
        return NULL;
    }
    /* "url:http://host:port": one upstream per distinct origin. */
    size_t w;
    char *name = pt_config_origin_name(x, "url", &u, &w);
    p->to_path = pt_config_strndup(x, &cfg->arena, u.rest, u.rest_len);
    for (size_t i = x->n_named_ups; i < cfg->n_upstreams; i++)
        if (strcmp(cfg->upstreams[i]->name, name) == 0)
            return cfg->upstreams[i];
    struct pt_target_cfg t;
    memset(&t, 0, sizeof(t));
    if (!pt_config_make_target(x, v, "to", true, &t))
        return NULL;
    struct pt_upstream_cfg *up = pt_config_new_upstream(x, name, w, v->pos);
    up->targets = pt_config_alloc(x, &cfg->arena, sizeof(*up->targets));
    up->targets[0] = t;
    up->n_targets = 1;
    return up;
}

static void load_proxy_to(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_proxy_cfg *p)
{
    struct pt_config *cfg = x->cfg;
    const char *s = pt_config_get_str(x, v, "to");
    if (!s)
        return;
    p->to = pt_config_strndup(x, &cfg->arena, s, v->len);
    p->to_path = "";
    if (memmem(s, v->len, "://", 3)) {
        p->upstream = pt_config_inline_upstream(x, v, p);
        return;
    }
    p->upstream = pt_config_named_upstream(x, v, s);
}

/* The upstream named s (the scalar v) under upstreams:, or NULL after reporting it unknown. */
struct pt_upstream_cfg *pt_config_named_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                                 const char *s)
{
    struct pt_config *cfg = x->cfg;
    for (size_t i = 0; i < x->n_named_ups; i++)
        if (strcmp(cfg->upstreams[i]->name, s) == 0)
            return cfg->upstreams[i];
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < x->n_named_ups; i++) {
        const char *name = cfg->upstreams[i]->name;
        size_t l = strlen(name);
        unsigned d = pt_config_distance(s, v->len, name, l);
        if (d < best_d && d * 2 <= l) {
            best = name;
            best_d = d;
        }
    }
    if (best)
        pt_config_error(x, v->pos, "unknown upstream \"%.*s\"; did you mean \"%s\"?", shown(v->len),
                        s, best);
    else
        pt_config_error(x, v->pos,
                        "unknown upstream \"%.*s\" (name one under upstreams: or give a URL "
                        "like http://127.0.0.1:9001)",
                        shown(v->len), s);
    return NULL;
}

/* force_header: "Name: value". */
static void load_force_header(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                              struct pt_split_cfg *sp)
{
    const char *s = pt_config_get_str(x, v, "force_header");
    if (!s)
        return;
    const char *colon = memchr(s, ':', v->len);
    size_t nl = colon ? (size_t)(colon - s) : 0;
    if (!colon || !pt_config_is_token(s, nl)) {
        pt_config_error(x, v->pos,
                        "expected \"Name: value\" for \"force_header\", like \"X-Canary: always\"");
        return;
    }
    const char *val = colon + 1;
    size_t vl = v->len - nl - 1;
    while (vl > 0 && (*val == ' ' || *val == '\t')) {
        val++;
        vl--;
    }
    while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
        vl--;
    if (vl == 0) {
        pt_config_error(x, v->pos, "\"force_header\" needs a value after the colon");
        return;
    }
    sp->force_header = pt_config_strndup(x, &x->cfg->arena, s, nl);
    sp->force_header_len = nl;
    sp->force_header_value = pt_config_strndup(x, &x->cfg->arena, val, vl);
    sp->force_header_value_len = vl;
}

/* force_cookie: "name" (any value) or "name=value". */
static void load_force_cookie(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                              struct pt_split_cfg *sp)
{
    const char *s = pt_config_get_str(x, v, "force_cookie");
    if (!s)
        return;
    const char *eq = memchr(s, '=', v->len);
    size_t nl = eq ? (size_t)(eq - s) : v->len;
    bool ok = pt_config_is_token(s, nl);
    for (size_t i = nl; ok && i < v->len; i++)
        ok =
            s[i] > 0x20 && s[i] < 0x7f && s[i] != ';' && s[i] != ',' && s[i] != '"' && s[i] != '\\';
    if (!ok) {
        pt_config_error(x, v->pos,
                        "expected \"name\" or \"name=value\" for \"force_cookie\", like "
                        "\"canary=1\"");
        return;
    }
    sp->force_cookie = pt_config_strndup(x, &x->cfg->arena, s, nl);
    sp->force_cookie_len = nl;
    if (eq) {
        sp->force_cookie_value = pt_config_strndup(x, &x->cfg->arena, eq + 1, v->len - nl - 1);
        sp->force_cookie_value_len = v->len - nl - 1;
    }
}

static void load_split(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_proxy_cfg *p)
{
    static const char *const keys[] = {"to", "weight", "force_header", "force_cookie", NULL};
    if (!pt_config_want_seq(x, v, "split"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"split\" needs at least one {to: NAME, weight: N}");
        return;
    }
    p->split = pt_config_alloc(x, &x->cfg->arena, v->len * sizeof(*p->split));
    uint64_t sum = 0;
    FOR_ITEMS(v, it)
    {
        if (it->kind != PT_YNODE_MAP) {
            pt_config_error(x, it->pos,
                            "expected a mapping like {to: app_v1, weight: 90} in \"split\", "
                            "found %s",
                            what_is(it));
            continue;
        }
        struct pt_split_cfg *sp = &p->split[p->n_split++];
        sp->pos = it->pos;
        sp->weight = 1;
        bool has_to = false;
        FOR_PAIRS(it, k, val)
        {
            uint64_t n;
            if (!pt_config_known_key(x, k, keys, NULL, "a split entry"))
                continue;
            if (is(k, "to")) {
                has_to = true;
                const char *s = pt_config_get_str(x, val, "to");
                if (!s)
                    continue;
                if (memmem(s, val->len, "://", 3)) {
                    pt_config_error(x, val->pos,
                                    "\"to\" in \"split\" must name an upstream, not a URL");
                    continue;
                }
                sp->to = pt_config_strndup(x, &x->cfg->arena, s, val->len);
                sp->upstream = pt_config_named_upstream(x, val, s);
            } else if (is(k, "weight")) {
                if (pt_config_get_uint(x, val, "weight", 0, PT_CFG_MAX_WEIGHT, &n))
                    sp->weight = (uint32_t)n;
            } else if (is(k, "force_header")) {
                load_force_header(x, val, sp);
            } else {
                load_force_cookie(x, val, sp);
            }
        }
        if (!has_to)
            pt_config_missing(x, it, "to", "a split entry");
        sum += sp->weight;
    }
    if (p->n_split > 0 && sum == 0)
        pt_config_error(x, v->pos, "the weights of \"split\" must not all be 0");
    if (p->n_split > 0) {
        p->to = p->split[0].to;
        p->upstream = p->split[0].upstream;
    }
}

static void load_proxy(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {"to",      "strip_prefix",      "preserve_host",
                                       "timeout", "strip_credentials", "headers",
                                       "split",   "websocket",         NULL};
    static const char *const later[] = {"cache", "retry", "buffer", NULL};
    struct pt_proxy_cfg *p = &r->proxy;
    p->timeout_ms = 30000;
    p->to_path = "";
    if (!pt_config_want_map(x, v, "proxy"))
        return;
    const struct pt_ynode *to_key = NULL, *split_key = NULL;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, later, "proxy"))
            continue;
        if (is(k, "to")) {
            to_key = k;
            if (!split_key)
                load_proxy_to(x, val, p);
        } else if (is(k, "split")) {
            split_key = k;
            if (!to_key)
                load_split(x, val, p);
        } else if (is(k, "strip_prefix")) {
            pt_config_get_bool(x, val, "strip_prefix", &p->strip_prefix);
        } else if (is(k, "preserve_host")) {
            pt_config_get_bool(x, val, "preserve_host", &p->preserve_host);
        } else if (is(k, "websocket")) {
            bool on = true;
            pt_config_get_bool(x, val, "websocket", &on);
            p->refuses_websocket = !on;
        } else if (is(k, "strip_credentials")) {
            pt_config_get_bool(x, val, "strip_credentials", &p->strip_credentials);
        } else if (is(k, "timeout")) {
            pt_config_get_ms(x, val, "timeout", 1, PROXY_TIMEOUT_MAX_MS, &p->timeout_ms);
        } else {
            load_proxy_headers(x, val, p);
        }
    }
    if (to_key && split_key) {
        const struct pt_ynode *second =
            to_key->pos.line > split_key->pos.line || (to_key->pos.line == split_key->pos.line &&
                                                       to_key->pos.col > split_key->pos.col)
                ? to_key
                : split_key;
        pt_config_error(x, second->pos, "a proxy takes \"to\" or \"split\", not both");
    } else if (!to_key && !split_key) {
        pt_config_missing(x, v, "to", "proxy");
    }
}

static void load_redirect(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {"to", "status", NULL};
    struct pt_redirect_cfg *rd = &r->redirect;
    rd->status = 301;
    if (!pt_config_want_map(x, v, "redirect"))
        return;
    bool has_to = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "redirect"))
            continue;
        if (is(k, "to")) {
            has_to = true;
            const char *s = pt_config_get_str(x, val, "to");
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"to\" must not be empty");
            else if (s)
                rd->to = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else {
            uint64_t n;
            if (!pt_config_get_uint(x, val, "status", 301, 308, &n))
                continue;
            if (n != 301 && n != 302 && n != 303 && n != 307 && n != 308)
                pt_config_error(x, val->pos, "a redirect status must be 301, 302, 303, 307 or 308");
            else
                rd->status = (int)n;
        }
    }
    if (!has_to)
        pt_config_missing(x, v, "to", "redirect");
}

static void load_respond(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {"status", "body", "headers", NULL};
    struct pt_respond_cfg *rs = &r->respond;
    rs->status = 200;
    rs->body = "";
    if (!pt_config_want_map(x, v, "respond"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "respond"))
            continue;
        if (is(k, "status")) {
            uint64_t n;
            if (pt_config_get_uint(x, val, "status", 200, 599, &n))
                rs->status = (int)n;
        } else if (is(k, "body")) {
            /* A body is bytes: line breaks and even NULs are fine. */
            if (val->kind == PT_YNODE_SCALAR && is_null(val))
                continue;
            const char *s = pt_config_scalar(x, val, "body", "a string");
            if (s) {
                rs->body = pt_config_strndup(x, &x->cfg->arena, s, val->len);
                rs->body_len = val->len;
            }
        } else {
            load_kvs(x, val, "headers", true, &rs->headers, &rs->n_headers);
        }
    }
}

/* One name of static.index: a plain file name (no '/', not "." or ".."). */
static const char *get_index_name(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    const char *s = pt_config_get_str(x, v, "index");
    if (!s)
        return NULL;
    if (v->len == 0 || memchr(s, '/', v->len) || is(v, ".") || is(v, "..")) {
        pt_config_error(x, v->pos, "expected a file name like index.html in \"index\"");
        return NULL;
    }
    return pt_config_strndup(x, &x->cfg->arena, s, v->len);
}

static void load_static_index(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                              struct pt_static_cfg *f)
{
    if (v->kind == PT_YNODE_SCALAR) {
        const char *s = get_index_name(x, v);
        if (s) {
            f->index[0] = s;
            f->n_index = 1;
        }
        return;
    }
    if (!pt_config_want_seq(x, v, "index"))
        return;
    if (v->len == 0 || v->len > PT_STATIC_MAX_INDEX_CFG) {
        pt_config_error(x, v->pos, "\"index\" takes 1 to %d file names", PT_STATIC_MAX_INDEX_CFG);
        return;
    }
    f->n_index = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = get_index_name(x, it);
        if (s)
            f->index[f->n_index++] = s;
    }
    if (f->n_index == 0) {
        f->index[0] = "index.html";
        f->n_index = 1;
    }
}

/* static.not_found_page: a path under root ("" turns it off); never climbs out with "..". */
static void load_not_found_page(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                struct pt_static_cfg *f)
{
    const char *s = pt_config_get_str(x, v, "not_found_page");
    if (!s)
        return;
    for (size_t i = 0; i < v->len;) {
        size_t j = i;
        while (j < v->len && s[j] != '/')
            j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') {
            pt_config_error(x, v->pos,
                            "\"not_found_page\" must be a file under root, without \"..\"");
            return;
        }
        i = j + 1;
    }
    f->not_found_page = pt_config_strndup(x, &x->cfg->arena, s, v->len);
}

static void load_static(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {
        "root",     "index",          "spa", "precompressed", "cache_control",
        "dotfiles", "not_found_page", NULL};
    static const char *const dot[] = {"deny", "allow", "ignore", NULL};
    struct pt_static_cfg *f = &r->files;
    f->index[0] = "index.html";
    f->n_index = 1;
    f->precompressed = true;
    f->not_found_page = "404.html";
    if (!pt_config_want_map(x, v, "static"))
        return;
    bool has_root = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "static"))
            continue;
        if (is(k, "root")) {
            has_root = true;
            f->root = pt_config_get_dir(x, val, "root");
        } else if (is(k, "index")) {
            load_static_index(x, val, f);
        } else if (is(k, "spa")) {
            pt_config_get_bool(x, val, "spa", &f->spa);
        } else if (is(k, "precompressed")) {
            pt_config_get_bool(x, val, "precompressed", &f->precompressed);
        } else if (is(k, "cache_control")) {
            const char *s = pt_config_get_str(x, val, "cache_control");
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"cache_control\" must not be empty (leave it out)");
            else if (s)
                f->cache_control = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else if (is(k, "dotfiles")) {
            const char *s = pt_config_get_str(x, val, "dotfiles");
            if (!s)
                continue;
            size_t i = 0;
            while (dot[i] && !is(val, dot[i]))
                i++;
            if (dot[i]) {
                f->dotfiles = (int)i; /* dot[] follows enum pt_static_dotfiles */
                continue;
            }
            const char *best = pt_config_nearest(s, val->len, dot, SIZE_MAX);
            if (best)
                pt_config_error(x, val->pos, "unknown dotfiles \"%.*s\"; did you mean \"%s\"?",
                                shown(val->len), s, best);
            else
                pt_config_error(x, val->pos, "expected deny, allow or ignore for \"dotfiles\"");
        } else {
            load_not_found_page(x, val, f);
        }
    }
    if (!has_root)
        pt_config_missing(x, v, "root", "static");
}

static void load_methods(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const names[] = {NULL,     "GET",     "HEAD",    "POST",  "PUT",
                                        "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    if (!pt_config_want_seq(x, v, "methods"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"methods\" must not be empty (omit it to allow all)");
        return;
    }
    const char **other = NULL;
    size_t n_other = 0;
    FOR_ITEMS(v, it)
    {
        if (it->kind != PT_YNODE_SCALAR || !pt_config_is_token(it->s, it->len)) {
            pt_config_error(x, it->pos, "expected a method name like GET in \"methods\"");
            continue;
        }
        int id = 0;
        const char *upper = NULL;
        for (int m = PT_METHOD_GET; m < PT_METHOD__COUNT; m++) {
            if (is(it, names[m]))
                id = m;
            else if (it->len == strlen(names[m]) && strncasecmp(it->s, names[m], it->len) == 0)
                upper = names[m];
        }
        if (id) {
            r->methods_mask |= 1u << id;
            continue;
        }
        if (upper) {
            pt_config_error(x, it->pos, "methods are case-sensitive: did you mean \"%s\"?", upper);
            continue;
        }
        if (!other)
            other = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*other));
        other[n_other++] = pt_config_strndup(x, &x->cfg->arena, it->s, it->len);
    }
    r->methods_other = other;
}

static void load_route(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {"match",        "methods",    "proxy",      "redirect",
                                       "respond",      "static",     "cache",      "compress",
                                       "ip",           "rate_limit", "basic_auth", "jwt",
                                       "forward_auth", "waf",        NULL};
    static const char *const later[] = {"acl", "headers", NULL};
    r->pos = v->pos;
    if (v->kind != PT_YNODE_MAP) {
        pt_config_error(x, v->pos,
                        "expected a route mapping like {match: \"/\", proxy: ...}, "
                        "found %s",
                        what_is(v));
        return;
    }
    const struct pt_ynode *action_key = NULL, *cache_key = NULL;
    bool has_match = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, later, "a route"))
            continue;
        if (is(k, "match")) {
            has_match = true;
            r->match_pos = val->pos;
            const char *s = pt_config_get_str(x, val, "match");
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"match\" must not be empty");
            else if (s)
                r->match = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else if (is(k, "methods")) {
            load_methods(x, val, r);
        } else if (is(k, "cache")) {
            cache_key = k;
            pt_config_load_route_cache(x, val, r);
        } else if (is(k, "compress")) {
            pt_config_load_compress(x, val, &r->compress);
        } else if (is(k, "rate_limit")) {
            pt_config_load_rate_limit(x, val, &r->rate_limit);
        } else if (is(k, "ip")) {
            pt_config_load_ip(x, val, &r->ip);
        } else if (is(k, "basic_auth")) {
            pt_config_load_basic_auth(x, val, &r->basic_auth);
        } else if (is(k, "jwt")) {
            pt_config_load_jwt(x, val, &r->jwt);
        } else if (is(k, "forward_auth")) {
            pt_config_load_fwdauth(x, val, &r->forward_auth, &r->forward_auth_is_set);
        } else if (is(k, "waf")) {
            pt_config_load_waf(x, val, &r->waf);
        } else {
            if (action_key) {
                pt_config_error(x, k->pos,
                                "a route takes only one of proxy, redirect, respond or static "
                                "(\"%s\" already at line %d)",
                                action_key->s, action_key->pos.line);
                continue;
            }
            action_key = k;
            if (is(k, "proxy")) {
                r->action = PT_ACTION_PROXY;
                load_proxy(x, val, r);
            } else if (is(k, "redirect")) {
                r->action = PT_ACTION_REDIRECT;
                load_redirect(x, val, r);
            } else if (is(k, "respond")) {
                r->action = PT_ACTION_RESPOND;
                load_respond(x, val, r);
            } else {
                r->action = PT_ACTION_STATIC;
                r->files.index_in_config = x->cfg->n_static_routes++;
                load_static(x, val, r);
            }
        }
    }
    if (!has_match)
        pt_config_missing(x, v, "match", "a route");
    if (!action_key)
        pt_config_error(x, v->pos, "a route needs one of proxy, redirect, respond or static");
    if (cache_key && r->cache.is_on && action_key && r->action != PT_ACTION_PROXY)
        pt_config_error(x, cache_key->pos,
                        "cache: applies to proxy routes only (static files have their own "
                        "validators and ranges)");
}

void pt_config_load_routes(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site)
{
    if (!pt_config_want_seq(x, v, "routes"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"routes\" needs at least one route");
        return;
    }
    site->routes = pt_config_alloc(x, &x->cfg->arena, v->len * sizeof(*site->routes));
    FOR_ITEMS(v, it)
    {
        load_route(x, it, &site->routes[site->n_routes++]);
    }
}
