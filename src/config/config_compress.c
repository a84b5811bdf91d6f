/*
 * config_compress.c - the `compress:` key of a site and of a route (struct pt_compress_cfg,
 * used by handler/compress.c).
 *
 * `compress: true` turns compression on with the defaults, `false` off; a mapping gives the
 * settings (enabled defaults to true once a mapping is written). A route's compress replaces
 * its site's whole, so every field is filled here, defaults included: the handler reads one
 * struct and never merges. The default type list is static (shared by every snapshot); a
 * configured one is copied, lower-cased, into the configuration's arena. A "text/ANY" style
 * entry ("text/" followed by a star) matches every subtype of its type; "application/ANY+json"
 * (a star before a suffix) matches that structured-syntax suffix (RFC 6838 §4.2.8).
 */
#include <ctype.h>

#include "config/config_internal.h"

static const char *default_types[] = {"text/*",
                                      "application/json",
                                      "application/*+json",
                                      "application/javascript",
                                      "application/xml",
                                      "application/*+xml",
                                      "image/svg+xml",
                                      "application/wasm",
                                      "application/manifest+json",
                                      NULL};

static const char *const coding_names[PT_CODING_N] = {NULL, "gzip", "br", "zstd"};

/* Level bounds per coding: gzip 1..9, br 0..11, zstd 1..19. */
static const int level_lo[PT_CODING_N] = {0, 1, 0, 1};
static const int level_hi[PT_CODING_N] = {0, 9, 11, 19};

void pt_config_compress_defaults(struct pt_compress_cfg *c, bool is_on)
{
    memset(c, 0, sizeof(*c));
    c->is_set = true;
    c->is_on = is_on;
    c->types = default_types;
    c->min_size = 256;
    c->order[0] = PT_CODING_BR;
    c->order[1] = PT_CODING_ZSTD;
    c->order[2] = PT_CODING_GZIP;
    c->order[3] = PT_CODING_NONE;
    c->level[PT_CODING_GZIP] = 6;
    c->level[PT_CODING_BR] = 5;
    c->level[PT_CODING_ZSTD] = 3;
}

static enum pt_coding coding_of(const struct pt_ynode *v)
{
    for (int i = 1; i < PT_CODING_N; i++)
        if (is(v, coding_names[i]))
            return (enum pt_coding)i;
    return PT_CODING_NONE;
}

/* A MIME type or a type/star or type/star+suffix pattern: token "/" token, lower-cased. */
static bool type_ok(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (!slash || slash == s || slash + 1 == s + n)
        return false;
    size_t tl = (size_t)(slash - s), sl = n - tl - 1;
    if (!pt_config_is_token(s, tl))
        return false;
    if (slash[1] == '*')
        return sl == 1 || (sl > 2 && slash[2] == '+' && pt_config_is_token(slash + 3, sl - 2));
    return pt_config_is_token(slash + 1, sl);
}

static void load_types(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_compress_cfg *c)
{
    if (!pt_config_want_seq(x, v, "types"))
        return;
    const char **t = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*t));
    size_t n = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, "types");
        if (!s)
            continue;
        if (!type_ok(s, it->len)) {
            pt_config_error(x, it->pos,
                            "\"%.*s\" is not a MIME type: expected type/subtype like "
                            "application/json, text/* or application/*+json",
                            shown(it->len), s);
            continue;
        }
        char *d = pt_config_strndup(x, &x->cfg->arena, s, it->len);
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        t[n++] = d;
    }
    t[n] = NULL;
    c->types = t;
}

static void load_algorithms(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                            struct pt_compress_cfg *c)
{
    if (!pt_config_want_seq(x, v, "algorithms"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"algorithms\" needs at least one of br, zstd, gzip");
        return;
    }
    uint8_t order[PT_CODING_N] = {0};
    size_t n = 0;
    FOR_ITEMS(v, it)
    {
        enum pt_coding k = it->kind == PT_YNODE_SCALAR ? coding_of(it) : PT_CODING_NONE;
        if (k == PT_CODING_NONE) {
            pt_config_error(x, it->pos,
                            "unknown compression algorithm %s%.*s%s: expected br, zstd or gzip",
                            it->kind == PT_YNODE_SCALAR ? "\"" : "",
                            it->kind == PT_YNODE_SCALAR ? shown(it->len) : 0,
                            it->kind == PT_YNODE_SCALAR ? it->s : what_is(it),
                            it->kind == PT_YNODE_SCALAR ? "\"" : "");
            return;
        }
        for (size_t i = 0; i < n; i++)
            if (order[i] == k) {
                pt_config_error(x, it->pos, "\"%s\" is listed twice in \"algorithms\"",
                                coding_names[k]);
                return;
            }
        order[n++] = (uint8_t)k;
    }
    memcpy(c->order, order, sizeof(order));
}

static void load_levels(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_compress_cfg *c)
{
    static const char *const keys[] = {"gzip", "br", "zstd", NULL};
    if (!pt_config_want_map(x, v, "levels"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "compress.levels"))
            continue;
        enum pt_coding id = coding_of(k);
        uint64_t n;
        if (pt_config_get_uint(x, val, coding_names[id], (uint64_t)level_lo[id],
                               (uint64_t)level_hi[id], &n))
            c->level[id] = (int)n;
    }
}

void pt_config_load_compress(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                             struct pt_compress_cfg *c)
{
    static const char *const keys[] = {"enabled",    "types",  "min_size",
                                       "algorithms", "levels", NULL};
    if (v->kind == PT_YNODE_SCALAR) {
        bool on;
        if (!is_null(v) && pt_config_get_bool(x, v, "compress", &on)) {
            pt_config_compress_defaults(c, on);
            return;
        }
        if (is_null(v))
            pt_config_error(x, v->pos,
                            "expected true, false or a mapping like {types: [...], "
                            "min_size: 1k} for \"compress\", found nothing");
        return;
    }
    if (v->kind != PT_YNODE_MAP) {
        pt_config_error(x, v->pos,
                        "expected true, false or a mapping like {types: [...], min_size: 1k} "
                        "for \"compress\", found %s",
                        what_is(v));
        return;
    }
    pt_config_compress_defaults(c, true);
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "compress"))
            continue;
        if (is(k, "enabled"))
            pt_config_get_bool(x, val, "enabled", &c->is_on);
        else if (is(k, "types"))
            load_types(x, val, c);
        else if (is(k, "min_size"))
            pt_config_get_size(x, val, "min_size", 0, UINT64_MAX, &c->min_size);
        else if (is(k, "algorithms"))
            load_algorithms(x, val, c);
        else
            load_levels(x, val, c);
    }
}
