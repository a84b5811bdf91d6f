/*
 * test_ssrf.c - the SSRF guard (src/upstream/ssrf.c): every forbidden range in both families,
 * with the addresses just inside and just outside its edges; the IPv6 forms that embed an IPv4
 * address (mapped, translated, NAT64, 6to4) and the ranges refused whole (IPv4-compatible,
 * local-use NAT64, Teredo); the allow-list; the log text; the write-time URL check; and the
 * upstream keys ssrf_guard and allow_private (src/config/config_upstreams.c), bad CIDRs
 * included.
 */
#include <errno.h>
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
#include <sys/socket.h>

#include "config/config.h"
#include "upstream/ssrf.h"

union addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

static union addr mk(const char *text)
{
    union addr u;
    memset(&u, 0, sizeof(u));
    if (inet_pton(AF_INET, text, &u.in.sin_addr) == 1) {
        u.in.sin_family = AF_INET;
        u.in.sin_port = htons(443);
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &u.in6.sin6_addr), 1);
        u.in6.sin6_family = AF_INET6;
        u.in6.sin6_port = htons(443);
    }
    return u;
}

struct case_ {
    const char *addr;
    const char *why;  /* NULL: allowed; else a substring of the reason */
    const char *form; /* NULL, or the embedding named */
};

static const struct case_ cases[] = {
    /* 0.0.0.0/8 */
    {"0.0.0.0", "this network", NULL},
    {"0.255.255.255", "this network", NULL},
    {"1.0.0.0", NULL, NULL},
    /* 10.0.0.0/8 */
    {"9.255.255.255", NULL, NULL},
    {"10.0.0.0", "RFC 1918", NULL},
    {"10.0.0.5", "a private address (RFC 1918)", NULL},
    {"10.255.255.255", "RFC 1918", NULL},
    {"11.0.0.0", NULL, NULL},
    /* 100.64.0.0/10 */
    {"100.63.255.255", NULL, NULL},
    {"100.64.0.0", "RFC 6598", NULL},
    {"100.100.100.200", "RFC 6598", NULL},
    {"100.127.255.255", "RFC 6598", NULL},
    {"100.128.0.0", NULL, NULL},
    /* 127.0.0.0/8 */
    {"126.255.255.255", NULL, NULL},
    {"127.0.0.0", "loopback", NULL},
    {"127.0.0.1", "a loopback address", NULL},
    {"127.255.255.255", "loopback", NULL},
    {"128.0.0.0", NULL, NULL},
    /* 169.254.0.0/16 and the metadata address */
    {"169.253.255.255", NULL, NULL},
    {"169.254.0.0", "link-local", NULL},
    {"169.254.169.253", "link-local", NULL},
    {"169.254.169.254", "the cloud metadata address", NULL},
    {"169.254.169.255", "link-local", NULL},
    {"169.254.255.255", "link-local", NULL},
    {"169.255.0.0", NULL, NULL},
    /* 172.16.0.0/12 */
    {"172.15.255.255", NULL, NULL},
    {"172.16.0.0", "RFC 1918", NULL},
    {"172.31.255.255", "RFC 1918", NULL},
    {"172.32.0.0", NULL, NULL},
    /* 192.168.0.0/16 */
    {"192.167.255.255", NULL, NULL},
    {"192.168.0.0", "RFC 1918", NULL},
    {"192.168.255.255", "RFC 1918", NULL},
    {"192.169.0.0", NULL, NULL},
    /* 224.0.0.0/4, 240.0.0.0/4, broadcast */
    {"223.255.255.255", NULL, NULL},
    {"224.0.0.0", "multicast", NULL},
    {"239.255.255.255", "multicast", NULL},
    {"240.0.0.0", "reserved", NULL},
    {"255.255.255.254", "reserved", NULL},
    {"255.255.255.255", "the broadcast address", NULL},
    /* public and documentation addresses stay allowed */
    {"8.8.8.8", NULL, NULL},
    {"192.0.2.1", NULL, NULL},
    {"203.0.113.7", NULL, NULL},
    /* IPv6: unspecified, loopback, IPv4-compatible */
    {"::", "unspecified", NULL},
    {"::1", "a loopback address", NULL},
    {"::2", "IPv4-compatible", NULL},
    {"::8.8.8.8", "IPv4-compatible", NULL},
    {"::ffff:ffff", "IPv4-compatible", NULL},
    {"::1:0:0", NULL, NULL},
    /* IPv4-mapped: judged by the IPv4 address */
    {"::ffff:127.0.0.1", "loopback", "IPv4-mapped"},
    {"::ffff:10.0.0.5", "RFC 1918", "IPv4-mapped"},
    {"::ffff:169.254.169.254", "metadata", "IPv4-mapped"},
    {"::ffff:0.0.0.0", "this network", "IPv4-mapped"},
    {"::ffff:8.8.8.8", NULL, NULL},
    {"::ffff:11.0.0.0", NULL, NULL},
    {"::fffe:a00:5", NULL, NULL}, /* neither mapped nor compatible */
    /* IPv4-translated (SIIT) */
    {"::ffff:0:a00:5", "RFC 1918", "IPv4-translated"},
    {"::ffff:0:808:808", NULL, NULL},
    /* NAT64, well-known prefix and local-use */
    {"64:ff9b::127.0.0.1", "loopback", "NAT64"},
    {"64:ff9b::192.168.1.1", "RFC 1918", "NAT64"},
    {"64:ff9b::8.8.8.8", NULL, NULL},
    {"64:ff9b:0:0:0:1::", NULL, NULL}, /* outside the /96, inside no other range */
    {"64:ff9b:1::", "local-use NAT64", NULL},
    {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use NAT64", NULL},
    {"64:ff9b:2::", NULL, NULL},
    /* 6to4: the IPv4 address is bytes 2..5 */
    {"2002:7f00:1::", "loopback", "6to4"},
    {"2002:a9fe:a9fe::1", "metadata", "6to4"},
    {"2002:808:808::1", NULL, NULL},
    /* Teredo, refused whole */
    {"2001::", "Teredo", NULL},
    {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "Teredo", NULL},
    {"2001:1::", NULL, NULL},
    {"2001:db8::1", NULL, NULL},
    {"2606:4700::1111", NULL, NULL},
    /* fc00::/7 */
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL},
    {"fc00::", "unique local", NULL},
    {"fd00:ec2::254", "unique local", NULL},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local", NULL},
    {"fe00::", NULL, NULL},
    /* fe80::/10, fec0::/10 */
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL},
    {"fe80::", "link-local", NULL},
    {"fe80::1", "link-local", NULL},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local", NULL},
    {"fec0::", "site-local", NULL},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local", NULL},
    /* ff00::/8 */
    {"ff00::", "multicast", NULL},
    {"ff02::1", "multicast", NULL},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast", NULL},
};

