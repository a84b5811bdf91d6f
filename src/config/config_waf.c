/*
 * config_waf.c - the `waf:` key of a site and of a route (struct pt_waf_cfg), and the
 * top-level `waf_crs:` (where the OWASP Core Rule Set lives).
 *
 *     waf: off | detect | block
 *     waf: {mode: off|detect|block, paranoia: 1..4, anomaly_threshold: {inbound: N,
 *           outbound: N}, profile: api|none, rules: [FILE...], exclude: [{id: N},
 *           {id: "N-M", target: "ARGS:foo"}, {tag: TAG}], body_limit: SIZE,
 *           over_limit: refuse|pass, inspect_response: BOOL, audit_log: FILE}
 *     waf_crs: {setup: FILE, rules: DIR}
 *
 * Only values are checked here; the rules themselves are compiled by the server for each
 * snapshot (guard/waf.h), `check` included, so a rule that ModSecurity refuses is a
 * configuration error reported with its message. Targets and tags end up inside ModSecurity
 * directives (guard/waf_rules.c), so they are held to a character set that cannot break out
 * of a quoted argument. A route's `waf: off` is kept as a configuration with mode off, so its
 * site's does not fill it in; the site loader turns it into NULL afterwards (one pointer test
 * on the request path).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config_internal.h"

#define WAF_EXCLUDES_MAX 256
#define WAF_RULES_MAX 64

static bool mode_of(const struct pt_ynode *v, enum pt_waf_mode *m)
{
    if (is(v, "off") || is(v, "false"))
        *m = PT_WAF_OFF;
    else if (is(v, "detect"))
        *m = PT_WAF_DETECT;
    else if (is(v, "block") || is(v, "on") || is(v, "true"))
        *m = PT_WAF_BLOCK;
    else
        return false;
    return true;
}

/* A ModSecurity variable or tag we may quote in a directive: no quotes, backslashes, spaces
   or control bytes; at most 200 bytes. */
static bool directive_safe(const char *s, size_t n)
{
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '\\' || ch == '\'' || ch == ',')
            return false;
    }
    return true;
}

/* id: N or "N-M" (1..2^31-1, N <= M). */
static bool parse_ids(const char *s, uint32_t *lo, uint32_t *hi)
{
    char *end;
    errno = 0;
    unsigned long a = strtoul(s, &end, 10), b = a;
    if (end == s || errno)
        return false;
    if (*end == '-') {
        const char *t = end + 1;
        b = strtoul(t, &end, 10);
        if (end == t || errno)
            return false;
    }
    if (*end || a == 0 || a > 0x7fffffffUL || b < a || b > 0x7fffffffUL)
        return false;
    *lo = (uint32_t)a;
    *hi = (uint32_t)b;
    return true;
}

static void load_exclude_one(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                             struct pt_waf_exclude *e)
{
    static const char *const keys[] = {"id", "tag", "target", NULL};
    memset(e, 0, sizeof(*e));
    if (!pt_config_want_map(x, v, "exclude"))
        return;
    bool has_id = false, has_tag = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "an exclude entry"))
            continue;
        const char *s = pt_config_get_str(x, val, k->s);
        if (!s)
            continue;
        if (is(k, "id")) {
            has_id = true;
            if (!parse_ids(s, &e->id_lo, &e->id_hi))
                pt_config_error(x, val->pos,
                                "expected a rule id like 942100 or a range like "
                                "\"942100-942199\" for \"id\", found \"%.40s\"",
                                s);
        } else if (!directive_safe(s, val->len)) {
            pt_config_error(x, val->pos,
                            "\"%s\" takes a ModSecurity %s without spaces, quotes, commas or "
                            "backslashes (at most 200 bytes), found \"%.60s\"",
                            k->s, is(k, "tag") ? "tag" : "variable like ARGS:name", s);
        } else if (is(k, "tag")) {
            has_tag = true;
            e->tag = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else {
            e->target = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        }
    }
    if (has_id == has_tag)
        pt_config_error(x, v->pos, "an exclude entry takes exactly one of \"id\" or \"tag\"");
}

/* The number of items of the list v (key names it), or -1 after an error: not a list, or over
   max items. */
static ssize_t seq_len(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, size_t max)
{
    if (!pt_config_want_seq(x, v, key))
        return -1;
    size_t n = 0;
    FOR_ITEMS(v, it) n++;
    if (n <= max)
        return (ssize_t)n;
    pt_config_error(x, v->pos, "\"%s\" takes at most %zu entries", key, max);
    return -1;
}

static void load_excludes(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_waf_cfg *w)
{
    ssize_t n = seq_len(x, v, "exclude", WAF_EXCLUDES_MAX);
    if (n <= 0)
        return;
    w->excludes = pt_config_alloc(x, &x->cfg->arena, (size_t)n * sizeof(*w->excludes));
    FOR_ITEMS(v, it) load_exclude_one(x, it, &w->excludes[w->n_excludes++]);
}

