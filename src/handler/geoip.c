/*
 * geoip.c - country lookups in a MaxMind DB file (libmaxminddb), and the request's client
 * address behind trusted proxies.
 *
 * Structure: struct pt_geoip wraps one MMDB_s opened with MMDB_MODE_MMAP. libmaxminddb maps
 * the file and closes its descriptor, so a file replaced on disk (rename over it, as the
 * usual updaters do) leaves the mapping intact; the next snapshot maps the new file. A file
 * rewritten in place while mapped is the one case that can fault, which docs/config.md warns
 * about.
 *
 * Threads: the MMDB_s is written only by MMDB_open and MMDB_close, on the main thread while no
 * worker can reach it (the snapshot is not yet published / has no reference left). Lookups
 * only read the mapping, so workers share one database without locks.
 *
 * Request path: MMDB_lookup_sockaddr walks the search tree and MMDB_aget_value follows the
 * path {"country", "iso_code"} in the record; neither allocates. MMDB_get_value was rejected:
 * its variadic form allocates the path array on every call.
 *
 * Which country: the record's `country` (where MaxMind places the address). `registered_country`
 * (where the block is registered, e.g. a multinational's range used abroad) is not a fallback:
 * a wrong answer would redirect a visitor by someone else's country, while no answer lets the
 * request fall through to the rule without the condition, as an unknown address does.
 */
#include "handler/geoip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/str.h"

/* Opening checks that the database holds country data: a depth-first walk from the root reads
   at most this many nodes and data records before deciding. Real country and city databases
   answer within the first record or two; the bounds keep a hostile file from costing more. */
#define CHECK_MAX_NODES 4096u
#define CHECK_MAX_RECORDS 64u
#define XFF_ENTRY_MAX 64 /* bytes of one X-Forwarded-For entry ("[v6]:port" fits) */

struct pt_geoip {
    MMDB_s mmdb; /* mapped database; read-only once opened */
};

static const char *const country_path[] = {"country", "iso_code", NULL};

/* The record's country.iso_code as a lower-case two-letter code in cc; false when absent. */
static bool record_country(MMDB_entry_s *entry, char cc[3])
{
    MMDB_entry_data_s d;
    if (MMDB_aget_value(entry, &d, country_path) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
        return false;
    for (int i = 0; i < 2; i++) {
        char ch = d.utf8_string[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch < 'a' || ch > 'z')
            return false;
        cc[i] = ch;
    }
    cc[2] = '\0';
    return true;
}

/*
 * Walks the search tree depth-first from the root (left before right) over at most
 * CHECK_MAX_NODES nodes and CHECK_MAX_RECORDS data records. Returns 1 when one of the records
 * has country.iso_code, 0 when records were found but none has it, -1 when none was reached.
 */
static int sample_country(const MMDB_s *db)
{
    uint32_t stack[2 * 128 + 2];
    size_t sp = 0, n_nodes = 0, n_records = 0;
    stack[sp++] = 0;
    while (sp > 0 && n_nodes < CHECK_MAX_NODES && n_records < CHECK_MAX_RECORDS) {
        MMDB_search_node_s node;
        if (MMDB_read_node(db, stack[--sp], &node) != MMDB_SUCCESS)
            break;
        n_nodes++;
        uint8_t types[2] = {node.left_record_type, node.right_record_type};
        uint64_t recs[2] = {node.left_record, node.right_record};
        MMDB_entry_s entries[2] = {node.left_record_entry, node.right_record_entry};
        /* Push right first so that left is read first. */
        for (int side = 1; side >= 0; side--) {
            if (types[side] == MMDB_RECORD_TYPE_SEARCH_NODE && sp < PT_ARRAY_LEN(stack))
                stack[sp++] = (uint32_t)recs[side];
        }
        for (int side = 0; side < 2; side++) {
            char cc[3];
            if (types[side] != MMDB_RECORD_TYPE_DATA)
                continue;
            n_records++;
            if (record_country(&entries[side], cc))
                return 1;
        }
    }
    return n_records ? 0 : -1;
}

int pt_geoip_open(const char *path, struct pt_geoip **out, char *err, size_t errlen)
{
    *out = NULL;
    struct pt_geoip *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
        /* libmaxminddb would say "read failed: Invalid argument" (mmap of 0 bytes). */
        snprintf(err, errlen, "the file is empty, not a MaxMind DB file");
        free(g);
        return -1;
    }
    errno = 0;
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->mmdb);
    if (rc != MMDB_SUCCESS) {
        int e = errno;
        if ((rc == MMDB_IO_ERROR || rc == MMDB_FILE_OPEN_ERROR) && e)
            snprintf(err, errlen, "%s: %s", MMDB_strerror(rc), strerror(e));
        else
            snprintf(err, errlen, "%s", MMDB_strerror(rc));
        free(g);
        return -1;
    }
    const char *type = g->mmdb.metadata.database_type ? g->mmdb.metadata.database_type : "";
    int found = sample_country(&g->mmdb);
    if (found <= 0) {
        snprintf(err, errlen,
                 found < 0 ? "the database (type \"%.64s\") maps no address to a record"
                           : "the database (type \"%.64s\") has no country.iso_code in its "
                             "records; Country= needs a country or city database",
                 type);
        MMDB_close(&g->mmdb);
        free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void pt_geoip_close(struct pt_geoip *g)
{
    if (!g)
        return;
    MMDB_close(&g->mmdb);
    free(g);
}

bool pt_geoip_country(const struct pt_geoip *g, const struct sockaddr *sa, char cc[3])
{
    struct sockaddr_in v4;
    if (!g || !sa)
        return false;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* A dual-stack listener's IPv4 client: look it up where IPv4 data lives. */
            memset(&v4, 0, sizeof(v4));
            v4.sin_family = AF_INET;
            memcpy(&v4.sin_addr, in6->sin6_addr.s6_addr + 12, 4);
            sa = (const struct sockaddr *)&v4;
        }
    } else if (sa->sa_family != AF_INET) {
        return false;
    }
    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&g->mmdb, sa, &mmdb_error);
    if (mmdb_error != MMDB_SUCCESS || !res.found_entry)
        return false;
    return record_country(&res.entry, cc);
}

