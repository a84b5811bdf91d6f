/*
 * config_ratelimit.c - rate_limit: on a site or a route, and the top-level rate_limits: section
 * (docs/config.md "Rate limits").
 *
 *   rate_limit: {rate: 10/s, burst: 20, delay: 2s, key: [ip, "header:X-Api-Key"], name: api}
 *   rate_limits: {max_keys: 1000000, max_delayed: 1024}
 *
 * A rate is N/s, N/m or N/h (N >= 1); the interval between two requests is its inverse, kept
 * in microseconds. A key is a list of parts, all of which make the key: ip (the client address
 * behind trusted_proxies), header:NAME, cookie:NAME, query:NAME, route (nothing of the
 * request: one counter for the route). delay is a duration: the longest a request over the
 * burst waits for its slot instead of being refused (nginx's limit_req without nodelay); at
 * most 60s, since a held request keeps its connection.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static bool parse_rate(const char *s, uint64_t *interval_us, uint64_t *per_s_x1000)
{
    char *end = NULL;
    unsigned long long n = strtoull(s, &end, 10);
    if (!end || end == s || n == 0 || n > 1000000 || *end != '/')
        return false;
    uint64_t unit;
    if (strcmp(end + 1, "s") == 0)
        unit = 1000000ull;
    else if (strcmp(end + 1, "m") == 0)
        unit = 60000000ull;
    else if (strcmp(end + 1, "h") == 0)
        unit = 3600000000ull;
    else
        return false;
    *interval_us = unit / n ? unit / n : 1;
    *per_s_x1000 = n * 1000000000ull / unit;
    return true;
}

static void load_key(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_rate_limit_cfg *rl)
{
    if (!pt_config_want_seq(x, v, "key"))
        return;
    if (v->len == 0 || v->len > PT_RL_KEY_PARTS) {
        pt_config_error(x, v->pos, "rate_limit.key takes 1 to %d parts", PT_RL_KEY_PARTS);
        return;
    }
    rl->n_parts = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, "key");
        if (!s)
            continue;
        struct pt_rl_part *p = &rl->parts[rl->n_parts];
        const char *colon = strchr(s, ':');
        size_t kn = colon ? (size_t)(colon - s) : strlen(s);
        static const struct {
            const char *name;
            int kind;
        } kinds[] = {{"ip", PT_RL_IP},
                     {"route", PT_RL_ROUTE},
                     {"header", PT_RL_HEADER},
                     {"cookie", PT_RL_COOKIE},
                     {"query", PT_RL_QUERY}};
        int kind = -1;
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (strlen(kinds[i].name) == kn && memcmp(kinds[i].name, s, kn) == 0)
                kind = kinds[i].kind;
        bool named = kind == PT_RL_HEADER || kind == PT_RL_COOKIE || kind == PT_RL_QUERY;
        const char *arg = colon ? colon + 1 : "";
        size_t an = strlen(arg);
        if (kind < 0 || named != (colon != NULL) || (colon && an == 0) ||
            (kind == PT_RL_HEADER && !pt_config_is_token(arg, an))) {
            pt_config_error(x, it->pos,
                            "rate_limit.key parts are ip, route, header:NAME, cookie:NAME or "
                            "query:NAME; found \"%.*s\"",
                            shown(it->len), s);
            continue;
        }
        p->kind = kind;
        p->name = colon ? pt_config_strndup(x, &x->cfg->arena, arg, an) : NULL;
        p->name_len = an;
        rl->n_parts++;
    }
}

void pt_config_load_rate_limit(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                               struct pt_rate_limit_cfg *rl)
{
    static const char *const keys[] = {"rate", "burst", "delay", "key", "name", "enabled", NULL};
    memset(rl, 0, sizeof(*rl));
    rl->is_set = true;
    rl->pos = v->pos;
    rl->name = "default";
    rl->burst = 1;
    rl->n_parts = 1;
    rl->parts[0].kind = PT_RL_IP;
    if (v->kind != PT_YNODE_MAP) {
        bool on = true;
        if (pt_config_get_bool(x, v, "rate_limit", &on) && on)
            pt_config_error(x, v->pos, "rate_limit: true needs a rate: {rate: 10/s}");
        return; /* false: none here, over the site's */
    }
    rl->is_on = true;
    bool has_rate = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "rate_limit"))
            continue;
        if (is(k, "rate")) {
            const char *s = pt_config_get_str(x, val, "rate");
            has_rate = true;
            if (s && !parse_rate(s, &rl->interval_us, &rl->rate_x1000))
                pt_config_error(x, val->pos,
                                "rate must be N/s, N/m or N/h with N from 1 to 1000000, found "
                                "\"%.*s\"",
                                shown(val->len), s);
        } else if (is(k, "burst")) {
            uint64_t b = 0;
            if (pt_config_get_uint(x, val, "burst", 1, 1000000, &b))
                rl->burst = (uint32_t)b;
        } else if (is(k, "delay")) {
            pt_config_get_ms(x, val, "delay", 0, 60000, &rl->delay_ms);
        } else if (is(k, "key")) {
            load_key(x, val, rl);
        } else if (is(k, "enabled")) {
            pt_config_get_bool(x, val, "enabled", &rl->is_on);
        } else {
            const char *s = pt_config_get_str(x, val, "name");
            if (s && (val->len == 0 || val->len > 64 || !pt_config_is_token(s, val->len)))
                pt_config_error(x, val->pos,
                                "rate_limit.name must be a token of at most 64 characters, found "
                                "\"%.*s\"",
                                shown(val->len), s);
            else if (s)
                rl->name = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        }
    }
    if (!has_rate)
        pt_config_missing(x, v, "rate", "rate_limit");
}

/* rate_limits: {max_keys: N, max_delayed: N} */
void pt_config_load_rate_limits(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"max_keys", "max_delayed", NULL};
    if (!pt_config_want_map(x, v, "rate_limits"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "rate_limits"))
            continue;
        if (is(k, "max_keys"))
            pt_config_get_uint(x, val, "max_keys", 1024, 100000000, &x->cfg->rate_limit_keys);
        else
            pt_config_get_uint(x, val, "max_delayed", 0, 1000000, &x->cfg->rate_limit_delayed);
    }
}
