/* test_rules_apply.c - the rules store as sites and routes (server/api_rules.c,
   config/config_api.c): evaluation order of project and alias rules, disabled rules, hostnames
   the file already serves, the upstreams' guard settings; and the live-apply signal, which a
   burst of changes sends once while one is pending. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin/store.h"
#include "config/config.h"
#include "core/common.h"
#include "server/api_rules.h"

static void test_a_burst_of_changes_sends_one_signal(void **state)
{
    (void)state;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, PT_SIG_RULES);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    struct timespec zero = {0, 0};
    for (int i = 0; i < 100; i++)
        pt_rules_changed();
    assert_int_equal(sigtimedwait(&set, NULL, &zero), PT_SIG_RULES);
    assert_int_equal(sigtimedwait(&set, NULL, &zero), -1); /* one signal for the burst */
    assert_true(pt_rules_change_take());
    assert_false(pt_rules_change_take());
    /* A change after the take (during a rebuild) signals again: one more rebuild. */
    pt_rules_changed_cb(NULL);
    pt_rules_changed();
    assert_int_equal(sigtimedwait(&set, NULL, &zero), PT_SIG_RULES);
    assert_int_equal(sigtimedwait(&set, NULL, &zero), -1);
    assert_true(pt_rules_change_take());
}

static void rule(struct pt_store *s, const char *pid, const char *aid, const char *pattern,
                 const char *target, bool enabled)
{
    struct pt_store_rule r;
    memset(&r, 0, sizeof(r));
    snprintf(r.project_id, sizeof(r.project_id), "%s", pid);
    snprintf(r.alias_id, sizeof(r.alias_id), "%s", aid ? aid : "");
    r.path_pattern = (char *)pattern;
    r.target_url = (char *)target;
    r.description = (char *)"";
    r.is_enabled = enabled;
    r.order = -1;
    r.timeout_ms = 1500;
    if (pt_store_rule_create(s, &r) != 0)
        fail_msg("rule: %s", pt_store_error(s));
}

static const struct pt_site_cfg *site_of(const struct pt_config *cfg, const char *host)
{
    for (size_t i = 0; i < cfg->n_sites; i++)
        for (size_t h = 0; h < cfg->sites[i].n_hosts; h++)
            if (strcmp(cfg->sites[i].hosts[h], host) == 0)
                return &cfg->sites[i];
    return NULL;
}

static void test_store_rules_become_sites_in_evaluation_order(void **state)
{
    (void)state;
    char dir[] = "/tmp/pt_rules_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128], yaml[128], tokens[128], keyf[128], err[1024];
    snprintf(db, sizeof(db), "%s/rules.db", dir);
    snprintf(yaml, sizeof(yaml), "%s/portico.yaml", dir);
    snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
    snprintf(keyf, sizeof(keyf), "%s/key", dir);
    struct pt_secret_key key;
    assert_int_equal(pt_secret_keygen(keyf, err, sizeof(err)), 0);
    assert_int_equal(pt_secret_key_load(keyf, &key, err, sizeof(err)), 0);
    FILE *f = fopen(tokens, "w");
    assert_non_null(f);
    fclose(f);
    struct pt_store *s = NULL;
    assert_int_equal(pt_store_open(db, &key, &s, err, sizeof(err)), 0);
    pt_secret_key_wipe(&key);
    struct pt_store_project p, q;
    memset(&p, 0, sizeof(p));
    memset(&q, 0, sizeof(q));
    char *ph[] = {"app.test"}, *qh[] = {"yaml.test"}, *ah[] = {"stg.app.test"};
    p.name = "p";
    p.hostnames = ph;
    p.n_hostnames = 1;
    q.name = "q";
    q.hostnames = qh;
    q.n_hostnames = 1;
    assert_int_equal(pt_store_project_create(s, &p), 0);
    assert_int_equal(pt_store_project_create(s, &q), 0);
    struct pt_store_alias a;
    memset(&a, 0, sizeof(a));
    snprintf(a.project_id, sizeof(a.project_id), "%s", p.id);
    a.name = "staging";
    a.hostnames = ah;
    a.n_hostnames = 1;
    assert_int_equal(pt_store_alias_create(s, &a), 0);
    rule(s, p.id, NULL, "/api/*", "http://127.0.0.1:9001/v1", true);
    rule(s, p.id, NULL, "/off/*", "http://127.0.0.1:9001", false);
    rule(s, p.id, NULL, "*.json", "https://127.0.0.1:9002", true);
    rule(s, p.id, a.id, "/api/*", "http://127.0.0.1:9003", true);
    rule(s, p.id, a.id, "*.json", "http://127.0.0.1:9003", false); /* hides nothing */
    rule(s, q.id, NULL, "/*", "http://127.0.0.1:9004", true);
    pt_store_close(s);

    f = fopen(yaml, "w");
    assert_non_null(f);
    fprintf(f,
            "listen: [{addr: \"127.0.0.1:1\"}]\n"
            "admin: {tokens_file: \"%s\", store: \"%s\", key_file: \"%s\","
            " allow_private: [127.0.0.0/8],"
            " ca_file: /etc/ssl/certs/ca-certificates.crt}\n"
            "sites:\n  - hosts: [yaml.test]\n    routes: [{match: \"/*\", respond: {}}]\n",
            tokens, db, keyf);
    fclose(f);
    struct pt_config *cfg = NULL;
    if (pt_config_load(yaml, &cfg, err, sizeof(err)) != PT_OK)
        fail_msg("load: %s", err);
    size_t n_file = cfg->n_sites, n_ups = cfg->n_upstreams;
    if (pt_api_rules_add(cfg, err, sizeof(err)) != PT_OK)
        fail_msg("rules: %s", err);
    assert_int_equal(cfg->n_sites, n_file + 2); /* q's only hostname is the file's */
    assert_int_equal(site_of(cfg, "yaml.test"), &cfg->sites[0]);
    assert_false(cfg->sites[0].is_api);

    const struct pt_site_cfg *ps = site_of(cfg, "app.test");
    assert_non_null(ps);
    assert_true(ps->is_api);
    assert_int_equal(ps->n_routes, 2);
    assert_string_equal(ps->routes[0].match, "/api/*");
    assert_string_equal(ps->routes[0].proxy.to_path, "/v1");
    assert_int_equal(ps->routes[0].proxy.timeout_ms, 1500);
    assert_true(ps->routes[0].proxy.strip_credentials);
    assert_string_equal(ps->routes[1].match, "*.json");
    const struct pt_upstream_cfg *up = ps->routes[1].proxy.upstream;
    assert_true(up->ssrf_guard);
    assert_int_equal(up->n_allow_private, 1);
    assert_string_equal(up->ca_file, "/etc/ssl/certs/ca-certificates.crt");
    assert_true(up->targets[0].is_https);

    const struct pt_site_cfg *as = site_of(cfg, "stg.app.test");
    assert_non_null(as);
    assert_int_equal(as->n_routes, 2);
    assert_string_equal(as->routes[0].match, "/api/*");
    assert_int_equal(as->routes[0].proxy.upstream->targets[0].port, 9003);
    assert_string_equal(as->routes[1].match, "*.json");
    assert_int_equal(as->routes[1].proxy.upstream->targets[0].port, 9002);
    /* One upstream per origin, shared by the rules naming it: 9001, 9002, 9003. */
    assert_int_equal(cfg->n_upstreams, n_ups + 3);
    pt_config_free(cfg);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_burst_of_changes_sends_one_signal),
        cmocka_unit_test(test_store_rules_become_sites_in_evaluation_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
