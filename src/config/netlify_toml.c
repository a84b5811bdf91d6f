/*
 * netlify_toml.c - [[redirects]] and [[headers]] from a netlify.toml.
 *
 * The file is parsed whole with the TOML reader (toml.c); a syntax error refuses the file. Then
 * the two arrays are walked and each entry becomes the same struct pt_nf_rule /
 * struct pt_nf_header_rule the line readers produce, through the same checks
 * (pt_nf_rule_finish, pt_nf_header_add), so a rule means the same thing whichever file it came
 * from. Every other top-level key ([build], [context.*], [[plugins]], [functions] ...) is
 * Netlify's business and is ignored without a word.
 *
 * Inside an entry, an unknown key is an error and the entry is skipped, not loaded without
 * it: a misspelt "conditions" or "force" would otherwise silently widen a rule. Role and
 * signed rules are refused for the reason given in redirects.c.
 *
 * Keys and values are read the way Netlify's own netlify.toml reader (netlify-redirect-parser)
 * reads them: the legacy names `origin`, `destination` and `params` / `parameters` stand for
 * `from`, `to` and `query` when those are absent (the current name wins when both are
 * written), `sign` / `signing` for `signed`; and `status` may be a string, read like
 * JavaScript's parseInt: leading blanks, digits, anything after them ignored, so "301" is 301
 * and "200!" is 200 (the '!' does not force the rule there; `force = true` does, and a warning
 * says so).
 *
 * Load time only; all memory from the caller's arena.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/netlify.h"
#include "config/toml.h"
#include "core/common.h"

#define WHY_LEN 256

struct ctx {
    struct pt_arena *a;
    const char *file;
    struct pt_nf_errors *errs;
};

/* Reports and returns PT_DECLINED (or PT_ERR when the report itself ran out of memory). */
__attribute__((format(printf, 3, 4))) static int bad(struct ctx *c, int line, const char *fmt, ...)
{
    char why[WHY_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (pt_nf_error_add(c->a, c->errs, c->file, line, "%s", why) != PT_OK)
        return PT_ERR;
    return PT_DECLINED;
}

static int want_type(struct ctx *c, const struct pt_toml_kv *kv, int type, const char *where)
{
    if (kv->value->type == type)
        return PT_OK;
    return bad(c, kv->line, "\"%s\" in %s must be a %s, not a %s", kv->key, where,
               pt_toml_type_name(type), pt_toml_type_name(kv->value->type));
}

/*
 * A status written as a string, read as Netlify reads it (parseInt): blanks, an optional sign,
 * decimal digits; the rest is ignored. Returns PT_OK with *status, or PT_DECLINED (no digits).
 * *bang is set when what follows the digits starts with '!'.
 */
static int string_status(const char *s, size_t n, long long *status, bool *bang)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' ||
                     s[i] == '\v'))
        i++;
    bool neg = i < n && s[i] == '-';
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t d = i;
    long long v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v < 100000)
            v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == d)
        return PT_DECLINED;
    *status = neg ? -v : v;
    *bang = i < n && s[i] == '!';
    return PT_OK;
}

