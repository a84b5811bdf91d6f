/*
 * ip.c - IP rules: the allow and deny lists of a site or route as sorted, merged address ranges.
 *
 * A list may hold 100,000 entries read from files, and it is consulted on every request of its
 * route, so it is compiled once, when the configuration is loaded: each CIDR becomes an inclusive
 * range [network, broadcast] of its family (IPv4 as uint32, IPv6 as a 128-bit pair), the ranges
 * are sorted by their start, and overlapping or adjacent ones are merged. What remains is a
 * strictly increasing sequence of disjoint ranges, and a lookup is one binary search: the last
 * range starting at or below the address contains it or none does. Nothing here allocates after
 * pt_ip_set_build, takes a lock or makes a syscall; the sets are immutable and shared by every
 * worker through the configuration snapshot.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4 on both sides: a mapped client address is looked up
 * as IPv4 (pt_ip_addr_from_sockaddr), a mapped block in a list is stored as IPv4, and an IPv6
 * block that covers all of ::ffff:0:0/96 (::/0, ::/64...) also covers every IPv4 address.
 *
 * Country lists are a handful of two-letter codes: a linear scan of 16-bit values.
 */
#include "guard/ip.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t load64(const uint8_t *p)
{
    return (uint64_t)load32(p) << 32 | load32(p + 4);
}

static int cmp_u128(struct pt_ip_u128 a, struct pt_ip_u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

/* a + 1, saturating at the top of the space (the caller never needs to go past it). */
static struct pt_ip_u128 inc_u128(struct pt_ip_u128 a)
{
    if (a.lo != UINT64_MAX) {
        a.lo++;
    } else if (a.hi != UINT64_MAX) {
        a.lo = 0;
        a.hi++;
    }
    return a;
}

static struct pt_ip_range4 range4(uint32_t net, unsigned prefix)
{
    uint32_t host = prefix >= 32 ? 0 : UINT32_MAX >> prefix;
    return (struct pt_ip_range4){.lo = net & ~host, .hi = net | host};
}

static struct pt_ip_range6 range6(const uint8_t addr[16], unsigned prefix)
{
    uint64_t host_hi, host_lo;
    if (prefix >= 128) {
        host_hi = 0;
        host_lo = 0;
    } else if (prefix >= 64) {
        host_hi = 0;
        host_lo = UINT64_MAX >> (prefix - 64);
    } else {
        host_hi = UINT64_MAX >> prefix;
        host_lo = UINT64_MAX;
    }
    uint64_t hi = load64(addr), lo = load64(addr + 8);
    return (struct pt_ip_range6){.lo = {hi & ~host_hi, lo & ~host_lo},
                                 .hi = {hi | host_hi, lo | host_lo}};
}

static int cmp_range4(const void *a, const void *b)
{
    const struct pt_ip_range4 *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int cmp_range6(const void *a, const void *b)
{
    const struct pt_ip_range6 *x = a, *y = b;
    return cmp_u128(x->lo, y->lo);
}

/* Sorts v[0..n) and merges overlapping and adjacent ranges in place; returns the new count. */
static size_t merge4(struct pt_ip_range4 *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_range4);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        struct pt_ip_range4 *cur = &v[out];
        if (cur->hi == UINT32_MAX || v[i].lo <= cur->hi + 1) {
            if (v[i].hi > cur->hi)
                cur->hi = v[i].hi;
        } else {
            v[++out] = v[i];
        }
    }
    return out + 1;
}

static size_t merge6(struct pt_ip_range6 *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_range6);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        struct pt_ip_range6 *cur = &v[out];
        struct pt_ip_u128 next = inc_u128(cur->hi);
        bool at_top = cur->hi.hi == UINT64_MAX && cur->hi.lo == UINT64_MAX;
        if (at_top || cmp_u128(v[i].lo, next) <= 0) {
            if (cmp_u128(v[i].hi, cur->hi) > 0)
                cur->hi = v[i].hi;
        } else {
            v[++out] = v[i];
        }
    }
    return out + 1;
}

