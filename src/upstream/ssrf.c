/*
 * ssrf.c - the SSRF guard's classification of addresses and its URL check (see ssrf.h).
 *
 * Two tables, most specific prefix first, searched in order: a few dozen comparisons at most,
 * cheaper than any tree for this size. A row either refuses its prefix with a reason, or says
 * that its prefix embeds an IPv4 address at a byte offset, which is then classified by the
 * IPv4 table (a private IPv4 address in IPv6 clothing is still private).
 *
 * Choices, argued in docs/config.md ("ssrf_guard"):
 * - 100.64.0.0/10 (shared address space, RFC 6598) is refused: carriers and clouds use it for
 *   internal services (Alibaba Cloud's metadata service is 100.100.100.200, Tailscale's nodes
 *   live there), and no public service is addressed in it.
 * - IPv4-mapped (::ffff:0:0/96) addresses reach the IPv4 address itself through a dual-stack
 *   socket; IPv4-translated (::ffff:0:0:0/96, SIIT), NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 *   ones reach it through a translator or relay: all four are judged by the embedded address,
 *   so 64:ff9b::8.8.8.8 stays allowed and 64:ff9b::10.0.0.1 is not.
 * - Ranges that embed an address in a way a relay may reinterpret are refused whole: the
 *   deprecated IPv4-compatible ::/96, local-use NAT64 64:ff9b:1::/48 (RFC 8215: any embedding
 *   the network chooses) and Teredo 2001::/32 (RFC 4380; its client address is obfuscated, and
 *   no public HTTPS service is reached through Teredo).
 * - Documentation and benchmarking ranges (192.0.2.0/24, 198.18.0.0/15, 2001:db8::/32) are not
 *   refused: they are not routed to anything on a sane network, and refusing them buys nothing.
 *
 * Rejected: resolving names at write time (an answer then proves nothing about the answer at
 * connect time: that is DNS rebinding; the connect-time check is the one that counts); a
 * lenient IPv4 parser (inet_aton's "127.1", "0177.0.0.1") for literals: those forms are
 * refused as hosts instead, since what one parser calls a name another calls an address.
 */
#include "upstream/ssrf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"

#define WHY_PRIVATE "a private address (RFC 1918)"
#define WHY_LOOPBACK "a loopback address"
#define WHY_LINK_LOCAL "a link-local address"
#define WHY_MULTICAST "a multicast address"

struct range {
    struct pt_cidr c;
    const char *why;  /* refused with this reason, or NULL: embeds an IPv4 address */
    int embed_at;     /* byte offset of the embedded IPv4 address (why == NULL) */
    const char *form; /* name of the embedding (why == NULL) */
};

#define V4(a, b, c, d, len)                                                                        \
    {                                                                                              \
        AF_INET, {a, b, c, d}, len                                                                 \
    }

static const struct range v4_ranges[] = {
    {V4(0, 0, 0, 0, 8), "a \"this network\" address (0.0.0.0/8, reaches the local host)", 0, NULL},
    {V4(10, 0, 0, 0, 8), WHY_PRIVATE, 0, NULL},
    {V4(100, 64, 0, 0, 10), "a shared address (carrier-grade NAT, RFC 6598)", 0, NULL},
    {V4(127, 0, 0, 0, 8), WHY_LOOPBACK, 0, NULL},
    {V4(169, 254, 169, 254, 32), "the cloud metadata address", 0, NULL},
    {V4(169, 254, 0, 0, 16), WHY_LINK_LOCAL, 0, NULL},
    {V4(172, 16, 0, 0, 12), WHY_PRIVATE, 0, NULL},
    {V4(192, 168, 0, 0, 16), WHY_PRIVATE, 0, NULL},
    {V4(224, 0, 0, 0, 4), WHY_MULTICAST, 0, NULL},
    {V4(255, 255, 255, 255, 32), "the broadcast address", 0, NULL},
    {V4(240, 0, 0, 0, 4), "a reserved address (240.0.0.0/4)", 0, NULL},
};

/* Rows are IPv6 prefixes matched against IPv6 addresses only (an IPv4-mapped address is
   matched here as the IPv6 address it is, then judged by its IPv4 part). */
