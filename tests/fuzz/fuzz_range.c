/*
 * fuzz_range.c - libFuzzer target for the static handler's Range / If-Range / HTTP-date
 * parsers (src/handler/static.c).
 *
 * Input: one byte choosing the representation size (0, 1, 10, a large value, UINT64_MAX, or
 * the next 8 bytes), then the Range value, an optional '\n', and an If-Range value. Each value
 * is copied into a buffer of exactly its length (ASan catches any read past it). Checked: a
 * partial range is non-empty and lies inside the representation (off + len <= size, computed
 * without overflow); an empty representation is never partial; If-Range never matches a weak
 * tag; a parsed date is stable when parsed again from the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handler/static.h"
#include "http/date.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_exact(const uint8_t *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (b && n)
        memcpy(b, p, n);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    uint64_t rep = 0;
    switch (data[0] % 6) {
    case 0:
        rep = 0;
        break;
    case 1:
        rep = 1;
        break;
    case 2:
        rep = 10;
        break;
    case 3:
        rep = (uint64_t)1 << 40;
        break;
    case 4:
        rep = UINT64_MAX;
        break;
    default:
        if (size < 9)
            return 0;
        memcpy(&rep, data + 1, 8);
        data += 8;
        size -= 8;
        break;
    }
    data++;
    size--;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t rlen = nl ? (size_t)(nl - data) : size;
    const uint8_t *ir = nl ? nl + 1 : data + size;
    size_t irlen = nl ? size - rlen - 1 : 0;

    char *range = dup_exact(data, rlen);
    char *ifr = dup_exact(ir, irlen);
    if (!range || !ifr)
        goto out;

    uint64_t off = 0, len = 0;
    int rc = pt_static_parse_range(range, rlen, rep, &off, &len);
    if (rc < PT_STATIC_RANGE_WHOLE || rc > PT_STATIC_RANGE_UNSATISFIABLE)
        abort();
    if (rc == PT_STATIC_RANGE_PARTIAL && (len == 0 || len > rep || off > rep - len))
        abort();

    static const char etag[] = "\"1a-2b-3c\"";
    bool ok = pt_static_if_range_ok(ifr, irlen, etag, sizeof(etag) - 1, 784111777);
    if (ok && irlen >= 2 && memchr(ifr, 'W', irlen) == ifr && ifr[1] == '/')
        abort(); /* a weak tag never satisfies If-Range */

    time_t t1, t2;
    if (pt_http_date_parse(ifr, irlen, &t1) == 0) {
        if (pt_http_date_parse(ifr, irlen, &t2) != 0 || t1 != t2)
            abort();
    }
out:
    free(range);
    free(ifr);
    return 0;
}
