/*
 * acme.c - placeholder until the ACME client lands: no manager, no challenges.
 */
#include "tls/acme.h"

struct pt_acme *pt_acme_start(const struct pt_config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    if (errlen)
        err[0] = '\0';
    return NULL;
}

void pt_acme_update(struct pt_acme *a, const struct pt_config *cfg)
{
    (void)a;
    (void)cfg;
}

void pt_acme_stop(struct pt_acme *a)
{
    (void)a;
}

size_t pt_acme_certificates(struct pt_acme *a, struct pt_tls_cert_settings *out, size_t max)
{
    (void)a;
    (void)out;
    (void)max;
    return 0;
}

ssize_t pt_acme_http01(const char *token, size_t token_len, char *out, size_t outlen)
{
    (void)token;
    (void)token_len;
    (void)out;
    (void)outlen;
    return -1;
}
