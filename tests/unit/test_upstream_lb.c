/*
 * test_upstream_lb.c - the balancers behind pt_lb_pick, the shared target state (availability,
 * slow start, outlier ejection, reload adoption) and the retry budget.
 *
 * Upstreams come from real configurations (pt_config_load_buf) so the tests also prove that
 * the config keys reach the runtime. Statistical checks use fixed seeds: they are
 * deterministic, and the tolerances are the (+-5% over 10,000 picks).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "upstream/balance.h"
#include "upstream/budget.h"
#include "upstream/target.h"

#define NOW 1000000u /* an arbitrary monotonic time, in ms */

struct fix {
    struct pt_config *cfg;
    struct pt_upstreams_rt *rt;
    struct pt_upstream_state *us; /* upstream "u" */
    struct pt_lb_worker lw;
    int64_t scores[PT_MAX_TARGETS];
};

/* Loads an upstream "u" described by body (YAML lines under "  u:\n"). */
static void setup_fix(struct fix *f, const char *body, const struct pt_upstreams_rt *prev)
{
    char yaml[4096], err[2048];
    snprintf(yaml, sizeof(yaml),
             "listen: [{addr: \"127.0.0.1:8080\"}]\nupstreams:\n  u:\n%s"
             "routes:\n  - match: /\n    proxy: {to: u}\n",
             body);
    memset(f, 0, sizeof(*f));
    int rc = pt_config_load_buf("t.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("config: %s", err);
    f->rt = pt_upstreams_rt_create(f->cfg, prev, NOW);
    assert_non_null(f->rt);
    f->us = &f->rt->ups[0];
    f->lw.scores = f->scores;
    f->lw.rng = 0x1234567887654321ull;
}

static void teardown_fix(struct fix *f)
{
    pt_upstreams_rt_free(f->rt);
    pt_config_free(f->cfg);
}

#define T3W(bal)                                                                                   \
    "    balance: " bal "\n    targets:\n      - {url: \"http://127.0.0.1:9001\", weight: 1}\n"    \
    "      - {url: \"http://127.0.0.1:9002\", weight: 2}\n"                                        \
    "      - {url: \"http://127.0.0.1:9003\", weight: 3}\n"

static void expect_weighted(const char *bal)
{
    struct fix f;
    char body[512];
    snprintf(body, sizeof(body), T3W("%s"), bal);
    setup_fix(&f, body, NULL);
    int counts[3] = {0};
    for (int i = 0; i < 10000; i++) {
        int idx = pt_lb_pick(f.us, &f.lw, NULL, 0, NOW);
        assert_true(idx >= 0 && idx < 3);
        counts[idx]++;
    }
    for (int i = 0; i < 3; i++) {
        double share = counts[i] / 10000.0, want = (i + 1) / 6.0;
        if (share < want * 0.95 || share > want * 1.05)
            fail_msg("%s: target %d got %.4f, want %.4f +-5%%", bal, i, share, want);
    }
    teardown_fix(&f);
}

static void test_round_robin_weights(void **state)
{
    (void)state;
    expect_weighted("round_robin");
}

static void test_random_weights(void **state)
{
    (void)state;
    expect_weighted("random");
}

/* random is plain weighted random: load does not enter the draw, so a target holding many
   requests (as each does under concurrency) still gets its weight's share. */
static void test_random_ignores_load(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, T3W("random"), NULL);
    /* In flight per unit of weight 1:1:20; p2c would starve target 2 (0 of 10,000). */
    atomic_store(&f.us->targets[0]->in_flight, 1);
    atomic_store(&f.us->targets[1]->in_flight, 2);
    atomic_store(&f.us->targets[2]->in_flight, 60);
    int counts[3] = {0};
    for (int i = 0; i < 60000; i++)
        counts[pt_lb_pick(f.us, &f.lw, NULL, 0, NOW)]++;
    for (int i = 0; i < 3; i++) {
        double share = counts[i] / 60000.0, want = (i + 1) / 6.0;
        if (share < want * 0.97 || share > want * 1.03)
            fail_msg("random: target %d got %.4f, want %.4f +-3%%", i, share, want);
    }
    teardown_fix(&f);
}

