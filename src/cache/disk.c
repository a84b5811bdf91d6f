/*
 * disk.c - the cache store's disk tier (store_internal.h): one file per object under a
 * directory, a size cap with oldest-first eviction, and an index in memory rebuilt at open from
 * the files' headers.
 *
 * Files. An object lives in DIR/ab/cd/abcd...(16 hex digits), the digits a SipHash-2-4 under a
 * fixed key of (url, extra, vary), so a restart finds the same names. The format (host byte
 * order; the files do not travel between machines):
 *
 *     0   "PTCACHE\0"        magic
 *     8   u32 version (1)
 *     12  u32 url_len, extra_len, vary_len, tags_len, head_len
 *     32  u64 body_len
 *     40  11 x i64 meta: status, cc_flags, date, age, req_time, resp_time, lifetime, swr, sie,
 *         last_modified, has_validator
 *     128 url, extra, vary, tags, head, body
 *     end u64 checksum: SipHash (fixed key) of the hashes of [0, 128 + strings) and of the body
 *
 * The tags sit before the head so that the scan at open reads the header and the short
 * strings (url, extra, vary, tags: what lookups and purges need) and never the head or body.
 *
 * Writing. pt_cache_publish queues the object (a reference) for the store's writer thread,
 * which writes it to NAME.tmp and renames it over NAME (no fsync: a torn file after a crash is
 * caught by its length and checksum). It indexes the file only if the object's purge epoch is
 * still current, checked under the index lock that purges take after bumping the epoch, so a
 * purge never races a write back in. The queue holds at most WRITE_QUEUE_MAX bytes of bodies;
 * beyond that a write is skipped (the object stays in memory).
 *
 * Reading. A memory miss looks up (url, extra) in the index, picks the newest variant whose
 * vary key matches, and reads the file whole with no lock held. Magic, version, lengths, file
 * size, checksum, url, extra and the name's hash must all agree; on any mismatch the file is
 * unlinked and the lookup is a miss: a torn or corrupt file is never served.
 *
 * Index. A chained hash table by URL hash (the store's random key) of struct dentry, each with
 * a copy of url, extra, vary and tags (so purges by prefix and tag need no file reads), on a
 * list from oldest to newest for eviction. Purges by URL walk one chain; by prefix, tag or all
 * they walk the list. Files are unlinked after the lock is released.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache/store_internal.h"

#define MAGIC "PTCACHE"
#define VERSION 1
#define HDR 128
#define STR_MAX (1u << 20) /* a header string longer than this is corrupt */
#define WRITE_QUEUE_MAX (64ull << 20)

static const uint64_t FKEY[2] = {0x5074636163686531ull, 0x6469736b2d746965ull};

struct dentry {
    struct dentry *hnext;       /* URL hash chain */
    struct dentry *prev, *next; /* age list, oldest first */
    uint64_t uhash, fkey, size, seq;
    uint32_t url_len, extra_len, vary_len, tags_len;
    char s[]; /* url, extra, vary, tags */
};

struct qnode {
    struct qnode *next;
    struct pt_cache_obj *o;
};

struct pt_cache_disk {
    struct pt_cache *c;
    char *dir;
    pthread_mutex_t mu; /* the index */
    struct dentry **b;
    size_t nb, n;
    struct dentry *oldest, *newest;
    uint64_t bytes, cap, evictions, seq, index_bytes;
    pthread_mutex_t qmu; /* the write queue */
    pthread_cond_t qcv;
    struct qnode *qh, *qt;
    uint64_t qbytes;
    bool is_stopping, has_thread;
    pthread_t thr;
};

static uint64_t file_key(const char *url, size_t ul, const char *extra, size_t el, const char *vary,
                         size_t vl)
{
    uint64_t h[3] = {pt_cache_hash(FKEY, url, ul), pt_cache_hash(FKEY, extra, el),
                     pt_cache_hash(FKEY, vary, vl)};
    return pt_cache_hash(FKEY, h, sizeof h);
}

