/*
 * fuzz_h1_chunked.c - libFuzzer target for pt_h1_chunked_decode.
 *
 * The first byte picks a split point (and a small trailer limit when odd); the rest is a chunked
 * body. It is decoded whole, and again in two pieces cut at that point, each piece in its own
 * heap buffer. Invariants: the decoded length never exceeds the input, bytes reported as
 * following the body fit in the buffer, and whole and split decoding give the same result code
 * (counting the unfed piece as following bytes), the same decoded bytes and the same following
 * bytes. The split decoding keeps the trailers (want_trailers, a buffer given at
 * PT_H1_TRAILERS), which must change none of that; the kept lines fit the limit and split into
 * fields (pt_h1_trailer_fields) once the body ended.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

struct result {
    ssize_t rc;
    char *out; /* decoded bytes, then following bytes */
    size_t out_n;
    size_t rest_n;
};

static void decode(const char *in, size_t n, size_t cut, size_t max_tr, bool keep,
                   struct result *res)
{
    struct pt_h1_chunked dec;
    size_t start = 0;
    size_t tr_cap = max_tr ? max_tr : PT_H1_TRAILER_MAX_DEFAULT;
    char *tr = NULL;

    memset(&dec, 0, sizeof(dec));
    dec.max_trailer_bytes = max_tr;
    dec.want_trailers = keep;
    res->out = malloc(n ? n : 1);
    res->out_n = 0;
    res->rest_n = 0;
    res->rc = PT_H1_INCOMPLETE;
    for (int piece = 0; piece < 2; piece++) {
        size_t stop = piece == 0 ? cut : n;
        size_t len = stop - start;
        char *buf = malloc(len ? len : 1);
        memcpy(buf, in + start, len);
        ssize_t rc = pt_h1_chunked_decode(&dec, buf, &len);
        if (rc == PT_H1_TRAILERS) {
            if (!keep || tr || len + dec.unread > stop - start)
                abort();
            tr = malloc(tr_cap);
            dec.tr = tr;
            dec.max_trailer_bytes = tr_cap;
            size_t m = dec.unread;
            rc = pt_h1_chunked_decode(&dec, buf + len, &m);
            if (m != 0)
                abort();
        }
        if (len > stop - start)
            abort();
        memcpy(res->out + res->out_n, buf, len);
        res->out_n += len;
        if (rc >= 0 && tr) {
            struct pt_field f[64];
            if (dec.tr_len > tr_cap || dec.tr_len == 0 ||
                pt_h1_trailer_fields(tr, dec.tr_len, f, 64) == 0)
                abort();
        }
        if (rc >= 0) {
            if ((size_t)rc > stop - start - len)
                abort();
            memcpy(res->out + res->out_n, buf + len, (size_t)rc);
            memcpy(res->out + res->out_n + (size_t)rc, in + stop, n - stop);
            res->rest_n = (size_t)rc + (n - stop);
            res->rc = (ssize_t)res->rest_n;
            free(buf);
            free(tr);
            return;
        }
        free(buf);
        res->rc = rc;
        if (rc != PT_H1_INCOMPLETE) {
            if (rc != PT_H1_EBAD)
                abort();
            free(tr);
            return;
        }
        start = stop;
    }
    free(tr);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1)
        return 0;
    size_t body_n = n - 1;
    const char *body = (const char *)d + 1;
    size_t cut = body_n ? d[0] % (body_n + 1) : 0;
    size_t max_tr = (d[0] & 1) ? 16 : 0;
    struct result whole, split;

    decode(body, body_n, body_n, max_tr, false, &whole);
    decode(body, body_n, cut, max_tr, true, &split);
    if (whole.out_n + whole.rest_n > body_n)
        abort();
    if (whole.rc != split.rc || whole.out_n != split.out_n || whole.rest_n != split.rest_n)
        abort();
    if (memcmp(whole.out, split.out, whole.out_n + whole.rest_n) != 0)
        abort();
    free(whole.out);
    free(split.out);
    return 0;
}