static void test_p2c_weights(void **state)
{
    (void)state;
    expect_weighted("p2c");
}

static void test_p2c_avoids_loaded(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, T3W("p2c"), NULL);
    atomic_store(&f.us->targets[2]->in_flight, 50);
    int counts[3] = {0};
    for (int i = 0; i < 10000; i++)
        counts[pt_lb_pick(f.us, &f.lw, NULL, 0, NOW)]++;
    /* Target 2 wins only when drawn twice, which two distinct draws never do. */
    assert_int_equal(counts[2], 0);
    teardown_fix(&f);
}

/* The config names the policies; a near miss of the new name is suggested. */
static void test_balance_names(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, T3W("p2c"), NULL);
    assert_int_equal(f.cfg->upstreams[0]->balance, PT_BALANCE_P2C);
    teardown_fix(&f);
    setup_fix(&f, T3W("random"), NULL);
    assert_int_equal(f.cfg->upstreams[0]->balance, PT_BALANCE_RANDOM);
    teardown_fix(&f);

    static const char yaml[] = "listen: [{addr: \"127.0.0.1:8080\"}]\nupstreams:\n  u:\n"
                               "    balance: pc2\n"
                               "    targets: [{url: \"http://127.0.0.1:9001\"}]\n"
                               "routes:\n  - match: /\n    proxy: {to: u}\n";
    char err[2048] = "";
    struct pt_config *cfg = NULL;
    assert_int_not_equal(pt_config_load_buf("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)),
                         0);
    if (!strstr(err, "unknown balance \"pc2\"; did you mean \"p2c\"?"))
        fail_msg("error was: %s", err);
}

static void test_least_conn(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f,
              "    balance: least_conn\n    targets:\n      - {url: \"http://127.0.0.1:9001\"}\n"
              "      - {url: \"http://127.0.0.1:9002\"}\n"
              "      - {url: \"http://127.0.0.1:9003\", weight: 2}\n",
              NULL);
    /* in flight 1, 3, 4 with weights 1, 1, 2: per weight 1, 3, 2 -> target 0. */
    atomic_store(&f.us->targets[0]->in_flight, 1);
    atomic_store(&f.us->targets[1]->in_flight, 3);
    atomic_store(&f.us->targets[2]->in_flight, 4);
    for (int i = 0; i < 100; i++)
        assert_int_equal(pt_lb_pick(f.us, &f.lw, NULL, 0, NOW), 0);
    /* 2, 3, 4: tie between 0 and 2 (2/1 = 4/2): both must be chosen, at random. */
    atomic_store(&f.us->targets[0]->in_flight, 2);
    int counts[3] = {0};
    for (int i = 0; i < 10000; i++)
        counts[pt_lb_pick(f.us, &f.lw, NULL, 0, NOW)]++;
    assert_int_equal(counts[1], 0);
    assert_in_range(counts[0], 4500, 5500);
    assert_in_range(counts[2], 4500, 5500);
    /* Counts driven by the start/end calls. */
    atomic_store(&f.us->targets[0]->in_flight, 0);
    atomic_store(&f.us->targets[1]->in_flight, 0);
    atomic_store(&f.us->targets[2]->in_flight, 0);
    int got[3] = {0};
    for (int i = 0; i < 40; i++) {
        int idx = pt_lb_pick(f.us, &f.lw, NULL, 0, NOW);
        assert_true(pt_upstream_on_request_start(f.us, (size_t)idx));
        got[idx]++;
    }
    /* Kept level per weight: 10, 10, 20. */
    assert_int_equal(got[0], 10);
    assert_int_equal(got[1], 10);
    assert_int_equal(got[2], 20);
    teardown_fix(&f);
}

