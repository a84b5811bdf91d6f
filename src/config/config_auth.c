/*
 * config_auth.c - the `basic_auth:` and `jwt:` keys of a site and of a route (docs/config.md
 * "Authentication: basic_auth and jwt"), checked by guard/auth_basic.c and guard/jwt.c.
 *
 *     basic_auth: {realm: "Staff", htpasswd: FILE, forward_credentials: true} | off
 *     jwt: {jwks_file: FILE | jwks_url: URL | secret_file: FILE, jwks_refresh: 5m, jwks_ca: FILE,
 *           issuer: ISS, audience: AUD, clock_skew: 60s, require: [exp], header: NAME,
 *           cookie: NAME, claims_to_headers: {sub: X-User-Id}, forward_credentials: true} | off
 *
 * Files are read here, at load, so a reload reads them again. An htpasswd line is
 * "user:hash"; only hashes crypt(3) computes slowly on purpose are taken (bcrypt $2y$/$2b$/$2a$,
 * SHA-crypt $5$/$6$, yescrypt $y$): plaintext, DES, and Apache's $apr1$ MD5 are refused at
 * FILE:LINE, because a leaked file of those is as good as the passwords. A JWKS file is kept
 * as text and checked to be a JSON object with a "keys" list; the server turns it into keys
 * for its snapshot (guard/jwt.h), which checks each key. Config may not call the guard.
 *
 * The route's key replaces its site's; `off` lifts it (the pointer is dropped once the site's
 * routes are known, pt_config_finish_auth). Headers that must never reach the backend as the
 * client sent them (claims_to_headers names; Authorization with forward_credentials: false)
 * are appended to the proxy route's request `remove` list at load, so the upstream head
 * builder drops them with the mechanism it already has and no per-request work is added.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/config_internal.h"

#define AUTH_FILE_MAX (4u << 20) /* bytes of one htpasswd, JWKS or secret file */

/* Reads path whole into the configuration's arena (NUL-terminated). NULL after an error. */
static char *read_whole(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key,
                        const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        pt_config_error(x, v->pos, "cannot read \"%s\" file \"%.200s\": %s", key, path,
                        strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) < 0 || st.st_size > (off_t)AUTH_FILE_MAX) {
        pt_config_error(x, v->pos, "\"%s\" file \"%.200s\" is larger than %u bytes", key, path,
                        AUTH_FILE_MAX);
        goto out;
    }
    buf = pt_config_alloc(x, &x->cfg->arena, (size_t)st.st_size + 1);
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        pt_config_error(x, v->pos, "cannot read \"%s\" file \"%.200s\"", key, path);
        buf = NULL;
        goto out;
    }
    buf[n] = '\0';
    *len = n;
out:
    fclose(f);
    return buf;
}

/* Whether hash names a scheme Portico takes (see the file's comment). */
static bool hash_ok(const char *h, size_t n)
{
    static const char *const ok[] = {"$2y$", "$2b$", "$2a$", "$5$", "$6$", "$y$", NULL};
    for (size_t i = 0; ok[i]; i++) {
        size_t l = strlen(ok[i]);
        if (n > l + 8 && memcmp(h, ok[i], l) == 0)
            return true;
    }
    return false;
}

int pt_config_parse_htpasswd_line(char *line, size_t n, struct pt_htpasswd_user *out,
                                  const char **why)
{
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                 line[n - 1] == '\t'))
        n--;
    size_t s = 0;
    while (s < n && (line[s] == ' ' || line[s] == '\t'))
        s++;
    if (s == n || line[s] == '#')
        return 0;
    char *p = line + s;
    n -= s;
    if (memchr(p, '\0', n)) {
        *why = "a NUL byte";
        return -1;
    }
    char *colon = memchr(p, ':', n);
    if (!colon || colon == p) {
        *why = "expected user:hash";
        return -1;
    }
    size_t un = (size_t)(colon - p), hn = n - un - 1;
    char *h = colon + 1;
    /* Apache's format may carry more fields after the hash; crypt hashes hold no ':'. */
    char *c2 = memchr(h, ':', hn);
    if (c2)
        hn = (size_t)(c2 - h);
    for (size_t i = 0; i < hn; i++)
        if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f) {
            *why = "a space or control character in the hash";
            return -1;
        }
    if (hn >= 6 && memcmp(h, "$apr1$", 6) == 0) {
        *why = "an $apr1$ (Apache MD5) hash: use bcrypt (htpasswd -B) or SHA-crypt";
        return -1;
    }
    if (hn >= 5 && memcmp(h, "{SHA}", 5) == 0) {
        *why = "a {SHA} (unsalted SHA-1) hash: use bcrypt (htpasswd -B) or SHA-crypt";
        return -1;
    }
    if (!hash_ok(h, hn)) {
        *why = "not a bcrypt ($2y$), SHA-crypt ($5$, $6$) or yescrypt ($y$) hash (plaintext, "
               "DES and MD5 are refused)";
        return -1;
    }
    p[un] = '\0';
    h[hn] = '\0';
    out->name = p;
    out->hash = h;
    return 1;
}

