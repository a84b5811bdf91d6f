/*
 * static.c - the `static` action's decision: which file, which status, which header lines.
 *
 * pt_static_resolve() maps a normalised request path to a path relative to the root, opens
 * it relative to the root's directory descriptor and answers like a careful file server:
 *
 *   path checks ─► probe (O_PATH + fstat) ─► directory? ─► no slash: 301 path + "/"
 *        │                 │                     └──► slash: first index file that exists
 *        │                 └─ missing ─► spa and Accept has text/html: root index, 200
 *        │                                 └─► 404.html with 404, else a bare 404
 *        └─ dotfile: deny ─► 403, ignore ─► as missing
 *   regular file ─► precompressed sibling ─► If-Match / If-Unmodified-Since (412)
 *        ─► If-None-Match / If-Modified-Since (304) ─► If-Range + Range (206 / 416)
 *        ─► reopen O_RDONLY, fstat again, headers from the stat that matches the descriptor
 *
 * Containment: every open goes through open_beneath(): openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS) from the root's O_PATH descriptor, so no path, ".." or symlink (outside
 * the root) can reach a file outside it, whatever races happen on disk. Before that, the path is
 * checked segment by segment: "." and ".." segments, empty segments, NUL and any '%' escape
 * other than %25 (which pt_path_normalize keeps for a literal '%') are refused, so "%2F" never
 * becomes a separator. Where openat2 is missing (ENOSYS, Linux < 5.6 or a seccomp filter),
 * a component-by-component openat(O_NOFOLLOW) walk is used instead; it refuses every symlink,
 * even those inside the root (stricter, never looser).
 *
 * Files are probed with O_PATH before being opened for reading, so a FIFO or device node in
 * the root is never opened for I/O (opening either can block or have effects). The descriptor
 * returned is opened O_RDONLY | O_NONBLOCK after the probe, fstat-ed again, and the response
 * is recomputed from that second stat if the file changed in between: headers always describe
 * the bytes the descriptor holds.
 *
 * No stat/open cache: each request costs a handful of system calls (openat2, fstat, close).
 * A cache is allowed by the issue (staleness under one second) and can sit in front of
 * probe() later without changing this file's contract. Everything here is reentrant; the root
 * is immutable after pt_static_root_open and shared by all threads.
 */
#include "handler/static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/common.h"
#include "handler/mime.h"
#include "http/h1_parse.h"
#include "route/route.h"

#define REL_MAX PATH_MAX /* bytes of a root-relative path, with room for index and suffix */

struct pt_static_root {
    int dirfd; /* O_PATH | O_DIRECTORY descriptor of the root */
    char *index[PT_STATIC_MAX_INDEX];
    size_t n_index; /* >= 1 */
    bool spa;
    bool precompressed;
    char *cache_control; /* NULL: none */
    int dotfiles;
    char *not_found_page; /* NULL: none */
};

static bool force_walk; /* test hook: behave as if openat2 were missing */

void pt_static_set_force_walk(bool on)
{
    force_walk = on;
}

void pt_static_settings_init(struct pt_static_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->index[0] = "index.html";
    s->n_index = 1;
    s->precompressed = true;
    s->dotfiles = PT_STATIC_DOT_DENY;
    s->not_found_page = "404.html";
}

/* ---- opening beneath the root ---- */

/* Opens rel (relative, no "." or ".." segments) one component at a time with O_NOFOLLOW. */
static int walk_open(int rootfd, const char *rel, int flags)
{
    char comp[NAME_MAX + 1];
    int dfd = rootfd;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n > NAME_MAX) {
            if (dfd != rootfd)
                close(dfd);
            return n == 0 ? -ENOENT : -ENAMETOOLONG;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        int f = slash ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC : flags | O_NOFOLLOW;
        int fd = openat(dfd, comp, f);
        int err = errno;
        if (dfd != rootfd)
            close(dfd);
        if (fd < 0)
            return -err;
        if (!slash)
            return fd;
        dfd = fd;
        p = slash + 1;
    }
}

/* Opens rel ("" is the root itself) beneath rootfd. Returns a descriptor or -errno (EXDEV: a
   symlink or path that would leave the root). */
