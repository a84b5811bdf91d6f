/*
 * tls_transport.h - TLS behind the transport interface (core/transport.h), in both roles: the
 * server side of a client connection and the client side of an upstream connection.
 *
 * Protocol code works on the struct pt_transport alone; what only TLS has (ALPN, SNI, the peer
 * certificate, version and cipher for logs) is reached with pt_transport_tls(), which gives the
 * struct pt_tls_conn for the accessors of tls.h, or NULL on a plain transport.
 */
#ifndef PT_TLS_TRANSPORT_H
#define PT_TLS_TRANSPORT_H

#include "core/transport.h"
#include "tls/tls.h"

/* Makes t the server side of a TLS connection over fd (borrowed), with ctx (the connection
   takes its own reference). The client speaks first, so can_read and can_write are both set:
   the handshake may be tried at once. Returns 0, or -ENOMEM (t is then left unset: nothing to
   free). */
int pt_tls_transport_server_init(struct pt_transport *t, struct pt_tls_ctx *ctx, int fd);

/* Makes t the client side of a TLS connection over fd (borrowed, connected) to host, with cc
   (own reference taken); host and session_key as for pt_tls_client_new. can_write is set and
   can_read clear: the first handshake step writes the ClientHello. Returns 0, or -ENOMEM (out
   of memory or empty host; t is then left unset). */
int pt_tls_transport_client_init(struct pt_transport *t, struct pt_tls_client_ctx *cc, int fd,
                                 const char *host, const char *session_key);

/* The TLS connection under t (borrowed; valid until pt_transport_free), or NULL when t is
   plain. */
struct pt_tls_conn *pt_transport_tls(const struct pt_transport *t);

#endif
