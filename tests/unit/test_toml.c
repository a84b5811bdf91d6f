/*
 * test_toml.c - the TOML reader (src/config/toml.c) and the netlify.toml reader
 * (src/config/netlify_toml.c).
 *
 * TOML cases are table-driven: a document and either its tree written compactly
 * ({key=value,...} tables, [a,b] arrays, "s" strings with \xNN for bytes outside printable
 * ASCII, integers, %g floats, true/false) or the error line and a piece of the message. The
 * netlify.toml part checks the fields of the rules read from [[redirects]] and [[headers]],
 * that other tables are ignored, and that each bad entry is reported at its line and skipped.
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
#include "config/toml.h"
#include "core/common.h"

static char dumpbuf[8192];
static size_t dumped;

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(dumpbuf + dumped, sizeof(dumpbuf) - dumped, fmt, ap);
    va_end(ap);
    if (w > 0)
        dumped = PT_MIN(dumped + (size_t)w, sizeof(dumpbuf) - 1);
}

static void dump_str(const char *s, size_t n)
{
    put("\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
            put("%c", c);
        else
            put("\\x%02X", c);
    }
    put("\"");
}

static void dump(const struct pt_toml_value *v)
{
    switch (v->type) {
    case PT_TOML_STRING:
        assert_int_equal(strlen(v->str), v->str_len);
        dump_str(v->str, v->str_len);
        break;
    case PT_TOML_INTEGER:
        put("%lld", (long long)v->integer);
        break;
    case PT_TOML_FLOAT:
        put("%g", v->number);
        break;
    case PT_TOML_BOOL:
        put("%s", v->boolean ? "true" : "false");
        break;
    case PT_TOML_ARRAY:
        put("[");
        for (size_t i = 0; i < v->n_items; i++) {
            if (i)
                put(",");
            dump(v->items[i]);
        }
        put("]");
        break;
    case PT_TOML_TABLE:
        put("{");
        for (size_t i = 0; i < v->n_kvs; i++) {
            if (i)
                put(",");
            put("%s=", v->kvs[i].key);
            dump(v->kvs[i].value);
        }
        put("}");
        break;
    default:
        fail_msg("bad type %d", v->type);
    }
}

struct tcase {
    const char *in;
    const char *want; /* tree, or NULL for an error */
    int err_line;
    const char *err;
};

