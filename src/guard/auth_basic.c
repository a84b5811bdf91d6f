/*
 * auth_basic.c - HTTP Basic authentication (RFC 7617) against the users of an htpasswd file
 * (config/config_auth.c reads it at load).
 *
 * Hashes are checked with crypt_rn from libxcrypt (bcrypt, SHA-crypt, yescrypt): slow by
 * design, so that a stolen file costs an attacker as much per guess. The server runs them off
 * its event loops (server/offload.c) through the three steps pt_basic_begin (never blocks),
 * pt_basic_hash (the job alone: any thread) and pt_basic_end. Successes are cached: a table
 * of 256 sets of 4 slots, process-wide under one mutex (taken only on basic_auth routes),
 * holds a 128-bit tag (two SipHash-2-4 under random keys of "user\0password\0hash") and an
 * expiry PT_BASIC_CACHE_TTL_MS away. A keep-alive client therefore pays the hash once a
 * minute, and a cache hit needs no thread hop; a changed password or file changes the tag.
 * Trade-off: a password that was right stays accepted for up to a minute after the file
 * changes it, and a failure is never cached, so a client guessing passwords costs one hash
 * per request on the hashing threads (rate_limit: before the route bounds that).
 *
 * Timing: every user's name is compared, in constant time, whatever matched; an unknown user's
 * password is hashed against the first user's hash and the result ignored, so the answer
 * takes as long as for a known user of that scheme. The last comparison of crypt's output
 * with the stored hash is CRYPTO_memcmp.
 */
#include "guard/auth_basic.h"

#include <crypt.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "core/hash.h"

#define SETS 256
#define WAYS 4
#define CRED_MAX PT_BASIC_CRED_MAX

struct slot {
    uint64_t tag[2];
    uint64_t expires_ms; /* 0: empty */
};

