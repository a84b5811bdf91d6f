/*
 * test_static.c - the static-file decision (src/handler/static.c).
 *
 * A temporary tree is built with mkdtemp(): files, a subdirectory with an index, a directory
 * without one, dotfiles, /.well-known, symlinks inside and outside the root, precompressed
 * siblings, a 404.html, a FIFO and a file whose name holds '%'. A second temporary directory
 * beside it holds the "secret" that no request may ever read. Every test checks that the
 * number of open descriptors is the same after it as before (no fd leak on any path), and the
 * body of every answer is read back from the returned descriptor at the returned offset.
 *
 * The decision tests run three times: without the open-file cache (now_ms 0), with a clock
 * that jumps past PT_STATIC_CACHE_VALID_MS before every request (every lookup revalidates an
 * entry), and with a clock that stands still (every repeated lookup is a hit; the cache is
 * flushed between tests). The test_cache_* tests drive the cache's clock themselves.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "handler/static.h"
#include "http/date.h"
#include "http/h1_parse.h"

static char base[64]; /* mkdtemp: holds root/ and outside/ */
static char rootdir[96];
static struct pt_static_root *r_def;    /* defaults + cache_control */
static struct pt_static_root *r_spa;    /* spa: true */
static struct pt_static_root *r_allow;  /* dotfiles: allow */
static struct pt_static_root *r_ignore; /* dotfiles: ignore */
static struct pt_static_root *r_plain;  /* precompressed off, no 404 page, index list */
static int fds_at_start;

enum { MODE_UNCACHED, MODE_REVALIDATE, MODE_HITS };
static int mode;          /* how go() sets now_ms when the request has none */
static uint64_t clock_ms; /* the cache clock go() hands out */

static struct pt_static_result R;
static char H[2048];
static char body_buf[256];

#define S(lit) ((struct pt_str){(lit), sizeof(lit) - 1})

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void put_file(const char *rel, const char *content)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void mk(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void ln(const char *target, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    assert_int_equal(symlink(target, p), 0);
}

static struct pt_static_root *open_root(struct pt_static_settings *s)
{
    struct pt_static_root *root = NULL;
    char err[256];
    s->root = rootdir;
    int rc = pt_static_root_open(s, &root, err, sizeof(err));
    if (rc != 0)
        fail_msg("root open: %s", err);
    return root;
}

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/pt_static_XXXXXX");
    if (!mkdtemp(base))
        return -1;
    snprintf(rootdir, sizeof(rootdir), "%s/root", base);
    mk("root");
    mk("outside");
    put_file("outside/secret.txt", "TOP SECRET\n");
    put_file("root/index.html", "<h1>home</h1>\n");
    put_file("root/hello.txt", "0123456789");
    put_file("root/empty.txt", "");
    put_file("root/app.js", "console.log('plain');\n");
    put_file("root/app.js.gz", "GZ");
    put_file("root/app.js.br", "BR");
    put_file("root/app.js.zst", "ZS");
    put_file("root/style.css", "body{}\n");
    put_file("root/style.css.gz", "CSSGZ");
    put_file("root/404.html", "not here\n");
    put_file("root/a%b.txt", "percent");
    put_file("root/data.bin", "\x01\x02");
    put_file("root/.env", "SECRET=1\n");
    mk("root/.git");
    put_file("root/.git/config", "[core]\n");
    mk("root/.well-known");
    put_file("root/.well-known/acme", "token");
    mk("root/sub");
    put_file("root/sub/index.html", "sub index\n");
    put_file("root/sub/.hidden", "hidden\n");
    mk("root/sub/deeper");
    put_file("root/sub/deeper/page.htm", "deep\n");
    mk("root/emptydir");
    mk("root/sp ace");
    put_file("root/sp ace/index.html", "space\n");
    mk("root/a");
    put_file("root/a/b", "a slash b");
    mk("root/alt");
    put_file("root/alt/default.htm", "alt default\n");
    ln("hello.txt", "root/link-in");
    ln("../hello.txt", "root/sub/link-up-inside");
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/outside/secret.txt", base);
    ln(p, "root/link-abs-out");
    ln("../outside/secret.txt", "root/link-rel-out");
    ln("../outside", "root/dirlink-out");
    ln("/etc/passwd", "root/passwd");
    snprintf(p, sizeof(p), "%s/root/fifo", base);
    if (mkfifo(p, 0644) != 0)
        return -1;

    struct pt_static_settings s;
    pt_static_settings_init(&s);
    s.cache_control = "public, max-age=60";
    r_def = open_root(&s);
    pt_static_settings_init(&s);
    s.spa = true;
    r_spa = open_root(&s);
    pt_static_settings_init(&s);
    s.dotfiles = PT_STATIC_DOT_ALLOW;
    r_allow = open_root(&s);
    pt_static_settings_init(&s);
    s.dotfiles = PT_STATIC_DOT_IGNORE;
    r_ignore = open_root(&s);
    pt_static_settings_init(&s);
    s.precompressed = false;
    s.not_found_page = NULL;
    s.index[0] = "default.htm";
    s.index[1] = "index.html";
    s.n_index = 2;
    r_plain = open_root(&s);
    fds_at_start = count_fds();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pt_static_root_free(r_def);
    pt_static_root_free(r_spa);
    pt_static_root_free(r_allow);
    pt_static_root_free(r_ignore);
    pt_static_root_free(r_plain);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

/* Checked after every test: whatever happened, nothing is left open. */
static int check_fds(void **state)
{
    (void)state;
    if (R.fd >= 0)
        pt_static_result_release(&R);
    R.fd = -1;
    pt_static_cache_flush();
    int n = count_fds();
    if (n != fds_at_start) {
        fprintf(stderr, "fd leak: %d open, %d at start\n", n, fds_at_start);
        return -1;
    }
    return 0;
}

static struct pt_static_request get(const char *path)
{
    struct pt_static_request q;
    memset(&q, 0, sizeof(q));
    q.method = PT_METHOD_GET;
    q.path = (struct pt_str){path, strlen(path)};
    return q;
}

static int go(const struct pt_static_root *root, const struct pt_static_request *q)
{
    struct pt_static_request qq = *q;
    if (!qq.now_ms && mode != MODE_UNCACHED) {
        if (mode == MODE_REVALIDATE)
            clock_ms += PT_STATIC_CACHE_VALID_MS + 1;
        qq.now_ms = clock_ms;
    }
    memset(&R, 0, sizeof(R));
    R.hdr = H;
    R.hdr_cap = sizeof(H) - 1;
    int rc = pt_static_resolve(root, &qq, &R);
    H[R.hdr_len] = '\0';
    return rc;
}

/* Resolves a GET for path and returns the status. */
static int get_status(const struct pt_static_root *root, const char *path)
{
    struct pt_static_request q = get(path);
    assert_int_equal(go(root, &q), 0);
    return R.status;
}

/* The value of header name in H (NULL when absent), NUL-terminated in a static buffer. */
static const char *hv(const char *name)
{
    static char val[512];
    size_t nl = strlen(name);
    const char *p = H;
    while (*p) {
        const char *e = strstr(p, "\r\n");
        assert_non_null(e);
        if ((size_t)(e - p) > nl + 2 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            size_t vl = (size_t)(e - p) - nl - 2;
            memcpy(val, p + nl + 2, vl);
            val[vl] = '\0';
            return val;
        }
        p = e + 2;
    }
    return NULL;
}

/* Reads the window [offset, offset + length) of R.fd, closes it, returns the bytes. */
static const char *body(void)
{
    assert_true(R.fd >= 0);
    assert_true(R.length < sizeof(body_buf));
    ssize_t n = pread(R.fd, body_buf, R.length, (off_t)R.offset);
    assert_int_equal(n, (ssize_t)R.length);
    body_buf[n] = '\0';
    pt_static_result_release(&R);
    return body_buf;
}

static void expect_body(const struct pt_static_root *root, const char *path, int status,
                        const char *want)
{
    assert_int_equal(get_status(root, path), status);
    assert_string_equal(body(), want);
}

static void expect_no_body(int status)
{
    assert_int_equal(R.status, status);
    assert_int_equal(R.fd, -1);
}

static void test_get_file(void **state)
{
    (void)state;
    expect_body(r_def, "/hello.txt", 200, "0123456789");
    assert_string_equal(hv("Content-Type"), "text/plain; charset=utf-8");
    assert_string_equal(hv("Content-Length"), "10");
    assert_int_equal(R.cl_line_len, strlen("Content-Length: 10\r\n"));
    assert_memory_equal(H, "Content-Length: 10\r\n", R.cl_line_len);
    assert_string_equal(hv("Accept-Ranges"), "bytes");
    assert_string_equal(hv("Cache-Control"), "public, max-age=60");
    assert_null(hv("Vary"));
    assert_null(hv("Content-Encoding"));
    assert_false(R.is_error_page);

    struct stat st;
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/hello.txt", rootdir);
    assert_int_equal(stat(p, &st), 0);
    char etag[80];
    snprintf(etag, sizeof(etag), "\"%llx-%llx-%llx\"", (unsigned long long)st.st_ino, 10ULL,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec);
    assert_string_equal(hv("ETag"), etag);
    time_t t;
    const char *lm = hv("Last-Modified");
    assert_int_equal(pt_http_date_parse(lm, strlen(lm), &t), 0);
    assert_int_equal(t, st.st_mtim.tv_sec);

    expect_body(r_def, "/index.html", 200, "<h1>home</h1>\n");
    assert_string_equal(hv("Content-Type"), "text/html; charset=utf-8");
    expect_body(r_def, "/data.bin", 200, "\x01\x02");
    assert_string_equal(hv("Content-Type"), "application/octet-stream");
    expect_body(r_def, "/empty.txt", 200, "");
    assert_string_equal(hv("Content-Length"), "0");
    expect_body(r_def, "/sub/deeper/page.htm", 200, "deep\n");
    expect_body(r_def, "/a%25b.txt", 200, "percent"); /* %25 is a literal '%' */
}

static void test_head(void **state)
{
    (void)state;
    struct pt_static_request q = get("/hello.txt");
    q.method = PT_METHOD_HEAD;
    assert_int_equal(go(r_def, &q), 0);
    expect_no_body(200);
    assert_int_equal(R.length, 10);
    assert_string_equal(hv("Content-Length"), "10");
    assert_non_null(hv("ETag"));
    /* Range is ignored for HEAD (defined for GET only). */
    q.range = S("bytes=0-1");
    assert_int_equal(go(r_def, &q), 0);
    expect_no_body(200);
    assert_null(hv("Content-Range"));
    /* HEAD of the 404 page: headers, no descriptor. */
    q.path = S("/nope");
    assert_int_equal(go(r_def, &q), 0);
    expect_no_body(404);
    assert_false(R.is_error_page);
    assert_string_equal(hv("Content-Length"), "9");
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    int methods[] = {PT_METHOD_POST, PT_METHOD_PUT, PT_METHOD_DELETE, PT_METHOD_OPTIONS,
                     PT_METHOD_OTHER};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct pt_static_request q = get("/hello.txt");
        q.method = methods[i];
        assert_int_equal(go(r_def, &q), 0);
        expect_no_body(405);
        assert_true(R.is_error_page);
        assert_string_equal(hv("Allow"), "GET, HEAD");
        assert_int_equal(R.cl_line_len, 0);
    }
}

