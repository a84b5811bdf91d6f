/*
 * tls.h - TLS for Portico (OpenSSL 3): server contexts chosen by SNI, client contexts for https
 * upstreams, and non-blocking connections over a socket the caller owns.
 *
 * Three objects:
 *   struct pt_tls_ctx         server side, built from struct pt_tls_settings; immutable once
 *                             built (only its ticket keys rotate), reference-counted, shared by
 *                             every worker thread.
 *   struct pt_tls_client_ctx  client side (one per upstream), built from pt_tls_client_settings;
 *                             holds the last TLS session per target so new connections resume.
 *   struct pt_tls_conn        one TLS connection over a non-blocking fd; used by one thread.
 *
 * I/O contract: the fd stays the caller's (never closed here) and is non-blocking, registered
 * edge-triggered. Every call that cannot progress returns PT_TLS_WANT_READ / PT_TLS_WANT_WRITE
 * (handshake, shutdown) or -EAGAIN (read, writev) and records which readiness it waits for in
 * pt_tls_conn_want(): a read may need the socket writable and a write may need it readable
 * (TLS 1.3 key updates, post-handshake messages). Errors are PT_ERR with a one-line reason in
 * pt_tls_conn_error(). No function here blocks, logs, or touches the event loop. OpenSSL
 * writes with write(2), so the process must ignore SIGPIPE (server/main.c does).
 */
#ifndef PT_TLS_TLS_H
#define PT_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/common.h"

enum {
    PT_TLS_WANT_READ = -1100,  /* call again when the fd is readable */
    PT_TLS_WANT_WRITE = -1101, /* call again when the fd is writable */
};

enum pt_tls_client_auth {
    PT_TLS_CLIENT_AUTH_NONE = 0,
    PT_TLS_CLIENT_AUTH_OPTIONAL, /* asked for; a certificate sent must verify */
    PT_TLS_CLIENT_AUTH_REQUIRED, /* handshake fails without a verified certificate */
};

struct pt_tls_cert_settings {
    const char *cert_file; /* PEM: leaf first, then its chain */
    const char *key_file;  /* PEM private key of the leaf */
};

/* Server settings. Strings are borrowed for the duration of pt_tls_ctx_new only. Fill with
   pt_tls_settings_init() first, then override. */
struct pt_tls_settings {
    const struct pt_tls_cert_settings *certs; /* at least one; certs[0] is the default */
    size_t n_certs;
    const char *min_version;             /* "1.2" (default) or "1.3" */
    const char *ciphers;                 /* TLS 1.2 list, OpenSSL syntax; NULL: ECDHE + AEAD only */
    const char *ciphersuites;            /* TLS 1.3 list; NULL: OpenSSL's (all AEAD) */
    const char *const *alpn;             /* server preference order; NULL: {"http/1.1"} */
    size_t n_alpn;                       /* entries in alpn (1..255 bytes each) */
    bool session_tickets;                /* default true */
    uint64_t ticket_rotation_ms;         /* key lifetime as "current"; default 1 h, min 1 s */
    uint32_t session_cache_size;         /* server-side cache entries; 0 disables; default 20480 */
    const char *client_ca_file;          /* PEM CAs for client certificates; NULL: none */
    enum pt_tls_client_auth client_auth; /* needs client_ca_file unless NONE */
    bool strict_sni; /* refuse (unrecognized_name) a SNI name no certificate covers */
};

/* Client (upstream) settings; strings borrowed for pt_tls_client_ctx_new only. */
struct pt_tls_client_settings {
    const char *ca_file;     /* PEM trust anchors; NULL: the system store */
    bool verify;             /* verify chain and host name (default true) */
    const char *cert_file;   /* client certificate for mTLS, or NULL */
    const char *key_file;    /* its key (required with cert_file) */
    const char *min_version; /* "1.2" (default) or "1.3" */
    const char *const *alpn; /* offered protocols; NULL: {"http/1.1"} */
    size_t n_alpn;
};

