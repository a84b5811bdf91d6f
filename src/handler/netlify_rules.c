/*
 * netlify_rules.c - conditions, shadowing, error pages and _headers for Netlify rules.
 *
 * Everything here runs on the request path and never allocates: conditions read the parsed
 * request head (Country= looks the client up in the snapshot's GeoIP database once per
 * request, handler/geoip.c), shadowing is one O_PATH open of the static root plus one openat2
 * (RESOLVE_BENEATH) probe, and the _headers lines are built in a thread-local buffer.
 * Error-page files are sent like static files: the descriptor is handed to the connection,
 * which sends it after the head (sendfile), so no file byte is copied here.
 */
#include "handler/netlify_rules.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config/netlify.h"
#include "handler/geoip.h"
#include "handler/mime.h"
#include "handler/static.h"
#include "handler/handler.h"

/* Finds parameter name in a raw query string; *val gets the raw value of its last occurrence,
   as Netlify reads a repeated parameter. A bare "name" without '=' does not count. */
static bool query_find(struct pt_str q, const char *name, struct pt_str *val)
{
    size_t nl = strlen(name);
    const char *p = q.p, *end = q.p ? q.p + q.n : NULL;
    bool found = false;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            *val = (struct pt_str){eq + 1, (size_t)(e - eq - 1)};
            found = true;
        }
        p = amp ? amp + 1 : end;
    }
    return found;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes a query value as a form does ('+' is a space, %XX a byte; a malformed escape stays
   as written) into out; the decoded length, or -1 when cap is too small. */
static ssize_t query_decode(struct pt_str v, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (o >= cap)
            return -1;
        char c = v.p[i];
        int h, l;
        if (c == '%' && i + 2 < v.n && (h = hexval(v.p[i + 1])) >= 0 &&
            (l = hexval(v.p[i + 2])) >= 0) {
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = c == '+' ? ' ' : c;
        }
    }
    return (ssize_t)o;
}

/* Encodes bytes as a query component (unreserved kept, space as '+', the rest %XX): a value
   put into a target can never add a '/', '?' or '#' to it. Length, or -1 if cap is short. */
