/*
 * ip.h - IP rules, the guard that refuses a request by its client address or country: allow and
 * deny lists compiled once, at load, into sorted and merged address ranges, and a check that is a
 * binary search per list (O(log n), no allocation, no syscall). See ip.c and
 * docs/internals/guard.md.
 */
#ifndef PT_GUARD_IP_H
#define PT_GUARD_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

/* An IPv6 address or range bound as a 128-bit number: hi holds the first 8 bytes. */
struct pt_ip_u128 {
    uint64_t hi, lo;
};

/* An inclusive range of IPv4 addresses, host order. */
struct pt_ip_range4 {
    uint32_t lo, hi;
};

/* An inclusive range of IPv6 addresses. */
struct pt_ip_range6 {
    struct pt_ip_u128 lo, hi;
};

/*
 * A compiled list: the ranges of each family sorted by their start, overlapping and adjacent ones
 * merged, so that no two touch. Built by pt_ip_set_build, read by pt_ip_set_contains from any
 * number of threads, freed by pt_ip_set_free.
 */
struct pt_ip_set {
    struct pt_ip_range4 *v4;
    size_t n4;
    struct pt_ip_range6 *v6;
    size_t n6;
};

/* A client address ready for the check. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is IPv4. */
struct pt_ip_addr {
    bool is_v6;
    uint32_t v4;          /* host order, when !is_v6 */
    struct pt_ip_u128 v6; /* when is_v6 */
};

/*
 * The rules of a site or route: an address is refused when it is in deny, or when has_allow and
 * it is in none of allow; a country (ISO 3166 alpha-2, two upper-case letters) likewise with
 * deny_cc and allow_cc. A request whose country is unknown passes the country deny list and is
 * refused by a country allow list.
 */
struct pt_ip_rules {
    struct pt_ip_set allow, deny;
    bool has_allow;
    const uint16_t *allow_cc, *deny_cc; /* codes as ('A' << 8 | 'B'); borrowed */
    size_t n_allow_cc, n_deny_cc;
};

/* Why pt_ip_rules_check refused, or PT_IP_PASS. */
enum pt_ip_verdict {
    PT_IP_PASS = 0,
    PT_IP_DENIED,              /* the address is in a deny list */
    PT_IP_NOT_ALLOWED,         /* an allow list is given and the address is in none of it */
    PT_IP_COUNTRY_DENIED,      /* the country is in countries.deny */
    PT_IP_COUNTRY_NOT_ALLOWED, /* countries.allow is given and the country is not in it */
};

/*
 * Compiles n CIDRs (from pt_config_parse_cidr; n may be 0, v then unread) into s, replacing
 * nothing: s must be zeroed or freed. IPv4-mapped IPv6 blocks (::ffff:0:0/96 and longer) are
 * added as IPv4. Allocates the two range arrays once; the caller owns them (pt_ip_set_free).
 * Returns 0, or -ENOMEM with s left empty.
 */
int pt_ip_set_build(struct pt_ip_set *s, const struct pt_cidr *v, size_t n);

/* Frees what pt_ip_set_build allocated and zeroes s. NULL or a zeroed s is fine. */
void pt_ip_set_free(struct pt_ip_set *s);

/* True when a is in one of s's ranges. Pure: a binary search over the family's array. */
bool pt_ip_set_contains(const struct pt_ip_set *s, const struct pt_ip_addr *a);

/*
 * Fills a from sa (sockaddr_in or sockaddr_in6; an IPv4-mapped IPv6 address becomes IPv4).
 * Returns 0, or -1 for another family.
 */
int pt_ip_addr_from_sockaddr(const struct sockaddr *sa, struct pt_ip_addr *a);

/* Packs a two-letter country code ("DE", case-insensitive) as pt_ip_rules keeps it; 0 when cc is
   not two ASCII letters. */
uint16_t pt_ip_country_code(const char *cc);

/*
 * The verdict of rules on the address a and its country (NULL or "" when unknown, or when the
 * rules have no country lists and the caller did not look it up). Pure.
 */
enum pt_ip_verdict pt_ip_rules_check(const struct pt_ip_rules *rules, const struct pt_ip_addr *a,
                                     const char *country);

/*
 * Compiles a configuration's ip: (allow, deny, countries) into new rules: the sets are the
 * caller's (pt_ip_rules_free), the country lists are borrowed from c, which must outlive them.
 * Returns NULL when out of memory.
 */
struct pt_ip_rules *pt_ip_rules_build(const struct pt_ip_cfg *c);

/* Frees rules made by pt_ip_rules_build; NULL is fine. */
void pt_ip_rules_free(struct pt_ip_rules *rules);

/* A short text for a verdict, for the error log ("deny list", "not in allow list", ...). */
const char *pt_ip_verdict_text(enum pt_ip_verdict v);

#endif
