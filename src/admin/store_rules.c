/*
 * store_rules.c - proxy rules in the store: create, read, update, delete, reorder; the sealing
 * of their header secrets; the key check, key rotation and the consistency check.
 *
 * Order. A rule's owner is its project (alias_id NULL: the project's own rules) or one alias.
 * The orders of an owner's rules are always 0..n-1 (a permutation), kept by every call that
 * adds, moves or removes a rule, and backed by a unique index on (project, alias, order). Each
 * such call computes the owner's new sequence of ids in memory and renumbers in two passes: the
 * rows whose order changes are first parked on distinct negative orders, then flipped to their
 * place, so the unique index never sees two rows on one order in between (SQLite checks it row
 * by row, not at commit). A reorder takes the complete list of the owner's ids: anything else
 * (a missing, foreign or repeated id) is refused before anything is written.
 *
 * Secrets. headerConfig.add values are sealed (secrets.c) with the rule id and header name as
 * AAD before they reach SQLite, and opened only for a PT_STORE_PLAIN read: the API reads
 * PT_STORE_MASKED and never holds a plain value. Error messages name the rule and the header,
 * never the value.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/store_internal.h"

#define PATTERN_MAX_BYTES 1024
#define URL_MAX_BYTES 2048
#define DESCRIPTION_MAX_BYTES 4096
#define HEADER_NAME_MAX_BYTES 256
#define HEADER_VALUE_MAX_BYTES 8192
#define MAX_HEADERS 64

#define OWNER_WHERE "project_id = ?1 AND alias_id IS ?2"

/* Binds the owner (project_id, alias_id or NULL) to ?1 and ?2 of st. */
static void bind_owner(sqlite3_stmt *st, const char *project_id, const char *alias_id)
{
    sqlite3_bind_text(st, 1, project_id, -1, SQLITE_STATIC);
    if (alias_id && alias_id[0])
        sqlite3_bind_text(st, 2, alias_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
}

/* Finds the owner: project_id, or the alias_id (whose project goes to project_out; a given
   project_id must be the alias's). PT_STORE_NOT_FOUND when missing. */
static int owner_resolve(struct pt_store *s, const char *project_id, const char *alias_id,
                         char *project_out)
{
    bool is_alias = alias_id && alias_id[0];
    sqlite3_stmt *st;
    int rc = pt_store_prepare(s,
                              is_alias ? "SELECT project_id FROM aliases WHERE id = ?1"
                                       : "SELECT id FROM projects WHERE id = ?1",
                              &st);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_bind_text(st, 1, is_alias ? alias_id : (project_id ? project_id : ""), -1,
                      SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        if (is_alias && project_id && project_id[0] && strcmp(p, project_id) != 0)
            rc = pt_store_fail(s, PT_STORE_INVALID, "aliasId",
                               "alias %s does not belong to project %s", alias_id, project_id);
        else
            snprintf(project_out, PT_STORE_ID_LEN + 1, "%s", p);
    } else if (step == SQLITE_DONE)
        rc = pt_store_fail(s, PT_STORE_NOT_FOUND, is_alias ? "aliasId" : "projectId", "no %s %s",
                           is_alias ? "alias" : "project", is_alias ? alias_id : project_id);
    else
        rc = pt_store_dberr(s, "owner");
    sqlite3_finalize(st);
    return rc;
}

/* The owner's rule ids by order. */
static int owner_ids(struct pt_store *s, const char *project_id, const char *alias_id, char ***ids,
                     size_t *n)
{
    sqlite3_stmt *st;
    int rc = pt_store_prepare(s, "SELECT id FROM rules WHERE " OWNER_WHERE " ORDER BY ord", &st);
    if (rc != PT_STORE_OK)
        return rc;
    bind_owner(st, project_id, alias_id);
    rc = pt_store_ids(s, st, ids, n);
    sqlite3_finalize(st);
    return rc;
}

/* Gives ids[i] the order i among the owner's rules, in two passes (the file comment). Rows
   whose order changes get a later updated_ms, but skip_id (the rule the caller is writing
   anyway; may be NULL). */
static int renumber(struct pt_store *s, const char *project_id, const char *alias_id,
                    char *const *ids, size_t n, const char *skip_id)
{
    sqlite3_stmt *park = NULL, *flip = NULL;
    int rc =
        pt_store_prepare(s, "UPDATE rules SET ord = -1 - ?2 WHERE id = ?1 AND ord <> ?2", &park);
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "UPDATE rules SET ord = -1 - ord, updated_ms = CASE WHEN id IS ?4 "
                              "THEN updated_ms ELSE max(?3, updated_ms + 1) END "
                              "WHERE " OWNER_WHERE " AND ord < 0",
                              &flip);
    for (size_t i = 0; i < n && rc == PT_STORE_OK; i++) {
        sqlite3_reset(park);
        sqlite3_bind_text(park, 1, ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(park, 2, (sqlite3_int64)i);
        if (sqlite3_step(park) != SQLITE_DONE)
            rc = pt_store_dberr(s, "reorder");
    }
    if (rc == PT_STORE_OK) {
        bind_owner(flip, project_id, alias_id);
        sqlite3_bind_int64(flip, 3, pt_store_now_ms());
        if (skip_id)
            sqlite3_bind_text(flip, 4, skip_id, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(flip, 4);
        if (sqlite3_step(flip) != SQLITE_DONE)
            rc = pt_store_dberr(s, "reorder");
    }
    sqlite3_finalize(park);
    sqlite3_finalize(flip);
    return rc;
}

/* Moves id within ids[0..n) (where it is) to position want (clamped; < 0: the end). */
static void move_to(char **ids, size_t n, const char *id, int want)
{
    size_t at = 0;
    while (at < n && strcmp(ids[at], id) != 0)
        at++;
    if (at == n)
        return;
    size_t to = want < 0 || (size_t)want >= n ? n - 1 : (size_t)want;
    char *p = ids[at];
    if (to < at)
        memmove(ids + to + 1, ids + to, (at - to) * sizeof(*ids));
    else
        memmove(ids + at, ids + at + 1, (to - at) * sizeof(*ids));
    ids[to] = p;
}

static bool token_ok(const char *v)
{
    if (!v || !*v || strlen(v) > HEADER_NAME_MAX_BYTES)
        return false;
    for (const char *p = v; *p; p++)
        if (!strchr("!#$%&'*+-.^_`|~", *p) && !(*p >= '0' && *p <= '9') &&
            !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
            return false;
    return true;
}

/* Validates the fields a caller sets; normalises timeout 0 to the default. */
static int rule_validate(struct pt_store *s, struct pt_store_rule *r)
{
    if (!pt_store_text_ok(r->path_pattern, PATTERN_MAX_BYTES, false) ||
        strchr(r->path_pattern, ' ') ||
        (r->path_pattern[0] != '/' && strncmp(r->path_pattern, "*.", 2) != 0))
        return pt_store_fail(s, PT_STORE_INVALID, "pathPattern",
                             "pathPattern must start with / or *. (at most %d bytes, no spaces)",
                             PATTERN_MAX_BYTES);
    if (!pt_store_text_ok(r->target_url, URL_MAX_BYTES, false) || strchr(r->target_url, ' ') ||
        (strncmp(r->target_url, "https://", 8) != 0 && strncmp(r->target_url, "http://", 7) != 0))
        return pt_store_fail(s, PT_STORE_INVALID, "targetUrl",
                             "targetUrl must be an http:// or https:// URL of at most %d bytes",
                             URL_MAX_BYTES);
    if (r->description && !pt_store_text_ok(r->description, DESCRIPTION_MAX_BYTES, true))
        return pt_store_fail(s, PT_STORE_INVALID, "description",
                             "description must be at most %d bytes without control characters",
                             DESCRIPTION_MAX_BYTES);
    if (r->timeout_ms == 0)
        r->timeout_ms = PT_STORE_TIMEOUT_DEFAULT_MS;
    if (r->timeout_ms > PT_STORE_TIMEOUT_MAX_MS)
        return pt_store_fail(s, PT_STORE_INVALID, "timeout", "timeout is at most %u ms",
                             PT_STORE_TIMEOUT_MAX_MS);
    if (r->n_add > MAX_HEADERS || r->n_remove > MAX_HEADERS)
        return pt_store_fail(s, PT_STORE_INVALID, "headerConfig", "at most %d headers each",
                             MAX_HEADERS);
    for (size_t i = 0; i < r->n_add; i++) {
        if (!token_ok(r->add[i].name))
            return pt_store_fail(s, PT_STORE_INVALID, "headerConfig.add",
                                 "header %zu has no valid field name", i);
        if (!r->add[i].value || strlen(r->add[i].value) > HEADER_VALUE_MAX_BYTES ||
            strpbrk(r->add[i].value, "\r\n"))
            return pt_store_fail(s, PT_STORE_INVALID, "headerConfig.add",
                                 "the value of header %s must be at most %d bytes on one line",
                                 r->add[i].name, HEADER_VALUE_MAX_BYTES);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(r->add[i].name, r->add[j].name) == 0)
                return pt_store_fail(s, PT_STORE_INVALID, "headerConfig.add",
                                     "header %s is given twice", r->add[i].name);
    }
    for (size_t i = 0; i < r->n_remove; i++) {
        if (!token_ok(r->remove[i]))
            return pt_store_fail(s, PT_STORE_INVALID, "headerConfig.remove",
                                 "entry %zu is not a header field name", i);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(r->remove[i], r->remove[j]) == 0)
                return pt_store_fail(s, PT_STORE_INVALID, "headerConfig.remove",
                                     "header %s is given twice", r->remove[i]);
    }
    return PT_STORE_OK;
}

/* The sealed value stored for header name of rule id into *out (malloc'ed), or NULL. */
static int sealed_get(struct pt_store *s, const char *id, const char *name, char **out)
{
    *out = NULL;
    sqlite3_stmt *st;
    int rc = pt_store_prepare(
        s, "SELECT value FROM rule_header_add WHERE rule_id = ?1 AND name = ?2", &st);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && !(*out = pt_store_col_dup(st, 0)))
        rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
    sqlite3_finalize(st);
    return rc;
}