static const struct tcase tcases[] = {
    {"", "{}", 0, NULL},
    {"# only a comment\n\n   \n", "{}", 0, NULL},
    {"a = 1\nb = \"two\"\nc = true\nd = false\n", "{a=1,b=\"two\",c=true,d=false}", 0, NULL},
    {"a=1", "{a=1}", 0, NULL},
    {"a = 1 # trailing comment\r\nb = 2\r\n", "{a=1,b=2}", 0, NULL},
    /* keys */
    {"bare_key-1 = 1\n\"quoted key\" = 2\n'lit.key' = 3\n\"\" = 4\n",
     "{bare_key-1=1,quoted key=2,lit.key=3,=4}", 0, NULL},
    {"1234 = 5\n", "{1234=5}", 0, NULL},
    {"a.b.c = 1\na.b.d = 2\na . e = 3\n", "{a={b={c=1,d=2},e=3}}", 0, NULL},
    {"site.\"google.com\" = true\n", "{site={google.com=true}}", 0, NULL},
    /* strings */
    {"s = \"tab\\there \\\"q\\\" back\\\\slash\"\n",
     "{s=\"tab\\x09here \\x22q\\x22 back\\x5Cslash\"}", 0, NULL},
    {"s = \"\\b\\f\\n\\r\"\n", "{s=\"\\x08\\x0C\\x0A\\x0D\"}", 0, NULL},
    {"s = \"\\u00e9\\U0001F600\\u20AC\"\n", "{s=\"\\xC3\\xA9\\xF0\\x9F\\x98\\x80\\xE2\\x82\\xAC\"}",
     0, NULL},
    {"s = 'C:\\path\\no escapes'\n", "{s=\"C:\\x5Cpath\\x5Cno escapes\"}", 0, NULL},
    {"s = \"caf\xC3\xA9\"\n", "{s=\"caf\\xC3\\xA9\"}", 0, NULL},
    {"s = \"\"\"\nline1\nline2\"\"\"\n", "{s=\"line1\\x0Aline2\"}", 0, NULL},
    {"s = \"\"\"one \\\n    two \\\n\n  three\"\"\"\n", "{s=\"one two three\"}", 0, NULL},
    {"s = \"\"\"a \"quoted\" \"\"word\"\" \"\"\"\"\"\n",
     "{s=\"a \\x22quoted\\x22 \\x22\\x22word\\x22\\x22 \\x22\\x22\"}", 0, NULL},
    {"s = '''\nraw \\n 'x' text\n'''\n", "{s=\"raw \\x5Cn 'x' text\\x0A\"}", 0, NULL},
    {"s = \"\"\"\r\nwin\r\nlines\"\"\"\n", "{s=\"win\\x0Alines\"}", 0, NULL},
    {"s = \"a\\tb\"\nt = 'a\tb'\n", "{s=\"a\\x09b\",t=\"a\\x09b\"}", 0, NULL},
    /* numbers */
    {"a = +99\nb = -17\nc = 0\nd = 1_000\ne = -0\n", "{a=99,b=-17,c=0,d=1000,e=0}", 0, NULL},
    {"a = 0xDEAD_beef\nb = 0o755\nc = 0b1101\n", "{a=3735928559,b=493,c=13}", 0, NULL},
    {"a = 9223372036854775807\nb = -9223372036854775808\n",
     "{a=9223372036854775807,b=-9223372036854775808}", 0, NULL},
    {"a = 3.14\nb = -0.01\nc = 5e+22\nd = 1E6\ne = 6.626e-34\nf = 1_000.5\n",
     "{a=3.14,b=-0.01,c=5e+22,d=1e+06,e=6.626e-34,f=1000.5}", 0, NULL},
    {"a = inf\nb = -inf\nc = +inf\n", "{a=inf,b=-inf,c=inf}", 0, NULL},
    /* arrays */
    {"a = [1, 2, 3]\nb = []\nc = [\"x\", 'y']\n", "{a=[1,2,3],b=[],c=[\"x\",\"y\"]}", 0, NULL},
    {"a = [\n  1,\n  2, # two\n  3,\n]\n", "{a=[1,2,3]}", 0, NULL},
    {"a = [[1, 2], [\"a\"], []]\n", "{a=[[1,2],[\"a\"],[]]}", 0, NULL},
    {"a = [1, \"mixed\", true, {x = 1}]\n", "{a=[1,\"mixed\",true,{x=1}]}", 0, NULL},
    /* inline tables */
    {"t = {a = 1, b = \"x\"}\nu = {}\n", "{t={a=1,b=\"x\"},u={}}", 0, NULL},
    {"t = {a.b = 1, a.c = 2}\n", "{t={a={b=1,c=2}}}", 0, NULL},
    {"t = {x = {y = {z = [1]}}}\n", "{t={x={y={z=[1]}}}}", 0, NULL},
    /* tables and arrays of tables */
    {"[a]\nx = 1\n[b]\ny = 2\n", "{a={x=1},b={y=2}}", 0, NULL},
    {"[a.b.c]\nx = 1\n[a]\ny = 2\n", "{a={b={c={x=1}},y=2}}", 0, NULL},
    {"[ a . \"b c\" ]\nx = 1\n", "{a={b c={x=1}}}", 0, NULL},
    {"[[r]]\nx = 1\n[[r]]\nx = 2\n[[r]]\n", "{r=[{x=1},{x=2},{}]}", 0, NULL},
    {"[[r]]\nx = 1\n[r.sub]\ny = 2\n[[r]]\nx = 3\n[r.sub]\ny = 4\n",
     "{r=[{x=1,sub={y=2}},{x=3,sub={y=4}}]}", 0, NULL},
    {"[[a.b]]\nx = 1\n[[a.b]]\nx = 2\n", "{a={b=[{x=1},{x=2}]}}", 0, NULL},
    {"[[r]]\n[[r.s]]\nx = 1\n[[r.s]]\nx = 2\n", "{r=[{s=[{x=1},{x=2}]}]}", 0, NULL},
    {"[fruit]\napple.color = \"red\"\n[fruit.apple.texture]\nsmooth = true\n",
     "{fruit={apple={color=\"red\",texture={smooth=true}}}}", 0, NULL},
    {"\xEF\xBB\xBF"
     "a = 1\n",
     "{a=1}", 0, NULL},

    /* errors, with the line they are reported at */
    {"a = 1\na = 2\n", NULL, 2, "duplicate key \"a\""},
    {"a.b = 1\na.b = 2\n", NULL, 2, "duplicate key \"a.b\""},
    {"a = 1\na.b = 2\n", NULL, 2, "cannot add keys with a dotted key to \"a\""},
    {"[a]\n[a]\n", NULL, 2, "table defined twice: \"a\""},
    {"[a]\nb = 1\n[a.b]\n", NULL, 3, "table defined twice: \"a.b\""},
    {"a = {x = 1}\n[a]\n", NULL, 2, "table defined twice"},
    {"a = {x = 1}\n[a.y]\n", NULL, 2, "cannot define a table inside \"a\""},
    {"a = {x = 1}\na.y = 2\n", NULL, 2, "cannot add keys with a dotted key to \"a\""},
    {"a = [1]\n[[a]]\n", NULL, 2, "cannot append an array-of-tables entry to \"a\""},
    {"[[a]]\n[a]\n", NULL, 2, "table defined twice"},
    {"[a.b]\nx = 1\n[a]\nb.y = 2\n", NULL, 4, "cannot add keys with a dotted key to \"b\""},
    {"[x]\na.b = 1\n[x.a]\n", NULL, 3, "table defined twice: \"x.a\""},
    {"a = \n", NULL, 1, "expected a value"},
    {"a = bare\n", NULL, 1, "expected a value (strings need quotes)"},
    {"= 1\n", NULL, 1, "expected a key"},
    {"a 1\n", NULL, 1, "expected '=' after a key"},
    {"a = 1 b = 2\n", NULL, 1, "unexpected 'b' after a value"},
    {"[a] x = 1\n", NULL, 1, "after a table header"},
    {"[a\n", NULL, 1, "expected ']' to close the table header"},
    {"[[a]\n", NULL, 1, "expected ']]' to close"},
    {"\n\na = \"open\n", NULL, 3, "unterminated string"},
    {"a = \"\"\"\nnever closed\n", NULL, 1, "unterminated string"},
    {"a = 'x\n", NULL, 1, "unterminated string"},
    {"a = \"bad \\q escape\"\n", NULL, 1, "invalid escape '\\q'"},
    {"a = \"\\u12\"\n", NULL, 1, "short \\u escape"},
    {"a = \"\\uZZZZ\"\n", NULL, 1, "bad hex digit"},
    {"a = \"\\uD800\"\n", NULL, 1, "not a Unicode scalar value"},
    {"a = \"\\U00110000\"\n", NULL, 1, "not a Unicode scalar value"},
    {"a = \"\\u0000\"\n", NULL, 1, "NUL characters"},
    {"a = \"ctl\x01\"\n", NULL, 1, "control character in a string"},
    {"a = 1 # ctl\x01\n", NULL, 1, "control character in a comment"},
    {"a = \"\"\"x\n\ny\x7f\"\"\"\n", NULL, 3, "control character in a string"},
    {"a = \"bad \xC3\"\n", NULL, 1, "invalid UTF-8"},
    {"a = 1\nb = \"\xED\xA0\x80\"\n", NULL, 2, "invalid UTF-8"},
    {"a = 1\nb = \"\xC0\xAF\"\n", NULL, 2, "invalid UTF-8"},
    {"a = \"\"\"x\"\"\"\"\"\"\n", NULL, 1, "too many quotes"},
    {"'''k''' = 1\n", NULL, 1, "a key cannot be a multi-line string"},
    {"a = 01\n", NULL, 1, "leading zeros"},
    {"a = 1__0\n", NULL, 1, "malformed number"},
    {"a = _1\n", NULL, 1, "expected a value"},
    {"a = 1_\n", NULL, 1, "malformed number"},
    {"a = 1.\n", NULL, 1, "malformed float"},
    {"a = 1.e5\n", NULL, 1, "malformed float"},
    {"a = 1e\n", NULL, 1, "malformed float"},
    {"a = 0x\n", NULL, 1, "malformed number"},
    {"a = 0xG1\n", NULL, 1, "malformed integer"},
    {"a = -0x1\n", NULL, 1, "a sign is not allowed"},
    {"a = 9223372036854775808\n", NULL, 1, "integer out of range"},
    {"a = -9223372036854775809\n", NULL, 1, "integer out of range"},
    {"a = 0xFFFFFFFFFFFFFFFF\n", NULL, 1, "integer out of range"},
    {"a = 1979-05-27\n", NULL, 1, "dates and times are not supported"},
    {"a = 07:32:00\n", NULL, 1, "dates and times are not supported"},
    {"a = 1979-05-27T07:32:00Z\n", NULL, 1, "dates and times are not supported"},
    {"a = [1, 2\n", NULL, 2, "unterminated array"},
    {"a = [1 2]\n", NULL, 1, "expected ',' or ']'"},
    {"a = [1,,2]\n", NULL, 1, "expected a value"},
    {"t = {a = 1,}\n", NULL, 1, "trailing comma in an inline table"},
    {"t = {a = 1\n}\n", NULL, 1, "must close on the line it opens"},
    {"t = {\na = 1}\n", NULL, 1, "must close on the line it opens"},
    {"t = {a = 1, a = 2}\n", NULL, 1, "duplicate key \"a\""},
    {"t = {a = 1 b = 2}\n", NULL, 1, "expected ',' or '}'"},
    {"a = truely\n", NULL, 1, "expected a value"},
    {"a = tru\n", NULL, 1, "expected a value"},
    {"a = 1\rb = 2\n", NULL, 1, "unexpected"},
};

