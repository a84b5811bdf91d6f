/*
 * fuzz_redirects.c - libFuzzer target for the _redirects and _headers readers.
 *
 * The same bytes are read as a _redirects file and as a _headers file. Every rule that comes
 * back must satisfy the invariants the router will rely on: from_path and to start with '/'
 * (or to is an http(s) URL), the status is one of Netlify's, proxy and rewrite agree with the
 * target's form, and every error text starts with the file name. All memory is in one arena, so
 * the leak checker proves nothing escapes it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/netlify.h"
#include "core/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rule(const struct pt_nf_rule *r)
{
    if (!r->from || !r->from_path || !r->to || r->from_path[0] != '/')
        abort();
    if (!r->is_to_url && r->to[0] != '/')
        abort();
    switch (r->status) {
    case 200:
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
    case 404:
    case 410:
    case 451:
        break;
    default:
        abort();
    }
    if (r->is_proxy && (!r->is_to_url || r->status != 200))
        abort();
    if (r->is_rewrite && r->is_to_url)
        abort();
    if ((r->from_host == NULL) != (r->from_scheme == NULL))
        abort();
    if (r->n_params > PT_NF_MAX_PARAMS || r->line < 1)
        abort();
    for (size_t i = 0; i < r->n_query; i++)
        if (!r->query[i].name[0])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_arena a;
    struct pt_nf_rules rules = {0};
    struct pt_nf_header_rules headers = {0};
    struct pt_nf_errors errs = {0};
    pt_arena_init(&a, 0);
    (void)pt_nf_parse_redirects(&a, "_redirects", (const char *)data, size, &rules, &errs);
    for (size_t i = 0; i < rules.n; i++)
        check_rule(&rules.items[i]);
    (void)pt_nf_parse_headers(&a, "_headers", (const char *)data, size, &headers, &errs);
    for (size_t i = 0; i < headers.n; i++) {
        const struct pt_nf_header_rule *h = &headers.items[i];
        if (h->n_headers == 0 || !h->path)
            abort();
        for (size_t k = 0; k < h->n_headers; k++)
            if (strlen(h->headers[k].value) != h->headers[k].value_len ||
                strpbrk(h->headers[k].value, "\r\n") || h->headers[k].value_len == 0)
                abort();
    }
    for (size_t i = 0; i < errs.n; i++)
        if (errs.items[i].text[0] != '_')
            abort();
    char out[512];
    (void)pt_nf_errors_format(&errs, out, sizeof(out));
    pt_arena_free(&a);
    return 0;
}
