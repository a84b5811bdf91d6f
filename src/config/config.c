/*
 * config.c - the schema: walks the YAML node tree (yaml_tree.c) and fills struct pt_config.
 * This file holds the entry points, the top level (load_root) and its small sections (workers,
 * limits, trusted_proxies, log, resolver, geoip, server_header); the larger sections have a
 * file each: config_listen.c (listen, tls), config_upstreams.c, config_routes.c (routes and
 * their actions), config_sites.c (sites, hosts, error pages, Netlify files). The typed getters
 * and checks they all use are in config_get.c, declared in config_internal.h.
 *
 * Shape: one function per mapping of the contract (load_root, load_limits, load_upstream,
 * load_route, load_proxy, ...). Each loops over its pairs, checks the key against the keys valid
 * at that spot (an unknown key gets a did-you-mean from the edit distance to them, keys that a
 * later version adds get "not supported yet"), converts the value with the typed getters (config_get.c)
 * and writes the field. A getter that fails reports "FILE:LINE:COL: message" at the value and
 * leaves the default in place, so one pass finds every error up to PT_CFG_MAX_ERRORS instead
 * of stopping at the first. Cross-references are resolved in a fixed order whatever the order
 * in the file: upstreams before sites, so proxy.to can name an upstream defined further down.
 *
 * Memory: the result and everything it points to live in cfg->arena (the struct pt_config
 * itself included); the tree and scratch in ctx->tmp, freed before returning. Out of memory
 * and "too many errors" leave through longjmp to run() (see config_internal.h); nothing
 * between owns anything but arena memory, so nothing leaks.
 *
 * Warnings (pt_config_warn, pt_config_warn_file) are for what loads but is probably not what
 * was meant: a skipped Netlify rule line, a route that can never match. They are collected
 * like errors, sorted, and handed over formatted in cfg->warnings; nothing here logs, so that
 * `check` can print them, `check --strict` fail on them and `run` log them, all in the same
 * "FILE:LINE:COL: warning: message" form.
 *
 * Files the configuration names and target host names: see config_get.c.
 *
 * Rejected: the libyaml document API (see yaml_tree.c); accepting YAML 1.1 booleans yes/no/on/
 * off (they turn country codes and "on" into booleans; YAML 1.2 dropped them); anchors and
 * aliases (a feature few configurations need, and a source of blow-ups).
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "config/netlify.h"
#include "core/common.h"
#include "core/log.h"

#define MAX_WORKERS 1024

static void load_limits(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"header_size", "headers", "uri_size", "body_size",
                                       "header_timeout", "body_timeout", "keepalive_timeout",
                                       "send_timeout", "max_connections", "tunnel_timeout",
                                       "max_tunnels", "auth_hash_queue",
                                       /* config_conn.c */
                                       "max_connections_per_client", "max_requests_per_client",
                                       "body_min_rate", "send_min_rate", NULL};
    struct pt_limits_cfg *lim = &x->cfg->limits;
    const uint64_t gib = 1ull << 30;
    if (!pt_config_want_map(x, v, "limits"))
        return;
    FOR_PAIRS(v, k, val)
    {
        uint64_t n;
        if (!pt_config_known_key(x, k, keys, NULL, "limits"))
            continue;
        if (is(k, "header_size")) {
            if (pt_config_get_size(x, val, "header_size", 1, 64ull << 20, &n))
                lim->header_size = n;
        } else if (is(k, "headers")) {
            if (pt_config_get_uint(x, val, "headers", 1, 65535, &n))
                lim->headers = (uint32_t)n;
        } else if (is(k, "uri_size")) {
            if (pt_config_get_size(x, val, "uri_size", 1, 64ull << 20, &n))
                lim->uri_size = n;
        } else if (is(k, "body_size")) {
            if (pt_config_get_size(x, val, "body_size", 0, 1024 * gib * 1024, &n))
                lim->body_size = n;
        } else if (is(k, "header_timeout")) {
            pt_config_get_ms(x, val, "header_timeout", 1, UINT32_MAX, &lim->header_timeout_ms);
        } else if (is(k, "body_timeout")) {
            pt_config_get_ms(x, val, "body_timeout", 1, UINT32_MAX, &lim->body_timeout_ms);
        } else if (is(k, "keepalive_timeout")) {
            pt_config_get_ms(x, val, "keepalive_timeout", 1, UINT32_MAX,
                             &lim->keepalive_timeout_ms);
        } else if (is(k, "max_connections")) {
            if (pt_config_get_uint(x, val, "max_connections", 1, 1u << 24, &n))
                lim->max_connections = (uint32_t)n;
        } else if (is(k, "tunnel_timeout")) {
            pt_config_get_ms(x, val, "tunnel_timeout", 1, UINT32_MAX, &lim->tunnel_timeout_ms);
        } else if (is(k, "max_tunnels")) {
            if (pt_config_get_uint(x, val, "max_tunnels", 0, 1u << 24, &n))
                lim->max_tunnels = (uint32_t)n;
        } else if (is(k, "auth_hash_queue")) {
            if (pt_config_get_uint(x, val, "auth_hash_queue", 1, 1u << 16, &n))
                lim->auth_hash_queue = (uint32_t)n;
        } else if (pt_config_is_conn_key(k)) {
            pt_config_load_conn_key(x, k, val, lim);
        } else {
            pt_config_get_ms(x, val, "send_timeout", 1, UINT32_MAX, &lim->send_timeout_ms);
        }
    }
}

