/*
 * tokens.c - the admin API's tokens file, hashing and checking (see tokens.h).
 *
 * Only hashes are stored, so a leaked tokens file (a backup, a config repository) gives no
 * access. SHA-256 without salt or stretching is enough here: a token carries 256 random bits,
 * so there is no dictionary to precompute; a slow hash would only make every API call slower.
 * A presented token is hashed once and compared with every entry, each comparison in constant
 * time and without stopping at the first match.
 *
 * The parser reports every bad line (up to a bound) with its line number and never echoes a
 * hash or token back. The CLI half (pt_tokens_cmd) lives here so that main.c only names it.
 */
#include "admin/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ERRORS 10

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

bool pt_token_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > PT_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

const char *pt_token_scope_name(int scope)
{
    return scope == PT_SCOPE_WRITE ? "write" : scope == PT_SCOPE_READ ? "read" : "none";
}

int pt_token_scope_parse(const char *s)
{
    if (strcmp(s, "read") == 0)
        return PT_SCOPE_READ;
    if (strcmp(s, "write") == 0)
        return PT_SCOPE_WRITE;
    return PT_SCOPE_NONE;
}

void pt_tokens_hash(const char *s, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(s, n, out, &len, EVP_sha256(), NULL))
        memset(out, 0, 32); /* never matches a stored hash of a real token by chance */
}

/* Appends "name:line: message" to err (bounded); counts in *n_err. */
static void line_error(char *err, size_t errlen, size_t *n_err, const char *name, size_t line,
                       const char *msg)
{
    size_t used = strlen(err);
    if (*n_err < MAX_ERRORS && used < errlen)
        snprintf(err + used, errlen - used, "%s%s:%zu: %s", used ? "\n" : "", name, line, msg);
    (*n_err)++;
}

/* Splits the next whitespace-separated field of [*p, end) into [*f, *f + *fn). */
static bool next_field(const char **p, const char *end, const char **f, size_t *fn)
{
    const char *q = *p;
    while (q < end && is_space(*q))
        q++;
    if (q == end)
        return false;
    const char *s = q;
    while (q < end && !is_space(*q))
        q++;
    *f = s;
    *fn = (size_t)(q - s);
    *p = q;
    return true;
}

/* Parses one non-blank, non-comment line into tk; returns NULL or what is wrong. */
static const char *parse_line(const char *p, const char *end, struct pt_token *tk)
{
    const char *f[4];
    size_t fn[4];
    size_t n = 0;
    while (n < 4 && next_field(&p, end, &f[n], &fn[n]))
        n++;
    if (n != 3)
        return "expected NAME SCOPE SHA256HEX (three fields; `portico token NAME` prints one)";
    if (!pt_token_name_ok(f[0], fn[0]))
        return "a token name is 1 to 64 letters, digits, '.', '_' or '-'";
    memcpy(tk->name, f[0], fn[0]);
    tk->name[fn[0]] = '\0';
    char scope[8] = "";
    if (fn[1] < sizeof(scope))
        memcpy(scope, f[1], fn[1]);
    tk->scope = pt_token_scope_parse(scope);
    if (tk->scope == PT_SCOPE_NONE)
        return "the scope must be read or write";
    if (fn[2] != 64)
        return "expected the token's SHA-256 as 64 hex digits (not the token itself)";
    for (size_t i = 0; i < 32; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)f[2][2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)f[2][2 * i + 1]);
        if (hi < 0 || lo < 0)
            return "expected the token's SHA-256 as 64 hex digits (not the token itself)";
        tk->sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    return NULL;
}

int pt_tokens_parse(const char *name, const char *buf, size_t len, struct pt_tokens *out, char *err,
                    size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    if (errlen)
        err[0] = '\0';
    size_t cap = 0, n_err = 0, line = 0;
    const char *p = buf, *end = buf + len;
    char msg[200];
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        line++;
        const char *q = p;
        p = eol ? eol + 1 : end;
        if (le > q && le[-1] == '\r')
            le--;
        while (q < le && is_space(*q))
            q++;
        if (q == le || *q == '#')
            continue;
        if (memchr(q, '\0', (size_t)(le - q)) || memchr(q, '\r', (size_t)(le - q))) {
            line_error(err, errlen, &n_err, name, line, "control characters in the line");
            continue;
        }
        struct pt_token tk;
        memset(&tk, 0, sizeof(tk));
        const char *why = parse_line(q, le, &tk);
        if (why) {
            line_error(err, errlen, &n_err, name, line, why);
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < out->n && !dup; i++)
            dup = strcmp(out->items[i].name, tk.name) == 0;
        if (dup) {
            snprintf(msg, sizeof(msg), "token name \"%s\" is used twice in the file", tk.name);
            line_error(err, errlen, &n_err, name, line, msg);
            continue;
        }
        if (out->n == PT_TOKENS_MAX) {
            line_error(err, errlen, &n_err, name, line, "more than 1024 tokens in the file");
            break;
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct pt_token *ni = realloc(out->items, nc * sizeof(*ni));
            if (!ni) {
                line_error(err, errlen, &n_err, name, line, "out of memory");
                break;
            }
            out->items = ni;
            cap = nc;
        }
        out->items[out->n++] = tk;
    }
    if (n_err > MAX_ERRORS) {
        size_t used = strlen(err);
        if (used < errlen)
            snprintf(err + used, errlen - used, "\n%s: %zu more errors", name, n_err - MAX_ERRORS);
    }
    if (n_err) {
        pt_tokens_free(out);
        return -1;
    }
    return 0;
}