static void test_directory_redirect(void **state)
{
    (void)state;
    assert_int_equal(get_status(r_def, "/sub"), 301);
    assert_int_equal(R.fd, -1);
    assert_string_equal(hv("Location"), "/sub/");
    assert_string_equal(H, "Location: /sub/\r\n");
    assert_int_equal(get_status(r_def, "/sub/deeper"), 301);
    assert_string_equal(hv("Location"), "/sub/deeper/");

    struct pt_static_request q = get("/sub");
    q.query = S("a=1&b=%2F");
    assert_int_equal(go(r_def, &q), 0);
    assert_string_equal(hv("Location"), "/sub/?a=1&b=%2F");
    q.mount = S("/assets");
    assert_int_equal(go(r_def, &q), 0);
    assert_string_equal(hv("Location"), "/assets/sub/?a=1&b=%2F");
    q.mount = S("/assets/");
    q.query = (struct pt_str){NULL, 0};
    assert_int_equal(go(r_def, &q), 0);
    assert_string_equal(hv("Location"), "/assets/sub/");
    /* The decoded path is encoded again for the wire. */
    assert_int_equal(get_status(r_def, "/sp ace"), 301);
    assert_string_equal(hv("Location"), "/sp%20ace/");
    /* /.well-known is a directory like any other. */
    assert_int_equal(get_status(r_def, "/.well-known"), 301);
    assert_string_equal(hv("Location"), "/.well-known/");
}

static void test_directory_index(void **state)
{
    (void)state;
    expect_body(r_def, "/", 200, "<h1>home</h1>\n");
    assert_string_equal(hv("Content-Type"), "text/html; charset=utf-8");
    expect_body(r_def, "/sub/", 200, "sub index\n");
    expect_body(r_def, "/sp ace/", 200, "space\n");
    /* No index: 404 (no listings), with the site's 404 page. */
    expect_body(r_def, "/emptydir/", 404, "not here\n");
    expect_body(r_def, "/sub/deeper/", 404, "not here\n");
    /* Index list: the first that exists. */
    expect_body(r_plain, "/alt/", 200, "alt default\n");
    expect_body(r_plain, "/sub/", 200, "sub index\n");
    /* A file with a trailing slash is not a directory. */
    expect_body(r_def, "/hello.txt/", 404, "not here\n");
}

