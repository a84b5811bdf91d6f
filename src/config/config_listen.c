/*
 * config_listen.c - the listen: list (addresses, tls: true, http2, client certificates),
 * the tls: section (certificates, protocol settings, acme:) and the http2: section (settings of
 * HTTP/2 client connections).
 *
 * Listeners are checked against each other (two that overlap, like ":8080" and
 * "127.0.0.1:8080", are an error at the second) and against tls: once the whole file is read
 * (pt_config_check_tls_listeners: a TLS listener needs a certificate or acme:). Certificate
 * files are checked for existence only; tls/ parses them when the snapshot is built.
 */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/common.h"

/* ---- top-level sections ----------------------------------------------------------------- */

/*
 * "0.0.0.0:8080", "[::]:8080", "127.0.0.1:8080", ":8080" (all IPv4 addresses). Returns NULL on
 * success or what is wrong.
 */
const char *pt_config_parse_listen_addr(const char *s, size_t n, struct pt_sockaddr *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    size_t hl;
    bool v6 = false;
    memset(out, 0, sizeof(*out));
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return "missing ']' after the IPv6 address";
        hl = (size_t)(rb - s - 1);
        if (hl >= sizeof(host))
            return "expected an address like 0.0.0.0:8080, [::]:8080 or :8080";
        memcpy(host, s + 1, hl);
        colon = rb + 1;
        if (colon >= s + n || *colon != ':')
            return "a port is required, like [::]:8080";
        v6 = true;
    } else {
        colon = memrchr(s, ':', n);
        if (!colon)
            return "a port is required, like 0.0.0.0:8080 or :8080";
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return "expected an address like 0.0.0.0:8080, [::]:8080 or :8080";
        memcpy(host, s, hl);
    }
    host[hl] = '\0';
    int port = pt_config_parse_port(colon + 1, (size_t)(s + n - colon - 1));
    if (port < 0)
        return "the port must be a number from 1 to 65535";
    if (v6) {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) != 1)
            return "not a valid IPv6 address";
        out->len = sizeof(out->u.in6);
        return NULL;
    }
    out->u.in.sin_family = AF_INET;
    out->u.in.sin_port = htons((uint16_t)port);
    if (hl == 0)
        out->u.in.sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &out->u.in.sin_addr) != 1)
        return "expected an IP address before the port (IPv6 in brackets: [::1]:8080)";
    out->len = sizeof(out->u.in);
    return NULL;
}

static void load_client_auth(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                             struct pt_listen_cfg *l)
{
    static const char *const all[] = {"none", "optional", "required", NULL};
    const char *s = pt_config_get_str(x, v, "client_auth");
    if (!s)
        return;
    for (size_t i = 0; all[i]; i++) {
        if (is(v, all[i])) {
            l->client_auth = (int)i; /* all[] follows enum pt_client_auth */
            return;
        }
    }
    const char *best = pt_config_nearest(s, v->len, all, SIZE_MAX);
    if (best)
        pt_config_error(x, v->pos, "unknown client_auth \"%.*s\"; did you mean \"%s\"?",
                        shown(v->len), s, best);
    else
        pt_config_error(x, v->pos,
                        "expected none, optional or required for \"client_auth\", found \"%.*s\"",
                        shown(v->len), s);
}

/* A header name the operator chooses (a token, at most 128 bytes), or NULL after reporting. */
static const char *get_header_name(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    const char *s = pt_config_get_str(x, v, key);
    if (!s)
        return NULL;
    if (v->len == 0 || v->len > 128 || !pt_config_is_token(s, v->len)) {
        pt_config_error(x, v->pos, "expected a header name like X-Client-Cert for \"%s\"", key);
        return NULL;
    }
    return pt_config_strndup(x, &x->cfg->arena, s, v->len);
}

static void load_client_headers(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                struct pt_listen_cfg *l)
{
    static const char *const keys[] = {"subject", "fingerprint", NULL};
    if (!pt_config_want_map(x, v, "client_cert_headers"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "client_cert_headers"))
            continue;
        if (is(k, "subject"))
            l->client_subject_header = get_header_name(x, val, "subject");
        else
            l->client_fingerprint_header = get_header_name(x, val, "fingerprint");
        if (l->client_subject_header && l->client_fingerprint_header &&
            strcasecmp(l->client_subject_header, l->client_fingerprint_header) == 0) {
            pt_config_error(x, val->pos,
                            "\"subject\" and \"fingerprint\" need two different "
                            "header names");
            l->client_fingerprint_header = NULL;
        }
    }
}

