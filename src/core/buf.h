/*
 * buf.h - capped byte buffers and the per-thread cache their memory comes from.
 *
 * A pt_buf is a window [head, tail) over data[0, cap). Capacity is fixed when the memory is
 * taken: reaching it is the caller's signal (431, back-pressure), never a reason to grow.
 * Connections take memory only while they have bytes to hold and give it back when idle, so
 * an idle keep-alive connection costs no buffer at all.
 *
 * Memory comes in three classes (PT_BUF_SMALL for request heads and client input,
 * PT_BUF_MEDIUM for rewritten upstream heads, PT_BUF_LARGE for response streaming) from a
 * thread-local free list; other sizes are plain malloc. pt_buf_class() rounds a size up to a
 * class where one fits. Under PT_SANITIZE the cache is bypassed so ASan sees every buffer's life.
 */
#ifndef PT_CORE_BUF_H
#define PT_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PT_BUF_SMALL (16u * 1024u)
#define PT_BUF_MEDIUM (32u * 1024u)
#define PT_BUF_LARGE (64u * 1024u)

struct pt_buf {
    char *data;    /* NULL when no memory is held */
    uint32_t head; /* first unread byte */
    uint32_t tail; /* one past the last byte written */
    uint32_t cap;  /* bytes in data */
};

/* Takes memory of cap bytes for an empty buffer (b->data must be NULL). Returns 0 or -ENOMEM. */
int pt_buf_alloc(struct pt_buf *b, uint32_t cap);
/* Gives the memory back (to the thread's cache); the buffer becomes empty with data NULL. */
void pt_buf_release(struct pt_buf *b);
/* The smallest class holding n bytes, or n itself when it is larger than every class. */
static inline uint32_t pt_buf_class(uint32_t n)
{
    return n <= PT_BUF_SMALL    ? PT_BUF_SMALL
           : n <= PT_BUF_MEDIUM ? PT_BUF_MEDIUM
           : n <= PT_BUF_LARGE  ? PT_BUF_LARGE
                                : n;
}
/* Frees this thread's cached buffers (thread exit). */
void pt_buf_cache_drain(void);

static inline uint32_t pt_buf_len(const struct pt_buf *b)
{
    return b->tail - b->head;
}
static inline char *pt_buf_rpos(const struct pt_buf *b)
{
    return b->data + b->head;
}
static inline uint32_t pt_buf_room(const struct pt_buf *b)
{
    return b->cap - b->tail;
}
static inline void pt_buf_consume(struct pt_buf *b, uint32_t n)
{
    b->head += n;
    if (b->head == b->tail)
        b->head = b->tail = 0;
}
/* Moves unread bytes to the front so all free room is at the end. */
static inline void pt_buf_compact(struct pt_buf *b)
{
    if (b->head > 0) {
        uint32_t n = b->tail - b->head;
        memmove(b->data, b->data + b->head, n);
        b->head = 0;
        b->tail = n;
    }
}
/* Appends n bytes; returns false (nothing written) when they do not fit. */
static inline bool pt_buf_put(struct pt_buf *b, const void *p, size_t n)
{
    if (n > pt_buf_room(b))
        return false;
    memcpy(b->data + b->tail, p, n);
    b->tail += (uint32_t)n;
    return true;
}

/*
 * A growable output buffer for documents built whole before they are sent (the admin
 * layer's /metrics page): it grows by doubling up to max bytes. Reaching max, or running out
 * of memory, marks it failed: later appends do nothing and the caller answers with an error.
 * Zero-initialise it with max set; pt_gbuf_free gives the memory back.
 */
struct pt_gbuf {
    char *data;     /* NUL-terminated when len > 0; NULL until the first append */
    size_t len;     /* bytes written */
    size_t cap;     /* bytes in data */
    size_t max;     /* hard limit on len */
    bool is_failed; /* an append did not fit (max) or memory ran out */
};

/* Appends n bytes of p. Returns 0, or -1 (and marks g failed) when they do not fit. */
int pt_gbuf_put(struct pt_gbuf *g, const void *p, size_t n);
/* Appends printf-style text. Returns 0 or -1 as pt_gbuf_put. */
int pt_gbuf_printf(struct pt_gbuf *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees g's memory; g is empty again (max kept). */
void pt_gbuf_free(struct pt_gbuf *g);

#endif