static void test_not_found_page(void **state)
{
    (void)state;
    expect_body(r_def, "/missing.html", 404, "not here\n");
    assert_false(R.is_error_page);
    assert_string_equal(hv("Content-Type"), "text/html; charset=utf-8");
    assert_string_equal(hv("Content-Length"), "9");
    assert_null(hv("ETag"));
    expect_body(r_def, "/no/such/dir/file", 404, "not here\n");
    /* No 404 page configured: the caller writes its own. */
    assert_int_equal(get_status(r_plain, "/missing.html"), 404);
    expect_no_body(404);
    assert_true(R.is_error_page);
    assert_int_equal(R.hdr_len, 0);
}

static void test_spa(void **state)
{
    (void)state;
    struct pt_static_request q = get("/app/route/42");
    q.accept = S("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
    assert_int_equal(go(r_spa, &q), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(body(), "<h1>home</h1>\n");
    assert_string_equal(hv("Content-Type"), "text/html; charset=utf-8");
    q.accept = S("TEXT/HTML;level=1;q=0.5");
    assert_int_equal(go(r_spa, &q), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(body(), "<h1>home</h1>\n");
    /* Not for clients that do not ask for HTML. */
    const struct pt_str no[] = {S("*/*"), S("application/json"), S("text/html;q=0"),
                                S("text/htmlx"), S("text/*")};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        q.accept = no[i];
        assert_int_equal(go(r_spa, &q), 0);
        assert_int_equal(R.status, 404);
        assert_string_equal(body(), "not here\n");
    }
    q.accept = (struct pt_str){NULL, 0};
    assert_int_equal(go(r_spa, &q), 0);
    assert_int_equal(R.status, 404);
    assert_string_equal(body(), "not here\n");
    /* Existing files are still themselves. */
    q = get("/hello.txt");
    q.accept = S("text/html");
    assert_int_equal(go(r_spa, &q), 0);
    assert_string_equal(body(), "0123456789");
    /* spa off: 404 even for HTML readers. */
    q = get("/app/route");
    q.accept = S("text/html");
    assert_int_equal(go(r_def, &q), 0);
    assert_int_equal(R.status, 404);
    assert_string_equal(body(), "not here\n");
}

static void test_dotfiles(void **state)
{
    (void)state;
    const char *dots[] = {"/.env",     "/.git/config",    "/.git/",
                          "/.git",     "/sub/.hidden",    "/.nothing",
                          "/sub/.x/y", "/.well-known/.x", "/sub/.well-known/x"};
    for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
        assert_int_equal(get_status(r_def, dots[i]), 403); /* deny */
        expect_no_body(403);
        assert_true(R.is_error_page);
        assert_int_equal(get_status(r_ignore, dots[i]), 404); /* ignore: as if missing */
        if (R.fd >= 0)
            assert_string_equal(body(), "not here\n");
    }
    /* /.well-known/ is always allowed. */
    expect_body(r_def, "/.well-known/acme", 200, "token");
    expect_body(r_ignore, "/.well-known/acme", 200, "token");
    /* allow */
    expect_body(r_allow, "/.env", 200, "SECRET=1\n");
    expect_body(r_allow, "/.git/config", 200, "[core]\n");
    expect_body(r_allow, "/sub/.hidden", 200, "hidden\n");
    /* ignore + spa: a dotfile is an unknown path */
    struct pt_static_settings s;
    pt_static_settings_init(&s);
    s.spa = true;
    s.dotfiles = PT_STATIC_DOT_IGNORE;
    struct pt_static_root *r = open_root(&s);
    struct pt_static_request q = get("/.env");
    q.accept = S("text/html");
    assert_int_equal(go(r, &q), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(body(), "<h1>home</h1>\n");
    pt_static_root_free(r);
}

/* Paths that must never reach a file outside the root, nor a different file. */
static void test_traversal(void **state)
{
    (void)state;
    const char *hostile[] = {
        "/..",
        "/../",
        "/../etc/passwd",
        "/a/../../x",
        "/%2e%2e/x",
        "/%2E%2E/x",
        "/..%2Fx",
        "/..%2F..%2Fetc",
        "/a%2Fb",
        "/a%2fb",
        "//etc/passwd",
        "/./hello.txt",
        "/sub/./",
        "/sub/../index.html",
        "/%00",
        "/hello.txt%00",
        "/%",
        "/%2",
        "/x%41",
        "",
        "hello.txt",
        "/passwd",
        "/link-abs-out",
        "/link-rel-out",
        "/dirlink-out/secret.txt",
        "/dirlink-out/",
        "/dirlink-out",
        "/fifo",
        "/sub/link-up-inside/",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        struct pt_static_request q = get(hostile[i]);
        assert_int_equal(go(r_plain, &q), 0);
        if (R.status != 404)
            fail_msg("%s: status %d", hostile[i], R.status);
        assert_int_equal(R.fd, -1);
        /* With the 404 page: only the 404 page's bytes come back. */
        assert_int_equal(go(r_def, &q), 0);
        assert_int_equal(R.status, 404);
        assert_string_equal(body(), "not here\n");
    }
    /* An embedded NUL (length counts it) is refused, not truncated. */
    struct pt_static_request q = get("/hello.txt");
    q.path = (struct pt_str){"/hello.txt\0.png", 15};
    assert_int_equal(go(r_plain, &q), 0);
    expect_no_body(404);
    /* Symlinks that stay inside the root are fine. */
    expect_body(r_def, "/link-in", 200, "0123456789");
    expect_body(r_def, "/sub/link-up-inside", 200, "0123456789");
    /* A root-relative path longer than PATH_MAX is just missing. */
    static char longp[PATH_MAX + 64];
    longp[0] = '/';
    for (size_t i = 1; i < sizeof(longp) - 1; i++)
        longp[i] = (i % 100 == 0) ? '/' : 'x';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(get_status(r_plain, longp), 404);
}

/* The O_NOFOLLOW walk used when openat2 is missing: same answers, but no symlinks at all. */
static void test_walk_fallback(void **state)
{
    (void)state;
    pt_static_set_force_walk(true);
    expect_body(r_def, "/hello.txt", 200, "0123456789");
    expect_body(r_def, "/sub/deeper/page.htm", 200, "deep\n");
    expect_body(r_def, "/sub/", 200, "sub index\n");
    expect_body(r_def, "/", 200, "<h1>home</h1>\n");
    assert_int_equal(get_status(r_def, "/sub"), 301);
    const char *refused[] = {
        "/link-in", "/link-abs-out",       "/link-rel-out", "/dirlink-out/secret.txt",
        "/passwd",  "/sub/link-up-inside", "/fifo"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(get_status(r_plain, refused[i]), 404);
        assert_int_equal(R.fd, -1);
    }
    expect_body(r_def, "/nope", 404, "not here\n");
    pt_static_set_force_walk(false);
}

static void test_precompressed(void **state)
{
    (void)state;
    struct {
        const char *ae; /* NULL: header absent */
        const char *want_body;
        const char *want_enc; /* NULL: none */
    } cases[] = {
        {NULL, "console.log('plain');\n", NULL},
        {"gzip, deflate, br, zstd", "BR", "br"},
        {"gzip", "GZ", "gzip"},
        {"x-gzip", "GZ", "gzip"},
        {"zstd", "ZS", "zstd"},
        {"br;q=0, gzip", "GZ", "gzip"},
        {"br;q=0.5, gzip;q=0.8", "GZ", "gzip"},
        {"br;q=0.5, zstd;q=0.5, gzip;q=0.4", "BR", "br"},
        {"*", "BR", "br"},
        {"*;q=0, gzip", "GZ", "gzip"},
        {"br;q=0, *", "ZS", "zstd"},
        {"gzip;q=0, br;q=0, zstd;q=0", "console.log('plain');\n", NULL},
        {"identity", "console.log('plain');\n", NULL},
        {"deflate", "console.log('plain');\n", NULL},
        {"", "console.log('plain');\n", NULL},
        {"BR", "BR", "br"},
        {"gzip;q=bad", "console.log('plain');\n", NULL},
    };
    char etag_plain[80] = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pt_static_request q = get("/app.js");
        if (cases[i].ae)
            q.accept_encoding = (struct pt_str){cases[i].ae, strlen(cases[i].ae)};
        assert_int_equal(go(r_def, &q), 0);
        assert_int_equal(R.status, 200);
        assert_string_equal(hv("Content-Type"), "text/javascript; charset=utf-8");
        assert_string_equal(hv("Vary"), "Accept-Encoding");
        if (cases[i].want_enc) {
            assert_non_null(hv("Content-Encoding"));
            assert_string_equal(hv("Content-Encoding"), cases[i].want_enc);
            assert_string_not_equal(hv("ETag"), etag_plain);
        } else {
            assert_null(hv("Content-Encoding"));
            snprintf(etag_plain, sizeof(etag_plain), "%s", hv("ETag"));
        }
        assert_string_equal(body(), cases[i].want_body);
    }
    /* A sibling exists, but not one the client takes: Vary all the same. */
    struct pt_static_request q = get("/style.css");
    q.accept_encoding = S("br");
    assert_int_equal(go(r_def, &q), 0);
    assert_string_equal(hv("Vary"), "Accept-Encoding");
    assert_null(hv("Content-Encoding"));
    assert_string_equal(body(), "body{}\n");
    q.accept_encoding = S("gzip");
    assert_int_equal(go(r_def, &q), 0);
    assert_string_equal(body(), "CSSGZ");
    assert_string_equal(hv("Content-Type"), "text/css; charset=utf-8");
    /* No sibling: no Vary. precompressed off: no sibling, no Vary. */
    q = get("/hello.txt");
    q.accept_encoding = S("gzip, br");
    assert_int_equal(go(r_def, &q), 0);
    assert_null(hv("Vary"));
    assert_string_equal(body(), "0123456789");
    q = get("/app.js");
    q.accept_encoding = S("gzip, br");
    assert_int_equal(go(r_plain, &q), 0);
    assert_null(hv("Vary"));
    assert_null(hv("Content-Encoding"));
    assert_string_equal(body(), "console.log('plain');\n");
    /* Ranges apply to the encoded bytes. */
    q = get("/app.js");
    q.accept_encoding = S("br");
    q.range = S("bytes=1-");
    assert_int_equal(go(r_def, &q), 0);
    assert_int_equal(R.status, 206);
    assert_string_equal(hv("Content-Range"), "bytes 1-1/2");
    assert_string_equal(body(), "R");
}

static void test_conditionals(void **state)
{
    (void)state;
    char etag[80], lm[64], weak[90], list[200];
    assert_int_equal(get_status(r_def, "/hello.txt"), 200);
    snprintf(etag, sizeof(etag), "%s", hv("ETag"));
    snprintf(lm, sizeof(lm), "%s", hv("Last-Modified"));
    snprintf(weak, sizeof(weak), "W/%s", etag);
    snprintf(list, sizeof(list), "\"nope\", W/\"x\",%s , \"y\"", etag);
    time_t t;
    assert_int_equal(pt_http_date_parse(lm, strlen(lm), &t), 0);
    char before[64], after[64];
    struct tm tm;
    time_t tb = t - 1, ta = t + 3600;
    strftime(before, sizeof(before), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&tb, &tm));
    strftime(after, sizeof(after), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&ta, &tm));
    pt_static_result_release(&R);

    struct {
        const char *im, *ius, *inm, *ims, *range;
        int method;
        int want;
    } cases[] = {
        {NULL, NULL, etag, NULL, NULL, PT_METHOD_GET, 304},
        {NULL, NULL, etag, NULL, NULL, PT_METHOD_HEAD, 304},
        {NULL, NULL, weak, NULL, NULL, PT_METHOD_GET, 304}, /* weak comparison */
        {NULL, NULL, list, NULL, NULL, PT_METHOD_GET, 304},
        {NULL, NULL, "*", NULL, NULL, PT_METHOD_GET, 304},
        {NULL, NULL, "\"other\"", NULL, NULL, PT_METHOD_GET, 200},
        {NULL, NULL, "garbage", NULL, NULL, PT_METHOD_GET, 200},
        {NULL, NULL, etag, NULL, "bytes=0-1", PT_METHOD_GET, 304},
        {NULL, NULL, NULL, lm, NULL, PT_METHOD_GET, 304},
        {NULL, NULL, NULL, after, NULL, PT_METHOD_GET, 304},
        {NULL, NULL, NULL, before, NULL, PT_METHOD_GET, 200},
        {NULL, NULL, NULL, "yesterday", NULL, PT_METHOD_GET, 200},
        {NULL, NULL, "\"other\"", lm, NULL, PT_METHOD_GET, 200}, /* IMS ignored with INM */
        {etag, NULL, NULL, NULL, NULL, PT_METHOD_GET, 200},
        {"*", NULL, NULL, NULL, NULL, PT_METHOD_GET, 200},
        {list, NULL, NULL, NULL, NULL, PT_METHOD_GET, 200},
        {weak, NULL, NULL, NULL, NULL, PT_METHOD_GET, 412}, /* strong comparison */
        {"\"other\"", NULL, NULL, NULL, NULL, PT_METHOD_GET, 412},
        {"\"other\"", NULL, etag, NULL, NULL, PT_METHOD_GET, 412},
        {NULL, before, NULL, NULL, NULL, PT_METHOD_GET, 412},
        {NULL, lm, NULL, NULL, NULL, PT_METHOD_GET, 200},
        {NULL, after, NULL, NULL, "bytes=0-1", PT_METHOD_GET, 206},
        {etag, before, NULL, NULL, NULL, PT_METHOD_GET, 200}, /* IUS ignored with If-Match */
        {NULL, "junk", NULL, NULL, NULL, PT_METHOD_GET, 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pt_static_request q = get("/hello.txt");
        q.method = cases[i].method;
#define SET(f, v)                                                                                  \
    if (v)                                                                                         \
    q.f = (struct pt_str){(v), strlen(v)}
        SET(if_match, cases[i].im);
        SET(if_unmodified_since, cases[i].ius);
        SET(if_none_match, cases[i].inm);
        SET(if_modified_since, cases[i].ims);
        SET(range, cases[i].range);
#undef SET
        assert_int_equal(go(r_def, &q), 0);
        if (R.status != cases[i].want)
            fail_msg("case %zu: status %d, want %d", i, R.status, cases[i].want);
        if (R.status == 304) {
            assert_int_equal(R.fd, -1);
            assert_int_equal(R.cl_line_len, 0);
            assert_null(hv("Content-Length"));
            assert_string_equal(hv("ETag"), etag);
            assert_string_equal(hv("Last-Modified"), lm);
            assert_string_equal(hv("Cache-Control"), "public, max-age=60");
            assert_false(R.is_error_page);
        } else if (R.status == 412) {
            expect_no_body(412);
            assert_true(R.is_error_page);
        } else if (R.fd >= 0) {
            body();
        }
    }
    /* 304 keeps Vary when a sibling exists. */
    struct pt_static_request q = get("/app.js");
    q.accept_encoding = S("br");
    assert_int_equal(go(r_def, &q), 0);
    snprintf(etag, sizeof(etag), "%s", hv("ETag"));
    body();
    q.if_none_match = (struct pt_str){etag, strlen(etag)};
    assert_int_equal(go(r_def, &q), 0);
    expect_no_body(304);
    assert_string_equal(hv("Vary"), "Accept-Encoding");
}

