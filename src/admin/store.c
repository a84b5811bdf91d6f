/*
 * store.c - the rules store on SQLite: opening, the schema and its migrations, projects and
 * aliases. Rules, their secrets and the consistency check are in store_rules.c.
 *
 * The connection runs in WAL mode with synchronous=FULL: a commit returns only once the WAL is
 * on disk, so an API change that answered 2xx survives a power cut, and a kill -9 at any moment
 * leaves the last committed state (WAL alone already guarantees that; FULL adds durability, and
 * admin writes are few enough that one fsync each costs nothing). Foreign keys are on (cascading
 * deletes of a project's aliases, hostnames and rules), and a busy timeout lets a second
 * connection (a CLI rotate-key beside a running Portico) wait instead of failing.
 *
 * Schema versions live in PRAGMA user_version. migrations[i] takes version i to i + 1 inside
 * one BEGIN IMMEDIATE transaction that also sets user_version, so a crash mid-migration leaves
 * the old version whole. A database whose version is newer than this binary knows is refused:
 * an older binary must not write into a schema it does not understand.
 *
 * Hostnames of projects and aliases share one table whose primary key is the hostname: the
 * uniqueness across projects and aliases is the database's, not a check that could race.
 * Times are stored as integer milliseconds and formatted on read.
 *
 * Threads: one struct pt_store per thread; SQLite serialises connections sharing a file.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/store_internal.h"
#include "core/common.h"

#define NAME_MAX_BYTES 256
#define HOSTNAME_MAX_BYTES 253
#define MAX_HOSTNAMES 256

/* Schema steps, in order: migrations[i] brings version i to i + 1. Never edit a released step;
   add one. */
static const char *const migrations[] = {
    /* 0 -> 1: the model of issue #11 §2. */
    "CREATE TABLE projects ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE aliases ("
    "  id TEXT PRIMARY KEY,"
    "  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  UNIQUE (project_id, name),"
    "  UNIQUE (id, project_id));"
    "CREATE TABLE hostnames ("
    "  hostname TEXT PRIMARY KEY,"
    "  project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,"
    "  alias_id TEXT REFERENCES aliases(id) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  CHECK ((project_id IS NULL) <> (alias_id IS NULL)));"
    "CREATE INDEX hostnames_project ON hostnames(project_id);"
    "CREATE INDEX hostnames_alias ON hostnames(alias_id);"
    "CREATE TABLE rules ("
    "  id TEXT PRIMARY KEY,"
    "  project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  alias_id TEXT,"
    "  path_pattern TEXT NOT NULL,"
    "  target_url TEXT NOT NULL,"
    "  strip_prefix INTEGER NOT NULL,"
    "  ord INTEGER NOT NULL,"
    "  timeout_ms INTEGER NOT NULL CHECK (timeout_ms BETWEEN 1 AND 60000),"
    "  preserve_host INTEGER NOT NULL,"
    "  is_enabled INTEGER NOT NULL,"
    "  description TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  FOREIGN KEY (alias_id, project_id) REFERENCES aliases(id, project_id)"
    "    ON DELETE CASCADE);"
    "CREATE UNIQUE INDEX rules_owner_order ON rules(project_id, ifnull(alias_id, ''), ord);"
    "CREATE INDEX rules_alias ON rules(alias_id);"
    "CREATE TABLE rule_header_add ("
    "  rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  value TEXT NOT NULL," /* sealed: "v1:" + base64, never the plain value */
    "  PRIMARY KEY (rule_id, name));"
    "CREATE TABLE rule_header_remove ("
    "  rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  PRIMARY KEY (rule_id, name));"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
};

_Static_assert(PT_ARRAY_LEN(migrations) == PT_STORE_SCHEMA_VERSION,
               "one migration per schema version");

int pt_store_fail(struct pt_store *s, int rc, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    snprintf(s->field, sizeof(s->field), "%s", field ? field : "");
    return rc;
}

