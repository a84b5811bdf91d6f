/*
 * static.c - the `static` action's decision: which file, which status, which header lines.
 *
 * pt_static_resolve() maps a normalised request path to a path relative to the root, opens
 * it relative to the root's directory descriptor and answers like a careful file server:
 *
 *   path checks ─► look (cache, else open + fstat) ─► directory? ─► no slash: 301 path + "/"
 *        │                 │                                └──► slash: first index file that exists
 *        │                 └─ missing ─► spa and Accept has text/html: root index, 200
 *        │                                 └─► 404.html with 404, else a bare 404
 *        └─ dotfile: deny ─► 403, ignore ─► as missing
 *   regular file ─► precompressed sibling (look) ─► If-Match / If-Unmodified-Since (412)
 *        ─► If-None-Match / If-Modified-Since (304) ─► If-Range + Range (206 / 416)
 *        ─► the descriptor the decision was made from goes to the connection
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
 * Rule files are never served (Netlify never publishes them; _redirects holds backend
 * addresses): a last segment named _redirects, _headers or netlify.toml (or a .br/.zst/.gz copy
 * of one), a configured rule file's root-relative path (or its copies) and, after the open, a
 * configured rule file's device and inode (a hard link, an in-root symlink) all answer as
 * missing, so the spa and 404 logic runs as for a file that is not there. The path checks come
 * before the open so that a replaced file (an editor's rename) stays hidden until a reload.
 *
 * A path is probed with O_PATH and fstat-ed first, so a FIFO or device node in the root is never
 * opened for I/O; only a regular file is then opened O_RDONLY | O_NONBLOCK and fstat-ed again
 * (same device and inode, or it is treated as gone). Every header (ETag, Last-Modified, length)
 * is computed from that descriptor's own stat, so headers always describe the bytes it holds.
 *
 * Open-file cache (per thread; issue: "Open file handles and stat results may be cached
 * briefly, never past a change on disk being seen within a second"). look() sits in front of
 * every open: a hash of (root id, root-relative path) → what opening it found: a regular file
 * (a shared descriptor, its size/inode/mtime, the ETag and Last-Modified strings already
 * formatted, the MIME type), a directory, something else, or missing (a negative entry: the
 * precompressed siblings that do not exist are the common case). An entry is trusted for
 * PT_STATIC_CACHE_VALID_MS of the worker loop's clock (no clock read per request); after that
 * the path is opened and stat-ed again from scratch (openat2 beneath the root, as a miss), so
 * a replaced, edited or deleted file is seen within a second. Keys are the paths map_path
 * produces after every check (dot-segments, dotfiles, escapes), and the value is exactly what
 * open_beneath returned for that path: a hit can only give what the uncached path would have
 * given less than a second earlier, never a file it would refuse. Roots are keyed by a
 * 64-bit id drawn at pt_static_root_open and never reused, so a reload's new root never sees
 * an old root's entries, even at a reused address; those age out (LRU bound, idle expiry).
 *
 * Descriptors are shared: a cached file is refcounted (struct pt_static_file: the entry holds
 * one reference, each connection sending from it another) and closed with the last one, so
 * an entry evicted mid-send never pulls the descriptor from under a connection. Senders use
 * explicit offsets (sendfile with an offset pointer, pread), never the shared file position.
 * Everything is single-threaded: the cache is thread-local and a connection never changes
 * thread, so no locks or atomics. Bounds: PT_STATIC_CACHE_MAX_ENTRIES entries (fewer when
 * RLIMIT_NOFILE is small: each may hold a descriptor), paths up to PT_STATIC_CACHE_REL_MAX
 * bytes. Rejected: dup() per request (two system calls where the cache saves three), sharing
 * one cache between threads (a lock on the request path), inotify (a descriptor and a watch
 * per directory, and overflow handling, for a freshness bound of one second we get for free).
 * The root is immutable after pt_static_root_open and shared by all threads.
 *
 * The header values the decision reads and writes (Range, HTTP-dates, entity-tag lists,
 * If-Range, Accept and Accept-Encoding q-values) are parsed in static_parse.c.
 */
#include "handler/static.h"
#include "handler/static_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/common.h"
#include "handler/mime.h"
#include "http/h1_parse.h"
#include "route/route.h"

