/*
 * config.c - the schema: walks the YAML node tree (yaml_tree.c) and fills struct pt_config.
 *
 * Shape: one function per mapping of the contract (load_root, load_limits, load_upstream,
 * load_route, load_proxy, ...). Each loops over its pairs, checks the key against the keys valid
 * at that spot (an unknown key gets a did-you-mean from the edit distance to them, keys that a
 * later version adds get "not supported yet"), converts the value with the typed getters below
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
 * Files the configuration names (certificates, keys, CA bundles, static roots) are checked
 * here for existence and readability, with relative paths taken from the configuration file's
 * directory (resolve_path); their contents are left to the layers that use them (the TLS layer
 * parses PEM and reports "FILE: reason"), so the loader stays free of OpenSSL.
 *
 * Target host names: make_target() checks the URL and marks a target whose host is a name
 * (is_dns, addr left zero); the loader never resolves. Turning each such target
 * into one target per address is the next step, above this layer (pt_dns_expand in
 * upstream/dns.h, called by main.c right after the load), which reports a name without an
 * address at its URL through pt_config_report(), in the same form as the loader's errors.
 * Fuzz builds (PT_FUZZING) accept only address literals and "localhost" so the fuzzer never
 * touches the network.
 *
 * Rejected: the libyaml document API (see yaml_tree.c); accepting YAML 1.1 booleans yes/no/on/
 * off (they turn country codes and "on" into booleans; YAML 1.2 dropped them); anchors and
 * aliases (a feature few configurations need, and a source of blow-ups).
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
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
#include "http/h1_parse.h"
#include "route/route.h"

#define MAX_WORKERS 1024
#define MAX_WEIGHT 1000
#define PROXY_TIMEOUT_MAX_MS 60000u

/* Bytes of a user string shown in a message, so one huge value cannot drown the others. */
static int shown(size_t n)
{
    return n > 60 ? 60 : (int)n;
}

static bool is(const struct pt_ynode *n, const char *s)
{
    size_t l = strlen(s);
    return n->kind == PT_YNODE_SCALAR && n->len == l && memcmp(n->s, s, l) == 0;
}

static bool is_null(const struct pt_ynode *n)
{
    return n->kind == PT_YNODE_SCALAR && n->is_plain &&
           (n->len == 0 || is(n, "~") || is(n, "null") || is(n, "Null") || is(n, "NULL"));
}

static const char *what_is(const struct pt_ynode *n)
{
    if (n->kind == PT_YNODE_MAP)
        return "a mapping";
    if (n->kind == PT_YNODE_SEQ)
        return "a list";
    return is_null(n) ? "nothing" : "a single value";
}

#define FOR_PAIRS(m, k, v)                                                                         \
    for (const struct pt_ynode *k = (m)->child, *v = k ? k->next : NULL; k && v;                   \
         k = v->next, v = k ? k->next : NULL)
#define FOR_ITEMS(s, it) for (const struct pt_ynode *it = (s)->child; it; it = it->next)

static bool want_map(struct pt_cfg_ctx *x, const struct pt_ynode *n, const char *key)
{
    if (n->kind == PT_YNODE_MAP)
        return true;
    pt_config_error(x, n->pos, "expected a mapping (key: value) for \"%s\", found %s", key,
                    what_is(n));
    return false;
}

static bool want_seq(struct pt_cfg_ctx *x, const struct pt_ynode *n, const char *key)
{
    if (n->kind == PT_YNODE_SEQ)
        return true;
    pt_config_error(x, n->pos, "expected a list for \"%s\", found %s", key, what_is(n));
    return false;
}

/* A non-null scalar's text, or NULL after reporting "expected <expect> for key". */
static const char *scalar(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                          const char *expect)
{
    if (v->is_bad)
        return NULL; /* its ${NAME} was reported */
    if (v->kind == PT_YNODE_SCALAR && !is_null(v))
        return v->s;
    pt_config_error(x, v->pos, "expected %s for \"%s\", found %s", expect, key, what_is(v));
    return NULL;
}

/* A string without NUL, CR or LF (every string of the configuration but a respond body). */
static const char *get_str(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    const char *s = scalar(x, v, key, "a string");
    if (!s)
        return NULL;
    if (memchr(s, '\0', v->len) || memchr(s, '\r', v->len) || memchr(s, '\n', v->len)) {
        pt_config_error(x, v->pos, "\"%s\" must not contain line breaks or NUL bytes", key);
        return NULL;
    }
    return s;
}

static bool get_bool(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, bool *out)
{
    if (v->is_bad)
        return false;
    if (v->kind == PT_YNODE_SCALAR) {
        if (is(v, "true") || is(v, "True") || is(v, "TRUE")) {
            *out = true;
            return true;
        }
        if (is(v, "false") || is(v, "False") || is(v, "FALSE")) {
            *out = false;
            return true;
        }
        static const char *const yaml11[] = {"yes", "no", "on", "off", "y", "n"};
        for (size_t i = 0; i < PT_ARRAY_LEN(yaml11); i++) {
            if (v->len == strlen(yaml11[i]) && strncasecmp(v->s, yaml11[i], v->len) == 0) {
                pt_config_error(x, v->pos,
                                "expected true or false for \"%s\" (\"%s\" is not a boolean "
                                "here: write true or false)",
                                key, v->s);
                return false;
            }
        }
    }
    pt_config_error(x, v->pos, "expected true or false for \"%s\"", key);
    return false;
}

static bool get_uint(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, uint64_t lo,
                     uint64_t hi, uint64_t *out)
{
    const char *s = scalar(x, v, key, "a whole number");
    if (!s)
        return false;
    uint64_t n = 0;
    size_t i = 0;
    for (; i < v->len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (n > (UINT64_MAX - 9) / 10)
            break;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0 || i != v->len || n < lo || n > hi) {
        pt_config_error(x, v->pos, "expected a whole number from %llu to %llu for \"%s\"",
                        (unsigned long long)lo, (unsigned long long)hi, key);
        return false;
    }
    *out = n;
    return true;
}

static bool get_ms(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, uint64_t lo,
                   uint64_t hi, uint32_t *out)
{
    const char *s = scalar(x, v, key, "a duration like 30s or 250ms");
    if (!s)
        return false;
    uint64_t ms;
    if (memchr(s, '\0', v->len) || pt_config_parse_duration(s, &ms) < 0) {
        pt_config_error(x, v->pos,
                        "expected a duration like 30s or 250ms for \"%s\" (units: ms, s, m, h)",
                        key);
        return false;
    }
    if (ms < lo || ms > hi) {
        if (ms < lo)
            pt_config_error(x, v->pos, "\"%s\" must be at least %llums", key,
                            (unsigned long long)lo);
        else
            pt_config_error(x, v->pos, "\"%s\" is too long (at most %llus)", key,
                            (unsigned long long)(hi / 1000));
        return false;
    }
    *out = (uint32_t)ms;
    return true;
}

static bool get_size(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, uint64_t lo,
                     uint64_t hi, uint64_t *out)
{
    const char *s = scalar(x, v, key, "a size like 16k or 8m");
    if (!s)
        return false;
    uint64_t n;
    if (memchr(s, '\0', v->len) || pt_config_parse_size(s, &n) < 0) {
        pt_config_error(x, v->pos,
                        "expected a size like 512, 64k, 8m or 1g for \"%s\" (bytes, binary "
                        "multiples)",
                        key);
        return false;
    }
    if (n < lo || n > hi) {
        pt_config_error(x, v->pos, "\"%s\" must be from %llu to %llu bytes", key,
                        (unsigned long long)lo, (unsigned long long)hi);
        return false;
    }
    *out = n;
    return true;
}

/* The closest of names (NULL-terminated) to s within a small edit distance, or NULL. */
static const char *nearest(const char *s, size_t n, const char *const *names, size_t count)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < count && names[i]; i++) {
        size_t l = strlen(names[i]);
        unsigned d = pt_config_distance(s, n, names[i], l);
        if (d < best_d && d * 2 <= l) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

/*
 * True when key k is one of keys. Otherwise reports it: "not supported yet" for keys a later
 * version adds (later, may be NULL), else unknown with the nearest valid key or the list.
 */
static bool known_key(struct pt_cfg_ctx *x, const struct pt_ynode *k, const char *const *keys,
                      const char *const *later, const char *where)
{
    if (k->kind != PT_YNODE_SCALAR) {
        pt_config_error(x, k->pos, "expected a key name here, found %s", what_is(k));
        return false;
    }
    if (k->is_dup)
        return false; /* reported as a duplicate; only the first one counts */
    for (size_t i = 0; keys[i]; i++)
        if (is(k, keys[i]))
            return true;
    for (size_t i = 0; later && later[i]; i++) {
        if (is(k, later[i])) {
            pt_config_error(x, k->pos, "key \"%s\" is not supported yet in this version of Portico",
                            later[i]);
            return false;
        }
    }
    const char *best = nearest(k->s, k->len, keys, SIZE_MAX);
    if (best) {
        pt_config_error(x, k->pos, "unknown key \"%.*s\"; did you mean \"%s\"?", shown(k->len),
                        k->s, best);
        return false;
    }
    char list[160];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; keys[i] && used < sizeof(list); i++) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", keys[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    pt_config_error(x, k->pos, "unknown key \"%.*s\" in %s (valid keys: %s)", shown(k->len), k->s,
                    where, list);
    return false;
}

static void missing(struct pt_cfg_ctx *x, const struct pt_ynode *map, const char *key,
                    const char *where)
{
    pt_config_error(x, map->pos, "%s needs \"%s\"", where, key);
}

/* ---- files and directories named by the configuration ---------------------------------- */

/*
 * The path s (n bytes) made absolute: a relative path is taken from the directory of the
 * configuration file (the working directory for a name without '/'), so `portico -c
 * /etc/portico/portico.yaml` finds "certs/a.pem" in /etc/portico/certs whatever the cwd.
 * Symbolic links are kept, not resolved: a certificate or a site root that is a link to the
 * current release must follow the link on reload.
 */