static void test_ranges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct case_ *c = &cases[i];
        union addr u = mk(c->addr);
        struct pt_ssrf_verdict v = pt_ssrf_classify(&u.sa);
        struct pt_ssrf_verdict w = pt_ssrf_check(&u.sa, NULL, 0);
        if (!c->why) {
            if (v.why)
                fail_msg("%s: refused (%s), want allowed", c->addr, v.why);
        } else if (!v.why || !strstr(v.why, c->why)) {
            fail_msg("%s: got \"%s\", want \"%s\"", c->addr, v.why ? v.why : "(allowed)", c->why);
        }
        if ((c->form == NULL) != (v.form == NULL) || (c->form && strcmp(c->form, v.form) != 0))
            fail_msg("%s: form \"%s\", want \"%s\"", c->addr, v.form ? v.form : "(none)",
                     c->form ? c->form : "(none)");
        assert_true(v.why == w.why && v.form == w.form);
    }
}

static void test_other_family_refused(void **state)
{
    (void)state;
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    assert_non_null(pt_ssrf_classify(&sa).why);
    struct pt_cidr all;
    assert_int_equal(pt_config_parse_cidr("::/0", &all), 0);
    assert_non_null(pt_ssrf_check(&sa, &all, 1).why);
}

static struct pt_cidr cidr(const char *s)
{
    struct pt_cidr c;
    assert_int_equal(pt_config_parse_cidr(s, &c), 0);
    return c;
}

