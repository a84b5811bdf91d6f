/*
 * mime.c - Content-Type by file-name extension, from /etc/mime.types plus built-in defaults.
 *
 * The table is an open-addressing hash (linear probing, power-of-two size, at most half full)
 * from a lower-cased extension to a Content-Type string that is ready to send: the charset
 * parameter is appended once at load for text types, JavaScript and JSON, so a lookup is one
 * hash and one compare and never formats anything.
 *
 * Built-in defaults are inserted first and the file's lines over them, so a Debian system gets
 * Debian's choices and a system without media-types still serves a web site correctly. The
 * process-wide table is built once (pthread_once) and then only read, by any thread, without
 * locks. Rejected: libmagic (content sniffing is slow, and a type that depends on the bytes
 * makes the same URL change type when the file changes).
 */
#include "handler/mime.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXT_MAX 32 /* longest extension kept; longer ones in the file are skipped */

struct slot {
    char *ext;  /* lower case, NUL-terminated; NULL: empty slot */
    char *type; /* full Content-Type value */
};

struct pt_mime_table {
    struct slot *slots;
    size_t cap; /* power of two */
    size_t used;
};

/* Already in their final form (the charset is not appended twice). */
static const char *const builtin[][2] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},
    {"webmanifest", "application/manifest+json; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"pdf", "application/pdf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
};

static uint32_t hash_ext(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a over the lower-cased bytes */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)tolower((unsigned char)p[i]);
        h *= 16777619u;
    }
    return h;
}

static bool wants_charset(const char *type)
{
    if (strncmp(type, "text/", 5) == 0)
        return true;
    if (strcmp(type, "application/javascript") == 0 ||
        strcmp(type, "application/x-javascript") == 0 || strcmp(type, "application/json") == 0)
        return true;
    size_t n = strlen(type);
    return n > 5 && strcmp(type + n - 5, "+json") == 0;
}

static int grow(struct pt_mime_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 256;
    struct slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].ext)
            continue;
        size_t j = hash_ext(t->slots[i].ext, strlen(t->slots[i].ext)) & (ncap - 1);
        while (ns[j].ext)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* Sets ext -> type (replacing an earlier entry). ext is n bytes; type NUL-terminated. */
static int put(struct pt_mime_table *t, const char *ext, size_t n, const char *type)
{
    if (n == 0 || n > EXT_MAX)
        return 0;
    if ((t->used + 1) * 2 > t->cap && grow(t) != 0)
        return -1;
    size_t tn = strlen(type);
    bool cs = wants_charset(type) && !strchr(type, ';');
    char *full = malloc(tn + (cs ? 15 : 0) + 1);
    if (!full)
        return -1;
    memcpy(full, type, tn);
    if (cs) {
        memcpy(full + tn, "; charset=utf-8", 15);
        tn += 15;
    }
    full[tn] = '\0';
    size_t j = hash_ext(ext, n) & (t->cap - 1);
    while (t->slots[j].ext) {
        if (strlen(t->slots[j].ext) == n && strncasecmp(t->slots[j].ext, ext, n) == 0) {
            free(t->slots[j].type);
            t->slots[j].type = full;
            return 0;
        }
        j = (j + 1) & (t->cap - 1);
    }
    char *e = malloc(n + 1);
    if (!e) {
        free(full);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        e[i] = (char)tolower((unsigned char)ext[i]);
    e[n] = '\0';
    t->slots[j].ext = e;
    t->slots[j].type = full;
    t->used++;
    return 0;
}

static const char *get(const struct pt_mime_table *t, const char *ext, size_t n)
{
    if (!t || t->cap == 0 || n == 0 || n > EXT_MAX)
        return NULL;
    size_t j = hash_ext(ext, n) & (t->cap - 1);
    while (t->slots[j].ext) {
        if (strlen(t->slots[j].ext) == n && strncasecmp(t->slots[j].ext, ext, n) == 0)
            return t->slots[j].type;
        j = (j + 1) & (t->cap - 1);
    }
    return NULL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One mime.types line: "type ext1 ext2 ..."; blank lines and '#' comments skipped. */
static int load_line(struct pt_mime_table *t, char *line)
{
    char *p = line;
    while (is_space(*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    char *type = p;
    while (*p && !is_space(*p))
        p++;
    if (*p == '\0')
        return 0; /* a type with no extensions */
    *p++ = '\0';
    if (!strchr(type, '/') || strlen(type) > 127)
        return 0;
    for (;;) {
        while (is_space(*p))
            p++;
        if (*p == '\0' || *p == '#')
            return 0;
        char *e = p;
        while (*p && !is_space(*p))
            p++;
        if (put(t, e, (size_t)(p - e), type) != 0)
            return -1;
    }
}

struct pt_mime_table *pt_mime_table_load(const char *path)
{
    struct pt_mime_table *t = calloc(1, sizeof(*t));
    char *line = NULL;
    size_t cap = 0;
    FILE *f = NULL;
    if (!t)
        return NULL;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (put(t, builtin[i][0], strlen(builtin[i][0]), builtin[i][1]) != 0)
            goto fail;
    if (path)
        f = fopen(path, "re");
    if (f) {
        while (getline(&line, &cap, f) >= 0)
            if (load_line(t, line) != 0)
                goto fail;
        fclose(f);
        f = NULL;
    }
    free(line);
    return t;
fail:
    if (f)
        fclose(f);
    free(line);
    pt_mime_table_free(t);
    return NULL;
}

void pt_mime_table_free(struct pt_mime_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].ext);
        free(t->slots[i].type);
    }
    free(t->slots);
    free(t);
}

/* Built-in lookup without a table (linear; used when the table could not be allocated). */
static const char *builtin_get(const char *ext, size_t n)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (strlen(builtin[i][0]) == n && strncasecmp(builtin[i][0], ext, n) == 0)
            return builtin[i][1];
    return NULL;
}

const char *pt_mime_table_lookup(const struct pt_mime_table *t, const char *name, size_t len)
{
    size_t base = len;
    while (base > 0 && name[base - 1] != '/')
        base--;
    /* Skip leading dots of the base name: ".htaccess" has no extension. */
    size_t i = base;
    while (i < len && name[i] == '.')
        i++;
    for (; i < len; i++) {
        if (name[i] != '.')
            continue;
        const char *ext = name + i + 1;
        size_t n = len - i - 1;
        const char *type = t ? get(t, ext, n) : builtin_get(ext, n);
        if (type)
            return type;
    }
    return PT_MIME_DEFAULT;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static struct pt_mime_table *global_table; /* written once under global_once, then read-only */

static void global_load(void)
{
    global_table = pt_mime_table_load(PT_MIME_SYSTEM_FILE);
}

void pt_mime_init(void)
{
    pthread_once(&global_once, global_load);
}

const char *pt_mime_type(const char *name, size_t len)
{
    pt_mime_init();
    return pt_mime_table_lookup(global_table, name, len);
}