int pt_tokens_load(const char *path, struct pt_tokens *out, char *err, size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot read the tokens file: %s", path, strerror(errno));
        return -1;
    }
    size_t max = (size_t)PT_TOKENS_FILE_MAX << 10;
    char *buf = malloc(max + 1);
    size_t len = 0;
    int rc = -1;
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, max + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read the tokens file: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max) {
            snprintf(err, errlen, "%s: the tokens file is larger than %u KiB", path,
                     PT_TOKENS_FILE_MAX);
            goto out;
        }
    }
    rc = pt_tokens_parse(path, buf, len, out, err, errlen);
out:
    free(buf);
    close(fd);
    return rc;
}

void pt_tokens_free(struct pt_tokens *t)
{
    if (!t)
        return;
    OPENSSL_cleanse(t->items, t->n * sizeof(*t->items));
    free(t->items);
    t->items = NULL;
    t->n = 0;
}

const struct pt_token *pt_tokens_find(const struct pt_tokens *t, const char *s, size_t n)
{
    uint8_t h[32];
    pt_tokens_hash(s, n, h);
    const struct pt_token *found = NULL;
    for (size_t i = 0; i < t->n; i++) {
        /* No early exit: every entry costs the same comparison. */
        bool eq = CRYPTO_memcmp(h, t->items[i].sha256, sizeof(h)) == 0;
        if (eq && !found)
            found = &t->items[i];
    }
    OPENSSL_cleanse(h, sizeof(h));
    return found;
}

int pt_tokens_make(const char *name, int scope, char *token, size_t token_len, char *line,
                   size_t line_len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (!pt_token_name_ok(name, strlen(name)) || scope == PT_SCOPE_NONE || token_len < 47 ||
        line_len < 140)
        return -1;
    uint8_t rnd[33]; /* 256 bits used; one more byte rounds the groups of three */
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -1;
    size_t o = 0;
    token[o++] = 'p';
    token[o++] = 't';
    token[o++] = '_';
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)rnd[i] << 16 | (uint32_t)rnd[i + 1] << 8 | rnd[i + 2];
        for (int k = 3; k >= 0; k--)
            token[o++] = b64[(v >> (6 * k)) & 63];
    }
    o = 3 + 43; /* 43 characters carry the first 258 bits: 256 of randomness is enough */
    token[o] = '\0';
    OPENSSL_cleanse(rnd, sizeof(rnd));
    uint8_t h[32];
    pt_tokens_hash(token, o, h);
    int w = snprintf(line, line_len, "%s %s ", name, pt_token_scope_name(scope));
    for (size_t i = 0; i < 32 && w > 0 && (size_t)w + 3 <= line_len; i++)
        w += snprintf(line + w, line_len - (size_t)w, "%02x", h[i]);
    return 0;
}

int pt_tokens_cmd(int argc, char **argv)
{
    const char *name = NULL, *scope_s = "read";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc) {
            scope_s = argv[++i];
        } else if (strncmp(argv[i], "--scope=", 8) == 0) {
            scope_s = argv[i] + 8;
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            fprintf(stderr,
                    "portico: unexpected argument \"%s\"\nusage: portico token NAME "
                    "[--scope read|write]\n",
                    argv[i]);
            return 2;
        }
    }
    if (!name) {
        fprintf(stderr, "usage: portico token NAME [--scope read|write]\n");
        return 2;
    }
    int scope = pt_token_scope_parse(scope_s);
    if (scope == PT_SCOPE_NONE) {
        fprintf(stderr, "portico: --scope is read or write, not \"%s\"\n", scope_s);
        return 2;
    }
    if (!pt_token_name_ok(name, strlen(name))) {
        fprintf(stderr,
                "portico: a token name is 1 to 64 letters, digits, '.', '_' or '-', not "
                "\"%s\"\n",
                name);
        return 2;
    }
    char token[64], line[160];
    if (pt_tokens_make(name, scope, token, sizeof(token), line, sizeof(line)) < 0) {
        fprintf(stderr, "portico: cannot make a token: no randomness available\n");
        return 1;
    }
    printf("%s\n%s\n", token, line);
    fflush(stdout);
    fprintf(stderr, "portico: line 1 is the token (shown only now: give it to its user); add "
                    "line 2 to the admin tokens_file and reload\n");
    OPENSSL_cleanse(token, sizeof(token));
    return 0;
}