static void load_trusted(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    struct pt_config *cfg = x->cfg;
    if (is_null(v))
        return;
    if (!pt_config_want_seq(x, v, "trusted_proxies"))
        return;
    cfg->trusted_proxies = pt_config_alloc(x, &cfg->arena, v->len * sizeof(*cfg->trusted_proxies));
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, "trusted_proxies");
        if (!s)
            continue;
        if (pt_config_parse_cidr(s, &cfg->trusted_proxies[cfg->n_trusted_proxies]) < 0) {
            pt_config_error(x, it->pos,
                            "expected an IP address or a CIDR block like 10.0.0.0/8 or "
                            "2001:db8::/32, found \"%.*s\"",
                            shown(it->len), s);
            continue;
        }
        cfg->n_trusted_proxies++;
    }
}

/*
 * A log file for key: its path resolved like every other path (from the configuration file's
 * directory, so that a service started in "/" writes where `check` looked), in the config
 * arena, or NULL after reporting. The file is not created here (`check` creates nothing): an
 * existing file must be writable, else its directory must exist and be writable.
 */
const char *pt_config_get_log_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    char *path = pt_config_get_path(x, v, key, "file");
    if (!path)
        return NULL;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            pt_config_error(x, v->pos, "\"%s\" log \"%.120s\" is a directory", key, path);
            return NULL;
        }
        if (access(path, W_OK) < 0) {
            pt_config_error(x, v->pos, "cannot write \"%s\" log \"%.120s\": %s", key, path,
                            strerror(errno));
            return NULL;
        }
        return path;
    }
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] != '/')
        n--;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%.*s", (int)(n > 1 ? n - 1 : n), path);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        pt_config_error(x, v->pos, "the directory of \"%s\" log \"%.120s\" does not exist", key,
                        path);
        return NULL;
    }
    if (access(dir, W_OK | X_OK) < 0) {
        pt_config_error(x, v->pos,
                        "cannot create \"%s\" log \"%.120s\": its directory is not writable (%s)",
                        key, path, strerror(errno));
        return NULL;
    }
    return path;
}

static void load_log(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"level", "access", "format", NULL};
    struct pt_log_cfg *log = &x->cfg->log;
    if (!pt_config_want_map(x, v, "log"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "log"))
            continue;
        const char *s = pt_config_get_str(x, val, k->s);
        if (!s)
            continue;
        if (is(k, "level")) {
            int lv = pt_log_level_parse(s);
            if (lv < 0)
                pt_config_error(x, val->pos,
                                "expected error, warn, info or debug for \"level\", found "
                                "\"%.*s\"",
                                shown(val->len), s);
            else
                log->level = lv;
        } else if (is(k, "access")) {
            if (val->len == 0)
                pt_config_error(x, val->pos,
                                "expected stdout, stderr, off or a file path for \"access\"");
            else if (is(val, "stdout") || is(val, "stderr") || is(val, "off"))
                log->access = pt_config_strndup(x, &x->cfg->arena, s, val->len);
            else
                log->access = pt_config_get_log_file(x, val, "access");
        } else {
            if (is(val, "combined"))
                log->format = PT_LOG_FORMAT_COMBINED;
            else if (is(val, "json"))
                log->format = PT_LOG_FORMAT_JSON;
            else
                pt_config_error(x, val->pos,
                                "expected combined or json for \"format\", found \"%.*s\"",
                                shown(val->len), s);
        }
    }
}

