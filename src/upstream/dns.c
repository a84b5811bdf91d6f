/*
 * dns.c - upstream host names resolved with c-ares, and the cache of their answers.
 *
 * Structures: one process-wide cache, an array of entries {name, sorted addresses, when
 * resolved, interval, query in flight}, and one c-ares channel, both guarded by one mutex.
 *
 * Threading: everything runs on the main thread (the one that loads configurations and waits
 * for signals); workers never call in here and never block on a name. Two ways in:
 * - pt_dns_resolve_now(), from pt_dns_expand() (dns_expand.c) at start and at each reload,
 *   sends the queries for names it has no fresh answer for and polls the channel's sockets
 *   until they all answered or the resolver timeout passed. It blocks the main thread only.
 * - pt_dns_tick(), from the main loop every PT_DNS_TICK_MS, sends a query for each name whose
 *   resolve_interval passed and processes whatever answers arrived, with a zero poll timeout:
 *   it never waits. When a name's address set changed it returns true and the main loop
 *   reloads; the reload's pt_dns_resolve_now() finds the fresh answer in the cache (no second
 *   query) and pt_dns_expand() turns the new addresses into targets.
 * The mutex is there so that the rule "main thread only" is not a silent requirement.
 *
 * c-ares is driven through ARES_OPT_SOCK_STATE_CB (we keep the list of its sockets) and
 * poll() + ares_process_fd(), not ares_fds()/select(): the process holds thousands of client
 * sockets, and fd_set cannot name descriptors above FD_SETSIZE.
 *
 * Failures: a query that fails (timeout, SERVFAIL, NXDOMAIN, an empty answer) keeps the last
 * good addresses, so a DNS outage never empties an upstream; it is logged, and asked again
 * after the interval. Query callbacks get a copy of the name, not the entry, since entries may
 * be forgotten (a reload dropped the name) while a query is in flight.
 *
 * Rejected: a resolver thread of its own (one more thread and a hand-off to the main loop for
 * something that needs a few packets every 30 seconds); getaddrinfo() in a thread pool (no
 * per-query timeout, no choice of servers for tests); re-resolving in each worker (N times the
 * queries, and workers that disagree about a target).
 */
#include "upstream/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "upstream/target.h"

#define MAX_SOCKS 16

struct entry {
    char *name;                                 /* owned */
    struct pt_sockaddr addrs[PT_DNS_MAX_ADDRS]; /* sorted, unique, port 0 */
    size_t n_addrs;
    uint64_t resolved_ms; /* last answer (or failure) at, monotonic ms; 0: never */
    uint32_t interval_ms;
    bool is_in_flight;
    char why[96]; /* last error text, "" when the last query succeeded */
};

struct sock {
    int fd;
    bool is_read, is_write;
};

static struct {
    pthread_mutex_t mu;
    bool is_lib_init;
    ares_channel ch;
    bool has_ch;
    char *servers; /* the channel's server list, owned; NULL: system */
    uint32_t timeout_ms;
    struct entry *entries;
    size_t n, cap;
    struct sock socks[MAX_SOCKS];
    size_t n_socks;
    size_t in_flight; /* queries sent, not yet answered */
    bool is_changed;  /* an address set changed since the last tick that reported it */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int addr_cmp(const void *pa, const void *pb)
{
    const struct pt_sockaddr *a = pa, *b = pb;
    int fa = a->u.sa.sa_family, fb = b->u.sa.sa_family;
    if (fa != fb)
        return fa == AF_INET ? -1 : 1;
    int c;
    if (fa == AF_INET) {
        c = memcmp(&a->u.in.sin_addr, &b->u.in.sin_addr, 4);
        if (c == 0)
            c = (int)ntohs(a->u.in.sin_port) - (int)ntohs(b->u.in.sin_port);
    } else {
        c = memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16);
        if (c == 0)
            c = (int)ntohs(a->u.in6.sin6_port) - (int)ntohs(b->u.in6.sin6_port);
    }
    return c;
}

