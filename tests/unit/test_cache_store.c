/*
 * test_cache_store.c - the shared cache store (src/cache/store.c, disk.c): objects, variants
 * and replacement; purge epochs; coalescing records; purges by URL, prefix, tag and all (with
 * the time of a 10,000-object tag purge among 100,000 printed); S3-FIFO keeping a read object
 * through a flood of one-hit wonders; a million keys within the cap (bytes and RSS); four
 * threads reading, publishing and purging at once; the disk tier across a restart and with a
 * truncated or corrupted file.
 *
 * Vary keys here are built by hand as "name\0value\0" with single lower-case tokens, which
 * pt_cache_vary_match (policy.c) reads as its own.
 *
 * PT_BENCH_PURGE=1 runs only the tag purge measurement (make bench-cache-purge).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/store.h"

static const struct pt_cache_meta META = {
    .status = 200, .lifetime = 60, .swr = -1, .sie = -1, .last_modified = -1};

static struct pt_cache *open_mem(uint64_t cap)
{
    struct pt_cache_limits lim = {.memory_bytes = cap, .max_object_bytes = 1 << 20};
    char err[256];
    struct pt_cache *c = pt_cache_open(&lim, err, sizeof err);
    assert_non_null(c);
    return c;
}

/* Stores url with body and tags (NUL-separated), under extra "" and vary. */
static int put(struct pt_cache *c, const char *url, const char *vary, size_t vary_len,
               const char *tags, size_t tags_len, const char *body)
{
    uint64_t ep = pt_cache_epoch(c, url, strlen(url));
    struct pt_cache_obj *o = pt_cache_obj_new(c, &META, url, strlen(url), "", 0, vary, vary_len,
                                              "X: 1\r\n", 6, tags, tags_len, strlen(body));
    if (!o)
        return -1;
    if (pt_cache_obj_append(c, &o, body, strlen(body)) < 0) {
        pt_cache_obj_discard(c, o);
        return -1;
    }
    return pt_cache_publish(c, o, ep);
}

static struct pt_cache_obj *get(struct pt_cache *c, const char *url, const struct pt_field *qf,
                                size_t qn)
{
    return pt_cache_get(c, url, strlen(url), "", 0, qf, qn, NULL);
}

static bool has(struct pt_cache *c, const char *url)
{
    struct pt_cache_obj *o = get(c, url, NULL, 0);
    pt_cache_obj_unref(o);
    return o != NULL;
}

#define FIELD(n, v)                                                                                \
    {                                                                                              \
        {n, sizeof(n) - 1},                                                                        \
        {                                                                                          \
            v, sizeof(v) - 1                                                                       \
        }                                                                                          \
    }
#define VK_GZIP "accept-encoding\0gzip"
#define VK_BR "accept-encoding\0br"

