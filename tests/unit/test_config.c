/*
 * test_config.c - the configuration loader: every key of the contract, the defaults, the value
 * formats, and every kind of error with its FILE:LINE:COL position and message.
 *
 * Inputs are YAML (or JSON) text in string literals loaded with pt_config_load_buf under the
 * name "t.yaml", so positions in the expected messages count lines of those literals. Failed
 * loads are run under the ASan build too, whose leak checker proves they free everything.
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
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config_load.h"
#include "core/log.h"
#include "http/h1_parse.h"

static const char *in_tmp(const char *rel);

#define BASE "listen:\n  - addr: \":8080\"\n"
#define ROUTE_OK "sites:\n  - routes:\n      - match: /\n        respond: {status: 200}\n"

static const char full_example[] =
    "workers: 3\n"
    "shutdown_timeout: 20s\n"
    "\n"
    "listen:\n"
    "  - addr: \"0.0.0.0:8080\"\n"
    "  - addr: \"[::]:8443\"\n"
    "    tls: true\n"
    "  - addr: \"127.0.0.1:9090\"\n"
    "\n"
    "limits:\n"
    "  header_size: 32k\n"
    "  headers: 50\n"
    "  uri_size: 4k\n"
    "  body_size: 2g\n"
    "  header_timeout: 5s\n"
    "  body_timeout: 250ms\n"
    "  keepalive_timeout: 2m\n"
    "  send_timeout: 1h\n"
    "\n"
    "trusted_proxies: [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.168.1.1\"]\n"
    "\n"
    "log:\n"
    "  level: debug\n"
    "  access: conf/access.log\n"
    "  format: json\n"
    "\n"
    "upstreams:\n"
    "  api:\n"
    "    targets:\n"
    "      - url: \"http://127.0.0.1:9001\"\n"
    "        weight: 2\n"
    "      - url: \"http://[::1]:9002/base/\"\n"
    "    balance: round_robin\n"
    "    keepalive: 16\n"
    "    connect_timeout: 500ms\n"
    "    retries: 3\n"
    "  local:\n"
    "    targets:\n"
    "      - url: \"http://localhost\"\n"
    "\n"
    "sites:\n"
    "  - hosts: [\"Example.COM\", \"*.example.com\", \"example.org:8080\"]\n"
    "    routes:\n"
    "      - match: \"/api/*\"\n"
    "        methods: [GET, POST, PURGE]\n"
    "        proxy:\n"
    "          to: api\n"
    "          strip_prefix: true\n"
    "          preserve_host: false\n"
    "          timeout: 45s\n"
    "          strip_credentials: true\n"
    "          headers:\n"
    "            request:  { set: {X-Api-Key: \"k1\"}, add: {X-A: b}, remove: [] }\n"
    "            response: { set: {}, add: {}, remove: [X-Powered-By, Server] }\n"
    "      - match: \"/old/*\"\n"
    "        redirect: { to: \"/new/:splat\", status: 308 }\n"
    "      - match: \"/healthz\"\n"
    "        respond: { status: 200, body: \"ok\\n\", headers: {Content-Type: text/plain} }\n"
    "      - match: \"/ext/*\"\n"
    "        proxy: { to: \"http://127.0.0.1:7000/v1/:splat\" }\n"
    "  - routes:\n"
    "      - match: /\n"
    "        proxy: { to: local }\n"
    "tls:\n"
    "  certificates:\n"
    "    - {cert: cert.pem, key: key.pem}\n";

static void test_full_example(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(full_example);
    assert_string_equal(cfg->path, "t.yaml");
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->shutdown_timeout_ms, 20000);

    assert_int_equal(cfg->n_listens, 3);
    assert_string_equal(cfg->listens[0].addr_text, "0.0.0.0:8080");
    assert_int_equal(cfg->listens[0].addr.u.sa.sa_family, AF_INET);
    assert_int_equal(ntohs(cfg->listens[0].addr.u.in.sin_port), 8080);
    assert_false(cfg->listens[0].is_tls);
    assert_int_equal(cfg->listens[1].addr.u.sa.sa_family, AF_INET6);
    assert_int_equal(cfg->listens[1].addr.len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(cfg->listens[1].addr.u.in6.sin6_port), 8443);
    assert_true(cfg->listens[1].is_tls);
    assert_int_equal(cfg->listens[1].pos.line, 6);
    assert_int_equal(cfg->listens[2].addr.u.in.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

    assert_int_equal(cfg->limits.header_size, 32 * 1024);
    assert_int_equal(cfg->limits.headers, 50);
    assert_int_equal(cfg->limits.uri_size, 4096);
    assert_int_equal(cfg->limits.body_size, 2ull << 30);
    assert_int_equal(cfg->limits.header_timeout_ms, 5000);
    assert_int_equal(cfg->limits.body_timeout_ms, 250);
    assert_int_equal(cfg->limits.keepalive_timeout_ms, 120000);
    assert_int_equal(cfg->limits.send_timeout_ms, 3600000);

    assert_int_equal(cfg->n_trusted_proxies, 3);
    assert_int_equal(cfg->trusted_proxies[0].family, AF_INET);
    assert_int_equal(cfg->trusted_proxies[0].prefix_len, 8);
    assert_int_equal(cfg->trusted_proxies[1].family, AF_INET6);
    assert_int_equal(cfg->trusted_proxies[2].prefix_len, 32);

    assert_int_equal(cfg->log.level, PT_LOG_DEBUG);
    assert_string_equal(cfg->log.access, in_tmp("conf/access.log"));
    assert_int_equal(cfg->log.format, PT_LOG_FORMAT_JSON);

    /* api, local, then the one made for the inline URL */
    assert_int_equal(cfg->n_upstreams, 3);
    const struct pt_upstream_cfg *api = cfg->upstreams[0];
    assert_string_equal(api->name, "api");
    assert_int_equal(api->index, 0);
    assert_int_equal(api->n_targets, 2);
    assert_int_equal(api->keepalive, 16);
    assert_int_equal(api->connect_timeout_ms, 500);
    assert_int_equal(api->retries, 3);
    assert_int_equal(api->balance, PT_BALANCE_ROUND_ROBIN);
    assert_string_equal(api->targets[0].url, "http://127.0.0.1:9001");
    assert_string_equal(api->targets[0].host, "127.0.0.1");
    assert_int_equal(api->targets[0].port, 9001);
    assert_string_equal(api->targets[0].host_header, "127.0.0.1:9001");
    assert_string_equal(api->targets[0].base_path, "");
    assert_int_equal(api->targets[0].weight, 2);
    assert_int_equal(api->targets[0].addr.u.sa.sa_family, AF_INET);
    assert_int_equal(ntohs(api->targets[0].addr.u.in.sin_port), 9001);
    assert_int_equal(api->targets[0].pos.line, 30);
    assert_string_equal(api->targets[1].host, "::1");
    assert_string_equal(api->targets[1].host_header, "[::1]:9002");
    assert_string_equal(api->targets[1].base_path, "/base");
    assert_int_equal(api->targets[1].weight, 1);
    assert_int_equal(api->targets[1].addr.u.sa.sa_family, AF_INET6);
    assert_int_equal(ntohs(api->targets[1].addr.u.in6.sin6_port), 9002);
    const struct pt_upstream_cfg *local = cfg->upstreams[1];
    assert_string_equal(local->targets[0].host_header, "localhost");
    assert_int_equal(local->targets[0].port, 80);
    assert_int_equal(local->keepalive, 64);
    assert_int_equal(local->connect_timeout_ms, 2000);
    assert_int_equal(local->retries, 1);

    assert_int_equal(cfg->n_sites, 2);
    const struct pt_site_cfg *s = &cfg->sites[0];
    assert_int_equal(s->n_hosts, 3);
    assert_string_equal(s->hosts[0], "example.com");
    assert_string_equal(s->hosts[1], "*.example.com");
    assert_string_equal(s->hosts[2], "example.org:8080");
    assert_int_equal(s->n_routes, 4);

    const struct pt_route_cfg *r = &s->routes[0];
    assert_string_equal(r->match, "/api/*");
    assert_int_equal(r->match_pos.line, 44);
    assert_int_equal(r->match_pos.col, 16);
    assert_int_equal(r->pos.line, 44);
    assert_int_equal(r->methods_mask, (1u << PT_METHOD_GET) | (1u << PT_METHOD_POST));
    assert_non_null(r->methods_other);
    assert_string_equal(r->methods_other[0], "PURGE");
    assert_null(r->methods_other[1]);
    assert_int_equal(r->action, PT_ACTION_PROXY);
    assert_string_equal(r->proxy.to, "api");
    assert_ptr_equal(r->proxy.upstream, api);
    assert_string_equal(r->proxy.to_path, "");
    assert_true(r->proxy.strip_prefix);
    assert_false(r->proxy.preserve_host);
    assert_true(r->proxy.strip_credentials);
    assert_int_equal(r->proxy.timeout_ms, 45000);
    assert_int_equal(r->proxy.request.n_set, 1);
    assert_string_equal(r->proxy.request.set[0].name, "X-Api-Key");
    assert_int_equal(r->proxy.request.set[0].name_len, 9);
    assert_string_equal(r->proxy.request.set[0].value, "k1");
    assert_int_equal(r->proxy.request.n_add, 1);
    assert_int_equal(r->proxy.request.n_remove, 0);
    assert_int_equal(r->proxy.response.n_set, 0);
    assert_int_equal(r->proxy.response.n_remove, 2);
    assert_string_equal(r->proxy.response.remove[1].name, "Server");

    r = &s->routes[1];
    assert_int_equal(r->action, PT_ACTION_REDIRECT);
    assert_string_equal(r->redirect.to, "/new/:splat");
    assert_int_equal(r->redirect.status, 308);
    assert_int_equal(r->methods_mask, 0);
    assert_null(r->methods_other);

    r = &s->routes[2];
    assert_int_equal(r->action, PT_ACTION_RESPOND);
    assert_int_equal(r->respond.status, 200);
    assert_int_equal(r->respond.body_len, 3);
    assert_memory_equal(r->respond.body, "ok\n", 3);
    assert_int_equal(r->respond.n_headers, 1);
    assert_string_equal(r->respond.headers[0].name, "Content-Type");
    assert_string_equal(r->respond.headers[0].value, "text/plain");

    r = &s->routes[3];
    assert_string_equal(r->proxy.to, "http://127.0.0.1:7000/v1/:splat");
    assert_string_equal(r->proxy.to_path, "/v1/:splat");
    assert_int_equal(r->proxy.timeout_ms, 30000);
    assert_ptr_equal(r->proxy.upstream, cfg->upstreams[2]);
    assert_string_equal(cfg->upstreams[2]->name, "url:http://127.0.0.1:7000");
    assert_int_equal(cfg->upstreams[2]->index, 2);
    assert_int_equal(cfg->upstreams[2]->targets[0].port, 7000);

    assert_int_equal(cfg->sites[1].n_hosts, 0);
    assert_ptr_equal(cfg->sites[1].routes[0].proxy.upstream, local);
    pt_config_free(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE ROUTE_OK);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg->workers, ncpu < 1 ? 1 : ncpu);
    assert_int_equal(cfg->shutdown_timeout_ms, 30000);
    assert_int_equal(cfg->n_listens, 1);
    assert_int_equal(cfg->listens[0].addr.u.in.sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(cfg->limits.header_size, 16384);
    assert_int_equal(cfg->limits.headers, 100);
    assert_int_equal(cfg->limits.uri_size, 8192);
    assert_int_equal(cfg->limits.body_size, 1ull << 30);
    assert_int_equal(cfg->limits.header_timeout_ms, 10000);
    assert_int_equal(cfg->limits.body_timeout_ms, 30000);
    assert_int_equal(cfg->limits.keepalive_timeout_ms, 60000);
    assert_int_equal(cfg->limits.send_timeout_ms, 30000);
    assert_int_equal(cfg->n_trusted_proxies, 0);
    assert_int_equal(cfg->log.level, PT_LOG_INFO);
    assert_string_equal(cfg->log.access, "stdout");
    assert_int_equal(cfg->log.format, PT_LOG_FORMAT_COMBINED);
    assert_int_equal(cfg->n_upstreams, 0);
    assert_int_equal(cfg->n_sites, 1);
    assert_int_equal(cfg->sites[0].n_hosts, 0);
    assert_int_equal(cfg->sites[0].routes[0].respond.status, 200);
    assert_string_equal(cfg->sites[0].routes[0].respond.body, "");
    pt_config_free(cfg);

    cfg = load_ok("workers: auto\n" BASE "routes:\n  - {match: /, redirect: {to: /x}}\n");
    assert_int_equal(cfg->workers, ncpu < 1 ? 1 : ncpu);
    assert_int_equal(cfg->n_sites, 1);
    assert_int_equal(cfg->sites[0].routes[0].redirect.status, 301);
    assert_int_equal(cfg->sites[0].routes[0].pos.line, 5);
    pt_config_free(cfg);
}