static void load_rule_files(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_waf_cfg *w)
{
    ssize_t n = seq_len(x, v, "rules", WAF_RULES_MAX);
    if (n <= 0)
        return;
    w->rules = pt_config_alloc(x, &x->cfg->arena, (size_t)n * sizeof(*w->rules));
    FOR_ITEMS(v, it)
    {
        const char *p = pt_config_get_file(x, it, "rules");
        if (p)
            w->rules[w->n_rules++] = p;
    }
}

static void load_thresholds(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_waf_cfg *w)
{
    static const char *const keys[] = {"inbound", "outbound", NULL};
    if (!pt_config_want_map(x, v, "anomaly_threshold"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "anomaly_threshold"))
            continue;
        uint64_t n;
        if (!pt_config_get_uint(x, val, k->s, 1, 10000, &n))
            continue;
        if (is(k, "inbound"))
            w->inbound_threshold = (uint16_t)n;
        else
            w->outbound_threshold = (uint16_t)n;
    }
}

void pt_config_load_waf(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_waf_cfg **out)
{
    static const char *const keys[] = {
        "mode",       "paranoia",   "anomaly_threshold", "profile",   "rules", "exclude",
        "body_limit", "over_limit", "inspect_response",  "audit_log", NULL};
    struct pt_waf_cfg *w = pt_config_alloc(x, &x->cfg->arena, sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->mode = PT_WAF_BLOCK;
    w->paranoia = 1;
    w->inbound_threshold = 5;
    w->outbound_threshold = 4;
    w->profile_api = true;
    w->body_limit = 128 * 1024;
    w->pos = v->pos;
    if (v->kind == PT_YNODE_SCALAR) {
        if (!mode_of(v, &w->mode))
            pt_config_error(x, v->pos,
                            "expected off, detect, block or a mapping like {mode: block, "
                            "paranoia: 1} for \"waf\", found \"%.40s\"",
                            v->s);
    } else if (pt_config_want_map(x, v, "waf")) {
        FOR_PAIRS(v, k, val)
        {
            if (!pt_config_known_key(x, k, keys, NULL, "waf"))
                continue;
            uint64_t n;
            if (is(k, "mode")) {
                if (!mode_of(val, &w->mode))
                    pt_config_error(x, val->pos,
                                    "expected off, detect or block for \"mode\", found %s",
                                    what_is(val));
            } else if (is(k, "paranoia")) {
                if (pt_config_get_uint(x, val, "paranoia", 1, 4, &n))
                    w->paranoia = (uint8_t)n;
            } else if (is(k, "anomaly_threshold")) {
                load_thresholds(x, val, w);
            } else if (is(k, "profile")) {
                if (is(val, "api"))
                    w->profile_api = true;
                else if (is(val, "none"))
                    w->profile_api = false;
                else
                    pt_config_error(x, val->pos, "expected api or none for \"profile\"");
            } else if (is(k, "rules")) {
                load_rule_files(x, val, w);
            } else if (is(k, "exclude")) {
                load_excludes(x, val, w);
            } else if (is(k, "body_limit")) {
                pt_config_get_size(x, val, "body_limit", 1, 1u << 30, &w->body_limit);
            } else if (is(k, "over_limit")) {
                if (is(val, "pass"))
                    w->is_over_limit_pass = true;
                else if (is(val, "refuse"))
                    w->is_over_limit_pass = false;
                else
                    pt_config_error(x, val->pos, "expected refuse or pass for \"over_limit\"");
            } else if (is(k, "inspect_response")) {
                if (pt_config_get_bool(x, val, "inspect_response", &w->inspect_response) &&
                    w->inspect_response)
                    pt_config_error(x, val->pos,
                                    "\"inspect_response: true\" is not supported yet (issue "
                                    "#13): responses are not inspected");
            } else {
                w->audit_log = pt_config_get_path(x, val, "audit_log", "file");
            }
        }
    }
    w->next = x->cfg->wafs;
    x->cfg->wafs = w;
    *out = w;
}

void pt_config_load_waf_crs(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"setup", "rules", NULL};
    if (!pt_config_want_map(x, v, "waf_crs"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "waf_crs"))
            continue;
        if (is(k, "setup"))
            x->cfg->waf_crs_setup = pt_config_get_file(x, val, "setup");
        else
            x->cfg->waf_crs_rules = pt_config_get_dir(x, val, "rules");
    }
}

void pt_config_finish_waf(struct pt_cfg_ctx *x)
{
    struct pt_config *cfg = x->cfg;
    if (!cfg->waf_crs_setup)
        cfg->waf_crs_setup = "/etc/modsecurity/crs/crs-setup.conf";
    if (!cfg->waf_crs_rules)
        cfg->waf_crs_rules = "/usr/share/modsecurity-crs/rules";
    for (size_t i = 0; i < cfg->n_sites; i++) {
        struct pt_site_cfg *site = &cfg->sites[i];
        for (size_t j = 0; j < site->n_routes; j++) {
            struct pt_route_cfg *r = &site->routes[j];
            if (!r->waf)
                r->waf = site->waf;
            if (r->waf && r->waf->mode == PT_WAF_OFF)
                r->waf = NULL;
        }
        if (site->waf && site->waf->mode == PT_WAF_OFF)
            site->waf = NULL;
    }
}