static void load_htpasswd(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                          struct pt_basic_auth_cfg *b)
{
    b->htpasswd = pt_config_get_path(x, v, "htpasswd", "file");
    if (!b->htpasswd)
        return;
    size_t len = 0;
    char *text = read_whole(x, v, "htpasswd", b->htpasswd, &len);
    if (!text)
        return;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    b->users = pt_config_alloc(x, &x->cfg->arena, cap * sizeof(*b->users));
    unsigned lineno = 0, bad = 0;
    for (char *p = text; p < text + len;) {
        char *eol = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(text + len - p);
        lineno++;
        const char *why = NULL;
        struct pt_htpasswd_user u;
        int rc = pt_config_parse_htpasswd_line(p, n, &u, &why);
        if (rc < 0 && bad++ < 5)
            pt_config_error(x, v->pos, "%s:%u: %s", b->htpasswd, lineno, why);
        if (rc > 0) {
            for (size_t i = 0; i < b->n_users; i++)
                if (strcmp(b->users[i].name, u.name) == 0 && bad++ < 5)
                    pt_config_error(x, v->pos, "%s:%u: user \"%.60s\" is listed twice", b->htpasswd,
                                    lineno, u.name);
            b->users[b->n_users++] = u;
        }
        p += n + 1;
    }
    /* An empty file is accepted, as nginx does: every request is refused. */
}

/* A zeroed guard configuration of size bytes in the configuration's arena; *on tells whether
   v turns the guard on (a mapping): false when v is `off`/false (the route lifts its site's
   guard; the struct stays, is_on false) or after an error. */
static void *guard_new(struct pt_cfg_ctx *x, const struct pt_ynode *v, const char *key, size_t size,
                       bool *on)
{
    void *g = pt_config_alloc(x, &x->cfg->arena, size);
    memset(g, 0, size);
    *on = !(v->kind == PT_YNODE_SCALAR && (is(v, "off") || is(v, "false"))) &&
          pt_config_want_map(x, v, key);
    return g;
}

void pt_config_load_basic_auth(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                               struct pt_basic_auth_cfg **out)
{
    static const char *const keys[] = {"realm", "htpasswd", "forward_credentials", NULL};
    bool on;
    struct pt_basic_auth_cfg *b = guard_new(x, v, "basic_auth", sizeof(*b), &on);
    b->pos = v->pos;
    *out = b;
    if (!on)
        return;
    b->is_on = true;
    b->realm = "Restricted";
    b->forward_credentials = true;
    bool has_file = false;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "basic_auth"))
            continue;
        if (is(k, "realm")) {
            const char *s = pt_config_get_str(x, val, "realm");
            if (s && (strchr(s, '"') || strchr(s, '\\')))
                pt_config_error(x, val->pos, "\"realm\" must not hold '\"' or '\\'");
            else if (s)
                b->realm = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else if (is(k, "htpasswd")) {
            has_file = true;
            load_htpasswd(x, val, b);
        } else {
            pt_config_get_bool(x, val, "forward_credentials", &b->forward_credentials);
        }
    }
    if (!has_file)
        pt_config_missing(x, v, "htpasswd", "basic_auth");
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "WWW-Authenticate: Basic realm=\"%.400s\", charset=\"UTF-8\"\r\n", b->realm);
    b->challenge = pt_config_strndup(x, &x->cfg->arena, buf, (size_t)n);
    b->challenge_len = (size_t)n;
}

/* secret_file: the HS256 key, its trailing newline dropped; at least 32 bytes (RFC 7518
   §3.2: a key as long as the hash). */
