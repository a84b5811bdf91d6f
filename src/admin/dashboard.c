/*
 * dashboard.c - the operators' dashboard on the admin listener (issue #11 section 6): one HTML
 * page and its script, and GET /api/changes, the recent audit lines it lists.
 *
 * The page, its script and its style sheet are real files of the repository
 * (src/admin/dashboard.html, .js and .css), embedded into the binary at build time by the assembler's .incbin below: no
 * tool beyond gcc and binutils, and the Makefile names both files as prerequisites of this
 * object, so editing one rebuilds it. The paths are relative to the repository root, where
 * make runs the compiler.
 *
 * The page holds no data: it, its script and its style sheet are public routes (PT_ADMIN_PUBLIC), and every
 * call the script makes carries the bearer token the user typed in, kept in a JS variable
 * only. They are answered with a Content-Security-Policy that allows only this origin's
 * script (no inline script, no framing), X-Frame-Options DENY and, as every admin answer,
 * Cache-Control no-store.
 *
 * Rejected: inlining the script into the page with a hashed CSP (the hash would have to be
 * recomputed on every edit, which needs a build step); generating a C array from the files
 * (xxd: one more tool).
 */
#include "admin/dashboard.h"

#include <stdlib.h>
#include <string.h>

#include "admin/audit.h"

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl pt_dashboard_html_start\n"
        ".hidden pt_dashboard_html_start\n"
        "pt_dashboard_html_start:\n"
        ".incbin \"src/admin/dashboard.html\"\n"
        ".globl pt_dashboard_html_end\n"
        ".hidden pt_dashboard_html_end\n"
        "pt_dashboard_html_end:\n"
        ".balign 16\n"
        ".globl pt_dashboard_js_start\n"
        ".hidden pt_dashboard_js_start\n"
        "pt_dashboard_js_start:\n"
        ".incbin \"src/admin/dashboard.js\"\n"
        ".globl pt_dashboard_js_end\n"
        ".hidden pt_dashboard_js_end\n"
        "pt_dashboard_js_end:\n"
        ".balign 16\n"
        ".globl pt_dashboard_css_start\n"
        ".hidden pt_dashboard_css_start\n"
        "pt_dashboard_css_start:\n"
        ".incbin \"src/admin/dashboard.css\"\n"
        ".globl pt_dashboard_css_end\n"
        ".hidden pt_dashboard_css_end\n"
        "pt_dashboard_css_end:\n"
        ".popsection\n");

extern const char pt_dashboard_html_start[], pt_dashboard_html_end[];
extern const char pt_dashboard_js_start[], pt_dashboard_js_end[];
extern const char pt_dashboard_css_start[], pt_dashboard_css_end[];

#define CHANGES_DEFAULT 50

/* The page's policy: its own script and style sheet only (no inline ones); fetch to this origin; never framed. */
#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "                 \
    "frame-ancestors 'none'"

/* Answers a copy of the embedded file [start, end) as type, with the security headers. */
static void reply_file(struct pt_admin_req *q, const char *start, const char *end, const char *type)
{
    size_t n = (size_t)(end - start);
    char *body = malloc(n ? n : 1);
    if (!body) {
        pt_admin_reply_error(q, 500, NULL, "out of memory");
        return;
    }
    memcpy(body, start, n);
    pt_admin_reply_header(q, "Content-Security-Policy", CSP);
    pt_admin_reply_header(q, "X-Frame-Options", "DENY");
    pt_admin_reply_header(q, "Referrer-Policy", "no-referrer");
    pt_admin_reply_text(q, 200, type, body, n);
}

static void page(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    reply_file(q, pt_dashboard_html_start, pt_dashboard_html_end, "text/html; charset=utf-8");
}

static void script(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    reply_file(q, pt_dashboard_js_start, pt_dashboard_js_end, "text/javascript; charset=utf-8");
}

static void style(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    reply_file(q, pt_dashboard_css_start, pt_dashboard_css_end, "text/css; charset=utf-8");
}

/* GET /api/changes?limit=N: {"changes": [...]}, newest first; N in 1..PT_AUDIT_RECENT. */
static void changes(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    size_t limit = CHANGES_DEFAULT;
    for (const char *p = pt_admin_query(q); p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 6 && strncmp(p, "limit=", 6) == 0) {
            size_t v = 0;
            bool ok = len - 6 <= 4;
            for (size_t i = 6; ok && i < len; i++) {
                ok = p[i] >= '0' && p[i] <= '9';
                v = v * 10 + (size_t)(p[i] - '0');
            }
            if (!ok || v < 1 || v > PT_AUDIT_RECENT) {
                pt_admin_reply_error(q, 400, "limit", "must be an integer from 1 to 200");
                return;
            }
            limit = v;
        }
        p = amp ? amp + 1 : NULL;
    }
    json_t *arr = pt_admin_recent_changes(q, limit);
    json_t *doc = arr ? json_pack("{s:o}", "changes", arr) : NULL;
    if (!doc)
        pt_admin_reply_error(q, 500, NULL, "out of memory");
    else
        pt_admin_reply(q, 200, doc);
}

int pt_dashboard_attach(struct pt_admin *a)
{
    if (pt_admin_route(a, "GET", "/", PT_ADMIN_PUBLIC, page, NULL) < 0 ||
        pt_admin_route(a, "GET", "/dashboard", PT_ADMIN_PUBLIC, page, NULL) < 0 ||
        pt_admin_route(a, "GET", "/dashboard.js", PT_ADMIN_PUBLIC, script, NULL) < 0 ||
        pt_admin_route(a, "GET", "/dashboard.css", PT_ADMIN_PUBLIC, style, NULL) < 0 ||
        pt_admin_route(a, "GET", "/api/changes", 0, changes, NULL) < 0)
        return -1;
    return 0;
}
