/*
 * redirects.c - Netlify _redirects reader, and the rule checks shared with netlify.toml.
 *
 * A _redirects file is read line by line. Each line is split at blanks; the first token
 * starting with '#' and everything after it is a comment. The remaining tokens are
 *
 *     from [name=value ...] [to] [status[!]] [Key=value ...]
 *
 * which we classify the way Netlify's own parser does: `to` is the first token after from that
 * starts with '/' or http(s)://, the tokens between are query conditions, then an optional
 * status (digits, optionally followed by '!' for force), then conditions. A status right after
 * from with no `to` is a "forward" rule: from "/app/" + '*' and status 200 with no `to` mean
 * to = "/app/:splat".
 *
 * pt_nf_rule_finish() then checks and completes a rule the same way whether it came from here
 * or from a [[redirects]] table: the from path's shape (one trailing '*', whole-segment
 * :placeholders, no query string), the absolute-URL form of domain-level rules, and the status
 * set. Being strict here (where Netlify sometimes silently keeps a rule that can never match)
 * is deliberate: a rule rejected at load with its line number is far easier to fix than one
 * that never fires. One thing is kept as Netlify keeps it: a :name (or :splat) in the target
 * that the path and the query do not define is not an error; it stays in the target as
 * written, which is what Netlify's matcher answers too.
 *
 * Role= and Signed= conditions are refused, not ignored: Role needs Netlify Identity and Signed
 * a JWS secret, and dropping the condition would turn a restricted rule into an open one.
 *
 * Single-threaded, called at load time; all memory comes from the caller's arena.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/netlify.h"
#include "core/common.h"
#include "core/str.h"

#define WHY_LEN 256

int pt_nf_error_add(struct pt_arena *a, struct pt_nf_errors *errs, const char *file, int line,
                    const char *fmt, ...)
{
    if (errs->n >= PT_NF_MAX_ERRORS) {
        errs->n_dropped++;
        return PT_OK;
    }
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    char text[1024];
    if (line > 0)
        snprintf(text, sizeof(text), "%s:%d: %s", file, line, reason);
    else
        snprintf(text, sizeof(text), "%s: %s", file, reason);
    struct pt_nf_error *items =
        pt_arena_grow(a, errs->items, errs->n, &errs->cap, sizeof(*items), 8);
    if (!items)
        return PT_ERR;
    errs->items = items;
    struct pt_nf_error *e = &errs->items[errs->n];
    e->file = file;
    e->line = line;
    e->reason = pt_arena_strdup(a, reason);
    e->text = pt_arena_strdup(a, text);
    if (!e->reason || !e->text)
        return PT_ERR;
    errs->n++;
    return PT_OK;
}

size_t pt_nf_errors_format(const struct pt_nf_errors *errs, char *out, size_t outlen)
{
    size_t used = 0, lines = 0;
    if (outlen == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < errs->n; i++) {
        int w = snprintf(out + used, outlen - used, "%s\n", errs->items[i].text);
        if (w < 0 || (size_t)w >= outlen - used) {
            out[used] = '\0';
            return lines;
        }
        used += (size_t)w;
        lines++;
    }
    if (errs->n_dropped && errs->n) {
        int w = snprintf(out + used, outlen - used, "%s: %zu more errors\n", errs->items[0].file,
                         errs->n_dropped);
        if (w < 0 || (size_t)w >= outlen - used)
            out[used] = '\0';
    }
    return lines;
}

int pt_nf_rules_push(struct pt_arena *a, struct pt_nf_rules *out, const struct pt_nf_rule *r)
{
    struct pt_nf_rule *items = pt_arena_grow(a, out->items, out->n, &out->cap, sizeof(*items), 16);
    if (!items)
        return PT_ERR;
    out->items = items;
    out->items[out->n++] = *r;
    return PT_OK;
}

static bool is_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Bytes allowed in a from or to: printable ASCII without blanks, and any non-ASCII byte (UTF-8
 * paths; the router normalises percent-escapes). */
