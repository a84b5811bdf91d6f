/*
 * tls_internal.h - structures shared by the files of src/tls/ (and by its unit tests, which
 * reach the SSL object to force client behaviour). Nothing outside src/tls/ and tests includes
 * this; the rest of Portico sees only tls.h.
 */
#ifndef PT_TLS_INTERNAL_H
#define PT_TLS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <openssl/ssl.h>

#include "core/buf.h"
#include "tls/tls.h"

#define PT_TLS_RECORD_MAX 16384u  /* plaintext bytes per TLS record (RFC 8446 §5.1) */
#define PT_TLS_SESSION_SLOTS 128u /* client sessions kept per client context */
#define PT_TLS_SESSION_PROBE 4u   /* slots looked at per key (open addressing) */

/* Certificates with the same name set share one SSL_CTX, one certificate per key type. */
struct pt_tls_group {
    SSL_CTX *ssl_ctx;
    char *names_key;    /* sorted names joined by '\n': the identity of the group */
    unsigned key_types; /* PT key-type bits already loaded */
    int first_index;    /* certs[] position of the group's first certificate */
};

/* SNI table entry: exact names, or wildcard suffixes ("*.w.test" is stored as "w.test"). */
struct pt_tls_name {
    char *name; /* lowercase, no trailing dot */
    uint32_t group;
};

struct pt_tls_ticket_key {
    unsigned char name[16]; /* random; sent in the clear in each ticket */
    unsigned char aes[32];  /* AES-256-CBC key */
    unsigned char hmac[32]; /* HMAC-SHA256 key */
};

/* A served certificate and its OCSP cache entry (tls_ocsp.c). */
struct pt_tls_ocsp_ref {
    X509 *leaf; /* the pointer OpenSSL hands back for this certificate (own reference) */
    struct pt_tls_ocsp_entry *e;
};

struct pt_tls_ctx {
    atomic_int refs;
    struct pt_tls_ocsp_ref *ocsp; /* certificates that name an OCSP responder */
    size_t n_ocsp;
    struct pt_tls_group *groups; /* groups[0] holds certs[0]: the default */
    size_t n_groups;
    struct pt_tls_name *exact; /* sorted by name, first certificate wins on duplicates */
    size_t n_exact;
    struct pt_tls_name *wild; /* sorted by suffix */
    size_t n_wild;
    unsigned char *alpn; /* wire format: length-prefixed protocol names */
    size_t alpn_len;
    uint64_t rotation_ms;
    bool strict_sni;
    pthread_rwlock_t key_lock;        /* guards keys and has_prev (rotation vs. handshakes) */
    struct pt_tls_ticket_key keys[2]; /* [0] current (seals and opens), [1] previous (opens) */
    bool has_prev;
};

struct pt_tls_session_slot {
    char *key; /* target ("host:port"); NULL when free */
    SSL_SESSION *sess;
};

struct pt_tls_client_ctx {
    atomic_int refs;
    SSL_CTX *ssl_ctx;
    bool verify;
    pthread_mutex_t lock; /* guards slots: connections of every worker store and take here */
    struct pt_tls_session_slot slots[PT_TLS_SESSION_SLOTS];
};

struct pt_tls_conn {
    SSL *ssl;
    struct pt_tls_ctx *ctx;       /* server side: holds a reference */
    struct pt_tls_client_ctx *cc; /* client side: holds a reference */
    char *host;                   /* client side: SNI / verified name */
    char *session_key;            /* client side: slot key for session reuse */
    struct pt_buf wbuf;           /* coalescing buffer; held only while a record is pending */
    uint32_t pend_len;            /* bytes of a sealed record the socket has not taken */
    const char *err;              /* one-line reason of the failure, or NULL */
    char *err_owned;              /* err when it had to be composed (freed with c) */
    int want;                     /* PT_TLS_WANT_READ / PT_TLS_WANT_WRITE */
    bool is_done;                 /* handshake finished */
    bool is_failed;               /* fatal error: no more I/O, no close_notify */
    bool is_eof;                  /* read side ended */
    bool is_clean_close;          /* ... with close_notify */
    bool is_shutdown_sent;
    bool got_close_notify; /* the peer's close_notify alert arrived */
    bool is_acme;          /* TLS-ALPN-01 challenge connection (RFC 8737) */
};

