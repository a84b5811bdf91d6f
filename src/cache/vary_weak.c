/*
 * vary_weak.c - a weak stand-in for pt_cache_vary_match (policy.h) so that the store builds
 * and its tests run before policy.c is merged; the strong definition in policy.c replaces it
 * at link time, and this file is deleted with that merge. It compares the request's value of
 * each named field byte for byte (no list normalisation); an absent field is "\1".
 */
#include <string.h>
#include <strings.h>

#include "cache/policy.h"

__attribute__((weak)) bool pt_cache_vary_match(const char *vkey, size_t vlen,
                                               const struct pt_field *qf, size_t qn)
{
    size_t i = 0;
    while (i < vlen) {
        const char *name = vkey + i;
        size_t nl = strnlen(name, vlen - i);
        if (i + nl + 1 > vlen)
            return false;
        const char *val = name + nl + 1;
        size_t vl = strnlen(val, vlen - i - nl - 1);
        const struct pt_field *f = NULL;
        for (size_t k = 0; k < qn && !f; k++)
            if (qf[k].name.n == nl && strncasecmp(qf[k].name.p, name, nl) == 0)
                f = &qf[k];
        if (f ? (f->value.n != vl || memcmp(f->value.p, val, vl) != 0)
              : !(vl == 1 && val[0] == '\1'))
            return false;
        i += nl + 1 + vl + 1;
    }
    return true;
}
