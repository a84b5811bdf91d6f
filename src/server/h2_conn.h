/*
 * h2_conn.h - HTTP/2 client connections (h2_conn.c, h2_stream.c): what conn.c and worker.c
 * call. A client connection becomes HTTP/2 after its TLS handshake chose ALPN "h2", or when a
 * plain listener with http2: true reads the client connection preface as its first bytes
 * (h2c by prior knowledge, RFC 9113 §3.3). From then on the session owns the connection's
 * reading and writing; conn.c keeps accept, TLS, the socket I/O and the close.
 */
#ifndef PT_SERVER_H2_CONN_H
#define PT_SERVER_H2_CONN_H

#include <stddef.h>

#include "server/worker.h"

/* Whether buf (len bytes, the first a connection read) is the HTTP/2 client preface: 1 when
   it starts with all of it, 0 when it is a proper prefix of it (read more), -1 when not. */
int pt_h2_preface(const char *buf, size_t len);

/* Makes c an HTTP/2 connection (state PT_CS_H2): the session sends its SETTINGS and takes the
   bytes already in c->in as the start of the client's. Closes c when out of memory. */
void pt_h2_conn_start(struct pt_conn *c);

/* Runs c's session: reads and processes frames, answers streams, writes. conn.c's step. */
void pt_h2_conn_step(struct pt_conn *c);

/* c's timer fired in state PT_CS_H2 (idle, or no progress while streams wait). */
void pt_h2_conn_timeout(struct pt_conn *c);

/* Frees c's session and its streams (their requests end unlogged as cancelled, but for
   tunnels, which are logged); from pt_conn_close only. */
void pt_h2_conn_free(struct pt_conn *c);

/* Whether c's HTTP/2 session is idle: no stream open, nothing waiting to go out (limits.
   max_connections closes such a connection to make room for a new one). */
bool pt_h2_conn_is_idle(const struct pt_conn *c);

/* Sends GOAWAY on c (drain, reload): streams already started finish, the client opens new
   ones on a new connection; c closes when the last one ends. Never runs c re-entrantly: the
   work continues in the next loop iteration. */
void pt_h2_conn_goaway(struct pt_conn *c);

/* shutdown_timeout passed (drain): resets c's open streams (RST_STREAM CANCEL) and sends
   GOAWAY, writing what the socket takes now; the caller then closes c. */
void pt_h2_conn_shut(struct pt_conn *c);

/* shutdown_timeout passed since a reload: resets c's tunnels that run on a snapshot other
   than cur (their exchanges are logged as their streams close). */
void pt_h2_end_old_tunnels(struct pt_conn *c, const struct pt_wsnap *cur);

/* Calls pt_h2_conn_goaway on every HTTP/2 connection of w (a new snapshot was taken up). */
void pt_h2_reload(struct pt_worker *w);

#endif
