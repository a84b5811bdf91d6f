/*
 * headers_file.c - Netlify _headers reader, and the header-value rules shared with
 * netlify.toml's [[headers]].
 *
 * The format, as Netlify reads it: lines are trimmed; blank lines and lines starting with '#'
 * are skipped; a line starting with '/' (or http:// / https://) opens a new rule for that path
 * pattern; any other line is "Name: value" for the current rule, split at the first ':'.
 * Indentation is customary but carries no meaning. A '#' inside a value is part of it (colours,
 * fragments), so only whole-line comments exist.
 *
 * Values are normalised as Netlify does: trimmed, and every comma with the blanks around it
 * rewritten as ", " (so "max-age=0,no-cache" and a multi-line TOML string of comma-ended lines
 * both give "max-age=0, no-cache"). A name given twice for the same path is combined into one
 * header with the values joined by ", " (RFC 9110 §5.3); we compare names case-insensitively,
 * where Netlify's parser compares them exactly, because HTTP field names are case-insensitive
 * and two spellings would otherwise become two fields.
 *
 * Departures, each reported as an error at its line rather than ignored: a header line before
 * any path, a line that is neither a path nor "Name: value", a field name that is not an RFC
 * 9110 token, an empty value, and control characters (a CR or LF left in a value would split
 * the response head). A path with no header lines is dropped silently, as Netlify does.
 *
 * Single-threaded, load time only; all memory from the caller's arena.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/netlify.h"
#include "core/common.h"

static bool is_tchar(unsigned char c)
{
    /* RFC 9110 §5.6.2 token characters */
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int pt_nf_header_add(struct pt_arena *a, struct pt_kv **kv, size_t *n, size_t *cap,
                     const char *name, size_t name_len, const char *value, size_t value_len,
                     char *why, size_t whylen)
{
    while (name_len && is_blank(name[name_len - 1]))
        name_len--;
    while (name_len && is_blank(name[0])) {
        name++;
        name_len--;
    }
    if (name_len == 0) {
        snprintf(why, whylen, "missing header name");
        return PT_DECLINED;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!is_tchar((unsigned char)name[i])) {
            snprintf(why, whylen, "bad header name \"%.*s\"", (int)PT_MIN(name_len, 64), name);
            return PT_DECLINED;
        }
    }
    static const char *const reserved[] = {
        "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",      "te",
        "trailer",        "proxy-connection",  "date",       "server",     "x-request-id", NULL};
    for (size_t i = 0; reserved[i]; i++) {
        if (strlen(reserved[i]) == name_len && strncasecmp(reserved[i], name, name_len) == 0) {
            snprintf(why, whylen,
                     "header \"%.*s\" is written by Portico itself (message framing or "
                     "identity) and cannot be set by a rule",
                     (int)name_len, name);
            return PT_DECLINED;
        }
    }
    while (value_len && is_blank(value[value_len - 1]))
        value_len--;
    while (value_len && is_blank(value[0])) {
        value++;
        value_len--;
    }
    if (value_len == 0) {
        snprintf(why, whylen, "missing value for header \"%.*s\"", (int)PT_MIN(name_len, 64), name);
        return PT_DECLINED;
    }
    /* Normalise: each `\s*,\s*` becomes ", ". The result is at most value_len * 2 bytes. */
    char *v = pt_arena_alloc(a, value_len * 2 + 1);
    if (!v)
        return PT_ERR;
    size_t vl = 0;
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (is_blank((char)c) || c == ',') {
            size_t j = i;
            bool comma = false;
            while (j < value_len && (is_blank(value[j]) || (!comma && value[j] == ','))) {
                if (value[j] == ',')
                    comma = true;
                j++;
            }
            if (comma) {
                while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                    vl--;
                v[vl++] = ',';
                v[vl++] = ' ';
                i = j - 1;
                continue;
            }
            /* blanks not next to a comma: a line break there cannot go into a field value */
            for (size_t k = i; k < j; k++) {
                if (value[k] == '\r' || value[k] == '\n') {
                    snprintf(why, whylen, "line break in the value of header \"%.*s\"",
                             (int)PT_MIN(name_len, 64), name);
                    return PT_DECLINED;
                }
            }
            memcpy(v + vl, value + i, j - i);
            vl += j - i;
            i = j - 1;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(why, whylen, "control character in the value of header \"%.*s\"",
                     (int)PT_MIN(name_len, 64), name);
            return PT_DECLINED;
        }
        v[vl++] = (char)c;
    }
    /* A trailing comma leaves ", " at the end; drop it like the trim would. */
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == ','))
        vl--;
    if (vl == 0) {
        snprintf(why, whylen, "missing value for header \"%.*s\"", (int)PT_MIN(name_len, 64), name);
        return PT_DECLINED;
    }
    v[vl] = '\0';
    for (size_t i = 0; i < *n; i++) {
        struct pt_kv *e = &(*kv)[i];
        if (e->name_len == name_len && strncasecmp(e->name, name, name_len) == 0) {
            char *joined = pt_arena_alloc(a, e->value_len + 2 + vl + 1);
            if (!joined)
                return PT_ERR;
            memcpy(joined, e->value, e->value_len);
            memcpy(joined + e->value_len, ", ", 2);
            memcpy(joined + e->value_len + 2, v, vl + 1);
            e->value = joined;
            e->value_len += 2 + vl;
            return PT_OK;
        }
    }
    struct pt_kv *items = pt_arena_grow(a, *kv, *n, cap, sizeof(*items), 4);
    if (!items)
        return PT_ERR;
    *kv = items;
    struct pt_kv *e = &(*kv)[(*n)++];
    e->name = pt_arena_strndup(a, name, name_len);
    if (!e->name)
        return PT_ERR;
    e->name_len = name_len;
    e->value = v;
    e->value_len = vl;
    return PT_OK;
}

