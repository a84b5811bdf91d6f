/*
 * config_upstreams.c - the upstreams: section: targets, balance and hash_key, health checks,
 * outlier ejection, retries and the retry budget, the SSRF guard's ssrf_guard and allow_private
 * (the check itself is upstream/ssrf.h's, run by upstream/ at connect time).
 *
 * Every upstream, named or made for a proxy.to URL (pt_config_inline_upstream in
 * config_routes.c), is created by pt_config_new_upstream() with the defaults of the contract
 * and numbered in cfg->upstreams: the named ones first (x->n_named_ups), since upstreams: is
 * loaded before sites whatever the order in the file.
 */
#include "config/config_internal.h"

#include <string.h>
#include <strings.h>

#include "core/common.h"

static void push_upstream(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u)
{
    struct pt_config *cfg = x->cfg;
    if (cfg->n_upstreams == x->ups_cap) {
        size_t cap = x->ups_cap ? x->ups_cap * 2 : 8;
        struct pt_upstream_cfg **n = pt_config_alloc(x, &cfg->arena, cap * sizeof(*n));
        if (cfg->n_upstreams)
            memcpy(n, cfg->upstreams, cfg->n_upstreams * sizeof(*n));
        cfg->upstreams = n;
        x->ups_cap = cap;
    }
    u->index = cfg->n_upstreams;
    cfg->upstreams[cfg->n_upstreams++] = u;
}

struct pt_upstream_cfg *pt_config_new_upstream(struct pt_cfg_ctx *x, const char *name, size_t len,
                                               struct pt_cfg_pos pos)
{
    struct pt_upstream_cfg *u = pt_config_alloc(x, &x->cfg->arena, sizeof(*u));
    u->name = pt_config_strndup(x, &x->cfg->arena, name, len);
    u->balance = PT_BALANCE_ROUND_ROBIN;
    u->keepalive = 64;
    u->connect_timeout_ms = 2000;
    u->retries = 1;
    u->pos = pos;
    u->retry_on = PT_RETRY_CONNECT_FAILURE | PT_RETRY_RESET;
    u->retry_budget_pct = 20;
    u->max_pending = 100;
    u->resolve_interval_ms = 30000;
    u->tls_verify = true;
    u->outlier.consecutive_failures = 5;
    u->outlier.base_ejection_time_ms = 30000;
    u->outlier.max_ejection_time_ms = 300000;
    u->outlier.max_ejection_percent = 50;
    u->health.method = "GET";
    u->health.path = "/";
    u->health.interval_ms = 5000;
    u->health.timeout_ms = 2000;
    u->health.rise = 2;
    u->health.fall = 3;
    static struct pt_status_range dflt_expect = {200, 399};
    u->health.expect = &dflt_expect;
    u->health.n_expect = 1;
    push_upstream(x, u);
    return u;
}

static void load_targets(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    static const char *const keys[] = {"url", "weight", "backup", "max_connections", NULL};
    if (!pt_config_want_seq(x, v, "targets"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "upstream \"%s\" needs at least one target", u->name);
        return;
    }
    if (v->len > PT_MAX_TARGETS) {
        pt_config_error(x, v->pos, "upstream \"%s\" has more than %d targets", u->name,
                        PT_MAX_TARGETS);
        return;
    }
    u->targets = pt_config_alloc(x, &x->cfg->arena, v->len * sizeof(*u->targets));
    FOR_ITEMS(v, it)
    {
        if (it->kind != PT_YNODE_MAP) {
            pt_config_error(x, it->pos,
                            "expected a mapping like {url: \"http://127.0.0.1:9001\"} in "
                            "\"targets\", found %s",
                            what_is(it));
            continue;
        }
        struct pt_target_cfg *t = &u->targets[u->n_targets++];
        const struct pt_ynode *weight = NULL;
        bool has_url = false;
        t->pos = it->pos;
        FOR_PAIRS(it, k, val)
        {
            if (!pt_config_known_key(x, k, keys, NULL, "a target"))
                continue;
            if (is(k, "url")) {
                has_url = true;
                pt_config_make_target(x, val, "url", false, t);
            } else if (is(k, "backup")) {
                pt_config_get_bool(x, val, "backup", &t->is_backup);
            } else if (is(k, "max_connections")) {
                uint64_t n;
                if (pt_config_get_uint(x, val, "max_connections", 0, 1000000, &n))
                    t->max_connections = (uint32_t)n;
            } else {
                weight = val;
            }
        }
        t->weight = 1;
        uint64_t w;
        if (weight && pt_config_get_uint(x, weight, "weight", 1, PT_CFG_MAX_WEIGHT, &w))
            t->weight = (uint32_t)w;
        if (!has_url)
            pt_config_missing(x, it, "url", "a target");
        if (!t->is_backup)
            u->n_primary++;
        for (size_t i = 0; t->url && i + 1 < u->n_targets; i++)
            if (u->targets[i].url && strcmp(u->targets[i].url, t->url) == 0)
                t->occurrence++;
    }
    if (u->n_targets > 0 && u->n_primary == 0)
        pt_config_error(x, v->pos,
                        "upstream \"%s\" has only backup targets: at least one must not be a "
                        "backup",
                        u->name);
}