static void file_path(const struct pt_cache_disk *d, uint64_t fkey, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%02x/%02x/%016llx", d->dir, (unsigned)(fkey >> 56),
             (unsigned)(fkey >> 48) & 0xff, (unsigned long long)fkey);
}

/* ---- the index (d->mu held) ---- */

static void index_add(struct pt_cache_disk *d, struct dentry *de)
{
    if (d->n >= d->nb) {
        size_t nb = d->nb * 2;
        struct dentry **b = calloc(nb, sizeof *b);
        if (b) {
            for (size_t i = 0; i < d->nb; i++) {
                struct dentry *x = d->b[i];
                while (x) {
                    struct dentry *next = x->hnext;
                    x->hnext = b[x->uhash & (nb - 1)];
                    b[x->uhash & (nb - 1)] = x;
                    x = next;
                }
            }
            free(d->b);
            d->b = b;
            d->index_bytes += (nb - d->nb) * sizeof *b;
            d->nb = nb;
        }
    }
    struct dentry **pp = &d->b[de->uhash & (d->nb - 1)];
    de->hnext = *pp;
    *pp = de;
    de->next = NULL;
    de->prev = d->newest;
    if (d->newest)
        d->newest->next = de;
    else
        d->oldest = de;
    d->newest = de;
    d->n++;
    d->bytes += de->size;
    d->index_bytes += sizeof *de + de->url_len + de->extra_len + de->vary_len + de->tags_len;
}

static void index_del(struct pt_cache_disk *d, struct dentry *de)
{
    struct dentry **pp = &d->b[de->uhash & (d->nb - 1)];
    while (*pp != de)
        pp = &(*pp)->hnext;
    *pp = de->hnext;
    if (de->prev)
        de->prev->next = de->next;
    else
        d->oldest = de->next;
    if (de->next)
        de->next->prev = de->prev;
    else
        d->newest = de->prev;
    d->n--;
    d->bytes -= de->size;
    d->index_bytes -= sizeof *de + de->url_len + de->extra_len + de->vary_len + de->tags_len;
}

static struct dentry *dentry_new(const struct pt_cache_disk *d, uint64_t fkey, uint64_t size,
                                 const char *url, uint32_t ul, const char *extra, uint32_t el,
                                 const char *vary, uint32_t vl, const char *tags, uint32_t tl)
{
    struct dentry *de = malloc(sizeof *de + ul + el + vl + tl);
    if (!de)
        return NULL;
    memset(de, 0, sizeof *de);
    de->fkey = fkey;
    de->size = size;
    de->uhash = pt_cache_hash(pt_cache_key(d->c), url, ul);
    de->url_len = ul;
    de->extra_len = el;
    de->vary_len = vl;
    de->tags_len = tl;
    memcpy(de->s, url, ul);
    memcpy(de->s + ul, extra, el);
    memcpy(de->s + ul + el, vary, vl);
    memcpy(de->s + ul + el + vl, tags, tl);
    return de;
}

/* A list of files to unlink once the lock is released. */
struct doomed {
    uint64_t *k;
    size_t n, cap;
};

static void doom(struct doomed *x, uint64_t fkey)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        uint64_t *k = realloc(x->k, cap * sizeof *k);
        if (!k)
            return; /* the file stays, unindexed, until the next restart's scan */
        x->k = k;
        x->cap = cap;
    }
    x->k[x->n++] = fkey;
}

static void unlink_doomed(const struct pt_cache_disk *d, struct doomed *x)
{
    char path[4096];
    for (size_t i = 0; i < x->n; i++) {
        file_path(d, x->k[i], path, sizeof path);
        unlink(path);
    }
    free(x->k);
    x->k = NULL;
    x->n = x->cap = 0;
}