static void test_toml_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < PT_ARRAY_LEN(tcases); i++) {
        const struct tcase *c = &tcases[i];
        struct pt_arena a;
        struct pt_toml_value *root = NULL;
        char err[256];
        int line = -1;
        pt_arena_init(&a, 0);
        int rc = pt_toml_parse(&a, c->in, strlen(c->in), &root, &line, err, sizeof(err));
        if (c->want) {
            if (rc != PT_OK)
                fail_msg("case %zu: unexpected error at line %d: %s", i, line, err);
            dumped = 0;
            dumpbuf[0] = '\0';
            dump(root);
            if (strcmp(dumpbuf, c->want) != 0)
                fail_msg("case %zu:\n got  %s\n want %s", i, dumpbuf, c->want);
        } else {
            if (rc != PT_ERR)
                fail_msg("case %zu: parsed but expected \"%s\"", i, c->err);
            assert_null(root);
            if (line != c->err_line || !strstr(err, c->err))
                fail_msg("case %zu: got line %d \"%s\", want line %d \"%s\"", i, line, err,
                         c->err_line, c->err);
        }
        pt_arena_free(&a);
    }
}

/* Lines recorded on values, keys and tables; lookups. */
static void test_toml_lines_and_get(void **state)
{
    (void)state;
    static const char doc[] = "# c\n"
                              "top = 1\n"
                              "\n"
                              "[[r]]\n"
                              "  from = \"\"\"\n"
                              "x\n"
                              "\"\"\"\n"
                              "  to = 2\n"
                              "[t]\n";
    struct pt_arena a;
    struct pt_toml_value *root;
    char err[128];
    int line;
    pt_arena_init(&a, 0);
    assert_int_equal(pt_toml_parse(&a, doc, sizeof(doc) - 1, &root, &line, err, sizeof(err)),
                     PT_OK);
    assert_int_equal(pt_toml_get(root, "top")->line, 2);
    const struct pt_toml_value *r = pt_toml_get(root, "r");
    assert_non_null(r);
    assert_int_equal(r->type, PT_TOML_ARRAY);
    assert_int_equal(r->items[0]->line, 4);
    assert_int_equal(r->items[0]->kvs[0].line, 5);
    assert_int_equal(r->items[0]->kvs[1].line, 8);
    assert_int_equal(pt_toml_get(r->items[0], "to")->integer, 2);
    assert_int_equal(pt_toml_get(root, "t")->line, 9);
    assert_null(pt_toml_get(root, "missing"));
    assert_null(pt_toml_get(pt_toml_get(root, "top"), "x"));
    assert_string_equal(pt_toml_type_name(PT_TOML_TABLE), "table");
    assert_string_equal(pt_toml_type_name(PT_TOML_FLOAT), "float");
    pt_arena_free(&a);
}

