/* test_admin_store.c - the rules store (admin/store.c, admin/store_rules.c): schema and
   migrations, projects, aliases and rules, ordering and reorder atomicity, lost updates, and a
   writer killed with SIGKILL at random moments. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "admin/store.h"

static char dir[64];
static int n_db;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pt_store_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh database path; opens it into *s unless s is NULL. */
static void fresh(char *path, size_t len, struct pt_store **s)
{
    snprintf(path, len, "%s/db%d.sqlite", dir, n_db++);
    if (s) {
        char err[256];
        int rc = pt_store_open(path, NULL, s, err, sizeof(err));
        if (rc != 0)
            fail_msg("open: %s", err);
    }
}

static void make_project(struct pt_store *s, const char *name, const char *host,
                         struct pt_store_project *p)
{
    memset(p, 0, sizeof(*p));
    p->name = (char *)name;
    char *hosts[1] = {(char *)host};
    p->hostnames = host ? hosts : NULL;
    p->n_hostnames = host ? 1 : 0;
    assert_int_equal(pt_store_project_create(s, p), 0);
    p->hostnames = NULL;
    p->n_hostnames = 0;
}

static void make_rule(struct pt_store *s, const char *project, const char *alias,
                      const char *pattern, int order, struct pt_store_rule *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->project_id, sizeof(r->project_id), "%s", project ? project : "");
    snprintf(r->alias_id, sizeof(r->alias_id), "%s", alias ? alias : "");
    r->path_pattern = (char *)pattern;
    r->target_url = (char *)"https://backend.example.com";
    r->order = order;
    r->is_enabled = true;
    int rc = pt_store_rule_create(s, r);
    if (rc != 0)
        fail_msg("rule create: %s", pt_store_error(s));
}

/* Asserts that the owner's rules read back in order have these patterns. */
static void expect_patterns(struct pt_store *s, const char *project, const char *alias,
                            const char *const *want, size_t n)
{
    struct pt_store_rule *v;
    size_t got;
    assert_int_equal(pt_store_rule_list(s, project, alias, PT_STORE_MASKED, &v, &got), 0);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].path_pattern, want[i]);
        assert_int_equal(v[i].order, (int)i);
    }
    pt_store_rules_free(v, got);
}

static void test_migrates_an_empty_file_and_refuses_a_newer_schema(void **state)
{
    (void)state;
    char path[128], err[256];
    fresh(path, sizeof(path), NULL);
    FILE *f = fopen(path, "w"); /* an empty file, as a packager might leave */
    assert_non_null(f);
    fclose(f);
    struct pt_store *s;
    assert_int_equal(pt_store_open(path, NULL, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_schema_version(s), PT_STORE_SCHEMA_VERSION);
    assert_int_equal(pt_store_check(s), 0);
    pt_store_close(s);
    /* Reopening migrates nothing and loses nothing. */
    assert_int_equal(pt_store_open(path, NULL, &s, err, sizeof(err)), 0);
    assert_int_equal(pt_store_schema_version(s), PT_STORE_SCHEMA_VERSION);
    pt_store_close(s);

    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_not_equal(pt_store_open(path, NULL, &s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, "99"));

    struct stat sb;
    fresh(path, sizeof(path), &s);
    pt_store_close(s);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0); /* created 0600 */
}