static void test_allow_list(void **state)
{
    (void)state;
    struct pt_cidr allow[] = {cidr("127.0.0.0/8"), cidr("10.1.0.0/16"), cidr("fd00::/8")};
    struct {
        const char *addr;
        bool allowed;
    } t[] = {
        {"127.0.0.1", true},
        {"127.255.255.255", true},
        {"::ffff:127.0.0.1", true}, /* the kernel connects to 127.0.0.1 */
        {"10.1.0.0", true},
        {"10.1.255.255", true},
        {"10.0.255.255", false},
        {"10.2.0.0", false},
        {"fd12::1", true},
        {"fc00::1", false},
        {"::1", false},                /* IPv6 loopback is not 127.0.0.0/8 */
        {"64:ff9b::127.0.0.1", false}, /* NAT64 reaches another host's loopback */
        {"169.254.169.254", false},
        {"192.168.0.1", false},
        {"8.8.8.8", true},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        union addr u = mk(t[i].addr);
        struct pt_ssrf_verdict v = pt_ssrf_check(&u.sa, allow, 3);
        if ((v.why == NULL) != t[i].allowed)
            fail_msg("%s: %s, want %s", t[i].addr, v.why ? v.why : "allowed",
                     t[i].allowed ? "allowed" : "refused");
    }
    /* Nothing allowed: the same addresses are refused. */
    union addr u = mk("127.0.0.1");
    assert_non_null(pt_ssrf_check(&u.sa, allow, 0).why);
    /* A mapped allow entry is stored as IPv4 and lets the IPv4 address through. */
    struct pt_cidr mapped = cidr("::ffff:10.9.0.0/112");
    u = mk("10.9.3.4");
    assert_null(pt_ssrf_check(&u.sa, &mapped, 1).why);
    u = mk("10.10.0.0");
    assert_non_null(pt_ssrf_check(&u.sa, &mapped, 1).why);
}

static void test_explain(void **state)
{
    (void)state;
    char out[160];
    union addr u = mk("10.0.0.5");
    struct pt_ssrf_verdict v = pt_ssrf_check(&u.sa, NULL, 0);
    pt_ssrf_explain(&u.sa, v, out, sizeof(out));
    assert_string_equal(out, "10.0.0.5 is a private address (RFC 1918)");
    u = mk("::ffff:127.0.0.1");
    v = pt_ssrf_check(&u.sa, NULL, 0);
    pt_ssrf_explain(&u.sa, v, out, sizeof(out));
    assert_string_equal(out, "::ffff:127.0.0.1 is a loopback address, in IPv4-mapped form");
    u = mk("fe80::1");
    v = pt_ssrf_check(&u.sa, NULL, 0);
    size_t n = pt_ssrf_explain(&u.sa, v, out, 12);
    assert_int_equal(n, 11);
    assert_int_equal(strlen(out), 11);
}

struct url_case {
    const char *url;
    const char *err; /* NULL: accepted; else a substring of the message */
};

static const struct url_case url_cases[] = {
    {"https://api.example.com", NULL},
    {"https://api.example.com/", NULL},
    {"HTTPS://API.Example.com:8443/v1/x?y=1#z", NULL},
    {"https://example.com.", NULL},
    {"https://8.8.8.8/", NULL},
    {"https://[2606:4700::1111]:443/x", NULL},
    {"https://xn--bcher-kva.example/", NULL},
    {"https://a-b.c-d.example", NULL},
    {"http://api.example.com/", "https://"},
    {"ftp://x.example", "https://"},
    {"api.example.com", "https://"},
    {"https:/api.example.com", "https://"},
    {"", "https://"},
    {"https://", "no host"},
    {"https:///x", "no host"},
    {"https://:443/", "no host"},
    {"https://user@api.example.com/", "user information"},
    {"https://user:pw@api.example.com/", "user information"},
    {"https://evil.example@127.0.0.1/", "user information"},
    {"https://api.example.com:0/", "port"},
    {"https://api.example.com:65536/", "port"},
    {"https://api.example.com:/", "port"},
    {"https://api.example.com:12a/", "port"},
    {"https://api.example.com:443:1/", "port"},
    {"https://api.example.com:65535/", NULL},
    {"https://api example.com/", "space"},
    {"https://api.example.com/\r\nHost: x", "control"},
    {"https://127.0.0.1/", "127.0.0.1 is a loopback address"},
    {"https://10.0.0.5:8443/", "10.0.0.5 is a private address (RFC 1918)"},
    {"https://169.254.169.254/latest/meta-data/", "metadata"},
    {"https://0.0.0.0/", "this network"},
    {"https://[::1]/", "loopback"},
    {"https://[::ffff:127.0.0.1]/", "IPv4-mapped"},
    {"https://[::ffff:7f00:1]/", "IPv4-mapped"},
    {"https://[fe80::1]/", "link-local"},
    {"https://[fe80::1%25eth0]/", "not a valid IPv6"},
    {"https://[fd00::1]/", "unique local"},
    {"https://[::1/", "unclosed"},
    {"https://[::1]x/", "after its IPv6"},
    {"https://[example.com]/", "not a valid IPv6"},
    {"https://localhost/", "loopback"},
    {"https://LOCALHOST./", "loopback"},
    {"https://api.localhost/", "loopback"},
    {"https://notlocalhost/", NULL},
    {"https://127.1/", "not a valid host name"},
    {"https://2130706433/", "not a valid host name"},
    {"https://0x7f000001/", "not a valid host name"},
    {"https://0x7f.0.0.1/", "not a valid host name"},
    {"https://0177.0.0.1/", "not a valid host name"},
    {"https://127.0.0.1.nip.io/", NULL}, /* a name: the connect-time check answers */
    {"https://%31%32%37.0.0.1/", "not a valid host name"},
    {"https://-a.example/", "not a valid host name"},
    {"https://a-.example/", "not a valid host name"},
    {"https://a..example/", "not a valid host name"},
    {"https://a_b.example/", "not a valid host name"},
    {"https://\xc3\xa9.example/", "not a valid host name"},
};