/* A build error. msg is "FILE: reason" when a file is at fault, else "reason"; key names the
   settings field at fault ("certificates", "min_version", "ciphers", "ciphersuites", "alpn",
   "client_ca_file", "client_auth", "ca_file", "cert_file", "key_file") and index is the
   position in certs[] for certificate errors, -1 otherwise: enough for the configuration layer
   to prefix FILE:LINE:COL of the YAML node. */
struct pt_tls_err {
    const char *key;
    int index;
    char msg[384];
};

struct pt_tls_ctx;
struct pt_tls_client_ctx;
struct pt_tls_conn;

/* Fills defaults (no certificates). */
void pt_tls_settings_init(struct pt_tls_settings *s);
void pt_tls_client_settings_init(struct pt_tls_client_settings *s);

/* Builds a server context: loads and checks every certificate and key, groups them by name
   set (an RSA and an ECDSA certificate for the same names share one group) and builds the SNI
   table. Returns the context with one reference, or NULL with *err filled. May block (reads
   files): call it from the main thread, never from a worker loop. */
struct pt_tls_ctx *pt_tls_ctx_new(const struct pt_tls_settings *s, struct pt_tls_err *err);
/* Reference counting (thread-safe). The last unref frees; connections hold their own ref. */
void pt_tls_ctx_ref(struct pt_tls_ctx *ctx);
void pt_tls_ctx_unref(struct pt_tls_ctx *ctx);
/* Makes a fresh ticket key current; the previous current key stays accepted for decryption
   (tickets it sealed resume and are re-issued under the new key), the one before is dropped.
   Thread-safe; cheap; call it from the main thread every ticket_rotation_ms. */
void pt_tls_rotate_ticket_keys(struct pt_tls_ctx *ctx);
/* The rotation period from the settings (for the caller's timer). */
uint64_t pt_tls_ctx_ticket_rotation_ms(const struct pt_tls_ctx *ctx);
/* The certificate group the server would choose for SNI name host (NULL: no SNI): returns the
   index in certs[] of that group's first certificate, or -1 when strict_sni refuses it. */
int pt_tls_ctx_select(const struct pt_tls_ctx *ctx, const char *host);

/* Copies from's ticket keys (current and previous) into to, so tickets issued before a reload
   still resume on the context that replaces it. Call before publishing to. Thread-safe. */
void pt_tls_ctx_inherit_ticket_keys(struct pt_tls_ctx *to, struct pt_tls_ctx *from);

/* Builds a client context with one reference. Returns it or NULL with *err filled. May block
   (reads files and the system store): main thread only. */
struct pt_tls_client_ctx *pt_tls_client_ctx_new(const struct pt_tls_client_settings *s,
                                                struct pt_tls_err *err);
/* Reference counting (thread-safe); connections hold their own reference, so a pooled
   connection may outlive the snapshot that built its context. */
void pt_tls_client_ctx_ref(struct pt_tls_client_ctx *cc);
void pt_tls_client_ctx_unref(struct pt_tls_client_ctx *cc);

/* A server connection over fd (borrowed; the caller closes it after pt_tls_free). Takes a
   reference on ctx. Returns NULL when out of memory. */
struct pt_tls_conn *pt_tls_server_new(struct pt_tls_ctx *ctx, int fd);
/* A client connection over fd (borrowed) to host: sent as SNI unless it is an IP literal, and
   checked against the certificate (DNS name or IP) when the context verifies. session_key
   names the target for session reuse ("host:port"; NULL: host): the last session stored under
   it is offered, and new ones are stored back. Takes a reference on cc. NULL when out of
   memory or host is empty. */
struct pt_tls_conn *pt_tls_client_new(struct pt_tls_client_ctx *cc, int fd, const char *host,
                                      const char *session_key);
/* Frees c (no I/O; call pt_tls_shutdown first for a polite close). Never closes the fd. */
void pt_tls_free(struct pt_tls_conn *c);

/* Drives the handshake. Returns PT_OK when done, PT_TLS_WANT_READ / PT_TLS_WANT_WRITE, or
   PT_ERR (reason in pt_tls_conn_error; the connection is dead: free it and close the fd). */
int pt_tls_handshake(struct pt_tls_conn *c);