static void load_secret(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_jwt_cfg *j)
{
    j->secret_file = pt_config_get_path(x, v, "secret_file", "file");
    if (!j->secret_file)
        return;
    size_t len = 0;
    char *s = read_whole(x, v, "secret_file", j->secret_file, &len);
    if (!s)
        return;
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    if (len < 32)
        pt_config_error(x, v->pos,
                        "secret_file \"%.200s\" holds %zu bytes: an HS256 secret needs at "
                        "least 32",
                        j->secret_file, len);
    j->secret = (const unsigned char *)s;
    j->secret_len = len;
}

static void load_jwks_file(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_jwt_cfg *j)
{
    j->jwks_file = pt_config_get_path(x, v, "jwks_file", "file");
    if (!j->jwks_file)
        return;
    char *text = read_whole(x, v, "jwks_file", j->jwks_file, &j->jwks_len);
    if (!text)
        return;
    json_error_t e;
    json_t *root = json_loadb(text, j->jwks_len, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        pt_config_error(x, v->pos, "%s:%d: not JSON: %s", j->jwks_file, e.line, e.text);
        return;
    }
    if (!json_is_array(json_object_get(root, "keys")))
        pt_config_error(x, v->pos, "%s: a JWKS is an object with a \"keys\" list (RFC 7517 §5)",
                        j->jwks_file);
    json_decref(root);
    j->jwks_text = text;
}

static void load_require(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_jwt_cfg *j)
{
    if (!pt_config_want_seq(x, v, "require"))
        return;
    const char **req = pt_config_alloc(x, &x->cfg->arena, (v->len + 1) * sizeof(*req));
    size_t n = 0;
    FOR_ITEMS(v, it)
    {
        const char *s = pt_config_get_str(x, it, "require");
        if (s)
            req[n++] = pt_config_strndup(x, &x->cfg->arena, s, it->len);
    }
    req[n] = NULL;
    j->require = req;
}

static void load_claims(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_jwt_cfg *j)
{
    if (!pt_config_want_map(x, v, "claims_to_headers"))
        return;
    j->claims = pt_config_alloc(x, &x->cfg->arena, (v->len / 2 + 1) * sizeof(*j->claims));
    FOR_PAIRS(v, k, val)
    {
        const char *claim = pt_config_get_str(x, k, "claims_to_headers");
        const char *h = pt_config_get_str(x, val, "claims_to_headers");
        if (!claim || !h)
            continue;
        if (!pt_config_is_token(h, val->len)) {
            pt_config_error(x, val->pos, "\"%.*s\" is not a header name", shown(val->len), h);
            continue;
        }
        struct pt_jwt_claim_header *c = &j->claims[j->n_claims++];
        c->claim = pt_config_strndup(x, &x->cfg->arena, claim, k->len);
        c->header = pt_config_strndup(x, &x->cfg->arena, h, val->len);
        c->header_len = val->len;
    }
}

static char *lower_dup(struct pt_cfg_ctx *x, const char *s, size_t n)
{
    char *d = pt_config_strndup(x, &x->cfg->arena, s, n);
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)d[i]);
    return d;
}