static char *resolve_path(struct pt_cfg_ctx *x, const char *s, size_t n)
{
    struct pt_arena *a = &x->cfg->arena;
    char cwd[4096];
    if (n > 0 && s[0] == '/')
        return pt_config_strndup(x, a, s, n);
    const char *slash = strrchr(x->name, '/');
    size_t dl = slash ? (size_t)(slash - x->name) : 0;
    if (slash && dl == 0)
        dl = 1; /* the file is in "/" */
    const char *pre = "";
    if (!slash || x->name[0] != '/') {
        if (!getcwd(cwd, sizeof(cwd)))
            return pt_config_strndup(x, a, s, n);
        pre = cwd;
    }
    size_t total = strlen(pre) + dl + n + 3;
    char *out = pt_config_alloc(x, a, total);
    size_t used = 0;
    int w = snprintf(out, total, "%s", pre);
    used += (size_t)(w > 0 ? w : 0);
    if (dl) {
        if (used > 0 && out[used - 1] != '/')
            out[used++] = '/';
        memcpy(out + used, x->name, dl);
        used += dl;
    }
    if (used > 0 && out[used - 1] != '/')
        out[used++] = '/';
    memcpy(out + used, s, n);
    out[used + n] = '\0';
    return out;
}

/* The path a key names, resolved against the configuration file's directory, in the config
   arena; NULL after reporting when it is not a string or is empty. what: "file", "directory". */
static char *get_path(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                      const char *what)
{
    const char *s = get_str(x, v, key);
    if (!s)
        return NULL;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"%s\" must name a %s", key, what);
        return NULL;
    }
    return resolve_path(x, s, v->len);
}

/*
 * A readable regular file for key (a certificate, key or CA bundle). Returns its resolved
 * path in the config arena, or NULL after reporting. The contents are not parsed here: the
 * TLS layer does that and reports "FILE: reason".
 */
static const char *get_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    char *path = get_path(x, v, key, "file");
    if (!path)
        return NULL;
    struct stat st;
    if (stat(path, &st) < 0 || access(path, R_OK) < 0) {
        pt_config_error(x, v->pos, "cannot read \"%s\" file \"%.120s\": %s", key, path,
                        strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        pt_config_error(x, v->pos, "\"%s\" file \"%.120s\" is a directory", key, path);
        return NULL;
    }
    return path;
}

/* An existing directory for key (a static root): its resolved path, or NULL after reporting. */
static const char *get_dir(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    char *path = get_path(x, v, key, "directory");
    if (!path)
        return NULL;
    struct stat st;
    if (stat(path, &st) < 0) {
        pt_config_error(x, v->pos, "\"%s\" directory \"%.120s\": %s", key, path, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        pt_config_error(x, v->pos, "\"%s\" \"%.120s\" is not a directory", key, path);
        return NULL;
    }
    return path;
}

/* ---- tokens, headers, hosts, addresses ------------------------------------------------ */

static bool is_tchar(unsigned char c)
{
    /* RFC 9110 §5.6.2 token characters */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Port number of 1..5 digits in 1..65535; -1 otherwise. */
static int parse_port(const char *s, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return (v >= 1 && v <= 65535) ? (int)v : -1;
}

static bool is_hostname(const char *s, size_t n)
{
    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok || (c == '.' && i + 1 < n && s[i + 1] == '.'))
            return false;
    }
    return true;
}

static bool is_ipv6_literal(const char *s, size_t n)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

/*
 * "0.0.0.0:8080", "[::]:8080", "127.0.0.1:8080", ":8080" (all IPv4 addresses). Returns NULL on
 * success or what is wrong.
 */
static const char *parse_listen_addr(const char *s, size_t n, struct pt_sockaddr *out)
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
    int port = parse_port(colon + 1, (size_t)(s + n - colon - 1));
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

struct url_parts {
    bool is_https;
    const char *host; /* without brackets */
    size_t host_len;
    bool is_v6;
    uint16_t port; /* 80/443 when absent */
    bool has_port;
    size_t origin_len; /* bytes of scheme://authority */
    const char *rest;  /* what follows the authority (path, query...) */
    size_t rest_len;
};

/* Splits an http:// or https:// URL. Returns NULL on success or what is wrong. */
static const char *parse_url(const char *s, size_t n, struct url_parts *u)
{
    size_t p;
    memset(u, 0, sizeof(*u));
    if (n >= 7 && strncasecmp(s, "http://", 7) == 0) {
        p = 7;
    } else if (n >= 8 && strncasecmp(s, "https://", 8) == 0) {
        p = 8;
        u->is_https = true;
    } else {
        return "expected a URL like http://host:port";
    }
    size_t a = p;
    while (p < n && s[p] != '/' && s[p] != '?' && s[p] != '#')
        p++;
    const char *auth = s + a;
    size_t al = p - a;
    u->origin_len = p;
    u->rest = s + p;
    u->rest_len = n - p;
    if (al == 0)
        return "the URL has no host";
    if (memchr(auth, '@', al))
        return "user names and passwords in URLs are not supported";
    const char *port_s = NULL;
    if (auth[0] == '[') {
        const char *rb = memchr(auth, ']', al);
        if (!rb)
            return "missing ']' after the IPv6 address";
        u->host = auth + 1;
        u->host_len = (size_t)(rb - auth - 1);
        if (!is_ipv6_literal(u->host, u->host_len))
            return "not a valid IPv6 address";
        u->is_v6 = true;
        if (rb + 1 < auth + al) {
            if (rb[1] != ':')
                return "unexpected text after ']'";
            port_s = rb + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', al);
        u->host = auth;
        u->host_len = colon ? (size_t)(colon - auth) : al;
        if (colon) {
            if (memchr(colon + 1, ':', (size_t)(auth + al - colon - 1)))
                return "IPv6 addresses must be written in brackets: http://[::1]:8080";
            port_s = colon + 1;
        }
        if (!is_hostname(u->host, u->host_len))
            return "not a valid host name";
    }
    u->port = u->is_https ? 443 : 80;
    if (port_s) {
        int port = parse_port(port_s, (size_t)(auth + al - port_s));
        if (port < 0)
            return "the port must be a number from 1 to 65535";
        u->port = (uint16_t)port;
        u->has_port = true;
    }
    return NULL;
}

static void set_port(struct pt_sockaddr *sa, uint16_t port)
{
    if (sa->u.sa.sa_family == AF_INET)
        sa->u.in.sin_port = htons(port);
    else
        sa->u.in6.sin6_port = htons(port);
}

/*
 * Fills out from host (NUL-terminated, no brackets) when it is an address literal. A name sets
 * *is_name (pt_dns_expand() resolves it later; out keeps port only). NULL or the reason.
 */
static const char *literal_addr(const char *host, uint16_t port, struct pt_sockaddr *out,
                                bool *is_name)
{
    memset(out, 0, sizeof(*out));
    *is_name = false;
    if (inet_pton(AF_INET, host, &out->u.in.sin_addr) == 1) {
        out->u.in.sin_family = AF_INET;
        out->len = sizeof(out->u.in);
    } else if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->len = sizeof(out->u.in6);
    } else {
#ifdef PT_FUZZING
        if (strcasecmp(host, "localhost") != 0)
            return "name lookups are disabled in fuzzing builds";
        out->u.in.sin_family = AF_INET;
        out->u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out->len = sizeof(out->u.in);
#else
        *is_name = true;
        return NULL;
#endif
    }
    set_port(out, port);
    return NULL;
}

/*
 * Fills t from the URL in v. For a named upstream's target (is_inline false) the part after
 * the authority is the base path (no query or fragment); for a proxy.to URL only
 * scheme://host:port is used and the caller keeps the rest. Reports errors at v.
 */
static bool make_target(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                        bool is_inline, struct pt_target_cfg *t)
{
    struct pt_arena *a = &x->cfg->arena;
    struct url_parts u;
    const char *s = get_str(x, v, key);
    if (!s)
        return false;
    const char *why = parse_url(s, v->len, &u);
    if (why) {
        pt_config_error(x, v->pos, "bad URL \"%.*s\" for \"%s\": %s", shown(v->len), s, key, why);
        return false;
    }
    if (!is_inline) {
        if (memchr(u.rest, '?', u.rest_len) || memchr(u.rest, '#', u.rest_len)) {
            pt_config_error(x, v->pos, "a target URL cannot have a query or a fragment");
            return false;
        }
        size_t bl = u.rest_len;
        while (bl > 0 && u.rest[bl - 1] == '/')
            bl--;
        t->base_path = pt_config_strndup(x, a, u.rest, bl);
        t->url = pt_config_strndup(x, a, s, v->len);
    } else {
        t->base_path = "";
        t->url = pt_config_strndup(x, a, s, u.origin_len);
    }
    t->is_https = u.is_https;
    t->host = pt_config_strndup(x, a, u.host, u.host_len);
    t->port = u.port;
    t->weight = 1;
    t->pos = v->pos;
    bool dflt = u.port == (u.is_https ? 443 : 80);
    size_t hhn = u.host_len + 10;
    char *hh = pt_config_alloc(x, a, hhn);
    snprintf(hh, hhn, "%s%.*s%s", u.is_v6 ? "[" : "", (int)u.host_len, u.host, u.is_v6 ? "]" : "");
    if (!dflt)
        snprintf(hh + strlen(hh), hhn - strlen(hh), ":%u", (unsigned)u.port);
    t->host_header = hh;
    why = literal_addr(t->host, t->port, &t->addr, &t->is_dns);
    if (why) {
        pt_config_error(x, v->pos, "cannot resolve host \"%s\": %s", t->host, why);
        return false;
    }
    return true;
}

/* ---- top-level sections ----------------------------------------------------------------- */

static void load_client_auth(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                             struct pt_listen_cfg *l)
{
    static const char *const all[] = {"none", "optional", "required", NULL};
    const char *s = get_str(x, v, "client_auth");
    if (!s)
        return;
    for (size_t i = 0; all[i]; i++) {
        if (is(v, all[i])) {
            l->client_auth = (int)i; /* all[] follows enum pt_client_auth */
            return;
        }
    }
    const char *best = nearest(s, v->len, all, SIZE_MAX);
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
    const char *s = get_str(x, v, key);
    if (!s)
        return NULL;
    if (v->len == 0 || v->len > 128 || !is_token(s, v->len)) {
        pt_config_error(x, v->pos, "expected a header name like X-Client-Cert for \"%s\"", key);
        return NULL;
    }
    return pt_config_strndup(x, &x->cfg->arena, s, v->len);
}

