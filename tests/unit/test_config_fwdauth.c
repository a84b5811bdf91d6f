/*
 * test_config_fwdauth.c - the forward_auth: key (config/config_fwdauth.c): its defaults, the
 * auth call's route (a URL's upstream and path, a named upstream), a route's own value, `off`,
 * the inheritance from the site, and the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config_load.h"

static void expect_err(const char *yaml, const char *needle)
{
    expect_has(load_err(yaml), needle);
}

#define BASE "listen:\n  - addr: \":8080\"\n"

static void test_defaults_and_inheritance(void **state)
{
    (void)state;
    struct pt_config *cfg =
        load_ok(BASE "sites:\n"
                     "  - forward_auth: {url: \"http://127.0.0.1:9000/check\"}\n"
                     "    routes:\n"
                     "      - {match: /a, respond: {status: 200}}\n"
                     "      - {match: /b, respond: {status: 200}, "
                     "forward_auth: off}\n"
                     "      - match: /c\n"
                     "        respond: {status: 200}\n"
                     "        forward_auth:\n"
                     "          url: \"http://127.0.0.1:9001\"\n"
                     "          timeout: 250ms\n"
                     "          request_headers: [X-Api-Key]\n"
                     "          response_headers: [X-User, x-groups]\n"
                     "          cache: {ttl: 10s, key: [X-Api-Key]}\n");
    const struct pt_site_cfg *site = &cfg->sites[0];
    const struct pt_fwdauth_cfg *fa = site->routes[0].forward_auth;
    assert_non_null(fa);
    assert_ptr_equal(fa, site->forward_auth);
    assert_string_equal(fa->path, "/check");
    assert_int_equal(fa->timeout_ms, 5000);
    assert_int_equal(fa->n_request_headers, 2);
    assert_string_equal(fa->request_headers[0], "authorization");
    assert_string_equal(fa->request_headers[1], "cookie");
    assert_int_equal(fa->n_response_headers, 0);
    assert_int_equal(fa->cache_ttl_ms, 0);
    assert_int_equal(fa->route->action, PT_ACTION_PROXY);
    assert_non_null(fa->route->proxy.upstream);
    assert_string_equal(fa->route->proxy.to_path, "");
    assert_int_equal(fa->route->proxy.timeout_ms, 5000);
    assert_false(fa->route->cache.is_on);

    assert_null(site->routes[1].forward_auth); /* off lifts the site's */

    fa = site->routes[2].forward_auth;
    assert_non_null(fa);
    assert_ptr_not_equal(fa, site->forward_auth);
    assert_string_equal(fa->path, "/");
    assert_int_equal(fa->timeout_ms, 250);
    assert_int_equal(fa->route->proxy.timeout_ms, 250);
    assert_int_equal(fa->n_request_headers, 1);
    assert_string_equal(fa->request_headers[0], "x-api-key");
    assert_int_equal(fa->n_response_headers, 2);
    assert_string_equal(fa->response_headers[0], "x-user");
    assert_string_equal(fa->response_headers[1], "x-groups");
    assert_int_equal(fa->cache_ttl_ms, 10000);
    assert_int_equal(fa->n_cache_key, 1);
    assert_string_equal(fa->cache_key[0], "x-api-key");
    pt_config_free(cfg);
}

static void test_named_upstream(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE "upstreams:\n"
                                         "  auth:\n"
                                         "    targets: [{url: \"http://127.0.0.1:9000\"}]\n"
                                         "sites:\n"
                                         "  - routes:\n"
                                         "      - match: /\n"
                                         "        respond: {status: 200}\n"
                                         "        forward_auth: {upstream: auth, path: /verify, "
                                         "cache: {ttl: 1s}}\n");
    const struct pt_fwdauth_cfg *fa = cfg->sites[0].routes[0].forward_auth;
    assert_non_null(fa);
    assert_null(cfg->sites[0].forward_auth);
    assert_string_equal(fa->route->proxy.upstream->name, "auth");
    assert_string_equal(fa->path, "/verify");
    assert_int_equal(fa->n_cache_key, 2); /* the request_headers by default */
    pt_config_free(cfg);
}

static void test_errors(void **state)
{
    (void)state;
    const char *routes = "    routes: [{match: /, respond: {status: 200}}]\n";
    char buf[1024];
    snprintf(buf, sizeof(buf), BASE "sites:\n  - forward_auth: {timeout: 1s}\n%s", routes);
    expect_err(buf, "forward_auth needs url (http://...) or upstream (a name)");
    snprintf(buf, sizeof(buf), BASE "sites:\n  - forward_auth: {upstream: nope}\n%s", routes);
    expect_err(buf, "unknown upstream \"nope\"");
    snprintf(buf, sizeof(buf), BASE "sites:\n  - forward_auth: {url: \"127.0.0.1:9\"}\n%s", routes);
    expect_err(buf, "expected a URL like http://127.0.0.1:9000/check");
    snprintf(buf, sizeof(buf),
             BASE "sites:\n  - forward_auth: {url: \"http://a:1\", path: check}\n%s", routes);
    expect_err(buf, "\"path\" must start with '/'");
    snprintf(buf, sizeof(buf),
             BASE "sites:\n  - forward_auth: {url: \"http://a:1\", request_headers: [\"a b\"]}\n%s",
             routes);
    expect_err(buf, "expected a header name");
    snprintf(buf, sizeof(buf),
             BASE "sites:\n  - forward_auth: {url: \"http://a:1\", cache: {}}\n%s", routes);
    expect_err(buf, "ttl");
    snprintf(buf, sizeof(buf), BASE "sites:\n  - forward_auth: on\n%s", routes);
    expect_err(buf, "expected forward_auth:");
    snprintf(buf, sizeof(buf),
             BASE "sites:\n  - forward_auth: {url: \"http://a:1\", upstream: x, bogus: 1}\n%s",
             routes);
    expect_err(buf, "forward_auth takes one of url or upstream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_inheritance),
        cmocka_unit_test(test_named_upstream),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
