/*
 * fuzz_h1_request.c - libFuzzer target for pt_h1_find_head_end + pt_h1_parse_request.
 *
 * The input is one connection's bytes. The head end is found twice, whole and in two reads split
 * at a point taken from the input, and must agree; the parser then runs on exactly the head (in
 * its own heap copy, so ASan catches any read past it) and every slice it returns must lie
 * inside the head. Input lengths are also fed straight to the parser to check it never reads past
 * len on a truncated head.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check_slice(struct pt_str s, const char *base, size_t len)
{
    if (s.n == 0)
        return;
    if (s.p < base || s.p + s.n > base + len)
        abort();
}

static void parse_and_check(const char *buf, size_t len, size_t cap, size_t uri_max)
{
    struct pt_field h[16];
    struct pt_h1_request r;

    memset(&r, 0, sizeof(r));
    r.headers = h;
    r.num_headers = cap;
    int rc = pt_h1_parse_request(buf, len, &r, uri_max);
    if (rc > 0) {
        if ((size_t)rc > len || r.num_headers > cap)
            abort();
        check_slice(r.method, buf, (size_t)rc);
        check_slice(r.target, buf, (size_t)rc);
        check_slice(r.host, buf, (size_t)rc);
        if (r.target.n > uri_max || r.target.n == 0 || r.method.n == 0)
            abort();
        if (r.minor_version != 0 && r.minor_version != 1)
            abort();
        if (r.framing.is_chunked && r.framing.content_length >= 0)
            abort();
        if (r.minor_version == 1 && !r.has_host)
            abort();
        for (size_t i = 0; i < r.num_headers; i++) {
            if (h[i].name.n == 0)
                abort();
            check_slice(h[i].name, buf, (size_t)rc);
            check_slice(h[i].value, buf, (size_t)rc);
        }
    } else if (rc != PT_H1_INCOMPLETE && rc != PT_H1_EBAD && rc != PT_H1_ETOOMANY &&
               rc != PT_H1_EURI && rc != PT_H1_EVERSION && rc != PT_H1_ECODING) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *in = (const char *)d;
    size_t scanned = 0;
    ssize_t end = pt_h1_find_head_end(in, n, &scanned);

    /* Resumed in two reads, the head end must be the same. */
    size_t cut = n ? d[0] % (n + 1) : 0;
    size_t s2 = 0;
    ssize_t e2 = pt_h1_find_head_end(in, cut, &s2);
    if (e2 == PT_H1_INCOMPLETE)
        e2 = pt_h1_find_head_end(in, n, &s2);
    if (e2 != end)
        abort();

    if (end > 0) {
        char *head = malloc((size_t)end);
        memcpy(head, in, (size_t)end);
        parse_and_check(head, (size_t)end, 16, 64);
        parse_and_check(head, (size_t)end, 2, 8192);
        free(head);
    }
    /* The raw input as if it were a head: no reads past n whatever it holds. */
    char *raw = malloc(n ? n : 1);
    memcpy(raw, in, n);
    parse_and_check(raw, n, 16, 8192);
    free(raw);
    return 0;
}