static void load_certificates(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_tls_cfg *t)
{
    static const char *const keys[] = {"cert", "key", NULL};
    if (!pt_config_want_seq(x, v, "certificates"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"certificates\" needs at least one {cert: FILE, key: FILE}");
        return;
    }
    t->certificates = pt_config_alloc(x, &x->cfg->arena, v->len * sizeof(*t->certificates));
    FOR_ITEMS(v, it)
    {
        if (it->kind != PT_YNODE_MAP) {
            pt_config_error(x, it->pos,
                            "expected a mapping like {cert: site.pem, key: site.key} in "
                            "\"certificates\", found %s",
                            what_is(it));
            continue;
        }
        struct pt_tls_cert_cfg *c = &t->certificates[t->n_certificates++];
        c->pos = it->pos;
        bool has_cert = false, has_key = false;
        FOR_PAIRS(it, k, val)
        {
            if (!pt_config_known_key(x, k, keys, NULL, "a certificate"))
                continue;
            if (is(k, "cert")) {
                has_cert = true;
                c->cert = pt_config_get_file(x, val, "cert");
            } else {
                has_key = true;
                c->key = pt_config_get_file(x, val, "key");
            }
        }
        if (!has_cert)
            pt_config_missing(x, it, "cert", "a certificate");
        if (!has_key)
            pt_config_missing(x, it, "key", "a certificate");
    }
}

/*
 * tls.acme: {email, directory, ca_root, storage}. The storage directory is only checked here
 * (a directory, or absent with an existing parent): the ACME manager creates it (0700) when it
 * starts, so that `portico check` and the fuzzer never create directories.
 */
static void load_acme(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_acme_cfg *ac)
{
    static const char *const keys[] = {"email", "directory", "ca_root", "storage", NULL};
    struct pt_arena *a = &x->cfg->arena;
    if (!pt_config_want_map(x, v, "acme"))
        return;
    ac->is_set = true;
    ac->pos = v->pos;
    bool has_dir = false, has_storage = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "acme"))
            continue;
        if (is(k, "email")) {
            const char *s = pt_config_get_str(x, val, "email");
            if (!s)
                continue;
            const char *at = memchr(s, '@', val->len);
            bool ok = at && at != s && at + 1 < s + val->len && val->len <= 254;
            for (size_t i = 0; ok && i < val->len; i++)
                ok = (unsigned char)s[i] > 0x20 && s[i] != 0x7f && s[i] != ',' && s[i] != '"';
            if (!ok)
                pt_config_error(x, val->pos,
                                "expected an e-mail address like admin@example.com for \"email\"");
            else
                ac->email = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "directory")) {
            has_dir = true;
            const char *s = pt_config_get_str(x, val, "directory");
            if (!s)
                continue;
            struct pt_cfg_url u;
            const char *why = pt_config_parse_url(s, val->len, &u);
            if (!why && !u.is_https)
                why = "the ACME directory must be an https:// URL";
            if (why)
                pt_config_error(x, val->pos, "\"directory\": %s", why);
            else
                ac->directory = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "ca_root")) {
            ac->ca_root = pt_config_get_file(x, val, "ca_root");
        } else {
            has_storage = true;
            const char *s = pt_config_get_str(x, val, "storage");
            if (!s)
                continue;
            if (val->len == 0) {
                pt_config_error(x, val->pos, "\"storage\" must name a directory");
                continue;
            }
            char *path = pt_config_resolve_path(x, s, val->len);
            struct stat st;
            if (stat(path, &st) == 0) {
                if (!S_ISDIR(st.st_mode)) {
                    pt_config_error(x, val->pos, "\"storage\" \"%.120s\" is not a directory", path);
                    continue;
                }
            } else {
                /* absent: its parent must exist so that the manager can create it */
                size_t n = strlen(path);
                while (n > 1 && path[n - 1] == '/')
                    n--;
                while (n > 0 && path[n - 1] != '/')
                    n--;
                char parent[4096];
                snprintf(parent, sizeof(parent), "%.*s", (int)(n > 1 ? n - 1 : n), path);
                if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode)) {
                    pt_config_error(x, val->pos,
                                    "\"storage\" directory \"%.120s\" does not exist and "
                                    "neither does its parent",
                                    path);
                    continue;
                }
            }
            ac->storage = path;
        }
    }
    if (!has_dir)
        pt_config_missing(x, v, "directory", "acme");
    if (!has_storage)
        pt_config_missing(x, v, "storage", "acme");
}

