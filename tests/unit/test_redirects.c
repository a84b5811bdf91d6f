/*
 * test_redirects.c - the Netlify _redirects reader (src/config/redirects.c).
 *
 * Table-driven: each case is one line of a _redirects file and either every field the reader
 * derives (lists are compared as comma-joined strings) or a piece of the error it must give,
 * with the file:line prefix. Further tests cover whole files: comments, CRLF, a byte order
 * mark, line numbers of errors while the good lines still load, limits, and an example file
 * of our own covering every feature the way Netlify's documentation describes them.
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

static char joined[4096];

static const char *join(const char **v, size_t n)
{
    size_t used = 0;
    joined[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(joined + used, sizeof(joined) - used, "%s%s", i ? "," : "", v[i]);
    return joined;
}

static const char *join_query(const struct pt_nf_rule *r)
{
    size_t used = 0;
    joined[0] = '\0';
    for (size_t i = 0; i < r->n_query; i++)
        used += (size_t)snprintf(joined + used, sizeof(joined) - used, "%s%s=%s%s", i ? "," : "",
                                 r->query[i].name, r->query[i].is_placeholder ? ":" : "",
                                 r->query[i].value);
    return joined;
}

struct rcase {
    const char *line;
    const char *err; /* non-NULL: the line is rejected with this text (after "t:1: ") */
    const char *to;
    int status;
    const char *flags; /* letters: F force, P proxy, R rewrite, S splat, Q to has query, U to URL,
                          E status explicitly written */
    const char *from_path;
    const char *host; /* NULL: not a domain rule */
    const char *scheme;
    const char *params;
    const char *query;
    const char *lang;
    const char *country;
    const char *cookie;
};

