/*
 * test_upstream_attempt.c - a request's attempts on an upstream (upstream/attempt.c), without
 * the proxy: the retry decisions, picking with the tried mask and max_connections, the split
 * choice, the balancer key, and a real connection that goes to the pool and comes back.
 *
 * Upstreams come from real configurations (pt_config_load_buf), so the keys that drive the
 * decisions are the ones users write. The callbacks only count what they hear.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/common.h"
#include "core/loop.h"
#include "http/h1_parse.h"
#include "upstream/attempt.h"
#include "upstream/target.h"
#include "upstream/uconn.h"

struct fix {
    struct pt_config *cfg;
    struct pt_upstreams_rt *rt;
    struct pt_loop loop;
    struct pt_upool pool;
    struct pt_lb_worker lb[4];
    int64_t scores[4][PT_MAX_TARGETS];
    struct pt_attempt a;
    char key[256];
    int n_affinity;  /* set_affinity calls */
    int n_dequeued;  /* dequeued calls */
    int dequeued_rc; /* the last one's rc */
};

static void on_ready(void *owner)
{
    (void)owner;
}

static void on_timeout(void *owner)
{
    (void)owner;
}

static void on_dequeued(void *owner, int rc)
{
    struct fix *f = owner;
    f->n_dequeued++;
    f->dequeued_rc = rc;
}

static void on_affinity(void *owner, const char *token, size_t len)
{
    struct fix *f = owner;
    assert_int_equal(len, PT_LB_COOKIE_TOKEN_LEN);
    assert_non_null(token);
    f->n_affinity++;
}

static const struct pt_attempt_ops ops = {on_ready, on_timeout, on_dequeued, on_affinity, NULL};

/* Loads yaml (a whole configuration) and starts an attempt of method on the upstream named
   "u" (or the first one). */
static void setup_fix(struct fix *f, const char *yaml, int method)
{
    char err[2048];
    memset(f, 0, sizeof(*f));
    if (pt_config_load_buf("t.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    f->rt = pt_upstreams_rt_create(f->cfg, NULL, 1000000);
    assert_non_null(f->rt);
    assert_int_equal(pt_loop_init(&f->loop), 0);
    pt_loop_update_time(&f->loop);
    pt_upool_init(&f->pool, &f->loop);
    for (size_t i = 0; i < 4; i++) {
        f->lb[i].scores = f->scores[i];
        f->lb[i].rng = 0x1234567887654321ull + i;
    }
    const struct pt_upstream_cfg *ups = f->cfg->upstreams[0];
    struct pt_attempt_ctx ctx = {&f->loop, &f->pool, f->lb, NULL, 0, "test"};
    pt_attempt_init(&f->a, &ctx, ups, &f->rt->ups[ups->index], method, 30000, &ops, f);
}

static void teardown_fix(struct fix *f)
{
    pt_attempt_abort(&f->a);
    pt_upool_destroy(&f->pool);
    pt_loop_run_once(&f->loop, 0); /* frees closed connections */
    pt_loop_destroy(&f->loop);
    pt_upstreams_rt_free(f->rt);
    pt_config_free(f->cfg);
}

#define ROUTE "routes:\n  - match: /\n    proxy: {to: u}\n"
#define LISTEN "listen: [{addr: \"127.0.0.1:8080\"}]\n"
#define THREE                                                                                      \
    "    targets:\n      - {url: \"http://127.0.0.1:9001\"}\n"                                     \
    "      - {url: \"http://127.0.0.1:9002\"}\n      - {url: \"http://127.0.0.1:9003\"}\n"

static void test_connect_failure_retried_without_budget(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, LISTEN "upstreams:\n  u:\n" THREE "    retries: 2\n    retry_budget: 0%\n" ROUTE,
              PT_METHOD_POST);
    /* A refused connect sent nothing: retried even for POST and with no budget at all. */
    assert_true(pt_attempt_may_retry(&f.a, PT_FAIL_CONNECT));
    /* A connect timeout may have reached the target: the budget applies. */
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_CONNECT_TIMEOUT));
    f.a.retries = 2;
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_CONNECT)); /* retries used up */
    teardown_fix(&f);
}

static void test_reset_retried_only_when_replayable(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, LISTEN "upstreams:\n  u:\n" THREE "    retries: 5\n" ROUTE, PT_METHOD_GET);
    assert_true(pt_attempt_may_retry(&f.a, PT_FAIL_RESET));
    f.a.is_body_sent = true; /* a body byte went upstream: never replayed */
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_CONNECT));
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_RESET));
    teardown_fix(&f);

    setup_fix(&f, LISTEN "upstreams:\n  u:\n" THREE "    retries: 5\n" ROUTE, PT_METHOD_POST);
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_RESET)); /* not idempotent */
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_BAD_RESPONSE));
    teardown_fix(&f);
}