void pt_config_load_tls(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"certificates",
                                       "min_version",
                                       "ciphers",
                                       "ciphersuites",
                                       "session_tickets",
                                       "ticket_rotation",
                                       "session_cache_size",
                                       "acme",
                                       NULL};
    struct pt_tls_cfg *t = &x->cfg->tls;
    struct pt_arena *a = &x->cfg->arena;
    if (!pt_config_want_map(x, v, "tls"))
        return;
    t->is_set = true;
    t->pos = v->pos;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "tls"))
            continue;
        if (is(k, "certificates")) {
            load_certificates(x, val, t);
        } else if (is(k, "min_version")) {
            if (is(val, "1.2") || is(val, "1.3"))
                t->min_version = is(val, "1.2") ? "1.2" : "1.3";
            else
                pt_config_error(x, val->pos,
                                "expected \"1.2\" or \"1.3\" for \"min_version\" (TLS 1.0 and "
                                "1.1 are never offered)");
        } else if (is(k, "ciphers") || is(k, "ciphersuites")) {
            const char *s = pt_config_get_str(x, val, k->s);
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"%s\" must not be empty (leave it out)", k->s);
            else if (s && is(k, "ciphers"))
                t->ciphers = pt_config_strndup(x, a, s, val->len);
            else if (s)
                t->ciphersuites = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "session_tickets")) {
            pt_config_get_bool(x, val, "session_tickets", &t->session_tickets);
        } else if (is(k, "ticket_rotation")) {
            uint32_t ms;
            if (!pt_config_get_ms(x, val, "ticket_rotation", 1, 7u * 24 * 3600 * 1000, &ms))
                continue;
            if (ms < 60000)
                pt_config_error(x, val->pos, "\"ticket_rotation\" must be at least 1m");
            else
                t->ticket_rotation_ms = ms;
        } else if (is(k, "session_cache_size")) {
            uint64_t n;
            if (pt_config_get_uint(x, val, "session_cache_size", 0, 10000000, &n))
                t->session_cache_size = (uint32_t)n;
        } else {
            load_acme(x, val, &t->acme);
        }
    }
}

/* Every listener with tls: true needs a certificate to present (its own, or ACME's). */
void pt_config_check_tls_listeners(struct pt_cfg_ctx *x)
{
    struct pt_config *cfg = x->cfg;
    if (cfg->tls.acme.is_set) {
        /* ACME names: exact host names (no wildcard, port or IP address), as in tls/acme.c */
        bool any = false;
        for (size_t i = 0; i < cfg->n_sites && !any; i++)
            for (size_t j = 0; j < cfg->sites[i].n_hosts && !any; j++) {
                const char *h = cfg->sites[i].hosts[j];
                bool alpha = false;
                for (const char *p = h; *p; p++)
                    alpha |= (*p >= 'a' && *p <= 'z');
                any = alpha && !strchr(h, '*') && !strchr(h, ':');
            }
        if (!any)
            pt_config_error(x, cfg->tls.acme.pos,
                            "\"acme\" gets certificates for the sites' exact host names, but no "
                            "site has one (hosts: [example.com])");
    }
    if (cfg->tls.n_certificates > 0 || cfg->tls.acme.is_set || !x->listen_tls_pos)
        return;
    for (size_t i = 0; i < cfg->n_listens; i++) {
        if (!cfg->listens[i].is_tls || x->listen_tls_pos[i].line == 0)
            continue;
        pt_config_error(x, x->listen_tls_pos[i],
                        "a listener with tls: true needs certificates: add a top-level "
                        "tls: {certificates: [{cert: FILE, key: FILE}]}");
    }
}

/* Two listen addresses of one family and port where one is the wildcard: they cannot both be
   bound. IPv6 listeners are IPV6_V6ONLY (core/sock.c), so [::]:P and 0.0.0.0:P do not overlap. */
static bool listen_overlaps(const struct pt_sockaddr *a, const struct pt_sockaddr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return false;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in.sin_port == b->u.in.sin_port &&
               (a->u.in.sin_addr.s_addr == htonl(INADDR_ANY) ||
                b->u.in.sin_addr.s_addr == htonl(INADDR_ANY));
    return a->u.in6.sin6_port == b->u.in6.sin6_port &&
           (IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr) ||
            IN6_IS_ADDR_UNSPECIFIED(&b->u.in6.sin6_addr));
}

