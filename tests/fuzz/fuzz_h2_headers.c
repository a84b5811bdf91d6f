/*
 * fuzz_h2_headers.c - libFuzzer target for the HTTP/2 header glue (src/http/h2_headers.c).
 *
 * Input: one flags byte (bits 0-1: request, response or trailers; bit 2: extended CONNECT
 * allowed; bit 3: small limits), then one field per line, "name:value" (the separator is the
 * first ':' after the first byte, so ":path:/x" is the field :path). Each name and value is
 * copied into a heap block of exactly its length, so ASan catches a read past any of them.
 *
 * Checked: an accepted block's slices are the fed bytes or lie in the caller's buffers; every
 * stored field is a lowercase name and a value HTTP/2 may carry (nghttp2's own name and value
 * checks agree), never a pseudo-header, Host, Cookie or TE; a request's pseudo-headers obey the rules; errors are the module's own codes.
 * Round trips: an accepted block's fields sent back with pt_h2h_response_nv() (and, for a
 * request, the request with pt_h2h_request_nv()) must be accepted again, with the same method,
 * authority and path.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2_headers.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#define MAXF 32

static void in_fed(struct pt_str s, char *const *bufs, const size_t *lens, size_t nb)
{
    if (s.n == 0)
        return;
    for (size_t i = 0; i < nb; i++)
        if (s.p >= bufs[i] && s.p + s.n <= bufs[i] + lens[i])
            return;
    abort();
}

static void field_ok(const struct pt_field *f, bool is_request)
{
    if (f->name.n == 0 || f->name.p[0] == ':')
        abort();
    for (size_t i = 0; i < f->name.n; i++)
        if (f->name.p[i] >= 'A' && f->name.p[i] <= 'Z')
            abort();
    if ((is_request && pt_str_eq(f->name, "host", 4)) || pt_str_eq(f->name, "te", 2) ||
        pt_str_eq(f->name, "connection", 10))
        abort();
    /* never looser than nghttp2's own checks */
    if (!nghttp2_check_header_name((const uint8_t *)f->name.p, f->name.n) ||
        !nghttp2_check_header_value_rfc9113((const uint8_t *)f->value.p, f->value.n))
        abort();
}

static bool is_err(int rc)
{
    return rc <= PT_H2H_ENAME && rc >= PT_H2H_ETOOBIG;
}

/* Sends fields back as a response and receives them again: must pass. */
static void round_trip_fields(const struct pt_field *f, uint32_t nf)
{
    static const struct pt_h2h_limits big = {SIZE_MAX, 1000, false};
    nghttp2_nv nv[MAXF + 1];
    char buf[8192];
    int n = pt_h2h_response_nv(200, f, nf, nv, MAXF + 1, buf, sizeof(buf));
    if (n == PT_H2H_ETOOBIG)
        return;
    if (n < 1 || (size_t)n > (size_t)nf + 1)
        abort();
    struct pt_h2h_block b;
    struct pt_field out[MAXF];
    struct pt_h2h_response r;
    pt_h2h_begin(&b, PT_H2H_RESPONSE, &big, out, MAXF, NULL, 0);
    if (pt_h2h_feed_nv(&b, nv, (size_t)n) != 0 || pt_h2h_finish_response(&b, &r) != 0)
        abort();
    if (r.status != 200 || r.n_fields != (uint32_t)n - 1)
        abort();
}