static int read_conditions(struct ctx *c, const struct pt_toml_value *t, struct pt_nf_rule *r)
{
    char why[WHY_LEN];
    for (size_t i = 0; i < t->n_kvs; i++) {
        const struct pt_toml_kv *kv = &t->kvs[i];
        const char ***list;
        size_t *n;
        bool lower = true;
        const char *name;
        if (strcasecmp(kv->key, "Language") == 0) {
            list = &r->languages;
            n = &r->n_languages;
            name = "Language";
        } else if (strcasecmp(kv->key, "Country") == 0) {
            list = &r->countries;
            n = &r->n_countries;
            name = "Country";
        } else if (strcasecmp(kv->key, "Cookie") == 0) {
            list = &r->cookies;
            n = &r->n_cookies;
            name = "Cookie";
            lower = false;
        } else if (strcasecmp(kv->key, "Role") == 0) {
            return bad(c, kv->line, "Role conditions need Netlify Identity; not supported");
        } else {
            return bad(c, kv->line, "unknown condition \"%s\" (known: Language, Country, Cookie)",
                       kv->key);
        }
        if (*n > 0)
            return bad(c, kv->line, "%s condition given twice", name);
        const struct pt_toml_value *v = kv->value;
        size_t count = v->type == PT_TOML_ARRAY ? v->n_items : 1;
        if (v->type == PT_TOML_ARRAY && count == 0)
            return bad(c, kv->line, "empty %s condition", name);
        for (size_t k = 0; k < count; k++) {
            const struct pt_toml_value *s = v->type == PT_TOML_ARRAY ? v->items[k] : v;
            if (s->type != PT_TOML_STRING)
                return bad(c, s->line, "%s condition values must be strings", name);
            int rc = pt_nf_condition_list(c->a, name, s->str, s->str_len, lower, list, n, why,
                                          sizeof(why));
            if (rc == PT_DECLINED)
                return bad(c, s->line, "%s", why);
            if (rc != PT_OK)
                return rc;
        }
    }
    return PT_OK;
}

static int read_redirect(struct ctx *c, const struct pt_toml_value *t, struct pt_nf_rules *out)
{
    const char *where = "[[redirects]]";
    char why[WHY_LEN];
    struct pt_nf_rule r;
    size_t hcap = 0;
    int rc;
    memset(&r, 0, sizeof(r));
    r.file = c->file;
    r.line = t->line;
    /* Netlify's precedence between a key and its legacy names: the first present wins. */
    static const char *const alias[][3] = {
        {"from", "origin", NULL}, {"to", "destination", NULL}, {"query", "params", "parameters"}};
    const struct pt_toml_kv *chosen[3] = {NULL, NULL, NULL};
    for (size_t k = 0; k < 3; k++)
        for (size_t j = 0; j < 3 && alias[k][j] && !chosen[k]; j++)
            for (size_t i = 0; i < t->n_kvs; i++)
                if (strcmp(t->kvs[i].key, alias[k][j]) == 0)
                    chosen[k] = &t->kvs[i];
    for (size_t i = 0; i < t->n_kvs; i++) {
        const struct pt_toml_kv *kv = &t->kvs[i];
        const struct pt_toml_value *v = kv->value;
        int slot = -1;
        for (size_t k = 0; k < 3; k++)
            for (size_t j = 0; j < 3 && alias[k][j]; j++)
                if (strcmp(kv->key, alias[k][j]) == 0)
                    slot = (int)k;
        if (slot >= 0 && chosen[slot] != kv)
            continue; /* a legacy name beside the current one: Netlify ignores it */
        if (slot == 0 || slot == 1) {
            if ((rc = want_type(c, kv, PT_TOML_STRING, where)) != PT_OK)
                return rc;
            if (slot == 0)
                r.from = v->str;
            else
                r.to = v->str;
        } else if (strcmp(kv->key, "status") == 0) {
            long long st = 0;
            bool bang = false;
            if (v->type == PT_TOML_INTEGER) {
                st = v->integer;
            } else if (v->type == PT_TOML_STRING) {
                if (string_status(v->str, v->str_len, &st, &bang) != PT_OK)
                    return bad(c, kv->line, "status \"%.*s\" is not a number", (int)v->str_len,
                               v->str);
                if (bang &&
                    pt_nf_error_add(c->a, c->errs, c->file, kv->line,
                                    "the '!' of status \"%.*s\" is ignored in netlify.toml, as on "
                                    "Netlify; write force = true to force the rule",
                                    (int)v->str_len, v->str) != PT_OK)
                    return PT_ERR;
            } else if ((rc = want_type(c, kv, PT_TOML_INTEGER, where)) != PT_OK) {
                return rc;
            }
            if (st < 100 || st > 999)
                return bad(c, kv->line, "status %lld is not an HTTP status", st);
            r.status = (int)st;
            r.is_status_set = true;
        } else if (strcmp(kv->key, "force") == 0) {
            if ((rc = want_type(c, kv, PT_TOML_BOOL, where)) != PT_OK)
                return rc;
            r.is_force = v->boolean;
        } else if (slot == 2) {
            if ((rc = want_type(c, kv, PT_TOML_TABLE, where)) != PT_OK)
                return rc;
            r.n_query = v->n_kvs;
            r.query = pt_arena_alloc(c->a, (v->n_kvs ? v->n_kvs : 1) * sizeof(*r.query));
            if (!r.query)
                return PT_ERR;
            for (size_t k = 0; k < v->n_kvs; k++) {
                const struct pt_toml_kv *q = &v->kvs[k];
                if ((rc = want_type(c, q, PT_TOML_STRING, "query")) != PT_OK)
                    return rc;
                r.query[k].name = q->key;
                r.query[k].is_placeholder = q->value->str[0] == ':';
                r.query[k].value = q->value->str + (r.query[k].is_placeholder ? 1 : 0);
            }
        } else if (strcmp(kv->key, "conditions") == 0) {
            if ((rc = want_type(c, kv, PT_TOML_TABLE, where)) != PT_OK)
                return rc;
            if ((rc = read_conditions(c, v, &r)) != PT_OK)
                return rc;
        } else if (strcmp(kv->key, "headers") == 0) {
            if ((rc = want_type(c, kv, PT_TOML_TABLE, where)) != PT_OK)
                return rc;
            for (size_t k = 0; k < v->n_kvs; k++) {
                const struct pt_toml_kv *h = &v->kvs[k];
                if ((rc = want_type(c, h, PT_TOML_STRING, "headers")) != PT_OK)
                    return rc;
                rc = pt_nf_header_add(c->a, &r.headers, &r.n_headers, &hcap, h->key, h->key_len,
                                      h->value->str, h->value->str_len, why, sizeof(why));
                if (rc == PT_DECLINED)
                    return bad(c, h->line, "%s", why);
                if (rc != PT_OK)
                    return rc;
            }
        } else if (strcmp(kv->key, "signed") == 0 || strcmp(kv->key, "signing") == 0 ||
                   strcmp(kv->key, "sign") == 0) {
            return bad(c, kv->line, "signed proxy rules are not supported");
        } else {
            return bad(c, kv->line,
                       "unknown key \"%s\" in [[redirects]] (known: from, to, status, force, "
                       "query, conditions, headers; origin, destination, params, parameters)",
                       kv->key);
        }
    }
    if (!r.from)
        return bad(c, t->line, "[[redirects]] entry without \"from\"");
    rc = pt_nf_rule_finish(c->a, &r, why, sizeof(why));
    if (rc == PT_DECLINED)
        return bad(c, t->line, "%s", why);
    if (rc != PT_OK)
        return rc;
    return pt_nf_rules_push(c->a, out, &r);
}

