/*
 * toml.h - a small TOML 1.0 reader: the subset configuration files such as netlify.toml use.
 *
 * Supported: comments; bare, quoted and dotted keys; basic strings (all escapes, \uXXXX and
 * \UXXXXXXXX), literal strings, and their multi-line forms; integers (decimal with '_', 0x, 0o,
 * 0b); floats (including inf and nan); booleans; arrays (multi-line, trailing comma, mixed
 * types); inline tables; [tables] and [[arrays of tables]], with TOML's rules against defining a
 * key or a table twice. Not supported, and reported as an error at its line: dates and times,
 * and the NUL character (\u0000) in strings, which C strings cannot carry.
 *
 * The whole document becomes a tree of struct pt_toml_value in the caller's arena. The first
 * error stops the parse: TOML has no reliable way to resynchronise after a syntax error.
 * Nesting (arrays and inline tables inside each other, key parts) is bounded by
 * PT_TOML_MAX_DEPTH, a table by PT_TOML_MAX_KEYS keys and the input by PT_TOML_MAX_BYTES, so
 * hostile input costs bounded time and memory.
 */
#ifndef PT_CONFIG_TOML_H
#define PT_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

#define PT_TOML_MAX_BYTES (8u << 20)
#define PT_TOML_MAX_DEPTH 32
#define PT_TOML_MAX_KEYS 4096

enum pt_toml_type {
    PT_TOML_STRING = 1,
    PT_TOML_INTEGER,
    PT_TOML_FLOAT,
    PT_TOML_BOOL,
    PT_TOML_ARRAY,
    PT_TOML_TABLE,
};

struct pt_toml_kv {
    const char *key; /* NUL-terminated, decoded (no NUL inside) */
    size_t key_len;
    struct pt_toml_value *value;
    int line; /* line of the key */
};

struct pt_toml_value {
    int type;                     /* enum pt_toml_type */
    int line;                     /* 1-based line where the value, or the table's header, starts */
    const char *str;              /* STRING: decoded, NUL-terminated, valid UTF-8, no NUL inside */
    size_t str_len;               /* STRING: bytes */
    int64_t integer;              /* INTEGER */
    double number;                /* FLOAT */
    bool boolean;                 /* BOOL */
    struct pt_toml_value **items; /* ARRAY: elements in order (an array of tables holds
                                     TABLE values) */
    size_t n_items;
    struct pt_toml_kv *kvs; /* TABLE: keys in file order, unique */
    size_t n_kvs;
    size_t cap;     /* internal: capacity of items or kvs */
    unsigned flags; /* internal: how the table or array was defined */
};

/*
 * Parses len bytes of buf (need not be NUL-terminated). On success returns PT_OK and *root, a
 * TABLE owned by the arena a. On failure returns PT_ERR, sets *err_line (1-based; 0 when the
 * error has no line, e.g. the input is too large or memory ran out) and writes a one-line reason
 * (without file or line) into err. Never blocks.
 */
int pt_toml_parse(struct pt_arena *a, const char *buf, size_t len, struct pt_toml_value **root,
                  int *err_line, char *err, size_t errlen);

/* The value of key in a TABLE, or NULL when absent or t is not a table. */
const struct pt_toml_value *pt_toml_get(const struct pt_toml_value *t, const char *key);

/* "string", "integer", "float", "boolean", "array", "table". */
const char *pt_toml_type_name(int type);

#endif