static void test_ewma_avoids_slow(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(
        &f,
        "    balance: ewma\n    targets:\n      - {url: \"http://127.0.0.1:9001\"}\n"
        "      - {url: \"http://127.0.0.1:9002\"}\n      - {url: \"http://127.0.0.1:9003\"}\n",
        NULL);
    int counts[3] = {0};
    uint64_t now = NOW;
    for (int i = 0; i < 3000; i++, now++) {
        int idx = pt_lb_pick(f.us, &f.lw, NULL, 0, now);
        counts[idx]++;
        assert_true(pt_upstream_on_request_start(f.us, (size_t)idx));
        uint64_t lat_us = idx == 1 ? 200000 : 1000; /* target 1 is 200 ms slower */
        pt_upstream_on_request_end(f.us, (size_t)idx, lat_us, PT_OUTCOME_OK, now);
    }
    if (counts[1] > 3000 / 20)
        fail_msg("slow target got %d of 3000", counts[1]);
    assert_true(counts[0] > 1000 && counts[2] > 1000);
    /* Peak: one slow sample makes the cost jump; it decays afterwards. */
    double before = pt_target_ewma_ns(f.us->targets[0], now);
    pt_upstream_on_request_start(f.us, 0);
    pt_upstream_on_request_end(f.us, 0, 500000, PT_OUTCOME_OK, now);
    assert_true(pt_target_ewma_ns(f.us->targets[0], now) >= 499e6);
    assert_true(before < 2e6);
    assert_true(pt_target_ewma_ns(f.us->targets[0], now + 30000) < 500e6 * 0.06);
    teardown_fix(&f);
}

#define T3H                                                                                        \
    "    balance: hash\n    hash_key: \"header:X-User\"\n    targets:\n"                           \
    "      - {url: \"http://127.0.0.1:9001\"}\n      - {url: \"http://127.0.0.1:9002\"}\n"         \
    "      - {url: \"http://127.0.0.1:9003\"}\n"

static int pick_key(struct fix *f, int i, uint32_t skip)
{
    char k[32];
    int n = snprintf(k, sizeof(k), "user-%d", i);
    struct pt_lb_key key = {k, (size_t)n};
    return pt_lb_pick(f->us, &f->lw, &key, skip, NOW);
}