static void test_variants_and_replace(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(1 << 20);
    const char *u = "https://a.example/x";
    assert_int_equal(put(c, u, VK_GZIP, sizeof VK_GZIP, NULL, 0, "gz"), 0);
    assert_int_equal(put(c, u, VK_BR, sizeof VK_BR, NULL, 0, "br"), 0);
    struct pt_field gz[] = {FIELD("Accept-Encoding", "gzip")};
    struct pt_field br[] = {FIELD("accept-encoding", "br")};
    struct pt_field zs[] = {FIELD("accept-encoding", "zstd")};
    struct pt_cache_obj *o = get(c, u, gz, 1);
    assert_non_null(o);
    assert_memory_equal(o->body, "gz", 2);
    assert_int_equal(o->body_len, 2);
    assert_string_equal(o->url, u);
    assert_memory_equal(o->head, "X: 1\r\n", 6);
    pt_cache_obj_unref(o);
    o = get(c, u, br, 1);
    assert_non_null(o);
    assert_memory_equal(o->body, "br", 2);
    pt_cache_obj_unref(o);
    bool any = false;
    assert_null(pt_cache_get(c, u, strlen(u), "", 0, zs, 1, &any));
    assert_true(any);
    assert_null(pt_cache_get(c, u, strlen(u), "k", 1, gz, 1, &any));
    assert_false(any);

    /* the same variant again replaces; a reader keeps the old one alive */
    struct pt_cache_obj *old = get(c, u, gz, 1);
    assert_int_equal(put(c, u, VK_GZIP, sizeof VK_GZIP, NULL, 0, "gz2"), 0);
    o = get(c, u, gz, 1);
    assert_memory_equal(o->body, "gz2", 3);
    assert_memory_equal(old->body, "gz", 2);
    pt_cache_obj_unref(o);
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    assert_int_equal(st.objects, 2);

    /* purge by URL drops every variant; the reader's copy stays readable */
    assert_int_equal(pt_cache_purge_url(c, u, strlen(u)), 2);
    assert_null(get(c, u, gz, 1));
    assert_memory_equal(old->body, "gz", 2);
    pt_cache_obj_unref(old);
    pt_cache_stats(c, &st);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.bytes, 0);

    /* a body that grows past the object limit is refused; a hint over it too */
    assert_null(pt_cache_obj_new(c, &META, u, strlen(u), "", 0, "", 0, "", 0, "", 0, 2 << 20));
    o = pt_cache_obj_new(c, &META, u, strlen(u), "", 0, "", 0, "", 0, "", 0, 0);
    static char chunk[300000];
    assert_int_equal(pt_cache_obj_append(c, &o, chunk, sizeof chunk), 0);
    assert_int_equal(pt_cache_obj_append(c, &o, chunk, sizeof chunk), 0);
    assert_int_equal(pt_cache_obj_append(c, &o, chunk, sizeof chunk), 0);
    assert_int_equal(pt_cache_obj_append(c, &o, chunk, sizeof chunk), -1);
    pt_cache_obj_discard(c, o);
    pt_cache_close(c);
}

/* The budget is global: an object far over memory_bytes / 64 is kept. */
static void test_large_object_fits(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(1 << 20);
    static char big[600000];
    memset(big, 'z', sizeof big - 1);
    assert_int_equal(put(c, "https://a.example/big", "", 0, NULL, 0, big), 0);
    struct pt_cache_obj *o = get(c, "https://a.example/big", NULL, 0);
    assert_non_null(o);
    assert_int_equal(o->body_len, sizeof big - 1);
    pt_cache_obj_unref(o);
    pt_cache_close(c);
}

static void test_epoch_drops_a_fetch_older_than_a_purge(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(1 << 20);
    const char *u = "https://a.example/e";
    uint64_t ep = pt_cache_epoch(c, u, strlen(u));
    pt_cache_purge_url(c, u, strlen(u));
    struct pt_cache_obj *o =
        pt_cache_obj_new(c, &META, u, strlen(u), "", 0, "", 0, "", 0, "", 0, 0);
    assert_int_equal(pt_cache_publish(c, o, ep), -1);
    assert_false(has(c, u));
    ep = pt_cache_epoch(c, u, strlen(u));
    pt_cache_purge_tag(c, "t", 1); /* any tag purge: global */
    o = pt_cache_obj_new(c, &META, u, strlen(u), "", 0, "", 0, "", 0, "", 0, 0);
    assert_int_equal(pt_cache_publish(c, o, ep), -1);
    assert_int_equal(put(c, u, "", 0, NULL, 0, "ok"), 0);
    assert_true(has(c, u));
    pt_cache_close(c);
}