static const struct range v6_ranges[] = {
    {{AF_INET6, {0}, 128}, "the unspecified address", 0, NULL},
    {{AF_INET6, {[15] = 1}, 128}, WHY_LOOPBACK, 0, NULL},
    {{AF_INET6, {[10] = 0xff, [11] = 0xff}, 96}, NULL, 12, "IPv4-mapped"},
    {{AF_INET6, {0}, 96}, "an IPv4-compatible address (deprecated, RFC 4291)", 0, NULL},
    {{AF_INET6, {[8] = 0xff, [9] = 0xff}, 96}, NULL, 12, "IPv4-translated"},
    {{AF_INET6, {0, 0x64, 0xff, 0x9b}, 96}, NULL, 12, "NAT64"},
    {{AF_INET6, {0, 0x64, 0xff, 0x9b, 0, 1}, 48}, "a local-use NAT64 address (RFC 8215)", 0, NULL},
    {{AF_INET6, {0x20, 0x01, 0, 0}, 32}, "a Teredo address (RFC 4380)", 0, NULL},
    {{AF_INET6, {0x20, 0x02}, 16}, NULL, 2, "6to4"},
    {{AF_INET6, {0xfc}, 7}, "a unique local address (fc00::/7)", 0, NULL},
    {{AF_INET6, {0xfe, 0x80}, 10}, WHY_LINK_LOCAL, 0, NULL},
    {{AF_INET6, {0xfe, 0xc0}, 10}, "a site-local address (deprecated, fec0::/10)", 0, NULL},
    {{AF_INET6, {0xff}, 8}, WHY_MULTICAST, 0, NULL},
};

static const char *classify_v4(const struct sockaddr *sa)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(v4_ranges); i++)
        if (pt_cidr_contains(&v4_ranges[i].c, sa))
            return v4_ranges[i].why;
    return NULL;
}

struct pt_ssrf_verdict pt_ssrf_classify(const struct sockaddr *sa)
{
    struct pt_ssrf_verdict v = {NULL, NULL};
    if (sa->sa_family == AF_INET) {
        v.why = classify_v4(sa);
        return v;
    }
    if (sa->sa_family != AF_INET6) {
        v.why = "not an IP address";
        return v;
    }
    const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    for (size_t i = 0; i < PT_ARRAY_LEN(v6_ranges); i++) {
        const struct range *r = &v6_ranges[i];
        if (!pt_cidr_contains(&r->c, sa))
            continue;
        if (r->why) {
            v.why = r->why;
        } else {
            struct sockaddr_in in = {.sin_family = AF_INET};
            memcpy(&in.sin_addr, a + r->embed_at, 4);
            v.why = classify_v4((const struct sockaddr *)&in);
            v.form = v.why ? r->form : NULL;
        }
        return v;
    }
    return v;
}

struct pt_ssrf_verdict pt_ssrf_check(const struct sockaddr *sa, const struct pt_cidr *allow,
                                     size_t n_allow)
{
    struct pt_ssrf_verdict v = pt_ssrf_classify(sa);
    if (!v.why || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return v;
    for (size_t i = 0; i < n_allow; i++)
        if (pt_cidr_contains(&allow[i], sa))
            return (struct pt_ssrf_verdict){NULL, NULL};
    return v;
}

size_t pt_ssrf_explain(const struct sockaddr *sa, struct pt_ssrf_verdict v, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN] = "?";
    /* inet_ntop, not pt_sock_ntop: the address as connected ("::ffff:10.0.0.5"), mapped or
       not, so the log names what the guard saw. */
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, text,
                  sizeof(text));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, text,
                  sizeof(text));
    int n = snprintf(out, cap, "%s is %s%s%s%s", text, v.why ? v.why : "allowed",
                     v.form ? ", in " : "", v.form ? v.form : "", v.form ? " form" : "");
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : (cap ? cap - 1 : 0);
}

/* ---- the URL check ---- */