static void test_url_check(void **state)
{
    (void)state;
    char msg[256];
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const struct url_case *c = &url_cases[i];
        msg[0] = '\0';
        int rc = pt_ssrf_check_url(c->url, strlen(c->url), NULL, 0, msg, sizeof(msg));
        if (!c->err && rc != 0)
            fail_msg("%s: refused (%s), want accepted", c->url, msg);
        if (c->err && (rc != -EINVAL || !strstr(msg, c->err)))
            fail_msg("%s: rc %d \"%s\", want \"%s\"", c->url, rc, msg, c->err);
    }
}

static void test_url_check_labels(void **state)
{
    (void)state;
    char url[400], msg[256];
    char label[70];
    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(url, sizeof(url), "https://%s.example/", label);
    assert_int_equal(pt_ssrf_check_url(url, strlen(url), NULL, 0, msg, sizeof(msg)), 0);
    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(url, sizeof(url), "https://%s.example/", label);
    assert_int_equal(pt_ssrf_check_url(url, strlen(url), NULL, 0, msg, sizeof(msg)), -EINVAL);
    /* 253 bytes of name at most */
    char name[300];
    size_t n = 0;
    while (n + 4 <= 252) {
        memcpy(name + n, "abc.", 4);
        n += 4;
    }
    memcpy(name + n, "x", 1); /* 253 */
    name[n + 1] = '\0';
    snprintf(url, sizeof(url), "https://%s/", name);
    assert_int_equal(pt_ssrf_check_url(url, strlen(url), NULL, 0, msg, sizeof(msg)), 0);
    name[n + 1] = 'y';
    name[n + 2] = '\0';
    snprintf(url, sizeof(url), "https://%s/", name);
    assert_int_equal(pt_ssrf_check_url(url, strlen(url), NULL, 0, msg, sizeof(msg)), -EINVAL);
    /* len bounds the URL: what follows is not read */
    const char *s = "https://api.example.com/\n";
    assert_int_equal(pt_ssrf_check_url(s, strlen(s) - 1, NULL, 0, msg, sizeof(msg)), 0);
    /* a message buffer of 0 bytes is fine */
    assert_int_equal(pt_ssrf_check_url("http://x", 8, NULL, 0, NULL, 0), -EINVAL);
}

