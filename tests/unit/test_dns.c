/*
 * test_dns.c - upstream/dns.c and the expansion of DNS names (dns_expand.c): address sorting
 * and change detection, the cache, one target per address (name kept for Host), target state
 * adopted per address across reloads, /etc/hosts through c-ares, resolver: errors.
 *
 * Names other than "localhost" are never sent to a server: the tests seed the cache with
 * pt_dns_cache_set(), and a fresh cached answer is not asked again. The one failing lookup
 * points the resolver at 127.0.0.1:1, where nothing listens.
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

#include "config/config.h"
#include "upstream/dns.h"
#include "upstream/target.h"

static char errbuf[8192];

static struct pt_sockaddr v4(const char *ip, uint16_t port)
{
    struct pt_sockaddr a;
    memset(&a, 0, sizeof(a));
    a.u.in.sin_family = AF_INET;
    a.u.in.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.u.in.sin_addr);
    a.len = sizeof(a.u.in);
    return a;
}

static struct pt_sockaddr v6(const char *ip, uint16_t port)
{
    struct pt_sockaddr a;
    memset(&a, 0, sizeof(a));
    a.u.in6.sin6_family = AF_INET6;
    a.u.in6.sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &a.u.in6.sin6_addr);
    a.len = sizeof(a.u.in6);
    return a;
}

static const char *ip_of(const struct pt_sockaddr *a, char *buf, size_t n)
{
    if (a->u.sa.sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &a->u.in6.sin6_addr, buf, (socklen_t)n);
    return inet_ntop(AF_INET, &a->u.in.sin_addr, buf, (socklen_t)n);
}

static uint16_t port_of(const struct pt_sockaddr *a)
{
    return ntohs(a->u.sa.sa_family == AF_INET6 ? a->u.in6.sin6_port : a->u.in.sin_port);
}

/* Loads yaml and expands its host names, as main.c does; NULL when either fails. */
static struct pt_config *load(const char *yaml, int want_rc)
{
    struct pt_config *cfg = NULL;
    int rc = pt_config_load_buf("t.yaml", yaml, strlen(yaml), &cfg, errbuf, sizeof(errbuf));
    if (rc == 0 && (rc = pt_dns_expand(cfg, errbuf, sizeof(errbuf))) != 0) {
        pt_config_free(cfg);
        cfg = NULL;
    }
    if ((rc == 0) != (want_rc == 0))
        fprintf(stderr, "load returned %d:\n%s\n", rc, errbuf);
    assert_int_equal(rc == 0, want_rc == 0);
    return cfg;
}

#define HEAD                                                                                       \
    "listen:\n  - addr: \":8080\"\n"                                                               \
    "routes:\n  - match: /\n    proxy: {to: api}\n"

static void test_sort_unique_and_compare(void **state)
{
    (void)state;
    struct pt_sockaddr a[] = {v6("::1", 0), v4("127.0.0.3", 0), v4("127.0.0.2", 0),
                              v4("127.0.0.3", 0)};
    size_t n = pt_dns_sort_unique(a, 4);
    assert_int_equal(n, 3);
    char b[64];
    assert_string_equal(ip_of(&a[0], b, sizeof(b)), "127.0.0.2");
    assert_string_equal(ip_of(&a[1], b, sizeof(b)), "127.0.0.3");
    assert_string_equal(ip_of(&a[2], b, sizeof(b)), "::1");
    struct pt_sockaddr c[] = {v4("127.0.0.2", 0), v4("127.0.0.3", 0), v6("::1", 0)};
    assert_true(pt_dns_same_addrs(a, 3, c, 3));
    assert_false(pt_dns_same_addrs(a, 3, c, 2));
    c[1] = v4("127.0.0.4", 0);
    assert_false(pt_dns_same_addrs(a, 3, c, 3));
}

