/*
 * test_guard_ip.c - IP rules (src/guard/ip.c): CIDRs compiled into sorted, merged ranges
 * (overlapping, nested and adjacent blocks), the edges /0, /32 and /128 with the addresses just
 * inside and outside, IPv4-mapped IPv6 on both sides, 100,000 entries, and the verdicts of allow,
 * deny and country lists.
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
#include "guard/ip.h"

static struct pt_ip_addr addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    struct pt_ip_addr a;
    assert_int_equal(pt_ip_addr_from_sockaddr((struct sockaddr *)&ss, &a), 0);
    return a;
}

/* Builds s from a NULL-terminated list of CIDR texts. */
static void build(struct pt_ip_set *s, const char *const *texts)
{
    struct pt_cidr v[32];
    size_t n = 0;
    for (; texts[n]; n++) {
        assert_true(n < 32);
        assert_int_equal(pt_config_parse_cidr(texts[n], &v[n]), 0);
    }
    assert_int_equal(pt_ip_set_build(s, v, n), 0);
}

static bool has(const struct pt_ip_set *s, const char *text)
{
    struct pt_ip_addr a = addr(text);
    return pt_ip_set_contains(s, &a);
}

static void test_merge_overlapping(void **state)
{
    (void)state;
    struct pt_ip_set s;
    build(&s, (const char *const[]){"10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "192.168.1.0/24",
                                    "192.168.0.0/24", "192.168.3.0/24", "1.2.3.4", NULL});
    /* 10/8 swallows 10.1/16 and touches 11/8; 192.168.0/24 and .1/24 are adjacent; .3 is not. */
    assert_int_equal(s.n4, 4);
    assert_int_equal(s.v4[0].lo, 0x01020304u);
    assert_int_equal(s.v4[0].hi, 0x01020304u);
    assert_int_equal(s.v4[1].lo, 0x0a000000u);
    assert_int_equal(s.v4[1].hi, 0x0bffffffu);
    assert_int_equal(s.v4[2].lo, 0xc0a80000u);
    assert_int_equal(s.v4[2].hi, 0xc0a801ffu);
    assert_int_equal(s.v4[3].lo, 0xc0a80300u);
    assert_int_equal(s.n6, 0);
    assert_true(has(&s, "10.255.0.1"));
    assert_true(has(&s, "11.255.255.255"));
    assert_false(has(&s, "12.0.0.0"));
    assert_false(has(&s, "9.255.255.255"));
    assert_true(has(&s, "192.168.1.255"));
    assert_false(has(&s, "192.168.2.0"));
    assert_true(has(&s, "192.168.3.7"));
    assert_true(has(&s, "1.2.3.4"));
    assert_false(has(&s, "1.2.3.5"));
    assert_false(has(&s, "1.2.3.3"));
    assert_false(has(&s, "0.0.0.0"));
    assert_false(has(&s, "255.255.255.255"));
    assert_false(has(&s, "2001:db8::1"));
    pt_ip_set_free(&s);
}