int pt_store_dberr(struct pt_store *s, const char *what)
{
    return pt_store_fail(s, PT_STORE_ERR, NULL, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

int pt_store_prepare(struct pt_store *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return pt_store_dberr(s, "prepare");
    }
    return PT_STORE_OK;
}

int pt_store_exec(struct pt_store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? PT_STORE_OK
                                                                   : pt_store_dberr(s, "exec");
}

int pt_store_tx_begin(struct pt_store *s, bool write)
{
    s->err[0] = '\0';
    s->field[0] = '\0';
    return pt_store_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

int pt_store_tx_end(struct pt_store *s, int rc)
{
    if (rc == PT_STORE_OK) {
        if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
            return PT_STORE_OK;
        rc = pt_store_dberr(s, "commit");
    }
    /* After some errors SQLite has already rolled back; ROLLBACK then fails harmlessly. */
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int64_t pt_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pt_store_next_ms(int64_t old_ms)
{
    int64_t now = pt_store_now_ms();
    return now > old_ms ? now : old_ms + 1;
}

void pt_store_format_time(int64_t ms, char *out)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    char buf[64];
    gmtime_r(&sec, &tm);
    int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    size_t len = n > 0 && (size_t)n <= PT_STORE_TIME_LEN ? (size_t)n : PT_STORE_TIME_LEN;
    memcpy(out, buf, len);
    out[len] = '\0';
}

int pt_store_new_id(struct pt_store *s, char *out)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return pt_store_fail(s, PT_STORE_ERR, NULL, "store: no random bytes for an id");
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 (RFC 9562 §5.4) */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return PT_STORE_OK;
}

bool pt_store_text_ok(const char *v, size_t max, bool may_be_empty)
{
    if (!v)
        return false;
    size_t n = strlen(v);
    if (n > max || (n == 0 && !may_be_empty))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    return true;
}

char *pt_store_col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return strdup(t ? (const char *)t : "");
}

/* Creates path with mode 0600 when it does not exist, so SQLite never makes it world-readable
   under a loose umask (SQLite creates its -wal and -shm with the database's mode). */
static int precreate(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "store %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int pragma_int(struct pt_store *s, const char *sql, int *out)
{
    sqlite3_stmt *st;
    if (pt_store_prepare(s, sql, &st) != PT_STORE_OK)
        return PT_STORE_ERR;
    int rc = sqlite3_step(st) == SQLITE_ROW ? PT_STORE_OK : pt_store_dberr(s, sql);
    if (rc == PT_STORE_OK)
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int pt_store_schema_version(struct pt_store *s)
{
    int v = -1;
    pragma_int(s, "PRAGMA user_version", &v);
    return v;
}

static int migrate(struct pt_store *s, const char *path)
{
    int v = 0;
    if (pt_store_tx_begin(s, true) != PT_STORE_OK)
        return PT_STORE_ERR;
    int rc = pragma_int(s, "PRAGMA user_version", &v);
    if (rc == PT_STORE_OK && v > PT_STORE_SCHEMA_VERSION)
        rc = pt_store_fail(s, PT_STORE_ERR, NULL,
                           "store %s has schema version %d, newer than this portico knows (%d): "
                           "run the portico that wrote it, or restore a backup",
                           path, v, PT_STORE_SCHEMA_VERSION);
    rc = pt_store_tx_end(s, rc);
    /* One transaction per step: each re-reads the version, so two processes opening a new file
       at once do not both run a step. */
    while (rc == PT_STORE_OK && v < PT_STORE_SCHEMA_VERSION) {
        if (pt_store_tx_begin(s, true) != PT_STORE_OK)
            return PT_STORE_ERR;
        rc = pragma_int(s, "PRAGMA user_version", &v);
        if (rc == PT_STORE_OK && v < PT_STORE_SCHEMA_VERSION) {
            char set[48];
            snprintf(set, sizeof(set), "PRAGMA user_version = %d", v + 1);
            rc = pt_store_exec(s, migrations[v]);
            if (rc == PT_STORE_OK)
                rc = pt_store_exec(s, set);
            if (rc != PT_STORE_OK)
                pt_store_fail(s, rc, NULL, "store %s: migration to schema version %d failed: %s",
                              path, v + 1, sqlite3_errmsg(s->db));
        }
        rc = pt_store_tx_end(s, rc);
    }
    return rc;
}

/* Seals a known value under the store's key into meta.key_check when none is there yet, so a
   wrong key is found at start even before the first secret is stored. */
static int ensure_key_check(struct pt_store *s)
{
    char *sealed = NULL;
    sqlite3_stmt *st = NULL;
    int rc = pt_store_tx_begin(s, true);
    if (rc != PT_STORE_OK)
        return rc;
    if (pt_secret_seal(&s->key, "", "key-check", "portico", 7, &sealed) != PT_SECRET_OK) {
        rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: cannot seal the key check value");
        goto out;
    }
    rc =
        pt_store_prepare(s, "INSERT OR IGNORE INTO meta(key, value) VALUES ('key_check', ?1)", &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, sealed, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = pt_store_dberr(s, "key check");
    }
out:
    sqlite3_finalize(st);
    free(sealed);
    return pt_store_tx_end(s, rc);
}

int pt_store_open(const char *path, const struct pt_secret_key *key, struct pt_store **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (precreate(path, err, errlen) != 0)
        return PT_STORE_ERR;
    struct pt_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "store %s: out of memory", path);
        return PT_STORE_ERR;
    }
    if (key) {
        s->key = *key;
        s->has_key = true;
    }
    int rc = PT_STORE_ERR;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        pt_store_fail(s, rc, NULL, "store %s: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_stmt *st = NULL;
    if (pt_store_prepare(s, "PRAGMA journal_mode = WAL", &st) != PT_STORE_OK)
        goto fail;
    const unsigned char *mode = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    bool is_wal = mode && strcmp((const char *)mode, "wal") == 0;
    sqlite3_finalize(st);
    if (!is_wal) {
        pt_store_fail(s, rc, NULL, "store %s: cannot switch to WAL mode: %s", path,
                      sqlite3_errmsg(s->db));
        goto fail;
    }
    if (pt_store_exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                         "PRAGMA trusted_schema = OFF") != PT_STORE_OK)
        goto fail;
    int fk = 0;
    if (pragma_int(s, "PRAGMA foreign_keys", &fk) != PT_STORE_OK || fk != 1) {
        pt_store_fail(s, rc, NULL, "store %s: this SQLite cannot enforce foreign keys", path);
        goto fail;
    }
    if (migrate(s, path) != PT_STORE_OK)
        goto fail;
    if (s->has_key && ensure_key_check(s) != PT_STORE_OK)
        goto fail;
    *out = s;
    return PT_STORE_OK;
fail:
    snprintf(err, errlen, "%s", s->err);
    pt_store_close(s);
    return PT_STORE_ERR;
}

