/*
 * toml.c - the TOML reader (see toml.h for the supported subset).
 *
 * A recursive-descent parser over the whole buffer. The input is checked to be UTF-8 first,
 * then read top to bottom: each line is blank, a comment, a [table] or [[array-of-tables]]
 * header, or key = value. Values recurse for arrays and inline tables, bounded by
 * PT_TOML_MAX_DEPTH, so the C stack stays small whatever the input.
 *
 * Strings are decoded in two passes: the first finds the closing delimiter (skipping escapes),
 * the second decodes into an arena buffer of the raw length, which is always enough because no
 * escape is shorter than what it produces (\uXXXX is 6 bytes for at most 3 of UTF-8).
 *
 * TOML forbids defining a key or table twice, and the rules for what may extend what are the
 * subtle part. Each table carries flags recording how it came to exist:
 *
 *     IMPLICIT  created as a parent by a header ([a.b.c] creates a and a.b); a later [a] may
 *               still define it once
 *     HEADER    defined by its own [header]; never again
 *     DOTTED    created by a dotted key (a.b = 1 creates a); only dotted keys may add to it,
 *               though headers may open sub-tables below it
 *     INLINE    an inline table { ... }: complete, nothing may add to it
 *     AOT       (on arrays) created by [[header]]; [[header]] appends, [header.x] goes into the
 *               last element; a static array [ ... ] can never be extended
 *
 * Tables keep their keys in an array searched linearly (bounded by PT_TOML_MAX_KEYS): the
 * tables configuration files hold have a handful of keys, and an array keeps file order.
 *
 * Not thread-safe per parse, but parses share nothing; all memory is the caller's arena.
 */
#include "config/toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

enum {
    F_IMPLICIT = 1u,
    F_HEADER = 2u,
    F_DOTTED = 4u,
    F_INLINE = 8u,
    F_AOT = 16u,
};

struct parser {
    struct pt_arena *a;
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
    int line;        /* line of p */
    int depth;       /* arrays / inline tables open */
    bool failed;
    int err_line;
    char *err;
    size_t errlen;
};

struct key {
    const char *parts[PT_TOML_MAX_DEPTH];
    size_t lens[PT_TOML_MAX_DEPTH];
    int lines[PT_TOML_MAX_DEPTH];
    size_t n;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->failed)
        return PT_ERR;
    ps->failed = true;
    ps->err_line = ps->line;
    if (ps->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, ps->errlen, fmt, ap);
        va_end(ap);
    }
    return PT_ERR;
}

static int oom(struct parser *ps)
{
    int rc = fail(ps, "out of memory");
    ps->err_line = 0;
    return rc;
}

/* Returns the offset of the first byte that is not valid UTF-8, or len. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i <= n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool at_end(const struct parser *ps)
{
    return ps->p >= ps->end;
}

static int peek(const struct parser *ps)
{
    return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}

static bool starts(const struct parser *ps, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lit, n) == 0;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

/* A newline at p ("\n" or "\r\n"): consumes it and returns true. */
static bool eat_newline(struct parser *ps)
{
    if (starts(ps, "\n")) {
        ps->p++;
        ps->line++;
        return true;
    }
    if (starts(ps, "\r\n")) {
        ps->p += 2;
        ps->line++;
        return true;
    }
    return false;
}

static bool is_ctrl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Skips a comment at p up to (not including) its newline. */
static int skip_comment(struct parser *ps)
{
    if (peek(ps) != '#')
        return PT_OK;
    while (ps->p < ps->end && *ps->p != '\n') {
        if (*ps->p == '\r' && starts(ps, "\r\n"))
            break;
        if (is_ctrl((unsigned char)*ps->p))
            return fail(ps, "control character in a comment");
        ps->p++;
    }
    return PT_OK;
}

/* After a key/value pair or a header: blanks, an optional comment, then newline or end. */
static int expect_eol(struct parser *ps, const char *after)
{
    skip_ws(ps);
    if (skip_comment(ps) != PT_OK)
        return PT_ERR;
    if (at_end(ps) || eat_newline(ps))
        return PT_OK;
    return fail(ps, "unexpected '%c' after %s (expected the end of the line)",
                peek(ps) >= 0x20 && peek(ps) < 0x7f ? peek(ps) : '?', after);
}

