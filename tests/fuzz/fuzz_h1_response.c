/*
 * fuzz_h1_response.c - libFuzzer target for pt_h1_parse_response.
 *
 * The head is found with pt_h1_find_head_end and parsed from its own heap copy (so ASan sees any
 * read past it); the raw input is parsed too. Invariants: slices inside the head, status in
 * 100..999, never both framings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check_slice(struct pt_str s, const char *base, size_t len)
{
    if (s.n != 0 && (s.p < base || s.p + s.n > base + len))
        abort();
}

static void parse_and_check(const char *buf, size_t len)
{
    struct pt_field h[16];
    struct pt_h1_response r;

    memset(&r, 0, sizeof(r));
    r.headers = h;
    r.num_headers = 16;
    int rc = pt_h1_parse_response(buf, len, &r);
    if (rc > 0) {
        if ((size_t)rc > len || r.num_headers > 16)
            abort();
        if (r.status < 100 || r.status > 999)
            abort();
        if (r.framing.is_chunked && r.framing.content_length >= 0)
            abort();
        check_slice(r.reason, buf, (size_t)rc);
        for (size_t i = 0; i < r.num_headers; i++) {
            check_slice(h[i].name, buf, (size_t)rc);
            check_slice(h[i].value, buf, (size_t)rc);
        }
    } else if (rc != PT_H1_INCOMPLETE && rc != PT_H1_EBAD && rc != PT_H1_ETOOMANY &&
               rc != PT_H1_EVERSION) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    size_t scanned = 0;
    ssize_t end = pt_h1_find_head_end((const char *)d, n, &scanned);

    if (end > 0) {
        char *head = malloc((size_t)end);
        memcpy(head, d, (size_t)end);
        parse_and_check(head, (size_t)end);
        free(head);
    }
    char *raw = malloc(n ? n : 1);
    memcpy(raw, d, n);
    parse_and_check(raw, n);
    free(raw);
    return 0;
}