static void load_client_headers(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                struct pt_listen_cfg *l)
{
    static const char *const keys[] = {"subject", "fingerprint", NULL};
    if (!want_map(x, v, "client_cert_headers"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "client_cert_headers"))
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
    if (!want_seq(x, v, "certificates"))
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
            if (!known_key(x, k, keys, NULL, "a certificate"))
                continue;
            if (is(k, "cert")) {
                has_cert = true;
                c->cert = get_file(x, val, "cert");
            } else {
                has_key = true;
                c->key = get_file(x, val, "key");
            }
        }
        if (!has_cert)
            missing(x, it, "cert", "a certificate");
        if (!has_key)
            missing(x, it, "key", "a certificate");
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
    if (!want_map(x, v, "acme"))
        return;
    ac->is_set = true;
    ac->pos = v->pos;
    bool has_dir = false, has_storage = false;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "acme"))
            continue;
        if (is(k, "email")) {
            const char *s = get_str(x, val, "email");
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
            const char *s = get_str(x, val, "directory");
            if (!s)
                continue;
            struct url_parts u;
            const char *why = parse_url(s, val->len, &u);
            if (!why && !u.is_https)
                why = "the ACME directory must be an https:// URL";
            if (why)
                pt_config_error(x, val->pos, "\"directory\": %s", why);
            else
                ac->directory = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "ca_root")) {
            ac->ca_root = get_file(x, val, "ca_root");
        } else {
            has_storage = true;
            const char *s = get_str(x, val, "storage");
            if (!s)
                continue;
            if (val->len == 0) {
                pt_config_error(x, val->pos, "\"storage\" must name a directory");
                continue;
            }
            char *path = resolve_path(x, s, val->len);
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
        missing(x, v, "directory", "acme");
    if (!has_storage)
        missing(x, v, "storage", "acme");
}

static void load_tls(struct pt_cfg_ctx *x, const struct pt_ynode *v)
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
    if (!want_map(x, v, "tls"))
        return;
    t->is_set = true;
    t->pos = v->pos;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "tls"))
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
            const char *s = get_str(x, val, k->s);
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"%s\" must not be empty (leave it out)", k->s);
            else if (s && is(k, "ciphers"))
                t->ciphers = pt_config_strndup(x, a, s, val->len);
            else if (s)
                t->ciphersuites = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "session_tickets")) {
            get_bool(x, val, "session_tickets", &t->session_tickets);
        } else if (is(k, "ticket_rotation")) {
            uint32_t ms;
            if (!get_ms(x, val, "ticket_rotation", 1, 7u * 24 * 3600 * 1000, &ms))
                continue;
            if (ms < 60000)
                pt_config_error(x, val->pos, "\"ticket_rotation\" must be at least 1m");
            else
                t->ticket_rotation_ms = ms;
        } else if (is(k, "session_cache_size")) {
            uint64_t n;
            if (get_uint(x, val, "session_cache_size", 0, 10000000, &n))
                t->session_cache_size = (uint32_t)n;
        } else {
            load_acme(x, val, &t->acme);
        }
    }
}

/* Every listener with tls: true needs a certificate to present (its own, or ACME's). */
static void check_tls_listeners(struct pt_cfg_ctx *x)
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