/* Blanks, comments and newlines (inside arrays). */
static int skip_ws_nl(struct parser *ps)
{
    for (;;) {
        skip_ws(ps);
        if (skip_comment(ps) != PT_OK)
            return PT_ERR;
        if (!eat_newline(ps))
            return PT_OK;
    }
}

/* ---- strings ---------------------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Parses a string of any of the four forms at p. Sets *out (arena, NUL-terminated) and *len.
 * allow_multi is false for keys.
 */
static int parse_string(struct parser *ps, bool allow_multi, const char **out, size_t *len)
{
    char q = *ps->p;
    int start_line = ps->line;
    bool literal = q == '\'';
    bool multi = starts(ps, literal ? "'''" : "\"\"\"");
    if (multi && !allow_multi)
        return fail(ps, "a key cannot be a multi-line string");
    ps->p += multi ? 3 : 1;
    if (multi)
        eat_newline(ps); /* a newline right after the opening delimiter is trimmed */

    /* Pass 1: find the end of the content (cend) and of the whole token (after). */
    const char *s = ps->p, *cend = NULL, *after = NULL;
    for (const char *c = s; c < ps->end; c++) {
        if (!literal && *c == '\\') {
            if (c + 1 >= ps->end)
                break;
            c++;
            continue;
        }
        if (!multi && *c == '\n')
            break;
        if (*c != q)
            continue;
        if (!multi) {
            cend = c;
            after = c + 1;
            break;
        }
        size_t run = 0;
        while (c + run < ps->end && c[run] == q)
            run++;
        if (run >= 3) {
            if (run > 5)
                return fail(ps, "too many quotes at the end of a multi-line string");
            cend = c + run - 3;
            after = c + run;
            break;
        }
        c += run - 1;
    }
    if (!cend) {
        ps->line = start_line; /* point at where it opens */
        return fail(ps, "unterminated string");
    }

    char *buf = pt_arena_alloc(ps->a, (size_t)(cend - s) + 1);
    if (!buf)
        return oom(ps);
    size_t n = 0;
    const char *c = s;
    while (c < cend) {
        unsigned char ch = (unsigned char)*c;
        if (ch == '\n') {
            ps->line++;
            buf[n++] = '\n';
            c++;
            continue;
        }
        if (ch == '\r') {
            if (c + 1 < cend && c[1] == '\n') {
                c++;
                continue;
            }
            return fail(ps, "carriage return without line feed in a string");
        }
        if (is_ctrl(ch))
            return fail(ps, "control character in a string (use an escape)");
        if (literal || ch != '\\') {
            buf[n++] = (char)ch;
            c++;
            continue;
        }
        c++; /* the backslash; pass 1 guarantees another byte, which may be cend's quote */
        char e = *c++;
        switch (e) {
        case 'b':
            buf[n++] = '\b';
            break;
        case 't':
            buf[n++] = '\t';
            break;
        case 'n':
            buf[n++] = '\n';
            break;
        case 'f':
            buf[n++] = '\f';
            break;
        case 'r':
            buf[n++] = '\r';
            break;
        case '"':
            buf[n++] = '"';
            break;
        case '\\':
            buf[n++] = '\\';
            break;
        case 'u':
        case 'U': {
            int digits = e == 'u' ? 4 : 8;
            if (cend - c < digits)
                return fail(ps, "short \\%c escape", e);
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = hexval((unsigned char)c[k]);
                if (h < 0)
                    return fail(ps, "bad hex digit in \\%c escape", e);
                cp = (cp << 4) | (uint32_t)h;
            }
            c += digits;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return fail(ps, "\\%c escape is not a Unicode scalar value", e);
            if (cp == 0)
                return fail(ps, "NUL characters (\\u0000) are not supported in strings");
            n += utf8_put(buf + n, cp);
            break;
        }
        case ' ':
        case '\t':
        case '\r':
        case '\n': {
            /* Line-ending backslash (multi-line basic only): trim up to the next content. */
            const char *k = c - 1;
            while (k < cend && (*k == ' ' || *k == '\t'))
                k++;
            if (!multi || k >= cend || (*k != '\n' && *k != '\r'))
                return fail(ps, "invalid escape '\\%c'", e == '\t' ? 't' : e);
            while (k < cend && (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r')) {
                if (*k == '\r' && !(k + 1 < cend && k[1] == '\n'))
                    return fail(ps, "carriage return without line feed in a string");
                if (*k == '\n')
                    ps->line++;
                k++;
            }
            c = k;
            break;
        }
        default:
            return fail(ps, "invalid escape '\\%c'",
                        (unsigned char)e >= 0x20 && (unsigned char)e < 0x7f ? e : '?');
        }
    }
    buf[n] = '\0';
    ps->p = after;
    *out = buf;
    *len = n;
    return PT_OK;
}

