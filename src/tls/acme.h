/*
 * acme.h - automatic certificates (RFC 8555) for the sites' exact host names.
 *
 * One manager per process, on a thread of its own: requests never wait on it. It keeps an
 * account key and certificates in tls.acme.storage, obtains certificates on first start,
 * renews them when a third of their lifetime is left, and retries with backoff. Until a name
 * has a certificate, a self-signed placeholder is served for it. When a certificate arrives,
 * the manager asks for a reload (SIGHUP to its own process), and the snapshot built then picks
 * the new files up through pt_acme_certificates().
 */
#ifndef PT_TLS_ACME_H
#define PT_TLS_ACME_H

#include <stddef.h>
#include <sys/types.h>

#include "tls/tls.h"

struct pt_acme;

/* What the manager is told (tls.acme and the sites' host names), borrowed for the call. */
struct pt_acme_settings {
    const char *email;     /* NULL: no contact */
    const char *directory; /* the ACME directory URL */
    const char *ca_root;   /* CA file the directory's certificate is checked with; NULL: system */
    const char *storage;   /* folder of the account key, certificates and placeholders */
    const char *const *hosts; /* every site host name; the manager keeps the eligible ones */
    size_t n_hosts;
};

/* Starts the manager with s (NULL: tls.acme is not set; returns NULL with no error). May block
   on the filesystem (storage, placeholder generation): main thread only. On failure returns
   NULL and fills err. */
struct pt_acme *pt_acme_start(const struct pt_acme_settings *s, char *err, size_t errlen);
/* Follows a new configuration (names added or removed; s NULL: tls.acme was removed, which
   takes effect at the next start). Main thread only. */
void pt_acme_update(struct pt_acme *a, const struct pt_acme_settings *s);
/* Stops the thread and frees everything. */
void pt_acme_stop(struct pt_acme *a);

/* The certificates to serve for the ACME-managed names (obtained ones, or placeholders),
   appended to out[0..max). The paths stay valid until the next call from the same thread.
   Returns how many were written. Main thread only. */
size_t pt_acme_certificates(struct pt_acme *a, struct pt_tls_cert_settings *out, size_t max);

/* HTTP-01: when token is a pending challenge, writes its key authorization into out and returns
   the length; else returns -1. Thread-safe (called by workers). */
ssize_t pt_acme_http01(const char *token, size_t token_len, char *out, size_t outlen);

#endif
