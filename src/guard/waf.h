/*
 * waf.h - the web application firewall: libmodsecurity3 with the OWASP Core Rule Set, per site
 * or route (config: struct pt_waf_cfg). See waf.c and docs/internals/guard.md.
 *
 * Rule sets are compiled when a configuration snapshot is built (pt_waf_build, main thread;
 * `check` too, so a rule that does not load is a configuration error), shared read-only by
 * every worker, and freed with the snapshot (pt_waf_release). A request runs one transaction
 * (struct pt_waf_tx): its head (phase 1), then its body, up to the configured limit (phase 2).
 */
#ifndef PT_GUARD_WAF_H
#define PT_GUARD_WAF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "http/fields.h"

struct pt_waf_tx;

/* What a step of a transaction decided. */
enum pt_waf_verdict {
    PT_WAF_PASS = 0, /* go on (in detect mode, also what the rules would have refused) */
    PT_WAF_REFUSE,   /* refuse with pt_waf_tx_status() (403, or 400 for a body that does not
                        parse) */
};

/* The directives Portico writes before the profile and the CRS (engine, body limits, body
   processors, paranoia and thresholds), NUL-ended into buf. Returns its length, or -1 when
   cap is too small. Pure. */
ssize_t pt_waf_head_text(const struct pt_waf_cfg *w, char *buf, size_t cap);

/* The exclusions, loaded last, NUL-ended into buf ("" when none). Returns its length, or -1
   when cap is too small. Pure. */
ssize_t pt_waf_tail_text(const struct pt_waf_cfg *w, char *buf, size_t cap);

/* Compiles every waf: of cfg that is not off into w->compiled: identical ones (the same
   directives, files and audit log) share one rule set. The process's ModSecurity instance is
   made on the first call. open_audit: open the audit log files (not for `check`). Main thread.
   Returns 0, or -1 with err filled ("FILE:LINE:COL: waf: ...", ModSecurity's message). On
   failure what was compiled stays in place for pt_waf_release. */
int pt_waf_build(struct pt_config *cfg, bool open_audit, char *err, size_t errlen);

/* Drops cfg's compiled rule sets (the snapshot's free). */
void pt_waf_release(struct pt_config *cfg);

/* Where a request comes from and goes to, for the transaction's connection variables. */
struct pt_waf_conn {
    const char *client_ip; /* the client behind trusted_proxies, as text */
    int client_port;
    const char *server_ip;
    int server_port;
    const char *request_id; /* borrowed; must outlive the transaction */
    const char *protocol;   /* "1.1", "1.0" or "2.0" */
};

/* A new transaction of w's compiled rules for one request, or NULL when out of memory. */
struct pt_waf_tx *pt_waf_tx_new(const struct pt_waf_cfg *w, const struct pt_waf_conn *conn);

/* Frees tx (NULL: nothing). */
void pt_waf_tx_free(struct pt_waf_tx *tx);

/* Phase 1: the connection, the request line (uri: the target as received) and h's fields
   (HTTP/2's authority as Host when no Host field came). */
enum pt_waf_verdict pt_waf_tx_head(struct pt_waf_tx *tx, struct pt_str method, struct pt_str uri,
                                   const struct pt_req_head *h);

/* Appends n body bytes (the caller keeps to body_limit). Returns 0, or -1. */
int pt_waf_tx_body(struct pt_waf_tx *tx, const char *p, size_t n);

/* Phase 2, on the body appended so far (none: a request without one, or one passed
   uninspected over the limit). */
enum pt_waf_verdict pt_waf_tx_end_body(struct pt_waf_tx *tx);

/* The status a PT_WAF_REFUSE answers with. */
int pt_waf_tx_status(const struct pt_waf_tx *tx);

/* Whether the rules matched anything that blocks or would block (detect mode): an
   intervention, or the CRS's anomaly evaluation (949110, 959100). */
bool pt_waf_tx_flagged(const struct pt_waf_tx *tx);

/* The matched rule ids, comma-separated, into buf (for the error log). */
void pt_waf_tx_rule_ids(const struct pt_waf_tx *tx, char *buf, size_t cap);

/* Writes tx's audit line, when its waf: has an audit_log: time, request id, client, method,
   uri (truncated), the matched rules (id, message, severity), the anomaly score and action
   ("blocked", "detected", "refused_over_limit"). Never a body byte or a header value. One
   write(2) with O_APPEND. */
void pt_waf_tx_audit(struct pt_waf_tx *tx, const char *method, const char *uri, const char *action);

#endif