/* ---- keys ------------------------------------------------------------------------------- */

static bool is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int parse_key(struct parser *ps, struct key *k)
{
    k->n = 0;
    for (;;) {
        if (k->n == PT_TOML_MAX_DEPTH)
            return fail(ps, "key has more than %d parts", PT_TOML_MAX_DEPTH);
        int c = peek(ps);
        k->lines[k->n] = ps->line;
        if (c == '"' || c == '\'') {
            if (parse_string(ps, false, &k->parts[k->n], &k->lens[k->n]) != PT_OK)
                return PT_ERR;
        } else if (is_bare(c)) {
            const char *s = ps->p;
            while (ps->p < ps->end && is_bare((unsigned char)*ps->p))
                ps->p++;
            k->parts[k->n] = s;
            k->lens[k->n] = (size_t)(ps->p - s);
        } else {
            return fail(ps, "expected a key");
        }
        k->n++;
        skip_ws(ps);
        if (peek(ps) != '.')
            return PT_OK;
        ps->p++;
        skip_ws(ps);
    }
}

/* ---- tree ------------------------------------------------------------------------------- */

static struct pt_toml_value *new_value(struct parser *ps, int type)
{
    struct pt_toml_value *v = pt_arena_alloc(ps->a, sizeof(*v));
    if (!v) {
        oom(ps);
        return NULL;
    }
    v->type = type;
    v->line = ps->line;
    return v;
}

static struct pt_toml_kv *find(const struct pt_toml_value *t, const char *k, size_t n)
{
    for (size_t i = 0; i < t->n_kvs; i++)
        if (t->kvs[i].key_len == n && memcmp(t->kvs[i].key, k, n) == 0)
            return &t->kvs[i];
    return NULL;
}

static int insert(struct parser *ps, struct pt_toml_value *t, const char *k, size_t n, int line,
                  struct pt_toml_value *v)
{
    if (t->n_kvs >= PT_TOML_MAX_KEYS)
        return fail(ps, "more than %d keys in one table", PT_TOML_MAX_KEYS);
    struct pt_toml_kv *kvs = pt_arena_grow(ps->a, t->kvs, t->n_kvs, &t->cap, sizeof(*kvs), 4);
    if (!kvs)
        return oom(ps);
    t->kvs = kvs;
    /* Keys from the input are copied so they are NUL-terminated (bare keys point into it). */
    char *kc = pt_arena_strndup(ps->a, k, n);
    if (!kc)
        return oom(ps);
    if (memchr(kc, '\0', n))
        return fail(ps, "NUL character in a key");
    t->kvs[t->n_kvs++] = (struct pt_toml_kv){kc, n, v, line};
    return PT_OK;
}

static int push_item(struct parser *ps, struct pt_toml_value *arr, struct pt_toml_value *v)
{
    struct pt_toml_value **items =
        pt_arena_grow(ps->a, arr->items, arr->n_items, &arr->cap, sizeof(*items), 4);
    if (!items)
        return oom(ps);
    arr->items = items;
    arr->items[arr->n_items++] = v;
    return PT_OK;
}

