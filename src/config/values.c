/*
 * values.c - the scalar formats of the configuration: durations, sizes, CIDR blocks.
 *
 * These are small, strict parsers: no leading sign or blank, no fractions, no unit soup
 * ("1m30s"), and every multiplication is checked for overflow, because a limit that wraps
 * around to a tiny number is a silent denial of service. They allocate nothing and keep no
 * state, so the server may call them too (pt_cidr_contains runs per request on the peer
 * address; it only compares bytes).
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <string.h>

/* Reads the leading decimal digits of s into *v; returns the count, or -1 on overflow/none. */
static int read_digits(const char *s, uint64_t *v, const char **end)
{
    uint64_t acc = 0;
    int n = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        unsigned d = (unsigned)(s[n] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return -1;
        acc = acc * 10 + d;
        n++;
    }
    if (n == 0)
        return -1;
    *v = acc;
    *end = s + n;
    return n;
}

/*
 * Parses "250ms", "30s", "5m", "1h" or a bare integer of seconds into milliseconds.
 * Returns 0, or -1 on a malformed or overflowing value (*ms untouched).
 */
int pt_config_parse_duration(const char *s, uint64_t *ms)
{
    uint64_t v, mul;
    const char *u;
    if (!s || read_digits(s, &v, &u) < 0)
        return -1;
    if (strcmp(u, "") == 0 || strcmp(u, "s") == 0)
        mul = 1000;
    else if (strcmp(u, "ms") == 0)
        mul = 1;
    else if (strcmp(u, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(u, "h") == 0)
        mul = 3600 * 1000;
    else
        return -1;
    if (v > UINT64_MAX / mul)
        return -1;
    *ms = v * mul;
    return 0;
}

/*
 * Parses "512", "64k", "8m", "1g", "1t" (binary multiples, suffix in either case) into bytes.
 * Returns 0, or -1 on a malformed or overflowing value.
 */
int pt_config_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t v;
    const char *u;
    unsigned shift;
    if (!s || read_digits(s, &v, &u) < 0)
        return -1;
    switch (u[0]) {
    case '\0':
        shift = 0;
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    default:
        return -1;
    }
    if (u[0] && u[1])
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *bytes = v << shift;
    return 0;
}

static void zero_host_bits(uint8_t *addr, unsigned bytes, unsigned prefix)
{
    for (unsigned i = 0; i < bytes; i++) {
        unsigned bit0 = i * 8;
        if (prefix >= bit0 + 8)
            continue;
        if (prefix <= bit0)
            addr[i] = 0;
        else
            addr[i] &= (uint8_t)(0xff << (8 - (prefix - bit0)));
    }
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/*
 * Parses "10.0.0.0/8", "2001:db8::/32", "::1", "192.168.1.1" (no prefix: one host). Host bits
 * beyond the prefix are cleared. A v4-mapped IPv6 block of /96 or longer is stored as the IPv4
 * block it denotes. Returns 0, or -1 when malformed.
 */
int pt_config_parse_cidr(const char *s, struct pt_cidr *out)
{
    char a[INET6_ADDRSTRLEN + 1];
    struct pt_cidr c;
    if (!s)
        return -1;
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(a))
        return -1;
    memcpy(a, s, alen);
    a[alen] = '\0';
    memset(&c, 0, sizeof(c));
    unsigned max;
    if (inet_pton(AF_INET, a, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, a, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    unsigned prefix = max;
    if (slash) {
        uint64_t v;
        const char *end;
        if (read_digits(slash + 1, &v, &end) < 0 || *end != '\0' || end - slash - 1 > 3 || v > max)
            return -1;
        prefix = (unsigned)v;
    }
    if (c.family == AF_INET6 && prefix >= 96 && memcmp(c.addr, v4mapped_prefix, 12) == 0) {
        memmove(c.addr, c.addr + 12, 4);
        memset(c.addr + 4, 0, 12);
        c.family = AF_INET;
        prefix -= 96;
        max = 32;
    }
    zero_host_bits(c.addr, max / 8, prefix);
    c.prefix_len = (uint8_t)prefix;
    *out = c;
    return 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/*
 * True when sa (AF_INET or AF_INET6) lies in c. An IPv4 peer seen as ::ffff:a.b.c.d on a
 * dual-stack socket matches IPv4 blocks, and an IPv4 peer matches an IPv6 block that covers
 * its mapped form (so ::/0 means everyone). Other families never match.
 */
bool pt_cidr_contains(const struct pt_cidr *c, const struct sockaddr *sa)
{
    uint8_t v6[16];
    const uint8_t *v4 = NULL;
    if (!c || !sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(v6, v4mapped_prefix, 12);
        memcpy(v6 + 12, &in->sin_addr, 4);
        v4 = v6 + 12;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(v6, &in6->sin6_addr, 16);
        if (memcmp(v6, v4mapped_prefix, 12) == 0)
            v4 = v6 + 12;
    } else {
        return false;
    }
    if (c->family == AF_INET)
        return v4 && prefix_eq(c->addr, v4, c->prefix_len);
    if (c->family == AF_INET6)
        return prefix_eq(c->addr, v6, c->prefix_len);
    return false;
}

/* True when sa is in one of cfg's trusted_proxies (whose X-Forwarded-For is believed). */
bool pt_config_is_trusted_proxy(const struct pt_config *cfg, const struct sockaddr *sa)
{
    for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
        if (pt_cidr_contains(&cfg->trusted_proxies[i], sa))
            return true;
    return false;
}
