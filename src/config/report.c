/*
 * report.c - the loader's errors and warnings: collected with their positions, kept free of
 * secrets, sorted and formatted.
 *
 * Errors go into a struct pt_config_errors (config.h), a fixed array of PT_CONFIG_MAX_ERRORS
 * messages: the loader's own through pt_config_error(), which stops the load with a longjmp
 * once the array is full, and those found after the load by the layers that finish a
 * configuration (the DNS expansion of upstream/) through pt_config_report(), which drops them
 * instead. pt_config_format_errors() prints both the same way, sorted by position, so a user
 * cannot tell which step found a mistake. Warnings are a list in the load's scratch arena,
 * sorted and formatted into the configuration (cfg->warnings) when the load succeeds.
 *
 * Secrets: a value taken from the environment (${NAME}) is replaced by "${NAME}" in every
 * message about the scalar it went into. The list of those values lives in the
 * configuration's arena (cfg->secrets), so reports made after the load are redacted too.
 *
 * Single-threaded, like the rest of loading.
 */
#include "config/config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/*
 * Replaces in msg (NUL-terminated, cap bytes) every copy of an environment value that went
 * into the scalar at pos by "${NAME}". A value cut short where a message truncates a long
 * scalar (its start followed by '"') is replaced too.
 */
static void redact(const struct pt_config *cfg, struct pt_cfg_pos pos, char *msg, size_t cap)
{
    for (const struct pt_cfg_secret *sc = cfg->secrets; sc; sc = sc->next) {
        if (sc->pos.line != pos.line || sc->pos.col != pos.col || sc->len == 0)
            continue;
        char out[PT_CFG_MSG_MAX];
        size_t o = 0, i = 0, n = strlen(msg);
        while (i < n && o + 1 < sizeof(out)) {
            size_t k = 0;
            while (k < sc->len && i + k < n && msg[i + k] == sc->value[k])
                k++;
            if (k == sc->len || (k > 0 && i + k < n && msg[i + k] == '"')) {
                int w = snprintf(out + o, sizeof(out) - o, "${%s}", sc->name);
                o = w > 0 ? PT_MIN(o + (size_t)w, sizeof(out) - 1) : o;
                i += k;
            } else {
                out[o++] = msg[i++];
            }
        }
        out[o] = '\0';
        snprintf(msg, cap, "%s", out);
    }
}