static void test_toml_limits(void **state)
{
    (void)state;
    struct pt_arena a;
    struct pt_toml_value *root;
    char err[128];
    int line;
    pt_arena_init(&a, 0);
    char deep[256];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "a = ");
    for (int i = 0; i < PT_TOML_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < PT_TOML_MAX_DEPTH; i++)
        deep[n++] = ']';
    assert_int_equal(pt_toml_parse(&a, deep, n, &root, &line, err, sizeof(err)), PT_OK);
    n = (size_t)snprintf(deep, sizeof(deep), "a = ");
    for (int i = 0; i <= PT_TOML_MAX_DEPTH; i++)
        deep[n++] = '[';
    assert_int_equal(pt_toml_parse(&a, deep, n, &root, &line, err, sizeof(err)), PT_ERR);
    assert_non_null(strstr(err, "nested deeper than 32"));

    n = 0;
    for (int i = 0; i <= PT_TOML_MAX_DEPTH; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "%sk", i ? "." : "");
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, " = 1\n");
    assert_int_equal(pt_toml_parse(&a, deep, n, &root, &line, err, sizeof(err)), PT_ERR);
    assert_non_null(strstr(err, "key has more than 32 parts"));

    size_t cap = 64 * (PT_TOML_MAX_KEYS + 2), used = 0;
    char *many = malloc(cap);
    assert_non_null(many);
    for (int i = 0; i <= PT_TOML_MAX_KEYS; i++)
        used += (size_t)snprintf(many + used, cap - used, "k%d = %d\n", i, i);
    assert_int_equal(pt_toml_parse(&a, many, used, &root, &line, err, sizeof(err)), PT_ERR);
    assert_int_equal(line, PT_TOML_MAX_KEYS + 1);
    assert_non_null(strstr(err, "more than 4096 keys"));
    free(many);

    assert_int_equal(pt_toml_parse(&a, "", PT_TOML_MAX_BYTES + 1u, &root, &line, err, sizeof(err)),
                     PT_ERR);
    assert_int_equal(line, 0);
    assert_non_null(strstr(err, "file larger than"));
    pt_arena_free(&a);
}