static ssize_t query_encode(const char *in, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if (o + (keep || c == ' ' ? 1 : 3) > cap)
            return -1;
        if (keep) {
            out[o++] = (char)c;
        } else if (c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return (ssize_t)o;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * The next name=value pair of a Cookie header from *p (up to end), advancing *p past it: the
 * name trimmed, the value trimmed and without surrounding quotes (n == 0 when empty). Pairs
 * without '=' are skipped. false when no pair is left.
 */
static bool next_cookie(const char **p, const char *end, struct pt_str *name, struct pt_str *value)
{
    const char *q = *p;
    while (q && q < end) {
        while (q < end && (*q == ' ' || *q == ';'))
            q++;
        const char *s = q;
        while (q < end && *q != '=' && *q != ';')
            q++;
        size_t nl = (size_t)(q - s);
        while (nl && s[nl - 1] == ' ')
            nl--;
        if (q >= end || *q != '=')
            continue;
        const char *v = ++q;
        while (q < end && *q != ';')
            q++;
        const char *ve = q;
        while (v < ve && *v == ' ')
            v++;
        while (ve > v && ve[-1] == ' ')
            ve--;
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        *p = q;
        *name = (struct pt_str){s, nl};
        *value = (struct pt_str){v, (size_t)(ve - v)};
        return true;
    }
    *p = q;
    return false;
}

/*
 * The value of cookie name (n bytes) in a Cookie header, as the first cookie of that name gives
 * it; {NULL, 0} when absent or empty.
 */
static struct pt_str cookie_value(struct pt_str ck, const char *name, size_t n)
{
    const char *p = ck.p, *end = ck.p ? ck.p + ck.n : NULL;
    struct pt_str k, v;
    while (next_cookie(&p, end, &k, &v))
        if (k.n == n && memcmp(k.p, name, n) == 0)
            return v.n ? v : (struct pt_str){NULL, 0};
    return (struct pt_str){NULL, 0};
}

/* Whether s (n bytes) equals the lower-case l, ignoring the case of s. */
static bool lower_eq(const char *l, const char *s, size_t n)
{
    if (strlen(l) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != l[i])
            return false;
    return true;
}

/*
 * Language: the request's language is the nf_lang cookie when set, else the Accept-Language
 * value as received; Netlify's edge hands that string to its matcher as X-Language. The
 * matcher (netlify-redirector, probed in tests/e2e/test_netlify_diff.py) takes a rule language
 * when the whole string equals it, or when the string is LETTERS "-" MORE and LETTERS equals it,
 * case aside. So "fr-CA,en;q=0.8" is French, while "fr,en" or "de, fr" match no Language= rule
 * at all (a list of several plain tags is not read entry by entry).
 */
static bool language_ok(const struct pt_nf_rule *nr, const struct pt_req_head *h)
{
    struct pt_str x = cookie_value(pt_req_field(h, "cookie", 6), "nf_lang", 7);
    if (!x.p)
        x = pt_req_field(h, "accept-language", 15);
    if (!x.p || x.n == 0)
        return false;
    size_t pl = 0;
    while (pl < x.n && ((x.p[pl] >= 'a' && x.p[pl] <= 'z') || (x.p[pl] >= 'A' && x.p[pl] <= 'Z')))
        pl++;
    bool has_primary = pl > 0 && pl + 1 < x.n && x.p[pl] == '-';
    for (size_t i = 0; i < nr->n_languages; i++)
        if (lower_eq(nr->languages[i], x.p, x.n) ||
            (has_primary && lower_eq(nr->languages[i], x.p, pl)))
            return true;
    return false;
}

/* Cookie: any cookie named one of the rule's names is present with a non-empty value (Netlify
   counts "vip=" as absent). */
static bool cookie_ok(const struct pt_nf_rule *nr, struct pt_str ck)
{
    const char *p = ck.p, *end = ck.p ? ck.p + ck.n : NULL;
    struct pt_str k, v;
    while (next_cookie(&p, end, &k, &v)) {
        if (v.n == 0 || k.n == 0)
            continue;
        for (size_t i = 0; i < nr->n_cookies; i++)
            if (strlen(nr->cookies[i]) == k.n && memcmp(nr->cookies[i], k.p, k.n) == 0)
                return true;
    }
    return false;
}

/* Opens rel beneath the directory root (no escape by ".." or symlinks). -1 on failure. */
static int open_under(const char *root, const char *rel, int flags)
{
    int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, dfd, rel[0] ? rel : ".", &how, sizeof(how));
    close(dfd);
    return fd < 0 ? -1 : (int)fd;
}

/* Whether the file st describes is one of the site's rule files (never served, so never a
   page and never a file that shadows a rule). */
static bool is_rule_file(const struct pt_site_cfg *site, const struct stat *st)
{
    struct stat f;
    const char *files[] = {site->redirects_file, site->headers_file, site->netlify_toml};
    for (size_t i = 0; i < PT_ARRAY_LEN(files); i++)
        if (files[i] && stat(files[i], &f) == 0 && f.st_dev == st->st_dev && f.st_ino == st->st_ino)
            return true;
    return false;
}

/* Whether the static root holds a regular file at path (or a directory with index.html). */
static bool shadowed(const struct pt_site_cfg *site, const char *path, size_t len)
{
    const char *root = site->nf_root;
    char rel[4096];
    if (!root || len == 0 || len + 12 > sizeof(rel) || memchr(path, '%', len))
        return false;
    size_t n = len - 1;
    memcpy(rel, path + 1, n);
    rel[n] = '\0';
    if (pt_static_is_rule_name(rel, n))
        return false; /* never served, so it shadows nothing */
    for (int pass = 0; pass < 2; pass++) {
        int fd = open_under(root, rel, O_PATH);
        if (fd < 0)
            return false;
        struct stat st;
        int rc = fstat(fd, &st);
        close(fd);
        if (rc < 0)
            return false;
        if (S_ISREG(st.st_mode))
            return !is_rule_file(site, &st);
        if (!S_ISDIR(st.st_mode) || pass == 1)
            return false;
        if (n && rel[n - 1] != '/')
            rel[n++] = '/';
        memcpy(rel + n, "index.html", 11);
    }
    return false;
}

/* The request's host (port and a final dot aside) is the rule's, compared case-insensitively. A
   rule naming a port wants that port in the Host header too. */
static bool host_ok(const char *want, struct pt_str host)
{
    size_t wl = strlen(want), hl = host.n;
    if (!memchr(want, ':', wl) && host.p && hl && host.p[0] != '[') {
        const char *colon = memchr(host.p, ':', hl);
        if (colon)
            hl = (size_t)(colon - host.p);
    }
    if (hl && host.p[hl - 1] == '.')
        hl--;
    return hl == wl && pt_str_caseeq((struct pt_str){host.p, hl}, want, wl);
}

/* Country: the nf_country cookie when set (Netlify's override), else the client's country
   (looked up once per request, kept in q), is one of the rule's, case aside. */
static bool country_ok(const struct pt_nf_rule *nr, struct pt_nf_req *q)
{
    struct pt_str ov = cookie_value(pt_req_field(q->h, "cookie", 6), "nf_country", 10);
    if (ov.p) {
        for (size_t i = 0; i < nr->n_countries; i++)
            if (lower_eq(nr->countries[i], ov.p, ov.n))
                return true;
        return false;
    }
    if (q->country_state == 0) {
        struct pt_sockaddr client;
        q->country_state = -1;
        if (q->geoip && q->peer && q->cfg && pt_geoip_client_addr(q->cfg, q->peer, q->h, &client) &&
            pt_geoip_country(q->geoip, &client.u.sa, q->country))
            q->country_state = 1;
    }
    if (q->country_state < 0)
        return false;
    for (size_t i = 0; i < nr->n_countries; i++)
        if (strcmp(nr->countries[i], q->country) == 0)
            return true;
    return false;
}

bool pt_nf_rule_applies(struct pt_nf_req *q, const struct pt_route_cfg *route, const char *path,
                        size_t path_len, struct pt_route_match *m)
{
    const struct pt_nf_rule *nr = route->nf;
    if (!nr)
        return true;
    if (nr->from_host) {
        bool https = q->is_tls;
        if (strcmp(nr->from_scheme, https ? "https" : "http") != 0 ||
            !host_ok(nr->from_host, q->host))
            return false;
    }
    /* Query values are compared decoded; placeholders get them re-encoded as a query component
       (Netlify's form). They live in a thread-local buffer until the next rule is tried: the
       rule that applies is the last one tried, and its target is expanded before the next
       request of the thread. */
    static __thread char qbuf[8192];
    size_t qo = 0;
    for (size_t i = 0; i < nr->n_query; i++) {
        const struct pt_nf_query *qc = &nr->query[i];
        struct pt_str v;
        char dec[2048];
        if (!query_find(q->query, qc->name, &v))
            return false;
        ssize_t dn = query_decode(v, dec, sizeof(dec));
        if (dn < 0)
            return false;
        if (!qc->is_placeholder) {
            if ((size_t)dn != strlen(qc->value) || memcmp(dec, qc->value, (size_t)dn) != 0)
                return false;
        } else if (m->n_params < PT_ROUTE_MAX_PARAMS) {
            ssize_t en = query_encode(dec, (size_t)dn, qbuf + qo, sizeof(qbuf) - qo);
            if (en < 0)
                return false;
            m->param_names[m->n_params] = (struct pt_str){qc->value, strlen(qc->value)};
            m->param_values[m->n_params++] = (struct pt_str){qbuf + qo, (size_t)en};
            qo += (size_t)en;
        }
    }
    if (nr->n_languages && !language_ok(nr, q->h))
        return false;
    if (nr->n_cookies && !cookie_ok(nr, pt_req_field(q->h, "cookie", 6)))
        return false;
    if (nr->n_countries && !country_ok(nr, q))
        return false;
    if (!nr->is_force && shadowed(q->site, path, path_len))
        return false;
    if (!nr->has_splat)
        m->splat = (struct pt_str){NULL, 0}; /* ":splat" in to stays as written, as on Netlify */
    return true;
}

const char *pt_nf_rule_to(const struct pt_route_cfg *route)
{
    return route->nf ? route->nf->to : "";
}

void pt_nf_error_page(struct pt_req *r, const char *to, size_t to_len)
{
    int status = r->route && r->route->nf ? r->route->nf->status : 404;
    const struct pt_site_cfg *site = r->site;
    char norm[4096];
    size_t pl = to_len;
    const char *qm = memchr(to, '?', to_len);
    if (qm)
        pl = (size_t)(qm - to);
    ssize_t n = pl < sizeof(norm) ? pt_path_normalize(to, pl, norm, sizeof(norm)) : -1;
    int fd = -1;
    struct stat st;
    if (site && site->nf_root && n > 0 && !memchr(norm, '%', (size_t)n)) {
        if (!pt_static_is_rule_name(norm + 1, (size_t)n - 1))
            fd = open_under(site->nf_root, norm + 1, O_RDONLY | O_NOCTTY);
        if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || is_rule_file(site, &st))) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        pt_respond_error(r, status, r->wants_json);
        return;
    }
    const char *slash = strrchr(norm, '/');
    const char *name = slash ? slash + 1 : norm;
    char extra[256];
    int e =
        snprintf(extra, sizeof(extra), "Content-Type: %s\r\n", pt_mime_type(name, strlen(name)));
    if (e < 0 || (size_t)e >= sizeof(extra) ||
        pt_respond_head(r, status, (int64_t)st.st_size, extra, (size_t)e) != PT_OK) {
        close(fd);
        pt_respond_error(r, 500, r->wants_json);
        return;
    }
    r->stream->send_file(r, fd, NULL, 0, (uint64_t)st.st_size);
}