static void load_workers(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    if (is(v, "auto")) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        x->cfg->workers = n < 1 ? 1 : (n > MAX_WORKERS ? MAX_WORKERS : (uint32_t)n);
        return;
    }
    uint64_t n;
    if (v->kind == PT_YNODE_SCALAR && !is_null(v) && v->len > 0 && v->s[0] >= '0' &&
        v->s[0] <= '9') {
        if (pt_config_get_uint(x, v, "workers", 1, MAX_WORKERS, &n))
            x->cfg->workers = (uint32_t)n;
        return;
    }
    pt_config_error(x, v->pos, "expected a number of threads or auto for \"workers\"");
}

/* One resolver.servers entry: "1.2.3.4", "1.2.3.4:5353", "::1" or "[::1]:5353". Writes the
   c-ares form ("ip:port" or "[ip6]:port") into out; false when it is not one of those. */
static bool parse_dns_server(const char *s, size_t n, char *out, size_t outlen)
{
    char host[64];
    unsigned port = 53;
    const char *h = s, *p = NULL;
    size_t hl = n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return false;
        h = s + 1;
        hl = (size_t)(close - h);
        if (close + 1 < s + n) {
            if (close[1] != ':')
                return false;
            p = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', (size_t)(s + n - colon - 1))) {
            hl = (size_t)(colon - s);
            p = colon + 1;
        }
    }
    if (hl == 0 || hl >= sizeof(host))
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (p) {
        int pn = pt_config_parse_port(p, (size_t)(s + n - p));
        if (pn < 0)
            return false;
        port = (unsigned)pn;
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) == 1)
        snprintf(out, outlen, "%s:%u", host, port);
    else if (inet_pton(AF_INET6, host, buf) == 1)
        snprintf(out, outlen, "[%s]:%u", host, port);
    else
        return false;
    return true;
}

static void load_resolver(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"servers", "timeout", NULL};
    struct pt_resolver_cfg *r = &x->cfg->resolver;
    r->pos = v->pos;
    if (!pt_config_want_map(x, v, "resolver"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "resolver"))
            continue;
        if (is(k, "timeout")) {
            pt_config_get_ms(x, val, "timeout", 100, 60000, &r->timeout_ms);
            continue;
        }
        if (!pt_config_want_seq(x, val, "servers"))
            continue;
        if (val->len == 0) {
            pt_config_error(x, val->pos,
                            "\"servers\" needs at least one address, like "
                            "[\"127.0.0.1:53\"]");
            continue;
        }
        size_t cap = val->len * 97 + 1, used = 0;
        char *csv = pt_config_alloc(x, &x->cfg->arena, cap);
        csv[0] = '\0';
        FOR_ITEMS(val, it)
        {
            const char *s = pt_config_get_str(x, it, "servers");
            char one[96];
            if (!s)
                continue;
            if (!parse_dns_server(s, it->len, one, sizeof(one))) {
                pt_config_error(x, it->pos,
                                "expected an IP address with an optional port for a DNS server, "
                                "like \"127.0.0.1:53\" or \"[::1]:53\", found \"%.*s\"",
                                shown(it->len), s);
                continue;
            }
            int w = snprintf(csv + used, cap - used, "%s%s", used ? "," : "", one);
            if (w > 0)
                used += (size_t)w;
        }
        r->servers = used ? csv : NULL;
    }
}

/* geoip: {database: FILE}. The file is opened and checked with the snapshot (main.c), where
   libmaxminddb reports what is wrong with it. */
static void load_geoip(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"database", NULL};
    struct pt_geoip_cfg *g = &x->cfg->geoip;
    g->is_set = true;
    g->pos = v->pos;
    if (!pt_config_want_map(x, v, "geoip"))
        return;
    bool has_database = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "geoip"))
            continue;
        has_database = true;
        g->pos = val->pos;
        g->database = pt_config_get_file(x, val, "database");
    }
    if (!has_database)
        pt_config_missing(x, v, "database", "geoip");
}

/*
 * server_header: the Server value on every response ("portico" by default), or off / false
 * for none. A value is what a header field may carry (RFC 9110 §5.5: visible characters,
 * spaces inside), at most 256 bytes.
 */