static const struct rcase cases[] = {
    /* plain redirects; 301 is the default */
    {"/home /", NULL, "/", 301, "", "/home", NULL, NULL, "", "", "", "", ""},
    {"/a /b 302", NULL, "/b", 302, "E", "/a", NULL, NULL, "", "", "", "", ""},
    {"/a /b 301", NULL, "/b", 301, "E", "/a", NULL, NULL, "", "", "", "", ""},
    {"/a /b 303", NULL, "/b", 303, "E", "/a", NULL, NULL, "", "", "", "", ""},
    {"/a /b 307", NULL, "/b", 307, "E", "/a", NULL, NULL, "", "", "", "", ""},
    {"/a /b 308", NULL, "/b", 308, "E", "/a", NULL, NULL, "", "", "", "", ""},
    {"  /a\t\t/b   302  ", NULL, "/b", 302, "E", "/a", NULL, NULL, "", "", "", "", ""},
    {"/old https://example.com/new", NULL, "https://example.com/new", 301, "U", "/old", NULL, NULL,
     "", "", "", "", ""},
    {"/authors/c%C3%A9line /authors/about-c%C3%A9line", NULL, "/authors/about-c%C3%A9line", 301, "",
     "/authors/c%C3%A9line", NULL, NULL, "", "", "", "", ""},
    /* rewrites and custom statuses */
    {"/* /index.html 200", NULL, "/index.html", 200, "ERS", "/*", NULL, NULL, "", "", "", "", ""},
    {"/en/* /en/404.html 404", NULL, "/en/404.html", 404, "ERS", "/en/*", NULL, NULL, "", "", "",
     "", ""},
    {"/gone /gone.html 410", NULL, "/gone.html", 410, "ER", "/gone", NULL, NULL, "", "", "", "",
     ""},
    {"/legal /legal.html 451", NULL, "/legal.html", 451, "ER", "/legal", NULL, NULL, "", "", "", "",
     ""},
    /* force */
    {"/app/ /app/index.html 200!", NULL, "/app/index.html", 200, "EFR", "/app/", NULL, NULL, "", "",
     "", "", ""},
    {"/x /y 301!", NULL, "/y", 301, "EF", "/x", NULL, NULL, "", "", "", "", ""},
    {"/x /y 404!", NULL, "/y", 404, "EFR", "/x", NULL, NULL, "", "", "", "", ""},
    /* proxies */
    {"/api/* https://api.example.com/:splat 200", NULL, "https://api.example.com/:splat", 200,
     "EPSU", "/api/*", NULL, NULL, "", "", "", "", ""},
    {"/api/* http://127.0.0.1:9000/v1/:splat 200!", NULL, "http://127.0.0.1:9000/v1/:splat", 200,
     "EFPSU", "/api/*", NULL, NULL, "", "", "", "", ""},
    {"/s https://h.example/search?q=1 200", NULL, "https://h.example/search?q=1", 200, "EPQU", "/s",
     NULL, NULL, "", "", "", "", ""},
    /* splats and placeholders */
    {"/news/* /blog/:splat", NULL, "/blog/:splat", 301, "S", "/news/*", NULL, NULL, "", "", "", "",
     ""},
    {"/news/:year/:month/:date/:slug /blog/:year/:month/:date/:slug", NULL,
     "/blog/:year/:month/:date/:slug", 301, "", "/news/:year/:month/:date/:slug", NULL, NULL,
     "year,month,date,slug", "", "", "", ""},
    {"/n/:year/:month /blog-:year-:month.html 302", NULL, "/blog-:year-:month.html", 302, "E",
     "/n/:year/:month", NULL, NULL, "year,month", "", "", "", ""},
    {"/u/:id/* /users/:id/:splat 200", NULL, "/users/:id/:splat", 200, "ERS", "/u/:id/*", NULL,
     NULL, "id", "", "", "", ""},
    {"/a:b /c", NULL, "/c", 301, "", "/a:b", NULL, NULL, "", "", "", "", ""},
    {"/x https://h.example:8443/y", NULL, "https://h.example:8443/y", 301, "U", "/x", NULL, NULL,
     "", "", "", "", ""},
    /* forward rules: no to */
    {"/app/* 200", NULL, "/app/:splat", 200, "ERS", "/app/*", NULL, NULL, "", "", "", "", ""},
    {"/* 200!", NULL, "/:splat", 200, "EFRS", "/*", NULL, NULL, "", "", "", "", ""},
    /* query parameters */
    {"/store id=:id /product/:id 301", NULL, "/product/:id", 301, "E", "/store", NULL, NULL, "",
     "id=:id", "", "", ""},
    {"/articles id=:id tag=:tag /posts/:tag/:id 301", NULL, "/posts/:tag/:id", 301, "E",
     "/articles", NULL, NULL, "", "id=:id,tag=:tag", "", "", ""},
    {"/search lang=en /en/search 302", NULL, "/en/search", 302, "E", "/search", NULL, NULL, "",
     "lang=en", "", "", ""},
    {"/s empty= /t", NULL, "/t", 301, "", "/s", NULL, NULL, "", "empty=", "", "", ""},
    {"/p/:cat q=:q /find?c=:cat&q=:q 200", NULL, "/find?c=:cat&q=:q", 200, "EQR", "/p/:cat", NULL,
     NULL, "cat", "q=:q", "", "", ""},
    /* conditions */
    {"/ /anz 302 Country=au,nz", NULL, "/anz", 302, "E", "/", NULL, NULL, "", "", "", "au,nz", ""},
    {"/ /fr 302 Language=fr", NULL, "/fr", 302, "E", "/", NULL, NULL, "", "", "fr", "", ""},
    {"/* /beta/:splat 200 Cookie=is_beta,tester", NULL, "/beta/:splat", 200, "ERS", "/*", NULL,
     NULL, "", "", "", "", "is_beta,tester"},
    {"/ /x 302 Language=EN,Fr-CA Country=US", NULL, "/x", 302, "E", "/", NULL, NULL, "", "",
     "en,fr-ca", "us", ""},
    {"/ /x 302 language=de country=at cookie=Sess", NULL, "/x", 302, "E", "/", NULL, NULL, "", "",
     "de", "at", "Sess"},
    {"/ /x Country=de", NULL, "/x", 301, "", "/", NULL, NULL, "", "", "", "de", ""},
    /* domain-level rules */
    {"https://old.example.com/* https://example.com/:splat 301!", NULL,
     "https://example.com/:splat", 301, "EFSU", "/*", "old.example.com", "https", "", "", "", "",
     ""},
    {"http://Blog.Example.COM/* https://example.com/blog/:splat 301!", NULL,
     "https://example.com/blog/:splat", 301, "EFSU", "/*", "blog.example.com", "http", "", "", "",
     "", ""},
    {"https://a.example https://b.example 302", NULL, "https://b.example", 302, "EU", "/",
     "a.example", "https", "", "", "", "", ""},
    {"https://a.example:8443/x /y", NULL, "/y", 301, "", "/x", "a.example:8443", "https", "", "",
     "", "", ""},
    /* trailing comments */
    {"/a /b 302 # moved in 2024", NULL, "/b", 302, "E", "/a", NULL, NULL, "", "", "", "", ""},
    {"/a /b#frag", NULL, "/b#frag", 301, "", "/a", NULL, NULL, "", "", "", "", ""},

    /* errors */
    {.line = "/only", .err = "missing destination"},
    {.line = "/a b c", .err = "the destination must start with"},
    {.line = "/a foo /b", .err = "between from and to must be a query condition"},
    {.line = "/a /b 999", .err = "status 999 is not one of"},
    {.line = "/a /b 201", .err = "status 201 is not one of"},
    {.line = "/a /b 302x", .err = "expected a status or Key=value condition"},
    {.line = "/a /b 302 Role=admin", .err = "Role conditions need Netlify Identity"},
    {.line = "/a /b 200 Sign=SECRET", .err = "signed proxy rules are not supported"},
    {.line = "/a /b 302 Planet=mars", .err = "unknown condition \"Planet\""},
    {.line = "/a /b 302 Country=", .err = "empty value in Country condition"},
    {.line = "/a /b 302 Country=us,,ca", .err = "empty value in Country condition"},
    {.line = "/a /b 302 Country=u$", .err = "bad character '$' in Country"},
    {.line = "/a /b 302 Country=us Country=ca", .err = "Country condition given twice"},
    {.line = "a /b", .err = "\"from\" must start with"},
    {.line = "/a/*/b /c", .err = "'*' (splat) may only end"},
    {"/a* /c", NULL, "/c", 301, "S", "/a*", NULL, NULL, "", "", "", "", ""},
    {.line = "/a?x=1 /b", .err = "cannot hold a query string"},
    {.line = "/:1abc /b", .err = "bad placeholder"},
    {.line = "/x/:a-b /b", .err = "bad placeholder"},
    {.line = "/x/: /b", .err = "bad placeholder"},
    {.line = "/x/:splat /b", .err = ":splat is reserved"},
    {.line = "/x/:a/:a /b", .err = "placeholder :a defined twice"},
    {.line = "/x/:a a=:a /b", .err = "placeholder :a defined twice"},
    {.line = "/x p=:a q=:a /b", .err = "placeholder :a defined twice"},
    {.line = "/x p=1 p=2 /b", .err = "query parameter \"p\" given twice"},
    {.line = "/x =1 /b", .err = "empty query parameter name"},
    {.line = "/x p=:1 /b", .err = "bad placeholder \":1\""},
    /* a placeholder that from does not define loads and stays in to as written (Netlify) */
    {"/x /y/:splat", NULL, "/y/:splat", 301, "", "/x", NULL, NULL, "", "", "", "", ""},
    {"/x /y/:id", NULL, "/y/:id", 301, "", "/x", NULL, NULL, "", "", "", "", ""},
    {"/x/:id /y/:idx", NULL, "/y/:idx", 301, "", "/x/:id", NULL, NULL, "id", "", "", "", ""},
    {"/x /y 302!", NULL, "/y", 302, "EF", "/x", NULL, NULL, "", "", "", "", ""},
    {.line = "/a 301", .err = "missing \"to\""},
    {.line = "/a/* 301", .err = "missing \"to\""},
    {.line = "/a/* 404", .err = "missing \"to\""},
    {.line = "/x https://h.example/y 404", .err = "a 404 rule serves a local path"},
    {.line = "/x https:///y 200", .err = "no host in \"to\" URL"},
    {.line = "https:///x /y", .err = "no host in \"from\" URL"},
    {.line = "https://us er@h/x /y", .err = "between from and to must be a query condition"},
    {.line = "https://user@h/x /y", .err = "bad character '@' in the host"},
    {.line = "/.netlify/functions/x /y", .err = "paths under /.netlify are reserved"},
    {.line = "/a/:a1/:a2/:a3/:a4/:a5/:a6/:a7/:a8/:a9/:b1/:b2/:b3/:b4/:b5/:b6/:b7/:b8 /x",
     .err = "more than 16 placeholders"},
};