#define REL_MAX PATH_MAX /* bytes of a root-relative path, with room for index and suffix */

/* A file's identity: a hard link or a symlink inside the root reaches the same one. */
struct file_id {
    uint64_t dev, ino;
};

struct pt_static_root {
    int dirfd;   /* O_PATH | O_DIRECTORY descriptor of the root */
    uint64_t id; /* unique for the process's life: the cache's key, never reused */
    char *index[PT_STATIC_MAX_INDEX];
    size_t n_index; /* >= 1 */
    bool spa;
    bool precompressed;
    char *cache_control; /* NULL: none */
    int dotfiles;
    char *not_found_page;       /* NULL: none */
    struct file_id *hidden_ids; /* the configured rule files as they were at open */
    size_t n_hidden_ids;
    char **hidden_rels; /* root-relative paths of the configured rule files under the root */
    size_t n_hidden_rels;
};

static bool force_walk; /* test hook: behave as if openat2 were missing */
static atomic_uint_fast64_t last_root_id;

void pt_static_set_force_walk(bool on)
{
    force_walk = on;
    pt_static_cache_flush();
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

static bool is_missing(int rc)
{
    return rc == -ENOENT || rc == -ENOTDIR || rc == -ELOOP || rc == -EXDEV || rc == -ENAMETOOLONG;
}

/* ---- what opening a path found, cached per thread ---- */

struct pt_static_file {
    int fd;        /* O_RDONLY | O_NONBLOCK, regular file; closed with the last reference */
    uint32_t refs; /* the cache entry's (while it holds the file) + one per sender */
};

/* The answer for one root-relative path: the unit look() returns and the cache stores. */
struct finfo {
    int rc;                      /* 0: found; else a missing-like -errno (is_missing) */
    uint32_t fmt;                /* st_mode & S_IFMT when rc == 0 */
    int fd;                      /* regular file: its descriptor; else -1 */
    struct pt_static_file *file; /* non-NULL: fd belongs to it and this finfo holds a
                                    reference; NULL with fd >= 0: this finfo owns fd */
    uint64_t dev, ino, size, mtime_ns;
    time_t mtime;
    const char *type; /* MIME type by the path's name (regular files) */
    uint8_t etag_len, lm_len;
    char etag[56]; /* "ino-size-mtime_ns" in hex: at most 53 bytes */
    char lm[32];   /* IMF-fixdate of mtime, 29 bytes; empty when out of range */
};

static void fi_release(struct finfo *fi)
{
    if (fi->file)
        pt_static_file_unref(fi->file);
    else if (fi->fd >= 0)
        close(fi->fd);
    fi->file = NULL;
    fi->fd = -1;
}

/* Probes rel (O_PATH + fstat) and, for a regular file only, opens it for reading and stats the
   descriptor: one open serves both the decision and the body. Returns 0 with *fi (owning the
   descriptor of a regular file), or -errno (fi->rc too). Never uses the cache. */
static int fetch(int rootfd, const char *rel, size_t rlen, struct finfo *fi)
{
    struct stat st;
    fi->fd = -1;
    fi->file = NULL;
    fi->fmt = 0;
    /* Probe with O_PATH first: a FIFO or device node in the root is never opened for I/O
       (opening either can block or have effects). Only a regular file is opened to read; if
       another file took its name in between, look again (twice at most). */
    int f = -1;
    for (int attempt = 0; f < 0; attempt++) {
        if (attempt == 2)
            return fi->rc = -EAGAIN; /* renamed over and over: not cached, answered as an error */
        int p = open_beneath(rootfd, rel, O_PATH);
        if (p < 0)
            return fi->rc = p;
        int rc = fstat(p, &st) != 0 ? -errno : 0;
        close(p);
        if (rc < 0)
            return fi->rc = rc;
        fi->rc = 0;
        fi->fmt = st.st_mode & S_IFMT;
        if (!S_ISREG(st.st_mode))
            return 0;
        dev_t dev = st.st_dev;
        ino_t ino = st.st_ino;
        f = open_beneath(rootfd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
        if (f < 0)
            return fi->rc = f;
        if (fstat(f, &st) != 0 || st.st_dev != dev || st.st_ino != ino) {
            close(f);
            f = -1;
        }
    }
    fi->fd = f;
    fi->dev = (uint64_t)st.st_dev;
    fi->ino = (uint64_t)st.st_ino;
    fi->size = (uint64_t)st.st_size;
    fi->mtime = st.st_mtim.tv_sec;
    fi->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    int n = snprintf(fi->etag, sizeof(fi->etag), "\"%llx-%llx-%llx\"", (unsigned long long)fi->ino,
                     (unsigned long long)fi->size, (unsigned long long)fi->mtime_ns);
    fi->etag_len = n > 0 && (size_t)n < sizeof(fi->etag) ? (uint8_t)n : 0;
    fi->lm_len = (uint8_t)pt_http_date_fmt(fi->lm, sizeof(fi->lm), fi->mtime);
    fi->type = pt_mime_type(rel, rlen);
    return 0;
}

struct link {
    struct link *prev, *next;
};

struct centry {
    struct centry *hnext, **hprev; /* bucket chain */
    struct link lru;               /* most recently used at cache.lru.next */
    uint64_t root_id;
    uint64_t checked_ms; /* loop time of the open/stat fi came from (at or before it) */
    uint64_t used_ms;    /* loop time of the last lookup */
    uint32_t hash;
    uint32_t rel_len;
    struct finfo fi; /* holds the cache's reference on fi.file */
    char rel[];      /* rel_len bytes + NUL */
};

#define CACHE_BUCKETS 1024 /* power of two, twice PT_STATIC_CACHE_MAX_ENTRIES */

_Static_assert(PT_STATIC_CACHE_VALID_MS < 1000, "the issue: a change is seen within a second");
_Static_assert(PT_STATIC_CACHE_MAX_ENTRIES <= CACHE_BUCKETS, "chains stay short");

struct cache {
    struct centry *bucket[CACHE_BUCKETS];
    struct link lru; /* list head */
    size_t n, cap;
    struct pt_static_cache_stats stats;
};

static __thread struct cache *tl_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;

static struct centry *lru_entry(struct link *l)
{
    return PT_CONTAINER_OF(l, struct centry, lru);
}

static void lru_unlink(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void lru_push_front(struct cache *c, struct link *l)
{
    l->prev = &c->lru;
    l->next = c->lru.next;
    c->lru.next->prev = l;
    c->lru.next = l;
}

static void entry_drop(struct cache *c, struct centry *e)
{
    *e->hprev = e->hnext;
    if (e->hnext)
        e->hnext->hprev = e->hprev;
    lru_unlink(&e->lru);
    fi_release(&e->fi);
    free(e);
    c->n--;
    c->stats.evictions++;
}

static void cache_drop_all(struct cache *c)
{
    while (c->lru.next != &c->lru)
        entry_drop(c, lru_entry(c->lru.next));
}

static void cache_destroy(void *p)
{
    struct cache *c = p;
    cache_drop_all(c);
    if (tl_cache == c)
        tl_cache = NULL;
    free(c);
}

static void cache_key_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_destroy) == 0;
}

/* This thread's cache, made on first use; NULL when out of memory (then nothing is cached). */
static struct cache *cache_get(void)
{
    if (tl_cache)
        return tl_cache;
    pthread_once(&cache_key_once, cache_key_init);
    struct cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->lru.prev = c->lru.next = &c->lru;
    /* Each entry may hold a descriptor: leave most of a small RLIMIT_NOFILE to connections. */
    struct rlimit rl;
    c->cap = PT_STATIC_CACHE_MAX_ENTRIES;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 32 < c->cap)
        c->cap = rl.rlim_cur / 32 > 16 ? (size_t)(rl.rlim_cur / 32) : 16;
    c->stats.capacity = c->cap;
    if (cache_key_ok && pthread_setspecific(cache_key, c) != 0) {
        free(c);
        return NULL;
    }
    tl_cache = c;
    return c;
}