static void load_server_header(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    struct pt_config *cfg = x->cfg;
    if (v->is_bad)
        return;
    if (is(v, "off") || is(v, "false")) {
        cfg->server_header = NULL;
        cfg->server_line = "";
        cfg->server_line_len = 0;
        return;
    }
    if (is(v, "true"))
        return; /* the default */
    const char *s = pt_config_get_str(x, v, "server_header");
    if (!s)
        return;
    bool ok = v->len > 0 && v->len <= 256 && s[0] != ' ' && s[v->len - 1] != ' ';
    for (size_t i = 0; ok && i < v->len; i++) {
        unsigned char c = (unsigned char)s[i];
        ok = c >= 0x20 && c != 0x7f;
    }
    if (!ok) {
        pt_config_error(x, v->pos,
                        "expected off, or a header value (visible characters, at most 256 bytes) "
                        "for \"server_header\"");
        return;
    }
    size_t n = v->len + sizeof("Server: \r\n");
    char *line = pt_config_alloc(x, &cfg->arena, n);
    int w = snprintf(line, n, "Server: %s\r\n", s);
    cfg->server_header = pt_config_strndup(x, &cfg->arena, s, v->len);
    cfg->server_line = line;
    cfg->server_line_len = w > 0 ? (size_t)w : 0;
}

/* A route that takes every request of its site: match "/" + "*" or "*", all methods, no Netlify
   rule conditions. */
static bool is_catch_all(const struct pt_route_cfg *r)
{
    return r->match && !r->nf && r->methods_mask == 0 && !r->methods_other &&
           (strcmp(r->match, "/*") == 0 || strcmp(r->match, "*") == 0);
}

/* Warns at every route (YAML, or a Netlify rule at its file and line) placed after a catch-all
   route of its site: the first match wins, so none of them can ever match. */
static void check_unreachable(struct pt_cfg_ctx *x)
{
    for (size_t i = 0; i < x->cfg->n_sites; i++) {
        const struct pt_site_cfg *site = &x->cfg->sites[i];
        const struct pt_route_cfg *all = NULL;
        for (size_t j = 0; j < site->n_routes; j++) {
            const struct pt_route_cfg *r = &site->routes[j];
            if (!all) {
                all = is_catch_all(r) ? r : NULL;
                continue;
            }
            if (r->nf)
                pt_config_warn_file(x, r->nf->file, r->nf->line, 1,
                                    "this rule can never match: the route at %s:%d (match "
                                    "\"%s\", all methods) takes every request first",
                                    x->name, all->pos.line, all->match);
            else
                pt_config_warn(x, r->pos,
                               "this route can never match: the route at line %d (match \"%s\", "
                               "all methods) takes every request first",
                               all->pos.line, all->match);
        }
    }
}