static void check_case(const struct rcase *c)
{
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    int rc = pt_nf_parse_redirects(&a, "t", c->line, strlen(c->line), &rules, &errs);
    assert_int_equal(rc, PT_OK);
    if (c->err) {
        if (errs.n != 1 || rules.n != 0)
            fail_msg("%s: expected one error, got %zu errors and %zu rules", c->line, errs.n,
                     rules.n);
        if (strncmp(errs.items[0].text, "t:1: ", 5) != 0 || !strstr(errs.items[0].text, c->err))
            fail_msg("%s: expected \"%s\", got \"%s\"", c->line, c->err, errs.items[0].text);
        assert_int_equal(errs.items[0].line, 1);
        pt_arena_free(&a);
        return;
    }
    if (errs.n != 0 || rules.n != 1)
        fail_msg("%s: unexpected error %s", c->line, errs.n ? errs.items[0].text : "(none)");
    const struct pt_nf_rule *r = &rules.items[0];
    const char *f = c->flags;
    assert_string_equal(r->to, c->to);
    assert_int_equal(r->status, c->status);
    if (r->is_force != (strchr(f, 'F') != NULL) || r->is_proxy != (strchr(f, 'P') != NULL) ||
        r->is_rewrite != (strchr(f, 'R') != NULL) || r->has_splat != (strchr(f, 'S') != NULL) ||
        r->to_has_query != (strchr(f, 'Q') != NULL) || r->is_to_url != (strchr(f, 'U') != NULL) ||
        r->is_status_set != (strchr(f, 'E') != NULL))
        fail_msg("%s: flags force=%d proxy=%d rewrite=%d splat=%d query=%d url=%d set=%d, "
                 "want %s",
                 c->line, r->is_force, r->is_proxy, r->is_rewrite, r->has_splat, r->to_has_query,
                 r->is_to_url, r->is_status_set, f);
    assert_string_equal(r->from_path, c->from_path);
    if (c->host) {
        assert_non_null(r->from_host);
        assert_string_equal(r->from_host, c->host);
        assert_string_equal(r->from_scheme, c->scheme);
    } else {
        assert_null(r->from_host);
        assert_null(r->from_scheme);
        assert_string_equal(r->from, r->from_path);
    }
    assert_string_equal(join(r->params, r->n_params), c->params);
    assert_string_equal(join_query(r), c->query);
    assert_string_equal(join(r->languages, r->n_languages), c->lang);
    assert_string_equal(join(r->countries, r->n_countries), c->country);
    assert_string_equal(join(r->cookies, r->n_cookies), c->cookie);
    assert_string_equal(r->file, "t");
    assert_int_equal(r->line, 1);
    assert_int_equal(r->n_headers, 0);
    pt_arena_free(&a);
}

