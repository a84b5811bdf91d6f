/*
 * waf.c - the WAF engine: libmodsecurity3 rule sets compiled per configuration and one
 * transaction per request (guard/waf.h).
 *
 * One ModSecurity instance serves the process; it is made on the main thread by the first
 * pt_waf_build and lives until exit. Its log callback receives every rule match as
 * ModSecurity's text line, with the transaction's callback data, which is our struct
 * pt_waf_tx: the line is cut there into the rule's id, message and severity (the `data` part,
 * which quotes what matched, and so may quote a secret, is never kept). The anomaly score is
 * read from the CRS's blocking evaluation message ("Total Score: N"), else summed from the
 * severities as the CRS does (critical 5, error 4, warning 3, notice 2).
 *
 * A rule set is loaded in one fixed order (docs/internals/guard.md): Portico's head
 * (waf_rules.c), the API profile's "before" file, crs-setup.conf, the CRS's REQUEST-* then
 * RESPONSE-* files in name order, the profile's "after" file, the operator's files, the
 * exclusions. The profile files are embedded in the binary at build time (.incbin of
 * waf/profile-api-*.conf, as the dashboard's assets are), so a packaged binary needs nothing
 * from the source tree. Sets are keyed by everything that goes into them (the generated text,
 * the file names, the audit log): identical waf: entries of one configuration share one
 * compiled set, reference-counted, freed with the snapshot. A set is immutable once built and
 * ModSecurity reads it from every worker thread without locks; a transaction belongs to the
 * request's worker.
 *
 * The audit log is Portico's own, JSON lines, one write(2) per line on an O_APPEND descriptor
 * opened for the snapshot (ModSecurity's audit engine is off: it would write bodies and
 * header values).
 */
#include "guard/waf.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>

#include "core/log.h"

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl pt_waf_profile_before\n"
        ".hidden pt_waf_profile_before\n"
        "pt_waf_profile_before:\n"
        ".incbin \"waf/profile-api-before.conf\"\n"
        ".byte 0\n"
        ".balign 16\n"
        ".globl pt_waf_profile_after\n"
        ".hidden pt_waf_profile_after\n"
        "pt_waf_profile_after:\n"
        ".incbin \"waf/profile-api-after.conf\"\n"
        ".byte 0\n"
        ".popsection\n");
extern const char pt_waf_profile_before[];
extern const char pt_waf_profile_after[];

#define TEXT_MAX 65536
#define MATCHES_MAX 16
#define MSG_MAX 120

struct pt_waf_rules {
    RulesSet *rs;
    char *key; /* what went into it (compared to share it) */
    int audit_fd;
    int refs; /* waf: entries pointing at it (main thread only) */
};

struct match {
    uint32_t id;
    uint8_t severity; /* 0..7 (ModSecurity's), 255: none given */
    char msg[MSG_MAX];
};

struct pt_waf_tx {
    Transaction *t;
    const struct pt_waf_cfg *w;
    int status;        /* of an intervention; 0: none */
    int score;         /* from the evaluation message; -1: not given */
    bool is_evaluated; /* 949110 or 959100 matched */
    uint8_t n_matches;
    struct match m[MATCHES_MAX];
    const char *request_id;
    const char *protocol; /* "1.1", "2.0" */
    char client[64];
};

static ModSecurity *msc;

/* ---- rule matches from ModSecurity's text lines ---- */