static void load_root(struct pt_cfg_ctx *x, const struct pt_ynode *root)
{
    static const char *const keys[] = {
        "workers",     "shutdown_timeout", "listen", "limits",   "http2", "trusted_proxies",
        "log",         "upstreams",        "sites",  "routes",   "tls",   "resolver",
        "geoip",       "server_header",    "errors", "pid_file", "admin", "cache",
        "rate_limits", "waf_crs",          NULL};
    static const char *const later[] = {"metrics", "redis", "rules", "acl", "waf", NULL};
    struct pt_config *cfg = x->cfg;
    if (root->kind != PT_YNODE_MAP) {
        pt_config_error(x, root->pos,
                        "expected a mapping of settings (listen:, sites:, ...) at the top level, "
                        "found %s",
                        what_is(root));
        return;
    }
    const struct pt_ynode *sites = NULL, *routes = NULL, *routes_key = NULL;
    bool has_listen = false;
    FOR_PAIRS(root, k, v)
    {
        if (is(k, "acme") && !k->is_dup) {
            pt_config_error(x, k->pos,
                            "key \"acme\" is not supported here; use tls.acme (tls: {acme: "
                            "{directory: URL, storage: DIR}})");
            continue;
        }
        if (!pt_config_known_key(x, k, keys, later, "the top level"))
            continue;
        if (is(k, "workers")) {
            load_workers(x, v);
        } else if (is(k, "shutdown_timeout")) {
            pt_config_get_ms(x, v, "shutdown_timeout", 0, UINT32_MAX, &cfg->shutdown_timeout_ms);
        } else if (is(k, "listen")) {
            has_listen = true;
            pt_config_load_listen(x, v);
        } else if (is(k, "limits")) {
            load_limits(x, v);
        } else if (is(k, "http2")) {
            pt_config_load_http2(x, v);
        } else if (is(k, "trusted_proxies")) {
            load_trusted(x, v);
        } else if (is(k, "log")) {
            load_log(x, v);
        } else if (is(k, "upstreams")) {
            pt_config_load_upstreams(x, v);
        } else if (is(k, "sites")) {
            sites = v;
        } else if (is(k, "tls")) {
            pt_config_load_tls(x, v);
        } else if (is(k, "resolver")) {
            load_resolver(x, v);
        } else if (is(k, "geoip")) {
            load_geoip(x, v);
        } else if (is(k, "server_header")) {
            load_server_header(x, v);
        } else if (is(k, "errors")) {
            pt_config_load_errors(x, v, &cfg->error_pages, &cfg->n_error_pages);
        } else if (is(k, "pid_file")) {
            cfg->pid_file = pt_config_get_path(x, v, "pid_file", "file");
        } else if (is(k, "admin")) {
            pt_config_load_admin(x, v);
        } else if (is(k, "cache")) {
            pt_config_load_cache(x, v);
        } else if (is(k, "rate_limits")) {
            pt_config_load_rate_limits(x, v);
        } else if (is(k, "waf_crs")) {
            pt_config_load_waf_crs(x, v);
        } else {
            routes = v;
            routes_key = k;
        }
    }
    if (!has_listen)
        pt_config_error(x, root->pos,
                        "missing required key \"listen\" (a list like - addr: \":8080\")");
    if (!sites && !routes)
        pt_config_error(x, root->pos,
                        "missing required key \"sites\" (or \"routes\" for a single site)");
    size_t cap = (sites && sites->kind == PT_YNODE_SEQ ? sites->len : 0) + 1;
    cfg->sites = pt_config_alloc(x, &cfg->arena, cap * sizeof(*cfg->sites));
    if (sites && pt_config_want_seq(x, sites, "sites")) {
        if (sites->len == 0 && !routes)
            pt_config_error(x, sites->pos, "\"sites\" needs at least one site");
        FOR_ITEMS(sites, it)
        {
            pt_config_load_site(x, it, &cfg->sites[cfg->n_sites++]);
        }
    }
    if (routes) {
        /* The shorthand is a default site in every respect, its Netlify files included. */
        struct pt_site_cfg *site = &cfg->sites[cfg->n_sites++];
        site->pos = routes_key->pos;
        pt_config_load_routes(x, routes, site);
        pt_config_load_netlify(x, site, false, false);
        pt_config_finish_auth(x, site);
    }
    pt_config_check_sites(x);
    pt_config_check_ip(x);
    pt_config_finish_waf(x);
    pt_config_check_tls_listeners(x);
    pt_config_check_admin(x);
    check_unreachable(x);
}

static void set_defaults(struct pt_config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = n < 1 ? 1 : (n > MAX_WORKERS ? MAX_WORKERS : (uint32_t)n);
    cfg->shutdown_timeout_ms = 30000;
    cfg->limits.header_size = 16u << 10;
    cfg->limits.headers = 100;
    cfg->limits.uri_size = 8u << 10;
    cfg->limits.body_size = 1ull << 30;
    cfg->limits.header_timeout_ms = 10000;
    cfg->limits.body_timeout_ms = 30000;
    cfg->limits.keepalive_timeout_ms = 60000;
    cfg->limits.send_timeout_ms = 30000;
    cfg->limits.tunnel_timeout_ms = 3600u * 1000;
    cfg->limits.max_tunnels = 10000;
    cfg->limits.body_min_rate = 1024;
    cfg->limits.send_min_rate = 1024;
    cfg->limits.auth_hash_queue = 64;
    cfg->http2.max_concurrent_streams = 100;
    cfg->http2.initial_window_size = 65535;
    cfg->log.level = PT_LOG_INFO;
    cfg->log.access = "stdout";
    cfg->log.format = PT_LOG_FORMAT_COMBINED;
    cfg->tls.min_version = "1.2";
    cfg->tls.session_tickets = true;
    cfg->tls.ticket_rotation_ms = 12u * 3600 * 1000;
    cfg->tls.session_cache_size = 20480;
    cfg->resolver.timeout_ms = PT_CONFIG_RESOLVER_TIMEOUT_MS;
    cfg->server_header = "portico";
    cfg->server_line = "Server: portico\r\n";
    cfg->server_line_len = strlen(cfg->server_line);
    pt_config_cache_defaults(&cfg->cache);
    cfg->rate_limit_keys = 1000000;
    cfg->rate_limit_delayed = 1024;
}