static void load_listen(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    struct pt_config *cfg = x->cfg;
    static const char *const keys[] = {
        "addr", "tls", "client_ca", "client_auth", "client_cert_headers", NULL};
    if (!want_seq(x, v, "listen"))
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
        bool has_addr = false;
        const struct pt_ynode *client_key = NULL, *auth_val = NULL;
        FOR_PAIRS(it, k, val)
        {
            if (!known_key(x, k, keys, NULL, "a listen entry"))
                continue;
            if (!is(k, "addr") && !is(k, "tls") && !client_key)
                client_key = k;
            if (is(k, "addr")) {
                has_addr = true;
                const char *s = get_str(x, val, "addr");
                if (!s)
                    continue;
                const char *why = parse_listen_addr(s, val->len, &l->addr);
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
                if (get_bool(x, val, "tls", &l->is_tls) && l->is_tls)
                    x->listen_tls_pos[cfg->n_listens - 1] = val->pos;
            } else if (is(k, "client_ca")) {
                l->client_ca = get_file(x, val, "client_ca");
            } else if (is(k, "client_auth")) {
                auth_val = val;
                load_client_auth(x, val, l);
            } else {
                load_client_headers(x, val, l);
            }
        }
        if (!has_addr)
            missing(x, it, "addr", "a listen entry");
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

static void load_limits(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    static const char *const keys[] = {
        "header_size",  "headers",           "uri_size",     "body_size",       "header_timeout",
        "body_timeout", "keepalive_timeout", "send_timeout", "max_connections", NULL};
    struct pt_limits_cfg *lim = &x->cfg->limits;
    const uint64_t gib = 1ull << 30;
    if (!want_map(x, v, "limits"))
        return;
    FOR_PAIRS(v, k, val)
    {
        uint64_t n;
        if (!known_key(x, k, keys, NULL, "limits"))
            continue;
        if (is(k, "header_size")) {
            if (get_size(x, val, "header_size", 1, 64ull << 20, &n))
                lim->header_size = n;
        } else if (is(k, "headers")) {
            if (get_uint(x, val, "headers", 1, 65535, &n))
                lim->headers = (uint32_t)n;
        } else if (is(k, "uri_size")) {
            if (get_size(x, val, "uri_size", 1, 64ull << 20, &n))
                lim->uri_size = n;
        } else if (is(k, "body_size")) {
            if (get_size(x, val, "body_size", 0, 1024 * gib * 1024, &n))
                lim->body_size = n;
        } else if (is(k, "header_timeout")) {
            get_ms(x, val, "header_timeout", 1, UINT32_MAX, &lim->header_timeout_ms);
        } else if (is(k, "body_timeout")) {
            get_ms(x, val, "body_timeout", 1, UINT32_MAX, &lim->body_timeout_ms);
        } else if (is(k, "keepalive_timeout")) {
            get_ms(x, val, "keepalive_timeout", 1, UINT32_MAX, &lim->keepalive_timeout_ms);
        } else if (is(k, "max_connections")) {
            if (get_uint(x, val, "max_connections", 1, 1u << 24, &n))
                lim->max_connections = (uint32_t)n;
        } else {
            get_ms(x, val, "send_timeout", 1, UINT32_MAX, &lim->send_timeout_ms);
        }
    }
}

static void load_trusted(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    struct pt_config *cfg = x->cfg;
    if (is_null(v))
        return;
    if (!want_seq(x, v, "trusted_proxies"))
        return;
    cfg->trusted_proxies = pt_config_alloc(x, &cfg->arena, v->len * sizeof(*cfg->trusted_proxies));
    FOR_ITEMS(v, it)
    {
        const char *s = get_str(x, it, "trusted_proxies");
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
static const char *get_log_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    char *path = get_path(x, v, key, "file");
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
    if (!want_map(x, v, "log"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "log"))
            continue;
        const char *s = get_str(x, val, k->s);
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
                log->access = get_log_file(x, val, "access");
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

static struct pt_upstream_cfg *new_upstream(struct pt_cfg_ctx *x, const char *name, size_t len,
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
    if (!want_seq(x, v, "targets"))
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
            if (!known_key(x, k, keys, NULL, "a target"))
                continue;
            if (is(k, "url")) {
                has_url = true;
                make_target(x, val, "url", false, t);
            } else if (is(k, "backup")) {
                get_bool(x, val, "backup", &t->is_backup);
            } else if (is(k, "max_connections")) {
                uint64_t n;
                if (get_uint(x, val, "max_connections", 0, 1000000, &n))
                    t->max_connections = (uint32_t)n;
            } else {
                weight = val;
            }
        }
        t->weight = 1;
        uint64_t w;
        if (weight && get_uint(x, weight, "weight", 1, MAX_WEIGHT, &w))
            t->weight = (uint32_t)w;
        if (!has_url)
            missing(x, it, "url", "a target");
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
    const char *s = get_str(x, v, "balance");
    if (!s)
        return;
    for (size_t i = 0; all[i]; i++) {
        if (is(v, all[i])) {
            u->balance = (int)i; /* all[] follows enum pt_balance */
            return;
        }
    }
    const char *best = nearest(s, v->len, all, SIZE_MAX);
    if (best)
        pt_config_error(x, v->pos, "unknown balance \"%.*s\"; did you mean \"%s\"?", shown(v->len),
                        s, best);
    else
        pt_config_error(x, v->pos,
                        "unknown balance \"%.*s\" (round_robin, least_conn, random, p2c, ewma, "
                        "hash or cookie)",
                        shown(v->len), s);
}

/* A header, cookie or query-argument name of hash_key (token characters). */
static bool is_name_token(const char *s, size_t n)
{
    return n > 0 && n <= 128 && is_token(s, n);
}

static void load_hash_key(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    static const struct {
        const char *prefix;
        int kind;
    } named[] = {{"header:", PT_HASH_KEY_HEADER},
                 {"cookie:", PT_HASH_KEY_COOKIE},
                 {"query:", PT_HASH_KEY_QUERY}};
    const char *s = get_str(x, v, "hash_key");
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
    const char *s = scalar(x, v, "expect", "status codes like \"200-399\"");
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
    if (!want_map(x, v, "health"))
        return;
    h->is_enabled = true;
    h->pos = v->pos;
    const struct pt_ynode *timeout = NULL;
    FOR_PAIRS(v, k, val)
    {
        uint64_t n;
        if (!known_key(x, k, keys, NULL, "health"))
            continue;
        if (is(k, "type")) {
            if (is(val, "http"))
                h->type = PT_HEALTH_HTTP;
            else if (is(val, "tcp"))
                h->type = PT_HEALTH_TCP;
            else
                pt_config_error(x, val->pos, "expected http or tcp for \"type\"");
        } else if (is(k, "path")) {
            const char *s = get_str(x, val, "path");
            if (s && (val->len == 0 || s[0] != '/' || memchr(s, ' ', val->len)))
                pt_config_error(x, val->pos,
                                "\"path\" must start with '/' and hold no spaces, like /healthz");
            else if (s)
                h->path = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "interval")) {
            get_ms(x, val, "interval", 100, 3600 * 1000, &h->interval_ms);
        } else if (is(k, "timeout")) {
            timeout = val;
            get_ms(x, val, "timeout", 1, 3600 * 1000, &h->timeout_ms);
        } else if (is(k, "rise")) {
            if (get_uint(x, val, "rise", 1, 1000, &n))
                h->rise = (uint32_t)n;
        } else if (is(k, "fall")) {
            if (get_uint(x, val, "fall", 1, 1000, &n))
                h->fall = (uint32_t)n;
        } else if (is(k, "expect")) {
            load_expect(x, h, val);
        } else if (is(k, "method")) {
            const char *s = get_str(x, val, "method");
            if (s && !is_token(s, val->len))
                pt_config_error(x, val->pos, "expected a method name like GET or HEAD");
            else if (s)
                h->method = pt_config_strndup(x, a, s, val->len);
        } else if (is(k, "host")) {
            const char *s = get_str(x, val, "host");
            if (s && (val->len == 0 || memchr(s, ' ', val->len)))
                pt_config_error(x, val->pos, "\"host\" must be a host name, like example.com");
            else if (s)
                h->host = pt_config_strndup(x, a, s, val->len);
        } else {
            const char *s = get_str(x, val, "body");
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
    if (!want_map(x, v, "outlier"))
        return;
    o->is_enabled = true;
    const struct pt_ynode *max_pos = NULL;
    FOR_PAIRS(v, k, val)
    {
        uint64_t n;
        if (!known_key(x, k, keys, NULL, "outlier"))
            continue;
        if (is(k, "consecutive_failures")) {
            if (get_uint(x, val, "consecutive_failures", 1, 1000, &n))
                o->consecutive_failures = (uint32_t)n;
        } else if (is(k, "include_5xx")) {
            get_bool(x, val, "include_5xx", &o->include_5xx);
        } else if (is(k, "base_ejection_time")) {
            get_ms(x, val, "base_ejection_time", 1, 24 * 3600 * 1000, &o->base_ejection_time_ms);
        } else if (is(k, "max_ejection_time")) {
            max_pos = val;
            get_ms(x, val, "max_ejection_time", 1, 24 * 3600 * 1000, &o->max_ejection_time_ms);
        } else {
            if (get_uint(x, val, "max_ejection_percent", 0, 100, &n))
                o->max_ejection_percent = (uint32_t)n;
        }
    }
    if (o->max_ejection_time_ms < o->base_ejection_time_ms)
        pt_config_error(x, max_pos ? max_pos->pos : v->pos,
                        "\"max_ejection_time\" must not be shorter than \"base_ejection_time\"");
}

static void load_retry_on(struct pt_cfg_ctx *x, struct pt_upstream_cfg *u, const struct pt_ynode *v)
{
    if (!want_seq(x, v, "retry_on"))
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
    const char *s = scalar(x, v, "retry_budget", "a percentage like 20%");
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

static void load_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *k, const struct pt_ynode *v)
{
    static const char *const keys[] = {"targets",
                                       "balance",
                                       "keepalive",
                                       "connect_timeout",
                                       "retries",
                                       "hash_key",
                                       "health",
                                       "outlier",
                                       "slow_start",
                                       "retry_on",
                                       "retry_budget",
                                       "per_try_timeout",
                                       "max_pending",
                                       "resolve_interval",
                                       "ca_file",
                                       "tls_verify",
                                       "cert",
                                       "key",
                                       NULL};
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
    struct pt_upstream_cfg *u = new_upstream(x, k->s, k->len, k->pos);
    if (!want_map(x, v, u->name))
        return;
    bool has_targets = false;
    const struct pt_ynode *hash_key = NULL, *balance = NULL, *tls_key = NULL, *cert = NULL,
                          *key = NULL, *verify = NULL;
    FOR_PAIRS(v, kk, val)
    {
        uint64_t n;
        if (is(kk, "tls") && !kk->is_dup) {
            pt_config_error(x, kk->pos,
                            "unknown key \"tls\" in an upstream: TLS to targets comes from "
                            "https:// target URLs, with ca_file, tls_verify, cert and key");
            continue;
        }
        if (!known_key(x, kk, keys, later, "an upstream"))
            continue;
        if (is(kk, "ca_file") || is(kk, "cert") || is(kk, "key")) {
            if (!tls_key)
                tls_key = kk;
            const char *path = get_file(x, val, kk->s);
            if (is(kk, "ca_file")) {
                u->ca_file = path;
            } else if (is(kk, "cert")) {
                cert = kk;
                u->cert = path;
            } else {
                key = kk;
                u->key = path;
            }
        } else if (is(kk, "tls_verify")) {
            verify = val;
            get_bool(x, val, "tls_verify", &u->tls_verify);
        } else if (is(kk, "targets")) {
            has_targets = true;
            load_targets(x, u, val);
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
            get_ms(x, val, "slow_start", 0, 3600 * 1000, &u->slow_start_ms);
        } else if (is(kk, "retry_on")) {
            load_retry_on(x, u, val);
        } else if (is(kk, "retry_budget")) {
            load_budget(x, u, val);
        } else if (is(kk, "per_try_timeout")) {
            get_ms(x, val, "per_try_timeout", 1, 3600 * 1000, &u->per_try_timeout_ms);
        } else if (is(kk, "max_pending")) {
            if (get_uint(x, val, "max_pending", 0, 1000000, &n))
                u->max_pending = (uint32_t)n;
        } else if (is(kk, "resolve_interval")) {
            get_ms(x, val, "resolve_interval", 1000, 24 * 3600 * 1000, &u->resolve_interval_ms);
        } else if (is(kk, "keepalive")) {
            if (get_uint(x, val, "keepalive", 0, 100000, &n))
                u->keepalive = (uint32_t)n;
        } else if (is(kk, "connect_timeout")) {
            get_ms(x, val, "connect_timeout", 1, 3600 * 1000, &u->connect_timeout_ms);
        } else {
            if (get_uint(x, val, "retries", 0, 100, &n))
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
    if (verify && !u->tls_verify && any_https)
        pt_config_warn(x, verify->pos,
                       "tls_verify is false: the certificates and names of upstream \"%s\"'s "
                       "targets are not checked",
                       u->name);
}

static void load_upstreams(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    if (is_null(v))
        return;
    if (!want_map(x, v, "upstreams"))
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

/* ---- routes ------------------------------------------------------------------------------- */

/* A mapping of header name -> value into an array of pt_kv. */
static void load_kvs(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                     bool is_respond, struct pt_kv **out, size_t *n_out)
{
    struct pt_arena *a = &x->cfg->arena;
    if (is_null(v))
        return;
    if (!want_map(x, v, key))
        return;
    *out = pt_config_alloc(x, a, (v->len / 2) * sizeof(**out));
    FOR_PAIRS(v, k, val)
    {
        if (k->is_dup)
            continue;
        if (k->kind != PT_YNODE_SCALAR || !is_token(k->s, k->len)) {
            pt_config_error(x, k->pos,
                            "bad header name in \"%s\": expected a token like "
                            "X-Request-Id",
                            key);
            continue;
        }
        if (is_respond && (strcasecmp(k->s, "content-length") == 0 ||
                           strcasecmp(k->s, "transfer-encoding") == 0)) {
            pt_config_error(x, k->pos,
                            "\"%s\" cannot be set on a respond: Portico frames the body itself",
                            k->s);
            continue;
        }
        const char *s = get_str(x, val, k->s);
        if (!s)
            continue;
        struct pt_kv *kv = &(*out)[(*n_out)++];
        kv->name = pt_config_strndup(x, a, k->s, k->len);
        kv->name_len = k->len;
        kv->value = pt_config_strndup(x, a, s, val->len);
        kv->value_len = val->len;
    }
}

static void load_header_ops(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                            struct pt_header_ops *ops)
{
    static const char *const keys[] = {"set", "add", "remove", NULL};
    struct pt_arena *a = &x->cfg->arena;
    if (is_null(v))
        return;
    if (!want_map(x, v, key))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, key))
            continue;
        if (is(k, "set")) {
            load_kvs(x, val, "set", false, &ops->set, &ops->n_set);
        } else if (is(k, "add")) {
            load_kvs(x, val, "add", false, &ops->add, &ops->n_add);
        } else {
            if (is_null(val) || !want_seq(x, val, "remove"))
                continue;
            ops->remove = pt_config_alloc(x, a, val->len * sizeof(*ops->remove));
            FOR_ITEMS(val, it)
            {
                if (it->kind != PT_YNODE_SCALAR || !is_token(it->s, it->len)) {
                    pt_config_error(x, it->pos,
                                    "bad header name in \"remove\": expected a "
                                    "token like X-Powered-By");
                    continue;
                }
                struct pt_kv *kv = &ops->remove[ops->n_remove++];
                kv->name = pt_config_strndup(x, a, it->s, it->len);
                kv->name_len = it->len;
                kv->value = "";
            }
        }
    }
    for (size_t i = 0; i < ops->n_remove; i++)
        ops->is_server_removed |= strcasecmp(ops->remove[i].name, "server") == 0;
    for (size_t i = 0; i < ops->n_set; i++)
        ops->is_server_set |= strcasecmp(ops->set[i].name, "server") == 0;
}

static void load_proxy_headers(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                               struct pt_proxy_cfg *p)
{
    static const char *const keys[] = {"request", "response", NULL};
    if (is_null(v))
        return;
    if (!want_map(x, v, "headers"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "headers"))
            continue;
        if (is(k, "request"))
            load_header_ops(x, val, "request", &p->request);
        else
            load_header_ops(x, val, "response", &p->response);
    }
}

static struct pt_upstream_cfg *inline_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                               struct pt_proxy_cfg *p)
{
    struct pt_config *cfg = x->cfg;
    struct url_parts u;
    const char *why = parse_url(v->s, v->len, &u);
    if (why) {
        pt_config_error(x, v->pos, "bad URL \"%.*s\" for \"to\": %s", shown(v->len), v->s, why);
        return NULL;
    }
    if (u.rest_len > 0 && u.rest[0] != '/') {
        pt_config_error(x, v->pos, "the path after the host in \"to\" must start with '/'");
        return NULL;
    }
    if (memchr(u.rest, '#', u.rest_len)) {
        pt_config_error(x, v->pos, "\"to\" cannot have a fragment (#...)");
        return NULL;
    }
    /* "url:http://host:port", host lower-cased: one upstream per distinct origin. */
    size_t nn = u.host_len + 32;
    char *name = pt_config_alloc(x, &x->tmp, nn);
    int w =
        snprintf(name, nn, "url:%s://%s%.*s%s:%u", u.is_https ? "https" : "http",
                 u.is_v6 ? "[" : "", (int)u.host_len, u.host, u.is_v6 ? "]" : "", (unsigned)u.port);
    for (int i = 4; i < w; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] - 'A' + 'a');
    p->to_path = pt_config_strndup(x, &cfg->arena, u.rest, u.rest_len);
    for (size_t i = x->n_named_ups; i < cfg->n_upstreams; i++)
        if (strcmp(cfg->upstreams[i]->name, name) == 0)
            return cfg->upstreams[i];
    struct pt_target_cfg t;
    memset(&t, 0, sizeof(t));
    if (!make_target(x, v, "to", true, &t))
        return NULL;
    struct pt_upstream_cfg *up = new_upstream(x, name, (size_t)w, v->pos);
    up->targets = pt_config_alloc(x, &cfg->arena, sizeof(*up->targets));
    up->targets[0] = t;
    up->n_targets = 1;
    return up;
}

