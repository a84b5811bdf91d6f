/*
 * sock.h - socket helpers: listeners, non-blocking connects, address text.
 */
#ifndef PT_CORE_SOCK_H
#define PT_CORE_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Creates a non-blocking listening socket bound to sa with SO_REUSEADDR (not SO_REUSEPORT: the
 * address is this socket's alone, so another process binding it gets EADDRINUSE),
 * IPV6_V6ONLY for IPv6 addresses, and TCP_NODELAY and TCP_NOTSENT_LOWAT
 * (PT_SOCK_NOTSENT_LOWAT), which accepted sockets inherit. Returns the fd or -errno
 * (-EADDRINUSE when something else listens there).
 */
#define PT_SOCK_NOTSENT_LOWAT (128 * 1024) /* bytes a client socket holds beyond its window */
int pt_sock_listen(const struct sockaddr *sa, socklen_t len, int backlog);

/* Starts a non-blocking TCP connect with TCP_NODELAY. Returns the fd (connected or in progress:
   *in_progress tells which) or -errno. */
int pt_sock_connect(const struct sockaddr *sa, socklen_t len, int *in_progress);

/* Writes "1.2.3.4" / "::1" (no port) into out; returns its length (0 on failure). */
size_t pt_sock_ntop(const struct sockaddr *sa, char *out, size_t outlen);
/* Writes "1.2.3.4:80" / "[::1]:80"; returns its length. */
size_t pt_sock_ntop_port(const struct sockaddr *sa, char *out, size_t outlen);

#endif
