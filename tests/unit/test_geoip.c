/*
 * test_geoip.c - country lookups and the client address (src/handler/geoip.c).
 *
 * The databases are assembled here, byte by byte, from the MaxMind DB format specification
 * (a search tree built as a binary trie, 16 zero bytes, the data section, the metadata marker
 * and the metadata map), written to a temporary file and opened through pt_geoip_open, so the
 * real libmaxminddb reads them. tests/e2e/helpers/mmdb.py is the Python twin used end to end
 * and checked against mmdblookup; this one keeps the unit tests free of Python.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "handler/geoip.h"

/* ---- a tiny MaxMind DB writer --------------------------------------------------------- */

#define MAX_NODES 2048
#define EMPTY_KID (-1)

struct db {
    int kid[MAX_NODES][2]; /* >= 0 node, EMPTY_KID, or <= -2: data offset -(kid + 2) */
    int n_nodes;
    uint8_t data[4096];
    size_t data_len;
    int ip_version;
};

static void db_init(struct db *d, int ip_version)
{
    memset(d, 0, sizeof(*d));
    d->ip_version = ip_version;
    d->n_nodes = 1;
    d->kid[0][0] = d->kid[0][1] = EMPTY_KID;
}

static void put(uint8_t *buf, size_t *len, size_t cap, const void *p, size_t n)
{
    assert_true(*len + n <= cap);
    memcpy(buf + *len, p, n);
    *len += n;
}

/* Control byte(s) for type (1..15) and size (< 285 is all these tests need). */
static void put_ctrl(uint8_t *buf, size_t *len, size_t cap, int type, size_t size)
{
    uint8_t b[3];
    size_t n = 0;
    uint8_t bits = size < 29 ? (uint8_t)size : 29;
    b[n++] = (uint8_t)((type <= 7 ? type << 5 : 0) | bits);
    if (type > 7)
        b[n++] = (uint8_t)(type - 7);
    if (size >= 29)
        b[n++] = (uint8_t)(size - 29);
    put(buf, len, cap, b, n);
}

static void put_str(uint8_t *buf, size_t *len, size_t cap, const char *s)
{
    put_ctrl(buf, len, cap, 2, strlen(s));
    put(buf, len, cap, s, strlen(s));
}

/* Unsigned integer of type (5 uint16, 6 uint32, 9 uint64), minimal big-endian payload. */
static void put_uint(uint8_t *buf, size_t *len, size_t cap, int type, uint64_t v)
{
    uint8_t be[8];
    size_t n = 0;
    for (int i = 7; i >= 0; i--) {
        uint8_t byte = (uint8_t)(v >> (8 * i));
        if (byte || n)
            be[n++] = byte;
    }
    put_ctrl(buf, len, cap, type, n);
    put(buf, len, cap, be, n);
}

/* Adds a record {outer: {iso_code: code}} (or {autonomous_system_number: 64500} when outer is
   NULL) to the data section and returns its offset. */
static int add_record(struct db *d, const char *outer, const char *code)
{
    size_t at = d->data_len;
    size_t cap = sizeof(d->data);
    put_ctrl(d->data, &d->data_len, cap, 7, 1);
    if (!outer) {
        put_str(d->data, &d->data_len, cap, "autonomous_system_number");
        put_uint(d->data, &d->data_len, cap, 6, 64500);
        return (int)at;
    }
    put_str(d->data, &d->data_len, cap, outer);
    put_ctrl(d->data, &d->data_len, cap, 7, 1);
    put_str(d->data, &d->data_len, cap, "iso_code");
    put_str(d->data, &d->data_len, cap, code);
    return (int)at;
}

/* Maps cidr ("127.0.0.2/32", "2001:db8::/32"; IPv4 goes to ::a.b.c.d in an IPv6 tree) to the
   record at offset. */
static void add_net(struct db *d, const char *cidr, int offset)
{
    char addr[64];
    const char *slash = strchr(cidr, '/');
    assert_non_null(slash);
    snprintf(addr, sizeof(addr), "%.*s", (int)(slash - cidr), cidr);
    int plen = (int)strtol(slash + 1, NULL, 10);
    uint8_t bytes[16];
    memset(bytes, 0, sizeof(bytes));
    if (inet_pton(AF_INET, addr, d->ip_version == 4 ? bytes : bytes + 12) == 1) {
        if (d->ip_version == 6)
            plen += 96;
    } else {
        assert_int_equal(d->ip_version, 6);
        assert_int_equal(inet_pton(AF_INET6, addr, bytes), 1);
    }
    int node = 0;
    for (int depth = 0; depth < plen; depth++) {
        int bit = (bytes[depth / 8] >> (7 - depth % 8)) & 1;
        if (depth == plen - 1) {
            d->kid[node][bit] = -(offset + 2);
            break;
        }
        if (d->kid[node][bit] == EMPTY_KID) {
            assert_true(d->n_nodes < MAX_NODES);
            int n = d->n_nodes++;
            d->kid[n][0] = d->kid[n][1] = EMPTY_KID;
            d->kid[node][bit] = n;
        }
        assert_true(d->kid[node][bit] >= 0);
        node = d->kid[node][bit];
    }
}