static int open_beneath(int rootfd, const char *rel, int flags)
{
    /* openat2 rejects flags that O_PATH ignores (EINVAL), so O_NOCTTY only without it. */
    flags |= O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);
    if (rel[0] == '\0')
        rel = ".";
    if (!force_walk) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = (uint64_t)flags;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        for (int tries = 0; tries < 3; tries++) {
            long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
            if (fd >= 0)
                return (int)fd;
            if (errno != EAGAIN) /* EAGAIN: a concurrent rename while resolving */
                break;
        }
        if (errno != ENOSYS)
            return -errno;
    }
    if (strcmp(rel, ".") == 0) {
        int fd = openat(rootfd, ".", flags);
        return fd < 0 ? -errno : fd;
    }
    return walk_open(rootfd, rel, flags);
}

/* Stats rel without opening it for I/O. Returns 0 with *st, or -errno. */
static int probe(int rootfd, const char *rel, struct stat *st)
{
    int fd = open_beneath(rootfd, rel, O_PATH);
    if (fd < 0)
        return fd;
    int rc = fstat(fd, st) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Opens rel for reading (O_NONBLOCK: a FIFO does not wait for a writer) and stats it: one
   open serves both the decision and the body, as nginx does. Returns 0 with *st and, for a
   regular file, *fd (owned by the caller; -1 otherwise), or -errno. */
static int probe_open(int rootfd, const char *rel, struct stat *st, int *fd)
{
    *fd = -1;
    int f = open_beneath(rootfd, rel, O_RDONLY | O_NONBLOCK);
    if (f < 0)
        return f;
    if (fstat(f, st) != 0) {
        int rc = -errno;
        close(f);
        return rc;
    }
    if (S_ISREG(st->st_mode))
        *fd = f;
    else
        close(f);
    return 0;
}

static bool is_missing(int rc)
{
    return rc == -ENOENT || rc == -ENOTDIR || rc == -ELOOP || rc == -EXDEV || rc == -ENAMETOOLONG;
}

/* ---- root ---- */

static bool valid_rel(const char *s, bool allow_slash)
{
    if (!s || !*s || *s == '/')
        return false;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (n > NAME_MAX || (e && !allow_slash))
            return false;
        if (!e)
            return true;
        p = e + 1;
    }
}

void pt_static_root_free(struct pt_static_root *root)
{
    if (!root)
        return;
    if (root->dirfd >= 0)
        close(root->dirfd);
    for (size_t i = 0; i < root->n_index; i++)
        free(root->index[i]);
    free(root->cache_control);
    free(root->not_found_page);
    free(root);
}

int pt_static_root_open(const struct pt_static_settings *s, struct pt_static_root **out, char *err,
                        size_t errlen)
{
    int rc = -EINVAL;
    struct pt_static_root *root = calloc(1, sizeof(*root));
    *out = NULL;
    if (!root) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    root->dirfd = -1;
    if (!s->root || !*s->root) {
        snprintf(err, errlen, "static: root is required");
        goto fail;
    }
    if (s->n_index > PT_STATIC_MAX_INDEX) {
        snprintf(err, errlen, "static: at most %d index names", PT_STATIC_MAX_INDEX);
        goto fail;
    }
    size_t n_index = s->n_index ? s->n_index : 1;
    for (size_t i = 0; i < n_index; i++) {
        const char *name = s->n_index ? s->index[i] : "index.html";
        if (!valid_rel(name, false)) {
            snprintf(err, errlen, "static: index name \"%s\" must be a plain file name",
                     name ? name : "");
            goto fail;
        }
        root->index[i] = strdup(name);
        if (!root->index[i])
            goto nomem;
        root->n_index = i + 1;
    }
    if (s->dotfiles < PT_STATIC_DOT_DENY || s->dotfiles > PT_STATIC_DOT_IGNORE) {
        snprintf(err, errlen, "static: bad dotfiles setting");
        goto fail;
    }
    if (s->not_found_page && *s->not_found_page) {
        if (!valid_rel(s->not_found_page, true)) {
            snprintf(err, errlen, "static: not_found_page \"%s\" must be a path under root",
                     s->not_found_page);
            goto fail;
        }
        if (!(root->not_found_page = strdup(s->not_found_page)))
            goto nomem;
    }
    if (s->cache_control) {
        for (const char *p = s->cache_control; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                snprintf(err, errlen, "static: cache_control holds a control character");
                goto fail;
            }
        if (!(root->cache_control = strdup(s->cache_control)))
            goto nomem;
    }
    root->spa = s->spa;
    root->precompressed = s->precompressed;
    root->dotfiles = s->dotfiles;
    root->dirfd = open(s->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root->dirfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "static: root \"%s\": %s", s->root, strerror(errno));
        goto fail;
    }
    pt_mime_init();
    *out = root;
    return 0;
nomem:
    rc = -ENOMEM;
    snprintf(err, errlen, "out of memory");