static struct pt_upstream_cfg *named_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                              const char *s);

static void load_proxy_to(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_proxy_cfg *p)
{
    struct pt_config *cfg = x->cfg;
    const char *s = get_str(x, v, "to");
    if (!s)
        return;
    p->to = pt_config_strndup(x, &cfg->arena, s, v->len);
    p->to_path = "";
    if (memmem(s, v->len, "://", 3)) {
        p->upstream = inline_upstream(x, v, p);
        return;
    }
    p->upstream = named_upstream(x, v, s);
}

/* The upstream named s (the scalar v) under upstreams:, or NULL after reporting it unknown. */
static struct pt_upstream_cfg *named_upstream(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                              const char *s)
{
    struct pt_config *cfg = x->cfg;
    for (size_t i = 0; i < x->n_named_ups; i++)
        if (strcmp(cfg->upstreams[i]->name, s) == 0)
            return cfg->upstreams[i];
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < x->n_named_ups; i++) {
        const char *name = cfg->upstreams[i]->name;
        size_t l = strlen(name);
        unsigned d = pt_config_distance(s, v->len, name, l);
        if (d < best_d && d * 2 <= l) {
            best = name;
            best_d = d;
        }
    }
    if (best)
        pt_config_error(x, v->pos, "unknown upstream \"%.*s\"; did you mean \"%s\"?", shown(v->len),
                        s, best);
    else
        pt_config_error(x, v->pos,
                        "unknown upstream \"%.*s\" (name one under upstreams: or give a URL "
                        "like http://127.0.0.1:9001)",
                        shown(v->len), s);
    return NULL;
}

/* force_header: "Name: value". */
static void load_force_header(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                              struct pt_split_cfg *sp)
{
    const char *s = get_str(x, v, "force_header");
    if (!s)
        return;
    const char *colon = memchr(s, ':', v->len);
    size_t nl = colon ? (size_t)(colon - s) : 0;
    if (!colon || !is_token(s, nl)) {
        pt_config_error(x, v->pos,
                        "expected \"Name: value\" for \"force_header\", like \"X-Canary: always\"");
        return;
    }
    const char *val = colon + 1;
    size_t vl = v->len - nl - 1;
    while (vl > 0 && (*val == ' ' || *val == '\t')) {
        val++;
        vl--;
    }
    while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
        vl--;
    if (vl == 0) {
        pt_config_error(x, v->pos, "\"force_header\" needs a value after the colon");
        return;
    }
    sp->force_header = pt_config_strndup(x, &x->cfg->arena, s, nl);
    sp->force_header_len = nl;
    sp->force_header_value = pt_config_strndup(x, &x->cfg->arena, val, vl);
    sp->force_header_value_len = vl;
}

/* force_cookie: "name" (any value) or "name=value". */
static void load_force_cookie(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                              struct pt_split_cfg *sp)
{
    const char *s = get_str(x, v, "force_cookie");
    if (!s)
        return;
    const char *eq = memchr(s, '=', v->len);
    size_t nl = eq ? (size_t)(eq - s) : v->len;
    bool ok = is_token(s, nl);
    for (size_t i = nl; ok && i < v->len; i++)
        ok =
            s[i] > 0x20 && s[i] < 0x7f && s[i] != ';' && s[i] != ',' && s[i] != '"' && s[i] != '\\';
    if (!ok) {
        pt_config_error(x, v->pos,
                        "expected \"name\" or \"name=value\" for \"force_cookie\", like "
                        "\"canary=1\"");
        return;
    }
    sp->force_cookie = pt_config_strndup(x, &x->cfg->arena, s, nl);
    sp->force_cookie_len = nl;
    if (eq) {
        sp->force_cookie_value = pt_config_strndup(x, &x->cfg->arena, eq + 1, v->len - nl - 1);
        sp->force_cookie_value_len = v->len - nl - 1;
    }
}

static void load_split(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_proxy_cfg *p)
{
    static const char *const keys[] = {"to", "weight", "force_header", "force_cookie", NULL};
    if (!want_seq(x, v, "split"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"split\" needs at least one {to: NAME, weight: N}");
        return;
    }
    p->split = pt_config_alloc(x, &x->cfg->arena, v->len * sizeof(*p->split));
    uint64_t sum = 0;
    FOR_ITEMS(v, it)
    {
        if (it->kind != PT_YNODE_MAP) {
            pt_config_error(x, it->pos,
                            "expected a mapping like {to: app_v1, weight: 90} in \"split\", "
                            "found %s",
                            what_is(it));
            continue;
        }
        struct pt_split_cfg *sp = &p->split[p->n_split++];
        sp->pos = it->pos;
        sp->weight = 1;
        bool has_to = false;
        FOR_PAIRS(it, k, val)
        {
            uint64_t n;
            if (!known_key(x, k, keys, NULL, "a split entry"))
                continue;
            if (is(k, "to")) {
                has_to = true;
                const char *s = get_str(x, val, "to");
                if (!s)
                    continue;
                if (memmem(s, val->len, "://", 3)) {
                    pt_config_error(x, val->pos,
                                    "\"to\" in \"split\" must name an upstream, not a URL");
                    continue;
                }
                sp->to = pt_config_strndup(x, &x->cfg->arena, s, val->len);
                sp->upstream = named_upstream(x, val, s);
            } else if (is(k, "weight")) {
                if (get_uint(x, val, "weight", 0, MAX_WEIGHT, &n))
                    sp->weight = (uint32_t)n;
            } else if (is(k, "force_header")) {
                load_force_header(x, val, sp);
            } else {
                load_force_cookie(x, val, sp);
            }
        }
        if (!has_to)
            missing(x, it, "to", "a split entry");
        sum += sp->weight;
    }
    if (p->n_split > 0 && sum == 0)
        pt_config_error(x, v->pos, "the weights of \"split\" must not all be 0");
    if (p->n_split > 0) {
        p->to = p->split[0].to;
        p->upstream = p->split[0].upstream;
    }
}

static void load_proxy(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {
        "to", "strip_prefix", "preserve_host", "timeout", "strip_credentials", "headers", "split",
        NULL};
    static const char *const later[] = {"cache", "retry", "websocket", "buffer", NULL};
    struct pt_proxy_cfg *p = &r->proxy;
    p->timeout_ms = 30000;
    p->to_path = "";
    if (!want_map(x, v, "proxy"))
        return;
    const struct pt_ynode *to_key = NULL, *split_key = NULL;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, later, "proxy"))
            continue;
        if (is(k, "to")) {
            to_key = k;
            if (!split_key)
                load_proxy_to(x, val, p);
        } else if (is(k, "split")) {
            split_key = k;
            if (!to_key)
                load_split(x, val, p);
        } else if (is(k, "strip_prefix")) {
            get_bool(x, val, "strip_prefix", &p->strip_prefix);
        } else if (is(k, "preserve_host")) {
            get_bool(x, val, "preserve_host", &p->preserve_host);
        } else if (is(k, "strip_credentials")) {
            get_bool(x, val, "strip_credentials", &p->strip_credentials);
        } else if (is(k, "timeout")) {
            get_ms(x, val, "timeout", 1, PROXY_TIMEOUT_MAX_MS, &p->timeout_ms);
        } else {
            load_proxy_headers(x, val, p);
        }
    }
    if (to_key && split_key) {
        const struct pt_ynode *second =
            to_key->pos.line > split_key->pos.line || (to_key->pos.line == split_key->pos.line &&
                                                       to_key->pos.col > split_key->pos.col)
                ? to_key
                : split_key;
        pt_config_error(x, second->pos, "a proxy takes \"to\" or \"split\", not both");
    } else if (!to_key && !split_key) {
        missing(x, v, "to", "proxy");
    }
}

static void load_redirect(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {"to", "status", NULL};
    struct pt_redirect_cfg *rd = &r->redirect;
    rd->status = 301;
    if (!want_map(x, v, "redirect"))
        return;
    bool has_to = false;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "redirect"))
            continue;
        if (is(k, "to")) {
            has_to = true;
            const char *s = get_str(x, val, "to");
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"to\" must not be empty");
            else if (s)
                rd->to = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else {
            uint64_t n;
            if (!get_uint(x, val, "status", 301, 308, &n))
                continue;
            if (n != 301 && n != 302 && n != 303 && n != 307 && n != 308)
                pt_config_error(x, val->pos, "a redirect status must be 301, 302, 303, 307 or 308");
            else
                rd->status = (int)n;
        }
    }
    if (!has_to)
        missing(x, v, "to", "redirect");
}

static void load_respond(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {"status", "body", "headers", NULL};
    struct pt_respond_cfg *rs = &r->respond;
    rs->status = 200;
    rs->body = "";
    if (!want_map(x, v, "respond"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "respond"))
            continue;
        if (is(k, "status")) {
            uint64_t n;
            if (get_uint(x, val, "status", 200, 599, &n))
                rs->status = (int)n;
        } else if (is(k, "body")) {
            /* A body is bytes: line breaks and even NULs are fine. */
            if (val->kind == PT_YNODE_SCALAR && is_null(val))
                continue;
            const char *s = scalar(x, val, "body", "a string");
            if (s) {
                rs->body = pt_config_strndup(x, &x->cfg->arena, s, val->len);
                rs->body_len = val->len;
            }
        } else {
            load_kvs(x, val, "headers", true, &rs->headers, &rs->n_headers);
        }
    }
}

/* One name of static.index: a plain file name (no '/', not "." or ".."). */
static const char *get_index_name(struct pt_cfg_ctx *x, const struct pt_ynode *v)
{
    const char *s = get_str(x, v, "index");
    if (!s)
        return NULL;
    if (v->len == 0 || memchr(s, '/', v->len) || is(v, ".") || is(v, "..")) {
        pt_config_error(x, v->pos, "expected a file name like index.html in \"index\"");
        return NULL;
    }
    return pt_config_strndup(x, &x->cfg->arena, s, v->len);
}