/* Fills err (printf-style msg). */
void pt_tls_set_err(struct pt_tls_err *err, const char *key, int index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The reason of the newest OpenSSL error of this thread (static string) and clears the queue. */
const char *pt_tls_ssl_reason(void);
/* "1.2" / "1.3" / NULL (-> 1.2) to a protocol version; 0 when invalid. */
int pt_tls_parse_version(const char *v);
/* Builds the ALPN wire list (NULL list: "http/1.1"). Returns 0 or -1 with err filled. */
int pt_tls_alpn_wire(const char *const *alpn, size_t n, unsigned char **out, size_t *out_len,
                     struct pt_tls_err *err);
/* Loads a PEM certificate (with chain) and its key and checks that they match. On success
   returns 0 and ownership of *leaf, *chain, *key; else -1 with err filled (key field, index). */
int pt_tls_load_pair(const char *cert_file, const char *key_file, const char *err_key, int index,
                     X509 **leaf, STACK_OF(X509) * *chain, EVP_PKEY **key, struct pt_tls_err *err);
/* Sets the options, modes and cipher lists common to server and client contexts. */
int pt_tls_ssl_ctx_common(SSL_CTX *sc, int min_version, const char *ciphers,
                          const char *ciphersuites, struct pt_tls_err *err);
/* Client side: stores sess under key (takes the caller's reference). */
void pt_tls_session_store(struct pt_tls_client_ctx *cc, const char *key, SSL_SESSION *sess);
/* Client side: the session stored under key with a reference for the caller, or NULL. */
SSL_SESSION *pt_tls_session_take(struct pt_tls_client_ctx *cc, const char *key);

/* ---- OCSP stapling (tls_ocsp.c) ---- */
struct pt_tls_ocsp_entry;
/* Registers leaf for stapling when it names an http OCSP responder (AIA) and its issuer is in
   chain: finds the process-wide entry with the same SHA-256 fingerprint (keeping its response)
   or makes one and wakes (or lazily starts) the fetch thread. Returns the entry with a
   reference for the caller, or NULL (nothing to staple). Borrows leaf and chain. Never blocks
   on the network. */
struct pt_tls_ocsp_entry *pt_tls_ocsp_register(X509 *leaf, STACK_OF(X509) * chain);
/* Drops a reference; an unused entry is kept a while (a reload registers it again). */
void pt_tls_ocsp_unref(struct pt_tls_ocsp_entry *e);
/* Staples e's response on s when one is valid now. Returns 0, or -1 (none). Worker threads. */
int pt_tls_ocsp_staple(struct pt_tls_ocsp_entry *e, SSL *s);
/* Whether e holds a response valid now. */
bool pt_tls_ocsp_has_response(const struct pt_tls_ocsp_entry *e);
/* Stops the fetch thread and frees every entry: for tests and exit, after every context is
   freed. */
void pt_tls_ocsp_shutdown(void);
/* Policy: a response is stapled only while this_update <= now < next_update. */
bool pt_tls_ocsp_is_valid(time_t this_update, time_t next_update, time_t now);
/* When to refresh a response fetched at now: half its validity, never sooner than 60 s. */
time_t pt_tls_ocsp_refresh_at(time_t this_update, time_t next_update, time_t now);
/* Next failure backoff after prev_s (0: first failure): 5 s doubling to 1 h. */
uint32_t pt_tls_ocsp_backoff(uint32_t prev_s);
/* Checks a DER OCSP response for leaf: successful, signed by issuer or its delegated
   responder, about leaf, status good or revoked. Returns 0 (good), 1 (revoked) with the
   times filled, or -1 with why. */
int pt_tls_ocsp_check(X509 *leaf, X509 *issuer, const unsigned char *der, size_t len,
                      time_t *this_update, time_t *next_update, char *why, size_t wl);

#endif