static void test_hash_consistent(void **state)
{
    (void)state;
    struct fix a, b;
    setup_fix(&a, T3H, NULL);
    setup_fix(&b, T3H "      - {url: \"http://127.0.0.1:9004\"}\n", NULL);
    enum { N = 10000 };
    int *before = malloc(N * sizeof(int));
    assert_non_null(before);
    int per[3] = {0}, moved_new = 0, kept = 0, moved_other = 0;
    for (int i = 0; i < N; i++) {
        before[i] = pick_key(&a, i, 0);
        per[before[i]]++;
        assert_int_equal(pick_key(&a, i, 0), before[i]); /* deterministic */
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(per[i], N / 3 - N / 20, N / 3 + N / 20); /* balanced */
    for (int i = 0; i < N; i++) {
        int now = pick_key(&b, i, 0);
        if (now == 3)
            moved_new++;
        else if (now == before[i])
            kept++;
        else
            moved_other++;
    }
    /* About a quarter moves to the new target; >= 95% of the rest stays where it was. */
    assert_in_range(moved_new, N / 4 - N / 20, N / 4 + N / 20);
    if (kept * 100 < (N - moved_new) * 95)
        fail_msg("kept %d of %d keys not moved to the new target", kept, N - moved_new);
    (void)moved_other;
    /* A target going down moves only its own keys. */
    pt_target_set_healthy(a.us->targets[1], false, NOW);
    int stayed = 0, n_other = 0;
    for (int i = 0; i < N; i++) {
        int now = pick_key(&a, i, 0);
        assert_true(now != 1);
        if (before[i] != 1) {
            n_other++;
            stayed += now == before[i];
        }
    }
    assert_int_equal(stayed, n_other);
    free(before);
    teardown_fix(&a);
    teardown_fix(&b);
}

static void test_cookie_sticky(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, T3W("cookie"), NULL);
    const char *tok[3];
    for (size_t i = 0; i < 3; i++) {
        tok[i] = pt_lb_cookie_token(f.us, i);
        assert_non_null(tok[i]);
        assert_int_equal(strlen(tok[i]), PT_LB_COOKIE_TOKEN_LEN);
        assert_null(strstr(tok[i], "127.0.0.1")); /* opaque */
        assert_int_equal(pt_lb_cookie_target(f.us, tok[i], strlen(tok[i])), (int)i);
    }
    assert_string_not_equal(tok[0], tok[1]);
    struct pt_lb_key k = {tok[0], strlen(tok[0])};
    for (int i = 0; i < 100; i++)
        assert_int_equal(pt_lb_pick(f.us, &f.lw, &k, 0, NOW), 0);
    /* A forged or altered token is not honoured: the balancer decides (round robin). */
    char forged[33];
    memcpy(forged, tok[0], 33);
    forged[5] = forged[5] == 'a' ? 'b' : 'a';
    assert_int_equal(pt_lb_cookie_target(f.us, forged, 32), -1);
    struct pt_lb_key fk = {forged, 32};
    int seen[3] = {0};
    for (int i = 0; i < 60; i++)
        seen[pt_lb_pick(f.us, &f.lw, &fk, 0, NOW)]++;
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    /* Its target down: fall back to the others. */
    pt_target_set_healthy(f.us->targets[0], false, NOW);
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(pt_lb_pick(f.us, &f.lw, &k, 0, NOW), 0);
    /* Tokens are stable for the same target across runtime states (reload). */
    struct pt_upstreams_rt *rt2 = pt_upstreams_rt_create(f.cfg, f.rt, NOW);
    assert_non_null(rt2);
    assert_string_equal(pt_lb_cookie_token(&rt2->ups[0], 2), tok[2]);
    pt_upstreams_rt_free(rt2);
    teardown_fix(&f);
}

static void test_backup_and_limits(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f,
              "    targets:\n      - {url: \"http://127.0.0.1:9001\", max_connections: 2}\n"
              "      - {url: \"http://127.0.0.1:9002\"}\n"
              "      - {url: \"http://127.0.0.1:9003\", backup: true}\n",
              NULL);
    for (int i = 0; i < 100; i++)
        assert_int_not_equal(pt_lb_pick(f.us, &f.lw, NULL, 0, NOW), 2);
    pt_target_set_healthy(f.us->targets[1], false, NOW);
    /* max_connections: the third concurrent start on target 0 is refused. */
    assert_true(pt_upstream_on_request_start(f.us, 0));
    assert_true(pt_upstream_on_request_start(f.us, 0));
    assert_false(pt_upstream_on_request_start(f.us, 0));
    /* Target 0 is full but available: queue, do not spill onto the backup. */
    assert_int_equal(pt_lb_pick(f.us, &f.lw, NULL, 0, NOW), PT_LB_FULL);
    pt_upstream_on_request_end(f.us, 0, 1000, PT_OUTCOME_OK, NOW);
    assert_int_equal(pt_lb_pick(f.us, &f.lw, NULL, 0, NOW), 0);
    /* Tried already (skip mask) counts as not available for this request. */
    assert_int_equal(pt_lb_pick(f.us, &f.lw, NULL, 1u << 0, NOW), 2);
    pt_target_set_healthy(f.us->targets[0], false, NOW);
    assert_int_equal(pt_lb_pick(f.us, &f.lw, NULL, 0, NOW), 2);
    assert_int_equal(pt_lb_pick(f.us, &f.lw, NULL, 1u << 2, NOW), PT_LB_NONE);
    pt_target_set_healthy(f.us->targets[1], true, NOW);
    assert_int_equal(pt_lb_pick(f.us, &f.lw, NULL, 0, NOW), 1);
    teardown_fix(&f);
}

