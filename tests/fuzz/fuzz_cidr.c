/*
 * fuzz_cidr.c - libFuzzer target for the CIDR parser (pt_config_parse_cidr) and the IP rules'
 * compiled sets (guard/ip.c).
 *
 * The input is split into lines; each is parsed as an address or CIDR and the accepted ones
 * are compiled into one set. The set must be strictly increasing and hold no two ranges that
 * overlap or touch. Then, for probes around every accepted entry (its first and last address
 * and their neighbours), the merged set must answer exactly as "one of the entries alone
 * contains it", each entry compiled as a set of its own: merging and the binary search change
 * nothing but the cost.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "guard/ip.h"

#define MAX_ENTRIES 64

static bool in_any(const struct pt_ip_set *one, size_t n, const struct pt_ip_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (pt_ip_set_contains(&one[i], a))
            return true;
    return false;
}

static void probe(const struct pt_ip_set *all, const struct pt_ip_set *one, size_t n,
                  const struct pt_ip_addr *a)
{
    if (pt_ip_set_contains(all, a) != in_any(one, n, a))
        abort();
}

static void probe4(const struct pt_ip_set *all, const struct pt_ip_set *one, size_t n, uint32_t v)
{
    struct pt_ip_addr a = {.v4 = v};
    probe(all, one, n, &a);
}

static void probe6(const struct pt_ip_set *all, const struct pt_ip_set *one, size_t n,
                   struct pt_ip_u128 v)
{
    struct pt_ip_addr a = {.is_v6 = true, .v6 = v};
    probe(all, one, n, &a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_cidr v[MAX_ENTRIES];
    size_t n = 0;
    char line[128];
    const uint8_t *p = data, *end = data + size;
    while (p < end && n < MAX_ENTRIES) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len < sizeof(line)) {
            memcpy(line, p, len);
            line[len] = '\0';
            if (pt_config_parse_cidr(line, &v[n]) == 0)
                n++;
        }
        p = nl ? nl + 1 : end;
    }
    struct pt_ip_set all, one[MAX_ENTRIES];
    if (pt_ip_set_build(&all, v, n) < 0)
        return 0;
    for (size_t i = 1; i < all.n4; i++)
        if (all.v4[i - 1].hi == UINT32_MAX || all.v4[i].lo <= all.v4[i - 1].hi + 1)
            abort();
    for (size_t i = 0; i < all.n4; i++)
        if (all.v4[i].lo > all.v4[i].hi)
            abort();
    for (size_t i = 0; i < n; i++)
        if (pt_ip_set_build(&one[i], &v[i], 1) < 0)
            abort();
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < one[i].n4; k++) {
            uint32_t lo = one[i].v4[k].lo, hi = one[i].v4[k].hi;
            probe4(&all, one, n, lo);
            probe4(&all, one, n, hi);
            probe4(&all, one, n, lo - 1);
            probe4(&all, one, n, hi + 1);
        }
        for (size_t k = 0; k < one[i].n6; k++) {
            struct pt_ip_u128 lo = one[i].v6[k].lo, hi = one[i].v6[k].hi;
            probe6(&all, one, n, lo);
            probe6(&all, one, n, hi);
            struct pt_ip_u128 below = {lo.lo ? lo.hi : lo.hi - 1, lo.lo - 1};
            struct pt_ip_u128 above = {hi.lo == UINT64_MAX ? hi.hi + 1 : hi.hi, hi.lo + 1};
            probe6(&all, one, n, below);
            probe6(&all, one, n, above);
        }
    }
    for (size_t i = 0; i < n; i++)
        pt_ip_set_free(&one[i]);
    pt_ip_set_free(&all);
    return 0;
}