static void test_cache_reports_changes_once(void **state)
{
    (void)state;
    pt_dns_shutdown();
    struct pt_sockaddr two[] = {v4("10.0.0.2", 0), v4("10.0.0.1", 0)};
    struct pt_sockaddr same[] = {v4("10.0.0.1", 0), v4("10.0.0.2", 0)};
    struct pt_sockaddr one[] = {v4("10.0.0.2", 0)};
    assert_true(pt_dns_cache_set("svc.test", two, 2, 1000, 5000));
    assert_true(pt_dns_is_active());
    assert_false(pt_dns_tick(5000)); /* a first answer is not a change */
    assert_false(pt_dns_cache_set("SVC.test", same, 2, 1000, 6000)); /* order, case */
    assert_false(pt_dns_tick(6000));
    assert_true(pt_dns_cache_set("svc.test", one, 1, 1000, 7000));
    assert_true(pt_dns_tick(7000));
    assert_false(pt_dns_tick(7000)); /* reported once */
    struct pt_sockaddr out[4];
    assert_int_equal(pt_dns_lookup("svc.test", out, 4, NULL), 1);
    const char *why = NULL;
    assert_int_equal(pt_dns_lookup("other.test", out, 4, &why), 0);
    assert_non_null(why);
    pt_dns_shutdown();
    assert_false(pt_dns_is_active());
}

static void test_name_expands_into_one_target_per_address(void **state)
{
    (void)state;
    pt_dns_shutdown();
    struct pt_sockaddr addrs[] = {v4("127.0.0.3", 0), v6("::1", 0), v4("127.0.0.2", 0)};
    pt_dns_cache_set("api.test", addrs, 3, 60000, pt_upstream_now_ms());
    struct pt_config *cfg = load(HEAD "upstreams:\n"
                                      "  api:\n"
                                      "    resolve_interval: 60s\n"
                                      "    targets:\n"
                                      "      - {url: \"http://127.0.0.1:9000\"}\n"
                                      "      - {url: \"http://api.test:8081/base\", weight: 3, "
                                      "max_connections: 7}\n"
                                      "      - {url: \"http://[::1]:9001\", backup: true}\n",
                                 0);
    const struct pt_upstream_cfg *u = cfg->upstreams[0];
    assert_int_equal(u->n_targets, 5);
    assert_int_equal(u->n_primary, 4);
    char b[64];
    /* The literal keeps its place and is not a DNS target. */
    assert_false(u->targets[0].is_dns);
    assert_string_equal(ip_of(&u->targets[0].addr, b, sizeof(b)), "127.0.0.1");
    static const char *const want[] = {"127.0.0.2", "127.0.0.3", "::1"};
    for (size_t i = 0; i < 3; i++) {
        const struct pt_target_cfg *t = &u->targets[1 + i];
        assert_true(t->is_dns);
        assert_string_equal(ip_of(&t->addr, b, sizeof(b)), want[i]);
        assert_int_equal(port_of(&t->addr), 8081);
        assert_string_equal(t->url, "http://api.test:8081/base");
        assert_string_equal(t->host, "api.test");
        assert_string_equal(t->host_header, "api.test:8081");
        assert_string_equal(t->base_path, "/base");
        assert_int_equal(t->weight, 3);
        assert_int_equal(t->max_connections, 7);
        assert_false(t->is_backup);
    }
    assert_true(u->targets[4].is_backup);
    assert_false(u->targets[4].is_dns);
    pt_config_free(cfg);
    pt_dns_shutdown();
}

static void test_state_survives_while_address_stays(void **state)
{
    (void)state;
    pt_dns_shutdown();
    static const char yaml[] = HEAD "upstreams:\n"
                                    "  api:\n"
                                    "    health: {path: /h}\n"
                                    "    targets:\n"
                                    "      - {url: \"http://api.test:8081\"}\n";
    struct pt_sockaddr two[] = {v4("127.0.0.2", 0), v4("127.0.0.3", 0)};
    pt_dns_cache_set("api.test", two, 2, 30000, pt_upstream_now_ms());
    struct pt_config *c1 = load(yaml, 0);
    struct pt_upstreams_rt *r1 = pt_upstreams_rt_create(c1, NULL, 1000);
    assert_non_null(r1);
    assert_int_equal(r1->ups[0].n_targets, 2);
    assert_ptr_not_equal(r1->ups[0].targets[0], r1->ups[0].targets[1]);
    struct pt_target_state *kept = r1->ups[0].targets[1]; /* 127.0.0.3 */
    pt_target_set_healthy(kept, false, 1000);

    struct pt_sockaddr one[] = {v4("127.0.0.3", 0)};
    assert_true(pt_dns_cache_set("api.test", one, 1, 30000, pt_upstream_now_ms()));
    assert_true(pt_dns_tick(pt_upstream_now_ms()));
    struct pt_config *c2 = load(yaml, 0);
    assert_int_equal(c2->upstreams[0]->n_targets, 1);
    struct pt_upstreams_rt *r2 = pt_upstreams_rt_create(c2, r1, 2000);
    assert_non_null(r2);
    assert_ptr_equal(r2->ups[0].targets[0], kept);
    assert_false(atomic_load(&kept->is_healthy)); /* the verdict survived the reload */
    assert_non_null(strstr(kept->key, "\n127.0.0.3"));
    pt_upstreams_rt_free(r1);
    pt_config_free(c1);
    pt_upstreams_rt_free(r2);
    pt_config_free(c2);
    pt_dns_shutdown();
}