int pt_nf_header_rules_push(struct pt_arena *a, struct pt_nf_header_rules *out,
                            const struct pt_nf_header_rule *h)
{
    struct pt_nf_header_rule *items =
        pt_arena_grow(a, out->items, out->n, &out->cap, sizeof(*items), 8);
    if (!items)
        return PT_ERR;
    out->items = items;
    out->items[out->n++] = *h;
    return PT_OK;
}

static bool is_path_line(const char *p, size_t n)
{
    return (n > 0 && p[0] == '/') || (n >= 7 && strncasecmp(p, "http://", 7) == 0) ||
           (n >= 8 && strncasecmp(p, "https://", 8) == 0);
}

/* Pushes the open rule when it has headers (a path without any is dropped, as on Netlify). */
static int close_rule(struct pt_arena *a, struct pt_nf_header_rules *out,
                      struct pt_nf_header_rule *cur, bool *open)
{
    int rc = PT_OK;
    if (*open && cur->n_headers > 0)
        rc = pt_nf_header_rules_push(a, out, cur);
    *open = false;
    memset(cur, 0, sizeof(*cur));
    return rc;
}

int pt_nf_parse_headers(struct pt_arena *a, const char *file, const char *buf, size_t len,
                        struct pt_nf_header_rules *out, struct pt_nf_errors *errs)
{
    char why[256];
    struct pt_nf_header_rule cur;
    size_t cur_cap = 0;
    bool open = false;
    memset(&cur, 0, sizeof(cur));
    if (len > PT_NF_MAX_FILE_BYTES) {
        pt_nf_error_add(a, errs, file, 0, "file larger than %u bytes", PT_NF_MAX_FILE_BYTES);
        return PT_ERR;
    }
    size_t pos = 0;
    int line = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        line++;
        const char *ls = buf + pos;
        const char *nl = memchr(ls, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - ls) : len - pos;
        pos += ll + (nl ? 1 : 0);
        while (ll && is_blank(ls[ll - 1]))
            ll--;
        while (ll && (ls[0] == ' ' || ls[0] == '\t')) {
            ls++;
            ll--;
        }
        if (ll == 0 || ls[0] == '#')
            continue;
        if (ll > PT_NF_MAX_LINE_BYTES) {
            if (pt_nf_error_add(a, errs, file, line, "line longer than %d bytes",
                                PT_NF_MAX_LINE_BYTES) != PT_OK)
                goto oom;
            continue;
        }
        if (is_path_line(ls, ll)) {
            if (close_rule(a, out, &cur, &open) != PT_OK)
                goto oom;
            cur_cap = 0;
            bool bad = false;
            for (size_t i = 0; i < ll; i++)
                if ((unsigned char)ls[i] <= 0x20 || ls[i] == 0x7f)
                    bad = true;
            if (bad) {
                if (pt_nf_error_add(a, errs, file, line,
                                    "blank or control character in the path \"%.*s\"",
                                    (int)PT_MIN(ll, 64), ls) != PT_OK)
                    goto oom;
                /* Headers below it belong to no rule: skip them without more errors. */
                open = true;
                cur.line = -1;
                continue;
            }
            cur.path = pt_arena_strndup(a, ls, ll);
            if (!cur.path)
                goto oom;
            cur.file = file;
            cur.line = line;
            open = true;
            continue;
        }
        const char *colon = memchr(ls, ':', ll);
        if (!colon) {
            if (pt_nf_error_add(a, errs, file, line,
                                "expected a path starting with '/' or a \"Name: value\" "
                                "header line") != PT_OK)
                goto oom;
            continue;
        }
        if (!open) {
            if (pt_nf_error_add(a, errs, file, line, "header \"%.*s\" comes before any path",
                                (int)PT_MIN((size_t)(colon - ls), 64), ls) != PT_OK)
                goto oom;
            continue;
        }
        if (cur.line < 0)
            continue; /* under a refused path */
        int rc =
            pt_nf_header_add(a, &cur.headers, &cur.n_headers, &cur_cap, ls, (size_t)(colon - ls),
                             colon + 1, ll - (size_t)(colon - ls) - 1, why, sizeof(why));
        if (rc == PT_ERR)
            goto oom;
        if (rc == PT_DECLINED && pt_nf_error_add(a, errs, file, line, "%s", why) != PT_OK)
            goto oom;
    }
    if (cur.line < 0)
        open = false;
    if (close_rule(a, out, &cur, &open) != PT_OK)
        goto oom;
    return PT_OK;
oom:
    pt_nf_error_add(a, errs, file, 0, "out of memory");
    return PT_ERR;
}
