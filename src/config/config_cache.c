/*
 * config_cache.c - the cache: sections (docs/config.md "Cache").
 *
 * The top-level cache: sizes the one store every cached route shares (cache/store.h): its
 * memory cap, its object limit, an optional disk tier, the Cache-Status field and the tag
 * fields. A route's cache: turns caching on for that route and holds its overrides (default
 * TTL, TTLs by status, the key's query parameters and headers, Set-Cookie, coalescing). A
 * route may cache without a top-level section: the store's defaults apply.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

#define MIB (1024ull * 1024)

/* A list of strings (lower-cased when lower), NULL-ended, in the configuration's arena. */
static const char **load_names(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                               bool lower, bool tokens)
{
    if (!pt_config_want_seq(x, v, key))
        return NULL;
    const char **out = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*out));
    size_t n = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, key);
        if (!s)
            continue;
        if (it->len == 0 || (tokens && !pt_config_is_token(s, it->len))) {
            pt_config_error(x, it->pos, "\"%s\" entries must be %s, found \"%.*s\"", key,
                            tokens ? "header names" : "non-empty", shown(it->len), s);
            continue;
        }
        char *c = pt_config_strndup(x, &x->cfg->arena, s, it->len);
        if (lower)
            for (char *p = c; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p + 32);
        out[n++] = c;
    }
    out[n] = NULL;
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void pt_config_cache_defaults(struct pt_cache_cfg *c)
{
    c->memory_bytes = 256 * MIB;
    c->max_object_bytes = 8 * MIB;
    c->disk_bytes = 1024 * MIB;
    c->status_header = true;
    static const char *tags[] = {"cache-tag", "surrogate-key", NULL};
    c->tag_headers = tags;
}

/* cache: {memory, max_object, disk: {path, size}, status_header, tag_headers}. */
void pt_config_load_cache(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"memory",        "max_object",  "disk",
                                       "status_header", "tag_headers", NULL};
    static const char *const dkeys[] = {"path", "size", NULL};
    struct pt_cache_cfg *c = &x->cfg->cache;
    c->is_set = true;
    c->pos = v->pos;
    if (!pt_config_want_map(x, v, "cache"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "cache"))
            continue;
        if (is(k, "memory")) {
            pt_config_get_size(x, val, "memory", 1 * MIB, 1ull << 40, &c->memory_bytes);
        } else if (is(k, "max_object")) {
            pt_config_get_size(x, val, "max_object", 1, 1ull << 32, &c->max_object_bytes);
        } else if (is(k, "status_header")) {
            pt_config_get_bool(x, val, "status_header", &c->status_header);
        } else if (is(k, "tag_headers")) {
            c->tag_headers = load_names(x, val, "tag_headers", true, true);
        } else {
            if (!pt_config_want_map(x, val, "disk"))
                continue;
            bool has_path = false;
            FOR_PAIRS(val, dk, dv)
            {
                if (!pt_config_known_key(x, dk, dkeys, NULL, "cache.disk"))
                    continue;
                if (is(dk, "path")) {
                    has_path = true;
                    c->disk_path = pt_config_get_path(x, dv, "path", "directory");
                } else {
                    pt_config_get_size(x, dv, "size", 1 * MIB, 1ull << 50, &c->disk_bytes);
                }
            }
            if (!has_path)
                pt_config_missing(x, val, "path", "cache.disk");
        }
    }
    if (c->max_object_bytes > c->memory_bytes)
        pt_config_error(x, v->pos,
                        "cache.max_object (%llu bytes) is larger than cache.memory "
                        "(%llu bytes)",
                        (unsigned long long)c->max_object_bytes,
                        (unsigned long long)c->memory_bytes);
}