/* Reads up to len decrypted bytes (runs the handshake first if not done). Returns bytes > 0,
   0 at end of stream (close_notify, or a TCP close: see pt_tls_conn_is_clean_close), -EAGAIN
   (pt_tls_conn_want says which readiness), or PT_ERR. Bytes may already be buffered inside
   the TLS layer: after a read that filled buf, call again before waiting for readiness. */
ssize_t pt_tls_read(struct pt_tls_conn *c, void *buf, size_t len);
/* True when decrypted bytes are buffered and a read will return them without I/O. */
bool pt_tls_pending(const struct pt_tls_conn *c);

/* Writes from iov[0..n): small pieces are coalesced into one record of up to 16 KiB, a large
   first piece is sealed in place. Returns the number of leading bytes taken (> 0; may be less
   than the total, like writev), -EAGAIN (pt_tls_conn_want says which readiness), or PT_ERR.
   After -EAGAIN the next call must present the same leading bytes again (at any address, with
   more after them if wanted): they are already sealed in a record waiting for the socket. */
ssize_t pt_tls_writev(struct pt_tls_conn *c, const struct iovec *iov, int n);

/* Sends close_notify, best effort, once; never waits for the peer's. Returns PT_OK (sent, or
   nothing to do after an error), PT_TLS_WANT_WRITE / PT_TLS_WANT_READ (call again when ready,
   or give up and close), or PT_ERR. */
int pt_tls_shutdown(struct pt_tls_conn *c);

/* PT_TLS_WANT_READ or PT_TLS_WANT_WRITE: what the last -EAGAIN / WANT result waits for. */
int pt_tls_conn_want(const struct pt_tls_conn *c);
/* One-line reason of the failure that made a call return PT_ERR ("" while none). Static
   storage. */
const char *pt_tls_conn_error(const struct pt_tls_conn *c);
/* After a read returned 0: true when the peer sent close_notify (false: the TCP connection
   ended without it, which truncates a close-delimited body). */
bool pt_tls_conn_is_clean_close(const struct pt_tls_conn *c);
bool pt_tls_conn_is_handshake_done(const struct pt_tls_conn *c);

/* Accessors, valid after the handshake. Returned strings are borrowed from c. */
/* Negotiated ALPN protocol (not NUL-terminated) or NULL with *len 0. */
const char *pt_tls_alpn(const struct pt_tls_conn *c, size_t *len);
/* SNI name the client sent (server side) or the host (client side); NULL when none. */
const char *pt_tls_sni(const struct pt_tls_conn *c);
/* "TLSv1.2" or "TLSv1.3". */
const char *pt_tls_version(const struct pt_tls_conn *c);
/* The cipher suite name (OpenSSL's), e.g. "TLS_AES_128_GCM_SHA256". */
const char *pt_tls_cipher(const struct pt_tls_conn *c);
bool pt_tls_is_resumed(const struct pt_tls_conn *c);
/* Whether the peer presented a certificate that verified (the server's, on the client side:
   always true when the context verifies and the handshake succeeded). */
bool pt_tls_peer_verified(const struct pt_tls_conn *c);
/* The verified peer certificate's subject as an RFC 2253 string into buf (NUL-terminated,
   truncated to len). Returns the length written, or -1 when no verified certificate. */
int pt_tls_peer_subject(const struct pt_tls_conn *c, char *buf, size_t len);
/* SHA-256 of the verified peer certificate (DER) as 64 lowercase hex digits plus NUL into
   hex[65]. Returns 0, or -1 when no verified certificate. */
int pt_tls_peer_fingerprint(const struct pt_tls_conn *c, char hex[65]);

/* True for a TLS-ALPN-01 validation connection (RFC 8737 §3): the client offered only ALPN
   "acme-tls/1" for a name with a pending ACME challenge and got the challenge certificate.
   Such a connection carries no application data: after the handshake the server layer must
   close it (RFC 8737 §3: "the ACME server ... closes the connection"; we need not wait). */
bool pt_tls_is_acme_alpn(const struct pt_tls_conn *c);

#endif
