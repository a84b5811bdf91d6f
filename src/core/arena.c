/*
 * arena.c - bump allocator (see arena.h).
 *
 * Blocks are malloc'ed on demand and chained newest first; an allocation larger than a quarter
 * of the block size gets a block of its own so big strings do not waste the tail of a block.
 * Under PT_SANITIZE every allocation is its own block: AddressSanitizer then reports an
 * overflow of one object instead of silently running into its neighbour.
 */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pt_arena_block {
    struct pt_arena_block *next;
    size_t used; /* bytes handed out from data */
    size_t cap;  /* bytes in data */
    max_align_t data[];
};

void pt_arena_init(struct pt_arena *a, size_t block_bytes)
{
    a->head = NULL;
    a->block_bytes = block_bytes ? block_bytes : 4096;
}

static struct pt_arena_block *new_block(struct pt_arena *a, size_t cap)
{
    struct pt_arena_block *b = malloc(sizeof(*b) + cap);
    if (!b)
        return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    return b;
}

void *pt_arena_alloc(struct pt_arena *a, size_t n)
{
    const size_t align = _Alignof(max_align_t);
    size_t need = (n + align - 1) & ~(align - 1);
    if (need < n)
        return NULL;
    struct pt_arena_block *b = a->head;
#ifdef PT_SANITIZE
    b = NULL;
#endif
    if (!b || b->cap - b->used < need) {
        size_t cap = a->block_bytes;
#ifdef PT_SANITIZE
        cap = need;
#endif
        if (need > cap / 4)
            cap = need;
        /* A dedicated block goes behind the current head so the head's free tail survives. */
        b = new_block(a, cap ? cap : align);
        if (!b)
            return NULL;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
}

char *pt_arena_strndup(struct pt_arena *a, const char *s, size_t n)
{
    char *p = pt_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *pt_arena_strdup(struct pt_arena *a, const char *s)
{
    return pt_arena_strndup(a, s, strlen(s));
}

void *pt_arena_grow(struct pt_arena *a, void *items, size_t n, size_t *cap, size_t elem,
                    size_t first)
{
    if (n < *cap)
        return items;
    size_t nc = *cap ? *cap * 2 : first;
    if (nc <= n || nc > SIZE_MAX / elem)
        return NULL;
    void *p = pt_arena_alloc(a, nc * elem);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, items, n * elem);
    *cap = nc;
    return p;
}

void pt_arena_free(struct pt_arena *a)
{
    struct pt_arena_block *b = a->head;
    while (b) {
        struct pt_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