static void test_json_input(void **state)
{
    (void)state;
    struct pt_config *cfg =
        load_ok("{\"workers\": 2, \"listen\": [{\"addr\": \"127.0.0.1:8080\", \"tls\": false}],\n"
                " \"upstreams\": {\"b\": {\"targets\": [{\"url\": \"http://127.0.0.1:9000\"}]}},\n"
                " \"sites\": [{\"hosts\": [\"a.test\"], \"routes\": [\n"
                "   {\"match\": \"/\", \"methods\": [\"GET\"], \"proxy\": {\"to\": \"b\", "
                "\"timeout\": 5}}]}]}\n");
    assert_int_equal(cfg->workers, 2);
    assert_int_equal(cfg->sites[0].routes[0].proxy.timeout_ms, 5000);
    assert_int_equal(cfg->sites[0].routes[0].methods_mask, 1u << PT_METHOD_GET);
    pt_config_free(cfg);

    const char *e = load_err("{\"listen\": [{\"addr\": \":80\"}], \"sitse\": []}");
    expect_has(e, "t.yaml:1:31: unknown key \"sitse\"; did you mean \"sites\"?");
}

static void test_inline_url_dedup(void **state)
{
    (void)state;
    struct pt_config *cfg =
        load_ok(BASE "routes:\n"
                     "  - {match: /a/*, proxy: {to: \"http://127.0.0.1:81/a/:splat\"}}\n"
                     "  - {match: /b/*, proxy: {to: \"HTTP://127.0.0.1:81\"}}\n"
                     "  - {match: /c/*, proxy: {to: \"http://127.0.0.1:82/\"}}\n"
                     "  - {match: /d/*, proxy: {to: \"http://[::1]/x\"}}\n"
                     "  - {match: /e/*, proxy: {to: \"http://[::1]:80\"}}\n");
    assert_int_equal(cfg->n_upstreams, 3);
    const struct pt_route_cfg *r = cfg->sites[0].routes;
    assert_ptr_equal(r[0].proxy.upstream, r[1].proxy.upstream);
    assert_true(r[0].proxy.upstream != r[2].proxy.upstream);
    assert_string_equal(r[0].proxy.upstream->name, "url:http://127.0.0.1:81");
    assert_string_equal(r[0].proxy.to_path, "/a/:splat");
    assert_string_equal(r[1].proxy.to_path, "");
    assert_string_equal(r[2].proxy.to_path, "/");
    assert_string_equal(r[3].proxy.upstream->name, "url:http://[::1]:80");
    assert_string_equal(r[3].proxy.upstream->targets[0].host_header, "[::1]");
    assert_ptr_equal(r[3].proxy.upstream, r[4].proxy.upstream);
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        assert_int_equal(cfg->upstreams[i]->index, i);
    pt_config_free(cfg);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    const char *e = load_err(BASE "sitse:\n  - routes: []\n");
    expect_has(e, "t.yaml:3:1: unknown key \"sitse\"; did you mean \"sites\"?");

    e = load_err(BASE "limits:\n  header_szie: 1k\n  bogus_thing_here: 1\n" ROUTE_OK);
    expect_has(e, "t.yaml:4:3: unknown key \"header_szie\"; did you mean \"header_size\"?");
    expect_has(e, "t.yaml:5:3: unknown key \"bogus_thing_here\" in limits (valid keys: ");

    e = load_err(BASE "sites:\n  - routes:\n      - match: /\n        respnd: {}\n");
    expect_has(e, "t.yaml:6:9: unknown key \"respnd\"; did you mean \"respond\"?");
    expect_has(e, "t.yaml:5:9: a route needs one of proxy, redirect, respond or static");

    e = load_err("waf: {}\n" BASE ROUTE_OK);
    expect_has(e, "t.yaml:1:1: key \"waf\" is not supported yet");
    e = load_err("cache: {memry: 1m}\n" BASE ROUTE_OK);
    expect_has(e, "t.yaml:1:9: unknown key \"memry\"; did you mean \"memory\"?");
    e = load_err("admin: {}\n" BASE ROUTE_OK);
    expect_has(e, "t.yaml:1:8: admin needs \"tokens_file\"");
}

static void test_type_errors(void **state)
{
    (void)state;
    const char *e = load_err("listen: \":8080\"\n" ROUTE_OK);
    expect_has(e, "t.yaml:1:9: expected a list for \"listen\"");

    e = load_err(BASE "limits: [1]\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:9: expected a mapping (key: value) for \"limits\"");

    e = load_err(BASE "shutdown_timeout: soon\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:19: expected a duration like 30s");

    e = load_err(BASE "limits:\n  header_size: 12q\n  headers: -1\n" ROUTE_OK);
    expect_has(e, "t.yaml:4:16: expected a size like 512, 64k, 8m or 1g");
    expect_has(e, "t.yaml:5:12: expected a whole number from 1 to 65535");

    e = load_err("listen:\n  - addr: \":8080\"\n    tls: yes\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:10: expected true or false for \"tls\" (\"yes\" is not a boolean");

    e = load_err(BASE "workers: 0\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:10: expected a whole number from 1 to 1024");
    e = load_err(BASE "workers: many\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:10: expected a number of threads or auto");

    e = load_err(BASE "log: {level: loud, format: xml}\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:14: expected error, warn, info or debug");
    expect_has(e, "t.yaml:3:28: expected combined or json");

    e = load_err(BASE "trusted_proxies: [\"10.0.0.0/33\"]\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:19: expected an IP address or a CIDR block");

    e = load_err(BASE "limits:\n  send_timeout: 99999999999999999999999s\n" ROUTE_OK);
    expect_has(e, "t.yaml:4:17: expected a duration");
    e = load_err(BASE "limits:\n  send_timeout: 5000h\n" ROUTE_OK);
    expect_has(e, "t.yaml:4:17: \"send_timeout\" is too long");
}

static void test_missing_required(void **state)
{
    (void)state;
    const char *e = load_err("workers: 1\n" ROUTE_OK);
    expect_has(e, "t.yaml:1:1: missing required key \"listen\"");

    e = load_err(BASE);
    expect_has(e, "t.yaml:1:1: missing required key \"sites\"");

    e = load_err("listen: []\n" ROUTE_OK);
    expect_has(e, "t.yaml:1:9: \"listen\" needs at least one address");

    e = load_err("listen:\n  - tls: true\n" ROUTE_OK);
    expect_has(e, "t.yaml:2:5: a listen entry needs \"addr\"");

    e = load_err(BASE "sites:\n  - routes:\n      - proxy: {to: x}\n");
    expect_has(e, "t.yaml:5:9: a route needs \"match\"");

    e = load_err(BASE "upstreams:\n  api:\n    retries: 1\n" ROUTE_OK);
    expect_has(e, "t.yaml:5:5: upstream \"api\" needs \"targets\"");

    e = load_err(BASE "upstreams:\n  api:\n    targets: []\n" ROUTE_OK);
    expect_has(e, "t.yaml:5:14: upstream \"api\" needs at least one target");

    e = load_err(BASE "sites:\n  - hosts: [a.test]\n");
    expect_has(e, "t.yaml:4:5: a site needs \"routes\"");

    e = load_err(BASE "routes:\n  - match: /\n    redirect: {status: 302}\n");
    expect_has(e, "t.yaml:5:15: redirect needs \"to\"");

    e = load_err(BASE "routes:\n  - match: \"\"\n    respond: {}\n");
    expect_has(e, "t.yaml:4:12: \"match\" must not be empty");
}

static void test_routes_errors(void **state)
{
    (void)state;
    const char *e =
        load_err(BASE "upstreams:\n  api:\n    targets: [{url: \"http://127.0.0.1:1\"}]\n"
                      "routes:\n  - match: /\n    proxy: {to: apj}\n");
    expect_has(e, "t.yaml:8:17: unknown upstream \"apj\"; did you mean \"api\"?");

    /* the upstream may be defined after the routes that use it */
    struct pt_config *cfg =
        load_ok(BASE "routes:\n  - match: /\n    proxy: {to: api}\n"
                     "upstreams:\n  api:\n    targets: [{url: \"http://127.0.0.1:1\"}]\n");
    pt_config_free(cfg);

    cfg = load_ok(BASE "routes:\n  - match: /\n    proxy: {to: \"https://127.0.0.1/\"}\n");
    assert_true(cfg->upstreams[0]->targets[0].is_https);
    assert_int_equal(cfg->upstreams[0]->targets[0].port, 443);
    assert_string_equal(cfg->upstreams[0]->name, "url:https://127.0.0.1:443");
    assert_true(cfg->upstreams[0]->tls_verify);
    pt_config_free(cfg);

    e = load_err(BASE "routes:\n  - match: /\n    proxy: {to: \"ftp://h/\"}\n");
    expect_has(e, "t.yaml:5:17: bad URL \"ftp://h/\" for \"to\"");

    e = load_err(BASE "routes:\n  - match: /\n    proxy: {to: x, timeout: 61s}\n");
    expect_has(e, "t.yaml:5:29: \"timeout\" is too long (at most 60s)");

    e = load_err(BASE "routes:\n  - match: /\n    respond: {}\n    redirect: {to: /}\n");
    expect_has(e, "t.yaml:6:5: a route takes only one of proxy, redirect, respond or static");

    e = load_err(BASE "routes:\n  - match: /\n    redirect: {to: /x, status: 300}\n");
    expect_has(e, "t.yaml:5:32: expected a whole number from 301 to 308");
    e = load_err(BASE "routes:\n  - match: /\n    redirect: {to: /x, status: 304}\n");
    expect_has(e, "t.yaml:5:32: a redirect status must be 301, 302, 303, 307 or 308");

    e = load_err(BASE "routes:\n  - match: /\n    respond: {status: 99}\n");
    expect_has(e, "t.yaml:5:23: expected a whole number from 200 to 599");

    e = load_err(BASE "routes:\n  - match: /\n    methods: [get, \"G T\"]\n    respond: {}\n");
    expect_has(e, "t.yaml:5:15: methods are case-sensitive: did you mean \"GET\"?");
    expect_has(e, "t.yaml:5:20: expected a method name");

    e = load_err(BASE "routes:\n  - match: /\n    respond:\n      headers: {\"Bad Name\": x, "
                      "Content-Length: 3, X-Ok: \"a\\r\\nb\"}\n");
    expect_has(e, "t.yaml:6:17: bad header name in \"headers\"");
    expect_has(e, "t.yaml:6:32: \"Content-Length\" cannot be set on a respond");
    expect_has(e, "t.yaml:6:57: \"X-Ok\" must not contain line breaks or NUL bytes");

    e = load_err(BASE "routes:\n  - match: /\n    proxy:\n      to: x\n      headers:\n"
                      "        request: {remove: [\"a:b\"], sett: {}}\n");
    expect_has(e, "t.yaml:8:28: bad header name in \"remove\"");
    expect_has(e, "t.yaml:8:36: unknown key \"sett\"; did you mean \"set\"?");
}