static void load_static_index(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                              struct pt_static_cfg *f)
{
    if (v->kind == PT_YNODE_SCALAR) {
        const char *s = get_index_name(x, v);
        if (s) {
            f->index[0] = s;
            f->n_index = 1;
        }
        return;
    }
    if (!want_seq(x, v, "index"))
        return;
    if (v->len == 0 || v->len > PT_STATIC_MAX_INDEX_CFG) {
        pt_config_error(x, v->pos, "\"index\" takes 1 to %d file names", PT_STATIC_MAX_INDEX_CFG);
        return;
    }
    f->n_index = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = get_index_name(x, it);
        if (s)
            f->index[f->n_index++] = s;
    }
    if (f->n_index == 0) {
        f->index[0] = "index.html";
        f->n_index = 1;
    }
}

/* static.not_found_page: a path under root ("" turns it off); never climbs out with "..". */
static void load_not_found_page(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                                struct pt_static_cfg *f)
{
    const char *s = get_str(x, v, "not_found_page");
    if (!s)
        return;
    for (size_t i = 0; i < v->len;) {
        size_t j = i;
        while (j < v->len && s[j] != '/')
            j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') {
            pt_config_error(x, v->pos,
                            "\"not_found_page\" must be a file under root, without \"..\"");
            return;
        }
        i = j + 1;
    }
    f->not_found_page = pt_config_strndup(x, &x->cfg->arena, s, v->len);
}

static void load_static(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {
        "root",     "index",          "spa", "precompressed", "cache_control",
        "dotfiles", "not_found_page", NULL};
    static const char *const dot[] = {"deny", "allow", "ignore", NULL};
    struct pt_static_cfg *f = &r->files;
    f->index[0] = "index.html";
    f->n_index = 1;
    f->precompressed = true;
    f->not_found_page = "404.html";
    if (!want_map(x, v, "static"))
        return;
    bool has_root = false;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "static"))
            continue;
        if (is(k, "root")) {
            has_root = true;
            f->root = get_dir(x, val, "root");
        } else if (is(k, "index")) {
            load_static_index(x, val, f);
        } else if (is(k, "spa")) {
            get_bool(x, val, "spa", &f->spa);
        } else if (is(k, "precompressed")) {
            get_bool(x, val, "precompressed", &f->precompressed);
        } else if (is(k, "cache_control")) {
            const char *s = get_str(x, val, "cache_control");
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"cache_control\" must not be empty (leave it out)");
            else if (s)
                f->cache_control = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else if (is(k, "dotfiles")) {
            const char *s = get_str(x, val, "dotfiles");
            if (!s)
                continue;
            size_t i = 0;
            while (dot[i] && !is(val, dot[i]))
                i++;
            if (dot[i]) {
                f->dotfiles = (int)i; /* dot[] follows enum pt_static_dotfiles */
                continue;
            }
            const char *best = nearest(s, val->len, dot, SIZE_MAX);
            if (best)
                pt_config_error(x, val->pos, "unknown dotfiles \"%.*s\"; did you mean \"%s\"?",
                                shown(val->len), s, best);
            else
                pt_config_error(x, val->pos, "expected deny, allow or ignore for \"dotfiles\"");
        } else {
            load_not_found_page(x, val, f);
        }
    }
    if (!has_root)
        missing(x, v, "root", "static");
}

static void load_methods(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const names[] = {NULL,     "GET",     "HEAD",    "POST",  "PUT",
                                        "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    if (!want_seq(x, v, "methods"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"methods\" must not be empty (omit it to allow all)");
        return;
    }
    const char **other = NULL;
    size_t n_other = 0;
    FOR_ITEMS(v, it)
    {
        if (it->kind != PT_YNODE_SCALAR || !is_token(it->s, it->len)) {
            pt_config_error(x, it->pos, "expected a method name like GET in \"methods\"");
            continue;
        }
        int id = 0;
        const char *upper = NULL;
        for (int m = PT_METHOD_GET; m < PT_METHOD__COUNT; m++) {
            if (is(it, names[m]))
                id = m;
            else if (it->len == strlen(names[m]) && strncasecmp(it->s, names[m], it->len) == 0)
                upper = names[m];
        }
        if (id) {
            r->methods_mask |= 1u << id;
            continue;
        }
        if (upper) {
            pt_config_error(x, it->pos, "methods are case-sensitive: did you mean \"%s\"?", upper);
            continue;
        }
        if (!other)
            other = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*other));
        other[n_other++] = pt_config_strndup(x, &x->cfg->arena, it->s, it->len);
    }
    r->methods_other = other;
}

static void load_route(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_route_cfg *r)
{
    static const char *const keys[] = {"match",   "methods", "proxy", "redirect",
                                       "respond", "static",  NULL};
    static const char *const later[] = {"cache", "rate_limit", "auth",    "acl",
                                        "waf",   "compress",   "headers", NULL};
    r->pos = v->pos;
    if (v->kind != PT_YNODE_MAP) {
        pt_config_error(x, v->pos,
                        "expected a route mapping like {match: \"/\", proxy: ...}, "
                        "found %s",
                        what_is(v));
        return;
    }
    const struct pt_ynode *action_key = NULL;
    bool has_match = false;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, later, "a route"))
            continue;
        if (is(k, "match")) {
            has_match = true;
            r->match_pos = val->pos;
            const char *s = get_str(x, val, "match");
            if (s && val->len == 0)
                pt_config_error(x, val->pos, "\"match\" must not be empty");
            else if (s)
                r->match = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else if (is(k, "methods")) {
            load_methods(x, val, r);
        } else {
            if (action_key) {
                pt_config_error(x, k->pos,
                                "a route takes only one of proxy, redirect, respond or static "
                                "(\"%s\" already at line %d)",
                                action_key->s, action_key->pos.line);
                continue;
            }
            action_key = k;
            if (is(k, "proxy")) {
                r->action = PT_ACTION_PROXY;
                load_proxy(x, val, r);
            } else if (is(k, "redirect")) {
                r->action = PT_ACTION_REDIRECT;
                load_redirect(x, val, r);
            } else if (is(k, "respond")) {
                r->action = PT_ACTION_RESPOND;
                load_respond(x, val, r);
            } else {
                r->action = PT_ACTION_STATIC;
                r->files.index_in_config = x->cfg->n_static_routes++;
                load_static(x, val, r);
            }
        }
    }
    if (!has_match)
        missing(x, v, "match", "a route");
    if (!action_key)
        pt_config_error(x, v->pos, "a route needs one of proxy, redirect, respond or static");
}

static void load_routes(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site)
{
    if (!want_seq(x, v, "routes"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"routes\" needs at least one route");
        return;
    }
    site->routes = pt_config_alloc(x, &x->cfg->arena, v->len * sizeof(*site->routes));
    FOR_ITEMS(v, it)
    {
        load_route(x, it, &site->routes[site->n_routes++]);
    }
}

/* Lower-cases and checks one site host; returns NULL on success or what is wrong. */
static const char *norm_host(char *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h[i] >= 'A' && h[i] <= 'Z')
            h[i] = (char)(h[i] - 'A' + 'a');
    size_t p = 0, name_end;
    if (n == 1 && h[0] == '*')
        return "\"*\" is not a host name: leave hosts out for the default (catch-all) site";
    if (n >= 2 && h[0] == '*' && h[1] == '.')
        p = 2;
    if (memchr(h + p, '*', n - p))
        return "a wildcard must be a leading \"*.\", like *.example.com";
    const char *port = NULL;
    if (p < n && h[p] == '[') {
        const char *rb = memchr(h + p, ']', n - p);
        if (!rb || p)
            return "expected [IPv6]:port or a host name";
        if (!is_ipv6_literal(h + p + 1, (size_t)(rb - h - p - 1)))
            return "not a valid IPv6 address";
        name_end = (size_t)(rb - h) + 1;
        if (name_end < n && h[name_end] != ':')
            return "unexpected text after ']'";
    } else {
        const char *colon = memchr(h + p, ':', n - p);
        name_end = colon ? (size_t)(colon - h) : n;
        if (!is_hostname(h + p, name_end - p) || h[name_end - 1] == '.')
            return "expected a host name like example.com or *.example.com";
    }
    if (name_end < n) {
        port = h + name_end + 1;
        if (parse_port(port, (size_t)(h + n - port)) < 0)
            return "the port must be a number from 1 to 65535";
    }
    return NULL;
}

static void load_hosts(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site)
{
    if (!want_seq(x, v, "hosts"))
        return;
    if (v->len == 0) {
        pt_config_error(x, v->pos,
                        "\"hosts\" must not be empty (leave it out for the default "
                        "site)");
        return;
    }
    site->hosts = pt_config_alloc(x, &x->cfg->arena, v->len * sizeof(*site->hosts));
    FOR_ITEMS(v, it)
    {
        const char *s = get_str(x, it, "hosts");
        if (!s)
            continue;
        char *h = pt_config_strndup(x, &x->cfg->arena, s, it->len);
        const char *why = norm_host(h, it->len);
        if (why) {
            pt_config_error(x, it->pos, "bad host \"%.*s\": %s", shown(it->len), s, why);
            continue;
        }
        site->hosts[site->n_hosts++] = h;
        struct pt_cfg_hostref *ref = pt_config_alloc(x, &x->tmp, sizeof(*ref));
        ref->host = h;
        ref->pos = it->pos;
        ref->next = x->hosts;
        x->hosts = ref;
    }
}

/* hsts.max_age: whole seconds, or a duration (s, m, h, and d for days). */
static bool get_max_age(struct pt_cfg_ctx *x, const struct pt_ynode *v, uint64_t *out)
{
    const char *s = scalar(x, v, "max_age", "seconds or a duration like 365d");
    if (!s)
        return false;
    uint64_t n = 0, ms;
    size_t i = 0;
    for (; i < v->len && i < 12 && s[i] >= '0' && s[i] <= '9'; i++)
        n = n * 10 + (uint64_t)(s[i] - '0');
    if (i > 0 && i + 1 == v->len && s[i] == 'd' && n <= UINT32_MAX) {
        n *= 86400;
    } else if (!memchr(s, '\0', v->len) && pt_config_parse_duration(s, &ms) == 0 &&
               ms % 1000 == 0) {
        n = ms / 1000;
    } else {
        pt_config_error(x, v->pos,
                        "expected seconds or a duration like 31536000, 12h or 365d for "
                        "\"max_age\"");
        return false;
    }
    if (n > 100ull * 365 * 86400) {
        pt_config_error(x, v->pos, "\"max_age\" is too long (at most 100 years)");
        return false;
    }
    *out = n;
    return true;
}

