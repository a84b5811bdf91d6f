/*
 * netlify.h - readers for Netlify's rule files: _redirects, _headers and netlify.toml.
 *
 * The readers turn each file into an intermediate representation (struct pt_nf_rule for
 * redirects, rewrites and proxies; struct pt_nf_header_rule for response headers) that the
 * router compiles like YAML routes. They only read and validate: nothing here matches requests,
 * touches the file system or knows about sites. Every byte of the results (strings, arrays and
 * the error texts) lives in the arena the caller passes, so one pt_arena_free releases it all.
 *
 * Errors are per rule: a bad line (or a bad [[redirects]] / [[headers]] table) is reported as
 * "FILE:LINE: reason" and skipped, and the other rules still load. Only a file-level failure
 * (too large, a TOML syntax error, out of memory) makes a reader return PT_ERR; it then adds
 * nothing to the rule list but still says why in the error list.
 *
 * See docs/internals/netlify.md for the Netlify semantics each field carries.
 */
#ifndef PT_CONFIG_NETLIFY_H
#define PT_CONFIG_NETLIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/arena.h"

#define PT_NF_MAX_FILE_BYTES (8u << 20) /* a larger file is refused whole */
#define PT_NF_MAX_LINE_BYTES 16384      /* a longer _redirects/_headers line is an error */
#define PT_NF_MAX_PARAMS 16             /* :placeholders per rule, path and query together */
#define PT_NF_MAX_ERRORS 1000           /* errors kept per list; the rest only counted */

struct pt_nf_error {
    const char *file;   /* file name as the caller gave it */
    int line;           /* 1-based; 0 for a file-level error */
    const char *reason; /* the message alone */
    const char *text;   /* "FILE:LINE: reason" (or "FILE: reason" when line is 0) */
};

/* Error list; zero-initialise it. Readers append, so one list can collect all three files. */
struct pt_nf_errors {
    struct pt_nf_error *items;
    size_t n;
    size_t cap;
    size_t n_dropped; /* errors past PT_NF_MAX_ERRORS, counted but not kept */
};

/* A query-string condition: `id=:id` (placeholder) or `lang=en` (literal). */
struct pt_nf_query {
    const char *name;    /* parameter name, as written (compared case-sensitively) */
    const char *value;   /* literal value, or the placeholder name without ':' */
    bool is_placeholder; /* value was ":name": the parameter must be present (any value) and its
                            value is captured as :name for the target */
};

struct pt_nf_rule {
    const char *from;        /* as written: a path pattern or an absolute http(s) URL */
    const char *from_path;   /* path pattern part, always starting with '/' ("/" for a bare URL) */
    const char *from_scheme; /* "http" or "https" for an absolute from; NULL for a path */
    const char *from_host;   /* lower-cased host[:port] of an absolute from; NULL for a path */
    bool has_splat;          /* from_path ends with '*' (captured as :splat) */
    const char **params;     /* placeholder names of from_path in order, without ':' */
    size_t n_params;
    struct pt_nf_query *query; /* all must match (AND); order as written */
    size_t n_query;
    const char *to;     /* path template or absolute http(s) URL template; never NULL (a
                           forward rule, from "/a/" + '*' with status 200 and no
                           to, gets to = "/a/:splat") */
    bool is_to_url;     /* to starts with http:// or https:// */
    bool to_has_query;  /* to carries its own '?': the request's query string is not passed on */
    int status;         /* 200, 301 (default), 302, 303, 307, 308, 404, 410 or 451 */
    bool is_status_set; /* a status was written (else 301 by default) */
    bool is_force;      /* "!" after the status / force = true: applies even over an existing
                           static file (no shadowing) */
    bool is_proxy;      /* status 200 and to is an absolute URL: proxy the request there */
    bool is_rewrite;    /* to is a local path and status is 200, 404, 410 or 451: serve that
                           path's content with the status, URL unchanged */
    const char **languages; /* Language=en,fr (lower-cased); any one must match */
    size_t n_languages;
    const char **countries; /* Country=us,ca (lower-cased ISO 3166 codes); any one must match */
    size_t n_countries;
    const char **cookies; /* Cookie=a,b: names of cookies, any one present must match */
    size_t n_cookies;
    struct pt_kv *headers; /* netlify.toml `headers`: request headers added when proxying */
    size_t n_headers;
    const char *file; /* source file name as given */
    int line;         /* 1-based line of the rule (of its [[redirects]] header in TOML) */
};

/* Rule list; zero-initialise it. Readers append in file order. */
struct pt_nf_rules {
    struct pt_nf_rule *items;
    size_t n;
    size_t cap;
};