static int key_fail(struct parser *ps, const struct key *k, size_t upto, const char *what)
{
    char name[128];
    size_t used = 0;
    for (size_t i = 0; i <= upto && i < k->n && used + 2 < sizeof(name); i++) {
        int w = snprintf(name + used, sizeof(name) - used, "%s%.*s", i ? "." : "",
                         (int)PT_MIN(k->lens[i], 60), k->parts[i]);
        if (w < 0)
            break;
        used += (size_t)w;
        if (used >= sizeof(name))
            used = sizeof(name) - 1;
    }
    return fail(ps, "%s \"%s\"", what, name);
}

static int parse_value(struct parser *ps, struct pt_toml_value **out);

/* key = value into table t (dotted parts create DOTTED tables). */
static int parse_keyval(struct parser *ps, struct pt_toml_value *t)
{
    struct key k;
    if (parse_key(ps, &k) != PT_OK)
        return PT_ERR;
    if (peek(ps) != '=')
        return fail(ps, "expected '=' after a key");
    ps->p++;
    skip_ws(ps);
    for (size_t i = 0; i + 1 < k.n; i++) {
        struct pt_toml_kv *e = find(t, k.parts[i], k.lens[i]);
        if (!e) {
            struct pt_toml_value *nt = new_value(ps, PT_TOML_TABLE);
            if (!nt)
                return PT_ERR;
            nt->flags = F_DOTTED;
            if (insert(ps, t, k.parts[i], k.lens[i], k.lines[i], nt) != PT_OK)
                return PT_ERR;
            t = nt;
            continue;
        }
        if (e->value->type != PT_TOML_TABLE || !(e->value->flags & F_DOTTED) ||
            (e->value->flags & F_INLINE))
            return key_fail(ps, &k, i, "cannot add keys with a dotted key to");
        t = e->value;
    }
    size_t last = k.n - 1;
    if (find(t, k.parts[last], k.lens[last]))
        return key_fail(ps, &k, last, "duplicate key");
    struct pt_toml_value *v;
    if (parse_value(ps, &v) != PT_OK)
        return PT_ERR;
    return insert(ps, t, k.parts[last], k.lens[last], k.lines[last], v);
}

static int parse_array(struct parser *ps, struct pt_toml_value **out)
{
    struct pt_toml_value *arr = new_value(ps, PT_TOML_ARRAY);
    if (!arr)
        return PT_ERR;
    ps->p++; /* '[' */
    for (;;) {
        if (skip_ws_nl(ps) != PT_OK)
            return PT_ERR;
        if (peek(ps) == ']') {
            ps->p++;
            break;
        }
        struct pt_toml_value *v;
        if (parse_value(ps, &v) != PT_OK || push_item(ps, arr, v) != PT_OK)
            return PT_ERR;
        if (skip_ws_nl(ps) != PT_OK)
            return PT_ERR;
        if (peek(ps) == ',') {
            ps->p++;
            continue;
        }
        if (peek(ps) == ']') {
            ps->p++;
            break;
        }
        return fail(ps, at_end(ps) ? "unterminated array" : "expected ',' or ']' in an array");
    }
    *out = arr;
    return PT_OK;
}

static int parse_inline_table(struct parser *ps, struct pt_toml_value **out)
{
    struct pt_toml_value *t = new_value(ps, PT_TOML_TABLE);
    if (!t)
        return PT_ERR;
    ps->p++; /* '{' */
    skip_ws(ps);
    if (peek(ps) == '}') {
        ps->p++;
    } else {
        for (;;) {
            skip_ws(ps);
            if (at_end(ps) || peek(ps) == '\n' || peek(ps) == '\r')
                return fail(ps, "an inline table must close on the line it opens");
            if (parse_keyval(ps, t) != PT_OK)
                return PT_ERR;
            skip_ws(ps);
            if (peek(ps) == ',') {
                ps->p++;
                skip_ws(ps);
                if (peek(ps) == '}')
                    return fail(ps, "trailing comma in an inline table");
                continue;
            }
            if (peek(ps) == '}') {
                ps->p++;
                break;
            }
            if (at_end(ps) || peek(ps) == '\n' || peek(ps) == '\r')
                return fail(ps, "an inline table must close on the line it opens");
            return fail(ps, "expected ',' or '}' in an inline table");
        }
    }
    t->flags = F_INLINE;
    *out = t;
    return PT_OK;
}