void pt_config_load_listen(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    struct pt_config *cfg = x->cfg;
    static const char *const keys[] = {
        "addr", "tls", "http2", "client_ca", "client_auth", "client_cert_headers", "ip", NULL};
    if (!pt_config_want_seq(x, v, "listen"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"listen\" needs at least one address, like - addr: \":8080\"");
        return;
    }
    cfg->listens = pt_config_alloc(x, &cfg->arena, v->len * sizeof(*cfg->listens));
    x->listen_tls_pos = pt_config_alloc(x, &x->tmp, v->len * sizeof(*x->listen_tls_pos));
    FOR_ITEMS(v, it)
    {
        if (it->kind != PT_YNODE_MAP) {
            pt_config_error(x, it->pos,
                            "expected a mapping like {addr: \"0.0.0.0:8080\"} in \"listen\", "
                            "found %s",
                            what_is(it));
            continue;
        }
        struct pt_listen_cfg *l = &cfg->listens[cfg->n_listens++];
        l->pos = it->pos;
        bool has_addr = false, has_http2 = false;
        const struct pt_ynode *client_key = NULL, *auth_val = NULL;
        FOR_PAIRS(it, k, val)
        {
            if (!pt_config_known_key(x, k, keys, NULL, "a listen entry"))
                continue;
            if (!is(k, "addr") && !is(k, "tls") && !is(k, "http2") && !is(k, "ip") && !client_key)
                client_key = k;
            if (is(k, "addr")) {
                has_addr = true;
                const char *s = pt_config_get_str(x, val, "addr");
                if (!s)
                    continue;
                const char *why = pt_config_parse_listen_addr(s, val->len, &l->addr);
                if (why) {
                    pt_config_error(x, val->pos, "bad listen address \"%.*s\": %s", shown(val->len),
                                    s, why);
                    continue;
                }
                l->addr_text = pt_config_strndup(x, &cfg->arena, s, val->len);
                l->pos = val->pos;
                for (size_t i = 0; i + 1 < cfg->n_listens; i++) {
                    const struct pt_listen_cfg *o = &cfg->listens[i];
                    if (!o->addr_text)
                        continue;
                    if (o->addr.len == l->addr.len &&
                        memcmp(&o->addr.u, &l->addr.u, l->addr.len) == 0)
                        pt_config_error(x, val->pos,
                                        "address \"%s\" is listed twice (first at "
                                        "line %d)",
                                        l->addr_text, o->pos.line);
                    else if (listen_overlaps(&o->addr, &l->addr))
                        pt_config_error(x, val->pos,
                                        "address \"%s\" overlaps \"%s\" (line %d): a wildcard "
                                        "address takes its port on every address of its family",
                                        l->addr_text, o->addr_text, o->pos.line);
                }
            } else if (is(k, "tls")) {
                if (pt_config_get_bool(x, val, "tls", &l->is_tls) && l->is_tls)
                    x->listen_tls_pos[cfg->n_listens - 1] = val->pos;
            } else if (is(k, "http2")) {
                has_http2 = true;
                pt_config_get_bool(x, val, "http2", &l->is_http2);
            } else if (is(k, "ip")) {
                pt_config_load_ip(x, val, &l->ip); /* refused at accept (server/connguard.c) */
            } else if (is(k, "client_ca")) {
                l->client_ca = pt_config_get_file(x, val, "client_ca");
            } else if (is(k, "client_auth")) {
                auth_val = val;
                load_client_auth(x, val, l);
            } else {
                load_client_headers(x, val, l);
            }
        }
        if (!has_addr)
            pt_config_missing(x, it, "addr", "a listen entry");
        if (!has_http2)
            l->is_http2 = l->is_tls; /* ALPN h2 on TLS by default; h2c only when asked for */
        if (client_key && !l->is_tls)
            pt_config_error(x, client_key->pos, "\"%s\" is only used on a listener with tls: true",
                            client_key->s);
        else if (auth_val && l->client_auth != PT_CLIENT_AUTH_NONE && !l->client_ca)
            pt_config_error(x, auth_val->pos,
                            "client_auth \"%s\" needs \"client_ca\" (the CA certificates that "
                            "sign client certificates)",
                            auth_val->s);
    }
}

void pt_config_load_http2(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {"max_concurrent_streams", "initial_window_size",
                                       "max_header_list_size", NULL};
    struct pt_http2_cfg *h = &x->cfg->http2;
    if (!pt_config_want_map(x, v, "http2"))
        return;
    h->pos = v->pos;
    FOR_PAIRS(v, k, val)
    {
        uint64_t n;
        if (!pt_config_known_key(x, k, keys, NULL, "http2"))
            continue;
        /* RFC 9113 §6.5.2: the window is at most 2^31-1; streams are bounded well below what
           memory allows (each holds a request object and its buffers). */
        if (is(k, "max_concurrent_streams")) {
            if (pt_config_get_uint(x, val, "max_concurrent_streams", 1, 10000, &n))
                h->max_concurrent_streams = (uint32_t)n;
        } else if (is(k, "initial_window_size")) {
            if (pt_config_get_size(x, val, "initial_window_size", 1024, (1ull << 31) - 1, &n))
                h->initial_window_size = (uint32_t)n;
        } else {
            if (pt_config_get_size(x, val, "max_header_list_size", 1024, 64ull << 20, &n))
                h->max_header_list_size = (uint32_t)n;
        }
    }
}