/* Parses one X-Forwarded-For entry (blanks trimmed by the caller) into *out. */
static bool parse_entry(const char *s, size_t n, struct pt_sockaddr *out)
{
    char buf[XFF_ENTRY_MAX];
    if (n == 0 || n >= sizeof(buf))
        return false;
    if (s[0] == '[') {
        /* "[v6]" or "[v6]:port" */
        const char *close = memchr(s, ']', n);
        if (!close)
            return false;
        size_t rest = n - (size_t)(close - s) - 1;
        if (rest && close[1] != ':')
            return false;
        n = (size_t)(close - s) - 1;
        s++;
    } else {
        /* "a.b.c.d:port": one ':' and a '.' before it; a bare IPv6 has two ':' or more. */
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) &&
            memchr(s, '.', (size_t)(colon - s)))
            n = (size_t)(colon - s);
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, &out->u.in.sin_addr) == 1) {
        out->u.in.sin_family = AF_INET;
        out->len = sizeof(out->u.in);
        return true;
    }
    if (inet_pton(AF_INET6, buf, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->len = sizeof(out->u.in6);
        return true;
    }
    return false;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

bool pt_geoip_client_addr(const struct pt_config *cfg, const struct pt_sockaddr *peer,
                          const struct pt_req_head *h, struct pt_sockaddr *out)
{
    *out = *peer;
    if (!pt_config_is_trusted_proxy(cfg, &peer->u.sa))
        return true;
    /* Each trusted hop appended the address it received from: read from the right and stop at
       the first address that is not one of ours (RFC 7239 §5.2 describes the same walk). */
    for (size_t i = h->n_fields; i-- > 0;) {
        if (!PT_STR_CASEEQ_LIT(h->fields[i].name, "x-forwarded-for"))
            continue;
        const char *v = h->fields[i].value.p;
        size_t end = h->fields[i].value.n;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t a = start, b = end;
            end = start > 0 ? start - 1 : 0;
            while (a < b && is_blank(v[a]))
                a++;
            while (b > a && is_blank(v[b - 1]))
                b--;
            if (a == b)
                continue; /* empty list element (RFC 9110 §5.6.1 allows them) */
            struct pt_sockaddr addr;
            if (!parse_entry(v + a, b - a, &addr))
                return false;
            *out = addr;
            if (!pt_config_is_trusted_proxy(cfg, &addr.u.sa))
                return true;
        }
    }
    return true;
}
