/*
 * config_sites.c - sites: their hosts (normalised, checked for duplicates across sites), HSTS,
 * error pages, and the Netlify rule files (_redirects, _headers, netlify.toml) compiled into
 * routes.
 *
 * Netlify files: the readers (redirects.c, headers_file.c, netlify_toml.c) parse and report
 * bad lines; here each rule becomes a route placed just before the site's first static route,
 * its from_path normalised like request paths. A bad rule is a warning at its file and line
 * and is skipped, never a failed load.
 */
#include "config/config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/netlify.h"
#include "core/common.h"
#include "http/path.h"

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
        if (!pt_config_is_ipv6_literal(h + p + 1, (size_t)(rb - h - p - 1)))
            return "not a valid IPv6 address";
        name_end = (size_t)(rb - h) + 1;
        if (name_end < n && h[name_end] != ':')
            return "unexpected text after ']'";
    } else {
        const char *colon = memchr(h + p, ':', n - p);
        name_end = colon ? (size_t)(colon - h) : n;
        if (!pt_config_is_hostname(h + p, name_end - p) || h[name_end - 1] == '.')
            return "expected a host name like example.com or *.example.com";
    }
    if (name_end < n) {
        port = h + name_end + 1;
        if (pt_config_parse_port(port, (size_t)(h + n - port)) < 0)
            return "the port must be a number from 1 to 65535";
    }
    return NULL;
}

static void load_hosts(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site)
{
    if (!pt_config_want_seq(x, v, "hosts"))
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
        const char *s = pt_config_get_str(x, it, "hosts");
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
    const char *s = pt_config_scalar(x, v, "max_age", "seconds or a duration like 365d");
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
    if (!pt_config_want_map(x, v, "hsts"))
        return;
    site->hsts_is_set = true;
    bool has_max_age = false;
    const struct pt_ynode *preload = NULL;
    FOR_PAIRS(v, k, val)
    {
        if (!pt_config_known_key(x, k, keys, NULL, "hsts"))
            continue;
        if (is(k, "max_age")) {
            has_max_age = true;
            get_max_age(x, val, &site->hsts_max_age_s);
        } else if (is(k, "include_subdomains")) {
            pt_config_get_bool(x, val, "include_subdomains", &site->hsts_include_subdomains);
        } else {
            preload = val;
            pt_config_get_bool(x, val, "preload", &site->hsts_preload);
        }
    }
    if (!has_max_age)
        pt_config_missing(x, v, "max_age", "hsts");
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
void pt_config_load_errors(struct pt_cfg_ctx *x, const struct pt_ynode *v,
                           struct pt_error_page **out, size_t *n_out)
{
    if (!pt_config_want_map(x, v, "errors"))
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
        char *path = pt_config_get_path(x, val, "errors", "file");
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
 * (decoded and normalised, http/path.c), allocated from the config arena; NULL with *why set
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
        r->proxy.upstream = pt_config_inline_upstream(x, &v, &r->proxy);
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
void pt_config_load_netlify(struct pt_cfg_ctx *x, struct pt_site_cfg *site, bool has_redirects_key,
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

void pt_config_load_site(struct pt_cfg_ctx *x, const struct pt_ynode *v, struct pt_site_cfg *site)
{
    static const char *const keys[] = {"hosts",
                                       "routes",
                                       "https_redirect",
                                       "hsts",
                                       "redirects_file",
                                       "headers_file",
                                       "netlify_toml",
                                       "errors",
                                       "compress",
                                       "rate_limit",
                                       "ip",
                                       "basic_auth",
                                       "jwt",
                                       "forward_auth",
                                       "waf",
                                       NULL};
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
        if (!pt_config_known_key(x, k, keys, later, "a site"))
            continue;
        if (is(k, "hosts")) {
            load_hosts(x, val, site);
        } else if (is(k, "https_redirect")) {
            redirect_val = val;
            pt_config_get_bool(x, val, "https_redirect", &site->https_redirect);
        } else if (is(k, "hsts")) {
            load_hsts(x, val, site);
        } else if (is(k, "redirects_file")) {
            has_redirects_key = true;
            site->redirects_file = pt_config_get_path(x, val, "redirects_file", "file");
        } else if (is(k, "headers_file")) {
            has_headers_key = true;
            site->headers_file = pt_config_get_path(x, val, "headers_file", "file");
        } else if (is(k, "netlify_toml")) {
            site->netlify_toml = pt_config_get_path(x, val, "netlify_toml", "file");
        } else if (is(k, "errors")) {
            pt_config_load_errors(x, val, &site->error_pages, &site->n_error_pages);
        } else if (is(k, "compress")) {
            pt_config_load_compress(x, val, &site->compress);
        } else if (is(k, "rate_limit")) {
            pt_config_load_rate_limit(x, val, &site->rate_limit);
        } else if (is(k, "ip")) {
            pt_config_load_ip(x, val, &site->ip);
        } else if (is(k, "basic_auth")) {
            pt_config_load_basic_auth(x, val, &site->basic_auth);
        } else if (is(k, "jwt")) {
            pt_config_load_jwt(x, val, &site->jwt);
        } else if (is(k, "forward_auth")) {
            bool set;
            pt_config_load_fwdauth(x, val, &site->forward_auth, &set);
        } else if (is(k, "waf")) {
            pt_config_load_waf(x, val, &site->waf);
        } else {
            has_routes = true;
            pt_config_load_routes(x, val, site);
        }
    }
    if (!has_routes)
        pt_config_missing(x, v, "routes", "a site");
    else
        pt_config_load_netlify(x, site, has_redirects_key, has_headers_key);
    /* A route without ip: takes its site's, so the pipeline tests one pointer. */
    for (size_t i = 0; i < site->n_routes; i++)
        if (!site->routes[i].ip)
            site->routes[i].ip = site->ip;
    for (size_t i = 0; i < site->n_routes; i++)
        if (!site->routes[i].forward_auth_is_set)
            site->routes[i].forward_auth = site->forward_auth;
    pt_config_finish_auth(x, site);
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

void pt_config_check_sites(struct pt_cfg_ctx *x)
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
