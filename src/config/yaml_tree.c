/*
 * yaml_tree.c - libyaml events to a positioned node tree.
 *
 * libyaml's event API is used rather than its document API because the events let the loader
 * refuse what it does not support at the exact spot, before any work is spent on it: an alias
 * is refused where it appears (the document API would hand back a shared node, and walking a
 * chain of aliases to aliases is the "billion laughs" blow-up), anchors likewise, nesting is
 * capped at PT_CFG_MAX_DEPTH while streaming (libyaml itself has no cap), and a second
 * document is an error. Duplicate keys are found when a mapping closes by sorting its keys,
 * so a mapping with many keys costs n log n, not n squared.
 *
 * Environment variables: ${NAME} and ${NAME:-default} in a scalar value (never a key) are
 * expanded here, as the scalar arrives, so the schema in config.c sees the final text and its
 * checks apply to it; $${ is a literal ${. Expanding text rather than the file means a value
 * can never inject YAML structure. The values taken from the environment are kept in a list
 * (cfg->secrets) and the error collector (report.c) replaces them by "${NAME}" in its
 * messages: secrets are not printed.
 * A tab in the indentation, which libyaml reports as a character that "cannot start any
 * token", is named as a tab (syntax_error).
 *
 * Positions: libyaml marks are 0-based; ours are 1-based. Single-threaded; all memory comes
 * from x->tmp and is released with it.
 */
#include "config/config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"

static int tolower_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : (unsigned char)c;
}

void *pt_config_alloc(struct pt_cfg_ctx *x, struct pt_arena *a, size_t n)
{
    void *p = pt_arena_alloc(a, n ? n : 1);
    if (!p)
        pt_config_oom(x);
    return p;
}

char *pt_config_strndup(struct pt_cfg_ctx *x, struct pt_arena *a, const char *s, size_t n)
{
    char *p = pt_arena_strndup(a, s, n);
    if (!p)
        pt_config_oom(x);
    return p;
}

unsigned pt_config_distance(const char *a, size_t an, const char *b, size_t bn)
{
    enum { MAXN = 64 };
    unsigned rows[3][MAXN + 1];
    if (an > MAXN || bn > MAXN)
        return 1000;
    unsigned *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= bn; j++)
        p[j] = (unsigned)j;
    for (size_t i = 1; i <= an; i++) {
        c[0] = (unsigned)i;
        for (size_t j = 1; j <= bn; j++) {
            unsigned cost = tolower_ascii(a[i - 1]) == tolower_ascii(b[j - 1]) ? 0 : 1;
            unsigned v = p[j] + 1;
            if (c[j - 1] + 1 < v)
                v = c[j - 1] + 1;
            if (p[j - 1] + cost < v)
                v = p[j - 1] + cost;
            if (i > 1 && j > 1 && tolower_ascii(a[i - 1]) == tolower_ascii(b[j - 2]) &&
                tolower_ascii(a[i - 2]) == tolower_ascii(b[j - 1]) && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
        }
        unsigned *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[bn];
}

static struct pt_cfg_pos mark_pos(yaml_mark_t m)
{
    struct pt_cfg_pos pos = {(int)m.line + 1, (int)m.column + 1};
    return pos;
}

/* libyaml's reader errors carry a byte offset but no line: count it ourselves. */
static struct pt_cfg_pos offset_pos(const char *buf, size_t len, size_t off)
{
    struct pt_cfg_pos pos = {1, 1};
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            pos.line++;
            pos.col = 1;
        } else {
            pos.col++;
        }
    }
    return pos;
}

/*
 * The column (1-based) of a tab in the indentation of line `line` of buf, or 0 when its
 * leading blanks hold none. libyaml reports such a tab as "found character that cannot start
 * any token" or "a tab character that violates indentation"; users need to hear "tab".
 */
static int indent_tab_col(const char *buf, size_t len, int line)
{
    size_t i = 0;
    for (int l = 1; l < line && i < len; i++)
        if (buf[i] == '\n')
            l++;
    for (int col = 1; i < len && (buf[i] == ' ' || buf[i] == '\t'); i++, col++)
        if (buf[i] == '\t')
            return col;
    return 0;
}

