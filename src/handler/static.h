/*
 * static.h - the `static` action: decide how to answer a GET/HEAD for a file under a root.
 *
 * pt_static_resolve() is the whole decision and touches no socket: it validates the path, opens
 * the file beneath the root directory (openat2 RESOLVE_BENEATH, so nothing outside the root can
 * be opened), evaluates the conditional headers and Range, picks a precompressed sibling, and
 * returns a status, the header lines to send and, when there is a body, an open file descriptor
 * with the byte window to send from it. The connection layer sends those bytes (sendfile with an
 * explicit offset, or pread) and then releases the descriptor: closes it, or drops its reference
 * when it belongs to the worker's open-file cache. Design notes: docs/internals/static.md.
 *
 * The cache is per thread (a worker's connections never change thread): open descriptors, stat
 * results and preformatted validators of recently used paths, each trusted for less than one
 * second of the worker loop's clock (PT_STATIC_CACHE_VALID_MS), so a change on disk is always
 * seen within a second. A request with now_ms 0 bypasses it.
 */
#ifndef PT_HANDLER_STATIC_H
#define PT_HANDLER_STATIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/str.h"

/* What to do with a path segment that starts with '.' (other than /.well-known). */
enum pt_static_dotfiles {
    PT_STATIC_DOT_DENY = 0, /* answer 403 */
    PT_STATIC_DOT_ALLOW,    /* serve like any other file */
    PT_STATIC_DOT_IGNORE,   /* pretend it does not exist: spa fallback or 404 */
};

#define PT_STATIC_MAX_INDEX 8 /* names in the index list */

/* Settings of one static root, filled from the YAML `static:` action. Borrowed by
   pt_static_root_open, which copies what it keeps. */
struct pt_static_settings {
    const char *root;                       /* directory (absolute or relative to the cwd) */
    const char *index[PT_STATIC_MAX_INDEX]; /* file names tried for a directory, in order */
    size_t n_index;                         /* 0 means {"index.html"} */
    bool spa;           /* unknown paths accepting text/html get the (first) root index, 200 */
    bool precompressed; /* serve .br/.zst/.gz siblings by Accept-Encoding */
    const char *cache_control;  /* Cache-Control value for files; NULL: none sent */
    int dotfiles;               /* enum pt_static_dotfiles */
    const char *not_found_page; /* path under root sent with 404; NULL or "" disables */
    const char *const *hidden;  /* files never served (the configuration's rule files),
                                   by path; those not under root may be listed too */
    size_t n_hidden;
};

/* Defaults: index.html, spa off, precompressed on, no Cache-Control, dotfiles deny,
   not_found_page "404.html". root is left NULL. */
void pt_static_settings_init(struct pt_static_settings *s);

struct pt_static_root; /* opaque: the open root directory and a copy of the settings */

/*
 * Opens s->root once (O_PATH | O_DIRECTORY) and copies the settings. Index names must be plain
 * file names (no '/', not "." or ".."); not_found_page a relative path without "." or ".."
 * segments. Returns 0 and *out, or a negative errno (-EINVAL for bad settings, the open's
 * errno for the root) with a one-line reason in err. Blocks (filesystem); call at load.
 * Thread-safe to use from any number of threads once built; free with pt_static_root_free.
 */
int pt_static_root_open(const struct pt_static_settings *s, struct pt_static_root **out, char *err,
                        size_t errlen);
void pt_static_root_free(struct pt_static_root *root);

/* What pt_static_resolve needs from a request. An absent header is {NULL, 0}. */
struct pt_static_request {
    int method;          /* enum pt_http_method (http/h1_parse.h) */
    struct pt_str path;  /* as pt_path_normalize left it, relative to the root: starts with '/' */
    struct pt_str mount; /* normalised prefix put before path in a redirect Location (the part
                            a route stripped, e.g. "/assets"); empty when none */
    struct pt_str query; /* raw query without '?', kept on redirects; empty when none */
    struct pt_str accept;
    struct pt_str accept_encoding;
    struct pt_str if_match;
    struct pt_str if_unmodified_since;
    struct pt_str if_none_match;
    struct pt_str if_modified_since;
    struct pt_str if_range;
    struct pt_str range;
    uint64_t now_ms; /* the worker loop's clock (pt_loop.now_ms: monotonic ms) for this thread's
                        open-file cache; 0: no cache, every path is opened and stat-ed afresh */
};

/*
 * The answer. hdr/hdr_cap are set by the caller before the call (PT_STATIC_HDR_MIN bytes plus
 * the Cache-Control value and three times the path length is always enough); the rest is
 * filled by pt_static_resolve.
 *
 * hdr holds complete "Name: value\r\n" lines, never the status line, Date, Server or
 * Connection. When cl_line_len > 0 the block starts with the "Content-Length: N\r\n" line
 * (cl_line_len bytes) and the caller must not add its own; when it is 0 the caller writes the
 * body (an error page, or nothing for 301/304) and its own Content-Length.
 */
struct pt_static_file; /* a descriptor shared by the cache and the connections sending from it */