/* Sends the request to an "upstream" and receives it again: same method, authority, path. */
static void round_trip_request(const struct pt_h2h_request *q)
{
    static const struct pt_h2h_limits big = {SIZE_MAX, 1000, false};
    if (q->protocol.n)
        return; /* extended CONNECT goes upstream as an HTTP/1.1 Upgrade, not through here */
    struct pt_h2h_h1_request h = {q->method,    q->is_connect ? q->authority : q->target,
                                  q->authority, q->scheme,
                                  q->fields,    q->n_fields};
    nghttp2_nv nv[MAXF + 4];
    char buf[8192];
    int n = pt_h2h_request_nv(&h, nv, MAXF + 4, buf, sizeof(buf));
    if (n == PT_H2H_ETOOBIG)
        return;
    if (n < 2)
        abort();
    struct pt_h2h_block b;
    struct pt_field out[MAXF];
    char cookie[8192];
    struct pt_h2h_request r;
    pt_h2h_begin(&b, PT_H2H_REQUEST, &big, out, MAXF, cookie, sizeof(cookie));
    if (pt_h2h_feed_nv(&b, nv, (size_t)n) != 0 || pt_h2h_finish_request(&b, &r) != 0)
        abort();
    if (!pt_str_eq(r.method, q->method.p, q->method.n) ||
        !pt_str_eq(r.authority, q->authority.p, q->authority.n) ||
        !pt_str_eq(r.target, q->target.p, q->target.n))
        abort();
    /* HTTP2-Settings is the one field a request may carry that is never sent on */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < q->n_fields; i++)
        kept += !pt_str_eq(q->fields[i].name, "http2-settings", 14);
    if (r.n_fields != kept)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1 || n > 16384)
        return 0;
    int kind = d[0] & 3;
    if (kind == 3)
        kind = PT_H2H_REQUEST;
    struct pt_h2h_limits lim = {(d[0] & 8) ? 200 : 65536, (d[0] & 8) ? 6 : 200, (d[0] & 4) != 0};

    /* split into fields, each name and value in its own exact-size block */
    char *bufs[2 * 256 + 1]; /* names and values, then the Cookie buffer */
    size_t lens[2 * 256 + 1];
    size_t nb = 0;
    const uint8_t *p = d + 1, *end = d + n;
    while (p < end && nb + 2 <= 2 * 256) {
        const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const uint8_t *sep = eol - p > 1 ? memchr(p + 1, ':', (size_t)(eol - p - 1)) : NULL;
        const uint8_t *name_end = sep ? sep : eol;
        const uint8_t *val = sep ? sep + 1 : eol;
        lens[nb] = (size_t)(name_end - p);
        bufs[nb] = malloc(lens[nb] ? lens[nb] : 1);
        memcpy(bufs[nb], p, lens[nb]);
        nb++;
        lens[nb] = (size_t)(eol - val);
        bufs[nb] = malloc(lens[nb] ? lens[nb] : 1);
        memcpy(bufs[nb], val, lens[nb]);
        nb++;
        p = eol < end ? eol + 1 : end;
    }

    struct pt_h2h_block b;
    struct pt_field fields[MAXF];
    size_t cookie_cap = (d[0] & 8) ? 16 : 4096;
    char *cookie = malloc(cookie_cap);
    bufs[nb] = cookie;
    lens[nb] = cookie_cap;
    pt_h2h_begin(&b, kind, &lim, fields, MAXF, cookie, cookie_cap);
    int rc = 0;
    for (size_t i = 0; i + 1 < nb && rc == 0; i += 2)
        rc = pt_h2h_field(&b, (struct pt_str){bufs[i], lens[i]},
                          (struct pt_str){bufs[i + 1], lens[i + 1]});
    if (rc != 0 && (!is_err(rc) || pt_h2h_field(&b, PT_STR("x"), PT_STR("y")) != rc))
        abort();

    if (rc == 0 && kind == PT_H2H_REQUEST) {
        struct pt_h2h_request r;
        rc = pt_h2h_finish_request(&b, &r);
        if (rc == 0) {
            if (r.n_fields > MAXF || r.cookie.n > cookie_cap || r.method.n == 0)
                abort();
            in_fed(r.method, bufs, lens, nb);
            in_fed(r.scheme, bufs, lens, nb);
            in_fed(r.authority, bufs, lens, nb);
            in_fed(r.target, bufs, lens, nb);
            in_fed(r.path, bufs, lens, nb);
            in_fed(r.query, bufs, lens, nb);
            in_fed(r.protocol, bufs, lens, nb + 1);
            in_fed(r.cookie, bufs + nb, lens + nb, 1);
            if (r.is_connect && !r.protocol.n && (r.target.n || r.scheme.n))
                abort();
            if (!(r.is_connect && !r.protocol.n) && r.target.n == 0)
                abort();
            if (r.protocol.n && !r.is_connect)
                abort();
            if (r.path.n + (r.has_query ? r.query.n + 1 : 0) != r.target.n)
                abort();
            for (uint32_t i = 0; i < r.n_fields; i++) {
                field_ok(&r.fields[i], true);
                in_fed(r.fields[i].name, bufs, lens, nb);
                in_fed(r.fields[i].value, bufs, lens, nb);
                if (pt_str_eq(r.fields[i].name, "cookie", 6))
                    abort();
            }
            round_trip_fields(r.fields, r.n_fields);
            round_trip_request(&r);
        }
    } else if (rc == 0 && kind == PT_H2H_RESPONSE) {
        struct pt_h2h_response r;
        rc = pt_h2h_finish_response(&b, &r);
        if (rc == 0) {
            if (r.status < 100 || r.status > 999 || r.status == 101 || r.n_fields > MAXF)
                abort();
            for (uint32_t i = 0; i < r.n_fields; i++)
                field_ok(&r.fields[i], false);
            round_trip_fields(r.fields, r.n_fields);
        }
    } else if (rc == 0) {
        struct pt_field *tf;
        uint32_t tn;
        rc = pt_h2h_finish_trailers(&b, &tf, &tn);
        if (rc == 0) {
            for (uint32_t i = 0; i < tn; i++)
                field_ok(&tf[i], false);
            nghttp2_nv nv[MAXF];
            char buf[8192];
            int k = pt_h2h_trailers_nv(tf, tn, nv, MAXF, buf, sizeof(buf));
            if (k < 0 && k != PT_H2H_ETOOBIG)
                abort();
        }
    }
    if (rc != 0 && !is_err(rc))
        abort();
    for (size_t i = 0; i <= nb; i++)
        free(bufs[i]);
    return 0;
}
