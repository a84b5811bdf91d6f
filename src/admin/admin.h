/*
 * admin.h - the admin listener: a small HTTP/1.1 JSON server for operators and tools, off the
 * request path, on its own thread and event loop.
 *
 * Life cycle (main thread):
 *
 *     pt_admin_state_new(cfg, &st)   with each snapshot: reads the tokens file, builds the TLS
 *                                    context (may block; errors are FILE:LINE[:COL] lines)
 *     a = pt_admin_new(st)           binds the address, opens the audit log; routes /live, /ready
 *     pt_admin_route(a, ...)         more endpoints (before pt_admin_start only)
 *     pt_admin_start(a)              starts the thread
 *     pt_admin_set_ready(a, true)    workers serve the first snapshot: /ready answers 200
 *     pt_admin_update(a, st2)        after a reload: new tokens, TLS context, audit log path
 *     pt_admin_reopen_logs(a)        SIGUSR1
 *     pt_admin_destroy(a)            stops the thread, closes everything
 *
 * Endpoints are a table of (method, path pattern) -> handler. A pattern is a path whose
 * segments are literal or ":name" (one whole non-empty segment, captured as a parameter):
 * "/api/proxy-rules/project/:projectId/reorder". The first registered route that matches wins.
 * HEAD is answered by GET routes, without the body. A path that matches with another method
 * is 405 with Allow; no match is 404.
 *
 * Authentication: every route but those registered PT_ADMIN_PUBLIC needs
 * "Authorization: Bearer TOKEN" with a token of the tokens file (admin/tokens.h): none or an
 * unknown one is 401 (WWW-Authenticate: Bearer), a read token on a method other than GET or
 * HEAD is 403. Both are checked before routing answers 404 or 405, so the table of endpoints
 * is not visible without a token. Handlers run on the admin thread, one request at a time, and must not block
 * for long (a SQLite write is fine; a network call is not).
 *
 * Answers are JSON. Errors have one shape: {"errors": [{"field": F, "message": M}]}, where F
 * is the offending request field's name or null.
 */
#ifndef PT_ADMIN_ADMIN_H
#define PT_ADMIN_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define PT_ADMIN_BODY_MAX (1u << 20) /* bytes of a request body; over it: 413 */
#define PT_ADMIN_CONNS_MAX 128       /* open admin connections; more are closed at accept */
#define PT_ADMIN_PARAMS_MAX 8        /* ":name" parameters in one pattern */

struct pt_admin;
struct pt_admin_state;
struct pt_admin_req;

/* A route's handler: answers q (pt_admin_reply...) before returning; arg as registered. */
typedef void (*pt_admin_handler_cb)(struct pt_admin_req *q, void *arg);

enum pt_admin_route_flags {
    PT_ADMIN_PUBLIC = 1, /* no token needed (/live, /ready) */
};

/* ---- main thread ---------------------------------------------------------------------- */

/*
 * The admin state of cfg (borrowed; nothing of it is kept): *out NULL when cfg has no admin:
 * section, else a new state with one reference. Reads the tokens file and builds the TLS
 * context, so it may block. Returns 0, or -1 with err filled ("FILE:LINE: ..." for the tokens
 * file, "FILE:LINE:COL: ..." for the configuration).
 */
int pt_admin_state_new(const struct pt_config *cfg, struct pt_admin_state **out, char *err,
                       size_t errlen);
/* Drops a reference (NULL is fine). Thread-safe. */
void pt_admin_state_unref(struct pt_admin_state *st);

/*
 * An admin listener for st (a reference is taken): binds its address and opens the audit log
 * now, so that a taken port is an error at start; routes /live and /ready. Returns it (not yet
 * running), or NULL with err filled.
 */
struct pt_admin *pt_admin_new(struct pt_admin_state *st, char *err, size_t errlen);

/*
 * Registers method ("GET", "POST", ...) on pattern (see above) with cb and arg (borrowed for
 * a's lifetime); flags from enum pt_admin_route_flags. Only before pt_admin_start. Returns 0,
 * or -1 for a malformed pattern, too many parameters, or no memory.
 */
int pt_admin_route(struct pt_admin *a, const char *method, const char *pattern, int flags,
                   pt_admin_handler_cb cb, void *arg);

/*
 * The change hook: cb(arg) runs on the admin thread after each change that an API handler
 * committed (pt_admin_changed), before the answer is written; it must not block for long (it
 * hands the rebuild of the configuration to the main thread). NULL cb: none. Only before
 * pt_admin_start.
 */
void pt_admin_on_change(struct pt_admin *a, void (*cb)(void *arg), void *arg);

/* The counter block the admin thread binds (core/counters.h: pt_ctr_bind) when it starts, for
   PT_CTR_API_CHANGES_OK/_FAILED. Only before pt_admin_start; b is borrowed for a's life. */