static void test_coalescing(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(1 << 20);
    const char *u = "https://a.example/c";
    size_t n = strlen(u);
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 1000), PT_FILL_LEAD);
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 1001), PT_FILL_WAIT);
    assert_int_equal(pt_cache_fill_begin(c, u, n, "k", 1, 1001), PT_FILL_LEAD);
    assert_true(pt_cache_fill_busy(c, u, n, "", 0));
    pt_cache_fill_end(c, u, n, "", 0, true, 5, 1100);
    assert_false(pt_cache_fill_busy(c, u, n, "", 0));
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 1200), PT_FILL_LEAD);
    pt_cache_fill_end(c, u, n, "", 0, false, 5, 1300);
    assert_false(pt_cache_fill_busy(c, u, n, "", 0));
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 2000), PT_FILL_PASS);
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 6299), PT_FILL_PASS);
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 6300), PT_FILL_LEAD);
    /* a lead that never ends is abandoned after 60 s */
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 60000), PT_FILL_WAIT);
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 66300), PT_FILL_LEAD);
    assert_int_equal(pt_cache_fill_begin(c, u, n, "", 0, 66301), PT_FILL_WAIT);
    pt_cache_fill_end(c, u, n, "", 0, true, 0, 66400);
    pt_cache_fill_end(c, u, n, "k", 1, true, 0, 66400);
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    pt_cache_close(c);
}

static void test_purge_prefix_tag_all(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(1 << 20);
    assert_int_equal(put(c, "https://a.example/p/1", "", 0, "red\0blue", 9, "1"), 0);
    assert_int_equal(put(c, "https://a.example/p/2", "", 0, "blue\0blue", 10, "2"), 0);
    assert_int_equal(put(c, "https://a.example/q/3", "", 0, "red", 3, "3"), 0);
    assert_int_equal(put(c, "https://b.example/p/4", "", 0, NULL, 0, "4"), 0);
    assert_int_equal(pt_cache_purge_tag(c, "green", 5), 0);
    assert_int_equal(pt_cache_purge_tag(c, "re", 2), 0);
    assert_int_equal(pt_cache_purge_tag(c, "blue", 4), 2);
    assert_false(has(c, "https://a.example/p/1"));
    assert_false(has(c, "https://a.example/p/2"));
    assert_true(has(c, "https://a.example/q/3"));
    assert_int_equal(pt_cache_purge_prefix(c, "https://a.example/", 18), 1);
    assert_false(has(c, "https://a.example/q/3"));
    assert_true(has(c, "https://b.example/p/4"));
    assert_int_equal(put(c, "https://a.example/p/1", "", 0, "red\0blue", 9, "1"), 0);
    assert_int_equal(pt_cache_purge_all(c), 2);
    assert_false(has(c, "https://b.example/p/4"));
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.purged, 5);
    pt_cache_close(c);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_purge_tag_10000_of_100000(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(256ull << 20);
    char url[64], tags[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(url, sizeof url, "https://a.example/item/%d", i);
        int tl = snprintf(tags, sizeof tags, "%s%csite", i % 10 == 0 ? "hot" : "cold", 0);
        assert_int_equal(put(c, url, "", 0, tags, (size_t)tl, "body"), 0);
    }
    double t0 = now_s();
    size_t n = pt_cache_purge_tag(c, "hot", 3);
    double ms = (now_s() - t0) * 1e3;
    printf("cache store: purge by tag of %zu of 100000 objects: %.2f ms\n", n, ms);
    assert_int_equal(n, 10000);
    for (int i = 0; i < 100000; i++) {
        snprintf(url, sizeof url, "https://a.example/item/%d", i);
        assert_int_equal(has(c, url), i % 10 != 0);
    }
    pt_cache_close(c);
}