static int read_header(struct ctx *c, const struct pt_toml_value *t, struct pt_nf_header_rules *out)
{
    const char *where = "[[headers]]";
    char why[WHY_LEN];
    struct pt_nf_header_rule h;
    size_t cap = 0;
    int rc;
    bool has_values = false;
    memset(&h, 0, sizeof(h));
    h.file = c->file;
    h.line = t->line;
    for (size_t i = 0; i < t->n_kvs; i++) {
        const struct pt_toml_kv *kv = &t->kvs[i];
        const struct pt_toml_value *v = kv->value;
        if (strcmp(kv->key, "for") == 0) {
            if ((rc = want_type(c, kv, PT_TOML_STRING, where)) != PT_OK)
                return rc;
            const char *p = v->str;
            size_t n = v->str_len;
            while (n && (*p == ' ' || *p == '\t')) {
                p++;
                n--;
            }
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (n == 0 || !(p[0] == '/' || strncasecmp(p, "http://", 7) == 0 ||
                            strncasecmp(p, "https://", 8) == 0))
                return bad(c, kv->line, "\"for\" must be a path starting with '/'");
            for (size_t k = 0; k < n; k++)
                if ((unsigned char)p[k] <= 0x20 || p[k] == 0x7f)
                    return bad(c, kv->line, "blank or control character in \"for\"");
            h.path = pt_arena_strndup(c->a, p, n);
            if (!h.path)
                return PT_ERR;
        } else if (strcmp(kv->key, "values") == 0) {
            if ((rc = want_type(c, kv, PT_TOML_TABLE, where)) != PT_OK)
                return rc;
            has_values = true;
            for (size_t k = 0; k < v->n_kvs; k++) {
                const struct pt_toml_kv *hv = &v->kvs[k];
                const struct pt_toml_value *val = hv->value;
                size_t count = val->type == PT_TOML_ARRAY ? val->n_items : 1;
                for (size_t j = 0; j < count; j++) {
                    const struct pt_toml_value *s =
                        val->type == PT_TOML_ARRAY ? val->items[j] : val;
                    if (s->type != PT_TOML_STRING)
                        return bad(c, hv->line,
                                   "header \"%s\" must be a string or an array of strings",
                                   hv->key);
                    rc = pt_nf_header_add(c->a, &h.headers, &h.n_headers, &cap, hv->key,
                                          hv->key_len, s->str, s->str_len, why, sizeof(why));
                    if (rc == PT_DECLINED)
                        return bad(c, hv->line, "%s", why);
                    if (rc != PT_OK)
                        return rc;
                }
            }
        } else {
            return bad(c, kv->line, "unknown key \"%s\" in [[headers]] (known: for, values)",
                       kv->key);
        }
    }
    if (!h.path)
        return bad(c, t->line, "[[headers]] entry without \"for\"");
    if (!has_values)
        return bad(c, t->line, "[[headers]] entry without \"values\"");
    if (h.n_headers == 0)
        return PT_OK; /* values = {}: nothing to apply, as on Netlify */
    return pt_nf_header_rules_push(c->a, out, &h);
}