struct pt_ctr_block;
void pt_admin_bind_counters(struct pt_admin *a, struct pt_ctr_block *b);

/* Gives a the object p to free with free_cb(p) in pt_admin_destroy, after the thread stopped
   (the rules API's store). One object; a second call replaces the first without freeing it. */
void pt_admin_own(struct pt_admin *a, void (*free_cb)(void *p), void *p);

/* Starts the admin thread. Returns 0 or -errno. */
int pt_admin_start(struct pt_admin *a);

/* Hands st (a reference is taken) to the admin thread after a reload; the old state is
   dropped there. A changed listen address is not rebound: it is logged as needing a restart.
   Reopens the audit log when its path changed. */
void pt_admin_update(struct pt_admin *a, struct pt_admin_state *st);

/* What /ready answers: 200 while ready, 503 otherwise (starting or draining). Any thread. */
void pt_admin_set_ready(struct pt_admin *a, bool ready);

/* SIGUSR1: reopens the audit log. */
void pt_admin_reopen_logs(struct pt_admin *a);

/* Stops and joins the thread (if started), closes every connection and the listener, and
   frees a. NULL is fine. */
void pt_admin_destroy(struct pt_admin *a);

/* ---- handlers (admin thread) ----------------------------------------------------------- */

/* The request's method and path (without the query), NUL-terminated; the raw query after
   '?' ("" when none). Valid during the handler. */
const char *pt_admin_method(const struct pt_admin_req *q);
const char *pt_admin_path(const struct pt_admin_req *q);
const char *pt_admin_query(const struct pt_admin_req *q);
/* The value of parameter name (":name" in the pattern), NUL-terminated, as sent (not
   percent-decoded), or NULL. */
const char *pt_admin_param(const struct pt_admin_req *q, const char *name);
/* The first value of header name (case-insensitive) into *len, or NULL. */
const char *pt_admin_header(const struct pt_admin_req *q, const char *name, size_t *len);
/* The token's name ("" on public routes) and scope (enum pt_token_scope). */
const char *pt_admin_token_name(const struct pt_admin_req *q);
int pt_admin_token_scope(const struct pt_admin_req *q);
/* The request body (not NUL-terminated) and its length. */
const char *pt_admin_body(const struct pt_admin_req *q, size_t *len);
/* The body parsed as JSON (a new reference), or NULL after answering 400 (empty or invalid
   body, with the parser's position in the message). */
json_t *pt_admin_body_json(struct pt_admin_req *q);

/* Answers status with body (reference stolen; NULL: no body). A second answer replaces the
   first; headers added with pt_admin_reply_header, before or after, stay. */
void pt_admin_reply(struct pt_admin_req *q, int status, json_t *body);
/* Answers status with len bytes of text (malloc'd; ownership passes, freed after the answer;
   NULL with len 0: no body) as content_type (a static string such as "text/plain"). */
void pt_admin_reply_text(struct pt_admin_req *q, int status, const char *content_type, char *text,
                         size_t len);
/* Answers status with {"errors": [{"field": field or null, "message": message}]}. */
void pt_admin_reply_error(struct pt_admin_req *q, int status, const char *field,
                          const char *message);
/* Adds a response header (name and value without CR or LF; e.g. ETag, Location). Returns 0,
   or -1 when the answer's header space (1 KiB) is full or the text is invalid. */
int pt_admin_reply_header(struct pt_admin_req *q, const char *name, const char *value);
/* Runs the change hook (pt_admin_on_change), if any: call it once after each committed
   change. */
void pt_admin_changed(struct pt_admin_req *q);
/* The prefixes of admin.allow_private in the state now in use (borrowed for the handler's
   run; *n 0 and maybe NULL when none). */
const struct pt_cidr *pt_admin_allow_private(const struct pt_admin_req *q, size_t *n);
/* Whether host (compared without case) is a host name of a site of the configuration file, as
   of the snapshot now serving: the API's projects and aliases may not take it (the file's site
   would keep it; server/api_rules.c). */
bool pt_admin_is_file_host(const struct pt_admin_req *q, const char *host);

/* Route i of the table, in registration order (/live, /ready first): its method and pattern
   (borrowed for the listener's life) and flags. Returns 0, or -1 when i is past the end. */
int pt_admin_route_at(const struct pt_admin_req *q, size_t i, const char **method,
                      const char **pattern, int *flags);
/* Writes the audit line of this request's change (admin/audit.h): the token's name, method,
   path and change (borrowed; leave secret values out). Returns 0 or -1. */
int pt_admin_audit(struct pt_admin_req *q, const json_t *change);
/* The last limit audit lines (at most PT_AUDIT_RECENT, admin/audit.h), newest first: a new
   JSON array of {"time", "token", "method", "path", "change"}, kept in memory by the audit log
   whether or not it has a file; NULL when out of memory. */
json_t *pt_admin_recent_changes(struct pt_admin_req *q, size_t limit);

#endif