void pt_static_cache_flush(void)
{
    if (tl_cache)
        cache_drop_all(tl_cache);
}

void pt_static_cache_stats(struct pt_static_cache_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (tl_cache) {
        *s = tl_cache->stats;
        s->entries = tl_cache->n;
    }
}

void pt_static_file_unref(struct pt_static_file *f)
{
    PT_BUG_ON(f->refs == 0);
    if (--f->refs > 0)
        return;
    close(f->fd);
    free(f);
}

void pt_static_result_release(struct pt_static_result *out)
{
    if (out->file)
        pt_static_file_unref(out->file);
    else if (out->fd >= 0)
        close(out->fd);
    out->file = NULL;
    out->fd = -1;
}

/* FNV-1a over the root id and the path. */
static uint32_t key_hash(uint64_t root_id, const char *rel, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ root_id;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)rel[i];
        h *= 0x100000001b3ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* One resolve's view: the root, and this thread's cache when the caller gave a clock. */
struct ctx {
    const struct pt_static_root *root;
    struct cache *cache; /* NULL: every look is a fetch */
    uint64_t now_ms;
};

/*
 * What opening rel (rlen bytes, NUL-terminated) beneath the root finds: from this thread's
 * cache while its entry is younger than PT_STATIC_CACHE_VALID_MS, else by fetch() (which then
 * refreshes the entry). Returns 0 with *fi, or -errno (missing-like or a failure such as
 * EACCES, which is never cached). The caller owns *fi and must fi_release it (or hand its
 * descriptor on). Blocks only on the local filesystem, and only on a miss.
 */
