/*
 * store_internal.h - what store.c (open, schema, projects, aliases) and store_rules.c (rules,
 * secrets, checks) share. Not for other files.
 */
#ifndef PT_ADMIN_STORE_INTERNAL_H
#define PT_ADMIN_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "admin/store.h"

struct pt_store {
    sqlite3 *db;
    struct pt_secret_key key; /* valid when has_key; wiped on close */
    bool has_key;
    char err[512];  /* the last failure, one line, never a secret */
    char field[48]; /* the API field at fault, or "" */
};

/* Records a failure (message and field) and returns rc. */
int pt_store_fail(struct pt_store *s, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records SQLite's last error on what; returns PT_STORE_ERR. */
int pt_store_dberr(struct pt_store *s, const char *what);
/* Prepares sql; PT_STORE_ERR (recorded) on failure. */
int pt_store_prepare(struct pt_store *s, const char *sql, sqlite3_stmt **st);
/* Runs sql (no result rows, no parameters). */
int pt_store_exec(struct pt_store *s, const char *sql);
/* BEGIN IMMEDIATE (write) or BEGIN (read); then the call's work; then tx_end commits when rc is
   0 and rolls back otherwise, returning rc (or PT_STORE_ERR when the commit failed). */
int pt_store_tx_begin(struct pt_store *s, bool write);
int pt_store_tx_end(struct pt_store *s, int rc);
/* Milliseconds since the epoch, wall clock. */
int64_t pt_store_now_ms(void);
/* The updated time that follows old_ms: now, or old_ms + 1 when the clock has not moved on. */
int64_t pt_store_next_ms(int64_t old_ms);
/* RFC 3339 UTC with milliseconds into out[PT_STORE_TIME_LEN + 1]. */
void pt_store_format_time(int64_t ms, char *out);
/* A new UUIDv4 from the CSPRNG into out[PT_STORE_ID_LEN + 1]. */
int pt_store_new_id(struct pt_store *s, char *out);
/* True when v is non-empty (unless may_be_empty), at most max bytes, with no control bytes. */
bool pt_store_text_ok(const char *v, size_t max, bool may_be_empty);
/* Copies column col of st (NULL: "") into a malloc'ed string; NULL when out of memory. */
char *pt_store_col_dup(sqlite3_stmt *st, int col);

/* Reads column 0 of every row of st (bound, not yet stepped) into a malloc'ed array of
   malloc'ed strings (pt_store_ids_free). */
int pt_store_ids(struct pt_store *s, sqlite3_stmt *st, char ***ids, size_t *n);
void pt_store_ids_free(char **v, size_t n);
/* Reads updated_ms of row id with sql (?1 = id); PT_STORE_CONFLICT when expected (non-NULL)
   is not its formatted value, PT_STORE_NOT_FOUND when there is no row; *next is the updated_ms
   the change will write. what names the kind in messages. */
int pt_store_check_version(struct pt_store *s, const char *sql, const char *what, const char *id,
                           const char *expected, int64_t *next);
typedef int (*pt_store_read_cb)(struct pt_store *s, const char *id, void *item, void *arg);
typedef void (*pt_store_clear_cb)(void *item);
/* The end of every list call, inside its read transaction: when rc is 0, reads each of
   ids[0..n_ids) with read(s, id, item, arg) into a malloc'ed array of items of size bytes;
   frees ids; ends the transaction. On failure clears what was read and returns the error with
   *out NULL and *n 0. */
int pt_store_read_list(struct pt_store *s, int rc, char **ids, size_t n_ids, size_t size,
                       pt_store_read_cb read, void *arg, pt_store_clear_cb clear, void **out,
                       size_t *n);
/* Clears each of the n items of size bytes at v, then frees v. */
void pt_store_free_items(void *v, size_t n, size_t size, pt_store_clear_cb clear);
/* Deletes row id with sql (?1 = id) in its own transaction; PT_STORE_NOT_FOUND when none. */
int pt_store_delete_one(struct pt_store *s, const char *sql, const char *what, const char *id);

#endif