static bool is_num_char(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '+' || c == '-' || c == '.' || c == ':';
}

/* Digits of base with single '_' only between digits. Copies the digits (no '_') into out. */
static bool digits_ok(const char *s, size_t n, int base, char *out, size_t *on)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            if (i == 0 || i + 1 == n || s[i + 1] == '_')
                return false;
            continue;
        }
        int d = hexval((unsigned char)c);
        if (d < 0 || d >= base)
            return false;
        out[(*on)++] = c;
    }
    return true;
}

static int parse_number(struct parser *ps, struct pt_toml_value **out)
{
    const char *s = ps->p;
    while (ps->p < ps->end && is_num_char((unsigned char)*ps->p))
        ps->p++;
    size_t n = (size_t)(ps->p - s);
    if (n > 128)
        return fail(ps, "number too long");
    /* Dates (1979-05-27) and times (07:32:00) start like numbers. */
    if (memchr(s, ':', n) || (n >= 5 && s[0] >= '0' && s[0] <= '9' && s[4] == '-'))
        return fail(ps, "dates and times are not supported");
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    const char *b = s + i;
    size_t bn = n - i;
    struct pt_toml_value *v;
    if ((bn == 3 && (memcmp(b, "inf", 3) == 0 || memcmp(b, "nan", 3) == 0))) {
        v = new_value(ps, PT_TOML_FLOAT);
        if (!v)
            return PT_ERR;
        v->number = b[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        *out = v;
        return PT_OK;
    }
    char digits[132];
    size_t dn = 0;
    if (bn > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'o' || b[1] == 'b')) {
        int base = b[1] == 'x' ? 16 : b[1] == 'o' ? 8 : 2;
        if (i != 0)
            return fail(ps, "a sign is not allowed on a 0%c integer", b[1]);
        if (!digits_ok(b + 2, bn - 2, base, digits, &dn))
            return fail(ps, "malformed integer \"%.*s\"", (int)n, s);
        uint64_t u = 0;
        for (size_t k = 0; k < dn; k++) {
            uint64_t d = (uint64_t)hexval((unsigned char)digits[k]);
            if (u > (UINT64_C(0x7FFFFFFFFFFFFFFF) - d) / (uint64_t)base)
                return fail(ps, "integer out of range");
            u = u * (uint64_t)base + d;
        }
        v = new_value(ps, PT_TOML_INTEGER);
        if (!v)
            return PT_ERR;
        v->integer = (int64_t)u;
        *out = v;
        return PT_OK;
    }
    /* Decimal: int [. frac] [e exp]. */
    size_t k = 0;
    while (k < bn && b[k] != '.' && b[k] != 'e' && b[k] != 'E')
        k++;
    if (k == 0 || !digits_ok(b, k, 10, digits, &dn))
        return fail(ps, "malformed number \"%.*s\"", (int)PT_MIN(n, 40), s);
    if (dn > 1 && digits[0] == '0')
        return fail(ps, "leading zeros are not allowed in \"%.*s\"", (int)PT_MIN(n, 40), s);
    bool is_float = false;
    size_t int_digits = dn;
    if (k < bn && b[k] == '.') {
        size_t f = ++k;
        while (k < bn && b[k] != 'e' && b[k] != 'E')
            k++;
        digits[dn++] = '.';
        if (!digits_ok(b + f, k - f, 10, digits, &dn))
            return fail(ps, "malformed float \"%.*s\"", (int)PT_MIN(n, 40), s);
        is_float = true;
    }
    if (k < bn && (b[k] == 'e' || b[k] == 'E')) {
        k++;
        digits[dn++] = 'e';
        if (k < bn && (b[k] == '+' || b[k] == '-'))
            digits[dn++] = b[k++];
        if (!digits_ok(b + k, bn - k, 10, digits, &dn))
            return fail(ps, "malformed float \"%.*s\"", (int)PT_MIN(n, 40), s);
        k = bn;
        is_float = true;
    }
    if (k != bn)
        return fail(ps, "malformed number \"%.*s\"", (int)PT_MIN(n, 40), s);
    if (is_float) {
        digits[dn] = '\0';
        v = new_value(ps, PT_TOML_FLOAT);
        if (!v)
            return PT_ERR;
        errno = 0;
        double d = strtod(digits, NULL);
        v->number = neg ? -d : d;
        *out = v;
        return PT_OK;
    }
    /* Accumulate negatively so INT64_MIN fits. */
    int64_t acc = 0;
    for (size_t q = 0; q < int_digits; q++) {
        int d = digits[q] - '0';
        if (acc < (INT64_MIN + d) / 10)
            return fail(ps, "integer out of range");
        acc = acc * 10 - d;
    }
    if (!neg && acc == INT64_MIN)
        return fail(ps, "integer out of range");
    v = new_value(ps, PT_TOML_INTEGER);
    if (!v)
        return PT_ERR;
    v->integer = neg ? acc : -acc;
    *out = v;
    return PT_OK;
}