static void evict_over_cap(struct pt_cache_disk *d, struct doomed *x)
{
    while (d->bytes > d->cap && d->oldest) {
        struct dentry *de = d->oldest;
        index_del(d, de);
        doom(x, de->fkey);
        free(de);
        d->evictions++;
    }
}

/* ---- writing ---- */

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void meta_pack(unsigned char *p, const struct pt_cache_meta *m)
{
    int64_t v[11] = {m->status,   m->cc_flags,      m->date,         m->age,
                     m->req_time, m->resp_time,     m->lifetime,     m->swr,
                     m->sie,      m->last_modified, m->has_validator};
    memcpy(p, v, sizeof v);
}

static void meta_unpack(const unsigned char *p, struct pt_cache_meta *m)
{
    int64_t v[11];
    memcpy(v, p, sizeof v);
    memset(m, 0, sizeof *m);
    m->status = (int16_t)v[0];
    m->cc_flags = (uint32_t)v[1];
    m->date = v[2];
    m->age = v[3];
    m->req_time = v[4];
    m->resp_time = v[5];
    m->lifetime = v[6];
    m->swr = v[7];
    m->sie = v[8];
    m->last_modified = v[9];
    m->has_validator = v[10] != 0;
}

static uint64_t checksum(const void *pre, size_t pn, const void *body, size_t bn)
{
    uint64_t h[2] = {pt_cache_hash(FKEY, pre, pn), pt_cache_hash(FKEY, body, bn)};
    return pt_cache_hash(FKEY, h, sizeof h);
}

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void write_obj(struct pt_cache_disk *d, struct pt_cache_obj *o)
{
    uint64_t ep = pt_cache_obj_epoch(o);
    if (pt_cache_epoch(d->c, o->url, o->url_len) != ep)
        return; /* purged while queued */
    uint64_t fkey = file_key(o->url, o->url_len, o->extra, o->extra_len, o->vary, o->vary_len);
    char path[4096], tmp[4200];
    file_path(d, fkey, path, sizeof path);
    /* the fan-out directories */
    size_t dl = strlen(d->dir);
    snprintf(tmp, sizeof tmp, "%.*s", (int)(dl + 3), path);
    mkdir(tmp, 0700);
    snprintf(tmp, sizeof tmp, "%.*s", (int)(dl + 6), path);
    mkdir(tmp, 0700);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    size_t sl = (size_t)o->url_len + o->extra_len + o->vary_len + o->tags_len + o->head_len;
    unsigned char *pre = malloc(HDR + sl);
    if (!pre)
        return;
    memset(pre, 0, HDR);
    memcpy(pre, MAGIC, 8);
    put32(pre + 8, VERSION);
    put32(pre + 12, o->url_len);
    put32(pre + 16, o->extra_len);
    put32(pre + 20, o->vary_len);
    put32(pre + 24, o->tags_len);
    put32(pre + 28, o->head_len);
    memcpy(pre + 32, &o->body_len, 8);
    meta_pack(pre + 40, &o->meta);
    unsigned char *p = pre + HDR;
    memcpy(p, o->url, o->url_len);
    p += o->url_len;
    memcpy(p, o->extra, o->extra_len);
    p += o->extra_len;
    memcpy(p, o->vary, o->vary_len);
    p += o->vary_len;
    memcpy(p, o->tags, o->tags_len);
    p += o->tags_len;
    memcpy(p, o->head, o->head_len);
    uint64_t sum = checksum(pre, HDR + sl, o->body, o->body_len);
    struct iovec iov[3] = {{pre, HDR + sl}, {o->body, o->body_len}, {&sum, sizeof sum}};
    uint64_t size = HDR + sl + o->body_len + sizeof sum;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(pre);
        return;
    }
    int rc = write_all(fd, iov, 3);
    close(fd);
    free(pre);
    if (rc < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return;
    }
    struct doomed x = {0};
    struct dentry *de = dentry_new(d, fkey, size, o->url, o->url_len, o->extra, o->extra_len,
                                   o->vary, o->vary_len, o->tags, o->tags_len);
    pthread_mutex_lock(&d->mu);
    /* the file replaced any older one of the same name */
    for (struct dentry *old =
             d->b[pt_cache_hash(pt_cache_key(d->c), o->url, o->url_len) & (d->nb - 1)];
         old; old = old->hnext) {
        if (old->fkey == fkey) {
            index_del(d, old);
            free(old);
            break;
        }
    }
    if (!de || pt_cache_epoch(d->c, o->url, o->url_len) != ep || size > d->cap) {
        doom(&x, fkey); /* purged while written, or no memory to index it */
        free(de);
    } else {
        de->seq = ++d->seq;
        index_add(d, de);
        pt_cache_obj_set_on_disk(o);
        evict_over_cap(d, &x);
    }
    pthread_mutex_unlock(&d->mu);
    unlink_doomed(d, &x);
}