static int look(struct ctx *x, const char *rel, size_t rlen, struct finfo *fi)
{
    struct cache *c = x->cache;
    if (!c || rlen > PT_STATIC_CACHE_REL_MAX)
        return fetch(x->root->dirfd, rel, rlen, fi);
    uint64_t now = x->now_ms, id = x->root->id;
    /* Lazy expiry: idle entries (a deleted file's descriptor, an old root's paths) go first. */
    for (int i = 0; i < 2 && c->lru.prev != &c->lru; i++) {
        struct centry *old = lru_entry(c->lru.prev);
        if (now >= old->used_ms && now - old->used_ms <= PT_STATIC_CACHE_IDLE_MS)
            break;
        entry_drop(c, old);
    }
    uint32_t h = key_hash(id, rel, rlen);
    struct centry *e = c->bucket[h & (CACHE_BUCKETS - 1)];
    while (e && !(e->hash == h && e->root_id == id && e->rel_len == rlen &&
                  memcmp(e->rel, rel, rlen) == 0))
        e = e->hnext;
    if (e && now >= e->checked_ms && now - e->checked_ms < PT_STATIC_CACHE_VALID_MS) {
        c->stats.hits++;
        goto found;
    }
    c->stats.misses++;
    struct finfo nf;
    int rc = fetch(x->root->dirfd, rel, rlen, &nf);
    if (rc < 0 && !is_missing(rc)) {
        if (e)
            entry_drop(c, e); /* what it said is no longer true */
        *fi = nf;
        return rc;
    }
    if (nf.fd >= 0) {
        struct pt_static_file *f = malloc(sizeof(*f));
        if (!f) {
            *fi = nf; /* uncached answer: the caller owns the descriptor */
            return rc;
        }
        f->fd = nf.fd;
        f->refs = 1; /* the entry's */
        nf.file = f;
    }
    if (e) {
        fi_release(&e->fi);
        lru_unlink(&e->lru);
    } else {
        e = malloc(sizeof(*e) + rlen + 1);
        if (!e) {
            *fi = nf; /* its reference passes to the caller */
            return rc;
        }
        if (c->n >= c->cap)
            entry_drop(c, lru_entry(c->lru.prev));
        e->root_id = id;
        e->hash = h;
        e->rel_len = (uint32_t)rlen;
        memcpy(e->rel, rel, rlen + 1);
        struct centry **b = &c->bucket[h & (CACHE_BUCKETS - 1)];
        e->hnext = *b;
        e->hprev = b;
        if (*b)
            (*b)->hprev = &e->hnext;
        *b = e;
        c->n++;
    }
    e->fi = nf;
    e->checked_ms = now;
    lru_push_front(c, &e->lru);
found:
    e->used_ms = now;
    if (c->lru.next != &e->lru) {
        lru_unlink(&e->lru);
        lru_push_front(c, &e->lru);
    }
    *fi = e->fi;
    if (fi->file)
        fi->file->refs++;
    return fi->rc;
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
    for (size_t i = 0; i < root->n_hidden_rels; i++)
        free(root->hidden_rels[i]);
    free(root->hidden_rels);
    free(root->hidden_ids);
    free(root);
}