static void test_line_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++)
        check_case(&cases[i]);
}

/* Comments, blank lines, CRLF, a BOM, no final newline: only real rules count, lines numbered
 * from 1 in the file as written. */
static void test_file_structure(void **state)
{
    (void)state;
    static const char file[] = "\xEF\xBB\xBF# redirects\r\n"
                               "\r\n"
                               "   # indented comment\n"
                               "/a /b\r\n"
                               "\t\n"
                               "/c /d 302 # trailing\n"
                               "#/e /f\n"
                               "/g /h 200";
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    assert_int_equal(
        pt_nf_parse_redirects(&a, "site/_redirects", file, sizeof(file) - 1, &rules, &errs), PT_OK);
    assert_int_equal(errs.n, 0);
    assert_int_equal(rules.n, 3);
    assert_string_equal(rules.items[0].from, "/a");
    assert_string_equal(rules.items[0].to, "/b");
    assert_int_equal(rules.items[0].line, 4);
    assert_string_equal(rules.items[1].from, "/c");
    assert_int_equal(rules.items[1].line, 6);
    assert_int_equal(rules.items[2].line, 8);
    assert_true(rules.items[2].is_rewrite);
    assert_string_equal(rules.items[2].file, "site/_redirects");
    pt_arena_free(&a);
}