static void load_balance(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    static const char *const all[] = {"round_robin", "least_conn", "random", "ewma",
                                      "hash",        "cookie",     "p2c",    NULL};
    const char *s = pt_config_get_str(x, v, "balance");
    if (!s)
        return;
    for (size_t i = 0; all[i]; i++) {
        if (is(v, all[i])) {
            u->balance = (int)i; /* all[] follows enum pt_balance */
            return;
        }
    }
    const char *best = pt_config_nearest(s, v->len, all, SIZE_MAX);
    if (best)
        pt_config_error(x, v->pos, "unknown balance \"%.*s\"; did you mean \"%s\"?", shown(v->len),
                        s, best);
    else
        pt_config_error(x, v->pos,
                        "unknown balance \"%.*s\" (round_robin, least_conn, random, p2c, ewma, "
                        "hash or cookie)",
                        shown(v->len), s);
}

static void load_protocol(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    static const char *const all[] = {"http1.1", "h2", "h2c", NULL};
    const char *s = pt_config_get_str(x, v, "protocol");
    if (!s)
        return;
    for (size_t i = 0; all[i]; i++) {
        if (is(v, all[i])) {
            u->protocol = (int)i; /* all[] follows enum pt_upstream_protocol */
            return;
        }
    }
    pt_config_error(x, v->pos, "unknown protocol \"%.*s\" (http1.1, h2 or h2c)", shown(v->len), s);
}

/* A header, cookie or query-argument name of hash_key (token characters). */
static bool is_name_token(const char *s, size_t n)
{
    return n > 0 && n <= 128 && pt_config_is_token(s, n);
}

static void load_hash_key(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    static const struct {
        const char *prefix;
        int kind;
    } named[] = {{"header:", PT_HASH_KEY_HEADER},
                 {"cookie:", PT_HASH_KEY_COOKIE},
                 {"query:", PT_HASH_KEY_QUERY}};
    const char *s = pt_config_get_str(x, v, "hash_key");
    if (!s)
        return;
    struct pt_hash_key_cfg *hk = &u->hash_key;
    if (is(v, "ip") || is(v, "path")) {
        hk->kind = is(v, "ip") ? PT_HASH_KEY_IP : PT_HASH_KEY_PATH;
        hk->name = "";
        return;
    }
    for (size_t i = 0; i < PT_ARRAY_LEN(named); i++) {
        size_t pl = strlen(named[i].prefix);
        if (v->len < pl || memcmp(s, named[i].prefix, pl) != 0)
            continue;
        if (!is_name_token(s + pl, v->len - pl)) {
            pt_config_error(x, v->pos, "\"hash_key\" needs a name after \"%s\", like %sX-User",
                            named[i].prefix, named[i].prefix);
            return;
        }
        hk->kind = named[i].kind;
        hk->name = pt_config_strndup(x, &x->cfg->arena, s + pl, v->len - pl);
        hk->name_len = v->len - pl;
        return;
    }
    pt_config_error(x, v->pos,
                    "bad hash_key \"%.*s\": expected ip, path, header:NAME, cookie:NAME or "
                    "query:NAME",
                    shown(v->len), s);
}