size_t pt_dns_sort_unique(struct pt_sockaddr *addrs, size_t n)
{
    if (n < 2)
        return n;
    qsort(addrs, n, sizeof(*addrs), addr_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (addr_cmp(&addrs[k - 1], &addrs[i]) != 0)
            addrs[k++] = addrs[i];
    return k;
}

bool pt_dns_same_addrs(const struct pt_sockaddr *a, size_t na, const struct pt_sockaddr *b,
                       size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (addr_cmp(&a[i], &b[i]) != 0)
            return false;
    return true;
}

static struct entry *find(const char *name)
{
    for (size_t i = 0; i < g.n; i++)
        if (strcasecmp(g.entries[i].name, name) == 0)
            return &g.entries[i];
    return NULL;
}

static struct entry *find_or_add(const char *name)
{
    struct entry *e = find(name);
    if (e)
        return e;
    if (g.n == g.cap) {
        size_t cap = g.cap ? g.cap * 2 : 8;
        struct entry *ne = realloc(g.entries, cap * sizeof(*ne));
        if (!ne)
            return NULL;
        g.entries = ne;
        g.cap = cap;
    }
    e = &g.entries[g.n];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    if (!e->name)
        return NULL;
    g.n++;
    return e;
}

/* Stores a fresh answer in e; true when its address set changed. */
static bool store(struct entry *e, struct pt_sockaddr *addrs, size_t n, uint64_t now_ms)
{
    n = pt_dns_sort_unique(addrs, n);
    e->resolved_ms = now_ms ? now_ms : 1;
    e->why[0] = '\0';
    if (pt_dns_same_addrs(e->addrs, e->n_addrs, addrs, n))
        return false;
    bool had = e->n_addrs > 0;
    memcpy(e->addrs, addrs, n * sizeof(*addrs));
    e->n_addrs = n;
    if (had) {
        g.is_changed = true;
        pt_log_info("dns: %s now resolves to %zu address(es)", e->name, n);
    }
    return true;
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    char *name = arg;
    if (g.in_flight)
        g.in_flight--;
    struct entry *e = find(name);
    if (e) {
        e->is_in_flight = false;
        struct pt_sockaddr addrs[PT_DNS_MAX_ADDRS];
        size_t n = 0;
        for (struct ares_addrinfo_node *ai = res && status == ARES_SUCCESS ? res->nodes : NULL;
             ai && n < PT_DNS_MAX_ADDRS; ai = ai->ai_next) {
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                (size_t)ai->ai_addrlen > sizeof(addrs[n].u))
                continue;
            memset(&addrs[n], 0, sizeof(addrs[n]));
            memcpy(&addrs[n].u, ai->ai_addr, (size_t)ai->ai_addrlen);
            addrs[n].len = (socklen_t)ai->ai_addrlen;
            if (ai->ai_family == AF_INET)
                addrs[n].u.in.sin_port = 0;
            else
                addrs[n].u.in6.sin6_port = 0;
            n++;
        }
        uint64_t now = pt_upstream_now_ms();
        if (n > 0) {
            store(e, addrs, n, now);
        } else {
            /* Keep the last good answer; ask again after the interval. */
            e->resolved_ms = now ? now : 1;
            snprintf(e->why, sizeof(e->why), "%s",
                     status == ARES_SUCCESS ? "no IPv4 or IPv6 address" : ares_strerror(status));
            if (e->n_addrs && status != ARES_EDESTRUCTION && status != ARES_ECANCELLED)
                pt_log_warn("dns: cannot resolve %s (%s): keeping its %zu address(es)", e->name,
                            e->why, e->n_addrs);
        }
    }
    if (res)
        ares_freeaddrinfo(res);
    free(name);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    (void)data;
    size_t i = 0;
    while (i < g.n_socks && g.socks[i].fd != fd)
        i++;
    if (!readable && !writable) {
        if (i < g.n_socks)
            g.socks[i] = g.socks[--g.n_socks];
        return;
    }
    if (i == g.n_socks) {
        if (g.n_socks == MAX_SOCKS)
            return; /* c-ares opens a few sockets at most; its own timeouts cover the rest */
        g.n_socks++;
    }
    g.socks[i] = (struct sock){.fd = fd, .is_read = readable != 0, .is_write = writable != 0};
}