static void test_timeout_retried_with_retry_on_or_per_try(void **state)
{
    (void)state;
    struct fix f;
    /* Default retry_on: a route timeout is not retried, a per-try timeout is. */
    setup_fix(&f, LISTEN "upstreams:\n  u:\n" THREE "    per_try_timeout: 1s\n" ROUTE,
              PT_METHOD_GET);
    assert_int_equal(pt_attempt_head_timeout(&f.a), 1000);
    assert_true(f.a.is_per_try_timer);
    assert_true(pt_attempt_may_retry(&f.a, PT_FAIL_TIMEOUT));
    f.a.timeout_ms = 500; /* the route's timeout is shorter: it is the one armed */
    assert_int_equal(pt_attempt_head_timeout(&f.a), 500);
    assert_false(f.a.is_per_try_timer);
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_TIMEOUT));
    teardown_fix(&f);

    setup_fix(&f, LISTEN "upstreams:\n  u:\n" THREE "    retry_on: [timeout]\n" ROUTE,
              PT_METHOD_GET);
    pt_attempt_head_timeout(&f.a);
    assert_true(pt_attempt_may_retry(&f.a, PT_FAIL_TIMEOUT));
    assert_false(pt_attempt_may_retry(&f.a, PT_FAIL_RESET)); /* not listed any more */
    teardown_fix(&f);
}

static void test_status_retry(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f,
              LISTEN "upstreams:\n  u:\n" THREE "    retries: 5\n    retry_on: [502, 503]\n" ROUTE,
              PT_METHOD_GET);
    assert_true(pt_attempt_may_retry_status(&f.a, 502, false));
    assert_false(pt_attempt_may_retry_status(&f.a, 500, false)); /* not listed */
    assert_false(pt_attempt_may_retry_status(&f.a, 503, true));  /* a body: not replayed */
    f.a.tried_mask = 7;                                          /* every target tried */
    assert_false(pt_attempt_may_retry_status(&f.a, 502, false));
    teardown_fix(&f);

    setup_fix(&f, LISTEN "upstreams:\n  u:\n" THREE "    retry_on: [502]\n" ROUTE, PT_METHOD_POST);
    assert_false(pt_attempt_may_retry_status(&f.a, 502, false)); /* not idempotent */
    teardown_fix(&f);
}

static void test_pick_skips_tried_targets(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, LISTEN "upstreams:\n  u:\n" THREE ROUTE, PT_METHOD_GET);
    uint32_t seen = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pt_attempt_pick(&f.a), PT_OK);
        assert_true(f.a.is_open);
        assert_int_equal(atomic_load(&f.a.us->targets[f.a.target_idx]->in_flight), 1);
        seen |= 1u << f.a.target_idx;
        pt_attempt_end(&f.a, PT_OUTCOME_OK);
        assert_false(f.a.is_open);
        assert_int_equal(atomic_load(&f.a.us->targets[f.a.target_idx]->in_flight), 0);
    }
    assert_int_equal(seen, 7);
    assert_int_equal(f.a.tried_mask, 7);
    assert_int_equal(pt_attempt_pick(&f.a), 503); /* every target tried */
    teardown_fix(&f);
}

static void test_full_targets_queue(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f,
              LISTEN "upstreams:\n  u:\n    targets:\n"
                     "      - {url: \"http://127.0.0.1:9001\", max_connections: 1}\n"
                     "    max_pending: 1\n" ROUTE,
              PT_METHOD_GET);
    assert_int_equal(atomic_load(&f.a.us->targets[0]->in_flight), 0);
    atomic_store(&f.a.us->targets[0]->in_flight, 1); /* another request holds the slot */
    assert_int_equal(pt_attempt_pick(&f.a), PT_ATTEMPT_FULL);
    assert_int_equal(pt_attempt_enqueue(&f.a, f.loop.now_ms + 1000), PT_OK);
    assert_true(f.a.is_queued);
    assert_int_equal(atomic_load(&f.a.us->pending), 1);
    /* max_pending 1: a second request finds the queue full. */
    struct pt_attempt b;
    memset(&b, 0, sizeof(b));
    struct pt_attempt_ctx ctx = {&f.loop, &f.pool, f.lb, NULL, 0, "test2"};
    pt_attempt_init(&b, &ctx, f.a.ups, f.a.us, PT_METHOD_GET, 30000, &ops, &f);
    assert_int_equal(pt_attempt_enqueue(&b, f.loop.now_ms + 1000), 503);
    assert_int_equal(atomic_load(&f.a.us->pending), 1);
    /* The deadline passes with the target still full: the wait ends with 503. */
    f.a.queue_deadline_ms = f.loop.now_ms;
    for (int i = 0; i < 100 && !f.n_dequeued; i++)
        pt_loop_run_once(&f.loop, 20);
    assert_int_equal(f.n_dequeued, 1);
    assert_int_equal(f.dequeued_rc, 503);
    assert_false(f.a.is_queued);
    assert_int_equal(atomic_load(&f.a.us->pending), 0);
    atomic_store(&f.a.us->targets[0]->in_flight, 0);
    teardown_fix(&f);
}