void pt_store_close(struct pt_store *s)
{
    if (!s)
        return;
    sqlite3_close_v2(s->db);
    pt_secret_key_wipe(&s->key);
    free(s);
}

const char *pt_store_error(const struct pt_store *s)
{
    return s->err;
}

const char *pt_store_error_field(const struct pt_store *s)
{
    return s->field;
}

/* ---- hostnames (shared by projects and aliases) ---- */

/* Checks one hostname: lowercase letters, digits, '-' and '.', labels 1..63, at most 253 bytes;
   a leading "*." is allowed (a wildcard site). */
static bool hostname_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > HOSTNAME_MAX_BYTES)
        return false;
    if (n > 2 && h[0] == '*' && h[1] == '.')
        h += 2;
    size_t label = 0;
    for (const char *p = h; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') {
            if (++label > 63)
                return false;
        } else
            return false;
    }
    return label > 0;
}

/* Replaces the hostnames of a project (alias NULL) or an alias with hosts[0..n). */
static int hosts_write(struct pt_store *s, const char *project_id, const char *alias_id,
                       char *const *hosts, size_t n)
{
    if (n > MAX_HOSTNAMES)
        return pt_store_fail(s, PT_STORE_INVALID, "hostnames", "at most %d hostnames",
                             MAX_HOSTNAMES);
    for (size_t i = 0; i < n; i++)
        if (!hosts[i] || !hostname_ok(hosts[i]))
            return pt_store_fail(s, PT_STORE_INVALID, "hostnames",
                                 "hostnames[%zu] is not a lowercase host name", i);
    sqlite3_stmt *del = NULL, *who = NULL, *ins = NULL;
    int rc = pt_store_prepare(s,
                              alias_id ? "DELETE FROM hostnames WHERE alias_id = ?1"
                                       : "DELETE FROM hostnames WHERE project_id = ?1",
                              &del);
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "SELECT coalesce(project_id, alias_id), alias_id IS NOT NULL "
                              "FROM hostnames WHERE hostname = ?1",
                              &who);
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              "INSERT INTO hostnames(hostname, project_id, alias_id, pos) "
                              "VALUES (?1, ?2, ?3, ?4)",
                              &ins);
    if (rc != PT_STORE_OK)
        goto out;
    sqlite3_bind_text(del, 1, alias_id ? alias_id : project_id, -1, SQLITE_STATIC);
    if (sqlite3_step(del) != SQLITE_DONE) {
        rc = pt_store_dberr(s, "hostnames");
        goto out;
    }
    for (size_t i = 0; i < n && rc == PT_STORE_OK; i++) {
        sqlite3_reset(who);
        sqlite3_bind_text(who, 1, hosts[i], -1, SQLITE_STATIC);
        if (sqlite3_step(who) == SQLITE_ROW) {
            rc = pt_store_fail(s, PT_STORE_DUPLICATE, "hostnames",
                               "hostname %s is already used by %s %s", hosts[i],
                               sqlite3_column_int(who, 1) ? "alias" : "project",
                               (const char *)sqlite3_column_text(who, 0));
            break;
        }
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, hosts[i], -1, SQLITE_STATIC);
        if (alias_id) {
            sqlite3_bind_null(ins, 2);
            sqlite3_bind_text(ins, 3, alias_id, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(ins, 2, project_id, -1, SQLITE_STATIC);
            sqlite3_bind_null(ins, 3);
        }
        sqlite3_bind_int64(ins, 4, (sqlite3_int64)i);
        if (sqlite3_step(ins) != SQLITE_DONE)
            rc = pt_store_dberr(s, "hostnames");
    }
