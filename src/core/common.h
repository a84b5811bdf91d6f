/*
 * common.h - flow codes, invariant checks and small helpers shared by every layer.
 *
 * Every int-returning function in Portico returns PT_OK (0) on success and a negative value on
 * failure: -errno for operating-system failures, or one of the flow codes below. PT_BUG_ON is
 * always compiled in: it guards invariants whose violation means memory is already corrupt, so
 * carrying on would be worse than stopping.
 */
#ifndef PT_CORE_COMMON_H
#define PT_CORE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pt_rc {
    PT_OK = 0,
    PT_ERR = -1000,      /* generic failure, already logged where decided */
    PT_AGAIN = -1001,    /* needs more I/O; call again when the fd is ready */
    PT_DECLINED = -1002, /* not mine: let the next handler try */
    PT_DONE = -1003,     /* finished; nothing more to do */
};

void pt_bug(const char *file, int line, const char *cond) __attribute__((noreturn));

#define PT_BUG_ON(cond)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!!(cond), 0))                                                         \
            pt_bug(__FILE__, __LINE__, #cond);                                                     \
    } while (0)

#define PT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PT_LIKELY(x) __builtin_expect(!!(x), 1)
#define PT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PT_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