/* ---- netlify.toml ----------------------------------------------------------------------- */

static const char netlify_example[] =
    "# netlify.toml for a static front end with an API\n"                /* 1 */
    "[build]\n"                                                          /* 2 */
    "  command = \"npm run build\"\n"                                    /* 3 */
    "  publish = \"dist\"\n"                                             /* 4 */
    "[build.environment]\n"                                              /* 5 */
    "  NODE_VERSION = \"20\"\n"                                          /* 6 */
    "\n"                                                                 /* 7 */
    "[[plugins]]\n"                                                      /* 8 */
    "  package = \"@example/plugin\"\n"                                  /* 9 */
    "\n"                                                                 /* 10 */
    "[[redirects]]\n"                                                    /* 11 */
    "  from = \"/old\"\n"                                                /* 12 */
    "  to = \"/new\"\n"                                                  /* 13 */
    "\n"                                                                 /* 14 */
    "[[redirects]]\n"                                                    /* 15 */
    "  from = \"/api/*\"\n"                                              /* 16 */
    "  to = \"http://127.0.0.1:9001/v1/:splat\"\n"                       /* 17 */
    "  status = 200\n"                                                   /* 18 */
    "  force = true\n"                                                   /* 19 */
    "  headers = {X-From = \"portico\", Authorization = \"Bearer t\"}\n" /* 20 */
    "\n"                                                                 /* 21 */
    "[[redirects]]\n"                                                    /* 22 */
    "  from = \"/store\"\n"                                              /* 23 */
    "  to = \"/products/:id\"\n"                                         /* 24 */
    "  status = 301\n"                                                   /* 25 */
    "  query = {id = \":id\", ref = \"mail\"}\n"                         /* 26 */
    "\n"                                                                 /* 27 */
    "[[redirects]]\n"                                                    /* 28 */
    "  from = \"/\"\n"                                                   /* 29 */
    "  to = \"/anz\"\n"                                                  /* 30 */
    "  status = 302\n"                                                   /* 31 */
    "  [redirects.conditions]\n"                                         /* 32 */
    "    Country = [\"AU\", \"nz\"]\n"                                   /* 33 */
    "    Language = [\"en\"]\n"                                          /* 34 */
    "    Cookie = [\"beta\", \"tester\"]\n"                              /* 35 */
    "\n"                                                                 /* 36 */
    "[[redirects]]\n"                                                    /* 37 */
    "  from = \"https://old.example.com/*\"\n"                           /* 38 */
    "  to = \"https://example.com/:splat\"\n"                            /* 39 */
    "  status = 301\n"                                                   /* 40 */
    "  force = true\n"                                                   /* 41 */
    "\n"                                                                 /* 42 */
    "[[redirects]]\n"                                                    /* 43 */
    "  from = \"/app/*\"\n"                                              /* 44 */
    "  status = 200\n"                                                   /* 45 */
    "\n"                                                                 /* 46 */
    "[[headers]]\n"                                                      /* 47 */
    "  for = \"/*\"\n"                                                   /* 48 */
    "  [headers.values]\n"                                               /* 49 */
    "    X-Frame-Options = \"DENY\"\n"                                   /* 50 */
    "    cache-control = '''\n"                                          /* 51 */
    "    max-age=0,\n"                                                   /* 52 */
    "    no-cache,\n"                                                    /* 53 */
    "    no-store,\n"                                                    /* 54 */
    "    must-revalidate'''\n"                                           /* 55 */
    "\n"                                                                 /* 56 */
    "[[headers]]\n"                                                      /* 57 */
    "  for = \"/assets/*\"\n"                                            /* 58 */
    "  values = {Cache-Control = \"public, max-age=31536000\", Link = [\"</a.css>; rel=preload\", "
    "\"</b.js>; rel=preload\"]}\n"       /* 59 */
    "\n"                                 /* 60 */
    "[context.production.environment]\n" /* 61 */
    "  X = \"y\"\n";                     /* 62 */