static struct {
    pthread_mutex_t mu;
    bool has_keys;
    uint64_t k[2][2];
    struct slot set[SETS][WAYS];
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const signed char b64[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
    ['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
    ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
    ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
    ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
    ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
    ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
    ['/'] = 64}; /* value + 1; 0: not of the alphabet */

ssize_t pt_basic_decode(const char *v, size_t n, char *out, size_t cap)
{
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (n - i < 6 || strncasecmp(v + i, "basic", 5) != 0 || (v[i + 5] != ' ' && v[i + 5] != '\t'))
        return -1;
    i += 6;
    while (i < n && (v[i] == ' ' || v[i] == '\t'))
        i++;
    while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    /* RFC 4648 §4 with padding: a multiple of 4, '=' only at the end. */
    size_t len = n - i, pad = 0;
    if (len == 0 || len % 4)
        return -2;
    if (v[n - 1] == '=')
        pad = v[n - 2] == '=' ? 2 : 1;
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t k = i; k < n - pad; k++) {
        int d = b64[(unsigned char)v[k]] - 1;
        if (d < 0)
            return -2;
        acc = acc << 6 | (uint32_t)d;
        if ((k - i) % 4 == 3) {
            if (o + 3 > cap)
                return -2;
            out[o++] = (char)(acc >> 16);
            out[o++] = (char)(acc >> 8);
            out[o++] = (char)acc;
            acc = 0;
        }
    }
    if (pad) {
        if (o + 2 > cap)
            return -2;
        if (pad == 1) { /* 3 characters: 18 bits, 2 bytes, 2 zero bits */
            if (acc & 3)
                return -2;
            out[o++] = (char)(acc >> 10);
            out[o++] = (char)(acc >> 2);
        } else { /* 2 characters: 12 bits, 1 byte, 4 zero bits */
            if (acc & 15)
                return -2;
            out[o++] = (char)(acc >> 4);
        }
    }
    if (!memchr(out, ':', o))
        return -2;
    return (ssize_t)o;
}

/* Constant-time equality of a[0..an) and the NUL-terminated b: the time depends on the
   lengths only. */
static bool ct_name_eq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    unsigned diff = an != bn;
    size_t m = an < bn ? an : bn;
    for (size_t i = 0; i < m; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return diff == 0;
}

static bool hash_matches(const char *pw, const char *hash)
{
    static __thread struct crypt_data cd; /* 32 KiB: per thread, not on the stack */
    memset(&cd.initialized, 0, sizeof(cd.initialized));
    const char *h = crypt_rn(pw, hash, &cd, sizeof(cd));
    size_t hl = strlen(hash);
    return h && h[0] != '*' && strlen(h) == hl && CRYPTO_memcmp(h, hash, hl) == 0;
}

static void tag_of(const char *cred, size_t un, size_t pn, const char *hash, uint64_t tag[2])
{
    /* "user\0password\0hash": the NULs keep ("ab","c") and ("a","bc") apart */
    char buf[CRED_MAX + 256];
    size_t hl = strnlen(hash, 255);
    memcpy(buf, cred, un);
    buf[un] = '\0';
    memcpy(buf + un + 1, cred + un + 1, pn);
    buf[un + 1 + pn] = '\0';
    memcpy(buf + un + 2 + pn, hash, hl);
    size_t n = un + 2 + pn + hl;
    tag[0] = pt_siphash24(cache.k[0], buf, n);
    tag[1] = pt_siphash24(cache.k[1], buf, n);
    OPENSSL_cleanse(buf, n);
}

static bool cache_has(const uint64_t tag[2], uint64_t now_ms)
{
    struct slot *set = cache.set[tag[0] % SETS];
    for (int w = 0; w < WAYS; w++)
        if (set[w].expires_ms > now_ms && set[w].tag[0] == tag[0] && set[w].tag[1] == tag[1])
            return true;
    return false;
}

static void cache_put(const uint64_t tag[2], uint64_t now_ms)
{
    struct slot *set = cache.set[tag[0] % SETS], *victim = &set[0];
    for (int w = 0; w < WAYS; w++)
        if (set[w].expires_ms < victim->expires_ms)
            victim = &set[w]; /* the oldest (an empty slot is 0) */
    victim->tag[0] = tag[0];
    victim->tag[1] = tag[1];
    victim->expires_ms = now_ms + PT_BASIC_CACHE_TTL_MS;
}

enum pt_basic_verdict pt_basic_begin(const struct pt_basic_auth_cfg *b, const char *v, size_t n,
                                     uint64_t now_ms, struct pt_basic_job *job, const char **user)
{
    char cred[CRED_MAX + 1];
    if (!v)
        return PT_BASIC_MISSING;
    ssize_t cl = pt_basic_decode(v, n, cred, CRED_MAX);
    if (cl == -1)
        return PT_BASIC_MISSING;
    if (cl < 0 || memchr(cred, '\0', (size_t)cl))
        return PT_BASIC_MALFORMED;
    cred[cl] = '\0';
    size_t un = (size_t)((char *)memchr(cred, ':', (size_t)cl) - cred);
    size_t pn = (size_t)cl - un - 1;
    const struct pt_htpasswd_user *found = NULL;
    for (size_t i = 0; i < b->n_users; i++) {
        bool eq = ct_name_eq(cred, un, b->users[i].name);
        found = eq && !found ? &b->users[i] : found;
    }
    enum pt_basic_verdict v_out = PT_BASIC_REFUSED;
    memset(job, 0, offsetof(struct pt_basic_job, password));
    if (found) {
        pthread_mutex_lock(&cache.mu);
        if (!cache.has_keys)
            cache.has_keys = getrandom(cache.k, sizeof(cache.k), 0) == (ssize_t)sizeof(cache.k);
        job->can_cache = cache.has_keys;
        if (job->can_cache)
            tag_of(cred, un, pn, found->hash, job->tag);
        bool hit = job->can_cache && cache_has(job->tag, now_ms);
        pthread_mutex_unlock(&cache.mu);
        if (hit) {
            *user = found->name;
            OPENSSL_cleanse(cred, sizeof(cred));
            return PT_BASIC_OK;
        }
        job->user = found->name;
    }
    /* an unknown user is hashed against the first user's hash, the result ignored */
    const char *hash = found ? found->hash : b->n_users ? b->users[0].hash : NULL;
    if (hash && strlen(hash) < sizeof(job->hash)) {
        memcpy(job->password, cred + un + 1, pn + 1);
        memcpy(job->hash, hash, strlen(hash) + 1);
        v_out = PT_BASIC_PENDING;
    }
    OPENSSL_cleanse(cred, sizeof(cred));
    return v_out;
}

void pt_basic_hash(struct pt_basic_job *job)
{
    job->is_match = hash_matches(job->password, job->hash);
    OPENSSL_cleanse(job->password, sizeof(job->password));
}

enum pt_basic_verdict pt_basic_end(struct pt_basic_job *job, uint64_t now_ms, const char **user)
{
    OPENSSL_cleanse(job->password, sizeof(job->password));
    if (!job->user || !job->is_match)
        return PT_BASIC_REFUSED;
    if (job->can_cache) {
        pthread_mutex_lock(&cache.mu);
        cache_put(job->tag, now_ms);
        pthread_mutex_unlock(&cache.mu);
    }
    *user = job->user;
    return PT_BASIC_OK;
}

enum pt_basic_verdict pt_basic_check(const struct pt_basic_auth_cfg *b, const char *v, size_t n,
                                     uint64_t now_ms, const char **user)
{
    struct pt_basic_job job;
    enum pt_basic_verdict verdict = pt_basic_begin(b, v, n, now_ms, &job, user);
    if (verdict != PT_BASIC_PENDING)
        return verdict;
    pt_basic_hash(&job);
    return pt_basic_end(&job, now_ms, user);
}

const char *pt_basic_verdict_text(enum pt_basic_verdict v)
{
    switch (v) {
    case PT_BASIC_OK:
        return "valid";
    case PT_BASIC_MISSING:
        return "no Basic credentials";
    case PT_BASIC_MALFORMED:
        return "malformed credentials";
    case PT_BASIC_PENDING:
        return "hash pending";
    default:
        return "wrong user or password";
    }
}