/* ttl: {STATUS: DURATION, ...} */
static void load_ttl(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cache_cfg *rc)
{
    if (!pt_config_want_map(x, v, "ttl"))
        return;
    size_t n = v->len / 2;
    rc->ttl_status = pt_config_alloc(x, &x->cfg->arena, (n + 1) * sizeof(*rc->ttl_status));
    rc->ttl_s = pt_config_alloc(x, &x->cfg->arena, (n + 1) * sizeof(*rc->ttl_s));
    FOR_PAIRS(v, k, val)
    {
        char *end = NULL;
        long st = k->s ? strtol(k->s, &end, 10) : 0;
        if (!k->s || end == k->s || *end || st < 200 || st > 599) {
            pt_config_error(x, k->pos, "cache.ttl keys are statuses 200..599, found \"%.*s\"",
                            shown(k->len), k->s ? k->s : "");
            continue;
        }
        uint32_t ms = 0;
        if (!pt_config_get_ms(x, val, "ttl", 0, UINT32_MAX, &ms))
            continue;
        rc->ttl_status[rc->n_ttl] = (int16_t)st;
        rc->ttl_s[rc->n_ttl++] = (int64_t)(ms / 1000);
    }
}

/* key: {query: all | none | [names], headers: [names]} */
static void load_key(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cache_cfg *rc)
{
    static const char *const keys[] = {"query", "headers", NULL};
    if (!pt_config_want_map(x, v, "key"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "cache.key"))
            continue;
        if (is(k, "headers")) {
            rc->key_headers = load_names(x, val, "headers", true, true);
            continue;
        }
        if (val->kind == PT_YNODE_SEQ) {
            rc->key_query_all = false;
            rc->key_query = load_names(x, val, "query", false, false);
            size_t n = 0;
            while (rc->key_query && rc->key_query[n])
                n++;
            if (n)
                qsort(rc->key_query, n, sizeof(*rc->key_query), cmp_str);
        } else if (is(val, "all")) {
            rc->key_query_all = true;
        } else if (is(val, "none")) {
            rc->key_query_all = false;
            static const char *none[] = {NULL};
            rc->key_query = none;
        } else {
            pt_config_error(x, val->pos,
                            "cache.key.query takes all, none or a list of parameter names");
        }
    }
}

/* A route's cache: true | false | {enabled, default_ttl, ttl, key, cookies, lock,
   lock_timeout, stale_if_error}. */
void pt_config_load_route_cache(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                struct pt_route_cfg *r)
{
    static const char *const keys[] = {"enabled",      "default_ttl",    "ttl",
                                       "key",          "cookies",        "lock",
                                       "lock_timeout", "stale_if_error", NULL};
    struct pt_route_cache_cfg *rc = &r->cache;
    rc->key_query_all = true;
    rc->is_coalescing = true;
    rc->lock_timeout_ms = 5000;
    if (v->kind != PT_YNODE_MAP) {
        pt_config_get_bool(x, v, "cache", &rc->is_on);
        return;
    }
    rc->is_on = true;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "cache"))
            continue;
        uint32_t ms = 0;
        if (is(k, "enabled")) {
            pt_config_get_bool(x, val, "enabled", &rc->is_on);
        } else if (is(k, "default_ttl")) {
            if (pt_config_get_ms(x, val, "default_ttl", 0, UINT32_MAX, &ms))
                rc->default_ttl_s = ms / 1000;
        } else if (is(k, "ttl")) {
            load_ttl(x, val, rc);
        } else if (is(k, "key")) {
            load_key(x, val, rc);
        } else if (is(k, "cookies")) {
            pt_config_get_bool(x, val, "cookies", &rc->store_set_cookie);
        } else if (is(k, "lock")) {
            pt_config_get_bool(x, val, "lock", &rc->is_coalescing);
        } else if (is(k, "lock_timeout")) {
            pt_config_get_ms(x, val, "lock_timeout", 1, 600000, &rc->lock_timeout_ms);
        } else {
            if (pt_config_get_ms(x, val, "stale_if_error", 0, UINT32_MAX, &ms))
                rc->stale_if_error_s = ms / 1000;
        }
    }
}