/* A bad line is reported with FILE:LINE and skipped; the lines around it still load, in order. */
static void test_errors_keep_going(void **state)
{
    (void)state;
    static const char file[] = "/one /1\n"
                               "/two\n"
                               "/three /3 302\n"
                               "/four /4 999\n"
                               "/five /5 Role=admin\n"
                               "/six /6 200!\n"
                               "/bad\x01line /x\n"
                               "/seven /7\n";
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    assert_int_equal(pt_nf_parse_redirects(&a, "_redirects", file, sizeof(file) - 1, &rules, &errs),
                     PT_OK);
    assert_int_equal(rules.n, 4);
    assert_string_equal(rules.items[0].from, "/one");
    assert_string_equal(rules.items[1].from, "/three");
    assert_string_equal(rules.items[2].from, "/six");
    assert_string_equal(rules.items[3].from, "/seven");
    assert_int_equal(rules.items[3].line, 8);
    assert_int_equal(errs.n, 4);
    assert_string_equal(errs.items[0].text, "_redirects:2: missing destination path or URL");
    assert_int_equal(errs.items[1].line, 4);
    assert_non_null(strstr(errs.items[1].text, "_redirects:4: status 999"));
    assert_int_equal(errs.items[2].line, 5);
    assert_string_equal(errs.items[3].text, "_redirects:7: control character in line");
    assert_string_equal(errs.items[3].reason, "control character in line");

    char out[1024];
    assert_int_equal(pt_nf_errors_format(&errs, out, sizeof(out)), 4);
    assert_non_null(strstr(out, "_redirects:2: missing destination path or URL\n_redirects:4:"));
    /* Truncation keeps whole lines only. */
    assert_int_equal(pt_nf_errors_format(&errs, out, 60), 1);
    assert_string_equal(out, "_redirects:2: missing destination path or URL\n");
    pt_arena_free(&a);
}

/* Readers append: the same lists collect several files, errors too. */
static void test_append(void **state)
{
    (void)state;
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    for (int i = 0; i < 40; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "/p%d /q%d\n/bad%d\n", i, i, i);
        assert_int_equal(pt_nf_parse_redirects(&a, "f", line, (size_t)n, &rules, &errs), PT_OK);
    }
    assert_int_equal(rules.n, 40);
    assert_int_equal(errs.n, 40);
    assert_string_equal(rules.items[39].from, "/p39");
    assert_string_equal(errs.items[39].text, "f:2: missing destination path or URL");
    pt_arena_free(&a);
}