out:
    sqlite3_finalize(del);
    sqlite3_finalize(who);
    sqlite3_finalize(ins);
    return rc;
}

/* Reads the hostnames of a project or an alias into *out (malloc'ed array of strings). */
static int hosts_read(struct pt_store *s, const char *project_id, const char *alias_id, char ***out,
                      size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int rc = pt_store_prepare(
        s,
        alias_id ? "SELECT hostname FROM hostnames WHERE alias_id = ?1 ORDER BY pos"
                 : "SELECT hostname FROM hostnames WHERE project_id = ?1 ORDER BY pos",
        &st);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_bind_text(st, 1, alias_id ? alias_id : project_id, -1, SQLITE_STATIC);
    rc = pt_store_ids(s, st, out, n);
    sqlite3_finalize(st);
    return rc;
}

static void hosts_free(char **v, size_t n)
{
    pt_store_ids_free(v, n);
}

/* Checks expected against the row's updated_ms (read by sql with ?1 = id) and returns the
   next updated_ms in *next. */
int pt_store_check_version(struct pt_store *s, const char *sql, const char *what, const char *id,
                           const char *expected, int64_t *next)
{
    sqlite3_stmt *st;
    int rc = pt_store_prepare(s, sql, &st);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        int64_t cur = sqlite3_column_int64(st, 0);
        char at[PT_STORE_TIME_LEN + 1];
        pt_store_format_time(cur, at);
        if (expected && strcmp(expected, at) != 0)
            rc = pt_store_fail(s, PT_STORE_CONFLICT, "updatedAt",
                               "%s %s was changed at %s, after %s", what, id, at, expected);
        *next = pt_store_next_ms(cur);
    } else if (step == SQLITE_DONE)
        rc = pt_store_fail(s, PT_STORE_NOT_FOUND, NULL, "no %s %s", what, id);
    else
        rc = pt_store_dberr(s, what);
    sqlite3_finalize(st);
    return rc;
}

/* Deletes the row id with sql (?1 = id); NOT_FOUND when there was none. */
int pt_store_delete_one(struct pt_store *s, const char *sql, const char *what, const char *id)
{
    int rc = pt_store_tx_begin(s, true);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = pt_store_prepare(s, sql, &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = pt_store_dberr(s, what);
        else if (sqlite3_changes(s->db) == 0)
            rc = pt_store_fail(s, PT_STORE_NOT_FOUND, NULL, "no %s %s", what, id);
    }
    sqlite3_finalize(st);
    return pt_store_tx_end(s, rc);
}

int pt_store_ids(struct pt_store *s, sqlite3_stmt *st, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **v = realloc(*ids, cap * sizeof(*v));
            if (!v)
                goto oom;
            *ids = v;
        }
        if (!((*ids)[*n] = pt_store_col_dup(st, 0)))
            goto oom;
        ++*n;
    }
    if (step == SQLITE_DONE)
        return PT_STORE_OK;
    pt_store_ids_free(*ids, *n);
    *ids = NULL;
    *n = 0;
    return pt_store_dberr(s, "list");