/* Replaces the rule's headerConfig rows. A value equal to PT_SECRET_MASK keeps the sealed value
   stored under that name (is_update) or is refused. */
static int headers_write(struct pt_store *s, const struct pt_store_rule *r, bool is_update)
{
    char **sealed = calloc(r->n_add + 1, sizeof(*sealed));
    sqlite3_stmt *del = NULL, *add = NULL, *rem = NULL;
    int rc = sealed ? PT_STORE_OK : pt_store_fail(s, PT_STORE_ERR, NULL, "out of memory");
    for (size_t i = 0; i < r->n_add && rc == PT_STORE_OK; i++) {
        if (strcmp(r->add[i].value, PT_SECRET_MASK) == 0) {
            if (is_update)
                rc = sealed_get(s, r->id, r->add[i].name, &sealed[i]);
            if (rc == PT_STORE_OK && !sealed[i])
                rc = pt_store_fail(s, PT_STORE_INVALID, "headerConfig.add",
                                   "header %s has the masked value but no stored value",
                                   r->add[i].name);
        } else if (!s->has_key)
            rc = pt_store_fail(s, PT_STORE_BAD_KEY, "headerConfig.add",
                               "no key file: header values cannot be stored (rule %s)", r->id);
        else if (pt_secret_seal(&s->key, r->id, r->add[i].name, r->add[i].value,
                                strlen(r->add[i].value), &sealed[i]) != PT_SECRET_OK)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "cannot seal header %s of rule %s",
                               r->add[i].name, r->id);
    }
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s, "DELETE FROM rule_header_add WHERE rule_id = ?1", &del);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(del, 1, r->id, -1, SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE)
            rc = pt_store_dberr(s, "headers");
        sqlite3_finalize(del);
        del = NULL;
    }
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s, "DELETE FROM rule_header_remove WHERE rule_id = ?1", &del);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(del, 1, r->id, -1, SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE)
            rc = pt_store_dberr(s, "headers");
    }
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "INSERT INTO rule_header_add(rule_id, pos, name, value) "
                              "VALUES (?1, ?2, ?3, ?4)",
                              &add);
    for (size_t i = 0; i < r->n_add && rc == PT_STORE_OK; i++) {
        sqlite3_reset(add);
        sqlite3_bind_text(add, 1, r->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(add, 2, (sqlite3_int64)i);
        sqlite3_bind_text(add, 3, r->add[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(add, 4, sealed[i], -1, SQLITE_STATIC);
        if (sqlite3_step(add) != SQLITE_DONE)
            rc = pt_store_dberr(s, "headers");
    }
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "INSERT INTO rule_header_remove(rule_id, pos, name) "
                              "VALUES (?1, ?2, ?3)",
                              &rem);
    for (size_t i = 0; i < r->n_remove && rc == PT_STORE_OK; i++) {
        sqlite3_reset(rem);
        sqlite3_bind_text(rem, 1, r->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(rem, 2, (sqlite3_int64)i);
        sqlite3_bind_text(rem, 3, r->remove[i], -1, SQLITE_STATIC);
        if (sqlite3_step(rem) != SQLITE_DONE)
            rc = pt_store_dberr(s, "headers");
    }
    sqlite3_finalize(del);
    sqlite3_finalize(add);
    sqlite3_finalize(rem);
    if (sealed)
        pt_store_ids_free(sealed, r->n_add);
    return rc;
}

/* Reads the rule's headerConfig into out, opening values (PT_STORE_PLAIN) or masking them. */
static int headers_read(struct pt_store *s, struct pt_store_rule *out, enum pt_store_read how)
{
    sqlite3_stmt *st = NULL;
    int rc = pt_store_prepare(
        s, "SELECT name, value FROM rule_header_add WHERE rule_id = ?1 ORDER BY pos", &st);
    size_t cap = 0;
    if (rc == PT_STORE_OK)
        sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
    while (rc == PT_STORE_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = pt_store_dberr(s, "headers");
            break;
        }
        if (out->n_add == cap) {
            cap = cap ? cap * 2 : 4;
            struct pt_store_header *v = realloc(out->add, cap * sizeof(*v));
            if (!v) {
                rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
                break;
            }
            out->add = v;
        }
        struct pt_store_header *h = &out->add[out->n_add];
        h->value = NULL;
        if (!(h->name = pt_store_col_dup(st, 0))) {
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
            break;
        }
        out->n_add++;
        size_t len;
        const char *sealed = (const char *)sqlite3_column_text(st, 1);
        if (how == PT_STORE_MASKED)
            h->value = strdup(pt_secret_mask(NULL));
        else if (!s->has_key)
            rc = pt_store_fail(s, PT_STORE_BAD_KEY, NULL,
                               "rule %s has header secrets and no key file is configured", out->id);
        else if ((rc = pt_secret_open(&s->key, out->id, h->name, sealed ? sealed : "", &h->value,
                                      &len)) != PT_SECRET_OK)
            rc = pt_store_fail(s, rc == PT_SECRET_ERR ? PT_STORE_ERR : PT_STORE_BAD_KEY, NULL,
                               "the secret of header %s of rule %s does not open with this key "
                               "(wrong key file, or a value copied from elsewhere)",
                               h->name, out->id);
        if (rc == PT_STORE_OK && !h->value)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(
            s, "SELECT name FROM rule_header_remove WHERE rule_id = ?1 ORDER BY pos", &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
        rc = pt_store_ids(s, st, &out->remove, &out->n_remove);
    }
    sqlite3_finalize(st);
    return rc;
}

static int rule_read(struct pt_store *s, const char *id, enum pt_store_read how,
                     struct pt_store_rule *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st;
    int rc = pt_store_prepare(s,
                              "SELECT id, project_id, ifnull(alias_id, ''), path_pattern, "
                              "target_url, strip_prefix, ord, timeout_ms, preserve_host, "
                              "is_enabled, description, created_ms, updated_ms "
                              "FROM rules WHERE id = ?1",
                              &st);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(out->id, sizeof(out->id), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(out->project_id, sizeof(out->project_id), "%s",
                 (const char *)sqlite3_column_text(st, 1));
        snprintf(out->alias_id, sizeof(out->alias_id), "%s",
                 (const char *)sqlite3_column_text(st, 2));
        out->path_pattern = pt_store_col_dup(st, 3);
        out->target_url = pt_store_col_dup(st, 4);
        out->strip_prefix = sqlite3_column_int(st, 5) != 0;
        out->order = sqlite3_column_int(st, 6);
        out->timeout_ms = (uint32_t)sqlite3_column_int64(st, 7);
        out->preserve_host = sqlite3_column_int(st, 8) != 0;
        out->is_enabled = sqlite3_column_int(st, 9) != 0;
        out->description = pt_store_col_dup(st, 10);
        pt_store_format_time(sqlite3_column_int64(st, 11), out->created_at);
        pt_store_format_time(sqlite3_column_int64(st, 12), out->updated_at);
        if (!out->path_pattern || !out->target_url || !out->description)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
    } else if (step == SQLITE_DONE)
        rc = pt_store_fail(s, PT_STORE_NOT_FOUND, NULL, "no rule %s", id);
    else
        rc = pt_store_dberr(s, "rule");
    sqlite3_finalize(st);
    if (rc == PT_STORE_OK)
        rc = headers_read(s, out, how);
    if (rc != PT_STORE_OK)
        pt_store_rule_clear(out);
    return rc;
}

/* Binds the rule's own columns to ?2..?9 (id is ?1). */
static void bind_fields(sqlite3_stmt *st, const struct pt_store_rule *r)
{
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->path_pattern, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->target_url, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, r->strip_prefix);
    sqlite3_bind_int64(st, 5, r->timeout_ms);
    sqlite3_bind_int(st, 6, r->preserve_host);
    sqlite3_bind_int(st, 7, r->is_enabled);
    sqlite3_bind_text(st, 8, r->description ? r->description : "", -1, SQLITE_STATIC);
}

int pt_store_rule_create(struct pt_store *s, struct pt_store_rule *r)
{
    int rc = rule_validate(s, r);
    if (rc != PT_STORE_OK)
        return rc;
    if ((rc = pt_store_tx_begin(s, true)) != PT_STORE_OK)
        return rc;
    char project[PT_STORE_ID_LEN + 1] = "";
    char **ids = NULL;
    size_t n = 0;
    int64_t now = pt_store_now_ms();
    sqlite3_stmt *st = NULL;
    rc = owner_resolve(s, r->project_id, r->alias_id, project);
    if (rc == PT_STORE_OK)
        rc = pt_store_new_id(s, r->id);
    if (rc == PT_STORE_OK)
        rc = owner_ids(s, project, r->alias_id, &ids, &n);
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "INSERT INTO rules(id, path_pattern, target_url, strip_prefix, "
                              "timeout_ms, preserve_host, is_enabled, description, project_id, "
                              "alias_id, ord, created_ms, updated_ms) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                              &st);
    if (rc == PT_STORE_OK) {
        bind_fields(st, r);
        sqlite3_bind_text(st, 9, project, -1, SQLITE_STATIC);
        if (r->alias_id[0])
            sqlite3_bind_text(st, 10, r->alias_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, -1 - (sqlite3_int64)n); /* parked: renumber places it */
        sqlite3_bind_int64(st, 12, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = pt_store_dberr(s, "rule");
    }
    sqlite3_finalize(st);
    if (rc == PT_STORE_OK) {
        char **v = realloc(ids, (n + 1) * sizeof(*v));
        if (!v)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
        else {
            ids = v;
            ids[n++] = r->id; /* borrowed: taken out again before the free below */
            move_to(ids, n, r->id, r->order);
            for (size_t i = 0; i < n; i++)
                if (ids[i] == r->id)
                    r->order = (int)i;
            rc = renumber(s, project, r->alias_id, ids, n, r->id);
            for (size_t i = 0; i < n; i++)
                if (ids[i] == r->id)
                    ids[i] = ids[--n];
        }
    }
    if (rc == PT_STORE_OK)
        rc = headers_write(s, r, false);
    pt_store_ids_free(ids, n);
    rc = pt_store_tx_end(s, rc);
    if (rc == PT_STORE_OK) {
        snprintf(r->project_id, sizeof(r->project_id), "%s", project);
        pt_store_format_time(now, r->created_at);
        pt_store_format_time(now, r->updated_at);
    } else
        r->id[0] = '\0';
    return rc;
}

int pt_store_rule_get(struct pt_store *s, const char *id, enum pt_store_read how,
                      struct pt_store_rule *out)
{
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    return pt_store_tx_end(s, rule_read(s, id, how, out));
}

static int rule_read_item(struct pt_store *s, const char *id, void *item, void *arg)
{
    return rule_read(s, id, *(const enum pt_store_read *)arg, item);
}

static void rule_clear_item(void *item)
{
    pt_store_rule_clear(item);
}

int pt_store_rule_list(struct pt_store *s, const char *project_id, const char *alias_id,
                       enum pt_store_read how, struct pt_store_rule **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    char project[PT_STORE_ID_LEN + 1];
    char **ids = NULL;
    size_t n_ids = 0;
    rc = owner_resolve(s, project_id, alias_id, project);
    if (rc == PT_STORE_OK)
        rc = owner_ids(s, project, alias_id, &ids, &n_ids);
    return pt_store_read_list(s, rc, ids, n_ids, sizeof(**out), rule_read_item, &how,
                              rule_clear_item, (void **)out, n);
}

int pt_store_rule_update(struct pt_store *s, struct pt_store_rule *r,
                         const char *expected_updated_at)
{
    int rc = rule_validate(s, r);
    if (rc != PT_STORE_OK)
        return rc;
    if ((rc = pt_store_tx_begin(s, true)) != PT_STORE_OK)
        return rc;
    int64_t next = 0;
    char **ids = NULL;
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    rc = pt_store_check_version(s, "SELECT updated_ms FROM rules WHERE id = ?1", "rule", r->id,
                                expected_updated_at, &next);
    /* The owner and created_at are the row's, whatever the caller passed. */
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "SELECT project_id, ifnull(alias_id, ''), ord, created_ms "
                              "FROM rules WHERE id = ?1",
                              &st);
    int cur_order = 0;
    int64_t created = 0;
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(r->project_id, sizeof(r->project_id), "%s",
                     (const char *)sqlite3_column_text(st, 0));
            snprintf(r->alias_id, sizeof(r->alias_id), "%s",
                     (const char *)sqlite3_column_text(st, 1));
            cur_order = sqlite3_column_int(st, 2);
            created = sqlite3_column_int64(st, 3);
        } else
            rc = pt_store_dberr(s, "rule");
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "UPDATE rules SET path_pattern = ?2, target_url = ?3, "
                              "strip_prefix = ?4, timeout_ms = ?5, preserve_host = ?6, "
                              "is_enabled = ?7, description = ?8, updated_ms = ?9 WHERE id = ?1",
                              &st);
    if (rc == PT_STORE_OK) {
        bind_fields(st, r);
        sqlite3_bind_int64(st, 9, next);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = pt_store_dberr(s, "rule");
    }
    sqlite3_finalize(st);
    if (rc == PT_STORE_OK && r->order != cur_order) {
        rc = owner_ids(s, r->project_id, r->alias_id, &ids, &n);
        if (rc == PT_STORE_OK) {
            move_to(ids, n, r->id, r->order);
            for (size_t i = 0; i < n; i++)
                if (strcmp(ids[i], r->id) == 0)
                    r->order = (int)i;
            rc = renumber(s, r->project_id, r->alias_id, ids, n, r->id);
        }
    }
    if (rc == PT_STORE_OK)
        rc = headers_write(s, r, true);
    pt_store_ids_free(ids, n);
    rc = pt_store_tx_end(s, rc);
    if (rc == PT_STORE_OK) {
        pt_store_format_time(created, r->created_at);
        pt_store_format_time(next, r->updated_at);
    }
    return rc;
}