static void test_project_crud(void **state)
{
    (void)state;
    char path[128];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    char *hosts[2] = {(char *)"www.example.com", (char *)"example.com"};
    struct pt_store_project p = {.name = (char *)"site", .hostnames = hosts, .n_hostnames = 2};
    assert_int_equal(pt_store_project_create(s, &p), 0);
    assert_int_equal(strlen(p.id), PT_STORE_ID_LEN);
    assert_int_equal(p.id[14], '4'); /* UUID version 4 */
    assert_true(strchr("89ab", p.id[19]) != NULL);
    assert_int_equal(strlen(p.created_at), PT_STORE_TIME_LEN);
    assert_int_equal(p.created_at[PT_STORE_TIME_LEN - 1], 'Z');
    assert_int_equal(p.created_at[19], '.');

    struct pt_store_project g;
    assert_int_equal(pt_store_project_get(s, p.id, &g), 0);
    assert_string_equal(g.name, "site");
    assert_int_equal(g.n_hostnames, 2);
    assert_string_equal(g.hostnames[0], "www.example.com");
    assert_string_equal(g.hostnames[1], "example.com");
    assert_string_equal(g.updated_at, p.updated_at);

    /* Update: new name, one hostname. */
    char *one[1] = {(char *)"new.example.com"};
    free(g.name);
    g.name = strdup("renamed");
    char **old_hosts = g.hostnames;
    size_t old_n = g.n_hostnames;
    g.hostnames = one;
    g.n_hostnames = 1;
    char before[PT_STORE_TIME_LEN + 1];
    snprintf(before, sizeof(before), "%s", g.updated_at);
    assert_int_equal(pt_store_project_update(s, &g, before), 0);
    assert_string_not_equal(g.updated_at, before);
    /* The same stale updatedAt again: a lost update. */
    assert_int_equal(pt_store_project_update(s, &g, before), PT_STORE_CONFLICT);
    assert_string_equal(pt_store_error_field(s), "updatedAt");
    g.hostnames = old_hosts;
    g.n_hostnames = old_n;
    pt_store_project_clear(&g);

    struct pt_store_project *all;
    size_t n;
    make_project(s, "second", NULL, &g);
    assert_int_equal(pt_store_project_list(s, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].name, "renamed");
    assert_int_equal(all[0].n_hostnames, 1);
    assert_string_equal(all[0].hostnames[0], "new.example.com");
    assert_string_equal(all[1].name, "second");
    pt_store_projects_free(all, n);

    assert_int_equal(pt_store_project_delete(s, p.id), 0);
    assert_int_equal(pt_store_project_get(s, p.id, &g), PT_STORE_NOT_FOUND);
    assert_int_equal(pt_store_project_delete(s, p.id), PT_STORE_NOT_FOUND);
    /* Its hostname is free again. */
    make_project(s, "third", "new.example.com", &g);

    /* Validation. */
    struct pt_store_project bad = {.name = (char *)""};
    assert_int_equal(pt_store_project_create(s, &bad), PT_STORE_INVALID);
    assert_string_equal(pt_store_error_field(s), "name");
    char *upper[1] = {(char *)"Upper.Example.com"};
    bad.name = (char *)"x";
    bad.hostnames = upper;
    bad.n_hostnames = 1;
    assert_int_equal(pt_store_project_create(s, &bad), PT_STORE_INVALID);
    assert_string_equal(pt_store_error_field(s), "hostnames");
    assert_int_equal(pt_store_project_list(s, &all, &n), 0);
    assert_int_equal(n, 2); /* the failed creates left nothing */
    pt_store_projects_free(all, n);
    assert_int_equal(pt_store_check(s), 0);
    pt_store_close(s);
}