struct pt_nf_header_rule {
    const char *path;      /* path pattern (or absolute URL) as written, e.g. "/a/:id" */
    struct pt_kv *headers; /* one entry per name (first spelling kept); values of a name given
                              more than once are joined with ", " */
    size_t n_headers;      /* >= 1 */
    const char *file;
    int line; /* line of the path (of the [[headers]] header in TOML) */
};

struct pt_nf_header_rules {
    struct pt_nf_header_rule *items;
    size_t n;
    size_t cap;
};

/*
 * Reads a _redirects file held in buf (len bytes, need not be NUL-terminated; file names it in
 * errors) and appends its rules to *out, allocating from a. Lines that fail are appended to
 * *errs and skipped. Returns PT_OK (even when some lines failed; check errs->n), or PT_ERR when
 * the whole file is refused (over PT_NF_MAX_FILE_BYTES) or memory ran out. Never blocks.
 */
int pt_nf_parse_redirects(struct pt_arena *a, const char *file, const char *buf, size_t len,
                          struct pt_nf_rules *out, struct pt_nf_errors *errs);

/*
 * Reads a _headers file (a path line, then "Name: value" lines, usually indented) and appends
 * one rule per path to *out. Same error and return conventions as pt_nf_parse_redirects.
 */
int pt_nf_parse_headers(struct pt_arena *a, const char *file, const char *buf, size_t len,
                        struct pt_nf_header_rules *out, struct pt_nf_errors *errs);

/*
 * Reads a netlify.toml: its [[redirects]] tables are appended to *redirects and its [[headers]]
 * tables to *headers (either may be NULL to skip that kind); every other table ([build],
 * [context.*], [[plugins]] ...) is ignored. A TOML syntax error refuses the whole file
 * (PT_ERR, one error with its line, nothing appended); a bad [[redirects]] or [[headers]] entry
 * is reported at its line and skipped.
 */
int pt_nf_parse_toml(struct pt_arena *a, const char *file, const char *buf, size_t len,
                     struct pt_nf_rules *redirects, struct pt_nf_header_rules *headers,
                     struct pt_nf_errors *errs);

/*
 * Writes every error text of errs, one per line, into out (always NUL-terminated when
 * outlen > 0, truncated to fit), plus "FILE: N more errors" when some were dropped.
 * Returns the number of error lines written.
 */
size_t pt_nf_errors_format(const struct pt_nf_errors *errs, char *out, size_t outlen);

/* ---- shared by the readers (redirects.c, headers_file.c, netlify_toml.c) ---------------- */

/* Appends "FILE:LINE: reason" (printf format) to errs. Returns PT_OK, or PT_ERR when out of
 * memory. */
int pt_nf_error_add(struct pt_arena *a, struct pt_nf_errors *errs, const char *file, int line,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Checks a rule whose from, to (NULL for a forward rule), status, is_status_set, query and
 * conditions are filled in, and derives the other fields (from_* parts, params, has_splat,
 * is_to_url, to_has_query, is_proxy, is_rewrite; to for a forward rule). Returns PT_OK, or
 * PT_DECLINED after writing the reason into why (the caller reports it and skips the rule), or
 * PT_ERR when out of memory.
 */
int pt_nf_rule_finish(struct pt_arena *a, struct pt_nf_rule *r, char *why, size_t whylen);

/* Appends *r (copied) to out. PT_OK or PT_ERR (out of memory). */
int pt_nf_rules_push(struct pt_arena *a, struct pt_nf_rules *out, const struct pt_nf_rule *r);
int pt_nf_header_rules_push(struct pt_arena *a, struct pt_nf_header_rules *out,
                            const struct pt_nf_header_rule *h);

/*
 * Adds header name: value to the list (*kv, *n, *cap) in a, Netlify style: the value is
 * trimmed, each comma with the blanks around it becomes ", ", and a name already present
 * (compared case-insensitively) gets ", value" appended instead of a second entry.
 * Returns PT_OK, PT_DECLINED with the reason in why (bad name, empty value, control
 * characters), or PT_ERR when out of memory.
 */
int pt_nf_header_add(struct pt_arena *a, struct pt_kv **kv, size_t *n, size_t *cap,
                     const char *name, size_t name_len, const char *value, size_t value_len,
                     char *why, size_t whylen);

/* A `Key=v1,v2` condition list (Language, Country, Cookie) split into a lower-cased or
 * verbatim array. Returns PT_OK, PT_DECLINED with why, or PT_ERR. */
int pt_nf_condition_list(struct pt_arena *a, const char *key, const char *v, size_t vlen,
                         bool lower, const char ***out, size_t *n, char *why, size_t whylen);

#endif