static void load_hsts(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site)
{
    static const char *const keys[] = {"max_age", "include_subdomains", "preload", NULL};
    if (!want_map(x, v, "hsts"))
        return;
    site->hsts_is_set = true;
    bool has_max_age = false;
    const struct pt_ynode *preload = NULL;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "hsts"))
            continue;
        if (is(k, "max_age")) {
            has_max_age = true;
            get_max_age(x, val, &site->hsts_max_age_s);
        } else if (is(k, "include_subdomains")) {
            get_bool(x, val, "include_subdomains", &site->hsts_include_subdomains);
        } else {
            preload = val;
            get_bool(x, val, "preload", &site->hsts_preload);
        }
    }
    if (!has_max_age)
        missing(x, v, "max_age", "hsts");
    /* https://hstspreload.org/#submission-requirements */
    if (site->hsts_preload && has_max_age &&
        (site->hsts_max_age_s < 31536000 || !site->hsts_include_subdomains))
        pt_config_error(x, preload->pos,
                        "hsts \"preload\" needs max_age of at least 31536000 (one year) and "
                        "include_subdomains: true (the preload list's rules)");
}

/* ---- error pages ------------------------------------------------------------------------- */

/*
 * Reads the page file for key into the config arena: a regular file of at most
 * PT_ERROR_PAGE_MAX bytes. Returns false after reporting at v. Read once at load, so serving
 * an error never touches the disk, and a page edited on disk takes effect at the next reload.
 */
static bool read_page(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *path,
                      struct pt_error_page *pg)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        pt_config_error(x, v->pos, "cannot read error page \"%.120s\": %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    const char *why = !S_ISREG(st.st_mode)                       ? "not a regular file"
                      : (uint64_t)st.st_size > PT_ERROR_PAGE_MAX ? "larger than 1 MiB"
                                                                 : NULL;
    char *buf = why ? NULL : pt_config_alloc(x, &x->cfg->arena, (size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            why = k < 0 ? strerror(errno) : "the file shrank while being read";
            break;
        }
        n += (size_t)k;
    }
    close(fd);
    if (why) {
        pt_config_error(x, v->pos, "cannot use error page \"%.120s\": %s", path, why);
        return false;
    }
    buf[n] = '\0';
    pg->path = path;
    pg->body = buf;
    pg->body_len = n;
    return true;
}

/* errors: {STATUS: FILE, ...} for a site or the top level. */
static void load_errors(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_error_page **out,
                        size_t *n_out)
{
    if (!want_map(x, v, "errors"))
        return;
    *out = pt_config_alloc(x, &x->cfg->arena, (v->len / 2) * sizeof(**out));
    FOR_PAIRS(v, k, val)
    {
        if (k->is_dup)
            continue;
        bool ok = k->kind == PT_YNODE_SCALAR && k->len == 3;
        int status = 0;
        for (size_t i = 0; ok && i < 3; i++) {
            ok = k->s[i] >= '0' && k->s[i] <= '9';
            status = status * 10 + (k->s[i] - '0');
        }
        if (!ok || status < 400 || status > 599) {
            pt_config_error(x, k->pos,
                            "expected an HTTP status from 400 to 599 as a key of \"errors\", "
                            "like 404: pages/404.html");
            continue;
        }
        char *path = get_path(x, val, "errors", "file");
        if (!path)
            continue;
        struct pt_error_page *pg = &(*out)[*n_out];
        pg->status = status;
        if (read_page(x, val, path, pg))
            (*n_out)++;
    }
}

const struct pt_error_page *pt_config_error_page(const struct pt_config *cfg,
                                                 const struct pt_site_cfg *site, int status)
{
    for (size_t i = 0; site && i < site->n_error_pages; i++)
        if (site->error_pages[i].status == status)
            return &site->error_pages[i];
    for (size_t i = 0; i < cfg->n_error_pages; i++)
        if (cfg->error_pages[i].status == status)
            return &cfg->error_pages[i];
    return NULL;
}

/* ---- Netlify rule files (_redirects, _headers, netlify.toml) ---------------------------- */

/* Reads path whole into *buf (malloc'ed; the caller frees). Returns 0, or an errno value. */
static int nf_read_file(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) < 0) {
        err = errno;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        err = EISDIR;
        goto done;
    }
    /* One byte more than the readers accept, so that they see and refuse a larger file. */
    size_t cap = (size_t)st.st_size < PT_NF_MAX_FILE_BYTES ? (size_t)st.st_size + 1
                                                           : (size_t)PT_NF_MAX_FILE_BYTES + 1;
    char *b = malloc(cap);
    if (!b) {
        err = ENOMEM;
        goto done;
    }
    size_t n = 0;
    while (n < cap) {
        ssize_t k = read(fd, b + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            err = errno;
            free(b);
            goto done;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    *buf = b;
    *len = n;
done:
    close(fd);
    return err;
}

/* "ROOT/name" in the config arena when it is a regular file, else NULL. */
static const char *nf_default_file(struct pt_cfg_ctx *x, const char *root, const char *name)
{
    if (!root)
        return NULL;
    size_t n = strlen(root) + strlen(name) + 2;
    char *p = pt_config_alloc(x, &x->cfg->arena, n);
    snprintf(p, n, "%s/%s", root, name);
    struct stat st;
    if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    return p;
}

enum nf_kind { NF_REDIRECTS, NF_HEADERS, NF_TOML };

/* Reads one rule file into the lists; a file that cannot be read is a configuration error. */
static void nf_load_file(struct pt_cfg_ctx *x, struct pt_site_cfg *site, const char *path,
                         enum nf_kind kind, struct pt_nf_rules *rules,
                         struct pt_nf_header_rules *hdrs)
{
    char *buf;
    size_t len;
    int err = nf_read_file(path, &buf, &len);
    if (err) {
        pt_config_error(x, site->pos, "cannot read \"%.200s\": %s", path, strerror(err));
        return;
    }
    struct pt_nf_errors errs;
    memset(&errs, 0, sizeof(errs));
    struct pt_arena *a = &x->cfg->arena;
    int rc = kind == NF_REDIRECTS ? pt_nf_parse_redirects(a, path, buf, len, rules, &errs)
             : kind == NF_HEADERS ? pt_nf_parse_headers(a, path, buf, len, hdrs, &errs)
                                  : pt_nf_parse_toml(a, path, buf, len, rules, hdrs, &errs);
    free(buf);
    for (size_t i = 0; i < errs.n; i++)
        pt_config_warn_file(x, path, errs.items[i].line, 1, "%s (%s)", errs.items[i].reason,
                            rc == PT_OK ? "skipped" : "the file is not used");
    if (errs.n_dropped)
        pt_config_warn_file(x, path, 0, 0, "%zu more bad rules skipped", errs.n_dropped);
    if (rc != PT_OK && errs.n == 0)
        pt_config_error(x, site->pos, "cannot load \"%.200s\" (out of memory)", path);
}

/*
 * The route pattern for a Netlify rule's from_path, in the form requests are matched in
 * (decoded and normalised, route/path.c), allocated from the config arena; NULL with *why set
 * when the router cannot take it. A trailing slash is dropped (Netlify ignores it; the router
 * takes "/a/" for "/a"); '*' may only end the path.
 */
static const char *nf_pattern(struct pt_cfg_ctx *x, const char *p, const char **why)
{
    size_t n = strlen(p);
    const char *star = strchr(p, '*');
    if (star && star[1] != '\0') {
        *why = "'*' is supported only at the end of the path";
        return NULL;
    }
    if (strcasestr(p, "%3A") || strcasestr(p, "%2A")) {
        *why = "an escaped ':' or '*' would read as a placeholder or a splat";
        return NULL;
    }
    size_t lit = star ? (size_t)(star - p) : n;
    char norm[4096];
    ssize_t k = lit < sizeof(norm) - 2 ? pt_path_normalize(p, lit, norm, sizeof(norm) - 1) : -1;
    if (k <= 0) {
        *why = "not a valid path (a \"..\" above the root, a control character or a bad "
               "%-escape)";
        return NULL;
    }
    if (!star && k > 1 && norm[k - 1] == '/')
        k--;
    if (star)
        norm[k++] = '*';
    return pt_arena_strndup(&x->cfg->arena, norm, (size_t)k);
}

/* Whether requests for host (a domain-level rule's "name[:port]") reach this site: it is the
   default site (no hosts) or one of its host patterns takes the name. */
static bool nf_site_has_host(const struct pt_site_cfg *site, const char *host)
{
    if (site->n_hosts == 0)
        return true;
    size_t hl = strcspn(host, ":");
    for (size_t i = 0; i < site->n_hosts; i++) {
        const char *p = site->hosts[i];
        size_t pl = strcspn(p, ":");
        if (pl == hl && memcmp(p, host, hl) == 0)
            return true;
        if (p[0] == '*' && p[1] == '.' && hl > pl - 1 &&
            memcmp(host + hl - (pl - 1), p + 1, pl - 1) == 0)
            return true;
    }
    return false;
}

/* Turns one Netlify rule into a route; false (after a warning or an error) to skip it. */
static bool nf_compile_rule(struct pt_cfg_ctx *x, struct pt_site_cfg *site,
                            const struct pt_nf_rule *nr, struct pt_route_cfg *r)
{
    memset(r, 0, sizeof(*r));
    if (nr->from_host && !nf_site_has_host(site, nr->from_host))
        pt_config_warn_file(x, nr->file, nr->line, 1,
                            "\"%s\" is not among the site's hosts, so this domain-level rule "
                            "never applies; add the host to the site's hosts",
                            nr->from_host);
    if (nr->n_countries && !x->cfg->geoip.is_set) {
        pt_config_error(x, site->pos,
                        "%s:%d: Country= needs a GeoIP database: set geoip.database to a MaxMind "
                        "DB file (.mmdb) with country data",
                        nr->file, nr->line);
        return false;
    }
    for (size_t i = 0; i < nr->n_countries; i++)
        if (strlen(nr->countries[i]) != 2)
            pt_config_warn_file(x, nr->file, nr->line, 1,
                                "Country=%s is not a two-letter ISO 3166-1 code, so it never "
                                "matches",
                                nr->countries[i]);
    const char *why = "out of memory";
    const char *pattern = nf_pattern(x, nr->from_path, &why);
    if (!pattern) {
        pt_config_warn_file(x, nr->file, nr->line, 1, "\"%s\": %s (rule skipped)", nr->from_path,
                            why);
        return false;
    }
    r->match = pattern;
    r->nf = nr;
    r->pos = site->pos;
    r->match_pos = site->pos;
    if (nr->is_proxy) {
        struct pt_ynode v;
        memset(&v, 0, sizeof(v));
        v.kind = PT_YNODE_SCALAR;
        v.pos = site->pos;
        v.s = nr->to;
        v.len = strlen(nr->to);
        r->action = PT_ACTION_PROXY;
        r->proxy.to = nr->to;
        r->proxy.timeout_ms = 30000;
        r->proxy.upstream = inline_upstream(x, &v, &r->proxy);
        r->proxy.request.set = nr->headers; /* netlify.toml `headers` for the proxied request */
        r->proxy.request.n_set = nr->n_headers;
        if (!r->proxy.to_path || !r->proxy.to_path[0])
            r->proxy.to_path = "/";
        return r->proxy.upstream != NULL;
    }
    if (nr->is_rewrite) {
        r->action = PT_ACTION_RESPOND; /* answered by handler/netlify_rules.c at dispatch */
        r->respond.status = nr->status;
        r->respond.body = "";
        return true;
    }
    r->action = PT_ACTION_REDIRECT;
    r->redirect.to = nr->to;
    r->redirect.status = nr->status;
    return true;
}

/*
 * Loads the site's Netlify files and compiles the redirect rules into routes placed just
 * before the site's first static route (after every YAML route before it).
 */
static void load_netlify(struct pt_cfg_ctx *x, struct pt_site_cfg *site, bool has_redirects_key,
                         bool has_headers_key)
{
    const char *root = NULL;
    size_t first_static = site->n_routes;
    for (size_t i = 0; i < site->n_routes; i++)
        if (site->routes[i].action == PT_ACTION_STATIC) {
            root = site->routes[i].files.root;
            first_static = i;
            break;
        }
    site->nf_root = root;
    if (!has_redirects_key)
        site->redirects_file = nf_default_file(x, root, "_redirects");
    if (!has_headers_key)
        site->headers_file = nf_default_file(x, root, "_headers");
    if (!site->redirects_file && !site->headers_file && !site->netlify_toml)
        return;
    struct pt_nf_rules rules;
    struct pt_nf_header_rules hdrs;
    memset(&rules, 0, sizeof(rules));
    memset(&hdrs, 0, sizeof(hdrs));
    if (site->redirects_file)
        nf_load_file(x, site, site->redirects_file, NF_REDIRECTS, &rules, &hdrs);
    if (site->headers_file)
        nf_load_file(x, site, site->headers_file, NF_HEADERS, &rules, &hdrs);
    if (site->netlify_toml)
        nf_load_file(x, site, site->netlify_toml, NF_TOML, &rules, &hdrs);
    site->nf_headers = hdrs.items;
    site->n_nf_headers = hdrs.n;
    if (rules.n == 0)
        return;
    size_t total = site->n_routes + rules.n;
    struct pt_route_cfg *routes = pt_config_alloc(x, &x->cfg->arena, total * sizeof(*routes));
    size_t n = 0;
    for (size_t i = 0; i < first_static; i++)
        routes[n++] = site->routes[i];
    for (size_t i = 0; i < rules.n; i++)
        if (nf_compile_rule(x, site, &rules.items[i], &routes[n]))
            n++;
    for (size_t i = first_static; i < site->n_routes; i++)
        routes[n++] = site->routes[i];
    site->routes = routes;
    site->n_routes = n;
}

static void load_site(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site)
{
    static const char *const keys[] = {"hosts",        "routes",         "https_redirect",
                                       "hsts",         "redirects_file", "headers_file",
                                       "netlify_toml", "errors",         NULL};
    static const char *const later[] = {"tls", "static", "headers", "redirects", NULL};
    bool has_redirects_key = false, has_headers_key = false;
    site->pos = v->pos;
    if (v->kind != PT_YNODE_MAP) {
        pt_config_error(x, v->pos,
                        "expected a site mapping like {hosts: [...], routes: [...]}, "
                        "found %s",
                        what_is(v));
        return;
    }
    bool has_routes = false;
    const struct pt_ynode *redirect_val = NULL;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, later, "a site"))
            continue;
        if (is(k, "hosts")) {
            load_hosts(x, val, site);
        } else if (is(k, "https_redirect")) {
            redirect_val = val;
            get_bool(x, val, "https_redirect", &site->https_redirect);
        } else if (is(k, "hsts")) {
            load_hsts(x, val, site);
        } else if (is(k, "redirects_file")) {
            has_redirects_key = true;
            site->redirects_file = get_path(x, val, "redirects_file", "file");
        } else if (is(k, "headers_file")) {
            has_headers_key = true;
            site->headers_file = get_path(x, val, "headers_file", "file");
        } else if (is(k, "netlify_toml")) {
            site->netlify_toml = get_path(x, val, "netlify_toml", "file");
        } else if (is(k, "errors")) {
            load_errors(x, val, &site->error_pages, &site->n_error_pages);
        } else {
            has_routes = true;
            load_routes(x, val, site);
        }
    }
    if (!has_routes)
        missing(x, v, "routes", "a site");
    else
        load_netlify(x, site, has_redirects_key, has_headers_key);
    bool any_tls = false;
    for (size_t i = 0; i < x->cfg->n_listens; i++)
        any_tls |= x->cfg->listens[i].is_tls;
    /* Sending clients to https where nothing answers is worse than serving them plain. */
    if (site->https_redirect && !any_tls && x->cfg->n_listens > 0)
        pt_config_error(x, redirect_val->pos,
                        "\"https_redirect\" needs a listener with tls: true: no listener "
                        "takes HTTPS, so redirected clients would find nothing there");
}