fail:
    pt_static_root_free(root);
    return rc;
}

/* ---- small parsers ---- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads decimal digits at *p (at least one), saturating at UINT64_MAX. */
static bool read_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (*p < end && is_digit(**p)) {
        unsigned d = (unsigned)(**p - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
        (*p)++;
    }
    *v = x;
    return *p > s;
}

int pt_static_parse_range(const char *v, size_t n, uint64_t size, uint64_t *off, uint64_t *len)
{
    const char *p = v, *end = v + n;
    if (n < 6 || strncasecmp(v, "bytes=", 6) != 0)
        return PT_STATIC_RANGE_WHOLE;
    p += 6;
    int specs = 0;
    bool suffix = false, has_last = false;
    uint64_t first = 0, last = 0;
    for (;;) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++; /* empty list elements are allowed (RFC 9110 §5.6.1) */
        if (p == end)
            break;
        if (++specs > 1)
            return PT_STATIC_RANGE_WHOLE; /* several ranges: the whole file (documented) */
        if (*p == '-') {
            p++;
            suffix = true;
            if (!read_u64(&p, end, &last))
                return PT_STATIC_RANGE_WHOLE;
        } else {
            if (!read_u64(&p, end, &first) || p == end || *p != '-')
                return PT_STATIC_RANGE_WHOLE;
            p++;
            has_last = read_u64(&p, end, &last);
            if (has_last && last < first)
                return PT_STATIC_RANGE_WHOLE; /* invalid range-spec: ignore the header */
        }
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ',')
            return PT_STATIC_RANGE_WHOLE;
    }
    if (specs == 0)
        return PT_STATIC_RANGE_WHOLE;
    if (suffix) {
        if (last == 0 || size == 0)
            return PT_STATIC_RANGE_UNSATISFIABLE;
        *len = last < size ? last : size;
        *off = size - *len;
        return PT_STATIC_RANGE_PARTIAL;
    }
    if (first >= size)
        return PT_STATIC_RANGE_UNSATISFIABLE;
    if (!has_last || last > size - 1)
        last = size - 1;
    *off = first;
    *len = last - first + 1;
    return PT_STATIC_RANGE_PARTIAL;
}

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wdays_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int month_of(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(p, months[i], 3) == 0)
            return i;
    return -1;
}

static bool num2(const char *p, int *v)
{
    if (!is_digit(p[0]) || !is_digit(p[1]))
        return false;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return true;
}

/* "HH:MM:SS" at p (8 bytes). */
static bool hms(const char *p, struct tm *tm)
{
    return num2(p, &tm->tm_hour) && p[2] == ':' && num2(p + 3, &tm->tm_min) && p[5] == ':' &&
           num2(p + 6, &tm->tm_sec) && tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec < 61;
}

int pt_static_parse_http_date(const char *v, size_t n, time_t *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int y1, y2;
    if (n == 29 && v[3] == ',' && v[4] == ' ') {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (!num2(v + 5, &tm.tm_mday) || v[7] != ' ' || (tm.tm_mon = month_of(v + 8)) < 0 ||
            v[11] != ' ' || !num2(v + 12, &y1) || !num2(v + 14, &y2) || v[16] != ' ' ||
            !hms(v + 17, &tm) || memcmp(v + 25, " GMT", 4) != 0)
            return -1;
        tm.tm_year = y1 * 100 + y2 - 1900;
    } else if (n == 24 && v[3] == ' ') {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if ((tm.tm_mon = month_of(v + 4)) < 0 || v[7] != ' ')
            return -1;
        if (v[8] == ' ' && is_digit(v[9]))
            tm.tm_mday = v[9] - '0';
        else if (!num2(v + 8, &tm.tm_mday))
            return -1;
        if (v[10] != ' ' || !hms(v + 11, &tm) || v[19] != ' ' || !num2(v + 20, &y1) ||
            !num2(v + 22, &y2))
            return -1;
        tm.tm_year = y1 * 100 + y2 - 1900;
    } else {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        const char *comma = memchr(v, ',', n);
        size_t wl = comma ? (size_t)(comma - v) : 0;
        bool ok = false;
        for (int i = 0; i < 7 && comma; i++)
            ok |= strlen(wdays_long[i]) == wl && memcmp(v, wdays_long[i], wl) == 0;
        if (!ok || n != wl + 24)
            return -1;
        const char *p = comma + 1;
        if (p[0] != ' ' || !num2(p + 1, &tm.tm_mday) || p[3] != '-' ||
            (tm.tm_mon = month_of(p + 4)) < 0 || p[7] != '-' || !num2(p + 8, &y2) || p[10] != ' ' ||
            !hms(p + 11, &tm) || memcmp(p + 19, " GMT", 4) != 0)
            return -1;
        tm.tm_year = y2 < 70 ? y2 + 100 : y2; /* RFC 9110 §5.6.7: the nearest century */
    }
    if (tm.tm_mday < 1 || tm.tm_mday > 31)
        return -1;
    time_t r = timegm(&tm);
    if (r == (time_t)-1)
        return -1;
    *t = r;
    return 0;
}