static int refuse(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap)
        vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool is_hex_digit(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* True when h[0..n) is a DNS host name (LDH labels, RFC 1123 §2.1; a trailing dot is fine)
   whose last label is not numeric: a name like "127.1" or "0x7f000001" is an address to many
   parsers (inet_aton), and no top-level domain is all digits (RFC 3696 §2). */
static bool is_host_name(const char *h, size_t n)
{
    if (n && h[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && h[i] != '.') {
            char ch = h[i];
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-';
            if (!ok)
                return false;
            continue;
        }
        size_t ll = i - start;
        if (ll == 0 || ll > 63 || h[start] == '-' || h[i - 1] == '-')
            return false;
        if (i == n) {
            bool numeric = true; /* digits, or 0x and hex digits */
            size_t j = start;
            if (ll > 2 && h[j] == '0' && (h[j + 1] == 'x' || h[j + 1] == 'X'))
                j += 2;
            bool hex = j > start;
            for (; j < i; j++)
                numeric &= hex ? is_hex_digit(h[j]) : (h[j] >= '0' && h[j] <= '9');
            if (numeric)
                return false;
        }
        start = i + 1;
    }
    return true;
}

/* True when h[0..n) is "localhost" or a name under it (RFC 6761 §6.3), with or without the
   trailing dot. */
static bool is_localhost(const char *h, size_t n)
{
    if (n && h[n - 1] == '.')
        n--;
    static const char lh[] = "localhost";
    size_t ll = sizeof(lh) - 1;
    if (n < ll || strncasecmp(h + n - ll, lh, ll) != 0)
        return false;
    return n == ll || h[n - ll - 1] == '.';
}

int pt_ssrf_check_url(const char *url, size_t len, const struct pt_cidr *allow, size_t n_allow,
                      char *msg, size_t cap)
{
    static const char scheme[] = "https://";
    size_t sl = sizeof(scheme) - 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return refuse(msg, cap, "the target URL contains a space or a control character");
    if (len < sl || strncasecmp(url, scheme, sl) != 0)
        return refuse(msg, cap, "the target URL must start with https://");
    const char *p = url + sl, *end = url + len;
    const char *auth_end = p;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return refuse(msg, cap, "the target URL must not contain user information (\"user@\")");
    const char *host = p, *host_end;
    const char *port = NULL;
    bool bracketed = p < auth_end && *p == '[';
    if (bracketed) {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end)
            return refuse(msg, cap, "the target URL has an unclosed '[' in its host");
        if (host_end + 1 < auth_end) {
            if (host_end[1] != ':')
                return refuse(msg, cap, "the target URL has bytes after its IPv6 address");
            port = host_end + 2;
        }
    } else {
        host_end = memchr(host, ':', (size_t)(auth_end - host));
        if (host_end)
            port = host_end + 1;
        else
            host_end = auth_end;
    }
    if (port) {
        size_t pl = (size_t)(auth_end - port);
        unsigned long v = 0;
        bool ok = pl > 0 && pl <= 5;
        for (size_t i = 0; ok && i < pl; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (!ok || v == 0 || v > 65535)
            return refuse(msg, cap, "the target URL's port must be a number from 1 to 65535");
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0)
        return refuse(msg, cap, "the target URL has no host");
    char text[INET6_ADDRSTRLEN + 1];
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    memset(&u, 0, sizeof(u));
    bool literal = false;
    if (hl < sizeof(text)) {
        memcpy(text, host, hl);
        text[hl] = '\0';
        if (bracketed) {
            literal = inet_pton(AF_INET6, text, &u.in6.sin6_addr) == 1;
            u.in6.sin6_family = AF_INET6;
        } else {
            literal = inet_pton(AF_INET, text, &u.in.sin_addr) == 1;
            u.in.sin_family = AF_INET;
        }
    }
    if (bracketed && !literal)
        return refuse(msg, cap, "the target URL's host is not a valid IPv6 address");
    if (!literal) {
        if (!is_host_name(host, hl))
            return refuse(msg, cap,
                          "the target URL's host \"%.*s\" is not a valid host name or IPv4 "
                          "address",
                          (int)PT_MIN(hl, (size_t)255), host);
        if (!is_localhost(host, hl))
            return 0;
        u.in.sin_family = AF_INET;
        u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    struct pt_ssrf_verdict v = pt_ssrf_check(&u.sa, allow, n_allow);
    if (!v.why)
        return 0;
    char why[160];
    pt_ssrf_explain(&u.sa, v, why, sizeof(why));
    return refuse(msg, cap,
                  "the target %s \"%.*s\" is refused by the SSRF guard: %s (only an address the "
                  "operator allows in the configuration may be)",
                  literal ? "address" : "host", (int)PT_MIN(hl, (size_t)255), host, why);
}