static bool report_v(const struct pt_config *cfg, struct pt_config_errors *e, struct pt_cfg_pos pos,
                     const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static bool report_v(const struct pt_config *cfg, struct pt_config_errors *e, struct pt_cfg_pos pos,
                     const char *fmt, va_list ap)
{
    if (e->n >= PT_CONFIG_MAX_ERRORS) {
        e->is_truncated = true;
        return false;
    }
    struct pt_config_errmsg *m = &e->items[e->n];
    m->pos = pos;
    m->seq = (unsigned)e->n;
    vsnprintf(m->msg, sizeof(m->msg), fmt, ap);
    redact(cfg, pos, m->msg, sizeof(m->msg));
    e->n++;
    return true;
}

void pt_config_error(struct pt_cfg_ctx *x, struct pt_cfg_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = report_v(x->cfg, &x->errs, pos, fmt, ap);
    va_end(ap);
    if (!ok)
        longjmp(x->jb, 1);
}

bool pt_config_report(const struct pt_config *cfg, struct pt_config_errors *e,
                      struct pt_cfg_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = report_v(cfg, e, pos, fmt, ap);
    va_end(ap);
    return ok;
}

static void warn_v(struct pt_cfg_ctx *x, const char *file, struct pt_cfg_pos pos, const char *fmt,
                   va_list ap) __attribute__((format(printf, 4, 0)));

static void warn_v(struct pt_cfg_ctx *x, const char *file, struct pt_cfg_pos pos, const char *fmt,
                   va_list ap)
{
    unsigned seq = (unsigned)x->n_warns++;
    if (seq >= PT_CFG_MAX_WARNINGS)
        return;
    struct pt_cfg_warnmsg *w = pt_config_alloc(x, &x->tmp, sizeof(*w));
    w->file = file;
    w->pos = pos;
    w->seq = seq;
    vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
    if (!file)
        redact(x->cfg, pos, w->msg, sizeof(w->msg));
    w->next = x->warns;
    x->warns = w;
}

void pt_config_warn(struct pt_cfg_ctx *x, struct pt_cfg_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warn_v(x, NULL, pos, fmt, ap);
    va_end(ap);
}

void pt_config_warn_file(struct pt_cfg_ctx *x, const char *file, int line, int col, const char *fmt,
                         ...)
{
    struct pt_cfg_pos pos = {line, col};
    va_list ap;
    va_start(ap, fmt);
    warn_v(x, file, pos, fmt, ap);
    va_end(ap);
}

void pt_config_oom(struct pt_cfg_ctx *x)
{
    struct pt_cfg_pos none = {0, 0};
    if (x->errs.n == PT_CFG_MAX_ERRORS)
        x->errs.n--; /* make room: running out of memory is the error that matters */
    pt_config_error(x, none, "out of memory while loading the configuration");
    longjmp(x->jb, 1);
}

static int warnmsg_cmp(const void *pa, const void *pb)
{
    const struct pt_cfg_warnmsg *a = *(const struct pt_cfg_warnmsg *const *)pa;
    const struct pt_cfg_warnmsg *b = *(const struct pt_cfg_warnmsg *const *)pb;
    if (!a->file != !b->file)
        return a->file ? 1 : -1; /* the configuration file's own first */
    int rc = a->file ? strcmp(a->file, b->file) : 0;
    if (rc)
        return rc;
    if (a->pos.line != b->pos.line)
        return a->pos.line < b->pos.line ? -1 : 1;
    if (a->pos.col != b->pos.col)
        return a->pos.col < b->pos.col ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

void pt_config_collect_warnings(struct pt_cfg_ctx *x)
{
    struct pt_config *cfg = x->cfg;
    size_t n = 0;
    for (const struct pt_cfg_warnmsg *w = x->warns; w; w = w->next)
        n++;
    cfg->n_warnings = x->n_warns;
    if (n == 0)
        return;
    const struct pt_cfg_warnmsg **all = pt_config_alloc(x, &x->tmp, n * sizeof(*all));
    n = 0;
    for (const struct pt_cfg_warnmsg *w = x->warns; w; w = w->next)
        all[n++] = w;
    qsort(all, n, sizeof(*all), warnmsg_cmp);
    cfg->warnings = pt_config_alloc(x, &cfg->arena, n * sizeof(*cfg->warnings));
    for (size_t i = 0; i < n; i++) {
        const struct pt_cfg_warnmsg *w = all[i];
        const char *file = w->file ? w->file : x->name;
        char line[PT_CFG_MSG_MAX + 4200];
        int k =
            snprintf(line, sizeof(line), "%s:%d:%d: warning: %s", file,
                     w->pos.line > 0 ? w->pos.line : 1, w->pos.line > 0 ? w->pos.col : 1, w->msg);
        cfg->warnings[i] = pt_config_strndup(x, &cfg->arena, line,
                                             k < 0 ? 0 : PT_MIN((size_t)k, sizeof(line) - 1));
    }
    cfg->n_warning_lines = n;
}

static int errmsg_cmp(const void *pa, const void *pb)
{
    const struct pt_config_errmsg *a = pa, *b = pb;
    if (a->pos.line != b->pos.line)
        return a->pos.line < b->pos.line ? -1 : 1;
    if (a->pos.col != b->pos.col)
        return a->pos.col < b->pos.col ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

static void append_line(char *err, size_t errlen, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append_line(char *err, size_t errlen, size_t *used, const char *fmt, ...)
{
    if (*used + 1 >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(err + *used, errlen - *used, fmt, ap);
    va_end(ap);
    if (w > 0)
        *used = PT_MIN(*used + (size_t)w, errlen - 1);
}

void pt_config_format_errors(const char *name, struct pt_config_errors *e, char *err, size_t errlen)
{
    size_t used = 0;
    if (!err || errlen == 0)
        return;
    err[0] = '\0';
    qsort(e->items, e->n, sizeof(e->items[0]), errmsg_cmp);
    for (size_t i = 0; i < e->n; i++) {
        const struct pt_config_errmsg *m = &e->items[i];
        const char *nl = i ? "\n" : "";
        if (m->pos.line > 0)
            append_line(err, errlen, &used, "%s%s:%d:%d: %s", nl, name, m->pos.line, m->pos.col,
                        m->msg);
        else
            append_line(err, errlen, &used, "%s%s: %s", nl, name, m->msg);
    }
    if (e->is_truncated)
        append_line(err, errlen, &used, "\n%s: too many errors, stopped after %d", name,
                    PT_CONFIG_MAX_ERRORS);
}