/* Adds rel (path under the root as the absolute path abs names it) to the hidden paths when
   abs lies beneath root_real. Returns 0, or -1 when out of memory. */
static int hide_under(struct pt_static_root *root, const char *root_real, const char *abs)
{
    size_t rl = strlen(root_real);
    if (rl == 1)
        rl = 0; /* the root is "/" */
    if (strncmp(abs, root_real, rl) != 0 || abs[rl] != '/' || !abs[rl + 1])
        return 0;
    for (size_t i = 0; i < root->n_hidden_rels; i++)
        if (strcmp(root->hidden_rels[i], abs + rl + 1) == 0)
            return 0;
    char *rel = strdup(abs + rl + 1);
    if (!rel)
        return -1;
    root->hidden_rels[root->n_hidden_rels++] = rel;
    return 0;
}

/*
 * Records what of s->hidden this root must never serve: each file's identity (device and inode,
 * so that a hard link or an in-root symlink to it is refused too) and, for a file under the
 * root, its root-relative path both through symlinks and as spelled (so that an editor that
 * replaces the file by a rename before the next reload does not expose it). A file that cannot
 * be stat-ed is skipped: it cannot be served either. Returns 0, or -1 when out of memory.
 */
static int hide_files(struct pt_static_root *root, const struct pt_static_settings *s)
{
    root->hidden_ids = calloc(s->n_hidden, sizeof(*root->hidden_ids));
    root->hidden_rels = calloc(2 * s->n_hidden, sizeof(*root->hidden_rels));
    if (!root->hidden_ids || !root->hidden_rels)
        return -1;
    char root_real[PATH_MAX];
    bool has_root = realpath(s->root, root_real) != NULL;
    for (size_t i = 0; i < s->n_hidden; i++) {
        const char *f = s->hidden[i];
        struct stat st;
        if (!f || stat(f, &st) != 0)
            continue;
        root->hidden_ids[root->n_hidden_ids++] = (struct file_id){st.st_dev, st.st_ino};
        char real[PATH_MAX], dir[PATH_MAX], dreal[PATH_MAX], spelled[PATH_MAX];
        if (!has_root)
            continue;
        if (realpath(f, real) && hide_under(root, root_real, real) < 0)
            return -1;
        const char *slash = strrchr(f, '/');
        size_t dl = slash == f ? 1 : slash ? (size_t)(slash - f) : 0;
        if (!slash || dl >= sizeof(dir))
            continue;
        memcpy(dir, f, dl);
        dir[dl] = '\0';
        if (!realpath(dir, dreal))
            continue;
        int n =
            snprintf(spelled, sizeof(spelled), "%s/%s", strcmp(dreal, "/") ? dreal : "", slash + 1);
        if (n > 0 && (size_t)n < sizeof(spelled) && hide_under(root, root_real, spelled) < 0)
            return -1;
    }
    return 0;
}