static void syntax_error(struct pt_cfg_ctx *x)
{
    yaml_parser_t *p = &x->parser;
    const char *problem = p->problem ? p->problem : "malformed input";
    struct pt_cfg_pos pos;
    if (p->error == YAML_READER_ERROR)
        pos = offset_pos(x->buf, x->len, p->problem_offset);
    else
        pos = mark_pos(p->problem_mark);
    if (p->error == YAML_MEMORY_ERROR)
        pt_config_oom(x);
    int tab = p->error == YAML_READER_ERROR ? 0 : indent_tab_col(x->buf, x->len, pos.line);
    if (tab) {
        pos.col = tab;
        pt_config_error(x, pos, "tabs are not allowed for indentation in YAML; use spaces");
        return;
    }
    if (p->context)
        pt_config_error(x, pos, "YAML syntax error: %s (%s at line %d)", problem, p->context,
                        (int)p->context_mark.line + 1);
    else if (p->error == YAML_READER_ERROR)
        pt_config_error(x, pos, "YAML syntax error: %s (byte 0x%02x)", problem,
                        (unsigned)(p->problem_value & 0xff));
    else
        pt_config_error(x, pos, "YAML syntax error: %s", problem);
}

static int key_cmp(const void *pa, const void *pb)
{
    const struct pt_ynode *a = *(const struct pt_ynode *const *)pa;
    const struct pt_ynode *b = *(const struct pt_ynode *const *)pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int rc = memcmp(a->s, b->s, n);
    if (rc)
        return rc;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    if (a->pos.line != b->pos.line)
        return a->pos.line < b->pos.line ? -1 : 1;
    return a->pos.col < b->pos.col ? -1 : (a->pos.col > b->pos.col);
}

static void check_duplicate_keys(struct pt_cfg_ctx *x, const struct pt_ynode *map)
{
    size_t n = 0;
    if (map->len < 4)
        return;
    struct pt_ynode **keys = pt_config_alloc(x, &x->tmp, sizeof(*keys) * (map->len / 2));
    for (const struct pt_ynode *k = map->child; k && k->next; k = k->next->next)
        if (k->kind == PT_YNODE_SCALAR)
            keys[n++] = (struct pt_ynode *)k;
    qsort(keys, n, sizeof(*keys), key_cmp);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        if (keys[i]->len == keys[first]->len &&
            memcmp(keys[i]->s, keys[first]->s, keys[i]->len) == 0) {
            pt_config_error(x, keys[i]->pos, "duplicate key \"%.*s\" (first at line %d)",
                            (int)(keys[i]->len > 60 ? 60 : keys[i]->len), keys[i]->s,
                            keys[first]->pos.line);
            keys[i]->is_dup = true;
        } else {
            first = i;
        }
    }
}

static void append(struct pt_ynode *parent, struct pt_ynode *n)
{
    if (parent->last)
        parent->last->next = n;
    else
        parent->child = n;
    parent->last = n;
    parent->len++;
}

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/*
 * Expands ${NAME} and ${NAME:-default} in the scalar n (a value, never a key) from the
 * environment, and turns $${ into a literal ${. The result replaces n->s in x->tmp. A default
 * is used when NAME is unset or empty (as in the shell); an unset NAME without one, or a
 * malformed ${...}, is an error at the scalar. Values taken from the environment are recorded
 * in cfg->secrets so that no message shows them.
 */
static void expand_env(struct pt_cfg_ctx *x, struct pt_ynode *n)
{
    const char *s = n->s;
    size_t len = n->len, cap = len + 1, o = 0;
    char *out = pt_config_alloc(x, &x->tmp, cap);
    for (size_t i = 0; i < len;) {
        const char *add = s + i;
        size_t add_len = 1, adv = 1;
        if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            add = "${"; /* the escape */
            add_len = 2;
            adv = 3;
        } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            size_t a = i + 2, b = a;
            while (b < len && is_name_char(s[b]))
                b++;
            const char *close = memchr(s + b, '}', len - b);
            if (b == a || !is_name_start(s[a]) || !close ||
                (s + b != close && !(b + 1 < len && s[b] == ':' && s[b + 1] == '-'))) {
                pt_config_error(x, n->pos,
                                "bad environment reference in this value: write ${NAME} or "
                                "${NAME:-default} (NAME: letters, digits and '_'), or $${ for a "
                                "literal ${");
                n->is_bad = true;
                return;
            }
            char *name = pt_config_strndup(x, &x->tmp, s + a, b - a);
            const char *env = getenv(name);
            size_t end = (size_t)(close - s);
            if (env && env[0]) {
                /* In the configuration's arena: errors found after the load redact too. */
                struct pt_arena *ca = &x->cfg->arena;
                struct pt_cfg_secret *sc = pt_config_alloc(x, ca, sizeof(*sc));
                sc->pos = n->pos;
                sc->name = pt_config_strndup(x, ca, name, b - a);
                sc->len = strlen(env);
                sc->value = pt_config_strndup(x, ca, env, sc->len);
                sc->next = x->cfg->secrets;
                x->cfg->secrets = sc;
                add = env;
                add_len = sc->len;
            } else if (s + b != close) {
                add = s + b + 2; /* the default, as written */
                add_len = end - b - 2;
            } else if (env) {
                add_len = 0; /* set but empty, no default: empty, as in the shell */
            } else {
                pt_config_error(x, n->pos,
                                "environment variable \"%s\" is not set (give a default with "
                                "${%s:-default})",
                                name, name);
                n->is_bad = true;
                return;
            }
            adv = end + 1 - i;
        }
        if (o + add_len + 1 > cap) {
            if (o + add_len + 1 > PT_CFG_MAX_SCALAR) {
                pt_config_error(x, n->pos, "this value is longer than %u bytes once expanded",
                                PT_CFG_MAX_SCALAR);
                n->is_bad = true;
                return;
            }
            size_t ncap = PT_MIN(PT_MAX(cap * 2, o + add_len + 1), (size_t)PT_CFG_MAX_SCALAR);
            char *grown = pt_config_alloc(x, &x->tmp, ncap);
            memcpy(grown, out, o);
            out = grown;
            cap = ncap;
        }
        memcpy(out + o, add, add_len);
        o += add_len;
        i += adv;
    }
    out[o] = '\0';
    n->s = out;
    n->len = o;
}