static bool keyword(const struct parser *ps, const char *kw)
{
    size_t n = strlen(kw);
    return starts(ps, kw) && ((size_t)(ps->end - ps->p) == n || !is_bare((unsigned char)ps->p[n]));
}

static int parse_value(struct parser *ps, struct pt_toml_value **out)
{
    int c = peek(ps);
    int rc;
    switch (c) {
    case '"':
    case '\'': {
        struct pt_toml_value *v = new_value(ps, PT_TOML_STRING);
        if (!v || parse_string(ps, true, &v->str, &v->str_len) != PT_OK)
            return PT_ERR;
        *out = v;
        return PT_OK;
    }
    case '[':
    case '{':
        if (ps->depth >= PT_TOML_MAX_DEPTH)
            return fail(ps, "arrays and inline tables nested deeper than %d", PT_TOML_MAX_DEPTH);
        ps->depth++;
        rc = c == '[' ? parse_array(ps, out) : parse_inline_table(ps, out);
        ps->depth--;
        return rc;
    case 't':
    case 'f':
        if (keyword(ps, "true") || keyword(ps, "false")) {
            struct pt_toml_value *v = new_value(ps, PT_TOML_BOOL);
            if (!v)
                return PT_ERR;
            v->boolean = c == 't';
            ps->p += c == 't' ? 4 : 5;
            *out = v;
            return PT_OK;
        }
        break;
    default:
        if (c == '+' || c == '-' || (c >= '0' && c <= '9') || keyword(ps, "inf") ||
            keyword(ps, "nan"))
            return parse_number(ps, out);
        break;
    }
    if (c < 0 || c == '\n' || c == '\r' || c == '#')
        return fail(ps, "expected a value");
    return fail(ps, "expected a value (strings need quotes)");
}

