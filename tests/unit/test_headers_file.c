/*
 * test_headers_file.c - the Netlify _headers reader (src/config/headers_file.c).
 *
 * Table-driven: each case is a whole small file and the expected result written as one string,
 * "PATH@LINE{Name=value|Name=value};PATH@LINE{...}", plus the expected error texts joined by
 * '\n'. That keeps each case to two lines while still asserting every field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/netlify.h"
#include "core/common.h"

struct hcase {
    const char *in;
    const char *want; /* rules, see above */
    const char *errs; /* error texts joined by '\n', "" when none */
};

static const struct hcase cases[] = {
    {"/*\n  X-Frame-Options: DENY\n", "/*@1{X-Frame-Options=DENY}", ""},
    {"/a\n  A: 1\n  B: 2\n/b\n  C: 3\n", "/a@1{A=1|B=2};/b@4{C=3}", ""},
    /* no indentation needed; blanks around name and value trimmed */
    {"/a\nX-A:   one  \n\tX-B :two\n", "/a@1{X-A=one|X-B=two}", ""},
    /* the first ':' splits, the rest belongs to the value */
    {"/a\n  Link: <https://x.example/a.css>; rel=preload\n",
     "/a@1{Link=<https://x.example/a.css>; rel=preload}", ""},
    /* same name twice: one header, values joined; names compared case-insensitively */
    {"/*\n  Cache-Control: max-age=0\n  cache-control: no-cache\n  CACHE-CONTROL: no-store\n",
     "/*@1{Cache-Control=max-age=0, no-cache, no-store}", ""},
    /* commas normalised to ", " */
    {"/a\n  Cache-Control: max-age=0,no-cache ,  no-store\n",
     "/a@1{Cache-Control=max-age=0, no-cache, no-store}", ""},
    {"/a\n  X: a,\n", "/a@1{X=a}", ""},
    /* '#' only starts a comment at the start of a line */
    {"# a path:\n/a\n  # headers for it:\n  X-Color: #fff\n", "/a@2{X-Color=#fff}", ""},
    /* the same path twice gives two rules, in file order */
    {"/a\n  A: 1\n/a\n  A: 2\n", "/a@1{A=1};/a@3{A=2}", ""},
    /* placeholders, splats and absolute URLs as paths */
    {"/blog/:slug/*\n  X: 1\nhttps://ex.example/*\n  Y: 2\n",
     "/blog/:slug/*@1{X=1};https://ex.example/*@3{Y=2}", ""},
    /* CRLF, blank lines, BOM, no final newline */
    {"\xEF\xBB\xBF/a\r\n\r\n  A: 1\r\n  B: 2", "/a@1{A=1|B=2}", ""},
    /* a path with no headers is dropped without an error (as on Netlify) */
    {"/a\n/b\n  B: 1\n/c\n", "/b@2{B=1}", ""},
    {"", "", ""},
    {"# only a comment\n\n", "", ""},
    /* tabs inside values are kept */
    {"/a\n  X: a\tb\n", "/a@1{X=a\tb}", ""},

    /* errors: the bad line is skipped, the rest loads */
    {"  X-Early: 1\n/a\n  A: 1\n", "/a@2{A=1}", "h:1: header \"X-Early\" comes before any path"},
    {"/a\n  just words\n  A: 1\n", "/a@1{A=1}",
     "h:2: expected a path starting with '/' or a \"Name: value\" header line"},
    {"/a\n  : v\n  A: 1\n", "/a@1{A=1}", "h:2: missing header name"},
    {"/a\n  Bad Name: v\n  A: 1\n", "/a@1{A=1}", "h:2: bad header name \"Bad Name\""},
    {"/a\n  X(y): v\n", "", "h:2: bad header name \"X(y)\""},
    {"/a\n  Empty:\n  Blank:   \n  A: 1\n", "/a@1{A=1}",
     "h:2: missing value for header \"Empty\"\nh:3: missing value for header \"Blank\""},
    {"/a\n  X: ,\n", "", "h:2: missing value for header \"X\""},
    {"/a\n  X: a\x01z\n  A: 1\n", "/a@1{A=1}",
     "h:2: control character in the value of header \"X\""},
    {"/a\n  X: a\x7fz\n", "", "h:2: control character in the value of header \"X\""},
    /* a path with a blank is refused, with the header lines under it */
    {"/a b\n  X: 1\n  Y: 2\n/c\n  Z: 3\n", "/c@4{Z=3}",
     "h:1: blank or control character in the path \"/a b\""},
    {"/ok\n  A: 1\n/a b\n  X: 1\n", "/ok@1{A=1}",
     "h:3: blank or control character in the path \"/a b\""},
};

static char got[8192];
static char got_errs[8192];

