/*
 * config_ip.c - the `ip:` key of a site and of a route (struct pt_ip_cfg), IP rules checked by
 * the guard (guard/ip.c).
 *
 *     ip: {allow: [CIDR...], deny: [CIDR...], allow_files: [FILE...], deny_files: [FILE...],
 *          countries: {allow: [CC...], deny: [CC...]}}
 *
 * Entries are parsed here with pt_config_parse_cidr into plain arrays; compiling them into
 * sorted, merged ranges is the guard's (the server does it for each snapshot, so `check` only
 * validates). A file holds one address or CIDR per line, with "#" comments and blank lines; it
 * is read at load, so a reload picks up its changes, and a bad line is reported as FILE:LINE.
 * Arrays grow by doubling in the load's scratch arena and are copied once into the
 * configuration's arena. Countries need the top-level geoip: database (pt_config_check_ip).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>

#include "config/config_internal.h"

struct cidr_vec {
    struct pt_cidr *v;
    size_t n, cap;
};

static void push(struct pt_cfg_ctx *x, struct cidr_vec *vec, const struct pt_cidr *c)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 16;
        struct pt_cidr *v = pt_config_alloc(x, &x->tmp, cap * sizeof(*v));
        if (vec->n)
            memcpy(v, vec->v, vec->n * sizeof(*v));
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = *c;
}

static void load_inline(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                        struct cidr_vec *vec)
{
    if (!pt_config_want_seq(x, v, key))
        return;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, key);
        struct pt_cidr c;
        if (!s)
            continue;
        if (pt_config_parse_cidr(s, &c) < 0) {
            pt_config_error(x, it->pos,
                            "expected an IP address or a CIDR block like 10.0.0.0/8 or "
                            "2001:db8::/32 in \"%s\", found \"%.60s\"",
                            key, s);
            continue;
        }
        push(x, vec, &c);
    }
}

/* One file: a CIDR or address per line; "#" starts a comment; blank lines are skipped. */
static void load_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                      struct cidr_vec *vec)
{
    const char *path = pt_config_get_path(x, v, key, "file");
    if (!path)
        return;
    FILE *f = fopen(path, "re");
    if (!f) {
        pt_config_error(x, v->pos, "cannot read \"%s\" file \"%.200s\": %s", key, path,
                        strerror(errno));
        return;
    }
    char line[512];
    unsigned lineno = 0, bad = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = line, *e = line + strlen(line);
        while (*s && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (*s == '\0')
            continue;
        struct pt_cidr c;
        if (pt_config_parse_cidr(s, &c) < 0) {
            if (bad++ < 5)
                pt_config_error(x, v->pos,
                                "%s:%u: expected an IP address or a CIDR block like "
                                "10.0.0.0/8, found \"%.60s\"",
                                path, lineno, s);
            continue;
        }
        push(x, vec, &c);
    }
    if (ferror(f))
        pt_config_error(x, v->pos, "cannot read \"%s\" file \"%.200s\"", key, path);
    fclose(f);
}

static void load_files(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                       struct cidr_vec *vec)
{
    if (!pt_config_want_seq(x, v, key))
        return;
    FOR_ITEMS(v, it)
    {
        load_file(x, it, key, vec);
    }
}

static void load_codes(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                       uint16_t **out, size_t *n_out)
{
    if (!pt_config_want_seq(x, v, key))
        return;
    uint16_t *codes = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*codes));
    size_t n = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, key);
        if (!s)
            continue;
        if (it->len != 2 || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1])) {
            pt_config_error(x, it->pos,
                            "expected a two-letter country code (ISO 3166-1 alpha-2) like "
                            "\"DE\" in \"%s\", found \"%.60s\"",
                            key, s);
            continue;
        }
        codes[n++] = (uint16_t)(toupper((unsigned char)s[0]) << 8 | toupper((unsigned char)s[1]));
    }
    *out = codes;
    *n_out = n;
}

static void load_countries(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_ip_cfg *ip)
{
    static const char *const keys[] = {"allow", "deny", NULL};
    if (!pt_config_want_map(x, v, "countries"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "countries"))
            continue;
        if (is(k, "allow")) {
            load_codes(x, val, "allow", &ip->allow_cc, &ip->n_allow_cc);
            if (ip->n_allow_cc == 0)
                pt_config_error(x, val->pos,
                                "\"countries.allow\" is empty: it would refuse "
                                "every request; leave it out instead");
        } else {
            load_codes(x, val, "deny", &ip->deny_cc, &ip->n_deny_cc);
        }
    }
}

static struct pt_cidr *keep(struct pt_cfg_ctx *x, const struct cidr_vec *vec)
{
    if (vec->n == 0)
        return NULL;
    struct pt_cidr *v = pt_config_alloc(x, &x->cfg->arena, vec->n * sizeof(*v));
    memcpy(v, vec->v, vec->n * sizeof(*v));
    return v;
}

void pt_config_load_ip(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_ip_cfg **out)
{
    static const char *const keys[] = {"allow",      "deny",      "allow_files",
                                       "deny_files", "countries", NULL};
    if (!pt_config_want_map(x, v, "ip"))
        return;
    struct pt_ip_cfg *ip = pt_config_alloc(x, &x->cfg->arena, sizeof(*ip));
    memset(ip, 0, sizeof(*ip));
    ip->pos = v->pos;
    struct cidr_vec allow = {0}, deny = {0};
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "ip"))
            continue;
        if (is(k, "allow")) {
            ip->has_allow = true;
            load_inline(x, val, "allow", &allow);
        } else if (is(k, "deny")) {
            load_inline(x, val, "deny", &deny);
        } else if (is(k, "allow_files")) {
            ip->has_allow = true;
            load_files(x, val, "allow_files", &allow);
        } else if (is(k, "deny_files")) {
            load_files(x, val, "deny_files", &deny);
        } else {
            load_countries(x, val, ip);
        }
    }
    ip->allow = keep(x, &allow);
    ip->n_allow = allow.n;
    ip->deny = keep(x, &deny);
    ip->n_deny = deny.n;
    ip->next = x->cfg->ips;
    x->cfg->ips = ip;
    *out = ip;
}

void pt_config_check_ip(struct pt_cfg_ctx *x)
{
    if (x->cfg->geoip.database)
        return;
    for (const struct pt_ip_cfg *ip = x->cfg->ips; ip; ip = ip->next)
        if (ip->n_allow_cc || ip->n_deny_cc)
            pt_config_error(x, ip->pos,
                            "\"ip\" names countries: they need the top-level \"geoip\" "
                            "database (geoip: {database: FILE})");
}