static void destroy_channel(void)
{
    if (g.has_ch) {
        ares_destroy(g.ch); /* calls back every pending query with ARES_EDESTRUCTION */
        g.has_ch = false;
    }
    g.n_socks = 0;
    g.in_flight = 0;
    free(g.servers);
    g.servers = NULL;
}

/* A channel for servers/timeout_ms, reusing the current one when they did not change. */
static int ensure_channel(const char *servers, uint32_t timeout_ms)
{
    if (!g.is_lib_init) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
            return -ENOMEM;
        g.is_lib_init = true;
    }
    bool same = g.has_ch && g.timeout_ms == timeout_ms &&
                ((!servers && !g.servers) || (servers && g.servers && !strcmp(servers, g.servers)));
    if (same)
        return 0;
    destroy_channel();
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    /* Two tries share the timeout, so one resolution takes at most about timeout_ms. */
    o.timeout = (int)(timeout_ms / 2 ? timeout_ms / 2 : 1);
    o.tries = 2;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = NULL;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    if (ares_init_options(&g.ch, &o, mask) != ARES_SUCCESS)
        return -ENOMEM;
    g.has_ch = true;
    g.timeout_ms = timeout_ms;
    if (servers) {
        g.servers = strdup(servers);
        if (!g.servers || ares_set_servers_ports_csv(g.ch, servers) != ARES_SUCCESS) {
            destroy_channel();
            return -EINVAL;
        }
    }
    return 0;
}

static void send_query(struct entry *e)
{
    char *arg = strdup(e->name);
    if (!arg)
        return;
    struct ares_addrinfo_hints h;
    memset(&h, 0, sizeof(h));
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    h.ai_flags = ARES_AI_NOSORT; /* we sort; RFC 6724 sorting would connect() to each */
    e->is_in_flight = true;
    g.in_flight++;
    /* May call back at once (an /etc/hosts answer, a bad name). */
    ares_getaddrinfo(g.ch, e->name, NULL, &h, on_addrinfo, arg);
}

/* Polls c-ares's sockets for up to wait_ms and processes what is ready, and its timeouts. */
static void pump(int wait_ms)
{
    struct pollfd p[MAX_SOCKS];
    size_t n = g.n_socks;
    for (size_t i = 0; i < n; i++) {
        p[i].fd = g.socks[i].fd;
        p[i].events =
            (short)((g.socks[i].is_read ? POLLIN : 0) | (g.socks[i].is_write ? POLLOUT : 0));
        p[i].revents = 0;
    }
    int rc = n ? poll(p, (nfds_t)n, wait_ms) : 0;
    if (rc > 0) {
        for (size_t i = 0; i < n; i++) {
            if (!p[i].revents)
                continue;
            bool rd = p[i].revents & (POLLIN | POLLERR | POLLHUP);
            bool wr = p[i].revents & (POLLOUT | POLLERR | POLLHUP);
            ares_process_fd(g.ch, rd ? p[i].fd : ARES_SOCKET_BAD, wr ? p[i].fd : ARES_SOCKET_BAD);
        }
    }
    ares_process_fd(g.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts and retries */
}

static bool is_wanted(const char *name, const struct pt_dns_name *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(names[i].name, name) == 0)
            return true;
    return false;
}