bool pt_static_is_rule_name(const char *rel, size_t n)
{
    static const char *const names[] = {"_redirects", "_headers", "netlify.toml"};
    const char *base = rel;
    for (size_t i = 0; i < n; i++)
        if (rel[i] == '/')
            base = rel + i + 1;
    size_t bl = n - (size_t)(base - rel);
    for (size_t i = 0; i < PT_ARRAY_LEN(names); i++) {
        size_t nl = strlen(names[i]);
        if (bl < nl || memcmp(base, names[i], nl) != 0)
            continue;
        const char *rest = base + nl;
        size_t rn = bl - nl;
        if (rn == 0 || (rn == 3 && memcmp(rest, ".br", 3) == 0) ||
            (rn == 4 && memcmp(rest, ".zst", 4) == 0) || (rn == 3 && memcmp(rest, ".gz", 3) == 0))
            return true;
    }
    return false;
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
    root->id = atomic_fetch_add(&last_root_id, 1) + 1;
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
    if (s->n_hidden && hide_files(root, s) < 0)
        goto nomem;
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
    while (pt_static_next_qelem(&p, end, &name, &v)) {
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

/* Appends n bytes (no formatting: the hot path's lines are built from these). */
static void hdr_put(struct hdr *h, const char *s, size_t n)
{
    struct pt_static_result *o = h->out;
    if (h->overflow)
        return;
    if (n >= o->hdr_cap - o->hdr_len) { /* as hdr_add: a byte is always left for a NUL */
        h->overflow = true;
        return;
    }
    memcpy(o->hdr + o->hdr_len, s, n);
    o->hdr_len += n;
}

#define HDR_LIT(h, lit) hdr_put((h), (lit), sizeof(lit) - 1)

static void hdr_str(struct hdr *h, const char *s)
{
    hdr_put(h, s, strlen(s));
}

static void hdr_u64(struct hdr *h, uint64_t v)
{
    char b[20];
    size_t i = sizeof(b);
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    hdr_put(h, b + i, sizeof(b) - i);
}

static int finish(struct hdr *h)
{
    struct pt_static_result *o = h->out;
    if (!h->overflow)
        return 0;
    pt_static_result_release(o);
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

/* ---- rule files ---- */

/*
 * Whether rel (n bytes) is a file this root never serves, as missing: a Netlify rule file name
 * in any folder, a configured rule file's path under the root or one of its precompressed
 * copies, or (fi: what opening rel found, or NULL before it is opened) a configured rule file
 * reached through another name (hard link, symlink inside the root).
 */
static bool is_hidden(const struct pt_static_root *root, const char *rel, size_t n,
                      const struct finfo *fi)
{
    if (pt_static_is_rule_name(rel, n))
        return true;
    for (size_t i = 0; i < root->n_hidden_rels; i++) {
        const char *h = root->hidden_rels[i];
        size_t hl = strlen(h);
        if (n < hl || memcmp(rel, h, hl) != 0)
            continue;
        if (n == hl)
            return true;
        for (int e = 0; e < ENC_N; e++)
            if (strlen(enc_suffix[e]) == n - hl && memcmp(rel + hl, enc_suffix[e], n - hl) == 0)
                return true;
    }
    if (fi && fi->rc == 0 && fi->fmt == S_IFREG)
        for (size_t i = 0; i < root->n_hidden_ids; i++)
            if (root->hidden_ids[i].dev == fi->dev && root->hidden_ids[i].ino == fi->ino)
                return true;
    return false;
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

/* Status and window of a file for this request (no I/O). */
struct decision {
    int status; /* 200 206 304 412 416 */
    uint64_t off, len;
};

static void decide(const struct pt_static_request *req, const struct finfo *fi, struct decision *d)
{
    time_t mtime = fi->mtime;
    d->off = 0;
    d->len = fi->size;
    time_t t;
    /* RFC 9110 §13.2.2: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since,
       If-Range, in that order. */
    if (req->if_match.p) {
        if (!pt_http_etag_list_match(req->if_match, fi->etag, fi->etag_len, true)) {
            d->status = 412;
            return;
        }
    } else if (req->if_unmodified_since.p &&
               pt_http_date_parse(req->if_unmodified_since.p, req->if_unmodified_since.n, &t) ==
                   0 &&
               mtime > t) {
        d->status = 412;
        return;
    }
    if (req->if_none_match.p) {
        if (pt_http_etag_list_match(req->if_none_match, fi->etag, fi->etag_len, false)) {
            d->status = 304;
            return;
        }
    } else if (req->if_modified_since.p &&
               pt_http_date_parse(req->if_modified_since.p, req->if_modified_since.n, &t) == 0 &&
               mtime <= t) {
        d->status = 304;
        return;
    }
    d->status = 200;
    /* Range is defined for GET only (RFC 9110 §14.2); HEAD gets the 200 headers. */
    if (req->method != PT_METHOD_GET || !req->range.p)
        return;
    if (req->if_range.p &&
        !pt_static_if_range_ok(req->if_range.p, req->if_range.n, fi->etag, fi->etag_len, mtime))
        return;
    uint64_t off, len;
    switch (pt_static_parse_range(req->range.p, req->range.n, fi->size, &off, &len)) {
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

/* Moves fi's descriptor (and its reference, if cached) into out. */
static void give_fd(struct finfo *fi, struct pt_static_result *out)
{
    out->fd = fi->fd;
    out->file = fi->file;
    fi->fd = -1;
    fi->file = NULL;
}

/*
 * Answers with the regular file rel (looked up: *fi, whose descriptor and reference this
 * takes over). Picks a precompressed sibling, evaluates the conditionals and hands the
 * descriptor the decision was made from to out. Returns 0 or -errno.
 */
static int serve_file(struct ctx *x, const struct pt_static_request *req, char *rel, size_t rlen,
                      size_t cap, struct finfo *fi, struct pt_static_result *out)
{
    const struct pt_static_root *root = x->root;
    const char *type = fi->type;
    struct finfo sib = {.fd = -1}, *use = fi;
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
            size_t sl = strlen(enc_suffix[e]);
            memcpy(rel + rlen, enc_suffix[e], sl + 1);
            int rc = look(x, rel, rlen + sl, &sib);
            if (rc == 0 && sib.fmt == S_IFREG && !is_hidden(root, rel, rlen + sl, &sib)) {
                vary = true;
                if (q[e] > 0) {
                    enc = e;
                    use = &sib;
                    break;
                }
            } else if (rc < 0 && !is_missing(rc) && rc != -EACCES) {
                rel[rlen] = '\0';
                fi_release(fi);
                return rc;
            }
            fi_release(&sib);
        }
        rel[rlen] = '\0';
    }

    struct decision d;
    decide(req, use, &d);
    if ((d.status == 200 || d.status == 206) && req->method == PT_METHOD_GET)
        give_fd(use, out);
    uint64_t size = use->size;

    struct hdr h = {out, false};
    out->status = d.status;
    if (d.status == 412) {
        fi_release(fi);
        fi_release(&sib);
        return error_status(out, 412);
    }
    if (d.status == 416) {
        out->is_error_page = true;
        hdr_add(&h, "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
        fi_release(fi);
        fi_release(&sib);
        return finish(&h);
    }
    if (d.status != 304) {
        HDR_LIT(&h, "Content-Length: ");
        hdr_u64(&h, d.len);
        HDR_LIT(&h, "\r\n");
        out->cl_line_len = out->hdr_len;
        out->offset = d.off;
        out->length = d.len;
        HDR_LIT(&h, "Content-Type: ");
        hdr_str(&h, type);
        HDR_LIT(&h, "\r\n");
        if (enc >= 0) {
            HDR_LIT(&h, "Content-Encoding: ");
            hdr_str(&h, enc_name[enc]);
            HDR_LIT(&h, "\r\n");
        }
    }
    if (vary)
        HDR_LIT(&h, "Vary: Accept-Encoding\r\n");
    HDR_LIT(&h, "ETag: ");
    hdr_put(&h, use->etag, use->etag_len);
    HDR_LIT(&h, "\r\n");
    if (use->lm_len) {
        HDR_LIT(&h, "Last-Modified: ");
        hdr_put(&h, use->lm, use->lm_len);
        HDR_LIT(&h, "\r\n");
    }
    if (root->cache_control) {
        HDR_LIT(&h, "Cache-Control: ");
        hdr_str(&h, root->cache_control);
        HDR_LIT(&h, "\r\n");
    }
    if (d.status != 304)
        HDR_LIT(&h, "Accept-Ranges: bytes\r\n");
    if (d.status == 206)
        hdr_add(&h, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)d.off,
                (unsigned long long)(d.off + d.len - 1), (unsigned long long)size);
    fi_release(fi);
    fi_release(&sib);
    return finish(&h);
}

/* The site's 404 page when it exists, else a bare 404 for the caller's error page. */
static int not_found(struct ctx *x, const struct pt_static_request *req,
                     struct pt_static_result *out)
{
    const struct pt_static_root *root = x->root;
    struct finfo fi;
    if (!root->not_found_page)
        return error_status(out, 404);
    size_t nl = strlen(root->not_found_page);
    if (is_hidden(root, root->not_found_page, nl, NULL))
        return error_status(out, 404);
    int rc = look(x, root->not_found_page, nl, &fi);
    if (rc < 0)
        return is_missing(rc) || rc == -EACCES ? error_status(out, 404) : rc;
    if (fi.fmt != S_IFREG || is_hidden(root, root->not_found_page, nl, &fi)) {
        fi_release(&fi);
        return error_status(out, 404);
    }
    if (req->method == PT_METHOD_GET)
        give_fd(&fi, out);
    struct hdr h = {out, false};
    out->status = 404;
    out->offset = 0;
    out->length = fi.size;
    HDR_LIT(&h, "Content-Length: ");
    hdr_u64(&h, fi.size);
    HDR_LIT(&h, "\r\n");
    out->cl_line_len = out->hdr_len;
    HDR_LIT(&h, "Content-Type: ");
    hdr_str(&h, fi.type);
    HDR_LIT(&h, "\r\n");
    fi_release(&fi);
    return finish(&h);
}

int pt_static_resolve(const struct pt_static_root *root, const struct pt_static_request *req,
                      struct pt_static_result *out)
{
    char rel[REL_MAX];
    size_t rlen = 0, ilen;
    bool slash = false;
    struct finfo fi = {.fd = -1};
    int rc;

    out->status = 0;
    out->fd = -1;
    out->file = NULL;
    out->offset = 0;
    out->length = 0;
    out->hdr_len = 0;
    out->cl_line_len = 0;
    out->is_error_page = false;
    if (!out->hdr || out->hdr_cap == 0)
        return -ENOBUFS;
    if (req->method != PT_METHOD_GET && req->method != PT_METHOD_HEAD)
        return error_status(out, 405);
    struct ctx x = {root, req->now_ms ? cache_get() : NULL, req->now_ms};

    /* Leave room for "/" + an index name and a ".zst" suffix (checked again in join). */
    int m = map_path(root, req->path, rel, sizeof(rel) - NAME_MAX - 8, &rlen, &slash);
    if (m == MAP_DENY)
        return error_status(out, 403);
    if (m == MAP_OK && is_hidden(root, rel, rlen, NULL))
        m = MAP_MISSING; /* a rule file: as if it were not there (Netlify never serves one) */
    if (m == MAP_OK) {
        rc = look(&x, rel, rlen, &fi);
        if (rc == -EACCES || rc == -EPERM)
            return error_status(out, 403);
        if (rc < 0 && !is_missing(rc))
            return rc;
        if (rc == 0 && fi.fmt == S_IFDIR) {
            if (!slash && rlen > 0)
                return redirect_dir(req, out);
            for (size_t i = 0; i < root->n_index; i++) {
                if (!join(rel, rlen, sizeof(rel), root->index[i], &ilen))
                    break;
                rc = is_hidden(root, rel, ilen, NULL) ? -ENOENT : look(&x, rel, ilen, &fi);
                if (rc == 0 && fi.fmt == S_IFREG && !is_hidden(root, rel, ilen, &fi))
                    return serve_file(&x, req, rel, ilen, sizeof(rel), &fi, out);
                fi_release(&fi);
                if (rc < 0 && !is_missing(rc) && rc != -EACCES)
                    return rc;
                rel[rlen] = '\0';
            }
        } else if (rc == 0 && fi.fmt == S_IFREG && !slash && !is_hidden(root, rel, rlen, &fi)) {
            return serve_file(&x, req, rel, rlen, sizeof(rel), &fi, out);
        } else {
            fi_release(&fi); /* a file asked for as a directory ("/a.txt/"): not found */
        }
    }

    if (root->spa && pt_static_accepts_html(req->accept)) {
        rlen = strlen(root->index[0]);
        memcpy(rel, root->index[0], rlen + 1);
        rc = is_hidden(root, rel, rlen, NULL) ? -ENOENT : look(&x, rel, rlen, &fi);
        if (rc == 0 && fi.fmt == S_IFREG && !is_hidden(root, rel, rlen, &fi))
            return serve_file(&x, req, rel, rlen, sizeof(rel), &fi, out);
        fi_release(&fi);
        if (rc < 0 && !is_missing(rc) && rc != -EACCES)
            return rc;
    }
    return not_found(&x, req, out);
}