struct pt_static_result {
    int status; /* 200 206 301 304 403 404 405 412 416 */
    int fd;     /* >= 0: send length bytes from offset of this file (with explicit offsets:
                   pread or sendfile with an offset pointer, never the file position, which
                   other connections share), then release it (pt_static_result_release);
                   -1: no body from a file */
    struct pt_static_file *file; /* non-NULL: fd belongs to this cached file and the caller
                                    holds one reference (pt_static_file_unref, never close fd);
                                    NULL with fd >= 0: the caller owns fd and closes it */
    uint64_t offset;             /* first byte to send */
    uint64_t length;    /* bytes to send; also the Content-Length even for HEAD (fd -1 then) */
    char *hdr;          /* in: caller's buffer */
    size_t hdr_cap;     /* in: its size */
    size_t hdr_len;     /* out: bytes of header lines written */
    size_t cl_line_len; /* out: length of the leading Content-Length line, 0 when none */
    bool is_error_page; /* out: status >= 400 with no file body: the caller writes its own
                           page (pt_respond_error), adding the lines in hdr (Allow,
                           Content-Range) */
};

#define PT_STATIC_HDR_MIN 768

/*
 * Decides the response for req under root. Never blocks on anything but the local filesystem
 * (openat2/fstat). Returns 0 with *out filled (any status, including 403/404/405/412/416), or a
 * negative errno for a failure the caller answers 500 (-ENOBUFS: hdr too small, -EMFILE,
 * -ENOMEM, -EIO...); then out->fd is -1 and nothing is left open.
 */
int pt_static_resolve(const struct pt_static_root *root, const struct pt_static_request *req,
                      struct pt_static_result *out);

/* Drops one reference to a cached file from pt_static_result.file; the last one (the cache's
   own goes when the entry is evicted or replaced) closes the descriptor. Not thread-safe: call
   on the thread that resolved the request (a connection never changes thread). */
void pt_static_file_unref(struct pt_static_file *f);

/* Releases what out->fd / out->file hold (either form) and sets them to -1 / NULL. */
void pt_static_result_release(struct pt_static_result *out);

/* ---- the per-thread open-file cache ---- */

/* An entry is trusted this long (loop clock) after the open/stat it holds: under one second,
   with room for the loop clock's lag behind real time (it is read once per epoll_wait). */
#define PT_STATIC_CACHE_VALID_MS 900
#define PT_STATIC_CACHE_IDLE_MS 10000   /* an entry unused this long is dropped (lazily) */
#define PT_STATIC_CACHE_MAX_ENTRIES 512 /* per thread; less when RLIMIT_NOFILE is small */
#define PT_STATIC_CACHE_REL_MAX 1024    /* longer root-relative paths are never cached */

struct pt_static_cache_stats {
    size_t entries;     /* now in this thread's cache */
    size_t capacity;    /* its bound */
    uint64_t hits;      /* lookups answered from an entry still valid */
    uint64_t misses;    /* lookups that opened and stat-ed (new path or revalidation) */
    uint64_t evictions; /* entries dropped: bound, idle, uncacheable answer, flush */
};

/* This thread's counters (zeros before its first cached lookup). */
void pt_static_cache_stats(struct pt_static_cache_stats *s);

/* Drops every entry of this thread's cache (descriptors close once no connection sends from
   them). Called on thread exit automatically; for tests and the force_walk hook. */
void pt_static_cache_flush(void);

/* Range outcomes of pt_static_parse_range. */
enum pt_static_range {
    PT_STATIC_RANGE_WHOLE = 0,     /* absent, malformed, not bytes, or several ranges: 200 */
    PT_STATIC_RANGE_PARTIAL,       /* one satisfiable range: 206 with *off, *len */
    PT_STATIC_RANGE_UNSATISFIABLE, /* 416 with "Content-Range: bytes * /size" */
};

/*
 * Parses a Range header value (RFC 9110 §14.1.2) against a representation of size bytes.
 * Only a single "bytes=" range is honoured: "a-b", "a-", "-n"; a last-pos past the end is
 * clamped, numbers too large for 64 bits saturate (so a huge first-pos is unsatisfiable and a
 * huge suffix means the whole file). Returns an enum pt_static_range; *off and *len are set only
 * for PT_STATIC_RANGE_PARTIAL (len >= 1, off + len <= size). Never reads past v + n.
 */
int pt_static_parse_range(const char *v, size_t n, uint64_t size, uint64_t *off, uint64_t *len);

/*
 * Evaluates an If-Range value (RFC 9110 §13.1.5): an entity tag must match etag strongly (a
 * weak tag never matches); an HTTP-date must equal mtime exactly. Anything else is false.
 */
bool pt_static_if_range_ok(const char *v, size_t n, const char *etag, size_t etag_len,
                           time_t mtime);

/*
 * Whether the last segment of the root-relative path rel (n bytes) is a Netlify rule file name
 * (_redirects, _headers, netlify.toml) or one of its precompressed copies (.br, .zst, .gz).
 * pt_static_resolve never serves such a file, in any folder.
 */
bool pt_static_is_rule_name(const char *rel, size_t n);

/* Test hook: when true, act as if openat2 were missing (ENOSYS) and use the O_NOFOLLOW walk.
   Not for production use: a plain flag, set it before any thread resolves. Flushes the calling
   thread's cache (its entries were opened the other way). */
void pt_static_set_force_walk(bool on);

#endif