static bool is_url_byte(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static const char **push_str(struct pt_arena *a, const char **arr, size_t n, const char *s)
{
    const char **na = pt_arena_alloc(a, (n + 1) * sizeof(*na));
    if (!na)
        return NULL;
    if (n)
        memcpy(na, arr, n * sizeof(*na));
    na[n] = s;
    return na;
}

int pt_nf_condition_list(struct pt_arena *a, const char *key, const char *v, size_t vlen,
                         bool lower, const char ***out, size_t *n, char *why, size_t whylen)
{
    size_t i = 0;
    for (;;) {
        while (i < vlen && (v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t start = i;
        while (i < vlen && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == start) {
            snprintf(why, whylen, "empty value in %s condition", key);
            return PT_DECLINED;
        }
        for (size_t k = start; k < end; k++) {
            unsigned char c = (unsigned char)v[k];
            bool ok = isalnum(c) || c == '-' || c == '_' || c == '.';
            if (!lower) /* cookie names: RFC 6265 token */
                ok = c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
            if (!ok) {
                snprintf(why, whylen, "bad character '%c' in %s condition value",
                         c >= 0x20 && c < 0x7f ? c : '?', key);
                return PT_DECLINED;
            }
        }
        char *item = pt_arena_strndup(a, v + start, end - start);
        if (!item)
            return PT_ERR;
        if (lower)
            for (char *p = item; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        const char **arr = push_str(a, *out, *n, item);
        if (!arr)
            return PT_ERR;
        *out = arr;
        (*n)++;
        if (i >= vlen)
            return PT_OK;
        i++; /* ',' */
    }
}

/* Splits an absolute from URL into scheme, host (lower-cased) and path. */
static int split_from_url(struct pt_arena *a, struct pt_nf_rule *r, char *why, size_t whylen)
{
    const char *s = r->from;
    size_t skip = strncasecmp(s, "https://", 8) == 0 ? 8 : 7;
    r->from_scheme = skip == 8 ? "https" : "http";
    const char *host = s + skip;
    const char *slash = strchr(host, '/');
    size_t hlen = slash ? (size_t)(slash - host) : strlen(host);
    if (hlen == 0) {
        snprintf(why, whylen, "no host in \"from\" URL");
        return PT_DECLINED;
    }
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!isalnum(c) && !strchr("-.:[]", c)) {
            snprintf(why, whylen, "bad character '%c' in the host of \"from\"",
                     c >= 0x20 && c < 0x7f ? c : '?');
            return PT_DECLINED;
        }
    }
    char *h = pt_arena_strndup(a, host, hlen);
    if (!h)
        return PT_ERR;
    for (char *p = h; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->from_host = h;
    r->from_path = slash ? slash : "/";
    return PT_OK;
}

static bool has_param(const struct pt_nf_rule *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strlen(r->params[i]) == len && memcmp(r->params[i], name, len) == 0)
            return true;
    for (size_t i = 0; i < r->n_query; i++)
        if (r->query[i].is_placeholder && strlen(r->query[i].value) == len &&
            memcmp(r->query[i].value, name, len) == 0)
            return true;
    return false;
}

/* Collects the :placeholders of from_path and checks its shape. */
static int scan_from_path(struct pt_arena *a, struct pt_nf_rule *r, char *why, size_t whylen)
{
    const char *p = r->from_path;
    size_t len = strlen(p);
    if (len == 0 || p[0] != '/') {
        snprintf(why, whylen, "\"from\" must start with '/' or http(s)://");
        return PT_DECLINED;
    }
    if (strncmp(p, "/.netlify", 9) == 0) {
        snprintf(why, whylen, "paths under /.netlify are reserved");
        return PT_DECLINED;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!is_url_byte(c)) {
            snprintf(why, whylen, "blank or control character in \"from\"");
            return PT_DECLINED;
        }
        if (c == '?') {
            snprintf(why, whylen,
                     "\"from\" cannot hold a query string; write name=value conditions "
                     "between from and to");
            return PT_DECLINED;
        }
        if (c == '#') {
            snprintf(why, whylen, "\"from\" cannot hold a '#' fragment");
            return PT_DECLINED;
        }
        if (c == '*' && i + 1 != len) {
            snprintf(why, whylen, "'*' (splat) may only end the \"from\" path");
            return PT_DECLINED;
        }
    }
    r->has_splat = p[len - 1] == '*';
    for (size_t i = 0; i < len; i++) {
        if (p[i] != ':' || p[i - 1] != '/')
            continue; /* i > 0 as p[0] == '/'; a ':' inside a segment is literal */
        size_t s = i + 1, e = s;
        while (e < len && p[e] != '/')
            e++;
        if (e == s || !is_name_start(p[s])) {
            snprintf(why, whylen, "bad placeholder \"%.*s\" in \"from\"", (int)(e - i), p + i);
            return PT_DECLINED;
        }
        for (size_t k = s; k < e; k++) {
            if (!is_name_char(p[k])) {
                snprintf(why, whylen,
                         "bad placeholder \"%.*s\" in \"from\" (a placeholder is a whole "
                         "segment of letters, digits and _)",
                         (int)(e - i), p + i);
                return PT_DECLINED;
            }
        }
        if (e - s == 5 && memcmp(p + s, "splat", 5) == 0) {
            snprintf(why, whylen, ":splat is reserved; end \"from\" with * instead");
            return PT_DECLINED;
        }
        if (has_param(r, p + s, e - s)) {
            snprintf(why, whylen, "placeholder :%.*s defined twice", (int)(e - s), p + s);
            return PT_DECLINED;
        }
        if (r->n_params >= PT_NF_MAX_PARAMS) {
            snprintf(why, whylen, "more than %d placeholders", PT_NF_MAX_PARAMS);
            return PT_DECLINED;
        }
        char *name = pt_arena_strndup(a, p + s, e - s);
        const char **arr = name ? push_str(a, r->params, r->n_params, name) : NULL;
        if (!arr)
            return PT_ERR;
        r->params = arr;
        r->n_params++;
        i = e - 1;
    }
    return PT_OK;
}

static int check_query(struct pt_nf_rule *r, char *why, size_t whylen)
{
    size_t n_ph = 0;
    for (size_t i = 0; i < r->n_query; i++) {
        const struct pt_nf_query *q = &r->query[i];
        if (q->name[0] == '\0') {
            snprintf(why, whylen, "empty query parameter name");
            return PT_DECLINED;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->query[j].name, q->name) == 0) {
                snprintf(why, whylen, "query parameter \"%s\" given twice", q->name);
                return PT_DECLINED;
            }
        }
        if (!q->is_placeholder)
            continue;
        const char *v = q->value;
        if (!is_name_start(v[0])) {
            snprintf(why, whylen, "bad placeholder \":%s\" for query parameter \"%s\"", v, q->name);
            return PT_DECLINED;
        }
        for (const char *c = v; *c; c++) {
            if (!is_name_char(*c)) {
                snprintf(why, whylen, "bad placeholder \":%s\" for query parameter \"%s\"", v,
                         q->name);
                return PT_DECLINED;
            }
        }
        if (strcmp(v, "splat") == 0) {
            snprintf(why, whylen, ":splat is reserved");
            return PT_DECLINED;
        }
        for (size_t j = 0; j < r->n_params; j++) {
            if (strcmp(r->params[j], v) == 0) {
                snprintf(why, whylen, "placeholder :%s defined twice", v);
                return PT_DECLINED;
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (r->query[j].is_placeholder && strcmp(r->query[j].value, v) == 0) {
                snprintf(why, whylen, "placeholder :%s defined twice", v);
                return PT_DECLINED;
            }
        }
        n_ph++;
    }
    if (r->n_params + n_ph > PT_NF_MAX_PARAMS) {
        snprintf(why, whylen, "more than %d placeholders", PT_NF_MAX_PARAMS);
        return PT_DECLINED;
    }
    return PT_OK;
}