static void test_ranges(void **state)
{
    (void)state;
    struct {
        const char *range;
        int status;
        const char *body;          /* 200/206 */
        const char *content_range; /* NULL: absent */
    } cases[] = {
        {"bytes=0-0", 206, "0", "bytes 0-0/10"},
        {"bytes=2-5", 206, "2345", "bytes 2-5/10"},
        {"bytes=5-", 206, "56789", "bytes 5-9/10"},
        {"bytes=-3", 206, "789", "bytes 7-9/10"},
        {"bytes=-10", 206, "0123456789", "bytes 0-9/10"},
        {"bytes=-20", 206, "0123456789", "bytes 0-9/10"},
        {"bytes=9-9", 206, "9", "bytes 9-9/10"},
        {"bytes=3-100", 206, "3456789", "bytes 3-9/10"},
        {"bytes=0-99999999999999999999999", 206, "0123456789", "bytes 0-9/10"},
        {"bytes=-99999999999999999999999", 206, "0123456789", "bytes 0-9/10"},
        {"BYTES=1-2", 206, "12", "bytes 1-2/10"},
        {"bytes= 1-2 ", 206, "12", "bytes 1-2/10"},
        {"bytes=1-2,", 206, "12", "bytes 1-2/10"},
        {"bytes=,,1-2", 206, "12", "bytes 1-2/10"},
        {"bytes=-0", 416, NULL, "bytes */10"},
        {"bytes=10-", 416, NULL, "bytes */10"},
        {"bytes=10-20", 416, NULL, "bytes */10"},
        {"bytes=99999999999999999999999-", 416, NULL, "bytes */10"},
        {"bytes=18446744073709551615-", 416, NULL, "bytes */10"},
        {"bytes=5-2", 200, "0123456789", NULL},
        {"bytes=0-1,3-4", 200, "0123456789", NULL}, /* several ranges: whole */
        {"bytes=0-1, 20-30", 200, "0123456789", NULL},
        {"items=0-1", 200, "0123456789", NULL},
        {"bytes=", 200, "0123456789", NULL},
        {"bytes=,", 200, "0123456789", NULL},
        {"bytes=a-b", 200, "0123456789", NULL},
        {"bytes=1", 200, "0123456789", NULL},
        {"bytes=1-2x", 200, "0123456789", NULL},
        {"bytes=--1", 200, "0123456789", NULL},
        {"bytes=1 -2", 200, "0123456789", NULL},
        {"bytes 0-1", 200, "0123456789", NULL},
        {"", 200, "0123456789", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pt_static_request q = get("/hello.txt");
        q.range = (struct pt_str){cases[i].range, strlen(cases[i].range)};
        assert_int_equal(go(r_def, &q), 0);
        if (R.status != cases[i].status)
            fail_msg("%s: status %d", cases[i].range, R.status);
        if (cases[i].content_range) {
            assert_non_null(hv("Content-Range"));
            assert_string_equal(hv("Content-Range"), cases[i].content_range);
        } else {
            assert_null(hv("Content-Range"));
        }
        if (cases[i].body) {
            char cl[32];
            snprintf(cl, sizeof(cl), "%zu", strlen(cases[i].body));
            assert_string_equal(hv("Content-Length"), cl);
            assert_string_equal(body(), cases[i].body);
        } else {
            expect_no_body(416);
            assert_true(R.is_error_page);
            assert_int_equal(R.cl_line_len, 0);
        }
    }
    /* An empty file has no satisfiable range. */
    struct pt_static_request q = get("/empty.txt");
    q.range = S("bytes=0-");
    assert_int_equal(go(r_def, &q), 0);
    expect_no_body(416);
    assert_string_equal(hv("Content-Range"), "bytes */0");
    q.range = S("bytes=-5");
    assert_int_equal(go(r_def, &q), 0);
    expect_no_body(416);

    /* If-Range gates Range. */
    assert_int_equal(get_status(r_def, "/hello.txt"), 200);
    char etag[80], lm[64], weak[90];
    snprintf(etag, sizeof(etag), "%s", hv("ETag"));
    snprintf(lm, sizeof(lm), "%s", hv("Last-Modified"));
    snprintf(weak, sizeof(weak), "W/%s", etag);
    body();
    struct {
        const char *if_range;
        int status;
    } ir[] = {
        {etag, 206},
        {lm, 206},
        {weak, 200},
        {"\"other\"", 200},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 200},
        {"nonsense", 200},
        {"", 200},
    };
    for (size_t i = 0; i < sizeof(ir) / sizeof(ir[0]); i++) {
        q = get("/hello.txt");
        q.range = S("bytes=1-1");
        q.if_range = (struct pt_str){ir[i].if_range, strlen(ir[i].if_range)};
        assert_int_equal(go(r_def, &q), 0);
        if (R.status != ir[i].status)
            fail_msg("If-Range %s: %d", ir[i].if_range, R.status);
        assert_string_equal(body(), ir[i].status == 206 ? "1" : "0123456789");
    }
    /* A failed If-Range on an unsatisfiable range gives the whole file, not 416. */
    q = get("/hello.txt");
    q.range = S("bytes=50-");
    q.if_range = S("\"other\"");
    assert_int_equal(go(r_def, &q), 0);
    assert_int_equal(R.status, 200);
    body();
}

