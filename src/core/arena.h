/*
 * arena.h - bump allocator whose memory is released all at once.
 *
 * Used for data whose lifetime is one object's: the configuration snapshot, and per-request
 * scratch. Blocks are chained; nothing is freed individually. With PT_SANITIZE each allocation
 * is its own malloc block so AddressSanitizer sees every object's bounds.
 */
#ifndef PT_CORE_ARENA_H
#define PT_CORE_ARENA_H

#include <stddef.h>

struct pt_arena_block;

struct pt_arena {
    struct pt_arena_block *head; /* newest block first */
    size_t block_bytes;          /* size of each new block; large requests get their own */
};

/* Initialises an empty arena; no memory is taken until the first allocation. */
void pt_arena_init(struct pt_arena *a, size_t block_bytes);
/* Returns zeroed memory aligned for any type, or NULL when out of memory. */
void *pt_arena_alloc(struct pt_arena *a, size_t n);
/* Copies n bytes and a terminating NUL into the arena; NULL when out of memory. */
char *pt_arena_strndup(struct pt_arena *a, const char *s, size_t n);
char *pt_arena_strdup(struct pt_arena *a, const char *s);
/*
 * Room for one more element in a growing array that lives in the arena: items holds n elements
 * of elem bytes in *cap slots. When it is full, the elements move to a new array twice as large
 * (first slots when it is empty) and *cap is updated; the old array stays in the arena until it
 * is freed. Returns the array to use (items itself when there was room), or NULL when out of
 * memory (nothing changed).
 */
void *pt_arena_grow(struct pt_arena *a, void *items, size_t n, size_t *cap, size_t elem,
                    size_t first);
/* Releases every block; the arena is empty and reusable afterwards. */
void pt_arena_free(struct pt_arena *a);

#endif