static void run(const char *in, size_t len)
{
    struct pt_arena a;
    struct pt_nf_header_rules out = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    assert_int_equal(pt_nf_parse_headers(&a, "h", in, len, &out, &errs), PT_OK);
    size_t used = 0;
    got[0] = '\0';
    for (size_t i = 0; i < out.n; i++) {
        const struct pt_nf_header_rule *h = &out.items[i];
        assert_string_equal(h->file, "h");
        assert_true(h->n_headers >= 1);
        used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%s@%d{", i ? ";" : "", h->path,
                                 h->line);
        for (size_t k = 0; k < h->n_headers; k++) {
            assert_int_equal(strlen(h->headers[k].name), h->headers[k].name_len);
            assert_int_equal(strlen(h->headers[k].value), h->headers[k].value_len);
            used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%s=%s", k ? "|" : "",
                                     h->headers[k].name, h->headers[k].value);
        }
        used += (size_t)snprintf(got + used, sizeof(got) - used, "}");
    }
    used = 0;
    got_errs[0] = '\0';
    for (size_t i = 0; i < errs.n; i++)
        used += (size_t)snprintf(got_errs + used, sizeof(got_errs) - used, "%s%s", i ? "\n" : "",
                                 errs.items[i].text);
    pt_arena_free(&a);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++) {
        run(cases[i].in, strlen(cases[i].in));
        if (strcmp(got, cases[i].want) != 0 || strcmp(got_errs, cases[i].errs) != 0)
            fail_msg("case %zu:\n got  %s\n want %s\n got errors  %s\n want errors %s", i, got,
                     cases[i].want, got_errs, cases[i].errs);
    }
}

/* Our own example in the shape of Netlify's documentation: security headers for everything,
 * long caching for fingerprinted assets, CORS for one folder, a multi-value header. */
static const char example[] = "# Security headers for every page\n"
                              "/*\n"
                              "  X-Frame-Options: DENY\n"
                              "  X-Content-Type-Options: nosniff\n"
                              "  Referrer-Policy: strict-origin-when-cross-origin\n"
                              "\n"
                              "# Fingerprinted assets never change\n"
                              "/assets/*\n"
                              "  Cache-Control: public, max-age=31536000, immutable\n"
                              "\n"
                              "/fonts/*\n"
                              "  Access-Control-Allow-Origin: *\n"
                              "\n"
                              "/index.html\n"
                              "  Link: </assets/app.css>; rel=preload; as=style\n"
                              "  Link: </assets/app.js>; rel=preload; as=script\n"
                              "  Cache-Control: no-cache\n";

static void test_example(void **state)
{
    (void)state;
    run(example, sizeof(example) - 1);
    assert_string_equal(got_errs, "");
    assert_string_equal(got, "/*@2{X-Frame-Options=DENY|X-Content-Type-Options=nosniff|"
                             "Referrer-Policy=strict-origin-when-cross-origin};"
                             "/assets/*@8{Cache-Control=public, max-age=31536000, immutable};"
                             "/fonts/*@11{Access-Control-Allow-Origin=*};"
                             "/index.html@14{Link=</assets/app.css>; rel=preload; as=style, "
                             "</assets/app.js>; rel=preload; as=script|Cache-Control=no-cache}");
}

static void test_limits(void **state)
{
    (void)state;
    struct pt_arena a;
    struct pt_nf_header_rules out = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    size_t n = PT_NF_MAX_LINE_BYTES + 10;
    char *buf = malloc(n + 32);
    assert_non_null(buf);
    memcpy(buf, "/a\n  X: ", 8);
    memset(buf + 8, 'v', n);
    memcpy(buf + 8 + n, "\n  Y: 1\n", 8);
    assert_int_equal(pt_nf_parse_headers(&a, "h", buf, n + 16, &out, &errs), PT_OK);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.items[0].n_headers, 1);
    assert_string_equal(out.items[0].headers[0].name, "Y");
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.items[0].text, "h:2: line longer than"));
    free(buf);
    assert_int_equal(pt_nf_parse_headers(&a, "h", "", PT_NF_MAX_FILE_BYTES + 1u, &out, &errs),
                     PT_ERR);
    assert_int_equal(out.n, 1);
    pt_arena_free(&a);
}

/* Many headers for one path and many paths: the growing arrays keep every entry. */
static void test_many(void **state)
{
    (void)state;
    size_t cap = 200000, used = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (int p = 0; p < 50; p++) {
        used += (size_t)snprintf(buf + used, cap - used, "/p%d\n", p);
        for (int h = 0; h < 40; h++)
            used += (size_t)snprintf(buf + used, cap - used, "  X-H%d: v%d\n", h, p);
    }
    struct pt_arena a;
    struct pt_nf_header_rules out = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    assert_int_equal(pt_nf_parse_headers(&a, "h", buf, used, &out, &errs), PT_OK);
    assert_int_equal(errs.n, 0);
    assert_int_equal(out.n, 50);
    assert_int_equal(out.items[49].n_headers, 40);
    assert_string_equal(out.items[49].headers[39].name, "X-H39");
    assert_string_equal(out.items[49].headers[39].value, "v49");
    assert_int_equal(out.items[49].line, 49 * 41 + 1);
    free(buf);
    pt_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