#define T4O                                                                                        \
    "    outlier: {consecutive_failures: 3, include_5xx: true, base_ejection_time: 10s,\n"         \
    "              max_ejection_time: 35s, max_ejection_percent: 50}\n    targets:\n"              \
    "      - {url: \"http://127.0.0.1:9001\"}\n      - {url: \"http://127.0.0.1:9002\"}\n"         \
    "      - {url: \"http://127.0.0.1:9003\"}\n      - {url: \"http://127.0.0.1:9004\"}\n"

static bool fail_n(struct fix *f, size_t idx, int n, int outcome, uint64_t now)
{
    bool ej = false;
    for (int i = 0; i < n; i++) {
        assert_true(pt_upstream_on_request_start(f->us, idx));
        ej = pt_upstream_on_request_end(f->us, idx, 1000, outcome, now);
    }
    return ej;
}

static void test_outlier_ejection(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, T4O, NULL);
    struct pt_target_state *t = f.us->targets[0];
    assert_false(fail_n(&f, 0, 2, PT_OUTCOME_RESET, NOW));
    /* A success resets the count. */
    fail_n(&f, 0, 1, PT_OUTCOME_OK, NOW);
    assert_false(fail_n(&f, 0, 2, PT_OUTCOME_TIMEOUT, NOW));
    assert_true(fail_n(&f, 0, 1, PT_OUTCOME_STATUS_5XX, NOW));
    assert_false(pt_target_available(t, NOW));
    assert_false(pt_target_available(t, NOW + 9999));
    assert_true(pt_target_available(t, NOW + 10000));
    for (int i = 0; i < 200; i++)
        assert_int_not_equal(pt_lb_pick(f.us, &f.lw, NULL, 0, NOW + 5000), 0);
    /* Repeat: 20 s, then 35 s (capped, not 40). */
    uint64_t now = NOW + 10000;
    assert_true(fail_n(&f, 0, 3, PT_OUTCOME_CONNECT_FAILURE, now));
    assert_int_equal(atomic_load(&t->ejected_until_ms), now + 20000);
    now += 20000;
    assert_true(fail_n(&f, 0, 3, PT_OUTCOME_CONNECT_FAILURE, now));
    assert_int_equal(atomic_load(&t->ejected_until_ms), now + 35000);
    /* max_ejection_percent 50 of 4: a second target may go, a third may not. */
    assert_true(fail_n(&f, 1, 3, PT_OUTCOME_RESET, now));
    assert_false(fail_n(&f, 2, 5, PT_OUTCOME_RESET, now));
    assert_true(pt_target_available(f.us->targets[2], now));
    teardown_fix(&f);
}

/* An attempt that never left Portico (out of file descriptors or memory) is neither a failure
   nor a success of the target: it only gives its in-flight slot back. */
static void test_local_shortage_is_not_the_targets(void **state)
{
    (void)state;
    assert_true(pt_upstream_is_local_shortage(EMFILE));
    assert_true(pt_upstream_is_local_shortage(ENFILE));
    assert_true(pt_upstream_is_local_shortage(ENOBUFS));
    assert_true(pt_upstream_is_local_shortage(ENOMEM));
    assert_false(pt_upstream_is_local_shortage(ECONNREFUSED));
    assert_false(pt_upstream_is_local_shortage(ETIMEDOUT));
    struct fix f;
    setup_fix(&f, T4O, NULL);
    struct pt_target_state *t = f.us->targets[0];
    assert_false(fail_n(&f, 0, 2, PT_OUTCOME_RESET, NOW));
    /* Any number of shortages: no ejection, and the two failures are still counted. */
    assert_false(fail_n(&f, 0, 50, PT_OUTCOME_LOCAL, NOW));
    assert_int_equal(atomic_load(&t->consecutive_failures), 2);
    assert_int_equal(atomic_load(&t->in_flight), 0);
    assert_int_equal(atomic_load(&t->requests), 2);
    assert_true(pt_target_available(t, NOW));
    /* The next real failure is the third in a row. */
    assert_true(fail_n(&f, 0, 1, PT_OUTCOME_CONNECT_FAILURE, NOW));
    teardown_fix(&f);
}