oom:
    pt_store_ids_free(*ids, *n);
    *ids = NULL;
    *n = 0;
    return pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
}

void pt_store_ids_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int pt_store_read_list(struct pt_store *s, int rc, char **ids, size_t n_ids, size_t size,
                       pt_store_read_cb read, void *arg, pt_store_clear_cb clear, void **out,
                       size_t *n)
{
    *out = NULL;
    *n = 0;
    char *v = NULL;
    if (rc == PT_STORE_OK && n_ids > 0 && !(v = calloc(n_ids, size)))
        rc = pt_store_fail(s, PT_STORE_ERR, NULL, "store: out of memory");
    for (size_t i = 0; i < n_ids && rc == PT_STORE_OK; i++)
        if ((rc = read(s, ids[i], v + i * size, arg)) == PT_STORE_OK)
            *n = i + 1;
    pt_store_ids_free(ids, n_ids);
    rc = pt_store_tx_end(s, rc);
    if (rc != PT_STORE_OK) {
        pt_store_free_items(v, *n, size, clear);
        v = NULL;
        *n = 0;
    }
    *out = v;
    return rc;
}

void pt_store_free_items(void *v, size_t n, size_t size, pt_store_clear_cb clear)
{
    for (size_t i = 0; i < n; i++)
        clear((char *)v + i * size);
    free(v);
}

/* ---- groups: what projects and aliases have in common ---- */

/* A project or an alias as the shared code sees it: an alias has a project_id, a project
   none. The strings are the caller's. */
struct group {
    char *id;          /* [PT_STORE_ID_LEN + 1] */
    char *project_id;  /* [PT_STORE_ID_LEN + 1] for an alias; NULL for a project */
    char **name;       /* the struct's name field (read fills it) */
    char ***hostnames; /* and its hostnames */
    size_t *n_hostnames;
    char *created_at, *updated_at; /* [PT_STORE_TIME_LEN + 1] */
};

static struct group project_group(struct pt_store_project *p)
{
    return (struct group){p->id,           NULL,          &p->name,     &p->hostnames,
                          &p->n_hostnames, p->created_at, p->updated_at};
}

static struct group alias_group(struct pt_store_alias *a)
{
    return (struct group){a->id,           a->project_id, &a->name,     &a->hostnames,
                          &a->n_hostnames, a->created_at, a->updated_at};
}

static const char *kind(const struct group *g)
{
    return g->project_id ? "alias" : "project";
}

/* The failure for a taken alias name, or a database error. */
static int write_failed(struct pt_store *s, const struct group *g)
{
    if (g->project_id && sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE)
        return pt_store_fail(s, PT_STORE_DUPLICATE, "name",
                             "project %s already has an alias named %s", g->project_id, *g->name);
    return pt_store_dberr(s, kind(g));
}

static int name_check(struct pt_store *s, const char *name)
{
    if (pt_store_text_ok(name, NAME_MAX_BYTES, false))
        return PT_STORE_OK;
    return pt_store_fail(s, PT_STORE_INVALID, "name",
                         "name must be 1 to %d bytes without control characters", NAME_MAX_BYTES);
}

/* Frees the name and hostnames of g. */
static void group_clear(struct group *g)
{
    free(*g->name);
    hosts_free(*g->hostnames, *g->n_hostnames);
}

/* Reads group id into g (its id, project_id, times; name and hostnames malloc'ed). */
static int group_read(struct pt_store *s, const char *id, struct group *g)
{
    sqlite3_stmt *st;
    int rc = pt_store_prepare(
        s,
        g->project_id ? "SELECT id, name, created_ms, updated_ms, project_id FROM aliases "
                        "WHERE id = ?1"
                      : "SELECT id, name, created_ms, updated_ms FROM projects WHERE id = ?1",
        &st);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(g->id, PT_STORE_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
        *g->name = pt_store_col_dup(st, 1);
        pt_store_format_time(sqlite3_column_int64(st, 2), g->created_at);
        pt_store_format_time(sqlite3_column_int64(st, 3), g->updated_at);
        if (g->project_id)
            snprintf(g->project_id, PT_STORE_ID_LEN + 1, "%s",
                     (const char *)sqlite3_column_text(st, 4));
        rc = *g->name ? PT_STORE_OK : pt_store_fail(s, PT_STORE_ERR, NULL, "out of memory");
    } else if (step == SQLITE_DONE)
        rc = pt_store_fail(s, PT_STORE_NOT_FOUND, NULL, "no %s %s", kind(g), id);
    else
        rc = pt_store_dberr(s, kind(g));
    sqlite3_finalize(st);
    if (rc == PT_STORE_OK)
        rc = hosts_read(s, g->id, g->project_id ? g->id : NULL, g->hostnames, g->n_hostnames);
    return rc;
}