static void test_hostnames_are_unique_across_projects_and_aliases(void **state)
{
    (void)state;
    char path[128];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    struct pt_store_project a, b;
    make_project(s, "a", "a.example.com", &a);
    char *dup[1] = {(char *)"a.example.com"};
    b = (struct pt_store_project){.name = (char *)"b", .hostnames = dup, .n_hostnames = 1};
    assert_int_equal(pt_store_project_create(s, &b), PT_STORE_DUPLICATE);
    assert_non_null(strstr(pt_store_error(s), a.id));
    make_project(s, "b", "b.example.com", &b);
    struct pt_store_alias al = {.name = (char *)"staging", .hostnames = dup, .n_hostnames = 1};
    snprintf(al.project_id, sizeof(al.project_id), "%s", b.id);
    assert_int_equal(pt_store_alias_create(s, &al), PT_STORE_DUPLICATE);
    char *st_host[1] = {(char *)"staging.b.example.com"};
    al.hostnames = st_host;
    assert_int_equal(pt_store_alias_create(s, &al), 0);
    /* Now a project cannot take the alias's hostname. */
    char *both[2] = {(char *)"a.example.com", (char *)"staging.b.example.com"};
    a.name = (char *)"a";
    a.hostnames = both;
    a.n_hostnames = 2;
    assert_int_equal(pt_store_project_update(s, &a, NULL), PT_STORE_DUPLICATE);
    assert_non_null(strstr(pt_store_error(s), "alias"));
    /* The same name twice in one list. */
    char *twice[2] = {(char *)"c.example.com", (char *)"c.example.com"};
    a.hostnames = twice;
    assert_int_equal(pt_store_project_update(s, &a, NULL), PT_STORE_DUPLICATE);
    struct pt_store_project g;
    assert_int_equal(pt_store_project_get(s, a.id, &g), 0);
    assert_int_equal(g.n_hostnames, 1); /* unchanged */
    assert_string_equal(g.hostnames[0], "a.example.com");
    pt_store_project_clear(&g);
    pt_store_close(s);
}

