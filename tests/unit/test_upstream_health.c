/*
 * test_upstream_health.c - the active health checker against a tiny HTTP server in a thread of
 * the test, on 127.0.0.1 with a kernel-chosen port: the server answers 200, then 500, then 200
 * again, and the shared verdict must flip down after `fall` failed checks and back up after
 * `rise` passes, each within a bounded time. Also: the body substring, a reload (update) that
 * keeps the verdict, and a TCP check of a closed port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "upstream/health.h"
#include "upstream/target.h"

struct server {
    int fd;
    uint16_t port;
    atomic_int status; /* what to answer */
    atomic_bool stop;
    atomic_int hits;
    pthread_t th;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[2048];
        size_t got = 0;
        for (int i = 0; i < 50 && got < sizeof(req) - 1; i++) {
            struct pollfd q = {c, POLLIN, 0};
            if (poll(&q, 1, 20) <= 0)
                continue;
            ssize_t r = recv(c, req + got, sizeof(req) - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        atomic_fetch_add(&s->hits, 1);
        int st = atomic_load(&s->status);
        char resp[256];
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d X\r\nContent-Length: 9\r\nConnection: close\r\n\r\n%s", st,
                         st == 200 ? "status:ok" : "status:no");
        if (send(c, resp, (size_t)n, MSG_NOSIGNAL) < 0) {
            /* the checker may have given up already */
        }
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    atomic_store(&s->status, 200);
    assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    close(s->fd);
}

static uint64_t now_ms(void)
{
    return pt_upstream_now_ms();
}

/* Waits (at most limit_ms) for the target's verdict to become want. Returns the time taken. */
static uint64_t wait_verdict(struct pt_target_state *t, bool want, uint64_t limit_ms)
{
    uint64_t start = now_ms();
    while (atomic_load(&t->is_healthy) != want) {
        if (now_ms() - start > limit_ms)
            fail_msg("verdict did not become %s within %llums", want ? "up" : "down",
                     (unsigned long long)limit_ms);
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return now_ms() - start;
}

static struct pt_config *load(const char *yaml)
{
    char err[2048];
    struct pt_config *cfg = NULL;
    if (pt_config_load_buf("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    return cfg;
}

#define HEAD "listen: [{addr: \"127.0.0.1:8080\"}]\nroutes:\n  - {match: /, proxy: {to: u}}\n"

static void test_http_flip(void **state)
{
    (void)state;
    struct server s;
    server_start(&s);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             HEAD "upstreams:\n  u:\n    targets: [{url: \"http://127.0.0.1:%u\"}]\n"
                  "    health: {path: /hz, interval: 100ms, timeout: 100ms, rise: 2, fall: 2, "
                  "expect: \"200-299\", body: \"ok\"}\n",
             (unsigned)s.port);
    struct pt_config *cfg = load(yaml);
    struct pt_upstreams_rt *rt = pt_upstreams_rt_create(cfg, NULL, now_ms());
    assert_non_null(rt);
    struct pt_target_state *t = rt->ups[0].targets[0];
    struct pt_health *h = pt_health_create(rt);
    assert_non_null(h);
    assert_int_equal(pt_health_start(h), 0);
    /* Healthy from the start; checks pass and keep it so. */
    uint64_t start = now_ms();
    while (atomic_load(&s.hits) < 3 && now_ms() - start < 3000) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&s.hits) >= 3);
    assert_true(atomic_load(&t->is_healthy));
    /* 500: down after fall (2) checks, i.e. within about 2 intervals. */
    atomic_store(&s.status, 500);
    uint64_t took = wait_verdict(t, false, 2000);
    assert_true(took >= 100); /* one failure is not enough */
    /* Reload (same target): the verdict is kept, the new checker goes on. */
    snprintf(yaml, sizeof(yaml),
             HEAD "upstreams:\n  u:\n    targets: [{url: \"http://127.0.0.1:%u\", weight: 3}]\n"
                  "    health: {path: /hz, interval: 100ms, timeout: 100ms, rise: 2, fall: 2, "
                  "body: \"ok\"}\n",
             (unsigned)s.port);
    struct pt_config *cfg2 = load(yaml);
    struct pt_upstreams_rt *rt2 = pt_upstreams_rt_create(cfg2, rt, now_ms());
    assert_non_null(rt2);
    assert_int_equal(pt_health_update(h, rt2), 0);
    pt_upstreams_rt_free(rt);
    pt_config_free(cfg);
    assert_ptr_equal(rt2->ups[0].targets[0], t);
    assert_false(atomic_load(&t->is_healthy));
    /* 200 again: up after rise (2) passes. */
    atomic_store(&s.status, 200);
    wait_verdict(t, true, 2000);
    pt_health_destroy(h);
    pt_upstreams_rt_free(rt2);
    pt_config_free(cfg2);
    server_stop(&s);
}

static void test_body_mismatch_and_tcp(void **state)
{
    (void)state;
    struct server s;
    server_start(&s);
    /* A port that refuses: bind one, note it, close it. */
    int tmp = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(tmp, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(tmp, (struct sockaddr *)&a, &al);
    unsigned closed = ntohs(a.sin_port);
    close(tmp);
    char fmt[1024];
    snprintf(fmt, sizeof(fmt),
             HEAD "upstreams:\n  u:\n    targets: [{url: \"http://127.0.0.1:%%u\"}]\n"
                  "    health: {interval: 100ms, timeout: 50ms, fall: 1, body: \"nothere\"}\n"
                  "  v:\n    targets: [{url: \"http://127.0.0.1:%u\"}, {url: "
                  "\"http://127.0.0.1:%u\"}]\n"
                  "    health: {type: tcp, interval: 100ms, timeout: 50ms, fall: 1}\n",
             closed, (unsigned)s.port);
    snprintf(fmt + strlen(fmt), sizeof(fmt) - strlen(fmt), "%s", "");
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "%s", fmt);
    char *pct = strstr(yaml, "%u");
    assert_non_null(pct);
    char port_text[8];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)s.port);
    memmove(pct + strlen(port_text), pct + 2, strlen(pct + 2) + 1);
    memcpy(pct, port_text, strlen(port_text));
    struct pt_config *cfg = load(yaml);
    struct pt_upstreams_rt *rt = pt_upstreams_rt_create(cfg, NULL, now_ms());
    assert_non_null(rt);
    struct pt_health *h = pt_health_create(rt);
    assert_non_null(h);
    assert_int_equal(pt_health_start(h), 0);
    wait_verdict(rt->ups[0].targets[0], false, 2000); /* 200 but the body lacks the text */
    wait_verdict(rt->ups[1].targets[0], false, 2000); /* tcp: refused */
    /* tcp: the listening server stays up over several intervals. */
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    assert_true(atomic_load(&rt->ups[1].targets[1]->is_healthy));
    assert_true(atomic_load(&rt->ups[1].targets[1]->hc_passes) >= 2);
    pt_health_destroy(h);
    pt_upstreams_rt_free(rt);
    pt_config_free(cfg);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_flip),
        cmocka_unit_test(test_body_mismatch_and_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