int pt_ip_set_build(struct pt_ip_set *s, const struct pt_cidr *v, size_t n)
{
    memset(s, 0, sizeof(*s));
    if (n == 0)
        return 0;
    /* Every entry makes at most one range of each family (an IPv6 block covering all of the
       mapped space makes one of both). */
    s->v4 = malloc(n * sizeof(*s->v4));
    s->v6 = malloc(n * sizeof(*s->v6));
    if (!s->v4 || !s->v6) {
        pt_ip_set_free(s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct pt_cidr *c = &v[i];
        if (c->family == AF_INET) {
            s->v4[s->n4++] = range4(load32(c->addr), c->prefix_len);
            continue;
        }
        if (c->prefix_len >= 96 && memcmp(c->addr, v4_mapped_prefix, 12) == 0) {
            s->v4[s->n4++] = range4(load32(c->addr + 12), c->prefix_len - 96u);
            continue;
        }
        struct pt_ip_range6 r = range6(c->addr, c->prefix_len);
        s->v6[s->n6++] = r;
        /* A block this wide is a prefix of ::ffff:0:0/96 whenever its range spans that block. */
        struct pt_ip_u128 mapped_lo = {0, 0xffff00000000ull}, mapped_hi = {0, 0xffffffffffffull};
        if (cmp_u128(r.lo, mapped_lo) <= 0 && cmp_u128(r.hi, mapped_hi) >= 0)
            s->v4[s->n4++] = (struct pt_ip_range4){0, UINT32_MAX};
    }
    s->n4 = merge4(s->v4, s->n4);
    s->n6 = merge6(s->v6, s->n6);
    return 0;
}

void pt_ip_set_free(struct pt_ip_set *s)
{
    if (!s)
        return;
    free(s->v4);
    free(s->v6);
    memset(s, 0, sizeof(*s));
}

bool pt_ip_set_contains(const struct pt_ip_set *s, const struct pt_ip_addr *a)
{
    /* Find the last range whose start is <= the address: [lo, hi) narrows to it. */
    size_t lo = 0, hi;
    if (!a->is_v6) {
        hi = s->n4;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->v4[mid].lo <= a->v4)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo > 0 && a->v4 <= s->v4[lo - 1].hi;
    }
    hi = s->n6;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_u128(s->v6[mid].lo, a->v6) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && cmp_u128(a->v6, s->v6[lo - 1].hi) <= 0;
}

int pt_ip_addr_from_sockaddr(const struct sockaddr *sa, struct pt_ip_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        a->v4 = ntohl(in->sin_addr.s_addr);
        return 0;
    }
    if (sa->sa_family != AF_INET6)
        return -1;
    const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(b, v4_mapped_prefix, 12) == 0) {
        a->v4 = load32(b + 12);
        return 0;
    }
    a->is_v6 = true;
    a->v6.hi = load64(b);
    a->v6.lo = load64(b + 8);
    return 0;
}

static int upper(int ch)
{
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 'A';
    return ch >= 'A' && ch <= 'Z' ? ch : 0;
}

uint16_t pt_ip_country_code(const char *cc)
{
    if (!cc || !upper((unsigned char)cc[0]) || !upper((unsigned char)cc[1]) || cc[2] != '\0')
        return 0;
    return (uint16_t)(upper((unsigned char)cc[0]) << 8 | upper((unsigned char)cc[1]));
}

static bool has_code(const uint16_t *v, size_t n, uint16_t code)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == code)
            return true;
    return false;
}

enum pt_ip_verdict pt_ip_rules_check(const struct pt_ip_rules *rules, const struct pt_ip_addr *a,
                                     const char *country)
{
    if (pt_ip_set_contains(&rules->deny, a))
        return PT_IP_DENIED;
    if (rules->has_allow && !pt_ip_set_contains(&rules->allow, a))
        return PT_IP_NOT_ALLOWED;
    if (rules->n_deny_cc == 0 && rules->n_allow_cc == 0)
        return PT_IP_PASS;
    uint16_t code = pt_ip_country_code(country);
    if (code && has_code(rules->deny_cc, rules->n_deny_cc, code))
        return PT_IP_COUNTRY_DENIED;
    if (rules->n_allow_cc > 0 && (!code || !has_code(rules->allow_cc, rules->n_allow_cc, code)))
        return PT_IP_COUNTRY_NOT_ALLOWED;
    return PT_IP_PASS;
}

struct pt_ip_rules *pt_ip_rules_build(const struct pt_ip_cfg *c)
{
    struct pt_ip_rules *rules = calloc(1, sizeof(*rules));
    if (!rules)
        return NULL;
    if (pt_ip_set_build(&rules->allow, c->allow, c->n_allow) < 0 ||
        pt_ip_set_build(&rules->deny, c->deny, c->n_deny) < 0) {
        pt_ip_rules_free(rules);
        return NULL;
    }
    rules->has_allow = c->has_allow;
    rules->allow_cc = c->allow_cc;
    rules->n_allow_cc = c->n_allow_cc;
    rules->deny_cc = c->deny_cc;
    rules->n_deny_cc = c->n_deny_cc;
    return rules;
}

void pt_ip_rules_free(struct pt_ip_rules *rules)
{
    if (!rules)
        return;
    pt_ip_set_free(&rules->allow);
    pt_ip_set_free(&rules->deny);
    free(rules);
}

const char *pt_ip_verdict_text(enum pt_ip_verdict v)
{
    switch (v) {
    case PT_IP_PASS:
        return "allowed";
    case PT_IP_DENIED:
        return "in the deny list";
    case PT_IP_NOT_ALLOWED:
        return "not in the allow list";
    case PT_IP_COUNTRY_DENIED:
        return "country in countries.deny";
    case PT_IP_COUNTRY_NOT_ALLOWED:
        return "country not in countries.allow";
    }
    return "?";
}