static bool has_anchor(struct pt_cfg_ctx *x, const yaml_char_t *anchor, yaml_mark_t m)
{
    if (!anchor)
        return false;
    pt_config_error(x, mark_pos(m),
                    "YAML anchors (&%.40s) are not supported: write the value out in full",
                    (const char *)anchor);
    return true;
}

struct pt_ynode *pt_config_yaml_tree(struct pt_cfg_ctx *x)
{
    struct pt_ynode *stack[PT_CFG_MAX_DEPTH];
    size_t depth = 0;
    struct pt_ynode *root = NULL;
    int docs = 0;
    bool done = false;

    if (!yaml_parser_initialize(&x->parser))
        pt_config_oom(x);
    x->has_parser = true;
    yaml_parser_set_input_string(&x->parser, (const unsigned char *)x->buf, x->len);

    while (!done) {
        if (!yaml_parser_parse(&x->parser, &x->ev)) {
            syntax_error(x);
            return NULL;
        }
        x->has_event = true;
        yaml_event_t *ev = &x->ev;
        struct pt_ynode *n = NULL;
        switch (ev->type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                pt_config_error(x, mark_pos(ev->start_mark),
                                "only one YAML document is allowed in a configuration file");
                return NULL;
            }
            break;
        case YAML_ALIAS_EVENT:
            pt_config_error(x, mark_pos(ev->start_mark),
                            "YAML aliases (*%.40s) are not supported: write the value out in full",
                            (const char *)ev->data.alias.anchor);
            n = pt_config_alloc(x, &x->tmp, sizeof(*n));
            n->kind = PT_YNODE_SCALAR;
            n->is_plain = true;
            n->s = "";
            n->pos = mark_pos(ev->start_mark);
            break;
        case YAML_SCALAR_EVENT:
            has_anchor(x, ev->data.scalar.anchor, ev->start_mark);
            n = pt_config_alloc(x, &x->tmp, sizeof(*n));
            n->kind = PT_YNODE_SCALAR;
            n->is_plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            n->pos = mark_pos(ev->start_mark);
            n->s = pt_config_strndup(x, &x->tmp, (const char *)ev->data.scalar.value,
                                     ev->data.scalar.length);
            n->len = ev->data.scalar.length;
            /* Values only: a key is a name in the schema, never configuration data. */
            if (!(depth > 0 && stack[depth - 1]->kind == PT_YNODE_MAP &&
                  stack[depth - 1]->len % 2 == 0) &&
                memmem(n->s, n->len, "${", 2))
                expand_env(x, n);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (ev->type == YAML_SEQUENCE_START_EVENT)
                has_anchor(x, ev->data.sequence_start.anchor, ev->start_mark);
            else
                has_anchor(x, ev->data.mapping_start.anchor, ev->start_mark);
            if (depth == PT_CFG_MAX_DEPTH) {
                pt_config_error(x, mark_pos(ev->start_mark),
                                "nesting is too deep (more than %d levels)", PT_CFG_MAX_DEPTH);
                return NULL;
            }
            n = pt_config_alloc(x, &x->tmp, sizeof(*n));
            n->kind = ev->type == YAML_SEQUENCE_START_EVENT ? PT_YNODE_SEQ : PT_YNODE_MAP;
            n->pos = mark_pos(ev->start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                depth--;
                if (stack[depth]->kind == PT_YNODE_MAP)
                    check_duplicate_keys(x, stack[depth]);
            }
            break;
        default:
            break;
        }
        if (n) {
            if (depth > 0)
                append(stack[depth - 1], n);
            else if (!root)
                root = n;
            if (n->kind != PT_YNODE_SCALAR)
                stack[depth++] = n;
        }
        yaml_event_delete(&x->ev);
        x->has_event = false;
    }
    return root;
}
