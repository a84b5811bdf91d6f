/*
 * buf.c - buffer memory with a thread-local cache per size class (see buf.h).
 *
 * Each worker thread keeps up to CACHE_MAX free blocks per class: enough to absorb the churn of
 * requests starting and ending without calling malloc, small enough that a burst that has
 * passed does not pin memory (blocks beyond the cap go straight back to malloc).
 */
#include "core/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define CACHE_MAX 64

struct free_block {
    struct free_block *next;
};

struct cache {
    struct free_block *head;
    unsigned n;
};

static __thread struct cache caches[3];

static int class_of(uint32_t cap)
{
#ifdef PT_SANITIZE
    (void)cap;
    return -1;
#else
    return cap == PT_BUF_SMALL ? 0 : cap == PT_BUF_MEDIUM ? 1 : cap == PT_BUF_LARGE ? 2 : -1;
#endif
}

int pt_buf_alloc(struct pt_buf *b, uint32_t cap)
{
    int k = class_of(cap);
    char *p = NULL;
    if (k >= 0 && caches[k].head) {
        p = (char *)caches[k].head;
        caches[k].head = caches[k].head->next;
        caches[k].n--;
    } else {
        p = malloc(cap);
        if (!p)
            return -ENOMEM;
    }
    b->data = p;
    b->head = b->tail = 0;
    b->cap = cap;
    return 0;
}

void pt_buf_release(struct pt_buf *b)
{
    if (!b->data)
        return;
    int k = class_of(b->cap);
    if (k >= 0 && caches[k].n < CACHE_MAX) {
        struct free_block *f = (struct free_block *)(void *)b->data;
        f->next = caches[k].head;
        caches[k].head = f;
        caches[k].n++;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->head = b->tail = b->cap = 0;
}

void pt_buf_cache_drain(void)
{
    for (int k = 0; k < 3; k++) {
        while (caches[k].head) {
            struct free_block *f = caches[k].head;
            caches[k].head = f->next;
            free(f);
        }
        caches[k].n = 0;
    }
}

static int gbuf_reserve(struct pt_gbuf *g, size_t n)
{
    if (g->is_failed)
        return -1;
    if (n > g->max - g->len) {
        g->is_failed = true;
        return -1;
    }
    size_t need = g->len + n + 1; /* room for the NUL */
    if (need <= g->cap)
        return 0;
    size_t cap = g->cap ? g->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *d = realloc(g->data, cap);
    if (!d) {
        g->is_failed = true;
        return -1;
    }
    g->data = d;
    g->cap = cap;
    return 0;
}

int pt_gbuf_put(struct pt_gbuf *g, const void *p, size_t n)
{
    if (gbuf_reserve(g, n) < 0)
        return -1;
    memcpy(g->data + g->len, p, n);
    g->len += n;
    g->data[g->len] = '\0';
    return 0;
}

int pt_gbuf_printf(struct pt_gbuf *g, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (k < 0) {
        g->is_failed = true;
        return -1;
    }
    if ((size_t)k < sizeof(small))
        return pt_gbuf_put(g, small, (size_t)k);
    if (gbuf_reserve(g, (size_t)k) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(g->data + g->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    g->len += (size_t)k;
    return 0;
}

void pt_gbuf_free(struct pt_gbuf *g)
{
    free(g->data);
    *g = (struct pt_gbuf){.max = g->max};
}