/* Calls each entry reader on the tables of array key; PT_ERR only when out of memory. */
static int each_entry(struct ctx *c, const struct pt_toml_value *root, const char *key,
                      struct pt_nf_rules *rules, struct pt_nf_header_rules *headers)
{
    for (size_t i = 0; i < root->n_kvs; i++) {
        const struct pt_toml_kv *kv = &root->kvs[i];
        if (strcmp(kv->key, key) != 0)
            continue;
        if (kv->value->type != PT_TOML_ARRAY) {
            int rc = bad(c, kv->line, "\"%s\" must be an array of tables ([[%s]])", key, key);
            return rc == PT_ERR ? PT_ERR : PT_OK;
        }
        for (size_t k = 0; k < kv->value->n_items; k++) {
            const struct pt_toml_value *t = kv->value->items[k];
            int rc;
            if (t->type != PT_TOML_TABLE)
                rc = bad(c, t->line, "entries of \"%s\" must be tables", key);
            else if (rules)
                rc = read_redirect(c, t, rules);
            else
                rc = read_header(c, t, headers);
            if (rc == PT_ERR)
                return PT_ERR;
        }
    }
    return PT_OK;
}

int pt_nf_parse_toml(struct pt_arena *a, const char *file, const char *buf, size_t len,
                     struct pt_nf_rules *redirects, struct pt_nf_header_rules *headers,
                     struct pt_nf_errors *errs)
{
    struct ctx c = {a, file, errs};
    struct pt_toml_value *root;
    char msg[256];
    int line;
    if (len > PT_NF_MAX_FILE_BYTES) {
        pt_nf_error_add(a, errs, file, 0, "file larger than %u bytes", PT_NF_MAX_FILE_BYTES);
        return PT_ERR;
    }
    if (pt_toml_parse(a, buf, len, &root, &line, msg, sizeof(msg)) != PT_OK) {
        pt_nf_error_add(a, errs, file, line, "%s", msg);
        return PT_ERR;
    }
    if (redirects && each_entry(&c, root, "redirects", redirects, NULL) != PT_OK)
        goto oom;
    if (headers && each_entry(&c, root, "headers", NULL, headers) != PT_OK)
        goto oom;
    return PT_OK;
oom:
    pt_nf_error_add(a, errs, file, 0, "out of memory");
    return PT_ERR;
}