/* The part of a load that may longjmp; ctx lives in the caller so it survives the jump. */
static int run(struct pt_cfg_ctx *x)
{
    if (setjmp(x->jb))
        return PT_ERR;
    set_defaults(x->cfg);
    x->cfg->path = pt_config_strndup(x, &x->cfg->arena, x->name, strlen(x->name));
    const struct pt_ynode *root = pt_config_yaml_tree(x);
    if (!root && x->errs.n == 0) {
        struct pt_cfg_pos start = {1, 1};
        pt_config_error(x, start,
                        "the file is empty: a configuration needs at least listen: "
                        "and sites:");
    }
    if (root && is_null(root)) {
        pt_config_error(x, root->pos,
                        "the file is empty: a configuration needs at least "
                        "listen: and sites:");
        root = NULL;
    }
    if (root)
        load_root(x, root);
    if (x->errs.n == 0)
        pt_config_collect_warnings(x);
    return x->errs.n ? PT_ERR : PT_OK;
}

/*
 * Loads a configuration from buf (len bytes, need not be NUL-terminated; borrowed). name is
 * used in messages. On success returns PT_OK and *out (caller frees with pt_config_free); on
 * failure PT_ERR, *out untouched, err holds the messages. Does not block.
 */
int pt_config_load_buf(const char *name, const char *buf, size_t len, struct pt_config **out,
                       char *err, size_t errlen)
{
    int rc = PT_ERR;
    struct pt_arena a;
    if (err && errlen)
        err[0] = '\0';
    if (!name)
        name = "<config>";
    struct pt_cfg_ctx *x = calloc(1, sizeof(*x));
    if (!x) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory while loading the configuration", name);
        return PT_ERR;
    }
    x->name = name;
    x->buf = buf ? buf : "";
    x->len = buf ? len : 0;
    pt_arena_init(&x->tmp, 16384);
    pt_arena_init(&a, 16384);
    x->cfg = pt_arena_alloc(&a, sizeof(*x->cfg));
    if (!x->cfg) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory while loading the configuration", name);
        goto out;
    }
    x->cfg->arena = a; /* from here on the arena lives inside the config it owns */
    if (x->len > PT_CFG_MAX_FILE) {
        struct pt_cfg_pos start = {1, 1};
        x->errs.items[0].pos = start;
        snprintf(x->errs.items[0].msg, sizeof(x->errs.items[0].msg),
                 "the file is larger than %u MiB; that is not a configuration",
                 PT_CFG_MAX_FILE >> 20);
        x->errs.n = 1;
    } else {
        rc = run(x);
    }
    if (x->has_event)
        yaml_event_delete(&x->ev);
    if (x->has_parser)
        yaml_parser_delete(&x->parser);
    if (rc == PT_OK && x->errs.n == 0) {
        *out = x->cfg;
    } else {
        rc = PT_ERR;
        pt_config_format_errors(x->name, &x->errs, err, errlen);
        pt_config_free(x->cfg);
    }
out:
    pt_arena_free(&x->tmp);
    free(x);
    return rc;
}

/*
 * Reads path (at most PT_CFG_MAX_FILE bytes) and loads it as pt_config_load_buf does. Errors
 * reading the file come as "FILE: message" without a position.
 */
int pt_config_load(const char *path, struct pt_config **out, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = PT_ERR;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return PT_ERR;
    }
    buf = malloc(PT_CFG_MAX_FILE + 1);
    if (!buf) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, PT_CFG_MAX_FILE + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (err && errlen)
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > PT_CFG_MAX_FILE) {
            if (err && errlen)
                snprintf(err, errlen, "%s: the file is larger than %u MiB", path,
                         PT_CFG_MAX_FILE >> 20);
            goto out;
        }
    }
    rc = pt_config_load_buf(path, buf, len, out, err, errlen);
out:
    free(buf);
    close(fd);
    return rc;
}

/* Frees cfg and everything it points to (NULL is fine). */
void pt_config_free(struct pt_config *cfg)
{
    if (!cfg)
        return;
    /* The API's header values are secrets (admin/secrets.h): none outlives its configuration. */
    for (size_t i = 0; i < cfg->n_sites; i++)
        for (size_t r = 0; cfg->sites[i].is_api && r < cfg->sites[i].n_routes; r++) {
            const struct pt_header_ops *ops = &cfg->sites[i].routes[r].proxy.request;
            for (size_t k = 0; k < ops->n_set; k++)
                explicit_bzero((char *)ops->set[k].value, ops->set[k].value_len);
        }
    struct pt_arena a = cfg->arena; /* cfg itself lives in the arena: copy before freeing */
    pt_arena_free(&a);
}