static void test_one_hit_wonders_keep_a_read_object(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(4 << 20);
    const char *hot = "https://a.example/hot";
    assert_int_equal(put(c, hot, "", 0, NULL, 0, "hot"), 0);
    char url[64], body[512];
    memset(body, 'b', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    /* 20 times the cap in one-hit wonders; the hot object is read now and then */
    for (int i = 0; i < 100000; i++) {
        if (i % 500 == 0)
            assert_true(has(c, hot));
        snprintf(url, sizeof url, "https://a.example/once/%d", i);
        assert_int_equal(put(c, url, "", 0, NULL, 0, body), 0);
    }
    assert_true(has(c, hot));
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    assert_true(st.bytes <= 4 << 20);
    assert_true(st.evictions > 90000);
    pt_cache_close(c);
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu", &size, &res), 2);
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void test_million_keys_within_cap(void **state)
{
    (void)state;
    const uint64_t cap = 64ull << 20;
    uint64_t base = rss_bytes();
    struct pt_cache *c = open_mem(cap);
    char url[64];
    double t0 = now_s();
    for (int i = 0; i < 1000000; i++) {
        snprintf(url, sizeof url, "https://a.example/k/%d", i);
        assert_int_equal(put(c, url, "", 0, NULL, 0, "0123456789abcdef0123456789abcdef"), 0);
    }
    double secs = now_s() - t0;
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    uint64_t rss = rss_bytes() - base;
    /* documented in docs/internals/cache.md: cap + index_bytes + 16 B of malloc header a
       live object, plus the allocator's slack (freed chunks it keeps) */
    uint64_t bound = cap + st.index_bytes + st.objects * 16 + cap / 8;
    printf("cache store: 1M keys in %.2f s; %llu objects, %llu bytes (cap %llu), index %llu "
           "bytes, RSS growth %llu bytes (bound %llu)\n",
           secs, (unsigned long long)st.objects, (unsigned long long)st.bytes,
           (unsigned long long)cap, (unsigned long long)st.index_bytes, (unsigned long long)rss,
           (unsigned long long)bound);
    assert_true(st.bytes <= cap);
#ifndef PT_SANITIZE
    assert_true(rss <= bound);
#endif
    pt_cache_close(c);
}

/* ---- threads ---- */

struct targ {
    struct pt_cache *c;
    int id;
};

static void *worker(void *p)
{
    struct targ *a = p;
    char url[64];
    unsigned seed = (unsigned)a->id * 7919u + 1;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 8) % 500;
        snprintf(url, sizeof url, "https://a.example/t/%d", k);
        int op = (int)(seed >> 20) % 10;
        if (op < 5) {
            struct pt_cache_obj *o = get(a->c, url, NULL, 0);
            if (o) {
                assert_int_equal(o->body_len, 6);
                assert_memory_equal(o->body, "abcdef", 6);
                pt_cache_obj_unref(o);
            }
        } else if (op < 8) {
            put(a->c, url, "", 0, k % 3 ? "x" : "y", 1, "abcdef");
        } else if (op == 8) {
            pt_cache_purge_url(a->c, url, strlen(url));
        } else if (i % 100 == 9) {
            pt_cache_purge_tag(a->c, "y", 1);
        } else {
            enum pt_fill f = pt_cache_fill_begin(a->c, url, strlen(url), "", 0, (uint64_t)i);
            if (f == PT_FILL_LEAD)
                pt_cache_fill_end(a->c, url, strlen(url), "", 0, k % 2, 1, (uint64_t)i);
        }
    }
    return NULL;
}

static void run_threads(struct pt_cache *c)
{
    pthread_t t[4];
    struct targ a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct targ){c, i};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    assert_true(st.bytes <= 64 << 10);
}

static void test_threads(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(64 << 10); /* small: eviction runs all the time */
    run_threads(c);
    pt_cache_close(c);
}

/* ---- disk ---- */

static char dir[256];

static struct pt_cache *open_disk(uint64_t disk_cap)
{
    struct pt_cache_limits lim = {.memory_bytes = 1 << 20,
                                  .max_object_bytes = 1 << 20,
                                  .disk_path = dir,
                                  .disk_bytes = disk_cap};
    char err[256];
    struct pt_cache *c = pt_cache_open(&lim, err, sizeof err);
    assert_non_null(c);
    return c;
}

/* The path of the only file under dir (the test stores one object). */
static bool only_file(char *out, size_t cap)
{
    bool found = false;
    DIR *a = opendir(dir);
    struct dirent *x, *y, *z;
    while (a && (x = readdir(a))) {
        if (x->d_name[0] == '.')
            continue;
        char p1[512];
        snprintf(p1, sizeof p1, "%s/%s", dir, x->d_name);
        DIR *b = opendir(p1);
        while (b && (y = readdir(b))) {
            if (y->d_name[0] == '.')
                continue;
            char p2[768];
            snprintf(p2, sizeof p2, "%s/%s", p1, y->d_name);
            DIR *d = opendir(p2);
            while (d && (z = readdir(d))) {
                if (z->d_name[0] == '.')
                    continue;
                snprintf(out, cap, "%s/%s", p2, z->d_name);
                found = true;
            }
            if (d)
                closedir(d);
        }
        if (b)
            closedir(b);
    }
    if (a)
        closedir(a);
    return found;
}