static int group_create(struct pt_store *s, struct group *g)
{
    int rc = name_check(s, *g->name);
    if (rc != PT_STORE_OK || (rc = pt_store_tx_begin(s, true)) != PT_STORE_OK)
        return rc;
    int64_t now = pt_store_now_ms(), ignored;
    sqlite3_stmt *st = NULL;
    if (g->project_id)
        rc = pt_store_check_version(s, "SELECT updated_ms FROM projects WHERE id = ?1", "project",
                                    g->project_id, NULL, &ignored);
    if (rc == PT_STORE_OK)
        rc = pt_store_new_id(s, g->id);
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              g->project_id
                                  ? "INSERT INTO aliases(id, name, created_ms, updated_ms, "
                                    "project_id) VALUES (?1, ?2, ?3, ?3, ?4)"
                                  : "INSERT INTO projects(id, name, created_ms, updated_ms) "
                                    "VALUES (?1, ?2, ?3, ?3)",
                              &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, *g->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        if (g->project_id)
            sqlite3_bind_text(st, 4, g->project_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = write_failed(s, g);
    }
    sqlite3_finalize(st);
    if (rc == PT_STORE_OK)
        rc = hosts_write(s, g->project_id ? g->project_id : g->id, g->project_id ? g->id : NULL,
                         *g->hostnames, *g->n_hostnames);
    rc = pt_store_tx_end(s, rc);
    if (rc == PT_STORE_OK) {
        pt_store_format_time(now, g->created_at);
        pt_store_format_time(now, g->updated_at);
    } else
        g->id[0] = '\0';
    return rc;
}

static int group_update(struct pt_store *s, struct group *g, const char *expected)
{
    int rc = name_check(s, *g->name);
    if (rc != PT_STORE_OK || (rc = pt_store_tx_begin(s, true)) != PT_STORE_OK)
        return rc;
    int64_t next = 0;
    sqlite3_stmt *st = NULL;
    rc = pt_store_check_version(s,
                                g->project_id ? "SELECT updated_ms FROM aliases WHERE id = ?1"
                                              : "SELECT updated_ms FROM projects WHERE id = ?1",
                                kind(g), g->id, expected, &next);
    /* An alias's project cannot change: take it from the row, whatever the caller passed. */
    if (rc == PT_STORE_OK && g->project_id)
        rc = pt_store_prepare(s, "SELECT project_id FROM aliases WHERE id = ?1", &st);
    if (rc == PT_STORE_OK && st) {
        sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(g->project_id, PT_STORE_ID_LEN + 1, "%s",
                     (const char *)sqlite3_column_text(st, 0));
        else
            rc = pt_store_dberr(s, "alias");
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(s,
                              g->project_id
                                  ? "UPDATE aliases SET name = ?2, updated_ms = ?3 WHERE id = ?1"
                                  : "UPDATE projects SET name = ?2, updated_ms = ?3 WHERE id = ?1",
                              &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, *g->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, next);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = write_failed(s, g);
    }
    sqlite3_finalize(st);
    if (rc == PT_STORE_OK)
        rc = hosts_write(s, g->project_id ? g->project_id : g->id, g->project_id ? g->id : NULL,
                         *g->hostnames, *g->n_hostnames);
    rc = pt_store_tx_end(s, rc);
    if (rc == PT_STORE_OK)
        pt_store_format_time(next, g->updated_at);
    return rc;
}

/* ---- projects ---- */

static int project_read(struct pt_store *s, const char *id, void *item, void *arg)
{
    (void)arg;
    struct pt_store_project *p = item;
    memset(p, 0, sizeof(*p));
    struct group g = project_group(p);
    int rc = group_read(s, id, &g);
    if (rc != PT_STORE_OK)
        pt_store_project_clear(p);
    return rc;
}