/* [a.b.c] or [[a.b.c]]: sets *cur to the table that the following keys go into. */
static int parse_header(struct parser *ps, struct pt_toml_value *root, struct pt_toml_value **cur)
{
    bool aot = starts(ps, "[[");
    int line = ps->line;
    ps->p += aot ? 2 : 1;
    skip_ws(ps);
    struct key k;
    if (parse_key(ps, &k) != PT_OK)
        return PT_ERR;
    if (aot ? !starts(ps, "]]") : !starts(ps, "]"))
        return fail(ps, aot ? "expected ']]' to close the table header"
                            : "expected ']' to close the table header");
    ps->p += aot ? 2 : 1;
    struct pt_toml_value *t = root;
    for (size_t i = 0; i + 1 < k.n; i++) {
        struct pt_toml_kv *e = find(t, k.parts[i], k.lens[i]);
        if (!e) {
            struct pt_toml_value *nt = new_value(ps, PT_TOML_TABLE);
            if (!nt)
                return PT_ERR;
            nt->flags = F_IMPLICIT;
            if (insert(ps, t, k.parts[i], k.lens[i], line, nt) != PT_OK)
                return PT_ERR;
            t = nt;
            continue;
        }
        struct pt_toml_value *v = e->value;
        if (v->type == PT_TOML_ARRAY && (v->flags & F_AOT)) {
            t = v->items[v->n_items - 1];
            continue;
        }
        if (v->type != PT_TOML_TABLE || (v->flags & F_INLINE))
            return key_fail(ps, &k, i, "cannot define a table inside");
        t = v;
    }
    size_t last = k.n - 1;
    struct pt_toml_kv *e = find(t, k.parts[last], k.lens[last]);
    struct pt_toml_value *nt;
    if (aot) {
        struct pt_toml_value *arr;
        if (!e) {
            arr = new_value(ps, PT_TOML_ARRAY);
            if (!arr)
                return PT_ERR;
            arr->flags = F_AOT;
            if (insert(ps, t, k.parts[last], k.lens[last], line, arr) != PT_OK)
                return PT_ERR;
        } else {
            arr = e->value;
            if (arr->type != PT_TOML_ARRAY || !(arr->flags & F_AOT))
                return key_fail(ps, &k, last, "cannot append an array-of-tables entry to");
        }
        nt = new_value(ps, PT_TOML_TABLE);
        if (!nt || push_item(ps, arr, nt) != PT_OK)
            return PT_ERR;
        nt->flags = F_HEADER;
    } else if (!e) {
        nt = new_value(ps, PT_TOML_TABLE);
        if (!nt)
            return PT_ERR;
        nt->flags = F_HEADER;
        if (insert(ps, t, k.parts[last], k.lens[last], line, nt) != PT_OK)
            return PT_ERR;
    } else {
        nt = e->value;
        if (nt->type != PT_TOML_TABLE || nt->flags != F_IMPLICIT)
            return key_fail(ps, &k, last, "table defined twice:");
        nt->flags = F_HEADER;
        nt->line = line;
    }
    *cur = nt;
    return expect_eol(ps, "a table header");
}

int pt_toml_parse(struct pt_arena *a, const char *buf, size_t len, struct pt_toml_value **root,
                  int *err_line, char *err, size_t errlen)
{
    struct parser ps = {
        .a = a, .p = buf, .end = buf + len, .line = 1, .err = err, .errlen = errlen};
    *root = NULL;
    *err_line = 0;
    if (errlen)
        err[0] = '\0';
    if (len > PT_TOML_MAX_BYTES) {
        fail(&ps, "file larger than %u bytes", PT_TOML_MAX_BYTES);
        *err_line = 0;
        return PT_ERR;
    }
    size_t bad = utf8_check((const unsigned char *)buf, len);
    if (bad < len) {
        for (size_t i = 0; i < bad; i++)
            if (buf[i] == '\n')
                ps.line++;
        fail(&ps, "invalid UTF-8");
        goto fail;
    }
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3;
    struct pt_toml_value *top = new_value(&ps, PT_TOML_TABLE);
    if (!top)
        goto fail;
    top->flags = F_HEADER;
    struct pt_toml_value *cur = top;
    while (!at_end(&ps)) {
        skip_ws(&ps);
        if (skip_comment(&ps) != PT_OK)
            goto fail;
        if (at_end(&ps) || eat_newline(&ps))
            continue;
        if (peek(&ps) == '[') {
            if (parse_header(&ps, top, &cur) != PT_OK)
                goto fail;
            continue;
        }
        if (parse_keyval(&ps, cur) != PT_OK || expect_eol(&ps, "a value") != PT_OK)
            goto fail;
    }
    *root = top;
    return PT_OK;
fail:
    *err_line = ps.err_line;
    return PT_ERR;
}

const struct pt_toml_value *pt_toml_get(const struct pt_toml_value *t, const char *key)
{
    if (!t || t->type != PT_TOML_TABLE)
        return NULL;
    const struct pt_toml_kv *e = find(t, key, strlen(key));
    return e ? e->value : NULL;
}

const char *pt_toml_type_name(int type)
{
    switch (type) {
    case PT_TOML_STRING:
        return "string";
    case PT_TOML_INTEGER:
        return "integer";
    case PT_TOML_FLOAT:
        return "float";
    case PT_TOML_BOOL:
        return "boolean";
    case PT_TOML_ARRAY:
        return "array";
    case PT_TOML_TABLE:
        return "table";
    default:
        return "unknown";
    }
}
