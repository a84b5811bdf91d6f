/*
 * fuzz_toml.c - libFuzzer target for the TOML reader and the netlify.toml reader.
 *
 * Arbitrary bytes go through pt_toml_parse; an accepted document is walked whole (every string
 * must be NUL-terminated at its length and hold no NUL, tables' keys likewise), and then read
 * as a netlify.toml, whose rules must carry a from path starting with '/'. A failed parse must
 * leave *root NULL and say why. One arena per input; the leak checker covers the rest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/netlify.h"
#include "config/toml.h"
#include "core/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct pt_toml_value *v, int depth)
{
    if (depth > 2 * PT_TOML_MAX_DEPTH + 2)
        abort();
    switch (v->type) {
    case PT_TOML_STRING:
        if (!v->str || strlen(v->str) != v->str_len)
            abort();
        break;
    case PT_TOML_INTEGER:
    case PT_TOML_FLOAT:
    case PT_TOML_BOOL:
        break;
    case PT_TOML_ARRAY:
        for (size_t i = 0; i < v->n_items; i++)
            walk(v->items[i], depth + 1);
        break;
    case PT_TOML_TABLE:
        if (v->n_kvs > PT_TOML_MAX_KEYS)
            abort();
        for (size_t i = 0; i < v->n_kvs; i++) {
            if (strlen(v->kvs[i].key) != v->kvs[i].key_len)
                abort();
            if (pt_toml_get(v, v->kvs[i].key) == NULL)
                abort();
            walk(v->kvs[i].value, depth + 1);
        }
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_arena a;
    struct pt_toml_value *root = NULL;
    char err[256];
    int line = -1;
    pt_arena_init(&a, 0);
    int rc = pt_toml_parse(&a, (const char *)data, size, &root, &line, err, sizeof(err));
    if (rc == PT_OK) {
        if (!root || root->type != PT_TOML_TABLE)
            abort();
        walk(root, 0);
    } else if (root || err[0] == '\0' || line < 0) {
        abort();
    }
    struct pt_nf_rules rules = {0};
    struct pt_nf_header_rules headers = {0};
    struct pt_nf_errors errs = {0};
    int nrc =
        pt_nf_parse_toml(&a, "netlify.toml", (const char *)data, size, &rules, &headers, &errs);
    if ((nrc == PT_OK) != (rc == PT_OK))
        abort();
    for (size_t i = 0; i < rules.n; i++)
        if (rules.items[i].from_path[0] != '/' || !rules.items[i].to)
            abort();
    for (size_t i = 0; i < headers.n; i++)
        if (headers.items[i].n_headers == 0)
            abort();
    pt_arena_free(&a);
    return 0;
}