/* "200-399" or "200,204,300-399" into ranges. */
static void load_expect(struct pt_cfg_ctx *x, struct pt_health_cfg *h, const struct pt_ynode *v)
{
    const char *s = pt_config_scalar(x, v, "expect", "status codes like \"200-399\"");
    if (!s)
        return;
    size_t n_max = 1;
    for (size_t i = 0; i < v->len; i++)
        n_max += s[i] == ',';
    struct pt_status_range *r = pt_config_alloc(x, &x->cfg->arena, n_max * sizeof(*r));
    size_t n = 0, i = 0;
    while (i <= v->len) {
        unsigned lo = 0, hi = 0;
        size_t d = 0;
        while (i < v->len && s[i] == ' ')
            i++;
        for (; i < v->len && s[i] >= '0' && s[i] <= '9' && d < 4; i++, d++)
            lo = lo * 10 + (unsigned)(s[i] - '0');
        if (d != 3)
            goto bad;
        hi = lo;
        if (i < v->len && s[i] == '-') {
            i++;
            hi = 0;
            for (d = 0; i < v->len && s[i] >= '0' && s[i] <= '9' && d < 4; i++, d++)
                hi = hi * 10 + (unsigned)(s[i] - '0');
            if (d != 3)
                goto bad;
        }
        while (i < v->len && s[i] == ' ')
            i++;
        if (lo < 100 || hi > 599 || lo > hi)
            goto bad;
        r[n].lo = (uint16_t)lo;
        r[n].hi = (uint16_t)hi;
        n++;
        if (i == v->len)
            break;
        if (s[i] != ',')
            goto bad;
        i++;
    }
    h->expect = r;
    h->n_expect = n;
    return;
bad:
    pt_config_error(x, v->pos,
                    "bad \"expect\" \"%.*s\": expected status codes 100..599 and ranges, like "
                    "\"200-399\" or \"200,204,300-399\"",
                    shown(v->len), s);
}

static void load_health(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    static const char *const keys[] = {"type",   "path",   "interval", "timeout", "rise", "fall",
                                       "expect", "method", "host",     "body",    NULL};
    struct pt_health_cfg *h = &u->health;
    struct pt_arena *a = &x->cfg->arena;
    if (!pt_config_want_map(x, v, "health"))
        return;
    h->is_enabled = true;
    h->pos = v->pos;
    const struct pt_ynode *timeout = NULL;
    FOR_PAIRS(v, k, val)
    {
        uint64_t n;
        if (!pt_config_known_key(x, k, keys, NULL, "health"))
            continue;
        if (is(k, "type")) {
            if (is(val, "http"))
                h->type = PT_HEALTH_HTTP;
            else if (is(val, "tcp"))
                h->type = PT_HEALTH_TCP;
            else
                pt_config_error(x, val->pos, "expected http or tcp for \"type\"");
        } else if (is(k, "path")) {
            const char *s = pt_config_get_str(x, val, "path");
            if (s && (val->len == 0 || s[0] != '/' || memchr(s, ' ', val->len)))
                pt_config_error(x, val->pos,
                                "\"path\" must start with '/' and hold no spaces, like /healthz");
            else if (s)
                h->path = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "interval")) {
            pt_config_get_ms(x, val, "interval", 100, 3600 * 1000, &h->interval_ms);
        } else if (is(k, "timeout")) {
            timeout = val;
            pt_config_get_ms(x, val, "timeout", 1, 3600 * 1000, &h->timeout_ms);
        } else if (is(k, "rise")) {
            if (pt_config_get_uint(x, val, "rise", 1, 1000, &n))
                h->rise = (uint32_t)n;
        } else if (is(k, "fall")) {
            if (pt_config_get_uint(x, val, "fall", 1, 1000, &n))
                h->fall = (uint32_t)n;
        } else if (is(k, "expect")) {
            load_expect(x, h, val);
        } else if (is(k, "method")) {
            const char *s = pt_config_get_str(x, val, "method");
            if (s && !pt_config_is_token(s, val->len))
                pt_config_error(x, val->pos, "expected a method name like GET or HEAD");
            else if (s)
                h->method = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "host")) {
            const char *s = pt_config_get_str(x, val, "host");
            if (s && (val->len == 0 || memchr(s, ' ', val->len)))
                pt_config_error(x, val->pos, "\"host\" must be a host name, like example.com");
            else if (s)
                h->host = pt_config_strndup(x, a, s, val->len);
        } else {
            const char *s = pt_config_get_str(x, val, "body");
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"body\" must not be empty (leave it out)");
            else if (s)
                h->body = pt_config_strndup(x, a, s, val->len);
        }
    }
    if (h->timeout_ms > h->interval_ms)
        pt_config_error(x, timeout ? timeout->pos : v->pos,
                        "health \"timeout\" (%ums) must not be longer than \"interval\" (%ums)",
                        (unsigned)h->timeout_ms, (unsigned)h->interval_ms);
}