static void test_outlier_5xx_optional(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(
        &f,
        "    outlier: {consecutive_failures: 2}\n    targets:\n"
        "      - {url: \"http://127.0.0.1:9001\"}\n      - {url: \"http://127.0.0.1:9002\"}\n",
        NULL);
    assert_false(fail_n(&f, 0, 10, PT_OUTCOME_STATUS_5XX, NOW)); /* include_5xx defaults false */
    assert_true(fail_n(&f, 0, 2, PT_OUTCOME_RESET, NOW));
    teardown_fix(&f);
}

static void test_no_outlier_no_ejection(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f, T3W("round_robin"), NULL);
    assert_false(fail_n(&f, 0, 50, PT_OUTCOME_CONNECT_FAILURE, NOW));
    assert_true(pt_target_available(f.us->targets[0], NOW));
    assert_int_equal(atomic_load(&f.us->targets[0]->consecutive_failures), 50);
    teardown_fix(&f);
}

static void test_slow_start_and_reload(void **state)
{
    (void)state;
    struct fix a, b;
    const char *two =
        "    slow_start: 10s\n    targets:\n      - {url: \"http://127.0.0.1:9001\"}\n"
        "      - {url: \"http://127.0.0.1:9002\"}\n";
    setup_fix(&a, two, NULL);
    const struct pt_target_cfg *tc = &a.cfg->upstreams[0]->targets[0];
    /* At start-up targets are warm. */
    assert_int_equal(pt_target_effective_weight(a.us->targets[0], tc, 10000, NOW), 1000);
    /* Back up after being down: ramps from 10% to 100% over slow_start. */
    pt_target_set_healthy(a.us->targets[0], false, NOW);
    pt_target_set_healthy(a.us->targets[0], true, NOW);
    assert_int_equal(pt_target_effective_weight(a.us->targets[0], tc, 10000, NOW), 100);
    assert_int_equal(pt_target_effective_weight(a.us->targets[0], tc, 10000, NOW + 5000), 550);
    assert_int_equal(pt_target_effective_weight(a.us->targets[0], tc, 10000, NOW + 10000), 1000);
    /* Reload with a third target: the two known states are adopted, the new one ramps. */
    pt_target_set_healthy(a.us->targets[1], false, NOW);
    atomic_store(&a.us->targets[1]->hc_fails, 7);
    setup_fix(&b,
              "    slow_start: 10s\n    targets:\n      - {url: \"http://127.0.0.1:9002\"}\n"
              "      - {url: \"http://127.0.0.1:9001\", weight: 5}\n"
              "      - {url: \"http://127.0.0.1:9003\"}\n"
              "    health: {path: /h}\n",
              a.rt);
    assert_ptr_equal(b.us->targets[0], a.us->targets[1]);
    assert_ptr_equal(b.us->targets[1], a.us->targets[0]);
    assert_false(pt_target_available(b.us->targets[0], NOW)); /* still down after reload */
    assert_int_equal(atomic_load(&b.us->targets[0]->hc_fails), 7);
    const struct pt_target_cfg *tc3 = &b.cfg->upstreams[0]->targets[2];
    assert_int_equal(pt_target_effective_weight(b.us->targets[2], tc3, 10000, NOW), 100);
    /* The old snapshot goes away; the adopted states live on in the new one. */
    teardown_fix(&a);
    assert_int_equal(atomic_load(&b.us->targets[1]->refs), 1);
    assert_false(pt_target_available(b.us->targets[0], NOW));
    /* Slow start shapes round robin shares: a new target gets little at first. */
    int counts[3] = {0};
    for (int i = 0; i < 2100; i++)
        counts[pt_lb_pick(b.us, &b.lw, NULL, 0, NOW)]++;
    /* Both ramp at NOW: 9001 came back up at NOW (10% of 5000), 9003 is new (10% of 1000). */
    assert_int_equal(counts[0], 0); /* down */
    assert_int_equal(counts[1], 1750);
    assert_int_equal(counts[2], 350);
    teardown_fix(&b);
}