static int hostref_cmp(const void *pa, const void *pb)
{
    const struct pt_cfg_hostref *a = *(const struct pt_cfg_hostref *const *)pa;
    const struct pt_cfg_hostref *b = *(const struct pt_cfg_hostref *const *)pb;
    int rc = strcmp(a->host, b->host);
    if (rc)
        return rc;
    if (a->pos.line != b->pos.line)
        return a->pos.line < b->pos.line ? -1 : 1;
    return a->pos.col < b->pos.col ? -1 : (a->pos.col > b->pos.col);
}

static void check_sites(struct pt_cfg_ctx *x)
{
    struct pt_config *cfg = x->cfg;
    const struct pt_site_cfg *dflt = NULL;
    for (size_t i = 0; i < cfg->n_sites; i++) {
        const struct pt_site_cfg *s = &cfg->sites[i];
        if (s->n_hosts > 0 || s->hosts)
            continue;
        if (dflt)
            pt_config_error(x, s->pos,
                            "only one site may leave out hosts (the default site is already "
                            "at line %d)",
                            dflt->pos.line);
        else
            dflt = s;
    }
    size_t n = 0;
    for (const struct pt_cfg_hostref *r = x->hosts; r; r = r->next)
        n++;
    if (n < 2)
        return;
    struct pt_cfg_hostref **all = pt_config_alloc(x, &x->tmp, n * sizeof(*all));
    n = 0;
    for (struct pt_cfg_hostref *r = x->hosts; r; r = r->next)
        all[n++] = r;
    qsort(all, n, sizeof(*all), hostref_cmp);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(all[i]->host, all[first]->host) == 0)
            pt_config_error(x, all[i]->pos, "host \"%.60s\" is listed twice (first at line %d)",
                            all[i]->host, all[first]->pos.line);
        else
            first = i;
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
        if (get_uint(x, v, "workers", 1, MAX_WORKERS, &n))
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
        int pn = parse_port(p, (size_t)(s + n - p));
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
    if (!want_map(x, v, "resolver"))
        return;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "resolver"))
            continue;
        if (is(k, "timeout")) {
            get_ms(x, val, "timeout", 100, 60000, &r->timeout_ms);
            continue;
        }
        if (!want_seq(x, val, "servers"))
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
            const char *s = get_str(x, it, "servers");
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
    if (!want_map(x, v, "geoip"))
        return;
    bool has_database = false;
    FOR_PAIRS(v, k, val)
    {
        if (!known_key(x, k, keys, NULL, "geoip"))
            continue;
        has_database = true;
        g->pos = val->pos;
        g->database = get_file(x, val, "database");
    }
    if (!has_database)
        missing(x, v, "database", "geoip");
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
    const char *s = get_str(x, v, "server_header");
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
    static const char *const keys[] = {"workers",         "shutdown_timeout",
                                       "listen",          "limits",
                                       "trusted_proxies", "log",
                                       "upstreams",       "sites",
                                       "routes",          "tls",
                                       "resolver",        "geoip",
                                       "server_header",   "errors",
                                       "pid_file",        NULL};
    static const char *const later[] = {"admin", "cache", "metrics",     "redis", "rules",
                                        "acl",   "waf",   "rate_limits", NULL};
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
        if (!known_key(x, k, keys, later, "the top level"))
            continue;
        if (is(k, "workers")) {
            load_workers(x, v);
        } else if (is(k, "shutdown_timeout")) {
            get_ms(x, v, "shutdown_timeout", 0, UINT32_MAX, &cfg->shutdown_timeout_ms);
        } else if (is(k, "listen")) {
            has_listen = true;
            load_listen(x, v);
        } else if (is(k, "limits")) {
            load_limits(x, v);
        } else if (is(k, "trusted_proxies")) {
            load_trusted(x, v);
        } else if (is(k, "log")) {
            load_log(x, v);
        } else if (is(k, "upstreams")) {
            load_upstreams(x, v);
        } else if (is(k, "sites")) {
            sites = v;
        } else if (is(k, "tls")) {
            load_tls(x, v);
        } else if (is(k, "resolver")) {
            load_resolver(x, v);
        } else if (is(k, "geoip")) {
            load_geoip(x, v);
        } else if (is(k, "server_header")) {
            load_server_header(x, v);
        } else if (is(k, "errors")) {
            load_errors(x, v, &cfg->error_pages, &cfg->n_error_pages);
        } else if (is(k, "pid_file")) {
            cfg->pid_file = get_path(x, v, "pid_file", "file");
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
    if (sites && want_seq(x, sites, "sites")) {
        if (sites->len == 0 && !routes)
            pt_config_error(x, sites->pos, "\"sites\" needs at least one site");
        FOR_ITEMS(sites, it)
        {
            load_site(x, it, &cfg->sites[cfg->n_sites++]);
        }
    }
    if (routes) {
        /* The shorthand is a default site in every respect, its Netlify files included. */
        struct pt_site_cfg *site = &cfg->sites[cfg->n_sites++];
        site->pos = routes_key->pos;
        load_routes(x, routes, site);
        load_netlify(x, site, false, false);
    }
    check_sites(x);
    check_tls_listeners(x);
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
    struct pt_arena a = cfg->arena; /* cfg itself lives in the arena: copy before freeing */
    pt_arena_free(&a);
}
