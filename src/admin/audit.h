/*
 * audit.h - the admin API's audit log: one JSON line per change made through the API.
 *
 * Each line is an object {"time": RFC 3339 UTC with milliseconds, "token": the token's name,
 * "method", "path", "change": what the handler says changed}. The handler builds the change
 * object and must leave secret values out of it (a header secret is written as masked, never
 * as sent). The file is opened append-only (mode 0640) and reopened at its path on SIGUSR1,
 * like the access log, for rotation.
 *
 * The last PT_AUDIT_RECENT lines are also kept in memory, as JSON objects, for the dashboard's
 * list of recent changes (GET /api/changes): written whether or not a file is configured, and
 * never re-read from the file.
 *
 * Threads: pt_audit_write runs on the admin thread, pt_audit_reopen and pt_audit_set_path on
 * the main thread; a mutex orders them (changes are rare: no lock is on a request path).
 */
#ifndef PT_ADMIN_AUDIT_H
#define PT_ADMIN_AUDIT_H

#include <jansson.h>
#include <stddef.h>

#define PT_AUDIT_RECENT 200 /* lines kept in memory for pt_audit_recent */

struct pt_audit;

/* An audit log writing to path (NULL: none, writes are dropped), opened now. Returns it, or
   NULL with err filled ("cannot open audit log \"PATH\": reason"). May block: main thread. */
struct pt_audit *pt_audit_open(const char *path, char *err, size_t errlen);

/* Points a at path (NULL: none) after a reload; the file is reopened when the path changed.
   Returns 0, or -1 with err filled (a keeps writing where it did). */
int pt_audit_set_path(struct pt_audit *a, const char *path, char *err, size_t errlen);

/* SIGUSR1: reopens the file at its path (a renamed file is left behind). Logs the outcome. */
void pt_audit_reopen(struct pt_audit *a);

/*
 * Writes one line: now, token (the token's name), method, path, and change (borrowed; any
 * JSON value, NULL for none). One write(2) per line, so lines never interleave. Returns 0, or
 * -1 when the line could not be written (logged).
 */
int pt_audit_write(struct pt_audit *a, const char *token, const char *method, const char *path,
                   const json_t *change);

/* The last limit lines written (at most PT_AUDIT_RECENT), newest first, as a new JSON array of
   the lines' objects; NULL when out of memory. Any thread. */
json_t *pt_audit_recent(struct pt_audit *a, size_t limit);

void pt_audit_close(struct pt_audit *a);

#endif