/* Checks the shape of to. A :name it uses that from does not define (or :splat without a
 * splat) is allowed: expansion leaves it as written, as Netlify does. */
static int check_to(struct pt_nf_rule *r, char *why, size_t whylen)
{
    const char *t = r->to;
    size_t len = strlen(t);
    size_t i = 0;
    if (len == 0) {
        snprintf(why, whylen, "empty \"to\"");
        return PT_DECLINED;
    }
    for (size_t k = 0; k < len; k++) {
        if (!is_url_byte((unsigned char)t[k])) {
            snprintf(why, whylen, "blank or control character in \"to\"");
            return PT_DECLINED;
        }
    }
    r->is_to_url = is_url(t);
    if (r->is_to_url) {
        i = t[4] == 's' || t[4] == 'S' ? 8 : 7;
        size_t hs = i;
        while (i < len && t[i] != '/' && t[i] != '?' && t[i] != '#')
            i++;
        if (i == hs) {
            snprintf(why, whylen, "no host in \"to\" URL");
            return PT_DECLINED;
        }
    } else if (t[0] != '/') {
        snprintf(why, whylen, "\"to\" must start with '/' or http(s)://");
        return PT_DECLINED;
    }
    r->to_has_query = strchr(t + i, '?') != NULL;
    return PT_OK;
}