static uint32_t record_value(const struct db *d, int kid)
{
    if (kid == EMPTY_KID)
        return (uint32_t)d->n_nodes;
    if (kid >= 0)
        return (uint32_t)kid;
    return (uint32_t)(d->n_nodes + 16 + (-kid - 2));
}

/* Writes the database (record size 24) to a new temporary file; returns its path (static). */
static const char *db_write(const struct db *d, const char *type)
{
    static char path[64];
    static uint8_t out[MAX_NODES * 6 + 8192];
    size_t len = 0, cap = sizeof(out);
    for (int i = 0; i < d->n_nodes; i++)
        for (int side = 0; side < 2; side++) {
            uint32_t v = record_value(d, d->kid[i][side]);
            uint8_t be[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
            put(out, &len, cap, be, 3);
        }
    static const uint8_t zeros[16];
    put(out, &len, cap, zeros, 16);
    put(out, &len, cap, d->data, d->data_len);
    put(out, &len, cap, "\xab\xcd\xefMaxMind.com", 14);
    put_ctrl(out, &len, cap, 7, 9);
    put_str(out, &len, cap, "node_count");
    put_uint(out, &len, cap, 6, (uint64_t)d->n_nodes);
    put_str(out, &len, cap, "record_size");
    put_uint(out, &len, cap, 5, 24);
    put_str(out, &len, cap, "ip_version");
    put_uint(out, &len, cap, 5, (uint64_t)d->ip_version);
    put_str(out, &len, cap, "database_type");
    put_str(out, &len, cap, type);
    put_str(out, &len, cap, "languages");
    put_ctrl(out, &len, cap, 11, 1);
    put_str(out, &len, cap, "en");
    put_str(out, &len, cap, "binary_format_major_version");
    put_uint(out, &len, cap, 5, 2);
    put_str(out, &len, cap, "binary_format_minor_version");
    put_uint(out, &len, cap, 5, 0);
    put_str(out, &len, cap, "build_epoch");
    put_uint(out, &len, cap, 9, 1700000000);
    put_str(out, &len, cap, "description");
    put_ctrl(out, &len, cap, 7, 0);
    snprintf(path, sizeof(path), "/tmp/pt_geoip_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, out, len), (ssize_t)len);
    close(fd);
    return path;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static struct sockaddr_storage addr_of(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, s, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    return ss;
}

/* The country of s as "us", or "-" when unknown. */
static const char *country_of(const struct pt_geoip *g, const char *s)
{
    static char cc[3];
    struct sockaddr_storage ss = addr_of(s);
    memset(cc, 'x', sizeof(cc));
    if (!pt_geoip_country(g, (const struct sockaddr *)&ss, cc))
        return "-";
    assert_int_equal(cc[2], '\0');
    return cc;
}

static struct pt_geoip *open_ok(const char *path)
{
    struct pt_geoip *g = NULL;
    char err[256] = "";
    if (pt_geoip_open(path, &g, err, sizeof(err)) != 0)
        fail_msg("pt_geoip_open(%s): %s", path, err);
    assert_non_null(g);
    return g;
}

/* Opening path fails with a reason containing want. */
static void open_fails(const char *path, const char *want)
{
    struct pt_geoip *g = (struct pt_geoip *)&g; /* must be reset to NULL */
    char err[256] = "";
    assert_int_equal(pt_geoip_open(path, &g, err, sizeof(err)), -1);
    assert_null(g);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void build_countries(struct db *d, int ip_version)
{
    db_init(d, ip_version);
    add_net(d, "127.0.0.2/32", add_record(d, "country", "US"));
    add_net(d, "10.0.0.0/8", add_record(d, "country", "Ca"));    /* case is not significant */
    add_net(d, "127.0.0.9/32", add_record(d, "country", "USA")); /* not alpha-2 */
    add_net(d, "127.0.0.10/32", add_record(d, "registered_country", "FR")); /* no country */
    add_net(d, "127.0.0.11/32", add_record(d, "country", "U1"));            /* not letters */
    if (ip_version == 6)
        add_net(d, "2001:db8::/32", add_record(d, "country", "DE"));
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_lookup_ipv6_database(void **state)
{
    (void)state;
    static struct db d;
    build_countries(&d, 6);
    const char *path = db_write(&d, "Test-Country");
    struct pt_geoip *g = open_ok(path);
    assert_string_equal(country_of(g, "127.0.0.2"), "us");
    assert_string_equal(country_of(g, "::ffff:127.0.0.2"), "us"); /* dual-stack IPv4 peer */
    assert_string_equal(country_of(g, "10.200.1.1"), "ca");
    assert_string_equal(country_of(g, "2001:db8:1::5"), "de");
    assert_string_equal(country_of(g, "127.0.0.1"), "-");
    assert_string_equal(country_of(g, "2001:db9::1"), "-");
    assert_string_equal(country_of(g, "127.0.0.9"), "-");
    assert_string_equal(country_of(g, "127.0.0.10"), "-"); /* registered_country: no fallback */
    assert_string_equal(country_of(g, "127.0.0.11"), "-");
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    char cc[3];
    assert_false(pt_geoip_country(g, (const struct sockaddr *)&un, cc));
    assert_false(pt_geoip_country(NULL, (const struct sockaddr *)&un, cc));
    pt_geoip_close(g);
    unlink(path);
}

static void test_lookup_ipv4_database(void **state)
{
    (void)state;
    static struct db d;
    build_countries(&d, 4);
    const char *path = db_write(&d, "Test-Country");
    struct pt_geoip *g = open_ok(path);
    assert_string_equal(country_of(g, "127.0.0.2"), "us");
    assert_string_equal(country_of(g, "::ffff:10.1.2.3"), "ca");
    assert_string_equal(country_of(g, "2001:db8::1"), "-"); /* IPv6 in an IPv4 database */
    assert_string_equal(country_of(g, "::1"), "-");
    pt_geoip_close(g);
    pt_geoip_close(NULL);
    unlink(path);
}

static void test_open_refuses_bad_files(void **state)
{
    (void)state;
    open_fails("/nonexistent/geo.mmdb", "No such file");

    char path[] = "/tmp/pt_geoip_bad_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    open_fails(path, "empty");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 50; i++)
        fputs("not a MaxMind DB file\n", f);
    fclose(f);
    open_fails(path, "metadata");
    unlink(path);

    static struct db d;
    db_init(&d, 6);
    add_net(&d, "127.0.0.0/8", add_record(&d, NULL, NULL));
    add_net(&d, "10.0.0.0/8", add_record(&d, "registered_country", "US"));
    const char *asn = db_write(&d, "GeoLite2-ASN");
    open_fails(asn, "has no country.iso_code");
    open_fails(asn, "GeoLite2-ASN");
    unlink(asn);

    db_init(&d, 4);
    add_record(&d, "country", "US"); /* data, but no network points at it */
    const char *empty = db_write(&d, "Test-Country");
    open_fails(empty, "maps no address");
    unlink(empty);
}

/* The check reads past records without country data to find one that has it. */
static void test_open_samples_past_records_without_country(void **state)
{
    (void)state;
    static struct db d;
    db_init(&d, 6);
    add_net(&d, "1.0.0.0/24", add_record(&d, "registered_country", "AU"));
    add_net(&d, "1.0.1.0/24", add_record(&d, "continent", "AS"));
    add_net(&d, "2.0.0.0/8", add_record(&d, "country", "FR"));
    const char *path = db_write(&d, "Test-City");
    struct pt_geoip *g = open_ok(path);
    assert_string_equal(country_of(g, "2.3.4.5"), "fr");
    assert_string_equal(country_of(g, "1.0.0.1"), "-");
    pt_geoip_close(g);
    unlink(path);
}

/* ---- client address ---------------------------------------------------------------------- */

struct xff_case {
    const char *peer;
    const char *xff[3]; /* header lines, NULL-terminated */
    const char *want;   /* client address, or NULL: unknown */
};

static void test_client_addr(void **state)
{
    (void)state;
    struct pt_cidr trusted[2];
    assert_int_equal(pt_config_parse_cidr("127.0.0.5", &trusted[0]), 0);
    assert_int_equal(pt_config_parse_cidr("fd00::/8", &trusted[1]), 0);
    struct pt_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.trusted_proxies = trusted;
    cfg.n_trusted_proxies = 2;
    static const struct xff_case cases[] = {
        {"127.0.0.1", {"1.2.3.4", NULL}, "127.0.0.1"}, /* untrusted peer: header ignored */
        {"127.0.0.5", {NULL}, "127.0.0.5"},            /* trusted, no header */
        {"127.0.0.5", {"1.2.3.4", NULL}, "1.2.3.4"},
        {"::ffff:127.0.0.5", {"1.2.3.4", NULL}, "1.2.3.4"}, /* mapped peer is trusted too */
        {"127.0.0.5", {"9.9.9.9, 1.2.3.4", NULL}, "1.2.3.4"},
        {"127.0.0.5", {"9.9.9.9, 1.2.3.4, 127.0.0.5", NULL}, "1.2.3.4"},
        {"127.0.0.5", {"1.2.3.4,fd00::1 ,  127.0.0.5", NULL}, "1.2.3.4"},
        {"127.0.0.5", {"9.9.9.9", "1.2.3.4", NULL}, "1.2.3.4"},
        {"127.0.0.5", {"9.9.9.9", "1.2.3.4, 127.0.0.5", NULL}, "1.2.3.4"},
        {"127.0.0.5", {"9.9.9.9", "127.0.0.5", NULL}, "9.9.9.9"},
        {"127.0.0.5", {"127.0.0.5, 127.0.0.5", NULL}, "127.0.0.5"}, /* all trusted */
        {"127.0.0.5", {"1.2.3.4:4711", NULL}, "1.2.3.4"},
        {"127.0.0.5", {"[2001:db8::1]:443", NULL}, "2001:db8::1"},
        {"127.0.0.5", {"[2001:db8::1]", NULL}, "2001:db8::1"},
        {"127.0.0.5", {"2001:db8::1", NULL}, "2001:db8::1"},
        {"127.0.0.5", {"::ffff:1.2.3.4", NULL}, "::ffff:1.2.3.4"},
        {"127.0.0.5", {"1.2.3.4, , ", NULL}, "1.2.3.4"}, /* empty elements skipped */
        {"127.0.0.5", {"", NULL}, "127.0.0.5"},
        {"127.0.0.5", {"1.2.3.4, unknown", NULL}, NULL},
        {"127.0.0.5", {"unknown, 1.2.3.4", NULL}, "1.2.3.4"}, /* never read that far */
        {"127.0.0.5", {"[2001:db8::1", NULL}, NULL},
        {"127.0.0.5", {"[2001:db8::1]x", NULL}, NULL},
        {"127.0.0.5", {"1.2.3.4.5", NULL}, NULL},
        {"127.0.0.5",
         {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee:ffff", NULL},
         NULL}, /* too long for an address */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct xff_case *t = &cases[i];
        struct pt_field hs[4];
        size_t n = 0;
        hs[n++] = (struct pt_field){PT_STR("Accept"), PT_STR("*/*")};
        for (size_t k = 0; t->xff[k]; k++)
            hs[n++] = (struct pt_field){k ? PT_STR("x-forwarded-FOR") : PT_STR("X-Forwarded-For"),
                                        {t->xff[k], strlen(t->xff[k])}};
        struct pt_req_head h;
        memset(&h, 0, sizeof(h));
        h.fields = hs;
        h.n_fields = n;
        struct pt_sockaddr peer, out;
        memset(&peer, 0, sizeof(peer));
        struct sockaddr_storage ss = addr_of(t->peer);
        memcpy(&peer.u, &ss, sizeof(peer.u));
        peer.len = ss.ss_family == AF_INET ? sizeof(peer.u.in) : sizeof(peer.u.in6);
        bool ok = pt_geoip_client_addr(&cfg, &peer, &h, &out);
        char got[64] = "-";
        if (ok) {
            const void *a = out.u.sa.sa_family == AF_INET ? (const void *)&out.u.in.sin_addr
                                                          : (const void *)&out.u.in6.sin6_addr;
            assert_non_null(inet_ntop(out.u.sa.sa_family, a, got, sizeof(got)));
            assert_int_equal(out.len,
                             out.u.sa.sa_family == AF_INET ? sizeof(out.u.in) : sizeof(out.u.in6));
        }
        if (!t->want ? ok : (!ok || strcmp(got, t->want) != 0))
            fail_msg("case %zu (peer %s, xff \"%s\"): got %s, want %s", i, t->peer,
                     t->xff[0] ? t->xff[0] : "", ok ? got : "unknown",
                     t->want ? t->want : "unknown");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_ipv6_database),
        cmocka_unit_test(test_lookup_ipv4_database),
        cmocka_unit_test(test_open_refuses_bad_files),
        cmocka_unit_test(test_open_samples_past_records_without_country),
        cmocka_unit_test(test_client_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