static void rm_tree(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_disk_restart_and_corruption(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pt-cache-test-%d", (int)getpid());
    rm_tree();
    const char *u = "https://a.example/d";
    struct pt_cache *c = open_disk(1 << 20);
    assert_int_equal(put(c, u, VK_GZIP, sizeof VK_GZIP, "t1", 2, "disk body"), 0);
    pt_cache_close(c); /* writes the queue out */

    /* restart: the entry is indexed from its file and read on a memory miss */
    c = open_disk(1 << 20);
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    assert_int_equal(st.disk_objects, 1);
    assert_int_equal(st.objects, 0);
    struct pt_field gz[] = {FIELD("accept-encoding", "gzip")};
    struct pt_field br[] = {FIELD("accept-encoding", "br")};
    bool any = false;
    assert_null(pt_cache_get(c, u, strlen(u), "", 0, br, 1, &any));
    assert_true(any);
    struct pt_cache_obj *o = get(c, u, gz, 1);
    assert_non_null(o);
    assert_int_equal(o->body_len, 9);
    assert_memory_equal(o->body, "disk body", 9);
    assert_int_equal(o->meta.status, 200);
    assert_int_equal(o->meta.lifetime, 60);
    assert_memory_equal(o->tags, "t1", 2);
    pt_cache_obj_unref(o);
    pt_cache_close(c);

    /* a flipped byte: a miss, and the file is gone */
    char path[1024];
    assert_true(only_file(path, sizeof path));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    char ch;
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(pread(fd, &ch, 1, sb.st_size - 12), 1);
    ch ^= 0x20;
    assert_int_equal(pwrite(fd, &ch, 1, sb.st_size - 12), 1);
    close(fd);
    c = open_disk(1 << 20);
    assert_null(get(c, u, gz, 1));
    assert_int_equal(access(path, F_OK), -1);
    pt_cache_stats(c, &st);
    assert_int_equal(st.disk_objects, 0);

    /* a truncated file: the same */
    assert_int_equal(put(c, u, VK_GZIP, sizeof VK_GZIP, "t1", 2, "disk body"), 0);
    pt_cache_close(c);
    assert_true(only_file(path, sizeof path));
    assert_int_equal(stat(path, &sb), 0);
    c = open_disk(1 << 20);
    assert_int_equal(truncate(path, sb.st_size - 3), 0);
    assert_null(get(c, u, gz, 1));
    assert_int_equal(access(path, F_OK), -1);

    /* an object both in memory and on disk counts once; prefix purges reach files */
    assert_int_equal(put(c, u, VK_GZIP, sizeof VK_GZIP, "t1", 2, "disk body"), 0);
    for (int i = 0; i < 2000; i++) {
        pt_cache_stats(c, &st);
        if (st.disk_objects == 1)
            break;
        usleep(1000);
    }
    assert_int_equal(st.disk_objects, 1);
    assert_int_equal(st.objects, 1);
    assert_int_equal(pt_cache_purge_url(c, u, strlen(u)), 1);
    assert_false(only_file(path, sizeof path));
    assert_int_equal(put(c, u, VK_GZIP, sizeof VK_GZIP, "t1", 2, "disk body"), 0);
    pt_cache_close(c);
    c = open_disk(1 << 20);
    assert_int_equal(pt_cache_purge_prefix(c, "https://b.example/", 18), 0);
    assert_int_equal(pt_cache_purge_prefix(c, "https://a.example/", 18), 1);
    assert_null(get(c, u, gz, 1));

    /* purges remove files; the disk cap evicts the oldest */
    assert_int_equal(put(c, u, VK_GZIP, sizeof VK_GZIP, "t1", 2, "disk body"), 0);
    pt_cache_close(c);
    c = open_disk(1 << 20);
    assert_int_equal(pt_cache_purge_tag(c, "t1", 2), 1);
    assert_false(only_file(path, sizeof path));
    char url[64];
    static char big[4000];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 40; i++) {
        snprintf(url, sizeof url, "https://a.example/big/%d", i);
        assert_int_equal(put(c, url, "", 0, NULL, 0, big), 0);
    }
    pt_cache_close(c);
    c = open_disk(1 << 20);
    pt_cache_stats(c, &st);
    assert_int_equal(st.disk_objects, 40);
    struct pt_cache_limits lim = {.memory_bytes = 1 << 20,
                                  .max_object_bytes = 1 << 20,
                                  .disk_path = dir,
                                  .disk_bytes = 50000};
    char err[256];
    assert_int_equal(pt_cache_set_limits(c, &lim, err, sizeof err), 0);
    pt_cache_stats(c, &st);
    assert_true(st.disk_bytes <= 50000);
    assert_true(st.disk_objects >= 10 && st.disk_objects < 40);
    assert_true(has(c, "https://a.example/big/39"));
    assert_false(has(c, "https://a.example/big/0"));
    lim.disk_path = "/tmp/elsewhere";
    assert_int_equal(pt_cache_set_limits(c, &lim, err, sizeof err), -1);
    assert_non_null(strstr(err, "disk path"));
    assert_true(pt_cache_purge_all(c) > 0);
    pt_cache_close(c);
    rm_tree();
}