static void test_cookie_affinity_reported(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, LISTEN "upstreams:\n  u:\n    balance: cookie\n" THREE ROUTE, PT_METHOD_GET);
    /* No cookie: the pick names a target the client must be told about. */
    assert_int_equal(pt_attempt_pick(&f.a), PT_OK);
    assert_int_equal(f.n_affinity, 1);
    pt_attempt_end(&f.a, PT_OUTCOME_OK);
    /* The client's cookie names that target: nothing to tell. */
    const char *tok = pt_lb_cookie_token(f.a.us, (size_t)f.a.target_idx);
    f.a.key = (struct pt_lb_key){tok, strlen(tok)};
    f.a.tried_mask = 0;
    assert_int_equal(pt_attempt_pick(&f.a), PT_OK);
    assert_string_equal(pt_lb_cookie_token(f.a.us, (size_t)f.a.target_idx), tok);
    assert_int_equal(f.n_affinity, 1);
    teardown_fix(&f);
}

static struct pt_field hdr(const char *name, const char *value)
{
    return (struct pt_field){{name, strlen(name)}, {value, strlen(value)}};
}

static void test_split_choose(void **state)
{
    (void)state;
    static const char yaml[] =
        LISTEN "upstreams:\n  a:\n    targets: [{url: \"http://127.0.0.1:9001\"}]\n"
               "  b:\n    targets: [{url: \"http://127.0.0.1:9002\"}]\n"
               "routes:\n  - match: /\n    proxy:\n      split:\n"
               "        - {to: a, weight: 90}\n"
               "        - {to: b, weight: 10, force_header: \"X-Canary: always\", "
               "force_cookie: \"canary=1\"}\n";
    char err[2048];
    struct pt_config *cfg;
    if (pt_config_load_buf("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    const struct pt_proxy_cfg *pc = &cfg->sites[0].routes[0].proxy;
    assert_int_equal(pc->n_split, 2);
    struct pt_field hs[2];
    struct pt_req_head h;
    memset(&h, 0, sizeof(h));
    h.fields = hs;
    const struct pt_split_cfg *drawn;

    /* Weighted draw: 0..89 is a, 90..99 is b; the caller sets the cookie. */
    assert_string_equal(pt_split_choose(pc, &h, 89, &drawn)->name, "a");
    assert_ptr_equal(drawn, &pc->split[0]);
    assert_string_equal(pt_split_choose(pc, &h, 190, &drawn)->name, "b");
    assert_ptr_equal(drawn, &pc->split[1]);

    /* The split cookie keeps a user on one side, whatever the draw. */
    hs[0] = hdr("Cookie", "x=1; " PT_SPLIT_COOKIE "=b");
    h.n_fields = 1;
    assert_string_equal(pt_split_choose(pc, &h, 0, &drawn)->name, "b");
    assert_null(drawn);

    /* Testers' overrides win over the cookie. */
    hs[0] = hdr("Cookie", PT_SPLIT_COOKIE "=a; canary=1");
    assert_string_equal(pt_split_choose(pc, &h, 0, &drawn)->name, "b");
    hs[0] = hdr("Cookie", PT_SPLIT_COOKIE "=a");
    hs[1] = hdr("x-canary", "always");
    h.n_fields = 2;
    assert_string_equal(pt_split_choose(pc, &h, 0, &drawn)->name, "b");
    hs[1] = hdr("x-canary", "Always"); /* values compare exactly */
    assert_string_equal(pt_split_choose(pc, &h, 99, &drawn)->name, "a");
    assert_null(drawn);
    pt_config_free(cfg);
}

static void test_capture_key(void **state)
{
    (void)state;
    struct fix f;
    struct pt_field hs[2] = {hdr("X-User", "alice"), hdr("Cookie", "sid=42; lang=en")};
    struct pt_req_head h;
    memset(&h, 0, sizeof(h));
    h.fields = hs;
    h.n_fields = 2;
    struct pt_str query = {"a=1&k=v2&b=3", 12};
    struct pt_str none = {NULL, 0};
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"header:X-User", "alice"}, {"cookie:lang", "en"}, {"query:k", "v2"},
        {"path", "/p/q"},           {"query:zz", ""},      {"ip", "192.0.2.7"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml),
                 LISTEN "upstreams:\n  u:\n    balance: hash\n    hash_key: \"%s\"\n" THREE ROUTE,
                 cases[i].key);
        setup_fix(&f, yaml, PT_METHOD_GET);
        assert_int_equal(pt_attempt_key_is_client(&f.a), strcmp(cases[i].key, "ip") == 0);
        pt_attempt_capture_key(&f.a, &h, "/p/q", 4, query, (struct pt_str){"192.0.2.7", 9}, f.key,
                               sizeof(f.key));
        assert_int_equal(f.a.key.len, strlen(cases[i].want));
        assert_memory_equal(f.a.key.data, cases[i].want, f.a.key.len);
        teardown_fix(&f);
    }
    /* balance: cookie reads the affinity cookie; truncated to the buffer. */
    hs[1] = hdr("Cookie", PT_AFFINITY_COOKIE "=0123456789");
    setup_fix(&f, LISTEN "upstreams:\n  u:\n    balance: cookie\n" THREE ROUTE, PT_METHOD_GET);
    pt_attempt_capture_key(&f.a, &h, "/", 1, none, none, f.key, 4);
    assert_int_equal(f.a.key.len, 4);
    assert_memory_equal(f.a.key.data, "0123", 4);
    teardown_fix(&f);
}