static size_t fmt_http_date(char *buf, size_t cap, time_t t)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        return 0;
    int n = snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static struct pt_str trim(const char *p, size_t n)
{
    while (n && is_ows(*p)) {
        p++;
        n--;
    }
    while (n && is_ows(p[n - 1]))
        n--;
    return (struct pt_str){p, n};
}

/*
 * Does the entity-tag list v (If-Match / If-None-Match) hold "*" or a tag matching etag?
 * strong: RFC 9110 §8.8.3.2 strong comparison (both strong and equal); else weak (opaque
 * parts equal). A malformed list matches nothing.
 */
static bool etag_list_match(struct pt_str v, const char *etag, size_t elen, bool strong)
{
    const char *p = v.p, *end = v.p + v.n;
    for (;;) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        if (p == end)
            return false;
        if (*p == '*')
            return true;
        bool weak = false;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            weak = true;
            p += 2;
        }
        if (p == end || *p != '"')
            return false;
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q)
            return false;
        size_t tl = (size_t)(q - p + 1);
        if (tl == elen && memcmp(p, etag, elen) == 0 && !(strong && weak))
            return true;
        p = q + 1;
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ',')
            return false;
    }
}

bool pt_static_if_range_ok(const char *v, size_t n, const char *etag, size_t etag_len, time_t mtime)
{
    struct pt_str s = trim(v, n);
    if (s.n == 0)
        return false;
    if (s.p[0] == '"' || (s.n >= 2 && s.p[0] == 'W' && s.p[1] == '/'))
        return s.p[0] == '"' && s.n == etag_len && memcmp(s.p, etag, etag_len) == 0;
    time_t t;
    return pt_static_parse_http_date(s.p, s.n, &t) == 0 && t == mtime;
}

/*
 * Iterates a comma list of "token[;params]" (Accept, Accept-Encoding), returning each
 * element's first token and its q in thousandths (1000 when absent, 0 when malformed).
 */
static bool next_qelem(const char **pp, const char *end, struct pt_str *name, int *q)
{
    const char *p = *pp;
    while (p < end && (is_ows(*p) || *p == ','))
        p++;
    if (p == end)
        return false;
    const char *s = p;
    while (p < end && *p != ',' && *p != ';' && !is_ows(*p))
        p++;
    *name = (struct pt_str){s, (size_t)(p - s)};
    *q = 1000;
    bool in_quote = false;
    while (p < end && (in_quote || *p != ',')) {
        if (*p == '"')
            in_quote = !in_quote;
        else if (in_quote && *p == '\\' && p + 1 < end)
            p++;
        else if (!in_quote && *p == ';') {
            const char *k = p + 1;
            while (k < end && is_ows(*k))
                k++;
            if (end - k >= 2 && (k[0] == 'q' || k[0] == 'Q') && k[1] == '=') {
                k += 2;
                int val = 0;
                if (k < end && (*k == '0' || *k == '1')) {
                    val = (*k - '0') * 1000;
                    k++;
                    if (k < end && *k == '.') {
                        k++;
                        int scale = 100;
                        while (k < end && is_digit(*k) && scale > 0) {
                            val += (*k - '0') * scale;
                            scale /= 10;
                            k++;
                        }
                    }
                    if (val > 1000)
                        val = 0;
                }
                *q = val;
            }
        }
        p++;
    }
    *pp = p;
    return true;
}

/* Accept names text/html with q > 0 (the spa fallback serves HTML only to HTML readers). */
static bool accepts_html(struct pt_str accept)
{
    const char *p = accept.p, *end = accept.p + accept.n;
    struct pt_str name;
    int q;
    if (!p)
        return false;
    while (next_qelem(&p, end, &name, &q))
        if (PT_STR_CASEEQ_LIT(name, "text/html") && q > 0)
            return true;
    return false;
}