static void test_edges(void **state)
{
    (void)state;
    struct pt_ip_set s;
    build(&s, (const char *const[]){"0.0.0.0/0", NULL});
    assert_true(has(&s, "0.0.0.0"));
    assert_true(has(&s, "255.255.255.255"));
    assert_false(has(&s, "::1"));
    pt_ip_set_free(&s);

    build(&s, (const char *const[]){"::/0", NULL});
    assert_true(has(&s, "::"));
    assert_true(has(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    /* ::/0 covers the mapped block, hence every IPv4 client. */
    assert_true(has(&s, "10.0.0.1"));
    pt_ip_set_free(&s);

    build(&s, (const char *const[]){"2001:db8::1/128", "2001:db8:0:1::/64", "fe80::/10", NULL});
    assert_true(has(&s, "2001:db8::1"));
    assert_false(has(&s, "2001:db8::"));
    assert_false(has(&s, "2001:db8::2"));
    assert_true(has(&s, "2001:db8:0:1::"));
    assert_true(has(&s, "2001:db8:0:1:ffff:ffff:ffff:ffff"));
    assert_false(has(&s, "2001:db8:0:2::"));
    assert_false(has(&s, "2001:db8:0:0:ffff:ffff:ffff:ffff"));
    assert_true(has(&s, "febf:ffff::1"));
    assert_false(has(&s, "fec0::"));
    assert_false(has(&s, "1.2.3.4"));
    assert_int_equal(s.n6, 3);
    pt_ip_set_free(&s);

    /* Adjacent IPv6 blocks across the 64-bit halves merge into one. */
    build(&s, (const char *const[]){"2001:db8::/64", "2001:db8:0:1::/64", "ffff::/16", NULL});
    assert_int_equal(s.n6, 2);
    assert_true(has(&s, "2001:db8:0:1::5"));
    assert_true(has(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    pt_ip_set_free(&s);

    build(&s, (const char *const[]){"255.255.255.255/32", "255.255.255.0/24", NULL});
    assert_int_equal(s.n4, 1);
    assert_true(has(&s, "255.255.255.255"));
    assert_false(has(&s, "255.255.254.255"));
    pt_ip_set_free(&s);
}

static void test_v4_mapped(void **state)
{
    (void)state;
    struct pt_ip_set s;
    /* A mapped block in a list is IPv4; a mapped client address is IPv4. */
    build(&s, (const char *const[]){"::ffff:10.0.0.0/104", "192.0.2.1", NULL});
    assert_int_equal(s.n4, 2);
    assert_int_equal(s.n6, 0);
    assert_true(has(&s, "10.9.9.9"));
    assert_true(has(&s, "::ffff:10.9.9.9"));
    assert_true(has(&s, "::ffff:192.0.2.1"));
    assert_false(has(&s, "::ffff:192.0.2.2"));
    assert_false(has(&s, "::10.9.9.9"));
    pt_ip_set_free(&s);

    struct pt_ip_addr a = addr("::ffff:1.2.3.4");
    assert_false(a.is_v6);
    assert_int_equal(a.v4, 0x01020304u);
}

static void test_empty(void **state)
{
    (void)state;
    struct pt_ip_set s;
    assert_int_equal(pt_ip_set_build(&s, NULL, 0), 0);
    assert_false(has(&s, "1.2.3.4"));
    assert_false(has(&s, "::1"));
    pt_ip_set_free(&s);
    pt_ip_set_free(NULL);
}

static void test_many(void **state)
{
    (void)state;
    /* 100,000 host entries (every other address of 10.0.0.0/12, shuffled) and 1,000 /24s that
       overlap them: disjoint hosts stay apart, the /24s swallow theirs. */
    size_t n = 100000;
    struct pt_cidr *v = calloc(n, sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        uint32_t ip = 0x0a000000u + (uint32_t)(i * 2);
        v[i].family = AF_INET;
        v[i].addr[0] = (uint8_t)(ip >> 24);
        v[i].addr[1] = (uint8_t)(ip >> 16);
        v[i].addr[2] = (uint8_t)(ip >> 8);
        v[i].addr[3] = (uint8_t)ip;
        v[i].prefix_len = 32;
    }
    srand(7);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        struct pt_cidr t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    struct pt_ip_set s;
    assert_int_equal(pt_ip_set_build(&s, v, n), 0);
    assert_int_equal(s.n4, n);
    for (uint32_t k = 0; k < 200000; k += 997) {
        struct pt_ip_addr a = {.v4 = 0x0a000000u + k};
        assert_int_equal(pt_ip_set_contains(&s, &a), k % 2 == 0);
    }
    struct pt_ip_addr past = {.v4 = 0x0a000000u + 200000};
    assert_false(pt_ip_set_contains(&s, &past));
    pt_ip_set_free(&s);

    for (size_t i = 0; i < 1000; i++)
        v[i].prefix_len = 24;
    assert_int_equal(pt_ip_set_build(&s, v, n), 0);
    assert_true(s.n4 < n);
    for (size_t k = 0; k < s.n4; k++) {
        assert_true(s.v4[k].lo <= s.v4[k].hi);
        if (k > 0)
            assert_true(s.v4[k].lo > s.v4[k - 1].hi + 1);
    }
    pt_ip_set_free(&s);
    free(v);
}

static void test_rules(void **state)
{
    (void)state;
    struct pt_ip_rules r;
    memset(&r, 0, sizeof(r));
    struct pt_ip_addr a = addr("10.1.2.3"), b = addr("192.0.2.1"), c = addr("2001:db8::1");
    assert_int_equal(pt_ip_rules_check(&r, &a, NULL), PT_IP_PASS);

    build(&r.deny, (const char *const[]){"10.1.0.0/16", NULL});
    assert_int_equal(pt_ip_rules_check(&r, &a, NULL), PT_IP_DENIED);
    assert_int_equal(pt_ip_rules_check(&r, &b, NULL), PT_IP_PASS);

    /* Allow 10/8 but deny 10.1/16: deny wins; outside the allow list is refused. */
    build(&r.allow, (const char *const[]){"10.0.0.0/8", "2001:db8::/32", NULL});
    r.has_allow = true;
    assert_int_equal(pt_ip_rules_check(&r, &a, NULL), PT_IP_DENIED);
    struct pt_ip_addr d = addr("10.2.0.1");
    assert_int_equal(pt_ip_rules_check(&r, &d, NULL), PT_IP_PASS);
    assert_int_equal(pt_ip_rules_check(&r, &b, NULL), PT_IP_NOT_ALLOWED);
    assert_int_equal(pt_ip_rules_check(&r, &c, NULL), PT_IP_PASS);
    pt_ip_set_free(&r.allow);
    pt_ip_set_free(&r.deny);
    r.has_allow = false;

    const uint16_t deny_cc[] = {pt_ip_country_code("RU")};
    r.deny_cc = deny_cc;
    r.n_deny_cc = 1;
    assert_int_equal(pt_ip_rules_check(&r, &a, "RU"), PT_IP_COUNTRY_DENIED);
    assert_int_equal(pt_ip_rules_check(&r, &a, "DE"), PT_IP_PASS);
    /* An unknown country passes a deny list... */
    assert_int_equal(pt_ip_rules_check(&r, &a, NULL), PT_IP_PASS);
    assert_int_equal(pt_ip_rules_check(&r, &a, ""), PT_IP_PASS);
    /* ...and is refused by an allow list. */
    const uint16_t allow_cc[] = {pt_ip_country_code("de"), pt_ip_country_code("FR")};
    r.allow_cc = allow_cc;
    r.n_allow_cc = 2;
    assert_int_equal(pt_ip_rules_check(&r, &a, "DE"), PT_IP_PASS);
    assert_int_equal(pt_ip_rules_check(&r, &a, "fr"), PT_IP_PASS);
    assert_int_equal(pt_ip_rules_check(&r, &a, "US"), PT_IP_COUNTRY_NOT_ALLOWED);
    assert_int_equal(pt_ip_rules_check(&r, &a, NULL), PT_IP_COUNTRY_NOT_ALLOWED);
    assert_int_equal(pt_ip_rules_check(&r, &a, "RU"), PT_IP_COUNTRY_DENIED);

    assert_int_equal(pt_ip_country_code("D"), 0);
    assert_int_equal(pt_ip_country_code("DEU"), 0);
    assert_int_equal(pt_ip_country_code("1A"), 0);
    assert_int_equal(pt_ip_country_code(NULL), 0);
    assert_string_equal(pt_ip_verdict_text(PT_IP_NOT_ALLOWED), "not in the allow list");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_overlapping),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_v4_mapped),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
