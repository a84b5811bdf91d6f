/*
 * lb_cookie.c - cookie stickiness: Portico sets a cookie whose value names the chosen target,
 * and later requests carrying it go back to that target while it is available.
 *
 * The value is opaque and signed at once: it is the first 16 bytes, in hex, of
 * HMAC-SHA256(key, "portico-lb" NUL upstream NUL url NUL occurrence). It reveals nothing about
 * the target (no address, no index), cannot be forged without the key, and needs no parsing:
 * the tokens of an upstream's targets are computed once per snapshot and a cookie is compared
 * against each (constant time, CRYPTO_memcmp). A token names a target by identity, so it stays
 * valid across reloads that keep the target and across restarts when the key is configured.
 * An unknown token, or one naming a target that cannot take the request, falls back to the
 * balancer (pt_lb_pick), and the proxy then sets the new target's token.
 *
 * The key is drawn from the OpenSSL CSPRNG once per process unless pt_lb_cookie_set_key gives
 * one. Rejected: an encrypted index (indexes move when the target list changes), a plain
 * target id with a MAC beside it (longer cookie, two fields to parse).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/lb_internal.h"

static unsigned char cookie_key[64];
static size_t cookie_key_len;
static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;

int pt_lb_cookie_set_key(const void *key, size_t len)
{
    if (len < 16 || len > sizeof(cookie_key))
        return -1;
    pthread_mutex_lock(&key_mu);
    memcpy(cookie_key, key, len);
    cookie_key_len = len;
    pthread_mutex_unlock(&key_mu);
    return 0;
}

/* Copies the key (drawing a random one the first time). Returns its length or 0. */
static size_t get_key(unsigned char *out)
{
    pthread_mutex_lock(&key_mu);
    if (cookie_key_len == 0 && RAND_bytes(cookie_key, 32) == 1)
        cookie_key_len = 32;
    size_t n = cookie_key_len;
    memcpy(out, cookie_key, n);
    pthread_mutex_unlock(&key_mu);
    return n;
}

int pt_lb_cookie_build(struct pt_upstream_state *us)
{
    unsigned char key[64];
    size_t kl = get_key(key);
    if (kl == 0)
        return -1;
    us->cookie_tokens = calloc(us->n_targets ? us->n_targets : 1, sizeof(*us->cookie_tokens));
    if (!us->cookie_tokens)
        return -1;
    for (size_t i = 0; i < us->n_targets; i++) {
        /* The state key is "upstream\nurl\noccurrence"; the domain prefix separates uses. */
        const char *id = us->targets[i]->key;
        size_t idl = strlen(id);
        unsigned char msg[11 + 1024];
        size_t ml = idl < sizeof(msg) - 11 ? idl : sizeof(msg) - 11;
        memcpy(msg, "portico-lb", 11); /* with its NUL */
        memcpy(msg + 11, id, ml);
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int macl = 0;
        if (!HMAC(EVP_sha256(), key, (int)kl, msg, 11 + ml, mac, &macl) || macl < 16)
            return -1;
        static const char hex[] = "0123456789abcdef";
        for (size_t b = 0; b < 16; b++) {
            us->cookie_tokens[i][2 * b] = hex[mac[b] >> 4];
            us->cookie_tokens[i][2 * b + 1] = hex[mac[b] & 15];
        }
        us->cookie_tokens[i][32] = '\0';
    }
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

const char *pt_lb_cookie_token(const struct pt_upstream_state *us, size_t idx)
{
    if (!us->cookie_tokens || idx >= us->n_targets)
        return NULL;
    return us->cookie_tokens[idx];
}

int pt_lb_cookie_target(const struct pt_upstream_state *us, const char *value, size_t len)
{
    if (!us->cookie_tokens || len != PT_LB_COOKIE_TOKEN_LEN)
        return -1;
    int found = -1;
    for (size_t i = 0; i < us->n_targets; i++)
        if (CRYPTO_memcmp(us->cookie_tokens[i], value, PT_LB_COOKIE_TOKEN_LEN) == 0)
            found = (int)i;
    return found;
}