enum { ENC_BR, ENC_ZSTD, ENC_GZIP, ENC_N };
static const char *const enc_name[ENC_N] = {"br", "zstd", "gzip"};
static const char *const enc_suffix[ENC_N] = {".br", ".zst", ".gz"};

/* q (thousandths) of each coding from Accept-Encoding; "*" covers codings not named. */
static void encoding_q(struct pt_str ae, int q[ENC_N])
{
    int star = -1;
    bool named[ENC_N] = {false, false, false};
    for (int i = 0; i < ENC_N; i++)
        q[i] = 0;
    if (!ae.p)
        return;
    const char *p = ae.p, *end = ae.p + ae.n;
    struct pt_str name;
    int v;
    while (next_qelem(&p, end, &name, &v)) {
        int i = -1;
        if (PT_STR_CASEEQ_LIT(name, "br"))
            i = ENC_BR;
        else if (PT_STR_CASEEQ_LIT(name, "zstd"))
            i = ENC_ZSTD;
        else if (PT_STR_CASEEQ_LIT(name, "gzip") || PT_STR_CASEEQ_LIT(name, "x-gzip"))
            i = ENC_GZIP;
        else if (PT_STR_EQ_LIT(name, "*"))
            star = v;
        if (i >= 0) {
            q[i] = v;
            named[i] = true;
        }
    }
    for (int i = 0; i < ENC_N; i++)
        if (!named[i] && star > 0)
            q[i] = star;
}

/* ---- header block ---- */

struct hdr {
    struct pt_static_result *out;
    bool overflow;
};