static void test_netlify_example(void **state)
{
    (void)state;
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_header_rules headers = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    assert_int_equal(pt_nf_parse_toml(&a, "netlify.toml", netlify_example,
                                      sizeof(netlify_example) - 1, &rules, &headers, &errs),
                     PT_OK);
    if (errs.n)
        fail_msg("unexpected: %s", errs.items[0].text);
    assert_int_equal(rules.n, 6);
    const struct pt_nf_rule *r = &rules.items[0];
    assert_string_equal(r->from, "/old");
    assert_string_equal(r->to, "/new");
    assert_int_equal(r->status, 301);
    assert_false(r->is_status_set);
    assert_false(r->is_force);
    assert_int_equal(r->line, 11);
    assert_string_equal(r->file, "netlify.toml");

    r = &rules.items[1];
    assert_int_equal(r->line, 15);
    assert_true(r->is_proxy);
    assert_true(r->is_force);
    assert_true(r->has_splat);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->n_headers, 2);
    assert_string_equal(r->headers[0].name, "X-From");
    assert_string_equal(r->headers[0].value, "portico");
    assert_string_equal(r->headers[1].name, "Authorization");
    assert_string_equal(r->headers[1].value, "Bearer t");

    r = &rules.items[2];
    assert_int_equal(r->n_query, 2);
    assert_string_equal(r->query[0].name, "id");
    assert_string_equal(r->query[0].value, "id");
    assert_true(r->query[0].is_placeholder);
    assert_string_equal(r->query[1].name, "ref");
    assert_string_equal(r->query[1].value, "mail");
    assert_false(r->query[1].is_placeholder);

    r = &rules.items[3];
    assert_int_equal(r->line, 28);
    assert_int_equal(r->n_countries, 2);
    assert_string_equal(r->countries[0], "au");
    assert_string_equal(r->countries[1], "nz");
    assert_int_equal(r->n_languages, 1);
    assert_string_equal(r->languages[0], "en");
    assert_int_equal(r->n_cookies, 2);
    assert_string_equal(r->cookies[1], "tester");

    r = &rules.items[4];
    assert_string_equal(r->from_host, "old.example.com");
    assert_string_equal(r->from_scheme, "https");
    assert_string_equal(r->from_path, "/*");
    assert_true(r->is_force);

    r = &rules.items[5];
    assert_string_equal(r->to, "/app/:splat");
    assert_true(r->is_rewrite);

    assert_int_equal(headers.n, 2);
    const struct pt_nf_header_rule *h = &headers.items[0];
    assert_string_equal(h->path, "/*");
    assert_int_equal(h->line, 47);
    assert_int_equal(h->n_headers, 2);
    assert_string_equal(h->headers[0].name, "X-Frame-Options");
    assert_string_equal(h->headers[1].name, "cache-control");
    assert_string_equal(h->headers[1].value, "max-age=0, no-cache, no-store, must-revalidate");
    h = &headers.items[1];
    assert_string_equal(h->path, "/assets/*");
    assert_string_equal(h->headers[0].value, "public, max-age=31536000");
    assert_string_equal(h->headers[1].name, "Link");
    assert_string_equal(h->headers[1].value, "</a.css>; rel=preload, </b.js>; rel=preload");

    /* Either list may be skipped. */
    struct pt_nf_rules only = {0};
    assert_int_equal(
        pt_nf_parse_toml(&a, "n", netlify_example, sizeof(netlify_example) - 1, &only, NULL, &errs),
        PT_OK);
    assert_int_equal(only.n, 6);
    pt_arena_free(&a);
}

struct ncase {
    const char *in;
    const char *errs; /* all error texts joined by '\n' */
    size_t n_rules;   /* rules + header rules loaded */
    int rc;
};