int pt_store_rule_delete(struct pt_store *s, const char *id)
{
    int rc = pt_store_tx_begin(s, true);
    if (rc != PT_STORE_OK)
        return rc;
    char project[PT_STORE_ID_LEN + 1] = "", alias[PT_STORE_ID_LEN + 1] = "";
    char **ids = NULL;
    size_t n = 0;
    sqlite3_stmt *st = NULL;
    rc = pt_store_prepare(s, "SELECT project_id, ifnull(alias_id, '') FROM rules WHERE id = ?1",
                          &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            snprintf(project, sizeof(project), "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(alias, sizeof(alias), "%s", (const char *)sqlite3_column_text(st, 1));
        } else if (step == SQLITE_DONE)
            rc = pt_store_fail(s, PT_STORE_NOT_FOUND, NULL, "no rule %s", id);
        else
            rc = pt_store_dberr(s, "rule");
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s, "DELETE FROM rules WHERE id = ?1", &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = pt_store_dberr(s, "rule");
    }
    sqlite3_finalize(st);
    if (rc == PT_STORE_OK)
        rc = owner_ids(s, project, alias, &ids, &n);
    if (rc == PT_STORE_OK)
        rc = renumber(s, project, alias, ids, n, NULL);
    pt_store_ids_free(ids, n);
    return pt_store_tx_end(s, rc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pt_store_rule_reorder(struct pt_store *s, const char *project_id, const char *alias_id,
                          const char *const *ids, size_t n_ids)
{
    int rc = pt_store_tx_begin(s, true);
    if (rc != PT_STORE_OK)
        return rc;
    char project[PT_STORE_ID_LEN + 1];
    char **cur = NULL;
    size_t n = 0;
    const char **want = NULL;
    rc = owner_resolve(s, project_id, alias_id, project);
    if (rc == PT_STORE_OK)
        rc = owner_ids(s, project, alias_id, &cur, &n);
    if (rc == PT_STORE_OK && n_ids != n)
        rc = pt_store_fail(s, PT_STORE_INVALID, "ids",
                           "a reorder lists every rule of its owner once: %zu given, %zu rules",
                           n_ids, n);
    if (rc == PT_STORE_OK && n > 0) {
        /* Same set: sort both and compare. */
        want = malloc(n * sizeof(*want));
        if (!want)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
        else {
            for (size_t i = 0; i < n; i++) {
                if (!ids[i]) {
                    rc = pt_store_fail(s, PT_STORE_INVALID, "ids", "ids[%zu] is missing", i);
                    break;
                }
                want[i] = ids[i];
            }
        }
        if (rc == PT_STORE_OK) {
            qsort(want, n, sizeof(*want), cmp_str);
            qsort(cur, n, sizeof(*cur), cmp_str);
            for (size_t i = 0; i < n && rc == PT_STORE_OK; i++)
                if (strcmp(want[i], cur[i]) != 0)
                    rc = pt_store_fail(s, PT_STORE_INVALID, "ids",
                                       "the ids are not exactly the owner's rules (%s)",
                                       i > 0 && strcmp(want[i], want[i - 1]) == 0
                                           ? "an id is repeated"
                                           : "an id is missing or belongs elsewhere");
        }
    }
    if (rc == PT_STORE_OK)
        rc = renumber(s, project, alias_id, (char *const *)ids, n, NULL);
    free(want);
    pt_store_ids_free(cur, n);
    return pt_store_tx_end(s, rc);
}

void pt_store_rule_clear(struct pt_store_rule *r)
{
    free(r->path_pattern);
    free(r->target_url);
    free(r->description);
    for (size_t i = 0; i < r->n_add; i++) {
        free(r->add[i].name);
        pt_secret_free(r->add[i].value);
    }
    free(r->add);
    pt_store_ids_free(r->remove, r->n_remove);
    memset(r, 0, sizeof(*r));
}

void pt_store_rules_free(struct pt_store_rule *v, size_t n)
{
    pt_store_free_items(v, n, sizeof(*v), rule_clear_item);
}

/* ---- the key: check, verify, rotate ---- */

struct sealed_row {
    char *rule; /* "" for the key check */
    char *name;
    char *value;
};

static void rows_free(struct sealed_row *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].rule);
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

/* Reads every sealed value (the key check in meta, then each header secret) into memory first:
   updating rows under a running SELECT of the same table is undefined in SQLite. */
static int rows_read(struct pt_store *s, struct sealed_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc = pt_store_prepare(s,
                              "SELECT '', 'key-check', value FROM meta WHERE key = 'key_check' "
                              "UNION ALL SELECT rule_id, name, value FROM rule_header_add",
                              &st);
    while (rc == PT_STORE_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = pt_store_dberr(s, "secrets");
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct sealed_row *v = realloc(*out, cap * sizeof(*v));
            if (!v) {
                rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
                break;
            }
            *out = v;
        }
        struct sealed_row *r = &(*out)[(*n)++];
        r->rule = pt_store_col_dup(st, 0);
        r->name = pt_store_col_dup(st, 1);
        r->value = pt_store_col_dup(st, 2);
        if (!r->rule || !r->name || !r->value)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Opens every sealed value with key and, with `to`, re-seals it under `to` and writes it back.
   Stops at the first value that does not open. */
static int reseal_all(struct pt_store *s, const struct pt_secret_key *key,
                      const struct pt_secret_key *to)
{
    struct sealed_row *rows = NULL;
    size_t n = 0;
    sqlite3_stmt *put = NULL, *put_check = NULL;
    int rc = rows_read(s, &rows, &n);
    if (rc == PT_STORE_OK && to)
        rc = pt_store_prepare(
            s, "UPDATE rule_header_add SET value = ?3 WHERE rule_id = ?1 AND name = ?2", &put);
    if (rc == PT_STORE_OK && to)
        rc = pt_store_prepare(s, "UPDATE meta SET value = ?3 WHERE key = 'key_check' AND ?1 = ''",
                              &put_check);
    for (size_t i = 0; i < n && rc == PT_STORE_OK; i++) {
        const char *rule = rows[i].rule, *name = rows[i].name;
        char *plain = NULL, *again = NULL;
        size_t len = 0;
        int orc = pt_secret_open(key, rule, name, rows[i].value, &plain, &len);
        if (orc == PT_SECRET_ERR)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
        else if (orc != PT_SECRET_OK && rule[0])
            rc = pt_store_fail(s, PT_STORE_BAD_KEY, NULL,
                               "the secret of header %s of rule %s does not open with this key "
                               "(wrong key file?)",
                               name, rule);
        else if (orc != PT_SECRET_OK)
            rc = pt_store_fail(s, PT_STORE_BAD_KEY, NULL,
                               "the store's key check does not open with this key: wrong key "
                               "file");
        if (rc == PT_STORE_OK && to) {
            sqlite3_stmt *w = rule[0] ? put : put_check;
            if (pt_secret_seal(to, rule, name, plain, len, &again) != PT_SECRET_OK)
                rc = pt_store_fail(s, PT_STORE_ERR, NULL, "cannot seal header %s of rule %s", name,
                                   rule);
            else {
                sqlite3_reset(w);
                sqlite3_bind_text(w, 1, rule, -1, SQLITE_STATIC);
                sqlite3_bind_text(w, 2, name, -1, SQLITE_STATIC);
                sqlite3_bind_text(w, 3, again, -1, SQLITE_STATIC);
                if (sqlite3_step(w) != SQLITE_DONE)
                    rc = pt_store_dberr(s, "rotate");
            }
        }
        pt_secret_free(plain);
        free(again);
    }
    sqlite3_finalize(put);
    sqlite3_finalize(put_check);
    rows_free(rows, n);
    return rc;
}

int pt_store_verify_key(struct pt_store *s)
{
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    if (!s->has_key) {
        sqlite3_stmt *st = NULL;
        rc = pt_store_prepare(s, "SELECT rule_id FROM rule_header_add LIMIT 1", &st);
        if (rc == PT_STORE_OK && sqlite3_step(st) == SQLITE_ROW)
            rc = pt_store_fail(s, PT_STORE_BAD_KEY, NULL,
                               "rule %s has header secrets and no key file is configured",
                               (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return pt_store_tx_end(s, rc);
    }
    return pt_store_tx_end(s, reseal_all(s, &s->key, NULL));
}

int pt_store_rotate_key(struct pt_store *s, const struct pt_secret_key *old_key,
                        const struct pt_secret_key *new_key)
{
    int rc = pt_store_tx_begin(s, true);
    if (rc != PT_STORE_OK)
        return rc;
    rc = pt_store_tx_end(s, reseal_all(s, old_key, new_key));
    if (rc == PT_STORE_OK) {
        s->key = *new_key;
        s->has_key = true;
    }
    return rc;
}

/* Runs sql, which returns one integer; *out gets it. */
static int one_int(struct pt_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = pt_store_prepare(s, sql, &st);
    if (rc != PT_STORE_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = pt_store_dberr(s, "check");
    sqlite3_finalize(st);
    return rc;
}

int pt_store_check(struct pt_store *s)
{
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = pt_store_prepare(s, "PRAGMA integrity_check", &st);
    if (rc == PT_STORE_OK) {
        const unsigned char *t = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (!t || strcmp((const char *)t, "ok") != 0)
            rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: integrity_check: %s",
                               t ? (const char *)t : sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s, "PRAGMA foreign_key_check", &st);
    if (rc == PT_STORE_OK && sqlite3_step(st) == SQLITE_ROW)
        rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: a row of %s has no parent",
                           (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    int64_t bad = 0;
    if (rc == PT_STORE_OK)
        rc = one_int(s,
                     "SELECT count(*) FROM (SELECT count(*) AS n, count(DISTINCT ord) AS d, "
                     "min(ord) AS lo, max(ord) AS hi FROM rules GROUP BY project_id, alias_id) "
                     "WHERE d <> n OR lo <> 0 OR hi <> n - 1",
                     &bad);
    if (rc == PT_STORE_OK && bad)
        rc = pt_store_fail(s, PT_STORE_ERR, NULL,
                           "store: the rule orders of %lld owners are not 0..n-1", (long long)bad);
    if (rc == PT_STORE_OK)
        rc = one_int(s,
                     "SELECT count(*) FROM rules r LEFT JOIN projects p ON p.id = r.project_id "
                     "LEFT JOIN aliases a ON a.id = r.alias_id WHERE p.id IS NULL OR "
                     "(r.alias_id IS NOT NULL AND (a.id IS NULL OR a.project_id <> r.project_id))",
                     &bad);
    if (rc == PT_STORE_OK && bad)
        rc =
            pt_store_fail(s, PT_STORE_ERR, NULL, "store: %lld rules have no owner", (long long)bad);
    return pt_store_tx_end(s, rc);
}