static void test_upstream_errors(void **state)
{
    (void)state;
    const char *e = load_err(BASE "upstreams:\n  a:\n    targets: [{url: \"http://127.0.0.1:1\"}]\n"
                                  "    balance: hash\n"
                                  "  b:\n    targets: [{url: \"http://127.0.0.1:1\", weight: 0}]\n"
                                  "    balance: round_robn\n"
                                  "  c:\n    targets: [{url: \"https://127.0.0.1\"}, {url: "
                                  "\"http://127.0.0.1:0\"}, {url: \"http://h/x?y\"}]\n" ROUTE_OK);
    expect_has(e, "t.yaml:6:14: balance \"hash\" needs \"hash_key\"");
    expect_has(e, "t.yaml:8:51: expected a whole number from 1 to 1000 for \"weight\"");
    expect_has(e, "t.yaml:9:14: unknown balance \"round_robn\"; did you mean \"round_robin\"?");
    expect_has(e, "t.yaml:11:49: bad URL \"http://127.0.0.1:0\" for \"url\": the port must be");
    expect_has(e, "t.yaml:11:78: a target URL cannot have a query");

    /* A host name is only marked here: upstream/dns_expand.c resolves it (test_dns.c). */
    struct pt_config *cfg = load_ok(
        BASE "upstreams:\n  a:\n    targets: [{url: \"http://no-such-host.invalid\"}]\n" ROUTE_OK);
    assert_true(cfg->upstreams[0]->targets[0].is_dns);
    assert_int_equal(cfg->upstreams[0]->targets[0].addr.u.sa.sa_family, 0);
    pt_config_free(cfg);
}

static void test_site_errors(void **state)
{
    (void)state;
    const char *e =
        load_err(BASE "sites:\n"
                      "  - hosts: [a.test, \"*.b.test\"]\n    routes: [{match: /, respond: {}}]\n"
                      "  - hosts: [A.Test, \"x*.c\", \"*\", \"d:99999\"]\n"
                      "    routes: [{match: /, respond: {}}]\n"
                      "  - routes: [{match: /, respond: {}}]\n"
                      "  - routes: [{match: /, respond: {}}]\n");
    expect_has(e, "t.yaml:6:13: host \"a.test\" is listed twice (first at line 4)");
    expect_has(e, "t.yaml:6:21: bad host \"x*.c\": a wildcard must be a leading");
    expect_has(e, "t.yaml:6:29: bad host \"*\"");
    expect_has(e, "t.yaml:6:34: bad host \"d:99999\": the port");
    expect_has(e, "t.yaml:9:5: only one site may leave out hosts (the default site is already "
                  "at line 8)");
}

static void test_listen_errors(void **state)
{
    (void)state;
    const char *e = load_err("listen:\n  - addr: \"1.2.3.4\"\n  - addr: \":0\"\n"
                             "  - addr: \"[::1:80\"\n  - addr: \"host:80\"\n"
                             "  - addr: \"0.0.0.0:80\"\n  - addr: \":80\"\n" ROUTE_OK);
    expect_has(e, "t.yaml:2:11: bad listen address \"1.2.3.4\": a port is required");
    expect_has(e, "t.yaml:3:11: bad listen address \":0\": the port must be");
    expect_has(e, "t.yaml:4:11: bad listen address \"[::1:80\": missing ']'");
    expect_has(e, "t.yaml:5:11: bad listen address \"host:80\"");
    expect_has(e, "t.yaml:7:11: address \":80\" is listed twice (first at line 6)");
}

static void test_yaml_level_errors(void **state)
{
    (void)state;
    const char *e = load_err("");
    expect_has(e, "t.yaml:1:1: the file is empty");
    e = load_err("# only a comment\n");
    expect_has(e, "t.yaml:1:1: the file is empty");
    e = load_err("---\n");
    expect_has(e, "the file is empty");

    e = load_err(BASE "workers: 2\nworkers: 3\n" ROUTE_OK);
    expect_has(e, "t.yaml:4:1: duplicate key \"workers\" (first at line 3)");

    /* a repeated section is ignored after the error (found by the fuzzer: no overflow) */
    e = load_err(BASE "listen:\n  - addr: \":1\"\n  - addr: \":2\"\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:1: duplicate key \"listen\" (first at line 1)");

    e = load_err(BASE "limits: {headers: 1\n" ROUTE_OK);
    expect_has(e, "t.yaml:");
    expect_has(e, "YAML syntax error");

    e = load_err("listen:\n  - addr: \":80\"\n   tls: true\n");
    expect_has(e, "t.yaml:3:");
    expect_has(e, "YAML syntax error");

    e = load_err("a: &x 1\nb: *x\n");
    expect_has(e, "t.yaml:1:4: YAML anchors (&x) are not supported");
    expect_has(e, "t.yaml:2:4: YAML aliases (*x) are not supported");

    e = load_err(BASE ROUTE_OK "---\nworkers: 1\n");
    expect_has(e, "t.yaml:7:1: only one YAML document is allowed");

    e = load_err("- 1\n");
    expect_has(e, "t.yaml:1:1: expected a mapping of settings");

    /* nesting deeper than the cap */
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 199);
    deep[399] = '\0';
    e = load_err(deep);
    expect_has(e, "nesting is too deep");

    /* invalid UTF-8 on line 3 */
    e = load_err(BASE "log: {access: \"\xff\xfe\"}\n");
    expect_has(e, "t.yaml:3:");
    expect_has(e, "YAML syntax error");
}

static void test_many_errors(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, BASE ROUTE_OK "limits:\n");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "  unknown%02d: 1\n", i);
    const char *e = load_err(buf);
    size_t lines = 1;
    for (const char *p = e; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 21);
    expect_has(e, "t.yaml:8:3: unknown key \"unknown00\"");
    expect_has(e, "t.yaml: too many errors, stopped after 20");

    /* several errors, reported in file order */
    e = load_err("workers: x\nlisten: 1\nsitse: 2\n");
    const char *a = strstr(e, "t.yaml:1:10:"), *b = strstr(e, "t.yaml:2:9:"),
               *c = strstr(e, "t.yaml:3:1:");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);

    /* a tiny error buffer is truncated but terminated */
    char small[16];
    struct pt_config *cfg = NULL;
    assert_true(pt_config_load_buf("t.yaml", "x: 1\n", 5, &cfg, small, sizeof(small)) < 0);
    assert_int_equal(strlen(small), 15);
}