static void *writer(void *arg)
{
    struct pt_cache_disk *d = arg;
    pthread_mutex_lock(&d->qmu);
    for (;;) {
        while (!d->qh && !d->is_stopping)
            pthread_cond_wait(&d->qcv, &d->qmu);
        struct qnode *q = d->qh;
        if (!q)
            break; /* stopping, and the queue is written out */
        d->qh = q->next;
        if (!d->qh)
            d->qt = NULL;
        pthread_mutex_unlock(&d->qmu);
        write_obj(d, q->o);
        pthread_mutex_lock(&d->qmu);
        d->qbytes -= q->o->body_len;
        pthread_mutex_unlock(&d->qmu);
        pt_cache_obj_unref(q->o);
        free(q);
        pthread_mutex_lock(&d->qmu);
    }
    pthread_mutex_unlock(&d->qmu);
    return NULL;
}

void pt_cache_disk_write(struct pt_cache_disk *d, struct pt_cache_obj *o)
{
    struct qnode *q = malloc(sizeof *q);
    if (!q)
        return;
    q->next = NULL;
    q->o = o;
    pthread_mutex_lock(&d->qmu);
    if (d->qbytes + o->body_len > WRITE_QUEUE_MAX) {
        pthread_mutex_unlock(&d->qmu);
        free(q);
        return;
    }
    pt_cache_obj_ref(o);
    d->qbytes += o->body_len;
    if (d->qt)
        d->qt->next = q;
    else
        d->qh = q;
    d->qt = q;
    pthread_cond_signal(&d->qcv);
    pthread_mutex_unlock(&d->qmu);
}

/* ---- reading ---- */

/* Reads the whole file at path into a new buffer when it is expect bytes long (what the index
   recorded); *n its length. NULL when unreadable or of another size. */
static unsigned char *read_whole(const char *path, uint64_t expect, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) < 0 || st.st_size < HDR + 8 || (uint64_t)st.st_size != expect)
        goto out;
    buf = malloc((size_t)st.st_size);
    if (!buf)
        goto out;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    *n = got;
out:
    close(fd);
    return buf;
}

/* Checks a file's header against its length; fills the lengths. */
static bool header_ok(const unsigned char *h, uint64_t file_size, uint32_t len[5],
                      uint64_t *body_len)
{
    if (memcmp(h, MAGIC, 8) != 0 || get32(h + 8) != VERSION)
        return false;
    uint64_t total = HDR + 8;
    for (int i = 0; i < 5; i++) {
        len[i] = get32(h + 12 + 4 * i);
        if (len[i] > STR_MAX)
            return false;
        total += len[i];
    }
    memcpy(body_len, h + 32, 8);
    return *body_len <= file_size && total + *body_len == file_size;
}