/* Netlify path pattern (":name" one segment, a final "*" the rest) against a path. */
static bool header_path_match(const char *pat, const char *p, size_t n)
{
    const char *end = p + n;
    while (*pat) {
        if (*pat == '*')
            return true;
        if (*pat == ':' && pat[-1] == '/') {
            while (*pat && *pat != '/')
                pat++;
            const char *s = p;
            while (p < end && *p != '/')
                p++;
            if (p == s)
                return false;
            continue;
        }
        if (p == end || *p != *pat)
            return false;
        p++;
        pat++;
    }
    /* "/a" also matches "/a/" and the other way round, as Netlify ignores a trailing slash */
    return p == end || (p + 1 == end && *p == '/');
}

const char *pt_nf_header_lines(const struct pt_req *r, size_t *n)
{
    static __thread char out[8192];
    *n = 0;
    const struct pt_site_cfg *site = r->site;
    if (!site || site->n_nf_headers == 0)
        return "";
    char path[sizeof(r->uri) + 1];
    const char *u = r->uri;
    size_t ul = strcspn(u, "?");
    if (ul == 0 || u[0] != '/')
        return "";
    ssize_t pl = pt_path_normalize(u, ul, path, sizeof(path));
    if (pl <= 0)
        return "";
    size_t o = 0;
    for (size_t i = 0; i < site->n_nf_headers; i++) {
        const struct pt_nf_header_rule *hr = &site->nf_headers[i];
        if (hr->path[0] != '/' || !header_path_match(hr->path, path, (size_t)pl))
            continue;
        for (size_t k = 0; k < hr->n_headers; k++) {
            const struct pt_kv *kv = &hr->headers[k];
            if (o + kv->name_len + kv->value_len + 4 >= sizeof(out))
                break;
            memcpy(out + o, kv->name, kv->name_len);
            o += kv->name_len;
            out[o++] = ':';
            out[o++] = ' ';
            memcpy(out + o, kv->value, kv->value_len);
            o += kv->value_len;
            out[o++] = '\r';
            out[o++] = '\n';
        }
    }
    *n = o;
    return out;
}

bool pt_nf_lines_have(const char *lines, size_t len, struct pt_str name)
{
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!colon)
            return false;
        if (pt_str_caseeq(name, p, (size_t)(colon - p)))
            return true;
        const char *nl = memchr(colon, '\n', (size_t)(end - colon));
        if (!nl)
            return false;
        p = nl + 1;
    }
    return false;
}

int pt_nf_rule_files(const struct pt_config *cfg, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t k = 0;
    for (size_t i = 0; i < cfg->n_sites; i++) {
        const struct pt_site_cfg *s = &cfg->sites[i];
        k += !!s->redirects_file + !!s->headers_file + !!s->netlify_toml;
    }
    if (k == 0)
        return 0;
    const char **v = calloc(k, sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < cfg->n_sites; i++) {
        const struct pt_site_cfg *s = &cfg->sites[i];
        const char *f[] = {s->redirects_file, s->headers_file, s->netlify_toml};
        for (size_t j = 0; j < PT_ARRAY_LEN(f); j++)
            if (f[j])
                v[(*n)++] = f[j];
    }
    *out = v;
    return 0;
}
