/*
 * cache_api.c - the cache's admin endpoints (docs/api.md "Cache"):
 *
 *   POST /api/cache/purge   {"url": U} | {"prefix": P} | {"tag": T} | {"tags": [T...]} |
 *                           {"all": true}  ->  {"purged": N}
 *   GET  /api/cache         the store's figures
 *
 * The store is shared by every worker (cache/store.h), so a purge is in effect for all of
 * them when the answer goes out: no message to workers, no delay. A URL is the cache key's
 * ("scheme://host/path?query", as routed): its scheme and host are compared without case.
 * Each purge writes an audit line.
 */
#include "admin/cache_api.h"

#include <jansson.h>
#include <string.h>

#include "cache/store.h"

/* The URL with its scheme and host lower-cased, into out (cap bytes); its length, or 0. */
static size_t key_url(const char *u, char *out, size_t cap)
{
    size_t n = strlen(u);
    if (n == 0 || n >= cap)
        return 0;
    memcpy(out, u, n + 1);
    const char *sep = strstr(out, "://");
    if (!sep)
        return 0;
    char *end = strchr(sep + 3, '/');
    size_t lim = end ? (size_t)(end - out) : n;
    for (size_t i = 0; i < lim; i++)
        if (out[i] >= 'A' && out[i] <= 'Z')
            out[i] = (char)(out[i] + 32);
    return n;
}

static void on_purge(struct pt_admin_req *q, void *arg)
{
    struct pt_cache *c = *(struct pt_cache **)arg;
    if (!c) {
        pt_admin_reply_error(q, 503, NULL, "no cache is configured");
        return;
    }
    json_t *body = pt_admin_body_json(q);
    if (!body)
        return;
    const char *known[] = {"url", "prefix", "tag", "tags", "all"};
    size_t given = 0;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < 5; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            pt_admin_reply_error(q, 400, key, "unknown field (url, prefix, tag, tags or all)");
            json_decref(body);
            return;
        }
        given++;
    }
    if (!json_is_object(body) || given != 1) {
        pt_admin_reply_error(q, 400, NULL, "give exactly one of url, prefix, tag, tags or all");
        json_decref(body);
        return;
    }
    size_t purged = 0;
    char buf[8192];
    const char *bad = NULL;
    if ((v = json_object_get(body, "url"))) {
        size_t n = json_is_string(v) ? key_url(json_string_value(v), buf, sizeof(buf)) : 0;
        if (n)
            purged = pt_cache_purge_url(c, buf, n);
        else
            bad = "url";
    } else if ((v = json_object_get(body, "prefix"))) {
        size_t n = json_is_string(v) ? key_url(json_string_value(v), buf, sizeof(buf)) : 0;
        if (n)
            purged = pt_cache_purge_prefix(c, buf, n);
        else
            bad = "prefix";
    } else if ((v = json_object_get(body, "tag"))) {
        if (json_is_string(v) && json_string_length(v))
            purged = pt_cache_purge_tag(c, json_string_value(v), json_string_length(v));
        else
            bad = "tag";
    } else if ((v = json_object_get(body, "tags"))) {
        size_t i;
        json_t *t;
        if (!json_is_array(v) || json_array_size(v) == 0)
            bad = "tags";
        json_array_foreach(v, i, t)
        {
            if (!json_is_string(t) || !json_string_length(t)) {
                bad = "tags";
                break;
            }
        }
        if (!bad)
            json_array_foreach(v, i, t) purged +=
                pt_cache_purge_tag(c, json_string_value(t), json_string_length(t));
    } else {
        v = json_object_get(body, "all");
        if (json_is_true(v))
            purged = pt_cache_purge_all(c);
        else
            bad = "all";
    }
    if (bad) {
        pt_admin_reply_error(q, 400, bad,
                             strcmp(bad, "url") == 0 || strcmp(bad, "prefix") == 0
                                 ? "expected an absolute URL like https://example.com/path"
                             : strcmp(bad, "all") == 0 ? "expected true"
                                                       : "expected a non-empty string (a list of "
                                                         "them for tags)");
        json_decref(body);
        return;
    }
    json_t *change = json_pack("{s:O, s:I}", "purge", body, "purged", (json_int_t)purged);
    pt_admin_audit(q, change);
    json_decref(change);
    json_decref(body);
    pt_admin_reply(q, 200, json_pack("{s:I}", "purged", (json_int_t)purged));
}

static void on_stats(struct pt_admin_req *q, void *arg)
{
    struct pt_cache *c = *(struct pt_cache **)arg;
    if (!c) {
        pt_admin_reply_error(q, 503, NULL, "no cache is configured");
        return;
    }
    struct pt_cache_stats s;
    pt_cache_stats(c, &s);
    pt_admin_reply(q, 200,
                   json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "objects",
                             (json_int_t)s.objects, "bytes", (json_int_t)s.bytes, "diskObjects",
                             (json_int_t)s.disk_objects, "diskBytes", (json_int_t)s.disk_bytes,
                             "evictions", (json_int_t)s.evictions, "diskEvictions",
                             (json_int_t)s.disk_evictions, "purged", (json_int_t)s.purged,
                             "indexBytes", (json_int_t)s.index_bytes));
}

int pt_cache_api_attach(struct pt_admin *a, struct pt_cache **store)
{
    if (pt_admin_route(a, "POST", "/api/cache/purge", 0, on_purge, store) < 0 ||
        pt_admin_route(a, "GET", "/api/cache", 0, on_stats, store) < 0)
        return -1;
    return 0;
}