/* The same four threads with the disk tier: the writer thread, disk reads on memory misses and
   purges of files run concurrently. */
static void test_threads_with_disk(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pt-cache-test-t%d", (int)getpid());
    rm_tree();
    struct pt_cache_limits lim = {.memory_bytes = 64 << 10,
                                  .max_object_bytes = 1 << 20,
                                  .disk_path = dir,
                                  .disk_bytes = 256 << 10};
    char err[256];
    struct pt_cache *c = pt_cache_open(&lim, err, sizeof err);
    assert_non_null(c);
    run_threads(c);
    pt_cache_close(c);
    rm_tree();
}

static void test_set_limits_shrinks(void **state)
{
    (void)state;
    struct pt_cache *c = open_mem(1 << 20);
    char url[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(url, sizeof url, "https://a.example/s/%d", i);
        assert_int_equal(put(c, url, "", 0, NULL, 0, "some body bytes"), 0);
    }
    struct pt_cache_limits lim = {.memory_bytes = 64 << 10, .max_object_bytes = 1 << 20};
    char err[256];
    assert_int_equal(pt_cache_set_limits(c, &lim, err, sizeof err), 0);
    struct pt_cache_stats st;
    pt_cache_stats(c, &st);
    assert_true(st.bytes <= 64 << 10);
    assert_true(st.objects > 0);
    lim.disk_path = "/tmp/x";
    assert_int_equal(pt_cache_set_limits(c, &lim, err, sizeof err), -1);
    pt_cache_close(c);
}

int main(void)
{
    const struct CMUnitTest bench[] = {
        cmocka_unit_test(test_purge_tag_10000_of_100000),
    };
    if (getenv("PT_BENCH_PURGE"))
        return cmocka_run_group_tests(bench, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_keys_within_cap), /* first: RSS from a fresh heap */
        cmocka_unit_test(test_variants_and_replace),
        cmocka_unit_test(test_large_object_fits),
        cmocka_unit_test(test_epoch_drops_a_fetch_older_than_a_purge),
        cmocka_unit_test(test_coalescing),
        cmocka_unit_test(test_purge_prefix_tag_all),
        cmocka_unit_test(test_purge_tag_10000_of_100000),
        cmocka_unit_test(test_one_hit_wonders_keep_a_read_object),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_disk_restart_and_corruption),
        cmocka_unit_test(test_threads_with_disk),
        cmocka_unit_test(test_set_limits_shrinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