static void forget(struct pt_cache_disk *d, uint64_t uh, uint64_t fkey, uint64_t seq)
{
    char path[4096];
    bool found = false;
    pthread_mutex_lock(&d->mu);
    for (struct dentry *de = d->b[uh & (d->nb - 1)]; de; de = de->hnext) {
        if (de->fkey == fkey && de->seq == seq) {
            index_del(d, de);
            free(de);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (found) {
        file_path(d, fkey, path, sizeof path);
        unlink(path);
    }
}

struct pt_cache_obj *pt_cache_disk_get(struct pt_cache_disk *d, const char *url, size_t url_len,
                                       const char *extra, size_t extra_len,
                                       const struct pt_field *qf, size_t qn, bool *any_variant)
{
    uint64_t uh = pt_cache_hash(pt_cache_key(d->c), url, url_len);
    uint64_t fkey = 0, seq = 0, size = 0;
    bool any = false;
    pthread_mutex_lock(&d->mu);
    for (struct dentry *de = d->b[uh & (d->nb - 1)]; de; de = de->hnext) {
        if (de->uhash != uh || de->url_len != url_len || de->extra_len != extra_len ||
            memcmp(de->s, url, url_len) != 0 || memcmp(de->s + url_len, extra, extra_len) != 0)
            continue;
        any = true;
        if (de->seq > seq &&
            pt_cache_vary_match(de->s + url_len + extra_len, de->vary_len, qf, qn)) {
            fkey = de->fkey;
            size = de->size;
            seq = de->seq;
        }
    }
    pthread_mutex_unlock(&d->mu);
    *any_variant = any && !seq;
    if (!seq)
        return NULL;

    char path[4096];
    file_path(d, fkey, path, sizeof path);
    size_t n = 0;
    unsigned char *buf = read_whole(path, size, &n);
    struct pt_cache_obj *o = NULL;
    uint32_t len[5];
    uint64_t body_len;
    if (!buf || !header_ok(buf, n, len, &body_len))
        goto bad;
    size_t pre = HDR + (size_t)len[0] + len[1] + len[2] + len[3] + len[4];
    uint64_t sum;
    memcpy(&sum, buf + n - 8, 8);
    if (checksum(buf, pre, buf + pre, body_len) != sum)
        goto bad;
    const char *s = (const char *)buf + HDR;
    const char *vary = s + len[0] + len[1], *tags = vary + len[2], *head = tags + len[3];
    if (len[0] != url_len || len[1] != extra_len || memcmp(s, url, url_len) != 0 ||
        memcmp(s + url_len, extra, extra_len) != 0 ||
        file_key(url, url_len, extra, extra_len, vary, len[2]) != fkey)
        goto bad;
    if (!pt_cache_vary_match(vary, len[2], qf, qn)) {
        free(buf);
        return NULL;
    }
    struct pt_cache_meta m;
    meta_unpack(buf + 40, &m);
    o = pt_cache_obj_new(d->c, &m, url, url_len, extra, extra_len, vary, len[2], head, len[4], tags,
                         len[3], body_len);
    if (o && pt_cache_obj_append(d->c, &o, (const char *)buf + pre, body_len) < 0) {
        pt_cache_obj_unref(o);
        o = NULL;
    }
    free(buf);
    return o;
bad:
    free(buf);
    forget(d, uh, fkey, seq);
    return NULL;
}

/* ---- purge ---- */

static bool has_tag(const struct dentry *de, const char *tag, size_t n)
{
    const char *t = de->s + de->url_len + de->extra_len + de->vary_len;
    size_t start = 0;
    for (size_t i = 0; i <= de->tags_len; i++) {
        if (i == de->tags_len || t[i] == '\0') {
            if (i - start == n && memcmp(t + start, tag, n) == 0)
                return true;
            start = i + 1;
        }
    }
    return false;
}

size_t pt_cache_disk_purge(struct pt_cache_disk *d, enum pt_cache_purge_kind kind, const char *s,
                           size_t n)
{
    struct doomed x = {0};
    size_t k = 0;
    pthread_mutex_lock(&d->mu);
    if (kind == PT_PURGE_URL) {
        uint64_t uh = pt_cache_hash(pt_cache_key(d->c), s, n);
        struct dentry *de = d->b[uh & (d->nb - 1)];
        while (de) {
            struct dentry *next = de->hnext;
            if (de->uhash == uh && de->url_len == n && memcmp(de->s, s, n) == 0) {
                index_del(d, de);
                doom(&x, de->fkey);
                free(de);
                k++;
            }
            de = next;
        }
    } else {
        struct dentry *de = d->oldest;
        while (de) {
            struct dentry *next = de->next;
            bool hit = kind == PT_PURGE_ALL ||
                       (kind == PT_PURGE_PREFIX && de->url_len >= n && memcmp(de->s, s, n) == 0) ||
                       (kind == PT_PURGE_TAG && has_tag(de, s, n));
            if (hit) {
                index_del(d, de);
                doom(&x, de->fkey);
                free(de);
                k++;
            }
            de = next;
        }
    }
    pthread_mutex_unlock(&d->mu);
    unlink_doomed(d, &x);
    return k;
}

/* ---- open, scan, close ---- */

struct found {
    struct dentry *de;
    struct timespec mtime;
};

static int by_mtime(const void *a, const void *b)
{
    const struct found *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return 0;
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Indexes one file from its header and short strings; removes it when it cannot be valid. */
static struct dentry *scan_file(struct pt_cache_disk *d, const char *path, uint64_t fkey,
                                struct timespec *mtime)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char h[HDR];
    uint32_t len[5];
    uint64_t body_len;
    struct dentry *de = NULL;
    char *s = NULL;
    if (fstat(fd, &st) < 0 || pread(fd, h, HDR, 0) != HDR ||
        !header_ok(h, (uint64_t)st.st_size, len, &body_len))
        goto bad;
    size_t sl = (size_t)len[0] + len[1] + len[2] + len[3];
    s = malloc(sl + 1);
    if (!s || pread(fd, s, sl, HDR) != (ssize_t)sl)
        goto bad;
    const char *url = s, *extra = s + len[0], *vary = extra + len[1], *tags = vary + len[2];
    if (file_key(url, len[0], extra, len[1], vary, len[2]) != fkey)
        goto bad;
    de = dentry_new(d, fkey, (uint64_t)st.st_size, url, len[0], extra, len[1], vary, len[2], tags,
                    len[3]);
    *mtime = st.st_mtim;
    close(fd);
    free(s);
    return de;
bad:
    close(fd);
    free(s);
    unlink(path);
    return NULL;
}

static int scan(struct pt_cache_disk *d)
{
    struct found *f = NULL;
    size_t nf = 0, cf = 0;
    char p1[4096], p2[4096], p3[4096];
    DIR *top = opendir(d->dir);
    if (!top)
        return -errno;
    struct dirent *a;
    while ((a = readdir(top)) != NULL) {
        if (!is_hex(a->d_name, 2))
            continue;
        if (snprintf(p1, sizeof p1, "%s/%s", d->dir, a->d_name) >= (int)sizeof p1)
            continue;
        DIR *mid = opendir(p1);
        if (!mid)
            continue;
        struct dirent *b;
        while ((b = readdir(mid)) != NULL) {
            if (!is_hex(b->d_name, 2))
                continue;
            if (snprintf(p2, sizeof p2, "%s/%s", p1, b->d_name) >= (int)sizeof p2)
                continue;
            DIR *leaf = opendir(p2);
            if (!leaf)
                continue;
            struct dirent *e;
            while ((e = readdir(leaf)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                if (snprintf(p3, sizeof p3, "%s/%s", p2, e->d_name) >= (int)sizeof p3)
                    continue;
                if (!is_hex(e->d_name, 16)) {
                    if (strstr(e->d_name, ".tmp"))
                        unlink(p3); /* a write cut short */
                    continue;
                }
                uint64_t fkey = strtoull(e->d_name, NULL, 16);
                char want[8];
                snprintf(want, sizeof want, "%02x%02x", (unsigned)(fkey >> 56),
                         (unsigned)(fkey >> 48) & 0xff);
                if (memcmp(want, a->d_name, 2) != 0 || memcmp(want + 2, b->d_name, 2) != 0) {
                    unlink(p3); /* not where its name puts it: never found, remove it */
                    continue;
                }
                struct timespec mt;
                struct dentry *de = scan_file(d, p3, fkey, &mt);
                if (!de)
                    continue;
                if (nf == cf) {
                    size_t nc = cf ? cf * 2 : 64;
                    struct found *nfp = realloc(f, nc * sizeof *nfp);
                    if (!nfp) {
                        free(de);
                        continue;
                    }
                    f = nfp;
                    cf = nc;
                }
                f[nf].de = de;
                f[nf].mtime = mt;
                nf++;
            }
            closedir(leaf);
        }
        closedir(mid);
    }
    closedir(top);
    if (nf)
        qsort(f, nf, sizeof *f, by_mtime);
    struct doomed x = {0};
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < nf; i++) {
        f[i].de->seq = ++d->seq;
        index_add(d, f[i].de);
    }
    evict_over_cap(d, &x);
    pthread_mutex_unlock(&d->mu);
    unlink_doomed(d, &x);
    free(f);
    return 0;
}

struct pt_cache_disk *pt_cache_disk_open(struct pt_cache *c, const char *path, uint64_t cap,
                                         char *err, size_t errlen)
{
    struct pt_cache_disk *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(path))) {
        free(d);
        snprintf(err, errlen, "cache: out of memory");
        return NULL;
    }
    d->c = c;
    d->cap = cap;
    d->nb = 256;
    d->b = calloc(d->nb, sizeof *d->b);
    d->index_bytes = sizeof *d + d->nb * sizeof *d->b;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->qmu, NULL);
    pthread_cond_init(&d->qcv, NULL);
    if (!d->b) {
        snprintf(err, errlen, "cache: out of memory");
        goto fail;
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cache: disk path %s: %s", path, strerror(errno));
        goto fail;
    }
    int rc = scan(d);
    if (rc < 0) {
        snprintf(err, errlen, "cache: disk path %s: %s", path, strerror(-rc));
        goto fail;
    }
    rc = pthread_create(&d->thr, NULL, writer, d);
    if (rc != 0) {
        snprintf(err, errlen, "cache: disk writer thread: %s", strerror(rc));
        goto fail;
    }
    d->has_thread = true;
    return d;