static void test_health_removed_on_reload(void **state)
{
    (void)state;
    struct fix a, b;
    setup_fix(&a, T4O "    health: {path: /h}\n", NULL);
    pt_target_set_healthy(a.us->targets[0], false, NOW);
    fail_n(&a, 1, 3, PT_OUTCOME_RESET, NOW);
    assert_false(pt_target_available(a.us->targets[1], NOW));
    setup_fix(&b, T3W("round_robin"), a.rt); /* no health, no outlier */
    assert_true(pt_target_available(b.us->targets[0], NOW));
    assert_true(pt_target_available(b.us->targets[1], NOW));
    teardown_fix(&b);
    teardown_fix(&a);
}

static void test_budget(void **state)
{
    (void)state;
    struct pt_budget b;
    pt_budget_init(&b);
    uint64_t now = NOW;
    /* The floor: 10 retries per window even with no traffic. */
    for (int i = 0; i < PT_BUDGET_MIN_RETRIES; i++)
        assert_true(pt_budget_try_retry(&b, 20, now));
    assert_false(pt_budget_try_retry(&b, 20, now));
    /* 1000 requests over 5 s: 20% allows 200 retries in all (10 already used). */
    for (int s = 0; s < 5; s++)
        for (int i = 0; i < 200; i++)
            pt_budget_on_request(&b, now + (uint64_t)s * 1000);
    now += 4000;
    int allowed = 0;
    for (int i = 0; i < 1000; i++)
        allowed += pt_budget_try_retry(&b, 20, now);
    assert_int_equal(allowed, 190);
    uint64_t rq, rt;
    pt_budget_counts(&b, now, &rq, &rt);
    assert_int_equal(rq, 1000);
    assert_int_equal(rt, 200);
    /* The window slides: 10 s after the first second, its counts are gone. */
    pt_budget_counts(&b, NOW + 10000, &rq, &rt);
    assert_int_equal(rq, 800);
    assert_int_equal(rt, 190);
    /* Much later everything has expired, and the floor applies again. */
    now = NOW + 60000;
    pt_budget_counts(&b, now, &rq, &rt);
    assert_int_equal(rq + rt, 0);
    assert_true(pt_budget_try_retry(&b, 20, now));
    assert_false(pt_budget_try_retry(&b, 0, now)); /* 0%: never */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_weights),
        cmocka_unit_test(test_random_weights),
        cmocka_unit_test(test_random_ignores_load),
        cmocka_unit_test(test_p2c_weights),
        cmocka_unit_test(test_p2c_avoids_loaded),
        cmocka_unit_test(test_balance_names),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_ewma_avoids_slow),
        cmocka_unit_test(test_hash_consistent),
        cmocka_unit_test(test_cookie_sticky),
        cmocka_unit_test(test_backup_and_limits),
        cmocka_unit_test(test_outlier_ejection),
        cmocka_unit_test(test_local_shortage_is_not_the_targets),
        cmocka_unit_test(test_outlier_5xx_optional),
        cmocka_unit_test(test_no_outlier_no_ejection),
        cmocka_unit_test(test_slow_start_and_reload),
        cmocka_unit_test(test_health_removed_on_reload),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
