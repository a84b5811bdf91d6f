/*
 * geoip.h - the client's country for Netlify `Country=` conditions, from a MaxMind DB file.
 *
 * The server opens the file named by `geoip.database` once per configuration snapshot
 * (pt_geoip_open, memory-mapped through Debian's libmaxminddb) and closes it when the snapshot
 * is freed, so a reload (SIGHUP) picks up a replaced file while requests on the old snapshot
 * keep the old mapping. An opened database is immutable: every worker thread looks up in it at
 * once without locks, and a lookup neither allocates nor blocks.
 *
 * The client address is the peer's, or, when the peer is one of `trusted_proxies`, the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy (pt_geoip_client_addr).
 */
#ifndef PT_HANDLER_GEOIP_H
#define PT_HANDLER_GEOIP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"
#include "http/h1_parse.h"

struct pt_geoip; /* an opened database; opaque */

/*
 * Opens the MaxMind DB file at path (memory-mapped) and checks that it is a database this
 * module can use: libmaxminddb accepts its format and metadata, and its records carry
 * country.iso_code (a sample of the first records is read; an ASN or anonymous-IP database
 * is refused here rather than never matching). Returns 0 and *out (close it with
 * pt_geoip_close), or -1 with err holding the reason (libmaxminddb's MMDB_strerror text, or
 * what is missing), without the file name. Blocks on file I/O: main thread only.
 */
int pt_geoip_open(const char *path, struct pt_geoip **out, char *err, size_t errlen);

/* Unmaps and frees g (NULL is fine). No lookup may be running on it. */
void pt_geoip_close(struct pt_geoip *g);

/*
 * The country of address sa (AF_INET, or AF_INET6 where an IPv4-mapped address is looked up
 * as IPv4): writes its ISO 3166-1 alpha-2 code, lower-cased and NUL-terminated, into cc and
 * returns true. False when the address is not in the database, its record has no
 * country.iso_code (registered_country is not used as a fallback), or an IPv6 address meets an
 * IPv4-only database. Thread-safe; never allocates or blocks.
 */
bool pt_geoip_country(const struct pt_geoip *g, const struct sockaddr *sa, char cc[3]);

/*
 * The address of the client that sent a request arriving from peer with head h: peer itself,
 * unless peer is one of cfg's trusted_proxies; then X-Forwarded-For is read from the right
 * (several header lines count as one list, in order) and the first entry that is not a trusted
 * proxy is the client (the left-most entry when all are). Entries may be IPv4, IPv6, "[IPv6]"
 * or carry a ":port". Returns true with *out set, or false when an entry that had to be read
 * is not an address ("unknown", garbage): the client is then unknown. Never allocates.
 */
bool pt_geoip_client_addr(const struct pt_config *cfg, const struct pt_sockaddr *peer,
                          const struct pt_req_head *h, struct pt_sockaddr *out);

#endif