static const struct ncase ncases[] = {
    {"[build]\ncommand = 1\n", "", 0, PT_OK},
    {"redirects = []\n", "", 0, PT_OK},
    {"redirects = [{from = \"/a\", to = \"/b\"}]\n", "", 1, PT_OK},
    {"headers = [{for = \"/a\", values = {X = \"1\"}}]\n", "", 1, PT_OK},
    {"redirects = 1\n", "n:1: \"redirects\" must be an array of tables ([[redirects]])", 0, PT_OK},
    {"redirects = [1]\n", "n:1: entries of \"redirects\" must be tables", 0, PT_OK},
    {"[[redirects]]\nto = \"/b\"\n", "n:1: [[redirects]] entry without \"from\"", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\n", "n:1: missing \"to\" (only a 200 rule whose", 0, PT_OK},
    {"[[redirects]]\nfrom = 1\n", "n:2: \"from\" in [[redirects]] must be a string, not a integer",
     0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = \"301\"\n", "", 1, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = \"abc\"\n",
     "n:4: status \"abc\" is not a number", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = \"\"\n",
     "n:4: status \"\" is not a number", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = \"42\"\n",
     "n:4: status 42 is not an HTTP status", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = \"200!\"\n",
     "n:4: the '!' of status \"200!\" is ignored in netlify.toml, as on Netlify; write force = "
     "true to force the rule",
     1, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = true\n",
     "n:4: \"status\" in [[redirects]] must be a integer, not a boolean", 0, PT_OK},
    {"[[redirects]]\norigin = \"/a\"\ndestination = \"/b\"\n", "", 1, PT_OK},
    {"[[redirects]]\nparams = {a = \":a\"}\nfrom = \"/a\"\nto = \"/b\"\n", "", 1, PT_OK},
    {"[[redirects]]\norigin = 1\nto = \"/b\"\n",
     "n:2: \"origin\" in [[redirects]] must be a string, not a integer", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nsign = \"KEY\"\n",
     "n:4: signed proxy rules are not supported", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 42\n",
     "n:4: status 42 is not an HTTP status", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 299\n", "n:1: status 299 is not one of",
     0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nforce = \"yes\"\n",
     "n:4: \"force\" in [[redirects]] must be a boolean, not a string", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nFrom = \"/c\"\n",
     "n:4: unknown key \"From\" in [[redirects]]", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nsigned = \"KEY\"\n",
     "n:4: signed proxy rules are not supported", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nconditions = {Role = [\"admin\"]}\n",
     "n:4: Role conditions need Netlify Identity", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nconditions = {Planet = [\"x\"]}\n",
     "n:4: unknown condition \"Planet\"", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nconditions = {Country = [1]}\n",
     "n:4: Country condition values must be strings", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nconditions = {Country = []}\n",
     "n:4: empty Country condition", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nconditions = {country = \"us, ca\"}\n", "", 1,
     PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nconditions = {Country = [\"us\"], country = "
     "[\"ca\"]}\n",
     "n:4: Country condition given twice", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nquery = {id = 5}\n",
     "n:4: \"id\" in query must be a string, not a integer", 0, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b/:x\"\nquery = {id = \":id\"}\n", "", 1, PT_OK},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nheaders = {\"Bad Name\" = \"v\"}\n",
     "n:4: bad header name \"Bad Name\"", 0, PT_OK},
    {"[[headers]]\nvalues = {X = \"1\"}\n", "n:1: [[headers]] entry without \"for\"", 0, PT_OK},
    {"[[headers]]\nfor = \"/a\"\n", "n:1: [[headers]] entry without \"values\"", 0, PT_OK},
    {"[[headers]]\nfor = \"/a\"\nvalues = {}\n", "", 0, PT_OK},
    {"[[headers]]\nfor = \"a\"\nvalues = {X = \"1\"}\n",
     "n:2: \"for\" must be a path starting with '/'", 0, PT_OK},
    {"[[headers]]\nfor = \"/a b\"\nvalues = {X = \"1\"}\n",
     "n:2: blank or control character in \"for\"", 0, PT_OK},
    {"[[headers]]\nfor = \"/a\"\nvalues = {X = 1}\n",
     "n:3: header \"X\" must be a string or an array of strings", 0, PT_OK},
    {"[[headers]]\nfor = \"/a\"\nvalues = {X = \"\"}\n", "n:3: missing value for header \"X\"", 0,
     PT_OK},
    {"[[headers]]\nfor = \"/a\"\nvalues = {X = \"\"\"a\nb\"\"\"}\n",
     "n:3: line break in the value of header \"X\"", 0, PT_OK},
    {"[[headers]]\nfor = \"/a\"\n[headers.values]\nX = \"\"\"a\nb\"\"\"\n",
     "n:4: line break in the value of header \"X\"", 0, PT_OK},
    {"[[headers]]\nfor = \"/a\"\nvalue = {X = \"1\"}\n",
     "n:3: unknown key \"value\" in [[headers]]", 0, PT_OK},
    /* a bad entry is skipped, the others load */
    {"[[redirects]]\nfrom = \"/1\"\nto = \"/x\"\n"
     "[[redirects]]\nfrom = \"/2\"\n"
     "[[redirects]]\nfrom = \"/3\"\nto = \"/y\"\nstatus = 302\n"
     "[[headers]]\nfor = \"/h\"\nvalues = {A = \"1\"}\n"
     "[[headers]]\nfor = \"/h2\"\n",
     "n:4: missing \"to\" (only a 200 rule whose \"from\" ends in /* may leave it out)\n"
     "n:13: [[headers]] entry without \"values\"",
     3, PT_OK},
    /* syntax errors refuse the file */
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\n[[redirects]]\nfrom = /c\n",
     "n:5: expected a value (strings need quotes)", 0, PT_ERR},
    {"[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\n[redirects]\n", "n:4: table defined twice", 0,
     PT_ERR},
    {"a = 2024-01-01\n", "n:1: dates and times are not supported", 0, PT_ERR},
};

static void test_netlify_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < PT_ARRAY_LEN(ncases); i++) {
        const struct ncase *c = &ncases[i];
        struct pt_arena a;
        struct pt_nf_rules rules = {0};
        struct pt_nf_header_rules headers = {0};
        struct pt_nf_errors errs = {0};
        pt_arena_init(&a, 0);
        int rc = pt_nf_parse_toml(&a, "n", c->in, strlen(c->in), &rules, &headers, &errs);
        char all[2048];
        pt_nf_errors_format(&errs, all, sizeof(all));
        size_t al = strlen(all);
        if (al && all[al - 1] == '\n')
            all[al - 1] = '\0';
        bool errs_ok = c->errs[0] ? strncmp(all, c->errs, strlen(c->errs)) == 0 : all[0] == '\0';
        if (c->rc == PT_ERR && c->errs[0] == '\0')
            errs_ok = errs.n == 1;
        if (rc != c->rc || !errs_ok || rules.n + headers.n != c->n_rules)
            fail_msg("case %zu: rc %d, %zu rules, errors:\n%s\nwant rc %d, %zu rules, errors:\n%s",
                     i, rc, rules.n + headers.n, all, c->rc, c->n_rules, c->errs);
        pt_arena_free(&a);
    }
}

/* What netlify-redirect-parser makes of the legacy keys and of a string status. */
static void test_netlify_compat(void **state)
{
    (void)state;
    static const char in[] = "[[redirects]]\n" /* 1: legacy names */
                             "origin = \"/old/:id\"\n"
                             "destination = \"/new/:id/:q\"\n"
                             "params = {q = \":q\"}\n"
                             "status = \"302\"\n"
                             "[[redirects]]\n" /* 2: the current name wins over the legacy one */
                             "destination = \"/never\"\n"
                             "from = \"/a\"\n"
                             "origin = \"/never\"\n"
                             "to = \"/b\"\n"
                             "parameters = {p = \"1\"}\n"
                             "query = {x = \"y\"}\n"
                             "status = \" 200!\"\n"
                             "[[redirects]]\n" /* 3: parameters alone; parseInt-style status */
                             "from = \"/c\"\n"
                             "to = \"/d\"\n"
                             "parameters = {p = \"1\"}\n"
                             "status = \"307 temporary\"\n"
                             "force = true\n";
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    assert_int_equal(pt_nf_parse_toml(&a, "n", in, sizeof(in) - 1, &rules, NULL, &errs), PT_OK);
    assert_int_equal(rules.n, 3);
    assert_int_equal(errs.n, 1); /* the '!' warning; the rule still loads */
    assert_int_equal(errs.items[0].line, 13);
    const struct pt_nf_rule *r = &rules.items[0];
    assert_string_equal(r->from, "/old/:id");
    assert_string_equal(r->to, "/new/:id/:q");
    assert_int_equal(r->status, 302);
    assert_false(r->is_force);
    assert_int_equal(r->n_query, 1);
    assert_string_equal(r->query[0].name, "q");
    assert_true(r->query[0].is_placeholder);
    r = &rules.items[1];
    assert_string_equal(r->from, "/a");
    assert_string_equal(r->to, "/b");
    assert_int_equal(r->status, 200);
    assert_false(r->is_force); /* Netlify ignores the '!' of a string status */
    assert_true(r->is_rewrite);
    assert_int_equal(r->n_query, 1);
    assert_string_equal(r->query[0].name, "x");
    assert_string_equal(r->query[0].value, "y");
    r = &rules.items[2];
    assert_int_equal(r->status, 307);
    assert_true(r->is_force);
    assert_int_equal(r->n_query, 1);
    assert_string_equal(r->query[0].name, "p");
    pt_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toml_cases),    cmocka_unit_test(test_toml_lines_and_get),
        cmocka_unit_test(test_toml_limits),   cmocka_unit_test(test_netlify_example),
        cmocka_unit_test(test_netlify_cases), cmocka_unit_test(test_netlify_compat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