static void test_parse_range_direct(void **state)
{
    (void)state;
    uint64_t off = 77, len = 77;
    const char *big = "bytes=18446744073709551614-18446744073709551615";
    assert_int_equal(pt_static_parse_range("bytes=0-0", 9, 1, &off, &len), PT_STATIC_RANGE_PARTIAL);
    assert_int_equal(off, 0);
    assert_int_equal(len, 1);
    assert_int_equal(pt_static_parse_range("bytes=0-", 8, UINT64_MAX, &off, &len),
                     PT_STATIC_RANGE_PARTIAL);
    assert_true(len == UINT64_MAX);
    assert_int_equal(pt_static_parse_range("bytes=-1", 8, UINT64_MAX, &off, &len),
                     PT_STATIC_RANGE_PARTIAL);
    assert_true(off == UINT64_MAX - 1 && len == 1);
    assert_int_equal(pt_static_parse_range(big, strlen(big), UINT64_MAX, &off, &len),
                     PT_STATIC_RANGE_PARTIAL);
    assert_true(off == UINT64_MAX - 1 && len == 1);
    /* Length bounds the read: "bytes=1-2" cut after "bytes=1" is a malformed spec. */
    assert_int_equal(pt_static_parse_range("bytes=1-2", 7, 10, &off, &len), PT_STATIC_RANGE_WHOLE);
    assert_int_equal(pt_static_parse_range("bytes=1-2", 8, 10, &off, &len),
                     PT_STATIC_RANGE_PARTIAL);
    assert_true(off == 1 && len == 9);
    assert_int_equal(pt_static_parse_range(NULL, 0, 10, &off, &len), PT_STATIC_RANGE_WHOLE);
}