static void test_alias_crud_and_cascade(void **state)
{
    (void)state;
    char path[128];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    struct pt_store_project p;
    make_project(s, "p", "p.example.com", &p);
    struct pt_store_alias a = {.name = (char *)"production"};
    snprintf(a.project_id, sizeof(a.project_id), "%s", "00000000-0000-4000-8000-000000000000");
    assert_int_equal(pt_store_alias_create(s, &a), PT_STORE_NOT_FOUND);
    snprintf(a.project_id, sizeof(a.project_id), "%s", p.id);
    assert_int_equal(pt_store_alias_create(s, &a), 0);
    struct pt_store_alias a2 = {.name = (char *)"production"};
    snprintf(a2.project_id, sizeof(a2.project_id), "%s", p.id);
    assert_int_equal(pt_store_alias_create(s, &a2), PT_STORE_DUPLICATE);
    assert_string_equal(pt_store_error_field(s), "name");
    a2.name = (char *)"pr-42";
    assert_int_equal(pt_store_alias_create(s, &a2), 0);

    struct pt_store_alias *v;
    size_t n;
    assert_int_equal(pt_store_alias_list(s, p.id, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "production");
    assert_string_equal(v[1].name, "pr-42");
    pt_store_aliases_free(v, n);

    struct pt_store_alias g;
    assert_int_equal(pt_store_alias_get(s, a2.id, &g), 0);
    char at[PT_STORE_TIME_LEN + 1];
    snprintf(at, sizeof(at), "%s", g.updated_at);
    free(g.name);
    g.name = strdup("pr-43");
    assert_int_equal(pt_store_alias_update(s, &g, at), 0);
    assert_int_equal(pt_store_alias_update(s, &g, at), PT_STORE_CONFLICT);
    pt_store_alias_clear(&g);

    /* Rules of an alias go with it; the project's stay. */
    struct pt_store_rule r;
    make_rule(s, p.id, NULL, "/p/*", -1, &r);
    make_rule(s, NULL, a2.id, "/a/*", -1, &r);
    assert_string_equal(r.project_id, p.id); /* found from the alias */
    assert_int_equal(pt_store_alias_delete(s, a2.id), 0);
    struct pt_store_rule gr;
    assert_int_equal(pt_store_rule_get(s, r.id, PT_STORE_MASKED, &gr), PT_STORE_NOT_FOUND);
    const char *want[] = {"/p/*"};
    expect_patterns(s, p.id, NULL, want, 1);
    /* A project takes everything with it. */
    make_rule(s, NULL, a.id, "/a/*", -1, &r);
    assert_int_equal(pt_store_project_delete(s, p.id), 0);
    assert_int_equal(pt_store_alias_get(s, a.id, &g), PT_STORE_NOT_FOUND);
    assert_int_equal(pt_store_rule_get(s, r.id, PT_STORE_MASKED, &gr), PT_STORE_NOT_FOUND);
    assert_int_equal(pt_store_check(s), 0);
    pt_store_close(s);
}

static void test_rule_fields_round_trip_and_validation(void **state)
{
    (void)state;
    char path[128];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    struct pt_store_project p;
    make_project(s, "p", NULL, &p);
    char *rm[2] = {(char *)"Cookie", (char *)"X-Debug"};
    struct pt_store_rule r = {.path_pattern = (char *)"/api/*",
                              .target_url = (char *)"https://api.example.com/v1",
                              .description = (char *)"the API",
                              .strip_prefix = true,
                              .preserve_host = true,
                              .is_enabled = true,
                              .remove = rm,
                              .n_remove = 2,
                              .order = 7};
    snprintf(r.project_id, sizeof(r.project_id), "%s", p.id);
    assert_int_equal(pt_store_rule_create(s, &r), 0);
    assert_int_equal(r.order, 0);           /* past the end: appended */
    assert_int_equal(r.timeout_ms, 30000u); /* the default */
    struct pt_store_rule g;
    assert_int_equal(pt_store_rule_get(s, r.id, PT_STORE_PLAIN, &g), 0);
    assert_string_equal(g.path_pattern, "/api/*");
    assert_string_equal(g.target_url, "https://api.example.com/v1");
    assert_string_equal(g.description, "the API");
    assert_string_equal(g.alias_id, "");
    assert_true(g.strip_prefix && g.preserve_host && g.is_enabled);
    assert_int_equal(g.timeout_ms, 30000u);
    assert_int_equal(g.n_add, 0);
    assert_int_equal(g.n_remove, 2);
    assert_string_equal(g.remove[1], "X-Debug");
    assert_string_equal(g.created_at, r.created_at);
    pt_store_rule_clear(&g);

    struct {
        const char *pattern, *url;
        uint32_t timeout;
        const char *field;
    } bad[] = {
        {"", "https://a", 0, "pathPattern"},
        {"api", "https://a", 0, "pathPattern"},
        {"/a b", "https://a", 0, "pathPattern"},
        {"/a", "ftp://a", 0, "targetUrl"},
        {"/a", "", 0, "targetUrl"},
        {"/a", "https://a", 60001, "timeout"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pt_store_rule b = {.path_pattern = (char *)bad[i].pattern,
                                  .target_url = (char *)bad[i].url,
                                  .timeout_ms = bad[i].timeout};
        snprintf(b.project_id, sizeof(b.project_id), "%s", p.id);
        assert_int_equal(pt_store_rule_create(s, &b), PT_STORE_INVALID);
        assert_string_equal(pt_store_error_field(s), bad[i].field);
    }
    struct pt_store_header h[2] = {{(char *)"X-A", (char *)"1"}, {(char *)"x-a", (char *)"2"}};
    struct pt_store_rule b = {
        .path_pattern = (char *)"/h", .target_url = (char *)"https://a", .add = h, .n_add = 2};
    snprintf(b.project_id, sizeof(b.project_id), "%s", p.id);
    assert_int_equal(pt_store_rule_create(s, &b), PT_STORE_INVALID);
    assert_string_equal(pt_store_error_field(s), "headerConfig.add");
    /* A header secret without a key file: refused, not stored in the clear. */
    b.n_add = 1;
    assert_int_equal(pt_store_rule_create(s, &b), PT_STORE_BAD_KEY);
    b.n_add = 0;
    b.timeout_ms = 60000;
    assert_int_equal(pt_store_rule_create(s, &b), 0);
    /* An unknown owner. */
    snprintf(b.project_id, sizeof(b.project_id), "%s", "00000000-0000-4000-8000-000000000000");
    assert_int_equal(pt_store_rule_create(s, &b), PT_STORE_NOT_FOUND);
    assert_int_equal(pt_store_rule_get(s, "nope", PT_STORE_MASKED, &g), PT_STORE_NOT_FOUND);
    assert_int_equal(pt_store_rule_delete(s, "nope"), PT_STORE_NOT_FOUND);
    pt_store_close(s);
}

static void test_rule_order_create_move_delete(void **state)
{
    (void)state;
    char path[128];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    struct pt_store_project p;
    make_project(s, "p", NULL, &p);
    struct pt_store_alias a = {.name = (char *)"staging"};
    snprintf(a.project_id, sizeof(a.project_id), "%s", p.id);
    assert_int_equal(pt_store_alias_create(s, &a), 0);
    struct pt_store_rule r[4], ar;
    make_rule(s, p.id, NULL, "/a", -1, &r[0]);
    make_rule(s, p.id, NULL, "/b", -1, &r[1]);
    make_rule(s, p.id, NULL, "/c", -1, &r[2]);
    make_rule(s, NULL, a.id, "/alias", -1, &ar);
    assert_int_equal(ar.order, 0); /* the alias's rules are ordered on their own */
    make_rule(s, p.id, NULL, "/first", 0, &r[3]);
    assert_int_equal(r[3].order, 0);
    const char *w1[] = {"/first", "/a", "/b", "/c"};
    expect_patterns(s, p.id, NULL, w1, 4);
    const char *wa[] = {"/alias"};
    expect_patterns(s, NULL, a.id, wa, 1);
    expect_patterns(s, p.id, a.id, wa, 1);

    /* Move /c to position 1 through an update. */
    struct pt_store_rule g;
    assert_int_equal(pt_store_rule_get(s, r[2].id, PT_STORE_MASKED, &g), 0);
    g.order = 1;
    assert_int_equal(pt_store_rule_update(s, &g, g.updated_at), 0);
    pt_store_rule_clear(&g);
    const char *w2[] = {"/first", "/c", "/a", "/b"};
    expect_patterns(s, p.id, NULL, w2, 4);
    /* The moved neighbours got a new updatedAt: a client holding /a's old one conflicts. */
    assert_int_equal(pt_store_rule_get(s, r[0].id, PT_STORE_MASKED, &g), 0);
    assert_string_not_equal(g.updated_at, r[0].updated_at);
    g.order = 3;
    assert_int_equal(pt_store_rule_update(s, &g, r[0].updated_at), PT_STORE_CONFLICT);
    pt_store_rule_clear(&g);

    assert_int_equal(pt_store_rule_delete(s, r[3].id), 0);
    const char *w3[] = {"/c", "/a", "/b"};
    expect_patterns(s, p.id, NULL, w3, 3);
    assert_int_equal(pt_store_check(s), 0);
    /* An alias of another project is not an owner of this project's rules. */
    struct pt_store_project q;
    make_project(s, "q", NULL, &q);
    struct pt_store_rule *v;
    size_t n;
    assert_int_equal(pt_store_rule_list(s, q.id, a.id, PT_STORE_MASKED, &v, &n), PT_STORE_INVALID);
    pt_store_close(s);
}

static void test_reorder_is_atomic(void **state)
{
    (void)state;
    char path[128];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    struct pt_store_project p, q;
    make_project(s, "p", NULL, &p);
    make_project(s, "q", NULL, &q);
    struct pt_store_rule r[3], other;
    make_rule(s, p.id, NULL, "/a", -1, &r[0]);
    make_rule(s, p.id, NULL, "/b", -1, &r[1]);
    make_rule(s, p.id, NULL, "/c", -1, &r[2]);
    make_rule(s, q.id, NULL, "/q", -1, &other);
    const char *ok[] = {r[2].id, r[0].id, r[1].id};
    assert_int_equal(pt_store_rule_reorder(s, p.id, NULL, ok, 3), 0);
    const char *w[] = {"/c", "/a", "/b"};
    expect_patterns(s, p.id, NULL, w, 3);

    const char *foreign[] = {r[0].id, other.id, r[1].id};
    const char *unknown[] = {r[0].id, "00000000-0000-4000-8000-000000000000", r[1].id};
    const char *repeated[] = {r[0].id, r[0].id, r[1].id};
    const char *missing[] = {r[0].id, r[1].id};
    const char *extra[] = {r[0].id, r[1].id, r[2].id, other.id};
    const char *const *bad[] = {foreign, unknown, repeated, missing, extra};
    size_t bad_n[] = {3, 3, 3, 2, 4};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(pt_store_rule_reorder(s, p.id, NULL, bad[i], bad_n[i]), PT_STORE_INVALID);
        assert_string_equal(pt_store_error_field(s), "ids");
        expect_patterns(s, p.id, NULL, w, 3); /* nothing moved */
    }
    const char *wq[] = {"/q"};
    expect_patterns(s, q.id, NULL, wq, 1);
    assert_int_equal(pt_store_rule_reorder(s, "00000000-0000-4000-8000-000000000000", NULL, ok, 3),
                     PT_STORE_NOT_FOUND);
    /* The identity reorder keeps every updatedAt. */
    struct pt_store_rule g;
    assert_int_equal(pt_store_rule_get(s, r[1].id, PT_STORE_MASKED, &g), 0);
    assert_int_equal(pt_store_rule_reorder(s, p.id, NULL, ok, 3), 0);
    struct pt_store_rule g2;
    assert_int_equal(pt_store_rule_get(s, r[1].id, PT_STORE_MASKED, &g2), 0);
    assert_string_equal(g.updated_at, g2.updated_at);
    pt_store_rule_clear(&g);
    pt_store_rule_clear(&g2);
    assert_int_equal(pt_store_check(s), 0);
    pt_store_close(s);
}

static void test_updates_in_one_millisecond_still_conflict(void **state)
{
    (void)state;
    char path[128];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    struct pt_store_project p;
    make_project(s, "p", NULL, &p);
    struct pt_store_rule r;
    make_rule(s, p.id, NULL, "/a", -1, &r);
    char seen[PT_STORE_TIME_LEN + 1];
    snprintf(seen, sizeof(seen), "%s", r.updated_at);
    /* Two clients read the same updatedAt; the first writes, the second must get a conflict
       however fast it follows. */
    for (int i = 0; i < 20; i++) {
        r.is_enabled = !r.is_enabled;
        assert_int_equal(pt_store_rule_update(s, &r, seen), 0);
        assert_int_equal(pt_store_rule_update(s, &r, seen), PT_STORE_CONFLICT);
        snprintf(seen, sizeof(seen), "%s", r.updated_at);
    }
    struct pt_store_rule g;
    assert_int_equal(pt_store_rule_get(s, r.id, PT_STORE_MASKED, &g), 0);
    assert_string_equal(g.updated_at, seen);
    assert_string_equal(g.created_at, r.created_at);
    pt_store_rule_clear(&g);
    assert_int_equal(pt_store_rule_update(s, &r, NULL), 0); /* no check asked */
    pt_store_close(s);
}

/* The writer of the kill test: creates, moves, reorders and deletes rules forever. */
static void writer(const char *path, const char *project, const char *alias, unsigned seed)
{
    char err[256];
    struct pt_store *s;
    if (pt_store_open(path, NULL, &s, err, sizeof(err)) != 0)
        _exit(3);
    srand(seed);
    for (unsigned i = 0;; i++) {
        const char *al = rand() % 3 == 0 ? alias : NULL;
        struct pt_store_rule *v = NULL;
        size_t n = 0;
        if (pt_store_rule_list(s, project, al, PT_STORE_MASKED, &v, &n) != 0)
            _exit(4);
        int op = rand() % 4;
        if (op == 0 || n < 3) {
            struct pt_store_rule r = {.path_pattern = (char *)"/k/*",
                                      .target_url = (char *)"https://k.example.com",
                                      .order = rand() % (int)(n + 2) - 1};
            snprintf(r.project_id, sizeof(r.project_id), "%s", project);
            snprintf(r.alias_id, sizeof(r.alias_id), "%s", al ? al : "");
            if (pt_store_rule_create(s, &r) != 0)
                _exit(5);
        } else if (op == 1) {
            const char **ids = malloc(n * sizeof(*ids));
            for (size_t j = 0; j < n; j++)
                ids[j] = v[j].id;
            for (size_t j = n - 1; j > 0; j--) {
                size_t k = (size_t)rand() % (j + 1);
                const char *t = ids[j];
                ids[j] = ids[k];
                ids[k] = t;
            }
            if (pt_store_rule_reorder(s, project, al, ids, n) != 0)
                _exit(6);
            free(ids);
        } else if (op == 2 && n > 8) {
            if (pt_store_rule_delete(s, v[(size_t)rand() % n].id) != 0)
                _exit(7);
        } else {
            struct pt_store_rule *r = &v[(size_t)rand() % n];
            r->order = rand() % (int)n;
            if (pt_store_rule_update(s, r, r->updated_at) != 0)
                _exit(8);
        }
        pt_store_rules_free(v, n);
    }
}

static void test_kill_9_leaves_a_consistent_database(void **state)
{
    (void)state;
    char path[128], err[256];
    struct pt_store *s;
    fresh(path, sizeof(path), &s);
    struct pt_store_project p;
    make_project(s, "p", "kill.example.com", &p);
    struct pt_store_alias a = {.name = (char *)"staging"};
    snprintf(a.project_id, sizeof(a.project_id), "%s", p.id);
    assert_int_equal(pt_store_alias_create(s, &a), 0);
    pt_store_close(s);
    srand((unsigned)time(NULL));
    size_t last_total = 0, changes = 0;
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            writer(path, p.id, a.id, (unsigned)rand());
        struct timespec t = {0, (long)(5 + rand() % 60) * 1000000L};
        nanosleep(&t, NULL);
        int status = 0;
        /* A writer that exited by itself failed a call: report how. */
        assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));

        assert_int_equal(pt_store_open(path, NULL, &s, err, sizeof(err)), 0);
        if (pt_store_check(s) != 0)
            fail_msg("round %d: %s", round, pt_store_error(s));
        size_t total = 0;
        for (int owner = 0; owner < 2; owner++) {
            struct pt_store_rule *v;
            size_t n;
            assert_int_equal(
                pt_store_rule_list(s, p.id, owner ? a.id : NULL, PT_STORE_MASKED, &v, &n), 0);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(v[i].order, (int)i);
                assert_string_equal(v[i].project_id, p.id);
                assert_string_equal(v[i].alias_id, owner ? a.id : "");
            }
            total += n;
            pt_store_rules_free(v, n);
        }
        changes += total != last_total;
        last_total = total;
        pt_store_close(s);
    }
    assert_true(last_total > 0); /* the writer did commit */
    assert_true(changes > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrates_an_empty_file_and_refuses_a_newer_schema),
        cmocka_unit_test(test_project_crud),
        cmocka_unit_test(test_hostnames_are_unique_across_projects_and_aliases),
        cmocka_unit_test(test_alias_crud_and_cascade),
        cmocka_unit_test(test_rule_fields_round_trip_and_validation),
        cmocka_unit_test(test_rule_order_create_move_delete),
        cmocka_unit_test(test_reorder_is_atomic),
        cmocka_unit_test(test_updates_in_one_millisecond_still_conflict),
        cmocka_unit_test(test_kill_9_leaves_a_consistent_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