/* The value of `[name "VALUE"]` in line, into out (escaped quotes kept as they are). */
static bool field_of(const char *line, const char *name, char *out, size_t cap)
{
    char pat[24];
    snprintf(pat, sizeof(pat), "[%s \"", name);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && !(p[n] == '"' && p[n + 1] == ']'))
        n++;
    n = n < cap - 1 ? n : cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void note_match(struct pt_waf_tx *tx, const char *line)
{
    char id[16], sev[8];
    if (!field_of(line, "id", id, sizeof(id)))
        return;
    uint32_t n = (uint32_t)strtoul(id, NULL, 10);
    if (n == 0)
        return;
    for (unsigned i = 0; i < tx->n_matches; i++)
        if (tx->m[i].id == n)
            return;
    struct match *m = tx->n_matches < MATCHES_MAX ? &tx->m[tx->n_matches++] : NULL;
    if (n == 949110 || n == 959100)
        tx->is_evaluated = true;
    char msg[MSG_MAX] = "";
    field_of(line, "msg", msg, sizeof(msg));
    const char *ts = strstr(msg, "Total Score: ");
    if (ts && (n == 949110 || n == 959100))
        tx->score = (int)strtol(ts + 13, NULL, 10);
    if (!m)
        return;
    m->id = n;
    m->severity = field_of(line, "severity", sev, sizeof(sev)) && sev[0] >= '0' && sev[0] <= '7'
                      ? (uint8_t)(sev[0] - '0')
                      : 255;
    memcpy(m->msg, msg, sizeof(m->msg));
}

static void log_cb(void *data, const void *text)
{
    if (data && text)
        note_match(data, text);
}

/* ---- compiling ---- */

static void set_err(char *err, size_t errlen, const struct pt_config *cfg,
                    const struct pt_waf_cfg *w, const char *what, const char *msg)
{
    char one[1024];
    snprintf(one, sizeof(one), "%s", msg ? msg : "unknown error");
    size_t n = strlen(one);
    while (n && (one[n - 1] == '\n' || one[n - 1] == ' '))
        one[--n] = '\0';
    for (char *p = one; *p; p++)
        if (*p == '\n')
            *p = ' ';
    snprintf(err, errlen, "%s:%d:%d: waf: %s do not load: %s", cfg->path, w->pos.line, w->pos.col,
             what, one);
}

/* Adds text or (file != NULL) a file to rs; on failure fills err and returns -1. */
static int add(RulesSet *rs, const char *text, const char *file, const char *what,
               const struct pt_config *cfg, const struct pt_waf_cfg *w, char *err, size_t errlen)
{
    const char *e = NULL;
    int rc = file ? msc_rules_add_file(rs, file, &e) : msc_rules_add(rs, text, &e);
    if (rc >= 0) {
        free((void *)e);
        return 0;
    }
    char label[600];
    if (file)
        snprintf(label, sizeof(label), "%s \"%s\"", what, file);
    else
        snprintf(label, sizeof(label), "%s", what);
    set_err(err, errlen, cfg, w, label, e);
    free((void *)e);
    return -1;
}

/* The CRS files of dir: REQUEST-*.conf then RESPONSE-*.conf, each in name order. */
static int crs_files(const char *dir, glob_t *g)
{
    char pat[4200];
    memset(g, 0, sizeof(*g));
    snprintf(pat, sizeof(pat), "%s/REQUEST-*.conf", dir);
    int rc = glob(pat, 0, NULL, g);
    if (rc != 0)
        return -1;
    snprintf(pat, sizeof(pat), "%s/RESPONSE-*.conf", dir);
    rc = glob(pat, GLOB_APPEND, NULL, g);
    return rc == 0 || rc == GLOB_NOMATCH ? 0 : -1;
}

static void rules_unref(struct pt_waf_rules *r)
{
    if (!r || --r->refs > 0)
        return;
    if (r->rs)
        msc_rules_cleanup(r->rs);
    if (r->audit_fd >= 0)
        close(r->audit_fd);
    free(r->key);
    free(r);
}

/* The key of w: everything that goes into its set. NULL when out of memory. */
static char *key_of(const struct pt_config *cfg, const struct pt_waf_cfg *w, const char *head,
                    const char *tail)
{
    size_t n = strlen(head) + strlen(tail) + strlen(cfg->waf_crs_setup) +
               strlen(cfg->waf_crs_rules) + (w->audit_log ? strlen(w->audit_log) : 0) + 64;
    for (size_t i = 0; i < w->n_rules; i++)
        n += strlen(w->rules[i]) + 1;
    char *k = malloc(n);
    if (!k)
        return NULL;
    size_t at =
        (size_t)snprintf(k, n, "%s\n%s\n%s\n%s\n%d\n%s\n", head, tail, cfg->waf_crs_setup,
                         cfg->waf_crs_rules, w->profile_api, w->audit_log ? w->audit_log : "");
    for (size_t i = 0; i < w->n_rules && at < n; i++)
        at += (size_t)snprintf(k + at, n - at, "%s\n", w->rules[i]);
    return k;
}