static void load_outlier(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    static const char *const keys[] = {"consecutive_failures", "include_5xx",
                                       "base_ejection_time",   "max_ejection_time",
                                       "max_ejection_percent", NULL};
    struct pt_outlier_cfg *o = &u->outlier;
    if (!pt_config_want_map(x, v, "outlier"))
        return;
    o->is_enabled = true;
    const struct pt_ynode *max_pos = NULL;
    FOR_PAIRS(v, k, val)
    {
        uint64_t n;
        if (!pt_config_known_key(x, k, keys, NULL, "outlier"))
            continue;
        if (is(k, "consecutive_failures")) {
            if (pt_config_get_uint(x, val, "consecutive_failures", 1, 1000, &n))
                o->consecutive_failures = (uint32_t)n;
        } else if (is(k, "include_5xx")) {
            pt_config_get_bool(x, val, "include_5xx", &o->include_5xx);
        } else if (is(k, "base_ejection_time")) {
            pt_config_get_ms(x, val, "base_ejection_time", 1, 24 * 3600 * 1000,
                             &o->base_ejection_time_ms);
        } else if (is(k, "max_ejection_time")) {
            max_pos = val;
            pt_config_get_ms(x, val, "max_ejection_time", 1, 24 * 3600 * 1000,
                             &o->max_ejection_time_ms);
        } else {
            if (pt_config_get_uint(x, val, "max_ejection_percent", 0, 100, &n))
                o->max_ejection_percent = (uint32_t)n;
        }
    }
    if (o->max_ejection_time_ms < o->base_ejection_time_ms)
        pt_config_error(x, max_pos ? max_pos->pos : v->pos,
                        "\"max_ejection_time\" must not be shorter than \"base_ejection_time\"");
}

static void load_retry_on(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    if (!pt_config_want_seq(x, v, "retry_on"))
        return;
    u->retry_on = 0;
    u->retry_statuses = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(uint16_t));
    FOR_ITEMS(v, it)
    {
        if (is(it, "connect_failure")) {
            u->retry_on |= PT_RETRY_CONNECT_FAILURE;
        } else if (is(it, "reset")) {
            u->retry_on |= PT_RETRY_RESET;
        } else if (is(it, "timeout")) {
            u->retry_on |= PT_RETRY_TIMEOUT;
        } else if (it->kind == PT_YNODE_SCALAR && it->len == 3 && it->s[0] == '5' &&
                   it->s[1] >= '0' && it->s[1] <= '9' && it->s[2] >= '0' && it->s[2] <= '9') {
            u->retry_statuses[u->n_retry_statuses++] =
                (uint16_t)(500 + (it->s[1] - '0') * 10 + (it->s[2] - '0'));
        } else {
            pt_config_error(x, it->pos,
                            "expected connect_failure, reset, timeout or a status from 500 to 599 "
                            "in \"retry_on\"");
        }
    }
}

static void load_budget(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    const char *s = pt_config_scalar(x, v, "retry_budget", "a percentage like 20%");
    if (!s)
        return;
    size_t n = v->len;
    if (n > 0 && s[n - 1] == '%')
        n--;
    unsigned pct = 0;
    size_t i = 0;
    for (; i < n && i < 3 && s[i] >= '0' && s[i] <= '9'; i++)
        pct = pct * 10 + (unsigned)(s[i] - '0');
    if (i == 0 || i != n || pct > 100) {
        pt_config_error(x, v->pos, "expected a percentage from 0%% to 100%% for \"retry_budget\"");
        return;
    }
    u->retry_budget_pct = pct;
}

/* allow_private: a list of CIDR blocks. Stricter than trusted_proxies: a block with bits set
   past its length ("10.1.2.3/8") is an error, since in an allow-list that typo silently opens
   the whole /8. */
