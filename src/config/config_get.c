/*
 * config_get.c - what every section of the schema uses: typed getters for scalar values, the
 * key checks (unknown keys with a did-you-mean, keys of a later version, missing keys), the
 * files and directories a configuration names, and URLs and targets.
 *
 * A getter reports "FILE:LINE:COL: expected ... for \"key\"" at the value and returns false
 * (or NULL), leaving the caller's default in place; the loader goes on and collects every
 * error of the file in one pass (config.c).
 *
 * Files the configuration names (certificates, keys, CA bundles, static roots) are checked
 * here for existence and readability, with relative paths taken from the configuration file's
 * directory (pt_config_resolve_path); their contents are left to the layers that use them (the
 * TLS layer parses PEM and reports "FILE: reason"), so the loader stays free of OpenSSL.
 *
 * Target host names: pt_config_make_target() checks the URL and marks a target whose host is
 * a name (is_dns, addr left zero); the loader never resolves. Turning each such target into
 * one target per address is the next step, above this layer (pt_dns_expand in upstream/dns.h,
 * called by main.c right after the load), which reports a name without an address at its URL
 * through pt_config_report(), in the same form as the loader's errors. Fuzz builds
 * (PT_FUZZING) accept only address literals and "localhost" so the fuzzer never touches the
 * network.
 */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

bool pt_config_want_map(struct pt_cfg_ctx *x, const struct pt_ynode *n, const char *key)
{
    if (n->kind == PT_YNODE_MAP)
        return true;
    pt_config_error(x, n->pos, "expected a mapping (key: value) for \"%s\", found %s", key,
                    what_is(n));
    return false;
}

bool pt_config_want_seq(struct pt_cfg_ctx *x, const struct pt_ynode *n, const char *key)
{
    if (n->kind == PT_YNODE_SEQ)
        return true;
    pt_config_error(x, n->pos, "expected a list for \"%s\", found %s", key, what_is(n));
    return false;
}

/* A non-null scalar's text, or NULL after reporting "expected <expect> for key". */
const char *pt_config_scalar(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
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
const char *pt_config_get_str(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    const char *s = pt_config_scalar(x, v, key, "a string");
    if (!s)
        return NULL;
    if (memchr(s, '\0', v->len) || memchr(s, '\r', v->len) || memchr(s, '\n', v->len)) {
        pt_config_error(x, v->pos, "\"%s\" must not contain line breaks or NUL bytes", key);
        return NULL;
    }
    return s;
}

bool pt_config_get_bool(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, bool *out)
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

bool pt_config_get_uint(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                        uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *s = pt_config_scalar(x, v, key, "a whole number");
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

bool pt_config_get_ms(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, uint64_t lo,
                      uint64_t hi, uint32_t *out)
{
    const char *s = pt_config_scalar(x, v, key, "a duration like 30s or 250ms");
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

bool pt_config_get_size(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                        uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *s = pt_config_scalar(x, v, key, "a size like 16k or 8m");
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
const char *pt_config_nearest(const char *s, size_t n, const char *const *names, size_t count)
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
bool pt_config_known_key(struct pt_cfg_ctx *x, const struct pt_ynode *k, const char *const *keys,
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
    const char *best = pt_config_nearest(k->s, k->len, keys, SIZE_MAX);
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

void pt_config_missing(struct pt_cfg_ctx *x, const struct pt_ynode *map, const char *key,
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
char *pt_config_resolve_path(struct pt_cfg_ctx *x, const char *s, size_t n)
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
char *pt_config_get_path(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                         const char *what)
{
    const char *s = pt_config_get_str(x, v, key);
    if (!s)
        return NULL;
    if (v->len == 0) {
        pt_config_error(x, v->pos, "\"%s\" must name a %s", key, what);
        return NULL;
    }
    return pt_config_resolve_path(x, s, v->len);
}

/*
 * A readable regular file for key (a certificate, key or CA bundle). Returns its resolved
 * path in the config arena, or NULL after reporting. The contents are not parsed here: the
 * TLS layer does that and reports "FILE: reason".
 */
const char *pt_config_get_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    char *path = pt_config_get_path(x, v, key, "file");
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
const char *pt_config_get_dir(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key)
{
    char *path = pt_config_get_path(x, v, key, "directory");
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

bool pt_config_is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Port number of 1..5 digits in 1..65535; -1 otherwise. */
int pt_config_parse_port(const char *s, size_t n)
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

bool pt_config_is_hostname(const char *s, size_t n)
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

bool pt_config_is_ipv6_literal(const char *s, size_t n)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

/* Splits an http:// or https:// URL. Returns NULL on success or what is wrong. */
const char *pt_config_parse_url(const char *s, size_t n, struct pt_cfg_url *u)
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
        if (!pt_config_is_ipv6_literal(u->host, u->host_len))
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
        if (!pt_config_is_hostname(u->host, u->host_len))
            return "not a valid host name";
    }
    u->port = u->is_https ? 443 : 80;
    if (port_s) {
        int port = pt_config_parse_port(port_s, (size_t)(auth + al - port_s));
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
bool pt_config_make_target(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                           bool is_inline, struct pt_target_cfg *t)
{
    struct pt_arena *a = &x->cfg->arena;
    struct pt_cfg_url u;
    const char *s = pt_config_get_str(x, v, key);
    if (!s)
        return false;
    const char *why = pt_config_parse_url(s, v->len, &u);
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