static void test_url_check_allow(void **state)
{
    (void)state;
    struct pt_cidr allow[] = {cidr("127.0.0.0/8"), cidr("fd00::/8")};
    char msg[256];
    const char *ok[] = {"https://127.0.0.1:8443/", "https://localhost/", "https://[fd00::5]/",
                        "https://[::ffff:127.0.0.2]/"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (pt_ssrf_check_url(ok[i], strlen(ok[i]), allow, 2, msg, sizeof(msg)) != 0)
            fail_msg("%s: %s", ok[i], msg);
    const char *bad[] = {"https://10.0.0.1/", "https://[::1]/", "http://127.0.0.1/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pt_ssrf_check_url(bad[i], strlen(bad[i]), allow, 2, msg, sizeof(msg)),
                         -EINVAL);
}

/* ---- the configuration keys ---- */

static char errbuf[8192];

#define CFG_HEAD                                                                                   \
    "listen:\n  - addr: \":8080\"\n"                                                               \
    "upstreams:\n  api:\n    targets: [{url: \"http://127.0.0.1:9000\"}]\n"
#define CFG_ROUTE "routes:\n  - match: /*\n    proxy: {to: api}\n"

static void test_config_keys(void **state)
{
    (void)state;
    struct pt_config *cfg = NULL;
    const char *y = CFG_HEAD CFG_ROUTE;
    assert_int_equal(pt_config_load_buf("t.yaml", y, strlen(y), &cfg, errbuf, sizeof(errbuf)), 0);
    assert_false(cfg->upstreams[0]->ssrf_guard); /* YAML targets stay trusted */
    assert_int_equal(cfg->upstreams[0]->n_allow_private, 0);
    pt_config_free(cfg);

    y = CFG_HEAD "    ssrf_guard: true\n"
                 "    allow_private: [\"127.0.0.0/8\", \"fd00::/8\", \"10.1.2.3\"]\n" CFG_ROUTE;
    cfg = NULL;
    int rc = pt_config_load_buf("t.yaml", y, strlen(y), &cfg, errbuf, sizeof(errbuf));
    if (rc != 0)
        fail_msg("%s", errbuf);
    const struct pt_upstream_cfg *u = cfg->upstreams[0];
    assert_true(u->ssrf_guard);
    assert_int_equal(u->n_allow_private, 3);
    assert_int_equal(u->allow_private[0].family, AF_INET);
    assert_int_equal(u->allow_private[0].prefix_len, 8);
    assert_int_equal(u->allow_private[1].family, AF_INET6);
    assert_int_equal(u->allow_private[2].prefix_len, 32);
    union addr a = mk("127.0.0.1");
    assert_null(pt_ssrf_check(&a.sa, u->allow_private, u->n_allow_private).why);
    pt_config_free(cfg);
}

static void test_config_bad_allow_private(void **state)
{
    (void)state;
    const char *bad[] = {
        "    allow_private: [\"10.0.0.0/33\"]\n", "    allow_private: [\"10.0.0/8\"]\n",
        "    allow_private: [\"127.1/8\"]\n",     "    allow_private: [\"fe80::1%eth0\"]\n",
        "    allow_private: [\"10.0.0.0/\"]\n",   "    allow_private: [\"10.0.0.0/8x\"]\n",
        "    allow_private: [\"::/129\"]\n",      "    allow_private: [\"\"]\n",
        "    allow_private: [\"10.1.2.3/8\"]\n",  "    allow_private: [\"fd00::1/8\"]\n",
        "    allow_private: \"127.0.0.0/8\"\n",   "    ssrf_guard: maybe\n",
        "    allow_private: [\"localhost\"]\n",
    };
    const char *want[] = {
        "expected a CIDR", "expected a CIDR", "expected a CIDR", "expected a CIDR",
        "expected a CIDR", "expected a CIDR", "expected a CIDR", "expected a CIDR",
        "bits set",        "bits set",        "allow_private",   "ssrf_guard",
        "expected a CIDR",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char y[1024];
        snprintf(y, sizeof(y), "%s    ssrf_guard: true\n%s%s", CFG_HEAD,
                 strstr(bad[i], "ssrf_guard") ? "" : bad[i], CFG_ROUTE);
        if (strstr(bad[i], "ssrf_guard"))
            snprintf(y, sizeof(y), "%s%s%s", CFG_HEAD, bad[i], CFG_ROUTE);
        struct pt_config *cfg = NULL;
        int rc = pt_config_load_buf("t.yaml", y, strlen(y), &cfg, errbuf, sizeof(errbuf));
        if (rc == 0 || !strstr(errbuf, want[i]))
            fail_msg("case %zu (%s): rc %d, errors: %s", i, bad[i], rc, errbuf);
        assert_null(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_other_family_refused),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_url_check_labels),
        cmocka_unit_test(test_url_check_allow),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_config_bad_allow_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