static void test_limits(void **state)
{
    (void)state;
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    /* A line over PT_NF_MAX_LINE_BYTES is refused; the next still loads. */
    size_t n = PT_NF_MAX_LINE_BYTES + 100;
    char *buf = malloc(n + 32);
    assert_non_null(buf);
    buf[0] = '/';
    memset(buf + 1, 'a', n - 1);
    memcpy(buf + n, " /x\n/ok /y\n", 11);
    assert_int_equal(pt_nf_parse_redirects(&a, "f", buf, n + 11, &rules, &errs), PT_OK);
    assert_int_equal(rules.n, 1);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.items[0].text, "f:1: line longer than"));
    free(buf);

    /* A line with more fields than the reader takes. */
    char many[512];
    size_t used = (size_t)snprintf(many, sizeof(many), "/a /b 302");
    for (int i = 0; i < 70; i++)
        used += (size_t)snprintf(many + used, sizeof(many) - used, " X=%d", i % 10);
    errs.n = 0;
    rules.n = 0;
    assert_int_equal(pt_nf_parse_redirects(&a, "f", many, used, &rules, &errs), PT_OK);
    assert_int_equal(rules.n, 0);
    assert_string_equal(errs.items[0].text, "f:1: too many fields in line");

    /* Over the file limit: refused whole, without reading it. */
    errs.n = 0;
    assert_int_equal(pt_nf_parse_redirects(&a, "big", "", PT_NF_MAX_FILE_BYTES + 1u, &rules, &errs),
                     PT_ERR);
    assert_string_equal(errs.items[0].text, "big: file larger than 8388608 bytes");
    assert_int_equal(errs.items[0].line, 0);

    /* Error list cap: later errors only counted. */
    struct pt_nf_errors many_errs = {0};
    for (int i = 0; i < PT_NF_MAX_ERRORS + 5; i++)
        assert_int_equal(pt_nf_parse_redirects(&a, "f", "/x", 2, &rules, &many_errs), PT_OK);
    assert_int_equal(many_errs.n, PT_NF_MAX_ERRORS);
    assert_int_equal(many_errs.n_dropped, 5);
    size_t big = 200000;
    char *out = malloc(big);
    assert_non_null(out);
    assert_int_equal(pt_nf_errors_format(&many_errs, out, big), PT_NF_MAX_ERRORS);
    assert_non_null(strstr(out, "f: 5 more errors\n"));
    free(out);
    pt_arena_free(&a);
}

/*
 * An example file of our own in the style of Netlify's documentation, every feature once or
 * more, with what each line must turn into. Written out in full rather than generated so it
 * reads like a real site's file.
 */
static const char example[] =
    "# Example _redirects for a static site with an API behind it\n"      /* 1 */
    "\n"                                                                  /* 2 */
    "# plain moves\n"                                                     /* 3 */
    "/home              /\n"                                              /* 4 */
    "/blog/my-post.php  /blog/my-post\n"                                  /* 5 */
    "/news              /blog              302\n"                         /* 6 */
    "/pets              https://pets.example.org\n"                       /* 7 */
    "\n"                                                                  /* 8 */
    "# splats and placeholders\n"                                         /* 9 */
    "/shop/*            /store/:splat      301\n"                         /* 10 */
    "/news/:year/:month/:date/:slug  /blog/:year/:month/:date/:slug\n"    /* 11 */
    "\n"                                                                  /* 12 */
    "# query parameters\n"                                                /* 13 */
    "/store id=:id      /products/:id      301\n"                         /* 14 */
    "/catalog cat=shoes /shoes             302\n"                         /* 15 */
    "\n"                                                                  /* 16 */
    "# rewrites, custom 404s, force\n"                                    /* 17 */
    "/en/*              /en/404.html       404\n"                         /* 18 */
    "/app/              /app/index.html    200!\n"                        /* 19 */
    "/legacy/*          /gone.html         410\n"                         /* 20 */
    "\n"                                                                  /* 21 */
    "# proxies to backends on the same domain\n"                          /* 22 */
    "/api/*             http://127.0.0.1:9001/:splat  200\n"              /* 23 */
    "/search q=:q       https://search.example.net/?q=:q  200!\n"         /* 24 */
    "\n"                                                                  /* 25 */
    "# domain-level\n"                                                    /* 26 */
    "http://old.example.com/*   https://example.com/:splat   301!\n"      /* 27 */
    "https://old.example.com/*  https://example.com/:splat   301!\n"      /* 28 */
    "\n"                                                                  /* 29 */
    "# by country, language, cookie\n"                                    /* 30 */
    "/                  /anz               302  Country=au,nz\n"          /* 31 */
    "/                  /fr/               302  Language=fr\n"            /* 32 */
    "/*                 /beta/:splat       200  Cookie=beta\n"            /* 33 */
    "/israel/*          /israel/he/:splat  302  Country=il Language=he\n" /* 34 */
    "\n"                                                                  /* 35 */
    "# single page app fallback last\n"                                   /* 36 */
    "/*                 /index.html        200\n";                        /* 37 */

