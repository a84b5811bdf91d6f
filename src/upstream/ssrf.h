/*
 * ssrf.h - the SSRF guard: which addresses a target created through the API may never reach,
 * the operator's allow-list that lifts that for chosen prefixes, and the check of a target URL
 * when a rule is written.
 *
 * Two checks, one classification. At write time pt_ssrf_check_url() refuses a URL that is not
 * https:// or whose host is an address literal in a forbidden range. At connect time the
 * upstream layer calls pt_ssrf_check() on every address it is about to connect to for an
 * upstream with ssrf_guard set (after DNS resolution, so a name that resolves, or later
 * rebinds, to a private address gets nowhere). docs/config.md lists the ranges and why.
 *
 * Everything here is pure: no allocation, no system call, no state; any thread may call it.
 */
#ifndef PT_UPSTREAM_SSRF_H
#define PT_UPSTREAM_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

/* The guard's answer about one address. */
struct pt_ssrf_verdict {
    const char *why;  /* NULL: allowed; else what the address is, to follow "ADDR is ":
                         "a private address (RFC 1918)"; static storage */
    const char *form; /* NULL, or the IPv6 form that carried a forbidden IPv4 address:
                         "IPv4-mapped", "NAT64", "6to4", "IPv4-translated"; static storage */
};

/*
 * Classifies the address of sa (AF_INET or AF_INET6; the port is ignored), ignoring any
 * allow-list. An IPv6 address that embeds an IPv4 one (IPv4-mapped ::ffff:0:0/96,
 * IPv4-translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) gets the verdict of the
 * IPv4 address, with form set. A family other than AF_INET/AF_INET6 is refused.
 */
struct pt_ssrf_verdict pt_ssrf_classify(const struct sockaddr *sa);

/*
 * The connect-time check: the verdict for the address of sa (AF_INET or AF_INET6; the port is
 * ignored), where an address inside one of the n_allow prefixes of allow (borrowed; may be
 * NULL when n_allow is 0; struct pt_cidr and its matching are config's, as for trusted_proxies)
 * is allowed whatever its range. An IPv4-mapped address also matches the IPv4 prefixes (the
 * kernel connects to that IPv4 address). Cheap: a few comparisons.
 */
struct pt_ssrf_verdict pt_ssrf_check(const struct sockaddr *sa, const struct pt_cidr *allow,
                                     size_t n_allow);

/*
 * Writes why sa was refused, as the log says it, into out (NUL-terminated, truncated to cap):
 * "10.0.0.5 is a private address (RFC 1918)", "::ffff:10.0.0.5 is a private address (RFC 1918),
 * in IPv4-mapped form". v must be a refusal (v.why not NULL). Returns the length written.
 */
size_t pt_ssrf_explain(const struct sockaddr *sa, struct pt_ssrf_verdict v, char *out, size_t cap);

/*
 * The write-time check of a target URL for an API rule: url[0..len) must be https://, with a
 * host that is a DNS name (letters, digits, '-' and '.', labels of 1 to 63, at most 253 in all,
 * a last label that is not all digits or hex: "127.1" and "0x7f000001" are not names) or an
 * address literal (dotted-quad IPv4 or a bracketed IPv6 without a zone), an optional port
 * from 1 to 65535, no user information ("user@host"), and no space or control byte anywhere. A
 * literal in a forbidden range, and a "localhost" name (RFC 6761: always loopback), is refused
 * unless allow (n_allow prefixes, borrowed) lets the address (127.0.0.1 for localhost) through.
 * Returns 0, or -EINVAL with a message for the client (a 400) in msg (NUL-terminated,
 * truncated to cap). Names are not resolved here: the connect-time check covers them.
 */
int pt_ssrf_check_url(const char *url, size_t len, const struct pt_cidr *allow, size_t n_allow,
                      char *msg, size_t cap);

#endif