static void test_localhost_from_hosts_file(void **state)
{
    (void)state;
    pt_dns_shutdown();
    struct pt_config *cfg = load(HEAD "upstreams:\n"
                                      "  api:\n"
                                      "    targets:\n"
                                      "      - {url: \"http://localhost:81\"}\n",
                                 0);
    const struct pt_upstream_cfg *u = cfg->upstreams[0];
    assert_true(u->n_targets >= 1);
    bool has_v4 = false;
    char b[64];
    for (size_t i = 0; i < u->n_targets; i++) {
        assert_true(u->targets[i].is_dns);
        assert_int_equal(port_of(&u->targets[i].addr), 81);
        if (strcmp(ip_of(&u->targets[i].addr, b, sizeof(b)), "127.0.0.1") == 0)
            has_v4 = true;
    }
    assert_true(has_v4);
    pt_config_free(cfg);
    pt_dns_shutdown();
}

static void test_unresolvable_name_is_an_error_at_its_url(void **state)
{
    (void)state;
    pt_dns_shutdown();
    load(HEAD "resolver: {servers: [\"127.0.0.1:1\"], timeout: 400ms}\n"
              "upstreams:\n"
              "  api:\n"
              "    targets:\n"
              "      - {url: \"http://nothing.invalid:81\"}\n",
         -1);
    assert_non_null(strstr(errbuf, "t.yaml:10:15: cannot resolve host \"nothing.invalid\""));
    pt_dns_shutdown();
}

static void test_unresolvable_name_from_the_environment_is_redacted(void **state)
{
    (void)state;
    pt_dns_shutdown();
    setenv("PT_T_DNS_HOST", "nothing.invalid", 1);
    load(HEAD "resolver: {servers: [\"127.0.0.1:1\"], timeout: 400ms}\n"
              "upstreams:\n"
              "  api:\n"
              "    targets:\n"
              "      - {url: \"http://${PT_T_DNS_HOST}:81\"}\n",
         -1);
    unsetenv("PT_T_DNS_HOST");
    assert_non_null(strstr(errbuf, "t.yaml:10:15: cannot resolve host \"${PT_T_DNS_HOST}\""));
    assert_null(strstr(errbuf, "nothing.invalid"));
    pt_dns_shutdown();
}

static void test_resolver_key_errors(void **state)
{
    (void)state;
    load(HEAD "resolver: {servers: [\"dns.example\", \"10.0.0.1:99999\"], timeout: 1h, x: 1}\n",
         -1);
    assert_non_null(strstr(errbuf, "t.yaml:6:22: expected an IP address"));
    assert_non_null(strstr(errbuf, "t.yaml:6:37: expected an IP address"));
    assert_non_null(strstr(errbuf, "\"timeout\""));
    assert_non_null(strstr(errbuf, "\"x\""));
    load(HEAD "resolver: {servers: []}\n", -1);
    assert_non_null(strstr(errbuf, "needs at least one address"));
    struct pt_config *cfg = load(HEAD "upstreams:\n  api:\n    targets: [{url: "
                                      "\"http://127.0.0.1:1\"}]\n"
                                      "resolver: {servers: [\"127.0.0.1:5353\", \"::1\", "
                                      "\"[::1]:54\", \"10.1.1.1\"], timeout: 3s}\n",
                                 0);
    assert_string_equal(cfg->resolver.servers, "127.0.0.1:5353,[::1]:53,[::1]:54,10.1.1.1:53");
    assert_int_equal(cfg->resolver.timeout_ms, 3000);
    pt_config_free(cfg);
    pt_dns_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort_unique_and_compare),
        cmocka_unit_test(test_cache_reports_changes_once),
        cmocka_unit_test(test_name_expands_into_one_target_per_address),
        cmocka_unit_test(test_state_survives_while_address_stays),
        cmocka_unit_test(test_localhost_from_hosts_file),
        cmocka_unit_test(test_unresolvable_name_is_an_error_at_its_url),
        cmocka_unit_test(test_unresolvable_name_from_the_environment_is_redacted),
        cmocka_unit_test(test_resolver_key_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