int pt_nf_rule_finish(struct pt_arena *a, struct pt_nf_rule *r, char *why, size_t whylen)
{
    int rc;
    if (!r->from || r->from[0] == '\0') {
        snprintf(why, whylen, "missing \"from\"");
        return PT_DECLINED;
    }
    if (!r->is_status_set)
        r->status = 301;
    switch (r->status) {
    case 200:
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
    case 404:
    case 410:
    case 451:
        break;
    default:
        snprintf(why, whylen, "status %d is not one of 200, 301, 302, 303, 307, 308, 404, 410, 451",
                 r->status);
        return PT_DECLINED;
    }
    r->from_path = r->from;
    r->from_scheme = NULL;
    r->from_host = NULL;
    r->params = NULL;
    r->n_params = 0;
    if (is_url(r->from)) {
        rc = split_from_url(a, r, why, whylen);
        if (rc != PT_OK)
            return rc;
    } else if (r->from[0] != '/') {
        snprintf(why, whylen, "\"from\" must start with '/' or http(s)://");
        return PT_DECLINED;
    }
    rc = scan_from_path(a, r, why, whylen);
    if (rc != PT_OK)
        return rc;
    rc = check_query(r, why, whylen);
    if (rc != PT_OK)
        return rc;
    if (!r->to) {
        /* Forward rule (Netlify): a 2xx rule whose from ends in '/' + '*' may omit to, which
         * is then from with the '*' replaced by ":splat". */
        size_t fl = strlen(r->from_path);
        if (!(fl >= 2 && memcmp(r->from_path + fl - 2, "/*", 2) == 0) || r->status < 200 ||
            r->status > 299) {
            snprintf(why, whylen,
                     "missing \"to\" (only a 200 rule whose \"from\" ends in /* "
                     "may leave it out)");
            return PT_DECLINED;
        }
        char *to = pt_arena_alloc(a, fl + 6);
        if (!to)
            return PT_ERR;
        memcpy(to, r->from_path, fl - 1);
        memcpy(to + fl - 1, ":splat", 7);
        r->to = to;
    }
    rc = check_to(r, why, whylen);
    if (rc != PT_OK)
        return rc;
    bool local_status =
        r->status == 200 || r->status == 404 || r->status == 410 || r->status == 451;
    r->is_proxy = r->status == 200 && r->is_to_url;
    r->is_rewrite = local_status && !r->is_to_url;
    if (local_status && r->is_to_url && r->status != 200) {
        snprintf(why, whylen, "a %d rule serves a local path; \"to\" cannot be a URL", r->status);
        return PT_DECLINED;
    }
    return PT_OK;
}

/* ---- _redirects lines ------------------------------------------------------------------- */

struct tok {
    const char *p;
    size_t n;
};

#define MAX_TOKS 64

static bool tok_is_status(struct tok t)
{
    size_t d = 0;
    while (d < t.n && t.p[d] >= '0' && t.p[d] <= '9')
        d++;
    if (d == 0 || d > 3)
        return false;
    return d == t.n || (d + 1 == t.n && t.p[d] == '!');
}