struct expect {
    int line;
    const char *from;
    const char *to;
    int status;
    bool force;
    bool proxy;
    bool rewrite;
};

static void test_example_file(void **state)
{
    (void)state;
    static const struct expect want[] = {
        {4, "/home", "/", 301, false, false, false},
        {5, "/blog/my-post.php", "/blog/my-post", 301, false, false, false},
        {6, "/news", "/blog", 302, false, false, false},
        {7, "/pets", "https://pets.example.org", 301, false, false, false},
        {10, "/shop/*", "/store/:splat", 301, false, false, false},
        {11, "/news/:year/:month/:date/:slug", "/blog/:year/:month/:date/:slug", 301, false, false,
         false},
        {14, "/store", "/products/:id", 301, false, false, false},
        {15, "/catalog", "/shoes", 302, false, false, false},
        {18, "/en/*", "/en/404.html", 404, false, false, true},
        {19, "/app/", "/app/index.html", 200, true, false, true},
        {20, "/legacy/*", "/gone.html", 410, false, false, true},
        {23, "/api/*", "http://127.0.0.1:9001/:splat", 200, false, true, false},
        {24, "/search", "https://search.example.net/?q=:q", 200, true, true, false},
        {27, "http://old.example.com/*", "https://example.com/:splat", 301, true, false, false},
        {28, "https://old.example.com/*", "https://example.com/:splat", 301, true, false, false},
        {31, "/", "/anz", 302, false, false, false},
        {32, "/", "/fr/", 302, false, false, false},
        {33, "/*", "/beta/:splat", 200, false, false, true},
        {34, "/israel/*", "/israel/he/:splat", 302, false, false, false},
        {37, "/*", "/index.html", 200, false, false, true},
    };
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    assert_int_equal(
        pt_nf_parse_redirects(&a, "_redirects", example, sizeof(example) - 1, &rules, &errs),
        PT_OK);
    if (errs.n)
        fail_msg("unexpected: %s", errs.items[0].text);
    assert_int_equal(rules.n, PT_ARRAY_LEN(want));
    for (size_t i = 0; i < PT_ARRAY_LEN(want); i++) {
        const struct pt_nf_rule *r = &rules.items[i];
        assert_int_equal(r->line, want[i].line);
        assert_string_equal(r->from, want[i].from);
        assert_string_equal(r->to, want[i].to);
        assert_int_equal(r->status, want[i].status);
        assert_int_equal(r->is_force, want[i].force);
        assert_int_equal(r->is_proxy, want[i].proxy);
        assert_int_equal(r->is_rewrite, want[i].rewrite);
    }
    assert_string_equal(rules.items[6].query[0].name, "id");
    assert_true(rules.items[6].query[0].is_placeholder);
    assert_string_equal(rules.items[7].query[0].value, "shoes");
    assert_false(rules.items[7].query[0].is_placeholder);
    assert_string_equal(rules.items[13].from_host, "old.example.com");
    assert_string_equal(rules.items[13].from_scheme, "http");
    assert_string_equal(rules.items[14].from_scheme, "https");
    assert_string_equal(join(rules.items[15].countries, rules.items[15].n_countries), "au,nz");
    assert_string_equal(join(rules.items[16].languages, rules.items[16].n_languages), "fr");
    assert_string_equal(join(rules.items[17].cookies, rules.items[17].n_cookies), "beta");
    assert_int_equal(rules.items[18].n_countries, 1);
    assert_int_equal(rules.items[18].n_languages, 1);
    pt_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_cases),
        cmocka_unit_test(test_file_structure),
        cmocka_unit_test(test_errors_keep_going),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_example_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