static struct pt_waf_rules *compile(const struct pt_config *cfg, const struct pt_waf_cfg *w,
                                    const char *head, const char *tail, char *key, bool open_audit,
                                    char *err, size_t errlen)
{
    struct pt_waf_rules *r = calloc(1, sizeof(*r));
    if (!r) {
        free(key);
        goto oom;
    }
    r->key = key;
    r->refs = 1;
    r->audit_fd = -1;
    r->rs = msc_create_rules_set();
    if (!r->rs)
        goto oom;
    if (add(r->rs, head, NULL, "Portico's directives", cfg, w, err, errlen) < 0 ||
        (w->profile_api && add(r->rs, pt_waf_profile_before, NULL, "the api profile (before CRS)",
                               cfg, w, err, errlen) < 0) ||
        add(r->rs, NULL, cfg->waf_crs_setup, "the CRS setup", cfg, w, err, errlen) < 0)
        goto fail;
    glob_t g;
    if (crs_files(cfg->waf_crs_rules, &g) < 0) {
        globfree(&g);
        snprintf(err, errlen, "%s:%d:%d: waf: no CRS rules (REQUEST-*.conf) in \"%s\"", cfg->path,
                 w->pos.line, w->pos.col, cfg->waf_crs_rules);
        goto fail;
    }
    for (size_t i = 0; i < g.gl_pathc; i++)
        if (add(r->rs, NULL, g.gl_pathv[i], "the CRS rules", cfg, w, err, errlen) < 0) {
            globfree(&g);
            goto fail;
        }
    globfree(&g);
    if (w->profile_api && add(r->rs, pt_waf_profile_after, NULL, "the api profile (after CRS)", cfg,
                              w, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < w->n_rules; i++)
        if (add(r->rs, NULL, w->rules[i], "the rules", cfg, w, err, errlen) < 0)
            goto fail;
    if (tail[0] && add(r->rs, tail, NULL, "the exclusions", cfg, w, err, errlen) < 0)
        goto fail;
    if (open_audit && w->audit_log) {
        r->audit_fd = open(w->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (r->audit_fd < 0) {
            snprintf(err, errlen, "%s:%d:%d: waf: cannot open audit_log \"%s\": %s", cfg->path,
                     w->pos.line, w->pos.col, w->audit_log, strerror(errno));
            goto fail;
        }
    }
    return r;
oom:
    snprintf(err, errlen, "%s: out of memory", cfg->path);
fail:
    rules_unref(r);
    return NULL;
}

int pt_waf_build(struct pt_config *cfg, bool open_audit, char *err, size_t errlen)
{
    if (!cfg->wafs)
        return 0;
    if (!msc) {
        msc = msc_init();
        if (!msc) {
            snprintf(err, errlen, "%s: out of memory", cfg->path);
            return -1;
        }
        msc_set_connector_info(msc, "Portico");
        msc_set_log_cb(msc, log_cb);
    }
    char *head = malloc(TEXT_MAX), *tail = malloc(TEXT_MAX);
    int rc = -1;
    if (!head || !tail) {
        snprintf(err, errlen, "%s: out of memory", cfg->path);
        goto out;
    }
    for (struct pt_waf_cfg *w = cfg->wafs; w; w = w->next) {
        if (w->mode == PT_WAF_OFF)
            continue;
        if (pt_waf_head_text(w, head, TEXT_MAX) < 0 || pt_waf_tail_text(w, tail, TEXT_MAX) < 0) {
            snprintf(err, errlen, "%s:%d:%d: waf: too many exclusions", cfg->path, w->pos.line,
                     w->pos.col);
            goto out;
        }
        char *key = key_of(cfg, w, head, tail);
        if (!key) {
            snprintf(err, errlen, "%s: out of memory", cfg->path);
            goto out;
        }
        for (struct pt_waf_cfg *o = cfg->wafs; o != w; o = o->next)
            if (o->compiled && strcmp(o->compiled->key, key) == 0) {
                w->compiled = o->compiled;
                w->compiled->refs++;
                break;
            }
        if (w->compiled) {
            free(key);
            continue;
        }
        w->compiled = compile(cfg, w, head, tail, key, open_audit, err, errlen);
        if (!w->compiled)
            goto out;
    }
    rc = 0;
out:
    free(head);
    free(tail);
    return rc;
}

void pt_waf_release(struct pt_config *cfg)
{
    for (struct pt_waf_cfg *w = cfg ? cfg->wafs : NULL; w; w = w->next) {
        rules_unref(w->compiled);
        w->compiled = NULL;
    }
}

/* ---- transactions ---- */

struct pt_waf_tx *pt_waf_tx_new(const struct pt_waf_cfg *w, const struct pt_waf_conn *conn)
{
    struct pt_waf_tx *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return NULL;
    tx->w = w;
    tx->score = -1;
    tx->request_id = conn->request_id;
    snprintf(tx->client, sizeof(tx->client), "%s", conn->client_ip);
    tx->t = msc_new_transaction_with_id(msc, w->compiled->rs, (char *)conn->request_id, tx);
    if (!tx->t) {
        free(tx);
        return NULL;
    }
    msc_process_connection(tx->t, conn->client_ip, conn->client_port, conn->server_ip,
                           conn->server_port);
    tx->protocol = conn->protocol;
    return tx;
}

void pt_waf_tx_free(struct pt_waf_tx *tx)
{
    if (!tx)
        return;
    msc_transaction_cleanup(tx->t);
    free(tx);
}

/* Whether ModSecurity asks to stop the request; in detection mode it never does. */
static enum pt_waf_verdict intervention(struct pt_waf_tx *tx)
{
    ModSecurityIntervention it = {.status = 200};
    int rc = msc_intervention(tx->t, &it);
    if (it.log) {
        note_match(tx, it.log);
        free(it.log);
    }
    free(it.url);
    if (rc <= 0 || !it.disruptive)
        return PT_WAF_PASS;
    tx->status = it.status >= 400 && it.status <= 599 ? it.status : 403;
    return PT_WAF_REFUSE;
}

enum pt_waf_verdict pt_waf_tx_head(struct pt_waf_tx *tx, struct pt_str method, struct pt_str uri,
                                   const struct pt_req_head *h)
{
    char m[32], u[8200];
    snprintf(m, sizeof(m), "%.*s", (int)method.n, method.p ? method.p : "");
    snprintf(u, sizeof(u), "%.*s", (int)uri.n, uri.p ? uri.p : "");
    msc_process_uri(tx->t, u, m, tx->protocol);
    bool has_host = false;
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct pt_field *f = &h->fields[i];
        has_host |= PT_STR_CASEEQ_LIT(f->name, "host");
        msc_add_n_request_header(tx->t, (const unsigned char *)f->name.p, f->name.n,
                                 (const unsigned char *)f->value.p, f->value.n);
    }
    if (!has_host && h->authority.n)
        msc_add_n_request_header(tx->t, (const unsigned char *)"Host", 4,
                                 (const unsigned char *)h->authority.p, h->authority.n);
    msc_process_request_headers(tx->t);
    return intervention(tx);
}

int pt_waf_tx_body(struct pt_waf_tx *tx, const char *p, size_t n)
{
    return msc_append_request_body(tx->t, (const unsigned char *)p, n) ? 0 : -1;
}

enum pt_waf_verdict pt_waf_tx_end_body(struct pt_waf_tx *tx)
{
    msc_process_request_body(tx->t);
    return intervention(tx);
}

int pt_waf_tx_status(const struct pt_waf_tx *tx)
{
    return tx->status ? tx->status : 403;
}

bool pt_waf_tx_flagged(const struct pt_waf_tx *tx)
{
    return tx->status != 0 || tx->is_evaluated;
}

void pt_waf_tx_rule_ids(const struct pt_waf_tx *tx, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < tx->n_matches && at + 12 < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%u", i ? "," : "", (unsigned)tx->m[i].id);
}

/* Appends s as a JSON string (quotes included), cut to max bytes of input. */
static size_t json_str(char *out, size_t cap, size_t at, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    if (at + 2 >= cap)
        return at;
    out[at++] = '"';
    for (size_t i = 0; s[i] && i < max && at + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[at++] = '\\';
            out[at++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            /* bytes as \u00XX: the line stays valid JSON whatever the input */
            memcpy(out + at, "\\u00", 4);
            out[at + 4] = hex[ch >> 4];
            out[at + 5] = hex[ch & 15];
            at += 6;
        } else {
            out[at++] = (char)ch;
        }
    }
    out[at++] = '"';
    return at;
}

static int score_of(const struct pt_waf_tx *tx)
{
    if (tx->score >= 0)
        return tx->score;
    static const int points[8] = {0, 0, 5, 4, 3, 2, 0, 0};
    int sum = 0;
    for (unsigned i = 0; i < tx->n_matches; i++)
        if (tx->m[i].severity < 8)
            sum += points[tx->m[i].severity];
    return sum;
}

void pt_waf_tx_audit(struct pt_waf_tx *tx, const char *method, const char *uri, const char *action)
{
    static const char *const sev[8] = {"EMERGENCY", "ALERT",  "CRITICAL", "ERROR",
                                       "WARNING",   "NOTICE", "INFO",     "DEBUG"};
    int fd = tx->w->compiled->audit_fd;
    if (fd < 0)
        return;
    char line[8192];
    size_t cap = sizeof(line) - 2, at;
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    at = (size_t)snprintf(line, cap, "{\"time\":\"%s.%03ldZ\",\"request_id\":", ts,
                          now.tv_nsec / 1000000);
    at = json_str(line, cap, at, tx->request_id, 64);
    at += (size_t)snprintf(line + at, cap - at, ",\"client\":");
    at = json_str(line, cap, at, tx->client, 64);
    at += (size_t)snprintf(line + at, cap - at, ",\"method\":");
    at = json_str(line, cap, at, method, 16);
    at += (size_t)snprintf(line + at, cap - at, ",\"uri\":");
    at = json_str(line, cap, at, uri, 512);
    at += (size_t)snprintf(line + at, cap - at,
                           ",\"action\":\"%s\",\"mode\":\"%s\",\"status\":%d,\"anomaly_score\":%d,"
                           "\"rules\":[",
                           action, tx->w->mode == PT_WAF_DETECT ? "detect" : "block",
                           strcmp(action, "blocked") == 0              ? pt_waf_tx_status(tx)
                           : strcmp(action, "refused_over_limit") == 0 ? 413
                                                                       : 0,
                           score_of(tx));
    for (unsigned i = 0; i < tx->n_matches && at + 300 < cap; i++) {
        const struct match *m = &tx->m[i];
        at += (size_t)snprintf(line + at, cap - at, "%s{\"id\":%u,\"msg\":", i ? "," : "",
                               (unsigned)m->id);
        at = json_str(line, cap, at, m->msg, MSG_MAX);
        at += (size_t)snprintf(line + at, cap - at, ",\"severity\":\"%s\"}",
                               m->severity < 8 ? sev[m->severity] : "");
    }
    if (at + 3 > sizeof(line))
        at = sizeof(line) - 3;
    memcpy(line + at, "]}\n", 3);
    at += 3;
    ssize_t n = write(fd, line, at);
    if (n < 0)
        pt_log_ratelimited(PT_LOG_WARN, "waf: audit_log \"%s\": %s", tx->w->audit_log,
                           strerror(errno));
}