static bool tok_is_to(struct tok t)
{
    return (t.n > 0 && t.p[0] == '/') || (t.n >= 7 && strncasecmp(t.p, "http://", 7) == 0) ||
           (t.n >= 8 && strncasecmp(t.p, "https://", 8) == 0);
}

static const char *tok_eq(struct tok t)
{
    const char *eq = memchr(t.p, '=', t.n);
    return eq;
}

static int parse_condition(struct pt_arena *a, struct pt_nf_rule *r, struct tok t, bool seen[3],
                           char *why, size_t whylen)
{
    const char *eq = tok_eq(t);
    if (!eq) {
        snprintf(why, whylen, "unexpected \"%.*s\" (expected a status or Key=value condition)",
                 (int)PT_MIN(t.n, 64), t.p);
        return PT_DECLINED;
    }
    size_t kl = (size_t)(eq - t.p);
    const char *v = eq + 1;
    size_t vl = t.n - kl - 1;
    struct pt_str key = {t.p, kl};
    if (PT_STR_CASEEQ_LIT(key, "Role")) {
        snprintf(why, whylen, "Role conditions need Netlify Identity; not supported");
        return PT_DECLINED;
    }
    if (PT_STR_CASEEQ_LIT(key, "Sign") || PT_STR_CASEEQ_LIT(key, "Signed")) {
        snprintf(why, whylen, "signed proxy rules are not supported");
        return PT_DECLINED;
    }
    int which;
    if (PT_STR_CASEEQ_LIT(key, "Language"))
        which = 0;
    else if (PT_STR_CASEEQ_LIT(key, "Country"))
        which = 1;
    else if (PT_STR_CASEEQ_LIT(key, "Cookie"))
        which = 2;
    else {
        snprintf(why, whylen, "unknown condition \"%.*s\" (known: Language, Country, Cookie)",
                 (int)PT_MIN(kl, 64), t.p);
        return PT_DECLINED;
    }
    static const char *const names[] = {"Language", "Country", "Cookie"};
    if (seen[which]) {
        snprintf(why, whylen, "%s condition given twice", names[which]);
        return PT_DECLINED;
    }
    seen[which] = true;
    if (which == 0)
        return pt_nf_condition_list(a, names[0], v, vl, true, &r->languages, &r->n_languages, why,
                                    whylen);
    if (which == 1)
        return pt_nf_condition_list(a, names[1], v, vl, true, &r->countries, &r->n_countries, why,
                                    whylen);
    return pt_nf_condition_list(a, names[2], v, vl, false, &r->cookies, &r->n_cookies, why, whylen);
}

/* Parses one non-comment line into *r. PT_OK, PT_DECLINED (why), or PT_ERR. */
static int parse_line(struct pt_arena *a, struct tok *toks, size_t nt, struct pt_nf_rule *r,
                      char *why, size_t whylen)
{
    size_t i = 1;
    int rc;
    r->from = pt_arena_strndup(a, toks[0].p, toks[0].n);
    if (!r->from)
        return PT_ERR;
    if (nt == 1) {
        snprintf(why, whylen, "missing destination path or URL");
        return PT_DECLINED;
    }
    if (!tok_is_status(toks[1])) {
        size_t ti = 1;
        while (ti < nt && !tok_is_to(toks[ti]))
            ti++;
        if (ti == nt) {
            snprintf(why, whylen, "the destination must start with '/', http:// or https://");
            return PT_DECLINED;
        }
        if (ti > 1) {
            r->n_query = ti - 1;
            r->query = pt_arena_alloc(a, r->n_query * sizeof(*r->query));
            if (!r->query)
                return PT_ERR;
        }
        for (size_t q = 1; q < ti; q++) {
            const char *eq = tok_eq(toks[q]);
            if (!eq) {
                snprintf(why, whylen,
                         "\"%.*s\" between from and to must be a query condition name=value",
                         (int)PT_MIN(toks[q].n, 64), toks[q].p);
                return PT_DECLINED;
            }
            struct pt_nf_query *qq = &r->query[q - 1];
            size_t nl = (size_t)(eq - toks[q].p);
            const char *v = eq + 1;
            size_t vl = toks[q].n - nl - 1;
            qq->is_placeholder = vl > 0 && v[0] == ':';
            if (qq->is_placeholder) {
                v++;
                vl--;
            }
            qq->name = pt_arena_strndup(a, toks[q].p, nl);
            qq->value = pt_arena_strndup(a, v, vl);
            if (!qq->name || !qq->value)
                return PT_ERR;
        }
        r->to = pt_arena_strndup(a, toks[ti].p, toks[ti].n);
        if (!r->to)
            return PT_ERR;
        i = ti + 1;
    }
    if (i < nt && tok_is_status(toks[i])) {
        int st = 0;
        size_t k = 0;
        for (; k < toks[i].n && toks[i].p[k] != '!'; k++)
            st = st * 10 + (toks[i].p[k] - '0');
        r->status = st;
        r->is_status_set = true;
        r->is_force = k < toks[i].n;
        i++;
    }
    bool seen[3] = {false, false, false};
    for (; i < nt; i++) {
        rc = parse_condition(a, r, toks[i], seen, why, whylen);
        if (rc != PT_OK)
            return rc;
    }
    return pt_nf_rule_finish(a, r, why, whylen);
}