static void project_clear(void *item)
{
    pt_store_project_clear(item);
}

int pt_store_project_create(struct pt_store *s, struct pt_store_project *p)
{
    struct group g = project_group(p);
    return group_create(s, &g);
}

int pt_store_project_get(struct pt_store *s, const char *id, struct pt_store_project *out)
{
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    return pt_store_tx_end(s, project_read(s, id, out, NULL));
}

int pt_store_project_list(struct pt_store *s, struct pt_store_project **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    char **ids = NULL;
    size_t n_ids = 0;
    rc = pt_store_prepare(s, "SELECT id FROM projects ORDER BY created_ms, rowid", &st);
    if (rc == PT_STORE_OK)
        rc = pt_store_ids(s, st, &ids, &n_ids);
    sqlite3_finalize(st);
    return pt_store_read_list(s, rc, ids, n_ids, sizeof(**out), project_read, NULL, project_clear,
                              (void **)out, n);
}

int pt_store_project_update(struct pt_store *s, struct pt_store_project *p,
                            const char *expected_updated_at)
{
    struct group g = project_group(p);
    return group_update(s, &g, expected_updated_at);
}

int pt_store_project_delete(struct pt_store *s, const char *id)
{
    return pt_store_delete_one(s, "DELETE FROM projects WHERE id = ?1", "project", id);
}

void pt_store_project_clear(struct pt_store_project *p)
{
    struct group g = project_group(p);
    group_clear(&g);
    memset(p, 0, sizeof(*p));
}

void pt_store_projects_free(struct pt_store_project *v, size_t n)
{
    pt_store_free_items(v, n, sizeof(*v), project_clear);
}

/* ---- aliases ---- */

static int alias_read(struct pt_store *s, const char *id, void *item, void *arg)
{
    (void)arg;
    struct pt_store_alias *a = item;
    memset(a, 0, sizeof(*a));
    struct group g = alias_group(a);
    int rc = group_read(s, id, &g);
    if (rc != PT_STORE_OK)
        pt_store_alias_clear(a);
    return rc;
}

static void alias_clear(void *item)
{
    pt_store_alias_clear(item);
}

int pt_store_alias_create(struct pt_store *s, struct pt_store_alias *a)
{
    struct group g = alias_group(a);
    return group_create(s, &g);
}

int pt_store_alias_get(struct pt_store *s, const char *id, struct pt_store_alias *out)
{
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    return pt_store_tx_end(s, alias_read(s, id, out, NULL));
}

int pt_store_alias_list(struct pt_store *s, const char *project_id, struct pt_store_alias **out,
                        size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = pt_store_tx_begin(s, false);
    if (rc != PT_STORE_OK)
        return rc;
    sqlite3_stmt *st = NULL;
    char **ids = NULL;
    size_t n_ids = 0;
    int64_t ignored;
    rc = pt_store_check_version(s, "SELECT updated_ms FROM projects WHERE id = ?1", "project",
                                project_id, NULL, &ignored);
    if (rc == PT_STORE_OK)
        rc = pt_store_prepare(
            s, "SELECT id FROM aliases WHERE project_id = ?1 ORDER BY created_ms, rowid", &st);
    if (rc == PT_STORE_OK) {
        sqlite3_bind_text(st, 1, project_id, -1, SQLITE_STATIC);
        rc = pt_store_ids(s, st, &ids, &n_ids);
    }
    sqlite3_finalize(st);
    return pt_store_read_list(s, rc, ids, n_ids, sizeof(**out), alias_read, NULL, alias_clear,
                              (void **)out, n);
}

int pt_store_alias_update(struct pt_store *s, struct pt_store_alias *a,
                          const char *expected_updated_at)
{
    struct group g = alias_group(a);
    return group_update(s, &g, expected_updated_at);
}

int pt_store_alias_delete(struct pt_store *s, const char *id)
{
    return pt_store_delete_one(s, "DELETE FROM aliases WHERE id = ?1", "alias", id);
}

void pt_store_alias_clear(struct pt_store_alias *a)
{
    struct group g = alias_group(a);
    group_clear(&g);
    memset(a, 0, sizeof(*a));
}

void pt_store_aliases_free(struct pt_store_alias *v, size_t n)
{
    pt_store_free_items(v, n, sizeof(*v), alias_clear);
}