static void test_if_range(void **state)
{
    (void)state;
    const char *good = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_true(pt_static_if_range_ok(" \"a\" ", 5, "\"a\"", 3, 0));
    assert_false(pt_static_if_range_ok("W/\"a\"", 5, "\"a\"", 3, 0));
    assert_true(pt_static_if_range_ok(good, strlen(good), "\"a\"", 3, 784111777));
    assert_false(pt_static_if_range_ok(good, strlen(good), "\"a\"", 3, 784111778));
}

/* A change on disk is seen by the next request when it does not hit the cache: new length, new
   ETag, new bytes (not in the MODE_HITS group, where the clock stands still). */
static void test_change_seen(void **state)
{
    (void)state;
    put_file("root/changing.txt", "one");
    expect_body(r_def, "/changing.txt", 200, "one");
    char etag[80];
    snprintf(etag, sizeof(etag), "%s", hv("ETag"));
    put_file("root/changing.txt", "second");
    struct pt_static_request q = get("/changing.txt");
    q.if_none_match = (struct pt_str){etag, strlen(etag)};
    assert_int_equal(go(r_def, &q), 0);
    assert_int_equal(R.status, 200);
    assert_string_not_equal(hv("ETag"), etag);
    assert_string_equal(body(), "second");
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/changing.txt", rootdir);
    unlink(p);
    assert_int_equal(get_status(r_plain, "/changing.txt"), 404);
}

static void test_small_header_buffer(void **state)
{
    (void)state;
    char small[12];
    const char *paths[] = {"/hello.txt", "/sub", "/nope", "/app.js"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct pt_static_request q = get(paths[i]);
        q.accept_encoding = S("br");
        memset(&R, 0, sizeof(R));
        R.hdr = small;
        R.hdr_cap = sizeof(small);
        assert_int_equal(pt_static_resolve(r_def, &q, &R), -ENOBUFS);
        assert_int_equal(R.fd, -1);
        assert_int_equal(R.hdr_len, 0);
    }
    struct pt_static_request q = get("/hello.txt");
    memset(&R, 0, sizeof(R));
    R.fd = -1;
    assert_int_equal(pt_static_resolve(r_def, &q, &R), -ENOBUFS);
    assert_int_equal(R.fd, -1);
}

static void test_root_open_errors(void **state)
{
    (void)state;
    struct pt_static_settings s;
    struct pt_static_root *r = (struct pt_static_root *)1;
    char err[256], p[PATH_MAX];
    pt_static_settings_init(&s);
    assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -EINVAL);
    assert_null(r);
    snprintf(p, sizeof(p), "%s/nonexistent", base);
    s.root = p;
    assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "nonexistent"));
    snprintf(p, sizeof(p), "%s/hello.txt", rootdir);
    assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -ENOTDIR);
    s.root = rootdir;
    const char *bad_index[] = {"", "a/b", "..", ".", "/index.html"};
    for (size_t i = 0; i < sizeof(bad_index) / sizeof(bad_index[0]); i++) {
        s.index[0] = bad_index[i];
        assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -EINVAL);
    }
    s.index[0] = "index.html";
    const char *bad_404[] = {"../x.html", "/404.html", "a//b", "a/./b"};
    for (size_t i = 0; i < sizeof(bad_404) / sizeof(bad_404[0]); i++) {
        s.not_found_page = bad_404[i];
        assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -EINVAL);
    }
    s.not_found_page = "errors/404.html";
    s.cache_control = "x\r\nSet-Cookie: a=b";
    assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -EINVAL);
    s.cache_control = NULL;
    s.dotfiles = 7;
    assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -EINVAL);
    s.dotfiles = PT_STATIC_DOT_DENY;
    s.n_index = PT_STATIC_MAX_INDEX + 1;
    assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), -EINVAL);
    /* A missing not_found_page is not an error: a bare 404 then. */
    s.n_index = 1;
    assert_int_equal(pt_static_root_open(&s, &r, err, sizeof(err)), 0);
    assert_int_equal(get_status(r, "/nope"), 404);
    assert_true(R.is_error_page);
    pt_static_root_free(r);
    pt_static_root_free(NULL);
}

/* ---- the open-file cache, with its clock driven here ---- */

#define T0 1000000u /* any clock but 0 (which means no cache) */

static int get_at(const struct pt_static_root *root, const char *path, uint64_t now)
{
    struct pt_static_request q = get(path);
    q.now_ms = now;
    assert_int_equal(go(root, &q), 0);
    return R.status;
}

static void expect_at(const struct pt_static_root *root, const char *path, uint64_t now, int status,
                      const char *want)
{
    assert_int_equal(get_at(root, path, now), status);
    assert_string_equal(body(), want);
}

static void path_of(char *p, size_t n, const char *rel)
{
    snprintf(p, n, "%s/%s", base, rel);
}