int pt_nf_parse_redirects(struct pt_arena *a, const char *file, const char *buf, size_t len,
                          struct pt_nf_rules *out, struct pt_nf_errors *errs)
{
    char why[WHY_LEN];
    struct tok toks[MAX_TOKS];
    if (len > PT_NF_MAX_FILE_BYTES) {
        pt_nf_error_add(a, errs, file, 0, "file larger than %u bytes", PT_NF_MAX_FILE_BYTES);
        return PT_ERR;
    }
    size_t pos = 0;
    int line = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* UTF-8 byte order mark */
    while (pos < len) {
        line++;
        const char *ls = buf + pos;
        const char *nl = memchr(ls, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - ls) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll > 0 && ls[ll - 1] == '\r')
            ll--;
        if (ll > PT_NF_MAX_LINE_BYTES) {
            if (pt_nf_error_add(a, errs, file, line, "line longer than %d bytes",
                                PT_NF_MAX_LINE_BYTES) != PT_OK)
                return PT_ERR;
            continue;
        }
        size_t nt = 0;
        bool bad_char = false, too_many = false;
        for (size_t k = 0; k < ll;) {
            unsigned char c = (unsigned char)ls[k];
            if (c == ' ' || c == '\t') {
                k++;
                continue;
            }
            if (c < 0x20 || c == 0x7f) {
                bad_char = true;
                break;
            }
            if (c == '#')
                break; /* a comment, whole line or trailing */
            size_t s = k;
            while (k < ll && ls[k] != ' ' && ls[k] != '\t' &&
                   ((unsigned char)ls[k] >= 0x20 && ls[k] != 0x7f))
                k++;
            if (nt == MAX_TOKS) {
                too_many = true;
                break;
            }
            toks[nt].p = ls + s;
            toks[nt].n = k - s;
            nt++;
        }
        if (bad_char || too_many) {
            if (pt_nf_error_add(a, errs, file, line, "%s",
                                bad_char ? "control character in line"
                                         : "too many fields in line") != PT_OK)
                return PT_ERR;
            continue;
        }
        if (nt == 0)
            continue;
        struct pt_nf_rule r;
        memset(&r, 0, sizeof(r));
        r.file = file;
        r.line = line;
        int rc = parse_line(a, toks, nt, &r, why, sizeof(why));
        if (rc == PT_ERR)
            goto oom;
        if (rc == PT_DECLINED) {
            if (pt_nf_error_add(a, errs, file, line, "%s", why) != PT_OK)
                goto oom;
            continue;
        }
        if (pt_nf_rules_push(a, out, &r) != PT_OK)
            goto oom;
    }
    return PT_OK;
oom:
    pt_nf_error_add(a, errs, file, 0, "out of memory");
    return PT_ERR;
}
