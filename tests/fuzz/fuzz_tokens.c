/*
 * fuzz_tokens.c - libFuzzer target for the admin tokens file parser (admin/tokens.c).
 *
 * Each input is parsed as a whole file into a bounded error buffer. Accepted: every entry has
 * a valid name and a scope, no two names are equal, and looking up the input itself finds
 * nothing or an entry (never crashes). Refused: no entries are left and the message names the
 * file. The error buffer is exactly its declared size, so ASan catches a write past it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/tokens.h"
#include "core/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_tokens t;
    char *err = malloc(300);
    if (!err)
        return 0;
    int rc = pt_tokens_parse("f", (const char *)data, size, &t, err, 300);
    if (rc == 0) {
        for (size_t i = 0; i < t.n; i++) {
            PT_BUG_ON(!pt_token_name_ok(t.items[i].name, strlen(t.items[i].name)));
            PT_BUG_ON(t.items[i].scope != PT_SCOPE_READ && t.items[i].scope != PT_SCOPE_WRITE);
            for (size_t j = 0; j < i; j++)
                PT_BUG_ON(strcmp(t.items[i].name, t.items[j].name) == 0);
        }
        (void)pt_tokens_find(&t, (const char *)data, size);
        pt_tokens_free(&t);
    } else {
        PT_BUG_ON(t.n != 0 || t.items != NULL);
        PT_BUG_ON(strncmp(err, "f:", 2) != 0);
    }
    free(err);
    return 0;
}