int pt_dns_resolve_now(const char *servers, uint32_t timeout_ms, const struct pt_dns_name *names,
                       size_t n)
{
    if (!timeout_ms)
        timeout_ms = PT_DNS_TIMEOUT_MS;
    pthread_mutex_lock(&g.mu);
    int rc = 0;
    /* Forget the names the configuration no longer uses. */
    for (size_t i = 0; i < g.n;) {
        if (is_wanted(g.entries[i].name, names, n)) {
            i++;
            continue;
        }
        free(g.entries[i].name);
        g.entries[i] = g.entries[--g.n];
    }
    if (n == 0)
        goto out;
    rc = ensure_channel(servers, timeout_ms);
    if (rc < 0)
        goto out;
    uint64_t now = pt_upstream_now_ms();
    for (size_t i = 0; i < n; i++) {
        struct entry *e = find_or_add(names[i].name);
        if (!e) {
            rc = -ENOMEM;
            goto out;
        }
        e->interval_ms = names[i].interval_ms ? names[i].interval_ms : 30000;
        bool is_fresh = e->n_addrs && e->resolved_ms && now < e->resolved_ms + e->interval_ms;
        if (!is_fresh && !e->is_in_flight)
            send_query(e);
    }
    uint64_t deadline = now + timeout_ms;
    while (g.in_flight > 0) {
        now = pt_upstream_now_ms();
        if (now >= deadline) {
            ares_cancel(g.ch); /* calls back with ARES_ECANCELLED */
            break;
        }
        uint64_t left = deadline - now;
        pump((int)(left < 50 ? left : 50));
    }
out:
    pthread_mutex_unlock(&g.mu);
    return rc;
}

size_t pt_dns_lookup(const char *name, struct pt_sockaddr *out, size_t max, const char **why)
{
    pthread_mutex_lock(&g.mu);
    struct entry *e = find(name);
    size_t n = 0;
    if (e) {
        n = e->n_addrs < max ? e->n_addrs : max;
        memcpy(out, e->addrs, n * sizeof(*out));
    }
    if (why)
        *why = n ? NULL : e && e->why[0] ? e->why : "no answer";
    /* e->why stays valid until the next call that changes e: the main thread's own. */
    pthread_mutex_unlock(&g.mu);
    return n;
}

bool pt_dns_tick(uint64_t now_ms)
{
    pthread_mutex_lock(&g.mu);
    if (g.has_ch) {
        for (size_t i = 0; i < g.n; i++) {
            struct entry *e = &g.entries[i];
            if (!e->is_in_flight && now_ms >= e->resolved_ms + e->interval_ms)
                send_query(e);
        }
        if (g.in_flight)
            pump(0);
    }
    bool changed = g.is_changed;
    g.is_changed = false;
    pthread_mutex_unlock(&g.mu);
    return changed;
}

bool pt_dns_is_active(void)
{
    pthread_mutex_lock(&g.mu);
    bool active = g.n > 0;
    pthread_mutex_unlock(&g.mu);
    return active;
}

bool pt_dns_cache_set(const char *name, const struct pt_sockaddr *addrs, size_t n,
                      uint32_t interval_ms, uint64_t now_ms)
{
    struct pt_sockaddr tmp[PT_DNS_MAX_ADDRS];
    if (n > PT_DNS_MAX_ADDRS)
        n = PT_DNS_MAX_ADDRS;
    memcpy(tmp, addrs, n * sizeof(*tmp));
    pthread_mutex_lock(&g.mu);
    bool changed = false;
    struct entry *e = find_or_add(name);
    if (e) {
        e->interval_ms = interval_ms;
        changed = store(e, tmp, n, now_ms);
    }
    pthread_mutex_unlock(&g.mu);
    return changed;
}

void pt_dns_shutdown(void)
{
    pthread_mutex_lock(&g.mu);
    destroy_channel();
    for (size_t i = 0; i < g.n; i++)
        free(g.entries[i].name);
    free(g.entries);
    g.entries = NULL;
    g.n = g.cap = 0;
    g.is_changed = false;
    if (g.is_lib_init) {
        ares_library_cleanup();
        g.is_lib_init = false;
    }
    pthread_mutex_unlock(&g.mu);
}