/* Within the window a lookup is a hit (the old descriptor is served even though the path now
   names another file); at PT_STATIC_CACHE_VALID_MS it is revalidated: new bytes, new ETag. */
static void test_cache_hit_then_revalidation(void **state)
{
    (void)state;
    struct pt_static_cache_stats s0, s1;
    char p[PATH_MAX], tmp[PATH_MAX], etag[80];
    put_file("root/c1.txt", "one");
    expect_at(r_def, "/c1.txt", T0, 200, "one");
    snprintf(etag, sizeof(etag), "%s", hv("ETag"));
    pt_static_cache_stats(&s0);
    put_file("root/c1.new", "two!");
    path_of(tmp, sizeof(tmp), "root/c1.new");
    path_of(p, sizeof(p), "root/c1.txt");
    assert_int_equal(rename(tmp, p), 0);
    expect_at(r_def, "/c1.txt", T0 + 10, 200, "one");
    assert_string_equal(hv("ETag"), etag);
    /* Conditionals are answered from the cached validators too. */
    struct pt_static_request q = get("/c1.txt");
    q.now_ms = T0 + 20;
    q.if_none_match = (struct pt_str){etag, strlen(etag)};
    assert_int_equal(go(r_def, &q), 0);
    expect_no_body(304);
    expect_at(r_def, "/c1.txt", T0 + PT_STATIC_CACHE_VALID_MS - 1, 200, "one");
    pt_static_cache_stats(&s1);
    assert_true(s1.hits >= s0.hits + 3);
    assert_int_equal(s1.misses, s0.misses);
    /* Revalidated: the new file, its length and a new ETag; the old validator no longer
       matches. */
    q.now_ms = T0 + PT_STATIC_CACHE_VALID_MS;
    assert_int_equal(go(r_def, &q), 0);
    assert_int_equal(R.status, 200);
    assert_string_not_equal(hv("ETag"), etag);
    assert_string_equal(hv("Content-Length"), "4");
    assert_string_equal(body(), "two!");
    pt_static_cache_stats(&s1);
    assert_true(s1.misses > s0.misses);
    unlink(p);
}

/* A deleted file is served from the cached descriptor for under a second, then 404; a negative
   entry likewise gives way to a new file after the window. */
static void test_cache_delete_and_create_seen(void **state)
{
    (void)state;
    char p[PATH_MAX];
    path_of(p, sizeof(p), "root/c2.txt");
    put_file("root/c2.txt", "here");
    expect_at(r_plain, "/c2.txt", T0, 200, "here");
    assert_int_equal(unlink(p), 0);
    expect_at(r_plain, "/c2.txt", T0 + 1, 200, "here");
    assert_int_equal(get_at(r_plain, "/c2.txt", T0 + PT_STATIC_CACHE_VALID_MS), 404);
    expect_no_body(404);
    put_file("root/c2.txt", "back");
    assert_int_equal(get_at(r_plain, "/c2.txt", T0 + PT_STATIC_CACHE_VALID_MS + 1), 404);
    expect_at(r_plain, "/c2.txt", T0 + 2 * PT_STATIC_CACHE_VALID_MS, 200, "back");
    /* A clock that goes backwards never makes an entry look fresh. */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(get_at(r_plain, "/c2.txt", T0), 404);
}

/* The number of entries, and so of descriptors held, never exceeds the capacity; evicted
   paths come back correctly as misses. */
static void test_cache_bound(void **state)
{
    (void)state;
    struct pt_static_cache_stats s;
    char rel[64], want[24];
    expect_at(r_plain, "/hello.txt", T0, 200, "0123456789");
    pt_static_cache_stats(&s);
    size_t cap = s.capacity, n = cap + 40;
    assert_true(cap >= 16 && cap <= PT_STATIC_CACHE_MAX_ENTRIES);
    mk("root/many");
    for (size_t i = 0; i < n; i++) {
        snprintf(rel, sizeof(rel), "root/many/f%zu", i);
        snprintf(want, sizeof(want), "%zu", i);
        put_file(rel, want);
    }
    uint64_t ev0 = s.evictions;
    for (size_t i = 0; i < n; i++) {
        snprintf(rel, sizeof(rel), "/many/f%zu", i);
        snprintf(want, sizeof(want), "%zu", i);
        expect_at(r_plain, rel, T0, 200, want);
        pt_static_cache_stats(&s);
        assert_true(s.entries <= cap);
    }
    assert_int_equal(s.entries, cap);
    assert_true(s.evictions >= ev0 + 41);
    assert_true(count_fds() <= fds_at_start + (int)cap);
    expect_at(r_plain, "/many/f0", T0, 200, "0");
    expect_at(r_plain, "/hello.txt", T0, 200, "0123456789");
}

/* An entry dropped while a sender still holds its descriptor leaves the descriptor open for
   that sender; the last reference closes it (check_fds counts). */
static void test_cache_evicted_while_sending(void **state)
{
    (void)state;
    struct pt_static_result first;
    assert_int_equal(get_at(r_def, "/hello.txt", T0), 200);
    assert_non_null(R.file);
    first = R;
    assert_int_equal(get_at(r_def, "/hello.txt", T0 + 1), 200);
    assert_ptr_equal(R.file, first.file); /* one descriptor, shared */
    pt_static_cache_flush();
    assert_string_equal(body(), "0123456789");
    char b[16];
    assert_int_equal(pread(first.fd, b, 10, 0), 10);
    assert_memory_equal(b, "0123456789", 10);
    pt_static_result_release(&first);
    assert_int_equal(first.fd, -1);
    assert_null(first.file);
}

/* A root's entries are never seen through another root, even one built at the same address
   after the first is freed (a reload), even inside the validity window. */
static void test_cache_roots_never_share(void **state)
{
    (void)state;
    struct pt_static_settings st;
    struct pt_static_root *a, *b;
    char other[PATH_MAX], err[256];
    mk("other");
    put_file("other/same.txt", "other root");
    put_file("root/same.txt", "main root");
    path_of(other, sizeof(other), "other");
    for (int i = 0; i < 4; i++) {
        pt_static_settings_init(&st);
        st.root = rootdir;
        assert_int_equal(pt_static_root_open(&st, &a, err, sizeof(err)), 0);
        expect_at(a, "/same.txt", T0, 200, "main root");
        pt_static_root_free(a);
        st.root = other;
        assert_int_equal(pt_static_root_open(&st, &b, err, sizeof(err)), 0);
        expect_at(b, "/same.txt", T0, 200, "other root");
        pt_static_root_free(b);
    }
}

/* Nothing the uncached path would refuse comes from the cache: a file swapped for a symlink
   leaving the root is refused once the window ends (the old, contained file until then), and
   the force_walk hook flushes entries opened through openat2. */
