/*
 * config_admin.c - the admin: section: where the admin listener binds, its TLS and client
 * certificates, its tokens file and audit log, and the settings of the rules API that other
 * code reads (store, key_file, allow_private, ca_file).
 *
 * An admin: section turns the admin listener on; without one there is none. Its address
 * defaults to the loopback 127.0.0.1:9900. Anything else than a loopback address needs tls:
 * bearer tokens would otherwise cross the network in clear, so that is an error at the listen
 * value, not a warning. The tokens file must exist here; its lines are parsed by the admin
 * layer (admin/tokens.c) when the snapshot is built, so `portico check` reports them too.
 * Rejected: taking the certificates from the top-level tls: section (the admin listener is
 * reached under another name than the sites, often with another CA).
 */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"

#define ADMIN_DEFAULT_LISTEN "127.0.0.1:9900"

static bool is_loopback(const struct pt_sockaddr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return (ntohl(a->u.in.sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&a->u.in6.sin6_addr) ||
           (IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr) && a->u.in6.sin6_addr.s6_addr[12] == 127);
}

static void load_tls(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_admin_cfg *ad)
{
    static const char *const keys[] = {"cert", "key", NULL};
    ad->tls_pos = v->pos;
    if (!pt_config_want_map(x, v, "tls"))
        return;
    bool has_cert = false, has_key = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "admin.tls"))
            continue;
        if (is(k, "cert")) {
            has_cert = true;
            ad->tls_cert = pt_config_get_file(x, val, "cert");
        } else {
            has_key = true;
            ad->tls_key = pt_config_get_file(x, val, "key");
        }
    }
    if (!has_cert)
        pt_config_missing(x, v, "cert", "admin.tls");
    if (!has_key)
        pt_config_missing(x, v, "key", "admin.tls");
}

static void load_allow_private(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                               struct pt_admin_cfg *ad)
{
    struct pt_config *cfg = x->cfg;
    if (is_null(v) || !pt_config_want_seq(x, v, "allow_private"))
        return;
    ad->allow_private = pt_config_alloc(x, &cfg->arena, (v->len + 1) * sizeof(struct pt_cidr));
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, "allow_private");
        if (!s)
            continue;
        if (pt_config_parse_cidr(s, &ad->allow_private[ad->n_allow_private]) < 0) {
            pt_config_error(x, it->pos,
                            "expected an IP address or a CIDR block like 10.0.0.0/8 or "
                            "fd00::/8 in \"allow_private\", found \"%.*s\"",
                            shown(it->len), s);
            continue;
        }
        ad->n_allow_private++;
    }
}

void pt_config_load_admin(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"listen",    "tls",   "client_ca", "tokens_file",
                                       "audit_log", "store", "key_file",  "allow_private",
                                       "ca_file",   NULL};
    struct pt_config *cfg = x->cfg;
    struct pt_admin_cfg *ad = &cfg->admin;
    ad->is_set = true;
    ad->pos = v->pos;
    if (!pt_config_want_map(x, v, "admin"))
        return;
    const struct pt_ynode *listen_val = NULL, *ca_key = NULL, *store_key = NULL;
    bool has_tokens = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "admin"))
            continue;
        if (is(k, "listen")) {
            const char *s = pt_config_get_str(x, val, "listen");
            if (!s)
                continue;
            const char *why = pt_config_parse_listen_addr(s, val->len, &ad->addr);
            if (why) {
                pt_config_error(x, val->pos, "bad admin listen address \"%.*s\": %s",
                                shown(val->len), s, why);
                continue;
            }
            ad->listen_text = pt_config_strndup(x, &cfg->arena, s, val->len);
            listen_val = val;
        } else if (is(k, "tls")) {
            load_tls(x, val, ad);
        } else if (is(k, "client_ca")) {
            ca_key = k;
            ad->client_ca = pt_config_get_file(x, val, "client_ca");
        } else if (is(k, "tokens_file")) {
            has_tokens = true;
            ad->tokens_file = pt_config_get_file(x, val, "tokens_file");
        } else if (is(k, "audit_log")) {
            ad->audit_log = pt_config_get_log_file(x, val, "audit_log");
        } else if (is(k, "store")) {
            store_key = k;
            ad->store = pt_config_get_path(x, val, "store", "file");
        } else if (is(k, "key_file")) {
            ad->key_file = pt_config_get_path(x, val, "key_file", "file");
        } else if (is(k, "allow_private")) {
            load_allow_private(x, val, ad);
        } else {
            ad->ca_file = pt_config_get_file(x, val, "ca_file");
        }
    }
    if (!has_tokens)
        pt_config_missing(x, v, "tokens_file", "admin");
    /* Header secrets are sealed at rest: a store without a key would hold them in clear. */
    if (store_key && ad->store && !ad->key_file)
        pt_config_error(x, store_key->pos,
                        "\"store\" needs \"key_file\" (the key that encrypts the header secrets "
                        "of the rules; make one with: portico keygen FILE)");
    if (!listen_val) {
        ad->listen_text = ADMIN_DEFAULT_LISTEN;
        (void)pt_config_parse_listen_addr(ADMIN_DEFAULT_LISTEN, strlen(ADMIN_DEFAULT_LISTEN),
                                          &ad->addr);
    }
    ad->is_loopback = is_loopback(&ad->addr);
    bool is_tls = ad->tls_cert && ad->tls_key;
    if (listen_val && !ad->is_loopback && !is_tls)
        pt_config_error(x, listen_val->pos,
                        "admin listen address \"%s\" is not a loopback address: it needs tls "
                        "(admin.tls: {cert: FILE, key: FILE}), or bind 127.0.0.1 or [::1]",
                        ad->listen_text);
    if (ca_key && ad->tls_pos.line == 0)
        pt_config_error(x, ca_key->pos,
                        "\"client_ca\" is only used with admin.tls (client certificates are "
                        "checked in the TLS handshake)");
}

/* Whether a and b (one family) cannot both be bound: the same address and port, or one is the
   wildcard of the other's port (IPv6 sockets are IPV6_V6ONLY, core/sock.c). */
static bool clashes(const struct pt_sockaddr *a, const struct pt_sockaddr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return false;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in.sin_port == b->u.in.sin_port &&
               (a->u.in.sin_addr.s_addr == b->u.in.sin_addr.s_addr ||
                a->u.in.sin_addr.s_addr == htonl(INADDR_ANY) ||
                b->u.in.sin_addr.s_addr == htonl(INADDR_ANY));
    return a->u.in6.sin6_port == b->u.in6.sin6_port &&
           (IN6_ARE_ADDR_EQUAL(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr) ||
            IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr) ||
            IN6_IS_ADDR_UNSPECIFIED(&b->u.in6.sin6_addr));
}

void pt_config_check_admin(struct pt_cfg_ctx *x)
{
    const struct pt_config *cfg = x->cfg;
    const struct pt_admin_cfg *ad = &cfg->admin;
    if (!ad->is_set || !ad->listen_text)
        return;
    for (size_t i = 0; i < cfg->n_listens; i++) {
        const struct pt_listen_cfg *l = &cfg->listens[i];
        if (l->addr_text && clashes(&l->addr, &ad->addr)) {
            pt_config_error(x, ad->pos,
                            "admin listen address \"%s\" clashes with listener \"%s\" (line %d): "
                            "the admin listener needs a port of its own",
                            ad->listen_text, l->addr_text, l->pos.line);
            return;
        }
    }
}
