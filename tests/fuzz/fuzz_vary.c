/*
 * fuzz_vary.c - libFuzzer target for the cache's Vary keys (pt_cache_vary_key,
 * pt_cache_vary_match in src/cache/policy.c).
 *
 * Input: a byte giving the output capacity, a byte giving how many of the following
 * '\n'-separated lines are Vary values (0..3); the other lines are request fields "name:value"
 * (without a colon, the line is an Accept-Encoding value). Every value is copied into a buffer
 * of exactly its length, and the key into one of exactly the chosen capacity (ASan catches
 * any access past them). Checked: the result is -1 or within the capacity; a key matches the
 * request it was made from; the same key comes out with a larger buffer; the request fields
 * in reverse order give a key that matches the first one when each name appears once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINES_MAX 12

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 16384)
        return 0;
    size_t cap = (size_t)data[0] * 8;
    size_t nvary = data[1] % 4;
    struct pt_field r[LINES_MAX], q[LINES_MAX], rq[LINES_MAX];
    char *bufs[LINES_MAX];
    size_t nr = 0, nq = 0, nb = 0, i = 2;
    while (i < size && nb < LINES_MAX) {
        size_t j = i;
        while (j < size && data[j] != '\n')
            j++;
        size_t len = j - i;
        char *b = malloc(len ? len : 1);
        if (!b)
            abort();
        memcpy(b, data + i, len);
        bufs[nb++] = b;
        if (nr < nvary) {
            r[nr++] = (struct pt_field){PT_STR("Vary"), {b, len}};
        } else {
            char *c = memchr(b, ':', len);
            if (c)
                q[nq++] =
                    (struct pt_field){{b, (size_t)(c - b)}, {c + 1, len - (size_t)(c - b) - 1}};
            else
                q[nq++] = (struct pt_field){PT_STR("Accept-Encoding"), {b, len}};
        }
        i = j + 1;
    }

    char *out = malloc(cap ? cap : 1);
    static char big[65536];
    if (!out)
        abort();
    ssize_t n = pt_cache_vary_key(r, nr, q, nq, out, cap);
    ssize_t nbig = pt_cache_vary_key(r, nr, q, nq, big, sizeof(big));
    if (n < -1 || (n >= 0 && (size_t)n > cap))
        abort();
    if (n >= 0) {
        if (nbig != n || memcmp(out, big, (size_t)n) != 0)
            abort();
        if (!pt_cache_vary_match(out, (size_t)n, q, nq))
            abort();
        /* reversed request fields: the same key when no name repeats */
        bool repeats = false;
        for (size_t a = 0; a < nq; a++) {
            rq[nq - 1 - a] = q[a];
            for (size_t b = a + 1; b < nq; b++)
                repeats |= q[a].name.n == q[b].name.n &&
                           strncasecmp(q[a].name.p, q[b].name.p, q[a].name.n) == 0;
        }
        if (!repeats && !pt_cache_vary_match(out, (size_t)n, rq, nq))
            abort();
    }
    free(out);
    for (size_t k = 0; k < nb; k++)
        free(bufs[k]);
    return 0;
}