static void test_durations(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(pt_config_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(pt_config_parse_duration("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(pt_config_parse_duration("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(pt_config_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(pt_config_parse_duration("12", &ms), 0);
    assert_int_equal(ms, 12000);
    assert_int_equal(pt_config_parse_duration("0", &ms), 0);
    assert_int_equal(ms, 0);
    static const char *const bad[] = {"",
                                      "s",
                                      "-1s",
                                      "+1s",
                                      " 1s",
                                      "1s ",
                                      "1.5s",
                                      "1d",
                                      "1m30s",
                                      "1S",
                                      "1 s",
                                      "18446744073709551616",
                                      "18446744073709551615s",
                                      "5124095576030432h",
                                      "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pt_config_parse_duration(bad[i], &ms) == 0)
            fail_msg("duration \"%s\" accepted", bad[i]);
    assert_int_equal(pt_config_parse_duration("18446744073709551615ms", &ms), 0);
    assert_int_equal(ms, UINT64_MAX);
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t b;
    assert_int_equal(pt_config_parse_size("512", &b), 0);
    assert_int_equal(b, 512);
    assert_int_equal(pt_config_parse_size("64k", &b), 0);
    assert_int_equal(b, 65536);
    assert_int_equal(pt_config_parse_size("64K", &b), 0);
    assert_int_equal(b, 65536);
    assert_int_equal(pt_config_parse_size("8m", &b), 0);
    assert_int_equal(b, 8u << 20);
    assert_int_equal(pt_config_parse_size("1G", &b), 0);
    assert_int_equal(b, 1u << 30);
    assert_int_equal(pt_config_parse_size("2t", &b), 0);
    assert_int_equal(b, 2ull << 40);
    static const char *const bad[] = {
        "", "k", "-1", "1kb", "1x", "1.5m", " 1", "16777216t", "18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pt_config_parse_size(bad[i], &b) == 0)
            fail_msg("size \"%s\" accepted", bad[i]);
    assert_int_equal(pt_config_parse_size("16777215t", &b), 0);
}

static struct sockaddr_in sin4(const char *a)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 sin6(const char *a)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
    return s;
}

static bool in(const char *cidr, const struct sockaddr *sa)
{
    struct pt_cidr c;
    assert_int_equal(pt_config_parse_cidr(cidr, &c), 0);
    return pt_cidr_contains(&c, sa);
}

static void test_cidr(void **state)
{
    (void)state;
    struct pt_cidr c;
    assert_int_equal(pt_config_parse_cidr("10.1.2.3/8", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix_len, 8);
    assert_int_equal(c.addr[0], 10);
    assert_int_equal(c.addr[1], 0); /* host bits cleared */
    assert_int_equal(pt_config_parse_cidr("::1", &c), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix_len, 128);
    assert_int_equal(pt_config_parse_cidr("::ffff:10.0.0.0/104", &c), 0);
    assert_int_equal(c.family, AF_INET); /* mapped block stored as IPv4 */
    assert_int_equal(c.prefix_len, 8);
    assert_int_equal(pt_config_parse_cidr("192.168.1.1", &c), 0);
    assert_int_equal(c.prefix_len, 32);
    static const char *const bad[] = {"",
                                      "/8",
                                      "10.0.0.0/",
                                      "10.0.0.0/33",
                                      "::/129",
                                      "10.0.0/8",
                                      "10.0.0.0/8/8",
                                      "10.0.0.0/-1",
                                      "10.0.0.0/0008",
                                      "host",
                                      "10.0.0.0/ 8",
                                      "fe80::1%eth0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pt_config_parse_cidr(bad[i], &c) == 0)
            fail_msg("cidr \"%s\" accepted", bad[i]);

    struct sockaddr_in a = sin4("10.200.3.4"), b = sin4("11.0.0.1");
    struct sockaddr_in6 m = sin6("::ffff:10.9.9.9"), v6 = sin6("2001:db8::5"),
                        other6 = sin6("2001:db9::5");
    const struct sockaddr *A = (const struct sockaddr *)&a, *B = (const struct sockaddr *)&b,
                          *M = (const struct sockaddr *)&m, *V6 = (const struct sockaddr *)&v6,
                          *O6 = (const struct sockaddr *)&other6;
    assert_true(in("10.0.0.0/8", A));
    assert_false(in("10.0.0.0/8", B));
    assert_true(in("10.0.0.0/8", M)); /* v4-mapped peer matches the IPv4 block */
    assert_false(in("10.0.0.0/8", V6));
    assert_true(in("10.200.3.4", A));
    assert_false(in("10.200.3.5", A));
    assert_true(in("10.200.0.0/13", A));
    assert_false(in("10.192.0.0/13", B));
    assert_true(in("0.0.0.0/0", B));
    assert_true(in("2001:db8::/32", V6));
    assert_false(in("2001:db8::/32", O6));
    assert_false(in("2001:db8::/32", A));
    assert_true(in("::/0", A)); /* an IPv4 peer is in ::/0 through its mapped form */
    assert_true(in("::ffff:0:0/96", A));
    assert_true(in("2001:db8::5/128", V6));
    assert_false(in("2001:db8::4/128", V6));
    assert_true(in("2001:db8::/31", V6));
    assert_true(in("::ffff:10.9.0.0/112", M));
}

static void test_file_load(void **state)
{
    (void)state;
    char path[] = "/tmp/pt_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = BASE ROUTE_OK;
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct pt_config *cfg = NULL;
    assert_int_equal(pt_config_load(path, &cfg, errbuf, sizeof(errbuf)), 0);
    assert_string_equal(cfg->path, path);
    pt_config_free(cfg);
    unlink(path);
    cfg = NULL;
    assert_true(pt_config_load(path, &cfg, errbuf, sizeof(errbuf)) < 0);
    expect_has(errbuf, "cannot open");
    assert_null(cfg);
    pt_config_free(NULL);
}

static void test_upstream_pool_keys(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(
        BASE "upstreams:\n"
             "  api:\n"
             "    targets:\n"
             "      - {url: \"http://10.0.0.1:8080\", weight: 3, max_connections: 200}\n"
             "      - {url: \"http://127.0.0.1:8081\"}\n"
             "      - {url: \"http://10.0.0.9:8080\", backup: true}\n"
             "    balance: hash\n"
             "    hash_key: \"header:X-User\"\n"
             "    health: {path: /healthz, interval: 2s, timeout: 1s, rise: 2, fall: 3, expect: "
             "\"200,204,300-399\", method: HEAD, host: h.example, body: ok, type: http}\n"
             "    outlier: {consecutive_failures: 5, include_5xx: true, base_ejection_time: 10s, "
             "max_ejection_time: 5m, max_ejection_percent: 50}\n"
             "    slow_start: 30s\n"
             "    retries: 2\n"
             "    retry_on: [connect_failure, reset, timeout, 502, 503, 504]\n"
             "    retry_budget: 20%\n"
             "    per_try_timeout: 2s\n"
             "    max_pending: 100\n"
             "    resolve_interval: 30s\n"
             "  app_v1: {targets: [{url: \"http://127.0.0.1:7001\"}]}\n"
             "  app_v2: {targets: [{url: \"http://127.0.0.1:7002\"}], balance: ewma}\n"
             "sites:\n  - routes:\n      - match: \"/app/*\"\n        proxy:\n          split:\n"
             "            - {to: app_v1, weight: 90}\n"
             "            - {to: app_v2, weight: 10, force_header: \"X-Canary: always\", "
             "force_cookie: \"canary=1\"}\n");
    const struct pt_upstream_cfg *u = cfg->upstreams[0];
    assert_int_equal(u->n_targets, 3);
    assert_int_equal(u->n_primary, 2);
    assert_int_equal(u->targets[0].weight, 3);
    assert_int_equal(u->targets[0].max_connections, 200);
    assert_false(u->targets[1].is_backup);
    assert_true(u->targets[2].is_backup);
    assert_int_equal(u->balance, PT_BALANCE_HASH);
    assert_int_equal(u->hash_key.kind, PT_HASH_KEY_HEADER);
    assert_string_equal(u->hash_key.name, "X-User");
    assert_true(u->health.is_enabled);
    assert_string_equal(u->health.path, "/healthz");
    assert_int_equal(u->health.interval_ms, 2000);
    assert_int_equal(u->health.timeout_ms, 1000);
    assert_int_equal(u->health.rise, 2);
    assert_int_equal(u->health.fall, 3);
    assert_int_equal(u->health.n_expect, 3);
    assert_int_equal(u->health.expect[1].lo, 204);
    assert_int_equal(u->health.expect[1].hi, 204);
    assert_int_equal(u->health.expect[2].lo, 300);
    assert_int_equal(u->health.expect[2].hi, 399);
    assert_string_equal(u->health.method, "HEAD");
    assert_string_equal(u->health.host, "h.example");
    assert_string_equal(u->health.body, "ok");
    assert_int_equal(u->health.type, PT_HEALTH_HTTP);
    assert_true(u->outlier.is_enabled);
    assert_int_equal(u->outlier.consecutive_failures, 5);
    assert_true(u->outlier.include_5xx);
    assert_int_equal(u->outlier.base_ejection_time_ms, 10000);
    assert_int_equal(u->outlier.max_ejection_time_ms, 300000);
    assert_int_equal(u->outlier.max_ejection_percent, 50);
    assert_int_equal(u->slow_start_ms, 30000);
    assert_int_equal(u->retries, 2);
    assert_int_equal(u->retry_on, PT_RETRY_CONNECT_FAILURE | PT_RETRY_RESET | PT_RETRY_TIMEOUT);
    assert_int_equal(u->n_retry_statuses, 3);
    assert_int_equal(u->retry_statuses[0], 502);
    assert_int_equal(u->retry_statuses[2], 504);
    assert_int_equal(u->retry_budget_pct, 20);
    assert_int_equal(u->per_try_timeout_ms, 2000);
    assert_int_equal(u->max_pending, 100);
    assert_int_equal(u->resolve_interval_ms, 30000);
    assert_int_equal(cfg->upstreams[2]->balance, PT_BALANCE_EWMA);
    const struct pt_proxy_cfg *p = &cfg->sites[0].routes[0].proxy;
    assert_int_equal(p->n_split, 2);
    assert_ptr_equal(p->split[0].upstream, cfg->upstreams[1]);
    assert_ptr_equal(p->split[1].upstream, cfg->upstreams[2]);
    assert_ptr_equal(p->upstream, cfg->upstreams[1]);
    assert_int_equal(p->split[0].weight, 90);
    assert_null(p->split[0].force_header);
    assert_string_equal(p->split[1].force_header, "X-Canary");
    assert_string_equal(p->split[1].force_header_value, "always");
    assert_string_equal(p->split[1].force_cookie, "canary");
    assert_string_equal(p->split[1].force_cookie_value, "1");
    pt_config_free(cfg);

    /* Defaults. */
    cfg = load_ok(BASE "upstreams:\n  a:\n    targets: [{url: \"http://127.0.0.1:1\"}]\n"
                       "    health: {}\n    outlier: {}\n" ROUTE_OK);
    u = cfg->upstreams[0];
    assert_int_equal(u->balance, PT_BALANCE_ROUND_ROBIN);
    assert_int_equal(u->hash_key.kind, PT_HASH_KEY_NONE);
    assert_false(u->targets[0].is_backup);
    assert_int_equal(u->targets[0].max_connections, 0);
    assert_string_equal(u->health.method, "GET");
    assert_string_equal(u->health.path, "/");
    assert_int_equal(u->health.interval_ms, 5000);
    assert_int_equal(u->health.timeout_ms, 2000);
    assert_int_equal(u->health.n_expect, 1);
    assert_int_equal(u->health.expect[0].lo, 200);
    assert_int_equal(u->health.expect[0].hi, 399);
    assert_int_equal(u->outlier.consecutive_failures, 5);
    assert_false(u->outlier.include_5xx);
    assert_int_equal(u->outlier.base_ejection_time_ms, 30000);
    assert_int_equal(u->outlier.max_ejection_time_ms, 300000);
    assert_int_equal(u->retry_on, PT_RETRY_CONNECT_FAILURE | PT_RETRY_RESET);
    assert_int_equal(u->retry_budget_pct, 20);
    assert_int_equal(u->per_try_timeout_ms, 0);
    assert_int_equal(u->slow_start_ms, 0);
    pt_config_free(cfg);
}

static void test_upstream_pool_errors(void **state)
{
    (void)state;
    const char *e = load_err(
        BASE "upstreams:\n"
             "  a:\n"
             "    targets: [{url: \"http://127.0.0.1:1\", backup: yes, max_connections: -1}]\n"
             "    hash_key: ip\n"
             "    health: {expect: \"200-99\", interval: 1s, timeout: 2s, type: udp, path: x}\n"
             "    outlier: {base_ejection_time: 10s, max_ejection_time: 5s, max_ejection_percent: "
             "101}\n"
             "    retry_on: [reset, 404, often]\n"
             "    retry_budget: 120%\n"
             "  b:\n"
             "    targets: [{url: \"http://127.0.0.1:1\"}]\n"
             "    balance: hash\n"
             "    hash_key: \"header:\"\n"
             "  c:\n"
             "    targets: [{url: \"http://127.0.0.1:1\", backup: true}]\n"
             "    balance: random\n"
             "sites:\n  - routes:\n"
             "      - match: /a\n        proxy: {to: a, split: [{to: b}]}\n"
             "      - match: /b\n        proxy: {split: [{to: bb, weight: 0}, {to: "
             "\"http://x:1\"}]}\n"
             "      - match: /c\n        proxy: {split: [{to: a, weight: 0, force_header: "
             "nocolon, force_cookie: \"a b\"}]}\n");
    expect_has(e, "t.yaml:5:51: expected true or false for \"backup\"");
    expect_has(e, "t.yaml:5:73: expected a whole number from 0 to 1000000 for \"max_connections\"");
    expect_has(e, "t.yaml:6:15: \"hash_key\" is only used with balance: hash");
    expect_has(e, "t.yaml:7:22: bad \"expect\" \"200-99\"");
    expect_has(
        e,
        "t.yaml:7:55: health \"timeout\" (2000ms) must not be longer than \"interval\" (1000ms)");
    expect_has(e, "t.yaml:7:65: expected http or tcp for \"type\"");
    expect_has(e, "t.yaml:7:76: \"path\" must start with '/'");
    expect_has(
        e, "t.yaml:8:59: \"max_ejection_time\" must not be shorter than \"base_ejection_time\"");
    expect_has(e,
               "t.yaml:8:85: expected a whole number from 0 to 100 for \"max_ejection_percent\"");
    expect_has(e,
               "t.yaml:9:23: expected connect_failure, reset, timeout or a status from 500 to 599");
    expect_has(e,
               "t.yaml:9:28: expected connect_failure, reset, timeout or a status from 500 to 599");
    expect_has(e, "t.yaml:10:19: expected a percentage from 0% to 100% for \"retry_budget\"");
    expect_has(e, "t.yaml:14:15: \"hash_key\" needs a name after \"header:\"");
    expect_has(e, "t.yaml:16:14: upstream \"c\" has only backup targets");
    expect_has(e, "t.yaml:21:24: a proxy takes \"to\" or \"split\", not both");
    expect_has(e, "t.yaml:23:30: unknown upstream \"bb\"");
    expect_has(e, "t.yaml:23:51: \"to\" in \"split\" must name an upstream, not a URL");
    expect_has(e, "t.yaml:25:24: the weights of \"split\" must not all be 0");
    expect_has(e, "t.yaml:25:58: expected \"Name: value\" for \"force_header\"");
    expect_has(e, "t.yaml:25:81: expected \"name\" or \"name=value\" for \"force_cookie\"");
}

/* ---- files, TLS, static, HSTS, upstream TLS ---------------------------------------------- */

/*
 * The tests below name files relative to the working directory, which the group setup makes a
 * fresh directory holding cert.pem, key.pem, ca.pem (contents are not parsed by the loader),
 * www/ and conf/site/.
 */
static char tmpdir[] = "/tmp/pt_test_cfgdir_XXXXXX";
static char oldcwd[4096];

static void put_file(const char *name)
{
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fputs("not parsed here\n", f);
    fclose(f);
}

static int setup_dir(void **state)
{
    (void)state;
    if (!getcwd(oldcwd, sizeof(oldcwd)) || !mkdtemp(tmpdir) || chdir(tmpdir) < 0)
        return -1;
    put_file("cert.pem");
    put_file("key.pem");
    put_file("ca.pem");
    if (mkdir("www", 0755) < 0 || mkdir("conf", 0755) < 0 || mkdir("conf/site", 0755) < 0)
        return -1;
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    unlink("cert.pem");
    unlink("key.pem");
    unlink("ca.pem");
    rmdir("www");
    rmdir("conf/site");
    rmdir("conf");
    if (chdir(oldcwd) < 0)
        return -1;
    return rmdir(tmpdir);
}

/* tmpdir + "/" + rel, in a static buffer (one at a time). */
static const char *in_tmp(const char *rel)
{
    static char buf[4200];
    snprintf(buf, sizeof(buf), "%s/%s", tmpdir, rel);
    return buf;
}

#define TLS_OK "tls:\n  certificates: [{cert: cert.pem, key: key.pem}]\n"

static void test_static_action(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE "routes:\n  - match: \"/*\"\n    static: {root: www}\n");
    const struct pt_route_cfg *r = &cfg->sites[0].routes[0];
    assert_int_equal(r->action, PT_ACTION_STATIC);
    assert_string_equal(r->files.root, in_tmp("www"));
    assert_int_equal(r->files.n_index, 1);
    assert_string_equal(r->files.index[0], "index.html");
    assert_false(r->files.spa);
    assert_true(r->files.precompressed);
    assert_null(r->files.cache_control);
    assert_int_equal(r->files.dotfiles, 0);
    assert_string_equal(r->files.not_found_page, "404.html");
    assert_int_equal(r->files.index_in_config, 0);
    assert_int_equal(cfg->n_static_routes, 1);
    pt_config_free(cfg);

    char yaml[8192];
    snprintf(yaml, sizeof(yaml),
             BASE "sites:\n"
                  "  - hosts: [a.test]\n"
                  "    routes:\n"
                  "      - match: /x\n"
                  "        respond: {}\n"
                  "      - match: /a/*\n"
                  "        static:\n"
                  "          root: www/\n"
                  "          index: [index.htm, default.html]\n"
                  "          spa: true\n"
                  "          precompressed: false\n"
                  "          cache_control: \"public, max-age=60\"\n"
                  "          dotfiles: ignore\n"
                  "          not_found_page: \"\"\n"
                  "  - routes:\n"
                  "      - match: /b/*\n"
                  "        static: {root: \"%s\", index: home.html, dotfiles: allow, "
                  "not_found_page: errors/404.html}\n",
             in_tmp("www"));
    cfg = load_ok(yaml);
    r = &cfg->sites[0].routes[1];
    assert_int_equal(r->action, PT_ACTION_STATIC);
    assert_string_equal(r->files.root, in_tmp("www/"));
    assert_int_equal(r->files.n_index, 2);
    assert_string_equal(r->files.index[0], "index.htm");
    assert_string_equal(r->files.index[1], "default.html");
    assert_true(r->files.spa);
    assert_false(r->files.precompressed);
    assert_string_equal(r->files.cache_control, "public, max-age=60");
    assert_int_equal(r->files.dotfiles, 2);
    assert_string_equal(r->files.not_found_page, "");
    assert_int_equal(r->files.index_in_config, 0);
    r = &cfg->sites[1].routes[0];
    assert_string_equal(r->files.root, in_tmp("www"));
    assert_int_equal(r->files.n_index, 1);
    assert_string_equal(r->files.index[0], "home.html");
    assert_int_equal(r->files.dotfiles, 1);
    assert_string_equal(r->files.not_found_page, "errors/404.html");
    assert_int_equal(r->files.index_in_config, 1);
    assert_int_equal(cfg->n_static_routes, 2);
    assert_int_equal(cfg->sites[0].routes[0].action, PT_ACTION_RESPOND);
    pt_config_free(cfg);

    /* relative paths are taken from the configuration file's directory */
    const char *text = BASE "routes:\n  - match: /\n    static: {root: site}\n";
    char name[4200];
    snprintf(name, sizeof(name), "%s", in_tmp("conf/c.yaml"));
    cfg = NULL;
    assert_int_equal(pt_config_load_buf(name, text, strlen(text), &cfg, errbuf, sizeof(errbuf)), 0);
    assert_string_equal(cfg->sites[0].routes[0].files.root, in_tmp("conf/site"));
    pt_config_free(cfg);
}

static void test_static_errors(void **state)
{
    (void)state;
    const char *e = load_err(BASE "routes:\n  - match: /\n    static:\n      root: nope\n");
    expect_has(e, "t.yaml:6:13: \"root\" directory \"");
    expect_has(e, "/nope\": No such file or directory");

    e = load_err(BASE "routes:\n  - match: /\n    static:\n      root: cert.pem\n");
    expect_has(e, "t.yaml:6:13: \"root\" \"");
    expect_has(e, "/cert.pem\" is not a directory");

    e = load_err(BASE "routes:\n  - match: /\n    static: {spa: true}\n");
    expect_has(e, "t.yaml:5:13: static needs \"root\"");

    e = load_err(BASE "routes:\n  - match: /\n    static:\n      root: www\n"
                      "      dotfiles: alow\n"            /* 7 */
                      "      prcompressed: true\n"        /* 8 */
                      "      index: [a/b, \"..\"]\n"      /* 9 */
                      "      not_found_page: ../x.html\n" /* 10 */
                      "      spa: yes\n"                  /* 11 */
                      "      cache_control: \"\"\n");     /* 12 */
    expect_has(e, "t.yaml:7:17: unknown dotfiles \"alow\"; did you mean \"allow\"?");
    expect_has(e, "t.yaml:8:7: unknown key \"prcompressed\"; did you mean \"precompressed\"?");
    expect_has(e, "t.yaml:9:15: expected a file name like index.html in \"index\"");
    expect_has(e, "t.yaml:9:20: expected a file name like index.html in \"index\"");
    expect_has(e, "t.yaml:10:23: \"not_found_page\" must be a file under root, without \"..\"");
    expect_has(e, "t.yaml:11:12: expected true or false for \"spa\"");
    expect_has(e, "t.yaml:12:22: \"cache_control\" must not be empty");

    e = load_err(BASE "routes:\n  - match: /\n    static: {root: www, index: []}\n"
                      "  - match: /b\n    static: {root: www, index: [a,b,c,d,e,f,g,h,i]}\n"
                      "  - match: /c\n    static: {root: www, dotfiles: never}\n");
    expect_has(e, "t.yaml:5:32: \"index\" takes 1 to 8 file names");
    expect_has(e, "t.yaml:7:32: \"index\" takes 1 to 8 file names");
    expect_has(e, "t.yaml:9:35: expected deny, allow or ignore for \"dotfiles\"");

    e = load_err(BASE "routes:\n  - match: /\n    respond: {}\n    static: {root: www}\n");
    expect_has(e, "t.yaml:6:5: a route takes only one of proxy, redirect, respond or static "
                  "(\"respond\" already at line 5)");
    e = load_err(BASE "routes:\n  - match: /\n    static: [www]\n");
    expect_has(e, "t.yaml:5:13: expected a mapping (key: value) for \"static\"");
}

static void test_tls_keys(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE ROUTE_OK);
    assert_false(cfg->tls.is_set);
    assert_int_equal(cfg->tls.n_certificates, 0);
    assert_string_equal(cfg->tls.min_version, "1.2");
    assert_null(cfg->tls.ciphers);
    assert_null(cfg->tls.ciphersuites);
    assert_true(cfg->tls.session_tickets);
    assert_int_equal(cfg->tls.ticket_rotation_ms, 12 * 3600 * 1000);
    assert_int_equal(cfg->tls.session_cache_size, 20480);
    assert_false(cfg->listens[0].is_tls);
    assert_null(cfg->listens[0].client_ca);
    assert_int_equal(cfg->listens[0].client_auth, PT_CLIENT_AUTH_NONE);
    assert_null(cfg->listens[0].client_subject_header);
    assert_null(cfg->listens[0].client_fingerprint_header);
    pt_config_free(cfg);

    cfg = load_ok("listen:\n"
                  "  - addr: \":8443\"\n"
                  "    tls: true\n"
                  "    client_ca: ca.pem\n"
                  "    client_auth: required\n"
                  "    client_cert_headers: {subject: X-Client-Subject, fingerprint: X-Client-Fp}\n"
                  "  - addr: \":8444\"\n"
                  "    tls: true\n"
                  "    client_ca: ca.pem\n"
                  "    client_auth: optional\n"
                  "  - addr: \":8445\"\n"
                  "    tls: true\n"
                  "    client_auth: none\n" ROUTE_OK "tls:\n"
                  "  certificates:\n"
                  "    - cert: cert.pem\n"
                  "      key: key.pem\n"
                  "    - {cert: ca.pem, key: key.pem}\n"
                  "  min_version: \"1.3\"\n"
                  "  ciphers: \"ECDHE+AESGCM:ECDHE+CHACHA20\"\n"
                  "  ciphersuites: TLS_AES_128_GCM_SHA256\n"
                  "  session_tickets: false\n"
                  "  ticket_rotation: 1h\n"
                  "  session_cache_size: 0\n");
    assert_true(cfg->tls.is_set);
    assert_int_equal(cfg->tls.n_certificates, 2);
    assert_string_equal(cfg->tls.certificates[0].cert, in_tmp("cert.pem"));
    assert_string_equal(cfg->tls.certificates[0].key, in_tmp("key.pem"));
    assert_int_equal(cfg->tls.certificates[0].pos.line, 20);
    assert_string_equal(cfg->tls.certificates[1].cert, in_tmp("ca.pem"));
    assert_string_equal(cfg->tls.min_version, "1.3");
    assert_string_equal(cfg->tls.ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
    assert_string_equal(cfg->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
    assert_false(cfg->tls.session_tickets);
    assert_int_equal(cfg->tls.ticket_rotation_ms, 3600 * 1000);
    assert_int_equal(cfg->tls.session_cache_size, 0);
    assert_true(cfg->listens[0].is_tls);
    assert_string_equal(cfg->listens[0].client_ca, in_tmp("ca.pem"));
    assert_int_equal(cfg->listens[0].client_auth, PT_CLIENT_AUTH_REQUIRED);
    assert_string_equal(cfg->listens[0].client_subject_header, "X-Client-Subject");
    assert_string_equal(cfg->listens[0].client_fingerprint_header, "X-Client-Fp");
    assert_int_equal(cfg->listens[1].client_auth, PT_CLIENT_AUTH_OPTIONAL);
    assert_int_equal(cfg->listens[2].client_auth, PT_CLIENT_AUTH_NONE);
    assert_null(cfg->listens[2].client_ca);
    pt_config_free(cfg);

    /* the full example's TLS listener and certificate */
    cfg = load_ok(full_example);
    assert_true(cfg->listens[1].is_tls);
    assert_int_equal(cfg->tls.n_certificates, 1);
    pt_config_free(cfg);
}

static void test_tls_errors(void **state)
{
    (void)state;
    const char *e = load_err("listen:\n  - addr: \":8443\"\n    tls: true\n" ROUTE_OK);
    expect_has(e, "t.yaml:3:10: a listener with tls: true needs certificates: add a top-level "
                  "tls: {certificates: [{cert: FILE, key: FILE}]}");
    e = load_err("listen:\n  - addr: \":8443\"\n    tls: true\n" ROUTE_OK "tls: {min_version: "
                 "\"1.3\"}\n");
    expect_has(e, "t.yaml:3:10: a listener with tls: true needs certificates");

    e = load_err(BASE ROUTE_OK "tls:\n"                             /* 7 */
                               "  certificates:\n"                  /* 8 */
                               "    - {cert: nope.pem, key: www}\n" /* 9 */
                               "    - {cert: cert.pem}\n"           /* 10 */
                               "    - cert.pem\n"                   /* 11 */
                               "  min_version: \"1.1\"\n"           /* 12 */
                               "  ticket_rotation: 30s\n"           /* 13 */
                               "  session_cache_size: -1\n"         /* 14 */
                               "  acme: {email: a@b.c}\n"           /* 15 */
                               "  sesion_tickets: true\n"           /* 16 */
                               "  ciphers: \"\"\n"                  /* 17 */
                               "  ticket_rotation: 1x\n");          /* 18 */
    expect_has(e, "t.yaml:9:14: cannot read \"cert\" file \"");
    expect_has(e, "/nope.pem\": No such file or directory");
    expect_has(e, "t.yaml:9:29: \"key\" file \"");
    expect_has(e, "/www\" is a directory");
    expect_has(e, "t.yaml:10:7: a certificate needs \"key\"");
    expect_has(e, "t.yaml:11:7: expected a mapping like {cert: site.pem, key: site.key}");
    expect_has(e, "t.yaml:12:16: expected \"1.2\" or \"1.3\" for \"min_version\"");
    expect_has(e, "t.yaml:13:20: \"ticket_rotation\" must be at least 1m");
    expect_has(e, "t.yaml:14:23: expected a whole number from 0 to 10000000");
    expect_has(e, "t.yaml:15:9: acme needs \"directory\"");
    expect_has(e, "t.yaml:15:9: acme needs \"storage\"");
    expect_has(e, "t.yaml:16:3: unknown key \"sesion_tickets\"; did you mean \"session_tickets\"?");
    expect_has(e, "t.yaml:17:12: \"ciphers\" must not be empty");
    expect_has(e, "t.yaml:18:3: duplicate key");

    e = load_err(BASE ROUTE_OK "tls:\n  certificates: []\n");
    expect_has(e, "t.yaml:8:17: \"certificates\" needs at least one {cert: FILE, key: FILE}");
    e = load_err(BASE ROUTE_OK "tls: [a]\n");
    expect_has(e, "t.yaml:7:6: expected a mapping (key: value) for \"tls\"");

    e = load_err("listen:\n"
                 "  - addr: \":8080\"\n"
                 "    client_ca: ca.pem\n" /* 3 */
                 "  - addr: \":8443\"\n"
                 "    tls: true\n"
                 "    client_auth: required\n" /* 6 */
                 "  - addr: \":8444\"\n"
                 "    tls: true\n"
                 "    client_auth: requird\n" /* 9 */
                 "    client_ca: nope.pem\n"  /* 10 */
                 "    client_cert_headers: {subject: \"X Bad\", fingerprint: X-Fp, issuer: X}\n"
                 "  - addr: \":8445\"\n"
                 "    tls: true\n"
                 "    client_cert_headers: {subject: X-A, fingerprint: x-a}\n" /* 14 */
                 "  - addr: \":8446\"\n"
                 "    tls: false\n"
                 "    client_auth: optional\n" /* 17 */
                 "    client_ca: ca.pem\n" ROUTE_OK TLS_OK);
    expect_has(e, "t.yaml:3:5: \"client_ca\" is only used on a listener with tls: true");
    expect_has(e, "t.yaml:6:18: client_auth \"required\" needs \"client_ca\"");
    expect_has(e, "t.yaml:9:18: unknown client_auth \"requird\"; did you mean \"required\"?");
    expect_has(e, "t.yaml:10:16: cannot read \"client_ca\" file \"");
    expect_has(e, "t.yaml:11:36: expected a header name like X-Client-Cert for \"subject\"");
    expect_has(e, "t.yaml:11:64: unknown key \"issuer\" in client_cert_headers");
    expect_has(e, "t.yaml:14:54: \"subject\" and \"fingerprint\" need two different header names");
    expect_has(e, "t.yaml:17:5: \"client_auth\" is only used on a listener with tls: true");
}

#define ACME_SITE                                                                                  \
    "sites:\n  - hosts: [a.example, \"*.w.example\", \"b.example:8443\"]\n"                        \
    "    routes: [{match: /, respond: {status: 200}}]\n"

static void test_tls_acme_keys(void **state)
{
    (void)state;
    /* a TLS listener with tls.acme and no certificates is fine; paths resolve; storage may be
       absent (the manager creates it) */
    struct pt_config *cfg =
        load_ok("listen:\n  - addr: \":8443\"\n    tls: true\n" ACME_SITE "tls:\n  acme:\n"
                "    email: ops@a.example\n"
                "    directory: https://acme.test:14000/dir\n"
                "    ca_root: ca.pem\n"
                "    storage: acme-store\n");
    assert_true(cfg->tls.acme.is_set);
    assert_string_equal(cfg->tls.acme.email, "ops@a.example");
    assert_string_equal(cfg->tls.acme.directory, "https://acme.test:14000/dir");
    assert_string_equal(cfg->tls.acme.ca_root, in_tmp("ca.pem"));
    assert_string_equal(cfg->tls.acme.storage, in_tmp("acme-store"));
    assert_int_equal(cfg->tls.acme.pos.line, 9);
    assert_int_equal(cfg->tls.n_certificates, 0);
    struct stat st;
    assert_int_not_equal(stat(in_tmp("acme-store"), &st), 0); /* loading creates nothing */
    pt_config_free(cfg);

    /* only directory and storage are required; an existing directory as storage */
    cfg = load_ok(BASE ACME_SITE "tls: {acme: {directory: \"https://[::1]/d\", storage: www}}\n");
    assert_null(cfg->tls.acme.email);
    assert_null(cfg->tls.acme.ca_root);
    assert_string_equal(cfg->tls.acme.storage, in_tmp("www"));
    pt_config_free(cfg);

    /* no tls.acme: is_set stays false */
    cfg = load_ok(BASE ROUTE_OK);
    assert_false(cfg->tls.acme.is_set);
    pt_config_free(cfg);

    const char *e = load_err(BASE ACME_SITE "tls:\n" /* 4 */
                                            "  acme:\n"
                                            "    email: nobody\n"                /* 6 */
                                            "    directory: http://acme.test/\n" /* 7 */
                                            "    ca_root: nope.pem\n"            /* 8 */
                                            "    storage: cert.pem\n"            /* 9 */
                                            "    stroage: x\n");                 /* 10 */
    expect_has(e, "t.yaml:8:12: expected an e-mail address like admin@example.com");
    expect_has(e, "t.yaml:9:16: \"directory\": the ACME directory must be an https:// URL");
    expect_has(e, "t.yaml:10:14: cannot read \"ca_root\" file \"");
    expect_has(e, "t.yaml:11:14: \"storage\" \"");
    expect_has(e, "cert.pem\" is not a directory");
    expect_has(e, "t.yaml:12:5: unknown key \"stroage\"; did you mean \"storage\"?");

    e = load_err(BASE ACME_SITE "tls: {acme: {directory: \"nope\", storage: no/such/dir}}\n");
    expect_has(e, "\"directory\": expected a URL like http://host:port");
    expect_has(e, "\"storage\" directory \"");
    expect_has(e, "no/such/dir\" does not exist and neither does its parent");

    e = load_err(BASE ACME_SITE "tls: {acme: [1]}\n");
    expect_has(e, "t.yaml:6:13: expected a mapping (key: value) for \"acme\"");

    /* no site with an exact host name: nothing to get a certificate for */
    e = load_err("listen:\n  - addr: \":8443\"\n    tls: true\n" ROUTE_OK
                 "tls: {acme: {directory: \"https://a.test/d\", storage: www}}\n");
    expect_has(e, "t.yaml:8:13: \"acme\" gets certificates for the sites' exact host names, but "
                  "no site has one");
    assert_null(strstr(e, "needs certificates"));
}

static void test_site_https_keys(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE ROUTE_OK);
    assert_false(cfg->sites[0].https_redirect);
    assert_false(cfg->sites[0].hsts_is_set);
    assert_int_equal(cfg->sites[0].hsts_max_age_s, 0);
    assert_false(cfg->sites[0].hsts_include_subdomains);
    assert_false(cfg->sites[0].hsts_preload);
    pt_config_free(cfg);

    cfg = load_ok(BASE "  - addr: \":8443\"\n    tls: true\n" TLS_OK "sites:\n"
                       "  - https_redirect: true\n"
                       "    hsts: {max_age: 365d, include_subdomains: true, preload: true}\n"
                       "    routes: [{match: /, respond: {}}]\n"
                       "  - hosts: [a.test]\n"
                       "    hsts: {max_age: 31536000}\n"
                       "    routes: [{match: /, respond: {}}]\n"
                       "  - hosts: [b.test]\n"
                       "    https_redirect: false\n"
                       "    hsts: {max_age: 12h, include_subdomains: false}\n"
                       "    routes: [{match: /, respond: {}}]\n"
                       "  - hosts: [c.test]\n"
                       "    hsts: {max_age: 0}\n"
                       "    routes: [{match: /, respond: {}}]\n"
                       "  - hosts: [d.test]\n"
                       "    hsts: {max_age: 2m}\n"
                       "    routes: [{match: /, respond: {}}]\n");
    const struct pt_site_cfg *s = cfg->sites;
    assert_true(s[0].https_redirect);
    assert_true(s[0].hsts_is_set);
    assert_int_equal(s[0].hsts_max_age_s, 31536000);
    assert_true(s[0].hsts_include_subdomains);
    assert_true(s[0].hsts_preload);
    assert_false(s[1].https_redirect);
    assert_int_equal(s[1].hsts_max_age_s, 31536000);
    assert_false(s[1].hsts_include_subdomains);
    assert_false(s[1].hsts_preload);
    assert_int_equal(s[2].hsts_max_age_s, 43200);
    assert_true(s[3].hsts_is_set);
    assert_int_equal(s[3].hsts_max_age_s, 0);
    assert_int_equal(s[4].hsts_max_age_s, 120);
    pt_config_free(cfg);
}

static void test_site_https_errors(void **state)
{
    (void)state;
    const char *e = load_err(BASE "sites:\n"
                                  "  - hsts: {max_age: 1y}\n" /* 4 */
                                  "    routes: [{match: /, respond: {}}]\n"
                                  "  - hosts: [b.test]\n"
                                  "    hsts: {max_age: 86400, preload: true}\n" /* 7 */
                                  "    https_redirect: yes\n"                   /* 8 */
                                  "    routes: [{match: /, respond: {}}]\n"
                                  "  - hosts: [c.test]\n"
                                  "    hsts: {include_subdomains: true}\n" /* 11 */
                                  "    routes: [{match: /, respond: {}}]\n"
                                  "  - hosts: [d.test]\n"
                                  "    hsts: {max_age: 31536000, preload: true, includeSubdomains: "
                                  "true}\n" /* 14 */
                                  "    routes: [{match: /, respond: {}}]\n"
                                  "  - hosts: [e.test]\n"
                                  "    hsts: {max_age: 500ms}\n" /* 17 */
                                  "    routes: [{match: /, respond: {}}]\n"
                                  "  - hosts: [f.test]\n"
                                  "    hsts: {max_age: 9999999999}\n" /* 20 */
                                  "    routes: [{match: /, respond: {}}]\n"
                                  "  - hosts: [g.test]\n"
                                  "    hsts: true\n" /* 23 */
                                  "    routes: [{match: /, respond: {}}]\n");
    expect_has(e, "t.yaml:4:21: expected seconds or a duration like 31536000, 12h or 365d for "
                  "\"max_age\"");
    expect_has(e, "t.yaml:7:37: hsts \"preload\" needs max_age of at least 31536000 (one year) "
                  "and include_subdomains: true");
    expect_has(e, "t.yaml:8:21: expected true or false for \"https_redirect\"");
    expect_has(e, "t.yaml:11:11: hsts needs \"max_age\"");
    expect_has(e, "t.yaml:14:40: hsts \"preload\" needs max_age of at least 31536000");
    expect_has(e, "t.yaml:14:46: unknown key \"includeSubdomains\"; did you mean "
                  "\"include_subdomains\"?");
    expect_has(e, "t.yaml:17:21: expected seconds or a duration");
    expect_has(e, "t.yaml:20:21: \"max_age\" is too long (at most 100 years)");
    expect_has(e, "t.yaml:23:11: expected a mapping (key: value) for \"hsts\"");
}

static void test_upstream_tls(void **state)
{
    (void)state;
    struct pt_config *cfg =
        load_ok(BASE "upstreams:\n"
                     "  s:\n"
                     "    targets: [{url: \"https://127.0.0.1:8443/base\"}, {url: "
                     "\"https://localhost\"}]\n"
                     "    ca_file: ca.pem\n"
                     "    tls_verify: false\n"
                     "    cert: cert.pem\n"
                     "    key: key.pem\n"
                     "  p:\n"
                     "    targets: [{url: \"http://127.0.0.1:9000\"}]\n" ROUTE_OK);
    const struct pt_upstream_cfg *u = cfg->upstreams[0];
    assert_true(u->targets[0].is_https);
    assert_int_equal(u->targets[0].port, 8443);
    assert_string_equal(u->targets[0].host_header, "127.0.0.1:8443");
    assert_string_equal(u->targets[0].base_path, "/base");
    assert_true(u->targets[1].is_https);
    assert_int_equal(u->targets[1].port, 443);
    assert_string_equal(u->targets[1].host_header, "localhost");
    assert_string_equal(u->ca_file, in_tmp("ca.pem"));
    assert_false(u->tls_verify);
    assert_string_equal(u->cert, in_tmp("cert.pem"));
    assert_string_equal(u->key, in_tmp("key.pem"));
    u = cfg->upstreams[1];
    assert_false(u->targets[0].is_https);
    assert_true(u->tls_verify);
    assert_null(u->ca_file);
    assert_null(u->cert);
    assert_null(u->key);
    pt_config_free(cfg);

    const char *e = load_err(BASE "upstreams:\n"
                                  "  a:\n"
                                  "    targets: [{url: \"http://127.0.0.1:1\"}]\n"
                                  "    ca_file: ca.pem\n" /* 6 */
                                  "  b:\n"
                                  "    targets: [{url: \"https://127.0.0.1\"}]\n"
                                  "    cert: cert.pem\n"    /* 9 */
                                  "    tls_verify: maybe\n" /* 10 */
                                  "    ca_file: nope.pem\n" /* 11 */
                                  "    tls: {}\n"           /* 12 */
                                  "    cafile: x\n"         /* 13 */
                                  "  c:\n"
                                  "    targets: [{url: \"https://127.0.0.1\"}]\n"
                                  "    key: key.pem\n" ROUTE_OK); /* 16 */
    expect_has(e, "t.yaml:6:5: \"ca_file\" is only used for https targets");
    expect_has(e, "t.yaml:9:5: \"cert\" needs \"key\"");
    expect_has(e, "t.yaml:10:17: expected true or false for \"tls_verify\"");
    expect_has(e, "t.yaml:11:14: cannot read \"ca_file\" file \"");
    expect_has(e, "t.yaml:12:5: unknown key \"tls\" in an upstream: TLS to targets comes from "
                  "https:// target URLs");
    expect_has(e, "t.yaml:13:5: unknown key \"cafile\"; did you mean \"ca_file\"?");
    expect_has(e, "t.yaml:16:5: \"key\" needs \"cert\"");
}

/* ---- the routes: shorthand, log paths, warnings, environment, error pages ----------------- */

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The top-level routes: shorthand reads the static root's _redirects and _headers, exactly as
   the same routes under sites: do. */
static void test_routes_shorthand_reads_netlify_files(void **state)
{
    (void)state;
    assert_int_equal(mkdir("nf", 0755), 0);
    write_text("nf/_redirects", "/old /new 301\n");
    write_text("nf/_headers", "/*\n  X-From-Headers: yes\n");
    static const char *const forms[] = {
        BASE "routes:\n  - match: \"/*\"\n    static: {root: nf}\n",
        BASE "sites:\n  - routes:\n      - match: \"/*\"\n        static: {root: nf}\n",
    };
    for (size_t i = 0; i < 2; i++) {
        struct pt_config *cfg = load_ok(forms[i]);
        assert_int_equal(cfg->n_sites, 1);
        const struct pt_site_cfg *site = &cfg->sites[0];
        assert_non_null(site->redirects_file);
        assert_string_equal(site->redirects_file, in_tmp("nf/_redirects"));
        assert_non_null(site->headers_file);
        assert_int_equal(site->n_nf_headers, 1);
        assert_int_equal(site->n_routes, 2);
        assert_non_null(site->routes[0].nf);
        assert_string_equal(site->routes[0].match, "/old");
        assert_int_equal(site->routes[0].action, PT_ACTION_REDIRECT);
        assert_int_equal(site->routes[1].action, PT_ACTION_STATIC);
        pt_config_free(cfg);
    }
    unlink("nf/_redirects");
    unlink("nf/_headers");
    rmdir("nf");
}

/* log.access is a path like the others: relative to the configuration file, and checked. */
static void test_log_access_path(void **state)
{
    (void)state;
    static const char text[] = BASE ROUTE_OK "log:\n  access: site/access.log\n";
    struct pt_config *cfg = NULL;
    int rc = pt_config_load_buf("conf/p.yaml", text, strlen(text), &cfg, errbuf, sizeof(errbuf));
    if (rc != 0)
        fail_msg("%s", errbuf);
    assert_string_equal(cfg->log.access, in_tmp("conf/site/access.log"));
    pt_config_free(cfg);

    cfg = load_ok(BASE ROUTE_OK "log: {access: stderr}\n");
    assert_string_equal(cfg->log.access, "stderr");
    pt_config_free(cfg);
    cfg = load_ok(BASE ROUTE_OK "log: {access: \"off\"}\n");
    assert_string_equal(cfg->log.access, "off");
    pt_config_free(cfg);

    const char *e = load_err(BASE ROUTE_OK "log:\n  access: nodir/access.log\n");
    expect_has(e, "t.yaml:8:11: the directory of \"access\" log \"");
    expect_has(e, "nodir/access.log\" does not exist");
    e = load_err(BASE ROUTE_OK "log:\n  level: info\n  access: www\n");
    expect_has(e, "t.yaml:9:11: \"access\" log \"");
    expect_has(e, "www\" is a directory");
    if (geteuid() != 0) { /* root writes anywhere */
        assert_int_equal(mkdir("ro", 0555), 0);
        e = load_err(BASE ROUTE_OK "log:\n  access: ro/a.log\n");
        expect_has(e, "t.yaml:8:11: cannot create \"access\" log \"");
        rmdir("ro");
    }
}

/* A tab in the indentation is named as such, at the tab. */
static void test_tab_indentation(void **state)
{
    (void)state;
    const char *e = load_err("listen:\n\t- addr: \":8080\"\n" ROUTE_OK);
    expect_has(e, "t.yaml:2:1: tabs are not allowed for indentation in YAML; use spaces");
    e = load_err(BASE "routes:\n  - match: /\n  \t respond: {}\n");
    expect_has(e, "t.yaml:5:3: tabs are not allowed for indentation in YAML; use spaces");
    e = load_err(BASE "routes:\n  - match: /\n    respond:\n\tstatus: 200\n");
    expect_has(e, "t.yaml:6:1: tabs are not allowed");
    /* a tab inside a line, after the key, is fine */
    pt_config_free(load_ok("listen:\n  - addr:\t\":8080\"\n" ROUTE_OK));
}

static void test_env_expansion(void **state)
{
    (void)state;
    setenv("PT_T_PORT", "8181", 1);
    setenv("PT_T_KEY", "s3cret-value", 1);
    setenv("PT_T_EMPTY", "", 1);
    unsetenv("PT_T_UNSET");
    struct pt_config *cfg =
        load_ok("listen:\n  - addr: \"127.0.0.1:${PT_T_PORT}\"\n"
                "workers: ${PT_T_UNSET:-3}\n"
                "routes:\n"
                "  - match: /a\n"
                "    respond:\n"
                "      body: \"k=${PT_T_KEY};e=${PT_T_EMPTY};d=${PT_T_EMPTY:-dflt};l=$${PT_T_KEY};"
                "$1 and $ alone\"\n"
                "      headers: {X-Key: \"${PT_T_KEY}\", X-Def: \"${PT_T_UNSET:-a:b}\"}\n"
                "  - match: \"/${PT_T_UNSET:-b}\"\n"
                "    respond: {}\n");
    assert_int_equal(ntohs(cfg->listens[0].addr.u.in.sin_port), 8181);
    assert_int_equal(cfg->workers, 3);
    const struct pt_respond_cfg *rs = &cfg->sites[0].routes[0].respond;
    assert_string_equal(rs->body, "k=s3cret-value;e=;d=dflt;l=${PT_T_KEY};$1 and $ alone");
    assert_string_equal(rs->headers[0].value, "s3cret-value");
    assert_string_equal(rs->headers[1].value, "a:b");
    assert_string_equal(cfg->sites[0].routes[1].match, "/b");
    pt_config_free(cfg);

    /* keys are never expanded */
    const char *e = load_err(BASE ROUTE_OK "${PT_T_KEY}: 1\n");
    expect_has(e, "t.yaml:7:1: unknown key \"${PT_T_KEY}\"");

    /* an unset variable without a default, and a malformed reference, at the value; the value's
       other checks stay quiet */
    e = load_err(BASE "upstreams:\n  a:\n    targets:\n      - url: \"${PT_T_UNSET}\"\n"
                      "routes:\n  - match: /\n    proxy: {to: a, timeout: \"${PT_T_UNSET\"}\n");
    expect_has(e, "t.yaml:6:14: environment variable \"PT_T_UNSET\" is not set (give a default "
                  "with ${PT_T_UNSET:-default})");
    expect_has(e, "t.yaml:9:29: bad environment reference in this value");
    assert_null(strstr(e, "bad URL"));
    assert_null(strstr(e, "duration"));
    e = load_err(BASE ROUTE_OK "log: {access: \"${1X}\"}\n");
    expect_has(e, "t.yaml:7:15: bad environment reference");
    e = load_err(BASE ROUTE_OK "log: {access: \"${PT_T_UNSET-x}\"}\n");
    expect_has(e, "t.yaml:7:15: bad environment reference");

    /* a value from the environment never appears in a message */
    setenv("PT_T_URL", "ftp://user:hunter2@host", 1);
    e = load_err(BASE "upstreams:\n  a:\n    targets:\n      - url: \"${PT_T_URL}\"\n" ROUTE_OK);
    expect_has(e, "t.yaml:6:14: bad URL \"${PT_T_URL}\"");
    assert_null(strstr(e, "hunter2"));
    setenv("PT_T_LONG", "0123456789012345678901234567890123456789012345678hunter2hunter2", 1);
    e = load_err(BASE "upstreams:\n  a:\n    targets:\n      - url: \"x${PT_T_LONG}\"\n" ROUTE_OK);
    assert_null(strstr(e, "hunter"));
    assert_null(strstr(e, "0123456789"));
    unsetenv("PT_T_URL");
    unsetenv("PT_T_LONG");
    unsetenv("PT_T_PORT");
    unsetenv("PT_T_KEY");
    unsetenv("PT_T_EMPTY");
}

static void test_top_level_acme_points_to_tls_acme(void **state)
{
    (void)state;
    const char *e = load_err(BASE ROUTE_OK "acme: {email: a@b.c}\n");
    expect_has(e, "t.yaml:7:1: key \"acme\" is not supported here; use tls.acme");
}

/* Warnings come as FILE:LINE:COL: warning: lines in the configuration, counted. */
static void test_warnings_are_positioned_and_counted(void **state)
{
    (void)state;
    assert_int_equal(mkdir("wn", 0755), 0);
    write_text("wn/_redirects", "/ok /x 301\nthis-line-is-bad\n/x%3Ay /c 301\n");
    write_text("wn/_headers", "/*\n  Server: x\n");
    struct pt_config *cfg = load_ok(BASE "upstreams:\n  s:\n    targets: [{url: "
                                         "\"https://127.0.0.1:9\"}]\n    tls_verify: false\n"
                                         "routes:\n  - match: \"/*\"\n    static: {root: wn}\n");
    assert_int_equal(cfg->n_warnings, 4);
    assert_int_equal(cfg->n_warning_lines, 4);
    /* the configuration file's own first, then the rule files in the order read */
    expect_has(cfg->warnings[0], "t.yaml:6:17: warning: tls_verify is false: the certificates "
                                 "and names of upstream \"s\"'s targets are not checked");
    char want[4300];
    snprintf(want, sizeof(want), "%s:2:1: warning: header \"Server\" ", in_tmp("wn/_headers"));
    assert_memory_equal(cfg->warnings[1], want, strlen(want));
    expect_has(cfg->warnings[1], "(skipped)");
    snprintf(want, sizeof(want), "%s:2:1: warning: missing destination", in_tmp("wn/_redirects"));
    assert_memory_equal(cfg->warnings[2], want, strlen(want));
    snprintf(want, sizeof(want), "%s:3:1: warning: \"/x%%3Ay\": ", in_tmp("wn/_redirects"));
    assert_memory_equal(cfg->warnings[3], want, strlen(want));
    expect_has(cfg->warnings[3], "(rule skipped)");
    pt_config_free(cfg);

    cfg = load_ok(BASE ROUTE_OK);
    assert_int_equal(cfg->n_warnings, 0);
    assert_null(cfg->warnings);
    pt_config_free(cfg);

    /* past 200 they are counted, not kept */
    FILE *f = fopen("wn/_redirects", "w");
    assert_non_null(f);
    for (int i = 0; i < 250; i++)
        fputs("bad\n", f);
    fclose(f);
    cfg = load_ok(BASE "routes:\n  - match: \"/*\"\n    static: {root: wn}\n");
    assert_int_equal(cfg->n_warnings, 251);
    assert_int_equal(cfg->n_warning_lines, 200);
    pt_config_free(cfg);
    unlink("wn/_redirects");
    unlink("wn/_headers");
    rmdir("wn");
}

/* https_redirect needs somewhere to send clients. */
static void test_https_redirect_needs_tls_listener(void **state)
{
    (void)state;
    const char *e = load_err(BASE "sites:\n  - https_redirect: true\n    routes: [{match: /, "
                                  "respond: {}}]\n");
    expect_has(e, "t.yaml:4:21: \"https_redirect\" needs a listener with tls: true");
    pt_config_free(load_ok(BASE "sites:\n  - https_redirect: false\n    routes: [{match: /, "
                                "respond: {}}]\n"));
}

static void test_server_header(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE ROUTE_OK);
    assert_string_equal(cfg->server_header, "portico");
    assert_string_equal(cfg->server_line, "Server: portico\r\n");
    assert_int_equal(cfg->server_line_len, strlen("Server: portico\r\n"));
    pt_config_free(cfg);
    cfg = load_ok(BASE ROUTE_OK "server_header: \"edge/2 (x)\"\n");
    assert_string_equal(cfg->server_header, "edge/2 (x)");
    assert_string_equal(cfg->server_line, "Server: edge/2 (x)\r\n");
    pt_config_free(cfg);
    static const char *const offs[] = {"off", "false", "\"off\""};
    for (size_t i = 0; i < 3; i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), BASE ROUTE_OK "server_header: %s\n", offs[i]);
        cfg = load_ok(yaml);
        assert_null(cfg->server_header);
        assert_int_equal(cfg->server_line_len, 0);
        assert_string_equal(cfg->server_line, "");
        pt_config_free(cfg);
    }
    const char *e = load_err(BASE ROUTE_OK "server_header: \"\"\n");
    expect_has(e, "t.yaml:7:16: expected off, or a header value");
    e = load_err(BASE ROUTE_OK "server_header: \"a\\x01b\"\n");
    expect_has(e, "t.yaml:7:16: expected off, or a header value");
    e = load_err(BASE ROUTE_OK "server_heder: x\n");
    expect_has(e, "t.yaml:7:1: unknown key \"server_heder\"; did you mean \"server_header\"?");
}

/* Routes after a catch-all (YAML routes, and Netlify rules at their own file) are warned. */
static void test_routes_after_catch_all_warned(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE "routes:\n"
                                         "  - match: /a\n"      /* 4 */
                                         "    respond: {}\n"    /* 5 */
                                         "  - match: \"/*\"\n"  /* 6 */
                                         "    methods: [GET]\n" /* 7 */
                                         "    respond: {}\n"    /* 8 */
                                         "  - match: \"/*\"\n"  /* 9 */
                                         "    respond: {}\n"    /* 10 */
                                         "  - match: /b\n"      /* 11 */
                                         "    respond: {}\n"    /* 12 */
                                         "  - match: \"*\"\n"   /* 13 */
                                         "    respond: {}\n");
    assert_int_equal(cfg->n_warnings, 2);
    assert_string_equal(cfg->warnings[0],
                        "t.yaml:11:5: warning: this route can never match: the route at line 9 "
                        "(match \"/*\", all methods) takes every request first");
    expect_has(cfg->warnings[1], "t.yaml:13:5: warning: this route can never match");
    pt_config_free(cfg);

    /* a catch-all in one site says nothing about another; a suffix or methods route is no
       catch-all */
    cfg = load_ok(BASE "sites:\n"
                       "  - hosts: [a.test]\n"
                       "    routes: [{match: \"/*\", respond: {}}]\n"
                       "  - routes: [{match: \"*.js\", respond: {}}, {match: /x, respond: {}}]\n");
    assert_int_equal(cfg->n_warnings, 0);
    pt_config_free(cfg);

    /* Netlify rules compiled after a YAML catch-all are warned at their line */
    assert_int_equal(mkdir("ca", 0755), 0);
    write_text("ca/_redirects", "/old /new 301\n");
    cfg = load_ok(BASE "routes:\n  - match: \"/*\"\n    respond: {}\n"
                       "  - match: \"/*\"\n    static: {root: ca}\n");
    assert_int_equal(cfg->n_warnings, 2);
    expect_has(cfg->warnings[0], "t.yaml:6:5: warning: this route can never match");
    char want[4500];
    snprintf(want, sizeof(want),
             "%s:1:1: warning: this rule can never match: the route at t.yaml:4 (match \"/*\", "
             "all methods) takes every request first",
             in_tmp("ca/_redirects"));
    assert_string_equal(cfg->warnings[1], want);
    pt_config_free(cfg);
    unlink("ca/_redirects");
    rmdir("ca");
}

static void test_error_pages(void **state)
{
    (void)state;
    assert_int_equal(mkdir("pages", 0755), 0);
    write_text("pages/404.html", "<p>gone fishing</p>\n");
    write_text("pages/502.json", "{\"down\":true}\n");
    write_text("pages/default.html", "top\n");
    struct pt_config *cfg =
        load_ok(BASE "errors:\n  404: pages/default.html\n"
                     "  503: pages/default.html\n"
                     "sites:\n"
                     "  - errors: {404: pages/404.html, \"502\": pages/502.json}\n"
                     "    routes: [{match: /, respond: {}}]\n"
                     "  - hosts: [b.test]\n"
                     "    routes: [{match: /, respond: {}}]\n");
    assert_int_equal(cfg->n_error_pages, 2);
    const struct pt_site_cfg *a = &cfg->sites[0], *b = &cfg->sites[1];
    assert_int_equal(a->n_error_pages, 2);
    const struct pt_error_page *pg = pt_config_error_page(cfg, a, 404);
    assert_non_null(pg);
    assert_string_equal(pg->path, in_tmp("pages/404.html"));
    assert_int_equal(pg->body_len, strlen("<p>gone fishing</p>\n"));
    assert_memory_equal(pg->body, "<p>gone fishing</p>\n", pg->body_len);
    pg = pt_config_error_page(cfg, a, 502);
    assert_non_null(pg);
    assert_string_equal(pg->body, "{\"down\":true}\n");
    /* the top level fills in for a site without its own page, and before a site is known */
    pg = pt_config_error_page(cfg, a, 503);
    assert_non_null(pg);
    assert_string_equal(pg->body, "top\n");
    assert_string_equal(pt_config_error_page(cfg, b, 404)->body, "top\n");
    assert_string_equal(pt_config_error_page(cfg, NULL, 404)->body, "top\n");
    assert_null(pt_config_error_page(cfg, b, 502));
    assert_null(pt_config_error_page(cfg, NULL, 400));
    pt_config_free(cfg);

    FILE *f = fopen("pages/big.html", "w");
    assert_non_null(f);
    assert_int_equal(fseek(f, PT_ERROR_PAGE_MAX, SEEK_SET), 0);
    fputc('x', f);
    fclose(f);
    const char *e = load_err(BASE ROUTE_OK "errors:\n"
                                           "  404: pages/nope.html\n" /* 8 */
                                           "  500: pages\n"           /* 9 */
                                           "  503: pages/big.html\n"  /* 10 */
                                           "  302: pages/404.html\n"  /* 11 */
                                           "  4xx: pages/404.html\n"  /* 12 */
                                           "  504: \"\"\n"            /* 13 */
                                           "  502: [a]\n");           /* 14 */
    expect_has(e, "t.yaml:8:8: cannot read error page \"");
    expect_has(e, "nope.html\": No such file or directory");
    expect_has(e, "t.yaml:9:8: cannot use error page \"");
    expect_has(e, "pages\": not a regular file");
    expect_has(e, "t.yaml:10:8: cannot use error page \"");
    expect_has(e, "big.html\": larger than 1 MiB");
    expect_has(e, "t.yaml:11:3: expected an HTTP status from 400 to 599 as a key of \"errors\"");
    expect_has(e, "t.yaml:12:3: expected an HTTP status from 400 to 599");
    expect_has(e, "t.yaml:13:8: \"errors\" must name a file");
    expect_has(e, "t.yaml:14:8: expected a string for \"errors\"");
    e = load_err(BASE ROUTE_OK "errors: [pages/404.html]\n");
    expect_has(e, "t.yaml:7:9: expected a mapping (key: value) for \"errors\"");
    unlink("pages/big.html");
    unlink("pages/404.html");
    unlink("pages/502.json");
    unlink("pages/default.html");
    rmdir("pages");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_json_input),
        cmocka_unit_test(test_inline_url_dedup),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_routes_errors),
        cmocka_unit_test(test_upstream_errors),
        cmocka_unit_test(test_upstream_pool_keys),
        cmocka_unit_test(test_upstream_pool_errors),
        cmocka_unit_test(test_site_errors),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_yaml_level_errors),
        cmocka_unit_test(test_many_errors),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_file_load),
        cmocka_unit_test(test_static_action),
        cmocka_unit_test(test_static_errors),
        cmocka_unit_test(test_tls_keys),
        cmocka_unit_test(test_tls_errors),
        cmocka_unit_test(test_tls_acme_keys),
        cmocka_unit_test(test_site_https_keys),
        cmocka_unit_test(test_site_https_errors),
        cmocka_unit_test(test_upstream_tls),
        cmocka_unit_test(test_routes_shorthand_reads_netlify_files),
        cmocka_unit_test(test_log_access_path),
        cmocka_unit_test(test_tab_indentation),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_top_level_acme_points_to_tls_acme),
        cmocka_unit_test(test_warnings_are_positioned_and_counted),
        cmocka_unit_test(test_https_redirect_needs_tls_listener),
        cmocka_unit_test(test_server_header),
        cmocka_unit_test(test_routes_after_catch_all_warned),
        cmocka_unit_test(test_error_pages),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