static void test_cache_containment(void **state)
{
    (void)state;
    char p[PATH_MAX], secret[PATH_MAX];
    put_file("root/swap.txt", "inside");
    expect_at(r_def, "/swap.txt", T0, 200, "inside");
    path_of(p, sizeof(p), "root/swap.txt");
    path_of(secret, sizeof(secret), "outside/secret.txt");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(secret, p), 0);
    expect_at(r_def, "/swap.txt", T0 + 1, 200, "inside");
    expect_at(r_def, "/swap.txt", T0 + PT_STATIC_CACHE_VALID_MS, 404, "not here\n");
    expect_at(r_def, "/swap.txt", T0 + PT_STATIC_CACHE_VALID_MS + 1, 404, "not here\n");
    unlink(p);
    expect_at(r_def, "/link-in", T0, 200, "0123456789");
    pt_static_set_force_walk(true);
    assert_int_equal(get_at(r_plain, "/link-in", T0), 404);
    expect_at(r_def, "/link-in", T0, 404, "not here\n");
    pt_static_set_force_walk(false);
    expect_at(r_def, "/link-in", T0, 200, "0123456789");
    /* Dotfile rules come before the cache: the same root answers the same way every time. */
    assert_int_equal(get_at(r_def, "/.env", T0), 403);
    expect_at(r_allow, "/.env", T0, 200, "SECRET=1\n");
    assert_int_equal(get_at(r_def, "/.env", T0), 403);
    expect_no_body(403);
}

/* Idle entries are dropped lazily; now_ms 0 and over-long paths bypass the cache. */
static void test_cache_idle_and_bypass(void **state)
{
    (void)state;
    struct pt_static_cache_stats s0, s1;
    expect_at(r_plain, "/hello.txt", T0, 200, "0123456789");
    pt_static_cache_stats(&s0);
    assert_int_equal(s0.entries, 1);
    expect_at(r_plain, "/data.bin", T0 + PT_STATIC_CACHE_IDLE_MS + 1, 200, "\x01\x02");
    pt_static_cache_stats(&s1);
    assert_int_equal(s1.entries, 1); /* hello.txt went, data.bin came */
    assert_int_equal(s1.evictions, s0.evictions + 1);
    assert_int_equal(count_fds(), fds_at_start + 1);

    struct pt_static_request q = get("/index.html");
    assert_int_equal(go(r_plain, &q), 0); /* mode uncached: now_ms stays 0 */
    assert_string_equal(body(), "<h1>home</h1>\n");
    pt_static_cache_stats(&s0);
    assert_int_equal(s0.entries, s1.entries);
    assert_int_equal(s0.misses, s1.misses);
    assert_int_equal(s0.hits, s1.hits);

    static char longp[PT_STATIC_CACHE_REL_MAX + 100];
    longp[0] = '/';
    for (size_t i = 1; i < sizeof(longp) - 1; i++)
        longp[i] = (i % 100 == 0) ? '/' : 'y';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(get_at(r_plain, longp, T0 + PT_STATIC_CACHE_IDLE_MS + 2), 404);
    pt_static_cache_stats(&s1);
    assert_int_equal(s1.entries, s0.entries);
    assert_int_equal(s1.misses, s0.misses);
}

static int mode_uncached(void **state)
{
    (void)state;
    mode = MODE_UNCACHED;
    return 0;
}

static int mode_revalidate(void **state)
{
    (void)state;
    mode = MODE_REVALIDATE;
    clock_ms = T0;
    return 0;
}

static int mode_hits(void **state)
{
    (void)state;
    mode = MODE_HITS;
    clock_ms = T0;
    return 0;
}

#define DECISION_TESTS(setup_mode)                                                                 \
    cmocka_unit_test_setup_teardown(test_get_file, setup_mode, check_fds),                         \
        cmocka_unit_test_setup_teardown(test_head, setup_mode, check_fds),                         \
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup_mode, check_fds),           \
        cmocka_unit_test_setup_teardown(test_directory_redirect, setup_mode, check_fds),           \
        cmocka_unit_test_setup_teardown(test_directory_index, setup_mode, check_fds),              \
        cmocka_unit_test_setup_teardown(test_not_found_page, setup_mode, check_fds),               \
        cmocka_unit_test_setup_teardown(test_spa, setup_mode, check_fds),                          \
        cmocka_unit_test_setup_teardown(test_dotfiles, setup_mode, check_fds),                     \
        cmocka_unit_test_setup_teardown(test_traversal, setup_mode, check_fds),                    \
        cmocka_unit_test_setup_teardown(test_walk_fallback, setup_mode, check_fds),                \
        cmocka_unit_test_setup_teardown(test_precompressed, setup_mode, check_fds),                \
        cmocka_unit_test_setup_teardown(test_conditionals, setup_mode, check_fds),                 \
        cmocka_unit_test_setup_teardown(test_ranges, setup_mode, check_fds),                       \
        cmocka_unit_test_setup_teardown(test_small_header_buffer, setup_mode, check_fds),          \
        cmocka_unit_test_setup_teardown(test_root_open_errors, setup_mode, check_fds)

int main(void)
{
    const struct CMUnitTest uncached[] = {
        DECISION_TESTS(mode_uncached),
        cmocka_unit_test_setup_teardown(test_change_seen, mode_uncached, check_fds),
        cmocka_unit_test_teardown(test_parse_range_direct, check_fds),
        cmocka_unit_test_teardown(test_if_range, check_fds),
    };
    const struct CMUnitTest revalidate[] = {
        DECISION_TESTS(mode_revalidate),
        cmocka_unit_test_setup_teardown(test_change_seen, mode_revalidate, check_fds),
    };
    const struct CMUnitTest hits[] = {DECISION_TESTS(mode_hits)};
    const struct CMUnitTest cache[] = {
        cmocka_unit_test_setup_teardown(test_cache_hit_then_revalidation, mode_uncached, check_fds),
        cmocka_unit_test_setup_teardown(test_cache_delete_and_create_seen, mode_uncached,
                                        check_fds),
        cmocka_unit_test_setup_teardown(test_cache_bound, mode_uncached, check_fds),
        cmocka_unit_test_setup_teardown(test_cache_evicted_while_sending, mode_uncached, check_fds),
        cmocka_unit_test_setup_teardown(test_cache_roots_never_share, mode_uncached, check_fds),
        cmocka_unit_test_setup_teardown(test_cache_containment, mode_uncached, check_fds),
        cmocka_unit_test_setup_teardown(test_cache_idle_and_bypass, mode_uncached, check_fds),
    };
    int failed = cmocka_run_group_tests_name("uncached", uncached, setup, teardown);
    failed += cmocka_run_group_tests_name("revalidate", revalidate, setup, teardown);
    failed += cmocka_run_group_tests_name("hits", hits, setup, teardown);
    failed += cmocka_run_group_tests_name("cache", cache, setup, teardown);
    return failed;
}
