/*
 * sock.c - socket helpers (see sock.h).
 */
#include "core/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int pt_sock_listen(const struct sockaddr *sa, socklen_t len, int backlog)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* SO_REUSEADDR only lets a restart bind while old connections sit in TIME_WAIT; without
       SO_REUSEPORT no other socket (another process, a second Portico) can bind the address
       while this one listens: that is EADDRINUSE for it. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if (sa->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    /* Accepted sockets inherit TCP_NODELAY: responses go out as written, never held back by
       Nagle waiting for the client's delayed ACK. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto fail;
    /* Accepted sockets inherit TCP_NOTSENT_LOWAT: a socket takes no more than this many bytes
       beyond what the peer's window lets go out. Without it the kernel's send-buffer
       autotuning let a client reading through a tiny window (a slow-read attack) have a
       megabyte or two of each response copied into its socket, each sendfile of them taking
       milliseconds while every other connection of the worker waited. Bytes in flight are
       not counted, so a fast client's throughput is untouched. Best effort (old kernels). */
    int lowat = PT_SOCK_NOTSENT_LOWAT;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
    if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int pt_sock_connect(const struct sockaddr *sa, socklen_t len, int *in_progress)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *in_progress = 0;
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            return -e;
        }
        *in_progress = 1;
    }
    return fd;
}

size_t pt_sock_ntop(const struct sockaddr *sa, char *out, size_t outlen)
{
    const void *a;
    if (sa->sa_family == AF_INET) {
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            if (!inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)outlen))
                return 0;
            return strlen(out);
        }
        a = &s6->sin6_addr;
    } else {
        return 0;
    }
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)outlen))
        return 0;
    return strlen(out);
}

size_t pt_sock_ntop_port(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    if (!pt_sock_ntop(sa, host, sizeof(host)))
        return 0;
    unsigned port = sa->sa_family == AF_INET
                        ? ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port)
                        : ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    int n = snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}