fail:
    pt_cache_disk_close(d);
    return NULL;
}

void pt_cache_disk_set_cap(struct pt_cache_disk *d, uint64_t cap)
{
    struct doomed x = {0};
    pthread_mutex_lock(&d->mu);
    d->cap = cap;
    evict_over_cap(d, &x);
    pthread_mutex_unlock(&d->mu);
    unlink_doomed(d, &x);
}

void pt_cache_disk_close(struct pt_cache_disk *d)
{
    if (!d)
        return;
    if (d->has_thread) {
        pthread_mutex_lock(&d->qmu);
        d->is_stopping = true;
        pthread_cond_signal(&d->qcv);
        pthread_mutex_unlock(&d->qmu);
        pthread_join(d->thr, NULL);
    }
    struct dentry *de = d->oldest;
    while (de) {
        struct dentry *next = de->next;
        free(de);
        de = next;
    }
    free(d->b);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->qmu);
    pthread_cond_destroy(&d->qcv);
    free(d->dir);
    free(d);
}

void pt_cache_disk_stats(struct pt_cache_disk *d, struct pt_cache_stats *st)
{
    pthread_mutex_lock(&d->mu);
    st->disk_objects = d->n;
    st->disk_bytes = d->bytes;
    st->disk_evictions = d->evictions;
    st->index_bytes += d->index_bytes;
    pthread_mutex_unlock(&d->mu);
}