void pt_config_load_jwt(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_jwt_cfg **out)
{
    static const char *const keys[] = {
        "jwks_file",   "jwks_url", "jwks_refresh",      "jwks_timeout",        "jwks_ca",
        "secret_file", "issuer",   "audience",          "clock_skew",          "require",
        "header",      "cookie",   "claims_to_headers", "forward_credentials", NULL};
    bool on;
    struct pt_jwt_cfg *j = guard_new(x, v, "jwt", sizeof(*j), &on);
    j->pos = v->pos;
    *out = j;
    if (!on)
        return;
    j->is_on = true;
    j->jwks_refresh_ms = 300000;
    j->jwks_timeout_ms = 10000;
    j->clock_skew_s = 60;
    j->header = "authorization";
    j->header_len = 13;
    j->is_bearer = true;
    j->forward_credentials = true;
    static const char *dflt_require[] = {"exp", NULL};
    j->require = dflt_require;
    int n_sources = 0;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "jwt"))
            continue;
        if (is(k, "jwks_file")) {
            n_sources++;
            load_jwks_file(x, val, j);
        } else if (is(k, "secret_file")) {
            n_sources++;
            load_secret(x, val, j);
        } else if (is(k, "jwks_url")) {
            n_sources++;
            const char *s = pt_config_get_str(x, val, "jwks_url");
            struct pt_cfg_url u;
            const char *bad = s ? pt_config_parse_url(s, val->len, &u) : NULL;
            if (s && bad)
                pt_config_error(x, val->pos, "jwks_url: %s", bad);
            else if (s)
                j->jwks_url = pt_config_strndup(x, &x->cfg->arena, s, val->len);
        } else if (is(k, "jwks_ca")) {
            j->jwks_ca = pt_config_get_file(x, val, "jwks_ca");
        } else if (is(k, "jwks_refresh")) {
            pt_config_get_ms(x, val, "jwks_refresh", 1000, 86400000, &j->jwks_refresh_ms);
        } else if (is(k, "jwks_timeout")) {
            pt_config_get_ms(x, val, "jwks_timeout", 100, 60000, &j->jwks_timeout_ms);
        } else if (is(k, "issuer") || is(k, "audience")) {
            const char *s = pt_config_get_str(x, val, k->s);
            const char *d = s ? pt_config_strndup(x, &x->cfg->arena, s, val->len) : NULL;
            if (is(k, "issuer"))
                j->issuer = d;
            else
                j->audience = d;
        } else if (is(k, "clock_skew")) {
            uint32_t ms = 0;
            if (pt_config_get_ms(x, val, "clock_skew", 0, 3600000, &ms))
                j->clock_skew_s = ms / 1000;
        } else if (is(k, "require")) {
            load_require(x, val, j);
        } else if (is(k, "header")) {
            const char *s = pt_config_get_str(x, val, "header");
            if (s && !pt_config_is_token(s, val->len)) {
                pt_config_error(x, val->pos, "\"header\" must be a header name");
            } else if (s) {
                j->header = lower_dup(x, s, val->len);
                j->header_len = val->len;
                j->is_bearer = strcmp(j->header, "authorization") == 0;
            }
        } else if (is(k, "cookie")) {
            const char *s = pt_config_get_str(x, val, "cookie");
            if (s && !pt_config_is_token(s, val->len)) {
                pt_config_error(x, val->pos, "\"cookie\" must be a cookie name");
            } else if (s) {
                j->cookie = pt_config_strndup(x, &x->cfg->arena, s, val->len);
                j->cookie_len = val->len;
            }
        } else if (is(k, "claims_to_headers")) {
            load_claims(x, val, j);
        } else {
            pt_config_get_bool(x, val, "forward_credentials", &j->forward_credentials);
        }
    }
    if (n_sources != 1)
        pt_config_error(x, v->pos,
                        "jwt needs exactly one of jwks_file, jwks_url or secret_file (found "
                        "%d)",
                        n_sources);
    j->next = x->cfg->jwts;
    x->cfg->jwts = j;
}

/* Appends name to the route's upstream request remove list (once). */
static void strip_upstream(struct pt_cfg_ctx *x, struct pt_route_cfg *r, const char *name, size_t n)
{
    struct pt_header_ops *ops = &r->proxy.request;
    for (size_t i = 0; i < ops->n_remove; i++)
        if (ops->remove[i].name_len == n && strncasecmp(ops->remove[i].name, name, n) == 0)
            return;
    struct pt_kv *kv = pt_config_alloc(x, &x->cfg->arena, (ops->n_remove + 1) * sizeof(*kv));
    if (ops->n_remove)
        memcpy(kv, ops->remove, ops->n_remove * sizeof(*kv));
    memset(&kv[ops->n_remove], 0, sizeof(*kv));
    kv[ops->n_remove].name = name;
    kv[ops->n_remove].name_len = n;
    ops->remove = kv;
    ops->n_remove++;
}

void pt_config_finish_auth(struct pt_cfg_ctx *x, struct pt_site_cfg *site)
{
    for (size_t i = 0; i < site->n_routes; i++) {
        struct pt_route_cfg *r = &site->routes[i];
        if (!r->basic_auth)
            r->basic_auth = site->basic_auth;
        if (r->basic_auth && !r->basic_auth->is_on)
            r->basic_auth = NULL;
        if (!r->jwt)
            r->jwt = site->jwt;
        if (r->jwt && !r->jwt->is_on)
            r->jwt = NULL;
        if (r->action != PT_ACTION_PROXY)
            continue;
        if (r->basic_auth && !r->basic_auth->forward_credentials)
            strip_upstream(x, r, "authorization", 13);
        if (!r->jwt)
            continue;
        if (!r->jwt->forward_credentials && !r->jwt->cookie)
            strip_upstream(x, r, r->jwt->header, r->jwt->header_len);
        for (size_t k = 0; k < r->jwt->n_claims; k++)
            strip_upstream(x, r, r->jwt->claims[k].header, r->jwt->claims[k].header_len);
    }
}
