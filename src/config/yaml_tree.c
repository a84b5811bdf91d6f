/*
 * yaml_tree.c - libyaml events to a positioned node tree, and the loader's error collector.
 *
 * libyaml's event API is used rather than its document API because the events let the loader
 * refuse what it does not support at the exact spot, before any work is spent on it: an alias
 * is refused where it appears (the document API would hand back a shared node, and walking a
 * chain of aliases to aliases is the "billion laughs" blow-up), anchors likewise, nesting is
 * capped at PT_CFG_MAX_DEPTH while streaming (libyaml itself has no cap), and a second
 * document is an error. Duplicate keys are found when a mapping closes by sorting its keys,
 * so a mapping with many keys costs n log n, not n squared.
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

static int tolower_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : (unsigned char)c;
}

void pt_config_error(struct pt_cfg_ctx *x, struct pt_cfg_pos pos, const char *fmt, ...)
{
    if (x->n_errs >= PT_CFG_MAX_ERRORS) {
        x->is_truncated = true;
        longjmp(x->jb, 1);
    }
    struct pt_cfg_errmsg *e = &x->errs[x->n_errs];
    e->pos = pos;
    e->seq = (unsigned)x->n_errs;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    x->n_errs++;
}

void pt_config_oom(struct pt_cfg_ctx *x)
{
    struct pt_cfg_pos none = {0, 0};
    if (x->n_errs == PT_CFG_MAX_ERRORS)
        x->n_errs--; /* make room: running out of memory is the error that matters */
    pt_config_error(x, none, "out of memory while loading the configuration");
    longjmp(x->jb, 1);
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
