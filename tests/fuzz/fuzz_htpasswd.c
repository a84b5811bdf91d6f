/*
 * fuzz_htpasswd.c - libFuzzer target for the htpasswd line parser
 * (pt_config_parse_htpasswd_line, config/config_auth.c) and the Basic credentials decoder
 * (pt_basic_decode, guard/auth_basic.c).
 *
 * Each input line is parsed in a copy sized exactly to it (ASan catches a read past it). An
 * accepted line must give a non-empty user without ':' and a hash with an accepted prefix and
 * no space, both inside the line. The whole input is also decoded as an Authorization value:
 * a success must hold a ':' and fit the output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "guard/auth_basic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        char *line = malloc(len + 1);
        memcpy(line, p, len);
        struct pt_htpasswd_user u;
        const char *why = NULL;
        int rc = pt_config_parse_htpasswd_line(line, len, &u, &why);
        if (rc < 0 && !why)
            abort();
        if (rc > 0) {
            if (u.name < line || u.hash < line || u.hash + strlen(u.hash) > line + len ||
                !u.name[0] || strchr(u.name, ':') || u.hash[0] != '$' || strchr(u.hash, ' '))
                abort();
        }
        free(line);
        p = nl ? nl + 1 : end;
    }
    char out[256];
    ssize_t n = pt_basic_decode((const char *)data, size, out, sizeof(out));
    if (n >= 0 && ((size_t)n > sizeof(out) || !memchr(out, ':', (size_t)n)))
        abort();
    return 0;
}
