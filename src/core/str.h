/*
 * str.h - borrowed byte slices.
 *
 * A pt_str never owns its bytes: it points into a buffer that outlives it (a connection's input
 * buffer, the configuration arena). Parsers fill slices instead of copying, which is what lets
 * a request head be parsed with no allocation at all.
 */
#ifndef PT_CORE_STR_H
#define PT_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct pt_str {
    const char *p; /* first byte; not NUL-terminated */
    size_t n;      /* length in bytes */
};

#define PT_STR(lit) ((struct pt_str){(lit), sizeof(lit) - 1})

static inline bool pt_str_eq(struct pt_str a, const char *b, size_t bn)
{
    return a.n == bn && memcmp(a.p, b, bn) == 0;
}

/* ASCII case-insensitive comparison, for header names and tokens (RFC 9110 §5.1). */
static inline bool pt_str_caseeq(struct pt_str a, const char *b, size_t bn)
{
    return a.n == bn && strncasecmp(a.p, b, bn) == 0;
}

#define PT_STR_CASEEQ_LIT(s, lit) pt_str_caseeq((s), (lit), sizeof(lit) - 1)
#define PT_STR_EQ_LIT(s, lit) pt_str_eq((s), (lit), sizeof(lit) - 1)

#endif