/* A real connection: connect, give it back reusable, and the next attempt to the same target
   takes it from the pool instead of connecting. */
static void test_connection_reused_from_pool(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    assert_int_equal(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(ls, 8), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sin, &sl), 0);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             LISTEN "upstreams:\n  u:\n    keepalive: 4\n    targets:\n"
                    "      - {url: \"http://127.0.0.1:%u\"}\n" ROUTE,
             ntohs(sin.sin_port));
    struct fix f;
    setup_fix(&f, yaml, PT_METHOD_GET);
    assert_int_equal(pt_attempt_pick(&f.a), PT_OK);
    assert_int_equal(pt_attempt_connect_first(&f.a), PT_OK);
    struct pt_uconn *u = f.a.u;
    assert_non_null(u);
    assert_ptr_equal(u->owner, &f);
    assert_int_equal(u->n_requests, 1);
    assert_true(pt_timer_is_armed(&u->timer));
    pt_attempt_end(&f.a, PT_OUTCOME_OK);
    pt_attempt_release(&f.a, true);
    assert_null(f.a.u);
    assert_null(u->owner);
    assert_false(u->is_closed);

    /* The next request to the same target. */
    struct pt_attempt b;
    memset(&b, 0, sizeof(b));
    struct pt_attempt_ctx ctx = {&f.loop, &f.pool, f.lb, NULL, 0, "test2"};
    pt_attempt_init(&b, &ctx, f.a.ups, f.a.us, PT_METHOD_GET, 30000, &ops, &f);
    assert_int_equal(pt_attempt_pick(&b), PT_OK);
    assert_int_equal(pt_attempt_connect(&b, false), PT_OK);
    assert_ptr_equal(b.u, u);
    assert_int_equal(u->n_requests, 2);
    /* It failed as a stale pooled connection would: retried once on a fresh one. */
    assert_int_equal(pt_attempt_failed(&b, PT_FAIL_RESET, false), PT_OK);
    assert_true(u->is_closed);
    assert_non_null(b.u);
    assert_true(b.u != u);
    assert_int_equal(b.u->n_requests, 1);
    assert_int_equal(b.attempts, 2);
    assert_int_equal(b.retries, 0);
    /* After the response started, a failure can only close. */
    assert_int_equal(pt_attempt_failed(&b, PT_FAIL_RESET, true), PT_ERR);
    assert_null(b.u);
    assert_false(b.is_open);
    pt_attempt_abort(&b);
    teardown_fix(&f);
    close(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_failure_retried_without_budget),
        cmocka_unit_test(test_reset_retried_only_when_replayable),
        cmocka_unit_test(test_timeout_retried_with_retry_on_or_per_try),
        cmocka_unit_test(test_status_retry),
        cmocka_unit_test(test_pick_skips_tried_targets),
        cmocka_unit_test(test_full_targets_queue),
        cmocka_unit_test(test_cookie_affinity_reported),
        cmocka_unit_test(test_split_choose),
        cmocka_unit_test(test_capture_key),
        cmocka_unit_test(test_connection_reused_from_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
