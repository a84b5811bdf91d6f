/* test_admin_audit.c - the audit log's lines, path changes and reopening (admin/audit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "admin/audit.h"

/* The lines of path, parsed; asserts each is one JSON object. Returns the count. */
static size_t read_lines(const char *path, json_t **out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof(line), f) && n < cap) {
        size_t l = strlen(line);
        assert_true(l > 0 && line[l - 1] == '\n');
        json_error_t je;
        out[n] = json_loads(line, 0, &je);
        assert_non_null(out[n]);
        assert_true(json_is_object(out[n]));
        n++;
    }
    fclose(f);
    return n;
}

static void test_line_has_time_token_method_path_change(void **state)
{
    (void)state;
    char dir[] = "/tmp/pt-audit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], moved[256];
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(moved, sizeof(moved), "%s/audit.log.1", dir);
    char err[256] = "";
    struct pt_audit *a = pt_audit_open(path, err, sizeof(err));
    assert_non_null(a);
    json_t *change = json_pack("{s:s, s:{s:s}}", "id", "r1", "headerConfig", "X-Key", "****");
    assert_int_equal(pt_audit_write(a, "deploy-bot", "POST", "/api/x", change), 0);
    assert_int_equal(pt_audit_write(a, "ci", "DELETE", "/api/y", NULL), 0);
    json_t *lines[4];
    assert_int_equal(read_lines(path, lines, 4), 2);
    const char *t = json_string_value(json_object_get(lines[0], "time"));
    assert_non_null(t);
    assert_int_equal(strlen(t), 24); /* 2026-12-05T19:20:00.123Z */
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[23], 'Z');
    assert_string_equal(json_string_value(json_object_get(lines[0], "token")), "deploy-bot");
    assert_string_equal(json_string_value(json_object_get(lines[0], "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(lines[0], "path")), "/api/x");
    assert_true(json_equal(json_object_get(lines[0], "change"), change));
    assert_true(json_is_null(json_object_get(lines[1], "change")));
    for (int i = 0; i < 2; i++)
        json_decref(lines[i]);
    /* Rotation: renamed away, reopened at the path; the next line goes to the new file. */
    assert_int_equal(rename(path, moved), 0);
    pt_audit_reopen(a);
    assert_int_equal(pt_audit_write(a, "ci", "PUT", "/api/z", change), 0);
    assert_int_equal(read_lines(path, lines, 4), 1);
    json_decref(lines[0]);
    assert_int_equal(read_lines(moved, lines, 4), 2);
    json_decref(lines[0]);
    json_decref(lines[1]);
    /* A new path after a reload; NULL turns it off. */
    assert_int_equal(pt_audit_set_path(a, moved, err, sizeof(err)), 0);
    assert_int_equal(pt_audit_write(a, "ci", "PUT", "/api/w", NULL), 0);
    assert_int_equal(read_lines(moved, lines, 4), 3);
    for (int i = 0; i < 3; i++)
        json_decref(lines[i]);
    assert_int_equal(pt_audit_set_path(a, NULL, err, sizeof(err)), 0);
    assert_int_equal(pt_audit_write(a, "ci", "PUT", "/api/v", NULL), 0);
    /* A path that cannot be opened keeps the old one. */
    assert_int_equal(pt_audit_set_path(a, "/nonexistent-dir/x.log", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open audit log"));
    json_decref(change);
    pt_audit_close(a);
    unlink(path);
    unlink(moved);
    rmdir(dir);
}

static void test_no_path_drops_lines(void **state)
{
    (void)state;
    char err[64];
    struct pt_audit *a = pt_audit_open(NULL, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(pt_audit_write(a, "x", "POST", "/", NULL), 0);
    pt_audit_reopen(a);
    pt_audit_close(a);
    assert_int_equal(pt_audit_write(NULL, "x", "POST", "/", NULL), 0);
    assert_null(pt_audit_open("/nonexistent-dir/a.log", err, sizeof(err)));
}

/* The in-memory ring of recent lines: newest first, bounded by PT_AUDIT_RECENT, kept without
   a file, and holding what the file got. */
static void test_recent_lines_newest_first(void **state)
{
    (void)state;
    char err[64];
    struct pt_audit *a = pt_audit_open(NULL, err, sizeof(err));
    assert_non_null(a);
    json_t *none = pt_audit_recent(a, 10);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    for (int i = 0; i < PT_AUDIT_RECENT + 5; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/api/%d", i);
        json_t *change = json_pack("{s:i}", "n", i);
        assert_int_equal(pt_audit_write(a, "ci", "PATCH", path, change), 0);
        json_decref(change);
    }
    json_t *r = pt_audit_recent(a, 3);
    assert_int_equal(json_array_size(r), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "path")),
                        "/api/204");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 2), "path")),
                        "/api/202");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json_array_get(r, 1), "change"), "n")),
        203);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "token")), "ci");
    json_decref(r);
    r = pt_audit_recent(a, 100000);
    assert_int_equal(json_array_size(r), PT_AUDIT_RECENT);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(r, PT_AUDIT_RECENT - 1), "path")),
        "/api/5");
    json_decref(r);
    pt_audit_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_has_time_token_method_path_change),
        cmocka_unit_test(test_no_path_drops_lines),
        cmocka_unit_test(test_recent_lines_newest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
