/*
 * test_mime.c - Content-Type by extension (src/handler/mime.c).
 *
 * Three tables: the built-in defaults alone (no file), a small mime.types written to a
 * temporary file (overrides, comments, odd spacing, multi-dot extensions), and the process-wide
 * table from /etc/mime.types when the system has one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "handler/mime.h"

static const char *look(const struct pt_mime_table *t, const char *name)
{
    return pt_mime_table_lookup(t, name, strlen(name));
}

static void test_builtin_defaults(void **state)
{
    (void)state;
    struct pt_mime_table *t = pt_mime_table_load(NULL);
    assert_non_null(t);
    static const char *const cases[][2] = {
        {"a.html", "text/html; charset=utf-8"},
        {"a.css", "text/css; charset=utf-8"},
        {"a.js", "text/javascript; charset=utf-8"},
        {"a.mjs", "text/javascript; charset=utf-8"},
        {"a.json", "application/json; charset=utf-8"},
        {"a.svg", "image/svg+xml"},
        {"a.png", "image/png"},
        {"a.jpg", "image/jpeg"},
        {"a.gif", "image/gif"},
        {"a.webp", "image/webp"},
        {"a.avif", "image/avif"},
        {"a.ico", "image/vnd.microsoft.icon"},
        {"a.txt", "text/plain; charset=utf-8"},
        {"a.xml", "application/xml"},
        {"a.wasm", "application/wasm"},
        {"a.woff", "font/woff"},
        {"a.woff2", "font/woff2"},
        {"a.pdf", "application/pdf"},
        {"a.mp4", "video/mp4"},
        {"a.webm", "video/webm"},
        {"a.js.map", "application/json; charset=utf-8"},
        {"A.HTML", "text/html; charset=utf-8"},
        {"/dir.d/page.Html", "text/html; charset=utf-8"},
        {"noext", PT_MIME_DEFAULT},
        {"a.unknown", PT_MIME_DEFAULT},
        {".htaccess", PT_MIME_DEFAULT},
        {"dir.html/file", PT_MIME_DEFAULT},
        {"trailing.", PT_MIME_DEFAULT},
        {"", PT_MIME_DEFAULT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(look(t, cases[i][0]), cases[i][1]);
    pt_mime_table_free(t);
    /* Without any table (allocation failed): the built-ins, linearly. */
    assert_string_equal(look(NULL, "x.css"), "text/css; charset=utf-8");
    assert_string_equal(look(NULL, "x.png"), "image/png");
    assert_string_equal(look(NULL, "x.zzz"), PT_MIME_DEFAULT);
    /* A file that does not exist: built-ins. */
    t = pt_mime_table_load("/nonexistent/mime.types");
    assert_non_null(t);
    assert_string_equal(look(t, "a.woff2"), "font/woff2");
    pt_mime_table_free(t);
}

static void test_file_overrides(void **state)
{
    (void)state;
    char path[] = "/tmp/pt_mime_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char content[] = "# comment line\n"
                                  "\n"
                                  "text/x-custom\t\tcst cst2   # trailing comment\n"
                                  "application/javascript js\n"
                                  "application/ld+json jsonld\n"
                                  "application/sarif+json sarif.json\n"
                                  "image/png PNG\n"
                                  "application/x-noext\n"
                                  "notatype foo\n"
                                  "   text/plain   log\r\n"
                                  "text/markdown md";
    assert_int_equal(write(fd, content, sizeof(content) - 1), (ssize_t)(sizeof(content) - 1));
    close(fd);
    struct pt_mime_table *t = pt_mime_table_load(path);
    unlink(path);
    assert_non_null(t);
    assert_string_equal(look(t, "a.cst"), "text/x-custom; charset=utf-8");
    assert_string_equal(look(t, "a.CST2"), "text/x-custom; charset=utf-8");
    assert_string_equal(look(t, "a.js"), "application/javascript; charset=utf-8");
    assert_string_equal(look(t, "a.jsonld"), "application/ld+json; charset=utf-8");
    assert_string_equal(look(t, "x.sarif.json"), "application/sarif+json; charset=utf-8");
    assert_string_equal(look(t, "x.json"), "application/json; charset=utf-8");
    assert_string_equal(look(t, "a.png"), "image/png");
    assert_string_equal(look(t, "a.foo"), PT_MIME_DEFAULT);
    assert_string_equal(look(t, "a.log"), "text/plain; charset=utf-8");
    assert_string_equal(look(t, "README.md"), "text/markdown; charset=utf-8");
    assert_string_equal(look(t, "a.css"), "text/css; charset=utf-8"); /* built-in kept */
    pt_mime_table_free(t);
}

static void test_system_table(void **state)
{
    (void)state;
    pt_mime_init();
    assert_string_equal(pt_mime_type("index.html", 10), "text/html; charset=utf-8");
    assert_string_equal(pt_mime_type("app.wasm", 8), "application/wasm");
    assert_string_equal(pt_mime_type("font.woff2", 10), "font/woff2");
    assert_string_equal(pt_mime_type("x", 1), PT_MIME_DEFAULT);
    if (access(PT_MIME_SYSTEM_FILE, R_OK) == 0) {
        /* Debian's media-types: js is text/javascript, ico the IANA name. */
        assert_string_equal(pt_mime_type("a.js", 4), "text/javascript; charset=utf-8");
        assert_string_equal(pt_mime_type("a.ico", 5), "image/vnd.microsoft.icon");
    }
}

/* Many extensions force the table to grow several times. */
static void test_growth(void **state)
{
    (void)state;
    char path[] = "/tmp/pt_mime_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    for (int i = 0; i < 3000; i++)
        fprintf(f, "application/x-t%d e%d f%d\n", i, i, i);
    fclose(f);
    struct pt_mime_table *t = pt_mime_table_load(path);
    unlink(path);
    assert_non_null(t);
    char name[32], want[48];
    for (int i = 0; i < 3000; i += 7) {
        snprintf(name, sizeof(name), "x.f%d", i);
        snprintf(want, sizeof(want), "application/x-t%d", i);
        assert_string_equal(look(t, name), want);
    }
    assert_string_equal(look(t, "x.html"), "text/html; charset=utf-8");
    pt_mime_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_defaults),
        cmocka_unit_test(test_file_overrides),
        cmocka_unit_test(test_system_table),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