static void load_allow_private(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u,
                               const struct pt_ynode *v)
{
    if (!pt_config_want_seq(x, v, "allow_private"))
        return;
    struct pt_cidr *l = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*l));
    size_t n = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, "allow_private");
        if (!s)
            continue;
        struct pt_cidr c, host;
        char addr[64];
        const char *slash = strchr(s, '/');
        size_t alen = slash ? (size_t)(slash - s) : strlen(s);
        if (pt_config_parse_cidr(s, &c) < 0 || alen >= sizeof(addr)) {
            pt_config_error(x, it->pos,
                            "expected a CIDR block such as 10.1.0.0/16 or fd00::/8 in "
                            "\"allow_private\", found \"%s\"",
                            s);
            continue;
        }
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        if (pt_config_parse_cidr(addr, &host) == 0 &&
            memcmp(host.addr, c.addr, sizeof(c.addr)) != 0) {
            pt_config_error(x, it->pos,
                            "\"%s\" in \"allow_private\" has address bits set past its prefix "
                            "length: write the network address",
                            s);
            continue;
        }
        l[n++] = c;
    }
    u->allow_private = l;
    u->n_allow_private = n;
}

static void load_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *k, const struct pt_ynode *v)
{
    static const char *const keys[] = {"targets",       "balance",
                                       "keepalive",     "connect_timeout",
                                       "retries",       "hash_key",
                                       "health",        "outlier",
                                       "slow_start",    "retry_on",
                                       "retry_budget",  "per_try_timeout",
                                       "max_pending",   "resolve_interval",
                                       "ca_file",       "tls_verify",
                                       "cert",          "key",
                                       "protocol",      "ssrf_guard",
                                       "allow_private", NULL};
    static const char *const later[] = {"health_check", NULL};
    bool ok_name = k->len > 0 && k->len <= 128;
    for (size_t i = 0; ok_name && i < k->len; i++) {
        unsigned char c = (unsigned char)k->s[i];
        ok_name = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '_' || c == '.';
    }
    if (!ok_name)
        pt_config_error(x, k->pos,
                        "bad upstream name \"%.*s\": use letters, digits, '-', '_' and '.'",
                        shown(k->len), k->s);
    struct pt_upstream_cfg *u = pt_config_new_upstream(x, k->s, k->len, k->pos);
    if (!pt_config_want_map(x, v, u->name))
        return;
    bool has_targets = false;
    const struct pt_ynode *hash_key = NULL, *balance = NULL, *tls_key = NULL, *cert = NULL,
                          *key = NULL, *verify = NULL, *protocol = NULL, *allow = NULL;
    FOR_PAIRS(v, kk, val)
    {
        uint64_t n;
        if (is(kk, "tls") && !kk->is_dup) {
            pt_config_error(x, kk->pos,
                            "unknown key \"tls\" in an upstream: TLS to targets comes from "
                            "https:// target URLs, with ca_file, tls_verify, cert and key");
            continue;
        }
        if (!pt_config_known_key(x, kk, keys, later, "an upstream"))
            continue;
        if (is(kk, "ca_file") || is(kk, "cert") || is(kk, "key")) {
            if (!tls_key)
                tls_key = kk;
            const char *path = pt_config_get_file(x, val, kk->s);
            if (is(kk, "ca_file")) {
                u->ca_file = path;
            } else if (is(kk, "cert")) {
                cert = kk;
                u->cert = path;
            } else {
                key = kk;
                u->key = path;
            }
        } else if (is(kk, "ssrf_guard")) {
            pt_config_get_bool(x, val, "ssrf_guard", &u->ssrf_guard);
        } else if (is(kk, "allow_private")) {
            allow = kk;
            load_allow_private(x, u, val);
        } else if (is(kk, "tls_verify")) {
            verify = val;
            pt_config_get_bool(x, val, "tls_verify", &u->tls_verify);
        } else if (is(kk, "targets")) {
            has_targets = true;
            load_targets(x, u, val);
        } else if (is(kk, "protocol")) {
            protocol = val;
            load_protocol(x, u, val);
        } else if (is(kk, "balance")) {
            balance = val;
            load_balance(x, u, val);
        } else if (is(kk, "hash_key")) {
            hash_key = val;
            load_hash_key(x, u, val);
        } else if (is(kk, "health")) {
            load_health(x, u, val);
        } else if (is(kk, "outlier")) {
            load_outlier(x, u, val);
        } else if (is(kk, "slow_start")) {
            pt_config_get_ms(x, val, "slow_start", 0, 3600 * 1000, &u->slow_start_ms);
        } else if (is(kk, "retry_on")) {
            load_retry_on(x, u, val);
        } else if (is(kk, "retry_budget")) {
            load_budget(x, u, val);
        } else if (is(kk, "per_try_timeout")) {
            pt_config_get_ms(x, val, "per_try_timeout", 1, 3600 * 1000, &u->per_try_timeout_ms);
        } else if (is(kk, "max_pending")) {
            if (pt_config_get_uint(x, val, "max_pending", 0, 1000000, &n))
                u->max_pending = (uint32_t)n;
        } else if (is(kk, "resolve_interval")) {
            pt_config_get_ms(x, val, "resolve_interval", 1000, 24 * 3600 * 1000,
                             &u->resolve_interval_ms);
        } else if (is(kk, "keepalive")) {
            if (pt_config_get_uint(x, val, "keepalive", 0, 100000, &n))
                u->keepalive = (uint32_t)n;
        } else if (is(kk, "connect_timeout")) {
            pt_config_get_ms(x, val, "connect_timeout", 1, 3600 * 1000, &u->connect_timeout_ms);
        } else {
            if (pt_config_get_uint(x, val, "retries", 0, 100, &n))
                u->retries = (uint32_t)n;
        }
    }
    if (!has_targets)
        pt_config_error(x, v->pos, "upstream \"%s\" needs \"targets\"", u->name);
    if (u->balance == PT_BALANCE_HASH && !hash_key && balance)
        pt_config_error(x, balance->pos,
                        "balance \"hash\" needs \"hash_key\" (ip, path, header:NAME, cookie:NAME "
                        "or query:NAME)");
    if (u->balance != PT_BALANCE_HASH && hash_key)
        pt_config_error(x, hash_key->pos, "\"hash_key\" is only used with balance: hash");
    if (cert && !key)
        pt_config_error(x, cert->pos, "\"cert\" needs \"key\" (the client certificate's key)");
    if (key && !cert)
        pt_config_error(x, key->pos, "\"key\" needs \"cert\" (the client certificate)");
    bool any_https = false;
    for (size_t i = 0; i < u->n_targets; i++)
        any_https |= u->targets[i].is_https;
    if (tls_key && has_targets && u->n_targets > 0 && !any_https)
        pt_config_error(x, tls_key->pos, "\"%s\" is only used for https targets", tls_key->s);
    for (size_t i = 0; protocol && i < u->n_targets; i++) {
        const struct pt_target_cfg *t = &u->targets[i];
        if (u->protocol == PT_UPROTO_H2 && !t->is_https)
            pt_config_error(x, t->pos,
                            "protocol h2 runs over TLS: target \"%s\" needs an https:// URL "
                            "(h2c is HTTP/2 over plain TCP)",
                            t->url);
        else if (u->protocol == PT_UPROTO_H2C && t->is_https)
            pt_config_error(x, t->pos,
                            "protocol h2c runs over plain TCP: target \"%s\" needs an http:// "
                            "URL (h2 is HTTP/2 over TLS)",
                            t->url);
    }
    if (allow && !u->ssrf_guard)
        pt_config_warn(x, allow->pos,
                       "\"allow_private\" has no effect without \"ssrf_guard: true\" in "
                       "upstream \"%s\"",
                       u->name);
    if (verify && !u->tls_verify && any_https)
        pt_config_warn(x, verify->pos,
                       "tls_verify is false: the certificates and names of upstream \"%s\"'s "
                       "targets are not checked",
                       u->name);
}

void pt_config_load_upstreams(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    if (is_null(v))
        return;
    if (!pt_config_want_map(x, v, "upstreams"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (k->kind != PT_YNODE_SCALAR) {
            pt_config_error(x, k->pos, "expected an upstream name here, found %s", what_is(k));
            continue;
        }
        if (k->is_dup)
            continue;
        load_upstream(x, k, val);
    }
    x->n_named_ups = x->cfg->n_upstreams;
}