static void hdr_add(struct hdr *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hdr_add(struct hdr *h, const char *fmt, ...)
{
    struct pt_static_result *o = h->out;
    if (h->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->hdr_cap - o->hdr_len;
    int n = vsnprintf(o->hdr + o->hdr_len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        h->overflow = true;
        return;
    }
    o->hdr_len += (size_t)n;
}

static int finish(struct hdr *h)
{
    struct pt_static_result *o = h->out;
    if (!h->overflow)
        return 0;
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    o->hdr_len = 0;
    o->cl_line_len = 0;
    return -ENOBUFS;
}

static int error_status(struct pt_static_result *out, int status)
{
    struct hdr h = {out, false};
    out->status = status;
    out->is_error_page = true;
    if (status == 405)
        hdr_add(&h, "Allow: GET, HEAD\r\n");
    return finish(&h);
}

/* ---- path mapping ---- */

enum map_rc { MAP_OK, MAP_MISSING, MAP_DENY };

/*
 * Copies the normalised path into rel as a root-relative path ("" for the root itself, no
 * trailing '/'), decoding %25 and refusing anything that could name a different file than
 * the one a plain reading of the path suggests. *slash: the path ended with '/'.
 */
static int map_path(const struct pt_static_root *root, struct pt_str path, char *rel, size_t cap,
                    size_t *rlen, bool *slash)
{
    const char *p = path.p, *end = path.p + path.n;
    size_t n = 0;
    if (!p || path.n == 0 || p[0] != '/')
        return MAP_MISSING;
    *slash = end[-1] == '/';
    p++;
    bool dot_ignored = false;
    for (int seg = 0; p < end; seg++) {
        const char *s = p;
        while (p < end && *p != '/')
            p++;
        size_t sl = (size_t)(p - s);
        if (sl == 0)
            return MAP_MISSING; /* "//": normalisation removes it, so this is not from it */
        if (n > 0) {
            if (n + 1 >= cap)
                return MAP_MISSING;
            rel[n++] = '/';
        }
        size_t start = n;
        for (size_t i = 0; i < sl; i++) {
            char c = s[i];
            if (c == '\0')
                return MAP_MISSING;
            if (c == '%') {
                /* Only %25 (a literal '%') is left encoded by normalisation besides %2F,
                   and %2F must never become a separator. */
                if (i + 2 >= sl || s[i + 1] != '2' || s[i + 2] != '5')
                    return MAP_MISSING;
                i += 2;
            }
            if (n + 1 >= cap)
                return MAP_MISSING;
            rel[n++] = c;
        }
        size_t dl = n - start;
        if (dl > NAME_MAX)
            return MAP_MISSING;
        if (rel[start] == '.') {
            if (dl == 1 || (dl == 2 && rel[start + 1] == '.'))
                return MAP_MISSING;
            bool well_known = seg == 0 && dl == 11 && memcmp(rel + start, ".well-known", 11) == 0;
            if (!well_known && root->dotfiles == PT_STATIC_DOT_DENY)
                return MAP_DENY;
            if (!well_known && root->dotfiles == PT_STATIC_DOT_IGNORE)
                dot_ignored = true;
        }
        if (p < end)
            p++; /* the '/' */
    }
    rel[n] = '\0';
    *rlen = n;
    return dot_ignored ? MAP_MISSING : MAP_OK;
}

/* rel + "/" + name into rel (cap bytes); false when it does not fit. */
static bool join(char *rel, size_t rlen, size_t cap, const char *name, size_t *out_len)
{
    size_t nl = strlen(name);
    size_t need = rlen + (rlen ? 1 : 0) + nl + 1;
    if (need > cap)
        return false;
    if (rlen)
        rel[rlen++] = '/';
    memcpy(rel + rlen, name, nl + 1);
    *out_len = rlen + nl;
    return true;
}

/* ---- responses ---- */

static int redirect_dir(const struct pt_static_request *req, struct pt_static_result *out)
{
    struct pt_static_result *o = out;
    struct hdr h = {out, false};
    struct pt_str mount = req->mount;
    if (mount.p && mount.n && mount.p[mount.n - 1] == '/')
        mount.n--;
    out->status = 301;
    hdr_add(&h, "Location: ");
    for (int part = 0; part < 2 && !h.overflow; part++) {
        struct pt_str s = part == 0 ? mount : req->path;
        if (!s.p || s.n == 0)
            continue;
        ssize_t w = pt_path_encode(s.p, s.n, o->hdr + o->hdr_len, o->hdr_cap - o->hdr_len);
        if (w < 0)
            h.overflow = true;
        else
            o->hdr_len += (size_t)w;
    }
    if (req->query.n)
        hdr_add(&h, "/?%.*s\r\n", (int)req->query.n, req->query.p);
    else
        hdr_add(&h, "/\r\n");
    return finish(&h);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Status, window and validators of a file for this request (no I/O). */
struct decision {
    int status; /* 200 206 304 412 416 */
    uint64_t off, len, size;
    char etag[64];
    size_t etag_len;
    char lm[40];
    size_t lm_len;
};

static void decide(const struct pt_static_request *req, const struct stat *st, struct decision *d)
{
    uint64_t mns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    time_t mtime = st->st_mtim.tv_sec;
    int n = snprintf(d->etag, sizeof(d->etag), "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
                     (unsigned long long)st->st_size, (unsigned long long)mns);
    d->etag_len = n > 0 && (size_t)n < sizeof(d->etag) ? (size_t)n : 0;
    d->lm_len = fmt_http_date(d->lm, sizeof(d->lm), mtime);
    d->size = (uint64_t)st->st_size;
    d->off = 0;
    d->len = d->size;
    time_t t;
    /* RFC 9110 §13.2.2: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since,
       If-Range, in that order. */
    if (req->if_match.p) {
        if (!etag_list_match(req->if_match, d->etag, d->etag_len, true)) {
            d->status = 412;
            return;
        }
    } else if (req->if_unmodified_since.p &&
               pt_static_parse_http_date(req->if_unmodified_since.p, req->if_unmodified_since.n,
                                         &t) == 0 &&
               mtime > t) {
        d->status = 412;
        return;
    }
    if (req->if_none_match.p) {
        if (etag_list_match(req->if_none_match, d->etag, d->etag_len, false)) {
            d->status = 304;
            return;
        }
    } else if (req->if_modified_since.p &&
               pt_static_parse_http_date(req->if_modified_since.p, req->if_modified_since.n, &t) ==
                   0 &&
               mtime <= t) {
        d->status = 304;
        return;
    }
    d->status = 200;
    /* Range is defined for GET only (RFC 9110 §14.2); HEAD gets the 200 headers. */
    if (req->method != PT_METHOD_GET || !req->range.p)
        return;
    if (req->if_range.p &&
        !pt_static_if_range_ok(req->if_range.p, req->if_range.n, d->etag, d->etag_len, mtime))
        return;
    uint64_t off, len;
    switch (pt_static_parse_range(req->range.p, req->range.n, d->size, &off, &len)) {
    case PT_STATIC_RANGE_PARTIAL:
        d->status = 206;
        d->off = off;
        d->len = len;
        break;
    case PT_STATIC_RANGE_UNSATISFIABLE:
        d->status = 416;
        break;
    default:
        break;
    }
}

/*
 * Answers with the regular file rel (probed: *st). Picks a precompressed sibling, evaluates
 * the conditionals and opens the descriptor. Returns 0, 1 when the file vanished or stopped
 * being a regular file (the caller treats the path as missing), or -errno.
 */
static int serve_file_fd(const struct pt_static_root *root, const struct pt_static_request *req,
                         char *rel, size_t rlen, size_t cap, const struct stat *st0, int *fd0,
                         struct pt_static_result *out)
{
    struct stat st = *st0, sst;
    const char *type = pt_mime_type(rel, rlen);
    int enc = -1;
    bool vary = false;
    if (root->precompressed && rlen + 5 <= cap) {
        int q[ENC_N], order[ENC_N] = {ENC_BR, ENC_ZSTD, ENC_GZIP};
        encoding_q(req->accept_encoding, q);
        /* Highest q first; ties keep the server's order br, zstd, gzip (smallest first). */
        for (int i = 1; i < ENC_N; i++)
            for (int j = i; j > 0 && q[order[j]] > q[order[j - 1]]; j--) {
                int tmp = order[j];
                order[j] = order[j - 1];
                order[j - 1] = tmp;
            }
        for (int i = 0; i < ENC_N && enc < 0; i++) {
            int e = order[i];
            if (vary && q[e] == 0)
                break; /* the rest are refused: Vary is already decided */
            memcpy(rel + rlen, enc_suffix[e], strlen(enc_suffix[e]) + 1);
            int rc = probe(root->dirfd, rel, &sst);
            if (rc == 0 && S_ISREG(sst.st_mode)) {
                vary = true;
                if (q[e] > 0)
                    enc = e;
            } else if (rc < 0 && !is_missing(rc) && rc != -EACCES) {
                rel[rlen] = '\0';
                return rc;
            }
        }
        if (enc >= 0) {
            st = sst;
            memcpy(rel + rlen, enc_suffix[enc], strlen(enc_suffix[enc]) + 1);
        } else {
            rel[rlen] = '\0';
        }
    }

    struct decision d;
    decide(req, &st, &d);
    bool body = (d.status == 200 || d.status == 206) && req->method == PT_METHOD_GET;
    if (body) {
        int fd;
        struct stat st2;
        if (enc < 0 && *fd0 >= 0) {
            fd = *fd0; /* the descriptor the decision was made from: no second open */
            *fd0 = -1;
            st2 = st;
        } else {
            fd = open_beneath(root->dirfd, rel, O_RDONLY | O_NONBLOCK);
            if (fd == -EACCES || fd == -EPERM)
                return error_status(out, 403);
            if (fd < 0)
                return is_missing(fd) ? 1 : fd;
            if (fstat(fd, &st2) != 0) {
                int rc = -errno;
                close(fd);
                return rc;
            }
        }
        if (!S_ISREG(st2.st_mode)) {
            close(fd);
            return 1;
        }
        if (!same_file(&st, &st2)) {
            decide(req, &st2, &d); /* headers must describe what the descriptor holds */
            body = d.status == 200 || d.status == 206;
        }
        if (body)
            out->fd = fd;
        else
            close(fd);
    }

    struct hdr h = {out, false};
    out->status = d.status;
    if (d.status == 412)
        return error_status(out, 412);
    if (d.status == 416) {
        out->is_error_page = true;
        hdr_add(&h, "Content-Range: bytes */%llu\r\n", (unsigned long long)d.size);
        return finish(&h);
    }
    if (d.status != 304) {
        hdr_add(&h, "Content-Length: %llu\r\n", (unsigned long long)d.len);
        out->cl_line_len = out->hdr_len;
        out->offset = d.off;
        out->length = d.len;
        hdr_add(&h, "Content-Type: %s\r\n", type);
        if (enc >= 0)
            hdr_add(&h, "Content-Encoding: %s\r\n", enc_name[enc]);
    }
    if (vary)
        hdr_add(&h, "Vary: Accept-Encoding\r\n");
    hdr_add(&h, "ETag: %.*s\r\n", (int)d.etag_len, d.etag);
    if (d.lm_len)
        hdr_add(&h, "Last-Modified: %.*s\r\n", (int)d.lm_len, d.lm);
    if (root->cache_control)
        hdr_add(&h, "Cache-Control: %s\r\n", root->cache_control);
    if (d.status != 304)
        hdr_add(&h, "Accept-Ranges: bytes\r\n");
    if (d.status == 206)
        hdr_add(&h, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)d.off,
                (unsigned long long)(d.off + d.len - 1), (unsigned long long)d.size);
    return finish(&h);
}

/* serve_file_fd, taking ownership of fd0 (a descriptor of rel from probe_open, or -1). */
static int serve_file(const struct pt_static_root *root, const struct pt_static_request *req,
                      char *rel, size_t rlen, size_t cap, const struct stat *st0, int fd0,
                      struct pt_static_result *out)
{
    int rc = serve_file_fd(root, req, rel, rlen, cap, st0, &fd0, out);
    if (fd0 >= 0)
        close(fd0);
    return rc;
}

/* The site's 404 page when it exists, else a bare 404 for the caller's error page. */
static int not_found(const struct pt_static_root *root, const struct pt_static_request *req,
                     struct pt_static_result *out)
{
    struct stat st;
    if (!root->not_found_page)
        return error_status(out, 404);
    int fd = open_beneath(root->dirfd, root->not_found_page, O_PATH);
    if (fd < 0)
        return is_missing(fd) || fd == -EACCES ? error_status(out, 404) : fd;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    close(fd);
    if (rc < 0)
        return rc;
    if (!S_ISREG(st.st_mode))
        return error_status(out, 404);
    if (req->method == PT_METHOD_GET) {
        fd = open_beneath(root->dirfd, root->not_found_page, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
            return is_missing(fd) || fd == -EACCES ? error_status(out, 404) : fd;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return error_status(out, 404);
        }
        out->fd = fd;
    }
    struct hdr h = {out, false};
    out->status = 404;
    out->offset = 0;
    out->length = (uint64_t)st.st_size;
    hdr_add(&h, "Content-Length: %llu\r\n", (unsigned long long)st.st_size);
    out->cl_line_len = out->hdr_len;
    hdr_add(&h, "Content-Type: %s\r\n",
            pt_mime_type(root->not_found_page, strlen(root->not_found_page)));
    return finish(&h);
}

int pt_static_resolve(const struct pt_static_root *root, const struct pt_static_request *req,
                      struct pt_static_result *out)
{
    char rel[REL_MAX];
    size_t rlen = 0, ilen;
    bool slash = false;
    struct stat st;
    int rc;

    out->status = 0;
    out->fd = -1;
    out->offset = 0;
    out->length = 0;
    out->hdr_len = 0;
    out->cl_line_len = 0;
    out->is_error_page = false;
    if (!out->hdr || out->hdr_cap == 0)
        return -ENOBUFS;
    if (req->method != PT_METHOD_GET && req->method != PT_METHOD_HEAD)
        return error_status(out, 405);

    /* Leave room for "/" + an index name and a ".zst" suffix (checked again in join). */
    int m = map_path(root, req->path, rel, sizeof(rel) - NAME_MAX - 8, &rlen, &slash);
    if (m == MAP_DENY)
        return error_status(out, 403);
    if (m == MAP_OK) {
        int fd = -1;
        rc = probe_open(root->dirfd, rel, &st, &fd);
        if (rc == -EACCES || rc == -EPERM)
            return error_status(out, 403);
        if (rc < 0 && !is_missing(rc))
            return rc;
        if (rc == 0 && S_ISDIR(st.st_mode)) {
            if (!slash && rlen > 0)
                return redirect_dir(req, out);
            for (size_t i = 0; i < root->n_index; i++) {
                if (!join(rel, rlen, sizeof(rel), root->index[i], &ilen))
                    break;
                rc = probe_open(root->dirfd, rel, &st, &fd);
                if (rc == 0 && S_ISREG(st.st_mode)) {
                    rc = serve_file(root, req, rel, ilen, sizeof(rel), &st, fd, out);
                    if (rc <= 0)
                        return rc;
                    break;
                }
                if (rc < 0 && !is_missing(rc) && rc != -EACCES)
                    return rc;
                rel[rlen] = '\0';
            }
        } else if (rc == 0 && S_ISREG(st.st_mode) && !slash) {
            rc = serve_file(root, req, rel, rlen, sizeof(rel), &st, fd, out);
            if (rc <= 0)
                return rc;
        } else if (fd >= 0) {
            close(fd); /* a file asked for as a directory ("/a.txt/"): not found */
        }
    }

    if (root->spa && accepts_html(req->accept)) {
        memcpy(rel, root->index[0], strlen(root->index[0]) + 1);
        rlen = strlen(rel);
        int fd = -1;
        rc = probe_open(root->dirfd, rel, &st, &fd);
        if (rc == 0 && S_ISREG(st.st_mode)) {
            rc = serve_file(root, req, rel, rlen, sizeof(rel), &st, fd, out);
            if (rc <= 0)
                return rc;
        } else if (rc < 0 && !is_missing(rc) && rc != -EACCES) {
            return rc;
        }
    }
    return not_found(root, req, out);
}
