/*
 * tokens.h - the admin API's bearer tokens: the tokens file, hashing, checking, and making new
 * ones (`portico token`).
 *
 * The file keeps only a hash of each token, one per line:
 *
 *     # comment
 *     NAME SCOPE SHA256HEX
 *
 * NAME is 1..64 of [A-Za-z0-9._-] and unique in the file, SCOPE is read or write, SHA256HEX is
 * the SHA-256 of the whole token text as 64 hex digits. Fields are separated by spaces or tabs;
 * blank lines and lines starting with '#' are skipped. A write token may do what a read token
 * does. The table is immutable once parsed and read by the admin thread only.
 */
#ifndef PT_ADMIN_TOKENS_H
#define PT_ADMIN_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PT_TOKEN_NAME_MAX 64    /* bytes of a token name */
#define PT_TOKENS_MAX 1024      /* tokens in one file */
#define PT_TOKENS_FILE_MAX 1024 /* KiB: 1 MiB bounds the tokens file */

enum pt_token_scope { PT_SCOPE_NONE = 0, PT_SCOPE_READ, PT_SCOPE_WRITE };

struct pt_token {
    char name[PT_TOKEN_NAME_MAX + 1];
    int scope;          /* enum pt_token_scope */
    uint8_t sha256[32]; /* of the token text */
};

struct pt_tokens {
    struct pt_token *items;
    size_t n;
};

/*
 * Parses a tokens file's text buf[0..len) into *out (items malloc'd; free with pt_tokens_free).
 * name is used in messages. Returns 0, or -1 with err holding one "NAME:LINE: message" line
 * per bad line (up to 10, newline-separated) and *out empty.
 */
int pt_tokens_parse(const char *name, const char *buf, size_t len, struct pt_tokens *out, char *err,
                    size_t errlen);

/* Reads and parses the file at path (at most PT_TOKENS_FILE_MAX KiB). Same results; a file
   that cannot be read is "PATH: reason". May block (file read): main thread. */
int pt_tokens_load(const char *path, struct pt_tokens *out, char *err, size_t errlen);

void pt_tokens_free(struct pt_tokens *t);

/* SHA-256 of s[0..n) into out. */
void pt_tokens_hash(const char *s, size_t n, uint8_t out[32]);

/*
 * The entry whose hash is that of the token text s[0..n), or NULL. Every entry is compared, in
 * constant time each (CRYPTO_memcmp), so the time taken does not tell how much of a hash
 * matched or where in the file the entry is.
 */
const struct pt_token *pt_tokens_find(const struct pt_tokens *t, const char *s, size_t n);

/* "read" / "write" (and "none"). */
const char *pt_token_scope_name(int scope);
/* Parses "read" / "write"; PT_SCOPE_NONE for anything else. */
int pt_token_scope_parse(const char *s);

/* Whether name is a valid token name (1..64 of [A-Za-z0-9._-]). */
bool pt_token_name_ok(const char *s, size_t n);

/*
 * Makes a fresh token for name with scope: "pt_" and 43 base64url characters (256 random bits
 * from the OpenSSL generator) into token[token_len >= 47], and the line to add to the tokens
 * file ("NAME SCOPE SHA256HEX") into line[line_len >= 140]. Returns 0, or -1 when the name is
 * invalid or no randomness is available.
 */
int pt_tokens_make(const char *name, int scope, char *token, size_t token_len, char *line,
                   size_t line_len);

/* `portico token NAME [--scope read|write]` (argv[0] is "token"): prints the token and its
   line to stdout. Returns the process exit code. */
int pt_tokens_cmd(int argc, char **argv);

#endif
